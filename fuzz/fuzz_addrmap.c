/* fuzz_addrmap.c - the address map parser: no crash or leak, and stable.
 *
 * A map that parses is written back out in canonical form; that text must
 * parse to a map with the same entries, each found both ways.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addrmap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct addrmap *m, *m2;
    struct addrmap_error err;
    if (addrmap_parse((const char *)data, size, &m, &err) != 0) {
        if (m || !err.text[0])
            abort();
        return 0;
    }
    size_t n = addrmap_count(m), cap = n * (X400_TEXT_MAX + ADDR_PATH_MAX + 4) + 1, o = 0;
    char *text = malloc(cap);
    if (!text)
        abort();
    text[0] = 0;
    for (size_t k = 0; k < n; k++) {
        const struct addrmap_entry *e = addrmap_entry_at(m, k);
        char x[X400_TEXT_MAX], s[ADDR_PATH_MAX + 8];
        if (x400_format(&e->x400, x, sizeof x) < 0 || addr_format_mailbox(&e->smtp, s, sizeof s) < 0)
            abort();
        o += (size_t)snprintf(text + o, cap - o, "%s\t%s\n", x, s);
        if (addrmap_find_x400(m, &e->x400) != e || addrmap_find_smtp(m, &e->smtp) != e)
            abort();
    }
    if (addrmap_parse(text, o, &m2, &err) != 0) {
        fprintf(stderr, "canonical map rejected: %s\n%s", err.text, text);
        abort();
    }
    if (addrmap_count(m2) != n)
        abort();
    for (size_t k = 0; k < n; k++) {
        const struct addrmap_entry *a = addrmap_entry_at(m, k), *b = addrmap_entry_at(m2, k);
        if (!x400_equal(&a->x400, &b->x400) || !addr_mailbox_equal(&a->smtp, &b->smtp))
            abort();
    }
    addrmap_free(m2);
    addrmap_free(m);
    free(text);
    return 0;
}
