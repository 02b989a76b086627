/* libFuzzer target: a=crypto values, one per line, through the parser, the
 * printer (what parses must print and parse back to the same text) and the
 * answer policy over all the lines together. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "srtpbridge/sdes.h"
#include "srtpbridge/sdes_policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void roundtrip(const struct sdes_crypto *c)
{
	char a[SDES_LINE_MAX * 4], b[SDES_LINE_MAX * 4], why[256];
	struct sdes_crypto back;
	size_t na = sdes_print(a, sizeof(a), c, true), nb;

	if (!na)
		abort(); /* whatever parses, prints */
	if (sdes_parse(&back, (struct slice){ a, na }, why, sizeof(why)))
		abort(); /* and what we print, we read */
	nb = sdes_print(b, sizeof(b), &back, true);
	if (na != nb || memcmp(a, b, na) != 0)
		abort();
	sdes_wipe(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct sdes_policy pol = {
		.suites = { SUITE_AES_CM_128_HMAC_SHA1_80, SUITE_AES_CM_128_HMAC_SHA1_32,
			    SUITE_AEAD_AES_256_GCM },
		.nsuites = 3,
		.srtcp = SRTCP_EITHER,
		.padding = true,
	};
	struct slice lines[64];
	struct slice in = { (const char *)data, size };
	struct sdes_answer ans;
	size_t n = 0;

	while (in.n && n < 64) {
		struct slice l = slice_split(&in, '\n');
		struct sdes_crypto c;
		char why[256];

		lines[n++] = l;
		if (sdes_parse(&c, l, why, sizeof(why)) == 0) {
			roundtrip(&c);
			sdes_wipe(&c);
		}
	}
	if (sdes_policy_answer(&pol, lines, n, &ans) == 0 && ans.status == 0)
		roundtrip(&ans.answer);
	sdes_answer_wipe(&ans);
	return 0;
}
