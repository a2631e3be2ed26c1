/* check_spool.c - the queue on disk: a commit puts content and envelope in
 * the queue, commits that arrive together share a flush, and a start after
 * a crash restores from the commit log what the queue lost, ignores a torn
 * last record and never brings back a message that was removed. */
#include <check.h>
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static void teardown(void)
{
    spool_close();
    rm_tree(qdir);
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

static void put_log(const char *buf, size_t len, const char *tail)
{
    wchar_t p[MAX_PATH];
    _snwprintf(p, MAX_PATH, L"%ls\\log\\commit-00000007.log", qdir);
    HANDLE h = CreateFileW(p, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
    ck_assert_ptr_ne(h, INVALID_HANDLE_VALUE);
    DWORD k;
    WriteFile(h, buf, (DWORD)len, &k, NULL);
    if (tail)
        WriteFile(h, tail, (DWORD)strlen(tail), &k, NULL);
    CloseHandle(h);
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

Suite *spool_suite(void)
{
    Suite *s = suite_create("spool");
    TCase *tc = tcase_create("spool");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, commit_puts_content_and_envelope_in_the_queue);
    tcase_add_test(tc, commits_arriving_together_share_flushes);
    tcase_add_test(tc, recovery_restores_what_the_queue_lost);
    tcase_add_test(tc, a_queue_file_that_survived_is_kept_as_it_is);
    suite_add_tcase(s, tc);
    return s;
}
