/* logs.h - the protocol log and the message tracking log on disk.
 *
 * Two logs an administrator reads with a text editor or `imsvc track`
 * (docs/logs.md): the protocol log (W3C Extended Log File Format, as IIS
 * SMTP writes it; core/protolog.h) and the message tracking log (as
 * Exchange keeps one; core/tracklog.h). Each is a daily file (UTC) under
 * <DataDirectory>\Logs, started with its header, kept for LogRetentionDays.
 *
 * Writers (I/O workers, the committer, the queue's work threads) only append
 * lines to a buffer in memory under a short lock; the log's own thread
 * writes them to disk about once a second. Nothing here ever makes a caller
 * wait for the disk. A buffer that fills (the disk cannot keep up) drops
 * lines and counts them (event 1301); a file that cannot be written is
 * reported (event 1300) and its lines dropped until it can.
 *
 * Only the running service writes the logs: in any other process (imsvc
 * send) logs_start is never called and every call here is a no-op.
 */
#ifndef IMSVC_LOGS_H
#define IMSVC_LOGS_H

#include <winsock2.h>
#include <windows.h>
#include <stddef.h>
#include <stdio.h>   /* config.h needs FILE */

#include "config.h"

enum log_kind { LOG_PROTOCOL, LOG_TRACKING, LOG_KINDS };

/* File names: PREFIX + YYYYMMDD + ".log", in config_logs_dir's folder. */
#define LOGS_PROTOCOL_PREFIX L"SMTP"
#define LOGS_TRACKING_PREFIX L"MSGTRK"

/* Start the writer with the configuration's switches; Win32 error. */
DWORD logs_start(const struct imsvc_config *cfg);
/* ProtocolLog, TrackingLog, LogRetentionDays, HostName and the listener's
 * address, again (PARAMCHANGE). */
void logs_configure(const struct imsvc_config *cfg);
/* Write what waits, and stop the thread. */
void logs_stop(void);

int logs_enabled(enum log_kind k);
/* One or more whole lines, CRLF-terminated. Never waits for the disk. */
void logs_append(enum log_kind k, const char *lines, size_t len);

/* <DataDirectory>\Logs */
void logs_dir(const struct imsvc_config *cfg, wchar_t *out, size_t n);
/* The prefix of a kind's files. */
const wchar_t *logs_prefix(enum log_kind k);
/* The server's name, address and port for inbound protocol log lines. */
void logs_server(char *name, size_t name_len, char *ip, size_t ip_len, unsigned *port);

/* The protocol log of one SMTP session (service/logs/protocol.c) ---------- */

enum protolog_dir {
    PROTOLOG_COMMAND,    /* a command line (the client's) */
    PROTOLOG_REPLY,      /* a reply line (the server's) */
    PROTOLOG_SECRET,     /* an AUTH response line: its length only */
    PROTOLOG_CONTENT     /* message content: its length only */
};

struct protolog_session;

/* NULL when the protocol log is off (or out of memory): every call below
 * takes NULL and does nothing. peer: the client's address. */
struct protolog_session *protolog_inbound(const char *peer);
/* host and port: the server this service connects to. */
struct protolog_session *protolog_outbound(const char *host, const char *port);
/* The address actually connected to (outbound). */
void protolog_peer(struct protolog_session *ps, const struct sockaddr *sa, int len);
/* A line, without CRLF (NULL for SECRET and CONTENT); user: the
 * authenticated user for the line's record, or NULL. */
void protolog_line(struct protolog_session *ps, enum protolog_dir d, const char *line,
                   size_t len, const char *user);
void protolog_end(struct protolog_session *ps);

#endif
