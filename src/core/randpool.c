/* Random numbers that go out in the clear, drawn from OpenSSL's DRBG a
 * buffer at a time. */
#include "srtpbridge/randpool.h"

#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#define POOL_BYTES 4096

static _Thread_local struct {
	unsigned char b[POOL_BYTES];
	size_t used; /* bytes taken; all of them until the first fill */
} pool = { .used = POOL_BYTES };

static pthread_once_t once = PTHREAD_ONCE_INIT;

/* The child of a fork would hand out what its parent does next: the thread
 * that forked (the child's only one) forgets its buffer. */
static void child_after_fork(void)
{
	OPENSSL_cleanse(pool.b, sizeof(pool.b));
	pool.used = POOL_BYTES;
}

static void register_fork_handler(void)
{
	(void)pthread_atfork(NULL, NULL, child_after_fork);
}

void randpool_draw(void *out, size_t n)
{
	pthread_once(&once, register_fork_handler);
	if (n > sizeof(pool.b)) {
		(void)RAND_bytes(out, (int)n);
		return;
	}
	if (pool.used + n > sizeof(pool.b)) {
		(void)RAND_bytes(pool.b, (int)sizeof(pool.b));
		pool.used = 0;
	}
	memcpy(out, pool.b + pool.used, n);
	/* what was handed out is not kept */
	OPENSSL_cleanse(pool.b + pool.used, n);
	pool.used += n;
}

void randpool_hex16(char out[17])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char r[8];

	randpool_draw(r, sizeof(r));
	for (int i = 0; i < 8; i++) {
		out[2 * i] = hex[r[i] >> 4];
		out[2 * i + 1] = hex[r[i] & 15];
	}
	out[16] = '\0';
}
