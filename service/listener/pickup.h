/* pickup.h - the pickup directory: .eml files dropped by applications are
 * queued, as IIS SMTP's Pickup folder does, on a thread of their own.
 *
 * <DataDirectory>\Pickup\*.eml. The envelope comes from "x-sender:" and
 * "x-receiver:" lines at the very top of the file (removed before queueing),
 * or else from the From:, To:, Cc: and Bcc: header fields (Bcc: is removed).
 * The envelope then goes through the address map as an SMTP session's
 * would (core/rewrite.h): an address the map refuses sends the file to
 * Badmail; while a configured map is not loaded the file waits.
 * An application should write the file elsewhere and move it in; a file
 * still open for writing is left for the next scan. A file that cannot be
 * queued goes to Badmail with a .txt that says why; nothing is lost.
 */
#ifndef IMSVC_PICKUP_H
#define IMSVC_PICKUP_H

#include "config.h"

#define PICKUP_INTERVAL_SECS 2

/* Take the directory and limits from cfg, create the directory and start
 * the pickup thread: every PICKUP_INTERVAL_SECS it queues the files waiting
 * (at most PICKUP_FILES_MAX a pass, the next pass at once when more wait)
 * through the receive module. Returns a Win32 error. */
DWORD pickup_start(const struct imsvc_config *cfg);
/* PARAMCHANGE: the next pass takes the new directory and limits. */
void pickup_reconfigure(const struct imsvc_config *cfg);
/* While paused no file is taken. */
void pickup_pause(int paused);
/* Stop the thread; a file in the content filter gets wait_ms to finish
 * (it stays in Pickup if it does not). */
void pickup_stop(DWORD wait_ms);

#endif
