/* srtpprobe: places and answers test calls that prove audio flows
 * (DESIGN.md "srtpprobe", docs/srtpprobe.md): the command line, the
 * reports, and srtpprobe load's many calls on one event loop. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "srtpbridge/addr.h"
#include "srtpbridge/log.h"
#include "srtpbridge/srtplib.h"
#include "pmedia.h"
#include "psdp.h"
#include "ua.h"

enum {
	EXIT_TWO_WAY = 0,
	EXIT_AUDIO = 1,
	EXIT_SIP = 2,
	EXIT_USAGE = 3,
};

enum mode {
	MODE_CALL = 0,
	MODE_ANSWER,
	MODE_LOAD,
};

static const char *const mode_names[] = { "call", "answer", "load" };

struct opts {
	enum mode mode;
	struct ua_config ua;
	bool json;
	bool once;
	bool srtp_given, suites_given;
	const char *to;
	const char *listen_arg; /* call/load: --listen ADDR */
	double duration;
	unsigned calls;
	double rate;
	char faults[400]; /* the switches in use, comma-separated, for the report */
	char ca_path[4096], cert_path[4096], key_path[4096];
};

static void usage(FILE *f)
{
	fputs("usage: srtpprobe call --to sip:USER@HOST[:PORT] [options]\n"
	      "       srtpprobe answer --listen udp:IP:PORT [--listen tcp:IP:PORT]\n"
	      "                        [--listen tls:IP:PORT --cert FILE --key FILE] [--once] "
	      "[options]\n"
	      "       srtpprobe load --to sip:USER@HOST[:PORT] --calls N --rate CPS --duration S\n"
	      "                        [options]\n"
	      "       srtpprobe --version | --help\n"
	      "call and load:\n"
	      "  --to URI              the far end (sips: or ;transport= choose TLS or TCP)\n"
	      "  --transport T         udp, tcp or tls (default: from the URI, else udp)\n"
	      "  --listen ADDR         our SIP address, IP or IP:PORT (default: the address\n"
	      "                        that reaches the far end, a free port)\n"
	      "  --ca FILE             CA bundle that verifies the TLS server (default: system)\n"
	      "  --tls-name NAME       name the server certificate must carry (default: the host)\n"
	      "  --duration S          seconds from the answer to our BYE (default 5)\n"
	      "  --hold-resume         re-INVITE to sendonly at 1/3 of the call and back to\n"
	      "                        sendrecv at 2/3, with new keys each time (call only)\n"
	      "  --calls N, --rate CPS load: N calls started at CPS per second, each held until\n"
	      "                        --duration S after the last one started\n"
	      "answer:\n"
	      "  --listen tp:IP:PORT   where calls come in (udp, tcp, tls); may be repeated\n"
	      "  --cert FILE, --key FILE  the certificate and key of tls listen addresses\n"
	      "  --once                exit after the first call with its exit status\n"
	      "both:\n"
	      "  --srtp MODE           call: mandatory (default) or off; answer: optional\n"
	      "                        (default), mandatory or off\n"
	      "  --suites LIST         SDES suites, comma-separated, in our order of preference\n"
	      "  --codec C             PCMU (call default) or PCMA; answer: either (default)\n"
	      "  --media-address IP    where media binds and what SDP says (default: the SIP IP)\n"
	      "  --json                one JSON object per report\n"
	      "  -v, --verbose         log more of the SIP stack (twice: debug)\n"
	      "  --sip-trace           log every SIP message (keys redacted)\n"
	      "fault switches (they act on what this side sends):\n"
	      "  --tag-mismatch        protect with the other tag length (_80 <-> _32)\n"
	      "  --wrong-key           protect with a key other than the one signalled\n"
	      "  --no-rekey            keep the old key after a re-INVITE brings a new one\n"
	      "  --roc-reset           reset the rollover counter at a re-key\n"
	      "  --seq-start N         first RTP sequence number\n"
	      "  --send-plain          plain RTP and RTCP on a stream negotiated as SRTP\n"
	      "  --plain-rtcp          unencrypted SRTCP without UNENCRYPTED_SRTCP\n"
	      "  --no-media            send no RTP and no RTCP\n"
	      "  --silence             send RTP packets of digital silence\n"
	      "  --no-rtcp             send no RTCP\n"
	      "  --rtp-from PORT       send media from PORT (and PORT+1), not the SDP's port\n"
	      "A call without --hold-resume gets a re-key at half its duration when\n"
	      "--roc-reset or --no-rekey asks for one.\n"
	      "Exit status: 0 two-way audio, 1 audio missing in some direction, 2 SIP failure,\n"
	      "3 usage.\n",
	      f);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("srtpprobe: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n(srtpprobe --help for usage)\n", stderr);
	return EXIT_USAGE;
}

/* ---- JSON ---- */

struct jout {
	FILE *f;
	bool first;
};

static void j_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void j_key(struct jout *o, const char *k)
{
	if (!o->first)
		fputc(',', o->f);
	o->first = false;
	j_str(o->f, k);
	fputc(':', o->f);
}

static void j_open(struct jout *o, const char *k, char brace)
{
	if (k)
		j_key(o, k);
	else if (!o->first)
		fputc(',', o->f);
	fputc(brace, o->f);
	o->first = true;
}

static void j_close(struct jout *o, char brace)
{
	fputc(brace, o->f);
	o->first = false;
}

static void j_s(struct jout *o, const char *k, const char *v)
{
	j_key(o, k);
	if (v)
		j_str(o->f, v);
	else
		fputs("null", o->f);
}

/* "" as null: a text that is absent */
static void j_sn(struct jout *o, const char *k, const char *v)
{
	j_s(o, k, v && *v ? v : NULL);
}

static void j_u(struct jout *o, const char *k, unsigned long long v)
{
	j_key(o, k);
	fprintf(o->f, "%llu", v);
}

static void j_i(struct jout *o, const char *k, long long v)
{
	j_key(o, k);
	fprintf(o->f, "%lld", v);
}

static void j_d(struct jout *o, const char *k, double v)
{
	j_key(o, k);
	if (isfinite(v))
		fprintf(o->f, "%.3f", v);
	else
		fputs("null", o->f);
}

static void j_b(struct jout *o, const char *k, bool v)
{
	j_key(o, k);
	fputs(v ? "true" : "false", o->f);
}

static void j_null(struct jout *o, const char *k)
{
	j_key(o, k);
	fputs("null", o->f);
}

/* ---- reports ---- */

static uint64_t rtp_fails(const struct pmedia_stats *s)
{
	return s->rtp_auth_fail + s->rtp_replay_fail + s->rtp_cant_check + s->rtp_other_fail;
}

static uint64_t rtcp_fails(const struct pmedia_stats *s)
{
	return s->rtcp_auth_fail + s->rtcp_replay_fail + s->rtcp_cant_check + s->rtcp_other_fail;
}

static const char *suite_text(const struct ua_report *r)
{
	return !r->media ? NULL : r->secure ? suite_name(r->suite) : "RTP";
}

static void json_report(const struct ua_report *r, const struct opts *o)
{
	const struct pmedia_stats *s = &r->st;
	struct jout j = { stdout, true };

	j_open(&j, NULL, '{');
	j_s(&j, "role", r->role == UA_CALLER ? "caller" : "answerer");
	j_s(&j, "verdict", r->verdict);
	j_i(&j, "exit_status", r->exit_status);
	j_s(&j, "call_id", r->call_id);
	j_open(&j, "sip", '{');
	j_s(&j, "transport", r->transport);
	if (r->status)
		j_i(&j, "status", r->status);
	else
		j_null(&j, "status");
	j_sn(&j, "reason", r->reason);
	j_sn(&j, "warning", r->warning);
	j_sn(&j, "failure", r->failure);
	if (r->setup_ms >= 0)
		j_i(&j, "setup_ms", r->setup_ms);
	else
		j_null(&j, "setup_ms");
	j_open(&j, "reinvites", '[');
	for (size_t i = 0; i < r->nreinvites; i++) {
		const struct ua_reinvite *x = &r->reinvites[i];

		j_open(&j, NULL, '{');
		j_s(&j, "purpose", x->purpose);
		j_b(&j, "ours", x->ours);
		if (x->status)
			j_i(&j, "status", x->status);
		else
			j_null(&j, "status");
		j_sn(&j, "reason", x->reason);
		j_sn(&j, "warning", x->warning);
		j_close(&j, '}');
	}
	j_close(&j, ']');
	j_sn(&j, "ended_by", r->ended_by);
	if (r->bye_status)
		j_i(&j, "bye_status", r->bye_status);
	else
		j_null(&j, "bye_status");
	j_sn(&j, "bye_reason", r->bye_reason);
	j_close(&j, '}');
	j_u(&j, "duration_ms", r->duration_ms);
	j_b(&j, "srtp", r->media && r->secure);
	j_s(&j, "suite", suite_text(r));
	j_s(&j, "codec", r->media ? psdp_codec_name(r->pt) : NULL);
	j_s(&j, "direction", r->media ? psdp_dir_name(r->dir) : NULL);
	j_sn(&j, "local_media", r->local_media);
	j_sn(&j, "remote_media", r->media ? r->remote_media : NULL);
	j_open(&j, "key_fingerprints", '{');
	j_sn(&j, "ours", r->media && r->secure ? r->key_ours : NULL);
	j_sn(&j, "peer", r->media && r->secure ? r->key_peer : NULL);
	j_close(&j, '}');

	j_open(&j, "tx", '{');
	j_u(&j, "packets", s->rtp_sent);
	j_u(&j, "bytes", s->rtp_bytes_sent);
	j_u(&j, "rtcp_packets", s->rtcp_sent);
	j_s(&j, "tone", r->media ? tone_class_name(s->tx_tone) : NULL);
	if (s->peer_report) {
		j_i(&j, "far_end_lost", s->peer_cumulative_lost);
		j_d(&j, "far_end_loss_pct", 100.0 * s->peer_fraction_lost);
		j_d(&j, "far_end_jitter_ms", s->peer_jitter_ms);
	} else {
		j_null(&j, "far_end_lost");
		j_null(&j, "far_end_loss_pct");
		j_null(&j, "far_end_jitter_ms");
	}
	if (r->far.present)
		j_u(&j, "far_end_packets", r->far.packets);
	else
		j_null(&j, "far_end_packets");
	j_close(&j, '}');

	j_open(&j, "rx", '{');
	j_u(&j, "packets", s->rtp_recv);
	j_u(&j, "bytes", s->rtp_bytes_recv);
	j_u(&j, "rtcp_packets", s->rtcp_recv);
	j_i(&j, "lost", s->lost);
	j_d(&j, "loss_pct", s->loss_pct);
	j_d(&j, "jitter_ms", s->jitter_ms);
	j_d(&j, "max_gap_ms", s->max_gap_ms);
	j_u(&j, "wrong_pt", s->wrong_pt);
	j_u(&j, "malformed_rtp", s->rtp_malformed);
	j_u(&j, "malformed_rtcp", s->rtcp_malformed);
	j_u(&j, "unexpected_source", s->unexpected_src);
	j_u(&j, "ssrc_changes", s->ssrc_changes);
	j_u(&j, "on_old_key", s->rx_on_old_key);
	j_close(&j, '}');

	j_open(&j, "decrypt_failures", '{');
	j_open(&j, "rtp", '{');
	j_u(&j, "auth", s->rtp_auth_fail);
	j_u(&j, "replay", s->rtp_replay_fail);
	j_u(&j, "cant_check", s->rtp_cant_check);
	j_u(&j, "other", s->rtp_other_fail);
	j_u(&j, "total", rtp_fails(s));
	j_close(&j, '}');
	j_open(&j, "rtcp", '{');
	j_u(&j, "auth", s->rtcp_auth_fail);
	j_u(&j, "replay", s->rtcp_replay_fail);
	j_u(&j, "cant_check", s->rtcp_cant_check);
	j_u(&j, "other", s->rtcp_other_fail);
	j_u(&j, "total", rtcp_fails(s));
	j_close(&j, '}');
	j_u(&j, "total", rtp_fails(s) + rtcp_fails(s));
	j_close(&j, '}');

	j_open(&j, "rtcp", '{');
	j_u(&j, "sent", s->rtcp_sent);
	j_u(&j, "received", s->rtcp_recv);
	if (s->rtt_count) {
		j_open(&j, "rtt_ms", '{');
		j_u(&j, "count", s->rtt_count);
		j_d(&j, "min", s->rtt_min_ms);
		j_d(&j, "avg", s->rtt_avg_ms);
		j_d(&j, "max", s->rtt_max_ms);
		j_close(&j, '}');
	} else {
		j_null(&j, "rtt_ms");
	}
	j_close(&j, '}');

	j_open(&j, "heard", '{');
	j_s(&j, "tone", r->ours.present ? r->ours.tone : "none");
	j_u(&j, "frames", r->ours.frames);
	j_u(&j, "packets", r->ours.packets);
	j_s(&j, "class", pmedia_heard_name(r->heard));
	j_u(&j, "window_ms", s->window.ms);
	j_open(&j, "window_tones", '{');
	for (int i = 0; i < TONE_CLASS_COUNT; i++)
		j_u(&j, tone_class_name((enum tone_class)i), s->window.tones.n[i]);
	j_close(&j, '}');
	j_close(&j, '}');
	if (r->far.present) {
		j_open(&j, "far_end", '{');
		j_s(&j, "tone", r->far.tone);
		j_u(&j, "frames", r->far.frames);
		j_u(&j, "packets", r->far.packets);
		j_close(&j, '}');
	} else {
		j_null(&j, "far_end");
	}
	j_open(&j, "faults", '[');
	for (const char *p = o->faults; *p;) {
		size_t n = strcspn(p, ",");
		char name[40];

		snprintf(name, sizeof(name), "%.*s", (int)n, p);
		if (!j.first)
			fputc(',', j.f);
		j.first = false;
		j_str(j.f, name);
		p += n + (p[n] == ',');
	}
	j_close(&j, ']');
	j_close(&j, '}');
	fputc('\n', stdout);
	fflush(stdout);
}

static void text_report(const struct ua_report *r, const struct opts *o)
{
	const struct pmedia_stats *s = &r->st;
	FILE *f = stdout;

	fprintf(f, "srtpprobe %s: %s (exit %d)\n", r->role == UA_CALLER ? "call" : "answer",
		r->verdict, r->exit_status);
	fprintf(f, "  call-id:   %s\n", r->call_id);
	fprintf(f, "  SIP:       ");
	if (r->status)
		fprintf(f, "%d %s", r->status, r->reason);
	else
		fprintf(f, "no final response (%s)", r->reason[0] ? r->reason : "none");
	fprintf(f, " over %s", r->transport);
	if (r->setup_ms >= 0)
		fprintf(f, ", setup %lld ms", (long long)r->setup_ms);
	fputc('\n', f);
	if (r->warning[0])
		fprintf(f, "  warning:   %s\n", r->warning);
	if (r->failure[0])
		fprintf(f, "  failure:   %s\n", r->failure);
	for (size_t i = 0; i < r->nreinvites; i++) {
		const struct ua_reinvite *x = &r->reinvites[i];

		fprintf(f, "  re-INVITE: %s (%s): ", x->purpose, x->ours ? "ours" : "theirs");
		if (x->status)
			fprintf(f, "%d %s", x->status, x->reason);
		else
			fprintf(f, "%s", x->reason[0] ? x->reason : "no response");
		if (x->warning[0])
			fprintf(f, " (%s)", x->warning);
		fputc('\n', f);
	}
	if (r->ended_by[0]) {
		fprintf(f, "  ended:     by %s", r->ended_by);
		if (r->bye_status)
			fprintf(f, ", BYE %d", r->bye_status);
		if (r->bye_reason[0])
			fprintf(f, " (Reason: %s)", r->bye_reason);
		if (r->setup_ms >= 0)
			fprintf(f, ", %llu ms after the answer",
				(unsigned long long)r->duration_ms);
		fputc('\n', f);
	}
	if (!r->media) {
		fprintf(f, "  media:     none\n");
	} else {
		fprintf(f, "  media:     %s, %s, %s, %s <-> %s\n", suite_text(r),
			psdp_codec_name(r->pt), psdp_dir_name(r->dir), r->local_media,
			r->remote_media);
		if (r->secure)
			fprintf(f, "  keys:      ours %s, peer %s (fingerprints)\n", r->key_ours,
				r->key_peer);
		fprintf(f, "  sent:      %llu RTP (tone %s), %llu RTCP",
			(unsigned long long)s->rtp_sent, tone_class_name(s->tx_tone),
			(unsigned long long)s->rtcp_sent);
		if (s->peer_report)
			fprintf(f, "; the far end reports lost %d (%.2f %%), jitter %.2f ms",
				(int)s->peer_cumulative_lost, 100.0 * s->peer_fraction_lost,
				s->peer_jitter_ms);
		fputc('\n', f);
		fprintf(f,
			"  received:  %llu RTP, lost %lld (%.2f %%), jitter %.2f ms, max gap %.1f "
			"ms, "
			"%llu RTCP",
			(unsigned long long)s->rtp_recv, (long long)s->lost, s->loss_pct,
			s->jitter_ms, s->max_gap_ms, (unsigned long long)s->rtcp_recv);
		if (s->rtt_count)
			fprintf(f, ", RTT %.2f ms", s->rtt_avg_ms);
		fputc('\n', f);
		fprintf(f,
			"  decrypt failures: RTP %llu (auth %llu, replay %llu, cannot check %llu, "
			"other %llu), RTCP %llu (auth %llu, replay %llu, cannot check %llu, "
			"other %llu)\n",
			(unsigned long long)rtp_fails(s), (unsigned long long)s->rtp_auth_fail,
			(unsigned long long)s->rtp_replay_fail,
			(unsigned long long)s->rtp_cant_check,
			(unsigned long long)s->rtp_other_fail, (unsigned long long)rtcp_fails(s),
			(unsigned long long)s->rtcp_auth_fail,
			(unsigned long long)s->rtcp_replay_fail,
			(unsigned long long)s->rtcp_cant_check,
			(unsigned long long)s->rtcp_other_fail);
		if (s->wrong_pt || s->rtp_malformed || s->rtcp_malformed || s->unexpected_src)
			fprintf(f,
				"  oddities:  %llu of another payload type, %llu malformed RTP, "
				"%llu malformed RTCP, %llu from an unexpected source\n",
				(unsigned long long)s->wrong_pt,
				(unsigned long long)s->rtp_malformed,
				(unsigned long long)s->rtcp_malformed,
				(unsigned long long)s->unexpected_src);
		fprintf(f,
			"  heard:     %s (%llu frames in the last %llu ms; A %llu, B %llu, C %llu, "
			"silence %llu, other %llu)\n",
			r->ours.present ? r->ours.tone : "none", (unsigned long long)r->ours.frames,
			(unsigned long long)s->window.ms,
			(unsigned long long)s->window.tones.n[TONE_A],
			(unsigned long long)s->window.tones.n[TONE_B],
			(unsigned long long)s->window.tones.n[TONE_C],
			(unsigned long long)s->window.tones.n[TONE_SILENCE],
			(unsigned long long)s->window.tones.n[TONE_OTHER]);
	}
	if (r->far.present)
		fprintf(f, "  far end:   heard %s (%llu frames, %llu packets)\n", r->far.tone,
			(unsigned long long)r->far.frames, (unsigned long long)r->far.packets);
	else
		fprintf(f, "  far end:   no account (not an srtpprobe, or no BYE exchanged)\n");
	fprintf(f, "  faults:    %s\n", o->faults[0] ? o->faults : "none");
	fflush(f);
}

/* ---- load ---- */

#define STATUS_SLOTS 700

struct load {
	struct opts *o;
	struct ua *ua;
	struct event_base *base;
	struct event *tick, *end;
	unsigned started, start_failed, answered, ended;
	unsigned statuses[STATUS_SLOTS];
	unsigned verdict_two_way, verdict_other[8];
	const char *verdict_names[8];
	size_t nverdicts;
	uint64_t tx_packets, rx_packets, rx_expected, rx_lost_pos, decrypt_failures;
	double *jitter, *rtt, *setup;
	size_t njitter, nrtt, nsetup;
	uint64_t t0_ms, last_start_ms;
	bool ending;
	int exit_status;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void load_note(struct load *l, const struct ua_report *r)
{
	const struct pmedia_stats *s = &r->st;

	l->ended++;
	if (r->status > 0 && r->status < STATUS_SLOTS)
		l->statuses[r->status]++;
	else
		l->statuses[0]++;
	if (r->exit_status == 0) {
		l->verdict_two_way++;
	} else {
		size_t i = 0;

		while (i < l->nverdicts && strcmp(l->verdict_names[i], r->verdict) != 0)
			i++;
		if (i == l->nverdicts && l->nverdicts < 8)
			l->verdict_names[l->nverdicts++] = r->verdict;
		if (i < 8)
			l->verdict_other[i]++;
	}
	if (!r->media)
		return;
	l->tx_packets += s->rtp_sent;
	l->rx_packets += s->rtp_recv;
	l->rx_expected += s->rtp_recv + (uint64_t)(s->lost > 0 ? s->lost : 0);
	l->rx_lost_pos += (uint64_t)(s->lost > 0 ? s->lost : 0);
	l->decrypt_failures += rtp_fails(s) + rtcp_fails(s);
	l->jitter[l->njitter++] = s->jitter_ms;
	if (s->rtt_count)
		l->rtt[l->nrtt++] = s->rtt_avg_ms;
	if (r->setup_ms >= 0)
		l->setup[l->nsetup++] = (double)r->setup_ms;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
	size_t i;

	if (!n)
		return NAN;
	qsort(v, n, sizeof(*v), cmp_double);
	i = (size_t)ceil(p / 100.0 * (double)n);
	return v[i ? i - 1 : 0];
}

static void load_summary(struct load *l)
{
	const struct opts *o = l->o;
	double loss = l->rx_expected ? 100.0 * (double)l->rx_lost_pos / (double)l->rx_expected : 0;
	double jmax = l->njitter ? pct(l->jitter, l->njitter, 100) : NAN;
	bool ok = l->verdict_two_way == o->calls && loss < 0.1;

	l->exit_status = ok ? EXIT_TWO_WAY : l->answered == 0 ? EXIT_SIP : EXIT_AUDIO;
	if (o->json) {
		struct jout j = { stdout, true };

		j_open(&j, NULL, '{');
		j_s(&j, "role", "load");
		j_i(&j, "exit_status", l->exit_status);
		j_u(&j, "calls_attempted", o->calls);
		j_u(&j, "calls_answered", l->answered);
		j_u(&j, "calls_failed", o->calls - l->answered);
		j_open(&j, "failed_by_status", '{');
		for (int s = 0; s < STATUS_SLOTS; s++) {
			char k[16];

			if (s >= 200 && s < 300)
				continue;
			if (!l->statuses[s])
				continue;
			snprintf(k, sizeof(k), "%d", s);
			j_u(&j, s ? k : "none", l->statuses[s]);
		}
		if (l->start_failed)
			j_u(&j, "not_sent", l->start_failed);
		j_close(&j, '}');
		j_open(&j, "verdicts", '{');
		j_u(&j, "two-way audio", l->verdict_two_way);
		for (size_t i = 0; i < l->nverdicts; i++)
			j_u(&j, l->verdict_names[i], l->verdict_other[i]);
		j_close(&j, '}');
		j_u(&j, "tx_packets", l->tx_packets);
		j_u(&j, "rx_packets", l->rx_packets);
		j_d(&j, "loss_pct", loss);
		j_d(&j, "jitter_ms_p50", pct(l->jitter, l->njitter, 50));
		j_d(&j, "jitter_ms_p99", pct(l->jitter, l->njitter, 99));
		j_d(&j, "jitter_ms_max", jmax);
		j_d(&j, "rtt_ms_p50", pct(l->rtt, l->nrtt, 50));
		j_d(&j, "rtt_ms_p99", pct(l->rtt, l->nrtt, 99));
		j_d(&j, "setup_ms_p50", pct(l->setup, l->nsetup, 50));
		j_d(&j, "setup_ms_p99", pct(l->setup, l->nsetup, 99));
		j_u(&j, "decrypt_failures", l->decrypt_failures);
		j_close(&j, '}');
		fputc('\n', stdout);
	} else {
		printf("srtpprobe load: %s (exit %d)\n",
		       ok ? "every call two-way audio" : "not every call was two-way audio",
		       l->exit_status);
		printf("  calls:     %u attempted, %u answered, %u two-way audio\n", o->calls,
		       l->answered, l->verdict_two_way);
		for (int s = 0; s < STATUS_SLOTS; s++)
			if (l->statuses[s] && (s < 200 || s >= 300))
				printf("  failed:    %u with %s%d\n", l->statuses[s],
				       s ? "" : "no final response ", s);
		if (l->start_failed)
			printf("  not sent:  %u\n", l->start_failed);
		for (size_t i = 0; i < l->nverdicts; i++)
			printf("  verdict:   %u %s\n", l->verdict_other[i], l->verdict_names[i]);
		printf("  packets:   %llu sent, %llu received, loss %.3f %%\n",
		       (unsigned long long)l->tx_packets, (unsigned long long)l->rx_packets, loss);
		printf("  jitter:    p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
		       pct(l->jitter, l->njitter, 50), pct(l->jitter, l->njitter, 99), jmax);
		printf("  RTT:       p50 %.2f ms, p99 %.2f ms\n", pct(l->rtt, l->nrtt, 50),
		       pct(l->rtt, l->nrtt, 99));
		printf("  setup:     p50 %.1f ms, p99 %.1f ms\n", pct(l->setup, l->nsetup, 50),
		       pct(l->setup, l->nsetup, 99));
		printf("  decrypt failures: %llu\n", (unsigned long long)l->decrypt_failures);
	}
	fflush(stdout);
}

/* ---- the run ---- */

struct run {
	struct opts *o;
	struct event_base *base;
	struct ua *ua;
	struct load *load;
	struct event *sigint, *sigterm, *retry;
	unsigned signals;
	int exit_status;
	unsigned retries;
	bool placed;
};

static void print_report(struct run *run, const struct ua_report *r)
{
	if (run->o->json)
		json_report(r, run->o);
	else
		text_report(r, run->o);
}

static void on_ended(void *arg, struct ua_call *c, const struct ua_report *r)
{
	struct run *run = arg;

	if (run->load) {
		load_note(run->load, r);
		if (run->o->ua.log_level >= LOG_LVL_INFO)
			print_report(run, r);
		if (run->load->ended + run->load->start_failed == run->o->calls) {
			load_summary(run->load);
			run->exit_status = run->load->exit_status;
			event_base_loopexit(run->base, NULL);
		}
		return;
	}
	print_report(run, r);
	run->exit_status = r->exit_status;
	/* a moment for what is still queued (a response on a stream) to go */
	if (run->o->mode == MODE_CALL || run->o->once)
		event_base_loopexit(run->base, &(struct timeval){ 0, 300000 });
}

static void on_answered(void *arg, struct ua_call *c)
{
	struct run *run = arg;

	if (run->load)
		run->load->answered++;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct run *run = arg;
	struct timeval grace = { 0, 200000 };

	if (++run->signals > 1 || run->o->mode == MODE_ANSWER) {
		/* the answerer stops taking calls; BYEs to calls up have gone */
		ua_hangup_all(run->ua);
		if (run->o->mode == MODE_ANSWER && !run->o->once)
			run->exit_status = 0;
		event_base_loopexit(run->base, &grace);
		return;
	}
	ua_hangup_all(run->ua); /* the report comes when the call has ended */
}

static void place_call(evutil_socket_t fd, short what, void *arg)
{
	struct run *run = arg;
	char why[300];
	int err = ua_call_start(run->ua, NULL, why, sizeof(why));

	/* a peer by name resolves in the background: wait for it a little */
	if (err == EHOSTUNREACH && ++run->retries < 50) {
		struct timeval tv = { 0, 100000 };

		event_add(run->retry, &tv);
		return;
	}
	if (err) {
		fprintf(stderr, "srtpprobe: %s\n", why);
		run->exit_status = EXIT_SIP;
		event_base_loopexit(run->base, NULL);
	}
}

static void load_end(evutil_socket_t fd, short what, void *arg)
{
	struct run *run = arg;

	run->load->ending = true;
	ua_hangup_all(run->ua);
}

static void load_tick(evutil_socket_t fd, short what, void *arg)
{
	struct run *run = arg;
	struct load *l = run->load;
	const struct opts *o = run->o;
	uint64_t now = mono_ms();
	/* calls due by now at the rate: a late tick catches up */
	unsigned due = (unsigned)((double)(now - l->t0_ms) * o->rate / 1000.0) + 1;
	char why[300];

	if (due > o->calls)
		due = o->calls;
	while (l->started + l->start_failed < due) {
		if (ua_call_start(run->ua, NULL, why, sizeof(why))) {
			l->start_failed++;
			if (l->start_failed == 1)
				fprintf(stderr, "srtpprobe: a call could not start: %s\n", why);
		} else {
			l->started++;
		}
	}
	if (l->started + l->start_failed < o->calls) {
		double next = (double)(l->started + l->start_failed) * 1000.0 / o->rate;
		uint64_t at = l->t0_ms + (uint64_t)next, wait = at > now ? at - now : 0;
		struct timeval tv = { (time_t)(wait / 1000), (long)(wait % 1000) * 1000 };

		event_add(l->tick, &tv);
		return;
	}
	l->last_start_ms = now;
	if (l->start_failed == o->calls) {
		load_summary(l);
		run->exit_status = l->exit_status;
		event_base_loopexit(run->base, NULL);
		return;
	}
	{
		uint64_t ms = (uint64_t)(o->duration * 1000.0);
		struct timeval tv = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000 };

		event_add(l->end, &tv);
	}
}

/* ---- the command line ---- */

enum {
	OPT_TO = 256,
	OPT_TRANSPORT,
	OPT_CA,
	OPT_TLS_NAME,
	OPT_LISTEN,
	OPT_SRTP,
	OPT_SUITES,
	OPT_CODEC,
	OPT_DURATION,
	OPT_HOLD_RESUME,
	OPT_JSON,
	OPT_CERT,
	OPT_KEY,
	OPT_ONCE,
	OPT_CALLS,
	OPT_RATE,
	OPT_MEDIA_ADDRESS,
	OPT_SIP_TRACE,
	OPT_TAG_MISMATCH,
	OPT_WRONG_KEY,
	OPT_NO_REKEY,
	OPT_ROC_RESET,
	OPT_SEQ_START,
	OPT_SEND_PLAIN,
	OPT_PLAIN_RTCP,
	OPT_NO_MEDIA,
	OPT_SILENCE,
	OPT_NO_RTCP,
	OPT_RTP_FROM,
	OPT_SPEED,
};

static const struct option long_opts[] = {
	{ "to", required_argument, NULL, OPT_TO },
	{ "transport", required_argument, NULL, OPT_TRANSPORT },
	{ "ca", required_argument, NULL, OPT_CA },
	{ "tls-name", required_argument, NULL, OPT_TLS_NAME },
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "srtp", required_argument, NULL, OPT_SRTP },
	{ "suites", required_argument, NULL, OPT_SUITES },
	{ "codec", required_argument, NULL, OPT_CODEC },
	{ "duration", required_argument, NULL, OPT_DURATION },
	{ "hold-resume", no_argument, NULL, OPT_HOLD_RESUME },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "cert", required_argument, NULL, OPT_CERT },
	{ "key", required_argument, NULL, OPT_KEY },
	{ "once", no_argument, NULL, OPT_ONCE },
	{ "calls", required_argument, NULL, OPT_CALLS },
	{ "rate", required_argument, NULL, OPT_RATE },
	{ "media-address", required_argument, NULL, OPT_MEDIA_ADDRESS },
	{ "verbose", no_argument, NULL, 'v' },
	{ "sip-trace", no_argument, NULL, OPT_SIP_TRACE },
	{ "tag-mismatch", no_argument, NULL, OPT_TAG_MISMATCH },
	{ "wrong-key", no_argument, NULL, OPT_WRONG_KEY },
	{ "no-rekey", no_argument, NULL, OPT_NO_REKEY },
	{ "roc-reset", no_argument, NULL, OPT_ROC_RESET },
	{ "seq-start", required_argument, NULL, OPT_SEQ_START },
	{ "send-plain", no_argument, NULL, OPT_SEND_PLAIN },
	{ "plain-rtcp", no_argument, NULL, OPT_PLAIN_RTCP },
	{ "no-media", no_argument, NULL, OPT_NO_MEDIA },
	{ "silence", no_argument, NULL, OPT_SILENCE },
	{ "no-rtcp", no_argument, NULL, OPT_NO_RTCP },
	{ "rtp-from", required_argument, NULL, OPT_RTP_FROM },
	{ "speed", required_argument, NULL, OPT_SPEED }, /* tests only: not in --help */
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static void note_fault(struct opts *o, const char *name)
{
	size_t n = strlen(o->faults);

	snprintf(o->faults + n, sizeof(o->faults) - n, "%s%s", n ? "," : "", name);
}

static bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *e;
	unsigned long v;

	if (!s || !*s || *s == '-' || *s == '+')
		return false;
	errno = 0;
	v = strtoul(s, &e, 10);
	if (errno || *e || v > max)
		return false;
	*out = v;
	return true;
}

static bool parse_double(const char *s, double min, double max, double *out)
{
	char *e;
	double v;

	if (!s || !*s)
		return false;
	errno = 0;
	v = strtod(s, &e);
	if (errno || *e || !isfinite(v) || v < min || v > max)
		return false;
	*out = v;
	return true;
}

static int abs_path(const char *in, char *out, size_t size, const char *what)
{
	if (access(in, R_OK) != 0)
		return usage_error("%s %s: %s", what, in, strerror(errno));
	if (!realpath(in, out) || strlen(out) >= size)
		return usage_error("%s %s: cannot resolve the path", what, in);
	return 0;
}

/* sip:USER@HOST[:PORT][;params] or sips:...: the host, port and transport
 * the INVITE goes to. */
static int parse_to(struct opts *o, bool transport_given)
{
	const char *uri = o->to, *p, *host, *end;
	char hostbuf[256];
	bool sips;
	unsigned long port = 0;
	size_t hn;

	sips = strncasecmp(uri, "sips:", 5) == 0;
	if (!sips && strncasecmp(uri, "sip:", 4) != 0)
		return usage_error("--to %s: not a sip: or sips: URI", uri);
	p = uri + (sips ? 5 : 4);
	host = strchr(p, '@');
	host = host ? host + 1 : p;
	if (*host == '[') {
		end = strchr(host, ']');
		if (!end)
			return usage_error("--to %s: an IPv6 host needs its ']'", uri);
		host++;
		hn = (size_t)(end - host);
		end++;
	} else {
		hn = strcspn(host, ":;?>");
		end = host + hn;
	}
	if (!hn || hn >= sizeof(hostbuf))
		return usage_error("--to %s: no host", uri);
	memcpy(hostbuf, host, hn);
	hostbuf[hn] = '\0';
	if (*end == ':') {
		char num[8];
		size_t n = strcspn(end + 1, ";?>");

		if (n == 0 || n >= sizeof(num))
			return usage_error("--to %s: a bad port", uri);
		memcpy(num, end + 1, n);
		num[n] = '\0';
		if (!parse_uint(num, 65535, &port) || !port)
			return usage_error("--to %s: a bad port", uri);
	}
	if (!transport_given) {
		const char *tp = strcasestr(uri, ";transport=");

		o->ua.transport = sips ? SIP_TP_TLS : SIP_TP_UDP;
		if (tp && strncasecmp(tp + 11, "tcp", 3) == 0)
			o->ua.transport = SIP_TP_TCP;
		else if (tp && strncasecmp(tp + 11, "tls", 3) == 0)
			o->ua.transport = SIP_TP_TLS;
	}
	if (!port)
		port = o->ua.transport == SIP_TP_TLS ? 5061 : 5060;
	snprintf(o->ua.peer, sizeof(o->ua.peer), "%s:%s%s%s:%lu",
		 o->ua.transport == SIP_TP_TLS	 ? "tls"
		 : o->ua.transport == SIP_TP_TCP ? "tcp"
						 : "udp",
		 strchr(hostbuf, ':') ? "[" : "", hostbuf, strchr(hostbuf, ':') ? "]" : "", port);
	/* the Request-URI says the transport when it is not UDP and the URI
	 * did not (a sips: URI says TLS already) */
	if (o->ua.transport != SIP_TP_UDP && !sips && !strcasestr(uri, ";transport="))
		snprintf(o->ua.to, sizeof(o->ua.to), "%s;transport=%s", uri,
			 o->ua.transport == SIP_TP_TLS ? "tls" : "tcp");
	else
		snprintf(o->ua.to, sizeof(o->ua.to), "%s", uri);
	if (strpbrk(o->ua.to, " \t\r\n<>\""))
		return usage_error("--to %s: a URI has no spaces, quotes or angle brackets", uri);
	return 0;
}

/* The local address that reaches host (what the kernel would send from). */
static int local_addr_for(const char *peer, char *out, size_t size)
{
	char host[256];
	const char *h = strchr(peer, ':') + 1, *end;
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *res = NULL;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd, err = EHOSTUNREACH;

	if (*h == '[') {
		h++;
		end = strchr(h, ']');
	} else {
		end = strrchr(h, ':');
	}
	snprintf(host, sizeof(host), "%.*s", (int)(end - h), h);
	if (getaddrinfo(host, "5060", &hints, &res) || !res)
		return EHOSTUNREACH;
	fd = socket(res->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) == 0 &&
	    getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, out,
				  (socklen_t)size);
		else
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, out,
				  (socklen_t)size);
		err = 0;
	}
	if (fd >= 0)
		close(fd);
	freeaddrinfo(res);
	return err;
}

/* The IP of a listen address "tp:IP:PORT" (brackets dropped). */
static void listen_ip(const char *l, char *out, size_t size)
{
	const char *h = strchr(l, ':');
	const char *end;

	out[0] = '\0';
	if (!h)
		return;
	h++;
	if (*h == '[') {
		h++;
		end = strchr(h, ']');
	} else {
		end = strrchr(h, ':');
	}
	if (end && end > h)
		snprintf(out, size, "%.*s", (int)(end - h), h);
}

static bool wildcard(const char *ip)
{
	return strcmp(ip, "0.0.0.0") == 0 || strcmp(ip, "::") == 0;
}

static int check_faults(struct opts *o)
{
	const struct pmedia_faults *f = &o->ua.faults;
	bool srtp_only = f->tag_mismatch || f->wrong_key || f->no_rekey || f->roc_reset ||
			 f->send_plain || f->plain_rtcp;
	bool any_ok = false;
	const char *why = NULL;

	if (srtp_only && o->ua.pol.srtp == PSDP_SRTP_OFF)
		return usage_error(
			"--tag-mismatch, --wrong-key, --no-rekey, --roc-reset, "
			"--send-plain and --plain-rtcp act on SRTP: not with --srtp off");
	if (f->no_media && (f->silence || f->send_plain || f->tag_mismatch || f->wrong_key))
		return usage_error("--no-media sends nothing: it cannot go with --silence, "
				   "--send-plain, --tag-mismatch or --wrong-key");
	if (f->send_plain && (f->tag_mismatch || f->wrong_key || f->plain_rtcp))
		return usage_error("--send-plain sends no SRTP: it cannot go with --tag-mismatch, "
				   "--wrong-key or --plain-rtcp");
	if (f->no_rtcp && f->plain_rtcp)
		return usage_error("--no-rtcp sends no RTCP: it cannot go with --plain-rtcp");
	if (f->tag_mismatch) {
		for (size_t i = 0; i < o->ua.pol.nsuites; i++)
			if (pmedia_fault_suite_ok(f, o->ua.pol.suites[i], &why))
				any_ok = true;
		if (!any_ok)
			return usage_error("--tag-mismatch needs a suite with a tag-length twin "
					   "(AES_CM): %s",
					   why ? why : "none in --suites");
	}
	if (o->ua.hold_resume && o->mode != MODE_CALL)
		return usage_error("--hold-resume is for srtpprobe call");
	return 0;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	bool transport_given = false;
	const char *srtp = NULL, *suites = NULL, *codec = NULL;
	char why[200];
	int c, verbose = 0, err;

	o->duration = 5;
	o->ua.log_level = LOG_LVL_WARN;
	optind = 2;
	while ((c = getopt_long(argc, argv, "vh", long_opts, NULL)) != -1) {
		unsigned long v;

		switch (c) {
		case OPT_TO:
			o->to = optarg;
			break;
		case OPT_TRANSPORT:
			transport_given = true;
			if (strcmp(optarg, "udp") == 0)
				o->ua.transport = SIP_TP_UDP;
			else if (strcmp(optarg, "tcp") == 0)
				o->ua.transport = SIP_TP_TCP;
			else if (strcmp(optarg, "tls") == 0)
				o->ua.transport = SIP_TP_TLS;
			else
				return usage_error("--transport %s: udp, tcp or tls", optarg);
			break;
		case OPT_CA:
			if (abs_path(optarg, o->ca_path, sizeof(o->ca_path), "--ca"))
				return EXIT_USAGE;
			o->ua.ca = o->ca_path;
			break;
		case OPT_TLS_NAME:
			if (!*optarg || strpbrk(optarg, " \t\r\n,;"))
				return usage_error("--tls-name %s: not a host name", optarg);
			o->ua.tls_name = optarg;
			break;
		case OPT_LISTEN:
			if (o->mode != MODE_ANSWER) {
				o->listen_arg = optarg;
				break;
			}
			if (o->ua.nlisten == UA_MAX_LISTEN)
				return usage_error("at most %d --listen", UA_MAX_LISTEN);
			if (strncmp(optarg, "udp:", 4) && strncmp(optarg, "tcp:", 4) &&
			    strncmp(optarg, "tls:", 4))
				return usage_error("--listen %s: udp:IP:PORT, tcp:IP:PORT or "
						   "tls:IP:PORT",
						   optarg);
			snprintf(o->ua.listen[o->ua.nlisten++], sizeof(o->ua.listen[0]), "%s",
				 optarg);
			break;
		case OPT_SRTP:
			srtp = optarg;
			break;
		case OPT_SUITES:
			suites = optarg;
			break;
		case OPT_CODEC:
			codec = optarg;
			break;
		case OPT_DURATION:
			if (!parse_double(optarg, 0.1, 86400, &o->duration))
				return usage_error("--duration %s: seconds, 0.1 to 86400", optarg);
			break;
		case OPT_HOLD_RESUME:
			o->ua.hold_resume = true;
			note_fault(o, "hold-resume");
			break;
		case OPT_JSON:
			o->json = true;
			break;
		case OPT_CERT:
			if (abs_path(optarg, o->cert_path, sizeof(o->cert_path), "--cert"))
				return EXIT_USAGE;
			o->ua.cert = o->cert_path;
			break;
		case OPT_KEY:
			if (abs_path(optarg, o->key_path, sizeof(o->key_path), "--key"))
				return EXIT_USAGE;
			o->ua.key = o->key_path;
			break;
		case OPT_ONCE:
			o->once = true;
			break;
		case OPT_CALLS:
			if (!parse_uint(optarg, 100000, &v) || !v)
				return usage_error("--calls %s: 1 to 100000", optarg);
			o->calls = (unsigned)v;
			break;
		case OPT_RATE:
			if (!parse_double(optarg, 0.01, 10000, &o->rate))
				return usage_error("--rate %s: calls per second, 0.01 to 10000",
						   optarg);
			break;
		case OPT_MEDIA_ADDRESS: {
			struct sockaddr_storage ss;
			socklen_t len;

			if (addr_from_ip(optarg, 0, &ss, &len) || wildcard(optarg))
				return usage_error("--media-address %s: an IP address of this host",
						   optarg);
			snprintf(o->ua.media_addr, sizeof(o->ua.media_addr), "%s", optarg);
			break;
		}
		case 'v':
			verbose++;
			break;
		case OPT_SIP_TRACE:
			o->ua.sip_trace = true;
			break;
		case OPT_TAG_MISMATCH:
			o->ua.faults.tag_mismatch = true;
			note_fault(o, "tag-mismatch");
			break;
		case OPT_WRONG_KEY:
			o->ua.faults.wrong_key = true;
			note_fault(o, "wrong-key");
			break;
		case OPT_NO_REKEY:
			o->ua.faults.no_rekey = true;
			note_fault(o, "no-rekey");
			break;
		case OPT_ROC_RESET:
			o->ua.faults.roc_reset = true;
			note_fault(o, "roc-reset");
			break;
		case OPT_SEQ_START:
			if (!parse_uint(optarg, 65535, &v))
				return usage_error("--seq-start %s: 0 to 65535", optarg);
			o->ua.faults.seq_start_set = true;
			o->ua.faults.seq_start = (uint16_t)v;
			note_fault(o, "seq-start");
			break;
		case OPT_SEND_PLAIN:
			o->ua.faults.send_plain = true;
			note_fault(o, "send-plain");
			break;
		case OPT_PLAIN_RTCP:
			o->ua.faults.plain_rtcp = true;
			note_fault(o, "plain-rtcp");
			break;
		case OPT_NO_MEDIA:
			o->ua.faults.no_media = true;
			note_fault(o, "no-media");
			break;
		case OPT_SILENCE:
			o->ua.faults.silence = true;
			note_fault(o, "silence");
			break;
		case OPT_NO_RTCP:
			o->ua.faults.no_rtcp = true;
			note_fault(o, "no-rtcp");
			break;
		case OPT_RTP_FROM:
			if (!parse_uint(optarg, 65534, &v) || v < 1024)
				return usage_error("--rtp-from %s: a port of 1024 to 65534",
						   optarg);
			o->ua.faults.rtp_from = (uint16_t)v;
			note_fault(o, "rtp-from");
			break;
		case OPT_SPEED:
			if (!parse_uint(optarg, 50, &v) || !v)
				return usage_error("--speed %s: 1 to 50", optarg);
			o->ua.speed = (unsigned)v;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			return usage_error("unknown option");
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	o->ua.log_level = verbose >= 2 ? LOG_LVL_DEBUG : verbose ? LOG_LVL_INFO : LOG_LVL_WARN;
	if (o->ua.sip_trace && o->ua.log_level < LOG_LVL_INFO)
		o->ua.log_level = LOG_LVL_INFO;
	o->ua.role = o->mode == MODE_ANSWER ? UA_ANSWERER : UA_CALLER;

	/* SDP policy */
	o->ua.pol.pad = true;
	if (!srtp)
		o->ua.pol.srtp = o->mode == MODE_ANSWER ? PSDP_SRTP_OPTIONAL : PSDP_SRTP_MANDATORY;
	else if (strcmp(srtp, "mandatory") == 0)
		o->ua.pol.srtp = PSDP_SRTP_MANDATORY;
	else if (strcmp(srtp, "off") == 0)
		o->ua.pol.srtp = PSDP_SRTP_OFF;
	else if (strcmp(srtp, "optional") == 0 && o->mode == MODE_ANSWER)
		o->ua.pol.srtp = PSDP_SRTP_OPTIONAL;
	else
		return usage_error("--srtp %s: %s", srtp,
				   o->mode == MODE_ANSWER ? "off, mandatory or optional"
							  : "mandatory or off");
	if (suites && o->ua.pol.srtp == PSDP_SRTP_OFF)
		return usage_error("--suites with --srtp off: nothing to offer them in");
	if (suites) {
		err = psdp_parse_suites(suites, o->ua.pol.suites, &o->ua.pol.nsuites, why,
					sizeof(why));
		if (err)
			return usage_error("%s", why);
		note_fault(o, "suites");
	} else if (o->mode != MODE_ANSWER) {
		o->ua.pol.suites[0] = SUITE_AES_CM_128_HMAC_SHA1_80;
		o->ua.pol.suites[1] = SUITE_AES_CM_128_HMAC_SHA1_32;
		o->ua.pol.nsuites = 2;
	} else {
		/* the answerer takes every suite this libsrtp2 gets right, in table order */
		for (int i = 0; i < SUITE_COUNT; i++)
			if (suite_usable((enum suite_id)i, NULL))
				o->ua.pol.suites[o->ua.pol.nsuites++] = (enum suite_id)i;
	}
	if (!codec)
		o->ua.pol.codec = o->mode == MODE_ANSWER ? PSDP_CODEC_ANY : PSDP_PT_PCMU;
	else if (strcasecmp(codec, "PCMU") == 0)
		o->ua.pol.codec = PSDP_PT_PCMU;
	else if (strcasecmp(codec, "PCMA") == 0)
		o->ua.pol.codec = PSDP_PT_PCMA;
	else
		return usage_error("--codec %s: PCMU or PCMA", codec);
	err = check_faults(o);
	if (err)
		return err;

	if (o->mode == MODE_ANSWER) {
		char ip[64];

		if (!o->ua.nlisten)
			return usage_error("srtpprobe answer needs --listen");
		if (o->to || o->calls || o->rate)
			return usage_error("--to, --calls and --rate are not for srtpprobe answer");
		for (size_t i = 0; i < o->ua.nlisten; i++) {
			listen_ip(o->ua.listen[i], ip, sizeof(ip));
			if (wildcard(ip))
				return usage_error("--listen %s: name an IP address of this host, "
						   "not a wildcard (it goes in Contact and Via)",
						   o->ua.listen[i]);
		}
		if (!o->ua.media_addr[0]) {
			listen_ip(o->ua.listen[0], o->ua.media_addr, sizeof(o->ua.media_addr));
			if (addr_from_ip(o->ua.media_addr, 0, &(struct sockaddr_storage){ 0 },
					 &(socklen_t){ 0 }))
				return usage_error("--listen %s is a host name: give "
						   "--media-address",
						   o->ua.listen[0]);
		}
		return 0;
	}
	if (o->once)
		return usage_error("--once is for srtpprobe answer");
	if (!o->to)
		return usage_error("srtpprobe %s needs --to", mode_names[o->mode]);
	if (o->mode == MODE_LOAD && (!o->calls || !o->rate))
		return usage_error("srtpprobe load needs --calls and --rate");
	if (o->mode == MODE_CALL && (o->calls || o->rate))
		return usage_error("--calls and --rate are for srtpprobe load");
	if (o->duration < 2)
		return usage_error(
			"--duration %g: at least 2 s (the verdict needs a second of audio)",
			o->duration);
	if (o->ua.hold_resume && o->duration < 4)
		return usage_error("--duration %g: at least 4 s with --hold-resume", o->duration);
	err = parse_to(o, transport_given);
	if (err)
		return err;
	if (o->mode == MODE_CALL) {
		o->ua.duration_ms = (unsigned)(o->duration * 1000.0);
		o->ua.rekey_mid =
			!o->ua.hold_resume && (o->ua.faults.roc_reset || o->ua.faults.no_rekey);
	}
	/* our SIP address: --listen IP[:PORT], else the one that reaches the far end */
	{
		char ip[64] = "", tp[4];
		unsigned long port = 0;

		snprintf(tp, sizeof(tp), "%s",
			 o->ua.transport == SIP_TP_TLS	 ? "tls"
			 : o->ua.transport == SIP_TP_TCP ? "tcp"
							 : "udp");
		if (o->listen_arg) {
			const char *a = o->listen_arg, *colon;

			if (!strncmp(a, "udp:", 4) || !strncmp(a, "tcp:", 4) ||
			    !strncmp(a, "tls:", 4))
				a += 4;
			if (*a == '[') {
				const char *end = strchr(a, ']');

				if (!end)
					return usage_error("--listen %s: IP or IP:PORT",
							   o->listen_arg);
				snprintf(ip, sizeof(ip), "%.*s", (int)(end - a - 1), a + 1);
				colon = end[1] == ':' ? end + 1 : NULL;
			} else {
				colon = strchr(a, ':');
				if (colon && strchr(colon + 1, ':'))
					colon = NULL; /* a bare IPv6 address */
				snprintf(ip, sizeof(ip), "%.*s",
					 (int)(colon ? (size_t)(colon - a) : strlen(a)), a);
			}
			if (colon && (!parse_uint(colon + 1, 65535, &port) || !port))
				return usage_error("--listen %s: a bad port", o->listen_arg);
		} else if (local_addr_for(o->ua.peer, ip, sizeof(ip))) {
			return usage_error("--to %s: cannot tell which address of ours reaches it: "
					   "give --listen",
					   o->to);
		}
		if (addr_from_ip(ip, 0, &(struct sockaddr_storage){ 0 }, &(socklen_t){ 0 }) ||
		    wildcard(ip))
			return usage_error("--listen %s: an IP address of this host", ip);
		snprintf(o->ua.listen[0], sizeof(o->ua.listen[0]), "%s:%s%s%s:%lu", tp,
			 strchr(ip, ':') ? "[" : "", ip, strchr(ip, ':') ? "]" : "", port);
		o->ua.nlisten = 1;
		if (!o->ua.media_addr[0])
			snprintf(o->ua.media_addr, sizeof(o->ua.media_addr), "%s", ip);
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct ua_callbacks cb = { .ended = on_ended, .answered = on_answered };
	struct opts o;
	struct run run;
	struct load load;
	char why[600];
	int err;

	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		err = srtplib_init();
		printf("srtpprobe %s (%s, %s)\n", SRTPBRIDGE_VERSION, srtplib_version(),
		       err ? "unknown" : srtplib_backend());
		return 0;
	}
	memset(&o, 0, sizeof(o));
	if (strcmp(argv[1], "call") == 0)
		o.mode = MODE_CALL;
	else if (strcmp(argv[1], "answer") == 0)
		o.mode = MODE_ANSWER;
	else if (strcmp(argv[1], "load") == 0)
		o.mode = MODE_LOAD;
	else
		return usage_error("unknown command '%s': call, answer or load", argv[1]);
	err = parse_args(argc, argv, &o);
	if (err)
		return err;
	signal(SIGPIPE, SIG_IGN);
	log_init(STDERR_FILENO);
	if (srtplib_init()) {
		fprintf(stderr, "srtpprobe: libsrtp2 does not start\n");
		return EXIT_USAGE;
	}
	memset(&run, 0, sizeof(run));
	memset(&load, 0, sizeof(load));
	run.o = &o;
	run.exit_status = EXIT_SIP;
	run.base = event_base_new();
	if (!run.base) {
		fprintf(stderr, "srtpprobe: cannot start the event loop\n");
		return EXIT_USAGE;
	}
	err = ua_create(&run.ua, run.base, &o.ua, &cb, &run, why, sizeof(why));
	if (err) {
		fprintf(stderr, "srtpprobe: %s\n", why);
		event_base_free(run.base);
		return err == EADDRINUSE || err == EINVAL ? EXIT_USAGE : EXIT_SIP;
	}
	run.sigint = evsignal_new(run.base, SIGINT, on_signal, &run);
	run.sigterm = evsignal_new(run.base, SIGTERM, on_signal, &run);
	run.retry = evtimer_new(run.base, place_call, &run);
	event_add(run.sigint, NULL);
	event_add(run.sigterm, NULL);
	if (o.mode == MODE_ANSWER) {
		/* one line per address, printed once every one of them is bound */
		for (const char *l = ua_listening(run.ua); *l;) {
			size_t n = strcspn(l, ",");

			fprintf(stderr, "srtpprobe: listening %.*s\n", (int)n, l);
			l += n;
			l += strspn(l, ", ");
		}
		run.exit_status = 0;
	} else if (o.mode == MODE_CALL) {
		event_active(run.retry, EV_TIMEOUT, 0);
	} else {
		load.o = &o;
		load.base = run.base;
		load.ua = run.ua;
		load.jitter = calloc(o.calls, sizeof(double));
		load.rtt = calloc(o.calls, sizeof(double));
		load.setup = calloc(o.calls, sizeof(double));
		load.tick = evtimer_new(run.base, load_tick, &run);
		load.end = evtimer_new(run.base, load_end, &run);
		if (!load.jitter || !load.rtt || !load.setup || !load.tick || !load.end) {
			fprintf(stderr, "srtpprobe: out of memory\n");
			return EXIT_USAGE;
		}
		load.t0_ms = mono_ms();
		run.load = &load;
		event_active(load.tick, EV_TIMEOUT, 0);
	}
	fflush(stderr);
	event_base_dispatch(run.base);
	ua_destroy(run.ua);
	if (load.tick)
		event_free(load.tick);
	if (load.end)
		event_free(load.end);
	free(load.jitter);
	free(load.rtt);
	free(load.setup);
	event_free(run.sigint);
	event_free(run.sigterm);
	event_free(run.retry);
	event_base_free(run.base);
	srtplib_shutdown();
	return run.exit_status;
}
