/* The SIP stack: what arrives passes the checks in DESIGN.md's order, each
 * refusal with its status and a reason, before anything is kept. */
#include "srtpbridge/sipcore.h"
#include "srtpbridge/addr.h"
#include "srtpbridge/config.h"
#include "srtpbridge/log.h"
#include "srtpbridge/randpool.h"
#include "srtpbridge/resolver.h"
#include "srtpbridge/sipframe.h"
#include "srtpbridge/sipmsg.h"
#include "srtpbridge/transport.h"
#include "srtpbridge/txn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <osipparser2/osip_parser.h>

#define LOG_MODULE  "sip"
#define OUR_METHODS "INVITE, ACK, CANCEL, BYE, OPTIONS"

struct sipcore {
	struct event_base *base;
	struct config *boot; /* the listeners are bound from it: kept to the end */
	struct config *cfg;  /* the current snapshot */
	struct transport *tp;
	struct txn_layer *txn;
	struct resolver *res; /* peers given by name */
	bool draining;
	struct sipcore_stats st;
	struct sipcore_tu tu;
	bool has_tu;
	/* the trunk of the message inside txn_layer_receive(), for the TU */
	const struct config_trunk *in_trunk;
	/* anyone may send these (log.h) */
	struct log_limit bad_datagram_log, malformed_log;
};

/* sip_trace: every message in and out, as text. The logger redacts SDES
 * keys from every string it writes, so a trace never shows one. */
static void trace(const struct sipcore *s, const char *dir, const char *buf, size_t len,
		  const struct sockaddr *peer)
{
	char who[64];

	if (!s->cfg->global.sip_trace)
		return;
	addr_format(peer, who, sizeof(who));
	LOG_INFO(NULL, dir, LF_S("peer", who), LF_SN("sip", buf, len));
}

/* A message went out: counted, and traced when sip_trace asks. */
static void sent(struct sipcore *s, const char *buf, size_t len, const struct sockaddr *peer)
{
	trace(s, "sip out", buf, len, peer);
	/* "SIP/2.0 NNN": a response; its class for the counters */
	if (len > 9 && memcmp(buf, "SIP/2.0 ", 8) == 0 && buf[8] >= '1' && buf[8] <= '6')
		s->st.responses_sent[buf[8] - '0']++;
}

/* ---- sending ---- */

static int on_txn_send(void *arg, const struct txn_addr *to, bool reliable, const char *buf,
		       size_t len, uint64_t *conn_out)
{
	struct sipcore *s = arg;
	/* The transport keeps per-trunk TLS clients of the snapshot it was
	 * bound with; a call may hold a later one. */
	const struct config_trunk *trunk =
		to->trunk ? config_trunk_find(s->boot, to->trunk->name) : NULL;
	int err =
		transport_send(s->tp, to->local, to->transport, (const struct sockaddr *)&to->addr,
			       to->addrlen, to->conn, trunk, buf, len, conn_out);

	/* A full socket buffer loses a datagram the way the network may: the
	 * transaction's retransmissions cover it. Failing the transaction
	 * instead would end a call over a transient burst (and an INVITE server
	 * transaction gone early takes the next retransmission for a new call). */
	if (err && to->transport == SIP_TP_UDP &&
	    (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS)) {
		s->st.send_drops++;
		return 0;
	}
	if (!err)
		sent(s, buf, len, (const struct sockaddr *)&to->addr);
	return err;
}

/* A response outside any transaction: a refusal of what could not be
 * parsed, or of a source we do not serve. It goes back where it came from. */
static void send_refusal(struct sipcore *s, struct slice raw, int status, const char *why,
			 const struct transport_src *src)
{
	osip_message_t *resp = NULL;
	char *buf = NULL;
	size_t len = 0;

	char tag[20];
	int err;

	randpool_hex16(tag);
	err = sipmsg_refusal(&resp, raw, status, why, tag);
	if (err == 0)
		err = sipmsg_serialize(resp, &buf, &len);
	else if (err == ENOENT || err == EBADMSG) /* unreadable to libosip2: as text */
		err = sipmsg_refusal_text(&buf, &len, raw, status, why, tag);
	if (err == 0 &&
	    transport_send(s->tp, src->local, src->tp, (const struct sockaddr *)&src->addr,
			   src->addrlen, src->conn, NULL, buf, len, NULL) == 0)
		sent(s, buf, len, (const struct sockaddr *)&src->addr);
	free(buf);
	osip_message_free(resp);
}

/* A response with one extra header (Unsupported, Accept), or none. */
static void respond_with(struct sipcore *s, struct txn *t, const osip_message_t *req, int status,
			 const char *hname, const char *hvalue, const char *warning)
{
	osip_message_t *resp = NULL;
	char tag[20];

	randpool_hex16(tag);
	if (sipmsg_response(&resp, req, status, NULL, tag, warning))
		return;
	/* libosip2 keeps Accept in a field of its own, with its own setter */
	if (hname && strcmp(hname, "Accept") == 0)
		osip_message_set_accept(resp, hvalue);
	else if (hname)
		sipmsg_header_add(resp, hname, hvalue);
	if (status == 200 || status == 501 || status == 405)
		sipmsg_header_add(resp, "Allow", OUR_METHODS);
	if (status == 200 && strcmp(sipmsg_method(req), "OPTIONS") == 0)
		osip_message_set_accept(resp, "application/sdp");
	if (txn_respond(t, resp))
		LOG_WARN(NULL, "cannot send a response", LF_I("status", status));
}

static void respond(struct sipcore *s, struct txn *t, const osip_message_t *req, int status,
		    const char *warning)
{
	respond_with(s, t, req, status, NULL, NULL, warning);
}

/* ---- the transaction user, until the B2BUA ---- */

/* RFC 3261 section 8.2.2.3: a Require we do not support is refused with
 * 420 and the tags in Unsupported. The only one we take is "timer" (RFC
 * 4028): session timers are relayed end to end by the B2BUA. */
static bool unsupported_required(const osip_message_t *req, char *tags, size_t size)
{
	const char *v;

	tags[0] = '\0';
	for (unsigned i = 0; (v = sipmsg_header_get(req, "Require", i)) != NULL; i++) {
		const char *p = v;

		while (*p) {
			size_t n;

			p += strspn(p, ", \t");
			n = strcspn(p, ", \t");
			if (n && !(n == 5 && osip_strncasecmp(p, "timer", 5) == 0))
				snprintf(tags + strlen(tags), size - strlen(tags), "%s%.*s",
					 tags[0] ? ", " : "", (int)n, p);
			p += n;
		}
	}
	return tags[0] != '\0';
}

static bool is_sdp(const osip_content_type_t *ct)
{
	return ct && ct->type && ct->subtype && osip_strcasecmp(ct->type, "application") == 0 &&
	       osip_strcasecmp(ct->subtype, "sdp") == 0;
}

/* RFC 3261 section 8.2.3: a body we cannot read gets 415 with Accept. */
static bool unreadable_body(const osip_message_t *req)
{
	return osip_list_size(&req->bodies) > 0 && !is_sdp(req->content_type);
}

/* An Accept that lists neither SDP nor a wildcard: the answer we would send
 * is unacceptable (RFC 4475 section 3.3.15 expects 406). */
static bool sdp_not_accepted(const osip_message_t *req)
{
	int n = osip_list_size(&req->accepts);

	for (int i = 0; i < n; i++) {
		const osip_accept_t *a = osip_list_get(&req->accepts, i);

		if (is_sdp(a) || (a && a->type && strcmp(a->type, "*") == 0) ||
		    (a && a->type && osip_strcasecmp(a->type, "application") == 0 && a->subtype &&
		     strcmp(a->subtype, "*") == 0))
			return false;
	}
	return n > 0;
}

static void on_request(void *arg, struct txn *t, osip_message_t *req, const struct txn_addr *from)
{
	struct sipcore *s = arg;
	const char *m = sipmsg_method(req);
	char callid[128] = "", tags[256];

	if (!t) {
		/* an ACK for a 2xx: the TU's, or one for a call long gone */
		if (s->has_tu)
			s->tu.request(s->tu.arg, NULL, req, from, s->cfg, s->in_trunk);
		return;
	}
	sipmsg_call_id(req, callid, sizeof(callid));
	LOG_DEBUG(NULL, "request", LF_S("method", m), LF_S("call_id", callid));
	if (strcmp(m, "CANCEL") && unsupported_required(req, tags, sizeof(tags))) {
		respond_with(s, t, req, 420, "Unsupported", tags,
			     "an extension in Require is not supported");
		return;
	}
	if (strcmp(m, "INVITE") == 0 && unreadable_body(req)) {
		respond_with(s, t, req, 415, "Accept", "application/sdp", "the body is not SDP");
		return;
	}
	if (strcmp(m, "INVITE") == 0 && sdp_not_accepted(req)) {
		respond_with(s, t, req, 406, "Accept", "application/sdp",
			     "Accept does not list application/sdp, the only body we answer with");
		return;
	}
	if (strcmp(m, "INVITE") == 0 && !sipmsg_to_tag(req) && (s->draining || !s->has_tu)) {
		/* no Retry-After: a carrier would take the whole SBC out of service */
		respond(s, t, req, 503,
			s->draining ? "srtpbridge is draining: no new calls"
				    : "srtpbridge takes no calls in this mode");
		return;
	}
	if (s->has_tu && s->tu.request(s->tu.arg, t, req, from, s->cfg, s->in_trunk))
		return;
	if (strcmp(m, "OPTIONS") == 0) {
		respond(s, t, req, 200, NULL);
	} else if (strcmp(m, "INVITE") == 0) {
		respond(s, t, req, 481, "no such call");
	} else if (strcmp(m, "CANCEL") == 0) {
		struct txn *inv = txn_find_invite_for_cancel(s->txn, req);

		if (!inv) {
			respond(s, t, req, 481, "no INVITE transaction for this CANCEL");
			return;
		}
		respond(s, t, req, 200, NULL);
		/* 9.2: an INVITE with its final response already is left alone */
		if (txn_get_state(inv) == TXN_PROCEEDING || txn_get_state(inv) == TXN_TRYING)
			respond(s, inv, txn_get_request(inv), 487, NULL);
	} else if (strcmp(m, "BYE") == 0) {
		respond(s, t, req, 481, "no such call");
	} else {
		respond(s, t, req, 501, NULL);
	}
}

static void on_response(void *arg, struct txn *t, osip_message_t *resp)
{
	struct sipcore *s = arg;

	if (s->has_tu && s->tu.response)
		s->tu.response(s->tu.arg, t, resp);
}

static void on_stray_response(void *arg, osip_message_t *resp, const struct txn_addr *from)
{
	struct sipcore *s = arg;

	if (s->has_tu && s->tu.stray_response)
		s->tu.stray_response(s->tu.arg, resp, from);
}

static void on_timeout(void *arg, struct txn *t, enum txn_timer_id which)
{
	struct sipcore *s = arg;

	LOG_DEBUG(NULL, "transaction timed out", LF_S("timer", txn_timer_name(which)),
		  LF_S("state", txn_state_name(txn_get_state(t))));
	if (s->has_tu && s->tu.timeout)
		s->tu.timeout(s->tu.arg, t, which);
}

static void on_transport_error(void *arg, struct txn *t, int err)
{
	struct sipcore *s = arg;

	LOG_INFO(NULL, "transaction lost its transport", LF_S("error", strerror(err)));
	if (s->has_tu && s->tu.transport_error)
		s->tu.transport_error(s->tu.arg, t, err);
}

static void on_terminated(void *arg, struct txn *t)
{
	struct sipcore *s = arg;

	if (s->has_tu && s->tu.terminated)
		s->tu.terminated(s->tu.arg, t);
}

/* ---- inbound ---- */

/* RFC 5923 in spirit: a stream on which a configured peer sends us requests
 * (its top Via's sent-by is that peer's configured address) also carries our
 * requests to that peer, so they cross its NAT and firewall the way its own
 * came. Only configured peers: a Via cannot point our traffic anywhere else.
 * (RFC 5923's ;alias parameter is not needed for that, nor honoured.) */
static void alias_stream(struct sipcore *s, const struct config_trunk *trunk,
			 const osip_message_t *req, const struct transport_src *src)
{
	struct sipmsg_via via;

	if (src->tp == SIP_TP_UDP || sipmsg_top_via(req, &via) || !via.host)
		return;
	for (size_t i = 0; i < trunk->npeers; i++) {
		const struct sip_uri *p = &trunk->peers[i];
		uint16_t port = via.port ? via.port : (src->tp == SIP_TP_TLS ? 5061 : 5060);

		if (p->transport == src->tp && p->resolved && port == p->port &&
		    strcmp(via.host, p->host) == 0) {
			transport_conn_alias(s->tp, src->conn, (const struct sockaddr *)&p->addr,
					     p->addrlen);
			return;
		}
	}
}

static void inbound(struct sipcore *s, struct slice raw, const struct transport_src *src)
{
	const struct config_trunk *trunk;
	osip_message_t *m = NULL;
	struct txn_addr from;
	char why[SIPMSG_WHY_MAX], peer[64];
	int status = 0;

	trace(s, "sip in", raw.p, raw.n, (const struct sockaddr *)&src->addr);
	/* The source check comes before the parser sees a byte. */
	trunk = config_trunk_for_source(s->cfg, src->tp, src->local_addr,
					(const struct sockaddr *)&src->addr);
	if (!trunk) {
		s->st.unknown_source++;
		addr_format((const struct sockaddr *)&src->addr, peer, sizeof(peer));
		if (s->cfg->global.unknown_source == UNKNOWN_SOURCE_403) {
			LOG_DEBUG(NULL, "request from an unknown source refused",
				  LF_S("source", peer));
			snprintf(why, sizeof(why), "%s is not a source of any trunk here", peer);
			send_refusal(s, raw, 403, why, src);
		} else {
			LOG_DEBUG(NULL, "request from an unknown source dropped",
				  LF_S("source", peer));
		}
		return;
	}
	if (sipmsg_parse(&m, raw, &status, why, sizeof(why))) {
		s->st.malformed++;
		addr_format((const struct sockaddr *)&src->addr, peer, sizeof(peer));
		LOG_LIMITED(&s->malformed_log, LOG_LVL_INFO, NULL, "malformed SIP message",
			    LF_S("source", peer), LF_S("trunk", trunk->name),
			    LF_I("status", status), LF_S("reason", why));
		if (status)
			send_refusal(s, raw, status, why, src);
		return;
	}
	if (sipmsg_is_request(m)) {
		s->st.requests++;
		alias_stream(s, trunk, m, src);
		sipmsg_fix_via(m, (const struct sockaddr *)&src->addr, src->addrlen);
	} else {
		s->st.responses++;
	}
	memset(&from, 0, sizeof(from));
	from.transport = src->tp;
	memcpy(&from.addr, &src->addr, src->addrlen);
	from.addrlen = src->addrlen;
	from.conn = src->conn;
	from.local = src->local;
	from.trunk = trunk;
	s->in_trunk = trunk;
	txn_layer_receive(s->txn, m, &from); /* takes m */
	s->in_trunk = NULL;
}

static void on_datagram(void *arg, struct slice data, const struct transport_src *src)
{
	struct sipcore *s = arg;
	struct slice msg;
	char why[SIPMSG_WHY_MAX];
	char peer[64];
	int status = 0, err;

	err = sipframe_datagram(data, &msg, &status, why, sizeof(why));
	if (err == ENODATA) {
		s->st.keepalives++; /* a CRLF keepalive: RFC 5626 has no answer on UDP */
		return;
	}
	if (err) {
		s->st.malformed++;
		/* before the source check: from anyone at all */
		addr_format((const struct sockaddr *)&src->addr, peer, sizeof(peer));
		LOG_LIMITED(&s->bad_datagram_log, LOG_LVL_INFO, NULL, "bad datagram",
			    LF_S("source", peer), LF_I("status", status), LF_S("reason", why));
		/* a refusal only for a source we serve */
		if (status && config_trunk_for_source(s->cfg, src->tp, src->local_addr,
						      (const struct sockaddr *)&src->addr))
			send_refusal(s, data, status, why, src);
		return;
	}
	inbound(s, msg, src);
}

static void on_message(void *arg, struct slice msg, const struct transport_src *src)
{
	inbound(arg, msg, src);
}

/* Client transactions waiting on the stream fail now, not at Timer B/F:
 * the TU fails over to the next peer at once. */
static void on_closed(void *arg, uint64_t conn, int err, const char *why)
{
	struct sipcore *s = arg;

	txn_layer_conn_closed(s->txn, conn, err ? err : ECONNRESET);
}

/* inbound()'s source check at the door of a stream. Under unknown_source =
 * drop a connection from no trunk's sources is refused before a byte is read:
 * every request on it would be dropped anyway, and meanwhile it would hold
 * one of the connection slots (4096 in all) and, over TLS, cost a handshake's
 * signature on the main loop. Under 403 it is taken, for its requests' 403. */
static bool on_admit(void *arg, const struct transport_src *src)
{
	struct sipcore *s = arg;

	if (config_trunk_for_source(s->cfg, src->tp, src->local_addr,
				    (const struct sockaddr *)&src->addr))
		return true;
	return s->cfg->global.unknown_source == UNKNOWN_SOURCE_403;
}

/* ---- life ---- */

/* The socket family a request to peer leaves from on trunk: its listen
 * address of the peer's transport; 0 when it has none. */
static int send_family(const struct config_trunk *trunk, const struct sip_uri *peer)
{
	for (size_t i = 0; i < trunk->nlisten; i++)
		if (trunk->listen[i].transport == peer->transport && trunk->listen[i].resolved)
			return trunk->listen[i].addr.ss_family;
	return 0;
}

/* Every peer name of cfg starts resolving now, not at its first call. */
static void watch_peers(struct sipcore *s, const struct config *cfg)
{
	for (size_t i = 0; i < cfg->ntrunks; i++) {
		const struct config_trunk *t = &cfg->trunks[i];

		for (size_t p = 0; p < t->npeers; p++) {
			int family = send_family(t, &t->peers[p]);

			if (!t->peers[p].resolved && family &&
			    resolver_watch(s->res, t->peers[p].host, family))
				LOG_WARN(NULL, "cannot resolve a peer name",
					 LF_S("host", t->peers[p].host));
		}
	}
}

int sipcore_create(struct sipcore **out, struct event_base *base, struct config *cfg, char *why,
		   size_t whysz)
{
	static const struct transport_callbacks tcb = { .datagram = on_datagram,
							.message = on_message,
							.closed = on_closed,
							.admit = on_admit };
	static const struct txn_callbacks xcb = {
		.send = on_txn_send,
		.request = on_request,
		.response = on_response,
		.stray_response = on_stray_response,
		.timeout = on_timeout,
		.transport_error = on_transport_error,
		.terminated = on_terminated,
	};
	struct sipcore *s = calloc(1, sizeof(*s));
	int err;

	if (!s)
		return ENOMEM;
	s->base = base;
	s->boot = config_ref(cfg);
	s->cfg = config_ref(cfg);
	err = txn_layer_create(&s->txn, NULL, &xcb, s, &txn_timer_ops_libevent, base);
	if (err) {
		snprintf(why, whysz, "cannot create the transaction layer: %s", strerror(err));
		goto out;
	}
	err = resolver_create(&s->res, base);
	if (err) {
		snprintf(why, whysz, "cannot start the resolver: %s", strerror(err));
		goto out;
	}
	watch_peers(s, cfg);
	err = transport_create(&s->tp, base, s->boot, &tcb, s, why, whysz);
out:
	if (err)
		sipcore_destroy(s);
	else
		*out = s;
	return err;
}

void sipcore_destroy(struct sipcore *s)
{
	if (!s)
		return;
	txn_layer_destroy(s->txn);
	transport_destroy(s->tp);
	resolver_destroy(s->res);
	config_unref(s->cfg);
	config_unref(s->boot);
	free(s);
}

void sipcore_reload(struct sipcore *s, struct config *cfg)
{
	config_unref(s->cfg);
	s->cfg = config_ref(cfg);
	watch_peers(s, cfg);
}

void sipcore_drain(struct sipcore *s)
{
	s->draining = true;
	transport_stop_listening(s->tp);
}

void sipcore_get_stats(const struct sipcore *s, struct sipcore_stats *out)
{
	struct transport_stats ts;

	*out = s->st;
	transport_get_stats(s->tp, &ts);
	out->accept_pauses = ts.accept_pauses;
	out->connections_refused = ts.refused;
	out->tls_failures = ts.tls_failures;
	out->connections = ts.conns;
	out->connections_unknown_source = ts.refused_unknown;
	out->transactions = txn_layer_count(s->txn);
}

void sipcore_set_tu(struct sipcore *s, const struct sipcore_tu *tu)
{
	s->has_tu = tu && tu->request;
	if (s->has_tu)
		s->tu = *tu;
	else
		memset(&s->tu, 0, sizeof(s->tu));
}

struct txn_layer *sipcore_txn(struct sipcore *s)
{
	return s->txn;
}

int sipcore_peer_dest(const struct sipcore *s, const struct config_trunk *trunk,
		      const struct sip_uri *peer, struct txn_addr *out, char *why, size_t whysz)
{
	const struct config_trunk *boot = config_trunk_find(s->boot, trunk->name);
	int err;

	memset(out, 0, sizeof(*out));
	out->transport = peer->transport;
	if (peer->resolved) {
		memcpy(&out->addr, &peer->addr, peer->addrlen);
		out->addrlen = peer->addrlen;
	} else {
		err = resolver_lookup(s->res, peer->host, send_family(trunk, peer), &out->addr,
				      &out->addrlen, why, whysz);
		if (err == ENOENT || err == EAGAIN)
			snprintf(why, whysz, "%s has not resolved yet", peer->host);
		if (err)
			return EHOSTUNREACH;
		if (out->addr.ss_family == AF_INET)
			((struct sockaddr_in *)&out->addr)->sin_port = htons(peer->port);
		else
			((struct sockaddr_in6 *)&out->addr)->sin6_port = htons(peer->port);
	}
	out->trunk = trunk;
	out->local = boot ? transport_local_for(s->tp, boot, peer->transport) : NULL;
	if (!out->local) {
		snprintf(why, whysz, "trunk %s listens on no address of the peer's transport",
			 trunk->name);
		return ENOTCONN;
	}
	return 0;
}

void sipcore_conn_hold(struct sipcore *s, uint64_t conn)
{
	if (conn)
		transport_conn_hold(s->tp, conn);
}

void sipcore_conn_release(struct sipcore *s, uint64_t conn)
{
	if (conn)
		transport_conn_release(s->tp, conn);
}
