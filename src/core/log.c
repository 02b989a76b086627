/* logfmt lines on one fd, with syslog priority prefixes under the journal. */
#include "srtpbridge/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

enum log_level log_current_level = LOG_LVL_INFO;

static int log_fd = 2;
static bool journal_prefix;

static const char *const level_names[] = { "error", "warn", "info", "debug" };
/* syslog priorities: LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG */
static const char level_prio[] = { '3', '4', '6', '7' };

/* A line longer than this is cut and ends with "..." : one event must stay
 * one write, so that lines from several threads never interleave. */
#define LINE_MAX_LEN 4096

static bool stderr_is_journal(int fd)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char tail;

	if (!js || sscanf(js, "%llu:%llu%c", &dev, &ino, &tail) != 2)
		return false;
	if (fstat(fd, &st) != 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_init(int fd)
{
	log_fd = fd;
	journal_prefix = stderr_is_journal(fd);
}

bool log_journal_prefix(void)
{
	return journal_prefix;
}

/* ---- limits (log.h) ---- */

static _Atomic uint64_t suppressed_total;

bool log_limit_take_at(struct log_limit *l, uint64_t now_ms, uint64_t *suppressed)
{
	if (!l->started) {
		l->started = true;
		l->tokens = LOG_LIMIT_BURST;
		l->refill_ms = now_ms;
	} else if (now_ms > l->refill_ms) {
		uint64_t add = (now_ms - l->refill_ms) / LOG_LIMIT_EVERY_MS;

		if (add >= LOG_LIMIT_BURST - l->tokens) {
			l->tokens = LOG_LIMIT_BURST;
			l->refill_ms = now_ms;
		} else {
			l->tokens += (unsigned)add;
			l->refill_ms += add * LOG_LIMIT_EVERY_MS; /* the part of a token stays */
		}
	}
	if (!l->tokens) {
		l->suppressed++;
		atomic_fetch_add_explicit(&suppressed_total, 1, memory_order_relaxed);
		return false;
	}
	l->tokens--;
	*suppressed = l->suppressed;
	l->suppressed = 0;
	return true;
}

bool log_limit_take(struct log_limit *l, uint64_t *suppressed)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return log_limit_take_at(l, (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u,
				 suppressed);
}

uint64_t log_suppressed_total(void)
{
	return atomic_load_explicit(&suppressed_total, memory_order_relaxed);
}

void log_set_level(enum log_level l)
{
	log_current_level = l;
}

int log_level_parse(const char *s, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return EINVAL;
}

const char *log_level_name(enum log_level l)
{
	return (unsigned)l < sizeof(level_names) / sizeof(level_names[0]) ? level_names[l] : "?";
}

static bool is_b64(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/' || c == '=';
}

size_t log_redact(char *dst, size_t dstsz, const char *src, size_t len)
{
	static const char tag[] = "inline:";
	static const char mask[] = "[redacted]";
	const size_t taglen = sizeof(tag) - 1;
	size_t o = 0, i = 0;

	if (dstsz == 0)
		return 0;
	while (i < len && o + 1 < dstsz) {
		/* Case-insensitive: a mangled or unusual "INLINE:" still carries a key. */
		if (i + taglen <= len && strncasecmp(src + i, tag, taglen) == 0) {
			size_t j = i + taglen;

			while (j < len && is_b64((unsigned char)src[j]))
				j++;
			for (size_t k = 0; k < taglen && o + 1 < dstsz; k++)
				dst[o++] = src[i + k];
			if (j > i + taglen) {
				for (size_t k = 0; k < sizeof(mask) - 1 && o + 1 < dstsz; k++)
					dst[o++] = mask[k];
			}
			i = j;
			continue;
		}
		dst[o++] = src[i++];
	}
	dst[o] = '\0';
	return o;
}

struct linebuf {
	char b[LINE_MAX_LEN];
	size_t n;
	bool cut;
};

static void lb_putc(struct linebuf *lb, char c)
{
	if (lb->n < sizeof(lb->b) - 4)
		lb->b[lb->n++] = c;
	else
		lb->cut = true;
}

static void lb_puts(struct linebuf *lb, const char *s)
{
	while (*s)
		lb_putc(lb, *s++);
}

static void lb_printf(struct linebuf *lb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void lb_printf(struct linebuf *lb, const char *fmt, ...)
{
	char tmp[64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	lb_puts(lb, tmp);
}

static bool needs_quotes(const char *s, size_t len)
{
	if (len == 0)
		return true;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= ' ' || c == '=' || c == '"' || c == '\\' || c >= 0x7f)
			return true;
	}
	return false;
}

/* Values are redacted first, then escaped: a key cannot survive either step. */
static void lb_value(struct linebuf *lb, const char *s, size_t len)
{
	char red[LINE_MAX_LEN];
	size_t n = log_redact(red, sizeof(red), s, len);
	bool q = needs_quotes(red, n);

	if (q)
		lb_putc(lb, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)red[i];

		if (c == '"' || c == '\\') {
			lb_putc(lb, '\\');
			lb_putc(lb, (char)c);
		} else if (c == '\n') {
			lb_puts(lb, "\\n");
		} else if (c == '\r') {
			lb_puts(lb, "\\r");
		} else if (c == '\t') {
			lb_puts(lb, "\\t");
		} else if (c < 0x20 || c == 0x7f) {
			lb_printf(lb, "\\x%02x", c);
		} else {
			lb_putc(lb, (char)c);
		}
	}
	if (q)
		lb_putc(lb, '"');
}

static void lb_field(struct linebuf *lb, const struct log_field *f)
{
	char num[40];

	lb_putc(lb, ' ');
	lb_puts(lb, f->key);
	lb_putc(lb, '=');
	switch (f->type) {
	case LOG_F_STR:
		lb_value(lb, f->v.s ? f->v.s : "", f->v.s ? strlen(f->v.s) : 0);
		break;
	case LOG_F_STRN:
		lb_value(lb, f->v.s ? f->v.s : "", f->v.s ? f->len : 0);
		break;
	case LOG_F_INT:
		snprintf(num, sizeof(num), "%lld", f->v.i);
		lb_puts(lb, num);
		break;
	case LOG_F_UINT:
		snprintf(num, sizeof(num), "%llu", f->v.u);
		lb_puts(lb, num);
		break;
	case LOG_F_DBL:
		snprintf(num, sizeof(num), "%g", f->v.d);
		lb_puts(lb, num);
		break;
	case LOG_F_NONE:
		lb_puts(lb, "\"\"");
		break;
	}
}

void log_emit(enum log_level level, const char *module, const char *call, const char *msg,
	      const struct log_field *fields, size_t nfields)
{
	struct linebuf lb;
	struct timespec ts;
	struct tm tm;
	int saved = errno;

	lb.n = 0;
	lb.cut = false;
	if ((unsigned)level > LOG_LVL_DEBUG)
		level = LOG_LVL_DEBUG;
	if (journal_prefix) {
		lb_putc(&lb, '<');
		lb_putc(&lb, level_prio[level]);
		lb_putc(&lb, '>');
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	lb_printf(&lb, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
		  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
	lb_puts(&lb, " level=");
	lb_puts(&lb, level_names[level]);
	lb_puts(&lb, " module=");
	lb_puts(&lb, module);
	if (call) {
		lb_puts(&lb, " call=");
		lb_value(&lb, call, strlen(call));
	}
	lb_puts(&lb, " msg=");
	lb_value(&lb, msg ? msg : "", msg ? strlen(msg) : 0);
	for (size_t i = 0; i < nfields; i++)
		lb_field(&lb, &fields[i]);
	if (lb.cut) {
		memcpy(lb.b + lb.n, "...", 3);
		lb.n += 3;
	}
	lb.b[lb.n++] = '\n';
	/* One write per line; a short write to a pipe or the journal is not retried
	 * piecemeal, so a line is either whole or (rarely) truncated, never mixed. */
	ssize_t w = write(log_fd, lb.b, lb.n);
	(void)w;
	errno = saved;
}
