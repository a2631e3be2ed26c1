/* delivery.c - carrying jobs to their destinations (see delivery.h).
 *
 * Locks: dl.lock guards the destinations, their job lists and parked
 * deliveries, and the counts; no disk or network I/O happens under it, and
 * no job's done callback runs under it. A delivery's own fields are touched
 * only by its current step (one at a time).
 */
#include <winsock2.h>
#include <windows.h>
#include <windns.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delivery.h"

#include "clock.h"
#include "convert.h"
#include "eventlog.h"
#include "location.h"
#include "mime.h"
#include "outbound.h"
#include "secret.h"
#include "spool.h"
#include "storage.h"
#include "utf.h"

#define DELIVERY_MX_MAX     16      /* MX hosts tried per domain */
#define DELIVERY_DEAD_SECS  60      /* a destination that refused a connection is left alone this long */
#define DELIVERY_KEEP_MS    2000u   /* an idle delivery connection waits this long for more */

struct delivery;

struct dest {
    char key[ROUTE_KEY_MAX];
    struct route route;
    struct delivery_job *head, *tail;
    unsigned active;          /* deliveries on it, parked ones included */
    struct delivery *parked;  /* ... of which holding an open connection, waiting for a job */
    int64_t dead_until;       /* unreachable until then: jobs fail with dead_fail */
    struct smtpc_result dead_fail;
    struct dest *next;
};

static const struct delivery_config *volatile current;
#define DS current

static struct {
    CRITICAL_SECTION lock;
    CONDITION_VARIABLE cv;    /* a delivery ended (delivery_stop waits for the last) */
    struct dest *dests;
    int stop, paused;
    size_t deliveries;        /* running or parked; at most max_deliveries */
    size_t max_deliveries;    /* MaxOutbound */
    LONG active_out;          /* connections open or opening */
} dl;

/* Delivery: the drop directory --------------------------------------------- */

/* The lines IIS SMTP writes at the top of a Drop file, which readers of
 * its Drop folder (and imsvc's own pickup) take the envelope from:
 * "x-sender: " the sender ("<>" for the null path), then "x-receiver: "
 * for each of the job's recipients. Returns a malloc'd buffer (*n octets),
 * or NULL when out of memory. */
static char *drop_envelope_lines(const struct delivery_job *j, size_t *n)
{
    enum { LINE_MAX_LEN = 16 + ADDR_PATH_MAX + 8 + 2 };
    char *buf = malloc((j->n + 1) * LINE_MAX_LEN + 1);
    char a[ADDR_PATH_MAX + 8];
    size_t o = 0;
    if (!buf)
        return NULL;
    addr_mailbox_text(&j->env->from, a, sizeof a);
    int w = snprintf(buf, LINE_MAX_LEN + 1, "x-sender: %s\r\n", a);
    o += w > 0 && w <= LINE_MAX_LEN ? (size_t)w : 0;
    for (size_t i = 0; i < j->n; i++) {
        addr_mailbox_text(&j->env->rcpt[j->idx[i]].addr, a, sizeof a);
        w = snprintf(buf + o, LINE_MAX_LEN + 1, "x-receiver: %s\r\n", a);
        o += w > 0 && w <= LINE_MAX_LEN ? (size_t)w : 0;
    }
    *n = o;
    return buf;
}

/* Write all of p (n octets) to h: 0, or the Win32 error. A short write
 * (Wine, on a full disk) is followed by one that says why. */
static DWORD write_all(HANDLE h, const void *p, size_t n)
{
    size_t done = 0;
    while (done < n) {
        DWORD k = 0, chunk = n - done > 0x40000000u ? 0x40000000u : (DWORD)(n - done);
        if (!WriteFile(h, (const char *)p + done, chunk, &k, NULL))
            return GetLastError();
        if (k == 0)
            return ERROR_WRITE_FAULT;
        done += k;
    }
    return ERROR_SUCCESS;
}

static void deliver_drop(struct delivery_job *j)
{
    wchar_t tmp[MAX_PATH], final[MAX_PATH];
    _snwprintf(tmp, MAX_PATH, L"%ls\\%hs.tmp", DS->drop_dir, j->id);
    _snwprintf(final, MAX_PATH, L"%ls\\%hs.eml", DS->drop_dir, j->id);
    tmp[MAX_PATH - 1] = final[MAX_PATH - 1] = 0;
    struct smtpc_result r;
    DWORD err = ERROR_SUCCESS;
    if (GetFileAttributesW(final) == INVALID_FILE_ATTRIBUTES) {
        /* Written whole and flushed before it gets its name: a reader of the
         * drop directory never sees half a message. */
        size_t xlen = 0;
        char *x = DS->drop_envelope ? drop_envelope_lines(j, &xlen) : NULL;
        if (DS->drop_envelope && !x)
            err = ERROR_NOT_ENOUGH_MEMORY;
        HANDLE h = err ? INVALID_HANDLE_VALUE
                       : CreateFileW(tmp, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
        if (!err && h == INVALID_HANDLE_VALUE)
            err = GetLastError();
        if (!err && x)
            err = write_all(h, x, xlen);
        if (!err)
            err = write_all(h, j->content, j->len);
        free(x);
        if (!err && !FlushFileBuffers(h))
            err = GetLastError();
        if (h != INVALID_HANDLE_VALUE)
            CloseHandle(h);
        if (!err && !MoveFileExW(tmp, final, MOVEFILE_WRITE_THROUGH))
            err = GetLastError();
        if (err)
            DeleteFileW(tmp);
    }
    /* else: written before a crash cut the round short; once is enough */
    if (err) {
        char why[300];
        struct storage_reply rp; /* a full disk: 4.3.1, reported once by the spool */
        storage_reply(err, &rp);
        snprintf(why, sizeof why, "cannot write to the drop directory (Win32 error %lu)",
                 (unsigned long)err);
        smtpc_result_local(&r, SMTPC_TRANSIENT, SMTPC_R_NONE, rp.status, why);
        wchar_t what[400];
        _snwprintf(what, ARRAYSIZE(what), L"cannot write message %hs to the drop directory %ls",
                   j->id, DS->drop_dir);
        what[ARRAYSIZE(what) - 1] = 0;
        if (!spool_note_failure(err, LOC_QUEUE_DROP, 0, L"writing message %hs to the drop "
                                L"directory %ls", j->id, DS->drop_dir))
            evlog_report(EVENTLOG_ERROR_TYPE, CAT_QUEUING, MSG_SPOOL_ERROR, LOC_QUEUE_DROP, err, 1,
                         (const wchar_t *[]){ what });
    } else {
        smtpc_result_local(&r, SMTPC_OK, SMTPC_R_NONE, "2.0.0", "delivered to the drop directory");
    }
    j->done(j, &r, 1, DELIVERY_DROP_REMOTE);
}

/* Delivery: SMTP ------------------------------------------------------------ */

/* A route's TLS setting for the engine. */
static enum smtpc_tls_policy tls_of(int setting)
{
    return setting == 0 ? SMTPC_TLS_OFF : setting == 2 ? SMTPC_TLS_REQUIRED : SMTPC_TLS_OPPORTUNISTIC;
}

/* "DOMAIN\user" or "user" into its parts, UTF-16. */
static void split_user(const char *user, wchar_t *domain, size_t dcap, wchar_t *name, size_t ncap)
{
    wchar_t w[ROUTELIST_USER_MAX + 1];
    utf8_to_wide(user, w, ARRAYSIZE(w));
    const wchar_t *bs = wcschr(w, L'\\');
    domain[0] = 0;
    if (bs) {
        _snwprintf(domain, dcap, L"%.*ls", (int)(bs - w), w);
        domain[dcap - 1] = 0;
    }
    _snwprintf(name, ncap, L"%ls", bs ? bs + 1 : w);
    name[ncap - 1] = 0;
}

/* The options for rt. A route's user goes to user/domain (caller's
 * buffers, as long as the options live). Returns 0, or -1 when rt names a
 * route the configuration no longer has. */
static int outbound_options(const struct route *rt, char *port, size_t port_len,
                            struct outbound_opts *o, wchar_t *domain, wchar_t *user, size_t cap)
{
    memset(o, 0, sizeof *o);
    snprintf(port, port_len, "%u", rt->port);
    o->host = rt->host;
    o->port = port;
    o->helo = DS->helo;
    o->who = L"queue delivery";
    if (rt->kind == ROUTE_SMARTHOST && rt->via[0]) {
        const struct route_entry *re = routelist_get(DS->routes, rt->via);
        if (!re)
            return -1;
        size_t i = (size_t)(re - DS->routes->v);
        o->tls = tls_of((int)re->tls);          /* ROUTELIST_TLS_* count as SmartHostTls */
        o->trust = re->trust_any ? TLS_TRUST_ANY : TLS_TRUST_VERIFY;
        o->policy = &DS->tls_policy;
        o->auth = re->auth ? SMTPC_AUTH_REQUIRED : SMTPC_AUTH_NONE;
        o->mechs = re->auth;                       /* the same bits as SMTPC_MECH_* */
        o->auth_refused = SMTPC_CLASS_TRANSIENT;   /* a wrong password defers, never bounces */
        if (re->user[0]) {
            split_user(re->user, domain, cap, user, cap);
            o->domain = domain;
            o->user = user;
            o->password = DS->route_pw ? DS->route_pw[i] : L"";
        }
    } else if (rt->kind == ROUTE_SMARTHOST) {
        o->tls = tls_of(DS->smart_host_tls);
        o->trust = DS->smart_host_trust ? TLS_TRUST_ANY : TLS_TRUST_VERIFY;
        o->policy = &DS->tls_policy;
        o->auth = DS->smart_host_auth == 0 ? SMTPC_AUTH_NONE
                : DS->smart_host_auth == 2 ? SMTPC_AUTH_REQUIRED : SMTPC_AUTH_IF_OFFERED;
        o->mechs = DS->smart_host_mechs;
        o->auth_refused = SMTPC_CLASS_TRANSIENT;
        if (DS->sh_user[0]) {
            o->domain = DS->sh_domain;
            o->user = DS->sh_user;
            o->password = DS->sh_password;
        }
    } else {
        /* MX: opportunistic TLS, as RFC 7435 has it: encrypt when offered,
         * never refuse to deliver over an unverifiable certificate */
        o->tls = SMTPC_TLS_OPPORTUNISTIC;
        o->trust = TLS_TRUST_ANY;
        o->auth = SMTPC_AUTH_NONE;
    }
    return 0;
}

/* The hosts to try for an MX route, best first. Returns the count, or 0
 * with *fail set. */
static size_t mx_hosts(const struct route *rt, struct route_mx *mx, struct smtpc_result *fail)
{
    if (rt->literal) {
        snprintf(mx[0].host, sizeof mx[0].host, "%s", rt->host);
        return 1;
    }
    size_t n = 0;
    DNS_RECORDA *rec = NULL;
    DNS_STATUS st = DnsQuery_A(rt->host, DNS_TYPE_MX, DNS_QUERY_STANDARD, NULL,
                               (DNS_RECORD **)&rec, NULL);
    if (st == 0) {
        for (DNS_RECORDA *r = rec; r && n < DELIVERY_MX_MAX; r = r->pNext) {
            if (r->wType != DNS_TYPE_MX || r->Flags.S.Section != DnsSectionAnswer ||
                !r->Data.MX.pNameExchange)
                continue;
            mx[n].pref = r->Data.MX.wPreference;
            snprintf(mx[n].host, sizeof mx[n].host, "%s", r->Data.MX.pNameExchange);
            n++;
        }
        DnsRecordListFree((DNS_RECORD *)rec, DnsFreeRecordList);
    } else if (st != DNS_ERROR_RCODE_NAME_ERROR && st != DNS_INFO_NO_RECORDS &&
               st != ERROR_INVALID_NAME) {
        char why[300];
        snprintf(why, sizeof why, "the MX lookup for %s failed (DNS status %ld); the DNS "
                 "server may be unreachable", rt->host, (long)st);
        smtpc_result_local(fail, SMTPC_TRANSIENT, SMTPC_R_NONE, "4.4.3", why);
        return 0;
    } else if (st == DNS_ERROR_RCODE_NAME_ERROR) {
        /* the name does not exist: the A/AAAA fallback decides (it fails too) */
    }
    const char *self[2] = { DS->helo, "localhost" };
    size_t kept = 0;
    enum route_mx_result mr = route_mx_order(mx, n, self, 2, (unsigned)GetTickCount(), &kept);
    char why[400];
    switch (mr) {
    case ROUTE_MX_OK:
        return kept;
    case ROUTE_MX_IMPLICIT:
        snprintf(mx[0].host, sizeof mx[0].host, "%s", rt->host);
        mx[0].pref = 0;
        return 1;
    case ROUTE_MX_NULL:
        snprintf(why, sizeof why, "the domain %s publishes a null MX record (RFC 7505): it "
                 "accepts no mail", rt->host);
        smtpc_result_local(fail, SMTPC_PERMANENT, SMTPC_R_NONE, "5.1.10", why);
        return 0;
    case ROUTE_MX_SELF:
        snprintf(why, sizeof why, "this server is the best MX host for %s but the domain is "
                 "not in LocalDomains: delivering would loop back here", rt->host);
        smtpc_result_local(fail, SMTPC_PERMANENT, SMTPC_R_NONE, "5.4.6", why);
        return 0;
    }
    return 0;
}

/* 8-bit content to a next hop without 8BITMIME: convert outside signed
 * parts, or refuse. Returns the bytes to send (j->content or *copy), or
 * NULL with *fail set. */
static const unsigned char *prepare_content(const struct delivery_job *j, unsigned ext, unsigned char **copy,
                                            size_t *len, struct smtpc_result *fail)
{
    *copy = NULL;
    *len = j->len;
    if (!j->eight_bit || (ext & SC_EXT_8BITMIME))
        return j->content;
    struct mime_scan *scan = malloc(sizeof *scan);
    if (!scan) {
        smtpc_result_local(fail, SMTPC_TRANSIENT, SMTPC_R_NONE, "4.3.0", "out of memory while converting to 7-bit");
        return NULL;
    }
    mime_scan(j->content, j->len, scan);
    const char *why = NULL;
    enum mime_verdict v = mime_conversion_verdict(scan, 0, &why);
    const unsigned char *out = NULL;
    char text[600];
    if (v == MIME_VERDICT_CONVERT || v == MIME_VERDICT_OK) {
        enum convert_result cr = convert_7bit(j->content, j->len, scan, copy, len, &why);
        if (cr == CONVERT_OK) {
            out = *copy;
        } else if (cr == CONVERT_UNCHANGED) {
            *len = j->len;
            out = j->content;
        } else if (cr == CONVERT_NOMEM) {
            smtpc_result_local(fail, SMTPC_TRANSIENT, SMTPC_R_NONE, "4.3.0", "out of memory while converting to 7-bit");
        } else {
            snprintf(text, sizeof text, "The next hop does not accept 8-bit mail (no 8BITMIME) "
                     "and the message cannot be converted to 7-bit: %s", why ? why : "");
            smtpc_result_local(fail, SMTPC_PERMANENT, SMTPC_R_NONE, "5.6.3", text);
        }
    } else {
        snprintf(text, sizeof text, "The next hop does not accept 8-bit mail (no 8BITMIME) and "
                 "%s", why ? why : "the message cannot be converted");
        smtpc_result_local(fail, SMTPC_PERMANENT, SMTPC_R_NONE, "5.6.3", text);
    }
    free(scan);
    return out;
}

/* Deliveries ---------------------------------------------------------------- */

/* One delivery carries the jobs of one destination, one after another,
 * over one connection (or into the drop directory). It has no thread: its
 * steps run on work threads of the Windows thread pool, each started by the
 * previous step's end or by an outbound callback, and waiting for the
 * network costs no thread at all. Between jobs, a delivery holding an open
 * connection is parked on its destination for up to DELIVERY_KEEP_MS, so the
 * next message goes over the same connection. */
struct delivery {
    struct dest *d;
    struct delivery_job *j;                       /* the job in hand */
    struct outbound *c;                  /* the open connection, or NULL */
    struct route_mx mx[DELIVERY_MX_MAX];    /* the hosts to try, best first */
    size_t n_mx, i_mx;
    DWORD parked_at;
    struct delivery *next;               /* on d->parked */
    void (*run)(struct delivery *dv);    /* the step submitted */
    /* the message on the wire */
    unsigned char *copy;
    char from[600];
    char (*to)[600];
    const char **tp;
    struct smtpc_result *res;
    struct smtpc_message msg;
};

static void dv_start(struct delivery *dv);
static void delivery_send(struct delivery *dv);

static void CALLBACK delivery_run(PTP_CALLBACK_INSTANCE inst, void *p)
{
    (void)inst;
    struct delivery *dv = p;
    dv->run(dv);
}

/* Run step on a work thread. */
static void dv_submit(struct delivery *dv, void (*step)(struct delivery *))
{
    dv->run = step;
    if (!TrySubmitThreadpoolCallback(delivery_run, dv, NULL))
        step(dv);   /* the pool cannot take it: run it here rather than lose the job */
}

static struct delivery_job *pop_job(struct dest *d)
{
    struct delivery_job *j = d->head;
    if (j) {
        d->head = j->next;
        if (!d->head)
            d->tail = NULL;
    }
    return j;
}

static void push_job(struct dest *d, struct delivery_job *j)
{
    j->next = NULL;
    if (d->tail)
        d->tail->next = j;
    else
        d->head = j;
    d->tail = j;
}

/* dl.lock held: start what d's waiting jobs need. A destination known to
 * be unreachable fails them all at once with the last attempt's reason;
 * parked connections take jobs first, then new deliveries start while there
 * is room on the destination and in MaxOutbound. */
static void dead_jobs(struct delivery *dv);
static void kick(struct dest *d, int64_t now)
{
    if (dl.stop || dl.paused || !d->head)
        return;
    if (d->dead_until > now) {
        struct delivery *dv = calloc(1, sizeof *dv);
        if (!dv)
            return;   /* the next tick tries again */
        dv->d = d;
        dv->j = pop_job(d);
        d->active++;
        dv_submit(dv, dead_jobs);
        return;
    }
    while (d->head && d->parked) {
        struct delivery *dv = d->parked;
        d->parked = dv->next;
        dv->j = pop_job(d);
        dv_submit(dv, delivery_send);
    }
    while (d->head && d->active < DS->max_per_destination &&
           dl.deliveries < dl.max_deliveries) {
        struct delivery *dv = calloc(1, sizeof *dv);
        if (!dv)
            return;
        dv->d = d;
        dv->j = pop_job(d);
        d->active++;
        dl.deliveries++;
        dv_submit(dv, dv_start);
    }
}

/* dl.lock held. */
static void kick_all(void)
{
    int64_t now = clock_unix();
    for (struct dest *d = dl.dests; d; d = d->next)
        kick(d, now);
}

/* A destination that cannot be reached: every job waiting for it ends with
 * the same result, instead of one connection attempt each. */
static void fail_dest(struct dest *d, struct delivery_job *first, const struct smtpc_result *fail,
                      int record)
{
    char remote[ROUTE_HOST_MAX + 16];
    snprintf(remote, sizeof remote, "%s", d->route.host);
    EnterCriticalSection(&dl.lock);
    struct delivery_job *rest = d->head;
    d->head = d->tail = NULL;
    if (record && fail->outcome != SMTPC_PERMANENT) {
        /* never longer than the first retry, or short schedules would wait on it */
        uint32_t hold = DS->dead_hold_secs;
        d->dead_until = clock_unix() + hold;
        d->dead_fail = *fail;
    }
    LeaveCriticalSection(&dl.lock);
    first->done(first, fail, 1, remote);
    while (rest) {
        struct delivery_job *next = rest->next;
        rest->done(rest, fail, 1, remote);
        rest = next;
    }
}

/* A work thread: the jobs of a destination known to be unreachable are
 * deferred with the reason of the last attempt, without a connection each. */
static void dead_jobs(struct delivery *dv)
{
    struct dest *d = dv->d;
    EnterCriticalSection(&dl.lock);
    struct smtpc_result fail = d->dead_fail;
    LeaveCriticalSection(&dl.lock);
    fail_dest(d, dv->j, &fail, 0);
    EnterCriticalSection(&dl.lock);
    d->active--;
    kick(d, clock_unix());
    LeaveCriticalSection(&dl.lock);
    free(dv);
}

static void free_message(struct delivery *dv)
{
    free(dv->to), free(dv->tp), free(dv->res), free(dv->copy);
    dv->to = NULL;
    dv->tp = NULL;
    dv->res = NULL;
    dv->copy = NULL;
}

static void delivery_closed(void *arg)
{
    (void)arg;
    InterlockedDecrement(&dl.active_out);
}

/* The delivery is over: its connection closes (QUIT) on its own, and its
 * place goes to whatever waits for one. */
static void delivery_end(struct delivery *dv)
{
    if (dv->c)
        outbound_close_async(dv->c, delivery_closed, NULL);
    struct dest *d = dv->d;
    free_message(dv);
    free(dv);
    EnterCriticalSection(&dl.lock);
    d->active--;
    dl.deliveries--;
    kick_all();
    WakeAllConditionVariable(&dl.cv);   /* delivery_stop may be waiting for the last */
    LeaveCriticalSection(&dl.lock);
}

/* The job in hand is done: the next one for this destination, over the
 * same connection if it is still open; none waiting: park the connection,
 * or end. */
static void delivery_next(struct delivery *dv)
{
    struct dest *d = dv->d;
    EnterCriticalSection(&dl.lock);
    dv->j = dl.stop || dl.paused ? NULL : pop_job(d);
    if (!dv->j && dv->c && !dl.stop && !dl.paused && d->route.kind != ROUTE_DROP) {
        dv->parked_at = GetTickCount();
        dv->next = d->parked;
        d->parked = dv;
        LeaveCriticalSection(&dl.lock);
        return;
    }
    LeaveCriticalSection(&dl.lock);
    if (!dv->j)
        delivery_end(dv);
    else if (dv->c)
        delivery_send(dv);
    else
        dv_start(dv);
}

static void delivery_sent(void *arg, int rc)
{
    struct delivery *dv = arg;
    char peer[300];
    snprintf(peer, sizeof peer, "%s", outbound_peer(dv->c));
    dv->j->done(dv->j, dv->res, 0, peer);
    dv->j = NULL;
    free_message(dv);
    if (rc != 0) {
        outbound_close_async(dv->c, delivery_closed, NULL);
        dv->c = NULL;
    }
    delivery_next(dv);
}

/* The job in hand, over the open connection. */
static void delivery_send(struct delivery *dv)
{
    struct delivery_job *j = dv->j;
    const struct delivery_job *m = j;
    struct smtpc_result fail;
    size_t len;
    const unsigned char *content = prepare_content(m, outbound_extensions(dv->c), &dv->copy, &len,
                                                   &fail);
    if (!content) {
        j->done(j, &fail, 1, outbound_peer(dv->c));
        dv->j = NULL;
        delivery_next(dv);
        return;
    }
    /* MasqueradeDomain: the sender's domain, on the wire only (as IIS's
     * masquerade domain: the queued envelope and the content are unchanged) */
    struct addr_path from = m->env->from;
    if (DS->masquerade[0] && !from.null_path) {
        snprintf(from.domain, sizeof from.domain, "%s", DS->masquerade);
        from.kind = ADDR_DOMAIN_NAME;
    }
    if (from.null_path || addr_format_mailbox(&from, dv->from, sizeof dv->from) < 0)
        dv->from[0] = 0;
    dv->to = calloc(j->n, sizeof *dv->to);
    dv->tp = calloc(j->n, sizeof *dv->tp);
    dv->res = calloc(j->n, sizeof *dv->res);
    if (!dv->to || !dv->tp || !dv->res) {
        free_message(dv);
        smtpc_result_local(&fail, SMTPC_TRANSIENT, SMTPC_R_NONE, "4.3.0", "out of memory");
        j->done(j, &fail, 1, outbound_peer(dv->c));
        dv->j = NULL;
        delivery_next(dv);
        return;
    }
    for (size_t i = 0; i < j->n; i++) {
        if (addr_format_mailbox(&m->env->rcpt[j->idx[i]].addr, dv->to[i], sizeof dv->to[i]) < 0)
            dv->to[i][0] = 0;
        dv->tp[i] = dv->to[i];
    }
    dv->msg = (struct smtpc_message){
        .from = dv->from, .to = dv->tp, .n_to = j->n, .size = len,
        .eight_bit = mime_has_8bit(content, len),
    };
    outbound_send_async(dv->c, &dv->msg, content, len, dv->res, NULL, delivery_sent, dv);
}

static void delivery_open(struct delivery *dv);

static void delivery_opened(void *arg, struct outbound *c, const struct smtpc_result *fail)
{
    struct delivery *dv = arg;
    if (c) {
        dv->c = c;
        delivery_send(dv);
        return;
    }
    InterlockedDecrement(&dl.active_out);
    /* a permanent answer from one MX host is that host's: try the next */
    if (++dv->i_mx < dv->n_mx) {
        delivery_open(dv);
        return;
    }
    fail_dest(dv->d, dv->j, fail, 1);
    dv->j = NULL;
    delivery_next(dv);
}

/* A connection to the next host to try. */
static void delivery_open(struct delivery *dv)
{
    struct route one = dv->d->route;
    if (one.kind == ROUTE_MX)
        snprintf(one.host, sizeof one.host, "%s", dv->mx[dv->i_mx].host);
    char port[16];
    wchar_t domain[ROUTELIST_USER_MAX + 1], user[ROUTELIST_USER_MAX + 1];
    struct outbound_opts o;
    struct smtpc_result fail;
    InterlockedIncrement(&dl.active_out);
    if (outbound_options(&one, port, sizeof port, &o, domain, user, ARRAYSIZE(user)) != 0) {
        char why[ROUTELIST_PATTERN_MAX + 120];
        snprintf(why, sizeof why, "the route for %s is no longer configured; the message is "
                 "routed again at its next attempt", one.via);
        smtpc_result_local(&fail, SMTPC_TRANSIENT, SMTPC_R_NONE, "4.4.0", why);
        delivery_opened(dv, NULL, &fail);
        return;
    }
    if (outbound_open_async(&o, delivery_opened, dv, &fail) != 0)
        delivery_opened(dv, NULL, &fail);
}

/* A work thread: the job in hand, without a connection. Drop delivery
 * writes files here; an MX route's lookup (DnsQuery, which can block)
 * happens here too, never on an I/O worker. */
static void dv_start(struct delivery *dv)
{
    struct dest *d = dv->d;
    if (d->route.kind == ROUTE_DROP) {
        deliver_drop(dv->j);
        dv->j = NULL;
        delivery_next(dv);
        return;
    }
    dv->i_mx = 0;
    dv->n_mx = 1;
    if (d->route.kind == ROUTE_MX) {
        struct smtpc_result fail;
        dv->n_mx = mx_hosts(&d->route, dv->mx, &fail);
        if (dv->n_mx == 0) {
            fail_dest(d, dv->j, &fail, 1);
            dv->j = NULL;
            delivery_next(dv);
            return;
        }
    }
    delivery_open(dv);
}

/* The scheduler, dl.lock held: parked connections that waited long enough
 * (or all of them when stopping or paused) leave their destinations; the
 * caller ends them once the lock is released. */
static struct delivery *unpark_expired(DWORD now_ms)
{
    struct delivery *out = NULL;
    for (struct dest *d = dl.dests; d; d = d->next) {
        struct delivery **pp = &d->parked;
        while (*pp) {
            struct delivery *dv = *pp;
            if (dl.stop || dl.paused || now_ms - dv->parked_at >= DELIVERY_KEEP_MS) {
                *pp = dv->next;
                dv->next = out;
                out = dv;
            } else {
                pp = &dv->next;
            }
        }
    }
    return out;
}

static void end_all(struct delivery *list)
{
    while (list) {
        struct delivery *next = list->next;
        delivery_end(list);
        list = next;
    }
}

/* The interface ------------------------------------------------------------- */

/* SmartHostUser and the password file, for NTLM to the smart host. */
static void smart_host_credentials(const struct imsvc_config *cfg, struct delivery_config *dc)
{
    if (!cfg->smart_host_user[0])
        return;
    const wchar_t *bs = wcschr(cfg->smart_host_user, L'\\');
    if (bs) {
        _snwprintf(dc->sh_domain, ARRAYSIZE(dc->sh_domain), L"%.*ls",
                   (int)(bs - cfg->smart_host_user), cfg->smart_host_user);
        _snwprintf(dc->sh_user, ARRAYSIZE(dc->sh_user), L"%ls", bs + 1);
    } else {
        _snwprintf(dc->sh_user, ARRAYSIZE(dc->sh_user), L"%ls", cfg->smart_host_user);
    }
    secret_password(L"SmartHostPassword", cfg->smart_host_password_file, dc->sh_password,
                    ARRAYSIZE(dc->sh_password));
}

/* Each route's password, from its secret ("Route:" and its domain). */
static void route_credentials(const struct imsvc_config *cfg, struct delivery_config *dc)
{
    dc->routes = cfg->lists ? &cfg->lists->routes : NULL;
    if (!dc->routes || dc->routes->n == 0)
        return;
    dc->route_pw = calloc(dc->routes->n, sizeof *dc->route_pw);
    if (!dc->route_pw)
        return;   /* no passwords: an exchange that needs one fails and the message waits */
    for (size_t i = 0; i < dc->routes->n; i++) {
        wchar_t name[SECRET_NAME_MAX];
        if (!dc->routes->v[i].user[0])
            continue;
        secret_route_name(dc->routes->v[i].pattern, name, ARRAYSIZE(name));
        secret_password(name, NULL, dc->route_pw[i], ARRAYSIZE(dc->route_pw[i]));
    }
}

void delivery_config_make(const struct imsvc_config *cfg, uint32_t first_retry_secs,
                          struct delivery_config *dc)
{
    memset(dc, 0, sizeof *dc);
    dc->max_per_destination = cfg->max_per_destination;
    /* never longer than the first retry, or short schedules would wait on it */
    dc->dead_hold_secs = DELIVERY_DEAD_SECS;
    if (first_retry_secs && first_retry_secs < dc->dead_hold_secs)
        dc->dead_hold_secs = first_retry_secs;
    wide_to_utf8(cfg->host_name, dc->helo, sizeof dc->helo);
    dc->smart_host_tls = cfg->smart_host_tls;
    dc->smart_host_trust = cfg->smart_host_trust;
    dc->smart_host_auth = cfg->smart_host_auth;
    char mechs[64];
    wide_to_utf8(cfg->smart_host_mechs, mechs, sizeof mechs);
    if (routelist_parse_mechs(mechs, strlen(mechs), &dc->smart_host_mechs) != 0 ||
        dc->smart_host_mechs == 0)
        dc->smart_host_mechs = SMTPC_MECH_NTLM;   /* config_load checked it: cannot happen */
    config_tls_policy(cfg, &dc->tls_policy);
    smart_host_credentials(cfg, dc);
    route_credentials(cfg, dc);
    config_drop_dir(cfg, dc->drop_dir, MAX_PATH);
    dc->drop_envelope = cfg->drop_envelope_lines != 0;
    wide_to_utf8(cfg->masquerade_domain, dc->masquerade, sizeof dc->masquerade);
}

void delivery_start(unsigned max_outbound, const struct delivery_config *dc)
{
    memset(&dl, 0, sizeof dl);
    InitializeCriticalSection(&dl.lock);
    InitializeConditionVariable(&dl.cv);
    dl.max_deliveries = max_outbound;
    current = dc;
}

void delivery_configure(const struct delivery_config *dc)
{
    current = dc;
    /* the change may be what mends a destination (a password, a route):
     * none is left alone on what an earlier configuration met */
    EnterCriticalSection(&dl.lock);
    for (struct dest *d = dl.dests; d; d = d->next)
        d->dead_until = 0;
    LeaveCriticalSection(&dl.lock);
}

void delivery_submit(const struct route *rt, const char *key, struct delivery_job *j)
{
    struct dest *spare = calloc(1, sizeof *spare);   /* before the lock */
    EnterCriticalSection(&dl.lock);
    struct dest *d = dl.dests;
    while (d && strcmp(d->key, key) != 0)
        d = d->next;
    if (!d && spare) {
        d = spare;
        spare = NULL;
        snprintf(d->key, sizeof d->key, "%s", key);
        d->route = *rt;
        d->next = dl.dests;
        dl.dests = d;
    }
    if (d) {
        push_job(d, j);
        kick(d, clock_unix());
    }
    LeaveCriticalSection(&dl.lock);
    free(spare);
    if (!d) {
        struct smtpc_result r;
        smtpc_result_local(&r, SMTPC_TRANSIENT, SMTPC_R_NONE, "4.3.0", "out of memory");
        j->done(j, &r, 1, "");
    }
}

void delivery_tick(void)
{
    EnterCriticalSection(&dl.lock);
    struct delivery *expired = unpark_expired(GetTickCount());
    kick_all();
    LeaveCriticalSection(&dl.lock);
    end_all(expired);
}

void delivery_revive(void)
{
    EnterCriticalSection(&dl.lock);
    for (struct dest *d = dl.dests; d; d = d->next)
        d->dead_until = 0;
    LeaveCriticalSection(&dl.lock);
}

void delivery_pause(int paused)
{
    EnterCriticalSection(&dl.lock);
    dl.paused = paused;
    LeaveCriticalSection(&dl.lock);
}

void delivery_stop(DWORD deadline)
{
    EnterCriticalSection(&dl.lock);
    dl.stop = 1;
    struct delivery *parked = unpark_expired(GetTickCount());
    LeaveCriticalSection(&dl.lock);
    end_all(parked);
    /* deliveries in progress finish their message and end */
    EnterCriticalSection(&dl.lock);
    while (dl.deliveries > 0) {
        DWORD now = GetTickCount();
        if ((LONG)(deadline - now) <= 0)
            break;
        SleepConditionVariableCS(&dl.cv, &dl.lock, deadline - now);
    }
    LeaveCriticalSection(&dl.lock);
}

long delivery_connections(void)
{
    return (long)dl.active_out;
}
