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
#include <windns.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue.h"

#include "clock.h"
#include "convert.h"
#include "dsn.h"
#include "eventlog.h"
#include "filter.h"
#include "location.h"
#include "mime.h"
#include "outbound.h"
#include "pickup.h"
#include "retry.h"
#include "route.h"
#include "secret.h"
#include "smtp_server.h"
#include "spool.h"
#include "storage.h"
#include "utf.h"

#define QUEUE_DOMAINS_MAX   64      /* LocalDomains entries used for routing */
#define QUEUE_MX_MAX        16      /* MX hosts tried per domain */
#define QUEUE_READ_RETRY    30      /* seconds before a message that could not be read is tried again */
#define QUEUE_DEAD_SECS     60      /* a destination that refused a connection is left alone this long */
#define QUEUE_TICK_MS       1000u   /* scheduler wake-up at the latest */
#define QUEUE_KEEP_MS       2000u   /* an idle delivery connection waits this long for more */
#define QUEUE_WORKERS_MIN   2u      /* delivery threads kept when there is nothing to do */
#define QUEUE_WORKER_IDLE_MS 30000u /* a thread beyond those ends after this long idle */
#define QUEUE_STATUS_SECS   2       /* status.txt refresh */
#define QUEUE_PASSWORD_MAX  256u
#define QUEUE_WHY_MAX       1400u

struct qmsg {
    char id[ENV_ID_MAX + 1];
    int64_t due;              /* when to look at it next; INT64_MAX while busy */
    int64_t arrived;          /* 0 until its envelope was read once */
    int busy;                 /* dispatched: jobs running, or being read */
    size_t slot;              /* index in q.msgs */
    /* while busy */
    CRITICAL_SECTION lock;
    int jobs;
    struct envelope env;
    unsigned char *content;
    size_t len;
    int eight_bit;
};

struct job {
    struct qmsg *m;
    size_t *idx;              /* recipients of m->env this job delivers */
    size_t n;
    struct job *next;
};

struct dest {
    char key[ROUTE_KEY_MAX];
    struct route route;
    struct job *head, *tail;
    size_t waiting;           /* jobs in the list */
    unsigned active;          /* delivery threads on it */
    unsigned idle;            /* ... of which holding an open connection, waiting for a job */
    int64_t dead_until;       /* unreachable until then: jobs fail with dead_fail */
    struct smtpc_result dead_fail;
    struct dest *next;
};

/* What the configuration says, prepared. Never changed once published: a
 * PARAMCHANGE publishes a new one (the old stays allocated, as a thread may
 * still be reading it). */
struct settings {
    struct imsvc_config cfg;
    struct retry_policy policy;
    struct route_config rc;
    char domains_buf[CONFIG_STR_MAX * 3];
    const char *domains[QUEUE_DOMAINS_MAX];
    char smarthost[300];
    char helo[256];
    wchar_t sh_domain[128], sh_user[256], sh_password[QUEUE_PASSWORD_MAX + 1];
    wchar_t drop_dir[MAX_PATH], badmail_dir[MAX_PATH], status_path[MAX_PATH];
    struct tls_policy tls_policy;      /* the smart host's, from TlsMinVersion and the rest */
};

static struct settings *volatile current;
#define SET current

static struct {
    CRITICAL_SECTION lock;
    CONDITION_VARIABLE sched_cv, work_cv;
    struct qmsg **msgs;
    size_t n_msgs, cap_msgs;
    struct dest *dests;
    int stop, paused, running;
    LONG active_out;          /* connections open now */
    HANDLE scheduler;
    HANDLE *workers;          /* MaxOutbound slots; NULL: never used */
    unsigned char *exited;    /* the slot's thread has returned */
    size_t n_workers;         /* slots */
    size_t alive, idle;       /* delivery threads running, and waiting for work */
    volatile LONG seq;
} q;

/* Small things -------------------------------------------------------------- */



static void event(WORD type, DWORD id, DWORD location, DWORD status, int n,
                  const wchar_t *const *strings)
{
    evlog_report(type, CAT_QUEUING, id, location, status, n, strings);
}

static void mailbox_text(const struct addr_path *p, char *out, size_t n)
{
    if (p->null_path || addr_format_mailbox(p, out, n) < 0)
        snprintf(out, n, "%s", p->null_path ? "<>" : "(unprintable)");
}

static int has_8bit(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] & 0x80)
            return 1;
    return 0;
}

/* The message index --------------------------------------------------------- */

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
    m->due = due;
    m->slot = q.n_msgs;
    InitializeCriticalSection(&m->lock);
    env_init(&m->env);
    q.msgs[q.n_msgs++] = m;
    return m;
}

/* q.lock held. */
static void index_remove(struct qmsg *m)
{
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

/* Submitting a message made here ----------------------------------------- */

DWORD queue_submit(const void *content, size_t len, struct envelope *env)
{
    struct spool_msg *sm;
    DWORD err = spool_create(&sm);
    if (err)
        return err;
    snprintf(env->id, sizeof env->id, "%s", spool_msg_id(sm));
    env->arrived = clock_unix();
    err = spool_write(sm, content, len);
    if (err) {
        spool_abort(sm);
        return err;
    }
    return spool_commit(sm, env, 0);
}

/* Badmail and NDRs ---------------------------------------------------------- */

/* A message nobody can be told about: content and reason side by side. */
static void badmail(const struct qmsg *m, const char *reason)
{
    wchar_t eml[MAX_PATH], txt[MAX_PATH];
    _snwprintf(eml, MAX_PATH, L"%ls\\%hs.eml", SET->badmail_dir, m->id);
    _snwprintf(txt, MAX_PATH, L"%ls\\%hs.txt", SET->badmail_dir, m->id);
    eml[MAX_PATH - 1] = txt[MAX_PATH - 1] = 0;
    CreateDirectoryW(SET->badmail_dir, NULL);
    DWORD err = ERROR_SUCCESS;
    HANDLE h = CreateFileW(eml, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
    DWORD k;
    if (h == INVALID_HANDLE_VALUE ||
        !WriteFile(h, m->content, (DWORD)m->len, &k, NULL) || k != m->len ||
        !FlushFileBuffers(h))
        err = GetLastError();
    if (h != INVALID_HANDLE_VALUE)
        CloseHandle(h);
    h = CreateFileW(txt, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
    if (h == INVALID_HANDLE_VALUE ||
        !WriteFile(h, reason, (DWORD)strlen(reason), &k, NULL) || !FlushFileBuffers(h))
        err = err ? err : GetLastError();
    if (h != INVALID_HANDLE_VALUE)
        CloseHandle(h);
    wchar_t wid[ENV_ID_MAX + 1], why[200];
    utf8_to_wide(m->id, wid, ARRAYSIZE(wid));
    _snwprintf(why, ARRAYSIZE(why), L"it came from the null sender <>, so it is itself a "
               L"notification");
    why[ARRAYSIZE(why) - 1] = 0;
    event(EVENTLOG_WARNING_TYPE, MSG_BADMAIL, LOC_QUEUE_BADMAIL, err, 3,
          (const wchar_t *[]){ wid, why, eml });
}

/* Compose and queue a DSN about recipients which[] of m. Returns 1 if a
 * notice was queued or none was wanted, 0 if it must go to Badmail. */
static int send_notice(struct qmsg *m, enum dsn_action action, const size_t *which, size_t n,
                       const char *reason)
{
    char date[64], arrival[64], until[64], msgid[ENV_ID_MAX + 300];
    int64_t now = clock_unix();
    clock_rfc5322(now, date, sizeof date);
    clock_rfc5322(m->env.arrived, arrival, sizeof arrival);
    clock_rfc5322(m->env.arrived + SET->policy.expire, until, sizeof until);
    snprintf(msgid, sizeof msgid, "<%s.%s.%ld@%s>", action == DSN_FAILED ? "ndr" : "delay",
             m->id, (long)InterlockedIncrement(&q.seq), SET->helo);
    struct dsn_request r = {
        .action = action, .env = &m->env, .which = which, .n_which = n, .host = SET->helo,
        .date = date, .arrival_date = arrival, .message_id = msgid,
        .retry_until = action == DSN_DELAYED ? until : NULL,
        .original = (const char *)m->content, .original_len = m->len,
        /* NdrContent: the sender may be forged, so by default only headers go back */
        .content = _wcsicmp(SET->cfg.ndr_content, L"full") == 0 ? DSN_CONTENT_FULL
                                                                : DSN_CONTENT_HEADERS,
    };
    size_t len = 0;
    enum dsn_result res = dsn_compose(&r, NULL, 0, &len);
    char *buf = NULL;
    if (res == DSN_TOO_SMALL) {
        buf = malloc(len + 1);
        res = buf ? dsn_compose(&r, buf, len + 1, &len) : DSN_BAD_INPUT;
    }
    if (res == DSN_NULL_SENDER) {
        free(buf);
        return 0;
    }
    if (res == DSN_NOBODY) {
        free(buf);
        return 1;
    }
    wchar_t wid[ENV_ID_MAX + 1], wfrom[600], wnew[ENV_ID_MAX + 1], wrcpts[1200], wreason[600];
    char from[600], rcpts[1200] = "";
    mailbox_text(&m->env.from, from, sizeof from);
    for (size_t i = 0, o = 0; i < n && o < sizeof rcpts - 2; i++) {
        char one[600];
        mailbox_text(&m->env.rcpt[which[i]].addr, one, sizeof one);
        int w = snprintf(rcpts + o, sizeof rcpts - o, "%s%s", i ? ", " : "", one);
        if (w < 0 || (size_t)w >= sizeof rcpts - o)
            break;
        o += (size_t)w;
    }
    utf8_to_wide(m->id, wid, ARRAYSIZE(wid));
    utf8_to_wide(from, wfrom, ARRAYSIZE(wfrom));
    utf8_to_wide(rcpts, wrcpts, ARRAYSIZE(wrcpts));
    utf8_to_wide(reason, wreason, ARRAYSIZE(wreason));
    DWORD err = ERROR_INVALID_DATA;
    struct envelope ne;
    env_init(&ne);
    ne.from.null_path = 1;
    ne.body = has_8bit((const unsigned char *)buf, buf ? len : 0) ? ADDR_BODY_8BITMIME
                                                                  : ADDR_BODY_NONE;
    if (res == DSN_OK && env_add_rcpt(&ne, &m->env.from, NULL) >= 0)
        err = queue_submit(buf, len, &ne);
    free(buf);
    if (err) {
        wchar_t what[300];
        _snwprintf(what, ARRAYSIZE(what), L"cannot queue the %ls for message %ls to %ls",
                   action == DSN_FAILED ? L"non-delivery report" : L"delay notification",
                   wid, wfrom);
        what[ARRAYSIZE(what) - 1] = 0;
        event(EVENTLOG_ERROR_TYPE, MSG_SPOOL_ERROR, LOC_QUEUE_NDR, err, 1,
              (const wchar_t *[]){ what });
        env_free(&ne);
        return 0;
    }
    utf8_to_wide(ne.id, wnew, ARRAYSIZE(wnew));
    env_free(&ne);
    if (action == DSN_FAILED)
        event(EVENTLOG_INFORMATION_TYPE, MSG_NDR_SENT, LOC_QUEUE_NDR, 0, 5,
              (const wchar_t *[]){ wid, wfrom, wnew, wrcpts, wreason });
    else
        event(EVENTLOG_INFORMATION_TYPE, MSG_DELAY_SENT, LOC_QUEUE_NDR, 0, 4,
              (const wchar_t *[]){ wid, wfrom, wnew, wrcpts });
    return 1;
}

/* Finishing a message's round ---------------------------------------------- */

/* The drop directory's name as a recipient's remote host. */
#define DROP_REMOTE "drop directory"

/* Deferred because the data directory's disk is full (deliver_drop's 4.3.1):
 * event 4150 reports that once for every message. */
static int deferred_for_space(const struct env_rcpt *r)
{
    return strcmp(r->remote, DROP_REMOTE) == 0 && strcmp(r->status, "4.3.1") == 0;
}

static void rcpt_events(const struct qmsg *m, const struct env_rcpt *r, enum retry_class cls)
{
    wchar_t wid[ENV_ID_MAX + 1], who[600], why[QUEUE_WHY_MAX], extra[64];
    char a[600];
    utf8_to_wide(m->id, wid, ARRAYSIZE(wid));
    mailbox_text(&r->addr, a, sizeof a);
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
        mailbox_text(&m->env.from, from, sizeof from);
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
    size_t *which = malloc((m->env.n_rcpt ? m->env.n_rcpt : 1) * sizeof *which);
    size_t n = 0;
    char reason[ENV_WHY_MAX + 32] = "";
    for (size_t i = 0; which && i < m->env.n_rcpt; i++) {
        struct env_rcpt *r = &m->env.rcpt[i];
        if (r->state == ENV_FAILED && !(r->notified & ENV_NOTIFIED_FAILURE)) {
            which[n++] = i;
            if (!reason[0])
                snprintf(reason, sizeof reason, "%s %s", r->status, r->why);
        }
    }
    if (n > 0) {
        if (!send_notice(m, DSN_FAILED, which, n, reason)) {
            char text[ENV_WHY_MAX * 2 + 2048];
            size_t o = 0;
            for (size_t i = 0; i < n && o < sizeof text - 1; i++) {
                const struct env_rcpt *r = &m->env.rcpt[which[i]];
                char a[600];
                mailbox_text(&r->addr, a, sizeof a);
                int w = snprintf(text + o, sizeof text - o,
                                 "Message %s could not be delivered to %s (status %s).\r\n"
                                 "Reason: %s\r\n%s%s%s"
                                 "No notification was sent: the message came from the null "
                                 "sender <>.\r\n", m->id, a, r->status, r->why,
                                 r->reply[0] ? "Remote reply: " : "", r->reply,
                                 r->reply[0] ? "\r\n" : "");
                if (w < 0 || (size_t)w >= sizeof text - o)
                    break;
                o += (size_t)w;
            }
            badmail(m, text);
        }
        for (size_t i = 0; i < n; i++)
            m->env.rcpt[which[i]].notified |= ENV_NOTIFIED_FAILURE;
    }
    free(which);
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
    if (done) {
        index_remove(m);
    } else {
        m->due = due;
        m->busy = 0;
    }
    WakeConditionVariable(&q.sched_cv);
    LeaveCriticalSection(&q.lock);
}

/* Results of one job into the envelope (res[i] for recipient i, or res[0]
 * for all when same); the last job of the message finalizes it. */
static void job_done(struct job *j, const struct smtpc_result *res, int same, const char *remote)
{
    struct qmsg *m = j->m;
    int64_t now = clock_unix();
    EnterCriticalSection(&m->lock);
    for (size_t i = 0; i < j->n; i++) {
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

static void local_result(struct smtpc_result *r, enum smtpc_outcome o, const char *status,
                         const char *why)
{
    memset(r, 0, sizeof *r);
    r->outcome = o;
    r->reason = SMTPC_R_NONE;
    snprintf(r->status, sizeof r->status, "%s", status);
    snprintf(r->why, sizeof r->why, "%s", why);
}

/* Delivery: the drop directory --------------------------------------------- */

static void deliver_drop(struct job *j)
{
    struct qmsg *m = j->m;
    wchar_t tmp[MAX_PATH], final[MAX_PATH];
    _snwprintf(tmp, MAX_PATH, L"%ls\\%hs.tmp", SET->drop_dir, m->id);
    _snwprintf(final, MAX_PATH, L"%ls\\%hs.eml", SET->drop_dir, m->id);
    tmp[MAX_PATH - 1] = final[MAX_PATH - 1] = 0;
    struct smtpc_result r;
    DWORD err = ERROR_SUCCESS;
    if (GetFileAttributesW(final) == INVALID_FILE_ATTRIBUTES) {
        /* Written whole and flushed before it gets its name: a reader of the
         * drop directory never sees half a message. */
        HANDLE h = CreateFileW(tmp, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
        DWORD k = 0;
        size_t done = 0;
        if (h == INVALID_HANDLE_VALUE)
            err = GetLastError();
        /* A short write (Wine, on a full disk) is followed by one that says why. */
        while (!err && done < m->len) {
            if (!WriteFile(h, m->content + done, (DWORD)(m->len - done), &k, NULL))
                err = GetLastError();
            else if (k == 0)
                err = ERROR_WRITE_FAULT;
            done += k;
        }
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
        local_result(&r, SMTPC_TRANSIENT, rp.status, why);
        wchar_t what[400];
        _snwprintf(what, ARRAYSIZE(what), L"cannot write message %hs to the drop directory %ls",
                   m->id, SET->drop_dir);
        what[ARRAYSIZE(what) - 1] = 0;
        if (!spool_note_failure(err, LOC_QUEUE_DROP, 0, L"writing message %hs to the drop "
                                L"directory %ls", m->id, SET->drop_dir))
            event(EVENTLOG_ERROR_TYPE, MSG_SPOOL_ERROR, LOC_QUEUE_DROP, err, 1,
                  (const wchar_t *[]){ what });
    } else {
        local_result(&r, SMTPC_OK, "2.0.0", "delivered to the drop directory");
    }
    job_done(j, &r, 1, DROP_REMOTE);
}

/* Delivery: SMTP ------------------------------------------------------------ */

static void outbound_options(const struct route *rt, char *port, size_t port_len,
                             struct outbound_opts *o)
{
    memset(o, 0, sizeof *o);
    snprintf(port, port_len, "%u", rt->port);
    o->host = rt->host;
    o->port = port;
    o->helo = SET->helo;
    o->who = L"queue delivery";
    if (rt->kind == ROUTE_SMARTHOST) {
        o->tls = SET->cfg.smart_host_tls == 0 ? SMTPC_TLS_OFF
               : SET->cfg.smart_host_tls == 2 ? SMTPC_TLS_REQUIRED : SMTPC_TLS_OPPORTUNISTIC;
        o->trust = SET->cfg.smart_host_trust ? TLS_TRUST_ANY : TLS_TRUST_VERIFY;
        o->policy = &SET->tls_policy;
        o->auth = SET->cfg.smart_host_auth == 0 ? SMTPC_AUTH_NONE
                : SET->cfg.smart_host_auth == 2 ? SMTPC_AUTH_REQUIRED : SMTPC_AUTH_IF_OFFERED;
        if (SET->sh_user[0]) {
            o->domain = SET->sh_domain;
            o->user = SET->sh_user;
            o->password = SET->sh_password;
        }
    } else {
        /* MX: opportunistic TLS, as RFC 7435 has it: encrypt when offered,
         * never refuse to deliver over an unverifiable certificate */
        o->tls = SMTPC_TLS_OPPORTUNISTIC;
        o->trust = TLS_TRUST_ANY;
        o->auth = SMTPC_AUTH_NONE;
    }
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
        for (DNS_RECORDA *r = rec; r && n < QUEUE_MX_MAX; r = r->pNext) {
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
        local_result(fail, SMTPC_TRANSIENT, "4.4.3", why);
        return 0;
    } else if (st == DNS_ERROR_RCODE_NAME_ERROR) {
        /* the name does not exist: the A/AAAA fallback decides (it fails too) */
    }
    const char *self[2] = { SET->helo, "localhost" };
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
        local_result(fail, SMTPC_PERMANENT, "5.1.10", why);
        return 0;
    case ROUTE_MX_SELF:
        snprintf(why, sizeof why, "this server is the best MX host for %s but the domain is "
                 "not in LocalDomains: delivering would loop back here", rt->host);
        local_result(fail, SMTPC_PERMANENT, "5.4.6", why);
        return 0;
    }
    return 0;
}

static struct outbound *connect_dest(const struct route *rt, struct smtpc_result *fail)
{
    struct route_mx mx[QUEUE_MX_MAX];
    size_t n = 1;
    if (rt->kind == ROUTE_MX) {
        n = mx_hosts(rt, mx, fail);
        if (n == 0)
            return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        struct route one = *rt;
        if (rt->kind == ROUTE_MX)
            snprintf(one.host, sizeof one.host, "%s", mx[i].host);
        char port[16];
        struct outbound_opts o;
        outbound_options(&one, port, sizeof port, &o);
        struct outbound *c;
        if (outbound_open(&o, &c, fail) == 0)
            return c;
        /* a permanent answer from one MX host is that host's: try the next */
    }
    return NULL;
}

/* 8-bit content to a next hop without 8BITMIME: convert outside signed
 * parts, or refuse. Returns the bytes to send (m->content or *copy), or
 * NULL with *fail set. */
static const unsigned char *prepare_content(struct qmsg *m, unsigned ext, unsigned char **copy,
                                            size_t *len, struct smtpc_result *fail)
{
    *copy = NULL;
    *len = m->len;
    if (!m->eight_bit || (ext & SC_EXT_8BITMIME))
        return m->content;
    struct mime_scan *scan = malloc(sizeof *scan);
    if (!scan) {
        local_result(fail, SMTPC_TRANSIENT, "4.3.0", "out of memory while converting to 7-bit");
        return NULL;
    }
    mime_scan(m->content, m->len, scan);
    const char *why = NULL;
    enum mime_verdict v = mime_conversion_verdict(scan, 0, &why);
    const unsigned char *out = NULL;
    char text[600];
    if (v == MIME_VERDICT_CONVERT || v == MIME_VERDICT_OK) {
        enum convert_result cr = convert_7bit(m->content, m->len, scan, copy, len, &why);
        if (cr == CONVERT_OK) {
            out = *copy;
        } else if (cr == CONVERT_UNCHANGED) {
            *len = m->len;
            out = m->content;
        } else if (cr == CONVERT_NOMEM) {
            local_result(fail, SMTPC_TRANSIENT, "4.3.0", "out of memory while converting to 7-bit");
        } else {
            snprintf(text, sizeof text, "The next hop does not accept 8-bit mail (no 8BITMIME) "
                     "and the message cannot be converted to 7-bit: %s", why ? why : "");
            local_result(fail, SMTPC_PERMANENT, "5.6.3", text);
        }
    } else {
        snprintf(text, sizeof text, "The next hop does not accept 8-bit mail (no 8BITMIME) and "
                 "%s", why ? why : "the message cannot be converted");
        local_result(fail, SMTPC_PERMANENT, "5.6.3", text);
    }
    free(scan);
    return out;
}

static int deliver_smtp(struct job *j, struct outbound *c)
{
    struct qmsg *m = j->m;
    struct smtpc_result fail;
    unsigned char *copy;
    size_t len;
    const unsigned char *content = prepare_content(m, outbound_extensions(c), &copy, &len, &fail);
    if (!content) {
        job_done(j, &fail, 1, outbound_peer(c));
        return 0;
    }
    char from[600];
    if (m->env.from.null_path || addr_format_mailbox(&m->env.from, from, sizeof from) < 0)
        from[0] = 0;
    char (*to)[600] = calloc(j->n, sizeof *to);
    const char **tp = calloc(j->n, sizeof *tp);
    struct smtpc_result *res = calloc(j->n, sizeof *res);
    if (!to || !tp || !res) {
        free(to), free(tp), free(res), free(copy);
        local_result(&fail, SMTPC_TRANSIENT, "4.3.0", "out of memory");
        job_done(j, &fail, 1, outbound_peer(c));
        return 0;
    }
    for (size_t i = 0; i < j->n; i++) {
        if (addr_format_mailbox(&m->env.rcpt[j->idx[i]].addr, to[i], sizeof to[i]) < 0)
            to[i][0] = 0;
        tp[i] = to[i];
    }
    struct smtpc_message msg = {
        .from = from, .to = tp, .n_to = j->n, .size = len,
        .eight_bit = has_8bit(content, len),
    };
    int rc = outbound_send(c, &msg, content, len, res, NULL);
    char peer[300];
    snprintf(peer, sizeof peer, "%s", outbound_peer(c));
    job_done(j, res, 0, peer);
    free(to), free(tp), free(res), free(copy);
    return rc;
}

/* Delivery threads ---------------------------------------------------------- */

/* q.lock held: a destination with work and room, or NULL. Jobs that
 * threads holding an idle connection to it will take are not offered: they
 * go over the open connection (reuse) rather than a new one. */
static struct dest *pick_dest(int64_t now)
{
    for (struct dest *d = q.dests; d; d = d->next)
        if (d->waiting > d->idle &&
            (d->active < SET->cfg.max_per_destination || d->dead_until > now))
            return d;
    return NULL;
}

static struct job *pop_job(struct dest *d)
{
    struct job *j = d->head;
    if (j) {
        d->head = j->next;
        if (!d->head)
            d->tail = NULL;
        d->waiting--;
    }
    return j;
}

static void push_job(struct dest *d, struct job *j)
{
    j->next = NULL;
    if (d->tail)
        d->tail->next = j;
    else
        d->head = j;
    d->tail = j;
    d->waiting++;
}

/* q.lock held: the next job for d; with an open connection, wait up to
 * QUEUE_KEEP_MS for one to come (messages arrive one at a time). */
static struct job *next_job(struct dest *d, int have_connection)
{
    struct job *j = q.stop ? NULL : pop_job(d);
    if (j || !have_connection)
        return j;
    DWORD start = GetTickCount();
    d->idle++;
    while (!q.stop && !q.paused && !(j = pop_job(d))) {
        DWORD spent = GetTickCount() - start;
        if (spent >= QUEUE_KEEP_MS)
            break;
        SleepConditionVariableCS(&q.work_cv, &q.lock, QUEUE_KEEP_MS - spent);
    }
    d->idle--;
    return j;
}

/* A destination that cannot be reached: every job waiting for it ends with
 * the same result, instead of one connection attempt each. */
static void fail_dest(struct dest *d, struct job *first, const struct smtpc_result *fail,
                      int record)
{
    char remote[ROUTE_HOST_MAX + 16];
    snprintf(remote, sizeof remote, "%s", d->route.host);
    EnterCriticalSection(&q.lock);
    struct job *rest = d->head;
    d->head = d->tail = NULL;
    d->waiting = 0;
    if (record && fail->outcome != SMTPC_PERMANENT) {
        /* never longer than the first retry, or short schedules would wait on it */
        uint32_t hold = QUEUE_DEAD_SECS;
        if (SET->policy.n_first && SET->policy.first[0] < hold)
            hold = SET->policy.first[0];
        d->dead_until = clock_unix() + hold;
        d->dead_fail = *fail;
    }
    LeaveCriticalSection(&q.lock);
    job_done(first, fail, 1, remote);
    while (rest) {
        struct job *next = rest->next;
        job_done(rest, fail, 1, remote);
        rest = next;
    }
}

/* Delivery threads are made as work needs them, up to MaxOutbound, and end
 * when idle (a thread costs about 1 MiB under Wine). */
static DWORD WINAPI worker_main(void *arg)
{
    size_t slot = (size_t)arg;
    EnterCriticalSection(&q.lock);
    q.idle--;             /* worker_spawn counted it idle before it ran */
    for (;;) {
        struct dest *d = NULL;
        DWORD idle_since = GetTickCount();
        q.idle++;
        while (!q.stop && (q.paused || !(d = pick_dest(clock_unix())))) {
            if (GetTickCount() - idle_since > QUEUE_WORKER_IDLE_MS && q.alive > QUEUE_WORKERS_MIN)
                break;
            SleepConditionVariableCS(&q.work_cv, &q.lock, QUEUE_TICK_MS);
        }
        q.idle--;
        if (q.stop || !d)
            break;
        d->active++;
        struct job *j = pop_job(d);
        if (d->dead_until > clock_unix()) {
            /* known unreachable: the waiting jobs are deferred with the
             * reason of the last attempt, without a connection each */
            struct smtpc_result fail = d->dead_fail;
            LeaveCriticalSection(&q.lock);
            fail_dest(d, j, &fail, 0);
            EnterCriticalSection(&q.lock);
            d->active--;
            continue;
        }
        LeaveCriticalSection(&q.lock);
        struct outbound *c = NULL;
        while (j) {
            if (d->route.kind == ROUTE_DROP) {
                deliver_drop(j);
            } else {
                if (!c) {
                    struct smtpc_result fail;
                    c = connect_dest(&d->route, &fail);
                    if (!c) {
                        fail_dest(d, j, &fail, 1);
                        j = NULL;
                        break;
                    }
                    InterlockedIncrement(&q.active_out);
                }
                if (deliver_smtp(j, c) != 0) {
                    outbound_close(c);
                    InterlockedDecrement(&q.active_out);
                    c = NULL;
                }
            }
            EnterCriticalSection(&q.lock);
            j = next_job(d, c != NULL);
            LeaveCriticalSection(&q.lock);
        }
        if (c) {
            outbound_close(c);
            InterlockedDecrement(&q.active_out);
        }
        EnterCriticalSection(&q.lock);
        d->active--;
    }
    q.alive--;
    q.exited[slot] = 1;
    LeaveCriticalSection(&q.lock);
    return 0;
}

/* q.lock held: one more delivery thread if none is idle and there is room. */
static void worker_spawn(void)
{
    if (q.idle > 0 || q.alive >= q.n_workers || q.stop)
        return;
    for (size_t i = 0; i < q.n_workers; i++) {
        if (q.workers[i] && !q.exited[i])
            continue;
        if (q.workers[i])
            CloseHandle(q.workers[i]);   /* its thread has returned or is returning */
        /* small stacks: the threads mostly wait on sockets */
        q.workers[i] = CreateThread(NULL, 256 * 1024, worker_main, (void *)i,
                                    STACK_SIZE_PARAM_IS_A_RESERVATION, NULL);
        q.exited[i] = 0;
        if (q.workers[i]) {
            q.alive++;
            q.idle++;    /* counted idle until it runs, so one burst makes one thread */
        }
        return;
    }
}

/* Scheduling ---------------------------------------------------------------- */

/* q.lock held. A new destination takes *spare (set to NULL). */
static struct dest *dest_for(const struct route *rt, const char *key, struct dest **spare)
{
    for (struct dest *d = q.dests; d; d = d->next)
        if (strcmp(d->key, key) == 0)
            return d;
    struct dest *d = *spare;
    *spare = NULL;
    snprintf(d->key, sizeof d->key, "%s", key);
    d->route = *rt;
    d->next = q.dests;
    q.dests = d;
    return d;
}

struct group {
    char key[ROUTE_KEY_MAX];
    struct route route;
    size_t *idx;
    size_t n;
};

/* A dispatched message goes back to waiting, due at due, without its
 * envelope and content in memory. */
static void release(struct qmsg *m, int64_t due)
{
    free(m->content);
    m->content = NULL;
    env_free(&m->env);
    env_init(&m->env);
    EnterCriticalSection(&q.lock);
    m->due = due;
    m->busy = 0;
    LeaveCriticalSection(&q.lock);
}

/* Look at one due message: notices, then jobs for its due recipients. */
static void dispatch(struct qmsg *m)
{
    int64_t now = clock_unix();
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
    m->eight_bit = has_8bit(m->content, m->len);

    size_t n = m->env.n_rcpt;
    size_t *late = calloc(n ? n : 1, sizeof *late);
    size_t *due = calloc(n ? n : 1, sizeof *due);
    struct group *g = calloc(n ? n : 1, sizeof *g);
    size_t n_late = 0, n_g = 0;
    if (!late || !due || !g) {
        free(late), free(due), free(g);
        release(m, now + QUEUE_READ_RETRY);
        return;
    }
    int changed = 0;
    for (size_t i = 0; i < n; i++) {
        struct env_rcpt *r = &m->env.rcpt[i];
        if (r->state == ENV_DEFERRED &&
            retry_delay_due(&SET->policy, m->env.arrived, now, (r->notified & ENV_NOTIFIED_DELAY) != 0))
            late[n_late++] = i;
    }
    if (n_late) {
        send_notice(m, DSN_DELAYED, late, n_late, "");
        for (size_t i = 0; i < n_late; i++)
            m->env.rcpt[late[i]].notified |= ENV_NOTIFIED_DELAY;
        changed = 1;
    }
    size_t n_due = env_due(&m->env, now, due, n);
    /* Routing, by the verdict the SMTP server gave at RCPT TO (core/route.h):
     * what it accepted routes here; a recipient it would refuse now (the
     * configuration changed, or it came another way) fails or waits with
     * the same reason, and is never routed by a guess. */
    struct smtpc_result bad;
    struct route_verdict v;
    for (size_t i = 0; i < n_due; i++) {
        struct env_rcpt *r = &m->env.rcpt[due[i]];
        char key[ROUTE_KEY_MAX];
        if (route_recipient(&SET->rc, &r->addr, 1, &v) != 0 ||
            route_key(&v.route, key, sizeof key) < 0) {
            if (v.code == 250)
                snprintf(v.why, sizeof v.why, "no route to the domain %.255s", r->addr.domain);
            local_result(&bad, v.code / 100 == 4 ? SMTPC_TRANSIENT : SMTPC_PERMANENT,
                         v.code == 250 ? "5.4.4" : v.status, v.why);
            rcpt_events(m, r, retry_record(&SET->policy, r, &bad, "", m->env.arrived, now));
            changed = 1;
            continue;
        }
        size_t k = 0;
        while (k < n_g && strcmp(g[k].key, key) != 0)
            k++;
        if (k == n_g) {
            snprintf(g[k].key, sizeof g[k].key, "%s", key);
            g[k].route = v.route;
            g[k].idx = calloc(n, sizeof *g[k].idx);
            if (!g[k].idx)
                continue;
            n_g++;
        }
        g[k].idx[g[k].n++] = due[i];
    }
    free(late);
    free(due);
    if (n_g == 0) {
        free(g);
        if (!changed && !env_done(&m->env)) {
            release(m, env_next_attempt(&m->env));
            return;
        }
        finalize(m);
        return;
    }
    /* Everything that may fail is allocated before the lock. */
    struct job **jobs = calloc(n_g, sizeof *jobs);
    struct dest **spare = calloc(n_g, sizeof *spare);
    int ok = jobs && spare;
    for (size_t k = 0; ok && k < n_g; k++) {
        jobs[k] = calloc(1, sizeof **jobs);
        spare[k] = calloc(1, sizeof **spare);
        ok = jobs[k] && spare[k];
    }
    if (!ok) {
        for (size_t k = 0; k < n_g; k++) {
            if (jobs)
                free(jobs[k]);
            if (spare)
                free(spare[k]);
            free(g[k].idx);
        }
        free(jobs), free(spare), free(g);
        release(m, now + QUEUE_READ_RETRY);
        return;
    }
    m->jobs = (int)n_g;
    EnterCriticalSection(&q.lock);
    for (size_t k = 0; k < n_g; k++) {
        struct dest *d = dest_for(&g[k].route, g[k].key, &spare[k]);
        struct job *j = jobs[k];
        j->m = m;
        j->idx = g[k].idx;
        j->n = g[k].n;
        push_job(d, j);
    }
    worker_spawn();
    WakeAllConditionVariable(&q.work_cv);
    LeaveCriticalSection(&q.lock);
    for (size_t k = 0; k < n_g; k++)
        free(spare[k]);
    free(jobs), free(spare), free(g);
}

/* Requests from `imsvc queue retry|delete` -------------------------------- */

static void ctl_answer(const wchar_t *ctl, const wchar_t *name, int failed, const char *text)
{
    wchar_t done[MAX_PATH];
    _snwprintf(done, MAX_PATH, L"%ls\\%ls.done", ctl, name);
    done[MAX_PATH - 1] = 0;
    HANDLE h = CreateFileW(done, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
    if (h == INVALID_HANDLE_VALUE)
        return;
    DWORD k;
    if (failed)
        WriteFile(h, "!", 1, &k, NULL);
    WriteFile(h, text, (DWORD)strlen(text), &k, NULL);
    CloseHandle(h);
}

/* q.lock held. */
static struct qmsg *index_find(const char *id)
{
    for (size_t i = 0; i < q.n_msgs; i++)
        if (strcmp(q.msgs[i]->id, id) == 0)
            return q.msgs[i];
    return NULL;
}

static void ctl_one(const wchar_t *ctl, const wchar_t *name)
{
    char a[ENV_ID_MAX + 16];
    wide_to_utf8(name, a, sizeof a);
    char *dot = strchr(a, '.');
    if (!dot)
        return;
    *dot = 0;
    const char *action = a, *id = dot + 1;
    char text[300];
    int failed = 0;
    wchar_t held_env[MAX_PATH];
    int held = spool_path(spool_dir(), id, 1, L"env", held_env, MAX_PATH) == 0 &&
               GetFileAttributesW(held_env) != INVALID_FILE_ATTRIBUTES;
    if (!spool_id_valid(id)) {
        failed = 1;
        snprintf(text, sizeof text, "%.64s is not a queue ID", id);
    } else if (strcmp(action, "delete") == 0 && held) {
        failed = spool_remove(id, 1) != ERROR_SUCCESS;
        snprintf(text, sizeof text, failed ? "cannot delete %s" : "%s deleted from Hold (no "
                 "notification was sent)", id);
    } else if (strcmp(action, "retry") == 0 && held) {
        failed = spool_release(id) != ERROR_SUCCESS;
        if (!failed) {
            EnterCriticalSection(&q.lock);
            index_add(id, 0);
            WakeConditionVariable(&q.sched_cv);
            LeaveCriticalSection(&q.lock);
        }
        snprintf(text, sizeof text, failed ? "cannot release %s" : "%s released from Hold; "
                 "delivery starts now", id);
    } else if (strcmp(action, "retry") == 0 || strcmp(action, "delete") == 0) {
        EnterCriticalSection(&q.lock);
        struct qmsg *m = index_find(id);
        int busy = m && m->busy;
        if (m && !busy)
            m->busy = 1;
        LeaveCriticalSection(&q.lock);
        if (!m) {
            failed = 1;
            snprintf(text, sizeof text, "there is no queued message %s", id);
        } else if (busy) {
            return;   /* a delivery round is running: the request waits for the next tick */
        } else if (action[0] == 'd') {
            failed = spool_remove(id, 0) != ERROR_SUCCESS;
            EnterCriticalSection(&q.lock);
            if (failed)
                m->busy = 0;
            else
                index_remove(m);
            LeaveCriticalSection(&q.lock);
            snprintf(text, sizeof text, failed ? "cannot delete %s" : "%s deleted (no "
                     "notification was sent)", id);
        } else {
            failed = spool_retry_now(id) != ERROR_SUCCESS;
            EnterCriticalSection(&q.lock);
            m->busy = 0;
            m->due = 0;
            WakeConditionVariable(&q.sched_cv);
            LeaveCriticalSection(&q.lock);
            snprintf(text, sizeof text, failed ? "cannot reschedule %s" : "%s is being tried "
                     "now", id);
        }
    } else {
        return;
    }
    ctl_answer(ctl, name, failed, text);
    wchar_t req[MAX_PATH];
    _snwprintf(req, MAX_PATH, L"%ls\\%ls", ctl, name);
    req[MAX_PATH - 1] = 0;
    DeleteFileW(req);
}

static void ctl_scan(void)
{
    wchar_t ctl[MAX_PATH], pat[MAX_PATH];
    spool_ctl_dir(ctl, MAX_PATH);
    _snwprintf(pat, MAX_PATH, L"%ls\\*.*", ctl);
    ctl[MAX_PATH - 1] = pat[MAX_PATH - 1] = 0;
    WIN32_FIND_DATAW fd;
    HANDLE f = FindFirstFileW(pat, &fd);
    if (f == INVALID_HANDLE_VALUE)
        return;
    do {
        size_t n = wcslen(fd.cFileName);
        if ((fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) ||
            (n > 5 && wcscmp(fd.cFileName + n - 5, L".done") == 0))
            continue;
        ctl_one(ctl, fd.cFileName);
    } while (FindNextFileW(f, &fd));
    FindClose(f);
}

static void write_status(int64_t now)
{
    unsigned busy = 0, waiting = 0;
    int64_t oldest = 0;
    EnterCriticalSection(&q.lock);
    size_t total = q.n_msgs;
    for (size_t i = 0; i < q.n_msgs; i++) {
        struct qmsg *m = q.msgs[i];
        if (m->busy)
            busy++;
        else
            waiting++;
        if (m->arrived && (oldest == 0 || m->arrived < oldest))
            oldest = m->arrived;
    }
    LeaveCriticalSection(&q.lock);
    unsigned long long commits, flushes;
    spool_counters(&commits, &flushes);
    char text[1024];
    int n = snprintf(text, sizeof text,
                     "updated %lld\r\nmessages %zu\r\nin-delivery %u\r\nwaiting %u\r\n"
                     "oldest-arrived %lld\r\ninbound-sessions %ld\r\noutbound-connections %ld\r\n"
                     "paused %d\r\ncommits %llu\r\nflushes %llu\r\n", (long long)now, total, busy,
                     waiting, (long long)oldest, (long)smtp_server_active(), (long)q.active_out,
                     q.paused, commits, flushes);
    if (n <= 0 || (size_t)n >= sizeof text)
        return;
    int more = smtp_server_status_text(text + n, sizeof text - (size_t)n);
    if (more < 0)
        return;
    n += more;
    wchar_t tmp[MAX_PATH];
    _snwprintf(tmp, MAX_PATH, L"%ls.new", SET->status_path);
    tmp[MAX_PATH - 1] = 0;
    HANDLE h = CreateFileW(tmp, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
    if (h == INVALID_HANDLE_VALUE)
        return;
    DWORD k;
    BOOL ok = WriteFile(h, text, (DWORD)n, &k, NULL);
    CloseHandle(h);
    if (ok)
        MoveFileExW(tmp, SET->status_path, MOVEFILE_REPLACE_EXISTING);
}

static DWORD WINAPI scheduler_main(void *arg)
{
    (void)arg;
    int64_t last_status = 0, last_pickup = 0, last_ctl = 0;
    struct qmsg **batch = NULL;
    size_t cap = 0;
    EnterCriticalSection(&q.lock);
    while (!q.stop) {
        int64_t now = clock_unix();
        size_t nb = 0;
        int64_t next = INT64_MAX;
        if (!q.paused) {
            for (size_t i = 0; i < q.n_msgs; i++) {
                struct qmsg *m = q.msgs[i];
                if (m->busy)
                    continue;
                if (m->due <= now) {
                    if (nb == cap) {
                        size_t nc = cap ? cap * 2 : 256;
                        struct qmsg **p = realloc(batch, nc * sizeof *p);
                        if (!p)
                            break;
                        batch = p;
                        cap = nc;
                    }
                    m->busy = 1;
                    batch[nb++] = m;
                } else if (m->due < next) {
                    next = m->due;
                }
            }
        }
        LeaveCriticalSection(&q.lock);
        for (size_t i = 0; i < nb; i++)
            dispatch(batch[i]);
        if (now - last_status >= QUEUE_STATUS_SECS) {
            write_status(now);
            last_status = now;
        }
        if (now != last_ctl) {   /* once a second, not on every wake-up */
            ctl_scan();
            last_ctl = now;
        }
        if (now - last_pickup >= PICKUP_INTERVAL_SECS && !q.paused) {
            pickup_scan();
            last_pickup = now;
        }
        EnterCriticalSection(&q.lock);
        if (q.stop)
            break;
        DWORD wait = QUEUE_TICK_MS;
        if (nb == 0 && next != INT64_MAX && next > now && (next - now) * 1000 < (int64_t)wait)
            wait = (DWORD)((next - now) * 1000);
        if (nb == 0)
            SleepConditionVariableCS(&q.sched_cv, &q.lock, wait);
    }
    LeaveCriticalSection(&q.lock);
    free(batch);
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

/* LocalDomains "a;b" into ns->domains. */
static void split_domains(struct settings *ns)
{
    wide_to_utf8(ns->cfg.local_domains, ns->domains_buf, sizeof ns->domains_buf);
    ns->rc.n_local = 0;
    char *p = ns->domains_buf;
    while (*p && ns->rc.n_local < QUEUE_DOMAINS_MAX) {
        size_t len = strcspn(p, "; ,");
        if (len > 0)
            ns->domains[ns->rc.n_local++] = p;
        p += len;
        if (*p)
            *p++ = 0;
    }
    ns->rc.local_domains = ns->domains;
}

/* SmartHostUser and the password file, for NTLM to the smart host. */
static void load_smart_host_credentials(struct settings *ns)
{
    if (!ns->cfg.smart_host_user[0])
        return;
    const wchar_t *bs = wcschr(ns->cfg.smart_host_user, L'\\');
    if (bs) {
        _snwprintf(ns->sh_domain, ARRAYSIZE(ns->sh_domain), L"%.*ls",
                   (int)(bs - ns->cfg.smart_host_user), ns->cfg.smart_host_user);
        _snwprintf(ns->sh_user, ARRAYSIZE(ns->sh_user), L"%ls", bs + 1);
    } else {
        _snwprintf(ns->sh_user, ARRAYSIZE(ns->sh_user), L"%ls", ns->cfg.smart_host_user);
    }
    secret_password(L"SmartHostPassword", ns->cfg.smart_host_password_file, ns->sh_password,
                    ARRAYSIZE(ns->sh_password));
}

static struct settings *settings_new(const struct imsvc_config *cfg)
{
    struct settings *ns = calloc(1, sizeof *ns);
    if (!ns)
        return NULL;
    ns->cfg = *cfg;
    config_retry_policy(cfg, &ns->policy);
    split_domains(ns);
    wide_to_utf8(cfg->smart_host, ns->smarthost, sizeof ns->smarthost);
    ns->rc.smarthost = ns->smarthost;
    ns->rc.smarthost_default_port = 25;
    ns->rc.outbound_port = cfg->outbound_port;
    wide_to_utf8(cfg->host_name, ns->helo, sizeof ns->helo);
    config_tls_policy(cfg, &ns->tls_policy);
    load_smart_host_credentials(ns);
    config_drop_dir(cfg, ns->drop_dir, MAX_PATH);
    config_badmail_dir(cfg, ns->badmail_dir, MAX_PATH);
    queue_status_path(cfg, ns->status_path, MAX_PATH);
    return ns;
}

void queue_status_path(const struct imsvc_config *cfg, wchar_t *out, size_t cap)
{
    wchar_t qdir[MAX_PATH];
    config_queue_dir(cfg, qdir, MAX_PATH);
    spool_status_path(qdir, out, cap);
}

DWORD queue_start(const struct imsvc_config *cfg)
{
    memset(&q, 0, sizeof q);
    struct settings *ns = settings_new(cfg);
    if (!ns)
        return ERROR_NOT_ENOUGH_MEMORY;
    current = ns;
    CreateDirectoryW(SET->drop_dir, NULL);
    CreateDirectoryW(SET->badmail_dir, NULL);
    InitializeCriticalSection(&q.lock);
    InitializeConditionVariable(&q.sched_cv);
    InitializeConditionVariable(&q.work_cv);

    wchar_t qdir[MAX_PATH];
    config_queue_dir(cfg, qdir, MAX_PATH);
    spool_set_notify(on_committed);
    unsigned recovered = 0;
    DWORD err = spool_open(qdir, &recovered);
    if (err) {
        DeleteCriticalSection(&q.lock);
        return err;
    }
    unsigned count = 0, bad = 0;
    spool_scan(qdir, load_one, &count, &bad);
    wchar_t wc[16], wr[16];
    _snwprintf(wc, ARRAYSIZE(wc), L"%u", count);
    _snwprintf(wr, ARRAYSIZE(wr), L"%u", recovered);
    event(EVENTLOG_INFORMATION_TYPE, MSG_QUEUE_RECOVERED, LOC_SPOOL_RECOVER, 0, 2,
          (const wchar_t *[]){ wc, wr });
    pickup_init(cfg);

    q.running = 1;
    q.n_workers = cfg->max_outbound;
    q.workers = calloc(q.n_workers, sizeof *q.workers);
    q.exited = calloc(q.n_workers, 1);
    if (!q.workers || !q.exited) {
        queue_stop(0);
        return ERROR_NOT_ENOUGH_MEMORY;
    }
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
    CreateDirectoryW(ns->drop_dir, NULL);
    CreateDirectoryW(ns->badmail_dir, NULL);
    current = ns;
    pickup_init(cfg);
    EnterCriticalSection(&q.lock);
    WakeAllConditionVariable(&q.work_cv);
    WakeAllConditionVariable(&q.sched_cv);
    LeaveCriticalSection(&q.lock);
}

void queue_pause(int paused)
{
    EnterCriticalSection(&q.lock);
    q.paused = paused;
    WakeAllConditionVariable(&q.work_cv);
    WakeAllConditionVariable(&q.sched_cv);
    LeaveCriticalSection(&q.lock);
}

void queue_stop(DWORD wait_ms)
{
    if (!q.running && !q.scheduler)
        return;
    EnterCriticalSection(&q.lock);
    q.stop = 1;
    WakeAllConditionVariable(&q.work_cv);
    WakeAllConditionVariable(&q.sched_cv);
    LeaveCriticalSection(&q.lock);
    DWORD deadline = GetTickCount() + wait_ms;
    if (q.scheduler) {
        WaitForSingleObject(q.scheduler, wait_ms);
        CloseHandle(q.scheduler);
    }
    for (size_t i = 0; i < q.n_workers && q.workers; i++) {
        if (!q.workers[i])
            continue;
        DWORD left = (LONG)(deadline - GetTickCount()) > 0 ? deadline - GetTickCount() : 0;
        WaitForSingleObject(q.workers[i], left);
        CloseHandle(q.workers[i]);
    }
    /* Threads still delivering after the wait are abandoned; their messages
     * are on disk in the state before this round and are tried again. */
    spool_close();
    q.running = 0;
    q.scheduler = NULL;
}
