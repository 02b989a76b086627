/* SDES negotiation matrices: suites and crypto_select, srtcp modes, MKI and
 * lifetime lines, unsupported parameters, 488 reasons, our offers, and
 * checking the peer's answer. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "srtpbridge/sdes_policy.h"

#define K30  "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"
#define K30B "NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj"
#define L80  "AES_CM_128_HMAC_SHA1_80 inline:" K30
#define L32  "AES_CM_128_HMAC_SHA1_32 inline:" K30B

static struct sdes_policy policy(const char *suites, enum crypto_select sel, enum srtcp_mode rtcp)
{
	struct sdes_policy p = { .select = sel, .srtcp = rtcp, .padding = true };
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", suites);
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
		assert_int_equal(suite_from_name(t, strlen(t), &p.suites[p.nsuites++]), 0);
	return p;
}

/* Answers lines separated by '\n'. */
static void answer(const struct sdes_policy *p, const char *text, struct sdes_answer *a)
{
	static char copy[32768];
	struct slice lines[128];
	size_t n = 0;
	char *save = NULL;

	snprintf(copy, sizeof(copy), "%s", text);
	for (char *t = strtok_r(copy, "\n", &save); t; t = strtok_r(NULL, "\n", &save)) {
		assert_true(n < 128);
		lines[n++] = slice_from(t);
	}
	assert_int_equal(sdes_policy_answer(p, lines, n, a), 0);
	/* no key of the offer ever reaches a reason */
	assert_null(strstr(a->reason, "PS1u"));
	assert_null(strstr(a->reason, "NzB4"));
}

static void expect_suite(const struct sdes_policy *p, const char *text, enum suite_id want,
			 uint32_t tag)
{
	struct sdes_answer a;

	answer(p, text, &a);
	if (a.status)
		fail_msg("488 (%s) for:\n%s", a.reason, text);
	assert_int_equal(a.answer.suite, want);
	assert_int_equal(a.answer.tag, tag);
	assert_int_equal(a.offer.tag, tag);
	assert_int_equal(a.answer.nkeys, 1);
	assert_int_equal(a.answer.keys[0].keysalt.len, suite_keysalt_len(want));
	/* our key is fresh, not the offer's */
	assert_false(secret_equal(&a.answer.keys[0].keysalt, &a.offer.keys[0].keysalt));
	sdes_answer_wipe(&a);
}

static void expect_488(const struct sdes_policy *p, const char *text, const char *reason)
{
	struct sdes_answer a;

	answer(p, text, &a);
	assert_int_equal(a.status, 488);
	if (strcmp(a.reason, reason) != 0)
		fail_msg("reason '%s', want '%s'", a.reason, reason);
	sdes_answer_wipe(&a);
}

static void test_suite_matrix(void **state)
{
	struct sdes_policy only80 =
		policy("AES_CM_128_HMAC_SHA1_80", CRYPTO_SELECT_LOCAL, SRTCP_ENCRYPTED);
	struct sdes_policy only32 =
		policy("AES_CM_128_HMAC_SHA1_32", CRYPTO_SELECT_LOCAL, SRTCP_ENCRYPTED);

	/* 80 only against 32 only, both ways: 488 with both lists */
	expect_488(&only80, "1 " L32,
		   "no common crypto suite: offered AES_CM_128_HMAC_SHA1_32; "
		   "allowed AES_CM_128_HMAC_SHA1_80");
	expect_488(&only32, "1 " L80,
		   "no common crypto suite: offered AES_CM_128_HMAC_SHA1_80; "
		   "allowed AES_CM_128_HMAC_SHA1_32");
	expect_suite(&only80, "1 " L80, SUITE_AES_CM_128_HMAC_SHA1_80, 1);
	expect_suite(&only32, "1 " L80 "\n2 " L32, SUITE_AES_CM_128_HMAC_SHA1_32, 2);

	/* 80+32 in either order, under both crypto_select values */
	for (int sel = 0; sel < 2; sel++) {
		struct sdes_policy pref80 =
			policy("AES_CM_128_HMAC_SHA1_80,AES_CM_128_HMAC_SHA1_32",
			       (enum crypto_select)sel, SRTCP_ENCRYPTED);
		struct sdes_policy pref32 =
			policy("AES_CM_128_HMAC_SHA1_32,AES_CM_128_HMAC_SHA1_80",
			       (enum crypto_select)sel, SRTCP_ENCRYPTED);
		bool local = sel == CRYPTO_SELECT_LOCAL;

		expect_suite(&pref80, "1 " L80 "\n2 " L32, SUITE_AES_CM_128_HMAC_SHA1_80, 1);
		expect_suite(&pref80, "1 " L32 "\n2 " L80,
			     local ? SUITE_AES_CM_128_HMAC_SHA1_80 : SUITE_AES_CM_128_HMAC_SHA1_32,
			     local ? 2 : 1);
		expect_suite(&pref32, "1 " L80 "\n2 " L32,
			     local ? SUITE_AES_CM_128_HMAC_SHA1_32 : SUITE_AES_CM_128_HMAC_SHA1_80,
			     local ? 2 : 1);
		expect_suite(&pref32, "1 " L32 "\n2 " L80, SUITE_AES_CM_128_HMAC_SHA1_32, 1);
	}

	/* unknown and disallowed suites are passed over, not fatal */
	expect_suite(&only80, "1 F8_128_HMAC_SHA1_80 inline:" K30 "\n5 " L80,
		     SUITE_AES_CM_128_HMAC_SHA1_80, 5);
	expect_488(&only80, "1 F8_128_HMAC_SHA1_80 inline:" K30 "\n2 " L32,
		   "no common crypto suite: offered F8_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32; "
		   "allowed AES_CM_128_HMAC_SHA1_80");
	expect_488(&only80, "", "no a=crypto line in the offer (RTP/SAVP needs SDES keys)");
}

static void test_srtcp_matrix(void **state)
{
	static const char *const plain = "1 " L80;
	static const char *const unenc = "1 " L80 " UNENCRYPTED_SRTCP";
	struct sdes_policy enc = policy("AES_CM_128_HMAC_SHA1_80", 0, SRTCP_ENCRYPTED);
	struct sdes_policy une = policy("AES_CM_128_HMAC_SHA1_80", 0, SRTCP_UNENCRYPTED);
	struct sdes_policy eit = policy("AES_CM_128_HMAC_SHA1_80", 0, SRTCP_EITHER);
	struct sdes_answer a;

	answer(&enc, plain, &a);
	assert_int_equal(a.status, 0);
	assert_false(a.answer.unencrypted_srtcp);
	sdes_answer_wipe(&a);
	expect_488(&enc, unenc,
		   "no acceptable a=crypto line: tag 1 AES_CM_128_HMAC_SHA1_80 has "
		   "UNENCRYPTED_SRTCP and srtcp = encrypted");
	expect_488(&une, plain,
		   "no acceptable a=crypto line: tag 1 AES_CM_128_HMAC_SHA1_80 encrypts SRTCP "
		   "and srtcp = unencrypted");
	answer(&une, unenc, &a);
	assert_int_equal(a.status, 0);
	assert_true(a.answer.unencrypted_srtcp);
	sdes_answer_wipe(&a);
	/* either echoes the offer */
	answer(&eit, plain, &a);
	assert_int_equal(a.status, 0);
	assert_false(a.answer.unencrypted_srtcp);
	sdes_answer_wipe(&a);
	answer(&eit, unenc, &a);
	assert_int_equal(a.status, 0);
	assert_true(a.answer.unencrypted_srtcp);
	sdes_answer_wipe(&a);
	/* a skipped line does not hide a good one after it */
	expect_suite(&enc, "1 " L80 " UNENCRYPTED_SRTCP\n2 " L80, SUITE_AES_CM_128_HMAC_SHA1_80, 2);
}

static void test_mki_and_lifetime(void **state)
{
	struct sdes_policy p = policy("AES_CM_128_HMAC_SHA1_80", 0, SRTCP_ENCRYPTED);
	struct sdes_answer a;
	char buf[SDES_LINE_MAX];

	answer(&p, "1 " L80 "|2^20|1:4", &a);
	assert_int_equal(a.status, 0);
	assert_true(a.offer.keys[0].has_mki);
	assert_true(a.answer.keys[0].has_mki);
	assert_int_equal(a.answer.keys[0].mki_len, 4); /* the offer's length */
	assert_int_equal(a.offer.keys[0].lifetime, 1 << 20);
	assert_int_equal(a.answer.keys[0].lifetime, 0); /* none configured */
	sdes_answer_wipe(&a);

	p.lifetime = 1ULL << 31;
	p.lifetime_pow2 = true;
	answer(&p, "3 " L80 "|1048576", &a);
	assert_int_equal(a.status, 0);
	assert_false(a.answer.keys[0].has_mki);
	sdes_print(buf, sizeof(buf), &a.answer, p.padding);
	assert_memory_equal(buf, "3 AES_CM_128_HMAC_SHA1_80 inline:", 33);
	assert_non_null(strstr(buf, "|2^31"));
	sdes_answer_wipe(&a);
}

static void test_unsupported_lines(void **state)
{
	struct sdes_policy p = policy("AES_CM_128_HMAC_SHA1_80", 0, SRTCP_ENCRYPTED);
	static const struct {
		const char *extra, *reason;
	} cases[] = {
		{ " UNAUTHENTICATED_SRTP", "asks for UNAUTHENTICATED_SRTP" },
		{ " UNENCRYPTED_SRTP", "asks for UNENCRYPTED_SRTP" },
		{ " KDR=1", "asks for KDR=1 (only 0 is supported)" },
		{ " FEC_ORDER=SRTP_FEC", "asks for FEC_ORDER or FEC_KEY" },
		{ " FEC_KEY=inline:" K30B, "asks for FEC_ORDER or FEC_KEY" },
		{ "|1:4;inline:" K30B "|2:4", "carries more than one key" },
		{ " X-NEW-THING=1", "has unknown mandatory parameter X-NEW-THING" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char line[512], reason[512];

		snprintf(line, sizeof(line), "1 " L80 "%s", cases[i].extra);
		snprintf(reason, sizeof(reason),
			 "no acceptable a=crypto line: tag 1 AES_CM_128_HMAC_SHA1_80 %s",
			 cases[i].reason);
		expect_488(&p, line, reason);
		/* and with a good line after it, the good line is chosen */
		snprintf(line, sizeof(line), "1 " L80 "%s\n2 " L80, cases[i].extra);
		expect_suite(&p, line, SUITE_AES_CM_128_HMAC_SHA1_80, 2);
	}
	/* supported: KDR=0, WSH, an optional extension */
	expect_suite(&p, "4 " L80 " KDR=0 WSH=256 -x-ext", SUITE_AES_CM_128_HMAC_SHA1_80, 4);
}

static void test_mangled_keys_are_explained(void **state)
{
	struct sdes_policy p =
		policy("AES_CM_128_HMAC_SHA1_80,AES_CM_128_HMAC_SHA1_32", 0, SRTCP_ENCRYPTED);

	/* An ALG touched one character: the reason says so, and names no key. */
	expect_488(&p, "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkp PywjNWhcYD0mXXtxaVBR",
		   "a=crypto tag 1: inline key decodes to 15 bytes; AES_CM_128_HMAC_SHA1_80 needs "
		   "30 (possible SIP ALG mangling)");
	/* a second key pasted where a parameter goes is not echoed */
	expect_488(&p, "1 " L80 " " K30B,
		   "no acceptable a=crypto line: tag 1 AES_CM_128_HMAC_SHA1_80 has an unknown "
		   "mandatory session parameter");
	expect_488(&p, "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkp%ywjNWhcYD0mXXtxaVBR",
		   "a=crypto tag 1: inline key is not valid base64 (possible SIP ALG mangling)");
	expect_488(&p, "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtx",
		   "a=crypto tag 1: inline key decodes to 27 bytes; AES_CM_128_HMAC_SHA1_80 needs "
		   "30 (possible SIP ALG mangling)");
	/* a mangled line and a good one: the good one wins */
	expect_suite(&p,
		     "1 AES_CM_128_HMAC_SHA1_80 "
		     "inline:PS1u%QCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\n2 " L32,
		     SUITE_AES_CM_128_HMAC_SHA1_32, 2);
}

static void test_many_lines(void **state)
{
	struct sdes_policy p = policy("AES_CM_128_HMAC_SHA1_80", 0, SRTCP_ENCRYPTED);
	char *text = malloc(32768);
	size_t n = 0;

	assert_non_null(text);
	for (int i = 1; i <= 99; i++)
		n += (size_t)sprintf(text + n, "%d AES_CM_128_HMAC_SHA1_32 inline:" K30B "\n", i);
	n += (size_t)sprintf(text + n, "100 " L80 "\n");
	expect_suite(&p, text, SUITE_AES_CM_128_HMAC_SHA1_80, 100);
	/* 100 lines of nothing usable: one 488 with a bounded reason */
	n = 0;
	for (int i = 1; i <= 100; i++)
		n += (size_t)sprintf(text + n, "%d AES_CM_128_HMAC_SHA1_32 inline:" K30B "\n", i);
	{
		struct sdes_answer a;

		answer(&p, text, &a);
		assert_int_equal(a.status, 488);
		assert_true(strlen(a.reason) < SDES_REASON_MAX);
		assert_memory_equal(a.reason, "no common crypto suite: offered ", 32);
	}
	free(text);
}

static void test_offer(void **state)
{
	struct sdes_policy p =
		policy("AEAD_AES_256_GCM,AES_CM_128_HMAC_SHA1_80,AES_CM_128_HMAC_SHA1_32", 0,
		       SRTCP_UNENCRYPTED);
	struct sdes_crypto c[SUITE_COUNT];
	char buf[SDES_LINE_MAX];
	size_t n;

	p.padding = false;
	p.lifetime = 1ULL << 31;
	p.lifetime_pow2 = true;
	assert_int_equal(sdes_policy_offer(&p, c, SUITE_COUNT, &n), 0);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(c[i].tag, i + 1);
		assert_int_equal(c[i].suite, p.suites[i]);
		assert_int_equal(c[i].keys[0].keysalt.len, suite_keysalt_len(p.suites[i]));
		assert_true(c[i].unencrypted_srtcp);
		for (size_t j = 0; j < i; j++)
			assert_false(secret_equal(&c[i].keys[0].keysalt, &c[j].keys[0].keysalt));
	}
	sdes_print(buf, sizeof(buf), &c[0], p.padding);
	assert_memory_equal(buf, "1 AEAD_AES_256_GCM inline:", 26);
	assert_null(strchr(buf, '=')); /* crypto_padding = no */
	assert_non_null(strstr(buf, "|2^31 UNENCRYPTED_SRTCP"));
	assert_int_equal(sdes_policy_offer(&p, c, 2, &n), ENOSPC);
	for (size_t i = 0; i < 3; i++)
		sdes_wipe(&c[i]);
}

static int check(const struct sdes_policy *p, const struct sdes_crypto *offered, size_t n,
		 const char *text, size_t *chosen, char *why)
{
	struct slice lines[4];
	size_t nl = 0;
	static char copy[4096];
	char *save = NULL;
	struct sdes_crypto ans;
	int err;

	snprintf(copy, sizeof(copy), "%s", text);
	for (char *t = strtok_r(copy, "\n", &save); t; t = strtok_r(NULL, "\n", &save))
		lines[nl++] = slice_from(t);
	err = sdes_policy_check_answer(p, offered, n, lines, nl, chosen, &ans, why, 256);
	assert_null(strstr(why, "PS1u"));
	sdes_wipe(&ans);
	return err;
}

static void test_check_answer(void **state)
{
	struct sdes_policy p =
		policy("AES_CM_128_HMAC_SHA1_80,AES_CM_128_HMAC_SHA1_32", 0, SRTCP_ENCRYPTED);
	struct sdes_crypto c[2];
	size_t n, chosen = 99;
	char why[256] = "";

	assert_int_equal(sdes_policy_offer(&p, c, 2, &n), 0);
	assert_int_equal(check(&p, c, n, "2 " L32, &chosen, why), 0);
	assert_int_equal(chosen, 1);
	assert_int_equal(check(&p, c, n, "1 " L80 "|2^20|7:2", &chosen, why), 0);
	assert_int_equal(chosen, 0);

	assert_int_equal(check(&p, c, n, "", &chosen, why), EBADMSG);
	assert_string_equal(why, "the answer has no a=crypto line");
	assert_int_equal(check(&p, c, n, "1 " L80 "\n2 " L32, &chosen, why), EBADMSG);
	assert_string_equal(why, "the answer has 2 a=crypto lines; RFC 4568 allows one");
	assert_int_equal(check(&p, c, n, "3 " L80, &chosen, why), EBADMSG);
	assert_string_equal(why, "the answer's a=crypto tag 3 was not offered");
	assert_int_equal(check(&p, c, n, "1 " L32, &chosen, why), EBADMSG);
	assert_string_equal(why, "the answer's a=crypto tag 1 has AES_CM_128_HMAC_SHA1_32; we "
				 "offered AES_CM_128_HMAC_SHA1_80 with it");
	assert_int_equal(check(&p, c, n, "1 AES_CM_128_HMAC_SHA1_80 inline:PS1u!", &chosen, why),
			 EBADMSG);
	assert_string_equal(why, "the answer's a=crypto inline key is not valid base64 (possible "
				 "SIP ALG mangling)");
	assert_int_equal(check(&p, c, n, "1 " L80 " UNENCRYPTED_SRTCP", &chosen, why), EBADMSG);
	assert_string_equal(why, "the answer's a=crypto tag 1 has UNENCRYPTED_SRTCP and srtcp = "
				 "encrypted");
	assert_int_equal(check(&p, c, n, "1 " L80 " UNAUTHENTICATED_SRTP", &chosen, why), EBADMSG);
	assert_string_equal(why, "the answer's a=crypto tag 1 asks for UNAUTHENTICATED_SRTP");
	sdes_wipe(&c[0]);
	sdes_wipe(&c[1]);
}

static void test_from_trunk(void **state)
{
	struct config_trunk t = { 0 };
	struct sdes_policy p;

	t.suites[0] = SUITE_AEAD_AES_128_GCM;
	t.suites[1] = SUITE_AES_CM_128_HMAC_SHA1_80;
	t.nsuites = 2;
	t.crypto_select = CRYPTO_SELECT_OFFERER;
	t.srtcp = SRTCP_EITHER;
	t.crypto_padding = false;
	t.crypto_lifetime = 1000;
	sdes_policy_from_trunk(&p, &t);
	assert_int_equal(p.nsuites, 2);
	assert_int_equal(p.suites[0], SUITE_AEAD_AES_128_GCM);
	assert_int_equal(p.select, CRYPTO_SELECT_OFFERER);
	assert_int_equal(p.srtcp, SRTCP_EITHER);
	assert_false(p.padding);
	assert_int_equal(p.lifetime, 1000);
	assert_false(p.lifetime_pow2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_suite_matrix),
		cmocka_unit_test(test_srtcp_matrix),
		cmocka_unit_test(test_mki_and_lifetime),
		cmocka_unit_test(test_unsupported_lines),
		cmocka_unit_test(test_mangled_keys_are_explained),
		cmocka_unit_test(test_many_lines),
		cmocka_unit_test(test_offer),
		cmocka_unit_test(test_check_answer),
		cmocka_unit_test(test_from_trunk),
	};

	return cmocka_run_group_tests_name("sdes_policy", tests, NULL, NULL);
}
