/* srtpbridge: the daemon's command line, start-up and main loop. */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "srtpbridge/b2bua.h"
#include "srtpbridge/config.h"
#include "srtpbridge/control.h"
#include "srtpbridge/daemon.h"
#include "srtpbridge/explain.h"
#include "srtpbridge/log.h"
#include "srtpbridge/portpool.h"
#include "srtpbridge/relay.h"
#include "srtpbridge/sdp.h"
#include "srtpbridge/sipcore.h"
#include "srtpbridge/srtplib.h"

#define LOG_MODULE     "main"
#define DEFAULT_CONFIG "/etc/srtpbridge/srtpbridge.ini"

enum {
	EXIT_USAGE = 3
};

static void usage(FILE *f)
{
	fprintf(f, "usage: srtpbridge [-c FILE]          run in the foreground (systemd style)\n"
		   "       srtpbridge --check [-c FILE]  validate the config, print every problem\n"
		   "       srtpbridge --explain [-c FILE] --trunk NAME [--user NUMBER]\n"
		   "                  [--answer FILE] [--json] OFFER.sdp\n"
		   "                                     what the daemon would do with an offer\n"
		   "       srtpbridge --version\n"
		   "The default FILE is " DEFAULT_CONFIG ".\n");
}

static int print_version(void)
{
	int err = srtplib_init();

	printf("srtpbridge %s (%s, %s)\n", SRTPBRIDGE_VERSION, srtplib_version(),
	       err ? "unknown" : srtplib_backend());
	if (!err)
		srtplib_shutdown();
	return 0;
}

/* --check: every problem as FILE:LINE: message on stderr; exit 0 or 1. */
static int check(const char *path)
{
	struct config_problems probs = { 0 };
	struct config *cfg = NULL;
	char line[1400];
	int err = config_load(path, 0, &cfg, &probs);

	for (size_t i = 0; i < probs.n; i++)
		fprintf(stderr, "%s\n", config_problem_format(&probs.v[i], line, sizeof(line)));
	if (!err)
		printf("%s: ok: %zu trunks, %zu routes, max_calls %d\n", path, cfg->ntrunks,
		       cfg->nroutes, cfg->global.max_calls);
	else if (err == ENOMEM)
		fprintf(stderr, "%s: out of memory\n", path);
	config_problems_free(&probs);
	config_unref(cfg);
	return err ? 1 : 0;
}

/* What the signal hooks and srtpbridgectl see of the running daemon. */
struct ctl_ctx {
	struct daemon *d;
	struct sipcore *sip;
	struct b2bua *b2b;
	struct portpool *pool;
	struct relay *relay;
	const char *path;
	time_t started; /* CLOCK_MONOTONIC s */
};

static void on_reloaded(void *arg, struct config *cfg)
{
	struct ctl_ctx *x = arg;

	sipcore_reload(x->sip, cfg);
	if (b2bua_reload(x->b2b, cfg))
		LOG_WARN(NULL, "out of memory: the peers pinged are those of the last config");
}

static void on_draining(void *arg)
{
	struct ctl_ctx *x = arg;

	sipcore_drain(x->sip);
	b2bua_drain(x->b2b);
}

static void on_call_start(void *arg)
{
	daemon_hold(arg);
}

static void on_call_end(void *arg)
{
	daemon_release(arg);
}

static time_t monotonic_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static int ctl_stats(void *arg, struct control_out *o)
{
	static const char *const classes[] = { NULL, "1xx", "2xx", "3xx", "4xx", "5xx", "6xx" };
	struct ctl_ctx *x = arg;
	struct sipcore_stats st;
	struct b2bua_stats bs;
	struct relay_stats rs;
	unsigned long fds_open, fds_limit;

	sipcore_get_stats(x->sip, &st);
	b2bua_get_stats(x->b2b, &bs);
	control_out_str(o, "version", SRTPBRIDGE_VERSION);
	control_out_str(o, "config", x->path);
	control_out_str(o, "state", daemon_state(x->d) == DAEMON_RUNNING ? "running" : "draining");
	control_out_uint(o, "uptime_seconds", (uint64_t)(monotonic_s() - x->started));
	control_out_uint(o, "calls_active", bs.calls_active);
	control_out_uint(o, "trunks", daemon_config(x->d)->ntrunks);
	control_out_begin_object(o, "calls");
	control_out_uint(o, "started", bs.calls_started);
	control_out_uint(o, "answered", bs.calls_answered);
	control_out_uint(o, "failed", bs.calls_failed);
	control_out_uint(o, "rejected", bs.calls_rejected);
	control_out_uint(o, "rejected_no_route", bs.rejected_no_route);
	control_out_uint(o, "rejected_admission", bs.rejected_admission);
	control_out_uint(o, "rejected_sdp", bs.rejected_sdp);
	control_out_uint(o, "rejected_no_peer", bs.rejected_no_peer);
	control_out_uint(o, "failovers", bs.failovers);
	control_out_uint(o, "ended_by_srtpbridge", bs.ended_by_us);
	control_out_uint(o, "ack_timeouts", bs.ack_timeouts);
	control_out_uint(o, "media_timeouts", bs.media_timeouts);
	control_out_uint(o, "key_lifetimes_reached", bs.key_lifetimes_reached);
	control_out_end_object(o);
	relay_get_stats(x->relay, &rs);
	control_out_begin_object(o, "srtp");
	control_out_uint(o, "rekey_roc_continued", rs.roc_continued);
	control_out_uint(o, "rekey_roc_reset", rs.roc_reset);
	control_out_end_object(o);
	control_out_begin_object(o, "media");
	control_out_uint(o, "workers", rs.workers);
	control_out_str(o, "io", relay_io_name(relay_io_used(x->relay)));
	control_out_uint(o, "io_uring_workers", rs.uring_workers);
	control_out_uint(o, "sessions", rs.sessions);
	control_out_uint(o, "batches", rs.batches);
	control_out_uint(o, "datagrams", rs.datagrams);
	control_out_uint(o, "late", rs.late);
	control_out_end_object(o);
	control_out_begin_object(o, "ports");
	control_out_uint(o, "total", portpool_total(x->pool));
	control_out_uint(o, "free", portpool_free_count(x->pool));
	control_out_uint(o, "in_use", portpool_in_use_count(x->pool));
	control_out_uint(o, "quarantined", portpool_quarantined_count(x->pool));
	control_out_uint(o, "busy", portpool_busy_count(x->pool));
	/* sockets held open (kept bound across calls): the fds media takes */
	control_out_uint(o, "open", portpool_open_count(x->pool));
	/* pairs whose idle sockets were closed for descriptors (portpool.h) */
	control_out_uint(o, "fd_reclaims", portpool_fd_reclaims(x->pool));
	control_out_end_object(o);
	daemon_fds_now(&fds_open, &fds_limit);
	control_out_begin_object(o, "fds");
	control_out_uint(o, "open", fds_open);
	control_out_uint(o, "limit", fds_limit);
	control_out_end_object(o);
	control_out_begin_object(o, "sip");
	control_out_uint(o, "requests", st.requests);
	control_out_uint(o, "responses", st.responses);
	control_out_uint(o, "unknown_source", st.unknown_source);
	control_out_uint(o, "malformed", st.malformed);
	control_out_uint(o, "keepalives", st.keepalives);
	control_out_uint(o, "send_drops", st.send_drops);
	control_out_uint(o, "accept_pauses", st.accept_pauses);
	control_out_uint(o, "connections", st.connections);
	control_out_uint(o, "connections_refused", st.connections_refused);
	control_out_uint(o, "connections_unknown_source", st.connections_unknown_source);
	control_out_uint(o, "tls_failures", st.tls_failures);
	control_out_uint(o, "transactions", st.transactions);
	control_out_begin_object(o, "responses_sent");
	for (int i = 1; i <= 6; i++)
		control_out_uint(o, classes[i], st.responses_sent[i]);
	control_out_end_object(o);
	control_out_end_object(o);
	/* lines that log limits left out (log.h): a flood, summed up */
	control_out_begin_object(o, "log");
	control_out_uint(o, "suppressed", log_suppressed_total());
	control_out_end_object(o);
	return 0;
}

static int ctl_calls(void *arg, struct control_out *o)
{
	return b2bua_ctl_calls(((struct ctl_ctx *)arg)->b2b, o);
}

static int ctl_call(void *arg, const char *id, struct control_out *o)
{
	return b2bua_ctl_call(((struct ctl_ctx *)arg)->b2b, id, o);
}

static int ctl_trunks(void *arg, struct control_out *o)
{
	return b2bua_ctl_trunks(((struct ctl_ctx *)arg)->b2b, o);
}

static int ctl_reload(void *arg, char *err, size_t errsz)
{
	struct ctl_ctx *x = arg;

	/* As for SIGHUP: a draining daemon keeps the config it has. */
	if (daemon_state(x->d) != DAEMON_RUNNING) {
		snprintf(err, errsz, "the daemon is draining: reload ignored");
		return EBUSY;
	}
	if (daemon_reload(x->d)) {
		snprintf(err, errsz, "the config has errors: see the log");
		return EINVAL;
	}
	return 0;
}

static void ctl_drain(void *arg)
{
	daemon_drain(((struct ctl_ctx *)arg)->d);
}

/* Each media worker's heartbeat is a heartbeat source of the daemon: the
 * watchdog is fed only while every worker's loop turns. */
struct beats {
	struct daemon *d;
	unsigned ids[256];
};

static void on_beat(void *arg, unsigned worker)
{
	struct beats *b = arg;

	daemon_heartbeat(b->d, b->ids[worker]);
}

/* media_workers = auto: one per core online (the main thread shares one). */
static int start_media(struct relay **out, struct event_base *base, struct daemon *d, int workers,
		       enum media_io io, struct beats *b)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned n = workers > 0 ? (unsigned)workers : cores > 0 ? (unsigned)cores : 1;
	int err;

	if (n > sizeof(b->ids) / sizeof(b->ids[0]))
		n = sizeof(b->ids) / sizeof(b->ids[0]);
	b->d = d;
	for (unsigned i = 0; i < n; i++)
		if ((err = daemon_heartbeat_register(d, &b->ids[i])) != 0) {
			LOG_ERROR(NULL, "cannot start: too many media workers for the watchdog",
				  LF_U("workers", n));
			return err;
		}
	err = relay_create(out, base, n,
			   io == MEDIA_IO_URING	  ? RELAY_IO_URING
			   : io == MEDIA_IO_EPOLL ? RELAY_IO_EPOLL
						  : RELAY_IO_AUTO,
			   on_beat, b);
	if (io == MEDIA_IO_URING && (err == ENOSYS || err == EPERM || err == EINVAL))
		LOG_ERROR(NULL,
			  "cannot start the media workers: media_io = io_uring, which this "
			  "kernel does not allow (5.18 or later, not disabled by "
			  "kernel.io_uring_disabled or a seccomp filter); media_io = auto "
			  "falls back to epoll",
			  LF_S("error", strerror(err)));
	else if (err)
		LOG_ERROR(NULL, "cannot start the media workers", LF_S("error", strerror(err)));
	else
		LOG_INFO(NULL, "media workers started", LF_U("workers", n),
			 LF_S("io", relay_io_name(relay_io_used(*out))));
	return err;
}

static int run(const char *path)
{
	struct config_problems probs = { 0 };
	struct config *cfg = NULL;
	struct event_config *ecfg = NULL;
	struct event_base *base = NULL;
	struct daemon *d = NULL;
	struct sipcore *sip = NULL;
	struct portpool *pool = NULL;
	struct b2bua *b2b = NULL;
	struct relay *relay = NULL;
	static struct beats beats;
	struct ctl_ctx ctx = { .path = path, .started = monotonic_s() };
	struct daemon_hooks hooks = { .reloaded = on_reloaded,
				      .draining = on_draining,
				      .arg = &ctx };
	struct control_providers ctl_p = { .stats = ctl_stats,
					   .calls = ctl_calls,
					   .call = ctl_call,
					   .trunks = ctl_trunks,
					   .reload = ctl_reload,
					   .drain = ctl_drain,
					   .arg = &ctx };
	struct control *ctl = NULL;
	struct daemon_fds fds;
	const char *ctl_path;
	char why[256];
	int err;

	/* Calls allocate and free the same sizes thousands of times a second:
	 * memory glibc gave back to the kernel at each free would come back as
	 * fresh zeroed pages at the next call (a tenth of a call's cost in
	 * page faults, measured with bench/cps). Keep up to 64 MiB. */
	mallopt(M_TRIM_THRESHOLD, 64 << 20);
	mallopt(M_TOP_PAD, 4 << 20);
	log_init(2);
	LOG_INFO(NULL, "starting", LF_S("version", SRTPBRIDGE_VERSION), LF_S("config", path));
	err = config_load(path, 0, &cfg, &probs);
	config_problems_log(&probs);
	config_problems_free(&probs);
	if (err) {
		LOG_ERROR(NULL, "cannot start: the config has errors", LF_S("config", path));
		return 1;
	}
	log_set_level(cfg->global.log_level);

	err = srtplib_init();
	if (err) {
		LOG_ERROR(NULL, "cannot start: libsrtp2 failed to initialise");
		config_unref(cfg);
		return 1;
	}
	LOG_DEBUG(NULL, "libsrtp2", LF_S("version", srtplib_version()),
		  LF_S("backend", srtplib_backend()));

	/* The main loop is single-threaded: workers talk to it through queues
	 * and eventfds, never by touching its events. */
	ecfg = event_config_new();
	if (ecfg) {
		event_config_set_flag(ecfg, EVENT_BASE_FLAG_NOLOCK);
		base = event_base_new_with_config(ecfg);
		event_config_free(ecfg);
	}
	if (!base) {
		LOG_ERROR(NULL, "cannot start: no event base");
		config_unref(cfg);
		srtplib_shutdown();
		return 1;
	}
	/* before the media workers size their descriptor tables on the limit */
	daemon_fd_limit(cfg, &fds);
	/* media_ports is a restart key: the pool lives as long as the process */
	err = portpool_create(&pool, cfg->global.media_port_min, cfg->global.media_port_max,
			      (unsigned)cfg->global.media_port_quarantine, NULL, NULL);
	if (!err && fds.media < portpool_total(pool))
		portpool_set_open_max(pool, (unsigned)fds.media);
	if (err)
		snprintf(why, sizeof(why), "cannot create the media port pool: %s", strerror(err));
	else
		err = sipcore_create(&sip, base, cfg, why, sizeof(why));
	if (err) {
		portpool_destroy(pool);
		LOG_ERROR(NULL, "cannot start", LF_S("reason", why));
		config_unref(cfg);
		event_base_free(base);
		srtplib_shutdown();
		return 1;
	}
	err = daemon_create(&d, base, path, cfg);
	if (!err) {
		err = start_media(&relay, base, d, cfg->global.media_workers, cfg->global.media_io,
				  &beats);
		if (err) {
			daemon_destroy(d); /* with the reference to cfg it took */
			cfg = NULL;
		} else {
			/* every pair goes to a media worker, which empties
			 * what it must itself (relay.h) */
			portpool_set_drain(pool, false);
		}
	}
	if (!err) {
		struct b2bua_hooks bh = { .hold = on_call_start, .release = on_call_end, .arg = d };

		err = b2bua_create(&b2b, base, sip, pool, relay, daemon_config(d), &bh);
		if (err) {
			relay_destroy(relay);
			daemon_destroy(d); /* with the reference to cfg it took */
			cfg = NULL;
		}
	}
	if (err) {
		LOG_ERROR(NULL, "cannot start", LF_S("error", strerror(err)));
		sipcore_destroy(sip);
		portpool_destroy(pool);
		config_unref(cfg);
		event_base_free(base);
		srtplib_shutdown();
		return 1;
	}
	ctx.d = d;
	ctx.sip = sip;
	ctx.b2b = b2b;
	ctx.pool = pool;
	ctx.relay = relay;
	daemon_set_hooks(d, &hooks);
	/* Without it the daemon still works: a development run may point at a
	 * directory that does not exist. */
	ctl_path = daemon_config(d)->global.control_socket;
	if (control_create(&ctl, base, ctl_path, &ctl_p, why, sizeof(why)))
		LOG_WARN(NULL, "running without the control socket", LF_S("path", ctl_path),
			 LF_S("reason", why));
	daemon_ready(d);
	LOG_INFO(NULL, "ready", LF_U("trunks", daemon_config(d)->ntrunks),
		 LF_I("max_calls", daemon_config(d)->global.max_calls),
		 LF_U("fd_limit", fds.limit));
	event_base_dispatch(base);
	control_destroy(ctl);
	b2bua_destroy(b2b);
	sipcore_destroy(sip);
	relay_destroy(relay); /* after the calls: their ports come back through it */
	portpool_destroy(pool);
	daemon_destroy(d);
	event_base_free(base);
	srtplib_shutdown();
	LOG_INFO(NULL, "stopped");
	return 0;
}

/* Reads a whole SDP file; returns new (malloc) or NULL with a message. */
static char *read_sdp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;

	if (!f) {
		fprintf(stderr, "srtpbridge: cannot read %s: %s\n", path, strerror(errno));
		return NULL;
	}
	buf = malloc(SDP_MAX_BYTES + 1);
	*len = buf ? fread(buf, 1, SDP_MAX_BYTES + 1, f) : 0;
	fclose(f);
	if (buf && *len > SDP_MAX_BYTES) {
		fprintf(stderr, "srtpbridge: %s is larger than %d bytes\n", path, SDP_MAX_BYTES);
		free(buf);
		return NULL;
	}
	return buf;
}

/* --explain: TLS files are not opened, since the SDP path does not need
 * them; every other problem of the config is reported as --check would. */
static int explain(const char *path, struct explain_request *req, const char *offer_path,
		   const char *answer_path)
{
	struct config_problems probs = { 0 };
	struct config *cfg = NULL;
	char line[1400], *offer = NULL, *answer = NULL;
	size_t olen = 0, alen = 0;
	int rc = 1;

	if (config_load(path, CONFIG_NO_FILES, &cfg, &probs)) {
		for (size_t i = 0; i < probs.n; i++)
			fprintf(stderr, "%s\n",
				config_problem_format(&probs.v[i], line, sizeof(line)));
		config_problems_free(&probs);
		return 1;
	}
	config_problems_free(&probs);
	offer = read_sdp(offer_path, &olen);
	if (answer_path)
		answer = read_sdp(answer_path, &alen);
	if (offer && (!answer_path || answer)) {
		req->offer = (struct slice){ offer, olen };
		req->answer = (struct slice){ answer, alen };
		rc = explain_offer(cfg, req, stdout) == 0 ? 0 : 1;
	}
	free(offer);
	free(answer);
	config_unref(cfg);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 'C' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ "explain", no_argument, NULL, 'E' },
		{ "trunk", required_argument, NULL, 'T' },
		{ "user", required_argument, NULL, 'U' },
		{ "answer", required_argument, NULL, 'A' },
		{ "json", no_argument, NULL, 'J' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = DEFAULT_CONFIG, *answer_path = NULL;
	struct explain_request req = { 0 };
	bool do_check = false, do_explain = false;
	int c;

	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 'C':
			do_check = true;
			break;
		case 'V':
			return print_version();
		case 'h':
			usage(stdout);
			return 0;
		case 'E':
			do_explain = true;
			break;
		case 'T':
			req.trunk = optarg;
			break;
		case 'U':
			req.user = optarg;
			break;
		case 'A':
			answer_path = optarg;
			break;
		case 'J':
			req.json = true;
			break;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (do_explain) {
		if (!req.trunk || optind + 1 != argc || do_check) {
			fprintf(stderr,
				"srtpbridge: --explain needs --trunk NAME and one OFFER.sdp\n");
			usage(stderr);
			return EXIT_USAGE;
		}
		return explain(path, &req, argv[optind], answer_path);
	}
	if (req.trunk || req.user || req.json || answer_path) {
		fprintf(stderr,
			"srtpbridge: --trunk, --user, --answer and --json go with --explain\n");
		return EXIT_USAGE;
	}
	if (optind != argc) {
		fprintf(stderr, "srtpbridge: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return EXIT_USAGE;
	}
	return do_check ? check(path) : run(path);
}
