/* A call's sockets: pairs from the pool, given back on every path (after
 * the media worker has let go of them). */
#include "srtpbridge/media_session.h"
#include "srtpbridge/addr.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct media_session {
	struct portpool *pool;
	struct relay_session *relay;
	size_t n;
	struct portpool_pair pairs[2][MEDIA_SESSION_MAX_STREAMS];
};

static void give_back(void *arg)
{
	struct media_session *s = arg;

	for (size_t leg = 0; leg < 2; leg++)
		for (size_t i = 0; i < s->n; i++)
			if (s->pairs[leg][i].rtp_fd >= 0)
				portpool_free_pair(s->pool, &s->pairs[leg][i]);
	free(s);
}

int media_session_create(struct media_session **out, struct portpool *pool, struct relay *relay,
			 const char *addr_a, const char *addr_b, size_t nstreams)
{
	int fds[2][RELAY_MAX_STREAMS], fds_rtcp[2][RELAY_MAX_STREAMS];
	uint64_t ids[2][RELAY_MAX_STREAMS];
	struct sockaddr_storage sa[2];
	socklen_t len[2];
	struct media_session *s;
	int err;

	if (!pool || nstreams == 0 || nstreams > MEDIA_SESSION_MAX_STREAMS ||
	    addr_from_ip(addr_a, 0, &sa[0], &len[0]) || addr_from_ip(addr_b, 0, &sa[1], &len[1]))
		return EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return ENOMEM;
	s->pool = pool;
	for (size_t leg = 0; leg < 2; leg++)
		for (size_t i = 0; i < MEDIA_SESSION_MAX_STREAMS; i++)
			s->pairs[leg][i].rtp_fd = s->pairs[leg][i].rtcp_fd = -1;
	err = 0;
	for (size_t i = 0; i < nstreams && !err; i++) {
		for (size_t leg = 0; leg < 2 && !err; leg++)
			err = portpool_alloc_pair(pool, (const struct sockaddr *)&sa[leg], len[leg],
						  &s->pairs[leg][i]);
		s->n = i + 1; /* what destroy gives back, a half-taken stream too */
	}
	for (size_t leg = 0; leg < 2 && !err; leg++)
		for (size_t i = 0; i < nstreams; i++) {
			fds[leg][i] = s->pairs[leg][i].rtp_fd;
			fds_rtcp[leg][i] = s->pairs[leg][i].rtcp_fd;
			ids[leg][i] = s->pairs[leg][i].id;
		}
	if (!err)
		err = relay_session_create(&s->relay, relay, nstreams, fds, fds_rtcp, ids);
	if (err) {
		give_back(s);
		return err;
	}
	*out = s;
	return 0;
}

void media_session_destroy(struct media_session *s)
{
	if (s)
		relay_session_remove(s->relay, give_back, s);
}

int media_session_update(struct media_session *s,
			 const struct relay_stream_params p[2][RELAY_MAX_STREAMS], size_t nstreams)
{
	return relay_session_update(s->relay, p, nstreams);
}

struct relay_session *media_session_relay(const struct media_session *s)
{
	return s->relay;
}

size_t media_session_nstreams(const struct media_session *s)
{
	return s->n;
}

uint16_t media_session_port(const struct media_session *s, enum media_leg leg, size_t i)
{
	return i < s->n ? s->pairs[leg][i].rtp_port : 0;
}

void media_session_ports(const struct media_session *s, enum media_leg leg, uint16_t *ports,
			 size_t max)
{
	for (size_t i = 0; i < max; i++)
		ports[i] = media_session_port(s, leg, i);
}
