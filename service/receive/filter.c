/* filter.c - run the content filter (see filter.h).
 *
 * The filter runs with the service's token but gets none of its handles
 * beyond its standard input (NUL) and output (a pipe): never a socket, a
 * queue file or another filter's pipe.
 */
#include "filter.h"

#include <stdio.h>
#include <string.h>

#include "spool.h"

#define FILTER_CMD_MAX 2048u
#define FILTER_ATTR_LIST_MAX 256u   /* bytes for a one-attribute list (48 on x64) */

/* The first line of what the program printed, printable ASCII only: it
 * becomes part of an SMTP reply. */
static void first_line(const char *out, size_t len, char *reason, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < len && out[i] != '\r' && out[i] != '\n' && o + 1 < n; i++) {
        unsigned char c = (unsigned char)out[i];
        reason[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    reason[o] = 0;
}

enum filter_verdict filter_run(const wchar_t *command, const wchar_t *content_path,
                               const wchar_t *env_path, char *reason, size_t reason_len,
                               DWORD *err)
{
    *err = ERROR_SUCCESS;
    reason[0] = 0;
    wchar_t cmd[FILTER_CMD_MAX];
    int w = _snwprintf(cmd, FILTER_CMD_MAX, L"%ls \"%ls\" \"%ls\"", command, content_path,
                       env_path);
    if (w < 0 || (size_t)w >= FILTER_CMD_MAX) {
        snprintf(reason, reason_len, "the filter's command line is too long");
        *err = ERROR_BUFFER_OVERFLOW;
        return FILTER_ERROR;
    }
    SECURITY_ATTRIBUTES sa = { sizeof sa, NULL, TRUE };
    HANDLE rd, wr;
    if (!CreatePipe(&rd, &wr, &sa, 0)) {
        *err = GetLastError();
        snprintf(reason, reason_len, "cannot create a pipe for the filter's output");
        return FILTER_ERROR;
    }
    SetHandleInformation(rd, HANDLE_FLAG_INHERIT, 0);
    HANDLE nul = CreateFileW(L"NUL", GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, &sa,
                             OPEN_EXISTING, 0, NULL);
    /* The filter inherits exactly its standard handles: not the listening
     * socket, the sessions' sockets or another filter's pipe, all of which
     * are inheritable and open in this process at the same time. */
    HANDLE inherit[2];
    DWORD n_inherit = 0;
    inherit[n_inherit++] = wr;
    if (nul != INVALID_HANDLE_VALUE)
        inherit[n_inherit++] = nul;
    union { BYTE b[FILTER_ATTR_LIST_MAX]; ULONG_PTR align; } attr_buf;
    LPPROC_THREAD_ATTRIBUTE_LIST attrs = (LPPROC_THREAD_ATTRIBUTE_LIST)attr_buf.b;
    SIZE_T attr_size = sizeof attr_buf.b;
    BOOL ok = InitializeProcThreadAttributeList(attrs, 1, 0, &attr_size);
    if (ok && !UpdateProcThreadAttribute(attrs, 0, PROC_THREAD_ATTRIBUTE_HANDLE_LIST, inherit,
                                         n_inherit * sizeof inherit[0], NULL, NULL)) {
        DeleteProcThreadAttributeList(attrs);
        ok = FALSE;
    }
    PROCESS_INFORMATION pi;
    if (ok) {
        STARTUPINFOEXW si = { .StartupInfo = { .cb = sizeof si, .dwFlags = STARTF_USESTDHANDLES,
                                               .hStdInput = nul, .hStdOutput = wr, .hStdError = wr },
                              .lpAttributeList = attrs };
        ok = CreateProcessW(NULL, cmd, NULL, NULL, TRUE,
                            CREATE_NO_WINDOW | EXTENDED_STARTUPINFO_PRESENT, NULL, NULL,
                            &si.StartupInfo, &pi);
        DWORD keep = GetLastError();
        DeleteProcThreadAttributeList(attrs);
        SetLastError(keep);
    }
    DWORD cerr = ok ? 0 : GetLastError();
    CloseHandle(wr);
    if (nul != INVALID_HANDLE_VALUE)
        CloseHandle(nul);
    if (!ok) {
        CloseHandle(rd);
        *err = cerr;
        snprintf(reason, reason_len, "the filter program could not be started");
        return FILTER_ERROR;
    }
    /* Read what it prints (the first kilobyte is kept) until it closes its
     * output; then wait for its exit within what is left of the timeout. */
    char out[1024];
    size_t got = 0;
    DWORD start = GetTickCount();
    for (;;) {
        DWORD avail = 0, k = 0;
        if (!PeekNamedPipe(rd, NULL, 0, NULL, &avail, NULL))
            break;   /* closed: the program ended or closed its output */
        if (avail) {
            char tmp[512];
            if (!ReadFile(rd, tmp, sizeof tmp, &k, NULL) || k == 0)
                break;
            size_t take = k < sizeof out - got ? k : sizeof out - got;
            memcpy(out + got, tmp, take);
            got += take;
            continue;
        }
        if (WaitForSingleObject(pi.hProcess, 50) == WAIT_OBJECT_0) {
            /* drain what is left */
            while (PeekNamedPipe(rd, NULL, 0, NULL, &avail, NULL) && avail &&
                   ReadFile(rd, out + got, (DWORD)(sizeof out - got), &k, NULL) && k) {
                got += k;
                if (got == sizeof out)
                    break;
            }
            break;
        }
        if (GetTickCount() - start > FILTER_TIMEOUT_MS)
            break;
    }
    CloseHandle(rd);
    DWORD left = FILTER_TIMEOUT_MS - (GetTickCount() - start);
    if ((LONG)left < 0)
        left = 0;
    DWORD code = 0;
    enum filter_verdict v = FILTER_ERROR;
    if (WaitForSingleObject(pi.hProcess, left) != WAIT_OBJECT_0) {
        TerminateProcess(pi.hProcess, 1);
        *err = WAIT_TIMEOUT;
        snprintf(reason, reason_len, "the filter did not finish within %u seconds",
                 FILTER_TIMEOUT_MS / 1000);
    } else if (!GetExitCodeProcess(pi.hProcess, &code)) {
        *err = GetLastError();
        snprintf(reason, reason_len, "the filter's exit status cannot be read");
    } else if (code == 0) {
        v = FILTER_ACCEPT;
    } else if (code == 1 || code == 2) {
        v = code == 1 ? FILTER_REJECT : FILTER_HOLD;
        first_line(out, got, reason, reason_len);
        if (!reason[0])
            snprintf(reason, reason_len, code == 1 ? "rejected by the content filter"
                                                   : "held by the content filter");
    } else {
        *err = code;
        snprintf(reason, reason_len, "the filter ended with exit status %lu (0 accept, 1 "
                 "reject, 2 hold)", (unsigned long)code);
    }
    CloseHandle(pi.hProcess);
    CloseHandle(pi.hThread);
    return v;
}

enum filter_verdict filter_message(const wchar_t *command, struct spool_msg *m,
                                   const struct envelope *env, char *reason, size_t reason_len,
                                   DWORD *err)
{
    *err = ERROR_SUCCESS;
    reason[0] = 0;
    if (!command || !command[0])
        return FILTER_ACCEPT;
    const wchar_t *env_path = spool_msg_env_path(m, env);
    if (!env_path) {
        *err = GetLastError();
        snprintf(reason, reason_len, "cannot write the envelope for the filter");
        return FILTER_ERROR;
    }
    return filter_run(command, spool_msg_path(m), env_path, reason, reason_len, err);
}
