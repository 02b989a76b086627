/* srtpctx.h: one libsrtp2 session for one direction of one secure leg.
 *
 * The only module that calls libsrtp2's session API (srtpcrypto.c gives it
 * its crypto primitives), so that a move to libsrtp 3 (whose
 * protect/unprotect signatures change) touches one file here
 * (notes/libraries.md). One session per direction per leg: inbound from the
 * peer's key (ssrc_any_inbound), outbound from ours (ssrc_any_outbound);
 * two sessions protecting the same SSRC would make each other's packets
 * replays. Each context belongs to the thread that uses it (libsrtp2 has no
 * locks); create and destroy may happen on another thread before and after.
 *
 * Results are what the relay counts: ok, auth_fail (wrong key, corruption,
 * an attack), replay_fail (a duplicate, or older than the replay window),
 * cant_check (a packet that cannot be checked as negotiated: too short for
 * the tag, SRTCP whose E bit says encrypted when the session said
 * UNENCRYPTED_SRTCP or the other way round, an MKI that names a key this
 * session was not given: a negotiation mismatch, not an attack), error
 * (anything else). After a failed unprotect the buffer's contents are
 * undefined (libsrtp2 decrypts in place): try another context on a copy.
 * Key material is wiped when the context is destroyed. */
#ifndef SRTPBRIDGE_SRTPCTX_H
#define SRTPBRIDGE_SRTPCTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "srtpbridge/sdes.h"
#include "srtpbridge/suite.h"

/* Bytes a protect may add after an RTP or RTCP packet: libsrtp2's
 * SRTP_MAX_TRAILER_LEN (tag and MKI) plus SRTCP's 4-byte index. Every
 * buffer handed to a protect has this much room after the packet. */
#define SRTPCTX_TRAILER_MAX (144 + 4)
/* The replay window (packets): a second at 50 packets a second is far too
 * little for real jitter and reordering across carrier networks. */
#define SRTPCTX_WINDOW 1024

enum srtpctx_dir {
	SRTPCTX_INBOUND = 0, /* unprotect what the peer sends, with its key */
	SRTPCTX_OUTBOUND,    /* protect what we send, with our key */
};

enum srtpctx_result {
	SRTPCTX_OK = 0,
	SRTPCTX_AUTH_FAIL,
	SRTPCTX_REPLAY_FAIL,
	SRTPCTX_CANT_CHECK,
	SRTPCTX_ERROR,
};

struct srtpctx_params {
	enum suite_id suite;
	const struct sdes_key *key; /* borrowed for the call: keysalt, and MKI when has_mki */
	bool unencrypted_srtcp;	    /* UNENCRYPTED_SRTCP was negotiated */
	unsigned window;	    /* replay window; 0 = SRTPCTX_WINDOW */
};

struct srtpctx;

/* srtplib_init() must have run. Returns new *out, or EINVAL (a key whose
 * length is not the suite's, a suite libsrtp2 lacks, a window out of
 * 64..32767), ENOMEM, or EIO (libsrtp2 refused, its code logged). A key
 * with an MKI makes a session whose packets carry that MKI (RFC 3711
 * section 3.1): protect appends it; unprotect requires it. */
int srtpctx_create(struct srtpctx **out, enum srtpctx_dir dir, const struct srtpctx_params *p);
/* srtp_dealloc (which zeroes libsrtp2's key copies) and our copy wiped.
 * NULL-safe. */
void srtpctx_destroy(struct srtpctx *c);

/* In place. *len is the packet's length in, the result's out. protect
 * needs cap >= *len + SRTPCTX_TRAILER_MAX (else SRTPCTX_ERROR, nothing
 * written). An outbound context only protects, an inbound one only
 * unprotects (else SRTPCTX_ERROR). */
enum srtpctx_result srtpctx_protect_rtp(struct srtpctx *c, uint8_t *buf, size_t *len, size_t cap);
enum srtpctx_result srtpctx_unprotect_rtp(struct srtpctx *c, uint8_t *buf, size_t *len);
enum srtpctx_result srtpctx_protect_rtcp(struct srtpctx *c, uint8_t *buf, size_t *len, size_t cap);
enum srtpctx_result srtpctx_unprotect_rtcp(struct srtpctx *c, uint8_t *buf, size_t *len);

/* The rollover counter of ssrc's stream (RFC 3711 3.3.1), for srtpbridgectl
 * and re-keying; for a stream srtpctx_add_stream seeded, at least the seed
 * (libsrtp2 reports 0 until the first packet). 0, or ENOENT when the
 * session has no stream for ssrc yet. */
int srtpctx_get_roc(const struct srtpctx *c, uint32_t ssrc, uint32_t *roc);

/* Re-keying (docs/media.md): gives the session a stream of its own for ssrc
 * (an ssrc_specific policy with the session's key, suite and MKI) whose
 * rollover counter starts at roc, so that a new key picks up a stream 21.8
 * minutes (2^16 packets) into a call where the old key left it:
 * srtp_set_stream_roc only works on a stream that exists, and the
 * ssrc_any template would start it at 0. For an inbound session the first
 * packet's index is then estimated from roc; for an outbound one our next
 * packet goes out under it. Allocates (not for the packet path). 0, EEXIST
 * when the session already has a stream for ssrc, ENOMEM, EIO. */
int srtpctx_add_stream(struct srtpctx *c, uint32_t ssrc, uint32_t roc);

/* Packets protected or unprotected successfully so far (RTP and RTCP), for
 * the lifetime signalled in a=crypto, which libsrtp2 does not know. */
uint64_t srtpctx_packets(const struct srtpctx *c);

const char *srtpctx_result_name(enum srtpctx_result r); /* "ok", "auth_fail"... */

#endif
