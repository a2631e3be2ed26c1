/* penalty.c - the AUTH throttle and the event limiter (see penalty.h). */
#include "penalty.h"

#include <string.h>

/* The slot for key, or the free / least recently used one made ready for
 * it (*fresh set). */
static struct penalty_slot *slot_for(struct penalty_slot *slots, const void *key, size_t klen,
                                     int *fresh)
{
    struct penalty_slot *oldest = &slots[0];
    for (size_t i = 0; i < PENALTY_SLOTS; i++) {
        struct penalty_slot *s = &slots[i];
        if (s->klen == klen && memcmp(s->key, key, klen) == 0) {
            *fresh = 0;
            return s;
        }
        if (oldest->klen && (!s->klen || s->last < oldest->last))
            oldest = s;
    }
    memset(oldest, 0, sizeof *oldest);
    memcpy(oldest->key, key, klen);
    oldest->klen = klen;
    *fresh = 1;
    return oldest;
}

static size_t clamp_key(size_t klen)
{
    return klen > PENALTY_KEY_MAX ? PENALTY_KEY_MAX : klen;
}

void penalty_throttle_init(struct penalty_throttle *t, uint32_t step_ms, uint32_t max_ms,
                           uint64_t forget_ms)
{
    memset(t, 0, sizeof *t);
    t->step_ms = step_ms;
    t->max_ms = max_ms;
    t->forget_ms = forget_ms;
}

uint32_t penalty_fail(struct penalty_throttle *t, const void *key, size_t klen, uint64_t now)
{
    int fresh;
    struct penalty_slot *s = slot_for(t->slot, key, clamp_key(klen), &fresh);
    if (!fresh && now - s->last > t->forget_ms)
        s->count = 0;
    s->count++;
    s->last = now;
    uint64_t d = (uint64_t)t->step_ms * s->count;
    return d > t->max_ms ? t->max_ms : (uint32_t)d;
}

void penalty_success(struct penalty_throttle *t, const void *key, size_t klen)
{
    klen = clamp_key(klen);
    for (size_t i = 0; i < PENALTY_SLOTS; i++)
        if (t->slot[i].klen == klen && memcmp(t->slot[i].key, key, klen) == 0)
            memset(&t->slot[i], 0, sizeof t->slot[i]);
}

void penalty_limiter_init(struct penalty_limiter *l, uint64_t window_ms)
{
    memset(l, 0, sizeof *l);
    l->window_ms = window_ms;
}

int penalty_report(struct penalty_limiter *l, const void *key, size_t klen, uint64_t now,
                   unsigned long *suppressed)
{
    int fresh;
    struct penalty_slot *s = slot_for(l->slot, key, clamp_key(klen), &fresh);
    *suppressed = 0;
    if (!fresh && now - s->last < l->window_ms) {
        s->count++;
        return 0;
    }
    *suppressed = fresh ? 0 : s->count;
    s->count = 0;
    s->last = now;   /* the window runs from the last report */
    return 1;
}
