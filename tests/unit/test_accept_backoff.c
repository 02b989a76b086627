/* accept_backoff: a listener out of descriptors pauses instead of calling
 * accept() in a tight loop, takes the waiting connection once descriptors
 * are back, and says so in few log lines. The descriptors really run out:
 * RLIMIT_NOFILE is lowered and the rest of the table filled with dup(). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/listener.h>

#include "srtpbridge/accept_backoff.h"
#include "srtpbridge/log.h"

/* Low enough to fill with dup() at once; the test process holds far fewer. */
#define FD_LIMIT 64

struct fixture {
	struct event_base *base;
	struct evconnlistener *l;
	struct accept_backoff *ab;
	struct event deadline;
	bool timed_out;
	int client;
	unsigned accepted;
	bool wrong_arg; /* the owner's callback saw another arg or listener */
	int hogs[FD_LIMIT];
	int nhogs;
	struct rlimit saved;
	bool lowered;
	int logpipe[2];
	char log[16384];
	size_t loglen;
};

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
		      void *arg)
{
	struct fixture *f = arg;

	f->wrong_arg |= l != f->l;
	f->accepted++;
	close(fd);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	((struct fixture *)arg)->timed_out = true;
}

/* Runs the loop for ms, or until the first accepted connection when
 * until_accepted: a bound on the test's time, never an assertion on it. */
static void run_for(struct fixture *f, int ms, bool until_accepted)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	unsigned before = f->accepted;

	f->timed_out = false;
	evtimer_add(&f->deadline, &tv);
	while (!f->timed_out && !(until_accepted && f->accepted > before))
		event_base_loop(f->base, EVLOOP_ONCE);
	evtimer_del(&f->deadline);
}

/* Takes every descriptor left: the next accept() fails with EMFILE. */
static void exhaust_fds(struct fixture *f)
{
	struct rlimit low;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &f->saved), 0);
	low = f->saved;
	if (low.rlim_cur == RLIM_INFINITY || low.rlim_cur > FD_LIMIT)
		low.rlim_cur = FD_LIMIT;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	f->lowered = true;
	while (f->nhogs < FD_LIMIT) {
		int fd = dup(f->client);

		if (fd < 0)
			break;
		f->hogs[f->nhogs++] = fd;
	}
	assert_int_equal(dup(f->client), -1);
	assert_int_equal(errno, EMFILE);
}

static void release_fds(struct fixture *f)
{
	while (f->nhogs > 0)
		close(f->hogs[--f->nhogs]);
	if (f->lowered)
		setrlimit(RLIMIT_NOFILE, &f->saved);
	f->lowered = false;
}

/* The log lines written since the last call, appended to f->log. */
static const char *read_log(struct fixture *f)
{
	while (f->loglen < sizeof(f->log) - 1) {
		ssize_t n = read(f->logpipe[0], f->log + f->loglen, sizeof(f->log) - 1 - f->loglen);

		if (n <= 0)
			break;
		f->loglen += (size_t)n;
	}
	f->log[f->loglen] = '\0';
	return f->log;
}

static unsigned count(const char *hay, const char *needle)
{
	unsigned n = 0;

	for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t salen = sizeof(sa);

	assert_non_null(f);
	f->client = -1;
	assert_int_equal(pipe(f->logpipe), 0);
	fcntl(f->logpipe[0], F_SETFL, O_NONBLOCK);
	unsetenv("JOURNAL_STREAM");
	log_init(f->logpipe[1]);
	log_set_level(LOG_LVL_DEBUG);
	f->base = event_base_new();
	assert_non_null(f->base);
	evtimer_assign(&f->deadline, f->base, on_deadline, f);
	f->l = evconnlistener_new_bind(f->base, NULL, NULL,
				       LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16,
				       (struct sockaddr *)&sa, sizeof(sa));
	assert_non_null(f->l);
	assert_int_equal(accept_backoff_attach(&f->ab, f->l, on_accept, f, "tcp:test"), 0);
	assert_int_equal(getsockname(evconnlistener_get_fd(f->l), (struct sockaddr *)&sa, &salen),
			 0);
	/* connected by the kernel, waiting in the backlog for accept() */
	f->client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->client >= 0);
	assert_int_equal(connect(f->client, (struct sockaddr *)&sa, sizeof(sa)), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	release_fds(f);
	accept_backoff_free(f->ab);
	if (f->client >= 0)
		close(f->client);
	event_base_free(f->base);
	log_init(2);
	close(f->logpipe[0]);
	close(f->logpipe[1]);
	free(f);
	return 0;
}

static void test_pauses_then_accepts(void **state)
{
	struct fixture *f = *state;
	const char *log;

	exhaust_fds(f);
	run_for(f, 600, false);
	/* Spinning would have failed accept() thousands of times by now; one
	 * try per pause is at most one at start and one per 250 ms. */
	assert_int_equal(f->accepted, 0);
	assert_true(accept_backoff_pauses(f->ab) >= 1);
	assert_true(accept_backoff_pauses(f->ab) <= 4);
	log = read_log(f);
	assert_int_equal(count(log, "level=warn"), 1);
	assert_non_null(strstr(log, "msg=\"cannot accept connections: out of file descriptors; "
				    "accepting paused\""));
	assert_non_null(strstr(log, "listen=tcp:test"));
	assert_non_null(strstr(log, "fd_limit=64"));
	assert_non_null(strstr(log, "pauses_since_last_line=1"));
	assert_non_null(strstr(log, "Too many open files"));

	release_fds(f);
	run_for(f, 3000, true);
	assert_int_equal(f->accepted, 1);
	assert_false(f->wrong_arg);
	log = read_log(f);
	assert_int_equal(count(log, "msg=\"accepting connections again\""), 1);
	assert_int_equal(count(log, "level=warn"), 1);
}

/* A drain stops a paused listener for good: the resume must not undo it. */
static void test_stop_cancels_resume(void **state)
{
	struct fixture *f = *state;
	uint64_t pauses;

	exhaust_fds(f);
	run_for(f, 100, false);
	pauses = accept_backoff_pauses(f->ab);
	assert_int_equal(pauses, 1);
	release_fds(f);
	accept_backoff_stop(f->ab);
	run_for(f, 600, false);
	assert_int_equal(f->accepted, 0);
	assert_int_equal(accept_backoff_pauses(f->ab), pauses);
	assert_int_equal(event_base_get_num_events(f->base, EVENT_BASE_COUNT_ADDED), 0);
}

/* Freed in the middle of a pause: the timer goes with it (ASan sees a use
 * after free, and an added event would outlive its owner). */
static void test_free_while_paused(void **state)
{
	struct fixture *f = *state;

	exhaust_fds(f);
	run_for(f, 100, false);
	assert_int_equal(accept_backoff_pauses(f->ab), 1);
	accept_backoff_free(f->ab);
	f->ab = NULL;
	release_fds(f);
	assert_int_equal(event_base_get_num_events(f->base, EVENT_BASE_COUNT_ADDED), 0);
	run_for(f, 400, false);
	assert_int_equal(f->accepted, 0);
	assert_int_equal(accept_backoff_pauses(NULL), 0);
}

/* A socket that is no listener any more fails accept() with EINVAL, which
 * no pause mends: the listener stays on, and one line tells of it however
 * often it fails within ACCEPT_BACKOFF_LOG_S. */
static void test_other_errors_logged_once(void **state)
{
	struct fixture *f = *state;
	const char *log;

	assert_int_equal(shutdown(evconnlistener_get_fd(f->l), SHUT_RD), 0);
	run_for(f, 200, false);
	assert_int_equal(accept_backoff_pauses(f->ab), 0);
	log = read_log(f);
	assert_int_equal(count(log, "level=warn"), 1);
	assert_non_null(strstr(log, "msg=\"cannot accept a connection; still listening\""));
	assert_non_null(strstr(log, "errors_since_last_line=1"));
	assert_null(strstr(log, "accepting paused"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pauses_then_accepts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_cancels_resume, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_while_paused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_errors_logged_once, setup, teardown),
	};

	return cmocka_run_group_tests_name("accept_backoff", tests, NULL, NULL);
}
