/* notice.h - what becomes of a notice the queue owes a sender, sans I/O.
 *
 * When recipients fail, the queue composes an NDR (core/dsn.h) and queues it
 * through the receive module. Four things can happen, and each needs its own
 * words: the notice was queued; none was wanted (NOTIFY= asked for none); the
 * message came from the null sender, so no notice may be sent about it
 * (RFC 5321 4.5.5) and it goes to Badmail; or a notice was due but could not
 * be composed or queued, and the message goes to Badmail saying exactly
 * that, never that it came from <>.
 *
 * Portable core: Win32 errors are plain numbers; no I/O, no reporting.
 */
#ifndef IMSVC_NOTICE_H
#define IMSVC_NOTICE_H

#include <stddef.h>

#include "dsn.h"

enum notice_fate {
    NOTICE_QUEUED,        /* the notice is in the queue */
    NOTICE_NOT_WANTED,    /* no recipient concerned asked for it */
    NOTICE_NULL_SENDER,   /* the message came from <>: no notice, ever */
    NOTICE_NOT_QUEUED     /* one was due and could not be composed or queued */
};

/* composed: what dsn_compose said; queue_err: the Win32 error queueing it
 * gave (0: queued; only looked at when composed is DSN_OK). */
enum notice_fate notice_fate(enum dsn_result composed, unsigned long queue_err);

/* Whether the message goes to Badmail because of this fate. */
int notice_to_badmail(enum notice_fate f);

/* The sentence a Badmail .txt gives after each failed recipient, ending in
 * CRLF; and the short why of the Badmail event (%2). action: the notice's
 * kind; err: the queueing error of NOTICE_NOT_QUEUED (0 when it could not
 * be composed). Each returns its length, or -1 if buf is too small (buf is
 * then ""). */
int notice_badmail_note(enum notice_fate f, enum dsn_action action, unsigned long err,
                        char *buf, size_t n);
int notice_badmail_why(enum notice_fate f, enum dsn_action action, unsigned long err,
                       char *buf, size_t n);

#endif
