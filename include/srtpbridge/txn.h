/* txn.h: SIP transactions (RFC 3261 section 17, as updated by RFC 6026).
 *
 * Our own layer, not libosip2's osip_t FSM (docs/transactions.md says why):
 * libosip2 is only the parser and serializer here. The layer matches
 * inbound messages to transactions through two hash tables (server and
 * client), retransmits over unreliable transports, runs Timers A to M and
 * tells the transaction user (TU: the B2BUA core) what happened through
 * struct txn_callbacks. It never opens sockets: every byte leaves through
 * the send callback, every timer through struct txn_timer_ops, so the tests
 * drive it with a fake clock and a fake transport.
 *
 * Single-threaded: one layer belongs to one event loop. Callbacks run
 * inside txn_layer_receive(), txn_respond(), txn_abort(),
 * txn_layer_conn_closed() and timer expiries; they may call back into the
 * layer (respond, abort, request), but never txn_layer_destroy().
 *
 * Streams: a client transaction sent over TCP or TLS is bound to the
 * connection its request went out on (the send callback names it). When
 * the transport reports that connection closed (txn_layer_conn_closed), every
 * client transaction bound to it that has no final response yet fails at
 * once, as a failed send would, instead of waiting for Timer B or F. */
#ifndef SRTPBRIDGE_TXN_H
#define SRTPBRIDGE_TXN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <osipparser2/osip_message.h>

#include "srtpbridge/config.h" /* enum sip_transport */

struct txn;
struct txn_layer;
struct txn_timer;      /* embedded in each transaction; defined in txn.c */
struct txn_fake_clock; /* the tests' clock */

/* Where a message goes or came from. For UDP, addr is the peer; for TCP and
 * TLS, conn names the stream (0: any live one to addr, or a new one). local
 * is opaque to the layer (the transport's listen socket, for instance): it is
 * copied from a request's source into the destination of its responses.
 * trunk, also opaque, names whose TLS settings verify a new stream we open. */
struct txn_addr {
	enum sip_transport transport;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	uint64_t conn;
	const void *local;
	const struct config_trunk *trunk;
};

enum txn_kind {
	TXN_ICT = 0, /* INVITE client */
	TXN_NICT,    /* non-INVITE client */
	TXN_IST,     /* INVITE server */
	TXN_NIST,    /* non-INVITE server */
};

enum txn_state {
	TXN_CALLING = 0, /* ICT: request sent, nothing back yet */
	TXN_TRYING,	 /* NICT, NIST */
	TXN_PROCEEDING,
	TXN_COMPLETED,
	TXN_CONFIRMED, /* IST: ACK for a non-2xx received */
	TXN_ACCEPTED,  /* RFC 6026: ICT/IST after a 2xx */
	TXN_TERMINATED,
};

enum txn_timer_id {
	TXN_TIMER_A = 0,  /* ICT retransmit, unreliable only, doubling */
	TXN_TIMER_B,	  /* ICT timeout in Calling, 64*T1 */
	TXN_TIMER_D,	  /* ICT Completed: absorb final retransmits */
	TXN_TIMER_E,	  /* NICT retransmit, unreliable only, doubling to T2 */
	TXN_TIMER_F,	  /* NICT timeout, 64*T1 */
	TXN_TIMER_G,	  /* IST final response retransmit, unreliable only */
	TXN_TIMER_H,	  /* IST: no ACK within 64*T1 */
	TXN_TIMER_I,	  /* IST Confirmed: absorb ACKs */
	TXN_TIMER_J,	  /* NIST Completed: absorb request retransmits */
	TXN_TIMER_K,	  /* NICT Completed: absorb response retransmits */
	TXN_TIMER_L,	  /* RFC 6026 IST Accepted */
	TXN_TIMER_M,	  /* RFC 6026 ICT Accepted */
	TXN_TIMER_TRYING, /* IST: the delayed 100 Trying (txn_config.trying_delay_ms) */
};

struct txn_config {
	uint32_t t1_ms; /* RTT estimate, 500 */
	uint32_t t2_ms; /* retransmit cap for non-INVITE requests and INVITE responses, 4000 */
	uint32_t t4_ms; /* maximum time a message stays in the network, 5000 */
	/* 0 (default): an INVITE server transaction sends 100 Trying on
	 * receipt; else only when the TU has sent no response by then
	 * (RFC 3261 17.2.1 allows up to 200 ms). */
	uint32_t trying_delay_ms;
};

/* RFC 3261 values: T1 500 ms, T2 4 s, T4 5 s, 100 Trying at once. */
void txn_config_defaults(struct txn_config *cfg);

/* Messages passed to callbacks are borrowed for the call: clone to keep. A
 * txn pointer stays valid until terminated() has returned. */
struct txn_callbacks {
	/* Required. Returns 0 or an errno; reliable is true for TCP and TLS
	 * (the layer will not retransmit, so the transport should report a
	 * failure rather than hope). conn_out is never NULL and holds to->conn
	 * on entry: a stream send sets it to the connection the bytes went
	 * over or were queued on (a new one, still connecting, included), so
	 * that a client transaction is bound to it (txn_layer_conn_closed). */
	int (*send)(void *arg, const struct txn_addr *to, bool reliable, const char *buf,
		    size_t len, uint64_t *conn_out);
	/* A new server transaction; or, with t NULL, an ACK that belongs to
	 * no transaction: the ACK for a 2xx (RFC 3261 17.2.3; RFC 6026
	 * Accepted passes it up), or a stray one. */
	void (*request)(void *arg, struct txn *t, osip_message_t *msg, const struct txn_addr *from);
	/* A response for a client transaction: every 1xx, the first final
	 * response, and every 2xx of an INVITE (RFC 6026 Accepted). */
	void (*response)(void *arg, struct txn *t, osip_message_t *msg);
	/* A response that matches no transaction, typically a 2xx
	 * retransmission after Timer M: a B2BUA must still ACK it. */
	void (*stray_response)(void *arg, osip_message_t *msg, const struct txn_addr *from);
	/* Timer B, F or H fired: the transaction failed and terminates next. */
	void (*timeout)(void *arg, struct txn *t, enum txn_timer_id which);
	/* A send the layer made on its own (retransmission, ACK, 100 Trying)
	 * failed, or the stream a client transaction waits on for its final
	 * response closed (txn_layer_conn_closed): the transaction terminates
	 * next. */
	void (*transport_error)(void *arg, struct txn *t, int err);
	/* Last callback for t: drop every pointer to it. */
	void (*terminated)(void *arg, struct txn *t);
};

/* The seam between the layer and a clock. arm() is only called on a timer
 * that is not armed and disarm() only on one that is; ms is never 0 (a
 * zero-length timer ends the state at once instead). Two implementations:
 * txn_timer_ops_libevent (ctx: a struct event_base *) and the fake clock. */
struct txn_timer_ops {
	void (*arm)(void *ctx, struct txn_timer *t, uint64_t ms);
	void (*disarm)(void *ctx, struct txn_timer *t);
};
extern const struct txn_timer_ops txn_timer_ops_libevent;

/* Copies cfg (NULL: defaults) and cb; borrows arg, ops and timer_ctx for
 * the layer's life. 0, EINVAL (bad config, no send callback) or ENOMEM. */
int txn_layer_create(struct txn_layer **out, const struct txn_config *cfg,
		     const struct txn_callbacks *cb, void *arg, const struct txn_timer_ops *ops,
		     void *timer_ctx);
/* Terminates every live transaction (terminated() is called for each),
 * cancels their timers and frees everything. NULL-safe; not from a callback. */
void txn_layer_destroy(struct txn_layer *l);

/* An inbound message from the transport. Takes msg: it is freed even on
 * error. Finds or creates the transaction and calls the TU. Returns 0
 * (including absorbed retransmissions and strays handed to the TU),
 * EBADMSG (no Via, CSeq, Call-ID, From or To; CSeq method differs from
 * the request method; a sent-by port out of range), ENOMEM, ESHUTDOWN, or
 * the send error of an INVITE's immediate 100 Trying: the request is then
 * dropped without any callback, and the client's retransmission retries. */
int txn_layer_receive(struct txn_layer *l, osip_message_t *msg, const struct txn_addr *from);

/* Starts a client transaction for req (not ACK), sent to `to`. Takes req
 * (freed even on error). Adds a branch to the top Via when it has none;
 * a branch without the z9hG4bK cookie is refused (RFC 3261 8.1.1.7). On
 * success *out (when out is not NULL) is the transaction, borrowed; over TCP
 * or TLS its peer (txn_get_peer) names the connection the send callback
 * reported, and the transaction is bound to it (txn_layer_conn_closed).
 * Returns 0, EINVAL, EEXIST (a transaction with this branch and method is
 * live), ENOMEM, ESHUTDOWN, or the send callback's error: a request that
 * could not be sent starts nothing and no callback is made. */
int txn_request(struct txn_layer *l, osip_message_t *req, const struct txn_addr *to, void *tu_data,
		struct txn **out);

/* Sends a response in server transaction t. Takes resp (freed even on
 * error). Allowed: any response while Trying/Proceeding; a 2xx while
 * Accepted (the TU retransmits its 2xx, RFC 6026). The response goes to
 * txn_get_peer(t). Returns 0, EINVAL (not allowed in this state), ENOMEM,
 * or the send error, in which case t has been terminated (terminated() was
 * called before this returns). */
int txn_respond(struct txn *t, osip_message_t *resp);

/* Resends the last response of server transaction t byte for byte: the
 * TU's retransmission of its 2xx while Accepted (RFC 6026), without building
 * it again. 0, EINVAL (no response yet, not a server transaction,
 * terminated) or the send error (t is left as it is). */
int txn_retransmit(struct txn *t);

/* Sends msg outside any transaction (the ACK for a 2xx, a stateless
 * answer). Takes msg. 0, EINVAL, ENOMEM or the send error. */
int txn_layer_send(struct txn_layer *l, osip_message_t *msg, const struct txn_addr *to);
/* The same for bytes already serialised (an ACK kept for the 2xx
 * retransmissions it answers). Borrows buf. 0, EINVAL or the send error. */
int txn_layer_send_buf(struct txn_layer *l, const char *buf, size_t len, const struct txn_addr *to);

/* The INVITE server transaction a CANCEL request cancels (RFC 3261 9.2,
 * matched by 17.2.3 with method INVITE), or NULL. Borrows cancel; returns
 * borrowed. */
struct txn *txn_find_invite_for_cancel(struct txn_layer *l, osip_message_t *cancel);

/* Ends t now without a timeout callback (for example an INVITE client
 * transaction still Proceeding 64*T1 after its CANCEL, RFC 3261 9.1).
 * terminated() is called before this returns. */
void txn_abort(struct txn *t);

/* The transport closed stream conn; err is the cause (ECONNREFUSED,
 * ECONNRESET, ETIMEDOUT, EPROTO ...; 0 or less counts as ECONNRESET). Every
 * client transaction bound to conn that has no final response yet (INVITE
 * Calling or Proceeding, non-INVITE Trying or Proceeding) gets
 * transport_error(err), then terminated(), oldest first, before this
 * returns. Transactions with a final response, server transactions and
 * those on other connections are left alone. Costs a walk of one bucket of
 * the pending stream-bound client transactions, not of the whole table. */
void txn_layer_conn_closed(struct txn_layer *l, uint64_t conn, int err);

/* Live transactions, both roles. */
size_t txn_layer_count(const struct txn_layer *l);

/* How many times the layer resent t's request (Timer A, E) or its last
 * response (Timer G) on its own: a response to a request sent more than
 * once cannot tell which copy it answers (Karn), so it times nothing. */
unsigned txn_retransmits(const struct txn *t);
void *txn_get_data(const struct txn *t);
void txn_set_data(struct txn *t, void *data);
enum txn_kind txn_get_kind(const struct txn *t);
enum txn_state txn_get_state(const struct txn *t);
/* Returns borrowed: the request that created t. */
osip_message_t *txn_get_request(const struct txn *t);
/* Returns borrowed: where t sends (a client's requests, a server's
 * responses: RFC 3261 18.2.2 applied to the request's source, see
 * docs/transactions.md). */
const struct txn_addr *txn_get_peer(const struct txn *t);
/* Overrides a server transaction's response destination (a TU policy such
 * as replying to the source port of a NATed client without rport). */
void txn_set_peer(struct txn *t, const struct txn_addr *to);

const char *txn_state_name(enum txn_state s);
const char *txn_timer_name(enum txn_timer_id id);

/* The fake clock: time stands still until advanced, and due timers fire in
 * order of due time, then of arming. For tests; it lives in the library so
 * that every module's tests can share it. It must outlive the layers that
 * use it. */
int txn_fake_clock_create(struct txn_fake_clock **out);
void txn_fake_clock_destroy(struct txn_fake_clock *c); /* NULL-safe */
extern const struct txn_timer_ops txn_timer_ops_fake;  /* ctx: the clock */
/* Moves time forward by ms, firing each timer due by then at its own time
 * (now() during its callback is its due time), including timers armed by
 * those callbacks. */
void txn_fake_clock_advance(struct txn_fake_clock *c, uint64_t ms);
uint64_t txn_fake_clock_now(const struct txn_fake_clock *c);
size_t txn_fake_clock_pending(const struct txn_fake_clock *c);

#endif
