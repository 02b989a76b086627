/* portpool.h: the media port pool over [global] media_ports, shared by all trunks.
 *
 * A call's media session takes RTP/RTCP pairs from here: RTP on an even port,
 * RTCP on the next (RFC 3550 section 11), both UDP sockets bound on the trunk's
 * media_address. The pool owns the sockets: a pair's are opened and bound the
 * first time it is handed out and stay bound across calls (socket, bind and
 * close were most of a call's media setup), until the pool is destroyed or
 * the pair is wanted on another address. A freed pair sits in quarantine for
 * media_port_quarantine seconds, still bound, so late packets of an old call
 * cannot reach a new one on another socket; whatever reached it meanwhile is
 * read and discarded when it is handed out again (by the media worker that
 * takes it, where portpool_set_drain says so). A pair that another program
 * holds is skipped and left alone for PORTPOOL_BUSY_MS.
 *
 * Open pairs are handed out before pairs never opened, each kind least
 * recently used first, in O(1) amortised: the sockets held open are the most
 * that were in use or in quarantine at once, not the whole range (an idle
 * daemon holds none). Each socket is nonblocking, close-on-exec, has
 * SO_TIMESTAMPNS on (the relay sheds packets that waited too long) and the
 * buffers of PORTPOOL_RCVBUF and PORTPOOL_SNDBUF.
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

/* Socket buffers, as asked of the kernel (which doubles them for its own
 * accounting: 64 KiB each). Receive: 78 G.711 packets of 172 bytes on
 * loopback (28 of 1200 bytes), over a second of a 20 ms stream, when the
 * relay sheds what waited 50 ms: room for a peer's burst, not a queue. The
 * usual default (net.core.rmem_default, 208 KiB) would let 10,000 sockets
 * hold 2 GiB of packets nobody reads; this, 625 MiB at most. Send (128 KiB
 * accounted): a sendmmsg batch of 32 full-size packets still queued in the
 * NIC. */
#define PORTPOOL_RCVBUF 32768
#define PORTPOOL_SNDBUF 65536

struct portpool; /* defined in portpool.c */

/* Two bound UDP sockets, nonblocking and close-on-exec, the pool's. */
struct portpool_pair {
	int rtp_fd, rtcp_fd;
	uint16_t rtp_port, rtcp_port; /* rtcp_port = rtp_port + 1 */
	/* These two sockets, as opposed to others that had or will have the
	 * same descriptor numbers: a number no pool in the process gives twice,
	 * taken when the pair was opened and bound. A media worker keeps the
	 * sockets in its epoll set from one call to the next while the id is
	 * the same (relay.h). Never 0. */
	uint64_t id;
};

/* A pool over [min, max]. RTP ports are the even ones (from min + 1 when min
 * is odd) whose RTCP port is still <= max; a port that cannot be part of such
 * a pair is not counted in the total. now_ms returns milliseconds of a clock
 * that never goes back; NULL = CLOCK_MONOTONIC (tests pass a fake). EINVAL
 * when min is 0 or the range holds no pair, ENOMEM. Returns new in *out. */
int portpool_create(struct portpool **out, uint16_t min, uint16_t max, unsigned quarantine_s,
		    uint64_t (*now_ms)(void *arg), void *arg);
/* Closes every socket the pool holds but those of pairs still in use (their
 * sessions may still read them). NULL-safe. */
void portpool_destroy(struct portpool *p);

/* A free pair bound on bind_addr (an AF_INET or AF_INET6 address of len
 * bytes; its port is ignored) in *out, which the caller borrows until
 * portpool_free_pair(): an open pair already bound there (least recently
 * used first among the next few), its sockets emptied of what reached them
 * while free (unless portpool_set_drain turned that off); else one never opened, or one open on another address, opened
 * and bound now. Pairs whose RTP or RTCP port is in use elsewhere are
 * marked busy and the next is tried, never more pairs than were free at the
 * call. Out of descriptors (EMFILE, ENFILE) or at portpool_set_open_max,
 * the pool closes the sockets of pairs that serve no call, free ones first,
 * then those in quarantine (which stay quarantined), and tries again
 * (portpool_fd_reclaims). ENOSPC when no
 * pair could be bound (the call gets a 503); EAFNOSUPPORT or EINVAL for a
 * bad address; any other bind or socket error (EADDRNOTAVAIL, EMFILE with
 * every open pair in use...) at once, the pair left free. *out is written
 * only on success. */
int portpool_alloc_pair(struct portpool *p, const struct sockaddr *bind_addr, socklen_t len,
			struct portpool_pair *out);
/* Gives pair back: its sockets stay open and bound in the pool, *pair's fds
 * are set to -1 and its id to 0, and the ports go to quarantine. The caller
 * must not read or write the sockets any more; a media worker may keep them
 * in its epoll set, unread, until they serve a call again (relay.h). A pair that is not in use
 * from this pool with these sockets (such as a second free of the same
 * struct) is left untouched. A copy kept after the free is not caught once
 * the pair is handed out again: free through the one struct the session
 * holds. */
void portpool_free_pair(struct portpool *p, struct portpool_pair *pair);

/* Whether portpool_alloc_pair empties an open pair's sockets of what reached
 * them while free (on from the start). Off where every socket handed out
 * goes to a media worker, which empties a socket when it registers it anew
 * and knows when nothing reached one it still has registered (relay.h):
 * the pool's four recvmmsg a call were ~2.5 us of its setup. */
void portpool_set_drain(struct portpool *p, bool drain);
/* At most how many sockets the pool keeps open (no limit at first), so that
 * it leaves the rest of the process its descriptors (SIP connections, the
 * control socket). Near it, a pair freed is closed at once (it still goes
 * to quarantine): those freed before it stay open, to be reused without
 * opening sockets. Above it, opening a pair first closes idle ones as when
 * descriptors run out. Sockets of pairs in use are never closed: with all
 * of them in use, the pool may still open more. */
void portpool_set_open_max(struct portpool *p, unsigned sockets);
/* Reads and drops whatever is queued on the UDP socket fd (nonblocking
 * reads, at most 16 rounds of 64: a flood cannot hold the caller for ever;
 * what stays comes from nobody the next call signalled). */
void portpool_drain(int fd);

/* Ports that an allocation may take now: neither in use, quarantined nor busy. */
unsigned portpool_free_count(const struct portpool *p);
unsigned portpool_total(const struct portpool *p);
unsigned portpool_quarantined_count(const struct portpool *p);
unsigned portpool_busy_count(const struct portpool *p);
unsigned portpool_in_use_count(const struct portpool *p);
/* Ports whose sockets the pool holds open now, in use or not: the file
 * descriptors it takes (RLIMIT_NOFILE). */
unsigned portpool_open_count(const struct portpool *p);
/* Pairs whose sockets were closed while they served no call, to leave
 * descriptors (the process was out of them, or the pool at its
 * portpool_set_open_max share), since the pool was created. */
uint64_t portpool_fd_reclaims(const struct portpool *p);

/* Whether ports_needed ports (rounded up to whole pairs) are free now. Only a
 * forecast: a free port may turn out to be held by another program at bind. */
bool portpool_admit(const struct portpool *p, unsigned ports_needed);

#endif
