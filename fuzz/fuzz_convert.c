/* fuzz_convert.c - 8-bit to 7-bit conversion: for any input, scan then
 * convert; a result called OK is 7-bit throughout and carries every signed
 * leaf's bytes unchanged, and the converter agrees with the verdict.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"
#include "mime.h"

static int contains(const uint8_t *h, size_t hn, const uint8_t *n, size_t nn)
{
    if (nn == 0)
        return 1;
    for (const uint8_t *p = h; hn - (size_t)(p - h) >= nn;) {
        p = memchr(p, n[0], hn - (size_t)(p - h) - nn + 1);
        if (!p)
            return 0;
        if (memcmp(p, n, nn) == 0)
            return 1;
        p++;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct mime_scan s;
    unsigned char *out = NULL;
    size_t out_len = 0;
    const char *why = NULL;
    mime_scan(data, size, &s);
    enum convert_result r = convert_7bit(data, size, &s, &out, &out_len, &why);
    enum mime_verdict v = mime_conversion_verdict(&s, 0, NULL);

    if (r != CONVERT_OK && (out || out_len))
        abort();
    if ((r == CONVERT_REFUSED) != (why != NULL))
        abort();
    if (v == MIME_VERDICT_OK && r != CONVERT_UNCHANGED)
        abort();
    if ((v == MIME_VERDICT_REFUSE_SIGNED_8BIT || v == MIME_VERDICT_REFUSE_COMPLEX) &&
        r != CONVERT_REFUSED)
        abort();
    if (r == CONVERT_UNCHANGED)
        for (size_t i = 0; i < size; i++)
            if (data[i] >= 0x80)
                abort();
    if (r != CONVERT_OK)
        return 0;

    for (size_t i = 0; i < out_len; i++)
        if (out[i] >= 0x80) {
            fprintf(stderr, "8-bit octet at %zu of %zu\n", i, out_len);
            abort();
        }
    for (size_t i = 0; i < s.nleaves; i++) {
        const struct mime_leaf *l = &s.leaves[i];
        if (l->in_signed && !contains(out, out_len, data + l->start, l->end - l->start)) {
            fprintf(stderr, "signed leaf %zu [%zu, %zu) changed\n", i, l->start, l->end);
            abort();
        }
    }
    /* The output converts to nothing more. */
    static struct mime_scan s2;
    unsigned char *again = NULL;
    size_t again_len;
    mime_scan(out, out_len, &s2);
    if (convert_7bit(out, out_len, &s2, &again, &again_len, NULL) != CONVERT_UNCHANGED)
        abort();
    free(out);
    return 0;
}
