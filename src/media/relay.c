/* relay.c: the media worker and the packet path (relay.h).
 *
 * A session is made on the main thread with its sockets, then handed to the
 * worker by an "add" command; from there on only the worker touches its
 * packet state (struct wleg). Parameters change through "update" commands
 * that carry the new state, SRTP contexts included (made on the main thread:
 * srtp_create allocates and may be slow; the packet path never does). A
 * "remove" command makes the worker let go of the sockets and destroy the
 * contexts, and the session goes back to the main thread through the
 * completion queue, where its owner gets its ports back.
 *
 * The SSRC srtpbridge owns toward a secure leg (struct own) follows RFC
 * 3550 appendix A.1's tests: a sequence number more than MAX_DROPOUT ahead
 * or MAX_MISORDER behind the highest seen, or a new SSRC, is a new source,
 * and the output continues from the last packet sent: the next sequence
 * number, and a timestamp advanced by the wall-clock time since then at
 * 8 kHz (the rate of every narrowband codec an IVR speaks; a wide-band
 * stream's jump is then off in scale only, once per source change). */
#include "srtpbridge/relay.h"
#include "srtpbridge/addr.h"
#include "srtpbridge/bytes.h"
#include "srtpbridge/log.h"
#include "srtpbridge/portpool.h"
#include "srtpbridge/randpool.h"
#include "srtpbridge/rtp.h"
#include "srtpbridge/srtpctx.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <liburing.h>
#include <netinet/in.h>
#include <openssl/crypto.h>

#define LOG_MODULE   "media"

#define MAX_DROPOUT  3000
#define MAX_MISORDER 64 /* = the bits of own.sent */
#define RTP_RATE_KHZ 8
#define RELAY_BUF    (8192 + SRTPCTX_TRAILER_MAX)
#define HELD_N	     32		/* packets kept that no key of their leg took */
#define HELD_MAX     1500	/* bytes of such a packet; larger ones are not kept */
#define HELD_MS	     1000	/* how long one is worth a try with the next key */
#define BATCH	     32		/* datagrams per recvmmsg and sendmmsg */
#define LATE_MS	     50		/* a packet that waited longer in its socket is shed */
#define BEAT_MS	     20		/* a worker's heartbeat: well inside any watchdog ping */
#define MAX_EVENTS   256	/* ready sockets taken per epoll_wait */
#define CLOCK_EVERY  64		/* sockets served between two readings of the clocks */
#define FD_TABLE_MAX (1u << 18) /* descriptor numbers with a table entry, at most */
#define WORKER_SLACK 2		/* calls more than the least loaded worker's to keep sockets' own */

/* An epoch (relay_epoch) as the session keeps it: written by the main
 * thread when the key is installed, its counters by the worker. */
struct epoch_rec {
	struct relay_epoch meta; /* the main thread's; first_ms, packets, in_use, roc below */
	_Atomic uint64_t first_ms, packets;
	_Atomic bool in_use;
	_Atomic int roc;
	bool lifetime_told; /* the main thread's */
};

/* A context and the epoch it counts for. */
struct keyed {
	struct srtpctx *ctx;
	struct epoch_rec *rec;
};

enum cmd_type {
	CMD_ADD = 0,
	CMD_UPDATE,
	CMD_REMOVE,
	CMD_STOP,
};

/* What one leg of one stream becomes with an update. */
struct wparams {
	bool active, secure, mux;
	enum media_latching latching;
	struct sockaddr_storage addr[2]; /* [kind]; AF_UNSPEC: none */
	socklen_t addr_len[2];
	bool replace_in, replace_out; /* the contexts below replace the old ones */
	struct srtpctx *in, *out;     /* NULL with replace: no context any more */
	struct srtpctx *in_alt;	      /* the new peer key again, for a peer that restarts its ROC */
	struct epoch_rec *rec_in, *rec_out;
	enum rekey_roc rekey_roc;
};

struct cmd {
	enum cmd_type type;
	struct relay_session *s;
	struct wparams (*p)[RELAY_MAX_STREAMS]; /* CMD_UPDATE: [2][RELAY_MAX_STREAMS] */
	struct cmd *next;
};

struct queue {
	pthread_mutex_t mu;
	struct cmd *head, *tail;
	int efd;
};

/* What srtpbridge owns toward a secure leg. */
struct own {
	uint32_t ssrc;
	uint16_t seq_base;
	uint32_t ts_base;
	bool init;
	uint32_t in_ssrc; /* the source being renumbered */
	uint16_t in_seq;  /* its highest sequence number */
	uint16_t seq_off;
	uint32_t ts_off;
	uint16_t out_max; /* the highest sequence number sent */
	uint64_t sent;	  /* bit k: out_max - k was sent */
	uint32_t out_ts;  /* the timestamp of the last packet sent */
	uint64_t out_ms;
};

struct wleg;

/* What an epoll event of a media socket points to: the leg and kind it
 * serves now. A session's own (wleg.ref) for a socket without an id, in
 * the set for that session only; else the worker's entry for the socket's
 * number (worker.fdt), in the set for as long as id is the socket's: l is
 * NULL between sessions, and an event then takes the socket out of the set
 * unread (a late packet of the last call; or the socket now serves a call
 * on another worker). */
struct fdref {
	struct wleg *l;
	enum relay_kind kind;
	int fd;
	uint64_t id; /* worker.fdt: the socket registered under this number; 0 none */
};

/* One leg of one stream, as the worker runs it. */
struct wleg {
	struct relay_session *s;
	int leg;
	size_t i;
	int fd[2];	  /* [kind] */
	uint64_t sock_id; /* both sockets' id (relay_session_create); 0 none */
	struct fdref ref[2];
	struct fdref *at[2]; /* [kind]: what its epoll event points to; NULL not in the set */
	struct wparams p;
	struct sockaddr_storage latch[2]; /* [kind]; AF_UNSPEC: not latched */
	socklen_t latch_len[2];
	struct own own;
	/* Secure legs: the peer's newest key, the same key for a rollover
	 * counter started again (until the question is settled), the key heard
	 * before it (during the grace, or while the peer ignores the new one),
	 * and ours. */
	struct keyed in, in_alt, in_old, out;
	uint32_t ssrcs[4]; /* the peer's SSRCs authenticated lately, for ROC seeding */
	unsigned nssrcs;
};

/* The main thread's copy of what it last told the worker, to tell a change
 * of keys from a refresh (a context made again loses its rollover counter). */
struct mirror {
	bool active, secure, hold, unencrypted_srtcp;
	enum suite_id suite;
	struct sdes_key ours, peer;
};

struct worker;

/* One stream of a session, both legs side by side: a packet touches one
 * leg's state, the other's and both legs' counters, a few cache lines
 * together rather than spread over the session's pages. */
struct sstream {
	struct wleg w[2];		    /* [leg] */
	struct relay_counters ctr[2][2][2]; /* [leg][kind][dir] */
	struct mirror m[2];
	struct epochs {
		struct epoch_rec **v;
		size_t n, cap;
		unsigned next[2]; /* the last n given, [dir] */
	} ep[2];
};

struct relay_session {
	struct worker *wk; /* the media worker that runs it, for its whole life; NULL: none */
	uint64_t gen;	   /* tells a session from a later one at the same address */
	size_t n;
	_Atomic uint64_t last_rx_ms;
	void (*done)(void *arg);
	void *done_arg;
	struct relay_session *prev, *next; /* the worker's list */
	struct sstream st[];		   /* [n] */
};

/* A session of n streams, the size it needs (a call has one stream, and
 * the eight a session may have were 22 KB to zero). */
static struct relay_session *session_alloc(size_t n)
{
	struct relay_session *s = calloc(1, sizeof(*s) + n * sizeof(s->st[0]));

	if (s)
		s->n = n;
	return s;
}

/* What one batch of datagrams becomes. With epoll, a batch is read from
 * one socket and every packet accepted goes out on the other leg's socket:
 * it leaves in one sendmmsg. With io_uring, a batch is one datagram from
 * each of up to BATCH sockets, and leaves in one submission. */
struct out_batch {
	struct mmsghdr msg[BATCH];
	struct iovec iov[BATCH];
	struct relay_counters *ctr[BATCH];
	int fd[BATCH];
	unsigned n;
};

/* One media worker: a thread, its loop, its share of the sessions. The
 * loop is its own epoll_wait over the media sockets and the command
 * eventfd: libevent's dispatch (its fd map, the active queue, a callback
 * per socket) was a few percent of a packet, and the clocks are read once
 * per wake-up rather than once per socket. */
struct worker {
	struct relay *r;
	unsigned idx;
	int ep; /* epoll: the media sockets (data.ptr: their fdref), the queue's eventfd (NULL) */
	_Atomic bool uring;   /* reads and sends through ring (enum relay_io) */
	struct io_uring ring; /* the worker's, when uring */
	int res[BATCH];	      /* a submission's results, by slot */
	/* The worker's: by descriptor number below fdcap, the sockets with an
	 * id that stay in the set between sessions (struct fdref). */
	struct fdref *fdt;
	unsigned fdcap;
	pthread_t thread;
	bool started;
	bool stop;	    /* the worker's: CMD_STOP was taken */
	uint64_t now;	    /* the worker's: CLOCK_MONOTONIC ms, read at each wake-up */
	struct timespec rt; /* the worker's: CLOCK_REALTIME then, the receive stamps' clock */
	struct queue q;	    /* commands from the main thread */
	unsigned nsessions; /* the main thread's count, to share calls out */
	struct relay_session *sessions;		   /* the worker's */
	_Atomic uint64_t roc_continued, roc_reset; /* peers' ROC after a re-key, as found */
	/* recvmmsg calls or receive submissions, what they read, what was shed */
	_Atomic uint64_t batches, datagrams, late;
	/* recvmmsg's buffers, and a copy of each for unprotect to work in (the
	 * packet stays for the next try) */
	struct mmsghdr rmsg[BATCH];
	unsigned rused; /* rmsg entries the last recvmmsg filled: their lengths to reset */
	struct iovec riov[BATCH];
	struct sockaddr_storage rsrc[BATCH];
	char rctl[BATCH][CMSG_SPACE(sizeof(struct timespec))];
	uint8_t buf[BATCH][RELAY_BUF];
	uint8_t copy[BATCH][RELAY_BUF];
	struct out_batch out;
	/* Packets from a secure leg's peer that no key took: a peer that starts
	 * a new key as it sends the answer carrying it is ahead of us, and its
	 * first packets are tried again when that key is installed. */
	struct held {
		struct wleg *l; /* compared, never followed, until gen matches */
		uint64_t gen;
		uint64_t at;
		enum relay_kind kind;
		size_t len;
		struct sockaddr_storage src;
		socklen_t srclen;
		uint8_t data[HELD_MAX];
	} held[HELD_N];
	unsigned held_next;
};

struct relay {
	struct event_base *main_base;
	enum relay_io io; /* what the workers use: never AUTO */
	/* The main thread's: by descriptor number below fdcap, 1 + the worker
	 * whose set a socket with an id was last given to; 0 none. */
	uint16_t *last_worker;
	unsigned fdcap;
	struct queue to_main; /* removed sessions, from every worker */
	struct event ev_done;
	bool events;
	void (*beat)(void *arg, unsigned worker);
	void *beat_arg;
	unsigned n;
	struct worker **w;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Every counter has one writer, the worker that runs its session (the main
 * thread only reads): a relaxed load and store, without the bus lock of an
 * atomic add, which costs a few percent of a packet. */
static void add(_Atomic uint64_t *c, uint64_t v)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
			      memory_order_relaxed);
}

/* ---- queues ---- */

static int queue_init(struct queue *q)
{
	q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (q->efd < 0)
		return errno;
	pthread_mutex_init(&q->mu, NULL);
	q->head = q->tail = NULL;
	return 0;
}

static void queue_fini(struct queue *q)
{
	if (q->efd >= 0)
		close(q->efd);
	q->efd = -1;
	pthread_mutex_destroy(&q->mu);
}

/* The reader reads the eventfd before it takes the list, so only a push
 * onto an empty list needs to wake it: a call's add and first update, and a
 * burst of calls, cost one write. */
static void queue_push(struct queue *q, struct cmd *c)
{
	uint64_t one = 1;
	bool wake;

	c->next = NULL;
	pthread_mutex_lock(&q->mu);
	wake = !q->head;
	if (q->tail)
		q->tail->next = c;
	else
		q->head = c;
	q->tail = c;
	pthread_mutex_unlock(&q->mu);
	/* a full counter (never in practice) still leaves the fd readable */
	if (wake && write(q->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		LOG_ERROR(NULL, "cannot wake the media worker", LF_S("error", strerror(errno)));
}

/* Takes the whole queue, oldest first. */
static struct cmd *queue_take(struct queue *q)
{
	struct cmd *c;
	uint64_t v;

	if (read(q->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return NULL;
	pthread_mutex_lock(&q->mu);
	c = q->head;
	q->head = q->tail = NULL;
	pthread_mutex_unlock(&q->mu);
	return c;
}

/* ---- sources ---- */

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b, bool port)
{
	return addr_equal((const struct sockaddr *)a, (const struct sockaddr *)b, port);
}

/* Which of a leg's two addresses (signalled, latched) packets of kind use:
 * with rtcp-mux RTCP shares the RTP one. */
static enum relay_kind slot(const struct wleg *l, enum relay_kind kind)
{
	return l->p.mux ? RELAY_RTP : kind;
}

/* Where packets of kind go to l's peer: the latched source, else the SDP. */
static const struct sockaddr_storage *dest_of(const struct wleg *l, enum relay_kind kind,
					      socklen_t *len)
{
	enum relay_kind k = slot(l, kind);

	if (l->latch[k].ss_family != AF_UNSPEC) {
		*len = l->latch_len[k];
		return &l->latch[k];
	}
	*len = l->p.addr_len[k];
	return &l->p.addr[k];
}

/* Is src the peer of l for kind, before any check of content? */
static bool expected(const struct wleg *l, enum relay_kind kind, const struct sockaddr_storage *src)
{
	enum relay_kind k = slot(l, kind);

	if (l->latch[k].ss_family != AF_UNSPEC)
		return same_addr(&l->latch[k], src, true);
	/* learn: anywhere at the signalled IP, until the first packet latches */
	return same_addr(&l->p.addr[k], src, l->p.secure || l->p.latching != LATCH_LEARN);
}

static void latch(struct wleg *l, enum relay_kind kind, const struct sockaddr_storage *src,
		  socklen_t len)
{
	enum relay_kind k = slot(l, kind);

	l->latch[k] = *src;
	l->latch_len[k] = len;
}

/* ---- the packet path ---- */

/* A new source, or the same one starting over: the output goes on from
 * the last packet sent. */
static void own_rebase(struct own *o, const struct rtp_hdr *h, uint64_t now)
{
	uint64_t el = now > o->out_ms ? now - o->out_ms : 0;

	o->in_ssrc = h->ssrc;
	o->in_seq = h->seq;
	o->seq_off = (uint16_t)(o->out_max + 1 - h->seq);
	o->ts_off = o->out_ts + (uint32_t)(el ? el * RTP_RATE_KHZ : 1) - h->ts;
}

/* Renumbers an RTP packet for a secure leg under srtpbridge's SSRC. */
static void own_rewrite(struct own *o, uint8_t *p, const struct rtp_hdr *h, uint64_t now)
{
	uint16_t seq;
	uint32_t ts;
	int16_t back;

	if (!o->init) {
		o->init = true;
		o->in_ssrc = h->ssrc;
		o->in_seq = h->seq;
		o->seq_off = (uint16_t)(o->seq_base - h->seq);
		o->ts_off = o->ts_base - h->ts;
		o->out_max = (uint16_t)(o->seq_base - 1);
		o->sent = 0;
	} else {
		int16_t d = (int16_t)(h->seq - o->in_seq);

		if (h->ssrc != o->in_ssrc || d > MAX_DROPOUT || d < -MAX_MISORDER)
			own_rebase(o, h, now);
		else if (d > 0)
			o->in_seq = h->seq;
	}
	/* A packet that would reuse a number already sent is no reordering: the
	 * source started over a few packets back (an IVR's next prompt under the
	 * same SSRC), or it is a duplicate. Either way it goes out under a new
	 * number; sent again, it would only be the receiver's replay_fail. */
	seq = (uint16_t)(h->seq + o->seq_off);
	back = (int16_t)(o->out_max - seq);
	if (back >= 0 && (back >= MAX_MISORDER || (o->sent >> back) & 1)) {
		own_rebase(o, h, now);
		seq = (uint16_t)(h->seq + o->seq_off);
		back = -1;
	}
	ts = h->ts + o->ts_off;
	if (back < 0) {
		unsigned ahead = (uint16_t)(seq - o->out_max);

		o->sent = ahead >= 64 ? 0 : o->sent << ahead;
		o->sent |= 1;
		o->out_max = seq;
		o->out_ts = ts;
		o->out_ms = now;
	} else {
		o->sent |= 1ull << back;
	}
	rtp_set_seq(p, seq);
	rtp_set_ts(p, ts);
	rtp_set_ssrc(p, o->ssrc);
}

static void count_result(struct relay_counters *c, enum srtpctx_result r)
{
	switch (r) {
	case SRTPCTX_OK:
		break;
	case SRTPCTX_AUTH_FAIL:
		add(&c->auth_fail, 1);
		break;
	case SRTPCTX_REPLAY_FAIL:
		add(&c->replay_fail, 1);
		break;
	case SRTPCTX_CANT_CHECK:
		add(&c->cant_check, 1);
		break;
	default:
		add(&c->errors, 1);
		break;
	}
}

/* ---- keys ---- */

static void heard(struct keyed *k, uint64_t now)
{
	if (!k->rec)
		return;
	/* one writer, as for the counters: no compare-and-swap */
	if (!atomic_load_explicit(&k->rec->first_ms, memory_order_relaxed))
		atomic_store_explicit(&k->rec->first_ms, now, memory_order_relaxed);
	add(&k->rec->packets, 1);
}

/* Lets go of k's context; its epoch is no longer in use unless told. */
static void drop(struct keyed *k, bool epoch_ends)
{
	srtpctx_destroy(k->ctx);
	if (k->rec && epoch_ends)
		atomic_store_explicit(&k->rec->in_use, false, memory_order_relaxed);
	k->ctx = NULL;
	k->rec = NULL;
}

static uint32_t ssrc_of(const uint8_t *p)
{
	return be32_get(p + 8);
}

static bool known_ssrc(const struct wleg *l, uint32_t ssrc)
{
	for (unsigned i = 0; i < l->nssrcs; i++)
		if (l->ssrcs[i] == ssrc)
			return true;
	return false;
}

static void note_ssrc(struct wleg *l, const uint8_t *p)
{
	uint32_t ssrc = ssrc_of(p);

	if (known_ssrc(l, ssrc))
		return;
	if (l->nssrcs == 4)
		memmove(l->ssrcs, l->ssrcs + 1, 3 * sizeof(l->ssrcs[0]));
	else
		l->nssrcs++;
	l->ssrcs[l->nssrcs - 1] = ssrc;
}

static enum srtpctx_result try_unprotect(struct srtpctx *c, enum relay_kind kind, uint8_t *buf,
					 size_t *len)
{
	return kind == RELAY_RTP ? srtpctx_unprotect_rtp(c, buf, len)
				 : srtpctx_unprotect_rtcp(c, buf, len);
}

/* One try on a copy of buf: the original stays for the next. */
static enum srtpctx_result try_copy(struct srtpctx *c, enum relay_kind kind, const uint8_t *buf,
				    size_t len, uint8_t *copy, size_t *n)
{
	memcpy(copy, buf, len);
	*n = len;
	return try_unprotect(c, kind, copy, n);
}

/* A packet from a secure leg's peer, under whichever of its keys: the
 * newest first, then the same key with the rollover counter started again,
 * then the key heard before (a late or reordered packet of the old key, or
 * a peer that ignored the new one). Each try works on a copy, since a failed
 * unprotect leaves its buffer undefined: the packet itself stays, for the
 * next try or to be held (a memcpy of a packet costs a few percent of its
 * decryption). *buf then points at the copy that authenticated. The first
 * failure's result is the packet's. */
static enum srtpctx_result unprotect_in(struct wleg *x, enum relay_kind kind, uint8_t **buf,
					size_t *len, uint64_t now, uint8_t *copy)
{
	enum srtpctx_result first, old = SRTPCTX_AUTH_FAIL;
	size_t n;

	/* the old key's grace runs from the new key's first packet, whether
	 * or not anything arrived since */
	if (x->in_old.ctx && x->in.rec) {
		uint64_t since = atomic_load_explicit(&x->in.rec->first_ms, memory_order_relaxed);

		if (since && now - since >= RELAY_REKEY_GRACE_MS)
			drop(&x->in_old, true);
	}
	first = try_copy(x->in.ctx, kind, *buf, *len, copy, &n);
	if (first == SRTPCTX_OK) {
		/* RTCP has no rollover counter: only RTP of a stream that was
		 * seeded settles the question (a new SSRC starts at 0 anyway) */
		if (kind == RELAY_RTP && x->in_alt.ctx && known_ssrc(x, ssrc_of(copy))) {
			drop(&x->in_alt, false);
			atomic_store_explicit(&x->in.rec->roc, RELAY_ROC_CONTINUED,
					      memory_order_relaxed);
			add(&x->s->wk->roc_continued, 1);
		}
		heard(&x->in, now);
	} else if (kind == RELAY_RTP && x->in_alt.ctx && first == SRTPCTX_AUTH_FAIL &&
		   try_copy(x->in_alt.ctx, kind, *buf, *len, copy, &n) == SRTPCTX_OK) {
		/* only an authentication failure asks the ROC question: a replay
		 * under the new key is one whatever the counter (and the twin,
		 * without history, would take it) */
		srtpctx_destroy(x->in.ctx);
		x->in.ctx = x->in_alt.ctx;
		x->in_alt.ctx = NULL;
		x->in_alt.rec = NULL;
		atomic_store_explicit(&x->in.rec->roc, RELAY_ROC_RESET, memory_order_relaxed);
		add(&x->s->wk->roc_reset, 1);
		heard(&x->in, now);
	} else if (x->in_old.ctx &&
		   (old = try_copy(x->in_old.ctx, kind, *buf, *len, copy, &n)) == SRTPCTX_OK) {
		heard(&x->in_old, now);
	} else {
		/* a duplicate of an old-key packet is a replay, not an attack */
		return old == SRTPCTX_REPLAY_FAIL ? old : first;
	}
	if (kind == RELAY_RTP)
		note_ssrc(x, copy);
	*buf = copy;
	*len = n;
	return SRTPCTX_OK;
}

/* ---- io_uring: operations that complete inside their submission ---- */

/* Submits the n operations prepared in slots 0..n-1 (user_data: the slot)
 * and puts their results in w->res. Each is MSG_DONTWAIT, so the kernel
 * completes it as it is submitted, and its buffers are ours again on
 * return: should one not have completed, this waits for it. When the ring
 * fails, the worker goes on with epoll from its next batch (counted as
 * failed operations here, logged once). */
static void uring_run(struct worker *w, unsigned n)
{
	unsigned got = 0;
	int ret;

	do
		ret = io_uring_submit(&w->ring);
	while (ret == -EINTR || ret == -EAGAIN || ret == -EBUSY);
	while (ret == (int)n && got < n) {
		struct io_uring_cqe *cqe;
		int err = io_uring_peek_cqe(&w->ring, &cqe);

		while (err == -EAGAIN || err == -EINTR)
			err = io_uring_wait_cqe(&w->ring, &cqe);
		if (err) {
			ret = err;
			break;
		}
		if (cqe->user_data < n)
			w->res[cqe->user_data] = cqe->res;
		io_uring_cqe_seen(&w->ring, cqe);
		got++;
	}
	if (got < n) {
		for (unsigned i = 0; i < n; i++)
			w->res[i] = -EIO;
		w->uring = false;
		LOG_ERROR(NULL, "io_uring failed: the media worker goes on with epoll",
			  LF_U("worker", w->idx), LF_S("error", strerror(ret < 0 ? -ret : EIO)));
	}
}

static struct io_uring_sqe *uring_sqe(struct worker *w, unsigned slot)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring); /* room for BATCH: never NULL */

	sqe->user_data = slot;
	return sqe;
}

/* ---- sending: one sendmmsg or submission a batch ---- */

static void count_sent(struct relay_counters *c, int res, size_t len, uint64_t now)
{
	if (res < 0) {
		add(&c->errors, 1);
		return;
	}
	add(&c->packets, 1);
	add(&c->bytes, len);
	atomic_store_explicit(&c->last_ms, now, memory_order_relaxed);
}

static void out_flush(struct worker *w)
{
	struct out_batch *b = &w->out;
	uint64_t now = w->now;
	unsigned i = 0;

	if (w->uring && b->n) {
		for (i = 0; i < b->n; i++)
			io_uring_prep_sendmsg(uring_sqe(w, i), b->fd[i], &b->msg[i].msg_hdr,
					      MSG_DONTWAIT);
		uring_run(w, b->n);
		for (i = 0; i < b->n; i++)
			count_sent(b->ctr[i], w->res[i], b->iov[i].iov_len, now);
		b->n = 0;
		return;
	}
	while (i < b->n) {
		int sent = sendmmsg(b->fd[i], &b->msg[i], b->n - i, MSG_DONTWAIT);

		if (sent <= 0) { /* the first one failed: counted, the rest tried */
			count_sent(b->ctr[i], -1, 0, now);
			i++;
			continue;
		}
		for (int k = 0; k < sent; k++, i++)
			count_sent(b->ctr[i], 0, b->iov[i].iov_len, now);
	}
	b->n = 0;
}

/* Queues buf (alive until the flush) for fd; with epoll, a batch holds one
 * socket. */
static void out_add(struct worker *w, int fd, uint8_t *buf, size_t len,
		    const struct sockaddr_storage *to, socklen_t tolen, struct relay_counters *ctr)
{
	struct out_batch *b = &w->out;
	struct mmsghdr *m;

	if (b->n && ((!w->uring && b->fd[0] != fd) || b->n == BATCH))
		out_flush(w);
	b->fd[b->n] = fd;
	b->iov[b->n] = (struct iovec){ buf, len };
	b->ctr[b->n] = ctr;
	m = &b->msg[b->n++];
	memset(m, 0, sizeof(*m));
	m->msg_hdr.msg_name = (void *)to;
	m->msg_hdr.msg_namelen = tolen;
	m->msg_hdr.msg_iov = &b->iov[b->n - 1];
	m->msg_hdr.msg_iovlen = 1;
}

/* A packet accepted from x's peer, in buf[0..len) with room to RELAY_BUF,
 * goes to the other leg's peer (queued in the worker's batch). */
static void forward(struct wleg *x, enum relay_kind kind, uint8_t *buf, size_t len, uint64_t now)
{
	struct relay_session *s = x->s;
	struct wleg *y = &s->st[x->i].w[!x->leg];
	struct relay_counters *out = &s->st[y->i].ctr[y->leg][kind][RELAY_OUT];
	const struct sockaddr_storage *to;
	socklen_t tolen = 0;
	enum srtpctx_result r = SRTPCTX_OK;
	struct rtp_hdr h;

	if (!y->p.active) {
		add(&out->errors, 1);
		return;
	}
	to = dest_of(y, kind, &tolen);
	if (to->ss_family == AF_UNSPEC)
		return; /* the peer signalled no address (hold with 0.0.0.0, port 0) */
	if (kind == RELAY_RTP) {
		if (rtp_parse(buf, len, &h)) {
			add(&out->errors, 1);
			return;
		}
		if (y->p.secure) {
			own_rewrite(&y->own, buf, &h, now);
			r = srtpctx_protect_rtp(y->out.ctx, buf, &len, RELAY_BUF);
		}
	} else {
		if (rtcp_check(buf, len)) {
			add(&out->errors, 1);
			return;
		}
		/* the secure peer's reports are about our SSRC: to the plain
		 * peer they speak of its own */
		if (x->p.secure && !y->p.secure && x->own.init)
			rtcp_map_source_ssrc(buf, len, x->own.ssrc, x->own.in_ssrc);
		if (y->p.secure) {
			rtcp_set_sender_ssrc(buf, len, y->own.ssrc);
			r = srtpctx_protect_rtcp(y->out.ctx, buf, &len, RELAY_BUF);
		}
	}
	if (r != SRTPCTX_OK) {
		count_result(out, r);
		return;
	}
	if (y->p.secure)
		heard(&y->out, now);
	out_add(s->wk, y->fd[slot(y, kind)], buf, len, to, tolen, out);
}

/* Keeps a packet no key took, for the key that may come next. */
static void hold(struct wleg *x, enum relay_kind kind, const uint8_t *buf, size_t len,
		 const struct sockaddr_storage *src, socklen_t srclen, uint64_t now)
{
	struct worker *w = x->s->wk;
	struct held *h;

	if (!w || len > HELD_MAX)
		return;
	h = &w->held[w->held_next++ % HELD_N];
	h->l = x;
	h->gen = x->s->gen;
	h->at = now;
	h->kind = kind;
	h->len = len;
	h->src = *src;
	h->srclen = srclen;
	memcpy(h->data, buf, len);
}

/* Returns whether the packet was taken (and relayed, if it could be). A
 * retry is not held again. */
static bool receive(struct wleg *x, enum relay_kind kind, uint8_t *buf, size_t len,
		    const struct sockaddr_storage *src, socklen_t srclen, uint64_t now, bool retry,
		    uint8_t *copy)
{
	struct relay_session *s = x->s;
	struct relay_counters *in;
	enum srtpctx_result r;
	bool exp;

	if (kind == RELAY_RTP && x->p.mux && rtp_is_rtcp(buf, len))
		kind = RELAY_RTCP;
	in = &s->st[x->i].ctr[x->leg][kind][RELAY_IN];
	if (!x->p.active) {
		add(&in->errors, 1); /* before the answer, or a stream declined */
		return false;
	}
	exp = expected(x, kind, src);
	if (x->p.secure) {
		/* anyone may try; only a packet that authenticates counts, or
		 * moves the latch (symmetric RTP through NAT) */
		r = unprotect_in(x, kind, &buf, &len, now, copy);
		if (r != SRTPCTX_OK) {
			if (!exp) {
				add(&in->unexpected_source, 1);
			} else if (!retry) {
				count_result(in, r);
				if (r == SRTPCTX_AUTH_FAIL)
					hold(x, kind, buf, len, src, srclen, now);
			}
			return false;
		}
		if (!exp || x->latch[slot(x, kind)].ss_family == AF_UNSPEC)
			latch(x, kind, src, srclen);
	} else {
		if (!exp) {
			add(&in->unexpected_source, 1);
			return false;
		}
		if (x->p.latching == LATCH_LEARN && x->latch[slot(x, kind)].ss_family == AF_UNSPEC)
			latch(x, kind, src, srclen);
	}
	add(&in->packets, 1);
	add(&in->bytes, len);
	atomic_store_explicit(&in->last_ms, now, memory_order_relaxed);
	atomic_store_explicit(&s->last_rx_ms, now, memory_order_relaxed);
	forward(x, kind, buf, len, now);
	return true;
}

/* A new key of x's peer is in: the packets it sent under it before we had
 * it get their second chance. Out of order by then, but not lost. */
static void retry_held(struct wleg *x)
{
	struct worker *w = x->s->wk;
	uint64_t now = now_ms();

	for (unsigned i = 0; w && i < HELD_N; i++) {
		struct held *h = &w->held[i];

		if (h->l != x || h->gen != x->s->gen)
			continue;
		h->l = NULL;
		if (now - h->at > HELD_MS)
			continue;
		memcpy(w->buf[0], h->data, h->len);
		if (receive(x, h->kind, w->buf[0], h->len, &h->src, h->srclen, now, true,
			    w->copy[0])) {
			struct relay_counters *in = &x->s->st[x->i].ctr[x->leg][h->kind][RELAY_IN];

			/* not a failure after all: the peer was only ahead of
			 * us (one writer: the worker, so no lost update) */
			add(&in->recovered, 1);
			add(&in->auth_fail, (uint64_t)-1);
		}
		out_flush(w); /* buf[0] is the next one's */
	}
}

/* How long the datagram of m waited in its socket, from the kernel's
 * receive stamp (SO_TIMESTAMPNS); 0 when it has none. */
static uint64_t waited_ms(const struct msghdr *m, const struct timespec *now)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR((struct msghdr *)m); c;
	     c = CMSG_NXTHDR((struct msghdr *)m, c)) {
		struct timespec ts;
		int64_t ns;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_TIMESTAMPNS)
			continue;
		memcpy(&ts, CMSG_DATA(c), sizeof(ts));
		ns = (int64_t)(now->tv_sec - ts.tv_sec) * 1000000000 + (now->tv_nsec - ts.tv_nsec);
		return ns > 0 ? (uint64_t)ns / 1000000u : 0;
	}
	return 0;
}

/* The kernel wrote the lengths of the slots it filled: back to full. */
static void slots_reset(struct worker *w)
{
	for (unsigned i = 0; i < w->rused; i++) {
		w->rmsg[i].msg_hdr.msg_namelen = sizeof(w->rsrc[i]);
		w->rmsg[i].msg_hdr.msg_controllen = sizeof(w->rctl[i]);
	}
	w->rused = 0;
}

/* The datagram of slot i, len bytes, read from ref's socket. Under overload
 * a packet that waited in its socket longer than LATE_MS is shed and counted
 * rather than relayed late: the queue is the kernel's, and an audio packet
 * that late is worse than none (rtpengine's queues reach 100 ms and more). */
static void on_datagram(struct worker *w, const struct fdref *ref, unsigned i, size_t len)
{
	struct wleg *x = ref->l;
	const struct msghdr *h = &w->rmsg[i].msg_hdr;

	if (waited_ms(h, &w->rt) > LATE_MS) {
		add(&x->s->st[x->i].ctr[x->leg][ref->kind][RELAY_IN].late, 1);
		add(&w->late, 1);
		return;
	}
	receive(x, ref->kind, w->buf[i], len, &w->rsrc[i], h->msg_namelen, w->now, false,
		w->copy[i]);
}

/* epoll: up to two batches a wake-up (then the loop serves the other
 * sockets), each read with one recvmmsg and sent with one sendmmsg. */
static void on_readable(struct worker *w, struct fdref *ref)
{
	int fd = ref->l->fd[ref->kind];

	for (int round = 0; round < 2; round++) {
		int n;

		slots_reset(w);
		n = recvmmsg(fd, w->rmsg, BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			break; /* EAGAIN, or an ICMP error of an earlier send */
		w->rused = (unsigned)n;
		add(&w->batches, 1);
		add(&w->datagrams, (uint64_t)n);
		for (int i = 0; i < n; i++)
			on_datagram(w, ref, (unsigned)i, w->rmsg[i].msg_len);
		out_flush(w);
		if (n < BATCH)
			break;
	}
}

/* io_uring: one datagram from each of the n ready sockets of refs, read
 * with one submission, sent with another. A socket with more waiting is
 * ready again at the next epoll_wait (level-triggered), after the others
 * have had their turn. */
static void on_readable_uring(struct worker *w, struct fdref *const *refs, unsigned n)
{
	unsigned got = 0;

	if (!w->uring) { /* the ring failed earlier in this batch */
		for (unsigned i = 0; i < n; i++)
			on_readable(w, refs[i]);
		return;
	}
	slots_reset(w);
	for (unsigned i = 0; i < n; i++)
		io_uring_prep_recvmsg(uring_sqe(w, i), refs[i]->l->fd[refs[i]->kind],
				      &w->rmsg[i].msg_hdr, MSG_DONTWAIT);
	w->rused = n;
	uring_run(w, n);
	add(&w->batches, 1);
	for (unsigned i = 0; i < n; i++) {
		if (w->res[i] < 0)
			continue; /* EAGAIN, or an ICMP error of an earlier send */
		got++;
		on_datagram(w, refs[i], i, (size_t)w->res[i]);
	}
	add(&w->datagrams, got);
	out_flush(w);
}

/* ---- the worker's commands ---- */

static void wleg_stop(struct wleg *l)
{
	for (int k = 0; k < 2; k++) {
		struct fdref *at = l->at[k];

		/* before the session goes back to the main thread: no later
		 * epoll_wait returns a pointer into it */
		if (at == &l->ref[k])
			(void)epoll_ctl(l->s->wk->ep, EPOLL_CTL_DEL, l->fd[k], NULL);
		else if (at)
			at->l = NULL; /* stays in the set for the socket's next call */
		l->at[k] = NULL;
	}
	drop(&l->in, true);
	drop(&l->in_alt, false);
	drop(&l->in_old, true);
	drop(&l->out, true);
}

/* A new peer key (or none: the leg turned plain). The key last heard
 * becomes the old one; the new one gets a stream for each SSRC heard,
 * seeded with the rollover counter the old key reached (a new context
 * would start at 0 and fail 2^16 packets into a call), and a twin with no
 * such stream in case the peer starts its counter again. */
static void rekey_in(struct wleg *l, struct wparams *np)
{
	struct epoch_rec *rec = l->in.rec;

	drop(&l->in_alt, false);
	if (!np->in) {
		drop(&l->in, true);
		drop(&l->in_old, true);
		srtpctx_destroy(np->in_alt);
	} else {
		if (rec && atomic_load_explicit(&rec->first_ms, memory_order_relaxed)) {
			drop(&l->in_old, true);
			l->in_old = l->in; /* heard: it stays for the grace */
		} else {
			drop(&l->in, true); /* never heard: the old one stays */
		}
		l->in = (struct keyed){ np->in, np->rec_in };
		l->in_alt = (struct keyed){ np->in_alt, np->rec_in };
		for (unsigned i = 0; l->in_old.ctx && i < l->nssrcs; i++) {
			uint32_t roc;

			if (srtpctx_get_roc(l->in_old.ctx, l->ssrcs[i], &roc) == 0)
				srtpctx_add_stream(l->in.ctx, l->ssrcs[i], roc);
		}
		if (!l->in_old.ctx || !l->nssrcs) /* no history: ROC 0 is all there is */
			drop(&l->in_alt, false);
	}
	np->in = np->in_alt = NULL;
}

/* A new key of ours: rekey_roc says whether our stream goes on with its
 * rollover counter (RFC 3711 3.3.1) or starts it again. */
static void rekey_out(struct wleg *l, struct wparams *np)
{
	uint32_t roc = 0;

	if (np->out && l->out.ctx && l->own.init) {
		if (np->rekey_roc == REKEY_ROC_KEEP)
			srtpctx_get_roc(l->out.ctx, l->own.ssrc, &roc);
		srtpctx_add_stream(np->out, l->own.ssrc, roc);
	}
	drop(&l->out, true);
	l->out = (struct keyed){ np->out, np->rec_out };
	np->out = NULL;
}

static void apply(struct wleg *l, struct wparams *np)
{
	struct wparams *p = &l->p;

	for (int k = 0; k < 2; k++)
		if (!same_addr(&p->addr[k], &np->addr[k], true) || p->secure != np->secure) {
			/* a new address (a transfer, a new media server): learn again */
			memset(&l->latch[k], 0, sizeof(l->latch[k]));
			l->latch_len[k] = 0;
		}
	if (np->replace_in)
		rekey_in(l, np);
	if (np->replace_out)
		rekey_out(l, np);
	p->active = np->active && (!np->secure || (l->in.ctx && l->out.ctx));
	p->secure = np->secure;
	p->mux = np->mux;
	p->latching = np->latching;
	memcpy(p->addr, np->addr, sizeof(p->addr));
	memcpy(p->addr_len, np->addr_len, sizeof(p->addr_len));
}

/* Puts fd in w's set pointing to ref; false when the kernel refuses (no
 * memory, the fd closed). A socket still registered (it never left) gets
 * the new pointer. */
static bool watch(struct worker *w, int fd, struct fdref *ref)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = ref };

	return epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) == 0 ||
	       (errno == EEXIST && epoll_ctl(w->ep, EPOLL_CTL_MOD, fd, &ev) == 0);
}

/* Leg l's socket of kind k into w's set: with an id, through the worker's
 * entry for its number, registered only when not there already (four
 * epoll_ctl a call were ~4 us of its setup, their removal as much).
 * A socket registered anew is emptied first of what reached it while no
 * session had it; one still registered has had nothing since its last
 * session (anything would have been reported and taken it out), so the
 * port pool need not empty what it hands out (portpool_set_drain). */
static void watch_leg(struct worker *w, struct wleg *l, int k)
{
	int fd = l->fd[k];
	struct fdref *e;

	if (fd < 0)
		return;
	if (!l->sock_id || (unsigned)fd >= w->fdcap) {
		portpool_drain(fd);
		l->ref[k] = (struct fdref){ .l = l, .kind = (enum relay_kind)k, .fd = fd };
		l->at[k] = watch(w, fd, &l->ref[k]) ? &l->ref[k] : NULL;
		return;
	}
	e = &w->fdt[fd];
	if (e->id != l->sock_id) {
		/* never here, or taken out, or the number of a socket since
		 * closed (which the kernel took out of the set itself) */
		portpool_drain(fd);
		e->id = watch(w, fd, e) ? l->sock_id : 0;
		e->fd = fd;
	}
	if (!e->id) {
		l->at[k] = NULL;
		return;
	}
	e->l = l;
	e->kind = (enum relay_kind)k;
	l->at[k] = e;
}

static void session_add(struct worker *w, struct relay_session *s)
{
	s->next = w->sessions;
	if (w->sessions)
		w->sessions->prev = s;
	w->sessions = s;
	for (int leg = 0; leg < 2; leg++)
		for (size_t i = 0; i < s->n; i++)
			for (int k = 0; k < 2; k++)
				watch_leg(w, &s->st[i].w[leg], k);
}

/* An event of a socket between sessions: out of the set, unread. Whatever
 * waits in it is the pool's to drain when it hands the socket out again. */
static void unwatch_idle(struct worker *w, struct fdref *e)
{
	(void)epoll_ctl(w->ep, EPOLL_CTL_DEL, e->fd, NULL);
	e->id = 0;
}

static void session_remove(struct worker *w, struct relay_session *s, struct cmd *c)
{
	for (int leg = 0; leg < 2; leg++)
		for (size_t i = 0; i < s->n; i++)
			wleg_stop(&s->st[i].w[leg]);
	if (s->prev)
		s->prev->next = s->next;
	else if (w->sessions == s)
		w->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
	queue_push(&w->r->to_main, c); /* the main thread finishes it */
}

static void free_params(struct wparams (*p)[RELAY_MAX_STREAMS])
{
	if (!p)
		return;
	for (int leg = 0; leg < 2; leg++)
		for (size_t i = 0; i < RELAY_MAX_STREAMS; i++) {
			srtpctx_destroy(p[leg][i].in);
			srtpctx_destroy(p[leg][i].in_alt);
			srtpctx_destroy(p[leg][i].out);
		}
	free(p);
}

static void on_cmd(struct worker *w)
{
	struct cmd *c = queue_take(&w->q), *next;

	for (; c; c = next) {
		next = c->next;
		switch (c->type) {
		case CMD_ADD:
			session_add(w, c->s);
			free(c);
			break;
		case CMD_UPDATE:
			for (int leg = 0; leg < 2; leg++)
				for (size_t i = 0; i < c->s->n; i++)
					apply(&c->s->st[i].w[leg], &c->p[leg][i]);
			/* both legs as they are now: what was held may go through */
			for (int leg = 0; leg < 2; leg++)
				for (size_t i = 0; i < c->s->n; i++)
					if (c->p[leg][i].replace_in && c->s->st[i].w[leg].in.ctx &&
					    c->s->st[i].w[leg].p.active)
						retry_held(&c->s->st[i].w[leg]);
			free_params(c->p);
			free(c);
			break;
		case CMD_REMOVE:
			session_remove(w, c->s, c);
			break;
		case CMD_STOP:
			while (w->sessions) {
				struct cmd *rm = calloc(1, sizeof(*rm));

				if (!rm)
					break; /* the main thread finishes what is left */
				rm->type = CMD_REMOVE;
				rm->s = w->sessions;
				session_remove(w, w->sessions, rm);
			}
			free(c);
			w->stop = true;
			break;
		}
	}
}

static void read_clocks(struct worker *w)
{
	w->now = now_ms();
	clock_gettime(CLOCK_REALTIME, &w->rt);
}

/* The worker's loop. Commands wait for the end of a batch of ready
 * sockets: a removal there lets go of a session whose sockets may still
 * be further down the batch. The heart beats (every BEAT_MS) only while
 * the loop turns: the daemon's watchdog is fed only while every worker's
 * does (daemon.h). */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct epoll_event evs[MAX_EVENTS];
	uint64_t next_beat;

	read_clocks(w);
	next_beat = w->now + BEAT_MS;
	while (!w->stop) {
		int timeout = next_beat > w->now ? (int)(next_beat - w->now) : 0;
		int n = epoll_wait(w->ep, evs, MAX_EVENTS, timeout);
		struct fdref *ready[BATCH];
		unsigned nready = 0;
		bool cmd = false;

		read_clocks(w);
		for (int i = 0; i < n; i++) {
			struct fdref *ref = evs[i].data.ptr;

			if (!ref) {
				cmd = true;
				continue;
			}
			if (i && i % CLOCK_EVERY == 0)
				read_clocks(w);
			if (!ref->l) {
				unwatch_idle(w, ref);
			} else if (!w->uring) {
				on_readable(w, ref);
			} else {
				ready[nready++] = ref;
				if (nready == BATCH) {
					on_readable_uring(w, ready, nready);
					nready = 0;
				}
			}
		}
		if (nready)
			on_readable_uring(w, ready, nready);
		if (cmd)
			on_cmd(w);
		if (w->now >= next_beat) {
			if (w->r->beat)
				w->r->beat(w->r->beat_arg, w->idx);
			next_beat = w->now + BEAT_MS;
		}
	}
	return NULL;
}

/* ---- the main thread ---- */

static void finish(struct relay_session *s);

static void on_done(evutil_socket_t fd, short what, void *arg)
{
	struct relay *r = arg;
	struct cmd *c = queue_take(&r->to_main), *next;

	for (; c; c = next) {
		next = c->next;
		finish(c->s);
		free(c);
	}
}

/* Stops the thread; the sessions it let go of wait in the relay's to_main
 * until on_done, which still needs the worker (its count). */
static void worker_stop(struct worker *w)
{
	if (!w)
		return;
	if (w->started) {
		struct cmd *c = calloc(1, sizeof(*c));

		if (c) {
			c->type = CMD_STOP;
			queue_push(&w->q, c);
			pthread_join(w->thread, NULL);
		} else {
			pthread_cancel(w->thread); /* no memory for a polite stop */
			pthread_join(w->thread, NULL);
		}
	}
	w->started = false;
	if (w->ep >= 0)
		on_cmd(w); /* commands posted after the stop: finish them here */
}

static void worker_destroy(struct worker *w)
{
	if (!w)
		return;
	worker_stop(w);
	if (w->ep >= 0)
		close(w->ep);
	if (w->ring.ring_fd >= 0)
		io_uring_queue_exit(&w->ring);
	queue_fini(&w->q);
	free(w->fdt);
	free(w);
}

/* A ring for BATCH operations at a time, or the errno why not. SUBMIT_ALL
 * (5.18): an operation that fails its preparation must not leave the
 * rest of a batch in the queue. */
static int uring_init(struct io_uring *ring)
{
	struct io_uring_params p = { .flags = IORING_SETUP_SUBMIT_ALL };
	struct io_uring_probe *probe;
	int ret = io_uring_queue_init_params(BATCH, ring, &p);

	if (ret < 0) {
		ring->ring_fd = -1;
		return -ret;
	}
	probe = io_uring_get_probe_ring(ring);
	if (!probe || !io_uring_opcode_supported(probe, IORING_OP_RECVMSG) ||
	    !io_uring_opcode_supported(probe, IORING_OP_SENDMSG))
		ret = -EINVAL;
	io_uring_free_probe(probe);
	if (ret < 0) {
		io_uring_queue_exit(ring);
		ring->ring_fd = -1;
		return -ret;
	}
	return 0;
}

static int worker_create(struct worker **out, struct relay *r, unsigned idx)
{
	struct worker *w = calloc(1, sizeof(*w));
	int err;

	if (!w)
		return ENOMEM;
	w->r = r;
	w->idx = idx;
	w->q.efd = -1;
	w->ep = -1;
	w->ring.ring_fd = -1;
	if (r->io == RELAY_IO_URING) {
		err = uring_init(&w->ring);
		if (err) {
			worker_destroy(w);
			return err;
		}
		w->uring = true;
	}
	for (int i = 0; i < BATCH; i++) { /* recvmmsg's slots, once */
		struct msghdr *h = &w->rmsg[i].msg_hdr;

		/* room after the packet for the trailer a protect adds */
		w->riov[i] = (struct iovec){ w->buf[i], RELAY_BUF - SRTPCTX_TRAILER_MAX };
		h->msg_name = &w->rsrc[i];
		h->msg_iov = &w->riov[i];
		h->msg_iovlen = 1;
		h->msg_control = w->rctl[i];
	}
	w->rused = BATCH;
	/* untouched pages until a number is used: 24 bytes a socket */
	w->fdt = calloc(r->fdcap, sizeof(*w->fdt));
	w->fdcap = w->fdt ? r->fdcap : 0;
	err = queue_init(&w->q);
	if (!err) {
		w->ep = epoll_create1(EPOLL_CLOEXEC);
		if (w->ep < 0)
			err = errno;
	}
	if (!err) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

		if (epoll_ctl(w->ep, EPOLL_CTL_ADD, w->q.efd, &ev))
			err = errno;
	}
	if (!err) {
		err = pthread_create(&w->thread, NULL, worker_main, w);
		w->started = err == 0;
	}
	if (err) {
		worker_destroy(w);
		return err;
	}
	*out = w;
	return 0;
}

/* Descriptor numbers the per-number tables cover: the process's limit (the
 * service raises it for its sockets), within reason. Sockets above it are
 * registered per session, as sockets without an id are. */
static unsigned fd_capacity(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur > FD_TABLE_MAX)
		return FD_TABLE_MAX;
	return (unsigned)rl.rlim_cur;
}

int relay_create(struct relay **out, struct event_base *main_base, unsigned nworkers,
		 enum relay_io io, void (*beat)(void *arg, unsigned worker), void *beat_arg)
{
	struct relay *r = calloc(1, sizeof(*r));
	int err;

	if (!r)
		return ENOMEM;
	if (nworkers == 0)
		nworkers = 1;
	r->main_base = main_base;
	/* auto: io_uring when a ring can be had (the workers' own test, once) */
	r->io = io != RELAY_IO_AUTO		 ? io
		: relay_io_check(RELAY_IO_URING) ? RELAY_IO_EPOLL
						 : RELAY_IO_URING;
	r->fdcap = fd_capacity();
	r->last_worker = calloc(r->fdcap, sizeof(*r->last_worker));
	if (!r->last_worker)
		r->fdcap = 0;
	r->beat = beat;
	r->beat_arg = beat_arg;
	r->to_main.efd = -1;
	r->w = calloc(nworkers, sizeof(*r->w));
	err = r->w ? queue_init(&r->to_main) : ENOMEM;
	if (!err) {
		event_assign(&r->ev_done, main_base, r->to_main.efd, EV_READ | EV_PERSIST, on_done,
			     r);
		r->events = true;
		if (event_add(&r->ev_done, NULL))
			err = ENOMEM;
	}
	for (unsigned i = 0; !err && i < nworkers; i++) {
		err = worker_create(&r->w[i], r, i);
		if (!err)
			r->n++;
	}
	if (err) {
		relay_destroy(r);
		return err;
	}
	*out = r;
	return 0;
}

unsigned relay_workers(const struct relay *r)
{
	return r ? r->n : 0;
}

int relay_io_check(enum relay_io io)
{
	struct io_uring ring;
	int err;

	if (io != RELAY_IO_URING)
		return 0;
	err = uring_init(&ring);
	if (!err)
		io_uring_queue_exit(&ring);
	return err;
}

enum relay_io relay_io_used(const struct relay *r)
{
	return r ? r->io : RELAY_IO_EPOLL;
}

const char *relay_io_name(enum relay_io io)
{
	return io == RELAY_IO_URING ? "io_uring" : io == RELAY_IO_EPOLL ? "epoll" : "auto";
}

void relay_destroy(struct relay *r)
{
	if (!r)
		return;
	for (unsigned i = 0; i < r->n; i++)
		worker_stop(r->w[i]); /* its removed sessions wait in to_main */
	if (r->events) {
		on_done(-1, 0, r);
		event_del(&r->ev_done);
	}
	for (unsigned i = 0; i < r->n; i++)
		worker_destroy(r->w[i]);
	queue_fini(&r->to_main);
	free(r->last_worker);
	free(r->w);
	free(r);
}

/* The worker with the fewest calls (calls are alike enough), unless the
 * worker that last ran the call's first socket has at most WORKER_SLACK
 * more: its set holds the sockets already. */
static struct worker *pick_worker(struct relay *r, int fd, uint64_t id)
{
	struct worker *least = r->w[0];

	for (unsigned k = 1; k < r->n; k++)
		if (r->w[k]->nsessions < least->nsessions)
			least = r->w[k];
	if (r->n > 1 && id && fd >= 0 && (unsigned)fd < r->fdcap && r->last_worker[fd]) {
		struct worker *had = r->w[r->last_worker[fd] - 1];

		if (had->nsessions <= least->nsessions + WORKER_SLACK)
			return had;
	}
	return least;
}

int relay_session_create(struct relay_session **out, struct relay *r, size_t nstreams,
			 const int fds[2][RELAY_MAX_STREAMS],
			 const int fds_rtcp[2][RELAY_MAX_STREAMS],
			 const uint64_t ids[2][RELAY_MAX_STREAMS])
{
	struct own_rnd {
		uint32_t ssrc, ts_base;
		uint16_t seq_base;
	} rnd[2][RELAY_MAX_STREAMS];
	struct relay_session *s;
	struct cmd *c = NULL;
	static _Atomic uint64_t gens;

	if (nstreams == 0 || nstreams > RELAY_MAX_STREAMS)
		return EINVAL;
	s = session_alloc(nstreams);
	if (!s || (r && !(c = calloc(1, sizeof(*c))))) {
		free(s);
		return ENOMEM;
	}
	if (r) {
		s->wk = pick_worker(r, fds[0][0], ids ? ids[0][0] : 0);
		s->wk->nsessions++;
	}
	s->gen = atomic_fetch_add_explicit(&gens, 1, memory_order_relaxed) + 1;
	for (int leg = 0; leg < 2; leg++)
		randpool_draw(rnd[leg], nstreams * sizeof(rnd[leg][0]));
	for (int leg = 0; leg < 2; leg++)
		for (size_t i = 0; i < nstreams; i++) {
			struct wleg *l = &s->st[i].w[leg];
			const struct own_rnd *o = &rnd[leg][i];

			l->s = s;
			l->leg = leg;
			l->i = i;
			l->fd[RELAY_RTP] = fds[leg][i];
			l->fd[RELAY_RTCP] = fds_rtcp[leg][i];
			l->sock_id = ids ? ids[leg][i] : 0;
			for (int k = 0; r && l->sock_id && k < 2; k++)
				if (l->fd[k] >= 0 && (unsigned)l->fd[k] < r->fdcap)
					r->last_worker[l->fd[k]] = (uint16_t)(s->wk->idx + 1);
			/* our SSRC and where our numbering starts: random (RFC
			 * 3550 5.1), so that no two calls collide and a known
			 * plaintext start does not help an attacker */
			l->own.ssrc = o->ssrc;
			l->own.seq_base = o->seq_base & 0x7fff; /* far from a wrap at the start */
			l->own.ts_base = o->ts_base;
		}
	/* The worker takes the sockets now, not at the first update (the
	 * answer, seconds later): what a peer sends before it is read and
	 * counted as arriving before the answer, not queued and shed late. */
	if (c) {
		c->type = CMD_ADD;
		c->s = s;
		queue_push(&s->wk->q, c);
	}
	*out = s;
	return 0;
}

static bool same_key(const struct sdes_key *a, const struct sdes_key *b)
{
	return secret_equal(&a->keysalt, &b->keysalt) && a->has_mki == b->has_mki &&
	       (!a->has_mki || (a->mki == b->mki && a->mki_len == b->mki_len));
}

static void mirror_wipe(struct mirror *m)
{
	OPENSSL_cleanse(m, sizeof(*m));
}

static int epoch_new(struct epoch_rec **out, enum relay_dir dir,
		     const struct relay_stream_params *q, const struct sdes_key *key,
		     const char *msg)
{
	struct epoch_rec *e = calloc(1, sizeof(*e));
	const struct suite_info *si = suite_get(q->suite);

	if (!e)
		return ENOMEM;
	e->meta.dir = dir;
	snprintf(e->meta.message, sizeof(e->meta.message), "%s", msg ? msg : "SDP");
	e->meta.at_ms = now_ms();
	e->meta.suite = q->suite;
	e->meta.tag_len = si ? si->rtp_tag_len : 0;
	e->meta.has_mki = key->has_mki;
	e->meta.mki = key->mki;
	e->meta.mki_len = key->mki_len;
	e->meta.lifetime = key->lifetime;
	secret_fingerprint(&key->keysalt, e->meta.fingerprint);
	atomic_init(&e->first_ms, 0);
	atomic_init(&e->packets, 0);
	atomic_init(&e->in_use, true);
	atomic_init(&e->roc, RELAY_ROC_UNKNOWN);
	*out = e;
	return 0;
}

static int epochs_reserve(struct epochs *l, size_t more)
{
	struct epoch_rec **v;
	size_t cap;

	if (l->n + more <= l->cap)
		return 0;
	cap = l->cap ? l->cap * 2 : 4;
	while (cap < l->n + more)
		cap *= 2;
	v = realloc(l->v, cap * sizeof(*v)); /* the worker holds the records, not the array */
	if (!v)
		return ENOMEM;
	l->v = v;
	l->cap = cap;
	return 0;
}

/* A call re-keyed on every hold and resume for hours keeps its last
 * EPOCHS_KEPT keys, and every one the worker still uses. */
#define EPOCHS_KEPT 32

static void epochs_add(struct epochs *l, struct epoch_rec *e)
{
	if (!e)
		return;
	e->meta.n = ++l->next[e->meta.dir];
	l->v[l->n++] = e;
	for (size_t k = 0; l->n > EPOCHS_KEPT && k < l->n; k++) {
		/* in_use turns false only once the worker has let go of it */
		if (atomic_load_explicit(&l->v[k]->in_use, memory_order_relaxed))
			continue;
		free(l->v[k]);
		memmove(&l->v[k], &l->v[k + 1], (l->n - k - 1) * sizeof(l->v[0]));
		l->n--;
		break;
	}
}

int relay_session_update(struct relay_session *s,
			 const struct relay_stream_params p[2][RELAY_MAX_STREAMS], size_t nstreams)
{
	struct wparams(*w)[RELAY_MAX_STREAMS] = calloc(2, sizeof(*w));
	struct cmd *c = calloc(1, sizeof(*c));
	int err = 0;

	if (!w || !c) {
		free(w);
		free(c);
		return ENOMEM;
	}
	for (int leg = 0; leg < 2 && !err; leg++)
		for (size_t i = 0; i < s->n && !err; i++) {
			const struct relay_stream_params *q = &p[leg][i];
			const struct mirror *m = &s->st[i].m[leg];
			struct wparams *np = &w[leg][i];
			bool keyed = i < nstreams && q->active && q->secure;
			bool same = keyed && m->secure && m->suite == q->suite &&
				    m->unencrypted_srtcp == q->unencrypted_srtcp;

			if (i >= nstreams)
				continue; /* inactive */
			np->active = q->active;
			np->secure = q->secure;
			np->mux = q->rtcp_mux;
			np->latching = q->latching;
			np->addr[RELAY_RTP] = q->rtp;
			np->addr_len[RELAY_RTP] = q->rtp_len;
			np->addr[RELAY_RTCP] = q->rtcp;
			np->addr_len[RELAY_RTCP] = q->rtcp_len;
			np->rekey_roc = q->rekey_roc;
			if (!keyed) {
				np->replace_in = np->replace_out = m->secure;
				continue;
			}
			if (!same || !same_key(&m->peer, &q->peer)) {
				struct srtpctx_params sp = { .suite = q->suite,
							     .key = &q->peer,
							     .unencrypted_srtcp =
								     q->unencrypted_srtcp };

				np->replace_in = true;
				err = srtpctx_create(&np->in, SRTPCTX_INBOUND, &sp);
				/* a key before this one: the peer may restart its ROC */
				if (!err && m->secure)
					err = srtpctx_create(&np->in_alt, SRTPCTX_INBOUND, &sp);
				if (!err)
					err = epoch_new(&np->rec_in, RELAY_IN, q, &q->peer,
							q->peer_msg);
			}
			if (!err && (!same || !same_key(&m->ours, &q->ours))) {
				np->replace_out = true;
				err = srtpctx_create(
					&np->out, SRTPCTX_OUTBOUND,
					&(struct srtpctx_params){ .suite = q->suite,
								  .key = &q->ours,
								  .unencrypted_srtcp =
									  q->unencrypted_srtcp });
				if (!err)
					err = epoch_new(&np->rec_out, RELAY_OUT, q, &q->ours,
							q->our_msg);
			}
		}
	if (!err) /* the epochs join the session's lists, or nothing changes */
		for (int leg = 0; leg < 2 && !err; leg++)
			for (size_t i = 0; i < s->n && !err; i++)
				err = epochs_reserve(&s->st[i].ep[leg], 2);
	if (err) {
		for (int leg = 0; leg < 2; leg++)
			for (size_t i = 0; i < RELAY_MAX_STREAMS; i++) {
				free(w[leg][i].rec_in);
				free(w[leg][i].rec_out);
			}
		free_params(w);
		free(c);
		return err;
	}
	for (int leg = 0; leg < 2; leg++)
		for (size_t i = 0; i < s->n; i++) {
			epochs_add(&s->st[i].ep[leg], w[leg][i].rec_in);
			epochs_add(&s->st[i].ep[leg], w[leg][i].rec_out);
		}
	for (int leg = 0; leg < 2; leg++)
		for (size_t i = 0; i < s->n; i++) {
			struct mirror *m = &s->st[i].m[leg];

			mirror_wipe(m);
			if (i >= nstreams)
				continue;
			m->active = p[leg][i].active;
			m->secure = p[leg][i].active && p[leg][i].secure;
			m->hold = p[leg][i].active && p[leg][i].hold;
			m->suite = p[leg][i].suite;
			m->unencrypted_srtcp = p[leg][i].unencrypted_srtcp;
			if (m->secure) {
				m->ours = p[leg][i].ours;
				m->peer = p[leg][i].peer;
			}
		}
	if (!s->wk) { /* no worker: the parameters only, for tests */
		for (int leg = 0; leg < 2; leg++)
			for (size_t i = 0; i < s->n; i++)
				apply(&s->st[i].w[leg], &w[leg][i]);
		free_params(w);
		free(c);
		return 0;
	}
	c->type = CMD_UPDATE;
	c->s = s;
	c->p = w;
	queue_push(&s->wk->q, c);
	return 0;
}

static void finish(struct relay_session *s)
{
	void (*done)(void *) = s->done;
	void *arg = s->done_arg;

	if (s->wk)
		s->wk->nsessions--;
	/* keys live only in the streams used (the mirror's copies; the
	 * worker's contexts wiped themselves): wiping all 8 would be most of
	 * a call's teardown */
	for (int leg = 0; leg < 2; leg++)
		for (size_t i = 0; i < s->n; i++) {
			mirror_wipe(&s->st[i].m[leg]);
			for (size_t k = 0; k < s->st[i].ep[leg].n; k++)
				free(s->st[i].ep[leg].v[k]);
			free(s->st[i].ep[leg].v);
		}
	free(s);
	if (done)
		done(arg);
}

void relay_session_remove(struct relay_session *s, void (*done)(void *arg), void *arg)
{
	struct cmd *c;

	if (!s)
		return;
	s->done = done;
	s->done_arg = arg;
	if (!s->wk || !(c = calloc(1, sizeof(*c)))) {
		if (s->wk) /* no memory to tell the worker: wait for it the hard way */
			LOG_ERROR(NULL, "out of memory: a media session is left to the worker");
		else {
			for (int leg = 0; leg < 2; leg++)
				for (size_t i = 0; i < s->n; i++)
					wleg_stop(&s->st[i].w[leg]);
			finish(s);
		}
		return;
	}
	c->type = CMD_REMOVE;
	c->s = s;
	queue_push(&s->wk->q, c);
}

void relay_session_counts(const struct relay_session *s, int leg, size_t i, enum relay_kind kind,
			  enum relay_dir dir, struct relay_counts *out)
{
	const struct relay_counters *c;

	memset(out, 0, sizeof(*out));
	if (!s || leg < 0 || leg > 1 || i >= s->n)
		return;
	c = &s->st[i].ctr[leg][kind][dir];
#define LOAD(f) out->f = atomic_load_explicit(&c->f, memory_order_relaxed)
	LOAD(packets);
	LOAD(bytes);
	LOAD(auth_fail);
	LOAD(replay_fail);
	LOAD(cant_check);
	LOAD(unexpected_source);
	LOAD(errors);
	LOAD(recovered);
	LOAD(late);
	out->last_ms = atomic_load_explicit(&c->last_ms, memory_order_relaxed);
#undef LOAD
}

uint64_t relay_session_last_rx_ms(const struct relay_session *s)
{
	return s ? atomic_load_explicit(&s->last_rx_ms, memory_order_relaxed) : 0;
}

bool relay_session_on_hold(const struct relay_session *s)
{
	for (int leg = 0; s && leg < 2; leg++)
		for (size_t i = 0; i < s->n; i++)
			if (s->st[i].m[leg].hold)
				return true;
	return false;
}

size_t relay_session_epochs(const struct relay_session *s, int leg, size_t i,
			    struct relay_epoch *out, size_t max)
{
	const struct epochs *l;

	if (!s || leg < 0 || leg > 1 || i >= s->n)
		return 0;
	l = &s->st[i].ep[leg];
	for (size_t k = 0; k < l->n && k < max; k++) {
		const struct epoch_rec *e = l->v[k];

		out[k] = e->meta;
		out[k].first_ms = atomic_load_explicit(&e->first_ms, memory_order_relaxed);
		out[k].packets = atomic_load_explicit(&e->packets, memory_order_relaxed);
		out[k].in_use = atomic_load_explicit(&e->in_use, memory_order_relaxed);
		out[k].roc = atomic_load_explicit(&e->roc, memory_order_relaxed);
	}
	return l->n;
}

bool relay_session_lifetime_news(struct relay_session *s, int *leg, size_t *i,
				 struct relay_epoch *out)
{
	for (int l = 0; s && l < 2; l++)
		for (size_t k = 0; k < s->n; k++)
			for (size_t j = 0; j < s->st[k].ep[l].n; j++) {
				struct epoch_rec *e = s->st[k].ep[l].v[j];

				if (e->lifetime_told || !e->meta.lifetime ||
				    atomic_load_explicit(&e->packets, memory_order_relaxed) <
					    e->meta.lifetime)
					continue;
				e->lifetime_told = true;
				*out = e->meta;
				out->packets =
					atomic_load_explicit(&e->packets, memory_order_relaxed);
				out->first_ms =
					atomic_load_explicit(&e->first_ms, memory_order_relaxed);
				*leg = l;
				*i = k;
				return true;
			}
	return false;
}

void relay_get_stats(const struct relay *r, struct relay_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; r && i < r->n; i++) {
		const struct worker *w = r->w[i];

		out->roc_continued += atomic_load_explicit(&w->roc_continued, memory_order_relaxed);
		out->roc_reset += atomic_load_explicit(&w->roc_reset, memory_order_relaxed);
		out->batches += atomic_load_explicit(&w->batches, memory_order_relaxed);
		out->datagrams += atomic_load_explicit(&w->datagrams, memory_order_relaxed);
		out->late += atomic_load_explicit(&w->late, memory_order_relaxed);
		out->sessions += w->nsessions;
		out->uring_workers += atomic_load_explicit(&w->uring, memory_order_relaxed);
	}
	out->workers = r ? r->n : 0;
}
