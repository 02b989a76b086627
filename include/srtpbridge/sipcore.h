/* sipcore.h: the daemon's SIP stack. Transports in, then DESIGN.md's order
 * of work: size (framing), the source check against the trunks' sources,
 * parsing with its caps, RFC 3581 Via fixing, the transaction layer, and the
 * transaction user (TU). The checks every request gets (Require, the body's
 * type, Accept) are made here; then the TU set with sipcore_set_tu (the
 * B2BUA) takes what it wants, and sipcore answers the rest itself: OPTIONS
 * 200, a CANCEL or BYE that matches nothing 481, a new INVITE 503 while
 * draining or without a TU, anything else 501. */
#ifndef SRTPBRIDGE_SIPCORE_H
#define SRTPBRIDGE_SIPCORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "srtpbridge/txn.h"

struct event_base;
struct config;
struct config_trunk;
struct sip_uri;
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
	uint64_t send_drops; /* UDP sends lost to a full socket buffer (retransmission covers) */
	/* TCP/TLS listeners paused, out of descriptors (transport.h) */
	uint64_t accept_pauses;
	/* TCP/TLS connections refused over the transport's limits (in all,
	 * per source), and TLS handshakes that failed */
	uint64_t connections_refused, tls_failures;
	uint64_t connections; /* TCP/TLS connections open now */
	/* refused at accept: no trunk's source, unknown_source = drop */
	uint64_t connections_unknown_source;
	uint64_t transactions;	    /* live now, calls ended or not (txn_layer_count) */
	uint64_t responses_sent[7]; /* by class: [1] = 1xx ... [6] = 6xx */
};
void sipcore_get_stats(const struct sipcore *s, struct sipcore_stats *out);

/* The transaction user. request() sees every request that passed the common
 * checks: in a new server transaction t, or with t NULL an ACK for a 2xx
 * (RFC 3261 17.2.3). cfg and trunk are the snapshot in use and the inbound
 * trunk the request came from (borrowed for the call: config_ref cfg to keep
 * trunk). It returns true when it took the request (and answers it through
 * t), false to leave it to sipcore. The other callbacks are those of
 * struct txn_callbacks for client transactions and strays. */
struct sipcore_tu {
	bool (*request)(void *arg, struct txn *t, osip_message_t *req, const struct txn_addr *from,
			struct config *cfg, const struct config_trunk *trunk);
	void (*response)(void *arg, struct txn *t, osip_message_t *resp);
	void (*stray_response)(void *arg, osip_message_t *resp, const struct txn_addr *from);
	void (*timeout)(void *arg, struct txn *t, enum txn_timer_id which);
	void (*transport_error)(void *arg, struct txn *t, int err);
	void (*terminated)(void *arg, struct txn *t);
	void *arg;
};
/* Copies tu; NULL removes it. */
void sipcore_set_tu(struct sipcore *s, const struct sipcore_tu *tu);

/* Returns borrowed: the transaction layer, for the TU's requests and
 * responses. */
struct txn_layer *sipcore_txn(struct sipcore *s);

/* Where a request to peer (one of trunk's peers) goes: its transport and
 * address (a name's from the background resolver, resolver.h), the trunk's
 * listen socket for that transport (UDP sends from it, so the peer sees the
 * address it knows), and the trunk for TLS verification. 0, or with a
 * sentence in why: ENOTCONN when trunk has no listen address of the peer's
 * transport, EHOSTUNREACH when the peer's name has no address (yet). */
int sipcore_peer_dest(const struct sipcore *s, const struct config_trunk *trunk,
		      const struct sip_uri *peer, struct txn_addr *out, char *why, size_t whysz);

/* A stream a dialog lives on stays open while held (no idle timeout). */
void sipcore_conn_hold(struct sipcore *s, uint64_t conn);
void sipcore_conn_release(struct sipcore *s, uint64_t conn);

#endif
