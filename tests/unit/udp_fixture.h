/* Time, ports and UDP sockets on 127.0.0.1 for the unit tests that run
 * media over real sockets (test_relay.c, test_rekey.c, test_media_session.c).
 *
 * A header of static functions, not a library: every tests/unit/test_*.c is
 * its own executable built from that one file (tests/unit/CMakeLists.txt
 * globs them), so there is no other translation unit to put these in. They
 * are inline so that a test that uses only some of them still compiles
 * without unused-function warnings. */
#ifndef SRTPBRIDGE_TEST_UDP_FIXTURE_H
#define SRTPBRIDGE_TEST_UDP_FIXTURE_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "srtpbridge/bytes.h"

/* ---- time ---- */

static inline uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static inline void nap_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* ---- ports ---- */

/* A block of 16 ports nobody holds: one of the nblocks blocks from base on,
 * the first tried at an offset from the pid. Each test file has its own
 * range, so that tests run in parallel do not take each other's ports. */
static inline uint16_t free_block(uint16_t base, unsigned nblocks)
{
	unsigned start = (unsigned)getpid() % nblocks;

	for (unsigned k = 0; k < nblocks; k++) {
		uint16_t first = (uint16_t)(base + ((start + k) % nblocks) * 16);
		unsigned i;

		for (i = 0; i < 16; i++) {
			struct sockaddr_in sin = { .sin_family = AF_INET,
						   .sin_port = htons((uint16_t)(first + i)) };
			int fd = socket(AF_INET, SOCK_DGRAM, 0);
			int ok = bind(fd, (struct sockaddr *)&sin, sizeof(sin));

			close(fd);
			if (ok != 0)
				break;
		}
		if (i == 16)
			return first;
	}
	fail_msg("no free block of ports");
	return 0;
}

/* ---- sockets ---- */

static inline struct sockaddr_in loopback(uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sin;
}

/* A UDP socket on 127.0.0.1 and an ephemeral port, its address in *at. */
static inline int udp_socket(struct sockaddr_in *at)
{
	struct sockaddr_in sin = loopback(0);
	socklen_t len = sizeof(*at);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int rcvbuf = 4 << 20;

	assert_true(fd >= 0);
	/* room for a burst (the kernel caps it at rmem_max) */
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)at, &len), 0);
	return fd;
}

static inline void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static inline void set_addr(struct sockaddr_storage *ss, socklen_t *len,
			    const struct sockaddr_in *sin)
{
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, sin, sizeof(*sin));
	*len = sizeof(*sin);
}

static inline void send_to(int fd, const uint8_t *b, size_t n, const struct sockaddr_in *to)
{
	assert_int_equal(sendto(fd, b, n, 0, (const struct sockaddr *)to, sizeof(*to)), (ssize_t)n);
}

/* A datagram within timeout_ms, its length; -1 when none came. */
static inline ssize_t recv_within(int fd, uint8_t *b, size_t cap, int timeout_ms,
				  struct sockaddr_in *from)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	socklen_t len = sizeof(*from);

	if (poll(&pfd, 1, timeout_ms) != 1)
		return -1;
	return recvfrom(fd, b, cap, MSG_DONTWAIT, (struct sockaddr *)from, &len);
}

/* src is want: the same address and port. */
static inline void assert_port(const struct sockaddr_in *src, const struct sockaddr_in *want)
{
	assert_int_equal(src->sin_addr.s_addr, want->sin_addr.s_addr);
	assert_int_equal(ntohs(src->sin_port), ntohs(want->sin_port));
}

#endif
