/* Framing of SIP messages on datagrams and streams (RFC 3261 18.3, RFC 5626
 * keepalives). Content-Length is found by sipmsg_content_length, the same
 * reading sipmsg_parse checks the message with. */
#include "srtpbridge/sipframe.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *find_head_end(const char *p, size_t n)
{
	const char *e = memmem(p, n, "\r\n\r\n", 4);

	return e ? e + 4 : NULL;
}

/* "9999", or "over 999999999" when the value saturated */
static const char *cl_text(char *buf, size_t size, size_t cl)
{
	if (cl >= SIPMSG_CL_SATURATED)
		snprintf(buf, size, "over %u", SIPMSG_CL_SATURATED - 1);
	else
		snprintf(buf, size, "%zu", cl);
	return buf;
}

int sipframe_datagram(struct slice dgram, struct slice *msg, int *status, char *why, size_t whysz)
{
	const char *p = dgram.p, *end = dgram.p + dgram.n, *head_end;
	size_t avail, cl;
	bool present;
	char num[24];
	int err;

	*status = 0;
	if (whysz)
		why[0] = '\0';
	while (p < end && (*p == '\r' || *p == '\n'))
		p++;
	if (dgram.n > SIPMSG_MAX_BYTES) {
		*status = 513;
		snprintf(why, whysz, "datagram of %zu bytes is over the %d-byte limit", dgram.n,
			 SIPMSG_MAX_BYTES);
		err = EMSGSIZE;
		goto refused;
	}
	if (p == end)
		return ENODATA;
	*status = 400;
	err = EBADMSG;
	head_end = find_head_end(p, (size_t)(end - p));
	if (!head_end) {
		snprintf(why, whysz, "the header does not end with an empty line");
		goto refused;
	}
	if (sipmsg_content_length((struct slice){ p, (size_t)(head_end - p) }, &present, &cl, why,
				  whysz))
		goto refused;
	avail = (size_t)(end - head_end);
	if (!present) {
		cl = avail; /* RFC 3261 18.3: on UDP, the rest of the datagram */
	} else if (cl > avail) {
		snprintf(why, whysz,
			 "Content-Length %s is beyond the %zu body bytes of the datagram",
			 cl_text(num, sizeof(num), cl), avail);
		goto refused;
	}
	*msg = (struct slice){ p, (size_t)(head_end - p) + cl };
	*status = 0;
	return 0;
refused:
	/* a response is never answered */
	if ((size_t)(end - p) >= 4 && strncasecmp(p, "SIP/", 4) == 0)
		*status = 0;
	return err;
}

void sipframe_stream_init(struct sipframe_stream_state *st)
{
	memset(st, 0, sizeof(*st));
}

int sipframe_stream(struct sipframe_stream_state *st, const char *buf, size_t len, size_t *msg_len,
		    size_t *skip, bool *ping, char *why, size_t whysz)
{
	static const char pingseq[] = "\r\n\r\n";
	size_t s = 0, n, from, limit;
	const char *head_end;
	char num[24];
	bool present;

	*skip = 0;
	*msg_len = 0;
	*ping = false;
	if (whysz)
		why[0] = '\0';
	/* Keepalive bytes before a message. st->ka carries a half-seen ping
	 * ("\r\n" now, "\r\n" in the next read) across calls. */
	if (st->head_len == 0 && st->scanned == 0) {
		while (s < len && (buf[s] == '\r' || buf[s] == '\n')) {
			if (buf[s] == pingseq[st->ka])
				st->ka++;
			else
				st->ka = buf[s] == '\r' ? 1 : 0;
			if (st->ka == 4) {
				*ping = true;
				st->ka = 0;
			}
			s++;
		}
		*skip = s;
		if (s == len)
			return EAGAIN;
		st->ka = 0;
	}
	buf += s;
	len -= s;
	if (st->head_len == 0) {
		/* resume three bytes back: the CRLFCRLF may straddle reads */
		from = st->scanned > 3 ? st->scanned - 3 : 0;
		limit = len < SIPMSG_MAX_BYTES ? len : SIPMSG_MAX_BYTES;
		head_end = from < limit ? find_head_end(buf + from, limit - from) : NULL;
		if (!head_end) {
			if (len >= SIPMSG_MAX_BYTES) {
				snprintf(why, whysz, "the header is over %d bytes",
					 SIPMSG_MAX_BYTES);
				return EMSGSIZE;
			}
			st->scanned = len;
			return EAGAIN;
		}
		n = (size_t)(head_end - buf);
		if (sipmsg_content_length((struct slice){ buf, n }, &present, &st->body_len, why,
					  whysz))
			return EBADMSG;
		if (!present) {
			snprintf(
				why, whysz,
				"Content-Length is missing (mandatory on a stream, RFC 3261 18.3)");
			return EBADMSG;
		}
		if (st->body_len > SIPMSG_MAX_BYTES || n + st->body_len > SIPMSG_MAX_BYTES) {
			snprintf(why, whysz,
				 "message of %zu header bytes and a Content-Length of %s is over "
				 "the %d-byte limit",
				 n, cl_text(num, sizeof(num), st->body_len), SIPMSG_MAX_BYTES);
			return EMSGSIZE;
		}
		st->head_len = n;
	}
	if (len < st->head_len + st->body_len)
		return EAGAIN;
	*msg_len = st->head_len + st->body_len;
	sipframe_stream_init(st);
	return 0;
}
