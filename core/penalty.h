/* penalty.h - remembered failures per client, and what they cost.
 *
 * Two tables over the same kind of key (a client address, IPv6 cut to its
 * /64, plus whatever else the caller adds): the AUTH throttle, which makes
 * every failed authentication from a key wait longer for its answer, shared
 * by all sessions; and the event limiter, which lets one event per key and
 * window through and counts the rest, so one client cannot flood the event
 * log. Both are bounded (the least recently touched key gives way) and take
 * the caller's clock. Portable core: no locking (the caller locks), no I/O.
 */
#ifndef IMSVC_PENALTY_H
#define IMSVC_PENALTY_H

#include <stddef.h>
#include <stdint.h>

#define PENALTY_KEY_MAX 32u
#define PENALTY_SLOTS   256u

struct penalty_slot {
    unsigned char key[PENALTY_KEY_MAX];
    size_t klen;               /* 0: free */
    uint64_t last;             /* ms, the caller's clock */
    unsigned long count;
};

/* AUTH throttle: delay = step * failures (from the first), at most max;
 * failures older than forget are forgiven. */
struct penalty_throttle {
    uint32_t step_ms, max_ms;
    uint64_t forget_ms;
    struct penalty_slot slot[PENALTY_SLOTS];
};

void penalty_throttle_init(struct penalty_throttle *t, uint32_t step_ms, uint32_t max_ms,
                           uint64_t forget_ms);
/* A failure from key: how long to hold back its answer (ms). */
uint32_t penalty_fail(struct penalty_throttle *t, const void *key, size_t klen, uint64_t now);
/* A success from key forgets its failures. */
void penalty_success(struct penalty_throttle *t, const void *key, size_t klen);

/* Event limiter: the first event of a key is reported; more within window
 * of that report are suppressed and counted; the first one after the window
 * is reported again, with the count (*suppressed) of those it stood for. */
struct penalty_limiter {
    uint64_t window_ms;
    struct penalty_slot slot[PENALTY_SLOTS];
};

void penalty_limiter_init(struct penalty_limiter *l, uint64_t window_ms);
/* 1: report it (*suppressed: how many were held back before it), 0: suppress. */
int penalty_report(struct penalty_limiter *l, const void *key, size_t klen, uint64_t now,
                   unsigned long *suppressed);

#endif
