/* legb.c: leg B's INVITE from leg A's. The message is written as text and
 * parsed back with sipmsg_parse rather than assembled from libosip2 setters:
 * one readable template says what leg B gets, nothing of leg A can ride
 * along inside a cloned structure (URI or header parameters), and the parse
 * proves the result is valid SIP before anyone sends it. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "srtpbridge/legb.h"
#include "srtpbridge/sipmsg.h"

static const char *const tp_via[] = {
	[SIP_TP_UDP] = "UDP", [SIP_TP_TCP] = "TCP", [SIP_TP_TLS] = "TLS"
};
static const char *const tp_param[] = {
	[SIP_TP_UDP] = "", [SIP_TP_TCP] = ";transport=tcp", [SIP_TP_TLS] = ";transport=tls"
};

/* Anything copied into a header line must not end it early. */
static bool header_safe(const char *s)
{
	return s && !strpbrk(s, "\r\n");
}

static bool is_token(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr("-.!%*_+`'~", *s)))
			return false;
	return true;
}

/* An IPv6 literal goes in brackets in a URI or a Via sent-by (25.1). */
static void put_host(FILE *f, const char *host)
{
	fprintf(f, strchr(host, ':') ? "[%s]" : "%s", host);
}

/* RFC 3261 25.1 user = 1*( unreserved / escaped / user-unreserved ). */
static bool user_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("-_.!~*'()&=+$,;?/", c));
}

/* libosip2 keeps a URI user unescaped (%2B is held as '+') and prints it
 * with this same rule, so escaping what the grammar requires gives the user
 * that goes on the wire; RFC 3261 19.1.4 makes it equal to leg A's. */
static void put_user_escaped(FILE *f, const char *user)
{
	for (const unsigned char *p = (const unsigned char *)user; *p; p++) {
		if (user_char(*p))
			fputc(*p, f);
		else
			fprintf(f, "%%%02X", *p);
	}
}

/* name-addr of a From or To: leg A's display name and user at host. */
static void put_name_addr(FILE *f, const osip_from_t *h, const char *host)
{
	if (h->displayname && *h->displayname)
		fprintf(f, "%s ", h->displayname);
	fputs("<sip:", f);
	if (h->url && h->url->username && *h->url->username) {
		put_user_escaped(f, h->url->username);
		fputc('@', f);
	}
	put_host(f, host);
	fputc('>', f);
}

static bool listed(const struct config_trunk *t, const char *name)
{
	for (size_t i = 0; i < t->npass_headers; i++)
		if (strcasecmp(t->pass_headers[i], name) == 0)
			return true;
	return false;
}

/* Extensions are negotiated between each UA and srtpbridge, not end to end:
 * leg A's Supported (100rel, timer...) and Require never cross, even when an
 * operator names them in pass_headers, or leg B would be promised what
 * srtpbridge does not do (100rel: PRACK is not relayed). */
static bool hop_by_hop(const char *name)
{
	/* (session timers' headers cross, but the B2BUA writes them itself, so
	 * that pass_headers cannot copy them twice) */
	return strcasecmp(name, "Supported") == 0 || strcasecmp(name, "k") == 0 ||
	       strcasecmp(name, "Require") == 0 || strcasecmp(name, "Proxy-Require") == 0 ||
	       strcasecmp(name, "Session-Expires") == 0 || strcasecmp(name, "x") == 0 ||
	       strcasecmp(name, "Min-SE") == 0;
}

static int refuse(int *status, const char **why, int code, const char *sentence, int err)
{
	if (status)
		*status = code;
	if (why)
		*why = sentence;
	return err;
}

/* Leg A's Max-Forwards less one; 70 when absent (8.1.1.6). */
static int max_forwards(const osip_message_t *a, unsigned long *out, int *status, const char **why)
{
	const char *v = sipmsg_header_get(a, "Max-Forwards", 0);
	char *end;

	*out = 70;
	if (!v)
		return 0;
	while (*v == ' ' || *v == '\t')
		v++;
	if (*v < '0' || *v > '9')
		return refuse(status, why, 400, "Max-Forwards is not a number", EBADMSG);
	errno = 0;
	*out = strtoul(v, &end, 10);
	if (errno || *out > 255)
		return refuse(status, why, 400, "Max-Forwards is out of range", EBADMSG);
	/* 16.3 item 2: a request that would be forwarded with no hops left ends here */
	if (*out == 0)
		return refuse(status, why, 483, "Max-Forwards reached 0", ELOOP);
	(*out)--;
	return 0;
}

static const struct sip_uri *listen_for(const struct config_trunk *t, enum sip_transport tp)
{
	for (size_t i = 0; i < t->nlisten; i++)
		if (t->listen[i].transport == tp)
			return &t->listen[i];
	return NULL;
}

int legb_invite(osip_message_t **out, const osip_message_t *a_invite,
		const struct config_trunk *to_trunk, const struct sip_uri *peer,
		const struct legb_ids *ids, int *status, const char **why)
{
	const struct sip_uri *local;
	const osip_uri_t *ruri;
	const char *adv;
	char *buf = NULL, whybuf[SIPMSG_WHY_MAX];
	size_t len = 0;
	unsigned long mf;
	int err, pstatus = 0;
	FILE *f;

	if (status)
		*status = 0;
	if (why)
		*why = NULL;
	if (!out || !sipmsg_is_request(a_invite) || !to_trunk || !peer || !ids ||
	    peer->transport > SIP_TP_TLS || !a_invite->from || !a_invite->to)
		return refuse(status, why, 500, "missing leg A, trunk, peer or ids", EINVAL);
	if (!header_safe(ids->call_id) || !*ids->call_id || strpbrk(ids->call_id, " \t") ||
	    !is_token(ids->from_tag) || !is_token(ids->branch) ||
	    strncmp(ids->branch, "z9hG4bK", 7) != 0 || !ids->contact_user || !*ids->contact_user)
		return refuse(status, why, 500, "an id for leg B is not valid in a header", EINVAL);
	for (const char *p = ids->contact_user; *p; p++)
		if (!user_char((unsigned char)*p))
			return refuse(status, why, 500, "an id for leg B is not valid in a header",
				      EINVAL);
	ruri = a_invite->req_uri;
	if (!ruri || !ruri->scheme ||
	    (strcasecmp(ruri->scheme, "sip") != 0 && strcasecmp(ruri->scheme, "sips") != 0))
		return refuse(status, why, 416, "the Request-URI is not a sip or sips URI",
			      EPROTONOSUPPORT);
	err = max_forwards(a_invite, &mf, status, why);
	if (err)
		return err;
	local = listen_for(to_trunk, peer->transport);
	if (!local)
		return refuse(status, why, 500,
			      "the destination trunk listens on no address of the peer's transport",
			      EINVAL);
	adv = to_trunk->sip_advertise && *to_trunk->sip_advertise ? to_trunk->sip_advertise
								  : local->host;
	if (!header_safe(a_invite->from->displayname ? a_invite->from->displayname : "") ||
	    !header_safe(a_invite->to->displayname ? a_invite->to->displayname : ""))
		return refuse(status, why, 500, "a display name cannot be copied", EINVAL);

	f = open_memstream(&buf, &len);
	if (!f)
		return refuse(status, why, 500, "out of memory", ENOMEM);
	fputs("INVITE sip:", f);
	if (ruri->username && *ruri->username) {
		put_user_escaped(f, ruri->username);
		fputc('@', f);
	}
	put_host(f, peer->host);
	fprintf(f, ":%u%s SIP/2.0\r\n", peer->port, tp_param[peer->transport]);
	fprintf(f, "Via: SIP/2.0/%s ", tp_via[peer->transport]);
	put_host(f, adv);
	fprintf(f, ":%u;branch=%s;rport\r\n", local->port, ids->branch);
	fprintf(f, "Max-Forwards: %lu\r\n", mf);
	fputs("From: ", f);
	put_name_addr(f, a_invite->from, adv);
	fprintf(f, ";tag=%s\r\n", ids->from_tag);
	fputs("To: ", f);
	put_name_addr(f, a_invite->to, peer->host);
	fprintf(f, "\r\nCall-ID: %s\r\nCSeq: 1 INVITE\r\nContact: <sip:", ids->call_id);
	put_user_escaped(f, ids->contact_user);
	fputc('@', f);
	put_host(f, adv);
	fprintf(f, ":%u%s>\r\n", local->port, tp_param[peer->transport]);
	/* leg A's order: several Diversion values mean most recent first */
	for (int i = 0; i < osip_list_size(&a_invite->headers); i++) {
		const osip_header_t *h = osip_list_get(&a_invite->headers, i);

		if (!h || !h->hname || !listed(to_trunk, h->hname) ||
		    strcasecmp(h->hname, "Max-Forwards") == 0 || hop_by_hop(h->hname))
			continue;
		if (!header_safe(h->hvalue ? h->hvalue : "")) {
			fclose(f);
			free(buf);
			return refuse(status, why, 500, "a header to pass cannot be copied",
				      EINVAL);
		}
		fprintf(f, "%s: %s\r\n", h->hname, h->hvalue ? h->hvalue : "");
	}
	fputs("Content-Length: 0\r\n\r\n", f);
	err = ferror(f) ? ENOMEM : 0;
	if (fclose(f) || err) {
		free(buf);
		return refuse(status, why, 500, "out of memory", ENOMEM);
	}
	err = sipmsg_parse(out, (struct slice){ .p = buf, .n = len }, &pstatus, whybuf,
			   sizeof(whybuf));
	free(buf);
	if (err == ENOMEM)
		return refuse(status, why, 500, "out of memory", ENOMEM);
	if (err)
		return refuse(status, why, 500, "the INVITE built for leg B does not parse",
			      EBADMSG);
	return 0;
}

int legb_contact(char *buf, size_t size, const struct config_trunk *trunk, enum sip_transport tp,
		 const char *user)
{
	const struct sip_uri *local = tp <= SIP_TP_TLS ? listen_for(trunk, tp) : NULL;
	const char *adv;
	int n;

	if (!local || !user || !*user)
		return EINVAL;
	for (const char *p = user; *p; p++)
		if (!user_char((unsigned char)*p) || *p == '%')
			return EINVAL;
	adv = trunk->sip_advertise && *trunk->sip_advertise ? trunk->sip_advertise : local->host;
	n = snprintf(buf, size, strchr(adv, ':') ? "<sip:%s@[%s]:%u%s>" : "<sip:%s@%s:%u%s>", user,
		     adv, local->port, tp_param[tp]);
	return n < 0 || (size_t)n >= size ? ENOSPC : 0;
}

int legb_via(char *buf, size_t size, const struct config_trunk *trunk, enum sip_transport tp,
	     const char *branch)
{
	const struct sip_uri *local = tp <= SIP_TP_TLS ? listen_for(trunk, tp) : NULL;
	const char *adv;
	int n;

	if (!local || !is_token(branch) || strncmp(branch, "z9hG4bK", 7) != 0)
		return EINVAL;
	adv = trunk->sip_advertise && *trunk->sip_advertise ? trunk->sip_advertise : local->host;
	n = snprintf(buf, size,
		     strchr(adv, ':') ? "SIP/2.0/%s [%s]:%u;branch=%s;rport"
				      : "SIP/2.0/%s %s:%u;branch=%s;rport",
		     tp_via[tp], adv, local->port, branch);
	return n < 0 || (size_t)n >= size ? ENOSPC : 0;
}

int legb_pass_headers(osip_message_t *to, const osip_message_t *from,
		      const struct config_trunk *to_trunk)
{
	int err;

	if (!to || !from || !to_trunk)
		return EINVAL;
	for (int i = 0; i < osip_list_size(&from->headers); i++) {
		const osip_header_t *h = osip_list_get(&from->headers, i);

		if (!h || !h->hname || !listed(to_trunk, h->hname) ||
		    strcasecmp(h->hname, "Max-Forwards") == 0 || hop_by_hop(h->hname))
			continue;
		if (!header_safe(h->hvalue ? h->hvalue : ""))
			return EINVAL;
		err = sipmsg_header_add(to, h->hname, h->hvalue ? h->hvalue : "");
		if (err)
			return err;
	}
	return 0;
}
