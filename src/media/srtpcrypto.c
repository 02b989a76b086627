/* srtpcrypto.c: our HMAC-SHA1, AES-ICM and AES-GCM in libsrtp2's place (see srtpcrypto.h). */
/* SHA1_Init/Update/Final and SHA_CTX: deprecated in OpenSSL 3 but the only
 * SHA-1 whose state is a plain struct to copy (see hmac_sha1 below). */
#define OPENSSL_SUPPRESS_DEPRECATED

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/sha.h>
#include <srtp2/auth.h>
#include <srtp2/cipher.h>
#include <srtp2/srtp.h>

#include "srtpbridge/log.h"
#include "srtpbridge/srtpcrypto.h"

#define LOG_MODULE "srtpcrypto"

/* ---- HMAC-SHA1 for libsrtp2, without an allocation per packet ----
 *
 * libsrtp 2.5's own HMAC-SHA1 (hmac_ossl.c) uses OpenSSL's HMAC_CTX, whose
 * reset per packet copies the inner digest state through
 * EVP_MD_CTX_copy_ex: on OpenSSL 3 a provider dupctx, a malloc and a free,
 * twice a packet. Profiled at 500 calls that was 9 % of a media worker's
 * CPU, more than our own code on the packet path. This one keeps the inner
 * and outer states keyed once (RFC 2104: H(K^opad, H(K^ipad, text))) as
 * SHA_CTX structs and copies them with an assignment. libsrtp2 takes it
 * through its public srtp_replace_auth_type(), which runs its own HMAC
 * test vectors and ours (RFC 2202) first and refuses it if one fails:
 * libsrtp2's stays in place then. */

struct hmac_sha1 {
	SHA_CTX inner, outer; /* keyed: after K^ipad and K^opad */
	SHA_CTX cur;	      /* the packet being authenticated */
};

static srtp_err_status_t hmac_sha1_alloc(srtp_auth_t **out, int key_len, int out_len);

static srtp_err_status_t hmac_sha1_dealloc(srtp_auth_t *a)
{
	/* one block: the keyed states are key material */
	OPENSSL_cleanse(a, sizeof(*a) + sizeof(struct hmac_sha1));
	free(a);
	return srtp_err_status_ok;
}

static srtp_err_status_t hmac_sha1_init(void *state, const uint8_t *key, int key_len)
{
	struct hmac_sha1 *h = state;
	uint8_t ipad[SHA_CBLOCK], opad[SHA_CBLOCK];

	if (key_len < 0 || key_len > SHA_DIGEST_LENGTH)
		return srtp_err_status_bad_param;
	memset(ipad, 0x36, sizeof(ipad));
	memset(opad, 0x5c, sizeof(opad));
	for (int i = 0; i < key_len; i++) {
		ipad[i] ^= key[i];
		opad[i] ^= key[i];
	}
	SHA1_Init(&h->inner);
	SHA1_Update(&h->inner, ipad, sizeof(ipad));
	SHA1_Init(&h->outer);
	SHA1_Update(&h->outer, opad, sizeof(opad));
	OPENSSL_cleanse(ipad, sizeof(ipad));
	OPENSSL_cleanse(opad, sizeof(opad));
	return srtp_err_status_ok;
}

static srtp_err_status_t hmac_sha1_start(void *state)
{
	struct hmac_sha1 *h = state;

	h->cur = h->inner;
	return srtp_err_status_ok;
}

static srtp_err_status_t hmac_sha1_update(void *state, const uint8_t *msg, int len)
{
	struct hmac_sha1 *h = state;

	if (len < 0)
		return srtp_err_status_bad_param;
	SHA1_Update(&h->cur, msg, (size_t)len);
	return srtp_err_status_ok;
}

/* libsrtp2's contract (hmac_ossl.c): msg is the last part of the text (the
 * ROC, or the SRTCP index), then the tag's first tag_len bytes. */
static srtp_err_status_t hmac_sha1_compute(void *state, const uint8_t *msg, int len, int tag_len,
					   uint8_t *tag)
{
	struct hmac_sha1 *h = state;
	uint8_t md[SHA_DIGEST_LENGTH];
	SHA_CTX outer;

	if (len < 0 || tag_len < 0 || tag_len > SHA_DIGEST_LENGTH)
		return srtp_err_status_bad_param;
	SHA1_Update(&h->cur, msg, (size_t)len);
	SHA1_Final(md, &h->cur);
	outer = h->outer;
	SHA1_Update(&outer, md, sizeof(md));
	SHA1_Final(md, &outer);
	memcpy(tag, md, (size_t)tag_len);
	OPENSSL_cleanse(md, sizeof(md));
	OPENSSL_cleanse(&outer, sizeof(outer));
	return srtp_err_status_ok;
}

/* RFC 2202 section 3, test cases 1 (a 20-byte key) and 2 (a short one),
 * at the tag lengths SRTP uses (10 bytes for _80, 4 for _32) and the full
 * 20; libsrtp2 runs its own case too before it takes this. */
static const uint8_t rfc2202_key1[20] = { 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b,
					  0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b,
					  0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b };
static const uint8_t rfc2202_tag1[20] = { 0xb6, 0x17, 0x31, 0x86, 0x55, 0x05, 0x72,
					  0x64, 0xe2, 0x8b, 0xc0, 0xb6, 0xfb, 0x37,
					  0x8c, 0x8e, 0xf1, 0x46, 0xbe, 0x00 };
static const uint8_t rfc2202_tag2[20] = { 0xef, 0xfc, 0xdf, 0x6a, 0xe5, 0xeb, 0x2f,
					  0xa2, 0xd2, 0x74, 0x16, 0xd5, 0xf1, 0x84,
					  0xdf, 0x9c, 0x25, 0x9a, 0x7c, 0x79 };
static const srtp_auth_test_case_t rfc2202_case2_4 = {
	4,   (const uint8_t *)"Jefe",
	28,  (const uint8_t *)"what do ya want for nothing?",
	4,   rfc2202_tag2,
	NULL
};
static const srtp_auth_test_case_t rfc2202_case2 = {
	4,
	(const uint8_t *)"Jefe",
	28,
	(const uint8_t *)"what do ya want for nothing?",
	20,
	rfc2202_tag2,
	&rfc2202_case2_4
};
static const srtp_auth_test_case_t rfc2202_case1_10 = {
	20, rfc2202_key1, 8, (const uint8_t *)"Hi There", 10, rfc2202_tag1, &rfc2202_case2
};
static const srtp_auth_test_case_t rfc2202_case1 = {
	20, rfc2202_key1, 8, (const uint8_t *)"Hi There", 20, rfc2202_tag1, &rfc2202_case1_10
};

static const srtp_auth_type_t hmac_sha1_type = {
	.alloc = hmac_sha1_alloc,
	.dealloc = hmac_sha1_dealloc,
	.init = hmac_sha1_init,
	.compute = hmac_sha1_compute,
	.update = hmac_sha1_update,
	.start = hmac_sha1_start,
	.description = "HMAC-SHA1 (srtpbridge: keyed SHA_CTX copies)",
	.test_data = &rfc2202_case1,
	.id = SRTP_HMAC_SHA1,
};

static srtp_err_status_t hmac_sha1_alloc(srtp_auth_t **out, int key_len, int out_len)
{
	srtp_auth_t *a;

	if (key_len < 0 || key_len > SHA_DIGEST_LENGTH || out_len < 0 ||
	    out_len > SHA_DIGEST_LENGTH)
		return srtp_err_status_bad_param;
	a = calloc(1, sizeof(*a) + sizeof(struct hmac_sha1));
	if (!a)
		return srtp_err_status_alloc_fail;
	a->type = &hmac_sha1_type;
	a->state = a + 1; /* srtp_auth_t's alignment is a pointer's; SHA_CTX needs no more */
	a->out_len = out_len;
	a->key_len = key_len;
	a->prefix_len = 0;
	*out = a;
	return srtp_err_status_ok;
}

/* ---- AES-ICM for libsrtp2, with the AES cipher fetched once ----
 *
 * libsrtp 2.5's aes_icm_ossl.c keys its EVP context with EVP_aes_128_ctr()
 * and the like: on OpenSSL 3 such a legacy EVP_CIPHER makes every
 * EVP_EncryptInit_ex with it fetch the algorithm again (a name lookup in the
 * providers, under their locks), and srtp_create keys three AES-ICM
 * contexts: the key derivation's, RTP's and RTCP's. Profiled at ~13 % of a
 * call's media setup and teardown. Ours fetches AES once per key size for
 * the process.
 *
 * Per packet, libsrtp2's set_iv re-inits the EVP context with the new
 * counter, and on OpenSSL 3.0 each such init asks the provider for the IV
 * length through an OSSL_PARAM lookup: about 840 instructions a packet, more
 * than the AES itself. So the counter mode is ours, over AES-ECB keyed once
 * (RFC 3711 section 4.1.1 defines it from the block function): the counter
 * blocks of a packet are encrypted in one EVP_EncryptUpdate and XORed in.
 * What libsrtp2 sees is its own cipher's: the same key lengths (the AES key,
 * then the 14-byte salt; any of the three sizes through any of the three
 * ids), the counter built as the salt XOR the IV given to set_iv, set_iv
 * starting the keystream over, encrypt continuing it mid-block, the whole
 * 128-bit counter incremented as OpenSSL's AES-CTR does, and the same
 * status codes. tests/unit/test_srtpcrypto.c compares the keystream with
 * libsrtp2's own cipher's, and whole packets with published ones. */

#define ICM_SALT_LEN  14 /* SRTP_SALT_LEN, not in srtp2's installed headers */
#define ICM_BLOCK_LEN 16
/* Counter blocks encrypted per EVP call: a 1500-byte packet in one. */
#define ICM_BATCH 96

struct aes_icm {
	EVP_CIPHER_CTX *ctx;		/* AES-ECB, keyed with the session key in init */
	int key_size;			/* the AES key alone: 16, 24 or 32 */
	unsigned used;			/* bytes of ks already used; 0: none left */
	uint8_t offset[ICM_BLOCK_LEN];	/* the salt, its last two bytes zero */
	uint8_t counter[ICM_BLOCK_LEN]; /* the next block's: offset XOR IV, then + n */
	uint8_t ks[ICM_BLOCK_LEN];	/* the keystream block that used splits */
};

/* AES-ECB for each key size, for the life of the process (never freed). */
static EVP_CIPHER *aes_ecb[3];

static const EVP_CIPHER *aes_ecb_for(int key_size)
{
	switch (key_size) {
	case 16:
		return aes_ecb[0];
	case 24:
		return aes_ecb[1];
	case 32:
		return aes_ecb[2];
	}
	return NULL;
}

static const srtp_cipher_type_t aes_icm_128_type, aes_icm_192_type, aes_icm_256_type;

static srtp_err_status_t aes_icm_alloc(srtp_cipher_t **out, int key_len, int tag_len)
{
	const srtp_cipher_type_t *type;
	struct aes_icm *icm;
	srtp_cipher_t *c;

	(void)tag_len; /* an AEAD's business */
	switch (key_len) {
	case SRTP_AES_ICM_128_KEY_LEN_WSALT:
		type = &aes_icm_128_type;
		break;
	case SRTP_AES_ICM_192_KEY_LEN_WSALT:
		type = &aes_icm_192_type;
		break;
	case SRTP_AES_ICM_256_KEY_LEN_WSALT:
		type = &aes_icm_256_type;
		break;
	default:
		return srtp_err_status_bad_param;
	}
	c = calloc(1, sizeof(*c) + sizeof(*icm));
	if (!c)
		return srtp_err_status_alloc_fail;
	icm = (struct aes_icm *)(c + 1); /* a pointer's alignment is all it needs */
	icm->ctx = EVP_CIPHER_CTX_new();
	if (!icm->ctx) {
		free(c);
		return srtp_err_status_alloc_fail;
	}
	icm->key_size = key_len - ICM_SALT_LEN;
	c->type = type;
	c->state = icm;
	c->algorithm = (int)type->id;
	c->key_len = key_len;
	*out = c;
	return srtp_err_status_ok;
}

static srtp_err_status_t aes_icm_dealloc(srtp_cipher_t *c)
{
	struct aes_icm *icm;

	if (!c)
		return srtp_err_status_bad_param;
	icm = c->state;
	/* OpenSSL wipes the key schedule its context holds */
	EVP_CIPHER_CTX_free(icm->ctx);
	/* the salt and the keystream left over are ours to wipe */
	OPENSSL_cleanse(c, sizeof(*c) + sizeof(*icm));
	free(c);
	return srtp_err_status_ok;
}

static srtp_err_status_t aes_icm_init(void *state, const uint8_t *key)
{
	struct aes_icm *icm = state;
	const EVP_CIPHER *aes = aes_ecb_for(icm->key_size);

	memset(icm->offset, 0, sizeof(icm->offset));
	memcpy(icm->offset, key + icm->key_size, ICM_SALT_LEN);
	memcpy(icm->counter, icm->offset, sizeof(icm->counter));
	icm->used = 0;
	if (!aes)
		return srtp_err_status_bad_param;
	/* no EVP_EncryptFinal ever: whole blocks only, so padding is moot */
	if (!EVP_EncryptInit_ex2(icm->ctx, aes, key, NULL, NULL))
		return srtp_err_status_fail;
	return srtp_err_status_ok;
}

static srtp_err_status_t aes_icm_set_iv(void *state, uint8_t *iv, srtp_cipher_direction_t dir)
{
	struct aes_icm *icm = state;

	(void)dir; /* a stream cipher: both ways are the same */
	for (size_t i = 0; i < sizeof(icm->counter); i++)
		icm->counter[i] = icm->offset[i] ^ iv[i];
	icm->used = 0;
	return srtp_err_status_ok;
}

/* Big-endian over all 128 bits, like OpenSSL's AES-CTR (SRTP never gets
 * past the low 16: 2^16 blocks is a megabyte). */
static void counter_next(uint8_t *c)
{
	for (int i = ICM_BLOCK_LEN - 1; i >= 0; i--)
		if (++c[i] != 0)
			break;
}

/* Encrypts and decrypts in place. The keystream on the stack is not wiped:
 * XORed with the output it only gives the input, which the caller holds. */
static srtp_err_status_t aes_icm_encrypt(void *state, uint8_t *buf, unsigned int *len)
{
	struct aes_icm *icm = state;
	uint8_t ks[ICM_BATCH * ICM_BLOCK_LEN];
	size_t left = *len;

	for (; icm->used && left; left--) {
		*buf++ ^= icm->ks[icm->used];
		icm->used = (icm->used + 1) % ICM_BLOCK_LEN;
	}
	while (left) {
		size_t blocks = (left + ICM_BLOCK_LEN - 1) / ICM_BLOCK_LEN;
		size_t n;
		int outl = 0;

		if (blocks > ICM_BATCH)
			blocks = ICM_BATCH;
		for (size_t b = 0; b < blocks; b++) {
			memcpy(ks + b * ICM_BLOCK_LEN, icm->counter, ICM_BLOCK_LEN);
			counter_next(icm->counter);
		}
		if (!EVP_EncryptUpdate(icm->ctx, ks, &outl, ks, (int)(blocks * ICM_BLOCK_LEN)) ||
		    outl != (int)(blocks * ICM_BLOCK_LEN))
			return srtp_err_status_cipher_fail;
		n = left < blocks * ICM_BLOCK_LEN ? left : blocks * ICM_BLOCK_LEN;
		for (size_t i = 0; i < n; i++)
			buf[i] ^= ks[i];
		buf += n;
		left -= n;
		if (n % ICM_BLOCK_LEN) { /* the last block, split: the rest for next time */
			memcpy(icm->ks, ks + n - n % ICM_BLOCK_LEN, ICM_BLOCK_LEN);
			icm->used = (unsigned)(n % ICM_BLOCK_LEN);
		}
	}
	return srtp_err_status_ok;
}

/* RFC 3711 appendix B.2: the keystream's first three blocks (48 bytes; the
 * first two are libsrtp2's own AES-128 case) and, for a partial last block,
 * its first 20 bytes. Zero IV, plaintext of zeros: the output is the
 * keystream. */
static const uint8_t rfc3711_b2_key[SRTP_AES_ICM_128_KEY_LEN_WSALT] = {
	0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6, 0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f,
	0x3c, 0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd,
};
static const uint8_t rfc3711_b2_keystream[48] = {
	0xe0, 0x3e, 0xad, 0x09, 0x35, 0xc9, 0x5e, 0x80, 0xe1, 0x66, 0xb1, 0x6d,
	0xd9, 0x2b, 0x4e, 0xb4, 0xd2, 0x35, 0x13, 0x16, 0x2b, 0x02, 0xd0, 0xf7,
	0x2a, 0x43, 0xa2, 0xfe, 0x4a, 0x5f, 0x97, 0xab, 0x41, 0xe9, 0x5b, 0x3b,
	0xb0, 0xa2, 0xe8, 0xdd, 0x47, 0x79, 0x01, 0xe4, 0xfc, 0xa8, 0x94, 0xc0,
};
/* RFC 6188 section 7 (as libsrtp2 has them): AES-192 and AES-256, the
 * keystream's first two blocks. */
static const uint8_t rfc6188_192_key[SRTP_AES_ICM_192_KEY_LEN_WSALT] = {
	0xea, 0xb2, 0x34, 0x76, 0x4e, 0x51, 0x7b, 0x2d, 0x3d, 0x16, 0x0d, 0x58, 0x7d,
	0x8c, 0x86, 0x21, 0x97, 0x40, 0xf6, 0x5f, 0x99, 0xb6, 0xbc, 0xf7, 0xf0, 0xf1,
	0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd,
};
static const uint8_t rfc6188_192_keystream[32] = {
	0x35, 0x09, 0x6c, 0xba, 0x46, 0x10, 0x02, 0x8d, 0xc1, 0xb5, 0x75,
	0x03, 0x80, 0x4c, 0xe3, 0x7c, 0x5d, 0xe9, 0x86, 0x29, 0x1d, 0xcc,
	0xe1, 0x61, 0xd5, 0x16, 0x5e, 0xc4, 0x56, 0x8f, 0x5c, 0x9a,
};
static const uint8_t rfc6188_256_key[SRTP_AES_ICM_256_KEY_LEN_WSALT] = {
	0x57, 0xf8, 0x2f, 0xe3, 0x61, 0x3f, 0xd1, 0x70, 0xa8, 0x5e, 0xc9, 0x3c,
	0x40, 0xb1, 0xf0, 0x92, 0x2e, 0xc4, 0xcb, 0x0d, 0xc0, 0x25, 0xb5, 0x82,
	0x72, 0x14, 0x7c, 0xc4, 0x38, 0x94, 0x4a, 0x98, 0xf0, 0xf1, 0xf2, 0xf3,
	0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd,
};
static const uint8_t rfc6188_256_keystream[32] = {
	0x92, 0xbd, 0xd2, 0x8a, 0x93, 0xc3, 0xf5, 0x25, 0x11, 0xc6, 0x77,
	0xd0, 0x8b, 0x55, 0x15, 0xa4, 0x9d, 0xa7, 0x1b, 0x23, 0x78, 0xa8,
	0x54, 0xf6, 0x70, 0x50, 0x75, 0x6d, 0xed, 0x16, 0x5b, 0xac,
};
static const uint8_t zeros[48];
/* srtp_cipher_test_case_t wants it writable; nothing writes it */
static uint8_t zero_iv[ICM_BLOCK_LEN];

static const srtp_cipher_test_case_t rfc3711_b2_part = {
	.key_length_octets = sizeof(rfc3711_b2_key),
	.key = rfc3711_b2_key,
	.idx = zero_iv,
	.plaintext_length_octets = 20,
	.plaintext = zeros,
	.ciphertext_length_octets = 20,
	.ciphertext = rfc3711_b2_keystream,
};
static const srtp_cipher_test_case_t rfc3711_b2 = {
	.key_length_octets = sizeof(rfc3711_b2_key),
	.key = rfc3711_b2_key,
	.idx = zero_iv,
	.plaintext_length_octets = sizeof(rfc3711_b2_keystream),
	.plaintext = zeros,
	.ciphertext_length_octets = sizeof(rfc3711_b2_keystream),
	.ciphertext = rfc3711_b2_keystream,
	.next_test_case = &rfc3711_b2_part,
};
static const srtp_cipher_test_case_t rfc6188_192 = {
	.key_length_octets = sizeof(rfc6188_192_key),
	.key = rfc6188_192_key,
	.idx = zero_iv,
	.plaintext_length_octets = sizeof(rfc6188_192_keystream),
	.plaintext = zeros,
	.ciphertext_length_octets = sizeof(rfc6188_192_keystream),
	.ciphertext = rfc6188_192_keystream,
};
static const srtp_cipher_test_case_t rfc6188_256 = {
	.key_length_octets = sizeof(rfc6188_256_key),
	.key = rfc6188_256_key,
	.idx = zero_iv,
	.plaintext_length_octets = sizeof(rfc6188_256_keystream),
	.plaintext = zeros,
	.ciphertext_length_octets = sizeof(rfc6188_256_keystream),
	.ciphertext = rfc6188_256_keystream,
};

/* encrypt and decrypt are one function, as in libsrtp2: a stream cipher */
static const srtp_cipher_type_t aes_icm_128_type = {
	.alloc = aes_icm_alloc,
	.dealloc = aes_icm_dealloc,
	.init = aes_icm_init,
	.encrypt = aes_icm_encrypt,
	.decrypt = aes_icm_encrypt,
	.set_iv = aes_icm_set_iv,
	.description = "AES-128 counter mode (srtpbridge: over AES-128-ECB fetched once)",
	.test_data = &rfc3711_b2,
	.id = SRTP_AES_ICM_128,
};
static const srtp_cipher_type_t aes_icm_192_type = {
	.alloc = aes_icm_alloc,
	.dealloc = aes_icm_dealloc,
	.init = aes_icm_init,
	.encrypt = aes_icm_encrypt,
	.decrypt = aes_icm_encrypt,
	.set_iv = aes_icm_set_iv,
	.description = "AES-192 counter mode (srtpbridge: over AES-192-ECB fetched once)",
	.test_data = &rfc6188_192,
	.id = SRTP_AES_ICM_192,
};
static const srtp_cipher_type_t aes_icm_256_type = {
	.alloc = aes_icm_alloc,
	.dealloc = aes_icm_dealloc,
	.init = aes_icm_init,
	.encrypt = aes_icm_encrypt,
	.decrypt = aes_icm_encrypt,
	.set_iv = aes_icm_set_iv,
	.description = "AES-256 counter mode (srtpbridge: over AES-256-ECB fetched once)",
	.test_data = &rfc6188_256,
	.id = SRTP_AES_ICM_256,
};

/* ---- AES-GCM for libsrtp2, with the cipher fetched once ----
 *
 * libsrtp 2.5's aes_gcm_ossl.c has the same implicit fetch in each key set
 * (EVP_aes_128_gcm()), twice per srtp_create of a GCM suite (RTP's and
 * RTCP's cipher; the key derivation is AES-ICM). This one is libsrtp2's
 * otherwise, call for call, but for two calls per packet that OpenSSL 3
 * makes no use of: the IV length (12, RFC 7714 section 8.1), set once per
 * key rather than before each IV, and the placeholder tag libsrtp2 sets
 * before a decryption's AAD (for an OpenSSL that once wanted it): OpenSSL 3
 * reads the tag only in the final step, by when decrypt has set the real
 * one. About 800 instructions a packet less, and one check more: decrypt
 * refuses a buffer shorter than the tag, which libsrtp2 never hands it. */

#define GCM_IV_LEN 12

struct aes_gcm {
	EVP_CIPHER_CTX *ctx;
	int key_size; /* the AES key alone: 16 or 32 */
	int tag_len;  /* 16, or 8 */
	srtp_cipher_direction_t dir;
};

/* AES-128-GCM and AES-256-GCM, for the life of the process. */
static EVP_CIPHER *aes_gcm[2];

static const srtp_cipher_type_t aes_gcm_128_type, aes_gcm_256_type;

static srtp_err_status_t aes_gcm_alloc(srtp_cipher_t **out, int key_len, int tag_len)
{
	const srtp_cipher_type_t *type;
	struct aes_gcm *gcm;
	srtp_cipher_t *c;

	switch (key_len) {
	case SRTP_AES_GCM_128_KEY_LEN_WSALT:
		type = &aes_gcm_128_type;
		break;
	case SRTP_AES_GCM_256_KEY_LEN_WSALT:
		type = &aes_gcm_256_type;
		break;
	default:
		return srtp_err_status_bad_param;
	}
	if (tag_len != 16 && tag_len != 8)
		return srtp_err_status_bad_param;
	c = calloc(1, sizeof(*c) + sizeof(*gcm));
	if (!c)
		return srtp_err_status_alloc_fail;
	gcm = (struct aes_gcm *)(c + 1);
	gcm->ctx = EVP_CIPHER_CTX_new();
	if (!gcm->ctx) {
		free(c);
		return srtp_err_status_alloc_fail;
	}
	gcm->key_size = type == &aes_gcm_128_type ? 16 : 32;
	gcm->tag_len = tag_len;
	c->type = type;
	c->state = gcm;
	c->algorithm = (int)type->id;
	c->key_len = key_len;
	*out = c;
	return srtp_err_status_ok;
}

static srtp_err_status_t aes_gcm_dealloc(srtp_cipher_t *c)
{
	struct aes_gcm *gcm;

	if (!c)
		return srtp_err_status_bad_param;
	gcm = c->state;
	EVP_CIPHER_CTX_free(gcm->ctx); /* which wipes the key schedule */
	OPENSSL_cleanse(c, sizeof(*c) + sizeof(*gcm));
	free(c);
	return srtp_err_status_ok;
}

static srtp_err_status_t aes_gcm_init(void *state, const uint8_t *key)
{
	struct aes_gcm *gcm = state;
	const EVP_CIPHER *aes = aes_gcm[gcm->key_size == 16 ? 0 : 1];
	size_t iv_len = GCM_IV_LEN;
	OSSL_PARAM params[2] = {
		OSSL_PARAM_construct_size_t(OSSL_CIPHER_PARAM_AEAD_IVLEN, &iv_len),
		OSSL_PARAM_construct_end(),
	};

	gcm->dir = srtp_direction_any;
	if (!aes)
		return srtp_err_status_bad_param;
	if (!EVP_CipherInit_ex2(gcm->ctx, aes, key, NULL, 0, params))
		return srtp_err_status_init_fail;
	return srtp_err_status_ok;
}

static srtp_err_status_t aes_gcm_set_iv(void *state, uint8_t *iv, srtp_cipher_direction_t dir)
{
	struct aes_gcm *gcm = state;

	if (dir != srtp_direction_encrypt && dir != srtp_direction_decrypt)
		return srtp_err_status_bad_param;
	gcm->dir = dir;
	if (!EVP_CipherInit_ex2(gcm->ctx, NULL, NULL, iv, dir == srtp_direction_encrypt, NULL))
		return srtp_err_status_init_fail;
	return srtp_err_status_ok;
}

static srtp_err_status_t aes_gcm_set_aad(void *state, const uint8_t *aad, uint32_t aad_len)
{
	struct aes_gcm *gcm = state;
	int rv;

	if (aad_len > INT_MAX)
		return srtp_err_status_algo_fail;
	rv = EVP_Cipher(gcm->ctx, NULL, aad, aad_len);
	if (rv < 0 || (uint32_t)rv != aad_len)
		return srtp_err_status_algo_fail;
	return srtp_err_status_ok;
}

/* As libsrtp2's, the result of EVP_Cipher is not looked at here: a
 * failure shows in the tag. (An unencrypted SRTCP packet comes as NULL, 0:
 * that finishes the tag early, and get_tag's own finish then fails while
 * the tag it reads is already there.) */
static srtp_err_status_t aes_gcm_encrypt(void *state, uint8_t *buf, unsigned int *len)
{
	struct aes_gcm *gcm = state;

	if (gcm->dir != srtp_direction_encrypt && gcm->dir != srtp_direction_decrypt)
		return srtp_err_status_bad_param;
	(void)EVP_Cipher(gcm->ctx, buf, buf, *len);
	return srtp_err_status_ok;
}

static srtp_err_status_t aes_gcm_get_tag(void *state, uint8_t *tag, uint32_t *len)
{
	struct aes_gcm *gcm = state;

	(void)EVP_Cipher(gcm->ctx, NULL, NULL, 0);
	if (!EVP_CIPHER_CTX_ctrl(gcm->ctx, EVP_CTRL_GCM_GET_TAG, gcm->tag_len, tag))
		return srtp_err_status_algo_fail;
	*len = (uint32_t)gcm->tag_len;
	return srtp_err_status_ok;
}

/* buf is the ciphertext and then the tag. */
static srtp_err_status_t aes_gcm_decrypt(void *state, uint8_t *buf, unsigned int *len)
{
	struct aes_gcm *gcm = state;

	if (gcm->dir != srtp_direction_encrypt && gcm->dir != srtp_direction_decrypt)
		return srtp_err_status_bad_param;
	if (*len < (unsigned int)gcm->tag_len)
		return srtp_err_status_bad_param; /* libsrtp2 never asks; its own would overrun */
	if (!EVP_CIPHER_CTX_ctrl(gcm->ctx, EVP_CTRL_GCM_SET_TAG, gcm->tag_len,
				 buf + (*len - (unsigned int)gcm->tag_len)))
		return srtp_err_status_auth_fail;
	(void)EVP_Cipher(gcm->ctx, buf, buf, *len - (unsigned int)gcm->tag_len);
	if (EVP_Cipher(gcm->ctx, NULL, NULL, 0) != 0) /* the tag checked: 0 is a match */
		return srtp_err_status_auth_fail;
	*len -= (unsigned int)gcm->tag_len;
	return srtp_err_status_ok;
}

/* libsrtp2's own AES-GCM cases (cipher_test_cases.c): for AES-128, test
 * case 4 of the GCM specification (McGrew and Viega), with a 16-byte and an
 * 8-byte tag; the 12 bytes after the AES key are the SRTP salt, which the
 * cipher does not use. The plaintext and AAD are the same for both sizes. */
static const uint8_t gcm_key_128[SRTP_AES_GCM_128_KEY_LEN_WSALT] = {
	0xfe, 0xff, 0xe9, 0x92, 0x86, 0x65, 0x73, 0x1c, 0x6d, 0x6a, 0x8f, 0x94, 0x67, 0x30,
	0x83, 0x08, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c,
};
static const uint8_t gcm_key_256[SRTP_AES_GCM_256_KEY_LEN_WSALT] = {
	0xfe, 0xff, 0xe9, 0x92, 0x86, 0x65, 0x73, 0x1c, 0xa5, 0x59, 0x09, 0xc5, 0x54, 0x66, 0x93,
	0x1c, 0xaf, 0xf5, 0x26, 0x9a, 0x21, 0xd5, 0x14, 0xb2, 0x6d, 0x6a, 0x8f, 0x94, 0x67, 0x30,
	0x83, 0x08, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c,
};
/* srtp_cipher_test_case_t wants it writable; nothing writes it */
static uint8_t gcm_iv[GCM_IV_LEN] = { 0xca, 0xfe, 0xba, 0xbe, 0xfa, 0xce,
				      0xdb, 0xad, 0xde, 0xca, 0xf8, 0x88 };
static const uint8_t gcm_plaintext[60] = {
	0xd9, 0x31, 0x32, 0x25, 0xf8, 0x84, 0x06, 0xe5, 0xa5, 0x59, 0x09, 0xc5, 0xaf, 0xf5, 0x26,
	0x9a, 0x86, 0xa7, 0xa9, 0x53, 0x15, 0x34, 0xf7, 0xda, 0x2e, 0x4c, 0x30, 0x3d, 0x8a, 0x31,
	0x8a, 0x72, 0x1c, 0x3c, 0x0c, 0x95, 0x95, 0x68, 0x09, 0x53, 0x2f, 0xcf, 0x0e, 0x24, 0x49,
	0xa6, 0xb5, 0x25, 0xb1, 0x6a, 0xed, 0xf5, 0xaa, 0x0d, 0xe6, 0x57, 0xba, 0x63, 0x7b, 0x39,
};
static const uint8_t gcm_aad[20] = {
	0xfe, 0xed, 0xfa, 0xce, 0xde, 0xad, 0xbe, 0xef, 0xfe, 0xed,
	0xfa, 0xce, 0xde, 0xad, 0xbe, 0xef, 0xab, 0xad, 0xda, 0xd2,
};
/* the ciphertext, then the 16-byte tag (the 8-byte one is its first half) */
static const uint8_t gcm_sealed_128[76] = {
	0x42, 0x83, 0x1e, 0xc2, 0x21, 0x77, 0x74, 0x24, 0x4b, 0x72, 0x21, 0xb7, 0x84,
	0xd0, 0xd4, 0x9c, 0xe3, 0xaa, 0x21, 0x2f, 0x2c, 0x02, 0xa4, 0xe0, 0x35, 0xc1,
	0x7e, 0x23, 0x29, 0xac, 0xa1, 0x2e, 0x21, 0xd5, 0x14, 0xb2, 0x54, 0x66, 0x93,
	0x1c, 0x7d, 0x8f, 0x6a, 0x5a, 0xac, 0x84, 0xaa, 0x05, 0x1b, 0xa3, 0x0b, 0x39,
	0x6a, 0x0a, 0xac, 0x97, 0x3d, 0x58, 0xe0, 0x91, 0x5b, 0xc9, 0x4f, 0xbc, 0x32,
	0x21, 0xa5, 0xdb, 0x94, 0xfa, 0xe9, 0x5a, 0xe7, 0x12, 0x1a, 0x47,
};
static const uint8_t gcm_sealed_256[76] = {
	0x0b, 0x11, 0xcf, 0xaf, 0x68, 0x4d, 0xae, 0x46, 0xc7, 0x90, 0xb8, 0x8e, 0xb7,
	0x6a, 0x76, 0x2a, 0x94, 0x82, 0xca, 0xab, 0x3e, 0x39, 0xd7, 0x86, 0x1b, 0xc7,
	0x93, 0xed, 0x75, 0x7f, 0x23, 0x5a, 0xda, 0xfd, 0xd3, 0xe2, 0x0e, 0x80, 0x87,
	0xa9, 0x6d, 0xd7, 0xe2, 0x6a, 0x7d, 0x5f, 0xb4, 0x80, 0xef, 0xef, 0xc5, 0x29,
	0x12, 0xd1, 0xaa, 0x10, 0x09, 0xc9, 0x86, 0xc1, 0x45, 0xbc, 0x03, 0xe6, 0xe1,
	0xac, 0x0a, 0x9f, 0x81, 0xcb, 0x8e, 0x5b, 0x46, 0x65, 0x63, 0x1d,
};

#define GCM_CASE(bits, tag, next)                                                                  \
	{                                                                                          \
		.key_length_octets = sizeof(gcm_key_##bits), .key = gcm_key_##bits, .idx = gcm_iv, \
		.plaintext_length_octets = sizeof(gcm_plaintext), .plaintext = gcm_plaintext,      \
		.ciphertext_length_octets = sizeof(gcm_plaintext) + (tag),                         \
		.ciphertext = gcm_sealed_##bits, .aad_length_octets = sizeof(gcm_aad),             \
		.aad = gcm_aad, .tag_length_octets = (tag), .next_test_case = (next),              \
	}
static const srtp_cipher_test_case_t gcm_128_tag8 = GCM_CASE(128, 8, NULL);
static const srtp_cipher_test_case_t gcm_128 = GCM_CASE(128, 16, &gcm_128_tag8);
static const srtp_cipher_test_case_t gcm_256_tag8 = GCM_CASE(256, 8, NULL);
static const srtp_cipher_test_case_t gcm_256 = GCM_CASE(256, 16, &gcm_256_tag8);

static const srtp_cipher_type_t aes_gcm_128_type = {
	.alloc = aes_gcm_alloc,
	.dealloc = aes_gcm_dealloc,
	.init = aes_gcm_init,
	.set_aad = aes_gcm_set_aad,
	.encrypt = aes_gcm_encrypt,
	.decrypt = aes_gcm_decrypt,
	.set_iv = aes_gcm_set_iv,
	.get_tag = aes_gcm_get_tag,
	.description = "AES-128 GCM (srtpbridge: AES-128-GCM fetched once)",
	.test_data = &gcm_128,
	.id = SRTP_AES_GCM_128,
};
static const srtp_cipher_type_t aes_gcm_256_type = {
	.alloc = aes_gcm_alloc,
	.dealloc = aes_gcm_dealloc,
	.init = aes_gcm_init,
	.set_aad = aes_gcm_set_aad,
	.encrypt = aes_gcm_encrypt,
	.decrypt = aes_gcm_decrypt,
	.set_iv = aes_gcm_set_iv,
	.get_tag = aes_gcm_get_tag,
	.description = "AES-256 GCM (srtpbridge: AES-256-GCM fetched once)",
	.test_data = &gcm_256,
	.id = SRTP_AES_GCM_256,
};

/* ---- installing them ---- */

static unsigned installed;

static void install_hmac(void)
{
	srtp_err_status_t st = srtp_replace_auth_type(&hmac_sha1_type, SRTP_HMAC_SHA1);

	if (st == srtp_err_status_ok)
		installed |= SRTPCRYPTO_HMAC_SHA1;
	else
		LOG_WARN(NULL, "keeping libsrtp2's own HMAC-SHA1: ours failed its test vectors",
			 LF_I("status", (int)st));
}

/* One family of our ciphers: every EVP_CIPHER it needs fetched first (all
 * or none: one of ours may allocate any size of its family, as libsrtp2's
 * do), then each offered to libsrtp2. */
struct offer {
	const char *name; /* OpenSSL's */
	const srtp_cipher_type_t *type;
	unsigned part;
};

static void install_ciphers(const char *family, const struct offer *o, EVP_CIPHER **fetched,
			    size_t n)
{
	for (size_t i = 0; i < n; i++) {
		fetched[i] = EVP_CIPHER_fetch(NULL, o[i].name, NULL);
		if (!fetched[i]) {
			LOG_WARN(NULL, "keeping libsrtp2's own cipher: OpenSSL cannot fetch one",
				 LF_S("family", family), LF_S("cipher", o[i].name));
			return;
		}
	}
	for (size_t i = 0; i < n; i++) {
		srtp_err_status_t st = srtp_replace_cipher_type(o[i].type, o[i].type->id);

		if (st == srtp_err_status_ok)
			installed |= o[i].part;
		else
			LOG_WARN(NULL,
				 "keeping libsrtp2's own cipher: ours failed its test vectors",
				 LF_S("family", family), LF_S("cipher", o[i].name),
				 LF_I("status", (int)st));
	}
}

static void install_aes_icm(void)
{
	static const struct offer icm[3] = {
		{ "AES-128-ECB", &aes_icm_128_type, SRTPCRYPTO_AES_ICM_128 },
		{ "AES-192-ECB", &aes_icm_192_type, SRTPCRYPTO_AES_ICM_192 },
		{ "AES-256-ECB", &aes_icm_256_type, SRTPCRYPTO_AES_ICM_256 },
	};

	install_ciphers("AES-ICM", icm, aes_ecb, 3);
}

static void install_aes_gcm(void)
{
	static const struct offer gcm[2] = {
		{ "AES-128-GCM", &aes_gcm_128_type, SRTPCRYPTO_AES_GCM_128 },
		{ "AES-256-GCM", &aes_gcm_256_type, SRTPCRYPTO_AES_GCM_256 },
	};

	install_ciphers("AES-GCM", gcm, aes_gcm, 2);
}

static void install(void)
{
	install_hmac();
	install_aes_icm();
	install_aes_gcm();
}

unsigned srtpcrypto_install(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, install);
	return installed;
}
