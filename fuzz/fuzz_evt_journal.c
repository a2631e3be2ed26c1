/* fuzz_evt_journal.c - libFuzzer harness for the journal writer on a disk
 * that fills and empties.
 *
 * The input is a program: each step appends an event (its string length
 * from the input), changes how many bytes the disk has for the file, or
 * reopens the journal with another size bound. The store is a file in
 * memory whose writes past the disk's limit write what fits and fail, as a
 * full disk does. After every step the file must pass the strict reader and
 * hold exactly the records whose appends succeeded (the newest ones, once
 * wrapped), numbered without gaps; a reopen must never find damage.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "evt.h"

#define STEPS 64

struct memfile {
    unsigned char *p;
    size_t len, limit;
};

static unsigned long mem_read_at(void *ctx, uint32_t off, void *buf, size_t n)
{
    struct memfile *m = ctx;
    if ((uint64_t)off + n > m->len)
        return EIO;
    memcpy(buf, m->p + off, n);
    return 0;
}

static int mem_resize(struct memfile *m, size_t len)
{
    if (len > m->len) {
        unsigned char *p = realloc(m->p, len);
        if (!p)
            abort();
        memset(p + m->len, 0, len - m->len);
        m->p = p;
    }
    m->len = len;
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
    return fits < n ? ENOSPC : 0;
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
    return (unsigned long)mem_resize(m, size);
}

/* The file is sound and its records run without a gap to last, the
 * newest appended; before the file wraps none is dropped. */
static void check_file(const struct memfile *m, uint32_t last)
{
    struct evt_reader r;
    struct evt_view v;
    if (evt_reader_init(&r, m->p, m->len) != EVT_OK)
        abort();
    uint32_t first = r.h.oldest_record, want = first, n = 0;
    int rc;
    while ((rc = evt_reader_next(&r, &v)) == 1) {
        if (v.record_number != want)
            abort();
        want++;
        n++;
    }
    evt_reader_free(&r);
    if (rc != 0)
        abort();
    if (n == 0 ? last != 0 : want != last + 1)
        abort();
    if (!(r.h.flags & EVT_FLAG_WRAP) && n && first != 1)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    struct memfile m = { 0 };
    m.limit = (size_t)data[0] * 64u;
    uint32_t bound = EVT_MIN_SIZE + (uint32_t)(data[1] & 3u) * 0x400u;
    struct evt_store io = { &m, mem_read_at, mem_write_at, mem_get_size, mem_set_size };
    struct evt_journal j;
    int open = evt_journal_open_store(&j, &io, bound) == EVT_OK;
    uint32_t last = 0; /* number of the newest record appended */
    static uint16_t text[600];
    static const uint16_t src[] = { 'I', 'M', 'S', 'v', 'c', 0 };

    /* At most STEPS steps, so each input runs in milliseconds. */
    for (size_t i = 2; i + 1 < size && i < 2 + 2 * STEPS; i += 2) {
        uint8_t op = data[i], arg = data[i + 1];
        if (!open) {
            m.limit = m.limit + 64u * arg;
            open = evt_journal_open_store(&j, &io, bound) == EVT_OK;
            if (open && j.repaired)
                abort();
            continue;
        }
        if (op < 200) {
            size_t units = (size_t)arg * 2u + (op & 7u);
            for (size_t k = 0; k < units; k++)
                text[k] = (uint16_t)('a' + k % 26);
            text[units] = 0;
            const uint16_t *strs[] = { text };
            struct evt_event ev = { 0 };
            ev.event_id = 0xC0001000u | op;
            ev.event_type = 1;
            ev.source = src;
            ev.computer = src;
            ev.nstrings = 1;
            ev.strings = strs;
            uint32_t num = 0;
            uint32_t before = j.h.current_record;
            int rc = evt_journal_append(&j, &ev, &num);
            if (rc == EVT_OK) {
                if (num != before)
                    abort();
                last = num;
            } else if (rc != EVT_E_IO && rc != EVT_E_TOO_LARGE) {
                abort();
            } else if (j.h.current_record != before) {
                abort();
            }
        } else if (op < 240) {
            m.limit = (size_t)arg * 64u; /* the disk fills or empties */
        } else {
            bound = EVT_MIN_SIZE + (uint32_t)(arg & 7u) * 0x400u;
            open = evt_journal_open_store(&j, &io, bound) == EVT_OK;
            if (open && j.repaired)
                abort();
        }
        if (m.len)
            check_file(&m, last);
    }
    free(m.p);
    return 0;
}
