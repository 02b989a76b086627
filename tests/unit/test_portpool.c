/* The media port pool with real UDP sockets on loopback and a fake clock:
 * pairing (even RTP, RTCP + 1, an odd min), exhaustion, quarantine and its
 * least-recently-used reuse, ports held by another socket (skipped, busy for
 * PORTPOOL_BUSY_MS, bounded when all are held), IPv4 and IPv6, bad addresses,
 * sockets kept bound across calls (opened lazily, emptied of an old call's
 * packets before reuse, bound again for another address, socket options),
 * descriptors taken back from idle pairs when the process has none left,
 * and no fd left open once the pool is gone. Each test runs on a block of ports probed free, at an
 * offset from the pid so that parallel runs rarely meet. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "srtpbridge/portpool.h"

#define BLOCK 20 /* ports per test: base .. base + 19, base even */

struct fixture {
	uint16_t base;
	int fds;
	uint64_t now; /* the fake clock, in ms */
	struct portpool *p;
};

static uint64_t fake_now(void *arg)
{
	return *(const uint64_t *)arg;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static struct sockaddr_in lo4(uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sin;
}

static struct sockaddr_in6 lo6(uint16_t port)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(port) };

	sin6.sin6_addr = in6addr_loopback;
	return sin6;
}

/* A socket of "another program" on 127.0.0.1:port, or -1 when it is taken. */
static int occupy(uint16_t port)
{
	struct sockaddr_in sin = lo4(port);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Whether nobody holds port on any IPv4 address (wildcard bind). */
static bool port_idle(uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	bool ok;

	assert_true(fd >= 0);
	ok = bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
	close(fd);
	return ok;
}

static int setup(void **state)
{
	static struct fixture f;
	unsigned start = (unsigned)getpid() % 400;

	memset(&f, 0, sizeof(f));
	f.fds = count_fds();
	f.now = 1000;
	for (unsigned k = 0; k < 400 && !f.base; k++) {
		uint16_t base = (uint16_t)(42000 + ((start + k) % 400) * 40);
		unsigned i;

		for (i = 0; i < BLOCK && port_idle((uint16_t)(base + i)); i++)
			;
		if (i == BLOCK)
			f.base = base;
	}
	assert_int_not_equal(f.base, 0);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	portpool_destroy(f->p);
	f->p = NULL;
	/* Every test frees its pairs and closes its own sockets. */
	assert_int_equal(count_fds(), f->fds);
	return 0;
}

static void make_pool(struct fixture *f, uint16_t min, uint16_t max, unsigned quarantine_s)
{
	assert_int_equal(portpool_create(&f->p, min, max, quarantine_s, fake_now, &f->now), 0);
}

static void assert_counts(const struct portpool *p, unsigned free_n, unsigned quarantined,
			  unsigned busy, unsigned in_use)
{
	assert_int_equal(portpool_free_count(p), free_n);
	assert_int_equal(portpool_quarantined_count(p), quarantined);
	assert_int_equal(portpool_busy_count(p), busy);
	assert_int_equal(portpool_in_use_count(p), in_use);
	assert_int_equal(free_n + quarantined + busy + in_use, portpool_total(p));
}

static int alloc4(struct portpool *p, struct portpool_pair *out)
{
	struct sockaddr_in sin = lo4(0);

	return portpool_alloc_pair(p, (struct sockaddr *)&sin, sizeof(sin), out);
}

static uint16_t bound_port(int fd, int family)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	assert_int_equal(ss.ss_family, family);
	if (family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;

		assert_int_equal(sin->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
		return ntohs(sin->sin_port);
	}
	assert_memory_equal(&((const struct sockaddr_in6 *)&ss)->sin6_addr, &in6addr_loopback,
			    sizeof(struct in6_addr));
	return ntohs(((const struct sockaddr_in6 *)&ss)->sin6_port);
}

static void assert_socket(int fd, uint16_t port, int family)
{
	int type = 0;
	socklen_t len = sizeof(type);

	assert_true(fd >= 0);
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len), 0);
	assert_int_equal(type, SOCK_DGRAM);
	assert_int_equal(bound_port(fd, family), port);
}

static void assert_pair(const struct portpool_pair *pp, unsigned min, unsigned max, int family)
{
	assert_int_equal(pp->rtp_port % 2, 0);
	assert_int_equal(pp->rtcp_port, pp->rtp_port + 1);
	assert_in_range(pp->rtp_port, min, max);
	assert_in_range(pp->rtcp_port, min, max);
	assert_int_not_equal(pp->rtp_fd, pp->rtcp_fd);
	assert_socket(pp->rtp_fd, pp->rtp_port, family);
	assert_socket(pp->rtcp_fd, pp->rtcp_port, family);
}

static void test_create_rejects(void **state)
{
	struct fixture *f = *state;
	struct portpool *p = NULL;

	assert_int_equal(portpool_create(&p, 0, 100, 2, NULL, NULL), EINVAL);
	assert_int_equal(portpool_create(&p, 5000, 4999, 2, NULL, NULL), EINVAL);
	/* One port, or an odd min whose only even port is max: no whole pair. */
	assert_int_equal(portpool_create(&p, 5000, 5000, 2, NULL, NULL), EINVAL);
	assert_int_equal(portpool_create(&p, 5001, 5002, 2, NULL, NULL), EINVAL);
	assert_int_equal(portpool_create(&p, 65535, 65535, 2, NULL, NULL), EINVAL);
	assert_null(p);
	/* The top of the port space, where base + 1 must not wrap. */
	assert_int_equal(portpool_create(&p, 65534, 65535, 2, NULL, NULL), 0);
	assert_int_equal(portpool_total(p), 2);
	portpool_destroy(p);
	/* An even max cannot be an RTP port: its RTCP would be out of range. */
	make_pool(f, f->base, (uint16_t)(f->base + 10), 2);
	assert_int_equal(portpool_total(f->p), 10);
	portpool_destroy(NULL);
}

static void test_pairs_until_exhausted(void **state)
{
	struct fixture *f = *state;
	unsigned min = f->base, max = f->base + BLOCK - 1;
	struct portpool_pair pairs[BLOCK / 2], extra = { .rtp_fd = -7 };
	bool seen[BLOCK] = { false };

	make_pool(f, (uint16_t)min, (uint16_t)max, 2);
	assert_int_equal(portpool_total(f->p), BLOCK);
	assert_counts(f->p, BLOCK, 0, 0, 0);
	for (unsigned i = 0; i < BLOCK / 2; i++) {
		assert_int_equal(alloc4(f->p, &pairs[i]), 0);
		assert_pair(&pairs[i], min, max, AF_INET);
		assert_false(seen[pairs[i].rtp_port - min]);
		seen[pairs[i].rtp_port - min] = true;
		assert_counts(f->p, BLOCK - 2 * (i + 1), 0, 0, 2 * (i + 1));
	}
	assert_int_equal(alloc4(f->p, &extra), ENOSPC);
	assert_int_equal(extra.rtp_fd, -7); /* untouched on failure */
	assert_int_equal(portpool_free_count(f->p), 0);
	assert_false(portpool_admit(f->p, 2));
	assert_true(portpool_admit(f->p, 0));
	for (unsigned i = 0; i < BLOCK / 2; i++) {
		portpool_free_pair(f->p, &pairs[i]);
		assert_int_equal(pairs[i].rtp_fd, -1);
		assert_int_equal(pairs[i].rtcp_fd, -1);
		assert_counts(f->p, 0, 2 * (i + 1), 0, BLOCK - 2 * (i + 1));
	}
}

static void test_odd_min(void **state)
{
	struct fixture *f = *state;
	unsigned min = f->base + 1, max = f->base + 8;
	struct portpool_pair pairs[3], extra;

	/* RTP on base+2, +4, +6; base+1 and base+8 belong to no pair. */
	make_pool(f, (uint16_t)min, (uint16_t)max, 2);
	assert_int_equal(portpool_total(f->p), 6);
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(alloc4(f->p, &pairs[i]), 0);
		assert_pair(&pairs[i], min, max, AF_INET);
		assert_int_equal(pairs[i].rtp_port, f->base + 2 + 2 * i);
	}
	assert_int_equal(alloc4(f->p, &extra), ENOSPC);
	assert_counts(f->p, 0, 0, 0, 6);
	for (unsigned i = 0; i < 3; i++)
		portpool_free_pair(f->p, &pairs[i]);
	assert_counts(f->p, 0, 6, 0, 0);
}

static void test_quarantine(void **state)
{
	struct fixture *f = *state;
	struct portpool_pair a, b, c;
	uint16_t a_port;
	int probe;

	make_pool(f, f->base, (uint16_t)(f->base + 3), 2);
	assert_int_equal(alloc4(f->p, &a), 0);
	assert_int_equal(alloc4(f->p, &b), 0);
	a_port = a.rtp_port;
	assert_counts(f->p, 0, 0, 0, 4);

	portpool_free_pair(f->p, &a);
	assert_int_equal(a.rtp_fd, -1);
	assert_int_equal(a.rtcp_fd, -1);
	assert_counts(f->p, 0, 2, 0, 2);
	assert_false(portpool_admit(f->p, 2));
	/* Still bound by the pool in quarantine: nobody else takes the ports
	 * in between, and no fd was closed. */
	assert_int_equal(portpool_open_count(f->p), 4);
	probe = occupy(a_port);
	assert_int_equal(probe, -1);
	probe = occupy((uint16_t)(a_port + 1));
	assert_int_equal(probe, -1);

	f->now += 1999;
	assert_int_equal(alloc4(f->p, &c), ENOSPC);
	assert_counts(f->p, 0, 2, 0, 2);
	f->now += 1;
	assert_counts(f->p, 2, 0, 0, 2);
	assert_true(portpool_admit(f->p, 2));
	assert_false(portpool_admit(f->p, 3)); /* 3 ports are 2 pairs */
	assert_int_equal(alloc4(f->p, &c), 0);
	assert_int_equal(c.rtp_port, a_port);
	assert_pair(&c, f->base, f->base + 3u, AF_INET);
	assert_counts(f->p, 0, 0, 0, 4);

	/* A second free of the same struct, or a pair of no pool, does nothing. */
	portpool_free_pair(f->p, &b);
	portpool_free_pair(f->p, &b);
	assert_counts(f->p, 0, 2, 0, 2);
	portpool_free_pair(f->p, &(struct portpool_pair){ 0 });
	portpool_free_pair(f->p, &(struct portpool_pair){ .rtp_fd = -1,
							  .rtcp_fd = -1,
							  .rtp_port = (uint16_t)(f->base + 20),
							  .rtcp_port = (uint16_t)(f->base + 21) });
	assert_counts(f->p, 0, 2, 0, 2);
	assert_int_not_equal(fcntl(c.rtp_fd, F_GETFD), -1);
	portpool_free_pair(f->p, &c);
	assert_counts(f->p, 0, 4, 0, 0);
}

/* Freed pairs come back least recently used first, not lowest port first. */
static void test_reuse_order(void **state)
{
	struct fixture *f = *state;
	struct portpool_pair p[3], q;

	make_pool(f, f->base, (uint16_t)(f->base + 5), 1);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(alloc4(f->p, &p[i]), 0);
	portpool_free_pair(f->p, &p[1]);
	f->now += 10;
	portpool_free_pair(f->p, &p[0]);
	f->now += 990;
	/* Only p[1]'s quarantine is over. */
	assert_counts(f->p, 2, 2, 0, 2);
	f->now += 10;
	assert_int_equal(alloc4(f->p, &q), 0);
	assert_int_equal(q.rtp_port, f->base + 2);
	portpool_free_pair(f->p, &q);
	assert_int_equal(alloc4(f->p, &q), 0);
	assert_int_equal(q.rtp_port, f->base);
	portpool_free_pair(f->p, &q);
	portpool_free_pair(f->p, &p[2]);
}

static void test_busy_port_skipped(void **state)
{
	struct fixture *f = *state;
	struct portpool_pair pairs[BLOCK / 2];
	int rtp_taken, rtcp_taken;

	make_pool(f, f->base, (uint16_t)(f->base + BLOCK - 1), 2);
	/* Pair 0 loses its RTP port, pair 1 its RTCP port. */
	rtp_taken = occupy(f->base);
	rtcp_taken = occupy((uint16_t)(f->base + 3));
	assert_true(rtp_taken >= 0);
	assert_true(rtcp_taken >= 0);

	assert_int_equal(alloc4(f->p, &pairs[0]), 0);
	assert_int_equal(pairs[0].rtp_port, f->base + 4);
	assert_pair(&pairs[0], f->base, f->base + BLOCK - 1u, AF_INET);
	assert_counts(f->p, BLOCK - 6, 0, 4, 2);
	/* Still theirs: the pool took nothing from them. */
	assert_int_equal(bound_port(rtp_taken, AF_INET), f->base);
	assert_int_equal(bound_port(rtcp_taken, AF_INET), f->base + 3);
	close(rtp_taken);
	close(rtcp_taken);

	/* Not tried again before PORTPOOL_BUSY_MS, even once released. */
	f->now += PORTPOOL_BUSY_MS - 1;
	assert_counts(f->p, BLOCK - 6, 0, 4, 2);
	f->now += 1;
	assert_counts(f->p, BLOCK - 2, 0, 0, 2);
	for (unsigned i = 1; i < BLOCK / 2; i++)
		assert_int_equal(alloc4(f->p, &pairs[i]), 0);
	/* The busy pairs came back last, after the ones never tried. */
	assert_int_equal(pairs[BLOCK / 2 - 2].rtp_port, f->base);
	assert_int_equal(pairs[BLOCK / 2 - 1].rtp_port, f->base + 2);
	assert_counts(f->p, 0, 0, 0, BLOCK);
	for (unsigned i = 0; i < BLOCK / 2; i++)
		portpool_free_pair(f->p, &pairs[i]);
}

static uint64_t elapsed_ms(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (uint64_t)(t1.tv_sec - t0->tv_sec) * 1000 +
	       (uint64_t)((t1.tv_nsec - t0->tv_nsec) / 1000000);
}

static void test_all_taken_bounded(void **state)
{
	struct fixture *f = *state;
	int taken[BLOCK];
	struct portpool_pair pp = { .rtp_fd = -7 };
	struct timespec t0;

	make_pool(f, f->base, (uint16_t)(f->base + BLOCK - 1), 2);
	for (unsigned i = 0; i < BLOCK; i++) {
		taken[i] = occupy((uint16_t)(f->base + i));
		assert_true(taken[i] >= 0);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(alloc4(f->p, &pp), ENOSPC);
	assert_true(elapsed_ms(&t0) < 1000);
	assert_int_equal(pp.rtp_fd, -7);
	assert_counts(f->p, 0, 0, BLOCK, 0);
	for (unsigned i = 0; i < BLOCK; i++)
		close(taken[i]);
	/* The next call binds nothing: every pair is busy, so ENOSPC at once
	 * although the ports are free again. */
	assert_int_equal(alloc4(f->p, &pp), ENOSPC);
	f->now += PORTPOOL_BUSY_MS;
	assert_int_equal(alloc4(f->p, &pp), 0);
	assert_int_equal(pp.rtp_port, f->base);
	portpool_free_pair(f->p, &pp);
}

static void test_ipv6(void **state)
{
	struct fixture *f = *state;
	struct sockaddr_in6 sin6 = lo6(0);
	struct portpool_pair pp;
	int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	bool have_v6 = fd >= 0 && bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) == 0;

	if (fd >= 0)
		close(fd);
	if (!have_v6)
		skip();
	make_pool(f, f->base, (uint16_t)(f->base + BLOCK - 1), 2);
	sin6.sin6_port = htons(9); /* ignored */
	assert_int_equal(portpool_alloc_pair(f->p, (struct sockaddr *)&sin6, sizeof(sin6), &pp), 0);
	assert_pair(&pp, f->base, f->base + BLOCK - 1u, AF_INET6);
	assert_counts(f->p, BLOCK - 2, 0, 0, 2);
	portpool_free_pair(f->p, &pp);
	assert_counts(f->p, BLOCK - 2, 2, 0, 0);
}

static void test_bad_address(void **state)
{
	struct fixture *f = *state;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct sockaddr_in sin = lo4(0), foreign = lo4(0);
	struct portpool_pair pp = { .rtp_fd = -7 };

	make_pool(f, f->base, (uint16_t)(f->base + BLOCK - 1), 2);
	assert_int_equal(portpool_alloc_pair(f->p, (struct sockaddr *)&sun, sizeof(sun), &pp),
			 EAFNOSUPPORT);
	assert_int_equal(portpool_alloc_pair(f->p, (struct sockaddr *)&sin, 4, &pp), EINVAL);
	assert_int_equal(portpool_alloc_pair(f->p, NULL, 0, &pp), EINVAL);
	/* TEST-NET-1 is on no interface: the error is about the address, so the
	 * pair is neither busy nor moved back in line. */
	inet_pton(AF_INET, "192.0.2.1", &foreign.sin_addr);
	assert_int_equal(
		portpool_alloc_pair(f->p, (struct sockaddr *)&foreign, sizeof(foreign), &pp),
		EADDRNOTAVAIL);
	assert_int_equal(pp.rtp_fd, -7);
	assert_counts(f->p, BLOCK, 0, 0, 0);
	assert_int_equal(alloc4(f->p, &pp), 0);
	assert_int_equal(pp.rtp_port, f->base);
	portpool_free_pair(f->p, &pp);
}

/* The real clock (NULL) with no quarantine: a freed pair is free at once. */
static void test_monotonic_clock(void **state)
{
	struct fixture *f = *state;
	struct portpool_pair pp;

	assert_int_equal(portpool_create(&f->p, f->base, (uint16_t)(f->base + 1), 0, NULL, NULL),
			 0);
	assert_int_equal(alloc4(f->p, &pp), 0);
	assert_int_equal(portpool_free_count(f->p), 0);
	portpool_free_pair(f->p, &pp);
	assert_counts(f->p, 2, 0, 0, 0);
	assert_int_equal(alloc4(f->p, &pp), 0);
	portpool_free_pair(f->p, &pp);
}

static void send_to(uint16_t port, const char *what)
{
	struct sockaddr_in to = lo4(port);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(sendto(fd, what, strlen(what), 0, (struct sockaddr *)&to, sizeof(to)),
			 (ssize_t)strlen(what));
	close(fd);
}

/* Waits (bounded) until fd has a datagram queued: loopback delivery is
 * synchronous, but the test should not depend on it. */
static bool readable(int fd)
{
	for (int k = 0; k < 1000; k++) {
		char b;

		if (recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) >= 0)
			return true;
		usleep(1000);
	}
	return false;
}

/* An idle pool holds no fd; a pair stays open across calls, and the next
 * call on it never reads a packet that reached it before it was handed out
 * (during the old call's end, its quarantine, or while free). */
static void test_kept_open_and_drained(void **state)
{
	struct fixture *f = *state;
	struct portpool_pair a, b;
	int rtp_fd, rtcp_fd;
	char buf[64];

	make_pool(f, f->base, (uint16_t)(f->base + BLOCK - 1), 2);
	assert_int_equal(count_fds(), f->fds); /* opened lazily */
	assert_int_equal(portpool_open_count(f->p), 0);
	assert_int_equal(alloc4(f->p, &a), 0);
	assert_int_equal(count_fds(), f->fds + 2);
	assert_int_equal(portpool_open_count(f->p), 2);
	rtp_fd = a.rtp_fd;
	rtcp_fd = a.rtcp_fd;
	/* the old call's last packets, then ones sent during the quarantine */
	send_to(a.rtp_port, "old call rtp");
	send_to(a.rtcp_port, "old call rtcp");
	portpool_free_pair(f->p, &a);
	assert_int_equal(count_fds(), f->fds + 2);
	send_to((uint16_t)f->base, "in quarantine");
	assert_true(readable(rtp_fd));
	assert_true(readable(rtcp_fd));
	f->now += 2000;
	send_to((uint16_t)f->base, "free");
	/* The open pair comes before the 9 never opened: same sockets, same
	 * ports, nothing open twice. */
	assert_int_equal(alloc4(f->p, &b), 0);
	assert_int_equal(b.rtp_port, f->base);
	assert_int_equal(b.rtp_fd, rtp_fd);
	assert_int_equal(b.rtcp_fd, rtcp_fd);
	assert_pair(&b, f->base, f->base + BLOCK - 1u, AF_INET);
	assert_int_equal(count_fds(), f->fds + 2);
	assert_int_equal(recv(b.rtp_fd, buf, sizeof(buf), MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(recv(b.rtcp_fd, buf, sizeof(buf), MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
	/* what comes now is the new call's */
	send_to(b.rtp_port, "new call");
	assert_true(readable(b.rtp_fd));
	assert_int_equal(recv(b.rtp_fd, buf, sizeof(buf), MSG_DONTWAIT), 8);
	assert_memory_equal(buf, "new call", 8);
	portpool_free_pair(f->p, &b);
	/* The pool closes what it holds: teardown counts the fds. */
}

/* More junk than one drain round reads is all gone too. */
static void test_drain_many(void **state)
{
	struct fixture *f = *state;
	struct portpool_pair a;
	struct sockaddr_in to;
	int fd, rtp_fd;
	char buf[8];

	make_pool(f, f->base, (uint16_t)(f->base + 1), 0);
	assert_int_equal(alloc4(f->p, &a), 0);
	rtp_fd = a.rtp_fd;
	portpool_free_pair(f->p, &a);
	to = lo4((uint16_t)f->base);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	for (int k = 0; k < 70; k++)
		assert_int_equal(sendto(fd, "x", 1, 0, (struct sockaddr *)&to, sizeof(to)), 1);
	close(fd);
	assert_true(readable(rtp_fd));
	assert_int_equal(alloc4(f->p, &a), 0);
	assert_int_equal(a.rtp_fd, rtp_fd);
	assert_int_equal(recv(a.rtp_fd, buf, sizeof(buf), MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
	portpool_free_pair(f->p, &a);
}

/* With draining off (a media worker empties sockets itself), a pair comes
 * out as it is; portpool_drain empties it. */
static void test_no_drain(void **state)
{
	struct fixture *f = *state;
	struct portpool_pair a;
	int rtp_fd;
	char buf[16];

	make_pool(f, f->base, (uint16_t)(f->base + 1), 0);
	portpool_set_drain(f->p, false);
	assert_int_equal(alloc4(f->p, &a), 0);
	rtp_fd = a.rtp_fd;
	portpool_free_pair(f->p, &a);
	send_to((uint16_t)f->base, "junk one");
	send_to((uint16_t)f->base, "junk two");
	assert_int_equal(alloc4(f->p, &a), 0);
	assert_int_equal(a.rtp_fd, rtp_fd);
	assert_int_equal(recv(a.rtp_fd, buf, sizeof(buf), MSG_DONTWAIT), 8);
	assert_memory_equal(buf, "junk one", 8);
	portpool_drain(a.rtp_fd);
	assert_int_equal(recv(a.rtp_fd, buf, sizeof(buf), MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
	portpool_drain(a.rtcp_fd); /* nothing there: returns at once */
	portpool_free_pair(f->p, &a);
}

/* Every media socket has the relay's options. */
static void test_socket_options(void **state)
{
	struct fixture *f = *state;
	struct portpool_pair a;
	int v = 0;
	socklen_t len = sizeof(v);

	make_pool(f, f->base, (uint16_t)(f->base + 1), 0);
	assert_int_equal(alloc4(f->p, &a), 0);
	assert_int_equal(getsockopt(a.rtp_fd, SOL_SOCKET, SO_TIMESTAMPNS, &v, &len), 0);
	assert_int_not_equal(v, 0);
	len = sizeof(v);
	assert_int_equal(getsockopt(a.rtcp_fd, SOL_SOCKET, SO_RCVBUF, &v, &len), 0);
	assert_int_equal(v, 2 * PORTPOOL_RCVBUF); /* the kernel's doubling */
	len = sizeof(v);
	assert_int_equal(getsockopt(a.rtp_fd, SOL_SOCKET, SO_SNDBUF, &v, &len), 0);
	assert_int_equal(v, 2 * PORTPOOL_SNDBUF);
	portpool_free_pair(f->p, &a);
}

/* A pair open on one address and wanted on another is bound again there
 * when no pair was never opened; a pair open on the wanted address is
 * found behind one that is not. */
static void test_other_address(void **state)
{
	struct fixture *f = *state;
	struct sockaddr_in other = lo4(0);
	struct portpool_pair a, b, c;

	inet_pton(AF_INET, "127.0.0.2", &other.sin_addr);
	make_pool(f, f->base, (uint16_t)(f->base + 3), 0);
	assert_int_equal(alloc4(f->p, &a), 0);
	assert_int_equal(portpool_alloc_pair(f->p, (struct sockaddr *)&other, sizeof(other), &b),
			 0);
	assert_int_equal(b.rtp_port, f->base + 2);
	portpool_free_pair(f->p, &a); /* open: 127.0.0.1, then 127.0.0.2 */
	portpool_free_pair(f->p, &b);
	assert_int_equal(portpool_alloc_pair(f->p, (struct sockaddr *)&other, sizeof(other), &c),
			 0);
	assert_int_equal(c.rtp_port, f->base + 2); /* behind the head */
	portpool_free_pair(f->p, &c);
	/* 127.0.0.3 matches neither: the head is bound again there */
	inet_pton(AF_INET, "127.0.0.3", &other.sin_addr);
	assert_int_equal(portpool_alloc_pair(f->p, (struct sockaddr *)&other, sizeof(other), &c),
			 0);
	assert_int_equal(c.rtp_port, f->base);
	assert_int_equal(portpool_open_count(f->p), 4);
	{
		struct sockaddr_in sin;
		socklen_t len = sizeof(sin);

		assert_int_equal(getsockname(c.rtcp_fd, (struct sockaddr *)&sin, &len), 0);
		assert_int_equal(sin.sin_addr.s_addr, other.sin_addr.s_addr);
		assert_int_equal(ntohs(sin.sin_port), f->base + 1);
	}
	assert_int_equal(count_fds(), f->fds + 4);
	portpool_free_pair(f->p, &c);
}

/* A pair's id names its sockets (portpool.h): the same while they stay
 * open, whoever has the pair; new when they are opened again; never 0, and
 * never the id of another pool's sockets. */
static void test_ids(void **state)
{
	struct fixture *f = *state;
	struct sockaddr_in other = lo4(0);
	struct portpool *q = NULL;
	struct portpool_pair a, b, c, d;
	uint64_t id_a, id_b;

	inet_pton(AF_INET, "127.0.0.2", &other.sin_addr);
	make_pool(f, f->base, (uint16_t)(f->base + 3), 0);
	assert_int_equal(alloc4(f->p, &a), 0);
	assert_int_equal(alloc4(f->p, &b), 0);
	assert_true(a.id != 0 && b.id != 0 && a.id != b.id);
	id_a = a.id;
	id_b = b.id;
	portpool_free_pair(f->p, &a);
	assert_int_equal(a.id, 0);
	assert_int_equal(alloc4(f->p, &c), 0); /* a's sockets again */
	assert_int_equal(c.rtp_port, f->base);
	assert_int_equal(c.id, id_a);
	portpool_free_pair(f->p, &c);
	portpool_free_pair(f->p, &b);
	/* bound again on another address: other sockets, a new id */
	assert_int_equal(portpool_alloc_pair(f->p, (struct sockaddr *)&other, sizeof(other), &c),
			 0);
	assert_true(c.id != 0 && c.id != id_a && c.id != id_b);
	/* another pool's sockets never share an id with this one's */
	assert_int_equal(portpool_create(&q, (uint16_t)(f->base + 4), (uint16_t)(f->base + 5), 0,
					 NULL, NULL),
			 0);
	assert_int_equal(alloc4(q, &d), 0);
	assert_true(d.id != 0 && d.id != c.id && d.id != id_a && d.id != id_b);
	portpool_free_pair(q, &d);
	portpool_destroy(q);
	portpool_free_pair(f->p, &c);
}

/* Lowers RLIMIT_NOFILE so that exactly `room` descriptor numbers are free
 * below it (fds open above it stay valid); *saved is the limit to restore. */
static void leave_room(unsigned room, struct rlimit *saved)
{
	bool used[1024] = { false };
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	struct rlimit rl;
	unsigned fd = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.' && atoi(e->d_name) < 1024 && atoi(e->d_name) != dirfd(d))
			used[atoi(e->d_name)] = true;
	closedir(d);
	for (;; fd++) {
		assert_true(fd < 1024);
		if (!used[fd] && --room == 0)
			break;
	}
	assert_int_equal(getrlimit(RLIMIT_NOFILE, saved), 0);
	rl = *saved;
	rl.rlim_cur = (rlim_t)fd + 1;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

/* Out of descriptors, a call gets the sockets of pairs that serve none:
 * quarantined ones (still quarantined after), then free ones; with every
 * open pair in use, EMFILE. */
static void test_fd_reclaim(void **state)
{
	struct fixture *f = *state;
	struct sockaddr_in other = lo4(0);
	struct portpool_pair a, b, c, d;
	struct rlimit saved;
	uint16_t a_port;

	inet_pton(AF_INET, "127.0.0.2", &other.sin_addr);
	make_pool(f, f->base, (uint16_t)(f->base + BLOCK - 1), 2);
	leave_room(4, &saved); /* two pairs' sockets */
	assert_int_equal(alloc4(f->p, &a), 0);
	assert_int_equal(alloc4(f->p, &b), 0);
	assert_int_equal(alloc4(f->p, &c), EMFILE); /* both in use */
	assert_int_equal(portpool_fd_reclaims(f->p), 0);
	a_port = a.rtp_port;

	/* a in quarantine gives its descriptors, not its ports */
	portpool_free_pair(f->p, &a);
	assert_int_equal(alloc4(f->p, &c), 0);
	assert_int_equal(portpool_fd_reclaims(f->p), 1);
	assert_int_not_equal(c.rtp_port, a_port);
	assert_int_not_equal(c.rtp_port, b.rtp_port);
	assert_pair(&c, f->base, f->base + BLOCK - 1u, AF_INET);
	assert_int_equal(portpool_quarantined_count(f->p), 2);
	assert_int_equal(portpool_in_use_count(f->p), 4);
	assert_int_equal(portpool_open_count(f->p), 4);

	/* b and c free and out of quarantine, open on 127.0.0.1; a call on
	 * 127.0.0.2 closes the least recently freed (b) */
	portpool_free_pair(f->p, &b);
	portpool_free_pair(f->p, &c);
	f->now += 2000;
	assert_int_equal(portpool_alloc_pair(f->p, (struct sockaddr *)&other, sizeof(other), &d),
			 0);
	assert_int_equal(portpool_fd_reclaims(f->p), 2);
	assert_int_equal(portpool_open_count(f->p), 4);
	assert_int_equal(portpool_in_use_count(f->p), 2);
	/* c is still open: handed out again without a new socket */
	assert_int_equal(alloc4(f->p, &c), 0);
	assert_int_equal(portpool_fd_reclaims(f->p), 2);
	portpool_free_pair(f->p, &c);
	portpool_free_pair(f->p, &d);

	assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
}

/* At its share of descriptors the pool closes a pair as it is freed, and
 * idle pairs before it opens one; it opens beyond the share only when every
 * open pair is in use. Closed pairs stay quarantined. */
static void test_open_max(void **state)
{
	struct fixture *f = *state;
	struct sockaddr_in other = lo4(0);
	struct portpool_pair a, b, c, d, e;

	inet_pton(AF_INET, "127.0.0.2", &other.sin_addr);
	make_pool(f, f->base, (uint16_t)(f->base + BLOCK - 1), 1);
	portpool_set_open_max(f->p, 8); /* four pairs, one socket of headroom */
	assert_int_equal(alloc4(f->p, &a), 0);
	assert_int_equal(alloc4(f->p, &b), 0);
	portpool_free_pair(f->p, &a); /* below the share: kept open */
	portpool_free_pair(f->p, &b);
	assert_int_equal(portpool_open_count(f->p), 4);
	assert_int_equal(portpool_fd_reclaims(f->p), 0);
	/* on 127.0.0.2: new sockets up to the share */
	assert_int_equal(portpool_alloc_pair(f->p, (struct sockaddr *)&other, sizeof(other), &c),
			 0);
	assert_int_equal(portpool_alloc_pair(f->p, (struct sockaddr *)&other, sizeof(other), &d),
			 0);
	assert_int_equal(portpool_open_count(f->p), 8);
	assert_int_equal(portpool_fd_reclaims(f->p), 0);
	/* above it: a, quarantined longest, goes first */
	assert_int_equal(portpool_alloc_pair(f->p, (struct sockaddr *)&other, sizeof(other), &e),
			 0);
	assert_int_equal(portpool_fd_reclaims(f->p), 1);
	assert_int_equal(portpool_open_count(f->p), 8);
	assert_int_equal(count_fds(), f->fds + 8);
	/* at the share, c is closed as it is freed; b stays open */
	portpool_free_pair(f->p, &c);
	assert_int_equal(portpool_fd_reclaims(f->p), 2);
	assert_int_equal(portpool_open_count(f->p), 6);
	assert_int_equal(count_fds(), f->fds + 6);
	assert_int_equal(portpool_quarantined_count(f->p), 6); /* a, b and c */
	/* room for one more pair below the share, then b's quarantined
	 * sockets go */
	assert_int_equal(alloc4(f->p, &a), 0);
	assert_int_equal(portpool_fd_reclaims(f->p), 2);
	assert_int_equal(alloc4(f->p, &b), 0);
	assert_int_equal(portpool_fd_reclaims(f->p), 3);
	assert_int_equal(portpool_open_count(f->p), 8);
	/* every open pair in use: beyond the share */
	assert_int_equal(alloc4(f->p, &c), 0);
	assert_int_equal(portpool_fd_reclaims(f->p), 3);
	assert_int_equal(portpool_open_count(f->p), 10);
	portpool_free_pair(f->p, &c); /* above the share: closed as freed */
	portpool_free_pair(f->p, &a); /* at it, less the headroom: likewise */
	assert_int_equal(portpool_fd_reclaims(f->p), 5);
	portpool_free_pair(f->p, &b); /* below: kept for reuse */
	portpool_free_pair(f->p, &d);
	portpool_free_pair(f->p, &e);
	assert_int_equal(portpool_fd_reclaims(f->p), 5);
	assert_int_equal(portpool_open_count(f->p), 6);
	assert_int_equal(count_fds(), f->fds + 6);
	assert_int_equal(portpool_quarantined_count(f->p), 16); /* eight pairs freed */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_rejects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pairs_until_exhausted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_odd_min, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quarantine, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reuse_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_busy_port_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_all_taken_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipv6, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_address, setup, teardown),
		cmocka_unit_test_setup_teardown(test_monotonic_clock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kept_open_and_drained, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drain_many, setup, teardown),
		cmocka_unit_test_setup_teardown(test_socket_options, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_address, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ids, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_drain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fd_reclaim, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_max, setup, teardown),
	};

	return cmocka_run_group_tests_name("portpool", tests, NULL, NULL);
}
