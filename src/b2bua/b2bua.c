/* b2bua.c: the call, from leg A's INVITE to the last BYE.
 *
 * A call holds two legs. Each leg has its dialog (dialog.h), its offer/answer
 * state (oa.h) and the transactions in flight on it; a transaction's TU data
 * is its leg, and the leg's slots (invite, cancel, bye) say which one it is.
 * When a call ends, every live transaction still pointing at it is cut loose
 * (its data set to NULL, so late responses are ignored) and the call is freed
 * at once: its ports go back to the pool and srtpbridgectl stops showing it.
 *
 * The rules, with the RFC 3261 sections they come from:
 * - leg A gets 100 Trying from the transaction layer at once (17.2.1);
 * - every response to leg A carries our To tag, Contact and leg A's
 *   Record-Route (12.1.1); a 2xx is retransmitted until leg A's ACK, and
 *   without one both legs get BYE after 64*T1 (13.3.1.4);
 * - leg B's 2xx is ACKed by us at once and each retransmission re-ACKed
 *   (13.2.2.4: the ACK of a 2xx is end to end);
 * - leg A's CANCEL is answered 200, its INVITE 487 at once; leg B's CANCEL
 *   waits for a provisional response (9.1), and a 2xx that crosses it is
 *   ACKed and then BYEd (15);
 * - an answer, refusal or BYE from one leg is taken to the other; what
 *   srtpbridge decides itself carries Reason: SIP;cause=...;text="..."
 *   (RFC 3326). */
#include "srtpbridge/b2bua.h"
#include "srtpbridge/addr.h"
#include "srtpbridge/config.h"
#include "srtpbridge/control.h"
#include "srtpbridge/dialog.h"
#include "srtpbridge/health.h"
#include "srtpbridge/legb.h"
#include "srtpbridge/log.h"
#include "srtpbridge/media_session.h"
#include "srtpbridge/oa.h"
#include "srtpbridge/portpool.h"
#include "srtpbridge/randpool.h"
#include "srtpbridge/relay.h"
#include "srtpbridge/sdp.h"
#include "srtpbridge/sipcore.h"
#include "srtpbridge/sipmsg.h"
#include "srtpbridge/suite.h"
#include "srtpbridge/txn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <openssl/crypto.h>
#include <osipparser2/osip_parser.h>

#define LOG_MODULE "b2bua"

/* RFC 3261 timer values, as the transaction layer uses them. */
#define T1_MS	    500u
#define T2_MS	    4000u

#define OUR_ALLOW   "INVITE, ACK, CANCEL, BYE, OPTIONS"
#define NBUCKETS    (1u << 16)
#define REASON_MAX  200
#define CALL_ID_MAX (SIPMSG_MAX_LINE + 1) /* no Call-ID is longer than its line */

/* The media timeout's sweep (on_sweep): a slice of the calls every
 * SWEEP_MS, each call in one of SWEEP_SLICES slices. */
#define SWEEP_MS     100u
#define SWEEP_SLICES 10u

enum call_state {
	CALL_CALLING = 0, /* leg B's INVITE is out, leg A has no final response */
	CALL_ANSWERED,	  /* leg A has our 2xx and owes its ACK */
	CALL_CONFIRMED,	  /* both legs confirmed */
	CALL_CANCELLING,  /* leg A has its final failure; leg B's INVITE is still alive */
	CALL_ENDING,	  /* a BYE to leg A waits for its ACK */
};

static const char *const state_names[] = {
	[CALL_CALLING] = "calling",	[CALL_ANSWERED] = "answered",
	[CALL_CONFIRMED] = "confirmed", [CALL_CANCELLING] = "cancelling",
	[CALL_ENDING] = "ending",
};

struct call;
struct leg;

/* What a transaction's TU data points at, the first member of each: a leg,
 * or an attempt abandoned by failover. (A health ping's data is the health
 * object, health_txn_tag.) */
enum tu_kind {
	TU_LEG = 1,
	TU_ATTEMPT,
};

/* Leg B's INVITE to a peer that stayed silent past failover_timeout, after
 * the call moved on to the next peer. It lives, independent of the call,
 * until its transaction ends: a late provisional gets a CANCEL, a late 2xx
 * an ACK and a BYE (the peer woke up after all; nobody wants that call). */
struct attempt {
	enum tu_kind kind; /* TU_ATTEMPT */
	struct b2bua *b2b;
	struct config *cfg; /* holds trunk */
	const struct config_trunk *trunk;
	struct txn_addr dest;
	struct txn *invite, *cancel;
	char id[13];		 /* the call's, for the log */
	char reason[REASON_MAX]; /* in the CANCEL or BYE */
	struct attempt *prev, *next;
};

/* An in-dialog request (INFO, NOTIFY, MESSAGE, OPTIONS) relayed from one leg
 * to the other, until its final response goes back. */
struct fwd {
	struct leg *from;
	struct txn *server; /* the request from `from`'s peer */
	struct txn *client; /* ours on the other leg */
	struct fwd *next;
};

struct leg {
	enum tu_kind kind; /* TU_LEG */
	struct call *call;
	bool is_a;
	const struct config_trunk *trunk;
	struct oa_leg *oa;
	struct dialog *dlg;
	char *call_id;	      /* leg A: the carrier's; leg B: ours */
	char tag[17];	      /* our tag on this leg */
	struct txn_addr dest; /* where this leg's requests go */
	size_t peer;	      /* leg B: the index in trunk->peers it goes to */
	struct txn *invite;   /* leg A: the INVITE server transaction; leg B: client */
	struct txn *cancel;   /* leg B: our CANCEL */
	char *ack;	      /* leg B: our ACK of its 2xx, serialised, for each retransmission */
	size_t ack_len;
	struct leg *next; /* in the Call-ID table */
};

struct call {
	struct b2bua *b2b;
	char id[13];
	struct config *cfg; /* the snapshot the call started with */
	const char *rule;   /* the [route:*] that picked leg B's trunk, or NULL */
	struct leg a, b;
	struct media_session *media;
	enum call_state state;
	bool b_provisional;  /* leg B sent a provisional response: a CANCEL may go */
	bool cancel_pending; /* leg B's CANCEL waits for that */
	bool ring_armed;
	bool answered_early; /* leg A has had an SDP answer in a 18x */
	bool relayed_18x;    /* leg A has had a 18x: the caller hears something, no failover */
	bool b_heard;	     /* leg B's current attempt had a response: no failover by time */
	char *b_offer;	     /* the SDP of leg B's INVITE, again for each peer tried */
	size_t b_offer_len;
	/* Late offer (RFC 3261 13.2.1): leg A's INVITE had no SDP, leg B's 2xx
	 * carries the offer, leg A's ACK the answer, and leg B's ACK waits for
	 * it, built (without its body) in late_ack. */
	bool late_offer;
	osip_message_t *late_ack;
	char cancel_reason[REASON_MAX]; /* the Reason leg B's CANCEL carries */
	char cancel_why[REASON_MAX];	/* and why, for the log */
	char bye_reason[REASON_MAX];	/* the Reason of a BYE to leg A after its ACK */
	char *a_answer;			/* the SDP answer leg A got, for a 2xx without SDP */
	size_t a_answer_len;
	bool a_2xx;	   /* leg A has our 2xx, retransmitted until its ACK */
	uint32_t a_2xx_ms; /* the next retransmission interval */
	struct event retrans, deadline, ring, failover;
	/* A re-INVITE or UPDATE with an offer, relayed from leg `from` to the
	 * other: one at a time per call (RFC 3261 14.2, RFC 3311 5.2). */
	struct {
		bool active;		  /* offered, not yet answered on `from` */
		bool invite;		  /* re-INVITE (else UPDATE) */
		bool awaiting_ack;	  /* our 2xx to `from`'s re-INVITE awaits its ACK */
		bool answered;		  /* the other leg's 2xx came */
		struct leg *from;	  /* the leg whose peer offered */
		struct leg *to;		  /* the other: where our request went */
		struct txn *server;	  /* its request's server transaction */
		struct txn *client;	  /* ours on the other leg, until it terminates */
		uint32_t cseq;		  /* of `from`'s re-INVITE, for its ACK */
		bool late;		  /* a re-INVITE without SDP: the offer comes in the 2xx */
		osip_message_t *late_ack; /* then our ACK waits for the offerer's answer */
		char *ack;		  /* our ACK of the other leg's 2xx, serialised */
		size_t ack_len;
	} ri;
	uint64_t start_ms, answer_ms;
	uint64_t media_ms; /* the last media update: the media timeout counts from there too */
	struct fwd *fwds;  /* in-dialog requests forwarded */
	struct call *prev, *next; /* every call, newest first */
};

struct trunk_count {
	char *name;
	unsigned n;
};

struct b2bua {
	struct event_base *base;
	struct sipcore *sip;
	struct txn_layer *txn;
	struct portpool *pool;
	struct relay *relay;
	struct event sweep;    /* every SWEEP_MS: the next slice of calls */
	struct call *sweep_at; /* where the sweep goes on; NULL: from the start */
	struct b2bua_hooks hooks;
	bool draining;
	struct leg **table; /* by Call-ID */
	struct call *calls;
	struct attempt *attempts;
	struct health *health;
	struct trunk_count *counts; /* calls per trunk name, for max_calls */
	char *sdp; /* SDP_MAX_BYTES of scratch for one rewrite at a time, wiped after */
	size_t ncounts;
	struct b2bua_stats st;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- the Call-ID table ---- */

static uint32_t hash(const char *s)
{
	if (!s)
		return 0;
	uint32_t h = 2166136261u; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h & (NBUCKETS - 1);
}

static void table_add(struct b2bua *b, struct leg *l)
{
	struct leg **slot = &b->table[hash(l->call_id)];

	l->next = *slot;
	*slot = l;
}

static void table_del(struct b2bua *b, struct leg *l)
{
	for (struct leg **p = &b->table[hash(l->call_id)]; *p; p = &(*p)->next)
		if (*p == l) {
			*p = l->next;
			return;
		}
}

/* The leg a message belongs to: its Call-ID, then its dialog's tags (leg A's
 * Call-ID is the carrier's, so two calls may share one in theory). */
static struct leg *table_find(struct b2bua *b, const osip_message_t *m)
{
	char cid[CALL_ID_MAX];

	if (sipmsg_call_id(m, cid, sizeof(cid)))
		return NULL;
	for (struct leg *l = b->table[hash(cid)]; l; l = l->next) {
		if (!l->call_id || strcmp(l->call_id, cid) != 0)
			continue;
		if (l->dlg ? dialog_matches(l->dlg, m) : !sipmsg_is_request(m))
			return l;
	}
	return NULL;
}

/* RFC 3261 8.2.2.2: an INVITE without a To tag whose Call-ID, From tag and
 * CSeq are those of a call's leg A, in another transaction (the same request
 * forked back to us, or a retransmission after its transaction ended): it
 * must not become a second call. */
static bool merged_request(struct b2bua *b, const osip_message_t *req)
{
	char cid[CALL_ID_MAX];
	const char *ftag = sipmsg_from_tag(req);
	uint32_t n = 0, have;

	if (sipmsg_call_id(req, cid, sizeof(cid)) || sipmsg_cseq(req, &n, NULL))
		return false;
	for (struct leg *l = b->table[hash(cid)]; l; l = l->next) {
		const char *rtag = l->dlg ? dialog_remote_tag(l->dlg) : NULL;

		if (l->is_a && l->call_id && strcmp(l->call_id, cid) == 0 &&
		    (rtag && ftag ? osip_strcasecmp(rtag, ftag) == 0 : rtag == ftag) &&
		    dialog_remote_cseq(l->dlg, &have) && have == n)
			return true;
	}
	return false;
}

static struct trunk_count *count_for(struct b2bua *b, const char *name)
{
	struct trunk_count *v;

	for (size_t i = 0; i < b->ncounts; i++)
		if (strcmp(b->counts[i].name, name) == 0)
			return &b->counts[i];
	v = realloc(b->counts, (b->ncounts + 1) * sizeof(*v));
	if (!v)
		return NULL;
	b->counts = v;
	v = &b->counts[b->ncounts];
	v->name = strdup(name);
	if (!v->name)
		return NULL;
	v->n = 0;
	b->ncounts++;
	return v;
}

static unsigned trunk_calls(const struct b2bua *b, const char *name)
{
	for (size_t i = 0; i < b->ncounts; i++)
		if (strcmp(b->counts[i].name, name) == 0)
			return b->counts[i].n;
	return 0;
}

/* ---- messages ---- */

/* RFC 3326: SIP;cause=N;text="..." with the text a quoted-string: '"' and
 * '\\' escaped, control bytes dropped, cut to fit. */
static void reason_value(char *buf, size_t size, int cause, const char *text)
{
	int n = snprintf(buf, size, "SIP;cause=%d;text=\"", cause);
	size_t i = n > 0 ? (size_t)n : 0;

	for (; text && *text && i + 4 < size; text++) {
		unsigned char ch = (unsigned char)*text;

		if (ch < 0x20 || ch == 0x7f)
			continue;
		if (ch == '"' || ch == '\\')
			buf[i++] = '\\';
		buf[i++] = (char)ch;
	}
	buf[i++] = '"';
	buf[i] = '\0';
}

/* A response outside any dialog of ours (a refusal before the call exists,
 * a CANCEL's 200): sipmsg_response's fields, our tag, a Warning, and a
 * Reason when one is given. */
static void respond_reason(struct txn *t, const osip_message_t *req, int status, const char *tag,
			   const char *warning, const char *reason)
{
	osip_message_t *resp = NULL;
	char fresh[17];

	if (!tag) {
		randpool_hex16(fresh);
		tag = fresh;
	}
	if (sipmsg_response(&resp, req, status, NULL, tag, warning))
		return;
	if (status == 405 || status == 501)
		sipmsg_header_add(resp, "Allow", OUR_ALLOW);
	if (reason)
		sipmsg_header_add(resp, "Reason", reason);
	if (txn_respond(t, resp))
		LOG_WARN(NULL, "cannot send a response", LF_I("status", status));
}

static void respond_plain(struct txn *t, const osip_message_t *req, int status, const char *tag,
			  const char *warning)
{
	respond_reason(t, req, status, tag, warning, NULL);
}

static const char *call_name(const struct call *c)
{
	return c ? c->id : NULL;
}

/* A response to leg A's INVITE: our To tag, and for 101..299 the dialog's
 * Record-Route and our Contact, with the SDP when there is one. warning and
 * reason (a Reason header value) may be NULL. */
/* Session timers (RFC 4028) are the endpoints' business: Session-Expires,
 * Min-SE and the "timer" option tag cross from one leg to the other, so that
 * the refresher refreshes end to end through srtpbridge, and a 422 with its
 * Min-SE reaches the side that chose the interval. Other option tags stay
 * per hop (see legb.h). src may be NULL. */
static int copy_timer(osip_message_t *to, const osip_message_t *src)
{
	static const char *const names[] = { "Session-Expires", "x", "Min-SE" };
	const char *v;
	int err = 0;

	if (!src)
		return 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && !err; i++)
		for (unsigned k = 0; (v = sipmsg_header_get(src, names[i], k)) && !err; k++)
			err = sipmsg_header_add(to, i == 1 ? "Session-Expires" : names[i], v);
	for (int r = 0; r < 2 && !err; r++) {
		const char *name = r ? "Require" : "Supported";
		bool timer = false;

		for (unsigned k = 0; (v = sipmsg_header_get(src, name, k)) && !timer; k++)
			for (const char *p = v; (p = strcasestr(p, "timer")) != NULL; p += 5)
				if ((p == v || strchr(", \t", p[-1])) && strchr(", \t", p[5]))
					timer = true;
		if (!timer && !r)
			for (unsigned k = 0; (v = sipmsg_header_get(src, "k", k)) && !timer; k++)
				timer = strcasestr(v, "timer") != NULL;
		if (timer)
			err = sipmsg_header_add(to, name, "timer");
	}
	return err;
}

/* A response of ours on leg l in server transaction t: our To tag; our
 * Contact on a 2xx, and on a 101..299 that establishes the dialog, which
 * also gets the INVITE's Record-Route (12.1.1); Allow on a 2xx; the
 * session-timer headers of src (the far leg's response, or NULL), a Reason
 * and the SDP when given. */
static int respond_on(struct leg *l, struct txn *t, const osip_message_t *src, int status,
		      const char *sdp, size_t len, const char *warning, const char *reason,
		      bool establishing)
{
	const osip_message_t *req = txn_get_request(t);
	osip_message_t *resp = NULL;
	char contact[300];
	int err;

	err = sipmsg_response(&resp, req, status, NULL, l->tag, warning);
	if (err)
		return err;
	if (establishing && status > 100 && status < 300)
		err = dialog_uas_response_headers(l->dlg, req, resp);
	if (!err && (status >= 200 || establishing) && status > 100 && status < 300) {
		err = legb_contact(contact, sizeof(contact), l->trunk, l->dest.transport,
				   l->call->id);
		if (!err && osip_message_set_contact(resp, contact))
			err = ENOMEM;
		if (!err && status >= 200)
			err = sipmsg_header_add(resp, "Allow", OUR_ALLOW);
	}
	if (!err)
		err = copy_timer(resp, src);
	if (!err && reason)
		err = sipmsg_header_add(resp, "Reason", reason);
	if (!err && len)
		err = sipmsg_set_body(resp, "application/sdp", sdp, len);
	if (err) {
		osip_message_free(resp);
		return err;
	}
	return txn_respond(t, resp);
}

/* A response to leg A's INVITE, with the session-timer headers of src (leg
 * B's response, or NULL). */
static int respond_a_src(struct call *c, const osip_message_t *src, int status, const char *sdp,
			 size_t len, const char *warning, const char *reason)
{
	int err;

	if (!c->a.invite)
		return ENOTCONN;
	if (status >= 200 && status < 300)
		c->a_2xx = true;
	err = respond_on(&c->a, c->a.invite, src, status, sdp, len, warning, reason, true);
	if (err)
		LOG_WARN(c->id, "cannot answer leg A", LF_I("status", status),
			 LF_S("error", strerror(err)));
	return err;
}

static int respond_a(struct call *c, int status, const char *sdp, size_t len, const char *warning,
		     const char *reason)
{
	return respond_a_src(c, NULL, status, sdp, len, warning, reason);
}

/* A response to a request within leg l's dialog. */
static int respond_leg_src(struct leg *l, struct txn *t, const osip_message_t *src, int status,
			   const char *sdp, size_t len, const char *warning, const char *reason)
{
	return respond_on(l, t, src, status, sdp, len, warning, reason, false);
}

static int respond_leg(struct leg *l, struct txn *t, int status, const char *sdp, size_t len,
		       const char *warning, const char *reason)
{
	return respond_leg_src(l, t, NULL, status, sdp, len, warning, reason);
}

/* Our Via on a request of leg l, with a fresh branch: dialog.c leaves it
 * to us (an ACK of a 2xx is a transaction of its own, 17.1.1.3). */
static int add_via(osip_message_t *m, const struct config_trunk *trunk, enum sip_transport tp)
{
	char via[400], branch[24] = "z9hG4bK";
	int err;

	randpool_hex16(branch + 7);
	err = legb_via(via, sizeof(via), trunk, tp, branch);
	if (!err && osip_message_set_via(m, via))
		err = ENOMEM;
	return err;
}

/* A request of method in leg l's dialog with our Via, and our Contact when
 * it refreshes the target (re-INVITE, UPDATE). */
static int leg_request(struct leg *l, const char *method, bool contact, osip_message_t **out)
{
	osip_message_t *m = NULL;
	char value[300];
	int err;

	if (!l->dlg)
		return ENOTCONN;
	err = dialog_request(l->dlg, method, &m);
	if (!err)
		err = add_via(m, l->trunk, l->dest.transport);
	if (!err && contact) {
		err = legb_contact(value, sizeof(value), l->trunk, l->dest.transport, l->call->id);
		if (!err && osip_message_set_contact(m, value))
			err = ENOMEM;
	}
	if (err)
		osip_message_free(m);
	else
		*out = m;
	return err;
}

/* A request in leg l's dialog, with our Via; Reason when reason is not NULL.
 * Sent as a client transaction whose TU data is the leg when keep is true,
 * else none (the call will be gone when its response comes). */
static int send_in_dialog_from(struct leg *l, const char *method, const char *reason, bool keep,
			       const osip_message_t *from)
{
	osip_message_t *m = NULL;
	int err;

	err = leg_request(l, method, false, &m);
	if (err)
		return err;
	if (reason)
		err = sipmsg_header_add(m, "Reason", reason);
	/* the far leg's request, relayed: its pass_headers cross as an
	 * INVITE's do; one that cannot be copied is left behind, not the BYE */
	if (!err && from && legb_pass_headers(m, from, l->trunk) == EINVAL)
		LOG_INFO(call_name(l->call), "a header to pass cannot be copied",
			 LF_S("method", method));
	if (err) {
		osip_message_free(m);
		return err;
	}
	err = txn_request(l->call->b2b->txn, m, &l->dest, keep ? l : NULL, NULL);
	if (err)
		LOG_WARN(call_name(l->call), "cannot send a request", LF_S("method", method),
			 LF_S("leg", l->is_a ? "a" : "b"), LF_S("error", strerror(err)));
	return err;
}

static int send_in_dialog(struct leg *l, const char *method, const char *reason, bool keep)
{
	return send_in_dialog_from(l, method, reason, keep, NULL);
}

/* RFC 3261 9.1: the CANCEL of the INVITE of client transaction t, built
 * from that request: Request-URI, the top Via (its branch), From, To,
 * Call-ID and Route as they were, CSeq with the same number and method
 * CANCEL; sent to dest (the INVITE's) as a transaction with data. */
static int send_cancel(struct b2bua *b, struct txn *t, const char *reason,
		       const struct txn_addr *dest, void *data, struct txn **out)
{
	osip_message_t *m = NULL;
	int err;

	if (!t)
		return ENOTCONN;
	err = sipmsg_cancel(&m, txn_get_request(t));
	if (!err && reason && reason[0])
		err = sipmsg_header_add(m, "Reason", reason);
	if (err) {
		osip_message_free(m);
		return err;
	}
	return txn_request(b->txn, m, dest, data, out);
}

static int send_cancel_b(struct call *c)
{
	int err =
		send_cancel(c->b2b, c->b.invite, c->cancel_reason, &c->b.dest, &c->b, &c->b.cancel);

	if (err)
		LOG_WARN(c->id, "cannot send CANCEL to leg B", LF_S("error", strerror(err)));
	return err;
}

/* ---- the end of a call ---- */

static void cut_loose(struct txn *t)
{
	if (t)
		txn_set_data(t, NULL);
}

static void leg_free(struct b2bua *b, struct leg *l)
{
	table_del(b, l);
	cut_loose(l->invite);
	cut_loose(l->cancel);
	free(l->ack);
	free(l->call_id);
	dialog_destroy(l->dlg);
	oa_leg_destroy(l->oa);
	if (l->dest.conn)
		sipcore_conn_release(b->sip, l->dest.conn);
}

/* Totals over the call: packets in and out on both legs, and the inbound
 * packets that failed SRTP (RTP and RTCP apart: a call whose RTCP alone
 * fails has audio). */
struct call_totals {
	uint64_t in, out, rtp_failed, rtcp_failed;
};

static void call_totals(const struct call *c, struct call_totals *t)
{
	struct relay_counts rc;

	memset(t, 0, sizeof(*t));
	if (!c->media)
		return;
	for (int leg = 0; leg < 2; leg++)
		for (size_t i = 0; i < media_session_nstreams(c->media); i++)
			for (int k = 0; k < 2; k++) {
				relay_session_counts(media_session_relay(c->media), leg, i, k,
						     RELAY_IN, &rc);
				t->in += rc.packets;
				*(k ? &t->rtcp_failed : &t->rtp_failed) +=
					rc.auth_fail + rc.replay_fail + rc.cant_check;
				relay_session_counts(media_session_relay(c->media), leg, i, k,
						     RELAY_OUT, &rc);
				t->out += rc.packets;
			}
}

static const char *call_suite(const struct call *c);

/* Frees the call now; the caller has sent every message the end needs. */
static void call_free(struct call *c, const char *why)
{
	struct b2bua *b = c->b2b;
	struct trunk_count *tc;
	struct call_totals tot;

	/* The call's record for the operator: what it carried, so a silent
	 * call can be told from a short one after the fact. */
	call_totals(c, &tot);
	LOG_INFO(c->id, "call ended", LF_S("reason", why),
		 LF_U("duration_ms", c->answer_ms ? now_ms() - c->answer_ms : 0),
		 LF_S("state", state_names[c->state]), LF_S("suite", call_suite(c)),
		 LF_U("packets_in", tot.in), LF_U("packets_out", tot.out),
		 LF_U("rtp_decrypt_failures", tot.rtp_failed),
		 LF_U("rtcp_decrypt_failures", tot.rtcp_failed));
	event_del(&c->retrans);
	event_del(&c->deadline);
	event_del(&c->ring);
	event_del(&c->failover);
	if (b->sweep_at == c)
		b->sweep_at = c->next;
	if (c->prev)
		c->prev->next = c->next;
	else
		b->calls = c->next;
	if (c->next)
		c->next->prev = c->prev;
	for (int i = 0; i < 2; i++) {
		const struct config_trunk *t = i ? c->b.trunk : c->a.trunk;

		tc = count_for(b, t->name);
		if (tc && tc->n)
			tc->n--;
	}
	/* an offer still unanswered when the call ends: 487 (RFC 3261 15.1.2) */
	if (c->ri.active && c->ri.server && !c->ri.answered)
		respond_leg(c->ri.from, c->ri.server, 487, NULL, 0, NULL, NULL);
	osip_message_free(c->late_ack);
	osip_message_free(c->ri.late_ack);
	cut_loose(c->ri.server);
	cut_loose(c->ri.client);
	while (c->fwds) {
		struct fwd *r = c->fwds;

		c->fwds = r->next;
		cut_loose(r->server);
		cut_loose(r->client);
		free(r);
	}
	free(c->ri.ack);
	leg_free(b, &c->a);
	leg_free(b, &c->b);
	media_session_destroy(c->media);
	if (c->a_answer)
		OPENSSL_cleanse(c->a_answer, c->a_answer_len);
	free(c->a_answer);
	if (c->b_offer)
		OPENSSL_cleanse(c->b_offer, c->b_offer_len);
	free(c->b_offer);
	config_unref(c->cfg);
	b->st.calls_active--;
	if (b->hooks.release)
		b->hooks.release(b->hooks.arg);
	free(c);
}

/* srtpbridge ends an established call: BYE to both legs with a Reason. */
static void end_both(struct call *c, int cause, const char *text)
{
	char reason[REASON_MAX];

	reason_value(reason, sizeof(reason), cause, text);
	c->b2b->st.ended_by_us++;
	send_in_dialog(&c->a, "BYE", reason, false);
	send_in_dialog(&c->b, "BYE", reason, false);
	call_free(c, text);
}

/* Leg A has its final failure; leg B's INVITE is cancelled when it may be
 * (9.1), or its final response is awaited. The call lives until then. */
static void cancel_b(struct call *c, int cause, const char *text, const char *reason)
{
	snprintf(c->cancel_why, sizeof(c->cancel_why), "%s", text);
	if (reason)
		snprintf(c->cancel_reason, sizeof(c->cancel_reason), "%s", reason);
	else
		reason_value(c->cancel_reason, sizeof(c->cancel_reason), cause, text);
	c->state = CALL_CANCELLING;
	event_del(&c->ring);
	event_del(&c->failover);
	if (!c->b.invite) {
		call_free(c, text);
		return;
	}
	if (!c->b_provisional) {
		c->cancel_pending = true;
	} else if (send_cancel_b(c) != 0) {
		txn_abort(c->b.invite); /* nothing will end it otherwise */
		return;
	}
	/* 9.1: a client that gets no final response 64*T1 after its CANCEL
	 * considers the INVITE transaction over */
	event_add(&c->deadline, &(struct timeval){ .tv_sec = 64 * T1_MS / 1000 });
}

/* Refuses leg A's INVITE and cancels leg B: a failure of srtpbridge's own. */
static void fail_call(struct call *c, int status, const char *warning, int cause)
{
	char reason[REASON_MAX];

	reason_value(reason, sizeof(reason), cause, warning);
	c->b2b->st.calls_failed++;
	c->b2b->st.ended_by_us++;
	respond_a(c, status, NULL, 0, warning, reason);
	cancel_b(c, cause, warning, NULL);
}

/* ---- timers ---- */

static void on_retrans(evutil_socket_t fd, short what, void *arg)
{
	struct call *c = arg;

	if (c->ri.awaiting_ack && c->ri.server)
		txn_retransmit(c->ri.server);
	else if ((c->state != CALL_ANSWERED && c->state != CALL_ENDING) || !c->a.invite ||
		 !c->a_2xx)
		return;
	else
		txn_retransmit(c->a.invite);
	c->a_2xx_ms = c->a_2xx_ms * 2 > T2_MS ? T2_MS : c->a_2xx_ms * 2;
	event_add(&c->retrans, &(struct timeval){ .tv_sec = c->a_2xx_ms / 1000,
						  .tv_usec = (c->a_2xx_ms % 1000) * 1000 });
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct call *c = arg;

	if (c->ri.awaiting_ack) {
		c->b2b->st.ack_timeouts++;
		LOG_INFO(c->id, "no ACK for the 2xx of a re-INVITE: ending the call");
		end_both(c, 408, "no ACK for the 2xx of a re-INVITE");
	} else if (c->state == CALL_ANSWERED || c->state == CALL_ENDING) {
		/* 13.3.1.4: no ACK for our 2xx within 64*T1 */
		c->b2b->st.ack_timeouts++;
		LOG_INFO(c->id, "no ACK from leg A for the 2xx: ending the call");
		if (c->state == CALL_ENDING) {
			send_in_dialog(&c->a, "BYE", c->bye_reason, false);
			call_free(c, "no ACK from leg A after the BYE of leg B");
			return;
		}
		end_both(c, 408, "no ACK from leg A for the 2xx");
	} else if (c->state == CALL_CANCELLING && c->b.invite) {
		/* 9.1: leg B never answered the CANCEL's INVITE */
		txn_abort(c->b.invite); /* terminated() frees the call */
	}
}

/* ring_timeout: 480 when leg A heard ringing or early media (nobody
 * answered, as a phone would say), 408 when leg B only ever said 100. */
static void on_ring(evutil_socket_t fd, short what, void *arg)
{
	struct call *c = arg;
	int status = c->relayed_18x ? 480 : 408;
	char text[120];

	if (c->state != CALL_CALLING)
		return;
	snprintf(text, sizeof(text), "ring_timeout: no answer from trunk %s within %d s",
		 c->b.trunk->name, c->b.trunk->ring_timeout);
	LOG_INFO(c->id, "ring timeout", LF_S("trunk", c->b.trunk->name), LF_I("status", status));
	fail_call(c, status, text, status);
}

/* ---- a new call ---- */

/* Media streams of an offer, for its ports before oa reads it: a scan of
 * line starts, where a full sdp_parse would read every INVITE twice. */
static unsigned count_m_lines(const char *p, size_t n)
{
	unsigned count = 0;

	for (size_t i = 0; i + 1 < n; i++)
		if ((i == 0 || p[i - 1] == '\n') && p[i] == 'm' && p[i + 1] == '=')
			count++;
	return count;
}

/* A refusal before the call exists, logged and counted. */
static void refuse(struct b2bua *b, struct txn *t, const osip_message_t *req, int status,
		   const char *why, uint64_t *counter, const char *reason)
{
	char cid[CALL_ID_MAX] = "";

	sipmsg_call_id(req, cid, sizeof(cid));
	LOG_INFO(NULL, "call refused", LF_S("call_id", cid), LF_I("status", status),
		 LF_S("reason", why));
	b->st.calls_rejected++;
	if (counter)
		(*counter)++;
	respond_reason(t, req, status, NULL, why, reason);
}

static void reject(struct b2bua *b, struct txn *t, const osip_message_t *req, int status,
		   const char *why, uint64_t *counter)
{
	refuse(b, t, req, status, why, counter, NULL);
}

/* No peer of the destination trunk can take the call: a Reason too, so the
 * carrier's records say why (no Retry-After: this call only). */
static void refuse_no_peer(struct b2bua *b, struct txn *t, const osip_message_t *req, int status,
			   const char *why)
{
	char reason[REASON_MAX];

	reason_value(reason, sizeof(reason), status, why);
	refuse(b, t, req, status, why, &b->st.rejected_no_peer, reason);
}

static void new_id(char id[13])
{
	char hex[17];

	randpool_hex16(hex);
	memcpy(id, hex, 12);
	id[12] = '\0';
}

static int leg_init(struct call *c, struct leg *l, bool is_a, const struct config_trunk *trunk)
{
	uint64_t sess = 0;

	l->call = c;
	l->is_a = is_a;
	l->trunk = trunk;
	randpool_hex16(l->tag);
	randpool_draw(&sess, sizeof(sess));
	return oa_leg_create(&l->oa, trunk, sess >> 2); /* o= session ids stay under 2^62 */
}

/* ---- leg B's peers: failover ---- */

/* Leg B's Call-ID: 16 random hex digits and the call's id, nothing of leg
 * A. Each peer tried gets a new one: two attempts are two dialogs, and a
 * peer reached twice under two addresses must not take the second INVITE
 * for a merged request (RFC 3261 8.2.2.2). */
static void new_b_call_id(struct call *c)
{
	randpool_hex16(c->b.call_id);
	memcpy(c->b.call_id + 16, c->id, 12);
	c->b.call_id[28] = '\0';
}

/* Leg B's INVITE, built from leg A's (req), to the first usable peer of
 * leg B's trunk from index `from` on, with the offer kept in b_offer. A
 * peer marked down is skipped without a moment spent on it, and so is one
 * that cannot be sent to at once (a name without an address yet, a send
 * that fails). 0 when an INVITE went (failover_timeout armed); ENOENT with
 * why when no peer is left (*status 503); another errno with *status and
 * why when leg A's INVITE itself cannot be relayed (legb.h). */
static int start_attempt(struct call *c, const osip_message_t *req, size_t from, int *status,
			 char *why, size_t whysz)
{
	struct b2bua *b = c->b2b;
	struct leg *l = &c->b;
	const struct config_trunk *out = l->trunk;

	*status = 503;
	snprintf(why, whysz, "every peer of trunk %s is down", out->name);
	for (size_t i = from; i < out->npeers; i++) {
		const struct sip_uri *peer = &out->peers[i];
		struct txn_addr dest;
		osip_message_t *inv = NULL;
		char name[300], detail[200], branch[24] = "z9hG4bK";
		const char *lwhy = NULL;
		int err;

		config_uri_format(peer, name, sizeof(name));
		if (!health_usable(b->health, out, peer)) {
			LOG_DEBUG(c->id, "peer skipped: it is down", LF_S("trunk", out->name),
				  LF_S("peer", name));
			continue;
		}
		err = sipcore_peer_dest(b->sip, out, peer, &dest, detail, sizeof(detail));
		if (err) {
			snprintf(why, whysz, "trunk %s cannot reach its peer %s: %s", out->name,
				 name, detail);
			LOG_INFO(c->id, "peer skipped", LF_S("trunk", out->name),
				 LF_S("peer", name), LF_S("reason", detail));
			continue;
		}
		randpool_hex16(branch + 7);
		err = legb_invite(&inv, req, out, peer,
				  &(struct legb_ids){ .call_id = l->call_id,
						      .from_tag = l->tag,
						      .branch = branch,
						      .contact_user = c->id },
				  status, &lwhy);
		if (err) {
			snprintf(why, whysz, "%s", lwhy);
			return err;
		}
		if (copy_timer(inv, req) ||
		    (c->b_offer &&
		     sipmsg_set_body(inv, "application/sdp", c->b_offer, c->b_offer_len))) {
			osip_message_free(inv);
			*status = 500;
			snprintf(why, whysz, "out of memory");
			return ENOMEM;
		}
		err = txn_request(b->txn, inv, &dest, l, &l->invite);
		if (err) {
			snprintf(why, whysz, "cannot send the INVITE to %s of trunk %s: %s", name,
				 out->name, strerror(err));
			LOG_INFO(c->id, "peer skipped", LF_S("trunk", out->name),
				 LF_S("peer", name), LF_S("reason", strerror(err)));
			continue;
		}
		l->peer = i;
		l->dest = dest;
		c->b_heard = false;
		if (out->failover_timeout > 0)
			event_add(&c->failover,
				  &(struct timeval){ .tv_sec = out->failover_timeout });
		return 0;
	}
	*status = 503;
	return ENOENT;
}

/* Leg B's current INVITE, silent past failover_timeout, handed to an
 * attempt of its own that outlives the call if need be. */
static void abandon(struct call *c)
{
	struct b2bua *b = c->b2b;
	struct attempt *a = calloc(1, sizeof(*a));

	if (!a) {
		cut_loose(c->b.invite); /* a late answer is then left unanswered */
		c->b.invite = NULL;
		return;
	}
	a->kind = TU_ATTEMPT;
	a->b2b = b;
	a->cfg = config_ref(c->cfg);
	a->trunk = c->b.trunk;
	a->dest = c->b.dest;
	a->invite = c->b.invite;
	memcpy(a->id, c->id, sizeof(a->id));
	reason_value(a->reason, sizeof(a->reason), 408,
		     "no response within failover_timeout: the call went to another peer");
	txn_set_data(a->invite, a);
	c->b.invite = NULL;
	a->next = b->attempts;
	if (b->attempts)
		b->attempts->prev = a;
	b->attempts = a;
}

static void attempt_free(struct attempt *a)
{
	struct b2bua *b = a->b2b;

	cut_loose(a->invite);
	cut_loose(a->cancel);
	if (a->prev)
		a->prev->next = a->next;
	else
		b->attempts = a->next;
	if (a->next)
		a->next->prev = a->prev;
	config_unref(a->cfg);
	free(a);
}

/* Leg B's attempt at its current peer failed for a reason another peer
 * may not share (no response within failover_timeout, 408, 500, 503, a
 * transport error) and leg A has heard nothing yet: the next usable peer
 * gets the INVITE, or, when none is left, leg A a 503 without Retry-After
 * (this call failed; srtpbridge is not out of service). */
static void failover(struct call *c, const char *what)
{
	struct b2bua *b = c->b2b;
	struct leg *l = &c->b;
	const osip_message_t *req = c->a.invite ? txn_get_request(c->a.invite) : NULL;
	size_t from = l->peer;
	char name[300], next[300], why[700], text[1100], reason[REASON_MAX];
	int status;

	config_uri_format(&l->trunk->peers[from], name, sizeof(name));
	event_del(&c->failover);
	event_del(&c->ring);
	c->ring_armed = false;
	c->b_provisional = false;
	cut_loose(l->invite);
	l->invite = NULL;
	dialog_destroy(l->dlg);
	l->dlg = NULL;
	table_del(b, l);
	new_b_call_id(c);
	table_add(b, l);
	snprintf(why, sizeof(why), "no further peer");
	if (req && start_attempt(c, req, from + 1, &status, why, sizeof(why)) == 0) {
		b->st.failovers++;
		health_failover(b->health, l->trunk, &l->trunk->peers[from]);
		config_uri_format(&l->trunk->peers[l->peer], next, sizeof(next));
		LOG_INFO(c->id, "failover", LF_S("trunk", l->trunk->name), LF_S("from", name),
			 LF_S("to", next), LF_S("reason", what), LF_S("call_id_b", l->call_id));
		return;
	}
	snprintf(text, sizeof(text), "no peer of trunk %s took the call (%s: %s; then %s)",
		 l->trunk->name, name, what, why);
	LOG_INFO(c->id, "every peer failed", LF_S("trunk", l->trunk->name), LF_S("reason", text));
	reason_value(reason, sizeof(reason), 503, text);
	b->st.calls_failed++;
	b->st.ended_by_us++;
	respond_a(c, 503, NULL, 0, text, reason);
	call_free(c, text);
}

/* Is a failure of leg B's current attempt one to try the next peer for?
 * Not once leg A has heard a 18x: the caller would hear ringing restart. */
static bool may_fail_over(const struct call *c)
{
	return c->state == CALL_CALLING && !c->relayed_18x && c->b.invite;
}

static void on_failover(evutil_socket_t fd, short what, void *arg)
{
	struct call *c = arg;
	char text[80];

	if (!may_fail_over(c) || c->b_heard)
		return;
	snprintf(text, sizeof(text), "no response within failover_timeout (%d s)",
		 c->b.trunk->failover_timeout);
	abandon(c);
	failover(c, text);
}

static void new_call(struct b2bua *b, struct txn *t, osip_message_t *req,
		     const struct txn_addr *from, struct config *cfg, const struct config_trunk *in)
{
	const struct config_route *rule = NULL;
	const struct config_trunk *out;
	const char *user = req->req_uri && req->req_uri->username ? req->req_uri->username : "";
	const char *sdp = NULL;
	size_t sdplen = 0;
	struct call *c = NULL;
	struct oa_result res;
	uint16_t ports[OA_MAX_STREAMS];
	char buf_why[700], cid[CALL_ID_MAX], *buf = NULL;
	unsigned nstreams;
	size_t used = SDP_MAX_BYTES; /* of buf to wipe */
	int status = 0, err;

	if (sipmsg_call_id(req, cid, sizeof(cid))) {
		reject(b, t, req, 400, "the Call-ID is too long", NULL);
		return;
	}
	/* libosip2 holds the user percent-decoded, as the rules want it */
	out = config_route_lookup(cfg, in, user, strlen(user), &rule);
	if (!out) {
		snprintf(buf_why, sizeof(buf_why), "no route from trunk %s for user '%.64s'",
			 in->name, user);
		reject(b, t, req, 404, buf_why, &b->st.rejected_no_route);
		return;
	}
	if (!health_trunk_usable(b->health, out)) {
		/* OPTIONS to us say 503 meanwhile */
		snprintf(buf_why, sizeof(buf_why), "every peer of trunk %s is down", out->name);
		refuse_no_peer(b, t, req, 503, buf_why);
		return;
	}
	if (!sipmsg_body(req, &sdp, &sdplen)) {
		sdp = NULL; /* late offer: leg B's 2xx will carry it */
		sdplen = 0;
	}
	/* Admission: a 503 without Retry-After refuses this call only. */
	if (cfg->global.max_calls > 0 && b->st.calls_active >= (unsigned)cfg->global.max_calls) {
		snprintf(buf_why, sizeof(buf_why), "max_calls (%d) reached", cfg->global.max_calls);
		reject(b, t, req, 503, buf_why, &b->st.rejected_admission);
		return;
	}
	for (int i = 0; i < 2; i++) {
		const struct config_trunk *tr = i ? out : in;

		if (tr->max_calls > 0 && trunk_calls(b, tr->name) >= (unsigned)tr->max_calls) {
			snprintf(buf_why, sizeof(buf_why), "max_calls (%d) of trunk %s reached",
				 tr->max_calls, tr->name);
			reject(b, t, req, 503, buf_why, &b->st.rejected_admission);
			return;
		}
	}
	/* a late offer's streams are not known yet: one pair a leg, and
	 * streams past it are offered to leg A disabled */
	nstreams = sdp ? count_m_lines(sdp, sdplen) : 1;
	if (nstreams == 0)
		nstreams = 1;
	if (nstreams > OA_MAX_STREAMS)
		nstreams = OA_MAX_STREAMS; /* oa_offer refuses more with its reason */
	if (!portpool_admit(b->pool, 4 * nstreams)) {
		reject(b, t, req, 503, "no free media ports", &b->st.rejected_admission);
		return;
	}

	c = calloc(1, sizeof(*c));
	buf = b->sdp;
	if (!c) {
		reject(b, t, req, 500, "out of memory", NULL);
		goto out;
	}
	c->b2b = b;
	new_id(c->id);
	c->cfg = config_ref(cfg);
	c->rule = rule ? rule->name : NULL;
	c->start_ms = now_ms();
	evtimer_assign(&c->retrans, b->base, on_retrans, c);
	evtimer_assign(&c->deadline, b->base, on_deadline, c);
	evtimer_assign(&c->ring, b->base, on_ring, c);
	evtimer_assign(&c->failover, b->base, on_failover, c);
	c->a.call_id = strdup(cid);
	c->b.call_id = malloc(29);
	if (!c->a.call_id || !c->b.call_id || leg_init(c, &c->a, true, in) ||
	    leg_init(c, &c->b, false, out)) {
		reject(b, t, req, 500, "out of memory", NULL);
		goto out;
	}
	new_b_call_id(c);
	c->a.dest = *from;
	err = dialog_create_uas(&c->a.dlg, req, c->a.tag);
	if (err) {
		reject(b, t, req, 400,
		       err == EBADMSG ? "the INVITE has no usable Contact"
				      : "the INVITE cannot make a dialog",
		       NULL);
		goto out;
	}
	err = media_session_create(&c->media, b->pool, b->relay, in->media_address,
				   out->media_address, nstreams);
	if (err) {
		reject(b, t, req, 503,
		       err == ENOSPC ? "no free media ports"
		       : err == EMFILE || err == ENFILE
			       ? "out of file descriptors for media sockets"
			       : "cannot open media sockets",
		       &b->st.rejected_admission);
		goto out;
	}
	media_session_ports(c->media, MEDIA_LEG_B, ports, OA_MAX_STREAMS);
	memset(&res, 0, sizeof(res));
	c->late_offer = !sdp;
	err = sdp ? oa_offer(c->a.oa, c->b.oa, (struct slice){ sdp, sdplen }, ports, OA_MAX_STREAMS,
			     buf, SDP_MAX_BYTES, &res)
		  : 0;
	if (!err && !res.status)
		used = res.len + 1;
	if (err || res.status) {
		reject(b, t, req, err ? 500 : res.status,
		       err ? "the offer could not be rewritten" : res.reason,
		       err ? NULL : &b->st.rejected_sdp);
		goto out;
	}
	if (sdp) {
		c->b_offer = malloc(res.len);
		if (!c->b_offer) {
			reject(b, t, req, 500, "out of memory", NULL);
			goto out;
		}
		memcpy(c->b_offer, buf, res.len);
		c->b_offer_len = res.len;
	}
	err = start_attempt(c, req, 0, &status, buf_why, sizeof(buf_why));
	if (err == ENOENT) {
		/* no peer could be sent to (names without an address, sends
		 * refused): the Reason they get when they fail one by one */
		refuse_no_peer(b, t, req, status, buf_why);
		goto out;
	}
	if (err) {
		reject(b, t, req, status, buf_why, NULL);
		goto out;
	}

	/* The call exists from here on. */
	c->a.invite = t;
	txn_set_data(t, &c->a);
	if (c->a.dest.conn)
		sipcore_conn_hold(b->sip, c->a.dest.conn);
	table_add(b, &c->a);
	table_add(b, &c->b);
	c->next = b->calls;
	if (b->calls)
		b->calls->prev = c;
	b->calls = c;
	for (int i = 0; i < 2; i++) {
		struct trunk_count *tc = count_for(b, i ? out->name : in->name);

		if (tc)
			tc->n++;
	}
	b->st.calls_active++;
	b->st.calls_started++;
	if (b->hooks.hold)
		b->hooks.hold(b->hooks.arg);
	LOG_INFO(c->id, "call started", LF_S("trunk_in", in->name), LF_S("trunk_out", out->name),
		 LF_S("route", c->rule ? c->rule : "trunk"), LF_S("call_id_a", c->a.call_id),
		 LF_S("call_id_b", c->b.call_id));
	c = NULL;
out:
	if (buf)
		OPENSSL_cleanse(buf, used < SDP_MAX_BYTES ? used : SDP_MAX_BYTES);
	if (c) {
		c->a.dest.conn = 0; /* held only once the call exists */
		leg_free(b, &c->a);
		leg_free(b, &c->b);
		media_session_destroy(c->media);
		if (c->b_offer)
			OPENSSL_cleanse(c->b_offer, c->b_offer_len);
		free(c->b_offer);
		config_unref(c->cfg);
		free(c);
	}
}

/* ---- media ---- */

/* The peer's media address for the relay: AF_UNSPEC (nowhere to send)
 * for port 0, an unspecified address (hold) or anything unreadable. */
static void media_addr(struct sockaddr_storage *ss, socklen_t *len, const char *ip, uint16_t port)
{
	*len = 0;
	if (port == 0 || strcmp(ip, "0.0.0.0") == 0 || strcmp(ip, "::") == 0 ||
	    addr_from_ip(ip, port, ss, len)) {
		memset(ss, 0, sizeof(*ss));
		*len = 0;
	}
}

/* A peer's new key takes effect with the answer (oa commits there): said
 * once per leg, with the streams (the epochs in srtpbridgectl have the rest;
 * no key, nor its fingerprint, goes to the log). */
static void log_rekeys(const struct call *c, const struct leg *from, const struct leg *to,
		       const struct oa_result *res)
{
	for (int i = 0; i < 2; i++) {
		const struct leg *l = i ? to : from;
		uint32_t mask = i ? res->to_rekeyed : res->from_rekeyed;
		struct oa_stream_info si;

		/* a first key is no change */
		for (size_t k = 0; k < OA_MAX_STREAMS; k++)
			if ((mask >> k & 1) && oa_leg_stream(l->oa, k, &si) == 0 &&
			    si.peer_epoch < 2)
				mask &= ~(1u << k);
		if (mask)
			LOG_INFO(c->id, "peer key changed", LF_S("leg", l->is_a ? "a" : "b"),
				 LF_U("streams", mask));
	}
}

/* Both legs' negotiated state, as the oa module holds it after an answer,
 * to the media worker. offerer's peer sent its key in offer_msg and got ours
 * in answer_msg; the other leg the other way round (the key epochs' record).
 * A refusal (a key libsrtp2 will not take, after our own checks took it)
 * leaves the old parameters: logged, the call goes on. */
static void sync_media(struct call *c, const struct leg *offerer, const char *offer_msg,
		       const char *answer_msg)
{
	struct relay_stream_params p[2][RELAY_MAX_STREAMS];
	size_t n = media_session_nstreams(c->media);
	int err;

	memset(p, 0, sizeof(p));
	for (int leg = 0; leg < 2; leg++) {
		const struct leg *l = leg ? &c->b : &c->a;

		for (size_t i = 0; i < n; i++) {
			struct relay_stream_params *q = &p[leg][i];
			struct oa_stream_info si;

			if (oa_leg_stream(l->oa, i, &si))
				continue;
			q->active = si.active;
			q->secure = si.secure && si.ours && si.peer;
			q->suite = si.suite;
			q->unencrypted_srtcp = si.unencrypted_srtcp;
			if (q->secure) {
				q->ours = *si.ours;
				q->peer = *si.peer;
			}
			media_addr(&q->rtp, &q->rtp_len, si.addr, si.port);
			media_addr(&q->rtcp, &q->rtcp_len, si.addr,
				   si.rtcp_mux ? si.port : si.rtcp_port);
			q->rtcp_mux = si.rtcp_mux;
			q->hold = si.hold;
			q->latching = l->trunk->media_latching;
			q->rekey_roc = l->trunk->rekey_roc;
			q->peer_msg = l == offerer ? offer_msg : answer_msg;
			q->our_msg = l == offerer ? answer_msg : offer_msg;
		}
	}
	err = media_session_update(c->media, p, n);
	OPENSSL_cleanse(p, sizeof(p));
	c->media_ms = now_ms();
	if (err)
		LOG_WARN(c->id, "the media relay refused the new parameters",
			 LF_S("error", strerror(err)));
}

/* ---- leg B's answers ---- */

/* The SDP of a response from leg B, rewritten for leg A. Returns 0 with *len
 * 0 when there is none, or the status to refuse with and why. */
static int answer_for_a_legs(struct call *c, struct leg *from, struct leg *to,
			     const osip_message_t *resp, char *buf, size_t *len, char *why,
			     size_t whysz);

static int answer_for_a(struct call *c, const osip_message_t *resp, char *buf, size_t *len,
			char *why, size_t whysz)
{
	return answer_for_a_legs(c, &c->b, &c->a, resp, buf, len, why, whysz);
}

/* The SDP answer in resp from leg `from`'s peer, rewritten for leg `to`. */
static int answer_for_a_legs(struct call *c, struct leg *from, struct leg *to,
			     const osip_message_t *resp, char *buf, size_t *len, char *why,
			     size_t whysz)
{
	const char *sdp;
	size_t n;
	uint16_t ports[OA_MAX_STREAMS];
	struct oa_result res;
	char answer_msg[8];
	int err;

	*len = 0;
	if (!sipmsg_body(resp, &sdp, &n))
		return 0;
	media_session_ports(c->media, to->is_a ? MEDIA_LEG_A : MEDIA_LEG_B, ports, OA_MAX_STREAMS);
	err = oa_answer(from->oa, to->oa, (struct slice){ sdp, n }, ports, OA_MAX_STREAMS, buf,
			SDP_MAX_BYTES, &res);
	if (err) {
		snprintf(why, whysz, "leg %s's answer could not be rewritten",
			 from->is_a ? "A" : "B");
		return 500;
	}
	if (res.status) {
		snprintf(why, whysz, "leg %s's answer is refused: %s", from->is_a ? "A" : "B",
			 res.reason);
		return res.status;
	}
	*len = res.len;
	log_rekeys(c, from, to, &res);
	snprintf(answer_msg, sizeof(answer_msg), "%d", sipmsg_status(resp));
	sync_media(c, to,
		   !c->ri.active  ? "INVITE"
		   : c->ri.invite ? "re-INVITE"
				  : "UPDATE",
		   answer_msg);
	return 0;
}

static void keep_answer(struct call *c, const char *sdp, size_t len)
{
	char *copy = malloc(len);

	if (!copy)
		return;
	memcpy(copy, sdp, len);
	if (c->a_answer)
		OPENSSL_cleanse(c->a_answer, c->a_answer_len);
	free(c->a_answer);
	c->a_answer = copy;
	c->a_answer_len = len;
}

static void b_provisional(struct call *c, osip_message_t *resp)
{
	int code = sipmsg_status(resp);
	char *buf = NULL, why[SDES_REASON_MAX + 64];
	size_t len = 0;
	int status;

	c->b_provisional = true;
	if (c->cancel_pending) {
		c->cancel_pending = false;
		if (send_cancel_b(c))
			txn_abort(c->b.invite);
		return;
	}
	if (c->state != CALL_CALLING)
		return;
	if (!c->ring_armed) {
		c->ring_armed = true;
		event_add(&c->ring, &(struct timeval){ .tv_sec = c->b.trunk->ring_timeout });
	}
	if (code == 100)
		return;	       /* leg A had its own at once */
	c->relayed_18x = true; /* from here on no failover: leg A hears this one */
	/* 12.1.2: an early dialog from a provisional response with a To tag */
	if (!c->b.dlg && sipmsg_to_tag(resp))
		dialog_create_uac(&c->b.dlg, txn_get_request(c->b.invite), resp);
	buf = c->b2b->sdp;
	/* late offer: an SDP in an unreliable 18x is not an offer we may answer */
	status = c->late_offer ? 0 : answer_for_a(c, resp, buf, &len, why, sizeof(why));
	if (status) {
		LOG_INFO(c->id, "early answer refused", LF_I("status", status),
			 LF_S("reason", why));
		c->b2b->st.rejected_sdp++;
		fail_call(c, status, why, status);
	} else {
		if (len) {
			keep_answer(c, buf, len);
			c->answered_early = true;
		}
		respond_a_src(c, resp, code, buf, len, NULL, NULL);
	}
	OPENSSL_cleanse(buf, status ? SDP_MAX_BYTES : len + 1);
}

/* Leg B's 2xx: ACKed at once, and each retransmission again (13.2.2.4). */
/* Our ACK in leg l's dialog of resp, the 2xx to the INVITE of client
 * transaction t: built (serialise is NULL) or serialised into *buf for the
 * retransmissions of that 2xx and sent. With serialise NULL it is returned
 * unsent in *held, for an answer that comes later (13.2.2.4: an offer in a
 * 2xx is answered in the ACK). 0 or an errno. */
static int build_ack(struct leg *l, struct txn *t, const osip_message_t *resp,
		     osip_message_t **held, char **buf, size_t *len)
{
	osip_message_t *ack = NULL;
	int err = dialog_ack(l->dlg, txn_get_request(t), resp, &ack);

	if (!err)
		err = add_via(ack, l->trunk, l->dest.transport);
	if (!err && held) {
		*held = ack;
		return 0;
	}
	if (!err)
		err = sipmsg_serialize(ack, buf, len);
	osip_message_free(ack);
	if (!err)
		txn_layer_send_buf(l->call->b2b->txn, *buf, *len, &l->dest);
	return err;
}

static void ack_b(struct call *c, struct txn *t, osip_message_t *resp)
{
	if (c->b.ack)
		txn_layer_send_buf(c->b2b->txn, c->b.ack, c->b.ack_len, &c->b.dest);
	else if (build_ack(&c->b, t, resp, NULL, &c->b.ack, &c->b.ack_len) == 0)
		c->b2b->st.acks_sent++;
}

/* A 2xx nobody wants (a second branch of a forking peer, a peer that woke
 * up after failover moved on): it gets its ACK and a BYE with reason, as
 * 13.2.2.4 asks, through a dialog of its own. t is the INVITE's client
 * transaction, sent to dest on trunk. */
static void ack_and_bye(struct b2bua *b, const struct config_trunk *trunk,
			const struct txn_addr *dest, struct txn *t, const osip_message_t *resp,
			const char *reason)
{
	struct dialog *d = NULL;
	osip_message_t *m = NULL;

	if (dialog_create_uac(&d, txn_get_request(t), resp))
		return;
	if (dialog_ack(d, txn_get_request(t), resp, &m) == 0 &&
	    add_via(m, trunk, dest->transport) == 0) {
		txn_layer_send(b->txn, m, dest);
		m = NULL;
	}
	osip_message_free(m);
	m = NULL;
	if (dialog_request(d, "BYE", &m) == 0 && add_via(m, trunk, dest->transport) == 0 &&
	    sipmsg_header_add(m, "Reason", reason) == 0) {
		txn_request(b->txn, m, dest, NULL, NULL);
		m = NULL;
	}
	osip_message_free(m);
	dialog_destroy(d);
}

static void ack_and_bye_stray(struct call *c, struct txn *t, osip_message_t *resp)
{
	char reason[REASON_MAX];

	reason_value(reason, sizeof(reason), 200, "a second answer to a call already answered");
	ack_and_bye(c->b2b, c->b.trunk, &c->b.dest, t, resp, reason);
}

static void answered(struct call *c);

/* The offer in resp, the 2xx of `from`'s peer to our INVITE without SDP
 * (client transaction t), rewritten for `to` into the scratch buffer (*len);
 * the ACK for it built without SDP into *held, to carry the answer later.
 * Returns true, or false with why the offer cannot be bridged: then the
 * ACK, if built, has gone as it is (an offer in a 2xx cannot be refused)
 * and the caller ends the call. */
static bool offer_in_2xx(struct call *c, struct leg *from, struct leg *to, struct txn *t,
			 const osip_message_t *resp, osip_message_t **held, size_t *len, char *why,
			 size_t whysz)
{
	const char *sdp = NULL;
	uint16_t ports[OA_MAX_STREAMS];
	struct oa_result res;
	size_t n = 0;
	int err;

	memset(&res, 0, sizeof(res));
	why[0] = '\0';
	if (build_ack(from, t, resp, held, NULL, NULL))
		snprintf(why, whysz, "the ACK for the answering leg could not be built");
	else if (!sipmsg_body(resp, &sdp, &n))
		snprintf(why, whysz, "a 2xx to an INVITE without SDP carries no SDP offer");
	if (!why[0]) {
		media_session_ports(c->media, to->is_a ? MEDIA_LEG_A : MEDIA_LEG_B, ports,
				    OA_MAX_STREAMS);
		err = oa_offer(from->oa, to->oa, (struct slice){ sdp, n }, ports, OA_MAX_STREAMS,
			       c->b2b->sdp, SDP_MAX_BYTES, &res);
		if (err || res.status)
			snprintf(why, whysz, "%s",
				 err ? "the offer could not be rewritten" : res.reason);
	}
	*len = res.len;
	if (!why[0])
		return true;
	OPENSSL_cleanse(c->b2b->sdp, SDP_MAX_BYTES);
	if (*held)
		txn_layer_send(c->b2b->txn, *held, &from->dest);
	*held = NULL;
	c->b2b->st.rejected_sdp++;
	return false;
}

/* Late offer: leg B's 2xx carries the offer. It is rewritten into our 2xx
 * to leg A; leg B's ACK is built now and sent with leg A's answer. */
static void b_2xx_offer(struct call *c, struct txn *t, osip_message_t *resp)
{
	char reason[REASON_MAX], why[SDES_REASON_MAX + 64];
	size_t len;
	int err;

	event_del(&c->ring);
	if (!offer_in_2xx(c, &c->b, &c->a, t, resp, &c->late_ack, &len, why, sizeof(why))) {
		reason_value(reason, sizeof(reason), 488, why);
		c->b2b->st.calls_failed++;
		c->b2b->st.ended_by_us++;
		respond_a(c, 488, NULL, 0, why, reason);
		send_in_dialog(&c->b, "BYE", reason, false);
		call_free(c, why);
		return;
	}
	err = respond_a_src(c, resp, sipmsg_status(resp), c->b2b->sdp, len, NULL, NULL);
	OPENSSL_cleanse(c->b2b->sdp, len + 1);
	if (err) {
		c->b2b->st.calls_failed++;
		txn_layer_send(c->b2b->txn, c->late_ack, &c->b.dest);
		c->late_ack = NULL;
		end_both(c, 500, "the 2xx could not be sent to leg A");
		return;
	}
	answered(c);
}

/* The ACK from `from`'s peer answers the offer `to`'s peer made in a 2xx:
 * the answer, rewritten, goes into the ACK held for `to` (taken), which is
 * kept in *buf for that 2xx's retransmissions and sent. An answer cannot be
 * refused (it came in an ACK): `to` then gets its ACK without SDP and both
 * legs a BYE with Reason 488. Returns false when the call has ended. */
static bool answer_in_ack(struct call *c, struct leg *from, struct leg *to, osip_message_t *held,
			  const osip_message_t *ack, char **buf, size_t *buflen)
{
	const char *sdp, *why = NULL;
	size_t len;
	uint16_t ports[OA_MAX_STREAMS];
	struct oa_result res;
	int err;

	memset(&res, 0, sizeof(res));
	if (!sipmsg_body(ack, &sdp, &len)) {
		why = "the ACK carries no SDP answer to the offer";
	} else {
		media_session_ports(c->media, to->is_a ? MEDIA_LEG_A : MEDIA_LEG_B, ports,
				    OA_MAX_STREAMS);
		err = oa_answer(from->oa, to->oa, (struct slice){ sdp, len }, ports, OA_MAX_STREAMS,
				c->b2b->sdp, SDP_MAX_BYTES, &res);
		why = err ? "the answer could not be rewritten" : res.status ? res.reason : NULL;
		if (!why) {
			log_rekeys(c, from, to, &res);
			sync_media(c, to, "200", "ACK");
		}
	}
	if (!why && sipmsg_set_body(held, "application/sdp", c->b2b->sdp, res.len))
		why = "out of memory";
	OPENSSL_cleanse(c->b2b->sdp, why ? SDP_MAX_BYTES : res.len + 1);
	if (!why && sipmsg_serialize(held, buf, buflen) == 0) {
		osip_message_free(held);
		txn_layer_send_buf(c->b2b->txn, *buf, *buflen, &to->dest);
		return true;
	}
	if (!why)
		why = "out of memory";
	sipmsg_set_body(held, NULL, NULL, 0);
	txn_layer_send(c->b2b->txn, held, &to->dest);
	LOG_INFO(c->id, "late answer refused", LF_S("reason", why));
	c->b2b->st.rejected_sdp++;
	end_both(c, 488, why);
	return false;
}

static void b_2xx(struct call *c, struct txn *t, osip_message_t *resp)
{
	const char *tag = sipmsg_to_tag(resp);
	char *buf = NULL, why[SDES_REASON_MAX + 64];
	size_t len = 0;
	int status;

	if (c->b.dlg && dialog_state(c->b.dlg) == DIALOG_CONFIRMED) {
		if (!dialog_matches(c->b.dlg, resp))
			ack_and_bye_stray(c, t, resp);
		else if (!c->late_ack)
			ack_b(c, t, resp); /* a retransmission; a late offer's ACK waits */
		return;
	}
	if (c->b.dlg && (!tag || !dialog_matches(c->b.dlg, resp))) {
		/* another branch answered than the one that rang */
		dialog_destroy(c->b.dlg);
		c->b.dlg = NULL;
	}
	if (c->b.dlg ? dialog_uac_confirm(c->b.dlg, resp)
		     : dialog_create_uac(&c->b.dlg, txn_get_request(t), resp)) {
		/* no usable Contact: no dialog to ACK or BYE in */
		LOG_INFO(c->id, "leg B's 2xx cannot make a dialog");
		fail_call(c, 502, "leg B answered with no usable Contact", 502);
		return;
	}
	if (c->late_offer && c->state != CALL_CANCELLING) {
		b_2xx_offer(c, t, resp);
		return;
	}
	ack_b(c, t, resp);
	event_del(&c->ring);
	if (c->state == CALL_CANCELLING) {
		/* 15: the 2xx crossed our CANCEL (or leg A is gone): end leg B */
		LOG_INFO(c->id, "leg B answered after leg A ended: BYE");
		c->b2b->st.ended_by_us++;
		send_in_dialog(&c->b, "BYE", c->cancel_reason, false);
		call_free(c, "leg B answered after the call was cancelled");
		return;
	}
	buf = c->b2b->sdp;
	status = answer_for_a(c, resp, buf, &len, why, sizeof(why));
	if (!status && !len && !c->answered_early) {
		status = 488;
		snprintf(why, sizeof(why), "leg B answered without SDP");
	}
	if (status) {
		char reason[REASON_MAX];

		LOG_INFO(c->id, "answer refused", LF_I("status", status), LF_S("reason", why));
		c->b2b->st.rejected_sdp++;
		c->b2b->st.calls_failed++;
		c->b2b->st.ended_by_us++;
		reason_value(reason, sizeof(reason), status, why);
		respond_a(c, status, NULL, 0, why, reason);
		send_in_dialog(&c->b, "BYE", reason, false);
		call_free(c, why);
		goto out;
	}
	/* one answer per offer: a 2xx without SDP repeats the early one */
	if (respond_a_src(c, resp, sipmsg_status(resp), len ? buf : c->a_answer,
			  len ? len : c->a_answer_len, NULL, NULL)) {
		c->b2b->st.calls_failed++;
		end_both(c, 500, "the 2xx could not be sent to leg A");
		goto out;
	}
	answered(c);
out:
	OPENSSL_cleanse(buf, status ? SDP_MAX_BYTES : len + 1);
}

/* Leg A has our 2xx: it is retransmitted until leg A's ACK (13.3.1.4). */
static void answered(struct call *c)
{
	dialog_set_state(c->a.dlg, DIALOG_CONFIRMED);
	c->state = CALL_ANSWERED;
	c->answer_ms = now_ms();
	c->b2b->st.calls_answered++;
	LOG_INFO(c->id, "call answered", LF_U("setup_ms", c->answer_ms - c->start_ms));
	if (c->a.dest.transport == SIP_TP_UDP) {
		c->a_2xx_ms = T1_MS;
		event_add(&c->retrans, &(struct timeval){ .tv_usec = T1_MS * 1000 });
	}
	event_add(&c->deadline, &(struct timeval){ .tv_sec = 64 * T1_MS / 1000 });
}

/* RFC 3261 leaves a B2BUA free in what it relays; a challenge is not relayed
 * as it came: it asks srtpbridge for credentials it does not have. */
static int map_failure(int code, const char **warning)
{
	*warning = NULL;
	if (code == 401 || code == 407) {
		*warning = "leg B asked srtpbridge for credentials; it has none";
		return 403;
	}
	return code;
}

/* A 3xx from leg B goes to leg A with its Contacts (the targets leg B
 * names on purpose) and its Reason: the carrier decides whether to follow
 * it; srtpbridge does not. */
static void redirect_a(struct call *c, const osip_message_t *resp)
{
	const char *reason = sipmsg_header_get(resp, "Reason", 0);
	osip_message_t *out = NULL;
	int err;

	if (!c->a.invite || sipmsg_response(&out, txn_get_request(c->a.invite), sipmsg_status(resp),
					    NULL, c->a.tag, NULL))
		return;
	err = reason ? sipmsg_header_add(out, "Reason", reason) : 0;
	for (int i = 0; !err && i < osip_list_size(&resp->contacts); i++) {
		osip_contact_t *ct = NULL;

		if (osip_contact_clone(osip_list_get(&resp->contacts, i), &ct) ||
		    osip_list_add(&out->contacts, ct, -1) < 0) {
			osip_contact_free(ct);
			err = ENOMEM;
		}
	}
	if (err)
		osip_message_free(out);
	else
		txn_respond(c->a.invite, out);
}

/* RFC 3263 4.3: a 503 with Retry-After takes its peer out for that long
 * (health.h caps it). */
static void note_retry_after(struct call *c, const osip_message_t *resp)
{
	const char *v = sipmsg_header_get(resp, "Retry-After", 0);
	char *end;
	unsigned long s;

	if (!v)
		return;
	s = strtoul(v, &end, 10);
	if (end != v && *v >= '0' && *v <= '9')
		health_retry_after(c->b2b->health, c->b.trunk, &c->b.trunk->peers[c->b.peer],
				   s > HEALTH_RETRY_AFTER_MAX ? HEALTH_RETRY_AFTER_MAX
							      : (unsigned)s);
}

static void b_failure(struct call *c, osip_message_t *resp)
{
	int code = sipmsg_status(resp), mapped;
	const char *warning, *reason = sipmsg_header_get(resp, "Reason", 0);
	char why[64];

	event_del(&c->ring);
	if (c->state == CALL_CANCELLING) {
		call_free(c, c->cancel_why);
		return;
	}
	if (may_fail_over(c) && (code == 408 || code == 500 || code == 503)) {
		if (code == 503)
			note_retry_after(c, resp);
		snprintf(why, sizeof(why), "answered %d", code);
		failover(c, why);
		return;
	}
	mapped = map_failure(code, &warning);
	c->b2b->st.calls_failed++;
	if (code >= 300 && code < 400)
		redirect_a(c, resp); /* relayed with its Contacts, not followed */
	else
		respond_a_src(c, resp, mapped, NULL, 0, warning, reason);
	snprintf(why, sizeof(why), "leg B answered %d", code);
	call_free(c, why);
}

static void b_invite_response(struct call *c, struct txn *t, osip_message_t *resp)
{
	int code = sipmsg_status(resp);

	event_del(&c->failover); /* the peer is alive: a 100 is enough */
	c->b_heard = true;
	if (code < 200)
		b_provisional(c, resp);
	else if (code < 300)
		b_2xx(c, t, resp);
	else
		b_failure(c, resp);
}

/* ---- requests from the legs ---- */

static struct leg *other(struct leg *l)
{
	return l->is_a ? &l->call->b : &l->call->a;
}

static void on_cancel(struct b2bua *b, struct txn *t, osip_message_t *req, struct leg *a)
{
	struct call *c = a->call;
	const char *reason = sipmsg_header_get(req, "Reason", 0);

	respond_plain(t, req, 200, a->tag, NULL);
	if (c->state != CALL_CALLING)
		return; /* 9.2: the INVITE has its final response already */
	LOG_INFO(c->id, "leg A cancelled the call");
	b->st.calls_failed++;
	respond_a(c, 487, NULL, 0, NULL, NULL);
	cancel_b(c, 487, "the caller cancelled", reason);
}

static void on_bye(struct b2bua *b, struct txn *t, osip_message_t *req, struct leg *l)
{
	struct call *c = l->call;
	struct leg *o = other(l);
	const char *reason = sipmsg_header_get(req, "Reason", 0);
	char text[64];

	respond_plain(t, req, 200, l->tag, NULL);
	dialog_set_state(l->dlg, DIALOG_TERMINATED);
	snprintf(text, sizeof(text), "BYE from leg %s", l->is_a ? "A" : "B");
	LOG_DEBUG(c->id, "BYE", LF_S("leg", l->is_a ? "a" : "b"));
	switch (c->state) {
	case CALL_CALLING:
		/* 15: the caller may end an early dialog with BYE */
		if (l->is_a) {
			b->st.calls_failed++;
			respond_a(c, 487, NULL, 0, NULL, NULL);
			cancel_b(c, 487, "the caller hung up before the answer", reason);
		}
		return;
	case CALL_ANSWERED:
		if (!l->is_a) {
			/* 15: no BYE to leg A before its ACK (or the 2xx times out) */
			snprintf(c->bye_reason, sizeof(c->bye_reason), "%s", reason ? reason : "");
			c->state = CALL_ENDING;
			return;
		}
		break;
	case CALL_ENDING:
		/* leg A hangs up before its ACK, after leg B did: nothing is left */
		if (l->is_a)
			call_free(c, text);
		return;
	case CALL_CANCELLING:
		return;
	case CALL_CONFIRMED:
		break;
	}
	send_in_dialog_from(o, "BYE", reason, false, req);
	call_free(c, text);
}

/* ---- re-INVITE and UPDATE with an offer (RFC 3261 14, RFC 3311) ---- */

/* A response to an in-dialog request of leg l's peer: our To tag is in it
 * already; a 2xx gets our Contact (a target refresh answers with one), Allow
 * and the SDP. warning and reason may be NULL. */
static void ri_done(struct call *c)
{
	c->ri.active = false;
	c->ri.awaiting_ack = false;
	c->ri.answered = false;
	c->ri.from = NULL;
	if (c->ri.server)
		txn_set_data(c->ri.server, NULL);
	c->ri.server = NULL;
	event_del(&c->retrans);
	event_del(&c->deadline);
}

/* Whether an offer (already refused by oa) asks for an image stream; the
 * SDP module's own reader, on this rare path. */
static bool has_image(const char *p, size_t n)
{
	static struct sdp sdp; /* 14 KiB: not on the stack; main thread only */
	char why[8];

	if (sdp_parse(&sdp, (struct slice){ p, n }, why, sizeof(why)))
		return false;
	for (size_t i = 0; i < sdp.nmedia; i++)
		if (slice_eq(sdp.media[i].media, "image"))
			return true;
	return false;
}

/* A switch to T.38 fax (m=image udptl) is not carried: 488 with Warning 304
 * "media type not available" (RFC 3261 20.43), so that the fax endpoint
 * falls back to G.711 pass-through, and the call goes on as it was. */
static void refuse_t38(struct leg *x, struct txn *t)
{
	osip_message_t *resp = NULL;

	if (sipmsg_response(&resp, txn_get_request(t), 488, NULL, x->tag, NULL))
		return;
	if (sipmsg_header_add(resp, "Warning",
			      "304 srtpbridge \"T.38 (m=image) is not relayed: the call goes on "
			      "as it was\"")) {
		osip_message_free(resp);
		return;
	}
	txn_respond(t, resp);
}

static void ri_start(struct call *c, struct txn *t, const osip_message_t *req, struct leg *x,
		     bool invite, bool late)
{
	c->ri.active = true;
	c->ri.invite = invite;
	c->ri.late = late;
	c->ri.from = x;
	c->ri.to = other(x);
	c->ri.server = t;
	c->ri.answered = false;
	sipmsg_cseq(req, &c->ri.cseq, NULL);
	free(c->ri.ack);
	c->ri.ack = NULL;
	osip_message_free(c->ri.late_ack);
	c->ri.late_ack = NULL;
	txn_set_data(t, x);
}

static void on_offerless(struct b2bua *b, struct txn *t, osip_message_t *req, struct leg *x)
{
	struct leg *y = other(x);
	osip_message_t *m = NULL;
	int err;

	err = leg_request(y, "INVITE", true, &m);
	if (!err)
		err = copy_timer(m, req);
	if (!err) {
		err = txn_request(b->txn, m, &y->dest, y, &x->call->ri.client);
		m = NULL; /* taken */
	}
	osip_message_free(m);
	if (err) {
		respond_leg(x, t, 500, NULL, 0, "the re-INVITE could not be sent to the other leg",
			    NULL);
		return;
	}
	ri_start(x->call, t, req, x, true, true);
	LOG_INFO(x->call->id, "offerless re-INVITE relayed",
		 LF_S("from", x->is_a ? "leg A" : "leg B"));
}

static void on_offer(struct b2bua *b, struct txn *t, osip_message_t *req, struct leg *x,
		     bool invite)
{
	struct call *c = x->call;
	struct leg *y = other(x);
	const char *sdp, *method = invite ? "INVITE" : "UPDATE";
	size_t len;
	uint16_t ports[OA_MAX_STREAMS];
	struct oa_result res;
	osip_message_t *m = NULL;
	int err;

	/* RFC 3261 14.2: a second INVITE from the same side before the first
	 * has its final response is 500 with a random Retry-After of 0..10 s */
	if (invite && c->ri.active && c->ri.invite && c->ri.from == x && !c->ri.answered) {
		osip_message_t *resp = NULL;
		unsigned char r = 0;
		char after[8];

		randpool_draw(&r, 1);
		snprintf(after, sizeof(after), "%u", r % 11);
		if (sipmsg_response(&resp, req, 500, NULL, x->tag,
				    "a re-INVITE of yours is still pending") == 0 &&
		    sipmsg_header_add(resp, "Retry-After", after) == 0)
			txn_respond(t, resp);
		else
			osip_message_free(resp);
		return;
	}
	/* RFC 3261 14.2 and RFC 3311 5.2: one offer at a time; a new one while
	 * ours or theirs is pending is glare */
	if (c->ri.active || c->state != CALL_CONFIRMED || !y->dlg ||
	    dialog_state(y->dlg) != DIALOG_CONFIRMED) {
		respond_leg(x, t, 491, NULL, 0, "an offer is already in progress on this call",
			    NULL);
		return;
	}
	if (!sipmsg_body(req, &sdp, &len)) {
		/* a re-INVITE without SDP (CUBE and Avaya on transfer) asks for an
		 * offer: the other leg's, in its 2xx, rewritten for this one */
		on_offerless(b, t, req, x);
		return;
	}
	if (count_m_lines(sdp, len) > media_session_nstreams(c->media)) {
		respond_leg(x, t, 488, NULL, 0,
			    "a new offer cannot add streams yet: the call goes on as it was", NULL);
		return;
	}
	media_session_ports(c->media, x->is_a ? MEDIA_LEG_B : MEDIA_LEG_A, ports, OA_MAX_STREAMS);
	err = oa_offer(x->oa, y->oa, (struct slice){ sdp, len }, ports, OA_MAX_STREAMS, b->sdp,
		       SDP_MAX_BYTES, &res);
	if (err || res.status) {
		OPENSSL_cleanse(b->sdp, SDP_MAX_BYTES);
		b->st.rejected_sdp++;
		if (!err && res.status == 488 && has_image(sdp, len))
			refuse_t38(x, t);
		else
			respond_leg(x, t, err ? 500 : res.status, NULL, 0,
				    err ? "the offer could not be rewritten" : res.reason, NULL);
		return;
	}
	err = leg_request(y, method, true, &m);
	if (!err)
		err = copy_timer(m, req);
	if (!err)
		err = sipmsg_set_body(m, "application/sdp", b->sdp, res.len);
	OPENSSL_cleanse(b->sdp, res.len + 1);
	if (!err) {
		err = txn_request(b->txn, m, &y->dest, y, &c->ri.client);
		m = NULL; /* taken */
	}
	osip_message_free(m);
	if (err) {
		oa_rollback(x->oa, y->oa);
		respond_leg(x, t, 500, NULL, 0, "the offer could not be sent to the other leg",
			    NULL);
		return;
	}
	ri_start(c, t, req, x, invite, false);
	LOG_INFO(c->id, "offer relayed", LF_S("method", method),
		 LF_S("from", x->is_a ? "leg A" : "leg B"));
}

/* The other leg answered our re-INVITE or UPDATE. */
static void ri_awaiting_ack(struct call *c)
{
	c->ri.awaiting_ack = true;
	if (c->ri.from->dest.transport == SIP_TP_UDP) {
		c->a_2xx_ms = T1_MS;
		event_add(&c->retrans, &(struct timeval){ .tv_usec = T1_MS * 1000 });
	}
	event_add(&c->deadline, &(struct timeval){ .tv_sec = 64 * T1_MS / 1000 });
}

/* The 2xx to an offerless re-INVITE carries the other leg's offer: into our
 * 2xx to the offerer; the other leg's ACK waits for the answer. */
static void ri_late_2xx(struct call *c, struct txn *t, osip_message_t *resp)
{
	struct leg *x = c->ri.from, *y = c->ri.to;
	char reason[REASON_MAX], why[SDES_REASON_MAX + 64];
	size_t len;

	dialog_refresh_target(y->dlg, resp);
	if (!offer_in_2xx(c, y, x, t, resp, &c->ri.late_ack, &len, why, sizeof(why))) {
		reason_value(reason, sizeof(reason), 488, why);
		respond_leg(x, c->ri.server, 488, NULL, 0, why, reason);
		ri_done(c);
		end_both(c, 488, why);
		return;
	}
	respond_leg_src(x, c->ri.server, resp, sipmsg_status(resp), c->b2b->sdp, len, NULL, NULL);
	OPENSSL_cleanse(c->b2b->sdp, len + 1);
	ri_awaiting_ack(c);
}

static void ri_response(struct call *c, struct txn *t, osip_message_t *resp)
{
	struct leg *x = c->ri.from, *y;
	int code = sipmsg_status(resp), mapped;
	char why[SDES_REASON_MAX + 64], reason[REASON_MAX];
	const char *warning;
	size_t len = 0;
	int status;

	if (code < 200)
		return; /* the offerer had its 100 already */
	if (code < 300 && c->ri.invite && c->ri.ack && (!c->ri.active || c->ri.answered)) {
		/* a retransmitted 2xx: our ACK again (13.2.2.4) */
		txn_layer_send_buf(c->b2b->txn, c->ri.ack, c->ri.ack_len, &c->ri.to->dest);
		return;
	}
	if (!c->ri.active || !x || c->ri.answered)
		return; /* a retransmission while our ACK waits for the offerer's answer */
	y = other(x);
	if (code >= 300) {
		/* RFC 3261 14.1: a refused re-INVITE leaves the session as it was */
		if (!c->ri.late)
			oa_rollback(x->oa, y->oa);
		mapped = map_failure(code, &warning);
		respond_leg_src(x, c->ri.server, resp, mapped, NULL, 0, warning,
				sipmsg_header_get(resp, "Reason", 0));
		LOG_INFO(c->id, "offer refused by the other leg", LF_I("status", code));
		ri_done(c);
		return;
	}
	c->ri.answered = true;
	if (c->ri.late) {
		ri_late_2xx(c, t, resp);
		return;
	}
	if (c->ri.invite)
		build_ack(y, t, resp, NULL, &c->ri.ack, &c->ri.ack_len);
	dialog_refresh_target(y->dlg, resp); /* 12.2.1.2: a 2xx's Contact, when there is one */
	status = answer_for_a_legs(c, y, x, resp, c->b2b->sdp, &len, why, sizeof(why));
	if (!status && !len) {
		status = 488;
		snprintf(why, sizeof(why), "the answer to a re-offer has no SDP");
	}
	if (status) {
		/* the other leg has moved to a session we cannot bridge */
		OPENSSL_cleanse(c->b2b->sdp, SDP_MAX_BYTES);
		reason_value(reason, sizeof(reason), status, why);
		respond_leg(x, c->ri.server, status, NULL, 0, why, reason);
		ri_done(c);
		c->b2b->st.rejected_sdp++;
		end_both(c, status, why);
		return;
	}
	respond_leg_src(x, c->ri.server, resp, code, c->b2b->sdp, len, NULL, NULL);
	OPENSSL_cleanse(c->b2b->sdp, len + 1);
	if (!c->ri.invite) {
		ri_done(c);
		return;
	}
	ri_awaiting_ack(c);
}

/* Our re-INVITE or UPDATE got no answer (timeout, transport): the offerer
 * gets the failure and the session stays as it was. */
static void ri_failed(struct call *c, int status, const char *why)
{
	struct leg *x = c->ri.from;
	if (!c->ri.active || !x || c->ri.answered)
		return;
	if (!c->ri.late)
		oa_rollback(x->oa, other(x)->oa);
	respond_leg(x, c->ri.server, status, NULL, 0, why, NULL);
	ri_done(c);
}

/* ---- other requests within a call ---- */

/* Headers of an in-dialog request or its response that mean something to
 * the far end and nothing of the topology: what they carry is the body's. */
static const char *const relayed_headers[] = { "Event", "Subscription-State", "Info-Package",
					       "Reason" };

static int copy_payload(osip_message_t *to, const osip_message_t *from)
{
	const char *body;
	size_t len;
	char *ct = NULL;
	int err = 0;

	for (size_t i = 0; i < sizeof(relayed_headers) / sizeof(relayed_headers[0]) && !err; i++) {
		const char *v;

		for (unsigned k = 0; (v = sipmsg_header_get(from, relayed_headers[i], k)) && !err;
		     k++)
			err = sipmsg_header_add(to, relayed_headers[i], v);
	}
	if (err || !sipmsg_body(from, &body, &len))
		return err;
	if (!from->content_type || osip_content_type_to_str(from->content_type, &ct) != 0)
		return EBADMSG;
	err = sipmsg_set_body(to, ct, body, len);
	osip_free(ct);
	return err;
}

static struct fwd *fwd_of(struct call *c, const struct txn *t)
{
	for (struct fwd *r = c->fwds; r; r = r->next)
		if (r->client == t || r->server == t)
			return r;
	return NULL;
}

static void fwd_drop(struct call *c, struct fwd *r)
{
	for (struct fwd **p = &c->fwds; *p; p = &(*p)->next)
		if (*p == r) {
			*p = r->next;
			break;
		}
	cut_loose(r->server);
	cut_loose(r->client);
	free(r);
}

/* REFER (a blind transfer, what an IVR does most) crosses with Refer-To
 * rewritten: the target's user at srtpbridge's own address on the other leg,
 * so that the transferee's new INVITE comes back through srtpbridge and its
 * routes, and nothing of the referrer's topology reaches it. A Refer-To
 * without a user, or with embedded headers (Replaces: an attended transfer),
 * is refused. Referred-By is not passed. Returns 0, or the status to refuse
 * with and why. */
static int refer_to(struct leg *y, const osip_message_t *req, osip_message_t *m, const char **why)
{
	const char *v = sipmsg_header_get(req, "Refer-To", 0);
	const char *u, *at;
	char user[128], target[400];
	size_t n;

	if (!v)
		v = sipmsg_header_get(req, "r", 0);
	if (!v) {
		*why = "REFER without Refer-To";
		return 400;
	}
	size_t skip = 4;

	u = strcasestr(v, "sip:");
	if (!u && (u = strcasestr(v, "sips:")) != NULL)
		skip = 5;
	at = u ? strchr(u + skip, '@') : NULL;
	if (!u || !at || strchr(v, '?')) {
		*why = "only a blind transfer to a user (Refer-To sip:USER@...) is relayed";
		return 501;
	}
	n = (size_t)(at - (u + skip));
	if (n == 0 || n >= sizeof(user)) {
		*why = "the Refer-To user is empty or too long";
		return 400;
	}
	memcpy(user, u + skip, n);
	user[n] = '\0';
	if (legb_contact(target, sizeof(target), y->trunk, y->dest.transport, user)) {
		*why = "the Refer-To user cannot go in a SIP URI as it is";
		return 400;
	}
	if (sipmsg_header_add(m, "Refer-To", target)) {
		*why = "out of memory";
		return 500;
	}
	return 0;
}

static void on_forward(struct b2bua *b, struct txn *t, osip_message_t *req, struct leg *x)
{
	struct call *c = x->call;
	struct leg *y = other(x);
	const char *method = sipmsg_method(req);
	osip_message_t *m = NULL;
	struct fwd *r;
	int err;

	if (!y->dlg || dialog_state(y->dlg) == DIALOG_TERMINATED) {
		respond_plain(t, req, 481, x->tag, "the other leg of this call has no dialog");
		return;
	}
	r = calloc(1, sizeof(*r));
	err = r ? leg_request(y, method, false, &m) : ENOMEM;
	if (!err)
		err = copy_payload(m, req);
	if (!err)
		err = copy_timer(m, req);
	if (!err && strcmp(method, "REFER") == 0) {
		const char *why = NULL;
		int status = refer_to(y, req, m, &why);

		if (status) {
			osip_message_free(m);
			free(r);
			respond_plain(t, req, status, x->tag, why);
			return;
		}
	}
	if (!err) {
		err = txn_request(b->txn, m, &y->dest, y, &r->client);
		m = NULL; /* taken */
	}
	osip_message_free(m);
	if (err) {
		free(r);
		respond_plain(t, req, 500, x->tag, "the request could not be relayed");
		return;
	}
	r->from = x;
	r->server = t;
	r->next = c->fwds;
	c->fwds = r;
	txn_set_data(t, x);
	LOG_DEBUG(c->id, "request relayed", LF_S("method", method),
		  LF_S("from", x->is_a ? "leg A" : "leg B"));
}

static void fwd_response(struct call *c, struct fwd *r, osip_message_t *resp)
{
	int code = sipmsg_status(resp), mapped;
	const char *warning;
	osip_message_t *out = NULL;

	if (code < 200 || !r->server)
		return;
	mapped = map_failure(code, &warning);
	if (sipmsg_response(&out, txn_get_request(r->server), mapped, NULL, r->from->tag,
			    warning) == 0) {
		if (copy_payload(out, resp) == 0 && copy_timer(out, resp) == 0)
			txn_respond(r->server, out);
		else
			osip_message_free(out);
	}
	fwd_drop(c, r);
}

static void fwd_failed(struct call *c, struct fwd *r, int status, const char *why)
{
	if (r->server)
		respond_plain(r->server, txn_get_request(r->server), status, r->from->tag, why);
	fwd_drop(c, r);
}

static void on_ack(struct b2bua *b, osip_message_t *req)
{
	struct leg *l = table_find(b, req);
	struct call *c;
	uint32_t n = 0;

	if (!l)
		return; /* an ACK for a call gone */
	c = l->call;
	if (c->ri.awaiting_ack && c->ri.from == l && sipmsg_cseq(req, &n, NULL) == 0 &&
	    n == c->ri.cseq) {
		if (c->ri.late_ack) {
			osip_message_t *held = c->ri.late_ack;

			c->ri.late_ack = NULL;
			if (!answer_in_ack(c, c->ri.from, c->ri.to, held, req, &c->ri.ack,
					   &c->ri.ack_len))
				return;
		}
		ri_done(c);
		LOG_DEBUG(c->id, "the 2xx of a re-INVITE was acknowledged");
		return;
	}
	if (!l->is_a)
		return; /* we sent no other 2xx on leg B */
	if (c->state != CALL_ANSWERED && c->state != CALL_ENDING)
		return; /* a retransmitted ACK */
	event_del(&c->retrans);
	event_del(&c->deadline);
	if (c->late_ack && c->state == CALL_ANSWERED) {
		osip_message_t *held = c->late_ack;

		c->late_ack = NULL;
		if (!answer_in_ack(c, &c->a, &c->b, held, req, &c->b.ack, &c->b.ack_len))
			return;
		c->b2b->st.acks_sent++;
	}
	if (c->state == CALL_ENDING) {
		send_in_dialog(&c->a, "BYE", c->bye_reason[0] ? c->bye_reason : NULL, false);
		call_free(c, "BYE from leg B");
		return;
	}
	c->state = CALL_CONFIRMED;
	LOG_DEBUG(c->id, "leg A acknowledged the 2xx");
}

/* OPTIONS outside a dialog: a carrier's or load balancer's ping of us, so
 * the answer tells whether a call on this trunk could go anywhere: 503
 * while draining or while no trunk behind this one has a usable peer (a
 * 200 regardless sends calls that fail; the complaint about FreeSWITCH);
 * otherwise sipcore's 200 with Allow and Accept. */
static bool options_outside(struct b2bua *b, struct txn *t, const osip_message_t *req,
			    const struct config *cfg, const struct config_trunk *trunk)
{
	char why[160];

	if (!trunk)
		return false;
	if (b->draining) {
		respond_plain(t, req, 503, NULL, "srtpbridge is draining: no new calls");
		return true;
	}
	if (health_route_ok(b->health, cfg, trunk))
		return false;
	snprintf(why, sizeof(why), "no usable peer behind trunk %s: calls would fail", trunk->name);
	respond_plain(t, req, 503, NULL, why);
	return true;
}

static bool tu_request(void *arg, struct txn *t, osip_message_t *req, const struct txn_addr *from,
		       struct config *cfg, const struct config_trunk *trunk)
{
	struct b2bua *b = arg;
	const char *m = sipmsg_method(req);
	struct leg *l;
	const char *why = NULL;
	int status = 0;

	if (!t) {
		on_ack(b, req);
		return true;
	}
	if (strcmp(m, "CANCEL") == 0) {
		struct txn *inv = txn_find_invite_for_cancel(b->txn, req);
		struct leg *a = inv ? txn_get_data(inv) : NULL;

		if (!a)
			return false;
		on_cancel(b, t, req, a);
		return true;
	}
	if (!sipmsg_to_tag(req)) {
		if (strcmp(m, "OPTIONS") == 0)
			return options_outside(b, t, req, cfg, trunk);
		if (strcmp(m, "INVITE") != 0)
			return false;
		if (!trunk) {
			respond_plain(t, req, 500, NULL, "no inbound trunk");
			return true;
		}
		if (b->draining) {
			respond_plain(t, req, 503, NULL, "srtpbridge is draining: no new calls");
			return true;
		}
		if (merged_request(b, req)) {
			respond_plain(t, req, 482, NULL,
				      "this INVITE is already a call here (merged request)");
			return true;
		}
		new_call(b, t, req, from, cfg, trunk);
		return true;
	}
	l = table_find(b, req);
	if (!l || !l->dlg)
		return false;
	if (dialog_check_request(l->dlg, req, &status, &why)) {
		respond_plain(t, req, status, l->tag, why);
		return true;
	}
	if (strcmp(m, "BYE") == 0)
		on_bye(b, t, req, l);
	else if (strcmp(m, "UPDATE") == 0 && osip_list_size(&req->bodies) == 0 &&
		 !l->call->ri.active)
		on_forward(b, t, req, l); /* a session refresh: no offer, nothing to rewrite */
	else if (strcmp(m, "INVITE") == 0 || strcmp(m, "UPDATE") == 0)
		on_offer(b, t, req, l, strcmp(m, "INVITE") == 0);
	else if (strcmp(m, "INFO") == 0 || strcmp(m, "NOTIFY") == 0 || strcmp(m, "MESSAGE") == 0 ||
		 strcmp(m, "OPTIONS") == 0 || strcmp(m, "REFER") == 0)
		on_forward(b, t, req, l); /* OPTIONS in a dialog: the far end answers */
	else
		respond_plain(t, req, 501, l->tag, "this request is not relayed within a call yet");
	return true;
}

/* ---- the transaction layer's news ---- */

/* A late response to an abandoned attempt: a provisional means the INVITE
 * is alive, so it is cancelled (9.1: not before one); a 2xx, crossing that
 * CANCEL or not, is ACKed and BYEd. */
static void attempt_response(struct attempt *a, struct txn *t, osip_message_t *resp)
{
	int code = sipmsg_status(resp);

	if (t != a->invite)
		return; /* the CANCEL's 200 */
	if (code < 200 && !a->cancel) {
		LOG_INFO(a->id, "a peer left behind by failover woke up: CANCEL",
			 LF_S("trunk", a->trunk->name), LF_I("status", code));
		if (send_cancel(a->b2b, t, a->reason, &a->dest, a, &a->cancel))
			txn_abort(t); /* terminated() frees a */
	} else if (code >= 200 && code < 300) {
		LOG_INFO(a->id, "a peer left behind by failover answered: ACK and BYE",
			 LF_S("trunk", a->trunk->name));
		ack_and_bye(a->b2b, a->trunk, &a->dest, t, resp, a->reason);
	}
}

static void attempt_terminated(struct attempt *a, struct txn *t)
{
	if (t == a->invite)
		a->invite = NULL;
	if (t == a->cancel)
		a->cancel = NULL;
	if (!a->invite && !a->cancel)
		attempt_free(a);
}

static bool is_attempt(const void *data)
{
	return *(const enum tu_kind *)data == TU_ATTEMPT;
}

static void tu_response(void *arg, struct txn *t, osip_message_t *resp)
{
	struct b2bua *b = arg;
	void *data = txn_get_data(t);
	struct leg *l = data;
	struct fwd *r;

	if (!data)
		return;
	if (data == health_txn_tag(b->health)) {
		health_txn_response(b->health, t, resp);
		return;
	}
	if (is_attempt(data)) {
		attempt_response(data, t, resp);
		return;
	}
	if ((r = fwd_of(l->call, t)) != NULL && r->client == t)
		fwd_response(l->call, r, resp);
	else if (t == l->call->ri.client)
		ri_response(l->call, t, resp);
	else if (!l->is_a && t == l->invite)
		b_invite_response(l->call, t, resp);
}

/* A 2xx retransmission of leg B after its transaction ended (RFC 6026
 * Timer M): it still needs our ACK. */
static void tu_stray_response(void *arg, osip_message_t *resp, const struct txn_addr *from)
{
	struct b2bua *b = arg;
	struct leg *l;
	const char *method = NULL;
	uint32_t n;

	if (sipmsg_status(resp) < 200 || sipmsg_status(resp) >= 300 ||
	    sipmsg_cseq(resp, &n, &method) || strcmp(method, "INVITE") != 0)
		return;
	l = table_find(b, resp);
	if (l && !l->is_a && l->ack)
		txn_layer_send_buf(b->txn, l->ack, l->ack_len, &l->dest);
}

static void leg_b_gone(struct call *c, int status, const char *warning, int cause)
{
	if (c->state == CALL_CANCELLING) {
		call_free(c, c->cancel_why);
		return;
	}
	if (c->state != CALL_CALLING)
		return;
	fail_call(c, status, warning, cause);
}

/* Our client transaction t got no response (status 408, err ETIMEDOUT) or
 * lost its transport (503, err): whoever waits for it gets that status;
 * leg B's INVITE tries the next peer while it may. */
static void client_failed(struct b2bua *b, struct txn *t, int status, int err)
{
	void *data = txn_get_data(t);
	struct leg *l = data;
	struct fwd *r;
	char name[300], text[400];

	if (!data)
		return;
	if (data == health_txn_tag(b->health)) {
		health_txn_failed(b->health, t, err);
		return;
	}
	if (is_attempt(data))
		return; /* terminated() follows */
	if ((r = fwd_of(l->call, t)) != NULL && r->client == t) {
		fwd_failed(l->call, r, status,
			   status == 408 ? "the other leg did not answer"
					 : "the other leg cannot be reached");
		return;
	}
	if (t == l->call->ri.client) {
		ri_failed(l->call, status,
			  status == 408 ? "the other leg did not answer the offer"
					: "the other leg cannot be reached");
		return;
	}
	if (l->is_a || t != l->invite)
		return;
	config_uri_format(&l->trunk->peers[l->peer], name, sizeof(name));
	if (status == 408)
		snprintf(text, sizeof(text), "no response from %s of trunk %s", name,
			 l->trunk->name);
	else
		snprintf(text, sizeof(text), "cannot reach %s of trunk %s: %s", name,
			 l->trunk->name, strerror(err));
	if (may_fail_over(l->call)) {
		failover(l->call, status == 408 ? "no response" : strerror(err));
		return;
	}
	leg_b_gone(l->call, status, text, status);
}

static void tu_timeout(void *arg, struct txn *t, enum txn_timer_id which)
{
	client_failed(arg, t, 408, ETIMEDOUT);
}

static void tu_transport_error(void *arg, struct txn *t, int err)
{
	client_failed(arg, t, 503, err);
}

static void tu_terminated(void *arg, struct txn *t)
{
	struct b2bua *b = arg;
	void *data = txn_get_data(t);
	struct leg *l = data;
	struct fwd *r;

	if (!data)
		return;
	if (data == health_txn_tag(b->health)) {
		health_txn_terminated(b->health, t);
		return;
	}
	if (is_attempt(data)) {
		attempt_terminated(data, t);
		return;
	}
	if ((r = fwd_of(l->call, t)) != NULL) {
		if (r->client == t)
			r->client = NULL;
		else
			r->server = NULL;
		if (!r->client && !r->server)
			fwd_drop(l->call, r);
		return;
	}
	if (t == l->call->ri.client)
		l->call->ri.client = NULL;
	if (t == l->call->ri.server) {
		l->call->ri.server = NULL; /* its 2xx can no longer be resent */
		return;
	}
	if (t == l->cancel)
		l->cancel = NULL;
	if (t != l->invite)
		return;
	l->invite = NULL;
	/* leg B's INVITE ended with no final response we acted on (aborted
	 * after a CANCEL that was never answered) */
	if (!l->is_a && l->call->state == CALL_CANCELLING)
		call_free(l->call, "leg B never answered the CANCEL");
}

/* ---- life ---- */

/* A key that reached the lifetime its a=crypto signalled (libsrtp2 knows
 * only its own 2^48 limit): said once, counted. srtpbridge goes on with it;
 * a re-INVITE with a new key before then is the operator's tool
 * (docs/media.md). */
static void note_lifetimes(struct call *c)
{
	struct relay_session *rs = media_session_relay(c->media);
	struct relay_epoch e;
	size_t i;
	int leg;

	while (relay_session_lifetime_news(rs, &leg, &i, &e)) {
		c->b2b->st.key_lifetimes_reached++;
		LOG_WARN(c->id, "an SRTP key reached its signalled lifetime",
			 LF_S("leg", leg ? "b" : "a"), LF_U("stream", i),
			 LF_S("key", e.dir == RELAY_IN ? "peer" : "ours"), LF_U("epoch", e.n),
			 LF_U("lifetime", e.lifetime), LF_U("packets", e.packets),
			 LF_S("fingerprint", e.fingerprint));
	}
}

/* The media timeout (DESIGN.md): a call whose legs have both been silent,
 * no RTP or RTCP either way, for media_timeout s (media_timeout_hold while
 * a leg holds) is over, whatever signalling says: a BYE lost with a dead
 * peer would otherwise keep its ports for ever. Counted from the last
 * packet, the answer or the last media change, whichever is newest.
 *
 * Each call is looked at about once a second, a tenth of them every
 * 100 ms: a whole pass reads counters that the media workers write (0.8 ms
 * a 1000 calls, measured), and the main thread, which a media worker may
 * share a core with, must not hold SIP or that worker's packets that long
 * at once. */
static void sweep_call(struct call *c, uint64_t now)
{
	const struct relay_session *rs;
	bool hold;
	int limit;
	uint64_t last;
	char text[120];

	if (!c->media)
		return;
	note_lifetimes(c);
	if (c->state != CALL_CONFIRMED)
		return;
	rs = media_session_relay(c->media);
	hold = relay_session_on_hold(rs);
	limit = hold ? c->cfg->global.media_timeout_hold : c->cfg->global.media_timeout;
	if (limit <= 0)
		return;
	last = relay_session_last_rx_ms(rs);
	if (last < c->answer_ms)
		last = c->answer_ms;
	if (last < c->media_ms)
		last = c->media_ms;
	/* a worker's clock reading may be newer than ours */
	if (last >= now || now - last < (uint64_t)limit * 1000u)
		return;
	snprintf(text, sizeof(text), "%s: no RTP or RTCP from either leg for %d s",
		 hold ? "media_timeout_hold" : "media_timeout", limit);
	LOG_INFO(c->id, "media timeout", LF_I("seconds", limit), LF_S("hold", hold ? "yes" : "no"));
	c->b2b->st.media_timeouts++;
	end_both(c, 408, text);
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct b2bua *b = arg;
	uint64_t now = now_ms();
	unsigned n = b->st.calls_active / SWEEP_SLICES + 1;

	if (!b->sweep_at)
		b->sweep_at = b->calls;
	/* the cursor moves before the call is looked at: ending it (or any
	 * other call) moves the cursor on from a call that goes */
	while (b->sweep_at && n--) {
		struct call *c = b->sweep_at;

		b->sweep_at = c->next;
		sweep_call(c, now);
	}
}

int b2bua_create(struct b2bua **out, struct event_base *base, struct sipcore *sip,
		 struct portpool *pool, struct relay *relay, struct config *cfg,
		 const struct b2bua_hooks *hooks)
{
	struct b2bua *b = calloc(1, sizeof(*b));
	const struct sipcore_tu tu = {
		.request = tu_request,
		.response = tu_response,
		.stray_response = tu_stray_response,
		.timeout = tu_timeout,
		.transport_error = tu_transport_error,
		.terminated = tu_terminated,
		.arg = b,
	};

	if (!b)
		return ENOMEM;
	b->table = calloc(NBUCKETS, sizeof(*b->table));
	b->sdp = malloc(SDP_MAX_BYTES);
	if (!b->table || !b->sdp || health_create(&b->health, base, sip, cfg)) {
		free(b->table);
		free(b->sdp);
		free(b);
		return ENOMEM;
	}
	b->base = base;
	b->sip = sip;
	b->txn = sipcore_txn(sip);
	b->pool = pool;
	b->relay = relay;
	if (hooks)
		b->hooks = *hooks;
	event_assign(&b->sweep, base, -1, EV_PERSIST, on_sweep, b);
	event_add(&b->sweep, &(struct timeval){ .tv_usec = SWEEP_MS * 1000 });
	sipcore_set_tu(sip, &tu);
	*out = b;
	return 0;
}

/* The process is going (drain_timeout, or a stop): each call is ended the
 * way srtpbridge ends calls, with a Reason, as far as one pass of sends
 * allows; nothing waits for the answers. */
static void end_at_exit(struct call *c)
{
	static const char text[] = "srtpbridge stopped";
	char reason[REASON_MAX];

	reason_value(reason, sizeof(reason), 503, text);
	c->b2b->st.ended_by_us++;
	switch (c->state) {
	case CALL_CALLING:
		respond_a(c, 503, NULL, 0, text, reason);
		snprintf(c->cancel_reason, sizeof(c->cancel_reason), "%s", reason);
		if (c->b_provisional)
			send_cancel_b(c);
		break;
	case CALL_CANCELLING:
		break;
	case CALL_ENDING:
		send_in_dialog(&c->a, "BYE", reason, false);
		break;
	case CALL_ANSWERED:
	case CALL_CONFIRMED:
		send_in_dialog(&c->a, "BYE", reason, false);
		send_in_dialog(&c->b, "BYE", reason, false);
		break;
	}
	call_free(c, text);
}

void b2bua_destroy(struct b2bua *b)
{
	if (!b)
		return;
	while (b->calls)
		end_at_exit(b->calls);
	while (b->attempts)
		attempt_free(b->attempts);
	event_del(&b->sweep);
	health_destroy(b->health);
	sipcore_set_tu(b->sip, NULL);
	for (size_t i = 0; i < b->ncounts; i++)
		free(b->counts[i].name);
	free(b->counts);
	free(b->table);
	OPENSSL_cleanse(b->sdp, SDP_MAX_BYTES);
	free(b->sdp);
	free(b);
}

void b2bua_drain(struct b2bua *b)
{
	b->draining = true;
}

int b2bua_reload(struct b2bua *b, struct config *cfg)
{
	return health_reload(b->health, cfg);
}

void b2bua_get_stats(const struct b2bua *b, struct b2bua_stats *out)
{
	*out = b->st;
}

/* ---- srtpbridgectl ---- */

/* How long ago a worker's clock reading was: 0 if it read the clock after
 * we did. */
static uint64_t ago_ms(uint64_t then)
{
	uint64_t now = now_ms();

	return then < now ? now - then : 0;
}

static void ctl_counts(struct control_out *o, const char *key, const struct relay_counts *c,
		       enum relay_dir dir)
{
	control_out_begin_object(o, key);
	control_out_uint(o, "packets", c->packets);
	control_out_uint(o, "bytes", c->bytes);
	if (dir == RELAY_IN) {
		control_out_uint(o, "auth_fail", c->auth_fail);
		control_out_uint(o, "replay_fail", c->replay_fail);
		control_out_uint(o, "cant_check", c->cant_check);
		control_out_uint(o, "unexpected_source", c->unexpected_source);
		control_out_uint(o, "recovered", c->recovered);
		control_out_uint(o, "late", c->late);
	}
	control_out_uint(o, "errors", c->errors);
	if (c->last_ms)
		control_out_uint(o, "last_ms_ago", ago_ms(c->last_ms));
	control_out_end_object(o);
}

/* The key epochs of stream i on a leg, both directions, oldest first:
 * which message brought each key, its suite, MKI and lifetime, a
 * fingerprint (never the key), and what was heard under it. */
static void ctl_epochs(const struct call *c, enum media_leg side, size_t i, struct control_out *o)
{
	static const char *const rocs[] = { "unknown", "continued", "reset" };
	const struct relay_session *rs = media_session_relay(c->media);
	size_t n = relay_session_epochs(rs, side, i, NULL, 0);
	struct relay_epoch *v = n ? calloc(n, sizeof(*v)) : NULL;

	control_out_begin_array(o, "key_epochs");
	if (v)
		relay_session_epochs(rs, side, i, v, n);
	for (size_t k = 0; v && k < n; k++) {
		control_out_begin_object(o, NULL);
		control_out_uint(o, "n", v[k].n);
		control_out_str(o, "key", v[k].dir == RELAY_IN ? "peer" : "ours");
		control_out_str(o, "message", v[k].message);
		control_out_uint(o, "seconds_ago", ago_ms(v[k].at_ms) / 1000u);
		control_out_str(o, "suite", suite_name(v[k].suite));
		control_out_uint(o, "tag_bytes", v[k].tag_len);
		if (v[k].has_mki) {
			control_out_uint(o, "mki", v[k].mki);
			control_out_uint(o, "mki_bytes", v[k].mki_len);
		}
		if (v[k].lifetime)
			control_out_uint(o, "lifetime", v[k].lifetime);
		control_out_str(o, "fingerprint", v[k].fingerprint);
		if (v[k].first_ms)
			control_out_uint(o, "first_packet_seconds_ago",
					 ago_ms(v[k].first_ms) / 1000u);
		control_out_uint(o, "packets", v[k].packets);
		control_out_bool(o, "in_use", v[k].in_use);
		if (v[k].dir == RELAY_IN)
			control_out_str(o, "peer_roc", rocs[v[k].roc]);
		control_out_end_object(o);
	}
	control_out_end_array(o);
	free(v);
}

/* The packets of stream i on a leg, RTP and RTCP, each way. */
static void ctl_stream_counts(const struct call *c, enum media_leg side, size_t i,
			      struct control_out *o)
{
	static const char *const names[2][2] = { { "rtp_in", "rtp_out" },
						 { "rtcp_in", "rtcp_out" } };
	struct relay_counts rc;

	for (int k = 0; k < 2; k++)
		for (int d = 0; d < 2; d++) {
			relay_session_counts(media_session_relay(c->media), side, i, k, d, &rc);
			ctl_counts(o, names[k][d], &rc, d);
		}
}

static void ctl_leg(const struct call *c, const struct leg *l, enum media_leg side,
		    struct control_out *o)
{
	struct oa_stream_info si;

	control_out_begin_object(o, side == MEDIA_LEG_A ? "leg_a" : "leg_b");
	control_out_str(o, "trunk", l->trunk->name);
	control_out_str(o, "call_id", l->call_id);
	control_out_str(o, "dialog",
			!l->dlg					   ? "none"
			: dialog_state(l->dlg) == DIALOG_EARLY	   ? "early"
			: dialog_state(l->dlg) == DIALOG_CONFIRMED ? "confirmed"
								   : "terminated");
	control_out_begin_array(o, "streams");
	for (size_t i = 0; i < media_session_nstreams(c->media); i++) {
		control_out_begin_object(o, NULL);
		control_out_uint(o, "port", media_session_port(c->media, side, i));
		if (oa_leg_stream(l->oa, i, &si) == 0) {
			control_out_bool(o, "active", si.active);
			control_out_bool(o, "secure", si.secure);
			if (si.secure)
				control_out_str(o, "suite", suite_name(si.suite));
			if (si.secure && si.peer)
				control_out_uint(o, "peer_key_epoch", si.peer_epoch);
			if (si.addr[0]) {
				control_out_str(o, "peer_address", si.addr);
				control_out_uint(o, "peer_port", si.port);
			}
			control_out_bool(o, "hold", si.hold);
		}
		ctl_stream_counts(c, side, i, o);
		ctl_epochs(c, side, i, o);
		control_out_end_object(o);
	}
	control_out_end_array(o);
	control_out_end_object(o);
}

/* The suite of the call: the secure leg's first stream's, or "none". */
static const char *call_suite(const struct call *c)
{
	struct oa_stream_info si;

	for (int i = 0; i < 2; i++) {
		const struct leg *l = i ? &c->b : &c->a;

		if (l->oa && oa_leg_stream(l->oa, 0, &si) == 0 && si.secure)
			return suite_name(si.suite);
	}
	return "none";
}

static void ctl_summary(const struct call *c, struct control_out *o)
{
	uint64_t now = now_ms();
	struct call_totals tot;
	char peer[300];

	control_out_str(o, "id", c->id);
	control_out_str(o, "state", state_names[c->state]);
	control_out_str(o, "trunk_in", c->a.trunk->name);
	control_out_str(o, "trunk_out", c->b.trunk->name);
	control_out_str(o, "route", c->rule ? c->rule : "trunk");
	control_out_uint(o, "age", (now - c->start_ms) / 1000);
	control_out_uint(o, "answered_seconds", c->answer_ms ? (now - c->answer_ms) / 1000 : 0);
	control_out_str(o, "suite", call_suite(c));
	control_out_str(o, "call_id_a", c->a.call_id);
	control_out_str(o, "call_id_b", c->b.call_id);
	config_uri_format(&c->b.trunk->peers[c->b.peer], peer, sizeof(peer));
	control_out_str(o, "peer", peer);
	call_totals(c, &tot);
	control_out_uint(o, "packets_in", tot.in);
	control_out_uint(o, "packets_out", tot.out);
	control_out_uint(o, "decrypt_failures", tot.rtp_failed + tot.rtcp_failed);
	control_out_uint(o, "rtp_decrypt_failures", tot.rtp_failed);
	control_out_uint(o, "rtcp_decrypt_failures", tot.rtcp_failed);
}

int b2bua_ctl_calls(const struct b2bua *b, struct control_out *o)
{
	control_out_begin_array(o, "calls");
	for (const struct call *c = b->calls; c; c = c->next) {
		control_out_begin_object(o, NULL);
		ctl_summary(c, o);
		control_out_end_object(o);
	}
	control_out_end_array(o);
	return 0;
}

int b2bua_ctl_call(const struct b2bua *b, const char *id, struct control_out *o)
{
	for (const struct call *c = b->calls; c; c = c->next) {
		if (strcmp(c->id, id) != 0 && strcmp(c->a.call_id, id) != 0 &&
		    strcmp(c->b.call_id, id) != 0)
			continue;
		control_out_begin_object(o, "call");
		ctl_summary(c, o);
		ctl_leg(c, &c->a, MEDIA_LEG_A, o);
		ctl_leg(c, &c->b, MEDIA_LEG_B, o);
		control_out_end_object(o);
		return 0;
	}
	return control_out_fail(o, ENOENT, "no call with id %s", id);
}

static unsigned ctl_trunk_calls(const void *arg, const char *trunk)
{
	return trunk_calls(arg, trunk);
}

int b2bua_ctl_trunks(const struct b2bua *b, struct control_out *o)
{
	return health_ctl_trunks(b->health, o, ctl_trunk_calls, b);
}
