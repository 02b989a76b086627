/* Peer names in the background: one evdns query per watched name at a time,
 * a refresh timer, the last good answer kept. */
#include "srtpbridge/resolver.h"
#include "srtpbridge/log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#define LOG_MODULE "resolver"

struct entry {
	struct resolver *r;
	char host[256];
	int family;
	bool ok;      /* addr holds an answer (maybe from an earlier query) */
	bool failed;  /* the last query failed */
	char why[96]; /* of that failure */
	struct sockaddr_storage addr;
	socklen_t len;
	struct evdns_getaddrinfo_request *req;
};

struct resolver {
	struct event_base *base;
	struct evdns_base *dns;
	struct event *refresh;
	struct entry **v;
	size_t n;
	bool closing;
};

static void query(struct entry *e);

static void on_answer(int result, struct evutil_addrinfo *res, void *arg)
{
	struct entry *e = arg;

	e->req = NULL;
	if (result == EVUTIL_EAI_CANCEL || e->r->closing) {
		if (res)
			evutil_freeaddrinfo(res);
		return; /* the resolver is going away */
	}
	if (result != 0 || !res || res->ai_addrlen > sizeof(e->addr)) {
		snprintf(e->why, sizeof(e->why), "%s",
			 result ? evutil_gai_strerror(result) : "no address");
		e->failed = true;
		LOG_WARN(NULL, "peer name does not resolve", LF_S("host", e->host),
			 LF_S("reason", e->why), LF_S("kept", e->ok ? "the last address" : "none"));
	} else {
		bool first = !e->ok;

		memcpy(&e->addr, res->ai_addr, res->ai_addrlen);
		e->len = (socklen_t)res->ai_addrlen;
		e->ok = true;
		e->failed = false;
		if (first)
			LOG_INFO(NULL, "peer name resolved", LF_S("host", e->host));
	}
	if (res)
		evutil_freeaddrinfo(res);
}

static void query(struct entry *e)
{
	struct evutil_addrinfo hints = { .ai_family = e->family, .ai_socktype = SOCK_DGRAM };
	struct evdns_getaddrinfo_request *req;

	if (e->req)
		return; /* one at a time */
	/* evdns may answer at once (a literal, /etc/hosts): then the callback
	 * has run and the returned handle is NULL */
	req = evdns_getaddrinfo(e->r->dns, e->host, NULL, &hints, on_answer, e);
	if (req)
		e->req = req;
}

static void on_refresh(evutil_socket_t fd, short what, void *arg)
{
	struct resolver *r = arg;

	for (size_t i = 0; i < r->n; i++)
		query(r->v[i]);
}

int resolver_create(struct resolver **out, struct event_base *base)
{
	struct resolver *r = calloc(1, sizeof(*r));
	struct timeval tv = { .tv_sec = RESOLVER_REFRESH_S };

	if (!r)
		return ENOMEM;
	r->base = base;
	r->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
					      EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	r->refresh = event_new(base, -1, EV_PERSIST, on_refresh, r);
	if (!r->dns || !r->refresh || event_add(r->refresh, &tv)) {
		int err = r->dns ? ENOMEM : EIO;

		resolver_destroy(r);
		return err;
	}
	*out = r;
	return 0;
}

void resolver_destroy(struct resolver *r)
{
	if (!r)
		return;
	r->closing = true;
	if (r->refresh)
		event_free(r->refresh);
	/* fail_requests: every query in flight calls back now (with an error
	 * that on_answer ignores) and is freed; a cancel would only be freed
	 * by a later turn of the loop */
	if (r->dns) {
		evdns_base_free(r->dns, 1);
		/* the failed queries are freed by deferred callbacks: one turn of
		 * the loop runs them (libevent issue #942 leaks them otherwise) */
		event_base_loop(r->base, EVLOOP_NONBLOCK);
	}
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i]);
	free(r->v);
	free(r);
}

static struct entry *find(const struct resolver *r, const char *host, int family)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->v[i]->family == family && strcasecmp(r->v[i]->host, host) == 0)
			return r->v[i];
	return NULL;
}

int resolver_watch(struct resolver *r, const char *host, int family)
{
	struct entry *e, **v;

	if (!host || !*host || strlen(host) >= sizeof(e->host) ||
	    (family != AF_INET && family != AF_INET6))
		return EINVAL;
	if (find(r, host, family))
		return 0;
	e = calloc(1, sizeof(*e));
	v = e ? realloc(r->v, (r->n + 1) * sizeof(*v)) : NULL;
	if (!v) {
		free(e);
		return ENOMEM;
	}
	r->v = v;
	e->r = r;
	snprintf(e->host, sizeof(e->host), "%s", host);
	e->family = family;
	snprintf(e->why, sizeof(e->why), "no answer yet");
	r->v[r->n++] = e;
	query(e);
	return 0;
}

int resolver_lookup(const struct resolver *r, const char *host, int family,
		    struct sockaddr_storage *out, socklen_t *len, char *why, size_t whysz)
{
	const struct entry *e = find(r, host, family);

	if (!e)
		return ENOENT;
	if (e->ok) {
		memcpy(out, &e->addr, e->len);
		*len = e->len;
		return 0;
	}
	if (why)
		snprintf(why, whysz, "%s", e->why);
	return e->failed ? EHOSTUNREACH : EAGAIN;
}
