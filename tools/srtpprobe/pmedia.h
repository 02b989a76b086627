/* pmedia.h: srtpprobe's media engine: one audio stream (RTP + RTCP, plain or
 * SRTP) of one test call, on the probe's single-threaded libevent loop.
 *
 * The caller sends tone A (600 Hz) always; the answerer sends tone B
 * (1000 Hz) while it hears A (A classified in any of the last
 * PMEDIA_HEAR_FRAMES frames received, the latest of them no more than
 * PMEDIA_HEAR_FRAMES * 20 + 100 ms ago, so that a stream that stops is not
 * "heard" forever) and tone C (1500 Hz) otherwise, from its first packet
 * on. Every frame received is classified (tone.h), and
 * counted twice: in the statistics, which count everything since start, and
 * in a measurement window that the user restarts (pmedia_window_reset) so
 * that the verdict (pmedia_heard) judges only the audio it should: e.g.
 * 0.5 s after media start, and again after a hold is resumed.
 *
 * G.711 only (PCMU PT 0, PCMA PT 8), 8 kHz, 20 ms (160 samples) a packet,
 * sent at the count of packets due since start on CLOCK_MONOTONIC (no
 * drifting timer chain; a one-shot timer set to the next packet's due
 * time). libevent's default clock is CLOCK_MONOTONIC_COARSE, so packets
 * leave up to ~4 ms late (jitter ~1.5 ms); a base made with
 * EVENT_BASE_FLAG_PRECISE_TIMER gives ~0.1 ms at about twice the CPU for
 * many streams. RTP on an even port, RTCP on the next (we do not offer
 * rtcp-mux; RTCP that arrives on the RTP port is taken as RTCP). An RTCP compound packet (SR, or RR while we do not send, with
 * one report block about the stream we receive, + SDES CNAME) every second.
 *
 * Fault switches (struct pmedia_faults) act on OUR sending side only, to
 * reproduce the field's silent-call causes on purpose.
 *
 * Everything received is untrusted: it is counted, never trusted, never a
 * crash. The engine never logs (it would log per packet); everything it
 * knows is in struct pmedia_stats. Key material is copied in, wiped on
 * update and destroy, and never printed.
 *
 * srtplib_init() (srtplib.h) must have run before a secure stream starts.
 * All functions run on the loop's thread. */
#ifndef SRTPPROBE_PMEDIA_H
#define SRTPPROBE_PMEDIA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "srtpbridge/sdes.h"
#include "srtpbridge/suite.h"
#include "tone.h"

struct event_base;
struct pmedia;

#define PMEDIA_PTIME_MS	   20  /* ms of audio per packet */
#define PMEDIA_FRAME	   160 /* samples per packet (8 kHz) */
#define PMEDIA_PT_PCMU	   0
#define PMEDIA_PT_PCMA	   8
#define PMEDIA_HEAR_FRAMES 10	/* the answerer sends B while A is in the last 10 frames */
#define PMEDIA_RTCP_MS	   1000 /* RTCP interval */
#define PMEDIA_REKEY_GRACE_MS                                                                      \
	2000 /* the old inbound context still decrypts this long after a new peer key */
#define PMEDIA_HEARD_MIN_FRAMES 25 /* see pmedia_verdict() */
#define PMEDIA_MAX_SSRC		4  /* remote SSRCs remembered in the stats */

enum pmedia_role {
	PMEDIA_CALLER = 0, /* sends A */
	PMEDIA_ANSWERER,   /* sends B while it hears A, else C */
};

/* OUR side's direction, as negotiated (RFC 3264): what we may do. We send
 * RTP only in SENDRECV and SENDONLY; we count whatever arrives in every
 * direction (a peer that sends on hold is a finding, not a reason to drop);
 * RTCP goes out in every direction (RFC 3264 section 5.1), as an RR while
 * we do not send RTP. */
enum pmedia_dir {
	PMEDIA_SENDRECV = 0,
	PMEDIA_SENDONLY,
	PMEDIA_RECVONLY,
	PMEDIA_INACTIVE,
};

/* Fault switches (issue 12 item 2). All-zero (= {0}) is "no fault". They
 * act on what WE send, in either role. */
struct pmedia_faults {
	/* Protect with the other tag length of the negotiated AES-CM suite
	 * (_80 <-> _32). A suite with no such twin (GCM) makes pmedia_start()
	 * return ENOTSUP; pmedia_fault_suite_ok() tells beforehand. */
	bool tag_mismatch;
	/* Protect with a random key of the right length, not the signalled one. */
	bool wrong_key;
	/* An update that brings a new our_key: keep protecting with the old. */
	bool no_rekey;
	/* An update that brings a new our_key: the new context's ROC starts at
	 * 0 (the default carries the ROC over). Without seq_start_set, our
	 * first sequence number is then PMEDIA_ROC_RESET_SEQ, so that the ROC
	 * is 1 about one second into the call. */
	bool roc_reset;
	/* Our first sequence number is seq_start (else random). */
	bool seq_start_set;
	uint16_t seq_start;
	/* Plain RTP and RTCP although the stream is secure. */
	bool send_plain;
	/* SRTCP with the E bit 0 (unencrypted) although UNENCRYPTED_SRTCP was
	 * not negotiated. (With it negotiated, SRTCP is unencrypted anyway.) */
	bool plain_rtcp;
	/* No RTP and no RTCP at all. */
	bool no_media;
	/* RTP whose payload is digital silence (0xFF PCMU, 0xD5 PCMA). */
	bool silence;
	/* No RTCP. */
	bool no_rtcp;
	/* Non-zero: send RTP from this port and RTCP from rtp_from + 1 (bound
	 * on the same local address) instead of the advertised pair; we
	 * receive on both pairs. Should be even (odd works; RTCP is +1). */
	uint16_t rtp_from;
};

#define PMEDIA_ROC_RESET_SEQ (65535 - 50)

/* What the stream is, from SDP offer/answer. Given to pmedia_start() and
 * again, complete, to pmedia_update() after each re-INVITE or re-answer. The
 * engine copies everything: the caller may wipe its copy right after. */
struct pmedia_params {
	/* Where we send RTP. Port 0 or the unspecified address (c=0.0.0.0,
	 * RFC 2543 hold) = send no RTP and no RTCP (we still receive). */
	struct sockaddr_storage remote_rtp;
	socklen_t remote_rtp_len;
	/* Where we send RTCP (a=rtcp); remote_rtcp_len 0 = remote_rtp's port + 1. */
	struct sockaddr_storage remote_rtcp;
	socklen_t remote_rtcp_len;
	uint8_t pt; /* PMEDIA_PT_PCMU or PMEDIA_PT_PCMA; what we send and expect */
	enum pmedia_dir dir;
	bool secure; /* RTP/SAVP: the fields below apply */
	enum suite_id suite;
	struct sdes_key our_key;  /* the key WE signalled: protects what we send */
	struct sdes_key peer_key; /* the key the PEER signalled: what we receive */
	bool unencrypted_srtcp;	  /* UNENCRYPTED_SRTCP was negotiated */
};

/* Interarrival counters of one received stream (RFC 3550 A.1, A.3, A.8),
 * public so that tests can feed synthetic arrivals (pmedia_rx_*). Do not
 * touch the fields: the functions below own them. */
struct pmedia_rx {
	bool init;
	uint32_t ssrc;
	uint16_t max_seq;
	uint32_t cycles; /* count of seq wraps << 16 */
	uint32_t base_seq;
	uint32_t bad_seq;
	uint32_t probation;
	uint64_t received;
	uint64_t expected_prior;
	uint64_t received_prior;
	int64_t transit; /* last transit, timestamp units */
	bool have_transit;
	double jitter; /* timestamp units, RFC 3550 A.8 (float: no 1/16 rounding) */
};

/* One RTP arrival: seq and timestamp from the header, arrival in timestamp
 * units (8 kHz) on our own clock. Returns true when the packet counts as
 * received (false: a source still on probation or a big jump in seq, see
 * RFC 3550 A.1; those restart the stream after two in sequence). */
bool pmedia_rx_packet(struct pmedia_rx *r, uint16_t seq, uint32_t ts, uint32_t arrival);
/* RFC 3550 A.3: extended highest seq; expected; cumulative lost =
 * expected - received (negative with duplicates; an RTCP report clamps it
 * to 0, RFC 3550 6.4.1 / A.3). */
uint32_t pmedia_rx_ext_max(const struct pmedia_rx *r);
uint64_t pmedia_rx_expected(const struct pmedia_rx *r);
int64_t pmedia_rx_lost(const struct pmedia_rx *r);
/* The fraction lost since the last call (the interval of one report), in
 * 1/256 (RFC 3550 A.3); 0 when packets were duplicated. Advances the
 * interval. */
uint8_t pmedia_rx_fraction(struct pmedia_rx *r);
/* Interarrival jitter in ms (jitter / 8). */
double pmedia_rx_jitter_ms(const struct pmedia_rx *r);

/* Counts per classification of frames (tone.h). */
struct pmedia_tones {
	uint64_t n[TONE_CLASS_COUNT]; /* indexed by enum tone_class */
};

/* The measurement window: what the verdict reads. */
struct pmedia_window {
	struct pmedia_tones tones; /* frames received and classified since the reset */
	uint64_t ms;		   /* its length: reset (or start) to now, or to stop */
};

enum pmedia_heard {
	PMEDIA_HEARD_NOTHING = 0, /* fewer than PMEDIA_HEARD_MIN_FRAMES frames of anything */
	PMEDIA_HEARD_FAR,	  /* the far tone: B for the caller, A for the answerer */
	PMEDIA_HEARD_C,		  /* caller only: C, the far end does not hear us */
	PMEDIA_HEARD_OWN,	  /* our own tone comes back: A for the caller, B or C for the
				     answerer (a looping bridge, an echo IVR) */
	PMEDIA_HEARD_SILENCE,	  /* packets arrive, their audio is silent */
	PMEDIA_HEARD_OTHER,	  /* audio arrives, none of the above: noise, other tones,
				     too much loss for any one class to count */
};

/* The verdict over a window, a pure function. With E = ms / 20 (frames
 * expected in the window), "heard X" = count(X) >= PMEDIA_HEARD_MIN_FRAMES
 * and 2 * count(X) >= E. Checked in this order, the first that holds wins:
 * FAR (B for the caller, A for the answerer), C (caller only), OWN (A for
 * the caller; B + C together for the answerer), SILENCE; else OTHER when
 * at least PMEDIA_HEARD_MIN_FRAMES frames of any class arrived in the
 * window, else NOTHING. */
enum pmedia_heard pmedia_verdict(enum pmedia_role role, const struct pmedia_window *w);

/* Per direction. "rx" counts what arrived, "tx" what we sent. */
struct pmedia_stats {
	/* sending */
	uint32_t local_ssrc;
	uint64_t rtp_sent, rtp_bytes_sent; /* bytes: UDP payload, after protect */
	uint64_t rtcp_sent, rtcp_bytes_sent;
	uint32_t tx_roc; /* ROC of our stream (secure); 0 otherwise */

	/* receiving: RTP accepted (authenticated when secure, well-formed,
	 * our payload type or not) */
	uint64_t rtp_recv, rtp_bytes_recv; /* bytes as received, before unprotect */
	uint64_t rtcp_recv, rtcp_bytes_recv;
	int64_t lost;	   /* RFC 3550 A.3 expected - received, may be < 0 here */
	double loss_pct;   /* 100 * max(lost, 0) / expected; 0 when nothing expected */
	double jitter_ms;  /* RFC 3550 A.8, of the current remote SSRC */
	double max_gap_ms; /* longest time between two RTP packets accepted */
	/* decrypt (unprotect) failures, by srtpctx result; RTP and RTCP apart */
	uint64_t rtp_auth_fail, rtp_replay_fail, rtp_cant_check, rtp_other_fail;
	uint64_t rtcp_auth_fail, rtcp_replay_fail, rtcp_cant_check, rtcp_other_fail;
	uint64_t rtp_malformed;	 /* not RTP after unprotect (rtp_parse), or too short */
	uint64_t rtcp_malformed; /* not a compound RTCP packet (rtcp_check) */
	uint64_t wrong_pt;	 /* accepted RTP of another payload type: not classified */
	/* packets (RTP or RTCP) whose source is not the address and port we
	 * send that kind to; they are still processed (and counted above). */
	uint64_t unexpected_src;
	struct sockaddr_storage last_rtp_src; /* of the last RTP accepted; family 0 = none */
	struct sockaddr_storage last_rtcp_src;

	struct pmedia_tones tones; /* every frame classified since start */
	struct pmedia_window window;

	bool have_first_rx;
	uint64_t first_rx_ms; /* first RTP accepted, ms after pmedia_start() */

	/* RTT (RFC 3550 6.4.1) from the peer's report blocks about our SSRC */
	uint64_t rtt_count;
	double rtt_min_ms, rtt_avg_ms, rtt_max_ms; /* valid when rtt_count > 0 */
	/* The peer's last report block about our stream (what it receives of
	 * ours), valid when peer_report. */
	bool peer_report;
	double peer_fraction_lost; /* 0..1 */
	int32_t peer_cumulative_lost;
	double peer_jitter_ms;

	/* remote SSRCs seen in accepted RTP, in order of first appearance */
	uint32_t remote_ssrc[PMEDIA_MAX_SSRC];
	unsigned n_remote_ssrc;	 /* how many are in remote_ssrc */
	uint64_t ssrc_changes;	 /* times the RTP SSRC differed from the previous packet's */
	bool rx_roc_known;	 /* secure and a packet of the current SSRC decrypted */
	uint32_t rx_roc;	 /* ROC of the receive stream */
	uint64_t rekeys_tx;	 /* our-key changes applied (not counting no_rekey) */
	uint64_t rekeys_rx;	 /* peer-key changes applied */
	uint64_t rx_on_old_key;	 /* packets that decrypted only with the previous peer key */
	enum tone_class tx_tone; /* what we send now (TONE_SILENCE with the fault) */
	bool sending;		 /* RTP goes out now */
	uint64_t send_errors;	 /* sendto() failed (not counted as sent) */
	uint64_t protect_errors; /* srtpctx refused to protect (not sent) */
	uint64_t early_drops;	 /* RTP/RTCP that arrived before pmedia_start: dropped */
};

/* Creates a stream for role, bound on local's address: RTP on local's port
 * and RTCP on the next, or when local's port is 0 a free even pair the
 * engine picks; with faults->rtp_from also the pair rtp_from, rtp_from+1.
 * faults may be NULL (none); it is copied. borrows base for the engine's
 * life. Nothing is sent until pmedia_start(). Returns new *out, or an errno
 * with a sentence in why (EADDRINUSE: the port pair is taken, EINVAL,
 * ENOMEM, or a socket error). */
int pmedia_create(struct pmedia **out, struct event_base *base, enum pmedia_role role,
		  const struct sockaddr *local, socklen_t local_len,
		  const struct pmedia_faults *faults, char *why, size_t whysz);
/* The bound RTP port: what the SDP's m= line advertises (RTCP is +1). */
uint16_t pmedia_local_port(const struct pmedia *m);

/* Starts sending and receiving with p (copied; see struct pmedia_params).
 * 0, EALREADY (started), EINVAL (p inconsistent: pt, key length for the
 * suite...), ENOTSUP (tag_mismatch on a suite with no twin), EIO (libsrtp2
 * refused), each with a sentence in why. The sockets are read from create
 * on, but what arrives before the start (no key, no codec yet) is only
 * counted (early_drops). The first packet leaves at once. */
int pmedia_start(struct pmedia *m, const struct pmedia_params *p, char *why, size_t whysz);
/* A new offer/answer: p complete again. New remote addresses, pt and
 * direction take effect at once. A new our_key re-keys our sending side,
 * carrying our ROC over and continuing our sequence (faults: no_rekey,
 * roc_reset); a new peer_key re-keys the receive side, keeping the old
 * context PMEDIA_REKEY_GRACE_MS for packets in flight. A change of suite,
 * of secure, or of unencrypted_srtcp rebuilds both sides (ROC carried
 * over). Same errors as pmedia_start (EINVAL when not started); on error
 * the stream keeps its previous parameters. */
int pmedia_update(struct pmedia *m, const struct pmedia_params *p, char *why, size_t whysz);
/* Stops sending RTP and RTCP, for good (a BYE); receiving and counting go
 * on until destroy; the window's length stops growing. */
void pmedia_stop(struct pmedia *m);
/* Copies the statistics now. */
void pmedia_stats(const struct pmedia *m, struct pmedia_stats *st);
/* Restarts the measurement window: counts to 0, its start now. */
void pmedia_window_reset(struct pmedia *m);
/* pmedia_verdict(role, window now). */
enum pmedia_heard pmedia_heard(const struct pmedia *m);
/* Closes the sockets, cancels the events, wipes every key. NULL-safe. */
void pmedia_destroy(struct pmedia *m);

/* A fresh random master key||salt for suite into *key (zeroed first: no
 * MKI, no lifetime), for the a=crypto WE offer or answer. 0, EINVAL, EIO. */
int pmedia_random_key(enum suite_id suite, struct sdes_key *key);
/* Whether faults can act on suite: false (with a sentence in *why,
 * optional) for tag_mismatch on a suite with no tag-length twin. */
bool pmedia_fault_suite_ok(const struct pmedia_faults *faults, enum suite_id suite,
			   const char **why);

/* Hands the engine one datagram as if it had arrived on its RTP (rtcp
 * false) or RTCP socket from `from`: the whole receive path (unprotect,
 * parse, classify, RTCP reports). On the RTP socket, RTCP (RFC 5761 4:
 * second byte 192..223) is told apart and taken as RTCP, so a peer that
 * multiplexes does not spoil the RTP counts. For fuzzing and tests;
 * borrows pkt. */
void pmedia_input(struct pmedia *m, bool rtcp, const uint8_t *pkt, size_t n,
		  const struct sockaddr *from, socklen_t fromlen);

/* Test-only: runs the engine's clock speed times faster (pacing, RTCP
 * interval, window length, grace, jitter all scale together, so the
 * numbers read as at real pace). Call before pmedia_start; 1..50. */
void pmedia_set_speed(struct pmedia *m, unsigned speed);

/* Names, for reports and JSON. */
const char *pmedia_role_name(enum pmedia_role r);   /* "caller", "answerer" */
const char *pmedia_dir_name(enum pmedia_dir d);	    /* "sendrecv", "sendonly"... */
const char *pmedia_heard_name(enum pmedia_heard h); /* "nothing", "far", "C", "own",
							"silence", "other" */

#endif
