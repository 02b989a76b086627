/* log.h: one line per event in logfmt (DESIGN.md "Logs"), with key redaction. */
#ifndef SRTPBRIDGE_LOG_H
#define SRTPBRIDGE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
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

/* An event that anyone who can reach a socket may cause at will (a datagram
 * that is not SIP, a connection over the limits, a failed TLS handshake) is
 * logged through a limit, so that a flood can neither fill the disk nor keep
 * the daemon and journald busy writing: LOG_LIMIT_BURST lines at once, then
 * one every LOG_LIMIT_EVERY_MS. The next line written carries
 * suppressed=N, the lines left out before it; the counters count every
 * event. One thread per limit (the main loop's). */
#define LOG_LIMIT_BURST	   10
#define LOG_LIMIT_EVERY_MS 1000
struct log_limit {
	uint64_t refill_ms; /* CLOCK_MONOTONIC ms up to which tokens were added */
	unsigned tokens;
	bool started;
	uint64_t suppressed; /* lines left out since the last one written */
};
/* Whether a line may go out at now_ms. When it may, *suppressed is what was
 * left out before it (then reset to 0); when not, the line is counted. */
bool log_limit_take_at(struct log_limit *l, uint64_t now_ms, uint64_t *suppressed);
/* The same at the time of the call. */
bool log_limit_take(struct log_limit *l, uint64_t *suppressed);
/* Lines left out by every limit since the start (srtpbridgectl stats). */
uint64_t log_suppressed_total(void);

/* LOG_AT through lim; suppressed=N comes first among the fields when lines
 * were left out before this one. */
#define LOG_LIMITED(lim, lvl, call, msg, ...)                                                      \
	do {                                                                                       \
		uint64_t sup_;                                                                     \
		if (log_enabled(lvl) && log_limit_take(lim, &sup_)) {                              \
			const struct log_field lf_[] = { { 0 },                                    \
							 LF_U("suppressed", sup_),                 \
							 __VA_ARGS__ };                            \
			size_t skip_ = sup_ ? 1 : 2;                                               \
			log_emit(lvl, LOG_MODULE, call, msg, lf_ + skip_,                          \
				 sizeof(lf_) / sizeof(lf_[0]) - skip_);                            \
		}                                                                                  \
	} while (0)

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
