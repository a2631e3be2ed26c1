/* smtp_server.h - the SMTP listener: sockets around the session engine.
 *
 * A fixed pool of threads, each blocked in accept() on the listening socket
 * (creating a thread per connection costs about a third of the throughput
 * under Wine, see DESIGN.md), each running one session at a time with the
 * sans-I/O engine core/smtpd.c. This module owns the sockets and the clock;
 * it never parses SMTP itself.
 */
#ifndef IMSVC_SMTP_SERVER_H
#define IMSVC_SMTP_SERVER_H

#include <windows.h>

#include "config.h"

/* Bind ListenAddress:ListenPort and start MaxSessions session threads.
 * Returns a Win32/WinSock error; on failure nothing is left running. */
DWORD smtp_server_start(const struct imsvc_config *cfg);

/* While paused, new connections get 421 4.3.2 and are closed; sessions in
 * progress finish. */
void smtp_server_pause(int paused);

/* Stop accepting, tell every session 421 4.3.2 at its next turn, and wait
 * for the session threads (at most wait_ms, then they are abandoned). */
void smtp_server_stop(DWORD wait_ms);

/* Sessions in progress now. */
LONG smtp_server_active(void);

#endif
