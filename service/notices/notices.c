/* notices.c - non-delivery reports, delay notifications and Badmail (see
 * notices.h). */
#include <winsock2.h>
#include <windows.h>

#include "notices.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "clock.h"
#include "dsn.h"
#include "eventlog.h"
#include "location.h"
#include "mime.h"
#include "receipt.h"
#include "receive.h"
#include "tracking.h"
#include "utf.h"

static volatile LONG seq;   /* makes each notice's Message-ID unique */

void notices_config_make(const struct imsvc_config *cfg, uint32_t expire,
                         struct notices_config *nc)
{
    memset(nc, 0, sizeof *nc);
    wide_to_utf8(cfg->host_name, nc->helo, sizeof nc->helo);
    nc->expire = expire;
    nc->full_content = _wcsicmp(cfg->ndr_content, L"full") == 0;
    config_badmail_dir(cfg, nc->badmail_dir, MAX_PATH);
}

/* Queueing a notice ------------------------------------------------------- */

/* Through the receive module, as every message: content, and an envelope
 * with from and recipients (its id and arrival are set there). Returns a
 * Win32 error; on success the message is on disk. */
static DWORD submit(const void *content, size_t len, struct envelope *env)
{
    struct receive *r = receive_begin(RECEIPT_NOTICE, NULL);
    if (!r)
        return ERROR_NOT_ENOUGH_MEMORY;
    receive_write(r, content, len);
    DWORD err = ERROR_SUCCESS;
    if (receive_run(r, env) != RECEIPT_QUEUED) {
        receive_outcome(r, &err);
        if (!err)
            err = ERROR_INVALID_DATA;   /* refused by a limit: not queued all the same */
    }
    receive_free(r);
    return err;
}

/* Badmail and notices ------------------------------------------------------- */

/* A message nobody can be told about: content and reason side by side;
 * why: the event's short reason (UTF-8). */
static void badmail(const struct notices_config *nc, const struct notices_msg *m,
                    const char *reason, const char *why_utf8)
{
    wchar_t eml[MAX_PATH], txt[MAX_PATH];
    _snwprintf(eml, MAX_PATH, L"%ls\\%hs.eml", nc->badmail_dir, m->id);
    _snwprintf(txt, MAX_PATH, L"%ls\\%hs.txt", nc->badmail_dir, m->id);
    eml[MAX_PATH - 1] = txt[MAX_PATH - 1] = 0;
    CreateDirectoryW(nc->badmail_dir, NULL);
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
    tracking_badmail(m->id, m->env, why_utf8);
    utf8_to_wide(m->id, wid, ARRAYSIZE(wid));
    utf8_to_wide(why_utf8, why, ARRAYSIZE(why));
    evlog_report(EVENTLOG_WARNING_TYPE, CAT_QUEUING, MSG_BADMAIL, LOC_QUEUE_BADMAIL, err, 3,
          (const wchar_t *[]){ wid, why, eml });
}

/* Compose and queue a DSN about recipients which[] of m. Returns its fate
 * (core/notice.h); *qerr: the Win32 error when it could not be queued. */
static enum notice_fate send_notice(const struct notices_config *nc, const struct notices_msg *m,
                                    enum dsn_action action, const size_t *which, size_t n,
                                    const char *reason, DWORD *qerr)
{
    *qerr = 0;
    char date[64], arrival[64], until[64], msgid[ENV_ID_MAX + 300];
    int64_t now = clock_unix();
    clock_rfc5322(now, date, sizeof date);
    clock_rfc5322(m->env->arrived, arrival, sizeof arrival);
    clock_rfc5322(m->env->arrived + nc->expire, until, sizeof until);
    snprintf(msgid, sizeof msgid, "<%s.%s.%ld@%s>", action == DSN_FAILED ? "ndr" : "delay",
             m->id, (long)InterlockedIncrement(&seq), nc->helo);
    struct dsn_request r = {
        .action = action, .env = m->env, .which = which, .n_which = n, .host = nc->helo,
        .date = date, .arrival_date = arrival, .message_id = msgid,
        .retry_until = action == DSN_DELAYED ? until : NULL,
        .original = (const char *)m->content, .original_len = m->len,
        /* NdrContent: the sender may be forged, so by default only headers go back */
        .content = nc->full_content ? DSN_CONTENT_FULL : DSN_CONTENT_HEADERS,
    };
    size_t len = 0;
    enum dsn_result res = dsn_compose(&r, NULL, 0, &len);
    char *buf = NULL;
    if (res == DSN_TOO_SMALL) {
        buf = malloc(len + 1);
        res = buf ? dsn_compose(&r, buf, len + 1, &len) : DSN_BAD_INPUT;
    }
    if (res == DSN_NULL_SENDER || res == DSN_NOBODY) {
        free(buf);
        return notice_fate(res, 0);
    }
    wchar_t wid[ENV_ID_MAX + 1], wfrom[600], wnew[ENV_ID_MAX + 1], wrcpts[1200], wreason[600];
    char from[600], rcpts[1200] = "";
    addr_mailbox_text(&m->env->from, from, sizeof from);
    for (size_t i = 0, o = 0; i < n && o < sizeof rcpts - 2; i++) {
        char one[600];
        addr_mailbox_text(&m->env->rcpt[which[i]].addr, one, sizeof one);
        int w = snprintf(rcpts + o, sizeof rcpts - o, "%s%s", i ? ", " : "", one);
        if (w < 0 || (size_t)w >= sizeof rcpts - o)
            break;
        o += (size_t)w;
    }
    utf8_to_wide(m->id, wid, ARRAYSIZE(wid));
    utf8_to_wide(from, wfrom, ARRAYSIZE(wfrom));
    utf8_to_wide(rcpts, wrcpts, ARRAYSIZE(wrcpts));
    utf8_to_wide(reason, wreason, ARRAYSIZE(wreason));
    DWORD err = ERROR_INVALID_DATA;   /* could not be composed */
    struct envelope ne;
    env_init(&ne);
    ne.from.null_path = 1;
    ne.body = mime_has_8bit((const unsigned char *)buf, buf ? len : 0) ? ADDR_BODY_8BITMIME
                                                                  : ADDR_BODY_NONE;
    if (res == DSN_OK)
        err = env_add_rcpt(&ne, &m->env->from, NULL) >= 0 ? submit(buf, len, &ne)
                                                         : ERROR_NOT_ENOUGH_MEMORY;
    free(buf);
    if (err) {
        wchar_t what[300];
        _snwprintf(what, ARRAYSIZE(what), L"cannot queue the %ls for message %ls to %ls",
                   action == DSN_FAILED ? L"non-delivery report" : L"delay notification",
                   wid, wfrom);
        what[ARRAYSIZE(what) - 1] = 0;
        evlog_report(EVENTLOG_ERROR_TYPE, CAT_QUEUING, MSG_SPOOL_ERROR, LOC_QUEUE_NDR, err, 1,
              (const wchar_t *[]){ what });
        env_free(&ne);
        *qerr = res == DSN_OK ? err : 0;
        return notice_fate(res, err);
    }
    utf8_to_wide(ne.id, wnew, ARRAYSIZE(wnew));
    tracking_dsn(m->id, m->env, ne.id, action == DSN_FAILED);
    env_free(&ne);
    if (action == DSN_FAILED)
        evlog_report(EVENTLOG_INFORMATION_TYPE, CAT_QUEUING, MSG_NDR_SENT, LOC_QUEUE_NDR, 0, 5,
              (const wchar_t *[]){ wid, wfrom, wnew, wrcpts, wreason });
    else
        evlog_report(EVENTLOG_INFORMATION_TYPE, CAT_QUEUING, MSG_DELAY_SENT, LOC_QUEUE_NDR, 0, 4,
              (const wchar_t *[]){ wid, wfrom, wnew, wrcpts });
    return NOTICE_QUEUED;
}


enum notice_fate notices_delay(const struct notices_config *nc, struct notices_msg *m,
                               const size_t *which, size_t n)
{
    DWORD qerr;   /* a delay notice that cannot be queued is reported, not retried */
    enum notice_fate nf = send_notice(nc, m, DSN_DELAYED, which, n, "", &qerr);
    for (size_t i = 0; i < n; i++)
        m->env->rcpt[which[i]].notified |= ENV_NOTIFIED_DELAY;
    return nf;
}

void notices_failures(const struct notices_config *nc, struct notices_msg *m)
{
    size_t *which = malloc((m->env->n_rcpt ? m->env->n_rcpt : 1) * sizeof *which);
    size_t n = 0;
    char reason[ENV_WHY_MAX + 32] = "";
    for (size_t i = 0; which && i < m->env->n_rcpt; i++) {
        struct env_rcpt *r = &m->env->rcpt[i];
        if (r->state == ENV_FAILED && !(r->notified & ENV_NOTIFIED_FAILURE)) {
            which[n++] = i;
            if (!reason[0])
                snprintf(reason, sizeof reason, "%s %s", r->status, r->why);
        }
    }
    if (n > 0) {
        DWORD qerr;
        enum notice_fate nf = send_notice(nc, m, DSN_FAILED, which, n, reason, &qerr);
        if (notice_to_badmail(nf)) {
            /* Why no report went out, in its own words: a notice that could
             * not be queued is not a message from <>. */
            char note[256], why[200];
            notice_badmail_note(nf, DSN_FAILED, qerr, note, sizeof note);
            notice_badmail_why(nf, DSN_FAILED, qerr, why, sizeof why);
            char text[ENV_WHY_MAX * 2 + 2048];
            size_t o = 0;
            for (size_t i = 0; i < n && o < sizeof text - 1; i++) {
                const struct env_rcpt *r = &m->env->rcpt[which[i]];
                char a[600];
                addr_mailbox_text(&r->addr, a, sizeof a);
                int w = snprintf(text + o, sizeof text - o,
                                 "Message %s could not be delivered to %s (status %s).\r\n"
                                 "Reason: %s\r\n%s%s%s%s", m->id, a, r->status, r->why,
                                 r->reply[0] ? "Remote reply: " : "", r->reply,
                                 r->reply[0] ? "\r\n" : "", note);
                if (w < 0 || (size_t)w >= sizeof text - o)
                    break;
                o += (size_t)w;
            }
            badmail(nc, m, text, why);
        }
        for (size_t i = 0; i < n; i++)
            m->env->rcpt[which[i]].notified |= ENV_NOTIFIED_FAILURE;
    }
    free(which);
}
