/* Process lifecycle: reload, drain, and what systemd is told about each. */
#include "srtpbridge/daemon.h"
#include "srtpbridge/config.h"
#include "srtpbridge/log.h"
#include "srtpbridge/transport.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <event2/event.h>
#include <systemd/sd-daemon.h>

#define LOG_MODULE     "main"
#define MAX_HEARTBEATS 64
/* Descriptors besides media and SIP connections: listeners, the control
 * socket and its clients, two per media worker, the log, the resolver. */
#define FD_RESERVE 64
/* Linux's default fs.nr_open: a soft limit above it cannot be set. */
#define FD_CEILING (1ul << 20)

struct daemon {
	struct event_base *base;
	char *config_path;
	struct config *cfg;
	enum daemon_state state;
	struct event *ev_hup, *ev_term, *ev_int;
	struct event *ev_drain, *ev_watchdog;
	uint64_t watchdog_usec;
	unsigned busy;
	unsigned nheartbeats;
	uint64_t heartbeat_seen; /* bit i: source i reported since the last ping */
	bool watchdog_starved;
	struct daemon_hooks hooks;
};

static uint64_t monotonic_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* sd_notify returns 0 outside systemd and <0 on failure; neither stops us,
 * but a failure is worth one line (the watchdog would kill us otherwise). */
static void notify(const char *what)
{
	int rc = sd_notify(0, what);

	if (rc < 0)
		LOG_WARN(NULL, "sd_notify failed", LF_S("error", strerror(-rc)));
}

static void stop(struct daemon *d)
{
	if (d->state == DAEMON_STOPPED)
		return;
	d->state = DAEMON_STOPPED;
	if (d->ev_drain)
		evtimer_del(d->ev_drain);
	event_base_loopexit(d->base, NULL);
}

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;

	LOG_WARN(NULL, "drain timeout; stopping with calls in progress", LF_U("calls", d->busy),
		 LF_I("timeout", d->cfg->global.drain_timeout));
	stop(d);
}

void daemon_drain(struct daemon *d)
{
	struct timeval tv = { .tv_sec = d->cfg->global.drain_timeout };

	if (d->state == DAEMON_DRAINING) {
		LOG_WARN(NULL, "second stop signal; stopping now", LF_U("calls", d->busy));
		stop(d);
		return;
	}
	if (d->state != DAEMON_RUNNING)
		return;
	d->state = DAEMON_DRAINING;
	notify("STOPPING=1\nSTATUS=draining");
	LOG_INFO(NULL, "draining", LF_U("calls", d->busy),
		 LF_I("timeout", d->cfg->global.drain_timeout));
	if (d->hooks.draining)
		d->hooks.draining(d->hooks.arg);
	if (d->busy == 0) {
		stop(d);
		return;
	}
	evtimer_add(d->ev_drain, &tv);
}

struct restart_ctx {
	unsigned n;
};

static void report_restart_key(void *arg, const char *section, const char *key)
{
	struct restart_ctx *rc = arg;
	char name[128];

	snprintf(name, sizeof(name), "%s.%s", section, key);
	LOG_WARN(NULL, "changed key needs a restart", LF_S("key", name));
	rc->n++;
}

int daemon_reload(struct daemon *d)
{
	struct config_problems probs = { 0 };
	struct config *cfg = NULL;
	struct restart_ctx rc = { 0 };
	char buf[128];
	int err;

	LOG_DEBUG(NULL, "reload requested", LF_S("config", d->config_path));
	snprintf(buf, sizeof(buf), "RELOADING=1\nMONOTONIC_USEC=%" PRIu64, monotonic_usec());
	notify(buf);
	err = config_load(d->config_path, 0, &cfg, &probs);
	config_problems_log(&probs);
	if (err) {
		LOG_ERROR(NULL, "reload failed; keeping the running config",
			  LF_U("errors", probs.nerrors ? probs.nerrors : 1),
			  LF_S("config", d->config_path));
		config_problems_free(&probs);
		notify("READY=1\nSTATUS=reload failed; running with the previous config");
		return EINVAL;
	}
	config_problems_free(&probs);
	config_restart_keys_changed(d->cfg, cfg, report_restart_key, &rc);
	config_unref(d->cfg);
	d->cfg = cfg;
	log_set_level(cfg->global.log_level);
	if (d->hooks.reloaded)
		d->hooks.reloaded(d->hooks.arg, cfg);
	LOG_INFO(NULL, "config reloaded", LF_S("config", d->config_path),
		 LF_U("trunks", cfg->ntrunks), LF_U("routes", cfg->nroutes),
		 LF_U("restart_needed", rc.n));
	notify(rc.n ? "READY=1\nSTATUS=config reloaded; some changes need a restart"
		    : "READY=1\nSTATUS=config reloaded");
	return 0;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;

	if (sig == SIGHUP) {
		if (d->state == DAEMON_RUNNING)
			daemon_reload(d);
		else
			LOG_WARN(NULL, "reload ignored while draining");
		return;
	}
	LOG_DEBUG(NULL, "stop signal", LF_S("signal", sig == SIGINT ? "SIGINT" : "SIGTERM"));
	daemon_drain(d);
}

static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	uint64_t all = d->nheartbeats == 64 ? UINT64_MAX : ((1ULL << d->nheartbeats) - 1);
	uint64_t seen = __atomic_exchange_n(&d->heartbeat_seen, 0, __ATOMIC_ACQ_REL);

	/* The ping comes from this loop, so a wedged main loop starves systemd's
	 * watchdog by itself; a wedged media worker starves it through here. */
	if ((seen & all) == all) {
		if (d->watchdog_starved)
			LOG_INFO(NULL, "all heartbeats back; feeding the watchdog again");
		d->watchdog_starved = false;
		notify("WATCHDOG=1");
	} else if (!d->watchdog_starved) {
		d->watchdog_starved = true;
		LOG_ERROR(NULL, "a heartbeat source stopped reporting; not feeding the watchdog",
			  LF_U("missing", __builtin_popcountll(all & ~seen)));
	}
}

int daemon_create(struct daemon **out, struct event_base *base, const char *config_path,
		  struct config *cfg)
{
	struct daemon *d = calloc(1, sizeof(*d));
	int err = ENOMEM;

	if (!d)
		goto out;
	d->base = base;
	d->cfg = cfg;
	d->config_path = strdup(config_path);
	if (!d->config_path)
		goto out;
	signal(SIGPIPE, SIG_IGN);
	d->ev_hup = evsignal_new(base, SIGHUP, on_signal, d);
	d->ev_term = evsignal_new(base, SIGTERM, on_signal, d);
	d->ev_int = evsignal_new(base, SIGINT, on_signal, d);
	d->ev_drain = evtimer_new(base, on_drain_timeout, d);
	d->ev_watchdog = event_new(base, -1, EV_PERSIST, on_watchdog, d);
	if (!d->ev_hup || !d->ev_term || !d->ev_int || !d->ev_drain || !d->ev_watchdog)
		goto out;
	err = EIO;
	if (evsignal_add(d->ev_hup, NULL) || evsignal_add(d->ev_term, NULL) ||
	    evsignal_add(d->ev_int, NULL))
		goto out;
	err = 0;
out:
	if (err) {
		if (d)
			d->cfg = NULL; /* not ours on failure */
		daemon_destroy(d);
	} else {
		*out = d;
	}
	return err;
}

void daemon_destroy(struct daemon *d)
{
	if (!d)
		return;
	if (d->ev_hup)
		event_free(d->ev_hup);
	if (d->ev_term)
		event_free(d->ev_term);
	if (d->ev_int)
		event_free(d->ev_int);
	if (d->ev_drain)
		event_free(d->ev_drain);
	if (d->ev_watchdog)
		event_free(d->ev_watchdog);
	config_unref(d->cfg);
	free(d->config_path);
	free(d);
}

/* The soft limit; unknown or unlimited counts as the ceiling. */
static unsigned long soft_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur == RLIM_INFINITY)
		return FD_CEILING;
	return (unsigned long)rl.rlim_cur;
}

void daemon_fd_limit(const struct config *cfg, struct daemon_fds *out)
{
	unsigned long ports =
		(unsigned long)cfg->global.media_port_max - cfg->global.media_port_min + 1;
	unsigned long other;
	struct rlimit rl;

	*out = (struct daemon_fds){ .wanted = ports + TRANSPORT_MAX_CONNS + FD_RESERVE };
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < rl.rlim_max) {
		rlim_t cur = rl.rlim_cur;

		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > FD_CEILING
				      ? FD_CEILING
				      : rl.rlim_max;
		if (rl.rlim_cur > cur)
			(void)setrlimit(RLIMIT_NOFILE, &rl); /* failing, the limit stays */
	}
	out->limit = soft_limit();
	/* The pool would otherwise fill the whole limit with idle sockets, and
	 * the next SIP connection or control client would find none. */
	other = TRANSPORT_MAX_CONNS + FD_RESERVE;
	if (other > out->limit / 4)
		other = out->limit / 4;
	out->media = out->limit - other;
	out->calls = out->media / 4;
	if (out->limit >= out->wanted)
		return;
	/* The pool closes idle sockets when it must (portpool.h): this costs
	 * setup time, and calls past its share get 503. */
	LOG_WARN(NULL,
		 "the file descriptor limit is below what media_ports and SIP connections can "
		 "take: idle media sockets will be closed and opened again, and calls beyond the "
		 "limit get 503; raise LimitNOFILE (systemd) or ulimit -n",
		 LF_U("limit", out->limit), LF_U("wanted", out->wanted), LF_U("media_ports", ports),
		 LF_U("media_sockets_max", out->media), LF_U("calls_at_most", out->calls),
		 LF_I("max_calls", cfg->global.max_calls));
}

void daemon_fds_now(unsigned long *open, unsigned long *limit)
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *e;

	*open = 0;
	while (dir && (e = readdir(dir)) != NULL)
		if (e->d_name[0] != '.')
			(*open)++;
	if (dir) {
		(*open)--; /* the directory's own */
		closedir(dir);
	}
	*limit = soft_limit();
}

void daemon_ready(struct daemon *d)
{
	char status[160];
	uint64_t usec = 0;

	snprintf(status, sizeof(status), "READY=1\nSTATUS=ready: %zu trunks, max %d calls",
		 d->cfg->ntrunks, d->cfg->global.max_calls);
	notify(status);
	if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
		struct timeval tv = { .tv_sec = (time_t)(usec / 2 / 1000000),
				      .tv_usec = (suseconds_t)(usec / 2 % 1000000) };

		d->watchdog_usec = usec;
		event_add(d->ev_watchdog, &tv);
		LOG_DEBUG(NULL, "watchdog armed", LF_U("usec", usec));
	}
}

struct config *daemon_config(const struct daemon *d)
{
	return d->cfg;
}

enum daemon_state daemon_state(const struct daemon *d)
{
	return d->state;
}

void daemon_hold(struct daemon *d)
{
	d->busy++;
}

void daemon_release(struct daemon *d)
{
	if (d->busy > 0)
		d->busy--;
	if (d->busy == 0 && d->state == DAEMON_DRAINING) {
		LOG_INFO(NULL, "drained: the last call ended");
		stop(d);
	}
}

unsigned daemon_busy(const struct daemon *d)
{
	return d->busy;
}

int daemon_heartbeat_register(struct daemon *d, unsigned *id)
{
	if (d->nheartbeats == MAX_HEARTBEATS)
		return ENOSPC;
	*id = d->nheartbeats++;
	daemon_heartbeat(d, *id);
	return 0;
}

void daemon_heartbeat(struct daemon *d, unsigned id)
{
	__atomic_fetch_or(&d->heartbeat_seen, 1ULL << id, __ATOMIC_RELEASE);
}

void daemon_set_hooks(struct daemon *d, const struct daemon_hooks *h)
{
	d->hooks = *h;
}
