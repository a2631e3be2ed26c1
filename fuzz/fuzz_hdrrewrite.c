/* fuzz_hdrrewrite.c - addresses in header fields: no crash or leak, and the
 * rewritten block keeps its shape.
 *
 * The walk's spans lie inside the value, in order. A block is rewritten
 * the same way when counted and when written; it changes only when an
 * address did; a changed block has the same line breaks as the input and
 * the same octets after its empty line; a block over the limit, signed or
 * unreadable is never changed; hdr_end_feed finds the same end as a plain
 * search here, whether fed at once or cut in two.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hdrrewrite.h"

static const char map_text[] =
    "c=US;a= ;p=Fab;o=Sales;s=Lee;g=Bill;      bill.lee@fab.example\n"
    "c=US;a= ;o=Sales;s=Ann;                    ann@fab.example     both\n"
    "EX:/o=Fab/ou=Site/cn=Recipients/cn=bo      bo@fab.example      both\n"
    "sales@fab.example                          bill.lee@fab.example, ann@fab.example\n";

static size_t count(const char *s, size_t n, char c)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += s[i] == c;
    return k;
}

/* Where the octets after the header's empty line start (*at; len and 0
 * returned when there is no empty line). */
static int body_start(const char *s, size_t len, size_t *at)
{
    int bol = 1, cr = 0;
    *at = len;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\n') {
            if (bol || cr) {
                *at = i + 1;
                return 1;
            }
            bol = 1;
        } else if (s[i] == '\r' && bol) {
            cr = 1;
            bol = 0;
            continue;
        } else {
            bol = 0;
        }
        cr = 0;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct addrmap *map;
    static struct domain_list local;
    if (!map) {
        struct addrmap_error err;
        if (domains_parse(&local, "gw.example fab.example", NULL, 0) != 0 ||
            addrmap_parse(map_text, strlen(map_text), &map, &err) != 0)
            abort();
    }
    const char *in = (const char *)data;
    struct hdr_addr_iter it;
    struct hdr_addr a;
    size_t prev = 0;
    hdr_addr_begin(&it, in, size);
    while (hdr_addr_next(&it, &a)) {
        if (a.start < prev || a.start >= a.end || a.end > size)
            abort();
        prev = a.end;
    }

    size_t b;
    int found = body_start(in, size, &b);
    struct hdr_end h = { 0 }, h2 = { 0 };
    int end, end2;
    size_t got = hdr_end_feed(&h, in, size, &end), cut = size / 2;
    if (end != found || got != b)
        abort();
    size_t got2 = hdr_end_feed(&h2, in, cut, &end2);
    if (!end2)
        got2 += hdr_end_feed(&h2, in + cut, size - cut, &end2);
    if (end2 != end || got2 != got)
        abort();

    struct rewrite_config c = { map, 1, &local };
    struct hdrrewrite_report rep, again;
    size_t need = hdrrewrite_block(&c, in, size, NULL, 0, &rep);
    if ((rep.result == HDRREWRITE_CHANGED) != (need > 0) ||
        (rep.result == HDRREWRITE_CHANGED) != (rep.changed > 0) || rep.too_long > rep.kept)
        abort();
    if (size > HDRREWRITE_BLOCK_MAX && rep.result != HDRREWRITE_TOO_BIG)
        abort();
    if (!need)
        return 0;
    char *out = malloc(need + 1);
    if (!out || hdrrewrite_block(&c, in, size, out, need + 1, &again) != need ||
        again.changed != rep.changed || strlen(out) > need)
        abort();
    if (count(out, need, '\n') != count(in, size, '\n') ||
        memcmp(out + need - (size - b), in + b, size - b) != 0)
        abort();
    free(out);
    return 0;
}
