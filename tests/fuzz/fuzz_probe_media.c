/* libFuzzer target: one datagram into srtpprobe's media engine
 * (tools/srtpprobe/pmedia.h), the whole receive path: SRTP/SRTCP unprotect,
 * the RTP header, G.711 decode and the tone detector, RTCP report blocks
 * and RTT. The first byte picks the engine (plain or secure, caller or
 * answerer), RTP or RTCP, the source, and whether the engine's SSRC is
 * written into a report block; the rest is the datagram. Nothing
 * may crash, and every datagram must be counted somewhere. */
#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pmedia.h"
#include "srtpbridge/srtplib.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct event_base *base;
static struct pmedia *engines[4]; /* plain caller, plain answerer, secure x 2 */
static struct sockaddr_in peer, stranger;

static uint64_t counted(const struct pmedia_stats *s)
{
	return s->rtp_recv + s->rtcp_recv + s->rtp_auth_fail + s->rtp_replay_fail +
	       s->rtp_cant_check + s->rtp_other_fail + s->rtcp_auth_fail + s->rtcp_replay_fail +
	       s->rtcp_cant_check + s->rtcp_other_fail + s->rtp_malformed + s->rtcp_malformed;
}

static void setup(void)
{
	struct sockaddr_in local = { .sin_family = AF_INET };

	if (srtplib_init() != 0)
		abort();
	base = event_base_new();
	local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	peer = local;
	peer.sin_port = htons(9); /* discard: the one packet start sends goes nowhere */
	stranger = local;
	stranger.sin_port = htons(11);
	for (int i = 0; i < 4; i++) {
		struct pmedia_params p;
		char why[200];

		memset(&p, 0, sizeof(p));
		memcpy(&p.remote_rtp, &peer, sizeof(peer));
		p.remote_rtp_len = sizeof(peer);
		p.pt = i & 1 ? 8 : 0;
		p.dir = PMEDIA_SENDRECV;
		p.secure = i >= 2;
		p.suite = i == 2 ? SUITE_AES_CM_128_HMAC_SHA1_80 : SUITE_AEAD_AES_128_GCM;
		/* fixed keys, so that a seed can be made that authenticates */
		p.peer_key.keysalt.len = suite_keysalt_len(p.suite);
		memset(p.peer_key.keysalt.bytes, 0x11, p.peer_key.keysalt.len);
		p.our_key = p.peer_key;
		if (pmedia_create(&engines[i], base, i & 1 ? PMEDIA_ANSWERER : PMEDIA_CALLER,
				  (struct sockaddr *)&local, sizeof(local), NULL, why,
				  sizeof(why)) ||
		    pmedia_start(engines[i], &p, why, sizeof(why)))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[8192];
	struct pmedia_stats before, after;
	const uint8_t *pkt;
	struct pmedia *m;
	bool rtcp;

	if (!base)
		setup();
	if (size < 1)
		return 0;
	pkt = data + 1;
	m = engines[data[0] & 3];
	rtcp = data[0] & 4;
	pmedia_stats(m, &before);
	/* the engine's SSRC is random: bits 4 and 5 write it where an RR's
	 * (offset 8) or an SR's (offset 28) first report block names its
	 * source, so that the report and RTT code is reached */
	if ((data[0] & 0x30) && size - 1 <= sizeof(buf)) {
		size_t at = data[0] & 0x10 ? 8 : 28;

		memcpy(buf, data + 1, size - 1);
		if (size - 1 >= at + 4) {
			buf[at] = (uint8_t)(before.local_ssrc >> 24);
			buf[at + 1] = (uint8_t)(before.local_ssrc >> 16);
			buf[at + 2] = (uint8_t)(before.local_ssrc >> 8);
			buf[at + 3] = (uint8_t)before.local_ssrc;
		}
		pkt = buf;
	}
	pmedia_input(m, rtcp, pkt, size - 1, (struct sockaddr *)(data[0] & 8 ? &stranger : &peer),
		     sizeof(peer));
	pmedia_stats(m, &after);
	if (counted(&after) != counted(&before) + 1)
		abort();
	(void)pmedia_heard(m);
	return 0;
}
