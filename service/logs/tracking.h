/* tracking.h - the message tracking log's events (docs/logs.md), from the
 * modules that see them: the receive module (RECEIVE, FILTER), the queue
 * manager (DEFER, DELIVER, FAIL) and the notices (DSN, BADMAIL).
 *
 * Each call formats one line per recipient (core/tracklog.h) and hands it
 * to logs_append: it never waits for the disk, and does nothing when the
 * tracking log is off.
 */
#ifndef IMSVC_TRACKING_H
#define IMSVC_TRACKING_H

#include "envelope.h"
#include "receipt.h"

/* A message was taken into the queue (or held): its Message-ID, where it
 * came from, and the answer its source got. */
void tracking_receive(const struct envelope *env, const char *message_id,
                      enum receipt_source src, enum receipt_outcome o);
/* The content filter did not accept it: what (refused, held, failed) and why. */
void tracking_filter(const struct envelope *env, const char *id, const char *message_id,
                     const char *what, const char *reason);
/* A recipient's attempt ended (class: enum retry_class). */
void tracking_rcpt(const char *id, const struct envelope *env, const struct env_rcpt *r,
                   int cls);
/* A DSN about recipients of id was queued as new_id (failure: an NDR, else
 * a delay notice). */
void tracking_dsn(const char *id, const struct envelope *env, const char *new_id, int failure);
/* The message went to Badmail. */
void tracking_badmail(const char *id, const struct envelope *env, const char *why);

#endif
