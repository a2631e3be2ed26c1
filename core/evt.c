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
    if (len > EVT_MAX_FILE || len % 4u)
        return len % 4u ? EVT_E_TRUNCATED : EVT_E_CORRUPT;
    const struct evt_header *h = &r->h;
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

int evt_reader_next(struct evt_reader *r, struct evt_view *v)
{
    if (!r || !v || !r->buf)
        return EVT_E_ARG;
    if (r->done)
        return 0;
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

/* Journal --------------------------------------------------------------------- */

static int write_at(FILE *f, uint32_t off, const void *p, size_t n)
{
    if (fseek(f, (long)off, SEEK_SET) != 0)
        return EVT_E_IO;
    if (n && fwrite(p, 1, n, f) != n)
        return EVT_E_IO;
    return EVT_OK;
}

static int zero_at(FILE *f, uint32_t off, size_t n)
{
    static const unsigned char zeros[4096];
    if (fseek(f, (long)off, SEEK_SET) != 0)
        return EVT_E_IO;
    while (n) {
        size_t k = n < sizeof zeros ? n : sizeof zeros;
        if (fwrite(zeros, 1, k, f) != k)
            return EVT_E_IO;
        n -= k;
    }
    return EVT_OK;
}

/* Write into the circular region [HEADER, file_size); src NULL writes zeros. */
static int ring_write(struct evt_journal *j, uint32_t pos, const unsigned char *src, size_t n)
{
    size_t first = j->file_size - pos < n ? j->file_size - pos : n;
    int rc = src ? write_at(j->f, pos, src, first) : zero_at(j->f, pos, first);
    if (rc == EVT_OK && n > first)
        rc = src ? write_at(j->f, EVT_HEADER_SIZE, src + first, n - first)
                 : zero_at(j->f, EVT_HEADER_SIZE, n - first);
    return rc;
}

static int write_header(struct evt_journal *j)
{
    unsigned char hb[EVT_HEADER_SIZE];
    evt_header_encode(&j->h, hb);
    int rc = write_at(j->f, 0, hb, sizeof hb);
    if (rc == EVT_OK && fflush(j->f) != 0)
        rc = EVT_E_IO;
    return rc;
}

static uint32_t journal_max(uint32_t max_size)
{
    max_size &= ~3u;
    return max_size < EVT_MIN_SIZE ? EVT_MIN_SIZE : max_size;
}

int evt_journal_open_fp(struct evt_journal *j, FILE *f, uint32_t max_size)
{
    if (!j || !f)
        return EVT_E_ARG;
    memset(j, 0, sizeof *j);
    unsigned char *buf;
    size_t len;
    int rc = evt_slurp(f, &buf, &len);
    if (rc)
        return rc;
    j->f = f;
    if (len == 0) {
        free(buf);
        j->h.start_offset = EVT_HEADER_SIZE;
        j->h.end_offset = EVT_HEADER_SIZE;
        j->h.current_record = 1;
        j->h.oldest_record = 0;
        j->h.max_size = journal_max(max_size);
        j->file_size = EVT_HEADER_SIZE + EVT_EOF_SIZE;
        unsigned char eof[EVT_EOF_SIZE];
        evt_eof_encode(&j->h, eof);
        rc = write_at(f, EVT_HEADER_SIZE, eof, sizeof eof);
        if (rc == EVT_OK)
            rc = write_header(j);
    } else {
        rc = evt_validate(buf, len, NULL);
        if (rc == EVT_OK) {
            evt_header_decode(buf, len, &j->h);
            j->h.flags &= ~EVT_FLAG_DIRTY;
            if (j->h.flags & EVT_FLAG_WRAP) {
                j->file_size = (uint32_t)len;
                if (j->h.max_size != len)
                    j->h.max_size = (uint32_t)len;
            } else {
                /* Still growing: the new bound applies, never below what is in use. */
                j->file_size = j->h.end_offset + EVT_EOF_SIZE;
                j->h.max_size = journal_max(max_size);
                if (j->h.max_size < j->file_size)
                    j->h.max_size = j->file_size;
            }
        }
        free(buf);
    }
    if (rc)
        memset(j, 0, sizeof *j);
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

int evt_journal_append_raw(struct evt_journal *j, unsigned char *rec, size_t len, uint32_t *number)
{
    if (!j || !j->f || !rec || len < EVT_RECORD_FIXED + 8u || len % 4u)
        return EVT_E_ARG;
    if ((uint64_t)len + EVT_EOF_SIZE > (uint64_t)j->h.max_size - EVT_HEADER_SIZE)
        return EVT_E_TOO_LARGE;
    struct evt_header h = j->h;
    uint32_t num = h.current_record;
    put32(rec + 0x08, num);

    uint32_t end = h.end_offset;
    uint32_t new_end;
    unsigned char eof[EVT_EOF_SIZE];
    int rc;

    if (!(h.flags & EVT_FLAG_WRAP) && (uint64_t)end + len + EVT_EOF_SIZE <= h.max_size) {
        /* Growing: append after the last record. */
        new_end = end + (uint32_t)len;
        if (h.oldest_record == 0)
            h.oldest_record = num;
        h.current_record = num + 1;
        h.end_offset = new_end;
        evt_eof_encode(&h, eof);
        rc = write_at(j->f, end, rec, len);
        if (rc == EVT_OK)
            rc = write_at(j->f, new_end, eof, sizeof eof);
        if (rc == EVT_OK) {
            j->file_size = new_end + EVT_EOF_SIZE;
            j->h = h;
            rc = write_header(j);
        }
        if (rc == EVT_OK && number)
            *number = num;
        return rc;
    }

    if (!(h.flags & EVT_FLAG_WRAP)) {
        /* Full for the first time: the file takes its maximum size and the
         * region after the header becomes circular. */
        rc = zero_at(j->f, j->file_size, h.max_size - j->file_size);
        if (rc)
            return rc;
        j->file_size = h.max_size;
        h.flags |= EVT_FLAG_WRAP;
    }
    uint32_t cap = j->file_size - EVT_HEADER_SIZE;
    uint32_t used = (end + cap - h.start_offset) % cap;
    while ((uint64_t)used + len + EVT_EOF_SIZE > cap) {
        unsigned char lb[4];
        uint32_t pos = h.start_offset;
        if (used == 0)
            return EVT_E_TOO_LARGE;
        if (fseek(j->f, (long)pos, SEEK_SET) != 0 || fread(lb, 1, 4, j->f) != 4)
            return EVT_E_IO;
        uint32_t old = get32(lb);
        if (old < EVT_RECORD_FIXED + 8u || old % 4u || old > used)
            return EVT_E_CORRUPT;
        h.start_offset = EVT_HEADER_SIZE + (pos - EVT_HEADER_SIZE + old) % cap;
        used -= old;
        h.oldest_record++;
    }
    if (used == 0)
        h.oldest_record = num;
    new_end = EVT_HEADER_SIZE + (uint32_t)((end - EVT_HEADER_SIZE + (uint64_t)len) % cap);
    h.current_record = num + 1;
    h.end_offset = new_end;
    evt_eof_encode(&h, eof);
    rc = ring_write(j, end, rec, len);
    if (rc == EVT_OK)
        rc = ring_write(j, new_end, eof, sizeof eof);
    if (rc == EVT_OK) {
        /* Clear what the dropped records left, so no reader resurrects them. */
        uint32_t gap_at = EVT_HEADER_SIZE + (new_end - EVT_HEADER_SIZE + EVT_EOF_SIZE) % cap;
        uint32_t gap = cap - used - (uint32_t)len - EVT_EOF_SIZE;
        rc = ring_write(j, gap_at, NULL, gap);
    }
    if (rc == EVT_OK) {
        j->h = h;
        rc = write_header(j);
    }
    if (rc == EVT_OK && number)
        *number = num;
    return rc;
}

int evt_journal_append(struct evt_journal *j, const struct evt_event *ev, uint32_t *number)
{
    if (!j || !j->f)
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
    if (j && j->f) {
        fflush(j->f);
        fclose(j->f);
    }
    if (j)
        memset(j, 0, sizeof *j);
}
