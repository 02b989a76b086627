/* libFuzzer target: the SRTP receive path. The first byte picks the suite,
 * RTP or RTCP, SRTCP encrypted or not, and an MKI; the rest is a packet.
 * - as it is, into an inbound context: what a stranger or a broken peer
 *   sends (nearly always an authentication failure, after libsrtp2 has read
 *   the header, CSRCs and extension it claims);
 * - protected by an outbound context with the same key, then unprotected:
 *   what a real peer sends, which must come back byte for byte, and then
 *   through the relay's header readers (rtp.h). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "srtpbridge/rtp.h"
#include "srtpbridge/srtpctx.h"
#include "srtpbridge/srtplib.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PACKET 2048

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	static uint8_t plain[MAX_PACKET], buf[MAX_PACKET + SRTPCTX_TRAILER_MAX];
	struct sdes_key key;
	struct srtpctx_params p;
	struct srtpctx *in = NULL, *out = NULL;
	enum suite_id suite;
	bool rtcp, unenc;
	size_t n, len;

	if (!ready) {
		if (srtplib_init())
			abort();
		ready = true;
	}
	if (size < 1 || size - 1 > MAX_PACKET)
		return 0;
	suite = (enum suite_id)(data[0] % SUITE_COUNT);
	rtcp = data[0] & 0x10;
	unenc = data[0] & 0x20;
	if (!suite_usable(suite, NULL))
		return 0;
	memset(&key, 0, sizeof(key));
	key.keysalt.len = suite_keysalt_len(suite);
	for (size_t i = 0; i < key.keysalt.len; i++)
		key.keysalt.bytes[i] = (uint8_t)(i * 7 + 1); /* a fixed key: reproducible */
	if (data[0] & 0x40) {
		key.has_mki = true;
		key.mki = 1;
		key.mki_len = data[0] & 0x80 ? 4 : 1;
	}
	p = (struct srtpctx_params){ .suite = suite, .key = &key, .unencrypted_srtcp = unenc };
	if (srtpctx_create(&in, SRTPCTX_INBOUND, &p) || srtpctx_create(&out, SRTPCTX_OUTBOUND, &p))
		abort(); /* a valid key of a usable suite is always taken */
	n = size - 1;
	memcpy(plain, data + 1, n);

	/* a stranger's packet */
	memcpy(buf, plain, n);
	len = n;
	if ((rtcp ? srtpctx_unprotect_rtcp(in, buf, &len) : srtpctx_unprotect_rtp(in, buf, &len)) ==
	    SRTPCTX_OK) {
		if (len > n)
			abort();
	}

	/* a peer's packet: protected, then unprotected to the same bytes */
	memcpy(buf, plain, n);
	len = n;
	if ((rtcp ? srtpctx_protect_rtcp(out, buf, &len, sizeof(buf))
		  : srtpctx_protect_rtp(out, buf, &len, sizeof(buf))) == SRTPCTX_OK) {
		enum srtpctx_result r;

		if (len < n || len > n + SRTPCTX_TRAILER_MAX)
			abort();
		r = rtcp ? srtpctx_unprotect_rtcp(in, buf, &len)
			 : srtpctx_unprotect_rtp(in, buf, &len);
		/* the stranger's try above may have taken this SSRC and index */
		if (r == SRTPCTX_OK && (len != n || memcmp(buf, plain, n) != 0))
			abort();
		if (r == SRTPCTX_OK) {
			struct rtp_hdr h;

			if (rtcp) {
				if (rtcp_check(buf, len) == 0)
					rtcp_set_sender_ssrc(buf, len, 0x12345678u);
			} else {
				(void)rtp_parse(buf, len, &h);
			}
		}
	}
	srtpctx_destroy(in);
	srtpctx_destroy(out);
	return 0;
}
