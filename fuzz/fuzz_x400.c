/* fuzz_x400.c - X.400 O/R addresses: no crash, and print is stable.
 *
 * Whatever parses must print canonically; the canonical text must parse to
 * an equal address and print to itself.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "x400.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct x400_addr a, b;
    struct x400_error err;
    char t1[X400_TEXT_MAX], t2[X400_TEXT_MAX];
    if (x400_parse((const char *)data, size, &a, &err) != 0) {
        if (!err.text[0])
            abort();
        return 0;
    }
    if (x400_format(&a, t1, sizeof t1) < 0)
        abort();
    if (x400_parse(t1, strlen(t1), &b, &err) != 0) {
        fprintf(stderr, "canonical form rejected: %s: %s\n", t1, err.text);
        abort();
    }
    if (x400_format(&b, t2, sizeof t2) < 0 || strcmp(t1, t2) != 0 || !x400_equal(&a, &b)) {
        fprintf(stderr, "not a fixed point: %s | %s\n", t1, t2);
        abort();
    }
    (void)x400_looks_like((const char *)data, size);
    return 0;
}
