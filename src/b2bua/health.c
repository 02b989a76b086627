/* health.c: peer health from OPTIONS pings and Retry-After (health.h).
 *
 * One record per (trunk name, peer URI) of the current snapshot, each
 * allocated on its own so that a reload can carry it, timers and all, into
 * the new list. The ping is a request of our own, built as text the way a
 * peer would read it and parsed back (sipmsg_parse), like leg B's INVITE. */
#include "srtpbridge/health.h"
#include "srtpbridge/config.h"
#include "srtpbridge/control.h"
#include "srtpbridge/legb.h"
#include "srtpbridge/log.h"
#include "srtpbridge/randpool.h"
#include "srtpbridge/sipcore.h"
#include "srtpbridge/sipmsg.h"
#include "srtpbridge/txn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#define LOG_MODULE	  "health"

#define DOWN_AFTER_MISSES 3
#define UP_AFTER_ANSWERS  2
#define PING_MAX	  2048

enum ping_state {
	PS_UNKNOWN = 0, /* pinged, no result yet; or not pinged at all */
	PS_UP,
	PS_DOWN,
};

struct peer {
	struct health *h;
	char *trunk;
	struct sip_uri uri;
	char name[300];		      /* config_uri_format */
	const struct config_trunk *t; /* in h->cfg */
	size_t idx;		      /* in t->peers */
	int interval;		      /* s; 0: not pinged */
	unsigned timeout_ms;
	enum ping_state ps;
	unsigned misses, answers; /* in a row */
	int last_status;
	bool has_rtt;
	uint64_t rtt_us;
	uint64_t down_until_ms; /* Retry-After; 0: none */
	unsigned retry_after_s;
	const char *shown; /* state_name() as last logged */
	char reason[200];
	uint64_t since_ms;
	uint64_t changes, failovers;
	struct txn *ping;
	uint64_t sent_us;
	struct event tick, expire, retry;
};

struct health {
	struct event_base *base;
	struct sipcore *sip;
	struct txn_layer *txn;
	struct config *cfg;
	struct peer **v;
	size_t n;
};

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t now_ms(void)
{
	return now_us() / 1000u;
}

static bool same_uri(const struct sip_uri *a, const struct sip_uri *b)
{
	return a->transport == b->transport && a->port == b->port &&
	       strcmp(a->host, b->host) == 0; /* as the config's own check of peers listed twice */
}

static struct peer *find(const struct health *h, const char *trunk, const struct sip_uri *uri)
{
	for (size_t i = 0; i < h->n; i++)
		if (same_uri(&h->v[i]->uri, uri) && strcmp(h->v[i]->trunk, trunk) == 0)
			return h->v[i];
	return NULL;
}

static bool usable_now(const struct peer *p, uint64_t now)
{
	return p->ps != PS_DOWN && p->down_until_ms <= now;
}

static const char *state_name(const struct peer *p, uint64_t now)
{
	if (!usable_now(p, now))
		return "down";
	return p->ps == PS_UNKNOWN && p->interval > 0 ? "unknown" : "up";
}

/* Logs and counts a change of state (unknown, up, down), with why. */
static void update(struct peer *p, const char *why)
{
	uint64_t now = now_ms();
	const char *st = state_name(p, now);

	if (st == p->shown)
		return;
	if (!p->shown) { /* a new record: where it starts is no change */
		p->shown = st;
		snprintf(p->reason, sizeof(p->reason), "%s", why);
		return;
	}
	p->shown = st;
	p->changes++;
	p->since_ms = now;
	snprintf(p->reason, sizeof(p->reason), "%s", why);
	if (strcmp(st, "down") == 0)
		LOG_WARN(NULL, "peer down", LF_S("trunk", p->trunk), LF_S("peer", p->name),
			 LF_S("reason", why));
	else if (strcmp(st, "up") == 0)
		LOG_INFO(NULL, "peer up", LF_S("trunk", p->trunk), LF_S("peer", p->name),
			 LF_S("reason", why));
	else
		LOG_INFO(NULL, "peer state unknown", LF_S("trunk", p->trunk), LF_S("peer", p->name),
			 LF_S("reason", why));
}

/* ---- pings ---- */

static void answer(struct peer *p, int status)
{
	char why[64];

	p->misses = 0;
	p->answers++;
	snprintf(why, sizeof(why), "answered OPTIONS with %d", status);
	if (p->ps == PS_UNKNOWN || (p->ps == PS_DOWN && p->answers >= UP_AFTER_ANSWERS)) {
		p->ps = PS_UP;
		update(p, why);
	}
}

static void miss(struct peer *p, const char *what)
{
	char why[200];

	p->answers = 0;
	p->misses++;
	if (p->ps != PS_DOWN && p->misses >= DOWN_AFTER_MISSES) {
		p->ps = PS_DOWN;
		snprintf(why, sizeof(why), "%u OPTIONS in a row without an answer (last: %s)",
			 p->misses, what);
		update(p, why);
	}
	LOG_DEBUG(NULL, "OPTIONS ping missed", LF_S("trunk", p->trunk), LF_S("peer", p->name),
		  LF_S("reason", what), LF_U("misses", p->misses));
}

static bool ok_code(const struct config_trunk *t, int code)
{
	if (code == 408 || code == 503)
		return false; /* what a dead or overloaded peer's proxy answers */
	for (size_t i = 0; i < t->noptions_ok; i++)
		if (code >= t->options_ok[i][0] && code <= t->options_ok[i][1])
			return true;
	return false;
}

/* The OPTIONS for p over its transport, from the trunk's own address. */
static int build_ping(struct peer *p, osip_message_t **out, char *why, size_t whysz)
{
	static const char *const tp_param[] = { "", ";transport=tcp", ";transport=tls" };
	const struct sip_uri *u = &p->uri;
	bool v6 = strchr(u->host, ':') != NULL;
	char via[400], from[400], target[300], branch[24] = "z9hG4bK", tag[17], cid[17];
	char *buf = malloc(PING_MAX);
	int n, status = 0, err;

	if (!buf)
		return ENOMEM;
	randpool_hex16(branch + 7);
	randpool_hex16(tag);
	randpool_hex16(cid);
	snprintf(target, sizeof(target), "sip:%s%s%s:%u%s", v6 ? "[" : "", u->host, v6 ? "]" : "",
		 u->port, tp_param[u->transport]);
	err = legb_via(via, sizeof(via), p->t, u->transport, branch);
	if (!err)
		err = legb_contact(from, sizeof(from), p->t, u->transport, "srtpbridge");
	if (err) {
		snprintf(why, whysz, "trunk %.64s has no listen address for %.100s", p->t->name,
			 p->name);
		free(buf);
		return err;
	}
	n = snprintf(buf, PING_MAX,
		     "OPTIONS %s SIP/2.0\r\nVia: %s\r\nMax-Forwards: 70\r\nFrom: %s;tag=%s\r\n"
		     "To: <%s>\r\nCall-ID: %s\r\nCSeq: 1 OPTIONS\r\nAccept: application/sdp\r\n"
		     "Content-Length: 0\r\n\r\n",
		     target, via, from, tag, target, cid);
	err = n > 0 && n < PING_MAX
		      ? sipmsg_parse(out, (struct slice){ buf, (size_t)n }, &status, why, whysz)
		      : ENOSPC;
	free(buf);
	return err;
}

static void ping(struct peer *p)
{
	struct health *h = p->h;
	struct txn_addr dest;
	osip_message_t *m = NULL;
	char why[200], what[260];
	int err;

	if (p->ping)
		return; /* the last one is still out: its timeout comes first */
	err = sipcore_peer_dest(h->sip, p->t, &p->t->peers[p->idx], &dest, why, sizeof(why));
	if (!err)
		err = build_ping(p, &m, why, sizeof(why));
	if (!err) {
		err = txn_request(h->txn, m, &dest, h, &p->ping);
		if (err)
			snprintf(why, sizeof(why), "%s", strerror(err));
	}
	if (err) {
		snprintf(what, sizeof(what), "cannot send: %s", why);
		miss(p, what);
		return;
	}
	p->sent_us = now_us();
	event_add(&p->expire, &(struct timeval){ .tv_sec = p->timeout_ms / 1000,
						 .tv_usec = (p->timeout_ms % 1000) * 1000 });
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct peer *p = arg;

	if (p->interval <= 0)
		return;
	ping(p);
	event_add(&p->tick, &(struct timeval){ .tv_sec = p->interval });
}

/* The ping's own timeout, shorter than Timer F: the transaction is ended
 * here, so nothing more of it reaches us. */
static void on_expire(evutil_socket_t fd, short what, void *arg)
{
	struct peer *p = arg;
	struct txn *t = p->ping;
	char why[64];

	if (!t)
		return;
	p->ping = NULL;
	txn_set_data(t, NULL);
	txn_abort(t);
	snprintf(why, sizeof(why), "no answer within %u ms", p->timeout_ms);
	miss(p, why);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct peer *p = arg;
	char why[80];

	p->down_until_ms = 0;
	snprintf(why, sizeof(why), "its Retry-After of %u s has passed", p->retry_after_s);
	update(p, why);
}

static struct peer *peer_of(const struct health *h, const struct txn *t)
{
	for (size_t i = 0; i < h->n; i++)
		if (h->v[i]->ping == t)
			return h->v[i];
	return NULL;
}

void health_txn_response(struct health *h, struct txn *t, const osip_message_t *resp)
{
	struct peer *p = peer_of(h, t);
	int code = sipmsg_status(resp);
	char why[40];

	if (!p || code < 200)
		return;
	p->ping = NULL;
	txn_set_data(t, NULL);
	event_del(&p->expire);
	p->last_status = code;
	/* Karn: an answer to a ping sent again may answer the first copy, so
	 * it is not a round trip; the last one measured stands */
	if (txn_retransmits(t) == 0) {
		p->rtt_us = now_us() - p->sent_us;
		p->has_rtt = true;
	}
	if (ok_code(p->t, code)) {
		answer(p, code);
	} else {
		snprintf(why, sizeof(why), "answered %d", code);
		miss(p, why);
	}
}

void health_txn_failed(struct health *h, struct txn *t, int err)
{
	struct peer *p = peer_of(h, t);
	char why[120];

	if (!p)
		return;
	p->ping = NULL;
	txn_set_data(t, NULL);
	event_del(&p->expire);
	snprintf(why, sizeof(why), "%s", err == ETIMEDOUT ? "no answer" : strerror(err));
	miss(p, why);
}

void health_txn_terminated(struct health *h, struct txn *t)
{
	struct peer *p = peer_of(h, t);

	if (p) {
		p->ping = NULL;
		event_del(&p->expire);
	}
}

const void *health_txn_tag(const struct health *h)
{
	return h;
}

/* ---- records ---- */

static void abort_ping(struct peer *p)
{
	struct txn *t = p->ping;

	if (!t)
		return;
	p->ping = NULL;
	event_del(&p->expire);
	txn_set_data(t, NULL);
	txn_abort(t);
}

/* The ping timeout: failover_timeout (a peer that slow fails calls too), at
 * most three quarters of the interval so one ping ends before the next. */
static void configure(struct peer *p, const struct config_trunk *t, size_t idx)
{
	int old = p->interval;
	unsigned cap;

	p->t = t;
	p->idx = idx;
	p->interval = t->options_interval;
	p->timeout_ms = (unsigned)t->failover_timeout * 1000u;
	cap = (unsigned)p->interval * 750u;
	if (p->interval > 0 && p->timeout_ms > cap)
		p->timeout_ms = cap;
	if (p->timeout_ms == 0)
		p->timeout_ms = 1;
	if (old != p->interval || (old > 0) != event_pending(&p->tick, EV_TIMEOUT, NULL)) {
		event_del(&p->tick);
		if (p->interval > 0) {
			event_add(&p->tick, &(struct timeval){ 0 }); /* at once: news within 1 s */
			update(p, "pinged with OPTIONS, no answer yet");
		} else {
			/* not pinged any more: what pings said no longer holds */
			abort_ping(p);
			p->ps = PS_UNKNOWN;
			p->misses = p->answers = 0;
			update(p, "not pinged (options_interval = 0)");
		}
	}
	if (!p->shown)
		update(p, "not pinged (options_interval = 0)");
}

static struct peer *peer_new(struct health *h, const struct config_trunk *t, size_t idx)
{
	struct peer *p = calloc(1, sizeof(*p));

	if (!p || !(p->trunk = strdup(t->name))) {
		free(p);
		return NULL;
	}
	p->h = h;
	p->uri = t->peers[idx];
	config_uri_format(&p->uri, p->name, sizeof(p->name));
	p->since_ms = now_ms();
	evtimer_assign(&p->tick, h->base, on_tick, p);
	evtimer_assign(&p->expire, h->base, on_expire, p);
	evtimer_assign(&p->retry, h->base, on_retry, p);
	return p;
}

static void peer_free(struct peer *p)
{
	if (!p)
		return;
	abort_ping(p);
	event_del(&p->tick);
	event_del(&p->expire);
	event_del(&p->retry);
	free(p->trunk);
	free(p);
}

int health_reload(struct health *h, struct config *cfg)
{
	struct peer **v;
	size_t n = 0, total = 0;

	for (size_t i = 0; i < cfg->ntrunks; i++)
		total += cfg->trunks[i].npeers;
	v = calloc(total ? total : 1, sizeof(*v));
	if (!v)
		return ENOMEM;
	/* records for what is new first, so that running out of memory leaves
	 * everything as it was */
	for (size_t i = 0; i < cfg->ntrunks; i++) {
		const struct config_trunk *t = &cfg->trunks[i];

		for (size_t k = 0; k < t->npeers; k++, n++) {
			if (find(h, t->name, &t->peers[k]))
				continue;
			if (!(v[n] = peer_new(h, t, k))) {
				for (size_t j = 0; j < n; j++)
					peer_free(v[j]);
				free(v);
				return ENOMEM;
			}
		}
	}
	n = 0;
	for (size_t i = 0; i < cfg->ntrunks; i++) {
		const struct config_trunk *t = &cfg->trunks[i];

		for (size_t k = 0; k < t->npeers; k++, n++) {
			if (v[n])
				continue;
			for (size_t j = 0; j < h->n; j++) {
				if (!same_uri(&h->v[j]->uri, &t->peers[k]) ||
				    strcmp(h->v[j]->trunk, t->name) != 0)
					continue;
				v[n] = h->v[j];
				h->v[j] = h->v[--h->n];
				break;
			}
		}
	}
	for (size_t j = 0; j < h->n; j++)
		peer_free(h->v[j]);
	free(h->v);
	h->v = v;
	h->n = n;
	config_unref(h->cfg);
	h->cfg = config_ref(cfg);
	n = 0;
	for (size_t i = 0; i < cfg->ntrunks; i++)
		for (size_t k = 0; k < cfg->trunks[i].npeers; k++)
			configure(h->v[n++], &cfg->trunks[i], k);
	return 0;
}

int health_create(struct health **out, struct event_base *base, struct sipcore *sip,
		  struct config *cfg)
{
	struct health *h = calloc(1, sizeof(*h));

	if (!h)
		return ENOMEM;
	h->base = base;
	h->sip = sip;
	h->txn = sipcore_txn(sip);
	if (health_reload(h, cfg)) {
		free(h);
		return ENOMEM;
	}
	*out = h;
	return 0;
}

void health_destroy(struct health *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n; i++)
		peer_free(h->v[i]);
	free(h->v);
	config_unref(h->cfg);
	free(h);
}

/* ---- questions ---- */

bool health_usable(const struct health *h, const struct config_trunk *trunk,
		   const struct sip_uri *peer)
{
	const struct peer *p = find(h, trunk->name, peer);

	return !p || usable_now(p, now_ms());
}

void health_retry_after(struct health *h, const struct config_trunk *trunk,
			const struct sip_uri *peer, unsigned seconds)
{
	struct peer *p = find(h, trunk->name, peer);
	char why[80];

	if (!p || seconds == 0)
		return;
	if (seconds > HEALTH_RETRY_AFTER_MAX)
		seconds = HEALTH_RETRY_AFTER_MAX;
	p->retry_after_s = seconds;
	p->down_until_ms = now_ms() + (uint64_t)seconds * 1000u;
	event_del(&p->retry);
	event_add(&p->retry, &(struct timeval){ .tv_sec = seconds });
	snprintf(why, sizeof(why), "answered an INVITE 503 with Retry-After: %u", seconds);
	update(p, why);
}

void health_failover(struct health *h, const struct config_trunk *trunk, const struct sip_uri *peer)
{
	struct peer *p = find(h, trunk->name, peer);

	if (p)
		p->failovers++;
}

bool health_trunk_usable(const struct health *h, const struct config_trunk *t)
{
	for (size_t i = 0; i < t->npeers; i++)
		if (health_usable(h, t, &t->peers[i]))
			return true;
	return false;
}

bool health_route_ok(const struct health *h, const struct config *cfg,
		     const struct config_trunk *in)
{
	bool routes = false;

	if (in->route) {
		if (health_trunk_usable(h, in->route))
			return true;
		routes = true;
	}
	for (size_t i = 0; i < cfg->nroutes; i++) {
		const struct config_route *r = &cfg->routes[i];

		for (size_t k = 0; k < r->nfrom; k++) {
			if (r->from[k] != in && strcmp(r->from[k]->name, in->name) != 0)
				continue;
			if (health_trunk_usable(h, r->to))
				return true;
			routes = true;
		}
	}
	return !routes;
}

int health_ctl_trunks(const struct health *h, struct control_out *o,
		      unsigned (*calls)(const void *arg, const char *trunk), const void *arg)
{
	uint64_t now = now_ms();
	size_t n = 0;

	control_out_begin_array(o, "trunks");
	for (size_t i = 0; i < h->cfg->ntrunks; i++) {
		const struct config_trunk *t = &h->cfg->trunks[i];
		uint64_t failovers = 0;

		for (size_t k = 0; k < t->npeers; k++)
			failovers += h->v[n + k]->failovers;
		control_out_begin_object(o, NULL);
		control_out_str(o, "name", t->name);
		control_out_bool(o, "healthy", health_trunk_usable(h, t));
		control_out_uint(o, "calls", calls ? calls(arg, t->name) : 0);
		control_out_int(o, "options_interval", t->options_interval);
		control_out_int(o, "failover_timeout", t->failover_timeout);
		control_out_uint(o, "failovers", failovers);
		control_out_begin_array(o, "peers");
		for (size_t k = 0; k < t->npeers; k++, n++) {
			const struct peer *p = h->v[n];

			control_out_begin_object(o, NULL);
			control_out_str(o, "uri", p->name);
			control_out_str(o, "state", state_name(p, now));
			control_out_bool(o, "usable", usable_now(p, now));
			control_out_str(o, "reason", p->reason);
			control_out_uint(o, "since_seconds", (now - p->since_ms) / 1000u);
			if (p->has_rtt)
				control_out_uint(o, "rtt_us", p->rtt_us);
			control_out_int(o, "last_status", p->last_status);
			control_out_uint(o, "misses", p->misses);
			control_out_uint(o, "answers", p->answers);
			control_out_uint(o, "state_changes", p->changes);
			control_out_uint(o, "failovers", p->failovers);
			if (p->down_until_ms > now)
				control_out_uint(o, "retry_after_seconds",
						 (p->down_until_ms - now + 999) / 1000u);
			control_out_end_object(o);
		}
		control_out_end_array(o);
		control_out_end_object(o);
	}
	control_out_end_array(o);
	return 0;
}
