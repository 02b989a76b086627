/* The SDP reader: an index over the text, checked against RFC 4566's grammar
 * where a B2BUA depends on it (order, o=, c=, m=), and nothing rewritten. */
#include "srtpbridge/sdp.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#define REFUSE(...)                                                                                \
	do {                                                                                       \
		snprintf(why, whysz, __VA_ARGS__);                                                 \
		return EBADMSG;                                                                    \
	} while (0)

static struct slice field(struct slice *v)
{
	struct slice f;

	while (v->n && *v->p == ' ') {
		v->p++;
		v->n--;
	}
	f.p = v->p;
	while (v->n && *v->p != ' ') {
		v->p++;
		v->n--;
	}
	f.n = (size_t)(v->p - f.p);
	return f;
}

static bool digits(struct slice s, size_t max)
{
	if (!s.n || s.n > max)
		return false;
	for (size_t i = 0; i < s.n; i++)
		if (!isdigit((unsigned char)s.p[i]))
			return false;
	return true;
}

static unsigned long num(struct slice s)
{
	unsigned long v = 0;

	for (size_t i = 0; i < s.n; i++)
		v = v * 10 + (unsigned long)(s.p[i] - '0');
	return v;
}

/* An IP literal of the type, or (RFC 4566) a host name for IP4. */
static bool valid_addr(struct slice type, struct slice addr)
{
	bool v6 = slice_eq(type, "IP6"), numeric = true;
	unsigned char bin[16];
	char buf[256];

	if (!addr.n || addr.n >= sizeof(buf))
		return false;
	memcpy(buf, addr.p, addr.n);
	buf[addr.n] = '\0';
	if (inet_pton(v6 ? AF_INET6 : AF_INET, buf, bin) == 1)
		return true;
	for (size_t i = 0; i < addr.n; i++) {
		if (!isalnum((unsigned char)buf[i]) && buf[i] != '-' && buf[i] != '.')
			return false;
		numeric &= isdigit((unsigned char)buf[i]) || buf[i] == '.';
	}
	return !v6 && !numeric; /* 192.0.2.300 is a broken address, not a name */
}

/* c=IN IP4 addr (no multicast TTL: a trunk is unicast) */
static int check_conn(struct slice v, char *why, size_t whysz)
{
	struct slice net = field(&v), type = field(&v), addr = field(&v);

	if (!slice_eq(net, "IN"))
		REFUSE("c= network type must be IN");
	if (!slice_eq(type, "IP4") && !slice_eq(type, "IP6"))
		REFUSE("c= address type must be IP4 or IP6");
	if (v.n || memchr(addr.p, '/', addr.n))
		REFUSE("c= must be a unicast address with nothing after it");
	if (!valid_addr(type, addr))
		REFUSE("c= address is not a valid %.3s address", type.p);
	return 0;
}

static int check_origin(struct sdp *s, struct slice v, char *why, size_t whysz)
{
	s->o_user = field(&v);
	s->o_sess_id = field(&v);
	s->o_sess_version = field(&v);
	struct slice net = field(&v);

	s->o_addrtype = field(&v);
	s->o_addr = field(&v);
	if (!s->o_addr.n || v.n)
		REFUSE("o= needs six fields: username sess-id sess-version IN IP4|IP6 address");
	if (!digits(s->o_sess_id, 20) || !digits(s->o_sess_version, 20))
		REFUSE("o= session id and version must be numbers");
	if (!slice_eq(net, "IN") ||
	    (!slice_eq(s->o_addrtype, "IP4") && !slice_eq(s->o_addrtype, "IP6")))
		REFUSE("o= must have network type IN and address type IP4 or IP6");
	return 0;
}

static int check_media(struct sdp_media *m, struct slice v, char *why, size_t whysz)
{
	struct slice port;
	const char *slash;

	m->media = field(&v);
	port = field(&v);
	m->proto = field(&v);
	while (v.n && *v.p == ' ') {
		v.p++;
		v.n--;
	}
	m->fmts = v;
	if (!m->media.n || !m->proto.n || !m->fmts.n)
		REFUSE("m= needs media, port, protocol and at least one format");
	m->nports = 1;
	slash = memchr(port.p, '/', port.n);
	if (slash) {
		struct slice cnt = { slash + 1, (size_t)(port.p + port.n - slash - 1) };

		if (!digits(cnt, 5) || num(cnt) == 0)
			REFUSE("m= port count must be a positive number");
		m->nports = (unsigned)num(cnt);
		port.n = (size_t)(slash - port.p);
	}
	if (!digits(port, 5) || num(port) > 65535)
		REFUSE("m= port must be 0 to 65535");
	m->port = (uint16_t)num(port);
	return 0;
}

int sdp_parse(struct sdp *s, struct slice text, char *why, size_t whysz)
{
	static const char order[] = "vos";
	long session_conn = -1;
	bool have_t = false;

	memset(s, 0, sizeof(*s));
	if (text.n > SDP_MAX_BYTES)
		REFUSE("SDP is larger than %d bytes", SDP_MAX_BYTES);
	if (memchr(text.p, '\0', text.n))
		REFUSE("SDP contains a NUL byte");
	while (text.n) {
		struct slice line = slice_split(&text, '\n');
		struct sdp_line *l;

		if (line.n && line.p[line.n - 1] == '\r')
			line.n--;
		if (!line.n) {
			if (!text.n)
				break; /* the final line end */
			REFUSE("SDP line %zu is empty", s->nlines + 1);
		}
		if (s->nlines == SDP_MAX_LINES)
			REFUSE("SDP has more than %d lines", SDP_MAX_LINES);
		if (line.n < 2 || line.p[1] != '=' || !islower((unsigned char)line.p[0]))
			REFUSE("SDP line %zu is not 'x=value'", s->nlines + 1);
		if (memchr(line.p, '\r', line.n))
			REFUSE("SDP line %zu has a bare CR", s->nlines + 1);
		l = &s->lines[s->nlines];
		l->type = line.p[0];
		l->value = (struct slice){ line.p + 2, line.n - 2 };
		if (s->nlines < 3 && l->type != order[s->nlines])
			REFUSE("SDP must begin with v=, o= and s= (line %zu is %c=)", s->nlines + 1,
			       l->type);
		switch (l->type) {
		case 'v':
			if (s->nlines != 0 || !slice_eq(l->value, "0"))
				REFUSE("SDP v= must be the first line and say 0");
			break;
		case 'o':
			if (s->nlines != 1)
				REFUSE("SDP has a second o= line");
			s->origin = 1;
			if (check_origin(s, l->value, why, whysz))
				return EBADMSG;
			break;
		case 't':
			if (s->nmedia)
				REFUSE("SDP t= after an m= line");
			have_t = true;
			break;
		case 'c':
			if (check_conn(l->value, why, whysz))
				return EBADMSG;
			if (s->nmedia == 0)
				session_conn = (long)s->nlines;
			else if (s->media[s->nmedia - 1].conn != (size_t)session_conn &&
				 s->media[s->nmedia - 1].conn != SIZE_MAX)
				REFUSE("SDP m= section has two c= lines");
			else
				s->media[s->nmedia - 1].conn = s->nlines;
			break;
		case 'm': {
			struct sdp_media *m;

			if (!have_t)
				REFUSE("SDP needs a t= line before the first m= line");
			if (s->nmedia == SDP_MAX_MEDIA)
				REFUSE("SDP has more than %d m= lines", SDP_MAX_MEDIA);
			if (s->nmedia)
				s->media[s->nmedia - 1].end = s->nlines;
			else
				s->session_end = s->nlines;
			m = &s->media[s->nmedia++];
			m->line = s->nlines;
			m->conn = session_conn >= 0 ? (size_t)session_conn : SIZE_MAX;
			if (check_media(m, l->value, why, whysz))
				return EBADMSG;
			break;
		}
		default:
			break;
		}
		s->nlines++;
	}
	if (s->nlines < 3)
		REFUSE("SDP must begin with v=, o= and s=");
	if (!have_t)
		REFUSE("SDP has no t= line");
	if (s->nmedia)
		s->media[s->nmedia - 1].end = s->nlines;
	else
		s->session_end = s->nlines;
	for (size_t i = 0; i < s->nmedia; i++)
		if (s->media[i].conn == SIZE_MAX && s->media[i].port != 0)
			REFUSE("SDP m= line %zu has no c= line, at its level or the session's",
			       i + 1);
	return 0;
}

bool sdp_attr(const struct sdp *s, size_t i, struct slice *name, struct slice *value)
{
	struct slice v;

	if (i >= s->nlines || s->lines[i].type != 'a')
		return false;
	v = s->lines[i].value;
	*name = slice_split(&v, ':');
	*value = v;
	return true;
}

long sdp_find_attr(const struct sdp *s, size_t from, size_t to, const char *name,
		   struct slice *value)
{
	struct slice n, v;

	for (size_t i = from; i < to && i < s->nlines; i++) {
		if (sdp_attr(s, i, &n, &v) && slice_eq(n, name)) {
			if (value)
				*value = v;
			return (long)i;
		}
	}
	return -1;
}

void sdp_media_conn(const struct sdp *s, size_t m, struct slice *addrtype, struct slice *addr)
{
	struct slice v = { NULL, 0 };

	if (m < s->nmedia && s->media[m].conn < s->nlines)
		v = s->lines[s->media[m].conn].value;
	field(&v);
	*addrtype = field(&v);
	*addr = field(&v);
}

void sdp_writer_init(struct sdp_writer *w, char *buf, size_t size)
{
	w->buf = buf;
	w->size = size;
	w->n = 0;
	w->overflow = size == 0;
}

void sdp_put(struct sdp_writer *w, char type, struct slice value)
{
	if (w->overflow || w->size - w->n < value.n + 5) {
		w->overflow = true;
		return;
	}
	w->buf[w->n++] = type;
	w->buf[w->n++] = '=';
	memcpy(w->buf + w->n, value.p, value.n);
	w->n += value.n;
	w->buf[w->n++] = '\r';
	w->buf[w->n++] = '\n';
	w->buf[w->n] = '\0';
}

void sdp_putf(struct sdp_writer *w, char type, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		w->overflow = true;
	else
		sdp_put(w, type, (struct slice){ line, (size_t)n });
	/* an a=crypto line passes here; only what vsnprintf wrote needs wiping */
	OPENSSL_cleanse(line, n < 0 || (size_t)n >= sizeof(line) ? sizeof(line) : (size_t)n + 1);
}

size_t sdp_writer_finish(struct sdp_writer *w)
{
	if (w->overflow) {
		if (w->size)
			OPENSSL_cleanse(w->buf, w->size);
		return 0;
	}
	return w->n;
}
