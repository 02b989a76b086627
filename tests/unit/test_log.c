/* Logging: logfmt quoting, levels, journal priority prefixes, and redaction
 * of SDES keys on every path a string can take into a line. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "srtpbridge/log.h"
#include "srtpbridge/secret.h"

#define LOG_MODULE "test"

/* A real key as it appears in SDP (RFC 4568 section 9.1's example). */
#define KEY "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"

static int pipefd[2];

static int setup(void **state)
{
	assert_int_equal(pipe(pipefd), 0);
	fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
	unsetenv("JOURNAL_STREAM");
	log_init(pipefd[1]);
	log_set_level(LOG_LVL_DEBUG);
	return 0;
}

static int teardown(void **state)
{
	close(pipefd[0]);
	close(pipefd[1]);
	log_init(2);
	return 0;
}

static char *drain_line(void)
{
	static char buf[8192];
	ssize_t n = read(pipefd[0], buf, sizeof(buf) - 1);

	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	return buf;
}

static void test_format(void **state)
{
	char *l;

	LOG_INFO("c1a2", "config reloaded", LF_S("file", "/etc/a b.ini"), LF_I("n", -3),
		 LF_U("u", 7), LF_S("empty", ""), LF_S("q", "say \"hi\"\\\n"));
	l = drain_line();
	assert_non_null(l);
	assert_memory_equal(l, "ts=", 3);
	/* ts=YYYY-MM-DDTHH:MM:SS.mmmZ */
	assert_int_equal(l[3 + 10], 'T');
	assert_int_equal(l[3 + 23], 'Z');
	assert_non_null(strstr(l, " level=info module=test call=c1a2 msg=\"config reloaded\" "
				  "file=\"/etc/a b.ini\" n=-3 u=7 empty=\"\" "
				  "q=\"say \\\"hi\\\"\\\\\\n\"\n"));
	/* one event, one line */
	assert_ptr_equal(strchr(l, '\n'), l + strlen(l) - 1);
}

static void test_no_call_field(void **state)
{
	char *l;

	LOG_WARN(NULL, "plain");
	l = drain_line();
	assert_non_null(l);
	assert_non_null(strstr(l, " level=warn module=test msg=plain\n"));
	assert_null(strstr(l, "call="));
}

static void test_levels(void **state)
{
	log_set_level(LOG_LVL_WARN);
	LOG_INFO(NULL, "hidden");
	LOG_DEBUG(NULL, "hidden");
	assert_null(drain_line());
	LOG_ERROR(NULL, "shown");
	assert_non_null(strstr(drain_line(), "level=error"));
	log_set_level(LOG_LVL_DEBUG);

	enum log_level l;

	assert_int_equal(log_level_parse("debug", &l), 0);
	assert_int_equal(l, LOG_LVL_DEBUG);
	assert_int_equal(log_level_parse("verbose", &l), EINVAL);
	assert_string_equal(log_level_name(LOG_LVL_WARN), "warn");
}

/* A limit: LOG_LIMIT_BURST lines at once, then one a LOG_LIMIT_EVERY_MS,
 * a token's fraction kept across calls; each line written says what was left
 * out before it, and the process-wide total counts every line left out. */
static void test_limit_tokens(void **state)
{
	struct log_limit l = { 0 };
	uint64_t sup = 99, total = log_suppressed_total(), t = 5000;

	(void)state;
	for (int i = 0; i < LOG_LIMIT_BURST; i++) {
		assert_true(log_limit_take_at(&l, t, &sup));
		assert_int_equal(sup, 0);
	}
	for (int i = 0; i < 25; i++)
		assert_false(log_limit_take_at(&l, t + 999, &sup));
	assert_int_equal(log_suppressed_total() - total, 25);
	/* one token a second; the next line tells of the 25 */
	assert_true(log_limit_take_at(&l, t + 1000, &sup));
	assert_int_equal(sup, 25);
	assert_false(log_limit_take_at(&l, t + 1500, &sup));
	/* 1.5 s and 2 s: the half token of 1.5 s was not lost */
	assert_true(log_limit_take_at(&l, t + 2000, &sup));
	assert_int_equal(sup, 1);
	assert_false(log_limit_take_at(&l, t + 2999, &sup));
	/* a quiet minute gives the whole burst back, no more */
	t += 62000;
	for (int i = 0; i < LOG_LIMIT_BURST; i++)
		assert_true(log_limit_take_at(&l, t, &sup));
	assert_false(log_limit_take_at(&l, t, &sup));
	/* a clock that goes back takes nothing and gives nothing */
	assert_false(log_limit_take_at(&l, t - 5000, &sup));
	assert_int_equal(log_suppressed_total() - total, 29);
}

/* LOG_LIMITED writes the burst, then nothing, and the first line after
 * carries suppressed=N; lines with nothing left out before them have no
 * such field. A level that is off counts nothing. */
static void test_limited_lines(void **state)
{
	struct log_limit l = { 0 };
	int lines = 0;
	char *s;

	for (int i = 0; i < LOG_LIMIT_BURST + 40; i++) {
		LOG_LIMITED(&l, LOG_LVL_INFO, NULL, "bad datagram", LF_I("n", i));
		s = drain_line();
		if (!s)
			continue;
		lines++;
		assert_non_null(strstr(s, "msg=\"bad datagram\" n="));
		assert_null(strstr(s, "suppressed="));
	}
	assert_int_equal(lines, LOG_LIMIT_BURST);
	/* the next token comes within LOG_LIMIT_EVERY_MS */
	for (int i = 0; i < 200; i++) {
		LOG_LIMITED(&l, LOG_LVL_INFO, NULL, "bad datagram", LF_I("n", 1000 + i));
		s = drain_line();
		if (s) {
			assert_non_null(strstr(s, " suppressed="));
			assert_int_equal(atoi(strstr(s, " suppressed=") + 12), 40 + i);
			break;
		}
		usleep(10000);
		assert_int_not_equal(i, 199);
	}
	log_set_level(LOG_LVL_WARN);
	{
		struct log_limit off = { 0 };

		for (int i = 0; i < 100; i++)
			LOG_LIMITED(&off, LOG_LVL_INFO, NULL, "hidden");
		assert_int_equal(off.suppressed, 0);
		assert_false(off.started);
	}
	log_set_level(LOG_LVL_DEBUG);
	assert_null(drain_line());
}

/* The journal prefix only when JOURNAL_STREAM names this very fd; the
 * variable is inherited by children whose stderr is something else. */
static void test_journal_prefix(void **state)
{
	struct stat st;
	char env[64];
	char *l;

	assert_int_equal(fstat(pipefd[1], &st), 0);
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", env, 1);
	log_init(pipefd[1]);
	assert_true(log_journal_prefix());
	LOG_ERROR(NULL, "e");
	l = drain_line();
	assert_memory_equal(l, "<3>ts=", 6);
	LOG_WARN(NULL, "w");
	assert_memory_equal(drain_line(), "<4>", 3);
	LOG_INFO(NULL, "i");
	assert_memory_equal(drain_line(), "<6>", 3);
	LOG_DEBUG(NULL, "d");
	assert_memory_equal(drain_line(), "<7>", 3);

	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino + 1);
	setenv("JOURNAL_STREAM", env, 1);
	log_init(pipefd[1]);
	assert_false(log_journal_prefix());
	LOG_INFO(NULL, "i");
	assert_memory_equal(drain_line(), "ts=", 3);

	setenv("JOURNAL_STREAM", "garbage", 1);
	log_init(pipefd[1]);
	assert_false(log_journal_prefix());
	unsetenv("JOURNAL_STREAM");
	log_init(pipefd[1]);
}

static void test_redact(void **state)
{
	char out[512];
	static const char sdp[] = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" KEY "|2^20|1:4\r\n"
				  "a=crypto:2 AES_CM_128_HMAC_SHA1_32 INLINE:" KEY "==\r\n";
	size_t n = log_redact(out, sizeof(out), sdp, strlen(sdp));

	assert_string_equal(out, "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:[redacted]|2^20|1:4\r\n"
				 "a=crypto:2 AES_CM_128_HMAC_SHA1_32 INLINE:[redacted]\r\n");
	assert_int_equal(n, strlen(out));
	/* no key: nothing to hide, and the text passes unchanged */
	n = log_redact(out, sizeof(out), "inline:", 7);
	assert_string_equal(out, "inline:");
	/* truncation still NUL-terminates and never leaks a key prefix */
	n = log_redact(out, 20, sdp, strlen(sdp));
	assert_int_equal(n, 19);
	assert_null(strstr(out, "WVNf"));
	n = log_redact(out, 45, sdp, strlen(sdp));
	assert_null(strstr(out, "WVNf"));
	/* a key cut by the length given still counts as a key */
	n = log_redact(out, sizeof(out), sdp, 50);
	assert_string_equal(out, "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:[redacted]");
}

/* Whatever path a key takes into a log call, it does not reach the line. */
static void test_no_key_reaches_a_line(void **state)
{
	static const char sdp[] = "m=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 "
				  "inline:" KEY "\r\n";
	char *l;

	LOG_INFO(NULL, sdp, LF_S("sdp", sdp), LF_SN("cut", sdp, sizeof(sdp) - 10));
	LOG_INFO("inline:" KEY, "call id");
	l = drain_line(); /* both lines: one read takes what the pipe holds */
	assert_non_null(l);
	assert_null(strstr(l, "WVNf"));
	assert_non_null(strstr(l, "msg=\"m=audio"));
	assert_non_null(strstr(l, "call=inline:[redacted]"));
	assert_non_null(strstr(l, "cut=\"m=audio"));
}

static void test_long_line_is_one_line(void **state)
{
	char big[10000];
	char *l;

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	LOG_INFO(NULL, "big", LF_S("v", big));
	l = drain_line();
	assert_non_null(l);
	assert_true(strlen(l) <= 4096);
	assert_string_equal(l + strlen(l) - 4, "...\n");
}

static void test_secret(void **state)
{
	struct secret a, b;
	char fp1[SECRET_FINGERPRINT_LEN], fp2[SECRET_FINGERPRINT_LEN];
	uint8_t raw[30];

	memset(raw, 0x5a, sizeof(raw));
	assert_int_equal(secret_set(&a, raw, sizeof(raw)), 0);
	assert_int_equal(secret_set(&b, raw, sizeof(raw)), 0);
	assert_true(secret_equal(&a, &b));
	secret_fingerprint(&a, fp1);
	secret_fingerprint(&b, fp2);
	assert_string_equal(fp1, fp2);
	assert_int_equal(strlen(fp1), 14);
	assert_memory_equal(fp1, "k:", 2);
	/* the fingerprint is a hash, not the key's bytes in hex */
	assert_null(strstr(fp1, "5a5a"));
	assert_int_equal(secret_random(&b, 30), 0);
	assert_false(secret_equal(&a, &b));
	secret_fingerprint(&b, fp2);
	assert_string_not_equal(fp1, fp2);
	assert_int_equal(secret_set(&a, raw, SECRET_MAX + 1), EINVAL);
	assert_int_equal(a.len, 0);
	secret_wipe(&b);
	for (size_t i = 0; i < sizeof(b.bytes); i++)
		assert_int_equal(b.bytes[i], 0);
	assert_int_equal(b.len, 0);
	secret_wipe(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_format, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_call_field, setup, teardown),
		cmocka_unit_test_setup_teardown(test_levels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_prefix, setup, teardown),
		cmocka_unit_test(test_limit_tokens),
		cmocka_unit_test_setup_teardown(test_limited_lines, setup, teardown),
		cmocka_unit_test(test_redact),
		cmocka_unit_test_setup_teardown(test_no_key_reaches_a_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_line_is_one_line, setup, teardown),
		cmocka_unit_test(test_secret),
	};

	return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
