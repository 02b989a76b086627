/* txn.c: SIP transactions, RFC 3261 section 17 as updated by RFC 6026.
 *
 * Four state machines (ICT, NICT, IST, NIST) over two hash tables. Each
 * transaction holds its request, its last response (server) or the ACK it
 * generated (INVITE client), their serialized bytes for retransmission, and
 * two timers: `retrans` (A, E, G, or the delayed 100 Trying) and `timeout`
 * (B, D, F, H, I, J, K, L, M). A state never needs more than these two.
 *
 * Lifetime: a transaction is referenced by its hash table while it lives,
 * and by each layer function that is working on it. Terminating it unlinks
 * it, calls terminated() and drops the table's reference; it is freed when
 * the last reference goes, so a TU that terminates a transaction from a
 * callback (a final response over TCP ends a NIST at once) does not pull it
 * from under the code that called the TU.
 *
 * A client transaction sent over a stream is, until its final response, also
 * in a by-connection index: buckets of doubly linked chains keyed by the
 * connection id, so that a closing connection fails its transactions
 * (txn_layer_conn_closed) by walking one bucket, not the client table. */
#define LOG_MODULE "txn"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <osipparser2/osip_parser.h>
#include <osipparser2/osip_port.h>

#include "srtpbridge/log.h"
#include "srtpbridge/txn.h"
#include "srtpbridge/sipmsg.h"

#define TXN_COOKIE     "z9hG4bK"
#define TXN_COOKIE_LEN 7
/* Timer D is "at least 32 s" for unreliable transports (RFC 3261 17.1.1.2),
 * not a multiple of T1; it also covers a server's H (64*T1) when T1 is
 * configured above 500 ms. */
#define TXN_TIMER_D_MIN_MS 32000
#define TXN_HTAB_INITIAL   256
#define TXN_CONN_BUCKETS   1024 /* the by-connection index */

#define FNV_BASIS	   14695981039346656037ULL
#define FNV_PRIME	   1099511628211ULL

struct txn_timer {
	struct txn *owner;
	bool armed;
	bool assigned;	 /* libevent backend: ev belongs to a base */
	struct event ev; /* libevent backend */
	uint64_t due;	 /* fake clock backend */
	uint64_t seq;
	size_t slot;
};

struct txn {
	struct txn_layer *layer;
	struct txn *hnext;
	uint64_t hash;
	unsigned refs;
	bool linked;
	enum txn_kind kind;
	enum txn_state state;
	bool reliable;
	bool rfc2543; /* server, matched by 17.2.3's RFC 2543 rules */
	struct txn_addr peer;

	osip_message_t *req; /* owned */
	char *req_buf;	     /* osip_free: serialized req */
	size_t req_len;
	/* Of the last response sent (server), only its bytes: they are all a
	 * retransmission needs, and parsed it would stay as long as the
	 * transaction (32 s after a 200, about 5 KB each). osip_free. */
	char *resp_buf;
	size_t resp_len;
	char *ack_buf; /* osip_free: ICT, the ACK for a non-2xx */
	size_t ack_len;

	/* The key; borrowed from req, which never changes after creation. */
	const char *branch;
	const char *sent_by;
	int sent_by_port;
	const char *method;
	/* RFC 2543 matching (osip_free): the Request-URI and top Via as text,
	 * and the To tag of the final response the ACK must carry. */
	char *ruri_str;
	char *via_str;
	char *resp_to_tag;

	struct txn_timer retrans;
	struct txn_timer timeout;
	enum txn_timer_id retrans_id;
	enum txn_timer_id timeout_id;
	uint64_t interval;    /* current A/E/G interval */
	unsigned retransmits; /* sends of our own, by Timer A, E or G */
	void *data;

	/* The by-connection index (a client awaiting its final response over
	 * a stream): cprev is NULL when t is not in it. */
	struct txn *cnext, **cprev;
	struct txn *failing; /* txn_layer_conn_closed's list of those to fail */
};

/* Open hashing: a power-of-two bucket array of singly linked chains. */
struct txn_htab {
	struct txn **b;
	size_t mask;
	size_t n;
};

struct txn_layer {
	struct txn_config cfg;
	struct txn_callbacks cb;
	void *arg;
	const struct txn_timer_ops *tops;
	void *tctx;
	struct txn_htab server;
	struct txn_htab client;
	struct txn *by_conn[TXN_CONN_BUCKETS];
	uint64_t branch_salt;
	uint64_t branch_seq;
	bool destroying;
};

/* How a request is compared with a server transaction under RFC 2543 rules. */
enum match_mode {
	MATCH_SAME,   /* a retransmission of the creating request */
	MATCH_ACK,    /* the ACK for the INVITE's non-2xx */
	MATCH_CANCEL, /* the INVITE a CANCEL cancels */
};

/* ---- small helpers over libosip2 ---- */

static osip_via_t *top_via(const osip_message_t *m)
{
	osip_via_t *via = NULL;

	osip_message_get_via(m, 0, &via);
	return via;
}

static const char *via_param(osip_via_t *via, const char *name)
{
	osip_generic_param_t *p = NULL;

	if (!via || osip_via_param_get_byname(via, (char *)name, &p) != OSIP_SUCCESS || !p)
		return NULL;
	return p->gvalue ? p->gvalue : "";
}

static bool via_has_param(osip_via_t *via, const char *name)
{
	osip_generic_param_t *p = NULL;

	return via && osip_via_param_get_byname(via, (char *)name, &p) == OSIP_SUCCESS && p;
}

static bool has_cookie(const char *branch)
{
	/* The cookie is a literal that RFC 3261 clients write as is; anything
	 * else is treated as RFC 2543 (17.2.3). */
	return branch && strncmp(branch, TXN_COOKIE, TXN_COOKIE_LEN) == 0;
}

static int via_port(osip_via_t *via)
{
	char *end = NULL;
	long p;

	if (!via->port || !*via->port)
		return via->protocol && strcasecmp(via->protocol, "TLS") == 0 ? 5061 : 5060;
	p = strtol(via->port, &end, 10);
	if (*end || p < 0 || p > 65535)
		return -1;
	return (int)p;
}

static const char *tag_of(osip_from_t *h)
{
	osip_generic_param_t *p = NULL;

	if (!h || osip_from_get_tag(h, &p) != OSIP_SUCCESS || !p)
		return NULL;
	return p->gvalue;
}

static bool str_eq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

static unsigned long cseq_num(const osip_message_t *m)
{
	return strtoul(m->cseq->number, NULL, 10);
}

static const char *call_id_of(const osip_message_t *m)
{
	return m->call_id && m->call_id->number ? m->call_id->number : "";
}

/* The mandatory headers the layer relies on; the reason, or NULL. */
static const char *msg_check(osip_message_t *m)
{
	osip_via_t *via = top_via(m);

	if (!via || !via->host)
		return "no Via";
	if (!m->cseq || !m->cseq->method || !m->cseq->number)
		return "no CSeq";
	if (!m->call_id || !m->call_id->number)
		return "no Call-ID";
	if (!m->from || !m->to)
		return "no From or To";
	if (MSG_IS_REQUEST(m)) {
		if (!m->sip_method || !m->req_uri)
			return "no request line";
		/* RFC 3261 8.1.1.5; matching ACK and CANCEL relies on it */
		if (strcmp(m->sip_method, m->cseq->method) != 0)
			return "CSeq method differs from the request method";
	} else if (m->status_code < 100 || m->status_code > 699) {
		return "status code out of range";
	}
	return NULL;
}

/* libosip2 prints into a SIP_MESSAGE_MAX_LENGTH (8000 byte) buffer, and a
 * transaction keeps what it sent for its retransmissions until it ends, up
 * to 32 s after the call: at 1200 calls a second that was most of the
 * daemon's 1.4 GB. The buffer is cut to the message (a realloc that shrinks
 * stays in place). */
static int serialize(osip_message_t *m, char **buf, size_t *len)
{
	char *s = NULL, *fit;
	size_t n = 0;

	if (osip_message_to_str(m, &s, &n) != OSIP_SUCCESS || !s)
		return ENOMEM;
	fit = osip_realloc(s, n + 1);
	*buf = fit ? fit : s;
	*len = n;
	return 0;
}

static int clone_vias(osip_message_t *to, const osip_message_t *from, int count)
{
	int pos = 0;
	osip_via_t *v;

	while (count < 0 || pos < count) {
		osip_via_t *c = NULL;

		v = NULL;
		osip_message_get_via(from, pos, &v);
		if (!v)
			break;
		if (osip_via_clone(v, &c) != OSIP_SUCCESS)
			return ENOMEM;
		if (osip_list_add(&to->vias, c, -1) < 0) {
			osip_via_free(c);
			return ENOMEM;
		}
		pos++;
	}
	return 0;
}

/* RFC 3261 8.2.6.1: the 100 Trying copies Via, From, To (no tag), Call-ID,
 * CSeq and Timestamp: sipmsg_response does exactly that. */
static int trying_for(osip_message_t *req, osip_message_t **out)
{
	return sipmsg_response(out, req, 100, NULL, NULL, NULL);
}

/* RFC 3261 17.1.1.3: the ACK for a non-2xx final response. Request-URI,
 * Call-ID, From and Route of the INVITE; the To of the response; the
 * INVITE's top Via only; CSeq with the INVITE's number and method ACK. */
static int build_ack(osip_message_t *inv, osip_message_t *resp, osip_message_t **out)
{
	osip_message_t *a = NULL;
	osip_uri_t *uri = NULL;
	osip_cseq_t *cseq = NULL;
	int err = ENOMEM;
	int pos;

	if (osip_message_init(&a) != OSIP_SUCCESS)
		return ENOMEM;
	osip_message_set_method(a, osip_strdup("ACK"));
	osip_message_set_version(a, osip_strdup("SIP/2.0"));
	if (!a->sip_method || !a->sip_version)
		goto out;
	if (osip_uri_clone(inv->req_uri, &uri) != OSIP_SUCCESS)
		goto out;
	osip_message_set_uri(a, uri);
	if (clone_vias(a, inv, 1))
		goto out;
	if (osip_from_clone(inv->from, &a->from) != OSIP_SUCCESS ||
	    osip_to_clone(resp->to, &a->to) != OSIP_SUCCESS ||
	    osip_call_id_clone(inv->call_id, &a->call_id) != OSIP_SUCCESS)
		goto out;
	if (osip_cseq_init(&cseq) != OSIP_SUCCESS)
		goto out;
	a->cseq = cseq;
	osip_cseq_set_number(cseq, osip_strdup(inv->cseq->number));
	osip_cseq_set_method(cseq, osip_strdup("ACK"));
	if (!cseq->number || !cseq->method)
		goto out;
	for (pos = 0; pos < osip_list_size(&inv->routes); pos++) {
		osip_route_t *r = osip_list_get(&inv->routes, pos);
		osip_route_t *c = NULL;

		if (osip_route_clone(r, &c) != OSIP_SUCCESS)
			goto out;
		if (osip_list_add(&a->routes, c, -1) < 0) {
			osip_route_free(c);
			goto out;
		}
	}
	if (osip_message_set_max_forwards(a, "70") != OSIP_SUCCESS)
		goto out;
	err = 0;
out:
	if (err)
		osip_message_free(a);
	else
		*out = a;
	return err;
}

/* ---- hashing and the tables ---- */

static uint64_t fnv(uint64_t h, const char *s, bool fold)
{
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		h ^= fold ? (unsigned char)tolower(c) : c;
		h *= FNV_PRIME;
	}
	/* a separator, so that ("ab", "c") and ("a", "bc") differ */
	h ^= 0xff;
	return h * FNV_PRIME;
}

static uint64_t fnv_u(uint64_t h, uint64_t v)
{
	for (int i = 0; i < 8; i++) {
		h ^= (v >> (8 * i)) & 0xff;
		h *= FNV_PRIME;
	}
	return h;
}

/* Branch and host compare case-insensitively (RFC 3261 7.3.1: parameter
 * values and host names); the method is case-sensitive. */
static uint64_t server_hash(const char *branch, const char *host, int port, const char *method)
{
	uint64_t h = fnv(FNV_BASIS, branch, true);

	h = fnv(h, host, true);
	h = fnv_u(h, (uint64_t)port);
	return fnv(h, method, false);
}

static uint64_t client_hash(const char *branch, const char *method)
{
	return fnv(fnv(FNV_BASIS ^ 1, branch, true), method, false);
}

/* Only what a request, its ACK and its CANCEL share under RFC 2543 rules. */
static uint64_t rfc2543_hash(osip_message_t *m)
{
	uint64_t h = fnv(FNV_BASIS ^ 2, m->call_id->number, false);

	h = fnv(h, m->call_id->host, false);
	h = fnv_u(h, cseq_num(m));
	return fnv(h, tag_of(m->from), false);
}

static int htab_init(struct txn_htab *h)
{
	h->b = calloc(TXN_HTAB_INITIAL, sizeof(*h->b));
	if (!h->b)
		return ENOMEM;
	h->mask = TXN_HTAB_INITIAL - 1;
	h->n = 0;
	return 0;
}

static void htab_grow(struct txn_htab *h)
{
	size_t nb = (h->mask + 1) * 2;
	struct txn **b = calloc(nb, sizeof(*b));

	/* Without memory the chains only get longer: lookups stay correct. */
	if (!b)
		return;
	for (size_t i = 0; i <= h->mask; i++) {
		struct txn *t = h->b[i];

		while (t) {
			struct txn *next = t->hnext;
			size_t j = t->hash & (nb - 1);

			t->hnext = b[j];
			b[j] = t;
			t = next;
		}
	}
	free(h->b);
	h->b = b;
	h->mask = nb - 1;
}

static void htab_insert(struct txn_htab *h, struct txn *t)
{
	size_t i;

	if (h->n >= h->mask + 1)
		htab_grow(h);
	i = t->hash & h->mask;
	t->hnext = h->b[i];
	h->b[i] = t;
	h->n++;
}

static void htab_remove(struct txn_htab *h, struct txn *t)
{
	struct txn **pp = &h->b[t->hash & h->mask];

	while (*pp && *pp != t)
		pp = &(*pp)->hnext;
	if (*pp) {
		*pp = t->hnext;
		h->n--;
	}
	t->hnext = NULL;
}

static struct txn_htab *table_of(struct txn_layer *l, const struct txn *t)
{
	return t->kind == TXN_IST || t->kind == TXN_NIST ? &l->server : &l->client;
}

static struct txn *find_server(struct txn_layer *l, const char *branch, const char *host, int port,
			       const char *method)
{
	uint64_t h = server_hash(branch, host, port, method);

	for (struct txn *t = l->server.b[h & l->server.mask]; t; t = t->hnext)
		if (t->hash == h && !t->rfc2543 && t->sent_by_port == port &&
		    strcmp(t->method, method) == 0 && strcasecmp(t->branch, branch) == 0 &&
		    strcasecmp(t->sent_by, host) == 0)
			return t;
	return NULL;
}

static struct txn *find_client(struct txn_layer *l, const char *branch, const char *method)
{
	uint64_t h = client_hash(branch, method);

	for (struct txn *t = l->client.b[h & l->client.mask]; t; t = t->hnext)
		if (t->hash == h && strcmp(t->method, method) == 0 &&
		    strcasecmp(t->branch, branch) == 0)
			return t;
	return NULL;
}

/* RFC 3261 17.2.3, last paragraphs. */
static bool match_2543(const struct txn *t, osip_message_t *m, const char *ruri, const char *via,
		       enum match_mode mode)
{
	osip_message_t *r = t->req;

	if (strcmp(t->ruri_str, ruri) != 0 || strcmp(t->via_str, via) != 0)
		return false;
	if (!str_eq(tag_of(r->from), tag_of(m->from)) || cseq_num(r) != cseq_num(m))
		return false;
	if (!str_eq(r->call_id->number, m->call_id->number) ||
	    !str_eq(r->call_id->host, m->call_id->host))
		return false;
	switch (mode) {
	case MATCH_SAME:
		return str_eq(tag_of(r->to), tag_of(m->to)) &&
		       strcmp(t->method, m->cseq->method) == 0;
	case MATCH_ACK:
		/* the To tag of the response the server transaction sent */
		return t->kind == TXN_IST && str_eq(t->resp_to_tag, tag_of(m->to));
	case MATCH_CANCEL:
		return t->kind == TXN_IST && str_eq(tag_of(r->to), tag_of(m->to));
	}
	return false;
}

static struct txn *find_server_2543(struct txn_layer *l, osip_message_t *m, enum match_mode mode)
{
	uint64_t h = rfc2543_hash(m);
	struct txn *found = NULL;
	char *ruri = NULL;
	char *via = NULL;

	if (osip_uri_to_str(m->req_uri, &ruri) != OSIP_SUCCESS ||
	    osip_via_to_str(top_via(m), &via) != OSIP_SUCCESS)
		goto out;
	for (struct txn *t = l->server.b[h & l->server.mask]; t; t = t->hnext)
		if (t->hash == h && t->rfc2543 && match_2543(t, m, ruri, via, mode)) {
			found = t;
			break;
		}
out:
	osip_free(ruri);
	osip_free(via);
	return found;
}

/* The server transaction m belongs to; method is m's, or INVITE for an
 * ACK and for the INVITE a CANCEL cancels. */
static struct txn *lookup_server(struct txn_layer *l, osip_message_t *m, enum match_mode mode)
{
	osip_via_t *via = top_via(m);
	const char *branch = via_param(via, "branch");
	const char *method = mode == MATCH_SAME ? m->sip_method : "INVITE";
	int port = via_port(via);

	if (!has_cookie(branch))
		return find_server_2543(l, m, mode);
	if (port < 0)
		return NULL;
	return find_server(l, branch, via->host, port, method);
}

/* ---- timers ---- */

static uint64_t t64(const struct txn_layer *l)
{
	return 64 * (uint64_t)l->cfg.t1_ms;
}

/* 17.1.1.2: at least 32 s unreliable, 0 reliable */
static uint64_t timer_d_ms(const struct txn *t)
{
	if (t->reliable)
		return 0;
	return t64(t->layer) > TXN_TIMER_D_MIN_MS ? t64(t->layer) : TXN_TIMER_D_MIN_MS;
}

static void timer_arm(struct txn *t, struct txn_timer *tm, enum txn_timer_id id, uint64_t ms)
{
	struct txn_layer *l = t->layer;

	if (tm->armed)
		l->tops->disarm(l->tctx, tm);
	if (tm == &t->retrans)
		t->retrans_id = id;
	else
		t->timeout_id = id;
	tm->armed = true;
	l->tops->arm(l->tctx, tm, ms);
}

static void timer_disarm(struct txn *t, struct txn_timer *tm)
{
	if (!tm->armed)
		return;
	tm->armed = false;
	t->layer->tops->disarm(t->layer->tctx, tm);
}

/* ---- lifetime ---- */

static void txn_free(struct txn *t)
{
	timer_disarm(t, &t->retrans);
	timer_disarm(t, &t->timeout);
	if (t->req)
		osip_message_free(t->req);
	osip_free(t->req_buf);
	osip_free(t->resp_buf);
	osip_free(t->ack_buf);
	osip_free(t->ruri_str);
	osip_free(t->via_str);
	osip_free(t->resp_to_tag);
	free(t);
}

static void txn_ref(struct txn *t)
{
	t->refs++;
}

static void txn_unref(struct txn *t)
{
	if (--t->refs == 0)
		txn_free(t);
}

/* Takes req: it belongs to the transaction, even on failure. */
static struct txn *txn_alloc(struct txn_layer *l, enum txn_kind kind, osip_message_t *req)
{
	struct txn *t = calloc(1, sizeof(*t));

	if (!t) {
		osip_message_free(req);
		return NULL;
	}
	t->layer = l;
	t->refs = 1;
	t->kind = kind;
	t->req = req;
	t->method = req->sip_method;
	t->retrans.owner = t;
	t->timeout.owner = t;
	return t;
}

/* A client transaction whose request went over stream t->peer.conn waits
 * there for its final response. */
static void conn_bind(struct txn *t)
{
	struct txn **head;

	if (!t->reliable || !t->peer.conn || t->cprev)
		return;
	head = &t->layer->by_conn[t->peer.conn % TXN_CONN_BUCKETS];
	t->cnext = *head;
	if (t->cnext)
		t->cnext->cprev = &t->cnext;
	*head = t;
	t->cprev = head;
}

/* A final response, or the end: the connection no longer matters. */
static void conn_unbind(struct txn *t)
{
	if (!t->cprev)
		return;
	*t->cprev = t->cnext;
	if (t->cnext)
		t->cnext->cprev = t->cprev;
	t->cnext = NULL;
	t->cprev = NULL;
}

static void terminate(struct txn *t)
{
	struct txn_layer *l = t->layer;

	if (t->state == TXN_TERMINATED)
		return;
	t->state = TXN_TERMINATED;
	conn_unbind(t);
	timer_disarm(t, &t->retrans);
	timer_disarm(t, &t->timeout);
	if (t->linked) {
		htab_remove(table_of(l, t), t);
		t->linked = false;
	}
	if (l->cb.terminated)
		l->cb.terminated(l->arg, t);
	txn_unref(t); /* the table's */
}

static int send_buf(struct txn *t, const char *buf, size_t len)
{
	struct txn_layer *l = t->layer;
	uint64_t conn = t->peer.conn;

	return l->cb.send(l->arg, &t->peer, t->reliable, buf, len, &conn);
}

/* A send outside any transaction: the stream it used binds nothing. */
static int send_to(struct txn_layer *l, const struct txn_addr *to, const char *buf, size_t len)
{
	uint64_t conn = to->conn;

	return l->cb.send(l->arg, to, to->transport != SIP_TP_UDP, buf, len, &conn);
}

/* A send the layer made on its own failed (RFC 3261 17.1.4, 17.2.4). */
static void fail(struct txn *t, int err)
{
	struct txn_layer *l = t->layer;

	LOG_DEBUG(call_id_of(t->req), "transaction transport error", LF_S("method", t->method),
		  LF_S("state", txn_state_name(t->state)), LF_S("error", strerror(err)));
	if (l->cb.transport_error)
		l->cb.transport_error(l->arg, t, err);
	terminate(t);
}

/* A zero-length timer (D, I, J, K over a reliable transport) ends the state
 * at once rather than through the clock. */
static void wait_then_terminate(struct txn *t, enum txn_timer_id id, uint64_t ms)
{
	if (ms == 0)
		terminate(t);
	else
		timer_arm(t, &t->timeout, id, ms);
}

static int send_trying(struct txn *t)
{
	osip_message_t *r = NULL;
	char *buf = NULL;
	size_t len = 0;
	int err;

	err = trying_for(t->req, &r);
	if (!err)
		err = serialize(r, &buf, &len);
	if (!err)
		err = send_buf(t, buf, len);
	if (err) {
		if (r)
			osip_message_free(r);
		osip_free(buf);
		return err;
	}
	/* it is the latest provisional response from now on */
	osip_message_free(r);
	t->resp_buf = buf;
	t->resp_len = len;
	return 0;
}

static void on_retrans(struct txn *t)
{
	struct txn_layer *l = t->layer;
	const char *buf = t->req_buf;
	size_t len = t->req_len;
	int err;

	switch (t->retrans_id) {
	case TXN_TIMER_TRYING:
		/* the TU has said nothing within trying_delay_ms */
		if (t->state == TXN_PROCEEDING && !t->resp_buf) {
			err = send_trying(t);
			if (err)
				fail(t, err);
		}
		return;
	case TXN_TIMER_A:
		t->interval *= 2;
		break;
	case TXN_TIMER_E:
		/* 17.1.2.2: doubling up to T2 while Trying; T2 once Proceeding */
		if (t->state == TXN_PROCEEDING)
			t->interval = l->cfg.t2_ms;
		else
			t->interval =
				t->interval * 2 < l->cfg.t2_ms ? t->interval * 2 : l->cfg.t2_ms;
		break;
	case TXN_TIMER_G:
		buf = t->resp_buf;
		len = t->resp_len;
		t->interval = t->interval * 2 < l->cfg.t2_ms ? t->interval * 2 : l->cfg.t2_ms;
		break;
	default:
		return;
	}
	err = send_buf(t, buf, len);
	if (err) {
		fail(t, err);
		return;
	}
	t->retransmits++;
	timer_arm(t, &t->retrans, t->retrans_id, t->interval);
}

static void on_timeout(struct txn *t)
{
	struct txn_layer *l = t->layer;
	enum txn_timer_id which = t->timeout_id;

	if (which == TXN_TIMER_B || which == TXN_TIMER_F || which == TXN_TIMER_H) {
		LOG_DEBUG(call_id_of(t->req), "transaction timeout", LF_S("method", t->method),
			  LF_S("timer", txn_timer_name(which)));
		if (l->cb.timeout)
			l->cb.timeout(l->arg, t, which);
	}
	terminate(t);
}

/* Called by a timer backend when tm is due. */
static void timer_expired(struct txn_timer *tm)
{
	struct txn *t = tm->owner;

	tm->armed = false;
	txn_ref(t);
	if (tm == &t->retrans)
		on_retrans(t);
	else
		on_timeout(t);
	txn_unref(t);
}

/* ---- the layer ---- */

void txn_config_defaults(struct txn_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->t1_ms = 500;
	cfg->t2_ms = 4000;
	cfg->t4_ms = 5000;
	cfg->trying_delay_ms = 0;
}

int txn_layer_create(struct txn_layer **out, const struct txn_config *cfg,
		     const struct txn_callbacks *cb, void *arg, const struct txn_timer_ops *ops,
		     void *timer_ctx)
{
	struct txn_layer *l = NULL;
	int err = EINVAL;

	if (!out || !cb || !cb->send || !ops || !ops->arm || !ops->disarm)
		goto out;
	if (cfg && (cfg->t1_ms == 0 || cfg->t2_ms < cfg->t1_ms || cfg->t4_ms == 0))
		goto out;
	err = ENOMEM;
	l = calloc(1, sizeof(*l));
	if (!l)
		goto out;
	if (cfg)
		l->cfg = *cfg;
	else
		txn_config_defaults(&l->cfg);
	l->cb = *cb;
	l->arg = arg;
	l->tops = ops;
	l->tctx = timer_ctx;
	if (htab_init(&l->server) || htab_init(&l->client))
		goto out;
	/* Branches must be unique in space and time (RFC 3261 8.1.1.7): a
	 * random salt per layer, then a counter. */
	if (getrandom(&l->branch_salt, sizeof(l->branch_salt), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(l->branch_salt))
		l->branch_salt = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)l;
	err = 0;
out:
	if (err)
		txn_layer_destroy(l);
	else
		*out = l;
	return err;
}

static void drain(struct txn_layer *l, struct txn_htab *h)
{
	if (!h->b)
		return;
	for (size_t i = 0; i <= h->mask; i++)
		while (h->b[i])
			terminate(h->b[i]);
}

void txn_layer_destroy(struct txn_layer *l)
{
	if (!l)
		return;
	l->destroying = true;
	drain(l, &l->server);
	drain(l, &l->client);
	free(l->server.b);
	free(l->client.b);
	free(l);
}

size_t txn_layer_count(const struct txn_layer *l)
{
	return l ? l->server.n + l->client.n : 0;
}

/* RFC 3261 18.2.2 for a request received from `from`. A stream answers on
 * its connection, and should that be gone, the transport opens a new one to
 * the source IP at the sent-by port (the source port of a stream is
 * ephemeral). UDP answers the source IP (which is what a received parameter
 * would name) at the source port when the client asked for rport (RFC
 * 3581), else at the sent-by port. maddr (multicast) is not supported and
 * is ignored. */
static void response_dest(struct txn_addr *out, const struct txn_addr *from, osip_via_t *via)
{
	int port;

	*out = *from;
	if (from->transport == SIP_TP_UDP && via_has_param(via, "rport"))
		return;
	port = via_port(via);
	if (port <= 0)
		return;
	if (out->addr.ss_family == AF_INET)
		((struct sockaddr_in *)&out->addr)->sin_port = htons((uint16_t)port);
	else if (out->addr.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&out->addr)->sin6_port = htons((uint16_t)port);
}

static void receive_ack(struct txn_layer *l, osip_message_t *msg, const struct txn_addr *from)
{
	struct txn *t = lookup_server(l, msg, MATCH_ACK);

	if (t && t->state == TXN_COMPLETED) {
		/* 17.2.1: the ACK for our non-2xx; stop G, absorb ACKs for T4 */
		t->state = TXN_CONFIRMED;
		txn_ref(t);
		timer_disarm(t, &t->retrans);
		wait_then_terminate(t, TXN_TIMER_I, t->reliable ? 0 : l->cfg.t4_ms);
		txn_unref(t);
		return;
	}
	if (t && t->state != TXN_ACCEPTED)
		return; /* Confirmed absorbs; Proceeding has nothing to ACK */
	/* RFC 6026 Accepted "ACK / to TU", and any ACK for a 2xx: not part of
	 * the INVITE transaction */
	if (l->cb.request)
		l->cb.request(l->arg, NULL, msg, from);
}

static void absorb_request(struct txn *t)
{
	int err = 0;

	switch (t->state) {
	case TXN_PROCEEDING:
	case TXN_COMPLETED:
		/* 17.2.1, 17.2.2: resend the last provisional or the final */
		if (t->resp_buf)
			err = send_buf(t, t->resp_buf, t->resp_len);
		break;
	default:
		/* NIST Trying has nothing to resend; IST Confirmed absorbs;
		 * RFC 6026 Accepted absorbs INVITEs without resending */
		break;
	}
	if (err)
		fail(t, err);
}

static int receive_request(struct txn_layer *l, osip_message_t *msg, const struct txn_addr *from)
{
	osip_via_t *via = top_via(msg);
	const char *branch = via_param(via, "branch");
	struct txn *t;
	int err;

	if (MSG_IS_ACK(msg)) {
		receive_ack(l, msg, from);
		osip_message_free(msg);
		return 0;
	}
	t = lookup_server(l, msg, MATCH_SAME);
	if (t) {
		txn_ref(t);
		absorb_request(t);
		txn_unref(t);
		osip_message_free(msg);
		return 0;
	}

	t = txn_alloc(l, MSG_IS_INVITE(msg) ? TXN_IST : TXN_NIST, msg);
	if (!t)
		return ENOMEM;
	response_dest(&t->peer, from, via);
	t->reliable = from->transport != SIP_TP_UDP;
	if (has_cookie(branch)) {
		t->branch = branch;
		t->sent_by = via->host;
		t->sent_by_port = via_port(via);
		err = EBADMSG;
		if (t->sent_by_port < 0)
			goto out;
		t->hash = server_hash(branch, via->host, t->sent_by_port, t->method);
	} else {
		t->rfc2543 = true;
		err = ENOMEM;
		if (osip_uri_to_str(msg->req_uri, &t->ruri_str) != OSIP_SUCCESS ||
		    osip_via_to_str(via, &t->via_str) != OSIP_SUCCESS)
			goto out;
		t->hash = rfc2543_hash(msg);
	}
	t->state = t->kind == TXN_IST ? TXN_PROCEEDING : TXN_TRYING;
	/* 17.2.1: a 100 Trying unless the TU answers within 200 ms. Sent
	 * before the transaction is published, so a failure here drops the
	 * request without any callback about a transaction the TU never saw. */
	if (t->kind == TXN_IST && l->cfg.trying_delay_ms == 0) {
		err = send_trying(t);
		if (err)
			goto out;
	}
	err = 0;
	htab_insert(&l->server, t);
	t->linked = true;
	txn_ref(t); /* the table keeps the first reference, this one is ours */
	if (t->kind == TXN_IST && l->cfg.trying_delay_ms > 0)
		timer_arm(t, &t->retrans, TXN_TIMER_TRYING, l->cfg.trying_delay_ms);
	if (l->cb.request)
		l->cb.request(l->arg, t, t->req, from);
out:
	txn_unref(t);
	return err;
}

static int send_ack(struct txn *t, osip_message_t *resp)
{
	osip_message_t *ack = NULL;
	int err;

	err = build_ack(t->req, resp, &ack);
	if (err)
		return err;
	err = serialize(ack, &t->ack_buf, &t->ack_len);
	osip_message_free(ack);
	if (err)
		return err;
	return send_buf(t, t->ack_buf, t->ack_len);
}

static void ict_response(struct txn *t, osip_message_t *msg)
{
	struct txn_layer *l = t->layer;
	int code = msg->status_code;
	int err;

	switch (t->state) {
	case TXN_CALLING:
	case TXN_PROCEEDING:
		/* no more retransmissions, and Timer B only runs while Calling */
		timer_disarm(t, &t->retrans);
		timer_disarm(t, &t->timeout);
		if (code >= 200)
			conn_unbind(t); /* a final response: the stream may go */
		if (code < 200) {
			t->state = TXN_PROCEEDING;
		} else if (code < 300) {
			/* RFC 6026: Accepted for 64*T1, every 2xx to the TU */
			t->state = TXN_ACCEPTED;
			timer_arm(t, &t->timeout, TXN_TIMER_M, t64(l));
		} else {
			t->state = TXN_COMPLETED;
			err = send_ack(t, msg);
			if (err) {
				if (l->cb.response)
					l->cb.response(l->arg, t, msg);
				fail(t, err);
				return;
			}
		}
		if (l->cb.response)
			l->cb.response(l->arg, t, msg);
		if (t->state == TXN_COMPLETED)
			wait_then_terminate(t, TXN_TIMER_D, timer_d_ms(t));
		break;
	case TXN_ACCEPTED:
		if (code >= 200 && code < 300 && l->cb.response)
			l->cb.response(l->arg, t, msg);
		break;
	case TXN_COMPLETED:
		/* 17.1.1.2: a retransmitted final response gets the same ACK */
		if (code >= 300 && t->ack_buf) {
			err = send_buf(t, t->ack_buf, t->ack_len);
			if (err)
				fail(t, err);
		}
		break;
	default:
		break;
	}
}

static void nict_response(struct txn *t, osip_message_t *msg)
{
	struct txn_layer *l = t->layer;

	if (t->state != TXN_TRYING && t->state != TXN_PROCEEDING)
		return; /* Completed absorbs retransmissions */
	if (msg->status_code < 200) {
		/* Timer E keeps running; it resets to T2 when it next fires */
		t->state = TXN_PROCEEDING;
		if (l->cb.response)
			l->cb.response(l->arg, t, msg);
		return;
	}
	t->state = TXN_COMPLETED;
	conn_unbind(t);
	timer_disarm(t, &t->retrans);
	timer_disarm(t, &t->timeout);
	if (l->cb.response)
		l->cb.response(l->arg, t, msg);
	if (t->state == TXN_COMPLETED)
		wait_then_terminate(t, TXN_TIMER_K, t->reliable ? 0 : l->cfg.t4_ms);
}

static void receive_response(struct txn_layer *l, osip_message_t *msg, const struct txn_addr *from)
{
	const char *branch = via_param(top_via(msg), "branch");
	struct txn *t = branch ? find_client(l, branch, msg->cseq->method) : NULL;

	if (!t) {
		if (l->cb.stray_response)
			l->cb.stray_response(l->arg, msg, from);
		return;
	}
	txn_ref(t);
	if (t->kind == TXN_ICT)
		ict_response(t, msg);
	else
		nict_response(t, msg);
	txn_unref(t);
}

int txn_layer_receive(struct txn_layer *l, osip_message_t *msg, const struct txn_addr *from)
{
	const char *why;
	int err = EINVAL;

	if (!l || !msg || !from)
		goto out;
	err = ESHUTDOWN;
	if (l->destroying)
		goto out;
	why = msg_check(msg);
	if (why) {
		LOG_DEBUG(call_id_of(msg), "message dropped", LF_S("reason", why));
		err = EBADMSG;
		goto out;
	}
	if (MSG_IS_REQUEST(msg)) {
		err = receive_request(l, msg, from);
		msg = NULL; /* taken */
	} else {
		receive_response(l, msg, from);
		err = 0;
	}
out:
	if (msg)
		osip_message_free(msg);
	return err;
}

static int add_branch(struct txn_layer *l, osip_via_t *via)
{
	char buf[48];
	char *v;

	snprintf(buf, sizeof(buf), TXN_COOKIE "%016" PRIx64 "%08" PRIx64, l->branch_salt,
		 ++l->branch_seq);
	v = osip_strdup(buf);
	if (!v)
		return ENOMEM;
	/* osip_via_set_branch takes v */
	if (osip_via_set_branch(via, v) != OSIP_SUCCESS)
		return ENOMEM;
	return 0;
}

int txn_request(struct txn_layer *l, osip_message_t *req, const struct txn_addr *to, void *tu_data,
		struct txn **out)
{
	struct txn *t = NULL;
	osip_via_t *via;
	const char *branch;
	uint64_t conn;
	int err = EINVAL;

	if (!l || !req || !to)
		goto out;
	err = ESHUTDOWN;
	if (l->destroying)
		goto out;
	err = EINVAL;
	/* the ACK for a 2xx is not a transaction (txn_layer_send); the ACK
	 * for a non-2xx is the layer's own */
	if (!MSG_IS_REQUEST(req) || msg_check(req) || MSG_IS_ACK(req))
		goto out;
	via = top_via(req);
	if (!via_has_param(via, "branch")) {
		err = add_branch(l, via);
		if (err)
			goto out;
		/* the message may carry a serialization cached by the parser */
		osip_message_force_update(req);
	}
	branch = via_param(via, "branch");
	err = EINVAL;
	if (!has_cookie(branch))
		goto out;
	err = EEXIST;
	if (find_client(l, branch, req->sip_method))
		goto out;
	err = ENOMEM;
	t = txn_alloc(l, MSG_IS_INVITE(req) ? TXN_ICT : TXN_NICT, req);
	req = NULL;
	if (!t)
		goto out;
	t->branch = branch;
	t->hash = client_hash(branch, t->method);
	t->peer = *to;
	t->reliable = to->transport != SIP_TP_UDP;
	t->data = tu_data;
	conn = to->conn;
	err = serialize(t->req, &t->req_buf, &t->req_len);
	if (err)
		goto out;
	err = l->cb.send(l->arg, &t->peer, t->reliable, t->req_buf, t->req_len, &conn);
	if (err)
		goto out;
	if (t->reliable)
		t->peer.conn = conn; /* the stream the request went over */
	htab_insert(&l->client, t);
	t->linked = true;
	conn_bind(t);
	t->interval = l->cfg.t1_ms;
	if (t->kind == TXN_ICT) {
		t->state = TXN_CALLING;
		if (!t->reliable)
			timer_arm(t, &t->retrans, TXN_TIMER_A, t->interval);
		timer_arm(t, &t->timeout, TXN_TIMER_B, t64(l));
	} else {
		t->state = TXN_TRYING;
		if (!t->reliable)
			timer_arm(t, &t->retrans, TXN_TIMER_E, t->interval);
		timer_arm(t, &t->timeout, TXN_TIMER_F, t64(l));
	}
out:
	if (err) {
		if (t)
			txn_unref(t);
		else if (req)
			osip_message_free(req);
	} else if (out) {
		*out = t;
	}
	return err;
}

static bool response_allowed(const struct txn *t, int code)
{
	switch (t->state) {
	case TXN_TRYING:
	case TXN_PROCEEDING:
		return true;
	case TXN_ACCEPTED:
		return code >= 200 && code < 300;
	default:
		return false;
	}
}

/* The state change once resp has gone out. */
static void responded(struct txn *t, int code)
{
	struct txn_layer *l = t->layer;

	if (t->kind == TXN_NIST) {
		if (code < 200) {
			t->state = TXN_PROCEEDING;
			return;
		}
		t->state = TXN_COMPLETED;
		wait_then_terminate(t, TXN_TIMER_J, t->reliable ? 0 : t64(l));
		return;
	}
	if (t->state == TXN_ACCEPTED)
		return;		      /* the TU retransmitting its 2xx */
	timer_disarm(t, &t->retrans); /* a pending delayed 100 Trying */
	if (code < 200)
		return;
	if (code < 300) {
		t->state = TXN_ACCEPTED;
		timer_arm(t, &t->timeout, TXN_TIMER_L, t64(l));
		return;
	}
	t->state = TXN_COMPLETED;
	t->interval = l->cfg.t1_ms;
	if (!t->reliable)
		timer_arm(t, &t->retrans, TXN_TIMER_G, t->interval);
	timer_arm(t, &t->timeout, TXN_TIMER_H, t64(l));
}

int txn_respond(struct txn *t, osip_message_t *resp)
{
	char *buf = NULL;
	size_t len = 0;
	int code;
	int err = EINVAL;

	if (!t || !resp || !MSG_IS_RESPONSE(resp))
		goto out;
	if (t->kind != TXN_IST && t->kind != TXN_NIST)
		goto out;
	code = resp->status_code;
	if (code < 100 || code > 699 || !response_allowed(t, code))
		goto out;
	err = serialize(resp, &buf, &len);
	if (err)
		goto out;
	txn_ref(t);
	err = send_buf(t, buf, len);
	if (err) {
		LOG_DEBUG(call_id_of(t->req), "response not sent", LF_I("status", code),
			  LF_S("error", strerror(err)));
		terminate(t);
	} else {
		if (t->rfc2543 && code >= 200) {
			const char *tag = tag_of(resp->to);

			osip_free(t->resp_to_tag);
			t->resp_to_tag = tag ? osip_strdup(tag) : NULL;
		}
		osip_free(t->resp_buf);
		t->resp_buf = buf;
		t->resp_len = len;
		buf = NULL;
		responded(t, code);
	}
	txn_unref(t);
out:
	osip_free(buf);
	if (resp)
		osip_message_free(resp);
	return err;
}

int txn_retransmit(struct txn *t)
{
	if (!t || (t->kind != TXN_IST && t->kind != TXN_NIST) || !t->resp_buf ||
	    t->state == TXN_TERMINATED)
		return EINVAL;
	return send_buf(t, t->resp_buf, t->resp_len);
}

int txn_layer_send_buf(struct txn_layer *l, const char *buf, size_t len, const struct txn_addr *to)
{
	if (!l || !buf || !len || !to)
		return EINVAL;
	return send_to(l, to, buf, len);
}

int txn_layer_send(struct txn_layer *l, osip_message_t *msg, const struct txn_addr *to)
{
	char *buf = NULL;
	size_t len = 0;
	int err = EINVAL;

	if (!l || !msg || !to)
		goto out;
	err = serialize(msg, &buf, &len);
	if (err)
		goto out;
	err = send_to(l, to, buf, len);
out:
	osip_free(buf);
	if (msg)
		osip_message_free(msg);
	return err;
}

struct txn *txn_find_invite_for_cancel(struct txn_layer *l, osip_message_t *cancel)
{
	struct txn *t;

	if (!l || !cancel || !MSG_IS_CANCEL(cancel) || msg_check(cancel))
		return NULL;
	t = lookup_server(l, cancel, MATCH_CANCEL);
	return t && t->kind == TXN_IST ? t : NULL;
}

void txn_layer_conn_closed(struct txn_layer *l, uint64_t conn, int err)
{
	struct txn *list = NULL;
	struct txn *t, *next;

	if (!l || !conn || l->destroying)
		return;
	if (err <= 0)
		err = ECONNRESET;
	/* Take them out of the index first, each with a reference: the
	 * callbacks may abort or start transactions, in this bucket too. The
	 * bucket is newest first, so the list is oldest first. */
	for (t = l->by_conn[conn % TXN_CONN_BUCKETS]; t; t = next) {
		next = t->cnext;
		if (t->peer.conn != conn)
			continue;
		conn_unbind(t);
		txn_ref(t);
		t->failing = list;
		list = t;
	}
	for (t = list; t; t = next) {
		next = t->failing;
		t->failing = NULL;
		/* still waiting, unless a callback ended it meanwhile */
		if (t->state == TXN_CALLING || t->state == TXN_TRYING ||
		    t->state == TXN_PROCEEDING) {
			LOG_DEBUG(call_id_of(t->req), "transaction stream closed",
				  LF_S("method", t->method), LF_U("conn", conn));
			fail(t, err);
		}
		txn_unref(t);
	}
}

void txn_abort(struct txn *t)
{
	if (!t || t->state == TXN_TERMINATED)
		return;
	txn_ref(t);
	terminate(t);
	txn_unref(t);
}

unsigned txn_retransmits(const struct txn *t)
{
	return t->retransmits;
}

void *txn_get_data(const struct txn *t)
{
	return t->data;
}

void txn_set_data(struct txn *t, void *data)
{
	t->data = data;
}

enum txn_kind txn_get_kind(const struct txn *t)
{
	return t->kind;
}

enum txn_state txn_get_state(const struct txn *t)
{
	return t->state;
}

osip_message_t *txn_get_request(const struct txn *t)
{
	return t->req;
}

const struct txn_addr *txn_get_peer(const struct txn *t)
{
	return &t->peer;
}

void txn_set_peer(struct txn *t, const struct txn_addr *to)
{
	if (t->kind == TXN_IST || t->kind == TXN_NIST)
		t->peer = *to;
}

const char *txn_state_name(enum txn_state s)
{
	static const char *const names[] = {
		[TXN_CALLING] = "calling",	 [TXN_TRYING] = "trying",
		[TXN_PROCEEDING] = "proceeding", [TXN_COMPLETED] = "completed",
		[TXN_CONFIRMED] = "confirmed",	 [TXN_ACCEPTED] = "accepted",
		[TXN_TERMINATED] = "terminated",
	};

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

const char *txn_timer_name(enum txn_timer_id id)
{
	static const char *const names[] = {
		[TXN_TIMER_A] = "A",	       [TXN_TIMER_B] = "B", [TXN_TIMER_D] = "D",
		[TXN_TIMER_E] = "E",	       [TXN_TIMER_F] = "F", [TXN_TIMER_G] = "G",
		[TXN_TIMER_H] = "H",	       [TXN_TIMER_I] = "I", [TXN_TIMER_J] = "J",
		[TXN_TIMER_K] = "K",	       [TXN_TIMER_L] = "L", [TXN_TIMER_M] = "M",
		[TXN_TIMER_TRYING] = "trying",
	};

	return (unsigned)id < sizeof(names) / sizeof(names[0]) ? names[id] : "?";
}

/* ---- timer backend: libevent ---- */

static void libevent_fired(evutil_socket_t fd, short what, void *arg)
{
	timer_expired(arg);
}

static void libevent_arm(void *ctx, struct txn_timer *tm, uint64_t ms)
{
	struct event_base *base = ctx;
	struct timeval tv = { .tv_sec = (time_t)(ms / 1000),
			      .tv_usec = (suseconds_t)(ms % 1000) * 1000 };
	const struct timeval *common;

	if (!tm->assigned) {
		evtimer_assign(&tm->ev, base, libevent_fired, tm);
		tm->assigned = true;
	}
	/* A handful of durations recur (T1 doublings, T2, T4, 64*T1): as
	 * common timeouts they cost O(1) each instead of a heap operation. */
	common = event_base_init_common_timeout(base, &tv);
	evtimer_add(&tm->ev, common ? common : &tv);
}

static void libevent_disarm(void *ctx, struct txn_timer *tm)
{
	evtimer_del(&tm->ev);
}

const struct txn_timer_ops txn_timer_ops_libevent = {
	.arm = libevent_arm,
	.disarm = libevent_disarm,
};

/* ---- timer backend: the fake clock (a binary min-heap on due, seq) ---- */

struct txn_fake_clock {
	uint64_t now;
	uint64_t seq;
	struct txn_timer **heap;
	size_t n;
	size_t cap;
};

static bool heap_less(const struct txn_timer *a, const struct txn_timer *b)
{
	return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void heap_set(struct txn_fake_clock *c, size_t i, struct txn_timer *tm)
{
	c->heap[i] = tm;
	tm->slot = i;
}

static void heap_up(struct txn_fake_clock *c, size_t i)
{
	struct txn_timer *tm = c->heap[i];

	while (i > 0 && heap_less(tm, c->heap[(i - 1) / 2])) {
		heap_set(c, i, c->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_set(c, i, tm);
}

static void heap_down(struct txn_fake_clock *c, size_t i)
{
	struct txn_timer *tm = c->heap[i];

	for (;;) {
		size_t k = 2 * i + 1;

		if (k >= c->n)
			break;
		if (k + 1 < c->n && heap_less(c->heap[k + 1], c->heap[k]))
			k++;
		if (!heap_less(c->heap[k], tm))
			break;
		heap_set(c, i, c->heap[k]);
		i = k;
	}
	heap_set(c, i, tm);
}

static void heap_remove(struct txn_fake_clock *c, size_t i)
{
	struct txn_timer *last = c->heap[--c->n];

	if (i == c->n)
		return;
	heap_set(c, i, last);
	heap_down(c, i);
	heap_up(c, last->slot);
}

static void fake_arm(void *ctx, struct txn_timer *tm, uint64_t ms)
{
	struct txn_fake_clock *c = ctx;

	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		struct txn_timer **h = realloc(c->heap, cap * sizeof(*h));

		/* arm() cannot fail; a test clock that silently lost a timer
		 * would make tests lie, so it stops the test instead */
		if (!h)
			abort();
		c->heap = h;
		c->cap = cap;
	}
	tm->due = c->now + ms;
	tm->seq = c->seq++;
	c->heap[c->n] = tm;
	tm->slot = c->n++;
	heap_up(c, tm->slot);
}

static void fake_disarm(void *ctx, struct txn_timer *tm)
{
	heap_remove(ctx, tm->slot);
}

const struct txn_timer_ops txn_timer_ops_fake = {
	.arm = fake_arm,
	.disarm = fake_disarm,
};

int txn_fake_clock_create(struct txn_fake_clock **out)
{
	struct txn_fake_clock *c = calloc(1, sizeof(*c));

	if (!c)
		return ENOMEM;
	*out = c;
	return 0;
}

void txn_fake_clock_destroy(struct txn_fake_clock *c)
{
	if (!c)
		return;
	free(c->heap);
	free(c);
}

void txn_fake_clock_advance(struct txn_fake_clock *c, uint64_t ms)
{
	uint64_t target = c->now + ms;

	while (c->n > 0 && c->heap[0]->due <= target) {
		struct txn_timer *tm = c->heap[0];

		heap_remove(c, 0);
		c->now = tm->due;
		timer_expired(tm);
	}
	c->now = target;
}

uint64_t txn_fake_clock_now(const struct txn_fake_clock *c)
{
	return c->now;
}

size_t txn_fake_clock_pending(const struct txn_fake_clock *c)
{
	return c->n;
}
