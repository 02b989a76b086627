/* libFuzzer target: the far end's SDP as srtpprobe reads it (psdp.c): parsed,
 * answered under each --srtp mode, and taken as the answer to our offer; and
 * the X-Srtpprobe-Heard header. Whatever we write must be SDP we read, and
 * an answer we write must be one a probe can take. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "srtpbridge/sdp.h"
#include "psdp.h"
#include "ua.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct psdp_local local = { "127.0.0.1", 40000 };

static struct psdp_policy policy(enum psdp_srtp srtp, int codec)
{
	struct psdp_policy p = { .srtp = srtp, .codec = codec, .pad = true };

	p.suites[p.nsuites++] = SUITE_AES_CM_128_HMAC_SHA1_80;
	p.suites[p.nsuites++] = SUITE_AES_CM_128_HMAC_SHA1_32;
	p.suites[p.nsuites++] = SUITE_AEAD_AES_256_GCM;
	return p;
}

static void must_read(const char *out, size_t n)
{
	static struct sdp s;
	char why[256];

	if (!n || sdp_parse(&s, (struct slice){ out, n }, why, sizeof(why)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int codecs[3] = { PSDP_CODEC_ANY, PSDP_PT_PCMU, PSDP_PT_PCMA };
	struct slice in = { (const char *)data, size };
	struct psdp_remote r;
	char why[300], buf[PSDP_BODY_MAX], *text;

	psdp_parse(&r, in, why, sizeof(why));
	for (int m = PSDP_SRTP_MANDATORY; m <= PSDP_SRTP_OFF; m++) {
		struct psdp_policy p = policy((enum psdp_srtp)m, codecs[m]);
		struct psdp_session answerer, caller;
		struct psdp_result res, back;
		size_t len = 0;

		/* the input as an offer to us */
		psdp_session_init(&answerer, &p, 1);
		if (psdp_answer(&answerer, &local, in, buf, sizeof(buf), &len, &res) == 0 &&
		    res.status == 0) {
			must_read(buf, len);
			/* the far end's policy, if it were a probe: it takes our answer
			 * only when it made that offer, so only the syntax is checked */
		} else if (res.status && !res.reason[0]) {
			abort(); /* every refusal says why */
		}
		psdp_result_wipe(&res);
		psdp_session_wipe(&answerer);

		/* the input as the answer to our offer */
		p.codec = m == PSDP_SRTP_OFF ? PSDP_PT_PCMA : PSDP_PT_PCMU;
		psdp_session_init(&caller, &p, 2);
		if (psdp_offer(&caller, &local, PSDP_SENDRECV, buf, sizeof(buf), &len))
			abort();
		must_read(buf, len);
		if (psdp_take_answer(&caller, in, &back, why, sizeof(why)) == 0) {
			if (back.secure != (m != PSDP_SRTP_OFF))
				abort();
		} else if (!why[0]) {
			abort();
		}
		psdp_result_wipe(&back);
		psdp_session_wipe(&caller);
	}
	/* the header, as a NUL-terminated value */
	text = malloc(size + 1);
	if (text) {
		struct ua_heard h;

		memcpy(text, data, size);
		text[size] = '\0';
		ua_heard_parse(text, &h);
		free(text);
	}
	return 0;
}
