/* randpool.h: random numbers that go out in the clear.
 *
 * SIP tags, Call-IDs and branches (RFC 3261 section 19.3), SSRCs and the
 * first sequence number and timestamp (RFC 3550 section 5.1, RFC 3711
 * section 9.2), SDP session ids: each must be unpredictable, none is a key.
 * They come from OpenSSL's DRBG like everything random here, but a whole
 * buffer at a time: each RAND_bytes takes the DRBG's lock and checks for a
 * fork, about 1.4 us, and a call needs a dozen such numbers (3.7 % of the
 * daemon's CPU a call with bench/cps). Key material never comes from here:
 * secret_random (secret.h) draws it directly, so that no key sits in a
 * buffer. */
#ifndef SRTPBRIDGE_RANDPOOL_H
#define SRTPBRIDGE_RANDPOOL_H

#include <stddef.h>

/* n random bytes from the calling thread's buffer, refilled from the DRBG
 * when it runs out (requests over the buffer's size go to the DRBG alone).
 * A failing DRBG is not fatal here: what it left is used, as RAND_bytes'
 * callers did before. A forked child starts with an empty buffer. */
void randpool_draw(void *out, size_t n);

/* 16 lower-case hex digits (64 random bits) and a NUL: a tag, a branch's
 * suffix (RFC 3261 section 19.3 asks for at least 32 bits). */
void randpool_hex16(char out[17]);

#endif
