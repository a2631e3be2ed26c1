/* evt.c - build, parse, read and append classic NT .evt event logs.
 *
 * See evt.h for the layers. Offsets inside the file are 32-bit; every sum of
 * an offset and a length read from the file is done in 64 bits and checked
 * against the bytes actually present before anything is touched.
 */
#include "evt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#include <io.h>
#else
#include <unistd.h>
#endif

#define EOF_SIG1 0x11111111u
#define EOF_SIG2 0x22222222u
#define EOF_SIG3 0x33333333u
#define EOF_SIG4 0x44444444u

/* Largest single record we build or accept: far more than any event. */
#define EVT_RECORD_MAX 0x01000000u

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static void put16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t get16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint64_t align4(uint64_t v)
{
    return (v + 3u) & ~(uint64_t)3u;
}

static size_t u16len(const uint16_t *s)
{
    size_t n = 0;
    if (s)
        while (s[n])
            n++;
    return n;
}

const char *evt_strerror(int status)
{
    switch (status) {
    case EVT_OK: return "no error";
    case EVT_E_ARG: return "invalid argument";
    case EVT_E_IO: return "read or write failed";
    case EVT_E_NOMEM: return "out of memory";
    case EVT_E_TRUNCATED: return "the file is truncated (it ends before its header or records say)";
    case EVT_E_CORRUPT: return "the file is corrupt (a signature, size or offset is inconsistent)";
    case EVT_E_TOO_LARGE: return "the record is larger than the journal can hold";
    default: return "unknown error";
    }
}

/* Header and end-of-file record ---------------------------------------------- */

void evt_header_encode(const struct evt_header *h, unsigned char out[EVT_HEADER_SIZE])
{
    put32(out + 0x00, EVT_HEADER_SIZE);
    put32(out + 0x04, EVT_SIGNATURE);
    put32(out + 0x08, EVT_VERSION_MAJOR);
    put32(out + 0x0c, EVT_VERSION_MINOR);
    put32(out + 0x10, h->start_offset);
    put32(out + 0x14, h->end_offset);
    put32(out + 0x18, h->current_record);
    put32(out + 0x1c, h->oldest_record);
    put32(out + 0x20, h->max_size);
    put32(out + 0x24, h->flags);
    put32(out + 0x28, h->retention);
    put32(out + 0x2c, EVT_HEADER_SIZE);
}

int evt_header_decode(const unsigned char *buf, size_t len, struct evt_header *h)
{
    if (len < EVT_HEADER_SIZE)
        return EVT_E_TRUNCATED;
    if (get32(buf) != EVT_HEADER_SIZE || get32(buf + 0x04) != EVT_SIGNATURE ||
        get32(buf + 0x2c) != EVT_HEADER_SIZE || get32(buf + 0x08) != EVT_VERSION_MAJOR ||
        get32(buf + 0x0c) != EVT_VERSION_MINOR)
        return EVT_E_CORRUPT;
    h->start_offset = get32(buf + 0x10);
    h->end_offset = get32(buf + 0x14);
    h->current_record = get32(buf + 0x18);
    h->oldest_record = get32(buf + 0x1c);
    h->max_size = get32(buf + 0x20);
    h->flags = get32(buf + 0x24);
    h->retention = get32(buf + 0x28);
    return EVT_OK;
}

void evt_eof_encode(const struct evt_header *h, unsigned char out[EVT_EOF_SIZE])
{
    put32(out + 0x00, EVT_EOF_SIZE);
    put32(out + 0x04, EOF_SIG1);
    put32(out + 0x08, EOF_SIG2);
    put32(out + 0x0c, EOF_SIG3);
    put32(out + 0x10, EOF_SIG4);
    put32(out + 0x14, h->start_offset);
    put32(out + 0x18, h->end_offset);
    put32(out + 0x1c, h->current_record);
    put32(out + 0x20, h->oldest_record);
    put32(out + 0x24, EVT_EOF_SIZE);
}

int evt_eof_decode(const unsigned char *buf, size_t len, struct evt_header *h)
{
    if (len < EVT_EOF_SIZE)
        return EVT_E_TRUNCATED;
    if (get32(buf) != EVT_EOF_SIZE || get32(buf + 0x04) != EOF_SIG1 ||
        get32(buf + 0x08) != EOF_SIG2 || get32(buf + 0x0c) != EOF_SIG3 ||
        get32(buf + 0x10) != EOF_SIG4 || get32(buf + 0x24) != EVT_EOF_SIZE)
        return EVT_E_CORRUPT;
    h->start_offset = get32(buf + 0x14);
    h->end_offset = get32(buf + 0x18);
    h->current_record = get32(buf + 0x1c);
    h->oldest_record = get32(buf + 0x20);
    return EVT_OK;
}

/* Records -------------------------------------------------------------------- */

size_t evt_record_size(const struct evt_event *ev)
{
    if (!ev || (ev->nstrings && !ev->strings) || (ev->sid_len && !ev->sid) ||
        (ev->data_len && !ev->data))
        return 0;
    uint64_t off = EVT_RECORD_FIXED;
    off += 2u * ((uint64_t)u16len(ev->source) + 1u);
    off += 2u * ((uint64_t)u16len(ev->computer) + 1u);
    off = align4(off) + ev->sid_len;
    for (unsigned i = 0; i < ev->nstrings; i++)
        off += 2u * ((uint64_t)u16len(ev->strings[i]) + 1u);
    off = align4(off + ev->data_len) + 4u;
    return off > EVT_RECORD_MAX ? 0 : (size_t)off;
}

static size_t put_text(unsigned char *p, const uint16_t *s)
{
    size_t n = u16len(s);
    for (size_t i = 0; i < n; i++)
        put16(p + 2 * i, s[i]);
    put16(p + 2 * n, 0);
    return 2 * (n + 1);
}

size_t evt_record_build(const struct evt_event *ev, uint32_t record_number,
                        unsigned char *buf, size_t cap)
{
    size_t total = evt_record_size(ev);
    if (total == 0 || !buf || cap < total)
        return 0;
    memset(buf, 0, total);
    size_t off = EVT_RECORD_FIXED;
    off += put_text(buf + off, ev->source);
    off += put_text(buf + off, ev->computer);
    off = (size_t)align4(off);
    size_t sid_off = off;
    if (ev->sid_len)
        memcpy(buf + off, ev->sid, ev->sid_len);
    off += ev->sid_len;
    size_t str_off = off;
    for (unsigned i = 0; i < ev->nstrings; i++)
        off += put_text(buf + off, ev->strings[i]);
    size_t data_off = off;
    if (ev->data_len)
        memcpy(buf + off, ev->data, ev->data_len);

    put32(buf + 0x00, (uint32_t)total);
    put32(buf + 0x04, EVT_SIGNATURE);
    put32(buf + 0x08, record_number);
    put32(buf + 0x0c, ev->time_generated);
    put32(buf + 0x10, ev->time_written);
    put32(buf + 0x14, ev->event_id);
    put16(buf + 0x18, ev->event_type);
    put16(buf + 0x1a, ev->nstrings);
    put16(buf + 0x1c, ev->category);
    put16(buf + 0x1e, 0);
    put32(buf + 0x20, 0);
    put32(buf + 0x24, (uint32_t)str_off);
    put32(buf + 0x28, ev->sid_len);
    put32(buf + 0x2c, (uint32_t)sid_off);
    put32(buf + 0x30, ev->data_len);
    put32(buf + 0x34, (uint32_t)data_off);
    put32(buf + total - 4, (uint32_t)total);
    return total;
}

/* Offset just past the NUL of the UTF-16 string at off, or 0 if none before
 * end. *units gets its length. */
static size_t scan_text(const unsigned char *buf, size_t off, size_t end, size_t *units)
{
    size_t n = 0;
    while (off + 2 <= end) {
        if (buf[off] == 0 && buf[off + 1] == 0) {
            if (units)
                *units = n;
            return off + 2;
        }
        off += 2;
        n++;
    }
    return 0;
}

int evt_record_parse(const unsigned char *buf, size_t len, struct evt_view *v)
{
    if (!buf || !v)
        return EVT_E_ARG;
    if (len < 8)
        return EVT_E_TRUNCATED;
    uint32_t length = get32(buf);
    if (get32(buf + 4) != EVT_SIGNATURE)
        return EVT_E_CORRUPT;
    if (length < EVT_RECORD_FIXED + 8u || length % 4u || length > EVT_RECORD_MAX)
        return EVT_E_CORRUPT;
    if (length > len)
        return EVT_E_TRUNCATED;
    if (get32(buf + length - 4) != length)
        return EVT_E_CORRUPT;
    size_t end = length - 4u;

    memset(v, 0, sizeof *v);
    v->length = length;
    v->raw = buf;
    v->record_number = get32(buf + 0x08);
    v->time_generated = get32(buf + 0x0c);
    v->time_written = get32(buf + 0x10);
    v->event_id = get32(buf + 0x14);
    v->event_type = get16(buf + 0x18);
    v->nstrings = get16(buf + 0x1a);
    v->category = get16(buf + 0x1c);
    uint32_t str_off = get32(buf + 0x24);
    uint32_t sid_len = get32(buf + 0x28);
    uint32_t sid_off = get32(buf + 0x2c);
    uint32_t data_len = get32(buf + 0x30);
    uint32_t data_off = get32(buf + 0x34);

    size_t off = scan_text(buf, EVT_RECORD_FIXED, end, &v->source_units);
    if (!off)
        return EVT_E_CORRUPT;
    v->source = buf + EVT_RECORD_FIXED;
    v->computer = buf + off;
    if (!scan_text(buf, off, end, &v->computer_units))
        return EVT_E_CORRUPT;

    if (sid_len) {
        if (sid_off < EVT_RECORD_FIXED || (uint64_t)sid_off + sid_len > end)
            return EVT_E_CORRUPT;
        v->sid = buf + sid_off;
        v->sid_len = sid_len;
    }
    if (v->nstrings) {
        if (str_off < EVT_RECORD_FIXED || str_off > end)
            return EVT_E_CORRUPT;
        size_t p = str_off;
        for (unsigned i = 0; i < v->nstrings; i++) {
            p = scan_text(buf, p, end, NULL);
            if (!p)
                return EVT_E_CORRUPT;
        }
        v->strings = buf + str_off;
        v->strings_bytes = p - str_off;
    }
    if (data_len) {
        if (data_off < EVT_RECORD_FIXED || (uint64_t)data_off + data_len > end)
            return EVT_E_CORRUPT;
        v->data = buf + data_off;
        v->data_len = data_len;
    }
    return EVT_OK;
}

int evt_view_string(const struct evt_view *v, unsigned idx,
                    const unsigned char **text, size_t *units)
{
    if (!v || idx >= v->nstrings)
        return EVT_E_ARG;
    size_t p = 0, n = 0;
    for (unsigned i = 0;; i++) {
        size_t next = scan_text(v->strings, p, v->strings_bytes, &n);
        if (!next)
            return EVT_E_CORRUPT;
        if (i == idx) {
            *text = v->strings + p;
            *units = n;
            return EVT_OK;
        }
        p = next;
    }
}

static size_t put_utf8(char *out, size_t cap, size_t at, uint32_t cp)
{
    unsigned char tmp[4];
    size_t n;
    if (cp < 0x80) {
        tmp[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        tmp[0] = (unsigned char)(0xc0 | cp >> 6);
        tmp[1] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        tmp[0] = (unsigned char)(0xe0 | cp >> 12);
        tmp[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        tmp[2] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        tmp[0] = (unsigned char)(0xf0 | cp >> 18);
        tmp[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
        tmp[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        tmp[3] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    if (at + n < cap) /* whole characters only, leaving room for the NUL */
        memcpy(out + at, tmp, n);
    return n;
}

size_t evt_utf16le_to_utf8(const unsigned char *le, size_t units, char *out, size_t cap)
{
    size_t at = 0, kept = 0;
    for (size_t i = 0; i < units; i++) {
        uint32_t c = get16(le + 2 * i);
        if (c >= 0xd800 && c < 0xdc00 && i + 1 < units) {
            uint32_t d = get16(le + 2 * (i + 1));
            if (d >= 0xdc00 && d < 0xe000) {
                c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
                i++;
            } else {
                c = 0xfffd;
            }
        } else if (c >= 0xd800 && c < 0xe000) {
            c = 0xfffd;
        }
        at += put_utf8(out, cap, at, c);
        if (at < cap) /* put_utf8 wrote it whole; once one misses, all later do */
            kept = at;
    }
    if (cap)
        out[kept] = 0;
    return at;
}

/* Reader ---------------------------------------------------------------------- */

/* Copy n bytes starting at pos in the circular region [HEADER, len). */
static void ring_copy(const unsigned char *buf, size_t len, uint32_t pos, unsigned char *dst, size_t n)
{
    size_t first = len - pos < n ? len - pos : n;
    memcpy(dst, buf + pos, first);
    if (n > first)
        memcpy(dst + first, buf + EVT_HEADER_SIZE, n - first);
}

int evt_reader_init(struct evt_reader *r, const unsigned char *buf, size_t len)
{
    if (!r || (!buf && len))
        return EVT_E_ARG;
    memset(r, 0, sizeof *r);
    int rc = evt_header_decode(buf, len, &r->h);
    if (rc)
        return rc;
    const struct evt_header *h = &r->h;
    /* A file that never wrapped may carry free space after its end-of-file
     * record (reserved, or a write that failed past it): only a wrapped file
     * must be exactly its ring. */
    if (!(h->flags & EVT_FLAG_WRAP))
        len &= ~(size_t)3u;
    if (len > EVT_MAX_FILE || len % 4u)
        return len % 4u ? EVT_E_TRUNCATED : EVT_E_CORRUPT;
    if (h->start_offset < EVT_HEADER_SIZE || h->end_offset < EVT_HEADER_SIZE ||
        h->start_offset % 4u || h->end_offset % 4u)
        return EVT_E_CORRUPT;
    if (h->start_offset >= len || h->end_offset >= len)
        return EVT_E_TRUNCATED;
    if (!(h->flags & EVT_FLAG_WRAP) && (uint64_t)h->end_offset + EVT_EOF_SIZE > len)
        return EVT_E_TRUNCATED;
    if ((h->flags & EVT_FLAG_WRAP) && len < h->max_size)
        return EVT_E_TRUNCATED;
    if (len - EVT_HEADER_SIZE < EVT_EOF_SIZE)
        return EVT_E_TRUNCATED;
    r->buf = buf;
    r->len = len;
    r->pos = h->start_offset;
    return EVT_OK;
}

int evt_reader_init_flags(struct evt_reader *r, const unsigned char *buf, size_t len,
                          unsigned flags)
{
    if (!(flags & EVT_READ_SKIP_DAMAGED))
        return evt_reader_init(r, buf, len);
    if (!r || (!buf && len))
        return EVT_E_ARG;
    memset(r, 0, sizeof *r);
    int rc = evt_header_decode(buf, len, &r->h);
    if (rc)
        return rc;
    if (len > EVT_MAX_FILE)
        return EVT_E_CORRUPT;
    len &= ~(size_t)3u;
    const struct evt_header *h = &r->h;
    uint32_t start = h->start_offset;
    int start_ok = start >= EVT_HEADER_SIZE && start % 4u == 0 && start < len;
    if (!start_ok) {
        /* Records of a file that never wrapped begin after the header; in a
         * wrapped one nothing says where the oldest record is. */
        if (h->flags & EVT_FLAG_WRAP)
            return EVT_E_CORRUPT;
        start = EVT_HEADER_SIZE;
    }
    r->buf = buf;
    r->len = len;
    r->pos = start;
    r->flags = flags;
    r->expect = h->oldest_record ? h->oldest_record : h->current_record;
    return EVT_OK;
}

static int next_strict(struct evt_reader *r, struct evt_view *v)
{
    const struct evt_header *h = &r->h;
    size_t region = r->len - EVT_HEADER_SIZE;
    unsigned char head[EVT_EOF_SIZE];

    ring_copy(r->buf, r->len, r->pos, head, 8);
    if (get32(head) == EVT_EOF_SIZE && get32(head + 4) == EOF_SIG1) {
        struct evt_header e;
        ring_copy(r->buf, r->len, r->pos, head, EVT_EOF_SIZE);
        int rc = evt_eof_decode(head, sizeof head, &e);
        if (rc)
            return EVT_E_CORRUPT;
        if (r->pos != h->end_offset)
            return EVT_E_CORRUPT;
        if (!(h->flags & EVT_FLAG_DIRTY) &&
            (e.start_offset != h->start_offset || e.end_offset != h->end_offset ||
             e.current_record != h->current_record || e.oldest_record != h->oldest_record))
            return EVT_E_CORRUPT;
        r->done = 1;
        r->eof_found = 1;
        return 0;
    }
    if (r->pos == h->end_offset)
        return EVT_E_CORRUPT; /* the end-of-file record is missing */

    uint32_t length = get32(head);
    size_t dist = (h->end_offset + region - r->pos) % region; /* bytes left before EOF record */
    if (get32(head + 4) != EVT_SIGNATURE || length < EVT_RECORD_FIXED + 8u || length % 4u ||
        length > dist)
        return EVT_E_CORRUPT;

    const unsigned char *rec;
    if ((size_t)r->pos + length <= r->len) {
        rec = r->buf + r->pos;
    } else {
        if (r->scratch_cap < length) {
            unsigned char *p = realloc(r->scratch, length);
            if (!p)
                return EVT_E_NOMEM;
            r->scratch = p;
            r->scratch_cap = length;
        }
        ring_copy(r->buf, r->len, r->pos, r->scratch, length);
        rec = r->scratch;
    }
    int rc = evt_record_parse(rec, length, v);
    if (rc)
        return rc == EVT_E_TRUNCATED ? EVT_E_CORRUPT : rc;
    r->walked += length;
    r->pos = (uint32_t)(EVT_HEADER_SIZE + (r->pos - EVT_HEADER_SIZE + (size_t)length) % region);
    return 1;
}

/* Damage-skipping walk: what lies at the current position, within room
 * bytes: 1 a record that parses and is not older than one already read (*v,
 * its length in *n), 2 an end-of-file record (*e), 0 neither, <0 no memory. */
static int probe(struct evt_reader *r, uint64_t room, struct evt_view *v, uint32_t *n,
                 struct evt_header *e)
{
    unsigned char head[EVT_EOF_SIZE];
    if (room < 8)
        return 0;
    ring_copy(r->buf, r->len, r->pos, head, 8);
    if (get32(head) == EVT_EOF_SIZE && get32(head + 4) == EOF_SIG1) {
        if (room < EVT_EOF_SIZE)
            return 0;
        ring_copy(r->buf, r->len, r->pos, head, EVT_EOF_SIZE);
        return evt_eof_decode(head, sizeof head, e) == EVT_OK ? 2 : 0;
    }
    uint32_t length = get32(head);
    if (get32(head + 4) != EVT_SIGNATURE || length < EVT_RECORD_FIXED + 8u || length % 4u ||
        length > EVT_RECORD_MAX || length > room)
        return 0;
    const unsigned char *rec;
    if ((size_t)r->pos + length <= r->len) {
        rec = r->buf + r->pos;
    } else {
        if (r->scratch_cap < length) {
            unsigned char *p = realloc(r->scratch, length);
            if (!p)
                return EVT_E_NOMEM;
            r->scratch = p;
            r->scratch_cap = length;
        }
        ring_copy(r->buf, r->len, r->pos, r->scratch, length);
        rec = r->scratch;
    }
    if (evt_record_parse(rec, length, v) != EVT_OK)
        return 0;
    /* Stale: left over from before, not part of this log (nothing follows
     * a record numbered 0xFFFFFFFF, where expect wrapped to 0). */
    if (r->yielded && (v->record_number < r->expect || r->expect == 0))
        return 0;
    *n = length;
    return 1;
}

/* A damaged stretch of bytes ended where record number next (when known)
 * was found: count what the numbering says is missing when that is
 * plausible for the bytes lost, else one record. */
static void note_damage(struct evt_reader *r, uint32_t next, int known, uint64_t bytes)
{
    uint64_t bound = bytes / (EVT_RECORD_FIXED + 8u) + 1u;
    uint32_t missing = 1;
    if (known && next > r->expect && next - r->expect <= bound)
        missing = next - r->expect;
    r->skipped += missing;
    r->stretches++;
}

/* The walk ran out of file without an end-of-file record: the records the
 * header counts beyond the last one read are lost (as far as a file of its
 * size could hold them), and a damaged tail is at least one record. */
static void note_end(struct evt_reader *r, uint64_t lost)
{
    uint64_t size = r->h.max_size > r->len ? r->h.max_size : r->len;
    if (size > EVT_MAX_FILE)
        size = EVT_MAX_FILE;
    uint64_t bound = size / (EVT_RECORD_FIXED + 8u);
    uint32_t missing = lost ? 1 : 0;
    if (r->h.current_record > r->expect && r->h.current_record - r->expect <= bound &&
        r->h.current_record - r->expect > missing)
        missing = r->h.current_record - r->expect;
    if (missing || lost) {
        r->skipped += missing;
        r->stretches++;
    }
    r->done = 1;
}

static void advance(struct evt_reader *r, uint32_t n)
{
    r->walked += n;
    if (r->h.flags & EVT_FLAG_WRAP)
        r->pos = (uint32_t)(EVT_HEADER_SIZE + (r->pos - EVT_HEADER_SIZE + (size_t)n) %
                                                  (r->len - EVT_HEADER_SIZE));
    else
        r->pos += n;
}

static int next_skipping(struct evt_reader *r, struct evt_view *v)
{
    int wrapped = (r->h.flags & EVT_FLAG_WRAP) != 0;
    uint64_t region = r->len - EVT_HEADER_SIZE, lost = 0;
    for (;;) {
        /* A wrapped file is walked around at most once. */
        uint64_t room = wrapped ? region - r->walked : r->len - r->pos;
        struct evt_header e;
        uint32_t n = 0;
        int k = probe(r, room, v, &n, &e);
        if (k < 0)
            return k;
        if (k == 1) {
            if (lost)
                note_damage(r, v->record_number, 1, lost);
            r->expect = v->record_number + 1u;
            r->yielded = 1;
            advance(r, n);
            return 1;
        }
        if (k == 2) {
            if (lost)
                note_damage(r, e.current_record, 1, lost);
            r->eof_found = 1;
            r->done = 1;
            return 0;
        }
        if (room < 4) {
            note_end(r, lost + room);
            return 0;
        }
        advance(r, 4);
        lost += 4;
    }
}

int evt_reader_next(struct evt_reader *r, struct evt_view *v)
{
    if (!r || !v || !r->buf)
        return EVT_E_ARG;
    if (r->done)
        return 0;
    return (r->flags & EVT_READ_SKIP_DAMAGED) ? next_skipping(r, v) : next_strict(r, v);
}

void evt_reader_free(struct evt_reader *r)
{
    if (!r)
        return;
    free(r->scratch);
    r->scratch = NULL;
    r->scratch_cap = 0;
}

int evt_validate(const unsigned char *buf, size_t len, uint32_t *count)
{
    struct evt_reader r;
    struct evt_view v;
    uint32_t n = 0;
    int rc = evt_reader_init(&r, buf, len);
    while (rc == EVT_OK) {
        rc = evt_reader_next(&r, &v);
        if (rc == 1) {
            n++;
            rc = EVT_OK;
        } else if (rc == 0) {
            break;
        }
    }
    evt_reader_free(&r);
    if (rc == EVT_OK && count)
        *count = n;
    return rc;
}

int evt_rebuild(const unsigned char *buf, size_t len, unsigned char **out, size_t *out_len,
                struct evt_scan *scan)
{
    if (!out || !out_len)
        return EVT_E_ARG;
    *out = NULL;
    *out_len = 0;
    struct evt_scan sc = { 0 };
    sc.clean = evt_validate(buf, len, NULL) == EVT_OK;

    /* Two walks: the size, then the copy (a split record's view is only
     * valid until the next call). */
    struct evt_reader r;
    struct evt_view v;
    uint64_t total = EVT_HEADER_SIZE + EVT_EOF_SIZE;
    int rc = evt_reader_init_flags(&r, buf, len, EVT_READ_SKIP_DAMAGED);
    if (rc)
        return rc;
    while ((rc = evt_reader_next(&r, &v)) == 1)
        total += v.length;
    evt_reader_free(&r);
    if (rc < 0)
        return rc;
    if (total > EVT_MAX_FILE)
        return EVT_E_CORRUPT;
    unsigned char *img = malloc((size_t)total);
    if (!img)
        return EVT_E_NOMEM;

    evt_reader_init_flags(&r, buf, len, EVT_READ_SKIP_DAMAGED);
    size_t at = EVT_HEADER_SIZE;
    uint32_t first = 0, last = 0;
    while ((rc = evt_reader_next(&r, &v)) == 1) {
        if (at + v.length > total - EVT_EOF_SIZE) { /* the walks disagree: cannot happen */
            rc = EVT_E_CORRUPT;
            break;
        }
        memcpy(img + at, v.raw, v.length);
        at += v.length;
        if (!sc.records)
            first = v.record_number;
        last = v.record_number;
        sc.records++;
    }
    sc.skipped = r.skipped;
    sc.stretches = r.stretches;
    sc.eof_found = r.eof_found;
    struct evt_header h = r.h;
    evt_reader_free(&r);
    if (rc < 0) {
        free(img);
        return rc;
    }
    struct evt_header nh = { 0 };
    nh.start_offset = EVT_HEADER_SIZE;
    nh.end_offset = (uint32_t)at;
    nh.current_record = h.current_record;
    if (sc.records && last + 1u > nh.current_record)
        nh.current_record = last + 1u;
    if (nh.current_record == 0)
        nh.current_record = 1;
    nh.oldest_record = sc.records ? first : 0;
    nh.max_size = h.max_size > EVT_MAX_FILE ? EVT_MAX_FILE : h.max_size & ~3u;
    if (nh.max_size < at + EVT_EOF_SIZE)
        nh.max_size = (uint32_t)(at + EVT_EOF_SIZE);
    nh.flags = 0;
    nh.retention = h.retention;
    evt_header_encode(&nh, img);
    evt_eof_encode(&nh, img + at);
    *out = img;
    *out_len = at + EVT_EOF_SIZE;
    if (scan)
        *scan = sc;
    return EVT_OK;
}

int evt_slurp(FILE *f, unsigned char **buf, size_t *len)
{
    if (!f || !buf || !len)
        return EVT_E_ARG;
    *buf = NULL;
    *len = 0;
    if (fseek(f, 0, SEEK_END) != 0)
        return EVT_E_IO;
    long size = ftell(f);
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0)
        return EVT_E_IO;
    if ((unsigned long)size > EVT_MAX_FILE)
        return EVT_E_CORRUPT;
    unsigned char *p = malloc(size ? (size_t)size : 1u);
    if (!p)
        return EVT_E_NOMEM;
    if (size && fread(p, 1, (size_t)size, f) != (size_t)size) {
        free(p);
        return EVT_E_IO;
    }
    *buf = p;
    *len = (size_t)size;
    return EVT_OK;
}

/* The stdio store ---------------------------------------------------------------- */

static unsigned long stdio_error(FILE *f)
{
    unsigned long e = errno ? (unsigned long)errno : (unsigned long)EIO;
    clearerr(f); /* the next call starts afresh */
    return e;
}

static unsigned long stdio_read_at(void *ctx, uint32_t off, void *buf, size_t n)
{
    FILE *f = ctx;
    errno = 0;
    if (fseek(f, (long)off, SEEK_SET) != 0 || (n && fread(buf, 1, n, f) != n))
        return stdio_error(f);
    return 0;
}

static unsigned long stdio_write_at(void *ctx, uint32_t off, const void *buf, size_t n)
{
    FILE *f = ctx;
    errno = 0;
    if (fseek(f, (long)off, SEEK_SET) != 0 || (n && fwrite(buf, 1, n, f) != n) || fflush(f) != 0)
        return stdio_error(f);
    return 0;
}

static unsigned long stdio_get_size(void *ctx, uint64_t *size)
{
    FILE *f = ctx;
    errno = 0;
    if (fseek(f, 0, SEEK_END) != 0)
        return stdio_error(f);
    long n = ftell(f);
    if (n < 0)
        return stdio_error(f);
    *size = (uint64_t)n;
    return 0;
}

static unsigned long stdio_set_size(void *ctx, uint32_t size)
{
    FILE *f = ctx;
    if (fflush(f) != 0)
        return stdio_error(f);
#ifdef _WIN32
    if (_chsize(_fileno(f), (long)size) != 0)
        return (unsigned long)errno;
#else
    if (ftruncate(fileno(f), (off_t)size) != 0)
        return (unsigned long)errno;
#endif
    return 0;
}

void evt_store_stdio(struct evt_store *s, FILE *f)
{
    if (!s)
        return;
    if (f)
        setvbuf(f, NULL, _IONBF, 0);
    s->ctx = f;
    s->read_at = stdio_read_at;
    s->write_at = stdio_write_at;
    s->get_size = stdio_get_size;
    s->set_size = stdio_set_size;
}

/* Journal --------------------------------------------------------------------- */

static int io_fail(struct evt_journal *j, unsigned long err)
{
    j->error = err ? err : (unsigned long)EIO;
    return EVT_E_IO;
}

static int write_at(struct evt_journal *j, uint32_t off, const void *p, size_t n)
{
    unsigned long e = n ? j->io.write_at(j->io.ctx, off, p, n) : 0;
    return e ? io_fail(j, e) : EVT_OK;
}

static int zero_at(struct evt_journal *j, uint32_t off, size_t n)
{
    static const unsigned char zeros[4096];
    while (n) {
        size_t k = n < sizeof zeros ? n : sizeof zeros;
        int rc = write_at(j, off, zeros, k);
        if (rc)
            return rc;
        off += (uint32_t)k;
        n -= k;
    }
    return EVT_OK;
}

/* Cut the file back to old_size after a write that may have grown it and
 * failed, so a full disk keeps no half-written tail; the write's error is
 * what the caller hears of. */
static void cut_back(struct evt_journal *j, uint32_t old_size)
{
    if (j->io.set_size)
        j->io.set_size(j->io.ctx, old_size);
    j->file_size = old_size;
}

/* Write (src NULL: zeros) at off, where the file may have to grow. */
static int grow_write(struct evt_journal *j, uint32_t off, const unsigned char *src, size_t n)
{
    uint32_t old = j->file_size;
    int rc = src ? write_at(j, off, src, n) : zero_at(j, off, n);
    if (rc) {
        if ((uint64_t)off + n > old)
            cut_back(j, old);
        return rc;
    }
    if ((uint64_t)off + n > j->file_size)
        j->file_size = off + (uint32_t)n;
    return EVT_OK;
}

/* Write into the circular region [HEADER, file_size); src NULL writes zeros. */
static int ring_write(struct evt_journal *j, uint32_t pos, const unsigned char *src, size_t n)
{
    size_t first = j->file_size - pos < n ? j->file_size - pos : n;
    int rc = src ? write_at(j, pos, src, first) : zero_at(j, pos, first);
    if (rc == EVT_OK && n > first)
        rc = src ? write_at(j, EVT_HEADER_SIZE, src + first, n - first)
                 : zero_at(j, EVT_HEADER_SIZE, n - first);
    return rc;
}

static int write_header(struct evt_journal *j, const struct evt_header *h)
{
    unsigned char hb[EVT_HEADER_SIZE];
    evt_header_encode(h, hb);
    return write_at(j, 0, hb, sizeof hb);
}

/* After a failed in-place write: put the end-of-file record the header on
 * disk names back where it was (best effort; the header was not touched). */
static void restore_eof(struct evt_journal *j)
{
    unsigned char eof[EVT_EOF_SIZE];
    unsigned long keep = j->error;
    evt_eof_encode(&j->h, eof);
    if (j->h.flags & EVT_FLAG_WRAP)
        ring_write(j, j->h.end_offset, eof, sizeof eof);
    else
        write_at(j, j->h.end_offset, eof, sizeof eof);
    j->error = keep;
}

static uint32_t journal_max(uint32_t max_size)
{
    max_size &= ~3u;
    return max_size < EVT_MIN_SIZE ? EVT_MIN_SIZE : max_size;
}

/* Rewrite a damaged file in place from what survives: records and the
 * end-of-file record first, the header last, then clear what is left. */
static int journal_repair(struct evt_journal *j, const unsigned char *buf, size_t len)
{
    unsigned char *img;
    size_t img_len;
    struct evt_scan scan;
    int rc = evt_rebuild(buf, len, &img, &img_len, &scan);
    if (rc)
        return rc;
    rc = grow_write(j, EVT_HEADER_SIZE, img + EVT_HEADER_SIZE, img_len - EVT_HEADER_SIZE);
    if (rc == EVT_OK)
        rc = write_at(j, 0, img, EVT_HEADER_SIZE);
    if (rc == EVT_OK) {
        evt_header_decode(img, img_len, &j->h);
        if (j->file_size > img_len) { /* stale bytes must not come back as records */
            unsigned long keep = j->error;
            zero_at(j, (uint32_t)img_len, j->file_size - img_len); /* best effort */
            j->error = keep;
        }
        j->repaired = 1;
        j->repair = scan;
    }
    free(img);
    return rc;
}

int evt_journal_open_store(struct evt_journal *j, const struct evt_store *io, uint32_t max_size)
{
    if (!j || !io || !io->read_at || !io->write_at || !io->get_size)
        return EVT_E_ARG;
    memset(j, 0, sizeof *j);
    j->io = *io;
    uint64_t size = 0;
    unsigned long e = io->get_size(io->ctx, &size);
    if (e)
        return io_fail(j, e);
    if (size > EVT_MAX_FILE)
        return EVT_E_CORRUPT;
    int rc = EVT_OK;
    if (size == 0) {
        j->h.start_offset = EVT_HEADER_SIZE;
        j->h.end_offset = EVT_HEADER_SIZE;
        j->h.current_record = 1;
        j->h.oldest_record = 0;
        j->h.max_size = journal_max(max_size);
        unsigned char first[EVT_HEADER_SIZE + EVT_EOF_SIZE];
        evt_header_encode(&j->h, first);
        evt_eof_encode(&j->h, first + EVT_HEADER_SIZE);
        rc = grow_write(j, 0, first, sizeof first);
    } else {
        unsigned char *buf = malloc((size_t)size);
        if (!buf)
            return EVT_E_NOMEM;
        e = io->read_at(io->ctx, 0, buf, (size_t)size);
        if (e) {
            free(buf);
            return io_fail(j, e);
        }
        j->file_size = (uint32_t)size;
        rc = evt_validate(buf, (size_t)size, NULL);
        if (rc == EVT_OK)
            evt_header_decode(buf, (size_t)size, &j->h);
        else
            rc = journal_repair(j, buf, (size_t)size);
        free(buf);
    }
    if (rc == EVT_OK) {
        j->h.flags &= ~EVT_FLAG_DIRTY;
        if (j->h.flags & EVT_FLAG_WRAP) {
            j->h.max_size = j->file_size; /* a wrapped ring keeps its size */
        } else {
            /* Still growing: the new bound applies, never below what is in use;
             * free space past a lower bound is given back. */
            uint32_t used = j->h.end_offset + EVT_EOF_SIZE;
            j->h.max_size = journal_max(max_size);
            if (j->h.max_size < used)
                j->h.max_size = used;
            if (j->file_size > j->h.max_size) {
                if (j->io.set_size && j->io.set_size(j->io.ctx, j->h.max_size) == 0)
                    j->file_size = j->h.max_size;
                else
                    j->h.max_size = j->file_size & ~3u;
            }
        }
        rc = write_header(j, &j->h);
    }
    if (rc == EVT_OK) {
        /* Reserve the space up to MaxSize now, as the classic logs were, so a
         * disk that fills later cannot stop the journal; where the disk has
         * no room now, the journal grows record by record instead. */
        if (!(j->h.flags & EVT_FLAG_WRAP) && j->file_size < j->h.max_size) {
            /* On failure j->error says why (a full disk); the open stands. */
            j->reserved = grow_write(j, j->file_size, NULL, j->h.max_size - j->file_size) == EVT_OK;
        } else {
            j->reserved = 1;
        }
    }
    if (rc) {
        unsigned long err = j->error;
        memset(j, 0, sizeof *j);
        j->error = err;
    }
    return rc;
}

int evt_journal_open_fp(struct evt_journal *j, FILE *f, uint32_t max_size)
{
    if (!j || !f)
        return EVT_E_ARG;
    struct evt_store s;
    evt_store_stdio(&s, f);
    int rc = evt_journal_open_store(j, &s, max_size);
    if (rc == EVT_OK)
        j->f = f;
    return rc;
}

int evt_journal_open(struct evt_journal *j, const char *path, uint32_t max_size)
{
    if (!j || !path)
        return EVT_E_ARG;
    FILE *f = fopen(path, "r+b");
    if (!f && errno == ENOENT)
        f = fopen(path, "w+b");
    if (!f)
        return EVT_E_IO;
    int rc = evt_journal_open_fp(j, f, max_size);
    if (rc)
        fclose(f);
    return rc;
}

/* Growing: the record goes after the last one. Its bytes past the current
 * end-of-file record, and the new end-of-file record, are written first:
 * they lie in free space, so if the disk is full nothing the file holds has
 * changed (and what was written is cut off again). Only then is the old
 * end-of-file record overwritten by the record's head, in place, and the
 * header updated. */
static int append_linear(struct evt_journal *j, const unsigned char *rec, size_t len,
                         struct evt_header *h)
{
    uint32_t end = h->end_offset, new_end = end + (uint32_t)len, old_size = j->file_size;
    unsigned char eof[EVT_EOF_SIZE];
    if (h->oldest_record == 0)
        h->oldest_record = h->current_record;
    h->current_record++;
    h->end_offset = new_end;
    evt_eof_encode(h, eof);
    int rc = grow_write(j, end + EVT_EOF_SIZE, rec + EVT_EOF_SIZE, len - EVT_EOF_SIZE);
    if (rc == EVT_OK) {
        rc = grow_write(j, new_end, eof, sizeof eof);
        if (rc && j->file_size > old_size)
            cut_back(j, old_size);
    }
    if (rc)
        return rc;
    rc = write_at(j, end, rec, EVT_EOF_SIZE);
    if (rc == EVT_OK)
        rc = write_header(j, h);
    if (rc)
        restore_eof(j);
    return rc;
}

/* Wrapped: every write is in place in a file of its full size. */
static int append_ring(struct evt_journal *j, const unsigned char *rec, size_t len,
                       struct evt_header *h)
{
    uint32_t cap = j->file_size - EVT_HEADER_SIZE;
    uint32_t end = h->end_offset, num = h->current_record;
    uint32_t used = (end + cap - h->start_offset) % cap;
    while ((uint64_t)used + len + EVT_EOF_SIZE > cap) {
        unsigned char lb[4];
        uint32_t pos = h->start_offset;
        if (used == 0)
            return EVT_E_TOO_LARGE;
        unsigned long e = j->io.read_at(j->io.ctx, pos, lb, 4);
        if (e)
            return io_fail(j, e);
        uint32_t old = get32(lb);
        if (old < EVT_RECORD_FIXED + 8u || old % 4u || old > used)
            return EVT_E_CORRUPT;
        h->start_offset = EVT_HEADER_SIZE + (pos - EVT_HEADER_SIZE + old) % cap;
        used -= old;
        h->oldest_record++;
    }
    if (used == 0)
        h->oldest_record = num;
    uint32_t new_end = EVT_HEADER_SIZE + (uint32_t)((end - EVT_HEADER_SIZE + (uint64_t)len) % cap);
    h->current_record = num + 1;
    h->end_offset = new_end;
    unsigned char eof[EVT_EOF_SIZE];
    evt_eof_encode(h, eof);
    int rc = ring_write(j, end, rec, len);
    if (rc == EVT_OK)
        rc = ring_write(j, new_end, eof, sizeof eof);
    if (rc == EVT_OK) {
        /* Clear what the dropped records left, so no reader resurrects them. */
        uint32_t gap_at = EVT_HEADER_SIZE + (new_end - EVT_HEADER_SIZE + EVT_EOF_SIZE) % cap;
        uint32_t gap = cap - used - (uint32_t)len - EVT_EOF_SIZE;
        rc = ring_write(j, gap_at, NULL, gap);
    }
    if (rc == EVT_OK)
        rc = write_header(j, h);
    if (rc)
        restore_eof(j);
    return rc;
}

int evt_journal_append_raw(struct evt_journal *j, unsigned char *rec, size_t len, uint32_t *number)
{
    if (!j || !j->io.write_at || !rec || len < EVT_RECORD_FIXED + 8u || len % 4u)
        return EVT_E_ARG;
    if ((uint64_t)len + EVT_EOF_SIZE > (uint64_t)j->h.max_size - EVT_HEADER_SIZE)
        return EVT_E_TOO_LARGE;
    struct evt_header h = j->h;
    uint32_t num = h.current_record;
    put32(rec + 0x08, num);
    int rc;
    if (!(h.flags & EVT_FLAG_WRAP) && (uint64_t)h.end_offset + len + EVT_EOF_SIZE <= h.max_size) {
        rc = append_linear(j, rec, len, &h);
    } else {
        if (!(h.flags & EVT_FLAG_WRAP)) {
            /* Full for the first time: the file takes its maximum size (if it
             * was not reserved) and the region after the header becomes
             * circular. */
            if (j->file_size < h.max_size) {
                rc = grow_write(j, j->file_size, NULL, h.max_size - j->file_size);
                if (rc)
                    return rc;
            }
            j->reserved = 1;
            h.flags |= EVT_FLAG_WRAP;
        }
        rc = append_ring(j, rec, len, &h);
    }
    if (rc)
        return rc;
    j->h = h;
    if (number)
        *number = num;
    return EVT_OK;
}

int evt_journal_append(struct evt_journal *j, const struct evt_event *ev, uint32_t *number)
{
    if (!j || !j->io.write_at)
        return EVT_E_ARG;
    size_t len = evt_record_size(ev);
    if (len == 0)
        return EVT_E_ARG;
    unsigned char *rec = malloc(len);
    if (!rec)
        return EVT_E_NOMEM;
    evt_record_build(ev, j->h.current_record, rec, len);
    int rc = evt_journal_append_raw(j, rec, len, number);
    free(rec);
    return rc;
}

void evt_journal_close(struct evt_journal *j)
{
    if (j && j->f)
        fclose(j->f);
    if (j)
        memset(j, 0, sizeof *j);
}
