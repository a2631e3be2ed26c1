/* eventlog.h - report an event to the Windows event log and the journal.
 *
 * One call, evlog_report(), sends an event to ReportEventW under the source
 * "IMSvc" in the Application log and appends the same record to the service's
 * journal, a classic NT .evt file (see core/evt.h). The data payload is always
 * the MSExchangeIMC pair: location DWORD then status DWORD, little-endian.
 * Event IDs and categories come from the message table (messages.mc, compiled
 * to messages.h). Reporting never fails the caller: a journal or ReportEvent
 * failure is returned for information only.
 */
#ifndef IMSVC_EVENTLOG_H
#define IMSVC_EVENTLOG_H

#include <windows.h>
#include "messages.h"

#define EVLOG_SOURCE L"IMSvc"
#define EVLOG_JOURNAL_NAME L"IMSvc.evt"
#define EVLOG_JOURNAL_DEFAULT_MAX (1024u * 1024u)

/* Open the journal (created if missing) with a size bound in bytes. Events
 * reported before this, or after a failure here, go to ReportEventW only. */
DWORD evlog_open(const wchar_t *journal_path, DWORD max_bytes);
void evlog_close(void);

/* type: EVENTLOG_ERROR_TYPE, EVENTLOG_WARNING_TYPE, EVENTLOG_INFORMATION_TYPE.
 * Thread-safe. Returns ERROR_SUCCESS or the first Win32 error seen. */
DWORD evlog_report(WORD type, WORD category, DWORD event_id,
                   DWORD location, DWORD status,
                   int nstrings, const wchar_t *const *strings);

/* Installer support: register and remove the event source (EventMessageFile,
 * CategoryMessageFile, CategoryCount, TypesSupported) for exe_path. */
DWORD evlog_register_source(const wchar_t *exe_path);
DWORD evlog_unregister_source(void);

/* `imsvc events [--last N] [--id N] [--export FILE]` over journal_path. */
int evlog_cmd_events(const wchar_t *journal_path, int argc, char **argv);

#endif
