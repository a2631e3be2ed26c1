/* fuzz_evt.c - libFuzzer harness for the .evt readers.
 *
 * Any bytes as a whole journal: evt_validate and a strict reader walk must
 * end with a status, never read out of bounds; every record either reader
 * yields must parse again on its own, and every string in it must convert
 * to UTF-8. The reader that skips damage must end (0) on any file whose
 * header it accepts, with record numbers rising; on a file the strict reader
 * accepts it must read the same records and report no damage. A rebuilt
 * image must pass the strict reader with exactly the records skipping read.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "evt.h"

static void check_strings(const struct evt_view *v)
{
    for (unsigned i = 0; i < v->nstrings; i++) {
        const unsigned char *t;
        size_t units;
        if (evt_view_string(v, i, &t, &units) != EVT_OK)
            continue;
        char out[256];
        evt_utf16le_to_utf8(t, units, out, sizeof out);
        if (memchr(out, 0, sizeof out) == NULL)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t count = 0;
    int valid = evt_validate(data, size, &count);

    struct evt_reader r;
    struct evt_view v;
    uint32_t seen = 0;
    int rc = evt_reader_init(&r, data, size);
    if (rc == EVT_OK) {
        while ((rc = evt_reader_next(&r, &v)) == 1) {
            seen++;
            struct evt_view again;
            if (evt_record_parse(v.raw, v.length, &again) != EVT_OK || again.length != v.length)
                abort();
            check_strings(&v);
        }
        evt_reader_free(&r);
    }
    /* The validator and a reader walk must agree on what a good file is. */
    if ((valid == EVT_OK) != (rc == 0))
        abort();
    if (valid == EVT_OK && seen != count)
        abort();

    /* Skipping damage. */
    uint32_t read = 0, prev = 0;
    rc = evt_reader_init_flags(&r, data, size, EVT_READ_SKIP_DAMAGED);
    int skip_ok = rc == EVT_OK;
    if (skip_ok) {
        while ((rc = evt_reader_next(&r, &v)) == 1) {
            if (read && v.record_number <= prev)
                abort();
            prev = v.record_number;
            read++;
            struct evt_view again;
            if (evt_record_parse(v.raw, v.length, &again) != EVT_OK)
                abort();
            check_strings(&v);
        }
        if (rc != 0)
            abort();
        if (valid == EVT_OK && (read != count || r.skipped || r.stretches || !r.eof_found))
            abort();
        if (r.stretches > r.skipped && r.skipped == 0 && r.eof_found)
            abort(); /* a damaged stretch before an end-of-file record costs a record */
        evt_reader_free(&r);
    }
    if (valid == EVT_OK && !skip_ok)
        abort();

    unsigned char *img;
    size_t img_len;
    struct evt_scan scan;
    rc = evt_rebuild(data, size, &img, &img_len, &scan);
    if ((rc == EVT_OK) != skip_ok)
        abort();
    if (rc == EVT_OK) {
        uint32_t n = 0;
        if (evt_validate(img, img_len, &n) != EVT_OK || n != read || scan.records != read)
            abort();
        if (scan.clean != (valid == EVT_OK))
            abort();
        free(img);
    }
    return 0;
}
