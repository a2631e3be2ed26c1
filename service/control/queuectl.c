/* queuectl.c - both sides of the queue control protocol (see queuectl.h). */
#include "queuectl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spool.h"
#include "utf.h"

#define QUEUECTL_POLL_MS 100u

/* ctl\name as a path; 0, or -1 if it does not fit. */
static int ctl_path(const wchar_t *ctl, const char *name, wchar_t *out, size_t cap)
{
    int w = _snwprintf(out, cap, L"%ls\\%hs", ctl, name);
    if (w < 0 || (size_t)w >= cap) {
        out[0] = 0;
        return -1;
    }
    return 0;
}

int queuectl_request(enum ctlreq_action a, const char *id, DWORD wait_ms)
{
    char name[CTLREQ_NAME_MAX], done_name[CTLREQ_NAME_MAX];
    wchar_t ctl[MAX_PATH], req[MAX_PATH], done[MAX_PATH];
    spool_ctl_dir(ctl, MAX_PATH);
    if (ctlreq_name(a, id, name, sizeof name) < 0 ||
        ctlreq_answer_name(a, id, done_name, sizeof done_name) < 0 ||
        ctl_path(ctl, name, req, MAX_PATH) != 0 || ctl_path(ctl, done_name, done, MAX_PATH) != 0) {
        fprintf(stderr, "imsvc: %s is not a %s, or the queue folder's name is too long\n",
                id, a == CTLREQ_FLUSH ? "destination" : "queue ID");
        return 1;
    }
    CreateDirectoryW(ctl, NULL);
    DeleteFileW(done);
    HANDLE h = CreateFileW(req, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
    if (h == INVALID_HANDLE_VALUE) {
        fprintf(stderr, "imsvc: cannot write the request %ls (error %lu)\n", req, GetLastError());
        return 1;
    }
    CloseHandle(h);
    for (DWORD waited = 0; waited < wait_ms; waited += QUEUECTL_POLL_MS) {
        unsigned char *text;
        size_t len;
        if (spool_read_file(done, 4096, &text, &len) == ERROR_SUCCESS) {
            DeleteFileW(done);
            int failed;
            printf("%s\n", ctlreq_read_answer((const char *)text, len, &failed));
            free(text);
            return failed;
        }
        Sleep(QUEUECTL_POLL_MS);
    }
    fprintf(stderr, "imsvc: the service has not answered the %s request for %s within %lu "
            "seconds; it stays in %ls and is carried out when the service gets to it\n",
            a == CTLREQ_FLUSH ? "retry" : ctlreq_action_name(a),
            a == CTLREQ_FLUSH && !id[0] ? "every deferred message" : id,
            (unsigned long)(wait_ms / 1000), ctl);
    return 1;
}

/* Write the answer, then delete the request: a command waiting sees the
 * answer, and a crash between the two repeats an idempotent request. */
static void answer(const wchar_t *ctl, const char *name, int failed, const char *text)
{
    char body[CTLREQ_ANSWER_MAX + 2], done_name[CTLREQ_NAME_MAX + 8];
    wchar_t done[MAX_PATH], req[MAX_PATH];
    int n = ctlreq_answer(failed, text, body, sizeof body);
    int w = snprintf(done_name, sizeof done_name, "%s.done", name);
    if (n < 0 || w < 0 || (size_t)w >= sizeof done_name ||
        ctl_path(ctl, done_name, done, MAX_PATH) != 0 || ctl_path(ctl, name, req, MAX_PATH) != 0)
        return;
    HANDLE h = CreateFileW(done, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
    if (h == INVALID_HANDLE_VALUE)
        return;
    DWORD k;
    WriteFile(h, body, (DWORD)n, &k, NULL);
    CloseHandle(h);
    DeleteFileW(req);
}

void queuectl_scan(queuectl_handler handler, void *arg)
{
    wchar_t ctl[MAX_PATH], pat[MAX_PATH];
    spool_ctl_dir(ctl, MAX_PATH);
    int w = _snwprintf(pat, MAX_PATH, L"%ls\\*.*", ctl);
    if (w < 0 || w >= MAX_PATH)
        return;
    WIN32_FIND_DATAW fd;
    HANDLE f = FindFirstFileW(pat, &fd);
    if (f == INVALID_HANDLE_VALUE)
        return;
    do {
        if ((fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) ||
            wcslen(fd.cFileName) >= CTLREQ_NAME_MAX)
            continue;   /* folders, and names too long to be ours */
        char name[CTLREQ_NAME_MAX + 8], id[CTLREQ_TARGET_MAX + 1], text[CTLREQ_ANSWER_MAX];
        wide_to_utf8(fd.cFileName, name, sizeof name);
        enum ctlreq_action a;
        int failed = 0;
        switch (ctlreq_parse(name, &a, id, sizeof id)) {
        case CTLREQ_REQUEST:
            if (handler(arg, a, id, &failed, text, sizeof text) == 0)
                answer(ctl, name, failed, text);
            break;
        case CTLREQ_BAD_ID:
            snprintf(text, sizeof text, "%.64s is not a %s", id,
                     a == CTLREQ_FLUSH ? "destination (all, or to. and a name)" : "queue ID");
            answer(ctl, name, 1, text);
            break;
        default:
            break;   /* answers, and files that are not ours */
        }
    } while (FindNextFileW(f, &fd));
    FindClose(f);
}
