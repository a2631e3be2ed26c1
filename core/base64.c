/* base64.c - strict base64 for the SMTP engines' AUTH exchanges (base64.h). */
#include "base64.h"

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Returns the decoded length, or -1 if src is not base64 or out is too small. */
long base64_decode(const char *src, size_t n, unsigned char *out, size_t cap)
{
    size_t o = 0;
    if (n % 4 != 0)
        return -1;
    for (size_t i = 0; i < n; i += 4) {
        int v[4], pad = 0;
        for (int k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)src[i + k];
            if (c == '=' && i + 4 == n && k >= 2) {
                v[k] = 0;
                pad++;
                continue;
            }
            if (pad)
                return -1;          /* data after '=' */
            v[k] = b64val(c);
            if (v[k] < 0)
                return -1;
        }
        unsigned long w = (unsigned long)v[0] << 18 | (unsigned long)v[1] << 12 |
                          (unsigned long)v[2] << 6 | (unsigned long)v[3];
        size_t take = 3 - (size_t)pad;
        if (o + take > cap)
            return -1;
        out[o++] = (unsigned char)(w >> 16);
        if (take > 1) out[o++] = (unsigned char)(w >> 8);
        if (take > 2) out[o++] = (unsigned char)w;
    }
    return (long)o;
}

/* Returns the encoded length (NUL-terminated), or -1 if out is too small. */
long base64_encode(const unsigned char *src, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    if (BASE64_ENCODED_SIZE(n) > cap)
        return -1;
    for (size_t i = 0; i < n; i += 3) {
        unsigned long w = (unsigned long)src[i] << 16;
        if (i + 1 < n) w |= (unsigned long)src[i + 1] << 8;
        if (i + 2 < n) w |= src[i + 2];
        out[o++] = b64chars[(w >> 18) & 63];
        out[o++] = b64chars[(w >> 12) & 63];
        out[o++] = i + 1 < n ? b64chars[(w >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? b64chars[w & 63] : '=';
    }
    out[o] = '\0';
    return (long)o;
}
