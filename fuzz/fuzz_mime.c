/* fuzz_mime.c - MIME structure scanner: no crash, and the leaves are sane.
 *
 * Leaves lie inside the input, are in order and do not overlap; the leaf
 * count respects its limit; the 8-bit flags agree with the leaves; and the
 * verdict is consistent with the flags.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct mime_scan s;
    mime_scan(data, size, &s);
    if (s.nleaves > MIME_MAX_LEAVES)
        abort();
    size_t prev = 0;
    for (size_t i = 0; i < s.nleaves; i++) {
        const struct mime_leaf *l = &s.leaves[i];
        if (l->start < prev || l->start > l->body || l->body > l->end || l->end > size) {
            fprintf(stderr, "leaf %zu: %zu %zu %zu (prev %zu, size %zu)\n", i, l->start, l->body,
                    l->end, prev, size);
            abort();
        }
        prev = l->end;
        if (l->eightbit && !(s.flags & MIME_8BIT))
            abort();
        if (l->eightbit && l->in_signed && !(s.flags & MIME_8BIT_SIGNED))
            abort();
        if (l->in_signed && !(s.flags & MIME_SIGNED))
            abort();
    }
    if ((s.flags & MIME_8BIT_SIGNED) && !(s.flags & MIME_SIGNED))
        abort();
    enum mime_verdict v = mime_conversion_verdict(&s, 0, NULL);
    if ((v == MIME_VERDICT_OK) != !(s.flags & MIME_8BIT))
        abort();
    if ((v == MIME_VERDICT_REFUSE_SIGNED_8BIT) != !!(s.flags & MIME_8BIT_SIGNED))
        abort();
    if (mime_conversion_verdict(&s, 1, NULL) != MIME_VERDICT_OK)
        abort();
    return 0;
}
