/* daemon.h: the process lifecycle around the main libevent loop.
 *
 * Start -> READY=1; SIGHUP -> RELOADING=1 (+MONOTONIC_USEC), a new config
 * snapshot for new work (a bad file keeps the old one and logs every
 * problem), READY=1; SIGTERM -> STOPPING=1, drain: stop accepting, exit when
 * nothing holds the daemon busy or after drain_timeout. WATCHDOG=1 while the
 * loop runs and every registered heartbeat source is alive. */
#ifndef SRTPBRIDGE_DAEMON_H
#define SRTPBRIDGE_DAEMON_H

#include <stdbool.h>

struct event_base;
struct config;
struct daemon;

enum daemon_state {
	DAEMON_RUNNING = 0,
	DAEMON_DRAINING,
	DAEMON_STOPPED
};

/* Takes cfg (its reference). Installs SIGHUP/SIGTERM/SIGINT handlers on base. */
int daemon_create(struct daemon **out, struct event_base *base, const char *config_path,
		  struct config *cfg);
void daemon_destroy(struct daemon *d); /* NULL-safe */

/* The descriptors the process may open, against what its config can take:
 * every port of media_ports (the pool keeps a socket open per port it has
 * used), TRANSPORT_MAX_CONNS SIP connections and a reserve. */
struct daemon_fds {
	unsigned long limit;  /* RLIMIT_NOFILE's soft limit, raised */
	unsigned long wanted; /* what the config can take */
	unsigned long calls;  /* calls with one stream the limit holds at once */
	unsigned long media;  /* the port pool's share (portpool_set_open_max) */
};
/* Raises the soft RLIMIT_NOFILE to the hard limit (epoll, no select(): a
 * high limit costs nothing) and logs one warning, in words, when it is
 * still below wanted. Call before the media workers size their tables on it. */
void daemon_fd_limit(const struct config *cfg, struct daemon_fds *out);
/* The descriptors open now and the soft limit, for stats: the limit as
 * daemon_fd_limit left it; open 0 when /proc cannot be read. */
void daemon_fds_now(unsigned long *open, unsigned long *limit);

/* Sends READY=1 and arms the watchdog; call once everything is bound. */
void daemon_ready(struct daemon *d);

/* Returns borrowed: the current snapshot; config_ref() it to keep it. */
struct config *daemon_config(const struct daemon *d);
enum daemon_state daemon_state(const struct daemon *d);

/* What SIGHUP does; 0, or EINVAL when the file had errors (old snapshot kept). */
int daemon_reload(struct daemon *d);
/* What SIGTERM does. */
void daemon_drain(struct daemon *d);

/* Work that drain waits for (calls): hold when it starts, release when it ends. */
void daemon_hold(struct daemon *d);
void daemon_release(struct daemon *d);
unsigned daemon_busy(const struct daemon *d);

/* Heartbeat sources (media workers): the watchdog is fed only while every
 * source has reported since the previous ping. */
int daemon_heartbeat_register(struct daemon *d, unsigned *id);
void daemon_heartbeat(struct daemon *d, unsigned id); /* thread-safe */

/* Called on each state change and after each reload, so that listeners
 * (later issues) can stop accepting or pick up the new snapshot. */
struct daemon_hooks {
	void (*reloaded)(void *arg, struct config *cfg);
	void (*draining)(void *arg);
	void *arg;
};
void daemon_set_hooks(struct daemon *d, const struct daemon_hooks *h);

#endif
