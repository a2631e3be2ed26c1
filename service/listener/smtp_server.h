/* smtp_server.h - SMTP sessions on the I/O engine (service/io/ioengine.h).
 *
 * Accepted connections become sessions driven by the sans-I/O engine
 * core/smtpd.c, or are refused with 421 at the MaxSessions and
 * MaxSessionsPerAddress limits. No session has a thread of its own. This
 * module owns the sessions and their timers; it never parses SMTP itself.
 */
#ifndef IMSVC_SMTP_SERVER_H
#define IMSVC_SMTP_SERVER_H

#include <windows.h>

#include "config.h"

/* Listen on ListenAddress:ListenPort with cfg's limits and timers. The I/O
 * engine must be running. Returns a Win32/WinSock error; on failure nothing
 * is left listening. */
DWORD smtp_server_start(const struct imsvc_config *cfg);

/* While paused, new connections get 421 4.3.2 and are closed; sessions in
 * progress finish. */
void smtp_server_pause(int paused);

/* Stop listening, tell every session 421 4.3.2 at its next turn, and wait
 * for them to end (at most wait_ms). */
void smtp_server_stop(DWORD wait_ms);

/* Sessions in progress now. */
LONG smtp_server_active(void);

/* Refusals and closings by reason and the engine's figures, as
 * "name value\r\n" lines for the status file. Its length, or -1. */
int smtp_server_status_text(char *buf, size_t cap);

#endif
