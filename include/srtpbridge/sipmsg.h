/* sipmsg.h: SIP messages over libosip2 5.3 (parse, check, build responses,
 * serialise), with libosip2's ownership traps kept inside src/sip/sipmsg.c:
 * setters that take osip_malloc'd strings, osip_free being a braces macro,
 * the cached serialisation that direct field edits leave stale, and
 * osip_message_set_content_type refusing to overwrite.
 *
 * Untrusted bytes are read in two steps. sipmsg_precheck() makes one pass over
 * the raw bytes before anything that grows with the input is allocated and
 * enforces the caps below; sipmsg_parse() then adds what libosip2 does not
 * check (RFC 3261 mandatory headers, CSeq against the method, scalar ranges,
 * Content-Length against the body, name-addr syntax...) so that the RFC 4475
 * torture messages get the outcome the RFC asks for.
 *
 * Refusals say why in a sentence and carry the status to answer with: 400,
 * 416, 505 or 513; 0 when no response may be sent because the refused message
 * is itself a response (RFC 3261 never answers a response: it is dropped).
 * Framing (UDP datagrams, TCP/TLS streams) is sipframe.h's job.
 *
 * This header pulls in libosip2's, whose osip_const.h #defines VIA, FROM, TO,
 * CSEQ and other bare names: keep them out of code that includes it. */
#ifndef SRTPBRIDGE_SIPMSG_H
#define SRTPBRIDGE_SIPMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <osipparser2/osip_parser.h>

#include "srtpbridge/slice.h"

#define SIPMSG_MAX_BYTES     65536 /* a whole message, header and body */
#define SIPMSG_MAX_LINE	     8192  /* one physical line, CRLF excluded */
#define SIPMSG_MAX_LINES     256   /* physical header lines, start line excluded */
#define SIPMSG_MAX_VIAS	     64	   /* Via values, comma-separated ones counted */
#define SIPMSG_MAX_SAME_NAME 64	   /* header fields of any one name (compact = long) */
#define SIPMSG_WARNING_MAX   200   /* characters of Warning text we send */
#define SIPMSG_WHY_MAX	     160   /* a refusal's sentence fits in this */

/* Why SIPMSG_MAX_VIAS is 64 and not 32: RFC 4475 section 3.1.1.7 (longreq),
 * a message every parser must accept, carries 34 Via values. 64 is still far
 * below what the 64 KiB and 256-line caps would let through. */

enum sipmsg_transport {
	SIPMSG_TP_UNKNOWN = 0, /* a transport we do not speak, e.g. "UNKNOWN" */
	SIPMSG_TP_UDP,
	SIPMSG_TP_TCP,
	SIPMSG_TP_TLS,
	SIPMSG_TP_SCTP,
	SIPMSG_TP_WS,
	SIPMSG_TP_WSS,
};

/* The top Via of a message. Pointers are borrowed from the message: valid
 * until it is modified or freed. */
struct sipmsg_via {
	const char *host; /* sent-by host; an IPv6 address without brackets */
	uint16_t port;	  /* sent-by port; 0 when absent */
	enum sipmsg_transport transport;
	const char *transport_name; /* as written: "UDP", "TLS", "SCTP"... */
	const char *branch;	    /* NULL when absent (RFC 2543 peers) */
	const char *received;	    /* NULL when absent */
	bool rport;		    /* an rport parameter is present (RFC 3581) */
	uint16_t rport_value;	    /* 0 while it has no value */
};

/* One pass over raw, allocating nothing: size (> SIPMSG_MAX_BYTES: 513
 * Message Too Large), CRLF line ends (no bare CR or LF), the length of each
 * header line, the number of header lines, Via values, fields of one name, NUL
 * bytes (only a quoted-pair NUL inside a quoted string is allowed, as in RFC
 * 4475 3.1.1.2), an empty line ending the header, and the start line
 * (Request-Line or Status-Line syntax; SIP/2.0 else 505; sip, sips or tel
 * Request-URI else 416). Leading CR/LF bytes are skipped. Content-Length is
 * never used here. Returns 0, or EMSGSIZE/EBADMSG with *status and why (a
 * sentence, NUL-terminated, truncated to whysz). */
int sipmsg_precheck(struct slice raw, int *status, char *why, size_t whysz);

/* sipmsg_precheck, then the checks libosip2 does not make, then libosip2's
 * parse. raw is exactly one message (sipframe.h cuts it): bytes after the
 * body that Content-Length announces are refused here, not ignored. The body
 * is never parsed by libosip2 (its body parser leaks and has had overflows):
 * it is kept as one opaque osip_body_t of the bytes received. Returns new
 * *out (free it with osip_message_free) or EBADMSG/EMSGSIZE with *status
 * (400, 416, 505, 513, or 0 for a response: drop it) and why, or ENOMEM
 * (status 500). */
int sipmsg_parse(osip_message_t **out, struct slice raw, int *status, char *why, size_t whysz);

/* Builds the error response for a request that sipmsg_parse refused with
 * status (400..699), from the raw bytes alone: their Via, From, To, Call-ID
 * and CSeq fields are read (the start line and the rest are ignored, since
 * they may be what was wrong), and why goes out as the Warning text. to_tag
 * as for sipmsg_response. Returns new *out; ENOENT when raw lacks one of
 * those fields in a form libosip2 reads, EBADMSG when raw breaks one of the
 * precheck's caps (then it is not read at all: drop it), EINVAL for a status
 * out of range or a response in raw. */
int sipmsg_refusal(osip_message_t **out, struct slice raw, int status, const char *why,
		   const char *to_tag);

/* The same refusal when libosip2 cannot read those fields (RFC 4475 3.1.2.1,
 * 3.1.2.6, 3.1.2.14, 3.1.2.15 want a 400 all the same): the Via, From, To,
 * Call-ID and CSeq header lines are copied as they came, folded lines
 * included, a tag is added to To when it has none, and why goes out as the
 * Warning. It goes back to the sender only, and only after sipmsg_precheck
 * has bounded those lines. Returns a malloc'd buffer in *buf (free it), or
 * ENOENT when a line is missing, EBADMSG when raw breaks a cap, EINVAL. */
int sipmsg_refusal_text(char **buf, size_t *len, struct slice raw, int status, const char *why,
			const char *to_tag);

/* Builds a response to req per RFC 3261 8.2.6: every Via in order, From,
 * To, Call-ID, CSeq, a Timestamp copied into a 100 (8.2.6.1), no Contact, no
 * body (Content-Length: 0). reason NULL means the standard phrase. to_tag is
 * added when To has no tag, never to a 100; NULL adds none. warning, unless
 * NULL, becomes "Warning: 399 srtpbridge "TEXT"" with '"' and '\' escaped,
 * control and non-ASCII bytes replaced by '?' and TEXT cut at
 * SIPMSG_WARNING_MAX characters. Borrows req; returns new *out, or EINVAL
 * (not a request, status out of 100..699, CR/LF in reason, a to_tag that is
 * not a token) or ENOMEM. */
int sipmsg_response(osip_message_t **out, const osip_message_t *req, int status, const char *reason,
		    const char *to_tag, const char *warning);

/* RFC 3261 9.1: the CANCEL of invite (a request we sent): Request-URI, the
 * top Via (its branch), From, To, Call-ID and Route as they were, CSeq with
 * the same number and method CANCEL, Max-Forwards 70, no body. Borrows
 * invite; returns new *out, or EINVAL (not an INVITE with a Via and CSeq)
 * or ENOMEM. */
int sipmsg_cancel(osip_message_t **out, const osip_message_t *invite);

/* RFC 3261 18.2.1 and RFC 3581 on the top Via of a received request: adds
 * received=<source address> when the sent-by host is not that address, and
 * always when rport is present; fills an empty rport with the source port.
 * A received or rport value already there (the peer's own) is replaced by
 * what we saw, so responses go where the request came from. Returns 0, ENOENT (no
 * Via), EINVAL (not a request), EAFNOSUPPORT (src is not IPv4/IPv6), ENOMEM. */
int sipmsg_fix_via(osip_message_t *req, const struct sockaddr *src, socklen_t len);

/* Where a response goes (RFC 3261 18.2.2, RFC 3581 section 4), from its top
 * Via: received with the rport value when both are there, received with the
 * sent-by port when only received is, else the sent-by host and port; a
 * missing port is 5060, or 5061 for TLS (and WSS). maddr is ignored: an SBC
 * does not let a peer aim responses elsewhere. A response over TCP/TLS goes
 * back on its connection while it is open; this is the address for when it
 * is not. host gets an IP address or a name, IPv6 without brackets. Returns
 * 0, ENOENT (no Via), ENOSPC (host too small), EBADMSG (a port that is not
 * 1..65535). */
int sipmsg_response_dest(const osip_message_t *resp, char *host, size_t hsize, uint16_t *port,
			 enum sipmsg_transport *transport);

/* Serialises m (libosip2 reorders headers, expands compact names and writes
 * Content-Length from the body). A multipart body is kept as the bytes
 * received (libosip2 would cut binary parts at their first NUL) and written
 * as it is. Returns new *buf, malloc'd and NUL-terminated (free() it, not
 * osip_free), with *len bytes before that NUL (a binary body may hold
 * others); EBADMSG when libosip2 cannot print m, ENOMEM. */
int sipmsg_serialize(osip_message_t *m, char **buf, size_t *len);

/* m's body as received (one opaque part, see sipmsg_parse): *p and *n
 * borrow it. false, and *p and *n untouched, when there is none or it is
 * empty. */
bool sipmsg_body(const osip_message_t *m, const char **p, size_t *n);

/* Replaces m's body and Content-Type (content_type is a header value such
 * as "application/sdp"); len 0 removes both (content_type may be NULL then).
 * Content-Length follows. The body is copied and may hold any bytes; a
 * multipart one is taken as it is, boundaries included. Returns 0, EINVAL (a
 * type that does not parse or holds CR/LF) or ENOMEM; on error m is
 * unchanged. */
int sipmsg_set_body(osip_message_t *m, const char *content_type, const char *body, size_t len);

/* Extension headers, by name (case-insensitive). libosip2 keeps some
 * headers in fields or lists of their own, out of these functions' sight:
 * add refuses (EINVAL) those a transaction or dialog reads from those fields
 * (Via, From, To, Call-ID, CSeq, Contact, Route, Record-Route, Content-Type,
 * Content-Length, MIME-Version, compact forms too), which have setters of
 * their own, but takes list headers such as Allow (one more line of them is
 * harmless); remove and get see only the headers libosip2 keeps as generic
 * ones (Require, Supported, Reason, P-Asserted-Identity...) and refuse (EINVAL,
 * NULL) the names it keeps elsewhere (Allow, Accept, Authorization... too).
 * add copies name (a token) and value (no CR or LF) and appends. remove
 * deletes every field of that name and counts them in *removed (may be
 * NULL). get returns the value of the idx-th field of that name (borrowed)
 * or NULL. */
int sipmsg_header_add(osip_message_t *m, const char *name, const char *value);
int sipmsg_header_remove(osip_message_t *m, const char *name, unsigned *removed);
const char *sipmsg_header_get(const osip_message_t *m, const char *name, unsigned idx);

/* Accessors. Strings are borrowed from m: valid until it is modified or
 * freed. */
bool sipmsg_is_request(const osip_message_t *m);
const char *sipmsg_method(const osip_message_t *m); /* NULL for a response */
int sipmsg_status(const osip_message_t *m);	    /* 0 for a request */
unsigned sipmsg_via_count(const osip_message_t *m);
int sipmsg_top_via(const osip_message_t *m, struct sipmsg_via *out); /* 0, ENOENT, EBADMSG */
const char *sipmsg_branch(const osip_message_t *m); /* top Via branch; NULL when none */
int sipmsg_cseq(const osip_message_t *m, uint32_t *number,
		const char **method); /* method may be NULL */
/* Call-ID as written (libosip2 keeps it in two halves around '@'), copied
 * into buf: 0, ENOENT or ENOSPC. */
int sipmsg_call_id(const osip_message_t *m, char *buf, size_t size);
const char *sipmsg_from_tag(const osip_message_t *m); /* NULL when none */
const char *sipmsg_to_tag(const osip_message_t *m);   /* NULL when none */

/* Finds Content-Length (or its compact form l) among the header fields of
 * head: a start line followed by header lines, up to the empty line (what
 * comes after is not looked at). Works on unchecked bytes, for framing.
 * Returns 0 with *present and *value (saturated at SIPMSG_CL_SATURATED, far
 * beyond any message we take), or EBADMSG with why: a value that is not
 * 1*DIGIT (negative, empty, text) or two fields that disagree. */
#define SIPMSG_CL_SATURATED 1000000000u
int sipmsg_content_length(struct slice head, bool *present, size_t *value, char *why, size_t whysz);

#endif
