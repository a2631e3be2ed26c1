/* retry.c - the retry schedule and the transient/permanent split.
 *
 * The split is the heart of it: a failure that cannot succeed later must not
 * sit in the queue for two days and then bounce with "expired"; the sender
 * is told at once, with the reason the next hop or the engine gave.
 */
#include "retry.h"

#include <stdio.h>
#include <string.h>

#define MINUTE 60u
#define HOUR   (60u * MINUTE)

void retry_defaults(struct retry_policy *p)
{
    memset(p, 0, sizeof *p);
    p->first[0] = 15 * MINUTE;
    p->first[1] = 30 * MINUTE;
    p->first[2] = 60 * MINUTE;
    p->n_first = 3;
    p->every = 240 * MINUTE;
    p->delay_notice = 12 * HOUR;
    p->expire = 48 * HOUR;
}

int retry_policy_valid(const struct retry_policy *p)
{
    return p->n_first <= RETRY_STEPS_MAX && p->every > 0 && p->expire > 0;
}

int64_t retry_next(const struct retry_policy *p, unsigned failures, int64_t now)
{
    if (failures == 0)
        return now;
    if (failures <= p->n_first)
        return now + p->first[failures - 1];
    return now + p->every;
}

int retry_expired(const struct retry_policy *p, int64_t arrived, int64_t now)
{
    return now - arrived >= (int64_t)p->expire;
}

int retry_delay_due(const struct retry_policy *p, int64_t arrived, int64_t now, int already)
{
    if (already || p->delay_notice == 0 || retry_expired(p, arrived, now))
        return 0;
    return now - arrived >= (int64_t)p->delay_notice;
}

enum retry_class retry_classify_reply(int code)
{
    if (code >= 200 && code <= 299)
        return RETRY_DELIVERED;
    if (code >= 500 && code <= 599)
        return RETRY_PERMANENT;
    return RETRY_TRANSIENT;
}

/* Reasons whose class does not depend on what the engine decided: either a
 * retry may find things changed (the network, the peer's TLS stack), or it
 * never can (the address, the size, 8-bit content the peer cannot take). */
static const struct {
    enum smtpc_reason reason;
    enum retry_class cls;
} fixed_class[] = {
    { SMTPC_R_CONNECTION_LOST, RETRY_TRANSIENT },
    { SMTPC_R_TIMEOUT, RETRY_TRANSIENT },
    { SMTPC_R_TLS_FAILED, RETRY_TRANSIENT },
    { SMTPC_R_AUTH_LOCAL, RETRY_TRANSIENT },
    { SMTPC_R_8BIT_UNSUPPORTED, RETRY_PERMANENT },
    { SMTPC_R_SIZE, RETRY_PERMANENT },
    { SMTPC_R_BAD_ADDRESS, RETRY_PERMANENT },
};

enum retry_class retry_classify(const struct smtpc_result *res)
{
    if (res->outcome == SMTPC_OK)
        return RETRY_DELIVERED;
    for (size_t i = 0; i < sizeof fixed_class / sizeof fixed_class[0]; i++)
        if (fixed_class[i].reason == res->reason)
            return fixed_class[i].cls;
    if (res->reason == SMTPC_R_REPLY && res->reply.code != 0)
        return retry_classify_reply(res->reply.code);
    if (res->outcome == SMTPC_PERMANENT)
        return RETRY_PERMANENT;
    /* SMTPC_TRANSIENT, and SMTPC_PENDING: undecided means nothing was lost */
    return RETRY_TRANSIENT;
}

/* Bounded copy; a longer text is cut (these are diagnostics, kept as far as they fit). */
static void copy_text(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strnlen(src, cap - 1) : 0;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

enum retry_class retry_record(const struct retry_policy *p, struct env_rcpt *r,
                              const struct smtpc_result *res, const char *remote,
                              int64_t arrived, int64_t now)
{
    enum retry_class cls = retry_classify(res);
    int64_t deadline = arrived + (int64_t)p->expire;

    if (r->attempts < UINT32_MAX)
        r->attempts++;
    copy_text(r->remote, sizeof r->remote, remote);
    copy_text(r->reply, sizeof r->reply, res->reply.code ? res->reply.text : "");
    copy_text(r->why, sizeof r->why, res->why);
    copy_text(r->status, sizeof r->status, res->status);

    if (cls == RETRY_DELIVERED) {
        r->state = ENV_DELIVERED;
        r->next_attempt = 0;
        return cls;
    }
    if (r->first_failure == 0)
        r->first_failure = now;
    if (cls == RETRY_PERMANENT) {
        if (r->status[0] != '5')
            copy_text(r->status, sizeof r->status, "5.0.0");
        r->state = ENV_FAILED;
        r->next_attempt = 0;
        return cls;
    }
    if (r->status[0] != '4')
        copy_text(r->status, sizeof r->status, "4.0.0");
    if (retry_expired(p, arrived, now)) {
        /* keep the last reason: "expired" alone never tells the sender why */
        char last[ENV_WHY_MAX - 200];   /* leaves room for the words around it */
        copy_text(last, sizeof last, r->why[0] ? r->why : "no reason was given");
        snprintf(r->why, sizeof r->why, "Delivery was given up after %u attempts over %lld hours; "
                 "the last attempt failed: %s", r->attempts, (long long)((now - arrived) / HOUR), last);
        r->state = ENV_FAILED;
        r->next_attempt = 0;
        return RETRY_PERMANENT;
    }
    r->state = ENV_DEFERRED;
    r->next_attempt = retry_next(p, r->attempts, now);
    if (r->next_attempt > deadline)
        r->next_attempt = deadline;
    return cls;
}
