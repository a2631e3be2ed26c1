/* rdns.c - the client's confirmed host name, looked up off the I/O
 * workers (see rdns.h). */
#include "rdns.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { RDNS_RUNNING, RDNS_ABANDONED, RDNS_DONE };

struct rdns {
    struct io_conn *io;
    struct sockaddr_storage peer;
    volatile LONG state;
    char name[NI_MAXHOST];
};

static int same_address(const struct sockaddr_storage *a, const struct sockaddr *b)
{
    if (a->ss_family != b->sa_family)
        return 0;
    if (a->ss_family == AF_INET)
        return memcmp(&((const struct sockaddr_in *)a)->sin_addr,
                      &((const struct sockaddr_in *)b)->sin_addr, sizeof(struct in_addr)) == 0;
    if (a->ss_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                      &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr)) == 0;
    return 0;
}

/* PTR, then forward: the name only if it leads back to the address. */
static void rdns_lookup(struct rdns *r)
{
    char host[NI_MAXHOST];
    int len = r->peer.ss_family == AF_INET6 ? (int)sizeof(struct sockaddr_in6)
                                            : (int)sizeof(struct sockaddr_in);
    if (getnameinfo((const struct sockaddr *)&r->peer, len, host, sizeof host, NULL, 0,
                    NI_NAMEREQD) != 0)
        return;
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = r->peer.ss_family;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, NULL, &hints, &res) != 0)
        return;
    for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (ai->ai_addr && same_address(&r->peer, ai->ai_addr)) {
            snprintf(r->name, sizeof r->name, "%s", host);
            break;
        }
    }
    freeaddrinfo(res);
}

static void CALLBACK rdns_run(PTP_CALLBACK_INSTANCE inst, void *p)
{
    (void)inst;
    struct rdns *r = p;
    rdns_lookup(r);
    if (InterlockedCompareExchange(&r->state, RDNS_DONE, RDNS_RUNNING) == RDNS_RUNNING) {
        io_wake_ref(r->io);   /* the session takes the answer and frees r */
        return;
    }
    io_unref(r->io);          /* abandoned: nobody waits for it */
    free(r);
}

struct rdns *rdns_start(struct io_conn *io, const struct sockaddr_storage *peer)
{
    if (peer->ss_family != AF_INET && peer->ss_family != AF_INET6)
        return NULL;
    struct rdns *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->io = io;
    r->peer = *peer;
    r->state = RDNS_RUNNING;
    io_ref(io);
    if (!TrySubmitThreadpoolCallback(rdns_run, r, NULL)) {
        io_unref(io);
        free(r);
        return NULL;
    }
    return r;
}

int rdns_abandon(struct rdns *r)
{
    return InterlockedCompareExchange(&r->state, RDNS_ABANDONED, RDNS_RUNNING) == RDNS_RUNNING;
}

void rdns_finish(struct rdns *r, char *name, size_t n)
{
    if (name && n)
        snprintf(name, n, "%s", r->name);
    free(r);
}
