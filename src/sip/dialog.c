/* dialog.c: RFC 3261 section 12 dialog state, over libosip2 structures.
 * Headers are kept as libosip2 clones (a From/To value is a name-addr with
 * its parameters, a route an osip_route_t) so that requests are built from
 * clones again and never from reprinted text. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "srtpbridge/dialog.h"
#include "srtpbridge/sipmsg.h"

struct dialog {
	osip_call_id_t *call_id;
	char *call_id_str;  /* as written, for dialog_call_id() */
	osip_from_t *local; /* From of our requests: local URI and tag */
	osip_to_t *remote;  /* To of our requests: remote URI and tag (may lack one) */
	osip_uri_t *target; /* remote target: the peer's Contact URI */
	osip_route_t **routes;
	unsigned nroutes;
	uint32_t local_cseq, remote_cseq;
	bool local_cseq_set, remote_cseq_set; /* 12.1.1 and 12.1.2 start one empty */
	bool uac, secure;
	enum dialog_state state;
};

/* ---- small helpers ---- */

static bool is_token_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       strchr("-.!%*_+`'~", c) != NULL;
}

static bool is_token(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++)
		if (!is_token_char((unsigned char)*s))
			return false;
	return true;
}

static const char *tag_of(const osip_from_t *h)
{
	if (!h)
		return NULL;
	for (int i = 0; i < osip_list_size(&h->gen_params); i++) {
		const osip_generic_param_t *p = osip_list_get(&h->gen_params, i);

		if (p && p->gname && strcasecmp(p->gname, "tag") == 0)
			return p->gvalue;
	}
	return NULL;
}

/* Tags are case-insensitive (7.3.1); a null tag only equals a null tag. */
static bool tag_eq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcasecmp(a, b) == 0;
}

static bool str_eq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

/* Call-IDs compare byte by byte (8.1.1.4); libosip2 splits them at '@'. */
static bool call_id_eq(const osip_call_id_t *a, const osip_call_id_t *b)
{
	return a && b && str_eq(a->number, b->number) && str_eq(a->host, b->host);
}

static bool uri_is(const osip_uri_t *u, const char *scheme)
{
	return u && u->scheme && strcasecmp(u->scheme, scheme) == 0;
}

static int tag_add(osip_from_t *h, const char *tag)
{
	char *name = osip_strdup("tag"), *value = osip_strdup(tag);

	if (name && value && osip_generic_param_add(&h->gen_params, name, value) == OSIP_SUCCESS)
		return 0;
	/* osip_uri_param_add fails before it takes them (its init failed) */
	osip_free(name);
	osip_free(value);
	return ENOMEM;
}

static void routes_free(osip_route_t **r, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (r[i])
			osip_route_free(r[i]);
	free(r);
}

/* The route set from the Record-Route values of m, reversed for a UAC
 * (12.1.2: they come back in the order the proxies were traversed from us)
 * or in order for a UAS (12.1.1). A record-route is a route in libosip2. */
static int routes_from(const osip_message_t *m, bool reverse, osip_route_t ***out, unsigned *nout)
{
	int n = osip_list_size(&m->record_routes);
	osip_route_t **r;

	*out = NULL;
	*nout = 0;
	if (n <= 0)
		return 0;
	r = calloc((size_t)n, sizeof(*r));
	if (!r)
		return ENOMEM;
	for (int i = 0; i < n; i++) {
		const osip_record_route_t *rr =
			osip_list_get(&m->record_routes, reverse ? n - 1 - i : i);

		int err = !rr || !rr->url ? EBADMSG : 0;

		if (!err && osip_from_clone(rr, &r[i]) != OSIP_SUCCESS)
			err = ENOMEM;
		if (err) {
			routes_free(r, (unsigned)n);
			return err;
		}
	}
	*out = r;
	*nout = (unsigned)n;
	return 0;
}

/* The remote target from m's Contact (12.1.1, 12.1.2, 12.2): 12.1 asks for
 * exactly one sip or sips URI in a dialog-creating message, and 8.1.1.8 a
 * sips one where the dialog is secure. ENOENT when there is none. */
static int contact_target(const osip_message_t *m, bool secure, osip_uri_t **out)
{
	const osip_contact_t *c;

	if (osip_list_size(&m->contacts) <= 0)
		return ENOENT;
	if (osip_list_size(&m->contacts) > 1)
		return EBADMSG;
	c = osip_list_get(&m->contacts, 0);
	if (!c || !c->url || !c->url->host || !*c->url->host) /* '*' has no URL */
		return EBADMSG;
	if (!uri_is(c->url, "sips") && (secure || !uri_is(c->url, "sip")))
		return EBADMSG;
	return osip_uri_clone(c->url, out) == OSIP_SUCCESS ? 0 : ENOMEM;
}

static int contact_target_required(const osip_message_t *m, bool secure, osip_uri_t **out)
{
	int err = contact_target(m, secure, out);

	return err == ENOENT ? EBADMSG : err;
}

static int call_id_init(struct dialog *d, const osip_message_t *m)
{
	size_t n;

	if (osip_call_id_clone(m->call_id, &d->call_id) != OSIP_SUCCESS)
		return ENOMEM;
	n = strlen(d->call_id->number) + (d->call_id->host ? strlen(d->call_id->host) + 1 : 0) + 1;
	d->call_id_str = malloc(n);
	if (!d->call_id_str)
		return ENOMEM;
	return sipmsg_call_id(m, d->call_id_str, n);
}

static bool has_ids(const osip_message_t *m)
{
	return m && m->from && m->to && m->call_id && m->call_id->number && m->cseq;
}

/* ---- creation ---- */

int dialog_create_uac(struct dialog **out, const osip_message_t *req, const osip_message_t *resp)
{
	struct dialog *d = NULL;
	uint32_t qn, rn;
	const char *qm, *rm;
	int status, err;

	if (!out || !sipmsg_is_request(req) || !resp || sipmsg_is_request(resp) || !has_ids(req) ||
	    !has_ids(resp) || !req->req_uri)
		return EINVAL;
	status = sipmsg_status(resp);
	/* 12.1.2: a 1xx without a To tag makes no dialog, a 2xx without one
	 * makes one with a null remote tag; 100 is hop by hop */
	if (!((status > 100 && status < 200 && tag_of(resp->to)) ||
	      (status >= 200 && status < 300)))
		return EINVAL;
	if (!tag_of(req->from) || !tag_eq(tag_of(req->from), tag_of(resp->from)) ||
	    !call_id_eq(req->call_id, resp->call_id))
		return EINVAL;
	if (sipmsg_cseq(req, &qn, &qm) || sipmsg_cseq(resp, &rn, &rm) || qn != rn || strcmp(qm, rm))
		return EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return ENOMEM;
	d->uac = true;
	d->secure = uri_is(req->req_uri, "sips");
	d->state = status < 200 ? DIALOG_EARLY : DIALOG_CONFIRMED;
	d->local_cseq = qn;
	d->local_cseq_set = true;
	err = contact_target_required(resp, d->secure, &d->target);
	if (err)
		goto out;
	err = ENOMEM;
	if (osip_from_clone(req->from, &d->local) != OSIP_SUCCESS ||
	    osip_to_clone(resp->to, &d->remote) != OSIP_SUCCESS)
		goto out;
	err = call_id_init(d, req);
	if (err)
		goto out;
	err = routes_from(resp, true, &d->routes, &d->nroutes);
out:
	if (err)
		dialog_destroy(d);
	else
		*out = d;
	return err;
}

int dialog_create_uas(struct dialog **out, const osip_message_t *req, const char *local_tag)
{
	struct dialog *d = NULL;
	const char *method;
	uint32_t n;
	int err;

	if (!out || !sipmsg_is_request(req) || !has_ids(req) || !req->req_uri ||
	    !is_token(local_tag) || tag_of(req->to) || sipmsg_cseq(req, &n, &method))
		return EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return ENOMEM;
	d->secure = uri_is(req->req_uri, "sips");
	d->state = DIALOG_EARLY;
	d->remote_cseq = n;
	d->remote_cseq_set = true;
	err = contact_target_required(req, d->secure, &d->target);
	if (err)
		goto out;
	err = ENOMEM;
	if (osip_to_clone(req->to, &d->local) != OSIP_SUCCESS ||
	    osip_from_clone(req->from, &d->remote) != OSIP_SUCCESS)
		goto out;
	err = tag_add(d->local, local_tag);
	if (err)
		goto out;
	err = call_id_init(d, req);
	if (err)
		goto out;
	err = routes_from(req, false, &d->routes, &d->nroutes);
out:
	if (err)
		dialog_destroy(d);
	else
		*out = d;
	return err;
}

void dialog_destroy(struct dialog *d)
{
	if (!d)
		return;
	if (d->call_id)
		osip_call_id_free(d->call_id);
	free(d->call_id_str);
	if (d->local)
		osip_from_free(d->local);
	if (d->remote)
		osip_to_free(d->remote);
	if (d->target)
		osip_uri_free(d->target);
	routes_free(d->routes, d->nroutes);
	free(d);
}

int dialog_uas_response_headers(const struct dialog *d, const osip_message_t *req,
				osip_message_t *resp)
{
	const char *have;
	osip_list_t rr;
	int status, err = 0;

	if (!d || d->uac || !sipmsg_is_request(req) || !resp || sipmsg_is_request(resp) ||
	    !resp->to || !req->call_id || !call_id_eq(d->call_id, req->call_id))
		return EINVAL;
	status = sipmsg_status(resp);
	if (status <= 100 || status >= 300)
		return EINVAL;
	have = tag_of(resp->to);
	if (have && !tag_eq(have, tag_of(d->local)))
		return EINVAL;
	/* built aside so that resp keeps its own on ENOMEM */
	osip_list_init(&rr);
	for (int i = 0; i < osip_list_size(&req->record_routes); i++) {
		osip_record_route_t *c = NULL;

		if (osip_record_route_clone(osip_list_get(&req->record_routes, i), &c) !=
		    OSIP_SUCCESS) {
			err = ENOMEM;
			break;
		}
		if (osip_list_add(&rr, c, -1) < 0) {
			osip_record_route_free(c);
			err = ENOMEM;
			break;
		}
	}
	if (!err && !have)
		err = tag_add(resp->to, tag_of(d->local));
	if (err) {
		osip_list_special_free(&rr, (void (*)(void *))osip_record_route_free);
		return err;
	}
	osip_list_special_free(&resp->record_routes, (void (*)(void *))osip_record_route_free);
	resp->record_routes = rr;
	osip_message_force_update(resp);
	return 0;
}

/* ---- matching and state ---- */

bool dialog_matches(const struct dialog *d, const osip_message_t *m)
{
	const char *ours, *theirs;

	if (!d || !has_ids(m) || !call_id_eq(d->call_id, m->call_id))
		return false;
	if (sipmsg_is_request(m)) {
		ours = tag_of(m->to);
		theirs = tag_of(m->from);
	} else {
		ours = tag_of(m->from);
		theirs = tag_of(m->to);
	}
	return tag_eq(ours, tag_of(d->local)) && tag_eq(theirs, tag_of(d->remote));
}

int dialog_uac_confirm(struct dialog *d, const osip_message_t *resp)
{
	osip_route_t **routes = NULL;
	osip_uri_t *target = NULL;
	unsigned nroutes = 0;
	int status, err;

	if (!d || !d->uac || d->state != DIALOG_EARLY || !resp || sipmsg_is_request(resp) ||
	    !dialog_matches(d, resp) ||
	    strcmp(resp->cseq->method ? resp->cseq->method : "", "INVITE"))
		return EINVAL;
	status = sipmsg_status(resp);
	if (status < 200 || status >= 300)
		return EINVAL;
	err = contact_target_required(resp, d->secure, &target);
	if (err)
		return err;
	err = routes_from(resp, true, &routes, &nroutes);
	if (err) {
		osip_uri_free(target);
		return err;
	}
	osip_uri_free(d->target);
	d->target = target;
	routes_free(d->routes, d->nroutes);
	d->routes = routes;
	d->nroutes = nroutes;
	d->state = DIALOG_CONFIRMED;
	return 0;
}

int dialog_set_state(struct dialog *d, enum dialog_state state)
{
	if (!d || state < d->state || state > DIALOG_TERMINATED)
		return EINVAL;
	d->state = state;
	return 0;
}

int dialog_refresh_target(struct dialog *d, const osip_message_t *msg)
{
	osip_uri_t *target = NULL;
	int err;

	if (!d || !msg)
		return EINVAL;
	err = contact_target(msg, d->secure, &target);
	if (err)
		return err;
	osip_uri_free(d->target);
	d->target = target;
	return 0;
}

/* ---- requests ---- */

/* 19.1.1's table allows neither the method parameter nor headers in a
 * Request-URI: a route or Contact URI may carry them. */
static int request_uri(const osip_uri_t *from, osip_uri_t **out)
{
	osip_uri_t *u = NULL;

	if (osip_uri_clone(from, &u) != OSIP_SUCCESS)
		return ENOMEM;
	for (int i = osip_list_size(&u->url_params) - 1; i >= 0; i--) {
		osip_uri_param_t *p = osip_list_get(&u->url_params, i);

		if (p && p->gname && strcasecmp(p->gname, "method") == 0) {
			osip_list_remove(&u->url_params, i);
			osip_uri_param_free(p);
		}
	}
	osip_uri_header_freelist(&u->url_headers);
	*out = u;
	return 0;
}

static bool is_loose(const osip_route_t *r)
{
	if (!r->url)
		return false;
	for (int i = 0; i < osip_list_size(&r->url->url_params); i++) {
		const osip_uri_param_t *p = osip_list_get(&r->url->url_params, i);

		if (p && p->gname && strcasecmp(p->gname, "lr") == 0)
			return true;
	}
	return false;
}

static int route_add(osip_message_t *m, const osip_route_t *r)
{
	osip_route_t *c = NULL;

	if (osip_route_clone(r, &c) != OSIP_SUCCESS)
		return ENOMEM;
	if (osip_list_add(&m->routes, c, -1) < 0) {
		osip_route_free(c);
		return ENOMEM;
	}
	return 0;
}

/* The remote target as the last Route value of a strict-routed request. */
static int route_add_uri(osip_message_t *m, const osip_uri_t *u)
{
	osip_route_t *r = NULL;
	int err;

	if (osip_route_init(&r) != OSIP_SUCCESS)
		return ENOMEM;
	if (osip_uri_clone(u, &r->url) != OSIP_SUCCESS) {
		osip_route_free(r);
		return ENOMEM;
	}
	err = route_add(m, r);
	osip_route_free(r);
	return err;
}

/* 12.2.1.1: Request-URI, Route, From, To, Call-ID, CSeq, Max-Forwards. */
static int build(const struct dialog *d, const char *method, uint32_t cseq, osip_message_t **out)
{
	osip_message_t *m = NULL;
	osip_uri_t *ruri = NULL;
	char buf[16 + 64];
	bool strict = d->nroutes > 0 && !is_loose(d->routes[0]);
	char *s;
	int err = ENOMEM;

	if (snprintf(buf, sizeof(buf), "%lu %s", (unsigned long)cseq, method) >= (int)sizeof(buf))
		return EINVAL;
	if (osip_message_init(&m) != OSIP_SUCCESS)
		return ENOMEM;
	s = osip_strdup(method);
	if (!s)
		goto out;
	osip_message_set_method(m, s);
	s = osip_strdup("SIP/2.0");
	if (!s)
		goto out;
	osip_message_set_version(m, s);
	/* a strict router wants itself as the Request-URI and the target last */
	err = request_uri(strict ? d->routes[0]->url : d->target, &ruri);
	if (err)
		goto out;
	osip_message_set_uri(m, ruri);
	for (unsigned i = strict ? 1 : 0; i < d->nroutes; i++) {
		err = route_add(m, d->routes[i]);
		if (err)
			goto out;
	}
	if (strict) {
		err = route_add_uri(m, d->target);
		if (err)
			goto out;
	}
	err = ENOMEM;
	if (osip_from_clone(d->local, &m->from) != OSIP_SUCCESS ||
	    osip_to_clone(d->remote, &m->to) != OSIP_SUCCESS ||
	    osip_call_id_clone(d->call_id, &m->call_id) != OSIP_SUCCESS ||
	    osip_message_set_cseq(m, buf) != OSIP_SUCCESS ||
	    osip_message_set_max_forwards(m, "70") != OSIP_SUCCESS ||
	    osip_message_set_content_length(m, "0") != OSIP_SUCCESS)
		goto out;
	osip_message_force_update(m);
	err = 0;
out:
	if (err)
		osip_message_free(m);
	else
		*out = m;
	return err;
}

int dialog_request(struct dialog *d, const char *method, osip_message_t **out)
{
	uint32_t next;
	int err;

	if (!d || !out || !is_token(method) || strlen(method) > 64 || !strcmp(method, "ACK") ||
	    !strcmp(method, "CANCEL"))
		return EINVAL;
	if (d->state == DIALOG_TERMINATED)
		return ENOTCONN;
	if (d->local_cseq_set && d->local_cseq == UINT32_MAX)
		return EOVERFLOW;
	/* 12.2.1.1: an empty local sequence starts as 8.1.1.5 allows */
	next = d->local_cseq_set ? d->local_cseq + 1 : 1;
	err = build(d, method, next, out);
	if (err)
		return err;
	d->local_cseq = next;
	d->local_cseq_set = true;
	return 0;
}

static int auth_copy(osip_list_t *to, const osip_list_t *from)
{
	for (int i = 0; i < osip_list_size(from); i++) {
		osip_authorization_t *c = NULL;

		if (osip_authorization_clone(osip_list_get(from, i), &c) != OSIP_SUCCESS)
			return ENOMEM;
		if (osip_list_add(to, c, -1) < 0) {
			osip_authorization_free(c);
			return ENOMEM;
		}
	}
	return 0;
}

int dialog_ack(const struct dialog *d, const osip_message_t *invite, const osip_message_t *resp_2xx,
	       osip_message_t **out)
{
	osip_message_t *m = NULL;
	uint32_t in, rn;
	const char *im, *rm;
	int status, err;

	if (!d || !out || d->state != DIALOG_CONFIRMED || !sipmsg_is_request(invite) || !resp_2xx ||
	    sipmsg_is_request(resp_2xx) || !dialog_matches(d, resp_2xx))
		return EINVAL;
	status = sipmsg_status(resp_2xx);
	if (status < 200 || status >= 300 || sipmsg_cseq(invite, &in, &im) ||
	    sipmsg_cseq(resp_2xx, &rn, &rm) || strcmp(im, "INVITE") || strcmp(rm, "INVITE") ||
	    in != rn || !call_id_eq(d->call_id, invite->call_id))
		return EINVAL;
	/* 13.2.2.4: CSeq number of the INVITE, method ACK; same credentials */
	err = build(d, "ACK", in, &m);
	if (err)
		return err;
	err = auth_copy(&m->authorizations, &invite->authorizations);
	if (!err)
		err = auth_copy(&m->proxy_authorizations, &invite->proxy_authorizations);
	if (err) {
		osip_message_free(m);
		return err;
	}
	osip_message_force_update(m);
	*out = m;
	return 0;
}

static int refuse(int *status, const char **why, int code, const char *sentence, int err)
{
	if (status)
		*status = code;
	if (why)
		*why = sentence;
	return err;
}

int dialog_check_request(struct dialog *d, const osip_message_t *req, int *status, const char **why)
{
	osip_uri_t *target = NULL;
	const char *method;
	uint32_t n;
	int err;

	if (status)
		*status = 0;
	if (why)
		*why = NULL;
	if (!d || !sipmsg_is_request(req))
		return refuse(status, why, 500, "not a request", EINVAL);
	if (d->state == DIALOG_TERMINATED)
		return refuse(status, why, 481, "the dialog has ended", ENOENT);
	if (!dialog_matches(d, req))
		return refuse(status, why, 481, "the request is not of this dialog", ENOENT);
	if (sipmsg_cseq(req, &n, &method))
		return refuse(status, why, 400, "the CSeq is missing or not a number", EBADMSG);
	method = sipmsg_method(req);
	/* ACK and CANCEL carry their INVITE's CSeq, already seen */
	if (!strcmp(method, "ACK") || !strcmp(method, "CANCEL"))
		return 0;
	if (d->remote_cseq_set && n < d->remote_cseq)
		return refuse(status, why, 500, "the CSeq is lower than the last one: out of order",
			      EBADMSG);
	/* target refresh requests (12.2.2; UPDATE: RFC 3311 section 5.2) */
	if (!strcmp(method, "INVITE") || !strcmp(method, "UPDATE")) {
		err = contact_target(req, d->secure, &target);
		if (err == ENOMEM)
			return refuse(status, why, 500, "out of memory", ENOMEM);
		if (err == EBADMSG)
			return refuse(
				status, why, 400,
				d->secure ? "the Contact must be one sips URI in a secure dialog"
					  : "the Contact must be one sip or sips URI",
				EBADMSG);
	}
	if (target) {
		osip_uri_free(d->target);
		d->target = target;
	}
	d->remote_cseq = n;
	d->remote_cseq_set = true;
	return 0;
}

/* ---- accessors ---- */

const char *dialog_call_id(const struct dialog *d)
{
	return d->call_id_str;
}

const char *dialog_local_tag(const struct dialog *d)
{
	return tag_of(d->local);
}

const char *dialog_remote_tag(const struct dialog *d)
{
	return tag_of(d->remote);
}

const osip_uri_t *dialog_local_uri(const struct dialog *d)
{
	return d->local->url;
}

const osip_uri_t *dialog_remote_uri(const struct dialog *d)
{
	return d->remote->url;
}

const osip_uri_t *dialog_remote_target(const struct dialog *d)
{
	return d->target;
}

bool dialog_local_cseq(const struct dialog *d, uint32_t *value)
{
	*value = d->local_cseq;
	return d->local_cseq_set;
}

bool dialog_remote_cseq(const struct dialog *d, uint32_t *value)
{
	*value = d->remote_cseq;
	return d->remote_cseq_set;
}

unsigned dialog_route_count(const struct dialog *d)
{
	return d->nroutes;
}

const osip_uri_t *dialog_route(const struct dialog *d, unsigned idx)
{
	return idx < d->nroutes ? d->routes[idx]->url : NULL;
}

bool dialog_is_uac(const struct dialog *d)
{
	return d->uac;
}

bool dialog_secure(const struct dialog *d)
{
	return d->secure;
}

enum dialog_state dialog_state(const struct dialog *d)
{
	return d->state;
}
