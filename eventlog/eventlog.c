/* eventlog.c - report events to the Windows event log and to the journal.
 *
 * Every event goes twice: to ReportEventW (source IMSvc, Application log),
 * which is what a Windows administrator reads, and to the journal, a classic
 * .evt file (core/evt.c) that survives where the system log does not (Wine
 * drops the data of ReportEventW). Both carry the same data payload: the
 * location DWORD then the status DWORD, little-endian.
 *
 * The journal is written through Win32 file calls (a store for core/evt.c),
 * so a failed write is seen at once with its Win32 error (ERROR_DISK_FULL)
 * and the core can leave the file as it was. Its space is reserved up to
 * JournalMaxKB when it is opened, so a disk that fills later does not stop
 * it; a journal found damaged is repaired in place, keeping every record
 * that can still be read (event 4152).
 *
 * Reporting must never fail or block the caller for long: errors are
 * returned for information, and one lock keeps concurrent reports whole.
 */
#include <windows.h>
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
static HANDLE journal_file = INVALID_HANDLE_VALUE;
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

/* The journal's store: positioned Win32 reads and writes on its handle. */
static unsigned long file_seek(HANDLE h, uint32_t off)
{
    LARGE_INTEGER at;
    at.QuadPart = off;
    return SetFilePointerEx(h, at, NULL, FILE_BEGIN) ? 0 : GetLastError();
}

static unsigned long file_read_at(void *ctx, uint32_t off, void *buf, size_t n)
{
    HANDLE h = ctx;
    unsigned long e = file_seek(h, off);
    char *p = buf;
    while (!e && n) {
        DWORD want = n > 0x10000000u ? 0x10000000u : (DWORD)n, got = 0;
        if (!ReadFile(h, p, want, &got, NULL))
            e = GetLastError();
        else if (got == 0)
            e = ERROR_HANDLE_EOF;
        p += got;
        n -= got;
    }
    return e;
}

static unsigned long file_write_at(void *ctx, uint32_t off, const void *buf, size_t n)
{
    HANDLE h = ctx;
    unsigned long e = file_seek(h, off);
    const char *p = buf;
    while (!e && n) {
        DWORD want = n > 0x10000000u ? 0x10000000u : (DWORD)n, put = 0;
        if (!WriteFile(h, p, want, &put, NULL))
            e = GetLastError();
        else if (put == 0)
            e = ERROR_DISK_FULL; /* nothing taken and no error: no room */
        p += put;
        n -= put;
    }
    return e;
}

static unsigned long file_get_size(void *ctx, uint64_t *size)
{
    LARGE_INTEGER n;
    if (!GetFileSizeEx((HANDLE)ctx, &n))
        return GetLastError();
    *size = (uint64_t)n.QuadPart;
    return 0;
}

static unsigned long file_set_size(void *ctx, uint32_t size)
{
    HANDLE h = ctx;
    unsigned long e = file_seek(h, size);
    if (!e && !SetEndOfFile(h))
        e = GetLastError();
    return e;
}

/* Open (or create) path as a journal; caller holds the lock. Returns an
 * EVT_E_* code; *win32 gets the Win32 error behind EVT_E_IO. */
static int open_journal_locked(const wchar_t *path, DWORD max_bytes, DWORD *win32)
{
    /* Readers (imsvc events) may open it while the service writes. */
    HANDLE h = CreateFileW(path, GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE,
                           NULL, OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
    if (h == INVALID_HANDLE_VALUE) {
        *win32 = GetLastError();
        return EVT_E_IO;
    }
    struct evt_store io = { h, file_read_at, file_write_at, file_get_size, file_set_size };
    int rc = evt_journal_open_store(&journal, &io, max_bytes);
    if (rc) {
        *win32 = rc == EVT_E_IO ? (DWORD)journal.error : ERROR_SUCCESS;
        CloseHandle(h);
    } else {
        journal_file = h;
    }
    return rc;
}

static void close_journal_locked(void)
{
    if (journal_open) {
        evt_journal_close(&journal);
        CloseHandle(journal_file);
        journal_file = INVALID_HANDLE_VALUE;
        journal_open = 0;
    }
}

DWORD evlog_open(const wchar_t *journal_path, DWORD max_bytes)
{
    if (!journal_path || !journal_path[0])
        return ERROR_INVALID_PARAMETER;
    if (max_bytes == 0)
        max_bytes = EVLOG_JOURNAL_DEFAULT_MAX;
    wchar_t aside[MAX_PATH + 16] = L"";
    int bad = EVT_OK;
    DWORD result = ERROR_SUCCESS, win32 = ERROR_SUCCESS;

    enter();
    close_journal_locked();
    int rc = open_journal_locked(journal_path, max_bytes, &win32);
    if (rc == EVT_E_CORRUPT || rc == EVT_E_TRUNCATED) {
        /* Not even its header can be read (a damaged file is repaired by the
         * open): keep it for examination and start afresh, so that one bad
         * file never silences the journal for good. */
        bad = rc;
        _snwprintf(aside, ARRAYSIZE(aside), L"%ls.corrupt", journal_path);
        aside[ARRAYSIZE(aside) - 1] = 0;
        if (MoveFileExW(journal_path, aside, MOVEFILE_REPLACE_EXISTING))
            rc = open_journal_locked(journal_path, max_bytes, &win32);
        else
            result = GetLastError();
    }
    if (rc == EVT_OK)
        journal_open = 1;
    else if (result == ERROR_SUCCESS)
        result = rc == EVT_E_IO ? (win32 ? win32 : ERROR_OPEN_FAILED) : evt_to_win32(rc);
    int repaired = journal_open && journal.repaired, reserved = journal_open && journal.reserved;
    struct evt_scan scan = journal.repair;
    DWORD reserve_error = (DWORD)journal.error;
    uint32_t max_size = journal.h.max_size;
    leave();

    if (journal_open && bad) {
        wchar_t why[128];
        _snwprintf(why, ARRAYSIZE(why), L"%hs", evt_strerror(bad));
        why[ARRAYSIZE(why) - 1] = 0;
        evlog_report(EVENTLOG_WARNING_TYPE, CAT_INTERNAL_PROCESSING, MSG_JOURNAL_RESET,
                     LOC_EVL_JOURNAL_OPEN, ERROR_FILE_CORRUPT, 3,
                     (const wchar_t *[]){ journal_path, why, aside });
    }
    if (repaired) {
        wchar_t lost[16], kept[16];
        _snwprintf(lost, ARRAYSIZE(lost), L"%lu", (unsigned long)scan.skipped);
        _snwprintf(kept, ARRAYSIZE(kept), L"%lu", (unsigned long)scan.records);
        lost[ARRAYSIZE(lost) - 1] = kept[ARRAYSIZE(kept) - 1] = 0;
        evlog_report(EVENTLOG_WARNING_TYPE, CAT_INTERNAL_PROCESSING, MSG_JOURNAL_REPAIRED,
                     LOC_EVL_JOURNAL_REPAIR, ERROR_FILE_CORRUPT, 3,
                     (const wchar_t *[]){ journal_path, lost, kept });
    }
    if (journal_open && !reserved) {
        wchar_t kb[16];
        _snwprintf(kb, ARRAYSIZE(kb), L"%lu", (unsigned long)(max_size / 1024u));
        kb[ARRAYSIZE(kb) - 1] = 0;
        evlog_report(EVENTLOG_WARNING_TYPE, CAT_INTERNAL_PROCESSING, MSG_JOURNAL_NOT_RESERVED,
                     LOC_EVL_JOURNAL_RESERVE, reserve_error, 2,
                     (const wchar_t *[]){ journal_path, kb });
    }
    return result;
}

void evlog_close(void)
{
    enter();
    close_journal_locked();
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
            result = rc == EVT_E_IO && journal.error ? (DWORD)journal.error : evt_to_win32(rc);
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
