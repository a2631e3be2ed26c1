/* check_evt.c - the .evt format: records, header, end-of-file record, the
 * journal's wrap-around and reserved space, appends on a full disk (a store
 * in memory with a capacity, failing as a disk does), the strict reader's
 * refusal of damaged files, the reader that skips damage, and repair. */
#include <check.h>
#include <errno.h>
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
    ck_assert(j.reserved);
    ck_assert(!j.repaired);
    evt_journal_close(&j);
    size_t len;
    unsigned char *buf = load(path, &len);
    /* The space is reserved up to MaxSize, zeros after the end-of-file record. */
    ck_assert_uint_eq(len, 0x10000);
    for (size_t i = EVT_HEADER_SIZE + EVT_EOF_SIZE; i < len; i++)
        ck_assert_uint_eq(buf[i], 0);
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
    ck_assert_uint_eq(len, 0x10000);
    ck_assert_uint_lt(r.h.end_offset + EVT_EOF_SIZE, len);
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

/* Every truncation of a journal that cuts into its records or end-of-file
 * record, linear or wrapped, is an error to the strict reader, not a crash
 * (ASan watches the reads); the reader that skips damage reads every record
 * still whole before the cut, in order, and says what it lost. */
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
    struct evt_header h;
    ck_assert_int_eq(evt_header_decode(buf, len, &h), EVT_OK);
    int wrapped = (h.flags & EVT_FLAG_WRAP) != 0;
    size_t used = wrapped ? len : h.end_offset + EVT_EOF_SIZE;
    /* Every cut up to just past what is in use, then a sample of the rest. */
    for (size_t cut = 0; cut < len; cut += cut < used + 64 ? 1 : 997) {
        unsigned char *copy = malloc(cut ? cut : 1);
        memcpy(copy, buf, cut);
        int rc = evt_validate(copy, cut, NULL);
        if (cut < used)
            ck_assert_msg(rc < 0, "%s: cut at %lu accepted", name, (unsigned long)cut);
        else /* only reserved free space was cut */
            ck_assert_msg(rc == EVT_OK, "%s: cut at %lu refused", name, (unsigned long)cut);
        struct evt_reader r;
        struct evt_view v;
        if (evt_reader_init_flags(&r, copy, cut, EVT_READ_SKIP_DAMAGED) == EVT_OK) {
            uint32_t got = 0, prev = 0;
            while ((rc = evt_reader_next(&r, &v)) == 1) {
                ck_assert(got == 0 || v.record_number > prev);
                prev = v.record_number;
                got++;
            }
            ck_assert_int_eq(rc, 0);
            if (!wrapped && cut >= EVT_HEADER_SIZE) {
                /* Every record wholly before the cut is read. */
                uint32_t whole = 0;
                for (uint32_t at = EVT_HEADER_SIZE; at < h.end_offset && at + rd32(buf + at) <= cut;
                     at += rd32(buf + at))
                    whole++;
                ck_assert_uint_eq(got, whole);
                if (cut < used)
                    ck_assert(!r.eof_found);
                if (cut < used && got < n)
                    ck_assert_uint_ge(r.skipped, 1);
            }
            evt_reader_free(&r);
        } else {
            ck_assert(cut < EVT_HEADER_SIZE || wrapped);
        }
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
    /* A reopened journal with a damaged record is repaired: the damaged
     * record goes, the others stay, numbering goes on. */
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0x30 + 4, SEEK_SET);
    fputc('X', f);
    fclose(f);
    ck_assert_int_eq(evt_journal_open(&j, path, 0x10000), EVT_OK);
    ck_assert(j.repaired);
    ck_assert_uint_eq(j.repair.records, 2);
    ck_assert_uint_eq(j.repair.skipped, 1);
    ck_assert_uint_eq(j.h.oldest_record, 2);
    ck_assert_uint_eq(j.h.current_record, 4);
    evt_journal_close(&j);
    free(buf);
    buf = load(path, &len);
    uint32_t n = 0;
    ck_assert_int_eq(evt_validate(buf, len, &n), EVT_OK);
    ck_assert_uint_eq(n, 2);
    /* A header that is not a journal's cannot be repaired. */
    f = fopen(path, "r+b");
    fseek(f, 4, SEEK_SET);
    fputc('X', f);
    fclose(f);
    ck_assert_int_eq(evt_journal_open(&j, path, 0x10000), EVT_E_CORRUPT);
    free(copy);
    free(buf);
    remove(path);
}
END_TEST

/* A file in memory behind the journal's store, on a disk with `limit` bytes
 * for it: a write past the limit writes what fits and fails with ENOSPC, as
 * a full disk does; writes inside the file's length always succeed. */
struct memfile {
    unsigned char *p;
    size_t len, alloc, limit;
    unsigned writes_failed;
};

static void mem_resize(struct memfile *m, size_t len)
{
    if (len > m->alloc) {
        size_t a = m->alloc ? m->alloc : 256;
        while (a < len)
            a *= 2;
        m->p = realloc(m->p, a);
        ck_assert_ptr_nonnull(m->p);
        m->alloc = a;
    }
    if (len > m->len)
        memset(m->p + m->len, 0, len - m->len);
    m->len = len;
}

static unsigned long mem_read_at(void *ctx, uint32_t off, void *buf, size_t n)
{
    struct memfile *m = ctx;
    if ((uint64_t)off + n > m->len)
        return EIO;
    memcpy(buf, m->p + off, n);
    return 0;
}

static unsigned long mem_write_at(void *ctx, uint32_t off, const void *buf, size_t n)
{
    struct memfile *m = ctx;
    size_t end = (size_t)off + n, fits = n;
    if (end > m->len && end > m->limit)
        fits = off >= m->limit ? 0 : m->limit - off;
    if (off + fits > m->len)
        mem_resize(m, off + fits);
    if (fits)
        memcpy(m->p + off, buf, fits);
    if (fits < n) {
        m->writes_failed++;
        return ENOSPC;
    }
    return 0;
}

static unsigned long mem_get_size(void *ctx, uint64_t *size)
{
    *size = ((struct memfile *)ctx)->len;
    return 0;
}

static unsigned long mem_set_size(void *ctx, uint32_t size)
{
    struct memfile *m = ctx;
    if (size > m->len && size > m->limit)
        return ENOSPC;
    mem_resize(m, size);
    return 0;
}

static struct evt_store mem_store(struct memfile *m)
{
    struct evt_store s = { m, mem_read_at, mem_write_at, mem_get_size, mem_set_size };
    return s;
}

static struct evt_event numbered_event(uint32_t i)
{
    static char text[160];
    snprintf(text, sizeof text, "event %u %.*s", (unsigned)i, (int)(i * 13 % 90),
             "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890");
    static const uint16_t *strs[1];
    strs[0] = w(text);
    return seed_event(strs, 1, (const unsigned char *)"\x04\x00\x04\x00\x70\x00\x00\x00", 8);
}

/* The file strictly valid, holding records first..last in order. */
static void expect_records(const struct memfile *m, uint32_t first, uint32_t last)
{
    struct evt_reader r;
    struct evt_view v;
    ck_assert_int_eq(evt_reader_init(&r, m->p, m->len), EVT_OK);
    uint32_t want = first;
    int rc;
    while ((rc = evt_reader_next(&r, &v)) == 1) {
        ck_assert_uint_eq(v.record_number, want);
        const unsigned char *t;
        size_t units;
        ck_assert_int_eq(evt_view_string(&v, 0, &t, &units), EVT_OK);
        char prefix[32];
        snprintf(prefix, sizeof prefix, "event %u ", (unsigned)want);
        ck_assert_int_eq(strncmp(u8(t, units), prefix, strlen(prefix)), 0);
        want++;
    }
    ck_assert_int_eq(rc, 0);
    ck_assert_uint_eq(want, last + 1);
    evt_reader_free(&r);
}

/* The disk fills while the journal grows (it could not reserve its space):
 * for every size the disk may have left, an append that does not fit fails
 * with the disk's error, the file keeps exactly the records before it
 * (header and end-of-file record consistent, no trace of the failed
 * record), and once space is back the numbering goes on without a gap. */
START_TEST(full_disk_keeps_journal_valid)
{
    for (size_t limit = 0; limit < 2600; limit += 3) {
        struct memfile m = { 0 };
        m.limit = limit;
        struct evt_store io = mem_store(&m);
        struct evt_journal j;
        int rc = evt_journal_open_store(&j, &io, 0x10000);
        if (limit < EVT_HEADER_SIZE + EVT_EOF_SIZE) {
            ck_assert_int_eq(rc, EVT_E_IO);
            ck_assert_uint_eq(j.error, ENOSPC);
            ck_assert_uint_eq(m.len, 0); /* cut back: no half header */
            free(m.p);
            continue;
        }
        ck_assert_int_eq(rc, EVT_OK);
        ck_assert(!j.reserved);
        ck_assert_uint_eq(j.error, ENOSPC);
        ck_assert_uint_eq(m.len, EVT_HEADER_SIZE + EVT_EOF_SIZE);
        uint32_t ok = 0;
        for (uint32_t i = 1; i <= 40; i++) {
            struct evt_event ev = numbered_event(ok + 1);
            size_t before = m.len;
            rc = evt_journal_append(&j, &ev, NULL);
            if (rc == EVT_OK) {
                ok++;
                continue;
            }
            ck_assert_int_eq(rc, EVT_E_IO);
            ck_assert_uint_eq(j.error, ENOSPC);
            ck_assert_uint_eq(m.len, before); /* the failed tail was cut off */
            ck_assert_uint_eq(j.h.current_record, ok + 1);
            expect_records(&m, 1, ok);
        }
        ck_assert_uint_gt(m.writes_failed, 0);
        /* Space is back: the next record is numbered straight on, and a
         * reopen finds the file sound (nothing to repair) and reserves. */
        m.limit = (size_t)-1;
        struct evt_event ev = numbered_event(ok + 1);
        uint32_t num = 0;
        ck_assert_int_eq(evt_journal_append(&j, &ev, &num), EVT_OK);
        ck_assert_uint_eq(num, ok + 1);
        expect_records(&m, 1, ok + 1);
        ck_assert_int_eq(evt_journal_open_store(&j, &io, 0x10000), EVT_OK);
        ck_assert(!j.repaired);
        ck_assert(j.reserved);
        ck_assert_uint_eq(m.len, 0x10000);
        expect_records(&m, 1, ok + 1);
        free(m.p);
    }
}
END_TEST

/* With its space reserved, a journal on a disk that is now full goes on
 * taking events, through its first wrap and beyond: every write is inside
 * the file. */
START_TEST(reserved_journal_needs_no_space)
{
    struct memfile m = { 0 };
    m.limit = (size_t)-1;
    struct evt_store io = mem_store(&m);
    struct evt_journal j;
    ck_assert_int_eq(evt_journal_open_store(&j, &io, EVT_MIN_SIZE), EVT_OK);
    ck_assert(j.reserved);
    ck_assert_uint_eq(m.len, EVT_MIN_SIZE);
    m.limit = 0; /* not one more byte */
    for (uint32_t i = 1; i <= 200; i++) {
        struct evt_event ev = numbered_event(i);
        ck_assert_int_eq(evt_journal_append(&j, &ev, NULL), EVT_OK);
    }
    ck_assert_uint_eq(m.writes_failed, 0);
    ck_assert(j.h.flags & EVT_FLAG_WRAP);
    ck_assert_uint_eq(m.len, EVT_MIN_SIZE);
    expect_records(&m, j.h.oldest_record, 200);
    free(m.p);
}
END_TEST

/* A journal of n records in m. */
static void journal_of(uint32_t n, struct evt_journal *j, struct memfile *m)
{
    memset(m, 0, sizeof *m);
    m->limit = (size_t)-1;
    struct evt_store io = mem_store(m);
    ck_assert_int_eq(evt_journal_open_store(j, &io, 0x10000), EVT_OK);
    for (uint32_t i = 1; i <= n; i++) {
        struct evt_event ev = numbered_event(i);
        ck_assert_int_eq(evt_journal_append(j, &ev, NULL), EVT_OK);
    }
}

static uint32_t record_offset(const struct memfile *m, uint32_t number)
{
    uint32_t at = EVT_HEADER_SIZE;
    for (uint32_t i = 1; i < number; i++)
        at += rd32(m->p + at);
    return at;
}

/* Walk skipping damage: the record numbers read, in *got (up to 64). */
static uint32_t walk(const struct memfile *m, uint32_t *got, struct evt_reader *out)
{
    struct evt_reader r;
    struct evt_view v;
    ck_assert_int_eq(evt_reader_init_flags(&r, m->p, m->len, EVT_READ_SKIP_DAMAGED), EVT_OK);
    uint32_t n = 0;
    int rc;
    while ((rc = evt_reader_next(&r, &v)) == 1) {
        ck_assert_uint_lt(n, 64);
        got[n++] = v.record_number;
    }
    ck_assert_int_eq(rc, 0);
    evt_reader_free(&r);
    *out = r;
    return n;
}

/* What the journal of the first release left on a full disk: the head of a
 * record written over the end-of-file record, the rest cut off, the header
 * not updated. The strict reader refuses it; the reader that skips damage
 * shows every earlier record and counts one lost; open repairs it. */
START_TEST(reader_skips_cut_off_record)
{
    struct evt_journal j;
    struct memfile m;
    journal_of(6, &j, &m);
    uint32_t end = j.h.end_offset;
    unsigned char rec[512];
    struct evt_event ev = numbered_event(7);
    size_t len = evt_record_build(&ev, 7, rec, sizeof rec);
    ck_assert_uint_gt(len, 0);
    m.len = end; /* the file as it was, then the cut record */
    mem_resize(&m, end + len / 2);
    memcpy(m.p + end, rec, len / 2);
    ck_assert_int_eq(evt_validate(m.p, m.len, NULL), EVT_E_CORRUPT);

    uint32_t got[64];
    struct evt_reader r;
    ck_assert_uint_eq(walk(&m, got, &r), 6);
    for (uint32_t i = 0; i < 6; i++)
        ck_assert_uint_eq(got[i], i + 1);
    ck_assert_uint_eq(r.skipped, 1);
    ck_assert_uint_eq(r.stretches, 1);
    ck_assert(!r.eof_found);

    struct evt_store io = mem_store(&m);
    ck_assert_int_eq(evt_journal_open_store(&j, &io, 0x10000), EVT_OK);
    ck_assert(j.repaired);
    ck_assert_uint_eq(j.repair.records, 6);
    ck_assert_uint_eq(j.repair.skipped, 1);
    ck_assert(!j.repair.clean);
    ck_assert(j.reserved);
    expect_records(&m, 1, 6);
    ev = numbered_event(7);
    uint32_t num = 0;
    ck_assert_int_eq(evt_journal_append(&j, &ev, &num), EVT_OK);
    ck_assert_uint_eq(num, 7);
    expect_records(&m, 1, 7);
    free(m.p);
}
END_TEST

START_TEST(reader_skips_damage_in_the_middle)
{
    struct evt_journal j;
    struct memfile m;
    journal_of(8, &j, &m);
    /* One record's signature. */
    m.p[record_offset(&m, 3) + 4] ^= 0x20;
    uint32_t got[64];
    struct evt_reader r;
    ck_assert_uint_eq(walk(&m, got, &r), 7);
    static const uint32_t want1[] = { 1, 2, 4, 5, 6, 7, 8 };
    ck_assert_mem_eq(got, want1, sizeof want1);
    ck_assert_uint_eq(r.skipped, 1);
    ck_assert(r.eof_found);
    m.p[record_offset(&m, 3) + 4] ^= 0x20;

    /* Three records zeroed: the numbering says three were lost. */
    uint32_t from = record_offset(&m, 4), to = record_offset(&m, 7);
    memset(m.p + from, 0, to - from);
    ck_assert_uint_eq(walk(&m, got, &r), 5);
    static const uint32_t want2[] = { 1, 2, 3, 7, 8 };
    ck_assert_mem_eq(got, want2, sizeof want2);
    ck_assert_uint_eq(r.skipped, 3);
    ck_assert_uint_eq(r.stretches, 1);
    ck_assert(r.eof_found);

    /* The first record's length: the reader resynchronises on record 2. */
    m.p[EVT_HEADER_SIZE] ^= 0x04;
    ck_assert_uint_eq(walk(&m, got, &r), 4);
    ck_assert_uint_eq(got[0], 2);
    ck_assert_uint_eq(r.skipped, 4);
    ck_assert_uint_eq(r.stretches, 2);

    /* Rebuilt: a strictly valid file of the four, numbering kept. */
    unsigned char *img;
    size_t img_len;
    struct evt_scan scan;
    ck_assert_int_eq(evt_rebuild(m.p, m.len, &img, &img_len, &scan), EVT_OK);
    ck_assert_uint_eq(scan.records, 4);
    ck_assert_uint_eq(scan.skipped, 4);
    ck_assert(scan.eof_found);
    ck_assert(!scan.clean);
    uint32_t n = 0;
    ck_assert_int_eq(evt_validate(img, img_len, &n), EVT_OK);
    ck_assert_uint_eq(n, 4);
    struct evt_header h;
    ck_assert_int_eq(evt_header_decode(img, img_len, &h), EVT_OK);
    ck_assert_uint_eq(h.oldest_record, 2);
    ck_assert_uint_eq(h.current_record, 9);
    free(img);
    free(m.p);
}
END_TEST

/* A record written whole with its end-of-file record, but the header not
 * yet updated (a stop between the two writes): nothing is damaged, the
 * record is read, and open brings the header up to date. */
START_TEST(reader_follows_records_past_a_stale_header)
{
    struct evt_journal j;
    struct memfile m;
    journal_of(3, &j, &m);
    unsigned char old_header[EVT_HEADER_SIZE];
    memcpy(old_header, m.p, sizeof old_header);
    struct evt_event ev = numbered_event(4);
    ck_assert_int_eq(evt_journal_append(&j, &ev, NULL), EVT_OK);
    memcpy(m.p, old_header, sizeof old_header);
    ck_assert_int_eq(evt_validate(m.p, m.len, NULL), EVT_E_CORRUPT);
    uint32_t got[64];
    struct evt_reader r;
    ck_assert_uint_eq(walk(&m, got, &r), 4);
    ck_assert_uint_eq(got[3], 4);
    ck_assert_uint_eq(r.skipped, 0);
    ck_assert(r.eof_found);
    struct evt_store io = mem_store(&m);
    ck_assert_int_eq(evt_journal_open_store(&j, &io, 0x10000), EVT_OK);
    ck_assert(j.repaired);
    ck_assert_uint_eq(j.repair.skipped, 0);
    ck_assert_uint_eq(j.h.current_record, 5);
    expect_records(&m, 1, 4);
    free(m.p);
}
END_TEST

/* A wrapped journal with a damaged record: the rest is read in order, the
 * walk goes round at most once, and repair keeps what survives. */
START_TEST(reader_skips_damage_in_a_wrapped_file)
{
    struct memfile m = { 0 };
    m.limit = (size_t)-1;
    struct evt_store io = mem_store(&m);
    struct evt_journal j;
    ck_assert_int_eq(evt_journal_open_store(&j, &io, EVT_MIN_SIZE), EVT_OK);
    for (uint32_t i = 1; i <= 120; i++) {
        struct evt_event ev = numbered_event(i);
        ck_assert_int_eq(evt_journal_append(&j, &ev, NULL), EVT_OK);
    }
    ck_assert(j.h.flags & EVT_FLAG_WRAP);
    uint32_t oldest = j.h.oldest_record;
    /* Damage the record after the oldest (follow the ring). */
    uint32_t at = j.h.start_offset;
    at = EVT_HEADER_SIZE + (at - EVT_HEADER_SIZE + rd32(m.p + at)) % (EVT_MIN_SIZE - EVT_HEADER_SIZE);
    uint32_t sig = at + 5 < m.len ? at + 5 : EVT_HEADER_SIZE + (at + 5 - (uint32_t)m.len);
    m.p[sig] ^= 0xff;
    uint32_t got[64];
    struct evt_reader r;
    uint32_t n = walk(&m, got, &r);
    ck_assert_uint_eq(got[0], oldest);
    ck_assert_uint_eq(got[1], oldest + 2);
    ck_assert_uint_eq(got[n - 1], 120);
    ck_assert_uint_eq(n, 120 - oldest);
    ck_assert_uint_eq(r.skipped, 1);
    ck_assert(r.eof_found);
    ck_assert_int_eq(evt_journal_open_store(&j, &io, EVT_MIN_SIZE), EVT_OK);
    ck_assert(j.repaired);
    ck_assert_uint_eq(j.repair.records, n);
    uint32_t count = 0;
    ck_assert_int_eq(evt_validate(m.p, m.len, &count), EVT_OK);
    ck_assert_uint_eq(count, n);
    struct evt_event ev = numbered_event(121);
    uint32_t num = 0;
    ck_assert_int_eq(evt_journal_append(&j, &ev, &num), EVT_OK);
    ck_assert_uint_eq(num, 121);
    free(m.p);
}
END_TEST

/* Numbers only rise: after a record numbered 0xFFFFFFFF no later one can
 * follow, so the walk takes what comes after as damage (found by fuzzing). */
START_TEST(reader_stops_after_the_last_number)
{
    struct evt_journal j;
    struct memfile m;
    journal_of(3, &j, &m);
    uint32_t r1 = record_offset(&m, 1), r2 = record_offset(&m, 2);
    m.p[r1 + 8] = 0xfe; m.p[r1 + 9] = 0xff; m.p[r1 + 10] = 0xff; m.p[r1 + 11] = 0xff;
    m.p[r2 + 8] = 0xff; m.p[r2 + 9] = 0xff; m.p[r2 + 10] = 0xff; m.p[r2 + 11] = 0xff;
    uint32_t got[64];
    struct evt_reader r;
    ck_assert_uint_eq(walk(&m, got, &r), 2);
    ck_assert_uint_eq(got[0], 0xfffffffeu);
    ck_assert_uint_eq(got[1], 0xffffffffu);
    ck_assert_uint_ge(r.skipped, 1);
    free(m.p);
}
END_TEST

/* A lower JournalMaxKB gives back reserved space past what is in use. */
START_TEST(lower_bound_gives_space_back)
{
    struct evt_journal j;
    struct memfile m;
    journal_of(5, &j, &m);
    ck_assert_uint_eq(m.len, 0x10000);
    struct evt_store io = mem_store(&m);
    ck_assert_int_eq(evt_journal_open_store(&j, &io, 0x2000), EVT_OK);
    ck_assert_uint_eq(m.len, 0x2000);
    ck_assert_uint_eq(j.h.max_size, 0x2000);
    expect_records(&m, 1, 5);
    free(m.p);
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
    tcase_add_test(tc, full_disk_keeps_journal_valid);
    tcase_add_test(tc, reserved_journal_needs_no_space);
    tcase_add_test(tc, reader_skips_cut_off_record);
    tcase_add_test(tc, reader_skips_damage_in_the_middle);
    tcase_add_test(tc, reader_follows_records_past_a_stale_header);
    tcase_add_test(tc, reader_skips_damage_in_a_wrapped_file);
    tcase_add_test(tc, reader_stops_after_the_last_number);
    tcase_add_test(tc, lower_bound_gives_space_back);
    suite_add_tcase(s, tc);
    return s;
}
