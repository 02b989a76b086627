/* rekey: re-keying in the media worker (relay.h: struct relay_epoch,
 * relay_session_epochs, RELAY_REKEY_GRACE_MS) over real sockets on
 * 127.0.0.1, as in test_relay.c: test sockets play the carrier (secure leg
 * A, with libsrtp2 through srtpctx at its end) and the IVR (plain leg B); a
 * media session from a real port pool sits between them, run by a real
 * relay thread.
 *
 * Every update is waited for before the carrier uses what it brought: each
 * update also moves leg A's RTCP address to the carrier's other RTCP
 * socket, and the IVR sends RTCP until a packet reaches that socket. The
 * worker then runs the update, and every packet sent after that meets it.
 *
 * Each carrier packet carries its number (idx) in the first four payload
 * bytes; the IVR checks that every number arrives exactly once and byte for
 * byte as sent. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <event2/event.h>

#include "srtpbridge/media_session.h"
#include "srtpbridge/portpool.h"
#include "srtpbridge/relay.h"
#include "srtpbridge/sdes.h"
#include "srtpbridge/secret.h"
#include "srtpbridge/srtpctx.h"
#include "srtpbridge/srtplib.h"
#include "srtpbridge/suite.h"

#include "relay_io_fixture.h"
#include "srtp_fixture.h"
#include "udp_fixture.h"

#define WAIT_MS	    3000 /* the deadline of anything that should happen */
#define BUF_SIZE    (1500 + SRTPCTX_TRAILER_MAX)
#define PAYLOAD_LEN 160
#define PKT_LEN	    (12 + PAYLOAD_LEN)
#define SUITE	    SUITE_AES_CM_128_HMAC_SHA1_80
#define TAG_LEN	    10
#define CAR_SSRC    0xca11ab1eu
#define CAR_SSRC2   0x5ca1ab1eu /* the carrier's source after a re-key with a new SSRC */
#define PROBE_IDX   0xffffffffu /* a packet that must never reach the IVR */
#define LEG_A	    MEDIA_LEG_A
#define LEG_B	    MEDIA_LEG_B
#define MAX_CTX	    16
#define MAX_KEYS    8
#define MAX_EPOCHS  64
#define TALLY_MAX   16384
/* free_block's range: 500 blocks of 16 ports, below the ephemeral range and
 * away from test_relay.c's (21000..29000). */
#define PORT_BASE   13000
#define PORT_BLOCKS 500

/* ---- sockets (the rest is in udp_fixture.h) ---- */

/* How many datagrams were waiting on fd; they are read. */
static unsigned drain(int fd)
{
	uint8_t b[BUF_SIZE];
	struct sockaddr_in src;
	unsigned n = 0;

	while (recv_within(fd, b, sizeof(b), 0, &src) >= 0)
		n++;
	return n;
}

/* ---- packets ---- */

/* The IVR's RTP: payload that starts with seq and ssrc's low half. */
static size_t build_rtp(uint8_t *p, uint8_t pt, uint16_t seq, uint32_t ts, uint32_t ssrc)
{
	p[0] = 0x80;
	p[1] = pt;
	be16_put(p + 2, seq);
	be32_put(p + 4, ts);
	be32_put(p + 8, ssrc);
	be16_put(p + 12, seq);
	be16_put(p + 14, (uint16_t)ssrc);
	for (size_t i = 4; i < PAYLOAD_LEN; i++)
		p[12 + i] = (uint8_t)(i * 13 + seq * 7 + pt);
	return PKT_LEN;
}

/* An RR from ssrc with one report block about `about`. */
static size_t build_rr(uint8_t *p, uint32_t ssrc, uint32_t about)
{
	p[0] = 0x81;
	p[1] = 201;
	be16_put(p + 2, 7); /* 32 bytes */
	be32_put(p + 4, ssrc);
	be32_put(p + 8, about);
	for (size_t i = 12; i < 32; i++)
		p[i] = (uint8_t)(i * 3);
	return 32;
}

/* The carrier's packets: idx < n_old under the old key's source, the rest
 * under the new key's (the same SSRC continuing its sequence, or another). */
struct plan {
	uint32_t ssrc[2];
	uint16_t seq[2]; /* the first sequence number of each */
	unsigned n_old;
};

static struct plan plan_same(uint16_t seq0, unsigned n_old)
{
	return (struct plan){ .ssrc = { CAR_SSRC, CAR_SSRC },
			      .seq = { seq0, (uint16_t)(seq0 + n_old) },
			      .n_old = n_old };
}

/* RTP with PT 0 and a payload that starts with idx. */
static size_t build_car(uint8_t *p, uint16_t seq, uint32_t ssrc, uint32_t idx)
{
	p[0] = 0x80;
	p[1] = 0;
	be16_put(p + 2, seq);
	be32_put(p + 4, 160000u + 160u * idx);
	be32_put(p + 8, ssrc);
	be32_put(p + 12, idx);
	for (size_t i = 4; i < PAYLOAD_LEN; i++)
		p[12 + i] = (uint8_t)(i * 13 + idx * 7);
	return PKT_LEN;
}

static size_t plan_packet(const struct plan *pl, unsigned idx, uint8_t *p)
{
	int k = idx >= pl->n_old;
	unsigned j = k ? idx - pl->n_old : idx;

	return build_car(p, (uint16_t)(pl->seq[k] + j), pl->ssrc[k], idx);
}

/* ---- keys and carrier contexts ---- */

static void random_key(struct sdes_key *k)
{
	memset(k, 0, sizeof(*k));
	assert_int_equal(secret_random(&k->keysalt, suite_keysalt_len(SUITE)), 0);
}

static void set_mki(struct sdes_key *k, uint64_t mki, unsigned len)
{
	k->has_mki = true;
	k->mki = mki;
	k->mki_len = len;
}

/* ---- the fixture ---- */

/* What the IVR got of the carrier's packets 0..total-1. */
struct tally {
	unsigned total, got;
	uint8_t seen[TALLY_MAX];
	uint64_t last_ms, max_gap_ms;
};

struct fx {
	struct event_base *base;
	struct relay *r;
	struct portpool *pool;
	struct media_session *s;
	struct relay_stream_params p[2][RELAY_MAX_STREAMS];
	/* srtpbridge's sockets */
	struct sockaddr_in a_rtp, b_rtp, b_rtcp;
	/* the carrier: RTP, and two RTCP sockets that leg A's SDP names in
	 * turn (fx_apply) */
	int car, car_rtcp[2];
	struct sockaddr_in car_at, car_rtcp_at[2];
	unsigned rtcp_now;
	struct srtpctx *tx; /* under leg A's peer key */
	struct srtpctx *rx; /* under leg A's own key (ours) */
	/* every context a test made, destroyed with the fixture */
	struct srtpctx *ctx[MAX_CTX];
	struct sdes_key keys[MAX_KEYS]; /* copies a test keeps, wiped with it */
	/* the IVR */
	int ivr, ivr_rtcp;
	struct sockaddr_in ivr_at, ivr_rtcp_at;
	uint16_t ivr_seq;
	uint32_t ivr_ts, ivr_ssrc;
	/* what the carrier has seen of srtpbridge's RTP */
	bool seen;
	uint32_t bridge_ssrc;
	uint16_t out_seq;
	/* packets (RTP and RTCP) srtpbridge sent the carrier; to_car_mid: the
	 * count when the last fx_apply's update took effect */
	uint64_t to_car, to_car_mid;
	struct tally t;
	bool live;
};

/* One at a time, here so that a failed test's teardown can release it. */
static struct fx the_fx;

static const struct relay_session *rs(const struct fx *f)
{
	return media_session_relay(f->s);
}

static struct srtpctx *fx_ctx(struct fx *f, enum srtpctx_dir dir, const struct sdes_key *k)
{
	struct srtpctx_params p = { .suite = SUITE, .key = k };

	for (int i = 0; i < MAX_CTX; i++)
		if (!f->ctx[i]) {
			assert_int_equal(srtpctx_create(&f->ctx[i], dir, &p), 0);
			return f->ctx[i];
		}
	fail_msg("too many contexts");
	return NULL;
}

/* A context whose stream for ssrc starts at rollover counter roc. */
static struct srtpctx *fx_ctx_roc(struct fx *f, enum srtpctx_dir dir, const struct sdes_key *k,
				  uint32_t ssrc, uint32_t roc)
{
	struct srtpctx *c = fx_ctx(f, dir, k);

	assert_int_equal(srtpctx_add_stream(c, ssrc, roc), 0);
	return c;
}

static void fx_ctx_free(struct fx *f, struct srtpctx *c)
{
	for (int i = 0; c && i < MAX_CTX; i++)
		if (f->ctx[i] == c) {
			srtpctx_destroy(c);
			f->ctx[i] = NULL;
			return;
		}
	fail_msg("not a context of the fixture");
}

static void fx_release(struct fx *f);

/* Everything but the first update: leg A secure with random keys (its peer
 * "sends" under `peer`), leg B plain. */
static struct fx *fx_init(void)
{
	struct fx *f = &the_fx;
	uint16_t base = free_block(PORT_BASE, PORT_BLOCKS);
	struct relay_stream_params *a, *b;

	if (f->live)
		fx_release(f);
	memset(f, 0, sizeof(*f));
	f->car = f->car_rtcp[0] = f->car_rtcp[1] = f->ivr = f->ivr_rtcp = -1;
	f->live = true;
	f->base = event_base_new();
	assert_non_null(f->base);
	assert_int_equal(relay_create(&f->r, f->base, 1, test_relay_io(), NULL, NULL), 0);
	assert_relay_io(f->r);
	assert_int_equal(portpool_create(&f->pool, base, (uint16_t)(base + 15), 0, NULL, NULL), 0);
	assert_int_equal(media_session_create(&f->s, f->pool, f->r, "127.0.0.1", "127.0.0.1", 1),
			 0);
	f->a_rtp = loopback(media_session_port(f->s, LEG_A, 0));
	f->b_rtp = loopback(media_session_port(f->s, LEG_B, 0));
	f->b_rtcp = loopback((uint16_t)(media_session_port(f->s, LEG_B, 0) + 1));

	f->car = udp_socket(&f->car_at);
	f->car_rtcp[0] = udp_socket(&f->car_rtcp_at[0]);
	f->car_rtcp[1] = udp_socket(&f->car_rtcp_at[1]);
	f->ivr = udp_socket(&f->ivr_at);
	f->ivr_rtcp = udp_socket(&f->ivr_rtcp_at);

	a = &f->p[LEG_A][0];
	a->active = true;
	a->secure = true;
	a->suite = SUITE;
	random_key(&a->ours);
	random_key(&a->peer);
	set_addr(&a->rtp, &a->rtp_len, &f->car_at);
	set_addr(&a->rtcp, &a->rtcp_len, &f->car_rtcp_at[0]);
	a->latching = LATCH_STRICT;
	a->rekey_roc = REKEY_ROC_KEEP;
	a->peer_msg = "INVITE";
	a->our_msg = "200";
	b = &f->p[LEG_B][0];
	b->active = true;
	set_addr(&b->rtp, &b->rtp_len, &f->ivr_at);
	set_addr(&b->rtcp, &b->rtcp_len, &f->ivr_rtcp_at);
	b->latching = LATCH_STRICT;

	f->ivr_seq = 1000;
	f->ivr_ts = 80000;
	f->ivr_ssrc = 0x1c0ffee1u;
	return f;
}

/* The carrier's contexts from leg A's keys as they are now: it protects
 * with the key it announced (our `peer`) and unprotects with ours. */
static void fx_carrier_keys(struct fx *f)
{
	if (f->tx)
		fx_ctx_free(f, f->tx);
	if (f->rx)
		fx_ctx_free(f, f->rx);
	f->tx = fx_ctx(f, SRTPCTX_OUTBOUND, &f->p[LEG_A][0].peer);
	f->rx = fx_ctx(f, SRTPCTX_INBOUND, &f->p[LEG_A][0].ours);
}

/* Hands f->p to the worker and waits until it runs it: leg A's RTCP moves
 * to the carrier's other RTCP socket, and the IVR sends RTCP until a packet
 * reaches that socket (the worker reads the IVR's socket in order: every
 * earlier packet was relayed before, under the old parameters, and is
 * waiting on the old socket by then). tick, when given, runs every ~5 ms
 * meanwhile (a stream that goes on during the update). */
static void fx_apply(struct fx *f, void (*tick)(struct fx *f, void *arg), void *arg)
{
	struct relay_stream_params *a = &f->p[LEG_A][0];
	unsigned old = f->rtcp_now, now = !old;
	uint64_t deadline;

	set_addr(&a->rtcp, &a->rtcp_len, &f->car_rtcp_at[now]);
	f->rtcp_now = now;
	assert_int_equal(media_session_update(f->s, (const void *)f->p, 1), 0);
	deadline = mono_ms() + WAIT_MS;
	for (;;) {
		uint8_t plain[BUF_SIZE], b[BUF_SIZE];
		struct sockaddr_in src;
		size_t n = build_rr(plain, f->ivr_ssrc, CAR_SSRC);

		send_to(f->ivr_rtcp, plain, n, &f->b_rtcp);
		if (recv_within(f->car_rtcp[now], b, sizeof(b), tick ? 5 : 50, &src) >= 0)
			break;
		if (mono_ms() > deadline)
			fail_msg("the update did not take effect within %d ms", WAIT_MS);
		if (tick)
			tick(f, arg);
	}
	f->to_car += drain(f->car_rtcp[old]);
	f->to_car_mid = f->to_car;
	f->to_car += 1 + drain(f->car_rtcp[now]);
}

static struct fx *fx_start(void)
{
	struct fx *f = fx_init();

	fx_carrier_keys(f);
	fx_apply(f, NULL, NULL);
	return f;
}

/* Frees everything without a check: also the teardown of a failed test. */
static void fx_release(struct fx *f)
{
	uint64_t deadline = mono_ms() + WAIT_MS;

	media_session_destroy(f->s);
	while (f->s && portpool_in_use_count(f->pool) != 0 && mono_ms() < deadline) {
		event_base_loop(f->base, EVLOOP_NONBLOCK);
		nap_ms(1);
	}
	relay_destroy(f->r); /* finishes what is left */
	portpool_destroy(f->pool);
	if (f->base)
		event_base_free(f->base);
	close_fd(&f->car);
	close_fd(&f->car_rtcp[0]);
	close_fd(&f->car_rtcp[1]);
	close_fd(&f->ivr);
	close_fd(&f->ivr_rtcp);
	for (int i = 0; i < MAX_CTX; i++)
		srtpctx_destroy(f->ctx[i]);
	for (int i = 0; i < MAX_KEYS; i++)
		secret_wipe(&f->keys[i].keysalt);
	for (int leg = 0; leg < 2; leg++) {
		secret_wipe(&f->p[leg][0].ours.keysalt);
		secret_wipe(&f->p[leg][0].peer.keysalt);
	}
	memset(f, 0, sizeof(*f));
}

/* The removal the daemon does: the session is destroyed, the main loop
 * turns until its ports are back in the pool, then the relay goes. */
static void fx_fini(struct fx *f)
{
	uint64_t deadline = mono_ms() + WAIT_MS;

	media_session_destroy(f->s);
	f->s = NULL;
	while (portpool_in_use_count(f->pool) != 0) {
		if (mono_ms() > deadline)
			fail_msg("the session's ports did not come back");
		event_base_loop(f->base, EVLOOP_NONBLOCK);
		nap_ms(1);
	}
	fx_release(f);
}

static int teardown_test(void **state)
{
	(void)state;
	if (the_fx.live)
		fx_release(&the_fx);
	return 0;
}

/* Leg A's peer key becomes k (a copy), carried by msg; in force on return. */
static void fx_peer_key(struct fx *f, const struct sdes_key *k, const char *msg)
{
	struct relay_stream_params *a = &f->p[LEG_A][0];

	secret_wipe(&a->peer.keysalt);
	a->peer = *k;
	a->peer_msg = msg;
	fx_apply(f, NULL, NULL);
}

/* ---- counters and epochs ---- */

static struct relay_counts counts(const struct fx *f, int leg, enum relay_kind kind,
				  enum relay_dir dir)
{
	struct relay_counts c;

	relay_session_counts(rs(f), leg, 0, kind, dir, &c);
	return c;
}

/* Leg A's RTP refused from the carrier, for any reason. */
static uint64_t refused(const struct fx *f)
{
	struct relay_counts c = counts(f, LEG_A, RELAY_RTP, RELAY_IN);

	return c.auth_fail + c.replay_fail + c.cant_check + c.errors + c.unexpected_source;
}

static void wait_refused(const struct fx *f, uint64_t want)
{
	uint64_t deadline = mono_ms() + WAIT_MS;

	while (refused(f) != want) {
		if (mono_ms() > deadline) {
			struct relay_counts c = counts(f, LEG_A, RELAY_RTP, RELAY_IN);

			fail_msg("leg A rtp in refused %" PRIu64 ", want %" PRIu64
				 " (auth_fail %" PRIu64 ", replay_fail %" PRIu64
				 ", cant_check %" PRIu64 ", errors %" PRIu64 ")",
				 refused(f), want, c.auth_fail, c.replay_fail, c.cant_check,
				 c.errors);
		}
		nap_ms(1);
	}
}

static void wait_packets_in(const struct fx *f, uint64_t want)
{
	uint64_t deadline = mono_ms() + WAIT_MS;

	while (counts(f, LEG_A, RELAY_RTP, RELAY_IN).packets != want) {
		if (mono_ms() > deadline)
			fail_msg("leg A rtp in packets %" PRIu64 ", want %" PRIu64,
				 counts(f, LEG_A, RELAY_RTP, RELAY_IN).packets, want);
		nap_ms(1);
	}
}

static const char *roc_name(enum relay_roc r)
{
	return r == RELAY_ROC_CONTINUED ? "continued" : r == RELAY_ROC_RESET ? "reset" : "unknown";
}

static void dump_epochs(const struct fx *f)
{
	struct relay_epoch e[MAX_EPOCHS];
	size_t n = relay_session_epochs(rs(f), LEG_A, 0, e, MAX_EPOCHS);

	print_message("leg A: %zu epochs\n", n);
	for (size_t i = 0; i < n && i < MAX_EPOCHS; i++)
		print_message(
			"  %s #%u %.16s at %" PRIu64 " first %" PRIu64 " packets %" PRIu64
			" in_use %d roc %s mki %d/%" PRIu64 "/%u lifetime %" PRIu64 " fp %.15s\n",
			e[i].dir == RELAY_IN ? "in " : "out", e[i].n, e[i].message, e[i].at_ms,
			e[i].first_ms, e[i].packets, e[i].in_use, roc_name(e[i].roc), e[i].has_mki,
			e[i].mki, e[i].mki_len, e[i].lifetime, e[i].fingerprint);
}

/* Leg A's epoch num of dir now, into *out; false when there is none. */
static bool epoch_get(const struct fx *f, enum relay_dir dir, unsigned num, struct relay_epoch *out)
{
	struct relay_epoch e[MAX_EPOCHS];
	size_t n = relay_session_epochs(rs(f), LEG_A, 0, e, MAX_EPOCHS);

	for (size_t i = 0; i < n && i < MAX_EPOCHS; i++)
		if (e[i].dir == dir && e[i].n == num) {
			*out = e[i];
			return true;
		}
	return false;
}

/* Polls leg A's epoch num of dir until it counts `packets` (and, unless
 * RELAY_ROC_UNKNOWN, knows roc); the worker publishes its counts. */
static struct relay_epoch wait_epoch(const struct fx *f, enum relay_dir dir, unsigned num,
				     uint64_t packets, enum relay_roc roc)
{
	uint64_t deadline = mono_ms() + WAIT_MS;
	struct relay_epoch e = { 0 };

	for (;;) {
		bool have = epoch_get(f, dir, num, &e);

		if (have && e.packets == packets && (roc == RELAY_ROC_UNKNOWN || e.roc == roc))
			return e;
		if (mono_ms() > deadline) {
			dump_epochs(f);
			if (!have)
				fail_msg("no %s epoch #%u", dir == RELAY_IN ? "in" : "out", num);
			fail_msg("%s epoch #%u: %" PRIu64 " packets, roc %s; want %" PRIu64
				 ", roc %s",
				 dir == RELAY_IN ? "in" : "out", num, e.packets, roc_name(e.roc),
				 packets, roc == RELAY_ROC_UNKNOWN ? "any" : roc_name(roc));
		}
		nap_ms(2);
	}
}

/* ---- the carrier and the IVR ---- */

/* The carrier's packet idx of pl, protected with tx, in wire; its length. */
static size_t car_protect(struct srtpctx *tx, const struct plan *pl, unsigned idx, uint8_t *wire)
{
	size_t len = plan_packet(pl, idx, wire);

	assert_int_equal(srtpctx_protect_rtp(tx, wire, &len, BUF_SIZE), SRTPCTX_OK);
	return len;
}

/* ... sent to leg A; the IVR expects it (idx is the next of the tally). */
static void car_send(struct fx *f, struct srtpctx *tx, const struct plan *pl, unsigned idx)
{
	uint8_t wire[BUF_SIZE];
	size_t len = car_protect(tx, pl, idx, wire);

	send_to(f->car, wire, len, &f->a_rtp);
	if (idx >= f->t.total)
		f->t.total = idx + 1;
}

/* The carrier's plain RTP (leg A plain). */
static void car_send_plain(struct fx *f, const struct plan *pl, unsigned idx)
{
	uint8_t p[BUF_SIZE];
	size_t n = plan_packet(pl, idx, p);

	send_to(f->car, p, n, &f->a_rtp);
	if (idx >= f->t.total)
		f->t.total = idx + 1;
}

/* The IVR reads one packet within timeout_ms: it must be one of the
 * carrier's it has not had yet, as sent. false when none came. */
static bool ivr_take(struct fx *f, const struct plan *pl, int timeout_ms)
{
	uint8_t b[BUF_SIZE], want[BUF_SIZE];
	struct sockaddr_in src;
	ssize_t got = recv_within(f->ivr, b, sizeof(b), timeout_ms, &src);
	uint64_t now = mono_ms();
	uint32_t idx;

	if (got < 0)
		return false;
	assert_port(&src, &f->b_rtp);
	assert_int_equal(got, PKT_LEN);
	idx = be32_get(b + 12);
	if (idx == PROBE_IDX)
		fail_msg("the IVR got the packet under the retired key");
	if (idx >= f->t.total || idx >= TALLY_MAX)
		fail_msg("the IVR got packet %u; %u were sent", idx, f->t.total);
	if (f->t.seen[idx])
		fail_msg("the IVR got packet %u twice", idx);
	plan_packet(pl, idx, want);
	assert_memory_equal(b, want, PKT_LEN);
	f->t.seen[idx] = 1;
	f->t.got++;
	if (f->t.last_ms && now - f->t.last_ms > f->t.max_gap_ms)
		f->t.max_gap_ms = now - f->t.last_ms;
	f->t.last_ms = now;
	return true;
}

static void ivr_take_must(struct fx *f, const struct plan *pl)
{
	if (!ivr_take(f, pl, WAIT_MS))
		fail_msg("the IVR got nothing within %d ms (%u of %u so far)", WAIT_MS, f->t.got,
			 f->t.total);
}

/* Every packet sent so far reaches the IVR, once; nothing more comes. */
static void ivr_take_all(struct fx *f, const struct plan *pl)
{
	uint8_t b[BUF_SIZE];
	struct sockaddr_in src;

	while (f->t.got < f->t.total)
		if (!ivr_take(f, pl, WAIT_MS)) {
			struct relay_counts c = counts(f, LEG_A, RELAY_RTP, RELAY_IN);

			for (unsigned i = 0; i < f->t.total; i++)
				if (!f->t.seen[i])
					print_message("packet %u lost\n", i);
			dump_epochs(f);
			fail_msg("the IVR got %u of %u packets; leg A rtp in: packets %" PRIu64
				 " auth_fail %" PRIu64 " replay_fail %" PRIu64
				 " cant_check %" PRIu64 " errors %" PRIu64,
				 f->t.got, f->t.total, c.packets, c.auth_fail, c.replay_fail,
				 c.cant_check, c.errors);
		}
	assert_true(recv_within(f->ivr, b, sizeof(b), 20, &src) < 0);
}

/* The IVR sends RTP with its current SSRC and next sequence number. */
static size_t ivr_send_rtp(struct fx *f, uint8_t *plain)
{
	size_t n = build_rtp(plain, 8, f->ivr_seq, f->ivr_ts, f->ivr_ssrc);

	f->ivr_seq++;
	f->ivr_ts += 160;
	send_to(f->ivr, plain, n, &f->b_rtp);
	return n;
}

/* The carrier receives within timeout_ms srtpbridge's SRTP and unprotects
 * it with f->rx: it must authenticate, under srtpbridge's one SSRC with the
 * next sequence number. When control is given, a copy must not
 * authenticate there (a receiver with the wrong rollover counter). The
 * plain packet in b; its length, or 0 when nothing came. */
static size_t car_recv_rtp_within(struct fx *f, uint8_t *b, int timeout_ms, struct srtpctx *control)
{
	struct sockaddr_in src;
	ssize_t got = recv_within(f->car, b, BUF_SIZE, timeout_ms, &src);
	size_t len;
	enum srtpctx_result r;

	if (got < 0)
		return 0;
	f->to_car++;
	assert_port(&src, &f->a_rtp);
	len = (size_t)got;
	if (control) {
		uint8_t copy[BUF_SIZE];
		size_t clen = len;

		memcpy(copy, b, len);
		r = srtpctx_unprotect_rtp(control, copy, &clen);
		if (r == SRTPCTX_OK)
			fail_msg("srtpbridge's packet authenticates under the rollover counter "
				 "it should not have used (rekey_roc)");
	}
	r = srtpctx_unprotect_rtp(f->rx, b, &len);
	if (r != SRTPCTX_OK)
		fail_msg("the carrier cannot unprotect srtpbridge's packet: %s (after seq %u)",
			 srtpctx_result_name(r), f->out_seq);
	assert_int_equal(len + TAG_LEN +
				 (f->p[LEG_A][0].ours.has_mki ? f->p[LEG_A][0].ours.mki_len : 0),
			 (size_t)got);
	if (f->seen) {
		assert_int_equal(be32_get(b + 8), f->bridge_ssrc);
		if (be16_get(b + 2) != (uint16_t)(f->out_seq + 1))
			fail_msg("output sequence number %u after %u", be16_get(b + 2), f->out_seq);
	}
	f->seen = true;
	f->bridge_ssrc = be32_get(b + 8);
	f->out_seq = be16_get(b + 2);
	return len;
}

/* The carrier gets srtpbridge's version of the IVR's plain[0..n). */
static void car_recv_relayed(struct fx *f, const uint8_t *plain, size_t n, struct srtpctx *control)
{
	uint8_t b[BUF_SIZE];
	size_t got = car_recv_rtp_within(f, b, WAIT_MS, control);

	if (got == 0)
		fail_msg("the carrier got nothing within %d ms", WAIT_MS);
	assert_int_equal(got, n);
	assert_int_equal(b[1], plain[1]);
	assert_memory_equal(b + 12, plain + 12, n - 12);
}

/* count IVR packets reach the carrier over secure leg A. */
static void ivr_to_car(struct fx *f, unsigned count)
{
	uint8_t plain[BUF_SIZE];
	size_t n;

	for (unsigned i = 0; i < count; i++) {
		n = ivr_send_rtp(f, plain);
		car_recv_relayed(f, plain, n, NULL);
	}
}

/* ---- 1, 2. zero loss across a peer re-key; its rollover counter ---- */

/* 100 packets under the old key: from 65500 the sequence wraps at the 37th,
 * so the old key leaves the stream at ROC 1. */
#define ZL_OLD 100
#define ZL_NEW 60

struct zl_case {
	const char *name;
	uint16_t seq0;
	bool new_ssrc;	    /* the new key comes with a new SSRC */
	bool reset_roc;	    /* the peer's new sender starts its ROC again at 0 */
	bool grace;	    /* wait out the grace and try the old key once more */
	bool dup;	    /* the network duplicates the new key's first packet */
	enum relay_roc roc; /* the new epoch's; RELAY_ROC_UNKNOWN: not checked */
};

static void zero_loss_one(const struct zl_case *zc)
{
	const unsigned N = ZL_OLD, M = ZL_NEW;
	struct plan pl = plan_same(zc->seq0, N);
	uint8_t held[4][BUF_SIZE];
	size_t held_len[4];
	struct srtpctx *tx1, *tx2;
	struct sdes_key *k2;
	struct relay_epoch e1 = { 0 }, e2 = { 0 };
	uint32_t roc = 0;
	uint64_t before;
	struct fx *f;

	print_message("zero loss: %s\n", zc->name);
	f = fx_start();
	if (zc->new_ssrc) {
		pl.ssrc[1] = CAR_SSRC2;
		pl.seq[1] = 20000;
	}
	tx1 = f->tx;
	/* 0..N-3 under K1, each delivered */
	for (unsigned idx = 0; idx < N - 2; idx++) {
		car_send(f, tx1, &pl, idx);
		ivr_take_must(f, &pl);
	}
	/* N-2 and N-1 under K1, held back to come late */
	held_len[0] = car_protect(tx1, &pl, N - 2, held[0]);
	held_len[1] = car_protect(tx1, &pl, N - 1, held[1]);
	assert_int_equal(srtpctx_get_roc(tx1, CAR_SSRC, &roc), 0);
	assert_int_equal(roc, zc->seq0 > 0xffff - N ? 1 : 0);

	/* the peer's new key K2, in force before its first packet */
	k2 = &f->keys[0];
	random_key(k2);
	if (zc->new_ssrc || zc->reset_roc || roc == 0)
		tx2 = fx_ctx(f, SRTPCTX_OUTBOUND, k2);
	else
		tx2 = fx_ctx_roc(f, SRTPCTX_OUTBOUND, k2, CAR_SSRC, roc);
	fx_peer_key(f, k2, "re-INVITE");

	/* across the switch: N+1, (N+1 again), N-1, N, N-2, N+2, N+3... */
	held_len[2] = car_protect(tx2, &pl, N, held[2]);
	held_len[3] = car_protect(tx2, &pl, N + 1, held[3]);
	send_to(f->car, held[3], held_len[3], &f->a_rtp);
	if (zc->dup)
		send_to(f->car, held[3], held_len[3], &f->a_rtp);
	send_to(f->car, held[1], held_len[1], &f->a_rtp);
	send_to(f->car, held[2], held_len[2], &f->a_rtp);
	send_to(f->car, held[0], held_len[0], &f->a_rtp);
	f->t.total = N + 2;
	for (unsigned idx = N + 2; idx < N + M; idx++)
		car_send(f, tx2, &pl, idx);
	ivr_take_all(f, &pl); /* "packet N+1 twice": a duplicate got through */

	/* a duplicate is refused as a replay; a context tried in vain is no
	 * failure */
	wait_packets_in(f, N + M);
	wait_refused(f, zc->dup ? 1 : 0);
	assert_int_equal(counts(f, LEG_A, RELAY_RTP, RELAY_IN).replay_fail, zc->dup ? 1 : 0);
	e1 = wait_epoch(f, RELAY_IN, 1, N, RELAY_ROC_UNKNOWN);
	e2 = wait_epoch(f, RELAY_IN, 2, M, zc->roc);
	assert_true(e1.in_use); /* in its grace */
	assert_true(e2.in_use);
	assert_true(e2.first_ms >= e2.at_ms && e2.first_ms <= mono_ms());
	assert_string_equal(e2.message, "re-INVITE");

	if (zc->grace) {
		/* the carrier goes on under K2 while the worker lets K1 go */
		uint64_t deadline = e2.first_ms + RELAY_REKEY_GRACE_MS + WAIT_MS;
		unsigned idx = N + M;
		uint8_t wire[BUF_SIZE];
		size_t len;

		for (;;) {
			car_send(f, tx2, &pl, idx++);
			ivr_take_must(f, &pl);
			assert_true(epoch_get(f, RELAY_IN, 1, &e1));
			if (!e1.in_use)
				break;
			if (mono_ms() > deadline) {
				dump_epochs(f);
				fail_msg("the old key is still in use %" PRIu64
					 " ms after the new one's first packet",
					 mono_ms() - e2.first_ms);
			}
			nap_ms(20);
		}
		if (mono_ms() < e2.first_ms + RELAY_REKEY_GRACE_MS)
			fail_msg("the old key went %" PRIu64 " ms after the new one's first packet",
				 mono_ms() - e2.first_ms);
		/* a packet under K1 with a sequence number never used: refused */
		before = refused(f);
		len = build_car(wire, (uint16_t)(pl.seq[0] + N + 500), pl.ssrc[0], PROBE_IDX);
		assert_int_equal(srtpctx_protect_rtp(tx1, wire, &len, BUF_SIZE), SRTPCTX_OK);
		send_to(f->car, wire, len, &f->a_rtp);
		wait_refused(f, before + 1);
		/* and K2 goes on: the next one the IVR gets is this */
		car_send(f, tx2, &pl, idx++);
		ivr_take_all(f, &pl);
		wait_packets_in(f, idx);
	}
	fx_fini(f);
}

static void zero_loss_across_rekey(void **state)
{
	static const struct zl_case cases[] = {
		{ "same SSRC", 4000, false, false, true, false, RELAY_ROC_UNKNOWN },
		{ "same SSRC after a wrap", 65500, false, false, true, false, RELAY_ROC_CONTINUED },
		{ "new SSRC", 4000, true, false, true, false, RELAY_ROC_UNKNOWN },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		zero_loss_one(&cases[i]);
}

static void peer_roc_reset_or_continued(void **state)
{
	static const struct zl_case cases[] = {
		{ "the peer restarts its ROC", 65500, false, true, false, false, RELAY_ROC_RESET },
		{ "the peer continues its ROC", 65500, false, false, false, false,
		  RELAY_ROC_CONTINUED },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		zero_loss_one(&cases[i]);
}

/* A duplicate of the new key's first packet right behind it (networks do
 * that) is a replay, whichever contexts the worker still tries: with a new
 * SSRC too, whose first packet settles nothing about the ROC. */
static void duplicate_at_switch_refused(void **state)
{
	static const struct zl_case cases[] = {
		{ "duplicate, same SSRC", 4000, false, false, false, true, RELAY_ROC_UNKNOWN },
		{ "duplicate, ROC restarted", 65500, false, true, false, true, RELAY_ROC_RESET },
		{ "duplicate, new SSRC", 4000, true, false, false, true, RELAY_ROC_UNKNOWN },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		zero_loss_one(&cases[i]);
}

/* The grace ends RELAY_REKEY_GRACE_MS after the new key's first packet
 * even when nothing arrives in between: the first packet after it under the
 * old key finds it gone. */
static void grace_ends_without_traffic(void **state)
{
	struct plan pl = plan_same(4000, 20);
	struct srtpctx *tx1, *tx2;
	struct relay_epoch e1 = { 0 }, e2 = { 0 };
	uint8_t wire[BUF_SIZE];
	uint64_t before;
	unsigned idx = 0;
	size_t len;
	struct fx *f;

	(void)state;
	f = fx_start();
	tx1 = f->tx;
	for (; idx < 20; idx++) {
		car_send(f, tx1, &pl, idx);
		ivr_take_must(f, &pl);
	}
	random_key(&f->keys[0]);
	tx2 = fx_ctx(f, SRTPCTX_OUTBOUND, &f->keys[0]);
	fx_peer_key(f, &f->keys[0], "re-INVITE");
	for (; idx < 25; idx++)
		car_send(f, tx2, &pl, idx);
	ivr_take_all(f, &pl);
	e2 = wait_epoch(f, RELAY_IN, 2, 5, RELAY_ROC_UNKNOWN);
	while (mono_ms() < e2.first_ms + RELAY_REKEY_GRACE_MS + 300)
		nap_ms(20);

	/* under K1, a sequence number never used, 2.3 s after K2's first */
	before = refused(f);
	len = build_car(wire, (uint16_t)(pl.seq[0] + 500), pl.ssrc[0], PROBE_IDX);
	assert_int_equal(srtpctx_protect_rtp(tx1, wire, &len, BUF_SIZE), SRTPCTX_OK);
	send_to(f->car, wire, len, &f->a_rtp);
	car_send(f, tx2, &pl, idx++);
	ivr_take_all(f, &pl); /* fails on the K1 packet if it got through */
	wait_refused(f, before + 1);
	assert_true(epoch_get(f, RELAY_IN, 1, &e1));
	assert_false(e1.in_use);
	fx_fini(f);
}

/* A peer that starts its new key as it sends the answer carrying it is
 * ahead of us: its first packets under the new key arrive before the key is
 * installed. They are refused (auth_fail) and held, then taken when the key
 * comes: out of order, but not lost, and counted as recovered, not as
 * failures (srtpbridgectl's decrypt failures are packets lost for good). */
static void early_packets_of_new_key_recovered(void **state)
{
	struct plan pl = plan_same(7000, 10);
	struct srtpctx *tx2;
	struct relay_counts c;
	unsigned idx = 0;
	uint64_t before;
	struct fx *f;

	(void)state;
	f = fx_start();
	for (; idx < 10; idx++) {
		car_send(f, f->tx, &pl, idx);
		ivr_take_must(f, &pl);
	}
	random_key(&f->keys[0]);
	tx2 = fx_ctx(f, SRTPCTX_OUTBOUND, &f->keys[0]);
	before = refused(f);
	for (; idx < 13; idx++)
		car_send(f, tx2, &pl, idx);
	wait_refused(f, before + 3);
	fx_peer_key(f, &f->keys[0], "200");
	for (; idx < 20; idx++)
		car_send(f, tx2, &pl, idx);
	ivr_take_all(f, &pl);
	c = counts(f, LEG_A, RELAY_RTP, RELAY_IN);
	assert_int_equal(c.recovered, 3);
	assert_int_equal(c.auth_fail, 0); /* counted when they came, taken back when recovered */
	fx_fini(f);
}

/* ---- 3. a thousand re-keys on one call ---- */

/* 1000 re-keys with 2 packets under each key, 5 ms apart: 2000 packets in
 * about 10 s, plus the updates (a few ms each under the sanitizers, during
 * which the stream goes on under the old key): well under 30 s. A gap of
 * 100 ms is five times a real 20 ms packet interval and twenty of this
 * pace: an update that stalls the worker, or a packet the new key loses,
 * shows as one. */
#define MANY_REKEYS  1000
#define MANY_PER_KEY 2
#define MANY_PACE_MS 5
#define MANY_GAP_MS  100

struct stream {
	struct plan pl;
	struct srtpctx *tx;
	uint64_t next_ms;
};

/* The stream's next packet at its pace; the IVR takes what came. */
static void stream_one(struct fx *f, void *arg)
{
	struct stream *st = arg;
	uint64_t now = mono_ms();

	if (now < st->next_ms)
		nap_ms((unsigned)(st->next_ms - now));
	st->next_ms = (now > st->next_ms ? now : st->next_ms) + MANY_PACE_MS;
	car_send(f, st->tx, &st->pl, f->t.total);
	(void)ivr_take(f, &st->pl, 200);
	while (ivr_take(f, &st->pl, 0))
		;
}

static void thousand_rekeys_no_gap(void **state)
{
	struct stream st = { 0 };
	struct relay_epoch e[2];
	uint64_t t0 = mono_ms();
	struct fx *f;
	size_t n;

	(void)state;
	f = fx_start();
	st.pl = plan_same(1000, UINT32_MAX);
	st.tx = f->tx;
	st.next_ms = mono_ms();
	for (unsigned k = 0; k < MANY_REKEYS; k++) {
		struct sdes_key *key = &f->keys[k % 2];
		struct srtpctx *old = st.tx;

		for (unsigned j = 0; j < MANY_PER_KEY; j++)
			stream_one(f, &st);
		secret_wipe(&key->keysalt);
		random_key(key);
		secret_wipe(&f->p[LEG_A][0].peer.keysalt);
		f->p[LEG_A][0].peer = *key;
		f->p[LEG_A][0].peer_msg = "re-INVITE";
		fx_apply(f, stream_one, &st);
		/* the carrier switches (no wrap here: its ROC stays 0) */
		st.tx = fx_ctx(f, SRTPCTX_OUTBOUND, key);
		fx_ctx_free(f, old);
		f->tx = st.tx;
	}
	for (unsigned j = 0; j < 10; j++)
		stream_one(f, &st);
	ivr_take_all(f, &st.pl);
	print_message("%u re-keys, %u packets in %" PRIu64 " ms, longest gap %" PRIu64 " ms\n",
		      MANY_REKEYS, f->t.total, mono_ms() - t0, f->t.max_gap_ms);
	if (f->t.max_gap_ms >= MANY_GAP_MS)
		fail_msg("a gap of %" PRIu64 " ms at the IVR", f->t.max_gap_ms);
	wait_packets_in(f, f->t.total);
	assert_int_equal(refused(f), 0);
	n = relay_session_epochs(rs(f), LEG_A, 0, e, 2);
	print_message("%zu epochs listed\n", n);
	assert_true(n >= 2);
	fx_fini(f);
}

/* ---- 4. MKI both ways ---- */

static void mki_both_ways(void **state)
{
	struct relay_stream_params *a;
	struct plan pl = plan_same(3000, UINT32_MAX);
	uint8_t late[BUF_SIZE];
	size_t late_len;
	struct sdes_key *p2, *o2;
	struct relay_epoch e = { 0 };
	struct fx *f;
	unsigned idx = 0;

	(void)state;
	f = fx_init();
	a = &f->p[LEG_A][0];
	set_mki(&a->peer, 0x2a, 1);
	set_mki(&a->ours, 0xdeadbeef, 4);
	fx_carrier_keys(f);
	fx_apply(f, NULL, NULL);
	for (; idx < 10; idx++) {
		car_send(f, f->tx, &pl, idx);
		ivr_take_must(f, &pl);
	}
	ivr_to_car(f, 10);
	/* one more under the first key, to come after the re-key */
	late_len = car_protect(f->tx, &pl, idx++, late);
	f->t.total = idx;

	/* both keys change, with new MKI values */
	p2 = &f->keys[0];
	o2 = &f->keys[1];
	random_key(p2);
	set_mki(p2, 0x2b, 1);
	random_key(o2);
	set_mki(o2, 0xdeadbef0, 4);
	secret_wipe(&a->peer.keysalt);
	secret_wipe(&a->ours.keysalt);
	a->peer = *p2;
	a->ours = *o2;
	a->peer_msg = "re-INVITE";
	a->our_msg = "200";
	fx_apply(f, NULL, NULL);
	fx_carrier_keys(f);

	car_send(f, f->tx, &pl, idx++);
	send_to(f->car, late, late_len, &f->a_rtp); /* a late one, old key, old MKI */
	for (unsigned i = 0; i < 9; i++)
		car_send(f, f->tx, &pl, idx++);
	ivr_take_all(f, &pl);
	ivr_to_car(f, 10);
	wait_packets_in(f, idx);
	assert_int_equal(refused(f), 0);

	e = wait_epoch(f, RELAY_IN, 1, 11, RELAY_ROC_UNKNOWN);
	assert_true(e.has_mki);
	assert_int_equal(e.mki, 0x2a);
	assert_int_equal(e.mki_len, 1);
	e = wait_epoch(f, RELAY_IN, 2, 10, RELAY_ROC_UNKNOWN);
	assert_true(e.has_mki);
	assert_int_equal(e.mki, 0x2b);
	assert_int_equal(e.mki_len, 1);
	assert_true(epoch_get(f, RELAY_OUT, 1, &e));
	assert_true(e.has_mki);
	assert_int_equal(e.mki, 0xdeadbeef);
	assert_int_equal(e.mki_len, 4);
	assert_true(epoch_get(f, RELAY_OUT, 2, &e));
	assert_true(e.has_mki);
	assert_int_equal(e.mki, 0xdeadbef0);
	assert_int_equal(e.mki_len, 4);
	assert_true(e.in_use);
	fx_fini(f);
}

/* ---- 5. RTP -> SRTP -> RTP on one call ---- */

/* The carrier gets the IVR's plain RTP as it is (leg A plain). */
static void ivr_to_car_plain(struct fx *f, unsigned count)
{
	for (unsigned i = 0; i < count; i++) {
		uint8_t plain[BUF_SIZE], b[BUF_SIZE];
		struct sockaddr_in src;
		size_t n = ivr_send_rtp(f, plain);
		ssize_t got = recv_within(f->car, b, sizeof(b), WAIT_MS, &src);

		if (got < 0)
			fail_msg("the carrier got no plain RTP within %d ms", WAIT_MS);
		assert_port(&src, &f->a_rtp);
		assert_int_equal(got, n);
		assert_memory_equal(b, plain, n);
	}
}

static void plain_secure_plain(void **state)
{
	struct plan pl = plan_same(7000, UINT32_MAX);
	struct relay_epoch e[MAX_EPOCHS];
	unsigned idx = 0;
	struct fx *f;

	(void)state;
	f = fx_init();
	fx_carrier_keys(f);
	for (int phase = 0; phase < 4; phase++) {
		bool secure = phase % 2 == 1;

		print_message("phase %d: leg A %s\n", phase, secure ? "SRTP" : "RTP");
		f->p[LEG_A][0].secure = secure;
		fx_apply(f, NULL, NULL);
		for (unsigned i = 0; i < 20; i++, idx++) {
			if (secure)
				car_send(f, f->tx, &pl, idx);
			else
				car_send_plain(f, &pl, idx);
			ivr_take_must(f, &pl);
		}
		if (secure) {
			f->seen = false;
			ivr_to_car(f, 20);
		} else {
			ivr_to_car_plain(f, 20);
		}
		ivr_take_all(f, &pl);
		if (phase == 1)
			assert_true(relay_session_epochs(rs(f), LEG_A, 0, e, MAX_EPOCHS) >= 2);
	}
	wait_packets_in(f, idx);
	assert_int_equal(refused(f), 0);
	fx_fini(f);
}

/* ---- 6. our own re-key after the output wrapped ---- */

#define WRAP_MAX 70000 /* the output starts below 0x8000: it wraps within this */
#define BATCH	 64

static void output_rekey_keep_then_reset(void **state)
{
	struct relay_stream_params *a;
	uint8_t plain[BUF_SIZE], b[BUF_SIZE];
	struct srtpctx *control;
	struct relay_epoch e = { 0 };
	uint64_t t0 = mono_ms();
	unsigned sent = 0;
	uint32_t roc = 0;
	struct fx *f;
	size_t n = 0;

	(void)state;
	f = fx_start();
	a = &f->p[LEG_A][0];
	/* the IVR streams until srtpbridge's output wrapped, and 1000 more */
	ivr_to_car(f, 1);
	while (roc == 0 || sent % 1024 != 0) {
		for (unsigned i = 0; i < BATCH; i++)
			n = ivr_send_rtp(f, plain);
		for (unsigned i = 0; i < BATCH; i++)
			assert_int_equal(car_recv_rtp_within(f, b, WAIT_MS, NULL), n);
		sent += BATCH;
		assert_true(sent < WRAP_MAX + 2048);
		assert_int_equal(srtpctx_get_roc(f->rx, f->bridge_ssrc, &roc), 0);
	}
	assert_int_equal(roc, 1);
	print_message("%u packets through the output wrap in %" PRIu64 " ms\n", sent,
		      mono_ms() - t0);

	/* our new key, ROC kept: the carrier's receiver starts at ROC 1 */
	random_key(&f->keys[0]);
	secret_wipe(&a->ours.keysalt);
	a->ours = f->keys[0];
	a->our_msg = "re-INVITE";
	a->rekey_roc = REKEY_ROC_KEEP;
	fx_apply(f, NULL, NULL);
	fx_ctx_free(f, f->rx);
	f->rx = fx_ctx_roc(f, SRTPCTX_INBOUND, &f->keys[0], f->bridge_ssrc, 1);
	control = fx_ctx_roc(f, SRTPCTX_INBOUND, &f->keys[0], f->bridge_ssrc, 0);
	n = ivr_send_rtp(f, plain);
	car_recv_relayed(f, plain, n, control);
	fx_ctx_free(f, control);
	ivr_to_car(f, 200);
	assert_int_equal(srtpctx_get_roc(f->rx, f->bridge_ssrc, &roc), 0);
	assert_int_equal(roc, 1);

	/* again, ROC reset: the carrier's receiver starts at ROC 0 */
	random_key(&f->keys[1]);
	secret_wipe(&a->ours.keysalt);
	a->ours = f->keys[1];
	a->our_msg = "UPDATE";
	a->rekey_roc = REKEY_ROC_RESET;
	fx_apply(f, NULL, NULL);
	fx_ctx_free(f, f->rx);
	f->rx = fx_ctx_roc(f, SRTPCTX_INBOUND, &f->keys[1], f->bridge_ssrc, 0);
	control = fx_ctx_roc(f, SRTPCTX_INBOUND, &f->keys[1], f->bridge_ssrc, 1);
	n = ivr_send_rtp(f, plain);
	car_recv_relayed(f, plain, n, control);
	fx_ctx_free(f, control);
	ivr_to_car(f, 200);
	assert_int_equal(srtpctx_get_roc(f->rx, f->bridge_ssrc, &roc), 0);
	assert_int_equal(roc, 0);

	/* the epochs of our keys; their roc, when they say one, is the one used */
	assert_true(epoch_get(f, RELAY_OUT, 2, &e));
	assert_string_equal(e.message, "re-INVITE");
	assert_false(e.in_use);
	if (e.roc != RELAY_ROC_UNKNOWN)
		assert_int_equal(e.roc, RELAY_ROC_CONTINUED);
	assert_true(epoch_get(f, RELAY_OUT, 3, &e));
	assert_string_equal(e.message, "UPDATE");
	assert_true(e.in_use);
	if (e.roc != RELAY_ROC_UNKNOWN)
		assert_int_equal(e.roc, RELAY_ROC_RESET);
	fx_fini(f);
}

/* ---- 7. the epochs' audit trail ---- */

static void hex_of(const struct secret *s, char *out, bool upper)
{
	static const char lo[] = "0123456789abcdef", up[] = "0123456789ABCDEF";
	const char *d = upper ? up : lo;

	for (size_t i = 0; i < s->len; i++) {
		out[2 * i] = d[s->bytes[i] >> 4];
		out[2 * i + 1] = d[s->bytes[i] & 15];
	}
	out[2 * s->len] = '\0';
}

static void base64_of(const struct secret *s, char *out)
{
	static const char d[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;

	for (size_t i = 0; i < s->len; i += 3) {
		uint32_t v = (uint32_t)s->bytes[i] << 16;
		size_t left = s->len - i;

		if (left > 1)
			v |= (uint32_t)s->bytes[i + 1] << 8;
		if (left > 2)
			v |= s->bytes[i + 2];
		out[o++] = d[v >> 18 & 63];
		out[o++] = d[v >> 12 & 63];
		out[o++] = left > 1 ? d[v >> 6 & 63] : '=';
		out[o++] = left > 2 ? d[v & 63] : '=';
	}
	out[o] = '\0';
}

/* A fingerprint shows nothing of any key: neither its digits nor the key's
 * hex or base64 contain each other. */
static void assert_no_key_in(const char *fp, const struct sdes_key *keys, size_t nkeys)
{
	const char *digits = strncmp(fp, "k:", 2) == 0 ? fp + 2 : fp;

	assert_true(strlen(fp) > 0 && strlen(fp) < SECRET_FINGERPRINT_LEN);
	assert_true(strlen(digits) >= 6);
	for (size_t i = 0; i < nkeys; i++) {
		char lo[2 * SECRET_MAX + 1], up[2 * SECRET_MAX + 1], b64[4 * SECRET_MAX / 3 + 8];

		hex_of(&keys[i].keysalt, lo, false);
		hex_of(&keys[i].keysalt, up, true);
		base64_of(&keys[i].keysalt, b64);
		if (strstr(lo, digits) || strstr(up, digits) || strstr(b64, digits))
			fail_msg("fingerprint %s shows key %zu", fp, i);
	}
}

static void epoch_audit(void **state)
{
	struct relay_stream_params *a;
	struct plan pl = plan_same(5000, UINT32_MAX);
	struct relay_epoch e[MAX_EPOCHS], two[2], x;
	struct sdes_key *k = NULL;
	uint64_t o1_packets, t_switch;
	unsigned idx = 0, in_n = 0, out_n = 0;
	size_t n;
	struct fx *f;
	static const char *const in_msg[] = { "INVITE", "re-INVITE", "UPDATE", "UPDATE" };
	static const char *const out_msg[] = { "200", "SDP" };

	(void)state;
	f = fx_init();
	a = &f->p[LEG_A][0];
	k = f->keys;
	a->peer.lifetime = 1ULL << 31;
	a->peer.lifetime_pow2 = true;
	k[0] = a->peer; /* P1 */
	k[1] = a->ours; /* O1 */
	fx_carrier_keys(f);
	fx_apply(f, NULL, NULL); /* INVITE / 200 */
	for (unsigned i = 0; i < 5; i++, idx++)
		car_send(f, f->tx, &pl, idx);
	ivr_take_all(f, &pl);
	ivr_to_car(f, 3);

	/* P2 in a re-INVITE; ours unchanged (no epoch for it) */
	random_key(&k[2]);
	secret_wipe(&a->peer.keysalt);
	a->peer = k[2];
	a->peer_msg = "re-INVITE";
	a->our_msg = "200";
	fx_apply(f, NULL, NULL);
	fx_carrier_keys(f);
	for (unsigned i = 0; i < 7; i++, idx++)
		car_send(f, f->tx, &pl, idx);
	ivr_take_all(f, &pl);
	ivr_to_car(f, 2);

	/* P3 in an UPDATE, and O2 from an update that names no message */
	random_key(&k[3]);
	random_key(&k[4]);
	secret_wipe(&a->peer.keysalt);
	secret_wipe(&a->ours.keysalt);
	a->peer = k[3];
	a->ours = k[4];
	a->peer_msg = "UPDATE";
	a->our_msg = NULL;
	fx_apply(f, NULL, NULL);
	o1_packets = f->to_car_mid;
	fx_carrier_keys(f);
	for (unsigned i = 0; i < 9; i++, idx++)
		car_send(f, f->tx, &pl, idx);
	ivr_take_all(f, &pl);
	ivr_to_car(f, 4);

	wait_epoch(f, RELAY_IN, 3, 9, RELAY_ROC_UNKNOWN);
	wait_epoch(f, RELAY_OUT, 2, f->to_car - o1_packets, RELAY_ROC_UNKNOWN);
	n = relay_session_epochs(rs(f), LEG_A, 0, e, MAX_EPOCHS);
	if (n != 5) {
		dump_epochs(f);
		fail_msg("%zu epochs, want 3 in and 2 out", n);
	}
	for (size_t i = 0; i < n; i++) {
		const struct relay_epoch *p = &e[i];
		uint64_t want_packets;

		if (i > 0 && p->at_ms < e[i - 1].at_ms)
			fail_msg("epoch %zu installed before the one listed before it", i);
		assert_int_equal(p->suite, SUITE);
		assert_int_equal(p->tag_len, TAG_LEN);
		assert_false(p->has_mki);
		assert_true(p->first_ms >= p->at_ms && p->first_ms > 0);
		assert_no_key_in(p->fingerprint, k, 5);
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(p->fingerprint, e[j].fingerprint);
		if (p->dir == RELAY_IN) {
			assert_int_equal(p->n, ++in_n);
			assert_string_equal(p->message, in_msg[in_n - 1]);
			assert_int_equal(p->lifetime, in_n == 1 ? 1ULL << 31 : 0);
			want_packets = in_n == 1 ? 5 : in_n == 2 ? 7 : 9;
			if (in_n == 3)
				assert_true(p->in_use); /* the newest */
		} else {
			assert_int_equal(p->dir, RELAY_OUT);
			assert_int_equal(p->n, ++out_n);
			assert_string_equal(p->message, out_msg[out_n - 1]);
			assert_int_equal(p->lifetime, 0);
			/* every RTP and RTCP packet protected under it */
			want_packets = out_n == 1 ? o1_packets : f->to_car - o1_packets;
			assert_int_equal(p->in_use, out_n == 2); /* ours is replaced at once */
		}
		if (p->packets != want_packets) {
			dump_epochs(f);
			fail_msg("epoch %zu: %" PRIu64 " packets, want %" PRIu64, i, p->packets,
				 want_packets);
		}
	}
	assert_int_equal(in_n, 3);
	assert_int_equal(out_n, 2);

	/* a short array: the count, and nothing written past it */
	memset(two, 0xa5, sizeof(two));
	assert_int_equal(relay_session_epochs(rs(f), LEG_A, 0, two, 1), 5);
	assert_int_equal(two[0].n, e[0].n);
	assert_int_equal(two[0].dir, e[0].dir);
	assert_int_equal(((const uint8_t *)&two[1])[0], 0xa5);
	assert_int_equal(((const uint8_t *)&two[1])[sizeof(two[1]) - 1], 0xa5);
	/* the plain leg has none; nor a stream that is not there */
	assert_int_equal(relay_session_epochs(rs(f), LEG_B, 0, e, MAX_EPOCHS), 0);
	assert_int_equal(relay_session_epochs(rs(f), LEG_A, 1, e, MAX_EPOCHS), 0);

	/* P4 signalled, but the peer never switches: P3 is heard all along,
	 * well past the grace */
	random_key(&k[5]);
	secret_wipe(&a->peer.keysalt);
	a->peer = k[5];
	a->peer_msg = "UPDATE";
	fx_apply(f, NULL, NULL);
	t_switch = mono_ms();
	while (mono_ms() < t_switch + RELAY_REKEY_GRACE_MS + 500) {
		car_send(f, f->tx, &pl, idx++);
		ivr_take_must(f, &pl);
		nap_ms(40);
	}
	ivr_take_all(f, &pl);
	wait_packets_in(f, idx);
	assert_int_equal(refused(f), 0);
	x = wait_epoch(f, RELAY_IN, 3, 9 + (idx - 21), RELAY_ROC_UNKNOWN);
	assert_true(x.in_use);
	assert_true(epoch_get(f, RELAY_IN, 4, &x));
	assert_true(x.in_use);
	assert_int_equal(x.first_ms, 0);
	assert_int_equal(x.packets, 0);
	assert_string_equal(x.message, "UPDATE");
	assert_no_key_in(x.fingerprint, k, 6);
	fx_fini(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(zero_loss_across_rekey, teardown_test),
		cmocka_unit_test_teardown(peer_roc_reset_or_continued, teardown_test),
		cmocka_unit_test_teardown(grace_ends_without_traffic, teardown_test),
		cmocka_unit_test_teardown(duplicate_at_switch_refused, teardown_test),
		cmocka_unit_test_teardown(early_packets_of_new_key_recovered, teardown_test),
		cmocka_unit_test_teardown(thousand_rekeys_no_gap, teardown_test),
		cmocka_unit_test_teardown(mki_both_ways, teardown_test),
		cmocka_unit_test_teardown(plain_secure_plain, teardown_test),
		cmocka_unit_test_teardown(output_rekey_keep_then_reset, teardown_test),
		cmocka_unit_test_teardown(epoch_audit, teardown_test),
	};

	if (test_relay_io_check())
		return RELAY_IO_SKIPPED;
	return cmocka_run_group_tests_name("rekey", tests, setup_group, teardown_group);
}
