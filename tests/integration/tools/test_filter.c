/* test_filter.c - a content filter for test_ops.sh and test_privilege.sh,
 * built for Windows by the tests themselves (-lws2_32). It reads the message
 * (argv[1]) and its envelope (argv[2]) and answers by the message's
 * "X-Test-Filter:" header: reject (exit 1 with a reason), hold (exit 2),
 * crash (exit 7), handles (exit 1, the reason counting the handles it
 * inherited), sleep N (wait N seconds, then accept: a slow filter),
 * anything else or none: accept. It also checks that the
 * envelope file it was given is an imsvc envelope, and fails (exit 9) if
 * not, so the test sees a wrong path at once.
 *
 * "handles" looks at every handle value up to HANDLE_SCAN_MAX: sockets and
 * pipes other than its standard handles (counted together: an inherited
 * socket is FILE_TYPE_PIPE, and under Wine getsockopt does not know it in
 * the child), and files under an IMSvc folder are what a filter must never
 * get from the service.
 * As a control it first starts itself (--count) with an inheritable socket
 * of its own and bInheritHandles TRUE: that child must see the socket, which
 * shows the scan finds an inherited handle when there is one. */
#include <winsock2.h>
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#define HANDLE_SCAN_MAX 0x10000u

struct counts { unsigned streams, files; };

static void count_handles(struct counts *c)
{
    WSADATA wsa;
    WSAStartup(MAKEWORD(2, 2), &wsa);
    HANDLE std[3] = { GetStdHandle(STD_INPUT_HANDLE), GetStdHandle(STD_OUTPUT_HANDLE),
                      GetStdHandle(STD_ERROR_HANDLE) };
    memset(c, 0, sizeof *c);
    for (ULONG_PTR v = 4; v < HANDLE_SCAN_MAX; v += 4) {
        HANDLE h = (HANDLE)v;
        DWORD flags;
        if (!GetHandleInformation(h, &flags) || h == std[0] || h == std[1] || h == std[2])
            continue;
        int type, len = sizeof type;
        DWORD ft = GetFileType(h);
        if (ft == FILE_TYPE_PIPE ||
            getsockopt((SOCKET)v, SOL_SOCKET, SO_TYPE, (char *)&type, &len) == 0) {
            c->streams++;
        } else if (ft == FILE_TYPE_DISK) {
            wchar_t path[MAX_PATH];
            DWORD n = GetFinalPathNameByHandleW(h, path, MAX_PATH, 0);
            if (n > 0 && n < MAX_PATH && wcsstr(path, L"\\IMSvc\\"))
                c->files++;
        }
    }
}

/* Start ourselves with an inheritable socket open and everything inherited;
 * the child's count of sockets and pipes, or -1. */
static int control_sockets(void)
{
    char self[MAX_PATH];
    DWORD sn = GetModuleFileNameA(NULL, self, MAX_PATH);
    if (sn == 0 || sn >= MAX_PATH)
        return -1;
    SOCKET s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);   /* inheritable by default */
    if (s == INVALID_SOCKET)
        return -1;
    SECURITY_ATTRIBUTES sa = { sizeof sa, NULL, TRUE };
    HANDLE rd, wr;
    if (!CreatePipe(&rd, &wr, &sa, 0))
        return -1;
    SetHandleInformation(rd, HANDLE_FLAG_INHERIT, 0);
    char cmd[MAX_PATH + 32];
    snprintf(cmd, sizeof cmd, "\"%s\" --count", self);
    STARTUPINFOA si = { .cb = sizeof si, .dwFlags = STARTF_USESTDHANDLES,
                        .hStdInput = wr, .hStdOutput = wr, .hStdError = wr };
    PROCESS_INFORMATION pi;
    BOOL ok = CreateProcessA(NULL, cmd, NULL, NULL, TRUE, CREATE_NO_WINDOW, NULL, NULL, &si, &pi);
    CloseHandle(wr);
    char out[128] = "";
    DWORD got = 0, k;
    while (ok && got < sizeof out - 1 && ReadFile(rd, out + got, sizeof out - 1 - got, &k, NULL) && k)
        got += k;
    out[got] = 0;
    CloseHandle(rd);
    closesocket(s);
    if (!ok)
        return -1;
    WaitForSingleObject(pi.hProcess, 10000);
    CloseHandle(pi.hProcess);
    CloseHandle(pi.hThread);
    unsigned n;
    return sscanf(out, "%u", &n) == 1 ? (int)n : -1;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--count") == 0) {
        struct counts c;
        count_handles(&c);
        printf("%u\n", c.streams);
        return 0;
    }
    if (argc != 3)
        return 8;
    FILE *e = fopen(argv[2], "rb");
    char line[1024];
    if (!e || !fgets(line, sizeof line, e) || strncmp(line, "imsvc-envelope 1", 16) != 0)
        return 9;
    fclose(e);
    FILE *f = fopen(argv[1], "rb");
    if (!f)
        return 9;
    int rc = 0, handles = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '\r' || line[0] == '\n')
            break;   /* end of the header */
        if (strncmp(line, "X-Test-Filter: ", 15) != 0)
            continue;
        if (strncmp(line + 15, "reject", 6) == 0) {
            printf("message refused by the test filter policy\n");
            rc = 1;
        } else if (strncmp(line + 15, "hold", 4) == 0) {
            printf("held for review\n");
            rc = 2;
        } else if (strncmp(line + 15, "crash", 5) == 0) {
            rc = 7;
        } else if (strncmp(line + 15, "handles", 7) == 0) {
            handles = 1;
        } else if (strncmp(line + 15, "sleep ", 6) == 0) {
            Sleep((DWORD)atoi(line + 21) * 1000u);
        }
    }
    fclose(f);
    if (handles) {
        /* Counted with our own files closed, and before the control's socket exists. */
        struct counts c;
        count_handles(&c);
        printf("inherited handles: %u sockets or pipes, %u IMSvc files; control child saw "
               "%d\n", c.streams, c.files, control_sockets());
        rc = 1;
    }
    return rc;
}
