/* config.h: the INI configuration as an immutable, reference-counted snapshot.
 *
 * One declarative table of keys (config_keys()) drives the loader, --check,
 * the generated srtpbridge.ini(5) and the docs test. A reload builds a new
 * snapshot and swaps a pointer; work in progress keeps the snapshot it took
 * a reference to (STYLE.md section 8). */
#ifndef SRTPBRIDGE_CONFIG_H
#define SRTPBRIDGE_CONFIG_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "srtpbridge/log.h"
#include "srtpbridge/suite.h"

#define CONFIG_AUTO (-1)

enum sip_transport {
	SIP_TP_UDP = 0,
	SIP_TP_TCP,
	SIP_TP_TLS,
};

/* A transport URI of listen or peers: udp:HOST[:PORT], HOST an IPv4 address,
 * [IPv6] or a host name. addr is set when host is a literal, or a name that
 * resolved at load (listen only; peer names resolve at use). */
struct sip_uri {
	enum sip_transport transport;
	char host[256];
	uint16_t port;
	bool resolved;
	struct sockaddr_storage addr;
	socklen_t addrlen;
};

/* "udp:HOST:PORT" ("tls:[2001:db8::1]:5061"): how logs, srtpbridgectl and
 * config messages name a listen address or a peer. */
void config_uri_format(const struct sip_uri *u, char *buf, size_t size);

/* One CIDR block of sources. */
struct cidr {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	unsigned prefix;
};

enum srtp_mode {
	SRTP_MANDATORY = 0,
	SRTP_OPTIONAL,
	SRTP_OFF
};
enum crypto_select {
	CRYPTO_SELECT_LOCAL = 0,
	CRYPTO_SELECT_OFFERER
};
enum srtcp_mode {
	SRTCP_ENCRYPTED = 0,
	SRTCP_UNENCRYPTED,
	SRTCP_EITHER
};
enum rekey_mode {
	REKEY_KEEP = 0,
	REKEY_ALWAYS
};
enum rekey_roc {
	REKEY_ROC_KEEP = 0,
	REKEY_ROC_RESET
};
enum media_latching {
	LATCH_STRICT = 0,
	LATCH_LEARN
};
enum tls_verify_client {
	TLS_CLIENT_NONE = 0,
	TLS_CLIENT_OPTIONAL,
	TLS_CLIENT_REQUIRE
};
/* The media workers' I/O (relay.h, enum relay_io: the same order). */
enum media_io {
	MEDIA_IO_AUTO = 0,
	MEDIA_IO_EPOLL,
	MEDIA_IO_URING
};
enum unknown_source {
	UNKNOWN_SOURCE_DROP = 0,
	UNKNOWN_SOURCE_403
};

struct config_global {
	enum log_level log_level;
	bool sip_trace;
	char *control_socket;
	char *metrics_listen; /* "" = off */
	char metrics_host[64];
	uint16_t metrics_port;
	uint16_t media_port_min, media_port_max;
	int media_workers; /* CONFIG_AUTO or 1.. */
	enum media_io media_io;
	int media_timeout;
	int media_timeout_hold;
	int max_calls; /* resolved: never CONFIG_AUTO after load */
	int media_port_quarantine;
	int drain_timeout;
	enum unknown_source unknown_source;
};

struct config_trunk {
	char *name;
	struct sip_uri *listen;
	size_t nlisten;
	char *sip_advertise;   /* NULL = the listen address */
	char *media_address;   /* an IP literal */
	char *media_advertise; /* NULL = media_address */
	struct cidr *sources;  /* effective: the peers' addresses when the key is empty */
	size_t nsources;
	bool sources_any;
	struct sip_uri *peers; /* in failover order */
	size_t npeers;
	int max_calls; /* 0 = none */
	enum srtp_mode srtp;
	enum suite_id suites[SUITE_COUNT];
	size_t nsuites;
	enum crypto_select crypto_select;
	enum srtcp_mode srtcp;
	bool crypto_padding;
	uint64_t crypto_lifetime; /* 0 = none */
	bool crypto_lifetime_pow2;
	enum rekey_mode rekey;
	enum rekey_roc rekey_roc;
	enum media_latching media_latching;
	char **pass_headers;
	size_t npass_headers;
	char *tls_certificate; /* absolute paths */
	char *tls_private_key;
	char *tls_ca;
	bool tls_verify_peer;
	char *tls_peer_name;
	enum tls_verify_client tls_verify_client;
	int options_interval;
	uint16_t options_ok[16][2]; /* inclusive ranges; 408 never counts */
	size_t noptions_ok;
	int failover_timeout;
	int ring_timeout;
	char *route_name;
	const struct config_trunk *route; /* NULL = no default route */
	unsigned line;			  /* of the [trunk:NAME] header */
};

struct config_route {
	char *name;
	char **from_names;
	const struct config_trunk **from;
	size_t nfrom;
	regex_t match;
	bool match_compiled;
	char *match_src;
	char *to_name;
	const struct config_trunk *to;
	unsigned line;
};

struct config {
	char *path;
	struct config_global global;
	struct config_trunk *trunks;
	size_t ntrunks;
	struct config_route *routes; /* in file order */
	size_t nroutes;
	int refs;
};

/* One problem found while loading, as "FILE:LINE: message". */
struct config_problem {
	char *file;
	unsigned line; /* 0: about the file as a whole */
	bool warning;
	char *msg;
};

struct config_problems {
	struct config_problem *v;
	size_t n;
	size_t nerrors;
};

enum config_load_flags {
	CONFIG_NO_RESOLVE = 1 << 0, /* no DNS: host names stay unresolved (fuzzing, tests) */
	CONFIG_NO_FILES = 1 << 1,   /* do not open certificate files (fuzzing) */
};

/* Loads and validates a file. Returns 0 with *out (one reference) when there
 * is no error (warnings may be present); EINVAL when there are errors (all of
 * them in *problems); another errno if the file cannot be read (also reported
 * in *problems). *problems must be zeroed; free with config_problems_free. */
int config_load(const char *path, unsigned flags, struct config **out,
		struct config_problems *problems);
/* The same from memory; name stands for the file in messages and resolves
 * relative paths (its directory). */
int config_load_buffer(const char *name, const char *data, size_t len, unsigned flags,
		       struct config **out, struct config_problems *problems);

/* Returns new: one more reference. */
struct config *config_ref(struct config *c);
/* NULL-safe; frees on the last reference. */
void config_unref(struct config *c);

void config_problems_free(struct config_problems *p);
/* Logs each problem as one line whose msg is "FILE:LINE: message". */
void config_problems_log(const struct config_problems *p);
/* "FILE:LINE: message" (with "warning: " before warnings); returns borrowed buf. */
const char *config_problem_format(const struct config_problem *p, char *buf, size_t size);

/* Returns borrowed, NULL when absent. */
const struct config_trunk *config_trunk_find(const struct config *c, const char *name);

/* The route lookup, shared by the B2BUA and --explain: [route:*] rules in
 * file order whose `from` names the inbound trunk and whose `match` matches
 * the percent-decoded Request-URI user, else the trunk's `route`. user is the
 * raw user part (len bytes, may hold %XX escapes). Returns borrowed, NULL when
 * nothing routes the call; *rule (optional) gets the matching rule or NULL. */
const struct config_trunk *config_route_lookup(const struct config *c,
					       const struct config_trunk *in, const char *user,
					       size_t len, const struct config_route **rule);

/* The trunk a request belongs to: the trunk listening on (transport, local
 * address and port) whose sources (or peers' addresses) contain src. NULL
 * when no trunk accepts that source there (the caller drops it, or answers
 * 403 under unknown_source = 403). local is the listen address the message
 * arrived on, as bound (a wildcard matches a wildcard listen). */
const struct config_trunk *config_trunk_for_source(const struct config *c,
						   enum sip_transport transport,
						   const struct sockaddr *local,
						   const struct sockaddr *src);

/* Keys that take effect only after a restart and differ between two
 * snapshots: calls cb once per such key with "section.key" names. */
void config_restart_keys_changed(const struct config *old, const struct config *cur,
				 void (*cb)(void *arg, const char *section, const char *key),
				 void *arg);

/* The key table, for --check, the docs test and the man page generator. */
enum config_section_kind {
	CONFIG_SEC_GLOBAL = 0,
	CONFIG_SEC_TRUNK,
	CONFIG_SEC_ROUTE
};

struct config_key_info {
	enum config_section_kind section;
	const char *name;
	const char *def;    /* default as written in the file; NULL = required */
	const char *values; /* the accepted form, e.g. "mandatory | optional | off" */
	const char *doc;    /* one line */
	bool restart;	    /* changes need a restart */
};

/* Returns borrowed: every key of every section, in table order. */
const struct config_key_info *config_keys(size_t *n);
const char *config_section_name(enum config_section_kind k);

#endif
