/* RFC 4568 a=crypto, read like a checklist of section 9's grammar. */
#include "srtpbridge/sdes.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#define VALUE_MAX 4096
#define MANGLED	  " (possible SIP ALG mangling)"

#define REFUSE(...)                                                                                \
	do {                                                                                       \
		snprintf(why, whysz, __VA_ARGS__);                                                 \
		goto refuse;                                                                       \
	} while (0)

static int b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Written here rather than taken from OpenSSL: EVP_DecodeBlock needs the
 * padding, counts it in its length and accepts non-canonical trailing bits,
 * and a key that decodes "almost right" is exactly what an ALG produces. */
int sdes_base64_decode(struct slice in, uint8_t *out, size_t size, size_t *len)
{
	size_t n = in.n, o = 0;
	uint32_t acc = 0;
	unsigned bits = 0;

	while (n && in.p[n - 1] == '=')
		n--;
	if (in.n - n > 2 || n % 4 == 1 || (in.n != n && in.n % 4 != 0))
		return EBADMSG;
	for (size_t i = 0; i < n; i++) {
		int v = b64val((unsigned char)in.p[i]);

		if (v < 0)
			return EBADMSG;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o == size)
				return EBADMSG;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	if (acc & ((1u << bits) - 1)) /* a canonical encoder leaves these zero */
		return EBADMSG;
	*len = o;
	return 0;
}

static bool all_digits(struct slice s, size_t max)
{
	if (s.n == 0 || s.n > max)
		return false;
	for (size_t i = 0; i < s.n; i++)
		if (!isdigit((unsigned char)s.p[i]))
			return false;
	return true;
}

static uint64_t to_u64(struct slice s)
{
	uint64_t v = 0;

	for (size_t i = 0; i < s.n; i++)
		v = v * 10 + (uint64_t)(s.p[i] - '0');
	return v;
}

/* inline:<key||salt>[|lifetime][|mki:len] */
static int parse_key(struct sdes_key *k, struct slice kp, enum suite_id suite, char *why,
		     size_t whysz)
{
	const unsigned want = suite_keysalt_len(suite);
	uint8_t raw[2 * SECRET_MAX];
	struct slice b64, part;
	size_t len = 0;
	bool lifetime_seen = false;

	memset(k, 0, sizeof(*k));
	if (!slice_eat_prefix(&kp, "inline:"))
		REFUSE("a=crypto key-params must start with inline:");
	if (kp.n && kp.p[kp.n - 1] == '|')
		REFUSE("a=crypto key-params end with '|'");
	b64 = slice_split(&kp, '|');
	if (b64.n == 0)
		REFUSE("a=crypto inline key is empty");
	if (sdes_base64_decode(b64, raw, sizeof(raw), &len))
		REFUSE("a=crypto inline key is not valid base64" MANGLED);
	if (len != want) {
		OPENSSL_cleanse(raw, sizeof(raw));
		REFUSE("a=crypto inline key decodes to %zu bytes; %s needs %u" MANGLED, len,
		       suite_name(suite), want);
	}
	secret_set(&k->keysalt, raw, len);
	OPENSSL_cleanse(raw, sizeof(raw));
	while (kp.n) {
		part = slice_split(&kp, '|');
		if (part.n == 0)
			REFUSE("a=crypto key-params have an empty field between '|'");
		if (memchr(part.p, ':', part.n)) {
			struct slice val = slice_split(&part, ':');
			uint64_t mlen;

			if (k->has_mki)
				REFUSE("a=crypto key has two MKIs");
			if (!all_digits(val, 20) ||
			    (val.n == 20 && strncmp(val.p, "18446744073709551615", 20) > 0))
				REFUSE("a=crypto MKI value must be a decimal number");
			if (!all_digits(part, 3))
				REFUSE("a=crypto MKI length must be 1 to 3 digits");
			mlen = to_u64(part);
			if (mlen < 1 || mlen > SDES_MAX_MKI_LEN)
				REFUSE("a=crypto MKI length %" PRIu64 " is out of range 1 to %d",
				       mlen, SDES_MAX_MKI_LEN);
			k->mki = to_u64(val);
			k->mki_len = (unsigned)mlen;
			if (mlen < 8 && k->mki >> (8 * mlen))
				REFUSE("a=crypto MKI value does not fit in its %" PRIu64 " bytes",
				       mlen);
			k->has_mki = true;
		} else {
			struct slice num = part;
			uint64_t v;

			if (lifetime_seen || k->has_mki)
				REFUSE("a=crypto lifetime must come once, before the MKI");
			lifetime_seen = true;
			k->lifetime_pow2 = slice_eat_prefix(&num, "2^");
			if (!all_digits(num, k->lifetime_pow2 ? 2 : 15))
				REFUSE("a=crypto lifetime must be 2^N or a decimal number");
			v = to_u64(num);
			if (k->lifetime_pow2) {
				if (v > 48)
					REFUSE("a=crypto lifetime 2^%" PRIu64
					       " is beyond RFC 3711's limit of 2^48 packets",
					       v);
				k->lifetime = 1ULL << v;
			} else {
				if (v == 0 || v > SDES_MAX_LIFETIME)
					REFUSE("a=crypto lifetime %" PRIu64
					       " is out of range 1 to 2^48 packets (RFC 3711)",
					       v);
				k->lifetime = v;
			}
		}
	}
	return 0;
refuse:
	secret_wipe(&k->keysalt);
	return EBADMSG;
}

/* Keys share their MKI length, and several keys need MKIs to be told apart
 * (RFC 4568 section 6.1). */
static int parse_keys(struct sdes_key *keys, size_t max, size_t *nkeys, struct slice kps,
		      enum suite_id suite, char *why, size_t whysz)
{
	*nkeys = 0;
	while (kps.n) {
		struct slice kp = slice_split(&kps, ';');
		int err;

		if (*nkeys == max)
			REFUSE("a=crypto has more than %zu keys", max);
		err = parse_key(&keys[*nkeys], kp, suite, why, whysz);
		if (err)
			return err;
		(*nkeys)++;
	}
	if (*nkeys == 0)
		REFUSE("a=crypto has no key");
	for (size_t i = 1; i < *nkeys; i++)
		if (!keys[i].has_mki || !keys[0].has_mki || keys[i].mki_len != keys[0].mki_len)
			REFUSE("a=crypto with several keys needs an MKI of one length on each");
	return 0;
refuse:
	return EBADMSG;
}

static struct slice next_field(struct slice *s)
{
	struct slice f;

	while (s->n && (*s->p == ' ' || *s->p == '\t')) {
		s->p++;
		s->n--;
	}
	f.p = s->p;
	while (s->n && *s->p != ' ' && *s->p != '\t') {
		s->p++;
		s->n--;
	}
	f.n = (size_t)(s->p - f.p);
	return f;
}

static int parse_session_param(struct sdes_crypto *c, struct slice p, char *why, size_t whysz)
{
	struct slice v = p;

	if (slice_eq(p, "UNENCRYPTED_SRTP")) {
		if (c->unencrypted_srtp)
			goto dup;
		c->unencrypted_srtp = true;
	} else if (slice_eq(p, "UNENCRYPTED_SRTCP")) {
		if (c->unencrypted_srtcp)
			goto dup;
		c->unencrypted_srtcp = true;
	} else if (slice_eq(p, "UNAUTHENTICATED_SRTP")) {
		if (c->unauthenticated_srtp)
			goto dup;
		c->unauthenticated_srtp = true;
	} else if (slice_eat_prefix(&v, "KDR=")) {
		if (c->kdr >= 0)
			goto dup;
		if (!all_digits(v, 2) || to_u64(v) > 24)
			REFUSE("a=crypto KDR must be 0 to 24");
		c->kdr = (int)to_u64(v);
	} else if (slice_eat_prefix(&v, "FEC_ORDER=")) {
		if (c->fec_order != SDES_FEC_NONE)
			goto dup;
		if (slice_eq(v, "FEC_SRTP"))
			c->fec_order = SDES_FEC_FEC_SRTP;
		else if (slice_eq(v, "SRTP_FEC"))
			c->fec_order = SDES_FEC_SRTP_FEC;
		else
			REFUSE("a=crypto FEC_ORDER must be FEC_SRTP or SRTP_FEC");
	} else if (slice_eat_prefix(&v, "FEC_KEY=")) {
		if (c->nfec_keys)
			goto dup;
		return parse_keys(c->fec_keys, SDES_MAX_FEC_KEYS, &c->nfec_keys, v, c->suite, why,
				  whysz);
	} else if (slice_eat_prefix(&v, "WSH=")) {
		if (c->wsh)
			goto dup;
		if (!all_digits(v, 5) || to_u64(v) < 64 || to_u64(v) > 32767)
			REFUSE("a=crypto WSH must be 64 to 32767");
		c->wsh = (unsigned)to_u64(v);
	} else {
		/* srtp-session-extension = ["-"] 1*(VCHAR) */
		for (size_t i = 0; i < p.n; i++)
			if ((unsigned char)p.p[i] < 0x21 || (unsigned char)p.p[i] > 0x7e)
				REFUSE("a=crypto session parameter has a character outside VCHAR");
		if (c->nextensions == SDES_MAX_EXTENSIONS)
			REFUSE("a=crypto has more than %d extension parameters",
			       SDES_MAX_EXTENSIONS);
		if (p.n >= sizeof(c->extensions[0]) || (p.n == 1 && p.p[0] == '-'))
			REFUSE("a=crypto extension parameter is empty or longer than %zu",
			       sizeof(c->extensions[0]) - 1);
		memcpy(c->extensions[c->nextensions], p.p, p.n);
		c->extensions[c->nextensions][p.n] = '\0';
		c->nextensions++;
		if (p.p[0] != '-')
			c->unknown_mandatory = true;
	}
	return 0;
dup:
	snprintf(why, whysz, "a=crypto repeats session parameter %.*s", (int)(p.n > 24 ? 24 : p.n),
		 p.p);
refuse:
	return EBADMSG;
}

int sdes_parse(struct sdes_crypto *out, struct slice value, char *why, size_t whysz)
{
	struct slice tag, suite, keys, param;
	int err = EBADMSG;

	memset(out, 0, sizeof(*out));
	out->kdr = -1;
	if (value.n > VALUE_MAX)
		REFUSE("a=crypto attribute is longer than %d bytes", VALUE_MAX);
	if (memchr(value.p, '\0', value.n))
		REFUSE("a=crypto attribute contains a NUL byte");
	while (value.n && (value.p[value.n - 1] == ' ' || value.p[value.n - 1] == '\t' ||
			   value.p[value.n - 1] == '\r' || value.p[value.n - 1] == '\n'))
		value.n--;

	tag = next_field(&value);
	if (!all_digits(tag, 9))
		REFUSE("a=crypto tag must be 1 to 9 digits");
	out->tag = (uint32_t)to_u64(tag);
	suite = next_field(&value);
	if (suite.n == 0)
		REFUSE("a=crypto has no crypto suite");
	if (suite_from_name(suite.p, suite.n, &out->suite)) {
		err = ENOTSUP;
		REFUSE("a=crypto suite '%.*s' is not one srtpbridge knows",
		       (int)(suite.n > 40 ? 40 : suite.n), suite.p);
	}
	keys = next_field(&value);
	if (keys.n == 0)
		REFUSE("a=crypto has no key-params (inline:...)");
	err = parse_keys(out->keys, SDES_MAX_KEYS, &out->nkeys, keys, out->suite, why, whysz);
	if (err)
		goto fail;
	for (param = next_field(&value); param.n; param = next_field(&value)) {
		err = parse_session_param(out, param, why, whysz);
		if (err)
			goto fail;
	}
	return 0;
refuse:
fail:
	sdes_wipe(out);
	return err ? err : EBADMSG;
}

void sdes_wipe(struct sdes_crypto *c)
{
	if (c)
		OPENSSL_cleanse(c, sizeof(*c));
}

/* ---- printing ---- */

struct out {
	char *p;
	size_t size, n;
	bool overflow;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int w;

	if (o->overflow)
		return;
	va_start(ap, fmt);
	w = vsnprintf(o->p + o->n, o->size - o->n, fmt, ap);
	va_end(ap);
	if (w < 0 || (size_t)w >= o->size - o->n)
		o->overflow = true;
	else
		o->n += (size_t)w;
}

static void put_key(struct out *o, const struct sdes_key *k, bool pad)
{
	unsigned char b64[4 * (SECRET_MAX / 3 + 1) + 1];
	int n = EVP_EncodeBlock(b64, k->keysalt.bytes, (int)k->keysalt.len);

	while (!pad && n > 0 && b64[n - 1] == '=')
		n--;
	put(o, "inline:%.*s", n, (const char *)b64);
	OPENSSL_cleanse(b64, sizeof(b64));
	if (k->lifetime) {
		if (k->lifetime_pow2)
			put(o, "|2^%d", __builtin_ctzll(k->lifetime));
		else
			put(o, "|%" PRIu64, k->lifetime);
	}
	if (k->has_mki)
		put(o, "|%" PRIu64 ":%u", k->mki, k->mki_len);
}

static void put_keys(struct out *o, const struct sdes_key *keys, size_t n, bool pad)
{
	for (size_t i = 0; i < n; i++) {
		if (i)
			put(o, ";");
		put_key(o, &keys[i], pad);
	}
}

size_t sdes_print(char *buf, size_t size, const struct sdes_crypto *c, bool pad)
{
	struct out o = { buf, size, 0, size == 0 };

	put(&o, "%" PRIu32 " %s ", c->tag, suite_name(c->suite));
	put_keys(&o, c->keys, c->nkeys, pad);
	if (c->kdr >= 0)
		put(&o, " KDR=%d", c->kdr);
	if (c->unencrypted_srtp)
		put(&o, " UNENCRYPTED_SRTP");
	if (c->unencrypted_srtcp)
		put(&o, " UNENCRYPTED_SRTCP");
	if (c->unauthenticated_srtp)
		put(&o, " UNAUTHENTICATED_SRTP");
	if (c->fec_order != SDES_FEC_NONE)
		put(&o, " FEC_ORDER=%s",
		    c->fec_order == SDES_FEC_FEC_SRTP ? "FEC_SRTP" : "SRTP_FEC");
	if (c->nfec_keys) {
		put(&o, " FEC_KEY=");
		put_keys(&o, c->fec_keys, c->nfec_keys, pad);
	}
	if (c->wsh)
		put(&o, " WSH=%u", c->wsh);
	for (size_t i = 0; i < c->nextensions; i++)
		put(&o, " %s", c->extensions[i]);
	if (o.overflow) {
		if (size)
			OPENSSL_cleanse(buf, size);
		return 0;
	}
	return o.n;
}
