/* sipcore.h: the daemon's SIP stack. Transports in, then DESIGN.md's order
 * of work: size (framing), the source check against the trunks' sources,
 * parsing with its caps, RFC 3581 Via fixing, the transaction layer, and the
 * transaction user. Until the B2BUA takes that role, the user answers
 * OPTIONS, CANCEL and BYE, and refuses INVITEs with 503 and a Warning. */
#ifndef SRTPBRIDGE_SIPCORE_H
#define SRTPBRIDGE_SIPCORE_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct config;
struct sipcore;

/* Takes one more reference to cfg; binds every listen address of it.
 * Returns 0, or an errno with a sentence in why. */
int sipcore_create(struct sipcore **out, struct event_base *base, struct config *cfg, char *why,
		   size_t whysz);
void sipcore_destroy(struct sipcore *s); /* NULL-safe */

/* A new snapshot for new requests (classification, unknown_source). */
void sipcore_reload(struct sipcore *s, struct config *cfg);
/* Drain: no new connections, 503 to new INVITEs. */
void sipcore_drain(struct sipcore *s);

struct sipcore_stats {
	uint64_t requests, responses;
	uint64_t unknown_source, malformed, keepalives;
	uint64_t responses_sent[7]; /* by class: [1] = 1xx ... [6] = 6xx */
};
void sipcore_get_stats(const struct sipcore *s, struct sipcore_stats *out);

#endif
