/* srtpprobe's SDP (tools/srtpprobe/psdp.c): offers and answers between two
 * probes, the answerer's choices and refusals (488 with a reason), the
 * caller's checks of an answer, SDP as srtpbridge (its golden files),
 * baresip and rtpengine write it, and garbage; plus the X-Srtpprobe-Heard
 * header and the verdict table of ua.c. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "psdp.h"
#include "ua.h"

#define K30  "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"
#define K30B "NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj"
/* 46 bytes (AES-256 key || salt) */
#define K46 "YmFyZWxvdmVseWtleXNmb3JhZXMyNTZ0aGF0YXJlNDZieXRlc2xvbmdhYmNkeA=="

static struct psdp_policy policy(enum psdp_srtp srtp, const char *suites, int codec)
{
	struct psdp_policy p = { .srtp = srtp, .codec = codec, .pad = true };
	char why[200];

	if (suites)
		assert_int_equal(psdp_parse_suites(suites, p.suites, &p.nsuites, why, sizeof(why)),
				 0);
	return p;
}

static const struct psdp_local caller_local = { "192.0.2.1", 40000 };
static const struct psdp_local answerer_local = { "192.0.2.2", 50000 };

static int answer_text(struct psdp_session *s, const char *offer, char *buf, size_t size,
		       struct psdp_result *res)
{
	size_t len = 0;
	int err = psdp_answer(s, &answerer_local, slice_from(offer), buf, size, &len, res);

	assert_int_equal(err, 0);
	if (!res->status)
		assert_int_equal(len, strlen(buf));
	/* a reason never carries key material */
	assert_null(strstr(res->reason, "PS1u"));
	assert_null(strstr(res->reason, "NzB4"));
	return res->status;
}

/* ---- --suites ---- */

static void test_parse_suites(void **state)
{
	enum suite_id s[SUITE_COUNT];
	size_t n = 0;
	char why[200];

	assert_int_equal(psdp_parse_suites("AES_CM_128_HMAC_SHA1_32, aes_cm_128_hmac_sha1_80", s,
					   &n, why, sizeof(why)),
			 0);
	assert_int_equal(n, 2);
	assert_int_equal(s[0], SUITE_AES_CM_128_HMAC_SHA1_32);
	assert_int_equal(s[1], SUITE_AES_CM_128_HMAC_SHA1_80);
	assert_int_equal(psdp_parse_suites("AEAD_AES_256_GCM,", s, &n, why, sizeof(why)), 0);
	assert_int_equal(n, 1);
	assert_int_equal(psdp_parse_suites("AES_CM_128_HMAC_SHA1_80,AES_CM_128_HMAC_SHA1_80", s, &n,
					   why, sizeof(why)),
			 EINVAL);
	assert_non_null(strstr(why, "twice"));
	assert_int_equal(psdp_parse_suites("AES_CM_128_HMAC_SHA1_81", s, &n, why, sizeof(why)),
			 EINVAL);
	assert_non_null(strstr(why, "unknown suite"));
	assert_int_equal(psdp_parse_suites("", s, &n, why, sizeof(why)), EINVAL);
	assert_int_equal(psdp_parse_suites("AES_CM_128_HMAC_SHA1_80,,AEAD_AES_128_GCM", s, &n, why,
					   sizeof(why)),
			 EINVAL);
	/* a suite the linked libsrtp2 gets wrong is refused with its reason */
	if (!suite_usable(SUITE_AES_192_CM_HMAC_SHA1_80, NULL))
		assert_int_equal(
			psdp_parse_suites("AES_192_CM_HMAC_SHA1_80", s, &n, why, sizeof(why)),
			EINVAL);
}

/* ---- two probes ---- */

static void test_round_trip(void **state)
{
	struct psdp_policy cp =
		policy(PSDP_SRTP_MANDATORY, "AES_CM_128_HMAC_SHA1_80,AES_CM_128_HMAC_SHA1_32",
		       PSDP_PT_PCMU);
	/* the answerer prefers _32: its order decides (crypto_select local) */
	struct psdp_policy ap =
		policy(PSDP_SRTP_OPTIONAL, "AES_CM_128_HMAC_SHA1_32,AES_CM_128_HMAC_SHA1_80",
		       PSDP_CODEC_ANY);
	struct psdp_session caller, answerer;
	struct psdp_result ares, cres;
	char offer[PSDP_BODY_MAX], answer[PSDP_BODY_MAX], why[300];
	size_t len;

	psdp_session_init(&caller, &cp, 7);
	psdp_session_init(&answerer, &ap, 9);
	assert_int_equal(
		psdp_offer(&caller, &caller_local, PSDP_SENDRECV, offer, sizeof(offer), &len), 0);
	assert_int_equal(len, strlen(offer));
	assert_non_null(strstr(offer, "m=audio 40000 RTP/SAVP 0\r\n"));
	assert_non_null(strstr(offer, "c=IN IP4 192.0.2.1\r\n"));
	assert_non_null(strstr(offer, "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"));
	assert_non_null(strstr(offer, "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:"));
	assert_non_null(strstr(offer, "a=sendrecv\r\n"));
	assert_non_null(strstr(offer, "a=rtcp:40001\r\n"));
	assert_non_null(strstr(offer, "o=srtpprobe 7 1 IN IP4 192.0.2.1\r\n"));

	assert_int_equal(answer_text(&answerer, offer, answer, sizeof(answer), &ares), 0);
	assert_true(ares.secure);
	assert_int_equal(ares.suite, SUITE_AES_CM_128_HMAC_SHA1_32);
	assert_int_equal(ares.pt, PSDP_PT_PCMU);
	assert_int_equal(ares.dir, PSDP_SENDRECV);
	assert_string_equal(ares.addr, "192.0.2.1");
	assert_int_equal(ares.port, 40000);
	assert_int_equal(ares.rtcp_port, 40001);
	assert_non_null(strstr(answer, "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:"));
	assert_null(strstr(answer, "a=crypto:1"));

	assert_int_equal(psdp_take_answer(&caller, slice_from(answer), &cres, why, sizeof(why)), 0);
	assert_int_equal(cres.suite, SUITE_AES_CM_128_HMAC_SHA1_32);
	/* each side receives with the key the other sends with */
	assert_true(secret_equal(&cres.ours.keysalt, &ares.peer.keysalt));
	assert_true(secret_equal(&cres.peer.keysalt, &ares.ours.keysalt));
	assert_false(secret_equal(&cres.ours.keysalt, &cres.peer.keysalt));
	assert_string_equal(cres.addr, "192.0.2.2");
	assert_int_equal(cres.port, 50000);
	/* one answer per offer */
	assert_int_equal(psdp_take_answer(&caller, slice_from(answer), &cres, why, sizeof(why)),
			 EBADMSG);
	assert_non_null(strstr(why, "no offer"));

	/* hold with new keys: sendonly, answered recvonly */
	{
		struct psdp_result a2, c2;

		assert_int_equal(psdp_offer(&caller, &caller_local, PSDP_SENDONLY, offer,
					    sizeof(offer), &len),
				 0);
		assert_non_null(strstr(offer, "o=srtpprobe 7 2 "));
		assert_int_equal(answer_text(&answerer, offer, answer, sizeof(answer), &a2), 0);
		assert_int_equal(a2.dir, PSDP_RECVONLY);
		assert_non_null(strstr(answer, "a=recvonly\r\n"));
		assert_false(secret_equal(&a2.peer.keysalt, &ares.peer.keysalt));
		assert_int_equal(
			psdp_take_answer(&caller, slice_from(answer), &c2, why, sizeof(why)), 0);
		assert_int_equal(c2.dir, PSDP_SENDONLY);
		psdp_result_wipe(&a2);
		psdp_result_wipe(&c2);
	}
	psdp_result_wipe(&ares);
	psdp_result_wipe(&cres);
	psdp_session_wipe(&caller);
	psdp_session_wipe(&answerer);
}

static void test_plain_round_trip(void **state)
{
	struct psdp_policy cp = policy(PSDP_SRTP_OFF, NULL, PSDP_PT_PCMA);
	struct psdp_policy ap = policy(PSDP_SRTP_OFF, NULL, PSDP_CODEC_ANY);
	struct psdp_session caller, answerer;
	struct psdp_result ares, cres;
	char offer[PSDP_BODY_MAX], answer[PSDP_BODY_MAX], why[300];
	size_t len;

	psdp_session_init(&caller, &cp, 1);
	psdp_session_init(&answerer, &ap, 2);
	assert_int_equal(
		psdp_offer(&caller, &caller_local, PSDP_SENDRECV, offer, sizeof(offer), &len), 0);
	assert_non_null(strstr(offer, "m=audio 40000 RTP/AVP 8\r\n"));
	assert_non_null(strstr(offer, "a=rtpmap:8 PCMA/8000\r\n"));
	assert_null(strstr(offer, "crypto"));
	assert_int_equal(answer_text(&answerer, offer, answer, sizeof(answer), &ares), 0);
	assert_false(ares.secure);
	assert_int_equal(ares.pt, PSDP_PT_PCMA);
	assert_int_equal(psdp_take_answer(&caller, slice_from(answer), &cres, why, sizeof(why)), 0);
	assert_false(cres.secure);
	assert_int_equal(cres.pt, PSDP_PT_PCMA);
	psdp_session_wipe(&caller);
	psdp_session_wipe(&answerer);
}

/* ---- the answerer's refusals ---- */

#define SAVP_OFFER                                                                                 \
	"v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n"          \
	"m=audio 30000 RTP/SAVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"                  \
	"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" K30 "\r\n"                                    \
	"a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:" K30B "\r\n"
#define AVP_OFFER                                                                                  \
	"v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n"          \
	"m=audio 30000 RTP/AVP 8 0\r\n"

static void expect_488(const struct psdp_policy *p, const char *offer, const char *reason)
{
	struct psdp_session s;
	struct psdp_result r;
	char buf[PSDP_BODY_MAX];

	psdp_session_init(&s, p, 1);
	if (answer_text(&s, offer, buf, sizeof(buf), &r) != 488)
		fail_msg("not refused:\n%s", offer);
	if (!strstr(r.reason, reason))
		fail_msg("reason '%s' lacks '%s'", r.reason, reason);
	psdp_session_wipe(&s);
}

static void test_answer_refusals(void **state)
{
	struct psdp_policy any =
		policy(PSDP_SRTP_OPTIONAL, "AES_CM_128_HMAC_SHA1_80", PSDP_CODEC_ANY);
	struct psdp_policy off = policy(PSDP_SRTP_OFF, NULL, PSDP_CODEC_ANY);
	struct psdp_policy mand =
		policy(PSDP_SRTP_MANDATORY, "AES_CM_128_HMAC_SHA1_80", PSDP_CODEC_ANY);
	struct psdp_policy gcm = policy(PSDP_SRTP_MANDATORY, "AEAD_AES_128_GCM", PSDP_CODEC_ANY);
	struct psdp_policy pcma = policy(PSDP_SRTP_OFF, NULL, PSDP_PT_PCMA);

	expect_488(&mand, AVP_OFFER, "RTP/AVP and srtp is mandatory");
	expect_488(&off, SAVP_OFFER, "RTP/SAVP and srtp is off");
	expect_488(&gcm, SAVP_OFFER, "no common crypto suite");
	expect_488(&any,
		   "v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n"
		   "m=audio 30000 RTP/AVP 18 9\r\n",
		   "no common codec");
	expect_488(&pcma,
		   "v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n"
		   "m=audio 30000 RTP/AVP 0\r\n",
		   "no PCMA");
	expect_488(&any,
		   "v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n"
		   "m=video 30000 RTP/AVP 96\r\n",
		   "no audio stream");
	expect_488(&any,
		   "v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n"
		   "m=audio 30000 UDP/TLS/RTP/SAVPF 0\r\na=fingerprint:sha-256 AB:CD\r\n",
		   "not supported");
	expect_488(&any,
		   "v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n"
		   "m=audio 30000 RTP/SAVP 0\r\n",
		   "no a=crypto line");
	/* a key one character short: mangled, and said so */
	expect_488(&any,
		   "v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n"
		   "m=audio 30000 RTP/SAVP 0\r\n"
		   "a=crypto:1 AES_CM_128_HMAC_SHA1_80 "
		   "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVB\r\n",
		   "a=crypto tag 1");
	expect_488(&any, "garbage", "the offer's SDP");
	expect_488(&any,
		   "v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 sbc.example\r\nt=0 0\r\n"
		   "m=audio 30000 RTP/AVP 0\r\n",
		   "not an IP address");
}

/* The answer keeps every m= line in its place, refusing the others. */
static void test_answer_other_streams(void **state)
{
	struct psdp_policy p =
		policy(PSDP_SRTP_OPTIONAL, "AES_CM_128_HMAC_SHA1_80", PSDP_CODEC_ANY);
	struct psdp_session s;
	struct psdp_result r;
	char buf[PSDP_BODY_MAX];
	const char *offer =
		"v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n"
		"a=sendonly\r\n"
		"m=video 31000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
		"m=audio 30000 RTP/AVPF 8\r\na=rtcp-mux\r\n"
		"m=image 32000 udptl t38\r\n";
	const char *a, *v, *i;

	psdp_session_init(&s, &p, 1);
	assert_int_equal(answer_text(&s, offer, buf, sizeof(buf), &r), 0);
	v = strstr(buf, "m=video 0 RTP/AVP 96\r\n");
	a = strstr(buf, "m=audio 50000 RTP/AVPF 8\r\n");
	i = strstr(buf, "m=image 0 udptl t38\r\n");
	assert_true(v && a && i && v < a && a < i);
	/* a session-level sendonly is mirrored */
	assert_int_equal(r.dir, PSDP_RECVONLY);
	assert_int_equal(r.remote_dir, PSDP_SENDONLY);
	assert_true(r.rtcp_mux);
	assert_int_equal(r.rtcp_port, 30000);
	assert_int_equal(r.pt, PSDP_PT_PCMA);
	psdp_result_wipe(&r);
	psdp_session_wipe(&s);
}

static void test_directions(void **state)
{
	static const struct {
		const char *attr;
		enum psdp_dir ours;
	} cases[] = {
		{ "a=sendrecv\r\n", PSDP_SENDRECV },
		{ "a=sendonly\r\n", PSDP_RECVONLY },
		{ "a=recvonly\r\n", PSDP_SENDONLY },
		{ "a=inactive\r\n", PSDP_INACTIVE },
		{ "", PSDP_SENDRECV },
	};
	struct psdp_policy p = policy(PSDP_SRTP_OFF, NULL, PSDP_CODEC_ANY);

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		struct psdp_session s;
		struct psdp_result r;
		char offer[512], buf[PSDP_BODY_MAX], want[32];

		snprintf(offer, sizeof(offer), "%s%s", AVP_OFFER, cases[k].attr);
		psdp_session_init(&s, &p, 1);
		assert_int_equal(answer_text(&s, offer, buf, sizeof(buf), &r), 0);
		assert_int_equal(r.dir, cases[k].ours);
		snprintf(want, sizeof(want), "a=%s\r\n", psdp_dir_name(cases[k].ours));
		assert_non_null(strstr(buf, want));
		/* the first G.711 of the offer's list */
		assert_int_equal(r.pt, PSDP_PT_PCMA);
		psdp_session_wipe(&s);
	}
}

/* ---- the caller's checks of an answer ---- */

static void expect_bad_answer(enum psdp_srtp srtp, const char *answer, const char *why_part)
{
	struct psdp_policy p = policy(
		srtp, srtp == PSDP_SRTP_OFF ? NULL : "AES_CM_128_HMAC_SHA1_80", PSDP_PT_PCMU);
	struct psdp_session s;
	struct psdp_result r;
	char offer[PSDP_BODY_MAX], why[300];
	size_t len;

	psdp_session_init(&s, &p, 1);
	assert_int_equal(psdp_offer(&s, &caller_local, PSDP_SENDRECV, offer, sizeof(offer), &len),
			 0);
	assert_int_equal(psdp_take_answer(&s, slice_from(answer), &r, why, sizeof(why)), EBADMSG);
	if (!strstr(why, why_part))
		fail_msg("'%s' lacks '%s'", why, why_part);
	assert_null(strstr(why, "PS1u"));
	psdp_session_wipe(&s);
}

#define ANS_HEAD "v=0\r\no=- 5 5 IN IP4 203.0.113.9\r\ns=-\r\nc=IN IP4 203.0.113.9\r\nt=0 0\r\n"

static void test_caller_checks(void **state)
{
	expect_bad_answer(PSDP_SRTP_MANDATORY, ANS_HEAD "m=audio 20000 RTP/AVP 0\r\n",
			  "profile is RTP/AVP");
	expect_bad_answer(PSDP_SRTP_OFF,
			  ANS_HEAD "m=audio 20000 RTP/SAVP 0\r\n"
				   "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" K30 "\r\n",
			  "profile is RTP/SAVP");
	expect_bad_answer(PSDP_SRTP_MANDATORY,
			  ANS_HEAD "m=audio 20000 RTP/SAVP 0\r\n"
				   "a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:" K30 "\r\n",
			  "tag 7 was not offered");
	expect_bad_answer(PSDP_SRTP_MANDATORY,
			  ANS_HEAD "m=audio 20000 RTP/SAVP 0\r\n"
				   "a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:" K30 "\r\n",
			  "we offered AES_CM_128_HMAC_SHA1_80");
	expect_bad_answer(PSDP_SRTP_MANDATORY,
			  ANS_HEAD "m=audio 20000 RTP/SAVP 0\r\n"
				   "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" K30 "\r\n"
				   "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" K30B "\r\n",
			  "RFC 4568 allows one");
	expect_bad_answer(PSDP_SRTP_MANDATORY, ANS_HEAD "m=audio 20000 RTP/SAVP 0\r\n",
			  "no a=crypto line");
	expect_bad_answer(PSDP_SRTP_OFF, ANS_HEAD "m=audio 20000 RTP/AVP 8\r\n", "no PCMU");
	expect_bad_answer(PSDP_SRTP_OFF, ANS_HEAD "m=audio 0 RTP/AVP 0\r\n",
			  "refuses the audio stream");
	expect_bad_answer(PSDP_SRTP_OFF,
			  ANS_HEAD "m=audio 20000 RTP/AVP 0\r\nm=video 0 RTP/AVP 96\r\n",
			  "2 m= lines");
	expect_bad_answer(PSDP_SRTP_OFF, "v=0\r\nm=audio 1 RTP/AVP 0\r\n", "the answer's SDP");
	expect_bad_answer(PSDP_SRTP_OFF, ANS_HEAD "m=audio 20000 RTP/AVP 0\r\na=rtcp:99999\r\n",
			  "a=rtcp");
}

/* The old hold (c=0.0.0.0) and an inactive answer. */
static void test_caller_hold_answers(void **state)
{
	struct psdp_policy p = policy(PSDP_SRTP_OFF, NULL, PSDP_PT_PCMU);
	struct psdp_session s;
	struct psdp_result r;
	char offer[PSDP_BODY_MAX], why[300];
	size_t len;

	psdp_session_init(&s, &p, 1);
	assert_int_equal(psdp_offer(&s, &caller_local, PSDP_SENDRECV, offer, sizeof(offer), &len),
			 0);
	assert_int_equal(psdp_take_answer(&s,
					  slice_from("v=0\r\no=- 5 5 IN IP4 203.0.113.9\r\ns=-\r\n"
						     "c=IN IP4 0.0.0.0\r\nt=0 0\r\n"
						     "m=audio 20000 RTP/AVP 0\r\na=inactive\r\n"),
					  &r, why, sizeof(why)),
			 0);
	assert_string_equal(r.addr, "0.0.0.0");
	assert_int_equal(r.dir, PSDP_INACTIVE);
	psdp_session_wipe(&s);
}

/* ---- other implementations' SDP ---- */

/* baresip 1.x with ;mediaenc=srtp-mand: RTP/SAVP, its own order of suites,
 * a=rtcp-mux offered, telephone-event and a dynamic codec first. */
static const char baresip_offer[] = "v=0\r\n"
				    "o=- 1234566917 1234566918 IN IP4 127.0.0.1\r\n"
				    "s=-\r\n"
				    "c=IN IP4 127.0.0.1\r\n"
				    "t=0 0\r\n"
				    "a=tool:baresip 1.1.0\r\n"
				    "m=audio 10000 RTP/SAVP 96 0 8 101\r\n"
				    "b=AS:64\r\n"
				    "a=rtpmap:96 opus/48000/2\r\n"
				    "a=fmtp:96 stereo=1;sprop-stereo=1\r\n"
				    "a=rtpmap:0 PCMU/8000\r\n"
				    "a=rtpmap:8 PCMA/8000\r\n"
				    "a=rtpmap:101 telephone-event/8000\r\n"
				    "a=fmtp:101 0-15\r\n"
				    "a=sendrecv\r\n"
				    "a=label:1\r\n"
				    "a=rtcp-rsize\r\n"
				    "a=ssrc:1234 cname:abc\r\n"
				    "a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:" K30 "\r\n"
				    "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:" K30B "\r\n"
				    "a=crypto:3 AES_256_CM_HMAC_SHA1_32 inline:" K46 "\r\n"
				    "a=ptime:20\r\n";

/* rtpengine's answer toward a secure peer: its own o=, a=rtcp with the
 * address, one crypto line, a=ice-lite stripped, sendrecv at media level. */
static const char rtpengine_answer_fmt[] = "v=0\r\n"
					   "o=- 1545997027 1 IN IP4 203.0.113.1\r\n"
					   "s=tester\r\n"
					   "t=0 0\r\n"
					   "m=audio 30004 RTP/SAVP 0\r\n"
					   "c=IN IP4 203.0.113.1\r\n"
					   "a=rtpmap:0 PCMU/8000\r\n"
					   "a=sendrecv\r\n"
					   "a=rtcp:30005 IN IP4 203.0.113.1\r\n"
					   "a=crypto:%u %s inline:%s\r\n";

static void test_baresip_offer(void **state)
{
	struct psdp_policy p =
		policy(PSDP_SRTP_MANDATORY, "AES_CM_128_HMAC_SHA1_80,AES_CM_128_HMAC_SHA1_32",
		       PSDP_CODEC_ANY);
	struct psdp_session s;
	struct psdp_result r;
	char buf[PSDP_BODY_MAX];

	psdp_session_init(&s, &p, 1);
	assert_int_equal(answer_text(&s, baresip_offer, buf, sizeof(buf), &r), 0);
	/* our preference: _80 (tag 2) though baresip lists _32 first */
	assert_int_equal(r.suite, SUITE_AES_CM_128_HMAC_SHA1_80);
	assert_non_null(strstr(buf, "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:"));
	assert_int_equal(r.pt, PSDP_PT_PCMU); /* the first G.711 in the list */
	assert_non_null(strstr(buf, "m=audio 50000 RTP/SAVP 0\r\n"));
	psdp_result_wipe(&r);
	psdp_session_wipe(&s);
}

static void test_rtpengine_answer(void **state)
{
	struct psdp_policy p =
		policy(PSDP_SRTP_MANDATORY, "AES_CM_128_HMAC_SHA1_32,AES_CM_128_HMAC_SHA1_80",
		       PSDP_PT_PCMU);
	struct psdp_session s;
	struct psdp_result r;
	char offer[PSDP_BODY_MAX], answer[1024], why[300];
	size_t len;

	psdp_session_init(&s, &p, 1);
	assert_int_equal(psdp_offer(&s, &caller_local, PSDP_SENDRECV, offer, sizeof(offer), &len),
			 0);
	snprintf(answer, sizeof(answer), rtpengine_answer_fmt, 2u, "AES_CM_128_HMAC_SHA1_80", K30);
	assert_int_equal(psdp_take_answer(&s, slice_from(answer), &r, why, sizeof(why)), 0);
	assert_int_equal(r.suite, SUITE_AES_CM_128_HMAC_SHA1_80);
	assert_string_equal(r.addr, "203.0.113.1");
	assert_int_equal(r.port, 30004);
	assert_int_equal(r.rtcp_port, 30005);
	assert_int_equal(r.dir, PSDP_SENDRECV);
	psdp_result_wipe(&r);
	psdp_session_wipe(&s);
}

/* ---- srtpbridge's own SDP: the golden files of --explain ---- */

/* Every indented block after a line ending in ':' that starts with v=0. */
static size_t golden_blocks(const char *text, char blocks[][4096], size_t max)
{
	size_t n = 0;
	const char *p = text;

	while (p && *p && n < max) {
		const char *line = p, *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);

		p = nl ? nl + 1 : NULL;
		if (len == 5 && memcmp(line, "  v=0", 5) == 0) {
			size_t o = 0;
			const char *q = line;

			while (q && strncmp(q, "  ", 2) == 0 && q[2] != ' ') {
				const char *e = strchr(q, '\n');
				size_t l = e ? (size_t)(e - q) : strlen(q);

				if (o + l + 2 < sizeof(blocks[0])) {
					memcpy(blocks[n] + o, q + 2, l - 2);
					o += l - 2;
					blocks[n][o++] = '\r';
					blocks[n][o++] = '\n';
				}
				q = e ? e + 1 : NULL;
			}
			blocks[n][o] = '\0';
			n++;
			p = q;
		}
	}
	return n;
}

static void test_golden_files(void **state)
{
	const char *dirpath = TEST_SOURCE_DIR "/tests/integration/golden/explain";
	DIR *dir = opendir(dirpath);
	struct dirent *e;
	static char blocks[8][4096];
	size_t files = 0, parsed = 0;

	assert_non_null(dir);
	while ((e = readdir(dir)) != NULL) {
		char path[1024], text[65536];
		size_t n, nb;
		FILE *f;

		if (!strstr(e->d_name, ".txt"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dirpath, e->d_name);
		f = fopen(path, "r");
		assert_non_null(f);
		n = fread(text, 1, sizeof(text) - 1, f);
		fclose(f);
		text[n] = '\0';
		files++;
		nb = golden_blocks(text, blocks, 8);
		for (size_t b = 0; b < nb; b++) {
			struct psdp_remote r;
			char why[300];
			struct psdp_policy pols[3] = {
				policy(PSDP_SRTP_OFF, NULL, PSDP_CODEC_ANY),
				policy(PSDP_SRTP_OPTIONAL, "AES_CM_128_HMAC_SHA1_80",
				       PSDP_CODEC_ANY),
				policy(PSDP_SRTP_MANDATORY, "AES_CM_128_HMAC_SHA1_32",
				       PSDP_PT_PCMA),
			};

			if (psdp_parse(&r, slice_from(blocks[b]), why, sizeof(why)) == 0) {
				parsed++;
				/* srtpbridge's SDP names its streams plainly */
				if (r.has_audio)
					assert_true(r.port > 0);
			}
			/* whatever it is, answering it is a clear answer */
			for (int k = 0; k < 3; k++) {
				struct psdp_session s;
				struct psdp_result res;
				char buf[PSDP_BODY_MAX];
				size_t len = 0;

				psdp_session_init(&s, &pols[k], 3);
				assert_int_equal(psdp_answer(&s, &answerer_local,
							     slice_from(blocks[b]), buf,
							     sizeof(buf), &len, &res),
						 0);
				assert_true(res.status == 0 || res.status == 488);
				if (res.status == 488)
					assert_true(res.reason[0] != '\0');
				/* the golden files redact keys: no SRTP answer can be made */
				if (res.status == 0)
					assert_false(res.secure);
				psdp_session_wipe(&s);
			}
		}
	}
	closedir(dir);
	assert_true(files >= 5);
	assert_true(parsed >= 10);
}

/* ---- garbage ---- */

static void test_garbage(void **state)
{
	static const char *const inputs[] = {
		"",
		"\r\n",
		"v=0",
		"v=0\r\no=\r\n",
		"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 99999 RTP/AVP 0\r\n",
		"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\n",
		"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP6 1.2.3.4\r\nt=0 0\r\n"
		"m=audio 1 RTP/AVP 0\r\n",
		"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\n"
		"m=audio 1 RTP/SAVP 0\r\na=crypto\r\na=crypto:\r\na=crypto:1\r\n"
		"a=crypto:1 AES_CM_128_HMAC_SHA1_80\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 "
		"inline:\r\n",
		"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\n"
		"m=audio 1 RTP/AVP 0\r\na=rtcp:\r\n",
		"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\n"
		"m=audio 1 RTP/AVP\r\n",
	};
	struct psdp_policy p =
		policy(PSDP_SRTP_OPTIONAL, "AES_CM_128_HMAC_SHA1_80", PSDP_CODEC_ANY);

	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		struct psdp_session s;
		struct psdp_result r;
		char buf[PSDP_BODY_MAX];
		size_t len = 0;

		psdp_session_init(&s, &p, 1);
		assert_int_equal(psdp_answer(&s, &answerer_local, slice_from(inputs[i]), buf,
					     sizeof(buf), &len, &r),
				 0);
		if (r.status != 488)
			fail_msg("input %zu not refused", i);
		psdp_session_wipe(&s);
	}
}

/* ---- the X-Srtpprobe-Heard header and the verdicts ---- */

static void test_heard_header(void **state)
{
	struct ua_heard h = { .present = true, .tone = "B", .frames = 123, .packets = 150 }, g;
	char buf[128];

	ua_heard_format(&h, buf, sizeof(buf));
	assert_string_equal(buf, "tone=B; frames=123; packets=150");
	assert_int_equal(ua_heard_parse(buf, &g), 0);
	assert_true(g.present);
	assert_string_equal(g.tone, "B");
	assert_int_equal(g.frames, 123);
	assert_int_equal(g.packets, 150);
	assert_int_equal(ua_heard_parse(" packets = 7 ;tone=none;x=y; frames=1", &g), 0);
	assert_string_equal(g.tone, "none");
	assert_int_equal(g.packets, 7);
	assert_int_equal(ua_heard_parse("tone=Silence", &g), 0);
	assert_string_equal(g.tone, "silence");
	assert_int_equal(ua_heard_parse("frames=1; packets=2", &g), EINVAL);
	assert_false(g.present);
	assert_int_equal(ua_heard_parse("tone=D", &g), EINVAL);
	assert_int_equal(ua_heard_parse("tone=A; frames=99999999999999999999", &g), 0);
	assert_int_equal(g.frames, 0);
	assert_int_equal(ua_heard_parse(";;;=;tone", &g), EINVAL);
	assert_int_equal(ua_heard_parse("", &g), EINVAL);
}

static const char *judge(enum ua_role role, enum pmedia_heard heard, const char *far_tone,
			 int *exit_status)
{
	struct ua_report r;

	memset(&r, 0, sizeof(r));
	r.role = role;
	r.status = 200;
	r.media = true;
	r.heard = heard;
	if (far_tone) {
		r.far.present = true;
		snprintf(r.far.tone, sizeof(r.far.tone), "%s", far_tone);
	}
	ua_judge(&r);
	*exit_status = r.exit_status;
	return r.verdict;
}

static void test_verdicts(void **state)
{
	static const struct {
		enum ua_role role;
		enum pmedia_heard heard;
		const char *far;
		const char *verdict;
		int exit_status;
	} t[] = {
		{ UA_CALLER, PMEDIA_HEARD_FAR, NULL, "two-way audio", 0 },
		{ UA_CALLER, PMEDIA_HEARD_FAR, "A", "two-way audio", 0 },
		{ UA_CALLER, PMEDIA_HEARD_C, "none", "far end does not hear us", 1 },
		{ UA_CALLER, PMEDIA_HEARD_OWN, NULL, "our own audio comes back", 1 },
		{ UA_CALLER, PMEDIA_HEARD_NOTHING, NULL, "we do not hear the far end", 1 },
		{ UA_CALLER, PMEDIA_HEARD_NOTHING, "A", "we do not hear the far end", 1 },
		{ UA_CALLER, PMEDIA_HEARD_NOTHING, "none", "no audio", 1 },
		{ UA_CALLER, PMEDIA_HEARD_SILENCE, "silence", "no audio", 1 },
		{ UA_CALLER, PMEDIA_HEARD_OTHER, "A", "we do not hear the far end", 1 },
		{ UA_ANSWERER, PMEDIA_HEARD_FAR, "B", "two-way audio", 0 },
		{ UA_ANSWERER, PMEDIA_HEARD_FAR, "C", "two-way audio", 0 },
		{ UA_ANSWERER, PMEDIA_HEARD_FAR, NULL, "we hear the far end", 0 },
		{ UA_ANSWERER, PMEDIA_HEARD_FAR, "none", "far end does not hear us", 1 },
		{ UA_ANSWERER, PMEDIA_HEARD_FAR, "A", "far end does not hear us", 1 },
		{ UA_ANSWERER, PMEDIA_HEARD_NOTHING, "B", "we do not hear the far end", 1 },
		{ UA_ANSWERER, PMEDIA_HEARD_NOTHING, NULL, "we do not hear the far end", 1 },
		{ UA_ANSWERER, PMEDIA_HEARD_NOTHING, "none", "no audio", 1 },
		{ UA_ANSWERER, PMEDIA_HEARD_OWN, "none", "our own audio comes back", 1 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int status = -1;
		const char *v = judge(t[i].role, t[i].heard, t[i].far, &status);

		if (strcmp(v, t[i].verdict) != 0 || status != t[i].exit_status)
			fail_msg("case %zu: '%s' (%d), want '%s' (%d)", i, v, status, t[i].verdict,
				 t[i].exit_status);
	}
	/* a SIP failure is judged before any audio */
	{
		struct ua_report r;

		memset(&r, 0, sizeof(r));
		r.status = 488;
		ua_judge(&r);
		assert_string_equal(r.verdict, "SIP failure");
		assert_int_equal(r.exit_status, 2);
		r.status = 200;
		r.media = true;
		r.usage_failure = true;
		ua_judge(&r);
		assert_int_equal(r.exit_status, 3);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_suites),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_plain_round_trip),
		cmocka_unit_test(test_answer_refusals),
		cmocka_unit_test(test_answer_other_streams),
		cmocka_unit_test(test_directions),
		cmocka_unit_test(test_caller_checks),
		cmocka_unit_test(test_caller_hold_answers),
		cmocka_unit_test(test_baresip_offer),
		cmocka_unit_test(test_rtpengine_answer),
		cmocka_unit_test(test_golden_files),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_heard_header),
		cmocka_unit_test(test_verdicts),
	};

	return cmocka_run_group_tests_name("probe_sdp", tests, NULL, NULL);
}
