/* portpool.h: the media port pool over [global] media_ports, shared by all trunks.
 *
 * A call's media session takes RTP/RTCP pairs from here: RTP on an even port,
 * RTCP on the next (RFC 3550 section 11), both UDP sockets bound on the trunk's
 * media_address. A freed pair sits in quarantine for media_port_quarantine
 * seconds so late packets of an old call cannot reach a new one; a pair that
 * another program holds is skipped and left alone for PORTPOOL_BUSY_MS.
 * Free pairs are handed out least recently used first, in O(1) amortised.
 *
 * Counts are in ports, for srtpbridge_media_ports_free and srtpbridgectl
 * stats; free + quarantined + busy + in use = total at every moment.
 *
 * Not thread-safe, and deliberately without locks: only the main thread
 * creates, allocates, frees, counts and destroys. A media worker that ends a
 * session hands its pair back to the main thread through its queue. */
#ifndef SRTPBRIDGE_PORTPOOL_H
#define SRTPBRIDGE_PORTPOOL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* How long a pair that failed to bind (EADDRINUSE) is not tried again. */
#define PORTPOOL_BUSY_MS 30000

struct portpool; /* defined in portpool.c */

/* Two bound UDP sockets, nonblocking and close-on-exec. */
struct portpool_pair {
	int rtp_fd, rtcp_fd;
	uint16_t rtp_port, rtcp_port; /* rtcp_port = rtp_port + 1 */
};

/* A pool over [min, max]. RTP ports are the even ones (from min + 1 when min
 * is odd) whose RTCP port is still <= max; a port that cannot be part of such
 * a pair is not counted in the total. now_ms returns milliseconds of a clock
 * that never goes back; NULL = CLOCK_MONOTONIC (tests pass a fake). EINVAL
 * when min is 0 or the range holds no pair, ENOMEM. Returns new in *out. */
int portpool_create(struct portpool **out, uint16_t min, uint16_t max, unsigned quarantine_s,
		    uint64_t (*now_ms)(void *arg), void *arg);
/* NULL-safe. Sockets of pairs still in use are not closed: their sessions own them. */
void portpool_destroy(struct portpool *p);

/* Binds the least recently used free pair on bind_addr (an AF_INET or
 * AF_INET6 address of len bytes; its port is ignored) and returns it in *out,
 * which the caller owns until portpool_free_pair(). Pairs whose RTP or RTCP
 * port is in use elsewhere are marked busy and the next is tried, never more
 * pairs than were free at the call. ENOSPC when no pair could be bound (the
 * call gets a 503); EAFNOSUPPORT or EINVAL for a bad address; any other bind
 * or socket error (EADDRNOTAVAIL, EMFILE...) at once, the pair left free.
 * *out is written only on success. */
int portpool_alloc_pair(struct portpool *p, const struct sockaddr *bind_addr, socklen_t len,
			struct portpool_pair *out);
/* Takes pair's sockets: closes them, sets them to -1, and quarantines the
 * ports. A pair that is not in use from this pool with these sockets (such as
 * a second free of the same struct) is left untouched, so no fd is closed
 * twice. A copy kept after the free is not caught once the ports and fd
 * numbers are reused: free through the one struct the session holds. */
void portpool_free_pair(struct portpool *p, struct portpool_pair *pair);

/* Ports that an allocation may take now: neither in use, quarantined nor busy. */
unsigned portpool_free_count(const struct portpool *p);
unsigned portpool_total(const struct portpool *p);
unsigned portpool_quarantined_count(const struct portpool *p);
unsigned portpool_busy_count(const struct portpool *p);
unsigned portpool_in_use_count(const struct portpool *p);

/* Whether ports_needed ports (rounded up to whole pairs) are free now. Only a
 * forecast: a free port may turn out to be held by another program at bind. */
bool portpool_admit(const struct portpool *p, unsigned ports_needed);

#endif
