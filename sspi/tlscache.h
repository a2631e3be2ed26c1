/* tlscache.h - outbound Schannel credentials kept per destination.
 *
 * Schannel resumes a TLS session only with the credential handle that made
 * it, so a client that acquires fresh credentials for every connection
 * never resumes. tls_cred_for_peer() hands out one shared, referenced
 * credential per destination name and policy; tls_cred_free() gives it back.
 * An entry nobody holds is freed once it has been unused for the idle time
 * (checked whenever the cache is used), when the cache is full and room is
 * needed (least recently used first), or at tls_cache_shutdown(). The cache
 * is bounded: when every entry is in use, the caller gets credentials of its
 * own, freed by tls_cred_free() as usual.
 *
 * Thread-safe. It never frees a credential that a caller still holds.
 */
#ifndef IMSVC_TLSCACHE_H
#define IMSVC_TLSCACHE_H

#include "tls.h"

#define TLS_CACHE_MAX_DEFAULT  64u              /* destinations kept */
#define TLS_CACHE_MAX_LIMIT    1024u
#define TLS_CACHE_IDLE_DEFAULT (10u * 60u * 1000u) /* ms unused before freed */
#define TLS_CACHE_NAME_MAX     256u             /* longer names are not cached */

/* Client credentials for peer (a host name, compared without case) under
 * policy (NULL: TLS_POLICY_DEFAULT), as tls_cred_client makes them; *out
 * holds a reference until tls_cred_free(out). */
SECURITY_STATUS tls_cred_for_peer(struct tls_cred *out, const wchar_t *peer,
                                  const struct tls_policy *policy);

/* Called by tls_cred_free() for credentials from tls_cred_for_peer. */
void tls_cache_release(struct tls_cred *c);

/* Bounds (0 keeps the current value for max_entries; idle_ms 0 frees an
 * entry as soon as nobody holds it). Entries above a lowered bound go at
 * the next use. */
void tls_cache_configure(size_t max_entries, DWORD idle_ms);

/* Free every entry nobody holds; held ones are freed at their last release. */
void tls_cache_shutdown(void);

struct tls_cache_stats {
    size_t entries;         /* destinations kept now */
    size_t held;            /* of which some caller holds */
    unsigned long hits;     /* tls_cred_for_peer served from the cache */
    unsigned long misses;   /* new credentials made for the cache */
    unsigned long uncached; /* the cache was full of held entries, or the name too long */
    unsigned long freed;    /* entries freed (idle, evicted, shutdown) */
};
void tls_cache_stats(struct tls_cache_stats *st);

#endif
