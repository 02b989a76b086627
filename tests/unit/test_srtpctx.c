/* srtpctx: real libsrtp2 at both ends, every suite. Besides round trips
 * through two srtpctx contexts (which a symmetric bug in the wrapper would
 * pass), packets cross between srtpctx and libsrtp2 sessions built here from
 * libsrtp2's own setters, and a few tests pin what libsrtp2 itself does where
 * srtpctx.c documents and works around it. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <srtp2/srtp.h>

#include "srtpbridge/bytes.h"
#include "srtpbridge/sdes.h"
#include "srtpbridge/secret.h"
#include "srtpbridge/srtpctx.h"
#include "srtpbridge/srtplib.h"
#include "srtpbridge/suite.h"

#include "srtp_fixture.h"

#define MAX_PLAIN 1500
#define BUF_SIZE  (MAX_PLAIN + SRTPCTX_TRAILER_MAX)
#define NPACKETS  100
#define SEQ_FIRST 65485 /* the sequence number wraps after 51 packets */
#define TEST_SSRC 0x5eed1234u

struct pkt {
	_Alignas(8) uint8_t b[BUF_SIZE];
	size_t len;
};

static void set_key(struct sdes_key *k, enum suite_id s, uint8_t seed)
{
	uint8_t b[SECRET_MAX];

	memset(k, 0, sizeof(*k));
	for (size_t i = 0; i < sizeof(b); i++)
		b[i] = (uint8_t)(seed + i * 29);
	assert_int_equal(secret_set(&k->keysalt, b, suite_keysalt_len(s)), 0);
}

static void set_mki(struct sdes_key *k, uint64_t value, unsigned len)
{
	k->has_mki = true;
	k->mki = value;
	k->mki_len = len;
}

static struct srtpctx *make_ctx(enum srtpctx_dir dir, enum suite_id s, const struct sdes_key *k,
				bool unencrypted_srtcp, unsigned window)
{
	struct srtpctx_params p = {
		.suite = s,
		.key = k,
		.unencrypted_srtcp = unencrypted_srtcp,
		.window = window,
	};
	struct srtpctx *c = NULL;

	assert_int_equal(srtpctx_create(&c, dir, &p), 0);
	assert_non_null(c);
	return c;
}

static void build_rtp(struct pkt *p, uint16_t seq, size_t payload_len, uint8_t fill)
{
	uint32_t ts = (uint32_t)seq * 160u;

	p->b[0] = 0x80;
	p->b[1] = 0x00; /* PCMU */
	p->b[2] = (uint8_t)(seq >> 8);
	p->b[3] = (uint8_t)seq;
	p->b[4] = (uint8_t)(ts >> 24);
	p->b[5] = (uint8_t)(ts >> 16);
	p->b[6] = (uint8_t)(ts >> 8);
	p->b[7] = (uint8_t)ts;
	p->b[8] = (uint8_t)(TEST_SSRC >> 24);
	p->b[9] = (uint8_t)(TEST_SSRC >> 16);
	p->b[10] = (uint8_t)(TEST_SSRC >> 8);
	p->b[11] = (uint8_t)TEST_SSRC;
	for (size_t i = 0; i < payload_len; i++)
		p->b[12 + i] = (uint8_t)(fill + i * 7);
	p->len = 12 + payload_len;
}

/* A compound SR + SDES(CNAME) packet, RFC 3550 sections 6.4.1 and 6.5,
 * whose CNAME is cname_len bytes long. */
static void build_rtcp(struct pkt *p, unsigned n, size_t cname_len)
{
	uint8_t *q = p->b;
	size_t chunk, sdes_len;

	q[0] = 0x80; /* V=2, RC=0 */
	q[1] = 200;  /* SR */
	q[2] = 0;
	q[3] = 6; /* 28 bytes */
	be32_put(q + 4, TEST_SSRC);
	be32_put(q + 8, 0xe1234567u + n); /* NTP seconds */
	be32_put(q + 12, 0x89abcdefu);	  /* NTP fraction */
	be32_put(q + 16, n * 160u);	  /* RTP timestamp */
	be32_put(q + 20, n);		  /* packet count */
	be32_put(q + 24, n * 160u);	  /* octet count */
	q += 28;
	/* SSRC, CNAME item, at least one null octet, padded to 32 bits */
	chunk = (4 + 2 + cname_len + 1 + 3) & ~(size_t)3;
	sdes_len = 4 + chunk;
	memset(q, 0, sdes_len);
	q[0] = 0x81; /* V=2, SC=1 */
	q[1] = 202;  /* SDES */
	q[2] = (uint8_t)((sdes_len / 4 - 1) >> 8);
	q[3] = (uint8_t)(sdes_len / 4 - 1);
	be32_put(q + 4, TEST_SSRC);
	q[8] = 1; /* CNAME */
	q[9] = (uint8_t)cname_len;
	for (size_t i = 0; i < cname_len; i++)
		q[10 + i] = (uint8_t)('a' + (n + i) % 26);
	p->len = 28 + sdes_len;
}

static size_t rtp_payload_len(unsigned i)
{
	if (i == 0)
		return 0;
	if (i == 1)
		return 1200;
	if (i == 2)
		return 1;
	return (i * 97) % 1400;
}

static void mki_expected(uint8_t *out, const struct sdes_key *k)
{
	for (unsigned i = 0; i < k->mki_len; i++)
		out[k->mki_len - 1 - i] = i < 8 ? (uint8_t)(k->mki >> (8 * i)) : 0;
}

/* 100 RTP packets through tx then rx, across the sequence wrap: lengths,
 * MKI placement, byte-exact result, replay, ROC. */
static void check_rtp_stream(struct srtpctx *tx, struct srtpctx *rx, enum suite_id s,
			     const struct sdes_key *k)
{
	const struct suite_info *si = suite_get(s);
	size_t mki_len = k->has_mki ? k->mki_len : 0;
	uint8_t mki[SDES_MAX_MKI_LEN];
	struct pkt plain, prot, saved;
	uint32_t roc = 99;

	mki_expected(mki, k);
	for (unsigned i = 0; i < NPACKETS; i++) {
		build_rtp(&plain, (uint16_t)(SEQ_FIRST + i), rtp_payload_len(i), (uint8_t)i);
		prot = plain;
		assert_int_equal(srtpctx_protect_rtp(tx, prot.b, &prot.len, sizeof(prot.b)),
				 SRTPCTX_OK);
		assert_int_equal(prot.len, plain.len + si->rtp_tag_len + mki_len);
		assert_memory_equal(prot.b, plain.b, 12);
		if (plain.len >= 12 + 16)
			assert_memory_not_equal(prot.b + 12, plain.b + 12, 16);
		/* AES-CM: payload || MKI || tag; AEAD: payload+tag || MKI */
		if (mki_len)
			assert_memory_equal(prot.b + plain.len + (si->aead ? si->rtp_tag_len : 0),
					    mki, mki_len);
		if (i == 50)
			saved = prot;
		assert_int_equal(srtpctx_unprotect_rtp(rx, prot.b, &prot.len), SRTPCTX_OK);
		assert_int_equal(prot.len, plain.len);
		assert_memory_equal(prot.b, plain.b, plain.len);
	}
	assert_int_equal(srtpctx_unprotect_rtp(rx, saved.b, &saved.len), SRTPCTX_REPLAY_FAIL);
	assert_int_equal(srtpctx_get_roc(tx, TEST_SSRC, &roc), 0);
	assert_int_equal(roc, 1);
	roc = 99;
	assert_int_equal(srtpctx_get_roc(rx, TEST_SSRC, &roc), 0);
	assert_int_equal(roc, 1);
	assert_int_equal(srtpctx_get_roc(rx, TEST_SSRC + 1, &roc), ENOENT);
}

/* 100 compound RTCP packets through tx then rx: lengths, E bit and MKI
 * placement, encrypted or not, byte-exact result, replay. */
static void check_rtcp_stream(struct srtpctx *tx, struct srtpctx *rx, enum suite_id s,
			      const struct sdes_key *k, bool unencrypted)
{
	const struct suite_info *si = suite_get(s);
	size_t mki_len = k->has_mki ? k->mki_len : 0;
	uint8_t mki[SDES_MAX_MKI_LEN];
	struct pkt plain, prot, saved;

	mki_expected(mki, k);
	for (unsigned i = 0; i < NPACKETS; i++) {
		size_t index_at;

		build_rtcp(&plain, i, 1 + (i * 13) % 200);
		prot = plain;
		assert_int_equal(srtpctx_protect_rtcp(tx, prot.b, &prot.len, sizeof(prot.b)),
				 SRTPCTX_OK);
		assert_int_equal(prot.len, plain.len + 4 + si->rtcp_tag_len + mki_len);
		/* AES-CM: RTCP || E+index || MKI || tag; AEAD: RTCP+tag || E+index || MKI */
		index_at = plain.len + (si->aead ? si->rtcp_tag_len : 0);
		assert_int_equal((prot.b[index_at] & 0x80) != 0, !unencrypted);
		assert_int_equal(prot.b[index_at + 3] | (prot.b[index_at + 2] << 8), i + 1);
		if (mki_len)
			assert_memory_equal(prot.b + index_at + 4, mki, mki_len);
		assert_memory_equal(prot.b, plain.b, 8);
		if (unencrypted)
			assert_memory_equal(prot.b, plain.b, plain.len);
		else
			assert_memory_not_equal(prot.b + 8, plain.b + 8, 20);
		if (i == 50)
			saved = prot;
		assert_int_equal(srtpctx_unprotect_rtcp(rx, prot.b, &prot.len), SRTPCTX_OK);
		assert_int_equal(prot.len, plain.len);
		assert_memory_equal(prot.b, plain.b, plain.len);
	}
	assert_int_equal(srtpctx_unprotect_rtcp(rx, saved.b, &saved.len), SRTPCTX_REPLAY_FAIL);
}

static void test_round_trip_every_suite(void **state)
{
	(void)state;
	for (int s = 0; s < SUITE_COUNT; s++) {
		struct sdes_key k;
		struct srtpctx *tx, *rx;

		if (!usable(s))
			continue;
		set_key(&k, s, (uint8_t)s);
		tx = make_ctx(SRTPCTX_OUTBOUND, s, &k, false, 0);
		rx = make_ctx(SRTPCTX_INBOUND, s, &k, false, 0);
		check_rtp_stream(tx, rx, s, &k);
		check_rtcp_stream(tx, rx, s, &k, false);
		srtpctx_destroy(tx);
		srtpctx_destroy(rx);

		tx = make_ctx(SRTPCTX_OUTBOUND, s, &k, true, 0);
		rx = make_ctx(SRTPCTX_INBOUND, s, &k, true, 0);
		check_rtcp_stream(tx, rx, s, &k, true);
		srtpctx_destroy(tx);
		srtpctx_destroy(rx);
		secret_wipe(&k.keysalt);
	}
}

static void expect_rtp(struct srtpctx *rx, const struct pkt *p, size_t flip,
		       enum srtpctx_result want)
{
	struct pkt copy = *p;

	copy.b[flip] ^= 0x01;
	assert_int_equal(srtpctx_unprotect_rtp(rx, copy.b, &copy.len), want);
}

static void expect_rtcp(struct srtpctx *rx, const struct pkt *p, size_t flip,
			enum srtpctx_result want)
{
	struct pkt copy = *p;

	copy.b[flip] ^= 0x01;
	assert_int_equal(srtpctx_unprotect_rtcp(rx, copy.b, &copy.len), want);
}

/* Header, payload and tag are each covered; the refused copies do not enter
 * the replay window, so the genuine packet still passes afterwards. */
static void test_tampered(void **state)
{
	(void)state;
	for (int s = 0; s < SUITE_COUNT; s++) {
		const struct suite_info *si = suite_get(s);
		struct pkt rtp, rtcp;
		size_t plain_len;
		struct sdes_key k;
		struct srtpctx *tx, *rx;

		if (!usable(s))
			continue;
		set_key(&k, s, 0x40);
		tx = make_ctx(SRTPCTX_OUTBOUND, s, &k, false, 0);
		rx = make_ctx(SRTPCTX_INBOUND, s, &k, false, 0);

		build_rtp(&rtp, 1000, 160, 3);
		assert_int_equal(srtpctx_protect_rtp(tx, rtp.b, &rtp.len, sizeof(rtp.b)),
				 SRTPCTX_OK);
		expect_rtp(rx, &rtp, 5, SRTPCTX_AUTH_FAIL);	      /* timestamp */
		expect_rtp(rx, &rtp, 12 + 80, SRTPCTX_AUTH_FAIL);     /* payload */
		expect_rtp(rx, &rtp, rtp.len - 1, SRTPCTX_AUTH_FAIL); /* tag */
		expect_rtp(rx, &rtp, rtp.len - si->rtp_tag_len, SRTPCTX_AUTH_FAIL);
		assert_int_equal(srtpctx_unprotect_rtp(rx, rtp.b, &rtp.len), SRTPCTX_OK);

		build_rtcp(&rtcp, 7, 20);
		plain_len = rtcp.len;
		assert_int_equal(srtpctx_protect_rtcp(tx, rtcp.b, &rtcp.len, sizeof(rtcp.b)),
				 SRTPCTX_OK);
		expect_rtcp(rx, &rtcp, 1, SRTPCTX_AUTH_FAIL);  /* packet type */
		expect_rtcp(rx, &rtcp, 12, SRTPCTX_AUTH_FAIL); /* SR body */
		expect_rtcp(rx, &rtcp, plain_len + (si->aead ? si->rtcp_tag_len - 1 : 4),
			    SRTPCTX_AUTH_FAIL);				 /* tag */
		expect_rtcp(rx, &rtcp, rtcp.len - 1, SRTPCTX_AUTH_FAIL); /* tag or index */
		assert_int_equal(srtpctx_unprotect_rtcp(rx, rtcp.b, &rtcp.len), SRTPCTX_OK);
		assert_int_equal(rtcp.len, plain_len);

		srtpctx_destroy(tx);
		srtpctx_destroy(rx);
	}
}

static void test_wrong_key(void **state)
{
	(void)state;
	for (int s = 0; s < SUITE_COUNT; s++) {
		struct sdes_key ours, theirs;
		struct srtpctx *tx, *rx;
		struct pkt p;

		if (!usable(s))
			continue;
		set_key(&ours, s, 1);
		set_key(&theirs, s, 2);
		tx = make_ctx(SRTPCTX_OUTBOUND, s, &ours, false, 0);
		rx = make_ctx(SRTPCTX_INBOUND, s, &theirs, false, 0);
		build_rtp(&p, 1, 160, 0);
		assert_int_equal(srtpctx_protect_rtp(tx, p.b, &p.len, sizeof(p.b)), SRTPCTX_OK);
		assert_int_equal(srtpctx_unprotect_rtp(rx, p.b, &p.len), SRTPCTX_AUTH_FAIL);
		build_rtcp(&p, 1, 10);
		assert_int_equal(srtpctx_protect_rtcp(tx, p.b, &p.len, sizeof(p.b)), SRTPCTX_OK);
		assert_int_equal(srtpctx_unprotect_rtcp(rx, p.b, &p.len), SRTPCTX_AUTH_FAIL);
		srtpctx_destroy(tx);
		srtpctx_destroy(rx);
	}
}

/* One side negotiated UNENCRYPTED_SRTCP and the other did not: cant_check
 * both ways, whatever libsrtp2 would have said (see test_libsrtp_e_bit). */
static void test_e_bit_mismatch(void **state)
{
	(void)state;
	for (int s = 0; s < SUITE_COUNT; s++) {
		for (int tx_unenc = 0; tx_unenc <= 1; tx_unenc++) {
			struct sdes_key k;
			struct srtpctx *tx, *rx, *good;
			struct pkt p, copy;

			if (!usable(s))
				continue;
			set_key(&k, s, 3);
			tx = make_ctx(SRTPCTX_OUTBOUND, s, &k, tx_unenc, 0);
			rx = make_ctx(SRTPCTX_INBOUND, s, &k, !tx_unenc, 0);
			good = make_ctx(SRTPCTX_INBOUND, s, &k, tx_unenc, 0);
			build_rtcp(&p, 1, 10);
			assert_int_equal(srtpctx_protect_rtcp(tx, p.b, &p.len, sizeof(p.b)),
					 SRTPCTX_OK);
			copy = p;
			assert_int_equal(srtpctx_unprotect_rtcp(rx, copy.b, &copy.len),
					 SRTPCTX_CANT_CHECK);
			/* the E bit flipped in transit */
			copy = p;
			copy.b[p.len - 4 - (suite_get(s)->aead ? 0 : suite_get(s)->rtcp_tag_len)] ^=
				0x80;
			assert_int_equal(srtpctx_unprotect_rtcp(good, copy.b, &copy.len),
					 SRTPCTX_CANT_CHECK);
			assert_int_equal(srtpctx_unprotect_rtcp(good, p.b, &p.len), SRTPCTX_OK);
			srtpctx_destroy(tx);
			srtpctx_destroy(rx);
			srtpctx_destroy(good);
		}
	}
}

static void test_too_short(void **state)
{
	(void)state;
	for (int s = 0; s < SUITE_COUNT; s++) {
		for (unsigned mki_len = 0; mki_len <= 4; mki_len += 4) {
			const struct suite_info *si = suite_get(s);
			struct sdes_key k;
			struct srtpctx *rx;
			struct pkt p;

			if (!usable(s))
				continue;
			set_key(&k, s, 4);
			if (mki_len)
				set_mki(&k, 7, mki_len);
			rx = make_ctx(SRTPCTX_INBOUND, s, &k, false, 0);
			memset(p.b, 0x80, sizeof(p.b));
			p.len = 3;
			assert_int_equal(srtpctx_unprotect_rtp(rx, p.b, &p.len),
					 SRTPCTX_CANT_CHECK);
			p.len = 3;
			assert_int_equal(srtpctx_unprotect_rtcp(rx, p.b, &p.len),
					 SRTPCTX_CANT_CHECK);
			/* one byte short of header, MKI and tag (and SRTCP index) */
			p.len = 12 + mki_len + si->rtp_tag_len - 1;
			assert_int_equal(srtpctx_unprotect_rtp(rx, p.b, &p.len),
					 SRTPCTX_CANT_CHECK);
			p.len = 8 + 4 + mki_len + si->rtcp_tag_len - 1;
			assert_int_equal(srtpctx_unprotect_rtcp(rx, p.b, &p.len),
					 SRTPCTX_CANT_CHECK);
			assert_int_equal(p.len, 8 + 4 + mki_len + si->rtcp_tag_len - 1);
			srtpctx_destroy(rx);
		}
	}
}

static void test_no_room_and_wrong_direction(void **state)
{
	struct sdes_key k;
	struct srtpctx *tx, *rx;
	struct pkt p, before;
	size_t cap, len;

	(void)state;
	set_key(&k, SUITE_AES_CM_128_HMAC_SHA1_80, 5);
	tx = make_ctx(SRTPCTX_OUTBOUND, SUITE_AES_CM_128_HMAC_SHA1_80, &k, false, 0);
	rx = make_ctx(SRTPCTX_INBOUND, SUITE_AES_CM_128_HMAC_SHA1_80, &k, false, 0);

	build_rtp(&p, 1, 160, 1);
	cap = p.len + SRTPCTX_TRAILER_MAX - 1;
	before = p;
	assert_int_equal(srtpctx_protect_rtp(tx, p.b, &p.len, cap), SRTPCTX_ERROR);
	assert_int_equal(p.len, before.len);
	assert_memory_equal(p.b, before.b, sizeof(p.b));
	build_rtcp(&p, 1, 10);
	cap = p.len + SRTPCTX_TRAILER_MAX - 1;
	before = p;
	assert_int_equal(srtpctx_protect_rtcp(tx, p.b, &p.len, cap), SRTPCTX_ERROR);
	assert_int_equal(p.len, before.len);
	assert_memory_equal(p.b, before.b, sizeof(p.b));
	/* libsrtp2 counts in int */
	len = (size_t)INT_MAX + 1;
	assert_int_equal(srtpctx_protect_rtp(tx, p.b, &len, SIZE_MAX), SRTPCTX_ERROR);
	assert_int_equal(srtpctx_protect_rtcp(tx, p.b, &len, SIZE_MAX), SRTPCTX_ERROR);
	assert_int_equal(srtpctx_unprotect_rtp(rx, p.b, &len), SRTPCTX_ERROR);
	assert_int_equal(srtpctx_unprotect_rtcp(rx, p.b, &len), SRTPCTX_ERROR);
	assert_memory_equal(p.b, before.b, sizeof(p.b));

	/* exactly enough room */
	build_rtp(&p, 1, 160, 1);
	cap = p.len + SRTPCTX_TRAILER_MAX;
	assert_int_equal(srtpctx_protect_rtp(tx, p.b, &p.len, cap), SRTPCTX_OK);

	assert_int_equal(srtpctx_protect_rtp(rx, p.b, &p.len, sizeof(p.b)), SRTPCTX_ERROR);
	assert_int_equal(srtpctx_protect_rtcp(rx, p.b, &p.len, sizeof(p.b)), SRTPCTX_ERROR);
	assert_int_equal(srtpctx_unprotect_rtp(tx, p.b, &p.len), SRTPCTX_ERROR);
	assert_int_equal(srtpctx_unprotect_rtcp(tx, p.b, &p.len), SRTPCTX_ERROR);
	assert_int_equal(srtpctx_unprotect_rtp(rx, p.b, &p.len), SRTPCTX_OK);
	srtpctx_destroy(tx);
	srtpctx_destroy(rx);
}

/* RFC 3711 section 3.1 MKIs of 1 and 4 bytes, every suite, RTP and both
 * kinds of SRTCP; a packet under another MKI is cant_check. */
static void test_mki(void **state)
{
	static const struct {
		uint64_t value, other;
		unsigned len;
	} mkis[] = {
		{ 0x5a, 0x5b, 1 },
		{ 0x01020304, 0x01020305, 4 },
	};

	(void)state;
	for (int s = 0; s < SUITE_COUNT; s++) {
		for (size_t m = 0; m < sizeof(mkis) / sizeof(mkis[0]); m++) {
			struct sdes_key k, other;
			struct srtpctx *tx, *rx, *rx_other;
			struct pkt p, copy;

			if (!usable(s))
				continue;
			set_key(&k, s, 6);
			set_mki(&k, mkis[m].value, mkis[m].len);
			other = k;
			other.mki = mkis[m].other;

			tx = make_ctx(SRTPCTX_OUTBOUND, s, &k, false, 0);
			rx = make_ctx(SRTPCTX_INBOUND, s, &k, false, 0);
			rx_other = make_ctx(SRTPCTX_INBOUND, s, &other, false, 0);
			check_rtp_stream(tx, rx, s, &k);
			check_rtcp_stream(tx, rx, s, &k, false);

			build_rtp(&p, 2000, 160, 9);
			assert_int_equal(srtpctx_protect_rtp(tx, p.b, &p.len, sizeof(p.b)),
					 SRTPCTX_OK);
			copy = p;
			assert_int_equal(srtpctx_unprotect_rtp(rx_other, copy.b, &copy.len),
					 SRTPCTX_CANT_CHECK);
			assert_int_equal(srtpctx_unprotect_rtp(rx, p.b, &p.len), SRTPCTX_OK);
			build_rtcp(&p, 200, 30);
			assert_int_equal(srtpctx_protect_rtcp(tx, p.b, &p.len, sizeof(p.b)),
					 SRTPCTX_OK);
			copy = p;
			assert_int_equal(srtpctx_unprotect_rtcp(rx_other, copy.b, &copy.len),
					 SRTPCTX_CANT_CHECK);
			assert_int_equal(srtpctx_unprotect_rtcp(rx, p.b, &p.len), SRTPCTX_OK);
			srtpctx_destroy(tx);
			srtpctx_destroy(rx);
			srtpctx_destroy(rx_other);

			tx = make_ctx(SRTPCTX_OUTBOUND, s, &k, true, 0);
			rx = make_ctx(SRTPCTX_INBOUND, s, &k, true, 0);
			check_rtcp_stream(tx, rx, s, &k, true);
			srtpctx_destroy(tx);
			srtpctx_destroy(rx);
		}
	}
}

/* The window comes from the parameters: 1024 by default (libsrtp2's own
 * default, 128, would refuse a packet 500 back), as given otherwise. */
static void test_replay_window(void **state)
{
	static struct pkt pkts[600];
	struct sdes_key k;
	struct srtpctx *tx, *rx, *rx64;

	(void)state;
	set_key(&k, SUITE_AES_CM_128_HMAC_SHA1_80, 8);
	tx = make_ctx(SRTPCTX_OUTBOUND, SUITE_AES_CM_128_HMAC_SHA1_80, &k, false, 0);
	rx = make_ctx(SRTPCTX_INBOUND, SUITE_AES_CM_128_HMAC_SHA1_80, &k, false, 0);
	rx64 = make_ctx(SRTPCTX_INBOUND, SUITE_AES_CM_128_HMAC_SHA1_80, &k, false, 64);
	for (unsigned i = 0; i < 600; i++) {
		build_rtp(&pkts[i], (uint16_t)(100 + i), 20, (uint8_t)i);
		assert_int_equal(
			srtpctx_protect_rtp(tx, pkts[i].b, &pkts[i].len, sizeof(pkts[i].b)),
			SRTPCTX_OK);
	}
	/* a non-increasing sequence from the plain side is refused too */
	{
		struct pkt again;

		build_rtp(&again, 100 + 599, 20, 1);
		assert_int_equal(srtpctx_protect_rtp(tx, again.b, &again.len, sizeof(again.b)),
				 SRTPCTX_REPLAY_FAIL);
	}
	{
		struct pkt newest = pkts[599], old = pkts[99];

		assert_int_equal(srtpctx_unprotect_rtp(rx, pkts[599].b, &pkts[599].len),
				 SRTPCTX_OK);
		assert_int_equal(srtpctx_unprotect_rtp(rx64, newest.b, &newest.len), SRTPCTX_OK);
		/* 500 packets back */
		assert_int_equal(srtpctx_unprotect_rtp(rx, pkts[99].b, &pkts[99].len), SRTPCTX_OK);
		assert_int_equal(srtpctx_unprotect_rtp(rx64, old.b, &old.len), SRTPCTX_REPLAY_FAIL);
	}
	srtpctx_destroy(tx);
	srtpctx_destroy(rx);
	srtpctx_destroy(rx64);
}

static void test_create_refuses(void **state)
{
	struct sdes_key k, short_key;
	struct srtpctx_params p = { .suite = SUITE_AES_CM_128_HMAC_SHA1_80, .key = &k };
	struct srtpctx *c = NULL;

	(void)state;
	set_key(&k, SUITE_AES_CM_128_HMAC_SHA1_80, 9);
	set_key(&short_key, SUITE_AEAD_AES_128_GCM, 9); /* 28 bytes, not 30 */
	p.key = &short_key;
	assert_int_equal(srtpctx_create(&c, SRTPCTX_INBOUND, &p), EINVAL);
	p.key = &k;
	p.suite = SUITE_COUNT;
	assert_int_equal(srtpctx_create(&c, SRTPCTX_INBOUND, &p), EINVAL);
	p.suite = SUITE_AES_CM_128_HMAC_SHA1_80;
	p.window = 63;
	assert_int_equal(srtpctx_create(&c, SRTPCTX_INBOUND, &p), EINVAL);
	p.window = 32768;
	assert_int_equal(srtpctx_create(&c, SRTPCTX_INBOUND, &p), EINVAL);
	p.window = 0;
	assert_int_equal(srtpctx_create(&c, (enum srtpctx_dir)2, &p), EINVAL);
	set_mki(&k, 1, 0);
	assert_int_equal(srtpctx_create(&c, SRTPCTX_INBOUND, &p), EINVAL);
	set_mki(&k, 0x100, 1);
	assert_int_equal(srtpctx_create(&c, SRTPCTX_INBOUND, &p), EINVAL);
	assert_null(c);

	/* the edges that are allowed */
	set_mki(&k, 0xff, 128);
	p.window = 32767;
	assert_int_equal(srtpctx_create(&c, SRTPCTX_OUTBOUND, &p), 0);
	srtpctx_destroy(c);
	srtpctx_destroy(NULL);

	assert_string_equal(srtpctx_result_name(SRTPCTX_OK), "ok");
	assert_string_equal(srtpctx_result_name(SRTPCTX_AUTH_FAIL), "auth_fail");
	assert_string_equal(srtpctx_result_name(SRTPCTX_REPLAY_FAIL), "replay_fail");
	assert_string_equal(srtpctx_result_name(SRTPCTX_CANT_CHECK), "cant_check");
	assert_string_equal(srtpctx_result_name(SRTPCTX_ERROR), "error");
}

/* ---- libsrtp2 sessions built here, without srtpctx or suite.c ---- */

struct raw_opts {
	bool gcm;		/* AEAD_AES_128_GCM, else AES_CM_128_HMAC_SHA1_80 */
	bool sha1_32;		/* AES_CM_128_HMAC_SHA1_32 (SRTCP keeps _80) */
	bool unencrypted_srtcp; /* sec_serv_auth for RTCP */
	const uint8_t *mki;
	unsigned mki_len;
};

static srtp_t raw_create(bool inbound, const struct sdes_key *k, const struct raw_opts *o)
{
	uint8_t key[SECRET_MAX];
	srtp_master_key_t master;
	srtp_master_key_t *masters[1] = { &master };
	srtp_policy_t policy;
	srtp_t session = NULL;

	memset(&policy, 0, sizeof(policy));
	if (o->gcm) {
		srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtp);
		srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtcp);
	} else if (o->sha1_32) {
		srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&policy.rtp);
		srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtcp);
	} else {
		srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtp);
		srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtcp);
	}
	if (o->unencrypted_srtcp)
		policy.rtcp.sec_serv = sec_serv_auth;
	policy.ssrc.type = inbound ? ssrc_any_inbound : ssrc_any_outbound;
	policy.window_size = 128;
	memcpy(key, k->keysalt.bytes, k->keysalt.len);
	if (o->mki_len) {
		master.key = key;
		master.mki_id = (unsigned char *)o->mki;
		master.mki_size = o->mki_len;
		policy.keys = masters;
		policy.num_master_keys = 1;
	} else {
		policy.key = key;
	}
	assert_int_equal(srtp_create(&session, &policy), srtp_err_status_ok);
	return session;
}

static srtp_err_status_t raw_protect(srtp_t s, struct pkt *p, bool rtcp, unsigned use_mki)
{
	int n = (int)p->len;
	srtp_err_status_t st = rtcp ? srtp_protect_rtcp_mki(s, p->b, &n, use_mki, 0)
				    : srtp_protect_mki(s, p->b, &n, use_mki, 0);

	p->len = (size_t)n;
	return st;
}

static srtp_err_status_t raw_unprotect(srtp_t s, struct pkt *p, bool rtcp, unsigned use_mki)
{
	int n = (int)p->len;
	srtp_err_status_t st = rtcp ? srtp_unprotect_rtcp_mki(s, p->b, &n, use_mki)
				    : srtp_unprotect_mki(s, p->b, &n, use_mki);

	p->len = (size_t)n;
	return st;
}

/* srtpctx one end, libsrtp2 the other, both ways, so that a bug that
 * srtpctx would make identically at both ends cannot hide. */
static void cross_check(enum suite_id s, const struct raw_opts *o)
{
	struct sdes_key k;
	struct srtpctx *tx, *rx;
	srtp_t raw_tx, raw_rx;
	unsigned use_mki = o->mki_len != 0;

	set_key(&k, s, 10);
	if (o->mki_len) {
		uint64_t v = 0;

		for (unsigned i = 0; i < o->mki_len; i++)
			v = v << 8 | o->mki[i];
		set_mki(&k, v, o->mki_len);
	}
	tx = make_ctx(SRTPCTX_OUTBOUND, s, &k, o->unencrypted_srtcp, 0);
	rx = make_ctx(SRTPCTX_INBOUND, s, &k, o->unencrypted_srtcp, 0);
	raw_tx = raw_create(false, &k, o);
	raw_rx = raw_create(true, &k, o);

	for (unsigned i = 0; i < 20; i++) {
		struct pkt plain, p;

		build_rtp(&plain, (uint16_t)(SEQ_FIRST + 40 + i), rtp_payload_len(i), 1);
		p = plain;
		assert_int_equal(srtpctx_protect_rtp(tx, p.b, &p.len, sizeof(p.b)), SRTPCTX_OK);
		assert_int_equal(raw_unprotect(raw_rx, &p, false, use_mki), srtp_err_status_ok);
		assert_int_equal(p.len, plain.len);
		assert_memory_equal(p.b, plain.b, plain.len);

		p = plain;
		assert_int_equal(raw_protect(raw_tx, &p, false, use_mki), srtp_err_status_ok);
		assert_int_equal(srtpctx_unprotect_rtp(rx, p.b, &p.len), SRTPCTX_OK);
		assert_int_equal(p.len, plain.len);
		assert_memory_equal(p.b, plain.b, plain.len);

		build_rtcp(&plain, i, 5 + i);
		p = plain;
		assert_int_equal(srtpctx_protect_rtcp(tx, p.b, &p.len, sizeof(p.b)), SRTPCTX_OK);
		assert_int_equal(raw_unprotect(raw_rx, &p, true, use_mki), srtp_err_status_ok);
		assert_int_equal(p.len, plain.len);
		assert_memory_equal(p.b, plain.b, plain.len);

		p = plain;
		assert_int_equal(raw_protect(raw_tx, &p, true, use_mki), srtp_err_status_ok);
		assert_int_equal(srtpctx_unprotect_rtcp(rx, p.b, &p.len), SRTPCTX_OK);
		assert_int_equal(p.len, plain.len);
		assert_memory_equal(p.b, plain.b, plain.len);
	}
	srtpctx_destroy(tx);
	srtpctx_destroy(rx);
	assert_int_equal(srtp_dealloc(raw_tx), srtp_err_status_ok);
	assert_int_equal(srtp_dealloc(raw_rx), srtp_err_status_ok);
}

static void test_cross_libsrtp(void **state)
{
	static const uint8_t mki[4] = { 0xde, 0xad, 0xbe, 0xef };
	const struct raw_opts plain_cm = { 0 };
	const struct raw_opts unenc_cm = { .unencrypted_srtcp = true };
	const struct raw_opts mki_cm = { .mki = mki, .mki_len = 4 };
	const struct raw_opts plain_gcm = { .gcm = true };
	const struct raw_opts unenc_gcm = { .gcm = true, .unencrypted_srtcp = true };
	const struct raw_opts mki_gcm = { .gcm = true, .mki = mki, .mki_len = 4 };

	(void)state;
	cross_check(SUITE_AES_CM_128_HMAC_SHA1_80, &plain_cm);
	cross_check(SUITE_AES_CM_128_HMAC_SHA1_80, &unenc_cm);
	cross_check(SUITE_AES_CM_128_HMAC_SHA1_80, &mki_cm);
	cross_check(SUITE_AEAD_AES_128_GCM, &plain_gcm);
	cross_check(SUITE_AEAD_AES_128_GCM, &unenc_gcm);
	cross_check(SUITE_AEAD_AES_128_GCM, &mki_gcm);
}

/* What libsrtp2 does on an E-bit mismatch by itself (srtpctx.c's comment):
 * cant_check with AES-CM; with GCM it follows the packet, so it accepts what
 * a mismatched peer sends and fails a flipped bit as auth_fail. */
static void test_libsrtp_e_bit(void **state)
{
	(void)state;
	for (int gcm = 0; gcm <= 1; gcm++) {
		for (int tx_unenc = 0; tx_unenc <= 1; tx_unenc++) {
			struct raw_opts txo = { .gcm = gcm, .unencrypted_srtcp = tx_unenc };
			struct raw_opts rxo = { .gcm = gcm, .unencrypted_srtcp = !tx_unenc };
			enum suite_id s =
				gcm ? SUITE_AEAD_AES_128_GCM : SUITE_AES_CM_128_HMAC_SHA1_80;
			struct sdes_key k;
			srtp_t tx, rx;
			struct pkt p;

			set_key(&k, s, 11);
			tx = raw_create(false, &k, &txo);
			rx = raw_create(true, &k, &rxo);
			build_rtcp(&p, 1, 10);
			assert_int_equal(raw_protect(tx, &p, true, 0), srtp_err_status_ok);
			assert_int_equal(raw_unprotect(rx, &p, true, 0),
					 gcm ? srtp_err_status_ok : srtp_err_status_cant_check);
			assert_int_equal(srtp_dealloc(rx), srtp_err_status_ok);
			/* a flipped E bit on a matching session */
			rx = raw_create(true, &k, &txo);
			build_rtcp(&p, 2, 10);
			assert_int_equal(raw_protect(tx, &p, true, 0), srtp_err_status_ok);
			p.b[p.len - 4 - (gcm ? 0 : 10)] ^= 0x80;
			assert_int_equal(raw_unprotect(rx, &p, true, 0),
					 gcm ? srtp_err_status_auth_fail
					     : srtp_err_status_cant_check);
			assert_int_equal(srtp_dealloc(tx), srtp_err_status_ok);
			assert_int_equal(srtp_dealloc(rx), srtp_err_status_ok);
		}
	}
}

/* What libsrtp2 does with MKIs by itself: bad_mki for one it does not know,
 * and, in 2.5, for every genuine SRTCP packet of a _32 suite
 * (cisco/libsrtp#733), which srtpctx.c works around. */
static void test_libsrtp_mki(void **state)
{
	static const uint8_t mki[2] = { 0x12, 0x34 };
	static const uint8_t other[2] = { 0x12, 0x35 };
	const struct raw_opts ours = { .mki = mki, .mki_len = 2 };
	const struct raw_opts theirs = { .mki = other, .mki_len = 2 };
	const struct raw_opts ours32 = { .sha1_32 = true, .mki = mki, .mki_len = 2 };
	struct sdes_key k;
	srtp_t tx, rx;
	struct pkt p;

	(void)state;
	set_key(&k, SUITE_AES_CM_128_HMAC_SHA1_80, 12);
	tx = raw_create(false, &k, &ours);
	rx = raw_create(true, &k, &theirs);
	build_rtp(&p, 1, 160, 0);
	assert_int_equal(raw_protect(tx, &p, false, 1), srtp_err_status_ok);
	assert_int_equal(raw_unprotect(rx, &p, false, 1), srtp_err_status_bad_mki);
	build_rtcp(&p, 1, 10);
	assert_int_equal(raw_protect(tx, &p, true, 1), srtp_err_status_ok);
	assert_int_equal(raw_unprotect(rx, &p, true, 1), srtp_err_status_bad_mki);
	assert_int_equal(srtp_dealloc(tx), srtp_err_status_ok);
	assert_int_equal(srtp_dealloc(rx), srtp_err_status_ok);

	if (srtp_get_version() >> 16 != 0x0205) {
		print_message("libsrtp2 %s: not checking the 2.5 SRTCP MKI bug\n",
			      srtp_get_version_string());
		return;
	}
	tx = raw_create(false, &k, &ours32);
	rx = raw_create(true, &k, &ours32);
	build_rtcp(&p, 1, 10);
	assert_int_equal(raw_protect(tx, &p, true, 1), srtp_err_status_ok);
	assert_int_equal(raw_unprotect(rx, &p, true, 1), srtp_err_status_bad_mki);
	assert_int_equal(srtp_dealloc(tx), srtp_err_status_ok);
	assert_int_equal(srtp_dealloc(rx), srtp_err_status_ok);
}

/* ---- re-keying: streams of their own with a given ROC ---- */

#define REKEY_SEQ0 1000u  /* 64536 packets under ROC 0, then the wrap */
#define REKEY_OLD  70000u /* packets under the old key: ROC 1 at the end */
#define REKEY_NEW  40u	  /* packets under the new key */
#define REKEY_SEQ1 5464u  /* (REKEY_SEQ0 + REKEY_OLD) % 65536: where the new key goes on */

_Static_assert(REKEY_SEQ1 == (REKEY_SEQ0 + REKEY_OLD) % 65536, "REKEY_SEQ1");

/* The order the new key's packets arrive in: out of order around the switch,
 * the very first one not the lowest. */
static unsigned rekey_order(unsigned i)
{
	static const unsigned head[] = { 2, 0, 3, 1, 5, 4, 7, 6 };

	return i < sizeof(head) / sizeof(head[0]) ? head[i] : i;
}

/* Protects REKEY_NEW packets from REKEY_SEQ1 with tx, and with ref (a
 * session that counted the whole call by itself) when given: the two must
 * be byte-identical, i.e. tx protects exactly the index libsrtp2 would. */
static void rekey_protect(struct pkt *out, struct pkt *plain, struct srtpctx *tx,
			  struct srtpctx *ref)
{
	for (unsigned i = 0; i < REKEY_NEW; i++) {
		build_rtp(&plain[i], (uint16_t)(REKEY_SEQ1 + i), 160, (uint8_t)(i + 77));
		out[i] = plain[i];
		assert_int_equal(srtpctx_protect_rtp(tx, out[i].b, &out[i].len, sizeof(out[i].b)),
				 SRTPCTX_OK);
		if (ref) {
			struct pkt r = plain[i];

			assert_int_equal(srtpctx_protect_rtp(ref, r.b, &r.len, sizeof(r.b)),
					 SRTPCTX_OK);
			assert_int_equal(r.len, out[i].len);
			assert_memory_equal(r.b, out[i].b, r.len);
		}
	}
}

/* Delivers the new key's packets in rekey_order to rx, which must take all
 * of them (want OK) or none (want AUTH_FAIL), and to each of others on a
 * copy, which must refuse all of them as auth_fail. */
static void rekey_deliver(const struct pkt *out, const struct pkt *plain, struct srtpctx *rx,
			  enum srtpctx_result want, struct srtpctx *other)
{
	for (unsigned n = 0; n < REKEY_NEW; n++) {
		unsigned i = rekey_order(n);
		struct pkt p = out[i];

		if (other) {
			struct pkt copy = out[i];

			assert_int_equal(srtpctx_unprotect_rtp(other, copy.b, &copy.len),
					 SRTPCTX_AUTH_FAIL);
		}
		assert_int_equal(srtpctx_unprotect_rtp(rx, p.b, &p.len), want);
		if (want == SRTPCTX_OK) {
			assert_int_equal(p.len, plain[i].len);
			assert_memory_equal(p.b, plain[i].b, p.len);
		}
	}
}

/* RFC 3711 section 3.3.1: a new key 70000 packets into a call, after a
 * sequence wrap. The new contexts get a stream with ROC 1 and take every
 * packet, out of order around the switch too; a receiver left with the
 * ssrc_any template (ROC 0) takes none, so the seeding is what does it. The
 * new sender's packets are byte for byte those of a session that counted
 * the whole call under the new key by itself. The contexts keep their own
 * copy of the key: the caller's is wiped before add_stream. */
static void test_rekey_keeps_roc(void **state)
{
	static struct pkt out[REKEY_NEW], plain[REKEY_NEW];
	const enum suite_id s = SUITE_AES_CM_128_HMAC_SHA1_80;
	struct sdes_key k1, k2;
	struct srtpctx *s1, *r1, *s2, *r2, *r2_template, *ref;
	uint32_t roc;

	(void)state;
	set_key(&k1, s, 20);
	set_key(&k2, s, 21);
	s1 = make_ctx(SRTPCTX_OUTBOUND, s, &k1, false, 0);
	r1 = make_ctx(SRTPCTX_INBOUND, s, &k1, false, 0);
	ref = make_ctx(SRTPCTX_OUTBOUND, s, &k2, false, 0);
	for (unsigned i = 0; i < REKEY_OLD; i++) {
		struct pkt pl, p, r;

		build_rtp(&pl, (uint16_t)(REKEY_SEQ0 + i), 20, (uint8_t)i);
		p = r = pl;
		assert_int_equal(srtpctx_protect_rtp(s1, p.b, &p.len, sizeof(p.b)), SRTPCTX_OK);
		assert_int_equal(srtpctx_unprotect_rtp(r1, p.b, &p.len), SRTPCTX_OK);
		assert_int_equal(p.len, pl.len);
		assert_memory_equal(p.b, pl.b, pl.len);
		assert_int_equal(srtpctx_protect_rtp(ref, r.b, &r.len, sizeof(r.b)), SRTPCTX_OK);
	}
	assert_int_equal(srtpctx_get_roc(s1, TEST_SSRC, &roc), 0);
	assert_int_equal(roc, 1);
	assert_int_equal(srtpctx_get_roc(r1, TEST_SSRC, &roc), 0);
	assert_int_equal(roc, 1);
	assert_int_equal(srtpctx_packets(s1), REKEY_OLD);
	assert_int_equal(srtpctx_packets(r1), REKEY_OLD);

	s2 = make_ctx(SRTPCTX_OUTBOUND, s, &k2, false, 0);
	r2 = make_ctx(SRTPCTX_INBOUND, s, &k2, false, 0);
	r2_template = make_ctx(SRTPCTX_INBOUND, s, &k2, false, 0);
	secret_wipe(&k2.keysalt);
	assert_int_equal(srtpctx_add_stream(s2, TEST_SSRC, 1), 0);
	assert_int_equal(srtpctx_add_stream(r2, TEST_SSRC, 1), 0);
	/* libsrtp2 keeps the ROC pending and reports 0 until a packet; the
	 * wrapper reports what was seeded, so that a second re-key before any
	 * packet carries it on */
	roc = 99;
	assert_int_equal(srtpctx_get_roc(r2, TEST_SSRC, &roc), 0);
	assert_int_equal(roc, 1);
	assert_int_equal(srtpctx_get_roc(s2, TEST_SSRC, &roc), 0);
	assert_int_equal(roc, 1);

	rekey_protect(out, plain, s2, ref);
	/* a forged packet first does not use the pending ROC up */
	{
		struct pkt forged = out[rekey_order(0)];

		forged.b[20] ^= 0x01;
		assert_int_equal(srtpctx_unprotect_rtp(r2, forged.b, &forged.len),
				 SRTPCTX_AUTH_FAIL);
	}
	rekey_deliver(out, plain, r2, SRTPCTX_OK, r2_template);
	assert_int_equal(srtpctx_get_roc(s2, TEST_SSRC, &roc), 0);
	assert_int_equal(roc, 1);
	assert_int_equal(srtpctx_get_roc(r2, TEST_SSRC, &roc), 0);
	assert_int_equal(roc, 1);
	assert_int_equal(srtpctx_get_roc(r2_template, TEST_SSRC, &roc), ENOENT);
	assert_int_equal(srtpctx_packets(s2), REKEY_NEW);
	assert_int_equal(srtpctx_packets(r2), REKEY_NEW);
	assert_int_equal(srtpctx_packets(r2_template), 0);

	srtpctx_destroy(s1);
	srtpctx_destroy(r1);
	srtpctx_destroy(s2);
	srtpctx_destroy(r2);
	srtpctx_destroy(r2_template);
	srtpctx_destroy(ref);
}

/* A peer that starts its ROC again at a re-key (add_stream with 0: the same
 * as a session that never saw the SSRC): a receiver seeded with 1 takes
 * none of its packets, one left with the template (ROC 0) takes all. */
static void test_rekey_resets_roc(void **state)
{
	static struct pkt out[REKEY_NEW], plain[REKEY_NEW];
	const enum suite_id s = SUITE_AES_CM_128_HMAC_SHA1_80;
	struct sdes_key k2;
	struct srtpctx *s2, *r2, *r2_template, *fresh;
	uint32_t roc = 99;

	(void)state;
	set_key(&k2, s, 22);
	s2 = make_ctx(SRTPCTX_OUTBOUND, s, &k2, false, 0);
	r2 = make_ctx(SRTPCTX_INBOUND, s, &k2, false, 0);
	r2_template = make_ctx(SRTPCTX_INBOUND, s, &k2, false, 0);
	fresh = make_ctx(SRTPCTX_OUTBOUND, s, &k2, false, 0);
	assert_int_equal(srtpctx_add_stream(s2, TEST_SSRC, 0), 0);
	assert_int_equal(srtpctx_get_roc(s2, TEST_SSRC, &roc), 0);
	assert_int_equal(roc, 0);
	assert_int_equal(srtpctx_add_stream(r2, TEST_SSRC, 1), 0);

	rekey_protect(out, plain, s2, fresh);
	rekey_deliver(out, plain, r2_template, SRTPCTX_OK, r2);
	assert_int_equal(srtpctx_get_roc(s2, TEST_SSRC, &roc), 0);
	assert_int_equal(roc, 0);
	assert_int_equal(srtpctx_packets(r2_template), REKEY_NEW);
	assert_int_equal(srtpctx_packets(r2), 0);

	srtpctx_destroy(s2);
	srtpctx_destroy(r2);
	srtpctx_destroy(r2_template);
	srtpctx_destroy(fresh);
}

/* EEXIST for a stream added before, or made from the template by a packet
 * (outbound: any protected packet; inbound: an authenticated one only). */
static void test_add_stream_exists(void **state)
{
	const enum suite_id s = SUITE_AES_CM_128_HMAC_SHA1_80;
	struct sdes_key k;
	struct srtpctx *tx, *rx, *rx_forged;
	struct pkt p, forged;

	(void)state;
	set_key(&k, s, 23);
	tx = make_ctx(SRTPCTX_OUTBOUND, s, &k, false, 0);
	rx = make_ctx(SRTPCTX_INBOUND, s, &k, false, 0);
	rx_forged = make_ctx(SRTPCTX_INBOUND, s, &k, false, 0);

	assert_int_equal(srtpctx_add_stream(tx, TEST_SSRC + 1, 3), 0);
	assert_int_equal(srtpctx_add_stream(tx, TEST_SSRC + 1, 3), EEXIST);
	assert_int_equal(srtpctx_add_stream(tx, TEST_SSRC + 1, 0), EEXIST);
	assert_int_equal(srtpctx_add_stream(rx, TEST_SSRC + 1, 0), 0);
	assert_int_equal(srtpctx_add_stream(rx, TEST_SSRC + 1, 0), EEXIST);

	build_rtp(&p, 10, 160, 1);
	assert_int_equal(srtpctx_protect_rtp(tx, p.b, &p.len, sizeof(p.b)), SRTPCTX_OK);
	assert_int_equal(srtpctx_add_stream(tx, TEST_SSRC, 0), EEXIST);
	forged = p;
	forged.b[30] ^= 0x01;
	assert_int_equal(srtpctx_unprotect_rtp(rx_forged, forged.b, &forged.len),
			 SRTPCTX_AUTH_FAIL);
	assert_int_equal(srtpctx_add_stream(rx_forged, TEST_SSRC, 0), 0);
	assert_int_equal(srtpctx_unprotect_rtp(rx, p.b, &p.len), SRTPCTX_OK);
	assert_int_equal(srtpctx_add_stream(rx, TEST_SSRC, 0), EEXIST);

	srtpctx_destroy(tx);
	srtpctx_destroy(rx);
	srtpctx_destroy(rx_forged);
}

/* Every suite, with and without an MKI: added streams with ROC 7 at both
 * ends across a wrap (ROC 8 after it), the MKI in every packet; SRTCP through
 * the same streams; a template receiver (ROC 0) takes none of the RTP. */
static void test_add_stream_every_suite(void **state)
{
	(void)state;
	for (int s = 0; s < SUITE_COUNT; s++) {
		for (unsigned mki_len = 0; mki_len <= 4; mki_len += 4) {
			const struct suite_info *si = suite_get(s);
			uint8_t mki[SDES_MAX_MKI_LEN];
			struct srtpctx *tx, *rx, *rx_template;
			struct sdes_key k;
			uint32_t roc;

			if (!usable(s))
				continue;
			set_key(&k, s, 24);
			if (mki_len)
				set_mki(&k, 0x0badcafe, mki_len);
			mki_expected(mki, &k);
			tx = make_ctx(SRTPCTX_OUTBOUND, s, &k, false, 0);
			rx = make_ctx(SRTPCTX_INBOUND, s, &k, false, 0);
			rx_template = make_ctx(SRTPCTX_INBOUND, s, &k, false, 0);
			assert_int_equal(srtpctx_add_stream(tx, TEST_SSRC, 7), 0);
			assert_int_equal(srtpctx_add_stream(rx, TEST_SSRC, 7), 0);
			for (unsigned i = 0; i < 12; i++) {
				struct pkt plain, p, copy;

				build_rtp(&plain, (uint16_t)(65530 + i), 100, (uint8_t)i);
				p = plain;
				assert_int_equal(srtpctx_protect_rtp(tx, p.b, &p.len, sizeof(p.b)),
						 SRTPCTX_OK);
				assert_int_equal(p.len, plain.len + si->rtp_tag_len + mki_len);
				if (mki_len)
					assert_memory_equal(
						p.b + plain.len + (si->aead ? si->rtp_tag_len : 0),
						mki, mki_len);
				copy = p;
				assert_int_equal(
					srtpctx_unprotect_rtp(rx_template, copy.b, &copy.len),
					SRTPCTX_AUTH_FAIL);
				assert_int_equal(srtpctx_unprotect_rtp(rx, p.b, &p.len),
						 SRTPCTX_OK);
				assert_int_equal(p.len, plain.len);
				assert_memory_equal(p.b, plain.b, plain.len);
			}
			assert_int_equal(srtpctx_get_roc(tx, TEST_SSRC, &roc), 0);
			assert_int_equal(roc, 8);
			assert_int_equal(srtpctx_get_roc(rx, TEST_SSRC, &roc), 0);
			assert_int_equal(roc, 8);
			check_rtcp_stream(tx, rx, s, &k, false);
			assert_int_equal(srtpctx_packets(rx), 12 + NPACKETS);
			srtpctx_destroy(tx);
			srtpctx_destroy(rx);
			srtpctx_destroy(rx_template);
		}
	}
}

/* Successful protects and unprotects, RTP and RTCP; nothing that failed. */
static void test_packets_counted(void **state)
{
	const enum suite_id s = SUITE_AES_CM_128_HMAC_SHA1_80;
	struct sdes_key k;
	struct srtpctx *tx, *rx;
	struct pkt rtp[3], rtcp, p;

	(void)state;
	set_key(&k, s, 25);
	tx = make_ctx(SRTPCTX_OUTBOUND, s, &k, false, 0);
	rx = make_ctx(SRTPCTX_INBOUND, s, &k, false, 0);
	assert_int_equal(srtpctx_packets(tx), 0);
	assert_int_equal(srtpctx_packets(rx), 0);

	for (unsigned i = 0; i < 3; i++) {
		build_rtp(&rtp[i], (uint16_t)(50 + i), 160, (uint8_t)i);
		assert_int_equal(srtpctx_protect_rtp(tx, rtp[i].b, &rtp[i].len, sizeof(rtp[i].b)),
				 SRTPCTX_OK);
	}
	build_rtp(&p, 52, 160, 0); /* not increasing */
	assert_int_equal(srtpctx_protect_rtp(tx, p.b, &p.len, sizeof(p.b)), SRTPCTX_REPLAY_FAIL);
	build_rtp(&p, 60, 160, 0);
	assert_int_equal(srtpctx_protect_rtp(tx, p.b, &p.len, p.len), SRTPCTX_ERROR);
	assert_int_equal(srtpctx_unprotect_rtp(tx, rtp[0].b, &rtp[0].len), SRTPCTX_ERROR);
	assert_int_equal(srtpctx_packets(tx), 3);
	build_rtcp(&rtcp, 1, 10);
	assert_int_equal(srtpctx_protect_rtcp(tx, rtcp.b, &rtcp.len, sizeof(rtcp.b)), SRTPCTX_OK);
	assert_int_equal(srtpctx_packets(tx), 4);

	p = rtp[0];
	p.b[40] ^= 0x01;
	assert_int_equal(srtpctx_unprotect_rtp(rx, p.b, &p.len), SRTPCTX_AUTH_FAIL);
	p.len = 5;
	assert_int_equal(srtpctx_unprotect_rtp(rx, p.b, &p.len), SRTPCTX_CANT_CHECK);
	assert_int_equal(srtpctx_packets(rx), 0);
	p = rtp[0];
	assert_int_equal(srtpctx_unprotect_rtp(rx, p.b, &p.len), SRTPCTX_OK);
	p = rtp[0];
	assert_int_equal(srtpctx_unprotect_rtp(rx, p.b, &p.len), SRTPCTX_REPLAY_FAIL);
	assert_int_equal(srtpctx_unprotect_rtp(rx, rtp[2].b, &rtp[2].len), SRTPCTX_OK);
	assert_int_equal(srtpctx_packets(rx), 2);
	p = rtcp;
	p.b[12] ^= 0x01;
	assert_int_equal(srtpctx_unprotect_rtcp(rx, p.b, &p.len), SRTPCTX_AUTH_FAIL);
	p = rtcp;
	assert_int_equal(srtpctx_unprotect_rtcp(rx, p.b, &p.len), SRTPCTX_OK);
	assert_int_equal(srtpctx_unprotect_rtcp(rx, rtcp.b, &rtcp.len), SRTPCTX_REPLAY_FAIL);
	assert_int_equal(srtpctx_packets(rx), 3);
	assert_int_equal(srtpctx_packets(tx), 4);

	srtpctx_destroy(tx);
	srtpctx_destroy(rx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_every_suite),
		cmocka_unit_test(test_tampered),
		cmocka_unit_test(test_wrong_key),
		cmocka_unit_test(test_e_bit_mismatch),
		cmocka_unit_test(test_too_short),
		cmocka_unit_test(test_no_room_and_wrong_direction),
		cmocka_unit_test(test_mki),
		cmocka_unit_test(test_replay_window),
		cmocka_unit_test(test_create_refuses),
		cmocka_unit_test(test_cross_libsrtp),
		cmocka_unit_test(test_libsrtp_e_bit),
		cmocka_unit_test(test_libsrtp_mki),
		cmocka_unit_test(test_rekey_keeps_roc),
		cmocka_unit_test(test_rekey_resets_roc),
		cmocka_unit_test(test_add_stream_exists),
		cmocka_unit_test(test_add_stream_every_suite),
		cmocka_unit_test(test_packets_counted),
	};

	return cmocka_run_group_tests_name("srtpctx", tests, setup_group, teardown_group);
}
