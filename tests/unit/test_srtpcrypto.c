/* srtpcrypto: our HMAC-SHA1, AES-ICM and AES-GCM in libsrtp2's place.
 * Both ends of every SRTP session here are in-process and would run on ours
 * alike, so nothing is only checked by a round trip: packets are protected
 * with libsrtp2's own crypto before ours is installed (the first test, which
 * must stay first) and again after, byte for byte; each cipher's output is
 * that of libsrtp2's own type for the same input, and RFC 3711's keystream;
 * and whole packets are libsrtp2's published vectors and ones rtpengine (an
 * implementation that is not libsrtp) sent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <srtp2/auth.h>
#include <srtp2/cipher.h>
#include <srtp2/srtp.h>

#include "srtpbridge/sdes.h"
#include "srtpbridge/srtpcrypto.h"
#include "srtpbridge/srtplib.h"
#include "srtpbridge/suite.h"

#include "kat_fixture.h"
#include "srtp_fixture.h"

/* crypto_kernel.h, which libsrtp2 does not install: the lookup by id that
 * srtp_create() itself makes, so what it returns is what sessions get. */
srtp_err_status_t srtp_crypto_kernel_alloc_cipher(srtp_cipher_type_id_t id,
						  srtp_cipher_pointer_t *cp, int key_len,
						  int tag_len);
srtp_err_status_t srtp_crypto_kernel_alloc_auth(srtp_auth_type_id_t id, srtp_auth_pointer_t *ap,
						int key_len, int tag_len);
/* cipher_types.h, likewise: libsrtp2's own ciphers, the reference below
 * (exported by the static library and by Debian's shared one). */
extern const srtp_cipher_type_t srtp_aes_icm_128, srtp_aes_icm_192, srtp_aes_icm_256;
extern const srtp_cipher_type_t srtp_aes_gcm_128, srtp_aes_gcm_256;

#define OURS	  "srtpbridge" /* in the description of each of ours */
#define BUF_SIZE  (1500 + SRTP_MAX_TRAILER_LEN + 4)
#define TEST_SSRC 0x5eed1234u

/* Every suite: AES-CM of each key size with both tag lengths, and GCM. */
static const enum suite_id suites[] = {
	SUITE_AES_CM_128_HMAC_SHA1_80, SUITE_AES_CM_128_HMAC_SHA1_32, SUITE_AES_192_CM_HMAC_SHA1_80,
	SUITE_AES_192_CM_HMAC_SHA1_32, SUITE_AES_256_CM_HMAC_SHA1_80, SUITE_AES_256_CM_HMAC_SHA1_32,
	SUITE_AEAD_AES_128_GCM,	       SUITE_AEAD_AES_256_GCM,
};
#define NSUITES (sizeof(suites) / sizeof(suites[0]))
/* RTP payload lengths: none, partial blocks, one block, G.711, near an MTU */
static const size_t rtp_payloads[] = { 0, 1, 15, 16, 17, 160, 1200 };
#define NRTP  (sizeof(rtp_payloads) / sizeof(rtp_payloads[0]))
#define NRTCP 3

struct pkt {
	_Alignas(8) uint8_t b[BUF_SIZE];
	int len;
};

/* What libsrtp2's own crypto made of each packet, before ours was in. */
static struct {
	bool done;
	struct pkt rtp[NRTP], rtcp[NRTCP];
} before[NSUITES];

static bool ours(const char *description)
{
	return strstr(description, OURS) != NULL;
}

/* What srtp_create() would get from libsrtp2's crypto kernel for cipher id
 * with a key of key_len bytes: ours or its own. */
static bool kernel_cipher_is_ours(srtp_cipher_type_id_t id, int key_len)
{
	srtp_cipher_t *c = NULL;
	bool mine;

	/* a tag length that GCM takes and AES-ICM ignores */
	assert_int_equal(srtp_crypto_kernel_alloc_cipher(id, &c, key_len, 16), srtp_err_status_ok);
	mine = ours(c->type->description);
	assert_int_equal(srtp_cipher_dealloc(c), srtp_err_status_ok);
	return mine;
}

static bool kernel_hmac_is_ours(void)
{
	srtp_auth_t *a = NULL;
	bool mine;

	assert_int_equal(srtp_crypto_kernel_alloc_auth(SRTP_HMAC_SHA1, &a, 20, 10),
			 srtp_err_status_ok);
	mine = ours(a->type->description);
	assert_int_equal(a->type->dealloc(a), srtp_err_status_ok);
	return mine;
}

static srtp_t session(enum suite_id s, const uint8_t *keysalt, bool outbound)
{
	srtp_policy_t pol;
	srtp_t t = NULL;

	memset(&pol, 0, sizeof(pol));
	suite_srtp_policies(s, &pol.rtp, &pol.rtcp);
	pol.ssrc.type = outbound ? ssrc_any_outbound : ssrc_any_inbound;
	pol.key = (unsigned char *)keysalt;
	pol.window_size = 128;
	assert_int_equal(srtp_create(&t, &pol), srtp_err_status_ok);
	return t;
}

static void suite_key(uint8_t *k, enum suite_id s)
{
	for (unsigned i = 0; i < suite_keysalt_len(s); i++)
		k[i] = (uint8_t)(0x3c + 53 * i + 7 * (unsigned)s);
}

static void plain_rtp(struct pkt *p, unsigned i)
{
	uint16_t seq = (uint16_t)(65533 + i); /* across the wrap: ROC 0 then 1 */

	memset(p, 0, sizeof(*p));
	p->b[0] = 0x80;
	p->b[2] = (uint8_t)(seq >> 8);
	p->b[3] = (uint8_t)seq;
	p->b[7] = (uint8_t)i;
	p->b[8] = (uint8_t)(TEST_SSRC >> 24);
	p->b[9] = (uint8_t)(TEST_SSRC >> 16);
	p->b[10] = (uint8_t)(TEST_SSRC >> 8);
	p->b[11] = (uint8_t)TEST_SSRC;
	for (size_t j = 0; j < rtp_payloads[i]; j++)
		p->b[12 + j] = (uint8_t)(i + 11 * j);
	p->len = 12 + (int)rtp_payloads[i];
}

/* An RTCP receiver report with no blocks, padded out to 8 + 4 * (1 + 9 i)
 * bytes with an APP-like tail: what is encrypted differs in length. */
static void plain_rtcp(struct pkt *p, unsigned i)
{
	unsigned words = 1 + 9 * i;

	memset(p, 0, sizeof(*p));
	p->b[0] = 0x80;
	p->b[1] = 201; /* RR */
	p->b[3] = (uint8_t)words;
	p->b[4] = (uint8_t)(TEST_SSRC >> 24);
	p->b[5] = (uint8_t)(TEST_SSRC >> 16);
	p->b[6] = (uint8_t)(TEST_SSRC >> 8);
	p->b[7] = (uint8_t)TEST_SSRC;
	for (unsigned j = 8; j < 4 + 4 * words; j++)
		p->b[j] = (uint8_t)(i * 3 + j);
	p->len = (int)(4 + 4 * words);
}

/* Every packet through a new outbound session of suite s. */
static void protect_all(enum suite_id s, struct pkt *rtp, struct pkt *rtcp)
{
	uint8_t key[64];
	srtp_t tx;

	suite_key(key, s);
	tx = session(s, key, true);
	for (unsigned i = 0; i < NRTP; i++) {
		plain_rtp(&rtp[i], i);
		assert_int_equal(srtp_protect(tx, rtp[i].b, &rtp[i].len), srtp_err_status_ok);
	}
	for (unsigned i = 0; i < NRTCP; i++) {
		plain_rtcp(&rtcp[i], i);
		assert_int_equal(srtp_protect_rtcp(tx, rtcp[i].b, &rtcp[i].len),
				 srtp_err_status_ok);
	}
	assert_int_equal(srtp_dealloc(tx), srtp_err_status_ok);
}

/* First: libsrtp2's own crypto, nothing of ours yet. */
static void test_before_install(void **state)
{
	(void)state;
	assert_false(kernel_hmac_is_ours());
	assert_false(kernel_cipher_is_ours(SRTP_AES_ICM_128, SRTP_AES_ICM_128_KEY_LEN_WSALT));
	assert_false(kernel_cipher_is_ours(SRTP_AES_ICM_256, SRTP_AES_ICM_256_KEY_LEN_WSALT));
	assert_false(kernel_cipher_is_ours(SRTP_AES_GCM_128, SRTP_AES_GCM_128_KEY_LEN_WSALT));
	for (size_t i = 0; i < NSUITES; i++) {
		if (!usable(suites[i]))
			continue;
		protect_all(suites[i], before[i].rtp, before[i].rtcp);
		before[i].done = true;
	}
}

static void test_install(void **state)
{
	(void)state;
	assert_int_equal(srtpcrypto_install(), SRTPCRYPTO_ALL);
	assert_int_equal(srtpcrypto_install(), SRTPCRYPTO_ALL); /* once; the same answer */
	assert_true(kernel_hmac_is_ours());
	/* whichever id asks, each key length gets its own size */
	assert_true(kernel_cipher_is_ours(SRTP_AES_ICM_128, SRTP_AES_ICM_128_KEY_LEN_WSALT));
	assert_true(kernel_cipher_is_ours(SRTP_AES_ICM_192, SRTP_AES_ICM_192_KEY_LEN_WSALT));
	assert_true(kernel_cipher_is_ours(SRTP_AES_ICM_256, SRTP_AES_ICM_256_KEY_LEN_WSALT));
	assert_true(kernel_cipher_is_ours(SRTP_AES_ICM_128, SRTP_AES_ICM_256_KEY_LEN_WSALT));
	assert_true(kernel_cipher_is_ours(SRTP_AES_GCM_128, SRTP_AES_GCM_128_KEY_LEN_WSALT));
	assert_true(kernel_cipher_is_ours(SRTP_AES_GCM_256, SRTP_AES_GCM_256_KEY_LEN_WSALT));
}

/* RFC 3711 appendix B.2, through libsrtp2's cipher API on the type the
 * kernel hands out: the keystream's first three blocks, and the three
 * around the 16-bit block counter's carry (0xfeff..0xff01), reached in
 * uneven steps so that a block is split between calls many times. */
static void test_rfc3711_b2_keystream(void **state)
{
	static const uint8_t key[30] = {
		0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6, 0xab, 0xf7,
		0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3c, 0xf0, 0xf1, 0xf2, 0xf3,
		0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd
	};
	static const uint8_t first[48] = {
		0xe0, 0x3e, 0xad, 0x09, 0x35, 0xc9, 0x5e, 0x80, 0xe1, 0x66, 0xb1, 0x6d,
		0xd9, 0x2b, 0x4e, 0xb4, 0xd2, 0x35, 0x13, 0x16, 0x2b, 0x02, 0xd0, 0xf7,
		0x2a, 0x43, 0xa2, 0xfe, 0x4a, 0x5f, 0x97, 0xab, 0x41, 0xe9, 0x5b, 0x3b,
		0xb0, 0xa2, 0xe8, 0xdd, 0x47, 0x79, 0x01, 0xe4, 0xfc, 0xa8, 0x94, 0xc0,
	};
	static const uint8_t at_feff[48] = {
		0xec, 0x8c, 0xdf, 0x73, 0x98, 0x60, 0x7c, 0xb0, 0xf2, 0xd2, 0x16, 0x75,
		0xea, 0x9e, 0xa1, 0xe4, 0x36, 0x2b, 0x7c, 0x3c, 0x67, 0x73, 0x51, 0x63,
		0x18, 0xa0, 0x77, 0xd7, 0xfc, 0x50, 0x73, 0xae, 0x6a, 0x2c, 0xc3, 0x78,
		0x78, 0x89, 0x37, 0x4f, 0xbe, 0xb4, 0xc8, 0x1b, 0x17, 0xba, 0x6c, 0x44,
	};
	_Alignas(16) uint8_t iv[16] = { 0 };
	static uint8_t buf[4096];
	srtp_cipher_t *c = NULL;
	size_t skip = 0xfeff * 16, step = 1;
	uint32_t len;

	(void)state;
	assert_int_equal(srtpcrypto_install(), SRTPCRYPTO_ALL);
	assert_int_equal(srtp_crypto_kernel_alloc_cipher(SRTP_AES_ICM_128, &c, 30, 0),
			 srtp_err_status_ok);
	assert_true(ours(c->type->description));
	assert_int_equal(srtp_cipher_get_key_length(c), 30);
	assert_int_equal(srtp_cipher_init(c, key), srtp_err_status_ok);

	/* something first, so that set_iv must start the keystream over */
	len = 5;
	memset(buf, 0, len);
	assert_int_equal(srtp_cipher_encrypt(c, buf, &len), srtp_err_status_ok);
	assert_int_equal(srtp_cipher_set_iv(c, iv, srtp_direction_encrypt), srtp_err_status_ok);
	len = sizeof(first);
	memset(buf, 0, len);
	assert_int_equal(srtp_cipher_encrypt(c, buf, &len), srtp_err_status_ok);
	assert_int_equal(len, sizeof(first));
	assert_memory_equal(buf, first, sizeof(first));

	assert_int_equal(srtp_cipher_set_iv(c, iv, srtp_direction_decrypt), srtp_err_status_ok);
	while (skip) {
		len = (uint32_t)(step < skip ? step : skip);
		assert_int_equal(srtp_cipher_encrypt(c, buf, &len), srtp_err_status_ok);
		skip -= len;
		step = (step * 7 + 3) % sizeof(buf); /* 1, 10, 73, 514, ... */
	}
	memset(buf, 0, sizeof(at_feff));
	len = 21; /* and the last ones in two parts */
	assert_int_equal(srtp_cipher_encrypt(c, buf, &len), srtp_err_status_ok);
	len = sizeof(at_feff) - 21;
	assert_int_equal(srtp_cipher_encrypt(c, buf + 21, &len), srtp_err_status_ok);
	assert_memory_equal(buf, at_feff, sizeof(at_feff));
	assert_int_equal(srtp_cipher_dealloc(c), srtp_err_status_ok);
}

static void fill(uint8_t *p, size_t n, uint32_t *seed)
{
	for (size_t i = 0; i < n; i++) {
		*seed = *seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(*seed >> 16);
	}
}

/* The same bytes as libsrtp2's own AES-ICM, for each key size: random keys
 * and IVs (the IV's last two bytes as libsrtp2 leaves them, zero, and not;
 * counters about to carry far), lengths split over several calls, a re-key
 * on the same context. */
static void test_same_as_libsrtp(void **state)
{
	static const srtp_cipher_type_t *const theirs[] = { &srtp_aes_icm_128, &srtp_aes_icm_192,
							    &srtp_aes_icm_256 };
	static const int key_lens[] = { SRTP_AES_ICM_128_KEY_LEN_WSALT,
					SRTP_AES_ICM_192_KEY_LEN_WSALT,
					SRTP_AES_ICM_256_KEY_LEN_WSALT };
	static const srtp_cipher_type_id_t ids[] = { SRTP_AES_ICM_128, SRTP_AES_ICM_192,
						     SRTP_AES_ICM_256 };
	bool openssl = strcmp(srtplib_backend(), "openssl") == 0;
	uint32_t seed = 12345;

	(void)state;
	assert_int_equal(srtpcrypto_install(), SRTPCRYPTO_ALL);
	for (size_t k = 0; k < 3; k++) {
		srtp_cipher_t *a = NULL, *b = NULL;

		assert_int_equal(srtp_crypto_kernel_alloc_cipher(ids[k], &a, key_lens[k], 0),
				 srtp_err_status_ok);
		assert_true(ours(a->type->description));
		assert_int_equal(a->algorithm, (int)ids[k]);
		assert_int_equal(srtp_cipher_type_alloc(theirs[k], &b, key_lens[k], 0),
				 srtp_err_status_ok);
		assert_false(ours(b->type->description));
		for (int round = 0; round < 20; round++) {
			uint8_t key[46], iv[16], x[700], y[700];
			size_t at = 0, total;

			fill(key, sizeof(key), &seed);
			fill(iv, sizeof(iv), &seed);
			if (round % 2)
				iv[14] = iv[15] = 0;
			if (round >= 18 && !openssl)
				break;
			if (round >= 18) {
				/* counters that carry past 16, 32 and 64 bits, and
				 * wrap all 128: salt XOR IV = (salt..) ff..ff f0. Past
				 * 16 bits each backend of libsrtp2 does its own thing
				 * (OpenSSL carries, NSS wraps the 16, the built-in one
				 * refuses): ours carries like the one it replaces. */
				size_t salt = (size_t)key_lens[k] - 14;

				for (size_t i = round == 18 ? 10 : 0; i < 14; i++)
					iv[i] = key[salt + i] ^ 0xff;
				iv[14] = 0xff;
				iv[15] = 0xf0;
			}
			if (round % 5 == 0 || round == 1 ||
			    round >= 18) { /* re-keyed now and then */
				assert_int_equal(srtp_cipher_init(a, key), srtp_err_status_ok);
				assert_int_equal(srtp_cipher_init(b, key), srtp_err_status_ok);
			}
			assert_int_equal(srtp_cipher_set_iv(a, iv, srtp_direction_encrypt),
					 srtp_err_status_ok);
			assert_int_equal(srtp_cipher_set_iv(b, iv, srtp_direction_encrypt),
					 srtp_err_status_ok);
			total = (size_t)round * 31 % sizeof(x);
			for (size_t i = 0; i < total; i++)
				x[i] = y[i] = (uint8_t)(i * 13 + (size_t)round);
			while (at < total) {
				uint32_t n = 1 + (uint32_t)((at * 3 + (size_t)round) % 40), m;

				if (n > total - at)
					n = (uint32_t)(total - at);
				m = n;
				assert_int_equal(srtp_cipher_encrypt(a, x + at, &n),
						 srtp_err_status_ok);
				assert_int_equal(srtp_cipher_encrypt(b, y + at, &m),
						 srtp_err_status_ok);
				assert_int_equal(n, m);
				at += n;
			}
			assert_memory_equal(x, y, total);
		}
		assert_int_equal(srtp_cipher_dealloc(a), srtp_err_status_ok);
		assert_int_equal(srtp_cipher_dealloc(b), srtp_err_status_ok);
	}
}

/* AES-GCM sealed with ours and with libsrtp2's own: the same ciphertext
 * and tag (16 and 8 bytes), for random keys, IVs, AAD given in one or two
 * parts (SRTCP's trailer comes second) and lengths, nothing to encrypt as
 * for SRTCP sent unencrypted; then opened by each, and refused by each
 * when one bit is off. */
static void gcm_seal(srtp_cipher_t *c, const uint8_t *key, uint8_t *iv, const uint8_t *aad,
		     uint32_t aad1, uint32_t aad2, uint8_t *buf, uint32_t len, int tag, bool rekey)
{
	uint32_t tag_len = 0, n = len;

	if (rekey)
		assert_int_equal(srtp_cipher_init(c, key), srtp_err_status_ok);
	assert_int_equal(srtp_cipher_set_iv(c, iv, srtp_direction_encrypt), srtp_err_status_ok);
	assert_int_equal(srtp_cipher_set_aad(c, aad, aad1), srtp_err_status_ok);
	if (aad2)
		assert_int_equal(srtp_cipher_set_aad(c, aad + aad1, aad2), srtp_err_status_ok);
	assert_int_equal(srtp_cipher_encrypt(c, len ? buf : NULL, &n), srtp_err_status_ok);
	assert_int_equal(srtp_cipher_get_tag(c, buf + len, &tag_len), srtp_err_status_ok);
	assert_int_equal(tag_len, tag);
}

static srtp_err_status_t gcm_open(srtp_cipher_t *c, const uint8_t *key, uint8_t *iv,
				  const uint8_t *aad, uint32_t aad1, uint32_t aad2, uint8_t *buf,
				  uint32_t *len)
{
	assert_int_equal(srtp_cipher_init(c, key), srtp_err_status_ok);
	assert_int_equal(srtp_cipher_set_iv(c, iv, srtp_direction_decrypt), srtp_err_status_ok);
	assert_int_equal(srtp_cipher_set_aad(c, aad, aad1), srtp_err_status_ok);
	if (aad2)
		assert_int_equal(srtp_cipher_set_aad(c, aad + aad1, aad2), srtp_err_status_ok);
	return srtp_cipher_decrypt(c, buf, len);
}

static void test_gcm_same_as_libsrtp(void **state)
{
	static const srtp_cipher_type_t *const theirs[] = { &srtp_aes_gcm_128, &srtp_aes_gcm_256 };
	static const int key_lens[] = { SRTP_AES_GCM_128_KEY_LEN_WSALT,
					SRTP_AES_GCM_256_KEY_LEN_WSALT };
	static const srtp_cipher_type_id_t ids[] = { SRTP_AES_GCM_128, SRTP_AES_GCM_256 };
	uint32_t seed = 4242;

	(void)state;
	assert_int_equal(srtpcrypto_install(), SRTPCRYPTO_ALL);
	for (size_t k = 0; k < 2; k++) {
		for (int tag = 8; tag <= 16; tag += 8) {
			srtp_cipher_t *a = NULL, *b = NULL;

			assert_int_equal(
				srtp_crypto_kernel_alloc_cipher(ids[k], &a, key_lens[k], tag),
				srtp_err_status_ok);
			assert_true(ours(a->type->description));
			assert_int_equal(a->algorithm, (int)ids[k]);
			assert_int_equal(srtp_cipher_type_alloc(theirs[k], &b, key_lens[k], tag),
					 srtp_err_status_ok);
			assert_false(ours(b->type->description));
			for (int round = 0; round < 12; round++) {
				uint8_t key[44], iv[16], aad[48], x[400], y[400];
				uint32_t aad1 = (uint32_t)(round * 7) % 40,
					 aad2 = round % 3 ? 4 : 0,
					 len = round % 4 ? (uint32_t)(round * 29) % 300 : 0, nx, ny;
				size_t flip;

				fill(key, sizeof(key), &seed);
				fill(iv, sizeof(iv), &seed);
				fill(aad, sizeof(aad), &seed);
				fill(x, len, &seed);
				memcpy(y, x, len);
				gcm_seal(a, key, iv, aad, aad1, aad2, x, len, tag, true);
				gcm_seal(b, key, iv, aad, aad1, aad2, y, len, tag, true);
				assert_memory_equal(x, y, len + (size_t)tag);

				nx = ny = len + (uint32_t)tag;
				assert_int_equal(gcm_open(a, key, iv, aad, aad1, aad2, x, &nx),
						 srtp_err_status_ok);
				assert_int_equal(gcm_open(b, key, iv, aad, aad1, aad2, y, &ny),
						 srtp_err_status_ok);
				assert_int_equal(nx, len);
				assert_int_equal(ny, len);
				assert_memory_equal(x, y, len);

				/* sealed again, one bit off: in the tag, the ciphertext or the AAD */
				gcm_seal(a, key, iv, aad, aad1, aad2, x, len, tag, false);
				flip = (size_t)round * 13 % (len + (size_t)tag);
				x[flip] ^= 0x10;
				memcpy(y, x, len + (size_t)tag);
				if (round % 5 == 4 && aad1) {
					x[flip] ^= 0x10;
					memcpy(y, x, len + (size_t)tag);
					aad[0] ^= 1;
				}
				nx = ny = len + (uint32_t)tag;
				assert_int_equal(gcm_open(a, key, iv, aad, aad1, aad2, x, &nx),
						 srtp_err_status_auth_fail);
				assert_int_equal(gcm_open(b, key, iv, aad, aad1, aad2, y, &ny),
						 srtp_err_status_auth_fail);
			}
			assert_int_equal(srtp_cipher_dealloc(a), srtp_err_status_ok);
			assert_int_equal(srtp_cipher_dealloc(b), srtp_err_status_ok);
		}
	}
}

/* The answers libsrtp2's alloc gives, for lengths that are not a key. */
static void test_refuses_like_libsrtp(void **state)
{
	static const int bad[] = { 0, 16, 28, 29, 31, 44, 47, -1 };
	srtp_cipher_t *c;

	(void)state;
	assert_int_equal(srtpcrypto_install(), SRTPCRYPTO_ALL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		c = NULL;
		assert_int_equal(srtp_crypto_kernel_alloc_cipher(SRTP_AES_ICM_128, &c, bad[i], 0),
				 srtp_err_status_bad_param);
		assert_int_equal(srtp_cipher_type_alloc(&srtp_aes_icm_128, &c, bad[i], 0),
				 srtp_err_status_bad_param);
		if (bad[i] == 28 || bad[i] == 44)
			continue; /* GCM's */
		assert_int_equal(srtp_crypto_kernel_alloc_cipher(SRTP_AES_GCM_128, &c, bad[i], 16),
				 srtp_err_status_bad_param);
		assert_int_equal(srtp_cipher_type_alloc(&srtp_aes_gcm_128, &c, bad[i], 16),
				 srtp_err_status_bad_param);
	}
	/* GCM: tags of 8 and 16 bytes only */
	for (int tag = 0; tag <= 17; tag++) {
		srtp_err_status_t want =
			tag == 8 || tag == 16 ? srtp_err_status_ok : srtp_err_status_bad_param;

		c = NULL;
		assert_int_equal(srtp_crypto_kernel_alloc_cipher(SRTP_AES_GCM_256, &c, 44, tag),
				 want);
		if (c)
			assert_int_equal(srtp_cipher_dealloc(c), srtp_err_status_ok);
		c = NULL;
		assert_int_equal(srtp_cipher_type_alloc(&srtp_aes_gcm_256, &c, 44, tag), want);
		if (c)
			assert_int_equal(srtp_cipher_dealloc(c), srtp_err_status_ok);
	}
	/* libsrtp2's own self-test, now on ours (srtp_replace_cipher_type ran
	 * it once already) */
	c = NULL;
	assert_int_equal(srtp_crypto_kernel_alloc_cipher(SRTP_AES_ICM_256, &c, 46, 0),
			 srtp_err_status_ok);
	assert_int_equal(srtp_cipher_type_self_test(c->type), srtp_err_status_ok);
	assert_int_equal(srtp_cipher_type_test(c->type, srtp_aes_icm_256.test_data),
			 srtp_err_status_ok);
	assert_int_equal(srtp_cipher_dealloc(c), srtp_err_status_ok);
}

/* Every packet of the first test again, now on ours: the same bytes; and
 * what libsrtp2's own made, ours takes back. */
static void test_after_install_same_packets(void **state)
{
	static struct pkt rtp[NRTP], rtcp[NRTCP];
	unsigned checked = 0;

	(void)state;
	assert_int_equal(srtpcrypto_install(), SRTPCRYPTO_ALL);
	for (size_t i = 0; i < NSUITES; i++) {
		enum suite_id s = suites[i];
		uint8_t key[64];
		srtp_t rx;

		if (!before[i].done)
			continue;
		protect_all(s, rtp, rtcp);
		suite_key(key, s);
		rx = session(s, key, false);
		for (unsigned j = 0; j < NRTP; j++) {
			struct pkt plain, p = before[i].rtp[j];

			assert_int_equal(rtp[j].len, p.len);
			assert_memory_equal(rtp[j].b, p.b, (size_t)p.len);
			assert_int_equal(srtp_unprotect(rx, p.b, &p.len), srtp_err_status_ok);
			plain_rtp(&plain, j);
			assert_int_equal(p.len, plain.len);
			assert_memory_equal(p.b, plain.b, (size_t)plain.len);
			checked++;
		}
		for (unsigned j = 0; j < NRTCP; j++) {
			struct pkt plain, p = before[i].rtcp[j];

			assert_int_equal(rtcp[j].len, p.len);
			assert_memory_equal(rtcp[j].b, p.b, (size_t)p.len);
			assert_int_equal(srtp_unprotect_rtcp(rx, p.b, &p.len), srtp_err_status_ok);
			plain_rtcp(&plain, j);
			assert_int_equal(p.len, plain.len);
			assert_memory_equal(p.b, plain.b, (size_t)plain.len);
			checked++;
		}
		assert_int_equal(srtp_dealloc(rx), srtp_err_status_ok);
	}
	assert_true(checked >= 6 * (NRTP + NRTCP)); /* all but AES-192 at least */
}

/* ---- vectors from files: tests/unit/data (kat/, srtp/README.md) ---- */

/* libsrtp 2.5.0's published vectors (test/srtp_driver.c): AES_CM_128 and
 * AES_256_CM with HMAC-SHA1-80, and AEAD_AES_128_GCM. */
static void test_libsrtp_known_answers(void **state)
{
	FILE *f = fopen(TEST_DATA_DIR "/kat/libsrtp-2.5.0.txt", "r");
	unsigned n = 0;
	struct vec v;

	(void)state;
	assert_non_null(f);
	assert_int_equal(srtpcrypto_install(), SRTPCRYPTO_ALL);
	while (read_vec(f, &v)) {
		enum suite_id s;
		srtp_t tx, rx;

		assert_int_equal(suite_from_name(v.suite, strlen(v.suite), &s), 0);
		assert_int_equal(v.keylen, suite_keysalt_len(s));
		tx = session(s, v.key, true);
		rx = session(s, v.key, false);
		for (size_t i = 0; i < v.npkts; i++) {
			struct pkt p;

			memcpy(p.b, v.pkts[i].plain, v.pkts[i].nplain);
			p.len = (int)v.pkts[i].nplain;
			assert_int_equal(v.pkts[i].rtcp ? srtp_protect_rtcp(tx, p.b, &p.len)
							: srtp_protect(tx, p.b, &p.len),
					 srtp_err_status_ok);
			assert_int_equal(p.len, (int)v.pkts[i].nprot);
			assert_memory_equal(p.b, v.pkts[i].prot, v.pkts[i].nprot);
			assert_int_equal(v.pkts[i].rtcp ? srtp_unprotect_rtcp(rx, p.b, &p.len)
							: srtp_unprotect(rx, p.b, &p.len),
					 srtp_err_status_ok);
			assert_int_equal(p.len, (int)v.pkts[i].nplain);
			assert_memory_equal(p.b, v.pkts[i].plain, v.pkts[i].nplain);
			n++;
		}
		assert_int_equal(srtp_dealloc(tx), srtp_err_status_ok);
		assert_int_equal(srtp_dealloc(rx), srtp_err_status_ok);
	}
	fclose(f);
	assert_int_equal(n, 5); /* 3 RTP, 2 RTCP */
}

/* rtpengine's packets of every suite:
 * ours protects the plain packets into rtpengine's very bytes (SRTP is
 * deterministic: the same key, SSRC, sequence numbers and ROC), and takes
 * rtpengine's packets and its SRTCP back to the plain ones. */
static void test_rtpengine_packets(void **state)
{
	unsigned files = 0;

	(void)state;
	assert_int_equal(srtpcrypto_install(), SRTPCRYPTO_ALL);
	for (size_t i = 0; i < NSUITES; i++) {
		enum suite_id s = suites[i];
		char path[1024], why[256];
		struct sdes_crypto c;
		struct vec v;
		srtp_t tx, rx;
		FILE *f;

		if (!usable(s))
			continue;
		snprintf(path, sizeof(path), "%s/srtp/rtpengine-%s.txt", TEST_DATA_DIR,
			 suite_name(s));
		f = fopen(path, "r");
		assert_non_null(f);
		assert_true(read_vec(f, &v));
		fclose(f);
		if (sdes_parse(&c, slice_from(v.crypto), why, sizeof(why)))
			fail_msg("%s: a=crypto does not parse: %s", path, why);
		assert_int_equal(c.suite, s);
		tx = session(s, c.keys[0].keysalt.bytes, true);
		rx = session(s, c.keys[0].keysalt.bytes, false);
		for (size_t j = 0; j < v.npkts; j++) {
			struct pkt p;

			assert_true(v.pkts[j].nprot > 12 && v.pkts[j].nplain > 0);
			if (!v.pkts[j].rtcp) {
				/* their header (no CSRC, no extension) || the payload */
				assert_int_equal(v.pkts[j].prot[0], 0x80);
				memcpy(p.b, v.pkts[j].prot, 12);
				memcpy(p.b + 12, v.pkts[j].plain, v.pkts[j].nplain);
				p.len = 12 + (int)v.pkts[j].nplain;
				assert_int_equal(srtp_protect(tx, p.b, &p.len), srtp_err_status_ok);
				assert_int_equal(p.len, (int)v.pkts[j].nprot);
				assert_memory_equal(p.b, v.pkts[j].prot, v.pkts[j].nprot);
			}
			/* rtpengine's SRTCP index starts at 0, libsrtp2's at 1:
			 * its SRTCP is only taken back */
			memcpy(p.b, v.pkts[j].prot, v.pkts[j].nprot);
			p.len = (int)v.pkts[j].nprot;
			assert_int_equal(v.pkts[j].rtcp ? srtp_unprotect_rtcp(rx, p.b, &p.len)
							: srtp_unprotect(rx, p.b, &p.len),
					 srtp_err_status_ok);
			if (v.pkts[j].rtcp) {
				assert_int_equal(p.len, (int)v.pkts[j].nplain);
				assert_memory_equal(p.b, v.pkts[j].plain, v.pkts[j].nplain);
			} else {
				assert_int_equal(p.len, 12 + (int)v.pkts[j].nplain);
				assert_memory_equal(p.b + 12, v.pkts[j].plain, v.pkts[j].nplain);
			}
		}
		assert_int_equal(srtp_dealloc(tx), srtp_err_status_ok);
		assert_int_equal(srtp_dealloc(rx), srtp_err_status_ok);
		sdes_wipe(&c);
		files++;
	}
	assert_true(files >= 6); /* AES-192 needs a libsrtp2 with the RFC 6188 fix */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_before_install), /* first: before anything installs */
		cmocka_unit_test(test_install),
		cmocka_unit_test(test_rfc3711_b2_keystream),
		cmocka_unit_test(test_same_as_libsrtp),
		cmocka_unit_test(test_gcm_same_as_libsrtp),
		cmocka_unit_test(test_refuses_like_libsrtp),
		cmocka_unit_test(test_after_install_same_packets),
		cmocka_unit_test(test_libsrtp_known_answers),
		cmocka_unit_test(test_rtpengine_packets),
	};

	return cmocka_run_group_tests_name("srtpcrypto", tests, setup_group, teardown_group);
}
