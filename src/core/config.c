/* The INI loader: inih does the lexing, the key table does the typing, and
 * this file tracks lines, applies defaults and checks what no single key can
 * know (references between sections, shared listeners, port budgets).
 *
 * inih only reports the first syntax error and gives the handler no line
 * number (the Debian build has no INI_HANDLER_LINENO, and defining it would
 * change the ABI). So we feed it through our own reader: the reader knows the
 * line it just handed out, which is the line of the next handler call, and a
 * key line that produced no handler call is a syntax error we name. */
#include "srtpbridge/config.h"
#include "config_table.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ini.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define LOG_MODULE	 "config"
#define CONFIG_MAX_BYTES (1024 * 1024)
#define LINE_LIMIT	 4096
#define NAME_LIMIT	 49 /* inih's MAX_SECTION/MAX_NAME truncate beyond this */
#define MAX_TRUNKS	 256
#define MAX_ROUTES	 1024

struct sec {
	enum config_section_kind kind;
	char name[NAME_LIMIT + 8];
	unsigned line;
	size_t index; /* into cfg->trunks or cfg->routes */
	bool ignore;  /* unknown or duplicate: its keys were not read */
	bool bad;     /* a key failed: skip cross-checks that would only echo it */
	unsigned key_line[64];
};

enum line_kind {
	LK_NONE = 0,
	LK_SECTION,
	LK_KEY,
	LK_REPORTED
};

struct loader {
	const char *name;
	char *dir;
	unsigned flags;
	struct config *cfg;
	struct config_problems *probs;
	const char *data;
	size_t len, pos;
	unsigned lineno;
	unsigned handled_line;
	enum line_kind kind;
	struct sec *secs;
	size_t nsecs;
	long cur;
	bool oom;
};

/* ---- problems ---- */

static void problem(struct loader *ld, unsigned line, bool warning, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void problem(struct loader *ld, unsigned line, bool warning, const char *fmt, ...)
{
	struct config_problems *p = ld->probs;
	struct config_problem *v;
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	v = realloc(p->v, (p->n + 1) * sizeof(*v));
	if (!v) {
		ld->oom = true;
		return;
	}
	p->v = v;
	v[p->n].file = strdup(ld->name);
	v[p->n].msg = strdup(msg);
	v[p->n].line = line;
	v[p->n].warning = warning;
	if (!v[p->n].file || !v[p->n].msg) {
		free(v[p->n].file);
		free(v[p->n].msg);
		ld->oom = true;
		return;
	}
	p->n++;
	if (!warning)
		p->nerrors++;
}

#define ERR(ld, line, ...)  problem(ld, line, false, __VA_ARGS__)
#define WARN(ld, line, ...) problem(ld, line, true, __VA_ARGS__)

void config_problems_free(struct config_problems *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->v[i].file);
		free(p->v[i].msg);
	}
	free(p->v);
	memset(p, 0, sizeof(*p));
}

const char *config_problem_format(const struct config_problem *p, char *buf, size_t size)
{
	if (p->line)
		snprintf(buf, size, "%s:%u: %s%s", p->file, p->line, p->warning ? "warning: " : "",
			 p->msg);
	else
		snprintf(buf, size, "%s: %s%s", p->file, p->warning ? "warning: " : "", p->msg);
	return buf;
}

void config_problems_log(const struct config_problems *p)
{
	char line[1400];

	for (size_t i = 0; i < p->n; i++) {
		config_problem_format(&p->v[i], line, sizeof(line));
		if (p->v[i].warning)
			LOG_WARN(NULL, line);
		else
			LOG_ERROR(NULL, line);
	}
}

static int cmp_problem(const void *a, const void *b)
{
	const struct config_problem *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return 0;
}

/* ---- loader services for the value parsers ---- */

unsigned cfg_loader_flags(const struct loader *ld)
{
	return ld->flags;
}

char *cfg_loader_path(const struct loader *ld, const char *path)
{
	char *out;

	if (path[0] == '/')
		return strdup(path);
	if (asprintf(&out, "%s/%s", ld->dir, path) < 0)
		return NULL;
	return out;
}

static char *dir_of(const char *name)
{
	const char *slash = strrchr(name, '/');
	char cwd[PATH_MAX], *out;
	int n;

	if (name[0] == '/')
		return strndup(name, slash == name ? 1 : (size_t)(slash - name));
	if (!getcwd(cwd, sizeof(cwd)))
		strcpy(cwd, ".");
	if (!slash)
		return strdup(cwd);
	n = asprintf(&out, "%s/%.*s", cwd, (int)(slash - name), name);
	return n < 0 ? NULL : out;
}

/* ---- sections and keys ---- */

static struct sec *cur_sec(struct loader *ld)
{
	return ld->cur < 0 ? NULL : &ld->secs[ld->cur];
}

static void *sec_base(struct loader *ld, const struct sec *s)
{
	switch (s->kind) {
	case CONFIG_SEC_GLOBAL:
		return &ld->cfg->global;
	case CONFIG_SEC_TRUNK:
		return &ld->cfg->trunks[s->index];
	case CONFIG_SEC_ROUTE:
		return &ld->cfg->routes[s->index];
	}
	return NULL;
}

static const char *sec_label(const struct sec *s, char *buf, size_t size)
{
	snprintf(buf, size, "[%s]", s->name);
	return buf;
}

static struct sec *find_sec(struct loader *ld, const char *name)
{
	for (size_t i = 0; i < ld->nsecs; i++)
		if (!ld->secs[i].ignore && strcmp(ld->secs[i].name, name) == 0)
			return &ld->secs[i];
	return NULL;
}

static void open_section(struct loader *ld, const char *p, size_t n)
{
	struct sec *s, *dup;
	size_t tn = 0, rn = 0;

	s = realloc(ld->secs, (ld->nsecs + 1) * sizeof(*s));
	if (!s) {
		ld->oom = true;
		return;
	}
	ld->secs = s;
	s = &ld->secs[ld->nsecs];
	memset(s, 0, sizeof(*s));
	s->line = ld->lineno;
	ld->cur = (long)ld->nsecs++;
	s->ignore = true;
	if (n > NAME_LIMIT) {
		ERR(ld, s->line, "section name is longer than %d characters", NAME_LIMIT);
		return;
	}
	memcpy(s->name, p, n);
	s->name[n] = '\0';
	if (strcmp(s->name, "global") == 0) {
		s->kind = CONFIG_SEC_GLOBAL;
	} else if (n > 6 && strncmp(s->name, "trunk:", 6) == 0 && cfg_valid_name(p + 6, n - 6)) {
		s->kind = CONFIG_SEC_TRUNK;
	} else if (n > 6 && strncmp(s->name, "route:", 6) == 0 && cfg_valid_name(p + 6, n - 6)) {
		s->kind = CONFIG_SEC_ROUTE;
	} else if (strncmp(s->name, "trunk:", 6) == 0 || strncmp(s->name, "route:", 6) == 0) {
		ERR(ld, s->line, "[%s]: a name after ':' uses letters, digits, '-', '_' and '.'",
		    s->name);
		return;
	} else {
		ERR(ld, s->line,
		    "unknown section [%s] (sections are [global], [trunk:NAME] and [route:NAME])",
		    s->name);
		return;
	}
	dup = find_sec(ld, s->name);
	if (dup) {
		ERR(ld, s->line, "duplicate section [%s] (first on line %u)", s->name, dup->line);
		return;
	}
	if (s->kind == CONFIG_SEC_TRUNK) {
		struct config_trunk *t;

		tn = ld->cfg->ntrunks;
		if (tn == MAX_TRUNKS) {
			ERR(ld, s->line, "more than %d trunks", MAX_TRUNKS);
			return;
		}
		t = realloc(ld->cfg->trunks, (tn + 1) * sizeof(*t));
		if (!t) {
			ld->oom = true;
			return;
		}
		ld->cfg->trunks = t;
		memset(&t[tn], 0, sizeof(*t));
		t[tn].name = strdup(s->name + 6);
		t[tn].line = s->line;
		ld->cfg->ntrunks++;
		s->index = tn;
		if (!t[tn].name)
			ld->oom = true;
	} else if (s->kind == CONFIG_SEC_ROUTE) {
		struct config_route *r;

		rn = ld->cfg->nroutes;
		if (rn == MAX_ROUTES) {
			ERR(ld, s->line, "more than %d routes", MAX_ROUTES);
			return;
		}
		r = realloc(ld->cfg->routes, (rn + 1) * sizeof(*r));
		if (!r) {
			ld->oom = true;
			return;
		}
		ld->cfg->routes = r;
		memset(&r[rn], 0, sizeof(*r));
		r[rn].name = strdup(s->name + 6);
		r[rn].line = s->line;
		ld->cfg->nroutes++;
		s->index = rn;
		if (!r[rn].name)
			ld->oom = true;
	}
	s->ignore = false;
}

static const struct cfg_key *find_key(enum config_section_kind kind, const char *name, size_t *idx)
{
	size_t n;
	const struct cfg_key *t = cfg_table(&n);

	for (size_t i = 0; i < n; i++) {
		if (t[i].section == kind && strcmp(t[i].name, name) == 0) {
			*idx = i;
			return &t[i];
		}
	}
	return NULL;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct loader *ld = user;
	struct sec *s = cur_sec(ld);
	const struct cfg_key *k;
	char why[512], lab[80];
	size_t idx;

	(void)section; /* inih's copy may be truncated: the reader's is not */
	ld->handled_line = ld->lineno;
	if (!s) {
		ERR(ld, ld->lineno, "'%s' comes before any section (start with [global])", name);
		return 1;
	}
	if (s->ignore)
		return 1;
	if (!*name) {
		ERR(ld, ld->lineno, "a key name is missing before '='");
		return 1;
	}
	k = find_key(s->kind, name, &idx);
	if (!k) {
		ERR(ld, ld->lineno, "unknown key '%s' in %s", name, sec_label(s, lab, sizeof(lab)));
		return 1;
	}
	if (s->key_line[idx]) {
		ERR(ld, ld->lineno, "duplicate key '%s' (first set on line %u)", name,
		    s->key_line[idx]);
		return 1;
	}
	s->key_line[idx] = ld->lineno;
	if (k->type->parse(ld, k, sec_base(ld, s), value, why, sizeof(why))) {
		ERR(ld, ld->lineno, "%s: %s", name, why);
		s->bad = true;
	}
	return 1;
}

/* ---- the reader that counts lines ---- */

static void check_line_handled(struct loader *ld)
{
	if (ld->kind == LK_KEY && ld->handled_line != ld->lineno)
		ERR(ld, ld->lineno, "expected 'key = value'");
	ld->kind = LK_NONE;
}

static enum line_kind classify(struct loader *ld, char *line, size_t n)
{
	char *p = line, *end = line + n, *rb;

	if (ld->lineno == 1 && n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
		p += 3;
	while (p < end && isspace((unsigned char)*p))
		p++;
	if (p == end || *p == ';' || *p == '#')
		return LK_NONE;
	if (*p == '[') {
		/* As inih does: an inline comment (';' after white space) ends the
		 * header, and a ']' inside it does not close the section. */
		char *stop = p + 1;

		while (stop < end && !(*stop == ';' && isspace((unsigned char)stop[-1])))
			stop++;
		rb = memchr(p, ']', (size_t)(stop - p));
		if (!rb) {
			ERR(ld, ld->lineno, "section header without ']'");
			return LK_REPORTED;
		}
		for (char *q = rb + 1; q < end; q++) {
			if (*q == ';' || *q == '#')
				break;
			if (!isspace((unsigned char)*q)) {
				ERR(ld, ld->lineno, "unexpected text after ']'");
				/* Still open it, so that its keys and the references to
				 * it do not each repeat this one mistake. */
				open_section(ld, p + 1, (size_t)(rb - p - 1));
				if (cur_sec(ld))
					cur_sec(ld)->bad = true;
				return LK_SECTION;
			}
		}
		open_section(ld, p + 1, (size_t)(rb - p - 1));
		return LK_SECTION;
	}
	/* inih also splits at ':', which would turn "udp:1.2.3.4" into a key. */
	char *eq = memchr(p, '=', (size_t)(end - p));
	char *colon = memchr(p, ':', (size_t)(end - p));

	if (colon && (!eq || colon < eq)) {
		ERR(ld, ld->lineno, "expected 'key = value'");
		return LK_REPORTED;
	}
	return LK_KEY;
}

static char *reader(char *str, int num, void *stream)
{
	struct loader *ld = stream;
	const char *p, *nl;
	size_t rest, linelen, content;

	check_line_handled(ld);
	if (ld->pos >= ld->len)
		return NULL;
	p = ld->data + ld->pos;
	rest = ld->len - ld->pos;
	nl = memchr(p, '\n', rest);
	linelen = nl ? (size_t)(nl - p) : rest;
	ld->pos += linelen + (nl ? 1 : 0);
	ld->lineno++;
	content = linelen;
	if (content && p[content - 1] == '\r')
		content--;
	/* A line inih cannot take whole goes in as a blank line, reported once. */
	if (memchr(p, '\0', linelen)) {
		ERR(ld, ld->lineno, "line contains a NUL byte");
		ld->kind = LK_REPORTED;
	} else if (content + 2 > (size_t)num) {
		ERR(ld, ld->lineno, "line is longer than %d characters", num - 2);
		ld->kind = LK_REPORTED;
	} else {
		memcpy(str, p, content);
		str[content] = '\0';
		ld->kind = classify(ld, str, content);
		if (ld->kind != LK_REPORTED && ld->kind != LK_SECTION) {
			str[content] = '\n';
			str[content + 1] = '\0';
			return str;
		}
		if (ld->kind == LK_SECTION) {
			/* inih must see the section too, or it would attribute keys to
			 * the previous one; its name is ignored (see on_key). */
			str[content] = '\n';
			str[content + 1] = '\0';
			return str;
		}
	}
	str[0] = '\n';
	str[1] = '\0';
	return str;
}

/* ---- defaults ---- */

static void apply_defaults(struct loader *ld, struct sec *s)
{
	size_t n;
	const struct cfg_key *t = cfg_table(&n);
	char why[512], lab[80];

	for (size_t i = 0; i < n; i++) {
		if (t[i].section != s->kind || s->key_line[i])
			continue;
		if (!t[i].def) {
			ERR(ld, s->line, "%s needs '%s'", sec_label(s, lab, sizeof(lab)),
			    t[i].name);
			s->bad = true;
			continue;
		}
		if (t[i].type->parse(ld, &t[i], sec_base(ld, s), t[i].def, why, sizeof(why))) {
			ERR(ld, s->line, "default of '%s' is invalid here: %s", t[i].name, why);
			s->bad = true;
		}
	}
}

static unsigned key_line(const struct sec *s, const char *name)
{
	size_t idx;

	if (!find_key(s->kind, name, &idx))
		return s->line;
	return s->key_line[idx] ? s->key_line[idx] : s->line;
}

/* ---- cross-checks ---- */

static struct sec *sec_of_trunk(struct loader *ld, size_t index)
{
	for (size_t i = 0; i < ld->nsecs; i++)
		if (!ld->secs[i].ignore && ld->secs[i].kind == CONFIG_SEC_TRUNK &&
		    ld->secs[i].index == index)
			return &ld->secs[i];
	return NULL;
}

static bool is_wildcard(const struct sip_uri *u)
{
	static const uint8_t zero[16];

	if (!u->resolved)
		return false;
	if (u->addr.ss_family == AF_INET)
		return ((const struct sockaddr_in *)&u->addr)->sin_addr.s_addr == 0;
	return memcmp(&((const struct sockaddr_in6 *)&u->addr)->sin6_addr, zero, 16) == 0;
}

static bool is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
	return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

static const char *tls_error(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	return r ? r : "not a usable PEM file";
}

static void check_tls_files(struct loader *ld, struct config_trunk *t, struct sec *s,
			    bool need_cert)
{
	SSL_CTX *ctx;

	if (need_cert && (!t->tls_certificate || !t->tls_private_key)) {
		ERR(ld, key_line(s, t->tls_certificate ? "tls_private_key" : "tls_certificate"),
		    "a tls listen address needs tls_certificate and tls_private_key");
		return;
	}
	if (t->tls_verify_client != TLS_CLIENT_NONE && !t->tls_ca)
		ERR(ld, key_line(s, "tls_verify_client"),
		    "tls_verify_client = %s needs tls_ca, the CA that signs client certificates",
		    t->tls_verify_client == TLS_CLIENT_REQUIRE ? "require" : "optional");
	if (ld->flags & CONFIG_NO_FILES)
		return;
	if (t->tls_ca && access(t->tls_ca, R_OK) != 0) {
		ERR(ld, key_line(s, "tls_ca"), "tls_ca: cannot read %s: %s", t->tls_ca,
		    strerror(errno));
	} else if (t->tls_ca) {
		X509_STORE *st = X509_STORE_new();

		ERR_clear_error();
		if (!st || X509_STORE_load_file(st, t->tls_ca) != 1)
			ERR(ld, key_line(s, "tls_ca"), "tls_ca: %s: %s", t->tls_ca, tls_error());
		X509_STORE_free(st);
	}
	if (!need_cert)
		return;
	if (access(t->tls_certificate, R_OK) != 0) {
		ERR(ld, key_line(s, "tls_certificate"),
		    "a tls listen address needs a certificate: cannot read %s: %s",
		    t->tls_certificate, strerror(errno));
		return;
	}
	if (access(t->tls_private_key, R_OK) != 0) {
		ERR(ld, key_line(s, "tls_private_key"), "tls_private_key: cannot read %s: %s",
		    t->tls_private_key, strerror(errno));
		return;
	}
	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		ld->oom = true;
		return;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, t->tls_certificate) != 1) {
		ERR(ld, key_line(s, "tls_certificate"), "tls_certificate: %s: %s",
		    t->tls_certificate, tls_error());
	} else if (SSL_CTX_use_PrivateKey_file(ctx, t->tls_private_key, SSL_FILETYPE_PEM) != 1 &&
		   ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH) {
		ERR(ld, key_line(s, "tls_private_key"), "tls_private_key: %s: %s",
		    t->tls_private_key, tls_error());
	} else if (ERR_peek_last_error() || SSL_CTX_check_private_key(ctx) != 1) {
		/* OpenSSL's own words for this are "key values mismatch". */
		ERR(ld, key_line(s, "tls_private_key"),
		    "tls_private_key %s does not belong to tls_certificate %s", t->tls_private_key,
		    t->tls_certificate);
	} else {
		X509 *x = SSL_CTX_get0_certificate(ctx);

		if (x && X509_cmp_current_time(X509_get0_notAfter(x)) < 0)
			WARN(ld, key_line(s, "tls_certificate"),
			     "tls_certificate %s has expired: peers will refuse it",
			     t->tls_certificate);
	}
	SSL_CTX_free(ctx);
	ERR_clear_error();
}

static int add_source(struct config_trunk *t, const struct sockaddr_storage *ss)
{
	struct cidr c, *v;

	cfg_cidr_from_sockaddr(ss, &c);
	for (size_t i = 0; i < t->nsources; i++)
		if (memcmp(&t->sources[i], &c, sizeof(c)) == 0)
			return 0;
	v = realloc(t->sources, (t->nsources + 1) * sizeof(*v));
	if (!v)
		return ENOMEM;
	t->sources = v;
	v[t->nsources++] = c;
	return 0;
}

/* sources empty = the peers' addresses, every address a name resolves to. */
static void derive_sources(struct loader *ld, struct config_trunk *t, struct sec *s)
{
	for (size_t i = 0; i < t->npeers; i++) {
		const struct sip_uri *p = &t->peers[i];
		struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *res = NULL, *a;
		int rc;

		if (p->resolved) {
			if (add_source(t, &p->addr))
				ld->oom = true;
			continue;
		}
		if (ld->flags & CONFIG_NO_RESOLVE)
			continue;
		rc = getaddrinfo(p->host, NULL, &hints, &res);
		if (rc != 0) {
			ERR(ld, key_line(s, "peers"),
			    "sources is empty, so the peers' addresses are the sources, but '%s' "
			    "does not resolve (%s): set sources",
			    p->host, gai_strerror(rc));
			continue;
		}
		for (a = res; a; a = a->ai_next) {
			struct sockaddr_storage ss = { 0 };

			memcpy(&ss, a->ai_addr, a->ai_addrlen);
			if (add_source(t, &ss))
				ld->oom = true;
		}
		freeaddrinfo(res);
	}
}

static struct config_trunk *trunk_by_name(struct config *c, const char *name)
{
	for (size_t i = 0; i < c->ntrunks; i++)
		if (strcmp(c->trunks[i].name, name) == 0)
			return &c->trunks[i];
	return NULL;
}

static void check_global(struct loader *ld)
{
	struct config_global *g = &ld->cfg->global;
	struct sec *s = find_sec(ld, "global");
	unsigned nports = (unsigned)g->media_port_max - g->media_port_min + 1;
	unsigned capacity = nports / 4;
	unsigned line = s ? key_line(s, "max_calls") : 0;

	if (g->max_calls == CONFIG_AUTO) {
		g->max_calls = (int)(nports * 9 / 40);
		if (g->max_calls < 1)
			g->max_calls = 1;
	} else if ((unsigned)g->max_calls > capacity) {
		ERR(ld, line,
		    "max_calls = %d needs %u media ports (4 a call), but media_ports %u-%u has %u",
		    g->max_calls, (unsigned)g->max_calls * 4, g->media_port_min, g->media_port_max,
		    nports);
	}
}

static void check_trunk(struct loader *ld, struct config_trunk *t, struct sec *s)
{
	struct config_global *g = &ld->cfg->global;
	bool tls_listen = false, udp_listen = false, public_listen = false;
	struct sockaddr_storage media;
	char u[300];

	for (size_t i = 0; i < t->nlisten; i++) {
		const struct sip_uri *l = &t->listen[i];

		if (l->transport == SIP_TP_TLS)
			tls_listen = true;
		if (l->transport == SIP_TP_UDP)
			udp_listen = true;
		if (l->resolved && !is_loopback(&l->addr))
			public_listen = true;
		if (is_wildcard(l) && !t->sip_advertise) {
			config_uri_format(l, u, sizeof(u));
			ERR(ld, key_line(s, "listen"),
			    "listen %s is a wildcard address: set sip_advertise to the address "
			    "peers reach, for Via, Contact and Record-Route",
			    u);
		}
	}
	for (size_t i = 0; i < t->npeers; i++) {
		if (t->peers[i].transport == SIP_TP_UDP && !udp_listen) {
			config_uri_format(&t->peers[i], u, sizeof(u));
			ERR(ld, key_line(s, "peers"),
			    "peer %s is udp, but the trunk has no udp listen address to send from",
			    u);
			break;
		}
	}
	check_tls_files(ld, t, s, tls_listen);

	if (t->media_address) {
		struct sip_uri mu;
		char why[300];
		char buf[300];

		snprintf(buf, sizeof(buf), strchr(t->media_address, ':') ? "udp:[%s]" : "udp:%s",
			 t->media_address);
		if (cfg_parse_uri(buf, strlen(buf), false, &mu, why, sizeof(why)) == 0) {
			media = mu.addr;
			if (is_wildcard(&mu) && !t->media_advertise)
				ERR(ld, key_line(s, "media_address"),
				    "media_address %s is a wildcard: set media_advertise to the "
				    "address peers send media to",
				    t->media_address);
			else if (is_loopback(&media) && public_listen && !t->media_advertise)
				WARN(ld, key_line(s, "media_address"),
				     "media_address is %s (loopback) while the trunk listens on a "
				     "public address: peers will send media nowhere",
				     t->media_address);
		}
	}

	if (!t->sources_any && t->nsources == 0)
		derive_sources(ld, t, s);
	if (!t->sources_any && t->nsources == 0 && t->npeers == 0)
		ERR(ld, s->line,
		    "[trunk:%s] accepts requests from no one: set sources, or peers (whose "
		    "addresses become the sources)",
		    t->name);

	if (t->max_calls > g->max_calls && g->max_calls > 0)
		ERR(ld, key_line(s, "max_calls"),
		    "max_calls = %d is more than the daemon's max_calls %d (media_ports %u-%u)",
		    t->max_calls, g->max_calls, g->media_port_min, g->media_port_max);
}

/* References stand on their own: checked even in a section with other errors. */
static void check_trunk_route(struct loader *ld, struct config_trunk *t, struct sec *s)
{
	struct config_trunk *dst;

	if (!t->route_name)
		return;
	dst = trunk_by_name(ld->cfg, t->route_name);
	if (!dst)
		ERR(ld, key_line(s, "route"), "route: no trunk named '%s'", t->route_name);
	else if (dst == t)
		ERR(ld, key_line(s, "route"), "route: a trunk cannot route calls to itself");
	else if (dst->npeers == 0 && !sec_of_trunk(ld, (size_t)(dst - ld->cfg->trunks))->bad)
		ERR(ld, key_line(s, "route"), "route: trunk '%s' has no peers to send calls to",
		    dst->name);
	else
		t->route = dst;
}

static bool sources_overlap(const struct config_trunk *a, const struct config_trunk *b, char *what,
			    size_t size)
{
	if (a->sources_any || b->sources_any) {
		snprintf(what, size, "%s", "any address (sources = any)");
		return a->sources_any ? (b->sources_any || b->nsources) : a->nsources > 0;
	}
	for (size_t i = 0; i < a->nsources; i++) {
		for (size_t j = 0; j < b->nsources; j++) {
			if (cfg_cidr_overlap(&a->sources[i], &b->sources[j])) {
				const struct cidr *c = a->sources[i].prefix > b->sources[j].prefix
							       ? &a->sources[i]
							       : &b->sources[j];
				char ip[INET6_ADDRSTRLEN];

				inet_ntop(c->family, c->addr, ip, sizeof(ip));
				snprintf(what, size, "%s/%u", ip, c->prefix);
				return true;
			}
		}
	}
	return false;
}

static bool same_host(const struct sip_uri *a, const struct sip_uri *b)
{
	if (a->resolved && b->resolved) {
		if (a->addr.ss_family != b->addr.ss_family)
			return false;
		if (a->addr.ss_family == AF_INET)
			return ((const struct sockaddr_in *)&a->addr)->sin_addr.s_addr ==
			       ((const struct sockaddr_in *)&b->addr)->sin_addr.s_addr;
		return memcmp(&((const struct sockaddr_in6 *)&a->addr)->sin6_addr,
			      &((const struct sockaddr_in6 *)&b->addr)->sin6_addr, 16) == 0;
	}
	return strcmp(a->host, b->host) == 0;
}

static bool same_family(const struct sip_uri *a, const struct sip_uri *b)
{
	return a->resolved && b->resolved && a->addr.ss_family == b->addr.ss_family;
}

static bool str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Two trunks on one listen address: what would make it ambiguous which
 * trunk a request is for, or impossible to serve both. */
static bool shared_listener_conflict(struct loader *ld, const struct config_trunk *a,
				     const struct config_trunk *b, const struct sip_uri *la,
				     struct sec *sj, const char *v)
{
	char what[80];

	if (sources_overlap(a, b, what, sizeof(what))) {
		ERR(ld, key_line(sj, "sources"),
		    "trunks '%s' and '%s' share listen %s and both accept %s: a request could "
		    "not be told apart (make sources disjoint)",
		    a->name, b->name, v, what);
		return true;
	}
	if (la->transport != SIP_TP_TLS)
		return false;
	if (!str_eq(a->tls_certificate, b->tls_certificate) ||
	    !str_eq(a->tls_private_key, b->tls_private_key)) {
		ERR(ld, key_line(sj, "tls_certificate"),
		    "trunks '%s' and '%s' share tls listener %s but name different certificates: "
		    "one listener presents one certificate",
		    a->name, b->name, v);
		return true;
	}
	/* the client is verified in the handshake, before any request says
	 * which trunk it is for */
	if (a->tls_verify_client != b->tls_verify_client || !str_eq(a->tls_ca, b->tls_ca)) {
		ERR(ld, key_line(sj, "tls_verify_client"),
		    "trunks '%s' and '%s' share tls listener %s but verify clients differently "
		    "(tls_verify_client, tls_ca): one listener verifies one way",
		    a->name, b->name, v);
		return true;
	}
	return false;
}

static void check_listeners(struct loader *ld)
{
	struct config *c = ld->cfg;
	char u[300], v[300];

	for (size_t j = 0; j < c->ntrunks; j++) {
		struct sec *sj = sec_of_trunk(ld, j);

		if (!sj || sj->bad)
			continue;
		for (size_t i = 0; i < j; i++) {
			struct sec *si = sec_of_trunk(ld, i);
			struct config_trunk *a = &c->trunks[i], *b = &c->trunks[j];
			bool reported = false;

			if (!si || si->bad)
				continue;
			for (size_t x = 0; x < a->nlisten && !reported; x++) {
				for (size_t y = 0; y < b->nlisten && !reported; y++) {
					const struct sip_uri *la = &a->listen[x],
							     *lb = &b->listen[y];

					if (la->transport != lb->transport || la->port != lb->port)
						continue;
					config_uri_format(lb, v, sizeof(v));
					config_uri_format(la, u, sizeof(u));
					if (!same_host(la, lb)) {
						if (same_family(la, lb) &&
						    (is_wildcard(la) || is_wildcard(lb))) {
							ERR(ld, key_line(sj, "listen"),
							    "listen %s overlaps %s of trunk '%s' "
							    "(line %u): share one address or use "
							    "another port",
							    v, u, a->name, key_line(si, "listen"));
							reported = true;
						}
						continue;
					}
					reported = shared_listener_conflict(ld, a, b, la, sj, v);
				}
			}
		}
	}
}

static void check_routes(struct loader *ld)
{
	struct config *c = ld->cfg;

	for (size_t i = 0; i < ld->nsecs; i++) {
		struct sec *s = &ld->secs[i];
		struct config_route *r;

		if (s->ignore || s->kind != CONFIG_SEC_ROUTE || s->bad)
			continue;
		r = &c->routes[s->index];
		for (size_t f = 0; f < r->nfrom; f++) {
			r->from[f] = trunk_by_name(c, r->from_names[f]);
			if (!r->from[f])
				ERR(ld, key_line(s, "from"), "from: no trunk named '%s'",
				    r->from_names[f]);
		}
		r->to = r->to_name ? trunk_by_name(c, r->to_name) : NULL;
		if (!r->to) {
			ERR(ld, key_line(s, "to"), "to: no trunk named '%s'",
			    r->to_name ? r->to_name : "");
			continue;
		}
		if (r->to->npeers == 0)
			ERR(ld, key_line(s, "to"), "to: trunk '%s' has no peers to send calls to",
			    r->to->name);
		for (size_t f = 0; f < r->nfrom; f++)
			if (r->from[f] == r->to)
				ERR(ld, key_line(s, "to"),
				    "to: this rule would send calls from '%s' back to '%s'",
				    r->to->name, r->to->name);
	}
}

static void finish(struct loader *ld)
{
	struct sec *g = find_sec(ld, "global");
	struct sec implicit = { .kind = CONFIG_SEC_GLOBAL, .name = "global" };

	apply_defaults(ld, g ? g : &implicit);
	for (size_t i = 0; i < ld->nsecs; i++)
		if (!ld->secs[i].ignore && ld->secs[i].kind != CONFIG_SEC_GLOBAL)
			apply_defaults(ld, &ld->secs[i]);
	if (ld->cfg->ntrunks == 0)
		ERR(ld, 0, "no [trunk:NAME] section: srtpbridge needs at least two trunks");
	check_global(ld);
	for (size_t i = 0; i < ld->nsecs; i++) {
		struct sec *s = &ld->secs[i];

		if (s->ignore || s->kind != CONFIG_SEC_TRUNK)
			continue;
		if (!s->bad)
			check_trunk(ld, &ld->cfg->trunks[s->index], s);
		check_trunk_route(ld, &ld->cfg->trunks[s->index], s);
	}
	check_listeners(ld);
	check_routes(ld);
}

/* ---- snapshot life ---- */

static void free_section_values(enum config_section_kind kind, void *base)
{
	size_t n;
	const struct cfg_key *t = cfg_table(&n);

	for (size_t i = 0; i < n; i++)
		if (t[i].section == kind && t[i].type->release)
			t[i].type->release(&t[i], base);
}

static void config_free(struct config *c)
{
	free_section_values(CONFIG_SEC_GLOBAL, &c->global);
	for (size_t i = 0; i < c->ntrunks; i++) {
		free_section_values(CONFIG_SEC_TRUNK, &c->trunks[i]);
		free(c->trunks[i].name);
	}
	for (size_t i = 0; i < c->nroutes; i++) {
		free_section_values(CONFIG_SEC_ROUTE, &c->routes[i]);
		free(c->routes[i].name);
	}
	free(c->trunks);
	free(c->routes);
	free(c->path);
	free(c);
}

struct config *config_ref(struct config *c)
{
	__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
	return c;
}

void config_unref(struct config *c)
{
	if (c && __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0)
		config_free(c);
}

int config_load_buffer(const char *name, const char *data, size_t len, unsigned flags,
		       struct config **out, struct config_problems *problems)
{
	struct loader ld = {
		.name = name, .flags = flags, .probs = problems, .data = data, .len = len, .cur = -1
	};
	bool saved_multiline = ini_allow_multiline;
	int saved_max_line = ini_max_line, rc;
	char *line;

	*out = NULL;
	ld.cfg = calloc(1, sizeof(*ld.cfg));
	ld.dir = dir_of(name);
	if (!ld.cfg || !ld.dir) {
		free(ld.cfg);
		free(ld.dir);
		return ENOMEM;
	}
	ld.cfg->refs = 1;
	ld.cfg->path = strdup(name);
	/* Continuation lines would silently glue a mis-indented key onto the
	 * previous value. inih's options are process-wide: set and restore. */
	ini_allow_multiline = false;
	/* Debian's inih sizes its stack line buffer from ini_max_line at run
	 * time (a VLA in ini_parse_stream, checked in its object code), so a
	 * larger limit is safe; our reader never writes more than it is given. */
	ini_max_line = LINE_LIMIT;
	line = malloc(LINE_LIMIT);
	if (line) {
		free(line); /* inih allocates its own; this only checks we could */
		rc = ini_parse_stream(reader, &ld, on_key, &ld);
		if (rc > 0 && ld.probs->n == 0)
			ERR(&ld, (unsigned)rc, "syntax error");
		else if (rc == -2)
			ld.oom = true;
	} else {
		ld.oom = true;
	}
	ini_allow_multiline = saved_multiline;
	ini_max_line = saved_max_line;

	if (!ld.oom && ld.nsecs == 0 && len == 0)
		ERR(&ld, 0, "the file is empty");
	if (!ld.oom)
		finish(&ld);
	if (problems->n > 1)
		qsort(problems->v, problems->n, sizeof(problems->v[0]), cmp_problem);
	free(ld.secs);
	free(ld.dir);
	if (ld.oom || !ld.cfg->path) {
		config_unref(ld.cfg);
		return ENOMEM;
	}
	if (problems->nerrors) {
		config_unref(ld.cfg);
		return EINVAL;
	}
	*out = ld.cfg;
	return 0;
}

int config_load(const char *path, unsigned flags, struct config **out,
		struct config_problems *problems)
{
	struct loader ld = { .name = path, .probs = problems };
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0;
	int err;

	*out = NULL;
	if (!f) {
		err = errno;
		ERR(&ld, 0, "cannot read: %s", strerror(err));
		return err;
	}
	buf = malloc(CONFIG_MAX_BYTES + 1);
	if (!buf) {
		fclose(f);
		return ENOMEM;
	}
	n = fread(buf, 1, CONFIG_MAX_BYTES + 1, f);
	err = ferror(f) ? EIO : 0;
	fclose(f);
	if (err) {
		ERR(&ld, 0, "cannot read: %s", strerror(err));
	} else if (n > CONFIG_MAX_BYTES) {
		ERR(&ld, 0, "larger than %d bytes", CONFIG_MAX_BYTES);
		err = EFBIG;
	} else {
		err = config_load_buffer(path, buf, n, flags, out, problems);
	}
	free(buf);
	return err;
}

/* ---- lookups ---- */

const struct config_trunk *config_trunk_find(const struct config *c, const char *name)
{
	return trunk_by_name((struct config *)c, name);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* RFC 3261 escapes; a broken escape or an escaped NUL matches nothing. */
static bool percent_decode(const char *in, size_t len, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		if (in[i] == '%') {
			int h, l;

			if (i + 2 >= len)
				return false;
			h = hexval(in[i + 1]);
			l = hexval(in[i + 2]);
			if (h < 0 || l < 0 || (h == 0 && l == 0))
				return false;
			out[o++] = (char)(h * 16 + l);
			i += 2;
		} else if (in[i] == '\0') {
			return false;
		} else {
			out[o++] = in[i];
		}
	}
	out[o] = '\0';
	return true;
}

const struct config_trunk *config_route_lookup(const struct config *c,
					       const struct config_trunk *in, const char *user,
					       size_t len, const struct config_route **rule)
{
	char stackbuf[256], *buf = stackbuf;
	const struct config_trunk *dst = NULL;

	if (rule)
		*rule = NULL;
	if (len >= sizeof(stackbuf)) {
		buf = malloc(len + 1);
		if (!buf)
			return NULL;
	}
	if (!percent_decode(user, len, buf))
		goto out;
	for (size_t i = 0; i < c->nroutes; i++) {
		const struct config_route *r = &c->routes[i];
		bool from = false;

		for (size_t f = 0; f < r->nfrom && !from; f++)
			from = r->from[f] == in;
		if (from && regexec(&r->match, buf, 0, NULL, 0) == 0) {
			if (rule)
				*rule = r;
			dst = r->to;
			goto out;
		}
	}
	dst = in->route;
out:
	if (buf != stackbuf)
		free(buf);
	return dst;
}

void config_restart_keys_changed(const struct config *old, const struct config *cur,
				 void (*cb)(void *arg, const char *section, const char *key),
				 void *arg)
{
	size_t n;
	const struct cfg_key *t = cfg_table(&n);
	char sec[80];

	for (size_t i = 0; i < n; i++)
		if (t[i].section == CONFIG_SEC_GLOBAL && (t[i].flags & CFG_RESTART) &&
		    !t[i].type->equal(&t[i], &old->global, &cur->global))
			cb(arg, "global", t[i].name);
	for (size_t j = 0; j < cur->ntrunks; j++) {
		const struct config_trunk *nt = &cur->trunks[j];
		const struct config_trunk *ot = config_trunk_find(old, nt->name);

		snprintf(sec, sizeof(sec), "trunk:%s", nt->name);
		for (size_t i = 0; i < n; i++)
			if (t[i].section == CONFIG_SEC_TRUNK && (t[i].flags & CFG_RESTART) &&
			    (!ot || !t[i].type->equal(&t[i], ot, nt)))
				cb(arg, sec, t[i].name);
	}
	for (size_t j = 0; j < old->ntrunks; j++) {
		if (config_trunk_find(cur, old->trunks[j].name))
			continue;
		snprintf(sec, sizeof(sec), "trunk:%s", old->trunks[j].name);
		for (size_t i = 0; i < n; i++)
			if (t[i].section == CONFIG_SEC_TRUNK && (t[i].flags & CFG_RESTART))
				cb(arg, sec, t[i].name);
	}
}

/* ---- classification ---- */

static bool sockaddr_same_port_addr(const struct sockaddr_storage *a, const struct sockaddr *b)
{
	if (a->ss_family != b->sa_family)
		return false;
	if (b->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const struct sockaddr_in *)a;
		const struct sockaddr_in *y = (const struct sockaddr_in *)b;

		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (b->sa_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
		const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;

		return x->sin6_port == y->sin6_port &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
	}
	return false;
}

const struct config_trunk *config_trunk_for_source(const struct config *c,
						   enum sip_transport transport,
						   const struct sockaddr *local,
						   const struct sockaddr *src)
{
	struct sockaddr_storage ss = { 0 };
	struct cidr from;

	if (!local || !src)
		return NULL; /* no listen address to classify by: nobody's */
	if (src->sa_family == AF_INET)
		memcpy(&ss, src, sizeof(struct sockaddr_in));
	else if (src->sa_family == AF_INET6)
		memcpy(&ss, src, sizeof(struct sockaddr_in6));
	else
		return NULL;
	cfg_cidr_from_sockaddr(&ss, &from);
	for (size_t i = 0; i < c->ntrunks; i++) {
		const struct config_trunk *t = &c->trunks[i];
		bool listens = false;

		for (size_t l = 0; l < t->nlisten && !listens; l++)
			listens = t->listen[l].transport == transport && t->listen[l].resolved &&
				  sockaddr_same_port_addr(&t->listen[l].addr, local);
		if (!listens)
			continue;
		if (t->sources_any)
			return t;
		for (size_t k = 0; k < t->nsources; k++)
			if (cfg_cidr_overlap(&t->sources[k], &from))
				return t;
	}
	return NULL;
}
