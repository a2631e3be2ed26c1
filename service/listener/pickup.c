/* pickup.c - the pickup directory (see pickup.h).
 *
 * Never deletes a file before its message is committed to the queue, and
 * never leaves a file it cannot queue where it would be tried forever. Its
 * envelope goes through the address map by the decision an SMTP session
 * takes (core/rewrite.h: rewrite_envelope), never one of its own.
 * Runs on its own thread: a slow content filter delays the next pickup
 * file, never a delivery.
 */
#include <stdio.h>
#include <windows.h>

#include "pickup.h"

#include <stdlib.h>
#include <string.h>

#include "eventlog.h"
#include "hdrrewrite.h"
#include "location.h"
#include "mapfile.h"
#include "penalty.h"
#include "receive.h"
#include "rewrite.h"
#include "utf.h"

#define PICKUP_FILES_MAX  100u   /* files taken per pass: then stop and pause are
                                    looked at, and the next pass goes on after
                                    the last name taken */
#define PICKUP_EVENT_MS   60000u /* a store failure is reported once a minute */

struct pickup_settings {
    wchar_t dir[MAX_PATH];
    wchar_t badmail[MAX_PATH];
    size_t max_size;
    const struct domain_list *local;    /* LocalDomains: never freed (config.h) */
};

static struct {
    struct pickup_settings set;     /* under lock: PARAMCHANGE writes it */
    struct pickup_settings run;     /* the pickup thread's copy for one pass */
    SRWLOCK lock;
    HANDLE thread, wake;
    volatile LONG stop, paused;
    wchar_t cursor[MAX_PATH];       /* the last name taken: the next pass goes on after it */
    /* failures that leave a file for the next scan (the queue could not
     * store it, the address map is not loaded): once a minute per cause */
    struct penalty_limiter failures;
    int failures_ready;
} pk = { .lock = SRWLOCK_INIT };

void pickup_reconfigure(const struct imsvc_config *cfg)
{
    struct pickup_settings n;
    config_pickup_dir(cfg, n.dir, MAX_PATH);
    config_badmail_dir(cfg, n.badmail, MAX_PATH);
    n.max_size = (size_t)cfg->max_message_kb * 1024u;
    n.local = cfg->lists ? &cfg->lists->local_domains : NULL;
    CreateDirectoryW(n.dir, NULL);
    AcquireSRWLockExclusive(&pk.lock);
    pk.set = n;
    ReleaseSRWLockExclusive(&pk.lock);
}

/* Header parsing ------------------------------------------------------------ */

struct pick {
    struct envelope env;
    char why[300];
};

/* Blanks around an address and its angle brackets off. */
static void trim(const char **text, size_t *len)
{
    while (*len && (**text == ' ' || **text == '\t'))
        (*text)++, (*len)--;
    while (*len && ((*text)[*len - 1] == ' ' || (*text)[*len - 1] == '\t'))
        (*len)--;
    if (*len >= 2 && (*text)[0] == '<' && (*text)[*len - 1] == '>')
        (*text)++, *len -= 2;
}

static int add_rcpt(struct pick *p, const char *text, size_t len)
{
    struct addr_path a;
    struct addr_error e;
    trim(&text, &len);
    if (addr_parse_mailbox(text, len, ADDR_RCPT, &a, &e) != 0) {
        snprintf(p->why, sizeof p->why, "'%.*s' is not a valid recipient address: %s",
                 (int)(len > 200 ? 200 : len), text, e.rule);
        return -1;
    }
    if (env_add_rcpt(&p->env, &a, NULL) < 0) {
        snprintf(p->why, sizeof p->why, "too many recipients");
        return -1;
    }
    return 0;
}

static int set_sender(struct pick *p, const char *text, size_t len)
{
    struct addr_error e;
    trim(&text, &len);
    if (len == 0) {
        p->env.from.null_path = 1;
        return 0;
    }
    if (addr_parse_mailbox(text, len, ADDR_MAIL, &p->env.from, &e) != 0) {
        snprintf(p->why, sizeof p->why, "'%.*s' is not a valid sender address: %s",
                 (int)(len > 200 ? 200 : len), text, e.rule);
        return -1;
    }
    return 0;
}

/* The addresses of an address-list header value, by the one reading of
 * it (core/hdrrewrite.h). sender: take the first address as the sender
 * instead. */
static int header_addresses(struct pick *p, const char *v, size_t len, int sender)
{
    struct hdr_addr_iter it;
    struct hdr_addr a;
    hdr_addr_begin(&it, v, len);
    while (hdr_addr_next(&it, &a)) {
        if (sender)
            return set_sender(p, v + a.start, a.end - a.start);
        if (add_rcpt(p, v + a.start, a.end - a.start) != 0)
            return -1;
    }
    return 0;
}

/* The end of the header field starting at s (its folded lines included). */
static size_t field_end(const char *s, size_t len, size_t at)
{
    size_t i = at;
    for (;;) {
        const char *nl = memchr(s + i, '\n', len - i);
        if (!nl)
            return len;
        i = (size_t)(nl - s) + 1;
        if (i >= len || (s[i] != ' ' && s[i] != '\t'))
            return i;
    }
}

static int name_is(const char *s, size_t len, const char *name)
{
    size_t n = strlen(name);
    return len > n && _strnicmp(s, name, n) == 0 && s[n] == ':';
}

/* Fill p->env from the file; *body_off: where the content to queue starts
 * (after x-sender/x-receiver lines). A removed Bcc: field is cut from buf
 * in place (*len shrinks). */
static int parse_file(struct pick *p, char *buf, size_t *len, size_t *body_off)
{
    size_t i = 0;
    int have_x = 0, have_from = 0;
    *body_off = 0;
    /* x-sender / x-receiver lines at the top */
    while (i < *len) {
        size_t e = field_end(buf, *len, i);
        const char *v;
        if (name_is(buf + i, e - i, "x-sender")) {
            v = buf + i + 9;
            if (set_sender(p, v, (size_t)(buf + e - v) - (buf[e - 1] == '\n') -
                           (e >= 2 && buf[e - 2] == '\r')) != 0)
                return -1;
            have_x |= 1;
        } else if (name_is(buf + i, e - i, "x-receiver")) {
            v = buf + i + 11;
            if (add_rcpt(p, v, (size_t)(buf + e - v) - (buf[e - 1] == '\n') -
                         (e >= 2 && buf[e - 2] == '\r')) != 0)
                return -1;
            have_x |= 2;
        } else {
            break;
        }
        i = e;
    }
    if (have_x) {
        if (have_x != 3) {
            snprintf(p->why, sizeof p->why, "x-sender: and x-receiver: must both be given");
            return -1;
        }
        *body_off = i;
        return 0;
    }
    /* From, To, Cc, Bcc */
    i = 0;
    while (i < *len && buf[i] != '\r' && buf[i] != '\n') {
        size_t e = field_end(buf, *len, i);
        const char *colon = memchr(buf + i, ':', e - i);
        if (!colon) {
            snprintf(p->why, sizeof p->why, "the header has a line without a colon");
            return -1;
        }
        const char *v = colon + 1;
        size_t vlen = (size_t)(buf + e - v);
        int is_bcc = name_is(buf + i, e - i, "bcc");
        if (name_is(buf + i, e - i, "from")) {
            if (header_addresses(p, v, vlen, 1) != 0)
                return -1;
            have_from = 1;
        } else if (name_is(buf + i, e - i, "to") || name_is(buf + i, e - i, "cc") || is_bcc) {
            if (header_addresses(p, v, vlen, 0) != 0)
                return -1;
        }
        if (is_bcc) {
            memmove(buf + i, buf + e, *len - e);
            *len -= e - i;
            continue;
        }
        i = e;
    }
    if (!have_from) {
        snprintf(p->why, sizeof p->why, "there is no x-sender: line and no From: field");
        return -1;
    }
    if (p->env.n_rcpt == 0) {
        snprintf(p->why, sizeof p->why, "there are no recipients (no x-receiver:, To:, Cc: or "
                 "Bcc:)");
        return -1;
    }
    return 0;
}

/* One file ------------------------------------------------------------------ */

static void to_badmail(const wchar_t *path, const wchar_t *name, const char *why, DWORD err)
{
    wchar_t dst[MAX_PATH], txt[MAX_PATH];
    _snwprintf(dst, MAX_PATH, L"%ls\\pickup-%ls", pk.run.badmail, name);
    _snwprintf(txt, MAX_PATH, L"%ls\\pickup-%ls.txt", pk.run.badmail, name);
    dst[MAX_PATH - 1] = txt[MAX_PATH - 1] = 0;
    CreateDirectoryW(pk.run.badmail, NULL);
    MoveFileExW(path, dst, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH);
    HANDLE h = CreateFileW(txt, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
    if (h != INVALID_HANDLE_VALUE) {
        DWORD k;
        WriteFile(h, why, (DWORD)strlen(why), &k, NULL);
        WriteFile(h, "\r\n", 2, &k, NULL);
        CloseHandle(h);
    }
    wchar_t wwhy[400], what[MAX_PATH + 500];
    utf8_to_wide(why, wwhy, ARRAYSIZE(wwhy));
    _snwprintf(what, ARRAYSIZE(what), L"the pickup file %ls could not be queued: %ls", name, wwhy);
    what[ARRAYSIZE(what) - 1] = 0;
    evlog_report(EVENTLOG_WARNING_TYPE, CAT_QUEUING, MSG_BADMAIL, LOC_QUEUE_PICKUP, err, 3,
                 (const wchar_t *[]){ name, what, dst });
}

/* Whether to report a failure that leaves a file for the next scan, once a
 * minute per cause (location and status); *more: the count held back, in
 * words ("" when none). */
static int repeat_allowed(DWORD location, DWORD status, wchar_t *more, size_t n)
{
    if (!pk.failures_ready) {
        penalty_limiter_init(&pk.failures, PICKUP_EVENT_MS);
        pk.failures_ready = 1;
    }
    DWORD key[2] = { location, status };
    unsigned long held = 0;
    if (!penalty_report(&pk.failures, key, sizeof key, GetTickCount64(), &held))
        return 0;
    more[0] = 0;
    if (held)
        _snwprintf(more, n, L" (%lu more such failures in the last minute were not logged)", held);
    more[n - 1] = 0;
    return 1;
}

/* The queue could not store the file's message: it stays for the next scan.
 * A full disk is reported by the spool (once); anything else here, once a
 * minute per error. */
static void report_store_failure(const wchar_t *name, DWORD err)
{
    wchar_t what[MAX_PATH + 200], more[96];
    if (!repeat_allowed(LOC_QUEUE_PICKUP, err, more, ARRAYSIZE(more)))
        return;
    _snwprintf(what, ARRAYSIZE(what), L"cannot queue the pickup file %ls; it stays in the Pickup "
               L"folder and is tried again%ls", name, more);
    what[ARRAYSIZE(what) - 1] = 0;
    evlog_report(EVENTLOG_ERROR_TYPE, CAT_QUEUING, MSG_SPOOL_ERROR, LOC_QUEUE_PICKUP, err, 1,
                 (const wchar_t *[]){ what });
}

/* Whose address was refused, and why, in one sentence. */
static void refusal_text(const struct rewrite_refusal *ref, char *out, size_t n)
{
    snprintf(out, n, "the address map refuses the %s %s: %d %s %s", ref->sender ? "sender" :
             "recipient", ref->address, ref->code, ref->status, ref->why);
}

/* The file's envelope through the address map in force. Returns 0 (go on),
 * 1 (refused for good: the file went to Badmail) or -1 (not now: it stays,
 * reported once a minute). */
static int map_envelope(const wchar_t *path, const wchar_t *name, struct envelope *env)
{
    struct mapfile_ref m;
    struct rewrite_refusal ref;
    char why[sizeof ref.why + ADDR_PATH_MAX + 100];
    mapfile_acquire(&m);
    struct rewrite_config c = { m.map, m.wanted, pk.run.local };
    int rc = rewrite_envelope(&c, env, &ref);   /* copies what it takes from the map */
    mapfile_release(&m);
    if (rc == 0)
        return 0;
    refusal_text(&ref, why, sizeof why);
    if (ref.code >= 500) {
        to_badmail(path, name, why, ERROR_INVALID_DATA);
        return 1;
    }
    wchar_t wwhy[ARRAYSIZE(why)], more[96];
    if (!repeat_allowed(LOC_ADDR_MAP_PICKUP, ERROR_RETRY, more, ARRAYSIZE(more)))
        return -1;
    utf8_to_wide(why, wwhy, ARRAYSIZE(wwhy) - ARRAYSIZE(more));
    wcscat(wwhy, more);
    evlog_report(EVENTLOG_WARNING_TYPE, CAT_ADDRESSING, MSG_ADDRESS_MAP_PICKUP_WAIT,
                 LOC_ADDR_MAP_PICKUP, ERROR_RETRY, 2, (const wchar_t *[]){ name, wwhy });
    return -1;
}

/* Queue one file. Returns -1 when the queue cannot take messages now (the
 * scan ends there), else 0. */
static int take(const wchar_t *name)
{
    wchar_t path[MAX_PATH];
    _snwprintf(path, MAX_PATH, L"%ls\\%ls", pk.run.dir, name);
    path[MAX_PATH - 1] = 0;
    /* Exclusive: a file an application is still writing is left alone. */
    HANDLE h = CreateFileW(path, GENERIC_READ, 0, NULL, OPEN_EXISTING, 0, NULL);
    if (h == INVALID_HANDLE_VALUE)
        return 0;
    LARGE_INTEGER sz;
    char *buf = NULL;
    DWORD got = 0;
    int ok = GetFileSizeEx(h, &sz) && (uint64_t)sz.QuadPart <= pk.run.max_size &&
             (buf = malloc((size_t)sz.QuadPart + 1)) != NULL &&
             ReadFile(h, buf, (DWORD)sz.QuadPart, &got, NULL) && got == (DWORD)sz.QuadPart;
    CloseHandle(h);
    if (!ok) {
        struct receipt_answer big;
        receipt_answer(RECEIPT_PICKUP, RECEIPT_TOO_BIG, 0, NULL, &big);
        const char *why = buf || sz.QuadPart <= (LONGLONG)pk.run.max_size
                          ? "the file could not be read" : big.text;
        DWORD err = GetLastError();
        free(buf);
        to_badmail(path, name, why, err);
        return 0;
    }
    size_t len = got, body = 0;
    struct pick p = { .why = "" };
    env_init(&p.env);
    if (parse_file(&p, buf, &len, &body) != 0) {
        to_badmail(path, name, p.why, ERROR_INVALID_DATA);
        env_free(&p.env);
        free(buf);
        return 0;
    }
    if (map_envelope(path, name, &p.env) != 0) {
        env_free(&p.env);
        free(buf);
        return 0;   /* in Badmail, or left for the next scan */
    }
    snprintf(p.env.client, sizeof p.env.client, "pickup directory");
    int rc = 0;
    struct receive *r = receive_begin(RECEIPT_PICKUP, NULL);
    if (r) {
        char origin[MAX_PATH * 3 + 16];
        wide_to_utf8(name, origin + 12, sizeof origin - 12);
        memcpy(origin, "pickup file ", 12);
        receive_describe(r, origin);
        receive_write(r, buf + body, len - body);
        DWORD err = 0;
        enum receipt_outcome o = receive_run(r, &p.env);
        receive_outcome(r, &err);
        struct receipt_answer a;
        receive_result(r, &a);
        if (a.fate == RECEIPT_FATE_TAKEN) {
            DeleteFileW(path);
        } else if (a.fate == RECEIPT_FATE_REFUSED) {
            to_badmail(path, name, a.text, 0);
        } else if (o == RECEIPT_STORE_FAILED) {
            if (a.events & RECEIPT_EV_STORE_FAILED)
                report_store_failure(name, err);
            rc = -1;
        }
        /* RECEIPT_FATE_RETRY: the file stays and is tried at the next scan */
        receive_free(r);
    }
    env_free(&p.env);
    free(buf);
    return rc;
}

/* One pass: at most PICKUP_FILES_MAX files, those named after the cursor
 * first; a pass that reaches the end of the folder starts the next from its
 * beginning. Returns how many files it looked at. */
static unsigned scan_pass(void)
{
    AcquireSRWLockShared(&pk.lock);
    pk.run = pk.set;
    ReleaseSRWLockShared(&pk.lock);
    wchar_t pat[MAX_PATH];
    _snwprintf(pat, MAX_PATH, L"%ls\\*.eml", pk.run.dir);
    pat[MAX_PATH - 1] = 0;
    WIN32_FIND_DATAW fd;
    HANDLE f = FindFirstFileW(pat, &fd);
    if (f == INVALID_HANDLE_VALUE) {
        pk.cursor[0] = 0;
        return 0;
    }
    unsigned n = 0;
    wchar_t last[MAX_PATH] = L"";
    do {
        if ((fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) || wcscmp(fd.cFileName, pk.cursor) <= 0)
            continue;
        n++;
        if (wcscmp(fd.cFileName, last) > 0)
            wcscpy(last, fd.cFileName);
        if (take(fd.cFileName) != 0)
            break;   /* the queue cannot take messages now: the next pass tries again */
    } while (n < PICKUP_FILES_MAX && !pk.stop && FindNextFileW(f, &fd));
    FindClose(f);
    if (n < PICKUP_FILES_MAX)
        pk.cursor[0] = 0;   /* the end of the folder: the next pass from its beginning */
    else
        wcscpy(pk.cursor, last);
    return n;
}

static DWORD WINAPI pickup_main(void *arg)
{
    (void)arg;
    while (!pk.stop) {
        unsigned n = pk.paused ? 0 : scan_pass();
        /* A full pass means more may wait: go on at once, else every interval. */
        WaitForSingleObject(pk.wake, n >= PICKUP_FILES_MAX ? 0 : PICKUP_INTERVAL_SECS * 1000u);
    }
    return 0;
}

DWORD pickup_start(const struct imsvc_config *cfg)
{
    pickup_reconfigure(cfg);
    pk.stop = 0;
    pk.cursor[0] = 0;
    if (!pk.wake)
        pk.wake = CreateEventW(NULL, FALSE, FALSE, NULL);
    if (!pk.wake)
        return GetLastError();
    pk.thread = CreateThread(NULL, 0, pickup_main, NULL, 0, NULL);
    return pk.thread ? ERROR_SUCCESS : GetLastError();
}

void pickup_pause(int paused)
{
    InterlockedExchange(&pk.paused, paused ? 1 : 0);
    if (pk.wake)
        SetEvent(pk.wake);
}

void pickup_stop(DWORD wait_ms)
{
    if (!pk.thread)
        return;
    InterlockedExchange(&pk.stop, 1);
    SetEvent(pk.wake);
    /* A file in the filter past the wait is abandoned: it stays in Pickup,
     * and its message, not committed, is not in the queue. */
    WaitForSingleObject(pk.thread, wait_ms);
    CloseHandle(pk.thread);
    pk.thread = NULL;
}
