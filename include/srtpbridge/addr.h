/* addr.h: socket addresses: as text, the one way logs and messages show
 * them; from an IP literal; compared. */
#ifndef SRTPBRIDGE_ADDR_H
#define SRTPBRIDGE_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* "192.0.2.1:5060", "[2001:db8::1]:5060", or "?" for another family; always
 * NUL-terminated when size > 0, cut to fit. */
void addr_format(const struct sockaddr *sa, char *buf, size_t size);

/* An IPv4 or IPv6 literal (no brackets) and a port, into *out (zeroed
 * first) and *len. 0, or EINVAL for anything else (NULL too). */
int addr_from_ip(const char *ip, uint16_t port, struct sockaddr_storage *out, socklen_t *len);

/* Same family and address, and the same port when port is true. Other
 * families are never equal. */
bool addr_equal(const struct sockaddr *a, const struct sockaddr *b, bool port);

#endif
