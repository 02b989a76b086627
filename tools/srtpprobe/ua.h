/* ua.h: srtpprobe's SIP user agent: test calls placed and answered over the
 * daemon's own SIP stack (sipcore.h: transports, parser, transactions;
 * dialog.h; legb.h's Via and Contact), with the probe as the transaction
 * user, psdp.h for offer/answer and pmedia.h for the audio.
 *
 * One struct ua per process and event loop carries any number of calls
 * (srtpprobe load keeps hundreds). A caller's call: INVITE with our offer,
 * 1xx (early answer taken once), 2xx ACKed (its retransmissions too, after
 * the transaction as well: RFC 6026), 3xx-6xx a SIP failure; re-INVITEs for
 * hold/resume or a re-key on its schedule; BYE at the end, whose 200 is
 * awaited (bounded). An answerer's call: 200 with our answer (488 with a
 * Warning when there is none), retransmitted until the ACK; re-INVITEs
 * answered (new keys, hold mirrored); BYE and CANCEL answered.
 *
 * Each side tells the other what it heard: the BYE and the 200 to a BYE
 * carry X-Srtpprobe-Heard (ua_heard_format); a call's report has the far
 * end's account when it came. Key material never reaches a report: key
 * fingerprints (secret.h) at most. */
#ifndef SRTPPROBE_UA_H
#define SRTPPROBE_UA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "srtpbridge/config.h"
#include "srtpbridge/log.h"
#include "srtpbridge/secret.h"
#include "pmedia.h"
#include "psdp.h"

#define UA_MAX_LISTEN	8
#define UA_HEARD_HEADER "X-Srtpprobe-Heard"
#define UA_WINDOW_DELAY_MS                                                                         \
	500		      /* the measurement window restarts this long after media (re)starts */
#define UA_BYE_WAIT_MS	 4000 /* how long a caller waits for the 200 to its BYE */
#define UA_RING_MAX_MS	 60000 /* a caller cancels after this long without a final response */
#define UA_MAX_REINVITES 4

struct event_base;
struct ua;
struct ua_call;

enum ua_role {
	UA_CALLER = 0,
	UA_ANSWERER,
};

/* What one side heard in its measurement window (the X-Srtpprobe-Heard
 * header: "tone=A; frames=123; packets=150"). tone is A, B, C, silence,
 * other or none. */
struct ua_heard {
	bool present;
	char tone[8];
	uint64_t frames;  /* frames of that tone in the window (all frames for none) */
	uint64_t packets; /* RTP packets accepted in the whole call */
};

/* Writes the header value into buf. */
void ua_heard_format(const struct ua_heard *h, char *buf, size_t size);
/* Reads a header value (untrusted): ';'-separated key=value pairs, spaces
 * allowed, unknown keys ignored, tone required. 0 or EINVAL (out is then
 * not present). */
int ua_heard_parse(const char *value, struct ua_heard *out);

struct ua_config {
	enum ua_role role;
	/* SIP */
	char listen[UA_MAX_LISTEN][300]; /* "udp:127.0.0.1:5080": the sipcore listen syntax */
	size_t nlisten;
	char to[1024];		      /* caller: the Request-URI (sip:USER@HOST:PORT...) */
	char peer[300];		      /* caller: "udp:HOST:PORT", where the INVITE goes */
	enum sip_transport transport; /* caller: of peer */
	const char *ca;		      /* verify the server (caller; NULL: the system store) */
	const char *tls_name;	      /* name the server must carry (NULL: the --to host) */
	const char *cert, *key;	      /* our certificate on tls listens (and as a TLS client) */
	enum log_level log_level;
	bool sip_trace;
	/* media */
	char media_addr[64]; /* binds and goes in c= */
	struct psdp_policy pol;
	struct pmedia_faults faults;
	unsigned speed; /* tests: pmedia_set_speed; 0 or 1 = real time */
	/* a caller's call: 0 = until ua_call_hangup */
	unsigned duration_ms;
	bool hold_resume; /* re-INVITE sendonly at 1/3, sendrecv at 2/3, new keys each */
	bool rekey_mid;	  /* without hold_resume: a sendrecv re-INVITE, new key, at 1/2 */
};

/* The SIP outcome of one re-INVITE. */
struct ua_reinvite {
	char purpose[16]; /* "hold", "resume", "rekey" (ours) or "far end" (theirs) */
	bool ours;
	int status; /* 0: no response (timeout or transport error) */
	char reason[64];
	char warning[256];
};

/* What a call did, for its report. Filled as the call goes; final when the
 * ended callback gets it. */
struct ua_report {
	enum ua_role role;
	char call_id[128];
	char transport[4];
	/* the INVITE's final response (received by a caller, sent by an answerer) */
	int status; /* 0: none */
	char reason[64];
	char warning[256];  /* Warning text, unquoted */
	char failure[256];  /* what else went wrong, in words; "" = nothing */
	bool usage_failure; /* the failure is ours to fix (exit 3) */
	int64_t setup_ms;   /* INVITE -> 2xx; -1 when not answered */
	struct ua_reinvite reinvites[UA_MAX_REINVITES];
	size_t nreinvites;
	char ended_by[12];    /* "us", "far end", "failure" */
	int bye_status;	      /* the response to our BYE (0: none came), or 200 to theirs */
	char bye_reason[200]; /* the Reason header of their BYE, if any */
	uint64_t duration_ms; /* 2xx to the end */
	/* media, valid when media is true */
	bool media;
	bool secure;
	enum suite_id suite;
	int pt;
	enum psdp_dir dir;
	char local_media[96], remote_media[96];
	char key_ours[SECRET_FINGERPRINT_LEN], key_peer[SECRET_FINGERPRINT_LEN];
	struct pmedia_stats st;
	enum pmedia_heard heard;
	struct ua_heard ours; /* what we heard (and told the far end) */
	struct ua_heard far;  /* the far end's account, when it came */
	/* the verdict (ua_judge) */
	const char *verdict;
	int exit_status; /* 0 two-way audio, 1 audio missing, 2 SIP failure, 3 usage */
};

/* The verdict from a report's SIP outcome, what we heard and the far end's
 * account; sets verdict and exit_status (docs/srtpprobe.md has the table). */
void ua_judge(struct ua_report *r);

struct ua_callbacks {
	/* A call ended: its final report (borrowed for the call). The call is
	 * freed when this returns. */
	void (*ended)(void *arg, struct ua_call *c, const struct ua_report *r);
	/* Optional: a caller's call got its 2xx (load counts them). */
	void (*answered)(void *arg, struct ua_call *c);
};

/* Loads the SIP stack for cfg (copied) on base: binds every listen address.
 * Borrows base for the ua's life. Returns 0 or an errno with a sentence in
 * why (EADDRINUSE: a listen address is taken; EINVAL: something in cfg). */
int ua_create(struct ua **out, struct event_base *base, const struct ua_config *cfg,
	      const struct ua_callbacks *cb, void *arg, char *why, size_t whysz);
/* Frees every call without a report or a message, and the stack. NULL-safe. */
void ua_destroy(struct ua *u);

/* The listen addresses as bound, "udp:127.0.0.1:5080, tcp:...". */
const char *ua_listening(const struct ua *u);

/* Caller: places one call now. Returns 0 (*out, when not NULL: borrowed
 * until its ended callback) or an errno with why; a call that fails later
 * ends through the callback with its report. */
int ua_call_start(struct ua *u, struct ua_call **out, char *why, size_t whysz);
/* Ends the call: BYE once answered, CANCEL while ringing. NULL-safe. */
void ua_call_hangup(struct ua_call *c);
/* Hangs up every call (a signal, the end of a load run). */
void ua_hangup_all(struct ua *u);
/* Calls alive. */
size_t ua_active(const struct ua *u);

#endif
