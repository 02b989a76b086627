/* libFuzzer target: arbitrary bytes as a UDP datagram (sipframe_datagram,
 * sipmsg_parse, then on success everything the transaction layer and the
 * transports do with a message: accessors, received/rport, a response, where
 * it goes, a new body, serialisation read back) and as a TCP stream fed in
 * chunks through sipframe_stream, each framed message parsed the same way.
 * Invariants that do not hold abort(): framing stays inside the buffer, a
 * refusal always says why, what we serialise reads back through our own
 * checks, and stream and datagram framing agree on a message's length.
 * What parses then goes through the transaction layer, as in the daemon,
 * with a transaction user that answers every request, on a fake clock that
 * runs every timer out after each input. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "srtpbridge/sipframe.h"
#include "srtpbridge/sipmsg.h"
#include "srtpbridge/txn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(bool ok)
{
	if (!ok)
		abort();
}

/* What we print must be what we read: our serialisation goes out to peers
 * that run checks like ours. */
static void reads_back(osip_message_t *m)
{
	osip_message_t *back = NULL;
	char why[SIPMSG_WHY_MAX], *s;
	size_t n;
	int st;

	if (sipmsg_serialize(m, &s, &n))
		return; /* libosip2 cannot print it: the caller drops it */
	must(s[n] == '\0');
	must(sipmsg_parse(&back, (struct slice){ s, n }, &st, why, sizeof(why)) == 0);
	must(sipmsg_is_request(back) == sipmsg_is_request(m));
	must(sipmsg_via_count(back) == sipmsg_via_count(m));
	osip_message_free(back);
	free(s);
}

static void exercise_request(osip_message_t *m)
{
	struct sockaddr_in src = { .sin_family = AF_INET, .sin_port = htons(40000) };
	osip_message_t *r = NULL;
	char host[256];
	uint16_t port;
	enum sipmsg_transport tp;

	src.sin_addr.s_addr = htonl(0xc0000201); /* 192.0.2.1 */
	must(sipmsg_fix_via(m, (struct sockaddr *)&src, sizeof(src)) == 0);
	if (sipmsg_response(&r, m, 200, NULL, "fz", "fuzz \"warning\"\r\n") == 0) {
		/* after sipmsg_fix_via, responses go back where the request came from */
		must(sipmsg_response_dest(r, host, sizeof(host), &port, &tp) == 0);
		must(strcmp(host, "192.0.2.1") == 0);
		reads_back(r);
		osip_message_free(r);
	}
	if (sipmsg_response(&r, m, 100, NULL, "fz", NULL) == 0)
		osip_message_free(r);
}

/* ---- the transaction layer, as the daemon's inbound path ends ---- */

static struct txn_layer *layer;
static struct txn_fake_clock *clock_;

static int null_send(void *arg, const struct txn_addr *to, bool reliable, const char *buf,
		     size_t len, uint64_t *conn_out)
{
	must(buf && len > 0 && conn_out);
	return 0;
}

static void answer_all(void *arg, struct txn *t, osip_message_t *req, const struct txn_addr *from)
{
	osip_message_t *r = NULL;

	if (t && sipmsg_response(&r, req, strcmp(sipmsg_method(req), "INVITE") ? 200 : 486, NULL,
				 "fz", NULL) == 0)
		txn_respond(t, r);
}

static void transactions(struct slice raw)
{
	static const struct txn_callbacks cb = { .send = null_send, .request = answer_all };
	struct txn_addr from = { .transport = SIP_TP_UDP };
	struct sockaddr_in *in = (struct sockaddr_in *)&from.addr;
	osip_message_t *m = NULL;
	char why[SIPMSG_WHY_MAX];
	int st;

	if (!layer) {
		must(txn_fake_clock_create(&clock_) == 0);
		must(txn_layer_create(&layer, NULL, &cb, NULL, &txn_timer_ops_fake, clock_) == 0);
	}
	if (sipmsg_parse(&m, raw, &st, why, sizeof(why)))
		return;
	in->sin_family = AF_INET;
	in->sin_port = htons(5060);
	in->sin_addr.s_addr = htonl(0x7f000001);
	from.addrlen = sizeof(*in);
	txn_layer_receive(layer, m, &from); /* takes m */
}

static void exercise(struct slice raw)
{
	osip_message_t *m = NULL, *r = NULL;
	char why[SIPMSG_WHY_MAX], cid[256];
	struct sipmsg_via v;
	const char *meth;
	uint32_t num;
	int st = -1, err;

	if (sipmsg_parse(&m, raw, &st, why, sizeof(why))) {
		must(m == NULL && why[0] != '\0');
		must(st == 0 || st == 400 || st == 416 || st == 505 || st == 513 || st == 500);
		if (st >= 400 && st != 500 && sipmsg_refusal(&r, raw, st, why, "fz") == 0) {
			char *s;
			size_t n;

			/* it copies the request's Vias, which may be what was refused
			 * (RFC 4475 3.2.1): it prints, and need not read back */
			must(sipmsg_status(r) == st);
			if (sipmsg_serialize(r, &s, &n) == 0)
				free(s);
			osip_message_free(r);
		} else if (st >= 400 && st != 500) {
			char *s = NULL;
			size_t n;

			/* the text refusal: a response line first, whatever it copied */
			if (sipmsg_refusal_text(&s, &n, raw, st, why, "fz") == 0)
				must(n > 12 && memcmp(s, "SIP/2.0 ", 8) == 0);
			free(s);
		}
		return;
	}
	transactions(raw);
	/* what sipmsg_parse accepts, the accessors read without failing */
	must(sipmsg_top_via(m, &v) == 0 && v.host && v.host[0]);
	must(sipmsg_cseq(m, &num, &meth) == 0);
	must(!sipmsg_is_request(m) || strcmp(meth, sipmsg_method(m)) == 0);
	must(sipmsg_is_request(m) || (sipmsg_status(m) >= 100 && sipmsg_status(m) <= 699));
	err = sipmsg_call_id(m, cid, sizeof(cid));
	must(err == 0 || err == ENOSPC);
	(void)sipmsg_from_tag(m);
	(void)sipmsg_to_tag(m);
	(void)sipmsg_branch(m);
	reads_back(m);
	if (sipmsg_is_request(m))
		exercise_request(m);
	must(sipmsg_set_body(m, "application/sdp", "v=0\r\n", 5) == 0);
	must(sipmsg_header_add(m, "X-Fuzz", "1") == 0);
	must(sipmsg_header_remove(m, "X-Fuzz", NULL) == 0);
	reads_back(m);
	osip_message_free(m);
}

static void udp(const char *p, size_t n)
{
	char why[SIPMSG_WHY_MAX];
	struct slice msg;
	int st = -1, err;

	err = sipframe_datagram((struct slice){ p, n }, &msg, &st, why, sizeof(why));
	if (err == ENODATA)
		return;
	if (err) {
		must(why[0] != '\0' && (st == 0 || st == 400 || st == 513));
		return;
	}
	must(msg.p >= p && msg.p + msg.n <= p + n && msg.n > 0);
	exercise(msg);
}

static void tcp(const char *p, size_t n)
{
	struct sipframe_stream_state st;
	char *buf = malloc(n ? n : 1), why[SIPMSG_WHY_MAX];
	size_t len = 0, off = 0;
	uint32_t seed = (uint32_t)n * 2654435761u;

	must(buf != NULL);
	sipframe_stream_init(&st);
	while (off < n) {
		size_t chunk;

		seed = seed * 1103515245u + 12345u;
		chunk = 1 + (seed >> 16) % 97;
		if (chunk > n - off)
			chunk = n - off;
		memcpy(buf + len, p + off, chunk);
		len += chunk;
		off += chunk;
		for (;;) {
			size_t ml = 0, skip = 0;
			bool ping;
			int err =
				sipframe_stream(&st, buf, len, &ml, &skip, &ping, why, sizeof(why));

			must(skip <= len);
			memmove(buf, buf + skip, len - skip);
			len -= skip;
			if (err == EAGAIN)
				break;
			if (err) {
				must(why[0] != '\0' && (err == EBADMSG || err == EMSGSIZE));
				goto out;
			}
			must(ml > 0 && ml <= len && ml <= SIPMSG_MAX_BYTES);
			{
				/* the datagram reading of the same bytes agrees */
				struct slice msg;
				int dst;

				must(sipframe_datagram((struct slice){ buf, ml }, &msg, &dst, why,
						       sizeof(why)) == 0);
				must(msg.p == buf && msg.n == ml);
			}
			exercise((struct slice){ buf, ml });
			memmove(buf, buf + ml, len - ml);
			len -= ml;
		}
	}
out:
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	udp((const char *)data, size);
	tcp((const char *)data, size);
	/* every timer runs out, so no transaction outlives its input */
	if (clock_)
		txn_fake_clock_advance(clock_, 120000);
	return 0;
}
