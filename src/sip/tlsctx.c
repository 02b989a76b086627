/* SIP over TLS: the OpenSSL 3.0 contexts of a trunk, the SSL of one outbound
 * connection, and the plain-words reason when a handshake fails.
 *
 * Everything that makes a refusal readable is decided here, next to the
 * settings that cause it: docs/tls.md lists the same sentences for operators. */
#include "srtpbridge/tlsctx.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "srtpbridge/log.h"

#define LOG_MODULE "tls"

/* Where the expectations behind a refusal came from, so that the sentence can
 * name the setting to change. Kept as small integers in ex_data: no
 * allocation, nothing to free with the SSL or the SSL_CTX. */
enum name_origin {
	NAME_FROM_PEER_NAME = 1, /* tls_peer_name */
	NAME_FROM_PEER_HOST,	 /* the host of the peer URI */
};
enum trust_origin {
	TRUST_TLS_CA = 1, /* tls_ca */
	TRUST_SYSTEM,	  /* OpenSSL's default paths */
};

/* ex_data indexes are process-wide registrations, made once and never changed
 * afterwards: not mutable state in the sense of STYLE.md section 8. */
static CRYPTO_ONCE ex_once = CRYPTO_ONCE_STATIC_INIT;
static int ssl_ex_name = -1;
static int ctx_ex_trust = -1;

static void ex_init(void)
{
	ssl_ex_name = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	ctx_ex_trust = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

static bool ex_ready(void)
{
	return CRYPTO_THREAD_run_once(&ex_once, ex_init) == 1 && ssl_ex_name >= 0 &&
	       ctx_ex_trust >= 0;
}

static int refuse(char *why, size_t whysz, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Writes the sentence to why and returns err, so that a refusal is one line. */
static int refuse(char *why, size_t whysz, int err, const char *fmt, ...)
{
	va_list ap;

	if (why && whysz) {
		va_start(ap, fmt);
		vsnprintf(why, whysz, fmt, ap);
		va_end(ap);
	}
	return err;
}

/* OpenSSL's own words for the oldest queued error (the cause; later ones
 * are its echoes up the call chain, such as "PEM lib"), for the sentences
 * that have no better ones. Only reason strings: never file contents. */
static const char *ossl_reason(void)
{
	unsigned long e = ERR_peek_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	return r ? r : "no reason given by OpenSSL";
}

/* Whether the oldest or the newest queued error is lib's reason: the queue
 * cannot be walked without draining it. */
static bool queued(int lib, int reason)
{
	unsigned long a = ERR_peek_error(), b = ERR_peek_last_error();

	return (ERR_GET_LIB(a) == lib && ERR_GET_REASON(a) == reason) ||
	       (ERR_GET_LIB(b) == lib && ERR_GET_REASON(b) == reason);
}

/* A daemon has nobody to type a passphrase: without this callback OpenSSL's
 * default one would prompt on the terminal and block the load. */
static int no_passphrase(char *buf, int size, int rwflag, void *userdata)
{
	bool *asked = userdata;

	if (asked)
		*asked = true;
	return 0;
}

/* Settings both sides share. */
static int common_setup(SSL_CTX *ctx, char *why, size_t whysz)
{
	/* Many SIP peers close TCP without close_notify; OpenSSL 3.0 would report
	 * that as an SSL_ERROR_SSL (openssl/openssl#11735), and libevent 2.1.12
	 * predates the change. Renegotiation buys SIP nothing and has a history of
	 * attacks (CVE-2009-3555, CVE-2011-1473). */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION |
					 SSL_OP_NO_COMPRESSION);
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
		return refuse(why, whysz, EINVAL, "cannot set TLS 1.2 as the minimum: %s",
			      ossl_reason());
	if (SSL_CTX_set_cipher_list(ctx, TLSCTX_CIPHERS_TLS12) != 1)
		return refuse(why, whysz, EINVAL, "no usable TLS 1.2 cipher: %s", ossl_reason());
	/* Level 2 (112-bit security: RSA and DH of 2048 bits, no SHA-1 signatures)
	 * whatever the system's openssl.cnf says, but never lower what a site has
	 * raised. Set after the cipher list, which may carry its own @SECLEVEL. */
	if (SSL_CTX_get_security_level(ctx) < 2)
		SSL_CTX_set_security_level(ctx, 2);
	SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
	SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL);
	return 0;
}

static int readable(const char *key, const char *path, char *why, size_t whysz)
{
	if (access(path, R_OK) == 0)
		return 0;
	return refuse(why, whysz, errno, "%s %s: cannot read: %s", key, path, strerror(errno));
}

/* Our certificate chain and its private key, which must belong together. */
static int load_identity(SSL_CTX *ctx, const struct config_trunk *t, char *why, size_t whysz)
{
	bool asked = false;
	int err;

	err = readable("tls_certificate", t->tls_certificate, why, whysz);
	if (!err)
		err = readable("tls_private_key", t->tls_private_key, why, whysz);
	if (err)
		return err;
	ERR_clear_error();
	if (SSL_CTX_use_certificate_chain_file(ctx, t->tls_certificate) != 1)
		return refuse(why, whysz, EINVAL, "tls_certificate %s: not a usable PEM chain: %s",
			      t->tls_certificate, ossl_reason());
	SSL_CTX_set_default_passwd_cb_userdata(ctx, &asked);
	if (SSL_CTX_use_PrivateKey_file(ctx, t->tls_private_key, SSL_FILETYPE_PEM) != 1) {
		/* 3.0 checks the key against the loaded certificate of its
		 * type and fails here; a key of another type is accepted here
		 * and caught by the check below. */
		if (queued(ERR_LIB_X509, X509_R_KEY_VALUES_MISMATCH))
			err = refuse(why, whysz, EINVAL,
				     "tls_private_key %s does not belong to tls_certificate %s",
				     t->tls_private_key, t->tls_certificate);
		else if (asked)
			err = refuse(why, whysz, EINVAL,
				     "tls_private_key %s is protected by a passphrase: store it "
				     "unencrypted, readable only by the service user",
				     t->tls_private_key);
		else
			err = refuse(why, whysz, EINVAL,
				     "tls_private_key %s: not a usable PEM private key: %s",
				     t->tls_private_key, ossl_reason());
	} else if (SSL_CTX_check_private_key(ctx) != 1) {
		err = refuse(why, whysz, EINVAL,
			     "tls_private_key %s does not belong to tls_certificate %s",
			     t->tls_private_key, t->tls_certificate);
	}
	/* asked lives on this stack frame */
	SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL);
	ERR_clear_error();
	return err;
}

/* The session id context keeps a session made under one trunk's client
 * certificate rules from being resumed under another's. Without one, once
 * client verification is on, 3.0 does not fall back to a full handshake: it
 * aborts every resumption attempt with an internal_error alert. */
static int set_sid_context(SSL_CTX *ctx, const struct config_trunk *t)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char buf[512];
	int n;

	n = snprintf(buf, sizeof(buf), "srtpbridge\n%s\n%d\n%s", t->name ? t->name : "",
		     (int)t->tls_verify_client, t->tls_ca ? t->tls_ca : "");
	if (n < 0)
		return EINVAL;
	if (EVP_Digest(buf, strlen(buf), md, &mdlen, EVP_sha256(), NULL) != 1)
		return ENOMEM;
	if (mdlen > SSL_MAX_SID_CTX_LENGTH)
		mdlen = SSL_MAX_SID_CTX_LENGTH;
	return SSL_CTX_set_session_id_context(ctx, md, mdlen) == 1 ? 0 : EINVAL;
}

int tlsctx_server_create(SSL_CTX **out, const struct config_trunk *t, char *why, size_t whysz)
{
	SSL_CTX *ctx;
	int err;

	if (!t->tls_certificate || !t->tls_private_key)
		return refuse(why, whysz, EINVAL,
			      "a tls listen address needs tls_certificate and tls_private_key");
	if (t->tls_verify_client != TLS_CLIENT_NONE && !t->tls_ca)
		return refuse(
			why, whysz, EINVAL,
			"tls_verify_client needs tls_ca, the CA that signs client certificates");
	if (!ex_ready())
		return refuse(why, whysz, ENOMEM, "out of memory");
	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx)
		return refuse(why, whysz, ENOMEM, "cannot create a TLS context: %s", ossl_reason());
	err = common_setup(ctx, why, whysz);
	if (err)
		goto out;
	/* Our order decides among the ciphers a client offers: a client listing
	 * CBC or ChaCha20 first still gets AES-GCM where it can. */
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
	err = load_identity(ctx, t, why, whysz);
	if (err)
		goto out;
	err = set_sid_context(ctx, t);
	if (err) {
		refuse(why, whysz, err, "cannot set the TLS session id context");
		goto out;
	}
	if (t->tls_verify_client != TLS_CLIENT_NONE) {
		STACK_OF(X509_NAME) *names = NULL;
		int mode = SSL_VERIFY_PEER;

		err = readable("tls_ca", t->tls_ca, why, whysz);
		if (err)
			goto out;
		if (SSL_CTX_load_verify_file(ctx, t->tls_ca) != 1) {
			err = refuse(why, whysz, EINVAL, "tls_ca %s: %s", t->tls_ca, ossl_reason());
			goto out;
		}
		/* The CertificateRequest names the CAs we accept, so that a client
		 * holding several certificates picks one of ours. */
		names = SSL_load_client_CA_file(t->tls_ca);
		if (!names) {
			err = refuse(why, whysz, EINVAL, "tls_ca %s: no CA certificate in it",
				     t->tls_ca);
			goto out;
		}
		SSL_CTX_set_client_CA_list(ctx, names);
		if (t->tls_verify_client == TLS_CLIENT_REQUIRE)
			mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
		SSL_CTX_set_verify(ctx, mode, NULL);
		SSL_CTX_set_ex_data(ctx, ctx_ex_trust, (void *)(uintptr_t)TRUST_TLS_CA);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
out:
	ERR_clear_error();
	if (err)
		SSL_CTX_free(ctx);
	else
		*out = ctx;
	return err;
}

int tlsctx_client_create(SSL_CTX **out, const struct config_trunk *t, char *why, size_t whysz)
{
	SSL_CTX *ctx;
	int err;

	if (!ex_ready())
		return refuse(why, whysz, ENOMEM, "out of memory");
	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		return refuse(why, whysz, ENOMEM, "cannot create a TLS context: %s", ossl_reason());
	err = common_setup(ctx, why, whysz);
	if (err)
		goto out;
	/* The trust anchors are loaded even when tls_verify_peer is off, so that
	 * the verify result still tells the log what a check would have found. */
	if (t->tls_ca) {
		err = readable("tls_ca", t->tls_ca, why, whysz);
		if (err)
			goto out;
		if (SSL_CTX_load_verify_file(ctx, t->tls_ca) != 1) {
			err = refuse(why, whysz, EINVAL, "tls_ca %s: %s", t->tls_ca, ossl_reason());
			goto out;
		}
		SSL_CTX_set_ex_data(ctx, ctx_ex_trust, (void *)(uintptr_t)TRUST_TLS_CA);
	} else {
		if (SSL_CTX_set_default_verify_paths(ctx) != 1 && t->tls_verify_peer) {
			err = refuse(why, whysz, EINVAL, "cannot load the system trust store: %s",
				     ossl_reason());
			goto out;
		}
		SSL_CTX_set_ex_data(ctx, ctx_ex_trust, (void *)(uintptr_t)TRUST_SYSTEM);
	}
	SSL_CTX_set_verify(ctx, t->tls_verify_peer ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	if (t->tls_certificate && t->tls_private_key && access(t->tls_certificate, R_OK) == 0 &&
	    access(t->tls_private_key, R_OK) == 0) {
		/* Configured and readable: a file that is there but wrong is an
		 * error, not a silent connection without a client certificate. */
		err = load_identity(ctx, t, why, whysz);
		if (err)
			goto out;
	} else if (t->tls_certificate || t->tls_private_key) {
		/* Only one of them set, or not readable: a carrier that wants mutual
		 * TLS will refuse us, and this line says why ahead of its alert. */
		LOG_WARN(NULL, "tls client certificate not usable: connecting without one",
			 LF_S("trunk", t->name),
			 LF_S("tls_certificate", t->tls_certificate ? t->tls_certificate : ""),
			 LF_S("tls_private_key", t->tls_private_key ? t->tls_private_key : ""));
	}
out:
	ERR_clear_error();
	if (err)
		SSL_CTX_free(ctx);
	else
		*out = ctx;
	return err;
}

/* An IPv4 or IPv6 literal, without brackets or a zone. */
static bool is_ip_literal(const char *s)
{
	unsigned char a[16];

	return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

int tlsctx_client_ssl(SSL **out, SSL_CTX *ctx, const struct config_trunk *t,
		      const struct sip_uri *peer, char *why, size_t whysz)
{
	enum name_origin origin = NAME_FROM_PEER_HOST;
	const char *src = peer ? peer->host : "";
	char name[256];
	size_t n;
	SSL *ssl;
	int err = 0;

	if (t->tls_peer_name && t->tls_peer_name[0]) {
		src = t->tls_peer_name;
		origin = NAME_FROM_PEER_NAME;
	}
	/* Names are compared without the root's trailing dot, and SNI must not
	 * carry it (RFC 6066 section 3); an IPv6 literal may come bracketed. */
	if (src[0] == '[')
		src++;
	n = strlen(src);
	if (n >= sizeof(name))
		return refuse(why, whysz, EINVAL, "peer name %.40s... is too long", src);
	memcpy(name, src, n + 1);
	if (n && name[n - 1] == ']')
		name[--n] = '\0';
	if (n && name[n - 1] == '.')
		name[--n] = '\0';
	if (!n)
		return refuse(why, whysz, EINVAL, "no name to check the peer certificate against");
	if (!ex_ready())
		return refuse(why, whysz, ENOMEM, "out of memory");
	ERR_clear_error();
	ssl = SSL_new(ctx);
	if (!ssl)
		return refuse(why, whysz, ENOMEM, "cannot create a TLS connection: %s",
			      ossl_reason());
	if (is_ip_literal(name)) {
		/* SSL_set1_host checks DNS names only on 3.0; the IP goes into the
		 * verify parameters, and no SNI: RFC 6066 forbids literals there. */
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) != 1)
			err = refuse(why, whysz, EINVAL, "cannot check for IP address %s", name);
	} else {
		SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		/* SSL_set1_host sets the check only, not SNI: both are needed. */
		if (SSL_set1_host(ssl, name) != 1 || SSL_set_tlsext_host_name(ssl, name) != 1)
			err = refuse(why, whysz, EINVAL, "%s %s is not a usable host name",
				     origin == NAME_FROM_PEER_NAME ? "tls_peer_name" : "peer host",
				     name);
	}
	if (!err && SSL_set_ex_data(ssl, ssl_ex_name, (void *)(uintptr_t)origin) != 1)
		err = refuse(why, whysz, ENOMEM, "out of memory");
	ERR_clear_error();
	if (err) {
		SSL_free(ssl);
		return err;
	}
	SSL_set_connect_state(ssl);
	*out = ssl;
	return 0;
}

/* Certificate text is chosen by whoever made the certificate: keep only
 * printable ASCII so that it cannot forge a log line. */
static void copy_printable(char *dst, size_t size, const unsigned char *src, int len)
{
	size_t j = 0;

	for (int i = 0; i < len && j + 1 < size; i++)
		dst[j++] = (src[i] >= 0x20 && src[i] < 0x7f) ? (char)src[i] : '?';
	if (size)
		dst[j] = '\0';
}

/* The name a person would look for in the certificate: its first DNS
 * subjectAltName (what the check uses when there is one), else its CN. */
static void cert_name(X509 *x, char *buf, size_t size)
{
	GENERAL_NAMES *gens;
	X509_NAME *subj;
	int i;

	snprintf(buf, size, "(none)");
	if (!x)
		return;
	gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	for (i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);

		if (g->type == GEN_DNS) {
			copy_printable(buf, size, ASN1_STRING_get0_data(g->d.dNSName),
				       ASN1_STRING_length(g->d.dNSName));
			GENERAL_NAMES_free(gens);
			return;
		}
	}
	GENERAL_NAMES_free(gens);
	subj = X509_get_subject_name(x);
	i = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
	if (i >= 0) {
		const ASN1_STRING *cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, i));

		copy_printable(buf, size, ASN1_STRING_get0_data(cn), ASN1_STRING_length(cn));
	}
}

static void fmt_time(const ASN1_TIME *at, char *buf, size_t size)
{
	struct tm tm;

	if (!at || ASN1_TIME_to_tm(at, &tm) != 1 ||
	    strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(buf, size, "an unreadable date");
}

/* Certificate i of the chain the verification built, leaf first (0). After
 * a failed verification 3.0 has not stored the peer's leaf yet
 * (SSL_get0_peer_certificate is NULL) but keeps that chain. Returns
 * borrowed; NULL past its end. */
static X509 *chain_cert(SSL *ssl, int i)
{
	STACK_OF(X509) *sk = SSL_get0_verified_chain(ssl);

	return sk && i < sk_X509_num(sk) ? sk_X509_value(sk, i) : NULL;
}

static X509 *peer_leaf(SSL *ssl)
{
	X509 *x = SSL_get0_peer_certificate(ssl);

	return x ? x : chain_cert(ssl, 0);
}

/* The first certificate of the chain, from the leaf up, that has expired
 * (expired) or is not yet valid (!expired), and its depth. */
static X509 *find_out_of_date(SSL *ssl, bool expired, int *depth)
{
	for (int i = 0;; i++) {
		X509 *x = chain_cert(ssl, i);

		if (!x)
			break;
		if (expired ? X509_cmp_current_time(X509_get0_notAfter(x)) < 0
			    : X509_cmp_current_time(X509_get0_notBefore(x)) > 0) {
			*depth = i;
			return x;
		}
	}
	/* the verification may have used a clock we cannot see: name the leaf */
	*depth = 0;
	return peer_leaf(ssl);
}

static void describe_dates(SSL *ssl, bool expired, char *buf, size_t size)
{
	char date[64], who[128];
	int depth = 0;
	X509 *x = find_out_of_date(ssl, expired, &depth);

	fmt_time(x ? (expired ? X509_get0_notAfter(x) : X509_get0_notBefore(x)) : NULL, date,
		 sizeof(date));
	who[0] = '\0';
	if (x && depth > 0) {
		char cn[96];

		cert_name(x, cn, sizeof(cn));
		snprintf(who, sizeof(who), ", CA certificate %s", cn);
	}
	if (!x)
		snprintf(buf, size, expired ? "certificate expired" : "certificate not yet valid");
	else if (expired)
		snprintf(buf, size, "certificate expired (not after %s%s)", date, who);
	else
		snprintf(buf, size, "certificate not yet valid (not before %s%s)", date, who);
}

static void describe_verify(SSL *ssl, long vr, bool was_client, char *buf, size_t size)
{
	uintptr_t trust = (uintptr_t)SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_ex_trust);
	uintptr_t origin = (uintptr_t)SSL_get_ex_data(ssl, ssl_ex_name);
	char got[128];

	switch (vr) {
	case X509_V_ERR_HOSTNAME_MISMATCH: {
		const char *want = X509_VERIFY_PARAM_get0_host(SSL_get0_param(ssl), 0);

		cert_name(peer_leaf(ssl), got, sizeof(got));
		snprintf(buf, size, "peer certificate name %s does not match %s %s", got,
			 origin == NAME_FROM_PEER_NAME ? "tls_peer_name" : "peer host",
			 want ? want : "(unknown)");
		return;
	}
	case X509_V_ERR_IP_ADDRESS_MISMATCH: {
		/* 3.0 prints IPv6 uncompressed (0:0:0:0:0:0:0:1): say it the
		 * way the configuration does. */
		char *ip = X509_VERIFY_PARAM_get1_ip_asc(SSL_get0_param(ssl));
		unsigned char a[16];
		char text[INET6_ADDRSTRLEN];

		if (ip && inet_pton(AF_INET6, ip, a) == 1 &&
		    inet_ntop(AF_INET6, a, text, sizeof(text)))
			snprintf(buf, size, "peer certificate does not carry IP address %s", text);
		else
			snprintf(buf, size, "peer certificate does not carry IP address %s",
				 ip ? ip : "(unknown)");
		OPENSSL_free(ip);
		return;
	}
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_CERT_SIGNATURE_FAILURE:
	case X509_V_ERR_CERT_UNTRUSTED:
		if (trust == TRUST_SYSTEM)
			snprintf(buf, size,
				 "certificate not signed by a CA of the system trust "
				 "store (tls_ca is not set)");
		else
			snprintf(buf, size, "certificate not signed by tls_ca");
		return;
	case X509_V_ERR_CERT_HAS_EXPIRED:
		describe_dates(ssl, true, buf, size);
		return;
	case X509_V_ERR_CERT_NOT_YET_VALID:
		describe_dates(ssl, false, buf, size);
		return;
	default:
		snprintf(buf, size, "%s certificate refused: %s", was_client ? "peer" : "client",
			 X509_verify_cert_error_string(vr));
		return;
	}
}

/* The handshake errors we can put in better words than OpenSSL's. */
static const char *describe_reason(int reason, bool was_client)
{
	switch (reason) {
	case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
		return "client sent no certificate";
	case SSL_R_UNSUPPORTED_PROTOCOL:
	case SSL_R_VERSION_TOO_LOW:
		return "peer offered only TLS 1.1 or older";
	case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
		return "protocol version too old";
	case SSL_R_NO_SHARED_CIPHER:
		return "no shared cipher";
	case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
		return "peer requires a client certificate: set tls_certificate and "
		       "tls_private_key";
	case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
		return "peer does not trust our certificate (unknown CA alert)";
	case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
		return "peer refused our certificate as expired";
	case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
		return "peer refused our certificate (bad certificate alert)";
	case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
		return was_client ? "peer refused the handshake (handshake failure alert: often "
				    "no shared cipher, or no client certificate)"
				  : NULL;
	case SSL_R_WRONG_VERSION_NUMBER:
	case SSL_R_HTTP_REQUEST:
	case SSL_R_HTTPS_PROXY_REQUEST:
	case SSL_R_PACKET_LENGTH_TOO_LONG:
		return "peer does not speak TLS (plain SIP or another protocol on a TLS port?)";
	case SSL_R_UNEXPECTED_EOF_WHILE_READING:
		return "peer closed the connection during the TLS handshake";
	default:
		return NULL;
	}
}

const char *tlsctx_describe_failure(SSL *ssl, int verify_mode_was_client, char *buf, size_t size)
{
	bool was_client = verify_mode_was_client != 0;
	unsigned long e, first = 0;
	const char *known = NULL;
	long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;

	if (!buf || !size) {
		ERR_clear_error();
		return buf;
	}
	/* Oldest first: the first error is the cause, later ones its echoes. */
	while ((e = ERR_get_error()) != 0) {
		if (!first)
			first = e;
		if (!known && ERR_GET_LIB(e) == ERR_LIB_SSL)
			known = describe_reason(ERR_GET_REASON(e), was_client);
	}
	ERR_clear_error();
	if (ssl && vr != X509_V_OK && ex_ready()) {
		describe_verify(ssl, vr, was_client, buf, size);
	} else if (known) {
		snprintf(buf, size, "%s", known);
	} else if (first) {
		const char *r = ERR_reason_error_string(first);

		if (r)
			snprintf(buf, size, "TLS handshake failed: %s", r);
		else
			snprintf(buf, size, "TLS handshake failed: OpenSSL error %lx", first);
	} else {
		/* Nothing queued: the transport saw EOF or a reset before any
		 * TLS error could be raised. */
		snprintf(buf, size, "connection closed or reset during the TLS handshake");
	}
	return buf;
}

int tlsctx_cert_expiry(const char *cert_path, int64_t *unix_time)
{
	struct tm tm;
	X509 *x;
	FILE *f;
	int err = 0;

	f = fopen(cert_path, "re");
	if (!f)
		return errno;
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (!x || ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1)
		err = EBADMSG;
	else
		*unix_time = (int64_t)timegm(&tm);
	X509_free(x);
	ERR_clear_error();
	return err;
}
