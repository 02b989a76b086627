/* Leg B's INVITE from leg A's: a carrier INVITE through a trunk that passes
 * P-Asserted-Identity and Diversion, checked field by field on the
 * serialised and re-parsed result, and checked for every piece of leg A that
 * must stay behind (topology hiding); TCP, TLS and IPv6 peers; Max-Forwards
 * 0, absent; an empty pass_headers; the refusals. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "srtpbridge/legb.h"
#include "srtpbridge/sipmsg.h"

/* "\n" line ends, the empty line omitted: both are added. */
static osip_message_t *parse_text(const char *text)
{
	char wire[8192], why[SIPMSG_WHY_MAX];
	osip_message_t *m = NULL;
	size_t n = 0;
	int status = 0;

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

#define CARRIER_HEAD                                                                               \
	"INVITE sip:+4930123456@10.1.1.1:5060;user=phone SIP/2.0\n"                                \
	"Via: SIP/2.0/UDP carrier-edge.example.net:5060;branch=z9hG4bKcarrier1;rport\n"            \
	"Via: SIP/2.0/UDP 192.0.2.77:5070;branch=z9hG4bKcore2\n"                                   \
	"Record-Route: <sip:rr.carrier.example.net;lr>\n"                                          \
	"From: \"Caller \\\"Q\\\" Name\" <sip:%2B4989111@carrier.example.net;user=phone>"          \
	";tag=ctag77\n"                                                                            \
	"To: \"Dest Office\" <sip:%2B4930123456@10.1.1.1;user=phone>;foo=bar\n"                    \
	"Call-ID: carrier-callid-9f8e@192.0.2.77\n"                                                \
	"CSeq: 4711 INVITE\n"                                                                      \
	"Contact: <sip:gw@carrier-contact.example.net:5080>\n"                                     \
	"P-Asserted-Identity: \"Caller\" <sip:+4989111@carrier.example.net>\n"                     \
	"X-Genesys-Foo: secret-internal\n"                                                         \
	"Diversion: <sip:+4930999@carrier.example.net>;reason=unconditional;counter=1\n"           \
	"Allow: INVITE, ACK, BYE\n"                                                                \
	"Supported: timer\n"                                                                       \
	"Diversion: <sip:+4930888@carrier.example.net>;reason=user-busy\n"

static const char carrier_invite[] = CARRIER_HEAD "Max-Forwards: 12\n"
						  "Content-Length: 0\n";
static const char no_mf_invite[] = CARRIER_HEAD "Content-Length: 0\n";
static const char mf0_invite[] = CARRIER_HEAD "Max-Forwards: 0\n"
					      "Content-Length: 0\n";

static char *pass_names[] = { "P-Asserted-Identity", "Diversion" };

struct fixture {
	struct sip_uri listen[3];
	struct sip_uri peer;
	struct config_trunk trunk;
	struct legb_ids ids;
};

static void fixture_init(struct fixture *x, enum sip_transport tp, const char *peer_host)
{
	static const enum sip_transport tps[] = { SIP_TP_UDP, SIP_TP_TCP, SIP_TP_TLS };

	memset(x, 0, sizeof(*x));
	for (int i = 0; i < 3; i++) {
		x->listen[i].transport = tps[i];
		snprintf(x->listen[i].host, sizeof(x->listen[i].host), "198.51.100.%d", 10 + i);
		x->listen[i].port = (uint16_t)(5060 + i);
	}
	x->peer.transport = tp;
	snprintf(x->peer.host, sizeof(x->peer.host), "%s", peer_host);
	x->peer.port = 5080;
	x->trunk.name = "pbx";
	x->trunk.listen = x->listen;
	x->trunk.nlisten = 3;
	x->trunk.peers = &x->peer;
	x->trunk.npeers = 1;
	x->trunk.pass_headers = pass_names;
	x->trunk.npass_headers = 2;
	x->ids.call_id = "legb-0001@sbc";
	x->ids.from_tag = "btag1";
	x->ids.branch = "z9hG4bKlegb1";
	x->ids.contact_user = "sbc-1";
}

/* Builds, serialises, re-parses; returns the text (free it). */
static char *build(const char *a_text, struct fixture *x, osip_message_t **reparsed)
{
	osip_message_t *a = parse_text(a_text), *b = NULL;
	const char *why = NULL;
	char *buf = NULL, pwhy[SIPMSG_WHY_MAX];
	size_t len = 0;
	int status = -1;

	assert_int_equal(legb_invite(&b, a, &x->trunk, &x->peer, &x->ids, &status, &why), 0);
	assert_int_equal(status, 0);
	assert_null(why);
	assert_int_equal(sipmsg_serialize(b, &buf, &len), 0);
	assert_int_equal(strlen(buf), len);
	assert_int_equal(
		sipmsg_parse(reparsed, (struct slice){ buf, len }, &status, pwhy, sizeof(pwhy)), 0);
	osip_message_free(a);
	osip_message_free(b);
	return buf;
}

/* The value of the idx-th header line called name (case-insensitive), or
 * NULL; copied into a static buffer. */
static const char *line_value(const char *text, const char *name, unsigned idx)
{
	static char val[512];
	size_t nl = strlen(name);
	const char *p = strstr(text, "\r\n");

	while (p && p[2] != '\r') {
		const char *line = p + 2, *end = strstr(line, "\r\n");

		if (strncasecmp(line, name, nl) == 0 && line[nl] == ':' && idx-- == 0) {
			const char *v = line + nl + 1;

			while (*v == ' ')
				v++;
			snprintf(val, sizeof(val), "%.*s", (int)(end - v), v);
			return val;
		}
		p = end;
	}
	return NULL;
}

static void assert_absent(const char *text, const char *needle)
{
	if (strcasestr(text, needle))
		fail_msg("'%s' crossed to leg B:\n%s", needle, text);
}

static void carrier_field_by_field(void **state)
{
	struct fixture x;
	osip_message_t *b = NULL;
	char cid[128];
	uint32_t cseq;
	const char *method;
	char *t;

	(void)state;
	fixture_init(&x, SIP_TP_UDP, "203.0.113.5");
	t = build(carrier_invite, &x, &b);
	/* the dialled number (%2B printed as '+' by libosip2, RFC 3261 19.1.4 equal);
	 * none of leg A's URI parameters */
	assert_non_null(strstr(t, "INVITE sip:+4930123456@203.0.113.5:5080 SIP/2.0\r\n"));
	assert_string_equal(b->req_uri->host, "203.0.113.5");
	assert_string_equal(b->req_uri->username, "+4930123456");
	assert_int_equal(osip_list_size(&b->req_uri->url_params), 0);

	assert_string_equal(b->from->displayname, "\"Caller \\\"Q\\\" Name\"");
	assert_string_equal(b->from->url->username, "+4989111");
	assert_string_equal(b->from->url->host, "198.51.100.10");
	assert_string_equal(sipmsg_from_tag(b), "btag1");
	assert_int_equal(osip_list_size(&b->from->gen_params), 1);
	assert_int_equal(osip_list_size(&b->from->url->url_params), 0);

	assert_string_equal(b->to->displayname, "\"Dest Office\"");
	assert_string_equal(b->to->url->username, "+4930123456");
	assert_string_equal(b->to->url->host, "203.0.113.5");
	assert_null(sipmsg_to_tag(b));
	assert_int_equal(osip_list_size(&b->to->gen_params), 0);
	assert_int_equal(osip_list_size(&b->to->url->url_params), 0);

	assert_int_equal(sipmsg_call_id(b, cid, sizeof(cid)), 0);
	assert_string_equal(cid, "legb-0001@sbc");
	assert_int_equal(sipmsg_cseq(b, &cseq, &method), 0);
	assert_int_equal(cseq, 1);
	assert_string_equal(method, "INVITE");
	assert_string_equal(sipmsg_header_get(b, "Max-Forwards", 0), "11");

	assert_int_equal(osip_list_size(&b->contacts), 1);
	assert_string_equal(line_value(t, "Contact", 0), "<sip:sbc-1@198.51.100.10:5060>");
	assert_int_equal(sipmsg_via_count(b), 1);
	assert_string_equal(line_value(t, "Via", 0),
			    "SIP/2.0/UDP 198.51.100.10:5060;branch=z9hG4bKlegb1;rport");

	/* passed headers: verbatim, every instance, in leg A's order */
	assert_string_equal(sipmsg_header_get(b, "P-Asserted-Identity", 0),
			    "\"Caller\" <sip:+4989111@carrier.example.net>");
	assert_null(sipmsg_header_get(b, "P-Asserted-Identity", 1));
	assert_string_equal(sipmsg_header_get(b, "Diversion", 0),
			    "<sip:+4930999@carrier.example.net>;reason=unconditional;counter=1");
	assert_string_equal(sipmsg_header_get(b, "Diversion", 1),
			    "<sip:+4930888@carrier.example.net>;reason=user-busy");
	assert_null(sipmsg_header_get(b, "Diversion", 2));
	assert_true(strstr(t, "P-Asserted-Identity:") < strstr(t, "counter=1"));
	assert_true(strstr(t, "counter=1") < strstr(t, "user-busy"));
	assert_string_equal(line_value(t, "Content-Length", 0), "0");
	assert_null(b->bodies.nb_elt ? "body" : NULL);

	/* topology hiding: nothing else of leg A, anywhere in the text */
	assert_absent(t, "carrier-edge");
	assert_absent(t, "192.0.2.77");
	assert_absent(t, "z9hG4bKcarrier1");
	assert_absent(t, "z9hG4bKcore2");
	assert_absent(t, "carrier-callid-9f8e");
	assert_absent(t, "Record-Route");
	assert_absent(t, "rr.carrier");
	assert_absent(t, "carrier-contact");
	assert_absent(t, "X-Genesys-Foo");
	assert_absent(t, "secret-internal");
	assert_absent(t, "ctag77");
	assert_absent(t, "foo=bar");
	assert_absent(t, "user=phone");
	assert_absent(t, "4711");
	assert_absent(t, "Allow");
	assert_absent(t, "Supported");
	assert_absent(t, "10.1.1.1");
	free(t);
	osip_message_free(b);
}

static void transports(void **state)
{
	struct fixture x;
	osip_message_t *b = NULL;
	char *t;

	(void)state;
	fixture_init(&x, SIP_TP_TCP, "pbx.example.org");
	t = build(carrier_invite, &x, &b);
	assert_non_null(strstr(t, "INVITE sip:+4930123456@pbx.example.org:5080;transport=tcp "));
	assert_string_equal(line_value(t, "Via", 0),
			    "SIP/2.0/TCP 198.51.100.11:5061;branch=z9hG4bKlegb1;rport");
	assert_string_equal(line_value(t, "Contact", 0),
			    "<sip:sbc-1@198.51.100.11:5061;transport=tcp>");
	assert_string_equal(b->from->url->host, "198.51.100.11");
	free(t);
	osip_message_free(b);

	fixture_init(&x, SIP_TP_TLS, "pbx.example.org");
	t = build(carrier_invite, &x, &b);
	assert_non_null(strstr(t, "INVITE sip:+4930123456@pbx.example.org:5080;transport=tls "));
	assert_null(strstr(t, "sips:"));
	assert_string_equal(line_value(t, "Via", 0),
			    "SIP/2.0/TLS 198.51.100.12:5062;branch=z9hG4bKlegb1;rport");
	assert_string_equal(line_value(t, "Contact", 0),
			    "<sip:sbc-1@198.51.100.12:5062;transport=tls>");
	free(t);
	osip_message_free(b);
}

static void advertise_and_ipv6(void **state)
{
	struct fixture x;
	osip_message_t *b = NULL;
	char *t;

	(void)state;
	fixture_init(&x, SIP_TP_UDP, "2001:db8::5");
	x.trunk.sip_advertise = "2001:db8::1";
	t = build(carrier_invite, &x, &b);
	assert_non_null(strstr(t, "INVITE sip:+4930123456@[2001:db8::5]:5080 SIP/2.0\r\n"));
	assert_string_equal(line_value(t, "Via", 0),
			    "SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bKlegb1;rport");
	assert_string_equal(line_value(t, "Contact", 0), "<sip:sbc-1@[2001:db8::1]:5060>");
	assert_non_null(strstr(line_value(t, "From", 0), "<sip:+4989111@[2001:db8::1]>"));
	assert_non_null(strstr(line_value(t, "To", 0), "<sip:+4930123456@[2001:db8::5]>"));
	free(t);
	osip_message_free(b);

	/* a name as sip_advertise */
	fixture_init(&x, SIP_TP_UDP, "203.0.113.5");
	x.trunk.sip_advertise = "sbc.example.com";
	t = build(carrier_invite, &x, &b);
	assert_string_equal(b->from->url->host, "sbc.example.com");
	assert_string_equal(line_value(t, "Contact", 0), "<sip:sbc-1@sbc.example.com:5060>");
	free(t);
	osip_message_free(b);
}

static void max_forwards(void **state)
{
	struct fixture x;
	osip_message_t *a, *b = NULL;
	const char *why = NULL;
	int status = 0;
	char *t;

	(void)state;
	fixture_init(&x, SIP_TP_UDP, "203.0.113.5");
	t = build(no_mf_invite, &x, &b);
	assert_string_equal(sipmsg_header_get(b, "Max-Forwards", 0), "70");
	free(t);
	osip_message_free(b);
	b = NULL;

	a = parse_text(mf0_invite);
	assert_int_equal(legb_invite(&b, a, &x.trunk, &x.peer, &x.ids, &status, &why), ELOOP);
	assert_int_equal(status, 483);
	assert_string_equal(why, "Max-Forwards reached 0");
	assert_null(b);
	osip_message_free(a);
}

static void empty_pass_headers(void **state)
{
	struct fixture x;
	osip_message_t *b = NULL;
	char *t;

	(void)state;
	fixture_init(&x, SIP_TP_UDP, "203.0.113.5");
	x.trunk.pass_headers = NULL;
	x.trunk.npass_headers = 0;
	t = build(carrier_invite, &x, &b);
	assert_absent(t, "P-Asserted-Identity");
	assert_absent(t, "Diversion");
	assert_int_equal(osip_list_size(&b->headers), 1); /* Max-Forwards alone */
	free(t);
	osip_message_free(b);
}

/* A user character that must be escaped stays escaped on the wire. */
static void escapes(void **state)
{
	struct fixture x;
	osip_message_t *b = NULL;
	char *t;

	(void)state;
	fixture_init(&x, SIP_TP_UDP, "203.0.113.5");
	t = build("INVITE sip:john%20doe@10.1.1.1 SIP/2.0\n"
		  "Via: SIP/2.0/UDP 192.0.2.77;branch=z9hG4bKe1\n"
		  "From: Anon <sip:a%3Cb@192.0.2.77>;tag=1\n"
		  "To: <sip:john%20doe@10.1.1.1>\n"
		  "Call-ID: e1\n"
		  "CSeq: 1 INVITE\n"
		  "Contact: <sip:a@192.0.2.77>\n"
		  "Content-Length: 0\n",
		  &x, &b);
	assert_non_null(strstr(t, "INVITE sip:john%20doe@203.0.113.5:5080 SIP/2.0\r\n"));
	assert_non_null(strstr(t, "\r\nFrom: Anon <sip:a%3Cb@198.51.100.10>;tag=btag1\r\n"));
	assert_non_null(strstr(t, "\r\nTo: <sip:john%20doe@203.0.113.5>\r\n"));
	assert_string_equal(b->req_uri->username, "john doe");
	free(t);
	osip_message_free(b);
}

static void refusals(void **state)
{
	struct fixture x;
	osip_message_t *a, *b = NULL;
	const char *why = NULL;
	int status = 0;

	(void)state;
	fixture_init(&x, SIP_TP_TLS, "203.0.113.5");
	a = parse_text(carrier_invite);
	x.trunk.nlisten = 1; /* UDP only: no address to put in a TLS Via */
	assert_int_equal(legb_invite(&b, a, &x.trunk, &x.peer, &x.ids, &status, &why), EINVAL);
	assert_int_equal(status, 500);
	assert_non_null(why);
	x.trunk.nlisten = 3;
	x.ids.branch = "nocookie";
	assert_int_equal(legb_invite(&b, a, &x.trunk, &x.peer, &x.ids, &status, &why), EINVAL);
	x.ids.branch = "z9hG4bKlegb1";
	x.ids.call_id = "a\r\nX-Injected: 1";
	assert_int_equal(legb_invite(&b, a, &x.trunk, &x.peer, &x.ids, &status, &why), EINVAL);
	x.ids.call_id = "legb-0001@sbc";
	assert_int_equal(legb_invite(&b, NULL, &x.trunk, &x.peer, &x.ids, &status, &why), EINVAL);
	assert_null(b);
	osip_message_free(a);

	a = parse_text("INVITE tel:+4930123 SIP/2.0\n"
		       "Via: SIP/2.0/UDP 192.0.2.77;branch=z9hG4bKt1\n"
		       "From: <sip:a@192.0.2.77>;tag=1\n"
		       "To: <tel:+4930123>\n"
		       "Call-ID: t1\n"
		       "CSeq: 1 INVITE\n"
		       "Contact: <sip:a@192.0.2.77>\n"
		       "Content-Length: 0\n");
	assert_int_equal(legb_invite(&b, a, &x.trunk, &x.peer, &x.ids, &status, &why),
			 EPROTONOSUPPORT);
	assert_int_equal(status, 416);
	assert_null(b);
	osip_message_free(a);
}

/* Supported and Require never cross, even when pass_headers names them:
 * 100rel and timer are between each UA and srtpbridge. */
static void extensions_are_per_hop(void **state)
{
	static char *names[] = { "Supported", "Require", "Proxy-Require", "P-Asserted-Identity" };
	struct fixture x;
	osip_message_t *b = NULL;
	char *t;

	(void)state;
	fixture_init(&x, SIP_TP_UDP, "203.0.113.5");
	x.trunk.pass_headers = names;
	x.trunk.npass_headers = 4;
	t = build(carrier_invite, &x, &b);
	assert_absent(t, "Supported");
	assert_absent(t, "Require");
	assert_non_null(strcasestr(t, "P-Asserted-Identity: "));
	free(t);
	osip_message_free(b);
}

/* An in-dialog request's pass_headers (a BYE's User-to-User) cross to the
 * other leg's request; the rest, and the hop-by-hop ones, do not. */
static void pass_headers_of_a_bye(void **state)
{
	static char *names[] = { "User-to-User", "Require", "X-Srtpprobe-Heard" };
	static const char bye[] = "BYE sip:sbc@198.51.100.10 SIP/2.0\n"
				  "Via: SIP/2.0/UDP 203.0.113.5;branch=z9hG4bKbye1\n"
				  "From: <sip:a@x>;tag=1\nTo: <sip:b@y>;tag=2\n"
				  "Call-ID: bye1\nCSeq: 3 BYE\nMax-Forwards: 70\n"
				  "User-to-User: 04fa;encoding=hex\n"
				  "X-Srtpprobe-Heard: tone=A; frames=120; packets=150\n"
				  "Require: timer\nX-Other: no\nContent-Length: 0\n";
	struct fixture x;
	osip_message_t *in = parse_text(bye), *out = parse_text(no_mf_invite);

	(void)state;
	fixture_init(&x, SIP_TP_UDP, "203.0.113.5");
	x.trunk.pass_headers = names;
	x.trunk.npass_headers = 3;
	assert_int_equal(legb_pass_headers(out, in, &x.trunk), 0);
	assert_string_equal(sipmsg_header_get(out, "User-to-User", 0), "04fa;encoding=hex");
	assert_string_equal(sipmsg_header_get(out, "X-Srtpprobe-Heard", 0),
			    "tone=A; frames=120; packets=150");
	assert_null(sipmsg_header_get(out, "Require", 0));
	assert_null(sipmsg_header_get(out, "X-Other", 0));
	assert_int_equal(legb_pass_headers(out, NULL, &x.trunk), EINVAL);
	osip_message_free(in);
	osip_message_free(out);
}

/* Our Contact and Via on either leg: the listen address of the transport,
 * sip_advertise first, IPv6 in brackets, ;transport= for streams. */
static void contact_and_via(void **state)
{
	struct fixture x;
	char buf[200];

	(void)state;
	fixture_init(&x, SIP_TP_UDP, "203.0.113.5");
	assert_int_equal(legb_contact(buf, sizeof(buf), &x.trunk, SIP_TP_UDP, "c1"), 0);
	assert_string_equal(buf, "<sip:c1@198.51.100.10:5060>");
	assert_int_equal(legb_contact(buf, sizeof(buf), &x.trunk, SIP_TP_TLS, "c1"), 0);
	assert_string_equal(buf, "<sip:c1@198.51.100.12:5062;transport=tls>");
	assert_int_equal(legb_via(buf, sizeof(buf), &x.trunk, SIP_TP_TCP, "z9hG4bKx1"), 0);
	assert_string_equal(buf, "SIP/2.0/TCP 198.51.100.11:5061;branch=z9hG4bKx1;rport");
	x.trunk.sip_advertise = "2001:db8::1";
	assert_int_equal(legb_contact(buf, sizeof(buf), &x.trunk, SIP_TP_UDP, "c1"), 0);
	assert_string_equal(buf, "<sip:c1@[2001:db8::1]:5060>");
	assert_int_equal(legb_via(buf, sizeof(buf), &x.trunk, SIP_TP_UDP, "z9hG4bKx1"), 0);
	assert_string_equal(buf, "SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bKx1;rport");
	/* refusals: no listen address of the transport, bad user or branch, no room */
	x.trunk.nlisten = 1;
	assert_int_equal(legb_contact(buf, sizeof(buf), &x.trunk, SIP_TP_TLS, "c1"), EINVAL);
	assert_int_equal(legb_via(buf, sizeof(buf), &x.trunk, SIP_TP_TCP, "z9hG4bKx"), EINVAL);
	assert_int_equal(legb_contact(buf, sizeof(buf), &x.trunk, SIP_TP_UDP, "a b"), EINVAL);
	assert_int_equal(legb_contact(buf, sizeof(buf), &x.trunk, SIP_TP_UDP, ""), EINVAL);
	assert_int_equal(legb_via(buf, sizeof(buf), &x.trunk, SIP_TP_UDP, "x1"), EINVAL);
	assert_int_equal(legb_via(buf, sizeof(buf), &x.trunk, SIP_TP_UDP, "z9hG4bK a"), EINVAL);
	assert_int_equal(legb_contact(buf, 10, &x.trunk, SIP_TP_UDP, "c1"), ENOSPC);
	assert_int_equal(legb_via(buf, 10, &x.trunk, SIP_TP_UDP, "z9hG4bKx1"), ENOSPC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(carrier_field_by_field),
		cmocka_unit_test(transports),
		cmocka_unit_test(advertise_and_ipv6),
		cmocka_unit_test(max_forwards),
		cmocka_unit_test(empty_pass_headers),
		cmocka_unit_test(escapes),
		cmocka_unit_test(refusals),
		cmocka_unit_test(contact_and_via),
		cmocka_unit_test(extensions_are_per_hop),
		cmocka_unit_test(pass_headers_of_a_bye),
	};

	return cmocka_run_group_tests_name("legb", tests, NULL, NULL);
}
