/* pmedia.c: srtpprobe's media engine (pmedia.h). */
#include "pmedia.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "srtpbridge/bytes.h"
#include "srtpbridge/rtp.h"
#include "srtpbridge/secret.h"
#include "srtpbridge/srtpctx.h"

#define PKT_MAX	      2048 /* bigger datagrams are counted as malformed */
#define PTIME_US      (PMEDIA_PTIME_MS * 1000ULL)
#define RTCP_US	      (PMEDIA_RTCP_MS * 1000ULL)
#define FIRST_RTCP_US (RTCP_US / 2)
#define GRACE_US      (PMEDIA_REKEY_GRACE_MS * 1000ULL)
/* The answerer hears A while A was among the last PMEDIA_HEAR_FRAMES frames
 * received AND arrived this recently: frames counted alone would keep it
 * "hearing" forever after the caller's audio stops. */
#define HEAR_US (PMEDIA_HEAR_FRAMES * PTIME_US + 100000ULL)
/* After a stall (a stopped process, a loaded machine), send at most this
 * many late packets at once and then go on from now. */
#define MAX_BURST 10
/* real us past the due time the timer is set for: less waking up early */
#define ARM_MARGIN_US	300
#define READ_BATCH	4
#define NTP_UNIX_OFFSET 2208988800ULL

/* RFC 3550 A.1 */
#define MAX_DROPOUT    3000
#define MAX_MISORDER   100
#define MIN_SEQUENTIAL 2
#define RTP_SEQ_MOD    (1U << 16)

#define RTCP_SR	       200
#define RTCP_RR	       201
#define RTCP_SDES      202
#define SDES_CNAME     1

struct psock {
	struct pmedia *m;
	int fd;
	bool rtcp;
	bool added;
	struct event ev;
};

struct pmedia {
	struct event_base *base;
	enum pmedia_role role;
	struct pmedia_faults f;
	struct sockaddr_storage local;
	socklen_t local_len;
	uint16_t port;
	/* [0] RTP, [1] RTCP of the advertised pair; [2], [3] the rtp_from pair */
	struct psock sk[4];
	struct event tick;
	bool tick_added;

	/* clock: virtual us since create = vbase + (mono - mono0) * speed */
	uint64_t mono0, vbase;
	unsigned speed;
	uint64_t rt0_us; /* CLOCK_REALTIME at create, for NTP timestamps */

	bool started, stopped;
	uint64_t start_v, stop_v;
	struct pmedia_params p; /* current, keys included (wiped on change) */
	struct sockaddr_storage rtcp_to;
	socklen_t rtcp_to_len;

	/* sending */
	uint32_t ssrc;
	uint16_t seq;
	uint32_t ts0;
	uint64_t slot; /* next 20 ms slot to send */
	bool sent_any;
	uint64_t payload_octets;
	uint64_t rtp_sent_at_last_rtcp, rtp_sent_at_prev_rtcp;
	struct tone_gen gen;
	enum tone_class tx_tone;
	struct srtpctx *out;	  /* protects RTP (and RTCP unless out_rtcp) */
	struct srtpctx *out_rtcp; /* plain_rtcp: a twin with E = 0 */
	uint64_t next_rtcp_v;
	char cname[48];

	/* receiving */
	struct srtpctx *in, *in_old;
	uint64_t in_old_until_v;
	bool have_rx_ssrc;
	uint32_t rx_ssrc;
	struct pmedia_rx rx;
	int64_t lost_acc; /* of SSRCs before the current one */
	uint64_t expected_acc;
	bool have_last_rx;
	uint64_t last_rx_v;
	uint64_t rx_frames;
	bool heard_a;
	uint64_t last_a_frame, last_a_v;
	bool have_lsr;
	uint32_t lsr;
	uint64_t lsr_arrival_v;
	double rtt_sum;

	uint64_t win_start_v;
	struct pmedia_tones win;
	struct pmedia_stats st;
};

/* --- small helpers --- */

static void setwhy(char *why, size_t whysz, const char *s)
{
	if (why && whysz)
		snprintf(why, whysz, "%s", s);
}

static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t now_v(const struct pmedia *m)
{
	return m->vbase + (mono_us() - m->mono0) * m->speed;
}

static uint16_t sa_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return 0;
}

static void sa_set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

static bool sa_unspecified(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
	if (ss->ss_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
	return true;
}

/* Same family, address and port. */
static bool sa_same(const struct sockaddr_storage *a, const struct sockaddr *b, socklen_t blen)
{
	if (!b || a->ss_family != b->sa_family)
		return false;
	if (a->ss_family == AF_INET && blen >= (socklen_t)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6 && blen >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

		return x->sin6_port == y->sin6_port &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
	}
	return false;
}

static void sa_copy(struct sockaddr_storage *dst, const struct sockaddr *src, socklen_t len)
{
	memset(dst, 0, sizeof(*dst));
	if (src && len > 0 && len <= (socklen_t)sizeof(*dst))
		memcpy(dst, src, len);
}

static uint32_t random32(void)
{
	uint32_t v = 0;

	if (RAND_bytes((unsigned char *)&v, sizeof(v)) != 1)
		v = (uint32_t)mono_us() * 2654435761u; /* never fails in practice */
	return v;
}

static bool key_equal(const struct sdes_key *a, const struct sdes_key *b)
{
	return a->keysalt.len == b->keysalt.len && secret_equal(&a->keysalt, &b->keysalt) &&
	       a->has_mki == b->has_mki &&
	       (!a->has_mki || (a->mki == b->mki && a->mki_len == b->mki_len));
}

static void params_wipe(struct pmedia_params *p)
{
	secret_wipe(&p->our_key.keysalt);
	secret_wipe(&p->peer_key.keysalt);
}

/* --- RFC 3550 A.1, A.3, A.8 --- */

static void rx_init_seq(struct pmedia_rx *r, uint16_t seq)
{
	r->base_seq = seq;
	r->max_seq = seq;
	r->bad_seq = RTP_SEQ_MOD + 1; /* so seq == bad_seq is false */
	r->cycles = 0;
	r->received = 0;
	r->received_prior = 0;
	r->expected_prior = 0;
}

bool pmedia_rx_packet(struct pmedia_rx *r, uint16_t seq, uint32_t ts, uint32_t arrival)
{
	int64_t transit = (int32_t)(arrival - ts);
	uint16_t udelta;

	/* A.8: every packet of the source, whatever its sequence */
	if (r->have_transit) {
		int64_t d = transit - r->transit;

		if (d < 0)
			d = -d;
		r->jitter += ((double)d - r->jitter) / 16.0;
	}
	r->transit = transit;
	r->have_transit = true;

	if (!r->init) {
		rx_init_seq(r, seq);
		r->max_seq = (uint16_t)(seq - 1);
		r->probation = MIN_SEQUENTIAL;
		r->init = true;
	}
	udelta = (uint16_t)(seq - r->max_seq);
	if (r->probation) {
		if (seq == (uint16_t)(r->max_seq + 1)) {
			r->probation--;
			r->max_seq = seq;
			if (r->probation == 0) {
				rx_init_seq(r, seq);
				r->received++;
				return true;
			}
		} else {
			r->probation = MIN_SEQUENTIAL - 1;
			r->max_seq = seq;
		}
		return false;
	} else if (udelta < MAX_DROPOUT) {
		if (seq < r->max_seq)
			r->cycles += RTP_SEQ_MOD;
		r->max_seq = seq;
	} else if (udelta <= RTP_SEQ_MOD - MAX_MISORDER) {
		/* a very large jump: a restarted source if the next follows it */
		if (seq == r->bad_seq) {
			rx_init_seq(r, seq);
		} else {
			r->bad_seq = (seq + 1) & (RTP_SEQ_MOD - 1);
			return false;
		}
	}
	/* else a duplicate or a reordered packet: counted, max stays */
	r->received++;
	return true;
}

uint32_t pmedia_rx_ext_max(const struct pmedia_rx *r)
{
	return r->cycles + r->max_seq;
}

uint64_t pmedia_rx_expected(const struct pmedia_rx *r)
{
	if (!r->init || r->probation)
		return 0;
	return (uint64_t)pmedia_rx_ext_max(r) - r->base_seq + 1;
}

int64_t pmedia_rx_lost(const struct pmedia_rx *r)
{
	if (!r->init || r->probation)
		return 0;
	return (int64_t)pmedia_rx_expected(r) - (int64_t)r->received;
}

uint8_t pmedia_rx_fraction(struct pmedia_rx *r)
{
	uint64_t expected = pmedia_rx_expected(r);
	int64_t exp_int = (int64_t)(expected - r->expected_prior);
	int64_t rec_int = (int64_t)(r->received - r->received_prior);
	int64_t lost_int = exp_int - rec_int;

	r->expected_prior = expected;
	r->received_prior = r->received;
	if (exp_int <= 0 || lost_int <= 0)
		return 0;
	return (uint8_t)((lost_int << 8) / exp_int > 255 ? 255 : (lost_int << 8) / exp_int);
}

double pmedia_rx_jitter_ms(const struct pmedia_rx *r)
{
	return r->jitter / (TONE_RATE / 1000.0);
}

/* --- verdict --- */

static bool heard(const struct pmedia_window *w, uint64_t count)
{
	uint64_t expected = w->ms / PMEDIA_PTIME_MS;

	return count >= PMEDIA_HEARD_MIN_FRAMES && 2 * count >= expected;
}

enum pmedia_heard pmedia_verdict(enum pmedia_role role, const struct pmedia_window *w)
{
	const uint64_t *n = w->tones.n;
	uint64_t total = 0;

	for (int k = 0; k < TONE_CLASS_COUNT; k++)
		total += n[k];
	if (role == PMEDIA_CALLER) {
		if (heard(w, n[TONE_B]))
			return PMEDIA_HEARD_FAR;
		if (heard(w, n[TONE_C]))
			return PMEDIA_HEARD_C;
		if (heard(w, n[TONE_A]))
			return PMEDIA_HEARD_OWN;
	} else {
		if (heard(w, n[TONE_A]))
			return PMEDIA_HEARD_FAR;
		if (heard(w, n[TONE_B] + n[TONE_C]))
			return PMEDIA_HEARD_OWN;
	}
	if (heard(w, n[TONE_SILENCE]))
		return PMEDIA_HEARD_SILENCE;
	return total >= PMEDIA_HEARD_MIN_FRAMES ? PMEDIA_HEARD_OTHER : PMEDIA_HEARD_NOTHING;
}

/* --- SRTP contexts --- */

static bool tag_twin(enum suite_id s, enum suite_id *twin)
{
	static const enum suite_id pairs[][2] = {
		{ SUITE_AES_CM_128_HMAC_SHA1_80, SUITE_AES_CM_128_HMAC_SHA1_32 },
		{ SUITE_AES_192_CM_HMAC_SHA1_80, SUITE_AES_192_CM_HMAC_SHA1_32 },
		{ SUITE_AES_256_CM_HMAC_SHA1_80, SUITE_AES_256_CM_HMAC_SHA1_32 },
	};

	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		if (pairs[i][0] == s || pairs[i][1] == s) {
			*twin = pairs[i][0] == s ? pairs[i][1] : pairs[i][0];
			return true;
		}
	}
	return false;
}

bool pmedia_fault_suite_ok(const struct pmedia_faults *faults, enum suite_id suite,
			   const char **why)
{
	enum suite_id twin;

	if (faults && faults->tag_mismatch && !tag_twin(suite, &twin)) {
		if (why)
			*why = "tag-mismatch needs an AES-CM suite (_80 or _32): this suite has no "
			       "other tag length";
		return false;
	}
	return true;
}

static int ctx_err(int err, char *why, size_t whysz, const char *what)
{
	char buf[160];

	snprintf(buf, sizeof(buf), "%s: %s", what,
		 err == EINVAL ? "the key does not fit the suite, or libsrtp2 lacks the suite"
			       : strerror(err));
	setwhy(why, whysz, buf);
	return err == ENOMEM ? ENOMEM : (err == EINVAL ? EINVAL : EIO);
}

/* Our sending contexts for p, with the faults applied. */
static int make_out(struct pmedia *m, const struct pmedia_params *p, struct srtpctx **rtp,
		    struct srtpctx **rtcp, char *why, size_t whysz)
{
	struct srtpctx_params sp = { .suite = p->suite, .unencrypted_srtcp = p->unencrypted_srtcp };
	struct sdes_key key = p->our_key;
	int err;

	*rtp = *rtcp = NULL;
	if (m->f.tag_mismatch && !tag_twin(p->suite, &sp.suite)) {
		const char *w = NULL;

		pmedia_fault_suite_ok(&m->f, p->suite, &w);
		setwhy(why, whysz, w);
		secret_wipe(&key.keysalt);
		return ENOTSUP;
	}
	if (m->f.wrong_key) {
		err = secret_random(&key.keysalt, suite_keysalt_len(p->suite));
		if (err) {
			setwhy(why, whysz, "no random key for wrong-key");
			secret_wipe(&key.keysalt);
			return EIO;
		}
	}
	sp.key = &key;
	err = srtpctx_create(rtp, SRTPCTX_OUTBOUND, &sp);
	if (err) {
		err = ctx_err(err, why, whysz, "our SRTP context");
		goto out;
	}
	if (m->f.plain_rtcp && !p->unencrypted_srtcp) {
		sp.unencrypted_srtcp = true;
		err = srtpctx_create(rtcp, SRTPCTX_OUTBOUND, &sp);
		if (err) {
			err = ctx_err(err, why, whysz, "our SRTCP context");
			srtpctx_destroy(*rtp);
			*rtp = NULL;
		}
	}
out:
	secret_wipe(&key.keysalt);
	return err;
}

static int make_in(const struct pmedia_params *p, struct srtpctx **in, char *why, size_t whysz)
{
	struct srtpctx_params sp = { .suite = p->suite,
				     .key = &p->peer_key,
				     .unencrypted_srtcp = p->unencrypted_srtcp };
	int err = srtpctx_create(in, SRTPCTX_INBOUND, &sp);

	if (err) {
		*in = NULL;
		return ctx_err(err, why, whysz, "the peer's SRTP context");
	}
	return 0;
}

/* --- sending --- */

static bool may_send_rtp(const struct pmedia *m)
{
	return m->started && !m->stopped && !m->f.no_media &&
	       (m->p.dir == PMEDIA_SENDRECV || m->p.dir == PMEDIA_SENDONLY) &&
	       m->p.remote_rtp_len > 0 && sa_port(&m->p.remote_rtp) != 0 &&
	       !sa_unspecified(&m->p.remote_rtp);
}

static bool may_send_rtcp(const struct pmedia *m)
{
	return m->started && !m->stopped && !m->f.no_media && !m->f.no_rtcp && m->rtcp_to_len > 0 &&
	       sa_port(&m->rtcp_to) != 0 && !sa_unspecified(&m->rtcp_to);
}

static bool hears_a(const struct pmedia *m, uint64_t now)
{
	return m->heard_a && m->rx_frames - m->last_a_frame < PMEDIA_HEAR_FRAMES &&
	       now - m->last_a_v <= HEAR_US;
}

static bool secure_out(const struct pmedia *m)
{
	return m->p.secure && !m->f.send_plain && m->out;
}

static void send_to(struct pmedia *m, bool rtcp, const uint8_t *buf, size_t len)
{
	const struct psock *s = &m->sk[(m->sk[2].fd >= 0 ? 2 : 0) + (rtcp ? 1 : 0)];
	const struct sockaddr_storage *to = rtcp ? &m->rtcp_to : &m->p.remote_rtp;
	socklen_t tolen = rtcp ? m->rtcp_to_len : m->p.remote_rtp_len;

	if (sendto(s->fd, buf, len, 0, (const struct sockaddr *)to, tolen) < 0) {
		m->st.send_errors++;
		return;
	}
	if (rtcp) {
		m->st.rtcp_sent++;
		m->st.rtcp_bytes_sent += len;
	} else {
		m->st.rtp_sent++;
		m->st.rtp_bytes_sent += len;
	}
}

static void send_rtp(struct pmedia *m, uint64_t slot, uint64_t now)
{
	uint8_t buf[RTP_HEADER_MIN + PMEDIA_FRAME + SRTPCTX_TRAILER_MAX];
	bool alaw = m->p.pt == PMEDIA_PT_PCMA;
	size_t len = RTP_HEADER_MIN + PMEDIA_FRAME;
	enum tone_class t;

	buf[0] = 0x80;
	buf[1] = (uint8_t)((m->sent_any ? 0 : 0x80) | (m->p.pt & 0x7F));
	be16_put(buf + 2, m->seq);
	be32_put(buf + 4, m->ts0 + (uint32_t)(slot * PMEDIA_FRAME));
	be32_put(buf + 8, m->ssrc);
	if (m->f.silence) {
		memset(buf + RTP_HEADER_MIN, tone_silence_byte(alaw), PMEDIA_FRAME);
		m->tx_tone = TONE_SILENCE;
	} else {
		int16_t pcm[PMEDIA_FRAME];

		t = m->role == PMEDIA_CALLER ? TONE_A : (hears_a(m, now) ? TONE_B : TONE_C);
		if (t != m->tx_tone)
			tone_gen_set(&m->gen, tone_hz(t)); /* the phase runs on: no click */
		m->tx_tone = t;
		tone_gen_fill(&m->gen, pcm, PMEDIA_FRAME);
		tone_encode(alaw, pcm, buf + RTP_HEADER_MIN, PMEDIA_FRAME);
	}
	if (secure_out(m) && srtpctx_protect_rtp(m->out, buf, &len, sizeof(buf)) != SRTPCTX_OK) {
		m->st.protect_errors++;
		return;
	}
	send_to(m, false, buf, len);
	m->seq++;
	m->sent_any = true;
	m->payload_octets += PMEDIA_FRAME;
}

/* NTP timestamp (RFC 3550 4) of virtual time v: wall clock at create + v. */
static uint64_t ntp_of(const struct pmedia *m, uint64_t v)
{
	uint64_t us = m->rt0_us + v;
	uint64_t sec = us / 1000000ULL + NTP_UNIX_OFFSET;
	uint64_t frac = ((us % 1000000ULL) << 32) / 1000000ULL;

	return sec << 32 | frac;
}

static uint32_t ntp_mid(uint64_t ntp)
{
	return (uint32_t)(ntp >> 16);
}

static void send_rtcp(struct pmedia *m, uint64_t now)
{
	uint8_t buf[256 + SRTPCTX_TRAILER_MAX];
	size_t len = 0, start, clen;
	bool sender = m->st.rtp_sent > m->rtp_sent_at_prev_rtcp; /* in the last two intervals */
	bool block = m->have_rx_ssrc && m->rx.init && !m->rx.probation;
	uint64_t ntp = ntp_of(m, now);
	enum srtpctx_result r;
	struct srtpctx *c;

	buf[0] = (uint8_t)(0x80 | (block ? 1 : 0));
	buf[1] = sender ? RTCP_SR : RTCP_RR;
	be32_put(buf + 4, m->ssrc);
	len = 8;
	if (sender) {
		uint64_t elapsed = now - m->start_v;

		be32_put(buf + 8, (uint32_t)(ntp >> 32));
		be32_put(buf + 12, (uint32_t)ntp);
		be32_put(buf + 16, m->ts0 + (uint32_t)(elapsed * TONE_RATE / 1000000ULL));
		be32_put(buf + 20, (uint32_t)m->st.rtp_sent);
		be32_put(buf + 24, (uint32_t)m->payload_octets);
		len = 28;
	}
	if (block) {
		int64_t lost = pmedia_rx_lost(&m->rx);
		uint32_t dlsr = 0;

		/* A.3: the cumulative count is clamped in the report */
		if (lost < 0)
			lost = 0;
		if (lost > 0x7FFFFF)
			lost = 0x7FFFFF;
		be32_put(buf + len, m->rx_ssrc);
		be32_put(buf + len + 4,
			 (uint32_t)pmedia_rx_fraction(&m->rx) << 24 | (uint32_t)lost);
		be32_put(buf + len + 8, pmedia_rx_ext_max(&m->rx));
		be32_put(buf + len + 12, (uint32_t)m->rx.jitter);
		if (m->have_lsr)
			dlsr = (uint32_t)(((now - m->lsr_arrival_v) << 16) / 1000000ULL);
		be32_put(buf + len + 16, m->have_lsr ? m->lsr : 0);
		be32_put(buf + len + 20, m->have_lsr ? dlsr : 0);
		len += 24;
	}
	be16_put(buf + 2, (uint16_t)(len / 4 - 1));

	/* SDES with one chunk: SSRC, CNAME, end, padded to 32 bits */
	start = len;
	clen = strlen(m->cname);
	buf[len] = 0x81;
	buf[len + 1] = RTCP_SDES;
	be32_put(buf + len + 4, m->ssrc);
	buf[len + 8] = SDES_CNAME;
	buf[len + 9] = (uint8_t)clen;
	memcpy(buf + len + 10, m->cname, clen);
	len += 10 + clen;
	do
		buf[len++] = 0; /* the end item, then padding */
	while (len % 4);
	be16_put(buf + start + 2, (uint16_t)((len - start) / 4 - 1));

	m->rtp_sent_at_prev_rtcp = m->rtp_sent_at_last_rtcp;
	m->rtp_sent_at_last_rtcp = m->st.rtp_sent;
	c = m->out_rtcp ? m->out_rtcp : m->out;
	if (secure_out(m)) {
		r = srtpctx_protect_rtcp(c, buf, &len, sizeof(buf));
		if (r != SRTPCTX_OK) {
			m->st.protect_errors++;
			return;
		}
	}
	send_to(m, true, buf, len);
}

/* A one-shot timer to the next slot's due time, not a 20 ms persistent
 * one: libevent's clock is CLOCK_MONOTONIC_COARSE (jiffies), so a
 * persistent timer wakes a few ms early or late around the slot boundary
 * and sends 0 then 2 packets (36 ms gaps, measured). Waking early costs one
 * more wake-up; the count of packets due stays on our precise clock. */
static void arm(struct pmedia *m, uint64_t now)
{
	uint64_t due_at = m->start_v + m->slot * PTIME_US;
	uint64_t real_us = due_at > now ? (due_at - now) / m->speed : 0;
	struct timeval tv;

	real_us += ARM_MARGIN_US;
	tv.tv_sec = (time_t)(real_us / 1000000ULL);
	tv.tv_usec = (suseconds_t)(real_us % 1000000ULL);
	m->tick_added = event_add(&m->tick, &tv) == 0;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct pmedia *m = arg;
	uint64_t now = now_v(m), due;

	(void)fd;
	(void)what;
	if (!m->started || m->stopped)
		return;
	if (m->in_old && now >= m->in_old_until_v) {
		srtpctx_destroy(m->in_old); /* its grace is over: wipe it */
		m->in_old = NULL;
	}
	due = (now - m->start_v) / PTIME_US + 1;
	if (may_send_rtp(m)) {
		if (due - m->slot > MAX_BURST)
			m->slot = due - 1;
		while (m->slot < due) {
			send_rtp(m, m->slot, now);
			m->slot++;
		}
	} else {
		m->slot = due; /* time runs on while we do not send: ts jumps, seq goes on */
	}
	if (now >= m->next_rtcp_v) {
		if (may_send_rtcp(m))
			send_rtcp(m, now);
		m->next_rtcp_v += RTCP_US;
		if (m->next_rtcp_v <= now)
			m->next_rtcp_v = now + RTCP_US;
	}
	arm(m, now);
}

/* --- receiving --- */

static enum srtpctx_result unprotect(struct srtpctx *c, bool rtcp, uint8_t *buf, size_t *len)
{
	return rtcp ? srtpctx_unprotect_rtcp(c, buf, len) : srtpctx_unprotect_rtp(c, buf, len);
}

/* pkt into out, unprotected under the newest peer key, else the previous
 * one during its grace (each try on its own copy: a failed unprotect
 * leaves the buffer undefined). Counts a failure by its kind. */
static bool rx_unprotect(struct pmedia *m, bool rtcp, const uint8_t *pkt, size_t n, uint8_t *out,
			 size_t *len, uint64_t now)
{
	enum srtpctx_result r, r2;

	memcpy(out, pkt, n);
	*len = n;
	if (!m->in)
		return true;
	r = unprotect(m->in, rtcp, out, len);
	if (r == SRTPCTX_OK)
		return true;
	if (m->in_old && now < m->in_old_until_v) {
		memcpy(out, pkt, n);
		*len = n;
		r2 = unprotect(m->in_old, rtcp, out, len);
		if (r2 == SRTPCTX_OK) {
			m->st.rx_on_old_key++;
			return true;
		}
		if (r2 == SRTPCTX_REPLAY_FAIL) /* a duplicate of an old-key packet */
			r = r2;
	}
	switch (r) {
	case SRTPCTX_AUTH_FAIL:
		rtcp ? m->st.rtcp_auth_fail++ : m->st.rtp_auth_fail++;
		break;
	case SRTPCTX_REPLAY_FAIL:
		rtcp ? m->st.rtcp_replay_fail++ : m->st.rtp_replay_fail++;
		break;
	case SRTPCTX_CANT_CHECK:
		rtcp ? m->st.rtcp_cant_check++ : m->st.rtp_cant_check++;
		break;
	default:
		rtcp ? m->st.rtcp_other_fail++ : m->st.rtp_other_fail++;
		break;
	}
	return false;
}

static void count_frame(struct pmedia *m, enum tone_class c, uint64_t now)
{
	m->st.tones.n[c]++;
	m->win.n[c]++;
	m->rx_frames++;
	if (c == TONE_A) {
		m->heard_a = true;
		m->last_a_frame = m->rx_frames;
		m->last_a_v = now;
	}
}

static void note_ssrc(struct pmedia *m, uint32_t ssrc)
{
	if (m->have_rx_ssrc && ssrc == m->rx_ssrc)
		return;
	if (m->have_rx_ssrc) {
		m->st.ssrc_changes++;
		m->lost_acc += pmedia_rx_lost(&m->rx);
		m->expected_acc += pmedia_rx_expected(&m->rx);
	}
	memset(&m->rx, 0, sizeof(m->rx));
	m->rx.ssrc = ssrc;
	m->rx_ssrc = ssrc;
	m->have_rx_ssrc = true;
	for (unsigned i = 0; i < m->st.n_remote_ssrc; i++)
		if (m->st.remote_ssrc[i] == ssrc)
			return;
	if (m->st.n_remote_ssrc < PMEDIA_MAX_SSRC)
		m->st.remote_ssrc[m->st.n_remote_ssrc++] = ssrc;
}

static void rx_rtp(struct pmedia *m, const uint8_t *pkt, size_t n, const struct sockaddr *from,
		   socklen_t fromlen, uint64_t now)
{
	uint8_t buf[PKT_MAX];
	struct rtp_hdr h;
	size_t len;
	int pt;

	if (!m->started) {
		m->st.early_drops++; /* before the answer: which key, which codec? */
		return;
	}
	if (!sa_same(&m->p.remote_rtp, from, fromlen))
		m->st.unexpected_src++;
	if (n > PKT_MAX || n < RTP_HEADER_MIN) {
		m->st.rtp_malformed++;
		return;
	}
	if (!rx_unprotect(m, false, pkt, n, buf, &len, now))
		return;
	if (rtp_parse(buf, len, &h) != 0) {
		m->st.rtp_malformed++;
		return;
	}
	note_ssrc(m, h.ssrc);
	pmedia_rx_packet(&m->rx, h.seq, h.ts, (uint32_t)(now * (TONE_RATE / 1000) / 1000));
	m->st.rtp_recv++;
	m->st.rtp_bytes_recv += n;
	if (m->have_last_rx && now - m->last_rx_v > (uint64_t)(m->st.max_gap_ms * 1000.0))
		m->st.max_gap_ms = (double)(now - m->last_rx_v) / 1000.0;
	m->have_last_rx = true;
	m->last_rx_v = now;
	if (!m->st.have_first_rx) {
		m->st.have_first_rx = true;
		m->st.first_rx_ms = (now - m->start_v) / 1000;
	}
	if (m->in) {
		uint32_t roc;

		if (srtpctx_get_roc(m->in, h.ssrc, &roc) == 0 ||
		    (m->in_old && srtpctx_get_roc(m->in_old, h.ssrc, &roc) == 0)) {
			m->st.rx_roc_known = true;
			m->st.rx_roc = roc;
		}
	}
	pt = m->p.pt;
	if (h.pt != pt) {
		m->st.wrong_pt++;
		return;
	}
	for (size_t off = 0; off < h.payload_len; off += PMEDIA_FRAME) {
		size_t k = h.payload_len - off < PMEDIA_FRAME ? h.payload_len - off : PMEDIA_FRAME;
		int16_t pcm[PMEDIA_FRAME];

		if (k < PMEDIA_FRAME / 2)
			break; /* a sliver at the end of an odd ptime: too short to judge */
		tone_decode(pt == PMEDIA_PT_PCMA, buf + h.header_len + off, pcm, k);
		count_frame(m, tone_classify(pcm, k), now);
	}
}

/* One report block (RFC 3550 6.4.1) about our stream: the peer's view of
 * what we send, and the round trip. */
static void rx_block(struct pmedia *m, const uint8_t *b, uint64_t now)
{
	uint32_t lsr = be32_get(b + 16), dlsr = be32_get(b + 20);
	int32_t cum = (int32_t)(be32_get(b + 4) << 8) >> 8; /* 24-bit signed */

	if (be32_get(b) != m->ssrc)
		return;
	m->st.peer_report = true;
	m->st.peer_fraction_lost = b[4] / 256.0;
	m->st.peer_cumulative_lost = cum;
	m->st.peer_jitter_ms = be32_get(b + 12) / (TONE_RATE / 1000.0);
	if (lsr) {
		uint32_t rtt = ntp_mid(ntp_of(m, now)) - lsr - dlsr;
		double ms;

		if ((int32_t)rtt < 0)
			return; /* clocks that disagree: no RTT rather than a huge one */
		ms = rtt * 1000.0 / 65536.0;
		if (!m->st.rtt_count || ms < m->st.rtt_min_ms)
			m->st.rtt_min_ms = ms;
		if (!m->st.rtt_count || ms > m->st.rtt_max_ms)
			m->st.rtt_max_ms = ms;
		m->st.rtt_count++;
		m->rtt_sum += ms;
		m->st.rtt_avg_ms = m->rtt_sum / (double)m->st.rtt_count;
	}
}

/* A compound packet that passed rtcp_check: SR and RR report blocks, and
 * the SR's NTP time for our next LSR. Every read is inside its packet's
 * length. */
static void rx_rtcp_parse(struct pmedia *m, const uint8_t *p, size_t n, uint64_t now)
{
	size_t off = 0;

	while (off + 4 <= n) {
		size_t plen = ((size_t)(p[off + 2] << 8 | p[off + 3]) + 1) * 4;
		const uint8_t *q = p + off;
		unsigned rc = q[0] & 0x1F;
		size_t at;

		if (plen > n - off)
			break;
		if (q[1] == RTCP_SR && plen >= 28) {
			m->have_lsr = true;
			m->lsr = be32_get(q + 10); /* the middle 32 bits of the NTP time */
			m->lsr_arrival_v = now;
			at = 28;
		} else if (q[1] == RTCP_RR && plen >= 8) {
			at = 8;
		} else {
			off += plen;
			continue;
		}
		for (unsigned i = 0; i < rc && at + 24 <= plen; i++, at += 24)
			rx_block(m, q + at, now);
		off += plen;
	}
}

static void rx_rtcp(struct pmedia *m, const uint8_t *pkt, size_t n, const struct sockaddr *from,
		    socklen_t fromlen, uint64_t now)
{
	uint8_t buf[PKT_MAX];
	size_t len;

	if (!m->started) {
		m->st.early_drops++;
		return;
	}
	if (!sa_same(&m->rtcp_to, from, fromlen))
		m->st.unexpected_src++;
	if (n > PKT_MAX || n < RTCP_HEADER_MIN) {
		m->st.rtcp_malformed++;
		return;
	}
	if (!rx_unprotect(m, true, pkt, n, buf, &len, now))
		return;
	if (rtcp_check(buf, len) != 0) {
		m->st.rtcp_malformed++;
		return;
	}
	m->st.rtcp_recv++;
	m->st.rtcp_bytes_recv += n;
	sa_copy(&m->st.last_rtcp_src, from, fromlen);
	rx_rtcp_parse(m, buf, len, now);
}

void pmedia_input(struct pmedia *m, bool rtcp, const uint8_t *pkt, size_t n,
		  const struct sockaddr *from, socklen_t fromlen)
{
	uint64_t now = now_v(m);

	/* RFC 5761: a peer that multiplexes sends its RTCP to our RTP port */
	if (rtcp || rtp_is_rtcp(pkt, n)) {
		rx_rtcp(m, pkt, n, from, fromlen, now);
	} else {
		uint64_t before = m->st.rtp_recv;

		rx_rtp(m, pkt, n, from, fromlen, now);
		if (m->st.rtp_recv != before)
			sa_copy(&m->st.last_rtp_src, from, fromlen);
	}
}

/* recvmmsg: one system call for what is queued, and no second one just
 * to hear EAGAIN (hundreds of streams share a core in srtpprobe load). */
static void on_read(evutil_socket_t fd, short what, void *arg)
{
	struct psock *s = arg;
	uint8_t buf[READ_BATCH][PKT_MAX];
	struct sockaddr_storage from[READ_BATCH];
	struct iovec iov[READ_BATCH];
	struct mmsghdr msg[READ_BATCH];
	int n;

	(void)what;
	for (int round = 0; round < 4; round++) { /* bounded: one busy socket cannot starve */
		memset(msg, 0, sizeof(msg));
		for (int i = 0; i < READ_BATCH; i++) {
			iov[i].iov_base = buf[i];
			iov[i].iov_len = PKT_MAX;
			msg[i].msg_hdr.msg_iov = &iov[i];
			msg[i].msg_hdr.msg_iovlen = 1;
			msg[i].msg_hdr.msg_name = &from[i];
			msg[i].msg_hdr.msg_namelen = sizeof(from[i]);
		}
		n = recvmmsg(fd, msg, READ_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return; /* EAGAIN, or an ICMP error reported late: nothing to read */
		for (int i = 0; i < n; i++) {
			if (msg[i].msg_hdr.msg_flags & MSG_TRUNC) {
				s->rtcp ? s->m->st.rtcp_malformed++ : s->m->st.rtp_malformed++;
				continue;
			}
			pmedia_input(s->m, s->rtcp, buf[i], msg[i].msg_len,
				     (struct sockaddr *)&from[i], msg[i].msg_hdr.msg_namelen);
		}
		if (n < READ_BATCH)
			return;
	}
}

/* --- lifecycle --- */

static int udp_bind(const struct sockaddr_storage *local, socklen_t len, uint16_t port, int *fd)
{
	struct sockaddr_storage a = *local;
	int s = socket(a.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (s < 0)
		return errno;
	sa_set_port(&a, port);
	if (bind(s, (struct sockaddr *)&a, len) != 0) {
		int err = errno;

		close(s);
		return err;
	}
	*fd = s;
	return 0;
}

static uint16_t bound_port(int fd)
{
	struct sockaddr_storage a;
	socklen_t len = sizeof(a);

	if (getsockname(fd, (struct sockaddr *)&a, &len) != 0)
		return 0;
	return sa_port(&a);
}

/* An RTP + RTCP pair at port (0: any free even pair). */
static int bind_pair(struct pmedia *m, uint16_t port, int fds[2])
{
	int err = EADDRINUSE;

	fds[0] = fds[1] = -1;
	if (port) {
		if (port == 65535)
			return EINVAL;
		err = udp_bind(&m->local, m->local_len, port, &fds[0]);
		if (!err) {
			err = udp_bind(&m->local, m->local_len, (uint16_t)(port + 1), &fds[1]);
			if (err) {
				close(fds[0]);
				fds[0] = -1;
			}
		}
		return err;
	}
	/* the kernel picks a random free port; half are even, and the odd one
	 * above is free more often than not */
	for (int tries = 0; tries < 200; tries++) {
		uint16_t p;

		err = udp_bind(&m->local, m->local_len, 0, &fds[0]);
		if (err)
			return err;
		p = bound_port(fds[0]);
		if (p && !(p & 1) && p != 65534 &&
		    udp_bind(&m->local, m->local_len, (uint16_t)(p + 1), &fds[1]) == 0)
			return 0;
		close(fds[0]);
		fds[0] = -1;
		err = EADDRINUSE;
	}
	return err;
}

int pmedia_create(struct pmedia **out, struct event_base *base, enum pmedia_role role,
		  const struct sockaddr *local, socklen_t local_len,
		  const struct pmedia_faults *faults, char *why, size_t whysz)
{
	struct pmedia *m;
	struct timespec rt;
	int fds[2], err;
	char buf[160];

	if (!out || !base || !local || (role != PMEDIA_CALLER && role != PMEDIA_ANSWERER) ||
	    !((local->sa_family == AF_INET && local_len >= (socklen_t)sizeof(struct sockaddr_in)) ||
	      (local->sa_family == AF_INET6 &&
	       local_len >= (socklen_t)sizeof(struct sockaddr_in6))) ||
	    local_len > (socklen_t)sizeof(struct sockaddr_storage)) {
		setwhy(why, whysz, "media: a local IPv4 or IPv6 address is needed");
		return EINVAL;
	}
	m = calloc(1, sizeof(*m));
	if (!m) {
		setwhy(why, whysz, "media: out of memory");
		return ENOMEM;
	}
	m->base = base;
	m->role = role;
	if (faults)
		m->f = *faults;
	sa_copy(&m->local, local, local_len);
	m->local_len = local_len;
	for (int i = 0; i < 4; i++) {
		m->sk[i].fd = -1;
		m->sk[i].m = m;
		m->sk[i].rtcp = i & 1;
	}
	m->speed = 1;
	m->mono0 = mono_us();
	clock_gettime(CLOCK_REALTIME, &rt);
	m->rt0_us = (uint64_t)rt.tv_sec * 1000000ULL + (uint64_t)rt.tv_nsec / 1000;

	err = bind_pair(m, sa_port(&m->local), fds);
	if (err) {
		snprintf(buf, sizeof(buf), "media: cannot bind an RTP/RTCP port pair: %s",
			 strerror(err));
		setwhy(why, whysz, buf);
		goto out;
	}
	m->sk[0].fd = fds[0];
	m->sk[1].fd = fds[1];
	m->port = bound_port(fds[0]);
	if (m->f.rtp_from) {
		err = bind_pair(m, m->f.rtp_from, fds);
		if (err) {
			snprintf(buf, sizeof(buf), "media: cannot bind rtp-from ports %u/%u: %s",
				 m->f.rtp_from, m->f.rtp_from + 1u, strerror(err));
			setwhy(why, whysz, buf);
			goto out;
		}
		m->sk[2].fd = fds[0];
		m->sk[3].fd = fds[1];
	}
	for (int i = 0; i < 4; i++) {
		if (m->sk[i].fd < 0)
			continue;
		if (event_assign(&m->sk[i].ev, base, m->sk[i].fd, EV_READ | EV_PERSIST, on_read,
				 &m->sk[i]) != 0 ||
		    event_add(&m->sk[i].ev, NULL) != 0) {
			setwhy(why, whysz, "media: libevent refused a socket event");
			err = ENOMEM;
			goto out;
		}
		m->sk[i].added = true;
	}
	if (event_assign(&m->tick, base, -1, 0, on_tick, m) != 0) {
		setwhy(why, whysz, "media: libevent refused a timer");
		err = ENOMEM;
		goto out;
	}

	m->ssrc = random32();
	if (m->f.seq_start_set)
		m->seq = m->f.seq_start;
	else if (m->f.roc_reset)
		m->seq = PMEDIA_ROC_RESET_SEQ;
	else
		m->seq = (uint16_t)random32();
	m->ts0 = random32();
	snprintf(m->cname, sizeof(m->cname), "srtpprobe-%08x@probe.invalid", m->ssrc);
	m->tx_tone = m->f.silence ? TONE_SILENCE : (role == PMEDIA_CALLER ? TONE_A : TONE_C);
	tone_gen_init(&m->gen, tone_hz(m->tx_tone), TONE_AMPLITUDE);
	m->st.local_ssrc = m->ssrc;
	m->win_start_v = 0;
out:
	if (err)
		pmedia_destroy(m);
	else
		*out = m;
	return err;
}

uint16_t pmedia_local_port(const struct pmedia *m)
{
	return m ? m->port : 0;
}

void pmedia_set_speed(struct pmedia *m, unsigned speed)
{
	if (!m || speed < 1 || speed > 50)
		return;
	m->vbase = now_v(m);
	m->mono0 = mono_us();
	m->speed = speed;
}

static int check_params(const struct pmedia *m, const struct pmedia_params *p, char *why,
			size_t whysz)
{
	const char *w = NULL;

	if (!p)
		w = "media: no parameters";
	else if (p->pt != PMEDIA_PT_PCMU && p->pt != PMEDIA_PT_PCMA)
		w = "media: the payload type must be 0 (PCMU) or 8 (PCMA)";
	else if ((unsigned)p->dir > PMEDIA_INACTIVE)
		w = "media: unknown direction";
	else if (p->remote_rtp_len > (socklen_t)sizeof(p->remote_rtp) ||
		 p->remote_rtcp_len > (socklen_t)sizeof(p->remote_rtcp))
		w = "media: remote address too long";
	else if (p->remote_rtp_len && p->remote_rtp.ss_family != m->local.ss_family)
		w = "media: the remote RTP address is not of the local address's family";
	else if (p->remote_rtcp_len && p->remote_rtcp.ss_family != m->local.ss_family)
		w = "media: the remote RTCP address is not of the local address's family";
	else if (p->secure && (unsigned)p->suite >= SUITE_COUNT)
		w = "media: unknown SRTP suite";
	else if (p->secure && p->our_key.keysalt.len != suite_keysalt_len(p->suite))
		w = "media: our key's length does not fit the suite";
	else if (p->secure && p->peer_key.keysalt.len != suite_keysalt_len(p->suite))
		w = "media: the peer's key length does not fit the suite";
	if (w) {
		setwhy(why, whysz, w);
		return EINVAL;
	}
	return 0;
}

/* Applies p: builds whatever contexts change first, so that a failure
 * leaves the stream as it was, then commits. */
static int apply(struct pmedia *m, const struct pmedia_params *p, bool first, char *why,
		 size_t whysz)
{
	struct srtpctx *out = NULL, *out_rtcp = NULL, *in = NULL;
	bool rebuild, new_out, new_in, keep_out;
	uint64_t now = now_v(m);
	int err = check_params(m, p, why, whysz);

	if (err)
		return err;
	rebuild = first || p->secure != m->p.secure ||
		  (p->secure &&
		   (p->suite != m->p.suite || p->unencrypted_srtcp != m->p.unencrypted_srtcp));
	new_out = p->secure && (rebuild || !key_equal(&p->our_key, &m->p.our_key));
	new_in = p->secure && (rebuild || !key_equal(&p->peer_key, &m->p.peer_key));
	/* no_rekey: a new key of ours that changes nothing else is ignored */
	keep_out = new_out && !rebuild && m->f.no_rekey;
	if (new_out && !keep_out) {
		err = make_out(m, p, &out, &out_rtcp, why, whysz);
		if (err)
			return err;
	}
	if (new_in) {
		err = make_in(p, &in, why, whysz);
		if (err) {
			srtpctx_destroy(out);
			srtpctx_destroy(out_rtcp);
			return err;
		}
	}

	/* commit */
	if (out || !p->secure) {
		uint32_t roc = 0;

		/* our stream goes on where the old key left it (RFC 3711
		 * 3.3.1), unless the roc_reset fault starts it again */
		if (out && m->out && m->sent_any) {
			if (m->f.roc_reset || srtpctx_get_roc(m->out, m->ssrc, &roc) != 0)
				roc = 0;
			srtpctx_add_stream(out, m->ssrc, roc);
		}
		if (m->out && out)
			m->st.rekeys_tx++;
		srtpctx_destroy(m->out);
		srtpctx_destroy(m->out_rtcp);
		m->out = out;
		m->out_rtcp = out_rtcp;
	}
	if (in) {
		if (m->in) {
			uint32_t roc;

			/* the peer's packets in flight still decrypt for a while;
			 * its stream goes on under the new key with its ROC */
			if (m->have_rx_ssrc && srtpctx_get_roc(m->in, m->rx_ssrc, &roc) == 0)
				srtpctx_add_stream(in, m->rx_ssrc, roc);
			srtpctx_destroy(m->in_old);
			m->in_old = m->in;
			m->in_old_until_v = now + GRACE_US;
			m->st.rekeys_rx++;
		}
		m->in = in;
	} else if (!p->secure) {
		srtpctx_destroy(m->in);
		srtpctx_destroy(m->in_old);
		m->in = m->in_old = NULL;
	}
	params_wipe(&m->p);
	m->p = *p;
	if (p->remote_rtcp_len) {
		m->rtcp_to = p->remote_rtcp;
		m->rtcp_to_len = p->remote_rtcp_len;
	} else {
		m->rtcp_to = p->remote_rtp;
		m->rtcp_to_len = p->remote_rtp_len;
		sa_set_port(&m->rtcp_to, (uint16_t)(sa_port(&p->remote_rtp) + 1));
	}
	return 0;
}

int pmedia_start(struct pmedia *m, const struct pmedia_params *p, char *why, size_t whysz)
{
	int err;

	if (!m)
		return EINVAL;
	if (m->started) {
		setwhy(why, whysz, "media: already started");
		return EALREADY;
	}
	err = apply(m, p, true, why, whysz);
	if (err)
		return err;
	m->started = true;
	m->start_v = now_v(m);
	m->win_start_v = m->start_v;
	memset(&m->win, 0, sizeof(m->win));
	m->next_rtcp_v = m->start_v + FIRST_RTCP_US;
	m->slot = 0;
	on_tick(-1, 0, m); /* the first packet now, not 20 ms from now; arms the timer */
	if (!m->tick_added) {
		setwhy(why, whysz, "media: libevent refused the timer");
		m->started = false;
		return ENOMEM;
	}
	return 0;
}

int pmedia_update(struct pmedia *m, const struct pmedia_params *p, char *why, size_t whysz)
{
	if (!m || !m->started) {
		setwhy(why, whysz, "media: not started");
		return EINVAL;
	}
	return apply(m, p, false, why, whysz);
}

void pmedia_stop(struct pmedia *m)
{
	if (!m || m->stopped)
		return;
	if (m->tick_added)
		event_del(&m->tick);
	m->tick_added = false;
	m->stopped = true;
	m->stop_v = now_v(m);
}

static uint64_t window_ms(const struct pmedia *m)
{
	uint64_t end = m->stopped ? m->stop_v : now_v(m);

	return end > m->win_start_v ? (end - m->win_start_v) / 1000 : 0;
}

void pmedia_stats(const struct pmedia *m, struct pmedia_stats *st)
{
	uint64_t expected;
	uint32_t roc;

	*st = m->st;
	st->lost = m->lost_acc + pmedia_rx_lost(&m->rx);
	expected = m->expected_acc + pmedia_rx_expected(&m->rx);
	st->loss_pct = expected && st->lost > 0 ? 100.0 * (double)st->lost / (double)expected : 0;
	st->jitter_ms = pmedia_rx_jitter_ms(&m->rx);
	st->window.tones = m->win;
	st->window.ms = window_ms(m);
	st->tx_roc = m->out && srtpctx_get_roc(m->out, m->ssrc, &roc) == 0 ? roc : 0;
	st->tx_tone = m->tx_tone;
	st->sending = may_send_rtp(m);
}

void pmedia_window_reset(struct pmedia *m)
{
	if (!m)
		return;
	memset(&m->win, 0, sizeof(m->win));
	m->win_start_v = m->stopped ? m->stop_v : now_v(m);
}

enum pmedia_heard pmedia_heard(const struct pmedia *m)
{
	struct pmedia_window w = { .tones = m->win, .ms = window_ms(m) };

	return pmedia_verdict(m->role, &w);
}

void pmedia_destroy(struct pmedia *m)
{
	if (!m)
		return;
	if (m->tick_added)
		event_del(&m->tick);
	for (int i = 0; i < 4; i++) {
		if (m->sk[i].added)
			event_del(&m->sk[i].ev);
		if (m->sk[i].fd >= 0)
			close(m->sk[i].fd);
	}
	srtpctx_destroy(m->out);
	srtpctx_destroy(m->out_rtcp);
	srtpctx_destroy(m->in);
	srtpctx_destroy(m->in_old);
	params_wipe(&m->p);
	OPENSSL_cleanse(m, sizeof(*m));
	free(m);
}

int pmedia_random_key(enum suite_id suite, struct sdes_key *key)
{
	if (!key || (unsigned)suite >= SUITE_COUNT)
		return EINVAL;
	memset(key, 0, sizeof(*key));
	return secret_random(&key->keysalt, suite_keysalt_len(suite)) ? EIO : 0;
}

const char *pmedia_role_name(enum pmedia_role r)
{
	return r == PMEDIA_CALLER ? "caller" : r == PMEDIA_ANSWERER ? "answerer" : "?";
}

const char *pmedia_dir_name(enum pmedia_dir d)
{
	static const char *const names[] = { "sendrecv", "sendonly", "recvonly", "inactive" };

	return (unsigned)d <= PMEDIA_INACTIVE ? names[d] : "?";
}

const char *pmedia_heard_name(enum pmedia_heard h)
{
	static const char *const names[] = { "nothing", "far", "C", "own", "silence", "other" };

	return (unsigned)h <= PMEDIA_HEARD_OTHER ? names[h] : "?";
}
