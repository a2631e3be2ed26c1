/* eventlog.c - report events to the Windows event log and to the journal.
 *
 * Every event goes twice: to ReportEventW (source IMSvc, Application log),
 * which is what a Windows administrator reads, and to the journal, a classic
 * .evt file (core/evt.c) that survives where the system log does not (Wine
 * drops the data of ReportEventW). Both carry the same data payload: the
 * location DWORD then the status DWORD, little-endian.
 *
 * Reporting must never fail or block the caller for long: errors are
 * returned for information, and one lock keeps concurrent reports whole.
 */
#include <windows.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "eventlog.h"
#include "evt.h"
#include "location.h"

#define EVLOG_CATEGORY_COUNT CAT_CONFIGURATION /* the last category ID */
#define EVLOG_REG_KEY L"SYSTEM\\CurrentControlSet\\Services\\EventLog\\Application\\" EVLOG_SOURCE
#define EVLOG_TYPES_SUPPORTED (EVENTLOG_ERROR_TYPE | EVENTLOG_WARNING_TYPE | EVENTLOG_INFORMATION_TYPE)
#define EVLOG_MAX_STRINGS 64

static INIT_ONCE lock_once = INIT_ONCE_STATIC_INIT;
static CRITICAL_SECTION lock;
static HANDLE source;           /* RegisterEventSourceW, opened on first use */
static struct evt_journal journal;
static int journal_open;
static wchar_t computer[MAX_COMPUTERNAME_LENGTH + 1];

static BOOL CALLBACK init_lock(INIT_ONCE *once, void *param, void **ctx)
{
    (void)once, (void)param, (void)ctx;
    InitializeCriticalSection(&lock);
    return TRUE;
}

static void enter(void)
{
    InitOnceExecuteOnce(&lock_once, init_lock, NULL, NULL);
    EnterCriticalSection(&lock);
}

static void leave(void)
{
    LeaveCriticalSection(&lock);
}

/* Map the core's status to the Win32 error a caller can report. */
static DWORD evt_to_win32(int rc)
{
    switch (rc) {
    case EVT_OK: return ERROR_SUCCESS;
    case EVT_E_ARG: return ERROR_INVALID_PARAMETER;
    case EVT_E_NOMEM: return ERROR_NOT_ENOUGH_MEMORY;
    case EVT_E_TRUNCATED:
    case EVT_E_CORRUPT: return ERROR_FILE_CORRUPT;
    case EVT_E_TOO_LARGE: return ERROR_INSUFFICIENT_BUFFER;
    default: return ERROR_WRITE_FAULT;
    }
}

static const wchar_t *computer_name(void)
{
    if (!computer[0]) {
        DWORD n = ARRAYSIZE(computer);
        if (!GetComputerNameW(computer, &n))
            wcscpy(computer, L"UNKNOWN");
    }
    return computer;
}

/* Open (or create) path as a journal; caller holds the lock. */
static int open_journal_locked(const wchar_t *path, DWORD max_bytes, FILE **out)
{
    FILE *f = _wfopen(path, L"r+b");
    if (!f && errno == ENOENT)
        f = _wfopen(path, L"w+b");
    if (!f)
        return EVT_E_IO;
    int rc = evt_journal_open_fp(&journal, f, max_bytes);
    if (rc)
        fclose(f);
    else
        *out = f;
    return rc;
}

DWORD evlog_open(const wchar_t *journal_path, DWORD max_bytes)
{
    if (!journal_path || !journal_path[0])
        return ERROR_INVALID_PARAMETER;
    if (max_bytes == 0)
        max_bytes = EVLOG_JOURNAL_DEFAULT_MAX;
    wchar_t aside[MAX_PATH + 16] = L"";
    int bad = EVT_OK;
    DWORD result = ERROR_SUCCESS;
    FILE *f = NULL;

    enter();
    if (journal_open) {
        evt_journal_close(&journal);
        journal_open = 0;
    }
    int rc = open_journal_locked(journal_path, max_bytes, &f);
    if (rc == EVT_E_CORRUPT || rc == EVT_E_TRUNCATED) {
        /* Keep the damaged file for examination and start afresh, so that
         * one bad file never silences the journal for good. */
        bad = rc;
        _snwprintf(aside, ARRAYSIZE(aside), L"%ls.corrupt", journal_path);
        aside[ARRAYSIZE(aside) - 1] = 0;
        if (MoveFileExW(journal_path, aside, MOVEFILE_REPLACE_EXISTING))
            rc = open_journal_locked(journal_path, max_bytes, &f);
        else
            result = GetLastError();
    }
    if (rc == EVT_OK)
        journal_open = 1;
    else if (result == ERROR_SUCCESS)
        result = rc == EVT_E_IO ? (DWORD)(errno == EACCES ? ERROR_ACCESS_DENIED : ERROR_OPEN_FAILED)
                                : evt_to_win32(rc);
    leave();

    if (journal_open && bad) {
        wchar_t why[128];
        _snwprintf(why, ARRAYSIZE(why), L"%hs", evt_strerror(bad));
        why[ARRAYSIZE(why) - 1] = 0;
        evlog_report(EVENTLOG_WARNING_TYPE, CAT_INTERNAL_PROCESSING, MSG_JOURNAL_RESET,
                     LOC_EVL_JOURNAL_OPEN, ERROR_FILE_CORRUPT, 3,
                     (const wchar_t *[]){ journal_path, why, aside });
    }
    return result;
}

void evlog_close(void)
{
    enter();
    if (journal_open) {
        evt_journal_close(&journal);
        journal_open = 0;
    }
    if (source) {
        DeregisterEventSource(source);
        source = NULL;
    }
    leave();
}

DWORD evlog_report(WORD type, WORD category, DWORD event_id,
                   DWORD location, DWORD status,
                   int nstrings, const wchar_t *const *strings)
{
    if (nstrings < 0 || nstrings > EVLOG_MAX_STRINGS || (nstrings && !strings))
        return ERROR_INVALID_PARAMETER;
    unsigned char data[8];
    for (int i = 0; i < 4; i++) {
        data[i] = (unsigned char)(location >> (8 * i));
        data[4 + i] = (unsigned char)(status >> (8 * i));
    }
    /* ReportEventW wants non-NULL strings; an absent one is reported empty. */
    const wchar_t *strs[EVLOG_MAX_STRINGS];
    for (int i = 0; i < nstrings; i++)
        strs[i] = strings[i] ? strings[i] : L"";

    DWORD result = ERROR_SUCCESS;
    enter();
    if (!source)
        source = RegisterEventSourceW(NULL, EVLOG_SOURCE);
    if (!source) {
        result = GetLastError();
    } else if (!ReportEventW(source, type, category, event_id, NULL, (WORD)nstrings,
                             sizeof data, (const wchar_t **)strs, data)) {
        result = GetLastError();
    }
    if (journal_open) {
        uint32_t now = (uint32_t)time(NULL);
        struct evt_event ev = { 0 };
        ev.time_generated = now;
        ev.time_written = now;
        ev.event_id = event_id;
        ev.event_type = type;
        ev.category = category;
        ev.source = (const uint16_t *)EVLOG_SOURCE;
        ev.computer = (const uint16_t *)computer_name();
        ev.nstrings = (uint16_t)nstrings;
        ev.strings = (const uint16_t *const *)strs;
        ev.data = data;
        ev.data_len = sizeof data;
        int rc = evt_journal_append(&journal, &ev, NULL);
        if (rc != EVT_OK && result == ERROR_SUCCESS)
            result = evt_to_win32(rc);
    }
    leave();
    return result;
}

DWORD evlog_register_source(const wchar_t *exe_path)
{
    if (!exe_path || !exe_path[0])
        return ERROR_INVALID_PARAMETER;
    HKEY key;
    LONG rc = RegCreateKeyExW(HKEY_LOCAL_MACHINE, EVLOG_REG_KEY, 0, NULL, REG_OPTION_NON_VOLATILE,
                              KEY_SET_VALUE, NULL, &key, NULL);
    if (rc != ERROR_SUCCESS)
        return (DWORD)rc;
    DWORD bytes = (DWORD)((wcslen(exe_path) + 1) * sizeof(wchar_t));
    DWORD count = EVLOG_CATEGORY_COUNT, types = EVLOG_TYPES_SUPPORTED;
    rc = RegSetValueExW(key, L"EventMessageFile", 0, REG_EXPAND_SZ, (const BYTE *)exe_path, bytes);
    if (rc == ERROR_SUCCESS)
        rc = RegSetValueExW(key, L"CategoryMessageFile", 0, REG_EXPAND_SZ, (const BYTE *)exe_path, bytes);
    if (rc == ERROR_SUCCESS)
        rc = RegSetValueExW(key, L"CategoryCount", 0, REG_DWORD, (const BYTE *)&count, sizeof count);
    if (rc == ERROR_SUCCESS)
        rc = RegSetValueExW(key, L"TypesSupported", 0, REG_DWORD, (const BYTE *)&types, sizeof types);
    RegCloseKey(key);
    return (DWORD)rc;
}

DWORD evlog_unregister_source(void)
{
    LONG rc = RegDeleteKeyW(HKEY_LOCAL_MACHINE, EVLOG_REG_KEY);
    return rc == ERROR_FILE_NOT_FOUND ? ERROR_SUCCESS : (DWORD)rc;
}
