/* b2bua.h: the back-to-back user agent, the transaction user of sipcore.
 *
 * A call is two dialogs: leg A, where the INVITE came in, and leg B, which
 * srtpbridge places toward the routed trunk's peer (DESIGN.md "How data
 * flows"). The B2BUA routes and admits the INVITE, builds leg B (legb.h),
 * rewrites every offer and answer (oa.h), owns the call's media ports
 * (media_session.h) and carries the call from INVITE to BYE on both legs:
 * provisional and final responses, the ACK of each 2xx (end to end, so each
 * leg's is ours), CANCEL, BYE from either side, and the end of a call that
 * srtpbridge decides itself, with a Reason header (RFC 3326) saying why.
 *
 * Main thread only. */
#ifndef SRTPBRIDGE_B2BUA_H
#define SRTPBRIDGE_B2BUA_H

#include <stdbool.h>
#include <stdint.h>

struct event_base;
struct config;
struct sipcore;
struct portpool;
struct relay;
struct control_out;

struct b2bua;

/* Calls the daemon waits for when it drains: hold() when one starts,
 * release() when it ends. Either may be NULL. */
struct b2bua_hooks {
	void (*hold)(void *arg);
	void (*release)(void *arg);
	void *arg;
};

/* Becomes sip's transaction user. Borrows base, sip, pool and relay (the
 * media worker; NULL: no packet is moved) for its life; hooks is copied
 * (NULL: none); cfg is the snapshot whose peers it pings (health.h).
 * Returns 0 or ENOMEM. */
int b2bua_create(struct b2bua **out, struct event_base *base, struct sipcore *sip,
		 struct portpool *pool, struct relay *relay, struct config *cfg,
		 const struct b2bua_hooks *hooks);
/* Ends every call at once with Reason: SIP;cause=503;text="srtpbridge
 * stopped" (BYE on both legs of an answered call, 503 to leg A and a CANCEL
 * to leg B of one still ringing), without waiting for answers; gives their
 * ports back and stops being sip's TU. NULL-safe. */
void b2bua_destroy(struct b2bua *b);

/* Drain: new INVITEs get 503 from sipcore, OPTIONS 503 from us; calls in
 * progress go on. */
void b2bua_drain(struct b2bua *b);
/* A new config snapshot: new calls get it from sipcore; the peers pinged
 * follow it here. 0 or ENOMEM (pinging then goes on as it was). */
int b2bua_reload(struct b2bua *b, struct config *cfg);

struct b2bua_stats {
	unsigned calls_active;
	uint64_t calls_started;	 /* INVITEs that became a call with a leg B */
	uint64_t calls_answered; /* a 2xx reached leg A */
	uint64_t calls_failed;	 /* ended before an answer: leg B failed, CANCEL, timeout */
	uint64_t calls_rejected; /* refused before leg B: route, admission, SDP */
	uint64_t rejected_no_route, rejected_admission, rejected_sdp;
	uint64_t rejected_no_peer; /* every peer of the destination trunk down or unreachable */
	uint64_t failovers;	   /* INVITEs moved on to the next peer */
	uint64_t ended_by_us;	   /* calls srtpbridge ended itself, Reason attached */
	uint64_t ack_timeouts, acks_sent;
	uint64_t media_timeouts;	/* calls ended by media_timeout or media_timeout_hold */
	uint64_t key_lifetimes_reached; /* SRTP keys used up to their a=crypto lifetime */
};
void b2bua_get_stats(const struct b2bua *b, struct b2bua_stats *out);

/* srtpbridgectl: every call as an element of the array "calls", and one call
 * by its short id or either leg's Call-ID (ENOENT when none). */
int b2bua_ctl_calls(const struct b2bua *b, struct control_out *o);
int b2bua_ctl_call(const struct b2bua *b, const char *id, struct control_out *o);
/* srtpbridgectl trunks: each trunk with its calls and its peers' health. */
int b2bua_ctl_trunks(const struct b2bua *b, struct control_out *o);

#endif
