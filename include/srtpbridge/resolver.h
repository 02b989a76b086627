/* resolver.h: peer host names, resolved in the background.
 *
 * A peer given by name (peers = tls:sbc.carrier.example:5061) is resolved
 * with libevent's asynchronous resolver (evdns: /etc/resolv.conf and
 * /etc/hosts) when it is first watched and again every RESOLVER_REFRESH_S,
 * so that a call never waits for DNS and the event loop never blocks on it.
 * The last good address is kept when a refresh fails (the failure is
 * logged): a DNS outage does not take a working peer away. A name that has
 * never resolved makes its calls fail at once with a reason.
 *
 * One address per (name, family): the family of the socket that will send
 * to it. SRV and NAPTR (RFC 3263) are not looked up: a trunk names its
 * peers' transport and port. Main thread only. */
#ifndef SRTPBRIDGE_RESOLVER_H
#define SRTPBRIDGE_RESOLVER_H

#include <stddef.h>
#include <sys/socket.h>

#define RESOLVER_REFRESH_S 60

struct event_base;
struct resolver;

/* Borrows base. Returns 0, ENOMEM, or EIO when evdns cannot start. */
int resolver_create(struct resolver **out, struct event_base *base);
/* Cancels every query. NULL-safe. */
void resolver_destroy(struct resolver *r);

/* Starts resolving host for family (AF_INET or AF_INET6) unless it is
 * watched already. 0, EINVAL or ENOMEM. */
int resolver_watch(struct resolver *r, const char *host, int family);

/* The address of host for family, port 0, into *out. Returns 0, EAGAIN (the
 * first answer has not come yet), ENOENT (not watched) or EHOSTUNREACH (it
 * failed: why says how, when why is not NULL). */
int resolver_lookup(const struct resolver *r, const char *host, int family,
		    struct sockaddr_storage *out, socklen_t *len, char *why, size_t whysz);

#endif
