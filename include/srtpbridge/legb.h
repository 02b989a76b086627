/* legb.h: leg B's INVITE built from leg A's (DESIGN.md, "How data flows"
 * item 2). A pure function: what must be new (Call-ID, From tag, branch, our
 * Contact user) comes from the caller, so the same input gives the same
 * message.
 *
 * Topology hiding: of leg A only the Request-URI user, the From and To users
 * and display names, Max-Forwards (less one) and the headers named in the
 * destination trunk's pass_headers cross. Leg A's Via, Record-Route, Route,
 * Contact, Call-ID, tags, URI parameters and every other header stay behind.
 *
 * The header pulls in libosip2's, whose osip_const.h #defines bare names
 * such as VIA and CSEQ (see sipmsg.h). */
#ifndef SRTPBRIDGE_LEGB_H
#define SRTPBRIDGE_LEGB_H

#include <osipparser2/osip_parser.h>

#include "srtpbridge/config.h"

/* What the caller generates for leg B. All borrowed, all required. */
struct legb_ids {
	const char *call_id;	  /* word or word@word (RFC 3261 25.1) */
	const char *from_tag;	  /* a token */
	const char *branch;	  /* starts with z9hG4bK (8.1.1.7) */
	const char *contact_user; /* our Contact's user: RFC 3261 user characters, no escapes */
};

/* Builds leg B's INVITE to peer (one of to_trunk's peers) from a_invite:
 * - Request-URI sip:USER@PEER:PORT, USER leg A's Request-URI user with
 *   ;transport=tcp|tls unless the peer is UDP (a sip: URI even for TLS).
 *   libosip2 unescapes a user when it parses and escapes only what RFC 3261
 *   requires when it prints, so %2B goes out as '+': an equal URI (19.1.4),
 *   not the same bytes; a character that needs escaping stays escaped;
 * - one Via: SIP/2.0/<UDP|TCP|TLS> ADV:PORT;branch=<ids>;rport, where ADV is
 *   to_trunk's sip_advertise, else the host of its first listen address of
 *   the peer's transport, and PORT that listen address's port;
 * - From: leg A's display name and user at ADV, tag = ids' From tag;
 *   To: leg A's display name and user at the peer's host, no tag;
 * - Call-ID from ids, CSeq 1 INVITE, Max-Forwards leg A's minus one (70
 *   when leg A has none);
 * - Contact: <sip:CONTACT_USER@ADV:PORT[;transport=tcp|tls]>;
 * - every instance of each header named in pass_headers (names compared
 *   without case, values verbatim, in leg A's order) that libosip2 keeps as
 *   a generic header; names it keeps in lists of its own (Allow, Accept,
 *   Call-Info, Authorization...) are not copied, nor are Max-Forwards,
 *   Supported, Require and Proxy-Require (extensions are per hop: 100rel
 *   never reaches leg B);
 * - no body, Content-Length: 0 (the caller adds the SDP with sipmsg_set_body).
 * The text is parsed back with sipmsg_parse, so what comes out is valid.
 * Borrows everything; returns new *out (osip_message_free), or a refusal with
 * the status to answer leg A with and why (a static sentence):
 * ELOOP 483 (leg A's Max-Forwards is 0), EBADMSG 400 (it is not a number of
 * 0..255), EPROTONOSUPPORT 416 (a Request-URI that is not sip or sips),
 * EINVAL 500 (a NULL argument, an id or copied
 * value that cannot go in a header, no listen address of the peer's
 * transport), EBADMSG 500 (the result does not parse), ENOMEM 500. */
int legb_invite(osip_message_t **out, const osip_message_t *a_invite,
		const struct config_trunk *to_trunk, const struct sip_uri *peer,
		const struct legb_ids *ids, int *status, const char **why);

/* The headers of an in-dialog request from (a BYE: User-to-User and the
 * probe's account of what it heard travel on it) that to_trunk's
 * pass_headers names, added to to, by the rules legb_invite copies leg A's
 * by. Returns 0, EINVAL (a value that cannot go in a header: nothing more
 * is copied) or ENOMEM. */
int legb_pass_headers(osip_message_t *to, const osip_message_t *from,
		      const struct config_trunk *to_trunk);

/* Our Contact on trunk for transport tp, either leg: "<sip:USER@ADV:PORT>"
 * with ;transport=tcp|tls unless tp is UDP, where ADV:PORT is as for leg B's
 * Via above. user holds only RFC 3261 user characters. Returns 0, EINVAL (no
 * listen address of tp, a bad user) or ENOSPC. */
int legb_contact(char *buf, size_t size, const struct config_trunk *trunk, enum sip_transport tp,
		 const char *user);
/* Our Via for a request on trunk over tp: "SIP/2.0/<UDP|TCP|TLS>
 * ADV:PORT;branch=BRANCH;rport" (ADV:PORT as above). 0, EINVAL or ENOSPC. */
int legb_via(char *buf, size_t size, const struct config_trunk *trunk, enum sip_transport tp,
	     const char *branch);

#endif
