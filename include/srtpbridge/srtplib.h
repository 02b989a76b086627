/* srtplib.h: the process-wide state of libsrtp2: init, shutdown, and which build is linked.
 *
 * libsrtp2 keeps one global crypto kernel, so this module is the one place that
 * starts and stops it. Its functions are not thread-safe: call them from the
 * main thread, srtplib_init() before any worker creates an srtp_t. */
#ifndef SRTPBRIDGE_SRTPLIB_H
#define SRTPBRIDGE_SRTPLIB_H

/* srtp_init() once per process (0 at once when already done); 0 or EIO.
 * It also notes the crypto backend, through libsrtp's log handler, which it
 * leaves uninstalled: install your own libsrtp log handler after this call. */
int srtplib_init(void);
/* srtp_shutdown(); harmless when not initialised. */
void srtplib_shutdown(void);
/* Returns borrowed: e.g. "libsrtp2 2.5.0". */
const char *srtplib_version(void);
/* Returns borrowed: "openssl", "nss", "mbedtls" or "builtin", the library that
 * does libsrtp's AES; "unknown" before the first successful srtplib_init(). */
const char *srtplib_backend(void);

#endif
