/* srtpbridgectl: asks the running daemon over its control socket (DESIGN.md
 * "Control socket and srtpbridgectl"). Exit status: 0 ok, 1 the daemon
 * refused, 2 cannot reach the daemon, 3 usage. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "srtpbridge/control.h"

#define DEFAULT_SOCKET "/run/srtpbridge/control.sock"
#define TIMEOUT_MS     5000
#define REPLY_MAX      (64u << 20) /* a reply larger than this is not our daemon's */

enum {
	EXIT_OK = 0,
	EXIT_REFUSED = 1,
	EXIT_UNREACHABLE = 2,
	EXIT_USAGE = 3
};

static void usage(FILE *f)
{
	fprintf(f, "usage: srtpbridgectl [-s SOCKET] [--json] COMMAND\n"
		   "commands:\n"
		   "  stats            counters, one 'key value' per line\n"
		   "  calls            calls in progress, one line each\n"
		   "  call ID          one call in detail\n"
		   "  trunks           each trunk's peers: up or down, why, OPTIONS round trip\n"
		   "  reload           reload the config (its errors are in the daemon's log)\n"
		   "  drain            take no new calls; the daemon exits after the last one\n"
		   "  log-level LEVEL  error, warn, info or debug, until the next reload\n"
		   "options:\n"
		   "  -s, --socket SOCKET  the control socket (default " DEFAULT_SOCKET ")\n"
		   "  --json               print the daemon's JSON reply as it is\n"
		   "exit status: 0 ok, 1 the daemon refused, 2 cannot reach the daemon, 3 usage\n");
}

/* ---- talking to the daemon ---- */

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on fd until the deadline; 0, ETIMEDOUT or errno. */
static int wait_fd(int fd, short events, long long deadline)
{
	struct pollfd pfd = { .fd = fd, .events = events };

	for (;;) {
		long long left = deadline - now_ms();
		int n;

		if (left <= 0)
			return ETIMEDOUT;
		n = poll(&pfd, 1, (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return errno;
	}
}

/* One request line out, one reply line back (returned new, without its
 * newline). 0, or an errno with a sentence in why. */
static int ask(const char *path, const char *req, size_t reqlen, char **reply, size_t *replylen,
	       char *why, size_t whysz)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	long long deadline = now_ms() + TIMEOUT_MS;
	size_t sent = 0, len = 0, cap = 0;
	char *buf = NULL, *nl = NULL;
	socklen_t elen = sizeof(int);
	int fd, err = 0, soerr = 0;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(why, whysz, "the socket path %s is too long", path);
		return ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = errno;
		snprintf(why, whysz, "cannot create a socket: %s", strerror(err));
		return err;
	}
	/* A full backlog makes a non-blocking unix connect() fail with EAGAIN
	 * rather than wait: retry until the deadline. */
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		err = errno;
		if (err == EINPROGRESS) {
			err = wait_fd(fd, POLLOUT, deadline);
			if (!err && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &elen) == 0)
				err = soerr;
			break;
		}
		if (err != EAGAIN && err != EINTR)
			break;
		if (now_ms() >= deadline) {
			err = ETIMEDOUT;
			break;
		}
		poll(NULL, 0, 20);
		err = 0;
	}
	if (err) {
		snprintf(why, whysz, "cannot connect to %s: %s", path, strerror(err));
		goto out;
	}
	while (sent < reqlen) {
		ssize_t n = send(fd, req + sent, reqlen - sent, MSG_NOSIGNAL);

		if (n >= 0) {
			sent += (size_t)n;
			continue;
		}
		err = errno;
		if (err == EAGAIN || err == EINTR)
			err = wait_fd(fd, POLLOUT, deadline);
		if (err) {
			snprintf(why, whysz, "cannot send to %s: %s", path, strerror(err));
			goto out;
		}
	}
	while (!nl) {
		ssize_t n;

		if (cap - len < 4096) {
			char *b = cap < REPLY_MAX ? realloc(buf, cap ? cap * 2 : 8192) : NULL;

			if (!b) {
				err = ENOMEM;
				snprintf(why, whysz, "the reply is too large");
				goto out;
			}
			buf = b;
			cap = cap ? cap * 2 : 8192;
		}
		n = recv(fd, buf + len, cap - len - 1, 0);
		if (n > 0) {
			nl = memchr(buf + len, '\n', (size_t)n);
			len += (size_t)n;
			continue;
		}
		err = n == 0 ? ECONNRESET : errno;
		if (err == EAGAIN || err == EINTR)
			err = wait_fd(fd, POLLIN, deadline);
		if (err) {
			snprintf(why, whysz, "%s",
				 err == ETIMEDOUT ? "no reply within 5 s"
				 : err == ECONNRESET
					 ? "the daemon closed the connection without a reply"
					 : strerror(err));
			goto out;
		}
	}
	*nl = '\0';
	*replylen = (size_t)(nl - buf);
	*reply = buf;
	buf = NULL;
out:
	close(fd);
	free(buf);
	return err;
}

/* ---- the reply ---- */

struct item {
	char *path;
	enum control_json_type type;
	char *val; /* NULL for containers */
	unsigned depth;
};

struct reply {
	struct item *v;
	size_t n, cap;
};

static int collect(void *arg, const struct control_json_item *it, char *why, size_t whysz)
{
	struct reply *r = arg;
	struct item *x;

	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 64;
		struct item *v = realloc(r->v, cap * sizeof(*v));

		if (!v) {
			snprintf(why, whysz, "out of memory");
			return ENOMEM;
		}
		r->v = v;
		r->cap = cap;
	}
	x = &r->v[r->n];
	x->path = strdup(it->path);
	x->val = it->val ? strndup(it->val, it->len) : NULL;
	x->type = it->type;
	x->depth = it->depth;
	if (!x->path || (it->val && !x->val)) {
		free(x->path);
		free(x->val);
		snprintf(why, whysz, "out of memory");
		return ENOMEM;
	}
	r->n++;
	return 0;
}

static void reply_free(struct reply *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->v[i].path);
		free(r->v[i].val);
	}
	free(r->v);
}

/* Returns borrowed: the value at path, or NULL. */
static const char *get(const struct reply *r, const char *path)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->v[i].path, path) == 0)
			return r->v[i].val;
	return NULL;
}

static const char *get_or(const struct reply *r, const char *prefix, const char *key,
			  const char *dflt)
{
	char path[300];
	const char *v;

	snprintf(path, sizeof(path), "%s.%s", prefix, key);
	v = get(r, path);
	return v ? v : dflt;
}

/* Every value under the reply but "ok", one "path value" per line. */
static void print_lines(const struct reply *r)
{
	for (size_t i = 0; i < r->n; i++) {
		const struct item *x = &r->v[i];

		if (x->depth == 0 || !x->val || strcmp(x->path, "ok") == 0)
			continue;
		printf("%s %s\n", x->path, x->val);
	}
}

/* One line per call; the fields a call's JSON object carries. */
static void print_calls(const struct reply *r)
{
	unsigned ncalls = 0;

	for (size_t i = 0; i < r->n; i++) {
		const struct item *x = &r->v[i];
		char trunks[160];

		if (x->depth != 2 || x->type != CONTROL_JSON_OBJECT ||
		    strncmp(x->path, "calls.", 6))
			continue;
		if (ncalls++ == 0)
			printf("%-16s %-24s %7s %-24s %10s %10s %8s %s\n", "ID", "TRUNKS", "AGE",
			       "SUITE", "PKTS_IN", "PKTS_OUT", "DECRYPT", "CAUSE");
		snprintf(trunks, sizeof(trunks), "%s->%s", get_or(r, x->path, "trunk_in", "-"),
			 get_or(r, x->path, "trunk_out", "-"));
		printf("%-16s %-24s %7s %-24s %10s %10s %8s %s\n", get_or(r, x->path, "id", "-"),
		       trunks, get_or(r, x->path, "age", "-"), get_or(r, x->path, "suite", "-"),
		       get_or(r, x->path, "packets_in", "-"),
		       get_or(r, x->path, "packets_out", "-"),
		       get_or(r, x->path, "decrypt_failures", "-"),
		       get_or(r, x->path, "cause", "-"));
	}
	if (!ncalls)
		printf("no calls\n");
}

/* One line per peer of each trunk. */
static void print_trunks(const struct reply *r)
{
	printf("%-16s %-32s %-8s %9s %5s %s\n", "TRUNK", "PEER", "STATE", "RTT_MS", "LAST",
	       "REASON");
	for (size_t i = 0; i < r->n; i++) {
		const struct item *x = &r->v[i];
		char trunk[300], rtt[32] = "-";
		const char *p, *v;

		/* trunks.N.peers.M */
		if (x->depth != 4 || x->type != CONTROL_JSON_OBJECT ||
		    strncmp(x->path, "trunks.", 7) || !(p = strstr(x->path, ".peers.")))
			continue;
		snprintf(trunk, sizeof(trunk), "%.*s.name", (int)(p - x->path), x->path);
		if ((v = get_or(r, x->path, "rtt_us", NULL)) != NULL)
			snprintf(rtt, sizeof(rtt), "%.3f", strtod(v, NULL) / 1000.0);
		v = get_or(r, x->path, "last_status", "0");
		printf("%-16s %-32s %-8s %9s %5s %s\n", get(r, trunk) ? get(r, trunk) : "-",
		       get_or(r, x->path, "uri", "-"), get_or(r, x->path, "state", "-"), rtt,
		       strcmp(v, "0") ? v : "-", get_or(r, x->path, "reason", ""));
	}
}

static void print_human(const char *cmd, const struct reply *r)
{
	if (strcmp(cmd, "calls") == 0)
		print_calls(r);
	else if (strcmp(cmd, "trunks") == 0)
		print_trunks(r);
	else if (strcmp(cmd, "reload") == 0)
		printf("config reloaded\n");
	else if (strcmp(cmd, "drain") == 0)
		printf("draining: no new calls; the daemon exits after the last one\n");
	else if (strcmp(cmd, "log-level") == 0)
		printf("log level %s (was %s)\n", get(r, "level") ? get(r, "level") : "?",
		       get(r, "previous") ? get(r, "previous") : "?");
	else
		print_lines(r);
}

/* ---- the command line ---- */

/* The request line for argv, with its newline; 0 or EXIT_USAGE. */
static int build_request(char *buf, size_t size, int argc, char **argv)
{
	static const struct {
		const char *name, *arg;
	} cmds[] = { { "stats", NULL },	      { "calls", NULL },  { "call", "id" },
		     { "trunks", NULL },      { "reload", NULL }, { "drain", NULL },
		     { "log-level", "level" } };
	char val[CONTROL_REQUEST_MAX];
	size_t i, n;

	if (argc < 1) {
		fprintf(stderr, "srtpbridgectl: no command\n");
		return EXIT_USAGE;
	}
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(cmds[i].name, argv[0]) == 0)
			break;
	if (i == sizeof(cmds) / sizeof(cmds[0])) {
		fprintf(stderr, "srtpbridgectl: unknown command '%s'\n", argv[0]);
		return EXIT_USAGE;
	}
	if (argc != (cmds[i].arg ? 2 : 1)) {
		fprintf(stderr, "srtpbridgectl: %s takes %s\n", cmds[i].name,
			cmds[i].arg ? (strcmp(cmds[i].arg, "id") == 0 ? "one ID" : "one LEVEL")
				    : "no argument");
		return EXIT_USAGE;
	}
	if (!cmds[i].arg) {
		snprintf(buf, size, "{\"cmd\":\"%s\"}\n", cmds[i].name);
		return 0;
	}
	if (control_json_escape(val, sizeof(val), argv[1], strlen(argv[1])) >= sizeof(val)) {
		fprintf(stderr, "srtpbridgectl: %s is too long\n", cmds[i].arg);
		return EXIT_USAGE;
	}
	n = (size_t)snprintf(buf, size, "{\"cmd\":\"%s\",\"%s\":\"%s\"}\n", cmds[i].name,
			     cmds[i].arg, val);
	if (n > CONTROL_REQUEST_MAX) {
		fprintf(stderr, "srtpbridgectl: %s is too long\n", cmds[i].arg);
		return EXIT_USAGE;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'J' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = DEFAULT_SOCKET, *ok;
	char req[CONTROL_REQUEST_MAX + 64], why[512], *line = NULL;
	struct reply r = { 0 };
	size_t len = 0;
	bool json = false;
	int c, rc;

	/* '+': options come before COMMAND, so an ID may start with '-'. */
	while ((c = getopt_long(argc, argv, "+s:h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			path = optarg;
			break;
		case 'J':
			json = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	rc = build_request(req, sizeof(req), argc - optind, argv + optind);
	if (rc) {
		usage(stderr);
		return rc;
	}
	if (ask(path, req, strlen(req), &line, &len, why, sizeof(why))) {
		fprintf(stderr, "srtpbridgectl: cannot reach the daemon: %s\n", why);
		return EXIT_UNREACHABLE;
	}
	rc = control_json_walk(line, len, CONTROL_JSON_DEPTH, collect, &r, why, sizeof(why));
	ok = rc ? NULL : get(&r, "ok");
	if (!ok) {
		fprintf(stderr, "srtpbridgectl: the daemon's reply is not understood: %s\n",
			rc ? why : "it has no \"ok\"");
		rc = EXIT_UNREACHABLE;
		goto out;
	}
	if (json)
		printf("%s\n", line);
	if (strcmp(ok, "true") == 0) {
		if (!json)
			print_human(argv[optind], &r);
		rc = EXIT_OK;
	} else {
		if (!json)
			fprintf(stderr, "srtpbridgectl: %s\n",
				get(&r, "error") ? get(&r, "error") : "the daemon refused");
		rc = EXIT_REFUSED;
	}
out:
	if (fflush(stdout) && rc == EXIT_OK)
		rc = EXIT_UNREACHABLE;
	reply_free(&r);
	free(line);
	return rc;
}
