/* libFuzzer target: the SDP reader. What it accepts, the writer copies line
 * by line, and the copy must read back to the same lines and m= sections. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "srtpbridge/sdp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sdp s, back;
	static char out[SDP_MAX_BYTES + 2 * SDP_MAX_LINES];
	struct sdp_writer w;
	struct slice name, value, t, a;
	char why[256];
	size_t n;

	if (sdp_parse(&s, (struct slice){ (const char *)data, size }, why, sizeof(why)))
		return 0;
	for (size_t i = 0; i < s.nlines; i++)
		sdp_attr(&s, i, &name, &value);
	for (size_t m = 0; m < s.nmedia; m++) {
		sdp_media_conn(&s, m, &t, &a);
		sdp_find_attr(&s, s.media[m].line, s.media[m].end, "crypto", &value);
	}
	sdp_writer_init(&w, out, sizeof(out));
	for (size_t i = 0; i < s.nlines; i++)
		sdp_put(&w, s.lines[i].type, s.lines[i].value);
	n = sdp_writer_finish(&w);
	if (!n)
		abort();
	if (n <= SDP_MAX_BYTES) {
		if (sdp_parse(&back, (struct slice){ out, n }, why, sizeof(why)))
			abort();
		if (back.nlines != s.nlines || back.nmedia != s.nmedia)
			abort();
		for (size_t i = 0; i < s.nlines; i++)
			if (back.lines[i].type != s.lines[i].type ||
			    back.lines[i].value.n != s.lines[i].value.n ||
			    memcmp(back.lines[i].value.p, s.lines[i].value.p, s.lines[i].value.n))
				abort();
	}
	return 0;
}
