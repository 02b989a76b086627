/* rtp.c: RTP and RTCP headers (see rtp.h), read like RFC 3550 5.1 and 6.4-6.6,
 * RFC 4585 6.1, RFC 3611 2 and RFC 5761 4.
 *
 * Every RTCP walk goes through rtcp_next(), which refuses a packet whose
 * count announces more than its length holds: rtcp_check() is that walk to
 * the end, and the rewriters repeat it, so a field they write is inside n
 * even when a caller forgot the check. */
#include "srtpbridge/rtp.h"
#include "srtpbridge/bytes.h"

#include <errno.h>

enum rtcp_type {
	RTCP_SR = 200,
	RTCP_RR = 201,
	RTCP_SDES = 202,
	RTCP_BYE = 203,
	RTCP_APP = 204,
	RTCP_RTPFB = 205,
	RTCP_PSFB = 206,
	RTCP_XR = 207,
};

#define RTP_VERSION	2
#define RTCP_HDR	4  /* V, P, count, PT, length: what every RTCP packet has */
#define SR_SENDER_INFO	20 /* NTP timestamp, RTP timestamp, packet and octet counts */
#define REPORT_BLOCK	24
#define SDES_CHUNK_MIN	8 /* an SSRC and the null octet, padded */
#define FB_MEDIA_SOURCE 8 /* RTPFB and PSFB: after the header and the sender SSRC */
#define SR_REPORTS	(8 + SR_SENDER_INFO)
#define RR_REPORTS	8
#define APP_FIXED	12 /* header, SSRC, name */
#define FB_FIXED	12 /* header, sender SSRC, media source SSRC */
#define XR_FIXED	8

int rtp_parse(const uint8_t *p, size_t n, struct rtp_hdr *out)
{
	size_t hl, pad = 0;

	if (n < RTP_HEADER_MIN || p[0] >> 6 != RTP_VERSION)
		return EBADMSG;
	hl = RTP_HEADER_MIN + 4 * (size_t)(p[0] & 0x0f);
	if (n < hl)
		return EBADMSG;
	if (p[0] & 0x10) {
		/* RFC 3550 5.3.1: profile-defined 16 bits, then the length in
		 * 32-bit words not counting this 4-byte header */
		if (n - hl < 4)
			return EBADMSG;
		hl += 4 + 4 * (size_t)be16_get(p + hl + 2);
		if (n < hl)
			return EBADMSG;
	}
	if (p[0] & 0x20) {
		/* the count includes itself, so 0 is no valid count, and padding
		 * never reaches back into the header */
		pad = p[n - 1];
		if (pad == 0 || pad > n - hl)
			return EBADMSG;
	}
	out->pt = p[1] & 0x7f;
	out->marker = (p[1] & 0x80) != 0;
	out->seq = be16_get(p + 2);
	out->ts = be32_get(p + 4);
	out->ssrc = be32_get(p + 8);
	out->header_len = hl;
	out->payload_len = n - hl - pad;
	return 0;
}

bool rtp_is_rtcp(const uint8_t *p, size_t n)
{
	/* RTCP types 192..223 read as RTP are payload types 64..95 with the
	 * marker bit, which RFC 5761 section 4 reserves for this purpose */
	return n >= 2 && p[0] >> 6 == RTP_VERSION && p[1] >= 192 && p[1] <= 223;
}

void rtp_set_seq(uint8_t *p, uint16_t seq)
{
	be16_put(p + 2, seq);
}

void rtp_set_ts(uint8_t *p, uint32_t ts)
{
	be32_put(p + 4, ts);
}

void rtp_set_ssrc(uint8_t *p, uint32_t ssrc)
{
	be32_put(p + 8, ssrc);
}

/* One packet of a compound, as rtcp_next() found it. */
struct rtcp_pkt {
	size_t off;	/* its header */
	size_t end;	/* of its content, before any padding */
	size_t next;	/* the next packet's header, or n */
	unsigned count; /* RC, SC, or the APP subtype or feedback FMT */
	uint8_t type;
};

/* The offset after the SDES chunk at c, or 0 when the chunk does not end
 * before end. Items are type, length, text; the list ends with a null octet
 * and the chunk is padded to a 32-bit boundary (RFC 3550 6.5). Packets start
 * on 32-bit boundaries of the compound, so aligning offsets in it is
 * aligning in the packet. */
static size_t sdes_chunk_next(const uint8_t *p, size_t c, size_t end)
{
	size_t i = c + 4;

	if (end - c < SDES_CHUNK_MIN)
		return 0;
	while (i < end && p[i] != 0) {
		if (end - i < 2)
			return 0;
		i += 2 + (size_t)p[i + 1];
	}
	if (i >= end)
		return 0;
	i = (i + 4) & ~(size_t)3;
	return i <= end ? i : 0;
}

/* Reads the packet at off (off < n) and checks that it holds what its type
 * and count announce, so that the walks after it read and write only inside
 * p[0..n). False when it does not. */
static bool rtcp_next(const uint8_t *p, size_t n, size_t off, struct rtcp_pkt *k)
{
	size_t len, need, pad = 0;

	if (n - off < RTCP_HDR || p[off] >> 6 != RTP_VERSION)
		return false;
	len = 4 * ((size_t)be16_get(p + off + 2) + 1);
	if (len > n - off)
		return false;
	if (p[off] & 0x20) {
		/* RFC 3550 6.4.1: only the last packet of a compound is padded,
		 * so the count is the compound's last octet */
		if (off + len != n)
			return false;
		pad = p[n - 1];
		if (pad == 0 || pad > len - RTCP_HDR)
			return false;
	}
	k->off = off;
	k->next = off + len;
	k->end = k->next - pad;
	k->count = p[off] & 0x1f;
	k->type = p[off + 1];
	switch (k->type) {
	case RTCP_SR:
		need = SR_REPORTS + REPORT_BLOCK * (size_t)k->count;
		break;
	case RTCP_RR:
		need = RR_REPORTS + REPORT_BLOCK * (size_t)k->count;
		break;
	case RTCP_SDES: {
		size_t c = off + RTCP_HDR;

		for (unsigned i = 0; i < k->count; i++) {
			c = sdes_chunk_next(p, c, k->end);
			if (!c)
				return false;
		}
		return true;
	}
	case RTCP_BYE:
		need = RTCP_HDR + 4 * (size_t)k->count;
		break;
	case RTCP_APP:
		need = APP_FIXED;
		break;
	case RTCP_RTPFB:
	case RTCP_PSFB:
		need = FB_FIXED;
		break;
	case RTCP_XR:
		need = XR_FIXED;
		break;
	default:
		/* a type we do not know is only walked over: no field of it is
		 * read or written, so nothing of it needs to fit */
		need = RTCP_HDR;
		break;
	}
	return k->end - off >= need;
}

int rtcp_check(const uint8_t *p, size_t n)
{
	struct rtcp_pkt k;
	size_t off = 0;

	if (n == 0)
		return EBADMSG;
	while (off < n) {
		if (!rtcp_next(p, n, off, &k))
			return EBADMSG;
		off = k.next;
	}
	return 0;
}

/* False when the first packet names no sender: an SDES or BYE without
 * chunks or sources, or a type we do not know. */
static bool first_sender(const uint8_t *p, size_t n, uint32_t *ssrc)
{
	struct rtcp_pkt k;

	if (n == 0 || !rtcp_next(p, n, 0, &k))
		return false;
	switch (k.type) {
	case RTCP_SR:
	case RTCP_RR:
	case RTCP_APP:
	case RTCP_RTPFB:
	case RTCP_PSFB:
	case RTCP_XR:
		break;
	case RTCP_SDES:
	case RTCP_BYE:
		if (k.count == 0)
			return false;
		break;
	default:
		return false;
	}
	*ssrc = be32_get(p + RTCP_HDR);
	return true;
}

uint32_t rtcp_sender_ssrc(const uint8_t *p, size_t n)
{
	uint32_t ssrc;

	return first_sender(p, n, &ssrc) ? ssrc : 0;
}

/* Writes to at q if what is there is from; 1 if it did. */
static unsigned map32(uint8_t *q, uint32_t from, uint32_t to)
{
	if (be32_get(q) != from)
		return 0;
	be32_put(q, to);
	return 1;
}

unsigned rtcp_set_sender_ssrc(uint8_t *p, size_t n, uint32_t ssrc)
{
	struct rtcp_pkt k;
	uint32_t old = 0;
	/* a chunk or BYE source is ours only when it is the first sender: a
	 * mixer's SDES lists its CSRCs too, and they are not ours to rename */
	bool known = first_sender(p, n, &old);
	unsigned written = 0;

	for (size_t off = 0; off < n && rtcp_next(p, n, off, &k); off = k.next) {
		switch (k.type) {
		case RTCP_SR:
		case RTCP_RR:
		case RTCP_APP:
		case RTCP_RTPFB:
		case RTCP_PSFB:
		case RTCP_XR:
			be32_put(p + off + RTCP_HDR, ssrc);
			written++;
			break;
		case RTCP_SDES: {
			size_t c = off + RTCP_HDR;

			for (unsigned i = 0; i < k.count && c; i++) {
				if (known)
					written += map32(p + c, old, ssrc);
				c = sdes_chunk_next(p, c, k.end);
			}
			break;
		}
		case RTCP_BYE:
			for (unsigned i = 0; known && i < k.count; i++)
				written += map32(p + off + RTCP_HDR + 4 * (size_t)i, old, ssrc);
			break;
		default:
			break;
		}
	}
	return written;
}

unsigned rtcp_map_source_ssrc(uint8_t *p, size_t n, uint32_t from, uint32_t to)
{
	struct rtcp_pkt k;
	unsigned written = 0;

	for (size_t off = 0; off < n && rtcp_next(p, n, off, &k); off = k.next) {
		size_t blocks;

		switch (k.type) {
		case RTCP_SR:
		case RTCP_RR:
			blocks = off + (k.type == RTCP_SR ? SR_REPORTS : RR_REPORTS);
			for (unsigned i = 0; i < k.count; i++)
				written += map32(p + blocks + REPORT_BLOCK * (size_t)i, from, to);
			break;
		case RTCP_RTPFB:
		case RTCP_PSFB:
			written += map32(p + off + FB_MEDIA_SOURCE, from, to);
			break;
		default:
			break;
		}
	}
	return written;
}
