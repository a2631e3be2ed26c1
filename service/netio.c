/* netio.c - blocking socket writes (netio.h). */
#include "netio.h"

#define SEND_CHUNK 65536

int net_send_all(SOCKET sock, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        int chunk = len > SEND_CHUNK ? SEND_CHUNK : (int)len;
        int n = send(sock, p, chunk, 0);
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int net_send_tls(SOCKET sock, struct tls_stream *tls)
{
    size_t n;
    const unsigned char *p = tls_out_buf(tls, &n);
    if (n == 0)
        return 0;
    if (net_send_all(sock, p, n) != 0)
        return -1;
    tls_out_done(tls, n);
    return 0;
}
