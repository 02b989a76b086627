/* Socket addresses: as text (IPv4, IPv6 in brackets, others, and cutting),
 * from IP literals, compared with and without the port. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/un.h>

#include <cmocka.h>

#include "srtpbridge/addr.h"

static void test_addr_format(void **state)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(5060) };
	struct sockaddr_in6 b = { .sin6_family = AF_INET6, .sin6_port = htons(5061) };
	struct sockaddr_un u = { .sun_family = AF_UNIX };
	char buf[64], small[8];

	inet_pton(AF_INET, "192.0.2.1", &a.sin_addr);
	addr_format((struct sockaddr *)&a, buf, sizeof(buf));
	assert_string_equal(buf, "192.0.2.1:5060");
	inet_pton(AF_INET6, "2001:db8::1", &b.sin6_addr);
	addr_format((struct sockaddr *)&b, buf, sizeof(buf));
	assert_string_equal(buf, "[2001:db8::1]:5061");
	addr_format((struct sockaddr *)&u, buf, sizeof(buf));
	assert_string_equal(buf, "?");
	addr_format((struct sockaddr *)&a, small, sizeof(small));
	assert_string_equal(small, "192.0.2");
}

static void test_addr_from_ip_and_equal(void **state)
{
	struct sockaddr_storage a, b, c;
	socklen_t la = 0, lb = 0, lc = 0;
	char buf[64];

	(void)state;
	assert_int_equal(addr_from_ip("192.0.2.1", 5060, &a, &la), 0);
	assert_int_equal(la, sizeof(struct sockaddr_in));
	addr_format((struct sockaddr *)&a, buf, sizeof(buf));
	assert_string_equal(buf, "192.0.2.1:5060");
	assert_int_equal(addr_from_ip("2001:db8::1", 40000, &b, &lb), 0);
	assert_int_equal(lb, sizeof(struct sockaddr_in6));
	addr_format((struct sockaddr *)&b, buf, sizeof(buf));
	assert_string_equal(buf, "[2001:db8::1]:40000");
	assert_int_equal(addr_from_ip("[2001:db8::1]", 1, &c, &lc), EINVAL);
	assert_int_equal(addr_from_ip("carrier.example", 1, &c, &lc), EINVAL);
	assert_int_equal(addr_from_ip(NULL, 1, &c, &lc), EINVAL);

	assert_false(addr_equal((struct sockaddr *)&a, (struct sockaddr *)&b, false));
	assert_int_equal(addr_from_ip("192.0.2.1", 5062, &c, &lc), 0);
	assert_true(addr_equal((struct sockaddr *)&a, (struct sockaddr *)&c, false));
	assert_false(addr_equal((struct sockaddr *)&a, (struct sockaddr *)&c, true));
	assert_int_equal(addr_from_ip("192.0.2.1", 5060, &c, &lc), 0);
	assert_true(addr_equal((struct sockaddr *)&a, (struct sockaddr *)&c, true));
	assert_int_equal(addr_from_ip("2001:db8::2", 40000, &c, &lc), 0);
	assert_false(addr_equal((struct sockaddr *)&b, (struct sockaddr *)&c, false));
	memset(&c, 0, sizeof(c)); /* AF_UNSPEC equals nothing, itself neither */
	assert_false(addr_equal((struct sockaddr *)&c, (struct sockaddr *)&c, false));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_format),
		cmocka_unit_test(test_addr_from_ip_and_equal),
	};

	return cmocka_run_group_tests_name("addr", tests, NULL, NULL);
}
