/* sdes.h: SDES a=crypto attributes (RFC 4568 section 9): parse and print.
 *
 *   a=crypto:<tag> <crypto-suite> <key-params>[;<key-params>...] [<session-param> ...]
 *   key-params = "inline:" base64(key||salt) ["|" lifetime] ["|" mki-value ":" mki-length]
 *
 * Parsing is strict and every refusal has a sentence that never contains key
 * material. What the grammar allows but srtpbridge does not support (several
 * keys, UNENCRYPTED_SRTP, KDR...) parses fine: sdes_policy decides. */
#ifndef SRTPBRIDGE_SDES_H
#define SRTPBRIDGE_SDES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "srtpbridge/secret.h"
#include "srtpbridge/slice.h"
#include "srtpbridge/suite.h"

#define SDES_MAX_KEYS	    16 /* libsrtp2's SRTP_MAX_NUM_MASTER_KEYS */
#define SDES_MAX_FEC_KEYS   4
#define SDES_MAX_EXTENSIONS 4
#define SDES_MAX_LIFETIME   (1ULL << 48) /* RFC 3711 section 9.2: 2^48 SRTP packets */
#define SDES_MAX_MKI_LEN    128		 /* RFC 4568 section 9.1 */
#define SDES_MAX_TAG	    999999999u	 /* 1*9DIGIT */
#define SDES_LINE_MAX	    1024	 /* what sdes_print may need, with room */

struct sdes_key {
	struct secret keysalt; /* master key || master salt, decoded */
	uint64_t lifetime;     /* 0: none given */
	bool lifetime_pow2;    /* written as 2^n */
	bool has_mki;
	uint64_t mki;	  /* MKI value */
	unsigned mki_len; /* MKI length in bytes, 1..128 */
};

enum sdes_fec_order {
	SDES_FEC_NONE = 0,
	SDES_FEC_SRTP_FEC,
	SDES_FEC_FEC_SRTP
};

struct sdes_crypto {
	uint32_t tag;
	enum suite_id suite;
	struct sdes_key keys[SDES_MAX_KEYS];
	size_t nkeys;
	/* session parameters, RFC 4568 section 6.3 */
	bool unencrypted_srtp;
	bool unencrypted_srtcp;
	bool unauthenticated_srtp;
	int kdr; /* -1: none given; else 0..24 (the rate is 2^kdr) */
	enum sdes_fec_order fec_order;
	struct sdes_key fec_keys[SDES_MAX_FEC_KEYS];
	size_t nfec_keys;
	unsigned wsh; /* 0: none given; else >= 64 */
	/* extensions, kept verbatim for printing; a mandatory one (no '-')
	 * that we do not know makes the line unusable (section 6.3.7) */
	char extensions[SDES_MAX_EXTENSIONS][64];
	size_t nextensions;
	bool unknown_mandatory;
};

/* Parses the value of one a=crypto attribute (what follows "a=crypto:").
 * Returns 0, or EBADMSG with a sentence in why that names the problem and
 * never the key. An unknown suite is ENOTSUP (its key length cannot be
 * checked), with a sentence too. out is wiped on failure. */
int sdes_parse(struct sdes_crypto *out, struct slice value, char *why, size_t whysz);

/* Prints the attribute value; base64 keys padded with '=' when pad. Returns
 * the length, or 0 when size is too small (buf is then wiped). Key material
 * goes into buf: only SDP ever receives it. */
size_t sdes_print(char *buf, size_t size, const struct sdes_crypto *c, bool pad);

/* Wipes every key (OPENSSL_cleanse); NULL-safe. */
void sdes_wipe(struct sdes_crypto *c);

/* Strict base64 for keys: alphabet A-Z a-z 0-9 + /, '=' padding optional but
 * never in the middle, unused trailing bits zero. 0 or EBADMSG. */
int sdes_base64_decode(struct slice in, uint8_t *out, size_t size, size_t *len);

#endif
