/* relay: the media worker over real sockets on 127.0.0.1. Test sockets play
 * the carrier (secure leg A, with libsrtp2 through srtpctx at its end) and
 * the IVR (plain leg B); a media session from a real port pool sits between
 * them, run by a real relay thread. Updates reach the worker asynchronously:
 * each test waits for them by sending until a packet gets through, and for
 * counters by polling them against a deadline. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

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
#define CAR_SSRC    0xca11ab1eu
#define OTHER_SSRC  0x0badcafeu /* a source in report blocks that nobody rewrites */
#define LEG_A	    MEDIA_LEG_A
#define LEG_B	    MEDIA_LEG_B
/* free_block's range: 500 blocks of 16 ports, below the ephemeral range
 * (the other unit tests use 42000..58000). */
#define PORT_BASE   21000
#define PORT_BLOCKS 500

/* ---- sockets (the rest is in udp_fixture.h) ---- */

/* The next datagram on fd, which must come within WAIT_MS from `from`. */
static size_t recv_must(int fd, uint8_t *b, size_t cap, const struct sockaddr_in *from)
{
	struct sockaddr_in src;
	ssize_t n = recv_within(fd, b, cap, WAIT_MS, &src);

	if (n < 0)
		fail_msg("nothing arrived within %d ms", WAIT_MS);
	assert_port(&src, from);
	return (size_t)n;
}

/* Nothing is waiting on fd now. */
static void assert_nothing(int fd)
{
	uint8_t b[BUF_SIZE];
	struct sockaddr_in src;

	assert_true(recv_within(fd, b, sizeof(b), 0, &src) < 0);
}

/* ---- packets ---- */

/* RTP with a 12-byte header and PAYLOAD_LEN bytes that start with seq and
 * ssrc's low half (so that a receiver can tell which packet it got). */
static size_t build_rtp(uint8_t *p, uint8_t pt, bool marker, uint16_t seq, uint32_t ts,
			uint32_t ssrc)
{
	p[0] = 0x80;
	p[1] = (uint8_t)(pt | (marker ? 0x80 : 0));
	be16_put(p + 2, seq);
	be32_put(p + 4, ts);
	be32_put(p + 8, ssrc);
	be16_put(p + 12, seq);
	be16_put(p + 14, (uint16_t)ssrc);
	for (size_t i = 4; i < PAYLOAD_LEN; i++)
		p[12 + i] = (uint8_t)(i * 13 + seq * 7 + pt);
	return 12 + PAYLOAD_LEN;
}

/* An SR from ssrc with one report block about `about`, then an SDES with
 * the CNAME of ssrc (RFC 3550 6.4.1, 6.5). */
static size_t build_sr_sdes(uint8_t *p, uint32_t ssrc, uint32_t about)
{
	static const char cname[] = "media@203.0.113.7"; /* 17 bytes */
	size_t n = 0, chunk;

	p[n] = 0x81; /* V=2, RC=1 */
	p[n + 1] = 200;
	be16_put(p + n + 2, 12); /* 52 bytes */
	be32_put(p + n + 4, ssrc);
	for (size_t i = 8; i < 28; i++) /* NTP, RTP timestamp, counts */
		p[n + i] = (uint8_t)(i * 11 + ssrc);
	be32_put(p + n + 28, about);
	for (size_t i = 32; i < 52; i++) /* loss, jitter, LSR, DLSR */
		p[n + i] = (uint8_t)(i * 5);
	n += 52;
	p[n] = 0x81; /* V=2, SC=1 */
	p[n + 1] = 202;
	be32_put(p + n + 4, ssrc);
	p[n + 8] = 1; /* CNAME */
	p[n + 9] = (uint8_t)(sizeof(cname) - 1);
	memcpy(p + n + 10, cname, sizeof(cname) - 1);
	chunk = 10 + sizeof(cname) - 1;
	while (chunk % 4 != 0 || p[n + chunk - 1] != 0) /* end item and padding */
		p[n + chunk++] = 0;
	be16_put(p + n + 2, (uint16_t)(chunk / 4 - 1));
	return n + chunk;
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

/* ---- srtp at the carrier's end ---- */

static void random_key(struct sdes_key *k, enum suite_id s)
{
	memset(k, 0, sizeof(*k));
	assert_int_equal(secret_random(&k->keysalt, suite_keysalt_len(s)), 0);
}

static struct srtpctx *make_ctx(enum srtpctx_dir dir, enum suite_id s, const struct sdes_key *k,
				bool unencrypted_srtcp)
{
	struct srtpctx_params p = { .suite = s, .key = k, .unencrypted_srtcp = unencrypted_srtcp };
	struct srtpctx *c = NULL;

	assert_int_equal(srtpctx_create(&c, dir, &p), 0);
	return c;
}

/* ---- the fixture: a relay, a pool, a session, a carrier and an IVR ---- */

struct opts {
	enum suite_id suite;
	bool unencrypted_srtcp;
	bool mux_a;		     /* rtcp-mux on the carrier's leg */
	enum media_latching latch_b; /* the IVR's leg */
};

struct fx {
	struct event_base *base;
	struct relay *r;
	struct portpool *pool;
	struct media_session *s;
	struct opts o;
	struct relay_stream_params p[2][RELAY_MAX_STREAMS];
	/* srtpbridge's sockets */
	struct sockaddr_in a_rtp, a_rtcp, b_rtp, b_rtcp;
	/* the carrier: RTP and RTCP sockets, libsrtp2 both ways */
	int car, car_rtcp;
	struct sockaddr_in car_at, car_rtcp_at;
	struct srtpctx *car_tx, *car_rx;
	uint16_t car_seq;
	uint32_t car_ts;
	/* the IVR */
	int ivr, ivr_rtcp;
	struct sockaddr_in ivr_at, ivr_rtcp_at;
	uint16_t ivr_seq;
	uint32_t ivr_ts, ivr_ssrc;
	/* what the carrier has seen of srtpbridge's RTP */
	bool seen;
	uint32_t bridge_ssrc;
	uint16_t out_seq;
	uint32_t out_ts;
	/* what some tests add: a third socket, a carrier under a wrong key */
	int extra;
	struct sdes_key wrong;
	struct srtpctx *wrong_tx;
	bool live;
};

/* One at a time, here so that a failed test's teardown can release it. */
static struct fx the_fx;

static struct opts defaults(enum suite_id suite)
{
	return (struct opts){ .suite = suite, .latch_b = LATCH_STRICT };
}

static void fx_release(struct fx *f);

/* Everything but the first update. */
static struct fx *fx_init(struct opts o)
{
	struct fx *f = &the_fx;
	uint16_t base = free_block(PORT_BASE, PORT_BLOCKS);
	struct relay_stream_params *a, *b;

	if (f->live)
		fx_release(f);
	memset(f, 0, sizeof(*f));
	f->car = f->car_rtcp = f->ivr = f->ivr_rtcp = f->extra = -1;
	f->live = true;
	f->o = o;
	f->base = event_base_new();
	assert_non_null(f->base);
	assert_int_equal(relay_create(&f->r, f->base, 1, test_relay_io(), NULL, NULL), 0);
	assert_relay_io(f->r);
	assert_int_equal(portpool_create(&f->pool, base, (uint16_t)(base + 15), 0, NULL, NULL), 0);
	assert_int_equal(media_session_create(&f->s, f->pool, f->r, "127.0.0.1", "127.0.0.1", 1),
			 0);
	f->a_rtp = loopback(media_session_port(f->s, LEG_A, 0));
	f->a_rtcp = loopback((uint16_t)(media_session_port(f->s, LEG_A, 0) + 1));
	f->b_rtp = loopback(media_session_port(f->s, LEG_B, 0));
	f->b_rtcp = loopback((uint16_t)(media_session_port(f->s, LEG_B, 0) + 1));

	f->car = udp_socket(&f->car_at);
	f->car_rtcp = udp_socket(&f->car_rtcp_at);
	f->ivr = udp_socket(&f->ivr_at);
	f->ivr_rtcp = udp_socket(&f->ivr_rtcp_at);

	a = &f->p[LEG_A][0];
	a->active = true;
	a->secure = true;
	a->suite = o.suite;
	a->unencrypted_srtcp = o.unencrypted_srtcp;
	random_key(&a->ours, o.suite);
	random_key(&a->peer, o.suite);
	set_addr(&a->rtp, &a->rtp_len, &f->car_at);
	set_addr(&a->rtcp, &a->rtcp_len, o.mux_a ? &f->car_at : &f->car_rtcp_at);
	a->rtcp_mux = o.mux_a;
	a->latching = LATCH_STRICT;
	b = &f->p[LEG_B][0];
	b->active = true;
	set_addr(&b->rtp, &b->rtp_len, &f->ivr_at);
	set_addr(&b->rtcp, &b->rtcp_len, &f->ivr_rtcp_at);
	b->latching = o.latch_b;

	/* the carrier protects with the key it announced (our `peer`) and
	 * unprotects with the one we announced to it (`ours`) */
	f->car_tx = make_ctx(SRTPCTX_OUTBOUND, o.suite, &a->peer, o.unencrypted_srtcp);
	f->car_rx = make_ctx(SRTPCTX_INBOUND, o.suite, &a->ours, o.unencrypted_srtcp);
	f->car_seq = 4000;
	f->car_ts = 160000;
	f->ivr_seq = 1000;
	f->ivr_ts = 80000;
	f->ivr_ssrc = 0x1c0ffee1u;
	return f;
}

static void fx_update(struct fx *f)
{
	assert_int_equal(media_session_update(f->s, (const void *)f->p, 1), 0);
}

static const struct relay_session *rs(const struct fx *f)
{
	return media_session_relay(f->s);
}

static struct relay_counts counts(const struct fx *f, int leg, enum relay_kind kind,
				  enum relay_dir dir)
{
	struct relay_counts c;

	relay_session_counts(rs(f), leg, 0, kind, dir, &c);
	return c;
}

/* The counters of both directions as they are before a test's packets. */
static void baseline(const struct fx *f, enum relay_kind kind, struct relay_counts *ain,
		     struct relay_counts *bout, struct relay_counts *bin, struct relay_counts *aout)
{
	*ain = counts(f, LEG_A, kind, RELAY_IN);
	*bout = counts(f, LEG_B, kind, RELAY_OUT);
	*bin = counts(f, LEG_B, kind, RELAY_IN);
	*aout = counts(f, LEG_A, kind, RELAY_OUT);
}

/* Polls one counter until it reaches want (counters are bumped by the
 * worker, possibly just after the packet left). */
static void wait_count(const struct fx *f, int leg, enum relay_kind kind, enum relay_dir dir,
		       size_t off, const char *name, uint64_t want)
{
	uint64_t deadline = mono_ms() + WAIT_MS, v;

	for (;;) {
		struct relay_counts c = counts(f, leg, kind, dir);

		memcpy(&v, (const uint8_t *)&c + off, sizeof(v));
		if (v == want)
			return;
		if (mono_ms() > deadline)
			fail_msg("leg %c %s %s %s: %llu, want %llu", leg ? 'B' : 'A',
				 kind == RELAY_RTP ? "rtp" : "rtcp", dir == RELAY_IN ? "in" : "out",
				 name, (unsigned long long)v, (unsigned long long)want);
		nap_ms(1);
	}
}

#define WAIT_COUNT(f, leg, kind, dir, field, want)                                                 \
	wait_count(f, leg, kind, dir, offsetof(struct relay_counts, field), #field, want)

/* The carrier's next RTP packet: plain in plain[0..*plain_len), protected
 * with ctx in wire; the wire length. */
static size_t car_protect_next(struct fx *f, struct srtpctx *ctx, uint8_t *plain, size_t *plain_len,
			       uint8_t *wire)
{
	size_t n = build_rtp(plain, 0, f->car_seq == 4000, f->car_seq, f->car_ts, CAR_SSRC);
	size_t len = n;

	*plain_len = n;
	f->car_seq++;
	f->car_ts += 160;
	memcpy(wire, plain, n);
	assert_int_equal(srtpctx_protect_rtp(ctx, wire, &len, BUF_SIZE), SRTPCTX_OK);
	return len;
}

/* ... and sends it from fd to leg A. */
static size_t car_send_rtp_with(struct fx *f, struct srtpctx *ctx, int fd, uint8_t *plain,
				size_t *plain_len, uint8_t *wire)
{
	size_t len = car_protect_next(f, ctx, plain, plain_len, wire);

	send_to(fd, wire, len, &f->a_rtp);
	return len;
}

static size_t car_send_rtp(struct fx *f, uint8_t *plain)
{
	uint8_t wire[BUF_SIZE];
	size_t n;

	car_send_rtp_with(f, f->car_tx, f->car, plain, &n, wire);
	return n;
}

/* The IVR receives the carrier's packet plain[0..n) as it is. */
static void ivr_recv_exact(int fd, const uint8_t *plain, size_t n, const struct sockaddr_in *from)
{
	uint8_t b[BUF_SIZE];
	size_t got = recv_must(fd, b, sizeof(b), from);

	assert_int_equal(got, n);
	assert_memory_equal(b, plain, n);
}

/* The IVR sends RTP with its current SSRC and next sequence number. */
static size_t ivr_send_rtp(struct fx *f, uint8_t *plain)
{
	size_t n = build_rtp(plain, 8, (f->ivr_seq & 7) == 0, f->ivr_seq, f->ivr_ts, f->ivr_ssrc);

	f->ivr_seq++;
	f->ivr_ts += 160;
	send_to(f->ivr, plain, n, &f->b_rtp);
	return n;
}

/* Plain RTP from fd to leg B that is not the IVR's: another PT and SSRC,
 * the IVR's next sequence number (which it does not use up). */
static void stranger_send_rtp(struct fx *f, int fd)
{
	uint8_t plain[BUF_SIZE];
	size_t n = build_rtp(plain, 18, false, f->ivr_seq, f->ivr_ts, 0x57a4a6e4u);

	send_to(fd, plain, n, &f->b_rtp);
}

/* The carrier receives within timeout_ms an SRTP packet on fd and
 * unprotects it: it must authenticate, come under srtpbridge's one SSRC with
 * the next sequence number. The plain packet in b; its length, or 0 when
 * nothing came. */
static size_t car_recv_rtp_within(struct fx *f, int fd, uint8_t *b, int timeout_ms)
{
	struct sockaddr_in src;
	ssize_t got = recv_within(fd, b, BUF_SIZE, timeout_ms, &src);
	size_t len;
	enum srtpctx_result r;

	if (got < 0)
		return 0;
	assert_int_equal(ntohs(src.sin_port), ntohs(f->a_rtp.sin_port));
	len = (size_t)got;
	r = srtpctx_unprotect_rtp(f->car_rx, b, &len);
	if (r != SRTPCTX_OK)
		fail_msg("the carrier cannot unprotect srtpbridge's packet: %s (after seq %u)",
			 srtpctx_result_name(r), f->out_seq);
	assert_int_equal(len + suite_get(f->o.suite)->rtp_tag_len, (size_t)got);
	if (f->seen) {
		assert_int_equal(be32_get(b + 8), f->bridge_ssrc);
		if (be16_get(b + 2) != (uint16_t)(f->out_seq + 1))
			fail_msg("output sequence number %u after %u", be16_get(b + 2), f->out_seq);
		/* the IVR sends 20 ms apart or faster: the clock moves on, by a
		 * packet's 160 or less, whatever the IVR's source does */
		if (be32_get(b + 4) - f->out_ts - 1 >= 160)
			fail_msg("output timestamp %u after %u", be32_get(b + 4), f->out_ts);
	}
	f->seen = true;
	f->bridge_ssrc = be32_get(b + 8);
	f->out_seq = be16_get(b + 2);
	f->out_ts = be32_get(b + 4);
	return len;
}

/* The carrier must receive srtpbridge's version of the IVR's plain[0..n):
 * same length, marker, PT and payload. */
static void car_recv_relayed(struct fx *f, int fd, const uint8_t *plain, size_t n)
{
	uint8_t b[BUF_SIZE];
	size_t got = car_recv_rtp_within(f, fd, b, WAIT_MS);

	if (got == 0)
		fail_msg("the carrier got nothing within %d ms", WAIT_MS);
	assert_int_equal(got, n);
	assert_int_equal(b[0], plain[0]);
	assert_int_equal(b[1], plain[1]); /* marker and PT */
	assert_memory_equal(b + 12, plain + 12, n - 12);
	assert_int_not_equal(f->bridge_ssrc, be32_get(plain + 8));
}

/* Sends IVR packets until one reaches the carrier: the update is in force
 * (the worker handles commands and packets in order). Later packets of the
 * same burst that were relayed too are received. */
static void fx_sync(struct fx *f)
{
	uint64_t deadline = mono_ms() + WAIT_MS;
	uint8_t plain[BUF_SIZE], b[BUF_SIZE];
	uint16_t last;

	for (;;) {
		size_t got;

		ivr_send_rtp(f, plain);
		last = (uint16_t)(f->ivr_seq - 1);
		got = car_recv_rtp_within(f, f->car, b, 50);
		if (got) {
			/* this one and every later one went through */
			while (be16_get(b + 12) != last) {
				got = car_recv_rtp_within(f, f->car, b, WAIT_MS);
				assert_true(got > 0);
			}
			/* and was counted: every packet accepted was sent */
			WAIT_COUNT(f, LEG_A, RELAY_RTP, RELAY_OUT, packets,
				   counts(f, LEG_B, RELAY_RTP, RELAY_IN).packets);
			return;
		}
		if (mono_ms() > deadline)
			fail_msg("the update did not take effect within %d ms", WAIT_MS);
	}
}

static struct fx *fx_start(struct opts o)
{
	struct fx *f = fx_init(o);

	fx_update(f);
	fx_sync(f);
	return f;
}

/* A third socket on 127.0.0.1 (a stranger, the carrier after a NAT
 * rebinding, an SDP port nobody sends from). */
static int fx_extra_socket(struct fx *f, struct sockaddr_in *at)
{
	assert_int_equal(f->extra, -1);
	f->extra = udp_socket(at);
	return f->extra;
}

/* A carrier context under a key nobody negotiated. */
static struct srtpctx *fx_wrong_tx(struct fx *f)
{
	random_key(&f->wrong, f->o.suite);
	f->wrong_tx = make_ctx(SRTPCTX_OUTBOUND, f->o.suite, &f->wrong, f->o.unencrypted_srtcp);
	return f->wrong_tx;
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
	close_fd(&f->car_rtcp);
	close_fd(&f->ivr);
	close_fd(&f->ivr_rtcp);
	close_fd(&f->extra);
	srtpctx_destroy(f->car_tx);
	srtpctx_destroy(f->car_rx);
	srtpctx_destroy(f->wrong_tx);
	secret_wipe(&f->wrong.keysalt);
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

/* ---- 1. RTP both ways, every suite ---- */

static void rtp_both_ways_one_suite(enum suite_id suite)
{
	struct fx *f;
	uint8_t plain[BUF_SIZE];
	struct relay_counts ain, bout, bin, aout;
	size_t n = 0, tag = suite_get(suite)->rtp_tag_len;
	const unsigned N = 20;

	f = fx_start(defaults(suite));
	baseline(f, RELAY_RTP, &ain, &bout, &bin, &aout);

	for (unsigned i = 0; i < N; i++) {
		n = car_send_rtp(f, plain);
		ivr_recv_exact(f->ivr, plain, n, &f->b_rtp);
	}
	for (unsigned i = 0; i < N; i++) {
		n = ivr_send_rtp(f, plain);
		car_recv_relayed(f, f->car, plain, n);
	}
	WAIT_COUNT(f, LEG_A, RELAY_RTP, RELAY_IN, packets, ain.packets + N);
	WAIT_COUNT(f, LEG_B, RELAY_RTP, RELAY_OUT, packets, bout.packets + N);
	WAIT_COUNT(f, LEG_B, RELAY_RTP, RELAY_OUT, bytes, bout.bytes + N * n);
	WAIT_COUNT(f, LEG_B, RELAY_RTP, RELAY_IN, packets, bin.packets + N);
	WAIT_COUNT(f, LEG_A, RELAY_RTP, RELAY_OUT, packets, aout.packets + N);
	WAIT_COUNT(f, LEG_A, RELAY_RTP, RELAY_OUT, bytes, aout.bytes + N * (n + tag));
	ain = counts(f, LEG_A, RELAY_RTP, RELAY_IN);
	assert_int_equal(ain.auth_fail + ain.replay_fail + ain.cant_check + ain.unexpected_source,
			 0);
	aout = counts(f, LEG_A, RELAY_RTP, RELAY_OUT);
	assert_int_equal(aout.errors + aout.auth_fail + aout.replay_fail, 0);
	assert_int_equal(counts(f, LEG_B, RELAY_RTP, RELAY_OUT).errors, 0);
	assert_int_equal(counts(f, LEG_B, RELAY_RTP, RELAY_IN).unexpected_source, 0);
	assert_nothing(f->ivr);
	assert_nothing(f->car);
	fx_fini(f);
}

static void rtp_both_ways_every_suite(void **state)
{
	(void)state;
	for (int s = 0; s < SUITE_COUNT; s++)
		if (usable((enum suite_id)s))
			rtp_both_ways_one_suite((enum suite_id)s);
}

/* ---- 2. SRTCP both ways ---- */

static void car_send_rtcp(struct fx *f, int fd, const struct sockaddr_in *to, const uint8_t *plain,
			  size_t n)
{
	uint8_t wire[BUF_SIZE];
	size_t len = n;

	memcpy(wire, plain, n);
	assert_int_equal(srtpctx_protect_rtcp(f->car_tx, wire, &len, BUF_SIZE), SRTPCTX_OK);
	send_to(fd, wire, len, to);
}

/* The carrier receives SRTCP on fd from `from`; plain in b, its length. */
static size_t car_recv_rtcp(struct fx *f, int fd, const struct sockaddr_in *from, uint8_t *b)
{
	size_t got = recv_must(fd, b, BUF_SIZE, from), len = got;
	enum srtpctx_result r = srtpctx_unprotect_rtcp(f->car_rx, b, &len);

	if (r != SRTPCTX_OK)
		fail_msg("the carrier cannot unprotect srtpbridge's SRTCP: %s",
			 srtpctx_result_name(r));
	assert_int_equal(got, len + 4 + suite_get(f->o.suite)->rtcp_tag_len);
	return len;
}

/* The IVR's SR+SDES reaches the carrier protected, under srtpbridge's SSRC. */
static void ivr_rtcp_to_car(struct fx *f, int car_fd, const struct sockaddr_in *from)
{
	uint8_t plain[BUF_SIZE], want[BUF_SIZE], b[BUF_SIZE];
	size_t n = build_sr_sdes(plain, f->ivr_ssrc, CAR_SSRC);

	send_to(f->ivr_rtcp, plain, n, &f->b_rtcp);
	memcpy(want, plain, n);
	be32_put(want + 4, f->bridge_ssrc);	 /* SR sender */
	be32_put(want + 52 + 4, f->bridge_ssrc); /* SDES chunk */
	assert_int_equal(car_recv_rtcp(f, car_fd, from, b), n);
	assert_int_equal(be32_get(b + 4), f->bridge_ssrc);
	assert_int_equal(be32_get(b + 28), CAR_SSRC); /* a report block is no sender field */
	assert_memory_equal(b, want, n);
}

static void srtcp_one(enum suite_id suite, bool unencrypted)
{
	struct opts o = defaults(suite);
	struct fx *f;
	uint8_t plain[BUF_SIZE];
	size_t n;
	struct relay_counts ain, bout, bin, aout;

	o.unencrypted_srtcp = unencrypted;
	f = fx_start(o);
	baseline(f, RELAY_RTCP, &ain, &bout, &bin, &aout);

	for (int i = 0; i < 3; i++) {
		/* carrier -> IVR: as the carrier sent it */
		n = build_sr_sdes(plain, CAR_SSRC, OTHER_SSRC + (uint32_t)i);
		car_send_rtcp(f, f->car_rtcp, &f->a_rtcp, plain, n);
		ivr_recv_exact(f->ivr_rtcp, plain, n, &f->b_rtcp);
		/* IVR -> carrier */
		ivr_rtcp_to_car(f, f->car_rtcp, &f->a_rtcp);
	}
	/* the carrier's report about srtpbridge's SSRC speaks to the IVR of its own */
	n = build_rr(plain, CAR_SSRC, f->bridge_ssrc);
	car_send_rtcp(f, f->car_rtcp, &f->a_rtcp, plain, n);
	be32_put(plain + 8, f->ivr_ssrc);
	ivr_recv_exact(f->ivr_rtcp, plain, n, &f->b_rtcp);

	WAIT_COUNT(f, LEG_A, RELAY_RTCP, RELAY_IN, packets, ain.packets + 4);
	WAIT_COUNT(f, LEG_B, RELAY_RTCP, RELAY_OUT, packets, bout.packets + 4);
	WAIT_COUNT(f, LEG_B, RELAY_RTCP, RELAY_IN, packets, bin.packets + 3);
	WAIT_COUNT(f, LEG_A, RELAY_RTCP, RELAY_OUT, packets, aout.packets + 3);
	ain = counts(f, LEG_A, RELAY_RTCP, RELAY_IN);
	assert_int_equal(ain.auth_fail + ain.replay_fail + ain.cant_check + ain.errors, 0);
	assert_int_equal(counts(f, LEG_A, RELAY_RTCP, RELAY_OUT).errors, 0);
	fx_fini(f);
}

static void srtcp_both_ways_every_suite(void **state)
{
	(void)state;
	for (int s = 0; s < SUITE_COUNT; s++)
		if (usable((enum suite_id)s))
			srtcp_one((enum suite_id)s, false);
}

static void srtcp_unencrypted_every_suite(void **state)
{
	(void)state;
	for (int s = 0; s < SUITE_COUNT; s++)
		if (usable((enum suite_id)s))
			srtcp_one((enum suite_id)s, true);
}

/* ---- 3. replay, tampering, a wrong key ---- */

static void bad_packets_one(enum suite_id suite)
{
	struct fx *f;
	uint8_t plain[BUF_SIZE], wire[BUF_SIZE];
	size_t n, len;
	struct relay_counts ain, bout;

	f = fx_start(defaults(suite));
	ain = counts(f, LEG_A, RELAY_RTP, RELAY_IN);
	bout = counts(f, LEG_B, RELAY_RTP, RELAY_OUT);

	/* a replay: delivered once */
	len = car_send_rtp_with(f, f->car_tx, f->car, plain, &n, wire);
	ivr_recv_exact(f->ivr, plain, n, &f->b_rtp);
	send_to(f->car, wire, len, &f->a_rtp);
	WAIT_COUNT(f, LEG_A, RELAY_RTP, RELAY_IN, replay_fail, ain.replay_fail + 1);
	n = car_send_rtp(f, plain);
	ivr_recv_exact(f->ivr, plain, n, &f->b_rtp);

	/* tampered (one payload bit): not delivered */
	len = car_protect_next(f, f->car_tx, plain, &n, wire);
	wire[20] ^= 0x01;
	send_to(f->car, wire, len, &f->a_rtp);
	WAIT_COUNT(f, LEG_A, RELAY_RTP, RELAY_IN, auth_fail, ain.auth_fail + 1);
	n = car_send_rtp(f, plain);
	ivr_recv_exact(f->ivr, plain, n, &f->b_rtp);

	/* under a key nobody negotiated */
	car_send_rtp_with(f, fx_wrong_tx(f), f->car, plain, &n, wire);
	WAIT_COUNT(f, LEG_A, RELAY_RTP, RELAY_IN, auth_fail, ain.auth_fail + 2);
	n = car_send_rtp(f, plain);
	ivr_recv_exact(f->ivr, plain, n, &f->b_rtp);

	/* an SRTCP replay */
	n = build_sr_sdes(plain, CAR_SSRC, OTHER_SSRC);
	len = n;
	memcpy(wire, plain, n);
	assert_int_equal(srtpctx_protect_rtcp(f->car_tx, wire, &len, BUF_SIZE), SRTPCTX_OK);
	send_to(f->car_rtcp, wire, len, &f->a_rtcp);
	ivr_recv_exact(f->ivr_rtcp, plain, n, &f->b_rtcp);
	send_to(f->car_rtcp, wire, len, &f->a_rtcp);
	WAIT_COUNT(f, LEG_A, RELAY_RTCP, RELAY_IN, replay_fail, 1);
	car_send_rtcp(f, f->car_rtcp, &f->a_rtcp, plain, n);
	ivr_recv_exact(f->ivr_rtcp, plain, n, &f->b_rtcp);

	WAIT_COUNT(f, LEG_A, RELAY_RTP, RELAY_IN, packets, ain.packets + 4);
	WAIT_COUNT(f, LEG_B, RELAY_RTP, RELAY_OUT, packets, bout.packets + 4);
	assert_nothing(f->ivr);
	ain = counts(f, LEG_A, RELAY_RTP, RELAY_IN);
	assert_int_equal(ain.unexpected_source + ain.cant_check, 0);
	fx_fini(f);
}

static void replay_tamper_wrong_key(void **state)
{
	(void)state;
	for (int s = 0; s < SUITE_COUNT; s++)
		if (usable((enum suite_id)s))
			bad_packets_one((enum suite_id)s);
}

/* ---- 4. strangers and latching ---- */

static void stranger_to_secure_leg(void **state)
{
	struct fx *f;
	uint8_t plain[BUF_SIZE], wire[BUF_SIZE], junk[BUF_SIZE];
	struct sockaddr_in st_at;
	int st;
	size_t n, len;
	struct relay_counts ain;

	(void)state;
	f = fx_start(defaults(SUITE_AES_CM_128_HMAC_SHA1_80));
	st = fx_extra_socket(f, &st_at);
	ain = counts(f, LEG_A, RELAY_RTP, RELAY_IN);

	/* a genuine packet captured and replayed by a stranger */
	len = car_send_rtp_with(f, f->car_tx, f->car, plain, &n, wire);
	ivr_recv_exact(f->ivr, plain, n, &f->b_rtp);
	send_to(st, wire, len, &f->a_rtp);
	/* a packet under another key */
	car_send_rtp_with(f, fx_wrong_tx(f), st, plain, &n, wire);
	/* junk that is not even SRTP */
	memset(junk, 0x80, 40);
	send_to(st, junk, 40, &f->a_rtp);
	WAIT_COUNT(f, LEG_A, RELAY_RTP, RELAY_IN, unexpected_source, ain.unexpected_source + 3);

	/* the carrier's next packet arrives, none of the stranger's did */
	n = car_send_rtp(f, plain);
	ivr_recv_exact(f->ivr, plain, n, &f->b_rtp);
	assert_nothing(f->ivr);
	/* the latch did not move: the IVR's packets go to the carrier */
	n = ivr_send_rtp(f, plain);
	car_recv_relayed(f, f->car, plain, n);
	assert_nothing(st);
	ain = counts(f, LEG_A, RELAY_RTP, RELAY_IN);
	assert_int_equal(ain.auth_fail + ain.replay_fail, 0); /* a stranger's is no attack on us */
	WAIT_COUNT(f, LEG_B, RELAY_RTP, RELAY_OUT, packets, 2);

	fx_fini(f);
}

static void stranger_to_plain_leg_strict(void **state)
{
	struct fx *f;
	uint8_t plain[BUF_SIZE];
	struct sockaddr_in st_at;
	int st;
	size_t n;
	struct relay_counts bin, aout;

	(void)state;
	f = fx_start(defaults(SUITE_AES_CM_128_HMAC_SHA1_80));
	st = fx_extra_socket(f, &st_at); /* the IVR's address, another port */
	bin = counts(f, LEG_B, RELAY_RTP, RELAY_IN);
	aout = counts(f, LEG_A, RELAY_RTP, RELAY_OUT);

	stranger_send_rtp(f, st);
	WAIT_COUNT(f, LEG_B, RELAY_RTP, RELAY_IN, unexpected_source, bin.unexpected_source + 1);
	n = ivr_send_rtp(f, plain);
	/* the stranger's never arrived: the next one at the carrier is this
	 * one, with the sequence number after the last */
	car_recv_relayed(f, f->car, plain, n);
	assert_nothing(f->car);
	/* and it did not move leg B: the carrier's packets still go to the IVR */
	n = car_send_rtp(f, plain);
	ivr_recv_exact(f->ivr, plain, n, &f->b_rtp);
	assert_nothing(st);
	WAIT_COUNT(f, LEG_A, RELAY_RTP, RELAY_OUT, packets, aout.packets + 1);
	fx_fini(f);
}

/* Learning: leg B's SDP names a port the IVR does not send from; its first
 * source at that address is taken, and later no other. */
static void plain_leg_learns_first_source(void **state)
{
	struct opts o = defaults(SUITE_AES_CM_128_HMAC_SHA1_80);
	struct fx *f;
	uint8_t plain[BUF_SIZE];
	struct sockaddr_in sdp_at;
	int sdp_fd;
	size_t n;
	struct relay_counts bin;

	(void)state;
	o.latch_b = LATCH_LEARN;
	f = fx_init(o);
	sdp_fd = fx_extra_socket(f, &sdp_at);
	set_addr(&f->p[LEG_B][0].rtp, &f->p[LEG_B][0].rtp_len, &sdp_at);
	fx_update(f);
	fx_sync(f); /* from f->ivr, not the SDP port */
	n = car_send_rtp(f, plain);
	ivr_recv_exact(f->ivr, plain, n, &f->b_rtp);
	assert_nothing(sdp_fd);
	bin = counts(f, LEG_B, RELAY_RTP, RELAY_IN);
	stranger_send_rtp(f, sdp_fd);
	WAIT_COUNT(f, LEG_B, RELAY_RTP, RELAY_IN, unexpected_source, bin.unexpected_source + 1);
	n = ivr_send_rtp(f, plain);
	car_recv_relayed(f, f->car, plain, n);
	fx_fini(f);
}

/* A NAT rebinding: the carrier's authenticated packet from another port
 * moves the latch; srtpbridge sends there from then on. */
static void secure_leg_latches_on_authenticated(void **state)
{
	struct fx *f;
	uint8_t plain[BUF_SIZE], wire[BUF_SIZE];
	struct sockaddr_in nat_at;
	int nat;
	size_t n;
	struct relay_counts ain;

	(void)state;
	f = fx_start(defaults(SUITE_AES_CM_128_HMAC_SHA1_80));
	nat = fx_extra_socket(f, &nat_at);
	ain = counts(f, LEG_A, RELAY_RTP, RELAY_IN);
	car_send_rtp_with(f, f->car_tx, nat, plain, &n, wire);
	ivr_recv_exact(f->ivr, plain, n, &f->b_rtp);
	WAIT_COUNT(f, LEG_A, RELAY_RTP, RELAY_IN, packets, ain.packets + 1);
	assert_int_equal(counts(f, LEG_A, RELAY_RTP, RELAY_IN).unexpected_source, 0);
	n = ivr_send_rtp(f, plain);
	car_recv_relayed(f, nat, plain, n);
	assert_nothing(f->car);
	/* the old port is now the stranger's */
	car_send_rtp_with(f, f->car_tx, f->car, plain, &n, wire);
	ivr_recv_exact(f->ivr, plain, n, &f->b_rtp); /* it authenticates */
	WAIT_COUNT(f, LEG_A, RELAY_RTP, RELAY_IN, packets, ain.packets + 2);
	fx_fini(f);
}

/* ---- 5. the IVR's sequence and SSRC changes; the output wrap ---- */

static void ivr_burst(struct fx *f, unsigned count)
{
	uint8_t plain[BUF_SIZE];
	size_t n;

	for (unsigned i = 0; i < count; i++) {
		n = ivr_send_rtp(f, plain);
		car_recv_relayed(f, f->car, plain, n);
	}
}

static void ivr_source_changes(void **state)
{
	struct fx *f;
	struct relay_counts aout;

	(void)state;
	f = fx_start(defaults(SUITE_AES_CM_128_HMAC_SHA1_80));
	aout = counts(f, LEG_A, RELAY_RTP, RELAY_OUT);
	ivr_burst(f, 150);
	f->ivr_seq = (uint16_t)(f->ivr_seq - 30000); /* a jump back */
	ivr_burst(f, 150);
	f->ivr_ssrc = 0x5eed5eedu; /* a new source */
	f->ivr_seq = 33333;
	f->ivr_ts = 12345;
	ivr_burst(f, 150);
	f->ivr_seq = 0; /* the same source restarts */
	f->ivr_ts = 0;
	ivr_burst(f, 150);
	f->ivr_seq = (uint16_t)(f->ivr_seq + 20000); /* a jump forward */
	ivr_burst(f, 150);
	WAIT_COUNT(f, LEG_A, RELAY_RTP, RELAY_OUT, packets, aout.packets + 750);
	aout = counts(f, LEG_A, RELAY_RTP, RELAY_OUT);
	assert_int_equal(aout.errors + aout.replay_fail + aout.auth_fail, 0);
	fx_fini(f);
}

/* A new prompt that restarts the sequence at 0 with the same SSRC after a
 * short prompt (fewer than MAX_MISORDER packets) must not lose packets
 * either. */
static void ivr_restart_after_short_prompt(void **state)
{
	struct fx *f;
	struct relay_counts aout;
	uint8_t plain[BUF_SIZE], b[BUF_SIZE];
	unsigned got = 0;

	(void)state;
	f = fx_start(defaults(SUITE_AES_CM_128_HMAC_SHA1_80));
	f->ivr_ssrc = 0x5eed5eedu; /* a new prompt from seq 0 */
	f->ivr_seq = 0;
	ivr_burst(f, 50); /* one second */
	f->ivr_seq = 0;	  /* the next prompt */
	for (unsigned i = 0; i < 50; i++)
		ivr_send_rtp(f, plain);
	while (got < 50 && car_recv_rtp_within(f, f->car, b, 300) > 0)
		got++;
	aout = counts(f, LEG_A, RELAY_RTP, RELAY_OUT);
	if (got != 50)
		fail_msg("%u of the second prompt's 50 packets reached the carrier; "
			 "leg A rtp out: replay_fail %llu, errors %llu",
			 got, (unsigned long long)aout.replay_fail,
			 (unsigned long long)aout.errors);
	assert_int_equal(aout.errors + aout.replay_fail, 0);
	fx_fini(f);
}

#define WRAP_PACKETS 70000
#define WINDOW	     64

static void output_sequence_wraps(void **state)
{
	struct fx *f;
	uint8_t plain[BUF_SIZE];
	uint32_t roc = 99;
	size_t n;
	uint64_t t0 = mono_ms();
	struct relay_counts aout;

	(void)state;
	f = fx_start(defaults(SUITE_AES_CM_128_HMAC_SHA1_80));
	assert_int_equal(srtpctx_get_roc(f->car_rx, f->bridge_ssrc, &roc), 0);
	assert_int_equal(roc, 0);
	aout = counts(f, LEG_A, RELAY_RTP, RELAY_OUT);
	for (unsigned sent = 0; sent < WRAP_PACKETS; sent += WINDOW) {
		uint8_t b[BUF_SIZE];

		for (unsigned i = 0; i < WINDOW; i++)
			n = ivr_send_rtp(f, plain);
		for (unsigned i = 0; i < WINDOW; i++)
			assert_int_equal(car_recv_rtp_within(f, f->car, b, WAIT_MS), n);
	}
	assert_int_equal(srtpctx_get_roc(f->car_rx, f->bridge_ssrc, &roc), 0);
	assert_int_equal(roc, 1);
	WAIT_COUNT(f, LEG_A, RELAY_RTP, RELAY_OUT, packets,
		   aout.packets + (WRAP_PACKETS + WINDOW - 1) / WINDOW * WINDOW);
	print_message("%u packets through the wrap in %llu ms\n", WRAP_PACKETS,
		      (unsigned long long)(mono_ms() - t0));
	fx_fini(f);
}

/* The daemon's shutdown: the calls remove their sessions, then the relay
 * is destroyed at once, without a turn of the main loop in between; the
 * sessions are finished on the way and their ports come back. */
static void relay_destroy_finishes_sessions(void **state)
{
	struct fx *f;

	(void)state;
	f = fx_start(defaults(SUITE_AES_CM_128_HMAC_SHA1_80));
	assert_int_equal(portpool_in_use_count(f->pool), 4);
	media_session_destroy(f->s);
	relay_destroy(f->r);
	assert_int_equal(portpool_in_use_count(f->pool), 0);
	f->r = NULL;
	f->s = NULL;
	fx_fini(f);
}

/* ---- 6. the media timeout's clock, hold ---- */

static void last_rx_and_hold(void **state)
{
	struct fx *f;
	uint8_t plain[BUF_SIZE], wire[BUF_SIZE];
	size_t n;
	uint64_t t1, t2;
	struct sockaddr_in st_at;
	int st;

	(void)state;
	f = fx_init(defaults(SUITE_AES_CM_128_HMAC_SHA1_80));
	assert_int_equal(relay_session_last_rx_ms(rs(f)), 0);
	assert_false(relay_session_on_hold(rs(f)));
	fx_update(f);
	fx_sync(f);
	t1 = relay_session_last_rx_ms(rs(f));
	assert_true(t1 > 0 && t1 <= mono_ms());
	nap_ms(30);
	assert_int_equal(relay_session_last_rx_ms(rs(f)), t1);

	/* refused packets are not media */
	car_send_rtp_with(f, fx_wrong_tx(f), f->car, plain, &n, wire);
	WAIT_COUNT(f, LEG_A, RELAY_RTP, RELAY_IN, auth_fail, 1);
	st = fx_extra_socket(f, &st_at);
	stranger_send_rtp(f, st);
	WAIT_COUNT(f, LEG_B, RELAY_RTP, RELAY_IN, unexpected_source, 1);
	assert_int_equal(relay_session_last_rx_ms(rs(f)), t1);

	n = car_send_rtp(f, plain);
	ivr_recv_exact(f->ivr, plain, n, &f->b_rtp);
	t2 = relay_session_last_rx_ms(rs(f));
	assert_true(t2 >= t1 + 30);
	assert_int_equal(counts(f, LEG_A, RELAY_RTP, RELAY_IN).last_ms, t2);

	/* hold, from either side's SDP */
	f->p[LEG_A][0].hold = true;
	fx_update(f);
	assert_true(relay_session_on_hold(rs(f)));
	f->p[LEG_A][0].hold = false;
	f->p[LEG_B][0].hold = true;
	fx_update(f);
	assert_true(relay_session_on_hold(rs(f)));
	f->p[LEG_B][0].hold = false;
	fx_update(f);
	assert_false(relay_session_on_hold(rs(f)));
	/* the same keys again: the streams go on */
	n = car_send_rtp(f, plain);
	ivr_recv_exact(f->ivr, plain, n, &f->b_rtp);
	ivr_burst(f, 5);

	fx_fini(f);
}

/* ---- 7. rtcp-mux on the carrier's leg ---- */

static void rtcp_mux_on_secure_leg(void **state)
{
	struct opts o = defaults(SUITE_AES_CM_128_HMAC_SHA1_80);
	struct fx *f;
	uint8_t plain[BUF_SIZE];
	size_t n;
	struct relay_counts ain, arin;

	(void)state;
	o.mux_a = true;
	f = fx_start(o);
	ain = counts(f, LEG_A, RELAY_RTCP, RELAY_IN);
	arin = counts(f, LEG_A, RELAY_RTP, RELAY_IN);
	/* SRTCP to the RTP port: to the IVR's RTCP address */
	n = build_sr_sdes(plain, CAR_SSRC, OTHER_SSRC);
	car_send_rtcp(f, f->car, &f->a_rtp, plain, n);
	ivr_recv_exact(f->ivr_rtcp, plain, n, &f->b_rtcp);
	WAIT_COUNT(f, LEG_A, RELAY_RTCP, RELAY_IN, packets, ain.packets + 1);
	/* RTP on the same port still goes to the IVR's RTP address */
	n = car_send_rtp(f, plain);
	ivr_recv_exact(f->ivr, plain, n, &f->b_rtp);
	WAIT_COUNT(f, LEG_A, RELAY_RTP, RELAY_IN, packets, arin.packets + 1);
	/* the IVR's RTCP reaches the carrier's RTP port, from srtpbridge's */
	ivr_rtcp_to_car(f, f->car, &f->a_rtp);
	assert_nothing(f->car_rtcp);
	assert_nothing(f->ivr);
	fx_fini(f);
}

/* ---- several workers ---- */

#define NCALLS 6

static void beat_count(void *arg, unsigned worker)
{
	_Atomic unsigned *beats = arg;

	if (worker < 3)
		atomic_fetch_add(&beats[worker], 1);
}

/* Three workers, six plain calls: the calls are shared out two each, every
 * one relays both ways on whichever worker runs it, and every worker beats
 * its heart (the watchdog waits for each). */
static void calls_shared_over_workers(void **state)
{
	static _Atomic unsigned beats[3];
	uint16_t base = free_block(PORT_BASE + 8000, 100);
	struct event_base *eb = event_base_new();
	struct relay *r = NULL;
	struct portpool *pool = NULL;
	struct media_session *ms[NCALLS];
	int a[NCALLS], b[NCALLS];
	struct sockaddr_in a_at[NCALLS], b_at[NCALLS];
	struct relay_stats st;
	uint64_t deadline;

	(void)state;
	assert_non_null(eb);
	assert_int_equal(relay_create(&r, eb, 3, test_relay_io(), beat_count, (void *)beats), 0);
	assert_relay_io(r);
	assert_int_equal(relay_workers(r), 3);
	assert_int_equal(
		portpool_create(&pool, base, (uint16_t)(base + 4 * NCALLS - 1), 0, NULL, NULL), 0);
	for (int c = 0; c < NCALLS; c++) {
		struct relay_stream_params p[2][RELAY_MAX_STREAMS];

		memset(p, 0, sizeof(p));
		assert_int_equal(media_session_create(&ms[c], pool, r, "127.0.0.1", "127.0.0.1", 1),
				 0);
		a[c] = udp_socket(&a_at[c]);
		b[c] = udp_socket(&b_at[c]);
		for (int leg = 0; leg < 2; leg++) {
			p[leg][0].active = true;
			set_addr(&p[leg][0].rtp, &p[leg][0].rtp_len, leg ? &b_at[c] : &a_at[c]);
			p[leg][0].rtcp = p[leg][0].rtp;
			p[leg][0].rtcp_len = p[leg][0].rtp_len;
		}
		assert_int_equal(media_session_update(ms[c], p, 1), 0);
	}
	relay_get_stats(r, &st);
	assert_int_equal(st.workers, 3);
	assert_int_equal(st.sessions, NCALLS);
	for (int c = 0; c < NCALLS; c++) {
		struct sockaddr_in to_a = loopback(media_session_port(ms[c], MEDIA_LEG_A, 0));
		struct sockaddr_in to_b = loopback(media_session_port(ms[c], MEDIA_LEG_B, 0));
		uint8_t pkt[12 + 160], got[BUF_SIZE];
		struct sockaddr_in src;

		memset(pkt, c, sizeof(pkt));
		pkt[0] = 0x80;
		pkt[1] = 0;
		/* the update is asynchronous: send until the first one crosses */
		deadline = mono_ms() + WAIT_MS;
		for (;;) {
			send_to(a[c], pkt, sizeof(pkt), &to_a);
			if (recv_within(b[c], got, sizeof(got), 20, &src) == (ssize_t)sizeof(pkt))
				break;
			assert_true(mono_ms() < deadline);
		}
		assert_memory_equal(got, pkt, sizeof(pkt));
		send_to(b[c], pkt, sizeof(pkt), &to_b);
		assert_int_equal(recv_within(a[c], got, sizeof(got), WAIT_MS, &src),
				 (ssize_t)sizeof(pkt));
		assert_memory_equal(got, pkt, sizeof(pkt));
	}
	deadline = mono_ms() + WAIT_MS;
	while (!(atomic_load(&beats[0]) && atomic_load(&beats[1]) && atomic_load(&beats[2]))) {
		assert_true(mono_ms() < deadline);
		nap_ms(5);
	}
	for (int c = 0; c < NCALLS; c++) {
		media_session_destroy(ms[c]);
		close_fd(&a[c]);
		close_fd(&b[c]);
	}
	deadline = mono_ms() + WAIT_MS;
	while (portpool_in_use_count(pool)) {
		event_base_loop(eb, EVLOOP_NONBLOCK);
		assert_true(mono_ms() < deadline);
		nap_ms(1);
	}
	relay_get_stats(r, &st);
	assert_int_equal(st.sessions, 0);
	relay_destroy(r);
	portpool_destroy(pool);
	event_base_free(eb);
}

/* Sockets with an id stay in the set of the worker that ran them, from one
 * session to the next (relay.h). A set of sockets for both legs of a call
 * of one stream, RTCP on the RTP socket's neighbour. */
struct kept {
	int rtp[2], rtcp[2];
	struct sockaddr_in at[2];
	uint64_t id;
	struct relay_session *s;
	bool done;
};

#define NKEPT 8

static void kept_open(struct kept *k, uint64_t id)
{
	struct sockaddr_in rtcp_at;

	for (int leg = 0; leg < 2; leg++) {
		k->rtp[leg] = udp_socket(&k->at[leg]);
		k->rtcp[leg] = udp_socket(&rtcp_at);
	}
	k->id = id;
}

static void kept_close(struct kept *k)
{
	for (int leg = 0; leg < 2; leg++) {
		close_fd(&k->rtp[leg]);
		close_fd(&k->rtcp[leg]);
	}
}

static void kept_done(void *arg)
{
	((struct kept *)arg)->done = true;
}

/* A plain call between peers pa (leg A) and pb (leg B) on k's sockets. */
static void kept_start(struct relay *r, struct kept *k, const struct sockaddr_in *pa_at,
		       const struct sockaddr_in *pb_at)
{
	int fds[2][RELAY_MAX_STREAMS], fds_rtcp[2][RELAY_MAX_STREAMS];
	uint64_t ids[2][RELAY_MAX_STREAMS];
	struct relay_stream_params p[2][RELAY_MAX_STREAMS];

	memset(p, 0, sizeof(p));
	for (int leg = 0; leg < 2; leg++) {
		fds[leg][0] = k->rtp[leg];
		fds_rtcp[leg][0] = k->rtcp[leg];
		ids[leg][0] = k->id;
		p[leg][0].active = true;
		set_addr(&p[leg][0].rtp, &p[leg][0].rtp_len, leg ? pb_at : pa_at);
		p[leg][0].rtcp = p[leg][0].rtp;
		p[leg][0].rtcp_len = p[leg][0].rtp_len;
	}
	assert_int_equal(relay_session_create(&k->s, r, 1, fds, fds_rtcp, ids), 0);
	assert_int_equal(relay_session_update(k->s, p, 1), 0);
	k->done = false;
}

static void kept_stop(struct event_base *eb, struct kept *k)
{
	uint64_t deadline = mono_ms() + WAIT_MS;

	relay_session_remove(k->s, kept_done, k);
	while (!k->done) {
		event_base_loop(eb, EVLOOP_NONBLOCK);
		assert_true(mono_ms() < deadline);
		nap_ms(1);
	}
	k->s = NULL;
}

/* n packets each way, every one relayed, byte for byte: none read by a
 * worker that has the sockets in its set from an earlier session. */
static void kept_check(struct kept *k, int pa, int pb, uint8_t tag, int n)
{
	uint8_t pkt[12 + 160], got[BUF_SIZE];
	struct sockaddr_in src;
	uint64_t deadline = mono_ms() + WAIT_MS;

	memset(pkt, tag, sizeof(pkt));
	pkt[0] = 0x80;
	pkt[1] = 0;
	/* the update is asynchronous: send until the first one crosses */
	for (;;) {
		send_to(pa, pkt, sizeof(pkt), &k->at[LEG_A]);
		if (recv_within(pb, got, sizeof(got), 20, &src) == (ssize_t)sizeof(pkt))
			break;
		assert_true(mono_ms() < deadline);
	}
	assert_memory_equal(got, pkt, sizeof(pkt));
	while (recv_within(pb, got, sizeof(got), 20, &src) > 0) /* the tries that crossed late */
		;
	for (int i = 0; i < n; i++) {
		pkt[2] = (uint8_t)i;
		send_to(pa, pkt, sizeof(pkt), &k->at[LEG_A]);
		assert_int_equal(recv_within(pb, got, sizeof(got), WAIT_MS, &src),
				 (ssize_t)sizeof(pkt));
		assert_memory_equal(got, pkt, sizeof(pkt));
		send_to(pb, pkt, sizeof(pkt), &k->at[LEG_B]);
		assert_int_equal(recv_within(pa, got, sizeof(got), WAIT_MS, &src),
				 (ssize_t)sizeof(pkt));
		assert_memory_equal(got, pkt, sizeof(pkt));
	}
}

/* The first packet pb gets after a start is a full one of pa's, never a
 * 12-byte stray that reached the sockets before. */
static void kept_first(struct kept *k, int pa, int pb)
{
	uint8_t pkt[12 + 160], got[BUF_SIZE];
	uint64_t deadline = mono_ms() + WAIT_MS;
	ssize_t n;

	memset(pkt, 0x33, sizeof(pkt));
	pkt[0] = 0x80;
	pkt[1] = 0;
	for (;;) {
		send_to(pa, pkt, sizeof(pkt), &k->at[LEG_A]);
		n = recv_within(pb, got, sizeof(got), 20, NULL);
		if (n >= 0)
			break;
		assert_true(mono_ms() < deadline);
	}
	assert_int_equal(n, (ssize_t)sizeof(pkt));
	while (recv_within(pb, got, sizeof(got), 20, NULL) > 0) /* later tries */
		;
}

static void sockets_stay_in_a_workers_set(void **state)
{
	struct event_base *eb = event_base_new();
	struct relay *r = NULL;
	struct kept k[NKEPT];
	struct sockaddr_in pa_at, pb_at;
	int pa, pb;
	uint8_t stray[12] = { 0x80 };

	(void)state;
	assert_non_null(eb);
	assert_int_equal(relay_create(&r, eb, 2, test_relay_io(), NULL, NULL), 0);
	assert_relay_io(r);
	pa = udp_socket(&pa_at);
	pb = udp_socket(&pb_at);
	for (int i = 0; i < NKEPT; i++)
		kept_open(&k[i], 1000 + (uint64_t)i);
	/* every set served once, at once: the calls alternate between the
	 * two workers (the one with fewer calls), so sets 0, 2, 4, 6 are in
	 * the first worker's set afterwards */
	for (int i = 0; i < NKEPT; i++)
		kept_start(r, &k[i], &pa_at, &pb_at);
	for (int i = 0; i < NKEPT; i++)
		kept_check(&k[i], pa, pb, (uint8_t)i, 2);
	for (int i = 0; i < NKEPT; i++)
		kept_stop(eb, &k[i]);

	/* Again on the same sockets: each call goes back to the worker that
	 * has them while that is fair. Sets 2, 4 and 6 load the first worker
	 * with three calls, so set 0 goes to the other, its sockets still in
	 * the first one's set: every packet must still cross once. */
	for (int i = 2; i < NKEPT; i += 2)
		kept_start(r, &k[i], &pa_at, &pb_at);
	kept_start(r, &k[0], &pa_at, &pb_at);
	kept_check(&k[0], pa, pb, 0x40, 20);
	for (int i = 2; i < NKEPT; i += 2)
		kept_check(&k[i], pa, pb, (uint8_t)(0x40 + i), 2);
	for (int i = 0; i < NKEPT; i += 2)
		kept_stop(eb, &k[i]);

	/* A packet between calls takes the socket out of the set unread; it
	 * comes back with the next call, emptied first: the stray is never
	 * relayed. (No wait is needed: the stray's event reaches the worker
	 * no later than the next call's command, and a batch's events are
	 * served before its commands.) */
	send_to(pa, stray, sizeof(stray), &k[0].at[LEG_A]);
	kept_start(r, &k[0], &pa_at, &pb_at);
	kept_first(&k[0], pa, pb);
	kept_check(&k[0], pa, pb, 0x50, 5);
	kept_stop(eb, &k[0]);

	/* Sockets closed and opened again under the same numbers, with a new
	 * id: the kernel took the old ones out of the set when they closed */
	kept_close(&k[0]);
	kept_open(&k[0], 2000);
	/* and what reached them before their first call is not relayed */
	send_to(pa, stray, sizeof(stray), &k[0].at[LEG_A]);
	kept_start(r, &k[0], &pa_at, &pb_at);
	kept_first(&k[0], pa, pb);
	kept_check(&k[0], pa, pb, 0x60, 5);
	kept_stop(eb, &k[0]);

	/* and without ids: the set holds them for the session only */
	k[1].id = 0;
	kept_start(r, &k[1], &pa_at, &pb_at);
	kept_check(&k[1], pa, pb, 0x70, 5);
	kept_stop(eb, &k[1]);

	relay_destroy(r);
	for (int i = 0; i < NKEPT; i++)
		kept_close(&k[i]);
	close_fd(&pa);
	close_fd(&pb);
	event_base_free(eb);
}

/* The SRTP path byte for byte against libsrtp's published vectors
 * (test/srtp_driver.c, srtp_validate: AES_CM_128_HMAC_SHA1_80, SSRC
 * 0xcafebabe, sequence 0x1234, ROC 0; SRTCP index 1): the HMAC-SHA1 that
 * srtpctx puts in libsrtp2's place must give the very tags libsrtp2's own
 * gives, or no carrier would hear us. */
static void srtp_known_answer(void **state)
{
	static const uint8_t keysalt[30] = { 0xe1, 0xf9, 0x7a, 0x0d, 0x3e, 0x01, 0x8b, 0xe0,
					     0xd6, 0x4f, 0xa3, 0x2c, 0x06, 0xde, 0x41, 0x39,
					     0x0e, 0xc6, 0x75, 0xad, 0x49, 0x8a, 0xfe, 0xeb,
					     0xb6, 0x96, 0x0b, 0x3a, 0xab, 0xe6 };
	static const uint8_t rtp_cipher[38] = { 0x80, 0x0f, 0x12, 0x34, 0xde, 0xca, 0xfb, 0xad,
						0xca, 0xfe, 0xba, 0xbe, 0x4e, 0x55, 0xdc, 0x4c,
						0xe7, 0x99, 0x78, 0xd8, 0x8c, 0xa4, 0xd2, 0x15,
						0x94, 0x9d, 0x24, 0x02, 0xb7, 0x8d, 0x6a, 0xcc,
						0x99, 0xea, 0x17, 0x9b, 0x8d, 0xbb };
	static const uint8_t rtcp_cipher[38] = { 0x81, 0xc8, 0x00, 0x0b, 0xca, 0xfe, 0xba, 0xbe,
						 0x71, 0x28, 0x03, 0x5b, 0xe4, 0x87, 0xb9, 0xbd,
						 0xbe, 0xf8, 0x90, 0x41, 0xf9, 0x77, 0xa5, 0xa8,
						 0x80, 0x00, 0x00, 0x01, 0x99, 0x3e, 0x08, 0xcd,
						 0x54, 0xd6, 0xc1, 0x23, 0x07, 0x98 };
	uint8_t rtp_plain[28] = { 0x80, 0x0f, 0x12, 0x34, 0xde, 0xca,
				  0xfb, 0xad, 0xca, 0xfe, 0xba, 0xbe };
	uint8_t rtcp_plain[24] = { 0x81, 0xc8, 0x00, 0x0b, 0xca, 0xfe, 0xba, 0xbe };
	uint8_t buf[BUF_SIZE];
	struct sdes_key key;
	struct srtpctx *tx, *rx;
	struct srtpctx_params p = { .suite = SUITE_AES_CM_128_HMAC_SHA1_80, .key = &key };
	size_t len;

	(void)state;
	memset(&key, 0, sizeof(key));
	assert_int_equal(secret_set(&key.keysalt, keysalt, sizeof(keysalt)), 0);
	memset(rtp_plain + 12, 0xab, sizeof(rtp_plain) - 12);
	memset(rtcp_plain + 8, 0xab, sizeof(rtcp_plain) - 8);
	assert_int_equal(srtpctx_create(&tx, SRTPCTX_OUTBOUND, &p), 0);
	assert_int_equal(srtpctx_create(&rx, SRTPCTX_INBOUND, &p), 0);

	memcpy(buf, rtp_plain, sizeof(rtp_plain));
	len = sizeof(rtp_plain);
	assert_int_equal(srtpctx_protect_rtp(tx, buf, &len, sizeof(buf)), SRTPCTX_OK);
	assert_int_equal(len, sizeof(rtp_cipher));
	assert_memory_equal(buf, rtp_cipher, sizeof(rtp_cipher));
	assert_int_equal(srtpctx_unprotect_rtp(rx, buf, &len), SRTPCTX_OK);
	assert_int_equal(len, sizeof(rtp_plain));
	assert_memory_equal(buf, rtp_plain, sizeof(rtp_plain));

	memcpy(buf, rtcp_plain, sizeof(rtcp_plain));
	len = sizeof(rtcp_plain);
	assert_int_equal(srtpctx_protect_rtcp(tx, buf, &len, sizeof(buf)), SRTPCTX_OK);
	assert_int_equal(len, sizeof(rtcp_cipher));
	assert_memory_equal(buf, rtcp_cipher, sizeof(rtcp_cipher));
	assert_int_equal(srtpctx_unprotect_rtcp(rx, buf, &len), SRTPCTX_OK);
	assert_int_equal(len, sizeof(rtcp_plain));
	assert_memory_equal(buf, rtcp_plain, sizeof(rtcp_plain));

	/* one bit of the tag off: refused (by a context that has not seen the
	 * packet, or the replay check would answer first) */
	srtpctx_destroy(rx);
	assert_int_equal(srtpctx_create(&rx, SRTPCTX_INBOUND, &p), 0);
	memcpy(buf, rtp_cipher, sizeof(rtp_cipher));
	buf[sizeof(rtp_cipher) - 1] ^= 1;
	len = sizeof(rtp_cipher);
	assert_int_equal(srtpctx_unprotect_rtp(rx, buf, &len), SRTPCTX_AUTH_FAIL);
	srtpctx_destroy(tx);
	srtpctx_destroy(rx);
	secret_wipe(&key.keysalt);
}

/* ---- the ring fails: the worker goes on with epoll ---- */

/* From now on io_uring_enter fails with EPERM in every thread of this
 * process, as a seccomp filter a service manager installs would make it
 * (hence the last test). false when the kernel refuses the filter. */
static bool forbid_io_uring_enter(void)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_enter, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(filter) / sizeof(filter[0]), .filter = filter };

	return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
	       syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog) == 0;
}

/* A worker whose ring stops working mid-call loses no packet: the batch it
 * could not submit stays in the sockets, and the worker reads it, and all
 * that follows, with recvmmsg and sendmmsg. */
static void ring_failure_falls_back_to_epoll(void **state)
{
	struct fx *f;
	uint8_t plain[BUF_SIZE];
	struct relay_stats st;
	struct relay_counts ain, bout, bin, aout;
	size_t n;
	const unsigned N = 5;

	(void)state;
	if (test_relay_io() != RELAY_IO_URING)
		skip();
	f = fx_start(defaults(SUITE_AES_CM_128_HMAC_SHA1_80)); /* sends the IVR's first packets */
	baseline(f, RELAY_RTP, &ain, &bout, &bin, &aout);
	for (unsigned i = 0; i < N; i++) {
		n = car_send_rtp(f, plain);
		ivr_recv_exact(f->ivr, plain, n, &f->b_rtp);
	}
	relay_get_stats(f->r, &st);
	assert_int_equal(st.uring_workers, 1);
	if (!forbid_io_uring_enter()) {
		fx_fini(f);
		skip();
	}
	for (unsigned i = 0; i < N; i++) {
		n = car_send_rtp(f, plain);
		ivr_recv_exact(f->ivr, plain, n, &f->b_rtp);
		n = ivr_send_rtp(f, plain);
		car_recv_relayed(f, f->car, plain, n);
	}
	relay_get_stats(f->r, &st);
	assert_int_equal(st.uring_workers, 0);
	assert_int_equal(relay_io_used(f->r), RELAY_IO_URING); /* what it was started with */
	WAIT_COUNT(f, LEG_A, RELAY_RTP, RELAY_IN, packets, ain.packets + 2 * N);
	WAIT_COUNT(f, LEG_B, RELAY_RTP, RELAY_OUT, packets, bout.packets + 2 * N);
	WAIT_COUNT(f, LEG_B, RELAY_RTP, RELAY_IN, packets, bin.packets + N);
	WAIT_COUNT(f, LEG_A, RELAY_RTP, RELAY_OUT, packets, aout.packets + N);
	assert_int_equal(counts(f, LEG_B, RELAY_RTP, RELAY_OUT).errors, 0);
	assert_int_equal(counts(f, LEG_A, RELAY_RTP, RELAY_OUT).errors, 0);
	assert_nothing(f->ivr);
	assert_nothing(f->car);
	fx_fini(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(rtp_both_ways_every_suite, teardown_test),
		cmocka_unit_test_teardown(srtcp_both_ways_every_suite, teardown_test),
		cmocka_unit_test_teardown(srtcp_unencrypted_every_suite, teardown_test),
		cmocka_unit_test_teardown(replay_tamper_wrong_key, teardown_test),
		cmocka_unit_test_teardown(stranger_to_secure_leg, teardown_test),
		cmocka_unit_test_teardown(stranger_to_plain_leg_strict, teardown_test),
		cmocka_unit_test_teardown(plain_leg_learns_first_source, teardown_test),
		cmocka_unit_test_teardown(secure_leg_latches_on_authenticated, teardown_test),
		cmocka_unit_test_teardown(ivr_source_changes, teardown_test),
		cmocka_unit_test_teardown(ivr_restart_after_short_prompt, teardown_test),
		cmocka_unit_test_teardown(output_sequence_wraps, teardown_test),
		cmocka_unit_test_teardown(relay_destroy_finishes_sessions, teardown_test),
		cmocka_unit_test_teardown(last_rx_and_hold, teardown_test),
		cmocka_unit_test_teardown(rtcp_mux_on_secure_leg, teardown_test),
		cmocka_unit_test(calls_shared_over_workers),
		cmocka_unit_test(sockets_stay_in_a_workers_set),
		cmocka_unit_test(srtp_known_answer),
		/* last: it forbids io_uring to the whole process */
		cmocka_unit_test_teardown(ring_failure_falls_back_to_epoll, teardown_test),
	};

	if (test_relay_io_check())
		return RELAY_IO_SKIPPED;
	return cmocka_run_group_tests_name("relay", tests, setup_group, teardown_group);
}
