/* srtpctx.c: one libsrtp2 session for one direction of one secure leg (see srtpctx.h).
 *
 * Written against libsrtp 2.5 (srtp.h, srtp/srtp.c). What it does on its own
 * and what this file adds on top:
 *
 * SRTCP E bit. For AES-CM suites libsrtp2 compares the packet's E bit with
 * the session's RTCP services before it authenticates anything and returns
 * srtp_err_status_cant_check in both mismatch cases. For AEAD (GCM) suites
 * it does not compare at all: srtp_unprotect_rtcp_aead() follows the packet's
 * E bit, so a packet that a misconfigured peer encrypted is accepted (ok) on
 * a session that negotiated UNENCRYPTED_SRTCP, and an unencrypted one on an
 * encrypted session, while a packet whose E bit was flipped in transit fails
 * as auth_fail. The check is therefore done here for every suite, before
 * libsrtp2 sees the packet, so that a negotiation mismatch is cant_check and
 * never accepted or counted as an attack.
 *
 * MKI. libsrtp 2.5 finds the MKI of an SRTCP packet by stepping back the RTP
 * tag length, not the RTCP one (cisco/libsrtp#733): with the _32 suites
 * (4-byte SRTP tag, 10-byte SRTCP tag) every genuine SRTCP packet with an MKI
 * fails as bad_mki. For those suites the MKI is checked here and removed
 * before a plain srtp_unprotect_rtcp(): the tag does not cover the MKI
 * (RFC 3711 section 3.4), and the session has a single master key.
 * A packet whose MKI is not ours gets bad_mki from libsrtp2 (RTP, after the
 * replay check; RTCP, before anything else): it was protected with a key
 * this session was never given, a negotiation problem rather than a failed
 * check, so it is cant_check.
 *
 * Streams of their own (srtpctx_add_stream), in libsrtp 2.5's srtp.c:
 * srtp_set_stream_roc() does not touch the stream's replay database; it only
 * stores the value as the stream's pending_roc, and srtp_get_stream_roc()
 * keeps reporting the database's ROC (0 for a new stream) until a packet
 * consumes it. While pending_roc is non-zero, srtp_get_est_pkt_index() does
 * not estimate: the packet's index is exactly roc << 16 | SEQ (for a new
 * stream always "pkt_idx_adv"), with no replay check. Outbound, the first
 * packet protected sets the database to that index and clears pending_roc;
 * inbound, the same happens only once a packet has authenticated, so forged
 * or corrupt packets do not use it up. From then on the index is estimated
 * as usual (later and slightly earlier packets, within the window, are fine).
 * Consequences: the ROC given is applied literally to the first packet, so
 * across a sequence wrap it must be the ROC of that packet (a packet from
 * after the wrap arriving first fails auth, the next right one still
 * passes); and a roc of 0 leaves nothing pending, which is the same as what
 * a new stream does by itself (index = SEQ). srtp_add_stream() itself does
 * not look for an existing stream of that SSRC: we do, first. The SSRC is in
 * host order for srtp_add_stream (policy.ssrc.value, which srtp_stream_init
 * converts), srtp_get/set_stream_roc (they convert), and in network order
 * for srtp_remove_stream. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <srtp2/srtp.h>

#include "srtpbridge/log.h"
#include "srtpbridge/sdes.h"
#include "srtpbridge/secret.h"
#include "srtpbridge/srtpcrypto.h"
#include "srtpbridge/srtpctx.h"
#include "srtpbridge/suite.h"

#define LOG_MODULE	  "srtpctx"

#define RTP_FIXED_HEADER  12 /* RFC 3550 section 5.1 */
#define RTCP_FIXED_HEADER 8  /* V/P/RC, PT, length, sender SSRC */
#define SRTCP_INDEX_LEN	  4  /* E bit and 31-bit SRTCP index (RFC 3711 section 3.4) */

_Static_assert(SRTPCTX_TRAILER_MAX == SRTP_MAX_TRAILER_LEN + SRTCP_INDEX_LEN,
	       "SRTPCTX_TRAILER_MAX must follow libsrtp2's SRTP_MAX_TRAILER_LEN");
_Static_assert(SDES_MAX_MKI_LEN <= SRTP_MAX_MKI_LEN, "an SDES MKI must fit libsrtp2's");

struct srtpctx {
	srtp_t session;
	enum srtpctx_dir dir;
	enum suite_id suite;
	unsigned window;
	/* The master key||salt, for the streams srtpctx_add_stream adds;
	 * wiped with the rest of the struct in srtpctx_destroy. */
	struct secret key;
	/* The rollover counters given to srtpctx_add_stream: libsrtp2 keeps
	 * one pending until the stream's first packet and reports 0 meanwhile,
	 * so a second re-key before any packet would carry 0 forward. */
	struct {
		uint32_t ssrc, roc;
	} seeded[8];
	unsigned nseeded;
	/* successful protects and unprotects; read by other threads */
	_Atomic uint64_t packets;
	bool unencrypted_srtcp;
	bool aead; /* SRTCP index after the tag (RFC 7714 section 9.1), not before */
	/* libsrtp 2.5 cannot find an SRTCP MKI itself with this suite (see the top) */
	bool own_rtcp_mki;
	size_t rtp_tag_len;
	size_t rtcp_tag_len;
	size_t mki_len; /* 0: no MKI */
	uint8_t mki[SDES_MAX_MKI_LEN];
};

/* A context is used by one thread at a time (libsrtp2's are not
 * thread-safe either): one writer, so a relaxed load and store, without the
 * bus lock of an atomic add on every packet. */
static void count_packet(struct srtpctx *c)
{
	atomic_store_explicit(&c->packets,
			      atomic_load_explicit(&c->packets, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

static enum srtpctx_result map_status(srtp_err_status_t st)
{
	switch (st) {
	case srtp_err_status_ok:
		return SRTPCTX_OK;
	case srtp_err_status_auth_fail:
		return SRTPCTX_AUTH_FAIL;
	case srtp_err_status_replay_fail:
	case srtp_err_status_replay_old:
		return SRTPCTX_REPLAY_FAIL;
	case srtp_err_status_cant_check:
	case srtp_err_status_bad_mki:
		return SRTPCTX_CANT_CHECK;
	default:
		return SRTPCTX_ERROR;
	}
}

static int check_params(enum srtpctx_dir dir, const struct srtpctx_params *p, const char **why)
{
	const struct suite_info *s = p ? suite_get(p->suite) : NULL;

	*why = "no parameters or no key";
	if (!p || !p->key)
		return EINVAL;
	*why = "direction out of range";
	if (dir != SRTPCTX_INBOUND && dir != SRTPCTX_OUTBOUND)
		return EINVAL;
	*why = "unknown suite";
	if (!s)
		return EINVAL;
	if (!suite_usable(p->suite, why))
		return EINVAL;
	*why = "key||salt length does not match the suite";
	if (p->key->keysalt.len != suite_keysalt_len(p->suite))
		return EINVAL;
	*why = "replay window out of 64..32767";
	if (p->window != 0 && (p->window < 64 || p->window > 32767))
		return EINVAL;
	if (p->key->has_mki) {
		*why = "MKI length out of 1..128";
		if (p->key->mki_len < 1 || p->key->mki_len > SDES_MAX_MKI_LEN)
			return EINVAL;
		*why = "MKI value does not fit its length";
		if (p->key->mki_len < sizeof(p->key->mki) &&
		    p->key->mki >> (8 * p->key->mki_len) != 0)
			return EINVAL;
	}
	return 0;
}

/* The MKI value as mki_len big-endian bytes (RFC 4568 section 6.1: an
 * integer), zero-extended on the left when mki_len exceeds 8. */
static void mki_bytes(uint8_t *out, uint64_t value, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		out[len - 1 - i] = i < sizeof(value) ? (uint8_t)(value >> (8 * i)) : 0;
}

/* srtp_create() with the session's template (ssrc_any_inbound or
 * ssrc_any_outbound), or, when specific, srtp_add_stream() with a stream of
 * ssrc's own: the same key, suite, SRTCP mode, window and MKI either way.
 * libsrtp2 derives the session keys from c->key and keeps no pointer to it. */
static srtp_err_status_t libsrtp_stream(struct srtpctx *c, bool specific, uint32_t ssrc)
{
	srtp_master_key_t master;
	srtp_master_key_t *masters[1] = { &master };
	srtp_policy_t policy;

	memset(&policy, 0, sizeof(policy));
	suite_srtp_policies(c->suite, &policy.rtp, &policy.rtcp);
	if (c->unencrypted_srtcp)
		policy.rtcp.sec_serv = sec_serv_auth;
	if (specific) {
		policy.ssrc.type = ssrc_specific;
		policy.ssrc.value = ssrc; /* host order */
	} else {
		policy.ssrc.type = c->dir == SRTPCTX_INBOUND ? ssrc_any_inbound : ssrc_any_outbound;
	}
	policy.window_size = c->window;
	policy.allow_repeat_tx = 0;
	if (c->mki_len) {
		memset(&master, 0, sizeof(master));
		master.key = c->key.bytes;
		master.mki_id = c->mki;
		master.mki_size = (unsigned)c->mki_len;
		policy.keys = masters;
		policy.num_master_keys = 1;
	} else {
		policy.key = c->key.bytes;
	}
	return specific ? srtp_add_stream(c->session, &policy) : srtp_create(&c->session, &policy);
}

int srtpctx_create(struct srtpctx **out, enum srtpctx_dir dir, const struct srtpctx_params *p)
{
	struct srtpctx *c = NULL;
	const struct suite_info *s;
	srtp_err_status_t st;
	const char *why;
	int err;

	err = check_params(dir, p, &why);
	if (err) {
		LOG_WARN(NULL, "cannot create an SRTP context", LF_S("why", why));
		return err;
	}
	(void)srtpcrypto_install(); /* before the first session: libsrtp2 is up by now */
	s = suite_get(p->suite);
	c = calloc(1, sizeof(*c));
	if (!c)
		return ENOMEM;
	c->dir = dir;
	c->suite = p->suite;
	c->window = p->window ? p->window : SRTPCTX_WINDOW;
	atomic_init(&c->packets, 0);
	c->unencrypted_srtcp = p->unencrypted_srtcp;
	c->aead = s->aead;
	c->rtp_tag_len = s->rtp_tag_len;
	c->rtcp_tag_len = s->rtcp_tag_len;
	if (p->key->has_mki) {
		c->mki_len = p->key->mki_len;
		mki_bytes(c->mki, p->key->mki, c->mki_len);
		c->own_rtcp_mki = !s->aead && s->rtp_tag_len != s->rtcp_tag_len;
	}
	/* Kept for srtpctx_add_stream (re-keying needs streams of their own
	 * under the same key); the length was checked against the suite. */
	err = secret_set(&c->key, p->key->keysalt.bytes, p->key->keysalt.len);
	if (err)
		goto out;

	st = libsrtp_stream(c, false, 0);
	if (st != srtp_err_status_ok) {
		c->session = NULL;
		err = st == srtp_err_status_alloc_fail ? ENOMEM : EIO;
		LOG_ERROR(NULL, "libsrtp2 refused an SRTP session", LF_S("suite", s->name),
			  LF_I("srtp_err", st));
	}
out:
	if (err)
		srtpctx_destroy(c);
	else
		*out = c;
	return err;
}

void srtpctx_destroy(struct srtpctx *c)
{
	if (!c)
		return;
	if (c->session)
		(void)srtp_dealloc(c->session);
	/* the whole struct, and with it our copy of the master key (c->key) */
	OPENSSL_cleanse(c, sizeof(*c));
	free(c);
}

/* libsrtp2 takes int lengths and assumes SRTPCTX_TRAILER_MAX writable bytes
 * after the packet: both are checked before it touches the buffer. */
static bool protect_fits(const size_t *len, size_t cap)
{
	return *len <= (size_t)INT_MAX - SRTPCTX_TRAILER_MAX && cap >= *len + SRTPCTX_TRAILER_MAX;
}

static enum srtpctx_result protect(struct srtpctx *c, uint8_t *buf, size_t *len, size_t cap,
				   bool rtcp)
{
	srtp_err_status_t st;
	int n;

	if (c->dir != SRTPCTX_OUTBOUND || !protect_fits(len, cap))
		return SRTPCTX_ERROR;
	n = (int)*len;
	if (c->mki_len)
		st = rtcp ? srtp_protect_rtcp_mki(c->session, buf, &n, 1, 0)
			  : srtp_protect_mki(c->session, buf, &n, 1, 0);
	else
		st = rtcp ? srtp_protect_rtcp(c->session, buf, &n)
			  : srtp_protect(c->session, buf, &n);
	if (st != srtp_err_status_ok)
		return map_status(st);
	if (n < 0)
		return SRTPCTX_ERROR;
	*len = (size_t)n;
	count_packet(c);
	return SRTPCTX_OK;
}

enum srtpctx_result srtpctx_protect_rtp(struct srtpctx *c, uint8_t *buf, size_t *len, size_t cap)
{
	return protect(c, buf, len, cap, false);
}

enum srtpctx_result srtpctx_protect_rtcp(struct srtpctx *c, uint8_t *buf, size_t *len, size_t cap)
{
	return protect(c, buf, len, cap, true);
}

enum srtpctx_result srtpctx_unprotect_rtp(struct srtpctx *c, uint8_t *buf, size_t *len)
{
	srtp_err_status_t st;
	int n;

	if (c->dir != SRTPCTX_INBOUND || *len > INT_MAX)
		return SRTPCTX_ERROR;
	if (*len < RTP_FIXED_HEADER + c->mki_len + c->rtp_tag_len)
		return SRTPCTX_CANT_CHECK;
	n = (int)*len;
	if (c->mki_len)
		st = srtp_unprotect_mki(c->session, buf, &n, 1);
	else
		st = srtp_unprotect(c->session, buf, &n);
	if (st != srtp_err_status_ok)
		return map_status(st);
	if (n < 0)
		return SRTPCTX_ERROR;
	*len = (size_t)n;
	count_packet(c);
	return SRTPCTX_OK;
}

/* Checks and removes the MKI of an AES-CM SRTCP packet
 * (... || E+index || MKI || tag) for libsrtp 2.5, which looks for it in the
 * wrong place with the _32 suites. */
static bool strip_rtcp_mki(const struct srtpctx *c, uint8_t *buf, int *n)
{
	uint8_t *mki = buf + (size_t)*n - c->rtcp_tag_len - c->mki_len;

	if (memcmp(mki, c->mki, c->mki_len) != 0)
		return false;
	memmove(mki, mki + c->mki_len, c->rtcp_tag_len);
	*n -= (int)c->mki_len;
	return true;
}

enum srtpctx_result srtpctx_unprotect_rtcp(struct srtpctx *c, uint8_t *buf, size_t *len)
{
	size_t index_at;
	srtp_err_status_t st;
	bool encrypted;
	int n;

	if (c->dir != SRTPCTX_INBOUND || *len > INT_MAX)
		return SRTPCTX_ERROR;
	if (*len < RTCP_FIXED_HEADER + SRTCP_INDEX_LEN + c->rtcp_tag_len + c->mki_len)
		return SRTPCTX_CANT_CHECK;
	/* AES-CM: RTCP || E+index || MKI || tag (RFC 3711 section 3.4);
	 * AEAD:   RTCP+tag || E+index || MKI (RFC 7714 section 9.1). */
	index_at = *len - c->mki_len - SRTCP_INDEX_LEN - (c->aead ? 0 : c->rtcp_tag_len);
	encrypted = (buf[index_at] & 0x80) != 0;
	if (encrypted == c->unencrypted_srtcp)
		return SRTPCTX_CANT_CHECK;

	n = (int)*len;
	if (c->own_rtcp_mki) {
		if (!strip_rtcp_mki(c, buf, &n))
			return SRTPCTX_CANT_CHECK;
		st = srtp_unprotect_rtcp(c->session, buf, &n);
	} else if (c->mki_len) {
		st = srtp_unprotect_rtcp_mki(c->session, buf, &n, 1);
	} else {
		st = srtp_unprotect_rtcp(c->session, buf, &n);
	}
	if (st != srtp_err_status_ok)
		return map_status(st);
	if (n < 0)
		return SRTPCTX_ERROR;
	*len = (size_t)n;
	count_packet(c);
	return SRTPCTX_OK;
}

int srtpctx_get_roc(const struct srtpctx *c, uint32_t ssrc, uint32_t *roc)
{
	uint32_t v;

	/* Host order: libsrtp2 converts it to look the stream up. */
	if (srtp_get_stream_roc(c->session, ssrc, &v) != srtp_err_status_ok)
		return ENOENT;
	/* a counter never goes back: what was seeded holds until it moves on */
	for (unsigned i = 0; i < c->nseeded; i++)
		if (c->seeded[i].ssrc == ssrc && c->seeded[i].roc > v)
			v = c->seeded[i].roc;
	*roc = v;
	return 0;
}

int srtpctx_add_stream(struct srtpctx *c, uint32_t ssrc, uint32_t roc)
{
	srtp_err_status_t st;
	uint32_t v;

	/* srtp_add_stream would insert a second stream for the same SSRC */
	if (srtp_get_stream_roc(c->session, ssrc, &v) == srtp_err_status_ok)
		return EEXIST;
	st = libsrtp_stream(c, true, ssrc);
	if (st == srtp_err_status_ok) {
		/* pending until the first packet (see the top of this file) */
		st = srtp_set_stream_roc(c->session, ssrc, roc);
		if (st != srtp_err_status_ok)
			(void)srtp_remove_stream(c->session, htonl(ssrc));
	}
	if (st != srtp_err_status_ok) {
		LOG_ERROR(NULL, "libsrtp2 refused a stream", LF_S("suite", suite_name(c->suite)),
			  LF_I("srtp_err", st));
		return st == srtp_err_status_alloc_fail ? ENOMEM : EIO;
	}
	if (c->nseeded < sizeof(c->seeded) / sizeof(c->seeded[0])) {
		c->seeded[c->nseeded].ssrc = ssrc;
		c->seeded[c->nseeded++].roc = roc;
	}
	return 0;
}

uint64_t srtpctx_packets(const struct srtpctx *c)
{
	return atomic_load_explicit(&c->packets, memory_order_relaxed);
}

const char *srtpctx_result_name(enum srtpctx_result r)
{
	switch (r) {
	case SRTPCTX_OK:
		return "ok";
	case SRTPCTX_AUTH_FAIL:
		return "auth_fail";
	case SRTPCTX_REPLAY_FAIL:
		return "replay_fail";
	case SRTPCTX_CANT_CHECK:
		return "cant_check";
	case SRTPCTX_ERROR:
		return "error";
	}
	return "unknown";
}
