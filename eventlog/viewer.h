/* viewer.h - what `imsvc events` shows, exposed for tests.
 *
 * The text comes from the message table compiled into this executable (the
 * same table Event Viewer reads through EventMessageFile), so what the viewer
 * prints is what an administrator sees on Windows.
 */
#ifndef IMSVC_VIEWER_H
#define IMSVC_VIEWER_H

#include <windows.h>
#include "evt.h"

/* The description of event_id (the full 32-bit message ID) with its
 * insertion strings, as Event Viewer formats it; inserts with no string stay
 * as written (%3). When the table has no such message, a sentence saying so
 * followed by the strings. malloc'd; NULL only when out of memory. */
wchar_t *evlog_format_message(DWORD event_id, int nstrings, const wchar_t *const *strings);

/* The category's name from the message table: "None" for 0, "(N)" when the
 * table does not have it. malloc'd. */
wchar_t *evlog_category_name(WORD category);

/* One record in Event Viewer's detail layout (Date, Time, Type, User,
 * Computer, Source, Category, Event ID, Description, Data as bytes and as
 * words), as UTF-8 with \n line ends. malloc'd; NULL when out of memory. */
char *evlog_render_record(const struct evt_view *v);

#endif
