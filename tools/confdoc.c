/* Writes srtpbridge.ini(5) from the key table the loader reads, so the
 * manual cannot describe a key that does not exist or miss one that does. */
#include <stdio.h>
#include <string.h>

#include "srtpbridge/config.h"

/* roff: a leading '.' or '\'' would be a request, a backslash an escape. */
static void roff(const char *s)
{
	if (*s == '.' || *s == '\'')
		fputs("\\&", stdout);
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\e", stdout);
		else if (*s == '-')
			fputs("\\-", stdout);
		else
			putchar(*s);
	}
}

static void section(enum config_section_kind kind, const char *title, const char *intro)
{
	size_t n;
	const struct config_key_info *k = config_keys(&n);

	printf(".SH %s\n", title);
	roff(intro);
	printf("\n");
	for (size_t i = 0; i < n; i++) {
		if (k[i].section != kind)
			continue;
		printf(".TP\n.B %s\n", k[i].name);
		roff(k[i].values);
		printf(" (default: ");
		if (!k[i].def)
			printf("required");
		else if (!*k[i].def)
			printf("empty");
		else
			roff(k[i].def);
		printf(")%s\n.br\n", k[i].restart ? "; needs a restart" : "");
		roff(k[i].doc);
		printf(".\n");
	}
}

static void md_cell(const char *s)
{
	for (; *s; s++) {
		if (*s == '|')
			putchar('\\');
		putchar(*s);
	}
}

/* The key tables of docs/configuration.md, whose prose is written by hand
 * around them; the docs test compares them with the loader's table. */
static void markdown(void)
{
	static const enum config_section_kind kinds[] = { CONFIG_SEC_GLOBAL, CONFIG_SEC_TRUNK,
							  CONFIG_SEC_ROUTE };
	size_t n;
	const struct config_key_info *k = config_keys(&n);

	for (size_t s = 0; s < 3; s++) {
		printf("\n## [%s]\n\n| key | default | values | reload | meaning |\n"
		       "|---|---|---|---|---|\n",
		       config_section_name(kinds[s]));
		for (size_t i = 0; i < n; i++) {
			if (k[i].section != kinds[s])
				continue;
			printf("| `%s` | ", k[i].name);
			if (!k[i].def)
				printf("(required)");
			else if (!*k[i].def)
				printf("(empty)");
			else
				printf("`%s`", k[i].def);
			printf(" | ");
			md_cell(k[i].values);
			printf(" | %s | ", k[i].restart ? "*restart*" : "live");
			md_cell(k[i].doc);
			printf(" |\n");
		}
	}
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "markdown") == 0) {
		markdown();
		return 0;
	}
	if (argc != 2 || strcmp(argv[1], "man") != 0) {
		fprintf(stderr, "usage: srtpbridge-confdoc man|markdown\n");
		return 3;
	}
	printf(".TH SRTPBRIDGE.INI 5 \"\" \"srtpbridge %s\" \"File Formats\"\n",
	       SRTPBRIDGE_VERSION);
	printf(".SH NAME\nsrtpbridge.ini \\- srtpbridge configuration\n");
	printf(".SH DESCRIPTION\nAn INI file: a \\fB[global]\\fR section, one "
	       "\\fB[trunk:NAME]\\fR section per SIP trunk and optional \\fB[route:NAME]\\fR "
	       "rules, tried in file order before a trunk's own \\fBroute\\fR.\n"
	       "A ';' after white space starts a comment; '#' and ';' start a comment line. "
	       "Unknown sections, keys and values are errors, reported as FILE:LINE: message "
	       "by \\fBsrtpbridge \\-\\-check\\fR. Relative paths are taken from the "
	       "directory of the file. A SIGHUP reloads the file for new calls; keys marked "
	       "\"needs a restart\" keep their running value until the service restarts.\n");
	section(CONFIG_SEC_GLOBAL, "[global]", "Settings of the whole daemon.");
	section(CONFIG_SEC_TRUNK, "[trunk:NAME]",
		"A SIP trunk: where it listens, who may send to it, where its calls go and how "
		"its media is protected.");
	section(CONFIG_SEC_ROUTE, "[route:NAME]",
		"A routing rule: calls arriving on a trunk named in from, whose dialled number "
		"matches, go to the trunk named in to.");
	printf(".SH SEE ALSO\n.BR srtpbridge (8)\n");
	return 0;
}
