/* Config loader: every bad file names its exact FILE:LINE: message, good
 * files load with the values they say, defaults come from the table, and the
 * docs describe exactly the table's keys. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "srtpbridge/config.h"

#define BAD_DIR	   TEST_DATA_DIR "/config/bad"
#define GOOD_DIR   TEST_DATA_DIR "/config/good"
#define TEST_FLAGS (CONFIG_NO_RESOLVE | CONFIG_NO_FILES)

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	if (len)
		*len = (size_t)n;
	return buf;
}

struct expect {
	char text[1400];
};

/* Markers: "... ;<< MESSAGE" expects an error on that line, ";<<w MESSAGE" a
 * warning, ";<<0 MESSAGE" an error about the whole file. */
static size_t read_expectations(const char *path, const char *text, struct expect *e, size_t max,
				unsigned *flags)
{
	const char *line = text;
	unsigned lineno = 0;
	size_t n = 0;

	*flags = TEST_FLAGS;
	while (*line) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		char buf[1400];
		const char *m;

		lineno++;
		snprintf(buf, sizeof(buf), "%.*s", (int)len, line);
		if (strncmp(buf, ";flags: files", 13) == 0)
			*flags = CONFIG_NO_RESOLVE;
		m = strstr(buf, ";<<");
		if (m) {
			assert_true(n < max);
			if (m[3] == '0')
				snprintf(e[n].text, sizeof(e[n].text), "%s: %s", path, m + 5);
			else if (m[3] == 'w')
				snprintf(e[n].text, sizeof(e[n].text), "%s:%u: warning: %s", path,
					 lineno, m + 5);
			else
				snprintf(e[n].text, sizeof(e[n].text), "%s:%u: %s", path, lineno,
					 m + 4);
			n++;
		}
		line += len + (nl ? 1 : 0);
	}
	return n;
}

static int cmp_expect(const void *a, const void *b)
{
	/* Problems come sorted by line; "FILE: " (line 0) sorts first. */
	const char *x = ((const struct expect *)a)->text, *y = ((const struct expect *)b)->text;
	const char *cx = strrchr(x, '/'), *cy = strrchr(y, '/');
	unsigned lx = 0, ly = 0;

	sscanf(strchr(cx, ':') + 1, "%u", &lx);
	sscanf(strchr(cy, ':') + 1, "%u", &ly);
	return lx < ly ? -1 : lx > ly;
}

static void test_bad_files(void **state)
{
	DIR *d = opendir(BAD_DIR);
	struct dirent *de;
	unsigned files = 0;

	assert_non_null(d);
	while ((de = readdir(d))) {
		char path[1024];
		struct expect exp[16];
		struct config_problems probs = { 0 };
		struct config *cfg = NULL;
		unsigned flags;
		size_t nexp, nerr = 0;
		char *text;
		int err;

		if (!strstr(de->d_name, ".ini"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", BAD_DIR, de->d_name);
		text = slurp(path, NULL);
		assert_non_null(text);
		nexp = read_expectations(path, text, exp, 16, &flags);
		free(text);
		qsort(exp, nexp, sizeof(exp[0]), cmp_expect);
		err = config_load(path, flags, &cfg, &probs);
		for (size_t i = 0; i < nexp; i++)
			nerr += strstr(exp[i].text, ": warning: ") == NULL;
		if (probs.n != nexp || (nerr > 0) != (err == EINVAL)) {
			char buf[1400];

			print_error("%s: expected %zu problems, got %zu (err %d):\n", de->d_name,
				    nexp, probs.n, err);
			for (size_t i = 0; i < probs.n; i++)
				print_error("  got:  %s\n",
					    config_problem_format(&probs.v[i], buf, sizeof(buf)));
			for (size_t i = 0; i < nexp; i++)
				print_error("  want: %s\n", exp[i].text);
			fail();
		}
		for (size_t i = 0; i < nexp; i++) {
			char buf[1400];

			assert_string_equal(config_problem_format(&probs.v[i], buf, sizeof(buf)),
					    exp[i].text);
		}
		assert_true(nexp > 0);
		assert_null(cfg);
		config_problems_free(&probs);
		files++;
	}
	closedir(d);
	/* The issue asks for at least 25; a directory that shrank is a lost test. */
	assert_true(files >= 70);
}

static struct config *load_good(const char *name, unsigned flags)
{
	struct config_problems probs = { 0 };
	struct config *cfg = NULL;
	char path[1024], buf[1400];
	int err;

	snprintf(path, sizeof(path), "%s/%s", GOOD_DIR, name);
	err = config_load(path, flags, &cfg, &probs);
	for (size_t i = 0; i < probs.n; i++)
		print_error("%s\n", config_problem_format(&probs.v[i], buf, sizeof(buf)));
	assert_int_equal(probs.n, 0);
	assert_int_equal(err, 0);
	assert_non_null(cfg);
	config_problems_free(&probs);
	return cfg;
}

static void test_good_files(void **state)
{
	DIR *d = opendir(GOOD_DIR);
	struct dirent *de;
	unsigned n = 0;

	assert_non_null(d);
	while ((de = readdir(d))) {
		if (!strstr(de->d_name, ".ini"))
			continue;
		config_unref(load_good(de->d_name, TEST_FLAGS));
		n++;
	}
	closedir(d);
	assert_true(n >= 5);
}

static void test_defaults(void **state)
{
	struct config *c = load_good("minimal.ini", TEST_FLAGS);
	const struct config_trunk *t = config_trunk_find(c, "carrier");
	const struct config_trunk *ivr = config_trunk_find(c, "ivr");
	char ip[INET6_ADDRSTRLEN];

	assert_int_equal(c->global.log_level, LOG_LVL_INFO);
	assert_false(c->global.sip_trace);
	assert_string_equal(c->global.control_socket, "/run/srtpbridge/control.sock");
	assert_string_equal(c->global.metrics_host, "127.0.0.1");
	assert_int_equal(c->global.metrics_port, 9464);
	assert_int_equal(c->global.media_port_min, 20000);
	assert_int_equal(c->global.media_port_max, 29999);
	assert_int_equal(c->global.media_workers, CONFIG_AUTO);
	assert_int_equal(c->global.media_io, MEDIA_IO_AUTO);
	/* auto = 90 % of 10000 ports / 4 */
	assert_int_equal(c->global.max_calls, 2250);
	assert_int_equal(c->global.drain_timeout, 300);
	assert_int_equal(c->global.unknown_source, UNKNOWN_SOURCE_DROP);

	assert_non_null(t);
	assert_int_equal(t->nlisten, 1);
	assert_int_equal(t->listen[0].transport, SIP_TP_UDP);
	assert_int_equal(t->listen[0].port, 5060);
	assert_int_equal(t->srtp, SRTP_MANDATORY);
	assert_int_equal(t->nsuites, 2);
	assert_int_equal(t->suites[0], SUITE_AES_CM_128_HMAC_SHA1_80);
	assert_int_equal(t->suites[1], SUITE_AES_CM_128_HMAC_SHA1_32);
	assert_int_equal(t->srtcp, SRTCP_ENCRYPTED);
	assert_true(t->crypto_padding);
	assert_int_equal(t->crypto_lifetime, 0);
	assert_string_equal(t->media_address, "127.0.0.1");
	assert_null(t->media_advertise);
	assert_string_equal(t->tls_certificate, "/etc/srtpbridge/tls/sbc.pem");
	assert_true(t->tls_verify_peer);
	assert_int_equal(t->noptions_ok, 1);
	assert_int_equal(t->options_ok[0][0], 200);
	assert_int_equal(t->options_ok[0][1], 499);
	assert_int_equal(t->npass_headers, 4);
	assert_string_equal(t->pass_headers[3], "User-to-User");
	/* sources empty = the peers' addresses */
	assert_false(t->sources_any);
	assert_int_equal(t->nsources, 1);
	inet_ntop(t->sources[0].family, t->sources[0].addr, ip, sizeof(ip));
	assert_string_equal(ip, "127.0.0.1");
	assert_int_equal(t->sources[0].prefix, 32);
	assert_ptr_equal(t->route, ivr);
	assert_null(ivr->route);
	/* no route key and no rule: nothing routes the call */
	assert_null(config_route_lookup(c, ivr, "123", 3, NULL));
	assert_int_equal(ivr->srtp, SRTP_OFF);
	config_unref(c);
}

static void test_full(void **state)
{
	struct config *c = load_good("full.ini", TEST_FLAGS);
	const struct config_trunk *t = config_trunk_find(c, "carrier");

	assert_int_equal(c->global.log_level, LOG_LVL_DEBUG);
	assert_string_equal(c->global.metrics_host, "::1");
	assert_int_equal(c->global.metrics_port, 9500);
	assert_int_equal(c->global.media_workers, 3);
	assert_int_equal(c->global.media_io, MEDIA_IO_EPOLL);
	assert_int_equal(c->global.max_calls, 200);
	assert_int_equal(c->global.unknown_source, UNKNOWN_SOURCE_403);
	assert_int_equal(t->nlisten, 3);
	assert_int_equal(t->listen[1].transport, SIP_TP_TCP);
	assert_string_equal(t->listen[1].host, "::1");
	assert_int_equal(t->listen[2].port, 5061); /* tls default */
	assert_int_equal(t->npeers, 3);
	assert_string_equal(t->peers[1].host, "carrier.example.net");
	assert_false(t->peers[1].resolved); /* peers resolve when used */
	assert_int_equal(t->peers[2].port, 5070);
	assert_int_equal(t->nsources, 3);
	assert_int_equal(t->sources[1].family, AF_INET6);
	assert_int_equal(t->sources[1].prefix, 32);
	assert_int_equal(t->sources[2].prefix, 32);
	assert_int_equal(t->suites[0], SUITE_AEAD_AES_256_GCM);
	assert_int_equal(t->nsuites, 3);
	assert_int_equal(t->crypto_select, CRYPTO_SELECT_OFFERER);
	assert_int_equal(t->srtcp, SRTCP_EITHER);
	assert_int_equal(t->crypto_lifetime, 1ULL << 31);
	assert_true(t->crypto_lifetime_pow2);
	assert_int_equal(t->rekey, REKEY_ALWAYS);
	assert_int_equal(t->rekey_roc, REKEY_ROC_RESET);
	assert_int_equal(t->media_latching, LATCH_LEARN);
	assert_int_equal(t->noptions_ok, 3);
	assert_int_equal(t->options_ok[1][0], 403);
	assert_int_equal(t->options_ok[1][1], 405);
	/* relative paths are taken from the config file's directory */
	assert_string_equal(t->tls_certificate, GOOD_DIR "/tls/sbc.pem");
	assert_int_equal(t->tls_verify_client, TLS_CLIENT_OPTIONAL);
	assert_int_equal(config_trunk_find(c, "ivr")->npass_headers, 0);
	assert_int_equal(c->nroutes, 1);
	assert_string_equal(c->routes[0].match_src, "^80110[0-9]{2}$");
	config_unref(c);
}

static const char *route(const struct config *c, const char *from, const char *user)
{
	const struct config_trunk *dst =
		config_route_lookup(c, config_trunk_find(c, from), user, strlen(user), NULL);

	return dst ? dst->name : "(none)";
}

static void test_route_lookup(void **state)
{
	struct config *c = load_good("shared_listener.ini", TEST_FLAGS);
	const struct config_route *rule = NULL;
	char longuser[600];

	assert_string_equal(route(c, "ivr", "+441234567"), "carrier2");
	assert_string_equal(route(c, "ivr", "%2B441234567"), "carrier2"); /* decoded first */
	assert_string_equal(route(c, "ivr", "00441234567"), "carrier2");
	assert_string_equal(route(c, "ivr", "0331234567"), "carrier1"); /* trunk's route */
	assert_string_equal(route(c, "carrier1", "sip%20user"), "ivr");
	assert_string_equal(route(c, "carrier2", "sip%20user"), "ivr");
	assert_string_equal(route(c, "carrier2", "123"), "ivr");
	/* broken or NUL escapes match nothing, not even the default */
	assert_string_equal(route(c, "ivr", "%2"), "(none)");
	assert_string_equal(route(c, "ivr", "%zz"), "(none)");
	assert_string_equal(route(c, "ivr", "12%00"), "(none)");
	/* a user longer than the stack buffer */
	memset(longuser, '9', sizeof(longuser) - 1);
	longuser[sizeof(longuser) - 1] = '\0';
	memcpy(longuser, "0044", 4);
	assert_string_equal(route(c, "ivr", longuser), "carrier2");
	assert_non_null(config_route_lookup(c, config_trunk_find(c, "ivr"), "+44", 3, &rule));
	assert_non_null(rule);
	assert_string_equal(rule->name, "to-carrier2");
	config_unref(c);
}

static const char *classify(const struct config *c, enum sip_transport tp, const char *local,
			    uint16_t lport, const char *src)
{
	struct sockaddr_in l = { .sin_family = AF_INET, .sin_port = htons(lport) };
	struct sockaddr_in s = { .sin_family = AF_INET, .sin_port = htons(40000) };
	const struct config_trunk *t;

	inet_pton(AF_INET, local, &l.sin_addr);
	inet_pton(AF_INET, src, &s.sin_addr);
	t = config_trunk_for_source(c, tp, (struct sockaddr *)&l, (struct sockaddr *)&s);
	return t ? t->name : "(none)";
}

/* One listener, two carriers told apart by their sources; the IVR by its
 * peer's address; nobody else. */
static void test_trunk_for_source(void **state)
{
	struct config *c = load_good("shared_listener.ini", TEST_FLAGS);

	assert_string_equal(classify(c, SIP_TP_UDP, "127.0.0.1", 5060, "10.1.2.3"), "carrier1");
	assert_string_equal(classify(c, SIP_TP_UDP, "127.0.0.1", 5060, "10.2.0.9"), "carrier2");
	assert_string_equal(classify(c, SIP_TP_UDP, "127.0.0.1", 5060, "10.3.0.1"), "(none)");
	/* the right source on the wrong listener or transport is nobody */
	assert_string_equal(classify(c, SIP_TP_UDP, "127.0.0.1", 5070, "10.1.2.3"), "(none)");
	assert_string_equal(classify(c, SIP_TP_TCP, "127.0.0.1", 5060, "10.1.2.3"), "(none)");
	/* sources empty = the peers' addresses */
	assert_string_equal(classify(c, SIP_TP_UDP, "127.0.0.1", 5070, "127.0.0.1"), "ivr");
	assert_string_equal(classify(c, SIP_TP_UDP, "127.0.0.1", 5070, "127.0.0.2"), "(none)");
	config_unref(c);
}

static int load_text(const char *text, struct config **cfg, struct config_problems *probs)
{
	return config_load_buffer("/test/mem.ini", text, strlen(text), TEST_FLAGS, cfg, probs);
}

#define TWO_TRUNKS                                                                                 \
	"[trunk:a]\nlisten = udp:127.0.0.1:5060\npeers = udp:127.0.0.1:5090\nroute = b\n"          \
	"[trunk:b]\nlisten = udp:127.0.0.1:5070\npeers = udp:127.0.0.1:5080\n"

static void test_long_line_and_nul(void **state)
{
	struct config_problems probs = { 0 };
	struct config *cfg = NULL;
	char *text = malloc(10000);
	char buf[1400];
	int err;

	assert_non_null(text);
	strcpy(text, "[global]\nlog_level = info ; ");
	memset(text + strlen(text), 'x', 5000);
	strcpy(text + 28 + 5000, "\n" TWO_TRUNKS);
	err = load_text(text, &cfg, &probs);
	assert_int_equal(err, EINVAL);
	assert_int_equal(probs.n, 1);
	assert_string_equal(config_problem_format(&probs.v[0], buf, sizeof(buf)),
			    "/test/mem.ini:2: line is longer than 4094 characters");
	config_problems_free(&probs);

	static const char nul[] = "[global]\nlog_level = in\0fo\n" TWO_TRUNKS;
	err = config_load_buffer("/test/mem.ini", nul, sizeof(nul) - 1, TEST_FLAGS, &cfg, &probs);
	assert_int_equal(err, EINVAL);
	assert_int_equal(probs.n, 1);
	assert_string_equal(config_problem_format(&probs.v[0], buf, sizeof(buf)),
			    "/test/mem.ini:2: line contains a NUL byte");
	config_problems_free(&probs);
	free(text);
}

static void test_missing_file(void **state)
{
	struct config_problems probs = { 0 };
	struct config *cfg = NULL;
	char buf[1400];

	assert_int_equal(config_load("/nonexistent/srtpbridge.ini", 0, &cfg, &probs), ENOENT);
	assert_null(cfg);
	assert_int_equal(probs.n, 1);
	assert_string_equal(config_problem_format(&probs.v[0], buf, sizeof(buf)),
			    "/nonexistent/srtpbridge.ini: cannot read: No such file or directory");
	config_problems_free(&probs);
}

struct changed {
	char keys[8][128];
	unsigned n;
};

static void collect(void *arg, const char *section, const char *key)
{
	struct changed *ch = arg;

	assert_true(ch->n < 8);
	snprintf(ch->keys[ch->n++], 128, "%s.%s", section, key);
}

static void test_restart_keys(void **state)
{
	struct config_problems probs = { 0 };
	struct config *a = NULL, *b = NULL;
	struct changed ch = { 0 };

	assert_int_equal(load_text("[global]\nmedia_ports = 30000-30999\n" TWO_TRUNKS, &a, &probs),
			 0);
	/* log_level and max_calls apply on reload; media_ports and listen need a
	 * restart; a new trunk brings a new listener. */
	assert_int_equal(
		load_text("[global]\nlog_level = debug\nmax_calls = 10\nmedia_ports = 31000-31999\n"
			  "[trunk:a]\nlisten = udp:127.0.0.1:5061\npeers = udp:127.0.0.1:5090\n"
			  "route = b\n[trunk:b]\nlisten = udp:127.0.0.1:5070\n"
			  "peers = udp:127.0.0.1:5080\n[trunk:c]\nlisten = udp:127.0.0.1:5072\n"
			  "peers = udp:127.0.0.1:5082\n",
			  &b, &probs),
		0);
	config_restart_keys_changed(a, b, collect, &ch);
	assert_int_equal(ch.n, 3);
	assert_string_equal(ch.keys[0], "global.media_ports");
	assert_string_equal(ch.keys[1], "trunk:a.listen");
	assert_string_equal(ch.keys[2], "trunk:c.listen");
	ch.n = 0;
	config_restart_keys_changed(a, a, collect, &ch);
	assert_int_equal(ch.n, 0);
	config_unref(a);
	config_unref(b);
	config_problems_free(&probs);
}

/* Listen names resolve at load; peer names stay names, but with sources
 * empty their addresses become the sources. localhost needs no DNS. */
static void test_name_resolution(void **state)
{
	static const char text[] =
		"[trunk:a]\nlisten = udp:localhost:5060\npeers = udp:localhost:5090\nroute = b\n"
		"[trunk:b]\nlisten = udp:127.0.0.1:5070\npeers = udp:127.0.0.1:5080\n";
	struct config_problems probs = { 0 };
	struct config *c = NULL;
	const struct config_trunk *t;
	bool v4 = false;

	assert_int_equal(config_load_buffer("/test/mem.ini", text, strlen(text), CONFIG_NO_FILES,
					    &c, &probs),
			 0);
	t = config_trunk_find(c, "a");
	assert_true(t->listen[0].resolved);
	assert_true(t->listen[0].addr.ss_family == AF_INET ||
		    t->listen[0].addr.ss_family == AF_INET6);
	assert_false(t->peers[0].resolved);
	assert_true(t->nsources >= 1);
	for (size_t i = 0; i < t->nsources; i++)
		v4 |= t->sources[i].family == AF_INET && t->sources[i].addr[0] == 127;
	assert_true(v4);
	config_unref(c);
	config_problems_free(&probs);

	/* Without resolution the name is kept and nothing is derived from it. */
	assert_int_equal(load_text(text, &c, &probs), 0);
	t = config_trunk_find(c, "a");
	assert_false(t->listen[0].resolved);
	assert_string_equal(t->listen[0].host, "localhost");
	assert_int_equal(t->nsources, 0);
	config_unref(c);
	config_problems_free(&probs);
}

static void test_refcount(void **state)
{
	struct config_problems probs = { 0 };
	struct config *a = NULL;

	assert_int_equal(load_text(TWO_TRUNKS, &a, &probs), 0);
	assert_ptr_equal(config_ref(a), a);
	config_unref(a);
	assert_int_equal(a->ntrunks, 2); /* still alive: one reference left */
	config_unref(a);
	config_unref(NULL);
}

/* docs/configuration.md has one table row per key: | `key` | `default` | ... */
static void test_docs_match_table(void **state)
{
	char *doc = slurp(TEST_SOURCE_DIR "/docs/configuration.md", NULL);
	size_t n;
	const struct config_key_info *k = config_keys(&n);
	enum config_section_kind cur = CONFIG_SEC_GLOBAL;
	unsigned rows = 0;
	bool seen[128] = { false };
	char *save = NULL;

	assert_non_null(doc);
	assert_true(n <= 128);
	for (char *line = strtok_r(doc, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[64], def[256], rest[1024];
		bool found = false;

		if (strncmp(line, "## [global]", 11) == 0)
			cur = CONFIG_SEC_GLOBAL;
		else if (strncmp(line, "## [trunk:", 10) == 0)
			cur = CONFIG_SEC_TRUNK;
		else if (strncmp(line, "## [route:", 10) == 0)
			cur = CONFIG_SEC_ROUTE;
		if (sscanf(line, "| `%63[^`]` | %255[^|]| %1023[^\n]", name, def, rest) != 3)
			continue;
		rows++;
		for (size_t i = 0; i < n; i++) {
			char want[300];

			if (k[i].section != cur || strcmp(k[i].name, name) != 0)
				continue;
			found = true;
			seen[i] = true;
			if (!k[i].def)
				snprintf(want, sizeof(want), "(required) ");
			else if (!*k[i].def)
				snprintf(want, sizeof(want), "(empty) ");
			else
				snprintf(want, sizeof(want), "`%s` ", k[i].def);
			if (strcmp(def, want) != 0)
				fail_msg("docs: [%s] %s: default '%s', the table says '%s'",
					 config_section_name(cur), name, def, want);
			if ((strstr(rest, "*restart*") != NULL) != k[i].restart)
				fail_msg("docs: [%s] %s: *restart* marker does not match the table",
					 config_section_name(cur), name);
		}
		if (!found)
			fail_msg("docs: [%s] %s is documented but the loader has no such key",
				 config_section_name(cur), name);
	}
	for (size_t i = 0; i < n; i++)
		if (!seen[i])
			fail_msg("docs: [%s] %s is not documented",
				 config_section_name(k[i].section), k[i].name);
	assert_int_equal(rows, n);
	free(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_files),	 cmocka_unit_test(test_good_files),
		cmocka_unit_test(test_defaults),	 cmocka_unit_test(test_full),
		cmocka_unit_test(test_route_lookup),	 cmocka_unit_test(test_long_line_and_nul),
		cmocka_unit_test(test_missing_file),	 cmocka_unit_test(test_restart_keys),
		cmocka_unit_test(test_refcount),	 cmocka_unit_test(test_name_resolution),
		cmocka_unit_test(test_trunk_for_source), cmocka_unit_test(test_docs_match_table),
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
