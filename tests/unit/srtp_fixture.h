/* The cmocka group set-up shared by the unit tests of SRTP sessions
 * (test_srtpctx.c, test_srtpcrypto.c, test_relay.c, test_rekey.c): libsrtp2
 * up for the group, and a suite this libsrtp2 build cannot run skipped
 * with the reason.
 *
 * Static inline functions in a header for the reason udp_fixture.h gives:
 * each test is its own executable from one file. */
#ifndef SRTPBRIDGE_TEST_SRTP_FIXTURE_H
#define SRTPBRIDGE_TEST_SRTP_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include <cmocka.h>

#include "srtpbridge/srtplib.h"
#include "srtpbridge/suite.h"

static inline int setup_group(void **state)
{
	(void)state;
	return srtplib_init() == 0 ? 0 : -1;
}

static inline int teardown_group(void **state)
{
	(void)state;
	srtplib_shutdown();
	return 0;
}

static inline bool usable(enum suite_id s)
{
	const char *why = "";

	if (suite_usable(s, &why))
		return true;
	print_message("skipping %s: %s\n", suite_name(s), why);
	return false;
}

#endif
