/* SRTP suite names; the SDES issue grows this into the full suite table. */
#include "srtpbridge/suite.h"

#include <errno.h>
#include <string.h>

static const char *const names[SUITE_COUNT] = {
	[SUITE_AES_CM_128_HMAC_SHA1_80] = "AES_CM_128_HMAC_SHA1_80",
	[SUITE_AES_CM_128_HMAC_SHA1_32] = "AES_CM_128_HMAC_SHA1_32",
	[SUITE_AES_192_CM_HMAC_SHA1_80] = "AES_192_CM_HMAC_SHA1_80",
	[SUITE_AES_192_CM_HMAC_SHA1_32] = "AES_192_CM_HMAC_SHA1_32",
	[SUITE_AES_256_CM_HMAC_SHA1_80] = "AES_256_CM_HMAC_SHA1_80",
	[SUITE_AES_256_CM_HMAC_SHA1_32] = "AES_256_CM_HMAC_SHA1_32",
	[SUITE_AEAD_AES_128_GCM] = "AEAD_AES_128_GCM",
	[SUITE_AEAD_AES_256_GCM] = "AEAD_AES_256_GCM",
};

const char *suite_name(enum suite_id id)
{
	return (unsigned)id < SUITE_COUNT ? names[id] : NULL;
}

int suite_from_name(const char *name, size_t len, enum suite_id *out)
{
	for (int i = 0; i < SUITE_COUNT; i++) {
		if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0) {
			*out = (enum suite_id)i;
			return 0;
		}
	}
	return ENOENT;
}
