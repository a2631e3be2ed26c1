/* status.h - the running service's figures, for `imsvc status`.
 *
 * The service writes them every two seconds to Queue\status.txt (key value
 * lines, CRLF, replaced whole by a rename, so a reader never sees half), from
 * a thread-pool timer that asks each module for its counts: the queue
 * manager (messages waiting and in delivery), the spool (group commits),
 * delivery (outbound connections) and the listener (sessions, I/O threads,
 * refusals and closings). `imsvc status` reads the file and prints it.
 * This module only reads the other modules' counts; none of them calls it.
 */
#ifndef IMSVC_STATUS_H
#define IMSVC_STATUS_H

#include <windows.h>
#include <stddef.h>
#include <stdio.h>

#include "config.h"

/* Where the file is for cfg's data directory. */
void status_path(const struct imsvc_config *cfg, wchar_t *out, size_t cap);

/* Start writing (after the queue manager and the listener have started). */
DWORD status_start(const struct imsvc_config *cfg);
/* Stop writing (before they stop); waits for a write in progress. */
void status_stop(void);

/* Print the running service's figures from the file. */
void status_print(const struct imsvc_config *cfg);

#endif
