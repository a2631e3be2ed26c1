/* retry.h - when to try a deferred recipient again, when to tell the sender
 * it is late, when to give up; and which failures are worth a retry at all.
 *
 * Defaults are IIS SMTP's: retries 15, 30 and 60 minutes after the first
 * three failures, then every 240 minutes; a delay notice after 12 hours; the
 * message expires 2 days after it arrived. The rule this module enforces:
 * only a transient failure (4xx, a lost connection, a failed TLS handshake)
 * is retried; a permanent one (5xx, or anything a retry cannot fix) bounces
 * at once with its own reason. Portable core: no clock, no windows.h; times
 * are seconds since 1970, passed in.
 */
#ifndef IMSVC_RETRY_H
#define IMSVC_RETRY_H

#include <stddef.h>
#include <stdint.h>

#include "envelope.h"
#include "smtpc.h"

#define RETRY_STEPS_MAX 8

struct retry_policy {
    uint32_t first[RETRY_STEPS_MAX]; /* wait after failure 1, 2, ..., seconds */
    size_t n_first;                  /* how many of first[] are used */
    uint32_t every;                  /* wait after each later failure; >= 1 */
    uint32_t delay_notice;           /* send a delay DSN this long after arrival; 0: never */
    uint32_t expire;                 /* give up this long after arrival; >= 1 */
};

enum retry_class {
    RETRY_DELIVERED,   /* accepted: nothing to retry */
    RETRY_TRANSIENT,   /* try again later */
    RETRY_PERMANENT    /* bounce now */
};

/* Fill in IIS SMTP's defaults. */
void retry_defaults(struct retry_policy *p);

/* Is the policy usable (n_first within bounds, every and expire non-zero)? */
int retry_policy_valid(const struct retry_policy *p);

/* When to try again after the failures-th consecutive failure (1 = the first)
 * which happened at now. failures 0 gives now. */
int64_t retry_next(const struct retry_policy *p, unsigned failures, int64_t now);

/* Should the delay notice go out now? Once only: already says it went. */
int retry_delay_due(const struct retry_policy *p, int64_t arrived, int64_t now, int already);

/* Has a message that arrived at arrived run out of time at now? */
int retry_expired(const struct retry_policy *p, int64_t arrived, int64_t now);

/* Class of a reply code alone: 2xx delivered, 5xx permanent, 4xx and
 * anything else (a code that makes no sense may not recur) transient. */
enum retry_class retry_classify_reply(int code);

/* Class of a delivery result from the SMTP client engine. */
enum retry_class retry_classify(const struct smtpc_result *res);

/* Record one delivery attempt of recipient r that ended with res at now, in
 * a message that arrived at arrived, reported by host remote (may be NULL):
 * sets its state, attempts, next attempt, first failure, status, reply and
 * sentence. A transient failure past expiry becomes a failure; the next
 * attempt is never set later than the expiry time, so expiry is noticed on
 * time. Returns the class the recipient ended up in. */
enum retry_class retry_record(const struct retry_policy *p, struct env_rcpt *r,
                              const struct smtpc_result *res, const char *remote,
                              int64_t arrived, int64_t now);

#endif
