/* suite.h: the SRTP crypto suites srtpbridge knows (DESIGN.md "Configuration"). */
#ifndef SRTPBRIDGE_SUITE_H
#define SRTPBRIDGE_SUITE_H

#include <stddef.h>

enum suite_id {
	SUITE_AES_CM_128_HMAC_SHA1_80 = 0,
	SUITE_AES_CM_128_HMAC_SHA1_32,
	SUITE_AES_192_CM_HMAC_SHA1_80,
	SUITE_AES_192_CM_HMAC_SHA1_32,
	SUITE_AES_256_CM_HMAC_SHA1_80,
	SUITE_AES_256_CM_HMAC_SHA1_32,
	SUITE_AEAD_AES_128_GCM,
	SUITE_AEAD_AES_256_GCM,
	SUITE_COUNT
};

/* Returns borrowed: the RFC 4568 / RFC 6188 / RFC 7714 name. */
const char *suite_name(enum suite_id id);
/* Exact, case-sensitive match over len bytes (SDES names are case-sensitive);
 * 0 or ENOENT. */
int suite_from_name(const char *name, size_t len, enum suite_id *out);

#endif
