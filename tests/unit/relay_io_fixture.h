/* relay_io_fixture.h: which I/O the relay tests give their workers.
 *
 * ctest runs test_relay and test_rekey twice (tests/unit/CMakeLists.txt):
 * TEST_RELAY_IO=io_uring and TEST_RELAY_IO=epoll, so both of the workers'
 * ways of reading and sending run every test. Unset: auto. A kernel that
 * allows no io_uring skips the io_uring run (exit 77) rather than failing
 * it. */
#ifndef TESTS_RELAY_IO_FIXTURE_H
#define TESTS_RELAY_IO_FIXTURE_H

#include "srtpbridge/relay.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RELAY_IO_SKIPPED 77

static enum relay_io test_relay_io(void)
{
	const char *e = getenv("TEST_RELAY_IO");

	if (!e || !*e || !strcmp(e, "auto"))
		return RELAY_IO_AUTO;
	return !strcmp(e, "epoll") ? RELAY_IO_EPOLL : RELAY_IO_URING;
}

/* 0 when the run can go on; RELAY_IO_SKIPPED, said, when it asks for
 * io_uring where there is none. */
static int test_relay_io_check(void)
{
	int err = relay_io_check(test_relay_io());

	if (err)
		printf("io_uring is not available here (%s): skipped\n", strerror(err));
	return err ? RELAY_IO_SKIPPED : 0;
}

/* The workers of r use what the run asked for, all of them. */
static void assert_relay_io(const struct relay *r)
{
	struct relay_stats st;

	relay_get_stats(r, &st);
	if (test_relay_io() == RELAY_IO_EPOLL) {
		assert_int_equal(relay_io_used(r), RELAY_IO_EPOLL);
		assert_int_equal(st.uring_workers, 0);
	} else if (test_relay_io() == RELAY_IO_URING) {
		assert_int_equal(relay_io_used(r), RELAY_IO_URING);
		assert_int_equal(st.uring_workers, st.workers);
	}
}

#endif
