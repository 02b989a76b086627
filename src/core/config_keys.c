/* The key table (STYLE.md section 9) and the parser of each value type.
 *
 * Parsers are strict: a value either means exactly one thing or is refused
 * with a sentence saying why. They never echo more of the value than the
 * offending piece. */
#include "config_table.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#define WHY(...)	       (snprintf(why, whysz, __VA_ARGS__), EINVAL)
#define FIELD(base, k, type)   ((type *)((char *)(base) + (k)->off))
#define FIELD2(base, k, type)  ((type *)((char *)(base) + (k)->off2))
#define CFIELD(base, k, type)  ((const type *)((const char *)(base) + (k)->off))
#define CFIELD2(base, k, type) ((const type *)((const char *)(base) + (k)->off2))

/* ---- small text helpers ---- */

struct piece {
	const char *p;
	size_t n;
};

static struct piece trim(const char *p, size_t n)
{
	while (n && isspace((unsigned char)*p)) {
		p++;
		n--;
	}
	while (n && isspace((unsigned char)p[n - 1]))
		n--;
	return (struct piece){ p, n };
}

/* Splits s at sep into trimmed pieces; an empty piece between separators is
 * an error the caller reports ("empty item"). Returns the count or -1 when
 * more than max. */
static int split(const char *s, char sep, struct piece *out, int max)
{
	int n = 0;
	const char *p = s;

	if (!*trim(s, strlen(s)).p)
		return 0;
	for (;;) {
		const char *e = strchr(p, sep);
		size_t len = e ? (size_t)(e - p) : strlen(p);

		if (n == max)
			return -1;
		out[n++] = trim(p, len);
		if (!e)
			return n;
		p = e + 1;
	}
}

static char *xstrndup(const char *p, size_t n)
{
	char *s = malloc(n + 1);

	if (s) {
		memcpy(s, p, n);
		s[n] = '\0';
	}
	return s;
}

static bool is_token_char(unsigned char c)
{
	/* RFC 3261 token */
	return isalnum(c) || strchr("-.!%*_+`'~", c) != NULL;
}

static bool valid_hostname(const char *p, size_t n)
{
	size_t label = 0;

	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '.') {
			if (label == 0 || p[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!isalnum(c) && c != '-')
			return false;
		if (c == '-' && label == 0)
			return false;
		if (++label > 63)
			return false;
	}
	return p[n - 1] != '-' && p[n - 1] != '.';
}

/* An IPv4 or IPv6 literal (without brackets) into ss; true on success. */
static bool parse_ip(const char *p, size_t n, struct sockaddr_storage *ss, socklen_t *len)
{
	char buf[INET6_ADDRSTRLEN + 1];

	if (n == 0 || n >= sizeof(buf))
		return false;
	memcpy(buf, p, n);
	buf[n] = '\0';
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	if (inet_pton(AF_INET, buf, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		*len = sizeof(*in4);
		return true;
	}
	if (inet_pton(AF_INET6, buf, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		*len = sizeof(*in6);
		return true;
	}
	return false;
}

static bool looks_like_ipv4(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)p[i]) && p[i] != '.')
			return false;
	return n > 0;
}

static int parse_uint(const char *p, size_t n, unsigned long long max, unsigned long long *out)
{
	unsigned long long v = 0;

	if (n == 0 || n > 20)
		return EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)p[i]))
			return EINVAL;
		if (v > (ULLONG_MAX - 9) / 10)
			return ERANGE;
		v = v * 10 + (unsigned)(p[i] - '0');
	}
	if (v > max)
		return ERANGE;
	*out = v;
	return 0;
}

/* ---- bool, int, enum, strings ---- */

static int parse_bool(struct loader *ld, const struct cfg_key *k, void *base, const char *v,
		      char *why, size_t whysz)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*FIELD(base, k, bool) = true;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*FIELD(base, k, bool) = false;
			return 0;
		}
	}
	return WHY("expected yes or no");
}

static int parse_int(struct loader *ld, const struct cfg_key *k, void *base, const char *v,
		     char *why, size_t whysz)
{
	unsigned long long u;

	if ((k->flags & CFG_AUTO) && strcmp(v, "auto") == 0) {
		*FIELD(base, k, int) = CONFIG_AUTO;
		return 0;
	}
	if (parse_uint(v, strlen(v), (unsigned long long)k->max, &u) == EINVAL)
		return WHY("expected %sa whole number from %lld to %lld",
			   (k->flags & CFG_AUTO) ? "auto or " : "", k->min, k->max);
	if (parse_uint(v, strlen(v), (unsigned long long)k->max, &u) || (long long)u < k->min)
		return WHY("%s is out of range %lld to %lld", v, k->min, k->max);
	*FIELD(base, k, int) = (int)u;
	return 0;
}

static int equal_int(const struct cfg_key *k, const void *a, const void *b)
{
	return *CFIELD(a, k, int) == *CFIELD(b, k, int);
}

static int parse_enum(struct loader *ld, const struct cfg_key *k, void *base, const char *v,
		      char *why, size_t whysz)
{
	for (int i = 0; k->enums[i]; i++) {
		if (strcmp(v, k->enums[i]) == 0) {
			*FIELD(base, k, int) = i;
			return 0;
		}
	}
	return WHY("expected %s", k->values);
}

static void free_str(const struct cfg_key *k, void *base)
{
	free(*FIELD(base, k, char *));
	*FIELD(base, k, char *) = NULL;
}

static int equal_str(const struct cfg_key *k, const void *a, const void *b)
{
	const char *x = *CFIELD(a, k, char *), *y = *CFIELD(b, k, char *);

	return (!x && !y) || (x && y && strcmp(x, y) == 0);
}

static int set_str(void *base, const struct cfg_key *k, const char *v, char *why, size_t whysz)
{
	free_str(k, base);
	if (!*v)
		return 0;
	*FIELD(base, k, char *) = strdup(v);
	return *FIELD(base, k, char *) ? 0 : WHY("out of memory");
}

static int parse_socket_path(struct loader *ld, const struct cfg_key *k, void *base, const char *v,
			     char *why, size_t whysz)
{
	if (v[0] != '/')
		return WHY("expected an absolute path");
	if (strlen(v) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return WHY("path is longer than a unix socket allows (%zu bytes)",
			   sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
	return set_str(base, k, v, why, whysz);
}

/* A file path; relative paths are taken from the config file's directory. */
static int parse_file(struct loader *ld, const struct cfg_key *k, void *base, const char *v,
		      char *why, size_t whysz)
{
	char *abs;

	free_str(k, base);
	if (!*v)
		return 0;
	if (strlen(v) >= PATH_MAX)
		return WHY("path is too long");
	abs = cfg_loader_path(ld, v);
	if (!abs)
		return WHY("out of memory");
	*FIELD(base, k, char *) = abs;
	return 0;
}

/* An address to advertise: an IP literal or a host name; empty = derived. */
static int parse_host(struct loader *ld, const struct cfg_key *k, void *base, const char *v,
		      char *why, size_t whysz)
{
	struct sockaddr_storage ss;
	socklen_t len;
	size_t n = strlen(v);

	if (n && !parse_ip(v, n, &ss, &len)) {
		if (looks_like_ipv4(v, n))
			return WHY("'%s' is not a valid IPv4 address", v);
		if (strchr(v, ':'))
			return WHY("'%s' is not a valid IPv6 address (write it without brackets)",
				   v);
		if (!valid_hostname(v, n))
			return WHY("'%s' is neither an IP address nor a host name", v);
	}
	return set_str(base, k, v, why, whysz);
}

/* An address to bind: an IP literal only, so that binding never waits on DNS. */
static int parse_bind_ip(struct loader *ld, const struct cfg_key *k, void *base, const char *v,
			 char *why, size_t whysz)
{
	struct sockaddr_storage ss;
	socklen_t len;

	if (!parse_ip(v, strlen(v), &ss, &len))
		return WHY("expected an IPv4 or IPv6 address (no brackets, no host name)");
	return set_str(base, k, v, why, whysz);
}

/* HOST:PORT or [IPv6]:PORT for the metrics endpoint; empty = off. */
static int parse_hostport(struct loader *ld, const struct cfg_key *k, void *base, const char *v,
			  char *why, size_t whysz)
{
	struct config_global *g = base;
	struct sockaddr_storage ss;
	socklen_t sl;
	const char *host, *colon;
	size_t hlen;
	unsigned long long port;

	g->metrics_host[0] = '\0';
	g->metrics_port = 0;
	if (!*v)
		return set_str(base, k, v, why, whysz);
	if (v[0] == '[') {
		const char *rb = strchr(v, ']');

		if (!rb || rb[1] != ':')
			return WHY("expected [IPv6]:PORT");
		host = v + 1;
		hlen = (size_t)(rb - host);
		colon = rb + 1;
	} else {
		colon = strrchr(v, ':');
		if (!colon || strchr(v, ':') != colon)
			return WHY("expected HOST:PORT (IPv6 in brackets)");
		host = v;
		hlen = (size_t)(colon - v);
	}
	if (!parse_ip(host, hlen, &ss, &sl))
		return WHY("expected an IP address before the port");
	if (parse_uint(colon + 1, strlen(colon + 1), 65535, &port) || port == 0)
		return WHY("port must be 1 to 65535");
	memcpy(g->metrics_host, host, hlen);
	g->metrics_host[hlen] = '\0';
	g->metrics_port = (uint16_t)port;
	return set_str(base, k, v, why, whysz);
}

/* ---- transport URIs: listen and peers ---- */

static const char *const tp_names[] = { "udp", "tcp", "tls" };

void config_uri_format(const struct sip_uri *u, char *buf, size_t size)
{
	bool v6 = strchr(u->host, ':') != NULL;

	snprintf(buf, size, "%s:%s%s%s:%u", tp_names[u->transport], v6 ? "[" : "", u->host,
		 v6 ? "]" : "", u->port);
}

int cfg_parse_uri(const char *s, size_t len, bool resolve, struct sip_uri *u, char *why,
		  size_t whysz)
{
	const char *p = s, *end = s + len, *host, *hend, *portp = NULL;
	unsigned long long port;
	int tp = -1;

	memset(u, 0, sizeof(*u));
	for (int i = 0; i < 3; i++) {
		if (len > 4 && strncmp(s, tp_names[i], 3) == 0 && s[3] == ':') {
			tp = i;
			break;
		}
	}
	if (tp < 0)
		return WHY("'%.*s' must start with udp:, tcp: or tls:", (int)len, s);
	u->transport = (enum sip_transport)tp;
	p += 4;
	if (p < end && *p == '[') {
		host = p + 1;
		hend = memchr(host, ']', (size_t)(end - host));
		if (!hend)
			return WHY("'%.*s': IPv6 address without ']'", (int)len, s);
		if (hend + 1 < end) {
			if (hend[1] != ':')
				return WHY("'%.*s': expected ':PORT' after ']'", (int)len, s);
			portp = hend + 2;
		}
	} else {
		host = p;
		hend = memchr(p, ':', (size_t)(end - p));
		if (hend) {
			portp = hend + 1;
			if (memchr(portp, ':', (size_t)(end - portp)))
				return WHY("'%.*s': an IPv6 address needs brackets, as in "
					   "udp:[2001:db8::1]:5060",
					   (int)len, s);
		} else {
			hend = end;
		}
	}
	if (hend == host)
		return WHY("'%.*s' has no host", (int)len, s);
	if ((size_t)(hend - host) >= sizeof(u->host))
		return WHY("'%.*s': host is too long", (int)len, s);
	memcpy(u->host, host, (size_t)(hend - host));
	u->host[hend - host] = '\0';
	if (portp) {
		if (parse_uint(portp, (size_t)(end - portp), 65535, &port) || port == 0)
			return WHY("'%.*s': port must be 1 to 65535", (int)len, s);
		u->port = (uint16_t)port;
	} else {
		u->port = u->transport == SIP_TP_TLS ? 5061 : 5060;
	}
	if (parse_ip(u->host, strlen(u->host), &u->addr, &u->addrlen)) {
		if (host[-1] != '[' && u->addr.ss_family == AF_INET6)
			return WHY("'%.*s': an IPv6 address needs brackets", (int)len, s);
		if (host[-1] == '[' && u->addr.ss_family != AF_INET6)
			return WHY("'%.*s': only IPv6 addresses go in brackets", (int)len, s);
		u->resolved = true;
	} else if (host[-1] == '[') {
		return WHY("'%.*s': '%s' is not a valid IPv6 address", (int)len, s, u->host);
	} else if (looks_like_ipv4(u->host, strlen(u->host))) {
		return WHY("'%.*s': '%s' is not a valid IPv4 address", (int)len, s, u->host);
	} else if (!valid_hostname(u->host, strlen(u->host))) {
		return WHY("'%.*s': '%s' is not a valid host name", (int)len, s, u->host);
	} else if (resolve) {
		struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *res = NULL;
		int rc = getaddrinfo(u->host, NULL, &hints, &res);

		if (rc != 0 || !res)
			return WHY("'%.*s': host name does not resolve (%s)", (int)len, s,
				   gai_strerror(rc));
		memcpy(&u->addr, res->ai_addr, res->ai_addrlen);
		u->addrlen = res->ai_addrlen;
		u->resolved = true;
		freeaddrinfo(res);
	}
	if (u->resolved) {
		if (u->addr.ss_family == AF_INET)
			((struct sockaddr_in *)&u->addr)->sin_port = htons(u->port);
		else
			((struct sockaddr_in6 *)&u->addr)->sin6_port = htons(u->port);
	}
	return 0;
}

static void free_uris(const struct cfg_key *k, void *base)
{
	free(*FIELD(base, k, struct sip_uri *));
	*FIELD(base, k, struct sip_uri *) = NULL;
	*FIELD2(base, k, size_t) = 0;
}

static int parse_uri_list(struct loader *ld, const struct cfg_key *k, void *base, const char *v,
			  char sep, bool resolve, char *why, size_t whysz)
{
	struct piece pc[32];
	struct sip_uri *u;
	int n = split(v, sep, pc, 32);

	free_uris(k, base);
	if (n < 0)
		return WHY("more than 32 addresses");
	if (n == 0)
		return 0;
	u = calloc((size_t)n, sizeof(*u));
	if (!u)
		return WHY("out of memory");
	for (int i = 0; i < n; i++) {
		int err;

		if (pc[i].n == 0) {
			free(u);
			return WHY("empty item in the list (a stray ','? values do not continue on "
				   "the next line)");
		}
		err = cfg_parse_uri(pc[i].p, pc[i].n, resolve, &u[i], why, whysz);
		if (err) {
			free(u);
			return err;
		}
		for (int j = 0; j < i; j++) {
			if (u[j].transport == u[i].transport && u[j].port == u[i].port &&
			    strcmp(u[j].host, u[i].host) == 0) {
				free(u);
				return WHY("'%.*s' is listed twice", (int)pc[i].n, pc[i].p);
			}
		}
	}
	*FIELD(base, k, struct sip_uri *) = u;
	*FIELD2(base, k, size_t) = (size_t)n;
	return 0;
}

static int parse_listen(struct loader *ld, const struct cfg_key *k, void *base, const char *v,
			char *why, size_t whysz)
{
	if (!*v)
		return WHY("a trunk needs at least one listen address");
	return parse_uri_list(ld, k, base, v, ',', !(cfg_loader_flags(ld) & CONFIG_NO_RESOLVE), why,
			      whysz);
}

static int equal_uris(const struct cfg_key *k, const void *a, const void *b)
{
	size_t n = *CFIELD2(a, k, size_t);
	const struct sip_uri *x = *CFIELD(a, k, struct sip_uri *);
	const struct sip_uri *y = *CFIELD(b, k, struct sip_uri *);

	if (n != *CFIELD2(b, k, size_t))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (x[i].transport != y[i].transport || x[i].port != y[i].port ||
		    strcmp(x[i].host, y[i].host) != 0)
			return 0;
	return 1;
}

static int parse_peers(struct loader *ld, const struct cfg_key *k, void *base, const char *v,
		       char *why, size_t whysz)
{
	if (strchr(v, ','))
		return WHY("separate failover peers with '|', in the order they are tried");
	/* Peer names resolve when a call is placed, so DNS changes need no reload. */
	return parse_uri_list(ld, k, base, v, '|', false, why, whysz);
}

/* ---- CIDR lists ---- */

void cfg_cidr_from_sockaddr(const struct sockaddr_storage *ss, struct cidr *c)
{
	memset(c, 0, sizeof(*c));
	c->family = ss->ss_family;
	if (ss->ss_family == AF_INET) {
		memcpy(c->addr, &((const struct sockaddr_in *)ss)->sin_addr, 4);
		c->prefix = 32;
	} else {
		memcpy(c->addr, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
		c->prefix = 128;
	}
}

bool cfg_cidr_overlap(const struct cidr *a, const struct cidr *b)
{
	unsigned bits = a->prefix < b->prefix ? a->prefix : b->prefix;

	if (a->family != b->family)
		return false;
	for (unsigned i = 0; i < bits; i++) {
		unsigned m = 0x80u >> (i % 8);

		if ((a->addr[i / 8] & m) != (b->addr[i / 8] & m))
			return false;
	}
	return true;
}

static int parse_cidr(struct piece pc, struct cidr *c, char *why, size_t whysz)
{
	const char *slash = memchr(pc.p, '/', pc.n);
	size_t alen = slash ? (size_t)(slash - pc.p) : pc.n;
	struct sockaddr_storage ss;
	socklen_t sl;
	unsigned long long prefix;
	unsigned max;

	if (!parse_ip(pc.p, alen, &ss, &sl))
		return WHY("'%.*s' is not an IP address or CIDR block", (int)pc.n, pc.p);
	cfg_cidr_from_sockaddr(&ss, c);
	max = c->prefix;
	if (slash) {
		if (parse_uint(slash + 1, pc.n - alen - 1, max, &prefix))
			return WHY("'%.*s': prefix length must be 0 to %u", (int)pc.n, pc.p, max);
		c->prefix = (unsigned)prefix;
	}
	for (unsigned i = c->prefix; i < max; i++) {
		if (c->addr[i / 8] & (0x80u >> (i % 8))) {
			char net[INET6_ADDRSTRLEN];

			for (unsigned j = c->prefix; j < max; j++)
				c->addr[j / 8] &= (uint8_t) ~(0x80u >> (j % 8));
			inet_ntop(c->family, c->addr, net, sizeof(net));
			return WHY("'%.*s' has host bits set; did you mean %s/%u?", (int)pc.n, pc.p,
				   net, c->prefix);
		}
	}
	return 0;
}

static void free_cidrs(const struct cfg_key *k, void *base)
{
	struct config_trunk *t = base;

	free(t->sources);
	t->sources = NULL;
	t->nsources = 0;
	t->sources_any = false;
}

static int parse_sources(struct loader *ld, const struct cfg_key *k, void *base, const char *v,
			 char *why, size_t whysz)
{
	struct config_trunk *t = base;
	struct piece pc[64];
	int n;

	free_cidrs(k, base);
	if (strcmp(v, "any") == 0) {
		t->sources_any = true;
		return 0;
	}
	n = split(v, ',', pc, 64);
	if (n < 0)
		return WHY("more than 64 blocks");
	if (n == 0)
		return 0;
	t->sources = calloc((size_t)n, sizeof(*t->sources));
	if (!t->sources)
		return WHY("out of memory");
	for (int i = 0; i < n; i++) {
		int err;

		if (pc[i].n == 0)
			return WHY("empty item in the list (a stray ','? values do not continue on "
				   "the next line)");
		if (pc[i].n == 3 && memcmp(pc[i].p, "any", 3) == 0)
			return WHY("'any' stands alone, not in a list");
		err = parse_cidr(pc[i], &t->sources[i], why, whysz);
		if (err)
			return err;
		t->nsources = (size_t)i + 1;
	}
	return 0;
}

/* ---- port range, suites, headers, codes, lifetime ---- */

static int parse_port_range(struct loader *ld, const struct cfg_key *k, void *base, const char *v,
			    char *why, size_t whysz)
{
	const char *dash = strchr(v, '-');
	unsigned long long lo, hi;

	if (!dash)
		return WHY("expected LOW-HIGH, as in 20000-29999");
	if (parse_uint(v, (size_t)(dash - v), 65535, &lo) ||
	    parse_uint(dash + 1, strlen(dash + 1), 65535, &hi))
		return WHY("expected LOW-HIGH with ports from 1024 to 65535");
	if (lo < 1024)
		return WHY("ports below 1024 need privileges the service does not have");
	if (lo > hi)
		return WHY("%llu-%llu is reversed (LOW-HIGH)", lo, hi);
	if (hi - lo + 1 < 4)
		return WHY("%llu-%llu has %llu ports; one call needs 4", lo, hi, hi - lo + 1);
	*FIELD(base, k, uint16_t) = (uint16_t)lo;
	*FIELD2(base, k, uint16_t) = (uint16_t)hi;
	return 0;
}

static int equal_port_range(const struct cfg_key *k, const void *a, const void *b)
{
	return *CFIELD(a, k, uint16_t) == *CFIELD(b, k, uint16_t) &&
	       *CFIELD2(a, k, uint16_t) == *CFIELD2(b, k, uint16_t);
}

static int parse_suites(struct loader *ld, const struct cfg_key *k, void *base, const char *v,
			char *why, size_t whysz)
{
	struct config_trunk *t = base;
	struct piece pc[SUITE_COUNT + 1];
	int n = split(v, ',', pc, SUITE_COUNT + 1);

	t->nsuites = 0;
	if (n < 0)
		return WHY("a suite is listed twice (there are only %d suites)", SUITE_COUNT);
	if (n == 0)
		return WHY("list at least one suite");
	for (int i = 0; i < n; i++) {
		enum suite_id id;

		if (suite_from_name(pc[i].p, pc[i].n, &id))
			return WHY("unknown suite '%.*s' (suites: AES_CM_128_HMAC_SHA1_80, "
				   "AES_CM_128_HMAC_SHA1_32, AES_192_CM_HMAC_SHA1_80, "
				   "AES_192_CM_HMAC_SHA1_32, AES_256_CM_HMAC_SHA1_80, "
				   "AES_256_CM_HMAC_SHA1_32, AEAD_AES_128_GCM, AEAD_AES_256_GCM)",
				   (int)(pc[i].n > 60 ? 60 : pc[i].n), pc[i].p);
		for (size_t j = 0; j < t->nsuites; j++)
			if (t->suites[j] == id)
				return WHY("%s is listed twice", suite_name(id));
		{
			const char *why_not = NULL;

			if (!suite_usable(id, &why_not))
				return WHY("%s cannot be used: %s", suite_name(id), why_not);
		}
		t->suites[t->nsuites++] = id;
	}
	return 0;
}

/* Headers srtpbridge itself builds per leg: passing them would break the
 * dialog, the transaction or the body. Compact forms included. */
static const char *const owned_headers[] = { "via",
					     "v",
					     "from",
					     "f",
					     "to",
					     "t",
					     "call-id",
					     "i",
					     "cseq",
					     "contact",
					     "m",
					     "record-route",
					     "route",
					     "max-forwards",
					     "content-length",
					     "l",
					     "content-type",
					     "c",
					     "content-encoding",
					     "e",
					     "authorization",
					     "proxy-authorization",
					     "www-authenticate",
					     "proxy-authenticate",
					     NULL };

static void free_headers(const struct cfg_key *k, void *base)
{
	struct config_trunk *t = base;

	for (size_t i = 0; i < t->npass_headers; i++)
		free(t->pass_headers[i]);
	free(t->pass_headers);
	t->pass_headers = NULL;
	t->npass_headers = 0;
}

static int parse_headers(struct loader *ld, const struct cfg_key *k, void *base, const char *v,
			 char *why, size_t whysz)
{
	struct config_trunk *t = base;
	struct piece pc[32];
	int n = split(v, ',', pc, 32);

	free_headers(k, base);
	if (n < 0)
		return WHY("more than 32 headers");
	if (n == 0)
		return 0;
	t->pass_headers = calloc((size_t)n, sizeof(char *));
	if (!t->pass_headers)
		return WHY("out of memory");
	for (int i = 0; i < n; i++) {
		if (pc[i].n == 0)
			return WHY("empty item in the list (a stray ','? values do not continue on "
				   "the next line)");
		for (size_t j = 0; j < pc[i].n; j++)
			if (!is_token_char((unsigned char)pc[i].p[j]))
				return WHY("'%.*s' is not a header name", (int)pc[i].n, pc[i].p);
		for (int j = 0; owned_headers[j]; j++)
			if (strlen(owned_headers[j]) == pc[i].n &&
			    strncasecmp(owned_headers[j], pc[i].p, pc[i].n) == 0)
				return WHY("%.*s is built by srtpbridge for each leg and cannot be "
					   "passed",
					   (int)pc[i].n, pc[i].p);
		for (size_t j = 0; j < t->npass_headers; j++)
			if (strlen(t->pass_headers[j]) == pc[i].n &&
			    strncasecmp(t->pass_headers[j], pc[i].p, pc[i].n) == 0)
				return WHY("%.*s is listed twice", (int)pc[i].n, pc[i].p);
		t->pass_headers[i] = xstrndup(pc[i].p, pc[i].n);
		if (!t->pass_headers[i])
			return WHY("out of memory");
		t->npass_headers = (size_t)i + 1;
	}
	return 0;
}

static int parse_codes(struct loader *ld, const struct cfg_key *k, void *base, const char *v,
		       char *why, size_t whysz)
{
	struct config_trunk *t = base;
	struct piece pc[16];
	int n = split(v, ',', pc, 16);

	t->noptions_ok = 0;
	if (n < 0)
		return WHY("more than 16 ranges");
	if (n == 0)
		return WHY("list at least one code or range, as in 200-499");
	for (int i = 0; i < n; i++) {
		const char *dash = memchr(pc[i].p, '-', pc[i].n);
		size_t l1 = dash ? (size_t)(dash - pc[i].p) : pc[i].n;
		unsigned long long lo, hi;

		if (parse_uint(pc[i].p, l1, 699, &lo) ||
		    (dash ? parse_uint(dash + 1, pc[i].n - l1 - 1, 699, &hi) : (hi = lo, 0)) ||
		    lo < 100 || hi < 100)
			return WHY("'%.*s' is not a SIP status code (100-699) or range",
				   (int)pc[i].n, pc[i].p);
		if (lo > hi)
			return WHY("'%.*s' is reversed", (int)pc[i].n, pc[i].p);
		if (lo == 408 && hi == 408)
			return WHY("408 never counts as alive: it is what a dead peer's "
				   "timeout looks like");
		t->options_ok[t->noptions_ok][0] = (uint16_t)lo;
		t->options_ok[t->noptions_ok][1] = (uint16_t)hi;
		t->noptions_ok++;
	}
	return 0;
}

/* RFC 3711 limits: 2^48 packets for SRTP (2^31 for SRTCP, which our
 * lifetime also covers, so larger values are clamped there by libsrtp). */
static int parse_lifetime(struct loader *ld, const struct cfg_key *k, void *base, const char *v,
			  char *why, size_t whysz)
{
	struct config_trunk *t = base;
	unsigned long long x;

	t->crypto_lifetime = 0;
	t->crypto_lifetime_pow2 = false;
	if (!*v)
		return 0;
	if (strncmp(v, "2^", 2) == 0) {
		if (parse_uint(v + 2, strlen(v + 2), 48, &x) || x < 1)
			return WHY("'%s': the exponent must be 1 to 48 (RFC 3711)", v);
		t->crypto_lifetime = 1ULL << x;
		t->crypto_lifetime_pow2 = true;
		return 0;
	}
	if (parse_uint(v, strlen(v), 1ULL << 48, &x) || x < 1)
		return WHY("expected 2^N or a packet count from 1 to 2^48");
	t->crypto_lifetime = x;
	return 0;
}

/* ---- names of other trunks, and the route's regex ---- */

bool cfg_valid_name(const char *p, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)p[i]) && p[i] != '-' && p[i] != '_' && p[i] != '.')
			return false;
	return true;
}

static int parse_trunk_ref(struct loader *ld, const struct cfg_key *k, void *base, const char *v,
			   char *why, size_t whysz)
{
	if (*v && !cfg_valid_name(v, strlen(v)))
		return WHY("'%s' is not a trunk name", v);
	return set_str(base, k, v, why, whysz);
}

static void free_names(const struct cfg_key *k, void *base)
{
	struct config_route *r = base;

	for (size_t i = 0; i < r->nfrom; i++)
		free(r->from_names[i]);
	free(r->from_names);
	free(r->from);
	r->from_names = NULL;
	r->from = NULL;
	r->nfrom = 0;
}

static int parse_trunk_list(struct loader *ld, const struct cfg_key *k, void *base, const char *v,
			    char *why, size_t whysz)
{
	struct config_route *r = base;
	struct piece pc[64];
	int n = split(v, ',', pc, 64);

	free_names(k, base);
	if (n < 0)
		return WHY("more than 64 trunks");
	if (n == 0)
		return WHY("name at least one trunk");
	r->from_names = calloc((size_t)n, sizeof(char *));
	r->from = calloc((size_t)n, sizeof(*r->from));
	if (!r->from_names || !r->from)
		return WHY("out of memory");
	for (int i = 0; i < n; i++) {
		if (!cfg_valid_name(pc[i].p, pc[i].n))
			return WHY("'%.*s' is not a trunk name", (int)pc[i].n, pc[i].p);
		r->from_names[i] = xstrndup(pc[i].p, pc[i].n);
		if (!r->from_names[i])
			return WHY("out of memory");
		r->nfrom = (size_t)i + 1;
	}
	return 0;
}

static void free_regex(const struct cfg_key *k, void *base)
{
	struct config_route *r = base;

	if (r->match_compiled)
		regfree(&r->match);
	r->match_compiled = false;
	free(r->match_src);
	r->match_src = NULL;
}

static int parse_regex(struct loader *ld, const struct cfg_key *k, void *base, const char *v,
		       char *why, size_t whysz)
{
	struct config_route *r = base;
	char err[160];
	int rc;

	free_regex(k, base);
	if (!*v)
		return WHY("empty pattern (use .* to match every number)");
	rc = regcomp(&r->match, v, REG_EXTENDED | REG_NOSUB);
	if (rc) {
		regerror(rc, &r->match, err, sizeof(err));
		regfree(&r->match);
		return WHY("not a POSIX extended regular expression: %s", err);
	}
	r->match_compiled = true;
	r->match_src = strdup(v);
	return r->match_src ? 0 : WHY("out of memory");
}

/* ---- the table ---- */

static const struct cfg_type T_BOOL = { parse_bool, NULL, NULL };
static const struct cfg_type T_INT = { parse_int, NULL, equal_int };
static const struct cfg_type T_ENUM = { parse_enum, NULL, equal_int };
static const struct cfg_type T_SOCKET = { parse_socket_path, free_str, equal_str };
static const struct cfg_type T_FILE = { parse_file, free_str, equal_str };
static const struct cfg_type T_HOST = { parse_host, free_str, equal_str };
static const struct cfg_type T_BIND_IP = { parse_bind_ip, free_str, equal_str };
static const struct cfg_type T_HOSTPORT = { parse_hostport, free_str, equal_str };
static const struct cfg_type T_LISTEN = { parse_listen, free_uris, equal_uris };
static const struct cfg_type T_PEERS = { parse_peers, free_uris, equal_uris };
static const struct cfg_type T_SOURCES = { parse_sources, free_cidrs, NULL };
static const struct cfg_type T_PORTS = { parse_port_range, NULL, equal_port_range };
static const struct cfg_type T_SUITES = { parse_suites, NULL, NULL };
static const struct cfg_type T_HEADERS = { parse_headers, free_headers, NULL };
static const struct cfg_type T_CODES = { parse_codes, NULL, NULL };
static const struct cfg_type T_LIFETIME = { parse_lifetime, NULL, NULL };
static const struct cfg_type T_TRUNK = { parse_trunk_ref, free_str, equal_str };
static const struct cfg_type T_TRUNKS = { parse_trunk_list, free_names, NULL };
static const struct cfg_type T_REGEX = { parse_regex, free_regex, NULL };

static const char *const e_log_level[] = { "error", "warn", "info", "debug", NULL };
static const char *const e_unknown_source[] = { "drop", "403", NULL };
static const char *const e_media_io[] = { "auto", "epoll", "io_uring", NULL };
static const char *const e_srtp[] = { "mandatory", "optional", "off", NULL };
static const char *const e_select[] = { "local", "offerer", NULL };
static const char *const e_srtcp[] = { "encrypted", "unencrypted", "either", NULL };
static const char *const e_rekey[] = { "keep", "always", NULL };
static const char *const e_roc[] = { "keep", "reset", NULL };
static const char *const e_latch[] = { "strict", "learn", NULL };
static const char *const e_client[] = { "none", "optional", "require", NULL };

#define G(field) offsetof(struct config_global, field)
#define T(field) offsetof(struct config_trunk, field)
#define R(field) offsetof(struct config_route, field)

/* clang-format off */
static const struct cfg_key table[] = {
	{ CONFIG_SEC_GLOBAL, "log_level", &T_ENUM, G(log_level), 0, "info", 0, 0, e_log_level, 0,
	  "error | warn | info | debug", "least severe level that is logged; a reload applies it at once" },
	{ CONFIG_SEC_GLOBAL, "sip_trace", &T_BOOL, G(sip_trace), 0, "no", 0, 0, NULL, 0,
	  "yes | no", "log every SIP message sent and received, with SDES keys redacted" },
	{ CONFIG_SEC_GLOBAL, "control_socket", &T_SOCKET, G(control_socket), 0, "/run/srtpbridge/control.sock", 0, 0, NULL, CFG_RESTART,
	  "absolute path", "unix socket of srtpbridgectl (mode 0660, the service's group)" },
	{ CONFIG_SEC_GLOBAL, "metrics_listen", &T_HOSTPORT, G(metrics_listen), 0, "127.0.0.1:9464", 0, 0, NULL, CFG_RESTART,
	  "IP:PORT | [IPv6]:PORT | empty", "address of the Prometheus /metrics and /healthz endpoint; empty turns it off" },
	{ CONFIG_SEC_GLOBAL, "media_ports", &T_PORTS, G(media_port_min), G(media_port_max), "20000-29999", 0, 0, NULL, CFG_RESTART,
	  "LOW-HIGH", "UDP ports for media, shared by all trunks (4 a call)" },
	{ CONFIG_SEC_GLOBAL, "media_workers", &T_INT, G(media_workers), 0, "auto", 1, 64, NULL, CFG_AUTO | CFG_RESTART,
	  "auto | 1-64", "media relay threads; auto = one per core" },
	{ CONFIG_SEC_GLOBAL, "media_io", &T_ENUM, G(media_io), 0, "auto", 0, 0, e_media_io, CFG_RESTART,
	  "auto | epoll | io_uring", "how media workers read and send; auto = io_uring where the kernel allows it, else epoll" },
	{ CONFIG_SEC_GLOBAL, "media_timeout", &T_INT, G(media_timeout), 0, "30", 1, 86400, NULL, 0,
	  "seconds", "hang up after this long with no RTP or RTCP from either leg while both send" },
	{ CONFIG_SEC_GLOBAL, "media_timeout_hold", &T_INT, G(media_timeout_hold), 0, "3600", 0, 86400, NULL, 0,
	  "seconds", "the same while a leg is on hold; 0 = never" },
	{ CONFIG_SEC_GLOBAL, "max_calls", &T_INT, G(max_calls), 0, "auto", 1, 1000000, NULL, CFG_AUTO,
	  "auto | number", "concurrent calls; auto = 90 % of media_ports / 4; more than media_ports can carry is an error" },
	{ CONFIG_SEC_GLOBAL, "media_port_quarantine", &T_INT, G(media_port_quarantine), 0, "2", 0, 60, NULL, 0,
	  "seconds", "time before a freed media port is reused, so late packets of an old call never reach a new one" },
	{ CONFIG_SEC_GLOBAL, "drain_timeout", &T_INT, G(drain_timeout), 0, "300", 0, 86400, NULL, 0,
	  "seconds", "on SIGTERM, the longest wait for calls in progress to end" },
	{ CONFIG_SEC_GLOBAL, "unknown_source", &T_ENUM, G(unknown_source), 0, "drop", 0, 0, e_unknown_source, 0,
	  "drop | 403", "what a request from no trunk's sources gets" },

	{ CONFIG_SEC_TRUNK, "listen", &T_LISTEN, T(listen), T(nlisten), NULL, 0, 0, NULL, CFG_RESTART,
	  "udp:|tcp:|tls:HOST[:PORT], ...", "where this trunk receives SIP (default ports 5060, tls 5061)" },
	{ CONFIG_SEC_TRUNK, "sip_advertise", &T_HOST, T(sip_advertise), 0, "", 0, 0, NULL, 0,
	  "IP | host name | empty", "address in Via, Contact and Record-Route (1:1 NAT); empty = the listen address" },
	{ CONFIG_SEC_TRUNK, "media_address", &T_BIND_IP, T(media_address), 0, "127.0.0.1", 0, 0, NULL, 0,
	  "IP", "where this trunk's media sockets bind" },
	{ CONFIG_SEC_TRUNK, "media_advertise", &T_HOST, T(media_advertise), 0, "", 0, 0, NULL, 0,
	  "IP | host name | empty", "address in this trunk's SDP c= and o= lines; empty = media_address" },
	{ CONFIG_SEC_TRUNK, "sources", &T_SOURCES, T(sources), T(nsources), "", 0, 0, NULL, 0,
	  "CIDR, ... | any | empty", "who may send SIP to this trunk; empty = the peers' addresses" },
	{ CONFIG_SEC_TRUNK, "peers", &T_PEERS, T(peers), T(npeers), "", 0, 0, NULL, 0,
	  "udp:|tcp:|tls:HOST[:PORT] | ...", "where calls to this trunk go, '|' between peers in failover order" },
	{ CONFIG_SEC_TRUNK, "max_calls", &T_INT, T(max_calls), 0, "0", 0, 1000000, NULL, 0,
	  "number", "concurrent calls on this trunk; 0 = no limit of its own" },
	{ CONFIG_SEC_TRUNK, "srtp", &T_ENUM, T(srtp), 0, "mandatory", 0, 0, e_srtp, 0,
	  "mandatory | optional | off", "whether this leg's media is SRTP (RTP/SAVP with a=crypto) or plain RTP" },
	{ CONFIG_SEC_TRUNK, "crypto_suites", &T_SUITES, 0, 0, "AES_CM_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32", 0, 0, NULL, 0,
	  "SUITE, ...", "allowed SDES suites, most preferred first" },
	{ CONFIG_SEC_TRUNK, "crypto_select", &T_ENUM, T(crypto_select), 0, "local", 0, 0, e_select, 0,
	  "local | offerer", "local: our most preferred suite the offer has; offerer: the offer's first acceptable line" },
	{ CONFIG_SEC_TRUNK, "srtcp", &T_ENUM, T(srtcp), 0, "encrypted", 0, 0, e_srtcp, 0,
	  "encrypted | unencrypted | either", "whether SRTCP is encrypted (the UNENCRYPTED_SRTCP session parameter)" },
	{ CONFIG_SEC_TRUNK, "crypto_padding", &T_BOOL, T(crypto_padding), 0, "yes", 0, 0, NULL, 0,
	  "yes | no", "emit base64 keys with '=' padding (both forms are accepted)" },
	{ CONFIG_SEC_TRUNK, "crypto_lifetime", &T_LIFETIME, 0, 0, "", 0, 0, NULL, 0,
	  "2^N | number | empty", "key lifetime emitted in our a=crypto lines; empty = none" },
	{ CONFIG_SEC_TRUNK, "rekey", &T_ENUM, T(rekey), 0, "keep", 0, 0, e_rekey, 0,
	  "keep | always", "keep our key across re-offers, or send a fresh one in every offer and answer" },
	{ CONFIG_SEC_TRUNK, "rekey_roc", &T_ENUM, T(rekey_roc), 0, "keep", 0, 0, e_roc, 0,
	  "keep | reset", "after a re-key we send with the rollover counter kept, or reset to 0" },
	{ CONFIG_SEC_TRUNK, "media_latching", &T_ENUM, T(media_latching), 0, "strict", 0, 0, e_latch, 0,
	  "strict | learn", "strict: media only from the SDP address; learn: latch to a port within the signalled IP" },
	{ CONFIG_SEC_TRUNK, "pass_headers", &T_HEADERS, 0, 0, "P-Asserted-Identity, Privacy, Diversion, User-to-User", 0, 0, NULL, 0,
	  "Header-Name, ... | empty", "headers copied from the other leg's INVITE, and from its BYE (User-to-User on "
	  "hang-up; srtpprobe's X-Srtpprobe-Heard); no others cross" },
	{ CONFIG_SEC_TRUNK, "tls_certificate", &T_FILE, T(tls_certificate), 0, "/etc/srtpbridge/tls/sbc.pem", 0, 0, NULL, 0,
	  "path", "PEM certificate chain on this trunk's tls listeners (relative to the config file)" },
	{ CONFIG_SEC_TRUNK, "tls_private_key", &T_FILE, T(tls_private_key), 0, "/etc/srtpbridge/tls/sbc.key", 0, 0, NULL, 0,
	  "path", "PEM private key of tls_certificate" },
	{ CONFIG_SEC_TRUNK, "tls_ca", &T_FILE, T(tls_ca), 0, "", 0, 0, NULL, 0,
	  "path | empty", "PEM CA bundle that verifies peers; empty = the system's CAs" },
	{ CONFIG_SEC_TRUNK, "tls_verify_peer", &T_BOOL, T(tls_verify_peer), 0, "yes", 0, 0, NULL, 0,
	  "yes | no", "verify the certificates of peers we connect to" },
	{ CONFIG_SEC_TRUNK, "tls_peer_name", &T_HOST, T(tls_peer_name), 0, "", 0, 0, NULL, 0,
	  "host name | IP | empty", "name the peer certificate must carry; empty = the peer's host, or its IP checked against the IP SAN" },
	{ CONFIG_SEC_TRUNK, "tls_verify_client", &T_ENUM, T(tls_verify_client), 0, "none", 0, 0, e_client, 0,
	  "none | optional | require", "mutual TLS on our listeners; optional and require need tls_ca" },
	{ CONFIG_SEC_TRUNK, "options_interval", &T_INT, T(options_interval), 0, "30", 0, 3600, NULL, 0,
	  "seconds", "OPTIONS ping period per peer; 0 = off" },
	{ CONFIG_SEC_TRUNK, "options_ok_codes", &T_CODES, 0, 0, "200-499", 0, 0, NULL, 0,
	  "CODE | LOW-HIGH, ...", "responses to our OPTIONS that count as alive (408 and 503 never do)" },
	{ CONFIG_SEC_TRUNK, "failover_timeout", &T_INT, T(failover_timeout), 0, "3", 1, 60, NULL, 0,
	  "seconds", "time without any response before the next peer is tried" },
	{ CONFIG_SEC_TRUNK, "ring_timeout", &T_INT, T(ring_timeout), 0, "120", 1, 3600, NULL, 0,
	  "seconds", "time from the first provisional response (100 too) to the final one" },
	{ CONFIG_SEC_TRUNK, "route", &T_TRUNK, T(route_name), 0, "", 0, 0, NULL, 0,
	  "trunk name | empty", "destination trunk of calls arriving here when no [route:*] rule matches" },

	{ CONFIG_SEC_ROUTE, "from", &T_TRUNKS, 0, 0, NULL, 0, 0, NULL, 0,
	  "trunk, ...", "inbound trunks this rule applies to" },
	{ CONFIG_SEC_ROUTE, "match", &T_REGEX, 0, 0, NULL, 0, 0, NULL, 0,
	  "POSIX ERE", "pattern over the percent-decoded Request-URI user (anchor it with ^ and $)" },
	{ CONFIG_SEC_ROUTE, "to", &T_TRUNK, R(to_name), 0, NULL, 0, 0, NULL, 0,
	  "trunk name", "destination trunk of the calls this rule matches" },
};
/* clang-format on */

const struct cfg_key *cfg_table(size_t *n)
{
	*n = sizeof(table) / sizeof(table[0]);
	return table;
}

const struct config_key_info *config_keys(size_t *n)
{
	static struct config_key_info info[sizeof(table) / sizeof(table[0])];

	if (!info[0].name) {
		for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
			info[i].section = table[i].section;
			info[i].name = table[i].name;
			info[i].def = table[i].def;
			info[i].values = table[i].values;
			info[i].doc = table[i].doc;
			info[i].restart = table[i].flags & CFG_RESTART;
		}
	}
	*n = sizeof(table) / sizeof(table[0]);
	return info;
}

const char *config_section_name(enum config_section_kind k)
{
	switch (k) {
	case CONFIG_SEC_GLOBAL:
		return "global";
	case CONFIG_SEC_TRUNK:
		return "trunk:NAME";
	case CONFIG_SEC_ROUTE:
		return "route:NAME";
	}
	return "?";
}
