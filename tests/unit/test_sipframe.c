/* SIP framing: UDP datagrams (RFC 3261 18.3: Content-Length optional, extra
 * bytes discarded) and TCP/TLS streams (Content-Length mandatory, RFC 5626
 * CRLF keepalives, messages split over reads or merged in one). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "srtpbridge/sipframe.h"

#define HEAD                                                                                       \
	"OPTIONS sip:bob@example.com SIP/2.0\r\n"                                                  \
	"Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx1\r\n"                                          \
	"From: <sip:alice@example.com>;tag=1\r\n"                                                  \
	"To: <sip:bob@example.com>\r\n"                                                            \
	"Call-ID: frame@example.com\r\n"                                                           \
	"CSeq: 1 OPTIONS\r\n"

static char why[SIPMSG_WHY_MAX];
static int status;

static int dgram(const char *s, size_t n, struct slice *msg)
{
	return sipframe_datagram((struct slice){ s, n }, msg, &status, why, sizeof(why));
}

static void dgram_refused(const char *s, int err, int st, const char *reason)
{
	struct slice msg;

	assert_int_equal(dgram(s, strlen(s), &msg), err);
	assert_int_equal(status, st);
	assert_string_equal(why, reason);
}

static void test_datagram_content_length(void **state)
{
	const char *m = HEAD "Content-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello";
	char buf[512];
	struct slice msg;

	assert_int_equal(dgram(m, strlen(m), &msg), 0);
	assert_ptr_equal(msg.p, m);
	assert_int_equal(msg.n, strlen(m));
	/* bytes beyond Content-Length are discarded */
	snprintf(buf, sizeof(buf), "%sTRAILING GARBAGE\r\n", m);
	assert_int_equal(dgram(buf, strlen(buf), &msg), 0);
	assert_int_equal(msg.n, strlen(m));
	/* leading CRLFs are not part of the message */
	snprintf(buf, sizeof(buf), "\r\n\r\n%s", m);
	assert_int_equal(dgram(buf, strlen(buf), &msg), 0);
	assert_ptr_equal(msg.p, buf + 4);
	assert_int_equal(msg.n, strlen(m));
}

static void test_datagram_no_content_length(void **state)
{
	/* missing on UDP: the rest of the datagram is the body */
	const char *m = HEAD "Content-Type: text/plain\r\n\r\nthe whole rest\r\n";
	struct slice msg;

	assert_int_equal(dgram(m, strlen(m), &msg), 0);
	assert_int_equal(msg.n, strlen(m));
}

static void test_datagram_content_length_forms(void **state)
{
	static const char *const ok[] = {
		HEAD "l: 5\r\n\r\nhelloXX",
		HEAD "content-LENGTH   :   5  \r\n\r\nhelloXX",
		HEAD "Content-Length:\r\n 5\r\n\r\nhelloXX",	 /* folded */
		HEAD "Content-Length: 0005\r\n\r\nhelloXX",	 /* leading zeros */
		HEAD "l: 5\r\nContent-Length: 5\r\n\r\nhelloXX", /* same value twice */
		HEAD "X-Content-Length: 7\r\nl: 5\r\n\r\nhelloXX",
	};
	struct slice msg;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(dgram(ok[i], strlen(ok[i]), &msg), 0);
		assert_int_equal(msg.n, strlen(ok[i]) - 2);
	}
	/* a Content-Length in the body is body */
	{
		const char *m = HEAD "l: 20\r\n\r\nContent-Length: 99\r\nXX";

		assert_int_equal(dgram(m, strlen(m), &msg), 0);
		assert_int_equal(msg.n, strlen(m) - 2);
	}
}

static void test_datagram_bad_content_length(void **state)
{
	dgram_refused(HEAD "Content-Length: -5\r\n\r\nhello", EBADMSG, 400,
		      "Content-Length -5 is negative");
	dgram_refused(HEAD "Content-Length: five\r\n\r\nhello", EBADMSG, 400,
		      "Content-Length five is not a number");
	dgram_refused(HEAD "Content-Length: +5\r\n\r\nhello", EBADMSG, 400,
		      "Content-Length +5 is not a number");
	dgram_refused(HEAD "Content-Length: 1 2\r\n\r\nhello", EBADMSG, 400,
		      "Content-Length 1 2 is not a number");
	dgram_refused(HEAD "Content-Length:\r\n\r\nhello", EBADMSG, 400, "Content-Length is empty");
	dgram_refused(HEAD "Content-Length: 5\r\nl: 6\r\n\r\nhello!", EBADMSG, 400,
		      "Content-Length headers disagree (5 and 6)");
	dgram_refused(HEAD "Content-Length: 300\r\n\r\nhello", EBADMSG, 400,
		      "Content-Length 300 is beyond the 5 body bytes of the datagram");
	dgram_refused(HEAD "Content-Length: 99999999999999999999999\r\n\r\n", EBADMSG, 400,
		      "Content-Length over 999999999 is beyond the 0 body bytes of the datagram");
	dgram_refused(HEAD "Content-Length: 0\r\n", EBADMSG, 400,
		      "the header does not end with an empty line");
	/* a response is never answered: status 0 means drop */
	dgram_refused("SIP/2.0 200 OK\r\nContent-Length: 10\r\n\r\nshort", EBADMSG, 0,
		      "Content-Length 10 is beyond the 5 body bytes of the datagram");
}

static void test_datagram_keepalive(void **state)
{
	struct slice msg;

	assert_int_equal(dgram("\r\n", 2, &msg), ENODATA);
	assert_int_equal(dgram("\r\n\r\n", 4, &msg), ENODATA);
	assert_int_equal(dgram("\n", 1, &msg), ENODATA);
	assert_int_equal(dgram("", 0, &msg), ENODATA);
}

static void test_datagram_too_large(void **state)
{
	size_t n = SIPMSG_MAX_BYTES + 1;
	char *big = malloc(n);
	struct slice msg;

	assert_non_null(big);
	memset(big, 'a', n);
	memcpy(big, "OPTIONS ", 8);
	assert_int_equal(dgram(big, n, &msg), EMSGSIZE);
	assert_int_equal(status, 513);
	assert_string_equal(why, "datagram of 65537 bytes is over the 65536-byte limit");
	memcpy(big, "SIP/2.0 ", 8);
	assert_int_equal(dgram(big, n, &msg), EMSGSIZE);
	assert_int_equal(status, 0);
	/* exactly the limit is a message */
	{
		const char *h = HEAD "Content-Type: text/plain\r\n\r\n";
		size_t hn = strlen(h);

		memcpy(big, h, hn);
		assert_int_equal(dgram(big, SIPMSG_MAX_BYTES, &msg), 0);
		assert_int_equal(msg.n, SIPMSG_MAX_BYTES);
	}
	free(big);
}

/* ---- streams ---- */

#define MSG_A HEAD "Content-Length: 0\r\n\r\n"
#define MSG_B HEAD "Content-Type: text/plain\r\nContent-Length: 4\r\n\r\nbody"
#define MSG_C HEAD "Content-Type: text/plain\r\nl: 14\r\n\r\n\r\n\r\nINVITE x\r\n"

struct conn {
	struct sipframe_stream_state st;
	char buf[3 * SIPMSG_MAX_BYTES];
	size_t len;
	unsigned pings;
	char got[8][1024];
	size_t ngot;
};

/* What a connection does with each read: frame, drop, deliver, repeat. */
static int conn_feed(struct conn *c, const char *data, size_t n)
{
	int err;

	memcpy(c->buf + c->len, data, n);
	c->len += n;
	for (;;) {
		size_t msg_len, skip;
		bool ping;

		err = sipframe_stream(&c->st, c->buf, c->len, &msg_len, &skip, &ping, why,
				      sizeof(why));
		c->pings += ping;
		assert_true(skip + msg_len <= c->len);
		memmove(c->buf, c->buf + skip, c->len - skip);
		c->len -= skip;
		if (err)
			return err;
		assert_true(c->ngot < 8 && msg_len < sizeof(c->got[0]));
		memcpy(c->got[c->ngot], c->buf, msg_len);
		c->got[c->ngot++][msg_len] = '\0';
		memmove(c->buf, c->buf + msg_len, c->len - msg_len);
		c->len -= msg_len;
	}
}

static struct conn *conn_new(void)
{
	struct conn *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	sipframe_stream_init(&c->st);
	return c;
}

static void test_stream_three_in_one(void **state)
{
	struct conn *c = conn_new();

	assert_int_equal(conn_feed(c, MSG_A MSG_B MSG_C, strlen(MSG_A MSG_B MSG_C)), EAGAIN);
	assert_int_equal(c->ngot, 3);
	assert_string_equal(c->got[0], MSG_A);
	assert_string_equal(c->got[1], MSG_B);
	/* a body that holds CRLFCRLF and a start line is still body */
	assert_string_equal(c->got[2], MSG_C);
	assert_int_equal(c->len, 0);
	free(c);
}

static void test_stream_byte_at_a_time(void **state)
{
	static const char all[] = MSG_B MSG_C;
	struct conn *c = conn_new();

	for (size_t i = 0; i < sizeof(all) - 1; i++) {
		assert_int_equal(conn_feed(c, all + i, 1), EAGAIN);
		/* the state remembers how far the header was searched: the next
		 * byte costs a few steps, not a rescan of the header */
		if (c->len && c->st.head_len == 0)
			assert_int_equal(c->st.scanned, c->len);
		if (i == strlen(MSG_B) - 1)
			assert_int_equal(c->ngot, 1);
	}
	assert_int_equal(c->ngot, 2);
	assert_string_equal(c->got[0], MSG_B);
	assert_string_equal(c->got[1], MSG_C);
	free(c);
}

static void test_stream_split_reads(void **state)
{
	static const char all[] = MSG_B;
	size_t cut = strstr(all, "\r\n\r\n") - all + 3; /* "\r\n\r" | "\n" */
	struct conn *c = conn_new();

	assert_int_equal(conn_feed(c, all, cut), EAGAIN);
	assert_int_equal(c->ngot, 0);
	assert_int_equal(conn_feed(c, all + cut, 1), EAGAIN); /* header done, body to come */
	assert_int_equal(c->ngot, 0);
	assert_int_equal(conn_feed(c, all + cut + 1, sizeof(all) - 3 - cut), EAGAIN);
	assert_int_equal(c->ngot, 0);
	assert_int_equal(conn_feed(c, all + sizeof(all) - 2, 1), EAGAIN);
	assert_int_equal(c->ngot, 1);
	assert_string_equal(c->got[0], MSG_B);
	free(c);
}

static void test_stream_keepalives(void **state)
{
	struct conn *c = conn_new();

	/* a single CRLF (a pong, or stray) is dropped and is no ping */
	assert_int_equal(conn_feed(c, "\r\n", 2), EAGAIN);
	assert_int_equal(c->len, 0);
	assert_int_equal(c->pings, 0);
	/* ...unless the next read completes a CRLFCRLF */
	assert_int_equal(conn_feed(c, "\r\n", 2), EAGAIN);
	assert_int_equal(c->pings, 1);
	/* a ping in one read */
	assert_int_equal(conn_feed(c, "\r\n\r\n", 4), EAGAIN);
	assert_int_equal(c->pings, 2);
	/* keepalives between messages */
	assert_int_equal(conn_feed(c, MSG_A "\r\n" MSG_B "\r\n\r\n" MSG_A,
				   strlen(MSG_A "\r\n" MSG_B "\r\n\r\n" MSG_A)),
			 EAGAIN);
	assert_int_equal(c->ngot, 3);
	assert_string_equal(c->got[1], MSG_B);
	assert_string_equal(c->got[2], MSG_A);
	assert_int_equal(c->pings, 3);
	assert_int_equal(c->len, 0);
	free(c);
}

static void stream_refused(const char *data, int err, const char *reason)
{
	struct conn *c = conn_new();

	assert_int_equal(conn_feed(c, data, strlen(data)), err);
	assert_string_equal(why, reason);
	free(c);
}

static void test_stream_bad_content_length(void **state)
{
	stream_refused(HEAD "\r\nbody", EBADMSG,
		       "Content-Length is missing (mandatory on a stream, RFC 3261 18.3)");
	stream_refused(HEAD "Content-Length: -1\r\n\r\n", EBADMSG, "Content-Length -1 is negative");
	stream_refused(HEAD "Content-Length: 0x10\r\n\r\n", EBADMSG,
		       "Content-Length 0x10 is not a number");
	stream_refused(HEAD "Content-Length: 4\r\nContent-Length: 5\r\n\r\nbody", EBADMSG,
		       "Content-Length headers disagree (4 and 5)");
	{
		char want[SIPMSG_WHY_MAX];

		snprintf(want, sizeof(want),
			 "message of %zu header bytes and a Content-Length of 70000 is over the "
			 "65536-byte limit",
			 strlen(HEAD "Content-Length: 70000\r\n\r\n"));
		stream_refused(HEAD "Content-Length: 70000\r\n\r\n", EMSGSIZE, want);
		snprintf(want, sizeof(want),
			 "message of %zu header bytes and a Content-Length of over 999999999 is "
			 "over "
			 "the 65536-byte limit",
			 strlen(HEAD "Content-Length: 99999999999999999999\r\n\r\n"));
		stream_refused(HEAD "Content-Length: 99999999999999999999\r\n\r\n", EMSGSIZE, want);
		/* header and body fit alone, not together */
		snprintf(want, sizeof(want),
			 "message of %zu header bytes and a Content-Length of 65530 is over the "
			 "65536-byte limit",
			 strlen(HEAD "Content-Length: 65530\r\n\r\n"));
		stream_refused(HEAD "Content-Length: 65530\r\n\r\n", EMSGSIZE, want);
	}
}

static void test_stream_sizes(void **state)
{
	struct conn *c = conn_new();
	char *big = malloc(SIPMSG_MAX_BYTES + 1);
	size_t hn = strlen(HEAD);

	assert_non_null(big);
	/* a header with no end yet, just under the limit: wait */
	memcpy(big, HEAD, hn);
	memset(big + hn, 'x', SIPMSG_MAX_BYTES + 1 - hn);
	assert_int_equal(conn_feed(c, big, SIPMSG_MAX_BYTES - 1), EAGAIN);
	/* the limit reached with no end: give up */
	assert_int_equal(conn_feed(c, big + SIPMSG_MAX_BYTES - 1, 2), EMSGSIZE);
	assert_string_equal(why, "the header is over 65536 bytes");
	free(c);
	free(big);
}

/* conn_feed keeps delivered messages, which a 64 KiB one does not fit: this
 * one only counts them. */
static void test_stream_largest_message(void **state)
{
	struct sipframe_stream_state st;
	char head[256], *big = malloc(SIPMSG_MAX_BYTES + 1);
	size_t msg_len, skip, body;
	bool ping;
	int n;

	assert_non_null(big);
	sipframe_stream_init(&st);
	n = snprintf(head, sizeof(head), HEAD "Content-Type: text/plain\r\nl: %05d\r\n\r\n", 0);
	body = SIPMSG_MAX_BYTES - (size_t)n;
	snprintf(head, sizeof(head), HEAD "Content-Type: text/plain\r\nl: %05zu\r\n\r\n", body);
	memcpy(big, head, (size_t)n);
	memset(big + n, 'b', body + 1);
	assert_int_equal(sipframe_stream(&st, big, SIPMSG_MAX_BYTES - 1, &msg_len, &skip, &ping,
					 why, sizeof(why)),
			 EAGAIN);
	assert_int_equal(sipframe_stream(&st, big, SIPMSG_MAX_BYTES + 1, &msg_len, &skip, &ping,
					 why, sizeof(why)),
			 0);
	assert_int_equal(msg_len, SIPMSG_MAX_BYTES);
	assert_int_equal(skip, 0);
	/* one byte more in Content-Length is over */
	sipframe_stream_init(&st);
	snprintf(head, sizeof(head), HEAD "Content-Type: text/plain\r\nl: %05zu\r\n\r\n", body + 1);
	memcpy(big, head, (size_t)n);
	assert_int_equal(
		sipframe_stream(&st, big, (size_t)n, &msg_len, &skip, &ping, why, sizeof(why)),
		EMSGSIZE);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_datagram_content_length),
		cmocka_unit_test(test_datagram_no_content_length),
		cmocka_unit_test(test_datagram_content_length_forms),
		cmocka_unit_test(test_datagram_bad_content_length),
		cmocka_unit_test(test_datagram_keepalive),
		cmocka_unit_test(test_datagram_too_large),
		cmocka_unit_test(test_stream_three_in_one),
		cmocka_unit_test(test_stream_byte_at_a_time),
		cmocka_unit_test(test_stream_split_reads),
		cmocka_unit_test(test_stream_keepalives),
		cmocka_unit_test(test_stream_bad_content_length),
		cmocka_unit_test(test_stream_sizes),
		cmocka_unit_test(test_stream_largest_message),
	};

	return cmocka_run_group_tests_name("sipframe", tests, NULL, NULL);
}
