/* check_eventlog.c - evlog_report's journal record, the message table and
 * the viewer, on Windows (Wine). */
#include <check.h>
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventlog.h"
#include "evt.h"
#include "location.h"
#include "viewer.h"

static wchar_t journal_path[MAX_PATH];

static void make_temp(void)
{
    wchar_t dir[MAX_PATH];
    ck_assert_uint_gt(GetTempPathW(ARRAYSIZE(dir), dir), 0);
    ck_assert_uint_ne(GetTempFileNameW(dir, L"evl", 0, journal_path), 0);
    DeleteFileW(journal_path); /* evlog_open creates it */
}

static void drop_temp(void)
{
    evlog_close();
    DeleteFileW(journal_path);
    wchar_t aside[MAX_PATH + 16];
    _snwprintf(aside, ARRAYSIZE(aside), L"%ls.corrupt", journal_path);
    aside[ARRAYSIZE(aside) - 1] = 0;
    DeleteFileW(aside);
}

static unsigned char *load(size_t *len)
{
    FILE *f = _wfopen(journal_path, L"rb");
    ck_assert_ptr_nonnull(f);
    unsigned char *buf;
    ck_assert_int_eq(evt_slurp(f, &buf, len), EVT_OK);
    fclose(f);
    return buf;
}

static char *utf8(const wchar_t *w)
{
    static char out[2048];
    WideCharToMultiByte(CP_UTF8, 0, w, -1, out, sizeof out, NULL, NULL);
    return out;
}

START_TEST(report_writes_seed_payload)
{
    make_temp();
    ck_assert_uint_eq(evlog_open(journal_path, 0x10000), ERROR_SUCCESS);
    evlog_report(EVENTLOG_ERROR_TYPE, CAT_SECURITY, MSG_UNEXPECTED_ERROR,
                 LOC_SSPI_DECRYPT, 0x8009030Fu, 1,
                 (const wchar_t *[]){ L"DecryptMessage on session 7" });
    evlog_close();

    size_t len;
    unsigned char *buf = load(&len);
    struct evt_reader r;
    struct evt_view v;
    ck_assert_int_eq(evt_reader_init(&r, buf, len), EVT_OK);
    ck_assert_int_eq(evt_reader_next(&r, &v), 1);
    static const unsigned char seed[8] = { 0xf3, 0x03, 0x15, 0x00, 0x0f, 0x03, 0x09, 0x80 };
    ck_assert_uint_eq(v.data_len, 8);
    ck_assert_mem_eq(v.data, seed, 8);
    ck_assert_uint_eq(v.event_id, 0xC0001023u);
    ck_assert_uint_eq(v.event_id & 0xffff, 4131);
    ck_assert_uint_eq(v.event_type, EVENTLOG_ERROR_TYPE);
    ck_assert_uint_eq(v.category, CAT_SECURITY);
    ck_assert_uint_eq(v.nstrings, 1);
    char s[128];
    evt_utf16le_to_utf8(v.source, v.source_units, s, sizeof s);
    ck_assert_str_eq(s, "IMSvc");

    char *text = evlog_render_record(&v);
    ck_assert_ptr_nonnull(text);
    ck_assert_ptr_nonnull(strstr(text, "\n0000: f3 03 15 00 0f 03 09 80\n"));
    ck_assert_ptr_nonnull(strstr(text, "\n0000: 001503f3 8009030f\n"));
    ck_assert_ptr_nonnull(strstr(text, "Event ID:\t4131\n"));
    ck_assert_ptr_nonnull(strstr(text, "Type:\t\tError\n"));
    ck_assert_ptr_nonnull(strstr(text, "Category:\tSecurity\n"));
    ck_assert_ptr_nonnull(strstr(text, "Source:\t\tIMSvc\n"));
    ck_assert_ptr_nonnull(strstr(text, "User:\t\tN/A\n"));
    ck_assert_ptr_nonnull(strstr(text, "An unexpected error occurred in the Internet Mail Service: "
                                       "DecryptMessage on session 7."));
    free(text);
    ck_assert_int_eq(evt_reader_next(&r, &v), 0);
    evt_reader_free(&r);
    free(buf);
    drop_temp();
}
END_TEST

START_TEST(reports_append_in_order)
{
    make_temp();
    ck_assert_uint_eq(evlog_open(journal_path, 0), ERROR_SUCCESS);
    evlog_report(EVENTLOG_INFORMATION_TYPE, CAT_INIT_TERM, MSG_SERVICE_STARTED, LOC_SVC_START, 0, 2,
                 (const wchar_t *[]){ L"0.1.0", L"console" });
    evlog_report(EVENTLOG_WARNING_TYPE, CAT_CONFIGURATION, MSG_CONFIG_INVALID, LOC_CFG_READ,
                 ERROR_INVALID_DATA, 2, (const wchar_t *[]){ L"Port", L"out of range" });
    evlog_report(EVENTLOG_INFORMATION_TYPE, CAT_INIT_TERM, MSG_SERVICE_PAUSED, LOC_SVC_PAUSE, 0, 0, NULL);
    evlog_close();
    size_t len;
    unsigned char *buf = load(&len);
    struct evt_reader r;
    struct evt_view v;
    ck_assert_int_eq(evt_reader_init(&r, buf, len), EVT_OK);
    ck_assert_uint_eq(r.h.max_size, EVLOG_JOURNAL_DEFAULT_MAX);
    const DWORD want[] = { MSG_SERVICE_STARTED, MSG_CONFIG_INVALID, MSG_SERVICE_PAUSED };
    for (unsigned i = 0; i < 3; i++) {
        ck_assert_int_eq(evt_reader_next(&r, &v), 1);
        ck_assert_uint_eq(v.record_number, i + 1);
        ck_assert_uint_eq(v.event_id, want[i]);
    }
    char *text = evlog_render_record(&v);
    ck_assert_ptr_nonnull(strstr(text, "0000: 06 00 01 00 00 00 00 00\n"));
    free(text);
    ck_assert_int_eq(evt_reader_next(&r, &v), 0);
    evt_reader_free(&r);
    free(buf);
    drop_temp();
}
END_TEST

START_TEST(message_formatting)
{
    wchar_t *m = evlog_format_message(MSG_UNEXPECTED_ERROR, 1,
                                      (const wchar_t *[]){ L"AcceptSecurityContext on session 12" });
    ck_assert_ptr_nonnull(m);
    ck_assert_ptr_nonnull(wcsstr(m, L"An unexpected error occurred in the Internet Mail Service: "
                                    L"AcceptSecurityContext on session 12."));
    ck_assert_ptr_nonnull(wcsstr(m, L"Data"));
    free(m);
    m = evlog_format_message(MSG_CONFIG_INVALID, 2, (const wchar_t *[]){ L"Port", L"must be 1-65535" });
    ck_assert_str_eq(utf8(m), "The configuration value Port is not valid: must be 1-65535.");
    free(m);
    /* Fewer strings than inserts: the insert stays visible, nothing is read past the array. */
    m = evlog_format_message(MSG_CONFIG_INVALID, 1, (const wchar_t *[]){ L"Port" });
    ck_assert_str_eq(utf8(m), "The configuration value Port is not valid: %2.");
    free(m);
    m = evlog_format_message(0x40000000u | 999u, 1, (const wchar_t *[]){ L"abc" });
    ck_assert_ptr_nonnull(wcsstr(m, L"Event ID 999"));
    ck_assert_ptr_nonnull(wcsstr(m, L"abc"));
    free(m);
}
END_TEST

START_TEST(category_names)
{
    static const struct { WORD id; const char *name; } cats[] = {
        { CAT_INIT_TERM, "Initialization/Termination" },
        { CAT_ADDRESSING, "Addressing" },
        { CAT_MESSAGE_TRANSFER, "Message Transfer" },
        { CAT_SMTP_INTERFACE, "SMTP Interface Events" },
        { CAT_INTERNAL_PROCESSING, "Internal Processing" },
        { CAT_SECURITY, "Security" },
        { CAT_QUEUING, "Queuing" },
        { CAT_CONFIGURATION, "Configuration" },
        { 0, "None" },
        { 77, "(77)" },
    };
    for (size_t i = 0; i < ARRAYSIZE(cats); i++) {
        wchar_t *n = evlog_category_name(cats[i].id);
        ck_assert_ptr_nonnull(n);
        ck_assert_str_eq(utf8(n), cats[i].name);
        free(n);
    }
}
END_TEST

START_TEST(events_command_rejects_bad_input)
{
    make_temp();
    /* No journal yet. */
    ck_assert_int_eq(evlog_cmd_events(journal_path, 1, (char *[]){ "events", NULL }), 1);
    ck_assert_uint_eq(evlog_open(journal_path, 0x10000), ERROR_SUCCESS);
    evlog_report(EVENTLOG_ERROR_TYPE, CAT_SECURITY, MSG_UNEXPECTED_ERROR, LOC_SSPI_DECRYPT,
                 0x8009030Fu, 1, (const wchar_t *[]){ L"x" });
    evlog_close();
    ck_assert_int_eq(evlog_cmd_events(journal_path, 3, (char *[]){ "events", "--last", "0", NULL }), 1);
    ck_assert_int_eq(evlog_cmd_events(journal_path, 3, (char *[]){ "events", "--id", "70000", NULL }), 1);
    ck_assert_int_eq(evlog_cmd_events(journal_path, 2, (char *[]){ "events", "--id", NULL }), 1);
    ck_assert_int_eq(evlog_cmd_events(journal_path, 2, (char *[]){ "events", "--bogus", NULL }), 1);
    ck_assert_int_eq(evlog_cmd_events(journal_path, 5,
                                      (char *[]){ "events", "--export", "x.evt", "--id", "4131", NULL }), 1);
    ck_assert_int_eq(evlog_cmd_events(journal_path, 3, (char *[]){ "events", "--id", "4131", NULL }), 0);

    /* Export: the copy is the whole journal, its space reserved. */
    wchar_t wcopy[MAX_PATH + 8];
    _snwprintf(wcopy, ARRAYSIZE(wcopy), L"%ls.copy", journal_path);
    wcopy[ARRAYSIZE(wcopy) - 1] = 0;
    char copy[MAX_PATH * 3];
    WideCharToMultiByte(CP_UTF8, 0, wcopy, -1, copy, sizeof copy, NULL, NULL);
    ck_assert_int_eq(evlog_cmd_events(journal_path, 3, (char *[]){ "events", "--export", copy, NULL }), 0);
    FILE *f = _wfopen(wcopy, L"rb");
    ck_assert_ptr_nonnull(f);
    unsigned char *buf;
    size_t len;
    ck_assert_int_eq(evt_slurp(f, &buf, &len), EVT_OK);
    fclose(f);
    ck_assert_uint_eq(len, 0x10000);
    uint32_t n = 0;
    ck_assert_int_eq(evt_validate(buf, len, &n), EVT_OK);
    ck_assert_uint_eq(n, 1);

    /* What the first release's journal left on a full disk: the head of a
     * second record over the end-of-file record, the rest cut off. The
     * viewer shows the first record and says one was skipped (status 2);
     * an export is a clean copy of what survives. */
    struct evt_header h;
    ck_assert_int_eq(evt_header_decode(buf, len, &h), EVT_OK);
    uint32_t rec1 = buf[0x30] | buf[0x31] << 8;
    f = _wfopen(journal_path, L"wb");
    ck_assert_ptr_nonnull(f);
    fwrite(buf, 1, h.end_offset, f);
    fwrite(buf + 0x30, 1, rec1 / 2, f);
    fclose(f);
    free(buf);
    ck_assert_int_eq(evlog_cmd_events(journal_path, 1, (char *[]){ "events", NULL }), 2);
    ck_assert_int_eq(evlog_cmd_events(journal_path, 3, (char *[]){ "events", "--last", "5", NULL }), 2);
    DeleteFileW(wcopy);
    ck_assert_int_eq(evlog_cmd_events(journal_path, 3, (char *[]){ "events", "--export", copy, NULL }), 2);
    f = _wfopen(wcopy, L"rb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(evt_slurp(f, &buf, &len), EVT_OK);
    fclose(f);
    ck_assert_int_eq(evt_validate(buf, len, &n), EVT_OK);
    ck_assert_uint_eq(n, 1);
    free(buf);
    DeleteFileW(wcopy);

    /* Opening it repairs it in place: the record stays, event 4152 follows
     * saying one record was lost, and the space is reserved again. */
    ck_assert_uint_eq(evlog_open(journal_path, 0x10000), ERROR_SUCCESS);
    evlog_close();
    unsigned char *b2 = load(&len);
    ck_assert_uint_eq(len, 0x10000);
    struct evt_reader r;
    struct evt_view v;
    ck_assert_int_eq(evt_reader_init(&r, b2, len), EVT_OK);
    ck_assert_int_eq(evt_reader_next(&r, &v), 1);
    ck_assert_uint_eq(v.event_id, MSG_UNEXPECTED_ERROR);
    ck_assert_uint_eq(v.record_number, 1);
    ck_assert_int_eq(evt_reader_next(&r, &v), 1);
    ck_assert_uint_eq(v.event_id, MSG_JOURNAL_REPAIRED);
    ck_assert_uint_eq(v.record_number, 2);
    char *text = evlog_render_record(&v);
    ck_assert_ptr_nonnull(strstr(text, ": 1 records could not be read and were dropped. The 1 records"));
    ck_assert_ptr_nonnull(strstr(text, "0000: 10 00 04 00 70 05 00 00\n")); /* LOC_EVL_JOURNAL_REPAIR, ERROR_FILE_CORRUPT */
    free(text);
    ck_assert_int_eq(evt_reader_next(&r, &v), 0);
    evt_reader_free(&r);
    free(b2);
    ck_assert_int_eq(evlog_cmd_events(journal_path, 1, (char *[]){ "events", NULL }), 0);

    /* A file whose header is not a journal's is set aside and a new journal
     * begins by saying so. */
    f = _wfopen(journal_path, L"r+b");
    ck_assert_ptr_nonnull(f);
    fseek(f, 4, SEEK_SET);
    fputc('X', f);
    fclose(f);
    ck_assert_int_eq(evlog_cmd_events(journal_path, 1, (char *[]){ "events", NULL }), 1);
    ck_assert_uint_eq(evlog_open(journal_path, 0x10000), ERROR_SUCCESS);
    evlog_close();
    b2 = load(&len);
    ck_assert_int_eq(evt_reader_init(&r, b2, len), EVT_OK);
    ck_assert_int_eq(evt_reader_next(&r, &v), 1);
    ck_assert_uint_eq(v.event_id, MSG_JOURNAL_RESET);
    ck_assert_uint_eq(v.nstrings, 3);
    evt_reader_free(&r);
    free(b2);
    drop_temp();
}
END_TEST

Suite *eventlog_suite(void)
{
    Suite *s = suite_create("eventlog");
    TCase *tc = tcase_create("report");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, report_writes_seed_payload);
    tcase_add_test(tc, reports_append_in_order);
    tcase_add_test(tc, message_formatting);
    tcase_add_test(tc, category_names);
    tcase_add_test(tc, events_command_rejects_bad_input);
    suite_add_tcase(s, tc);
    return s;
}
