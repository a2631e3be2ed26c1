/* fuzz_commitlog.c - the commit-log reader on any bytes: it never reads
 * outside the buffer, every record it accepts lies inside what it reports
 * read, and a record it accepts, written again by the formatter, is the
 * same octets (the reader accepts only what the writer makes).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "commitlog.h"

struct ctx {
    const unsigned char *buf;
    size_t len, off;
};

static void check(void *arg, const struct clog_rec *r)
{
    struct ctx *c = arg;
    if (!env_id_valid(r->id) || (r->kind != 'C' && r->kind != 'D'))
        abort();
    char head[CLOG_HEAD_MAX], tail[CLOG_TAIL_MAX];
    size_t hn = clog_format_head(r->kind, r->id, r->flags, r->env_len, r->clen, r->ccrc, head,
                                 sizeof head);
    if (!hn || c->off + hn > c->len || memcmp(c->buf + c->off, head, hn) != 0)
        abort();
    if (r->env != (const char *)c->buf + c->off + hn)
        abort();
    size_t inl = r->content ? (size_t)r->clen : 0;
    if (r->content && r->content != c->buf + c->off + hn + r->env_len)
        abort();
    size_t tn = clog_format_tail(head, hn, r->env, r->env_len, tail, sizeof tail);
    size_t at = c->off + hn + r->env_len + inl;
    if (!tn || at + tn > c->len || memcmp(c->buf + at, tail, tn) != 0)
        abort();
    if (r->content && env_crc32_update(0, r->content, inl) != r->ccrc)
        abort();
    c->off = at + tn;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy of exactly size octets, so ASan sees any read past the end. */
    unsigned char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    struct ctx c = { buf, size, 0 };
    size_t got = clog_read(buf, size, check, &c);
    if (got != c.off || got > size)
        abort();
    free(buf);
    return 0;
}
