/* randpool: identifiers from a buffer of DRBG output. What must hold is
 * what a buffer can break: no byte handed out twice (across refills, across
 * threads, across a fork), and the hex form that goes into SIP headers. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "srtpbridge/randpool.h"

/* More than three buffers' worth, in draws that do not divide 4096: the
 * refill boundary falls inside a draw's size. */
#define DRAWS	 600
#define DRAW_LEN 24

static int cmp16(const void *a, const void *b)
{
	return memcmp(a, b, 16);
}

/* No 16-byte draw repeats: a buffer handed out again, or a refill that did
 * not happen, would. */
static void test_draws_never_repeat(void **state)
{
	static uint8_t d[DRAWS][16];
	uint8_t odd[DRAW_LEN];

	(void)state;
	for (int i = 0; i < DRAWS; i++) {
		randpool_draw(d[i], sizeof(d[i]));
		randpool_draw(odd, sizeof(odd)); /* moves the boundary */
	}
	qsort(d, DRAWS, sizeof(d[0]), cmp16);
	for (int i = 1; i < DRAWS; i++)
		assert_true(memcmp(d[i - 1], d[i], 16) != 0);
}

/* Larger than the buffer: straight from the DRBG, and not zeros. */
static void test_large_draw(void **state)
{
	static uint8_t a[10000], b[10000], zero[10000];

	(void)state;
	randpool_draw(a, sizeof(a));
	randpool_draw(b, sizeof(b));
	assert_memory_not_equal(a, zero, sizeof(a));
	assert_memory_not_equal(a, b, sizeof(a));
}

static void test_hex16(void **state)
{
	static char ids[1000][17];

	(void)state;
	for (int i = 0; i < 1000; i++) {
		memset(ids[i], 'X', sizeof(ids[i]));
		randpool_hex16(ids[i]);
		assert_int_equal(strlen(ids[i]), 16);
		assert_int_equal(strspn(ids[i], "0123456789abcdef"), 16);
	}
	qsort(ids, 1000, sizeof(ids[0]), cmp16);
	for (int i = 1; i < 1000; i++)
		assert_string_not_equal(ids[i - 1], ids[i]);
}

/* A child of fork must not hand out the bytes its parent hands out next. */
static void test_fork_child_draws_its_own(void **state)
{
	uint8_t mine[16], childs[16];
	int p[2];
	pid_t pid;
	int status;

	(void)state;
	randpool_draw(mine, sizeof(mine)); /* the buffer is full of what comes next */
	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		uint8_t c[16];

		randpool_draw(c, sizeof(c));
		_exit(write(p[1], c, sizeof(c)) == (ssize_t)sizeof(c) ? 0 : 1);
	}
	close(p[1]);
	assert_int_equal(read(p[0], childs, sizeof(childs)), (ssize_t)sizeof(childs));
	close(p[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	randpool_draw(mine, sizeof(mine));
	assert_memory_not_equal(mine, childs, sizeof(mine));
}

static void *draw_in_thread(void *arg)
{
	randpool_draw(arg, 64);
	return NULL;
}

/* Each thread has its own buffer; two never share bytes. */
static void test_threads_draw_their_own(void **state)
{
	uint8_t a[64], b[64];
	pthread_t ta, tb;

	(void)state;
	assert_int_equal(pthread_create(&ta, NULL, draw_in_thread, a), 0);
	assert_int_equal(pthread_create(&tb, NULL, draw_in_thread, b), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	assert_memory_not_equal(a, b, sizeof(a));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_draws_never_repeat),
		cmocka_unit_test(test_large_draw),
		cmocka_unit_test(test_hex16),
		cmocka_unit_test(test_fork_child_draws_its_own),
		cmocka_unit_test(test_threads_draw_their_own),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
