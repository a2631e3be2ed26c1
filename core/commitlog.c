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

int clog_id_valid(const char *id)
{
    if (!*id)
        return 0;
    for (const char *p = id; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '-' || *p == '_'))
            return 0;
    return 1;
}

size_t clog_format_head(char kind, const char *id, unsigned flags, size_t env_len,
                        uint64_t clen, uint32_t ccrc, char *head, size_t cap)
{
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
    char head[CLOG_HEAD_MAX];
    int hn = snprintf(head, sizeof head, "rec 1 D %s 0 0 0 00000000\n", id);
    if (hn < 0 || (size_t)hn >= sizeof head)
        return 0;
    uint32_t crc = env_crc32_update(0, head, (size_t)hn);
    int n = snprintf(out, cap, "%send %08lx\n", head, (unsigned long)crc);
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

void clog_read(const unsigned char *buf, size_t len,
               void (*fn)(void *arg, const struct clog_rec *r), void *arg)
{
    size_t off = 0;
    while (off < len) {
        const unsigned char *nl = memchr(buf + off, '\n', len - off);
        if (!nl || (size_t)(nl - (buf + off)) >= CLOG_HEAD_MAX)
            return;
        size_t hn = (size_t)(nl - (buf + off)) + 1;
        char head[CLOG_HEAD_MAX + 1];
        memcpy(head, buf + off, hn);
        head[hn] = 0;
        struct clog_rec r = { 0 };
        unsigned long long clen;
        unsigned long ccrc;
        size_t env_len;
        char idbuf[ENV_ID_MAX + 2];
        if (sscanf(head, "rec 1 %c %65s %u %zu %llu %lx", &r.kind, idbuf, &r.flags, &env_len,
                   &clen, &ccrc) != 6 || strlen(idbuf) > ENV_ID_MAX || !clog_id_valid(idbuf) ||
            (r.kind != 'C' && r.kind != 'D'))
            return;
        strcpy(r.id, idbuf);
        size_t body = off + hn;
        uint64_t inl = (r.flags & CLOG_INLINE) ? clen : 0;
        if (env_len > CLOG_ENV_MAX || inl > CLOG_INLINE_MAX || body + env_len + inl > len)
            return;
        size_t tail = body + env_len + (size_t)inl;
        const unsigned char *tnl = memchr(buf + tail, '\n', len - tail);
        if (!tnl)
            return;
        char tl[CLOG_TAIL_MAX] = { 0 };
        size_t tlen = (size_t)(tnl - (buf + tail));
        if (tlen >= sizeof tl)
            return;
        memcpy(tl, buf + tail, tlen);
        unsigned long want;
        if (sscanf(tl, "end %lx", &want) != 1)
            return;
        uint32_t crc = env_crc32_update(env_crc32_update(0, head, hn), buf + body, env_len);
        if (crc != (uint32_t)want)
            return;
        if (inl && env_crc32_update(0, buf + body + env_len, (size_t)inl) != (uint32_t)ccrc)
            return;
        r.env = (const char *)buf + body;
        r.env_len = env_len;
        r.content = inl ? buf + body + env_len : NULL;
        r.clen = clen;
        r.ccrc = (uint32_t)ccrc;
        fn(arg, &r);
        off = (size_t)(tnl - buf) + 1;
    }
}
