/* Offer/answer between two legs. Lines we do not change are copied as they
 * came; we write c=, the m= port and protocol, o=, a=rtcp and a=crypto, and
 * drop what cannot cross a B2BUA that terminates media (ICE, DTLS). */
#include "srtpbridge/oa.h"
#include "srtpbridge/sdes_policy.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#define MAX_CRYPTO_LINES 128

enum proto {
	P_OTHER = 0,
	P_AVP,
	P_AVPF,
	P_SAVP,
	P_SAVPF,
	P_DTLS
};
enum role {
	ROLE_IDLE = 0,
	ROLE_OFFER_IN,
	ROLE_OFFER_OUT,
	ROLE_ANSWERED_IN,
	ROLE_ANSWERED_OUT
};

/* One a=crypto line with one key: the only kind srtpbridge accepts. */
struct crypto1 {
	bool valid;
	uint32_t tag;
	enum suite_id suite;
	struct sdes_key key;
	bool unencrypted_srtcp;
};

struct stream {
	/* negotiated */
	bool active, secure;
	struct crypto1 ours, peer;
	unsigned peer_epoch;
	char addr[64];
	uint16_t port, rtcp_port;
	bool rtcp_mux;
	bool hold; /* the peer's SDP does not ask for our media */
	/* what we offer on this leg, kept across offers under rekey = keep */
	struct crypto1 offered[SUITE_COUNT];
	size_t noffered;
	/* the offer under way */
	bool p_disabled;
	bool p_secure; /* offer in: we answer with keys; offer out: we offered keys */
	bool p_osrtp;  /* offer out: RTP/AVP with a=crypto (RFC 8643) */
	enum proto p_proto;
	/* offer in: what a declined stream's answer repeats (RFC 3264 section 6:
	 * the media, the profile and at least one format), as whole tokens so
	 * that a cut one is still a token */
	char p_media[32], p_protocol[48], p_fmt[32];
	struct crypto1 p_peer, p_ours;
	char p_addr[64];
	uint16_t p_port, p_rtcp_port;
	bool p_rtcp_mux, p_hold;
};

struct oa_leg {
	const struct config_trunk *trunk;
	struct sdes_policy pol;
	uint64_t sess_id, version;
	enum role role;
	/* Grown to the most m= lines an offer on this call had: nearly every
	 * call has one stream, and eight (OA_MAX_STREAMS) made a leg 14.7 KB
	 * to zero at setup and wipe at the end, a few percent of a call's CPU
	 * (bench/cps). Entries below cap are zeroed when they come. */
	struct stream *st;
	size_t cap;
	size_t nst, pending_n;
	char *last_body; /* our last SDP after o=, to raise the version only on change */
	size_t last_body_len;
	char *answer; /* offer in: the answer we gave */
	size_t answer_len;
	char *peer_answer; /* offer out: the answer the peer gave first */
	size_t peer_answer_len;
};

/* ---- small helpers ---- */

/* The bytes of a writer's buffer that may hold anything: what it wrote and
 * its NUL, or all of it after an overflow. Wiping only those keeps a call's
 * cost off a 16 KiB memset per SDP. */
static size_t written(const struct sdp_writer *w)
{
	return w->overflow ? w->size : (w->n < w->size ? w->n + 1 : w->size);
}

static void crypto1_wipe(struct crypto1 *c)
{
	OPENSSL_cleanse(c, sizeof(*c));
}

static void crypto1_from(struct crypto1 *dst, const struct sdes_crypto *c)
{
	crypto1_wipe(dst);
	dst->valid = true;
	dst->tag = c->tag;
	dst->suite = c->suite;
	dst->key = c->keys[0];
	dst->unencrypted_srtcp = c->unencrypted_srtcp;
}

static bool crypto1_same_key(const struct crypto1 *a, const struct crypto1 *b)
{
	return a->valid && b->valid && a->suite == b->suite &&
	       secret_equal(&a->key.keysalt, &b->key.keysalt);
}

static void replace_copy(char **dst, size_t *dlen, const char *src, size_t n)
{
	if (*dst) {
		OPENSSL_cleanse(*dst, *dlen);
		free(*dst);
	}
	*dst = NULL;
	*dlen = 0;
	if (src && n) {
		*dst = malloc(n);
		if (*dst) {
			memcpy(*dst, src, n);
			*dlen = n;
		}
	}
}

static enum proto proto_of(struct slice p)
{
	if (slice_eq(p, "RTP/AVP"))
		return P_AVP;
	if (slice_eq(p, "RTP/AVPF"))
		return P_AVPF;
	if (slice_eq(p, "RTP/SAVP"))
		return P_SAVP;
	if (slice_eq(p, "RTP/SAVPF"))
		return P_SAVPF;
	if (p.n >= 16 && memcmp(p.p, "UDP/TLS/RTP/SAVP", 16) == 0)
		return P_DTLS;
	return P_OTHER;
}

static const char *proto_text(bool secure, bool feedback)
{
	return secure ? (feedback ? "RTP/SAVPF" : "RTP/SAVP") : (feedback ? "RTP/AVPF" : "RTP/AVP");
}

static bool feedback(enum proto p)
{
	return p == P_AVPF || p == P_SAVPF;
}

static const char *our_addr(const struct oa_leg *l)
{
	return l->trunk->media_advertise ? l->trunk->media_advertise : l->trunk->media_address;
}

static const char *our_family(const struct oa_leg *l)
{
	return strchr(our_addr(l), ':') ? "IP6" : "IP4";
}

static void refuse(struct oa_result *res, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void refuse(struct oa_result *res, int status, const char *fmt, ...)
{
	va_list ap;

	res->status = status;
	va_start(ap, fmt);
	vsnprintf(res->reason, sizeof(res->reason), fmt, ap);
	va_end(ap);
}

/* Attributes that cannot cross: we terminate media, so the peers' ICE and
 * DTLS never meet, and a=crypto is ours to write per leg. */
static bool dropped_attr(struct slice name)
{
	static const char *const names[] = { "crypto",	    "candidate", "end-of-candidates",
					     "fingerprint", "setup",	 "remote-candidates",
					     "tls-id",	    NULL };

	for (int i = 0; names[i]; i++)
		if (slice_eq(name, names[i]))
			return true;
	if (name.n > 4 && memcmp(name.p, "ice-", 4) == 0)
		return true;
	/* vendor spellings of ICE candidates (a=x-candidate-ipv6 from Teams)
	 * would hand the peer's own addresses to the other side */
	for (size_t i = 0; i + 9 <= name.n; i++)
		if (memcmp(name.p + i, "candidate", 9) == 0)
			return true;
	return false;
}

/* c=IN IP4 0.0.0.0 is the old way to put a call on hold (RFC 3264 section
 * 8.4): the other side must see it too, or it keeps sending. */
static bool unspecified(struct slice c_value)
{
	const char *end;

	if (!c_value.p)
		return false; /* no c= line at all */
	end = c_value.p + c_value.n;

	return (c_value.n >= 7 && memcmp(end - 7, "0.0.0.0", 7) == 0 &&
		(c_value.n == 7 || end[-8] == ' ')) ||
	       (c_value.n >= 2 && memcmp(end - 2, "::", 2) == 0 &&
		(c_value.n == 2 || end[-3] == ' '));
}

static void put_conn(struct sdp_writer *w, const struct oa_leg *l, struct slice in_value)
{
	if (unspecified(in_value))
		sdp_putf(w, 'c', "IN %s %s", our_family(l),
			 strcmp(our_family(l), "IP6") == 0 ? "::" : "0.0.0.0");
	else
		sdp_putf(w, 'c', "IN %s %s", our_family(l), our_addr(l));
}

static size_t crypto_lines(const struct sdp *s, size_t m, struct slice *out, size_t max)
{
	struct slice name, value;
	size_t n = 0;

	for (size_t i = s->media[m].line + 1; i < s->media[m].end; i++)
		if (sdp_attr(s, i, &name, &value) && slice_eq(name, "crypto") && n < max)
			out[n++] = value;
	return n;
}

/* Whether stream m of the peer's SDP puts it on hold: sendonly or inactive
 * (RFC 3264 section 8.4; a media-level direction overrides the session's),
 * or the old c=0.0.0.0. What the media timeout waits for then is longer. */
static bool peer_holds(const struct sdp *s, size_t m, struct slice conn)
{
	static const char *const dirs[] = { "sendonly", "inactive", "recvonly", "sendrecv" };
	const struct sdp_media *md = &s->media[m];

	if (unspecified(conn))
		return true;
	for (int level = 0; level < 2; level++)
		for (int d = 0; d < 4; d++)
			if (level == 0 ? sdp_find_attr(s, md->line, md->end, dirs[d], NULL) >= 0
				       : sdp_find_attr(s, 0, s->session_end, dirs[d], NULL) >= 0)
				return d < 2;
	return false;
}

/* The peer's media address of stream m: c=, the m= port, a=rtcp, rtcp-mux,
 * and whether it holds. */
static void peer_media(const struct sdp *s, size_t m, char *addr, size_t asize, uint16_t *port,
		       uint16_t *rtcp_port, bool *mux, bool *hold)
{
	struct slice type, a, v;

	sdp_media_conn(s, m, &type, &a);
	*hold = peer_holds(s, m, a);
	snprintf(addr, asize, "%.*s", (int)a.n, a.p);
	*port = s->media[m].port;
	*rtcp_port = *port ? (uint16_t)(*port + 1) : 0;
	if (sdp_find_attr(s, s->media[m].line, s->media[m].end, "rtcp", &v) >= 0) {
		unsigned long p = strtoul(v.p, NULL, 10);

		if (p > 0 && p < 65536)
			*rtcp_port = (uint16_t)p;
	}
	*mux = sdp_find_attr(s, s->media[m].line, s->media[m].end, "rtcp-mux", NULL) >= 0;
}

/* ---- writing ---- */

static void put_crypto(struct sdp_writer *w, const struct crypto1 *c, bool pad)
{
	struct sdes_crypto full;
	char line[SDES_LINE_MAX];

	memset(&full, 0, sizeof(full));
	full.tag = c->tag;
	full.suite = c->suite;
	full.kdr = -1;
	full.nkeys = 1;
	full.keys[0] = c->key;
	full.unencrypted_srtcp = c->unencrypted_srtcp;
	if (sdes_print(line, sizeof(line), &full, pad))
		sdp_putf(w, 'a', "crypto:%s", line);
	else
		w->overflow = true;
	OPENSSL_cleanse(line, sizeof(line));
	sdes_wipe(&full);
}

/* Session-level lines after o=: c= ours, ICE and DTLS gone, the rest kept. */
static void write_session(struct sdp_writer *w, const struct sdp *in, const struct oa_leg *l)
{
	struct slice name, value;

	for (size_t i = 2; i < in->session_end; i++) {
		if (in->lines[i].type == 'c')
			put_conn(w, l, in->lines[i].value);
		else if (!sdp_attr(in, i, &name, &value) || !dropped_attr(name))
			sdp_put(w, in->lines[i].type, in->lines[i].value);
	}
}

/* One m= section: the attributes of `in`'s section m, on our port, with the
 * m= value given, our c= and a=rtcp, and the crypto lines given. */
static void write_media(struct sdp_writer *w, const struct sdp *in, size_t m,
			const struct oa_leg *l, uint16_t port, const char *proto,
			const struct crypto1 *crypto, size_t ncrypto)
{
	const struct sdp_media *md = &in->media[m];
	struct slice name, value;
	/* RFC 5761: with rtcp-mux, a=rtcp names the RTP port itself */
	unsigned rtcp =
		sdp_find_attr(in, md->line, md->end, "rtcp-mux", NULL) >= 0 ? port : port + 1u;

	sdp_putf(w, 'm', "%.*s %u %s %.*s", (int)md->media.n, md->media.p, port, proto,
		 (int)md->fmts.n, md->fmts.p);
	for (size_t i = md->line + 1; i < md->end; i++) {
		if (in->lines[i].type == 'c') {
			put_conn(w, l, in->lines[i].value);
		} else if (sdp_attr(in, i, &name, &value) && slice_eq(name, "rtcp")) {
			/* a=rtcp:PORT [IN IP4 ADDR]: our RTCP port, and our address
			 * when it named one */
			if (memchr(value.p, ' ', value.n))
				sdp_putf(w, 'a', "rtcp:%u IN %s %s", rtcp, our_family(l),
					 unspecified(value)
						 ? (strcmp(our_family(l), "IP6") ? "0.0.0.0" : "::")
						 : our_addr(l));
			else
				sdp_putf(w, 'a', "rtcp:%u", rtcp);
		} else if (!sdp_attr(in, i, &name, &value) || !dropped_attr(name)) {
			sdp_put(w, in->lines[i].type, in->lines[i].value);
		}
	}
	for (size_t i = 0; i < ncrypto; i++)
		put_crypto(w, &crypto[i], l->pol.padding);
}

/* v=, our o= (the version raised only when what follows it changed, RFC 3264
 * section 8), then the body. */
static int finish(struct oa_leg *l, struct sdp_writer *body, char *out, size_t size, size_t *len)
{
	struct sdp_writer w;
	size_t n = sdp_writer_finish(body);

	if (!n)
		return ENOSPC;
	if (!l->last_body || n != l->last_body_len || memcmp(l->last_body, body->buf, n) != 0) {
		l->version++;
		replace_copy(&l->last_body, &l->last_body_len, body->buf, n);
		if (!l->last_body)
			return ENOMEM;
	}
	sdp_writer_init(&w, out, size);
	sdp_put(&w, 'v', SLICE_LIT("0"));
	sdp_putf(&w, 'o', "- %" PRIu64 " %" PRIu64 " IN %s %s", l->sess_id, l->version,
		 our_family(l), our_addr(l));
	if (w.size - w.n <= n) {
		sdp_writer_finish(&w);
		w.overflow = true;
	} else {
		memcpy(w.buf + w.n, body->buf, n);
		w.n += n;
		w.buf[w.n] = '\0';
	}
	*len = sdp_writer_finish(&w);
	return *len ? 0 : ENOSPC;
}

/* ---- legs ---- */

int oa_leg_create(struct oa_leg **out, const struct config_trunk *trunk, uint64_t sess_id)
{
	struct oa_leg *l = calloc(1, sizeof(*l));

	if (!l)
		return ENOMEM;
	l->trunk = trunk;
	sdes_policy_from_trunk(&l->pol, trunk);
	l->sess_id = sess_id;
	*out = l;
	return 0;
}

void oa_leg_destroy(struct oa_leg *l)
{
	if (!l)
		return;
	replace_copy(&l->last_body, &l->last_body_len, NULL, 0);
	replace_copy(&l->answer, &l->answer_len, NULL, 0);
	replace_copy(&l->peer_answer, &l->peer_answer_len, NULL, 0);
	if (l->st) {
		OPENSSL_cleanse(l->st, l->cap * sizeof(*l->st));
		free(l->st);
	}
	OPENSSL_cleanse(l, sizeof(*l));
	free(l);
}

/* Room for n streams (n <= OA_MAX_STREAMS), the new ones zeroed. A larger
 * array takes the old one's contents, and the old one is wiped: it may hold
 * keys. */
static int reserve_streams(struct oa_leg *l, size_t n)
{
	struct stream *st;

	if (n <= l->cap)
		return 0;
	st = calloc(n, sizeof(*st));
	if (!st)
		return ENOMEM;
	if (l->st) {
		memcpy(st, l->st, l->cap * sizeof(*st));
		OPENSSL_cleanse(l->st, l->cap * sizeof(*st));
		free(l->st);
	}
	l->st = st;
	l->cap = n;
	return 0;
}

static void clear_pending(struct oa_leg *l)
{
	for (size_t i = 0; i < l->cap; i++) {
		crypto1_wipe(&l->st[i].p_peer);
		crypto1_wipe(&l->st[i].p_ours);
	}
}

void oa_rollback(struct oa_leg *from, struct oa_leg *to)
{
	clear_pending(from);
	clear_pending(to);
	from->role = from->nst ? ROLE_ANSWERED_IN : ROLE_IDLE;
	to->role = to->nst ? ROLE_ANSWERED_OUT : ROLE_IDLE;
}

size_t oa_leg_nstreams(const struct oa_leg *l)
{
	return l->nst;
}

int oa_leg_stream(const struct oa_leg *l, size_t i, struct oa_stream_info *out)
{
	const struct stream *s;

	if (i >= l->nst)
		return ENOENT;
	s = &l->st[i];
	memset(out, 0, sizeof(*out));
	out->active = s->active;
	out->secure = s->secure;
	out->suite = s->ours.suite;
	out->unencrypted_srtcp = s->ours.unencrypted_srtcp;
	out->ours = s->secure ? &s->ours.key : NULL;
	out->peer = s->secure ? &s->peer.key : NULL;
	out->peer_epoch = s->peer_epoch;
	snprintf(out->addr, sizeof(out->addr), "%s", s->addr);
	out->port = s->port;
	out->rtcp_port = s->rtcp_port;
	out->rtcp_mux = s->rtcp_mux;
	out->hold = s->hold;
	return 0;
}

/* ---- the offer ---- */

/* Decides what we answer on `from` for offered stream m; 0 or a refusal. */
static int take_offered_stream(struct oa_leg *from, const struct sdp *in, size_t m,
			       struct oa_result *res)
{
	const struct config_trunk *t = from->trunk;
	const struct sdp_media *md = &in->media[m];
	struct stream *s = &from->st[m];
	struct slice lines[MAX_CRYPTO_LINES];
	size_t n = crypto_lines(in, m, lines, MAX_CRYPTO_LINES);
	enum proto p = proto_of(md->proto);
	bool savp = p == P_SAVP || p == P_SAVPF, osrtp = !savp && n > 0;
	struct sdes_answer ans;

	crypto1_wipe(&s->p_peer);
	crypto1_wipe(&s->p_ours);
	s->p_disabled = true;
	s->p_secure = false;
	s->p_proto = p;
	{
		struct slice fmts = md->fmts, fmt0 = slice_split(&fmts, ' ');

		snprintf(s->p_media, sizeof(s->p_media), "%.*s", (int)md->media.n, md->media.p);
		snprintf(s->p_protocol, sizeof(s->p_protocol), "%.*s", (int)md->proto.n,
			 md->proto.p);
		snprintf(s->p_fmt, sizeof(s->p_fmt), "%.*s", (int)fmt0.n, fmt0.p);
	}
	if (p == P_DTLS) {
		refuse(res, 488, "DTLS-SRTP (%.*s) is not supported: offer SDES keys with RTP/SAVP",
		       (int)md->proto.n, md->proto.p);
		return EINVAL;
	}
	/* Only audio is relayed; other streams are declined with port 0. */
	if (!slice_eq(md->media, "audio") || md->port == 0 || p == P_OTHER)
		return 0;
	if (t->srtp == SRTP_OFF && savp) {
		refuse(res, 488, "trunk '%s' has srtp = off, but the offer is %.*s (SRTP)", t->name,
		       (int)md->proto.n, md->proto.p);
		return EINVAL;
	}
	if (t->srtp == SRTP_MANDATORY && !savp && !osrtp) {
		refuse(res, 488,
		       "trunk '%s' has srtp = mandatory, but the offer is plain %.*s "
		       "with no a=crypto",
		       t->name, (int)md->proto.n, md->proto.p);
		return EINVAL;
	}
	if (savp || (osrtp && t->srtp != SRTP_OFF)) {
		if (sdes_policy_answer(&from->pol, lines, n, &ans))
			return EIO;
		if (ans.status && !(osrtp && t->srtp == SRTP_OPTIONAL)) {
			refuse(res, ans.status, "%s", ans.reason);
			sdes_answer_wipe(&ans);
			return EINVAL;
		}
		if (!ans.status) {
			s->p_secure = true;
			crypto1_from(&s->p_peer, &ans.offer);
			crypto1_from(&s->p_ours, &ans.answer);
			/* Our key stays across offers unless the suite changes or
			 * the trunk asks for a fresh one every time. */
			if (s->ours.valid && s->ours.suite == s->p_ours.suite &&
			    t->rekey == REKEY_KEEP) {
				s->p_ours.key = s->ours.key;
			}
		}
		sdes_answer_wipe(&ans);
	}
	s->p_disabled = false;
	peer_media(in, m, s->p_addr, sizeof(s->p_addr), &s->p_port, &s->p_rtcp_port, &s->p_rtcp_mux,
		   &s->p_hold);
	return 0;
}

/* Decides what we offer on `to` for stream m. */
static int make_offered_stream(struct oa_leg *to, const struct stream *src, size_t m)
{
	const struct config_trunk *t = to->trunk;
	struct stream *s = &to->st[m];

	s->p_disabled = src->p_disabled;
	s->p_secure = t->srtp != SRTP_OFF;
	s->p_osrtp = t->srtp == SRTP_OPTIONAL;
	s->p_proto = s->p_secure && !s->p_osrtp ? (feedback(src->p_proto) ? P_SAVPF : P_SAVP)
						: (feedback(src->p_proto) ? P_AVPF : P_AVP);
	if (s->p_disabled || !s->p_secure)
		return 0;
	if (!s->noffered || t->rekey == REKEY_ALWAYS) {
		struct sdes_crypto lines[SUITE_COUNT];
		size_t n;

		if (sdes_policy_offer(&to->pol, lines, SUITE_COUNT, &n))
			return EIO;
		for (size_t i = 0; i < SUITE_COUNT; i++)
			crypto1_wipe(&s->offered[i]);
		for (size_t i = 0; i < n; i++) {
			crypto1_from(&s->offered[i], &lines[i]);
			sdes_wipe(&lines[i]);
			/* a leg that answered before and now offers (an offerless
			 * re-INVITE, a late offer) keeps the key it protects with */
			if (t->rekey != REKEY_ALWAYS && s->ours.valid &&
			    s->offered[i].suite == s->ours.suite)
				s->offered[i].key = s->ours.key;
		}
		s->noffered = n;
	}
	return 0;
}

int oa_offer(struct oa_leg *from, struct oa_leg *to, struct slice sdp, const uint16_t *ports,
	     size_t nports, char *out, size_t size, struct oa_result *res)
{
	struct sdp in;
	struct sdp_writer body;
	char why[256];
	char *buf;
	int err = 0;

	memset(res, 0, sizeof(*res));
	if (from->role == ROLE_OFFER_IN || from->role == ROLE_OFFER_OUT ||
	    to->role == ROLE_OFFER_IN || to->role == ROLE_OFFER_OUT) {
		refuse(res, 491, "an offer is already under way on this call");
		return 0;
	}
	if (sdp_parse(&in, sdp, why, sizeof(why))) {
		refuse(res, 488, "malformed SDP: %s", why);
		return 0;
	}
	if (in.nmedia == 0 || in.nmedia > OA_MAX_STREAMS) {
		refuse(res, 488, "the offer has %zu m= lines; srtpbridge takes 1 to %d", in.nmedia,
		       OA_MAX_STREAMS);
		return 0;
	}
	if (in.nmedia < from->nst) {
		refuse(res, 488, "a new offer cannot remove m= lines (RFC 3264 section 8)");
		return 0;
	}
	if (nports < in.nmedia)
		return EINVAL;
	err = reserve_streams(from, in.nmedia);
	if (!err)
		err = reserve_streams(to, in.nmedia);
	if (err)
		return err;
	for (size_t m = 0; m < in.nmedia; m++) {
		err = take_offered_stream(from, &in, m, res);
		if (err == EINVAL) {
			clear_pending(from);
			return 0;
		}
		if (!err)
			err = make_offered_stream(to, &from->st[m], m);
		if (err) {
			clear_pending(from);
			return err;
		}
	}
	/* An offer with nothing we can relay (a T.38 re-INVITE, say) is refused,
	 * so that the sender falls back (to G.711 fax) rather than keeping a call
	 * without media. */
	{
		size_t active = 0, declined = SIZE_MAX;

		for (size_t m = 0; m < in.nmedia; m++) {
			active += !from->st[m].p_disabled;
			if (declined == SIZE_MAX && in.media[m].port != 0 && from->st[m].p_disabled)
				declined = m;
		}
		if (!active) {
			if (declined != SIZE_MAX)
				refuse(res, 488,
				       "no audio stream to relay: srtpbridge does not carry m=%.*s "
				       "%.*s",
				       (int)in.media[declined].media.n, in.media[declined].media.p,
				       (int)in.media[declined].proto.n, in.media[declined].proto.p);
			else
				refuse(res, 488,
				       "no audio stream to relay: every m= line has port 0");
			clear_pending(from);
			return 0;
		}
	}
	buf = malloc(SDP_MAX_BYTES);
	if (!buf)
		return ENOMEM;
	sdp_writer_init(&body, buf, SDP_MAX_BYTES);
	write_session(&body, &in, to);
	for (size_t m = 0; m < in.nmedia; m++) {
		const struct stream *s = &to->st[m];

		enum proto inp = from->st[m].p_proto;

		/* A declined RTP stream still takes this leg's profile: a plain
		 * endpoint may refuse a whole offer over RTP/SAVP, even at port 0. */
		if (s->p_disabled && (inp == P_OTHER || inp == P_DTLS))
			sdp_putf(&body, 'm', "%.*s 0 %.*s %.*s", (int)in.media[m].media.n,
				 in.media[m].media.p, (int)in.media[m].proto.n, in.media[m].proto.p,
				 (int)in.media[m].fmts.n, in.media[m].fmts.p);
		else if (s->p_disabled)
			sdp_putf(&body, 'm', "%.*s 0 %s %.*s", (int)in.media[m].media.n,
				 in.media[m].media.p,
				 proto_text(s->p_proto == P_SAVP || s->p_proto == P_SAVPF,
					    feedback(s->p_proto)),
				 (int)in.media[m].fmts.n, in.media[m].fmts.p);
		else
			write_media(&body, &in, m, to, ports[m],
				    proto_text(s->p_proto == P_SAVP || s->p_proto == P_SAVPF,
					       feedback(s->p_proto)),
				    s->offered, s->p_secure ? s->noffered : 0);
	}
	err = finish(to, &body, out, size, &res->len);
	OPENSSL_cleanse(buf, written(&body));
	free(buf);
	if (err) {
		clear_pending(from);
		return err;
	}
	from->role = ROLE_OFFER_IN;
	to->role = ROLE_OFFER_OUT;
	from->pending_n = to->pending_n = in.nmedia;
	replace_copy(&from->answer, &from->answer_len, NULL, 0);
	replace_copy(&to->peer_answer, &to->peer_answer_len, NULL, 0);
	return 0;
}

/* ---- the answer ---- */

struct answered {
	bool active;
	bool secure;
	size_t chosen;
	struct sdes_crypto peer;
};

/* Checks the peer's answer on `from` (our offer's leg) stream by stream. */
static int check_answer(struct oa_leg *from, const struct sdp *in, struct answered *a,
			struct oa_result *res)
{
	const char *name = from->trunk->name;

	for (size_t m = 0; m < in->nmedia; m++) {
		const struct stream *s = &from->st[m];
		const struct sdp_media *md = &in->media[m];
		struct slice lines[MAX_CRYPTO_LINES];
		size_t n = crypto_lines(in, m, lines, MAX_CRYPTO_LINES);
		enum proto p = proto_of(md->proto);
		bool savp = p == P_SAVP || p == P_SAVPF;
		char why[SDES_REASON_MAX];

		memset(&a[m], 0, sizeof(a[m]));
		if (s->p_disabled || md->port == 0)
			continue;
		a[m].active = true;
		if (!s->p_secure) {
			if (savp) {
				refuse(res, 488, "trunk '%s' answered %.*s to a plain RTP offer",
				       name, (int)md->proto.n, md->proto.p);
				return EINVAL;
			}
			continue;
		}
		if (!s->p_osrtp && !savp) {
			refuse(res, 488, "trunk '%s' answered plain %.*s to an RTP/SAVP offer",
			       name, (int)md->proto.n, md->proto.p);
			return EINVAL;
		}
		if (s->p_osrtp && n == 0)
			continue; /* RFC 8643: no keys in the answer, plain RTP */
		{
			struct sdes_crypto offered[SUITE_COUNT];

			memset(offered, 0, s->noffered * sizeof(offered[0]));
			for (size_t i = 0; i < s->noffered; i++) {
				offered[i].tag = s->offered[i].tag;
				offered[i].suite = s->offered[i].suite;
				offered[i].kdr = -1;
			}
			if (sdes_policy_check_answer(&from->pol, offered, s->noffered, lines, n,
						     &a[m].chosen, &a[m].peer, why, sizeof(why))) {
				refuse(res, 488, "trunk '%s' answered badly: %s", name, why);
				return EINVAL;
			}
		}
		a[m].secure = true;
	}
	return 0;
}

/* Takes the peer's checked answer into `from`'s negotiated state. */
static void commit_answer(struct oa_leg *from, const struct sdp *in, struct answered *a,
			  struct oa_result *res)
{
	for (size_t m = 0; m < in->nmedia; m++) {
		struct stream *s = &from->st[m];
		struct crypto1 peer;

		s->active = a[m].active;
		s->secure = a[m].secure;
		peer_media(in, m, s->addr, sizeof(s->addr), &s->port, &s->rtcp_port, &s->rtcp_mux,
			   &s->hold);
		if (!s->secure) {
			crypto1_wipe(&s->ours);
			crypto1_wipe(&s->peer);
			continue;
		}
		s->ours = s->offered[a[m].chosen];
		/* UNENCRYPTED_SRTCP in the answer applies to both directions */
		s->ours.unencrypted_srtcp = a[m].peer.unencrypted_srtcp;
		crypto1_from(&peer, &a[m].peer);
		if (!crypto1_same_key(&peer, &s->peer)) {
			s->peer_epoch++;
			res->from_rekeyed |= 1u << m;
		}
		s->peer = peer;
		crypto1_wipe(&peer);
	}
	from->nst = in->nmedia;
}

/* The offerer's leg takes the answer we give it. */
static void commit_offerer(struct oa_leg *to, const struct answered *a, size_t n,
			   struct oa_result *res)
{
	for (size_t m = 0; m < n; m++) {
		struct stream *s = &to->st[m];

		s->active = !s->p_disabled && a[m].active;
		s->secure = s->active && s->p_secure;
		memcpy(s->addr, s->p_addr, sizeof(s->addr));
		s->port = s->p_port;
		s->rtcp_port = s->p_rtcp_port;
		s->rtcp_mux = s->p_rtcp_mux;
		s->hold = s->p_hold;
		if (!s->secure) {
			crypto1_wipe(&s->ours);
			crypto1_wipe(&s->peer);
			continue;
		}
		if (!crypto1_same_key(&s->p_peer, &s->peer)) {
			s->peer_epoch++;
			res->to_rekeyed |= 1u << m;
		}
		s->peer = s->p_peer;
		s->ours = s->p_ours;
	}
	to->nst = n;
}

int oa_answer(struct oa_leg *from, struct oa_leg *to, struct slice sdp, const uint16_t *ports,
	      size_t nports, char *out, size_t size, struct oa_result *res)
{
	struct answered a[OA_MAX_STREAMS];
	/* only the offer's streams are looked at: 2.4 KB each to zero and wipe */
	size_t na = from->pending_n < OA_MAX_STREAMS ? from->pending_n : OA_MAX_STREAMS;
	struct sdp in;
	struct sdp_writer body;
	char why[256];
	char *buf;
	int err;

	memset(res, 0, sizeof(*res));
	memset(a, 0, na * sizeof(a[0]));
	/* The same offer answered again (a 183, then the 200): the first SDP
	 * was the answer (RFC 3261 section 13.2.1), and stays the answer. */
	if (from->role == ROLE_ANSWERED_OUT && to->role == ROLE_ANSWERED_IN && to->answer) {
		if (size < to->answer_len + 1)
			return ENOSPC;
		memcpy(out, to->answer, to->answer_len);
		out[to->answer_len] = '\0';
		res->len = to->answer_len;
		res->repeated = true;
		if (sdp.n == from->peer_answer_len && memcmp(sdp.p, from->peer_answer, sdp.n) == 0)
			return 0;
		/* Media follows where the peer really sends from, when its
		 * changed SDP is still a valid answer to our offer. */
		if (sdp_parse(&in, sdp, why, sizeof(why)) == 0 && in.nmedia == from->pending_n &&
		    check_answer(from, &in, a, res) == 0) {
			commit_answer(from, &in, a, res);
			res->remote_changed = true;
		}
		res->status = 0;
		res->reason[0] = '\0';
		for (size_t m = 0; m < na; m++)
			sdes_wipe(&a[m].peer);
		return 0;
	}
	if (from->role != ROLE_OFFER_OUT || to->role != ROLE_OFFER_IN)
		return EPROTO;
	if (sdp_parse(&in, sdp, why, sizeof(why))) {
		refuse(res, 488, "trunk '%s' answered with malformed SDP: %s", from->trunk->name,
		       why);
		return 0;
	}
	if (in.nmedia != from->pending_n) {
		refuse(res, 488, "trunk '%s' answered %zu m= lines to our %zu", from->trunk->name,
		       in.nmedia, from->pending_n);
		return 0;
	}
	if (nports < in.nmedia)
		return EINVAL;
	if (check_answer(from, &in, a, res)) {
		for (size_t m = 0; m < na; m++)
			sdes_wipe(&a[m].peer);
		return 0;
	}
	buf = malloc(SDP_MAX_BYTES);
	if (!buf)
		return ENOMEM;
	sdp_writer_init(&body, buf, SDP_MAX_BYTES);
	write_session(&body, &in, to);
	for (size_t m = 0; m < in.nmedia; m++) {
		const struct stream *s = &to->st[m];

		if (s->p_disabled || !a[m].active) {
			/* declined: the offerer's media and profile, port 0 */
			sdp_putf(&body, 'm', "%s 0 %s %s", s->p_media, s->p_protocol, s->p_fmt);
		} else {
			write_media(&body, &in, m, to, ports[m],
				    /* the offer's own protocol: RTP/SAVP is answered
				     * RTP/SAVP, RTP/AVP with keys (RFC 8643) stays
				     * RTP/AVP */
				    proto_text(s->p_proto == P_SAVP || s->p_proto == P_SAVPF,
					       feedback(s->p_proto)),
				    &s->p_ours, s->p_secure ? 1 : 0);
		}
	}
	err = finish(to, &body, out, size, &res->len);
	OPENSSL_cleanse(buf, written(&body));
	free(buf);
	if (!err) {
		commit_answer(from, &in, a, res);
		commit_offerer(to, a, in.nmedia, res);
		replace_copy(&to->answer, &to->answer_len, out, res->len);
		replace_copy(&from->peer_answer, &from->peer_answer_len, sdp.p, sdp.n);
		from->role = ROLE_ANSWERED_OUT;
		to->role = ROLE_ANSWERED_IN;
		clear_pending(to);
	}
	for (size_t m = 0; m < na; m++)
		sdes_wipe(&a[m].peer);
	return err;
}
