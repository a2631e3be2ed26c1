/* notice.c - what becomes of a notice the queue owes a sender (see notice.h).
 * Pure functions: the queue reports, this only decides and words it. */
#include "notice.h"

#include <stdio.h>

enum notice_fate notice_fate(enum dsn_result composed, unsigned long queue_err)
{
    switch (composed) {
    case DSN_OK:
        return queue_err ? NOTICE_NOT_QUEUED : NOTICE_QUEUED;
    case DSN_NULL_SENDER:
        return NOTICE_NULL_SENDER;
    case DSN_NOBODY:
        return NOTICE_NOT_WANTED;
    default:
        return NOTICE_NOT_QUEUED;   /* could not be composed: still owed, not <> */
    }
}

int notice_to_badmail(enum notice_fate f)
{
    return f == NOTICE_NULL_SENDER || f == NOTICE_NOT_QUEUED;
}

static const char *kind(enum dsn_action action)
{
    return action == DSN_DELAYED ? "delay notification" : "non-delivery report";
}

static int put(char *buf, size_t n, int w)
{
    if (w < 0 || (size_t)w >= n) {
        if (n)
            buf[0] = '\0';
        return -1;
    }
    return w;
}

int notice_badmail_note(enum notice_fate f, enum dsn_action action, unsigned long err,
                        char *buf, size_t n)
{
    if (!buf || n == 0)
        return -1;
    switch (f) {
    case NOTICE_NULL_SENDER:
        return put(buf, n, snprintf(buf, n, "No notification was sent: the message came from "
                                    "the null sender <>.\r\n"));
    case NOTICE_NOT_QUEUED:
        if (err)
            return put(buf, n, snprintf(buf, n, "No notification was sent: the %s to the "
                                        "sender could not be queued (error %lu).\r\n",
                                        kind(action), err));
        return put(buf, n, snprintf(buf, n, "No notification was sent: the %s to the sender "
                                    "could not be composed.\r\n", kind(action)));
    default:
        buf[0] = '\0';
        return 0;
    }
}

int notice_badmail_why(enum notice_fate f, enum dsn_action action, unsigned long err,
                       char *buf, size_t n)
{
    if (!buf || n == 0)
        return -1;
    switch (f) {
    case NOTICE_NULL_SENDER:
        return put(buf, n, snprintf(buf, n, "it came from the null sender <>, so it is itself "
                                    "a notification"));
    case NOTICE_NOT_QUEUED:
        if (err)
            return put(buf, n, snprintf(buf, n, "the %s to its sender could not be queued "
                                        "(error %lu)", kind(action), err));
        return put(buf, n, snprintf(buf, n, "the %s to its sender could not be composed",
                                    kind(action)));
    default:
        buf[0] = '\0';
        return 0;
    }
}
