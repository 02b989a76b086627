/* Socket addresses as text: IPv4, IPv6 in brackets, others, and cutting. */
#include <arpa/inet.h>
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_format),
	};

	return cmocka_run_group_tests_name("addr", tests, NULL, NULL);
}
