/* service.c - ServiceMain, the control handler, and console mode.
 *
 * The control handler runs on the SCM dispatcher thread and must return at
 * once: it only records the control and wakes the service thread, which does
 * the work and reports the resulting state. Start-up reports START_PENDING
 * with a checkpoint per step and a wait hint, so the SCM (and an
 * administrator watching `sc query`) can tell slow from stuck.
 */
#include <winsock2.h>
#include <stdio.h>
#include <windows.h>

#include "acl.h"
#include "config.h"
#include "eventlog.h"
#include "location.h"
#include "logs.h"
#include "mapfile.h"
#include "service.h"
#include "queue.h"
#include "ioengine.h"
#include "pickup.h"
#include "receive.h"
#include "smtp_server.h"
#include "spool.h"
#include "status.h"
#include "tlscache.h"
#include "version.h"

#define WAIT_HINT_START_MS 10000
#define WAIT_HINT_STOP_MS   5000
#define WAIT_HINT_PAUSE_MS  3000

/* Controls waiting for the service thread. */
#define PEND_STOP     0x1
#define PEND_PAUSE    0x2
#define PEND_CONTINUE 0x4
#define PEND_RELOAD   0x8

static SERVICE_STATUS_HANDLE status_handle;   /* NULL in console mode */
static SERVICE_STATUS status;
static HANDLE wake_event;
static volatile LONG pending;
static struct imsvc_config config;
static SRWLOCK status_lock = SRWLOCK_INIT;  /* report() runs on both threads */

static const char *state_name(DWORD s)
{
    switch (s) {
    case SERVICE_STOPPED: return "STOPPED";
    case SERVICE_START_PENDING: return "START_PENDING";
    case SERVICE_STOP_PENDING: return "STOP_PENDING";
    case SERVICE_RUNNING: return "RUNNING";
    case SERVICE_CONTINUE_PENDING: return "CONTINUE_PENDING";
    case SERVICE_PAUSE_PENDING: return "PAUSE_PENDING";
    case SERVICE_PAUSED: return "PAUSED";
    default: return "UNKNOWN";
    }
}

/* Report a state. Pending states carry a rising checkpoint and a wait hint;
 * settled states carry neither, as the SCM expects. */
static void report(DWORD state, DWORD exit_code, DWORD wait_hint)
{
    static DWORD checkpoint = 1;
    AcquireSRWLockExclusive(&status_lock);
    status.dwServiceType = SERVICE_WIN32_OWN_PROCESS;
    status.dwCurrentState = state;
    status.dwWin32ExitCode = exit_code;
    status.dwServiceSpecificExitCode = 0;
    status.dwWaitHint = wait_hint;
    if (state == SERVICE_RUNNING || state == SERVICE_PAUSED || state == SERVICE_STOPPED) {
        status.dwCheckPoint = 0;
        checkpoint = 1;
    } else {
        status.dwCheckPoint = checkpoint++;
    }
    status.dwControlsAccepted = 0;
    if (state == SERVICE_RUNNING || state == SERVICE_PAUSED)
        status.dwControlsAccepted = SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN |
                                    SERVICE_ACCEPT_PAUSE_CONTINUE | SERVICE_ACCEPT_PARAMCHANGE;
    DWORD err = ERROR_SUCCESS;
    if (status_handle) {
        if (!SetServiceStatus(status_handle, &status))
            err = GetLastError();
    } else if (state != SERVICE_START_PENDING && state != SERVICE_STOP_PENDING) {
        printf("imsvc: %s\n", state_name(state));
        fflush(stdout);
    }
    ReleaseSRWLockExclusive(&status_lock);
    if (err != ERROR_SUCCESS)
        evlog_report(EVENTLOG_ERROR_TYPE, CAT_INTERNAL_PROCESSING, MSG_UNEXPECTED_ERROR,
                     LOC_SVC_SET_STATUS, err, 1,
                     (const wchar_t *[]){ L"SetServiceStatus failed; the SCM may show a stale state" });
}

static void post(LONG what)
{
    InterlockedOr(&pending, what);
    SetEvent(wake_event);
}

static DWORD WINAPI control_handler(DWORD control, DWORD type, void *data, void *ctx)
{
    (void)type, (void)data, (void)ctx;
    switch (control) {
    case SERVICE_CONTROL_STOP:
    case SERVICE_CONTROL_SHUTDOWN:
        report(SERVICE_STOP_PENDING, NO_ERROR, WAIT_HINT_STOP_MS);
        post(PEND_STOP);
        return NO_ERROR;
    case SERVICE_CONTROL_PAUSE:
        report(SERVICE_PAUSE_PENDING, NO_ERROR, WAIT_HINT_PAUSE_MS);
        post(PEND_PAUSE);
        return NO_ERROR;
    case SERVICE_CONTROL_CONTINUE:
        report(SERVICE_CONTINUE_PENDING, NO_ERROR, WAIT_HINT_PAUSE_MS);
        post(PEND_CONTINUE);
        return NO_ERROR;
    case SERVICE_CONTROL_PARAMCHANGE:
        post(PEND_RELOAD);
        return NO_ERROR;
    case SERVICE_CONTROL_INTERROGATE:
        return NO_ERROR;
    default:
        return ERROR_CALL_NOT_IMPLEMENTED;
    }
}

static BOOL WINAPI console_handler(DWORD type)
{
    if (type == CTRL_C_EVENT || type == CTRL_BREAK_EVENT || type == CTRL_CLOSE_EVENT ||
        type == CTRL_SHUTDOWN_EVENT) {
        post(PEND_STOP);
        return TRUE;
    }
    return FALSE;
}

static const wchar_t *mode_name(void)
{
    return status_handle ? L"service" : L"console";
}

/* What securing the data folders found (acl_secure_data), as events. */
static void report_rights(const struct acl_result *r)
{
    if (r->error != ERROR_SUCCESS)
        evlog_report(EVENTLOG_ERROR_TYPE, CAT_SECURITY, MSG_FOLDER_RIGHTS_FAILED,
                     r->error_location, r->error, 1, (const wchar_t *[]){ r->error_what });
    if (r->not_kept) {
        wchar_t count[16];
        _snwprintf(count, ARRAYSIZE(count), L"%u", r->not_kept);
        count[ARRAYSIZE(count) - 1] = 0;
        evlog_report(EVENTLOG_ERROR_TYPE, CAT_SECURITY, MSG_FOLDER_RIGHTS_NOT_KEPT,
                     LOC_CFG_FOLDER_KEPT, 0, 2, (const wchar_t *[]){ count, r->not_kept_first });
    }
}

/* Re-read the Parameters key and log what changed (or that a value is bad:
 * the old configuration stays in force for that value). */
static void reload(void)
{
    struct imsvc_config fresh;
    const wchar_t *bad = NULL;
    DWORD rc = config_load(&fresh, &bad);
    if (rc != ERROR_SUCCESS && bad) {
        evlog_report(EVENTLOG_WARNING_TYPE, CAT_CONFIGURATION, MSG_CONFIG_INVALID,
                     LOC_CFG_CHANGE, rc, 2,
                     (const wchar_t *[]){ bad, fresh.bad_why[0] ? fresh.bad_why :
                                          L"the value is missing its type or is out of range; the default is used" });
    }
    wchar_t changes[2048];
    int n = config_diff(&config, &fresh, changes, ARRAYSIZE(changes));
    if (n == 0)
        wcscpy(changes, L"no value changed");
    evlog_report(EVENTLOG_INFORMATION_TYPE, CAT_CONFIGURATION, MSG_CONFIG_CHANGED,
                 LOC_CFG_CHANGE, 0, 1, (const wchar_t *[]){ changes });
    /* The map file may have changed while AddressMapFile did not: read it
     * every time. A map that does not load leaves the one in force. */
    mapfile_configure(&fresh, 0);
    if (n == 0)
        return;
    if (wcscmp(config.pickup_writers, fresh.pickup_writers) != 0 ||
        wcscmp(config.drop_readers, fresh.drop_readers) != 0) {
        struct acl_result ar;
        acl_secure_data(&fresh, &ar);
        report_rights(&ar);
    }
    receive_configure(&fresh);
    logs_configure(&fresh);
    queue_reconfigure(&fresh);
    pickup_reconfigure(&fresh);
    /* The listener takes its settings when it starts: restart it with the
     * new ones. If they do not work, the old ones are put back. */
    smtp_server_stop(WAIT_HINT_STOP_MS);
    rc = smtp_server_start(&fresh);
    if (rc == ERROR_SUCCESS) {
        config = fresh;
        return;
    }
    wchar_t why[160];
    _snwprintf(why, ARRAYSIZE(why), L"cannot listen for SMTP on %ls port %lu; the previous "
               L"settings stay in force", fresh.listen_address, fresh.listen_port);
    why[ARRAYSIZE(why) - 1] = 0;
    evlog_report(EVENTLOG_ERROR_TYPE, CAT_CONFIGURATION, MSG_UNEXPECTED_ERROR,
                 LOC_SMTPD_LISTEN, rc, 1, (const wchar_t *[]){ why });
    if (smtp_server_start(&config) != ERROR_SUCCESS)
        evlog_report(EVENTLOG_ERROR_TYPE, CAT_CONFIGURATION, MSG_UNEXPECTED_ERROR,
                     LOC_SMTPD_LISTEN, rc, 1,
                     (const wchar_t *[]){ L"cannot listen for SMTP with the previous settings either" });
}

/* Start-up steps; each is a checkpoint. Returns a Win32 error. */
static DWORD start_up(void)
{
    const wchar_t *bad = NULL;
    DWORD rc = config_load(&config, &bad);
    report(SERVICE_START_PENDING, NO_ERROR, WAIT_HINT_START_MS);
    /* Every folder gets its rights before anything is written in it (a
     * folder made here has them from the start); a failure is reported once
     * the journal is open, and only a data directory that cannot be made
     * stops the start. */
    struct acl_result rights;
    acl_secure_data(&config, &rights);
    rc = config_make_data_dir(&config);
    if (rc != ERROR_SUCCESS) {
        wchar_t why[MAX_PATH + 64];
        _snwprintf(why, ARRAYSIZE(why), L"cannot create the data directory %ls", config.data_dir);
        why[ARRAYSIZE(why) - 1] = 0;
        evlog_report(EVENTLOG_ERROR_TYPE, CAT_INIT_TERM, MSG_SERVICE_START_FAILED,
                     LOC_CFG_DATADIR, rc, 1, (const wchar_t *[]){ why });
        return rc;
    }
    report(SERVICE_START_PENDING, NO_ERROR, WAIT_HINT_START_MS);
    wchar_t journal[MAX_PATH];
    config_journal_path(&config, journal, ARRAYSIZE(journal));
    DWORD jrc = evlog_open(journal, config.journal_max_kb * 1024u);
    if (jrc != ERROR_SUCCESS) {
        wchar_t what[MAX_PATH + 64];
        _snwprintf(what, ARRAYSIZE(what), L"cannot open the event journal %ls; events go to "
                   L"the Windows event log only", journal);
        what[ARRAYSIZE(what) - 1] = 0;
        evlog_report(EVENTLOG_WARNING_TYPE, CAT_INIT_TERM, MSG_UNEXPECTED_ERROR,
                     LOC_EVL_JOURNAL_OPEN, jrc, 1, (const wchar_t *[]){ what });
    }
    if (bad)
        evlog_report(EVENTLOG_WARNING_TYPE, CAT_CONFIGURATION, MSG_CONFIG_INVALID,
                     LOC_CFG_READ, ERROR_INVALID_DATA, 2,
                     (const wchar_t *[]){ bad, config.bad_why[0] ? config.bad_why :
                                          L"the value has the wrong type or is out of range; the default is used" });
    report_rights(&rights);
    rc = logs_start(&config);   /* the protocol and tracking logs; the service runs without */
    if (rc != ERROR_SUCCESS)
        evlog_report(EVENTLOG_WARNING_TYPE, CAT_INIT_TERM, MSG_LOG_WRITE_FAILED, LOC_LOGS_OPEN, rc,
                     2, (const wchar_t *[]){ L"protocol and tracking logs", L"(the log thread did not start)" });
    report(SERVICE_START_PENDING, NO_ERROR, WAIT_HINT_START_MS);
    /* The I/O engine carries every socket, inbound and outbound. */
    rc = io_engine_start(config.io_threads);
    if (rc != ERROR_SUCCESS) {
        evlog_report(EVENTLOG_ERROR_TYPE, CAT_INIT_TERM, MSG_SERVICE_START_FAILED,
                     LOC_SVC_START, rc, 1,
                     (const wchar_t *[]){ L"cannot start the I/O engine (completion port and its threads)" });
        return rc;
    }
    /* The spool first: it recovers what a crash left before anything new
     * is accepted; then the queue manager, which delivers from it; then the
     * receivers, which commit into it. Calls go that one way down. */
    receive_configure(&config);
    wchar_t qdir[MAX_PATH];
    config_queue_dir(&config, qdir, MAX_PATH);
    unsigned recovered = 0;
    rc = spool_open(qdir, &recovered);
    if (rc == ERROR_SUCCESS) {
        rc = queue_start(&config, recovered);
        if (rc != ERROR_SUCCESS)
            spool_close();
    }
    if (rc != ERROR_SUCCESS) {
        io_engine_stop();
        wchar_t why[MAX_PATH + 64];
        _snwprintf(why, ARRAYSIZE(why), L"cannot open the queue in %ls\\Queue", config.data_dir);
        why[ARRAYSIZE(why) - 1] = 0;
        evlog_report(EVENTLOG_ERROR_TYPE, CAT_INIT_TERM, MSG_SERVICE_START_FAILED,
                     LOC_SPOOL_OPEN, rc, 1, (const wchar_t *[]){ why });
        return rc;
    }
    report(SERVICE_START_PENDING, NO_ERROR, WAIT_HINT_START_MS);
    /* The address map before the listener, which hands it to sessions. */
    mapfile_configure(&config, 1);
    /* The receivers: the pickup folder on its own thread, then the listener. */
    rc = pickup_start(&config);
    if (rc != ERROR_SUCCESS) {
        queue_stop(WAIT_HINT_STOP_MS);
        spool_close();
        io_engine_stop();
        evlog_report(EVENTLOG_ERROR_TYPE, CAT_INIT_TERM, MSG_SERVICE_START_FAILED,
                     LOC_QUEUE_PICKUP, rc, 1,
                     (const wchar_t *[]){ L"cannot start the pickup folder's thread" });
        return rc;
    }
    rc = smtp_server_start(&config);
    if (rc != ERROR_SUCCESS) {
        pickup_stop(WAIT_HINT_STOP_MS);
        queue_stop(WAIT_HINT_STOP_MS);
        spool_close();
        io_engine_stop();
        wchar_t why[128];
        _snwprintf(why, ARRAYSIZE(why), L"cannot listen for SMTP on %ls port %lu",
                   config.listen_address, config.listen_port);
        why[ARRAYSIZE(why) - 1] = 0;
        evlog_report(EVENTLOG_ERROR_TYPE, CAT_INIT_TERM, MSG_SERVICE_START_FAILED,
                     LOC_SMTPD_LISTEN, rc, 1, (const wchar_t *[]){ why });
        return rc;
    }
    /* the figures for `imsvc status`: without them the service still runs */
    rc = status_start(&config);
    if (rc != ERROR_SUCCESS)
        evlog_report(EVENTLOG_WARNING_TYPE, CAT_INIT_TERM, MSG_UNEXPECTED_ERROR, LOC_SVC_START, rc,
                     1, (const wchar_t *[]){ L"cannot start the status timer; imsvc status "
                                              L"shows no session figures" });
    return ERROR_SUCCESS;
}

static int service_loop(void)
{
    wake_event = CreateEventW(NULL, FALSE, FALSE, NULL);
    if (!wake_event) {
        report(SERVICE_STOPPED, GetLastError(), 0);
        return 1;
    }
    report(SERVICE_START_PENDING, NO_ERROR, WAIT_HINT_START_MS);
    DWORD rc = start_up();
    if (rc != ERROR_SUCCESS) {
        logs_stop();
        report(SERVICE_STOPPED, rc, 0);
        evlog_close();
        return 1;
    }
    evlog_report(EVENTLOG_INFORMATION_TYPE, CAT_INIT_TERM, MSG_SERVICE_STARTED,
                 LOC_SVC_START, 0, 2, (const wchar_t *[]){ IMSVC_VERSION_W, mode_name() });
    report(SERVICE_RUNNING, NO_ERROR, 0);

    BOOL paused = FALSE;
    for (;;) {
        WaitForSingleObject(wake_event, INFINITE);
        LONG what = InterlockedExchange(&pending, 0);
        if (what & PEND_STOP)
            break;
        if (what & PEND_RELOAD)
            reload();
        /* The handler has already reported a pending state; `paused` is the
         * service thread's own record, so a repeated control logs nothing. */
        if (what & PEND_PAUSE) {
            if (!paused)
                evlog_report(EVENTLOG_INFORMATION_TYPE, CAT_INIT_TERM, MSG_SERVICE_PAUSED,
                             LOC_SVC_PAUSE, 0, 0, NULL);
            paused = TRUE;
            smtp_server_pause(1);
            pickup_pause(1);
            queue_pause(1);
            report(SERVICE_PAUSED, NO_ERROR, 0);
        }
        if (what & PEND_CONTINUE) {
            if (paused)
                evlog_report(EVENTLOG_INFORMATION_TYPE, CAT_INIT_TERM, MSG_SERVICE_CONTINUED,
                             LOC_SVC_CONTINUE, 0, 0, NULL);
            paused = FALSE;
            smtp_server_pause(0);
            pickup_pause(0);
            queue_pause(0);
            report(SERVICE_RUNNING, NO_ERROR, 0);
        }
    }

    report(SERVICE_STOP_PENDING, NO_ERROR, WAIT_HINT_STOP_MS);
    status_stop();
    smtp_server_stop(WAIT_HINT_STOP_MS / 2);
    pickup_stop(WAIT_HINT_STOP_MS / 4);
    queue_stop(WAIT_HINT_STOP_MS / 2);
    spool_close();   /* nothing writes to it any more */
    tls_cache_shutdown();   /* outbound credentials kept per destination */
    mapfile_shutdown();     /* sessions are gone: their references with them */
    io_engine_stop();
    logs_stop();   /* every session and delivery has ended: write what they logged */
    evlog_report(EVENTLOG_INFORMATION_TYPE, CAT_INIT_TERM, MSG_SERVICE_STOPPED,
                 LOC_SVC_STOP, 0, 1, (const wchar_t *[]){ mode_name() });
    evlog_close();
    report(SERVICE_STOPPED, NO_ERROR, 0);
    CloseHandle(wake_event);
    return 0;
}

static void WINAPI service_main(DWORD argc, wchar_t **argv)
{
    (void)argc, (void)argv;  /* start parameters are not used: configuration is in the registry */
    status_handle = RegisterServiceCtrlHandlerExW(IMSVC_SERVICE_NAME, control_handler, NULL);
    if (!status_handle) {
        evlog_report(EVENTLOG_ERROR_TYPE, CAT_INIT_TERM, MSG_SERVICE_START_FAILED,
                     LOC_SVC_REGISTER_HANDLER, GetLastError(), 1,
                     (const wchar_t *[]){ L"RegisterServiceCtrlHandlerEx failed" });
        return;
    }
    service_loop();
}

int service_dispatch(void)
{
    SERVICE_TABLE_ENTRYW table[] = {
        { (wchar_t *)IMSVC_SERVICE_NAME, service_main },
        { NULL, NULL },
    };
    if (!StartServiceCtrlDispatcherW(table)) {
        DWORD err = GetLastError();
        if (err == ERROR_FAILED_SERVICE_CONTROLLER_CONNECT)
            fprintf(stderr, "imsvc: `imsvc service` is started by the Service Control Manager; "
                            "use `imsvc run` to run in this console\n");
        else
            print_win32_error("StartServiceCtrlDispatcher", err);
        return 1;
    }
    return 0;
}

int service_run_console(void)
{
    status_handle = NULL;
    SetConsoleCtrlHandler(console_handler, TRUE);
    printf("imsvc %s: running in this console; press Ctrl+C to stop\n", IMSVC_VERSION);
    fflush(stdout);
    return service_loop();
}
