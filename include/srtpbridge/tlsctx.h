/* tlsctx.h: OpenSSL contexts for SIP over TLS (RFC 3261 section 26, RFC 5630),
 * and plain-words reasons when a handshake fails.
 *
 * No sockets here: the transport wraps the SSL objects made here in
 * bufferevent_openssl. One server SSL_CTX per tls listener, one client SSL_CTX
 * per trunk, one SSL per outbound connection. A reload builds new contexts and
 * swaps pointers; live SSLs hold their own reference to the old ones.
 * docs/tls.md says what is checked on each side and what each refusal means. */
#ifndef SRTPBRIDGE_TLSCTX_H
#define SRTPBRIDGE_TLSCTX_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "srtpbridge/config.h"

/* TLS 1.2 ciphers we accept and offer, in our order of preference: forward
 * secret (ECDHE) and AEAD (AES-GCM, ChaCha20-Poly1305) only. TLS 1.3 uses
 * OpenSSL's default suites, all of which qualify. docs/tls.md says why. */
#define TLSCTX_CIPHERS_TLS12                                                                       \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                               \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                               \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* The context of a tls listener of trunk t: TLS 1.2 minimum, the cipher list
 * above in server order, no renegotiation, EOF without close_notify is an
 * ordinary close, t's certificate chain and key (which must match), and the
 * client certificate check of t->tls_verify_client against t->tls_ca.
 * Returns 0 with *out (returns new: SSL_CTX_free it), or EINVAL / ENOENT /
 * EACCES / ENOMEM with a sentence in why. */
int tlsctx_server_create(SSL_CTX **out, const struct config_trunk *t, char *why, size_t whysz);

/* The context for connections we open to t's peers: TLS 1.2 minimum, peer
 * certificates verified against t->tls_ca (the system trust store when NULL)
 * and enforced when t->tls_verify_peer, and t's certificate and key presented
 * when both files are configured and readable (carriers that want mutual TLS;
 * when they are not readable we connect without and log a warning). Returns 0
 * with *out (returns new), or an errno with a sentence in why. */
int tlsctx_client_create(SSL_CTX **out, const struct config_trunk *t, char *why, size_t whysz);

/* One outbound connection to peer over ctx (borrowed; the SSL takes its own
 * reference). The certificate must carry t->tls_peer_name when set, else
 * peer->host: a name is checked against the DNS names (no partial wildcards
 * such as f*.example) and sent as SNI; an IP literal is checked against the
 * IP address SANs and no SNI is sent (RFC 6066 section 3 forbids literals).
 * The SSL is in connect state. Returns 0 with *out (returns new: SSL_free it,
 * or hand it to a bufferevent that owns it), or an errno with why. */
int tlsctx_client_ssl(SSL **out, SSL_CTX *ctx, const struct config_trunk *t,
		      const struct sip_uri *peer, char *why, size_t whysz);

/* Why the handshake on ssl failed (or completed with a verify result other
 * than X509_V_OK), in plain words for a log line: from the verify result, the
 * peer certificate and this thread's OpenSSL error queue, which it then clears
 * so that the errors do not show up against another connection. Call it right
 * after the failing SSL call, on the same thread. verify_mode_was_client is
 * nonzero when we were the TLS client (we checked the server's certificate),
 * zero when we were the server (we checked a client certificate). Never
 * prints key material. Returns borrowed buf. */
const char *tlsctx_describe_failure(SSL *ssl, int verify_mode_was_client, char *buf, size_t size);

/* The notAfter of the first certificate in the PEM file cert_path (the leaf of
 * a chain file), as seconds since the epoch. 0, errno of fopen, or EBADMSG. */
int tlsctx_cert_expiry(const char *cert_path, int64_t *unix_time);

#endif
