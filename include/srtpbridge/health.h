/* health.h: whether each peer of each trunk is worth a call (DESIGN.md
 * "b2bua/ ... failover, peer health").
 *
 * Two sources of news, kept apart and combined into one state:
 * - OPTIONS pings, every options_interval s to each peer of a trunk that
 *   has one. A final response in options_ok_codes counts as an answer (408
 *   and 503 never do); no final response within the ping timeout
 *   (failover_timeout, at most three quarters of the interval: Timer F's
 *   32 s is longer than a typical interval), a transport error or any other
 *   code is a miss. Down after 3 misses in a row, up after 2 answers in a
 *   row; a peer not yet pinged is "unknown" and usable, and its first
 *   answer makes it up.
 * - A 503 with Retry-After to a call's INVITE (RFC 3263 section 4.3): the
 *   peer is down for that long (at most HEALTH_RETRY_AFTER_MAX s), pings or
 *   not.
 * A peer is usable unless one of them says down. Each change of that is
 * logged ("peer down", "peer up") and counted.
 *
 * State is keyed by trunk name and peer URI, so it survives a reload that
 * keeps them; the pings follow the new snapshot. A call holding an older
 * snapshot asks about its own trunk and peer and gets the answer for the
 * same name and URI. Main thread only; the ping transactions are the B2BUA's
 * client transactions, their events handed over with health_txn_*. */
#ifndef SRTPBRIDGE_HEALTH_H
#define SRTPBRIDGE_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <osipparser2/osip_message.h>

struct event_base;
struct config;
struct config_trunk;
struct control_out;
struct sip_uri;
struct sipcore;
struct txn;

#define HEALTH_RETRY_AFTER_MAX 3600 /* s: a peer's Retry-After beyond is capped */

struct health;

/* Borrows base and sip; takes a reference to cfg and starts pinging its
 * peers. 0 or ENOMEM. */
int health_create(struct health **out, struct event_base *base, struct sipcore *sip,
		  struct config *cfg);
/* Aborts the pings in flight. NULL-safe. */
void health_destroy(struct health *h);
/* A new snapshot: state kept for each trunk name and peer URI it still
 * has, pings rescheduled by its options_interval. 0 or ENOMEM (the old
 * snapshot then stays). */
int health_reload(struct health *h, struct config *cfg);

/* The tu_data of every ping transaction: the B2BUA gives the events of a
 * transaction whose data is this pointer to the functions below. */
const void *health_txn_tag(const struct health *h);
void health_txn_response(struct health *h, struct txn *t, const osip_message_t *resp);
void health_txn_failed(struct health *h, struct txn *t, int err); /* timeout: ETIMEDOUT */
void health_txn_terminated(struct health *h, struct txn *t);

/* Peer peer (an element of trunk->peers, trunk of any snapshot): may a
 * call go there now? An unknown trunk or peer is usable. */
bool health_usable(const struct health *h, const struct config_trunk *trunk,
		   const struct sip_uri *peer);
/* A 503 from peer carried Retry-After: seconds: down until then. */
void health_retry_after(struct health *h, const struct config_trunk *trunk,
			const struct sip_uri *peer, unsigned seconds);
/* A call moved away from peer to the next one (counted for srtpbridgectl). */
void health_failover(struct health *h, const struct config_trunk *trunk,
		     const struct sip_uri *peer);

/* May a call go to trunk at all: has it a usable peer? */
bool health_trunk_usable(const struct health *h, const struct config_trunk *trunk);

/* Is there a path behind trunk `in` (of cfg): at least one usable peer on
 * its route's trunk, or on any trunk a [route:*] rule from it names? A
 * trunk that routes nowhere has nothing to be unhealthy about: true. */
bool health_route_ok(const struct health *h, const struct config *cfg,
		     const struct config_trunk *in);

/* srtpbridgectl trunks: the array "trunks", each trunk of the current
 * snapshot with its peers' state. calls(arg, name) gives a trunk's calls. */
int health_ctl_trunks(const struct health *h, struct control_out *o,
		      unsigned (*calls)(const void *arg, const char *trunk), const void *arg);

#endif
