/* tlscache.c - outbound Schannel credentials kept per destination (see
 * tlscache.h).
 *
 * A small table of entries under one lock: a name, a policy, the
 * credentials and a reference count. It must never free credentials a
 * caller holds (a stream copies the handle and uses it until tls_free), and
 * never grow past its bound.
 */
#include "tlscache.h"

#include <stdlib.h>
#include <string.h>
#include <wchar.h>

struct tls_cache_entry {
    wchar_t peer[TLS_CACHE_NAME_MAX];   /* lower case */
    struct tls_policy policy;
    struct tls_cred cred;               /* entry == NULL inside the cache */
    unsigned refs;
    ULONGLONG last_used;                /* GetTickCount64 at the last release */
    int listed;                         /* in the table; 0: freed at the last release */
};

static SRWLOCK lock = SRWLOCK_INIT;
static struct tls_cache_entry *table[TLS_CACHE_MAX_LIMIT];
static size_t count;
static size_t max_entries = TLS_CACHE_MAX_DEFAULT;
static DWORD idle_ms = TLS_CACHE_IDLE_DEFAULT;
static unsigned long hits, misses, uncached, freed;

static void entry_free(struct tls_cache_entry *e)
{
    tls_cred_free(&e->cred);
    free(e);
    freed++;
}

/* Take table[i] out; free it now if nobody holds it. Lock held. */
static void unlist(size_t i)
{
    struct tls_cache_entry *e = table[i];
    table[i] = table[--count];
    table[count] = NULL;
    e->listed = 0;
    if (!e->refs)
        entry_free(e);
}

/* Free idle entries, and unheld ones above the bound. Lock held. */
static void sweep(ULONGLONG now)
{
    for (size_t i = 0; i < count;) {
        struct tls_cache_entry *e = table[i];
        if (!e->refs && now - e->last_used >= idle_ms)
            unlist(i);
        else
            i++;
    }
    while (count > max_entries) {
        size_t lru = count;
        for (size_t i = 0; i < count; i++)
            if (!table[i]->refs && (lru == count || table[i]->last_used < table[lru]->last_used))
                lru = i;
        if (lru == count)
            break; /* all held: they go at their release */
        unlist(lru);
    }
}

static int same_policy(const struct tls_policy *a, const struct tls_policy *b)
{
    return a->min_version == b->min_version && a->min_cipher_bits == b->min_cipher_bits &&
           !a->aead_only == !b->aead_only;
}

SECURITY_STATUS tls_cred_for_peer(struct tls_cred *out, const wchar_t *peer,
                                  const struct tls_policy *policy)
{
    static const struct tls_policy def = TLS_POLICY_DEFAULT;
    const struct tls_policy *p = policy ? policy : &def;
    wchar_t name[TLS_CACHE_NAME_MAX];
    size_t n = peer ? wcslen(peer) : 0;

    memset(out, 0, sizeof *out);
    if (n >= TLS_CACHE_NAME_MAX) {
        AcquireSRWLockExclusive(&lock);
        uncached++;
        ReleaseSRWLockExclusive(&lock);
        return tls_cred_client(out, p);
    }
    for (size_t i = 0; i < n; i++)
        name[i] = peer[i] >= L'A' && peer[i] <= L'Z' ? (wchar_t)(peer[i] - L'A' + L'a') : peer[i];
    name[n] = 0;

    AcquireSRWLockExclusive(&lock);
    ULONGLONG now = GetTickCount64();
    sweep(now);
    struct tls_cache_entry *e = NULL;
    for (size_t i = 0; i < count && !e; i++)
        if (wcscmp(table[i]->peer, name) == 0 && same_policy(&table[i]->policy, p))
            e = table[i];
    if (e) {
        e->refs++;
        hits++;
        *out = e->cred;
        out->entry = e;
        ReleaseSRWLockExclusive(&lock);
        return SEC_E_OK;
    }
    if (count >= max_entries) {
        sweep(now); /* idle ones are gone already; make room from the unheld */
        size_t lru = count;
        for (size_t i = 0; i < count; i++)
            if (!table[i]->refs && (lru == count || table[i]->last_used < table[lru]->last_used))
                lru = i;
        if (lru < count)
            unlist(lru);
    }
    int room = count < max_entries;
    if (!room)
        uncached++;
    ReleaseSRWLockExclusive(&lock);
    if (!room)
        return tls_cred_client(out, p);

    /* Acquired outside the lock: Schannel may take its time. Two threads
     * may make the same entry at once; both are kept until idle. */
    e = calloc(1, sizeof *e);
    if (!e)
        return SEC_E_INSUFFICIENT_MEMORY;
    SECURITY_STATUS st = tls_cred_client(&e->cred, p);
    if (st != SEC_E_OK) {
        free(e);
        return st;
    }
    wcscpy(e->peer, name);
    e->policy = *p;
    e->refs = 1;
    AcquireSRWLockExclusive(&lock);
    misses++;
    if (count < max_entries) {
        e->listed = 1;
        table[count++] = e;
    } else {
        uncached++; /* filled meanwhile: this one lives until released */
    }
    *out = e->cred;
    out->entry = e;
    ReleaseSRWLockExclusive(&lock);
    return SEC_E_OK;
}

void tls_cache_release(struct tls_cred *c)
{
    struct tls_cache_entry *e = c->entry;
    if (!e)
        return;
    AcquireSRWLockExclusive(&lock);
    ULONGLONG now = GetTickCount64();
    if (e->refs)
        e->refs--;
    e->last_used = now;
    if (!e->refs && !e->listed)
        entry_free(e);
    else
        sweep(now);
    ReleaseSRWLockExclusive(&lock);
}

void tls_cache_configure(size_t max, DWORD idle)
{
    AcquireSRWLockExclusive(&lock);
    if (max)
        max_entries = max < TLS_CACHE_MAX_LIMIT ? max : TLS_CACHE_MAX_LIMIT;
    idle_ms = idle;
    ReleaseSRWLockExclusive(&lock);
}

void tls_cache_shutdown(void)
{
    AcquireSRWLockExclusive(&lock);
    while (count)
        unlist(count - 1);
    ReleaseSRWLockExclusive(&lock);
}

void tls_cache_stats(struct tls_cache_stats *st)
{
    AcquireSRWLockExclusive(&lock);
    memset(st, 0, sizeof *st);
    st->entries = count;
    for (size_t i = 0; i < count; i++)
        if (table[i]->refs)
            st->held++;
    st->hits = hits;
    st->misses = misses;
    st->uncached = uncached;
    st->freed = freed;
    ReleaseSRWLockExclusive(&lock);
}
