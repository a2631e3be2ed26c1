/* fuzz_tracklog.c - the tracking log's reader and the Message-ID scanner.
 *
 * Any line track_parse accepts is written back by track_format and reads
 * back the same (so `imsvc track` shows exactly what the service wrote);
 * the written line is one line; the Message-ID found is the same however
 * the input is cut, and stays within its bound.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tracklog.h"

static struct track_line a, b;
static char buf[TRACK_LINE_MAX];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (track_parse((const char *)data, size, &a) == 0) {
        int n = track_format(&a, buf, sizeof buf);
        if (n <= 2 || memchr(buf, '\n', (size_t)n - 1) || buf[n - 1] != '\n')
            abort();
        if (track_parse(buf, (size_t)n, &b) != 0 || memcmp(&a, &b, sizeof a) != 0)
            abort();
    }
    struct track_msgid whole, cut;
    track_msgid_init(&whole);
    track_msgid_feed(&whole, data, size);
    size_t at = size ? data[0] % (size + 1) : 0;
    track_msgid_init(&cut);
    track_msgid_feed(&cut, data, at);
    track_msgid_feed(&cut, data + at, size - at);
    const char *v = track_msgid_value(&whole);
    if (strlen(v) > TRACK_MSGID_MAX || strcmp(v, track_msgid_value(&cut)) != 0)
        abort();
    return 0;
}
