/* SDES negotiation. A line is either accepted whole or skipped with a reason:
 * never accepted and then partly ignored, which is how one-way audio starts. */
#include "srtpbridge/sdes_policy.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void sdes_policy_from_trunk(struct sdes_policy *p, const struct config_trunk *t)
{
	memset(p, 0, sizeof(*p));
	memcpy(p->suites, t->suites, t->nsuites * sizeof(t->suites[0]));
	p->nsuites = t->nsuites;
	p->select = t->crypto_select;
	p->srtcp = t->srtcp;
	p->padding = t->crypto_padding;
	p->lifetime = t->crypto_lifetime;
	p->lifetime_pow2 = t->crypto_lifetime_pow2;
}

static int pref(const struct sdes_policy *p, enum suite_id s)
{
	for (size_t i = 0; i < p->nsuites; i++)
		if (p->suites[i] == s)
			return (int)i;
	return -1;
}

/* Why a parsed line cannot be used, in words; NULL when it can. The suite is
 * checked by the caller. */
static const char *unsupported(const struct sdes_policy *p, const struct sdes_crypto *c, char *buf,
			       size_t size)
{
	if (c->nkeys > 1)
		return "carries more than one key";
	if (c->unauthenticated_srtp)
		return "asks for UNAUTHENTICATED_SRTP";
	if (c->unencrypted_srtp)
		return "asks for UNENCRYPTED_SRTP";
	if (c->kdr > 0) {
		snprintf(buf, size, "asks for KDR=%d (only 0 is supported)", c->kdr);
		return buf;
	}
	if (c->fec_order != SDES_FEC_NONE || c->nfec_keys)
		return "asks for FEC_ORDER or FEC_KEY";
	if (c->unknown_mandatory) {
		for (size_t i = 0; i < c->nextensions; i++) {
			if (c->extensions[i][0] != '-') {
				/* Named only when it looks like a parameter name: a
				 * stray piece of a split key must not reach a reason. */
				size_t n = strcspn(c->extensions[i], "=");

				if (n <= 32 && strspn(c->extensions[i], "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
									"0123456789_-") == n)
					snprintf(buf, size, "has unknown mandatory parameter %.*s",
						 (int)n, c->extensions[i]);
				else
					snprintf(buf, size,
						 "has an unknown mandatory session parameter");
				return buf;
			}
		}
	}
	if (p->srtcp == SRTCP_ENCRYPTED && c->unencrypted_srtcp)
		return "has UNENCRYPTED_SRTCP and srtcp = encrypted";
	if (p->srtcp == SRTCP_UNENCRYPTED && !c->unencrypted_srtcp)
		return "encrypts SRTCP and srtcp = unencrypted";
	return NULL;
}

/* The tag and suite of a raw line, for reasons about lines that did not
 * parse: neither is key material. */
static void raw_fields(struct slice v, struct slice *tag, struct slice *suite)
{
	struct slice *f[2] = { tag, suite };

	for (int i = 0; i < 2; i++) {
		while (v.n && (*v.p == ' ' || *v.p == '\t')) {
			v.p++;
			v.n--;
		}
		f[i]->p = v.p;
		while (v.n && *v.p != ' ' && *v.p != '\t') {
			v.p++;
			v.n--;
		}
		f[i]->n = (size_t)(v.p - f[i]->p);
		if (f[i]->n > 40)
			f[i]->n = 40;
	}
}

static bool printable(struct slice s)
{
	for (size_t i = 0; i < s.n; i++)
		if ((unsigned char)s.p[i] < 0x21 || (unsigned char)s.p[i] > 0x7e || s.p[i] == '"')
			return false;
	return true;
}

/* Appends ", s" (or s alone to an empty buf), cut to fit. */
static void append(char *buf, size_t size, const char *s, size_t n)
{
	size_t len = strlen(buf);

	if (len < size)
		snprintf(buf + len, size - len, "%s%.*s", len ? ", " : "", (int)n, s);
}

static void list_allowed(const struct sdes_policy *p, char *buf, size_t size)
{
	for (size_t i = 0; i < p->nsuites; i++) {
		const char *name = suite_name(p->suites[i]);

		append(buf, size, name, strlen(name));
	}
}

static int make_key(struct sdes_key *k, enum suite_id s, const struct sdes_policy *p)
{
	memset(k, 0, sizeof(*k));
	if (secret_random(&k->keysalt, suite_keysalt_len(s)))
		return EIO;
	k->lifetime = p->lifetime;
	k->lifetime_pow2 = p->lifetime_pow2;
	return 0;
}

int sdes_policy_answer(const struct sdes_policy *p, const struct slice *lines, size_t n,
		       struct sdes_answer *out)
{
	/* The first reason of each kind, in order of how much it tells. */
	char mangled[SDES_REASON_MAX] = "", skipped[SDES_REASON_MAX] = "";
	char offered[SDES_REASON_MAX] = "";
	int best = -1, best_pref = SUITE_COUNT;
	struct sdes_crypto c;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < n; i++) {
		char why[SDES_REASON_MAX], buf[96];
		struct slice tag, suite;
		enum suite_id id;
		const char *bad;
		int err, pr;

		raw_fields(lines[i], &tag, &suite);
		if (printable(suite) && suite.n)
			append(offered, sizeof(offered), suite.p, suite.n);
		err = sdes_parse(&c, lines[i], why, sizeof(why));
		if (err) {
			if (!mangled[0] && suite_from_name(suite.p, suite.n, &id) == 0 &&
			    pref(p, id) >= 0)
				snprintf(mangled, sizeof(mangled), "a=crypto tag %.*s: %.200s",
					 printable(tag) ? (int)tag.n : 1,
					 printable(tag) ? tag.p : "?",
					 why + (strncmp(why, "a=crypto ", 9) ? 0 : 9));
			continue;
		}
		pr = pref(p, c.suite);
		if (pr < 0) {
			sdes_wipe(&c);
			continue;
		}
		bad = unsupported(p, &c, buf, sizeof(buf));
		if (bad) {
			if (!skipped[0])
				snprintf(skipped, sizeof(skipped),
					 "no acceptable a=crypto line: tag %u %s %s", c.tag,
					 suite_name(c.suite), bad);
			sdes_wipe(&c);
			continue;
		}
		if (best < 0 || (p->select == CRYPTO_SELECT_LOCAL && pr < best_pref)) {
			sdes_wipe(&out->offer);
			out->offer = c;
			best = (int)i;
			best_pref = pr;
		}
		sdes_wipe(&c);
	}
	if (best < 0) {
		out->status = 488;
		if (n == 0)
			snprintf(out->reason, sizeof(out->reason),
				 "no a=crypto line in the offer (RTP/SAVP needs SDES keys)");
		else if (mangled[0])
			snprintf(out->reason, sizeof(out->reason), "%s", mangled);
		else if (skipped[0])
			snprintf(out->reason, sizeof(out->reason), "%s", skipped);
		else {
			char allowed[SDES_REASON_MAX] = "";

			list_allowed(p, allowed, sizeof(allowed));
			snprintf(out->reason, sizeof(out->reason),
				 "no common crypto suite: offered %.100s; allowed %.100s",
				 offered[0] ? offered : "none", allowed);
		}
		return 0;
	}
	out->chosen = (size_t)best;
	/* Our line: the offer's tag and suite, one fresh key; an MKI of the
	 * offer's length when it has one; UNENCRYPTED_SRTCP echoed (it applies
	 * to both directions, RFC 4568 section 6.3.2). */
	out->answer.tag = out->offer.tag;
	out->answer.suite = out->offer.suite;
	out->answer.kdr = -1;
	out->answer.nkeys = 1;
	if (make_key(&out->answer.keys[0], out->offer.suite, p)) {
		sdes_answer_wipe(out);
		return EIO;
	}
	if (out->offer.keys[0].has_mki) {
		out->answer.keys[0].has_mki = true;
		out->answer.keys[0].mki = 1;
		out->answer.keys[0].mki_len = out->offer.keys[0].mki_len;
	}
	out->answer.unencrypted_srtcp = out->offer.unencrypted_srtcp;
	return 0;
}

void sdes_answer_wipe(struct sdes_answer *a)
{
	if (!a)
		return;
	sdes_wipe(&a->offer);
	sdes_wipe(&a->answer);
}

int sdes_policy_offer(const struct sdes_policy *p, struct sdes_crypto *out, size_t max, size_t *n)
{
	*n = 0;
	if (p->nsuites > max)
		return ENOSPC;
	for (size_t i = 0; i < p->nsuites; i++) {
		struct sdes_crypto *c = &out[i];

		memset(c, 0, sizeof(*c));
		c->tag = (uint32_t)i + 1;
		c->suite = p->suites[i];
		c->kdr = -1;
		c->nkeys = 1;
		c->unencrypted_srtcp = p->srtcp == SRTCP_UNENCRYPTED;
		if (make_key(&c->keys[0], c->suite, p)) {
			for (size_t j = 0; j <= i; j++)
				sdes_wipe(&out[j]);
			return EIO;
		}
	}
	*n = p->nsuites;
	return 0;
}

int sdes_policy_check_answer(const struct sdes_policy *p, const struct sdes_crypto *offered,
			     size_t noffered, const struct slice *lines, size_t n, size_t *chosen,
			     struct sdes_crypto *answer, char *why, size_t whysz)
{
	char reason[SDES_REASON_MAX], buf[96];
	const struct sdes_crypto *ours = NULL;
	const char *bad;

	memset(answer, 0, sizeof(*answer));
	if (n == 0) {
		snprintf(why, whysz, "the answer has no a=crypto line");
		return EBADMSG;
	}
	if (n > 1) {
		snprintf(why, whysz, "the answer has %zu a=crypto lines; RFC 4568 allows one", n);
		return EBADMSG;
	}
	if (sdes_parse(answer, lines[0], reason, sizeof(reason))) {
		snprintf(why, whysz, "the answer's %s",
			 reason + (strncmp(reason, "a=", 2) ? 0 : 0));
		return EBADMSG;
	}
	for (size_t i = 0; i < noffered && !ours; i++)
		if (offered[i].tag == answer->tag) {
			ours = &offered[i];
			*chosen = i;
		}
	if (!ours) {
		snprintf(why, whysz, "the answer's a=crypto tag %u was not offered", answer->tag);
		goto fail;
	}
	if (ours->suite != answer->suite) {
		snprintf(why, whysz, "the answer's a=crypto tag %u has %s; we offered %s with it",
			 answer->tag, suite_name(answer->suite), suite_name(ours->suite));
		goto fail;
	}
	bad = unsupported(p, answer, buf, sizeof(buf));
	/* With srtcp = either we offered encrypted SRTCP; the answer may still
	 * decline it for both directions. */
	if (bad) {
		snprintf(why, whysz, "the answer's a=crypto tag %u %s", answer->tag, bad);
		goto fail;
	}
	return 0;
fail:
	sdes_wipe(answer);
	return EBADMSG;
}
