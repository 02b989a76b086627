/* The control socket: a strict reader for the JSON the clients send, a writer
 * for the JSON they get, and the unix socket server around both. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "srtpbridge/control.h"
#include "srtpbridge/accept_backoff.h"
#include "srtpbridge/log.h"

#define LOG_MODULE "ctl"

/* A client that sends requests without reading its replies stops being read
 * at this much pending output, so it cannot make the daemon buffer without
 * bound. */
#define CLIENT_OUT_MAX (256 * 1024)
/* An idle client holds one of the CONTROL_MAX_CLIENTS slots: not forever. */
#define CLIENT_IDLE_S  60
#define CLIENT_WRITE_S 10

/* ---- UTF-8 and the escaper ---- */

/* Length of the well-formed UTF-8 sequence at s (RFC 3629 table 3-7: no
 * overlongs, no surrogates, nothing past U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4;
	else
		return 0;
	if (n < len)
		return 0;
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

/* Escapes the character at s into out (at most 6 bytes); sets *used to the
 * bytes of s it took. */
static size_t escape_one(const unsigned char *s, size_t n, char *out, size_t *used)
{
	static const char hex[] = "0123456789abcdef";
	size_t l;

	*used = 1;
	switch (s[0]) {
	case '"':
		memcpy(out, "\\\"", 2);
		return 2;
	case '\\':
		memcpy(out, "\\\\", 2);
		return 2;
	case '\n':
		memcpy(out, "\\n", 2);
		return 2;
	case '\r':
		memcpy(out, "\\r", 2);
		return 2;
	case '\t':
		memcpy(out, "\\t", 2);
		return 2;
	}
	if (s[0] < 0x20 || s[0] == 0x7f) {
		memcpy(out, "\\u00", 4);
		out[4] = hex[s[0] >> 4];
		out[5] = hex[s[0] & 15];
		return 6;
	}
	l = utf8_len(s, n);
	if (!l) {
		/* The reply must stay valid JSON whatever bytes a path or name holds. */
		memcpy(out, "\\ufffd", 6);
		return 6;
	}
	memcpy(out, s, l);
	*used = l;
	return l;
}

size_t control_json_escape(char *dst, size_t dstsz, const char *src, size_t n)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t total = 0, used, l;
	char tmp[8];

	while (n) {
		l = escape_one(s, n, tmp, &used);
		if (dstsz && total + l < dstsz)
			memcpy(dst + total, tmp, l);
		else if (dstsz && total < dstsz)
			dstsz = total + 1; /* never a partial escape: stop copying here */
		total += l;
		s += used;
		n -= used;
	}
	if (dstsz)
		dst[total < dstsz ? total : dstsz - 1] = '\0';
	return total;
}

/* Appends "escaped s" (with quotes) to b; 0 or ENOMEM. */
static int add_json_string(struct evbuffer *b, const char *src, size_t n)
{
	const unsigned char *s = (const unsigned char *)src;
	char chunk[256];
	size_t len = 0, used;
	int err = 0;

	chunk[len++] = '"';
	while (n) {
		if (len > sizeof(chunk) - 8) {
			err |= evbuffer_add(b, chunk, len);
			len = 0;
		}
		len += escape_one(s, n, chunk + len, &used);
		s += used;
		n -= used;
	}
	chunk[len++] = '"';
	err |= evbuffer_add(b, chunk, len);
	return err ? ENOMEM : 0;
}

/* ---- the reader ---- */

struct walk {
	const char *start, *p, *end;
	unsigned maxdepth;
	control_json_cb cb;
	void *arg;
	char *why;
	size_t whysz;
	char *scratch; /* one decoded string at a time: never longer than the text */
	char path[256];
	size_t pathlen;
};

static int refuse(struct walk *w, const char *what)
{
	snprintf(w->why, w->whysz, "%s at byte %zu", what, (size_t)(w->p - w->start));
	return EBADMSG;
}

static void skip_ws(struct walk *w)
{
	while (w->p < w->end && (*w->p == ' ' || *w->p == '\t' || *w->p == '\n' || *w->p == '\r'))
		w->p++;
}

static int hex4(const char *p, unsigned *out)
{
	*out = 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		unsigned v;

		if (c >= '0' && c <= '9')
			v = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v = (unsigned)(c - 'A' + 10);
		else
			return EBADMSG;
		*out = *out << 4 | v;
	}
	return 0;
}

static size_t utf8_put(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* The \uXXXX escape at w->p (after the backslash and 'u'), with its low
 * surrogate when it is a high one. */
static int read_u_escape(struct walk *w, unsigned *cp)
{
	unsigned lo;

	if (w->end - w->p < 4 || hex4(w->p, cp))
		return refuse(w, "\\u needs four hex digits");
	w->p += 4;
	if (*cp >= 0xdc00 && *cp <= 0xdfff)
		return refuse(w, "a lone low surrogate in a string");
	if (*cp >= 0xd800 && *cp <= 0xdbff) {
		if (w->end - w->p < 6 || w->p[0] != '\\' || w->p[1] != 'u' || hex4(w->p + 2, &lo) ||
		    lo < 0xdc00 || lo > 0xdfff)
			return refuse(w, "a high surrogate without its low surrogate");
		w->p += 6;
		*cp = 0x10000 + ((*cp - 0xd800) << 10) + (lo - 0xdc00);
	}
	if (*cp == 0)
		return refuse(w, "\\u0000 in a string");
	return 0;
}

/* The string at w->p (on its opening quote), decoded into w->scratch. */
static int read_string(struct walk *w, size_t *lenp)
{
	char *o = w->scratch;
	unsigned cp;
	size_t l;
	int err;

	w->p++;
	for (;;) {
		unsigned char c;

		if (w->p >= w->end)
			return refuse(w, "an unterminated string");
		c = (unsigned char)*w->p;
		if (c == '"') {
			w->p++;
			break;
		}
		if (c < 0x20)
			return refuse(w, "a control character in a string");
		if (c != '\\') {
			l = utf8_len((const unsigned char *)w->p, (size_t)(w->end - w->p));
			if (!l)
				return refuse(w, "a string that is not UTF-8");
			memcpy(o, w->p, l);
			o += l;
			w->p += l;
			continue;
		}
		if (w->end - w->p < 2)
			return refuse(w, "an unterminated string");
		w->p += 2;
		switch (w->p[-1]) {
		case '"':
		case '\\':
		case '/':
			*o++ = w->p[-1];
			break;
		case 'b':
			*o++ = '\b';
			break;
		case 'f':
			*o++ = '\f';
			break;
		case 'n':
			*o++ = '\n';
			break;
		case 'r':
			*o++ = '\r';
			break;
		case 't':
			*o++ = '\t';
			break;
		case 'u':
			err = read_u_escape(w, &cp);
			if (err)
				return err;
			o += utf8_put(o, cp);
			break;
		default:
			w->p -= 1;
			return refuse(w, "an unknown escape in a string");
		}
	}
	*o = '\0';
	*lenp = (size_t)(o - w->scratch);
	return 0;
}

static bool is_digit(const struct walk *w)
{
	return w->p < w->end && *w->p >= '0' && *w->p <= '9';
}

/* RFC 8259 section 6: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int read_number(struct walk *w)
{
	if (w->p < w->end && *w->p == '-')
		w->p++;
	if (w->p < w->end && *w->p == '0')
		w->p++;
	else if (is_digit(w))
		while (is_digit(w))
			w->p++;
	else
		return refuse(w, "a malformed number");
	if (w->p < w->end && *w->p == '.') {
		w->p++;
		if (!is_digit(w))
			return refuse(w, "a malformed number");
		while (is_digit(w))
			w->p++;
	}
	if (w->p < w->end && (*w->p == 'e' || *w->p == 'E')) {
		w->p++;
		if (w->p < w->end && (*w->p == '+' || *w->p == '-'))
			w->p++;
		if (!is_digit(w))
			return refuse(w, "a malformed number");
		while (is_digit(w))
			w->p++;
	}
	return 0;
}

/* Appends ".elem" (or "elem" at the root) to the path; returns where elem
 * starts, or 0 with EBADMSG in *err. */
static size_t path_push(struct walk *w, const char *elem, size_t n, int *err)
{
	size_t at = w->pathlen + (w->pathlen ? 1 : 0);

	*err = 0;
	if (at + n >= sizeof(w->path)) {
		*err = refuse(w, "a key path longer than 255 bytes");
		return 0;
	}
	if (w->pathlen)
		w->path[w->pathlen] = '.';
	memcpy(w->path + at, elem, n);
	w->pathlen = at + n;
	w->path[w->pathlen] = '\0';
	return at;
}

static void path_pop(struct walk *w, size_t saved)
{
	w->pathlen = saved;
	w->path[saved] = '\0';
}

static int emit(struct walk *w, unsigned depth, size_t keyat, enum control_json_type t,
		const char *val, size_t len)
{
	struct control_json_item it = {
		.path = w->path,
		.key = w->path + keyat,
		.depth = depth,
		.type = t,
		.val = val,
		.len = len,
	};

	return w->cb(w->arg, &it, w->why, w->whysz);
}

static int read_value(struct walk *w, unsigned depth, size_t keyat);

static int read_members(struct walk *w, unsigned depth, bool object)
{
	const char close = object ? '}' : ']';
	unsigned index = 0;
	size_t saved, keyat, len;
	int err;

	w->p++;
	skip_ws(w);
	if (w->p < w->end && *w->p == close) {
		w->p++;
		return 0;
	}
	if (depth + 1 > w->maxdepth)
		return refuse(w, "values nested too deep");
	for (;;) {
		saved = w->pathlen;
		skip_ws(w);
		if (object) {
			if (w->p >= w->end || *w->p != '"')
				return refuse(w, "expected a key string");
			err = read_string(w, &len);
			if (err)
				return err;
			keyat = path_push(w, w->scratch, len, &err);
			if (err)
				return err;
			skip_ws(w);
			if (w->p >= w->end || *w->p != ':')
				return refuse(w, "expected ':' after a key");
			w->p++;
		} else {
			char ix[16];

			len = (size_t)snprintf(ix, sizeof(ix), "%u", index++);
			keyat = path_push(w, ix, len, &err);
			if (err)
				return err;
		}
		err = read_value(w, depth + 1, keyat);
		if (err)
			return err;
		path_pop(w, saved);
		skip_ws(w);
		if (w->p < w->end && *w->p == ',') {
			w->p++;
			continue;
		}
		if (w->p < w->end && *w->p == close) {
			w->p++;
			return 0;
		}
		return refuse(w, object ? "expected ',' or '}' in an object"
					: "expected ',' or ']' in an array");
	}
}

static int read_value(struct walk *w, unsigned depth, size_t keyat)
{
	static const struct {
		const char *word;
		enum control_json_type type;
	} words[] = { { "true", CONTROL_JSON_BOOL },
		      { "false", CONTROL_JSON_BOOL },
		      { "null", CONTROL_JSON_NULL } };
	const char *start;
	size_t len;
	int err;

	skip_ws(w);
	if (w->p >= w->end)
		return refuse(w, "expected a value");
	start = w->p;
	switch (*w->p) {
	case '{':
	case '[': {
		bool object = *w->p == '{';

		err = emit(w, depth, keyat, object ? CONTROL_JSON_OBJECT : CONTROL_JSON_ARRAY, NULL,
			   0);
		return err ? err : read_members(w, depth, object);
	}
	case '"':
		err = read_string(w, &len);
		return err ? err : emit(w, depth, keyat, CONTROL_JSON_STRING, w->scratch, len);
	}
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		len = strlen(words[i].word);
		if ((size_t)(w->end - w->p) >= len && memcmp(w->p, words[i].word, len) == 0) {
			w->p += len;
			return emit(w, depth, keyat, words[i].type, start, len);
		}
	}
	if (*w->p != '-' && !(*w->p >= '0' && *w->p <= '9'))
		return refuse(w, "expected a value");
	err = read_number(w);
	return err ? err
		   : emit(w, depth, keyat, CONTROL_JSON_NUMBER, start, (size_t)(w->p - start));
}

int control_json_walk(const char *text, size_t n, unsigned maxdepth, control_json_cb cb, void *arg,
		      char *why, size_t whysz)
{
	struct walk w = {
		.start = text,
		.p = text,
		.end = text + n,
		.maxdepth = maxdepth < CONTROL_JSON_DEPTH ? maxdepth : CONTROL_JSON_DEPTH,
		.cb = cb,
		.arg = arg,
		.why = why,
		.whysz = whysz,
	};
	int err;

	w.scratch = malloc(n + 1);
	if (!w.scratch)
		return ENOMEM;
	err = read_value(&w, 0, 0);
	if (!err) {
		skip_ws(&w);
		if (w.p != w.end)
			err = refuse(&w, "text after the JSON value");
	}
	free(w.scratch);
	return err;
}

/* ---- requests ---- */

struct request_ctx {
	struct control_request *r;
	size_t used;
};

static int request_item(void *arg, const struct control_json_item *it, char *why, size_t whysz)
{
	struct request_ctx *ctx = arg;
	struct control_request *r = ctx->r;
	const char **slot;

	if (it->depth == 0) {
		if (it->type == CONTROL_JSON_OBJECT)
			return 0;
		snprintf(why, whysz, "a request is one JSON object");
		return EBADMSG;
	}
	if (strcmp(it->key, "cmd") == 0)
		slot = &r->cmd;
	else if (strcmp(it->key, "id") == 0)
		slot = &r->id;
	else if (strcmp(it->key, "level") == 0)
		slot = &r->level;
	else {
		snprintf(why, whysz, "unknown key \"%.40s\"", it->key);
		return EBADMSG;
	}
	if (it->type != CONTROL_JSON_STRING) {
		snprintf(why, whysz, "the value of \"%s\" must be a string", it->key);
		return EBADMSG;
	}
	if (*slot) {
		snprintf(why, whysz, "duplicate key \"%s\"", it->key);
		return EBADMSG;
	}
	/* Cannot fail: a value's quotes pay for its NUL, and escapes only shrink. */
	if (ctx->used + it->len + 1 > sizeof(r->buf)) {
		snprintf(why, whysz, "the request is too long");
		return EBADMSG;
	}
	memcpy(r->buf + ctx->used, it->val, it->len + 1);
	*slot = r->buf + ctx->used;
	ctx->used += it->len + 1;
	return 0;
}

int control_request_parse(struct control_request *r, const char *line, size_t n, char *why,
			  size_t whysz)
{
	struct request_ctx ctx = { .r = r };
	int err;

	r->cmd = r->id = r->level = NULL;
	if (n > CONTROL_REQUEST_MAX) {
		snprintf(why, whysz, "the request is longer than %d bytes", CONTROL_REQUEST_MAX);
		return EBADMSG;
	}
	err = control_json_walk(line, n, 1, request_item, &ctx, why, whysz);
	if (err)
		return err;
	if (!r->cmd) {
		snprintf(why, whysz, "the request has no \"cmd\"");
		return EBADMSG;
	}
	return 0;
}

/* ---- the writer ---- */

struct control_out {
	struct evbuffer *buf;
	unsigned depth; /* 0: the reply's own object */
	bool array[CONTROL_JSON_DEPTH + 1];
	bool comma[CONTROL_JSON_DEPTH + 1];
	int err;
	char fail[256];
};

/* The separator and the key of the next value; false once the writer failed. */
static bool put_key(struct control_out *o, const char *key)
{
	if (o->err)
		return false;
	if (!key != o->array[o->depth]) {
		o->err = EINVAL; /* a key in an array, or none in an object */
		return false;
	}
	if (o->comma[o->depth] && evbuffer_add(o->buf, ",", 1))
		o->err = ENOMEM;
	o->comma[o->depth] = true;
	if (!o->err && key &&
	    (add_json_string(o->buf, key, strlen(key)) || evbuffer_add(o->buf, ":", 1)))
		o->err = ENOMEM;
	return !o->err;
}

static void put_raw(struct control_out *o, const char *key, const char *text)
{
	if (put_key(o, key) && evbuffer_add(o->buf, text, strlen(text)))
		o->err = ENOMEM;
}

void control_out_str(struct control_out *o, const char *key, const char *val)
{
	if (!val)
		val = "";
	if (put_key(o, key) && add_json_string(o->buf, val, strlen(val)))
		o->err = ENOMEM;
}

void control_out_uint(struct control_out *o, const char *key, uint64_t val)
{
	char num[24];

	snprintf(num, sizeof(num), "%llu", (unsigned long long)val);
	put_raw(o, key, num);
}

void control_out_int(struct control_out *o, const char *key, int64_t val)
{
	char num[24];

	snprintf(num, sizeof(num), "%lld", (long long)val);
	put_raw(o, key, num);
}

void control_out_bool(struct control_out *o, const char *key, bool val)
{
	put_raw(o, key, val ? "true" : "false");
}

static void begin(struct control_out *o, const char *key, bool array)
{
	if (!o->err && o->depth >= CONTROL_JSON_DEPTH)
		o->err = EINVAL;
	put_raw(o, key, array ? "[" : "{");
	if (o->err)
		return;
	o->depth++;
	o->array[o->depth] = array;
	o->comma[o->depth] = false;
}

static void end(struct control_out *o, bool array)
{
	if (!o->err && (o->depth == 0 || o->array[o->depth] != array))
		o->err = EINVAL;
	if (o->err)
		return;
	o->depth--;
	if (evbuffer_add(o->buf, array ? "]" : "}", 1))
		o->err = ENOMEM;
}

void control_out_begin_object(struct control_out *o, const char *key)
{
	begin(o, key, false);
}

void control_out_end_object(struct control_out *o)
{
	end(o, false);
}

void control_out_begin_array(struct control_out *o, const char *key)
{
	begin(o, key, true);
}

void control_out_end_array(struct control_out *o)
{
	end(o, true);
}

int control_out_fail(struct control_out *o, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(o->fail, sizeof(o->fail), fmt, ap);
	va_end(ap);
	return err;
}

/* ---- commands ---- */

enum {
	TAKES_ID = 1,
	TAKES_LEVEL = 2
};

struct command {
	const char *name;
	unsigned takes;
	/* 0, or an errno with the refusal's sentence in why. */
	int (*run)(const struct control_providers *p, const struct control_request *r,
		   struct control_out *o, char *why, size_t whysz);
};

static int not_available(const char *cmd, char *why, size_t whysz)
{
	snprintf(why, whysz, "%s is not available in this daemon", cmd);
	return ENOTSUP;
}

/* A provider's refusal: its own sentence, else its errno's. */
static int provider_result(int err, const struct control_out *o, char *why, size_t whysz)
{
	if (err)
		snprintf(why, whysz, "%s", o->fail[0] ? o->fail : strerror(err));
	return err;
}

static int cmd_stats(const struct control_providers *p, const struct control_request *r,
		     struct control_out *o, char *why, size_t whysz)
{
	if (!p->stats)
		return not_available(r->cmd, why, whysz);
	return provider_result(p->stats(p->arg, o), o, why, whysz);
}

static int cmd_calls(const struct control_providers *p, const struct control_request *r,
		     struct control_out *o, char *why, size_t whysz)
{
	if (!p->calls)
		return not_available(r->cmd, why, whysz);
	return provider_result(p->calls(p->arg, o), o, why, whysz);
}

static int cmd_trunks(const struct control_providers *p, const struct control_request *r,
		      struct control_out *o, char *why, size_t whysz)
{
	if (!p->trunks)
		return not_available(r->cmd, why, whysz);
	return provider_result(p->trunks(p->arg, o), o, why, whysz);
}

static int cmd_call(const struct control_providers *p, const struct control_request *r,
		    struct control_out *o, char *why, size_t whysz)
{
	if (!p->call)
		return not_available(r->cmd, why, whysz);
	return provider_result(p->call(p->arg, r->id, o), o, why, whysz);
}

static int cmd_reload(const struct control_providers *p, const struct control_request *r,
		      struct control_out *o, char *why, size_t whysz)
{
	int err;

	if (!p->reload)
		return not_available(r->cmd, why, whysz);
	LOG_INFO(NULL, "reload requested over the control socket");
	why[0] = '\0';
	err = p->reload(p->arg, why, whysz);
	if (err && !why[0])
		snprintf(why, whysz, "reload failed: %s", strerror(err));
	return err;
}

static int cmd_drain(const struct control_providers *p, const struct control_request *r,
		     struct control_out *o, char *why, size_t whysz)
{
	if (!p->drain)
		return not_available(r->cmd, why, whysz);
	LOG_INFO(NULL, "drain requested over the control socket");
	p->drain(p->arg);
	return 0;
}

static int cmd_log_level(const struct control_providers *p, const struct control_request *r,
			 struct control_out *o, char *why, size_t whysz)
{
	enum log_level prev = log_current_level, l;

	if (log_level_parse(r->level, &l)) {
		snprintf(why, whysz, "unknown log level \"%.40s\": use error, warn, info or debug",
			 r->level);
		return EINVAL;
	}
	log_set_level(l);
	LOG_INFO(NULL, "log level changed over the control socket",
		 LF_S("level", log_level_name(l)), LF_S("previous", log_level_name(prev)));
	control_out_str(o, "level", log_level_name(l));
	control_out_str(o, "previous", log_level_name(prev));
	return 0;
}

static const struct command commands[] = {
	{ "stats", 0, cmd_stats },	{ "calls", 0, cmd_calls },
	{ "call", TAKES_ID, cmd_call }, { "reload", 0, cmd_reload },
	{ "drain", 0, cmd_drain },	{ "log-level", TAKES_LEVEL, cmd_log_level },
	{ "trunks", 0, cmd_trunks },
};

/* Which keys the command takes, with a sentence for the first that does not fit. */
static int check_keys(const struct command *cmd, const struct control_request *r, char *why,
		      size_t whysz)
{
	static const struct {
		unsigned flag;
		const char *name;
		size_t off;
	} keys[] = {
		{ TAKES_ID, "id", offsetof(struct control_request, id) },
		{ TAKES_LEVEL, "level", offsetof(struct control_request, level) },
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const char *v = *(const char *const *)((const char *)r + keys[i].off);
		bool takes = cmd->takes & keys[i].flag;

		if (v && !takes) {
			snprintf(why, whysz, "%s takes no \"%s\"", cmd->name, keys[i].name);
			return EINVAL;
		}
		if (!v && takes) {
			snprintf(why, whysz, "%s needs \"%s\"", cmd->name, keys[i].name);
			return EINVAL;
		}
	}
	return 0;
}

static int add_error_reply(struct evbuffer *reply, const char *why)
{
	int err = evbuffer_add(reply, "{\"ok\":false,\"error\":", 20) ? ENOMEM : 0;

	if (!err)
		err = add_json_string(reply, why, strlen(why));
	if (!err && evbuffer_add(reply, "}\n", 2))
		err = ENOMEM;
	return err;
}

int control_handle(const struct control_providers *p, const char *line, size_t n,
		   struct evbuffer *reply)
{
	struct control_request r;
	struct control_out o = { .comma[0] = true };
	const struct command *cmd = NULL;
	char why[320];
	int err;

	o.buf = evbuffer_new();
	if (!o.buf)
		return ENOMEM;
	err = control_request_parse(&r, line, n, why, sizeof(why));
	if (err) {
		LOG_WARN(NULL, "request refused", LF_S("reason", why));
		goto refused;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, r.cmd) == 0)
			cmd = &commands[i];
	if (!cmd) {
		snprintf(why, sizeof(why), "unknown command \"%.40s\"", r.cmd);
		err = EINVAL;
	}
	if (!err)
		err = check_keys(cmd, &r, why, sizeof(why));
	if (!err && evbuffer_add(o.buf, "{\"ok\":true", 10))
		err = ENOMEM;
	if (!err)
		err = cmd->run(p, &r, &o, why, sizeof(why));
	if (!err && o.err) {
		/* A provider's bug or no memory: never half a reply. */
		err = o.err;
		snprintf(why, sizeof(why), "internal error: the reply could not be written (%s)",
			 strerror(err));
	}
	if (!err && evbuffer_add(o.buf, "}\n", 2))
		err = ENOMEM;
	if (!err) {
		err = evbuffer_add_buffer(reply, o.buf) ? ENOMEM : 0;
		evbuffer_free(o.buf);
		return err;
	}
	LOG_INFO(NULL, "request refused", LF_S("cmd", r.cmd), LF_S("reason", why));
refused:
	evbuffer_free(o.buf);
	add_error_reply(reply, why);
	return err;
}

/* ---- the socket ---- */

struct client {
	struct control *c;
	struct bufferevent *bev;
	struct client *prev, *next;
	bool closing; /* freed once its output is written */
};

struct control {
	struct event_base *base;
	struct accept_backoff *listener; /* owns the evconnlistener */
	struct control_providers p;
	char *path;
	dev_t dev;
	ino_t ino;
	struct client *clients;
	unsigned nclients;
};

static void client_free(struct client *cl)
{
	struct control *c = cl->c;

	if (cl->prev)
		cl->prev->next = cl->next;
	else
		c->clients = cl->next;
	if (cl->next)
		cl->next->prev = cl->prev;
	c->nclients--;
	bufferevent_free(cl->bev);
	free(cl);
}

/* Stops reading; frees the client once what it was told has been written. */
static void client_close(struct client *cl)
{
	cl->closing = true;
	bufferevent_disable(cl->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(cl->bev)) == 0)
		client_free(cl);
}

static void refuse_too_long(struct client *cl)
{
	char why[96];

	snprintf(why, sizeof(why), "the request is longer than %d bytes", CONTROL_REQUEST_MAX);
	LOG_WARN(NULL, "request refused", LF_S("reason", why));
	add_error_reply(bufferevent_get_output(cl->bev), why);
	client_close(cl);
}

/* Answers every complete line in the input; false when the client is gone. */
static bool client_process(struct client *cl, bool eof)
{
	struct evbuffer *in = bufferevent_get_input(cl->bev);
	struct evbuffer *out = bufferevent_get_output(cl->bev);
	char line[CONTROL_REQUEST_MAX + 1];

	for (;;) {
		struct evbuffer_ptr eol;
		size_t eol_len = 0, n;

		if (evbuffer_get_length(out) > CLIENT_OUT_MAX) {
			bufferevent_disable(cl->bev, EV_READ); /* on_write resumes */
			return true;
		}
		eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
		if (eol.pos < 0) {
			n = evbuffer_get_length(in);
			if (n > CONTROL_REQUEST_MAX) {
				refuse_too_long(cl);
				return false;
			}
			if (!eof || n == 0)
				return true;
			/* The last request of a client that shut down its side
			 * without a newline still gets its answer. */
			eol_len = 0;
		} else {
			n = (size_t)eol.pos;
			if (n > CONTROL_REQUEST_MAX) {
				refuse_too_long(cl);
				return false;
			}
		}
		evbuffer_remove(in, line, n);
		evbuffer_drain(in, eol_len);
		control_handle(&cl->c->p, line, n, out);
	}
}

static void on_read(struct bufferevent *bev, void *arg)
{
	client_process(arg, false);
}

static void on_write(struct bufferevent *bev, void *arg)
{
	struct client *cl = arg;

	if (cl->closing) {
		client_free(cl);
		return;
	}
	if (!(bufferevent_get_enabled(bev) & EV_READ)) {
		bufferevent_enable(bev, EV_READ);
		client_process(cl, false);
	}
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct client *cl = arg;

	if (what & BEV_EVENT_EOF && !(what & BEV_EVENT_ERROR) && !cl->closing) {
		if (client_process(cl, true))
			client_close(cl);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		LOG_DEBUG(NULL, "client timed out",
			  LF_S("during", what & BEV_EVENT_READING ? "read" : "write"));
	client_free(cl);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
		      void *arg)
{
	static const char busy[] = "{\"ok\":false,\"error\":\"too many control clients\"}\n";
	struct control *c = arg;
	struct timeval rtv = { CLIENT_IDLE_S, 0 }, wtv = { CLIENT_WRITE_S, 0 };
	struct client *cl = NULL;

	if (c->nclients >= CONTROL_MAX_CLIENTS) {
		LOG_WARN(NULL, "request refused", LF_S("reason", "too many control clients"),
			 LF_U("max", CONTROL_MAX_CLIENTS));
		/* Best effort: the socket is new, its buffer empty. */
		if (send(fd, busy, sizeof(busy) - 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			LOG_DEBUG(NULL, "cannot tell a client it was refused",
				  LF_S("error", strerror(errno)));
		evutil_closesocket(fd);
		return;
	}
	cl = calloc(1, sizeof(*cl));
	if (cl)
		cl->bev = bufferevent_socket_new(c->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!cl || !cl->bev) {
		LOG_WARN(NULL, "cannot accept a client", LF_S("error", strerror(ENOMEM)));
		evutil_closesocket(fd);
		free(cl);
		return;
	}
	cl->c = c;
	cl->next = c->clients;
	if (c->clients)
		c->clients->prev = cl;
	c->clients = cl;
	c->nclients++;
	bufferevent_setcb(cl->bev, on_read, on_write, on_event, cl);
	bufferevent_set_timeouts(cl->bev, &rtv, &wtv);
	bufferevent_enable(cl->bev, EV_READ);
}

/* Binds fd to path; a socket file nobody listens on any more is replaced. */
static int bind_path(int fd, const struct sockaddr_un *sa, char *why, size_t whysz)
{
	struct stat st;
	int probe, err;

	if (bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0)
		return 0;
	err = errno;
	if (err != EADDRINUSE)
		goto fail;
	if (lstat(sa->sun_path, &st) || !S_ISSOCK(st.st_mode)) {
		snprintf(why, whysz, "%s exists and is not a socket", sa->sun_path);
		return EEXIST;
	}
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe < 0) {
		err = errno;
		goto fail;
	}
	err = connect(probe, (const struct sockaddr *)sa, sizeof(*sa)) ? errno : 0;
	close(probe);
	if (!err) {
		snprintf(why, whysz, "another process is listening on %s", sa->sun_path);
		return EADDRINUSE;
	}
	/* Only a dead daemon's leftover refuses connections: replace it. */
	if (unlink(sa->sun_path) && errno != ENOENT) {
		err = errno;
		goto fail;
	}
	if (bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0)
		return 0;
	err = errno;
fail:
	snprintf(why, whysz, "cannot bind %s: %s", sa->sun_path, strerror(err));
	return err;
}

int control_create(struct control **out, struct event_base *base, const char *path,
		   const struct control_providers *p, char *why, size_t whysz)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct control *c = NULL;
	struct evconnlistener *l;
	struct stat st;
	char name[sizeof(sa.sun_path) + 8];
	bool bound = false;
	int fd = -1, err = 0;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(why, whysz, "the socket path %s is longer than %zu bytes", path,
			 sizeof(sa.sun_path) - 1);
		return ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	c = calloc(1, sizeof(*c));
	if (c)
		c->path = strdup(path);
	if (!c || !c->path) {
		snprintf(why, whysz, "out of memory");
		err = ENOMEM;
		goto out;
	}
	c->base = base;
	c->p = *p;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = errno;
		snprintf(why, whysz, "cannot create a unix socket: %s", strerror(err));
		goto out;
	}
	err = bind_path(fd, &sa, why, whysz);
	if (err)
		goto out;
	bound = true;
	/* The mode is set before listen(): until then nobody can connect, so
	 * the umask's wider mode is never usable. fchmod() would change the
	 * socket inode, not the file. */
	if (chmod(path, 0660) || stat(path, &st)) {
		err = errno;
		snprintf(why, whysz, "cannot set the mode of %s: %s", path, strerror(err));
		goto out;
	}
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	/* accept_backoff_attach() sets the callbacks: out of descriptors, the
	 * listener pauses rather than spinning the loop that carries SIP. */
	l = evconnlistener_new(base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16,
			       fd);
	if (!l) {
		err = errno ? errno : ENOMEM;
		snprintf(why, whysz, "cannot listen on %s: %s", path, strerror(err));
		goto out;
	}
	fd = -1; /* the listener's now */
	snprintf(name, sizeof(name), "control:%s", path);
	err = accept_backoff_attach(&c->listener, l, on_accept, c, name);
	if (err) {
		snprintf(why, whysz, "out of memory");
		goto out;
	}
	LOG_DEBUG(NULL, "control socket listening", LF_S("path", path));
out:
	if (fd >= 0)
		close(fd);
	if (err) {
		if (bound)
			unlink(path);
		control_destroy(c);
	} else {
		*out = c;
	}
	return err;
}

void control_destroy(struct control *c)
{
	struct stat st;

	if (!c)
		return;
	while (c->clients) {
		struct client *cl = c->clients;
		struct evbuffer *o = bufferevent_get_output(cl->bev);
		size_t n = evbuffer_get_length(o);
		unsigned char *p = n ? evbuffer_pullup(o, -1) : NULL;

		/* The answer to "drain" is often still queued when the loop ends.
		 * The bufferevent keeps its output frozen to all but itself, so
		 * the bytes go out with send(), best effort. */
		if (p && send(bufferevent_getfd(cl->bev), p, n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			LOG_DEBUG(NULL, "reply lost at exit", LF_S("error", strerror(errno)));
		client_free(cl);
	}
	if (c->listener) {
		accept_backoff_free(c->listener);
		/* A newer daemon may have taken the path over: leave its socket be. */
		if (lstat(c->path, &st) == 0 && st.st_dev == c->dev && st.st_ino == c->ino)
			unlink(c->path);
	}
	free(c->path);
	free(c);
}
