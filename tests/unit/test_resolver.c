/* The background resolver on a real event loop: a name from /etc/hosts
 * (localhost) resolves for the family asked, an IP literal too, a second
 * watch is the same entry, and the refusals (bad family, unwatched name).
 * Nothing here needs a DNS server. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>

#include "srtpbridge/resolver.h"

/* Runs the loop until host has an answer or 5 s have passed. */
static int wait_answer(struct event_base *base, struct resolver *r, const char *host, int family,
		       struct sockaddr_storage *ss, socklen_t *len)
{
	int err = EAGAIN;

	for (int i = 0; i < 500 && err == EAGAIN; i++) {
		err = resolver_lookup(r, host, family, ss, len, NULL, 0);
		if (err == EAGAIN)
			event_base_loopexit(base, &(struct timeval){ .tv_usec = 10000 }),
				event_base_dispatch(base);
	}
	return err;
}

static void localhost_and_literal(void **state)
{
	struct event_base *base = event_base_new();
	struct resolver *r = NULL;
	struct sockaddr_storage ss;
	socklen_t len = 0;
	char why[64];

	(void)state;
	assert_non_null(base);
	assert_int_equal(resolver_create(&r, base), 0);
	assert_int_equal(resolver_lookup(r, "localhost", AF_INET, &ss, &len, why, sizeof(why)),
			 ENOENT);
	assert_int_equal(resolver_watch(r, "localhost", AF_INET), 0);
	assert_int_equal(resolver_watch(r, "LOCALHOST", AF_INET), 0); /* the same entry */
	assert_int_equal(wait_answer(base, r, "localhost", AF_INET, &ss, &len), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(len, sizeof(struct sockaddr_in));
	assert_int_equal(ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24, 127);
	assert_int_equal(((struct sockaddr_in *)&ss)->sin_port, 0);

	assert_int_equal(resolver_watch(r, "192.0.2.7", AF_INET), 0);
	assert_int_equal(wait_answer(base, r, "192.0.2.7", AF_INET, &ss, &len), 0);
	assert_int_equal(((struct sockaddr_in *)&ss)->sin_addr.s_addr, htonl(0xc0000207));

	assert_int_equal(resolver_watch(r, "localhost", AF_UNIX), EINVAL);
	assert_int_equal(resolver_watch(r, "", AF_INET), EINVAL);
	assert_int_equal(resolver_watch(r, NULL, AF_INET), EINVAL);
	resolver_destroy(r);
	resolver_destroy(NULL);
	event_base_free(base);
}

/* A query still in flight when the resolver goes: cancelled, no leak, no
 * callback into freed memory (ASan watches). */
static void destroy_while_pending(void **state)
{
	struct event_base *base = event_base_new();
	struct resolver *r = NULL;

	(void)state;
	assert_int_equal(resolver_create(&r, base), 0);
	assert_int_equal(resolver_watch(r, "pending.invalid", AF_INET), 0);
	resolver_destroy(r);
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(localhost_and_literal),
		cmocka_unit_test(destroy_while_pending),
	};

	return cmocka_run_group_tests_name("resolver", tests, NULL, NULL);
}
