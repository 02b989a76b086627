/* portpool.c: the media port pool (see portpool.h).
 *
 * Each pair is a slot, and each slot not in use sits in exactly one of three
 * FIFO queues linked through the slots: free, quarantine and busy. The last
 * two hold a fixed delay each and the clock never goes back, so each is sorted
 * by expiry: an allocation first moves the expired heads to the free tail,
 * then pops the free head. Every slot moves at most once per state change,
 * hence O(1) amortised, and the FIFO reuses the least recently freed pair. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "srtpbridge/portpool.h"

#define NIL UINT32_MAX

enum slot_state {
	SLOT_FREE = 0,
	SLOT_IN_USE,
	SLOT_QUARANTINE,
	SLOT_BUSY,
};

struct slot {
	uint64_t until_ms;   /* quarantine or busy: when the slot may be free again */
	int rtp_fd, rtcp_fd; /* in use: to refuse a stale or repeated free */
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
	struct queue free, quarantine, busy;
	uint32_t in_use;
	struct slot slots[];
};

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

static uint32_t q_pop_head(struct portpool *p, struct queue *q)
{
	uint32_t i = q->head;

	q->head = p->slots[i].next;
	if (q->head == NIL)
		q->tail = NIL;
	q->n--;
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

		p->slots[i].state = SLOT_FREE;
		q_push_tail(p, &p->free, i);
	}
}

static void hold(struct portpool *p, struct queue *q, uint32_t i, enum slot_state state,
		 uint64_t until)
{
	p->slots[i].state = state;
	p->slots[i].until_ms = until;
	p->slots[i].rtp_fd = -1;
	p->slots[i].rtcp_fd = -1;
	q_push_tail(p, q, i);
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
	p->arg = now_ms ? arg : NULL;
	p->free.head = p->free.tail = NIL;
	p->quarantine.head = p->quarantine.tail = NIL;
	p->busy.head = p->busy.tail = NIL;
	/* Ascending at first; after that, the order in which pairs come back. */
	for (uint32_t i = 0; i < npairs; i++)
		hold(p, &p->free, i, SLOT_FREE, 0);
	*out = p;
	return 0;
}

void portpool_destroy(struct portpool *p)
{
	free(p);
}

/* socket() for the address family, unbound. */
static int open_udp(int family, int *fd)
{
	*fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	return *fd < 0 ? errno : 0;
}

static int bind_port(int fd, struct sockaddr_storage *ss, socklen_t len, uint16_t port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
	/* No SO_REUSEADDR: with it two UDP sockets could share a port, and
	 * EADDRINUSE is how a port held by another program shows. */
	return bind(fd, (struct sockaddr *)ss, len) ? errno : 0;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

int portpool_alloc_pair(struct portpool *p, const struct sockaddr *bind_addr, socklen_t len,
			struct portpool_pair *out)
{
	struct sockaddr_storage ss;
	int rtp_fd = -1, rtcp_fd = -1;
	uint64_t now;
	uint32_t tries;
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
	len = bind_addr->sa_family == AF_INET ? sizeof(struct sockaddr_in)
					      : sizeof(struct sockaddr_in6);
	memcpy(&ss, bind_addr, len);

	now = p->now_ms(p->arg);
	reclaim(p, &p->quarantine, now);
	reclaim(p, &p->busy, now);
	if (p->free.n == 0)
		return ENOSPC;
	err = open_udp(ss.ss_family, &rtp_fd);
	if (!err)
		err = open_udp(ss.ss_family, &rtcp_fd);
	if (err)
		goto out;

	/* A pair found busy goes to the busy queue, not back to free, so the
	 * loop ends by itself; tries only makes that bound explicit. */
	for (tries = p->free.n; tries > 0 && p->free.n > 0; tries--) {
		uint32_t i = q_pop_head(p, &p->free);
		uint16_t port = (uint16_t)(p->base + 2 * i);
		bool rtp_bound;

		/* A failed bind leaves a UDP socket unbound, so the same socket
		 * tries the next port: one syscall per port held by others. */
		err = bind_port(rtp_fd, &ss, len, port);
		rtp_bound = !err;
		if (!err)
			err = bind_port(rtcp_fd, &ss, len, port + 1);
		if (!err) {
			p->slots[i].state = SLOT_IN_USE;
			p->slots[i].rtp_fd = rtp_fd;
			p->slots[i].rtcp_fd = rtcp_fd;
			p->in_use++;
			*out = (struct portpool_pair){ .rtp_fd = rtp_fd,
						       .rtcp_fd = rtcp_fd,
						       .rtp_port = port,
						       .rtcp_port = (uint16_t)(port + 1) };
			return 0;
		}
		if (err != EADDRINUSE) {
			/* Not about this pair (address not local, no fds...):
			 * the next pair would fail alike, so give it back first
			 * in line and report. */
			q_push_head(p, &p->free, i);
			p->slots[i].state = SLOT_FREE;
			break;
		}
		hold(p, &p->busy, i, SLOT_BUSY, now + PORTPOOL_BUSY_MS);
		/* RTCP was the taken one: a bound socket cannot be unbound. */
		if (rtp_bound) {
			close_fd(&rtp_fd);
			err = open_udp(ss.ss_family, &rtp_fd);
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

void portpool_free_pair(struct portpool *p, struct portpool_pair *pair)
{
	uint32_t i;

	if (!p || !pair || pair->rtp_port < p->base || (pair->rtp_port - p->base) % 2 != 0)
		return;
	i = (uint32_t)(pair->rtp_port - p->base) / 2;
	if (i >= p->npairs || p->slots[i].state != SLOT_IN_USE ||
	    p->slots[i].rtp_fd != pair->rtp_fd || p->slots[i].rtcp_fd != pair->rtcp_fd)
		return;
	close_fd(&pair->rtp_fd);
	close_fd(&pair->rtcp_fd);
	p->in_use--;
	hold(p, &p->quarantine, i, SLOT_QUARANTINE, p->now_ms(p->arg) + p->quarantine_ms);
}

unsigned portpool_free_count(const struct portpool *p)
{
	uint64_t now = p->now_ms(p->arg);

	return 2 * (p->free.n + q_expired(p, &p->quarantine, now) + q_expired(p, &p->busy, now));
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

bool portpool_admit(const struct portpool *p, unsigned ports_needed)
{
	/* Compared in pairs: ports_needed + 1 could overflow. */
	return portpool_free_count(p) / 2 >= ports_needed / 2 + ports_needed % 2;
}
