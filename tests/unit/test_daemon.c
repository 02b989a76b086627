/* Lifecycle: the sd_notify sequence seen on a fake NOTIFY_SOCKET, reload that
 * keeps the old snapshot on a bad file (seen through log_level's effect),
 * drain that waits for calls or for drain_timeout, and a watchdog fed only
 * while every heartbeat source reports, and the descriptor limit raised and
 * weighed against the config. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "srtpbridge/config.h"
#include "srtpbridge/daemon.h"
#include "srtpbridge/log.h"
#include "srtpbridge/transport.h"

struct fixture {
	char dir[64];
	char cfg_path[128];
	char sock_path[128];
	int sock;
	struct event_base *base;
	struct daemon *d;
};

static void write_config(struct fixture *f, const char *global_extra)
{
	FILE *fp = fopen(f->cfg_path, "w");

	assert_non_null(fp);
	fprintf(fp,
		"[global]\n%s\nmedia_ports = 30000-30999\n"
		"[trunk:a]\nlisten = udp:127.0.0.1:5060\npeers = udp:127.0.0.1:5090\nroute = b\n"
		"[trunk:b]\nlisten = udp:127.0.0.1:5070\npeers = udp:127.0.0.1:5080\n",
		global_extra);
	fclose(fp);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct config_problems probs = { 0 };
	struct config *cfg = NULL;
	struct timeval tv = { 0, 10000 };

	assert_non_null(f);
	strcpy(f->dir, "/tmp/srtpbridge-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->cfg_path, sizeof(f->cfg_path), "%s/srtpbridge.ini", f->dir);
	snprintf(f->sock_path, sizeof(f->sock_path), "%s/notify", f->dir);
	f->sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(f->sock >= 0);
	strcpy(sa.sun_path, f->sock_path);
	assert_int_equal(bind(f->sock, (struct sockaddr *)&sa, sizeof(sa)), 0);
	/* Short receive timeout: a missing message fails the test, not hangs it. */
	tv.tv_sec = 2;
	tv.tv_usec = 0;
	setsockopt(f->sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setenv("NOTIFY_SOCKET", f->sock_path, 1);
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");

	write_config(f, "log_level = info\ndrain_timeout = 1");
	assert_int_equal(config_load(f->cfg_path, 0, &cfg, &probs), 0);
	config_problems_free(&probs);
	log_set_level(cfg->global.log_level);
	f->base = event_base_new();
	assert_non_null(f->base);
	assert_int_equal(daemon_create(&f->d, f->base, f->cfg_path, cfg), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	daemon_destroy(f->d);
	event_base_free(f->base);
	close(f->sock);
	unlink(f->sock_path);
	unlink(f->cfg_path);
	rmdir(f->dir);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	free(f);
	return 0;
}

static char *next_notify(struct fixture *f, char *buf, size_t size)
{
	ssize_t n = recv(f->sock, buf, size - 1, 0);

	if (n < 0)
		return NULL;
	buf[n] = '\0';
	return buf;
}

static void expect_notify(struct fixture *f, const char *prefix)
{
	char buf[512];
	char *m = next_notify(f, buf, sizeof(buf));

	if (!m)
		fail_msg("no notification; expected '%s'", prefix);
	if (strncmp(m, prefix, strlen(prefix)) != 0)
		fail_msg("notification '%s'; expected '%s'", m, prefix);
}

static bool pending_notify(struct fixture *f, char *buf, size_t size)
{
	ssize_t n = recv(f->sock, buf, size - 1, MSG_DONTWAIT);

	if (n < 0)
		return false;
	buf[n] = '\0';
	return true;
}

static void test_notify_sequence_and_reload(void **state)
{
	struct fixture *f = *state;
	struct config *before;
	char buf[512];
	unsigned long long usec = 0;

	daemon_ready(f->d);
	expect_notify(f, "READY=1\nSTATUS=ready: 2 trunks");

	/* A good file: applied, log_level takes effect at once. */
	write_config(f, "log_level = debug\ndrain_timeout = 1");
	assert_int_equal(daemon_reload(f->d), 0);
	assert_non_null(next_notify(f, buf, sizeof(buf)));
	assert_int_equal(sscanf(buf, "RELOADING=1\nMONOTONIC_USEC=%llu", &usec), 1);
	assert_true(usec > 0);
	expect_notify(f, "READY=1\nSTATUS=config reloaded");
	assert_true(log_enabled(LOG_LVL_DEBUG));
	assert_int_equal(daemon_config(f->d)->global.log_level, LOG_LVL_DEBUG);

	/* A bad file asking for log_level = error: refused whole, debug stays. */
	before = daemon_config(f->d);
	write_config(f, "log_level = error\nbogus = 1");
	assert_int_equal(daemon_reload(f->d), EINVAL);
	expect_notify(f, "RELOADING=1\nMONOTONIC_USEC=");
	expect_notify(f, "READY=1\nSTATUS=reload failed");
	assert_ptr_equal(daemon_config(f->d), before);
	assert_true(log_enabled(LOG_LVL_DEBUG));

	/* A missing file is a failed reload too, not a crash or an empty config. */
	unlink(f->cfg_path);
	assert_int_equal(daemon_reload(f->d), EINVAL);
	expect_notify(f, "RELOADING=1");
	expect_notify(f, "READY=1\nSTATUS=reload failed");
	assert_ptr_equal(daemon_config(f->d), before);

	daemon_drain(f->d);
	expect_notify(f, "STOPPING=1");
	assert_int_equal(daemon_state(f->d), DAEMON_STOPPED);
	assert_false(pending_notify(f, buf, sizeof(buf)));
	log_set_level(LOG_LVL_INFO);
}

static void raise_cb(evutil_socket_t fd, short what, void *arg)
{
	raise((int)(intptr_t)arg);
}

/* The same through real signals and the running loop. */
static void test_signals(void **state)
{
	struct fixture *f = *state;
	struct timeval t1 = { 0, 20000 }, t2 = { 0, 60000 };

	daemon_ready(f->d);
	expect_notify(f, "READY=1");
	event_base_once(f->base, -1, EV_TIMEOUT, raise_cb, (void *)(intptr_t)SIGHUP, &t1);
	event_base_once(f->base, -1, EV_TIMEOUT, raise_cb, (void *)(intptr_t)SIGTERM, &t2);
	assert_int_equal(event_base_dispatch(f->base), 0);
	expect_notify(f, "RELOADING=1");
	expect_notify(f, "READY=1");
	expect_notify(f, "STOPPING=1");
	assert_int_equal(daemon_state(f->d), DAEMON_STOPPED);
}

static void release_cb(evutil_socket_t fd, short what, void *arg)
{
	daemon_release(arg);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_drain_waits_for_calls(void **state)
{
	struct fixture *f = *state;
	struct timeval t = { 0, 50000 };

	daemon_hold(f->d);
	daemon_hold(f->d);
	daemon_drain(f->d);
	assert_int_equal(daemon_state(f->d), DAEMON_DRAINING);
	event_base_once(f->base, -1, EV_TIMEOUT, release_cb, f->d, &t);
	event_base_once(f->base, -1, EV_TIMEOUT, release_cb, f->d, &t);
	assert_int_equal(event_base_dispatch(f->base), 0);
	assert_int_equal(daemon_state(f->d), DAEMON_STOPPED);
	assert_int_equal(daemon_busy(f->d), 0);
	/* reloads are not taken while draining; a second stop signal stops */
}

static void test_drain_timeout(void **state)
{
	struct fixture *f = *state;
	double t0;

	daemon_hold(f->d); /* a call that never ends */
	t0 = now();
	daemon_drain(f->d);
	assert_int_equal(event_base_dispatch(f->base), 0);
	/* drain_timeout = 1 in the fixture's file */
	assert_true(now() - t0 >= 0.9);
	assert_int_equal(daemon_state(f->d), DAEMON_STOPPED);
	assert_int_equal(daemon_busy(f->d), 1);
}

static void test_second_stop_signal(void **state)
{
	struct fixture *f = *state;

	daemon_hold(f->d);
	daemon_drain(f->d);
	assert_int_equal(daemon_state(f->d), DAEMON_DRAINING);
	daemon_drain(f->d);
	assert_int_equal(daemon_state(f->d), DAEMON_STOPPED);
}

struct beat {
	struct daemon *d;
	unsigned id;
	bool on;
	struct event *ev;
};

static void beat_cb(evutil_socket_t fd, short what, void *arg)
{
	struct beat *b = arg;

	if (b->on)
		daemon_heartbeat(b->d, b->id);
}

static void set_beat(evutil_socket_t fd, short what, void *arg)
{
	((struct beat *)arg)->on = !((struct beat *)arg)->on;
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopexit(arg, NULL);
}

static unsigned count_watchdog(struct fixture *f)
{
	char buf[256];
	unsigned n = 0;

	while (pending_notify(f, buf, sizeof(buf)))
		n += strcmp(buf, "WATCHDOG=1") == 0;
	return n;
}

static void run_for(struct fixture *f, long ms)
{
	struct timeval t = { ms / 1000, (ms % 1000) * 1000 };

	event_base_once(f->base, -1, EV_TIMEOUT, stop_cb, f->base, &t);
	event_base_dispatch(f->base);
}

static void test_watchdog_heartbeats(void **state)
{
	struct fixture *f = *state;
	struct beat b = { .d = f->d, .on = true };
	struct timeval every = { 0, 10000 };

	setenv("WATCHDOG_USEC", "100000", 1); /* ping every 50 ms */
	daemon_ready(f->d);
	expect_notify(f, "READY=1");
	assert_int_equal(daemon_heartbeat_register(f->d, &b.id), 0);
	b.ev = event_new(f->base, -1, EV_PERSIST, beat_cb, &b);
	event_add(b.ev, &every);

	run_for(f, 300);
	assert_true(count_watchdog(f) >= 3);

	/* A silent worker: systemd must stop hearing from us. */
	set_beat(-1, 0, &b);
	run_for(f, 120); /* let a ping that was already earned go out */
	count_watchdog(f);
	run_for(f, 300);
	assert_int_equal(count_watchdog(f), 0);

	set_beat(-1, 0, &b);
	run_for(f, 300);
	assert_true(count_watchdog(f) >= 3);
	event_free(b.ev);
}

/* In a child, since a lowered hard limit cannot always be raised again: a
 * hard limit of 3000, below the 5160 the config can take, gets the warning
 * and a share of three quarters. Returns the child's exit status (the
 * number of the failed check). */
static int fd_limit_below(struct fixture *f)
{
	int pipefd[2], status = -1;
	pid_t pid;

	assert_int_equal(pipe2(pipefd, O_CLOEXEC | O_NONBLOCK), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct rlimit rl = { .rlim_cur = 1024, .rlim_max = 3000 };
		struct daemon_fds fds;
		char line[1024];
		ssize_t n;

		if (setrlimit(RLIMIT_NOFILE, &rl))
			_exit(1);
		log_init(pipefd[1]);
		daemon_fd_limit(daemon_config(f->d), &fds);
		if (fds.limit != 3000 || fds.media != 2250 || fds.calls != 562)
			_exit(2);
		if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur != 3000)
			_exit(3);
		n = read(pipefd[0], line, sizeof(line) - 1);
		if (n <= 0)
			_exit(4);
		line[n] = '\0';
		if (!strstr(line, "level=warn") || !strstr(line, "limit=3000") ||
		    !strstr(line, "wanted=5160") || !strstr(line, "media_sockets_max=2250") ||
		    !strstr(line, "calls_at_most=562") || !strstr(line, "LimitNOFILE"))
			_exit(5);
		_exit(0);
	}
	close(pipefd[0]);
	close(pipefd[1]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/* The soft descriptor limit goes up to the hard one, the pool's share leaves
 * SIP connections and the rest theirs, and a limit below what the config
 * can take is one warning that names the figures. */
static void test_fd_limit(void **state)
{
	struct fixture *f = *state;
	struct rlimit saved, rl;
	struct daemon_fds fds;
	char line[1024] = "";
	int pipefd[2];
	ssize_t n;

	(void)f;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
	if (saved.rlim_max == RLIM_INFINITY || saved.rlim_max < 2048 ||
	    saved.rlim_max > (1ul << 20))
		skip();
	assert_int_equal(pipe2(pipefd, O_CLOEXEC | O_NONBLOCK), 0);
	rl = saved;
	rl.rlim_cur = 1024;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	log_init(pipefd[1]);
	/* media_ports = 30000-30999: 1000 ports */
	daemon_fd_limit(daemon_config(f->d), &fds);
	log_init(2);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	assert_int_equal(rl.rlim_cur, saved.rlim_max);
	assert_int_equal(fds.limit, saved.rlim_max);
	assert_int_equal(fds.wanted, 1000 + TRANSPORT_MAX_CONNS + 64);
	assert_true(fds.media + 4160 == fds.limit || fds.media == fds.limit - fds.limit / 4);
	assert_int_equal(fds.calls, fds.media / 4);
	n = read(pipefd[0], line, sizeof(line) - 1);
	if (fds.limit >= fds.wanted) {
		assert_true(n <= 0); /* nothing to say */
	} else {
		assert_true(n > 0);
		line[n] = '\0';
		assert_non_null(strstr(line, "level=warn"));
		assert_non_null(strstr(line, "file descriptor limit"));
		assert_non_null(strstr(line, "media_ports=1000"));
	}
	close(pipefd[0]);
	close(pipefd[1]);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
	assert_int_equal(fd_limit_below(f), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_notify_sequence_and_reload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_signals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drain_waits_for_calls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drain_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_second_stop_signal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_watchdog_heartbeats, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fd_limit, setup, teardown),
	};

	return cmocka_run_group_tests_name("daemon", tests, NULL, NULL);
}
