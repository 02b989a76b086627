/* control.h: the control socket of srtpbridgectl (DESIGN.md "Control socket and
 * srtpbridgectl"): a unix stream socket, mode 0660, one JSON request line in, one
 * JSON reply line out, several in sequence per connection.
 *
 * Requests are flat objects of strings: {"cmd":"stats"}, {"cmd":"calls"},
 * {"cmd":"call","id":"..."}, {"cmd":"trunks"}, {"cmd":"reload"}, {"cmd":"drain"},
 * {"cmd":"log-level","level":"debug"}. Replies are {"ok":true,...} or
 * {"ok":false,"error":"sentence"}. The data comes from providers the daemon
 * registers; log-level is answered here. */
#ifndef SRTPBRIDGE_CONTROL_H
#define SRTPBRIDGE_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evbuffer;
struct control;
struct control_out;

#define CONTROL_REQUEST_MAX 4096 /* bytes in a request line, without its newline */
#define CONTROL_MAX_CLIENTS 32
#define CONTROL_JSON_DEPTH  16 /* deepest nesting the walker and the writer handle */

/* What the daemon answers with. A provider writes its fields into o (already
 * inside the reply's top-level object) and returns 0, or returns an errno,
 * with control_out_fail() for the sentence the client sees. A NULL function
 * makes its command answer "not available". */
struct control_providers {
	int (*stats)(void *arg, struct control_out *o);
	int (*calls)(void *arg, struct control_out *o);
	int (*call)(void *arg, const char *id, struct control_out *o);
	int (*trunks)(void *arg, struct control_out *o);
	/* 0, or an errno with a sentence in err. */
	int (*reload)(void *arg, char *err, size_t errsz);
	void (*drain)(void *arg);
	void *arg;
};

/* Borrows base, path and p (p is copied). Returns 0, or an errno with a
 * sentence in why. A socket file left by a dead process is replaced; a live
 * one is not (EADDRINUSE). */
int control_create(struct control **out, struct event_base *base, const char *path,
		   const struct control_providers *p, char *why, size_t whysz);
/* NULL-safe: writes what replies it can without blocking, closes every
 * client, removes the socket file if it is still ours. */
void control_destroy(struct control *c);

/* One request line (without its newline) -> one reply line appended to reply
 * (with its newline). Returns 0 for an ok:true reply, else the errno of the
 * refusal, which is also logged (module=ctl). The socket's handler; exposed
 * for tests and the fuzzer. */
int control_handle(const struct control_providers *p, const char *line, size_t n,
		   struct evbuffer *reply);

/* The JSON writer handed to providers. Inside an object every value has a
 * key; inside an array key is NULL. Misuse (a key missing or extra, nesting
 * deeper than CONTROL_JSON_DEPTH, an unbalanced end) and ENOMEM are sticky:
 * the request then fails with an internal error rather than bad JSON. */
void control_out_str(struct control_out *o, const char *key, const char *val);
void control_out_uint(struct control_out *o, const char *key, uint64_t val);
void control_out_int(struct control_out *o, const char *key, int64_t val);
void control_out_bool(struct control_out *o, const char *key, bool val);
void control_out_begin_object(struct control_out *o, const char *key);
void control_out_end_object(struct control_out *o);
void control_out_begin_array(struct control_out *o, const char *key);
void control_out_end_array(struct control_out *o);
/* Sets the refusal's sentence (printf-style) and returns err, for
 * "return control_out_fail(o, ENOENT, "no call with id %s", id);". */
int control_out_fail(struct control_out *o, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* A JSON string's body for n bytes of src (quotes not included): '"', '\' and
 * control characters escaped, bytes that are not UTF-8 replaced with \ufffd.
 * snprintf-like: writes at most dstsz - 1 bytes and a NUL (when dstsz > 0),
 * returns the length of the whole escaped text. */
size_t control_json_escape(char *dst, size_t dstsz, const char *src, size_t n);

/* A strict JSON reader (RFC 8259) that calls back once per value, in document
 * order, containers before their members. path names the value: object keys
 * and array indexes joined with '.' ("" for the root, "calls.0.id"); a string
 * value is decoded (escapes resolved, NUL-terminated), a number is its text,
 * true/false/null their words, a container has val NULL. Strings may not hold
 * NUL (\u0000). */
enum control_json_type {
	CONTROL_JSON_STRING = 0,
	CONTROL_JSON_NUMBER,
	CONTROL_JSON_BOOL,
	CONTROL_JSON_NULL,
	CONTROL_JSON_OBJECT,
	CONTROL_JSON_ARRAY
};
struct control_json_item {
	const char *path;
	const char *key; /* the last path element: the key, or the index */
	unsigned depth;	 /* 0 for the root */
	enum control_json_type type;
	const char *val;
	size_t len;
};
/* Returns 0 to go on, or an errno (with a sentence in why) to stop the walk. */
typedef int (*control_json_cb)(void *arg, const struct control_json_item *it, char *why,
			       size_t whysz);
/* Borrows text. maxdepth <= CONTROL_JSON_DEPTH (the root's members are depth
 * 1). Returns 0, EBADMSG with a sentence in why, ENOMEM, or the callback's
 * error. */
int control_json_walk(const char *text, size_t n, unsigned maxdepth, control_json_cb cb, void *arg,
		      char *why, size_t whysz);

/* A request: each field NULL when absent, else pointing into buf. */
struct control_request {
	const char *cmd, *id, *level;
	char buf[CONTROL_REQUEST_MAX + 4];
};
/* Borrows line. 0, or EBADMSG with a sentence in why. Checks the form only:
 * which command and which keys it takes is control_handle()'s business. */
int control_request_parse(struct control_request *r, const char *line, size_t n, char *why,
			  size_t whysz);

#endif
