/* log.h: one line per event in logfmt (DESIGN.md "Logs"), with key redaction. */
#ifndef SRTPBRIDGE_LOG_H
#define SRTPBRIDGE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum log_level {
	LOG_LVL_ERROR = 0,
	LOG_LVL_WARN,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
};

enum log_field_type {
	LOG_F_NONE = 0,
	LOG_F_STR,
	LOG_F_STRN,
	LOG_F_INT,
	LOG_F_UINT,
	LOG_F_DBL,
};

/* One key=value pair. There is deliberately no field type for key material
 * (struct secret has no printer): what reaches a log line is text, and text
 * passes log_redact() on its way out. */
struct log_field {
	const char *key;
	enum log_field_type type;
	union {
		const char *s;
		long long i;
		unsigned long long u;
		double d;
	} v;
	size_t len; /* LOG_F_STRN only */
};

#define LF_S(k, val)                                                                               \
	{                                                                                          \
		.key = (k), .type = LOG_F_STR, .v.s = (val)                                        \
	}
#define LF_SN(k, val, n)                                                                           \
	{                                                                                          \
		.key = (k), .type = LOG_F_STRN, .v.s = (val), .len = (n)                           \
	}
#define LF_I(k, val)                                                                               \
	{                                                                                          \
		.key = (k), .type = LOG_F_INT, .v.i = (long long)(val)                             \
	}
#define LF_U(k, val)                                                                               \
	{                                                                                          \
		.key = (k), .type = LOG_F_UINT, .v.u = (unsigned long long)(val)                   \
	}
#define LF_D(k, val)                                                                               \
	{                                                                                          \
		.key = (k), .type = LOG_F_DBL, .v.d = (double)(val)                                \
	}

extern enum log_level log_current_level;

static inline bool log_enabled(enum log_level l)
{
	return l <= log_current_level;
}

/* Borrows everything; writes one complete line with a single write(2). */
void log_emit(enum log_level level, const char *module, const char *call, const char *msg,
	      const struct log_field *fields, size_t nfields);

/* A file defines LOG_MODULE ("config", "main", ...) before using these. Fields are
 * LF_*() initialisers; nothing is formatted when the level is off. */
#define LOG_AT(lvl, call, msg, ...)                                                                \
	do {                                                                                       \
		if (log_enabled(lvl)) {                                                            \
			const struct log_field lf_[] = { { 0 }, __VA_ARGS__ };                     \
			log_emit(lvl, LOG_MODULE, call, msg, lf_ + 1,                              \
				 sizeof(lf_) / sizeof(lf_[0]) - 1);                                \
		}                                                                                  \
	} while (0)
#define LOG_ERROR(call, msg, ...) LOG_AT(LOG_LVL_ERROR, call, msg, __VA_ARGS__)
#define LOG_WARN(call, msg, ...)  LOG_AT(LOG_LVL_WARN, call, msg, __VA_ARGS__)
#define LOG_INFO(call, msg, ...)  LOG_AT(LOG_LVL_INFO, call, msg, __VA_ARGS__)
#define LOG_DEBUG(call, msg, ...) LOG_AT(LOG_LVL_DEBUG, call, msg, __VA_ARGS__)

/* Where lines go: fd 2 by default. Decides once whether stderr is the journal
 * (JOURNAL_STREAM names stderr's own device:inode; a child inherits the
 * variable with another stderr, so the variable alone proves nothing) and then
 * prefixes each line with its syslog priority (<3> error ... <7> debug). */
void log_init(int fd);
void log_set_level(enum log_level l);
bool log_journal_prefix(void);

/* Parses "error", "warn", "info", "debug"; 0 or EINVAL. */
int log_level_parse(const char *s, enum log_level *out);
const char *log_level_name(enum log_level l);

/* Copies src (len bytes) to dst with every SDES key replaced: the base64 after
 * each "inline:" becomes "[redacted]". Always NUL-terminates (when dstsz > 0);
 * returns the length written, truncating as needed. Used on every string that
 * reaches a log line, and on SIP traces. */
size_t log_redact(char *dst, size_t dstsz, const char *src, size_t len);

#endif
