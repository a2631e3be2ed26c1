/* fuzz_evt.c - libFuzzer harness for the .evt reader.
 *
 * Any bytes as a whole journal: evt_validate and a reader walk must end with
 * a status, never read out of bounds; every record the reader yields must
 * parse again on its own, and every string in it must convert to UTF-8.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "evt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t count = 0;
    int valid = evt_validate(data, size, &count);

    struct evt_reader r;
    uint32_t seen = 0;
    int rc = evt_reader_init(&r, data, size);
    if (rc == EVT_OK) {
        struct evt_view v;
        while ((rc = evt_reader_next(&r, &v)) == 1) {
            seen++;
            struct evt_view again;
            if (evt_record_parse(v.raw, v.length, &again) != EVT_OK || again.length != v.length)
                abort();
            for (unsigned i = 0; i < v.nstrings; i++) {
                const unsigned char *t;
                size_t units;
                if (evt_view_string(&v, i, &t, &units) != EVT_OK)
                    continue;
                char out[256];
                evt_utf16le_to_utf8(t, units, out, sizeof out);
                if (memchr(out, 0, sizeof out) == NULL)
                    abort();
            }
        }
        evt_reader_free(&r);
    }
    /* The validator and a reader walk must agree on what a good file is. */
    if ((valid == EVT_OK) != (rc == 0))
        abort();
    if (valid == EVT_OK && seen != count)
        abort();
    return 0;
}
