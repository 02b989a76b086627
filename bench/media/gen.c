/* gen: the media benchmark's load generator (bench/media/README.md).
 *
 * For each call of a calls.json it holds the carrier's end (side A) and the
 * IVR's end (side B) and sends a G.711 packet (12-byte RTP header, 160 bytes
 * of payload) every 20 ms in both directions through the relay under test:
 * A -> relay -> B ("ab") and B -> relay -> A ("ba"), the 2 x calls sends of
 * a period spread evenly over it. A side with a tx key protects what it
 * sends with it; a side with an rx key unprotects what it receives.
 *
 * The payload carries the send time (CLOCK_MONOTONIC ns, taken as the
 * packet is built, at most FLUSH_AT packets before its sendmmsg), the call,
 * the direction and a sequence number; the rest is a pattern seeded by all
 * of them, so every received packet is checked byte for byte against the
 * one sent. Toward a side that unprotects (a relay's SRTP leg) the RTP
 * SSRC, sequence number and timestamp may be the relay's own: they are
 * checked for continuity instead (one SSRC, sequence and timestamp moving
 * with ours). Duplicates are counted, not received twice.
 *
 * One thread, woken every --tick-us by the clock only: it reads what came
 * in since the last tick (epoll with no wait, recvmmsg until empty), then
 * sends what is due (sendmmsg). Reading at ticks keeps the generator's CPU
 * well under the relay's; the latency is taken from each datagram's kernel
 * receive timestamp (SO_TIMESTAMPNS: when the relay's send reached our
 * socket), so it does not include the wait for our next tick
 * ("read_latency_us" does).
 *
 * Sent and received are counted for packets whose send time falls in the
 * measured window (after --warmup, for --seconds); sending stops at its end
 * and the run ends --drain seconds later. Output: one JSON object. Progress
 * lines "gen: measure-start" and "gen: measure-end" on stderr let a runner
 * sample the relay's CPU over the same window. Keys are never printed.
 *
 * Sockets: one per distinct local address of the calls.json (two per call,
 * or two for all calls when the runner gives every call the same local
 * ports); a received packet is matched to its call and side by its source
 * address, and must have come to that side's socket. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "srtpbridge/bytes.h"
#include "srtpbridge/control.h"
#include "srtpbridge/sdes.h"
#include "srtpbridge/secret.h"
#include "srtpbridge/srtpctx.h"
#include "srtpbridge/srtplib.h"
#include "srtpbridge/suite.h"

#define PTIME_NS     20000000ull /* G.711, 20 ms */
#define PAYLOAD_LEN  160
#define PKT_LEN	     (12 + PAYLOAD_LEN)
#define TS_STEP	     160 /* 8 kHz x 20 ms */
#define BUF_LEN	     2048
#define BATCH	     64	    /* recvmmsg / sendmmsg */
#define FLUSH_AT     16	    /* sends queued before they go: their time stamps stay fresh */
#define HIST_US	     100000 /* 1 us buckets up to 100 ms; beyond: overflow */
#define SOCK_BUF     (8 << 20)
#define MAGIC0	     0x53 /* 'S' 'B' 'G' after the direction byte */
#define MAGIC1	     0x42
#define MAGIC2	     0x47
#define RX_LEN_LIMIT (PKT_LEN + SRTPCTX_TRAILER_MAX)

enum {
	SIDE_A = 0,
	SIDE_B = 1
};
enum {
	DIR_AB = 0,
	DIR_BA = 1
}; /* sent from side dir, received on the other */

struct side {
	int sock; /* index into g.socks */
	struct sockaddr_in remote;
	struct srtpctx *tx, *rx;
};

/* One direction of a call, as its receiver sees it. */
struct flow {
	uint32_t next_seq; /* sender: the next sequence number */
	bool seen;
	uint32_t max_seq; /* highest of ours received, and the 64 below it */
	uint64_t window;
	uint32_t last_seq; /* of the newest received: ours and the relay's fields */
	uint16_t last_rtp_seq;
	uint32_t last_ts, ssrc;
	uint32_t sent_w, received_w; /* in the measured window */
};

struct call {
	uint32_t id;
	struct side s[2];
	struct flow f[2];
};

struct sock {
	int fd;
	struct sockaddr_in local;
	int head, tail; /* its queued sends in g.out, -1: none */
};

/* A send queued until the end of the loop's turn, so that the sends of one
 * socket go out in one sendmmsg. */
struct out {
	uint8_t buf[PKT_LEN + SRTPCTX_TRAILER_MAX];
	size_t len;
	struct sockaddr_in *to;
	int next;
	uint32_t call;
	uint8_t dir;
	bool counted; /* in the window's sent */
};

struct hist {
	uint64_t b[HIST_US];
	uint64_t over, n, max_ns;
};

struct dir_stats {
	uint64_t sent, received, send_errors;
	uint64_t auth_fail, replay_fail, other_unprotect, bad_length, bad_header, bad_payload,
		continuity, ssrc_changes, misrouted, duplicates, too_old;
	struct hist lat, rlat;
};

/* --series: what the packets sent in one slice of the window met, to tell
 * a stall (one slice, then a decay) from a steady queue or a periodic
 * disturbance. */
#define SLICE_NS 10000000ull /* = 10 ms */
struct tslice {
	uint32_t n, over; /* received; of them, 2 ms or later */
	uint32_t max_us;
};

struct cfg {
	const char *calls_path, *json_path, *series_path;
	int cpu;
	double seconds, warmup, drain, tick_us, max_lag_us;
	bool quiet;
};

static struct {
	struct cfg cfg;
	char relay[64];
	struct call *calls;
	size_t ncalls, cap;
	struct sock *socks;
	size_t nsocks;
	int *pending; /* indexes of socks with sends queued */
	size_t npending;
	struct out out[FLUSH_AT];
	unsigned nout;
	/* source address -> call * 2 + side */
	uint64_t *map_key;
	uint32_t *map_val;
	size_t map_mask;
	struct dir_stats st[2];
	uint64_t unknown_source, other_failures, skipped;
	struct hist lag;
	int64_t rt_minus_mono; /* CLOCK_REALTIME - CLOCK_MONOTONIC, ns */
	uint64_t t_ws, t_we;   /* measured window, CLOCK_MONOTONIC ns */
	struct tslice *series; /* --series: the window in SLICE_NS of send time */
	size_t nslices;
} g;

static volatile sig_atomic_t stop_now;

static void on_signal(int sig)
{
	(void)sig;
	stop_now = 1;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "gen: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(2);
}

/* ---- deterministic content ---- */

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

static uint32_t flow_ssrc(uint32_t call, int dir)
{
	return (uint32_t)mix(((uint64_t)call << 1 | (uint64_t)dir) + 0x5353) | 1;
}

static uint16_t flow_seq_base(uint32_t call, int dir)
{
	return (uint16_t)(mix(((uint64_t)call << 1 | (uint64_t)dir) + 0x7777) >> 7);
}

static uint32_t flow_ts_base(uint32_t call, int dir)
{
	return (uint32_t)(mix(((uint64_t)call << 1 | (uint64_t)dir) + 0x9999) >> 13);
}

static void put64(uint8_t *p, uint64_t v)
{
	be32_put(p, (uint32_t)(v >> 32));
	be32_put(p + 4, (uint32_t)v);
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)be32_get(p) << 32 | be32_get(p + 4);
}

/* The whole plain packet (header and payload) of one send. */
static void build(uint8_t *p, uint32_t call, int dir, uint32_t seq, uint64_t t_ns)
{
	uint64_t x = mix(t_ns ^ mix((uint64_t)call << 33 | (uint64_t)dir << 32 | seq));
	uint8_t *pl = p + 12;

	p[0] = 0x80;
	p[1] = 0; /* PCMU */
	p[2] = (uint8_t)((uint16_t)(flow_seq_base(call, dir) + seq) >> 8);
	p[3] = (uint8_t)(flow_seq_base(call, dir) + seq);
	be32_put(p + 4, flow_ts_base(call, dir) + seq * TS_STEP);
	be32_put(p + 8, flow_ssrc(call, dir));
	put64(pl, t_ns);
	be32_put(pl + 8, call);
	pl[12] = (uint8_t)dir;
	pl[13] = MAGIC0;
	pl[14] = MAGIC1;
	pl[15] = MAGIC2;
	be32_put(pl + 16, seq);
	for (size_t i = 20; i < PAYLOAD_LEN; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		for (size_t j = 0; j < 8 && i + j < PAYLOAD_LEN; j++)
			pl[i + j] = (uint8_t)(x >> (8 * j));
	}
}

/* ---- histograms ---- */

static void hist_add(struct hist *h, int64_t ns)
{
	uint64_t v = ns < 0 ? 0 : (uint64_t)ns;
	uint64_t us = v / 1000;

	if (us < HIST_US)
		h->b[us]++;
	else
		h->over++;
	h->n++;
	if (v > h->max_ns)
		h->max_ns = v;
}

/* The q-quantile in us (the upper edge of its 1 us bucket); -1 if empty. */
static double hist_q(const struct hist *h, double q)
{
	uint64_t want, acc = 0;

	if (!h->n)
		return -1;
	want = (uint64_t)((double)h->n * q);
	if (want >= h->n)
		want = h->n - 1;
	for (size_t i = 0; i < HIST_US; i++) {
		acc += h->b[i];
		if (acc > want)
			return (double)(i + 1);
	}
	return (double)h->max_ns / 1000.0;
}

static void hist_print(FILE *f, const char *name, const struct hist *h)
{
	fprintf(f,
		"\"%s\": {\"n\": %" PRIu64 ", \"p50\": %.0f, \"p90\": %.0f, \"p99\": %.0f, "
		"\"p99.9\": %.0f, \"max\": %.1f}",
		name, h->n, hist_q(h, 0.5), hist_q(h, 0.9), hist_q(h, 0.99), hist_q(h, 0.999),
		(double)h->max_ns / 1000.0);
}

/* ---- calls.json ---- */

static int parse_addr(const char *s, struct sockaddr_in *out)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	char *end;
	long port;

	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return EINVAL;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	port = strtol(colon + 1, &end, 10);
	if (*end || port < 1 || port > 65535)
		return EINVAL;
	memset(out, 0, sizeof(*out));
	out->sin_family = AF_INET;
	out->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, host, &out->sin_addr) == 1 ? 0 : EINVAL;
}

/* What one call's entry brings before its sockets and contexts exist. */
struct call_in {
	bool have_id;
	char local[2][64];
	char remote[2][64];
	bool has_key[2][2]; /* [side][0 tx, 1 rx] */
	enum suite_id suite[2][2];
	bool has_suite[2][2];
	struct sdes_key key[2][2];
	bool has_keyval[2][2];
};

struct parse {
	struct call_in *in;
	size_t n, cap;
};

static int fail(char *why, size_t whysz, const char *what, const char *path)
{
	snprintf(why, whysz, "%s at %s", what, path[0] ? path : "the root");
	return EBADMSG;
}

static int on_item(void *arg, const struct control_json_item *it, char *why, size_t whysz)
{
	struct parse *ps = arg;
	char path[256], *parts[6], *save = NULL;
	unsigned np = 0;
	struct call_in *c;
	char *end;
	unsigned long ix;
	int side, k;

	if (strlen(it->path) >= sizeof(path))
		return fail(why, whysz, "path too long", "");
	strcpy(path, it->path);
	for (char *t = strtok_r(path, ".", &save); t && np < 6; t = strtok_r(NULL, ".", &save))
		parts[np++] = t;
	if (np == 0)
		return it->type == CONTROL_JSON_OBJECT ? 0 : fail(why, whysz, "not an object", "");
	if (strcmp(parts[0], "relay") == 0 && np == 1) {
		if (it->type != CONTROL_JSON_STRING)
			return fail(why, whysz, "not a string", it->path);
		snprintf(g.relay, sizeof(g.relay), "%s", it->val);
		return 0;
	}
	if (strcmp(parts[0], "calls") != 0)
		return 0; /* other top-level keys (a relay's notes) are not ours */
	if (np == 1)
		return it->type == CONTROL_JSON_ARRAY ? 0
						      : fail(why, whysz, "not an array", "calls");
	ix = strtoul(parts[1], &end, 10);
	if (np == 2) {
		if (it->type != CONTROL_JSON_OBJECT || ix != ps->n)
			return fail(why, whysz, "not an object", it->path);
		if (ps->n == ps->cap) {
			size_t cap = ps->cap ? ps->cap * 2 : 256;
			struct call_in *p = realloc(ps->in, cap * sizeof(*p));

			if (!p)
				return ENOMEM;
			ps->in = p;
			ps->cap = cap;
		}
		memset(&ps->in[ps->n], 0, sizeof(ps->in[0]));
		ps->n++;
		return 0;
	}
	c = &ps->in[ix];
	if (np == 3 && strcmp(parts[2], "id") == 0) {
		if (it->type != CONTROL_JSON_NUMBER)
			return fail(why, whysz, "not a number", it->path);
		c->have_id = true;
		return 0;
	}
	side = strcmp(parts[2], "a") == 0 ? SIDE_A : strcmp(parts[2], "b") == 0 ? SIDE_B : -1;
	if (side < 0)
		return fail(why, whysz, "unknown key", it->path);
	if (np == 3)
		return it->type == CONTROL_JSON_OBJECT
			       ? 0
			       : fail(why, whysz, "not an object", it->path);
	if (np == 4 && (strcmp(parts[3], "local") == 0 || strcmp(parts[3], "remote") == 0)) {
		char *dst = parts[3][0] == 'l' ? c->local[side] : c->remote[side];

		if (it->type != CONTROL_JSON_STRING || it->len >= 64)
			return fail(why, whysz, "not an address string", it->path);
		memcpy(dst, it->val, it->len + 1);
		return 0;
	}
	k = strcmp(parts[3], "tx") == 0 ? 0 : strcmp(parts[3], "rx") == 0 ? 1 : -1;
	if (k < 0)
		return fail(why, whysz, "unknown key", it->path);
	if (np == 4) {
		if (it->type == CONTROL_JSON_NULL)
			return 0;
		if (it->type != CONTROL_JSON_OBJECT)
			return fail(why, whysz, "neither an object nor null", it->path);
		c->has_key[side][k] = true;
		return 0;
	}
	if (np == 5 && it->type == CONTROL_JSON_STRING && strcmp(parts[4], "suite") == 0) {
		if (suite_from_name(it->val, it->len, &c->suite[side][k]))
			return fail(why, whysz, "unknown suite", it->path);
		c->has_suite[side][k] = true;
		return 0;
	}
	if (np == 5 && it->type == CONTROL_JSON_STRING && strcmp(parts[4], "key") == 0) {
		uint8_t raw[SECRET_MAX];
		size_t len;
		int err = sdes_base64_decode((struct slice){ it->val, it->len }, raw, sizeof(raw),
					     &len);

		if (!err)
			err = secret_set(&c->key[side][k].keysalt, raw, len);
		memset(raw, 0, sizeof(raw));
		if (err)
			return fail(why, whysz, "bad base64 key", it->path);
		c->has_keyval[side][k] = true;
		return 0;
	}
	return fail(why, whysz, "unknown key", it->path);
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0;

	if (!f)
		return NULL;
	for (;;) {
		size_t r;

		if (n + 65536 > cap) {
			char *p = realloc(buf, cap = cap ? cap * 2 : 1 << 20);

			if (!p) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = p;
		}
		r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0)
			break;
	}
	fclose(f);
	*len = n;
	return buf;
}

/* ---- sockets ---- */

static int sock_for(const struct sockaddr_in *local)
{
	struct sock *s;
	int one = 1, size = SOCK_BUF;

	for (size_t i = 0; i < g.nsocks; i++)
		if (g.socks[i].local.sin_port == local->sin_port &&
		    g.socks[i].local.sin_addr.s_addr == local->sin_addr.s_addr)
			return (int)i;
	s = &g.socks[g.nsocks];
	memset(s, 0, sizeof(*s));
	s->local = *local;
	s->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0)
		die("socket: %s", strerror(errno));
	if (bind(s->fd, (const struct sockaddr *)local, sizeof(*local)) < 0) {
		char a[80];

		snprintf(a, sizeof(a), "%s:%u (%s)", inet_ntoa(local->sin_addr),
			 ntohs(local->sin_port), strerror(errno));
		die("cannot bind %s", a);
	}
	s->head = s->tail = -1;
	(void)setsockopt(s->fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
	/* the FORCE variants need CAP_NET_ADMIN; else up to rmem_max */
	if (setsockopt(s->fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		(void)setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	if (setsockopt(s->fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
		(void)setsockopt(s->fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	return (int)g.nsocks++;
}

static uint64_t addr_key(const struct sockaddr_in *a)
{
	return (uint64_t)a->sin_addr.s_addr << 16 | a->sin_port;
}

static void map_put(const struct sockaddr_in *a, uint32_t val)
{
	uint64_t k = addr_key(a);
	size_t i = mix(k) & g.map_mask;

	while (g.map_key[i] != UINT64_MAX) {
		if (g.map_key[i] == k)
			die("two sides have the same remote address %s", inet_ntoa(a->sin_addr));
		i = (i + 1) & g.map_mask;
	}
	g.map_key[i] = k;
	g.map_val[i] = val;
}

static bool map_get(const struct sockaddr_in *a, uint32_t *val)
{
	uint64_t k = addr_key(a);
	size_t i = mix(k) & g.map_mask;

	while (g.map_key[i] != UINT64_MAX) {
		if (g.map_key[i] == k) {
			*val = g.map_val[i];
			return true;
		}
		i = (i + 1) & g.map_mask;
	}
	return false;
}

static void load_calls(void)
{
	struct parse ps = { 0 };
	char why[256];
	size_t len = 0, slots = 16;
	char *text = read_file(g.cfg.calls_path, &len);
	int err;

	if (!text)
		die("cannot read %s", g.cfg.calls_path);
	err = control_json_walk(text, len, 8, on_item, &ps, why, sizeof(why));
	free(text);
	if (err)
		die("calls.json: %s", why);
	if (!ps.n)
		die("%s", "calls.json: no calls");
	g.ncalls = ps.n;
	g.calls = calloc(ps.n, sizeof(*g.calls));
	g.socks = calloc(2 * ps.n, sizeof(*g.socks));
	g.pending = calloc(2 * ps.n, sizeof(*g.pending));
	while (slots < 4 * ps.n)
		slots *= 2;
	g.map_key = malloc(slots * sizeof(*g.map_key));
	g.map_val = malloc(slots * sizeof(*g.map_val));
	if (!g.calls || !g.socks || !g.pending || !g.map_key || !g.map_val)
		die("%s", "out of memory");
	memset(g.map_key, 0xff, slots * sizeof(*g.map_key));
	g.map_mask = slots - 1;
	for (size_t i = 0; i < ps.n; i++) {
		struct call_in *in = &ps.in[i];
		struct call *c = &g.calls[i];
		char what[64];

		snprintf(what, sizeof(what), "calls.%zu", i);
		if (!in->have_id)
			die("calls.json: no id in %s", what);
		c->id = (uint32_t)i;
		for (int s = 0; s < 2; s++) {
			struct sockaddr_in local;

			if (parse_addr(in->local[s], &local) ||
			    parse_addr(in->remote[s], &c->s[s].remote))
				die("calls.json: a missing or bad address in %s", what);
			c->s[s].sock = sock_for(&local);
			map_put(&c->s[s].remote, (uint32_t)(i * 2 + (size_t)s));
			for (int k = 0; k < 2; k++) {
				struct srtpctx_params p = { 0 };

				if (!in->has_key[s][k])
					continue;
				if (!in->has_suite[s][k] || !in->has_keyval[s][k])
					die("calls.json: a key without suite or key in %s", what);
				p.suite = in->suite[s][k];
				p.key = &in->key[s][k];
				err = srtpctx_create(k == 0 ? &c->s[s].tx : &c->s[s].rx,
						     k == 0 ? SRTPCTX_OUTBOUND : SRTPCTX_INBOUND,
						     &p);
				secret_wipe(&in->key[s][k].keysalt);
				if (err)
					die("srtpctx_create failed for %s (a key of the wrong "
					    "length?)",
					    what);
			}
		}
	}
	free(ps.in);
}

/* ---- sending ---- */

static void flush(void)
{
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	int ix[BATCH];

	for (size_t i = 0; i < g.npending; i++) {
		struct sock *s = &g.socks[g.pending[i]];

		while (s->head >= 0) {
			int n = 0, done = 0;

			for (; s->head >= 0 && n < BATCH; s->head = g.out[s->head].next, n++) {
				struct out *o = &g.out[s->head];

				ix[n] = s->head;
				iov[n] = (struct iovec){ o->buf, o->len };
				msgs[n].msg_hdr = (struct msghdr){ .msg_name = o->to,
								   .msg_namelen = sizeof(*o->to),
								   .msg_iov = &iov[n],
								   .msg_iovlen = 1 };
			}
			while (done < n) {
				int r = sendmmsg(s->fd, msgs + done, (unsigned)(n - done), 0);

				if (r <= 0)
					break;
				done += r;
			}
			/* what could not be sent was not sent */
			for (; done < n; done++) {
				struct out *o = &g.out[ix[done]];

				if (o->counted) {
					g.st[o->dir].sent--;
					g.calls[o->call].f[o->dir].sent_w--;
				}
				g.st[o->dir].send_errors++;
			}
		}
		s->tail = -1;
	}
	g.npending = 0;
	g.nout = 0;
}

static void emit(uint64_t k, uint64_t sched)
{
	uint32_t ci = (uint32_t)((k / 2) % g.ncalls);
	int dir = (int)(k & 1);
	struct call *c = &g.calls[ci];
	struct side *from = &c->s[dir == DIR_AB ? SIDE_A : SIDE_B];
	struct sock *s = &g.socks[from->sock];
	struct out *o;
	uint64_t now;

	if (g.nout == FLUSH_AT)
		flush();
	o = &g.out[g.nout];
	now = mono_ns();
	hist_add(&g.lag, (int64_t)(now - sched));
	build(o->buf, c->id, dir, c->f[dir].next_seq++, now);
	o->len = PKT_LEN;
	if (from->tx &&
	    srtpctx_protect_rtp(from->tx, o->buf, &o->len, sizeof(o->buf)) != SRTPCTX_OK) {
		g.other_failures++;
		return;
	}
	o->to = &from->remote;
	o->call = ci;
	o->dir = (uint8_t)dir;
	o->counted = now >= g.t_ws && now < g.t_we;
	o->next = -1;
	if (o->counted) {
		g.st[dir].sent++;
		c->f[dir].sent_w++;
	}
	if (s->head < 0) {
		s->head = (int)g.nout;
		g.pending[g.npending++] = from->sock;
	} else {
		g.out[s->tail].next = (int)g.nout;
	}
	s->tail = (int)g.nout;
	g.nout++;
}

/* ---- receiving ---- */

static void verify(int si, const struct sockaddr_in *src, uint8_t *p, size_t len, uint64_t rx_ns,
		   int64_t krx_ns)
{
	uint8_t want[PKT_LEN];
	uint32_t v, seq;
	struct call *c;
	struct side *to;
	struct flow *f;
	struct dir_stats *st;
	int side, dir;
	uint64_t t;
	bool in_window;
	int64_t lat;
	uint64_t slice;

	if (!map_get(src, &v)) {
		g.unknown_source++;
		return;
	}
	c = &g.calls[v / 2];
	side = (int)(v % 2);
	to = &c->s[side];
	dir = side == SIDE_B ? DIR_AB : DIR_BA;
	st = &g.st[dir];
	if (to->sock != si) {
		st->misrouted++;
		return;
	}
	if (to->rx) {
		enum srtpctx_result r = srtpctx_unprotect_rtp(to->rx, p, &len);

		if (r != SRTPCTX_OK) {
			if (r == SRTPCTX_AUTH_FAIL)
				st->auth_fail++;
			else if (r == SRTPCTX_REPLAY_FAIL)
				st->replay_fail++;
			else
				st->other_unprotect++;
			return;
		}
	}
	if (len != PKT_LEN) {
		st->bad_length++;
		return;
	}
	t = get64(p + 12);
	seq = be32_get(p + 12 + 16);
	if (be32_get(p + 12 + 8) != c->id || p[12 + 12] != dir || p[12 + 13] != MAGIC0 ||
	    p[12 + 14] != MAGIC1 || p[12 + 15] != MAGIC2 || seq >= c->f[dir].next_seq ||
	    t > rx_ns) {
		st->bad_payload++;
		return;
	}
	build(want, c->id, dir, seq, t);
	if (memcmp(p + 12, want + 12, PAYLOAD_LEN) != 0) {
		st->bad_payload++;
		return;
	}
	f = &c->f[dir];
	if (!to->rx) {
		if (memcmp(p, want, 12) != 0) {
			st->bad_header++;
			return;
		}
	} else {
		/* toward an SRTP leg the relay may own SSRC, sequence and timestamp */
		if (p[0] != want[0] || p[1] != want[1]) {
			st->bad_header++;
			return;
		}
		if (f->seen) {
			int32_t d = (int32_t)(seq - f->last_seq);
			uint16_t rs = (uint16_t)(p[2] << 8 | p[3]);

			if (be32_get(p + 8) != f->ssrc) {
				st->ssrc_changes++;
			} else if (rs != (uint16_t)(f->last_rtp_seq + d) ||
				   be32_get(p + 4) != f->last_ts + (uint32_t)d * TS_STEP) {
				st->continuity++;
			}
		}
	}
	/* duplicates: the highest of ours seen, and a bitmap of the 64 below */
	if (!f->seen || seq > f->max_seq) {
		uint32_t ahead = f->seen ? seq - f->max_seq : 64;

		f->window = ahead >= 64 ? 0 : f->window << ahead;
		f->window |= 1;
		f->max_seq = seq;
	} else {
		uint32_t back = f->max_seq - seq;

		if (back >= 64) {
			st->too_old++;
			return;
		}
		if (f->window >> back & 1) {
			st->duplicates++;
			return;
		}
		f->window |= 1ull << back;
	}
	if (!f->seen || (int32_t)(seq - f->last_seq) > 0 || be32_get(p + 8) != f->ssrc) {
		f->last_seq = seq;
		f->last_rtp_seq = (uint16_t)(p[2] << 8 | p[3]);
		f->last_ts = be32_get(p + 4);
		f->ssrc = be32_get(p + 8);
	}
	f->seen = true;
	in_window = t >= g.t_ws && t < g.t_we;
	if (!in_window)
		return;
	st->received++;
	f->received_w++;
	/* the latency: when the relay's datagram reached our socket (the
	 * kernel's timestamp); and when we read it, up to a tick later */
	lat = krx_ns ? krx_ns - g.rt_minus_mono - (int64_t)t : (int64_t)(rx_ns - t);
	hist_add(&st->lat, lat);
	hist_add(&st->rlat, (int64_t)(rx_ns - t));
	slice = (t - g.t_ws) / SLICE_NS;
	if (g.series && slice < g.nslices) {
		struct tslice *sl = &g.series[slice];
		uint32_t us = lat > 0 ? (uint32_t)(lat / 1000) : 0;

		sl->n++;
		sl->over += us >= 2000;
		if (us > sl->max_us)
			sl->max_us = us;
	}
}

static void receive(int si)
{
	static uint8_t bufs[BATCH][BUF_LEN];
	static struct sockaddr_in srcs[BATCH];
	static char ctl[BATCH][CMSG_SPACE(sizeof(struct timespec))];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	struct sock *s = &g.socks[si];
	uint64_t now;
	int n;

	/* until the socket is empty: a short batch */
	do {
		for (int i = 0; i < BATCH; i++) {
			iov[i] = (struct iovec){ bufs[i], BUF_LEN };
			msgs[i].msg_hdr = (struct msghdr){ .msg_name = &srcs[i],
							   .msg_namelen = sizeof(srcs[i]),
							   .msg_iov = &iov[i],
							   .msg_iovlen = 1,
							   .msg_control = ctl[i],
							   .msg_controllen = sizeof(ctl[i]) };
		}
		n = recvmmsg(s->fd, msgs, BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		now = mono_ns();
		for (int i = 0; i < n; i++) {
			int64_t krx = 0;

			for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msgs[i].msg_hdr); cm;
			     cm = CMSG_NXTHDR(&msgs[i].msg_hdr, cm)) {
				if (cm->cmsg_level == SOL_SOCKET &&
				    cm->cmsg_type == SCM_TIMESTAMPNS) {
					struct timespec ts;

					memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
					krx = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
				}
			}
			if (msgs[i].msg_len > RX_LEN_LIMIT ||
			    msgs[i].msg_hdr.msg_namelen != sizeof(struct sockaddr_in)) {
				g.other_failures++;
				continue;
			}
			verify(si, &srcs[i], bufs[i], msgs[i].msg_len, now, krx);
		}
	} while (n == BATCH);
}

/* Datagrams our sockets lost to a full receive buffer (the drops column of
 * /proc/net/udp), for telling the generator's losses from the relay's. */
static uint64_t own_drops(void)
{
	FILE *f = fopen("/proc/self/net/udp", "r");
	char line[512];
	uint64_t total = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned ip, port;
		unsigned long long drops;
		char *last;

		if (sscanf(line, " %*d: %8X:%4X", &ip, &port) != 2)
			continue;
		last = strrchr(line, ' ');
		if (!last || sscanf(last, "%llu", &drops) != 1)
			continue;
		for (size_t i = 0; i < g.nsocks; i++) {
			if (ntohs(g.socks[i].local.sin_port) == port &&
			    g.socks[i].local.sin_addr.s_addr == ip) {
				total += drops;
				break;
			}
		}
	}
	fclose(f);
	return total;
}

/* ---- output ---- */

/* Calls that lost packets in direction dir, and calls that got none at all
 * (a relay that lost whole calls looks different from one that drops under
 * load): counts and the first few ids. */
static void print_calls_lost(FILE *f, int dir)
{
	size_t n_lossy = 0, n_silent = 0, shown_l = 0, shown_s = 0;
	char lossy[256] = "", silent[256] = "";

	for (size_t i = 0; i < g.ncalls; i++) {
		const struct flow *fl = &g.calls[i].f[dir];
		char id[32];

		if (fl->received_w >= fl->sent_w)
			continue;
		snprintf(id, sizeof(id), "%s%zu",
			 fl->received_w ? (shown_l ? ", " : "") : (shown_s ? ", " : ""), i);
		if (fl->received_w == 0) {
			n_silent++;
			if (shown_s++ < 10)
				strncat(silent, id, sizeof(silent) - strlen(silent) - 1);
		} else {
			n_lossy++;
			if (shown_l++ < 10)
				strncat(lossy, id, sizeof(lossy) - strlen(lossy) - 1);
		}
	}
	fprintf(f,
		",\n      \"calls_with_loss\": %zu, \"calls_with_loss_first\": [%s], "
		"\"silent_calls\": %zu, \"silent_calls_first\": [%s]",
		n_lossy, lossy, n_silent, silent);
}

static void print_dir(FILE *f, const char *name, int dir, double secs)
{
	const struct dir_stats *st = &g.st[dir];
	uint64_t failures = st->auth_fail + st->replay_fail + st->other_unprotect + st->bad_length +
			    st->bad_header + st->bad_payload + st->continuity + st->ssrc_changes +
			    st->misrouted;
	uint64_t lost = st->sent > st->received ? st->sent - st->received : 0;

	fprintf(f,
		"    \"%s\": {\"sent\": %" PRIu64 ", \"received\": %" PRIu64 ", \"lost\": %" PRIu64
		", \"loss_pct\": %.4f, \"offered_pps\": %.1f, \"received_pps\": %.1f,\n      ",
		name, st->sent, st->received, lost,
		st->sent ? 100.0 * (double)lost / (double)st->sent : 0.0, (double)st->sent / secs,
		(double)st->received / secs);
	hist_print(f, "latency_us", &st->lat);
	fprintf(f, ",\n      ");
	hist_print(f, "read_latency_us", &st->rlat);
	fprintf(f,
		",\n      \"verify_failures\": %" PRIu64 ", \"failures\": {\"auth_fail\": %" PRIu64
		", \"replay_fail\": %" PRIu64 ", \"other_unprotect\": %" PRIu64
		", \"bad_length\": %" PRIu64 ", \"bad_header\": %" PRIu64
		", \"bad_payload\": %" PRIu64 ", \"continuity\": %" PRIu64
		", \"ssrc_changes\": %" PRIu64 ", \"misrouted\": %" PRIu64
		"},\n      \"duplicates\": %" PRIu64 ", \"too_old\": %" PRIu64
		", \"send_errors\": %" PRIu64,
		failures, st->auth_fail, st->replay_fail, st->other_unprotect, st->bad_length,
		st->bad_header, st->bad_payload, st->continuity, st->ssrc_changes, st->misrouted,
		st->duplicates, st->too_old, st->send_errors);
	print_calls_lost(f, dir);
	fprintf(f, "}");
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: gen --calls calls.json [--cpu N] [--seconds S] [--warmup S] [--drain S]\n"
		"           [--tick-us U] [--max-lag-us U] [--json OUT] [--series CSV]\n"
		"  --calls FILE   the calls (bench/media/README.md: calls.json)\n"
		"  --cpu N        pin to CPU N (sched_setaffinity)\n"
		"  --seconds S    measured window (default 10)\n"
		"  --warmup S     sending before the window (default 2)\n"
		"  --drain S      receiving after the last send (default 1)\n"
		"  --tick-us U    wake every U us (>= 50, default 250): read, send what is due\n"
		"  --max-lag-us U a send due more than U us ago is skipped (default 2000)\n"
		"  --json OUT     write the result there (default: stdout)\n"
		"  --series CSV   per 10 ms of send time in the window, both directions:\n"
		"                 packets received, of them 2 ms or later, the latest (us)\n"
		"  --quiet        no progress lines on stderr\n");
}

static double num_arg(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	if (*end || v < 0)
		die("bad number %s", s);
	return v;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = { { "calls", required_argument, NULL, 'c' },
					      { "cpu", required_argument, NULL, 'p' },
					      { "seconds", required_argument, NULL, 's' },
					      { "warmup", required_argument, NULL, 'w' },
					      { "drain", required_argument, NULL, 'd' },
					      { "json", required_argument, NULL, 'j' },
					      { "tick-us", required_argument, NULL, 't' },
					      { "max-lag-us", required_argument, NULL, 'l' },
					      { "series", required_argument, NULL, 'S' },
					      { "quiet", no_argument, NULL, 'q' },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	struct epoll_event evs[1024];
	struct rusage ru0, ru1;
	bool ended = false;
	uint64_t t0, t_end, period_ns, nevents, k = 0, tick_ns, next_tick, max_lag_ns;
	double cpu_s;
	bool measuring = false;
	FILE *out = stdout;
	int opt, ep;

	g.cfg = (struct cfg){ .cpu = -1,
			      .seconds = 10,
			      .warmup = 2,
			      .drain = 1,
			      .tick_us = 250,
			      .max_lag_us = 2000 };
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			g.cfg.calls_path = optarg;
			break;
		case 'p':
			g.cfg.cpu = (int)num_arg(optarg);
			break;
		case 's':
			g.cfg.seconds = num_arg(optarg);
			break;
		case 'w':
			g.cfg.warmup = num_arg(optarg);
			break;
		case 'd':
			g.cfg.drain = num_arg(optarg);
			break;
		case 't':
			g.cfg.tick_us = num_arg(optarg);
			break;
		case 'l':
			g.cfg.max_lag_us = num_arg(optarg);
			break;
		case 'j':
			g.cfg.json_path = optarg;
			break;
		case 'S':
			g.cfg.series_path = optarg;
			break;
		case 'q':
			g.cfg.quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!g.cfg.calls_path || g.cfg.seconds <= 0 || g.cfg.tick_us < 50) {
		usage(stderr);
		return 2;
	}
	if (g.cfg.cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(g.cfg.cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set) < 0)
			die("sched_setaffinity: %s", strerror(errno));
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (srtplib_init())
		die("%s", "srtplib_init failed");
	load_calls();

	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die("epoll_create1: %s", strerror(errno));
	for (size_t i = 0; i < g.nsocks; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };

		if (epoll_ctl(ep, EPOLL_CTL_ADD, g.socks[i].fd, &ev) < 0)
			die("epoll_ctl: %s", strerror(errno));
	}
	period_ns = PTIME_NS;
	nevents = 2 * g.ncalls;
	t0 = mono_ns() + 10000000; /* 10 ms from now */
	tick_ns = (uint64_t)(g.cfg.tick_us * 1000);
	max_lag_ns = (uint64_t)(g.cfg.max_lag_us * 1000);
	g.t_ws = t0 + (uint64_t)(g.cfg.warmup * 1e9);
	g.t_we = g.t_ws + (uint64_t)(g.cfg.seconds * 1e9);
	if (g.cfg.series_path) {
		g.nslices = (g.t_we - g.t_ws + SLICE_NS - 1) / SLICE_NS;
		g.series = calloc(g.nslices, sizeof(*g.series));
		if (!g.series)
			die("out of memory");
	}
	t_end = g.t_we + (uint64_t)(g.cfg.drain * 1e9);
	getrusage(RUSAGE_SELF, &ru0);
	next_tick = t0;
	while (!stop_now) {
		uint64_t now = mono_ns();
		struct timespec ts;

		if (now >= t_end)
			break;
		/* kept fresh: the kernel's receive timestamps are CLOCK_REALTIME */
		g.rt_minus_mono = (int64_t)(real_ns() - now);
		if (!measuring && now >= g.t_ws) {
			measuring = true;
			getrusage(RUSAGE_SELF, &ru0);
			if (!g.cfg.quiet)
				fprintf(stderr, "gen: measure-start\n");
		}
		if (measuring && !ended && now >= g.t_we) {
			ended = true;
			getrusage(RUSAGE_SELF, &ru1);
			if (!g.cfg.quiet)
				fprintf(stderr, "gen: measure-end\n");
		}
		/* what arrived since the last tick: read now, timed by the kernel */
		for (;;) {
			int n = epoll_wait(ep, evs, 1024, 0);

			for (int i = 0; i < n; i++)
				receive((int)evs[i].data.u32);
			if (n < 1024)
				break;
		}
		/* what is due goes out, all together */
		for (;;) {
			uint64_t when = t0 + k * period_ns / nevents;

			if (when >= g.t_we || when > now)
				break;
			/* after a stall of our own (this VM's CPUs stop for
			 * milliseconds now and then) what is long overdue is
			 * not sent at all: a burst of it would be the relay's
			 * latency, not a packet sent on time */
			if (now - when > max_lag_ns) {
				if (when >= g.t_ws)
					g.skipped++;
				k++;
				continue;
			}
			emit(k++, when);
		}
		flush();
		while (next_tick <= now)
			next_tick += tick_ns;
		ts.tv_sec = (time_t)(next_tick / 1000000000ull);
		ts.tv_nsec = (long)(next_tick % 1000000000ull);
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR &&
		       !stop_now)
			;
	}
	if (!ended)
		getrusage(RUSAGE_SELF, &ru1);
	cpu_s = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) +
		(double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6 +
		(double)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
		(double)(ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;

	if (g.cfg.json_path) {
		out = fopen(g.cfg.json_path, "w");
		if (!out)
			die("cannot write %s", g.cfg.json_path);
	}
	fprintf(out,
		"{\"relay\": \"%s\", \"calls\": %zu, \"sockets\": %zu, \"cpu\": %d, \"seconds\": "
		"%g, "
		"\"warmup\": %g, \"drain\": %g, \"tick_us\": %g, \"interrupted\": %s,\n"
		"  \"nominal_pps_per_direction\": %.1f, \"srtp\": \"%s (%s)\",\n"
		"  \"generator\": {\"cpu_pct\": %.1f, \"socket_drops\": %" PRIu64
		", \"unknown_source\": %" PRIu64 ", \"other_failures\": %" PRIu64
		", \"skipped_late\": %" PRIu64 ", ",
		g.relay, g.ncalls, g.nsocks, g.cfg.cpu, g.cfg.seconds, g.cfg.warmup, g.cfg.drain,
		g.cfg.tick_us, stop_now ? "true" : "false",
		(double)g.ncalls * 1e9 / (double)period_ns, srtplib_version(), srtplib_backend(),
		100.0 * cpu_s / g.cfg.seconds, own_drops(), g.unknown_source, g.other_failures,
		g.skipped);
	hist_print(out, "send_lag_us", &g.lag);
	fprintf(out, "},\n  \"directions\": {\n");
	print_dir(out, "ab", DIR_AB, g.cfg.seconds);
	fprintf(out, ",\n");
	print_dir(out, "ba", DIR_BA, g.cfg.seconds);
	fprintf(out, "\n  }\n}\n");
	if (out != stdout)
		fclose(out);
	if (g.series) {
		FILE *f = fopen(g.cfg.series_path, "w");

		if (!f)
			die("cannot write %s", g.cfg.series_path);
		fprintf(f, "ms,received,over_2ms,max_us\n");
		for (size_t i = 0; i < g.nslices; i++)
			fprintf(f, "%zu,%" PRIu32 ",%" PRIu32 ",%" PRIu32 "\n", i * 10,
				g.series[i].n, g.series[i].over, g.series[i].max_us);
		fclose(f);
		free(g.series);
	}
	for (size_t i = 0; i < g.ncalls; i++)
		for (int s = 0; s < 2; s++) {
			srtpctx_destroy(g.calls[i].s[s].tx);
			srtpctx_destroy(g.calls[i].s[s].rx);
		}
	srtplib_shutdown();
	return stop_now ? 1 : 0;
}
