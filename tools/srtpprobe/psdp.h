/* psdp.h: srtpprobe's SDP offer/answer (RFC 3264, SDES RFC 4568) for one
 * audio stream of G.711: our offer and answer written with sdp.h's writer,
 * the far end's SDP read with sdp_parse, its a=crypto lines chosen and
 * checked with sdes_policy.h, the same functions the daemon negotiates with.
 *
 * The far end's SDP is untrusted input: every refusal is a sentence (never
 * with key material) and a status (488) the answerer can send in a Warning.
 * Key material lives in struct sdes_key (secret.h) and is wiped with the
 * session; nothing here prints a key except into the SDP it writes. */
#ifndef SRTPPROBE_PSDP_H
#define SRTPPROBE_PSDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "srtpbridge/sdes.h"
#include "srtpbridge/sdes_policy.h"
#include "srtpbridge/slice.h"
#include "srtpbridge/suite.h"

#define PSDP_MAX_CRYPTO 32   /* a=crypto lines read from one m= section */
#define PSDP_BODY_MAX	4096 /* our SDP always fits */
#define PSDP_PT_PCMU	0
#define PSDP_PT_PCMA	8
#define PSDP_CODEC_ANY	(-1) /* the answerer takes PCMU or PCMA, in the offer's order */

/* A side's direction as its SDP says it (RFC 3264 section 5.1). The same
 * order as pmedia's enum pmedia_dir, so that a cast maps one to the other. */
enum psdp_dir {
	PSDP_SENDRECV = 0,
	PSDP_SENDONLY,
	PSDP_RECVONLY,
	PSDP_INACTIVE,
};

enum psdp_srtp {
	PSDP_SRTP_MANDATORY = 0, /* RTP/SAVP with a=crypto only */
	PSDP_SRTP_OPTIONAL,	 /* answerer: either profile, as offered */
	PSDP_SRTP_OFF,		 /* RTP/AVP only */
};

/* What a probe allows; set once per call. */
struct psdp_policy {
	enum psdp_srtp srtp;
	enum suite_id suites[SUITE_COUNT]; /* --suites: offered in this order, preferred first */
	size_t nsuites;
	int codec; /* PSDP_PT_PCMU, PSDP_PT_PCMA, or PSDP_CODEC_ANY (answerer only) */
	bool pad;  /* base64 keys with '=' padding */
};

/* Our side of the SDP we write. */
struct psdp_local {
	char addr[64]; /* media address, IPv4 or IPv6 literal: c= and o= */
	uint16_t port; /* RTP port; RTCP is port + 1 (a=rtcp says so) */
};

/* The far end's SDP as read: its first audio m= section (the one we use). */
struct psdp_remote {
	size_t nmedia;	    /* m= lines in all */
	size_t audio;	    /* index of the first audio m= line with a port */
	bool has_audio;	    /* false: no audio stream with a port */
	char addr[64];	    /* its c= address, text; "0.0.0.0" / "::" for the old hold */
	bool ip6;	    /* c= IN IP6 */
	uint16_t port;	    /* RTP port */
	uint16_t rtcp_port; /* a=rtcp, else port + 1 */
	bool rtcp_mux;
	bool secure;	   /* RTP/SAVP or RTP/SAVPF */
	bool feedback;	   /* RTP/AVPF or RTP/SAVPF */
	bool profile_ok;   /* one of the four RTP profiles (not DTLS, not TCP) */
	char proto[32];	   /* as written, cut to fit, for messages */
	enum psdp_dir dir; /* media level, else session level, else sendrecv */
	bool has_pcmu, has_pcma;
	int first_g711; /* the first of PCMU/PCMA in the m= format list; -1 none */
	struct slice crypto[PSDP_MAX_CRYPTO]; /* a=crypto values, slices of the text */
	size_t ncrypto;
};

/* Reads text (the far end's SDP; not NUL-terminated, must outlive out's
 * crypto slices). Returns 0, or EBADMSG with a sentence in why: what
 * sdp_parse refuses, a c= that is not an IP literal, a port out of range.
 * An SDP without any usable audio stream parses (has_audio false): the
 * offer/answer functions say what is wrong with it. */
int psdp_parse(struct psdp_remote *out, struct slice text, char *why, size_t whysz);

/* What media needs after an offer/answer: the negotiated stream. */
struct psdp_result {
	bool secure;
	enum suite_id suite;
	struct sdes_key ours; /* what we protect with (we signalled it) */
	struct sdes_key peer; /* what the far end protects with */
	bool unencrypted_srtcp;
	uint8_t pt;		  /* PSDP_PT_PCMU or PSDP_PT_PCMA */
	enum psdp_dir dir;	  /* OUR direction: what we may do */
	enum psdp_dir remote_dir; /* as the far end's SDP says */
	char addr[64];		  /* the far end's media address, text */
	uint16_t port, rtcp_port;
	bool rtcp_mux;
	/* with an answer we write: 0, or 488 with reason (for a Warning) */
	int status;
	char reason[SDES_REASON_MAX];
};

/* One call's offer/answer state. Zero it, then psdp_session_init. */
struct psdp_session {
	struct psdp_policy pol;
	uint64_t sess_id;
	uint64_t version; /* o= version: raised with every SDP we write */
	/* our offer awaiting its answer */
	bool offer_pending;
	enum psdp_dir offer_dir;
	struct sdes_crypto offered[SUITE_COUNT];
	size_t noffered;
};

/* sess_id: the o= session id (random in the probe, fixed in tests). */
void psdp_session_init(struct psdp_session *s, const struct psdp_policy *pol, uint64_t sess_id);
/* Wipes every key. NULL-safe. */
void psdp_session_wipe(struct psdp_session *s);

/* Our offer (a new call or a re-INVITE): RTP/SAVP with one a=crypto per
 * suite of the policy in its order, tags 1..n, each with a fresh key, or
 * RTP/AVP when srtp is off; the policy's codec; direction dir. Writes it
 * into buf (NUL-terminated) and *len. 0, EINVAL (no suite, no codec), EIO
 * (no random key), ENOSPC. A previous offer still pending is replaced. */
int psdp_offer(struct psdp_session *s, const struct psdp_local *l, enum psdp_dir dir, char *buf,
	       size_t size, size_t *len);

/* The far end's answer to our pending offer. Returns 0 with *out (wipe it
 * with psdp_result_wipe), or EBADMSG with why: no offer pending, the SDP
 * does not parse, no audio stream or its port 0, another profile than
 * offered, our codec missing, the a=crypto line not one we can use (RFC
 * 4568 section 5.1.3). Either way the offer is no longer pending (one
 * answer per offer). */
int psdp_take_answer(struct psdp_session *s, struct slice sdp, struct psdp_result *out, char *why,
		     size_t whysz);

/* Answers the far end's offer: the profile must fit the policy's srtp (an
 * RTP/AVP offer under mandatory, RTP/SAVP under off: 488), a codec the
 * policy takes must be offered, and of the a=crypto lines the one whose
 * suite comes first in the policy's suites is taken (with a fresh key of
 * ours for it). The direction mirrors the offer's (sendonly -> recvonly,
 * recvonly -> sendonly, inactive -> inactive); m= lines other than the
 * audio one are refused with port 0. Returns 0 with out->status 0 and the
 * answer in buf/len, or 0 with out->status 488 and out->reason (nothing
 * written), or ENOSPC / EIO. Wipe out with psdp_result_wipe. */
int psdp_answer(struct psdp_session *s, const struct psdp_local *l, struct slice offer, char *buf,
		size_t size, size_t *len, struct psdp_result *out);

void psdp_result_wipe(struct psdp_result *r); /* NULL-safe */

/* --suites: names separated by commas (spaces allowed), as in DESIGN.md
 * (case-insensitive), each once, each usable with the linked libsrtp2
 * (suite_usable). 0, or EINVAL with a sentence in why. */
int psdp_parse_suites(const char *list, enum suite_id *out, size_t *n, char *why, size_t whysz);

const char *psdp_dir_name(enum psdp_dir d); /* "sendrecv" ... */
/* "PCMU" / "PCMA" / "?" */
const char *psdp_codec_name(int pt);

#endif
