/* portpool.c: the media port pool (see portpool.h).
 *
 * Each pair is a slot, and each slot not in use sits in exactly one of four
 * FIFO queues linked through the slots: open (free, its sockets bound),
 * closed (free, no sockets), quarantine (sockets bound) and busy (no
 * sockets). The last two hold a fixed delay each and the clock never goes
 * back, so each is sorted by expiry: an allocation first moves the expired
 * heads to the open or closed tail, then takes from open before closed.
 * Every slot moves at most once per state change, hence O(1) amortised, and
 * each FIFO reuses the least recently freed pair of its kind.
 *
 * Sockets kept open between calls cost descriptors. When the process has
 * none left, the sockets of pairs that serve no call are closed, least
 * recently used first (open, then quarantined), rather than the new call
 * refused: a pair closed in quarantine stays quarantined, only unbound. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "srtpbridge/addr.h"
#include "srtpbridge/portpool.h"

#define NIL UINT32_MAX
/* How far into the open queue an allocation looks for a pair bound on its
 * address: a call's frees and its allocations both go leg by leg, so with
 * two media addresses the match is at the head or next to it. */
#define LOOKAHEAD 16
/* Datagrams read per recvmmsg when a pair is emptied, and at most how many
 * rounds: a flood cannot hold a call's setup for ever (what stays is the
 * new call's to refuse: it comes from nobody it signalled). */
#define DRAIN_BATCH  64
#define DRAIN_ROUNDS 16

enum slot_state {
	SLOT_FREE = 0,
	SLOT_IN_USE,
	SLOT_QUARANTINE,
	SLOT_BUSY,
};

/* The address a slot's sockets are bound on, its port 0. */
union bound {
	struct sockaddr sa;
	struct sockaddr_in v4;
	struct sockaddr_in6 v6;
};

struct slot {
	uint64_t until_ms;   /* quarantine or busy: when the slot may be free again */
	uint64_t id;	     /* portpool_pair.id, valid while the sockets are open */
	int rtp_fd, rtcp_fd; /* -1 when closed */
	union bound at;	     /* valid while the sockets are open */
	uint32_t next;
	uint8_t state;
};

struct queue {
	uint32_t head, tail, n;
};

struct portpool {
	uint16_t base; /* first RTP port */
	uint32_t npairs;
	uint64_t quarantine_ms;
	uint64_t (*now_ms)(void *arg);
	void *arg;
	struct queue open, closed, quarantine, busy;
	uint32_t in_use, nopen;
	/* The first qclosed slots of the quarantine queue have their sockets
	 * closed (for descriptors); qlast_closed is the last of them when
	 * qclosed > 0. Behind them, a pair freed above the share is closed too. */
	uint32_t qclosed, qlast_closed;
	uint64_t fd_reclaims;
	uint32_t open_max; /* sockets the pool may hold open (portpool_set_open_max) */
	bool drain;	   /* empty an open pair's sockets as it is handed out */
	struct slot slots[];
};

/* Process-wide: two pools may hand out sockets under the same number one
 * after the other, and the media workers serve both. */
static _Atomic uint64_t last_id;

static uint64_t monotonic_ms(void *arg)
{
	struct timespec ts;

	(void)arg;
	/* Cannot fail for CLOCK_MONOTONIC with a valid pointer. */
	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void q_push_tail(struct portpool *p, struct queue *q, uint32_t i)
{
	p->slots[i].next = NIL;
	if (q->tail == NIL)
		q->head = i;
	else
		p->slots[q->tail].next = i;
	q->tail = i;
	q->n++;
}

static void q_push_head(struct portpool *p, struct queue *q, uint32_t i)
{
	p->slots[i].next = q->head;
	q->head = i;
	if (q->tail == NIL)
		q->tail = i;
	q->n++;
}

/* Unlinks i, whose predecessor in q is prev (NIL: i is the head). */
static void q_unlink(struct portpool *p, struct queue *q, uint32_t prev, uint32_t i)
{
	uint32_t next = p->slots[i].next;

	if (prev == NIL)
		q->head = next;
	else
		p->slots[prev].next = next;
	if (q->tail == i)
		q->tail = prev;
	q->n--;
}

static uint32_t q_pop_head(struct portpool *p, struct queue *q)
{
	uint32_t i = q->head;

	q_unlink(p, q, NIL, i);
	return i;
}

/* How many slots at the head of q have expired: they count as free although
 * only the next allocation moves them (the counters take a const pool). */
static uint32_t q_expired(const struct portpool *p, const struct queue *q, uint64_t now)
{
	uint32_t n = 0;

	for (uint32_t i = q->head; i != NIL && p->slots[i].until_ms <= now; i = p->slots[i].next)
		n++;
	return n;
}

static void reclaim(struct portpool *p, struct queue *q, uint64_t now)
{
	while (q->head != NIL && p->slots[q->head].until_ms <= now) {
		uint32_t i = q_pop_head(p, q);

		if (q == &p->quarantine && p->qclosed)
			p->qclosed--;
		p->slots[i].state = SLOT_FREE;
		q_push_tail(p, p->slots[i].rtp_fd >= 0 ? &p->open : &p->closed, i);
	}
}

static void hold(struct portpool *p, struct queue *q, uint32_t i, enum slot_state state,
		 uint64_t until)
{
	p->slots[i].state = state;
	p->slots[i].until_ms = until;
	q_push_tail(p, q, i);
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void slot_close(struct portpool *p, uint32_t i)
{
	struct slot *s = &p->slots[i];

	if (s->rtp_fd >= 0)
		p->nopen--;
	close_fd(&s->rtp_fd);
	close_fd(&s->rtcp_fd);
}

int portpool_create(struct portpool **out, uint16_t min, uint16_t max, unsigned quarantine_s,
		    uint64_t (*now_ms)(void *arg), void *arg)
{
	uint32_t base = min + (min & 1u);
	uint32_t npairs;
	struct portpool *p;

	/* Port 0 asks the kernel for any port: it cannot be part of a range. */
	if (min == 0 || min > max || base + 1 > max)
		return EINVAL;
	npairs = ((uint32_t)max - base + 1) / 2;
	p = calloc(1, sizeof(*p) + npairs * sizeof(p->slots[0]));
	if (!p)
		return ENOMEM;
	p->base = (uint16_t)base;
	p->npairs = npairs;
	p->quarantine_ms = (uint64_t)quarantine_s * 1000;
	p->now_ms = now_ms ? now_ms : monotonic_ms;
	p->drain = true;
	p->open_max = UINT32_MAX;
	p->arg = now_ms ? arg : NULL;
	p->open.head = p->open.tail = NIL;
	p->closed.head = p->closed.tail = NIL;
	p->quarantine.head = p->quarantine.tail = NIL;
	p->busy.head = p->busy.tail = NIL;
	/* Ascending at first; after that, the order in which pairs come back.
	 * Nothing is opened before it is needed. */
	for (uint32_t i = 0; i < npairs; i++) {
		p->slots[i].rtp_fd = p->slots[i].rtcp_fd = -1;
		hold(p, &p->closed, i, SLOT_FREE, 0);
	}
	*out = p;
	return 0;
}

void portpool_destroy(struct portpool *p)
{
	if (!p)
		return;
	for (uint32_t i = 0; i < p->npairs; i++)
		if (p->slots[i].state != SLOT_IN_USE)
			slot_close(p, i);
	free(p);
}

/* A media socket for the address family, unbound, with the options every
 * media socket has (portpool.h). A failed option only costs what it was
 * for: no socket is refused for it. */
static int open_udp(int family, int *fd)
{
	static const int on = 1, rcvbuf = PORTPOOL_RCVBUF, sndbuf = PORTPOOL_SNDBUF;

	*fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (*fd < 0)
		return errno;
	(void)setsockopt(*fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on));
	(void)setsockopt(*fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	(void)setsockopt(*fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	return 0;
}

/* Sockets kept free below the share as pairs are freed: an eighth of it,
 * up to 32 pairs. */
static uint32_t share_headroom(const struct portpool *p)
{
	return p->open_max / 8 < 64 ? p->open_max / 8 : 64;
}

/* Closes the sockets of one pair that serves no call: one a free pair, else
 * the one longest in quarantine that still has its sockets. False when
 * every pair the pool holds open is in use. */
static bool close_idle(struct portpool *p)
{
	uint32_t i;

	if (p->open.n) {
		i = q_pop_head(p, &p->open);
		slot_close(p, i);
		q_push_tail(p, &p->closed, i);
	} else {
		/* past the prefix known closed, and past pairs closed as they
		 * were freed: each slot joins the prefix once */
		i = p->qclosed ? p->slots[p->qlast_closed].next : p->quarantine.head;
		while (i != NIL && p->slots[i].rtp_fd < 0) {
			p->qclosed++;
			p->qlast_closed = i;
			i = p->slots[i].next;
		}
		if (i == NIL)
			return false;
		slot_close(p, i);
		p->qclosed++;
		p->qlast_closed = i;
	}
	p->fd_reclaims++;
	return true;
}

/* open_udp, within the pool's share of descriptors and making room when
 * the process is out of them: two come back for each pair closed. */
static int open_socket(struct portpool *p, int family, int *fd)
{
	int err;

	/* nopen counts pairs; the first socket of a pair is not counted yet */
	while (2 * p->nopen + 2 > p->open_max && close_idle(p))
		;
	while (((err = open_udp(family, fd)) == EMFILE || err == ENFILE) && close_idle(p))
		;
	return err;
}

static int bind_port(int fd, union bound *at, socklen_t len, uint16_t port)
{
	int err;

	if (at->sa.sa_family == AF_INET)
		at->v4.sin_port = htons(port);
	else
		at->v6.sin6_port = htons(port);
	/* No SO_REUSEADDR: with it two UDP sockets could share a port, and
	 * EADDRINUSE is how a port held by another program shows. */
	err = bind(fd, &at->sa, len) ? errno : 0;
	if (at->sa.sa_family == AF_INET)
		at->v4.sin_port = 0;
	else
		at->v6.sin6_port = 0;
	return err;
}

/* Zero-length buffers: the kernel discards each datagram whole. */
void portpool_drain(int fd)
{
	struct mmsghdr m[DRAIN_BATCH];

	memset(m, 0, sizeof(m));
	for (int round = 0; round < DRAIN_ROUNDS; round++) {
		int n = recvmmsg(fd, m, DRAIN_BATCH, MSG_DONTWAIT, NULL);

		/* an error other than EAGAIN (a pending ICMP error) is
		 * consumed by the call that reports it: read on */
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			continue;
		if (n < DRAIN_BATCH)
			break;
	}
}

static void hand_out(struct portpool *p, uint32_t i, struct portpool_pair *out)
{
	struct slot *s = &p->slots[i];
	uint16_t port = (uint16_t)(p->base + 2 * i);

	s->state = SLOT_IN_USE;
	p->in_use++;
	*out = (struct portpool_pair){ .rtp_fd = s->rtp_fd,
				       .rtcp_fd = s->rtcp_fd,
				       .rtp_port = port,
				       .rtcp_port = (uint16_t)(port + 1),
				       .id = s->id };
}

/* An open pair bound on at among the first LOOKAHEAD of the open queue. */
static uint32_t take_open(struct portpool *p, const union bound *at)
{
	uint32_t prev = NIL, i = p->open.head;

	for (unsigned k = 0; k < LOOKAHEAD && i != NIL; k++, prev = i, i = p->slots[i].next)
		if (addr_equal(&p->slots[i].at.sa, &at->sa, false)) {
			q_unlink(p, &p->open, prev, i);
			return i;
		}
	return NIL;
}

/* Opens and binds a pair for at: pairs never opened first, then open ones
 * bound elsewhere (closed and bound again). */
static int bind_new(struct portpool *p, union bound *at, socklen_t len, uint64_t now,
		    struct portpool_pair *out)
{
	int rtp_fd = -1, rtcp_fd = -1;
	uint32_t tries;
	int err;

	err = open_socket(p, at->sa.sa_family, &rtp_fd);
	if (!err)
		err = open_socket(p, at->sa.sa_family, &rtcp_fd);
	if (err)
		goto out;

	/* A pair found busy goes to the busy queue, not back to free, so the
	 * loop ends by itself; tries only makes that bound explicit. */
	for (tries = p->closed.n + p->open.n; tries > 0 && p->closed.n + p->open.n > 0; tries--) {
		uint32_t i = p->closed.n ? q_pop_head(p, &p->closed) : q_pop_head(p, &p->open);
		uint16_t port = (uint16_t)(p->base + 2 * i);
		bool rtp_bound;

		slot_close(p, i); /* bound on another address: this one now */
		/* A failed bind leaves a UDP socket unbound, so the same socket
		 * tries the next port: one syscall per port held by others. */
		err = bind_port(rtp_fd, at, len, port);
		rtp_bound = !err;
		if (!err)
			err = bind_port(rtcp_fd, at, len, (uint16_t)(port + 1));
		if (!err) {
			p->slots[i].rtp_fd = rtp_fd;
			p->slots[i].rtcp_fd = rtcp_fd;
			p->slots[i].at = *at;
			p->slots[i].id =
				atomic_fetch_add_explicit(&last_id, 1, memory_order_relaxed) + 1;
			p->nopen++;
			hand_out(p, i, out);
			return 0;
		}
		if (err != EADDRINUSE) {
			/* Not about this pair (address not local, no fds...):
			 * the next pair would fail alike, so give it back first
			 * in line and report. */
			q_push_head(p, &p->closed, i);
			p->slots[i].state = SLOT_FREE;
			break;
		}
		hold(p, &p->busy, i, SLOT_BUSY, now + PORTPOOL_BUSY_MS);
		/* RTCP was the taken one: a bound socket cannot be unbound. */
		if (rtp_bound) {
			close_fd(&rtp_fd);
			err = open_socket(p, at->sa.sa_family, &rtp_fd);
			if (err)
				break;
		}
		/* What the caller sees if this was the last pair to try. */
		err = ENOSPC;
	}
out:
	close_fd(&rtp_fd);
	close_fd(&rtcp_fd);
	return err;
}

int portpool_alloc_pair(struct portpool *p, const struct sockaddr *bind_addr, socklen_t len,
			struct portpool_pair *out)
{
	union bound at;
	uint64_t now;
	uint32_t i;
	int err;

	if (!bind_addr)
		return EINVAL;
	if (bind_addr->sa_family == AF_INET)
		err = len >= sizeof(struct sockaddr_in) ? 0 : EINVAL;
	else if (bind_addr->sa_family == AF_INET6)
		err = len >= sizeof(struct sockaddr_in6) ? 0 : EINVAL;
	else
		err = EAFNOSUPPORT;
	if (err)
		return err;
	memset(&at, 0, sizeof(at));
	len = bind_addr->sa_family == AF_INET ? sizeof(struct sockaddr_in)
					      : sizeof(struct sockaddr_in6);
	memcpy(&at, bind_addr, len);
	if (at.sa.sa_family == AF_INET)
		at.v4.sin_port = 0;
	else
		at.v6.sin6_port = 0;

	now = p->now_ms(p->arg);
	reclaim(p, &p->quarantine, now);
	reclaim(p, &p->busy, now);
	if (p->open.n + p->closed.n == 0)
		return ENOSPC;
	i = take_open(p, &at);
	if (i != NIL) {
		if (p->drain) {
			portpool_drain(p->slots[i].rtp_fd);
			portpool_drain(p->slots[i].rtcp_fd);
		}
		hand_out(p, i, out);
		return 0;
	}
	return bind_new(p, &at, len, now, out);
}

void portpool_free_pair(struct portpool *p, struct portpool_pair *pair)
{
	uint32_t i;

	if (!p || !pair || pair->rtp_port < p->base || (pair->rtp_port - p->base) % 2 != 0)
		return;
	i = (uint32_t)(pair->rtp_port - p->base) / 2;
	if (i >= p->npairs || p->slots[i].state != SLOT_IN_USE ||
	    p->slots[i].rtp_fd != pair->rtp_fd || p->slots[i].rtcp_fd != pair->rtcp_fd)
		return;
	pair->rtp_fd = pair->rtcp_fd = -1;
	pair->id = 0;
	p->in_use--;
	hold(p, &p->quarantine, i, SLOT_QUARANTINE, p->now_ms(p->arg) + p->quarantine_ms);
	/* At the share, the pair freed last is the one to close: those freed
	 * before it are reusable sooner. Closing at the head instead, at each
	 * allocation, would close every pair just before it could be reused,
	 * and each call would open sockets again. The headroom leaves a burst
	 * of allocations room without closing anything. */
	if (p->open_max != UINT32_MAX && 2 * p->nopen + share_headroom(p) > p->open_max) {
		slot_close(p, i);
		p->fd_reclaims++;
	}
}

void portpool_set_drain(struct portpool *p, bool drain)
{
	p->drain = drain;
}

void portpool_set_open_max(struct portpool *p, unsigned sockets)
{
	p->open_max = sockets;
}

unsigned portpool_free_count(const struct portpool *p)
{
	uint64_t now = p->now_ms(p->arg);

	return 2 * (p->open.n + p->closed.n + q_expired(p, &p->quarantine, now) +
		    q_expired(p, &p->busy, now));
}

unsigned portpool_total(const struct portpool *p)
{
	return 2 * p->npairs;
}

unsigned portpool_quarantined_count(const struct portpool *p)
{
	return 2 * (p->quarantine.n - q_expired(p, &p->quarantine, p->now_ms(p->arg)));
}

unsigned portpool_busy_count(const struct portpool *p)
{
	return 2 * (p->busy.n - q_expired(p, &p->busy, p->now_ms(p->arg)));
}

unsigned portpool_in_use_count(const struct portpool *p)
{
	return 2 * p->in_use;
}

unsigned portpool_open_count(const struct portpool *p)
{
	return 2 * p->nopen;
}

uint64_t portpool_fd_reclaims(const struct portpool *p)
{
	return p->fd_reclaims;
}

bool portpool_admit(const struct portpool *p, unsigned ports_needed)
{
	/* Compared in pairs: ports_needed + 1 could overflow. */
	return portpool_free_count(p) / 2 >= ports_needed / 2 + ports_needed % 2;
}
