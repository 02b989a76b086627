/* srtplib.c: the process-wide state of libsrtp2 (see srtplib.h). */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include <srtp2/srtp.h>

#include "srtpbridge/srtplib.h"

static bool initialised;
/* Which library a process links cannot change, so this outlives a shutdown. */
static const char *cached_backend = "unknown";

/* libsrtp has no call that names its crypto library, but each build names its
 * AES-ICM debug module after the implementation it compiled in. Exact names:
 * "aes icm" is a prefix of all the others. */
static const struct {
	const char *module;
	const char *backend;
} backends[] = {
	{ "aes icm ossl", "openssl" },
	{ "aes icm nss", "nss" },
	{ "aes icm mbedtls", "mbedtls" },
	{ "aes icm", "builtin" },
};

static void backend_from_log(srtp_log_level_t level, const char *msg, void *data)
{
	const char **found = data;
	size_t len;
	size_t i;

	(void)level;
	/* The list is meant for a terminal: each name is a message of its own,
	 * padded as "  NAME ", with "(on)" or "(off)" as the next message. */
	while (*msg == ' ')
		msg++;
	len = strlen(msg);
	while (len > 0 && msg[len - 1] == ' ')
		len--;
	for (i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
		if (strlen(backends[i].module) == len &&
		    memcmp(msg, backends[i].module, len) == 0) {
			*found = backends[i].backend;
			return;
		}
	}
}

static const char *detect_backend(void)
{
	const char *found = "unknown";

	if (srtp_install_log_handler(backend_from_log, &found) != srtp_err_status_ok)
		return found;
	(void)srtp_list_debug_modules();
	/* libsrtp cannot return the handler it had, so none is restored; that is
	 * why srtplib.h asks for log handlers to be installed after init. */
	(void)srtp_install_log_handler(NULL, NULL);
	return found;
}

int srtplib_init(void)
{
	/* A second srtp_init() would re-run every cipher self-test, and exit()
	 * the process if one failed. */
	if (initialised)
		return 0;
	if (srtp_init() != srtp_err_status_ok) {
		/* Frees whatever the failed init had registered. */
		(void)srtp_shutdown();
		return EIO;
	}
	initialised = true;
	cached_backend = detect_backend();
	return 0;
}

void srtplib_shutdown(void)
{
	if (!initialised)
		return;
	/* It only frees memory: a failure leaves nothing the caller could act on. */
	(void)srtp_shutdown();
	initialised = false;
}

const char *srtplib_version(void)
{
	return srtp_get_version_string();
}

const char *srtplib_backend(void)
{
	return cached_backend;
}
