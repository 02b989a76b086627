/* --explain: the route lookup and the offer/answer path of a real call, run
 * on one offer with a simulated (or given) answer from the routed side. */
#include "srtpbridge/explain.h"
#include "srtpbridge/control.h"
#include "srtpbridge/log.h"
#include "srtpbridge/oa.h"
#include "srtpbridge/sdes_policy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

struct side {
	const char *trunk;
	bool secure, active;
	const char *suite;
};

struct report {
	const char *from, *to, *rule;
	int status;
	char reason[SDES_REASON_MAX];
	const char *answer_source;
	struct side offerer, routed;
	char *sdp_to_routed, *sdp_answer, *sdp_to_offerer; /* redacted */
};

/* A JSON string or null, escaped as the control socket escapes. */
static void json_str(FILE *out, const char *s)
{
	size_t n, len;
	char *buf;

	if (!s) {
		fputs("null", out);
		return;
	}
	n = strlen(s);
	len = control_json_escape(NULL, 0, s, n);
	buf = malloc(len + 1);
	if (!buf) {
		fputs("null", out);
		return;
	}
	control_json_escape(buf, len + 1, s, n);
	fprintf(out, "\"%s\"", buf);
	free(buf);
}

static void json_side(FILE *out, const struct side *s)
{
	fputs("{\"trunk\":", out);
	json_str(out, s->trunk);
	fprintf(out, ",\"active\":%s,\"srtp\":%s,\"suite\":", s->active ? "true" : "false",
		s->secure ? "true" : "false");
	json_str(out, s->suite);
	fputc('}', out);
}

static void print_json(FILE *out, const struct report *r)
{
	fputs("{\"route\":{\"from\":", out);
	json_str(out, r->from);
	fputs(",\"to\":", out);
	json_str(out, r->to);
	fputs(",\"rule\":", out);
	json_str(out, r->rule);
	fprintf(out, "},\"accepted\":%s,\"status\":%d,\"reason\":", r->status ? "false" : "true",
		r->status ? r->status : 200);
	json_str(out, r->status ? r->reason : NULL);
	fputs(",\"offerer\":", out);
	json_side(out, &r->offerer);
	fputs(",\"routed\":", out);
	json_side(out, &r->routed);
	fputs(",\"sdp_to_routed\":", out);
	json_str(out, r->sdp_to_routed);
	fputs(",\"answer_source\":", out);
	json_str(out, r->answer_source);
	fputs(",\"sdp_answer\":", out);
	json_str(out, r->sdp_answer);
	fputs(",\"sdp_to_offerer\":", out);
	json_str(out, r->sdp_to_offerer);
	fputs("}\n", out);
}

static void print_sdp(FILE *out, const char *title, const char *sdp)
{
	fprintf(out, "%s:\n", title);
	for (const char *p = sdp; p && *p;) {
		size_t n = strcspn(p, "\r\n");

		fprintf(out, "  %.*s\n", (int)n, p);
		p += n;
		p += strspn(p, "\r\n");
	}
}

static void print_side(FILE *out, const char *what, const struct side *s)
{
	fprintf(out, "%s trunk %s: ", what, s->trunk);
	if (!s->active)
		fprintf(out, "no audio stream\n");
	else if (s->secure)
		fprintf(out, "SRTP %s\n", s->suite);
	else
		fprintf(out, "plain RTP\n");
}

static void print_text(FILE *out, const struct report *r)
{
	if (r->to)
		fprintf(out, "route: %s -> %s (%s%s)\n", r->from, r->to,
			r->rule ? "rule route:" : "the trunk's route", r->rule ? r->rule : "");
	else
		fprintf(out, "route: %s -> none\n", r->from);
	if (r->status)
		fprintf(out, "result: refused with %d: %s\n", r->status, r->reason);
	else
		fprintf(out, "result: accepted\n");
	if (!r->status) {
		print_side(out, "offerer", &r->offerer);
		print_side(out, "routed ", &r->routed);
	}
	if (r->sdp_to_routed)
		print_sdp(out, r->to ? "SDP to the routed trunk" : "SDP", r->sdp_to_routed);
	if (r->sdp_answer)
		print_sdp(out,
			  strcmp(r->answer_source, "given") == 0
				  ? "answer from the routed trunk (given)"
				  : "answer from the routed trunk (simulated: the offered codecs)",
			  r->sdp_answer);
	if (r->sdp_to_offerer)
		print_sdp(out, "SDP back to the offerer", r->sdp_to_offerer);
}

static char *redacted(const char *sdp, size_t n)
{
	char *out = malloc(n * 2 + 1);

	if (out)
		log_redact(out, n * 2 + 1, sdp, n);
	return out;
}

static const char *mirror(struct slice dir)
{
	if (slice_eq(dir, "sendonly"))
		return "recvonly";
	if (slice_eq(dir, "recvonly"))
		return "sendonly";
	return NULL;
}

/* The routed side, answering our offer with the codecs offered: the same
 * streams, the direction mirrored, and (when we offered keys) the line its
 * own trunk policy would pick, with a key of its own. */
static int simulate_answer(const struct config_trunk *t, struct slice offer, char *out, size_t size,
			   size_t *len)
{
	struct sdp s;
	struct sdp_writer w;
	struct sdes_policy pol;
	char why[256];

	if (sdp_parse(&s, offer, why, sizeof(why)))
		return EBADMSG;
	sdes_policy_from_trunk(&pol, t);
	sdp_writer_init(&w, out, size);
	sdp_put(&w, 'v', SLICE_LIT("0"));
	sdp_put(&w, 'o', SLICE_LIT("- 1 1 IN IP4 192.0.2.99"));
	sdp_put(&w, 's', SLICE_LIT("-"));
	sdp_put(&w, 'c', SLICE_LIT("IN IP4 192.0.2.99"));
	sdp_put(&w, 't', SLICE_LIT("0 0"));
	for (size_t m = 0; m < s.nmedia; m++) {
		const struct sdp_media *md = &s.media[m];
		struct slice lines[SUITE_COUNT * 2], name, value;
		size_t n = 0;

		sdp_putf(&w, 'm', "%.*s %u %.*s %.*s", (int)md->media.n, md->media.p,
			 md->port ? 50000u + 2u * (unsigned)m : 0u, (int)md->proto.n, md->proto.p,
			 (int)md->fmts.n, md->fmts.p);
		if (!md->port)
			continue;
		for (size_t i = md->line + 1; i < md->end; i++) {
			if (!sdp_attr(&s, i, &name, &value)) {
				continue;
			} else if (slice_eq(name, "crypto")) {
				if (n < sizeof(lines) / sizeof(lines[0]))
					lines[n++] = value;
			} else if (slice_eq(name, "rtcp")) {
				continue;
			} else if (mirror(name)) {
				sdp_putf(&w, 'a', "%s", mirror(name));
			} else {
				sdp_put(&w, 'a', s.lines[i].value);
			}
		}
		if (n) {
			struct sdes_answer ans;
			char line[SDES_LINE_MAX];

			if (sdes_policy_answer(&pol, lines, n, &ans))
				return EIO;
			if (!ans.status && sdes_print(line, sizeof(line), &ans.answer, true))
				sdp_putf(&w, 'a', "crypto:%s", line);
			OPENSSL_cleanse(line, sizeof(line));
			sdes_answer_wipe(&ans);
		}
	}
	*len = sdp_writer_finish(&w);
	return *len ? 0 : ENOSPC;
}

static void describe(struct side *sd, struct oa_leg *l, const char *trunk)
{
	struct oa_stream_info si;

	sd->trunk = trunk;
	for (size_t i = 0; oa_leg_stream(l, i, &si) == 0; i++) {
		if (!si.active)
			continue;
		sd->active = true;
		sd->secure = si.secure;
		sd->suite = si.secure ? suite_name(si.suite) : NULL;
		return;
	}
}

int explain_offer(const struct config *cfg, const struct explain_request *req, FILE *out)
{
	const struct config_trunk *in = config_trunk_find(cfg, req->trunk), *dst;
	const struct config_route *rule = NULL;
	const char *user = req->user ? req->user : "";
	struct report r = { .from = req->trunk };
	struct oa_leg *a = NULL, *b = NULL;
	struct oa_result res;
	uint16_t pa[OA_MAX_STREAMS], pb[OA_MAX_STREAMS];
	char *buf = NULL, *ans = NULL;
	size_t anslen = 0;
	int err = 0;

	if (!in) {
		fprintf(out, "srtpbridge: no trunk named '%s' in %s\n", req->trunk, cfg->path);
		return ENOENT;
	}
	dst = config_route_lookup(cfg, in, user, strlen(user), &rule);
	r.rule = rule ? rule->name : NULL;
	if (!dst) {
		r.status = 404;
		snprintf(r.reason, sizeof(r.reason), "no route from trunk '%s' for user '%s'",
			 in->name, user);
		goto print;
	}
	r.to = dst->name;
	/* Ports as the daemon would hand them out: from the bottom of the range. */
	for (unsigned i = 0; i < OA_MAX_STREAMS; i++) {
		pa[i] = (uint16_t)(cfg->global.media_port_min + 4 * i);
		pb[i] = (uint16_t)(cfg->global.media_port_min + 4 * i + 2);
	}
	buf = malloc(SDP_MAX_BYTES);
	ans = malloc(SDP_MAX_BYTES);
	if (!buf || !ans || oa_leg_create(&a, in, 1) || oa_leg_create(&b, dst, 2)) {
		err = ENOMEM;
		goto out;
	}
	err = oa_offer(a, b, req->offer, pb, OA_MAX_STREAMS, buf, SDP_MAX_BYTES, &res);
	if (err)
		goto out;
	if (res.status) {
		r.status = res.status;
		snprintf(r.reason, sizeof(r.reason), "%s", res.reason);
		goto print;
	}
	r.sdp_to_routed = redacted(buf, res.len);
	if (req->answer.n) {
		r.answer_source = "given";
		memcpy(ans, req->answer.p, req->answer.n < SDP_MAX_BYTES ? req->answer.n : 0);
		anslen = req->answer.n < SDP_MAX_BYTES ? req->answer.n : 0;
	} else {
		r.answer_source = "simulated";
		err = simulate_answer(dst, (struct slice){ buf, res.len }, ans, SDP_MAX_BYTES,
				      &anslen);
		if (err)
			goto out;
	}
	r.sdp_answer = redacted(ans, anslen);
	err = oa_answer(b, a, (struct slice){ ans, anslen }, pa, OA_MAX_STREAMS, buf, SDP_MAX_BYTES,
			&res);
	if (err)
		goto out;
	if (res.status) {
		r.status = res.status;
		snprintf(r.reason, sizeof(r.reason), "%s", res.reason);
		goto print;
	}
	r.sdp_to_offerer = redacted(buf, res.len);
	describe(&r.offerer, a, in->name);
	describe(&r.routed, b, dst->name);
print:
	if (req->json)
		print_json(out, &r);
	else
		print_text(out, &r);
out:
	if (err)
		fprintf(out, "srtpbridge: --explain failed: %s\n", strerror(err));
	oa_leg_destroy(a);
	oa_leg_destroy(b);
	if (buf)
		OPENSSL_cleanse(buf, SDP_MAX_BYTES);
	if (ans)
		OPENSSL_cleanse(ans, SDP_MAX_BYTES);
	free(buf);
	free(ans);
	free(r.sdp_to_routed);
	free(r.sdp_answer);
	free(r.sdp_to_offerer);
	return err ? err : (r.status ? 1 : 0);
}
