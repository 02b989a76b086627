/* srtp_peer: a libsrtp2 media peer for the integration tests (through
 * srtpctx, the daemon's own wrapper; test_rekey_e2e.py drives it).
 *
 *   srtp_peer [--port N]      binds UDP 127.0.0.1:N (0, the default: any)
 *
 * It sends RTP (PT 0, 160-byte payloads every interval ms) and receives
 * RTP, both SRTP when given keys and plain without. Each payload says who
 * sent it and when: "SPR1", a counter from 0 (u64), the sender's
 * CLOCK_REALTIME in us when it protected the packet (u64), the number of
 * its send key (u32), all big-endian, then 0xff. A receiver takes the
 * arrival time from the kernel (SO_TIMESTAMPNS), so that its own
 * scheduling does not make gaps: transit = arrival - sent.
 *
 * Commands on stdin, one a line; each gets one JSON line {"re": CMD, ...}
 * on stdout (an error: {"re": CMD, "error": "..."}). Events are lines
 * {"ev": ...}. EOF on stdin ends the program. Keys are never printed.
 *
 *   dest IP PORT          where RTP goes
 *   ssrc N | seq N        the sender's SSRC and next sequence number
 *   interval MS           time between packets (a fraction is fine)
 *   roc keep|reset        at a send_key: the new key's stream goes on with
 *                         the rollover counter reached, or starts at 0
 *   send_key SUITE B64    protect with this key from the next packet on
 *                         (re: first_counter, the first packet under it)
 *   reorder N             at each later send_key, the packet due next is
 *                         one of the old key, sent after N of the new (a
 *                         late packet of the old key: reordering at the
 *                         switch); 0 (the default) turns it off
 *   recv_key SUITE B64    add a key to unprotect with; every key given is
 *                         tried, the newest first; a new key gets a stream
 *                         seeded with the rollover counter the newest key
 *                         reached (for each SSRC heard) and a fresh twin for
 *                         a sender that starts at 0 again. Packets that no
 *                         key took are held (up to HOLD_MAX, HOLD_AGE_MS)
 *                         and tried again with each new key: SRTP under a
 *                         key whose answer was not read yet ("early"); when
 *                         they are dropped they are auth failures
 *   start | stop          sending; stop says what was sent
 *   stats                 counts (see print_stats)
 *   wait_recv N MS        answers once N distinct counters arrived, or
 *                         after MS ms, with the stats either way
 *   wait_held N MS        the same, once N packets are held
 *   verbose 0|1           a line per packet received
 *
 * Events: {"ev":"ready","port":N}, {"ev":"wrap","counter":C} when the
 * sender's sequence number wraps, {"ev":"first","key":K,"counter":C,
 * "roc":"seeded|fresh|none"} at the first packet under receive key K,
 * {"ev":"pkt",...} with verbose. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "srtpbridge/sdes.h"
#include "srtpbridge/secret.h"
#include "srtpbridge/slice.h"
#include "srtpbridge/srtpctx.h"
#include "srtpbridge/srtplib.h"
#include "srtpbridge/suite.h"

#define PAYLOAD_LEN  160
#define RTP_HDR	     12
#define PKT_MAX	     1500
#define BUF_SIZE     (PKT_MAX + SRTPCTX_TRAILER_MAX)
#define MAX_KEYS     16
#define HOLD_MAX     512
#define HOLD_AGE_MS  5000
#define MAX_COUNTERS (1u << 22) /* 23 hours at 50 packets a second */
#define MAX_SSRCS    4
#define LINE_MAX_LEN 512
#define MAGIC	     "SPR1"

struct recv_key {
	struct srtpctx *ctx; /* seeded with the ROC heard, or fresh without history */
	struct srtpctx *alt; /* fresh, while the ROC question is open */
	unsigned n;
	uint64_t packets, early;
	const char *roc; /* which one authenticated first: "seeded", "fresh", "none" */
};

struct send_key {
	unsigned n;
	uint64_t first_counter, packets;
};

struct held {
	uint8_t b[BUF_SIZE];
	size_t len;
	int64_t arr_us;
	uint64_t at_ms;
};

struct peer {
	int fd;
	uint16_t port;
	struct sockaddr_in dest;
	bool has_dest;
	bool verbose;
	/* the sender */
	struct srtpctx *out; /* NULL: plain */
	struct send_key skeys[MAX_KEYS];
	unsigned nskeys;
	bool roc_keep;
	uint32_t ssrc;
	uint16_t seq;
	uint32_t ts;
	uint64_t counter; /* the next one */
	bool sending;
	double interval_ms;
	/* reorder: the old key's late packet */
	unsigned reorder;     /* N of the command */
	struct srtpctx *prev; /* the old key, until its late packet is out */
	bool late_armed;      /* the next packet is the late one */
	unsigned late_after;  /* packets of the new key still to go before it */
	uint64_t late_counter;
	uint16_t late_seq;
	uint32_t late_ts;
	unsigned late_key; /* its send key's n */
	uint64_t next_ns, last_send_ns;
	uint64_t send_errors;
	double max_send_gap_ms;
	/* the receiver */
	struct recv_key rkeys[MAX_KEYS]; /* oldest first */
	unsigned nrkeys;
	uint32_t ssrcs[MAX_SSRCS]; /* heard under the newest key */
	unsigned nssrcs;
	struct held *hold; /* a ring of HOLD_MAX */
	unsigned hold_first, nhold;
	uint8_t *seen; /* a bit per counter */
	uint64_t received, dups, reordered, auth_fail, early, rtcp, not_ours, too_big;
	uint64_t lowest, highest;
	bool any;
	int64_t last_arr_us, last_sent_us;
	double max_gap_ms, max_excess_ms, max_transit_ms;
	/* wait_recv, wait_held */
	bool waiting, wait_held;
	uint64_t wait_n, wait_until_ms;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int64_t real_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void put_be(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static uint64_t get_be(const uint8_t *p, int bytes)
{
	uint64_t v = 0;

	for (int i = 0; i < bytes; i++)
		v = v << 8 | p[i];
	return v;
}

static void out_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void out_line(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

/* ---- keys ---- */

/* suite and base64 key||salt (what follows inline:, without |lifetime or
 * |MKI) into a context of dir. 0 or an errno, with why. */
static int make_ctx(struct srtpctx **out, enum srtpctx_dir dir, const char *suite_name,
		    const char *b64, const char **why)
{
	struct sdes_key key;
	enum suite_id suite;
	uint8_t raw[SECRET_MAX];
	size_t len = 0;
	int err;

	memset(&key, 0, sizeof(key));
	*why = "unknown suite";
	if (suite_from_name(suite_name, strlen(suite_name), &suite))
		return EINVAL;
	*why = "bad base64";
	err = sdes_base64_decode(slice_from(b64), raw, sizeof(raw), &len);
	if (err)
		return err;
	*why = "key||salt length does not match the suite";
	if (len != suite_keysalt_len(suite)) {
		err = EINVAL;
		goto out;
	}
	*why = "bad key";
	err = secret_set(&key.keysalt, raw, len);
	if (err)
		goto out;
	*why = "srtpctx_create failed";
	err = srtpctx_create(out, dir, &(struct srtpctx_params){ .suite = suite, .key = &key });
out:
	secret_wipe(&key.keysalt);
	memset(raw, 0, sizeof(raw));
	return err;
}

/* ---- the sender ---- */

/* One packet with its counter, sequence number and timestamp, protected
 * with ctx (NULL: plain) under send key n, sent now. */
static void send_packet(struct peer *p, struct srtpctx *ctx, unsigned n, uint64_t counter,
			uint16_t seq, uint32_t ts)
{
	uint8_t b[BUF_SIZE];
	size_t len = RTP_HDR + PAYLOAD_LEN;

	b[0] = 0x80;
	b[1] = counter == 0 ? 0x80 : 0x00; /* the marker on the first packet, PCMU */
	put_be(b + 2, seq, 2);
	put_be(b + 4, ts, 4);
	put_be(b + 8, p->ssrc, 4);
	memset(b + RTP_HDR, 0xff, PAYLOAD_LEN);
	memcpy(b + RTP_HDR, MAGIC, 4);
	put_be(b + RTP_HDR + 4, counter, 8);
	put_be(b + RTP_HDR + 12, (uint64_t)real_us(), 8);
	put_be(b + RTP_HDR + 20, n, 4);
	if (ctx) {
		enum srtpctx_result r = srtpctx_protect_rtp(ctx, b, &len, sizeof(b));

		if (r != SRTPCTX_OK) {
			p->send_errors++;
			out_line("{\"ev\":\"protect_error\",\"counter\":%" PRIu64
				 ",\"result\":\"%s\"}",
				 counter, srtpctx_result_name(r));
		}
	}
	if (sendto(p->fd, b, len, 0, (const struct sockaddr *)&p->dest, sizeof(p->dest)) < 0)
		p->send_errors++;
}

static void send_one(struct peer *p)
{
	uint64_t now = mono_ns();
	struct send_key *k = p->nskeys ? &p->skeys[p->nskeys - 1] : NULL;

	if (p->late_armed) {
		/* the old key's packet, held back: its turn comes later */
		p->late_armed = false;
		p->late_counter = p->counter;
		p->late_seq = p->seq;
		p->late_ts = p->ts;
		p->late_after = p->reorder;
		p->skeys[p->late_key - 1].packets++;
	} else {
		send_packet(p, p->out, k ? k->n : 0, p->counter, p->seq, p->ts);
		if (k)
			k->packets++;
		if (p->prev && --p->late_after == 0) {
			send_packet(p, p->prev, p->late_key, p->late_counter, p->late_seq,
				    p->late_ts);
			srtpctx_destroy(p->prev);
			p->prev = NULL;
		}
	}
	if (p->last_send_ns) {
		double gap = (double)(now - p->last_send_ns) / 1e6;

		if (gap > p->max_send_gap_ms)
			p->max_send_gap_ms = gap;
	}
	p->last_send_ns = now;
	p->counter++;
	p->ts += 160;
	p->seq++;
	if (p->seq == 0)
		out_line("{\"ev\":\"wrap\",\"counter\":%" PRIu64 "}", p->counter);
}

/* Sends what is due; returns the poll timeout (ms) until the next packet. */
static int sender_run(struct peer *p)
{
	uint64_t now = mono_ns(), step = (uint64_t)(p->interval_ms * 1e6);

	if (!p->sending || !p->has_dest)
		return -1;
	/* after a stall, at most a few packets catch up: no burst */
	if (now > p->next_ns + 5 * step)
		p->next_ns = now;
	while (p->next_ns <= now) {
		send_one(p);
		p->next_ns += step;
	}
	return (int)((p->next_ns - now + 999999) / 1000000);
}

/* ---- the receiver ---- */

static bool seen_test_set(struct peer *p, uint64_t c)
{
	uint8_t bit = (uint8_t)(1u << (c & 7));
	bool was = p->seen[c >> 3] & bit;

	p->seen[c >> 3] |= bit;
	return was;
}

/* A packet in the clear in b[0..len). */
static void record(struct peer *p, const uint8_t *b, size_t len, int64_t arr_us, int key)
{
	size_t hl;
	uint64_t counter;
	int64_t sent_us;

	if (len < RTP_HDR || (b[0] >> 6) != 2) {
		p->not_ours++;
		return;
	}
	hl = RTP_HDR + 4u * (b[0] & 0x0f);
	if ((b[0] & 0x10) && len >= hl + 4)
		hl += 4 + 4 * get_be(b + hl + 2, 2);
	if (len < hl + 24 || memcmp(b + hl, MAGIC, 4) != 0) {
		p->not_ours++;
		return;
	}
	counter = get_be(b + hl + 4, 8);
	sent_us = (int64_t)get_be(b + hl + 12, 8);
	if (counter >= MAX_COUNTERS) {
		p->too_big++;
		return;
	}
	if (seen_test_set(p, counter)) {
		p->dups++;
		return;
	}
	p->received++;
	if (p->any) {
		double gap = (double)(arr_us - p->last_arr_us) / 1e3;
		double excess = gap - (double)(sent_us - p->last_sent_us) / 1e3;

		if (counter < p->highest)
			p->reordered++;
		if (gap > p->max_gap_ms)
			p->max_gap_ms = gap;
		if (excess > p->max_excess_ms)
			p->max_excess_ms = excess;
	}
	if (!p->any || counter > p->highest)
		p->highest = counter;
	if (!p->any || counter < p->lowest)
		p->lowest = counter;
	if ((double)(arr_us - sent_us) / 1e3 > p->max_transit_ms)
		p->max_transit_ms = (double)(arr_us - sent_us) / 1e3;
	p->any = true;
	p->last_arr_us = arr_us;
	p->last_sent_us = sent_us;
	if (p->verbose)
		out_line("{\"ev\":\"pkt\",\"counter\":%" PRIu64 ",\"key\":%d,\"seq\":%u,"
			 "\"transit_ms\":%.3f}",
			 counter, key, (unsigned)get_be(b + 2, 2),
			 (double)(arr_us - sent_us) / 1e3);
}

static uint32_t ssrc_of(const uint8_t *b)
{
	return (uint32_t)get_be(b + 8, 4);
}

static void note_ssrc(struct peer *p, uint32_t ssrc)
{
	for (unsigned i = 0; i < p->nssrcs; i++)
		if (p->ssrcs[i] == ssrc)
			return;
	if (p->nssrcs == MAX_SSRCS)
		memmove(p->ssrcs, p->ssrcs + 1, (MAX_SSRCS - 1) * sizeof(p->ssrcs[0]));
	else
		p->nssrcs++;
	p->ssrcs[p->nssrcs - 1] = ssrc;
}

static bool try_ctx(struct srtpctx *c, const uint8_t *b, size_t len, uint8_t *copy, size_t *n)
{
	memcpy(copy, b, len);
	*n = len;
	return srtpctx_unprotect_rtp(c, copy, n) == SRTPCTX_OK;
}

/* Tries every key, the newest first. true: taken (recorded). */
static bool unprotect_any(struct peer *p, const uint8_t *b, size_t len, int64_t arr_us, bool early)
{
	uint8_t copy[BUF_SIZE];
	size_t n;

	for (int i = (int)p->nrkeys - 1; i >= 0; i--) {
		struct recv_key *k = &p->rkeys[i];
		const char *how = NULL;

		if (try_ctx(k->ctx, b, len, copy, &n)) {
			how = k->alt ? "seeded" : "none";
			if (k->alt) {
				srtpctx_destroy(k->alt);
				k->alt = NULL;
			}
		} else if (k->alt && try_ctx(k->alt, b, len, copy, &n)) {
			how = "fresh";
			srtpctx_destroy(k->ctx);
			k->ctx = k->alt;
			k->alt = NULL;
		} else {
			continue;
		}
		if (!k->roc)
			k->roc = how;
		if (k->packets == 0)
			out_line("{\"ev\":\"first\",\"key\":%u,\"roc\":\"%s\",\"early\":%s}", k->n,
				 k->roc, early ? "true" : "false");
		k->packets++;
		if (early) {
			k->early++;
			p->early++;
		}
		if ((unsigned)i == p->nrkeys - 1)
			note_ssrc(p, ssrc_of(copy));
		record(p, copy, n, arr_us, (int)k->n);
		return true;
	}
	return false;
}

static void hold_drop_oldest(struct peer *p)
{
	p->hold_first = (p->hold_first + 1) % HOLD_MAX;
	p->nhold--;
	p->auth_fail++;
}

static void hold_add(struct peer *p, const uint8_t *b, size_t len, int64_t arr_us)
{
	struct held *h;

	if (p->nhold == HOLD_MAX)
		hold_drop_oldest(p);
	h = &p->hold[(p->hold_first + p->nhold) % HOLD_MAX];
	memcpy(h->b, b, len);
	h->len = len;
	h->arr_us = arr_us;
	h->at_ms = mono_ns() / 1000000u;
	p->nhold++;
}

static void hold_expire(struct peer *p)
{
	uint64_t now = mono_ns() / 1000000u;

	while (p->nhold && now - p->hold[p->hold_first].at_ms >= HOLD_AGE_MS)
		hold_drop_oldest(p);
}

/* A new key: what was held is tried again, in order; what fails again
 * stays held for the next key or its age. */
static void hold_retry(struct peer *p)
{
	unsigned n = p->nhold;

	for (unsigned i = 0; i < n; i++) {
		struct held *h = &p->hold[p->hold_first];

		p->hold_first = (p->hold_first + 1) % HOLD_MAX;
		p->nhold--;
		if (!unprotect_any(p, h->b, h->len, h->arr_us, true))
			hold_add(p, h->b, h->len, h->arr_us);
	}
}

static void on_packet(struct peer *p, const uint8_t *b, size_t len, int64_t arr_us)
{
	if (len >= 2 && b[1] >= 192 && b[1] <= 223) {
		p->rtcp++; /* RTCP (RFC 5761 section 4): not what this peer checks */
		return;
	}
	if (!p->nrkeys) {
		record(p, b, len, arr_us, 0);
		return;
	}
	if (len < RTP_HDR) {
		p->not_ours++;
		return;
	}
	if (!unprotect_any(p, b, len, arr_us, false))
		hold_add(p, b, len, arr_us);
}

static void receive_all(struct peer *p)
{
	for (;;) {
		uint8_t b[BUF_SIZE];
		char cbuf[CMSG_SPACE(sizeof(struct timespec))];
		struct iovec iov = { b, PKT_MAX };
		struct msghdr mh = { .msg_iov = &iov,
				     .msg_iovlen = 1,
				     .msg_control = cbuf,
				     .msg_controllen = sizeof(cbuf) };
		int64_t arr_us = real_us();
		ssize_t n = recvmsg(p->fd, &mh, MSG_DONTWAIT);

		if (n < 0)
			return;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
				struct timespec ts;

				memcpy(&ts, CMSG_DATA(c), sizeof(ts));
				arr_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
			}
		on_packet(p, b, (size_t)n, arr_us);
	}
}

/* ---- commands ---- */

static uint64_t missing(const struct peer *p)
{
	/* counters start at 0: whatever below the highest did not arrive */
	return p->any ? p->highest + 1 - p->received : 0;
}

static void print_stats(const struct peer *p, const char *re)
{
	char keys[2048];
	size_t off = 0;

	off += (size_t)snprintf(keys + off, sizeof(keys) - off, "[");
	for (unsigned i = 0; i < p->nskeys && off < sizeof(keys); i++)
		off += (size_t)snprintf(keys + off, sizeof(keys) - off,
					"%s{\"n\":%u,\"first_counter\":%" PRIu64
					",\"packets\":%" PRIu64 "}",
					i ? "," : "", p->skeys[i].n, p->skeys[i].first_counter,
					p->skeys[i].packets);
	if (off < sizeof(keys))
		off += (size_t)snprintf(keys + off, sizeof(keys) - off, "],\"recv_keys\":[");
	for (unsigned i = 0; i < p->nrkeys && off < sizeof(keys); i++)
		off += (size_t)snprintf(keys + off, sizeof(keys) - off,
					"%s{\"n\":%u,\"packets\":%" PRIu64 ",\"early\":%" PRIu64
					",\"roc\":\"%s\"}",
					i ? "," : "", p->rkeys[i].n, p->rkeys[i].packets,
					p->rkeys[i].early, p->rkeys[i].roc ? p->rkeys[i].roc : "");
	if (off < sizeof(keys))
		snprintf(keys + off, sizeof(keys) - off, "]");
	out_line("{\"re\":\"%s\",\"sending\":%s,\"sent\":%" PRIu64 ",\"send_errors\":%" PRIu64
		 ",\"max_send_gap_ms\":%.3f,\"received\":%" PRIu64 ",\"lowest\":%" PRIu64
		 ",\"highest\":%" PRId64 ",\"missing\":%" PRIu64 ",\"dups\":%" PRIu64
		 ",\"reordered\":%" PRIu64 ",\"auth_fail\":%" PRIu64 ",\"held\":%u"
		 ",\"early\":%" PRIu64 ",\"rtcp\":%" PRIu64 ",\"not_ours\":%" PRIu64
		 ",\"too_big\":%" PRIu64 ",\"max_gap_ms\":%.3f,\"max_excess_gap_ms\":%.3f"
		 ",\"max_transit_ms\":%.3f,\"send_keys\":%s}",
		 re, p->sending ? "true" : "false", p->counter, p->send_errors, p->max_send_gap_ms,
		 p->received, p->any ? p->lowest : 0, p->any ? (int64_t)p->highest : (int64_t)-1,
		 missing(p), p->dups, p->reordered, p->auth_fail, p->nhold, p->early, p->rtcp,
		 p->not_ours, p->too_big, p->max_gap_ms, p->max_excess_ms, p->max_transit_ms, keys);
}

static void cmd_send_key(struct peer *p, const char *suite, const char *b64)
{
	struct srtpctx *c = NULL;
	const char *why;
	uint32_t roc = 0;
	bool seeded = false;
	unsigned late;

	if (p->nskeys == MAX_KEYS) {
		out_line("{\"re\":\"send_key\",\"error\":\"too many keys\"}");
		return;
	}
	if (make_ctx(&c, SRTPCTX_OUTBOUND, suite, b64, &why)) {
		out_line("{\"re\":\"send_key\",\"error\":\"%s\"}", why);
		return;
	}
	/* keep: our stream goes on under the new key where the old one left
	 * it; reset (or nothing sent yet): the new key's stream starts at 0 */
	if (p->out && p->roc_keep && srtpctx_get_roc(p->out, p->ssrc, &roc) == 0 && roc) {
		if (srtpctx_add_stream(c, p->ssrc, roc)) {
			srtpctx_destroy(c);
			out_line("{\"re\":\"send_key\",\"error\":\"srtpctx_add_stream failed\"}");
			return;
		}
		seeded = true;
	}
	if (p->prev) {
		out_line("{\"re\":\"send_key\",\"error\":\"the last switch's late packet is not "
			 "out\"}");
		srtpctx_destroy(c);
		return;
	}
	late = p->reorder && p->out && p->nskeys;
	if (late) {
		p->prev = p->out;
		p->late_armed = true;
		p->late_key = p->nskeys;
	} else {
		srtpctx_destroy(p->out);
	}
	p->out = c;
	p->skeys[p->nskeys] = (struct send_key){ p->nskeys + 1, p->counter + late, 0 };
	p->nskeys++;
	out_line("{\"re\":\"send_key\",\"n\":%u,\"first_counter\":%" PRIu64
		 ",\"roc\":%u,\"seeded\":%s,\"late_counter\":%" PRId64 "}",
		 p->nskeys, p->counter + late, roc, seeded ? "true" : "false",
		 late ? (int64_t)p->counter : (int64_t)-1);
}

static void cmd_recv_key(struct peer *p, const char *suite, const char *b64)
{
	struct recv_key *k;
	const char *why;
	unsigned seeded = 0, held;

	if (p->nrkeys == MAX_KEYS) {
		out_line("{\"re\":\"recv_key\",\"error\":\"too many keys\"}");
		return;
	}
	k = &p->rkeys[p->nrkeys];
	memset(k, 0, sizeof(*k));
	if (make_ctx(&k->ctx, SRTPCTX_INBOUND, suite, b64, &why)) {
		out_line("{\"re\":\"recv_key\",\"error\":\"%s\"}", why);
		return;
	}
	/* the ROC each SSRC reached under the newest key so far */
	if (p->nrkeys && p->nssrcs) {
		struct recv_key *last = &p->rkeys[p->nrkeys - 1];

		for (unsigned i = 0; i < p->nssrcs; i++) {
			uint32_t roc;

			if (srtpctx_get_roc(last->ctx, p->ssrcs[i], &roc) == 0 &&
			    srtpctx_add_stream(k->ctx, p->ssrcs[i], roc) == 0)
				seeded++;
		}
		if (seeded && make_ctx(&k->alt, SRTPCTX_INBOUND, suite, b64, &why)) {
			srtpctx_destroy(k->ctx);
			out_line("{\"re\":\"recv_key\",\"error\":\"%s\"}", why);
			return;
		}
	}
	k->n = ++p->nrkeys;
	p->nssrcs = 0; /* heard under the new key from now on */
	held = p->nhold;
	hold_retry(p);
	out_line("{\"re\":\"recv_key\",\"n\":%u,\"seeded_ssrcs\":%u,\"held_before\":%u"
		 ",\"early\":%" PRIu64 ",\"held\":%u}",
		 k->n, seeded, held, k->early, p->nhold);
}

static void command(struct peer *p, char *line)
{
	char *argv[4] = { 0 };
	int argc = 0;

	for (char *t = strtok(line, " \t\r\n"); t && argc < 4; t = strtok(NULL, " \t\r\n"))
		argv[argc++] = t;
	if (!argc)
		return;
	if (!strcmp(argv[0], "dest") && argc == 3) {
		memset(&p->dest, 0, sizeof(p->dest));
		p->dest.sin_family = AF_INET;
		p->dest.sin_port = htons((uint16_t)atoi(argv[2]));
		if (inet_pton(AF_INET, argv[1], &p->dest.sin_addr) != 1) {
			out_line("{\"re\":\"dest\",\"error\":\"bad address\"}");
			return;
		}
		p->has_dest = true;
		out_line("{\"re\":\"dest\"}");
	} else if (!strcmp(argv[0], "ssrc") && argc == 2) {
		p->ssrc = (uint32_t)strtoul(argv[1], NULL, 0);
		out_line("{\"re\":\"ssrc\",\"ssrc\":%u}", p->ssrc);
	} else if (!strcmp(argv[0], "seq") && argc == 2) {
		p->seq = (uint16_t)strtoul(argv[1], NULL, 0);
		out_line("{\"re\":\"seq\",\"seq\":%u}", p->seq);
	} else if (!strcmp(argv[0], "interval") && argc == 2 && atof(argv[1]) >= 0.1) {
		p->interval_ms = atof(argv[1]);
		p->next_ns = mono_ns();
		out_line("{\"re\":\"interval\",\"ms\":%.3f}", p->interval_ms);
	} else if (!strcmp(argv[0], "roc") && argc == 2 &&
		   (!strcmp(argv[1], "keep") || !strcmp(argv[1], "reset"))) {
		p->roc_keep = !strcmp(argv[1], "keep");
		out_line("{\"re\":\"roc\",\"roc\":\"%s\"}", argv[1]);
	} else if (!strcmp(argv[0], "send_key") && argc == 3) {
		cmd_send_key(p, argv[1], argv[2]);
	} else if (!strcmp(argv[0], "recv_key") && argc == 3) {
		cmd_recv_key(p, argv[1], argv[2]);
	} else if (!strcmp(argv[0], "start")) {
		if (!p->sending)
			p->next_ns = mono_ns();
		p->sending = true;
		out_line("{\"re\":\"start\",\"counter\":%" PRIu64 "}", p->counter);
	} else if (!strcmp(argv[0], "stop")) {
		p->sending = false;
		print_stats(p, "stop");
	} else if (!strcmp(argv[0], "stats")) {
		print_stats(p, "stats");
	} else if (!strcmp(argv[0], "reorder") && argc == 2) {
		p->reorder = (unsigned)strtoul(argv[1], NULL, 0);
		out_line("{\"re\":\"reorder\",\"n\":%u}", p->reorder);
	} else if ((!strcmp(argv[0], "wait_recv") || !strcmp(argv[0], "wait_held")) && argc == 3) {
		p->waiting = true;
		p->wait_held = !strcmp(argv[0], "wait_held");
		p->wait_n = strtoull(argv[1], NULL, 0);
		p->wait_until_ms = mono_ns() / 1000000u + strtoull(argv[2], NULL, 0);
	} else if (!strcmp(argv[0], "verbose") && argc == 2) {
		p->verbose = atoi(argv[1]) != 0;
		out_line("{\"re\":\"verbose\"}");
	} else {
		out_line("{\"re\":\"%s\",\"error\":\"unknown command or wrong arguments\"}",
			 argv[0][0] == '"' ? "?" : argv[0]);
	}
}

/* Reads what stdin has; runs each whole line. false at EOF. */
static bool read_commands(struct peer *p, char *buf, size_t *have)
{
	ssize_t n = read(STDIN_FILENO, buf + *have, LINE_MAX_LEN - 1 - *have);
	char *nl;

	if (n <= 0)
		return n < 0 && errno == EINTR;
	*have += (size_t)n;
	buf[*have] = '\0';
	while ((nl = strchr(buf, '\n'))) {
		size_t len = (size_t)(nl - buf) + 1;

		*nl = '\0';
		command(p, buf);
		memmove(buf, buf + len, *have - len + 1);
		*have -= len;
	}
	if (*have == LINE_MAX_LEN - 1)
		*have = 0; /* a line too long: dropped */
	return true;
}

static int peer_open(struct peer *p, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	socklen_t alen = sizeof(a);
	int one = 1;

	p->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (p->fd < 0)
		return errno;
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	if (setsockopt(p->fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one)) ||
	    bind(p->fd, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockname(p->fd, (struct sockaddr *)&a, &alen))
		return errno;
	p->port = ntohs(a.sin_port);
	return 0;
}

int main(int argc, char **argv)
{
	static struct peer p;
	char line[LINE_MAX_LEN];
	size_t have = 0;
	unsigned long port = 0;
	int err;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--port") && i + 1 < argc) {
			port = strtoul(argv[++i], NULL, 10);
		} else {
			fprintf(stderr, "usage: %s [--port N]  (commands on stdin)\n", argv[0]);
			return 2;
		}
	}
	if (port > 65535 || srtplib_init()) {
		fprintf(stderr, "srtp_peer: bad port or srtp_init failed\n");
		return 1;
	}
	p.seen = calloc(MAX_COUNTERS / 8, 1);
	p.hold = calloc(HOLD_MAX, sizeof(*p.hold));
	if (!p.seen || !p.hold) {
		fprintf(stderr, "srtp_peer: out of memory\n");
		return 1;
	}
	err = peer_open(&p, (uint16_t)port);
	if (err) {
		fprintf(stderr, "srtp_peer: cannot bind 127.0.0.1:%lu: %s\n", port, strerror(err));
		return 1;
	}
	RAND_bytes((unsigned char *)&p.ssrc, sizeof(p.ssrc));
	RAND_bytes((unsigned char *)&p.seq, sizeof(p.seq));
	p.roc_keep = true;
	p.interval_ms = 20;
	out_line("{\"ev\":\"ready\",\"port\":%u}", p.port);
	for (;;) {
		struct pollfd fds[2] = { { STDIN_FILENO, POLLIN, 0 }, { p.fd, POLLIN, 0 } };
		int timeout = sender_run(&p);

		if (p.waiting) {
			uint64_t now = mono_ns() / 1000000u;

			if ((p.wait_held ? p.nhold : p.received) >= p.wait_n ||
			    now >= p.wait_until_ms) {
				p.waiting = false;
				print_stats(&p, p.wait_held ? "wait_held" : "wait_recv");
			} else if (timeout < 0 || (uint64_t)timeout > p.wait_until_ms - now) {
				timeout = (int)(p.wait_until_ms - now);
			}
		}
		if (p.nhold && (timeout < 0 || timeout > 100))
			timeout = 100;
		if (poll(fds, 2, timeout) < 0 && errno != EINTR)
			break;
		if (fds[1].revents & POLLIN)
			receive_all(&p);
		hold_expire(&p);
		if ((fds[0].revents & (POLLIN | POLLHUP)) && !read_commands(&p, line, &have))
			break;
	}
	srtpctx_destroy(p.out);
	srtpctx_destroy(p.prev);
	for (unsigned i = 0; i < p.nrkeys; i++) {
		srtpctx_destroy(p.rkeys[i].ctx);
		srtpctx_destroy(p.rkeys[i].alt);
	}
	close(p.fd);
	free(p.seen);
	free(p.hold);
	srtplib_shutdown();
	return 0;
}
