/* ua.c: srtpprobe's SIP user agent, the transaction user of the daemon's
 * SIP stack. The rules, with the RFC 3261 sections they come from, are the
 * daemon's (src/b2bua/b2bua.c) as seen from one end of a call:
 * - a caller ACKs every 2xx to its INVITE, retransmissions included, also
 *   after the transaction (RFC 6026: they come as strays) (13.2.2.4);
 * - a caller cancels only after a provisional response (9.1) and waits a
 *   bounded time for the 487;
 * - an answerer retransmits its 2xx until the ACK, and ends the call with a
 *   BYE when none comes within 64*T1 (13.3.1.4);
 * - one answer per offer: an SDP in a 18x is the answer, the 2xx's is
 *   then ignored (RFC 3264, RFC 6337);
 * - a re-INVITE while ours is pending is refused with 491 (14.2).
 * Everything a message brings is untrusted: it is parsed by sipmsg (the
 * transport already has), and what goes into a report is cut and cleaned. */
#include "ua.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "srtpbridge/addr.h"
#include "srtpbridge/dialog.h"
#include "srtpbridge/legb.h"
#include "srtpbridge/randpool.h"
#include "srtpbridge/sipcore.h"
#include "srtpbridge/sipmsg.h"
#include "srtpbridge/txn.h"

#define LOG_MODULE   "probe"

#define T1_MS	     500u
#define T2_MS	     4000u
#define OUR_ALLOW    "INVITE, ACK, CANCEL, BYE, OPTIONS"
#define CONTACT_USER "srtpprobe"
#define TRUNK_NAME   "probe"

enum call_state {
	S_CALLING = 0, /* caller: INVITE out, no final response */
	S_CANCELLING,  /* caller: hung up before the answer */
	S_ANSWERED,    /* answerer: 2xx sent, ACK awaited */
	S_CONFIRMED,
	S_ENDING, /* caller: BYE sent, its response awaited */
};

struct ua_call {
	struct ua *ua;
	enum ua_role role;
	enum call_state state;
	char tag[17];
	struct dialog *dlg;
	struct txn_addr dest; /* where our requests go */
	struct txn *invite;   /* ours (caller) or theirs (answerer) */
	struct txn *cancel;
	struct txn *bye;
	bool provisional;    /* a 1xx came: a CANCEL may go */
	bool cancel_pending; /* hung up before any 1xx */
	char *ack;	     /* our ACK of the INVITE's 2xx, serialised, for its retransmissions */
	size_t ack_len;
	uint32_t invite_cseq;
	/* a re-INVITE: ours (client) or theirs (server), one at a time */
	struct txn *ri;
	bool ri_ours;
	bool ri_final; /* ours has its final response: another may go */
	uint32_t ri_cseq;
	char *ri_ack; /* our ACK of the 2xx to our re-INVITE */
	size_t ri_ack_len;
	uint32_t ri_ack_cseq;
	bool ri_awaiting_ack; /* theirs: our 2xx goes out until its ACK */
	bool late_offer;      /* our offer went in a 2xx: the answer comes in the ACK */
	struct ua_reinvite *ri_rep;
	int step; /* caller's schedule: 0 none done, 1 hold done, 2 resume done */
	uint32_t retrans_ms;
	/* SDP and media */
	struct psdp_session sdp;
	struct psdp_local local;
	struct pmedia *media;
	bool media_started, media_stopped;
	bool holding_conn;
	uint64_t start_ms, answer_ms;
	struct event t_hangup, t_step, t_window, t_retrans, t_deadline;
	struct ua_report rep;
	struct ua_call *prev, *next;
};

struct ua {
	struct event_base *base;
	struct ua_config cfg;
	struct ua_callbacks cb;
	void *arg;
	struct config *conf;
	const struct config_trunk *trunk;
	struct sipcore *sip;
	struct txn_layer *txn;
	char certdir[64]; /* the ephemeral TLS certificate of a caller, removed at the end */
	char listening[UA_MAX_LISTEN * 80];
	struct ua_call *calls;
	size_t ncalls;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static struct timeval tv_ms(uint64_t ms)
{
	return (struct timeval){ .tv_sec = (time_t)(ms / 1000),
				 .tv_usec = (long)(ms % 1000) * 1000 };
}

static void arm(struct event *ev, uint64_t ms)
{
	struct timeval tv = tv_ms(ms);

	event_add(ev, &tv);
}

/* Text from the far end into a report: printable ASCII, cut to fit. */
static void clean_copy(char *dst, size_t size, const char *src)
{
	size_t i = 0;

	for (; src && src[i] && i + 1 < size; i++) {
		unsigned char ch = (unsigned char)src[i];

		dst[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
	}
	dst[i] = '\0';
}

/* ---- X-Srtpprobe-Heard ---- */

void ua_heard_format(const struct ua_heard *h, char *buf, size_t size)
{
	snprintf(buf, size, "tone=%s; frames=%llu; packets=%llu", h->tone,
		 (unsigned long long)h->frames, (unsigned long long)h->packets);
}

static bool number(const char *p, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (!n || n > 19)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	*out = v;
	return true;
}

int ua_heard_parse(const char *value, struct ua_heard *out)
{
	static const char *const tones[] = { "A", "B", "C", "silence", "other", "none", NULL };
	const char *p = value;

	memset(out, 0, sizeof(*out));
	while (p && *p) {
		size_t len = strcspn(p, ";"), kn, vn;
		const char *k = p, *v, *eq;

		while (len && (*k == ' ' || *k == '\t')) {
			k++;
			len--;
		}
		eq = memchr(k, '=', len);
		if (eq) {
			kn = (size_t)(eq - k);
			v = eq + 1;
			vn = len - kn - 1;
			while (kn && (k[kn - 1] == ' ' || k[kn - 1] == '\t'))
				kn--;
			while (vn && (*v == ' ' || *v == '\t')) {
				v++;
				vn--;
			}
			while (vn && (v[vn - 1] == ' ' || v[vn - 1] == '\t'))
				vn--;
			if (kn == 4 && strncasecmp(k, "tone", 4) == 0) {
				for (int i = 0; tones[i]; i++)
					if (strlen(tones[i]) == vn &&
					    strncasecmp(tones[i], v, vn) == 0)
						snprintf(out->tone, sizeof(out->tone), "%s",
							 tones[i]);
			} else if (kn == 6 && strncasecmp(k, "frames", 6) == 0) {
				number(v, vn, &out->frames);
			} else if (kn == 7 && strncasecmp(k, "packets", 7) == 0) {
				number(v, vn, &out->packets);
			}
		}
		p = k + len;
		if (*p == ';')
			p++;
	}
	if (!out->tone[0]) {
		memset(out, 0, sizeof(*out));
		return EINVAL;
	}
	out->present = true;
	return 0;
}

/* ---- the verdict ---- */

void ua_judge(struct ua_report *r)
{
	bool far = r->far.present;

	if (r->usage_failure) {
		r->verdict = "usage";
		r->exit_status = 3;
		return;
	}
	if (r->status < 200 || r->status >= 300 || r->failure[0] || !r->media) {
		r->verdict = "SIP failure";
		r->exit_status = 2;
		return;
	}
	r->exit_status = 1;
	if (r->role == UA_CALLER) {
		switch (r->heard) {
		case PMEDIA_HEARD_FAR:
			r->verdict = "two-way audio";
			r->exit_status = 0;
			return;
		case PMEDIA_HEARD_C:
			r->verdict = "far end does not hear us";
			return;
		case PMEDIA_HEARD_OWN:
			r->verdict = "our own audio comes back";
			return;
		default:
			/* the far end heard nothing of ours either (or something that is
			 * not our tone A) */
			r->verdict = far && strcmp(r->far.tone, "A") != 0
					     ? "no audio"
					     : "we do not hear the far end";
			return;
		}
	}
	/* answerer: we hear the far end when we hear A; it hears us when its
	 * account says B or C (both are ours) */
	{
		bool we = r->heard == PMEDIA_HEARD_FAR;
		bool they = far && (strcmp(r->far.tone, "B") == 0 || strcmp(r->far.tone, "C") == 0);

		if (we && !far) {
			r->verdict = "we hear the far end";
			r->exit_status = 0;
		} else if (we && they) {
			r->verdict = "two-way audio";
			r->exit_status = 0;
		} else if (we) {
			r->verdict = "far end does not hear us";
		} else if (r->heard == PMEDIA_HEARD_OWN) {
			r->verdict = "our own audio comes back";
		} else if (they || !far) {
			r->verdict = "we do not hear the far end";
		} else {
			r->verdict = "no audio";
		}
	}
}

/* ---- the call's life ---- */

static void cut_loose(struct txn *t)
{
	if (t)
		txn_set_data(t, NULL);
}

static void call_free(struct ua_call *c)
{
	struct ua *u = c->ua;

	event_del(&c->t_hangup);
	event_del(&c->t_step);
	event_del(&c->t_window);
	event_del(&c->t_retrans);
	event_del(&c->t_deadline);
	cut_loose(c->invite);
	cut_loose(c->cancel);
	cut_loose(c->bye);
	cut_loose(c->ri);
	if (c->holding_conn)
		sipcore_conn_release(u->sip, c->dest.conn);
	if (c->prev)
		c->prev->next = c->next;
	else if (u->calls == c)
		u->calls = c->next;
	if (c->next)
		c->next->prev = c->prev;
	u->ncalls--;
	free(c->ack);
	free(c->ri_ack);
	dialog_destroy(c->dlg);
	pmedia_destroy(c->media);
	psdp_session_wipe(&c->sdp);
	OPENSSL_cleanse(c, sizeof(*c));
	free(c);
}

/* What we heard in the window, as the header tells it. */
static void heard_now(struct ua_call *c)
{
	struct ua_report *r = &c->rep;
	const struct pmedia_tones *w;
	enum tone_class cls = TONE_OTHER;
	const char *tone;
	uint64_t all = 0;

	if (!c->media)
		return;
	pmedia_stats(c->media, &r->st);
	r->heard = pmedia_heard(c->media);
	w = &r->st.window.tones;
	for (int i = 0; i < TONE_CLASS_COUNT; i++)
		all += w->n[i];
	switch (r->heard) {
	case PMEDIA_HEARD_FAR:
		cls = c->role == UA_CALLER ? TONE_B : TONE_A;
		break;
	case PMEDIA_HEARD_C:
		cls = TONE_C;
		break;
	case PMEDIA_HEARD_OWN:
		cls = c->role == UA_CALLER	     ? TONE_A
		      : w->n[TONE_B] >= w->n[TONE_C] ? TONE_B
						     : TONE_C;
		break;
	case PMEDIA_HEARD_SILENCE:
		cls = TONE_SILENCE;
		break;
	case PMEDIA_HEARD_OTHER:
	case PMEDIA_HEARD_NOTHING:
		cls = TONE_OTHER;
		break;
	}
	tone = r->heard == PMEDIA_HEARD_NOTHING ? "none" : tone_class_name(cls);
	r->ours.present = true;
	snprintf(r->ours.tone, sizeof(r->ours.tone), "%s", tone);
	r->ours.frames = r->heard == PMEDIA_HEARD_NOTHING ? all : w->n[cls];
	r->ours.packets = r->st.rtp_recv;
}

/* Once: sending stops, and what we heard is final (the report and the
 * header of our BYE or of our 200 to theirs say the same). */
static void stop_media(struct ua_call *c)
{
	if (c->media_stopped)
		return;
	c->media_stopped = true;
	if (c->media && c->media_started)
		pmedia_stop(c->media);
	event_del(&c->t_window);
	heard_now(c);
}

/* The call is over: its report goes to the callback, then it is freed. */
static void finish(struct ua_call *c, const char *ended_by)
{
	struct ua *u = c->ua;

	if (!c->rep.ended_by[0])
		snprintf(c->rep.ended_by, sizeof(c->rep.ended_by), "%s", ended_by);
	if (c->answer_ms)
		c->rep.duration_ms = now_ms() - c->answer_ms;
	stop_media(c);
	ua_judge(&c->rep);
	if (u->cb.ended)
		u->cb.ended(u->arg, c, &c->rep);
	call_free(c);
}

static void fail(struct ua_call *c, bool usage, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fail(struct ua_call *c, bool usage, const char *fmt, ...)
{
	va_list ap;

	if (c->rep.failure[0])
		return; /* the first says most */
	va_start(ap, fmt);
	vsnprintf(c->rep.failure, sizeof(c->rep.failure), fmt, ap);
	va_end(ap);
	c->rep.usage_failure = usage;
}

/* ---- messages ---- */

static int add_via_tp(const struct ua *u, enum sip_transport tp, osip_message_t *m)
{
	char via[400], branch[24] = "z9hG4bK";
	int err;

	randpool_hex16(branch + 7);
	err = legb_via(via, sizeof(via), u->trunk, tp, branch);
	if (!err && osip_message_set_via(m, via))
		err = ENOMEM;
	return err;
}

static int add_via(struct ua_call *c, osip_message_t *m)
{
	return add_via_tp(c->ua, c->dest.transport, m);
}

static int add_contact(struct ua_call *c, osip_message_t *m)
{
	char value[300];
	int err = legb_contact(value, sizeof(value), c->ua->trunk, c->dest.transport, CONTACT_USER);

	if (!err && osip_message_set_contact(m, value))
		err = ENOMEM;
	return err;
}

static int add_heard(struct ua_call *c, osip_message_t *m)
{
	char value[128];

	if (!c->rep.ours.present)
		return 0;
	ua_heard_format(&c->rep.ours, value, sizeof(value));
	return sipmsg_header_add(m, UA_HEARD_HEADER, value);
}

static void take_far_heard(struct ua_call *c, const osip_message_t *m)
{
	const char *v = sipmsg_header_get(m, UA_HEARD_HEADER, 0);
	struct ua_heard h;

	if (v && ua_heard_parse(v, &h) == 0)
		c->rep.far = h;
}

/* The Warning's text: what is inside the quotes, unescaped; the whole
 * value when it has none. */
static void warning_text(const osip_message_t *m, char *buf, size_t size)
{
	const char *v = sipmsg_header_get(m, "Warning", 0), *q;
	size_t n = 0;

	buf[0] = '\0';
	if (!v)
		return;
	q = strchr(v, '"');
	if (!q) {
		clean_copy(buf, size, v);
		return;
	}
	for (q++; *q && *q != '"' && n + 1 < size; q++) {
		if (*q == '\\' && q[1])
			q++;
		buf[n++] = (unsigned char)*q >= 0x20 && (unsigned char)*q < 0x7f ? *q : '?';
	}
	buf[n] = '\0';
}

static void reason_phrase(const osip_message_t *m, char *buf, size_t size)
{
	clean_copy(buf, size, m->reason_phrase ? m->reason_phrase : "");
}

/* A response of ours in server transaction t: our To tag; for a 2xx (and a
 * 101..199 that makes the dialog) the Record-Route of the request and our
 * Contact; Allow on a 2xx; Warning, SDP and X-Srtpprobe-Heard as given. */
static int respond(struct ua_call *c, struct txn *t, int status, const char *warning, char *sdp,
		   size_t len, bool heard)
{
	const osip_message_t *req = txn_get_request(t);
	osip_message_t *resp = NULL;
	int err = sipmsg_response(&resp, req, status, NULL, c->tag, warning);

	if (err)
		return err;
	if (status > 100 && status < 300 && c->dlg && MSG_IS_INVITE(req))
		err = dialog_uas_response_headers(c->dlg, req, resp);
	if (!err && status >= 200 && status < 300) {
		err = add_contact(c, resp);
		if (!err)
			err = sipmsg_header_add(resp, "Allow", OUR_ALLOW);
	}
	if (!err && heard)
		err = add_heard(c, resp);
	if (!err && len)
		err = sipmsg_set_body(resp, "application/sdp", sdp, len);
	if (sdp)
		OPENSSL_cleanse(sdp, len);
	if (err) {
		osip_message_free(resp);
		return err;
	}
	return txn_respond(t, resp);
}

/* A response outside any call (a refusal before one exists). */
static void respond_bare(struct txn *t, int status, const char *warning)
{
	osip_message_t *resp = NULL;
	char tag[17];

	randpool_hex16(tag);
	if (sipmsg_response(&resp, txn_get_request(t), status, NULL, tag, warning) == 0)
		txn_respond(t, resp);
}

/* A request in the call's dialog with our Via (and Contact when it
 * refreshes the target). */
static int dialog_msg(struct ua_call *c, const char *method, bool contact, osip_message_t **out)
{
	osip_message_t *m = NULL;
	int err;

	if (!c->dlg)
		return ENOTCONN;
	err = dialog_request(c->dlg, method, &m);
	if (!err)
		err = add_via(c, m);
	if (!err && contact)
		err = add_contact(c, m);
	if (!err)
		err = sipmsg_header_add(m, "User-Agent", "srtpprobe/" SRTPBRIDGE_VERSION);
	if (err)
		osip_message_free(m);
	else
		*out = m;
	return err;
}

/* ---- media ---- */

static void on_window(evutil_socket_t fd, short what, void *arg)
{
	struct ua_call *c = arg;

	if (c->media)
		pmedia_window_reset(c->media);
}

/* The negotiated stream into pmedia: a start, or an update after a
 * re-INVITE. The window restarts a moment later, when the new audio has
 * settled. Returns false when media cannot go on (the call then ends). */
static int media_try(struct ua_call *c, const struct psdp_result *res, char *why, size_t whysz,
		     bool *usage)
{
	struct pmedia_params p;
	char detail[200];
	int err;

	*usage = false;
	memset(&p, 0, sizeof(p));
	if (addr_from_ip(res->addr, res->port, &p.remote_rtp, &p.remote_rtp_len) ||
	    (!res->rtcp_mux && res->rtcp_port &&
	     addr_from_ip(res->addr, res->rtcp_port, &p.remote_rtcp, &p.remote_rtcp_len))) {
		snprintf(why, whysz, "the far end's media address %s is not usable", res->addr);
		return EINVAL;
	}
	if (res->rtcp_mux) {
		/* pmedia sends RTCP to the port it is told; rtcp-mux is the RTP port */
		p.remote_rtcp = p.remote_rtp;
		p.remote_rtcp_len = p.remote_rtp_len;
	}
	p.pt = res->pt;
	p.dir = (enum pmedia_dir)res->dir;
	p.secure = res->secure;
	p.suite = res->suite;
	p.our_key = res->ours;
	p.peer_key = res->peer;
	p.unencrypted_srtcp = res->unencrypted_srtcp;
	err = c->media_started ? pmedia_update(c->media, &p, detail, sizeof(detail))
			       : pmedia_start(c->media, &p, detail, sizeof(detail));
	OPENSSL_cleanse(&p, sizeof(p));
	if (err) {
		/* ENOTSUP: a fault switch that cannot act on the negotiated suite */
		*usage = err == ENOTSUP;
		snprintf(why, whysz, "media cannot %s: %s", c->media_started ? "change" : "start",
			 detail);
		return err;
	}
	c->media_started = true;
	c->rep.media = true;
	c->rep.secure = res->secure;
	c->rep.suite = res->suite;
	c->rep.pt = res->pt;
	c->rep.dir = res->dir;
	snprintf(c->rep.remote_media, sizeof(c->rep.remote_media), "%s%s%s:%u",
		 strchr(res->addr, ':') ? "[" : "", res->addr, strchr(res->addr, ':') ? "]" : "",
		 res->port);
	if (res->secure) {
		secret_fingerprint(&res->ours.keysalt, c->rep.key_ours);
		secret_fingerprint(&res->peer.keysalt, c->rep.key_peer);
	}
	event_del(&c->t_window);
	arm(&c->t_window, UA_WINDOW_DELAY_MS / (c->ua->cfg.speed > 1 ? c->ua->cfg.speed : 1));
	return 0;
}

/* media_try for what cannot be refused any more (an answer we took, our 2xx
 * sent): a failure ends the call, with its reason. */
static bool apply_media(struct ua_call *c, const struct psdp_result *res)
{
	char why[300];
	bool usage;

	if (media_try(c, res, why, sizeof(why), &usage) == 0)
		return true;
	fail(c, usage, "%s", why);
	return false;
}

static int media_create(struct ua_call *c, char *why, size_t whysz)
{
	struct ua *u = c->ua;
	struct sockaddr_storage ss;
	socklen_t len;
	int err;

	if (addr_from_ip(u->cfg.media_addr, 0, &ss, &len)) {
		snprintf(why, whysz, "media address %s is not an IP address", u->cfg.media_addr);
		return EINVAL;
	}
	err = pmedia_create(&c->media, u->base,
			    c->role == UA_CALLER ? PMEDIA_CALLER : PMEDIA_ANSWERER,
			    (const struct sockaddr *)&ss, len, &u->cfg.faults, why, whysz);
	if (err)
		return err;
	if (u->cfg.speed > 1)
		pmedia_set_speed(c->media, u->cfg.speed);
	snprintf(c->local.addr, sizeof(c->local.addr), "%s", u->cfg.media_addr);
	c->local.port = pmedia_local_port(c->media);
	snprintf(c->rep.local_media, sizeof(c->rep.local_media), "%s%s%s:%u",
		 strchr(c->local.addr, ':') ? "[" : "", c->local.addr,
		 strchr(c->local.addr, ':') ? "]" : "", c->local.port);
	return 0;
}

/* ---- new calls ---- */

static void on_hangup_timer(evutil_socket_t fd, short what, void *arg);
static void on_step(evutil_socket_t fd, short what, void *arg);
static void on_retrans(evutil_socket_t fd, short what, void *arg);
static void on_deadline(evutil_socket_t fd, short what, void *arg);

static struct ua_call *call_new(struct ua *u, enum ua_role role)
{
	struct ua_call *c = calloc(1, sizeof(*c));
	uint64_t sess = 0;

	if (!c)
		return NULL;
	c->ua = u;
	c->role = role;
	c->rep.role = role;
	c->rep.setup_ms = -1;
	randpool_hex16(c->tag);
	randpool_draw(&sess, sizeof(sess));
	psdp_session_init(&c->sdp, &u->cfg.pol, sess >> 2);
	evtimer_assign(&c->t_hangup, u->base, on_hangup_timer, c);
	evtimer_assign(&c->t_step, u->base, on_step, c);
	evtimer_assign(&c->t_window, u->base, on_window, c);
	evtimer_assign(&c->t_retrans, u->base, on_retrans, c);
	evtimer_assign(&c->t_deadline, u->base, on_deadline, c);
	c->start_ms = now_ms();
	c->next = u->calls;
	if (u->calls)
		u->calls->prev = c;
	u->calls = c;
	u->ncalls++;
	return c;
}

static const char *tp_name(enum sip_transport tp)
{
	return tp == SIP_TP_TLS ? "tls" : tp == SIP_TP_TCP ? "tcp" : "udp";
}

static void hold_conn(struct ua_call *c)
{
	if (c->dest.conn && !c->holding_conn) {
		sipcore_conn_hold(c->ua->sip, c->dest.conn);
		c->holding_conn = true;
	}
}

/* The caller's INVITE as text, parsed back: what goes out is what
 * sipmsg_parse accepts. */
static int build_invite(struct ua_call *c, const char *call_id, osip_message_t **out)
{
	struct ua *u = c->ua;
	char via[400], contact[300], branch[24] = "z9hG4bK", *text = NULL, why[SIPMSG_WHY_MAX];
	const struct sip_uri *l = NULL;
	int status, err, n;

	for (size_t i = 0; i < u->trunk->nlisten && !l; i++)
		if (u->trunk->listen[i].transport == c->dest.transport)
			l = &u->trunk->listen[i];
	randpool_hex16(branch + 7);
	if (!l || legb_via(via, sizeof(via), u->trunk, c->dest.transport, branch) ||
	    legb_contact(contact, sizeof(contact), u->trunk, c->dest.transport, CONTACT_USER))
		return EINVAL;
	n = asprintf(&text,
		     "INVITE %s SIP/2.0\r\n"
		     "Via: %s\r\n"
		     "Max-Forwards: 70\r\n"
		     "From: <sip:%s@%s%s%s>;tag=%s\r\n"
		     "To: <%s>\r\n"
		     "Call-ID: %s\r\n"
		     "CSeq: 1 INVITE\r\n"
		     "Contact: %s\r\n"
		     "Allow: " OUR_ALLOW "\r\n"
		     "User-Agent: srtpprobe/" SRTPBRIDGE_VERSION "\r\n"
		     "Content-Length: 0\r\n\r\n",
		     u->cfg.to, via, CONTACT_USER, strchr(l->host, ':') ? "[" : "", l->host,
		     strchr(l->host, ':') ? "]" : "", c->tag, u->cfg.to, call_id, contact);
	if (n < 0)
		return ENOMEM;
	err = sipmsg_parse(out, (struct slice){ text, (size_t)n }, &status, why, sizeof(why));
	free(text);
	return err ? EINVAL : 0;
}

int ua_call_start(struct ua *u, struct ua_call **out, char *why, size_t whysz)
{
	struct ua_call *c;
	osip_message_t *inv = NULL;
	char sdp[PSDP_BODY_MAX], call_id[40];
	size_t len = 0;
	int err;

	if (u->cfg.role != UA_CALLER) {
		snprintf(why, whysz, "an answerer places no calls");
		return EINVAL;
	}
	c = call_new(u, UA_CALLER);
	if (!c) {
		snprintf(why, whysz, "out of memory");
		return ENOMEM;
	}
	randpool_hex16(call_id);
	snprintf(call_id + 16, sizeof(call_id) - 16, "@srtpprobe");
	snprintf(c->rep.call_id, sizeof(c->rep.call_id), "%s", call_id);
	snprintf(c->rep.transport, sizeof(c->rep.transport), "%s", tp_name(u->cfg.transport));
	err = sipcore_peer_dest(u->sip, u->trunk, &u->trunk->peers[0], &c->dest, why, whysz);
	if (!err)
		err = media_create(c, why, whysz);
	if (!err) {
		err = psdp_offer(&c->sdp, &c->local, PSDP_SENDRECV, sdp, sizeof(sdp), &len);
		if (err)
			snprintf(why, whysz, "cannot write the offer: %s", strerror(err));
	}
	if (!err) {
		err = build_invite(c, call_id, &inv);
		if (err)
			snprintf(why, whysz, "cannot build the INVITE for %s", u->cfg.to);
	}
	if (!err) {
		err = sipmsg_set_body(inv, "application/sdp", sdp, len);
		if (err) {
			osip_message_free(inv);
			snprintf(why, whysz, "cannot put the offer in the INVITE");
		}
	}
	OPENSSL_cleanse(sdp, sizeof(sdp));
	if (!err) {
		c->start_ms = now_ms();
		c->invite_cseq = 1;
		err = txn_request(u->txn, inv, &c->dest, c, &c->invite); /* takes inv */
		if (err)
			snprintf(why, whysz, "cannot send the INVITE: %s", strerror(err));
	}
	if (err) {
		call_free(c);
		return err;
	}
	c->dest = *txn_get_peer(c->invite);
	hold_conn(c);
	c->state = S_CALLING;
	if (out)
		*out = c;
	return 0;
}

/* ---- caller: responses to the INVITE ---- */

static void schedule(struct ua_call *c)
{
	const struct ua_config *cfg = &c->ua->cfg;
	unsigned speed = cfg->speed > 1 ? cfg->speed : 1;

	if (cfg->duration_ms)
		arm(&c->t_hangup, cfg->duration_ms / speed);
	if (cfg->duration_ms && cfg->hold_resume)
		arm(&c->t_step, cfg->duration_ms / 3 / speed);
	else if (cfg->duration_ms && cfg->rekey_mid)
		arm(&c->t_step, cfg->duration_ms / 2 / speed);
}

/* The answer to our offer (in a 1xx or the 2xx); false when it cannot be
 * used (the call then ends). */
static bool take_answer(struct ua_call *c, const osip_message_t *resp)
{
	struct psdp_result res;
	struct slice body;
	char why[300];
	bool ok;

	if (!c->sdp.offer_pending || !sipmsg_body(resp, &body.p, &body.n))
		return true; /* one answer per offer; or none in this response */
	if (psdp_take_answer(&c->sdp, body, &res, why, sizeof(why))) {
		fail(c, false, "SDP: %s", why);
		return false;
	}
	ok = apply_media(c, &res);
	psdp_result_wipe(&res);
	return ok;
}

/* RFC 3261 9.1: the CANCEL of our INVITE, from the INVITE as it went. */
static int send_cancel(struct ua_call *c)
{
	osip_message_t *m = NULL;
	int err = sipmsg_cancel(&m, txn_get_request(c->invite));

	return err ? err : txn_request(c->ua->txn, m, &c->dest, c, &c->cancel);
}

/* Our ACK of resp, the 2xx to the INVITE of client transaction t: built,
 * sent, and kept serialised in *buf for that 2xx's retransmissions. */
static int send_ack(struct ua_call *c, struct txn *t, const osip_message_t *resp, char **buf,
		    size_t *len)
{
	osip_message_t *ack = NULL;
	int err;

	free(*buf);
	*buf = NULL;
	err = dialog_ack(c->dlg, txn_get_request(t), resp, &ack);
	if (!err)
		err = add_via(c, ack);
	if (!err)
		err = sipmsg_serialize(ack, buf, len);
	osip_message_free(ack);
	if (!err)
		txn_layer_send_buf(c->ua->txn, *buf, *len, &c->dest);
	return err;
}

static void send_bye(struct ua_call *c);

/* A 2xx nobody wants (a second fork): its own ACK and BYE (13.2.2.4). */
static void ack_and_bye_other(struct ua_call *c, struct txn *t, const osip_message_t *resp)
{
	struct dialog *d = NULL;
	osip_message_t *m = NULL;

	if (dialog_create_uac(&d, txn_get_request(t), resp))
		return;
	if (dialog_ack(d, txn_get_request(t), resp, &m) == 0 &&
	    add_via_tp(c->ua, c->dest.transport, m) == 0) {
		txn_layer_send(c->ua->txn, m, &c->dest);
		m = NULL;
	}
	osip_message_free(m);
	m = NULL;
	if (dialog_request(d, "BYE", &m) == 0 && add_via_tp(c->ua, c->dest.transport, m) == 0) {
		txn_request(c->ua->txn, m, &c->dest, NULL, NULL);
		m = NULL;
	}
	osip_message_free(m);
	dialog_destroy(d);
}

static void invite_2xx(struct ua_call *c, struct txn *t, osip_message_t *resp)
{
	struct ua *u = c->ua;

	if (c->dlg && dialog_state(c->dlg) == DIALOG_CONFIRMED) {
		if (!dialog_matches(c->dlg, resp))
			ack_and_bye_other(c, t, resp);
		else if (c->ack)
			txn_layer_send_buf(u->txn, c->ack, c->ack_len, &c->dest);
		return;
	}
	if (c->dlg && !dialog_matches(c->dlg, resp)) {
		dialog_destroy(c->dlg); /* another branch answered than the one that rang */
		c->dlg = NULL;
	}
	c->rep.status = sipmsg_status(resp);
	reason_phrase(resp, c->rep.reason, sizeof(c->rep.reason));
	if (c->dlg ? dialog_uac_confirm(c->dlg, resp)
		   : dialog_create_uac(&c->dlg, txn_get_request(t), resp)) {
		fail(c, false, "the 2xx has no usable Contact: no dialog to ACK or BYE in");
		finish(c, "failure");
		return;
	}
	dialog_set_state(c->dlg, DIALOG_CONFIRMED);
	if (send_ack(c, t, resp, &c->ack, &c->ack_len)) {
		fail(c, false, "the ACK could not be sent");
		finish(c, "failure");
		return;
	}
	c->answer_ms = now_ms();
	c->rep.setup_ms = (int64_t)(c->answer_ms - c->start_ms);
	event_del(&c->t_deadline);
	if (c->state == S_CANCELLING) {
		/* the 2xx crossed our CANCEL: the call is up, and we end it (15) */
		c->state = S_CONFIRMED;
		send_bye(c);
		return;
	}
	c->state = S_CONFIRMED;
	if (!take_answer(c, resp)) {
		send_bye(c);
		return;
	}
	if (!c->media_started) {
		fail(c, false, "SDP: neither the 2xx nor a provisional response carried an answer");
		send_bye(c);
		return;
	}
	schedule(c);
	if (u->cb.answered)
		u->cb.answered(u->arg, c);
}

static void invite_response(struct ua_call *c, struct txn *t, osip_message_t *resp)
{
	int code = sipmsg_status(resp);

	if (code < 200) {
		if (!c->provisional && c->state == S_CALLING)
			arm(&c->t_deadline, UA_RING_MAX_MS);
		c->provisional = true;
		if (c->cancel_pending) {
			c->cancel_pending = false;
			if (send_cancel(c))
				txn_abort(c->invite);
			return;
		}
		if (c->state != S_CALLING)
			return;
		/* 12.1.2: an early dialog from a provisional response with a To tag */
		if (!c->dlg && sipmsg_to_tag(resp) && code > 100)
			dialog_create_uac(&c->dlg, txn_get_request(t), resp);
		if (code > 100 && !take_answer(c, resp)) {
			/* an unusable early answer: the call cannot go on */
			c->state = S_CANCELLING;
			if (send_cancel(c))
				txn_abort(c->invite);
			arm(&c->t_deadline, UA_BYE_WAIT_MS);
		}
		return;
	}
	if (code < 300) {
		invite_2xx(c, t, resp);
		return;
	}
	c->rep.status = code;
	reason_phrase(resp, c->rep.reason, sizeof(c->rep.reason));
	warning_text(resp, c->rep.warning, sizeof(c->rep.warning));
	finish(c, c->state == S_CANCELLING ? "us" : "failure");
}

/* ---- re-INVITEs ---- */

static struct ua_reinvite *ri_note(struct ua_call *c, const char *purpose, bool ours)
{
	struct ua_reinvite *r;

	if (c->rep.nreinvites == UA_MAX_REINVITES)
		return NULL; /* the first ones are in the report */
	r = &c->rep.reinvites[c->rep.nreinvites++];
	memset(r, 0, sizeof(*r));
	snprintf(r->purpose, sizeof(r->purpose), "%s", purpose);
	r->ours = ours;
	return r;
}

/* Ours: an offer with new keys and direction dir. */
static void send_reinvite(struct ua_call *c, enum psdp_dir dir, const char *purpose)
{
	osip_message_t *m = NULL;
	char sdp[PSDP_BODY_MAX];
	size_t len = 0;
	uint32_t n = 0;
	int err;

	if ((c->ri && !(c->ri_ours && c->ri_final)) || c->state != S_CONFIRMED)
		return; /* one at a time; none while ending */
	/* the previous one's late 2xx retransmissions come as strays now */
	cut_loose(c->ri);
	c->ri = NULL;
	c->ri_rep = ri_note(c, purpose, true);
	err = psdp_offer(&c->sdp, &c->local, dir, sdp, sizeof(sdp), &len);
	if (!err)
		err = dialog_msg(c, "INVITE", true, &m);
	if (!err)
		err = sipmsg_set_body(m, "application/sdp", sdp, len);
	OPENSSL_cleanse(sdp, sizeof(sdp));
	if (!err)
		sipmsg_cseq(m, &n, NULL);
	if (!err) {
		err = txn_request(c->ua->txn, m, &c->dest, c, &c->ri);
		m = NULL;
	}
	osip_message_free(m);
	if (err) {
		if (c->ri_rep)
			snprintf(c->ri_rep->reason, sizeof(c->ri_rep->reason), "not sent: %s",
				 strerror(err));
		c->sdp.offer_pending = false;
		return;
	}
	c->ri_ours = true;
	c->ri_final = false;
	c->ri_cseq = n;
}

static void reinvite_response(struct ua_call *c, struct txn *t, osip_message_t *resp)
{
	int code = sipmsg_status(resp);

	if (code < 200)
		return;
	c->ri_final = true;
	if (c->ri_rep && !c->ri_rep->status) {
		c->ri_rep->status = code;
		reason_phrase(resp, c->ri_rep->reason, sizeof(c->ri_rep->reason));
		warning_text(resp, c->ri_rep->warning, sizeof(c->ri_rep->warning));
	}
	if (code >= 300) {
		/* RFC 3264 section 8: the old session stays */
		c->sdp.offer_pending = false;
		return;
	}
	if (c->ri_ack && c->ri_ack_cseq == c->ri_cseq) {
		txn_layer_send_buf(c->ua->txn, c->ri_ack, c->ri_ack_len, &c->dest);
		return; /* a retransmission */
	}
	dialog_refresh_target(c->dlg, resp);
	if (send_ack(c, t, resp, &c->ri_ack, &c->ri_ack_len) == 0)
		c->ri_ack_cseq = c->ri_cseq;
	if (!c->sdp.offer_pending)
		return;
	if (!take_answer(c, resp) || !c->media_started) {
		if (!c->rep.failure[0])
			fail(c, false, "SDP: the 2xx to our re-INVITE carries no answer");
		send_bye(c);
	}
}

/* Theirs: answered at once, or refused (491 while ours is pending, 500
 * while our 2xx to their previous one awaits its ACK: 14.2). */
static void on_reinvite(struct ua_call *c, struct txn *t, osip_message_t *req)
{
	struct ua_reinvite *rep;
	struct psdp_result res;
	struct slice body;
	char sdp[PSDP_BODY_MAX];
	size_t len = 0;
	uint32_t n = 0;
	int err;

	if (c->ri && c->ri_ours && !c->ri_final) {
		respond(c, t, 491, "a re-INVITE of ours is pending", NULL, 0, false);
		return;
	}
	if (c->ri_awaiting_ack || c->state == S_ANSWERED || c->late_offer) {
		respond(c, t, 500, "the previous offer is not complete yet", NULL, 0, false);
		return;
	}
	cut_loose(c->ri); /* ours, answered: its late 2xx come as strays */
	c->ri = NULL;
	rep = ri_note(c, "far end", false);
	sipmsg_cseq(req, &n, NULL);
	memset(&res, 0, sizeof(res));
	if (sipmsg_body(req, &body.p, &body.n)) {
		err = psdp_answer(&c->sdp, &c->local, body, sdp, sizeof(sdp), &len, &res);
		if (!err && res.status) {
			if (rep) {
				rep->status = res.status;
				clean_copy(rep->reason, sizeof(rep->reason),
					   osip_message_get_reason(res.status));
				clean_copy(rep->warning, sizeof(rep->warning), res.reason);
			}
			respond(c, t, res.status, res.reason, NULL, 0, false);
			psdp_result_wipe(&res);
			return;
		}
	} else {
		/* an offerless re-INVITE: our offer in the 2xx, the answer in the ACK */
		err = psdp_offer(&c->sdp, &c->local, PSDP_SENDRECV, sdp, sizeof(sdp), &len);
		c->late_offer = !err;
	}
	if (!err && !c->late_offer) {
		char why[300];
		bool usage;

		/* media that cannot change refuses the offer; the old session
		 * stays (RFC 3264 section 8) */
		if (media_try(c, &res, why, sizeof(why), &usage)) {
			if (rep) {
				rep->status = 488;
				clean_copy(rep->warning, sizeof(rep->warning), why);
			}
			respond(c, t, 488, why, NULL, 0, false);
			psdp_result_wipe(&res);
			OPENSSL_cleanse(sdp, sizeof(sdp));
			return;
		}
	}
	psdp_result_wipe(&res);
	if (err) {
		respond(c, t, 500, "the answer could not be written", NULL, 0, false);
		return;
	}
	err = respond(c, t, 200, NULL, sdp, len, false);
	if (rep) {
		rep->status = err ? 0 : 200;
		snprintf(rep->reason, sizeof(rep->reason), "%s", err ? strerror(err) : "OK");
	}
	if (err)
		return;
	c->ri = t;
	c->ri_ours = false;
	c->ri_cseq = n;
	c->ri_awaiting_ack = true;
	txn_set_data(t, c);
	if (c->dest.transport == SIP_TP_UDP) {
		c->retrans_ms = T1_MS;
		arm(&c->t_retrans, T1_MS);
	}
	arm(&c->t_deadline, 64 * T1_MS);
}

/* ---- ending ---- */

static void send_bye(struct ua_call *c)
{
	osip_message_t *m = NULL;
	int err;

	event_del(&c->t_hangup);
	event_del(&c->t_step);
	event_del(&c->t_retrans);
	stop_media(c);
	err = dialog_msg(c, "BYE", false, &m);
	if (!err)
		err = add_heard(c, m);
	if (!err) {
		err = txn_request(c->ua->txn, m, &c->dest, c, &c->bye);
		m = NULL;
	}
	osip_message_free(m);
	if (err) {
		finish(c, "us");
		return;
	}
	c->state = S_ENDING;
	snprintf(c->rep.ended_by, sizeof(c->rep.ended_by), "us");
	event_del(&c->t_deadline);
	arm(&c->t_deadline, UA_BYE_WAIT_MS);
}

void ua_call_hangup(struct ua_call *c)
{
	if (!c)
		return;
	switch (c->state) {
	case S_CALLING:
		c->state = S_CANCELLING;
		snprintf(c->rep.ended_by, sizeof(c->rep.ended_by), "us");
		if (!c->provisional) {
			c->cancel_pending = true; /* 9.1: not before a provisional response */
		} else if (send_cancel(c)) {
			txn_abort(c->invite); /* terminated() ends the call */
			return;
		}
		arm(&c->t_deadline, UA_BYE_WAIT_MS);
		return;
	case S_ANSWERED:
	case S_CONFIRMED:
		if (c->role == UA_ANSWERER) {
			/* a signal: the answerer does not wait for anybody */
			stop_media(c);
			if (c->dlg) {
				osip_message_t *m = NULL;

				if (dialog_msg(c, "BYE", false, &m) == 0 && add_heard(c, m) == 0) {
					txn_request(c->ua->txn, m, &c->dest, NULL, NULL);
					m = NULL;
				}
				osip_message_free(m);
			}
			finish(c, "us");
			return;
		}
		send_bye(c);
		return;
	case S_CANCELLING:
	case S_ENDING:
		return;
	}
}

void ua_hangup_all(struct ua *u)
{
	struct ua_call *c = u->calls, *next;

	for (; c; c = next) {
		next = c->next;
		ua_call_hangup(c);
	}
}

size_t ua_active(const struct ua *u)
{
	return u->ncalls;
}

/* ---- timers ---- */

static void on_hangup_timer(evutil_socket_t fd, short what, void *arg)
{
	ua_call_hangup(arg);
}

/* The caller's schedule: hold at 1/3 and resume at 2/3 of the duration,
 * or one re-key at 1/2. */
static void on_step(evutil_socket_t fd, short what, void *arg)
{
	struct ua_call *c = arg;
	const struct ua_config *cfg = &c->ua->cfg;
	unsigned speed = cfg->speed > 1 ? cfg->speed : 1;

	if (c->ri && !(c->ri_ours && c->ri_final)) {
		arm(&c->t_step, 200); /* one re-INVITE at a time: a little later */
		return;
	}
	if (cfg->hold_resume && c->step == 0) {
		c->step = 1;
		send_reinvite(c, PSDP_SENDONLY, "hold");
		uint64_t at = c->answer_ms + 2 * cfg->duration_ms / 3 / speed, now = now_ms();

		arm(&c->t_step, at > now ? at - now : 1);
	} else if (cfg->hold_resume && c->step == 1) {
		c->step = 2;
		send_reinvite(c, PSDP_SENDRECV, "resume");
	} else if (!cfg->hold_resume && c->step == 0) {
		c->step = 1;
		send_reinvite(c, PSDP_SENDRECV, "rekey");
	}
}

/* 2xx retransmission of the answerer's INVITE or of a re-INVITE's answer,
 * T1 doubling to T2, until the ACK (13.3.1.4). */
static void on_retrans(evutil_socket_t fd, short what, void *arg)
{
	struct ua_call *c = arg;
	struct txn *t = c->ri_awaiting_ack ? c->ri : c->state == S_ANSWERED ? c->invite : NULL;

	if (!t)
		return;
	txn_retransmit(t);
	c->retrans_ms = c->retrans_ms * 2 > T2_MS ? T2_MS : c->retrans_ms * 2;
	arm(&c->t_retrans, c->retrans_ms);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct ua_call *c = arg;

	switch (c->state) {
	case S_ANSWERED:
		fail(c, false, "no ACK for our 2xx within 64*T1");
		ua_call_hangup(c);
		return;
	case S_CONFIRMED:
		if (c->ri_awaiting_ack) {
			fail(c, false, "no ACK for our 2xx to a re-INVITE within 64*T1");
			c->ri_awaiting_ack = false;
			ua_call_hangup(c);
		}
		return;
	case S_CALLING:
		/* ringing too long: ours to end */
		fail(c, false, "no final response within %u s of ringing", UA_RING_MAX_MS / 1000);
		ua_call_hangup(c);
		return;
	case S_CANCELLING:
		if (c->invite)
			txn_abort(c->invite); /* terminated() ends the call */
		else
			finish(c, "us");
		return;
	case S_ENDING:
		finish(c, "us"); /* the BYE's response is late: the call is over anyway */
		return;
	}
}

/* ---- the transaction layer's news ---- */

static struct ua_call *find_call(struct ua *u, const osip_message_t *m)
{
	char cid[256];

	if (sipmsg_call_id(m, cid, sizeof(cid)))
		return NULL;
	for (struct ua_call *c = u->calls; c; c = c->next)
		if (strcmp(c->rep.call_id, cid) == 0 && (!c->dlg || dialog_matches(c->dlg, m)))
			return c;
	return NULL;
}

static void on_ack(struct ua *u, osip_message_t *req)
{
	struct ua_call *c = find_call(u, req);
	struct psdp_result res;
	struct slice body;
	uint32_t n = 0;
	char why[300];

	if (!c || sipmsg_cseq(req, &n, NULL))
		return;
	if (c->state == S_ANSWERED && n == c->invite_cseq) {
		c->state = S_CONFIRMED;
	} else if (c->ri_awaiting_ack && n == c->ri_cseq) {
		c->ri_awaiting_ack = false;
		cut_loose(c->ri); /* its transaction ends by itself; we are done with it */
		c->ri = NULL;
	} else {
		return; /* a retransmitted ACK */
	}
	event_del(&c->t_retrans);
	event_del(&c->t_deadline);
	if (!c->late_offer)
		return;
	c->late_offer = false;
	if (!sipmsg_body(req, &body.p, &body.n)) {
		fail(c, false, "SDP: the ACK carries no answer to the offer in our 2xx");
		ua_call_hangup(c);
		return;
	}
	if (psdp_take_answer(&c->sdp, body, &res, why, sizeof(why))) {
		fail(c, false, "SDP: %s", why);
		ua_call_hangup(c);
		return;
	}
	if (!apply_media(c, &res))
		ua_call_hangup(c);
	psdp_result_wipe(&res);
}

static void on_bye(struct ua_call *c, struct txn *t, osip_message_t *req)
{
	const char *reason = sipmsg_header_get(req, "Reason", 0);

	take_far_heard(c, req);
	if (reason)
		clean_copy(c->rep.bye_reason, sizeof(c->rep.bye_reason), reason);
	stop_media(c); /* what we heard goes into the 200 */
	respond(c, t, 200, NULL, NULL, 0, true);
	c->rep.bye_status = 200;
	if (c->state == S_CALLING || c->state == S_CANCELLING)
		fail(c, false, "the far end hung up before the answer");
	finish(c, "far end");
}

/* Answerer: a new INVITE becomes a call, answered at once. */
static void new_call(struct ua *u, struct txn *t, osip_message_t *req, const struct txn_addr *from)
{
	struct ua_call *c = call_new(u, UA_ANSWERER);
	struct psdp_result res;
	struct slice body;
	char sdp[PSDP_BODY_MAX], why[300];
	size_t len = 0;
	int err;

	if (!c) {
		respond_bare(t, 500, "out of memory");
		return;
	}
	memset(&res, 0, sizeof(res));
	c->dest = *from;
	c->invite = t;
	txn_set_data(t, c);
	sipmsg_cseq(req, &c->invite_cseq, NULL);
	snprintf(c->rep.transport, sizeof(c->rep.transport), "%s", tp_name(from->transport));
	if (sipmsg_call_id(req, c->rep.call_id, sizeof(c->rep.call_id))) {
		respond_bare(t, 400, "the Call-ID is too long");
		c->rep.status = 400;
		fail(c, false, "the Call-ID is too long");
		finish(c, "failure");
		return;
	}
	if (dialog_create_uas(&c->dlg, req, c->tag)) {
		respond(c, t, 400, "the INVITE has no usable Contact", NULL, 0, false);
		c->rep.status = 400;
		fail(c, false, "the INVITE has no usable Contact");
		finish(c, "failure");
		return;
	}
	err = media_create(c, why, sizeof(why));
	if (err) {
		respond(c, t, 503, "no media ports", NULL, 0, false);
		c->rep.status = 503;
		fail(c, false, "media: %s", why);
		finish(c, "failure");
		return;
	}
	if (sipmsg_body(req, &body.p, &body.n)) {
		err = psdp_answer(&c->sdp, &c->local, body, sdp, sizeof(sdp), &len, &res);
	} else {
		err = psdp_offer(&c->sdp, &c->local, PSDP_SENDRECV, sdp, sizeof(sdp), &len);
		c->late_offer = !err;
	}
	if (err || res.status) {
		c->rep.status = err ? 500 : res.status;
		clean_copy(c->rep.reason, sizeof(c->rep.reason),
			   osip_message_get_reason(c->rep.status));
		snprintf(c->rep.warning, sizeof(c->rep.warning), "%s",
			 err ? "the answer could not be written" : res.reason);
		respond(c, t, c->rep.status, c->rep.warning, NULL, 0, false);
		psdp_result_wipe(&res);
		finish(c, "failure");
		return;
	}
	if (!c->late_offer) {
		bool usage;

		/* what media cannot do is refused now, with a reason, not after
		 * the 200 */
		if (media_try(c, &res, why, sizeof(why), &usage)) {
			c->rep.status = 488;
			clean_copy(c->rep.reason, sizeof(c->rep.reason),
				   osip_message_get_reason(488));
			clean_copy(c->rep.warning, sizeof(c->rep.warning), why);
			c->rep.usage_failure = usage;
			respond(c, t, 488, why, NULL, 0, false);
			psdp_result_wipe(&res);
			OPENSSL_cleanse(sdp, sizeof(sdp));
			finish(c, "failure");
			return;
		}
	}
	psdp_result_wipe(&res);
	err = respond(c, t, 200, NULL, sdp, len, false);
	if (err) {
		c->rep.status = 0;
		fail(c, false, "the 200 could not be sent: %s", strerror(err));
		finish(c, "failure");
		return;
	}
	c->rep.status = 200;
	snprintf(c->rep.reason, sizeof(c->rep.reason), "OK");
	c->answer_ms = now_ms();
	c->rep.setup_ms = (int64_t)(c->answer_ms - c->start_ms);
	c->state = S_ANSWERED;
	dialog_set_state(c->dlg, DIALOG_CONFIRMED);
	hold_conn(c);
	if (c->dest.transport == SIP_TP_UDP) {
		c->retrans_ms = T1_MS;
		arm(&c->t_retrans, T1_MS);
	}
	arm(&c->t_deadline, 64 * T1_MS);
}

static bool tu_request(void *arg, struct txn *t, osip_message_t *req, const struct txn_addr *from,
		       struct config *cfg, const struct config_trunk *trunk)
{
	struct ua *u = arg;
	const char *m = sipmsg_method(req);
	struct ua_call *c;
	const char *why = NULL;
	int status = 0;

	if (!t) {
		on_ack(u, req);
		return true;
	}
	if (strcmp(m, "CANCEL") == 0)
		return false; /* we answer at once: sipcore's 200 leaves our 2xx alone (9.2) */
	if (!sipmsg_to_tag(req)) {
		if (strcmp(m, "INVITE") != 0)
			return false; /* OPTIONS: sipcore's 200 */
		if (u->cfg.role != UA_ANSWERER) {
			respond_bare(t, 403, "srtpprobe call takes no calls");
			return true;
		}
		new_call(u, t, req, from);
		return true;
	}
	c = find_call(u, req);
	if (!c || !c->dlg)
		return false; /* 481 */
	if (dialog_check_request(c->dlg, req, &status, &why)) {
		respond(c, t, status, why, NULL, 0, false);
		return true;
	}
	if (strcmp(m, "BYE") == 0)
		on_bye(c, t, req);
	else if (strcmp(m, "INVITE") == 0)
		on_reinvite(c, t, req);
	else if (strcmp(m, "OPTIONS") == 0 || strcmp(m, "INFO") == 0 || strcmp(m, "NOTIFY") == 0)
		respond(c, t, 200, NULL, NULL, 0, false);
	else
		respond(c, t, 501, "srtpprobe does not take this request in a call", NULL, 0,
			false);
	return true;
}

static void tu_response(void *arg, struct txn *t, osip_message_t *resp)
{
	struct ua_call *c = txn_get_data(t);

	if (!c)
		return;
	if (t == c->invite)
		invite_response(c, t, resp);
	else if (t == c->ri && c->ri_ours)
		reinvite_response(c, t, resp);
	else if (t == c->bye && sipmsg_status(resp) >= 200) {
		c->rep.bye_status = sipmsg_status(resp);
		take_far_heard(c, resp);
		finish(c, "us");
	}
}

/* A 2xx retransmission after its transaction ended (RFC 6026 Timer M):
 * still ours to ACK. */
static void tu_stray_response(void *arg, osip_message_t *resp, const struct txn_addr *from)
{
	struct ua *u = arg;
	const char *method = NULL;
	struct ua_call *c;
	uint32_t n = 0;

	if (sipmsg_status(resp) < 200 || sipmsg_status(resp) >= 300 ||
	    sipmsg_cseq(resp, &n, &method) || strcmp(method, "INVITE") != 0)
		return;
	c = find_call(u, resp);
	if (!c || c->role != UA_CALLER)
		return;
	if (n == c->invite_cseq && c->ack)
		txn_layer_send_buf(u->txn, c->ack, c->ack_len, &c->dest);
	else if (n == c->ri_ack_cseq && c->ri_ack)
		txn_layer_send_buf(u->txn, c->ri_ack, c->ri_ack_len, &c->dest);
}

/* Our client transaction t got no response (status 408) or lost its
 * transport (503). */
static void client_failed(struct ua_call *c, struct txn *t, int status, int err)
{
	if (t == c->invite && (c->state == S_CALLING || c->state == S_CANCELLING)) {
		c->rep.status = status;
		snprintf(c->rep.reason, sizeof(c->rep.reason), "%s",
			 status == 408 ? "no response (timeout)" : "transport error");
		if (err == EPROTO)
			fail(c, false, "the TLS handshake failed (the log line above says why)");
		else
			fail(c, false, "%s: %s",
			     status == 408 ? "the INVITE got no response"
					   : "the INVITE could not be delivered",
			     strerror(err));
		finish(c, "failure"); /* cuts the transaction loose */
	} else if (t == c->ri && c->ri_ours) {
		if (c->ri_rep)
			snprintf(c->ri_rep->reason, sizeof(c->ri_rep->reason), "%s",
				 status == 408 ? "no response (timeout)" : strerror(err));
		c->sdp.offer_pending = false;
	} else if (t == c->bye) {
		finish(c, "us");
	}
}

static void tu_timeout(void *arg, struct txn *t, enum txn_timer_id which)
{
	struct ua_call *c = txn_get_data(t);

	if (c)
		client_failed(c, t, 408, ETIMEDOUT);
}

static void tu_transport_error(void *arg, struct txn *t, int err)
{
	struct ua_call *c = txn_get_data(t);

	if (c)
		client_failed(c, t, 503, err);
}

static void tu_terminated(void *arg, struct txn *t)
{
	struct ua_call *c = txn_get_data(t);

	if (!c)
		return;
	if (t == c->ri) {
		c->ri = NULL; /* a server re-INVITE's 2xx can no longer be resent */
		c->ri_awaiting_ack = false;
		event_del(&c->t_retrans);
	}
	if (t == c->cancel)
		c->cancel = NULL;
	if (t == c->bye)
		c->bye = NULL;
	if (t != c->invite)
		return;
	c->invite = NULL;
	if (c->role == UA_ANSWERER && c->state == S_ANSWERED) {
		/* Timer L: the 2xx can no longer be resent; the deadline decides */
		event_del(&c->t_retrans);
	} else if (c->role == UA_CALLER && (c->state == S_CALLING || c->state == S_CANCELLING)) {
		/* aborted: never a final response */
		if (!c->rep.status)
			snprintf(c->rep.reason, sizeof(c->rep.reason), "no final response");
		finish(c, c->state == S_CANCELLING ? "us" : "failure");
	}
}

/* ---- the stack ---- */

/* "tp:HOST:PORT" (HOST may be [IPv6]) apart; 0 or EINVAL. */
static int split_listen(const char *s, char *tp, size_t tpsz, char *host, size_t hsz,
			unsigned *port)
{
	const char *colon = strchr(s, ':'), *h, *end;
	char *e;
	unsigned long p;

	if (!colon || (size_t)(colon - s) >= tpsz)
		return EINVAL;
	memcpy(tp, s, (size_t)(colon - s));
	tp[colon - s] = '\0';
	h = colon + 1;
	if (*h == '[') {
		end = strchr(h, ']');
		if (!end || end[1] != ':')
			return EINVAL;
		h++;
	} else {
		end = strrchr(h, ':');
		if (!end)
			return EINVAL;
	}
	if ((size_t)(end - h) >= hsz)
		return EINVAL;
	memcpy(host, h, (size_t)(end - h));
	host[end - h] = '\0';
	end += *end == ']' ? 2 : 1;
	p = strtoul(end, &e, 10);
	if (*e || e == end || p > 65535)
		return EINVAL;
	*port = (unsigned)p;
	return 0;
}

/* A port free for both UDP and TCP on host right now (the kernel's pick). */
static unsigned pick_port(const char *host)
{
	struct sockaddr_storage ss;
	socklen_t len;
	unsigned port = 0;

	if (addr_from_ip(host, 0, &ss, &len))
		return 0;
	for (int tries = 0; tries < 20 && !port; tries++) {
		int u = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		int t = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_storage b = ss;
		socklen_t blen = len;

		if (u >= 0 && t >= 0 && bind(u, (struct sockaddr *)&b, blen) == 0 &&
		    getsockname(u, (struct sockaddr *)&b, &blen) == 0 &&
		    bind(t, (struct sockaddr *)&b, blen) == 0)
			port = ntohs(b.ss_family == AF_INET6
					     ? ((struct sockaddr_in6 *)&b)->sin6_port
					     : ((struct sockaddr_in *)&b)->sin_port);
		if (u >= 0)
			close(u);
		if (t >= 0)
			close(t);
	}
	return port;
}

/* A throwaway self-signed certificate for a caller's tls listen address,
 * which sipcore needs to speak TLS at all: the far end never asks for it
 * unless it wants mutual TLS (then --cert and --key are the way). */
static int ephemeral_cert(struct ua *u, char *cert, char *key, size_t size, char *why, size_t whysz)
{
	const char *tmp = getenv("TMPDIR");
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name;
	FILE *f = NULL;
	int err = EIO, fd;
	long serial = 0;

	snprintf(u->certdir, sizeof(u->certdir), "%s/srtpprobe-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!pk || !x || !mkdtemp(u->certdir)) {
		u->certdir[0] = '\0';
		snprintf(why, whysz, "cannot make a TLS certificate for the caller");
		goto out;
	}
	RAND_bytes((unsigned char *)&serial, sizeof(serial));
	name = X509_get_subject_name(x);
	if (!X509_set_version(x, 2) ||
	    !ASN1_INTEGER_set(X509_get_serialNumber(x), serial & 0x7fffffff) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), 86400) || !X509_set_pubkey(x, pk) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
					(const unsigned char *)"srtpprobe", -1, -1, 0) ||
	    !X509_set_issuer_name(x, name) || !X509_sign(x, pk, EVP_sha256())) {
		snprintf(why, whysz, "cannot make a TLS certificate for the caller");
		goto out;
	}
	snprintf(cert, size, "%s/cert.pem", u->certdir);
	snprintf(key, size, "%s/key.pem", u->certdir);
	fd = open(key, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f || !PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL)) {
		if (!f && fd >= 0)
			close(fd);
		snprintf(why, whysz, "cannot write %s", key);
		goto out;
	}
	fclose(f);
	f = fopen(cert, "w");
	if (!f || !PEM_write_X509(f, x)) {
		snprintf(why, whysz, "cannot write %s", cert);
		goto out;
	}
	err = 0;
out:
	if (f)
		fclose(f);
	X509_free(x);
	EVP_PKEY_free(pk);
	return err;
}

static void remove_certdir(struct ua *u)
{
	char path[128];

	if (!u->certdir[0])
		return;
	snprintf(path, sizeof(path), "%s/cert.pem", u->certdir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/key.pem", u->certdir);
	unlink(path);
	rmdir(u->certdir);
	u->certdir[0] = '\0';
}

static void put(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void put(char *buf, size_t size, const char *fmt, ...)
{
	size_t n = strlen(buf);
	va_list ap;

	if (n >= size)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + n, size - n, fmt, ap);
	va_end(ap);
}

/* The INI of the probe's one trunk: its listen addresses, the caller's one
 * peer, sources wide open (the operator points a probe where it must take
 * calls from), TLS as asked. */
static void write_ini(const struct ua *u, char listen[][300], const char *cert, const char *key,
		      char *buf, size_t size)
{
	const struct ua_config *cfg = &u->cfg;

	buf[0] = '\0';
	put(buf, size,
	    "[global]\nlog_level = %s\nsip_trace = %s\ncontrol_socket = /run/srtpprobe.sock\n"
	    "metrics_listen =\n\n[trunk:" TRUNK_NAME "]\nlisten = ",
	    log_level_name(cfg->log_level), cfg->sip_trace ? "yes" : "no");
	for (size_t i = 0; i < cfg->nlisten; i++)
		put(buf, size, "%s%s", i ? ", " : "", listen[i]);
	put(buf, size, "\nsources = any\noptions_interval = 0\nsrtp = off\n");
	if (cfg->role == UA_CALLER)
		put(buf, size, "peers = %s\n", cfg->peer);
	if (cert && key)
		put(buf, size, "tls_certificate = %s\ntls_private_key = %s\n", cert, key);
	if (cfg->ca)
		put(buf, size, "tls_ca = %s\n", cfg->ca);
	if (cfg->tls_name)
		put(buf, size, "tls_peer_name = %s\n", cfg->tls_name);
}

static int load_stack(struct ua *u, char listen[][300], const char *cert, const char *key,
		      char *why, size_t whysz)
{
	struct config_problems probs = { 0 };
	char ini[8192], line[1400];
	int err;

	write_ini(u, listen, cert, key, ini, sizeof(ini));
	err = config_load_buffer("srtpprobe", ini, strlen(ini), 0, &u->conf, &probs);
	if (err) {
		snprintf(why, whysz, "%s",
			 probs.n ? config_problem_format(&probs.v[0], line, sizeof(line))
				 : strerror(err));
		config_problems_free(&probs);
		return EINVAL;
	}
	config_problems_free(&probs);
	u->trunk = config_trunk_find(u->conf, TRUNK_NAME);
	err = sipcore_create(&u->sip, u->base, u->conf, why, whysz);
	if (err) {
		config_unref(u->conf);
		u->conf = NULL;
		u->trunk = NULL;
		return err;
	}
	return 0;
}

int ua_create(struct ua **out, struct event_base *base, const struct ua_config *cfg,
	      const struct ua_callbacks *cb, void *arg, char *why, size_t whysz)
{
	static const struct sipcore_tu tu0 = { 0 };
	struct sipcore_tu tu = tu0;
	struct ua *u = calloc(1, sizeof(*u));
	char listen[UA_MAX_LISTEN][300], certbuf[128], keybuf[128];
	const char *cert = cfg->cert, *key = cfg->key;
	bool need_cert = false, pick = false;
	int err = 0;

	if (!u) {
		snprintf(why, whysz, "out of memory");
		return ENOMEM;
	}
	u->base = base;
	u->cfg = *cfg;
	if (cb)
		u->cb = *cb;
	u->arg = arg;
	log_set_level(cfg->log_level);
	for (size_t i = 0; i < cfg->nlisten; i++) {
		char tp[8], host[256];
		unsigned port;

		if (split_listen(cfg->listen[i], tp, sizeof(tp), host, sizeof(host), &port)) {
			snprintf(why, whysz, "listen address '%s' is not tp:HOST:PORT",
				 cfg->listen[i]);
			err = EINVAL;
			goto out;
		}
		need_cert |= strcmp(tp, "tls") == 0;
		pick |= port == 0;
	}
	if (need_cert && (!cert || !key)) {
		if (cfg->role == UA_ANSWERER) {
			snprintf(why, whysz, "a tls listen address needs --cert and --key");
			err = EINVAL;
			goto out;
		}
		err = ephemeral_cert(u, certbuf, keybuf, sizeof(certbuf), why, whysz);
		if (err)
			goto out;
		cert = certbuf;
		key = keybuf;
	}
	/* A port 0 (a caller's default) is one the kernel picks now; another
	 * process may take it before sipcore binds it, so a few tries. */
	for (int attempt = 0; attempt < (pick ? 8 : 1); attempt++) {
		for (size_t i = 0; i < cfg->nlisten; i++) {
			char tp[8], host[256];
			unsigned port;

			split_listen(cfg->listen[i], tp, sizeof(tp), host, sizeof(host), &port);
			if (port == 0)
				port = pick_port(host);
			snprintf(listen[i], sizeof(listen[i]), "%s:%s%s%s:%u", tp,
				 strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "",
				 port);
		}
		err = load_stack(u, listen, cert, key, why, whysz);
		if (err != EADDRINUSE)
			break;
	}
	if (err)
		goto out;
	u->txn = sipcore_txn(u->sip);
	tu.request = tu_request;
	tu.response = tu_response;
	tu.stray_response = tu_stray_response;
	tu.timeout = tu_timeout;
	tu.transport_error = tu_transport_error;
	tu.terminated = tu_terminated;
	tu.arg = u;
	sipcore_set_tu(u->sip, &tu);
	for (size_t i = 0; i < cfg->nlisten; i++)
		put(u->listening, sizeof(u->listening), "%s%s", i ? ", " : "", listen[i]);
	if (cfg->role == UA_CALLER && u->trunk->npeers != 1) {
		snprintf(why, whysz, "the caller needs exactly one peer");
		err = EINVAL;
	}
out:
	if (err)
		ua_destroy(u);
	else
		*out = u;
	return err;
}

void ua_destroy(struct ua *u)
{
	if (!u)
		return;
	while (u->calls)
		call_free(u->calls);
	sipcore_destroy(u->sip);
	config_unref(u->conf);
	remove_certdir(u);
	free(u);
}

const char *ua_listening(const struct ua *u)
{
	return u->listening;
}
