/* ioengine.c - every socket of the service on one I/O completion port
 * (see ioengine.h for the contract).
 *
 * Threads: IoThreads workers wait on the port and run handlers; one timer
 * thread looks at deadlines and stalled sends five times a second and posts
 * their events to the port; io_work items run on the Windows thread pool.
 * io_wake_here runs a wake-up's handler on the thread that calls it (the
 * group commit's, a work item's) when no worker is running that connection.
 * A connection's state is guarded by its own lock, held while its handler
 * runs, so a receive and a send completing together are handled one after
 * the other. A connection is freed when its owner has closed it and the
 * last operation or posted event referring to it has come back.
 *
 * It must never block a worker on anything but the port and a connection's
 * lock, and never decide what is said to a peer.
 */
#include "ioengine.h"

#include <mswsock.h>
#include <stdlib.h>
#include <string.h>

#define IO_ACCEPTS        32u          /* AcceptEx calls outstanding per listener */
#define IO_LISTENERS      8u
#define IO_INLINE         16u          /* sends and receives finished at once, per event */
#define IO_TICK_MS        200u         /* timer thread period */
#define IO_OUT_MAX        (4u * 1024u * 1024u)   /* output a connection may queue */
#define IO_ADDR_LEN       (sizeof(struct sockaddr_storage) + 16)
/* Overlapped, and never inherited by a child (the content filter). */
#define IO_SOCKET_FLAGS   (WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT)

enum { KEY_CONN = 1, KEY_LISTEN, KEY_POST, KEY_QUIT };
enum op_kind { OP_RECV, OP_SEND, OP_CONNECT };
#define KIND_POSTED 100   /* handle() kinds from here on are posted io_events */

struct io_op {
    OVERLAPPED ov;
    struct io_conn *c;
    enum op_kind kind;
};

struct io_conn {
    SOCKET s;
    SRWLOCK lock;
    volatile LONG refs;             /* owner + operations + posted events */
    io_handler fn;
    void *arg;
    struct io_op rop, sop, cop;
    unsigned char *in;              /* IO_IN_CAP: unconsumed bytes at [in_off, in_len) */
    size_t in_off, in_len;
    unsigned char *out;             /* queued output at [out_off, out_len) */
    size_t out_cap, out_off, out_len;
    unsigned char *retired;         /* the buffer a send in flight reads, after growth */
    DWORD send_len;                 /* the WSASend in flight */
    unsigned reading : 1, sending : 1, connecting : 1, paused : 1, eof : 1, failed : 1,
        closing : 1, graceful : 1, sock_closed : 1, owner_gone : 1, drained_wanted : 1,
        skip : 1;                   /* what finishes at once skips the port */
    volatile LONG timer_posted, stall_posted;
    volatile ULONGLONG deadline;    /* tick count; 0: none */
    volatile ULONGLONG send_since;  /* tick count of the last send progress */
    LPFN_CONNECTEX connect_ex;      /* io_connect: where to and how long */
    struct sockaddr_storage peer;
    int peer_len;
    DWORD connect_ms;
    DWORD connect_err;              /* ConnectEx failed at once */
    struct io_conn *prev, *next;    /* the engine's list, for the timer */
};

struct io_accept {
    OVERLAPPED ov;
    struct io_listener *l;
    SOCKET s;
    int armed;
    char addrs[2 * IO_ADDR_LEN];
};

struct io_listener {
    SOCKET s;
    int family;
    int closing;
    volatile LONG outstanding;
    io_accept_fn fn;
    void *arg;
    LPFN_ACCEPTEX accept_ex;
    LPFN_GETACCEPTEXSOCKADDRS addrs_ex;
    struct io_accept acc[IO_ACCEPTS];
};

static struct {
    HANDLE port;
    HANDLE *threads;
    unsigned n_threads;
    HANDLE timer;
    volatile LONG stop;
    SRWLOCK list_lock;
    struct io_conn *conns;
    volatile LONG n_conns, work_pending;
    volatile LONG send_timeout_ms;
    SRWLOCK listen_lock;
    struct io_listener *listeners[IO_LISTENERS];
    LPFN_CONNECTEX connect_ex[2];   /* AF_INET, AF_INET6 */
} eng = { .list_lock = SRWLOCK_INIT, .listen_lock = SRWLOCK_INIT };

/* References -------------------------------------------------------------- */

static void conn_ref(struct io_conn *c)
{
    InterlockedIncrement(&c->refs);
}

static void conn_release(struct io_conn *c)
{
    if (InterlockedDecrement(&c->refs) != 0)
        return;
    /* Nothing refers to it any more: the owner frees its state. */
    c->fn(c, c->arg, IO_EV_CLOSED, 0);
    free(c->in);
    free(c->out);
    free(c->retired);
    free(c);
    InterlockedDecrement(&eng.n_conns);
}

static void list_add(struct io_conn *c)
{
    AcquireSRWLockExclusive(&eng.list_lock);
    c->next = eng.conns;
    if (eng.conns)
        eng.conns->prev = c;
    eng.conns = c;
    ReleaseSRWLockExclusive(&eng.list_lock);
}

static void list_remove(struct io_conn *c)
{
    AcquireSRWLockExclusive(&eng.list_lock);
    if (c->prev)
        c->prev->next = c->next;
    else if (eng.conns == c)
        eng.conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    ReleaseSRWLockExclusive(&eng.list_lock);
}

static int post(struct io_conn *c, enum io_event ev)
{
    conn_ref(c);
    if (PostQueuedCompletionStatus(eng.port, (DWORD)ev, KEY_POST, (LPOVERLAPPED)c))
        return 0;
    InterlockedDecrement(&c->refs);   /* cannot be the last: the caller holds one */
    return -1;
}

/* Operations (conn lock held) ---------------------------------------------- */

/* Start a receive. Returns 1 when it finished at once (with skip on, no
 * completion follows: *got holds the count), else 0. */
static int post_recv(struct io_conn *c, DWORD *got)
{
    if (c->in_off > 0) {
        memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        c->in_off = 0;
    }
    if (c->in_len >= IO_IN_CAP)
        return 0;
    WSABUF b = { (ULONG)(IO_IN_CAP - c->in_len), (char *)c->in + c->in_len };
    DWORD flags = 0;
    memset(&c->rop.ov, 0, sizeof c->rop.ov);
    conn_ref(c);
    c->reading = 1;
    if (WSARecv(c->s, &b, 1, got, &flags, &c->rop.ov, NULL) == 0) {
        if (!c->skip)
            return 0;
        InterlockedDecrement(&c->refs);   /* cannot be the last: the caller holds one */
        return 1;
    }
    if (WSAGetLastError() != WSA_IO_PENDING) {
        c->reading = 0;
        c->failed = 1;
        InterlockedDecrement(&c->refs);
        post(c, IO_EV_ERROR);
    }
    return 0;
}

/* Start a send; returns as post_recv does. */
static int post_send(struct io_conn *c, DWORD *sent)
{
    size_t n = c->out_len - c->out_off;
    if (n > 256u * 1024u)
        n = 256u * 1024u;
    WSABUF b = { (ULONG)n, (char *)c->out + c->out_off };
    memset(&c->sop.ov, 0, sizeof c->sop.ov);
    conn_ref(c);
    c->sending = 1;
    c->send_len = (DWORD)n;
    c->send_since = GetTickCount64();
    if (WSASend(c->s, &b, 1, sent, 0, &c->sop.ov, NULL) == 0) {
        if (!c->skip)
            return 0;
        InterlockedDecrement(&c->refs);   /* cannot be the last: the caller holds one */
        return 1;
    }
    if (WSAGetLastError() != WSA_IO_PENDING) {
        c->sending = 0;
        c->failed = 1;
        InterlockedDecrement(&c->refs);
        post(c, IO_EV_ERROR);
    }
    return 0;
}

static void dispatch(struct io_conn *c, enum io_event ev, DWORD err)
{
    if (!c->closing)
        c->fn(c, c->arg, ev, err);
}

/* A receive or send has finished, through the port or at once: account for
 * it and tell the owner (conn lock held). */
static void op_done(struct io_conn *c, enum op_kind kind, DWORD bytes, DWORD err)
{
    if (kind == OP_RECV) {
        c->reading = 0;
        if (err) {
            if (!c->closing) {
                c->failed = 1;
                dispatch(c, IO_EV_ERROR, err);
            }
        } else if (bytes == 0) {
            c->eof = 1;
            dispatch(c, IO_EV_EOF, 0);
        } else {
            c->in_len += bytes;
            dispatch(c, IO_EV_INPUT, 0);
        }
        return;
    }
    c->sending = 0;
    free(c->retired);
    c->retired = NULL;
    if (err) {
        c->failed = 1;
        c->out_off = c->out_len = 0;
        dispatch(c, IO_EV_ERROR, err);
        return;
    }
    c->out_off += bytes;
    c->send_since = GetTickCount64();
    InterlockedExchange(&c->stall_posted, 0);
    if (c->out_off == c->out_len) {
        c->out_off = c->out_len = 0;
        if (c->drained_wanted) {
            c->drained_wanted = 0;
            dispatch(c, IO_EV_DRAINED, 0);
        }
    }
}

/* After every event: start what the connection's state asks for. A send or
 * receive that finishes at once is handled here, up to IO_INLINE of them;
 * then the connection goes back to the port's queue (IO_EV_RESUME) so that
 * a peer that always has data cannot keep a worker from the others. Returns
 * the number of references to drop once the lock is released. */
static int pump(struct io_conn *c)
{
    for (unsigned inline_ops = 0;; inline_ops++) {
        DWORD n = 0;
        if (inline_ops >= IO_INLINE && !c->closing && !c->failed &&
            post(c, IO_EV_RESUME) == 0)
            return 0;   /* (if it cannot be posted, the work goes on here) */
        if (c->closing || c->failed) {
            int pending_out = c->out_len > c->out_off;
            if (c->graceful && !c->failed && pending_out) {
                if (!c->sending && post_send(c, &n)) {
                    op_done(c, OP_SEND, n, 0);
                    continue;
                }
                return 0;
            }
            if (c->sending && c->graceful && !c->failed)
                return 0;
            if (!c->closing)
                return 0;   /* failed: the owner is told and closes */
            if (!c->sock_closed) {
                if (c->graceful && !c->failed)
                    shutdown(c->s, SD_SEND);
                else {
                    struct linger lg = { 1, 0 };   /* abortive: reset, no TIME_WAIT */
                    setsockopt(c->s, SOL_SOCKET, SO_LINGER, (const char *)&lg, sizeof lg);
                }
                /* A send the peer never takes would keep the socket alive past
                 * closesocket (measured under Wine): cancel what is pending
                 * (nothing, mostly: the request costs a server call). */
                if (c->reading || c->sending || c->connecting)
                    CancelIoEx((HANDLE)c->s, NULL);
                closesocket(c->s);
                c->sock_closed = 1;
                list_remove(c);      /* before the owner's reference goes */
            }
            if (!c->owner_gone) {
                c->owner_gone = 1;
                return 1;
            }
            return 0;
        }
        if (c->out_len > c->out_off && !c->sending && post_send(c, &n)) {
            op_done(c, OP_SEND, n, 0);
            continue;
        }
        if (!c->reading && !c->paused && !c->eof && !c->failed &&
            c->out_len - c->out_off < IO_OUT_HIGH && (c->in_len - c->in_off) < IO_IN_CAP &&
            post_recv(c, &n)) {
            op_done(c, OP_RECV, n, 0);
            continue;
        }
        return 0;
    }
}

/* Run one event for c under its lock (held on entry, released here), then
 * start I/O, then drop refs. */
static void handle_locked(struct io_conn *c, int kind, DWORD bytes, DWORD err)
{
    switch (kind) {
    case OP_RECV:
    case OP_SEND:
        op_done(c, (enum op_kind)kind, bytes, err);
        break;
    case OP_CONNECT:
        c->connecting = 0;
        if (!err && setsockopt(c->s, SOL_SOCKET, SO_UPDATE_CONNECT_CONTEXT, NULL, 0) != 0)
            err = (DWORD)WSAGetLastError();
        if (err)
            c->failed = 1;
        dispatch(c, IO_EV_CONNECTED, err);
        break;
    default: {
        enum io_event ev = (enum io_event)(kind - KIND_POSTED);
        if (ev == IO_EV_RESUME)
            break;   /* only to start I/O again: pump() below */
        if (ev == IO_EV_TIMER) {
            InterlockedExchange(&c->timer_posted, 0);
            ULONGLONG d = c->deadline;
            if (d == 0 || GetTickCount64() < d)
                break;   /* moved or cancelled since it was posted */
            c->deadline = 0;
        }
        if (ev == IO_EV_SEND_STALLED && !c->sending)
            break;
        if (ev == IO_EV_CONNECTED) {
            c->failed = 1;
            err = c->connect_err;
        }
        if (ev == IO_EV_SEND_STALLED && c->closing) {
            c->failed = 1;   /* a graceful close the peer never takes: drop it */
            break;
        }
        dispatch(c, ev, err);
        break;
    }
    }
    int drop = pump(c);
    ReleaseSRWLockExclusive(&c->lock);
    while (drop-- > 0)
        conn_release(c);
    conn_release(c);   /* the operation's or posted event's reference */
}

static void handle(struct io_conn *c, int kind, DWORD bytes, DWORD err)
{
    AcquireSRWLockExclusive(&c->lock);
    handle_locked(c, kind, bytes, err);
}

/* Listeners ----------------------------------------------------------------- */

static void accept_arm(struct io_accept *a)
{
    struct io_listener *l = a->l;
    if (l->closing || a->armed)
        return;
    a->s = WSASocketW(l->family, SOCK_STREAM, IPPROTO_TCP, NULL, 0, IO_SOCKET_FLAGS);
    if (a->s == INVALID_SOCKET)
        return;   /* the timer thread tries again */
    memset(&a->ov, 0, sizeof a->ov);
    DWORD got = 0;
    a->armed = 1;
    InterlockedIncrement(&l->outstanding);
    if (!l->accept_ex(l->s, a->s, a->addrs, 0, IO_ADDR_LEN, IO_ADDR_LEN, &got, &a->ov) &&
        WSAGetLastError() != ERROR_IO_PENDING) {
        closesocket(a->s);
        a->s = INVALID_SOCKET;
        a->armed = 0;
        InterlockedDecrement(&l->outstanding);
    }
}

static void accept_done(struct io_accept *a, DWORD err)
{
    struct io_listener *l = a->l;
    SOCKET s = a->s;
    a->s = INVALID_SOCKET;
    if (!err && !l->closing &&
        setsockopt(s, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, (const char *)&l->s, sizeof l->s) == 0) {
        struct sockaddr *local = NULL, *remote = NULL;
        int llen = 0, rlen = 0;
        l->addrs_ex(a->addrs, 0, IO_ADDR_LEN, IO_ADDR_LEN, &local, &llen, &remote, &rlen);
        struct sockaddr_storage peer;
        memset(&peer, 0, sizeof peer);
        if (remote && rlen > 0 && (size_t)rlen <= sizeof peer)
            memcpy(&peer, remote, (size_t)rlen);
        else {
            int plen = sizeof peer;
            getpeername(s, (struct sockaddr *)&peer, &plen);
        }
        l->fn(l->arg, s, &peer);
    } else {
        closesocket(s);
    }
    /* the timer thread arms idle slots too: re-arm under the same lock */
    AcquireSRWLockExclusive(&eng.listen_lock);
    a->armed = 0;
    accept_arm(a);
    ReleaseSRWLockExclusive(&eng.listen_lock);
    if (InterlockedDecrement(&l->outstanding) == 0 && l->closing)
        free(l);
}

DWORD io_listen(const char *addr, const char *port, io_accept_fn fn, void *arg, int *id)
{
    struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_PASSIVE,
                              .ai_socktype = SOCK_STREAM, .ai_protocol = IPPROTO_TCP };
    struct addrinfo *ai = NULL;
    if (getaddrinfo(addr, port, &hints, &ai) != 0 || !ai)
        return (DWORD)WSAGetLastError();
    struct io_listener *l = calloc(1, sizeof *l);
    if (!l) {
        freeaddrinfo(ai);
        return ERROR_NOT_ENOUGH_MEMORY;
    }
    l->fn = fn;
    l->arg = arg;
    l->family = ai->ai_family;
    l->s = WSASocketW(ai->ai_family, SOCK_STREAM, IPPROTO_TCP, NULL, 0, IO_SOCKET_FLAGS);
    DWORD rc = ERROR_SUCCESS;
    if (l->s == INVALID_SOCKET) {
        rc = (DWORD)WSAGetLastError();
        goto fail;
    }
    BOOL excl = TRUE;   /* no other process may bind the same port under us */
    setsockopt(l->s, SOL_SOCKET, SO_EXCLUSIVEADDRUSE, (const char *)&excl, sizeof excl);
    GUID g_accept = WSAID_ACCEPTEX, g_addrs = WSAID_GETACCEPTEXSOCKADDRS;
    DWORD got;
    if (bind(l->s, ai->ai_addr, (int)ai->ai_addrlen) != 0 || listen(l->s, SOMAXCONN) != 0 ||
        WSAIoctl(l->s, SIO_GET_EXTENSION_FUNCTION_POINTER, &g_accept, sizeof g_accept,
                 &l->accept_ex, sizeof l->accept_ex, &got, NULL, NULL) != 0 ||
        WSAIoctl(l->s, SIO_GET_EXTENSION_FUNCTION_POINTER, &g_addrs, sizeof g_addrs,
                 &l->addrs_ex, sizeof l->addrs_ex, &got, NULL, NULL) != 0) {
        rc = (DWORD)WSAGetLastError();
        goto fail;
    }
    if (!CreateIoCompletionPort((HANDLE)l->s, eng.port, KEY_LISTEN, 0)) {
        rc = GetLastError();
        goto fail;
    }
    freeaddrinfo(ai);
    ai = NULL;
    AcquireSRWLockExclusive(&eng.listen_lock);
    int slot = -1;
    for (unsigned i = 0; i < IO_LISTENERS; i++)
        if (!eng.listeners[i]) {
            slot = (int)i;
            break;
        }
    if (slot < 0) {
        ReleaseSRWLockExclusive(&eng.listen_lock);
        rc = ERROR_TOO_MANY_OPEN_FILES;
        goto fail;
    }
    eng.listeners[slot] = l;
    InterlockedIncrement(&l->outstanding);   /* the listener's own, until io_unlisten */
    for (unsigned i = 0; i < IO_ACCEPTS; i++) {
        l->acc[i].l = l;
        l->acc[i].s = INVALID_SOCKET;
        accept_arm(&l->acc[i]);
    }
    ReleaseSRWLockExclusive(&eng.listen_lock);
    *id = slot;
    return ERROR_SUCCESS;
fail:
    if (ai)
        freeaddrinfo(ai);
    if (l->s != INVALID_SOCKET)
        closesocket(l->s);
    free(l);
    return rc;
}

void io_unlisten(int id)
{
    if (id < 0 || id >= (int)IO_LISTENERS)
        return;
    AcquireSRWLockExclusive(&eng.listen_lock);
    struct io_listener *l = eng.listeners[id];
    eng.listeners[id] = NULL;
    if (l) {
        l->closing = 1;
        closesocket(l->s);   /* the pending AcceptEx calls come back aborted */
    }
    ReleaseSRWLockExclusive(&eng.listen_lock);
    if (l && InterlockedDecrement(&l->outstanding) == 0)
        free(l);
}

/* Connections ---------------------------------------------------------------- */

static struct io_conn *conn_new(SOCKET s, io_handler fn, void *arg)
{
    struct io_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->in = malloc(IO_IN_CAP);
    if (!c->in) {
        free(c);
        return NULL;
    }
    InitializeSRWLock(&c->lock);
    c->s = s;
    c->fn = fn;
    c->arg = arg;
    c->refs = 1;   /* the owner's, until io_close has closed the socket */
    c->rop.c = c->sop.c = c->cop.c = c;
    c->rop.kind = OP_RECV;
    c->sop.kind = OP_SEND;
    c->cop.kind = OP_CONNECT;
    if (!CreateIoCompletionPort((HANDLE)s, eng.port, KEY_CONN, 0)) {
        free(c->in);
        free(c);
        return NULL;
    }
    /* What finishes at once is handled at once (pump): under Wine each
     * completion through the port costs wineserver requests and a wake-up. */
    c->skip = SetFileCompletionNotificationModes((HANDLE)s, FILE_SKIP_COMPLETION_PORT_ON_SUCCESS |
                                                 FILE_SKIP_SET_EVENT_ON_HANDLE) != 0;
    InterlockedIncrement(&eng.n_conns);
    list_add(c);
    return c;
}

struct io_conn *io_attach(SOCKET s, io_handler fn, void *arg)
{
    struct io_conn *c = conn_new(s, fn, arg);
    if (!c) {
        closesocket(s);
        return NULL;
    }
    return c;
}

void io_start(struct io_conn *c)
{
    /* Called from the listener's accept callback, on a worker: the first
     * event runs here rather than through the port (under Wine a trip
     * through the port costs three wineserver requests and a wake-up). */
    conn_ref(c);
    handle(c, KIND_POSTED + (int)IO_EV_OPEN, 0, 0);
}

static LPFN_CONNECTEX connect_ex_for(SOCKET s, int family)
{
    int i = family == AF_INET6;
    if (!eng.connect_ex[i]) {
        GUID g = WSAID_CONNECTEX;
        DWORD got;
        LPFN_CONNECTEX f = NULL;
        if (WSAIoctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, &g, sizeof g, &f, sizeof f, &got,
                     NULL, NULL) == 0)
            eng.connect_ex[i] = f;
    }
    return eng.connect_ex[i];
}

struct io_conn *io_connect(const struct sockaddr *addr, int addrlen, DWORD timeout_ms,
                           io_handler fn, void *arg, DWORD *err)
{
    if (addrlen <= 0 || (size_t)addrlen > sizeof(struct sockaddr_storage)) {
        *err = (DWORD)WSAEINVAL;
        return NULL;
    }
    SOCKET s = WSASocketW(addr->sa_family, SOCK_STREAM, IPPROTO_TCP, NULL, 0, IO_SOCKET_FLAGS);
    if (s == INVALID_SOCKET) {
        *err = (DWORD)WSAGetLastError();
        return NULL;
    }
    struct sockaddr_storage any;
    memset(&any, 0, sizeof any);
    any.ss_family = addr->sa_family;
    LPFN_CONNECTEX connect_ex = connect_ex_for(s, addr->sa_family);
    if (!connect_ex || bind(s, (struct sockaddr *)&any, addrlen) != 0) {
        *err = connect_ex ? (DWORD)WSAGetLastError() : (DWORD)WSAEOPNOTSUPP;
        closesocket(s);
        return NULL;
    }
    struct io_conn *c = conn_new(s, fn, arg);
    if (!c) {
        *err = ERROR_NOT_ENOUGH_MEMORY;
        closesocket(s);
        return NULL;
    }
    c->connect_ex = connect_ex;
    memcpy(&c->peer, addr, (size_t)addrlen);
    c->peer_len = addrlen;
    c->connect_ms = timeout_ms;
    return c;
}

void io_connect_start(struct io_conn *c)
{
    AcquireSRWLockExclusive(&c->lock);
    if (c->connect_ms)
        c->deadline = GetTickCount64() + c->connect_ms;
    conn_ref(c);
    c->connecting = 1;
    DWORD sent;
    if (!c->connect_ex(c->s, (const struct sockaddr *)&c->peer, c->peer_len, NULL, 0, &sent,
                       &c->cop.ov) &&
        WSAGetLastError() != ERROR_IO_PENDING) {
        /* told through the same event as a connect that fails later */
        c->connect_err = (DWORD)WSAGetLastError();
        c->connecting = 0;
        InterlockedDecrement(&c->refs);
        post(c, IO_EV_CONNECTED);
    }
    ReleaseSRWLockExclusive(&c->lock);
}

const unsigned char *io_input(struct io_conn *c, size_t *len)
{
    *len = c->in_len - c->in_off;
    return c->in + c->in_off;
}

void io_consume(struct io_conn *c, size_t n)
{
    size_t have = c->in_len - c->in_off;
    c->in_off += n > have ? have : n;
    /* A receive in flight writes at in + in_len as it was posted: the
     * buffer may only be rewound while none is. */
    if (c->in_off == c->in_len && !c->reading)
        c->in_off = c->in_len = 0;
}

int io_write(struct io_conn *c, const void *p, size_t n)
{
    if (c->closing || c->failed)
        return -1;
    if (n == 0)
        return 0;
    if (c->out_off > 0 && !c->sending) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    if (c->out_len + n > c->out_cap) {
        size_t want = c->out_len + n;
        if (want > IO_OUT_MAX)
            return -1;
        size_t cap = c->out_cap ? c->out_cap : 1024;
        while (cap < want)
            cap *= 2;
        unsigned char *q = malloc(cap);
        if (!q)
            return -1;
        if (c->out_len)
            memcpy(q, c->out, c->out_len);
        /* A send in flight reads the old buffer until it completes: keep it
         * until then (only the first one can be in flight). */
        if (c->sending && !c->retired)
            c->retired = c->out;
        else
            free(c->out);
        c->out = q;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
    c->drained_wanted = 1;
    return 0;
}

size_t io_output_pending(const struct io_conn *c)
{
    return c->out_len - c->out_off;
}

void io_pause_input(struct io_conn *c, int paused)
{
    c->paused = paused != 0;
}

void io_set_deadline(struct io_conn *c, DWORD ms)
{
    c->deadline = ms ? GetTickCount64() + ms : 0;
}

void io_close(struct io_conn *c, int graceful)
{
    if (c->closing)
        return;
    c->closing = 1;
    c->graceful = graceful != 0;
    c->deadline = 0;
    /* pump(), run when the handler returns, sends what is left and closes */
}

void io_wake(struct io_conn *c)
{
    post(c, IO_EV_WAKE);
}

void io_ref(struct io_conn *c)
{
    conn_ref(c);
}

void io_unref(struct io_conn *c)
{
    conn_release(c);
}

void io_wake_ref(struct io_conn *c)
{
    if (!PostQueuedCompletionStatus(eng.port, IO_EV_WAKE, KEY_POST, (LPOVERLAPPED)c))
        conn_release(c);
}

void io_wake_here(struct io_conn *c)
{
    /* Busy (a worker runs an event for it, or this thread is inside its
     * handler): through the port, as io_wake_ref. */
    if (!TryAcquireSRWLockExclusive(&c->lock)) {
        io_wake_ref(c);
        return;
    }
    handle_locked(c, KIND_POSTED + (int)IO_EV_WAKE, 0, 0);
}

void io_notify_all(void)
{
    /* A connection in the list holds its owner's reference: safe to take one. */
    AcquireSRWLockShared(&eng.list_lock);
    for (struct io_conn *c = eng.conns; c; c = c->next)
        post(c, IO_EV_NOTIFY);
    ReleaseSRWLockShared(&eng.list_lock);
}

struct work_item {
    struct io_conn *c;
    void (*fn)(void *);
    void *ctx;
};

static void CALLBACK work_run(PTP_CALLBACK_INSTANCE inst, void *p)
{
    (void)inst;
    struct work_item *w = p;
    w->fn(w->ctx);
    struct io_conn *c = w->c;
    free(w);
    InterlockedDecrement(&eng.work_pending);
    /* the reference taken by io_work travels with the event */
    if (!PostQueuedCompletionStatus(eng.port, IO_EV_WAKE, KEY_POST, (LPOVERLAPPED)c))
        conn_release(c);
}

int io_work(struct io_conn *c, void (*fn)(void *ctx), void *ctx)
{
    struct work_item *w = malloc(sizeof *w);
    if (!w)
        return -1;
    w->c = c;
    w->fn = fn;
    w->ctx = ctx;
    conn_ref(c);
    InterlockedIncrement(&eng.work_pending);
    if (!TrySubmitThreadpoolCallback(work_run, w, NULL)) {
        InterlockedDecrement(&eng.work_pending);
        InterlockedDecrement(&c->refs);
        free(w);
        return -1;
    }
    return 0;
}

/* Threads -------------------------------------------------------------------- */

/* One completion from the port. Returns 1 when the worker is to end. */
static int completion(ULONG_PTR key, OVERLAPPED *ov, DWORD bytes)
{
    if (key == KEY_QUIT)
        return 1;
    if (key == KEY_POST) {
        handle((struct io_conn *)ov, KIND_POSTED + (int)bytes, 0, 0);
        return 0;
    }
    DWORD err = 0;
    if (ov->Internal != 0) {
        /* the NTSTATUS as a Winsock error */
        DWORD got, flags;
        SOCKET s = key == KEY_LISTEN ? ((struct io_accept *)ov)->l->s
                                     : ((struct io_op *)ov)->c->s;
        if (!WSAGetOverlappedResult(s, ov, &got, FALSE, &flags))
            err = (DWORD)WSAGetLastError();
        if (!err)
            err = ERROR_OPERATION_ABORTED;
    }
    if (key == KEY_LISTEN) {
        accept_done((struct io_accept *)ov, err);
        return 0;
    }
    struct io_op *op = (struct io_op *)ov;
    handle(op->c, op->kind, bytes, err);
    return 0;
}

/* One completion per call: under Wine, GetQueuedCompletionStatusEx asks the
 * server once more after the last completion it finds, to learn that there
 * is none, which a call for one does not. */
static DWORD WINAPI worker_main(void *arg)
{
    (void)arg;
    for (;;) {
        DWORD bytes = 0;
        ULONG_PTR key = 0;
        OVERLAPPED *ov = NULL;
        if (!GetQueuedCompletionStatus(eng.port, &bytes, &key, &ov, INFINITE) && !ov)
            continue;   /* no completion taken (a failed one comes with its OVERLAPPED) */
        if (completion(key, ov, bytes))
            return 0;
    }
}

static DWORD WINAPI timer_main(void *arg)
{
    (void)arg;
    while (!eng.stop) {
        Sleep(IO_TICK_MS);
        ULONGLONG now = GetTickCount64();
        ULONGLONG send_ms = (ULONGLONG)eng.send_timeout_ms;
        AcquireSRWLockShared(&eng.list_lock);
        for (struct io_conn *c = eng.conns; c; c = c->next) {
            ULONGLONG d = c->deadline;
            if (d && now >= d && InterlockedCompareExchange(&c->timer_posted, 1, 0) == 0)
                post(c, IO_EV_TIMER);
            if (send_ms && c->sending && now - c->send_since > send_ms &&
                InterlockedCompareExchange(&c->stall_posted, 1, 0) == 0)
                post(c, IO_EV_SEND_STALLED);
        }
        ReleaseSRWLockShared(&eng.list_lock);
        /* accept slots that could not be armed (no sockets left) */
        AcquireSRWLockExclusive(&eng.listen_lock);
        for (unsigned i = 0; i < IO_LISTENERS; i++) {
            struct io_listener *l = eng.listeners[i];
            for (unsigned k = 0; l && k < IO_ACCEPTS; k++)
                if (!l->acc[k].armed)
                    accept_arm(&l->acc[k]);
        }
        ReleaseSRWLockExclusive(&eng.listen_lock);
    }
    return 0;
}

DWORD io_engine_start(unsigned workers)
{
    if (workers == 0) {
        SYSTEM_INFO si;
        GetSystemInfo(&si);
        workers = 2 * (si.dwNumberOfProcessors ? si.dwNumberOfProcessors : 1);
    }
    if (workers > 64)
        workers = 64;
    WSADATA wsa;
    int wrc = WSAStartup(MAKEWORD(2, 2), &wsa);
    if (wrc != 0)
        return (DWORD)wrc;
    eng.port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, workers);
    if (!eng.port)
        return GetLastError();
    eng.stop = 0;
    eng.threads = calloc(workers, sizeof *eng.threads);
    if (!eng.threads) {
        CloseHandle(eng.port);
        return ERROR_NOT_ENOUGH_MEMORY;
    }
    for (unsigned i = 0; i < workers; i++) {
        eng.threads[i] = CreateThread(NULL, 256 * 1024, worker_main, NULL,
                                      STACK_SIZE_PARAM_IS_A_RESERVATION, NULL);
        if (!eng.threads[i]) {
            DWORD rc = GetLastError();
            eng.n_threads = i;
            io_engine_stop();
            return rc;
        }
    }
    eng.n_threads = workers;
    eng.timer = CreateThread(NULL, 64 * 1024, timer_main, NULL, STACK_SIZE_PARAM_IS_A_RESERVATION,
                             NULL);
    if (!eng.timer) {
        DWORD rc = GetLastError();
        io_engine_stop();
        return rc;
    }
    return ERROR_SUCCESS;
}

void io_engine_stop(void)
{
    for (unsigned i = 0; i < IO_LISTENERS; i++)
        io_unlisten((int)i);
    InterlockedExchange(&eng.stop, 1);
    if (eng.timer) {
        WaitForSingleObject(eng.timer, INFINITE);
        CloseHandle(eng.timer);
        eng.timer = NULL;
    }
    for (unsigned i = 0; i < eng.n_threads; i++)
        PostQueuedCompletionStatus(eng.port, 0, KEY_QUIT, NULL);
    for (unsigned i = 0; i < eng.n_threads; i++) {
        WaitForSingleObject(eng.threads[i], 5000);
        CloseHandle(eng.threads[i]);
    }
    free(eng.threads);
    eng.threads = NULL;
    eng.n_threads = 0;
    if (eng.port) {
        CloseHandle(eng.port);
        eng.port = NULL;
        WSACleanup();
    }
}

void io_engine_stats(struct io_stats *st)
{
    st->connections = eng.n_conns;
    st->workers = (LONG)eng.n_threads;
    st->work_pending = eng.work_pending;
}

void io_set_send_timeout(unsigned secs)
{
    InterlockedExchange(&eng.send_timeout_ms, (LONG)(secs > 2000000u ? 2000000000u : secs * 1000u));
}
