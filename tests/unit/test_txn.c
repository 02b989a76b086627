/* The transaction layer on a fake clock and a fake transport: every timer
 * of the four state machines at the exact time RFC 3261 17 / RFC 6026 say,
 * absorbed retransmissions, losses, reliable transports, ACK and CANCEL
 * matching, RFC 2543 fallback matching, thousands of transactions, and client
 * transactions failing at once when their stream closes. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>
#include <osipparser2/osip_parser.h>

#include "srtpbridge/txn.h"

struct sent {
	uint64_t at;
	struct txn_addr to;
	bool reliable;
	char *buf;
	size_t len;
};

/* The fake transport and the fake TU record everything here. */
struct fx {
	struct txn_fake_clock *clk;
	struct txn_layer *l;
	struct event_base *base; /* the libevent test only */

	struct sent *sent;
	size_t nsent, capsent;
	bool keep; /* keep what was sent (off for the big test) */
	size_t sends;
	int fail_send;	   /* errno the transport returns ... */
	size_t fail_after; /* ... once this many sends succeeded */
	uint64_t stream;   /* the connection a stream send reports using, 0: to->conn */

	char log[512]; /* one letter per callback, in order */
	size_t nlog;
	unsigned requests, acks, responses, strays, timeouts, terrs, terminated;
	struct txn *req_txn, *resp_txn, *term_txn;
	int resp_code;
	int terr_err;			  /* the last transport_error's */
	char terr_ids[256];		  /* the Call-IDs of transport errors, in order */
	void (*terr_hook)(struct txn *t); /* the TU's reaction to a transport error */
	enum txn_timer_id timeout_which;
	uint64_t timeout_at, terminated_at;
	int auto_code; /* the TU answers inside request() with this, 0: no */
	unsigned mismatches;
	struct txn **by_cseq; /* the big test: server transactions by CSeq */
};

static struct fx F;

static void logc(char c)
{
	if (F.nlog + 1 < sizeof(F.log)) {
		F.log[F.nlog++] = c;
		F.log[F.nlog] = 0;
	}
}

static uint64_t now(void)
{
	return F.clk ? txn_fake_clock_now(F.clk) : 0;
}

/* ---- messages ---- */

__attribute__((format(printf, 1, 2))) static osip_message_t *msgf(const char *fmt, ...)
{
	char text[4096], wire[8192];
	osip_message_t *m = NULL;
	size_t n = 0;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	for (const char *p = text; *p && n + 2 < sizeof(wire); p++) {
		if (*p == '\n')
			wire[n++] = '\r';
		wire[n++] = *p;
	}
	wire[n] = 0;
	assert_int_equal(osip_message_init(&m), 0);
	if (osip_message_parse(m, wire, n) != 0)
		fail_msg("test message does not parse:\n%s", text);
	return m;
}

/* A request from the client at 192.0.2.10 to us. */
static osip_message_t *in_req(const char *method, const char *tp, const char *via_params, int cseq,
			      const char *callid)
{
	return msgf("%s sip:bob@192.0.2.20 SIP/2.0\n"
		    "Via: SIP/2.0/%s 192.0.2.10:5070;%s\n"
		    "Max-Forwards: 70\n"
		    "From: <sip:alice@example.com>;tag=a1\n"
		    "To: <sip:bob@example.com>\n"
		    "Call-ID: %s\n"
		    "CSeq: %d %s\n"
		    "Timestamp: 54\n"
		    "Content-Length: 0\n\n",
		    method, tp, via_params, callid, cseq, method);
}

/* A request of ours to a carrier. branch NULL: the layer adds one. */
static osip_message_t *out_req(const char *method, const char *branch, int cseq, const char *callid)
{
	char via[128];

	snprintf(via, sizeof(via), "SIP/2.0/UDP 192.0.2.1:5060%s%s", branch ? ";branch=" : "",
		 branch ? branch : "");
	return msgf("%s sip:carol@198.51.100.7 SIP/2.0\n"
		    "Via: %s\n"
		    "Route: <sip:edge.example.net;lr>\n"
		    "Max-Forwards: 70\n"
		    "From: <sip:sbc@example.org>;tag=s1\n"
		    "To: <sip:carol@example.net>\n"
		    "Call-ID: %s\n"
		    "CSeq: %d %s\n"
		    "Content-Length: 0\n\n",
		    method, via, callid, cseq, method);
}

/* A response to req, as its UAS would build it (RFC 3261 8.2.6.2). */
static osip_message_t *answer(osip_message_t *req, int code, const char *totag)
{
	char *via = NULL, *from = NULL, *to = NULL, *cid = NULL, *cseq = NULL;
	osip_via_t *v = NULL;
	const char *reason = osip_message_get_reason(code);
	osip_message_t *m;

	osip_message_get_via(req, 0, &v);
	assert_int_equal(osip_via_to_str(v, &via), 0);
	assert_int_equal(osip_from_to_str(req->from, &from), 0);
	assert_int_equal(osip_to_to_str(req->to, &to), 0);
	assert_int_equal(osip_call_id_to_str(req->call_id, &cid), 0);
	assert_int_equal(osip_cseq_to_str(req->cseq, &cseq), 0);
	m = msgf("SIP/2.0 %d %s\n"
		 "Via: %s\n"
		 "From: %s\n"
		 "To: %s%s%s\n"
		 "Call-ID: %s\n"
		 "CSeq: %s\n"
		 "Content-Length: 0\n\n",
		 code, reason ? reason : "Whatever", via, from, to, totag ? ";tag=" : "",
		 totag ? totag : "", cid, cseq);
	osip_free(via);
	osip_free(from);
	osip_free(to);
	osip_free(cid);
	osip_free(cseq);
	return m;
}

/* An ACK for inv: with the INVITE's branch (non-2xx), or a new one (2xx). */
static osip_message_t *ack_for(osip_message_t *inv, const char *totag, const char *new_branch)
{
	char *ruri = NULL, *via = NULL, *from = NULL, *to = NULL, *cid = NULL;
	osip_via_t *v = NULL;
	osip_message_t *m;

	osip_message_get_via(inv, 0, &v);
	assert_int_equal(osip_uri_to_str(inv->req_uri, &ruri), 0);
	assert_int_equal(osip_via_to_str(v, &via), 0);
	assert_int_equal(osip_from_to_str(inv->from, &from), 0);
	assert_int_equal(osip_to_to_str(inv->to, &to), 0);
	assert_int_equal(osip_call_id_to_str(inv->call_id, &cid), 0);
	if (new_branch) {
		char *semi = strstr(via, ";branch=");

		assert_non_null(semi);
		*semi = 0;
	}
	m = msgf("ACK %s SIP/2.0\n"
		 "Via: %s%s%s\n"
		 "Max-Forwards: 70\n"
		 "From: %s\n"
		 "To: %s;tag=%s\n"
		 "Call-ID: %s\n"
		 "CSeq: %s ACK\n"
		 "Content-Length: 0\n\n",
		 ruri, via, new_branch ? ";branch=" : "", new_branch ? new_branch : "", from, to,
		 totag, cid, inv->cseq->number);
	osip_free(ruri);
	osip_free(via);
	osip_free(from);
	osip_free(to);
	osip_free(cid);
	return m;
}

static osip_message_t *clone_of(osip_message_t *m)
{
	osip_message_t *c = NULL;

	assert_int_equal(osip_message_clone(m, &c), 0);
	return c;
}

static struct txn_addr addr(enum sip_transport tp, const char *ip, uint16_t port, uint64_t conn)
{
	struct txn_addr a;
	struct sockaddr_in *sin = (struct sockaddr_in *)&a.addr;

	memset(&a, 0, sizeof(a));
	a.transport = tp;
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	assert_int_equal(inet_pton(AF_INET, ip, &sin->sin_addr), 1);
	a.addrlen = sizeof(*sin);
	a.conn = conn;
	return a;
}

static uint16_t port_of(const struct txn_addr *a)
{
	return ntohs(((const struct sockaddr_in *)&a->addr)->sin_port);
}

static const char *branch_of(osip_message_t *m)
{
	osip_via_t *v = NULL;
	osip_generic_param_t *b = NULL;

	osip_message_get_via(m, 0, &v);
	assert_non_null(v);
	assert_int_equal(osip_via_param_get_byname(v, "branch", &b), 0);
	return b->gvalue;
}

/* ---- the fake transport and TU ---- */

static int cb_send(void *arg, const struct txn_addr *to, bool reliable, const char *buf, size_t len,
		   uint64_t *conn_out)
{
	struct fx *f = arg;
	struct sent *s;

	assert_non_null(conn_out);
	assert_int_equal(*conn_out, to->conn);
	if (f->fail_send && f->sends >= f->fail_after)
		return f->fail_send;
	f->sends++;
	if (reliable && f->stream)
		*conn_out = f->stream;
	if (!f->keep)
		return 0;
	if (f->nsent == f->capsent) {
		f->capsent = f->capsent ? f->capsent * 2 : 64;
		f->sent = realloc(f->sent, f->capsent * sizeof(*f->sent));
		assert_non_null(f->sent);
	}
	s = &f->sent[f->nsent++];
	s->at = now();
	s->to = *to;
	s->reliable = reliable;
	s->buf = malloc(len + 1);
	assert_non_null(s->buf);
	memcpy(s->buf, buf, len);
	s->buf[len] = 0;
	s->len = len;
	return 0;
}

static void cb_request(void *arg, struct txn *t, osip_message_t *msg, const struct txn_addr *from)
{
	struct fx *f = arg;

	assert_non_null(from);
	if (!t) {
		assert_true(MSG_IS_ACK(msg));
		f->acks++;
		logc('A');
		return;
	}
	f->requests++;
	f->req_txn = t;
	logc('Q');
	assert_ptr_equal(txn_get_request(t), msg);
	if (f->by_cseq)
		f->by_cseq[strtoul(msg->cseq->number, NULL, 10)] = t;
	if (f->auto_code)
		assert_int_equal(txn_respond(t, answer(msg, f->auto_code, "b1")), 0);
}

static void cb_response(void *arg, struct txn *t, osip_message_t *msg)
{
	struct fx *f = arg;

	f->responses++;
	f->resp_txn = t;
	f->resp_code = msg->status_code;
	logc('R');
	/* the big test tags each client transaction with its CSeq */
	if (txn_get_data(t) && (uintptr_t)txn_get_data(t) != strtoul(msg->cseq->number, NULL, 10))
		f->mismatches++;
}

static void cb_stray(void *arg, osip_message_t *msg, const struct txn_addr *from)
{
	struct fx *f = arg;

	assert_true(MSG_IS_RESPONSE(msg));
	f->strays++;
	logc('S');
}

static void cb_timeout(void *arg, struct txn *t, enum txn_timer_id which)
{
	struct fx *f = arg;

	f->timeouts++;
	f->timeout_which = which;
	f->timeout_at = now();
	logc('O');
}

static void cb_terr(void *arg, struct txn *t, int err)
{
	struct fx *f = arg;

	size_t n = strlen(f->terr_ids);

	assert_true(err > 0);
	f->terrs++;
	f->terr_err = err;
	snprintf(f->terr_ids + n, sizeof(f->terr_ids) - n, "%s ",
		 txn_get_request(t)->call_id->number);
	logc('E');
	if (f->terr_hook)
		f->terr_hook(t);
}

static void cb_terminated(void *arg, struct txn *t)
{
	struct fx *f = arg;

	assert_int_equal(txn_get_state(t), TXN_TERMINATED);
	f->terminated++;
	f->terminated_at = now();
	f->term_txn = t;
	if (f->req_txn == t)
		f->req_txn = NULL;
	if (f->by_cseq)
		f->by_cseq[strtoul(txn_get_request(t)->cseq->number, NULL, 10)] = NULL;
	logc('T');
}

static const struct txn_callbacks callbacks = {
	.send = cb_send,
	.request = cb_request,
	.response = cb_response,
	.stray_response = cb_stray,
	.timeout = cb_timeout,
	.transport_error = cb_terr,
	.terminated = cb_terminated,
};

static void fx_init(const struct txn_config *cfg)
{
	memset(&F, 0, sizeof(F));
	F.keep = true;
	assert_int_equal(txn_fake_clock_create(&F.clk), 0);
	assert_int_equal(txn_layer_create(&F.l, cfg, &callbacks, &F, &txn_timer_ops_fake, F.clk),
			 0);
}

static void fx_clear_log(void)
{
	F.nlog = 0;
	F.log[0] = 0;
}

static void fx_fini(void)
{
	txn_layer_destroy(F.l);
	F.l = NULL;
	/* destroying the layer cancelled every timer */
	if (F.clk)
		assert_int_equal(txn_fake_clock_pending(F.clk), 0);
	txn_fake_clock_destroy(F.clk);
	for (size_t i = 0; i < F.nsent; i++)
		free(F.sent[i].buf);
	free(F.sent);
	free(F.by_cseq);
	memset(&F, 0, sizeof(F));
}

static void advance_to(uint64_t t)
{
	assert_true(t >= now());
	txn_fake_clock_advance(F.clk, t - now());
}

static void recv_msg(osip_message_t *m, const struct txn_addr *from)
{
	assert_int_equal(txn_layer_receive(F.l, m, from), 0);
}

static bool sent_starts(size_t i, const char *prefix)
{
	assert_true(i < F.nsent);
	return strncmp(F.sent[i].buf, prefix, strlen(prefix)) == 0;
}

static osip_message_t *sent_msg(size_t i)
{
	osip_message_t *m = NULL;

	assert_true(i < F.nsent);
	assert_int_equal(osip_message_init(&m), 0);
	assert_int_equal(osip_message_parse(m, F.sent[i].buf, F.sent[i].len), 0);
	return m;
}

/* The times of the sends whose first line starts with prefix. */
static void assert_sent_at(const char *prefix, const uint64_t *want, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < F.nsent; i++) {
		if (!sent_starts(i, prefix))
			continue;
		if (k >= n)
			fail_msg("extra '%s' sent at %" PRIu64 " ms", prefix, F.sent[i].at);
		if (F.sent[i].at != want[k])
			fail_msg("'%s' #%zu sent at %" PRIu64 " ms, expected %" PRIu64, prefix, k,
				 F.sent[i].at, want[k]);
		k++;
	}
	if (k != n)
		fail_msg("'%s' sent %zu times, expected %zu", prefix, k, n);
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct txn_addr *carrier_udp(void)
{
	static struct txn_addr a;

	a = addr(SIP_TP_UDP, "198.51.100.7", 5060, 0);
	return &a;
}

static const struct txn_addr *carrier_tcp(void)
{
	static struct txn_addr a;

	a = addr(SIP_TP_TCP, "198.51.100.7", 5060, 77);
	return &a;
}

static const struct txn_addr *client_udp(void)
{
	static struct txn_addr a;

	a = addr(SIP_TP_UDP, "192.0.2.10", 40000, 0);
	return &a;
}

static const struct txn_addr *client_tcp(void)
{
	static struct txn_addr a;

	a = addr(SIP_TP_TCP, "192.0.2.10", 40000, 9);
	return &a;
}

/* ---- INVITE client transaction ---- */

static void test_ict_timers_a_b(void **state)
{
	/* 17.1.1.2: A at T1 doubling with no cap, B at 64*T1 = 32 s */
	static const uint64_t want[] = { 0, 500, 1500, 3500, 7500, 15500, 31500 };
	struct txn *t = NULL;

	fx_init(NULL);
	assert_int_equal(
		txn_request(F.l, out_req("INVITE", NULL, 1, "ict1"), carrier_udp(), NULL, &t), 0);
	assert_int_equal(txn_get_kind(t), TXN_ICT);
	assert_int_equal(txn_get_state(t), TXN_CALLING);
	/* the layer added an RFC 3261 branch */
	assert_memory_equal(branch_of(txn_get_request(t)), "z9hG4bK", 7);
	{
		osip_message_t *first = sent_msg(0);

		assert_string_equal(branch_of(first), branch_of(txn_get_request(t)));
		osip_message_free(first);
	}
	advance_to(31999);
	assert_int_equal(F.timeouts, 0);
	advance_to(40000);
	assert_sent_at("INVITE ", want, N(want));
	for (size_t i = 1; i < F.nsent; i++)
		assert_string_equal(F.sent[i].buf, F.sent[0].buf);
	assert_int_equal(F.timeouts, 1);
	assert_int_equal(F.timeout_which, TXN_TIMER_B);
	assert_int_equal(F.timeout_at, 32000);
	assert_int_equal(F.terminated_at, 32000);
	assert_string_equal(F.log, "OT");
	assert_int_equal(txn_layer_count(F.l), 0);
	fx_fini();
}

static void test_ict_reliable(void **state)
{
	static const uint64_t want[] = { 0 };

	fx_init(NULL);
	assert_int_equal(
		txn_request(F.l, out_req("INVITE", NULL, 1, "ict2"), carrier_tcp(), NULL, NULL), 0);
	assert_true(F.sent[0].reliable);
	assert_int_equal(F.sent[0].to.conn, 77);
	advance_to(40000);
	assert_sent_at("INVITE ", want, N(want)); /* no Timer A */
	assert_int_equal(F.timeout_which, TXN_TIMER_B);
	assert_int_equal(F.timeout_at, 32000);
	assert_string_equal(F.log, "OT");
	fx_fini();
}

static void test_ict_non2xx_ack_and_timer_d(void **state)
{
	static const uint64_t invites[] = { 0, 500 };
	static const uint64_t acks[] = { 1000, 2000 };
	struct txn *t = NULL;
	osip_message_t *inv, *ack, *resp;
	osip_route_t *route = NULL;

	fx_init(NULL);
	assert_int_equal(txn_request(F.l, out_req("INVITE", "z9hG4bKict3", 7, "ict3"),
				     carrier_udp(), NULL, &t),
			 0);
	inv = clone_of(txn_get_request(t)); /* t is freed when it terminates */
	advance_to(600);
	recv_msg(answer(inv, 180, "c1"), carrier_udp());
	assert_int_equal(txn_get_state(t), TXN_PROCEEDING);
	advance_to(1000); /* A stopped with the provisional */
	resp = answer(inv, 486, "c1");
	recv_msg(clone_of(resp), carrier_udp());
	assert_int_equal(txn_get_state(t), TXN_COMPLETED);
	assert_int_equal(F.responses, 2);
	assert_int_equal(F.resp_code, 486);

	/* 17.1.1.3 */
	ack = sent_msg(2);
	assert_true(MSG_IS_ACK(ack));
	assert_string_equal(ack->req_uri->host, "198.51.100.7");
	assert_string_equal(ack->req_uri->username, "carol");
	assert_int_equal(osip_list_size(&ack->vias), 1);
	assert_string_equal(branch_of(ack), "z9hG4bKict3");
	assert_string_equal(ack->cseq->number, "7");
	assert_string_equal(ack->cseq->method, "ACK");
	assert_string_equal(ack->call_id->number, "ict3");
	assert_int_equal(osip_from_tag_match(ack->from, inv->from), 0);
	assert_int_equal(osip_to_tag_match(ack->to, resp->to), 0); /* the response's To */
	osip_message_get_route(ack, 0, &route);
	assert_non_null(route);
	assert_string_equal(route->url->host, "edge.example.net");
	assert_true(F.sent[2].to.addrlen > 0 && port_of(&F.sent[2].to) == 5060);
	osip_message_free(ack);

	/* a retransmitted final response: the same ACK again, TU not told */
	advance_to(2000);
	recv_msg(resp, carrier_udp());
	assert_int_equal(F.responses, 2);
	assert_string_equal(F.sent[3].buf, F.sent[2].buf);
	assert_sent_at("INVITE ", invites, N(invites));
	assert_sent_at("ACK ", acks, N(acks));

	/* D = 32 s after the final response; B was cancelled */
	advance_to(32999);
	assert_int_equal(F.terminated, 0);
	assert_int_equal(F.timeouts, 0);
	advance_to(33000);
	assert_int_equal(F.terminated, 1);
	assert_string_equal(F.log, "RRT");
	/* and now it is a stray */
	recv_msg(answer(inv, 486, "c1"), carrier_udp());
	assert_string_equal(F.log, "RRTS");
	osip_message_free(inv);
	fx_fini();
}

static void test_ict_reliable_d_zero(void **state)
{
	struct txn *t = NULL;

	fx_init(NULL);
	assert_int_equal(
		txn_request(F.l, out_req("INVITE", NULL, 1, "ict4"), carrier_tcp(), NULL, &t), 0);
	recv_msg(answer(txn_get_request(t), 503, "c1"), carrier_tcp());
	/* ACK sent, response passed up, then D = 0 ends it at once */
	assert_int_equal(F.nsent, 2);
	assert_true(sent_starts(1, "ACK "));
	assert_string_equal(F.log, "RT");
	assert_int_equal(F.terminated_at, 0);
	assert_int_equal(txn_layer_count(F.l), 0);
	assert_int_equal(txn_fake_clock_pending(F.clk), 0);
	fx_fini();
}

static void test_ict_accepted_timer_m(void **state)
{
	struct txn *t = NULL;
	osip_message_t *ok;

	fx_init(NULL);
	assert_int_equal(
		txn_request(F.l, out_req("INVITE", NULL, 1, "ict5"), carrier_udp(), NULL, &t), 0);
	advance_to(200);
	ok = answer(txn_get_request(t), 200, "c1");
	recv_msg(clone_of(ok), carrier_udp());
	assert_int_equal(txn_get_state(t), TXN_ACCEPTED);
	assert_int_equal(F.responses, 1);
	advance_to(700); /* no retransmission at 500, no ACK from the layer */
	assert_int_equal(F.nsent, 1);
	/* RFC 6026: every 2xx goes to the TU, which ACKs it */
	recv_msg(clone_of(ok), carrier_udp());
	assert_int_equal(F.responses, 2);
	assert_ptr_equal(F.resp_txn, t);
	/* a provisional after the 2xx is absorbed */
	recv_msg(answer(txn_get_request(t), 180, "c1"), carrier_udp());
	assert_int_equal(F.responses, 2);
	assert_int_equal(F.nsent, 1);
	/* M = 64*T1 after the first 2xx */
	advance_to(32199);
	assert_int_equal(F.terminated, 0);
	advance_to(32200);
	assert_int_equal(F.terminated, 1);
	assert_int_equal(F.timeouts, 0);
	/* later 2xx retransmissions reach the TU as strays */
	recv_msg(ok, carrier_udp());
	assert_string_equal(F.log, "RRTS");
	fx_fini();
}

/* Timers due at the same time fire in the order they were armed, so two
 * transactions started together retransmit and time out in that order. */
static void test_simultaneous_timers(void **state)
{
	const char *want[] = { "ord-a", "ord-b", "ord-a", "ord-b", "ord-a", "ord-b" };

	fx_init(NULL);
	assert_int_equal(
		txn_request(F.l, out_req("OPTIONS", NULL, 1, "ord-a"), carrier_udp(), NULL, NULL),
		0);
	assert_int_equal(
		txn_request(F.l, out_req("OPTIONS", NULL, 1, "ord-b"), carrier_udp(), NULL, NULL),
		0);
	advance_to(1500);
	assert_int_equal(F.nsent, N(want));
	for (size_t i = 0; i < F.nsent; i++) {
		osip_message_t *m = sent_msg(i);

		assert_string_equal(m->call_id->number, want[i]);
		assert_int_equal(F.sent[i].at, i < 2 ? 0 : i < 4 ? 500 : 1500);
		osip_message_free(m);
	}
	fx_fini();
}

/* ---- non-INVITE client transaction ---- */

static void test_nict_timers_e_f(void **state)
{
	/* 17.1.2.2: E doubles from T1 and is capped at T2; F at 64*T1 */
	static const uint64_t want[] = { 0,	500,   1500,  3500,  7500, 11500,
					 15500, 19500, 23500, 27500, 31500 };

	fx_init(NULL);
	assert_int_equal(
		txn_request(F.l, out_req("OPTIONS", NULL, 1, "nict1"), carrier_udp(), NULL, NULL),
		0);
	advance_to(40000);
	assert_sent_at("OPTIONS ", want, N(want));
	assert_int_equal(F.timeout_which, TXN_TIMER_F);
	assert_int_equal(F.timeout_at, 32000);
	assert_string_equal(F.log, "OT");
	fx_fini();
}

static void test_nict_provisional_then_k(void **state)
{
	/* E fires at 1500 in Proceeding and is reset to T2 from then on */
	static const uint64_t want[] = { 0, 500, 1500, 5500, 9500 };
	struct txn *t = NULL;
	osip_message_t *ok;

	fx_init(NULL);
	assert_int_equal(
		txn_request(F.l, out_req("BYE", NULL, 2, "nict2"), carrier_udp(), NULL, &t), 0);
	assert_int_equal(txn_get_state(t), TXN_TRYING);
	assert_int_equal(txn_retransmits(t), 0);
	advance_to(600);
	assert_int_equal(txn_retransmits(t), 1); /* E at 500: a response times nothing */
	recv_msg(answer(txn_get_request(t), 100, NULL), carrier_udp());
	assert_int_equal(txn_get_state(t), TXN_PROCEEDING);
	advance_to(10000);
	ok = answer(txn_get_request(t), 200, "c1");
	recv_msg(clone_of(ok), carrier_udp());
	assert_int_equal(txn_get_state(t), TXN_COMPLETED);
	assert_int_equal(F.responses, 2);
	advance_to(12000);
	recv_msg(ok, carrier_udp()); /* absorbed in Completed */
	assert_int_equal(F.responses, 2);
	advance_to(14999); /* K = T4 */
	assert_int_equal(F.terminated, 0);
	advance_to(15000);
	assert_int_equal(F.terminated, 1);
	assert_sent_at("BYE ", want, N(want));
	assert_int_equal(F.timeouts, 0);
	assert_string_equal(F.log, "RRT");
	fx_fini();
}

static void test_nict_reliable(void **state)
{
	struct txn *t = NULL;

	fx_init(NULL);
	assert_int_equal(
		txn_request(F.l, out_req("OPTIONS", NULL, 1, "nict3"), carrier_tcp(), NULL, &t), 0);
	recv_msg(answer(txn_get_request(t), 200, "c1"), carrier_tcp());
	assert_string_equal(F.log, "RT"); /* K = 0 */
	assert_int_equal(F.terminated_at, 0);

	fx_clear_log();
	assert_int_equal(
		txn_request(F.l, out_req("OPTIONS", NULL, 2, "nict4"), carrier_tcp(), NULL, &t), 0);
	advance_to(40000);
	assert_int_equal(F.nsent, 2); /* no Timer E */
	assert_int_equal(F.timeout_which, TXN_TIMER_F);
	assert_int_equal(F.timeout_at, 32000);
	assert_string_equal(F.log, "OT");
	fx_fini();
}

/* ---- INVITE server transaction ---- */

static void test_ist_trying_and_absorb(void **state)
{
	osip_message_t *inv = in_req("INVITE", "UDP", "branch=z9hG4bKist1", 1, "ist1");
	osip_message_t *trying;
	osip_header_t *ts = NULL;
	struct txn *t;

	fx_init(NULL);
	recv_msg(clone_of(inv), client_udp());
	t = F.req_txn;
	assert_non_null(t);
	assert_int_equal(txn_get_kind(t), TXN_IST);
	assert_int_equal(txn_get_state(t), TXN_PROCEEDING);
	/* 17.2.1: 100 Trying at once, built per 8.2.6.1 */
	assert_int_equal(F.nsent, 1);
	trying = sent_msg(0);
	assert_int_equal(trying->status_code, 100);
	assert_string_equal(branch_of(trying), "z9hG4bKist1");
	assert_string_equal(trying->call_id->number, "ist1");
	assert_string_equal(trying->cseq->number, "1");
	assert_string_equal(trying->cseq->method, "INVITE");
	assert_int_equal(osip_from_tag_match(trying->from, inv->from), 0);
	osip_message_get_timestamp(trying, 0, &ts);
	assert_non_null(ts);
	assert_string_equal(ts->hvalue, "54");
	osip_message_free(trying);
	/* 18.2.2: UDP without rport goes to the source IP, sent-by port */
	assert_int_equal(port_of(&F.sent[0].to), 5070);
	assert_false(F.sent[0].reliable);

	/* a retransmission in Proceeding: the latest provisional again */
	advance_to(500);
	recv_msg(clone_of(inv), client_udp());
	assert_int_equal(F.nsent, 2);
	assert_string_equal(F.sent[1].buf, F.sent[0].buf);
	advance_to(600);
	assert_int_equal(txn_respond(t, answer(inv, 180, "b1")), 0);
	advance_to(1500);
	recv_msg(clone_of(inv), client_udp());
	assert_int_equal(F.nsent, 4);
	assert_true(sent_starts(3, "SIP/2.0 180"));
	assert_string_equal(F.sent[3].buf, F.sent[2].buf);
	assert_int_equal(F.requests, 1); /* no duplicate TU callbacks */
	assert_int_equal(txn_layer_count(F.l), 1);
	/* Proceeding has no timer: the TU owns the INVITE's fate */
	assert_int_equal(txn_fake_clock_pending(F.clk), 0);
	txn_abort(t);
	assert_string_equal(F.log, "QT");
	osip_message_free(inv);
	fx_fini();
}

static void test_response_destination(void **state)
{
	fx_init(NULL);
	/* rport (RFC 3581): the source port */
	recv_msg(in_req("OPTIONS", "UDP", "branch=z9hG4bKd1;rport", 1, "d1"), client_udp());
	assert_int_equal(txn_respond(F.req_txn, answer(txn_get_request(F.req_txn), 200, "b")), 0);
	assert_int_equal(port_of(&F.sent[0].to), 40000);
	/* no rport: the sent-by port */
	recv_msg(in_req("OPTIONS", "UDP", "branch=z9hG4bKd2", 1, "d2"), client_udp());
	assert_int_equal(txn_respond(F.req_txn, answer(txn_get_request(F.req_txn), 200, "b")), 0);
	assert_int_equal(port_of(&F.sent[1].to), 5070);
	/* TCP: the connection it came on; should it be gone, a new one to
	 * the sent-by port, not to the ephemeral source port */
	recv_msg(in_req("OPTIONS", "TCP", "branch=z9hG4bKd3;rport", 1, "d3"), client_tcp());
	assert_int_equal(txn_respond(F.req_txn, answer(txn_get_request(F.req_txn), 200, "b")), 0);
	assert_int_equal(F.sent[2].to.conn, 9);
	assert_int_equal(F.sent[2].to.transport, SIP_TP_TCP);
	assert_int_equal(port_of(&F.sent[2].to), 5070);
	assert_true(F.sent[2].reliable);
	/* the TU may override the destination */
	recv_msg(in_req("OPTIONS", "UDP", "branch=z9hG4bKd4", 1, "d4"), client_udp());
	txn_set_peer(F.req_txn, client_udp());
	assert_int_equal(port_of(txn_get_peer(F.req_txn)), 40000);
	assert_int_equal(txn_respond(F.req_txn, answer(txn_get_request(F.req_txn), 200, "b")), 0);
	assert_int_equal(port_of(&F.sent[3].to), 40000);
	fx_fini();
}

static void test_ist_timers_g_h(void **state)
{
	/* 17.2.1: G from T1 doubling to T2, H at 64*T1 */
	static const uint64_t want[] = { 0,	500,   600,   1500,  3500,  7500,
					 11500, 15500, 19500, 23500, 27500, 31500 };
	osip_message_t *inv = in_req("INVITE", "UDP", "branch=z9hG4bKist2", 1, "ist2");

	fx_init(NULL);
	F.auto_code = 486;
	recv_msg(clone_of(inv), client_udp());
	assert_true(sent_starts(0, "SIP/2.0 100"));
	assert_int_equal(txn_get_state(F.req_txn), TXN_COMPLETED);
	advance_to(600);
	recv_msg(clone_of(inv), client_udp()); /* the final response again */
	advance_to(31999);
	assert_int_equal(F.timeouts, 0);
	advance_to(40000);
	assert_sent_at("SIP/2.0 486", want, N(want));
	assert_int_equal(F.timeout_which, TXN_TIMER_H);
	assert_int_equal(F.timeout_at, 32000);
	assert_int_equal(F.requests, 1);
	assert_string_equal(F.log, "QOT");
	osip_message_free(inv);
	fx_fini();
}

static void test_ist_ack_confirmed_timer_i(void **state)
{
	static const uint64_t want[] = { 0, 500 };
	osip_message_t *inv = in_req("INVITE", "UDP", "branch=z9hG4bKist3", 1, "ist3");
	struct txn *t;

	fx_init(NULL);
	F.auto_code = 486;
	recv_msg(clone_of(inv), client_udp());
	t = F.req_txn;
	advance_to(1000);
	recv_msg(ack_for(inv, "b1", NULL), client_udp());
	assert_int_equal(txn_get_state(t), TXN_CONFIRMED);
	advance_to(2000);
	recv_msg(ack_for(inv, "b1", NULL), client_udp()); /* absorbed */
	recv_msg(clone_of(inv), client_udp());		  /* absorbed, nothing resent */
	assert_int_equal(F.acks, 0);
	assert_int_equal(F.requests, 1);
	advance_to(5999); /* I = T4 after the ACK */
	assert_int_equal(F.terminated, 0);
	advance_to(6000);
	assert_int_equal(F.terminated, 1);
	assert_sent_at("SIP/2.0 486", want, N(want)); /* G stopped by the ACK */
	assert_int_equal(F.nsent, 3);
	assert_int_equal(F.timeouts, 0);
	assert_string_equal(F.log, "QT");
	osip_message_free(inv);
	fx_fini();
}

static void test_ist_reliable(void **state)
{
	osip_message_t *inv = in_req("INVITE", "TCP", "branch=z9hG4bKist4", 1, "ist4");

	fx_init(NULL);
	F.auto_code = 480;
	recv_msg(clone_of(inv), client_tcp());
	advance_to(10000); /* no Timer G */
	assert_int_equal(F.nsent, 2);
	assert_int_equal(txn_fake_clock_pending(F.clk), 1); /* H still runs */
	recv_msg(ack_for(inv, "b1", NULL), client_tcp());
	assert_string_equal(F.log, "QT"); /* I = 0 */
	assert_int_equal(F.terminated_at, 10000);
	assert_int_equal(txn_fake_clock_pending(F.clk), 0);
	osip_message_free(inv);
	fx_fini();
}

static void test_ist_accepted_timer_l(void **state)
{
	osip_message_t *inv = in_req("INVITE", "UDP", "branch=z9hG4bKist5", 1, "ist5");
	osip_message_t *ok = answer(inv, 200, "b1");
	struct txn *t;

	fx_init(NULL);
	recv_msg(clone_of(inv), client_udp());
	t = F.req_txn;
	advance_to(100);
	assert_int_equal(txn_respond(t, clone_of(ok)), 0);
	assert_int_equal(txn_get_state(t), TXN_ACCEPTED);
	/* RFC 6026 Accepted: INVITE retransmissions absorbed, nothing resent */
	advance_to(500);
	recv_msg(clone_of(inv), client_udp());
	assert_int_equal(F.nsent, 2);
	assert_int_equal(F.requests, 1);
	/* the TU retransmits its 2xx through the transaction */
	advance_to(600);
	assert_int_equal(txn_respond(t, clone_of(ok)), 0);
	assert_int_equal(F.nsent, 3);
	assert_string_equal(F.sent[2].buf, F.sent[1].buf);
	/* only 2xx are allowed now */
	assert_int_equal(txn_respond(t, answer(inv, 180, "b1")), EINVAL);
	assert_int_equal(txn_respond(t, answer(inv, 500, "b1")), EINVAL);
	/* the ACK for the 2xx (its own branch) goes to the TU without a
	 * transaction; so does one that reuses the INVITE's branch */
	advance_to(700);
	recv_msg(ack_for(inv, "b1", "z9hG4bKack5"), client_udp());
	recv_msg(ack_for(inv, "b1", NULL), client_udp());
	assert_int_equal(F.acks, 2);
	assert_int_equal(txn_get_state(t), TXN_ACCEPTED);
	/* L = 64*T1 after the first 2xx */
	advance_to(32099);
	assert_int_equal(F.terminated, 0);
	advance_to(32100);
	assert_int_equal(F.terminated, 1);
	assert_int_equal(F.timeouts, 0);
	assert_int_equal(F.nsent, 3);
	assert_string_equal(F.log, "QAAT");
	osip_message_free(inv);
	osip_message_free(ok);
	fx_fini();
}

static void test_ist_trying_delay(void **state)
{
	struct txn_config cfg;
	struct txn *second;

	txn_config_defaults(&cfg);
	cfg.trying_delay_ms = 200;
	fx_init(&cfg);
	recv_msg(in_req("INVITE", "UDP", "branch=z9hG4bKdl1", 1, "dl1"), client_udp());
	assert_int_equal(F.nsent, 0);
	advance_to(100);
	recv_msg(in_req("INVITE", "UDP", "branch=z9hG4bKdl2", 1, "dl2"), client_udp());
	second = F.req_txn;
	advance_to(150);
	assert_int_equal(txn_respond(second, answer(txn_get_request(second), 180, "b")), 0);
	advance_to(1000);
	/* the first got its 100 at 200 ms; the second had answered itself */
	assert_int_equal(F.nsent, 2);
	assert_true(sent_starts(0, "SIP/2.0 180"));
	assert_int_equal(F.sent[0].at, 150);
	assert_true(sent_starts(1, "SIP/2.0 100"));
	assert_int_equal(F.sent[1].at, 200);
	fx_fini();
}

/* ---- non-INVITE server transaction ---- */

static void test_nist_timer_j(void **state)
{
	osip_message_t *req = in_req("INFO", "UDP", "branch=z9hG4bKnist1", 3, "nist1");
	struct txn *t;

	fx_init(NULL);
	recv_msg(clone_of(req), client_udp());
	t = F.req_txn;
	assert_int_equal(txn_get_kind(t), TXN_NIST);
	assert_int_equal(txn_get_state(t), TXN_TRYING);
	assert_int_equal(F.nsent, 0); /* no automatic 100 for non-INVITE */
	advance_to(100);
	recv_msg(clone_of(req), client_udp()); /* Trying: nothing to resend */
	assert_int_equal(F.nsent, 0);
	advance_to(200);
	assert_int_equal(txn_respond(t, answer(req, 100, NULL)), 0);
	assert_int_equal(txn_get_state(t), TXN_PROCEEDING);
	advance_to(300);
	recv_msg(clone_of(req), client_udp());
	assert_int_equal(F.nsent, 2);
	assert_true(sent_starts(1, "SIP/2.0 100"));
	advance_to(400);
	assert_int_equal(txn_respond(t, answer(req, 200, "b1")), 0);
	assert_int_equal(txn_get_state(t), TXN_COMPLETED);
	assert_int_equal(txn_respond(t, answer(req, 200, "b1")), EINVAL);
	advance_to(500);
	recv_msg(clone_of(req), client_udp());
	assert_int_equal(F.nsent, 4);
	assert_string_equal(F.sent[3].buf, F.sent[2].buf);
	assert_int_equal(F.requests, 1);
	advance_to(32399); /* J = 64*T1 after the final response */
	assert_int_equal(F.terminated, 0);
	advance_to(32400);
	assert_int_equal(F.terminated, 1);
	assert_int_equal(F.nsent, 4); /* a server never retransmits on its own */
	assert_string_equal(F.log, "QT");
	osip_message_free(req);
	fx_fini();
}

static void test_nist_reliable_inside_callback(void **state)
{
	fx_init(NULL);
	/* the TU answers inside request(): J = 0 ends the transaction under
	 * the callback's feet, and nothing may touch it afterwards (ASan) */
	F.auto_code = 200;
	recv_msg(in_req("OPTIONS", "TLS", "branch=z9hG4bKnist2", 1, "nist2"), client_tcp());
	assert_string_equal(F.log, "QT");
	assert_int_equal(F.nsent, 1);
	assert_int_equal(txn_layer_count(F.l), 0);
	assert_int_equal(txn_fake_clock_pending(F.clk), 0);
	fx_fini();
}

/* ---- CANCEL ---- */

static void test_cancel_server(void **state)
{
	osip_message_t *inv = in_req("INVITE", "UDP", "branch=z9hG4bKcan1", 1, "can1");
	osip_message_t *other;
	struct txn *ist, *cancel;

	fx_init(NULL);
	recv_msg(clone_of(inv), client_udp());
	ist = F.req_txn;
	recv_msg(in_req("CANCEL", "UDP", "branch=z9hG4bKcan1", 1, "can1"), client_udp());
	cancel = F.req_txn;
	/* its own transaction, not a retransmission of the INVITE */
	assert_ptr_not_equal(cancel, ist);
	assert_int_equal(txn_get_kind(cancel), TXN_NIST);
	assert_int_equal(F.requests, 2);
	assert_int_equal(txn_layer_count(F.l), 2);
	assert_ptr_equal(txn_find_invite_for_cancel(F.l, txn_get_request(cancel)), ist);
	/* a CANCEL of another branch, or another sent-by, cancels nothing */
	other = in_req("CANCEL", "UDP", "branch=z9hG4bKcan2", 1, "can1");
	assert_null(txn_find_invite_for_cancel(F.l, other));
	osip_message_free(other);
	other = msgf("CANCEL sip:bob@192.0.2.20 SIP/2.0\n"
		     "Via: SIP/2.0/UDP 192.0.2.99:5070;branch=z9hG4bKcan1\n"
		     "From: <sip:alice@example.com>;tag=a1\n"
		     "To: <sip:bob@example.com>\n"
		     "Call-ID: can1\n"
		     "CSeq: 1 CANCEL\n"
		     "Content-Length: 0\n\n");
	assert_null(txn_find_invite_for_cancel(F.l, other));
	osip_message_free(other);
	assert_null(txn_find_invite_for_cancel(F.l, inv)); /* not a CANCEL */

	assert_int_equal(txn_respond(cancel, answer(txn_get_request(cancel), 200, "b1")), 0);
	assert_int_equal(txn_respond(ist, answer(inv, 487, "b1")), 0);
	recv_msg(ack_for(inv, "b1", NULL), client_udp());
	assert_int_equal(txn_get_state(ist), TXN_CONFIRMED);
	assert_int_equal(txn_get_state(cancel), TXN_COMPLETED);
	assert_int_equal(F.acks, 0);
	osip_message_free(inv);
	fx_fini();
}

static void test_cancel_client(void **state)
{
	struct txn *ict = NULL, *nict = NULL;

	fx_init(NULL);
	assert_int_equal(txn_request(F.l, out_req("INVITE", "z9hG4bKcc1", 1, "cc1"), carrier_udp(),
				     NULL, &ict),
			 0);
	recv_msg(answer(txn_get_request(ict), 180, "c1"), carrier_udp());
	/* RFC 3261 9.1: the CANCEL reuses the INVITE's branch */
	assert_int_equal(txn_request(F.l, out_req("CANCEL", "z9hG4bKcc1", 1, "cc1"), carrier_udp(),
				     NULL, &nict),
			 0);
	assert_int_equal(txn_get_kind(nict), TXN_NICT);
	assert_int_equal(txn_layer_count(F.l), 2);
	/* responses are told apart by CSeq method (17.1.3) */
	recv_msg(answer(txn_get_request(nict), 200, "c1"), carrier_udp());
	assert_ptr_equal(F.resp_txn, nict);
	assert_int_equal(txn_get_state(nict), TXN_COMPLETED);
	recv_msg(answer(txn_get_request(ict), 487, "c1"), carrier_udp());
	assert_ptr_equal(F.resp_txn, ict);
	assert_int_equal(F.resp_code, 487);
	assert_int_equal(txn_get_state(ict), TXN_COMPLETED);
	assert_true(sent_starts(F.nsent - 1, "ACK "));
	/* the same branch and method cannot start twice */
	assert_int_equal(txn_request(F.l, out_req("CANCEL", "z9hG4bKcc1", 1, "cc1"), carrier_udp(),
				     NULL, NULL),
			 EEXIST);
	fx_fini();
}

/* ---- RFC 2543 fallback (17.2.3), after RFC 4475 3.4.1 "inv2543": no
 * branch, no From tag, no Content-Length ---- */

static osip_message_t *inv2543(const char *method, int cseq, const char *to_tag)
{
	return msgf("%s sip:UserB@example.com SIP/2.0\n"
		    "Via: SIP/2.0/UDP 192.0.2.15\n"
		    "From: <sip:UserA@example.com>\n"
		    "To: <sip:UserB@example.com>%s%s\n"
		    "Call-ID: 9d9b5f4e-2543@192.0.2.15\n"
		    "CSeq: %d %s\n"
		    "Max-Forwards: 70\n"
		    "Contact: <sip:UserA@192.0.2.15>\n"
		    "Content-Type: application/sdp\n"
		    "\n"
		    "v=0\n"
		    "o=mhandley 29739 7272939 IN IP4 192.0.2.15\n"
		    "s=-\n"
		    "c=IN IP4 192.0.2.15\n"
		    "t=0 0\n"
		    "m=audio 49217 RTP/AVP 0\n",
		    method, to_tag ? ";tag=" : "", to_tag ? to_tag : "", cseq, method);
}

static void test_rfc2543_matching(void **state)
{
	struct txn_addr src = addr(SIP_TP_UDP, "192.0.2.15", 5060, 0);
	osip_message_t *inv = inv2543("INVITE", 1, NULL);
	osip_message_t *m;
	struct txn *t, *t2;

	fx_init(NULL);
	recv_msg(clone_of(inv), &src);
	t = F.req_txn;
	assert_non_null(t);
	assert_int_equal(F.nsent, 1); /* 100 Trying */
	/* the retransmission is matched without any branch */
	recv_msg(clone_of(inv), &src);
	assert_int_equal(F.requests, 1);
	assert_int_equal(txn_layer_count(F.l), 1);
	assert_int_equal(F.nsent, 2);
	/* its CANCEL finds it */
	m = inv2543("CANCEL", 1, NULL);
	assert_ptr_equal(txn_find_invite_for_cancel(F.l, m), t);
	osip_message_free(m);
	/* another CSeq is another transaction */
	recv_msg(inv2543("INVITE", 2, NULL), &src);
	t2 = F.req_txn;
	assert_ptr_not_equal(t2, t);
	assert_int_equal(F.requests, 2);
	/* and a different top Via, too */
	m = msgf("INVITE sip:UserB@example.com SIP/2.0\n"
		 "Via: SIP/2.0/UDP 192.0.2.16\n"
		 "From: <sip:UserA@example.com>\n"
		 "To: <sip:UserB@example.com>\n"
		 "Call-ID: 9d9b5f4e-2543@192.0.2.15\n"
		 "CSeq: 1 INVITE\n"
		 "Content-Length: 0\n\n");
	recv_msg(m, &src);
	assert_int_equal(F.requests, 3);

	/* a branch without the cookie falls back to RFC 2543 matching too */
	m = in_req("OPTIONS", "UDP", "branch=1234abcd", 5, "nocookie");
	recv_msg(clone_of(m), &src);
	recv_msg(m, &src);
	assert_int_equal(F.requests, 4);
	assert_int_equal(txn_layer_count(F.l), 4);

	/* the ACK matches on Request-URI, From tag, Call-ID, CSeq number, top
	 * Via and the To tag of the response the transaction sent */
	assert_int_equal(txn_respond(t, answer(inv, 486, "x1")), 0);
	recv_msg(inv2543("ACK", 1, "wrong"), &src);
	assert_int_equal(F.acks, 1); /* not ours: the TU sees it */
	assert_int_equal(txn_get_state(t), TXN_COMPLETED);
	recv_msg(inv2543("ACK", 1, "x1"), &src);
	assert_int_equal(F.acks, 1);
	assert_int_equal(txn_get_state(t), TXN_CONFIRMED);
	assert_int_equal(txn_get_state(t2), TXN_PROCEEDING);
	osip_message_free(inv);
	fx_fini();
}

/* 17.2.3: branch, sent-by and method, ACK and CANCEL aside */
static void test_server_keys(void **state)
{
	osip_message_t *m;

	fx_init(NULL);
	recv_msg(in_req("INVITE", "UDP", "branch=z9hG4bKkey1", 1, "key"), client_udp());
	assert_int_equal(F.requests, 1);
	/* the same branch from another sent-by is another transaction */
	recv_msg(msgf("INVITE sip:bob@192.0.2.20 SIP/2.0\n"
		      "Via: SIP/2.0/UDP 192.0.2.11:5070;branch=z9hG4bKkey1\n"
		      "From: <sip:alice@example.com>;tag=a1\n"
		      "To: <sip:bob@example.com>\n"
		      "Call-ID: key\n"
		      "CSeq: 1 INVITE\n"
		      "Content-Length: 0\n\n"),
		 client_udp());
	assert_int_equal(F.requests, 2);
	/* and with another method (not ACK or CANCEL) */
	recv_msg(in_req("OPTIONS", "UDP", "branch=z9hG4bKkey1", 1, "key"), client_udp());
	assert_int_equal(F.requests, 3);
	/* branch and host compare case-insensitively (RFC 3261 7.3.1) */
	recv_msg(msgf("INVITE sip:bob@192.0.2.20 SIP/2.0\n"
		      "Via: SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bKKEY1\n"
		      "From: <sip:alice@example.com>;tag=a1\n"
		      "To: <sip:bob@example.com>\n"
		      "Call-ID: key\n"
		      "CSeq: 1 INVITE\n"
		      "Content-Length: 0\n\n"),
		 client_udp());
	assert_int_equal(F.requests, 3);
	/* a sent-by without a port is port 5060 */
	m = msgf("MESSAGE sip:bob@192.0.2.20 SIP/2.0\n"
		 "Via: SIP/2.0/UDP pc.example.com;branch=z9hG4bKkey2\n"
		 "From: <sip:alice@example.com>;tag=a1\n"
		 "To: <sip:bob@example.com>\n"
		 "Call-ID: key2\n"
		 "CSeq: 1 MESSAGE\n"
		 "Content-Length: 0\n\n");
	recv_msg(m, client_udp());
	recv_msg(msgf("MESSAGE sip:bob@192.0.2.20 SIP/2.0\n"
		      "Via: SIP/2.0/UDP PC.example.com:5060;branch=z9hG4bKkey2\n"
		      "From: <sip:alice@example.com>;tag=a1\n"
		      "To: <sip:bob@example.com>\n"
		      "Call-ID: key2\n"
		      "CSeq: 1 MESSAGE\n"
		      "Content-Length: 0\n\n"),
		 client_udp());
	assert_int_equal(F.requests, 4);
	assert_int_equal(txn_layer_count(F.l), 4);
	/* a client transaction's response is matched by branch and CSeq method
	 * only: a server transaction with that branch does not take it */
	recv_msg(answer(txn_get_request(F.req_txn), 200, "x"), client_udp());
	assert_int_equal(F.strays, 1);
	fx_fini();
}

/* ---- scale ---- */

static void test_thousands(void **state)
{
	enum {
		NT = 5000
	};
	static struct txn *clients[NT + 1];
	char branch[64], cid[64];

	fx_init(NULL);
	F.keep = false;
	F.by_cseq = calloc(NT + 1, sizeof(*F.by_cseq));
	assert_non_null(F.by_cseq);
	for (int i = 1; i <= NT; i++) {
		snprintf(branch, sizeof(branch), "branch=z9hG4bKsrv%d", i);
		snprintf(cid, sizeof(cid), "many-%d", i);
		recv_msg(in_req(i % 2 ? "INVITE" : "MESSAGE", "UDP", branch, i, cid), client_udp());
		snprintf(branch, sizeof(branch), "z9hG4bKcli%d", i);
		assert_int_equal(txn_request(F.l,
					     out_req(i % 2 ? "INVITE" : "OPTIONS", branch, i, cid),
					     carrier_udp(), (void *)(uintptr_t)i, &clients[i]),
				 0);
	}
	assert_int_equal(F.requests, NT);
	assert_int_equal(txn_layer_count(F.l), 2 * NT);
	/* every retransmission finds its transaction */
	for (int i = 1; i <= NT; i++) {
		snprintf(branch, sizeof(branch), "branch=z9hG4bKsrv%d", i);
		snprintf(cid, sizeof(cid), "many-%d", i);
		recv_msg(in_req(i % 2 ? "INVITE" : "MESSAGE", "UDP", branch, i, cid), client_udp());
	}
	assert_int_equal(F.requests, NT);
	assert_int_equal(txn_layer_count(F.l), 2 * NT);
	/* every response reaches the transaction that sent its request */
	for (int i = 1; i <= NT; i++) {
		struct txn *s = F.by_cseq[i];

		assert_non_null(s);
		assert_int_equal(txn_respond(s, answer(txn_get_request(s), 200, "b")), 0);
		recv_msg(answer(txn_get_request(clients[i]), 200, "c"), carrier_udp());
		assert_ptr_equal(F.resp_txn, clients[i]);
	}
	assert_int_equal(F.responses, NT);
	assert_int_equal(F.mismatches, 0);
	assert_int_equal(F.strays, 0);
	advance_to(60000);
	assert_int_equal(F.terminated, 2 * NT);
	assert_int_equal(txn_layer_count(F.l), 0);
	assert_int_equal(txn_fake_clock_pending(F.clk), 0);
	fx_fini();
}

/* ---- errors, strays, aborts, teardown ---- */

static void test_strays_and_bad_messages(void **state)
{
	struct txn *t = NULL;
	osip_message_t *m;

	fx_init(NULL);
	recv_msg(msgf("SIP/2.0 200 OK\n"
		      "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKnobody\n"
		      "From: <sip:sbc@example.org>;tag=s1\n"
		      "To: <sip:carol@example.net>;tag=c\n"
		      "Call-ID: gone\n"
		      "CSeq: 1 INVITE\n"
		      "Content-Length: 0\n\n"),
		 carrier_udp());
	assert_int_equal(F.strays, 1);
	m = msgf("OPTIONS sip:bob@192.0.2.20 SIP/2.0\n"
		 "Via: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKbad\n"
		 "From: <sip:alice@example.com>;tag=a1\n"
		 "To: <sip:bob@example.com>\n"
		 "CSeq: 1 OPTIONS\n"
		 "Content-Length: 0\n\n");
	assert_int_equal(txn_layer_receive(F.l, m, client_udp()), EBADMSG); /* no Call-ID */
	m = msgf("OPTIONS sip:bob@192.0.2.20 SIP/2.0\n"
		 "Via: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKbad\n"
		 "From: <sip:alice@example.com>;tag=a1\n"
		 "To: <sip:bob@example.com>\n"
		 "Call-ID: bad\n"
		 "CSeq: 1 INVITE\n"
		 "Content-Length: 0\n\n");
	assert_int_equal(txn_layer_receive(F.l, m, client_udp()), EBADMSG); /* CSeq method */
	assert_int_equal(txn_layer_count(F.l), 0);
	assert_int_equal(F.requests, 0);

	/* the TU's misuses */
	assert_int_equal(txn_request(F.l, out_req("ACK", NULL, 1, "x"), carrier_udp(), NULL, NULL),
			 EINVAL);
	assert_int_equal(
		txn_request(F.l, out_req("OPTIONS", "nocookie", 1, "x"), carrier_udp(), NULL, NULL),
		EINVAL);
	assert_int_equal(
		txn_request(F.l, out_req("OPTIONS", NULL, 1, "x"), carrier_udp(), NULL, &t), 0);
	assert_int_equal(txn_respond(t, answer(txn_get_request(t), 200, "b")), EINVAL);
	assert_int_equal(txn_layer_count(F.l), 1);

	/* outside any transaction: the ACK for a 2xx */
	m = ack_for(txn_get_request(t), "c", "z9hG4bKack2xx");
	assert_int_equal(txn_layer_send(F.l, m, carrier_udp()), 0);
	assert_true(sent_starts(F.nsent - 1, "ACK sip:carol@198.51.100.7"));
	assert_int_equal(txn_layer_count(F.l), 1);
	fx_fini();
}

static void test_transport_errors(void **state)
{
	struct txn *t = NULL;

	fx_init(NULL);
	/* a request that cannot go out starts nothing */
	F.fail_send = ECONNREFUSED;
	assert_int_equal(
		txn_request(F.l, out_req("INVITE", NULL, 1, "te1"), carrier_tcp(), NULL, &t),
		ECONNREFUSED);
	assert_null(t);
	/* nor does an INVITE whose 100 Trying cannot */
	assert_int_equal(txn_layer_receive(F.l,
					   in_req("INVITE", "UDP", "branch=z9hG4bKte2", 1, "te2"),
					   client_udp()),
			 ECONNREFUSED);
	assert_int_equal(txn_layer_count(F.l), 0);
	assert_string_equal(F.log, "");

	/* a retransmission that fails ends the transaction */
	F.fail_after = F.sends + 1;
	assert_int_equal(
		txn_request(F.l, out_req("INVITE", NULL, 1, "te3"), carrier_udp(), NULL, &t), 0);
	advance_to(500);
	assert_string_equal(F.log, "ET");
	assert_int_equal(txn_layer_count(F.l), 0);

	/* a response that fails: returned to the TU, and the end */
	fx_clear_log();
	recv_msg(in_req("MESSAGE", "UDP", "branch=z9hG4bKte4", 1, "te4"), client_udp());
	t = F.req_txn;
	F.fail_after = F.sends;
	assert_int_equal(txn_respond(t, answer(txn_get_request(t), 200, "b")), ECONNREFUSED);
	assert_string_equal(F.log, "QT");
	assert_int_equal(txn_layer_count(F.l), 0);
	fx_fini();
}

/* ---- a stream closing under client transactions ---- */

static struct txn_addr carrier_stream(void)
{
	return addr(SIP_TP_TCP, "198.51.100.7", 5060, 0);
}

static struct txn *request_on(const char *method, const char *callid, uint64_t stream)
{
	struct txn_addr to = carrier_stream();
	struct txn *t = NULL;

	F.stream = stream;
	assert_int_equal(txn_request(F.l, out_req(method, NULL, 1, callid), &to, NULL, &t), 0);
	/* bound to the connection the transport reported */
	assert_int_equal(txn_get_peer(t)->conn, stream);
	return t;
}

/* Calling, Trying, and Proceeding after a provisional: none has its final
 * response, so each fails at once with the transport's error, oldest first,
 * instead of waiting for Timer B or F. */
static void test_conn_closed_fails_pending(void **state)
{
	struct txn *ict, *nict, *ict_ringing, *nict_trying;

	fx_init(NULL);
	ict = request_on("INVITE", "cc1", 501);
	nict = request_on("OPTIONS", "cc2", 501);
	ict_ringing = request_on("INVITE", "cc3", 501);
	nict_trying = request_on("BYE", "cc4", 501);
	recv_msg(answer(txn_get_request(ict_ringing), 180, "c3"), carrier_tcp());
	recv_msg(answer(txn_get_request(nict_trying), 100, NULL), carrier_tcp());
	assert_int_equal(txn_get_state(ict), TXN_CALLING);
	assert_int_equal(txn_get_state(nict), TXN_TRYING);
	assert_int_equal(txn_get_state(ict_ringing), TXN_PROCEEDING);
	assert_int_equal(txn_get_state(nict_trying), TXN_PROCEEDING);
	fx_clear_log();
	advance_to(1000);

	txn_layer_conn_closed(F.l, 501, ECONNREFUSED);
	assert_string_equal(F.log, "ETETETET");
	assert_int_equal(F.terrs, 4);
	assert_int_equal(F.terr_err, ECONNREFUSED);
	assert_string_equal(F.terr_ids, "cc1 cc2 cc3 cc4 ");
	assert_int_equal(F.terminated_at, 1000);
	assert_int_equal(txn_layer_count(F.l), 0);
	assert_int_equal(txn_fake_clock_pending(F.clk), 0); /* no Timer B or F left */

	/* once is all: the same close again finds nothing */
	txn_layer_conn_closed(F.l, 501, ECONNREFUSED);
	assert_int_equal(F.terrs, 4);
	/* a request the transport sends over a stream it names (to->conn) */
	F.stream = 0;
	assert_int_equal(
		txn_request(F.l, out_req("INVITE", NULL, 1, "cc5"), carrier_tcp(), NULL, &ict), 0);
	assert_int_equal(txn_get_peer(ict)->conn, 77);
	txn_layer_conn_closed(F.l, 77, 0); /* 0: ECONNRESET */
	assert_int_equal(F.terr_err, ECONNRESET);
	assert_int_equal(F.terrs, 5);
	assert_int_equal(F.timeouts, 0);
	fx_fini();
}

/* A final response already in, a server transaction, a client on another
 * stream (also one whose id shares the index bucket) or on UDP: untouched. */
static void test_conn_closed_spares_others(void **state)
{
	struct txn *accepted, *done, *other, *same_bucket, *udp = NULL, *server;
	struct txn_addr from = addr(SIP_TP_TCP, "192.0.2.10", 40000, 501);
	osip_message_t *ok;

	fx_init(NULL);
	accepted = request_on("INVITE", "cs1", 501);
	ok = answer(txn_get_request(accepted), 200, "c1");
	recv_msg(clone_of(ok), carrier_tcp());
	assert_int_equal(txn_get_state(accepted), TXN_ACCEPTED);
	done = request_on("INVITE", "cs2", 501);
	recv_msg(answer(txn_get_request(done), 486, "c2"), carrier_tcp());
	assert_true(sent_starts(F.nsent - 1, "ACK "));
	assert_int_equal(F.sent[F.nsent - 1].to.conn, 501); /* over the INVITE's stream */
	other = request_on("OPTIONS", "cs3", 502);
	same_bucket = request_on("OPTIONS", "cs4", 501 + 1024 * 7);
	F.stream = 0;
	assert_int_equal(
		txn_request(F.l, out_req("OPTIONS", NULL, 1, "cs5"), carrier_udp(), NULL, &udp), 0);
	recv_msg(in_req("INVITE", "TCP", "branch=z9hG4bKcs6", 1, "cs6"), &from);
	server = F.req_txn;
	assert_non_null(server);
	assert_int_equal(txn_get_peer(server)->conn, 501);
	assert_int_equal(txn_layer_count(F.l), 5); /* cs2 ended with its ACK (D = 0) */
	fx_clear_log();

	txn_layer_conn_closed(F.l, 501, ECONNRESET);
	assert_string_equal(F.log, "");
	assert_int_equal(txn_layer_count(F.l), 5);
	assert_int_equal(txn_get_state(accepted), TXN_ACCEPTED);
	assert_int_equal(txn_get_state(other), TXN_TRYING);
	assert_int_equal(txn_get_state(same_bucket), TXN_TRYING);
	assert_int_equal(txn_get_state(udp), TXN_TRYING);
	assert_int_equal(txn_get_state(server), TXN_PROCEEDING);
	/* the Accepted INVITE still takes its 2xx retransmissions */
	recv_msg(ok, carrier_tcp());
	assert_string_equal(F.log, "R");

	/* and each stream fails only its own */
	txn_layer_conn_closed(F.l, 501 + 1024 * 7, ETIMEDOUT);
	assert_string_equal(F.log, "RET");
	assert_ptr_equal(F.term_txn, same_bucket);
	assert_int_equal(F.terr_err, ETIMEDOUT);
	txn_layer_conn_closed(F.l, 502, EPROTO);
	assert_string_equal(F.log, "RETET");
	assert_ptr_equal(F.term_txn, other);
	assert_int_equal(txn_get_state(udp), TXN_TRYING);
	assert_int_equal(txn_layer_count(F.l), 3);
	fx_fini();
}

static struct txn *abort_in_hook;

/* The TU of a B2BUA: fail over at once, and give up a sibling. */
static void failover(struct txn *t)
{
	if (abort_in_hook && abort_in_hook != t) {
		txn_abort(abort_in_hook);
		abort_in_hook = NULL;
	}
	request_on("INVITE", "next", 89 + 1024);
}

/* The callbacks of a close may abort a transaction the close was about to
 * fail, and start new ones (in the same index bucket too). */
static void test_conn_closed_callbacks_reenter(void **state)
{
	struct txn *first;

	fx_init(NULL);
	abort_in_hook = NULL;
	first = request_on("INVITE", "re1", 89);
	abort_in_hook = request_on("INVITE", "re2", 89);
	F.terr_hook = failover;
	fx_clear_log();
	txn_layer_conn_closed(F.l, 89, ECONNREFUSED);
	/* re1 fails; its TU aborts re2 (terminated once, no error) and sends
	 * "next" over a stream of the same index bucket */
	assert_string_equal(F.log, "ETT");
	assert_ptr_equal(F.term_txn, first);
	assert_null(abort_in_hook);
	assert_int_equal(txn_layer_count(F.l), 1);
	F.terr_hook = NULL;
	txn_layer_conn_closed(F.l, 89 + 1024, ECONNRESET);
	assert_string_equal(F.log, "ETTET");
	assert_int_equal(txn_layer_count(F.l), 0);
	fx_fini();
}

static void test_abort_and_destroy(void **state)
{
	struct txn *t = NULL;
	int tu_data = 42;

	fx_init(NULL);
	assert_int_equal(
		txn_request(F.l, out_req("INVITE", NULL, 1, "ab1"), carrier_udp(), &tu_data, &t),
		0);
	assert_ptr_equal(txn_get_data(t), &tu_data);
	txn_set_data(t, NULL);
	recv_msg(answer(txn_get_request(t), 183, "c"), carrier_udp());
	/* RFC 3261 9.1: a TU giving up on a CANCELled INVITE */
	osip_message_t *late = answer(txn_get_request(t), 487, "c");
	txn_abort(t);
	assert_string_equal(F.log, "RT");
	recv_msg(late, carrier_udp());
	assert_string_equal(F.log, "RTS");

	/* destroying the layer ends every live transaction, timers and all */
	recv_msg(in_req("INVITE", "UDP", "branch=z9hG4bKab2", 1, "ab2"), client_udp());
	recv_msg(in_req("OPTIONS", "UDP", "branch=z9hG4bKab3", 1, "ab3"), client_udp());
	assert_int_equal(txn_respond(F.req_txn, answer(txn_get_request(F.req_txn), 200, "b")), 0);
	assert_int_equal(
		txn_request(F.l, out_req("OPTIONS", NULL, 1, "ab4"), carrier_udp(), NULL, NULL), 0);
	assert_int_equal(txn_layer_count(F.l), 3);
	assert_true(txn_fake_clock_pending(F.clk) >= 3);
	txn_layer_destroy(F.l);
	F.l = NULL;
	assert_int_equal(F.terminated, 4);
	assert_int_equal(txn_fake_clock_pending(F.clk), 0);
	fx_fini();
}

static void test_config(void **state)
{
	struct txn_config cfg;
	struct txn_layer *l = NULL;
	struct txn_fake_clock *clk = NULL;

	txn_config_defaults(&cfg);
	assert_int_equal(cfg.t1_ms, 500);
	assert_int_equal(cfg.t2_ms, 4000);
	assert_int_equal(cfg.t4_ms, 5000);
	assert_int_equal(cfg.trying_delay_ms, 0);
	assert_int_equal(txn_fake_clock_create(&clk), 0);
	cfg.t2_ms = 100; /* below T1 */
	assert_int_equal(txn_layer_create(&l, &cfg, &callbacks, &F, &txn_timer_ops_fake, clk),
			 EINVAL);
	struct txn_callbacks nosend = callbacks;
	nosend.send = NULL;
	assert_int_equal(txn_layer_create(&l, NULL, &nosend, &F, &txn_timer_ops_fake, clk), EINVAL);
	assert_null(l);
	txn_layer_destroy(NULL);
	txn_fake_clock_destroy(clk);
	assert_string_equal(txn_state_name(TXN_ACCEPTED), "accepted");
	assert_string_equal(txn_timer_name(TXN_TIMER_M), "M");
}

/* Smaller timers (T1 = 2 ms) and a larger T1 (D follows 64*T1 above 32 s) */
static void test_custom_t1(void **state)
{
	uint64_t want[64];
	size_t n = 0;
	struct txn_config cfg;
	struct txn *t = NULL;

	txn_config_defaults(&cfg);
	cfg.t1_ms = 2;
	cfg.t2_ms = 4;
	cfg.t4_ms = 5;
	fx_init(&cfg);
	assert_int_equal(
		txn_request(F.l, out_req("OPTIONS", NULL, 1, "ct1"), carrier_udp(), NULL, NULL), 0);
	advance_to(1000);
	/* E at 2, then capped at T2 = 4 until F at 128 */
	want[n++] = 0;
	for (uint64_t at = 2; at < 128; at += 4)
		want[n++] = at;
	assert_sent_at("OPTIONS ", want, n);
	assert_int_equal(F.timeout_at, 128);
	fx_fini();

	txn_config_defaults(&cfg);
	cfg.t1_ms = 1000; /* 64*T1 = 64 s > 32 s */
	cfg.t2_ms = 4000;
	fx_init(&cfg);
	assert_int_equal(
		txn_request(F.l, out_req("INVITE", NULL, 1, "ct2"), carrier_udp(), NULL, &t), 0);
	recv_msg(answer(txn_get_request(t), 404, "c"), carrier_udp());
	advance_to(63999);
	assert_int_equal(F.terminated, 0);
	advance_to(64000);
	assert_int_equal(F.terminated, 1);
	fx_fini();
}

/* ---- the libevent backend, on a real loop (counts only: no timing) ---- */

static void test_libevent_backend(void **state)
{
	struct txn_config cfg;
	struct event_base *base = event_base_new();

	assert_non_null(base);
	txn_config_defaults(&cfg);
	cfg.t1_ms = 1; /* F after 64 ms */
	cfg.t2_ms = 4;
	cfg.t4_ms = 5;
	memset(&F, 0, sizeof(F));
	F.keep = true;
	assert_int_equal(
		txn_layer_create(&F.l, &cfg, &callbacks, &F, &txn_timer_ops_libevent, base), 0);
	assert_int_equal(
		txn_request(F.l, out_req("OPTIONS", NULL, 1, "le1"), carrier_udp(), NULL, NULL), 0);
	assert_int_equal(event_base_dispatch(base), 1); /* returns once no event is left */
	assert_true(F.nsent >= 2);
	assert_int_equal(F.timeouts, 1);
	assert_int_equal(F.timeout_which, TXN_TIMER_F);
	assert_string_equal(F.log, "OT");

	/* destroying a layer with armed timers leaves no event behind */
	assert_int_equal(
		txn_request(F.l, out_req("INVITE", NULL, 1, "le2"), carrier_udp(), NULL, NULL), 0);
	txn_layer_destroy(F.l);
	F.l = NULL;
	assert_int_equal(event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED), 0);
	assert_int_equal(event_base_dispatch(base), 1);
	event_base_free(base);
	fx_fini();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ict_timers_a_b),
		cmocka_unit_test(test_ict_reliable),
		cmocka_unit_test(test_ict_non2xx_ack_and_timer_d),
		cmocka_unit_test(test_ict_reliable_d_zero),
		cmocka_unit_test(test_ict_accepted_timer_m),
		cmocka_unit_test(test_simultaneous_timers),
		cmocka_unit_test(test_nict_timers_e_f),
		cmocka_unit_test(test_nict_provisional_then_k),
		cmocka_unit_test(test_nict_reliable),
		cmocka_unit_test(test_ist_trying_and_absorb),
		cmocka_unit_test(test_response_destination),
		cmocka_unit_test(test_ist_timers_g_h),
		cmocka_unit_test(test_ist_ack_confirmed_timer_i),
		cmocka_unit_test(test_ist_reliable),
		cmocka_unit_test(test_ist_accepted_timer_l),
		cmocka_unit_test(test_ist_trying_delay),
		cmocka_unit_test(test_nist_timer_j),
		cmocka_unit_test(test_nist_reliable_inside_callback),
		cmocka_unit_test(test_cancel_server),
		cmocka_unit_test(test_cancel_client),
		cmocka_unit_test(test_rfc2543_matching),
		cmocka_unit_test(test_server_keys),
		cmocka_unit_test(test_thousands),
		cmocka_unit_test(test_strays_and_bad_messages),
		cmocka_unit_test(test_transport_errors),
		cmocka_unit_test(test_conn_closed_fails_pending),
		cmocka_unit_test(test_conn_closed_spares_others),
		cmocka_unit_test(test_conn_closed_callbacks_reenter),
		cmocka_unit_test(test_abort_and_destroy),
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_custom_t1),
		cmocka_unit_test(test_libevent_backend),
	};

	parser_init();
	return cmocka_run_group_tests_name("txn", tests, NULL, NULL);
}
