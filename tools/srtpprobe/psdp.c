/* srtpprobe's SDP: one audio stream, read strictly, written plainly. The
 * suite choice and the answer check are sdes_policy's, as in the daemon, so
 * that the probe and srtpbridge agree on what RFC 4568 asks. */
#include "psdp.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "srtpbridge/sdp.h"

static const char *const dir_names[] = { "sendrecv", "sendonly", "recvonly", "inactive" };

const char *psdp_dir_name(enum psdp_dir d)
{
	return (unsigned)d < 4 ? dir_names[d] : "?";
}

const char *psdp_codec_name(int pt)
{
	return pt == PSDP_PT_PCMU ? "PCMU" : pt == PSDP_PT_PCMA ? "PCMA" : "?";
}

/* ---- reading ---- */

static struct slice next_field(struct slice *v)
{
	struct slice f;

	while (v->n && (*v->p == ' ' || *v->p == '\t')) {
		v->p++;
		v->n--;
	}
	f.p = v->p;
	while (v->n && *v->p != ' ' && *v->p != '\t') {
		v->p++;
		v->n--;
	}
	f.n = (size_t)(v->p - f.p);
	return f;
}

/* A port of 1..65535 written as digits only; 0 when it is not one. */
static uint16_t port_of(struct slice s)
{
	unsigned long v = 0;

	if (!s.n || s.n > 5)
		return 0;
	for (size_t i = 0; i < s.n; i++) {
		if (!isdigit((unsigned char)s.p[i]))
			return 0;
		v = v * 10 + (unsigned long)(s.p[i] - '0');
	}
	return v > 0 && v < 65536 ? (uint16_t)v : 0;
}

static void copy_text(char *dst, size_t size, struct slice s)
{
	size_t n = s.n < size - 1 ? s.n : size - 1;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s.p[i];

		dst[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	dst[n] = '\0';
}

/* The direction attribute in lines [from, to), or -1. */
static int dir_in(const struct sdp *s, size_t from, size_t to)
{
	for (int d = 0; d < 4; d++)
		if (sdp_find_attr(s, from, to, dir_names[d], NULL) >= 0)
			return d;
	return -1;
}

/* Reads text into *s (a scratch index) and out. */
static int parse_into(struct sdp *s, struct psdp_remote *out, struct slice text, char *why,
		      size_t whysz)
{
	const struct sdp_media *m;
	struct slice type, addr, v, f;
	char ip[64];
	unsigned char bin[16];
	int d;

	memset(out, 0, sizeof(*out));
	out->first_g711 = -1;
	if (sdp_parse(s, text, why, whysz))
		return EBADMSG;
	out->nmedia = s->nmedia;
	for (size_t i = 0; i < s->nmedia && !out->has_audio; i++) {
		if (slice_eq(s->media[i].media, "audio") && s->media[i].port != 0) {
			out->has_audio = true;
			out->audio = i;
		}
	}
	if (!out->has_audio)
		return 0;
	m = &s->media[out->audio];
	copy_text(out->proto, sizeof(out->proto), m->proto);
	out->secure = slice_eq(m->proto, "RTP/SAVP") || slice_eq(m->proto, "RTP/SAVPF");
	out->feedback = slice_eq(m->proto, "RTP/AVPF") || slice_eq(m->proto, "RTP/SAVPF");
	out->profile_ok = out->secure || out->feedback || slice_eq(m->proto, "RTP/AVP");
	sdp_media_conn(s, out->audio, &type, &addr);
	out->ip6 = slice_eq(type, "IP6");
	if (addr.n >= sizeof(ip)) {
		snprintf(why, whysz, "the audio stream's c= address is too long");
		return EBADMSG;
	}
	memcpy(ip, addr.p, addr.n);
	ip[addr.n] = '\0';
	if (inet_pton(out->ip6 ? AF_INET6 : AF_INET, ip, bin) != 1) {
		/* sdp_parse allows a host name in c=; the probe resolves none */
		snprintf(why, whysz, "the audio stream's c= is not an IP address");
		return EBADMSG;
	}
	memcpy(out->addr, ip, addr.n + 1);
	out->port = m->port;
	out->rtcp_port = m->port == 65535 ? 0 : (uint16_t)(m->port + 1);
	if (sdp_find_attr(s, m->line, m->end, "rtcp", &v) >= 0) {
		uint16_t p = port_of(next_field(&v));

		if (!p) {
			snprintf(why, whysz, "a=rtcp does not start with a port of 1 to 65535");
			return EBADMSG;
		}
		out->rtcp_port = p;
	}
	out->rtcp_mux = sdp_find_attr(s, m->line, m->end, "rtcp-mux", NULL) >= 0;
	if (out->rtcp_mux)
		out->rtcp_port = out->port;
	d = dir_in(s, m->line, m->end);
	if (d < 0)
		d = dir_in(s, 0, s->session_end);
	out->dir = d < 0 ? PSDP_SENDRECV : (enum psdp_dir)d;
	v = m->fmts;
	while ((f = next_field(&v)).n) {
		bool pcmu = slice_eq(f, "0"), pcma = slice_eq(f, "8");

		if ((pcmu || pcma) && out->first_g711 < 0)
			out->first_g711 = pcmu ? PSDP_PT_PCMU : PSDP_PT_PCMA;
		out->has_pcmu |= pcmu;
		out->has_pcma |= pcma;
	}
	for (size_t i = m->line + 1; i < m->end; i++) {
		struct slice name, value;

		if (sdp_attr(s, i, &name, &value) && slice_eq(name, "crypto") &&
		    out->ncrypto < PSDP_MAX_CRYPTO)
			out->crypto[out->ncrypto++] = value;
	}
	return 0;
}

int psdp_parse(struct psdp_remote *out, struct slice text, char *why, size_t whysz)
{
	struct sdp *s = malloc(sizeof(*s));
	int err;

	if (!s) {
		memset(out, 0, sizeof(*out));
		snprintf(why, whysz, "out of memory");
		return ENOMEM;
	}
	err = parse_into(s, out, text, why, whysz);
	free(s);
	return err;
}

/* ---- writing ---- */

static void policy_of(const struct psdp_policy *pol, struct sdes_policy *p)
{
	memset(p, 0, sizeof(*p));
	memcpy(p->suites, pol->suites, pol->nsuites * sizeof(pol->suites[0]));
	p->nsuites = pol->nsuites;
	p->select = CRYPTO_SELECT_LOCAL; /* the order of --suites is our preference */
	p->srtcp = SRTCP_EITHER;	 /* we offer encrypted SRTCP and take either */
	p->padding = pol->pad;
}

static const char *family(const struct psdp_local *l)
{
	return strchr(l->addr, ':') ? "IP6" : "IP4";
}

static void put_session(struct sdp_writer *w, struct psdp_session *s, const struct psdp_local *l)
{
	s->version++;
	sdp_put(w, 'v', SLICE_LIT("0"));
	sdp_putf(w, 'o', "srtpprobe %llu %llu IN %s %s", (unsigned long long)s->sess_id,
		 (unsigned long long)s->version, family(l), l->addr);
	sdp_put(w, 's', SLICE_LIT("srtpprobe"));
	sdp_putf(w, 'c', "IN %s %s", family(l), l->addr);
	sdp_put(w, 't', SLICE_LIT("0 0"));
}

static void put_crypto(struct sdp_writer *w, const struct sdes_crypto *c, bool pad)
{
	char line[SDES_LINE_MAX];

	if (sdes_print(line, sizeof(line), c, pad))
		sdp_putf(w, 'a', "crypto:%s", line);
	else
		w->overflow = true;
	OPENSSL_cleanse(line, sizeof(line));
}

static void put_audio(struct sdp_writer *w, const struct psdp_local *l, const char *proto, int pt,
		      enum psdp_dir dir, const struct sdes_crypto *crypto, size_t ncrypto, bool pad)
{
	sdp_putf(w, 'm', "audio %u %s %d", l->port, proto, pt);
	sdp_putf(w, 'a', "rtpmap:%d %s/8000", pt, psdp_codec_name(pt));
	sdp_put(w, 'a', SLICE_LIT("ptime:20"));
	sdp_putf(w, 'a', "rtcp:%u", l->port + 1u);
	sdp_putf(w, 'a', "%s", psdp_dir_name(dir));
	for (size_t i = 0; i < ncrypto; i++)
		put_crypto(w, &crypto[i], pad);
}

static int finish(struct sdp_writer *w, size_t *len)
{
	*len = sdp_writer_finish(w);
	return *len ? 0 : ENOSPC;
}

void psdp_session_init(struct psdp_session *s, const struct psdp_policy *pol, uint64_t sess_id)
{
	memset(s, 0, sizeof(*s));
	s->pol = *pol;
	s->sess_id = sess_id;
}

static void wipe_offer(struct psdp_session *s)
{
	for (size_t i = 0; i < s->noffered; i++)
		sdes_wipe(&s->offered[i]);
	s->noffered = 0;
}

void psdp_session_wipe(struct psdp_session *s)
{
	if (!s)
		return;
	wipe_offer(s);
	OPENSSL_cleanse(s, sizeof(*s));
}

void psdp_result_wipe(struct psdp_result *r)
{
	if (r)
		OPENSSL_cleanse(r, sizeof(*r));
}

int psdp_offer(struct psdp_session *s, const struct psdp_local *l, enum psdp_dir dir, char *buf,
	       size_t size, size_t *len)
{
	bool secure = s->pol.srtp != PSDP_SRTP_OFF;
	struct sdes_policy p;
	struct sdp_writer w;
	int err;

	*len = 0;
	if ((secure && !s->pol.nsuites) ||
	    (s->pol.codec != PSDP_PT_PCMU && s->pol.codec != PSDP_PT_PCMA))
		return EINVAL;
	wipe_offer(s);
	s->offer_pending = false;
	if (secure) {
		policy_of(&s->pol, &p);
		err = sdes_policy_offer(&p, s->offered, SUITE_COUNT, &s->noffered);
		if (err)
			return err;
	}
	sdp_writer_init(&w, buf, size);
	put_session(&w, s, l);
	put_audio(&w, l, secure ? "RTP/SAVP" : "RTP/AVP", s->pol.codec, dir, s->offered,
		  s->noffered, s->pol.pad);
	err = finish(&w, len);
	if (err) {
		wipe_offer(s);
		return err;
	}
	s->offer_pending = true;
	s->offer_dir = dir;
	return 0;
}

static bool sends(enum psdp_dir d)
{
	return d == PSDP_SENDRECV || d == PSDP_SENDONLY;
}

static bool receives(enum psdp_dir d)
{
	return d == PSDP_SENDRECV || d == PSDP_RECVONLY;
}

static enum psdp_dir dir_from(bool send, bool recv)
{
	return send ? (recv ? PSDP_SENDRECV : PSDP_SENDONLY)
		    : (recv ? PSDP_RECVONLY : PSDP_INACTIVE);
}

static void take_remote(struct psdp_result *out, const struct psdp_remote *r)
{
	memcpy(out->addr, r->addr, sizeof(out->addr));
	out->port = r->port;
	out->rtcp_port = r->rtcp_port;
	out->rtcp_mux = r->rtcp_mux;
	out->remote_dir = r->dir;
}

int psdp_take_answer(struct psdp_session *s, struct slice sdp, struct psdp_result *out, char *why,
		     size_t whysz)
{
	bool secure = s->pol.srtp != PSDP_SRTP_OFF;
	struct psdp_remote *r = NULL;
	struct sdes_crypto ans;
	struct sdes_policy p;
	size_t chosen = 0;
	char reason[SDES_REASON_MAX];
	int err = EBADMSG;

	memset(out, 0, sizeof(*out));
	if (!s->offer_pending) {
		snprintf(why, whysz, "an answer came with no offer of ours pending");
		return EBADMSG;
	}
	s->offer_pending = false;
	r = malloc(sizeof(*r));
	if (!r) {
		snprintf(why, whysz, "out of memory");
		err = ENOMEM;
		goto out;
	}
	if (psdp_parse(r, sdp, reason, sizeof(reason))) {
		snprintf(why, whysz, "the answer's SDP: %s", reason);
		goto out;
	}
	if (r->nmedia != 1) {
		snprintf(why, whysz, "the answer has %zu m= lines; our offer had 1", r->nmedia);
		goto out;
	}
	if (!r->has_audio) {
		snprintf(why, whysz, "the answer refuses the audio stream (port 0 or not audio)");
		goto out;
	}
	if (!r->profile_ok || r->secure != secure) {
		snprintf(why, whysz, "the answer's profile is %s; we offered %s", r->proto,
			 secure ? "RTP/SAVP" : "RTP/AVP");
		goto out;
	}
	if ((s->pol.codec == PSDP_PT_PCMU && !r->has_pcmu) ||
	    (s->pol.codec == PSDP_PT_PCMA && !r->has_pcma)) {
		snprintf(why, whysz, "the answer has no %s (payload type %d), the codec we offered",
			 psdp_codec_name(s->pol.codec), s->pol.codec);
		goto out;
	}
	out->secure = secure;
	out->pt = (uint8_t)s->pol.codec;
	if (secure) {
		policy_of(&s->pol, &p);
		if (sdes_policy_check_answer(&p, s->offered, s->noffered, r->crypto, r->ncrypto,
					     &chosen, &ans, why, whysz))
			goto out;
		out->suite = ans.suite;
		out->peer = ans.keys[0];
		out->ours = s->offered[chosen].keys[0];
		out->unencrypted_srtcp = ans.unencrypted_srtcp;
		sdes_wipe(&ans);
	}
	take_remote(out, r);
	out->dir = dir_from(sends(s->offer_dir) && receives(r->dir),
			    receives(s->offer_dir) && sends(r->dir));
	err = 0;
out:
	free(r);
	wipe_offer(s);
	if (err)
		psdp_result_wipe(out);
	return err;
}

static enum psdp_dir mirror(enum psdp_dir d)
{
	return d == PSDP_SENDONLY ? PSDP_RECVONLY : d == PSDP_RECVONLY ? PSDP_SENDONLY : d;
}

static void refuse(struct psdp_result *out, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void refuse(struct psdp_result *out, const char *fmt, ...)
{
	va_list ap;

	out->status = 488;
	va_start(ap, fmt);
	vsnprintf(out->reason, sizeof(out->reason), fmt, ap);
	va_end(ap);
}

/* The checks of an offer that come before any key is made. */
static bool offer_acceptable(const struct psdp_session *s, const struct psdp_remote *r,
			     struct psdp_result *out)
{
	if (!r->has_audio) {
		refuse(out, "the offer has no audio stream with a port");
		return false;
	}
	if (!r->profile_ok) {
		refuse(out, "the offer's audio profile %s is not supported (RTP/AVP or RTP/SAVP)",
		       r->proto);
		return false;
	}
	if (r->secure && s->pol.srtp == PSDP_SRTP_OFF) {
		refuse(out, "the offer is %s and srtp is off here", r->proto);
		return false;
	}
	if (!r->secure && s->pol.srtp == PSDP_SRTP_MANDATORY) {
		refuse(out, "the offer is %s and srtp is mandatory here", r->proto);
		return false;
	}
	if (s->pol.codec == PSDP_CODEC_ANY ? r->first_g711 < 0
	    : s->pol.codec == PSDP_PT_PCMU ? !r->has_pcmu
					   : !r->has_pcma) {
		refuse(out, "no common codec: the offer has no %s",
		       s->pol.codec == PSDP_CODEC_ANY ? "PCMU or PCMA"
						      : psdp_codec_name(s->pol.codec));
		return false;
	}
	return true;
}

int psdp_answer(struct psdp_session *s, const struct psdp_local *l, struct slice offer, char *buf,
		size_t size, size_t *len, struct psdp_result *out)
{
	struct sdp *sdp = malloc(sizeof(*sdp));
	struct psdp_remote *r = malloc(sizeof(*r));
	struct sdes_answer ans;
	struct sdes_policy p;
	struct sdp_writer w;
	char why[SDES_REASON_MAX];
	int err = 0;

	memset(out, 0, sizeof(*out));
	memset(&ans, 0, sizeof(ans));
	*len = 0;
	if (!sdp || !r) {
		err = ENOMEM;
		goto out;
	}
	if (parse_into(sdp, r, offer, why, sizeof(why))) {
		refuse(out, "the offer's SDP: %s", why);
		goto out;
	}
	if (!offer_acceptable(s, r, out))
		goto out;
	out->pt = (uint8_t)(s->pol.codec == PSDP_CODEC_ANY ? r->first_g711 : s->pol.codec);
	out->secure = r->secure;
	if (r->secure) {
		policy_of(&s->pol, &p);
		err = sdes_policy_answer(&p, r->crypto, r->ncrypto, &ans);
		if (err)
			goto out;
		if (ans.status) {
			refuse(out, "%s", ans.reason);
			goto out;
		}
		out->suite = ans.answer.suite;
		out->ours = ans.answer.keys[0];
		out->peer = ans.offer.keys[0];
		out->unencrypted_srtcp = ans.offer.unencrypted_srtcp;
	}
	take_remote(out, r);
	out->dir = mirror(r->dir);
	sdp_writer_init(&w, buf, size);
	put_session(&w, s, l);
	for (size_t i = 0; i < sdp->nmedia; i++) {
		const struct sdp_media *m = &sdp->media[i];

		if (i == r->audio)
			put_audio(&w, l,
				  r->feedback ? (r->secure ? "RTP/SAVPF" : "RTP/AVPF")
					      : (r->secure ? "RTP/SAVP" : "RTP/AVP"),
				  out->pt, out->dir, &ans.answer, r->secure ? 1 : 0, s->pol.pad);
		else /* RFC 3264 section 6: a stream we refuse keeps its place, port 0 */
			sdp_putf(&w, 'm', "%.*s 0 %.*s %.*s", (int)m->media.n, m->media.p,
				 (int)m->proto.n, m->proto.p, (int)m->fmts.n, m->fmts.p);
	}
	err = finish(&w, len);
out:
	sdes_answer_wipe(&ans);
	free(sdp);
	free(r);
	if (err || out->status) {
		/* a refusal keeps its reason; the keys go either way */
		OPENSSL_cleanse(&out->ours, sizeof(out->ours));
		OPENSSL_cleanse(&out->peer, sizeof(out->peer));
	}
	return err;
}

int psdp_parse_suites(const char *list, enum suite_id *out, size_t *n, char *why, size_t whysz)
{
	const char *p = list;

	*n = 0;
	while (p && *p) {
		size_t len, trail;
		enum suite_id id = SUITE_COUNT;
		const char *bad = NULL;

		p += strspn(p, " \t");
		len = strcspn(p, ",");
		trail = len;
		while (trail && (p[trail - 1] == ' ' || p[trail - 1] == '\t'))
			trail--;
		if (!trail) {
			snprintf(why, whysz, "--suites has an empty name");
			return EINVAL;
		}
		for (int i = 0; i < SUITE_COUNT; i++)
			if (strlen(suite_name((enum suite_id)i)) == trail &&
			    strncasecmp(suite_name((enum suite_id)i), p, trail) == 0)
				id = (enum suite_id)i;
		if (id == SUITE_COUNT) {
			snprintf(why, whysz, "--suites: unknown suite '%.*s'",
				 (int)(trail > 60 ? 60 : trail), p);
			return EINVAL;
		}
		for (size_t i = 0; i < *n; i++)
			if (out[i] == id) {
				snprintf(why, whysz, "--suites names %s twice", suite_name(id));
				return EINVAL;
			}
		if (!suite_usable(id, &bad)) {
			snprintf(why, whysz, "--suites: %s cannot be used here: %s", suite_name(id),
				 bad ? bad : "not supported");
			return EINVAL;
		}
		out[(*n)++] = id;
		p += len;
		if (*p == ',')
			p++;
	}
	if (!*n) {
		snprintf(why, whysz, "--suites names no suite");
		return EINVAL;
	}
	return 0;
}
