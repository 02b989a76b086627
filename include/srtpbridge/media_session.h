/* media_session.h: a call's media session, the sockets it owns on each leg.
 *
 * One RTP/RTCP pair per stream on each leg, taken from the port pool and
 * bound on that leg's trunk media_address; the SDP of each leg names these
 * ports. The relay that moves packets between the legs comes with the media
 * issue; until then the session owns its ports so that admission, SDP and
 * srtpbridgectl stats see them exactly as they will be.
 *
 * Main thread only, like the pool. */
#ifndef SRTPBRIDGE_MEDIA_SESSION_H
#define SRTPBRIDGE_MEDIA_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "srtpbridge/portpool.h"

#define MEDIA_SESSION_MAX_STREAMS 8 /* = OA_MAX_STREAMS */

enum media_leg {
	MEDIA_LEG_A = 0, /* the leg the call came in on */
	MEDIA_LEG_B,
};

struct media_session; /* defined in session.c */

/* Binds nstreams (1..MEDIA_SESSION_MAX_STREAMS) pairs on each leg: leg A's
 * on addr_a, leg B's on addr_b (IP literals). Borrows pool, which must
 * outlive the session. Returns new *out, or EINVAL (a bad address or count),
 * ENOSPC (the pool ran dry: the call gets a 503), ENOMEM, or a socket
 * error; every pair taken is given back on error. */
int media_session_create(struct media_session **out, struct portpool *pool, const char *addr_a,
			 const char *addr_b, size_t nstreams);
/* Gives every pair back to the pool (closed, quarantined). NULL-safe. */
void media_session_destroy(struct media_session *s);

size_t media_session_nstreams(const struct media_session *s);
/* The RTP port of stream i on leg; 0 past the last stream. */
uint16_t media_session_port(const struct media_session *s, enum media_leg leg, size_t i);
/* The RTP ports of every stream on leg into ports[0..n-1], then 0 up to max. */
void media_session_ports(const struct media_session *s, enum media_leg leg, uint16_t *ports,
			 size_t max);

#endif
