/* libFuzzer target: control socket input. The request parser, the whole
 * request path (its reply must be one line of JSON the reader accepts, with
 * "ok"), the general reader, and the escaper, whose output must read back as
 * the input (or as U+FFFD where the input is not UTF-8). */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "srtpbridge/control.h"
#include "srtpbridge/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fake_stats(void *arg, struct control_out *o)
{
	control_out_str(o, "version", "0.0.0");
	control_out_begin_object(o, "sip");
	control_out_uint(o, "requests", UINT64_MAX);
	control_out_int(o, "delta", INT64_MIN);
	control_out_end_object(o);
	return 0;
}

static int fake_calls(void *arg, struct control_out *o)
{
	control_out_begin_array(o, "calls");
	control_out_begin_object(o, NULL);
	control_out_str(o, "id", "c1");
	control_out_bool(o, "secure", true);
	control_out_end_object(o);
	control_out_end_array(o);
	return 0;
}

static int fake_call(void *arg, const char *id, struct control_out *o)
{
	if (strcmp(id, "c1") == 0) {
		control_out_str(o, "id", id);
		return 0;
	}
	return control_out_fail(o, ENOENT, "no call with id %s", id);
}

static int fake_reload(void *arg, char *err, size_t errsz)
{
	return 0;
}

static void fake_drain(void *arg)
{
}

struct check {
	bool ok_seen;
};

static int check_item(void *arg, const struct control_json_item *it, char *why, size_t whysz)
{
	struct check *c = arg;

	/* Strings come back NUL-terminated and NUL-free. */
	if (it->type == CONTROL_JSON_STRING && strlen(it->val) != it->len)
		abort();
	if (it->depth == 1 && strcmp(it->key, "ok") == 0 && it->type == CONTROL_JSON_BOOL)
		c->ok_seen = true;
	return 0;
}

static int same_string(void *arg, const struct control_json_item *it, char *why, size_t whysz)
{
	const struct slice {
		const char *p;
		size_t n;
	} *want = arg;

	if (it->type != CONTROL_JSON_STRING || it->len != want->n ||
	    memcmp(it->val, want->p, it->len))
		abort();
	return 0;
}

/* An independent oracle: decode each sequence and check its code point. */
static bool is_utf8(const uint8_t *d, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t l = d[i] < 0x80		   ? 1
			   : (d[i] & 0xe0) == 0xc0 ? 2
			   : (d[i] & 0xf0) == 0xe0 ? 3
			   : (d[i] & 0xf8) == 0xf0 ? 4
						   : 0;
		uint32_t cp = l == 1   ? d[i]
			      : l == 2 ? d[i] & 0x1fu
			      : l == 3 ? d[i] & 0x0fu
				       : d[i] & 0x07u;
		static const uint32_t min[] = { 0, 0, 0x80, 0x800, 0x10000 };

		if (!l || l > n - i)
			return false;
		for (size_t k = 1; k < l; k++) {
			if ((d[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (d[i + k] & 0x3fu);
		}
		if (cp < min[l] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += l;
	}
	return true;
}

static void escaper(const uint8_t *data, size_t size)
{
	size_t n = control_json_escape(NULL, 0, (const char *)data, size), m;
	char *buf = malloc(n + 3), why[256];
	struct slice {
		const char *p;
		size_t n;
	} want = { (const char *)data, size };

	if (!buf)
		return;
	buf[0] = '"';
	m = control_json_escape(buf + 1, n + 1, (const char *)data, size);
	if (m != n || strlen(buf + 1) != n)
		abort();
	buf[n + 1] = '"';
	if (!memchr(data, 0, size)) {
		struct check c = { 0 };

		if (control_json_walk(buf, n + 2, 0, check_item, &c, why, sizeof(why)))
			abort(); /* what we escape, we read */
		if (is_utf8(data, size) &&
		    control_json_walk(buf, n + 2, 0, same_string, &want, why, sizeof(why)))
			abort(); /* and read back as it was */
	}
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct control_providers p = {
		.stats = fake_stats,
		.calls = fake_calls,
		.call = fake_call,
		.reload = fake_reload,
		.drain = fake_drain,
	};
	static bool init;
	struct control_request req;
	struct evbuffer *reply;
	struct check c = { 0 };
	char why[256], *line;
	size_t n;

	if (!init) {
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

		log_init(null >= 0 ? null : 2);
		init = true;
	}
	log_set_level(LOG_LVL_DEBUG); /* format every line the request path logs */

	if (control_request_parse(&req, (const char *)data, size, why, sizeof(why)) == 0 &&
	    (!req.cmd || strlen(req.cmd) >= size))
		abort();
	c.ok_seen = false;
	control_json_walk((const char *)data, size, CONTROL_JSON_DEPTH, check_item, &c, why,
			  sizeof(why));

	reply = evbuffer_new();
	if (!reply)
		return 0;
	control_handle(&p, (const char *)data, size, reply);
	n = evbuffer_get_length(reply);
	line = (char *)evbuffer_pullup(reply, -1);
	/* One line, newline-terminated, JSON, with "ok". */
	if (!n || line[n - 1] != '\n' || memchr(line, '\n', n - 1))
		abort();
	c.ok_seen = false;
	if (control_json_walk(line, n - 1, CONTROL_JSON_DEPTH, check_item, &c, why, sizeof(why)) ||
	    !c.ok_seen)
		abort();
	evbuffer_free(reply);

	escaper(data, size);
	return 0;
}
