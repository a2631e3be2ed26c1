/* check_evt.c - the .evt format: records, header, end-of-file record, the
 * journal's wrap-around, and the reader's refusal of damaged files. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evt.h"

static const uint16_t SRC[] = { 'I', 'M', 'S', 'v', 'c', 0 };
static const uint16_t HOST[] = { 'H', 'O', 'S', 'T', '1', 0 };

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ASCII to a NUL-terminated UTF-16 array (static buffers, up to 4 live). */
static const uint16_t *w(const char *s)
{
    static uint16_t bufs[4][512];
    static int next;
    uint16_t *b = bufs[next++ % 4];
    size_t i = 0;
    for (; s[i] && i < 511; i++)
        b[i] = (unsigned char)s[i];
    b[i] = 0;
    return b;
}

static char *u8(const unsigned char *le, size_t units)
{
    static char out[1024];
    evt_utf16le_to_utf8(le, units, out, sizeof out);
    return out;
}

static void temp_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "check_evt_%s.tmp.evt", name);
    remove(out);
}

static unsigned char *load(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    unsigned char *buf;
    ck_assert_int_eq(evt_slurp(f, &buf, len), EVT_OK);
    fclose(f);
    return buf;
}

static struct evt_event seed_event(const uint16_t *const *strings, uint16_t n,
                                   const unsigned char *data, uint32_t dlen)
{
    struct evt_event ev = { 0 };
    ev.time_generated = 1700000000u;
    ev.time_written = 1700000001u;
    ev.event_id = 0xC0001023u;
    ev.event_type = EVT_TYPE_ERROR;
    ev.category = 5;
    ev.source = SRC;
    ev.computer = HOST;
    ev.nstrings = n;
    ev.strings = strings;
    ev.data = data;
    ev.data_len = dlen;
    return ev;
}

START_TEST(record_round_trip)
{
    static const unsigned char data[8] = { 0xf3, 0x03, 0x15, 0x00, 0x0f, 0x03, 0x09, 0x80 };
    uint16_t s1[] = { 'D', 'e', 'c', 'r', 'y', 'p', 't', 0 };
    uint16_t s2[] = { 0x00e9, 0x4e2d, 0xd83d, 0xde00, 0 }; /* é 中 😀 */
    const uint16_t *strs[] = { s1, s2 };
    struct evt_event ev = seed_event(strs, 2, data, sizeof data);
    size_t need = evt_record_size(&ev);
    ck_assert_uint_gt(need, EVT_RECORD_FIXED);
    ck_assert_uint_eq(need % 4, 0);
    unsigned char buf[512];
    ck_assert_uint_eq(evt_record_build(&ev, 1, buf, need - 1), 0);
    ck_assert_uint_eq(evt_record_build(&ev, 42, buf, sizeof buf), need);
    ck_assert_uint_eq(rd32(buf), need);
    ck_assert_uint_eq(rd32(buf + need - 4), need);
    ck_assert_mem_eq(buf + 4, "LfLe", 4);

    struct evt_view v;
    ck_assert_int_eq(evt_record_parse(buf, need, &v), EVT_OK);
    ck_assert_uint_eq(v.record_number, 42);
    ck_assert_uint_eq(v.time_generated, 1700000000u);
    ck_assert_uint_eq(v.time_written, 1700000001u);
    ck_assert_uint_eq(v.event_id, 0xC0001023u);
    ck_assert_uint_eq(v.event_type, EVT_TYPE_ERROR);
    ck_assert_uint_eq(v.category, 5);
    ck_assert_str_eq(u8(v.source, v.source_units), "IMSvc");
    ck_assert_str_eq(u8(v.computer, v.computer_units), "HOST1");
    ck_assert_uint_eq(v.nstrings, 2);
    const unsigned char *t;
    size_t units;
    ck_assert_int_eq(evt_view_string(&v, 0, &t, &units), EVT_OK);
    ck_assert_str_eq(u8(t, units), "Decrypt");
    ck_assert_int_eq(evt_view_string(&v, 1, &t, &units), EVT_OK);
    ck_assert_str_eq(u8(t, units), "\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80");
    ck_assert_int_eq(evt_view_string(&v, 2, &t, &units), EVT_E_ARG);
    ck_assert_uint_eq(v.data_len, 8);
    ck_assert_mem_eq(v.data, data, 8);
    ck_assert_ptr_null(v.sid);
    /* The SID sits DWORD-aligned after the computer name, as NT puts it. */
    ck_assert_uint_eq(rd32(buf + 0x2c) % 4, 0);
}
END_TEST

START_TEST(record_parse_rejects_bad_offsets)
{
    static const unsigned char data[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    const uint16_t *strs[] = { w("context") };
    struct evt_event ev = seed_event(strs, 1, data, sizeof data);
    unsigned char buf[256], bad[256];
    size_t n = evt_record_build(&ev, 1, buf, sizeof buf);
    ck_assert_uint_gt(n, 0);
    struct evt_view v;

    memcpy(bad, buf, n); /* data runs past the record */
    bad[0x30] = 0xff;
    ck_assert_int_eq(evt_record_parse(bad, n, &v), EVT_E_CORRUPT);
    memcpy(bad, buf, n); /* string offset past the record */
    bad[0x24] = 0xf0; bad[0x25] = 0xff;
    ck_assert_int_eq(evt_record_parse(bad, n, &v), EVT_E_CORRUPT);
    memcpy(bad, buf, n); /* more strings than present */
    bad[0x1a] = 9;
    ck_assert_int_eq(evt_record_parse(bad, n, &v), EVT_E_CORRUPT);
    memcpy(bad, buf, n); /* trailing length differs */
    bad[n - 4] ^= 4;
    ck_assert_int_eq(evt_record_parse(bad, n, &v), EVT_E_CORRUPT);
    memcpy(bad, buf, n); /* signature */
    bad[4] = 'X';
    ck_assert_int_eq(evt_record_parse(bad, n, &v), EVT_E_CORRUPT);
    for (size_t cut = 0; cut < n; cut++)
        ck_assert_int_lt(evt_record_parse(buf, cut, &v), 0);
    ck_assert_int_eq(evt_record_parse(buf, n, &v), EVT_OK);
}
END_TEST

START_TEST(header_and_eof_layout)
{
    struct evt_header h = { 0x30, 0x1234, 7, 3, 0x10000, EVT_FLAG_WRAP, 0 };
    unsigned char hb[EVT_HEADER_SIZE], eb[EVT_EOF_SIZE];
    evt_header_encode(&h, hb);
    ck_assert_uint_eq(rd32(hb + 0x00), 0x30);
    ck_assert_mem_eq(hb + 0x04, "LfLe", 4);
    ck_assert_uint_eq(rd32(hb + 0x08), 1);
    ck_assert_uint_eq(rd32(hb + 0x0c), 1);
    ck_assert_uint_eq(rd32(hb + 0x10), 0x30);
    ck_assert_uint_eq(rd32(hb + 0x14), 0x1234);
    ck_assert_uint_eq(rd32(hb + 0x18), 7);
    ck_assert_uint_eq(rd32(hb + 0x1c), 3);
    ck_assert_uint_eq(rd32(hb + 0x20), 0x10000);
    ck_assert_uint_eq(rd32(hb + 0x24), EVT_FLAG_WRAP);
    ck_assert_uint_eq(rd32(hb + 0x2c), 0x30);
    struct evt_header back;
    ck_assert_int_eq(evt_header_decode(hb, sizeof hb, &back), EVT_OK);
    ck_assert_mem_eq(&back, &h, sizeof h);

    evt_eof_encode(&h, eb);
    static const uint32_t want[10] = { 0x28, 0x11111111, 0x22222222, 0x33333333, 0x44444444,
                                       0x30, 0x1234, 7, 3, 0x28 };
    for (int i = 0; i < 10; i++)
        ck_assert_uint_eq(rd32(eb + 4 * i), want[i]);
    struct evt_header e = { 0 };
    ck_assert_int_eq(evt_eof_decode(eb, sizeof eb, &e), EVT_OK);
    ck_assert_uint_eq(e.end_offset, 0x1234);
    eb[0x0c] = 0;
    ck_assert_int_eq(evt_eof_decode(eb, sizeof eb, &e), EVT_E_CORRUPT);
    hb[4] = 'l';
    ck_assert_int_eq(evt_header_decode(hb, sizeof hb, &back), EVT_E_CORRUPT);
}
END_TEST

START_TEST(new_journal_is_empty_and_valid)
{
    char path[64];
    temp_path(path, sizeof path, "new");
    struct evt_journal j;
    ck_assert_int_eq(evt_journal_open(&j, path, 0x10000), EVT_OK);
    evt_journal_close(&j);
    size_t len;
    unsigned char *buf = load(path, &len);
    ck_assert_uint_eq(len, EVT_HEADER_SIZE + EVT_EOF_SIZE);
    struct evt_header h;
    ck_assert_int_eq(evt_header_decode(buf, len, &h), EVT_OK);
    ck_assert_uint_eq(h.start_offset, 0x30);
    ck_assert_uint_eq(h.end_offset, 0x30);
    ck_assert_uint_eq(h.current_record, 1);
    ck_assert_uint_eq(h.oldest_record, 0);
    ck_assert_uint_eq(h.max_size, 0x10000);
    ck_assert_uint_eq(h.flags, 0);
    ck_assert_uint_eq(rd32(buf + 0x30), 0x28);
    ck_assert_uint_eq(rd32(buf + 0x34), 0x11111111);
    uint32_t n = 99;
    ck_assert_int_eq(evt_validate(buf, len, &n), EVT_OK);
    ck_assert_uint_eq(n, 0);
    free(buf);
    remove(path);
}
END_TEST

START_TEST(journal_appends_and_reopens)
{
    char path[64];
    temp_path(path, sizeof path, "append");
    struct evt_journal j;
    ck_assert_int_eq(evt_journal_open(&j, path, 0x10000), EVT_OK);
    unsigned char data[8] = { 0xf3, 0x03, 0x15, 0x00, 0x0f, 0x03, 0x09, 0x80 };
    for (int i = 1; i <= 3; i++) {
        char s[32];
        snprintf(s, sizeof s, "event %d", i);
        const uint16_t *strs[] = { w(s) };
        struct evt_event ev = seed_event(strs, 1, data, sizeof data);
        uint32_t num = 0;
        ck_assert_int_eq(evt_journal_append(&j, &ev, &num), EVT_OK);
        ck_assert_uint_eq(num, (uint32_t)i);
    }
    evt_journal_close(&j);
    /* Reopen and continue the numbering. */
    ck_assert_int_eq(evt_journal_open(&j, path, 0x10000), EVT_OK);
    const uint16_t *strs[] = { w("event 4") };
    struct evt_event ev = seed_event(strs, 1, data, sizeof data);
    uint32_t num = 0;
    ck_assert_int_eq(evt_journal_append(&j, &ev, &num), EVT_OK);
    ck_assert_uint_eq(num, 4);
    evt_journal_close(&j);

    size_t len;
    unsigned char *buf = load(path, &len);
    struct evt_reader r;
    struct evt_view v;
    ck_assert_int_eq(evt_reader_init(&r, buf, len), EVT_OK);
    ck_assert_uint_eq(r.h.current_record, 5);
    ck_assert_uint_eq(r.h.oldest_record, 1);
    ck_assert_uint_eq(r.h.end_offset + EVT_EOF_SIZE, len);
    for (uint32_t i = 1; i <= 4; i++) {
        ck_assert_int_eq(evt_reader_next(&r, &v), 1);
        ck_assert_uint_eq(v.record_number, i);
        const unsigned char *t;
        size_t units;
        ck_assert_int_eq(evt_view_string(&v, 0, &t, &units), EVT_OK);
        char want[32];
        snprintf(want, sizeof want, "event %u", (unsigned)i);
        ck_assert_str_eq(u8(t, units), want);
        ck_assert_mem_eq(v.data, data, 8);
    }
    ck_assert_int_eq(evt_reader_next(&r, &v), 0);
    ck_assert_int_eq(evt_reader_next(&r, &v), 0);
    evt_reader_free(&r);
    /* The end-of-file record repeats the header's cursor. */
    struct evt_header e;
    ck_assert_int_eq(evt_eof_decode(buf + r.h.end_offset, EVT_EOF_SIZE, &e), EVT_OK);
    ck_assert_uint_eq(e.current_record, 5);
    ck_assert_uint_eq(e.oldest_record, 1);
    ck_assert_uint_eq(e.start_offset, 0x30);
    free(buf);
    remove(path);
}
END_TEST

/* Fill a small journal many times over: the newest records survive, numbered
 * without gaps, a record is split across the end of the file, and the file
 * stays exactly MaxSize. */
START_TEST(journal_wraps_keeping_newest)
{
    char path[64];
    temp_path(path, sizeof path, "wrap");
    struct evt_journal j;
    ck_assert_int_eq(evt_journal_open(&j, path, EVT_MIN_SIZE), EVT_OK);
    unsigned char data[8] = { 1, 0, 0, 0, 2, 0, 0, 0 };
    int split_seen = 0, wrapped_seen = 0;
    const uint32_t total = 300;
    for (uint32_t i = 1; i <= total; i++) {
        char s[128];
        snprintf(s, sizeof s, "event %u %.*s", (unsigned)i, (int)(i * 7 % 61), "padpadpadpadpadpadpadpadpadpadpadpadpadpadpadpadpadpadpadpadpad");
        const uint16_t *strs[] = { w(s) };
        struct evt_event ev = seed_event(strs, 1, data, sizeof data);
        uint32_t before = j.h.end_offset;
        size_t len = evt_record_size(&ev);
        if ((j.h.flags & EVT_FLAG_WRAP) && before + len > j.file_size)
            split_seen = 1;
        ck_assert_int_eq(evt_journal_append(&j, &ev, NULL), EVT_OK);
        if (j.h.end_offset < before)
            wrapped_seen = 1;
        if (i == 150) { /* reopen mid-way: the wrapped state must survive */
            evt_journal_close(&j);
            ck_assert_int_eq(evt_journal_open(&j, path, EVT_MIN_SIZE), EVT_OK);
        }
    }
    evt_journal_close(&j);
    ck_assert(split_seen);
    ck_assert(wrapped_seen);

    size_t len;
    unsigned char *buf = load(path, &len);
    ck_assert_uint_eq(len, EVT_MIN_SIZE);
    struct evt_reader r;
    struct evt_view v;
    ck_assert_int_eq(evt_reader_init(&r, buf, len), EVT_OK);
    ck_assert(r.h.flags & EVT_FLAG_WRAP);
    ck_assert_uint_eq(r.h.current_record, total + 1);
    uint32_t expect = r.h.oldest_record, count = 0;
    ck_assert_uint_gt(expect, 1);
    int rc;
    while ((rc = evt_reader_next(&r, &v)) == 1) {
        ck_assert_uint_eq(v.record_number, expect);
        const unsigned char *t;
        size_t units;
        ck_assert_int_eq(evt_view_string(&v, 0, &t, &units), EVT_OK);
        char want[32];
        snprintf(want, sizeof want, "event %u ", (unsigned)expect);
        ck_assert_int_eq(strncmp(u8(t, units), want, strlen(want)), 0);
        expect++;
        count++;
    }
    ck_assert_int_eq(rc, 0);
    ck_assert_uint_eq(expect, total + 1);
    ck_assert_uint_gt(count, 5);
    evt_reader_free(&r);
    free(buf);
    remove(path);
}
END_TEST

START_TEST(too_large_record_is_refused)
{
    char path[64];
    temp_path(path, sizeof path, "large");
    struct evt_journal j;
    ck_assert_int_eq(evt_journal_open(&j, path, EVT_MIN_SIZE), EVT_OK);
    static uint16_t big[3000];
    for (int i = 0; i < 2999; i++)
        big[i] = 'x';
    const uint16_t *strs[] = { big };
    struct evt_event ev = seed_event(strs, 1, NULL, 0);
    ck_assert_int_eq(evt_journal_append(&j, &ev, NULL), EVT_E_TOO_LARGE);
    const uint16_t *small[] = { w("still works") };
    ev = seed_event(small, 1, NULL, 0);
    uint32_t num = 0;
    ck_assert_int_eq(evt_journal_append(&j, &ev, &num), EVT_OK);
    ck_assert_uint_eq(num, 1);
    evt_journal_close(&j);
    remove(path);
}
END_TEST

/* Every truncation of a journal, linear or wrapped, is an error, not a crash
 * (ASan watches the reads). */
static void check_truncations(const char *name, uint32_t max, uint32_t events)
{
    char path[64];
    temp_path(path, sizeof path, name);
    struct evt_journal j;
    ck_assert_int_eq(evt_journal_open(&j, path, max), EVT_OK);
    for (uint32_t i = 0; i < events; i++) {
        const uint16_t *strs[] = { w("truncate me please") };
        struct evt_event ev = seed_event(strs, 1, (const unsigned char *)"abcdefgh", 8);
        ck_assert_int_eq(evt_journal_append(&j, &ev, NULL), EVT_OK);
    }
    evt_journal_close(&j);
    size_t len;
    unsigned char *buf = load(path, &len);
    uint32_t n = 0;
    ck_assert_int_eq(evt_validate(buf, len, &n), EVT_OK);
    ck_assert_uint_gt(n, 0);
    for (size_t cut = 0; cut < len; cut++) {
        unsigned char *copy = malloc(cut ? cut : 1);
        memcpy(copy, buf, cut);
        int rc = evt_validate(copy, cut, NULL);
        ck_assert_msg(rc < 0, "%s: cut at %lu accepted", name, (unsigned long)cut);
        free(copy);
    }
    free(buf);
    remove(path);
}

START_TEST(truncated_files_are_errors)
{
    check_truncations("trunc_linear", 0x10000, 5);
    check_truncations("trunc_wrapped", EVT_MIN_SIZE, 120);
    struct evt_header h;
    unsigned char hb[EVT_HEADER_SIZE] = { 0 };
    ck_assert_int_eq(evt_header_decode(hb, 10, &h), EVT_E_TRUNCATED);
    ck_assert_str_eq(evt_strerror(EVT_E_TRUNCATED),
                     "the file is truncated (it ends before its header or records say)");
}
END_TEST

START_TEST(corrupt_files_are_errors)
{
    char path[64];
    temp_path(path, sizeof path, "corrupt");
    struct evt_journal j;
    ck_assert_int_eq(evt_journal_open(&j, path, 0x10000), EVT_OK);
    for (int i = 0; i < 3; i++) {
        const uint16_t *strs[] = { w("x") };
        struct evt_event ev = seed_event(strs, 1, NULL, 0);
        ck_assert_int_eq(evt_journal_append(&j, &ev, NULL), EVT_OK);
    }
    evt_journal_close(&j);
    size_t len;
    unsigned char *buf = load(path, &len);
    unsigned char *copy = malloc(len);
    /* Damage each DWORD of the structure in turn: lengths, signatures and
     * offsets must all be caught; only the record payload goes unchecked. */
    int caught = 0, tried = 0;
    for (size_t off = 0; off + 4 <= len; off += 4) {
        memcpy(copy, buf, len);
        copy[off] ^= 0x5a;
        copy[off + 1] ^= 0xa5;
        int rc = evt_validate(copy, len, NULL);
        tried++;
        if (rc < 0)
            caught++;
    }
    ck_assert_int_gt(caught, 0);
    ck_assert_int_lt(caught, tried);
    /* Header's end offset pointing at a record, not the end-of-file record. */
    memcpy(copy, buf, len);
    copy[0x14] = 0x30; copy[0x15] = 0; copy[0x16] = 0; copy[0x17] = 0;
    ck_assert_int_eq(evt_validate(copy, len, NULL), EVT_E_CORRUPT);
    /* A reopened damaged journal is refused, not extended. */
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0x30 + 4, SEEK_SET);
    fputc('X', f);
    fclose(f);
    ck_assert_int_eq(evt_journal_open(&j, path, 0x10000), EVT_E_CORRUPT);
    free(copy);
    free(buf);
    remove(path);
}
END_TEST

START_TEST(utf16_to_utf8)
{
    unsigned char le[] = { 'a', 0, 0xe9, 0, 0x3d, 0xd8, 0x00, 0xde, 0x00, 0xd8, 'b', 0 };
    char out[32];
    size_t n = evt_utf16le_to_utf8(le, 6, out, sizeof out);
    ck_assert_str_eq(out, "a\xc3\xa9\xf0\x9f\x98\x80\xef\xbf\xbd" "b");
    ck_assert_uint_eq(n, strlen(out));
    char small[4];
    ck_assert_uint_eq(evt_utf16le_to_utf8(le, 6, small, sizeof small), n);
    ck_assert_str_eq(small, "a\xc3\xa9");
}
END_TEST

Suite *evt_suite(void)
{
    Suite *s = suite_create("evt");
    TCase *tc = tcase_create("format");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, record_round_trip);
    tcase_add_test(tc, record_parse_rejects_bad_offsets);
    tcase_add_test(tc, header_and_eof_layout);
    tcase_add_test(tc, new_journal_is_empty_and_valid);
    tcase_add_test(tc, journal_appends_and_reopens);
    tcase_add_test(tc, journal_wraps_keeping_newest);
    tcase_add_test(tc, too_large_record_is_refused);
    tcase_add_test(tc, truncated_files_are_errors);
    tcase_add_test(tc, corrupt_files_are_errors);
    tcase_add_test(tc, utf16_to_utf8);
    suite_add_tcase(s, tc);
    return s;
}
