/* srtpcrypto.h: our HMAC-SHA1, AES-ICM and AES-GCM in libsrtp2's place.
 *
 * libsrtp 2.5 on OpenSSL 3 pays for OpenSSL's generic API where it need not:
 * its HMAC-SHA1 copies a digest context through the provider (a malloc and a
 * free) twice a packet; its AES-ICM and AES-GCM have OpenSSL look the cipher
 * up by name in its providers each time a key is set, three times per
 * srtp_create (the key derivation, the RTP and the RTCP cipher), and re-set
 * the IV through OpenSSL's parameter lookups each packet. Ours are offered
 * through libsrtp2's public srtp_replace_auth_type() and
 * srtp_replace_cipher_type(), which run libsrtp2's test vectors and ours
 * first and keep libsrtp2's own where one fails: what goes on the wire does
 * not change either way. */
#ifndef SRTPBRIDGE_SRTPCRYPTO_H
#define SRTPBRIDGE_SRTPCRYPTO_H

/* What libsrtp2 took, as a mask. */
enum srtpcrypto_part {
	SRTPCRYPTO_HMAC_SHA1 = 1u << 0,
	SRTPCRYPTO_AES_ICM_128 = 1u << 1,
	SRTPCRYPTO_AES_ICM_192 = 1u << 2,
	SRTPCRYPTO_AES_ICM_256 = 1u << 3,
	SRTPCRYPTO_AES_GCM_128 = 1u << 4,
	SRTPCRYPTO_AES_GCM_256 = 1u << 5,
};
#define SRTPCRYPTO_ALL                                                                             \
	(SRTPCRYPTO_HMAC_SHA1 | SRTPCRYPTO_AES_ICM_128 | SRTPCRYPTO_AES_ICM_192 |                  \
	 SRTPCRYPTO_AES_ICM_256 | SRTPCRYPTO_AES_GCM_128 | SRTPCRYPTO_AES_GCM_256)

/* srtplib_init() must have run. The first call offers each of ours to
 * libsrtp2, once per process (thread-safe; later calls only return the
 * answer), and logs a warning for any it refused. Returns the mask of the
 * parts it took. libsrtp2 forgets them in srtp_shutdown(): a process that
 * shuts libsrtp2 down and starts it again runs on libsrtp2's own. */
unsigned srtpcrypto_install(void);

#endif
