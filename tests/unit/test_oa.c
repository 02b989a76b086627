/* Offer/answer between a secure and a plain leg: the rewrite line by line,
 * one answer per offer, keys kept or renewed, refreshes, hold and resume,
 * peer re-keys reported once, refusals with their reasons. */
#include <errno.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "srtpbridge/oa.h"
#include "srtpbridge/secret.h"

static const char config_text[] =
	"[global]\nmedia_ports = 30000-30999\n"
	"[trunk:carrier]\nlisten = udp:127.0.0.1:5060\npeers = udp:198.51.100.10:5060\n"
	"media_address = 127.0.0.1\nmedia_advertise = 203.0.113.5\nroute = ivr\n"
	"[trunk:carrier-always]\nlisten = udp:127.0.0.1:5062\npeers = udp:198.51.100.11:5060\n"
	"media_address = 127.0.0.1\nmedia_advertise = 203.0.113.5\nrekey = always\n"
	"crypto_suites = AES_CM_128_HMAC_SHA1_32\nroute = ivr\n"
	"[trunk:carrier6]\nlisten = udp:127.0.0.1:5064\npeers = udp:198.51.100.12:5060\n"
	"media_address = 2001:db8::5\ncrypto_padding = no\ncrypto_suites = AEAD_AES_128_GCM\n"
	"route = ivr\n"
	"[trunk:best-effort]\nlisten = udp:127.0.0.1:5066\npeers = udp:198.51.100.13:5060\n"
	"media_address = 127.0.0.1\nmedia_advertise = 203.0.113.5\nsrtp = optional\n"
	"route = ivr\n"
	"[trunk:ivr]\nlisten = udp:127.0.0.1:5070\npeers = udp:10.0.0.20:5080\n"
	"media_address = 10.0.0.5\nsrtp = off\nroute = carrier\n";

static struct config *cfg;

static int setup(void **state)
{
	struct config_problems probs = { 0 };

	assert_int_equal(config_load_buffer("/test/oa.ini", config_text, strlen(config_text),
					    CONFIG_NO_RESOLVE | CONFIG_NO_FILES, &cfg, &probs),
			 0);
	config_problems_free(&probs);
	return 0;
}

static int teardown(void **state)
{
	config_unref(cfg);
	return 0;
}

static struct oa_leg *leg(const char *trunk, uint64_t sess)
{
	struct oa_leg *l = NULL;

	assert_int_equal(oa_leg_create(&l, config_trunk_find(cfg, trunk), sess), 0);
	return l;
}

/* Keys differ on every run: compare with "inline:KEY" in their place. */
static char *mask(const char *in)
{
	static char out[SDP_MAX_BYTES];
	regex_t re;
	regmatch_t m;
	size_t o = 0;

	assert_int_equal(regcomp(&re, "inline:[A-Za-z0-9+/=]+", REG_EXTENDED), 0);
	while (regexec(&re, in, 1, &m, 0) == 0) {
		o += (size_t)snprintf(out + o, sizeof(out) - o, "%.*sinline:KEY", (int)m.rm_so, in);
		in += m.rm_eo;
	}
	snprintf(out + o, sizeof(out) - o, "%s", in);
	regfree(&re);
	return out;
}

static const uint16_t ports_b[] = { 40000, 40010, 40020 };
static const uint16_t ports_a[] = { 30000, 30010, 30020 };

static void offer(struct oa_leg *a, struct oa_leg *b, const char *sdp, char *out,
		  struct oa_result *res)
{
	assert_int_equal(oa_offer(a, b, slice_from(sdp), ports_b, 3, out, SDP_MAX_BYTES, res), 0);
}

static void answer(struct oa_leg *b, struct oa_leg *a, const char *sdp, char *out,
		   struct oa_result *res)
{
	assert_int_equal(oa_answer(b, a, slice_from(sdp), ports_a, 3, out, SDP_MAX_BYTES, res), 0);
}

#define K80  "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"
#define K32  "NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj"
#define K80B "d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj"

static const char carrier_offer[] =
	"v=0\r\n"
	"o=CarrierSBC 1000 1000 IN IP4 198.51.100.10\r\n"
	"s=SBC call\r\n"
	"c=IN IP4 198.51.100.10\r\n"
	"t=0 0\r\n"
	"m=audio 20000 RTP/SAVP 0 8 101\r\n"
	"a=rtpmap:0 PCMU/8000\r\n"
	"a=rtpmap:8 PCMA/8000\r\n"
	"a=rtpmap:101 telephone-event/8000\r\n"
	"a=fmtp:101 0-15\r\n"
	"a=ptime:20\r\n"
	"a=rtcp:20001\r\n"
	"a=sendrecv\r\n"
	"a=ice-ufrag:F7gI\r\n"
	"a=candidate:1 1 UDP 2130706431 198.51.100.10 20000 typ host\r\n"
	"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" K80 "|2^31\r\n"
	"a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:" K32 "|2^31\r\n";

static const char ivr_offer_to_expect[] = "v=0\r\n"
					  "o=- 2000 1 IN IP4 10.0.0.5\r\n"
					  "s=SBC call\r\n"
					  "c=IN IP4 10.0.0.5\r\n"
					  "t=0 0\r\n"
					  "m=audio 40000 RTP/AVP 0 8 101\r\n"
					  "a=rtpmap:0 PCMU/8000\r\n"
					  "a=rtpmap:8 PCMA/8000\r\n"
					  "a=rtpmap:101 telephone-event/8000\r\n"
					  "a=fmtp:101 0-15\r\n"
					  "a=ptime:20\r\n"
					  "a=rtcp:40001\r\n"
					  "a=sendrecv\r\n";

static const char ivr_answer[] = "v=0\r\n"
				 "o=GVP 55 55 IN IP4 10.0.0.20\r\n"
				 "s=media server\r\n"
				 "c=IN IP4 10.0.0.20\r\n"
				 "t=0 0\r\n"
				 "m=audio 6000 RTP/AVP 0 101\r\n"
				 "a=rtpmap:0 PCMU/8000\r\n"
				 "a=rtpmap:101 telephone-event/8000\r\n"
				 "a=fmtp:101 0-15\r\n"
				 "a=ptime:20\r\n";

static const char carrier_answer_expect[] = "v=0\r\n"
					    "o=- 1000 1 IN IP4 203.0.113.5\r\n"
					    "s=media server\r\n"
					    "c=IN IP4 203.0.113.5\r\n"
					    "t=0 0\r\n"
					    "m=audio 30000 RTP/SAVP 0 101\r\n"
					    "a=rtpmap:0 PCMU/8000\r\n"
					    "a=rtpmap:101 telephone-event/8000\r\n"
					    "a=fmtp:101 0-15\r\n"
					    "a=ptime:20\r\n"
					    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:KEY\r\n";

static void test_secure_to_plain_and_back(void **state)
{
	struct oa_leg *a = leg("carrier", 1000), *b = leg("ivr", 2000);
	char out[SDP_MAX_BYTES];
	struct oa_result res;
	struct oa_stream_info si;

	offer(a, b, carrier_offer, out, &res);
	assert_int_equal(res.status, 0);
	assert_string_equal(out, ivr_offer_to_expect);
	assert_int_equal(res.len, strlen(ivr_offer_to_expect));

	answer(b, a, ivr_answer, out, &res);
	assert_int_equal(res.status, 0);
	assert_false(res.repeated);
	assert_string_equal(mask(out), carrier_answer_expect);
	assert_int_equal(res.to_rekeyed, 1); /* the carrier's first key */
	assert_int_equal(res.from_rekeyed, 0);

	/* what media gets */
	assert_int_equal(oa_leg_stream(a, 0, &si), 0);
	assert_true(si.active && si.secure);
	assert_int_equal(si.suite, SUITE_AES_CM_128_HMAC_SHA1_80);
	assert_int_equal(si.peer_epoch, 1);
	assert_int_equal(si.peer->keysalt.len, 30);
	assert_int_equal(si.ours->keysalt.len, 30);
	assert_false(secret_equal(&si.ours->keysalt, &si.peer->keysalt));
	assert_string_equal(si.addr, "198.51.100.10");
	assert_int_equal(si.port, 20000);
	assert_int_equal(si.rtcp_port, 20001);
	assert_int_equal(oa_leg_stream(b, 0, &si), 0);
	assert_true(si.active);
	assert_false(si.secure);
	assert_null(si.peer);
	assert_string_equal(si.addr, "10.0.0.20");
	assert_int_equal(si.port, 6000);
	assert_int_equal(si.rtcp_port, 6001);
	assert_int_equal(oa_leg_stream(b, 1, &si), ENOENT);
	oa_leg_destroy(a);
	oa_leg_destroy(b);
}

/* One answer per offer: a 183 and then the 200 carry the same answer, even
 * when the far end's 200 SDP differs (media then follows the change). */
static void test_one_answer_per_offer(void **state)
{
	struct oa_leg *a = leg("carrier", 1000), *b = leg("ivr", 2000);
	char out[SDP_MAX_BYTES], first[SDP_MAX_BYTES];
	struct oa_result res;
	struct oa_stream_info si;
	char moved[sizeof(ivr_answer) + 8];

	offer(a, b, carrier_offer, out, &res);
	answer(b, a, ivr_answer, first, &res); /* in the 183 */
	answer(b, a, ivr_answer, out, &res);   /* the 200, same SDP */
	assert_true(res.repeated);
	assert_false(res.remote_changed);
	assert_string_equal(out, first);

	/* the 200 names another address and port */
	snprintf(moved, sizeof(moved), "%s", ivr_answer);
	memcpy(strstr(moved, "c=IN IP4 10.0.0.20") + 16, "21", 2);
	memcpy(strstr(moved, "m=audio 6000") + 8, "7000", 4);
	answer(b, a, moved, out, &res);
	assert_true(res.repeated);
	assert_true(res.remote_changed);
	assert_string_equal(out, first); /* leg A keeps the answer it was given */
	assert_int_equal(oa_leg_stream(b, 0, &si), 0);
	assert_string_equal(si.addr, "10.0.0.21");
	assert_int_equal(si.port, 7000);
	oa_leg_destroy(a);
	oa_leg_destroy(b);
}

/* The crypto line of an answer, as text. */
static const char *crypto_line(const char *sdp, char *buf, size_t size)
{
	const char *c = strstr(sdp, "a=crypto:");

	assert_non_null(c);
	snprintf(buf, size, "%.*s", (int)strcspn(c, "\r"), c);
	return buf;
}

static const char *o_line(const char *sdp, char *buf, size_t size)
{
	const char *c = strstr(sdp, "o=");

	snprintf(buf, size, "%.*s", (int)strcspn(c, "\r"), c);
	return buf;
}

static void replace(char *s, const char *from, const char *to)
{
	char *p = strstr(s, from);

	assert_non_null(p);
	assert_int_equal(strlen(from), strlen(to));
	memcpy(p, to, strlen(to));
}

/* A refresh gives an identical answer with the same o= version; hold and
 * resume keep our key under rekey = keep; a new peer key is reported once. */
static void test_refresh_hold_resume_rekey(void **state)
{
	struct oa_leg *a = leg("carrier", 1000), *b = leg("ivr", 2000);
	char out[SDP_MAX_BYTES], first[SDP_MAX_BYTES], toivr[SDP_MAX_BYTES];
	char c1[512], c2[512], o1[128], o2[128];
	char sdp[sizeof(carrier_offer)];
	struct oa_result res;
	struct oa_stream_info si;

	offer(a, b, carrier_offer, toivr, &res);
	answer(b, a, ivr_answer, first, &res);

	/* session refresh: the same offer again */
	offer(a, b, carrier_offer, out, &res);
	assert_string_equal(out, toivr); /* same o= version toward the IVR */
	answer(b, a, ivr_answer, out, &res);
	assert_false(res.repeated);
	assert_string_equal(out, first);
	assert_int_equal(res.to_rekeyed, 0);
	assert_int_equal(res.from_rekeyed, 0);

	/* hold: sendonly, same keys */
	snprintf(sdp, sizeof(sdp), "%s", carrier_offer);
	replace(sdp, "a=sendrecv", "a=sendonly");
	replace(sdp, "1000 1000", "1000 1001");
	offer(a, b, sdp, out, &res);
	assert_non_null(strstr(out, "a=sendonly"));
	assert_string_equal(o_line(out, o1, sizeof(o1)), "o=- 2000 2 IN IP4 10.0.0.5");
	answer(b, a, ivr_answer, out, &res);
	assert_string_equal(crypto_line(out, c2, sizeof(c2)), crypto_line(first, c1, sizeof(c1)));
	assert_int_equal(res.to_rekeyed, 0);

	/* resume, and the carrier changes its key: reported once */
	snprintf(sdp, sizeof(sdp), "%s", carrier_offer);
	replace(sdp, K80, K80B);
	offer(a, b, sdp, out, &res);
	assert_string_equal(o_line(out, o2, sizeof(o2)), "o=- 2000 3 IN IP4 10.0.0.5");
	answer(b, a, ivr_answer, out, &res);
	assert_int_equal(res.to_rekeyed, 1);
	assert_string_equal(crypto_line(out, c2, sizeof(c2)), c1); /* ours kept */
	assert_int_equal(oa_leg_stream(a, 0, &si), 0);
	assert_int_equal(si.peer_epoch, 2);
	offer(a, b, sdp, out, &res);
	answer(b, a, ivr_answer, out, &res);
	assert_int_equal(res.to_rekeyed, 0);
	assert_int_equal(oa_leg_stream(a, 0, &si), 0);
	assert_int_equal(si.peer_epoch, 2);
	oa_leg_destroy(a);
	oa_leg_destroy(b);
}

/* The carrier answered once (we gave our key K); now the IVR offers toward
 * the carrier (an offerless re-INVITE, a late offer): our offer to the
 * carrier keeps K in its line of the same suite; the other suite gets a
 * fresh key. */
static void test_answerer_offers_with_its_key(void **state)
{
	struct oa_leg *a = leg("carrier", 1000), *b = leg("ivr", 2000);
	char out[SDP_MAX_BYTES], first[SDP_MAX_BYTES];
	char c1[512];
	const char *k, *line2;
	struct oa_result res;

	(void)state;
	offer(a, b, carrier_offer, out, &res);
	answer(b, a, ivr_answer, first, &res);
	k = strstr(crypto_line(first, c1, sizeof(c1)), "inline:");
	assert_non_null(k);
	/* the IVR's offer, toward the carrier */
	assert_int_equal(
		oa_offer(b, a, slice_from(ivr_answer), ports_a, 3, out, SDP_MAX_BYTES, &res), 0);
	assert_int_equal(res.status, 0);
	assert_non_null(strstr(out, "a=crypto:1 AES_CM_128_HMAC_SHA1_80 "));
	assert_non_null(strstr(out, k)); /* the same key, padding and all */
	line2 = strstr(out, "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:");
	assert_non_null(line2);
	assert_null(strstr(line2, k));
	oa_leg_destroy(a);
	oa_leg_destroy(b);
}

static void test_rekey_always(void **state)
{
	struct oa_leg *a = leg("carrier-always", 1000), *b = leg("ivr", 2000);
	char out[SDP_MAX_BYTES];
	char c1[512], c2[512];
	struct oa_result res;

	offer(a, b, carrier_offer, out, &res);
	answer(b, a, ivr_answer, out, &res);
	assert_int_equal(res.status, 0);
	crypto_line(out, c1, sizeof(c1));
	assert_memory_equal(c1, "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:", 42);
	offer(a, b, carrier_offer, out, &res);
	answer(b, a, ivr_answer, out, &res);
	assert_string_not_equal(crypto_line(out, c2, sizeof(c2)), c1);
	oa_leg_destroy(a);
	oa_leg_destroy(b);
}

static const char ivr_offer[] = "v=0\r\n"
				"o=FreeSWITCH 77 78 IN IP4 10.0.0.20\r\n"
				"s=FreeSWITCH\r\n"
				"c=IN IP4 10.0.0.20\r\n"
				"t=0 0\r\n"
				"m=audio 6000 RTP/AVP 8 0 101\r\n"
				"a=rtpmap:8 PCMA/8000\r\n"
				"a=rtpmap:0 PCMU/8000\r\n"
				"a=rtpmap:101 telephone-event/8000\r\n"
				"a=fmtp:101 0-16\r\n"
				"a=ptime:20\r\n"
				"a=sendrecv\r\n";

/* Plain -> secure: the IVR calls out through the carrier. */
static void test_plain_to_secure_and_back(void **state)
{
	struct oa_leg *a = leg("ivr", 3000), *b = leg("carrier", 4000);
	char out[SDP_MAX_BYTES], ans[SDP_MAX_BYTES];
	struct oa_result res;
	struct oa_stream_info si;
	const char *l1, *l2;
	char tag2[128];

	offer(a, b, ivr_offer, out, &res);
	assert_int_equal(res.status, 0);
	assert_string_equal(mask(out), "v=0\r\n"
				       "o=- 4000 1 IN IP4 203.0.113.5\r\n"
				       "s=FreeSWITCH\r\n"
				       "c=IN IP4 203.0.113.5\r\n"
				       "t=0 0\r\n"
				       "m=audio 40000 RTP/SAVP 8 0 101\r\n"
				       "a=rtpmap:8 PCMA/8000\r\n"
				       "a=rtpmap:0 PCMU/8000\r\n"
				       "a=rtpmap:101 telephone-event/8000\r\n"
				       "a=fmtp:101 0-16\r\n"
				       "a=ptime:20\r\n"
				       "a=sendrecv\r\n"
				       "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:KEY\r\n"
				       "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:KEY\r\n");
	l1 = strstr(out, "a=crypto:1");
	l2 = strstr(out, "a=crypto:2");
	assert_true(strncmp(l1 + 42, l2 + 42, 40) != 0); /* a key per line */

	/* the carrier picks tag 2 */
	snprintf(tag2, sizeof(tag2), "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:%s\r\n", K32);
	snprintf(ans, sizeof(ans),
		 "v=0\r\no=SBC 9 9 IN IP4 198.51.100.10\r\ns=-\r\nc=IN IP4 198.51.100.10\r\n"
		 "t=0 0\r\nm=audio 22000 RTP/SAVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n"
		 "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n%s",
		 tag2);
	answer(b, a, ans, out, &res);
	assert_int_equal(res.status, 0);
	assert_int_equal(res.from_rekeyed, 1);
	assert_string_equal(out, "v=0\r\n"
				 "o=- 3000 1 IN IP4 10.0.0.5\r\n"
				 "s=-\r\n"
				 "c=IN IP4 10.0.0.5\r\n"
				 "t=0 0\r\n"
				 "m=audio 30000 RTP/AVP 8 101\r\n"
				 "a=rtpmap:8 PCMA/8000\r\n"
				 "a=rtpmap:101 telephone-event/8000\r\n"
				 "a=fmtp:101 0-16\r\n");
	assert_int_equal(oa_leg_stream(b, 0, &si), 0);
	assert_true(si.secure);
	assert_int_equal(si.suite, SUITE_AES_CM_128_HMAC_SHA1_32);
	assert_int_equal(si.port, 22000);
	oa_leg_destroy(a);
	oa_leg_destroy(b);
}

static void expect_offer_refused(const char *trunk, const char *sdp, int status, const char *reason)
{
	struct oa_leg *a = leg(trunk, 1), *b = leg(strcmp(trunk, "ivr") ? "ivr" : "carrier", 2);
	char out[SDP_MAX_BYTES];
	struct oa_result res;

	offer(a, b, sdp, out, &res);
	assert_int_equal(res.status, status);
	if (strcmp(res.reason, reason) != 0)
		fail_msg("reason '%s', want '%s'", res.reason, reason);
	assert_int_equal(oa_leg_nstreams(a), 0);
	oa_leg_destroy(a);
	oa_leg_destroy(b);
}

static void test_refusals(void **state)
{
	char sdp[2048];

	expect_offer_refused("carrier", ivr_offer, 488,
			     "trunk 'carrier' has srtp = mandatory, but the offer is plain "
			     "RTP/AVP with no a=crypto");
	expect_offer_refused("ivr", carrier_offer, 488,
			     "trunk 'ivr' has srtp = off, but the offer is RTP/SAVP (SRTP)");
	snprintf(sdp, sizeof(sdp), "%s", carrier_offer);
	replace(sdp, "AES_CM_128_HMAC_SHA1_80", "AES_256_CM_HMAC_SHA1_80");
	*strstr(sdp, "a=crypto:2") = '\0';
	strcat(sdp, "\r\n");
	sdp[strlen(sdp) - 2] = '\0';
	expect_offer_refused("carrier", sdp, 488,
			     "no common crypto suite: offered AES_256_CM_HMAC_SHA1_80; allowed "
			     "AES_CM_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32");
	/* an ALG cut the keys of both allowed lines */
	snprintf(sdp, sizeof(sdp), "%s", carrier_offer);
	*strstr(sdp, "a=crypto:1") = '\0';
	strcat(sdp,
	       "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0m\r\n"
	       "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdU\r\n");
	expect_offer_refused("carrier", sdp, 488,
			     "a=crypto tag 1: inline key decodes to 24 bytes; "
			     "AES_CM_128_HMAC_SHA1_80 needs 30 (possible SIP ALG mangling)");
	expect_offer_refused(
		"carrier",
		"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
		"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=fingerprint:sha-256 AA:BB\r\n"
		"a=setup:actpass\r\n",
		488,
		"DTLS-SRTP (UDP/TLS/RTP/SAVPF) is not supported: offer SDES keys with "
		"RTP/SAVP");
	expect_offer_refused("carrier", "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n", 488,
			     "malformed SDP: SDP has no t= line");
}

/* Video beside audio: the video is declined with port 0 on both legs. */
static void test_video_declined(void **state)
{
	struct oa_leg *a = leg("carrier", 1000), *b = leg("ivr", 2000);
	char out[SDP_MAX_BYTES], sdp[4096];
	struct oa_result res;

	snprintf(sdp, sizeof(sdp),
		 "%sm=video 20002 RTP/SAVP 96\r\na=rtpmap:96 H264/90000\r\n"
		 "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" K80B "\r\n",
		 carrier_offer);
	offer(a, b, sdp, out, &res);
	assert_int_equal(res.status, 0);
	assert_non_null(strstr(out, "\r\nm=video 0 RTP/AVP 96\r\n")); /* the plain profile */
	assert_null(strstr(out, "H264"));
	snprintf(sdp, sizeof(sdp), "%sm=video 0 RTP/AVP 96\r\n", ivr_answer);
	answer(b, a, sdp, out, &res);
	assert_int_equal(res.status, 0);
	assert_non_null(strstr(out, "\r\nm=video 0 RTP/SAVP 96\r\n"));
	assert_int_equal(oa_leg_nstreams(a), 2);
	oa_leg_destroy(a);
	oa_leg_destroy(b);
}

/* A re-offer that adds a stream: the legs make room for it (they hold only
 * the streams a call has had), the first stream keeps its state and our key
 * under rekey = keep, and the new one gets its own. Then from the other
 * side, so that both legs grow as the offerer and as the answerer. */
static void test_reoffer_adds_a_stream(void **state)
{
	struct oa_leg *a = leg("carrier", 1000), *b = leg("ivr", 2000);
	char out[SDP_MAX_BYTES], first[SDP_MAX_BYTES], sdp[4096], c1[512], c2[512];
	struct oa_result res;
	struct oa_stream_info s0, s1;
	const char *second;

	offer(a, b, carrier_offer, out, &res);
	answer(b, a, ivr_answer, first, &res);
	assert_int_equal(oa_leg_nstreams(a), 1);
	crypto_line(first, c1, sizeof(c1));

	snprintf(sdp, sizeof(sdp),
		 "%sm=audio 20002 RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
		 "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" K80B "\r\n",
		 carrier_offer);
	replace(sdp, "1000 1000", "1000 1001");
	offer(a, b, sdp, out, &res);
	assert_int_equal(res.status, 0);
	assert_non_null(strstr(out, "\r\nm=audio 40010 RTP/AVP 0\r\n"));
	snprintf(sdp, sizeof(sdp), "%sm=audio 6002 RTP/AVP 0\r\n", ivr_answer);
	answer(b, a, sdp, out, &res);
	assert_int_equal(res.status, 0);
	assert_int_equal(oa_leg_nstreams(a), 2);
	assert_int_equal(oa_leg_nstreams(b), 2);
	assert_string_equal(crypto_line(out, c2, sizeof(c2)), c1);
	second = strstr(out, "\r\nm=audio 30010 RTP/SAVP 0\r\n");
	assert_non_null(second);
	assert_string_not_equal(crypto_line(second, c2, sizeof(c2)), c1);
	assert_int_equal(oa_leg_stream(a, 0, &s0), 0);
	assert_int_equal(oa_leg_stream(a, 1, &s1), 0);
	assert_true(s0.active && s0.secure && s1.active && s1.secure);
	assert_int_equal(s0.port, 20000);
	assert_int_equal(s1.port, 20002);
	assert_false(secret_equal(&s0.ours->keysalt, &s1.ours->keysalt));
	assert_int_equal(oa_leg_stream(b, 1, &s1), 0);
	assert_int_equal(s1.port, 6002);
	assert_int_equal(oa_leg_stream(a, 2, &s1), ENOENT);

	/* the IVR offers three: each leg grows once more */
	snprintf(sdp, sizeof(sdp), "%sm=audio 6002 RTP/AVP 0\r\nm=audio 6004 RTP/AVP 0\r\n",
		 ivr_answer);
	replace(sdp, "GVP 55 55", "GVP 55 56");
	offer(b, a, sdp, out, &res);
	assert_int_equal(res.status, 0);
	assert_string_equal(crypto_line(out, c2, sizeof(c2)), c1);
	assert_non_null(strstr(out, "\r\nm=audio 40020 RTP/SAVP 0\r\n"));
	oa_leg_destroy(a);
	oa_leg_destroy(b);
}

/* A declined stream with an m= line longer than anything kept for it: the
 * answer's m= line must still be whole (found by the fuzzer). */
static void test_long_declined_mline(void **state)
{
	struct oa_leg *a = leg("carrier", 1000), *b = leg("ivr", 2000);
	char out[SDP_MAX_BYTES], sdp[4096], fmts[400] = "";
	struct oa_result res;
	struct sdp parsed;
	char why[256];

	for (int pt = 96; pt < 180; pt++)
		snprintf(fmts + strlen(fmts), sizeof(fmts) - strlen(fmts), " %d", pt);
	snprintf(sdp, sizeof(sdp), "%sm=video 20002 RTP/SAVP%s\r\n", carrier_offer, fmts);
	offer(a, b, sdp, out, &res);
	assert_int_equal(res.status, 0);
	snprintf(sdp, sizeof(sdp), "%sm=video 0 RTP/AVP 96\r\n", ivr_answer);
	answer(b, a, sdp, out, &res);
	assert_int_equal(res.status, 0);
	assert_int_equal(sdp_parse(&parsed, (struct slice){ out, res.len }, why, sizeof(why)), 0);
	assert_non_null(strstr(out, "\r\nm=video 0 RTP/SAVP 96\r\n"));
	oa_leg_destroy(a);
	oa_leg_destroy(b);
}

/* IPv6 media on one leg, IPv4 on the other; GCM without '=' padding. */
static void test_ipv6_and_gcm(void **state)
{
	struct oa_leg *a = leg("ivr", 5), *b = leg("carrier6", 6);
	char out[SDP_MAX_BYTES];
	struct oa_result res;

	offer(a, b, ivr_offer, out, &res);
	assert_int_equal(res.status, 0);
	assert_non_null(strstr(out, "o=- 6 1 IN IP6 2001:db8::5\r\n"));
	assert_non_null(strstr(out, "c=IN IP6 2001:db8::5\r\n"));
	assert_non_null(strstr(out, "a=crypto:1 AEAD_AES_128_GCM inline:"));
	assert_null(strchr(strstr(out, "inline:"), '=')); /* crypto_padding = no */
	oa_leg_destroy(a);
	oa_leg_destroy(b);
}

/* srtp = optional: RFC 8643 offers (RTP/AVP with a=crypto) and answers. */
static void test_best_effort(void **state)
{
	struct oa_leg *a = leg("ivr", 7), *b = leg("best-effort", 8);
	char out[SDP_MAX_BYTES], ans[2048];
	struct oa_result res;
	struct oa_stream_info si;

	offer(a, b, ivr_offer, out, &res);
	assert_non_null(strstr(out, "m=audio 40000 RTP/AVP 8 0 101\r\n"));
	assert_non_null(strstr(out, "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"));
	/* a peer without SRTP answers without keys: plain it is */
	answer(b, a, ivr_answer, out, &res);
	assert_int_equal(res.status, 0);
	assert_int_equal(oa_leg_stream(b, 0, &si), 0);
	assert_false(si.secure);
	oa_leg_destroy(a);
	oa_leg_destroy(b);

	/* and an RFC 8643 offer to an optional trunk is answered with keys,
	 * keeping RTP/AVP */
	a = leg("best-effort", 9);
	b = leg("ivr", 10);
	snprintf(ans, sizeof(ans), "%s", carrier_offer);
	replace(ans, "RTP/SAVP", "RTP/AVP ");
	offer(a, b, ans, out, &res);
	assert_int_equal(res.status, 0);
	answer(b, a, ivr_answer, out, &res);
	assert_non_null(strstr(out, "m=audio 30000 RTP/AVP 0 101\r\n"));
	assert_non_null(strstr(out, "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"));
	assert_int_equal(oa_leg_stream(a, 0, &si), 0);
	assert_true(si.secure);
	oa_leg_destroy(a);
	oa_leg_destroy(b);
}

static void test_bad_answers(void **state)
{
	struct oa_leg *a = leg("ivr", 3000), *b = leg("carrier", 4000);
	char out[SDP_MAX_BYTES], ans[2048];
	struct oa_result res;

	offer(a, b, ivr_offer, out, &res);
	/* the carrier answers plain RTP to our SAVP offer */
	answer(b, a, ivr_answer, out, &res);
	assert_int_equal(res.status, 488);
	assert_string_equal(res.reason, "trunk 'carrier' answered plain RTP/AVP to an RTP/SAVP "
					"offer");
	/* with a tag we never offered */
	snprintf(ans, sizeof(ans),
		 "v=0\r\no=SBC 9 9 IN IP4 198.51.100.10\r\ns=-\r\nc=IN IP4 198.51.100.10\r\n"
		 "t=0 0\r\nm=audio 22000 RTP/SAVP 8\r\n"
		 "a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:" K80 "\r\n");
	answer(b, a, ans, out, &res);
	assert_int_equal(res.status, 488);
	assert_string_equal(res.reason, "trunk 'carrier' answered badly: the answer's a=crypto "
					"tag 7 was not offered");
	/* a refused answer leaves the offer open; a rollback closes it */
	oa_rollback(a, b);
	offer(a, b, ivr_offer, out, &res);
	assert_int_equal(res.status, 0);
	/* a second offer while one is under way: 491 */
	offer(a, b, ivr_offer, out, &res);
	assert_int_equal(res.status, 491);
	oa_leg_destroy(a);
	oa_leg_destroy(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_secure_to_plain_and_back),
		cmocka_unit_test(test_one_answer_per_offer),
		cmocka_unit_test(test_refresh_hold_resume_rekey),
		cmocka_unit_test(test_answerer_offers_with_its_key),
		cmocka_unit_test(test_rekey_always),
		cmocka_unit_test(test_plain_to_secure_and_back),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_video_declined),
		cmocka_unit_test(test_reoffer_adds_a_stream),
		cmocka_unit_test(test_long_declined_mline),
		cmocka_unit_test(test_ipv6_and_gcm),
		cmocka_unit_test(test_best_effort),
		cmocka_unit_test(test_bad_answers),
	};

	return cmocka_run_group_tests_name("oa", tests, setup, teardown);
}
