/* Key material: copied in, wiped out, never printed. */
#include "srtpbridge/secret.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

int secret_set(struct secret *s, const void *data, size_t len)
{
	if (len > SECRET_MAX) {
		secret_wipe(s);
		return EINVAL;
	}
	memcpy(s->bytes, data, len);
	s->len = len;
	return 0;
}

int secret_random(struct secret *s, size_t len)
{
	if (len > SECRET_MAX)
		return EINVAL;
	if (RAND_bytes(s->bytes, (int)len) != 1) {
		secret_wipe(s);
		return EIO;
	}
	s->len = len;
	return 0;
}

void secret_wipe(struct secret *s)
{
	if (s)
		OPENSSL_cleanse(s, sizeof(*s));
}

bool secret_equal(const struct secret *a, const struct secret *b)
{
	return a->len == b->len && CRYPTO_memcmp(a->bytes, b->bytes, a->len) == 0;
}

/* SHA-256 fetched once: EVP_sha256() makes OpenSSL 3 look the algorithm
 * up in its providers on every digest, a measurable part of a call's media
 * setup (two fingerprints a call). Never freed: one for the process. */
static EVP_MD *sha256;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
	sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void secret_fingerprint(const struct secret *s, char out[SECRET_FINGERPRINT_LEN])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	out[0] = 'k';
	out[1] = ':';
	pthread_once(&sha256_once, sha256_fetch);
	if (!sha256 || EVP_Digest(s->bytes, s->len, md, &mdlen, sha256, NULL) != 1 || mdlen < 6) {
		memcpy(out + 2, "????????????", 12);
	} else {
		for (int i = 0; i < 6; i++) {
			out[2 + 2 * i] = hex[md[i] >> 4];
			out[3 + 2 * i] = hex[md[i] & 15];
		}
	}
	out[14] = '\0';
	OPENSSL_cleanse(md, sizeof(md));
}
