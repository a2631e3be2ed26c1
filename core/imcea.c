/* imcea.c - IMCEA encapsulation (see imcea.h).
 *
 * The encoding is a bijection on non-NUL octet strings when '+HH' is always
 * written in upper case: decode(encode(x)) == x for every x, which the tests
 * and fuzz_imcea check. Decoding accepts lower-case hex too, since peers
 * write it; it rejects every character the grammar does not allow rather
 * than passing it through.
 */
#include "imcea.h"

#include <string.h>

#include "address.h"

static int is_alpha(int c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_upper_or_digit(int c) { return (c >= 'A' && c <= 'Z') || is_digit(c); }
static int hexval(int c)
{
    if (is_digit(c))
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}
static int lower(int c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

const char *imcea_strerror(enum imcea_status st)
{
    switch (st) {
    case IMCEA_OK: return "ok";
    case IMCEA_BAD_TYPE: return "address type must be 1 to 32 letters or digits";
    case IMCEA_BAD_DOMAIN: return "domain is not a valid domain name";
    case IMCEA_BAD_ADDRESS: return "address is empty or contains a NUL octet";
    case IMCEA_NOT_IMCEA: return "not an IMCEA address (needs upper-case IMCEA<TYPE>- before '@')";
    case IMCEA_NOT_LOCAL: return "domain is not a local domain, so the address is not decoded";
    case IMCEA_BAD_ENCODING: return "encoded address contains a character or '+' escape that IMCEA does not allow";
    case IMCEA_TOO_LONG: return "result does not fit";
    }
    return "unknown IMCEA status";
}

static int put(char *out, size_t size, size_t *o, char c)
{
    if (*o + 1 >= size)
        return -1;
    out[(*o)++] = c;
    return 0;
}

enum imcea_status imcea_encode(const char *type, const char *addr, size_t addr_len,
                               const char *domain, char *out, size_t out_size, size_t *out_len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t tlen = strlen(type), dlen = strlen(domain), o = 0;
    if (out_size)
        out[0] = 0;
    if (tlen == 0 || tlen > IMCEA_TYPE_MAX)
        return IMCEA_BAD_TYPE;
    for (size_t i = 0; i < tlen; i++)
        if (!is_alpha((unsigned char)type[i]) && !is_digit((unsigned char)type[i]))
            return IMCEA_BAD_TYPE;
    if (!addr_domain_valid(domain, dlen))
        return IMCEA_BAD_DOMAIN;
    if (addr_len == 0 || memchr(addr, 0, addr_len))
        return IMCEA_BAD_ADDRESS;
    const char *p = "IMCEA";
    while (*p)
        if (put(out, out_size, &o, *p++) != 0)
            goto too_long;
    for (size_t i = 0; i < tlen; i++) {
        int c = (unsigned char)type[i];
        if (put(out, out_size, &o, (char)((c >= 'a' && c <= 'z') ? c - 32 : c)) != 0)
            goto too_long;
    }
    if (put(out, out_size, &o, '-') != 0)
        goto too_long;
    for (size_t i = 0; i < addr_len; i++) {
        int c = (unsigned char)addr[i];
        int r;
        if (is_alpha(c) || is_digit(c) || c == '-' || c == '=')
            r = put(out, out_size, &o, (char)c);
        else if (c == '/')
            r = put(out, out_size, &o, '_');
        else
            r = put(out, out_size, &o, '+') || put(out, out_size, &o, hex[c >> 4]) ||
                put(out, out_size, &o, hex[c & 15]);
        if (r != 0)
            goto too_long;
    }
    if (put(out, out_size, &o, '@') != 0)
        goto too_long;
    for (size_t i = 0; i < dlen; i++)
        if (put(out, out_size, &o, domain[i]) != 0)
            goto too_long;
    out[o] = 0;
    if (out_len)
        *out_len = o;
    return IMCEA_OK;
too_long:
    if (out_size)
        out[0] = 0;
    return IMCEA_TOO_LONG;
}

/* "IMCEA" (any case) 1*(letter/digit) "-": returns the length of the type, 0
 * if the prefix does not match. */
static size_t prefix_type_len(const char *s, size_t len)
{
    static const char imcea[] = "imcea";
    if (len < 7)
        return 0;
    for (size_t i = 0; i < 5; i++)
        if (lower((unsigned char)s[i]) != imcea[i])
            return 0;
    size_t t = 5;
    while (t < len && (is_alpha((unsigned char)s[t]) || is_digit((unsigned char)s[t])))
        t++;
    if (t == 5 || t >= len || s[t] != '-')
        return 0;
    return t - 5;
}

int imcea_looks_like(const char *s, size_t len)
{
    return prefix_type_len(s, len) > 0;
}

enum imcea_status imcea_decode(const char *s, size_t len, const struct domain_list *local,
                               char *type, size_t type_size,
                               char *addr, size_t addr_size, size_t *addr_len)
{
    if (type_size)
        type[0] = 0;
    if (addr_size)
        addr[0] = 0;
    size_t tlen = prefix_type_len(s, len);
    if (tlen == 0 || memcmp(s, "IMCEA", 5) != 0)
        return IMCEA_NOT_IMCEA;
    if (tlen > IMCEA_TYPE_MAX)
        return IMCEA_BAD_TYPE;
    for (size_t i = 0; i < tlen; i++)
        if (!is_upper_or_digit((unsigned char)s[5 + i]))
            return IMCEA_NOT_IMCEA;
    const char *at = NULL;
    for (size_t i = len; i > 0; i--)
        if (s[i - 1] == '@') {
            at = s + i - 1;
            break;
        }
    if (!at || at < s + 5 + tlen)
        return IMCEA_NOT_IMCEA;
    const char *dom = at + 1;
    size_t dlen = len - (size_t)(dom - s);
    if (!addr_domain_valid(dom, dlen))
        return IMCEA_BAD_DOMAIN;
    char name[ADDR_DOMAIN_MAX + 1];
    if (dlen > ADDR_DOMAIN_MAX)
        return IMCEA_BAD_DOMAIN;
    memcpy(name, dom, dlen);
    name[dlen] = '\0';
    if (!domains_match(local, name))
        return IMCEA_NOT_LOCAL;

    const char *enc = s + 5 + tlen + 1;
    size_t elen = (size_t)(at - enc), o = 0;
    if (elen == 0)
        return IMCEA_BAD_ADDRESS;
    for (size_t i = 0; i < elen; i++) {
        int c = (unsigned char)enc[i];
        if (c == '+') {
            if (elen - i < 3)
                goto bad_encoding;
            int hi = hexval((unsigned char)enc[i + 1]), lo = hexval((unsigned char)enc[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                goto bad_encoding;
            c = hi << 4 | lo;
            i += 2;
        } else if (c == '_') {
            c = '/';
        } else if (!(is_alpha(c) || is_digit(c) || c == '-' || c == '=')) {
            goto bad_encoding;
        }
        if (o + 1 >= addr_size)
            goto too_long;
        addr[o++] = (char)c;
    }
    if (tlen + 1 > type_size)
        goto too_long;
    memcpy(type, s + 5, tlen);
    type[tlen] = 0;
    addr[o] = 0;
    if (addr_len)
        *addr_len = o;
    return IMCEA_OK;
bad_encoding:
    if (addr_size)
        addr[0] = 0;        /* no half-decoded address left behind */
    return IMCEA_BAD_ENCODING;
too_long:
    if (type_size)
        type[0] = 0;
    if (addr_size)
        addr[0] = 0;
    return IMCEA_TOO_LONG;
}
