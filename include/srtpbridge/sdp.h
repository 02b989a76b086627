/* sdp.h: a strict, line-preserving SDP reader and a line writer (RFC 4566).
 *
 * libosip2's sdp_message regenerates every line in its own order and knows
 * nothing of a=crypto; an SBC must pass on what it does not understand
 * exactly as it came. So the reader only indexes the text: every line stays
 * a slice of the caller's buffer, and a rewrite copies the lines it keeps
 * and writes only the ones it changes. */
#ifndef SRTPBRIDGE_SDP_H
#define SRTPBRIDGE_SDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "srtpbridge/slice.h"

#define SDP_MAX_BYTES 16384
#define SDP_MAX_LINES 512
#define SDP_MAX_MEDIA 16

struct sdp_line {
	char type;	    /* 'v', 'o', 's', 'c', 'm', 'a', ... */
	struct slice value; /* what follows "x=", without the line end */
};

struct sdp_media {
	size_t line; /* index of its m= line */
	size_t end;  /* one past its last line */
	struct slice media, proto, fmts;
	uint16_t port;
	unsigned nports; /* the "/n" of "port/n", else 1 */
	size_t conn;	 /* index of the c= line that applies (its own or the session's) */
};

struct sdp {
	struct sdp_line lines[SDP_MAX_LINES];
	size_t nlines;
	struct sdp_media media[SDP_MAX_MEDIA];
	size_t nmedia;
	size_t session_end; /* index of the first m= line, or nlines */
	size_t origin;	    /* index of o= */
	struct slice o_user, o_sess_id, o_sess_version, o_addrtype, o_addr;
};

/* Indexes text, which must outlive s (s holds slices of it). Lines end in
 * CRLF or LF. Returns 0, or EBADMSG with a sentence in why. Checks RFC 4566's
 * order (v= o= s= first, t= before any m=), the fields of o=, c= and m=, and
 * that every m= section with a port has a connection address. */
int sdp_parse(struct sdp *s, struct slice text, char *why, size_t whysz);

/* a=name[:value] of line i; false if the line is not an attribute. */
bool sdp_attr(const struct sdp *s, size_t i, struct slice *name, struct slice *value);
/* The first attribute called name in lines [from, to); its index or -1. */
long sdp_find_attr(const struct sdp *s, size_t from, size_t to, const char *name,
		   struct slice *value);
/* The c= address of media m (address type "IP4"/"IP6" and address). */
void sdp_media_conn(const struct sdp *s, size_t m, struct slice *addrtype, struct slice *addr);

/* Writes lines into a caller's buffer; an overflow is sticky and reported at
 * the end, so a rewrite can write without checking every line. */
struct sdp_writer {
	char *buf;
	size_t size, n;
	bool overflow;
};

void sdp_writer_init(struct sdp_writer *w, char *buf, size_t size);
/* "x=value\r\n" */
void sdp_put(struct sdp_writer *w, char type, struct slice value);
void sdp_putf(struct sdp_writer *w, char type, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Returns the length written, or 0 on overflow (the buffer is then wiped:
 * it may hold keys). */
size_t sdp_writer_finish(struct sdp_writer *w);

#endif
