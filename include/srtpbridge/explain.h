/* explain.h: what the daemon would do with an offer arriving on a trunk,
 * without starting it (srtpbridge --explain, DESIGN.md "Daemon"). */
#ifndef SRTPBRIDGE_EXPLAIN_H
#define SRTPBRIDGE_EXPLAIN_H

#include <stdbool.h>
#include <stdio.h>

#include "srtpbridge/config.h"
#include "srtpbridge/slice.h"

struct explain_request {
	const char *trunk;   /* the inbound trunk */
	const char *user;    /* the dialled user of the Request-URI, raw; NULL = "" */
	struct slice offer;  /* the offer arriving there */
	struct slice answer; /* the routed side's answer; empty = simulated */
	bool json;
};

/* Writes the route, the suite chosen or the refusal, and the SDP on each leg
 * (keys redacted). Returns 0 when the call would be accepted, 1 when it
 * would be refused (the status and reason are in the output), or an errno
 * (with a message on out) when the request itself is unusable. */
int explain_offer(const struct config *cfg, const struct explain_request *req, FILE *out);

#endif
