/* notices.h - what the queue owes a sender: non-delivery reports, delay
 * notifications, and Badmail for a message nobody can be told about.
 *
 * The queue manager (queue.h) calls these when a message's round ends with
 * recipients failed, or when deferred recipients are late. A notice is
 * composed by core/dsn.h and enters the queue through the receive module
 * (receive.h), like every other message; what becomes of it, and the words
 * for it, are core/notice.h's. This module writes the Badmail folder and
 * reports the events (1110, 1111, 2110 Badmail, 4100 when a notice cannot
 * be queued); it never changes a queued message's files.
 */
#ifndef IMSVC_NOTICES_H
#define IMSVC_NOTICES_H

#include <windows.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "envelope.h"
#include "notice.h"

struct notices_config {
    char helo[256];              /* the reporting host */
    uint32_t expire;             /* seconds after arrival: a delay notice's Will-Retry-Until */
    int full_content;            /* NdrContent full: the whole message goes back, not its headers */
    wchar_t badmail_dir[MAX_PATH];
};

void notices_config_make(const struct imsvc_config *cfg, uint32_t expire,
                         struct notices_config *nc);

/* The message a notice is about. */
struct notices_msg {
    const char *id;
    struct envelope *env;        /* recipients' notified bits are set here */
    const unsigned char *content;
    size_t len;
};

/* A delay notification about recipients which[0..n) (deferred, late): sets
 * their ENV_NOTIFIED_DELAY. Returns its fate; a notice that cannot be
 * queued is reported (4100), not retried. */
enum notice_fate notices_delay(const struct notices_config *nc, struct notices_msg *m,
                               const size_t *which, size_t n);

/* The failed recipients not told yet: one NDR for them all, or the message
 * to Badmail when no NDR can go out (the null sender, or one that cannot be
 * composed or queued, in its own words); sets their ENV_NOTIFIED_FAILURE. */
void notices_failures(const struct notices_config *nc, struct notices_msg *m);

#endif
