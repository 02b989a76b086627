/* udp_loop: the media benchmark's plain UDP relay, the socket limit
 * (bench/media/README.md).
 *
 * One thread, epoll, recvmmsg and sendmmsg, nothing else: for each call a
 * socket for side A and one for side B (kernel-chosen ports on the
 * address given); what one receives the other sends on, to the side's peer
 * (from --peers at first, then latched to the source of what that side's
 * socket last received). No parsing, no copying, no crypto: what any relay
 * must at least do per packet.
 *
 *   udp_loop --peers FILE --out calls.json [--cpu N] [--address 127.0.0.1]
 *            [--ports LO-HI]
 *
 * FILE: one line per call, "A_ADDR B_ADDR" (the generator's own addresses,
 * ip:port). calls.json (written once the sockets are bound, keys null) is
 * for the generator. Runs until SIGINT or SIGTERM, then prints its counters
 * as one JSON object on stdout. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH	32
#define BUF_LEN 2048
#define MAX_EVS 1024

struct end {
	int fd;
	struct sockaddr_in peer; /* where what the other end receives goes */
	struct end *other;
};

static volatile sig_atomic_t stop_now;

static void on_signal(int sig)
{
	(void)sig;
	stop_now = 1;
}

static void die(const char *what, const char *arg)
{
	fprintf(stderr, "udp_loop: %s%s%s\n", what, arg ? ": " : "", arg ? arg : "");
	exit(2);
}

static int parse_addr(const char *s, struct sockaddr_in *out)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	char *end;
	long port;

	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return EINVAL;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	port = strtol(colon + 1, &end, 10);
	if ((*end && *end != '\n') || port < 1 || port > 65535)
		return EINVAL;
	memset(out, 0, sizeof(*out));
	out->sin_family = AF_INET;
	out->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, host, &out->sin_addr) == 1 ? 0 : EINVAL;
}

/* A socket on the next free port of lo..hi (*next on), or on a port the
 * kernel chooses when hi is 0. */
static int open_end(const struct in_addr *ip, unsigned *next, unsigned hi,
		    struct sockaddr_in *bound)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr = *ip };
	socklen_t len = sizeof(*bound);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket", strerror(errno));
	for (;;) {
		if (hi && *next > hi)
			die("no free port left in --ports", NULL);
		a.sin_port = htons((uint16_t)(hi ? (*next)++ : 0));
		if (bind(fd, (const struct sockaddr *)&a, sizeof(a)) == 0)
			break;
		if (errno != EADDRINUSE || !hi)
			die("bind", strerror(errno));
	}
	if (getsockname(fd, (struct sockaddr *)bound, &len) < 0)
		die("getsockname", strerror(errno));
	return fd;
}

static void addr_str(char *buf, size_t size, const struct sockaddr_in *a)
{
	char ip[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
	snprintf(buf, size, "%s:%u", ip, ntohs(a->sin_port));
}

int main(int argc, char **argv)
{
	static const struct option opts[] = { { "peers", required_argument, NULL, 'p' },
					      { "out", required_argument, NULL, 'o' },
					      { "cpu", required_argument, NULL, 'c' },
					      { "address", required_argument, NULL, 'a' },
					      { "ports", required_argument, NULL, 'r' },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	static uint8_t bufs[BATCH][BUF_LEN];
	static struct sockaddr_in srcs[BATCH];
	struct mmsghdr in[BATCH], outm[BATCH];
	struct iovec iov[BATCH], oiov[BATCH];
	struct epoll_event evs[MAX_EVS];
	const char *peers_path = NULL, *out_path = NULL, *address = "127.0.0.1";
	struct end *ends = NULL;
	size_t n = 0, cap = 0;
	uint64_t rx = 0, tx = 0, send_errors = 0, wakeups = 0, batches = 0;
	struct in_addr ip;
	char line[256];
	FILE *f;
	unsigned next_port = 0, last_port = 0;
	int cpu = -1, opt, ep;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			peers_path = optarg;
			break;
		case 'o':
			out_path = optarg;
			break;
		case 'c':
			cpu = atoi(optarg);
			break;
		case 'a':
			address = optarg;
			break;
		case 'r':
			if (sscanf(optarg, "%u-%u", &next_port, &last_port) != 2 || !next_port ||
			    last_port < next_port || last_port > 65535)
				die("bad --ports", optarg);
			break;
		case 'h':
			printf("usage: udp_loop --peers FILE --out calls.json [--cpu N] "
			       "[--address IP] [--ports LO-HI]\n");
			return 0;
		default:
			return 2;
		}
	}
	if (!peers_path || !out_path)
		die("--peers and --out are required", NULL);
	if (inet_pton(AF_INET, address, &ip) != 1)
		die("bad --address", address);
	if (cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set) < 0)
			die("sched_setaffinity", strerror(errno));
	}
	f = fopen(peers_path, "r");
	if (!f)
		die("cannot read", peers_path);
	while (fgets(line, sizeof(line), f)) {
		char *b = strchr(line, ' ');

		if (!b)
			die("a line without two addresses in", peers_path);
		*b++ = '\0';
		if (n == cap) {
			struct end *p =
				realloc(ends, (cap = cap ? cap * 2 : 1024) * 2 * sizeof(*p));

			if (!p)
				die("out of memory", NULL);
			ends = p;
		}
		/* ends[2i] faces the generator's side A; what it receives goes
		 * out of ends[2i + 1] to side B, and the other way round */
		if (parse_addr(line, &ends[2 * n].peer) || parse_addr(b, &ends[2 * n + 1].peer))
			die("a bad address in", peers_path);
		n++;
	}
	fclose(f);
	if (!n)
		die("no calls in", peers_path);

	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die("epoll_create1", strerror(errno));
	f = fopen(out_path, "w");
	if (!f)
		die("cannot write", out_path);
	fprintf(f, "{\"relay\": \"loop\", \"calls\": [\n");
	for (size_t i = 0; i < n; i++) {
		char la[64], lb[64], ra[64], rb[64];
		struct sockaddr_in ba, bb;

		ends[2 * i].fd = open_end(&ip, &next_port, last_port, &ba);
		ends[2 * i + 1].fd = open_end(&ip, &next_port, last_port, &bb);
		ends[2 * i].other = &ends[2 * i + 1];
		ends[2 * i + 1].other = &ends[2 * i];
		for (int s = 0; s < 2; s++) {
			struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &ends[2 * i + s] };

			if (epoll_ctl(ep, EPOLL_CTL_ADD, ends[2 * i + s].fd, &ev) < 0)
				die("epoll_ctl", strerror(errno));
		}
		addr_str(la, sizeof(la), &ends[2 * i].peer);
		addr_str(lb, sizeof(lb), &ends[2 * i + 1].peer);
		addr_str(ra, sizeof(ra), &ba);
		addr_str(rb, sizeof(rb), &bb);
		fprintf(f,
			"  {\"id\": %zu, \"a\": {\"local\": \"%s\", \"remote\": \"%s\", \"tx\": "
			"null, "
			"\"rx\": null}, \"b\": {\"local\": \"%s\", \"remote\": \"%s\", \"tx\": "
			"null, "
			"\"rx\": null}}%s\n",
			i, la, ra, lb, rb, i + 1 < n ? "," : "");
	}
	fprintf(f, "]}\n");
	if (fclose(f))
		die("cannot write", out_path);
	printf("ready %zu\n", n);
	fflush(stdout);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	for (int i = 0; i < BATCH; i++) {
		iov[i] = (struct iovec){ bufs[i], BUF_LEN };
		oiov[i] = (struct iovec){ bufs[i], 0 };
	}
	while (!stop_now) {
		int ne = epoll_wait(ep, evs, MAX_EVS, 200);

		wakeups++;
		for (int e = 0; e < ne; e++) {
			struct end *x = evs[e].data.ptr;
			struct end *y = x->other;
			int got, done = 0;

			for (int i = 0; i < BATCH; i++)
				in[i].msg_hdr = (struct msghdr){ .msg_name = &srcs[i],
								 .msg_namelen = sizeof(srcs[i]),
								 .msg_iov = &iov[i],
								 .msg_iovlen = 1 };
			got = recvmmsg(x->fd, in, BATCH, MSG_DONTWAIT, NULL);
			if (got <= 0)
				continue;
			batches++;
			rx += (uint64_t)got;
			/* latch: x's peer is whoever sent to x last */
			if (in[got - 1].msg_hdr.msg_namelen == sizeof(struct sockaddr_in))
				x->peer = srcs[got - 1];
			for (int i = 0; i < got; i++) {
				oiov[i].iov_len = in[i].msg_len;
				outm[i].msg_hdr = (struct msghdr){ .msg_name = &y->peer,
								   .msg_namelen = sizeof(y->peer),
								   .msg_iov = &oiov[i],
								   .msg_iovlen = 1 };
			}
			while (done < got) {
				int r = sendmmsg(y->fd, outm + done, (unsigned)(got - done), 0);

				if (r <= 0)
					break;
				done += r;
			}
			tx += (uint64_t)done;
			send_errors += (uint64_t)(got - done);
		}
	}
	printf("{\"calls\": %zu, \"received\": %" PRIu64 ", \"sent\": %" PRIu64
	       ", \"send_errors\": %" PRIu64 ", \"wakeups\": %" PRIu64 ", \"batches\": %" PRIu64
	       "}\n",
	       n, rx, tx, send_errors, wakeups, batches);
	for (size_t i = 0; i < 2 * n; i++)
		close(ends[i].fd);
	free(ends);
	return 0;
}
