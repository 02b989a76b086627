/* The SDP reader keeps every line as it came and refuses what a B2BUA cannot
 * rewrite safely; the writer produces CRLF lines and wipes on overflow. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "srtpbridge/sdp.h"

/* A carrier SBC's SRTP offer: session-level c=, telephone-event, ptime. */
static const char carrier[] = "v=0\r\n"
			      "o=- 1699999999 1699999999 IN IP4 198.51.100.10\r\n"
			      "s=SBC\r\n"
			      "c=IN IP4 198.51.100.10\r\n"
			      "t=0 0\r\n"
			      "m=audio 40000 RTP/SAVP 0 8 101\r\n"
			      "a=rtpmap:0 PCMU/8000\r\n"
			      "a=rtpmap:8 PCMA/8000\r\n"
			      "a=rtpmap:101 telephone-event/8000\r\n"
			      "a=fmtp:101 0-16\r\n"
			      "a=ptime:20\r\n"
			      "a=sendrecv\r\n"
			      "a=crypto:1 AES_CM_128_HMAC_SHA1_80 "
			      "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\n"
			      "a=crypto:2 AES_CM_128_HMAC_SHA1_32 "
			      "inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj\r\n";

/* WebRTC-ish IPv6 offer with media-level c=, ICE, rtcp-mux, video; LF only. */
static const char v6[] = "v=0\n"
			 "o=alice 2890844526 2890844527 IN IP6 2001:db8::1\n"
			 "s= \n"
			 "t=0 0\n"
			 "a=group:BUNDLE 0 1\n"
			 "m=audio 49170 RTP/SAVPF 111 0\n"
			 "c=IN IP6 2001:db8::1\n"
			 "a=rtcp:49171 IN IP6 2001:db8::1\n"
			 "a=rtcp-mux\n"
			 "a=ice-ufrag:abcd\n"
			 "a=candidate:1 1 UDP 2130706431 2001:db8::1 49170 typ host\n"
			 "m=video 0 RTP/SAVPF 96\n"
			 "a=inactive\n";

static void test_parse_keeps_lines(void **state)
{
	struct sdp s;
	char why[256];
	struct slice t, a, v;

	assert_int_equal(sdp_parse(&s, SLICE_LIT(carrier), why, sizeof(why)), 0);
	assert_int_equal(s.nlines, 14);
	assert_int_equal(s.nmedia, 1);
	assert_int_equal(s.session_end, 5);
	assert_true(slice_eq(s.o_user, "-"));
	assert_true(slice_eq(s.o_sess_version, "1699999999"));
	assert_true(slice_eq(s.o_addr, "198.51.100.10"));
	assert_true(slice_eq(s.media[0].media, "audio"));
	assert_true(slice_eq(s.media[0].proto, "RTP/SAVP"));
	assert_true(slice_eq(s.media[0].fmts, "0 8 101"));
	assert_int_equal(s.media[0].port, 40000);
	assert_int_equal(s.media[0].line, 5);
	assert_int_equal(s.media[0].end, 14);
	sdp_media_conn(&s, 0, &t, &a);
	assert_true(slice_eq(t, "IP4"));
	assert_true(slice_eq(a, "198.51.100.10"));
	assert_int_equal(sdp_find_attr(&s, s.media[0].line, s.media[0].end, "crypto", &v), 12);
	assert_memory_equal(v.p, "1 AES_CM_128_HMAC_SHA1_80 inline:", 33);
	assert_int_equal(sdp_find_attr(&s, 0, s.nlines, "ptime", &v), 10);
	assert_true(slice_eq(v, "20"));
	assert_int_equal(sdp_find_attr(&s, 0, s.nlines, "rtcp-mux", NULL), -1);
	/* the slices point into the text: nothing was copied or changed */
	assert_ptr_equal(s.lines[3].value.p, carrier +
						     strlen("v=0\r\no=- 1699999999 1699999999 "
							    "IN IP4 198.51.100.10\r\ns=SBC\r\n") +
						     2);

	assert_int_equal(sdp_parse(&s, SLICE_LIT(v6), why, sizeof(why)), 0);
	assert_int_equal(s.nmedia, 2);
	assert_int_equal(s.media[1].port, 0);
	sdp_media_conn(&s, 0, &t, &a);
	assert_true(slice_eq(t, "IP6"));
	assert_true(slice_eq(a, "2001:db8::1"));
	assert_int_equal(sdp_find_attr(&s, s.media[0].line, s.media[0].end, "rtcp-mux", &v), 8);
	assert_int_equal(v.n, 0);
}

static void test_writer(void **state)
{
	struct sdp s;
	struct sdp_writer w;
	char out[SDP_MAX_BYTES], small[16], why[256];

	/* copying every line gives back the text, with CRLF line ends */
	assert_int_equal(sdp_parse(&s, SLICE_LIT(carrier), why, sizeof(why)), 0);
	sdp_writer_init(&w, out, sizeof(out));
	for (size_t i = 0; i < s.nlines; i++)
		sdp_put(&w, s.lines[i].type, s.lines[i].value);
	assert_int_equal(sdp_writer_finish(&w), strlen(carrier));
	assert_string_equal(out, carrier);

	sdp_writer_init(&w, small, sizeof(small));
	sdp_putf(&w, 'c', "IN IP4 %s", "192.0.2.1");
	assert_int_equal(sdp_writer_finish(&w), 0);
	for (size_t i = 0; i < sizeof(small); i++)
		assert_int_equal(small[i], 0);
}

struct bad {
	const char *sdp;
	const char *why;
};

static void test_refusals(void **state)
{
	static const struct bad cases[] = {
		{ "o=- 1 1 IN IP4 192.0.2.1\r\nv=0\r\ns=-\r\nt=0 0\r\n",
		  "SDP must begin with v=, o= and s= (line 1 is o=)" },
		{ "v=1\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n",
		  "SDP v= must be the first line and say 0" },
		{ "v=0\r\no=- 1 1 IN IP4\r\ns=-\r\nt=0 0\r\n",
		  "o= needs six fields: username sess-id sess-version IN IP4|IP6 address" },
		{ "v=0\r\no=- x 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n",
		  "o= session id and version must be numbers" },
		{ "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\n",
		  "SDP needs a t= line before the first m= line" },
		{ "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=audio 70000 RTP/AVP 0\r\n"
		  "c=IN IP4 192.0.2.1\r\n",
		  "m= port must be 0 to 65535" },
		{ "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP\r\n",
		  "m= needs media, port, protocol and at least one format" },
		{ "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n",
		  "SDP m= line 1 has no c= line, at its level or the session's" },
		{ "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.300\r\nt=0 0\r\n",
		  "c= address is not a valid IP4 address" },
		{ "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 233.252.0.1/127\r\nt=0 0\r\n",
		  "c= must be a unicast address with nothing after it" },
		{ "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP6 192.0.2.1\r\nt=0 0\r\n",
		  "c= address is not a valid IP6 address" },
		{ "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n\r\nt=0 0\r\n",
		  "SDP line 4 is empty" },
		{ "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nX=1\r\n",
		  "SDP line 5 is not 'x=value'" },
		{ "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\na=x\ry\r\n",
		  "SDP line 5 has a bare CR" },
		{ "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n", "SDP has no t= line" },
		{ "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=audio 4 RTP/AVP 0\r\n"
		  "c=IN IP4 192.0.2.1\r\nc=IN IP4 192.0.2.2\r\n",
		  "SDP m= section has two c= lines" },
		{ "", "SDP must begin with v=, o= and s=" },
	};
	struct sdp s;
	char why[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (sdp_parse(&s, slice_from(cases[i].sdp), why, sizeof(why)) != EBADMSG)
			fail_msg("case %zu accepted", i);
		if (strcmp(why, cases[i].why) != 0)
			fail_msg("case %zu: '%s', want '%s'", i, why, cases[i].why);
	}
	static const char nul[] = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=\0\r\nt=0 0\r\n";
	assert_int_equal(sdp_parse(&s, (struct slice){ nul, sizeof(nul) - 1 }, why, sizeof(why)),
			 EBADMSG);
	assert_string_equal(why, "SDP contains a NUL byte");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_keeps_lines),
		cmocka_unit_test(test_writer),
		cmocka_unit_test(test_refusals),
	};

	return cmocka_run_group_tests_name("sdp", tests, NULL, NULL);
}
