/* dialog.h: the state of one leg's dialog (RFC 3261 section 12) and the
 * requests built from it. No I/O: messages come in and go out as libosip2
 * osip_message_t, the transaction layer sends them.
 *
 * A dialog is identified by Call-ID, local tag and remote tag (12). The
 * Call-ID is compared byte by byte (8.1.1.4); tags are compared without
 * regard to case, as RFC 3261 7.3.1 makes parameter values case-insensitive
 * unless a header says otherwise, and From/To do not. A missing tag (an RFC
 * 2543 peer: 12.1.1 and 12.1.2 call it null) only matches a missing tag.
 *
 * The secure flag is set when the dialog-creating request's Request-URI is
 * a sips URI. RFC 3261 also asks that it arrived or left over TLS: this
 * module sees no transport, so the transport layer must refuse a sips
 * Request-URI that did not come over TLS before a dialog is made from it,
 * and must send every request of a secure dialog over TLS (12.2.1.1). A
 * secure dialog refuses a remote target that is not a sips URI (8.1.1.8:
 * a sips Request-URI asks for a sips Contact in the request and in its
 * dialog-creating responses), at creation and at every target refresh.
 *
 * The header pulls in libosip2's, whose osip_const.h #defines bare names
 * such as VIA and CSEQ (see sipmsg.h). */
#ifndef SRTPBRIDGE_DIALOG_H
#define SRTPBRIDGE_DIALOG_H

#include <stdbool.h>
#include <stdint.h>

#include <osipparser2/osip_parser.h>

struct dialog; /* defined in dialog.c */

enum dialog_state {
	DIALOG_EARLY = 0, /* made from a 1xx with a To tag, or a UAS's before its 2xx */
	DIALOG_CONFIRMED, /* a 2xx was received (UAC) or sent (UAS) */
	DIALOG_TERMINATED,
};

/* The UAC side (12.1.2), from our request req and a response resp to it: a
 * 101..199 with a To tag (early dialog) or a 2xx (confirmed; a null To tag is
 * taken). Call-ID, From tag and CSeq of resp must be req's. Route set = the
 * Record-Route values of resp in reverse order, remote target = the URI of
 * resp's only Contact, local tag = req's From tag, local CSeq = req's CSeq
 * number (the next request takes the one after), remote CSeq empty. Borrows
 * req and resp; returns new *out (dialog_destroy), or EINVAL (not a request
 * and a response to it, a status that makes no dialog, no From tag), EBADMSG
 * (no Contact, several, or one that is not a sip/sips URI, or a sip one in a
 * secure dialog: a dialog needs a remote target), ENOMEM. */
int dialog_create_uac(struct dialog **out, const osip_message_t *req, const osip_message_t *resp);

/* The UAS side (12.1.1), from a dialog-creating request req without a To
 * tag, before its first 101..299 response: route set = the Record-Route
 * values of req in order, remote target = the URI of req's only Contact,
 * remote tag = req's From tag (may be null), local tag = local_tag (a token,
 * also to go in the To of our responses), remote CSeq = req's, local CSeq
 * empty (our first request takes 1: 8.1.1.5 only asks for less than 2^31).
 * State early. Borrows req and local_tag; returns new *out, or EINVAL (not a
 * request, a To tag already there, local_tag not a token), EBADMSG (Contact
 * as for the UAC), ENOMEM. */
int dialog_create_uas(struct dialog **out, const osip_message_t *req, const char *local_tag);

/* 12.1.1 for a dialog-establishing response resp (101..299) to req: copies
 * every Record-Route value of req into resp, in order, replacing any resp
 * had, and puts the dialog's local tag in resp's To if it has none. Contact
 * stays the caller's: it names our own address. Borrows d and req; edits
 * resp. Returns 0, EINVAL (resp is not a 101..299 response, or its To tag is
 * not the dialog's), ENOMEM (resp may then have lost its Record-Route). */
int dialog_uas_response_headers(const struct dialog *d, const osip_message_t *req,
				osip_message_t *resp);

/* Whether m belongs to d: same Call-ID, and for a request To tag = local
 * tag and From tag = remote tag; for a response From tag = local tag and To
 * tag = remote tag. The state is not looked at. Borrows both. */
bool dialog_matches(const struct dialog *d, const osip_message_t *m);

/* 13.2.2.4 on the UAC side: the 2xx resp to the INVITE that made the early
 * dialog d confirms it; the route set is recomputed from resp's Record-Route
 * (12.1.2) and the remote target taken from its Contact. Borrows resp.
 * Returns 0, EINVAL (resp does not match d, is not a 2xx, or d is not early),
 * EBADMSG (Contact as for dialog_create_uac), ENOMEM; d is unchanged on
 * error. */
int dialog_uac_confirm(struct dialog *d, const osip_message_t *resp);

/* State changes the caller sees and this module does not: a UAS dialog is
 * confirmed when its 2xx is sent; any dialog ends with a BYE, a final
 * non-2xx response to an early dialog's INVITE, a 481 or a timeout (12.3,
 * 15). Returns 0, or EINVAL for a step back (terminated is final). */
int dialog_set_state(struct dialog *d, enum dialog_state state);

/* 12.2.1.1: a request within d, with a new CSeq (local CSeq + 1, or 1 when
 * empty). Request-URI and Route: with an empty route set or one whose first
 * URI has lr, Request-URI = remote target and Route = the route set in
 * order; else (a strict router first) Request-URI = the first route's URI
 * and Route = the rest, then the remote target. A Request-URI loses the
 * method parameter and headers component that 19.1.1 does not allow there.
 * From = local URI and tag, To = remote URI and tag, Call-ID, CSeq,
 * Max-Forwards 70, Content-Length 0. No Via (the transport adds it) and no
 * Contact (ours: a target refresh such as re-INVITE or UPDATE SHOULD carry
 * one, sips in a secure dialog). method is a token; ACK is dialog_ack's, and
 * CANCEL belongs to the INVITE's transaction, not to the dialog (9.1), so
 * both are EINVAL. Returns new *out (osip_message_free), or EINVAL,
 * ENOTCONN (d is terminated), EOVERFLOW (the CSeq would pass 2^32 - 1),
 * ENOMEM; the CSeq is only used up on success. */
int dialog_request(struct dialog *d, const char *method, osip_message_t **out);

/* 13.2.2.4: the ACK for the 2xx resp_2xx to invite (the dialog's INVITE or a
 * re-INVITE), built like dialog_request but with CSeq = invite's number and
 * method ACK (the local CSeq is not used), carrying invite's Authorization
 * and Proxy-Authorization. Borrows invite and resp_2xx; returns new *out, or
 * EINVAL (d not confirmed, invite not an INVITE, resp_2xx not a 2xx to it
 * or not of d), ENOMEM. */
int dialog_ack(const struct dialog *d, const osip_message_t *invite, const osip_message_t *resp_2xx,
	       osip_message_t **out);

/* 12.2.2 for a request req received within d, before it goes to its
 * handler. Returns 0 to go on, or a refusal with the status to answer and
 * why (a sentence; why may be NULL): ENOENT 481 (req is not of d, or d is
 * terminated), EBADMSG 500 (CSeq lower than the remote CSeq, except ACK and
 * CANCEL, which repeat their INVITE's) or 400 (no CSeq, or the Contact of a
 * target refresh is unusable), ENOMEM 500. On 0 the remote CSeq becomes
 * req's (ACK and CANCEL leave it) and a target refresh (INVITE, UPDATE)
 * carrying a Contact replaces the remote target; on a refusal d is
 * unchanged. An equal CSeq passes: RFC 3261 only refuses a lower one, and a
 * retransmission never gets here (the transaction layer absorbs it). */
int dialog_check_request(struct dialog *d, const osip_message_t *req, int *status,
			 const char **why);

/* Replaces the remote target with the URI of msg's Contact: a target refresh
 * request received (12.2.2) or a 2xx to one we sent (12.2.1.2). Returns 0,
 * ENOENT (no Contact: the target stays), EBADMSG (several Contacts, a '*' or
 * non-sip URI, or a sip URI in a secure dialog), ENOMEM; d is unchanged on
 * error. */
int dialog_refresh_target(struct dialog *d, const osip_message_t *msg);

/* Accessors; strings and URIs are borrowed from d, valid until it changes. */
const char *dialog_call_id(const struct dialog *d);
const char *dialog_local_tag(const struct dialog *d);
const char *dialog_remote_tag(const struct dialog *d); /* NULL: null tag */
const osip_uri_t *dialog_local_uri(const struct dialog *d);
const osip_uri_t *dialog_remote_uri(const struct dialog *d);
const osip_uri_t *dialog_remote_target(const struct dialog *d);
/* *value is the CSeq number; returns false while the sequence is empty */
bool dialog_local_cseq(const struct dialog *d, uint32_t *value);
bool dialog_remote_cseq(const struct dialog *d, uint32_t *value);
unsigned dialog_route_count(const struct dialog *d);
const osip_uri_t *dialog_route(const struct dialog *d, unsigned idx); /* NULL past the end */
bool dialog_is_uac(const struct dialog *d);
bool dialog_secure(const struct dialog *d);
enum dialog_state dialog_state(const struct dialog *d);

void dialog_destroy(struct dialog *d); /* NULL-safe */

#endif
