/* secret.h: the one type that holds key material (STYLE.md section 12).
 *
 * It has no printer: nothing formats it, log.h has no field type for it, and
 * the only text derived from it is a short, one-way fingerprint so that an
 * operator can tell two keys apart without seeing either. */
#ifndef SRTPBRIDGE_SECRET_H
#define SRTPBRIDGE_SECRET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Large enough for the longest SRTP master key||salt (AES-256: 32 + 14). */
#define SECRET_MAX 64
/* "k:" + 12 hex digits + NUL */
#define SECRET_FINGERPRINT_LEN 15

struct secret {
	uint8_t bytes[SECRET_MAX];
	size_t len;
};

/* Copies len bytes in; EINVAL when len exceeds SECRET_MAX (s is then wiped). */
int secret_set(struct secret *s, const void *data, size_t len);
/* Fills len random bytes from the OpenSSL CSPRNG; EINVAL or EIO. */
int secret_random(struct secret *s, size_t len);
/* OPENSSL_cleanse over the whole struct; NULL-safe. */
void secret_wipe(struct secret *s);
/* Constant-time comparison. */
bool secret_equal(const struct secret *a, const struct secret *b);
/* "k:" and the first 6 bytes of SHA-256 over the key, in hex. */
void secret_fingerprint(const struct secret *s, char out[SECRET_FINGERPRINT_LEN]);

#endif
