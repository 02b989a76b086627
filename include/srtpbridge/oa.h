/* oa.h: SDP offer/answer between a call's two legs (RFC 3264), with the
 * rewrite between a secure leg (RTP/SAVP, a=crypto) and a plain one.
 *
 * Each leg keeps its own state, owned here so that the SIP layer cannot get
 * it wrong: one answer per offer (asking again returns the same answer, as a
 * 183 and then the 200 must carry), our key, suite and tag kept across later
 * offers unless the suite changes or the trunk says rekey = always, o=
 * owned per leg with its version raised only when our SDP changes, and every
 * change of a peer's key reported with the epoch that brought it. No I/O. */
#ifndef SRTPBRIDGE_OA_H
#define SRTPBRIDGE_OA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "srtpbridge/config.h"
#include "srtpbridge/sdes.h"
#include "srtpbridge/sdes_policy.h"
#include "srtpbridge/sdp.h"

/* Audio streams a call carries; an offer with more m= lines is refused. */
#define OA_MAX_STREAMS 8

struct oa_leg;

/* Borrows trunk: the config snapshot must outlive the leg. sess_id is the
 * o= session id this leg will use (random in the daemon, fixed in tests). */
int oa_leg_create(struct oa_leg **out, const struct config_trunk *trunk, uint64_t sess_id);
/* NULL-safe; wipes every key. */
void oa_leg_destroy(struct oa_leg *l);

struct oa_result {
	int status;		      /* 0, or the SIP status to refuse with (488, 491) */
	char reason[SDES_REASON_MAX]; /* with status: one line for a Warning header */
	size_t len;		      /* of the SDP written */
	bool repeated;		      /* the answer already given for this offer, again */
	bool remote_changed;	      /* that answer again, though the peer's SDP changed */
	uint32_t from_rekeyed;	      /* streams whose peer key changed, on the from leg */
	uint32_t to_rekeyed;	      /* the same on the to leg */
};

/* An offer from the peer of leg `from`: writes the offer for the peer of leg
 * `to` into out. ports[i] is our media port on `to` for m= line i. Returns 0
 * (res->status says whether the offer is refused), or ENOMEM/EIO/ENOSPC. */
int oa_offer(struct oa_leg *from, struct oa_leg *to, struct slice sdp, const uint16_t *ports,
	     size_t nports, char *out, size_t size, struct oa_result *res);

/* The answer from the peer of leg `from` (the leg our offer went to): writes
 * the answer for the peer of leg `to` (who offered). ports as for oa_offer,
 * on `to`. Called again for the same offer (a 183, then the 200), it writes
 * the same answer and says whether the peer's SDP changed meanwhile. */
int oa_answer(struct oa_leg *from, struct oa_leg *to, struct slice sdp, const uint16_t *ports,
	      size_t nports, char *out, size_t size, struct oa_result *res);

/* The offer was refused on the other leg: both legs go back to the state
 * they had before it (RFC 3264 section 8: the old session stays). */
void oa_rollback(struct oa_leg *from, struct oa_leg *to);

/* What media needs of one stream of one leg, after an answer. */
struct oa_stream_info {
	bool active; /* audio with a port on both sides */
	bool secure;
	enum suite_id suite;
	bool unencrypted_srtcp;
	const struct sdes_key *ours; /* the key we protect with, toward the peer */
	const struct sdes_key *peer; /* the key the peer protects with */
	unsigned peer_epoch;	     /* 1 for the first key, +1 at each change */
	char addr[64];		     /* the peer's media address and ports */
	uint16_t port, rtcp_port;
	bool rtcp_mux;
	bool hold; /* the peer's SDP holds it: sendonly, inactive or c=0.0.0.0 */
};

/* Returns 0, or ENOENT when the leg has no such stream. Borrowed pointers
 * stay valid until the next oa_* call on that leg. */
int oa_leg_stream(const struct oa_leg *l, size_t i, struct oa_stream_info *out);
size_t oa_leg_nstreams(const struct oa_leg *l);

#endif
