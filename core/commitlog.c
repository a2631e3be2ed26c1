/* commitlog.c - the commit-log record format (see commitlog.h).
 *
 * The log is what makes an acknowledged message durable until its queue
 * files are flushed; recovery trusts only what this reader verified, so it
 * never guesses at a record: anything that is not exactly as written ends
 * the read.
 */
#include "commitlog.h"

#include <stdio.h>
#include <string.h>

size_t clog_format_head(char kind, const char *id, unsigned flags, size_t env_len,
                        uint64_t clen, uint32_t ccrc, char *head, size_t cap)
{
    if ((kind != 'C' && kind != 'D') || strlen(id) > ENV_ID_MAX || !env_id_valid(id) ||
        (flags & ~(CLOG_INLINE | CLOG_HOLD)) || env_len > CLOG_ENV_MAX ||
        ((flags & CLOG_INLINE) && clen > CLOG_INLINE_MAX))
        return 0;
    int hn = snprintf(head, cap, "rec 1 %c %s %u %zu %llu %08lx\n", kind, id, flags,
                      env_len, (unsigned long long)clen, (unsigned long)ccrc);
    if (hn < 0 || (size_t)hn >= cap)
        return 0;
    return (size_t)hn;
}

size_t clog_format_tail(const char *head, size_t head_len, const char *env, size_t env_len,
                        char *tail, size_t cap)
{
    uint32_t crc = env_crc32_update(env_crc32_update(0, head, head_len), env, env_len);
    int tn = snprintf(tail, cap, "end %08lx\n", (unsigned long)crc);
    if (tn < 0 || (size_t)tn >= cap)
        return 0;
    return (size_t)tn;
}

size_t clog_format_removal(const char *id, char *out, size_t cap)
{
    char head[CLOG_HEAD_MAX], tail[CLOG_TAIL_MAX];
    size_t hn = clog_format_head('D', id, 0, 0, 0, 0, head, sizeof head);
    size_t tn = hn ? clog_format_tail(head, hn, "", 0, tail, sizeof tail) : 0;
    if (!tn || hn + tn >= cap)
        return 0;
    memcpy(out, head, hn);
    memcpy(out + hn, tail, tn);
    out[hn + tn] = 0;
    return hn + tn;
}

/* Parsing: each field exactly as clog_format_head writes it, nothing else
 * (no sign, no spaces but one between fields, no upper-case hex). */
struct cursor {
    const char *p, *end;
};

static int take_lit(struct cursor *c, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0)
        return 0;
    c->p += n;
    return 1;
}

static int take_dec(struct cursor *c, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    const char *start = c->p;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        unsigned d = (unsigned)(*c->p - '0');
        if (v > (max - d) / 10)
            return 0;
        v = v * 10 + d;
        c->p++;
    }
    if (c->p == start || (c->p - start > 1 && *start == '0'))
        return 0;
    *out = v;
    return 1;
}

static int take_crc(struct cursor *c, uint32_t *out)
{
    uint32_t v = 0;
    if (c->end - c->p < 8)
        return 0;
    for (int i = 0; i < 8; i++) {
        char ch = *c->p++;
        unsigned d;
        if (ch >= '0' && ch <= '9')
            d = (unsigned)(ch - '0');
        else if (ch >= 'a' && ch <= 'f')
            d = (unsigned)(ch - 'a' + 10);
        else
            return 0;
        v = v << 4 | d;
    }
    *out = v;
    return 1;
}

int clog_parse_head(const char *line, size_t len, struct clog_rec *r)
{
    struct cursor c = { line, line + len };
    memset(r, 0, sizeof *r);
    uint64_t flags, env_len, clen;
    if (!take_lit(&c, "rec 1 ") || c.p == c.end || (*c.p != 'C' && *c.p != 'D'))
        return -1;
    r->kind = *c.p++;
    if (!take_lit(&c, " "))
        return -1;
    const char *id = c.p;
    while (c.p < c.end && *c.p != ' ')
        c.p++;
    size_t id_len = (size_t)(c.p - id);
    if (id_len == 0 || id_len > ENV_ID_MAX)
        return -1;
    memcpy(r->id, id, id_len);
    r->id[id_len] = 0;
    if (!env_id_valid(r->id) || !take_lit(&c, " ") ||
        !take_dec(&c, CLOG_INLINE | CLOG_HOLD, &flags) || !take_lit(&c, " ") ||
        !take_dec(&c, CLOG_ENV_MAX, &env_len) || !take_lit(&c, " ") ||
        !take_dec(&c, UINT64_MAX, &clen) || !take_lit(&c, " ") ||
        !take_crc(&c, &r->ccrc) || !take_lit(&c, "\n") || c.p != c.end)
        return -1;
    /* Bits no writer sets are a record this reader does not understand. */
    if (flags & ~(uint64_t)(CLOG_INLINE | CLOG_HOLD))
        return -1;
    if ((flags & CLOG_INLINE) && clen > CLOG_INLINE_MAX)
        return -1;
    if (r->kind == 'D' && (flags || env_len || clen || r->ccrc))
        return -1;
    r->flags = (unsigned)flags;
    r->env_len = (size_t)env_len;
    r->clen = clen;
    return 0;
}

size_t clog_parse(const unsigned char *buf, size_t len, struct clog_rec *r)
{
    const unsigned char *nl = memchr(buf, '\n', len < CLOG_HEAD_MAX ? len : CLOG_HEAD_MAX);
    if (!nl)
        return 0;
    size_t hn = (size_t)(nl - buf) + 1;
    if (clog_parse_head((const char *)buf, hn, r) != 0)
        return 0;
    size_t inl = (r->flags & CLOG_INLINE) ? (size_t)r->clen : 0;
    size_t body = hn;
    if (len - body < r->env_len || len - body - r->env_len < inl)
        return 0;
    size_t tail = body + r->env_len + inl;
    struct cursor c = { (const char *)buf + tail, (const char *)buf + len };
    uint32_t want;
    if (!take_lit(&c, "end ") || !take_crc(&c, &want) || !take_lit(&c, "\n"))
        return 0;
    uint32_t crc = env_crc32_update(env_crc32_update(0, buf, hn), buf + body, r->env_len);
    if (crc != want)
        return 0;
    if (inl && env_crc32_update(0, buf + body + r->env_len, inl) != r->ccrc)
        return 0;
    r->env = (const char *)buf + body;
    r->content = (r->flags & CLOG_INLINE) ? buf + body + r->env_len : NULL;
    return (size_t)(c.p - (const char *)buf);
}

size_t clog_read(const unsigned char *buf, size_t len,
                 void (*fn)(void *arg, const struct clog_rec *r), void *arg)
{
    size_t off = 0;
    while (off < len) {
        struct clog_rec r;
        size_t n = clog_parse(buf + off, len - off, &r);
        if (!n)
            break;
        fn(arg, &r);
        off += n;
    }
    return off;
}
