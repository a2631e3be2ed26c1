/* check_spool.c - the queue on disk: a commit puts content and envelope in
 * the queue, commits that arrive together share a flush, and a start after
 * a crash restores from the commit log what the queue lost, ignores a torn
 * last record and never brings back a message that was removed. A log the
 * start cannot read or restore from is kept, with the spilled content it
 * needs, reported, and replayed at a later start without bringing back what
 * was removed in between. */
#include <check.h>
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

#include "eventlog.h"
#include "evt.h"
#include "location.h"
#include "spool.h"

#define THREADS 32

static wchar_t qdir[MAX_PATH];

static void make_dir(void)
{
    wchar_t tmp[MAX_PATH];
    ck_assert_uint_gt(GetTempPathW(MAX_PATH, tmp), 0);
    _snwprintf(qdir, MAX_PATH, L"%lsspooltest-%lu-%lu", tmp, GetCurrentProcessId(),
               GetTickCount());
    qdir[MAX_PATH - 1] = 0;
}

static void rm_tree(const wchar_t *dir)
{
    wchar_t pat[MAX_PATH], p[MAX_PATH];
    _snwprintf(pat, MAX_PATH, L"%ls\\*", dir);
    WIN32_FIND_DATAW fd;
    HANDLE f = FindFirstFileW(pat, &fd);
    if (f != INVALID_HANDLE_VALUE) {
        do {
            if (!wcscmp(fd.cFileName, L".") || !wcscmp(fd.cFileName, L".."))
                continue;
            _snwprintf(p, MAX_PATH, L"%ls\\%ls", dir, fd.cFileName);
            if (fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY)
                rm_tree(p);
            else
                DeleteFileW(p);
        } while (FindNextFileW(f, &fd));
        FindClose(f);
    }
    RemoveDirectoryW(dir);
}

static wchar_t journal[MAX_PATH];

static void teardown(void)
{
    spool_close();
    rm_tree(qdir);
    if (journal[0]) {
        evlog_close();
        DeleteFileW(journal);
        journal[0] = 0;
    }
}

/* Commit one message with the given body; its ID into id. */
static void commit(const char *body, char *id, size_t n)
{
    struct spool_msg *m;
    ck_assert_uint_eq(spool_create(&m), ERROR_SUCCESS);
    snprintf(id, n, "%s", spool_msg_id(m));
    ck_assert_uint_eq(spool_write(m, body, strlen(body)), ERROR_SUCCESS);
    struct envelope e;
    env_init(&e);
    snprintf(e.id, sizeof e.id, "%s", id);
    e.arrived = 1795440000;
    struct addr_path to;
    struct addr_error err;
    ck_assert_int_eq(addr_parse_mailbox("alice@example.org", 17, ADDR_MAIL, &e.from, &err), 0);
    ck_assert_int_eq(addr_parse_mailbox("bob@example.net", 15, ADDR_RCPT, &to, &err), 0);
    ck_assert_int_ge(env_add_rcpt(&e, &to, NULL), 0);
    ck_assert_uint_eq(spool_commit(m, &e, 0), ERROR_SUCCESS);
    env_free(&e);
}

static char *read_all(const wchar_t *path, size_t *len)
{
    unsigned char *buf;
    if (spool_read_file(path, 1 << 20, &buf, len) != ERROR_SUCCESS)
        return NULL;
    return (char *)buf;
}

START_TEST(commit_puts_content_and_envelope_in_the_queue)
{
    make_dir();
    ck_assert_uint_eq(spool_open(qdir, NULL), ERROR_SUCCESS);
    char id[ENV_ID_MAX + 1];
    commit("Subject: one\r\n\r\nbody\r\n", id, sizeof id);
    wchar_t p[MAX_PATH];
    spool_path(qdir, id, 0, L"eml", p, MAX_PATH);
    size_t len;
    char *c = read_all(p, &len);
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(c, "Subject: one\r\n\r\nbody\r\n");
    free(c);
    struct envelope e;
    env_init(&e);
    ck_assert_uint_eq(spool_read_env(id, 0, &e), ERROR_SUCCESS);
    ck_assert_str_eq(e.id, id);
    ck_assert_uint_eq(e.n_rcpt, 1);
    ck_assert_str_eq(e.rcpt[0].addr.local, "bob");
    env_free(&e);
    /* nothing of it is left in tmp\ */
    wchar_t pat[MAX_PATH];
    _snwprintf(pat, MAX_PATH, L"%ls\\tmp\\*.eml", qdir);
    WIN32_FIND_DATAW fd;
    HANDLE f = FindFirstFileW(pat, &fd);
    ck_assert_ptr_eq(f, INVALID_HANDLE_VALUE);
    teardown();
}
END_TEST

static HANDLE go;

static DWORD WINAPI committer(void *arg)
{
    char id[ENV_ID_MAX + 1], body[64];
    snprintf(body, sizeof body, "Subject: %d\r\n\r\nx\r\n", (int)(INT_PTR)arg);
    WaitForSingleObject(go, INFINITE);
    commit(body, id, sizeof id);
    return 0;
}

START_TEST(commits_arriving_together_share_flushes)
{
    make_dir();
    ck_assert_uint_eq(spool_open(qdir, NULL), ERROR_SUCCESS);
    go = CreateEventW(NULL, TRUE, FALSE, NULL);
    HANDLE t[THREADS];
    for (int i = 0; i < THREADS; i++)
        t[i] = CreateThread(NULL, 0, committer, (void *)(INT_PTR)i, 0, NULL);
    SetEvent(go);
    WaitForMultipleObjects(THREADS, t, TRUE, INFINITE);
    for (int i = 0; i < THREADS; i++)
        CloseHandle(t[i]);
    CloseHandle(go);
    unsigned long long commits, flushes;
    spool_counters(&commits, &flushes);
    ck_assert_uint_eq(commits, THREADS);
    ck_assert_uint_ge(flushes, 1);
    ck_assert_uint_lt(flushes, commits);
    teardown();
}
END_TEST

/* The current log, copied while the service "runs" (a crash keeps it). */
static char *grab_log(size_t *len)
{
    wchar_t p[MAX_PATH];
    _snwprintf(p, MAX_PATH, L"%ls\\log\\commit-00000001.log", qdir);
    HANDLE h = CreateFileW(p, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                           NULL, OPEN_EXISTING, 0, NULL);
    ck_assert_ptr_ne(h, INVALID_HANDLE_VALUE);
    char *buf = malloc(1 << 20);
    DWORD k = 0;
    ck_assert(ReadFile(h, buf, 1 << 20, &k, NULL));
    CloseHandle(h);
    *len = k;
    return buf;
}

static void log_file(unsigned seq, wchar_t *p)
{
    _snwprintf(p, MAX_PATH, L"%ls\\log\\commit-%08u.log", qdir, seq);
    p[MAX_PATH - 1] = 0;
}

static void put_log_as(unsigned seq, const char *buf, size_t len, const char *tail)
{
    wchar_t p[MAX_PATH];
    log_file(seq, p);
    HANDLE h = CreateFileW(p, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
    ck_assert_ptr_ne(h, INVALID_HANDLE_VALUE);
    DWORD k;
    WriteFile(h, buf, (DWORD)len, &k, NULL);
    if (tail)
        WriteFile(h, tail, (DWORD)strlen(tail), &k, NULL);
    CloseHandle(h);
}

static void put_log(const char *buf, size_t len, const char *tail)
{
    put_log_as(7, buf, len, tail);
}

START_TEST(recovery_restores_what_the_queue_lost)
{
    make_dir();
    ck_assert_uint_eq(spool_open(qdir, NULL), ERROR_SUCCESS);
    char a[ENV_ID_MAX + 1], b[ENV_ID_MAX + 1];
    commit("Subject: kept\r\n\r\nthe content that must survive\r\n", a, sizeof a);
    commit("Subject: delivered\r\n\r\nalready gone\r\n", b, sizeof b);
    ck_assert_uint_eq(spool_remove(b, 0), ERROR_SUCCESS);
    size_t len;
    char *log = grab_log(&len);
    spool_close();   /* checkpoints: the log is gone */
    /* The crash: A's files were not on disk, and the log survived with a
     * torn record at its end (a commit that was never acknowledged). */
    wchar_t p[MAX_PATH];
    spool_path(qdir, a, 0, L"env", p, MAX_PATH);
    ck_assert(DeleteFileW(p));
    spool_path(qdir, a, 0, L"eml", p, MAX_PATH);
    HANDLE h = CreateFileW(p, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
    CloseHandle(h);   /* empty: its data never reached the disk */
    put_log(log, len, "rec 1 C 0000000000000000.99999999 1 120 400 0badf00d\nimsvc-env");
    free(log);

    unsigned restored = 99;
    ck_assert_uint_eq(spool_open(qdir, &restored), ERROR_SUCCESS);
    ck_assert_uint_eq(restored, 1);
    size_t n;
    char *c = read_all(p, &n);
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(c, "Subject: kept\r\n\r\nthe content that must survive\r\n");
    free(c);
    struct envelope e;
    env_init(&e);
    ck_assert_uint_eq(spool_read_env(a, 0, &e), ERROR_SUCCESS);
    ck_assert_str_eq(e.rcpt[0].addr.domain, "example.net");
    env_free(&e);
    /* B was removed before the crash: the log must not bring it back */
    spool_path(qdir, b, 0, L"env", p, MAX_PATH);
    ck_assert_uint_eq(GetFileAttributesW(p), INVALID_FILE_ATTRIBUTES);
    /* the torn record's message does not exist */
    spool_path(qdir, "0000000000000000.99999999", 0, L"env", p, MAX_PATH);
    ck_assert_uint_eq(GetFileAttributesW(p), INVALID_FILE_ATTRIBUTES);
    /* and the replayed log was deleted */
    _snwprintf(p, MAX_PATH, L"%ls\\log\\commit-00000007.log", qdir);
    ck_assert_uint_eq(GetFileAttributesW(p), INVALID_FILE_ATTRIBUTES);
    teardown();
}
END_TEST

START_TEST(a_queue_file_that_survived_is_kept_as_it_is)
{
    make_dir();
    ck_assert_uint_eq(spool_open(qdir, NULL), ERROR_SUCCESS);
    char a[ENV_ID_MAX + 1];
    commit("Subject: kept\r\n\r\nx\r\n", a, sizeof a);
    /* a delivery attempt updated the envelope after the commit */
    struct envelope e;
    env_init(&e);
    ck_assert_uint_eq(spool_read_env(a, 0, &e), ERROR_SUCCESS);
    e.rcpt[0].state = ENV_DEFERRED;
    e.rcpt[0].attempts = 1;
    ck_assert_uint_eq(spool_update_env(&e), ERROR_SUCCESS);
    env_free(&e);
    size_t len;
    char *log = grab_log(&len);
    spool_close();
    put_log(log, len, NULL);
    free(log);
    unsigned restored = 99;
    ck_assert_uint_eq(spool_open(qdir, &restored), ERROR_SUCCESS);
    ck_assert_uint_eq(restored, 0);
    env_init(&e);
    ck_assert_uint_eq(spool_read_env(a, 0, &e), ERROR_SUCCESS);
    ck_assert_int_eq(e.rcpt[0].state, ENV_DEFERRED);   /* not the older logged state */
    env_free(&e);
    teardown();
}
END_TEST

/* Kept logs ---------------------------------------------------------------- */

static void journal_start(void)
{
    _snwprintf(journal, MAX_PATH, L"%ls-events.evt", qdir);
    journal[MAX_PATH - 1] = 0;
    DeleteFileW(journal);
    ck_assert_uint_eq(evlog_open(journal, 0), ERROR_SUCCESS);
}

/* How many events id (low 16 bits) the journal holds with this location and
 * status, whose first string contains needle. */
static int count_events(DWORD id, DWORD loc, DWORD status, const char *needle)
{
    evlog_close();
    FILE *f = _wfopen(journal, L"rb");
    ck_assert_ptr_nonnull(f);
    unsigned char *buf;
    size_t len;
    ck_assert_int_eq(evt_slurp(f, &buf, &len), EVT_OK);
    fclose(f);
    struct evt_reader r;
    struct evt_view v;
    ck_assert_int_eq(evt_reader_init(&r, buf, len), EVT_OK);
    int n = 0;
    while (evt_reader_next(&r, &v) == 1) {
        if ((v.event_id & 0xFFFF) != id || v.data_len != 8)
            continue;
        DWORD d[2];
        memcpy(d, v.data, 8);
        const unsigned char *t;
        size_t units;
        char text[1024];
        if (d[0] != loc || d[1] != status || evt_view_string(&v, 0, &t, &units) != EVT_OK)
            continue;
        evt_utf16le_to_utf8(t, units, text, sizeof text);
        if (strstr(text, needle))
            n++;
    }
    evt_reader_free(&r);
    free(buf);
    ck_assert_uint_eq(evlog_open(journal, 0), ERROR_SUCCESS);
    return n;
}

static int exists(const wchar_t *p)
{
    return GetFileAttributesW(p) != INVALID_FILE_ATTRIBUTES;
}

/* Another handle on the file, as a backup tool or scanner would hold it. */
static HANDLE hold(const wchar_t *p, DWORD share)
{
    HANDLE h = CreateFileW(p, GENERIC_READ, share, NULL, OPEN_EXISTING, 0, NULL);
    ck_assert_ptr_ne(h, INVALID_HANDLE_VALUE);
    return h;
}

static void tmp_file(const char *name, wchar_t *p)
{
    _snwprintf(p, MAX_PATH, L"%ls\\tmp\\%hs", qdir, name);
    p[MAX_PATH - 1] = 0;
}

static void put_file(const wchar_t *p, const char *text)
{
    HANDLE h = CreateFileW(p, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
    ck_assert_ptr_ne(h, INVALID_HANDLE_VALUE);
    DWORD k;
    ck_assert(WriteFile(h, text, (DWORD)strlen(text), &k, NULL));
    CloseHandle(h);
}

static void drop_message(const char *id)
{
    wchar_t p[MAX_PATH];
    spool_path(qdir, id, 0, L"env", p, MAX_PATH);
    ck_assert(DeleteFileW(p));
    spool_path(qdir, id, 0, L"eml", p, MAX_PATH);
    ck_assert(DeleteFileW(p));
}

static int queued(const char *id)
{
    wchar_t p[MAX_PATH];
    spool_path(qdir, id, 0, L"env", p, MAX_PATH);
    return exists(p);
}

/* The content of queued message id is body. */
static void check_content(const char *id, const char *body, size_t len)
{
    wchar_t p[MAX_PATH];
    spool_path(qdir, id, 0, L"eml", p, MAX_PATH);
    unsigned char *buf;
    size_t n;
    ck_assert_uint_eq(spool_read_file(p, 1 << 22, &buf, &n), ERROR_SUCCESS);
    ck_assert_uint_eq(n, len);
    ck_assert(memcmp(buf, body, len) == 0);
    free(buf);
}

/* A message too large for the log: only its envelope is logged. */
#define BIG_LEN (SPOOL_INLINE_MAX + 70000u)

static char *big_body(void)
{
    char *b = malloc(BIG_LEN);
    ck_assert_ptr_nonnull(b);
    memcpy(b, "Subject: big\r\n\r\n", 16);
    for (size_t i = 16; i < BIG_LEN; i++)
        b[i] = (i % 72 == 70) ? '\r' : (i % 72 == 71) ? '\n' : (char)('a' + i % 26);
    return b;
}

static void commit_n(const char *body, size_t len, char *id, size_t n)
{
    struct spool_msg *m;
    ck_assert_uint_eq(spool_create(&m), ERROR_SUCCESS);
    snprintf(id, n, "%s", spool_msg_id(m));
    for (size_t o = 0; o < len; o += 50000)
        ck_assert_uint_eq(spool_write(m, body + o, len - o < 50000 ? len - o : 50000),
                          ERROR_SUCCESS);
    struct envelope e;
    env_init(&e);
    snprintf(e.id, sizeof e.id, "%s", id);
    e.arrived = 1795440000;
    struct addr_path to;
    struct addr_error err;
    ck_assert_int_eq(addr_parse_mailbox("alice@example.org", 17, ADDR_MAIL, &e.from, &err), 0);
    ck_assert_int_eq(addr_parse_mailbox("bob@example.net", 15, ADDR_RCPT, &to, &err), 0);
    ck_assert_int_ge(env_add_rcpt(&e, &to, NULL), 0);
    ck_assert_uint_eq(spool_commit(m, &e, 0), ERROR_SUCCESS);
    env_free(&e);
}

/* The crash lost the rename of a spilled content into the queue, and its
 * envelope: the content is whole in tmp\ only. */
static void unrename(const char *id)
{
    wchar_t from[MAX_PATH], to[MAX_PATH];
    spool_path(qdir, id, 0, L"eml", from, MAX_PATH);
    _snwprintf(to, MAX_PATH, L"%ls\\tmp\\%hs.eml", qdir, id);
    ck_assert(MoveFileExW(from, to, 0));
    spool_path(qdir, id, 0, L"env", from, MAX_PATH);
    ck_assert(DeleteFileW(from));
}

/* A D record, as docs/queue-format.md gives it. */
static size_t d_record(const char *id, char *out, size_t cap)
{
    char head[160];
    int hn = snprintf(head, sizeof head, "rec 1 D %s 0 0 0 00000000\n", id);
    ck_assert_int_lt(hn, (int)sizeof head);
    int n = snprintf(out, cap, "%send %08lx\n", head,
                     (unsigned long)env_crc32_update(0, head, (size_t)hn));
    ck_assert_int_lt(n, (int)cap);
    return (size_t)n;
}

START_TEST(a_log_that_cannot_be_opened_is_kept_and_replayed_later)
{
    make_dir();
    journal_start();
    ck_assert_uint_eq(spool_open(qdir, NULL), ERROR_SUCCESS);
    char a[ENV_ID_MAX + 1], b[ENV_ID_MAX + 1], c[ENV_ID_MAX + 1];
    const char *body_b = "Subject: lost\r\n\r\nonly the log has me\r\n";
    commit("Subject: survived\r\n\r\nmy files reached the disk\r\n", a, sizeof a);
    commit(body_b, b, sizeof b);
    size_t len;
    char *log = grab_log(&len);
    spool_close();
    /* The crash: B's files never reached the disk; the log did. */
    drop_message(b);
    put_log(log, len, NULL);
    wchar_t log7[MAX_PATH], log8[MAX_PATH];
    log_file(7, log7);
    log_file(8, log8);

    /* Another handle holds the log without sharing while the queue opens. */
    HANDLE h = hold(log7, 0);
    unsigned restored = 99;
    ck_assert_uint_eq(spool_open(qdir, &restored), ERROR_SUCCESS);
    ck_assert_uint_eq(restored, 0);
    ck_assert(!queued(b));
    ck_assert(queued(a));
    ck_assert(exists(log8));   /* the removal log, above the kept one */
    /* The service runs: A is delivered and removed, C arrives. */
    ck_assert_uint_eq(spool_remove(a, 0), ERROR_SUCCESS);
    commit("Subject: new\r\n\r\nafter the start\r\n", c, sizeof c);
    spool_close();
    CloseHandle(h);
    ck_assert_int_eq(count_events(4160, LOC_SPOOL_LOG_READ, ERROR_SHARING_VIOLATION,
                                  "commit-00000007.log"), 1);
    /* The kept log is there, as it was: no new log took its number. */
    size_t n;
    char *kept = read_all(log7, &n);
    ck_assert_ptr_nonnull(kept);
    ck_assert_uint_eq(n, len);
    ck_assert(memcmp(kept, log, len) == 0);
    free(kept);
    free(log);

    /* Readable now: B comes back, A (removed since) does not. */
    restored = 99;
    ck_assert_uint_eq(spool_open(qdir, &restored), ERROR_SUCCESS);
    ck_assert_uint_eq(restored, 1);
    check_content(b, body_b, strlen(body_b));
    ck_assert(!queued(a));
    ck_assert(queued(c));
    ck_assert(!exists(log7));
    ck_assert(!exists(log8));
    ck_assert_int_eq(count_events(4160, LOC_SPOOL_LOG_READ, ERROR_SHARING_VIOLATION,
                                  "commit-00000007.log"), 1);
    teardown();
}
END_TEST

START_TEST(spilled_content_stays_in_tmp_while_its_log_is_kept)
{
    make_dir();
    journal_start();
    ck_assert_uint_eq(spool_open(qdir, NULL), ERROR_SUCCESS);
    char *big = big_body();
    char s_id[ENV_ID_MAX + 1], i_id[ENV_ID_MAX + 1];
    const char *body_i = "Subject: inline\r\n\r\nsmall\r\n";
    commit_n(big, BIG_LEN, s_id, sizeof s_id);
    commit(body_i, i_id, sizeof i_id);
    size_t len;
    char *log = grab_log(&len);
    ck_assert_uint_lt(len, 64 * 1024);   /* the big content is not in it */
    spool_close();
    unrename(s_id);
    drop_message(i_id);
    put_log(log, len, NULL);
    free(log);
    wchar_t log7[MAX_PATH], spilled[MAX_PATH], junk[MAX_PATH], junk_env[MAX_PATH];
    log_file(7, log7);
    char name[ENV_ID_MAX + 8];
    snprintf(name, sizeof name, "%s.eml", s_id);
    tmp_file(name, spilled);
    tmp_file("0000000000000000.00000001.eml", junk);   /* a reception cut short */
    tmp_file("0000000000000000.00000001.env", junk_env);
    put_file(junk, "Subject: cut");
    put_file(junk_env, "imsvc-envelope 1\n");

    HANDLE h = hold(log7, 0);
    ck_assert_uint_eq(spool_open(qdir, NULL), ERROR_SUCCESS);
    /* Which tmp\ contents the unread log needs is not known: all are kept. */
    ck_assert(exists(spilled));
    ck_assert(exists(junk));
    ck_assert(!exists(junk_env));
    ck_assert(!queued(s_id));
    spool_close();
    CloseHandle(h);
    ck_assert_int_eq(count_events(4160, LOC_SPOOL_LOG_READ, ERROR_SHARING_VIOLATION,
                                  "commit-00000007.log"), 1);

    unsigned restored = 99;
    ck_assert_uint_eq(spool_open(qdir, &restored), ERROR_SUCCESS);
    ck_assert_uint_eq(restored, 2);
    check_content(s_id, big, BIG_LEN);
    check_content(i_id, body_i, strlen(body_i));
    ck_assert(!exists(spilled));
    ck_assert(!exists(junk));
    ck_assert(!exists(log7));
    free(big);
    teardown();
}
END_TEST

START_TEST(a_message_not_restored_keeps_its_log_and_its_spilled_content)
{
    make_dir();
    journal_start();
    ck_assert_uint_eq(spool_open(qdir, NULL), ERROR_SUCCESS);
    char *big = big_body();
    char s_id[ENV_ID_MAX + 1];
    commit_n(big, BIG_LEN, s_id, sizeof s_id);
    size_t len;
    char *log = grab_log(&len);
    spool_close();
    unrename(s_id);
    put_log(log, len, NULL);
    free(log);
    wchar_t log7[MAX_PATH], spilled[MAX_PATH], junk[MAX_PATH];
    log_file(7, log7);
    char name[ENV_ID_MAX + 8];
    snprintf(name, sizeof name, "%s.eml", s_id);
    tmp_file(name, spilled);
    tmp_file("0000000000000000.00000001.eml", junk);
    put_file(junk, "Subject: cut");

    /* The spilled content cannot be read, but could be deleted. */
    HANDLE h = hold(spilled, FILE_SHARE_DELETE);
    ck_assert_uint_eq(spool_open(qdir, NULL), ERROR_SUCCESS);
    ck_assert(exists(log7));
    ck_assert(!exists(junk));   /* the log was read: only what it needs stays */
    ck_assert(!queued(s_id));
    spool_close();
    CloseHandle(h);
    ck_assert(exists(spilled));
    ck_assert_int_eq(count_events(4160, LOC_SPOOL_LOG_RESTORE, ERROR_SHARING_VIOLATION,
                                  "commit-00000007.log"), 1);
    ck_assert_int_eq(count_events(4100, LOC_SPOOL_RECOVER, ERROR_SHARING_VIOLATION, s_id), 1);

    unsigned restored = 99;
    ck_assert_uint_eq(spool_open(qdir, &restored), ERROR_SUCCESS);
    ck_assert_uint_eq(restored, 1);
    check_content(s_id, big, BIG_LEN);
    ck_assert(!exists(log7));
    ck_assert(!exists(spilled));
    free(big);
    teardown();
}
END_TEST

/* X committed in log 6, removed in log 7. */
static void put_commit_then_removal(char *x, size_t n)
{
    ck_assert_uint_eq(spool_open(qdir, NULL), ERROR_SUCCESS);
    commit("Subject: delivered\r\n\r\nonce\r\n", x, n);
    size_t len;
    char *log = grab_log(&len);
    ck_assert_uint_eq(spool_remove(x, 0), ERROR_SUCCESS);
    spool_close();
    put_log_as(6, log, len, NULL);
    free(log);
    char d[256];
    size_t dn = d_record(x, d, sizeof d);
    put_log_as(7, d, dn, NULL);
}

START_TEST(a_removal_outlives_its_log_while_an_earlier_log_is_kept)
{
    make_dir();
    journal_start();
    char x[ENV_ID_MAX + 1];
    put_commit_then_removal(x, sizeof x);
    wchar_t log6[MAX_PATH], log7[MAX_PATH];
    log_file(6, log6);
    log_file(7, log7);
    HANDLE h = hold(log6, 0);
    ck_assert_uint_eq(spool_open(qdir, NULL), ERROR_SUCCESS);
    ck_assert(!exists(log7));   /* replayed and deleted; its D record carried on */
    ck_assert(!queued(x));
    spool_close();
    CloseHandle(h);
    unsigned restored = 99;
    ck_assert_uint_eq(spool_open(qdir, &restored), ERROR_SUCCESS);
    ck_assert_uint_eq(restored, 0);
    ck_assert(!queued(x));
    ck_assert(!exists(log6));
    teardown();
}
END_TEST

START_TEST(a_log_that_cannot_be_read_holds_back_the_earlier_ones)
{
    make_dir();
    journal_start();
    char x[ENV_ID_MAX + 1];
    put_commit_then_removal(x, sizeof x);
    wchar_t log6[MAX_PATH], log7[MAX_PATH];
    log_file(6, log6);
    log_file(7, log7);
    /* Log 7 may say that X was removed: log 6 must wait for it. */
    HANDLE h = hold(log7, 0);
    ck_assert_uint_eq(spool_open(qdir, NULL), ERROR_SUCCESS);
    ck_assert(!queued(x));
    ck_assert(exists(log6));
    spool_close();
    CloseHandle(h);
    ck_assert_int_eq(count_events(4160, LOC_SPOOL_LOG_BLOCKED, ERROR_SHARING_VIOLATION,
                                  "commit-00000006.log"), 1);
    ck_assert_int_eq(count_events(4160, LOC_SPOOL_LOG_READ, ERROR_SHARING_VIOLATION,
                                  "commit-00000007.log"), 1);
    unsigned restored = 99;
    ck_assert_uint_eq(spool_open(qdir, &restored), ERROR_SUCCESS);
    ck_assert_uint_eq(restored, 0);
    ck_assert(!queued(x));
    ck_assert(!exists(log6));
    ck_assert(!exists(log7));
    teardown();
}
END_TEST

/* The layout: Queue\XX\YY\ID.ext with XX, YY two upper-case hex digits below
 * 0x40 from the ID, the same for an ID every time; Hold\ likewise. */
static void path_is_hashed(const wchar_t *p, const wchar_t *base, const char *id, const char *ext)
{
    size_t bl = wcslen(base);
    ck_assert_msg(_wcsnicmp(p, base, bl) == 0 && p[bl] == L'\\', "%ls not under %ls", p, base);
    const wchar_t *h = p + bl + 1;
    for (int i = 0; i < 2; i++, h += 3) {
        ck_assert_msg(iswxdigit(h[0]) && iswxdigit(h[1]) && h[2] == L'\\' &&
                      !iswlower(h[0]) && !iswlower(h[1]) && h[0] <= L'3', "bad hash folder in %ls", p);
    }
    wchar_t want[200];
    _snwprintf(want, 200, L"%hs.%hs", id, ext);
    ck_assert_msg(wcscmp(h, want) == 0, "%ls does not end in %ls", p, want);
}

struct found {
    unsigned n, held;
    char ids[8][ENV_ID_MAX + 1];
};

static void found_one(void *arg, const char *id, int held)
{
    struct found *f = arg;
    if (f->n < 8)
        strcpy(f->ids[f->n], id);
    f->n++;
    f->held += held;
}

/* A message's first envelope update moves it from active\ into its hash
 * folder (what a delivery attempt that leaves it waiting does). */
static void update_once(const char *id)
{
    struct envelope e;
    env_init(&e);
    ck_assert_uint_eq(spool_read_env(id, 0, &e), ERROR_SUCCESS);
    ck_assert_uint_eq(spool_update_env(&e), ERROR_SUCCESS);
    env_free(&e);
}

START_TEST(messages_live_in_hash_folders)
{
    make_dir();
    ck_assert_uint_eq(spool_open(qdir, NULL), ERROR_SUCCESS);
    char id[ENV_ID_MAX + 1];
    commit("Subject: hashed\r\n\r\nbody\r\n", id, sizeof id);
    wchar_t p[MAX_PATH], p2[MAX_PATH], hold[MAX_PATH], active[MAX_PATH];
    /* committed into active\, listed from there */
    _snwprintf(active, MAX_PATH, L"%ls\\active\\%hs.eml", qdir, id);
    ck_assert_int_eq(spool_path(qdir, id, 0, L"eml", p, MAX_PATH), 0);
    ck_assert_msg(wcscmp(p, active) == 0, "%ls is not %ls", p, active);
    ck_assert(GetFileAttributesW(p) != INVALID_FILE_ATTRIBUTES);
    struct found f0 = { 0 };
    ck_assert_uint_eq(spool_scan(qdir, found_one, &f0, NULL), ERROR_SUCCESS);
    ck_assert_uint_eq(f0.n, 1);
    ck_assert_str_eq(f0.ids[0], id);
    /* the first envelope update moves both files into the hash folder */
    update_once(id);
    ck_assert_uint_eq(GetFileAttributesW(active), INVALID_FILE_ATTRIBUTES);
    active[wcslen(active) - 1] = L'v';
    ck_assert_uint_eq(GetFileAttributesW(active), INVALID_FILE_ATTRIBUTES);
    ck_assert_int_eq(spool_path(qdir, id, 0, L"eml", p, MAX_PATH), 0);
    path_is_hashed(p, qdir, id, "eml");
    ck_assert(GetFileAttributesW(p) != INVALID_FILE_ATTRIBUTES);
    ck_assert_int_eq(spool_path(qdir, id, 0, L"eml", p2, MAX_PATH), 0);
    ck_assert(wcscmp(p, p2) == 0);
    _snwprintf(hold, MAX_PATH, L"%ls\\Hold", qdir);
    ck_assert_int_eq(spool_path(qdir, id, 1, L"env", p2, MAX_PATH), 0);
    path_is_hashed(p2, hold, id, "env");
    /* IDs spread: 200 IDs land in many folders */
    unsigned distinct = 0;
    static wchar_t seen[200][MAX_PATH];
    for (int i = 0; i < 200; i++) {
        char x[40];
        snprintf(x, sizeof x, "01DD8203%08X.%04X0001", i * 7919, i);
        ck_assert_int_eq(spool_path(qdir, x, 0, L"env", seen[i], MAX_PATH), 0);
        *wcsrchr(seen[i], L'\\') = 0;
        int dup = 0;
        for (int j = 0; j < i && !dup; j++)
            dup = wcscmp(seen[i], seen[j]) == 0;
        distinct += !dup;
    }
    ck_assert_uint_gt(distinct, 150);
    /* what is not a queue ID has no path */
    static const char *const bad[] = { "", "a\\b", "..\\x", "a/b", "a b", "a:b",
        "12345678901234567890123456789012345678901234567890123456789012345" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p2[0] = L'x';
        ck_assert_int_eq(spool_id_valid(bad[i]), 0);
        ck_assert_int_eq(spool_path(qdir, bad[i], 0, L"env", p2, MAX_PATH), -1);
        ck_assert(p2[0] == 0);
    }
    ck_assert_int_eq(spool_path(qdir, id, 0, L"env", p2, 10), -1);
    /* an envelope in a hash folder its ID does not hash to is not listed */
    struct found f = { 0 };
    unsigned bad_n = 99;
    ck_assert_uint_eq(spool_scan(qdir, found_one, &f, &bad_n), ERROR_SUCCESS);
    ck_assert_uint_eq(f.n, 1);
    ck_assert_str_eq(f.ids[0], id);
    ck_assert_uint_eq(bad_n, 0);
    ck_assert_int_eq(spool_path(qdir, id, 0, L"env", p, MAX_PATH), 0);
    wchar_t *leaf = wcsrchr(p, L'\\');
    wchar_t other[MAX_PATH];
    _snwprintf(other, MAX_PATH, L"%.*ls\\%ls", (int)(leaf - p - 3), p,
               wcsncmp(leaf - 2, L"00", 2) ? L"00" : L"01");
    CreateDirectoryW(other, NULL);
    wcscat(other, L"\\0000000000000000.00000009.env");
    HANDLE h = CreateFileW(other, GENERIC_WRITE, 0, NULL, CREATE_NEW, 0, NULL);
    ck_assert(h != INVALID_HANDLE_VALUE);
    CloseHandle(h);
    memset(&f, 0, sizeof f);
    ck_assert_uint_eq(spool_scan(qdir, found_one, &f, &bad_n), ERROR_SUCCESS);
    ck_assert_uint_eq(f.n, 1);
    ck_assert_uint_eq(bad_n, 1);
    teardown();
}
END_TEST

/* A crash cut the move out of active\ short: the content is in the hash
 * folder, the envelope still in active\, and the commit log survived.
 * Recovery finishes the move and restores nothing twice; the message is
 * listed once and read whole. */
START_TEST(a_move_out_of_active_cut_short_is_finished_at_start)
{
    make_dir();
    ck_assert_uint_eq(spool_open(qdir, NULL), ERROR_SUCCESS);
    char id[ENV_ID_MAX + 1];
    commit("Subject: moving\r\n\r\nhalf way\r\n", id, sizeof id);
    size_t len;
    char *log = grab_log(&len);
    spool_close();
    wchar_t act[MAX_PATH], side[MAX_PATH], hashed[MAX_PATH];
    ck_assert_int_eq(spool_path(qdir, id, 0, L"eml", act, MAX_PATH), 0);
    _snwprintf(side, MAX_PATH, L"%ls\\tmp\\aside.bin", qdir);
    ck_assert(MoveFileW(act, side));
    /* with nothing in active\, the path is the hash folder's */
    ck_assert_int_eq(spool_path(qdir, id, 0, L"eml", hashed, MAX_PATH), 0);
    path_is_hashed(hashed, qdir, id, "eml");
    wchar_t d[MAX_PATH];
    wcscpy(d, hashed);
    *wcsrchr(d, L'\\') = 0;
    *wcsrchr(d, L'\\') = 0;
    CreateDirectoryW(d, NULL);
    wcscpy(d, hashed);
    *wcsrchr(d, L'\\') = 0;
    CreateDirectoryW(d, NULL);
    ck_assert(MoveFileW(side, hashed));
    put_log(log, len, "");
    free(log);

    unsigned restored = 99;
    ck_assert_uint_eq(spool_open(qdir, &restored), ERROR_SUCCESS);
    ck_assert_uint_eq(restored, 0);   /* both files were whole */
    wchar_t p[MAX_PATH];
    ck_assert_int_eq(spool_path(qdir, id, 0, L"env", p, MAX_PATH), 0);
    path_is_hashed(p, qdir, id, "env");
    ck_assert(exists(p));
    _snwprintf(p, MAX_PATH, L"%ls\\active\\%hs.eml", qdir, id);
    ck_assert(!exists(p));
    struct found f = { 0 };
    ck_assert_uint_eq(spool_scan(qdir, found_one, &f, NULL), ERROR_SUCCESS);
    ck_assert_uint_eq(f.n, 1);
    static const char body[] = "Subject: moving\r\n\r\nhalf way\r\n";
    check_content(id, body, sizeof body - 1);
    teardown();
}
END_TEST

/* A flat queue (Queue\ID.*, Queue\Hold\ID.*) is moved into the hash
 * folders by spool_open, a message whose content was moved already but not
 * its envelope included; nothing of it is lost or left flat. */
START_TEST(a_flat_queue_is_moved_into_hash_folders)
{
    make_dir();
    ck_assert_uint_eq(spool_open(qdir, NULL), ERROR_SUCCESS);
    char a[ENV_ID_MAX + 1], b[ENV_ID_MAX + 1], c[ENV_ID_MAX + 1];
    commit("Subject: a\r\n\r\nflat\r\n", a, sizeof a);
    commit("Subject: b\r\n\r\nflat held\r\n", b, sizeof b);
    commit("Subject: c\r\n\r\nhalf moved\r\n", c, sizeof c);
    update_once(a);   /* in their hash folders, as main before active\ kept them */
    update_once(b);
    update_once(c);
    spool_close();
    wchar_t from[MAX_PATH], to[MAX_PATH], hold[MAX_PATH];
    _snwprintf(hold, MAX_PATH, L"%ls\\Hold", qdir);
    static const wchar_t *const exts[] = { L"eml", L"env" };
    for (int i = 0; i < 2; i++) {
        spool_path(qdir, a, 0, exts[i], from, MAX_PATH);
        _snwprintf(to, MAX_PATH, L"%ls\\%hs.%ls", qdir, a, exts[i]);
        ck_assert(MoveFileW(from, to));
        spool_path(qdir, b, 0, exts[i], from, MAX_PATH);
        _snwprintf(to, MAX_PATH, L"%ls\\%hs.%ls", hold, b, exts[i]);
        ck_assert(MoveFileW(from, to));
    }
    spool_path(qdir, c, 0, L"env", from, MAX_PATH);
    _snwprintf(to, MAX_PATH, L"%ls\\%hs.env", qdir, c);
    ck_assert(MoveFileW(from, to));
    struct found f = { 0 };
    ck_assert_uint_eq(spool_scan(qdir, found_one, &f, NULL), ERROR_SUCCESS);
    ck_assert_uint_eq(f.n, 0);   /* nothing in the hash folders */

    ck_assert_uint_eq(spool_open(qdir, NULL), ERROR_SUCCESS);
    memset(&f, 0, sizeof f);
    ck_assert_uint_eq(spool_scan(qdir, found_one, &f, NULL), ERROR_SUCCESS);
    ck_assert_uint_eq(f.n, 3);
    ck_assert_uint_eq(f.held, 1);
    unsigned char *buf;
    size_t len;
    ck_assert_uint_eq(spool_read_content(b, 1, &buf, &len), ERROR_SUCCESS);
    ck_assert_str_eq((char *)buf, "Subject: b\r\n\r\nflat held\r\n");
    free(buf);
    ck_assert_uint_eq(spool_read_content(c, 0, &buf, &len), ERROR_SUCCESS);
    ck_assert_str_eq((char *)buf, "Subject: c\r\n\r\nhalf moved\r\n");
    free(buf);
    struct envelope e;
    env_init(&e);
    ck_assert_uint_eq(spool_read_env(a, 0, &e), ERROR_SUCCESS);
    ck_assert_str_eq(e.id, a);
    env_free(&e);
    /* nothing is left flat */
    _snwprintf(from, MAX_PATH, L"%ls\\*.e??", qdir);
    WIN32_FIND_DATAW fd;
    ck_assert_ptr_eq(FindFirstFileW(from, &fd), INVALID_HANDLE_VALUE);
    _snwprintf(from, MAX_PATH, L"%ls\\*.e??", hold);
    ck_assert_ptr_eq(FindFirstFileW(from, &fd), INVALID_HANDLE_VALUE);
    /* and the held one is released into its queue hash folder */
    ck_assert_uint_eq(spool_release(b), ERROR_SUCCESS);
    env_init(&e);
    ck_assert_uint_eq(spool_read_env(b, 0, &e), ERROR_SUCCESS);
    env_free(&e);
    teardown();
}
END_TEST

Suite *spool_suite(void)
{
    Suite *s = suite_create("spool");
    TCase *tc = tcase_create("spool");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, commit_puts_content_and_envelope_in_the_queue);
    tcase_add_test(tc, commits_arriving_together_share_flushes);
    tcase_add_test(tc, recovery_restores_what_the_queue_lost);
    tcase_add_test(tc, a_queue_file_that_survived_is_kept_as_it_is);
    tcase_add_test(tc, a_log_that_cannot_be_opened_is_kept_and_replayed_later);
    tcase_add_test(tc, spilled_content_stays_in_tmp_while_its_log_is_kept);
    tcase_add_test(tc, a_message_not_restored_keeps_its_log_and_its_spilled_content);
    tcase_add_test(tc, a_removal_outlives_its_log_while_an_earlier_log_is_kept);
    tcase_add_test(tc, a_log_that_cannot_be_read_holds_back_the_earlier_ones);
    tcase_add_test(tc, messages_live_in_hash_folders);
    tcase_add_test(tc, a_move_out_of_active_cut_short_is_finished_at_start);
    tcase_add_test(tc, a_flat_queue_is_moved_into_hash_folders);
    suite_add_tcase(s, tc);
    return s;
}
