/* rtp.h: RTP and RTCP headers (RFC 3550), read and rewritten in place.
 *
 * The relay's view of a packet: just enough to renumber and re-SSRC what a
 * plain leg sends before it is protected toward a secure leg, and to tell
 * RTCP from RTP on a multiplexed port (RFC 5761 section 4). Payloads, header
 * extensions and CSRCs pass through untouched. Pure functions over bytes
 * that arrived from the network: every length is checked, nothing is
 * allocated, nothing is logged (this is the per-packet path). */
#ifndef SRTPBRIDGE_RTP_H
#define SRTPBRIDGE_RTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RTP_HEADER_MIN	12
#define RTCP_HEADER_MIN 8

/* The fixed header of an RTP packet, host byte order. */
struct rtp_hdr {
	uint8_t pt;
	bool marker;
	uint16_t seq;
	uint32_t ts;
	uint32_t ssrc;
	size_t header_len;  /* 12 + 4 * CC + the header extension, if any */
	size_t payload_len; /* after the header, without padding */
};

/* Parses p[0..n). 0, or EBADMSG: shorter than the header it announces (CSRC
 * count, extension length), version not 2, a padding count of 0 or larger
 * than what follows the header. The SRTP trailer is not known here: parse
 * after unprotect, or before protect. */
int rtp_parse(const uint8_t *p, size_t n, struct rtp_hdr *out);

/* RFC 5761 section 4: on a port that carries both, a packet whose second
 * byte is 192..223 (RTP payload types 64..95 with the marker bit) is RTCP.
 * False for anything shorter than 2 bytes or not version 2. */
bool rtp_is_rtcp(const uint8_t *p, size_t n);

/* Writers of the fixed header's fields; p holds at least RTP_HEADER_MIN
 * bytes (the caller parsed it). */
void rtp_set_seq(uint8_t *p, uint16_t seq);
void rtp_set_ts(uint8_t *p, uint32_t ts);
void rtp_set_ssrc(uint8_t *p, uint32_t ssrc);

/* Checks a compound RTCP packet p[0..n) (after SRTCP unprotect, or before
 * protect): at least one packet, each version 2 with its length word inside
 * n, the lengths adding up to n exactly; the padding bit only on the last,
 * with a count that fits. The first packet's type is not checked (RFC 3550
 * 6.1 wants SR or RR first; RFC 5506 reduced-size RTCP does not).
 * 0 or EBADMSG. */
int rtcp_check(const uint8_t *p, size_t n);

/* The SSRC of the first packet's sender (SR, RR, SDES's first chunk, BYE's
 * first source, APP, RTPFB, PSFB, XR); 0 with EBADMSG-worthy input (call
 * after rtcp_check). */
uint32_t rtcp_sender_ssrc(const uint8_t *p, size_t n);

/* In a compound packet that passed rtcp_check: every sender field becomes
 * ssrc (the packet sender SSRC of SR, RR, APP, RTPFB, PSFB and XR; the SSRC
 * of SDES chunks and BYE sources equal to the first packet's sender), so
 * that RTCP toward a secure leg speaks for the SSRC srtpbridge sends RTP
 * under. Report blocks and feedback media-source fields are not sender
 * fields and stay. Returns the number of fields written. */
unsigned rtcp_set_sender_ssrc(uint8_t *p, size_t n, uint32_t ssrc);

/* In a compound packet that passed rtcp_check: every source field (the
 * SSRC_n of SR and RR report blocks, the media source SSRC of RTPFB and
 * PSFB) equal to from becomes to, so that the reports a secure peer sends
 * about srtpbridge's SSRC reach the plain peer about its own. Returns the
 * number of fields written. */
unsigned rtcp_map_source_ssrc(uint8_t *p, size_t n, uint32_t from, uint32_t to);

#endif
