/* slice.h: a borrowed (pointer, length) view of untrusted text, never
 * assumed NUL-terminated (STYLE.md section 10). */
#ifndef SRTPBRIDGE_SLICE_H
#define SRTPBRIDGE_SLICE_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

struct slice {
	const char *p;
	size_t n;
};

#define SLICE_LIT(s) ((struct slice){ (s), sizeof(s) - 1 })

static inline struct slice slice_from(const char *s)
{
	return (struct slice){ s, s ? strlen(s) : 0 };
}

static inline bool slice_eq(struct slice a, const char *lit)
{
	size_t n = strlen(lit);

	return a.n == n && memcmp(a.p, lit, n) == 0;
}

/* Removes lit from the front of *s when it is there. */
static inline bool slice_eat_prefix(struct slice *s, const char *lit)
{
	size_t n = strlen(lit);

	if (s->n < n || memcmp(s->p, lit, n) != 0)
		return false;
	s->p += n;
	s->n -= n;
	return true;
}

/* Splits *s at the first c: returns what comes before, leaves the rest
 * after c in *s (empty when there was no c). */
static inline struct slice slice_split(struct slice *s, char c)
{
	const char *e = memchr(s->p, c, s->n);
	struct slice head = { s->p, e ? (size_t)(e - s->p) : s->n };

	s->p = e ? e + 1 : s->p + s->n;
	s->n = e ? s->n - head.n - 1 : 0;
	return head;
}

#endif
