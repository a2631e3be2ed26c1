/* receive.c - the one way into the queue (see receive.h).
 *
 * Never acknowledges a message before its commit is on disk, never blocks
 * where the caller said it must not (the filter and the commit are separate
 * steps the caller schedules), and never changes a message's content but
 * for two things: it writes the source's Received field before it, and with
 * RewriteHeaders the addresses of its header fields as core/hdrrewrite.h
 * decides (the header block is held until its empty line, then written
 * rewritten; a signed message never changes). What is counted, tracked,
 * filtered and committed (with its CRC) is what was written.
 */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "receive.h"

#include "clock.h"
#include "eventlog.h"
#include "hdrrewrite.h"
#include "location.h"
#include "mapfile.h"
#include "penalty.h"
#include "spool.h"
#include "tracking.h"
#include "tracklog.h"
#include "utf.h"

#define RECEIVE_HOST_MAX 256u
#define RECEIVED_MAX     2048u   /* a Received field, folded */
#define REPEAT_WINDOW_MS 60000u  /* a source tried again: one event a minute per cause */

static struct {
    SRWLOCK lock;
    char host[RECEIVE_HOST_MAX];
    wchar_t filter[CONFIG_STR_MAX];
    unsigned long long max_size;
    unsigned max_hops;
    int rewrite_headers;                /* RewriteHeaders */
    const struct domain_list *local;    /* LocalDomains: never freed (config.h) */
    /* A pickup file whose filter fails stays and is tried at every scan:
     * its failure is reported once a minute, with the count held back. */
    SRWLOCK repeat_lock;
    struct penalty_limiter repeats;
    int repeats_ready;
} rc = { .lock = SRWLOCK_INIT, .host = "localhost", .repeat_lock = SRWLOCK_INIT };

struct receive {
    enum receipt_source src;
    struct spool_msg *msg;          /* NULL once committed or dropped */
    char id[ENV_ID_MAX + 1];
    DWORD failure;                  /* the first Win32 error while storing */
    struct receipt_count count;
    struct envelope *env;
    int hold;
    enum filter_verdict verdict;
    char reason[FILTER_REASON_MAX];
    DWORD filter_err;
    enum receipt_outcome outcome;
    DWORD err;
    char origin[RECEIVE_ORIGIN_MAX];   /* for events: "session from ...", "pickup file ..." */
    /* the settings the message began with */
    wchar_t filter[CONFIG_STR_MAX];
    unsigned long long max_size;
    struct track_msgid mid;         /* its Message-ID, for the tracking log */
    unsigned max_hops;
    /* RewriteHeaders: the header block held until its empty line */
    int holding;
    struct hdr_end hdr_end;         /* the search for its empty line */
    char *hdr;
    size_t hdr_len, hdr_cap;
    struct mapfile_ref map;         /* the map the header is rewritten with, held meanwhile */
    struct rewrite_config rw;
};

void receive_configure(const struct imsvc_config *cfg)
{
    AcquireSRWLockExclusive(&rc.lock);
    if (WideCharToMultiByte(CP_UTF8, 0, cfg->host_name, -1, rc.host, sizeof rc.host, NULL,
                            NULL) <= 0 || !rc.host[0])
        strcpy(rc.host, "localhost");
    _snwprintf(rc.filter, ARRAYSIZE(rc.filter), L"%ls", cfg->content_filter);
    rc.filter[ARRAYSIZE(rc.filter) - 1] = 0;
    rc.max_size = (unsigned long long)cfg->max_message_kb * 1024u;
    rc.max_hops = cfg->max_hops;
    rc.rewrite_headers = cfg->rewrite_headers != 0;
    rc.local = cfg->lists ? &cfg->lists->local_domains : NULL;
    ReleaseSRWLockExclusive(&rc.lock);
}

/* Does the content filter run for this message (it then opens the file)? */
static int filtered(const struct receive *r, const struct receipt_policy *pol)
{
    return pol->filtered && r->filter[0];
}

struct receive *receive_begin(enum receipt_source src, const struct smtpd *session)
{
    struct receive *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->src = src;
    r->outcome = RECEIPT_STORE_FAILED;
    r->verdict = FILTER_ACCEPT;
    receipt_count_init(&r->count);
    char host[RECEIVE_HOST_MAX];
    AcquireSRWLockShared(&rc.lock);
    memcpy(host, rc.host, sizeof host);
    memcpy(r->filter, rc.filter, sizeof r->filter);
    r->max_size = rc.max_size;
    r->max_hops = rc.max_hops;
    int rewrite = rc.rewrite_headers;
    r->rw.local = rc.local;
    ReleaseSRWLockShared(&rc.lock);
    struct receipt_policy pol;
    receipt_policy(src, &pol);
    if (rewrite && pol.headers_rewritten) {
        /* Without a map in force no address can change: nothing to hold. */
        mapfile_acquire(&r->map);
        r->rw.map = r->map.map;
        r->rw.map_wanted = r->map.wanted;
        r->holding = r->map.map != NULL;
        if (!r->holding)
            mapfile_release(&r->map);
    }

    /* the content filter opens the file before the commit */
    r->failure = filtered(r, &pol) ? spool_create_readable(&r->msg) : spool_create(&r->msg);
    if (r->failure) {
        r->msg = NULL;
        return r;
    }
    snprintf(r->id, sizeof r->id, "%s", spool_msg_id(r->msg));
    char date[64], received[RECEIVED_MAX];
    clock_rfc5322(clock_unix(), date, sizeof date);
    int n = receipt_received(src, session, host, r->id, date, received, sizeof received);
    if (n < 0)
        r->failure = ERROR_INSUFFICIENT_BUFFER;
    else if (n > 0)
        r->failure = spool_write(r->msg, received, (size_t)n);   /* not counted: ours */
    return r;
}

void receive_describe(struct receive *r, const char *origin)
{
    snprintf(r->origin, sizeof r->origin, "%s", origin);   /* cut if longer: a label */
}

const char *receive_id(const struct receive *r)
{
    return r->id;
}

/* Content as it goes into the queue: counted, tracked and written. */
static void store(struct receive *r, const void *p, size_t len)
{
    if (!len || r->failure)
        return;
    receipt_count_feed(&r->count, p, len);
    track_msgid_feed(&r->mid, p, len);
    r->failure = spool_write(r->msg, p, len);
}

/* The held header block is complete (rewrite) or larger than
 * HDRREWRITE_BLOCK_MAX (written as it is): into the queue, and holding ends. */
static void release_header(struct receive *r, int rewrite)
{
    struct hdrrewrite_report rep;
    char *out = NULL;
    size_t n = 0;
    r->holding = 0;
    if (rewrite && r->hdr_len) {
        size_t cap = r->hdr_len + 1024;
        out = malloc(cap);
        n = out ? hdrrewrite_block(&r->rw, r->hdr, r->hdr_len, out, cap, &rep) : 0;
        if (n >= cap) {
            char *bigger = realloc(out, n + 1);
            if (bigger)
                hdrrewrite_block(&r->rw, r->hdr, r->hdr_len, bigger, n + 1, &rep);
            else
                free(out);
            out = bigger;
        }
        if (!out)
            r->failure = ERROR_NOT_ENOUGH_MEMORY;   /* not queued unrewritten: 4xx, tried again */
    }
    mapfile_release(&r->map);
    r->rw.map = NULL;
    if (n)
        store(r, out, n);
    else
        store(r, r->hdr, r->hdr_len);
    free(out);
    free(r->hdr);
    r->hdr = NULL;
    r->hdr_len = r->hdr_cap = 0;
}

/* Hold what of p belongs to the header block (up to and with its empty
 * line); returns how many octets of p that is. */
static size_t hold(struct receive *r, const char *p, size_t len)
{
    size_t room = HDRREWRITE_BLOCK_MAX - r->hdr_len;
    int end;
    size_t i = hdr_end_feed(&r->hdr_end, p, len < room ? len : room, &end);
    if (r->hdr_len + i > r->hdr_cap) {
        size_t cap = r->hdr_cap ? r->hdr_cap : 4096;
        while (cap < r->hdr_len + i)
            cap *= 2;
        if (cap > HDRREWRITE_BLOCK_MAX)
            cap = HDRREWRITE_BLOCK_MAX;
        char *h = realloc(r->hdr, cap);
        if (!h) {
            r->failure = ERROR_NOT_ENOUGH_MEMORY;
            return len;
        }
        r->hdr = h;
        r->hdr_cap = cap;
    }
    memcpy(r->hdr + r->hdr_len, p, i);
    r->hdr_len += i;
    if (end)
        release_header(r, 1);
    else if (i < len)
        release_header(r, 0);   /* past the limit: left alone */
    return i;
}

void receive_write(struct receive *r, const void *p, size_t len)
{
    if (!r->msg || r->failure)
        return;
    if (r->holding) {
        size_t took = hold(r, p, len);
        p = (const char *)p + took;
        len -= took;
    }
    store(r, p, len);
}

static enum receive_step done(struct receive *r, enum receipt_outcome o, DWORD err)
{
    r->outcome = o;
    r->err = err;
    if (r->msg) {
        spool_abort(r->msg);
        r->msg = NULL;
    }
    return RECEIVE_STEP_DONE;
}

enum receive_step receive_end(struct receive *r, struct envelope *env)
{
    r->env = env;
    if (r->holding && r->msg && !r->failure)
        release_header(r, 1);   /* a message that is all header */
    if (r->failure || !r->msg)
        return done(r, RECEIPT_STORE_FAILED, r->failure ? r->failure : ERROR_INVALID_HANDLE);
    snprintf(env->id, sizeof env->id, "%s", r->id);
    env->arrived = clock_unix();
    enum receipt_outcome o = receipt_check(r->src, &r->count, r->max_size, r->max_hops);
    if (o != RECEIPT_QUEUED)
        return done(r, o, 0);
    struct receipt_policy pol;
    receipt_policy(r->src, &pol);
    if (filtered(r, &pol))
        return RECEIVE_STEP_FILTER;
    r->verdict = FILTER_ACCEPT;
    return RECEIVE_STEP_COMMIT;
}

void receive_filter(struct receive *r)
{
    r->verdict = filter_message(r->filter, r->msg, r->env, r->reason, sizeof r->reason,
                                &r->filter_err);
}

void receive_filter_unrun(struct receive *r, DWORD err, const char *why)
{
    r->verdict = FILTER_ERROR;
    r->filter_err = err;
    snprintf(r->reason, sizeof r->reason, "%s", why);
}

/* Whether to report a failure of a source that is tried again (key: the
 * source and the cause); *held: the failures not reported since the last. */
static int repeat_allowed(const struct receive *r, DWORD location, DWORD status,
                          unsigned long *held)
{
    struct receipt_policy pol;
    receipt_policy(r->src, &pol);
    *held = 0;
    if (!pol.retried)
        return 1;
    unsigned char key[12];
    DWORD src = (DWORD)r->src;
    memcpy(key, &src, 4);
    memcpy(key + 4, &location, 4);
    memcpy(key + 8, &status, 4);
    AcquireSRWLockExclusive(&rc.repeat_lock);
    if (!rc.repeats_ready) {
        penalty_limiter_init(&rc.repeats, REPEAT_WINDOW_MS);
        rc.repeats_ready = 1;
    }
    int ok = penalty_report(&rc.repeats, key, sizeof key, GetTickCount64(), held);
    ReleaseSRWLockExclusive(&rc.repeat_lock);
    return ok;
}

static void report_filter_failed(struct receive *r)
{
    unsigned long held = 0;
    if (!repeat_allowed(r, LOC_QUEUE_FILTER, r->filter_err, &held))
        return;
    wchar_t wid[ENV_ID_MAX + 1], wreason[FILTER_REASON_MAX + 128];
    utf8_to_wide(r->id, wid, ARRAYSIZE(wid));
    char why[FILTER_REASON_MAX + 128];
    const char *origin = r->origin[0] ? r->origin : receipt_source_name(r->src);
    if (held)
        snprintf(why, sizeof why, "%s (%s; %lu more such failures in the last minute were not "
                 "logged)", r->reason, origin, held);
    else
        snprintf(why, sizeof why, "%s (%s)", r->reason, origin);
    utf8_to_wide(why, wreason, ARRAYSIZE(wreason));
    evlog_report(EVENTLOG_ERROR_TYPE, CAT_QUEUING, MSG_FILTER_FAILED, LOC_QUEUE_FILTER,
                 r->filter_err, 3, (const wchar_t *[]){ r->filter, wid, wreason });
}

static void report_held(struct receive *r)
{
    wchar_t wid[ENV_ID_MAX + 1], wfrom[600], wreason[FILTER_REASON_MAX];
    char from[600];
    if (r->env->from.null_path || addr_format_mailbox(&r->env->from, from, sizeof from) < 0)
        strcpy(from, "<>");
    utf8_to_wide(r->id, wid, ARRAYSIZE(wid));
    utf8_to_wide(from, wfrom, ARRAYSIZE(wfrom));
    utf8_to_wide(r->reason, wreason, ARRAYSIZE(wreason));
    evlog_report(EVENTLOG_INFORMATION_TYPE, CAT_QUEUING, MSG_MESSAGE_HELD, LOC_QUEUE_FILTER, 0,
                 3, (const wchar_t *[]){ wid, wfrom, wreason });
}

enum receive_step receive_filtered(struct receive *r)
{
    struct receipt_answer a;
    if (r->verdict != FILTER_ACCEPT)
        tracking_filter(r->env, r->id, track_msgid_value(&r->mid), r->verdict == FILTER_REJECT ?
                        "refused" : r->verdict == FILTER_HOLD ? "held" : "failed", r->reason);
    switch (r->verdict) {
    case FILTER_REJECT:
        return done(r, RECEIPT_REJECTED, 0);
    case FILTER_ERROR:
        receipt_answer(r->src, RECEIPT_FILTER_FAILED, 0, r->reason, &a);
        if (a.events & RECEIPT_EV_FILTER_FAILED)
            report_filter_failed(r);
        return done(r, RECEIPT_FILTER_FAILED, r->filter_err);
    case FILTER_HOLD:
        receipt_answer(r->src, RECEIPT_HELD, 0, r->reason, &a);
        if (a.events & RECEIPT_EV_HELD)
            report_held(r);
        r->hold = 1;
        return RECEIVE_STEP_COMMIT;
    default:
        return RECEIVE_STEP_COMMIT;
    }
}

void receive_committed(struct receive *r, DWORD err)
{
    r->outcome = err ? RECEIPT_STORE_FAILED : r->hold ? RECEIPT_HELD : RECEIPT_QUEUED;
    r->err = err;
    tracking_receive(r->env, track_msgid_value(&r->mid), r->src, r->outcome);
}

void receive_commit(struct receive *r)
{
    DWORD err = spool_commit(r->msg, r->env, r->hold);
    r->msg = NULL;   /* spool_commit frees it either way */
    receive_committed(r, err);
}

DWORD receive_commit_async(struct receive *r, void (*fn)(void *arg, DWORD err), void *arg)
{
    DWORD err = spool_commit_async(r->msg, r->env, r->hold, fn, arg);
    r->msg = NULL;   /* spool_commit_async frees it either way */
    return err;
}

enum receipt_outcome receive_run(struct receive *r, struct envelope *env)
{
    enum receive_step step = receive_end(r, env);
    if (step == RECEIVE_STEP_FILTER) {
        receive_filter(r);
        step = receive_filtered(r);
    }
    if (step == RECEIVE_STEP_COMMIT)
        receive_commit(r);
    return r->outcome;
}

enum receipt_outcome receive_outcome(const struct receive *r, DWORD *err)
{
    if (err)
        *err = r->err;
    return r->outcome;
}

void receive_result(const struct receive *r, struct receipt_answer *a)
{
    /* a loop's answer names the limit it passed */
    receipt_answer(r->src, r->outcome, r->outcome == RECEIPT_LOOP ? r->max_hops : r->err,
                   r->reason, a);
}

void receive_free(struct receive *r)
{
    if (!r)
        return;
    if (r->msg)
        spool_abort(r->msg);
    if (r->map.holder)
        mapfile_release(&r->map);
    free(r->hdr);
    free(r);
}
