/* storage.h - what a failure to store a message means, and a full disk
 * reported once.
 *
 * storage_reply maps the Win32 error a store failed with to the SMTP reply
 * the client gets: no room on the disk (ERROR_DISK_FULL, ERROR_HANDLE_DISK_FULL,
 * ERROR_DISK_QUOTA_EXCEEDED) is 452 4.3.1, RFC 5321's "insufficient system
 * storage" with RFC 3463's X.3.1 "mail system full"; anything else is
 * 451 4.3.0, a local error in processing. Both are transient: the client
 * keeps the message and tries again.
 *
 * A storage_watch turns the stream of failures and successes of every writer
 * to the data directory into two moments worth an event: the first failure
 * for lack of room (the condition begins), and the first store that succeeds
 * once no such failure has been seen for STORAGE_CLEAR_SECS (it ends). The
 * wait keeps a disk at the edge, where one message fits and the next does
 * not, from reporting the condition over and over.
 *
 * Portable: the Win32 error numbers are plain numbers here, times come from
 * the caller, and the owner serialises calls on one watch. This module never
 * reports anything itself.
 */
#ifndef IMSVC_STORAGE_H
#define IMSVC_STORAGE_H

#include <stdint.h>

#define STORAGE_ERROR_HANDLE_DISK_FULL     39u   /* Win32 ERROR_HANDLE_DISK_FULL */
#define STORAGE_ERROR_DISK_FULL            112u  /* Win32 ERROR_DISK_FULL */
#define STORAGE_ERROR_DISK_QUOTA_EXCEEDED  1295u /* Win32 ERROR_DISK_QUOTA_EXCEEDED */
#define STORAGE_CLEAR_SECS 10u  /* quiet after the last failure before "space is back" */

struct storage_reply {
    int code;            /* 452 or 451 */
    const char *status;  /* "4.3.1" or "4.3.0" */
    const char *text;    /* the reply's text, without code and status */
    int full;            /* the error means no room: reported once, not per message */
};

/* Nonzero when err (a Win32 error) means the disk or quota has no room. */
int storage_is_full(unsigned long err);
void storage_reply(unsigned long err, struct storage_reply *out);

struct storage_watch {
    int full;                /* the condition is on */
    unsigned long error;     /* the error it began with */
    int64_t since;           /* when it began (the caller's seconds) */
    int64_t last_failure;    /* the latest failure for lack of room */
    unsigned long messages;  /* messages that could not be stored while it lasted */
    unsigned long failures;  /* failed writes of any kind while it lasted */
};

enum storage_event {
    STORAGE_NONE,   /* nothing to report */
    STORAGE_BEGAN,  /* report that the disk is full (once) */
    STORAGE_ENDED   /* report that space is back, with the counts */
};

/* A write failed with err at now; message: it was a message being stored
 * (counted in messages), not upkeep. Errors other than a full disk change
 * nothing and return STORAGE_NONE: the caller reports those itself. */
enum storage_event storage_failed(struct storage_watch *w, unsigned long err, int message,
                                  int64_t now);
/* A message was stored at now. */
enum storage_event storage_stored(struct storage_watch *w, int64_t now);

#endif
