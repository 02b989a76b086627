/* addr.h: socket addresses as text, the one way logs and messages show them. */
#ifndef SRTPBRIDGE_ADDR_H
#define SRTPBRIDGE_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

/* "192.0.2.1:5060", "[2001:db8::1]:5060", or "?" for another family; always
 * NUL-terminated when size > 0, cut to fit. */
void addr_format(const struct sockaddr *sa, char *buf, size_t size);

#endif
