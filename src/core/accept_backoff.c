/* A listener that runs out of descriptors pauses instead of spinning.
 *
 * libevent 2.1 hands a failed accept() to the listener's error callback and
 * leaves the listener enabled; the callback's argument is the accept
 * callback's, so this module puts itself in front of both and passes
 * accepted sockets on to the owner's callback. */
#include "srtpbridge/accept_backoff.h"
#include "srtpbridge/log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#define LOG_MODULE "accept"

struct accept_backoff {
	struct evconnlistener *l;
	evconnlistener_cb cb;
	void *arg;
	struct event resume;
	bool stopped;
	uint64_t pauses;
	/* Log lines: when the last one was written (0: never), and what
	 * happened since that no line has reported yet. */
	uint64_t last_line_ms;
	uint64_t pauses_unlogged, errors_unlogged;
	/* When the pauses since the last accepted connection began (0: not
	 * paused), and whether a warning told of them: then their end is
	 * logged too, whatever the time since the last line. */
	uint64_t paused_since_ms;
	bool paused_logged;
	char name[];
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The failures that a retry a moment later cannot fix before something is
 * freed: the pending connection would fail the same way on every turn. */
static bool lacks_resources(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

static bool may_log(const struct accept_backoff *ab, uint64_t now)
{
	return !ab->last_line_ms || now - ab->last_line_ms >= ACCEPT_BACKOFF_LOG_S * 1000u;
}

/* The soft limit, which is what EMFILE means, as text ("unlimited" exists). */
static const char *fd_limit(char *buf, size_t size)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return "unknown";
	if (rl.rlim_cur == RLIM_INFINITY)
		return "unlimited";
	snprintf(buf, size, "%llu", (unsigned long long)rl.rlim_cur);
	return buf;
}

static void on_accepted(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
			int salen, void *arg)
{
	struct accept_backoff *ab = arg;

	if (ab->paused_since_ms) {
		uint64_t now = now_ms();

		if (ab->paused_logged || may_log(ab, now)) {
			LOG_INFO(NULL, "accepting connections again", LF_S("listen", ab->name),
				 LF_U("paused_ms", now - ab->paused_since_ms),
				 LF_U("pauses_since_last_line", ab->pauses_unlogged));
			ab->pauses_unlogged = 0;
			ab->last_line_ms = now;
		}
		ab->paused_since_ms = 0;
		ab->paused_logged = false;
	}
	ab->cb(l, fd, sa, salen, ab->arg);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct accept_backoff *ab = arg;

	if (!ab->stopped)
		evconnlistener_enable(ab->l);
}

static void on_error(struct evconnlistener *l, void *arg)
{
	/* A quarter of a second: nginx waits 500 ms (accept_mutex_delay) and Go's
	 * net/http 5 ms doubling to 1 s. A retry costs one failed accept(), so
	 * four a second are nothing to the loop, while a descriptor freed is put
	 * to use within 250 ms, half of SIP's T1: a client waiting in the backlog
	 * sees a delay, not a failure. */
	static const struct timeval delay = { 0, ACCEPT_BACKOFF_PAUSE_MS * 1000 };
	struct accept_backoff *ab = arg;
	int err = EVUTIL_SOCKET_ERROR();
	uint64_t now = now_ms();
	char limit[24];

	if (!lacks_resources(err)) {
		/* Transient or the peer's doing (EPERM from a firewall, EPROTO):
		 * the next connection may well be accepted. */
		ab->errors_unlogged++;
		if (!may_log(ab, now))
			return;
		LOG_WARN(NULL, "cannot accept a connection; still listening",
			 LF_S("listen", ab->name), LF_S("error", strerror(err)),
			 LF_U("errors_since_last_line", ab->errors_unlogged));
		ab->errors_unlogged = 0;
		ab->last_line_ms = now;
		return;
	}
	evconnlistener_disable(l);
	evtimer_add(&ab->resume, &delay);
	ab->pauses++;
	ab->pauses_unlogged++;
	if (!ab->paused_since_ms)
		ab->paused_since_ms = now;
	if (!may_log(ab, now))
		return;
	LOG_WARN(NULL,
		 err == EMFILE || err == ENFILE
			 ? "cannot accept connections: out of file descriptors; accepting paused"
			 : "cannot accept connections: out of memory; accepting paused",
		 LF_S("listen", ab->name), LF_S("error", strerror(err)),
		 LF_S("fd_limit", fd_limit(limit, sizeof(limit))),
		 LF_U("pause_ms", ACCEPT_BACKOFF_PAUSE_MS),
		 LF_U("pauses_since_last_line", ab->pauses_unlogged));
	ab->pauses_unlogged = 0;
	ab->last_line_ms = now;
	ab->paused_logged = true;
}

int accept_backoff_attach(struct accept_backoff **out, struct evconnlistener *l,
			  evconnlistener_cb cb, void *arg, const char *name)
{
	size_t n = strlen(name) + 1;
	struct accept_backoff *ab = calloc(1, sizeof(*ab) + n);

	if (!ab) {
		evconnlistener_free(l);
		return ENOMEM;
	}
	ab->l = l;
	ab->cb = cb;
	ab->arg = arg;
	memcpy(ab->name, name, n);
	evtimer_assign(&ab->resume, evconnlistener_get_base(l), on_resume, ab);
	evconnlistener_set_error_cb(l, on_error);
	evconnlistener_set_cb(l, on_accepted, ab);
	*out = ab;
	return 0;
}

void accept_backoff_stop(struct accept_backoff *ab)
{
	ab->stopped = true;
	evtimer_del(&ab->resume);
	evconnlistener_disable(ab->l);
}

uint64_t accept_backoff_pauses(const struct accept_backoff *ab)
{
	return ab ? ab->pauses : 0;
}

void accept_backoff_free(struct accept_backoff *ab)
{
	if (!ab)
		return;
	evtimer_del(&ab->resume);
	evconnlistener_free(ab->l);
	free(ab);
}
