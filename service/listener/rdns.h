/* rdns.h - the client's host name for the Received field (ReverseDns).
 *
 * The name comes from reverse DNS of the client's address and counts only
 * when a forward lookup of it gives the same address back (as Postfix's
 * smtpd verifies a client name), so a client cannot name itself in our
 * Received field through a PTR record it controls. The lookups block, so
 * they run on a thread-pool thread, never on an I/O worker; the session
 * waits for them no longer than its own deadline (ReverseDnsTimeoutMs) and
 * then goes on without a name, leaving the lookup to end and free itself.
 *
 * This module never speaks SMTP and never touches a session: it only
 * answers with a name, or none.
 */
#ifndef IMSVC_RDNS_H
#define IMSVC_RDNS_H

#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>

#include "ioengine.h"

struct rdns;

/* From the connection's handler: start looking up peer's name. When the
 * answer is in, the connection gets IO_EV_WAKE (the lookup holds a
 * reference on it meanwhile). NULL when it cannot start: go on without. */
struct rdns *rdns_start(struct io_conn *io, const struct sockaddr_storage *peer);

/* The session's deadline passed. 1: the lookup is abandoned (no wake will
 * come; it frees itself when it ends; forget r). 0: the answer is already
 * on its way: wait for IO_EV_WAKE, then call rdns_finish. */
int rdns_abandon(struct rdns *r);

/* After the wake: the confirmed name into name (n > 0; "" when there is
 * none), and r is freed. name may be NULL to free only. */
void rdns_finish(struct rdns *r, char *name, size_t n);

#endif
