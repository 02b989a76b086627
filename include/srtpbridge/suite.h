/* suite.h: the SRTP crypto suites srtpbridge knows (DESIGN.md "Configuration"),
 * with their key, salt and tag lengths and their libsrtp2 policies. */
#ifndef SRTPBRIDGE_SUITE_H
#define SRTPBRIDGE_SUITE_H

#include <stdbool.h>
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

struct suite_info {
	const char *name;     /* RFC 4568 / RFC 6188 / RFC 7714 */
	unsigned key_len;     /* master key, bytes */
	unsigned salt_len;    /* master salt, bytes: 14 for AES-CM, 12 for GCM */
	unsigned rtp_tag_len; /* SRTP authentication tag, bytes */
	/* SRTCP keeps an 80-bit tag with the _32 suites (RFC 3711 section 7.5,
	 * RFC 4568 section 6.2): a peer that uses 4 bytes there is broken. */
	unsigned rtcp_tag_len;
	bool aead;
};

/* Returns borrowed; NULL for an id out of range. */
const struct suite_info *suite_get(enum suite_id id);
/* Returns borrowed: the SDES name. */
const char *suite_name(enum suite_id id);
/* Exact, case-sensitive match over len bytes (SDES names are case-sensitive);
 * 0 or ENOENT. */
int suite_from_name(const char *name, size_t len, enum suite_id *out);
/* Whether the linked libsrtp2 implements the suite correctly; when not, *why
 * (optional) gets a sentence. libsrtp2 before 2.7 derives AES-192 keys
 * wrongly (cisco/libsrtp#763): offering such a suite would give silent calls
 * with every RFC 6188 peer. */
bool suite_usable(enum suite_id id, const char **why);
/* key_len + salt_len: the decoded length of an inline: key. */
unsigned suite_keysalt_len(enum suite_id id);

/* Fills libsrtp2 crypto policies for RTP and RTCP. (srtp_crypto_policy_t is
 * libsrtp's typedef of this struct tag; this header does not need srtp.h.) */
struct srtp_crypto_policy_t;
void suite_srtp_policies(enum suite_id id, struct srtp_crypto_policy_t *rtp,
			 struct srtp_crypto_policy_t *rtcp);

#endif
