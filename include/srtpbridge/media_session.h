/* media_session.h: a call's media session, the B2BUA's one door to media.
 *
 * One RTP/RTCP pair per stream on each leg, taken from the port pool and
 * bound on that leg's trunk media_address; the SDP of each leg names these
 * ports. The packets between them are moved by a media worker (relay.h),
 * which gets the session's sockets at creation and its parameters from
 * each media_session_update (after every SDP answer, both legs at once).
 * When the session is destroyed the worker lets go of the sockets first;
 * the pairs go back to the pool after that, on the main thread.
 *
 * Main thread only, like the pool. */
#ifndef SRTPBRIDGE_MEDIA_SESSION_H
#define SRTPBRIDGE_MEDIA_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "srtpbridge/portpool.h"
#include "srtpbridge/relay.h"

#define MEDIA_SESSION_MAX_STREAMS RELAY_MAX_STREAMS /* = OA_MAX_STREAMS */

enum media_leg {
	MEDIA_LEG_A = 0, /* the leg the call came in on */
	MEDIA_LEG_B,
};

struct media_session; /* defined in session.c */

/* Binds nstreams (1..MEDIA_SESSION_MAX_STREAMS) pairs on each leg: leg A's
 * on addr_a, leg B's on addr_b (IP literals), and hands them to relay (NULL:
 * no packet is moved, for tests of signalling). Borrows pool and relay,
 * which must outlive the session. Returns new *out, or EINVAL (a bad address
 * or count), ENOSPC (the pool ran dry: the call gets a 503), ENOMEM, or a
 * socket error; every pair taken is given back on error. */
int media_session_create(struct media_session **out, struct portpool *pool, struct relay *relay,
			 const char *addr_a, const char *addr_b, size_t nstreams);
/* Stops the relay of the session; every pair goes back to the pool
 * (quarantined, its sockets kept open by the pool) once the worker has let
 * go of it. NULL-safe. */
void media_session_destroy(struct media_session *s);

/* What each leg of each stream does now: p[MEDIA_LEG_A] and p[MEDIA_LEG_B];
 * streams from nstreams on are inactive. 0 or an errno
 * (relay_session_update: the old parameters then stay). */
int media_session_update(struct media_session *s,
			 const struct relay_stream_params p[2][RELAY_MAX_STREAMS], size_t nstreams);
/* Returns borrowed: the counters and the media timeout's clock. */
struct relay_session *media_session_relay(const struct media_session *s);

size_t media_session_nstreams(const struct media_session *s);
/* The RTP port of stream i on leg; 0 past the last stream. */
uint16_t media_session_port(const struct media_session *s, enum media_leg leg, size_t i);
/* The RTP ports of every stream on leg into ports[0..n-1], then 0 up to max. */
void media_session_ports(const struct media_session *s, enum media_leg leg, uint16_t *ports,
			 size_t max);

#endif
