/* libFuzzer target: one datagram through the RTP parser and the demux, and,
 * on a copy, through the RTCP check and the SSRC rewriters. A rewrite may
 * change SSRC words only, never more of them than it counts, never a packet
 * header, and what passed the check before must pass it after. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "srtpbridge/rtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define OURS   0xcafef00du
#define REMOTE 0xaabbccddu /* what the seeds report on */

/* The 32-bit words (aligned on p) in which p and q differ. */
static unsigned words_changed(const uint8_t *p, const uint8_t *q, size_t n)
{
	unsigned words = 0;

	for (size_t i = 0; i < n; i += 4) {
		size_t w = n - i < 4 ? n - i : 4;

		if (memcmp(p + i, q + i, w) != 0) {
			if (w < 4)
				abort(); /* the rewriters write whole words only */
			words++;
		}
	}
	return words;
}

/* The first word of every packet (V, P, count, PT, length) is as it was. */
static void headers_kept(const uint8_t *p, const uint8_t *q, size_t n)
{
	for (size_t off = 0; off + 4 <= n; off += 4 * ((size_t)(p[off + 2] << 8 | p[off + 3]) + 1))
		if (memcmp(p + off, q + off, 4) != 0)
			abort();
}

static void rewritten(const uint8_t *before, const uint8_t *after, size_t n, unsigned written)
{
	if (rtcp_check(after, n) != 0)
		abort();
	if (words_changed(before, after, n) > written)
		abort();
	headers_kept(before, after, n);
}

/* a and b are exactly n bytes long, so that ASan sees any access past n. */
static void rtcp_rewrites(uint8_t *a, uint8_t *b, size_t n)
{
	uint32_t sender;
	unsigned w;

	if (rtcp_check(a, n) != 0)
		return;
	sender = rtcp_sender_ssrc(a, n);

	memcpy(b, a, n);
	w = rtcp_set_sender_ssrc(b, n, OURS);
	rewritten(a, b, n, w);
	/* a first sender that was there now speaks as us */
	if (sender && rtcp_sender_ssrc(b, n) != OURS)
		abort();
	/* and doing it again changes nothing (it may count more: a chunk that
	 * already said OURS is now the first sender's) */
	memcpy(a, b, n);
	(void)rtcp_set_sender_ssrc(b, n, OURS);
	if (memcmp(a, b, n) != 0)
		abort();

	w = rtcp_map_source_ssrc(b, n, REMOTE, sender);
	rewritten(a, b, n, w);
	/* nothing is left to map from REMOTE, unless it mapped onto itself */
	memcpy(a, b, n);
	if (sender != REMOTE && rtcp_map_source_ssrc(b, n, REMOTE, sender) != 0)
		abort();
	if (memcmp(a, b, n) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rtp_hdr h;
	uint8_t *a, *b;

	if (rtp_parse(data, size, &h) == 0 &&
	    (h.header_len < RTP_HEADER_MIN || h.header_len > size ||
	     h.payload_len > size - h.header_len))
		abort();
	if (rtp_is_rtcp(data, size) && (size < 2 || data[1] < 192 || data[1] > 223))
		abort();
	if (size == 0) {
		if (rtcp_check(data, 0) != EBADMSG)
			abort();
		return 0;
	}
	a = malloc(size);
	b = malloc(size);
	if (!a || !b)
		abort();
	memcpy(a, data, size);
	rtcp_rewrites(a, b, size);
	free(a);
	free(b);
	return 0;
}
