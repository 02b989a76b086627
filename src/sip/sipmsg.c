/* SIP messages over libosip2 5.3. The raw bytes are checked first (caps,
 * start line, the header syntax libosip2 accepts too readily), then libosip2
 * parses; everything that hands libosip2 a string it will own or free lives
 * here and nowhere else. */
#include "srtpbridge/sipmsg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NAME_SLOTS 512 /* > 2 * SIPMSG_MAX_LINES: open addressing stays short */
#define SHOWN_MAX  32  /* bytes of peer text quoted in a refusal */

/* libosip2's parser tables are built once per process. Debian builds it with
 * ENABLE_TRACE and, with no trace sink set, it prints every error it meets
 * in hostile input to stdout, whatever the levels say: we report our own
 * reasons instead, so it gets a sink that drops everything and no level. */
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_err;

static void osip_quiet(const char *file, int line, osip_trace_level_t level, const char *fmt,
		       va_list ap)
{
}

static void init(void)
{
	osip_trace_initialize_func(TRACE_LEVEL0, osip_quiet);
	for (int l = TRACE_LEVEL0; l < END_TRACE_LEVEL; l++)
		osip_trace_disable_level((osip_trace_level_t)l);
	init_err = parser_init() == OSIP_SUCCESS ? 0 : ENOMEM;
}

static int ensure_init(void)
{
	pthread_once(&init_once, init);
	return init_err;
}

/* ---- characters ---- */

static bool is_token(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("-.!%*_+`'~", c));
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* Inside a header value CR and LF only come from line folding: LWS. */
static bool is_lws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static const char *skip_lws(const char *p, const char *end)
{
	while (p < end && is_lws((unsigned char)*p))
		p++;
	return p;
}

static struct slice trim_lws(struct slice s)
{
	while (s.n && is_lws((unsigned char)s.p[0])) {
		s.p++;
		s.n--;
	}
	while (s.n && is_lws((unsigned char)s.p[s.n - 1]))
		s.n--;
	return s;
}

static bool slice_caseeq(struct slice a, const char *lit)
{
	size_t n = strlen(lit);

	return a.n == n && strncasecmp(a.p, lit, n) == 0;
}

static bool all_token(struct slice s)
{
	if (!s.n)
		return false;
	for (size_t i = 0; i < s.n; i++)
		if (!is_token((unsigned char)s.p[i]))
			return false;
	return true;
}

static bool all_digits(struct slice s)
{
	if (!s.n)
		return false;
	for (size_t i = 0; i < s.n; i++)
		if (!is_digit((unsigned char)s.p[i]))
			return false;
	return true;
}

/* 1*DIGIT to a number, saturating at cap + 1: callers only compare. */
static uint64_t digits_value(struct slice s, uint64_t cap)
{
	uint64_t v = 0;

	for (size_t i = 0; i < s.n; i++) {
		v = v * 10 + (uint64_t)(s.p[i] - '0');
		if (v > cap)
			return cap + 1;
	}
	return v;
}

/* A URI scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) before ':'. */
static bool uri_scheme(struct slice uri, struct slice *scheme)
{
	const char *colon = memchr(uri.p, ':', uri.n);

	if (!colon || colon == uri.p)
		return false;
	*scheme = (struct slice){ uri.p, (size_t)(colon - uri.p) };
	for (size_t i = 0; i < scheme->n; i++) {
		unsigned char c = (unsigned char)scheme->p[i];
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');

		if (!alpha && (i == 0 || (!is_digit(c) && c != '+' && c != '-' && c != '.')))
			return false;
	}
	return true;
}

/* ---- refusals ---- */

struct refusal {
	int *status;
	char *why;
	size_t whysz;
};

/* Peer bytes quoted in a sentence: short, printable ASCII only, since the
 * sentence reaches logs and Warning headers. */
struct shown {
	char s[SHOWN_MAX + 4];
};

static const char *show(struct shown *b, struct slice v)
{
	size_t n = v.n > SHOWN_MAX ? SHOWN_MAX : v.n;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v.p[i];

		b->s[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	strcpy(b->s + n, v.n > n ? "..." : "");
	return b->s;
}

__attribute__((format(printf, 3, 4))) static int refuse(struct refusal *rf, int status,
							const char *fmt, ...)
{
	va_list ap;

	*rf->status = status;
	if (rf->whysz) {
		va_start(ap, fmt);
		vsnprintf(rf->why, rf->whysz, fmt, ap);
		va_end(ap);
	}
	return status == 513 ? EMSGSIZE : EBADMSG;
}

static const char *skip_crlf(struct slice raw)
{
	const char *p = raw.p, *end = raw.p + raw.n;

	while (p < end && (*p == '\r' || *p == '\n'))
		p++;
	return p;
}

/* A response is never answered: a refused one is dropped (status 0). */
static bool looks_like_response(struct slice raw)
{
	const char *p = skip_crlf(raw);

	return (size_t)(raw.p + raw.n - p) >= 4 && strncasecmp(p, "SIP/", 4) == 0;
}

/* ---- header names ---- */

enum hdr {
	H_OTHER = 0,
	H_VIA,
	H_FROM,
	H_TO,
	H_CALL_ID,
	H_CSEQ,
	H_MAX_FORWARDS,
	H_CONTENT_LENGTH,
	H_CONTENT_TYPE,
	H_CONTACT,
	H_ROUTE,
	H_RECORD_ROUTE,
	H__COUNT
};

/* Long names with their compact forms (RFC 3261 7.3.3 and the IANA
 * registry): compact and long count as the same name. */
static const struct {
	const char *name;
	char compact;
	enum hdr id;
} known[] = {
	{ "via", 'v', H_VIA },
	{ "from", 'f', H_FROM },
	{ "to", 't', H_TO },
	{ "call-id", 'i', H_CALL_ID },
	{ "cseq", 0, H_CSEQ },
	{ "max-forwards", 0, H_MAX_FORWARDS },
	{ "content-length", 'l', H_CONTENT_LENGTH },
	{ "content-type", 'c', H_CONTENT_TYPE },
	{ "contact", 'm', H_CONTACT },
	{ "route", 0, H_ROUTE },
	{ "record-route", 0, H_RECORD_ROUTE },
	{ "accept-contact", 'a', H_OTHER },
	{ "referred-by", 'b', H_OTHER },
	{ "request-disposition", 'd', H_OTHER },
	{ "content-encoding", 'e', H_OTHER },
	{ "reject-contact", 'j', H_OTHER },
	{ "supported", 'k', H_OTHER },
	{ "identity-info", 'n', H_OTHER },
	{ "event", 'o', H_OTHER },
	{ "refer-to", 'r', H_OTHER },
	{ "subject", 's', H_OTHER },
	{ "allow-events", 'u', H_OTHER },
	{ "session-expires", 'x', H_OTHER },
	{ "identity", 'y', H_OTHER },
};

static const char *const hdr_label[H__COUNT] = {
	[H_VIA] = "Via",
	[H_FROM] = "From",
	[H_TO] = "To",
	[H_CALL_ID] = "Call-ID",
	[H_CSEQ] = "CSeq",
	[H_MAX_FORWARDS] = "Max-Forwards",
	[H_CONTENT_LENGTH] = "Content-Length",
	[H_CONTENT_TYPE] = "Content-Type",
	[H_CONTACT] = "Contact",
	[H_ROUTE] = "Route",
	[H_RECORD_ROUTE] = "Record-Route",
};

/* The long form of name (lower case for known names) and its id. */
static enum hdr canon(struct slice name, struct slice *longname)
{
	*longname = name;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		if ((name.n == 1 && known[i].compact && (name.p[0] | 0x20) == known[i].compact) ||
		    slice_caseeq(name, known[i].name)) {
			*longname = slice_from(known[i].name);
			return known[i].id;
		}
	}
	return H_OTHER;
}

/* ---- lines and fields ---- */

static const char *find_crlf(const char *p, const char *end)
{
	while (p < end) {
		const char *cr = memchr(p, '\r', (size_t)(end - p));

		if (!cr || cr + 1 >= end)
			return NULL;
		if (cr[1] == '\n')
			return cr;
		p = cr + 1;
	}
	return NULL;
}

struct field {
	struct slice line;  /* the whole field: first line to the CRLF of the last */
	struct slice name;  /* trimmed; empty when the first line has no colon */
	struct slice value; /* after the colon, continuation lines included */
};

/* The next header field at *pp, with its continuation lines. Works on
 * unchecked bytes (framing calls it before any precheck): a line with no
 * CRLF ends at end. Returns false at the empty line or at end. */
static bool next_field(const char **pp, const char *end, struct field *f)
{
	const char *p = *pp, *le, *q, *colon;

	if (p >= end || *p == '\r')
		return false; /* the empty line (or a stray CR: not a field) */
	le = find_crlf(p, end);
	if (!le)
		le = end;
	colon = memchr(p, ':', (size_t)(le - p));
	f->name = (struct slice){ p, colon ? (size_t)(colon - p) : 0 };
	while (f->name.n && is_wsp((unsigned char)f->name.p[f->name.n - 1]))
		f->name.n--;
	q = le < end ? le + 2 : end;
	while (q < end && is_wsp((unsigned char)*q)) {
		const char *e = find_crlf(q, end);

		le = e ? e : end;
		q = e ? e + 2 : end;
	}
	f->value = colon ? (struct slice){ colon + 1, (size_t)(le - colon - 1) }
			 : (struct slice){ le, 0 };
	f->line = (struct slice){ p, (size_t)(q - p) };
	*pp = q;
	return true;
}

int sipmsg_content_length(struct slice head, bool *present, size_t *value, char *why, size_t whysz)
{
	const char *p = head.p, *end = head.p + head.n, *le = find_crlf(head.p, end);
	struct slice first = { 0 };
	struct shown a, b;
	struct field f;
	int st = 0;
	struct refusal rf = { &st, why, whysz };

	*present = false;
	*value = 0;
	if (!le)
		return 0; /* not even a start line: no header fields */
	p = le + 2;
	while (next_field(&p, end, &f)) {
		struct slice lname, v;
		size_t n;

		if (canon(f.name, &lname) != H_CONTENT_LENGTH)
			continue;
		v = trim_lws(f.value);
		if (!v.n)
			return refuse(&rf, 400, "Content-Length is empty");
		if (v.p[0] == '-')
			return refuse(&rf, 400, "Content-Length %s is negative", show(&a, v));
		if (!all_digits(v))
			return refuse(&rf, 400, "Content-Length %s is not a number", show(&a, v));
		n = (size_t)digits_value(v, SIPMSG_CL_SATURATED - 1);
		if (*present && n != *value)
			return refuse(&rf, 400, "Content-Length headers disagree (%s and %s)",
				      show(&a, first), show(&b, v));
		if (!*present)
			first = v;
		*present = true;
		*value = n;
	}
	return 0;
}

/* ---- the precheck ---- */

struct raw_msg {
	struct slice all;    /* from the start line (leading CR/LF skipped) to the end */
	struct slice start;  /* the start line, CRLF excluded */
	struct slice fields; /* header lines with their CRLFs, the empty line excluded */
	struct slice body;   /* after the empty line */
	struct slice method; /* a request's method */
	bool response;
	bool quoted_nul; /* a quoted-pair NUL is in the header (RFC 4475 3.1.1.2) */
};

struct name_slot {
	const char *p;
	uint32_t n;
	uint32_t hash;
	unsigned count;
};

static uint32_t name_hash(struct slice s)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < s.n; i++)
		h = (h ^ (uint32_t)((unsigned char)s.p[i] | 0x20)) * 16777619u;
	return h;
}

/* Counts one more field named name; returns the count so far. Names are
 * tokens, so OR-ing 0x20 folds case without mixing token characters up. */
static unsigned name_count(struct name_slot *slots, struct slice name)
{
	uint32_t h = name_hash(name);

	for (uint32_t i = h;; i++) {
		struct name_slot *s = &slots[i % NAME_SLOTS];

		if (!s->p) {
			*s = (struct name_slot){ name.p, (uint32_t)name.n, h, 1 };
			return 1;
		}
		if (s->hash == h && s->n == name.n && strncasecmp(s->p, name.p, name.n) == 0)
			return ++s->count;
	}
}

/* One physical line from p: returns its CR (of CRLF), or NULL after
 * refusing a bare CR or LF, an overlong line or a header cut short. */
static const char *scan_line(const char *p, const char *end, unsigned lineno, struct refusal *rf,
			     int *err)
{
	for (const char *q = p; q < end; q++) {
		if ((size_t)(q - p) > SIPMSG_MAX_LINE) {
			*err = refuse(rf, 400, "line %u is longer than %d bytes", lineno,
				      SIPMSG_MAX_LINE);
			return NULL;
		}
		if (*q == '\n') {
			*err = refuse(rf, 400, "line %u has a bare LF", lineno);
			return NULL;
		}
		if (*q == '\r') {
			if (q + 1 < end && q[1] == '\n')
				return q;
			if (q + 1 < end) {
				*err = refuse(rf, 400, "line %u has a bare CR", lineno);
				return NULL;
			}
			break;
		}
	}
	*err = refuse(rf, 400, "the header does not end with an empty line");
	return NULL;
}

struct value_state {
	enum hdr id;
	bool inq, esc;
};

/* The bytes of a header value: quoted strings (where a quoted-pair may
 * escape even a NUL), commas that make more Via values, other NULs. */
static int scan_value(struct slice v, struct value_state *vs, unsigned lineno, unsigned *vias,
		      struct raw_msg *r, struct refusal *rf)
{
	for (size_t i = 0; i < v.n; i++) {
		unsigned char c = (unsigned char)v.p[i];

		if (vs->esc) {
			vs->esc = false;
			r->quoted_nul |= c == '\0';
			continue;
		}
		if (c == '\0')
			return refuse(rf, 400, "line %u has a NUL byte", lineno);
		if (vs->inq) {
			if (c == '\\')
				vs->esc = true;
			else if (c == '"')
				vs->inq = false;
		} else if (c == '"') {
			vs->inq = true;
		} else if (c == ',' && vs->id == H_VIA && ++*vias > SIPMSG_MAX_VIAS) {
			return refuse(rf, 400, "more than %d Via values", SIPMSG_MAX_VIAS);
		}
	}
	vs->esc = false; /* a quoted-pair does not reach over a line end */
	return 0;
}

/* The caps, in one pass that allocates nothing; fills r. The start line is
 * only cut here: check_start reads it. */
static int scan_head(struct slice raw, struct raw_msg *r, struct refusal *rf)
{
	struct name_slot slots[NAME_SLOTS];
	const char *end = raw.p + raw.n, *p, *le;
	struct value_state vs = { 0 };
	unsigned lineno = 1, lines = 0, vias = 0;
	bool open = false;
	int err = 0;

	memset(r, 0, sizeof(*r));
	if (raw.n > SIPMSG_MAX_BYTES)
		return refuse(rf, 513, "message of %zu bytes is over the %d-byte limit", raw.n,
			      SIPMSG_MAX_BYTES);
	p = skip_crlf(raw);
	if (p == end)
		return refuse(rf, 400, "empty message");
	r->all = (struct slice){ p, (size_t)(end - p) };
	r->response = looks_like_response(r->all);
	le = scan_line(p, end, lineno, rf, &err);
	if (!le)
		return err;
	r->start = (struct slice){ p, (size_t)(le - p) };
	p = le + 2;
	r->fields.p = p;
	memset(slots, 0, sizeof(slots));
	for (;;) {
		struct slice line;

		lineno++;
		le = scan_line(p, end, lineno, rf, &err);
		if (!le)
			return err;
		line = (struct slice){ p, (size_t)(le - p) };
		if (!line.n)
			break;
		if (++lines > SIPMSG_MAX_LINES)
			return refuse(rf, 400, "more than %d header lines", SIPMSG_MAX_LINES);
		if (is_wsp((unsigned char)line.p[0])) {
			if (!open)
				return refuse(rf, 400,
					      "line %u starts with whitespace but continues no "
					      "header field",
					      lineno);
		} else {
			const char *colon = memchr(line.p, ':', line.n);
			struct slice name, lname;
			struct shown a;

			if (!colon)
				return refuse(rf, 400, "line %u is not a header field (no colon)",
					      lineno);
			name = (struct slice){ line.p, (size_t)(colon - line.p) };
			while (name.n && is_wsp((unsigned char)name.p[name.n - 1]))
				name.n--;
			if (!all_token(name))
				return refuse(rf, 400, "the header name in line %u is not a token",
					      lineno);
			vs = (struct value_state){ .id = canon(name, &lname) };
			if (vs.id == H_VIA && ++vias > SIPMSG_MAX_VIAS)
				return refuse(rf, 400, "more than %d Via values", SIPMSG_MAX_VIAS);
			if (name_count(slots, lname) > SIPMSG_MAX_SAME_NAME)
				return refuse(rf, 400, "more than %d %s header fields",
					      SIPMSG_MAX_SAME_NAME, show(&a, name));
			open = true;
			line.n -= (size_t)(colon + 1 - line.p);
			line.p = colon + 1;
		}
		err = scan_value(line, &vs, lineno, &vias, r, rf);
		if (err)
			return err;
		p = le + 2;
	}
	r->fields.n = (size_t)(p - r->fields.p);
	r->body = (struct slice){ le + 2, (size_t)(end - le - 2) };
	return 0;
}

/* "SIP/" 1*DIGIT "." 1*DIGIT: a version, if not one we speak. */
static bool looks_like_version(struct slice v)
{
	const char *dot;

	if (v.n < 7 || strncasecmp(v.p, "SIP/", 4) != 0)
		return false;
	v.p += 4;
	v.n -= 4;
	dot = memchr(v.p, '.', v.n);
	return dot && all_digits((struct slice){ v.p, (size_t)(dot - v.p) }) &&
	       all_digits((struct slice){ dot + 1, (size_t)(v.p + v.n - dot - 1) });
}

static int check_version(struct slice v, bool exact, struct refusal *rf)
{
	struct shown a;

	if (exact ? slice_eq(v, "SIP/2.0") : slice_caseeq(v, "SIP/2.0"))
		return 0;
	if (slice_caseeq(v, "SIP/2.0"))
		return refuse(rf, 400, "a status line must start with SIP/2.0 in upper case");
	if (looks_like_version(v))
		return refuse(rf, 505, "SIP version %s is not supported", show(&a, v));
	return refuse(rf, 400, "%s is not a SIP version", show(&a, v));
}

static int check_status_line(struct slice l, struct refusal *rf)
{
	const char *sp = memchr(l.p, ' ', l.n);
	struct slice code, reason;
	struct shown a;
	int err;

	if (!sp)
		return refuse(rf, 400, "the status line has no status code");
	/* libosip2 only takes "SIP/" in upper case as a response */
	err = check_version((struct slice){ l.p, (size_t)(sp - l.p) }, true, rf);
	if (err)
		return err;
	code.p = sp + 1;
	code.n = 0;
	while (code.p + code.n < l.p + l.n && code.p[code.n] != ' ')
		code.n++;
	if (code.n != 3 || !all_digits(code))
		return refuse(rf, 400, "status code %s is not three digits", show(&a, code));
	if (code.p[0] < '1' || code.p[0] > '6')
		return refuse(rf, 400, "status code %s is out of range 100-699", show(&a, code));
	if (code.p + 3 == l.p + l.n)
		return refuse(rf, 400, "the status line has no space after the status code");
	reason = (struct slice){ code.p + 4, (size_t)(l.p + l.n - code.p - 4) };
	for (size_t i = 0; i < reason.n; i++) {
		unsigned char c = (unsigned char)reason.p[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return refuse(rf, 400, "the reason phrase has a control character");
	}
	return 0;
}

static int check_request_line(struct slice l, struct raw_msg *r, struct refusal *rf)
{
	const char *sp1 = memchr(l.p, ' ', l.n), *end = l.p + l.n, *sp2;
	struct slice uri, ver, scheme;
	struct shown a;

	if (!sp1)
		return refuse(rf, 400, "the request line is not METHOD Request-URI SIP/2.0");
	r->method = (struct slice){ l.p, (size_t)(sp1 - l.p) };
	if (!r->method.n)
		return refuse(rf, 400, "the request line starts with a space");
	if (!all_token(r->method))
		return refuse(rf, 400, "method %s is not a token", show(&a, r->method));
	if (sp1 + 1 < end && sp1[1] == ' ')
		return refuse(rf, 400, "the request line has more than one space between elements");
	sp2 = memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1));
	if (!sp2)
		return refuse(rf, 400, "the request line has no SIP version");
	uri = (struct slice){ sp1 + 1, (size_t)(sp2 - sp1 - 1) };
	ver = (struct slice){ sp2 + 1, (size_t)(end - sp2 - 1) };
	if (ver.n && ver.p[0] == ' ')
		return refuse(rf, 400, "the request line has more than one space between elements");
	if (memchr(ver.p, ' ', ver.n)) {
		struct slice t = ver;

		while (t.n && t.p[t.n - 1] == ' ')
			t.n--;
		if (!memchr(t.p, ' ', t.n))
			return refuse(rf, 400, "the request line ends with spaces");
		return refuse(rf, 400, "the Request-URI contains whitespace");
	}
	if (uri.p[0] == '<')
		return refuse(rf, 400, "the Request-URI is enclosed in <>");
	for (size_t i = 0; i < uri.n; i++) {
		unsigned char c = (unsigned char)uri.p[i];

		if (c < 0x21 || c == 0x7f || c == '<' || c == '>' || c == '"')
			return refuse(rf, 400, "the Request-URI has a character URIs cannot hold");
	}
	if (!uri_scheme(uri, &scheme))
		return refuse(rf, 400, "the Request-URI has no scheme");
	if (!slice_caseeq(scheme, "sip") && !slice_caseeq(scheme, "sips") &&
	    !slice_caseeq(scheme, "tel"))
		return refuse(rf, 416, "Request-URI scheme %s is not supported", show(&a, scheme));
	if (!slice_caseeq(scheme, "tel")) {
		/* '?' may sit in the user part (RFC 4475 3.1.1.2): headers come
		 * after the host */
		const char *at = memchr(uri.p, '@', uri.n);
		const char *h = at ? at + 1 : uri.p;

		if (memchr(h, '?', (size_t)(uri.p + uri.n - h)))
			return refuse(rf, 400, "the Request-URI carries header fields (?...)");
	}
	return check_version(ver, false, rf);
}

static int check_start(struct raw_msg *r, struct refusal *rf)
{
	if (memchr(r->start.p, '\0', r->start.n))
		return refuse(rf, 400, "line 1 has a NUL byte");
	return r->response ? check_status_line(r->start, rf) : check_request_line(r->start, r, rf);
}

/* Refusals of a response carry status 0: nothing may answer them. */
static int finish(int err, struct slice raw, int *status)
{
	if (err && looks_like_response(raw))
		*status = 0;
	return err;
}

int sipmsg_precheck(struct slice raw, int *status, char *why, size_t whysz)
{
	struct refusal rf = { status, why, whysz };
	struct raw_msg r;
	int err;

	*status = 0;
	if (whysz)
		why[0] = '\0';
	err = scan_head(raw, &r, &rf);
	if (!err)
		err = check_start(&r, &rf);
	return finish(err, raw, status);
}

/* ---- what libosip2 does not check ---- */

/* A quoted-string from its opening quote: returns the byte after the
 * closing one, or NULL when it never closes. */
static const char *quoted_end(const char *p, const char *end)
{
	for (p++; p < end; p++) {
		if (*p == '\\')
			p++;
		else if (*p == '"')
			return p + 1;
	}
	return NULL;
}

/* *( SEMI generic-param ) after a value; stops at end, or at a comma when
 * the header is a list. RFC 4475 3.1.2.1 has the empty parameters. */
static int check_params(const char **pp, const char *end, const char *hname, bool list,
			bool need_value, struct refusal *rf)
{
	const char *p = *pp;

	for (;;) {
		struct slice name;
		struct shown a;

		p = skip_lws(p, end);
		if (p == end || (list && *p == ','))
			break;
		if (*p != ';')
			return refuse(rf, 400, "%s has text where a ;parameter should be", hname);
		p = skip_lws(p + 1, end);
		name.p = p;
		while (p < end && is_token((unsigned char)*p))
			p++;
		name.n = (size_t)(p - name.p);
		if (!name.n)
			return refuse(rf, 400, "empty parameter in %s", hname);
		p = skip_lws(p, end);
		if (p == end || *p != '=') {
			/* RFC 3261 20.15: an m-parameter has a value (and libosip2
			 * prints a broken Content-Type line without one) */
			if (need_value)
				return refuse(rf, 400, "parameter %s in %s has no value",
					      show(&a, name), hname);
			continue;
		}
		p = skip_lws(p + 1, end);
		if (p < end && *p == '"') {
			p = quoted_end(p, end);
			if (!p)
				return refuse(rf, 400, "unterminated quoted string in %s", hname);
			continue;
		}
		{
			const char *v = p;

			while (p < end &&
			       (is_token((unsigned char)*p) || *p == ':' || *p == '[' || *p == ']'))
				p++;
			if (p == v)
				return refuse(rf, 400, "parameter %s in %s has no value",
					      show(&a, name), hname);
		}
	}
	*pp = p;
	return 0;
}

/* sent-by = host [ COLON port ]: a name, an IPv4 address or a bracketed
 * IPv6 one, and digits. It may end up in a resolver or a sockaddr. */
static bool sent_by_ok(struct slice s)
{
	size_t i = 0;

	if (s.n && s.p[0] == '[') {
		for (i = 1; i < s.n && s.p[i] != ']'; i++)
			if (!is_digit((unsigned char)s.p[i]) && !strchr("abcdefABCDEF:.", s.p[i]))
				return false;
		if (i == s.n || i == 1)
			return false;
		i++;
	} else {
		for (; i < s.n && s.p[i] != ':'; i++) {
			unsigned char c = (unsigned char)s.p[i];

			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) ||
			      c == '-' || c == '.'))
				return false;
		}
		if (i == 0)
			return false;
	}
	if (i == s.n)
		return true;
	return s.p[i] == ':' && all_digits((struct slice){ s.p + i + 1, s.n - i - 1 });
}

/* RFC 3261 7.3.1/20.42: sent-protocol LWS sent-by *( SEMI via-params ),
 * comma-separated. */
static int check_via(struct slice v, struct refusal *rf)
{
	const char *p = v.p, *end = v.p + v.n;
	struct shown a;
	int err;

	for (;;) {
		const char *host;

		p = skip_lws(p, end);
		if (p == end || *p == ',')
			return refuse(rf, 400, "empty Via value");
		for (int i = 0; i < 3; i++) {
			const char *t = p;

			while (p < end && is_token((unsigned char)*p))
				p++;
			if (p == t)
				return refuse(rf, 400,
					      "a Via value does not start with SIP/2.0/transport");
			p = skip_lws(p, end);
			if (i < 2) {
				if (p == end || *p != '/')
					return refuse(rf, 400,
						      "a Via value does not start with "
						      "SIP/2.0/transport");
				p = skip_lws(p + 1, end);
			}
		}
		host = p;
		while (p < end && !is_lws((unsigned char)*p) && *p != ';' && *p != ',')
			p++;
		if (p == host)
			return refuse(rf, 400, "a Via value has no sent-by");
		if (!sent_by_ok((struct slice){ host, (size_t)(p - host) }))
			return refuse(rf, 400, "a Via sent-by %s is not host[:port]",
				      show(&a, (struct slice){ host, (size_t)(p - host) }));
		err = check_params(&p, end, "Via", true, false, rf);
		if (err)
			return err;
		if (p == end)
			return 0;
		p++; /* the comma */
	}
}

/* Characters no URI holds (RFC 3986): libosip2 would print them back as
 * something that reads differently ("sip:a@b>c" comes out as <sip:a@b>c>). */
static bool uri_chars_ok(struct slice uri)
{
	for (size_t i = 0; i < uri.n; i++) {
		unsigned char c = (unsigned char)uri.p[i];

		if (c <= 0x20 || c == 0x7f || c == '<' || c == '>' || c == '"')
			return false;
	}
	return true;
}

/* name-addr / addr-spec values (RFC 3261 20.10, 25.1) for From, To,
 * Contact, Route, Record-Route: RFC 4475 3.1.2.6 (quotes), 3.1.2.13 (an
 * addr-spec carrying '?'), 3.1.2.14 (spaces inside <>), 3.1.2.15 (a display
 * name that needs quotes). */
static int check_name_addrs(struct slice v, enum hdr id, struct refusal *rf)
{
	const char *hname = hdr_label[id], *p = v.p, *end = v.p + v.n;
	bool list = id == H_CONTACT || id == H_ROUTE || id == H_RECORD_ROUTE;
	struct slice uri, scheme;
	int err;

	for (;;) {
		p = skip_lws(p, end);
		if (p == end || (list && *p == ','))
			return refuse(rf, 400, "empty %s value", hname);
		if (id == H_CONTACT && *p == '*') {
			if (skip_lws(p + 1, end) != end)
				return refuse(rf, 400, "Contact * must stand alone");
			return 0;
		}
		if (*p == '"') {
			p = quoted_end(p, end);
			if (!p)
				return refuse(rf, 400, "unterminated quoted string in %s", hname);
			p = skip_lws(p, end);
			if (p == end || *p != '<')
				return refuse(rf, 400,
					      "the display name in %s is not followed by <", hname);
		} else {
			const char *q = p;

			while (q < end && *q != '<' && *q != ';' && !(list && *q == ','))
				q++;
			if (q < end && *q == '<') {
				/* tokens and LWS (UTF-8 must be quoted: libosip2
				 * refuses it bare too) */
				for (; p < q; p++) {
					unsigned char c = (unsigned char)*p;

					if (!is_token(c) && !is_lws(c))
						return refuse(rf, 400,
							      "the display name in %s needs quotes",
							      hname);
				}
			} else {
				uri.p = p;
				while (p < end && *p != ';' && !(list && *p == ',') &&
				       !is_lws((unsigned char)*p))
					p++;
				uri.n = (size_t)(p - uri.p);
				if (memchr(uri.p, '?', uri.n) || memchr(uri.p, ',', uri.n))
					return refuse(rf, 400,
						      "the %s URI holds ? or , and must be "
						      "enclosed in <>",
						      hname);
				if (!uri_chars_ok(uri))
					return refuse(rf, 400,
						      "the %s URI has a character URIs cannot hold",
						      hname);
				if (!uri_scheme(uri, &scheme))
					return refuse(rf, 400, "the %s URI has no scheme", hname);
				goto params;
			}
		}
		/* at '<' */
		p++;
		uri.p = p;
		while (p < end && *p != '>')
			p++;
		if (p == end)
			return refuse(rf, 400, "%s has < without >", hname);
		uri.n = (size_t)(p - uri.p);
		if (uri.n &&
		    (is_lws((unsigned char)uri.p[0]) || is_lws((unsigned char)uri.p[uri.n - 1])))
			return refuse(rf, 400, "spaces inside <> around the %s URI", hname);
		for (size_t i = 0; i < uri.n; i++)
			if (is_lws((unsigned char)uri.p[i]))
				return refuse(rf, 400, "the %s URI contains whitespace", hname);
		if (!uri_chars_ok(uri))
			return refuse(rf, 400, "the %s URI has a character URIs cannot hold",
				      hname);
		if (!uri_scheme(uri, &scheme))
			return refuse(rf, 400, "the %s URI has no scheme", hname);
		p++;
	params:
		err = check_params(&p, end, hname, list, false, rf);
		if (err)
			return err;
		if (p == end)
			return 0;
		p++; /* the comma */
	}
}

/* RFC 3261 20.16 and 8.1.1.5; RFC 4475 3.1.2.4/3.1.2.5/3.1.2.17/3.1.2.18. */
static int check_cseq(struct slice v, const struct raw_msg *r, struct refusal *rf)
{
	const char *p, *end;
	struct slice num, meth;
	struct shown a, b;

	v = trim_lws(v);
	p = v.p;
	end = v.p + v.n;
	num.p = p;
	while (p < end && is_digit((unsigned char)*p))
		p++;
	num.n = (size_t)(p - num.p);
	if (!num.n)
		return refuse(rf, 400, "CSeq has no sequence number");
	if (digits_value(num, UINT32_MAX) > UINT32_MAX)
		return refuse(rf, 400, "CSeq number %s is out of range", show(&a, num));
	if (p == end || !is_lws((unsigned char)*p))
		return refuse(rf, 400, "CSeq has no method");
	p = skip_lws(p, end);
	meth = (struct slice){ p, (size_t)(end - p) };
	if (!all_token(meth))
		return refuse(rf, 400, "CSeq method %s is not a token", show(&a, meth));
	if (!r->response && (meth.n != r->method.n || memcmp(meth.p, r->method.p, meth.n) != 0))
		return refuse(rf, 400, "CSeq method %s does not match request method %s",
			      show(&a, meth), show(&b, r->method));
	return 0;
}

/* RFC 3261 20.15: m-type "/" m-subtype *( SEMI m-parameter ) */
static int check_content_type(struct slice v, struct refusal *rf)
{
	const char *p = v.p, *end = v.p + v.n, *t;

	for (int i = 0; i < 2; i++) {
		p = skip_lws(p, end);
		t = p;
		while (p < end && is_token((unsigned char)*p))
			p++;
		if (p == t)
			return refuse(rf, 400, "Content-Type is not type/subtype");
		p = skip_lws(p, end);
		if (i == 0) {
			if (p == end || *p != '/')
				return refuse(rf, 400, "Content-Type is not type/subtype");
			p++;
		}
	}
	return check_params(&p, end, "Content-Type", false, true, rf);
}

static int check_max_forwards(struct slice v, struct refusal *rf)
{
	struct shown a;

	v = trim_lws(v);
	if (!all_digits(v))
		return refuse(rf, 400, "Max-Forwards %s is not a number", show(&a, v));
	if (digits_value(v, 255) > 255)
		return refuse(rf, 400, "Max-Forwards %s is out of range 0-255", show(&a, v));
	return 0;
}

static int check_fields(const struct raw_msg *r, struct refusal *rf)
{
	static const enum hdr single[] = { H_FROM, H_TO,	   H_CALL_ID,
					   H_CSEQ, H_MAX_FORWARDS, H_CONTENT_TYPE };
	static const enum hdr required[] = { H_VIA, H_FROM, H_TO, H_CALL_ID, H_CSEQ };
	const char *p = r->fields.p, *end = r->fields.p + r->fields.n;
	unsigned count[H__COUNT] = { 0 };
	char clwhy[SIPMSG_WHY_MAX];
	struct field f;
	bool cl_present;
	size_t cl;
	int err = 0;

	while (!err && next_field(&p, end, &f)) {
		struct slice lname;
		enum hdr id = canon(f.name, &lname);

		count[id]++;
		for (size_t i = 0; i < sizeof(single) / sizeof(single[0]); i++)
			if (id == single[i] && count[id] > 1)
				return refuse(rf, 400, "more than one %s header", hdr_label[id]);
		switch (id) {
		case H_VIA:
			err = check_via(f.value, rf);
			break;
		case H_FROM:
		case H_TO:
		case H_CONTACT:
		case H_ROUTE:
		case H_RECORD_ROUTE:
			err = check_name_addrs(f.value, id, rf);
			break;
		case H_CSEQ:
			err = check_cseq(f.value, r, rf);
			break;
		case H_MAX_FORWARDS:
			err = check_max_forwards(f.value, rf);
			break;
		case H_CONTENT_TYPE:
			err = check_content_type(f.value, rf);
			break;
		case H_CALL_ID:
			if (!trim_lws(f.value).n)
				err = refuse(rf, 400, "Call-ID is empty");
			break;
		default:
			break;
		}
	}
	if (err)
		return err;
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		if (!count[required[i]])
			return refuse(rf, 400, "missing %s", hdr_label[required[i]]);
	err = sipmsg_content_length(
		(struct slice){ r->all.p, (size_t)(r->fields.p + r->fields.n - r->all.p) },
		&cl_present, &cl, clwhy, sizeof(clwhy));
	if (err)
		return refuse(rf, 400, "%s", clwhy);
	if (cl_present && cl != r->body.n) {
		if (cl >= SIPMSG_CL_SATURATED)
			return refuse(rf, 400,
				      "Content-Length over %u does not match the %zu bytes of body",
				      SIPMSG_CL_SATURATED - 1, r->body.n);
		return refuse(rf, 400, "Content-Length %zu does not match the %zu bytes of body",
			      cl, r->body.n);
	}
	/* libosip2 silently drops a body that has no type */
	if (r->body.n && !count[H_CONTENT_TYPE])
		return refuse(rf, 400, "a body of %zu bytes has no Content-Type", r->body.n);
	return 0;
}

static osip_uri_param_t *param_get(const osip_list_t *l, const char *name)
{
	for (int i = 0; i < osip_list_size(l); i++) {
		osip_uri_param_t *p = osip_list_get(l, i);

		if (p && p->gname && strcasecmp(p->gname, name) == 0)
			return p;
	}
	return NULL;
}

/* Sets (replacing) a parameter, owning every string handed to libosip2. */
static int param_set(osip_list_t *l, const char *name, const char *value)
{
	osip_uri_param_t *p = param_get(l, name);
	char *v = value ? osip_strdup(value) : NULL;

	if (value && !v)
		return ENOMEM;
	if (p) {
		osip_free(p->gvalue);
		p->gvalue = v;
		return 0;
	}
	if (osip_uri_param_init(&p) != OSIP_SUCCESS) {
		osip_free(v);
		return ENOMEM;
	}
	p->gname = osip_strdup(name);
	p->gvalue = v;
	if (!p->gname || osip_list_add(l, p, -1) < 0) {
		osip_uri_param_free(p);
		return ENOMEM;
	}
	return 0;
}

static bool parse_port(const char *s, uint16_t *port)
{
	struct slice v = slice_from(s);
	uint64_t n;

	if (!all_digits(v))
		return false;
	n = digits_value(v, 65535);
	if (n < 1 || n > 65535)
		return false;
	*port = (uint16_t)n;
	return true;
}

/* What we read from libosip2's structures must be there and sane, so
 * that the accessors cannot fail on a parsed message. */
static int check_parsed(const osip_message_t *m, struct refusal *rf)
{
	const osip_via_t *via = osip_list_get(&m->vias, 0);
	const osip_uri_param_t *br, *rp;
	uint16_t port;
	struct shown a;

	if (!via || !m->from || !m->to || !m->call_id || !m->cseq || !m->cseq->method ||
	    !m->cseq->number)
		return refuse(rf, 400, "libosip2 could not read a mandatory header");
	if (osip_list_size(&m->vias) > SIPMSG_MAX_VIAS)
		return refuse(rf, 400, "more than %d Via values", SIPMSG_MAX_VIAS);
	if (!via->host || !via->host[0] || !via->protocol)
		return refuse(rf, 400, "the top Via has no sent-by host");
	if (via->port && !parse_port(via->port, &port))
		return refuse(rf, 400, "the top Via port %s is not 1-65535",
			      show(&a, slice_from(via->port)));
	rp = param_get(&via->via_params, "rport");
	if (rp && rp->gvalue && !parse_port(rp->gvalue, &port))
		return refuse(rf, 400, "the top Via rport %s is not 1-65535",
			      show(&a, slice_from(rp->gvalue)));
	br = param_get(&via->via_params, "branch");
	if (br && (!br->gvalue || !br->gvalue[0]))
		return refuse(rf, 400, "the top Via branch is empty");
	if (br && strcmp(br->gvalue, "z9hG4bK") == 0)
		return refuse(rf, 400, "the top Via branch is the magic cookie z9hG4bK alone");
	if (MSG_IS_REQUEST(m) && (!m->sip_method || !m->req_uri))
		return refuse(rf, 400, "libosip2 could not read the request line");
	return 0;
}

/* libosip2 does not always print what it read in a form that reads back
 * ("To: sip:a" parses, the "To: <sip:a>" printed from it does not; a
 * "<sip:b;>" Contact comes out as "<sip:b>;>"; found by fuzz_sipmsg). The
 * headers that responses copy and dialogs keep are printed and read again,
 * by libosip2 and by our own checks: what we send is never what we would
 * refuse. */
static int check_value(struct slice v, enum hdr id, struct refusal *rf)
{
	switch (id) {
	case H_VIA:
		return check_via(v, rf);
	case H_FROM:
	case H_TO:
	case H_CONTACT:
	case H_ROUTE:
	case H_RECORD_ROUTE:
		return check_name_addrs(v, id, rf);
	default:
		return 0;
	}
}

#define REPRINT(type, obj, id)                                                                     \
	do {                                                                                       \
		char *s_ = NULL;                                                                   \
		type##_t *c_ = NULL;                                                               \
		int st_ = 0;                                                                       \
		struct refusal q_ = { &st_, NULL, 0 };                                             \
		bool ok_ = type##_to_str(obj, &s_) == OSIP_SUCCESS &&                              \
			   type##_init(&c_) == OSIP_SUCCESS &&                                     \
			   type##_parse(c_, s_) == OSIP_SUCCESS &&                                 \
			   check_value(slice_from(s_), id, &q_) == 0;                              \
		if (c_)                                                                            \
			type##_free(c_);                                                           \
		osip_free(s_);                                                                     \
		if (!ok_)                                                                          \
			return refuse(rf, 400, "libosip2 cannot print the %s back as it was read", \
				      hdr_label[id]);                                              \
	} while (0)

static int check_reprint(const osip_message_t *m, struct refusal *rf)
{
	for (int i = 0; i < osip_list_size(&m->vias); i++)
		REPRINT(osip_via, (osip_via_t *)osip_list_get(&m->vias, i), H_VIA);
	REPRINT(osip_from, m->from, H_FROM);
	REPRINT(osip_to, m->to, H_TO);
	REPRINT(osip_call_id, m->call_id, H_CALL_ID);
	REPRINT(osip_cseq, m->cseq, H_CSEQ);
	for (int i = 0; i < osip_list_size(&m->contacts); i++)
		REPRINT(osip_contact, (osip_contact_t *)osip_list_get(&m->contacts, i), H_CONTACT);
	for (int i = 0; i < osip_list_size(&m->routes); i++)
		REPRINT(osip_route, (osip_route_t *)osip_list_get(&m->routes, i), H_ROUTE);
	for (int i = 0; i < osip_list_size(&m->record_routes); i++)
		REPRINT(osip_record_route,
			(osip_record_route_t *)osip_list_get(&m->record_routes, i), H_RECORD_ROUTE);
	return 0;
}

/* libosip2 reads the header only, from a copy of it:
 * - its body parsing is where its heap-overflow CVEs were, and it leaks a
 *   Content-Type for every MIME part that has two (found by fuzz_sipmsg), so
 *   it never sees a body: Content-Length is zeroed in the copy and the body
 *   is attached afterwards as opaque bytes (attach_body);
 * - it reads the copy as a C string, so a quoted-pair NUL (legal in a quoted
 *   string, RFC 4475 3.1.1.2) would end the header: it reaches libosip2 as
 *   a quoted space; no name we route on can hold it. */
static int osip_parse_head(osip_message_t **out, struct slice head, bool quoted_nul)
{
	const char *p = head.p, *end = head.p + head.n, *le;
	osip_message_t *m = NULL;
	struct field f;
	char *copy;
	int rc;

	copy = malloc(head.n ? head.n : 1);
	if (!copy)
		return ENOMEM;
	memcpy(copy, head.p, head.n);
	le = find_crlf(p, end);
	p = le ? le + 2 : end;
	while (next_field(&p, end, &f)) {
		struct slice lname;
		char *v = copy + (f.value.p - head.p);
		size_t i = 0;

		if (canon(f.name, &lname) != H_CONTENT_LENGTH)
			continue;
		while (i < f.value.n && !is_digit((unsigned char)v[i]))
			i++;
		if (i < f.value.n)
			v[i++] = '0';
		for (; i < f.value.n && is_digit((unsigned char)v[i]); i++)
			v[i] = ' ';
	}
	if (quoted_nul)
		for (size_t i = 0; i < head.n; i++)
			if (!copy[i])
				copy[i] = ' ';
	if (osip_message_init(&m) != OSIP_SUCCESS) {
		free(copy);
		return ENOMEM;
	}
	rc = osip_message_parse(m, copy, head.n);
	free(copy);
	if (rc != OSIP_SUCCESS) {
		osip_message_free(m);
		return rc == OSIP_NOMEM ? ENOMEM : EBADMSG;
	}
	*out = m;
	return 0;
}

static int set_content_length(osip_message_t *m, size_t n)
{
	osip_content_length_t *cl = NULL;
	char num[24];

	snprintf(num, sizeof(num), "%zu", n);
	if (osip_content_length_init(&cl) != OSIP_SUCCESS)
		return ENOMEM;
	if (osip_content_length_parse(cl, num) != OSIP_SUCCESS) {
		osip_content_length_free(cl);
		return ENOMEM;
	}
	if (m->content_length)
		osip_content_length_free(m->content_length);
	m->content_length = cl;
	return 0;
}

/* The body as received, one opaque osip_body_t (a multipart one too:
 * sipmsg_serialize writes it back as it came). */
static int attach_body(osip_message_t *m, struct slice body)
{
	if (body.n && osip_message_set_body(m, body.p, body.n) != OSIP_SUCCESS)
		return ENOMEM;
	return set_content_length(m, body.n);
}

static bool is_multipart(const osip_message_t *m)
{
	return m->content_type && m->content_type->type &&
	       strcasecmp(m->content_type->type, "multipart") == 0;
}

static void free_bodies(osip_message_t *m, int n)
{
	for (int i = 0; i < n; i++) {
		osip_body_t *b = osip_list_get(&m->bodies, 0);

		osip_list_remove(&m->bodies, 0);
		osip_body_free(b);
	}
}

int sipmsg_parse(osip_message_t **out, struct slice raw, int *status, char *why, size_t whysz)
{
	struct refusal rf = { status, why, whysz };
	osip_message_t *m = NULL;
	struct raw_msg r;
	int err;

	*status = 0;
	if (whysz)
		why[0] = '\0';
	err = ensure_init();
	if (err)
		return err;
	err = scan_head(raw, &r, &rf);
	if (!err)
		err = check_start(&r, &rf);
	if (!err)
		err = check_fields(&r, &rf);
	if (!err) {
		err = osip_parse_head(&m, (struct slice){ r.all.p, (size_t)(r.body.p - r.all.p) },
				      r.quoted_nul);
		if (err == EBADMSG)
			err = refuse(&rf, 400, "libosip2 could not parse the message");
		else if (err)
			*status = 500;
	}
	if (!err)
		err = check_parsed(m, &rf);
	if (!err)
		err = check_reprint(m, &rf);
	if (!err) {
		err = attach_body(m, r.body);
		if (err)
			*status = 500;
	}
	if (err) {
		if (m)
			osip_message_free(m);
		return finish(err, raw, status);
	}
	*out = m;
	return 0;
}

/* ---- building responses ---- */

static const char *standard_reason(int status)
{
	const char *r = osip_message_get_reason(status);

	if (!r)
		r = osip_message_get_reason(status / 100 * 100);
	return r ? r : "Unknown";
}

static bool text_ok(const char *s)
{
	for (; *s; s++)
		if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
			return false;
	return true;
}

/* 399 srtpbridge "TEXT": TEXT is ours but quotes peer bytes, so it is cut
 * to SIPMSG_WARNING_MAX characters, printable ASCII, with '"' and '\'
 * written as quoted-pairs. */
static void warning_value(char *out, size_t size, const char *text)
{
	size_t o = (size_t)snprintf(out, size, "399 srtpbridge \"");

	for (size_t i = 0; text[i] && i < SIPMSG_WARNING_MAX && o + 4 < size; i++) {
		unsigned char c = (unsigned char)text[i];

		if (c == '"' || c == '\\')
			out[o++] = '\\';
		out[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	out[o++] = '"';
	out[o] = '\0';
}

static int add_clone_via(osip_message_t *r, const osip_via_t *v)
{
	osip_via_t *c = NULL;

	if (osip_via_clone(v, &c) != OSIP_SUCCESS)
		return ENOMEM;
	if (osip_list_add(&r->vias, c, -1) < 0) {
		osip_via_free(c);
		return ENOMEM;
	}
	return 0;
}

int sipmsg_cancel(osip_message_t **out, const osip_message_t *inv)
{
	osip_message_t *m = NULL;
	osip_via_t *via = NULL;
	char cseq[32];
	int err = ENOMEM;

	*out = NULL;
	if (!inv || !MSG_IS_REQUEST(inv) || !inv->sip_method ||
	    strcmp(inv->sip_method, "INVITE") != 0 || !inv->cseq || !inv->cseq->number ||
	    !osip_list_get(&inv->vias, 0) || !inv->req_uri)
		return EINVAL;
	if (osip_message_init(&m))
		return ENOMEM;
	osip_message_set_method(m, osip_strdup("CANCEL"));
	osip_message_set_version(m, osip_strdup("SIP/2.0"));
	if (!m->sip_method || !m->sip_version || osip_uri_clone(inv->req_uri, &m->req_uri) ||
	    osip_via_clone(osip_list_get(&inv->vias, 0), &via) ||
	    osip_list_add(&m->vias, via, -1) < 0)
		goto out;
	via = NULL;
	if (osip_from_clone(inv->from, &m->from) || osip_to_clone(inv->to, &m->to) ||
	    osip_call_id_clone(inv->call_id, &m->call_id))
		goto out;
	for (int i = 0; i < osip_list_size(&inv->routes); i++) {
		osip_route_t *r = NULL;

		if (osip_route_clone(osip_list_get(&inv->routes, i), &r))
			goto out;
		if (osip_list_add(&m->routes, r, -1) < 0) {
			osip_route_free(r);
			goto out;
		}
	}
	snprintf(cseq, sizeof(cseq), "%s CANCEL", inv->cseq->number);
	if (osip_message_set_cseq(m, cseq) || osip_message_set_max_forwards(m, "70"))
		goto out;
	*out = m;
	m = NULL;
	err = 0;
out:
	osip_via_free(via);
	osip_message_free(m);
	return err;
}

int sipmsg_response(osip_message_t **out, const osip_message_t *req, int status, const char *reason,
		    const char *to_tag, const char *warning)
{
	char wbuf[SIPMSG_WARNING_MAX * 2 + 32];
	osip_message_t *r = NULL;
	osip_header_t *ts = NULL;
	char *s;
	int err = ensure_init();

	if (err)
		return err;
	if (!req || !MSG_IS_REQUEST(req) || status < 100 || status > 699 || !req->from ||
	    !req->to || !req->call_id || !req->cseq || osip_list_size(&req->vias) < 1)
		return EINVAL;
	if ((reason && !text_ok(reason)) || (to_tag && !all_token(slice_from(to_tag))))
		return EINVAL;
	if (osip_message_init(&r) != OSIP_SUCCESS)
		return ENOMEM;
	err = ENOMEM;
	s = osip_strdup("SIP/2.0");
	if (!s)
		goto out;
	osip_message_set_version(r, s);
	osip_message_set_status_code(r, status);
	s = osip_strdup(reason ? reason : standard_reason(status));
	if (!s)
		goto out;
	osip_message_set_reason_phrase(r, s);
	for (int i = 0; i < osip_list_size(&req->vias); i++)
		if (add_clone_via(r, osip_list_get(&req->vias, i)))
			goto out;
	if (osip_from_clone(req->from, &r->from) != OSIP_SUCCESS ||
	    osip_to_clone(req->to, &r->to) != OSIP_SUCCESS ||
	    osip_call_id_clone(req->call_id, &r->call_id) != OSIP_SUCCESS ||
	    osip_cseq_clone(req->cseq, &r->cseq) != OSIP_SUCCESS)
		goto out;
	/* RFC 3261 8.2.6.2: a UAS tags its To, but a 100 comes from no dialog */
	if (to_tag && status != 100 && !param_get(&r->to->gen_params, "tag") &&
	    param_set(&r->to->gen_params, "tag", to_tag))
		goto out;
	/* 8.2.6.1: a 100 echoes the request's Timestamp */
	if (status == 100 && osip_message_header_get_byname(req, "timestamp", 0, &ts) >= 0 && ts &&
	    ts->hvalue && osip_message_set_header(r, "Timestamp", ts->hvalue) != OSIP_SUCCESS)
		goto out;
	if (warning) {
		warning_value(wbuf, sizeof(wbuf), warning);
		if (osip_message_set_header(r, "Warning", wbuf) != OSIP_SUCCESS)
			goto out;
	}
	if (osip_message_set_content_length(r, "0") != OSIP_SUCCESS)
		goto out;
	err = 0;
out:
	if (err)
		osip_message_free(r);
	else
		*out = r;
	return err;
}

int sipmsg_refusal(osip_message_t **out, struct slice raw, int status, const char *why,
		   const char *to_tag)
{
	static const char start[] = "OPTIONS sip:refused.invalid SIP/2.0\r\n";
	static const char tail[] = "Content-Length: 0\r\n\r\n";
	int st = 0, err = ensure_init();
	struct refusal rf = { &st, NULL, 0 };
	bool taken[H__COUNT] = { false };
	osip_message_t *req = NULL;
	const char *p, *end;
	struct raw_msg r;
	struct field f;
	char *buf;
	size_t n;

	if (err)
		return err;
	if (status < 400 || status > 699 || looks_like_response(raw))
		return EINVAL;
	if (scan_head(raw, &r, &rf))
		return EBADMSG;
	/* only the fields a response copies, the first of the single ones: the
	 * start line, a body or a wrong Content-Length may be what was refused */
	buf = malloc(sizeof(start) + r.fields.n + sizeof(tail));
	if (!buf)
		return ENOMEM;
	memcpy(buf, start, sizeof(start) - 1);
	n = sizeof(start) - 1;
	p = r.fields.p;
	end = r.fields.p + r.fields.n;
	while (next_field(&p, end, &f)) {
		struct slice lname;
		enum hdr id = canon(f.name, &lname);

		if (id != H_VIA && id != H_FROM && id != H_TO && id != H_CALL_ID && id != H_CSEQ)
			continue;
		if (id != H_VIA && taken[id])
			continue;
		taken[id] = true;
		memcpy(buf + n, f.line.p, f.line.n);
		n += f.line.n;
	}
	memcpy(buf + n, tail, sizeof(tail) - 1);
	n += sizeof(tail) - 1;
	err = osip_parse_head(&req, (struct slice){ buf, n }, r.quoted_nul);
	free(buf);
	if (err)
		return err == ENOMEM ? ENOMEM : ENOENT;
	/* only what a response copies must be there: a bare z9hG4bK branch
	 * (RFC 4475 3.2.1) is refused by sipmsg_parse yet may be answered */
	if (osip_list_size(&req->vias) < 1 || !req->from || !req->to || !req->call_id || !req->cseq)
		err = ENOENT;
	else
		err = sipmsg_response(out, req, status, NULL, to_tag, why);
	osip_message_free(req);
	return err;
}

/* ---- Via ---- */

static enum sipmsg_transport transport_of(const char *name)
{
	static const struct {
		const char *name;
		enum sipmsg_transport tp;
	} tps[] = {
		{ "UDP", SIPMSG_TP_UDP },   { "TCP", SIPMSG_TP_TCP }, { "TLS", SIPMSG_TP_TLS },
		{ "SCTP", SIPMSG_TP_SCTP }, { "WS", SIPMSG_TP_WS },   { "WSS", SIPMSG_TP_WSS },
	};

	for (size_t i = 0; name && i < sizeof(tps) / sizeof(tps[0]); i++)
		if (strcasecmp(name, tps[i].name) == 0)
			return tps[i].tp;
	return SIPMSG_TP_UNKNOWN;
}

int sipmsg_top_via(const osip_message_t *m, struct sipmsg_via *out)
{
	const osip_via_t *via = m ? osip_list_get(&m->vias, 0) : NULL;
	const osip_uri_param_t *p;

	if (!via || !via->host)
		return ENOENT;
	memset(out, 0, sizeof(*out));
	out->host = via->host;
	if (via->port && !parse_port(via->port, &out->port))
		return EBADMSG;
	out->transport_name = via->protocol;
	out->transport = transport_of(via->protocol);
	p = param_get(&via->via_params, "branch");
	out->branch = p ? p->gvalue : NULL;
	p = param_get(&via->via_params, "received");
	out->received = p ? p->gvalue : NULL;
	p = param_get(&via->via_params, "rport");
	out->rport = p != NULL;
	if (p && p->gvalue && p->gvalue[0] && !parse_port(p->gvalue, &out->rport_value))
		return EBADMSG;
	return 0;
}

static bool same_address(const char *host, const struct sockaddr *src)
{
	unsigned char a[sizeof(struct in6_addr)];
	char h[INET6_ADDRSTRLEN];
	size_t n = strlen(host);

	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		if (n - 2 >= sizeof(h))
			return false;
		memcpy(h, host + 1, n - 2);
		h[n - 2] = '\0';
		host = h;
	}
	if (src->sa_family == AF_INET)
		return inet_pton(AF_INET, host, a) == 1 &&
		       memcmp(a, &((const struct sockaddr_in *)src)->sin_addr, 4) == 0;
	return inet_pton(AF_INET6, host, a) == 1 &&
	       memcmp(a, &((const struct sockaddr_in6 *)src)->sin6_addr, 16) == 0;
}

int sipmsg_fix_via(osip_message_t *req, const struct sockaddr *src, socklen_t len)
{
	char addr[INET6_ADDRSTRLEN], port[8];
	osip_via_t *via;
	osip_uri_param_t *rport;
	int err = 0;

	if (!req || !MSG_IS_REQUEST(req) || !src)
		return EINVAL;
	via = osip_list_get(&req->vias, 0);
	if (!via || !via->host)
		return ENOENT;
	if (src->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)src;

		inet_ntop(AF_INET, &s4->sin_addr, addr, sizeof(addr));
		snprintf(port, sizeof(port), "%u", ntohs(s4->sin_port));
	} else if (src->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)src;

		inet_ntop(AF_INET6, &s6->sin6_addr, addr, sizeof(addr));
		snprintf(port, sizeof(port), "%u", ntohs(s6->sin6_port));
	} else {
		return EAFNOSUPPORT;
	}
	rport = param_get(&via->via_params, "rport");
	/* RFC 3581 section 4: with rport, received goes in even when equal; a
	 * received the peer wrote itself is overwritten, never trusted */
	if (rport || param_get(&via->via_params, "received") || !same_address(via->host, src))
		err = param_set(&via->via_params, "received", addr);
	/* and the source port replaces whatever rport held: a value the peer
	 * wrote would let it aim our responses elsewhere */
	if (!err && rport)
		err = param_set(&via->via_params, "rport", port);
	/* the fields were edited directly: the cached text is stale */
	osip_message_force_update(req);
	return err;
}

int sipmsg_response_dest(const osip_message_t *resp, char *host, size_t hsize, uint16_t *port,
			 enum sipmsg_transport *transport)
{
	struct sipmsg_via v;
	const char *h;
	int err = sipmsg_top_via(resp, &v);

	if (err)
		return err;
	h = v.received ? v.received : v.host;
	if (strlen(h) >= hsize)
		return ENOSPC;
	strcpy(host, h);
	if (v.received && v.rport_value)
		*port = v.rport_value;
	else if (v.port)
		*port = v.port;
	else
		*port = v.transport == SIPMSG_TP_TLS || v.transport == SIPMSG_TP_WSS ? 5061 : 5060;
	*transport = v.transport;
	return 0;
}

/* ---- serialising and editing ---- */

/* A multipart body is printed by us (see attach_body): libosip2
 * prints the header with no body, which it ends with "Content-Length: 0"
 * (always last), and the bodies follow as they are. */
static int serialize_raw_body(osip_message_t *m, char **buf, size_t *len)
{
	static const char tail[] = "Content-Length: 0\r\n\r\n";
	osip_list_t bodies = m->bodies;
	size_t n = 0, body = 0, head;
	char *s = NULL, *out, num[24];
	int rc;

	osip_list_init(&m->bodies);
	osip_message_force_update(m);
	rc = osip_message_to_str(m, &s, &n);
	m->bodies = bodies;
	osip_message_force_update(m); /* its cache holds the body-less text */
	if (rc != OSIP_SUCCESS) {
		osip_free(s);
		return rc == OSIP_NOMEM ? ENOMEM : EBADMSG;
	}
	if (n < sizeof(tail) - 1 || memcmp(s + n - (sizeof(tail) - 1), tail, sizeof(tail) - 1)) {
		osip_free(s);
		return EBADMSG;
	}
	for (int i = 0; i < osip_list_size(&m->bodies); i++)
		body += ((osip_body_t *)osip_list_get(&m->bodies, i))->length;
	head = n - 5; /* up to and with "Content-Length: " */
	snprintf(num, sizeof(num), "%zu\r\n\r\n", body);
	out = malloc(head + strlen(num) + body + 1);
	if (!out) {
		osip_free(s);
		return ENOMEM;
	}
	memcpy(out, s, head);
	osip_free(s);
	memcpy(out + head, num, strlen(num));
	n = head + strlen(num);
	for (int i = 0; i < osip_list_size(&m->bodies); i++) {
		const osip_body_t *b = osip_list_get(&m->bodies, i);

		memcpy(out + n, b->body, b->length);
		n += b->length;
	}
	out[n] = '\0';
	*buf = out;
	*len = n;
	return 0;
}

int sipmsg_serialize(osip_message_t *m, char **buf, size_t *len)
{
	char *s = NULL, *copy;
	size_t n = 0;
	int rc;

	if (is_multipart(m) && osip_list_size(&m->bodies))
		return serialize_raw_body(m, buf, len);
	rc = osip_message_to_str(m, &s, &n);
	if (rc != OSIP_SUCCESS) {
		osip_free(s);
		return rc == OSIP_NOMEM ? ENOMEM : EBADMSG;
	}
	copy = malloc(n + 1);
	if (copy) {
		memcpy(copy, s, n);
		copy[n] = '\0';
	}
	osip_free(s);
	if (!copy)
		return ENOMEM;
	*buf = copy;
	*len = n;
	return 0;
}

bool sipmsg_body(const osip_message_t *m, const char **p, size_t *n)
{
	const osip_body_t *body = osip_list_get(&m->bodies, 0);

	if (!body || !body->body || body->length == 0)
		return false;
	*p = body->body;
	*n = body->length;
	return true;
}

int sipmsg_set_body(osip_message_t *m, const char *content_type, const char *body, size_t len)
{
	osip_content_type_t *ct = NULL;
	osip_content_length_t *cl = NULL;
	char num[24];
	int old, err = ENOMEM;

	if (!m || (len && (!content_type || !body)))
		return EINVAL;
	if (len) {
		if (!text_ok(content_type))
			return EINVAL;
		if (osip_content_type_init(&ct) != OSIP_SUCCESS)
			return ENOMEM;
		if (osip_content_type_parse(ct, content_type) != OSIP_SUCCESS || !ct->type ||
		    !ct->subtype) {
			err = EINVAL;
			goto out;
		}
	}
	snprintf(num, sizeof(num), "%zu", len);
	if (osip_content_length_init(&cl) != OSIP_SUCCESS ||
	    osip_content_length_parse(cl, num) != OSIP_SUCCESS)
		goto out;
	/* the new body goes in first, so a failure leaves m as it was */
	old = osip_list_size(&m->bodies);
	if (len && osip_message_set_body(m, body, len) != OSIP_SUCCESS)
		goto out;
	free_bodies(m, old);
	/* osip_message_set_content_type refuses to replace one: swap it */
	if (m->content_type)
		osip_content_type_free(m->content_type);
	m->content_type = ct;
	ct = NULL;
	if (m->content_length)
		osip_content_length_free(m->content_length);
	m->content_length = cl;
	cl = NULL;
	osip_message_force_update(m);
	err = 0;
out:
	if (ct)
		osip_content_type_free(ct);
	if (cl)
		osip_content_length_free(cl);
	return err;
}

/* Headers libosip2 parses into fields or lists of its own, which the
 * generic list never sees. OSIP_FIELD ones are what transactions and dialogs
 * read from those fields (or what frames the message): a generic copy would
 * be printed beside them and never read, so it cannot be added. The others
 * are lists (Allow, Accept...): one more line of them is harmless. */
enum osip_kind {
	OSIP_GENERIC = 0,
	OSIP_LIST,
	OSIP_FIELD,
};

static enum osip_kind osip_kind_of(const char *name)
{
	static const struct {
		const char *name;
		enum osip_kind kind;
	} owned[] = {
		{ "via", OSIP_FIELD },
		{ "v", OSIP_FIELD },
		{ "from", OSIP_FIELD },
		{ "f", OSIP_FIELD },
		{ "to", OSIP_FIELD },
		{ "t", OSIP_FIELD },
		{ "call-id", OSIP_FIELD },
		{ "i", OSIP_FIELD },
		{ "cseq", OSIP_FIELD },
		{ "contact", OSIP_FIELD },
		{ "m", OSIP_FIELD },
		{ "route", OSIP_FIELD },
		{ "record-route", OSIP_FIELD },
		{ "content-length", OSIP_FIELD },
		{ "l", OSIP_FIELD },
		{ "content-type", OSIP_FIELD },
		{ "c", OSIP_FIELD },
		{ "mime-version", OSIP_FIELD },
		{ "accept", OSIP_LIST },
		{ "accept-encoding", OSIP_LIST },
		{ "accept-language", OSIP_LIST },
		{ "alert-info", OSIP_LIST },
		{ "allow", OSIP_LIST },
		{ "authentication-info", OSIP_LIST },
		{ "authorization", OSIP_LIST },
		{ "call-info", OSIP_LIST },
		{ "content-encoding", OSIP_LIST },
		{ "e", OSIP_LIST },
		{ "error-info", OSIP_LIST },
		{ "proxy-authenticate", OSIP_LIST },
		{ "proxy-authentication-info", OSIP_LIST },
		{ "proxy-authorization", OSIP_LIST },
		{ "www-authenticate", OSIP_LIST },
	};

	for (size_t i = 0; i < sizeof(owned) / sizeof(owned[0]); i++)
		if (strcasecmp(name, owned[i].name) == 0)
			return owned[i].kind;
	return OSIP_GENERIC;
}

int sipmsg_header_add(osip_message_t *m, const char *name, const char *value)
{
	if (!m || !name || !value || !all_token(slice_from(name)) ||
	    osip_kind_of(name) == OSIP_FIELD)
		return EINVAL;
	for (const char *s = value; *s; s++)
		if (*s == '\r' || *s == '\n')
			return EINVAL;
	if (osip_message_set_header(m, name, value) != OSIP_SUCCESS)
		return ENOMEM;
	osip_message_force_update(m);
	return 0;
}

int sipmsg_header_remove(osip_message_t *m, const char *name, unsigned *removed)
{
	unsigned n = 0;

	if (!m || !name || !all_token(slice_from(name)) || osip_kind_of(name) != OSIP_GENERIC)
		return EINVAL;
	for (int i = 0; i < osip_list_size(&m->headers);) {
		osip_header_t *h = osip_list_get(&m->headers, i);

		if (h && h->hname && strcasecmp(h->hname, name) == 0) {
			osip_list_remove(&m->headers, i);
			osip_header_free(h);
			n++;
		} else {
			i++;
		}
	}
	if (n)
		osip_message_force_update(m);
	if (removed)
		*removed = n;
	return 0;
}

const char *sipmsg_header_get(const osip_message_t *m, const char *name, unsigned idx)
{
	if (!m || !name || osip_kind_of(name) != OSIP_GENERIC)
		return NULL;
	for (int i = 0; i < osip_list_size(&m->headers); i++) {
		const osip_header_t *h = osip_list_get(&m->headers, i);

		if (h && h->hname && strcasecmp(h->hname, name) == 0 && idx-- == 0)
			return h->hvalue ? h->hvalue : "";
	}
	return NULL;
}

/* ---- accessors ---- */

bool sipmsg_is_request(const osip_message_t *m)
{
	return m && MSG_IS_REQUEST(m);
}

const char *sipmsg_method(const osip_message_t *m)
{
	return m && MSG_IS_REQUEST(m) ? m->sip_method : NULL;
}

int sipmsg_status(const osip_message_t *m)
{
	return m ? m->status_code : 0;
}

unsigned sipmsg_via_count(const osip_message_t *m)
{
	return m ? (unsigned)osip_list_size(&m->vias) : 0;
}

const char *sipmsg_branch(const osip_message_t *m)
{
	const osip_via_t *via = m ? osip_list_get(&m->vias, 0) : NULL;
	const osip_uri_param_t *p = via ? param_get(&via->via_params, "branch") : NULL;

	return p ? p->gvalue : NULL;
}

int sipmsg_cseq(const osip_message_t *m, uint32_t *number, const char **method)
{
	struct slice n;

	if (!m || !m->cseq || !m->cseq->number || !m->cseq->method)
		return ENOENT;
	n = slice_from(m->cseq->number);
	if (!all_digits(n) || digits_value(n, UINT32_MAX) > UINT32_MAX)
		return EBADMSG;
	*number = (uint32_t)digits_value(n, UINT32_MAX);
	if (method)
		*method = m->cseq->method;
	return 0;
}

int sipmsg_call_id(const osip_message_t *m, char *buf, size_t size)
{
	int n;

	if (!m || !m->call_id || !m->call_id->number)
		return ENOENT;
	if (m->call_id->host)
		n = snprintf(buf, size, "%s@%s", m->call_id->number, m->call_id->host);
	else
		n = snprintf(buf, size, "%s", m->call_id->number);
	return n < 0 || (size_t)n >= size ? ENOSPC : 0;
}

static const char *tag_of(const osip_list_t *params)
{
	const osip_uri_param_t *p = param_get(params, "tag");

	return p ? p->gvalue : NULL;
}

const char *sipmsg_from_tag(const osip_message_t *m)
{
	return m && m->from ? tag_of(&m->from->gen_params) : NULL;
}

const char *sipmsg_to_tag(const osip_message_t *m)
{
	return m && m->to ? tag_of(&m->to->gen_params) : NULL;
}

/* ---- a refusal in text, when libosip2 cannot read the fields ---- */

static bool contains_nocase(const char *p, size_t n, const char *needle)
{
	size_t k = strlen(needle);

	for (size_t i = 0; i + k <= n; i++)
		if (strncasecmp(p + i, needle, k) == 0)
			return true;
	return false;
}

/* Which of the fields a response copies a header line holds: its index in
 * names (long and compact forms), or -1. */
static int refusal_field(const char *line, size_t n)
{
	static const char *const names[][2] = {
		{ "via", "v" },	    { "from", "f" },  { "to", "t" },
		{ "call-id", "i" }, { "cseq", NULL },
	};
	size_t name = 0;

	while (name < n && line[name] != ':' && line[name] != ' ' && line[name] != '\t')
		name++;
	for (int i = 0; i < 5; i++)
		for (int k = 0; k < 2; k++)
			if (names[i][k] && strlen(names[i][k]) == name &&
			    strncasecmp(line, names[i][k], name) == 0)
				return i;
	return -1;
}

int sipmsg_refusal_text(char **buf, size_t *len, struct slice raw, int status, const char *why,
			const char *to_tag)
{
	char warning[SIPMSG_WARNING_MAX + 32];
	size_t size = raw.n + 512, o = 0, pos;
	bool seen[5] = { false }, to_tagged = false;
	int st = 0, field = -1;
	char *out;

	if (status < 300 || status > 699 || (raw.n >= 7 && memcmp(raw.p, "SIP/2.0", 7) == 0))
		return EINVAL;
	if (sipmsg_precheck(raw, &st, warning, sizeof(warning))) {
		/* A datagram whose header ends without its empty line (RFC 4475's
		 * baddn as distributed) still has fields to answer with; any other
		 * breach of the caps is not read at all. */
		char *copy = raw.n <= SIPMSG_MAX_BYTES - 4 ? malloc(raw.n + 4) : NULL;
		int err = EBADMSG;

		if (copy) {
			bool crlf = raw.n >= 2 && memcmp(raw.p + raw.n - 2, "\r\n", 2) == 0;
			size_t n = raw.n + (crlf ? 2 : 4);

			memcpy(copy, raw.p, raw.n);
			memcpy(copy + raw.n, "\r\n\r\n", crlf ? 2 : 4);
			if (sipmsg_precheck((struct slice){ copy, n }, &st, warning,
					    sizeof(warning)) == 0)
				err = sipmsg_refusal_text(buf, len, (struct slice){ copy, n },
							  status, why, to_tag);
			free(copy);
		}
		return err;
	}
	out = malloc(size);
	if (!out)
		return ENOMEM;
	o = (size_t)snprintf(out, size, "SIP/2.0 %d %s\r\n", status, standard_reason(status));
	/* the header lines after the start line, up to the empty line */
	pos = (const char *)memchr(raw.p, '\n', raw.n) - raw.p + 1;
	while (pos < raw.n) {
		const char *line = raw.p + pos, *nl = memchr(line, '\n', raw.n - pos);
		size_t n = nl ? (size_t)(nl - line) : raw.n - pos;

		if (n && line[n - 1] == '\r')
			n--;
		if (n == 0)
			break;
		if (line[0] != ' ' && line[0] != '\t')
			field = refusal_field(line, n);
		if (field >= 0 && o + n + 64 < size) {
			bool next_folds =
				nl && nl + 1 < raw.p + raw.n && (nl[1] == ' ' || nl[1] == '\t');

			memcpy(out + o, line, n);
			o += n;
			/* To gets a tag at the end of its logical line, unless one of
			 * its physical lines has one (RFC 3261 8.2.6.2) */
			if (field == 2 && !seen[2]) {
				to_tagged |= contains_nocase(line, n, ";tag=");
				if (!next_folds && to_tag && !to_tagged)
					o += (size_t)snprintf(out + o, size - o, ";tag=%s", to_tag);
			}
			out[o++] = '\r';
			out[o++] = '\n';
			if (field != 2 || !next_folds)
				seen[field] = true;
		}
		pos += (nl ? (size_t)(nl - line) + 1 : raw.n - pos);
	}
	for (int i = 0; i < 5; i++) {
		if (!seen[i]) {
			free(out);
			return ENOENT;
		}
	}
	warning_value(warning, sizeof(warning), why ? why : "");
	o += (size_t)snprintf(out + o, size - o, "Warning: %s\r\nContent-Length: 0\r\n\r\n",
			      warning);
	*buf = out;
	*len = o;
	return 0;
}
