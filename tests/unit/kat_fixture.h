/* The known-answer files of tests/unit/data (kat/, srtp/; README.md there)
 * read for the unit tests that check SRTP against them (test_sdes.c,
 * test_srtpcrypto.c): records of "key = value" lines, a blank line between
 * records, '#' lines ignored. Keys: suite, crypto (an a=crypto line), key
 * (hex key||salt), and packets in pairs, the protected one (srtp, srtcp) and
 * its plain form (rtp, rtcp, or payload: the RTP payload alone), in either
 * order; any other key (source) is skipped.
 *
 * Static inline functions in a header for the reason udp_fixture.h gives:
 * each test is its own executable from one file. */
#ifndef SRTPBRIDGE_TEST_KAT_FIXTURE_H
#define SRTPBRIDGE_TEST_KAT_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

struct vec {
	char suite[64];
	char crypto[512];
	uint8_t key[64];
	size_t keylen;
	struct {
		uint8_t prot[512], plain[512];
		size_t nprot, nplain;
		bool rtcp;
	} pkts[16];
	size_t npkts;
};

static inline size_t unhex(const char *s, uint8_t *out, size_t max)
{
	size_t n = 0;

	while (s[0] && s[1] && n < max) {
		unsigned b;

		if (sscanf(s, "%2x", &b) != 1)
			break;
		out[n++] = (uint8_t)b;
		s += 2;
	}
	return n;
}

/* One record into *v; false at the end of the file. */
static inline bool read_vec(FILE *f, struct vec *v)
{
	char line[2048];
	bool any = false;

	memset(v, 0, sizeof(*v));
	while (fgets(line, sizeof(line), f)) {
		char *eq = strstr(line, " = ");
		char *val;

		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '#')
			continue;
		if (!line[0]) {
			if (any)
				return true;
			continue;
		}
		assert_non_null(eq);
		*eq = '\0';
		val = eq + 3;
		any = true;
		if (strcmp(line, "suite") == 0) {
			snprintf(v->suite, sizeof(v->suite), "%s", val);
		} else if (strcmp(line, "crypto") == 0) {
			snprintf(v->crypto, sizeof(v->crypto), "%s", val);
		} else if (strcmp(line, "key") == 0) {
			v->keylen = unhex(val, v->key, sizeof(v->key));
		} else if (strcmp(line, "srtp") == 0 || strcmp(line, "srtcp") == 0 ||
			   strcmp(line, "rtp") == 0 || strcmp(line, "rtcp") == 0 ||
			   strcmp(line, "payload") == 0) {
			bool prot = line[0] == 's';
			bool rtcp = strstr(line, "rtcp") != NULL;
			size_t last = v->npkts - 1;

			if (!v->npkts || (prot ? v->pkts[last].nprot : v->pkts[last].nplain)) {
				assert_true(v->npkts < 16);
				last = v->npkts++;
				v->pkts[last].rtcp = rtcp;
			}
			if (prot)
				v->pkts[last].nprot =
					unhex(val, v->pkts[last].prot, sizeof(v->pkts[0].prot));
			else
				v->pkts[last].nplain =
					unhex(val, v->pkts[last].plain, sizeof(v->pkts[0].plain));
		}
	}
	return any;
}

#endif
