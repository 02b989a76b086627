/* Private to src/core/config*.c: the declarative key table and its types. */
#ifndef SRTPBRIDGE_CONFIG_TABLE_H
#define SRTPBRIDGE_CONFIG_TABLE_H

#include <stddef.h>

#include "srtpbridge/config.h"

struct loader;
struct cfg_key;

/* Parses value into the section object at base; returns 0, or EINVAL with a
 * sentence in why (never echoing anything that could be a key). */
typedef int (*cfg_parse_fn)(struct loader *ld, const struct cfg_key *k, void *base,
			    const char *value, char *why, size_t whysz);
/* Frees what parse allocated. */
typedef void (*cfg_free_fn)(const struct cfg_key *k, void *base);
/* True when the key's value is the same in a and b (restart keys only). */
typedef int (*cfg_equal_fn)(const struct cfg_key *k, const void *a, const void *b);

struct cfg_type {
	cfg_parse_fn parse;
	cfg_free_fn release;
	cfg_equal_fn equal;
};

enum cfg_flags {
	CFG_RESTART = 1 << 0, /* a change needs a restart */
	CFG_AUTO = 1 << 1,    /* an int that also takes "auto" */
};

struct cfg_key {
	enum config_section_kind section;
	const char *name;
	const struct cfg_type *type;
	size_t off, off2; /* field, and its count or upper half where the type has one */
	const char *def;  /* parsed by the same parser; NULL = required */
	long long min, max;
	const char *const *enums; /* NULL-terminated, index = stored value */
	unsigned flags;
	const char *values; /* the accepted form, for docs */
	const char *doc;
};

#define CFG_MAX_KEYS_PER_SECTION 40

const struct cfg_key *cfg_table(size_t *n);

/* What value parsers may ask of the loader. */
unsigned cfg_loader_flags(const struct loader *ld);
/* Returns new (malloc): path made absolute against the config file's directory. */
char *cfg_loader_path(const struct loader *ld, const char *path);

/* Shared with the loader's cross-checks. */
int cfg_parse_uri(const char *s, size_t len, bool resolve, struct sip_uri *u, char *why,
		  size_t whysz);
/* Trunk and route names: letters, digits, '-', '_' and '.'. */
bool cfg_valid_name(const char *p, size_t n);
bool cfg_cidr_overlap(const struct cidr *a, const struct cidr *b);
void cfg_cidr_from_sockaddr(const struct sockaddr_storage *ss, struct cidr *c);

#endif
