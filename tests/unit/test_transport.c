/* The transport on loopback with real sockets: our TLS client's checks of a
 * peer (name, IP SAN, CA, dates) through the path a request takes, connection
 * limits per source, the deadline for a first message, a dialog's hold on a
 * stream, requests reusing a connection the peer opened (alias), and the
 * cause a close reports for the connection a send used (refused, reset).
 * Certificates are made by the openssl CLI in a temporary directory. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "srtpbridge/config.h"
#include "srtpbridge/transport.h"

static char dir[64];

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (system(cmd) != 0)
		fail_msg("command failed: %s", cmd);
}

static int make_certs(void **state)
{
	static const char ec[] = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";

	strcpy(dir, "/tmp/srtpbridge-tp-XXXXXX");
	assert_non_null(mkdtemp(dir));
	for (int i = 0; i < 2; i++)
		sh("cd %s && openssl req -x509 %s -days 30 -subj /CN=%s -keyout %s.key -out %s.pem "
		   ">/dev/null 2>&1",
		   dir, ec, i ? "other-ca" : "ca", i ? "other-ca" : "ca", i ? "other-ca" : "ca");
	sh("cd %s && printf 'subjectAltName=DNS:sbc.test,IP:127.0.0.1\\n' > san.ext", dir);
	for (int i = 0; i < 2; i++) {
		const char *name = i ? "expired" : "server";

		sh("cd %s && openssl req %s -subj /CN=%s -keyout %s.key -out %s.csr >/dev/null "
		   "2>&1 "
		   "&& openssl x509 -req -in %s.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
		   "-days %s -extfile san.ext -out %s.pem >/dev/null 2>&1",
		   dir, ec, name, name, name, name, i ? "-1" : "30", name);
	}
	return 0;
}

static int remove_certs(void **state)
{
	sh("rm -rf %s", dir);
	return 0;
}

/* ---- a transport under test ---- */

struct fix {
	struct event_base *base;
	struct config *cfg;
	struct transport *tp;
	char got[4096];
	size_t ngot;
	uint64_t got_conn;
	char why[8][512];
	int err[8];
	uint64_t closed_conn[8];
	unsigned nwhy;
	bool timed_out;
	uint16_t tls_port, tcp_port;
	/* the admit callback: what it saw, and whether it refuses */
	bool refuse;
	unsigned admits;
	struct transport_src admitted;
};

static void on_message(void *arg, struct slice msg, const struct transport_src *src)
{
	struct fix *f = arg;

	f->ngot = msg.n < sizeof(f->got) ? msg.n : sizeof(f->got);
	memcpy(f->got, msg.p, f->ngot);
	f->got_conn = src->conn;
}

static void on_datagram(void *arg, struct slice data, const struct transport_src *src)
{
}

static bool on_admit(void *arg, const struct transport_src *src)
{
	struct fix *f = arg;

	f->admits++;
	f->admitted = *src;
	return !f->refuse;
}

static void on_closed(void *arg, uint64_t conn, int err, const char *why)
{
	struct fix *f = arg;

	assert_true(err > 0);
	if (f->nwhy < 8) {
		f->err[f->nwhy] = err;
		f->closed_conn[f->nwhy] = conn;
		snprintf(f->why[f->nwhy++], sizeof(f->why[0]), "%s", why);
	}
}

static uint16_t free_port_of(int type)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, type, 0);

	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	getsockname(fd, (struct sockaddr *)&a, &len);
	close(fd);
	return ntohs(a.sin_port);
}

static uint16_t free_port(void)
{
	return free_port_of(SOCK_STREAM);
}

/* A listener trunk "srv" (tls and tcp) and a trunk "cli" whose peer it is.
 * A port found free can be taken by a test running beside this one before
 * the transport binds it: then again with others, a few times. */
static void start(struct fix *f, const char *server_cert, const char *cli_keys)
{
	static const struct transport_callbacks cb = { on_datagram, on_message, on_closed,
						       on_admit };
	char text[2048], why[256];

	for (int attempt = 0;; attempt++) {
		struct config_problems probs = { 0 };

		memset(f, 0, sizeof(*f));
		f->tls_port = free_port();
		f->tcp_port = free_port();
		snprintf(text, sizeof(text),
			 "[trunk:srv]\nlisten = tls:127.0.0.1:%u, tcp:127.0.0.1:%u\nsources = "
			 "127.0.0.0/8\n"
			 "peers = tcp:127.0.0.1:9\ntls_certificate = %s/%s.pem\n"
			 "tls_private_key = %s/%s.key\nroute = cli\n"
			 "[trunk:cli]\nlisten = udp:127.0.0.1:%u\npeers = tls:127.0.0.1:%u\n"
			 "sources = 127.0.0.0/8\n%s\n",
			 f->tls_port, f->tcp_port, dir, server_cert, dir, server_cert,
			 free_port_of(SOCK_DGRAM), f->tls_port, cli_keys);
		if (config_load_buffer("/test/tp.ini", text, strlen(text),
				       CONFIG_NO_RESOLVE | CONFIG_NO_FILES, &f->cfg, &probs))
			fail_msg("config: %s", probs.n ? probs.v[0].msg : "?");
		config_problems_free(&probs);
		f->base = event_base_new();
		if (!transport_create(&f->tp, f->base, f->cfg, &cb, f, why, sizeof(why)))
			return;
		config_unref(f->cfg);
		event_base_free(f->base);
		if (attempt == 4 || !strstr(why, strerror(EADDRINUSE)))
			fail_msg("transport: %s", why);
	}
}

static void stop(struct fix *f)
{
	transport_destroy(f->tp);
	config_unref(f->cfg);
	event_base_free(f->base);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	((struct fix *)arg)->timed_out = true;
}

/* Runs the loop until cond holds or ms pass. */
static bool run_until(struct fix *f, bool (*cond)(struct fix *), int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	struct event *ev = evtimer_new(f->base, on_deadline, f);

	f->timed_out = false;
	evtimer_add(ev, &tv);
	while (!(cond && cond(f)) && !f->timed_out)
		event_base_loop(f->base, EVLOOP_ONCE);
	event_free(ev);
	return !f->timed_out;
}

static bool got_message(struct fix *f)
{
	return f->ngot > 0;
}

static bool got_close(struct fix *f)
{
	return f->nwhy > 0;
}

static const char msg[] = "OPTIONS sip:srv@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1;"
			  "branch=z9hG4bK1\r\nContent-Length: 0\r\n\r\n";

/* Returns the connection the send opened. */
static uint64_t send_stream(struct fix *f, enum sip_transport tp, uint16_t port)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port) };
	uint64_t conn = 0;

	inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
	assert_int_equal(transport_send(f->tp, NULL, tp, (struct sockaddr *)&to, sizeof(to), 0,
					config_trunk_find(f->cfg, "cli"), msg, sizeof(msg) - 1,
					&conn),
			 0);
	assert_true(conn != 0);
	return conn;
}

static void send_tls(struct fix *f)
{
	send_stream(f, SIP_TP_TLS, f->tls_port);
}

static void expect_refusal(const char *server_cert, const char *cli_keys, const char *words)
{
	struct fix f;
	bool found = false;

	start(&f, server_cert, cli_keys);
	send_tls(&f);
	assert_true(run_until(&f, got_close, 5000));
	run_until(&f, NULL, 200); /* the other end's close, if any */
	for (unsigned i = 0; i < f.nwhy; i++) {
		bool here = strstr(f.why[i], words) != NULL;

		if (here)
			assert_int_equal(f.err[i], EPROTO);
		found |= here;
	}
	if (!found)
		fail_msg("no close said '%s'; first said '%s'", words, f.why[0]);
	assert_int_equal(f.ngot, 0); /* nothing reached the server */
	stop(&f);
}

/* ---- TLS, our side as the client ---- */

static void test_tls_name_positive_and_refused(void **state)
{
	struct fix f;
	char keys[512];

	snprintf(keys, sizeof(keys), "tls_ca = %s/ca.pem\ntls_peer_name = sbc.test", dir);
	start(&f, "server", keys);
	send_tls(&f);
	assert_true(run_until(&f, got_message, 5000));
	assert_int_equal(f.ngot, sizeof(msg) - 1);
	assert_memory_equal(f.got, msg, f.ngot);
	stop(&f);

	snprintf(keys, sizeof(keys), "tls_ca = %s/ca.pem\ntls_peer_name = wrong.example", dir);
	expect_refusal("server", keys,
		       "peer certificate name sbc.test does not match tls_peer_name wrong.example");
}

/* No tls_peer_name and an IP peer: the IP SAN decides. */
static void test_tls_ip_peer(void **state)
{
	struct fix f;
	char keys[512];

	snprintf(keys, sizeof(keys), "tls_ca = %s/ca.pem", dir);
	start(&f, "server", keys);
	send_tls(&f);
	assert_true(run_until(&f, got_message, 5000));
	stop(&f);
}

static void test_tls_wrong_ca_and_expired(void **state)
{
	char keys[512];

	snprintf(keys, sizeof(keys), "tls_ca = %s/other-ca.pem", dir);
	expect_refusal("server", keys, "certificate not signed by tls_ca");
	snprintf(keys, sizeof(keys), "tls_ca = %s/ca.pem", dir);
	expect_refusal("expired", keys, "certificate expired");
}

/* ---- streams: limits, deadlines, holds, reuse ---- */

static int tcp_client(struct fix *f)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(f->tcp_port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
	assert_int_equal(connect(fd, (struct sockaddr *)&to, sizeof(to)), 0);
	return fd;
}

static void test_limit_per_source(void **state)
{
	struct transport_limits lim = { 100, 2, 10, 10, 600, 30 };
	struct transport_stats st;
	struct fix f;
	int fds[3];
	char b;

	start(&f, "server", "");
	transport_set_limits(f.tp, &lim);
	for (int i = 0; i < 3; i++)
		fds[i] = tcp_client(&f);
	run_until(&f, NULL, 300);
	transport_get_stats(f.tp, &st);
	assert_int_equal(st.accepted, 2);
	assert_int_equal(st.refused, 1);
	assert_int_equal(st.conns, 2);
	/* the third was closed at once */
	assert_int_equal(recv(fds[2], &b, 1, 0), 0);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	stop(&f);
}

/* The admit callback decides before a byte is read: a refused connection is
 * closed at once and counted apart from the limits' refusals; it sees the
 * listener and the peer. */
static void test_admit(void **state)
{
	static const char opts[] = "OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 0\r\n\r\n";
	const struct sockaddr_in *peer, *local;
	struct transport_stats st;
	struct fix f;
	int fd;
	char b;

	start(&f, "server", "");
	f.refuse = true;
	fd = tcp_client(&f);
	assert_int_equal(write(fd, opts, sizeof(opts) - 1), (ssize_t)sizeof(opts) - 1);
	run_until(&f, NULL, 300);
	assert_int_equal(f.admits, 1);
	assert_int_equal(f.admitted.tp, SIP_TP_TCP);
	assert_int_equal(f.admitted.conn, 0);
	peer = (const struct sockaddr_in *)&f.admitted.addr;
	local = (const struct sockaddr_in *)f.admitted.local_addr;
	assert_int_equal(peer->sin_family, AF_INET);
	assert_int_equal(ntohl(peer->sin_addr.s_addr), INADDR_LOOPBACK);
	assert_int_equal(ntohs(local->sin_port), f.tcp_port);
	assert_true(recv(fd, &b, 1, 0) <= 0); /* closed (EOF, or a reset for the unread bytes) */
	transport_get_stats(f.tp, &st);
	assert_int_equal(st.refused_unknown, 1);
	assert_int_equal(st.refused, 0);
	assert_int_equal(st.accepted, 0);
	assert_int_equal(st.conns, 0);
	assert_int_equal(f.ngot, 0);
	assert_int_equal(f.nwhy, 0); /* never a connection: nothing to close */
	close(fd);

	f.refuse = false;
	fd = tcp_client(&f);
	assert_int_equal(write(fd, opts, sizeof(opts) - 1), (ssize_t)sizeof(opts) - 1);
	assert_true(run_until(&f, got_message, 3000));
	transport_get_stats(f.tp, &st);
	assert_int_equal(st.accepted, 1);
	assert_int_equal(f.admits, 2);
	close(fd);
	stop(&f);
}

static void test_first_message_deadline(void **state)
{
	struct transport_limits lim = { 100, 10, 1, 1, 600, 30 };
	struct fix f;
	int fd;

	start(&f, "server", "");
	transport_set_limits(f.tp, &lim);
	fd = tcp_client(&f);
	assert_true(run_until(&f, got_close, 4000));
	assert_string_equal(f.why[0], "no complete SIP message within 1 s of connecting");
	assert_int_equal(f.err[0], ETIMEDOUT);
	close(fd);
	stop(&f);
}

/* Idle connections close; a connection a dialog holds does not. */
static void test_hold_and_idle(void **state)
{
	struct transport_limits lim = { 100, 10, 10, 10, 1, 30 };
	static const char opts[] = "OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 0\r\n\r\n";
	struct fix f;
	int fd;

	start(&f, "server", "");
	transport_set_limits(f.tp, &lim);
	fd = tcp_client(&f);
	assert_int_equal(send(fd, opts, sizeof(opts) - 1, 0), (ssize_t)(sizeof(opts) - 1));
	assert_true(run_until(&f, got_message, 2000));
	transport_conn_hold(f.tp, f.got_conn);
	run_until(&f, NULL, 2500);
	assert_int_equal(f.nwhy, 0);
	transport_conn_release(f.tp, f.got_conn);
	assert_true(run_until(&f, got_close, 3000));
	assert_string_equal(f.why[0], "idle for 1 s with no dialog on it");
	assert_int_equal(f.err[0], ETIMEDOUT);
	assert_int_equal(f.closed_conn[0], f.got_conn);
	close(fd);
	stop(&f);
}

/* A request toward a peer goes over the connection it opened to us. */
static void test_reuse_by_alias(void **state)
{
	static const char opts[] = "OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 0\r\n\r\n";
	struct sockaddr_in alias = { .sin_family = AF_INET, .sin_port = htons(5999) };
	struct fix f;
	uint64_t conn = 0;
	char buf[64];
	int fd;

	start(&f, "server", "");
	fd = tcp_client(&f);
	send(fd, opts, sizeof(opts) - 1, 0);
	assert_true(run_until(&f, got_message, 2000));
	inet_pton(AF_INET, "127.0.0.1", &alias.sin_addr);
	transport_conn_alias(f.tp, f.got_conn, (struct sockaddr *)&alias, sizeof(alias));
	assert_int_equal(transport_send(f.tp, NULL, SIP_TP_TCP, (struct sockaddr *)&alias,
					sizeof(alias), 0, NULL, "PING", 4, &conn),
			 0);
	assert_int_equal(conn, f.got_conn);
	run_until(&f, NULL, 200);
	assert_int_equal(recv(fd, buf, sizeof(buf), MSG_DONTWAIT), 4);
	assert_memory_equal(buf, "PING", 4);
	/* with no stream to a destination and no trunk, a response has no way */
	alias.sin_port = htons(5998);
	assert_int_equal(transport_send(f.tp, NULL, SIP_TP_TCP, (struct sockaddr *)&alias,
					sizeof(alias), 0, NULL, "X", 1, &conn),
			 ENOTCONN);
	assert_int_equal(conn, 0);
	/* the peer hangs up: a reset, for the connection the send used */
	close(fd);
	assert_true(run_until(&f, got_close, 2000));
	assert_int_equal(f.closed_conn[0], f.got_conn);
	assert_int_equal(f.err[0], ECONNRESET);
	assert_string_equal(f.why[0], "closed by the peer");
	stop(&f);
}

/* A stream send to a port where nothing listens is queued (0) on a new
 * connection; the refusal comes back as the close of that connection, with
 * ECONNREFUSED, over TCP and over TLS (whose refusal reads as an EOF). */
static void test_refused_connect(void **state)
{
	enum sip_transport tps[] = { SIP_TP_TCP, SIP_TP_TLS };

	for (size_t i = 0; i < sizeof(tps) / sizeof(tps[0]); i++) {
		struct transport_stats st;
		struct fix f;
		uint64_t conn;

		start(&f, "server", "");
		conn = send_stream(&f, tps[i], free_port()); /* bound, then closed: no listener */
		assert_true(run_until(&f, got_close, 5000));
		assert_int_equal(f.nwhy, 1);
		assert_int_equal(f.closed_conn[0], conn);
		if (f.err[0] != ECONNREFUSED)
			fail_msg("%s: closed with %s (%s)", i ? "tls" : "tcp", strerror(f.err[0]),
				 f.why[0]);
		assert_non_null(strstr(f.why[0], "refused"));
		transport_get_stats(f.tp, &st);
		assert_int_equal(st.conns, 0);
		stop(&f);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tls_name_positive_and_refused),
		cmocka_unit_test(test_tls_ip_peer),
		cmocka_unit_test(test_tls_wrong_ca_and_expired),
		cmocka_unit_test(test_limit_per_source),
		cmocka_unit_test(test_admit),
		cmocka_unit_test(test_first_message_deadline),
		cmocka_unit_test(test_hold_and_idle),
		cmocka_unit_test(test_reuse_by_alias),
		cmocka_unit_test(test_refused_connect),
	};

	return cmocka_run_group_tests_name("transport", tests, make_certs, remove_certs);
}
