/* queue.c - delivery (see queue.h).
 *
 * Locks: q.lock guards the message index, the destinations and their job
 * lists; a message's own lock guards its envelope while jobs for it run on
 * several destinations at once. q.lock is never taken while holding a
 * message's lock, and no disk or network I/O happens under q.lock.
 * A message is never changed here: it is read from the spool and sent as it
 * is (or, to a next hop without 8BITMIME, with only its unsigned 8-bit
 * parts re-encoded, in a copy).
 */
#include <winsock2.h>
#include <windows.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue.h"

#include "clock.h"
#include "eventlog.h"
#include "delivery.h"
#include "location.h"
#include "mime.h"
#include "notices.h"
#include "qmgr.h"
#include "queuectl.h"
#include "retry.h"
#include "route.h"
#include "spool.h"
#include "tracking.h"
#include "utf.h"

#define QUEUE_READ_RETRY    30      /* seconds before a message that could not be read is tried again */
#define QUEUE_TICK_MS       1000u   /* scheduler wake-up at the latest */
#define QUEUE_WHY_MAX       1400u
#define QUEUE_BATCH         256     /* messages taken off the ready list in one round */

struct qmsg {
    char id[ENV_ID_MAX + 1];
    int64_t due;              /* when to look at it next; INT64_MAX while busy */
    int64_t arrived;          /* 0 until its envelope was read once */
    int busy;                 /* dispatched: jobs running, or being read */
    size_t slot;              /* index in q.msgs */
    int ready;                /* on the ready list: due now, not yet dispatched */
    struct qmsg *rprev, *rnext;
    /* while busy */
    CRITICAL_SECTION lock;
    int jobs;
    struct envelope env;
    unsigned char *content;
    size_t len;
    int eight_bit;
};

/* One message's recipients for one destination, handed to delivery.h. */
struct job {
    struct delivery_job dj;
    struct qmsg *m;
    size_t *idx;              /* recipients of m->env this job delivers */
};

/* What the configuration says, prepared. Never changed once published: a
 * PARAMCHANGE publishes a new one (the old stays allocated, as a thread may
 * still be reading it). */
struct settings {
    struct imsvc_config cfg;
    struct retry_policy policy;
    struct route_config rc;
    char smarthost[300];
    struct delivery_config dc;         /* what delivery.h needs */
    struct notices_config nc;          /* ... and notices.h */
};

static struct settings *volatile current;
#define SET current

static struct {
    CRITICAL_SECTION lock;
    CONDITION_VARIABLE sched_cv;
    struct qmsg **msgs;
    size_t n_msgs, cap_msgs;
    /* The scheduler's work does not grow with the queue: a message that is
     * due now is on the ready list (in the order it became due); of the
     * others, none is due before next_due, so the whole index is read only
     * once that time has come, or when rescan asks for it. */
    struct qmsg *ready_head, *ready_tail;
    int64_t next_due;
    int rescan;
    int stop, paused, running;
    HANDLE scheduler;
} q;

/* Small things -------------------------------------------------------------- */



static void event(WORD type, DWORD id, DWORD location, DWORD status, int n,
                  const wchar_t *const *strings)
{
    evlog_report(type, CAT_QUEUING, id, location, status, n, strings);
}

/* The message index --------------------------------------------------------- */

static void set_due(struct qmsg *m, int64_t due);

/* q.lock held. */
static struct qmsg *index_add(const char *id, int64_t due)
{
    if (q.n_msgs == q.cap_msgs) {
        size_t cap = q.cap_msgs ? q.cap_msgs * 2 : 256;
        struct qmsg **p = realloc(q.msgs, cap * sizeof *p);
        if (!p)
            return NULL;
        q.msgs = p;
        q.cap_msgs = cap;
    }
    struct qmsg *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    snprintf(m->id, sizeof m->id, "%s", id);
    m->slot = q.n_msgs;
    InitializeCriticalSection(&m->lock);
    env_init(&m->env);
    q.msgs[q.n_msgs++] = m;
    set_due(m, due);
    return m;
}

/* The ready list (q.lock held) */

static void ready_push(struct qmsg *m)
{
    if (m->ready)
        return;
    m->ready = 1;
    m->rnext = NULL;
    m->rprev = q.ready_tail;
    if (q.ready_tail)
        q.ready_tail->rnext = m;
    else
        q.ready_head = m;
    q.ready_tail = m;
}

static void ready_unlink(struct qmsg *m)
{
    if (!m->ready)
        return;
    if (m->rprev)
        m->rprev->rnext = m->rnext;
    else
        q.ready_head = m->rnext;
    if (m->rnext)
        m->rnext->rprev = m->rprev;
    else
        q.ready_tail = m->rprev;
    m->ready = 0;
    m->rprev = m->rnext = NULL;
}

/* m waits again, due at due (q.lock held): onto the ready list if that is
 * by now, else it may be the next due time. */
static void set_due_at(struct qmsg *m, int64_t due, int64_t now)
{
    m->due = due;
    m->busy = 0;
    if (due <= now)
        ready_push(m);
    else if (due < q.next_due)
        q.next_due = due;
}

static void set_due(struct qmsg *m, int64_t due)
{
    set_due_at(m, due, clock_unix());
}

/* q.lock held. */
static void index_remove(struct qmsg *m)
{
    ready_unlink(m);
    size_t s = m->slot;
    q.msgs[s] = q.msgs[--q.n_msgs];
    q.msgs[s]->slot = s;
    DeleteCriticalSection(&m->lock);
    free(m);
}

static void on_committed(const char *id)
{
    EnterCriticalSection(&q.lock);
    if (q.running && index_add(id, 0))
        WakeConditionVariable(&q.sched_cv);
    LeaveCriticalSection(&q.lock);
    /* Out of memory: the message is on disk and is found at the next start. */
}

/* Finishing a message's round ---------------------------------------------- */

/* Deferred because the data directory's disk is full (deliver_drop's 4.3.1):
 * event 4150 reports that once for every message. */
static int deferred_for_space(const struct env_rcpt *r)
{
    return strcmp(r->remote, DELIVERY_DROP_REMOTE) == 0 && strcmp(r->status, "4.3.1") == 0;
}

static void rcpt_events(const struct qmsg *m, const struct env_rcpt *r, enum retry_class cls)
{
    wchar_t wid[ENV_ID_MAX + 1], who[600], why[QUEUE_WHY_MAX], extra[64];
    char a[600];
    tracking_rcpt(m->id, &m->env, r, cls);
    utf8_to_wide(m->id, wid, ARRAYSIZE(wid));
    addr_mailbox_text(&r->addr, a, sizeof a);
    utf8_to_wide(a, who, ARRAYSIZE(who));
    utf8_to_wide(r->why, why, ARRAYSIZE(why));
    if (cls == RETRY_TRANSIENT && (r->attempts == 1 || r->attempts == SET->policy.n_first + 1) &&
        !deferred_for_space(r)) {
        char when[64];
        clock_rfc5322(r->next_attempt, when, sizeof when);
        wchar_t wn[16], ww[64];
        _snwprintf(wn, ARRAYSIZE(wn), L"%u", r->attempts);
        utf8_to_wide(when, ww, ARRAYSIZE(ww));
        event(EVENTLOG_WARNING_TYPE, MSG_QUEUE_DEFERRED, LOC_QUEUE_DEFER, 0, 5,
              (const wchar_t *[]){ wid, who, wn, ww, why });
    } else if (cls == RETRY_PERMANENT) {
        char from[600];
        wchar_t wfrom[600];
        addr_mailbox_text(&m->env.from, from, sizeof from);
        utf8_to_wide(from, wfrom, ARRAYSIZE(wfrom));
        if (r->status[0] == '4') {
            _snwprintf(extra, ARRAYSIZE(extra), L"%lu seconds",
                       (unsigned long)SET->policy.expire);
            event(EVENTLOG_WARNING_TYPE, MSG_QUEUE_EXPIRED, LOC_QUEUE_EXPIRE, 0, 5,
                  (const wchar_t *[]){ wid, wfrom, who, extra, why });
        } else {
            event(EVENTLOG_WARNING_TYPE, MSG_MESSAGE_BOUNCED, LOC_QUEUE_NDR, 0, 4,
                  (const wchar_t *[]){ wid, wfrom, who, why });
        }
    }
}

/* Every job of m has ended: NDRs, then the envelope, then the index. */
static void finalize(struct qmsg *m)
{
    struct notices_msg nm = { m->id, &m->env, m->content, m->len };
    notices_failures(&SET->nc, &nm);
    int64_t due;
    int done = env_done(&m->env);
    if (done) {
        spool_remove(m->id, 0);
        due = -1;
    } else {
        spool_update_env(&m->env);
        due = env_next_attempt(&m->env);
    }
    free(m->content);
    m->content = NULL;
    env_free(&m->env);
    env_init(&m->env);
    EnterCriticalSection(&q.lock);
    if (done)
        index_remove(m);
    else
        set_due(m, due);
    WakeConditionVariable(&q.sched_cv);
    LeaveCriticalSection(&q.lock);
}

/* Results of one job into the envelope (res[i] for recipient i, or res[0]
 * for all when same); the last job of the message finalizes it. Called by
 * delivery.h on a work thread. */
static void job_done(struct delivery_job *dj, const struct smtpc_result *res, int same,
                     const char *remote)
{
    struct job *j = (struct job *)dj;   /* dj is its first member */
    struct qmsg *m = j->m;
    int64_t now = clock_unix();
    EnterCriticalSection(&m->lock);
    for (size_t i = 0; i < j->dj.n; i++) {
        struct env_rcpt *r = &m->env.rcpt[j->idx[i]];
        enum retry_class cls = retry_record(&SET->policy, r, &res[same ? 0 : i], remote,
                                            m->env.arrived, now);
        rcpt_events(m, r, cls);
    }
    int last = --m->jobs == 0;
    LeaveCriticalSection(&m->lock);
    free(j->idx);
    free(j);
    if (last)
        finalize(m);
}


/* Scheduling ---------------------------------------------------------------- */

/* A dispatched message goes back to waiting, due at due, without its
 * envelope and content in memory. */
static void release(struct qmsg *m, int64_t due)
{
    free(m->content);
    m->content = NULL;
    env_free(&m->env);
    env_init(&m->env);
    EnterCriticalSection(&q.lock);
    set_due(m, due);
    LeaveCriticalSection(&q.lock);
}

/* Look at one due message: notices, then jobs for its due recipients.
 * flush (`imsvc queue retry --all|--destination`): first make its deferred
 * recipients for that destination ("" all) due now; *flushed (if not NULL)
 * gets how many were. */
static void dispatch(struct qmsg *m, const char *flush, size_t *flushed)
{
    int64_t now = clock_unix();
    if (flushed)
        *flushed = 0;
    DWORD err = spool_read_env(m->id, 0, &m->env);
    if (!err)
        err = spool_read_content(m->id, 0, &m->content, &m->len);
    if (err) {
        wchar_t what[200];
        _snwprintf(what, ARRAYSIZE(what), L"cannot read queued message %hs; it is tried again "
                   L"in %d seconds", m->id, QUEUE_READ_RETRY);
        what[ARRAYSIZE(what) - 1] = 0;
        event(EVENTLOG_ERROR_TYPE, MSG_SPOOL_ERROR, LOC_QUEUE_READ, err, 1,
              (const wchar_t *[]){ what });
        release(m, now + QUEUE_READ_RETRY);
        return;
    }
    m->arrived = m->env.arrived;
    m->eight_bit = mime_has_8bit(m->content, m->len);
    if (flush) {
        size_t k = qmgr_flush(&m->env, &SET->rc, flush);
        if (flushed)
            *flushed = k;
    }

    /* What is due, late or unroutable, and where the due recipients go
     * (core/qmgr.h). */
    struct qmgr_plan pl;
    if (qmgr_plan(&m->env, now, &SET->policy, &SET->rc, &pl) != 0) {
        release(m, now + QUEUE_READ_RETRY);
        return;
    }
    int changed = 0;
    if (pl.n_late) {
        struct notices_msg nm = { m->id, &m->env, m->content, m->len };
        notices_delay(&SET->nc, &nm, pl.late, pl.n_late);
        changed = 1;
    }
    for (size_t i = 0; i < pl.n_bad; i++) {
        struct env_rcpt *r = &m->env.rcpt[pl.bad[i].idx];
        rcpt_events(m, r, retry_record(&SET->policy, r, &pl.bad[i].result, "", m->env.arrived,
                                       now));
        changed = 1;
    }
    size_t n_g = pl.n_groups;
    if (n_g == 0) {
        qmgr_plan_free(&pl);
        if (!changed && !env_done(&m->env)) {
            release(m, env_next_attempt(&m->env));
            return;
        }
        finalize(m);
        return;
    }
    struct job **jobs = calloc(n_g, sizeof *jobs);
    int ok = jobs != NULL;
    for (size_t k = 0; ok && k < n_g; k++)
        ok = (jobs[k] = calloc(1, sizeof **jobs)) != NULL;
    if (!ok) {
        for (size_t k = 0; jobs && k < n_g; k++)
            free(jobs[k]);
        free(jobs);
        qmgr_plan_free(&pl);
        release(m, now + QUEUE_READ_RETRY);
        return;
    }
    m->jobs = (int)n_g;
    for (size_t k = 0; k < n_g; k++) {
        struct qmgr_group *g = &pl.groups[k];
        struct job *j = jobs[k];
        j->m = m;
        j->idx = g->idx;   /* the job's now: freed by job_done */
        g->idx = NULL;
        j->dj = (struct delivery_job){
            .id = m->id, .env = &m->env, .content = m->content, .len = m->len,
            .eight_bit = m->eight_bit, .idx = j->idx, .n = g->n, .done = job_done,
        };
    }
    /* delivery_submit copies the route and key; a job may finish before
     * the next is submitted, but the message is finalized by its last */
    for (size_t k = 0; k < n_g; k++)
        delivery_submit(&pl.groups[k].route, pl.groups[k].key, &jobs[k]->dj);
    qmgr_plan_free(&pl);
    free(jobs);
}

/* Requests from `imsvc queue retry|delete` -------------------------------- */

/* q.lock held. */
static struct qmsg *index_find(const char *id)
{
    for (size_t i = 0; i < q.n_msgs; i++)
        if (strcmp(q.msgs[i]->id, id) == 0)
            return q.msgs[i];
    return NULL;
}

/* `imsvc queue retry --all` (dest "") or `--destination dest`: every
 * message not in delivery now is looked at at once, its deferred
 * recipients for dest made due, as Postfix's `postqueue -f` does; a
 * destination marked unreachable is tried again. One request instead of a
 * `queue retry ID` each (449 of those took 7.5 minutes after a smart host
 * outage). Held messages stay held: releasing one is `queue retry ID`. */
static void ctl_flush(const char *dest, int *failed, char *text, size_t text_len)
{
    delivery_revive();
    EnterCriticalSection(&q.lock);
    size_t n = 0, busy = 0, total = q.n_msgs;
    struct qmsg **list = total ? malloc(total * sizeof *list) : NULL;
    for (size_t i = 0; list && i < total; i++) {
        struct qmsg *m = q.msgs[i];
        if (m->busy) {
            busy++;
            continue;
        }
        ready_unlink(m);
        m->busy = 1;
        list[n++] = m;
    }
    LeaveCriticalSection(&q.lock);
    if (!list && total) {
        *failed = 1;
        snprintf(text, text_len, "out of memory; nothing was retried");
        return;
    }
    size_t messages = 0, recipients = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        dispatch(list[i], dest, &k);   /* releases or hands on each one */
        messages += k > 0;
        recipients += k;
    }
    free(list);
    *failed = 0;
    snprintf(text, text_len, "%zu message%s (%zu deferred recipient%s%s%s) %s being tried now; "
             "%zu more %s in delivery already", messages, messages == 1 ? "" : "s", recipients,
             recipients == 1 ? "" : "s", dest[0] ? " for " : "", dest,
             messages == 1 ? "is" : "are", busy, busy == 1 ? "was" : "were");
}

/* A request from `imsvc queue retry|delete` (queuectl.h): 0 with the
 * answer, or 1 to leave it for a later scan. */
static int ctl_handle(void *arg, enum ctlreq_action action, const char *id, int *failedp,
                      char *text, size_t text_len)
{
    (void)arg;
    int failed = 0;
    if (action == CTLREQ_FLUSH) {
        ctl_flush(id, failedp, text, text_len);
        return 0;
    }
    wchar_t held_env[MAX_PATH];
    int held = spool_path(spool_dir(), id, 1, L"env", held_env, MAX_PATH) == 0 &&
               GetFileAttributesW(held_env) != INVALID_FILE_ATTRIBUTES;
    if (action == CTLREQ_DELETE && held) {
        failed = spool_remove(id, 1) != ERROR_SUCCESS;
        snprintf(text, text_len, failed ? "cannot delete %s" : "%s deleted from Hold (no "
                 "notification was sent)", id);
    } else if (action == CTLREQ_RETRY && held) {
        failed = spool_release(id) != ERROR_SUCCESS;
        if (!failed) {
            EnterCriticalSection(&q.lock);
            index_add(id, 0);
            WakeConditionVariable(&q.sched_cv);
            LeaveCriticalSection(&q.lock);
        }
        snprintf(text, text_len, failed ? "cannot release %s" : "%s released from Hold; "
                 "delivery starts now", id);
    } else {
        EnterCriticalSection(&q.lock);
        struct qmsg *m = index_find(id);
        int busy = m && m->busy;
        if (m && !busy) {
            ready_unlink(m);
            m->busy = 1;
        }
        LeaveCriticalSection(&q.lock);
        if (!m) {
            failed = 1;
            snprintf(text, text_len, "there is no queued message %s", id);
        } else if (busy) {
            return 1;   /* a delivery round is running: the request waits for the next tick */
        } else if (action == CTLREQ_DELETE) {
            failed = spool_remove(id, 0) != ERROR_SUCCESS;
            EnterCriticalSection(&q.lock);
            if (failed)
                set_due(m, m->due);
            else
                index_remove(m);
            LeaveCriticalSection(&q.lock);
            snprintf(text, text_len, failed ? "cannot delete %s" : "%s deleted (no "
                     "notification was sent)", id);
        } else {
            failed = spool_retry_now(id) != ERROR_SUCCESS;
            EnterCriticalSection(&q.lock);
            set_due(m, 0);
            WakeConditionVariable(&q.sched_cv);
            LeaveCriticalSection(&q.lock);
            snprintf(text, text_len, failed ? "cannot reschedule %s" : "%s is being tried "
                     "now", id);
        }
    }
    *failedp = failed;
    return 0;
}

void queue_counts(struct queue_counts *c)
{
    memset(c, 0, sizeof *c);
    EnterCriticalSection(&q.lock);
    c->messages = q.n_msgs;
    for (size_t i = 0; i < q.n_msgs; i++) {
        struct qmsg *m = q.msgs[i];
        if (m->busy)
            c->in_delivery++;
        else
            c->waiting++;
        if (m->arrived && (c->oldest_arrived == 0 || m->arrived < c->oldest_arrived))
            c->oldest_arrived = m->arrived;
    }
    c->paused = q.paused;
    LeaveCriticalSection(&q.lock);
}

/* Due messages onto the ready list (q.lock held): a full pass over the
 * index, only when the next due time has come or something asked for it. */
static void scan_due(int64_t now)
{
    if (!q.rescan && now < q.next_due)
        return;
    q.rescan = 0;
    q.next_due = INT64_MAX;
    for (size_t i = 0; i < q.n_msgs; i++) {
        struct qmsg *m = q.msgs[i];
        if (!m->busy && !m->ready)
            set_due_at(m, m->due, now);
    }
}

static DWORD WINAPI scheduler_main(void *arg)
{
    (void)arg;
    int64_t last_ctl = 0;
    struct qmsg *batch[QUEUE_BATCH];
    EnterCriticalSection(&q.lock);
    while (!q.stop) {
        int64_t now = clock_unix();
        size_t nb = 0;
        if (!q.paused) {
            scan_due(now);
            while (nb < QUEUE_BATCH && q.ready_head) {
                struct qmsg *m = q.ready_head;
                ready_unlink(m);
                m->busy = 1;
                batch[nb++] = m;
            }
        }
        LeaveCriticalSection(&q.lock);
        for (size_t i = 0; i < nb; i++)
            dispatch(batch[i], NULL, NULL);
        if (now != last_ctl) {   /* once a second, not on every wake-up */
            queuectl_scan(ctl_handle, NULL);
            last_ctl = now;
        }
        EnterCriticalSection(&q.lock);
        if (q.stop)
            break;
        /* connections parked long enough close; room they leave, or a
         * destination no longer dead, a pause lifted, starts deliveries */
        LeaveCriticalSection(&q.lock);
        delivery_tick();
        EnterCriticalSection(&q.lock);
        DWORD wait = QUEUE_TICK_MS;
        int64_t next = q.next_due;
        if (next != INT64_MAX && next > now && (next - now) * 1000 < (int64_t)wait)
            wait = (DWORD)((next - now) * 1000);
        if (nb == 0 && (q.paused || !q.ready_head))
            SleepConditionVariableCS(&q.sched_cv, &q.lock, wait);
    }
    LeaveCriticalSection(&q.lock);
    return 0;
}

/* Start and stop ------------------------------------------------------------ */

static void load_one(void *arg, const char *id, int held)
{
    unsigned *count = arg;
    if (held)
        return;
    EnterCriticalSection(&q.lock);
    if (index_add(id, 0))
        (*count)++;
    LeaveCriticalSection(&q.lock);
}


static struct settings *settings_new(const struct imsvc_config *cfg)
{
    struct settings *ns = calloc(1, sizeof *ns);
    if (!ns)
        return NULL;
    ns->cfg = *cfg;
    config_retry_policy(cfg, &ns->policy);
    ns->rc.local = cfg->lists ? &cfg->lists->local_domains : NULL;   /* as config_load parsed it */
    wide_to_utf8(cfg->smart_host, ns->smarthost, sizeof ns->smarthost);
    ns->rc.smarthost = ns->smarthost;
    ns->rc.smarthost_default_port = 25;
    ns->rc.outbound_port = cfg->outbound_port;
    ns->rc.routes = cfg->lists ? &cfg->lists->routes : NULL;   /* per-domain routes */
    delivery_config_make(cfg, ns->policy.n_first ? ns->policy.first[0] : 0, &ns->dc);
    notices_config_make(cfg, ns->policy.expire, &ns->nc);
    return ns;
}

DWORD queue_start(const struct imsvc_config *cfg, unsigned recovered)
{
    memset(&q, 0, sizeof q);
    q.next_due = INT64_MAX;
    struct settings *ns = settings_new(cfg);
    if (!ns)
        return ERROR_NOT_ENOUGH_MEMORY;
    current = ns;
    CreateDirectoryW(SET->dc.drop_dir, NULL);
    CreateDirectoryW(SET->nc.badmail_dir, NULL);
    InitializeCriticalSection(&q.lock);
    InitializeConditionVariable(&q.sched_cv);

    wchar_t qdir[MAX_PATH];
    config_queue_dir(cfg, qdir, MAX_PATH);
    spool_set_notify(on_committed);
    DWORD err;
    unsigned count = 0, bad = 0;
    spool_scan(qdir, load_one, &count, &bad);
    wchar_t wc[16], wr[16];
    _snwprintf(wc, ARRAYSIZE(wc), L"%u", count);
    _snwprintf(wr, ARRAYSIZE(wr), L"%u", recovered);
    event(EVENTLOG_INFORMATION_TYPE, MSG_QUEUE_RECOVERED, LOC_SPOOL_RECOVER, 0, 2,
          (const wchar_t *[]){ wc, wr });

    q.running = 1;
    delivery_start(cfg->max_outbound, &SET->dc);
    q.scheduler = CreateThread(NULL, 0, scheduler_main, NULL, 0, NULL);
    if (!q.scheduler) {
        err = GetLastError();
        queue_stop(0);
        return err;
    }
    return ERROR_SUCCESS;
}

void queue_reconfigure(const struct imsvc_config *cfg)
{
    struct settings *ns = settings_new(cfg);
    if (!ns)
        return;
    CreateDirectoryW(ns->dc.drop_dir, NULL);
    CreateDirectoryW(ns->nc.badmail_dir, NULL);
    current = ns;
    delivery_configure(&ns->dc);
    EnterCriticalSection(&q.lock);
    q.rescan = 1;
    WakeAllConditionVariable(&q.sched_cv);
    LeaveCriticalSection(&q.lock);
}

void queue_pause(int paused)
{
    EnterCriticalSection(&q.lock);
    q.paused = paused;
    q.rescan = 1;
    WakeAllConditionVariable(&q.sched_cv);
    LeaveCriticalSection(&q.lock);
    delivery_pause(paused);
}

void queue_stop(DWORD wait_ms)
{
    if (!q.running && !q.scheduler)
        return;
    EnterCriticalSection(&q.lock);
    q.stop = 1;
    WakeAllConditionVariable(&q.sched_cv);
    LeaveCriticalSection(&q.lock);
    DWORD deadline = GetTickCount() + wait_ms;
    if (q.scheduler) {
        WaitForSingleObject(q.scheduler, wait_ms);
        CloseHandle(q.scheduler);
    }
    if (q.running)
        delivery_stop(deadline);
    /* Deliveries still running after the wait are abandoned; their messages
     * are on disk in the state before this round and are tried again. */
    spool_set_notify(NULL);
    q.running = 0;
    q.scheduler = NULL;
}
