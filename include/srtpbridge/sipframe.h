/* sipframe.h: where one SIP message ends (RFC 3261 section 18.3), with no
 * I/O: a UDP datagram holds one message, whose Content-Length may be absent
 * (the rest of the datagram is the body) and after which extra bytes are
 * discarded; a TCP or TLS stream needs Content-Length on every message and
 * carries RFC 5626 CRLF keepalives between them. Nothing is allocated and
 * Content-Length is checked against SIPMSG_MAX_BYTES before any use. */
#ifndef SRTPBRIDGE_SIPFRAME_H
#define SRTPBRIDGE_SIPFRAME_H

#include <stdbool.h>
#include <stddef.h>

#include "srtpbridge/sipmsg.h"
#include "srtpbridge/slice.h"

/* One datagram: leading CR/LF bytes are skipped; a datagram of nothing else
 * is a keepalive and returns ENODATA (ignore it). Otherwise returns 0 with
 * *msg (borrowed from dgram: the start line to the end of the body that
 * Content-Length announces, later bytes discarded), or a refusal with
 * *status and why: EMSGSIZE/513 for more than SIPMSG_MAX_BYTES, EBADMSG/400
 * for a header with no empty line after it, a Content-Length that is not
 * 1*DIGIT or disagrees with a second one, or one beyond the datagram.
 * *status is 0 when the datagram holds a response: it is dropped, never
 * answered. */
int sipframe_datagram(struct slice dgram, struct slice *msg, int *status, char *why, size_t whysz);

/* What a stream remembers between calls, so that a header arriving one byte
 * at a time is scanned once, not once per byte. Zero it (or call
 * sipframe_stream_init) when the connection opens; the fields are private. */
struct sipframe_stream_state {
	size_t scanned;	  /* bytes of the current header searched for CRLFCRLF */
	size_t head_len;  /* header length once found, 0 before */
	size_t body_len;  /* its Content-Length */
	unsigned char ka; /* how much of a CRLFCRLF ping the last bytes matched */
};

void sipframe_stream_init(struct sipframe_stream_state *st);

/* Looks at the bytes buffered so far on a stream (buf, len: from where the
 * previous message ended). CR/LF bytes before a message are keepalives:
 * *skip says how many to drop from the front of buf, and *ping is true when
 * they completed a double-CRLF ping (RFC 5626 section 3.5.1), which the
 * caller answers with a single CRLF pong. Then:
 *   0          one complete message is buf[*skip .. *skip + *msg_len):
 *              drop both and call again, there may be more;
 *   EAGAIN     more bytes are needed (still drop *skip);
 *   EMSGSIZE   the header or header + body is over SIPMSG_MAX_BYTES;
 *   EBADMSG    Content-Length is missing (mandatory on a stream) or is not
 *              1*DIGIT, or two disagree: the framing is lost.
 * After EMSGSIZE or EBADMSG (why says which) the caller closes the
 * connection. The caller must drop exactly *skip (and on 0 *msg_len) bytes
 * before the next call, which resumes the scan where this one stopped. */
int sipframe_stream(struct sipframe_stream_state *st, const char *buf, size_t len, size_t *msg_len,
		    size_t *skip, bool *ping, char *why, size_t whysz);

#endif
