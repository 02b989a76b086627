/* The suite table: one row per suite, the single source of its lengths and
 * of the libsrtp2 policy that implements it. */
#include "srtpbridge/suite.h"

#include <errno.h>
#include <string.h>

#include <srtp2/srtp.h>

static const struct suite_info suites[SUITE_COUNT] = {
	[SUITE_AES_CM_128_HMAC_SHA1_80] = { "AES_CM_128_HMAC_SHA1_80", 16, 14, 10, 10, false },
	[SUITE_AES_CM_128_HMAC_SHA1_32] = { "AES_CM_128_HMAC_SHA1_32", 16, 14, 4, 10, false },
	[SUITE_AES_192_CM_HMAC_SHA1_80] = { "AES_192_CM_HMAC_SHA1_80", 24, 14, 10, 10, false },
	[SUITE_AES_192_CM_HMAC_SHA1_32] = { "AES_192_CM_HMAC_SHA1_32", 24, 14, 4, 10, false },
	[SUITE_AES_256_CM_HMAC_SHA1_80] = { "AES_256_CM_HMAC_SHA1_80", 32, 14, 10, 10, false },
	[SUITE_AES_256_CM_HMAC_SHA1_32] = { "AES_256_CM_HMAC_SHA1_32", 32, 14, 4, 10, false },
	[SUITE_AEAD_AES_128_GCM] = { "AEAD_AES_128_GCM", 16, 12, 16, 16, true },
	[SUITE_AEAD_AES_256_GCM] = { "AEAD_AES_256_GCM", 32, 12, 16, 16, true },
};

const struct suite_info *suite_get(enum suite_id id)
{
	return (unsigned)id < SUITE_COUNT ? &suites[id] : NULL;
}

const char *suite_name(enum suite_id id)
{
	return (unsigned)id < SUITE_COUNT ? suites[id].name : NULL;
}

#ifndef SRTPBRIDGE_LIBSRTP_AES192_KDF
#define SRTPBRIDGE_LIBSRTP_AES192_KDF 0
#endif

bool suite_usable(enum suite_id id, const char **why)
{
	if ((id == SUITE_AES_192_CM_HMAC_SHA1_80 || id == SUITE_AES_192_CM_HMAC_SHA1_32) &&
	    !SRTPBRIDGE_LIBSRTP_AES192_KDF) {
		if (why)
			*why = "the libsrtp2 this build links derives AES-192 keys wrongly "
			       "(cisco/libsrtp#763); build without SRTPBRIDGE_SYSTEM_LIBSRTP";
		return false;
	}
	return (unsigned)id < SUITE_COUNT;
}

unsigned suite_keysalt_len(enum suite_id id)
{
	return (unsigned)id < SUITE_COUNT ? suites[id].key_len + suites[id].salt_len : 0;
}

int suite_from_name(const char *name, size_t len, enum suite_id *out)
{
	for (int i = 0; i < SUITE_COUNT; i++) {
		if (strlen(suites[i].name) == len && memcmp(suites[i].name, name, len) == 0) {
			*out = (enum suite_id)i;
			return 0;
		}
	}
	return ENOENT;
}

void suite_srtp_policies(enum suite_id id, struct srtp_crypto_policy_t *rtp,
			 struct srtp_crypto_policy_t *rtcp)
{
	switch (id) {
	case SUITE_AES_CM_128_HMAC_SHA1_80:
		srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(rtp);
		srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(rtcp);
		break;
	case SUITE_AES_CM_128_HMAC_SHA1_32:
		srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(rtp);
		srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(rtcp);
		break;
	case SUITE_AES_192_CM_HMAC_SHA1_80:
		srtp_crypto_policy_set_aes_cm_192_hmac_sha1_80(rtp);
		srtp_crypto_policy_set_aes_cm_192_hmac_sha1_80(rtcp);
		break;
	case SUITE_AES_192_CM_HMAC_SHA1_32:
		srtp_crypto_policy_set_aes_cm_192_hmac_sha1_32(rtp);
		srtp_crypto_policy_set_aes_cm_192_hmac_sha1_80(rtcp);
		break;
	case SUITE_AES_256_CM_HMAC_SHA1_80:
		srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80(rtp);
		srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80(rtcp);
		break;
	case SUITE_AES_256_CM_HMAC_SHA1_32:
		srtp_crypto_policy_set_aes_cm_256_hmac_sha1_32(rtp);
		srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80(rtcp);
		break;
	case SUITE_AEAD_AES_128_GCM:
		srtp_crypto_policy_set_aes_gcm_128_16_auth(rtp);
		srtp_crypto_policy_set_aes_gcm_128_16_auth(rtcp);
		break;
	case SUITE_AEAD_AES_256_GCM:
		srtp_crypto_policy_set_aes_gcm_256_16_auth(rtp);
		srtp_crypto_policy_set_aes_gcm_256_16_auth(rtcp);
		break;
	case SUITE_COUNT:
		break;
	}
}
