/* transport.h: SIP over UDP, TCP and TLS on libevent (RFC 3261 section 18).
 *
 * Listeners come from the config (a shared listen address is bound once).
 * Streams are framed here (Content-Length, RFC 5626 CRLF keepalives) and
 * bounded: message size, connections in total and per source, a deadline
 * for completing a message, an idle timeout that never closes a connection
 * a dialog holds. Datagrams are handed over whole: their framing decides
 * answers (400 for a Content-Length beyond the datagram) that need the
 * parser above. */
#ifndef SRTPBRIDGE_TRANSPORT_H
#define SRTPBRIDGE_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "srtpbridge/config.h"
#include "srtpbridge/slice.h"

#define TRANSPORT_MAX_CONNS	       4096
#define TRANSPORT_MAX_CONNS_PER_SOURCE 64
#define TRANSPORT_MESSAGE_TIMEOUT      10  /* s to complete a message once it has begun */
#define TRANSPORT_FIRST_TIMEOUT	       10  /* s from accept to the first complete message */
#define TRANSPORT_IDLE_TIMEOUT	       600 /* s without traffic before an unheld stream closes */
#define TRANSPORT_KEEPALIVE	       30  /* s between CRLF pings on idle outbound streams */
#define TRANSPORT_UDP_BUFFER	       (8 << 20) /* bytes asked for each UDP socket's buffers */

struct event_base;
struct transport;
struct transport_local; /* one bound listen address */

struct transport_src {
	enum sip_transport tp;
	const struct transport_local *local;
	const struct sockaddr *local_addr; /* as bound */
	struct sockaddr_storage addr;	   /* the sender */
	socklen_t addrlen;
	uint64_t conn; /* stream connection, 0 for UDP */
};

struct transport_callbacks {
	/* UDP: one datagram as received; borrowed for the call. */
	void (*datagram)(void *arg, struct slice data, const struct transport_src *src);
	/* TCP/TLS: one complete message framed by its Content-Length. */
	void (*message)(void *arg, struct slice msg, const struct transport_src *src);
	/* A stream closed; why is a sentence for the log, err the cause as an
	 * errno: the socket's own error where there is one (ECONNREFUSED,
	 * ECONNRESET, ETIMEDOUT, EHOSTUNREACH ...), ECONNRESET for the peer's
	 * close, EPROTO for a refused TLS handshake, EMSGSIZE or EBADMSG for a
	 * stream that cannot be framed, ETIMEDOUT for our deadlines (first or
	 * partial message, idle). Never 0. Called before the id is forgotten,
	 * also for a connection transport_send() opened a moment ago. */
	void (*closed)(void *arg, uint64_t conn, int err, const char *why);
	/* TCP/TLS: whether to take a connection from src (conn 0) before a
	 * byte of it is read or a TLS handshake begins; NULL takes every one.
	 * One refused is closed at once and counted in refused_unknown. */
	bool (*admit)(void *arg, const struct transport_src *src);
};

/* Borrows cfg for the transport's life (the caller holds a reference): the
 * listeners are bound at start and change only with a restart. Returns 0,
 * or an errno with a sentence in why (an address in use, a TLS file). */
int transport_create(struct transport **out, struct event_base *base, const struct config *cfg,
		     const struct transport_callbacks *cb, void *arg, char *why, size_t whysz);
void transport_destroy(struct transport *t); /* NULL-safe */

/* The listen address trunk sends from on tp (its first); NULL when none. */
const struct transport_local *transport_local_for(const struct transport *t,
						  const struct config_trunk *trunk,
						  enum sip_transport tp);

/* Sends one message. UDP goes from local. A stream goes over connection
 * `conn` while it lives, else over a live connection to `to` (one the peer
 * opened counts, RFC 5923), else over a new one; a TLS connection is verified
 * per trunk's TLS keys. Returns 0, or an errno (ENOTCONN: no way to send).
 * On success *conn_out (when conn_out is not NULL) is the stream the bytes
 * were queued on, 0 for UDP: a new connection may still fail, and then its
 * closed() callback names that id; on error it is 0. */
int transport_send(struct transport *t, const struct transport_local *local, enum sip_transport tp,
		   const struct sockaddr *to, socklen_t tolen, uint64_t conn,
		   const struct config_trunk *trunk, const char *buf, size_t len,
		   uint64_t *conn_out);

/* A dialog holds the stream it lives on: timeouts then leave it open. */
void transport_conn_hold(struct transport *t, uint64_t conn);
void transport_conn_release(struct transport *t, uint64_t conn);
/* Requests to alias (a peer's advertised address) may use this stream. */
void transport_conn_alias(struct transport *t, uint64_t conn, const struct sockaddr *alias,
			  socklen_t len);

/* The limits and deadlines above, for one transport (tests shorten them). */
struct transport_limits {
	unsigned max_conns, max_conns_per_source;
	unsigned first_timeout, message_timeout, idle_timeout, keepalive; /* s */
};
void transport_set_limits(struct transport *t, const struct transport_limits *l);

/* Drain: stop accepting connections; existing ones and UDP keep working. */
void transport_stop_listening(struct transport *t);

struct transport_stats {
	unsigned listeners;
	unsigned conns;
	uint64_t accepted, refused, closed;
	uint64_t refused_unknown; /* by the admit callback */
	uint64_t oversize, framing_errors, tls_failures;
	uint64_t datagrams_in, messages_in, sent;
	/* accept() paused for lack of descriptors or memory (accept_backoff.h) */
	uint64_t accept_pauses;
};
void transport_get_stats(const struct transport *t, struct transport_stats *out);

#endif
