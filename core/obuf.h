/* obuf.h - an output buffer that counts what it would need and writes what
 * fits, for composing text the snprintf way: the caller learns the full
 * length even when the buffer is too small, and the buffer always keeps
 * room for a NUL. Used by the envelope and DSN writers. Portable core. */
#ifndef IMSVC_OBUF_H
#define IMSVC_OBUF_H

#include <stddef.h>
#include <string.h>

struct obuf {
    char *p;        /* may be NULL when n is 0: only counting */
    size_t n;       /* capacity, the NUL included */
    size_t len;     /* octets the text needs so far */
};

static inline void ob_put(struct obuf *o, const char *s, size_t k)
{
    for (size_t i = 0; i < k; i++) {
        if (o->len + 1 < o->n)
            o->p[o->len] = s[i];
        o->len++;
    }
}

static inline void ob_str(struct obuf *o, const char *s)
{
    ob_put(o, s, strlen(s));
}

#endif
