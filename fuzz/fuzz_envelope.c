/* fuzz_envelope.c - the queue envelope: no crash, and the text is stable.
 *
 * The first byte is a switch: when its low bit is set, the end line of the
 * rest is replaced by a correct one before parsing, so that mutations reach
 * the field checks instead of all failing the checksum. Whatever parses must
 * print; that text must parse, and print to the very same bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"

/* Cut the input after its last complete line but one and append a correct
 * end line. Returns the new length. */
static size_t reseal(char *buf, size_t len)
{
    size_t start = len;
    if (start > 0 && buf[start - 1] == '\n')
        start--;
    while (start > 0 && buf[start - 1] != '\n')
        start--;
    unsigned lines = 0;
    for (size_t i = 0; i < start; i++)
        lines += buf[i] == '\n';
    return start + (size_t)sprintf(buf + start, "end %u %08lx\n", lines,
                                   (unsigned long)env_crc32(buf, start));
}

static char *print(const struct envelope *e, size_t *len)
{
    size_t need = env_format(e, NULL, 0);
    if (need == 0)
        abort();
    char *buf = malloc(need + 1);
    if (!buf || env_format(e, buf, need + 1) != need)
        abort();
    *len = need;
    return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct envelope e, f;
    struct env_error err;
    if (size < 1)
        return 0;
    size_t len = size - 1;
    char *in = malloc(len + 48);
    if (!in)
        return 0;
    memcpy(in, data + 1, len);
    if (data[0] & 1)
        len = reseal(in, len);

    env_init(&e);
    env_init(&f);
    if (env_parse(in, len, &e, &err) != 0) {
        if (!err.rule || err.line == 0 || e.n_rcpt != 0)
            abort();
        free(in);
        return 0;
    }
    size_t alen, blen;
    char *a = print(&e, &alen);
    if (env_parse(a, alen, &f, &err) != 0) {
        fprintf(stderr, "printed envelope rejected at line %u: %s\n", err.line, err.rule);
        abort();
    }
    char *b = print(&f, &blen);
    if (alen != blen || memcmp(a, b, alen) != 0) {
        fprintf(stderr, "not a fixed point\n");
        abort();
    }
    if (env_done(&e) != env_done(&f) || env_next_attempt(&e) != env_next_attempt(&f))
        abort();
    free(a);
    free(b);
    free(in);
    env_free(&e);
    env_free(&f);
    return 0;
}
