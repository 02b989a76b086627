/* test_probe_media.c: srtpprobe's media engine (tools/srtpprobe/pmedia.h).
 *
 * Two engines on one event_base over 127.0.0.1 talk to each other directly
 * (no daemon): a caller and an answerer, plain and on every suite, with
 * every fault switch seen at the other engine. The engines run at
 * SPEED times real pace (pmedia_set_speed: every interval and every
 * measurement scales with it), so a 2 s call takes 0.2 s. Nothing asserts a
 * wall-clock time: what is checked is what the engines counted. */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "pmedia.h"
#include "srtpbridge/rtp.h"
#include "srtpbridge/srtplib.h"
#include "tone.h"

#define SPEED 10

/* ---- helpers ---- */

static void lo(struct sockaddr_storage *ss, socklen_t *len, uint16_t port)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	*len = sizeof(*sin);
}

static uint16_t port_of(const struct sockaddr_storage *ss)
{
	return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

/* Runs the loop for ms of the engines' (virtual) time. */
static void run_ms(struct event_base *b, unsigned ms)
{
	unsigned real_us = ms * 1000 / SPEED;
	struct timeval tv = { real_us / 1000000, real_us % 1000000 };

	event_base_loopexit(b, &tv);
	event_base_dispatch(b);
}

struct call {
	struct event_base *base;
	struct pmedia *c, *a; /* caller, answerer */
	struct pmedia_params pc, pa;
	struct pmedia_stats sc, sa;
	enum pmedia_heard hc, ha;
};

static struct pmedia *engine(struct event_base *b, enum pmedia_role role,
			     const struct pmedia_faults *f)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct pmedia *m = NULL;
	char why[200] = "";
	int err;

	lo(&ss, &len, 0);
	err = pmedia_create(&m, b, role, (struct sockaddr *)&ss, len, f, why, sizeof(why));
	if (err)
		fail_msg("pmedia_create: %d %s", err, why);
	assert_int_equal(pmedia_local_port(m) % 2, 0);
	pmedia_set_speed(m, SPEED);
	return m;
}

static void call_setup(struct call *k, const struct pmedia_faults *fc,
		       const struct pmedia_faults *fa, bool secure, enum suite_id suite, uint8_t pt)
{
	socklen_t len;

	memset(k, 0, sizeof(*k));
	k->base = event_base_new();
	assert_non_null(k->base);
	k->c = engine(k->base, PMEDIA_CALLER, fc);
	k->a = engine(k->base, PMEDIA_ANSWERER, fa);
	lo(&k->pc.remote_rtp, &len, pmedia_local_port(k->a));
	k->pc.remote_rtp_len = len;
	lo(&k->pa.remote_rtp, &len, pmedia_local_port(k->c));
	k->pa.remote_rtp_len = len;
	k->pc.pt = k->pa.pt = pt;
	k->pc.dir = k->pa.dir = PMEDIA_SENDRECV;
	k->pc.secure = k->pa.secure = secure;
	k->pc.suite = k->pa.suite = suite;
	if (secure) {
		assert_int_equal(pmedia_random_key(suite, &k->pc.our_key), 0);
		assert_int_equal(pmedia_random_key(suite, &k->pa.our_key), 0);
		k->pc.peer_key = k->pa.our_key;
		k->pa.peer_key = k->pc.our_key;
	}
}

static void call_start(struct call *k)
{
	char why[200] = "";
	int err;

	err = pmedia_start(k->c, &k->pc, why, sizeof(why));
	if (err)
		fail_msg("caller start: %d %s", err, why);
	err = pmedia_start(k->a, &k->pa, why, sizeof(why));
	if (err)
		fail_msg("answerer start: %d %s", err, why);
}

static void call_snap(struct call *k)
{
	pmedia_stats(k->c, &k->sc);
	pmedia_stats(k->a, &k->sa);
	k->hc = pmedia_heard(k->c);
	k->ha = pmedia_heard(k->a);
}

/* settle ms, then a measurement window of measure ms, stop, let what is in
 * flight arrive, read both. */
static void call_run(struct call *k, unsigned settle, unsigned measure)
{
	run_ms(k->base, settle);
	pmedia_window_reset(k->c);
	pmedia_window_reset(k->a);
	run_ms(k->base, measure);
	pmedia_stop(k->c);
	pmedia_stop(k->a);
	run_ms(k->base, 100);
	call_snap(k);
}

static void params_wipe_test(struct pmedia_params *p)
{
	secret_wipe(&p->our_key.keysalt);
	secret_wipe(&p->peer_key.keysalt);
}

static void call_end(struct call *k)
{
	pmedia_destroy(k->c);
	pmedia_destroy(k->a);
	secret_wipe(&k->pc.our_key.keysalt);
	secret_wipe(&k->pa.our_key.keysalt);
	secret_wipe(&k->pc.peer_key.keysalt);
	secret_wipe(&k->pa.peer_key.keysalt);
	event_base_free(k->base);
}

static uint64_t rtp_fail(const struct pmedia_stats *s)
{
	return s->rtp_auth_fail + s->rtp_replay_fail + s->rtp_cant_check + s->rtp_other_fail;
}

static uint64_t rtcp_fail(const struct pmedia_stats *s)
{
	return s->rtcp_auth_fail + s->rtcp_replay_fail + s->rtcp_cant_check + s->rtcp_other_fail;
}

static void print_stats(const char *who, const struct pmedia_stats *s)
{
	print_message("%s: sent %lu rtp %lu rtcp; recv %lu rtp %lu rtcp; lost %ld; fail rtp %lu "
		      "rtcp %lu; tones A %lu B %lu C %lu sil %lu oth %lu; win %lu ms A %lu B %lu "
		      "C %lu sil %lu\n",
		      who, (unsigned long)s->rtp_sent, (unsigned long)s->rtcp_sent,
		      (unsigned long)s->rtp_recv, (unsigned long)s->rtcp_recv, (long)s->lost,
		      (unsigned long)rtp_fail(s), (unsigned long)rtcp_fail(s),
		      (unsigned long)s->tones.n[TONE_A], (unsigned long)s->tones.n[TONE_B],
		      (unsigned long)s->tones.n[TONE_C], (unsigned long)s->tones.n[TONE_SILENCE],
		      (unsigned long)s->tones.n[TONE_OTHER], (unsigned long)s->window.ms,
		      (unsigned long)s->window.tones.n[TONE_A],
		      (unsigned long)s->window.tones.n[TONE_B],
		      (unsigned long)s->window.tones.n[TONE_C],
		      (unsigned long)s->window.tones.n[TONE_SILENCE]);
}

/* Both ways, nothing lost, nothing failed, the right verdicts. */
static void assert_two_way(struct call *k)
{
	if (k->hc != PMEDIA_HEARD_FAR || k->ha != PMEDIA_HEARD_FAR) {
		print_stats("caller", &k->sc);
		print_stats("answerer", &k->sa);
	}
	assert_int_equal(k->hc, PMEDIA_HEARD_FAR);
	assert_int_equal(k->ha, PMEDIA_HEARD_FAR);
	assert_true(k->sc.rtp_sent > 50);
	assert_true(k->sa.rtp_sent > 50);
	assert_int_equal(k->sa.rtp_recv, k->sc.rtp_sent);
	assert_int_equal(k->sc.rtp_recv, k->sa.rtp_sent);
	assert_int_equal(k->sc.lost, 0);
	assert_int_equal(k->sa.lost, 0);
	assert_true(k->sc.loss_pct == 0);
	assert_int_equal(rtp_fail(&k->sc) + rtp_fail(&k->sa), 0);
	assert_int_equal(rtcp_fail(&k->sc) + rtcp_fail(&k->sa), 0);
	assert_int_equal(k->sc.rtp_malformed + k->sa.rtp_malformed, 0);
	assert_int_equal(k->sc.rtcp_malformed + k->sa.rtcp_malformed, 0);
	assert_int_equal(k->sc.unexpected_src + k->sa.unexpected_src, 0);
	assert_int_equal(k->sc.wrong_pt + k->sa.wrong_pt, 0);
	assert_int_equal(k->sc.send_errors + k->sa.send_errors, 0);
	assert_true(k->sc.rtcp_recv >= 1 && k->sa.rtcp_recv >= 1);
	assert_int_equal(k->sc.rtcp_recv, k->sa.rtcp_sent);
	/* each saw the other's one SSRC */
	assert_int_equal(k->sc.n_remote_ssrc, 1);
	assert_int_equal(k->sc.remote_ssrc[0], k->sa.local_ssrc);
	assert_int_equal(k->sa.remote_ssrc[0], k->sc.local_ssrc);
	assert_true(k->sc.have_first_rx && k->sa.have_first_rx);
	/* the caller's tone never changes; the answerer's is B by now */
	assert_int_equal(k->sc.tones.n[TONE_OTHER] + k->sa.tones.n[TONE_OTHER] <= 2, 1);
	assert_int_equal(k->sc.tx_tone, TONE_A);
	assert_int_equal(k->sa.tx_tone, TONE_B);
}

/* ---- pure functions ---- */

static void test_verdict(void **state)
{
	struct pmedia_window w = { .ms = 2000 }; /* 100 frames expected */

	(void)state;
	assert_int_equal(pmedia_verdict(PMEDIA_CALLER, &w), PMEDIA_HEARD_NOTHING);
	w.tones.n[TONE_B] = 50;
	assert_int_equal(pmedia_verdict(PMEDIA_CALLER, &w), PMEDIA_HEARD_FAR);
	w.tones.n[TONE_B] = 49; /* less than half of what was expected */
	assert_int_equal(pmedia_verdict(PMEDIA_CALLER, &w), PMEDIA_HEARD_OTHER);
	w.tones.n[TONE_B] = 0;
	w.tones.n[TONE_C] = 60;
	assert_int_equal(pmedia_verdict(PMEDIA_CALLER, &w), PMEDIA_HEARD_C);
	w.tones.n[TONE_C] = 0;
	w.tones.n[TONE_A] = 90;
	assert_int_equal(pmedia_verdict(PMEDIA_CALLER, &w), PMEDIA_HEARD_OWN);
	assert_int_equal(pmedia_verdict(PMEDIA_ANSWERER, &w), PMEDIA_HEARD_FAR);
	w.tones.n[TONE_A] = 0;
	w.tones.n[TONE_B] = 30;
	w.tones.n[TONE_C] = 30;
	/* the answerer's own tones, together */
	assert_int_equal(pmedia_verdict(PMEDIA_ANSWERER, &w), PMEDIA_HEARD_OWN);
	/* the caller: far before C when both pass? neither does alone here */
	assert_int_equal(pmedia_verdict(PMEDIA_CALLER, &w), PMEDIA_HEARD_OTHER);
	memset(&w.tones, 0, sizeof(w.tones));
	w.tones.n[TONE_SILENCE] = 100;
	assert_int_equal(pmedia_verdict(PMEDIA_CALLER, &w), PMEDIA_HEARD_SILENCE);
	assert_int_equal(pmedia_verdict(PMEDIA_ANSWERER, &w), PMEDIA_HEARD_SILENCE);
	memset(&w.tones, 0, sizeof(w.tones));
	w.tones.n[TONE_OTHER] = 24;
	assert_int_equal(pmedia_verdict(PMEDIA_CALLER, &w), PMEDIA_HEARD_NOTHING);
	w.tones.n[TONE_OTHER] = 25;
	assert_int_equal(pmedia_verdict(PMEDIA_CALLER, &w), PMEDIA_HEARD_OTHER);
	/* a short window: at least PMEDIA_HEARD_MIN_FRAMES, even if that is
	 * all of it */
	memset(&w.tones, 0, sizeof(w.tones));
	w.ms = 300;
	w.tones.n[TONE_B] = 15;
	assert_int_equal(pmedia_verdict(PMEDIA_CALLER, &w), PMEDIA_HEARD_NOTHING);
	w.ms = 600;
	w.tones.n[TONE_B] = 25;
	assert_int_equal(pmedia_verdict(PMEDIA_CALLER, &w), PMEDIA_HEARD_FAR);
	/* B wins over C when both are heard (a change in the window) */
	w.ms = 1000;
	w.tones.n[TONE_B] = 25;
	w.tones.n[TONE_C] = 25;
	assert_int_equal(pmedia_verdict(PMEDIA_CALLER, &w), PMEDIA_HEARD_FAR);
}

/* RFC 3550 A.1/A.3/A.8 arithmetic on synthetic arrivals. */
static void test_rx_arithmetic(void **state)
{
	struct pmedia_rx r;
	uint16_t seq = 65530;
	uint32_t ts = 1000, t = 500000;
	double j = 0;
	int64_t prev = 0;

	(void)state;
	/* a steady stream across the sequence wrap: nothing lost, no jitter */
	memset(&r, 0, sizeof(r));
	for (int i = 0; i < 20; i++, seq++, ts += 160, t += 160)
		pmedia_rx_packet(&r, seq, ts, t);
	assert_int_equal(pmedia_rx_lost(&r), 0);
	assert_int_equal(pmedia_rx_expected(&r), 19); /* the first is on probation */
	assert_int_equal(pmedia_rx_ext_max(&r), 65536 + 13);
	assert_true(pmedia_rx_jitter_ms(&r) == 0);
	assert_int_equal(pmedia_rx_fraction(&r), 0);

	/* 5 lost out of the next 20 */
	for (int i = 0; i < 20; i++, seq++, ts += 160, t += 160)
		if (i % 4 != 1)
			pmedia_rx_packet(&r, seq, ts, t);
	assert_int_equal(pmedia_rx_lost(&r), 5);
	assert_int_equal(pmedia_rx_fraction(&r), 5 * 256 / 20);
	/* a duplicate makes lost smaller: never a negative fraction */
	pmedia_rx_packet(&r, (uint16_t)(seq - 1), ts - 160, t);
	pmedia_rx_packet(&r, (uint16_t)(seq - 1), ts - 160, t);
	assert_int_equal(pmedia_rx_lost(&r), 3);
	assert_int_equal(pmedia_rx_fraction(&r), 0);
	/* a reordered packet is not loss once it arrives */
	pmedia_rx_packet(&r, (uint16_t)(seq + 1), ts + 160, t + 320);
	pmedia_rx_packet(&r, seq, ts, t + 330);
	seq += 2;
	assert_int_equal(pmedia_rx_lost(&r), 3);

	/* jitter: transit alternating by 80 units (10 ms) converges to 80,
	 * exactly as the A.8 recursion computes it */
	memset(&r, 0, sizeof(r));
	ts = 0;
	for (int i = 0; i < 400; i++) {
		int64_t transit = (i % 2) ? 80 : 0;
		uint32_t arrival = (uint32_t)(ts + 1000 + transit);

		pmedia_rx_packet(&r, (uint16_t)i, ts, arrival);
		if (i > 0) {
			int64_t d = transit - prev;

			j += ((double)(d < 0 ? -d : d) - j) / 16.0;
		}
		prev = transit;
		ts += 160;
	}
	assert_true(r.jitter > 79.9 && r.jitter < 80.1);
	assert_true(r.jitter == j);
	assert_true(pmedia_rx_jitter_ms(&r) > 9.99 && pmedia_rx_jitter_ms(&r) < 10.01);

	/* a restarted source (a big jump) takes over after two in order */
	memset(&r, 0, sizeof(r));
	for (int i = 0; i < 10; i++)
		pmedia_rx_packet(&r, (uint16_t)(100 + i), 0, 0);
	assert_false(pmedia_rx_packet(&r, 30000, 0, 0));
	assert_true(pmedia_rx_packet(&r, 30001, 0, 0));
	assert_int_equal(pmedia_rx_lost(&r), 0);
	assert_int_equal(pmedia_rx_expected(&r), 1);
	/* nothing at all */
	memset(&r, 0, sizeof(r));
	assert_int_equal(pmedia_rx_lost(&r), 0);
	assert_int_equal(pmedia_rx_expected(&r), 0);
	assert_int_equal(pmedia_rx_fraction(&r), 0);
}

static void test_names_keys(void **state)
{
	struct sdes_key k;
	struct pmedia_faults f = { .tag_mismatch = true };
	const char *why = NULL;

	(void)state;
	for (int s = 0; s < SUITE_COUNT; s++) {
		assert_int_equal(pmedia_random_key((enum suite_id)s, &k), 0);
		assert_int_equal(k.keysalt.len, suite_keysalt_len((enum suite_id)s));
		assert_false(k.has_mki);
	}
	assert_int_equal(pmedia_random_key(SUITE_COUNT, &k), EINVAL);
	assert_true(pmedia_fault_suite_ok(&f, SUITE_AES_CM_128_HMAC_SHA1_32, &why));
	assert_false(pmedia_fault_suite_ok(&f, SUITE_AEAD_AES_128_GCM, &why));
	assert_non_null(why);
	assert_true(pmedia_fault_suite_ok(NULL, SUITE_AEAD_AES_128_GCM, NULL));
	assert_string_equal(pmedia_role_name(PMEDIA_ANSWERER), "answerer");
	assert_string_equal(pmedia_dir_name(PMEDIA_RECVONLY), "recvonly");
	assert_string_equal(pmedia_heard_name(PMEDIA_HEARD_C), "C");
	assert_string_equal(pmedia_heard_name((enum pmedia_heard)42), "?");
}

/* ---- two engines ---- */

static void test_two_way_plain(void **state)
{
	(void)state;
	for (int alaw = 0; alaw < 2; alaw++) {
		struct call k;

		call_setup(&k, NULL, NULL, false, 0, alaw ? PMEDIA_PT_PCMA : PMEDIA_PT_PCMU);
		call_start(&k);
		call_run(&k, 500, 1500);
		assert_two_way(&k);
		assert_false(k.sc.rx_roc_known);
		/* RTT from the report blocks: loopback, a few ms at most */
		assert_true(k.sc.rtt_count >= 1);
		assert_true(k.sc.rtt_min_ms >= 0 && k.sc.rtt_max_ms < 200);
		assert_true(k.sc.peer_report && k.sa.peer_report);
		assert_int_equal(k.sc.peer_cumulative_lost, 0);
		/* jitter here is the machine's scheduling, times SPEED: not checked */
		assert_true(k.sc.jitter_ms >= 0);
		call_end(&k);
	}
}

static void test_two_way_every_suite(void **state)
{
	(void)state;
	for (int s = 0; s < SUITE_COUNT; s++) {
		for (int alaw = 0; alaw < 2; alaw++) {
			struct call k;

			call_setup(&k, NULL, NULL, true, (enum suite_id)s,
				   alaw ? PMEDIA_PT_PCMA : PMEDIA_PT_PCMU);
			call_start(&k);
			call_run(&k, 400, 1200);
			print_message("%s %s: caller %s, answerer %s\n",
				      suite_name((enum suite_id)s), alaw ? "PCMA" : "PCMU",
				      pmedia_heard_name(k.hc), pmedia_heard_name(k.ha));
			assert_two_way(&k);
			assert_true(k.sc.rx_roc_known);
			call_end(&k);
		}
	}
}

/* IPv6 (::1), where the machine has it. */
static void test_two_way_ipv6(void **state)
{
	struct sockaddr_in6 six = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	int probe = socket(AF_INET6, SOCK_DGRAM, 0);
	struct event_base *b;
	struct pmedia *m[2];
	struct pmedia_params p[2];
	struct pmedia_stats st[2];
	char why[200] = "";

	(void)state;
	if (probe < 0 || bind(probe, (struct sockaddr *)&six, sizeof(six)) != 0) {
		if (probe >= 0)
			close(probe);
		skip();
	}
	close(probe);
	b = event_base_new();
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pmedia_create(&m[i], b, i ? PMEDIA_ANSWERER : PMEDIA_CALLER,
					       (struct sockaddr *)&six, sizeof(six), NULL, why,
					       sizeof(why)),
				 0);
		pmedia_set_speed(m[i], SPEED);
	}
	for (int i = 0; i < 2; i++) {
		struct sockaddr_in6 to = six;

		memset(&p[i], 0, sizeof(p[i]));
		to.sin6_port = htons(pmedia_local_port(m[1 - i]));
		memcpy(&p[i].remote_rtp, &to, sizeof(to));
		p[i].remote_rtp_len = sizeof(to);
		p[i].secure = true;
		p[i].suite = SUITE_AES_256_CM_HMAC_SHA1_32;
		assert_int_equal(pmedia_random_key(p[i].suite, &p[i].our_key), 0);
	}
	p[0].peer_key = p[1].our_key;
	p[1].peer_key = p[0].our_key;
	for (int i = 0; i < 2; i++)
		assert_int_equal(pmedia_start(m[i], &p[i], why, sizeof(why)), 0);
	run_ms(b, 400);
	for (int i = 0; i < 2; i++)
		pmedia_window_reset(m[i]);
	run_ms(b, 1300); /* past the second RTCP interval: an RTT */
	for (int i = 0; i < 2; i++) {
		pmedia_stop(m[i]);
		assert_int_equal(pmedia_heard(m[i]), PMEDIA_HEARD_FAR);
	}
	run_ms(b, 100);
	for (int i = 0; i < 2; i++)
		pmedia_stats(m[i], &st[i]);
	assert_int_equal(st[0].rtp_recv, st[1].rtp_sent);
	assert_int_equal(st[1].rtp_recv, st[0].rtp_sent);
	assert_int_equal(st[0].unexpected_src + st[1].unexpected_src, 0);
	assert_int_equal(st[0].lost + st[1].lost, 0);
	assert_true(st[0].rtt_count >= 1);
	for (int i = 0; i < 2; i++) {
		pmedia_destroy(m[i]);
		params_wipe_test(&p[i]);
	}
	event_base_free(b);
}

/* A fault on the caller's sending side that the answerer cannot decrypt:
 * the answerer hears nothing, so it sends C, which the caller hears. */
static void assert_far_deaf(struct call *k)
{
	if (k->hc != PMEDIA_HEARD_C || k->ha != PMEDIA_HEARD_NOTHING) {
		print_stats("caller", &k->sc);
		print_stats("answerer", &k->sa);
	}
	assert_int_equal(k->hc, PMEDIA_HEARD_C);
	assert_int_equal(k->ha, PMEDIA_HEARD_NOTHING);
	assert_int_equal(k->sa.tones.n[TONE_A], 0);
	assert_int_equal(k->sa.tx_tone, TONE_C);
}

static void run_fault(struct call *k, const struct pmedia_faults *fc,
		      const struct pmedia_faults *fa, bool secure, enum suite_id s)
{
	call_setup(k, fc, fa, secure, s, PMEDIA_PT_PCMU);
	call_start(k);
	call_run(k, 500, 1000);
}

static void test_fault_tag_mismatch(void **state)
{
	struct pmedia_faults f = { .tag_mismatch = true };
	struct call k;
	char why[200] = "";

	(void)state;
	for (int s = SUITE_AES_CM_128_HMAC_SHA1_80; s <= SUITE_AES_CM_128_HMAC_SHA1_32; s++) {
		run_fault(&k, &f, NULL, true, (enum suite_id)s);
		assert_far_deaf(&k);
		assert_true(k.sa.rtp_auth_fail + k.sa.rtp_cant_check >= 50);
		assert_int_equal(k.sa.rtp_recv, 0);
		/* SRTCP keeps the 80-bit tag with either suite: it still decrypts */
		assert_true(k.sa.rtcp_recv >= 1);
		assert_int_equal(k.sc.rtp_sent, k.sc.rtp_sent); /* it did send */
		assert_true(k.sc.rtp_sent > 50);
		call_end(&k);
	}
	/* no twin for GCM: the start says so */
	call_setup(&k, &f, NULL, true, SUITE_AEAD_AES_128_GCM, PMEDIA_PT_PCMU);
	assert_int_equal(pmedia_start(k.c, &k.pc, why, sizeof(why)), ENOTSUP);
	assert_non_null(strstr(why, "tag"));
	call_end(&k);
}

static void test_fault_wrong_key(void **state)
{
	struct pmedia_faults f = { .wrong_key = true };
	struct call k;

	(void)state;
	run_fault(&k, &f, NULL, true, SUITE_AES_CM_128_HMAC_SHA1_80);
	assert_far_deaf(&k);
	assert_true(k.sa.rtp_auth_fail >= 50);
	assert_true(k.sa.rtcp_auth_fail >= 1);
	assert_int_equal(k.sa.rtp_recv + k.sa.rtcp_recv, 0);
	call_end(&k);

	/* on the answerer's side: the caller hears nothing, the answerer A */
	run_fault(&k, NULL, &f, true, SUITE_AEAD_AES_256_GCM);
	assert_int_equal(k.hc, PMEDIA_HEARD_NOTHING);
	assert_int_equal(k.ha, PMEDIA_HEARD_FAR);
	assert_true(k.sc.rtp_auth_fail >= 50);
	assert_int_equal(k.sc.rtp_recv, 0);
	call_end(&k);
}

static void test_fault_send_plain(void **state)
{
	struct pmedia_faults f = { .send_plain = true };
	struct call k;

	(void)state;
	run_fault(&k, &f, NULL, true, SUITE_AES_CM_128_HMAC_SHA1_32);
	assert_far_deaf(&k);
	assert_true(rtp_fail(&k.sa) >= 50);
	assert_true(rtcp_fail(&k.sa) >= 1);
	assert_int_equal(k.sa.rtp_recv, 0);
	call_end(&k);
}

static void test_fault_silence(void **state)
{
	struct pmedia_faults f = { .silence = true };
	struct call k;

	(void)state;
	for (int alaw = 0; alaw < 2; alaw++) {
		call_setup(&k, &f, NULL, alaw, SUITE_AES_CM_128_HMAC_SHA1_80,
			   alaw ? PMEDIA_PT_PCMA : PMEDIA_PT_PCMU);
		call_start(&k);
		call_run(&k, 500, 1000);
		assert_int_equal(k.hc, PMEDIA_HEARD_C);
		assert_int_equal(k.ha, PMEDIA_HEARD_SILENCE);
		assert_int_equal(k.sa.tones.n[TONE_SILENCE], k.sa.rtp_recv);
		assert_int_equal(k.sa.rtp_recv, k.sc.rtp_sent);
		assert_int_equal(rtp_fail(&k.sa), 0);
		assert_int_equal(k.sc.tx_tone, TONE_SILENCE);
		call_end(&k);
	}
}

static void test_fault_no_media(void **state)
{
	struct pmedia_faults f = { .no_media = true };
	struct call k;

	(void)state;
	run_fault(&k, &f, NULL, true, SUITE_AES_CM_128_HMAC_SHA1_80);
	assert_far_deaf(&k);
	assert_int_equal(k.sc.rtp_sent + k.sc.rtcp_sent, 0);
	assert_int_equal(k.sa.rtp_recv + k.sa.rtcp_recv + rtp_fail(&k.sa) + rtcp_fail(&k.sa), 0);
	assert_false(k.sa.have_first_rx);
	/* the caller still hears and reports the answerer */
	assert_true(k.sc.rtp_recv > 50);
	call_end(&k);
}

static void test_fault_no_rtcp(void **state)
{
	struct pmedia_faults f = { .no_rtcp = true };
	struct call k;

	(void)state;
	run_fault(&k, &f, NULL, true, SUITE_AES_CM_128_HMAC_SHA1_80);
	assert_int_equal(k.hc, PMEDIA_HEARD_FAR);
	assert_int_equal(k.ha, PMEDIA_HEARD_FAR);
	assert_int_equal(k.sc.rtcp_sent, 0);
	assert_int_equal(k.sa.rtcp_recv + rtcp_fail(&k.sa), 0);
	assert_true(k.sc.rtcp_recv >= 1);
	assert_int_equal(k.sc.rtt_count, 0); /* nobody reports on what we do not send */
	call_end(&k);
}

static void test_fault_plain_rtcp(void **state)
{
	struct pmedia_faults f = { .plain_rtcp = true };
	struct call k;

	(void)state;
	run_fault(&k, &f, NULL, true, SUITE_AES_CM_128_HMAC_SHA1_80);
	assert_int_equal(k.hc, PMEDIA_HEARD_FAR);
	assert_int_equal(k.ha, PMEDIA_HEARD_FAR);
	assert_true(k.sa.rtcp_cant_check >= 1);
	assert_int_equal(k.sa.rtcp_cant_check, k.sc.rtcp_sent);
	assert_int_equal(k.sa.rtcp_recv, 0);
	assert_int_equal(rtp_fail(&k.sa), 0);
	assert_int_equal(k.sa.lost, 0);
	call_end(&k);

	/* with UNENCRYPTED_SRTCP negotiated it is what both expect */
	call_setup(&k, &f, NULL, true, SUITE_AES_CM_128_HMAC_SHA1_80, PMEDIA_PT_PCMU);
	k.pc.unencrypted_srtcp = k.pa.unencrypted_srtcp = true;
	call_start(&k);
	call_run(&k, 500, 1000);
	assert_two_way(&k);
	call_end(&k);
}

/* A free even pair on 127.0.0.1 (bound, then released for the engine). */
static uint16_t free_pair(void)
{
	for (int tries = 0; tries < 100; tries++) {
		struct sockaddr_storage ss;
		socklen_t len;
		int a = socket(AF_INET, SOCK_DGRAM, 0), b = socket(AF_INET, SOCK_DGRAM, 0);
		uint16_t p;

		lo(&ss, &len, 0);
		assert_int_equal(bind(a, (struct sockaddr *)&ss, len), 0);
		len = sizeof(ss);
		getsockname(a, (struct sockaddr *)&ss, &len);
		p = port_of(&ss);
		lo(&ss, &len, (uint16_t)(p + 1));
		if (!(p & 1) && p < 65534 && bind(b, (struct sockaddr *)&ss, len) == 0) {
			close(a);
			close(b);
			return p;
		}
		close(a);
		close(b);
	}
	fail_msg("no free port pair");
	return 0;
}

static void test_fault_rtp_from(void **state)
{
	struct pmedia_faults f;
	struct call k;

	(void)state;
	memset(&f, 0, sizeof(f));
	f.rtp_from = free_pair();
	run_fault(&k, &f, NULL, true, SUITE_AES_CM_128_HMAC_SHA1_80);
	/* audio flows (the answerer's replies go to the advertised port) */
	assert_int_equal(k.hc, PMEDIA_HEARD_FAR);
	assert_int_equal(k.ha, PMEDIA_HEARD_FAR);
	assert_int_equal(k.sa.lost, 0);
	/* but it comes from elsewhere */
	assert_int_equal(port_of(&k.sa.last_rtp_src), f.rtp_from);
	assert_int_equal(port_of(&k.sa.last_rtcp_src), f.rtp_from + 1);
	assert_int_equal(k.sa.unexpected_src, k.sa.rtp_recv + k.sa.rtcp_recv);
	assert_int_equal(k.sc.unexpected_src, 0);
	call_end(&k);

	/* the far end answers to where we send from: we hear it there too */
	memset(&f, 0, sizeof(f));
	f.rtp_from = free_pair();
	call_setup(&k, &f, NULL, false, 0, PMEDIA_PT_PCMU);
	lo(&k.pa.remote_rtp, &k.pa.remote_rtp_len, f.rtp_from);
	call_start(&k);
	call_run(&k, 500, 1000);
	assert_int_equal(k.hc, PMEDIA_HEARD_FAR);
	assert_int_equal(k.ha, PMEDIA_HEARD_FAR);
	assert_int_equal(k.sc.unexpected_src, 0);
	call_end(&k);

	/* a pair that is taken: create says so */
	{
		struct pmedia *m = NULL, *m2 = NULL;
		struct sockaddr_storage ss;
		socklen_t len;
		char why[200] = "";
		struct event_base *b = event_base_new();

		lo(&ss, &len, 0);
		assert_int_equal(pmedia_create(&m, b, PMEDIA_CALLER, (struct sockaddr *)&ss, len,
					       NULL, why, sizeof(why)),
				 0);
		memset(&f, 0, sizeof(f));
		f.rtp_from = pmedia_local_port(m);
		assert_int_equal(pmedia_create(&m2, b, PMEDIA_CALLER, (struct sockaddr *)&ss, len,
					       &f, why, sizeof(why)),
				 EADDRINUSE);
		assert_null(m2);
		assert_non_null(strstr(why, "rtp-from"));
		lo(&ss, &len, pmedia_local_port(m));
		assert_int_equal(pmedia_create(&m2, b, PMEDIA_CALLER, (struct sockaddr *)&ss, len,
					       NULL, why, sizeof(why)),
				 EADDRINUSE);
		pmedia_destroy(m);
		event_base_free(b);
	}
}

/* A re-INVITE with new keys both ways: nothing lost, nothing failed, the
 * streams go on (sequence, SSRC, ROC). */
static void rekey_both(struct call *k)
{
	char why[200] = "";

	secret_wipe(&k->pc.our_key.keysalt);
	secret_wipe(&k->pa.our_key.keysalt);
	assert_int_equal(pmedia_random_key(k->pc.suite, &k->pc.our_key), 0);
	assert_int_equal(pmedia_random_key(k->pa.suite, &k->pa.our_key), 0);
	k->pc.peer_key = k->pa.our_key;
	k->pa.peer_key = k->pc.our_key;
	/* the answerer takes the offer first, as in SIP; what it sends under
	 * its new key before the caller has the answer is in flight for a
	 * moment only here, so no failure is expected */
	assert_int_equal(pmedia_update(k->a, &k->pa, why, sizeof(why)), 0);
	assert_int_equal(pmedia_update(k->c, &k->pc, why, sizeof(why)), 0);
}

static void test_rekey(void **state)
{
	struct call k;

	(void)state;
	for (int s = 0; s < SUITE_COUNT; s += 3) {
		call_setup(&k, NULL, NULL, true, (enum suite_id)s, PMEDIA_PT_PCMU);
		call_start(&k);
		run_ms(k.base, 700);
		rekey_both(&k);
		run_ms(k.base, 300);
		rekey_both(&k); /* twice, while the first old key is still in its grace */
		call_run(&k, 300, 1000);
		assert_two_way(&k);
		assert_int_equal(k.sc.rekeys_tx, 2);
		assert_int_equal(k.sc.rekeys_rx, 2);
		assert_int_equal(k.sa.rekeys_rx, 2);
		assert_int_equal(k.sc.ssrc_changes + k.sa.ssrc_changes, 0);
		call_end(&k);
	}
}

/* no_rekey: the receiver's old key works for its grace, then the packets
 * fail. */
static void test_fault_no_rekey(void **state)
{
	struct pmedia_faults f = { .no_rekey = true };
	struct call k;
	uint64_t before;

	(void)state;
	call_setup(&k, &f, NULL, true, SUITE_AES_CM_128_HMAC_SHA1_80, PMEDIA_PT_PCMU);
	call_start(&k);
	run_ms(k.base, 500);
	rekey_both(&k);
	run_ms(k.base, 1000);
	pmedia_stats(k.a, &k.sa);
	assert_int_equal(rtp_fail(&k.sa), 0);
	assert_true(k.sa.rx_on_old_key > 20); /* the grace carries it */
	before = k.sa.rx_on_old_key;
	run_ms(k.base, PMEDIA_REKEY_GRACE_MS + 500);
	pmedia_stats(k.a, &k.sa);
	pmedia_stats(k.c, &k.sc);
	assert_true(rtp_fail(&k.sa) > 10);
	assert_true(k.sa.rx_on_old_key >= before);
	assert_int_equal(k.sc.rekeys_tx, 0);
	call_end(&k);
}

/* The sequence wraps 0.7 s into the call: audio goes on, the ROC reads 1
 * both ways, and a re-key after the wrap carries it over. */
static void test_seq_wrap(void **state)
{
	struct pmedia_faults f;
	struct call k;
	uint64_t sent_before;

	(void)state;
	memset(&f, 0, sizeof(f));
	f.seq_start_set = true;
	f.seq_start = 65500;
	call_setup(&k, &f, &f, true, SUITE_AES_CM_128_HMAC_SHA1_80, PMEDIA_PT_PCMA);
	call_start(&k);
	run_ms(k.base, 1200);
	pmedia_stats(k.c, &k.sc);
	sent_before = k.sc.rtp_sent;
	assert_true(sent_before > 40);
	assert_int_equal(k.sc.tx_roc, 1);
	rekey_both(&k);
	call_run(&k, 200, 1000);
	assert_two_way(&k);
	assert_int_equal(k.sc.tx_roc, 1);
	assert_int_equal(k.sa.rx_roc, 1);
	assert_int_equal(k.sa.tx_roc, 1);
	assert_int_equal(k.sc.rx_roc, 1);
	call_end(&k);

	/* plain, the same wrap: RFC 3550 counts the cycles */
	call_setup(&k, &f, NULL, false, 0, PMEDIA_PT_PCMU);
	call_start(&k);
	call_run(&k, 500, 1000);
	assert_two_way(&k);
	call_end(&k);
}

/* roc_reset: the new key starts our ROC at 0 after the wrap, while the
 * receiver (which carries the ROC over) expects 1: every packet fails. */
static void test_fault_roc_reset(void **state)
{
	struct pmedia_faults f = { .roc_reset = true };
	struct call k;
	uint64_t fail_before;

	(void)state;
	call_setup(&k, &f, NULL, true, SUITE_AES_CM_128_HMAC_SHA1_80, PMEDIA_PT_PCMU);
	call_start(&k);
	run_ms(k.base, 1300); /* 65 packets from 65485: wrapped */
	pmedia_stats(k.c, &k.sc);
	pmedia_stats(k.a, &k.sa);
	assert_int_equal(k.sc.tx_roc, 1);
	assert_int_equal(k.sa.rx_roc, 1);
	assert_int_equal(rtp_fail(&k.sa), 0);
	fail_before = rtp_fail(&k.sa);
	rekey_both(&k);
	call_run(&k, 500, 1000);
	assert_true(rtp_fail(&k.sa) - fail_before > 40);
	assert_int_equal(k.sc.tx_roc, 0);
	assert_int_equal(k.hc, PMEDIA_HEARD_C);
	assert_int_equal(k.ha, PMEDIA_HEARD_NOTHING);
	call_end(&k);
}

/* Hold (we sendonly, the far end recvonly) and resume with new keys: the
 * window restarted after the resume judges the audio after it. */
static void test_hold_resume(void **state)
{
	struct call k;
	char why[200] = "";
	uint64_t a_sent;

	(void)state;
	call_setup(&k, NULL, NULL, true, SUITE_AES_CM_128_HMAC_SHA1_80, PMEDIA_PT_PCMU);
	call_start(&k);
	run_ms(k.base, 500);
	k.pc.dir = PMEDIA_SENDONLY;
	k.pa.dir = PMEDIA_RECVONLY;
	assert_int_equal(pmedia_update(k.a, &k.pa, why, sizeof(why)), 0);
	assert_int_equal(pmedia_update(k.c, &k.pc, why, sizeof(why)), 0);
	run_ms(k.base, 100);
	pmedia_window_reset(k.c);
	pmedia_window_reset(k.a);
	pmedia_stats(k.a, &k.sa);
	a_sent = k.sa.rtp_sent;
	run_ms(k.base, 1000);
	call_snap(&k);
	assert_int_equal(k.sa.rtp_sent, a_sent); /* recvonly sends no RTP ... */
	assert_false(k.sa.sending);
	assert_true(k.sa.rtcp_sent >= 1); /* ... but RTCP */
	assert_int_equal(k.hc, PMEDIA_HEARD_NOTHING);
	assert_int_equal(k.ha, PMEDIA_HEARD_FAR);
	/* resume with new keys */
	k.pc.dir = k.pa.dir = PMEDIA_SENDRECV;
	rekey_both(&k);
	call_run(&k, 500, 1000);
	assert_two_way(&k);
	call_end(&k);
}

/* A stream made by hand into one engine: loss, wrong payload types,
 * garbage, and RTCP reports with RTT. */
static void test_fake_stream(void **state)
{
	struct event_base *b = event_base_new();
	struct pmedia *m = engine(b, PMEDIA_ANSWERER, NULL);
	struct pmedia_params p;
	struct pmedia_stats st;
	struct sockaddr_storage peer, rtcp_peer, other;
	socklen_t len;
	int fd = socket(AF_INET, SOCK_DGRAM, 0), fd2 = socket(AF_INET, SOCK_DGRAM, 0);
	uint8_t pkt[RTP_HEADER_MIN + 160];
	struct tone_gen g;
	int16_t pcm[160];
	char why[200] = "";
	uint16_t seq = 100;

	(void)state;
	/* our "peer": two sockets that receive what the engine sends */
	lo(&peer, &len, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&peer, len), 0);
	len = sizeof(peer);
	getsockname(fd, (struct sockaddr *)&peer, &len);
	lo(&rtcp_peer, &len, 0);
	assert_int_equal(bind(fd2, (struct sockaddr *)&rtcp_peer, len), 0);
	len = sizeof(rtcp_peer);
	getsockname(fd2, (struct sockaddr *)&rtcp_peer, &len);
	memset(&p, 0, sizeof(p));
	p.remote_rtp = peer;
	p.remote_rtp_len = sizeof(struct sockaddr_in);
	p.remote_rtcp = rtcp_peer;
	p.remote_rtcp_len = sizeof(struct sockaddr_in);
	p.pt = PMEDIA_PT_PCMU;
	p.dir = PMEDIA_SENDRECV;

	/* before the start: dropped, counted */
	memset(pkt, 0, sizeof(pkt));
	pmedia_input(m, false, pkt, sizeof(pkt), (struct sockaddr *)&peer,
		     sizeof(struct sockaddr_in));
	pmedia_stats(m, &st);
	assert_int_equal(st.early_drops, 1);
	assert_int_equal(pmedia_start(m, &p, why, sizeof(why)), 0);
	assert_int_equal(pmedia_start(m, &p, why, sizeof(why)), EALREADY);

	/* 100 packets of A, every 10th missing: 9 lost of 99 expected after the
	 * probation packet */
	tone_gen_init(&g, TONE_A_HZ, TONE_AMPLITUDE);
	for (int i = 0; i < 100; i++, seq++) {
		pkt[0] = 0x80;
		pkt[1] = PMEDIA_PT_PCMU;
		pkt[2] = (uint8_t)(seq >> 8);
		pkt[3] = (uint8_t)seq;
		pkt[4] = pkt[5] = pkt[6] = 0;
		pkt[7] = (uint8_t)i;
		pkt[8] = 0x12;
		pkt[9] = 0x34;
		pkt[10] = 0x56;
		pkt[11] = 0x78;
		tone_gen_fill(&g, pcm, 160);
		tone_encode(false, pcm, pkt + RTP_HEADER_MIN, 160);
		if (i % 10 == 5)
			continue;
		pmedia_input(m, false, pkt, sizeof(pkt), (struct sockaddr *)&peer,
			     sizeof(struct sockaddr_in));
	}
	pmedia_stats(m, &st);
	assert_int_equal(st.rtp_recv, 90);
	assert_int_equal(st.lost, 10);
	assert_true(st.loss_pct > 10.0 && st.loss_pct < 10.2); /* 10 of 99 */
	assert_int_equal(st.tones.n[TONE_A], 90);
	assert_int_equal(st.remote_ssrc[0], 0x12345678);
	assert_int_equal(st.unexpected_src, 0);

	/* another payload type: accepted, not classified; another source */
	lo(&other, &len, 9);
	pkt[1] = 18;
	pmedia_input(m, false, pkt, sizeof(pkt), (struct sockaddr *)&other, len);
	pmedia_stats(m, &st);
	assert_int_equal(st.wrong_pt, 1);
	assert_int_equal(st.unexpected_src, 1);
	assert_int_equal(st.tones.n[TONE_A], 90);
	/* RTCP on the RTP port (a peer that multiplexes): taken as RTCP */
	{
		uint8_t rr[8] = { 0x80, 201, 0, 1, 0x12, 0x34, 0x56, 0x78 };

		pmedia_input(m, false, rr, sizeof(rr), (struct sockaddr *)&rtcp_peer,
			     sizeof(struct sockaddr_in));
		pmedia_stats(m, &st);
		assert_int_equal(st.rtcp_recv, 1);
		assert_int_equal(st.rtp_recv, 91);
	}
	/* garbage */
	pmedia_input(m, false, pkt, 5, (struct sockaddr *)&peer, sizeof(struct sockaddr_in));
	pkt[0] = 0x40;
	pmedia_input(m, false, pkt, sizeof(pkt), (struct sockaddr *)&peer,
		     sizeof(struct sockaddr_in));
	pmedia_input(m, true, pkt, 3, (struct sockaddr *)&rtcp_peer, sizeof(struct sockaddr_in));
	pmedia_input(m, true, pkt, sizeof(pkt), (struct sockaddr *)&rtcp_peer,
		     sizeof(struct sockaddr_in));
	pmedia_input(m, false, pkt, 0, NULL, 0);
	pmedia_stats(m, &st);
	assert_int_equal(st.rtp_malformed, 3);
	assert_int_equal(st.rtcp_malformed, 2);

	/* the engine's SR reaches our socket; we answer with an RR whose block
	 * quotes its NTP time: the engine computes an RTT */
	{
		uint8_t sr[512], rr[32];
		ssize_t n = -1;

		for (int i = 0; i < 400 && n < 0; i++) {
			run_ms(b, 50);
			n = recv(fd2, sr, sizeof(sr), MSG_DONTWAIT);
		}
		assert_true(n >= 28 + 24);
		assert_int_equal(rtcp_check(sr, (size_t)n), 0);
		assert_int_equal(sr[1], 200);
		assert_int_equal(sr[0] & 0x1F, 1); /* one block: about our fake stream */
		assert_int_equal(rtcp_sender_ssrc(sr, (size_t)n), st.local_ssrc);
		assert_memory_equal(sr + 28, "\x12\x34\x56\x78", 4);
		memset(rr, 0, sizeof(rr));
		rr[0] = 0x81;
		rr[1] = 201;
		rr[3] = 7;
		memcpy(rr + 4, "\x12\x34\x56\x78", 4);
		memcpy(rr + 8, sr + 4, 4);   /* about the engine's SSRC */
		rr[12] = 64;		     /* fraction 1/4 */
		rr[15] = 3;		     /* cumulative 3 */
		rr[23] = 80;		     /* jitter 10 ms */
		memcpy(rr + 24, sr + 10, 4); /* LSR: middle of NTP */
		pmedia_input(m, true, rr, sizeof(rr), (struct sockaddr *)&rtcp_peer,
			     sizeof(struct sockaddr_in));
		pmedia_stats(m, &st);
		assert_int_equal(st.rtcp_recv, 2);
		assert_true(st.peer_report);
		assert_int_equal(st.peer_cumulative_lost, 3);
		assert_true(st.peer_fraction_lost == 0.25);
		assert_true(st.peer_jitter_ms == 10.0);
		assert_int_equal(st.rtt_count, 1);
		assert_true(st.rtt_min_ms >= 0 && st.rtt_min_ms < 2000);
	}
	pmedia_stop(m);
	pmedia_stop(m);
	pmedia_destroy(m);
	close(fd);
	close(fd2);
	event_base_free(b);
}

static void test_bad_params(void **state)
{
	struct call k;
	char why[200] = "";
	struct pmedia *m = NULL;
	struct sockaddr_storage ss;
	socklen_t len;

	(void)state;
	call_setup(&k, NULL, NULL, true, SUITE_AES_CM_128_HMAC_SHA1_80, PMEDIA_PT_PCMU);
	k.pc.pt = 18;
	assert_int_equal(pmedia_start(k.c, &k.pc, why, sizeof(why)), EINVAL);
	assert_non_null(strstr(why, "payload"));
	k.pc.pt = 0;
	k.pc.peer_key.keysalt.len = 10;
	assert_int_equal(pmedia_start(k.c, &k.pc, why, sizeof(why)), EINVAL);
	k.pc.peer_key = k.pa.our_key;
	assert_int_equal(pmedia_update(k.c, &k.pc, why, sizeof(why)), EINVAL); /* not started */
	assert_int_equal(pmedia_start(k.c, &k.pc, why, sizeof(why)), 0);
	/* a failed update keeps the stream as it was */
	k.pc.suite = SUITE_AES_256_CM_HMAC_SHA1_80;
	assert_int_equal(pmedia_update(k.c, &k.pc, why, sizeof(why)), EINVAL);
	k.pc.suite = SUITE_AES_CM_128_HMAC_SHA1_80;
	assert_int_equal(pmedia_start(k.a, &k.pa, why, sizeof(why)), 0);
	call_run(&k, 300, 1000);
	assert_two_way(&k);
	call_end(&k);

	{
		struct event_base *b = event_base_new();

		lo(&ss, &len, 0);
		ss.ss_family = AF_UNIX;
		assert_int_equal(pmedia_create(&m, b, PMEDIA_CALLER, (struct sockaddr *)&ss, len,
					       NULL, why, sizeof(why)),
				 EINVAL);
		assert_null(m);
		assert_non_null(strstr(why, "address"));
		event_base_free(b);
	}
	pmedia_destroy(NULL);
}

/* Random datagrams into a secure and a plain engine: counted, no crash. */
static void test_garbage(void **state)
{
	struct call k;
	uint8_t pkt[300];
	struct sockaddr_storage from;
	socklen_t len;

	(void)state;
	srand(99);
	for (int secure = 0; secure < 2; secure++) {
		struct pmedia_stats st;

		call_setup(&k, NULL, NULL, secure, SUITE_AEAD_AES_128_GCM, PMEDIA_PT_PCMU);
		call_start(&k);
		lo(&from, &len, 1234);
		for (int i = 0; i < 3000; i++) {
			size_t n = (size_t)(rand() % (int)sizeof(pkt));

			for (size_t j = 0; j < n; j++)
				pkt[j] = (uint8_t)rand();
			if (i % 3 == 0 && n > 2) {
				pkt[0] = (uint8_t)(0x80 | (pkt[0] & 0x3F));
				pkt[1] = (uint8_t)(i & 1 ? 200 + (pkt[1] & 1) : pkt[1]);
			}
			pmedia_input(k.a, i & 1, pkt, n, (struct sockaddr *)&from, len);
		}
		pmedia_stats(k.a, &st);
		assert_int_equal(st.unexpected_src, 3000);
		if (secure)
			assert_int_equal(rtp_fail(&st) + rtcp_fail(&st) + st.rtp_malformed +
						 st.rtcp_malformed,
					 3000);
		call_end(&k);
	}
}

static int group_setup(void **state)
{
	(void)state;
	return srtplib_init() == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verdict),
		cmocka_unit_test(test_rx_arithmetic),
		cmocka_unit_test(test_names_keys),
		cmocka_unit_test(test_two_way_plain),
		cmocka_unit_test(test_two_way_every_suite),
		cmocka_unit_test(test_two_way_ipv6),
		cmocka_unit_test(test_fault_tag_mismatch),
		cmocka_unit_test(test_fault_wrong_key),
		cmocka_unit_test(test_fault_send_plain),
		cmocka_unit_test(test_fault_silence),
		cmocka_unit_test(test_fault_no_media),
		cmocka_unit_test(test_fault_no_rtcp),
		cmocka_unit_test(test_fault_plain_rtcp),
		cmocka_unit_test(test_fault_rtp_from),
		cmocka_unit_test(test_rekey),
		cmocka_unit_test(test_fault_no_rekey),
		cmocka_unit_test(test_seq_wrap),
		cmocka_unit_test(test_fault_roc_reset),
		cmocka_unit_test(test_hold_resume),
		cmocka_unit_test(test_fake_stream),
		cmocka_unit_test(test_bad_params),
		cmocka_unit_test(test_garbage),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
