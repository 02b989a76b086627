/* Control socket: the request parser (accepted forms, and each refusal with
 * its sentence), the reader's general grammar, the escaper, the reply each
 * command gets from fake providers, and the socket itself on a libevent loop
 * in a temp dir: mode, stale and live files, several requests on one
 * connection, an oversize line, the client limit, the reply to drain. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>

#include "srtpbridge/control.h"
#include "srtpbridge/log.h"

/* ---- the request parser ---- */

static void parse_ok(const char *line, const char *cmd, const char *id, const char *level)
{
	struct control_request r;
	char why[256] = "";

	if (control_request_parse(&r, line, strlen(line), why, sizeof(why)))
		fail_msg("refused %s: %s", line, why);
	assert_string_equal(r.cmd, cmd);
	if (id)
		assert_string_equal(r.id, id);
	else
		assert_null(r.id);
	if (level)
		assert_string_equal(r.level, level);
	else
		assert_null(r.level);
}

static void test_parse_accepts(void **state)
{
	parse_ok("{\"cmd\":\"stats\"}", "stats", NULL, NULL);
	parse_ok(" \t{ \"cmd\" : \"log-level\" ,\"level\":\"debug\" }\r", "log-level", NULL,
		 "debug");
	parse_ok("{\"id\":\"abc@host\",\"cmd\":\"call\"}", "call", "abc@host", NULL);
	/* Every escape, a BMP character and a surrogate pair. */
	parse_ok("{\"cmd\":\"call\",\"id\":\"q\\\" b\\\\ s\\/ \\b\\f\\n\\r\\t \\u00e9 "
		 "\\ud83d\\ude00\"}",
		 "call", "q\" b\\ s/ \b\f\n\r\t \xc3\xa9 \xf0\x9f\x98\x80", NULL);
	/* UTF-8 as is. */
	parse_ok("{\"cmd\":\"call\",\"id\":\"\xc3\xa9\xe2\x82\xac\"}", "call",
		 "\xc3\xa9\xe2\x82\xac", NULL);
	parse_ok("{\"cmd\":\"\"}", "", NULL, NULL);
}

static void parse_refused(const char *line, size_t n, const char *why_want)
{
	struct control_request r;
	char why[256] = "";

	if (control_request_parse(&r, line, n, why, sizeof(why)) != EBADMSG)
		fail_msg("accepted %s", line);
	if (strcmp(why, why_want) != 0)
		fail_msg("%s: refused with \"%s\", want \"%s\"", line, why, why_want);
}

#define REFUSED(line, why) parse_refused(line, sizeof(line) - 1, why)

static void test_parse_refuses(void **state)
{
	char big[CONTROL_REQUEST_MAX + 2];

	REFUSED("", "expected a value at byte 0");
	REFUSED("[\"stats\"]", "a request is one JSON object");
	REFUSED("\"stats\"", "a request is one JSON object");
	REFUSED("{}", "the request has no \"cmd\"");
	REFUSED("{\"id\":\"x\"}", "the request has no \"cmd\"");
	REFUSED("{\"cmd\":1}", "the value of \"cmd\" must be a string");
	REFUSED("{\"cmd\":null}", "the value of \"cmd\" must be a string");
	REFUSED("{\"cmd\":{\"a\":\"b\"}}", "the value of \"cmd\" must be a string");
	REFUSED("{\"cmd\":[]}", "the value of \"cmd\" must be a string");
	REFUSED("{\"cmd\":\"a\",\"cmd\":\"b\"}", "duplicate key \"cmd\"");
	REFUSED("{\"cmd\":\"a\",\"verbose\":\"yes\"}", "unknown key \"verbose\"");
	REFUSED("{\"cmd\":\"stats\",}", "expected a key string at byte 15");
	REFUSED("{\"cmd\":\"stats\"", "expected ',' or '}' in an object at byte 14");
	REFUSED("{\"cmd\" \"stats\"}", "expected ':' after a key at byte 7");
	REFUSED("{cmd:\"stats\"}", "expected a key string at byte 1");
	REFUSED("{\"cmd\":\"stats\"} {}", "text after the JSON value at byte 16");
	REFUSED("{\"cmd\":\"stats}", "an unterminated string at byte 14");
	REFUSED("{\"cmd\":'stats'}", "expected a value at byte 7");
	REFUSED("{\"cmd\":\"st\x01\"}", "a control character in a string at byte 10");
	REFUSED("{\"cmd\":\"st\\x\"}", "an unknown escape in a string at byte 11");
	REFUSED("{\"cmd\":\"st\\u00\"}", "\\u needs four hex digits at byte 12");
	REFUSED("{\"cmd\":\"\\u0000\"}", "\\u0000 in a string at byte 14");
	REFUSED("{\"cmd\":\"\\ud800\"}", "a high surrogate without its low surrogate at byte 14");
	REFUSED("{\"cmd\":\"\\ud800\\u0041\"}",
		"a high surrogate without its low surrogate at byte 14");
	REFUSED("{\"cmd\":\"\\udc00\"}", "a lone low surrogate in a string at byte 14");
	REFUSED("{\"cmd\":\"\xc3\x28\"}", "a string that is not UTF-8 at byte 8");
	REFUSED("{\"cmd\":\"\xc0\xaf\"}", "a string that is not UTF-8 at byte 8"); /* overlong */
	REFUSED("{\"cmd\":\"\xed\xa0\x80\"}",
		"a string that is not UTF-8 at byte 8"); /* surrogate */
	REFUSED("{\"cmd\":\"\xf4\x90\x80\x80\"}", "a string that is not UTF-8 at byte 8");
	REFUSED("{\"cmd\":\"a\0b\"}", "a control character in a string at byte 9");
	REFUSED("{\"c\\u0000\":\"a\"}", "\\u0000 in a string at byte 9");

	memset(big, ' ', sizeof(big));
	memcpy(big, "{\"cmd\":\"stats\"}", 15);
	parse_refused(big, CONTROL_REQUEST_MAX + 1, "the request is longer than 4096 bytes");
	parse_ok("{\"cmd\":\"stats\"}", "stats", NULL, NULL);
	{
		struct control_request r;
		char why[64];

		/* Exactly the limit is fine. */
		assert_int_equal(
			control_request_parse(&r, big, CONTROL_REQUEST_MAX, why, sizeof(why)), 0);
	}
}

/* ---- the general reader ---- */

struct trail {
	char text[1024];
};

static int record(void *arg, const struct control_json_item *it, char *why, size_t whysz)
{
	static const char *const types[] = { "str", "num", "bool", "null", "obj", "arr" };
	struct trail *t = arg;
	size_t n = strlen(t->text);

	snprintf(t->text + n, sizeof(t->text) - n, "%s%s|%s|%u|%s=%.*s", n ? " " : "", it->path,
		 it->key, it->depth, types[it->type], it->val ? (int)it->len : 0,
		 it->val ? it->val : "");
	return 0;
}

static void walk_ok(const char *text, unsigned depth, const char *want)
{
	struct trail t = { "" };
	char why[256] = "";

	if (control_json_walk(text, strlen(text), depth, record, &t, why, sizeof(why)))
		fail_msg("%s refused: %s", text, why);
	if (strcmp(t.text, want) != 0)
		fail_msg("%s:\n got  %s\n want %s", text, t.text, want);
}

static void walk_refused(const char *text, unsigned depth, const char *why_want)
{
	struct trail t = { "" };
	char why[256] = "";

	if (control_json_walk(text, strlen(text), depth, record, &t, why, sizeof(why)) != EBADMSG)
		fail_msg("%s accepted", text);
	if (strcmp(why, why_want) != 0)
		fail_msg("%s: refused with \"%s\", want \"%s\"", text, why, why_want);
}

static void test_walk(void **state)
{
	walk_ok("{\"ok\":true,\"sip\":{\"n\":-0.5e+10,\"m\":0},\"calls\":[{\"id\":\"a\"},[],null]}",
		8,
		"||0|obj= ok|ok|1|bool=true sip|sip|1|obj= sip.n|n|2|num=-0.5e+10 "
		"sip.m|m|2|num=0 calls|calls|1|arr= calls.0|0|2|obj= calls.0.id|id|3|str=a "
		"calls.1|1|2|arr= calls.2|2|2|null=null");
	walk_ok(" 12 ", 0, "||0|num=12");
	walk_ok("[]", 0, "||0|arr=");
	walk_ok("false", 0, "||0|bool=false");
	walk_refused("01", 0, "text after the JSON value at byte 1");
	walk_refused("1.", 0, "a malformed number at byte 2");
	walk_refused("-", 0, "a malformed number at byte 1");
	walk_refused("1e", 0, "a malformed number at byte 2");
	walk_refused("+1", 0, "expected a value at byte 0");
	walk_refused("tru", 0, "expected a value at byte 0");
	walk_refused("[1,]", 1, "expected a value at byte 3");
	walk_refused("[1 2]", 1, "expected ',' or ']' in an array at byte 3");
	walk_refused("{\"a\":[1]}", 1, "values nested too deep at byte 6");
	walk_refused("[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]", 100,
		     "values nested too deep at byte 17");
}

/* ---- the escaper ---- */

static void test_escape(void **state)
{
	static const char in[] = "a\"b\\c/\n\r\t\x01\x1f\x7f \xc3\xa9 \xff \xe2\x82";
	static const char want[] = "a\\\"b\\\\c/\\n\\r\\t\\u0001\\u001f\\u007f \xc3\xa9 \\ufffd "
				   "\\ufffd\\ufffd";
	char out[128], small[8];

	assert_int_equal(control_json_escape(out, sizeof(out), in, sizeof(in) - 1),
			 sizeof(want) - 1);
	assert_string_equal(out, want);
	/* snprintf-like, and never half an escape. */
	assert_int_equal(control_json_escape(NULL, 0, in, sizeof(in) - 1), sizeof(want) - 1);
	assert_int_equal(control_json_escape(small, sizeof(small), "ab\"cd", 5), 6);
	assert_string_equal(small, "ab\\\"cd");
	assert_int_equal(control_json_escape(small, 4, "ab\"cd", 5), 6);
	assert_string_equal(small, "ab");
	assert_int_equal(control_json_escape(small, sizeof(small), "", 0), 0);
	assert_string_equal(small, "");
}

/* ---- the request path with fake providers ---- */

struct fake {
	int drained, reloads;
	int reload_err;
	bool misuse;
};
static struct fake fake;

static int fake_stats(void *arg, struct control_out *o)
{
	control_out_str(o, "version", "1.2.3");
	control_out_uint(o, "uptime_seconds", 42);
	control_out_int(o, "delta", -7);
	control_out_bool(o, "draining", false);
	control_out_begin_object(o, "sip");
	control_out_uint(o, "requests", 18446744073709551615ull);
	control_out_str(o, "odd \"key\"", "line\nbreak");
	control_out_end_object(o);
	if (fake.misuse)
		control_out_str(o, NULL, "no key in an object");
	return 0;
}

static int fake_calls(void *arg, struct control_out *o)
{
	control_out_begin_array(o, "calls");
	control_out_begin_object(o, NULL);
	control_out_str(o, "id", "c1");
	control_out_begin_array(o, "epochs");
	control_out_uint(o, NULL, 1);
	control_out_uint(o, NULL, 2);
	control_out_end_array(o);
	control_out_end_object(o);
	control_out_begin_array(o, NULL);
	control_out_end_array(o);
	control_out_end_array(o);
	return 0;
}

static int fake_trunks(void *arg, struct control_out *o)
{
	control_out_begin_array(o, "trunks");
	control_out_begin_object(o, NULL);
	control_out_str(o, "name", "ivr");
	control_out_bool(o, "healthy", false);
	control_out_end_object(o);
	control_out_end_array(o);
	return 0;
}

static int fake_call(void *arg, const char *id, struct control_out *o)
{
	return control_out_fail(o, ENOENT, "no call with id %s", id);
}

static int fake_reload(void *arg, char *err, size_t errsz)
{
	fake.reloads++;
	if (fake.reload_err)
		snprintf(err, errsz, "the config has errors: see the log");
	return fake.reload_err;
}

static void fake_drain(void *arg)
{
	fake.drained++;
}

static const struct control_providers providers = {
	.stats = fake_stats,
	.calls = fake_calls,
	.call = fake_call,
	.trunks = fake_trunks,
	.reload = fake_reload,
	.drain = fake_drain,
};

static void handle(const struct control_providers *p, const char *line, int err_want,
		   const char *want)
{
	struct evbuffer *b = evbuffer_new();
	char *got;
	size_t n;
	int err;

	assert_non_null(b);
	err = control_handle(p, line, strlen(line), b);
	n = evbuffer_get_length(b);
	got = calloc(1, n + 1);
	assert_non_null(got);
	evbuffer_remove(b, got, n);
	if (strcmp(got, want) != 0)
		fail_msg("%s:\n got  %s want %s", line, got, want);
	if ((err == 0) != (err_want == 0))
		fail_msg("%s: returned %d, want %d", line, err, err_want);
	free(got);
	evbuffer_free(b);
}

static void test_handle(void **state)
{
	static const struct control_providers none = { 0 };

	memset(&fake, 0, sizeof(fake));
	handle(&providers, "{\"cmd\":\"stats\"}", 0,
	       "{\"ok\":true,\"version\":\"1.2.3\",\"uptime_seconds\":42,\"delta\":-7,"
	       "\"draining\":false,\"sip\":{\"requests\":18446744073709551615,"
	       "\"odd \\\"key\\\"\":\"line\\nbreak\"}}\n");
	handle(&providers, "{\"cmd\":\"calls\"}", 0,
	       "{\"ok\":true,\"calls\":[{\"id\":\"c1\",\"epochs\":[1,2]},[]]}\n");
	handle(&providers, "{\"cmd\":\"call\",\"id\":\"x\\\"y\"}", ENOENT,
	       "{\"ok\":false,\"error\":\"no call with id x\\\"y\"}\n");
	handle(&providers, "{\"cmd\":\"call\"}", EINVAL,
	       "{\"ok\":false,\"error\":\"call needs \\\"id\\\"\"}\n");
	handle(&providers, "{\"cmd\":\"stats\",\"level\":\"x\"}", EINVAL,
	       "{\"ok\":false,\"error\":\"stats takes no \\\"level\\\"\"}\n");
	handle(&providers, "{\"cmd\":\"peers\"}", EINVAL,
	       "{\"ok\":false,\"error\":\"unknown command \\\"peers\\\"\"}\n");
	handle(&providers, "{\"cmd\":\"trunks\"}", 0,
	       "{\"ok\":true,\"trunks\":[{\"name\":\"ivr\",\"healthy\":false}]}\n");
	handle(&providers, "{\"cmd\":", EBADMSG,
	       "{\"ok\":false,\"error\":\"expected a value at byte 7\"}\n");

	handle(&providers, "{\"cmd\":\"reload\"}", 0, "{\"ok\":true}\n");
	fake.reload_err = EINVAL;
	handle(&providers, "{\"cmd\":\"reload\"}", EINVAL,
	       "{\"ok\":false,\"error\":\"the config has errors: see the log\"}\n");
	assert_int_equal(fake.reloads, 2);
	handle(&providers, "{\"cmd\":\"drain\"}", 0, "{\"ok\":true}\n");
	assert_int_equal(fake.drained, 1);

	/* A provider's misuse of the writer never reaches the client as bad JSON. */
	fake.misuse = true;
	handle(&providers, "{\"cmd\":\"stats\"}", EINVAL,
	       "{\"ok\":false,\"error\":\"internal error: the reply could not be written "
	       "(Invalid argument)\"}\n");
	fake.misuse = false;

	handle(&none, "{\"cmd\":\"calls\"}", ENOTSUP,
	       "{\"ok\":false,\"error\":\"calls is not available in this daemon\"}\n");
}

static void test_log_level(void **state)
{
	enum log_level saved = log_current_level;

	log_set_level(LOG_LVL_INFO);
	handle(&providers, "{\"cmd\":\"log-level\",\"level\":\"debug\"}", 0,
	       "{\"ok\":true,\"level\":\"debug\",\"previous\":\"info\"}\n");
	assert_int_equal(log_current_level, LOG_LVL_DEBUG);
	handle(&providers, "{\"cmd\":\"log-level\",\"level\":\"loud\"}", EINVAL,
	       "{\"ok\":false,\"error\":\"unknown log level \\\"loud\\\": use error, warn, info "
	       "or debug\"}\n");
	assert_int_equal(log_current_level, LOG_LVL_DEBUG);
	handle(&providers, "{\"cmd\":\"log-level\"}", EINVAL,
	       "{\"ok\":false,\"error\":\"log-level needs \\\"level\\\"\"}\n");
	log_set_level(saved);
}

/* ---- the socket ---- */

struct sockfix {
	char dir[64];
	char path[128];
	struct event_base *base;
	struct control *c;
};

static int sock_setup(void **state)
{
	struct sockfix *f = calloc(1, sizeof(*f));
	char why[256] = "";

	assert_non_null(f);
	signal(SIGPIPE, SIG_IGN); /* the daemon does this in daemon_create() */
	strcpy(f->dir, "/tmp/srtpbridge-ctl-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/control.sock", f->dir);
	f->base = event_base_new();
	assert_non_null(f->base);
	memset(&fake, 0, sizeof(fake));
	if (control_create(&f->c, f->base, f->path, &providers, why, sizeof(why)))
		fail_msg("control_create: %s", why);
	*state = f;
	return 0;
}

static int sock_teardown(void **state)
{
	struct sockfix *f = *state;

	control_destroy(f->c);
	event_base_free(f->base);
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static int client_at(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	strcpy(sa.sun_path, path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static int client(const struct sockfix *f)
{
	return client_at(f->path);
}

static long long ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs the loop until fd has lines newline-terminated lines or EOF (2 s at
 * most); returns what was read. *eof tells whether the server closed. */
static char *read_lines(struct sockfix *f, int fd, int lines, bool *eof)
{
	static char buf[16384];
	size_t len = 0;
	long long deadline = ms_now() + 2000;
	int seen = 0;

	*eof = false;
	while (seen < lines && ms_now() < deadline) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		event_base_loop(f->base, EVLOOP_NONBLOCK);
		poll(&pfd, 1, 5);
		n = recv(fd, buf + len, sizeof(buf) - 1 - len, MSG_DONTWAIT);
		if (n == 0) {
			*eof = true;
			break;
		}
		if (n < 0)
			continue;
		for (ssize_t i = 0; i < n; i++)
			seen += buf[len + (size_t)i] == '\n';
		len += (size_t)n;
	}
	buf[len] = '\0';
	return buf;
}

/* After the replies: does the server close the connection within a while? */
static bool closed_soon(struct sockfix *f, int fd)
{
	bool eof;

	read_lines(f, fd, 1, &eof);
	return eof;
}

static void send_all(int fd, const char *s, size_t n)
{
	assert_int_equal(send(fd, s, n, MSG_NOSIGNAL), (ssize_t)n);
}

static void test_socket_mode_and_requests(void **state)
{
	struct sockfix *f = *state;
	static const char two[] = "{\"cmd\":\"calls\"}\n{\"cmd\":\"nosuch\"}\n";
	struct stat st;
	bool eof;
	int fd;

	assert_int_equal(lstat(f->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0660);

	/* Two requests in one write, two replies in order, connection kept. */
	fd = client(f);
	send_all(fd, two, sizeof(two) - 1);
	assert_string_equal(read_lines(f, fd, 2, &eof),
			    "{\"ok\":true,\"calls\":[{\"id\":\"c1\",\"epochs\":[1,2]},[]]}\n"
			    "{\"ok\":false,\"error\":\"unknown command \\\"nosuch\\\"\"}\n");
	send_all(fd, "{\"cmd\":\"sta", 11);
	event_base_loop(f->base, EVLOOP_NONBLOCK);
	send_all(fd, "ts\"}\n", 5);
	assert_string_equal(read_lines(f, fd, 1, &eof),
			    "{\"ok\":true,\"version\":\"1.2.3\",\"uptime_seconds\":42,\"delta\":-7,"
			    "\"draining\":false,\"sip\":{\"requests\":18446744073709551615,"
			    "\"odd \\\"key\\\"\":\"line\\nbreak\"}}\n");
	/* A last request without its newline is answered at the client's EOF. */
	send_all(fd, "{\"cmd\":\"drain\"}", 15);
	shutdown(fd, SHUT_WR);
	assert_string_equal(read_lines(f, fd, 1, &eof), "{\"ok\":true}\n");
	assert_int_equal(fake.drained, 1);
	assert_true(closed_soon(f, fd));
	close(fd);
}

static void test_socket_oversize(void **state)
{
	struct sockfix *f = *state;
	char *big = malloc(CONTROL_REQUEST_MAX + 100);
	bool eof;
	int fd;

	assert_non_null(big);
	/* No newline at all: refused once more than the limit is buffered. */
	fd = client(f);
	memset(big, 'x', CONTROL_REQUEST_MAX + 100);
	send_all(fd, big, CONTROL_REQUEST_MAX + 100);
	assert_string_equal(read_lines(f, fd, 1, &eof),
			    "{\"ok\":false,\"error\":\"the request is longer than 4096 bytes\"}\n");
	assert_true(closed_soon(f, fd));
	close(fd);

	/* A long line with its newline arriving in the same read. */
	fd = client(f);
	big[CONTROL_REQUEST_MAX + 1] = '\n';
	send_all(fd, big, CONTROL_REQUEST_MAX + 2);
	assert_string_equal(read_lines(f, fd, 1, &eof),
			    "{\"ok\":false,\"error\":\"the request is longer than 4096 bytes\"}\n");
	assert_true(closed_soon(f, fd));
	close(fd);
	free(big);
}

static void test_socket_client_limit(void **state)
{
	struct sockfix *f = *state;
	int fds[CONTROL_MAX_CLIENTS + 1];
	bool eof;

	for (int i = 0; i < CONTROL_MAX_CLIENTS; i++) {
		fds[i] = client(f);
		event_base_loop(f->base, EVLOOP_NONBLOCK);
	}
	fds[CONTROL_MAX_CLIENTS] = client(f);
	assert_string_equal(read_lines(f, fds[CONTROL_MAX_CLIENTS], 1, &eof),
			    "{\"ok\":false,\"error\":\"too many control clients\"}\n");
	assert_true(closed_soon(f, fds[CONTROL_MAX_CLIENTS]));
	close(fds[CONTROL_MAX_CLIENTS]);
	/* The others still work, and a slot frees when one leaves. */
	send_all(fds[0], "{\"cmd\":\"reload\"}\n", 17);
	assert_string_equal(read_lines(f, fds[0], 1, &eof), "{\"ok\":true}\n");
	close(fds[0]);
	for (int i = 0; i < 20; i++)
		event_base_loop(f->base, EVLOOP_NONBLOCK);
	fds[0] = client(f);
	send_all(fds[0], "{\"cmd\":\"drain\"}\n", 16);
	assert_string_equal(read_lines(f, fds[0], 1, &eof), "{\"ok\":true}\n");
	for (int i = 0; i < CONTROL_MAX_CLIENTS; i++)
		close(fds[i]);
}

static void test_socket_reply_flushed_at_destroy(void **state)
{
	struct sockfix *f = *state;
	char buf[64] = "";
	ssize_t n;
	int fd = client(f);

	/* The daemon's loop ends right after "drain": the reply must still go. */
	send_all(fd, "{\"cmd\":\"drain\"}\n", 16);
	for (int i = 0; i < 200 && !fake.drained; i++) {
		event_base_loop(f->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		poll(NULL, 0, 1);
	}
	assert_int_equal(fake.drained, 1);
	control_destroy(f->c);
	f->c = NULL;
	n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	assert_int_equal(n, 12);
	assert_string_equal(buf, "{\"ok\":true}\n");
	close(fd);
	/* Its socket file went with it. */
	assert_int_equal(access(f->path, F_OK), -1);
}

static void test_socket_files(void **state)
{
	struct sockfix *f = *state;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct control *c2 = NULL;
	char why[256] = "", path[160], longpath[200];
	struct stat st;
	int fd;

	/* A live socket is not taken over. */
	assert_int_equal(control_create(&c2, f->base, f->path, &providers, why, sizeof(why)),
			 EADDRINUSE);
	snprintf(path, sizeof(path), "another process is listening on %s", f->path);
	assert_string_equal(why, path);
	assert_int_equal(lstat(f->path, &st), 0); /* and still there */

	/* A dead one is. */
	snprintf(path, sizeof(path), "%s/stale.sock", f->dir);
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	assert_int_equal(control_create(&c2, f->base, path, &providers, why, sizeof(why)), 0);
	fd = client_at(path);
	close(fd);
	control_destroy(c2);
	assert_int_equal(access(path, F_OK), -1);

	/* A file that is not a socket is left alone. */
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(control_create(&c2, f->base, path, &providers, why, sizeof(why)), EEXIST);
	snprintf(longpath, sizeof(longpath), "%s exists and is not a socket", path);
	assert_string_equal(why, longpath);
	unlink(path);

	/* A missing directory, a path too long for sun_path. */
	snprintf(path, sizeof(path), "%s/nodir/c.sock", f->dir);
	assert_int_equal(control_create(&c2, f->base, path, &providers, why, sizeof(why)), ENOENT);
	snprintf(longpath, sizeof(longpath), "cannot bind %s: %s", path, strerror(ENOENT));
	assert_string_equal(why, longpath);
	memset(longpath, 'a', sizeof(longpath));
	longpath[0] = '/';
	longpath[150] = '\0';
	assert_int_equal(control_create(&c2, f->base, longpath, &providers, why, sizeof(why)),
			 ENAMETOOLONG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_accepts),
		cmocka_unit_test(test_parse_refuses),
		cmocka_unit_test(test_walk),
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_handle),
		cmocka_unit_test(test_log_level),
		cmocka_unit_test_setup_teardown(test_socket_mode_and_requests, sock_setup,
						sock_teardown),
		cmocka_unit_test_setup_teardown(test_socket_oversize, sock_setup, sock_teardown),
		cmocka_unit_test_setup_teardown(test_socket_client_limit, sock_setup,
						sock_teardown),
		cmocka_unit_test_setup_teardown(test_socket_reply_flushed_at_destroy, sock_setup,
						sock_teardown),
		cmocka_unit_test_setup_teardown(test_socket_files, sock_setup, sock_teardown),
	};

	return cmocka_run_group_tests_name("control", tests, NULL, NULL);
}
