/* accept_backoff.h: a listening socket that runs out of descriptors pauses
 * instead of spinning.
 *
 * When accept() fails for lack of resources (EMFILE, ENFILE, ENOBUFS,
 * ENOMEM), the pending connection stays queued, the socket stays readable,
 * and libevent 2.1 leaves its listener enabled: the loop would call accept()
 * again at once, forever, on the thread that carries all SIP signalling.
 * Attached to a listener, this module disables it on such an error and
 * enables it again ACCEPT_BACKOFF_PAUSE_MS later; meanwhile new connections
 * wait in the kernel's backlog. Other accept errors leave the listener on.
 * Either way a listener writes at most one warning per ACCEPT_BACKOFF_LOG_S
 * seconds, with the count of what it did not log. */
#ifndef SRTPBRIDGE_ACCEPT_BACKOFF_H
#define SRTPBRIDGE_ACCEPT_BACKOFF_H

#include <stdint.h>

#include <event2/listener.h>

#define ACCEPT_BACKOFF_PAUSE_MS 250
#define ACCEPT_BACKOFF_LOG_S	10

struct accept_backoff;

/* Takes l: it is freed even on error, and accept_backoff_free() frees it.
 * Sets both of l's callbacks: each accepted socket goes to cb with arg, as
 * evconnlistener_new() would have given it. name (copied) names the
 * listener in the log ("tcp:127.0.0.1:5060"). Returns 0 or ENOMEM. */
int accept_backoff_attach(struct accept_backoff **out, struct evconnlistener *l,
			  evconnlistener_cb cb, void *arg, const char *name);

/* Stops accepting for good (a drain): disables the listener and cancels a
 * pending resume, which would otherwise enable it again. */
void accept_backoff_stop(struct accept_backoff *ab);

/* Pauses since attach; 0 for NULL. */
uint64_t accept_backoff_pauses(const struct accept_backoff *ab);

/* Cancels the resume timer and frees the listener (closing its socket if it
 * was made with LEV_OPT_CLOSE_ON_FREE). NULL-safe. */
void accept_backoff_free(struct accept_backoff *ab);

#endif
