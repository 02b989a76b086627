/* RTP and RTCP headers: packets built byte by byte from RFC 3550, 3611,
 * 4585 and 5761, every refusal the parsers make, and the SSRC rewriters
 * compared whole-buffer against the bytes they should produce. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "srtpbridge/bytes.h"
#include "srtpbridge/rtp.h"

/* The plain peer's SSRC, a remote source it reports on, a mixer's CSRC, and
 * the SSRC srtpbridge sends under toward the secure leg. */
#define PLAIN	0x11223344u
#define REMOTE	0xaabbccddu
#define CONTRIB 0x55667788u
#define OURS	0xcafef00du

#define B32(v)	(uint8_t)((v) >> 24), (uint8_t)((v) >> 16), (uint8_t)((v) >> 8), (uint8_t)(v)

/* ---- RTP ---- */

static void test_rtp_minimal(void **state)
{
	uint8_t p[172];
	struct rtp_hdr h;
	static const uint8_t hdr[] = { 0x80, 0x00, 0x12, 0x34,		 0x00,
				       0x00, 0x00, 0xa0, B32(0xdeadbeef) };

	memcpy(p, hdr, sizeof(hdr));
	memset(p + sizeof(hdr), 0xff, sizeof(p) - sizeof(hdr));
	assert_int_equal(rtp_parse(p, sizeof(p), &h), 0);
	assert_int_equal(h.pt, 0);
	assert_false(h.marker);
	assert_int_equal(h.seq, 0x1234);
	assert_int_equal(h.ts, 0xa0);
	assert_int_equal(h.ssrc, 0xdeadbeef);
	assert_int_equal(h.header_len, 12);
	assert_int_equal(h.payload_len, 160);
	/* a header without payload is a valid packet too */
	assert_int_equal(rtp_parse(p, 12, &h), 0);
	assert_int_equal(h.payload_len, 0);
}

static void test_rtp_csrc(void **state)
{
	static const uint8_t p[] = {
		0x82,	      0x88,	   0xff, 0xff, B32(0xfffffff0),
		B32(PLAIN),		   /* marker, PT 8 */
		B32(CONTRIB), B32(REMOTE), /* CC = 2 */
		0xd5,	      0xd5,	   0xd5, 0xd5,
	};
	struct rtp_hdr h;

	assert_int_equal(rtp_parse(p, sizeof(p), &h), 0);
	assert_int_equal(h.pt, 8);
	assert_true(h.marker);
	assert_int_equal(h.seq, 0xffff);
	assert_int_equal(h.ts, 0xfffffff0);
	assert_int_equal(h.ssrc, PLAIN);
	assert_int_equal(h.header_len, 20);
	assert_int_equal(h.payload_len, 4);
	/* CC = 15 announces 60 bytes of CSRCs */
	{
		uint8_t q[12 + 56] = { 0x8f, 0x00 };

		assert_int_equal(rtp_parse(q, sizeof(q), &h), EBADMSG);
	}
}

/* CC = 1 and an RFC 8285 one-byte extension block of 2 words. */
static const uint8_t rtp_ext[] = {
	0x91,	    0x60,	  0x00, 0x07, B32(0x00001000),
	B32(PLAIN), B32(CONTRIB), 0xbe, 0xde, 0x00,
	0x02, /* profile, length in words */
	0x10,	    0xaa,	  0x21, 0x12, 0x34,
	0x00,	    0x00,	  0x00, /* two elements, padding */
	0x01,	    0x02,	  0x03,
};

static void test_rtp_extension(void **state)
{
	struct rtp_hdr h;
	uint8_t p[sizeof(rtp_ext)];

	assert_int_equal(rtp_parse(rtp_ext, sizeof(rtp_ext), &h), 0);
	assert_int_equal(h.pt, 96);
	assert_false(h.marker);
	assert_int_equal(h.seq, 7);
	assert_int_equal(h.ts, 0x1000);
	assert_int_equal(h.ssrc, PLAIN);
	assert_int_equal(h.header_len, 28);
	assert_int_equal(h.payload_len, 3);
	/* one word more than there is */
	memcpy(p, rtp_ext, sizeof(p));
	p[19] = 0x03;
	assert_int_equal(rtp_parse(p, 28, &h), EBADMSG);
	assert_int_equal(rtp_parse(p, sizeof(p), &h), EBADMSG);
	/* an empty extension */
	p[19] = 0x00;
	assert_int_equal(rtp_parse(p, sizeof(p), &h), 0);
	assert_int_equal(h.header_len, 20);
	assert_int_equal(h.payload_len, sizeof(p) - 20);
}

static void test_rtp_padding(void **state)
{
	uint8_t p[] = {
		0xa0, 0x00, 0x00, 0x01, B32(160), B32(PLAIN), 0x7f, 0x7e, 0x00, 0x00, 0x03,
	};
	struct rtp_hdr h;

	assert_int_equal(rtp_parse(p, sizeof(p), &h), 0);
	assert_int_equal(h.header_len, 12);
	assert_int_equal(h.payload_len, 2);
	/* padding may take everything after the header */
	p[16] = 5;
	assert_int_equal(rtp_parse(p, sizeof(p), &h), 0);
	assert_int_equal(h.payload_len, 0);
	/* but not one byte of it */
	p[16] = 6;
	assert_int_equal(rtp_parse(p, sizeof(p), &h), EBADMSG);
	p[16] = 255;
	assert_int_equal(rtp_parse(p, sizeof(p), &h), EBADMSG);
	/* the count includes itself */
	p[16] = 0;
	assert_int_equal(rtp_parse(p, sizeof(p), &h), EBADMSG);
	/* the padding bit on a header alone: its count would be an SSRC octet */
	assert_int_equal(rtp_parse(p, 12, &h), EBADMSG);
	/* the padding is counted after the extension, not after 12 bytes */
	{
		uint8_t q[sizeof(rtp_ext)];

		memcpy(q, rtp_ext, sizeof(q));
		q[0] |= 0x20;
		q[sizeof(q) - 1] = 3;
		assert_int_equal(rtp_parse(q, sizeof(q), &h), 0);
		assert_int_equal(h.payload_len, 0);
		q[sizeof(q) - 1] = 4;
		assert_int_equal(rtp_parse(q, sizeof(q), &h), EBADMSG);
	}
}

static void test_rtp_version(void **state)
{
	uint8_t p[] = { 0x80, 0x00, 0x00, 0x01, B32(160), B32(PLAIN), 0xff };
	struct rtp_hdr h;

	for (unsigned v = 0; v < 4; v++) {
		h.pt = 42;
		p[0] = (uint8_t)(v << 6);
		assert_int_equal(rtp_parse(p, sizeof(p), &h), v == 2 ? 0 : EBADMSG);
		assert_int_equal(h.pt, v == 2 ? 0 : 42); /* untouched when refused */
	}
}

static void test_rtp_truncated(void **state)
{
	struct rtp_hdr h;

	/* header fields, CSRC and extension cut anywhere fail; a cut into the
	 * payload only shortens it */
	for (size_t n = 0; n <= sizeof(rtp_ext); n++) {
		int err = rtp_parse(rtp_ext, n, &h);

		if (n < 28) {
			assert_int_equal(err, EBADMSG);
		} else {
			assert_int_equal(err, 0);
			assert_int_equal(h.payload_len, n - 28);
		}
	}
	assert_int_equal(rtp_parse(NULL, 0, &h), EBADMSG);
}

static void test_rtp_setters(void **state)
{
	uint8_t p[] = { 0x80, 0x00, 0x12, 0x34, B32(160), B32(PLAIN), 0xff, 0xfe };
	static const uint8_t want[] = {
		0x80, 0x00, 0xff, 0xfe, B32(0x89abcdef), B32(OURS), 0xff, 0xfe,
	};
	struct rtp_hdr h;

	rtp_set_seq(p, 0xfffe);
	rtp_set_ts(p, 0x89abcdef);
	rtp_set_ssrc(p, OURS);
	assert_memory_equal(p, want, sizeof(want));
	assert_int_equal(rtp_parse(p, sizeof(p), &h), 0);
	assert_int_equal(h.seq, 0xfffe);
	assert_int_equal(h.ts, 0x89abcdef);
	assert_int_equal(h.ssrc, OURS);
	assert_int_equal(h.payload_len, 2);
}

static void test_demux(void **state)
{
	uint8_t p[2] = { 0x80, 0 };

	/* PCMU, PCMA, telephone-event, a dynamic type, with and without marker */
	static const uint8_t rtp_pts[] = { 0, 8, 101, 96, 127 };
	for (size_t i = 0; i < sizeof(rtp_pts); i++) {
		p[1] = rtp_pts[i];
		assert_false(rtp_is_rtcp(p, 2));
		p[1] |= 0x80;
		assert_false(rtp_is_rtcp(p, 2));
	}
	/* SR, RR and the rest of 192..223 */
	for (unsigned b = 0; b < 256; b++) {
		p[1] = (uint8_t)b;
		assert_int_equal(rtp_is_rtcp(p, 2), b >= 192 && b <= 223);
	}
	/* PT 72 is RR with the marker and RTP without it; PT 64 and 95 mark the
	 * range's edges, PT 96 with the marker (224) is RTP again */
	p[1] = 0x80 | 72;
	assert_int_equal(p[1], 200);
	assert_true(rtp_is_rtcp(p, 2));
	p[1] = 72;
	assert_false(rtp_is_rtcp(p, 2));
	p[1] = 0x80 | 64;
	assert_true(rtp_is_rtcp(p, 2));
	p[1] = 0x80 | 95;
	assert_true(rtp_is_rtcp(p, 2));
	p[1] = 0x80 | 63;
	assert_false(rtp_is_rtcp(p, 2));
	p[1] = 0x80 | 96;
	assert_false(rtp_is_rtcp(p, 2));
	/* too short, or not version 2 */
	p[1] = 200;
	assert_false(rtp_is_rtcp(p, 1));
	assert_false(rtp_is_rtcp(p, 0));
	assert_false(rtp_is_rtcp(NULL, 0));
	p[0] = 0x40;
	assert_false(rtp_is_rtcp(p, 2));
	p[0] = 0xc0;
	assert_false(rtp_is_rtcp(p, 2));
}

/* ---- RTCP ---- */

/* SR (1 report block on REMOTE) + SDES (CNAME) from PLAIN. */
static const uint8_t sr_sdes[] = {
	0x81, 200, 0x00, 0x0c, B32(PLAIN), B32(0xe56a1234), B32(0x56789abc), B32(0x0001e240),
	B32(50), B32(8000), /* sender info */
	B32(REMOTE), 0x02, 0x00, 0x00, 0x05, B32(0x00001234), B32(16), B32(0x6a123456),
	B32(0x00008000),
	/* offset 52 */
	0x81, 202, 0x00, 0x04, B32(PLAIN), 0x01, 9, 'p', 'l', 'a', 'i', 'n', '@', 'l', 'a', 'n',
	0x00, /* 72 */
};

static void test_rtcp_sr_sdes(void **state)
{
	uint8_t p[sizeof(sr_sdes)], want[sizeof(sr_sdes)];

	assert_int_equal(sizeof(sr_sdes), 72);
	assert_int_equal(rtcp_check(sr_sdes, sizeof(sr_sdes)), 0);
	assert_int_equal(rtcp_sender_ssrc(sr_sdes, sizeof(sr_sdes)), PLAIN);

	memcpy(p, sr_sdes, sizeof(p));
	memcpy(want, sr_sdes, sizeof(want));
	be32_put(want + 4, OURS);
	be32_put(want + 56, OURS);
	assert_int_equal(rtcp_set_sender_ssrc(p, sizeof(p), OURS), 2);
	assert_memory_equal(p, want, sizeof(p));
	assert_int_equal(rtcp_check(p, sizeof(p)), 0);
	assert_int_equal(rtcp_sender_ssrc(p, sizeof(p)), OURS);

	/* the sender field is no source field, the report block's is */
	assert_int_equal(rtcp_map_source_ssrc(p, sizeof(p), OURS, 1), 0);
	assert_memory_equal(p, want, sizeof(p));
	be32_put(want + 28, 0x01020304);
	assert_int_equal(rtcp_map_source_ssrc(p, sizeof(p), REMOTE, 0x01020304), 1);
	assert_memory_equal(p, want, sizeof(p));
}

/* RR + SDES (PLAIN with CNAME and NAME, a mixer's CSRC) + BYE (both, reason). */
static const uint8_t rr_sdes_bye[] = {
	0x81, 201, 0x00, 0x07, B32(PLAIN), B32(REMOTE), 0x00, 0x00, 0x00, 0x00, B32(0x00010002),
	B32(3), B32(0), B32(0),
	/* offset 32 */
	0x82, 202, 0x00, 0x09, B32(PLAIN), 0x01, 9, 'p', 'l', 'a', 'i', 'n', '@', 'l', 'a', 'n',
	0x02, 3, 'b', 'o', 'b', 0x00, 0x00, 0x00, 0x00, /* 21 octets and the padding */
	/* offset 60 */
	B32(CONTRIB), 0x01, 3, 'm', 'i', 'x', 0x00, 0x00, 0x00,
	/* offset 72 */
	0x82, 203, 0x00, 0x04, B32(PLAIN), B32(CONTRIB), 7, 'h', 'a', 'n', 'g', ' ', 'u', 'p',
	/* 92 */
};

static void test_rtcp_rr_sdes_bye(void **state)
{
	uint8_t p[sizeof(rr_sdes_bye)], want[sizeof(rr_sdes_bye)];

	assert_int_equal(sizeof(rr_sdes_bye), 92);
	assert_int_equal(rtcp_check(rr_sdes_bye, sizeof(rr_sdes_bye)), 0);
	assert_int_equal(rtcp_sender_ssrc(rr_sdes_bye, sizeof(rr_sdes_bye)), PLAIN);

	memcpy(p, rr_sdes_bye, sizeof(p));
	memcpy(want, rr_sdes_bye, sizeof(want));
	be32_put(want + 4, OURS);  /* RR sender */
	be32_put(want + 36, OURS); /* the first chunk; the mixer's CSRC chunk stays */
	be32_put(want + 76, OURS); /* the first BYE source; the CSRC stays */
	assert_int_equal(rtcp_set_sender_ssrc(p, sizeof(p), OURS), 3);
	assert_memory_equal(p, want, sizeof(p));
	assert_int_equal(rtcp_check(p, sizeof(p)), 0);

	be32_put(want + 8, PLAIN);
	assert_int_equal(rtcp_map_source_ssrc(p, sizeof(p), REMOTE, PLAIN), 1);
	assert_memory_equal(p, want, sizeof(p));
	/* SDES and BYE hold no source fields */
	assert_int_equal(rtcp_map_source_ssrc(p, sizeof(p), CONTRIB, 9), 0);
	assert_memory_equal(p, want, sizeof(p));
}

/* SR with two report blocks. */
static const uint8_t sr_two_blocks[] = {
	0x82, 200, 0x00, 0x12, B32(PLAIN), B32(0xe56a1234), B32(0x56789abc), B32(0x0001e240),
	B32(50), B32(8000),
	/* offset 28 */
	B32(REMOTE), B32(0), B32(0x1234), B32(16), B32(0), B32(0),
	/* offset 52 */
	B32(CONTRIB), B32(0x01000001), B32(0x5678), B32(32), B32(0x6a123456), B32(0x00010000),
	/* 76 */
};

static void test_rtcp_sr_two_blocks(void **state)
{
	uint8_t p[sizeof(sr_two_blocks)], want[sizeof(sr_two_blocks)];

	assert_int_equal(sizeof(p), 76);
	assert_int_equal(rtcp_check(sr_two_blocks, sizeof(p)), 0);
	memcpy(p, sr_two_blocks, sizeof(p));
	memcpy(want, sr_two_blocks, sizeof(p));
	be32_put(want + 52, OURS);
	assert_int_equal(rtcp_map_source_ssrc(p, sizeof(p), CONTRIB, OURS), 1);
	assert_memory_equal(p, want, sizeof(p));
	be32_put(want + 28, OURS);
	assert_int_equal(rtcp_map_source_ssrc(p, sizeof(p), REMOTE, OURS), 1);
	assert_memory_equal(p, want, sizeof(p));
	/* both now match */
	be32_put(want + 28, PLAIN);
	be32_put(want + 52, PLAIN);
	assert_int_equal(rtcp_map_source_ssrc(p, sizeof(p), OURS, PLAIN), 2);
	assert_memory_equal(p, want, sizeof(p));
	/* the SR's sender is written even when it already says so */
	be32_put(want + 4, OURS);
	assert_int_equal(rtcp_set_sender_ssrc(p, sizeof(p), OURS), 1);
	assert_int_equal(rtcp_set_sender_ssrc(p, sizeof(p), OURS), 1);
	assert_memory_equal(p, want, sizeof(p));
}

/* RR without blocks + PSFB PLI + RTPFB generic NACK, all about REMOTE. */
static const uint8_t rr_fb[] = {
	0x80, 201, 0x00, 0x01, B32(PLAIN),
	/* offset 8 */
	0x81, 206, 0x00, 0x02, B32(PLAIN), B32(REMOTE),
	/* offset 20 */
	0x81, 205, 0x00, 0x03, B32(PLAIN), B32(REMOTE), 0x12, 0x34, 0x00, 0x05,
	/* 36 */
};

static void test_rtcp_feedback(void **state)
{
	uint8_t p[sizeof(rr_fb)], want[sizeof(rr_fb)];

	assert_int_equal(sizeof(p), 36);
	assert_int_equal(rtcp_check(rr_fb, sizeof(p)), 0);
	memcpy(p, rr_fb, sizeof(p));
	memcpy(want, rr_fb, sizeof(p));
	be32_put(want + 4, OURS);
	be32_put(want + 12, OURS);
	be32_put(want + 24, OURS);
	assert_int_equal(rtcp_set_sender_ssrc(p, sizeof(p), OURS), 3);
	assert_memory_equal(p, want, sizeof(p));
	be32_put(want + 16, CONTRIB);
	be32_put(want + 28, CONTRIB);
	assert_int_equal(rtcp_map_source_ssrc(p, sizeof(p), REMOTE, CONTRIB), 2);
	assert_memory_equal(p, want, sizeof(p));
	assert_int_equal(rtcp_check(p, sizeof(p)), 0);

	/* RFC 5506 reduced-size: a PLI alone, its sender read first */
	assert_int_equal(rtcp_check(rr_fb + 8, 12), 0);
	assert_int_equal(rtcp_sender_ssrc(rr_fb + 8, 12), PLAIN);
	memcpy(p, rr_fb + 8, 12);
	assert_int_equal(rtcp_set_sender_ssrc(p, 12, OURS), 1);
	assert_int_equal(rtcp_map_source_ssrc(p, 12, REMOTE, 1), 1);
	{
		static const uint8_t pli[] = { 0x81, 206, 0x00, 0x02, B32(OURS), B32(1) };

		assert_memory_equal(p, pli, sizeof(pli));
	}
	/* feedback without its media source field */
	{
		static const uint8_t short_fb[] = { 0x81, 205, 0x00, 0x01, B32(PLAIN) };

		assert_int_equal(rtcp_check(short_fb, sizeof(short_fb)), EBADMSG);
	}
}

/* RR + XR with an RRTR and a DLRR block. */
static const uint8_t rr_xr[] = {
	0x80, 201, 0x00, 0x01, B32(PLAIN),
	/* offset 8 */
	0x80, 207, 0x00, 0x08, B32(PLAIN), 4, 0, 0x00, 0x02, B32(0xe56a1234),
	B32(0x56789abc),						 /* RRTR */
	5, 0, 0x00, 0x03, B32(REMOTE), B32(0x6a123456), B32(0x00000100), /* DLRR */
									 /* 44 */
};

static void test_rtcp_xr(void **state)
{
	uint8_t p[sizeof(rr_xr)], want[sizeof(rr_xr)];

	assert_int_equal(sizeof(p), 44);
	assert_int_equal(rtcp_check(rr_xr, sizeof(p)), 0);
	assert_int_equal(rtcp_sender_ssrc(rr_xr + 8, sizeof(p) - 8), PLAIN);
	memcpy(p, rr_xr, sizeof(p));
	memcpy(want, rr_xr, sizeof(p));
	be32_put(want + 4, OURS);
	be32_put(want + 12, OURS);
	assert_int_equal(rtcp_set_sender_ssrc(p, sizeof(p), OURS), 2);
	assert_memory_equal(p, want, sizeof(p));
	/* XR report blocks hold no source field this module rewrites */
	assert_int_equal(rtcp_map_source_ssrc(p, sizeof(p), REMOTE, OURS), 0);
	assert_memory_equal(p, want, sizeof(p));
	/* XR without its SSRC */
	{
		static const uint8_t bare[] = { 0x80, 207, 0x00, 0x00 };

		assert_int_equal(rtcp_check(bare, sizeof(bare)), EBADMSG);
	}
}

/* SR without blocks + APP subtype 3. */
static const uint8_t sr_app[] = {
	0x80, 200, 0x00, 0x06, B32(PLAIN), B32(1), B32(2), B32(3), B32(4), B32(5),
	/* offset 28 */
	0x83, 204, 0x00, 0x03, B32(PLAIN), 'T', 'E', 'S', 'T', 0xde, 0xad, 0xbe, 0xef,
	/* 44 */
};

static void test_rtcp_app(void **state)
{
	uint8_t p[sizeof(sr_app)], want[sizeof(sr_app)];

	assert_int_equal(sizeof(p), 44);
	assert_int_equal(rtcp_check(sr_app, sizeof(p)), 0);
	assert_int_equal(rtcp_sender_ssrc(sr_app + 28, 16), PLAIN);
	memcpy(p, sr_app, sizeof(p));
	memcpy(want, sr_app, sizeof(p));
	be32_put(want + 4, OURS);
	be32_put(want + 32, OURS);
	assert_int_equal(rtcp_set_sender_ssrc(p, sizeof(p), OURS), 2);
	assert_memory_equal(p, want, sizeof(p));
	/* an APP without its name */
	{
		static const uint8_t bare[] = { 0x80, 204, 0x00, 0x01, B32(PLAIN) };

		assert_int_equal(rtcp_check(bare, sizeof(bare)), EBADMSG);
	}
}

/* RR + a type this module does not know (210) holding SSRC-looking words +
 * SDES. */
static const uint8_t rr_unknown_sdes[] = {
	0x81, 201, 0x00, 0x07, B32(PLAIN), B32(REMOTE), B32(0), B32(0), B32(0), B32(0), B32(0),
	/* offset 32 */
	0x9f, 210, 0x00, 0x02, B32(PLAIN), B32(REMOTE),
	/* offset 44 */
	0x81, 202, 0x00, 0x02, B32(PLAIN), 0x01, 1, 'x', 0x00,
	/* 56 */
};

static void test_rtcp_unknown_type(void **state)
{
	uint8_t p[sizeof(rr_unknown_sdes)], want[sizeof(rr_unknown_sdes)];

	assert_int_equal(sizeof(p), 56);
	/* its count of 31 means nothing to the walk */
	assert_int_equal(rtcp_check(rr_unknown_sdes, sizeof(p)), 0);
	memcpy(p, rr_unknown_sdes, sizeof(p));
	memcpy(want, rr_unknown_sdes, sizeof(p));
	be32_put(want + 4, OURS);
	be32_put(want + 48, OURS);
	assert_int_equal(rtcp_set_sender_ssrc(p, sizeof(p), OURS), 2);
	assert_memory_equal(p, want, sizeof(p));
	be32_put(want + 8, OURS);
	assert_int_equal(rtcp_map_source_ssrc(p, sizeof(p), REMOTE, OURS), 1);
	assert_memory_equal(p, want, sizeof(p));

	/* an unknown type first names no sender: the SDES chunk is nobody's
	 * to rename, and an unknown packet of just a header is fine */
	{
		uint8_t q[] = { 0x80, 210, 0x00, 0x00, 0x80,	   201,	 0x00, 0x01, B32(PLAIN),
				0x81, 202, 0x00, 0x02, B32(PLAIN), 0x00, 0x00, 0x00, 0x00 };
		uint8_t wq[sizeof(q)];

		memcpy(wq, q, sizeof(q));
		be32_put(wq + 8, OURS);
		assert_int_equal(rtcp_check(q, sizeof(q)), 0);
		assert_int_equal(rtcp_sender_ssrc(q, sizeof(q)), 0);
		assert_int_equal(rtcp_set_sender_ssrc(q, sizeof(q), OURS), 1);
		assert_memory_equal(q, wq, sizeof(q));
	}
}

static void test_rtcp_padding(void **state)
{
	/* RR + BYE padded by one word */
	uint8_t p[] = {
		0x80, 201, 0x00, 0x01, B32(PLAIN), 0xa1, 203, 0x00, 0x02, B32(PLAIN), 0, 0, 0, 4,
	};
	uint8_t want[sizeof(p)];

	assert_int_equal(rtcp_check(p, sizeof(p)), 0);
	memcpy(want, p, sizeof(p));
	be32_put(want + 4, OURS);
	be32_put(want + 12, OURS);
	assert_int_equal(rtcp_set_sender_ssrc(p, sizeof(p), OURS), 2);
	assert_memory_equal(p, want, sizeof(p));

	p[19] = 0; /* the count includes itself */
	assert_int_equal(rtcp_check(p, sizeof(p)), EBADMSG);
	p[19] = 8; /* fits the packet, but eats the BYE source */
	assert_int_equal(rtcp_check(p, sizeof(p)), EBADMSG);
	p[19] = 9; /* reaches into the header */
	assert_int_equal(rtcp_check(p, sizeof(p)), EBADMSG);
	p[19] = 4;
	/* padding on the first packet of two */
	p[0] |= 0x20;
	assert_int_equal(rtcp_check(p, sizeof(p)), EBADMSG);
	/* it is fine when that packet is alone and the padding leaves its SSRC */
	{
		uint8_t rr[] = { 0xa0, 201, 0x00, 0x02, B32(PLAIN), 0, 0, 0, 4 };

		assert_int_equal(rtcp_check(rr, sizeof(rr)), 0);
		assert_int_equal(rtcp_sender_ssrc(rr, sizeof(rr)), PLAIN);
		rr[3] = 0x01;
		assert_int_equal(rtcp_check(rr, 8), EBADMSG);
	}
}

static void expect_bad(const uint8_t *p, size_t n)
{
	assert_int_equal(rtcp_check(p, n), EBADMSG);
}

static void test_rtcp_check_refuses(void **state)
{
	uint8_t p[128];

	/* nothing, or less than one header */
	expect_bad(sr_sdes, 0);
	expect_bad(NULL, 0);
	expect_bad(sr_sdes, 3);
	/* a length word past n */
	memcpy(p, rr_sdes_bye, 32);
	p[3] = 0x08;
	expect_bad(p, 32);
	/* lengths that do not add up to n: two bytes over, or a word that is
	 * not a version 2 header */
	memcpy(p, rr_sdes_bye, 32);
	p[32] = 0x80;
	p[33] = 201;
	expect_bad(p, 34);
	memset(p + 32, 0, 4);
	expect_bad(p, 36);
	/* a second packet of version 1 */
	memcpy(p, rr_fb, sizeof(rr_fb));
	p[8] = 0x41;
	expect_bad(p, sizeof(rr_fb));
	/* RC larger than the length holds */
	memcpy(p, rr_sdes_bye, 32);
	p[0] = 0x82;
	expect_bad(p, 32);
	memcpy(p, sr_app, sizeof(sr_app));
	p[0] = 0x81;
	expect_bad(p, sizeof(sr_app));
	/* SC larger than the chunks */
	memcpy(p, sr_sdes, sizeof(sr_sdes));
	p[52] = 0x82;
	expect_bad(p, sizeof(sr_sdes));
	/* a chunk whose items do not end with a null octet */
	{
		static const uint8_t q[] = { 0x81, 202, 0x00, 0x02, B32(PLAIN), 0x01, 2, 'a', 'b' };
		static const uint8_t item_past[] = { 0x81, 202, 0x00, 0x02, B32(PLAIN),
						     0x01, 3,	'a',  0x00 };

		expect_bad(q, sizeof(q));
		expect_bad(item_past, sizeof(item_past));
	}
	/* BYE with more sources than words */
	{
		static const uint8_t q[] = { 0x83, 203, 0x00, 0x02, B32(PLAIN), B32(CONTRIB) };

		expect_bad(q, sizeof(q));
	}
	/* and the same packets with counts that fit pass */
	{
		static const uint8_t sdes[] = { 0x81, 202, 0x00, 0x03, B32(PLAIN), 0x01, 2,
						'a',  'b', 0x00, 0x00, 0x00,	   0x00 };
		static const uint8_t bye[] = { 0x82, 203, 0x00, 0x02, B32(PLAIN), B32(CONTRIB) };
		static const uint8_t empty[] = { 0x80, 202, 0x00, 0x00, 0x80, 203, 0x00, 0x00 };

		assert_int_equal(rtcp_check(sdes, sizeof(sdes)), 0);
		assert_int_equal(rtcp_check(bye, sizeof(bye)), 0);
		assert_int_equal(rtcp_check(empty, sizeof(empty)), 0);
		assert_int_equal(rtcp_sender_ssrc(empty, sizeof(empty)), 0);
		assert_int_equal(rtcp_sender_ssrc(bye, sizeof(bye)), PLAIN);
	}
}

/* Every prefix of a compound passes exactly when it ends on a packet. */
static void test_rtcp_truncated(void **state)
{
	static const struct {
		const uint8_t *p;
		size_t n;
		size_t ends[4];
	} c[] = {
		{ sr_sdes, sizeof(sr_sdes), { 52, 72 } },
		{ rr_sdes_bye, sizeof(rr_sdes_bye), { 32, 72, 92 } },
		{ rr_fb, sizeof(rr_fb), { 8, 20, 36 } },
		{ rr_xr, sizeof(rr_xr), { 8, 44 } },
		{ sr_app, sizeof(sr_app), { 28, 44 } },
		{ rr_unknown_sdes, sizeof(rr_unknown_sdes), { 32, 44, 56 } },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		for (size_t n = 0; n <= c[i].n; n++) {
			bool end = false;

			for (size_t e = 0; e < 4; e++)
				if (n && c[i].ends[e] == n)
					end = true;
			assert_int_equal(rtcp_check(c[i].p, n), end ? 0 : EBADMSG);
			/* the readers stay inside n whatever they are given */
			if (!end) {
				uint8_t q[128];

				memcpy(q, c[i].p, n);
				(void)rtcp_sender_ssrc(q, n);
				(void)rtcp_set_sender_ssrc(q, n, OURS);
				(void)rtcp_map_source_ssrc(q, n, REMOTE, OURS);
			}
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rtp_minimal),
		cmocka_unit_test(test_rtp_csrc),
		cmocka_unit_test(test_rtp_extension),
		cmocka_unit_test(test_rtp_padding),
		cmocka_unit_test(test_rtp_version),
		cmocka_unit_test(test_rtp_truncated),
		cmocka_unit_test(test_rtp_setters),
		cmocka_unit_test(test_demux),
		cmocka_unit_test(test_rtcp_sr_sdes),
		cmocka_unit_test(test_rtcp_rr_sdes_bye),
		cmocka_unit_test(test_rtcp_sr_two_blocks),
		cmocka_unit_test(test_rtcp_feedback),
		cmocka_unit_test(test_rtcp_xr),
		cmocka_unit_test(test_rtcp_app),
		cmocka_unit_test(test_rtcp_unknown_type),
		cmocka_unit_test(test_rtcp_padding),
		cmocka_unit_test(test_rtcp_check_refuses),
		cmocka_unit_test(test_rtcp_truncated),
	};

	return cmocka_run_group_tests_name("rtp", tests, NULL, NULL);
}
