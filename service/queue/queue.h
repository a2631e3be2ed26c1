/* queue.h - delivery: from the spool to the drop directory, a smart host or
 * the recipients' MX hosts, with retries, delay notices, expiry and NDRs.
 *
 * A scheduler thread looks at each queued message when it is due, splits
 * its due recipients by route (core/route.h) and puts one job per
 * destination on that destination's list. Deliveries take the jobs
 * (MaxOutbound in all, at most MaxPerDestination on one destination); a
 * delivery has no thread: its steps run on the Windows thread pool between
 * the callbacks of its outbound connection (outbound.h), and it keeps the
 * connection while the destination has more jobs (connection reuse). The
 * results go into the envelope per recipient through core/retry.h; failed
 * recipients get an NDR (core/dsn.h) at once, a null-sender message that
 * fails goes to Badmail, as does one whose NDR cannot be queued (its .txt
 * says which, core/notice.h). The content is sent as it is on disk: only a
 * next hop without 8BITMIME gets 8-bit parts re-encoded (core/convert.h),
 * and never a signed part: that message bounces with 5.6.3 instead.
 */
#ifndef IMSVC_QUEUE_H
#define IMSVC_QUEUE_H

#include <windows.h>

#include "config.h"
#include "envelope.h"

/* With the spool open (spool.h; recovered: what its recovery restored, for
 * the start event), load every queued message and start delivering.
 * Returns a Win32 error. The spool stays open after queue_stop: its owner
 * closes it. */
DWORD queue_start(const struct imsvc_config *cfg, unsigned recovered);
/* Stop the scheduler; deliveries in progress get wait_ms to finish. */
void queue_stop(DWORD wait_ms);
/* PARAMCHANGE: routing, retry, smart host and filter settings apply to the
 * next delivery round. DataDirectory and MaxOutbound apply at the next start. */
void queue_reconfigure(const struct imsvc_config *cfg);
/* While paused nothing is delivered; messages are still accepted. */
void queue_pause(int paused);

/* The status file the service rewrites every few seconds, for `imsvc status`:
 * <DataDirectory>\Queue\status.txt. */
/* The queue manager's counts, for the status file. */
struct queue_counts {
    size_t messages;          /* queued (not held) */
    unsigned in_delivery, waiting;
    long long oldest_arrived; /* 0: none */
    int paused;
};
void queue_counts(struct queue_counts *c);

#endif
