/* libFuzzer target: SDP offers and answers through the rewrite between a
 * secure and a plain leg, both ways. Whatever we write must be SDP we read. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "srtpbridge/config.h"
#include "srtpbridge/oa.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char config_text[] =
	"[trunk:carrier]\nlisten = udp:127.0.0.1:5060\npeers = udp:127.0.0.1:5090\n"
	"crypto_suites = AES_CM_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32, AEAD_AES_256_GCM\n"
	"srtcp = either\nroute = ivr\n"
	"[trunk:optional]\nlisten = udp:127.0.0.1:5062\npeers = udp:127.0.0.1:5092\n"
	"srtp = optional\nmedia_address = ::1\nroute = ivr\n"
	"[trunk:ivr]\nlisten = udp:127.0.0.1:5070\npeers = udp:127.0.0.1:5080\nsrtp = off\n";

static const char plain_offer[] = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
				  "t=0 0\r\nm=audio 6000 RTP/AVP 0 101\r\na=rtcp:6001\r\n"
				  "a=rtpmap:101 telephone-event/8000\r\n";

static void must_read(const char *out, size_t n)
{
	struct sdp s;
	char why[256];

	if (n && sdp_parse(&s, (struct slice){ out, n }, why, sizeof(why)))
		abort();
}

static void pair(const struct config *c, const char *x, const char *y, struct slice offer,
		 struct slice answer)
{
	static const uint16_t ports[OA_MAX_STREAMS] = { 30000, 30002, 30004, 30006,
							30008, 30010, 30012, 30014 };
	static char out[SDP_MAX_BYTES];
	struct oa_leg *a = NULL, *b = NULL;
	struct oa_result res;

	if (oa_leg_create(&a, config_trunk_find(c, x), 1) ||
	    oa_leg_create(&b, config_trunk_find(c, y), 2))
		abort();
	if (oa_offer(a, b, offer, ports, OA_MAX_STREAMS, out, sizeof(out), &res) == 0 &&
	    res.status == 0) {
		must_read(out, res.len);
		if (oa_answer(b, a, answer, ports, OA_MAX_STREAMS, out, sizeof(out), &res) == 0 &&
		    res.status == 0) {
			must_read(out, res.len);
			/* the same answer again, then a re-offer */
			oa_answer(b, a, answer, ports, OA_MAX_STREAMS, out, sizeof(out), &res);
			oa_offer(a, b, offer, ports, OA_MAX_STREAMS, out, sizeof(out), &res);
		}
	}
	oa_leg_destroy(a);
	oa_leg_destroy(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct config *c;
	struct slice in = { (const char *)data, size };

	if (!c) {
		struct config_problems p = { 0 };

		if (config_load_buffer("/fuzz/oa.ini", config_text, sizeof(config_text) - 1,
				       CONFIG_NO_RESOLVE | CONFIG_NO_FILES, &c, &p))
			abort();
		config_problems_free(&p);
	}
	/* the input as a carrier's offer, answered by the IVR's plain SDP */
	pair(c, "carrier", "ivr", in, SLICE_LIT(plain_offer));
	pair(c, "optional", "ivr", in, SLICE_LIT(plain_offer));
	/* the input as the answer to our offer toward a secure peer */
	pair(c, "ivr", "carrier", SLICE_LIT(plain_offer), in);
	pair(c, "ivr", "optional", SLICE_LIT(plain_offer), in);
	return 0;
}
