/* setup_cost: the media side of a call's setup and teardown, alone: ports
 * (bind), the worker taking the sockets, both SRTP contexts of the secure
 * leg, the parameters, and the way back. CPU time of the whole process (the
 * main thread and the worker) per call, over --calls calls set up, then
 * torn down, in rounds. SIP is bench/cps's business; this is what the
 * issue's "call setup under 20 us of CPU" can be held to.
 *
 *   setup_cost [--calls N] [--rounds R] [--workers W] [--cpu C] [--base PORT]
 *
 * The pool spans PORT (20000) to PORT + 4 N + 1003: 500 pairs to spare for
 * ports another program holds there (skipped as busy).
 *
 * Prints one JSON object: us per call for setup and for teardown, and the
 * best setup round's split: the main thread (ports, the session, SRTP
 * contexts, two commands) and the worker (taking them: sockets into its
 * epoll, the parameters). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <event2/event.h>
#include <openssl/rand.h>

#include "srtpbridge/media_session.h"
#include "srtpbridge/portpool.h"
#include "srtpbridge/relay.h"
#include "srtpbridge/srtplib.h"
#include "srtpbridge/suite.h"

static double cpu_us(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru); /* every thread: the worker's share too */
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/* The calling thread's CPU time alone: the main thread's share. */
static double thread_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void key(struct sdes_key *k)
{
	memset(k, 0, sizeof(*k));
	k->keysalt.len = suite_keysalt_len(SUITE_AES_CM_128_HMAC_SHA1_80);
	RAND_bytes(k->keysalt.bytes, (int)k->keysalt.len);
}

static void addr(struct sockaddr_storage *ss, socklen_t *len, uint16_t port)
{
	struct sockaddr_in *v4 = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	v4->sin_family = AF_INET;
	v4->sin_port = htons(port);
	v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	*len = sizeof(*v4);
}

int main(int argc, char **argv)
{
	unsigned calls = 1000, rounds = 5, workers = 1, port = 20000;
	int cpu = -1;
	struct event_base *base;
	struct portpool *pool = NULL;
	struct relay *r = NULL;
	struct media_session **s;
	double setup = 0, teardown = 0, best_setup = 1e18, best_teardown = 1e18;
	/* the best setup round's split: the main thread (create, update), the
	 * rest (the worker taking the commands) */
	double best_main = 0;
	struct relay_stream_params(*prm)[2][RELAY_MAX_STREAMS];

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--calls") == 0)
			calls = (unsigned)atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--rounds") == 0)
			rounds = (unsigned)atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--workers") == 0)
			workers = (unsigned)atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--base") == 0)
			port = (unsigned)atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--cpu") == 0)
			cpu = atoi(argv[i + 1]);
	}
	if (cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		sched_setaffinity(0, sizeof(set), &set); /* the worker inherits it */
	}
	s = calloc(calls, sizeof(*s));
	base = event_base_new();
	if (!s || !base || srtplib_init() || port + calls * 4 + 1003 > 65535 ||
	    portpool_create(&pool, (uint16_t)port, (uint16_t)(port + calls * 4 + 1003), 0, NULL,
			    NULL) ||
	    relay_create(&r, base, workers, RELAY_IO_AUTO, NULL, NULL)) {
		fprintf(stderr, "setup_cost: cannot start\n");
		return 2;
	}
	portpool_set_drain(pool, false); /* as the daemon does */
	/* The parameters (keys drawn, addresses) are made before the clock
	 * starts: in the daemon they come from the SDP. */
	prm = calloc(calls, sizeof(*prm));
	if (!prm) {
		fprintf(stderr, "setup_cost: no memory\n");
		return 2;
	}
	for (unsigned c = 0; c < calls; c++) {
		struct relay_stream_params(*p)[RELAY_MAX_STREAMS] = prm[c];

		p[0][0].active = p[1][0].active = true;
		p[0][0].secure = true;
		p[0][0].suite = SUITE_AES_CM_128_HMAC_SHA1_80;
		key(&p[0][0].ours);
		key(&p[0][0].peer);
		addr(&p[0][0].rtp, &p[0][0].rtp_len, 40000);
		addr(&p[0][0].rtcp, &p[0][0].rtcp_len, 40001);
		addr(&p[1][0].rtp, &p[1][0].rtp_len, 41000);
		addr(&p[1][0].rtcp, &p[1][0].rtcp_len, 41001);
	}
	for (unsigned round = 0; round < rounds; round++) {
		double t0 = cpu_us(), t1, t2, m0, main_us;

		/* a call's session made and given its parameters, call after
		 * call, as the daemon would (only faster) */
		m0 = thread_us();
		for (unsigned c = 0; c < calls; c++) {
			int err = media_session_create(&s[c], pool, r, "127.0.0.1", "127.0.0.1", 1);

			if (err) {
				fprintf(stderr, "setup_cost: no session: %s\n", strerror(err));
				return 2;
			}
			if (media_session_update(s[c], (const void *)prm[c], 1)) {
				fprintf(stderr, "setup_cost: update refused\n");
				return 2;
			}
		}
		main_us = thread_us() - m0;
		{
			/* let the worker take every command (sleeping costs no CPU,
			 * so its share is in t1) */
			struct timespec ts = { 0, 200000000 };

			nanosleep(&ts, NULL);
		}
		t1 = cpu_us();
		for (unsigned c = 0; c < calls; c++)
			media_session_destroy(s[c]);
		while (portpool_in_use_count(pool)) {
			struct timespec ts = { 0, 100000 };

			event_base_loop(base, EVLOOP_NONBLOCK);
			nanosleep(&ts, NULL);
		}
		t2 = cpu_us();
		setup += (t1 - t0) / calls;
		teardown += (t2 - t1) / calls;
		if ((t1 - t0) / calls < best_setup) {
			best_setup = (t1 - t0) / calls;
			best_main = main_us / calls;
		}
		if ((t2 - t1) / calls < best_teardown)
			best_teardown = (t2 - t1) / calls;
	}
	printf("{\"calls\":%u,\"rounds\":%u,\"workers\":%u,\"setup_us_per_call\":%.1f,"
	       "\"setup_us_per_call_best\":%.1f,\"teardown_us_per_call\":%.1f,"
	       "\"teardown_us_per_call_best\":%.1f,\"best_split_us\":{\"main\":%.1f,"
	       "\"worker\":%.1f}}\n",
	       calls, rounds, workers, setup / rounds, best_setup, teardown / rounds, best_teardown,
	       best_main, best_setup - best_main);
	relay_destroy(r);
	portpool_destroy(pool);
	event_base_free(base);
	srtplib_shutdown();
	free(s);
	free(prm);
	return 0;
}
