/* SIP transports on libevent. The order of work on input is the contract of
 * DESIGN.md: size first (here: framing bounded by SIPMSG_MAX_BYTES), the
 * source check and parsing above us. Every stream has one timer whose
 * deadline moves with its state, so thousands of idle connections cost no
 * wake-ups. */
#include "srtpbridge/transport.h"
#include "srtpbridge/accept_backoff.h"
#include "srtpbridge/addr.h"
#include "srtpbridge/log.h"
#include "srtpbridge/sipframe.h"
#include "srtpbridge/sipmsg.h"
#include "srtpbridge/tlsctx.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#define LOG_MODULE   "transport"
#define UDP_BATCH    16
#define CONN_BUCKETS 1024

struct transport_local {
	struct transport *t;
	enum sip_transport tp;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char name[80]; /* udp:127.0.0.1:5060, for logs */
	int fd;	       /* UDP socket */
	struct event *ev;
	struct accept_backoff *listener;  /* TCP/TLS; owns the evconnlistener */
	SSL_CTX *tls;			  /* TLS server context */
	const struct config_trunk *trunk; /* the first trunk listening here */
};

struct conn {
	struct transport *t;
	uint64_t id;
	enum sip_transport tp;
	const struct transport_local *local; /* the listener it came in on, or NULL */
	struct bufferevent *bev;
	struct sockaddr_storage peer, alias;
	socklen_t peerlen, aliaslen;
	char peer_name[64];
	bool outbound, connected, closing;
	bool handshaken; /* TLS: the handshake completed */
	unsigned holds;
	bool seen_message;
	struct sipframe_stream_state fs;
	time_t last_activity, partial_since, last_sent;
	struct event timer;
	struct conn *by_id, *by_addr; /* hash chains */
};

struct transport {
	struct event_base *base;
	const struct config *cfg;
	struct transport_callbacks cb;
	void *arg;
	struct transport_local *locals;
	size_t nlocals;
	struct conn *ids[CONN_BUCKETS], *addrs[CONN_BUCKETS];
	uint64_t next_id;
	SSL_CTX **clients; /* per trunk, made on first use */
	struct transport_stats st;
	struct transport_limits lim;
	/* UDP receive buffers, shared: one loop thread reads them */
	struct mmsghdr hdr[UDP_BATCH];
	struct iovec iov[UDP_BATCH];
	struct sockaddr_storage from[UDP_BATCH];
	char *bufs;
	/* anyone may cause these (log.h) */
	struct log_limit refused_log, tls_log, closed_log;
};

/* ---- small helpers ---- */

static const char *const tp_names[] = { "udp", "tcp", "tls" };

static unsigned addr_hash(const struct sockaddr *sa)
{
	const unsigned char *p;
	size_t n;
	uint32_t h = 2166136261u;

	if (sa->sa_family == AF_INET) {
		p = (const void *)&((const struct sockaddr_in *)sa)->sin_addr;
		n = 4;
		h = (h ^ ((const struct sockaddr_in *)sa)->sin_port) * 16777619u;
	} else if (sa->sa_family == AF_INET6) {
		p = (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
		n = 16;
		h = (h ^ ((const struct sockaddr_in6 *)sa)->sin6_port) * 16777619u;
	} else {
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h % CONN_BUCKETS;
}

static time_t now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* ---- connection table ---- */

static struct conn *conn_by_id(const struct transport *t, uint64_t id)
{
	for (struct conn *c = t->ids[id % CONN_BUCKETS]; c; c = c->by_id)
		if (c->id == id)
			return c;
	return NULL;
}

static void unlink_chain(struct conn **head, struct conn *c, bool by_id)
{
	for (struct conn **pp = head; *pp; pp = by_id ? &(*pp)->by_id : &(*pp)->by_addr) {
		if (*pp == c) {
			*pp = by_id ? c->by_id : c->by_addr;
			return;
		}
	}
}

static const struct sockaddr *conn_key(const struct conn *c)
{
	return (const struct sockaddr *)(c->aliaslen ? &c->alias : &c->peer);
}

/* A live stream to `to` on tp: the peer's address, or the alias it gave. */
static struct conn *conn_to(const struct transport *t, enum sip_transport tp,
			    const struct sockaddr *to)
{
	for (struct conn *c = t->addrs[addr_hash(to)]; c; c = c->by_addr)
		if (c->tp == tp && !c->closing &&
		    addr_equal((const struct sockaddr *)(c->aliaslen ? &c->alias : &c->peer), to,
			       true))
			return c;
	return NULL;
}

static unsigned conns_from(const struct transport *t, const struct sockaddr *src)
{
	unsigned n = 0;

	for (size_t b = 0; b < CONN_BUCKETS; b++)
		for (struct conn *c = t->ids[b]; c; c = c->by_id)
			n += !c->outbound &&
			     addr_equal((const struct sockaddr *)&c->peer, src, false);
	return n;
}

static void conn_free(struct conn *c)
{
	struct transport *t = c->t;

	unlink_chain(&t->ids[c->id % CONN_BUCKETS], c, true);
	unlink_chain(&t->addrs[addr_hash(conn_key(c))], c, false);
	evtimer_del(&c->timer);
	if (c->bev)
		bufferevent_free(c->bev); /* frees the SSL and closes the fd */
	t->st.conns--;
	t->st.closed++;
	free(c);
}

/* err: the cause as an errno, for the transaction layer above (never 0). */
static void conn_close(struct conn *c, int err, const char *why)
{
	if (c->closing)
		return;
	c->closing = true;
	LOG_LIMITED(&c->t->closed_log, LOG_LVL_INFO, NULL, "connection closed",
		    LF_S("transport", tp_names[c->tp]), LF_S("peer", c->peer_name),
		    LF_U("conn", c->id), LF_S("reason", why), LF_S("error", strerror(err)));
	if (c->t->cb.closed)
		c->t->cb.closed(c->t->arg, c->id, err, why);
	conn_free(c);
}

/* The errors a socket reports for a connection that could not be made or
 * broke: anything else in errno after an EOF is left over from another call. */
static bool is_conn_errno(int e)
{
	switch (e) {
	case ECONNREFUSED:
	case ECONNRESET:
	case ECONNABORTED:
	case ETIMEDOUT:
	case EHOSTUNREACH:
	case ENETUNREACH:
	case EHOSTDOWN:
	case ENETDOWN:
	case EPIPE:
		return true;
	default:
		return false;
	}
}

/* The next moment this stream needs looking at. */
static void conn_arm(struct conn *c)
{
	const struct transport_limits *lim = &c->t->lim;
	time_t now = now_s(), due = c->last_activity + (time_t)lim->idle_timeout;
	struct timeval tv;

	if (!c->seen_message && !c->outbound)
		due = c->last_activity + (time_t)lim->first_timeout;
	if (c->partial_since && c->partial_since + (time_t)lim->message_timeout < due)
		due = c->partial_since + (time_t)lim->message_timeout;
	if (c->outbound && c->connected && c->last_sent + (time_t)lim->keepalive < due)
		due = c->last_sent + (time_t)lim->keepalive;
	tv.tv_sec = due > now ? due - now : 0;
	tv.tv_usec = tv.tv_sec ? 0 : 1000;
	evtimer_add(&c->timer, &tv);
}

static void on_conn_timer(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	const struct transport_limits *lim = &c->t->lim;
	time_t now = now_s();
	char why[96];

	if (c->partial_since && now >= c->partial_since + (time_t)lim->message_timeout) {
		snprintf(why, sizeof(why), "a message was not completed within %u s",
			 lim->message_timeout);
		conn_close(c, ETIMEDOUT, why);
		return;
	}
	if (!c->seen_message && !c->outbound &&
	    now >= c->last_activity + (time_t)lim->first_timeout) {
		snprintf(why, sizeof(why), "no complete SIP message within %u s of connecting",
			 lim->first_timeout);
		conn_close(c, ETIMEDOUT, why);
		return;
	}
	if (now >= c->last_activity + (time_t)lim->idle_timeout) {
		if (!c->holds) {
			snprintf(why, sizeof(why), "idle for %u s with no dialog on it",
				 lim->idle_timeout);
			conn_close(c, ETIMEDOUT, why);
			return;
		}
		c->last_activity = now; /* a dialog lives on it: keep it */
	}
	if (c->outbound && c->connected && now >= c->last_sent + (time_t)lim->keepalive) {
		/* RFC 5626 section 4.4.1: a double-CRLF ping keeps NATs open */
		bufferevent_write(c->bev, "\r\n\r\n", 4);
		c->last_sent = now;
	}
	conn_arm(c);
}

/* ---- stream input ---- */

static void deliver_stream(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct transport_src src = { .tp = c->tp, .local = c->local, .conn = c->id };

	if (c->local)
		src.local_addr = (const struct sockaddr *)&c->local->addr;
	memcpy(&src.addr, &c->peer, c->peerlen);
	src.addrlen = c->peerlen;
	for (;;) {
		size_t have = evbuffer_get_length(in), msg_len = 0, skip = 0;
		size_t look = have < SIPMSG_MAX_BYTES + 4 ? have : SIPMSG_MAX_BYTES + 4;
		char why[256];
		bool ping = false;
		const char *buf;
		int err;

		if (!have) {
			c->partial_since = 0;
			return;
		}
		buf = (const char *)evbuffer_pullup(in, (ev_ssize_t)look);
		err = sipframe_stream(&c->fs, buf, look, &msg_len, &skip, &ping, why, sizeof(why));
		if (ping) /* RFC 5626 section 3.5.1: answer a ping with a pong */
			bufferevent_write(c->bev, "\r\n", 2);
		if (err == EAGAIN) {
			evbuffer_drain(in, skip);
			if (evbuffer_get_length(in) && !c->partial_since)
				c->partial_since = now_s();
			if (!evbuffer_get_length(in))
				c->partial_since = 0;
			return;
		}
		if (err) {
			c->t->st.framing_errors += err != EMSGSIZE;
			c->t->st.oversize += err == EMSGSIZE;
			conn_close(c, err, why);
			return;
		}
		c->seen_message = true;
		c->partial_since = 0;
		c->t->st.messages_in++;
		c->t->cb.message(c->t->arg, (struct slice){ buf + skip, msg_len }, &src);
		/* the callback may have closed us: look the id up again */
		if (!conn_by_id(c->t, src.conn))
			return;
		evbuffer_drain(in, skip + msg_len);
	}
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	uint64_t id = c->id;
	struct transport *t = c->t;

	c->last_activity = now_s();
	deliver_stream(c);
	c = conn_by_id(t, id);
	if (c)
		conn_arm(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	/* libevent keeps the socket's errno of the event for this callback */
	int err = EVUTIL_SOCKET_ERROR();
	char why[320];

	if (what & BEV_EVENT_CONNECTED) {
		c->connected = true;
		c->handshaken = true;
		c->last_activity = c->last_sent = now_s();
		conn_arm(c);
		return;
	}
	if (c->tp == SIP_TP_TLS && (what & BEV_EVENT_ERROR)) {
		SSL *ssl = bufferevent_openssl_get_ssl(bev);

		if (!c->handshaken) {
			char reason[256];
			unsigned long e;

			/* libevent keeps OpenSSL's errors for itself: hand them back,
			 * oldest first, so that the description sees them */
			ERR_clear_error();
			while ((e = bufferevent_get_openssl_error(bev)) != 0)
				ERR_raise(ERR_GET_LIB(e), ERR_GET_REASON(e));
			tlsctx_describe_failure(ssl, c->outbound, reason, sizeof(reason));
			snprintf(why, sizeof(why), "TLS handshake refused: %s", reason);
			c->t->st.tls_failures++;
			LOG_LIMITED(&c->t->tls_log, LOG_LVL_WARN, NULL, "TLS handshake refused",
				    LF_S("peer", c->peer_name), LF_S("reason", reason),
				    LF_S("direction", c->outbound ? "out" : "in"));
			ERR_clear_error();
			conn_close(c, EPROTO, why);
			return;
		}
		ERR_clear_error();
	}
	if ((what & BEV_EVENT_EOF) && c->outbound && !c->connected && is_conn_errno(err)) {
		/* a TLS connect refused reads as an EOF (dirty shutdowns allowed) */
		snprintf(why, sizeof(why), "cannot connect: %s", strerror(err));
		conn_close(c, err, why);
	} else if (what & BEV_EVENT_EOF) {
		conn_close(c, ECONNRESET, "closed by the peer");
	} else if (what & BEV_EVENT_ERROR) {
		if (err <= 0)
			err = ECONNRESET;
		conn_close(c, err, evutil_socket_error_to_string(err));
	}
}

/* Inbound TLS is connected once the handshake is done: the first read. */
static struct conn *conn_new(struct transport *t, enum sip_transport tp,
			     const struct transport_local *local, evutil_socket_t fd,
			     const struct sockaddr *peer, socklen_t peerlen, bool outbound,
			     const struct config_trunk *trunk, char *why, size_t whysz)
{
	struct conn *c = calloc(1, sizeof(*c));
	int opts = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;

	if (!c) {
		snprintf(why, whysz, "out of memory");
		if (fd >= 0)
			evutil_closesocket(fd);
		return NULL;
	}
	c->t = t;
	c->id = ++t->next_id;
	c->tp = tp;
	c->local = local;
	c->outbound = outbound;
	memcpy(&c->peer, peer, peerlen);
	c->peerlen = peerlen;
	addr_format(peer, c->peer_name, sizeof(c->peer_name));
	c->last_activity = c->last_sent = now_s();
	sipframe_stream_init(&c->fs);
	evtimer_assign(&c->timer, t->base, on_conn_timer, c);
	if (tp == SIP_TP_TLS) {
		SSL *ssl = NULL;

		if (outbound) {
			size_t ti = (size_t)(trunk - t->cfg->trunks);
			struct sip_uri peer_uri = { .transport = SIP_TP_TLS };

			if (!t->clients[ti] &&
			    tlsctx_client_create(&t->clients[ti], trunk, why, whysz) != 0)
				goto fail;
			/* verify against the configured peer's name, never a Contact */
			for (size_t i = 0; i < trunk->npeers; i++)
				if (trunk->peers[i].transport == SIP_TP_TLS &&
				    trunk->peers[i].resolved &&
				    addr_equal((const struct sockaddr *)&trunk->peers[i].addr, peer,
					       true))
					peer_uri = trunk->peers[i];
			if (!peer_uri.host[0]) {
				char ip[INET6_ADDRSTRLEN];

				addr_format(peer, ip, sizeof(ip));
				snprintf(peer_uri.host, sizeof(peer_uri.host), "%.*s",
					 (int)strcspn(ip[0] == '[' ? ip + 1 : ip, "]:"),
					 ip[0] == '[' ? ip + 1 : ip);
			}
			if (tlsctx_client_ssl(&ssl, t->clients[ti], trunk, &peer_uri, why, whysz))
				goto fail;
			c->bev = bufferevent_openssl_socket_new(t->base, -1, ssl,
								BUFFEREVENT_SSL_CONNECTING, opts);
		} else {
			ssl = SSL_new(local->tls);
			if (!ssl) {
				snprintf(why, whysz, "SSL_new failed");
				goto fail;
			}
			c->bev = bufferevent_openssl_socket_new(t->base, fd, ssl,
								BUFFEREVENT_SSL_ACCEPTING, opts);
			fd = -1; /* owned by the bufferevent now, even on failure */
		}
		if (c->bev)
			bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	} else {
		c->bev = bufferevent_socket_new(t->base, fd, opts);
		if (c->bev)
			fd = -1;
	}
	if (!c->bev) {
		snprintf(why, whysz, "cannot create a bufferevent");
		goto fail;
	}
	/* Never buffer more than one message can be, plus the start of the next. */
	bufferevent_setwatermark(c->bev, EV_READ, 0, 2 * SIPMSG_MAX_BYTES);
	bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->connected = !outbound;
	c->by_id = t->ids[c->id % CONN_BUCKETS];
	t->ids[c->id % CONN_BUCKETS] = c;
	c->by_addr = t->addrs[addr_hash(peer)];
	t->addrs[addr_hash(peer)] = c;
	t->st.conns++;
	conn_arm(c);
	return c;
fail:
	if (fd >= 0)
		evutil_closesocket(fd);
	free(c);
	return NULL;
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
		      void *arg)
{
	struct transport_local *loc = arg;
	struct transport *t = loc->t;
	char why[256], name[64];
	struct conn *c;

	addr_format(sa, name, sizeof(name));
	if (t->cb.admit) {
		struct transport_src src = { .tp = loc->tp,
					     .local = loc,
					     .local_addr = (const struct sockaddr *)&loc->addr };

		memcpy(&src.addr, sa, (size_t)salen);
		src.addrlen = (socklen_t)salen;
		if (!t->cb.admit(t->arg, &src)) {
			t->st.refused_unknown++;
			LOG_DEBUG(NULL, "connection from an unknown source refused",
				  LF_S("peer", name), LF_S("listen", loc->name));
			evutil_closesocket(fd);
			return;
		}
	}
	if (t->st.conns >= t->lim.max_conns || conns_from(t, sa) >= t->lim.max_conns_per_source) {
		t->st.refused++;
		LOG_LIMITED(&t->refused_log, LOG_LVL_WARN, NULL,
			    "connection refused: too many connections", LF_S("peer", name),
			    LF_S("listen", loc->name), LF_U("total", t->st.conns));
		evutil_closesocket(fd);
		return;
	}
	c = conn_new(t, loc->tp, loc, fd, sa, (socklen_t)salen, false, NULL, why, sizeof(why));
	if (!c) {
		LOG_WARN(NULL, "connection refused", LF_S("peer", name), LF_S("reason", why));
		return;
	}
	t->st.accepted++;
	LOG_DEBUG(NULL, "connection accepted", LF_S("listen", loc->name), LF_S("peer", name),
		  LF_U("conn", c->id));
}

/* ---- UDP ---- */

static void on_udp(evutil_socket_t fd, short what, void *arg)
{
	struct transport_local *loc = arg;
	struct transport *t = loc->t;

	/* A bounded number of rounds, so one busy socket cannot starve the rest. */
	for (int round = 0; round < 4; round++) {
		int n;

		for (int i = 0; i < UDP_BATCH; i++) {
			t->iov[i].iov_base = t->bufs + (size_t)i * (SIPMSG_MAX_BYTES + 1);
			t->iov[i].iov_len = SIPMSG_MAX_BYTES + 1;
			memset(&t->hdr[i].msg_hdr, 0, sizeof(t->hdr[i].msg_hdr));
			t->hdr[i].msg_hdr.msg_iov = &t->iov[i];
			t->hdr[i].msg_hdr.msg_iovlen = 1;
			t->hdr[i].msg_hdr.msg_name = &t->from[i];
			t->hdr[i].msg_hdr.msg_namelen = sizeof(t->from[i]);
		}
		n = recvmmsg(fd, t->hdr, UDP_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		for (int i = 0; i < n; i++) {
			struct transport_src src = { .tp = SIP_TP_UDP,
						     .local = loc,
						     .local_addr =
							     (const struct sockaddr *)&loc->addr };

			t->st.datagrams_in++;
			/* Over 64 KiB: no SIP message is, and no answer is owed. */
			if (t->hdr[i].msg_len > SIPMSG_MAX_BYTES ||
			    (t->hdr[i].msg_hdr.msg_flags & MSG_TRUNC)) {
				t->st.oversize++;
				continue;
			}
			memcpy(&src.addr, &t->from[i], t->hdr[i].msg_hdr.msg_namelen);
			src.addrlen = t->hdr[i].msg_hdr.msg_namelen;
			t->cb.datagram(t->arg,
				       (struct slice){ t->iov[i].iov_base, t->hdr[i].msg_len },
				       &src);
		}
		if (n < UDP_BATCH)
			return;
	}
}

/* ---- listeners ---- */

/* A burst of calls arrives faster than one loop turn reads it: the kernel's
 * default UDP buffer (about 208 KiB) overflows at around 1,500 calls/s on
 * loopback. Ask for TRANSPORT_UDP_BUFFER; the kernel caps the request at
 * net.core.rmem_max / wmem_max, and what was granted is logged so that an
 * operator knows whether to raise those. */
static void grow_buffers(const struct transport_local *loc)
{
	int want = TRANSPORT_UDP_BUFFER, rcv = 0, snd = 0;
	socklen_t len = sizeof(int);

	setsockopt(loc->fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof(want));
	setsockopt(loc->fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof(want));
	getsockopt(loc->fd, SOL_SOCKET, SO_RCVBUF, &rcv, &len);
	len = sizeof(int);
	getsockopt(loc->fd, SOL_SOCKET, SO_SNDBUF, &snd, &len);
	/* Linux reports twice the size asked for (its bookkeeping) */
	LOG_DEBUG(NULL, "UDP socket buffers", LF_S("listen", loc->name), LF_I("rcvbuf", rcv / 2),
		  LF_I("sndbuf", snd / 2), LF_I("asked", want));
}

static int bind_local(struct transport *t, struct transport_local *loc, char *why, size_t whysz)
{
	const unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC;
	struct evconnlistener *l;
	int fd;

	snprintf(loc->name, sizeof(loc->name), "%s:", tp_names[loc->tp]);
	addr_format((const struct sockaddr *)&loc->addr, loc->name + 4, sizeof(loc->name) - 4);
	if (loc->tp == SIP_TP_UDP) {
		/* no SO_REUSEADDR: UDP has no TIME_WAIT to skip, and with it a
		 * second daemon on the same port would start and take part of
		 * the first one's traffic instead of failing */
		fd = socket(loc->addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0 || bind(fd, (const struct sockaddr *)&loc->addr, loc->addrlen)) {
			snprintf(why, whysz, "cannot bind %s: %s", loc->name, strerror(errno));
			if (fd >= 0)
				close(fd);
			return EADDRINUSE;
		}
		loc->fd = fd;
		grow_buffers(loc);
		loc->ev = event_new(t->base, fd, EV_READ | EV_PERSIST, on_udp, loc);
		if (!loc->ev || event_add(loc->ev, NULL))
			return ENOMEM;
		return 0;
	}
	if (loc->tp == SIP_TP_TLS && tlsctx_server_create(&loc->tls, loc->trunk, why, whysz))
		return EINVAL;
	/* accept_backoff_attach() sets the callbacks: out of descriptors, the
	 * listener pauses rather than spinning the loop that carries SIP. */
	l = evconnlistener_new_bind(t->base, NULL, NULL, flags, 128,
				    (const struct sockaddr *)&loc->addr, (int)loc->addrlen);
	if (!l) {
		snprintf(why, whysz, "cannot listen on %s: %s", loc->name, strerror(errno));
		return EADDRINUSE;
	}
	if (accept_backoff_attach(&loc->listener, l, on_accept, loc, loc->name)) {
		snprintf(why, whysz, "out of memory");
		return ENOMEM;
	}
	return 0;
}

int transport_create(struct transport **out, struct event_base *base, const struct config *cfg,
		     const struct transport_callbacks *cb, void *arg, char *why, size_t whysz)
{
	struct transport *t = calloc(1, sizeof(*t));
	size_t max = 0;
	int err = ENOMEM;

	if (!t)
		return ENOMEM;
	t->base = base;
	t->cfg = cfg;
	t->cb = *cb;
	t->lim = (struct transport_limits){ .max_conns = TRANSPORT_MAX_CONNS,
					    .max_conns_per_source = TRANSPORT_MAX_CONNS_PER_SOURCE,
					    .first_timeout = TRANSPORT_FIRST_TIMEOUT,
					    .message_timeout = TRANSPORT_MESSAGE_TIMEOUT,
					    .idle_timeout = TRANSPORT_IDLE_TIMEOUT,
					    .keepalive = TRANSPORT_KEEPALIVE };
	t->arg = arg;
	for (size_t i = 0; i < cfg->ntrunks; i++)
		max += cfg->trunks[i].nlisten;
	t->locals = calloc(max ? max : 1, sizeof(*t->locals));
	t->clients = calloc(cfg->ntrunks ? cfg->ntrunks : 1, sizeof(*t->clients));
	t->bufs = malloc((size_t)UDP_BATCH * (SIPMSG_MAX_BYTES + 1));
	if (!t->locals || !t->clients || !t->bufs)
		goto out;
	/* One socket per distinct listen address; trunks sharing one share it. */
	for (size_t i = 0; i < cfg->ntrunks; i++) {
		for (size_t l = 0; l < cfg->trunks[i].nlisten; l++) {
			const struct sip_uri *u = &cfg->trunks[i].listen[l];
			bool dup = false;

			if (!u->resolved) {
				snprintf(why, whysz, "listen %s of trunk %s has no address",
					 u->host, cfg->trunks[i].name);
				err = EINVAL;
				goto out;
			}
			for (size_t k = 0; k < t->nlocals && !dup; k++)
				dup = t->locals[k].tp == u->transport &&
				      addr_equal((const struct sockaddr *)&t->locals[k].addr,
						 (const struct sockaddr *)&u->addr, true);
			if (dup)
				continue;
			struct transport_local *loc = &t->locals[t->nlocals++];

			loc->t = t;
			loc->tp = u->transport;
			loc->fd = -1;
			memcpy(&loc->addr, &u->addr, u->addrlen);
			loc->addrlen = u->addrlen;
			loc->trunk = &cfg->trunks[i];
			err = bind_local(t, loc, why, whysz);
			if (err)
				goto out;
			LOG_INFO(NULL, "listening", LF_S("listen", loc->name),
				 LF_S("trunk", cfg->trunks[i].name));
		}
	}
	t->st.listeners = (unsigned)t->nlocals;
	err = 0;
out:
	if (err)
		transport_destroy(t);
	else
		*out = t;
	return err;
}

void transport_stop_listening(struct transport *t)
{
	for (size_t i = 0; i < t->nlocals; i++)
		if (t->locals[i].listener)
			accept_backoff_stop(t->locals[i].listener);
}

void transport_destroy(struct transport *t)
{
	if (!t)
		return;
	for (size_t b = 0; b < CONN_BUCKETS; b++)
		while (t->ids[b])
			conn_free(t->ids[b]);
	for (size_t i = 0; i < t->nlocals; i++) {
		struct transport_local *loc = &t->locals[i];

		if (loc->ev)
			event_free(loc->ev);
		if (loc->fd >= 0)
			close(loc->fd);
		accept_backoff_free(loc->listener);
		SSL_CTX_free(loc->tls);
	}
	for (size_t i = 0; t->clients && i < t->cfg->ntrunks; i++)
		SSL_CTX_free(t->clients[i]);
	free(t->clients);
	free(t->locals);
	free(t->bufs);
	free(t);
}

const struct transport_local *transport_local_for(const struct transport *t,
						  const struct config_trunk *trunk,
						  enum sip_transport tp)
{
	for (size_t l = 0; l < trunk->nlisten; l++) {
		if (trunk->listen[l].transport != tp)
			continue;
		for (size_t i = 0; i < t->nlocals; i++)
			if (t->locals[i].tp == tp &&
			    addr_equal((const struct sockaddr *)&t->locals[i].addr,
				       (const struct sockaddr *)&trunk->listen[l].addr, true))
				return &t->locals[i];
	}
	return NULL;
}

/* ---- output ---- */

int transport_send(struct transport *t, const struct transport_local *local, enum sip_transport tp,
		   const struct sockaddr *to, socklen_t tolen, uint64_t conn,
		   const struct config_trunk *trunk, const char *buf, size_t len,
		   uint64_t *conn_out)
{
	struct conn *c;
	char why[256], name[64];

	if (conn_out)
		*conn_out = 0;
	if (tp == SIP_TP_UDP) {
		if (!local || local->fd < 0)
			return ENOTCONN;
		if (sendto(local->fd, buf, len, MSG_DONTWAIT, to, tolen) < 0)
			return errno;
		t->st.sent++;
		return 0;
	}
	c = conn ? conn_by_id(t, conn) : NULL;
	if (!c || c->closing)
		c = conn_to(t, tp, to);
	if (!c) {
		evutil_socket_t fd = -1;

		if (!trunk)
			return ENOTCONN; /* a response whose stream is gone: RFC 3261 18.2.2 */
		if (t->st.conns >= t->lim.max_conns)
			return EMFILE;
		/* the trunk's listen address of this transport: what comes back on
		 * the stream is classified as if it had arrived there */
		c = conn_new(t, tp, local && local->tp == tp ? local : NULL, fd, to, tolen, true,
			     trunk, why, sizeof(why));
		addr_format(to, name, sizeof(name));
		if (!c) {
			LOG_WARN(NULL, "cannot open a connection", LF_S("peer", name),
				 LF_S("transport", tp_names[tp]), LF_S("reason", why));
			return ENOTCONN;
		}
		if (bufferevent_socket_connect(c->bev, to, (int)tolen) < 0) {
			int err = EVUTIL_SOCKET_ERROR();

			conn_close(c, err > 0 ? err : ENOTCONN, "connect failed");
			return ENOTCONN;
		}
		LOG_DEBUG(NULL, "connecting", LF_S("peer", name), LF_S("transport", tp_names[tp]),
			  LF_U("conn", c->id));
	}
	/* libevent queues it until the connection (and TLS handshake) is up */
	if (bufferevent_write(c->bev, buf, len))
		return ENOMEM;
	c->last_sent = now_s();
	t->st.sent++;
	if (conn_out)
		*conn_out = c->id;
	return 0;
}

void transport_conn_hold(struct transport *t, uint64_t conn)
{
	struct conn *c = conn_by_id(t, conn);

	if (c)
		c->holds++;
}

void transport_conn_release(struct transport *t, uint64_t conn)
{
	struct conn *c = conn_by_id(t, conn);

	if (c && c->holds)
		c->holds--;
}

void transport_conn_alias(struct transport *t, uint64_t conn, const struct sockaddr *alias,
			  socklen_t len)
{
	struct conn *c = conn_by_id(t, conn);

	if (!c || len > sizeof(c->alias))
		return;
	unlink_chain(&t->addrs[addr_hash(conn_key(c))], c, false);
	memcpy(&c->alias, alias, len);
	c->aliaslen = len;
	c->by_addr = t->addrs[addr_hash(conn_key(c))];
	t->addrs[addr_hash(conn_key(c))] = c;
}

void transport_get_stats(const struct transport *t, struct transport_stats *out)
{
	*out = t->st;
	out->accept_pauses = 0; /* each listener counts its own */
	for (size_t i = 0; i < t->nlocals; i++)
		out->accept_pauses += accept_backoff_pauses(t->locals[i].listener);
}

void transport_set_limits(struct transport *t, const struct transport_limits *l)
{
	t->lim = *l;
}
