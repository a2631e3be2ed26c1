/* filter.h - the content filter hook: an external program that may accept,
 * reject or hold a message before it is queued.
 *
 * ContentFilter is a command line; the message's content path and envelope
 * path (core/envelope.h format) are appended as two quoted arguments. The
 * exit status decides: 0 accept, 1 reject (the first line the program
 * prints is the reason given to the client with 554 5.7.1), 2 hold (queued
 * into the Hold folder until an administrator releases it). Anything else,
 * or no answer within FILTER_TIMEOUT_MS, is a failure of the filter: the
 * client is told to try again later (451 4.3.0) and an event names it.
 * The filter only reads: it is never asked for content back, so it cannot
 * change a message, let alone break a signature.
 */
#ifndef IMSVC_FILTER_H
#define IMSVC_FILTER_H

#include <windows.h>

#define FILTER_TIMEOUT_MS 60000u
#define FILTER_REASON_MAX 400u

enum filter_verdict { FILTER_ACCEPT, FILTER_REJECT, FILTER_HOLD, FILTER_ERROR };

/* Run the filter. reason (UTF-8, NUL-terminated) gets the reject or hold
 * reason, or for FILTER_ERROR what went wrong; *err the Win32 error, if any. */
enum filter_verdict filter_run(const wchar_t *command, const wchar_t *content_path,
                               const wchar_t *env_path, char *reason, size_t reason_len,
                               DWORD *err);

struct spool_msg;
struct envelope;
/* Run the filter on a message being received (its content in tmp\ and the
 * envelope written beside it). command empty: FILTER_ACCEPT. */
enum filter_verdict filter_message(const wchar_t *command, struct spool_msg *m,
                                   const struct envelope *env, char *reason, size_t reason_len,
                                   DWORD *err);

#endif
