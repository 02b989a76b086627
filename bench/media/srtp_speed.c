/* srtp_speed: the crypto limit of a relay, libsrtp2 alone on one core.
 *
 *   srtp_speed [--cpu N] [--runs N] [--seconds S] [--suite NAME]...
 *
 * Protects and unprotects G.711 packets (12-byte RTP header, 160 bytes of
 * payload) with each suite: AES_CM_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32
 * and AEAD_AES_128_GCM unless --suite names some. Pinned to one core
 * (sched_setaffinity, --cpu, 0 by default). A run protects batches of
 * BATCH packets with consecutive sequence numbers in one session and
 * unprotects them in another with the same key, until protect and
 * unprotect have each taken --seconds (1 by default) of timed work; a
 * batch is refilled with the plain packet between rounds, untimed, so
 * the timed loops hold nothing but srtp_protect or srtp_unprotect (and
 * each unprotect is checked). The figure is the best of --runs (5) runs,
 * in ns a packet and packets a second; every run is printed as well.
 *
 * Plain libsrtp2 API: bench/media/build-srtp-speed builds it against our
 * libsrtp2 (OpenSSL) and against Debian's libsrtp2.so.1 (NSS), and a third
 * time with SRTP_SPEED_SRTPBRIDGE defined: our libsrtp2 with srtpbridge's
 * own HMAC-SHA1, AES-ICM and AES-GCM put in its place (srtpcrypto.h), the
 * crypto the daemon runs. Prints one JSON object on stdout ("crypto" says
 * whose primitives ran); 0, 1 when a suite failed, 2 on a usage error. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_setaffinity, CPU_SET */
#endif
#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <srtp2/srtp.h>

#ifdef SRTP_SPEED_SRTPBRIDGE
#include "srtpbridge/srtpcrypto.h"
#endif

#define RTP_HDR	    12
#define PAYLOAD_LEN 160
#define PKT_LEN	    (RTP_HDR + PAYLOAD_LEN)
/* Room for the tag and an MKI (SRTP_MAX_TRAILER_LEN), rounded to 64. */
#define SLOT 384
/* 2048 x 384 bytes: 768 KiB, about what an L2 cache holds. */
#define BATCH	 2048
#define MAX_RUNS 50
#define SSRC	 0x5eed1234u

struct suite {
	const char *name;
	void (*policy)(srtp_crypto_policy_t *p);
	size_t keylen; /* master key || master salt */
};

static const struct suite suites[] = {
	{ "AES_CM_128_HMAC_SHA1_80", srtp_crypto_policy_set_rtp_default, 30 },
	{ "AES_CM_128_HMAC_SHA1_32", srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32, 30 },
	{ "AEAD_AES_128_GCM", srtp_crypto_policy_set_aes_gcm_128_16_auth, 28 },
};
#define NSUITES (sizeof(suites) / sizeof(suites[0]))

struct result {
	double protect_ns[MAX_RUNS];
	double unprotect_ns[MAX_RUNS];
	size_t srtp_len;
	const char *error; /* NULL when it ran */
	int status;	   /* libsrtp2's, with error */
};

/* libsrtp2 has no call that names its crypto library, but each build names
 * its AES-ICM debug module after it (as src/media/srtplib.c does). */
static void backend_from_log(srtp_log_level_t level, const char *msg, void *data)
{
	static const struct {
		const char *module;
		const char *backend;
	} backends[] = {
		{ "aes icm ossl", "openssl" },
		{ "aes icm nss", "nss" },
		{ "aes icm mbedtls", "mbedtls" },
		{ "aes icm", "builtin" },
	};
	const char **found = data;
	size_t len;
	size_t i;

	(void)level;
	while (*msg == ' ')
		msg++;
	len = strlen(msg);
	while (len > 0 && msg[len - 1] == ' ')
		len--;
	for (i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
		if (strlen(backends[i].module) == len &&
		    memcmp(msg, backends[i].module, len) == 0) {
			*found = backends[i].backend;
			return;
		}
	}
}

static const char *detect_backend(void)
{
	const char *found = "unknown";

	if (srtp_install_log_handler(backend_from_log, &found) != srtp_err_status_ok)
		return found;
	(void)srtp_list_debug_modules();
	(void)srtp_install_log_handler(NULL, NULL);
	return found;
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void fill_plain(uint8_t *pkt, uint16_t seq, uint32_t ts)
{
	pkt[0] = 0x80; /* V=2 */
	pkt[1] = 0;    /* PT 0, PCMU */
	pkt[2] = (uint8_t)(seq >> 8);
	pkt[3] = (uint8_t)seq;
	pkt[4] = (uint8_t)(ts >> 24);
	pkt[5] = (uint8_t)(ts >> 16);
	pkt[6] = (uint8_t)(ts >> 8);
	pkt[7] = (uint8_t)ts;
	pkt[8] = (uint8_t)(SSRC >> 24);
	pkt[9] = (uint8_t)(SSRC >> 16);
	pkt[10] = (uint8_t)(SSRC >> 8);
	pkt[11] = (uint8_t)SSRC;
	memset(pkt + RTP_HDR, 0xd5, PAYLOAD_LEN); /* PCMU silence */
	pkt[RTP_HDR] = (uint8_t)seq;		  /* something to check */
}

static srtp_err_status_t make_session(srtp_t *out, const struct suite *s, const uint8_t *key,
				      srtp_ssrc_type_t type)
{
	srtp_policy_t p;

	memset(&p, 0, sizeof(p));
	s->policy(&p.rtp);
	s->policy(&p.rtcp);
	p.ssrc.type = type;
	p.key = (unsigned char *)key;
	p.window_size = 1024;
	return srtp_create(out, &p);
}

/* One run: protect and unprotect until each has had min_ns of timed work. */
static int run_once(srtp_t tx, srtp_t rx, uint8_t *buf, uint32_t *seq, double min_ns,
		    double *protect_ns, double *unprotect_ns, size_t *srtp_len, const char **why,
		    int *status)
{
	static int lens[BATCH];
	double t_prot = 0, t_unprot = 0;
	uint64_t n = 0;
	srtp_err_status_t st;
	double t0;
	int i;

	while (t_prot < min_ns || t_unprot < min_ns) {
		for (i = 0; i < BATCH; i++)
			fill_plain(buf + (size_t)i * SLOT, (uint16_t)(*seq + i), (*seq + i) * 160);

		t0 = now_ns();
		for (i = 0; i < BATCH; i++) {
			lens[i] = PKT_LEN;
			st = srtp_protect(tx, buf + (size_t)i * SLOT, &lens[i]);
			if (st != srtp_err_status_ok)
				goto protect_failed;
		}
		t_prot += now_ns() - t0;
		*srtp_len = (size_t)lens[0];

		t0 = now_ns();
		for (i = 0; i < BATCH; i++) {
			st = srtp_unprotect(rx, buf + (size_t)i * SLOT, &lens[i]);
			if (st != srtp_err_status_ok)
				goto unprotect_failed;
		}
		t_unprot += now_ns() - t0;

		for (i = 0; i < BATCH; i++) {
			if (lens[i] != PKT_LEN ||
			    buf[(size_t)i * SLOT + RTP_HDR] != (uint8_t)(*seq + i)) {
				*why = "unprotect returned another packet than was protected";
				return EBADMSG;
			}
		}
		*seq += BATCH;
		n += BATCH;
	}
	*protect_ns = t_prot / (double)n;
	*unprotect_ns = t_unprot / (double)n;
	return 0;

protect_failed:
	*why = "srtp_protect failed";
	*status = st;
	return EIO;
unprotect_failed:
	*why = "srtp_unprotect failed";
	*status = st;
	return EIO;
}

static void bench_suite(const struct suite *s, int runs, double min_ns, struct result *r)
{
	uint8_t key[SRTP_MAX_KEY_LEN];
	srtp_t tx = NULL, rx = NULL;
	uint8_t *buf = NULL;
	uint32_t seq = 1;
	size_t k;
	int i;

	memset(r, 0, sizeof(*r));
	for (k = 0; k < s->keylen; k++)
		key[k] = (uint8_t)(k * 37 + 11);
	buf = aligned_alloc(64, (size_t)BATCH * SLOT);
	if (!buf) {
		r->error = "out of memory";
		goto out;
	}
	r->status = make_session(&tx, s, key, ssrc_any_outbound);
	if (r->status) {
		r->error = "srtp_create (outbound) failed";
		goto out;
	}
	r->status = make_session(&rx, s, key, ssrc_any_inbound);
	if (r->status) {
		r->error = "srtp_create (inbound) failed";
		goto out;
	}
	for (i = 0; i < runs; i++) {
		if (run_once(tx, rx, buf, &seq, min_ns, &r->protect_ns[i], &r->unprotect_ns[i],
			     &r->srtp_len, &r->error, &r->status))
			goto out;
	}
out:
	if (tx)
		srtp_dealloc(tx);
	if (rx)
		srtp_dealloc(rx);
	free(buf);
}

static double best(const double *v, int n)
{
	double b = v[0];
	int i;

	for (i = 1; i < n; i++)
		if (v[i] < b)
			b = v[i];
	return b;
}

static void print_op(const char *name, const double *v, int runs, bool last)
{
	double b = best(v, runs);
	int i;

	printf("      \"%s\": {\"ns_per_packet\": %.1f, \"packets_per_second\": %.0f, \"runs_ns\": "
	       "[",
	       name, b, 1e9 / b);
	for (i = 0; i < runs; i++)
		printf("%s%.1f", i ? ", " : "", v[i]);
	printf("]}%s\n", last ? "" : ",");
}

static int usage(const char *argv0)
{
	fprintf(stderr, "usage: %s [--cpu N] [--runs N (1-%d)] [--seconds S] [--suite NAME]...\n",
		argv0, MAX_RUNS);
	return 2;
}

int main(int argc, char **argv)
{
	static struct result results[NSUITES];
	bool chosen[NSUITES] = { false };
	bool any_chosen = false;
	double seconds = 1.0;
	int runs = 5, cpu = 0, rc = 0;
	bool first = true;
	const char *backend, *crypto = "libsrtp2";
	cpu_set_t set;
	size_t i;
	int a;

	for (a = 1; a < argc; a++) {
		if (strcmp(argv[a], "--cpu") == 0 && a + 1 < argc) {
			cpu = atoi(argv[++a]);
		} else if (strcmp(argv[a], "--runs") == 0 && a + 1 < argc) {
			runs = atoi(argv[++a]);
			if (runs < 1 || runs > MAX_RUNS)
				return usage(argv[0]);
		} else if (strcmp(argv[a], "--seconds") == 0 && a + 1 < argc) {
			seconds = atof(argv[++a]);
			if (!(seconds > 0))
				return usage(argv[0]);
		} else if (strcmp(argv[a], "--suite") == 0 && a + 1 < argc) {
			a++;
			for (i = 0; i < NSUITES; i++)
				if (strcmp(argv[a], suites[i].name) == 0)
					break;
			if (i == NSUITES) {
				fprintf(stderr, "unknown suite %s\n", argv[a]);
				return 2;
			}
			chosen[i] = any_chosen = true;
		} else {
			return usage(argv[0]);
		}
	}
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		fprintf(stderr, "sched_setaffinity(cpu %d): %s\n", cpu, strerror(errno));
		return 2;
	}
	if (srtp_init() != srtp_err_status_ok) {
		fprintf(stderr, "srtp_init failed\n");
		return 1;
	}
	backend = detect_backend();
#ifdef SRTP_SPEED_SRTPBRIDGE
	crypto = srtpcrypto_install() == SRTPCRYPTO_ALL ? "srtpbridge" : "srtpbridge, partly";
#endif

	for (i = 0; i < NSUITES; i++)
		if (!any_chosen || chosen[i])
			bench_suite(&suites[i], runs, seconds * 1e9, &results[i]);

	printf("{\n  \"library\": \"%s\",\n  \"backend\": \"%s\",\n  \"crypto\": \"%s\",\n",
	       srtp_get_version_string(), backend, crypto);
	printf("  \"cpu\": %d,\n  \"runs\": %d,\n  \"min_seconds\": %g,\n  \"batch\": %d,\n", cpu,
	       runs, seconds, BATCH);
	printf("  \"rtp_bytes\": %d,\n  \"suites\": [\n", PKT_LEN);
	for (i = 0; i < NSUITES; i++) {
		const struct result *r = &results[i];

		if (any_chosen && !chosen[i])
			continue;
		printf("%s    {\n      \"suite\": \"%s\",\n", first ? "" : ",\n", suites[i].name);
		first = false;
		if (r->error) {
			printf("      \"error\": \"%s\", \"status\": %d\n    }", r->error,
			       r->status);
			rc = 1;
			continue;
		}
		printf("      \"srtp_bytes\": %zu,\n", r->srtp_len);
		print_op("protect", r->protect_ns, runs, false);
		print_op("unprotect", r->unprotect_ns, runs, true);
		printf("    }");
	}
	printf("\n  ]\n}\n");
	srtp_shutdown();
	return rc;
}
