/* sdes_policy.h: which SDES keys protect which direction, from a trunk's
 * config: answering a secure peer's offer, offering to one, and checking its
 * answer (RFC 4568 sections 5.1.2, 5.1.3, 6). No I/O. */
#ifndef SRTPBRIDGE_SDES_POLICY_H
#define SRTPBRIDGE_SDES_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "srtpbridge/config.h"
#include "srtpbridge/sdes.h"
#include "srtpbridge/slice.h"

#define SDES_REASON_MAX 256

struct sdes_policy {
	enum suite_id suites[SUITE_COUNT]; /* allowed, most preferred first */
	size_t nsuites;
	enum crypto_select select;
	enum srtcp_mode srtcp;
	bool padding;
	uint64_t lifetime; /* 0: none in our lines */
	bool lifetime_pow2;
};

void sdes_policy_from_trunk(struct sdes_policy *p, const struct config_trunk *t);

/* The outcome of answering an offer. */
struct sdes_answer {
	int status;		      /* 0, or 488 */
	char reason[SDES_REASON_MAX]; /* 488: one line for a Warning header */
	size_t chosen;		      /* index of the accepted offered line */
	struct sdes_crypto offer;     /* that line: the peer's key, for inbound */
	struct sdes_crypto answer;    /* our line: a fresh key, for outbound */
};

/* Answers the a=crypto lines (attribute values) of one offered m= section.
 * Returns 0 with out->status 0 or 488, or EIO when no random key could be
 * made. Wipe out with sdes_answer_wipe. */
int sdes_policy_answer(const struct sdes_policy *p, const struct slice *lines, size_t n,
		       struct sdes_answer *out);
void sdes_answer_wipe(struct sdes_answer *a);

/* Our offer toward a secure peer: one line per allowed suite in preference
 * order, tags 1..n, fresh keys. Returns 0 (*n set) or EIO/ENOSPC. */
int sdes_policy_offer(const struct sdes_policy *p, struct sdes_crypto *out, size_t max, size_t *n);

/* Checks the peer's answer to our offer (RFC 4568 section 5.1.3): exactly one
 * line, a tag we offered, the same suite, a valid key, session parameters we
 * accept. Returns 0 with *chosen (index into offered) and *answer (the peer's
 * line), or EBADMSG with a sentence in why. */
int sdes_policy_check_answer(const struct sdes_policy *p, const struct sdes_crypto *offered,
			     size_t noffered, const struct slice *lines, size_t n, size_t *chosen,
			     struct sdes_crypto *answer, char *why, size_t whysz);

#endif
