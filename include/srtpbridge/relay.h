/* relay.h: the media worker: a thread with its own event loop that moves
 * every RTP and RTCP packet of its calls between the two legs (DESIGN.md
 * "How data flows", item 4).
 *
 * The main thread never touches a session the worker runs, and the worker
 * never touches the main thread's state: the main thread sends commands
 * (add, update, remove) through a queue and an eventfd; the worker sends
 * back what the main thread must finish (a removed session, whose ports go
 * back to the pool there) the same way. Counters are relaxed atomics that
 * the main thread reads. On the packet path: no allocation, no lock, no log
 * line; a packet that cannot be relayed is counted and dropped (toward a
 * peer that signalled no address, port 0 or c=0.0.0.0, nothing is sent and
 * nothing counted: that peer asked for no media).
 *
 * Per stream, per leg (relay_stream_params): a secure leg unprotects what
 * its peer sends (srtpctx.h, from the peer's key) and protects what goes to
 * it (from ours), under an SSRC of srtpbridge's own with continuous
 * sequence numbers and timestamps whatever the plain side does (a new
 * prompt, music on hold, a transfer restarting its sequence or changing
 * SSRC), RTCP sender SSRCs rewritten to match; a plain leg passes RTP as it
 * is. Sources: a secure leg latches onto a source only once its packet has
 * authenticated (symmetric RTP through NAT; a stranger cannot move it); a
 * plain leg takes media only from the SDP address and port (strict), or
 * from the first source at the SDP address during the first packets
 * (learn). Everything else is counted as unexpected and dropped. */
#ifndef SRTPBRIDGE_RELAY_H
#define SRTPBRIDGE_RELAY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "srtpbridge/config.h" /* enum media_latching */
#include "srtpbridge/sdes.h"
#include "srtpbridge/suite.h"

struct event_base;
struct relay;
struct relay_session;

#define RELAY_MAX_STREAMS 8 /* = OA_MAX_STREAMS */

enum relay_kind {
	RELAY_RTP = 0,
	RELAY_RTCP,
};

enum relay_dir {
	RELAY_IN = 0, /* received from the leg's peer */
	RELAY_OUT,    /* sent to it */
};

/* One leg's counters of one kind and direction. `in` counts what was
 * accepted (authenticated, from the right source); `out` what was sent. */
struct relay_counters {
	_Atomic uint64_t packets, bytes;
	_Atomic uint64_t auth_fail, replay_fail, cant_check;
	_Atomic uint64_t unexpected_source; /* in only: a source that is not the peer */
	_Atomic uint64_t errors;	    /* malformed, not relayable now, send failures */
	_Atomic uint64_t recovered; /* in: failed at first, taken by a key installed after */
	_Atomic uint64_t late;	    /* in: shed under overload, having waited too long */
	_Atomic uint64_t last_ms;   /* CLOCK_MONOTONIC ms of the last packet; 0 never */
};

/* A plain copy, for the main thread. */
struct relay_counts {
	uint64_t packets, bytes, auth_fail, replay_fail, cant_check, unexpected_source, errors;
	uint64_t recovered, late;
	uint64_t last_ms;
};

/* One key of one direction of one secure leg: the audit trail of re-keys
 * (srtpbridgectl call ID). Never the key: its fingerprint. */
struct relay_epoch {
	unsigned n;	    /* 1, 2, ... per leg, stream and direction */
	enum relay_dir dir; /* RELAY_IN: the peer's key; RELAY_OUT: ours */
	char message[16];   /* what carried it: INVITE, 183, 200, ACK, re-INVITE, UPDATE */
	uint64_t at_ms;	    /* CLOCK_MONOTONIC ms when it was installed */
	enum suite_id suite;
	unsigned tag_len; /* SRTP tag bytes */
	bool has_mki;
	uint64_t mki;
	unsigned mki_len;
	uint64_t lifetime; /* packets; 0: none signalled */
	char fingerprint[SECRET_FINGERPRINT_LEN];
	uint64_t first_ms; /* the first packet it authenticated (in) or protected (out); 0 none */
	uint64_t packets;  /* authenticated or protected under it */
	bool in_use;	   /* the worker still has it (newest, or the old one in its grace) */
	enum relay_roc {
		RELAY_ROC_UNKNOWN = 0,
		RELAY_ROC_CONTINUED, /* the peer went on with its rollover counter */
		RELAY_ROC_RESET,     /* the peer started it again at 0 */
	} roc;
};

/* What one leg of one stream does now (from the SDP both ways). */
struct relay_stream_params {
	bool active; /* relay this stream (audio, a port on both sides) */
	bool secure;
	enum suite_id suite;
	bool unencrypted_srtcp;
	struct sdes_key ours, peer; /* copies; the caller wipes its own */
	/* The peer's signalled addresses; family AF_UNSPEC when it has none
	 * (port 0, c=0.0.0.0). With rtcp_mux, RTCP goes to and comes from
	 * the RTP address. */
	struct sockaddr_storage rtp, rtcp;
	socklen_t rtp_len, rtcp_len;
	bool rtcp_mux;
	bool hold; /* the peer's SDP holds the stream (sendonly, inactive, 0.0.0.0) */
	enum media_latching latching;
	enum rekey_roc rekey_roc; /* our rollover counter after a new key of ours */
	/* What carried the peer's key and ours (the epochs' "message"), e.g.
	 * "INVITE" and "200"; NULL: "SDP". */
	const char *peer_msg, *our_msg;
};

/* How a worker reads and sends its packets. Both wait on epoll for ready
 * sockets. RELAY_IO_EPOLL then makes a recvmmsg per ready socket and a
 * sendmmsg per batch: two system calls a packet at 50 packets/s a socket.
 * RELAY_IO_URING reads one datagram from each of up to 32 ready sockets
 * with one io_uring submission and sends what they become with another
 * (every operation MSG_DONTWAIT, so each completes inside its submission):
 * 12 to 22 % less CPU a packet on loopback (bench/media/README.md).
 * RELAY_IO_AUTO is io_uring where the kernel allows it (5.18 or later, not
 * forbidden by a seccomp filter or kernel.io_uring_disabled), epoll
 * elsewhere. */
enum relay_io {
	RELAY_IO_AUTO,
	RELAY_IO_EPOLL,
	RELAY_IO_URING
};

/* Starts nworkers worker threads (0: one), each with its own loop; a new
 * session goes to the worker with the fewest. main_base is the main
 * thread's loop, where the workers' news (removed sessions) are finished.
 * Each worker calls beat(beat_arg, index) every few tens of milliseconds
 * from its own thread while its loop turns (NULL: none): the daemon's
 * watchdog waits for every worker's. 0, ENOMEM, the errno of
 * eventfd/pthread_create, or, for RELAY_IO_URING, why io_uring cannot be
 * had (ENOSYS, EPERM, EINVAL: a kernel older than 5.18). */
int relay_create(struct relay **out, struct event_base *main_base, unsigned nworkers,
		 enum relay_io io, void (*beat)(void *arg, unsigned worker), void *beat_arg);
/* 0 when relay_create can have io (AUTO: always), or why not (as above). */
int relay_io_check(enum relay_io io);
/* The I/O the workers use: RELAY_IO_EPOLL or RELAY_IO_URING, never AUTO. */
enum relay_io relay_io_used(const struct relay *r);
/* "auto", "epoll", "io_uring": the media_io values. */
const char *relay_io_name(enum relay_io io);
unsigned relay_workers(const struct relay *r);
/* Stops the workers and joins them. Every session must have been removed
 * (relay_session_remove) first, as the daemon does by ending its calls: the
 * removals pending then are finished here, their done() called. NULL-safe.
 * Main thread. */
void relay_destroy(struct relay *r);

/* Over all workers since start. */
struct relay_stats {
	unsigned workers, sessions;
	/* on io_uring now: a worker whose ring failed went on with epoll */
	unsigned uring_workers;
	uint64_t roc_continued; /* peers that went on with their ROC at a re-key */
	uint64_t roc_reset;	/* peers that started it again at 0 */
	/* recvmmsg calls (io_uring: receive submissions), and what they read */
	uint64_t batches, datagrams;
	uint64_t late; /* packets shed: they waited too long in their socket */
};
void relay_get_stats(const struct relay *r, struct relay_stats *out);

/* A session over nstreams streams whose sockets are fds[leg][i] (RTP) and
 * fds_rtcp[leg][i] (RTCP), owned by the caller until done() is called on the
 * main thread after relay_session_remove. Only sockets with SO_TIMESTAMPNS
 * on (the port pool's are) have packets that waited too long shed as late:
 * the option is the owner's, set once per socket, not once per call.
 *
 * ids[leg][i] (NULL: none) names the RTP and RTCP sockets of stream i as
 * the port pool does (portpool_pair.id; 0: no id): sockets with an id stay
 * in the epoll set of the worker that ran them after the session ends, so
 * the next session on the same sockets costs no epoll_ctl, and the worker
 * of the next session is the one that has them when that is fair to the
 * others. A socket registered anew is first emptied (portpool_drain) of
 * what reached it while no session had it; a socket still registered has
 * had nothing since, or its event would have taken it out of the set. A
 * socket stays registered only while its id is the same: the
 * owner must give a socket closed and opened again (under the same number)
 * a new id, and must not dup() them (a duplicate would keep a closed
 * socket's registration). Sockets without one are registered for the
 * session only.
 *
 * Nothing is relayed until the first relay_session_update, which hands the
 * session to its worker. With r NULL the session only counts nothing (tests
 * of signalling without media). Main thread. */
int relay_session_create(struct relay_session **out, struct relay *r, size_t nstreams,
			 const int fds[2][RELAY_MAX_STREAMS],
			 const int fds_rtcp[2][RELAY_MAX_STREAMS],
			 const uint64_t ids[2][RELAY_MAX_STREAMS]);
/* New parameters for both legs of every stream (p[leg][i]). SRTP contexts
 * are made here, on the main thread, and only when a key, suite, MKI or
 * SRTCP mode changed: a context made again would lose its rollover
 * counter. 0, or an errno (EINVAL: a key libsrtp2 refuses) with the old
 * parameters still in force. */
int relay_session_update(struct relay_session *s,
			 const struct relay_stream_params p[2][RELAY_MAX_STREAMS], size_t nstreams);
/* Stops relaying; done(arg) runs on the main thread once the worker has let
 * go of the sockets, and the session is freed after it. */
void relay_session_remove(struct relay_session *s, void (*done)(void *arg), void *arg);

/* Counters of leg (0 = A, 1 = B), stream i, kind and direction. */
void relay_session_counts(const struct relay_session *s, int leg, size_t i, enum relay_kind kind,
			  enum relay_dir dir, struct relay_counts *out);
/* The newest packet received on any leg and stream (CLOCK_MONOTONIC ms),
 * 0 when none: the media timeout's clock. */
uint64_t relay_session_last_rx_ms(const struct relay_session *s);
/* Whether any leg's peer holds any active stream (media_timeout_hold). */
bool relay_session_on_hold(const struct relay_session *s);

/* The key epochs of leg, stream i, both directions, oldest first, into
 * out[0..max); returns how many there are (may exceed max). The last 32
 * are kept, and every one still in use. */
size_t relay_session_epochs(const struct relay_session *s, int leg, size_t i,
			    struct relay_epoch *out, size_t max);

/* Once per epoch whose packets reached the lifetime its a=crypto signalled
 * (libsrtp2 only knows its own 2^48 limit): true with that epoch and its
 * leg and stream. Main thread, for the log and the counters. */
bool relay_session_lifetime_news(struct relay_session *s, int *leg, size_t *i,
				 struct relay_epoch *out);

/* How long an old inbound key stays valid after the new one authenticated
 * its first packet: packets sent under the old key just before the switch,
 * reordered or late, are still heard. */
#define RELAY_REKEY_GRACE_MS 2000

#endif
