/* tlsctx: real TLS handshakes in-process, over socketpairs, between contexts
 * built from struct config_trunk values, with a PKI generated at test time
 * (EC P-256: a root, an intermediate, leaves with DNS and IP SANs, an expired
 * one, one not yet valid, one from another CA, a self-signed one). Each
 * refusal is checked for its exact words on the side that refuses, and the
 * positive controls prove the same setup otherwise succeeds. No network. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "srtpbridge/tlsctx.h"

/* ---- files in a temporary directory ---- */

#define MAX_FILES 40

static char tmpdir[64] = "/tmp/test_tlsctx.XXXXXX";
static struct {
	char name[32];
	char path[128];
} files[MAX_FILES];
static size_t nfiles;

/* The path of name in the temporary directory; returns borrowed. */
static char *P(const char *name)
{
	for (size_t i = 0; i < nfiles; i++)
		if (strcmp(files[i].name, name) == 0)
			return files[i].path;
	assert_true(nfiles < MAX_FILES);
	snprintf(files[nfiles].name, sizeof(files[nfiles].name), "%s", name);
	snprintf(files[nfiles].path, sizeof(files[nfiles].path), "%s/%s", tmpdir, name);
	return files[nfiles++].path;
}

/* ---- the PKI ---- */

struct id {
	EVP_PKEY *key;
	X509 *cert;
};

static time_t expired_until; /* notAfter of expired.pem */
static time_t future_from;   /* notBefore of future.pem */
static time_t srv_until;     /* notAfter of srv.pem */

static EVP_PKEY *ec_key(void)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

	assert_non_null(k);
	return k;
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v;
	X509_EXTENSION *e;

	X509V3_set_ctx(&v, issuer ? issuer : x, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &v, nid, value);
	assert_non_null(e);
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
}

/* issuer NULL: self-signed. san NULL: none. key NULL: a new P-256 key; else
 * the struct takes it. */
static struct id make_id_key(const char *cn, const struct id *issuer, bool ca, const char *san,
			     time_t from, time_t until, EVP_PKEY *key)
{
	static long serial = 1000;
	struct id r = { key ? key : ec_key(), X509_new() };
	X509_NAME *n = X509_NAME_new();

	assert_non_null(r.cert);
	assert_non_null(n);
	assert_int_equal(X509_set_version(r.cert, X509_VERSION_3), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(r.cert), serial++), 1);
	assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
						    (const unsigned char *)cn, -1, -1, 0),
			 1);
	assert_int_equal(X509_set_subject_name(r.cert, n), 1);
	assert_int_equal(
		X509_set_issuer_name(r.cert, issuer ? X509_get_subject_name(issuer->cert) : n), 1);
	X509_NAME_free(n);
	assert_non_null(X509_time_adj(X509_getm_notBefore(r.cert), 0, &from));
	assert_non_null(X509_time_adj(X509_getm_notAfter(r.cert), 0, &until));
	assert_int_equal(X509_set_pubkey(r.cert, r.key), 1);
	add_ext(r.cert, issuer ? issuer->cert : NULL, NID_basic_constraints,
		ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
	add_ext(r.cert, issuer ? issuer->cert : NULL, NID_key_usage,
		ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
	add_ext(r.cert, issuer ? issuer->cert : NULL, NID_subject_key_identifier, "hash");
	if (issuer)
		add_ext(r.cert, issuer->cert, NID_authority_key_identifier, "keyid:always");
	if (san)
		add_ext(r.cert, issuer ? issuer->cert : NULL, NID_subject_alt_name, san);
	assert_true(X509_sign(r.cert, issuer ? issuer->key : r.key, EVP_sha256()) > 0);
	return r;
}

static struct id make_id(const char *cn, const struct id *issuer, bool ca, const char *san,
			 time_t from, time_t until)
{
	return make_id_key(cn, issuer, ca, san, from, until, NULL);
}

static void write_cert(const char *name, X509 *leaf, X509 *chain)
{
	FILE *f = fopen(P(name), "w");

	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, leaf), 1);
	if (chain)
		assert_int_equal(PEM_write_X509(f, chain), 1);
	assert_int_equal(fclose(f), 0);
}

static void write_key(const char *name, EVP_PKEY *key, const char *pass)
{
	FILE *f = fopen(P(name), "w");

	assert_non_null(f);
	if (pass)
		assert_int_equal(PEM_write_PrivateKey(f, key, EVP_aes_256_cbc(),
						      (const unsigned char *)pass,
						      (int)strlen(pass), NULL, NULL),
				 1);
	else
		assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
	assert_int_equal(fclose(f), 0);
}

static void write_text(const char *name, const char *text)
{
	FILE *f = fopen(P(name), "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void free_id(struct id *i)
{
	X509_free(i->cert);
	EVP_PKEY_free(i->key);
}

/* A leaf under the intermediate, written as NAME.pem (leaf + intermediate)
 * and NAME.key. */
static void leaf(const char *name, const char *cn, const char *san, time_t from, time_t until,
		 const struct id *inter)
{
	char n[32];
	struct id l = make_id(cn, inter, false, san, from, until);

	snprintf(n, sizeof(n), "%s.pem", name);
	write_cert(n, l.cert, inter->cert);
	snprintf(n, sizeof(n), "%s.key", name);
	write_key(n, l.key, NULL);
	free_id(&l);
}

static int setup_pki(void **state)
{
	const time_t day = 86400;
	time_t now = time(NULL);
	struct id root, inter, other, l, self;
	EVP_PKEY *k;

	if (!mkdtemp(tmpdir))
		return -1;
	expired_until = now - 3600;
	future_from = now + day;
	srv_until = now + day;

	root = make_id("srtpbridge test root", NULL, true, NULL, now - day, now + 30 * day);
	inter = make_id("srtpbridge test intermediate", &root, true, NULL, now - day,
			now + 30 * day);
	other = make_id("another CA", NULL, true, NULL, now - day, now + 30 * day);
	write_cert("ca.pem", root.cert, NULL);
	write_cert("other-ca.pem", other.cert, NULL);

	leaf("srv", "sbc.example", "DNS:sbc.example,IP:127.0.0.1,IP:::1", now - 3600, srv_until,
	     &inter);
	leaf("names", "sbc.example", "DNS:sbc.example", now - 3600, now + day, &inter);
	leaf("wild", "wildcard", "DNS:*.carrier.example", now - 3600, now + day, &inter);
	leaf("pwild", "partial wildcard", "DNS:f*.carrier.example", now - 3600, now + day, &inter);
	leaf("cnonly", "sbc.cn.example", NULL, now - 3600, now + day, &inter);
	leaf("expired", "sbc.example", "DNS:sbc.example,IP:127.0.0.1", now - 2 * day, expired_until,
	     &inter);
	leaf("future", "sbc.example", "DNS:sbc.example,IP:127.0.0.1", future_from, now + 2 * day,
	     &inter);
	leaf("client", "client.example", "DNS:client.example", now - 3600, now + day, &inter);

	/* under another CA, with a name that would otherwise match */
	l = make_id("sbc.example", &other, false, "DNS:sbc.example", now - 3600, now + day);
	write_cert("foreign.pem", l.cert, NULL);
	write_key("foreign.key", l.key, NULL);
	write_cert("client-foreign.pem", l.cert, NULL);
	write_key("client-foreign.key", l.key, NULL);
	/* an encrypted copy of a good key */
	write_key("srv-enc.key", l.key, "secret passphrase");
	free_id(&l);

	self = make_id("sbc.example", NULL, false, "DNS:sbc.example", now - 3600, now + day);
	write_cert("self.pem", self.cert, NULL);
	write_key("self.key", self.key, NULL);
	free_id(&self);

	/* keys that belong to no certificate: one of the same type, one not */
	k = ec_key();
	write_key("wrong-ec.key", k, NULL);
	EVP_PKEY_free(k);
	k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	assert_non_null(k);
	write_key("wrong-rsa.key", k, NULL);
	EVP_PKEY_free(k);
	/* what many carriers still have: an RSA certificate */
	k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	assert_non_null(k);
	l = make_id_key("sbc.example", &inter, false, "DNS:sbc.example", now - 3600, now + day, k);
	write_cert("rsa.pem", l.cert, inter.cert);
	write_key("rsa.key", l.key, NULL);
	free_id(&l);

	write_text("garbage.pem", "this is not a certificate\n");

	free_id(&other);
	free_id(&inter);
	free_id(&root);
	(void)state;
	return 0;
}

static int teardown_pki(void **state)
{
	for (size_t i = 0; i < nfiles; i++)
		unlink(files[i].path);
	rmdir(tmpdir);
	(void)state;
	return 0;
}

/* ---- trunks ---- */

static struct config_trunk server_trunk(const char *cert)
{
	char n[32];
	struct config_trunk t = { 0 };

	t.name = "carrier";
	snprintf(n, sizeof(n), "%s.pem", cert);
	t.tls_certificate = P(n);
	snprintf(n, sizeof(n), "%s.key", cert);
	t.tls_private_key = P(n);
	t.tls_ca = P("ca.pem");
	t.tls_verify_client = TLS_CLIENT_NONE;
	return t;
}

static struct config_trunk client_trunk(void)
{
	struct config_trunk t = { 0 };

	t.name = "carrier";
	t.tls_ca = P("ca.pem");
	t.tls_verify_peer = true;
	return t;
}

/* ---- the handshake ---- */

static struct {
	bool called;
	char name[256]; /* "" when the client sent none */
} sni;

static int on_servername(SSL *s, int *alert, void *arg)
{
	const char *n = SSL_get_servername(s, TLSEXT_NAMETYPE_host_name);

	sni.called = true;
	snprintf(sni.name, sizeof(sni.name), "%s", n ? n : "");
	(void)alert;
	(void)arg;
	return SSL_TLSEXT_ERR_OK;
}

struct end {
	SSL *ssl;
	bool client;
	int state; /* 0 running, 1 done, -1 failed */
	char why[256];
};

static void failed(struct end *e)
{
	e->state = -1;
	tlsctx_describe_failure(e->ssl, e->client, e->why, sizeof(e->why));
	/* the queue is drained: nothing leaks to the next connection */
	assert_int_equal(ERR_peek_error(), 0);
}

static void step(struct end *e)
{
	int r, err;

	if (e->state)
		return;
	r = SSL_do_handshake(e->ssl);
	if (r == 1) {
		e->state = 1;
		return;
	}
	err = SSL_get_error(e->ssl, r);
	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
		return;
	failed(e);
}

/* One read after the handshake: in TLS 1.3 the server checks the client's
 * certificate after the client has finished, so the client learns of a
 * refusal (and of session tickets) only here. */
static void settle(struct end *e)
{
	char b[64];
	int r, err;

	if (e->state != 1)
		return;
	r = SSL_read(e->ssl, b, sizeof(b));
	if (r > 0)
		return;
	err = SSL_get_error(e->ssl, r);
	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
		return;
	failed(e);
}

struct outcome {
	struct end c, s;
	long verify;	     /* the client's verify result */
	int version;	     /* negotiated, when both finished */
	char cipher[64];     /* negotiated */
	char client_cn[128]; /* of the certificate the server saw; "" none */
	bool c_reused, s_reused;
	SSL_SESSION *session; /* the client's, when keep_session */
};

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	assert_true(fl >= 0);
	assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

/* Takes client and server; pumps both ends until neither makes progress. If
 * preload is set it is written raw to the server first, as a client would. */
static void exchange(struct outcome *o, SSL *client, SSL *server, bool keep_session,
		     const char *preload)
{
	int fd[2];

	memset(o, 0, sizeof(*o));
	memset(&sni, 0, sizeof(sni));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
	set_nonblock(fd[0]);
	set_nonblock(fd[1]);
	o->c.ssl = client;
	o->c.client = true;
	o->s.ssl = server;
	if (preload) {
		assert_int_equal(write(fd[0], preload, strlen(preload)), (ssize_t)strlen(preload));
		o->c.state = -1; /* the raw writer does no TLS */
	}
	assert_int_equal(SSL_set_fd(client, fd[0]), 1);
	assert_int_equal(SSL_set_fd(server, fd[1]), 1);
	SSL_set_connect_state(client);
	SSL_set_accept_state(server);
	for (int i = 0; i < 200 && (o->c.state == 0 || o->s.state == 0); i++) {
		step(&o->c);
		step(&o->s);
	}
	settle(&o->c);
	settle(&o->s);
	o->verify = SSL_get_verify_result(client);
	if (o->c.state == 1 && o->s.state == 1) {
		X509 *peer = SSL_get0_peer_certificate(server);

		o->version = SSL_version(client);
		snprintf(o->cipher, sizeof(o->cipher), "%s", SSL_get_cipher_name(client));
		if (peer)
			X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName,
						  o->client_cn, sizeof(o->client_cn));
		o->c_reused = SSL_session_reused(client);
		o->s_reused = SSL_session_reused(server);
		/* close_notify first: SSL_free on a connection that was not shut
		 * down marks its session not resumable (ssl_clear_bad_session) */
		SSL_shutdown(client);
		SSL_shutdown(server);
		if (keep_session)
			o->session = SSL_get1_session(client);
	}
	SSL_free(client);
	SSL_free(server);
	close(fd[0]);
	close(fd[1]);
	ERR_clear_error();
}

static SSL_CTX *server_ctx(const struct config_trunk *t)
{
	char why[256];
	SSL_CTX *ctx = NULL;

	if (tlsctx_server_create(&ctx, t, why, sizeof(why)))
		fail_msg("server context: %s", why);
	SSL_CTX_set_tlsext_servername_callback(ctx, on_servername);
	return ctx;
}

static SSL_CTX *client_ctx(const struct config_trunk *t)
{
	char why[256];
	SSL_CTX *ctx = NULL;

	if (tlsctx_client_create(&ctx, t, why, sizeof(why)))
		fail_msg("client context: %s", why);
	return ctx;
}

static SSL *client_ssl(SSL_CTX *ctx, const struct config_trunk *t, const char *host)
{
	struct sip_uri peer = { .transport = SIP_TP_TLS, .port = 5061 };
	char why[256];
	SSL *ssl = NULL;

	snprintf(peer.host, sizeof(peer.host), "%s", host);
	if (tlsctx_client_ssl(&ssl, ctx, t, &peer, why, sizeof(why)))
		fail_msg("client ssl: %s", why);
	return ssl;
}

/* Our server from st against our client from ct connecting to host. */
static void run(struct outcome *o, const struct config_trunk *st, const struct config_trunk *ct,
		const char *host)
{
	SSL_CTX *s = server_ctx(st), *c = client_ctx(ct);

	exchange(o, client_ssl(c, ct, host), SSL_new(s), false, NULL);
	SSL_CTX_free(s);
	SSL_CTX_free(c);
}

static void expect_ok(const struct outcome *o)
{
	if (o->c.state != 1 || o->s.state != 1)
		fail_msg("handshake failed: client %d \"%s\", server %d \"%s\"", o->c.state,
			 o->c.why, o->s.state, o->s.why);
	assert_int_equal(o->verify, X509_V_OK);
}

static void fmt_utc(time_t t, char *buf, size_t size)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

/* ---- contexts ---- */

static void test_context_settings(void **state)
{
	struct config_trunk st = server_trunk("srv"), ct = client_trunk();
	const long want = SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION;
	SSL_CTX *s, *c;

	s = server_ctx(&st);
	assert_int_equal(SSL_CTX_get_min_proto_version(s), TLS1_2_VERSION);
	assert_int_equal(SSL_CTX_get_options(s) & (want | SSL_OP_CIPHER_SERVER_PREFERENCE),
			 want | SSL_OP_CIPHER_SERVER_PREFERENCE);
	assert_true(SSL_CTX_get_security_level(s) >= 2);
	assert_int_equal(SSL_CTX_get_verify_mode(s), SSL_VERIFY_NONE);
	SSL_CTX_free(s);

	st.tls_verify_client = TLS_CLIENT_OPTIONAL;
	s = server_ctx(&st);
	assert_int_equal(SSL_CTX_get_verify_mode(s), SSL_VERIFY_PEER);
	assert_int_equal(sk_X509_NAME_num(SSL_CTX_get_client_CA_list(s)), 1);
	SSL_CTX_free(s);

	st.tls_verify_client = TLS_CLIENT_REQUIRE;
	s = server_ctx(&st);
	assert_int_equal(SSL_CTX_get_verify_mode(s),
			 SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT);
	SSL_CTX_free(s);

	c = client_ctx(&ct);
	assert_int_equal(SSL_CTX_get_min_proto_version(c), TLS1_2_VERSION);
	assert_int_equal(SSL_CTX_get_options(c) & want, want);
	assert_int_equal(SSL_CTX_get_verify_mode(c), SSL_VERIFY_PEER);
	assert_null(SSL_CTX_get0_certificate(c)); /* none configured */
	SSL_CTX_free(c);
	ct.tls_verify_peer = false;
	c = client_ctx(&ct);
	assert_int_equal(SSL_CTX_get_verify_mode(c), SSL_VERIFY_NONE);
	SSL_CTX_free(c);
	(void)state;
}

/* ---- positive controls ---- */

static void test_name_ok(void **state)
{
	struct config_trunk st = server_trunk("srv"), ct = client_trunk();
	struct outcome o;

	run(&o, &st, &ct, "sbc.example");
	expect_ok(&o);
	assert_int_equal(o.version, TLS1_3_VERSION);
	assert_true(sni.called);
	assert_string_equal(sni.name, "sbc.example");

	/* the root's trailing dot is neither checked nor sent */
	run(&o, &st, &ct, "sbc.example.");
	expect_ok(&o);
	assert_string_equal(sni.name, "sbc.example");

	/* a certificate with no SAN at all is matched on its CN */
	st = server_trunk("cnonly");
	run(&o, &st, &ct, "sbc.cn.example");
	expect_ok(&o);
	(void)state;
}

static void test_peer_name_overrides_host(void **state)
{
	struct config_trunk st = server_trunk("srv"), ct = client_trunk();
	struct outcome o;

	/* 127.0.0.2 is not in the certificate: only tls_peer_name is checked,
	 * and it is what goes in SNI even though the host is a literal */
	ct.tls_peer_name = "sbc.example";
	run(&o, &st, &ct, "127.0.0.2");
	expect_ok(&o);
	assert_string_equal(sni.name, "sbc.example");
	(void)state;
}

static void test_ip_ok_without_sni(void **state)
{
	struct config_trunk st = server_trunk("srv"), ct = client_trunk();
	struct outcome o;

	run(&o, &st, &ct, "127.0.0.1");
	expect_ok(&o);
	assert_true(sni.called); /* the callback ran: the absence is real */
	assert_string_equal(sni.name, "");

	run(&o, &st, &ct, "::1");
	expect_ok(&o);
	assert_true(sni.called);
	assert_string_equal(sni.name, "");

	run(&o, &st, &ct, "[::1]");
	expect_ok(&o);
	assert_string_equal(sni.name, "");
	(void)state;
}

static void test_tls12_server_preference(void **state)
{
	struct config_trunk st = server_trunk("srv");
	SSL_CTX *s = server_ctx(&st), *c = SSL_CTX_new(TLS_client_method());
	struct outcome o;

	/* a TLS 1.2 client preferring ChaCha20 and AES-256 still gets our first */
	assert_non_null(c);
	assert_int_equal(SSL_CTX_set_max_proto_version(c, TLS1_2_VERSION), 1);
	assert_int_equal(SSL_CTX_set_cipher_list(c, "ECDHE-ECDSA-CHACHA20-POLY1305:"
						    "ECDHE-ECDSA-AES256-GCM-SHA384:"
						    "ECDHE-ECDSA-AES128-GCM-SHA256"),
			 1);
	exchange(&o, SSL_new(c), SSL_new(s), false, NULL);
	assert_int_equal(o.c.state, 1);
	assert_int_equal(o.s.state, 1);
	assert_int_equal(o.version, TLS1_2_VERSION);
	assert_string_equal(o.cipher, "ECDHE-ECDSA-AES128-GCM-SHA256");
	SSL_CTX_free(c);
	SSL_CTX_free(s);
	(void)state;
}

static void test_rsa_certificate(void **state)
{
	struct config_trunk st = server_trunk("rsa"), ct = client_trunk();
	SSL_CTX *s, *c;
	struct outcome o;

	run(&o, &st, &ct, "sbc.example");
	expect_ok(&o);
	assert_int_equal(o.version, TLS1_3_VERSION);

	/* a TLS 1.2 peer gets ECDHE-RSA with AES-GCM */
	s = server_ctx(&st);
	c = SSL_CTX_new(TLS_client_method());
	assert_non_null(c);
	assert_int_equal(SSL_CTX_set_max_proto_version(c, TLS1_2_VERSION), 1);
	exchange(&o, SSL_new(c), SSL_new(s), false, NULL);
	assert_int_equal(o.s.state, 1);
	assert_string_equal(o.cipher, "ECDHE-RSA-AES128-GCM-SHA256");
	SSL_CTX_free(c);
	SSL_CTX_free(s);

	/* and our client speaks TLS 1.2 to a server that has nothing newer */
	c = client_ctx(&ct);
	s = SSL_CTX_new(TLS_server_method());
	assert_non_null(s);
	assert_int_equal(SSL_CTX_set_max_proto_version(s, TLS1_2_VERSION), 1);
	assert_int_equal(SSL_CTX_use_certificate_chain_file(s, P("rsa.pem")), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey_file(s, P("rsa.key"), SSL_FILETYPE_PEM), 1);
	exchange(&o, client_ssl(c, &ct, "sbc.example"), SSL_new(s), false, NULL);
	expect_ok(&o);
	assert_int_equal(o.version, TLS1_2_VERSION);
	assert_string_equal(o.cipher, "ECDHE-RSA-AES128-GCM-SHA256");
	SSL_CTX_free(c);
	SSL_CTX_free(s);
	(void)state;
}

/* ---- the peer's certificate, checked by our client ---- */

static void test_wrong_peer_name(void **state)
{
	struct config_trunk st = server_trunk("srv"), ct = client_trunk();
	struct outcome o;

	ct.tls_peer_name = "sbc.carrier.example";
	run(&o, &st, &ct, "127.0.0.1");
	assert_int_equal(o.c.state, -1);
	assert_string_equal(o.c.why, "peer certificate name sbc.example does not match "
				     "tls_peer_name sbc.carrier.example");
	assert_int_equal(o.s.state, -1);
	assert_string_equal(o.s.why, "peer refused our certificate (bad certificate alert)");
	assert_string_equal(sni.name, "sbc.carrier.example");
	(void)state;
}

static void test_wrong_host_name(void **state)
{
	struct config_trunk st = server_trunk("srv"), ct = client_trunk();
	struct outcome o;

	run(&o, &st, &ct, "other.example");
	assert_int_equal(o.c.state, -1);
	assert_string_equal(
		o.c.why,
		"peer certificate name sbc.example does not match peer host other.example");
	(void)state;
}

static void test_ip_not_in_certificate(void **state)
{
	struct config_trunk st = server_trunk("names"), ct = client_trunk();
	struct outcome o;

	run(&o, &st, &ct, "127.0.0.1");
	assert_int_equal(o.c.state, -1);
	assert_string_equal(o.c.why, "peer certificate does not carry IP address 127.0.0.1");
	assert_string_equal(sni.name, "");

	/* the IPv6 path */
	run(&o, &st, &ct, "::1");
	assert_int_equal(o.c.state, -1);
	assert_string_equal(o.c.why, "peer certificate does not carry IP address ::1");

	/* the name in the same certificate does not stand in for the address */
	st = server_trunk("srv");
	run(&o, &st, &ct, "127.0.0.2");
	assert_int_equal(o.c.state, -1);
	assert_string_equal(o.c.why, "peer certificate does not carry IP address 127.0.0.2");
	(void)state;
}

static void test_wildcards(void **state)
{
	struct config_trunk st = server_trunk("wild"), ct = client_trunk();
	struct outcome o;
	X509 *x;
	FILE *f;

	run(&o, &st, &ct, "sbc.carrier.example");
	expect_ok(&o);

	/* OpenSSL would match f*.carrier.example without the flag ... */
	f = fopen(P("pwild.pem"), "r");
	assert_non_null(f);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(x);
	assert_int_equal(X509_check_host(x, "foo.carrier.example", 0, 0, NULL), 1);
	assert_int_equal(X509_check_host(x, "foo.carrier.example", 0,
					 X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL),
			 0);
	X509_free(x);
	/* ... and we set it */
	st = server_trunk("pwild");
	run(&o, &st, &ct, "foo.carrier.example");
	assert_int_equal(o.c.state, -1);
	assert_string_equal(o.c.why, "peer certificate name f*.carrier.example does not match "
				     "peer host foo.carrier.example");
	(void)state;
}

static void test_wrong_ca(void **state)
{
	struct config_trunk st = server_trunk("foreign"), ct = client_trunk();
	struct outcome o;

	run(&o, &st, &ct, "sbc.example");
	assert_int_equal(o.c.state, -1);
	assert_string_equal(o.c.why, "certificate not signed by tls_ca");
	assert_string_equal(o.s.why, "peer does not trust our certificate (unknown CA alert)");

	st = server_trunk("self");
	run(&o, &st, &ct, "sbc.example");
	assert_int_equal(o.c.state, -1);
	assert_string_equal(o.c.why, "certificate not signed by tls_ca");

	/* without tls_ca the system store is used, and the words say so */
	ct.tls_ca = NULL;
	st = server_trunk("srv");
	run(&o, &st, &ct, "sbc.example");
	assert_int_equal(o.c.state, -1);
	assert_string_equal(o.c.why, "certificate not signed by a CA of the system trust store "
				     "(tls_ca is not set)");
	(void)state;
}

static void test_expired(void **state)
{
	struct config_trunk st = server_trunk("expired"), ct = client_trunk();
	struct outcome o;
	char want[128], date[64];

	run(&o, &st, &ct, "sbc.example");
	assert_int_equal(o.c.state, -1);
	fmt_utc(expired_until, date, sizeof(date));
	snprintf(want, sizeof(want), "certificate expired (not after %s)", date);
	assert_string_equal(o.c.why, want);
	assert_string_equal(o.s.why, "peer refused our certificate as expired");
	(void)state;
}

static void test_not_yet_valid(void **state)
{
	struct config_trunk st = server_trunk("future"), ct = client_trunk();
	struct outcome o;
	char want[128], date[64];

	run(&o, &st, &ct, "127.0.0.1");
	assert_int_equal(o.c.state, -1);
	fmt_utc(future_from, date, sizeof(date));
	snprintf(want, sizeof(want), "certificate not yet valid (not before %s)", date);
	assert_string_equal(o.c.why, want);
	(void)state;
}

static void test_verify_peer_off(void **state)
{
	struct config_trunk st = server_trunk("foreign"), ct = client_trunk();
	struct outcome o;
	SSL_CTX *s, *c;
	SSL *ssl;
	char why[256];
	int fd[2];

	/* the handshake completes, and the verify result still says why it
	 * would not have: what the transport logs as a warning */
	ct.tls_verify_peer = false;
	run(&o, &st, &ct, "sbc.example");
	assert_int_equal(o.c.state, 1);
	assert_int_equal(o.s.state, 1);
	assert_int_equal(o.verify, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);

	/* describe_failure after a completed handshake */
	s = server_ctx(&st);
	c = client_ctx(&ct);
	ssl = client_ssl(c, &ct, "sbc.example");
	{
		SSL *srv = SSL_new(s);
		struct end ce = { ssl, true, 0, "" }, se = { srv, false, 0, "" };

		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
		set_nonblock(fd[0]);
		set_nonblock(fd[1]);
		SSL_set_fd(ssl, fd[0]);
		SSL_set_fd(srv, fd[1]);
		SSL_set_accept_state(srv);
		for (int i = 0; i < 50 && (!ce.state || !se.state); i++) {
			step(&ce);
			step(&se);
		}
		assert_int_equal(ce.state, 1);
		tlsctx_describe_failure(ssl, 1, why, sizeof(why));
		assert_string_equal(why, "certificate not signed by tls_ca");
		SSL_free(srv);
		close(fd[1]);
	}
	SSL_free(ssl);
	close(fd[0]);
	SSL_CTX_free(s);
	SSL_CTX_free(c);
	(void)state;
}

/* ---- client certificates, checked by our server ---- */

static void test_client_cert_required_missing(void **state)
{
	struct config_trunk st = server_trunk("srv"), ct = client_trunk();
	struct outcome o;

	st.tls_verify_client = TLS_CLIENT_REQUIRE;
	run(&o, &st, &ct, "sbc.example");
	assert_int_equal(o.s.state, -1);
	assert_string_equal(o.s.why, "client sent no certificate");
	/* in TLS 1.3 the client hears of it after its own Finished */
	assert_int_equal(o.c.state, -1);
	assert_string_equal(o.c.why, "peer requires a client certificate: set tls_certificate "
				     "and tls_private_key");
	(void)state;
}

static void test_client_cert_required_present(void **state)
{
	struct config_trunk st = server_trunk("srv"), ct = client_trunk();
	struct outcome o;

	st.tls_verify_client = TLS_CLIENT_REQUIRE;
	ct.tls_certificate = P("client.pem");
	ct.tls_private_key = P("client.key");
	run(&o, &st, &ct, "sbc.example");
	expect_ok(&o);
	assert_string_equal(o.client_cn, "client.example");
	(void)state;
}

static void test_client_cert_optional_absent(void **state)
{
	struct config_trunk st = server_trunk("srv"), ct = client_trunk();
	struct outcome o;

	st.tls_verify_client = TLS_CLIENT_OPTIONAL;
	run(&o, &st, &ct, "sbc.example");
	expect_ok(&o);
	assert_string_equal(o.client_cn, "");
	(void)state;
}

static void test_client_cert_wrong_ca(void **state)
{
	struct config_trunk st = server_trunk("srv"), ct = client_trunk();
	struct outcome o;

	/* optional still refuses a certificate that does not verify */
	st.tls_verify_client = TLS_CLIENT_OPTIONAL;
	ct.tls_certificate = P("client-foreign.pem");
	ct.tls_private_key = P("client-foreign.key");
	run(&o, &st, &ct, "sbc.example");
	assert_int_equal(o.s.state, -1);
	assert_string_equal(o.s.why, "certificate not signed by tls_ca");
	assert_int_equal(o.c.state, -1);
	assert_string_equal(o.c.why, "peer does not trust our certificate (unknown CA alert)");
	(void)state;
}

static void test_client_cert_unreadable(void **state)
{
	struct config_trunk st = server_trunk("srv"), ct = client_trunk();
	struct outcome o;

	/* configured but not there: we connect without one, and are refused */
	st.tls_verify_client = TLS_CLIENT_REQUIRE;
	ct.tls_certificate = P("missing.pem");
	ct.tls_private_key = P("client.key");
	run(&o, &st, &ct, "sbc.example");
	assert_int_equal(o.s.state, -1);
	assert_string_equal(o.s.why, "client sent no certificate");
	(void)state;
}

static void test_resumption_with_client_verify(void **state)
{
	struct config_trunk st = server_trunk("srv"), ct = client_trunk();
	struct outcome o;
	SSL_CTX *s, *c;
	SSL_SESSION *sess;
	SSL *ssl;

	st.tls_verify_client = TLS_CLIENT_REQUIRE;
	ct.tls_certificate = P("client.pem");
	ct.tls_private_key = P("client.key");
	s = server_ctx(&st);
	c = client_ctx(&ct);
	exchange(&o, client_ssl(c, &ct, "sbc.example"), SSL_new(s), true, NULL);
	expect_ok(&o);
	assert_false(o.c_reused);
	sess = o.session;
	assert_non_null(sess);
	assert_true(SSL_SESSION_is_resumable(sess));

	ssl = client_ssl(c, &ct, "sbc.example");
	assert_int_equal(SSL_set_session(ssl, sess), 1);
	SSL_SESSION_free(sess);
	exchange(&o, ssl, SSL_new(s), false, NULL);
	expect_ok(&o);
	assert_true(o.c_reused);
	assert_true(o.s_reused);
	/* the resumed session still knows who the client is */
	assert_string_equal(o.client_cn, "client.example");
	SSL_CTX_free(s);
	SSL_CTX_free(c);
	(void)state;
}

/* ---- protocol versions and ciphers ---- */

static SSL_CTX *old_ctx(const SSL_METHOD *m)
{
	SSL_CTX *c = SSL_CTX_new(m);

	/* security level 0, or OpenSSL 3.0 will not even try TLS 1.1 */
	assert_non_null(c);
	assert_int_equal(SSL_CTX_set_cipher_list(c, "DEFAULT:@SECLEVEL=0"), 1);
	SSL_CTX_set_security_level(c, 0);
	assert_int_equal(SSL_CTX_set_min_proto_version(c, TLS1_VERSION), 1);
	assert_int_equal(SSL_CTX_set_max_proto_version(c, TLS1_1_VERSION), 1);
	return c;
}

static void test_tls11_client_refused(void **state)
{
	struct config_trunk st = server_trunk("srv");
	SSL_CTX *s = server_ctx(&st), *c = old_ctx(TLS_client_method());
	struct outcome o;

	exchange(&o, SSL_new(c), SSL_new(s), false, NULL);
	assert_int_equal(o.s.state, -1);
	assert_string_equal(o.s.why, "peer offered only TLS 1.1 or older");
	assert_int_equal(o.c.state, -1);
	assert_string_equal(o.c.why, "protocol version too old");
	SSL_CTX_free(c);
	SSL_CTX_free(s);
	(void)state;
}

static void test_tls11_server_refused(void **state)
{
	struct config_trunk ct = client_trunk();
	SSL_CTX *s = old_ctx(TLS_server_method()), *c = client_ctx(&ct);
	struct outcome o;

	assert_int_equal(SSL_CTX_use_certificate_chain_file(s, P("srv.pem")), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey_file(s, P("srv.key"), SSL_FILETYPE_PEM), 1);
	exchange(&o, client_ssl(c, &ct, "sbc.example"), SSL_new(s), false, NULL);
	assert_int_equal(o.c.state, -1);
	assert_string_equal(o.c.why, "protocol version too old");
	assert_int_equal(o.s.state, -1);
	SSL_CTX_free(c);
	SSL_CTX_free(s);
	(void)state;
}

static void test_no_shared_cipher(void **state)
{
	struct config_trunk st = server_trunk("srv");
	SSL_CTX *s = server_ctx(&st), *c = SSL_CTX_new(TLS_client_method());
	struct outcome o;

	/* a TLS 1.2 client with CBC only (the RFC 3261 era suite and its ECDHE
	 * cousin): refused, which proves CBC is out of our list */
	assert_non_null(c);
	assert_int_equal(SSL_CTX_set_max_proto_version(c, TLS1_2_VERSION), 1);
	assert_int_equal(SSL_CTX_set_cipher_list(c, "AES128-SHA:ECDHE-ECDSA-AES128-SHA"), 1);
	exchange(&o, SSL_new(c), SSL_new(s), false, NULL);
	assert_int_equal(o.s.state, -1);
	assert_string_equal(o.s.why, "no shared cipher");
	assert_int_equal(o.c.state, -1);
	assert_string_equal(o.c.why, "peer refused the handshake (handshake failure alert: "
				     "often no shared cipher, or no client certificate)");
	SSL_CTX_free(c);
	SSL_CTX_free(s);

	/* and our client does not offer CBC either */
	{
		struct config_trunk ct = client_trunk();

		c = client_ctx(&ct);
		s = SSL_CTX_new(TLS_server_method());
		assert_non_null(s);
		assert_int_equal(SSL_CTX_set_max_proto_version(s, TLS1_2_VERSION), 1);
		assert_int_equal(SSL_CTX_set_cipher_list(s, "ECDHE-ECDSA-AES128-SHA"), 1);
		assert_int_equal(SSL_CTX_use_certificate_chain_file(s, P("srv.pem")), 1);
		assert_int_equal(SSL_CTX_use_PrivateKey_file(s, P("srv.key"), SSL_FILETYPE_PEM), 1);
		exchange(&o, client_ssl(c, &ct, "sbc.example"), SSL_new(s), false, NULL);
		assert_int_equal(o.s.state, -1);
		assert_string_equal(o.s.why, "no shared cipher");
		assert_int_equal(o.c.state, -1);
		SSL_CTX_free(c);
		SSL_CTX_free(s);
	}
	(void)state;
}

static void test_plain_sip_on_tls_port(void **state)
{
	struct config_trunk st = server_trunk("srv");
	SSL_CTX *s = server_ctx(&st), *c = SSL_CTX_new(TLS_client_method());
	struct outcome o;

	assert_non_null(c);
	exchange(&o, SSL_new(c), SSL_new(s), false,
		 "OPTIONS sip:sbc.example SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.1\r\n\r\n");
	assert_int_equal(o.s.state, -1);
	assert_string_equal(
		o.s.why, "peer does not speak TLS (plain SIP or another protocol on a TLS port?)");
	SSL_CTX_free(c);
	SSL_CTX_free(s);
	(void)state;
}

/* ---- refusals at context creation ---- */

static void expect_refused(int (*create)(SSL_CTX **, const struct config_trunk *, char *, size_t),
			   const struct config_trunk *t, int err, const char *words)
{
	SSL_CTX *ctx = NULL;
	char why[512] = "";

	assert_int_equal(create(&ctx, t, why, sizeof(why)), err);
	assert_null(ctx);
	assert_string_equal(why, words);
	assert_int_equal(ERR_peek_error(), 0);
}

static void test_key_mismatch(void **state)
{
	struct config_trunk st = server_trunk("srv"), ct = client_trunk();
	char want[512];

	st.tls_private_key = P("wrong-ec.key");
	snprintf(want, sizeof(want), "tls_private_key %s does not belong to tls_certificate %s",
		 P("wrong-ec.key"), P("srv.pem"));
	expect_refused(tlsctx_server_create, &st, EINVAL, want);

	/* a key of another type reaches the check by another path */
	st.tls_private_key = P("wrong-rsa.key");
	snprintf(want, sizeof(want), "tls_private_key %s does not belong to tls_certificate %s",
		 P("wrong-rsa.key"), P("srv.pem"));
	expect_refused(tlsctx_server_create, &st, EINVAL, want);

	/* the client's own certificate, when configured, is held to the same */
	ct.tls_certificate = P("client.pem");
	ct.tls_private_key = P("wrong-ec.key");
	snprintf(want, sizeof(want), "tls_private_key %s does not belong to tls_certificate %s",
		 P("wrong-ec.key"), P("client.pem"));
	expect_refused(tlsctx_client_create, &ct, EINVAL, want);
	(void)state;
}

static void test_unusable_files(void **state)
{
	struct config_trunk st = server_trunk("srv"), ct = client_trunk();
	char want[512];

	st.tls_private_key = P("srv-enc.key");
	st.tls_certificate = P("foreign.pem");
	snprintf(want, sizeof(want),
		 "tls_private_key %s is protected by a passphrase: store it unencrypted, "
		 "readable only by the service user",
		 P("srv-enc.key"));
	expect_refused(tlsctx_server_create, &st, EINVAL, want);

	st = server_trunk("srv");
	st.tls_certificate = P("missing.pem");
	snprintf(want, sizeof(want), "tls_certificate %s: cannot read: %s", P("missing.pem"),
		 strerror(ENOENT));
	expect_refused(tlsctx_server_create, &st, ENOENT, want);

	st.tls_certificate = P("garbage.pem");
	snprintf(want, sizeof(want), "tls_certificate %s: not a usable PEM chain: no start line",
		 P("garbage.pem"));
	expect_refused(tlsctx_server_create, &st, EINVAL, want);

	st = server_trunk("srv");
	st.tls_verify_client = TLS_CLIENT_REQUIRE;
	st.tls_ca = P("garbage.pem");
	snprintf(want, sizeof(want), "tls_ca %s: no certificate or crl found", P("garbage.pem"));
	expect_refused(tlsctx_server_create, &st, EINVAL, want);

	ct.tls_ca = P("missing-ca.pem");
	snprintf(want, sizeof(want), "tls_ca %s: cannot read: %s", P("missing-ca.pem"),
		 strerror(ENOENT));
	expect_refused(tlsctx_client_create, &ct, ENOENT, want);
	(void)state;
}

/* ---- describe_failure on its own, and the expiry metric ---- */

static void test_describe_queue(void **state)
{
	SSL_CTX *c = SSL_CTX_new(TLS_client_method());
	SSL *ssl;
	char why[256];

	assert_non_null(c);
	ssl = SSL_new(c);
	assert_non_null(ssl);
	tlsctx_describe_failure(ssl, 1, why, sizeof(why));
	assert_string_equal(why, "connection closed or reset during the TLS handshake");

	/* the first recognised error wins over what follows it */
	ERR_raise(ERR_LIB_SSL, SSL_R_NO_SHARED_CIPHER);
	ERR_raise(ERR_LIB_SSL, SSL_R_UNSUPPORTED_PROTOCOL);
	tlsctx_describe_failure(ssl, 0, why, sizeof(why));
	assert_string_equal(why, "no shared cipher");
	assert_int_equal(ERR_peek_error(), 0);

	/* and an unknown one is given in OpenSSL's words */
	ERR_raise(ERR_LIB_SSL, SSL_R_BAD_LENGTH);
	tlsctx_describe_failure(ssl, 0, why, sizeof(why));
	assert_string_equal(why, "TLS handshake failed: bad length");
	assert_int_equal(ERR_peek_error(), 0);
	SSL_free(ssl);
	SSL_CTX_free(c);
	(void)state;
}

static void test_cert_expiry(void **state)
{
	int64_t t = 0;

	assert_int_equal(tlsctx_cert_expiry(P("srv.pem"), &t), 0);
	assert_int_equal(t, (int64_t)srv_until);
	assert_int_equal(tlsctx_cert_expiry(P("expired.pem"), &t), 0);
	assert_int_equal(t, (int64_t)expired_until);
	assert_int_equal(tlsctx_cert_expiry(P("missing.pem"), &t), ENOENT);
	assert_int_equal(tlsctx_cert_expiry(P("garbage.pem"), &t), EBADMSG);
	assert_int_equal(ERR_peek_error(), 0);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_context_settings),
		cmocka_unit_test(test_name_ok),
		cmocka_unit_test(test_peer_name_overrides_host),
		cmocka_unit_test(test_ip_ok_without_sni),
		cmocka_unit_test(test_tls12_server_preference),
		cmocka_unit_test(test_rsa_certificate),
		cmocka_unit_test(test_wrong_peer_name),
		cmocka_unit_test(test_wrong_host_name),
		cmocka_unit_test(test_ip_not_in_certificate),
		cmocka_unit_test(test_wildcards),
		cmocka_unit_test(test_wrong_ca),
		cmocka_unit_test(test_expired),
		cmocka_unit_test(test_not_yet_valid),
		cmocka_unit_test(test_verify_peer_off),
		cmocka_unit_test(test_client_cert_required_missing),
		cmocka_unit_test(test_client_cert_required_present),
		cmocka_unit_test(test_client_cert_optional_absent),
		cmocka_unit_test(test_client_cert_wrong_ca),
		cmocka_unit_test(test_client_cert_unreadable),
		cmocka_unit_test(test_resumption_with_client_verify),
		cmocka_unit_test(test_tls11_client_refused),
		cmocka_unit_test(test_tls11_server_refused),
		cmocka_unit_test(test_no_shared_cipher),
		cmocka_unit_test(test_plain_sip_on_tls_port),
		cmocka_unit_test(test_key_mismatch),
		cmocka_unit_test(test_unusable_files),
		cmocka_unit_test(test_describe_queue),
		cmocka_unit_test(test_cert_expiry),
	};

	return cmocka_run_group_tests_name("tlsctx", tests, setup_pki, teardown_pki);
}
