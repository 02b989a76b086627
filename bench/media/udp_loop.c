/* udp_loop: the media benchmark's plain UDP relay, the socket limit
 * (bench/media/README.md).
 *
 * One thread, epoll, recvmmsg and sendmmsg (--io epoll, the default), or
 * io_uring (--io io_uring, --io multishot, below), nothing else: for each call a
 * socket for side A and one for side B (kernel-chosen ports on the
 * address given); what one receives the other sends on, to the side's peer
 * (from --peers at first, then latched to the source of what that side's
 * socket last received). No parsing, no copying, no crypto: what any relay
 * must at least do per packet.
 *
 *   udp_loop --peers FILE --out calls.json [--cpu N] [--address 127.0.0.1]
 *            [--ports LO-HI] [--io epoll|io_uring|multishot]
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
#include <liburing.h>

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

/* --io multishot: io_uring alone, no epoll: one multishot recvmsg per
 * socket over a ring of provided buffers, one sendmsg per packet from the
 * buffer it arrived in, and one io_uring_enter for a whole round of
 * completions. Measured beside --io io_uring, it was no better, and a
 * relay built on it would have to cancel every socket's receive before the
 * socket can be closed (the ring holds a reference to it). */
#define URING_BUFS 4096 /* a power of two */
#define URING_BGID 1
#define TAG_SEND   1UL

static struct io_uring_sqe *next_sqe(struct io_uring *ring)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

	if (!sqe) {
		io_uring_submit(ring);
		sqe = io_uring_get_sqe(ring);
	}
	if (!sqe)
		die("io_uring_get_sqe", "no entry");
	return sqe;
}

static void arm_recv(struct io_uring *ring, struct end *x, struct msghdr *shape)
{
	struct io_uring_sqe *sqe = next_sqe(ring);

	io_uring_prep_recvmsg_multishot(sqe, x->fd, shape, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = URING_BGID;
	io_uring_sqe_set_data(sqe, x);
}

static void run_multishot(struct end *ends, size_t n, uint64_t *rx, uint64_t *tx,
			  uint64_t *send_errors, uint64_t *wakeups, uint64_t *batches)
{
	static struct msghdr smsg[URING_BUFS];
	static struct iovec siov[URING_BUFS];
	struct io_uring_params p = { .flags = IORING_SETUP_SINGLE_ISSUER |
					      IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE,
				     .cq_entries = 4 * URING_BUFS };
	struct msghdr shape = { .msg_namelen = sizeof(struct sockaddr_in) };
	struct io_uring_buf_reg reg = { .ring_entries = URING_BUFS, .bgid = URING_BGID };
	struct io_uring_buf_ring *br;
	struct io_uring ring;
	uint8_t *bufs;
	int r;

	r = io_uring_queue_init_params(1024, &ring, &p);
	if (r < 0)
		die("io_uring_queue_init", strerror(-r));
	if (posix_memalign((void **)&br, 4096, URING_BUFS * sizeof(struct io_uring_buf)) ||
	    posix_memalign((void **)&bufs, 4096, (size_t)URING_BUFS * BUF_LEN))
		die("out of memory", NULL);
	io_uring_buf_ring_init(br);
	reg.ring_addr = (uintptr_t)br;
	r = io_uring_register_buf_ring(&ring, &reg, 0);
	if (r < 0)
		die("io_uring_register_buf_ring", strerror(-r));
	for (int i = 0; i < URING_BUFS; i++)
		io_uring_buf_ring_add(br, bufs + (size_t)i * BUF_LEN, BUF_LEN, (unsigned short)i,
				      io_uring_buf_ring_mask(URING_BUFS), i);
	io_uring_buf_ring_advance(br, URING_BUFS);
	for (size_t i = 0; i < 2 * n; i++)
		arm_recv(&ring, &ends[i], &shape);
	while (!stop_now) {
		struct __kernel_timespec ts = { .tv_nsec = 200000000 };
		struct io_uring_cqe *cqe, *unused;
		unsigned head, seen = 0, freed = 0;

		io_uring_submit_and_wait_timeout(&ring, &unused, 1, &ts, NULL);
		(*wakeups)++;
		io_uring_for_each_cqe(&ring, head, cqe)
		{
			uintptr_t ud = (uintptr_t)io_uring_cqe_get_data(cqe);

			seen++;
			if (ud & TAG_SEND) {
				unsigned bid = (unsigned)(ud >> 1);

				if (cqe->res < 0)
					(*send_errors)++;
				else
					(*tx)++;
				io_uring_buf_ring_add(br, bufs + (size_t)bid * BUF_LEN, BUF_LEN,
						      (unsigned short)bid,
						      io_uring_buf_ring_mask(URING_BUFS),
						      (int)freed++);
				continue;
			}
			struct end *x = (struct end *)ud;

			if (!(cqe->flags & IORING_CQE_F_MORE))
				arm_recv(&ring, x, &shape);
			if (cqe->res < 0 || !(cqe->flags & IORING_CQE_F_BUFFER))
				continue;
			unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
			uint8_t *buf = bufs + (size_t)bid * BUF_LEN;
			struct io_uring_recvmsg_out *o =
				io_uring_recvmsg_validate(buf, cqe->res, &shape);
			struct end *y = x->other;
			struct io_uring_sqe *sqe;

			(*rx)++;
			(*batches)++;
			if (!o) {
				io_uring_buf_ring_add(br, buf, BUF_LEN, (unsigned short)bid,
						      io_uring_buf_ring_mask(URING_BUFS),
						      (int)freed++);
				continue;
			}
			if (o->namelen == sizeof(struct sockaddr_in))
				memcpy(&x->peer, io_uring_recvmsg_name(o), sizeof(x->peer));
			siov[bid] = (struct iovec){ io_uring_recvmsg_payload(o, &shape),
						    io_uring_recvmsg_payload_length(o, cqe->res,
										    &shape) };
			smsg[bid] = (struct msghdr){ .msg_name = &y->peer,
						     .msg_namelen = sizeof(y->peer),
						     .msg_iov = &siov[bid],
						     .msg_iovlen = 1 };
			sqe = next_sqe(&ring);
			io_uring_prep_sendmsg(sqe, y->fd, &smsg[bid], 0);
			io_uring_sqe_set_data(sqe, (void *)(((uintptr_t)bid << 1) | TAG_SEND));
		}
		io_uring_cq_advance(&ring, seen);
		if (freed)
			io_uring_buf_ring_advance(br, (int)freed);
	}
	io_uring_queue_exit(&ring);
	free(bufs);
	free(br);
}

/* --io io_uring, as the daemon's media_io = io_uring (relay.h): epoll for
 * readiness, then one io_uring submission reads one datagram from each
 * ready socket and another sends them all: three system calls a round
 * instead of two a packet. Every operation completes inline
 * (MSG_DONTWAIT), so each submission's completions are all there on
 * return. The daemon takes 32 sockets a submission, this up to 256. */
#define HY_MAX 256
static void run_uring(int ep, uint64_t *rx, uint64_t *tx, uint64_t *send_errors, uint64_t *wakeups,
		      uint64_t *batches)
{
	static uint8_t hbufs[HY_MAX][BUF_LEN];
	static struct sockaddr_in hsrc[HY_MAX];
	static struct msghdr hin[HY_MAX], hout[HY_MAX];
	static struct iovec hiov[HY_MAX], hoiov[HY_MAX];
	struct epoll_event evs[HY_MAX];
	struct io_uring ring;
	int r = io_uring_queue_init(2 * HY_MAX, &ring, 0);

	if (r < 0)
		die("io_uring_queue_init", strerror(-r));
	while (!stop_now) {
		int ne = epoll_wait(ep, evs, HY_MAX, 200), nsend = 0;
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;

		(*wakeups)++;
		if (ne <= 0)
			continue;
		for (int e = 0; e < ne; e++) {
			struct end *x = evs[e].data.ptr;
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

			hiov[e] = (struct iovec){ hbufs[e], BUF_LEN };
			hin[e] = (struct msghdr){ .msg_name = &hsrc[e],
						  .msg_namelen = sizeof(hsrc[e]),
						  .msg_iov = &hiov[e],
						  .msg_iovlen = 1 };
			io_uring_prep_recvmsg(sqe, x->fd, &hin[e], MSG_DONTWAIT);
			io_uring_sqe_set_data(sqe, (void *)(uintptr_t)e);
		}
		io_uring_submit(&ring);
		(*batches)++;
		io_uring_for_each_cqe(&ring, head, cqe)
		{
			int e = (int)(uintptr_t)io_uring_cqe_get_data(cqe);
			struct end *x = evs[e].data.ptr, *y = x->other;
			struct io_uring_sqe *sqe;

			seen++;
			if (cqe->res < 0)
				continue;
			(*rx)++;
			if (hin[e].msg_namelen == sizeof(struct sockaddr_in))
				x->peer = hsrc[e];
			hoiov[e] = (struct iovec){ hbufs[e], (size_t)cqe->res };
			hout[e] = (struct msghdr){ .msg_name = &y->peer,
						   .msg_namelen = sizeof(y->peer),
						   .msg_iov = &hoiov[e],
						   .msg_iovlen = 1 };
			sqe = io_uring_get_sqe(&ring);
			io_uring_prep_sendmsg(sqe, y->fd, &hout[e], MSG_DONTWAIT);
			io_uring_sqe_set_data(sqe, NULL);
			nsend++;
		}
		io_uring_cq_advance(&ring, seen);
		if (!nsend)
			continue;
		io_uring_submit(&ring);
		seen = 0;
		io_uring_for_each_cqe(&ring, head, cqe)
		{
			seen++;
			if (cqe->res < 0)
				(*send_errors)++;
			else
				(*tx)++;
		}
		io_uring_cq_advance(&ring, seen);
	}
	io_uring_queue_exit(&ring);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = { { "peers", required_argument, NULL, 'p' },
					      { "out", required_argument, NULL, 'o' },
					      { "cpu", required_argument, NULL, 'c' },
					      { "address", required_argument, NULL, 'a' },
					      { "ports", required_argument, NULL, 'r' },
					      { "io", required_argument, NULL, 'i' },
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
	bool uring = false, multishot = false;

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
		case 'i':
			multishot = !strcmp(optarg, "multishot");
			uring = !strcmp(optarg, "io_uring");
			if (!uring && !multishot && strcmp(optarg, "epoll"))
				die("bad --io", optarg);
			break;
		case 'h':
			printf("usage: udp_loop --peers FILE --out calls.json [--cpu N] "
			       "[--address IP] [--ports LO-HI] [--io epoll|io_uring|multishot]\n");
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
	if (multishot)
		run_multishot(ends, n, &rx, &tx, &send_errors, &wakeups, &batches);
	else if (uring)
		run_uring(ep, &rx, &tx, &send_errors, &wakeups, &batches);
	while (!uring && !multishot && !stop_now) {
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
