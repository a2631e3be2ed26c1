/* control.c - start, stop, pause, continue and query the installed service.
 *
 * These are the administrator's commands. Each waits until the service has
 * reached the state asked for (or a pending state has stopped moving, per the
 * service's own wait hint), then prints the state it reached, so a script can
 * rely on `imsvc stop` having stopped the service when it returns 0.
 */
#include <stdio.h>
#include <windows.h>

#include "cmd_queue.h"
#include "config.h"
#include "service.h"

#define CONTROL_TIMEOUT_MS 30000
#define POLL_MS 100

void print_win32_error(const char *what, DWORD err)
{
    wchar_t msg[512];
    DWORD n = FormatMessageW(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL,
                             err, 0, msg, ARRAYSIZE(msg), NULL);
    while (n > 0 && (msg[n - 1] == L'\n' || msg[n - 1] == L'\r' || msg[n - 1] == L' '))
        msg[--n] = 0;
    fprintf(stderr, "imsvc: %s: %ls (error %lu)\n", what, n ? msg : L"unknown error", err);
}

static const char *state_text(DWORD s)
{
    static const char *names[] = { "UNKNOWN", "STOPPED", "START_PENDING", "STOP_PENDING",
                                   "RUNNING", "CONTINUE_PENDING", "PAUSE_PENDING", "PAUSED" };
    return s < ARRAYSIZE(names) ? names[s] : "UNKNOWN";
}

/* Open the service; on failure print why and return NULL. */
static SC_HANDLE open_service(DWORD access, SC_HANDLE *scm, int quiet)
{
    *scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT);
    if (!*scm) {
        if (!quiet)
            print_win32_error("cannot connect to the Service Control Manager", GetLastError());
        return NULL;
    }
    SC_HANDLE svc = OpenServiceW(*scm, IMSVC_SERVICE_NAME, access);
    if (!svc) {
        DWORD err = GetLastError();
        if (!quiet) {
            if (err == ERROR_SERVICE_DOES_NOT_EXIST)
                fprintf(stderr, "imsvc: the IMSvc service is not installed (run `imsvc install`)\n");
            else
                print_win32_error("cannot open the IMSvc service", err);
        }
        CloseServiceHandle(*scm);
        *scm = NULL;
    }
    return svc;
}

static int query(SC_HANDLE svc, SERVICE_STATUS_PROCESS *st)
{
    DWORD need;
    return QueryServiceStatusEx(svc, SC_STATUS_PROCESS_INFO, (BYTE *)st, sizeof *st, &need);
}

/* Wait while the service is in `pending`; fail if the checkpoint stops moving
 * for longer than the wait hint, or after CONTROL_TIMEOUT_MS in all. */
static DWORD wait_state(SC_HANDLE svc, DWORD pending, SERVICE_STATUS_PROCESS *st)
{
    DWORD start = GetTickCount(), last_move = start, last_cp = 0;
    for (;;) {
        if (!query(svc, st))
            return GetLastError();
        if (st->dwCurrentState != pending)
            return ERROR_SUCCESS;
        DWORD now = GetTickCount();
        if (st->dwCheckPoint != last_cp) {
            last_cp = st->dwCheckPoint;
            last_move = now;
        }
        DWORD hint = st->dwWaitHint ? st->dwWaitHint : 5000;
        if (now - last_move > hint + 2000 || now - start > CONTROL_TIMEOUT_MS)
            return ERROR_SERVICE_REQUEST_TIMEOUT;
        Sleep(POLL_MS);
    }
}

static int finish(SC_HANDLE scm, SC_HANDLE svc, int rc)
{
    CloseServiceHandle(svc);
    CloseServiceHandle(scm);
    return rc;
}

int control_start(void)
{
    SC_HANDLE scm, svc = open_service(SERVICE_START | SERVICE_QUERY_STATUS, &scm, 0);
    if (!svc)
        return 1;
    if (!StartServiceW(svc, 0, NULL)) {
        DWORD err = GetLastError();
        if (err == ERROR_SERVICE_ALREADY_RUNNING) {
            fprintf(stderr, "imsvc: the IMSvc service is already running\n");
            return finish(scm, svc, 1);
        }
        print_win32_error("cannot start the IMSvc service", err);
        return finish(scm, svc, 1);
    }
    SERVICE_STATUS_PROCESS st;
    DWORD err = wait_state(svc, SERVICE_START_PENDING, &st);
    if (err == ERROR_SUCCESS && st.dwCurrentState == SERVICE_RUNNING) {
        printf("IMSvc: RUNNING (pid %lu)\n", st.dwProcessId);
        return finish(scm, svc, 0);
    }
    if (err != ERROR_SUCCESS)
        print_win32_error("the IMSvc service did not finish starting", err);
    else
        fprintf(stderr, "imsvc: the IMSvc service stopped while starting (exit code %lu); "
                        "see `imsvc events --last 5`\n", st.dwWin32ExitCode);
    return finish(scm, svc, 1);
}

/* Send a control and wait for the service to settle in `want`. */
static int control_and_wait(DWORD control, DWORD access, DWORD pending, DWORD want,
                            const char *verb)
{
    SC_HANDLE scm, svc = open_service(access | SERVICE_QUERY_STATUS, &scm, 0);
    if (!svc)
        return 1;
    SERVICE_STATUS ss;
    if (!ControlService(svc, control, &ss)) {
        DWORD err = GetLastError();
        if (err == ERROR_SERVICE_NOT_ACTIVE) {
            fprintf(stderr, "imsvc: cannot %s: the IMSvc service is not running\n", verb);
        } else {
            char what[64];
            snprintf(what, sizeof what, "cannot %s the IMSvc service", verb);
            print_win32_error(what, err);
        }
        return finish(scm, svc, 1);
    }
    SERVICE_STATUS_PROCESS st;
    DWORD err = wait_state(svc, pending, &st);
    if (err != ERROR_SUCCESS) {
        print_win32_error("the IMSvc service did not answer in time", err);
        return finish(scm, svc, 1);
    }
    printf("IMSvc: %s\n", state_text(st.dwCurrentState));
    return finish(scm, svc, st.dwCurrentState == want ? 0 : 1);
}

int control_stop(void)
{
    return control_and_wait(SERVICE_CONTROL_STOP, SERVICE_STOP, SERVICE_STOP_PENDING,
                            SERVICE_STOPPED, "stop");
}

int control_pause(void)
{
    return control_and_wait(SERVICE_CONTROL_PAUSE, SERVICE_PAUSE_CONTINUE,
                            SERVICE_PAUSE_PENDING, SERVICE_PAUSED, "pause");
}

int control_continue(void)
{
    return control_and_wait(SERVICE_CONTROL_CONTINUE, SERVICE_PAUSE_CONTINUE,
                            SERVICE_CONTINUE_PENDING, SERVICE_RUNNING, "continue");
}

int control_paramchange(void)
{
    SC_HANDLE scm, svc = open_service(SERVICE_PAUSE_CONTINUE | SERVICE_QUERY_STATUS, &scm, 1);
    if (!svc)
        return 0;
    SERVICE_STATUS ss;
    int told = ControlService(svc, SERVICE_CONTROL_PARAMCHANGE, &ss) != 0;
    return finish(scm, svc, told);
}

int control_running(void)
{
    SC_HANDLE scm, svc = open_service(SERVICE_QUERY_STATUS, &scm, 1);
    if (!svc)
        return 0;
    SERVICE_STATUS_PROCESS st;
    int running = query(svc, &st) && st.dwCurrentState != SERVICE_STOPPED &&
                  st.dwCurrentState != SERVICE_STOP_PENDING;
    CloseServiceHandle(svc);
    CloseServiceHandle(scm);
    return running;
}

int control_status(void)
{
    SC_HANDLE scm, svc = open_service(SERVICE_QUERY_STATUS | SERVICE_QUERY_CONFIG, &scm, 0);
    if (!svc)
        return 1;
    SERVICE_STATUS_PROCESS st;
    if (!query(svc, &st)) {
        print_win32_error("cannot query the IMSvc service", GetLastError());
        return finish(scm, svc, 1);
    }
    union { QUERY_SERVICE_CONFIGW qc; BYTE raw[8192]; } cfgbuf;
    DWORD need;
    const char *start = "unknown";
    int have_cfg = QueryServiceConfigW(svc, &cfgbuf.qc, sizeof cfgbuf, &need);
    if (have_cfg) {
        switch (cfgbuf.qc.dwStartType) {
        case SERVICE_AUTO_START: start = "auto"; break;
        case SERVICE_DEMAND_START: start = "demand"; break;
        case SERVICE_DISABLED: start = "disabled"; break;
        default: start = "other"; break;
        }
    }
    printf("Service:      %ls (%ls)\n", IMSVC_SERVICE_NAME, IMSVC_DISPLAY_NAME);
    printf("State:        %s\n", state_text(st.dwCurrentState));
    if (st.dwCurrentState != SERVICE_STOPPED)
        printf("Process ID:   %lu\n", st.dwProcessId);
    else
        printf("Exit code:    %lu\n", st.dwWin32ExitCode);
    printf("Start type:   %s\n", start);
    if (have_cfg && cfgbuf.qc.lpBinaryPathName)
        printf("Command line: %ls\n", cfgbuf.qc.lpBinaryPathName);
    if (have_cfg && cfgbuf.qc.lpServiceStartName)
        printf("Account:      %ls\n", cfgbuf.qc.lpServiceStartName);
    union { SERVICE_FAILURE_ACTIONSW fa; BYTE raw[1024]; } fabuf;
    if (QueryServiceConfig2W(svc, SERVICE_CONFIG_FAILURE_ACTIONS, fabuf.raw, sizeof fabuf, &need)) {
        printf("On failure:   ");
        if (fabuf.fa.cActions == 0 || !fabuf.fa.lpsaActions)
            printf("take no action");
        for (DWORD i = 0; i < fabuf.fa.cActions && fabuf.fa.lpsaActions; i++) {
            SC_ACTION *a = &fabuf.fa.lpsaActions[i];
            printf("%s%s after %lu s", i ? ", then " : "",
                   a->Type == SC_ACTION_RESTART ? "restart" :
                   a->Type == SC_ACTION_NONE ? "nothing" : "other action", a->Delay / 1000);
        }
        printf(" (count reset after %lu s)\n", fabuf.fa.dwResetPeriod);
    } else {
        printf("On failure:   unknown (the SCM does not report recovery actions: error %lu)\n",
               GetLastError());
    }
    struct imsvc_config cfg;
    config_load(&cfg, NULL);
    printf("Listen:       %ls port %lu\n", cfg.listen_address, cfg.listen_port);
    printf("Data:         %ls\n", cfg.data_dir);
    queue_print_status(&cfg, st.dwCurrentState == SERVICE_RUNNING ||
                             st.dwCurrentState == SERVICE_PAUSED);
    return finish(scm, svc, 0);
}
