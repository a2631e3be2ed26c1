/* pickup.h - the pickup directory: .eml files dropped by applications are
 * queued, as IIS SMTP's Pickup folder does.
 *
 * <DataDirectory>\Pickup\*.eml. The envelope comes from "x-sender:" and
 * "x-receiver:" lines at the very top of the file (removed before queueing),
 * or else from the From:, To:, Cc: and Bcc: header fields (Bcc: is removed).
 * An application should write the file elsewhere and move it in; a file
 * still open for writing is left for the next scan. A file that cannot be
 * queued goes to Badmail with a .txt that says why; nothing is lost.
 */
#ifndef IMSVC_PICKUP_H
#define IMSVC_PICKUP_H

#include "config.h"

#define PICKUP_INTERVAL_SECS 2

/* Take the directory and limits from cfg and create the directory. */
void pickup_init(const struct imsvc_config *cfg);
/* Queue every file waiting now. Called by the queue's scheduler. */
void pickup_scan(void);

#endif
