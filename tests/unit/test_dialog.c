/* Dialog state (RFC 3261 section 12) from parsed messages: route sets of 0,
 * 1 and 3 Record-Route values in the order each side must keep, loose and
 * strict routing field by field, CSeq numbering and the 2xx ACK, matching in
 * both directions, out-of-order CSeq, target refresh, the refusals, sips. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "srtpbridge/dialog.h"
#include "srtpbridge/sipmsg.h"

/* ---- messages ---- */

/* fmt uses "\n" line ends and omits the empty line; both are added. */
__attribute__((format(printf, 1, 2))) static osip_message_t *msg(const char *fmt, ...)
{
	char text[4096], wire[8192], why[SIPMSG_WHY_MAX];
	osip_message_t *m = NULL;
	size_t n = 0;
	int status = 0;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	for (const char *p = text; *p; p++) {
		if (*p == '\n')
			wire[n++] = '\r';
		wire[n++] = *p;
	}
	memcpy(wire + n, "\r\n", 2);
	n += 2;
	if (sipmsg_parse(&m, (struct slice){ wire, n }, &status, why, sizeof(why)) != 0)
		fail_msg("test message refused: %s\n%s", why, text);
	return m;
}

#define ALICE "\"Alice\" <sip:alice@a.example.com>"
#define BOB   "<sip:bob@b.example.com>"

/* Our INVITE (the UAC leg): From tag fa, CSeq 101. */
static osip_message_t *invite(const char *ruri, const char *extra)
{
	return msg("INVITE %s SIP/2.0\n"
		   "Via: SIP/2.0/UDP a.example.com;branch=z9hG4bKinv1\n"
		   "Max-Forwards: 70\n"
		   "From: " ALICE ";tag=fa\n"
		   "To: " BOB "\n"
		   "Call-ID: cid1@a.example.com\n"
		   "CSeq: 101 INVITE\n"
		   "Contact: <sip:alice@10.0.0.1>\n"
		   "%s"
		   "Content-Length: 0\n",
		   ruri, extra);
}

/* A response to it; to_tag NULL leaves To untagged. */
static osip_message_t *reply(int code, const char *to_tag, const char *extra)
{
	char to[64] = "";

	if (to_tag)
		snprintf(to, sizeof(to), ";tag=%s", to_tag);
	return msg("SIP/2.0 %d Whatever\n"
		   "Via: SIP/2.0/UDP a.example.com;branch=z9hG4bKinv1\n"
		   "From: " ALICE ";tag=fa\n"
		   "To: " BOB "%s\n"
		   "Call-ID: cid1@a.example.com\n"
		   "CSeq: 101 INVITE\n"
		   "%s"
		   "Content-Length: 0\n",
		   code, to, extra);
}

/* A request from Alice to us (the UAS leg): To untagged for the first,
 * with our tag ub afterwards. */
static osip_message_t *incoming(const char *method, unsigned cseq, const char *to_tag,
				const char *extra)
{
	char to[64] = "";

	if (to_tag)
		snprintf(to, sizeof(to), ";tag=%s", to_tag);
	return msg("%s sip:bob@b.example.com SIP/2.0\n"
		   "Via: SIP/2.0/UDP a.example.com;branch=z9hG4bKin%u%s\n"
		   "Max-Forwards: 70\n"
		   "From: " ALICE ";tag=fa\n"
		   "To: " BOB "%s\n"
		   "Call-ID: cid1@a.example.com\n"
		   "CSeq: %u %s\n"
		   "%s"
		   "Content-Length: 0\n",
		   method, cseq, method, to, cseq, method, extra);
}

static char *uri_str(const osip_uri_t *u)
{
	static char buf[4][256];
	static unsigned k;
	char *s = NULL, *b = buf[k++ % 4];

	assert_non_null(u);
	assert_int_equal(osip_uri_to_str(u, &s), OSIP_SUCCESS);
	snprintf(b, 256, "%s", s);
	osip_free(s);
	return b;
}

static char *route_str(const osip_message_t *m, int i)
{
	const osip_route_t *r = osip_list_get(&m->routes, i);

	assert_non_null(r);
	return uri_str(r->url);
}

static const char *cseq_of(const osip_message_t *m, uint32_t *n)
{
	const char *method = NULL;

	assert_int_equal(sipmsg_cseq(m, n, &method), 0);
	return method;
}

static const char *rr3 = "Record-Route: <sip:p1.example.com;lr>\n"
			 "Record-Route: <sip:p2.example.com;lr>, <sip:p3.example.com;lr>\n";

/* ---- creation ---- */

static void uac_route_sets(void **state)
{
	static const struct {
		const char *rr;
		unsigned n;
		const char *order[3]; /* the route set: Record-Route reversed */
	} cases[] = {
		{ "", 0, { NULL } },
		{ "Record-Route: <sip:p1.example.com;lr>\n", 1, { "sip:p1.example.com;lr" } },
		{ "Record-Route: <sip:p1.example.com;lr>\n"
		  "Record-Route: <sip:p2.example.com;lr>, <sip:p3.example.com;lr>\n",
		  3,
		  { "sip:p3.example.com;lr", "sip:p2.example.com;lr", "sip:p1.example.com;lr" } },
	};

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		char extra[512];
		osip_message_t *req = invite("sip:bob@b.example.com", "");
		osip_message_t *resp;
		struct dialog *d = NULL;
		uint32_t n;

		snprintf(extra, sizeof(extra), "%sContact: <sip:bob@10.0.0.2:5070>\n", cases[c].rr);
		resp = reply(200, "tb", extra);
		assert_int_equal(dialog_create_uac(&d, req, resp), 0);
		assert_int_equal(dialog_route_count(d), cases[c].n);
		for (unsigned i = 0; i < cases[c].n; i++)
			assert_string_equal(uri_str(dialog_route(d, i)), cases[c].order[i]);
		assert_null(dialog_route(d, cases[c].n));
		assert_string_equal(uri_str(dialog_remote_target(d)), "sip:bob@10.0.0.2:5070");
		assert_string_equal(dialog_call_id(d), "cid1@a.example.com");
		assert_string_equal(dialog_local_tag(d), "fa");
		assert_string_equal(dialog_remote_tag(d), "tb");
		assert_string_equal(uri_str(dialog_local_uri(d)), "sip:alice@a.example.com");
		assert_string_equal(uri_str(dialog_remote_uri(d)), "sip:bob@b.example.com");
		assert_true(dialog_local_cseq(d, &n));
		assert_int_equal(n, 101);
		assert_false(dialog_remote_cseq(d, &n)); /* 12.1.2: empty */
		assert_true(dialog_is_uac(d));
		assert_false(dialog_secure(d));
		assert_int_equal(dialog_state(d), DIALOG_CONFIRMED);
		dialog_destroy(d);
		osip_message_free(req);
		osip_message_free(resp);
	}
}

static void uas_route_sets(void **state)
{
	static const struct {
		const char *rr;
		unsigned n;
		const char *order[3]; /* the route set: Record-Route as it came */
	} cases[] = {
		{ "", 0, { NULL } },
		{ "Record-Route: <sip:p1.example.com;lr>\n", 1, { "sip:p1.example.com;lr" } },
		{ "Record-Route: <sip:p1.example.com;lr>\n"
		  "Record-Route: <sip:p2.example.com;lr>, <sip:p3.example.com;lr>\n",
		  3,
		  { "sip:p1.example.com;lr", "sip:p2.example.com;lr", "sip:p3.example.com;lr" } },
	};

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		char extra[512];
		osip_message_t *req;
		struct dialog *d = NULL;
		uint32_t n;

		snprintf(extra, sizeof(extra), "%sContact: <sip:alice@10.0.0.1>\n", cases[c].rr);
		req = incoming("INVITE", 7, NULL, extra);
		assert_int_equal(dialog_create_uas(&d, req, "ub"), 0);
		assert_int_equal(dialog_route_count(d), cases[c].n);
		for (unsigned i = 0; i < cases[c].n; i++)
			assert_string_equal(uri_str(dialog_route(d, i)), cases[c].order[i]);
		assert_string_equal(uri_str(dialog_remote_target(d)), "sip:alice@10.0.0.1");
		assert_string_equal(dialog_local_tag(d), "ub");
		assert_string_equal(dialog_remote_tag(d), "fa");
		/* 12.1.1: local URI from To, remote URI from From */
		assert_string_equal(uri_str(dialog_local_uri(d)), "sip:bob@b.example.com");
		assert_string_equal(uri_str(dialog_remote_uri(d)), "sip:alice@a.example.com");
		assert_true(dialog_remote_cseq(d, &n));
		assert_int_equal(n, 7);
		assert_false(dialog_local_cseq(d, &n));
		assert_false(dialog_is_uac(d));
		assert_int_equal(dialog_state(d), DIALOG_EARLY);
		dialog_destroy(d);
		osip_message_free(req);
	}
}

/* 12.1.1: our 18x/2xx carry the request's Record-Route, in order, and our tag. */
static void uas_response_copies_record_route(void **state)
{
	char extra[512];
	osip_message_t *req, *resp = NULL, *again = NULL;
	struct dialog *d = NULL;
	char *text = NULL, *p1, *p2, *p3;
	size_t len;
	int st = 0;
	char why[SIPMSG_WHY_MAX];

	snprintf(extra, sizeof(extra), "%sContact: <sip:alice@10.0.0.1>\n", rr3);
	req = incoming("INVITE", 7, NULL, extra);
	assert_int_equal(dialog_create_uas(&d, req, "ub"), 0);

	for (int code = 180; code <= 200; code += 20) {
		assert_int_equal(sipmsg_response(&resp, req, code, NULL, NULL, NULL), 0);
		assert_int_equal(osip_list_size(&resp->record_routes), 0);
		assert_int_equal(dialog_uas_response_headers(d, req, resp), 0);
		/* twice: the list is replaced, not doubled */
		assert_int_equal(dialog_uas_response_headers(d, req, resp), 0);
		assert_int_equal(osip_list_size(&resp->record_routes), 3);
		assert_string_equal(sipmsg_to_tag(resp), "ub");
		assert_int_equal(sipmsg_serialize(resp, &text, &len), 0);
		p1 = strstr(text, "p1.example.com");
		p2 = strstr(text, "p2.example.com");
		p3 = strstr(text, "p3.example.com");
		assert_true(p1 && p2 && p3 && p1 < p2 && p2 < p3);
		/* and it still parses as one response with three values */
		assert_int_equal(
			sipmsg_parse(&again, (struct slice){ text, len }, &st, why, sizeof(why)),
			0);
		assert_int_equal(osip_list_size(&again->record_routes), 3);
		osip_message_free(again);
		free(text);
		osip_message_free(resp);
	}

	/* a 100 and a final error make no dialog; a foreign To tag is refused */
	assert_int_equal(sipmsg_response(&resp, req, 100, NULL, NULL, NULL), 0);
	assert_int_equal(dialog_uas_response_headers(d, req, resp), EINVAL);
	osip_message_free(resp);
	assert_int_equal(sipmsg_response(&resp, req, 486, NULL, "ub", NULL), 0);
	assert_int_equal(dialog_uas_response_headers(d, req, resp), EINVAL);
	osip_message_free(resp);
	assert_int_equal(sipmsg_response(&resp, req, 200, NULL, "other", NULL), 0);
	assert_int_equal(dialog_uas_response_headers(d, req, resp), EINVAL);
	assert_int_equal(osip_list_size(&resp->record_routes), 0);
	osip_message_free(resp);

	dialog_destroy(d);
	osip_message_free(req);
}

/* ---- requests ---- */

static struct dialog *uac_dialog(const char *extra)
{
	osip_message_t *req = invite("sip:bob@b.example.com", "");
	osip_message_t *resp = reply(200, "tb", extra);
	struct dialog *d = NULL;

	assert_int_equal(dialog_create_uac(&d, req, resp), 0);
	osip_message_free(req);
	osip_message_free(resp);
	return d;
}

static void common_fields(const osip_message_t *m, const char *method, uint32_t cseq)
{
	uint32_t n;

	assert_true(sipmsg_is_request(m));
	assert_string_equal(sipmsg_method(m), method);
	assert_string_equal(cseq_of(m, &n), method);
	assert_int_equal(n, cseq);
	assert_string_equal(uri_str(m->from->url), "sip:alice@a.example.com");
	assert_string_equal(m->from->displayname, "\"Alice\"");
	assert_string_equal(sipmsg_from_tag(m), "fa");
	assert_string_equal(uri_str(m->to->url), "sip:bob@b.example.com");
	assert_string_equal(sipmsg_to_tag(m), "tb");
	assert_string_equal(m->call_id->number, "cid1");
	assert_string_equal(m->call_id->host, "a.example.com");
	assert_int_equal(sipmsg_via_count(m), 0); /* the transport's */
	assert_int_equal(osip_list_size(&m->contacts), 0);
}

static void max_forwards_70(const osip_message_t *m)
{
	osip_header_t *h = NULL;

	assert_true(osip_message_get_max_forwards(m, 0, &h) >= 0);
	assert_string_equal(h->hvalue, "70");
}

/* The request parses back once the transport has added its Via. */
static void round_trip(osip_message_t *m)
{
	osip_message_t *again = NULL;
	char *text = NULL, why[SIPMSG_WHY_MAX];
	size_t len;
	int st = 0;

	assert_int_equal(osip_message_set_via(m, "SIP/2.0/UDP b2bua.example.com;branch=z9hG4bKx"),
			 OSIP_SUCCESS);
	assert_int_equal(sipmsg_serialize(m, &text, &len), 0);
	if (sipmsg_parse(&again, (struct slice){ text, len }, &st, why, sizeof(why)))
		fail_msg("%s\n%s", why, text);
	osip_message_free(again);
	free(text);
}

/* 12.2.1.1, first route with lr: Request-URI = remote target, Route = the
 * route set in order. */
static void loose_routing(void **state)
{
	struct dialog *d = uac_dialog(
		"Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr;transport=tcp>\n"
		"Contact: <sip:bob@10.0.0.2:5070;transport=udp>\n");
	osip_message_t *m = NULL;

	assert_int_equal(dialog_request(d, "BYE", &m), 0);
	common_fields(m, "BYE", 102);
	max_forwards_70(m);
	assert_string_equal(uri_str(m->req_uri), "sip:bob@10.0.0.2:5070;transport=udp");
	assert_int_equal(osip_list_size(&m->routes), 2);
	assert_string_equal(route_str(m, 0), "sip:p2.example.com;lr;transport=tcp");
	assert_string_equal(route_str(m, 1), "sip:p1.example.com;lr");
	round_trip(m);
	osip_message_free(m);
	dialog_destroy(d);

	/* no route set: no Route at all */
	d = uac_dialog("Contact: <sip:bob@10.0.0.2>\n");
	assert_int_equal(dialog_request(d, "INFO", &m), 0);
	assert_string_equal(uri_str(m->req_uri), "sip:bob@10.0.0.2");
	assert_int_equal(osip_list_size(&m->routes), 0);
	osip_message_free(m);
	dialog_destroy(d);
}

/* 12.2.1.1, first route without lr: Request-URI = that route's URI, Route =
 * the rest of the set, then the remote target. */
static void strict_routing(void **state)
{
	/* reversed by the UAC: strict.example.com comes first */
	struct dialog *d = uac_dialog("Record-Route: <sip:p1.example.com;lr>\n"
				      "Record-Route: <sip:p2.example.com;lr>\n"
				      "Record-Route: <sip:strict.example.com;maddr=192.0.2.9>\n"
				      "Contact: <sip:bob@10.0.0.2:5070>\n");
	osip_message_t *m = NULL;

	assert_int_equal(dialog_request(d, "BYE", &m), 0);
	common_fields(m, "BYE", 102);
	assert_string_equal(uri_str(m->req_uri), "sip:strict.example.com;maddr=192.0.2.9");
	assert_int_equal(osip_list_size(&m->routes), 3);
	assert_string_equal(route_str(m, 0), "sip:p2.example.com;lr");
	assert_string_equal(route_str(m, 1), "sip:p1.example.com;lr");
	assert_string_equal(route_str(m, 2), "sip:bob@10.0.0.2:5070");
	round_trip(m);
	osip_message_free(m);
	dialog_destroy(d);

	/* a single strict route: the target becomes the only Route; 19.1.1
	 * takes the method parameter and headers out of a Request-URI */
	d = uac_dialog("Record-Route: <sip:strict.example.com;method=INVITE?X-A=1>\n"
		       "Contact: <sip:bob@10.0.0.2>\n");
	assert_int_equal(dialog_request(d, "BYE", &m), 0);
	assert_string_equal(uri_str(m->req_uri), "sip:strict.example.com");
	assert_int_equal(osip_list_size(&m->routes), 1);
	assert_string_equal(route_str(m, 0), "sip:bob@10.0.0.2");
	round_trip(m);
	osip_message_free(m);
	dialog_destroy(d);
}

/* CSeq: +1 per request (8.1.1.5, 12.2.1.1), the 2xx ACK takes its INVITE's
 * number (13.2.2.4) and uses none up. */
static void cseq_and_ack(void **state)
{
	osip_message_t *inv = invite("sip:bob@b.example.com",
				     "Proxy-Authorization: Digest username=\"alice\", "
				     "realm=\"a.example.com\", nonce=\"n1\", "
				     "uri=\"sip:bob@b.example.com\", response=\"0123\"\n");
	osip_message_t *ok = reply(200, "tb",
				   "Record-Route: <sip:p1.example.com;lr>\n"
				   "Contact: <sip:bob@10.0.0.2>\n");
	osip_message_t *m = NULL, *reinv = NULL, *ok2;
	struct dialog *d = NULL;
	uint32_t n;

	assert_int_equal(dialog_create_uac(&d, inv, ok), 0);
	assert_int_equal(dialog_ack(d, inv, ok, &m), 0);
	common_fields(m, "ACK", 101);
	max_forwards_70(m);
	assert_string_equal(uri_str(m->req_uri), "sip:bob@10.0.0.2");
	assert_int_equal(osip_list_size(&m->routes), 1);
	assert_int_equal(osip_list_size(&m->proxy_authorizations), 1); /* 22.1 credentials */
	round_trip(m);
	osip_message_free(m);
	assert_true(dialog_local_cseq(d, &n));
	assert_int_equal(n, 101); /* the ACK took no number */

	/* a re-INVITE takes 102, then its ACK 102, then a BYE 103 */
	assert_int_equal(dialog_request(d, "INVITE", &reinv), 0);
	assert_string_equal(cseq_of(reinv, &n), "INVITE");
	assert_int_equal(n, 102);
	assert_int_equal(osip_message_set_via(reinv, "SIP/2.0/UDP b.example.com;branch=z9hG4bKr"),
			 OSIP_SUCCESS);
	ok2 = msg("SIP/2.0 200 OK\n"
		  "Via: SIP/2.0/UDP b.example.com;branch=z9hG4bKr\n"
		  "From: " ALICE ";tag=fa\n"
		  "To: " BOB ";tag=tb\n"
		  "Call-ID: cid1@a.example.com\n"
		  "CSeq: 102 INVITE\n"
		  "Contact: <sip:bob@10.0.0.2>\n"
		  "Content-Length: 0\n");
	assert_int_equal(dialog_ack(d, reinv, ok2, &m), 0);
	assert_string_equal(cseq_of(m, &n), "ACK");
	assert_int_equal(n, 102);
	osip_message_free(m);
	/* the ACK's CSeq must be the INVITE's: a 2xx of another INVITE is refused */
	assert_int_equal(dialog_ack(d, inv, ok2, &m), EINVAL);
	assert_int_equal(dialog_request(d, "BYE", &m), 0);
	assert_string_equal(cseq_of(m, &n), "BYE");
	assert_int_equal(n, 103);
	osip_message_free(m);

	/* ACK and CANCEL are not dialog_request's; nor is a method that is no token */
	m = NULL;
	assert_int_equal(dialog_request(d, "ACK", &m), EINVAL);
	assert_int_equal(dialog_request(d, "CANCEL", &m), EINVAL);
	assert_int_equal(dialog_request(d, "BY E", &m), EINVAL);
	assert_int_equal(dialog_request(d, "", &m), EINVAL);
	assert_null(m);
	assert_true(dialog_local_cseq(d, &n));
	assert_int_equal(n, 103);

	/* terminated: nothing more is sent */
	assert_int_equal(dialog_set_state(d, DIALOG_TERMINATED), 0);
	assert_int_equal(dialog_set_state(d, DIALOG_CONFIRMED), EINVAL);
	assert_int_equal(dialog_request(d, "BYE", &m), ENOTCONN);

	dialog_destroy(d);
	osip_message_free(inv);
	osip_message_free(ok);
	osip_message_free(reinv);
	osip_message_free(ok2);
}

/* A UAS leg starts its own sequence at 1 (12.1.1: local CSeq empty) and
 * sends with the tags swapped: From = our To with our tag. */
static void uas_requests(void **state)
{
	osip_message_t *req =
		incoming("INVITE", 7, NULL,
			 "Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\n"
			 "Contact: <sip:alice@10.0.0.1>\n");
	osip_message_t *m = NULL;
	struct dialog *d = NULL;
	uint32_t n;

	assert_int_equal(dialog_create_uas(&d, req, "ub"), 0);
	assert_int_equal(dialog_set_state(d, DIALOG_CONFIRMED), 0);
	assert_int_equal(dialog_request(d, "BYE", &m), 0);
	assert_string_equal(cseq_of(m, &n), "BYE");
	assert_int_equal(n, 1);
	assert_string_equal(uri_str(m->from->url), "sip:bob@b.example.com");
	assert_string_equal(sipmsg_from_tag(m), "ub");
	assert_string_equal(uri_str(m->to->url), "sip:alice@a.example.com");
	assert_string_equal(sipmsg_to_tag(m), "fa");
	assert_string_equal(uri_str(m->req_uri), "sip:alice@10.0.0.1");
	/* the UAS keeps Record-Route order: p1 first */
	assert_string_equal(route_str(m, 0), "sip:p1.example.com;lr");
	assert_string_equal(route_str(m, 1), "sip:p2.example.com;lr");
	osip_message_free(m);
	assert_int_equal(dialog_request(d, "BYE", &m), 0);
	assert_string_equal(cseq_of(m, &n), "BYE");
	assert_int_equal(n, 2);
	osip_message_free(m);
	dialog_destroy(d);
	osip_message_free(req);
}

/* ---- matching ---- */

static void matching(void **state)
{
	struct dialog *d = uac_dialog("Contact: <sip:bob@10.0.0.2>\n");
	osip_message_t *m;

	/* responses: From tag = ours, To tag = theirs */
	m = reply(200, "tb", "");
	assert_true(dialog_matches(d, m));
	osip_message_free(m);
	m = reply(200, "TB", ""); /* 7.3.1: parameter values ignore case */
	assert_true(dialog_matches(d, m));
	osip_message_free(m);
	m = reply(200, "tb2", ""); /* another fork */
	assert_false(dialog_matches(d, m));
	osip_message_free(m);
	m = reply(200, NULL, "");
	assert_false(dialog_matches(d, m));
	osip_message_free(m);

	/* requests from the peer: To tag = ours, From tag = theirs */
	m = msg("BYE sip:alice@10.0.0.1 SIP/2.0\n"
		"Via: SIP/2.0/UDP b.example.com;branch=z9hG4bKb1\n"
		"Max-Forwards: 70\n"
		"From: " BOB ";tag=tb\n"
		"To: " ALICE ";tag=fa\n"
		"Call-ID: cid1@a.example.com\n"
		"CSeq: 5 BYE\n"
		"Content-Length: 0\n");
	assert_true(dialog_matches(d, m));
	osip_message_free(m);
	/* the same tags in the response's places do not match a request */
	m = msg("BYE sip:alice@10.0.0.1 SIP/2.0\n"
		"Via: SIP/2.0/UDP b.example.com;branch=z9hG4bKb2\n"
		"Max-Forwards: 70\n"
		"From: " ALICE ";tag=fa\n"
		"To: " BOB ";tag=tb\n"
		"Call-ID: cid1@a.example.com\n"
		"CSeq: 5 BYE\n"
		"Content-Length: 0\n");
	assert_false(dialog_matches(d, m));
	osip_message_free(m);
	/* the Call-ID is compared byte by byte */
	m = msg("BYE sip:alice@10.0.0.1 SIP/2.0\n"
		"Via: SIP/2.0/UDP b.example.com;branch=z9hG4bKb3\n"
		"Max-Forwards: 70\n"
		"From: " BOB ";tag=tb\n"
		"To: " ALICE ";tag=fa\n"
		"Call-ID: CID1@a.example.com\n"
		"CSeq: 5 BYE\n"
		"Content-Length: 0\n");
	assert_false(dialog_matches(d, m));
	osip_message_free(m);
	dialog_destroy(d);

	/* UAS side, and a null remote tag (an RFC 2543 peer: 12.1.1) */
	m = msg("INVITE sip:bob@b.example.com SIP/2.0\n"
		"Via: SIP/2.0/UDP a.example.com;branch=z9hG4bKold\n"
		"Max-Forwards: 70\n"
		"From: " ALICE "\n"
		"To: " BOB "\n"
		"Call-ID: old@a.example.com\n"
		"CSeq: 1 INVITE\n"
		"Contact: <sip:alice@10.0.0.1>\n"
		"Content-Length: 0\n");
	assert_int_equal(dialog_create_uas(&d, m, "ub"), 0);
	assert_null(dialog_remote_tag(d));
	osip_message_free(m);
	m = msg("BYE sip:bob@10.0.0.2 SIP/2.0\n"
		"Via: SIP/2.0/UDP a.example.com;branch=z9hG4bKold2\n"
		"Max-Forwards: 70\n"
		"From: " ALICE "\n"
		"To: " BOB ";tag=ub\n"
		"Call-ID: old@a.example.com\n"
		"CSeq: 2 BYE\n"
		"Content-Length: 0\n");
	assert_true(dialog_matches(d, m));
	osip_message_free(m);
	m = msg("BYE sip:bob@10.0.0.2 SIP/2.0\n"
		"Via: SIP/2.0/UDP a.example.com;branch=z9hG4bKold3\n"
		"Max-Forwards: 70\n"
		"From: " ALICE ";tag=x\n"
		"To: " BOB ";tag=ub\n"
		"Call-ID: old@a.example.com\n"
		"CSeq: 2 BYE\n"
		"Content-Length: 0\n");
	assert_false(dialog_matches(d, m));
	osip_message_free(m);
	/* and our requests carry no To tag then */
	assert_int_equal(dialog_request(d, "BYE", &m), 0);
	assert_null(sipmsg_to_tag(m));
	osip_message_free(m);
	dialog_destroy(d);
}

/* ---- incoming requests ---- */

static struct dialog *uas_dialog(void)
{
	osip_message_t *req = incoming("INVITE", 10, NULL, "Contact: <sip:alice@10.0.0.1>\n");
	struct dialog *d = NULL;

	assert_int_equal(dialog_create_uas(&d, req, "ub"), 0);
	osip_message_free(req);
	return d;
}

static void out_of_order(void **state)
{
	struct dialog *d = uas_dialog();
	osip_message_t *m;
	const char *why = NULL;
	uint32_t n;
	int st = -1;

	/* 12.2.2: lower than the remote CSeq -> 500, nothing changes */
	m = incoming("INFO", 9, "ub", "");
	assert_int_equal(dialog_check_request(d, m, &st, &why), EBADMSG);
	assert_int_equal(st, 500);
	assert_non_null(why);
	assert_non_null(strstr(why, "out of order"));
	assert_true(dialog_remote_cseq(d, &n));
	assert_int_equal(n, 10);
	osip_message_free(m);

	/* ACK and CANCEL repeat an INVITE's number: never out of order */
	m = incoming("ACK", 9, "ub", "");
	assert_int_equal(dialog_check_request(d, m, &st, &why), 0);
	assert_int_equal(st, 0);
	osip_message_free(m);

	/* higher: in order, and it becomes the remote CSeq */
	m = incoming("INFO", 12, "ub", "");
	assert_int_equal(dialog_check_request(d, m, &st, NULL), 0);
	assert_true(dialog_remote_cseq(d, &n));
	assert_int_equal(n, 12);
	osip_message_free(m);
	m = incoming("INFO", 11, "ub", "");
	assert_int_equal(dialog_check_request(d, m, &st, NULL), EBADMSG);
	assert_int_equal(st, 500);
	osip_message_free(m);

	/* a request of another dialog or of an ended one: 481 */
	m = incoming("INFO", 20, "zz", "");
	assert_int_equal(dialog_check_request(d, m, &st, &why), ENOENT);
	assert_int_equal(st, 481);
	osip_message_free(m);
	assert_int_equal(dialog_set_state(d, DIALOG_TERMINATED), 0);
	m = incoming("INFO", 20, "ub", "");
	assert_int_equal(dialog_check_request(d, m, &st, &why), ENOENT);
	assert_int_equal(st, 481);
	osip_message_free(m);
	dialog_destroy(d);

	/* a UAC leg's remote CSeq starts empty: any number is in order */
	d = uac_dialog("Contact: <sip:bob@10.0.0.2>\n");
	assert_false(dialog_remote_cseq(d, &n));
	m = msg("BYE sip:alice@10.0.0.1 SIP/2.0\n"
		"Via: SIP/2.0/UDP b.example.com;branch=z9hG4bKb1\n"
		"Max-Forwards: 70\n"
		"From: " BOB ";tag=tb\n"
		"To: " ALICE ";tag=fa\n"
		"Call-ID: cid1@a.example.com\n"
		"CSeq: 1 BYE\n"
		"Content-Length: 0\n");
	assert_int_equal(dialog_check_request(d, m, &st, NULL), 0);
	assert_true(dialog_remote_cseq(d, &n));
	assert_int_equal(n, 1);
	osip_message_free(m);
	dialog_destroy(d);
}

static void target_refresh(void **state)
{
	struct dialog *d = uas_dialog();
	osip_message_t *m;
	const char *why = NULL;
	uint32_t n;
	int st;

	/* a re-INVITE's Contact replaces the remote target (12.2.2) */
	m = incoming("INVITE", 11, "ub", "Contact: <sip:alice@10.0.0.9:5080>\n");
	assert_int_equal(dialog_check_request(d, m, &st, &why), 0);
	assert_string_equal(uri_str(dialog_remote_target(d)), "sip:alice@10.0.0.9:5080");
	osip_message_free(m);
	/* so does an UPDATE's (RFC 3311) */
	m = incoming("UPDATE", 12, "ub", "Contact: <sip:alice@10.0.0.10>\n");
	assert_int_equal(dialog_check_request(d, m, &st, &why), 0);
	assert_string_equal(uri_str(dialog_remote_target(d)), "sip:alice@10.0.0.10");
	osip_message_free(m);
	/* an INFO is no target refresh, and a re-INVITE without Contact keeps it */
	m = incoming("INFO", 13, "ub", "Contact: <sip:alice@10.0.0.11>\n");
	assert_int_equal(dialog_check_request(d, m, &st, &why), 0);
	assert_string_equal(uri_str(dialog_remote_target(d)), "sip:alice@10.0.0.10");
	osip_message_free(m);
	m = incoming("INVITE", 14, "ub", "");
	assert_int_equal(dialog_check_request(d, m, &st, &why), 0);
	assert_string_equal(uri_str(dialog_remote_target(d)), "sip:alice@10.0.0.10");
	osip_message_free(m);
	/* an unusable Contact: 400, target and CSeq unchanged */
	m = incoming("INVITE", 15, "ub", "Contact: <tel:+15551234>\n");
	assert_int_equal(dialog_check_request(d, m, &st, &why), EBADMSG);
	assert_int_equal(st, 400);
	assert_string_equal(uri_str(dialog_remote_target(d)), "sip:alice@10.0.0.10");
	assert_true(dialog_remote_cseq(d, &n));
	assert_int_equal(n, 14);
	osip_message_free(m);
	m = incoming("INVITE", 15, "ub", "Contact: <sip:a@10.0.0.1>, <sip:b@10.0.0.2>\n");
	assert_int_equal(dialog_check_request(d, m, &st, &why), EBADMSG);
	assert_int_equal(st, 400);
	osip_message_free(m);
	/* the next request goes to the new target */
	assert_int_equal(dialog_request(d, "BYE", &m), 0);
	assert_string_equal(uri_str(m->req_uri), "sip:alice@10.0.0.10");
	osip_message_free(m);

	/* 12.2.1.2: the 2xx to our own target refresh, through dialog_refresh_target */
	m = msg("SIP/2.0 200 OK\n"
		"Via: SIP/2.0/UDP b.example.com;branch=z9hG4bKr\n"
		"From: " BOB ";tag=ub\n"
		"To: " ALICE ";tag=fa\n"
		"Call-ID: cid1@a.example.com\n"
		"CSeq: 2 UPDATE\n"
		"Contact: <sip:alice@10.0.0.12>\n"
		"Content-Length: 0\n");
	assert_int_equal(dialog_refresh_target(d, m), 0);
	assert_string_equal(uri_str(dialog_remote_target(d)), "sip:alice@10.0.0.12");
	osip_message_free(m);
	m = reply(200, "fa", "");
	assert_int_equal(dialog_refresh_target(d, m), ENOENT);
	assert_string_equal(uri_str(dialog_remote_target(d)), "sip:alice@10.0.0.12");
	osip_message_free(m);
	dialog_destroy(d);
}

/* ---- refusals ---- */

static void refusals(void **state)
{
	osip_message_t *req = invite("sip:bob@b.example.com", "");
	osip_message_t *m;
	struct dialog *d = NULL;

	/* a dialog needs a remote target: a 2xx without Contact is refused */
	m = reply(200, "tb", "Record-Route: <sip:p1.example.com;lr>\n");
	assert_int_equal(dialog_create_uac(&d, req, m), EBADMSG);
	assert_null(d);
	osip_message_free(m);
	m = reply(200, "tb", "Contact: <sip:a@10.0.0.1>, <sip:b@10.0.0.2>\n");
	assert_int_equal(dialog_create_uac(&d, req, m), EBADMSG);
	osip_message_free(m);
	m = reply(200, "tb", "Contact: *\n");
	assert_int_equal(dialog_create_uac(&d, req, m), EBADMSG);
	osip_message_free(m);
	/* a 1xx without To tag, a 100 and a 4xx make no dialog */
	m = reply(180, NULL, "Contact: <sip:bob@10.0.0.2>\n");
	assert_int_equal(dialog_create_uac(&d, req, m), EINVAL);
	osip_message_free(m);
	m = reply(100, "tb", "Contact: <sip:bob@10.0.0.2>\n");
	assert_int_equal(dialog_create_uac(&d, req, m), EINVAL);
	osip_message_free(m);
	m = reply(486, "tb", "Contact: <sip:bob@10.0.0.2>\n");
	assert_int_equal(dialog_create_uac(&d, req, m), EINVAL);
	osip_message_free(m);
	/* a 2xx without To tag: a null remote tag (12.1.2) */
	m = reply(200, NULL, "Contact: <sip:bob@10.0.0.2>\n");
	assert_int_equal(dialog_create_uac(&d, req, m), 0);
	assert_null(dialog_remote_tag(d));
	dialog_destroy(d);
	d = NULL;
	osip_message_free(m);
	/* the response must be to this request */
	m = msg("SIP/2.0 200 OK\n"
		"Via: SIP/2.0/UDP a.example.com;branch=z9hG4bKinv1\n"
		"From: " ALICE ";tag=fa\n"
		"To: " BOB ";tag=tb\n"
		"Call-ID: cid1@a.example.com\n"
		"CSeq: 102 INVITE\n"
		"Contact: <sip:bob@10.0.0.2>\n"
		"Content-Length: 0\n");
	assert_int_equal(dialog_create_uac(&d, req, m), EINVAL);
	assert_int_equal(dialog_create_uac(&d, m, req), EINVAL);
	osip_message_free(m);

	/* UAS: no Contact, a To tag already there, a bad local tag */
	m = incoming("INVITE", 1, NULL, "");
	assert_int_equal(dialog_create_uas(&d, m, "ub"), EBADMSG);
	osip_message_free(m);
	m = incoming("INVITE", 1, "x", "Contact: <sip:alice@10.0.0.1>\n");
	assert_int_equal(dialog_create_uas(&d, m, "ub"), EINVAL);
	osip_message_free(m);
	m = incoming("INVITE", 1, NULL, "Contact: <sip:alice@10.0.0.1>\n");
	assert_int_equal(dialog_create_uas(&d, m, "u b"), EINVAL);
	assert_int_equal(dialog_create_uas(&d, m, ""), EINVAL);
	assert_int_equal(dialog_create_uas(&d, m, NULL), EINVAL);
	assert_null(d);
	osip_message_free(m);

	osip_message_free(req);
	dialog_destroy(NULL);
}

/* 13.2.2.4: an early dialog from a 180 is confirmed by its 2xx, whose
 * Record-Route and Contact replace the 180's. */
static void early_then_confirmed(void **state)
{
	osip_message_t *req = invite("sip:bob@b.example.com", "");
	osip_message_t *ringing = reply(180, "tb",
					"Record-Route: <sip:p1.example.com;lr>\n"
					"Contact: <sip:bob@10.0.0.2>\n");
	osip_message_t *ok =
		reply(200, "tb",
		      "Record-Route: <sip:p1.example.com;lr>, <sip:p9.example.com;lr>\n"
		      "Contact: <sip:bob@10.0.0.3>\n");
	osip_message_t *fork = reply(200, "tc", "Contact: <sip:carol@10.0.0.4>\n");
	osip_message_t *m = NULL;
	struct dialog *d = NULL;

	assert_int_equal(dialog_create_uac(&d, req, ringing), 0);
	assert_int_equal(dialog_state(d), DIALOG_EARLY);
	assert_int_equal(dialog_route_count(d), 1);
	assert_int_equal(dialog_ack(d, req, ok, &m), EINVAL);  /* not confirmed yet */
	assert_int_equal(dialog_uac_confirm(d, fork), EINVAL); /* another fork's */
	assert_int_equal(dialog_uac_confirm(d, ok), 0);
	assert_int_equal(dialog_state(d), DIALOG_CONFIRMED);
	assert_int_equal(dialog_route_count(d), 2);
	assert_string_equal(uri_str(dialog_route(d, 0)), "sip:p9.example.com;lr");
	assert_string_equal(uri_str(dialog_route(d, 1)), "sip:p1.example.com;lr");
	assert_string_equal(uri_str(dialog_remote_target(d)), "sip:bob@10.0.0.3");
	assert_int_equal(dialog_uac_confirm(d, ok), EINVAL); /* only once */
	assert_int_equal(dialog_ack(d, req, ok, &m), 0);
	assert_string_equal(uri_str(m->req_uri), "sip:bob@10.0.0.3");
	assert_string_equal(route_str(m, 0), "sip:p9.example.com;lr");
	osip_message_free(m);
	dialog_destroy(d);
	osip_message_free(req);
	osip_message_free(ringing);
	osip_message_free(ok);
	osip_message_free(fork);
}

/* The secure flag follows a sips Request-URI (12.1.1, 12.1.2) and then asks
 * for a sips remote target (8.1.1.8), at creation and at each refresh. */
static void sips(void **state)
{
	osip_message_t *req = invite("sips:bob@b.example.com", "");
	osip_message_t *m;
	struct dialog *d = NULL;
	const char *why;
	int st;

	m = reply(200, "tb", "Contact: <sip:bob@10.0.0.2>\n");
	assert_int_equal(dialog_create_uac(&d, req, m), EBADMSG);
	osip_message_free(m);
	m = reply(200, "tb", "Contact: <sips:bob@10.0.0.2>\n");
	assert_int_equal(dialog_create_uac(&d, req, m), 0);
	assert_true(dialog_secure(d));
	osip_message_free(m);
	assert_int_equal(dialog_request(d, "BYE", &m), 0);
	assert_string_equal(uri_str(m->req_uri), "sips:bob@10.0.0.2");
	osip_message_free(m);
	m = msg("INVITE sips:alice@10.0.0.1 SIP/2.0\n"
		"Via: SIP/2.0/TLS b.example.com;branch=z9hG4bKs1\n"
		"Max-Forwards: 70\n"
		"From: " BOB ";tag=tb\n"
		"To: " ALICE ";tag=fa\n"
		"Call-ID: cid1@a.example.com\n"
		"CSeq: 1 INVITE\n"
		"Contact: <sip:bob@10.0.0.7>\n"
		"Content-Length: 0\n");
	assert_int_equal(dialog_check_request(d, m, &st, &why), EBADMSG);
	assert_int_equal(st, 400);
	assert_int_equal(dialog_refresh_target(d, m), EBADMSG);
	assert_string_equal(uri_str(dialog_remote_target(d)), "sips:bob@10.0.0.2");
	osip_message_free(m);
	dialog_destroy(d);
	osip_message_free(req);

	/* the UAS side too; and a sip Request-URI makes no secure dialog */
	m = msg("INVITE sips:bob@b.example.com SIP/2.0\n"
		"Via: SIP/2.0/TLS a.example.com;branch=z9hG4bKs2\n"
		"Max-Forwards: 70\n"
		"From: " ALICE ";tag=fa\n"
		"To: <sips:bob@b.example.com>\n"
		"Call-ID: s2@a.example.com\n"
		"CSeq: 1 INVITE\n"
		"Contact: <sips:alice@10.0.0.1>\n"
		"Content-Length: 0\n");
	assert_int_equal(dialog_create_uas(&d, m, "ub"), 0);
	assert_true(dialog_secure(d));
	dialog_destroy(d);
	osip_message_free(m);
	m = incoming("INVITE", 1, NULL, "Contact: <sips:alice@10.0.0.1>\n");
	assert_int_equal(dialog_create_uas(&d, m, "ub"), 0);
	assert_false(dialog_secure(d));
	dialog_destroy(d);
	osip_message_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(uac_route_sets),
		cmocka_unit_test(uas_route_sets),
		cmocka_unit_test(uas_response_copies_record_route),
		cmocka_unit_test(loose_routing),
		cmocka_unit_test(strict_routing),
		cmocka_unit_test(cseq_and_ack),
		cmocka_unit_test(uas_requests),
		cmocka_unit_test(matching),
		cmocka_unit_test(out_of_order),
		cmocka_unit_test(target_refresh),
		cmocka_unit_test(refusals),
		cmocka_unit_test(early_then_confirmed),
		cmocka_unit_test(sips),
	};

	return cmocka_run_group_tests_name("dialog", tests, NULL, NULL);
}
