/* A call's media session over a real port pool on loopback: pairs on both
 * legs per stream, ports reported per leg, everything given back on destroy
 * and on a failed create (the pool running dry half-way), bad arguments. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "srtpbridge/media_session.h"

#include "udp_fixture.h"

/* free_block's range: 300 blocks of 16 ports, 46000..50800 (test_relay.c
 * and test_rekey.c have their own, below 29000). */
#define PORT_BASE   46000
#define PORT_BLOCKS 300

static void two_legs_and_back(void **state)
{
	uint16_t base = free_block(PORT_BASE, PORT_BLOCKS);
	struct portpool *pool = NULL;
	struct media_session *s = NULL;
	uint16_t ports[MEDIA_SESSION_MAX_STREAMS];

	(void)state;
	assert_int_equal(portpool_create(&pool, base, (uint16_t)(base + 15), 0, NULL, NULL), 0);
	assert_int_equal(portpool_total(pool), 16);
	assert_int_equal(media_session_create(&s, pool, NULL, "127.0.0.1", "127.0.0.1", 2), 0);
	assert_int_equal(media_session_nstreams(s), 2);
	assert_int_equal(portpool_in_use_count(pool), 8); /* 2 streams x 2 legs x RTP+RTCP */
	for (size_t i = 0; i < 2; i++) {
		uint16_t a = media_session_port(s, MEDIA_LEG_A, i);
		uint16_t b = media_session_port(s, MEDIA_LEG_B, i);

		assert_true(a >= base && a <= base + 14 && a % 2 == 0);
		assert_true(b >= base && b <= base + 14 && b % 2 == 0);
		assert_int_not_equal(a, b);
	}
	assert_int_equal(media_session_port(s, MEDIA_LEG_A, 2), 0);
	media_session_ports(s, MEDIA_LEG_B, ports, MEDIA_SESSION_MAX_STREAMS);
	assert_int_equal(ports[1], media_session_port(s, MEDIA_LEG_B, 1));
	assert_int_equal(ports[2], 0);
	media_session_destroy(s);
	assert_int_equal(portpool_in_use_count(pool), 0);
	assert_int_equal(portpool_free_count(pool), 16); /* quarantine 0 */
	media_session_destroy(NULL);
	portpool_destroy(pool);
}

static void dry_pool_gives_back(void **state)
{
	uint16_t base = free_block(PORT_BASE, PORT_BLOCKS);
	struct portpool *pool = NULL;
	struct media_session *s = NULL, *t = NULL;

	(void)state;
	assert_int_equal(portpool_create(&pool, base, (uint16_t)(base + 11), 0, NULL, NULL), 0);
	assert_int_equal(media_session_create(&s, pool, NULL, "127.0.0.1", "127.0.0.1", 2), 0);
	/* 4 ports left: the second stream's leg A pair fits, its leg B does not */
	assert_int_equal(media_session_create(&t, pool, NULL, "127.0.0.1", "127.0.0.1", 2), ENOSPC);
	assert_null(t);
	assert_int_equal(portpool_in_use_count(pool), 8);
	assert_int_equal(media_session_create(&t, pool, NULL, "127.0.0.1", "127.0.0.1", 1), 0);
	assert_int_equal(portpool_free_count(pool), 0);
	media_session_destroy(t);
	media_session_destroy(s);
	assert_int_equal(portpool_in_use_count(pool), 0);
	portpool_destroy(pool);
}

static void bad_arguments(void **state)
{
	uint16_t base = free_block(PORT_BASE, PORT_BLOCKS);
	struct portpool *pool = NULL;
	struct media_session *s = NULL;

	(void)state;
	assert_int_equal(portpool_create(&pool, base, (uint16_t)(base + 15), 0, NULL, NULL), 0);
	assert_int_equal(media_session_create(&s, pool, NULL, "127.0.0.1", "127.0.0.1", 0), EINVAL);
	assert_int_equal(media_session_create(&s, pool, NULL, "127.0.0.1", "127.0.0.1",
					      MEDIA_SESSION_MAX_STREAMS + 1),
			 EINVAL);
	assert_int_equal(media_session_create(&s, pool, NULL, "carrier.example", "127.0.0.1", 1),
			 EINVAL);
	assert_int_equal(media_session_create(&s, pool, NULL, "127.0.0.1", NULL, 1), EINVAL);
	assert_int_equal(media_session_create(&s, NULL, NULL, "127.0.0.1", "127.0.0.1", 1), EINVAL);
	assert_null(s);
	assert_int_equal(portpool_in_use_count(pool), 0);
	/* IPv6 on one leg, IPv4 on the other */
	assert_int_equal(media_session_create(&s, pool, NULL, "::1", "127.0.0.1", 1), 0);
	media_session_destroy(s);
	portpool_destroy(pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(two_legs_and_back),
		cmocka_unit_test(dry_pool_gives_back),
		cmocka_unit_test(bad_arguments),
	};

	return cmocka_run_group_tests_name("media_session", tests, NULL, NULL);
}
