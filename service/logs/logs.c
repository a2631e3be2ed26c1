/* logs.c - the logs' buffers, their thread and their daily files (see
 * logs.h).
 *
 * Must never make a caller wait for the disk: logs_append copies into a
 * bounded buffer under a lock held for a memcpy; only the log thread opens,
 * writes and deletes files.
 */
#include "logs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventlog.h"
#include "location.h"
#include "protolog.h"
#include "tracklog.h"
#include "utf.h"
#include "version.h"

#define LOGS_BUF_MAX   (1024u * 1024u)  /* lines waiting per log; beyond, dropped and counted */
#define LOGS_WAKE_AT   (64u * 1024u)    /* wake the thread early past this */
#define LOGS_FLUSH_MS  1000u
#define LOGS_REPORT_MS 60000u           /* a failure or a loss: one event a minute at most */
#define LOGS_HOST_MAX  256u

struct logbuf {
    char *p;
    size_t len, cap;
    unsigned long dropped;              /* lines lost to a full buffer */
};

struct logfile {
    HANDLE h;                           /* INVALID_HANDLE_VALUE: not open */
    int day;                            /* yyyymmdd of the open file */
    ULONGLONG reported;                 /* tick of the last event about this log */
};

static struct {
    SRWLOCK lock;                       /* guards buf, dir, host, ip, port, days */
    struct logbuf buf[LOG_KINDS];
    volatile LONG on[LOG_KINDS];
    volatile LONG running, stop;
    HANDLE thread, wake;
    wchar_t dir[MAX_PATH];
    DWORD days;
    char host[LOGS_HOST_MAX], ip[64];
    unsigned port;
    struct logfile file[LOG_KINDS];     /* the thread's own */
    int swept;                          /* yyyymmdd of the last retention sweep */
} lg = { .lock = SRWLOCK_INIT };

const wchar_t *logs_prefix(enum log_kind k)
{
    return k == LOG_PROTOCOL ? LOGS_PROTOCOL_PREFIX : LOGS_TRACKING_PREFIX;
}

void logs_dir(const struct imsvc_config *cfg, wchar_t *out, size_t n)
{
    _snwprintf(out, n, L"%ls\\Logs", cfg->data_dir);
    out[n - 1] = 0;
}

int logs_enabled(enum log_kind k)
{
    return lg.running && lg.on[k];
}

void logs_server(char *name, size_t name_len, char *ip, size_t ip_len, unsigned *port)
{
    AcquireSRWLockShared(&lg.lock);
    snprintf(name, name_len, "%s", lg.host);
    snprintf(ip, ip_len, "%s", lg.ip);
    *port = lg.port;
    ReleaseSRWLockShared(&lg.lock);
}

void logs_append(enum log_kind k, const char *lines, size_t len)
{
    if (!logs_enabled(k) || len == 0)
        return;
    int wake = 0;
    AcquireSRWLockExclusive(&lg.lock);
    struct logbuf *b = &lg.buf[k];
    if (b->len + len > LOGS_BUF_MAX) {
        b->dropped++;
    } else {
        if (b->len + len > b->cap) {
            size_t cap = b->cap ? b->cap : 16384;
            while (cap < b->len + len)
                cap *= 2;
            char *p = realloc(b->p, cap);
            if (p) {
                b->p = p;
                b->cap = cap;
            }
        }
        if (b->len + len <= b->cap) {
            memcpy(b->p + b->len, lines, len);
            b->len += len;
            wake = b->len >= LOGS_WAKE_AT;
        } else {
            b->dropped++;
        }
    }
    ReleaseSRWLockExclusive(&lg.lock);
    if (wake)
        SetEvent(lg.wake);
}

/* The log thread --------------------------------------------------------- */

static int day_of(const SYSTEMTIME *t)
{
    return t->wYear * 10000 + t->wMonth * 100 + t->wDay;
}

/* Days since 1601 for a yyyymmdd; -1 when it is not a date. */
static LONGLONG day_number(int ymd)
{
    SYSTEMTIME st = { 0 };
    FILETIME ft;
    st.wYear = (WORD)(ymd / 10000);
    st.wMonth = (WORD)(ymd / 100 % 100);
    st.wDay = (WORD)(ymd % 100);
    if (!SystemTimeToFileTime(&st, &ft))
        return -1;
    ULARGE_INTEGER u;
    u.LowPart = ft.dwLowDateTime;
    u.HighPart = ft.dwHighDateTime;
    return (LONGLONG)(u.QuadPart / 864000000000ull);
}

static void report(enum log_kind k, DWORD id, DWORD location, DWORD err, int n,
                   const wchar_t *const *strings)
{
    ULONGLONG now = GetTickCount64();
    struct logfile *f = &lg.file[k];
    if (f->reported && now - f->reported < LOGS_REPORT_MS)
        return;
    f->reported = now;
    evlog_report(EVENTLOG_WARNING_TYPE, CAT_INTERNAL_PROCESSING, id, location, err, n, strings);
}

static const wchar_t *kind_name(enum log_kind k)
{
    return k == LOG_PROTOCOL ? L"protocol log" : L"message tracking log";
}

static int header(enum log_kind k, const SYSTEMTIME *t, char *buf, size_t n)
{
    char date[16], time[16];
    snprintf(date, sizeof date, "%04u-%02u-%02u", t->wYear, t->wMonth, t->wDay);
    snprintf(time, sizeof time, "%02u:%02u:%02u", t->wHour, t->wMinute, t->wSecond);
    if (k == LOG_PROTOCOL)
        return plog_header("imsvc " IMSVC_VERSION, date, time, buf, n);
    int w = snprintf(buf, n, "#Software: imsvc %s\r\n#Version: 1.0\r\n#Log-type: Message Tracking "
                     "Log\r\n#Date: %sT%s.000Z\r\n#Fields: %s\r\n", IMSVC_VERSION, date, time,
                     TRACK_FIELDS);
    return w < 0 || (size_t)w >= n ? -1 : w;
}

/* Delete both logs' files older than the retention (by the date in the
 * name), once a day. */
static void sweep(const wchar_t *dir, DWORD days, int today)
{
    if (lg.swept == today)
        return;
    lg.swept = today;
    LONGLONG limit = day_number(today) - (LONGLONG)days;
    for (int k = 0; k < LOG_KINDS; k++) {
        wchar_t pattern[MAX_PATH];
        const wchar_t *prefix = logs_prefix((enum log_kind)k);
        size_t plen = wcslen(prefix);
        _snwprintf(pattern, MAX_PATH, L"%ls\\%ls*.log", dir, prefix);
        pattern[MAX_PATH - 1] = 0;
        WIN32_FIND_DATAW fd;
        HANDLE h = FindFirstFileW(pattern, &fd);
        if (h == INVALID_HANDLE_VALUE)
            continue;
        do {
            const wchar_t *d = fd.cFileName + plen;
            int ymd = 0, ok = wcslen(fd.cFileName) == plen + 12 && _wcsicmp(d + 8, L".log") == 0;
            for (int i = 0; ok && i < 8; i++) {
                ok = d[i] >= L'0' && d[i] <= L'9';
                ymd = ymd * 10 + (d[i] - L'0');
            }
            LONGLONG dn = ok ? day_number(ymd) : -1;
            if (dn < 0 || dn >= limit)
                continue;
            wchar_t path[MAX_PATH];
            _snwprintf(path, MAX_PATH, L"%ls\\%ls", dir, fd.cFileName);
            path[MAX_PATH - 1] = 0;
            if (!DeleteFileW(path))
                report((enum log_kind)k, MSG_LOG_WRITE_FAILED, LOC_LOGS_RETENTION, GetLastError(),
                       2, (const wchar_t *[]){ kind_name((enum log_kind)k), path });
        } while (FindNextFileW(h, &fd));
        FindClose(h);
    }
}

/* The file for today, open for appending (a new day or the first write of
 * this process starts with the header). */
static HANDLE file_for(enum log_kind k, const wchar_t *dir, const SYSTEMTIME *now)
{
    struct logfile *f = &lg.file[k];
    int today = day_of(now);
    if (f->h != INVALID_HANDLE_VALUE && f->day == today)
        return f->h;
    if (f->h != INVALID_HANDLE_VALUE)
        CloseHandle(f->h);
    f->h = INVALID_HANDLE_VALUE;
    CreateDirectoryW(dir, NULL);
    wchar_t path[MAX_PATH];
    _snwprintf(path, MAX_PATH, L"%ls\\%ls%08d.log", dir, logs_prefix(k), today);
    path[MAX_PATH - 1] = 0;
    HANDLE h = CreateFileW(path, FILE_APPEND_DATA, FILE_SHARE_READ | FILE_SHARE_WRITE |
                           FILE_SHARE_DELETE, NULL, OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
    if (h == INVALID_HANDLE_VALUE) {
        report(k, MSG_LOG_WRITE_FAILED, LOC_LOGS_OPEN, GetLastError(), 2,
               (const wchar_t *[]){ kind_name(k), path });
        return h;
    }
    char hdr[1024];
    int n = header(k, now, hdr, sizeof hdr);
    DWORD w;
    if (n > 0)
        WriteFile(h, hdr, (DWORD)n, &w, NULL);
    f->h = h;
    f->day = today;
    return h;
}

/* Take what waits and write it; returns when done. */
static void flush_all(void)
{
    SYSTEMTIME now;
    GetSystemTime(&now);
    wchar_t dir[MAX_PATH];
    DWORD days;
    struct logbuf take[LOG_KINDS];
    AcquireSRWLockExclusive(&lg.lock);
    memcpy(dir, lg.dir, sizeof dir);
    days = lg.days;
    for (int k = 0; k < LOG_KINDS; k++) {
        take[k] = lg.buf[k];
        memset(&lg.buf[k], 0, sizeof lg.buf[k]);
    }
    ReleaseSRWLockExclusive(&lg.lock);
    for (int k = 0; k < LOG_KINDS; k++) {
        struct logbuf *b = &take[k];
        if (b->len) {
            HANDLE h = file_for((enum log_kind)k, dir, &now);
            DWORD w = 0;
            if (h != INVALID_HANDLE_VALUE && (!WriteFile(h, b->p, (DWORD)b->len, &w, NULL) ||
                                              w != b->len)) {
                wchar_t path[MAX_PATH];
                _snwprintf(path, MAX_PATH, L"%ls\\%ls%08d.log", dir, logs_prefix((enum log_kind)k),
                           day_of(&now));
                path[MAX_PATH - 1] = 0;
                report((enum log_kind)k, MSG_LOG_WRITE_FAILED, LOC_LOGS_WRITE, GetLastError(), 2,
                       (const wchar_t *[]){ kind_name((enum log_kind)k), path });
            }
        }
        if (b->dropped) {
            wchar_t count[16];
            _snwprintf(count, ARRAYSIZE(count), L"%lu", b->dropped);
            count[ARRAYSIZE(count) - 1] = 0;
            report((enum log_kind)k, MSG_LOG_LINES_DROPPED, LOC_LOGS_DROPPED, 0, 2,
                   (const wchar_t *[]){ kind_name((enum log_kind)k), count });
        }
        free(b->p);
    }
    sweep(dir, days, day_of(&now));
}

static DWORD WINAPI logs_main(void *arg)
{
    (void)arg;
    while (!lg.stop) {
        WaitForSingleObject(lg.wake, LOGS_FLUSH_MS);
        flush_all();
    }
    flush_all();
    for (int k = 0; k < LOG_KINDS; k++) {
        if (lg.file[k].h != INVALID_HANDLE_VALUE)
            CloseHandle(lg.file[k].h);
        lg.file[k].h = INVALID_HANDLE_VALUE;
    }
    return 0;
}

/* Start and configuration -------------------------------------------------- */

void logs_configure(const struct imsvc_config *cfg)
{
    AcquireSRWLockExclusive(&lg.lock);
    logs_dir(cfg, lg.dir, MAX_PATH);
    lg.days = cfg->log_retention_days;
    lg.swept = 0;   /* a new retention applies at once */
    wide_to_utf8(cfg->host_name, lg.host, sizeof lg.host);
    wide_to_utf8(cfg->listen_address, lg.ip, sizeof lg.ip);
    lg.port = cfg->listen_port;
    ReleaseSRWLockExclusive(&lg.lock);
    InterlockedExchange(&lg.on[LOG_PROTOCOL], cfg->protocol_log ? 1 : 0);
    InterlockedExchange(&lg.on[LOG_TRACKING], cfg->tracking_log ? 1 : 0);
}

DWORD logs_start(const struct imsvc_config *cfg)
{
    for (int k = 0; k < LOG_KINDS; k++)
        lg.file[k].h = INVALID_HANDLE_VALUE;
    logs_configure(cfg);
    lg.stop = 0;
    lg.wake = CreateEventW(NULL, FALSE, FALSE, NULL);
    if (!lg.wake)
        return GetLastError();
    lg.thread = CreateThread(NULL, 0, logs_main, NULL, 0, NULL);
    if (!lg.thread) {
        DWORD err = GetLastError();
        CloseHandle(lg.wake);
        lg.wake = NULL;
        return err;
    }
    InterlockedExchange(&lg.running, 1);
    return ERROR_SUCCESS;
}

void logs_stop(void)
{
    if (!lg.thread)
        return;
    InterlockedExchange(&lg.running, 0);   /* no more lines taken */
    InterlockedExchange(&lg.stop, 1);
    SetEvent(lg.wake);
    WaitForSingleObject(lg.thread, 10000);
    CloseHandle(lg.thread);
    CloseHandle(lg.wake);
    lg.thread = NULL;
    lg.wake = NULL;
}
