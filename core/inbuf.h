/* inbuf.h - the input buffer of a sans-I/O engine: bytes the caller fed
 * that the engine has not consumed yet. Portable core. */
#ifndef IMSVC_INBUF_H
#define IMSVC_INBUF_H

#include <stddef.h>
#include <string.h>

/* Take up to len octets of data into buf (capacity cap, unread octets in
 * [*off, *used)), after moving the unread ones to the front. Returns how
 * many were taken: fewer than len when the buffer is full. */
static inline size_t inbuf_take(unsigned char *buf, size_t cap, size_t *off, size_t *used,
                                const void *data, size_t len)
{
    if (*off > 0) {
        memmove(buf, buf + *off, *used - *off);
        *used -= *off;
        *off = 0;
    }
    size_t take = cap - *used;
    if (take > len)
        take = len;
    memcpy(buf + *used, data, take);
    *used += take;
    return take;
}

#endif
