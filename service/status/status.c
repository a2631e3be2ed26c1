/* status.c - the running service's figures (see status.h). */
#include <winsock2.h>   /* before windows.h: delivery.h needs it */
#include <windows.h>

#include "status.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "delivery.h"
#include "queue.h"
#include "smtp_server.h"
#include "spool.h"

#define STATUS_PERIOD_MS 2000u
#define STATUS_TEXT_MAX  1024u

static struct {
    PTP_TIMER timer;
    wchar_t path[MAX_PATH];
} st;

void status_path(const struct imsvc_config *cfg, wchar_t *out, size_t cap)
{
    wchar_t qdir[MAX_PATH];
    config_queue_dir(cfg, qdir, MAX_PATH);
    spool_status_path(qdir, out, cap);   /* the spool owns the queue folder's layout */
}

/* Collect every module's counts and replace the file. */
static void status_write(void)
{
    struct queue_counts qc;
    queue_counts(&qc);
    unsigned long long commits, flushes;
    spool_counters(&commits, &flushes);
    char text[STATUS_TEXT_MAX];
    int n = snprintf(text, sizeof text,
                     "updated %lld\r\nmessages %zu\r\nin-delivery %u\r\nwaiting %u\r\n"
                     "oldest-arrived %lld\r\ninbound-sessions %ld\r\noutbound-connections %ld\r\n"
                     "paused %d\r\ncommits %llu\r\nflushes %llu\r\n", (long long)clock_unix(),
                     qc.messages, qc.in_delivery, qc.waiting, qc.oldest_arrived,
                     (long)smtp_server_active(), delivery_connections(), qc.paused, commits,
                     flushes);
    if (n <= 0 || (size_t)n >= sizeof text)
        return;
    int more = smtp_server_status_text(text + n, sizeof text - (size_t)n);
    if (more < 0)
        return;
    n += more;
    wchar_t tmp[MAX_PATH];
    _snwprintf(tmp, MAX_PATH, L"%ls.new", st.path);
    tmp[MAX_PATH - 1] = 0;
    HANDLE h = CreateFileW(tmp, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
    if (h == INVALID_HANDLE_VALUE)
        return;
    DWORD k;
    BOOL ok = WriteFile(h, text, (DWORD)n, &k, NULL);
    CloseHandle(h);
    if (ok)
        MoveFileExW(tmp, st.path, MOVEFILE_REPLACE_EXISTING);
}

static void CALLBACK status_tick(PTP_CALLBACK_INSTANCE inst, void *arg, PTP_TIMER t)
{
    (void)inst, (void)arg, (void)t;
    status_write();
}

DWORD status_start(const struct imsvc_config *cfg)
{
    status_path(cfg, st.path, MAX_PATH);
    status_write();   /* at once: `imsvc status` right after start has figures */
    st.timer = CreateThreadpoolTimer(status_tick, NULL, NULL);
    if (!st.timer)
        return GetLastError();
    ULARGE_INTEGER due;
    due.QuadPart = (ULONGLONG)(-(LONGLONG)STATUS_PERIOD_MS * 10000);   /* relative, 100 ns units */
    FILETIME ft = { due.LowPart, due.HighPart };
    SetThreadpoolTimer(st.timer, &ft, STATUS_PERIOD_MS, 100);
    return ERROR_SUCCESS;
}

void status_stop(void)
{
    if (!st.timer)
        return;
    SetThreadpoolTimer(st.timer, NULL, 0, 0);
    WaitForThreadpoolTimerCallbacks(st.timer, TRUE);
    CloseThreadpoolTimer(st.timer);
    st.timer = NULL;
}

void status_print(const struct imsvc_config *cfg)
{
    wchar_t path[MAX_PATH];
    status_path(cfg, path, MAX_PATH);
    unsigned char *text;
    size_t len;
    if (spool_read_file(path, 4096, &text, &len) != ERROR_SUCCESS) {
        printf("Sessions:     unknown (no %ls yet)\n", path);
        return;
    }
    long long updated = 0;
    long in = -1, out = -1, busy = -1;
    long threads = -1, conns = -1, r_max = 0, r_addr = 0, r_paused = 0;
    long c_idle = 0, c_send = 0, c_rate = 0, c_err = 0;
    unsigned long long commits = 0, flushes = 0;
    for (char *line = strtok((char *)text, "\r\n"); line; line = strtok(NULL, "\r\n")) {
        sscanf(line, "io-threads %ld", &threads);
        sscanf(line, "io-connections %ld", &conns);
        sscanf(line, "refused-max-sessions %ld", &r_max);
        sscanf(line, "refused-per-address %ld", &r_addr);
        sscanf(line, "refused-paused %ld", &r_paused);
        sscanf(line, "closed-inactivity %ld", &c_idle);
        sscanf(line, "closed-send-timeout %ld", &c_send);
        sscanf(line, "closed-data-rate %ld", &c_rate);
        sscanf(line, "closed-protocol-errors %ld", &c_err);
        sscanf(line, "updated %lld", &updated);
        sscanf(line, "inbound-sessions %ld", &in);
        sscanf(line, "outbound-connections %ld", &out);
        sscanf(line, "in-delivery %ld", &busy);
        sscanf(line, "commits %llu", &commits);
        sscanf(line, "flushes %llu", &flushes);
    }
    free(text);
    printf("Sessions:     %ld inbound, %ld outbound connections, %ld messages in delivery "
           "(as of %llds ago)\n", in, out, busy, clock_unix() - updated);
    printf("I/O:          %ld threads, %ld connections\n", threads, conns);
    printf("Refused:      max-sessions %ld, per-address %ld, paused %ld\n", r_max, r_addr, r_paused);
    printf("Closed:       inactivity %ld, send-timeout %ld, data-rate %ld, protocol-errors %ld\n",
           c_idle, c_send, c_rate, c_err);
    printf("Commits:      %llu messages committed in %llu log flushes since the service "
           "started (group commit)\n", commits, flushes);
}
