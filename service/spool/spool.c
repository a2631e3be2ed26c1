/* spool.c - the queue on disk (see spool.h and docs/queue-format.md).
 *
 * One committer thread owns the current commit log. Sessions hand it their
 * finished messages and wait; it takes every request waiting at that
 * moment, appends one record each, flushes the log once for all of them,
 * renames their files into the queue and wakes them. The checkpointer takes
 * logs the committer has closed, flushes the queue files they cover and
 * deletes them; until then a log is what makes its messages durable. At
 * start, recovery replays the logs left behind.
 * Nothing here may acknowledge, or let anyone acknowledge, a message whose
 * bytes are not on disk, nor delete a log, or content in tmp\ that a log
 * refers to, before what it holds is restored.
 */
#include "spool.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "commitlog.h"
#include "eventlog.h"
#include "location.h"
#include "storage.h"

#define SPOOL_ENV_MAX       CLOG_ENV_MAX          /* an envelope file, read whole */
#define SPOOL_LOG_ROTATE    (8u * 1024u * 1024u)  /* start a new log past this size */
#define SPOOL_IDLE_ROTATE_MS 1000u                /* ... or after this long without commits */
#define SPOOL_COPY_CHUNK    65536u
/* A message is committed into Queue\active\ and stays there until its
 * first envelope update (a delivery attempt that leaves it waiting, a
 * retry request) moves it into Queue\XX\YY\, XX and YY from a hash of the
 * ID; held messages live in Hold\XX\YY\. Under Wine, creating a file costs
 * time that grows with its folder, so no folder may grow with the waiting
 * queue: 64 x 64 folders keep about two dozen files in each with 50,000
 * messages waiting, while active\ holds only what is being delivered for
 * the first time. */
#define SPOOL_HASH_FANOUT   64u

#define REC_INLINE CLOG_INLINE
#define REC_HOLD   CLOG_HOLD

struct spool_msg {
    char id[ENV_ID_MAX + 1];
    wchar_t path[MAX_PATH];        /* tmp\ID.eml */
    wchar_t env_path[MAX_PATH];    /* tmp\ID.env, once written */
    HANDLE h;
    uint64_t size;
    uint32_t crc;
    unsigned char *mem;            /* the content too, while it fits a record */
    size_t mem_cap;
    int spilled;                   /* larger than SPOOL_INLINE_MAX: file only */
    int readable;                  /* opened without DELETE: renamed by name */
    DWORD write_error;
    /* the commit request */
    char *env_text;
    size_t env_len;
    int hold;
    DWORD result;
    int done;
    void (*on_done)(void *arg, DWORD err);   /* spool_commit_async: told, not waited for */
    void *on_done_arg;
    struct spool_msg *next;
};

static struct {
    wchar_t dir[MAX_PATH];
    wchar_t tmp[MAX_PATH], logdir[MAX_PATH], hold[MAX_PATH], active[MAX_PATH];
    int open;
    CRITICAL_SECTION lock;             /* requests, closed logs, stop */
    CRITICAL_SECTION log_lock;         /* appending to the log; taken after lock */
    CONDITION_VARIABLE work;           /* committer: requests or stop */
    CONDITION_VARIABLE done;           /* sessions: their commit finished */
    CONDITION_VARIABLE ckpt_work;      /* checkpointer: a closed log or stop */
    struct spool_msg *head, *tail;
    HANDLE log;
    unsigned log_seq;
    uint64_t log_size;
    unsigned closed_logs[64];          /* waiting for the checkpointer */
    size_t n_closed;
    int stop;
    HANDLE committer, checkpointer;
    volatile LONG seq;
    volatile LONG64 commits, flushes;
    void (*notify)(const char *id);
    /* The removal log, while recovery keeps a commit log (see Recovery). */
    CRITICAL_SECTION removals_lock;
    HANDLE removals;
    unsigned removals_seq;
    DWORD removals_err;
} sp = { .log = INVALID_HANDLE_VALUE, .removals = INVALID_HANDLE_VALUE };

/* Event 4100: what could not be done (a format over UTF-8 IDs, %hs). */
static void report(DWORD location, DWORD err, const wchar_t *fmt, ...)
{
    wchar_t what[300];
    va_list ap;
    va_start(ap, fmt);
    _vsnwprintf(what, ARRAYSIZE(what), fmt, ap);
    va_end(ap);
    what[ARRAYSIZE(what) - 1] = 0;
    evlog_report(EVENTLOG_ERROR_TYPE, CAT_QUEUING, MSG_SPOOL_ERROR, location, err, 1,
                 (const wchar_t *[]){ what });
}

/* A full disk: one event when it begins (4150), one when messages are
 * stored again (4151), whatever the number of writes that fail between. */
static struct {
    SRWLOCK lock;
    struct storage_watch w;
} full = { SRWLOCK_INIT, { 0 } };

int spool_note_failure(DWORD err, DWORD location, int message, const wchar_t *fmt, ...)
{
    if (!storage_is_full(err))
        return 0;
    AcquireSRWLockExclusive(&full.lock);
    enum storage_event e = storage_failed(&full.w, err, message, clock_unix());
    ReleaseSRWLockExclusive(&full.lock);
    if (e == STORAGE_BEGAN) {
        wchar_t what[300];
        va_list ap;
        va_start(ap, fmt);
        _vsnwprintf(what, ARRAYSIZE(what), fmt, ap);
        va_end(ap);
        what[ARRAYSIZE(what) - 1] = 0;
        evlog_report(EVENTLOG_ERROR_TYPE, CAT_QUEUING, MSG_STORAGE_FULL, location, err, 2,
                     (const wchar_t *[]){ sp.dir, what });
    }
    return 1;
}

/* A message was stored: the end of a full disk, once it has been quiet. */
static void note_stored(void)
{
    AcquireSRWLockExclusive(&full.lock);
    enum storage_event e = storage_stored(&full.w, clock_unix());
    struct storage_watch w = full.w;
    ReleaseSRWLockExclusive(&full.lock);
    if (e != STORAGE_ENDED)
        return;
    char since[64];
    wchar_t wsince[64], messages[24], failures[24];
    clock_rfc5322(w.since, since, sizeof since);
    _snwprintf(wsince, ARRAYSIZE(wsince), L"%hs", since);
    _snwprintf(messages, ARRAYSIZE(messages), L"%lu", w.messages);
    _snwprintf(failures, ARRAYSIZE(failures), L"%lu", w.failures);
    wsince[ARRAYSIZE(wsince) - 1] = messages[ARRAYSIZE(messages) - 1] = 0;
    failures[ARRAYSIZE(failures) - 1] = 0;
    evlog_report(EVENTLOG_INFORMATION_TYPE, CAT_QUEUING, MSG_STORAGE_AVAILABLE, LOC_SPOOL_COMMIT,
                 0, 4, (const wchar_t *[]){ sp.dir, wsince, messages, failures });
}

void spool_counters(unsigned long long *commits, unsigned long long *flushes)
{
    *commits = (unsigned long long)InterlockedCompareExchange64(&sp.commits, 0, 0);
    *flushes = (unsigned long long)InterlockedCompareExchange64(&sp.flushes, 0, 0);
}

const wchar_t *spool_dir(void)
{
    return sp.dir;
}

const wchar_t *const spool_subfolders[] = { L"tmp", L"log", L"Hold", L"ctl", L"active", NULL };

void spool_set_dir(const wchar_t *queue_dir)
{
    _snwprintf(sp.dir, MAX_PATH, L"%ls", queue_dir);
    sp.dir[MAX_PATH - 1] = 0;
    _snwprintf(sp.tmp, MAX_PATH, L"%ls\\tmp", sp.dir);
    _snwprintf(sp.logdir, MAX_PATH, L"%ls\\log", sp.dir);
    _snwprintf(sp.hold, MAX_PATH, L"%ls\\Hold", sp.dir);
    _snwprintf(sp.active, MAX_PATH, L"%ls\\active", sp.dir);
}

void spool_set_notify(void (*fn)(const char *id))
{
    sp.notify = fn;
}

int spool_id_valid(const char *id)
{
    return env_id_valid(id);
}

/* FNV-1a: the IDs differ mostly in their last characters. */
static uint32_t id_hash(const char *id)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h;
}

/* The end of every path builder: 0 when n (from _snwprintf) fits out,
 * else -1 with out empty. */
static int path_fits(int n, wchar_t *out, size_t cap)
{
    if (n < 0 || (size_t)n >= cap) {
        out[0] = 0;
        return -1;
    }
    return 0;
}

/* A message's file in its hash folder: Queue\XX\YY\ID.ext, Hold\XX\YY\ID.ext. */
static int hash_path(const wchar_t *queue_dir, const char *id, int held, const wchar_t *ext,
                     wchar_t *out, size_t cap)
{
    if (cap == 0)
        return -1;
    out[0] = 0;
    if (!spool_id_valid(id))
        return -1;
    uint32_t h = id_hash(id);
    return path_fits(_snwprintf(out, cap, L"%ls%ls\\%02X\\%02X\\%hs.%ls", queue_dir,
                                held ? L"\\Hold" : L"", (unsigned)(h % SPOOL_HASH_FANOUT),
                                (unsigned)(h / SPOOL_HASH_FANOUT % SPOOL_HASH_FANOUT), id, ext),
                     out, cap);
}

/* A message's file before its first envelope update: Queue\active\ID.ext. */
static int active_path(const wchar_t *queue_dir, const char *id, const wchar_t *ext,
                       wchar_t *out, size_t cap)
{
    if (cap == 0)
        return -1;
    out[0] = 0;
    if (!spool_id_valid(id))
        return -1;
    return path_fits(_snwprintf(out, cap, L"%ls\\active\\%hs.%ls", queue_dir, id, ext), out,
                     cap);
}

/* A file only ever moves from active\ to its hash folder, never back: one
 * look in active\ and then the hash folder finds it wherever it is. */
int spool_path(const wchar_t *queue_dir, const char *id, int held, const wchar_t *ext,
               wchar_t *out, size_t cap)
{
    if (!held && active_path(queue_dir, id, ext, out, cap) == 0 &&
        GetFileAttributesW(out) != INVALID_FILE_ATTRIBUTES)
        return 0;
    return hash_path(queue_dir, id, held, ext, out, cap);
}

/* Where main before the hashed layout kept a message: Queue\ID.ext. */
static int flat_path(const wchar_t *queue_dir, const char *id, int held, const wchar_t *ext,
                     wchar_t *out, size_t cap)
{
    return path_fits(_snwprintf(out, cap, held ? L"%ls\\Hold\\%hs.%ls" : L"%ls\\%hs.%ls",
                                queue_dir, id, ext), out, cap);
}

void spool_ctl_dir(wchar_t *out, size_t cap)
{
    int n = _snwprintf(out, cap, L"%ls\\ctl", sp.dir);
    if (n < 0 || (size_t)n >= cap)
        out[0] = 0;
}

void spool_status_path(const wchar_t *queue_dir, wchar_t *out, size_t cap)
{
    int n = _snwprintf(out, cap, L"%ls\\status.txt", queue_dir);
    if (n < 0 || (size_t)n >= cap)
        out[0] = 0;
}

/* The two hash folders above a path spool_path made; they are made when
 * first needed and never removed (an empty folder costs nothing). */
static DWORD make_parents(const wchar_t *file)
{
    wchar_t d[MAX_PATH];
    if (wcslen(file) >= MAX_PATH)
        return ERROR_BUFFER_OVERFLOW;
    wcscpy(d, file);
    wchar_t *leaf = wcsrchr(d, L'\\');
    if (!leaf)
        return ERROR_PATH_NOT_FOUND;
    *leaf = 0;
    wchar_t *mid = wcsrchr(d, L'\\');
    if (!mid)
        return ERROR_PATH_NOT_FOUND;
    *mid = 0;
    if (!CreateDirectoryW(d, NULL) && GetLastError() != ERROR_ALREADY_EXISTS)
        return GetLastError();
    *mid = L'\\';
    if (!CreateDirectoryW(d, NULL) && GetLastError() != ERROR_ALREADY_EXISTS)
        return GetLastError();
    return ERROR_SUCCESS;
}

/* A rename into a hash folder, which is made if it is not there yet. */
static DWORD move_into(const wchar_t *from, const wchar_t *to, DWORD flags)
{
    if (MoveFileExW(from, to, flags))
        return ERROR_SUCCESS;
    DWORD err = GetLastError();
    if (err != ERROR_PATH_NOT_FOUND || make_parents(to) != ERROR_SUCCESS)
        return err;
    return MoveFileExW(from, to, flags) ? ERROR_SUCCESS : GetLastError();
}

/* Rename the file open as h (opened with DELETE access) to the full path
 * to, without the second open of the file that MoveFileEx makes (under Wine
 * each open is a server request, and the server resolves the whole path
 * again). The new name goes to the system in its NT form (\??\C:\...). */
static DWORD rename_open(HANDLE h, const wchar_t *to, int replace)
{
    wchar_t full[MAX_PATH];
    DWORD n = GetFullPathNameW(to, MAX_PATH, full, NULL);
    if (n == 0 || n >= MAX_PATH)
        return n ? ERROR_FILENAME_EXCED_RANGE : GetLastError();
    const wchar_t *prefix = L"\\??\\", *rest = full;
    if (!wcsncmp(full, L"\\\\?\\", 4) || !wcsncmp(full, L"\\\\.\\", 4))
        rest = full + 4;
    else if (full[0] == L'\\' && full[1] == L'\\') {
        prefix = L"\\??\\UNC\\";
        rest = full + 2;
    }
    union {
        FILE_RENAME_INFO ri;
        unsigned char bytes[sizeof(FILE_RENAME_INFO) + (MAX_PATH + 8) * sizeof(wchar_t)];
    } u;
    memset(&u, 0, sizeof u);
    int len = _snwprintf(u.ri.FileName, MAX_PATH + 8, L"%ls%ls", prefix, rest);
    if (len < 0 || len >= MAX_PATH + 8)
        return ERROR_FILENAME_EXCED_RANGE;
    u.ri.ReplaceIfExists = replace ? TRUE : FALSE;
    u.ri.RootDirectory = NULL;
    u.ri.FileNameLength = (DWORD)len * sizeof(wchar_t);
    return SetFileInformationByHandle(h, FileRenameInfo, &u.ri, sizeof u) ? ERROR_SUCCESS
                                                                          : GetLastError();
}

/* move_into for a file open as h: by the handle, making the hash folder if
 * needed; when the rename by handle is refused, h is closed and the file
 * is moved by name as move_into does. h is closed either way. */
static DWORD move_open_into(HANDLE h, const wchar_t *from, const wchar_t *to, DWORD flags)
{
    int replace = (flags & MOVEFILE_REPLACE_EXISTING) != 0;
    DWORD err = rename_open(h, to, replace);
    if (err == ERROR_PATH_NOT_FOUND && make_parents(to) == ERROR_SUCCESS)
        err = rename_open(h, to, replace);
    CloseHandle(h);
    if (err == ERROR_SUCCESS)
        return ERROR_SUCCESS;
    return move_into(from, to, flags);
}

static void log_path(unsigned seq, wchar_t *out, size_t cap)
{
    _snwprintf(out, cap, L"%ls\\commit-%08u.log", sp.logdir, seq);
    out[cap - 1] = 0;
}

/* Files ------------------------------------------------------------------- */

DWORD spool_read_file(const wchar_t *path, size_t max, unsigned char **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    /* FILE_SHARE_WRITE: the checkpointer may hold the file open to flush it */
    HANDLE h = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE |
                           FILE_SHARE_DELETE, NULL, OPEN_EXISTING, FILE_FLAG_SEQUENTIAL_SCAN, NULL);
    if (h == INVALID_HANDLE_VALUE)
        return GetLastError();
    LARGE_INTEGER sz;
    DWORD err = ERROR_SUCCESS;
    if (!GetFileSizeEx(h, &sz)) {
        err = GetLastError();
    } else if ((uint64_t)sz.QuadPart > max) {
        err = ERROR_FILE_TOO_LARGE;
    } else {
        size_t n = (size_t)sz.QuadPart;
        unsigned char *p = malloc(n + 1);
        size_t got = 0;
        if (!p)
            err = ERROR_NOT_ENOUGH_MEMORY;
        while (!err && got < n) {
            DWORD k = 0, want = n - got > SPOOL_COPY_CHUNK * 16 ? SPOOL_COPY_CHUNK * 16
                                                                : (DWORD)(n - got);
            if (!ReadFile(h, p + got, want, &k, NULL))
                err = GetLastError();
            else if (k == 0)
                err = ERROR_HANDLE_EOF;
            got += k;
        }
        if (err) {
            free(p);
        } else {
            p[n] = 0;
            *buf = p;
            *len = n;
        }
    }
    CloseHandle(h);
    return err;
}

static DWORD write_all(HANDLE h, const void *p, size_t len)
{
    const char *c = p;
    while (len > 0) {
        DWORD want = len > 0x40000000u ? 0x40000000u : (DWORD)len, k = 0;
        if (!WriteFile(h, c, want, &k, NULL))
            return GetLastError();
        c += k;
        len -= k;
    }
    return ERROR_SUCCESS;
}

/* Write a whole file at path (replacing it), optionally flushed, and leave
 * it open as *out with access; on failure it is closed and deleted. */
static DWORD write_open(const wchar_t *path, DWORD access, const void *p, size_t len, int flush,
                        HANDLE *out)
{
    HANDLE h = CreateFileW(path, access, 0, NULL, CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
    if (h == INVALID_HANDLE_VALUE)
        return GetLastError();
    DWORD err = write_all(h, p, len);
    if (!err && flush && !FlushFileBuffers(h))
        err = GetLastError();
    if (err) {
        CloseHandle(h);
        DeleteFileW(path);
        return err;
    }
    *out = h;
    return ERROR_SUCCESS;
}

/* Write a whole file at path (replacing it), optionally flushed. */
static DWORD write_file(const wchar_t *path, const void *p, size_t len, int flush)
{
    HANDLE h;
    DWORD err = write_open(path, GENERIC_WRITE, p, len, flush, &h);
    if (!err)
        CloseHandle(h);
    return err;
}

/* Write via tmp\ and rename over path: a reader sees the old file or the
 * new. The rename is made through the handle the file was written with. */
static DWORD replace_file(const wchar_t *path, const char *id, const wchar_t *ext,
                          const void *p, size_t len, int flush)
{
    wchar_t tmp[MAX_PATH];
    _snwprintf(tmp, MAX_PATH, L"%ls\\%hs.%ls.new", sp.tmp, id, ext);
    tmp[MAX_PATH - 1] = 0;
    HANDLE h;
    DWORD err = write_open(tmp, GENERIC_WRITE | DELETE, p, len, flush, &h);
    if (err)
        return err;
    err = move_open_into(h, tmp, path, MOVEFILE_REPLACE_EXISTING);
    if (err)
        DeleteFileW(tmp);
    return err;
}

static int absent(DWORD err)
{
    return err == ERROR_FILE_NOT_FOUND || err == ERROR_PATH_NOT_FOUND;
}

static DWORD flush_path(const wchar_t *path)
{
    HANDLE h = CreateFileW(path, GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE |
                           FILE_SHARE_DELETE, NULL, OPEN_EXISTING, 0, NULL);
    if (h == INVALID_HANDLE_VALUE)
        return GetLastError();
    DWORD err = FlushFileBuffers(h) ? ERROR_SUCCESS : GetLastError();
    CloseHandle(h);
    return err;
}

/* Writing a message ------------------------------------------------------- */

static void new_id(char *out, size_t n)
{
    FILETIME ft;
    GetSystemTimeAsFileTime(&ft);
    LONG seq = InterlockedIncrement(&sp.seq);
    snprintf(out, n, "%08lX%08lX.%04lX%04lX", ft.dwHighDateTime, ft.dwLowDateTime,
             GetCurrentProcessId() & 0xFFFF, (unsigned long)(seq & 0xFFFF));
}

static DWORD create_msg(struct spool_msg **out, int readable)
{
    /* With DELETE access the commit renames the file through this handle;
     * without it (another program will open the file meanwhile, and would
     * have to share delete access) by name. */
    DWORD access = readable ? GENERIC_WRITE : GENERIC_WRITE | DELETE;
    *out = NULL;
    struct spool_msg *m = calloc(1, sizeof *m);
    if (!m)
        return ERROR_NOT_ENOUGH_MEMORY;
    for (int tries = 0; tries < 4; tries++) {
        new_id(m->id, sizeof m->id);
        _snwprintf(m->path, MAX_PATH, L"%ls\\%hs.eml", sp.tmp, m->id);
        m->path[MAX_PATH - 1] = 0;
        m->h = CreateFileW(m->path, access, FILE_SHARE_READ, NULL, CREATE_NEW,
                           FILE_ATTRIBUTE_NORMAL | FILE_FLAG_SEQUENTIAL_SCAN, NULL);
        if (m->h != INVALID_HANDLE_VALUE) {
            m->readable = readable != 0;
            *out = m;
            return ERROR_SUCCESS;
        }
        if (GetLastError() != ERROR_FILE_EXISTS)
            break;
    }
    DWORD err = GetLastError();
    free(m);
    spool_note_failure(err, LOC_SMTPD_SPOOL, 1, L"creating a message file in %ls", sp.tmp);
    return err;
}

DWORD spool_create(struct spool_msg **out)
{
    return create_msg(out, 0);
}

DWORD spool_create_readable(struct spool_msg **out)
{
    return create_msg(out, 1);
}

const char *spool_msg_id(const struct spool_msg *m)
{
    return m->id;
}

const wchar_t *spool_msg_path(const struct spool_msg *m)
{
    return m->path;
}

DWORD spool_write(struct spool_msg *m, const void *p, size_t len)
{
    if (m->write_error)
        return m->write_error;
    m->write_error = write_all(m->h, p, len);
    if (m->write_error) {
        spool_note_failure(m->write_error, LOC_SMTPD_SPOOL, 1, L"writing message %hs to %ls",
                           m->id, sp.tmp);
        return m->write_error;
    }
    /* Kept in memory as well while it may go into the commit log inline,
     * so the commit need not read the file back. */
    if (!m->spilled && m->size + len > SPOOL_INLINE_MAX) {
        m->spilled = 1;
        free(m->mem);
        m->mem = NULL;
    } else if (!m->spilled) {
        if (m->size + len > m->mem_cap) {
            size_t cap = m->mem_cap ? m->mem_cap : 8192;
            while (cap < m->size + len)
                cap *= 2;
            unsigned char *p2 = realloc(m->mem, cap);
            if (!p2)
                return m->write_error = ERROR_NOT_ENOUGH_MEMORY;
            m->mem = p2;
            m->mem_cap = cap;
        }
        memcpy(m->mem + m->size, p, len);
    }
    m->size += len;
    m->crc = env_crc32_update(m->crc, p, len);
    return ERROR_SUCCESS;
}

static DWORD format_env(const struct envelope *env, char **text, size_t *len)
{
    size_t need = env_format(env, NULL, 0);
    if (need == 0)
        return ERROR_INVALID_DATA;
    char *t = malloc(need + 1);
    if (!t)
        return ERROR_NOT_ENOUGH_MEMORY;
    env_format(env, t, need + 1);
    *text = t;
    *len = need;
    return ERROR_SUCCESS;
}

const wchar_t *spool_msg_env_path(struct spool_msg *m, const struct envelope *env)
{
    char *text;
    size_t len;
    if (format_env(env, &text, &len) != ERROR_SUCCESS)
        return NULL;
    _snwprintf(m->env_path, MAX_PATH, L"%ls\\%hs.env", sp.tmp, m->id);
    m->env_path[MAX_PATH - 1] = 0;
    DWORD err = write_file(m->env_path, text, len, 0);
    free(text);
    return err ? NULL : m->env_path;
}

/* Whatever of m is still in tmp\ goes (after a commit, nothing is). */
static void msg_free(struct spool_msg *m)
{
    if (m->h != INVALID_HANDLE_VALUE)
        CloseHandle(m->h);
    if (m->path[0])
        DeleteFileW(m->path);
    if (m->env_path[0])
        DeleteFileW(m->env_path);
    free(m->env_text);
    free(m->mem);
    free(m);
}

void spool_abort(struct spool_msg *m)
{
    if (m)
        msg_free(m);
}

/* Queue m for the committer; the caller then waits (on_done NULL) or is
 * called back. Returns an error, having freed m, if it cannot be queued. */
static DWORD commit_enqueue(struct spool_msg *m, const struct envelope *env, int hold)
{
    DWORD err = m->write_error;
    if (!err && strcmp(env->id, m->id) != 0)
        err = ERROR_INVALID_PARAMETER;
    if (!err)
        err = format_env(env, &m->env_text, &m->env_len);
    if (!err && !sp.open)
        err = ERROR_NOT_READY;
    if (err) {
        msg_free(m);
        return err;
    }
    m->hold = hold;
    EnterCriticalSection(&sp.lock);
    if (sp.stop) {
        LeaveCriticalSection(&sp.lock);
        msg_free(m);
        return ERROR_SHUTDOWN_IN_PROGRESS;
    }
    m->next = NULL;
    if (sp.tail)
        sp.tail->next = m;
    else
        sp.head = m;
    sp.tail = m;
    WakeConditionVariable(&sp.work);
    LeaveCriticalSection(&sp.lock);
    return ERROR_SUCCESS;
}

DWORD spool_commit(struct spool_msg *m, const struct envelope *env, int hold)
{
    m->on_done = NULL;
    DWORD err = commit_enqueue(m, env, hold);
    if (err)
        return err;
    EnterCriticalSection(&sp.lock);
    while (!m->done)
        SleepConditionVariableCS(&sp.done, &sp.lock, INFINITE);
    LeaveCriticalSection(&sp.lock);
    err = m->result;
    if (err)
        spool_note_failure(err, LOC_SPOOL_COMMIT, 1, L"committing message %hs to the queue", m->id);
    else
        note_stored();
    msg_free(m);
    return err;
}

DWORD spool_commit_async(struct spool_msg *m, const struct envelope *env, int hold,
                         void (*done)(void *arg, DWORD err), void *arg)
{
    m->on_done = done;
    m->on_done_arg = arg;
    return commit_enqueue(m, env, hold);
}

/* The commit log ---------------------------------------------------------- */

/* One record (core/commitlog.h) appended to the current log. */
static DWORD log_append(char kind, const char *id, unsigned flags, const char *env,
                        size_t env_len, const void *content, uint64_t clen, uint32_t ccrc)
{
    char head[CLOG_HEAD_MAX], tail[CLOG_TAIL_MAX];
    size_t hn = clog_format_head(kind, id, flags, env_len, clen, ccrc, head, sizeof head);
    if (!hn)
        return ERROR_INVALID_DATA;
    size_t tn = clog_format_tail(head, hn, env, env_len, tail, sizeof tail);
    if (!tn)
        return ERROR_INVALID_DATA;
    DWORD err = write_all(sp.log, head, hn);
    if (!err && env_len)
        err = write_all(sp.log, env, env_len);
    if (!err && (flags & REC_INLINE) && clen)
        err = write_all(sp.log, content, (size_t)clen);
    if (!err)
        err = write_all(sp.log, tail, tn);
    if (!err)
        sp.log_size += (uint64_t)hn + env_len + ((flags & REC_INLINE) ? clen : 0) + (uint64_t)tn;
    return err;
}

static DWORD log_start(void)
{
    wchar_t path[MAX_PATH];
    /* CREATE_NEW: a log kept by recovery is never overwritten, even one it
     * could not list; its number is skipped. */
    for (int tries = 0; tries < 64; tries++) {
        sp.log_seq++;
        log_path(sp.log_seq, path, MAX_PATH);
        sp.log = CreateFileW(path, GENERIC_WRITE, FILE_SHARE_READ, NULL, CREATE_NEW,
                             FILE_ATTRIBUTE_NORMAL, NULL);
        if (sp.log != INVALID_HANDLE_VALUE || (GetLastError() != ERROR_FILE_EXISTS &&
                                               GetLastError() != ERROR_SHARING_VIOLATION))
            break;
    }
    sp.log_size = 0;
    return sp.log == INVALID_HANDLE_VALUE ? GetLastError() : ERROR_SUCCESS;
}

/* Close the current log and give it to the checkpointer (lock held). */
static void log_rotate(void)
{
    EnterCriticalSection(&sp.log_lock);
    if (sp.log == INVALID_HANDLE_VALUE) {
        LeaveCriticalSection(&sp.log_lock);
        return;
    }
    CloseHandle(sp.log);
    sp.log = INVALID_HANDLE_VALUE;
    LeaveCriticalSection(&sp.log_lock);
    if (sp.log_size == 0) {
        wchar_t path[MAX_PATH];
        log_path(sp.log_seq, path, MAX_PATH);
        DeleteFileW(path);
    } else if (sp.n_closed < ARRAYSIZE(sp.closed_logs)) {
        sp.closed_logs[sp.n_closed++] = sp.log_seq;
        WakeConditionVariable(&sp.ckpt_work);
    }
    /* With the checkpointer 64 logs behind, the log stays on disk and is
     * replayed at the next start: slower, never unsafe. */
}

/* One message's part of a batch before the flush: its record. */
static DWORD commit_prepare(struct spool_msg *m, int *torn)
{
    unsigned flags = m->hold ? REC_HOLD : 0;
    if (!m->spilled)
        flags |= REC_INLINE;
    else if (!FlushFileBuffers(m->h))
        return GetLastError();
    DWORD err = log_append('C', m->id, flags, m->env_text, m->env_len, m->mem, m->size, m->crc);
    if (err)
        *torn = 1;   /* part of a record may be in the log */
    return err;
}

/* After the flush: into the queue. Content first, envelope last: a queued
 * envelope always has its content. */
static DWORD commit_finish(struct spool_msg *m)
{
    wchar_t eml[MAX_PATH], env[MAX_PATH];
    if (m->hold) {
        hash_path(sp.dir, m->id, 1, L"eml", eml, MAX_PATH);
        hash_path(sp.dir, m->id, 1, L"env", env, MAX_PATH);
    } else {
        active_path(sp.dir, m->id, L"eml", eml, MAX_PATH);
        active_path(sp.dir, m->id, L"env", env, MAX_PATH);
    }
    DWORD mv;
    if (m->h != INVALID_HANDLE_VALUE && !m->readable) {
        mv = move_open_into(m->h, m->path, eml, 0);   /* closes it */
        m->h = INVALID_HANDLE_VALUE;
    } else {
        if (m->h != INVALID_HANDLE_VALUE) {
            CloseHandle(m->h);
            m->h = INVALID_HANDLE_VALUE;
        }
        mv = move_into(m->path, eml, 0);
    }
    if (mv)
        return mv;
    m->path[0] = 0;
    DWORD err = replace_file(env, m->id, L"env", m->env_text, m->env_len, 0);
    if (err)
        DeleteFileW(eml);
    if (m->env_path[0]) {
        DeleteFileW(m->env_path);
        m->env_path[0] = 0;
    }
    return err;
}

static DWORD WINAPI committer_main(void *arg)
{
    (void)arg;
    EnterCriticalSection(&sp.lock);
    for (;;) {
        while (!sp.head && !sp.stop) {
            if (!SleepConditionVariableCS(&sp.work, &sp.lock, SPOOL_IDLE_ROTATE_MS) &&
                sp.log_size > 0)
                log_rotate();   /* idle: let the checkpointer retire this log */
        }
        if (!sp.head && sp.stop)
            break;
        struct spool_msg *batch = sp.head;
        sp.head = sp.tail = NULL;
        LeaveCriticalSection(&sp.lock);
        EnterCriticalSection(&sp.log_lock);
        DWORD log_err = sp.log == INVALID_HANDLE_VALUE ? log_start() : ERROR_SUCCESS;
        int any = 0, torn = 0;
        for (struct spool_msg *m = batch; m; m = m->next) {
            m->result = log_err ? log_err : commit_prepare(m, &torn);
            /* Recovery stops at a torn record: nothing may be acknowledged
             * from behind one. The rest of the batch fails (the clients try
             * again) and the log is closed after this batch. */
            if (torn && !log_err)
                log_err = m->result;
            any |= m->result == ERROR_SUCCESS;
        }
        LeaveCriticalSection(&sp.log_lock);
        if (any)
            InterlockedIncrement64(&sp.flushes);
        if (any && !FlushFileBuffers(sp.log)) {
            DWORD err = GetLastError();
            for (struct spool_msg *m = batch; m; m = m->next)
                if (m->result == ERROR_SUCCESS)
                    m->result = err;
        }
        for (struct spool_msg *m = batch; m; m = m->next) {
            if (m->result == ERROR_SUCCESS)
                m->result = commit_finish(m);
            if (m->result == ERROR_SUCCESS)
                InterlockedIncrement64(&sp.commits);
            if (m->result == ERROR_SUCCESS && !m->hold && sp.notify)
                sp.notify(m->id);
            if (m->result != ERROR_SUCCESS && !storage_is_full(m->result))
                report(LOC_SPOOL_COMMIT, m->result, L"cannot commit message %hs to the queue; "
                       L"the client was told to try again later", m->id);
        }
        /* Asynchronous callers are told outside the lock, and their
         * messages freed here; waiting callers free their own. */
        struct spool_msg *waiting = NULL;
        for (struct spool_msg *m = batch; m;) {
            struct spool_msg *next = m->next;
            if (m->on_done) {
                void (*done)(void *, DWORD) = m->on_done;
                void *arg = m->on_done_arg;
                DWORD result = m->result;
                if (result)
                    spool_note_failure(result, LOC_SPOOL_COMMIT, 1,
                                       L"committing message %hs to the queue", m->id);
                else
                    note_stored();
                msg_free(m);
                done(arg, result);
            } else {
                m->next = waiting;
                waiting = m;
            }
            m = next;
        }
        EnterCriticalSection(&sp.lock);
        for (struct spool_msg *m = waiting; m;) {
            struct spool_msg *next = m->next;
            m->done = 1;
            m = next;
        }
        WakeAllConditionVariable(&sp.done);
        if (sp.log_size >= SPOOL_LOG_ROTATE || torn)
            log_rotate();
    }
    log_rotate();
    LeaveCriticalSection(&sp.lock);
    return 0;
}

/* A message's first envelope update moves it from active\ into its hash
 * folder: content first, then the envelope as it is, so that it is listed
 * in exactly one place at every moment and a crash between the two leaves a
 * message that is found and delivered as before the update. A move that
 * fails leaves the file where it is (it is found there, and moved at the
 * next update). env gets the envelope's path for the update. */
static DWORD leave_active(const char *id, wchar_t *env)
{
    wchar_t aenv[MAX_PATH], aeml[MAX_PATH], heml[MAX_PATH];
    if (hash_path(sp.dir, id, 0, L"env", env, MAX_PATH) ||
        hash_path(sp.dir, id, 0, L"eml", heml, MAX_PATH) ||
        active_path(sp.dir, id, L"env", aenv, MAX_PATH) ||
        active_path(sp.dir, id, L"eml", aeml, MAX_PATH))
        return ERROR_BUFFER_OVERFLOW;
    if (GetFileAttributesW(aenv) == INVALID_FILE_ATTRIBUTES)
        return ERROR_SUCCESS;   /* in its hash folder already */
    /* replacing: a copy there is the same content, or an older envelope */
    DWORD err = move_into(aeml, heml, MOVEFILE_REPLACE_EXISTING);
    if (!err || absent(err))
        err = move_into(aenv, env, MOVEFILE_REPLACE_EXISTING);
    if (err)
        wcscpy(env, aenv);   /* updated where it is */
    return ERROR_SUCCESS;
}

/* Flush one file of a message wherever it is: active\ first, then its
 * hash folder, since a delivery attempt may move it between the two
 * meanwhile (never back). Gone from both (delivered, released): nothing to
 * do. */
static void flush_msg_file(const char *id, int held, const wchar_t *ext)
{
    wchar_t p[MAX_PATH];
    if (!held && active_path(sp.dir, id, ext, p, MAX_PATH) == 0 && !absent(flush_path(p)))
        return;
    if (hash_path(sp.dir, id, held, ext, p, MAX_PATH) == 0)
        flush_path(p);
}

/* Checkpoint: flush what a log covers, then delete the log. */
static void ckpt_rec(void *arg, const struct clog_rec *r)
{
    (void)arg;
    if (r->kind != 'C')
        return;
    int held = (r->flags & REC_HOLD) != 0;
    flush_msg_file(r->id, held, L"eml");
    flush_msg_file(r->id, held, L"env");
}

static void checkpoint_log(unsigned seq)
{
    wchar_t path[MAX_PATH];
    log_path(seq, path, MAX_PATH);
    unsigned char *buf;
    size_t len;
    if (spool_read_file(path, (size_t)-1 / 2, &buf, &len) != ERROR_SUCCESS)
        return;
    clog_read(buf, len, ckpt_rec, NULL);
    free(buf);
    if (!DeleteFileW(path))
        report(LOC_SPOOL_CHECKPOINT, GetLastError(), L"cannot delete a checkpointed commit log");
}

static DWORD WINAPI checkpointer_main(void *arg)
{
    (void)arg;
    EnterCriticalSection(&sp.lock);
    for (;;) {
        while (sp.n_closed == 0 && !sp.stop)
            SleepConditionVariableCS(&sp.ckpt_work, &sp.lock, INFINITE);
        if (sp.n_closed == 0)
            break;
        unsigned seq = sp.closed_logs[0];
        memmove(sp.closed_logs, sp.closed_logs + 1, --sp.n_closed * sizeof sp.closed_logs[0]);
        LeaveCriticalSection(&sp.lock);
        checkpoint_log(seq);
        EnterCriticalSection(&sp.lock);
    }
    LeaveCriticalSection(&sp.lock);
    return 0;
}

/* Recovery ---------------------------------------------------------------- */

/* Recovery deletes only what it has fully restored. A log it cannot read, or
 * whose messages it cannot all put back, stays in log\ with the spilled
 * contents in tmp\ it refers to, is reported (event 4160) and is replayed at
 * the next start. So that a kept log never brings back a message removed
 * after it was kept, a start that keeps one writes a removal log: a log of D
 * records only, numbered above every other, holding every removal the logs
 * on disk record; every removal while the service runs is appended to it
 * (spool_remove). Logs are deleted in ascending order, and a D record is
 * always in the log of its C record or a later one, so a log that could not
 * be read holds back the replay of every earlier log. */

#define SPOOL_RECOVER_REPORTS 20u   /* per-message events at one start; the rest are counted */

struct replay {
    unsigned seq;
    DWORD read_err;       /* it could not be read */
    unsigned failed;      /* messages it could not restore */
    DWORD fail_err;       /* ... the first one's error */
    DWORD hold_loc, hold_err;   /* why it was not replayed, when hold_loc */
    unsigned hold_seq;          /* the later log that could not be read, or 0 */
    DWORD del_err;        /* replayed but not deleted */
    int gone;             /* listed, then not there when read */
    int kept;
};

struct spilled_ref {      /* a C record whose content is a file, not in the log */
    char id[ENV_ID_MAX + 1];
    size_t log;
};

struct recovery {
    struct replay *logs;
    size_t n_logs;
    DWORD list_err;                 /* log\ could not be listed whole */
    char (*done)[ENV_ID_MAX + 1];   /* IDs with a D record, sorted after pass 0 */
    size_t n_done, cap_done;
    int done_lost;                  /* a D record could not be remembered */
    struct spilled_ref *refs;
    size_t n_refs, cap_refs;
    int tmp_unknown;                /* some kept log's references to tmp\ are not known */
    size_t cur;                     /* the log being read */
    unsigned restored, reports, unreported;
    int pass;                       /* 0: collect D records, 1: restore */
};

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

static int is_done(const struct recovery *rc, const char *id)
{
    return rc->n_done && bsearch(id, rc->done, rc->n_done, sizeof *rc->done, cmp_id) != NULL;
}

/* ERROR_SUCCESS when the file holds exactly size octets with this CRC,
 * ERROR_FILE_CORRUPT when it holds something else, else why it could not
 * be read (ERROR_FILE_NOT_FOUND when it is not there). */
static DWORD content_check(const wchar_t *path, uint64_t size, uint32_t crc)
{
    unsigned char *buf;
    size_t len;
    DWORD err = spool_read_file(path, (size_t)size, &buf, &len);
    if (err == ERROR_FILE_TOO_LARGE)
        return ERROR_FILE_CORRUPT;
    if (err)
        return err;
    int ok = len == size && env_crc32_update(0, buf, len) == crc;
    free(buf);
    return ok ? ERROR_SUCCESS : ERROR_FILE_CORRUPT;
}

/* Event 4100 about one message; past SPOOL_RECOVER_REPORTS only counted. */
static void recover_report(struct recovery *rc, DWORD err, const wchar_t *fmt, const char *id)
{
    if (rc->reports >= SPOOL_RECOVER_REPORTS) {
        rc->unreported++;
        return;
    }
    rc->reports++;
    report(LOC_SPOOL_RECOVER, err, fmt, id);
}

/* Where recovery puts both files of a message back: in active\ while its
 * content is there; else in its hash folder, after finishing a move from
 * active\ that a crash cut short between content and envelope. */
static void restore_paths(const char *id, int held, wchar_t *eml, wchar_t *env)
{
    if (!held && active_path(sp.dir, id, L"eml", eml, MAX_PATH) == 0 &&
        GetFileAttributesW(eml) != INVALID_FILE_ATTRIBUTES) {
        active_path(sp.dir, id, L"env", env, MAX_PATH);
        return;
    }
    hash_path(sp.dir, id, held, L"eml", eml, MAX_PATH);
    if (held || leave_active(id, env) != ERROR_SUCCESS)
        hash_path(sp.dir, id, held, L"env", env, MAX_PATH);
}

/* Put one committed message back as the log has it, unless the queue holds
 * it whole already. Returns ERROR_SUCCESS when nothing is left to do (and
 * when nothing can be done: the content is nowhere), else the error that
 * stopped it: its log is then kept. */
static DWORD restore_msg(struct recovery *rc, const struct clog_rec *r)
{
    int held = (r->flags & REC_HOLD) != 0;
    wchar_t eml[MAX_PATH], env[MAX_PATH], tmp[MAX_PATH];
    restore_paths(r->id, held, eml, env);
    /* A released message moved from Hold\ to the queue. */
    if (held && GetFileAttributesW(eml) == INVALID_FILE_ATTRIBUTES) {
        wchar_t q[MAX_PATH];
        spool_path(sp.dir, r->id, 0, L"env", q, MAX_PATH);
        if (GetFileAttributesW(q) != INVALID_FILE_ATTRIBUTES)
            return ERROR_SUCCESS;
    }
    int fixed = 0;
    DWORD have = content_check(eml, r->clen, r->ccrc);
    if (have != ERROR_SUCCESS) {
        DWORD err;
        make_parents(eml);   /* its failure shows in the write below */
        if (r->content) {
            err = write_file(eml, r->content, (size_t)r->clen, 1);
        } else {
            _snwprintf(tmp, MAX_PATH, L"%ls\\%hs.eml", sp.tmp, r->id);
            tmp[MAX_PATH - 1] = 0;
            DWORD spilled = content_check(tmp, r->clen, r->ccrc);
            if (spilled == ERROR_SUCCESS) {
                err = MoveFileExW(tmp, eml, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH)
                          ? ERROR_SUCCESS : GetLastError();
            } else if ((absent(spilled) || spilled == ERROR_FILE_CORRUPT) &&
                       (absent(have) || have == ERROR_FILE_CORRUPT)) {
                /* Only the envelope was logged, and neither copy of the
                 * content is whole: no later start can do better. */
                recover_report(rc, ERROR_FILE_NOT_FOUND, L"the content of queued message %hs is "
                               L"neither in the queue nor in tmp\\ (only its envelope was "
                               L"logged); it cannot be restored", r->id);
                return ERROR_SUCCESS;
            } else {
                err = absent(spilled) || spilled == ERROR_FILE_CORRUPT ? have : spilled;
            }
        }
        if (err) {
            /* A torn copy must not be delivered before the log restores it. */
            if (have == ERROR_FILE_CORRUPT)
                DeleteFileW(eml);
            recover_report(rc, err, L"cannot restore the content of queued message %hs from "
                           L"the commit log, which is kept", r->id);
            return err;
        }
        fixed = 1;
    }
    unsigned char *cur;
    size_t cur_len;
    int env_ok = 0;
    DWORD rd = spool_read_file(env, SPOOL_ENV_MAX, &cur, &cur_len);
    if (rd == ERROR_SUCCESS) {
        struct envelope e;
        struct env_error ee;
        env_init(&e);
        env_ok = env_parse((const char *)cur, cur_len, &e, &ee) == 0;
        env_free(&e);
        free(cur);
    } else if (!absent(rd) && rd != ERROR_FILE_TOO_LARGE) {
        /* It may be whole and newer than the log's: not overwritten unread. */
        recover_report(rc, rd, L"cannot read the envelope of queued message %hs; the commit "
                       L"log is kept", r->id);
        return rd;
    }
    if (!env_ok) {
        DWORD err = write_file(env, r->env, r->env_len, 1);
        if (err) {
            recover_report(rc, err, L"cannot restore the envelope of queued message %hs from "
                           L"the commit log, which is kept", r->id);
            return err;
        }
        fixed = 1;
    }
    /* The log goes once the files it covers are on disk. */
    DWORD err = flush_path(eml);
    if (!err)
        err = flush_path(env);
    if (err) {
        recover_report(rc, err, L"cannot flush the files of queued message %hs; the commit log "
                       L"is kept", r->id);
        return err;
    }
    if (fixed)
        rc->restored++;
    return ERROR_SUCCESS;
}

static void recover_rec(void *arg, const struct clog_rec *r)
{
    struct recovery *rc = arg;
    if (rc->pass == 0) {
        if (r->kind != 'D')
            return;
        if (rc->n_done == rc->cap_done) {
            size_t cap = rc->cap_done ? rc->cap_done * 2 : 64;
            void *p = realloc(rc->done, cap * sizeof *rc->done);
            if (!p) {
                rc->done_lost = 1;
                return;
            }
            rc->done = p;
            rc->cap_done = cap;
        }
        strcpy(rc->done[rc->n_done++], r->id);
        return;
    }
    if (r->kind != 'C' || is_done(rc, r->id))
        return;
    struct replay *lg = &rc->logs[rc->cur];
    if (!(r->flags & REC_INLINE)) {
        if (rc->n_refs == rc->cap_refs) {
            size_t cap = rc->cap_refs ? rc->cap_refs * 2 : 16;
            void *p = realloc(rc->refs, cap * sizeof *rc->refs);
            if (p) {
                rc->refs = p;
                rc->cap_refs = cap;
            }
        }
        if (rc->n_refs < rc->cap_refs) {
            strcpy(rc->refs[rc->n_refs].id, r->id);
            rc->refs[rc->n_refs++].log = rc->cur;
        } else {
            rc->tmp_unknown = 1;
        }
    }
    if (lg->hold_loc)
        return;   /* not replayed at this start */
    DWORD err = restore_msg(rc, r);
    if (err && lg->failed++ == 0)
        lg->fail_err = err;
}

static int cmp_replay(const void *a, const void *b)
{
    unsigned x = ((const struct replay *)a)->seq, y = ((const struct replay *)b)->seq;
    return x < y ? -1 : x > y;
}

/* Every commit-N.log in log\, by N; rc->list_err when the list may be short. */
static void list_logs(struct recovery *rc)
{
    wchar_t pat[MAX_PATH];
    _snwprintf(pat, MAX_PATH, L"%ls\\commit-*.log", sp.logdir);
    pat[MAX_PATH - 1] = 0;
    WIN32_FIND_DATAW fd;
    HANDLE f = FindFirstFileW(pat, &fd);
    if (f == INVALID_HANDLE_VALUE) {
        DWORD err = GetLastError();
        if (!absent(err))
            rc->list_err = err;
        return;
    }
    size_t cap = 0;
    do {
        unsigned s;
        wchar_t name[MAX_PATH];
        if (swscanf(fd.cFileName, L"commit-%u.log", &s) != 1)
            continue;
        /* Only the names log_path makes: another is none of ours. */
        log_path(s, name, MAX_PATH);
        const wchar_t *base = wcsrchr(name, L'\\');
        if (!base || _wcsicmp(base + 1, fd.cFileName) != 0)
            continue;
        if (rc->n_logs == cap) {
            cap = cap ? cap * 2 : 16;
            void *p = realloc(rc->logs, cap * sizeof *rc->logs);
            if (!p) {
                rc->list_err = ERROR_NOT_ENOUGH_MEMORY;
                break;
            }
            rc->logs = p;
        }
        memset(&rc->logs[rc->n_logs], 0, sizeof *rc->logs);
        rc->logs[rc->n_logs++].seq = s;
    } while (FindNextFileW(f, &fd));
    if (!rc->list_err && GetLastError() != ERROR_NO_MORE_FILES)
        rc->list_err = GetLastError();
    FindClose(f);
    if (rc->n_logs)
        qsort(rc->logs, rc->n_logs, sizeof *rc->logs, cmp_replay);
}

/* Read log i and give its records to recover_rec; a failure is kept. */
static void replay_log(struct recovery *rc, size_t i)
{
    struct replay *lg = &rc->logs[i];
    if (lg->read_err || lg->gone)
        return;
    wchar_t path[MAX_PATH];
    log_path(lg->seq, path, MAX_PATH);
    unsigned char *buf;
    size_t len;
    DWORD err = spool_read_file(path, (size_t)-1 / 2, &buf, &len);
    if (absent(err)) {
        lg->gone = 1;   /* deleted since it was listed: nothing to keep */
        return;
    }
    if (err) {
        lg->read_err = err;
        rc->tmp_unknown = 1;
        return;
    }
    rc->cur = i;
    clog_read(buf, len, recover_rec, rc);
    free(buf);
}

/* The removal log: a new log above every other, with every D record known,
 * flushed, and left open for spool_remove. */
static DWORD removals_start(const struct recovery *rc, unsigned *seq)
{
    wchar_t path[MAX_PATH];
    HANDLE h = INVALID_HANDLE_VALUE;
    for (int tries = 0; tries < 64 && h == INVALID_HANDLE_VALUE; tries++) {
        ++*seq;
        log_path(*seq, path, MAX_PATH);
        h = CreateFileW(path, GENERIC_WRITE, FILE_SHARE_READ, NULL, CREATE_NEW,
                        FILE_ATTRIBUTE_NORMAL, NULL);
        if (h == INVALID_HANDLE_VALUE && GetLastError() != ERROR_FILE_EXISTS &&
            GetLastError() != ERROR_SHARING_VIOLATION)
            break;
    }
    if (h == INVALID_HANDLE_VALUE)
        return GetLastError();
    DWORD err = ERROR_SUCCESS;
    char rec[CLOG_HEAD_MAX + 32];
    for (size_t i = 0; i < rc->n_done && !err; i++) {
        size_t n = clog_format_removal(rc->done[i], rec, sizeof rec);
        err = n ? write_all(h, rec, n) : ERROR_INVALID_DATA;
    }
    if (!err && !FlushFileBuffers(h))
        err = GetLastError();
    if (err) {
        CloseHandle(h);
        DeleteFileW(path);
        return err;
    }
    sp.removals = h;
    sp.removals_seq = *seq;
    return ERROR_SUCCESS;
}

/* A removal while a log is kept: recorded, and flushed, in the removal log. */
static void removals_append(const char *id)
{
    char rec[CLOG_HEAD_MAX + 32];
    size_t n = clog_format_removal(id, rec, sizeof rec);
    EnterCriticalSection(&sp.removals_lock);
    if (sp.removals != INVALID_HANDLE_VALUE && !sp.removals_err) {
        DWORD err = n ? write_all(sp.removals, rec, n) : ERROR_INVALID_DATA;
        if (!err && !FlushFileBuffers(sp.removals))
            err = GetLastError();
        if (err) {
            /* A torn record would hide every later one: no more appends. */
            sp.removals_err = err;
            report(LOC_SPOOL_REMOVALS, err, L"cannot record the removal of message %hs in the "
                   L"removal log commit-%08u.log; messages removed from now on may be delivered "
                   L"again when a kept commit log is replayed", id, sp.removals_seq);
        }
    }
    LeaveCriticalSection(&sp.removals_lock);
}

static void removals_close(void)
{
    if (sp.removals != INVALID_HANDLE_VALUE)
        CloseHandle(sp.removals);
    sp.removals = INVALID_HANDLE_VALUE;
    DeleteCriticalSection(&sp.removals_lock);
}

/* Event 4160 for a log that stays. */
static void report_kept(const struct replay *lg)
{
    wchar_t path[MAX_PATH], why[300];
    DWORD loc, err;
    log_path(lg->seq, path, MAX_PATH);
    if (lg->read_err) {
        loc = LOC_SPOOL_LOG_READ, err = lg->read_err;
        _snwprintf(why, ARRAYSIZE(why), L"it could not be read");
    } else if (lg->failed) {
        loc = LOC_SPOOL_LOG_RESTORE, err = lg->fail_err;
        _snwprintf(why, ARRAYSIZE(why), L"%u of its messages could not be restored (event 4100 "
                   L"names them)", lg->failed);
    } else if (lg->hold_loc == LOC_SPOOL_LOG_BLOCKED && lg->hold_seq) {
        loc = lg->hold_loc, err = lg->hold_err;
        _snwprintf(why, ARRAYSIZE(why), L"the later commit log commit-%08u.log could not be read, "
                   L"and it may record the removal of messages this log holds, so this log was "
                   L"not replayed", lg->hold_seq);
    } else if (lg->hold_loc == LOC_SPOOL_LOG_BLOCKED) {
        loc = lg->hold_loc, err = lg->hold_err;
        _snwprintf(why, ARRAYSIZE(why), L"the removals the commit logs record did not all fit "
                   L"in memory, so no log was replayed");
    } else if (lg->hold_loc == LOC_SPOOL_LOG_LIST) {
        loc = lg->hold_loc, err = lg->hold_err;
        _snwprintf(why, ARRAYSIZE(why), L"the folder of the commit logs could not be listed "
                   L"whole, so no log was replayed");
    } else if (lg->hold_loc == LOC_SPOOL_REMOVALS) {
        loc = lg->hold_loc, err = lg->hold_err;
        _snwprintf(why, ARRAYSIZE(why), L"another log was kept and the removal log that must "
                   L"come with it could not be written");
    } else {
        loc = LOC_SPOOL_LOG_DELETE, err = lg->del_err;
        _snwprintf(why, ARRAYSIZE(why), L"it was replayed but could not be deleted");
    }
    why[ARRAYSIZE(why) - 1] = 0;
    evlog_report(EVENTLOG_ERROR_TYPE, CAT_QUEUING, MSG_SPOOL_LOG_KEPT, loc, err, 2,
                 (const wchar_t *[]){ path, why });
}

/* Replay every log, delete those fully restored, keep the rest (with a
 * removal log); returns the highest log sequence number now in use. */
static unsigned recover(struct recovery *rc)
{
    list_logs(rc);
    if (rc->list_err) {
        report(LOC_SPOOL_LOG_LIST, rc->list_err, L"cannot list the commit logs; every log found "
               L"is kept without being replayed, and tmp\\ is not emptied");
        rc->tmp_unknown = 1;
    }
    for (rc->pass = 0; rc->pass < 2; rc->pass++) {
        for (size_t i = 0; i < rc->n_logs; i++)
            replay_log(rc, i);
        if (rc->pass > 0)
            break;
        /* Which logs may be replayed, now that every D record is known. */
        size_t hi = rc->n_logs;
        for (size_t i = rc->n_logs; i-- > 0;) {
            if (rc->logs[i].read_err) {
                hi = i;
                break;
            }
        }
        for (size_t i = 0; i < rc->n_logs; i++) {
            struct replay *lg = &rc->logs[i];
            if (rc->list_err) {
                lg->hold_loc = LOC_SPOOL_LOG_LIST, lg->hold_err = rc->list_err;
            } else if (rc->done_lost) {
                lg->hold_loc = LOC_SPOOL_LOG_BLOCKED, lg->hold_err = ERROR_NOT_ENOUGH_MEMORY;
            } else if (hi < rc->n_logs && i < hi) {
                lg->hold_loc = LOC_SPOOL_LOG_BLOCKED, lg->hold_err = rc->logs[hi].read_err;
                lg->hold_seq = rc->logs[hi].seq;
            }
        }
        if (rc->n_done) {
            qsort(rc->done, rc->n_done, sizeof *rc->done, cmp_id);
            size_t k = 1;
            for (size_t i = 1; i < rc->n_done; i++)
                if (strcmp(rc->done[i], rc->done[k - 1]) != 0)
                    memmove(rc->done[k++], rc->done[i], sizeof *rc->done);
            rc->n_done = k;
        }
    }
    unsigned max = 0;
    int any_kept = rc->list_err != 0;   /* logs it could not see are kept too */
    for (size_t i = 0; i < rc->n_logs; i++) {
        struct replay *lg = &rc->logs[i];
        lg->kept = !lg->gone && (lg->read_err || lg->failed || lg->hold_loc);
        any_kept |= lg->kept;
        if (lg->seq > max)
            max = lg->seq;
    }
    if (rc->unreported)
        report(LOC_SPOOL_RECOVER, ERROR_SUCCESS, L"%u more messages could not be restored from "
               L"the commit logs (not reported one by one)", rc->unreported);
    /* Removals must outlive the logs deleted now, for the logs kept. */
    DWORD rm_err = any_kept ? removals_start(rc, &max) : ERROR_SUCCESS;
    if (rm_err)
        report(LOC_SPOOL_REMOVALS, rm_err, L"cannot write the removal log that must accompany "
               L"a kept commit log; every commit log is kept");
    for (size_t i = 0; i < rc->n_logs; i++) {
        struct replay *lg = &rc->logs[i];
        if (lg->kept || lg->gone)
            continue;
        if (rm_err) {
            lg->kept = 1;
            lg->hold_loc = LOC_SPOOL_REMOVALS, lg->hold_err = rm_err;
            continue;
        }
        wchar_t path[MAX_PATH];
        log_path(lg->seq, path, MAX_PATH);
        if (DeleteFileW(path) || absent(GetLastError()))
            continue;
        lg->del_err = GetLastError();
        lg->kept = 1;
        if (sp.removals == INVALID_HANDLE_VALUE) {
            rm_err = removals_start(rc, &max);
            if (rm_err)
                report(LOC_SPOOL_REMOVALS, rm_err, L"cannot write the removal log that must "
                       L"accompany a kept commit log; every commit log is kept");
        }
    }
    for (size_t i = 0; i < rc->n_logs; i++)
        if (rc->logs[i].kept)
            report_kept(&rc->logs[i]);
    return max;
}

/* Spilled content in tmp\ that a kept log needs: tmp\ID.eml. */
static int tmp_needed(const struct recovery *rc, const wchar_t *name)
{
    size_t n = wcslen(name);
    if (n <= 4 || _wcsicmp(name + n - 4, L".eml") != 0)
        return 0;
    if (rc->tmp_unknown)
        return 1;
    char id[ENV_ID_MAX + 1];
    if (n - 4 > ENV_ID_MAX)
        return 0;
    for (size_t i = 0; i < n - 4; i++) {
        if (name[i] > 0x7E)
            return 0;
        id[i] = (char)name[i];
    }
    id[n - 4] = 0;
    for (size_t i = 0; i < rc->n_refs; i++)
        if (rc->logs[rc->refs[i].log].kept && strcmp(rc->refs[i].id, id) == 0)
            return 1;
    return 0;
}

/* tmp\ holds what no client was told is safe, and the spilled content of
 * messages in kept logs (all of *.eml when a kept log could not be read). */
static void clean_tmp(const struct recovery *rc)
{
    wchar_t pat[MAX_PATH], p[MAX_PATH];
    _snwprintf(pat, MAX_PATH, L"%ls\\*", sp.tmp);
    WIN32_FIND_DATAW fd;
    HANDLE f = FindFirstFileW(pat, &fd);
    if (f == INVALID_HANDLE_VALUE)
        return;
    do {
        if (fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY)
            continue;
        if (tmp_needed(rc, fd.cFileName))
            continue;
        _snwprintf(p, MAX_PATH, L"%ls\\%ls", sp.tmp, fd.cFileName);
        p[MAX_PATH - 1] = 0;
        DeleteFileW(p);   /* left for the next start if it cannot go now */
    } while (FindNextFileW(f, &fd));
    FindClose(f);
}

static void recovery_free(struct recovery *rc)
{
    free(rc->logs);
    free(rc->done);
    free(rc->refs);
}

/* Upgrade ---------------------------------------------------------------- */

/* Move the messages a flat queue folder (main before the hashed layout)
 * holds into their hash folders: content first, envelope last, as a commit
 * does, so that a start cut short between the two finishes the move at the
 * next. Returns how many were moved; a message that cannot be moved stays
 * where it is (event 4100) and is tried again at the next start. */
static unsigned migrate_flat(int held)
{
    wchar_t dir[MAX_PATH], pat[MAX_PATH];
    int n = _snwprintf(dir, MAX_PATH, held ? L"%ls\\Hold" : L"%ls", sp.dir);
    int pn = _snwprintf(pat, MAX_PATH, L"%ls\\*.env", dir);
    if (n < 0 || n >= MAX_PATH || pn < 0 || pn >= MAX_PATH)
        return 0;
    /* The names first: a folder is not changed while it is listed. */
    char (*ids)[ENV_ID_MAX + 1] = NULL;
    size_t n_ids = 0, cap = 0;
    WIN32_FIND_DATAW fd;
    HANDLE f = FindFirstFileW(pat, &fd);
    if (f == INVALID_HANDLE_VALUE)
        return 0;
    do {
        char id[ENV_ID_MAX + 8];
        int k = WideCharToMultiByte(CP_UTF8, 0, fd.cFileName, -1, id, (int)sizeof id, NULL, NULL);
        if (k <= 5 || (fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY))
            continue;
        id[k - 1 - 4] = 0;
        if (!spool_id_valid(id))
            continue;
        if (n_ids == cap) {
            size_t nc = cap ? cap * 2 : 256;
            void *p = realloc(ids, nc * sizeof *ids);
            if (!p)
                break;   /* the rest moves at the next start */
            ids = p;
            cap = nc;
        }
        strcpy(ids[n_ids++], id);
    } while (FindNextFileW(f, &fd));
    FindClose(f);
    unsigned moved = 0;
    for (size_t i = 0; i < n_ids; i++) {
        wchar_t from[MAX_PATH], to[MAX_PATH];
        DWORD err = ERROR_SUCCESS;
        if (flat_path(sp.dir, ids[i], held, L"eml", from, MAX_PATH) ||
            hash_path(sp.dir, ids[i], held, L"eml", to, MAX_PATH)) {
            err = ERROR_BUFFER_OVERFLOW;
        } else {
            err = move_into(from, to, MOVEFILE_WRITE_THROUGH);
            if (absent(err))
                err = ERROR_SUCCESS;   /* moved already by a start cut short */
        }
        if (!err && (flat_path(sp.dir, ids[i], held, L"env", from, MAX_PATH) ||
                     hash_path(sp.dir, ids[i], held, L"env", to, MAX_PATH)))
            err = ERROR_BUFFER_OVERFLOW;
        if (!err)
            err = move_into(from, to, MOVEFILE_WRITE_THROUGH);
        if (err)
            report(LOC_SPOOL_MIGRATE, err, L"cannot move queued message %hs from %ls into its "
                   L"hashed queue folder; it stays where it is, is not delivered, and is moved "
                   L"at the next start", ids[i], dir);
        else
            moved++;
    }
    free(ids);
    return moved;
}

static DWORD make_dir(const wchar_t *d)
{
    if (CreateDirectoryW(d, NULL) || GetLastError() == ERROR_ALREADY_EXISTS)
        return ERROR_SUCCESS;
    return GetLastError();
}

DWORD spool_open(const wchar_t *queue_dir, unsigned *recovered)
{
    spool_set_dir(queue_dir);
    DWORD err = make_dir(sp.dir);
    if (!err)
        err = make_dir(sp.tmp);
    if (!err)
        err = make_dir(sp.logdir);
    if (!err)
        err = make_dir(sp.hold);
    if (!err)
        err = make_dir(sp.active);
    if (err) {
        report(LOC_SPOOL_OPEN, err, L"cannot create the queue directories");
        return err;
    }
    /* Before recovery, which restores into the hashed layout. */
    migrate_flat(0);
    migrate_flat(1);
    struct recovery rc = { 0 };
    sp.removals = INVALID_HANDLE_VALUE;
    sp.removals_err = ERROR_SUCCESS;
    InitializeCriticalSection(&sp.removals_lock);
    sp.log_seq = recover(&rc);
    clean_tmp(&rc);
    recovery_free(&rc);
    if (recovered)
        *recovered = rc.restored;
    InitializeCriticalSection(&sp.lock);
    InitializeCriticalSection(&sp.log_lock);
    InitializeConditionVariable(&sp.work);
    InitializeConditionVariable(&sp.done);
    InitializeConditionVariable(&sp.ckpt_work);
    sp.head = sp.tail = NULL;
    sp.n_closed = 0;
    sp.stop = 0;
    sp.log = INVALID_HANDLE_VALUE;
    sp.log_size = 0;
    sp.commits = sp.flushes = 0;
    sp.committer = CreateThread(NULL, 0, committer_main, NULL, 0, NULL);
    sp.checkpointer = CreateThread(NULL, 0, checkpointer_main, NULL, 0, NULL);
    if (!sp.committer || !sp.checkpointer) {
        err = GetLastError();
        EnterCriticalSection(&sp.lock);
        sp.stop = 1;
        WakeAllConditionVariable(&sp.work);
        WakeAllConditionVariable(&sp.ckpt_work);
        LeaveCriticalSection(&sp.lock);
        if (sp.committer)
            WaitForSingleObject(sp.committer, INFINITE), CloseHandle(sp.committer);
        if (sp.checkpointer)
            WaitForSingleObject(sp.checkpointer, INFINITE), CloseHandle(sp.checkpointer);
        DeleteCriticalSection(&sp.log_lock);
        DeleteCriticalSection(&sp.lock);
        removals_close();
        report(LOC_SPOOL_OPEN, err, L"cannot start the queue's commit threads");
        return err;
    }
    sp.open = 1;
    return ERROR_SUCCESS;
}

void spool_close(void)
{
    if (!sp.open)
        return;
    EnterCriticalSection(&sp.lock);
    sp.stop = 1;
    WakeAllConditionVariable(&sp.work);
    LeaveCriticalSection(&sp.lock);
    WaitForSingleObject(sp.committer, INFINITE);
    EnterCriticalSection(&sp.lock);
    WakeAllConditionVariable(&sp.ckpt_work);
    LeaveCriticalSection(&sp.lock);
    WaitForSingleObject(sp.checkpointer, INFINITE);
    CloseHandle(sp.committer);
    CloseHandle(sp.checkpointer);
    sp.open = 0;
    DeleteCriticalSection(&sp.log_lock);
    DeleteCriticalSection(&sp.lock);
    removals_close();
}

/* The queue's side -------------------------------------------------------- */

DWORD spool_read_env(const char *id, int held, struct envelope *env)
{
    wchar_t p[MAX_PATH];
    spool_path(sp.dir, id, held, L"env", p, MAX_PATH);
    unsigned char *buf;
    size_t len;
    DWORD err = spool_read_file(p, SPOOL_ENV_MAX, &buf, &len);
    if (err)
        return err;
    struct env_error ee;
    if (env_parse((const char *)buf, len, env, &ee) != 0)
        err = ERROR_FILE_CORRUPT;
    free(buf);
    return err;
}

DWORD spool_update_env(const struct envelope *env)
{
    char *text;
    size_t len;
    DWORD err = format_env(env, &text, &len);
    if (err)
        return err;
    wchar_t p[MAX_PATH];
    err = leave_active(env->id, p);
    if (!err)
        err = replace_file(p, env->id, L"env", text, len, 1);
    free(text);
    if (err && !spool_note_failure(err, LOC_SPOOL_UPDATE, 0, L"recording the delivery state "
                                   L"of message %hs", env->id))
        report(LOC_SPOOL_UPDATE, err, L"cannot record the delivery state of message %hs; it may "
               L"be delivered again", env->id);
    return err;
}

DWORD spool_read_content(const char *id, int held, unsigned char **buf, size_t *len)
{
    wchar_t p[MAX_PATH];
    spool_path(sp.dir, id, held, L"eml", p, MAX_PATH);
    return spool_read_file(p, (size_t)-1 / 2, buf, len);
}

DWORD spool_remove(const char *id, int held)
{
    wchar_t eml[MAX_PATH], env[MAX_PATH];
    spool_path(sp.dir, id, held, L"eml", eml, MAX_PATH);
    spool_path(sp.dir, id, held, L"env", env, MAX_PATH);
    /* The envelope goes first: without it the content is never queued. */
    DWORD err = DeleteFileW(env) ? ERROR_SUCCESS : GetLastError();
    if (err && err != ERROR_FILE_NOT_FOUND)
        return err;
    DeleteFileW(eml);
    /* A log that still holds the message must not bring it back. */
    if (sp.open) {
        EnterCriticalSection(&sp.log_lock);
        if (sp.log != INVALID_HANDLE_VALUE)
            log_append('D', id, 0, "", 0, NULL, 0, 0);
        LeaveCriticalSection(&sp.log_lock);
        removals_append(id);
    }
    return ERROR_SUCCESS;
}

DWORD spool_retry_now(const char *id)
{
    struct envelope e;
    env_init(&e);
    DWORD err = spool_read_env(id, 0, &e);
    if (!err) {
        for (size_t i = 0; i < e.n_rcpt; i++)
            if (e.rcpt[i].state == ENV_DEFERRED)
                e.rcpt[i].next_attempt = 0;
        err = spool_update_env(&e);
    }
    env_free(&e);
    return err;
}

DWORD spool_release(const char *id)
{
    wchar_t from[MAX_PATH], to[MAX_PATH];
    hash_path(sp.dir, id, 1, L"eml", from, MAX_PATH);
    hash_path(sp.dir, id, 0, L"eml", to, MAX_PATH);
    DWORD err = move_into(from, to, MOVEFILE_WRITE_THROUGH);
    if (err)
        return err;
    hash_path(sp.dir, id, 1, L"env", from, MAX_PATH);
    hash_path(sp.dir, id, 0, L"env", to, MAX_PATH);
    return move_into(from, to, MOVEFILE_WRITE_THROUGH);
}

/* A hash folder's name: two hex digits below SPOOL_HASH_FANOUT; -1 if not. */
static int hash_folder(const wchar_t *name)
{
    unsigned v = 0;
    for (int i = 0; i < 2; i++) {
        wchar_t c = name[i];
        if (c >= L'0' && c <= L'9')
            v = v * 16 + (unsigned)(c - L'0');
        else if (c >= L'A' && c <= L'F')
            v = v * 16 + (unsigned)(c - L'A' + 10);
        else
            return -1;
    }
    return name[2] == 0 && v < SPOOL_HASH_FANOUT ? (int)v : -1;
}

/* The messages of one leaf folder (a hash folder, or active\ when active
 * is set); an ID that hashes elsewhere is counted as bad (spool_path would
 * never find it). */
static DWORD scan_leaf(const wchar_t *queue_dir, const wchar_t *dir, int held, int active,
                       void (*fn)(void *, const char *, int), void *arg, unsigned *bad)
{
    wchar_t pat[MAX_PATH];
    int pn = _snwprintf(pat, MAX_PATH, L"%ls\\*.env", dir);
    if (pn < 0 || pn >= MAX_PATH)
        return ERROR_BUFFER_OVERFLOW;
    WIN32_FIND_DATAW fd;
    HANDLE f = FindFirstFileW(pat, &fd);
    if (f == INVALID_HANDLE_VALUE) {
        DWORD err = GetLastError();
        return err == ERROR_FILE_NOT_FOUND || err == ERROR_PATH_NOT_FOUND ? ERROR_SUCCESS : err;
    }
    do {
        char id[ENV_ID_MAX + 8];
        int n = WideCharToMultiByte(CP_UTF8, 0, fd.cFileName, -1, id, (int)sizeof id, NULL, NULL);
        if (n <= 5) {
            (*bad)++;
            continue;
        }
        id[n - 1 - 4] = 0;   /* ".env" */
        wchar_t want[MAX_PATH];
        if (!spool_id_valid(id) || (!active && (hash_path(queue_dir, id, held, L"env", want,
                                                          MAX_PATH) != 0 ||
                                                _wcsnicmp(want, dir, wcslen(dir)) != 0 ||
                                                want[wcslen(dir)] != L'\\'))) {
            (*bad)++;
            continue;
        }
        fn(arg, id, held);
    } while (FindNextFileW(f, &fd));
    FindClose(f);
    return ERROR_SUCCESS;
}

/* The hash folders in dir, one level: calls leaf(arg2, path) for each. */
static DWORD scan_level(const wchar_t *dir, int depth, const wchar_t *queue_dir, int held,
                        void (*fn)(void *, const char *, int), void *arg, unsigned *bad)
{
    wchar_t pat[MAX_PATH];
    int pn = _snwprintf(pat, MAX_PATH, L"%ls\\??", dir);
    if (pn < 0 || pn >= MAX_PATH)
        return ERROR_BUFFER_OVERFLOW;
    WIN32_FIND_DATAW fd;
    HANDLE f = FindFirstFileW(pat, &fd);
    if (f == INVALID_HANDLE_VALUE) {
        DWORD err = GetLastError();
        return err == ERROR_FILE_NOT_FOUND || err == ERROR_PATH_NOT_FOUND ? ERROR_SUCCESS : err;
    }
    DWORD err = ERROR_SUCCESS;
    do {
        if (!(fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) || hash_folder(fd.cFileName) < 0)
            continue;
        wchar_t sub[MAX_PATH];
        int n = _snwprintf(sub, MAX_PATH, L"%ls\\%ls", dir, fd.cFileName);
        if (n < 0 || n >= MAX_PATH)
            continue;
        err = depth == 0 ? scan_level(sub, 1, queue_dir, held, fn, arg, bad)
                         : scan_leaf(queue_dir, sub, held, 0, fn, arg, bad);
    } while (!err && FindNextFileW(f, &fd));
    FindClose(f);
    return err;
}

DWORD spool_scan(const wchar_t *queue_dir, void (*fn)(void *arg, const char *id, int held),
                 void *arg, unsigned *bad)
{
    unsigned dummy = 0;
    if (!bad)
        bad = &dummy;
    *bad = 0;
    /* active\ before the hash folders: a message that moves meanwhile is
     * listed twice rather than not at all */
    wchar_t hold[MAX_PATH], active[MAX_PATH];
    int n = _snwprintf(hold, MAX_PATH, L"%ls\\Hold", queue_dir);
    int na = _snwprintf(active, MAX_PATH, L"%ls\\active", queue_dir);
    if (n < 0 || n >= MAX_PATH || na < 0 || na >= MAX_PATH)
        return ERROR_BUFFER_OVERFLOW;
    DWORD err = scan_leaf(queue_dir, active, 0, 1, fn, arg, bad);
    if (!err)
        err = scan_level(queue_dir, 0, queue_dir, 0, fn, arg, bad);
    if (!err)
        err = scan_level(hold, 0, queue_dir, 1, fn, arg, bad);
    return err;
}
