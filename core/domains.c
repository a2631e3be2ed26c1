/* domains.c - LocalDomains and RelayAddresses: parsed once, matched one way
 * (see domains.h, docs/configuration.md).
 *
 * Names and literals are made canonical by core/address.c's rules (a
 * literal is read by parsing "x@[...]" as a mailbox), the rules RCPT TO
 * follows, so an entry and a recipient's domain that name the same thing
 * compare equal as text. Must never skip an entry it cannot read (that is a
 * configuration error, named), never cap a list, and never read past a
 * bounded entry.
 */
#include "domains.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEPARATORS      "; ,\t"
#define LITERAL_BUF     (DOMAINS_ENTRY_MAX + 8)     /* "x@" + entry */
#define IPV6_TAG        "IPv6:"
#define IPV6_TAG_LEN    5
#define IP_TEXT_MAX     45      /* the longest IPv6 text, with an IPv4 tail */
#define LIST_FIRST_CAP  8

static const char FORMS[] = "(forms: example.com, *.example.com, [192.0.2.1], "
                            "[IPv6:2001:db8::1])";
static const char RANGE_FORMS[] = "(forms: 192.0.2.7, 192.0.2.0/24, 2001:db8::7, "
                                  "2001:db8::/32)";

static int lower(int ch)
{
    return ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch;
}

static int prefix_ci(const char *s, size_t len, const char *lit)
{
    size_t k = strlen(lit);
    if (len < k)
        return 0;
    for (size_t i = 0; i < k; i++)
        if (lower((unsigned char)s[i]) != lower((unsigned char)lit[i]))
            return 0;
    return 1;
}

/* Length of s, or n + 1 when s is longer than n (never reads past s[n]). */
static size_t bounded_len(const char *s, size_t n)
{
    size_t i = 0;
    while (i <= n && s[i])
        i++;
    return i;
}

static void say(char *why, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A sentence too long for why ends in "..." (arguments are bounded by their
 * formats, so this does not happen). */
static void say(char *why, size_t n, const char *fmt, ...)
{
    va_list ap;
    if (!why || n == 0)
        return;
    va_start(ap, fmt);
    int w = vsnprintf(why, n, fmt, ap);
    va_end(ap);
    if (w < 0)
        snprintf(why, n, "invalid entry");
    else if ((size_t)w >= n && n > 4)
        memcpy(why + n - 4, "...", 4);
}

/* Domain names and literals ----------------------------------------------------- */

/* A name at s[0..len), one trailing dot allowed, lower case into out
 * (ADDR_DOMAIN_MAX + 1 octets). NULL, or the rule it breaks. */
static const char *canon_name(const char *s, size_t len, char *out)
{
    if (len > 0 && s[len - 1] == '.')
        len--;
    if (len == 0)
        return "it is empty";
    if (len > ADDR_DOMAIN_MAX)
        return "it is longer than 255 octets";
    const char *rule = addr_domain_rule(s, len);
    if (rule)
        return rule;
    for (size_t i = 0; i < len; i++)
        out[i] = (char)lower((unsigned char)s[i]);
    out[len] = '\0';
    return NULL;
}

/* "[...]" at s[0..len): its canonical text into out and its kind. NULL, or
 * why it is not a literal. */
static const char *canon_literal(const char *s, size_t len, char *out, enum domain_kind *kind)
{
    char buf[LITERAL_BUF];
    if (len < 2 || s[0] != '[' || s[len - 1] != ']')
        return "an address literal is written in brackets, like [192.0.2.1]";
    if (len > ADDR_DOMAIN_MAX)
        return "it is longer than 255 octets";
    const char *body = s + 1;
    size_t blen = len - 2;
    if (memchr(body, ':', blen) && !prefix_ci(body, blen, IPV6_TAG))
        return "an IPv6 address literal is written with its tag, like [IPv6:2001:db8::1]";
    int w = snprintf(buf, sizeof buf, "x@%.*s", (int)len, s);
    if (w < 0 || (size_t)w >= sizeof buf)
        return "it is longer than 255 octets";
    struct addr_path p;
    struct addr_error err;
    if (addr_parse_mailbox(buf, (size_t)w, ADDR_RCPT, &p, &err) != 0)
        return err.rule ? err.rule : "it is not an address literal";
    if (p.kind != ADDR_DOMAIN_IPV4 && p.kind != ADDR_DOMAIN_IPV6)
        return "it is not an address literal";
    *kind = p.kind == ADDR_DOMAIN_IPV4 ? DOMAIN_IPV4 : DOMAIN_IPV6;
    memcpy(out, p.domain, strlen(p.domain) + 1);
    return NULL;
}

/* One LocalDomains entry at s[0..len) into e. NULL, or why not. */
static const char *parse_entry(const char *s, size_t len, struct domain_entry *e)
{
    memset(e, 0, sizeof *e);
    if (len > DOMAINS_ENTRY_MAX)
        return "it is longer than 255 octets";
    if (s[0] == '[')
        return canon_literal(s, len, e->name, &e->kind);
    if (len >= 2 && s[0] == '*' && s[1] == '.') {
        e->kind = DOMAIN_WILDCARD;
        const char *rule = canon_name(s + 2, len - 2, e->name);
        if (rule && memchr(s + 2, '*', len - 2))
            return "'*' may stand only for the labels in front of a domain, as in "
                   "*.example.com";
        return rule;
    }
    if (memchr(s, '*', len))
        return "'*' may stand only for the labels in front of a domain, as in *.example.com";
    e->kind = DOMAIN_NAME;
    return canon_name(s, len, e->name);
}

static int domains_grow(struct domain_list *l)
{
    if (l->n < l->cap)
        return 0;
    size_t cap = l->cap ? l->cap * 2 : LIST_FIRST_CAP;
    if (cap > (size_t)-1 / sizeof *l->v)
        return -1;
    struct domain_entry *v = realloc(l->v, cap * sizeof *v);
    if (!v)
        return -1;
    l->v = v;
    l->cap = cap;
    return 0;
}

void domains_free(struct domain_list *l)
{
    if (!l)
        return;
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* The next entry of text at *p: its start and length (0 at the end). */
static size_t next_entry(const char **p, const char **start)
{
    const char *s = *p + strspn(*p, SEPARATORS);
    size_t len = strcspn(s, SEPARATORS);
    *start = s;
    *p = s + len;
    return len;
}

int domains_parse(struct domain_list *l, const char *text, char *why, size_t why_len)
{
    const char *p = text ? text : "", *s;
    size_t len;
    if (!l)
        return -2;
    memset(l, 0, sizeof *l);
    if (why && why_len)
        why[0] = '\0';
    while ((len = next_entry(&p, &s)) > 0) {
        struct domain_entry e;
        const char *rule = parse_entry(s, len, &e);
        if (rule) {
            say(why, why_len, "'%.*s%s' is not a local domain: %s %s",
                (int)(len > 100 ? 100 : len), s, len > 100 ? "..." : "", rule, FORMS);
            domains_free(l);
            return -1;
        }
        if (domains_grow(l) != 0) {
            say(why, why_len, "out of memory reading the local domains");
            domains_free(l);
            return -2;
        }
        l->v[l->n++] = e;
    }
    return 0;
}

int domains_match(const struct domain_list *l, const char *domain)
{
    char dom[ADDR_DOMAIN_MAX + 1];
    enum domain_kind kind = DOMAIN_NAME;
    if (!l || l->n == 0 || !domain)
        return 0;
    size_t len = bounded_len(domain, ADDR_DOMAIN_MAX + 1);
    if (len > ADDR_DOMAIN_MAX + 1 || len == 0)
        return 0;
    if (domain[0] == '[') {
        if (canon_literal(domain, len, dom, &kind) != NULL)
            return 0;
    } else if (canon_name(domain, len, dom) != NULL) {
        return 0;
    }
    size_t dl = strlen(dom);
    for (size_t i = 0; i < l->n; i++) {
        const struct domain_entry *e = &l->v[i];
        if (e->kind == DOMAIN_WILDCARD) {
            size_t wl = strlen(e->name);
            if (kind == DOMAIN_NAME && dl > wl + 1 && dom[dl - wl - 1] == '.' &&
                memcmp(dom + dl - wl, e->name, wl) == 0)
                return 1;
        } else if (e->kind == kind && strcmp(e->name, dom) == 0) {
            return 1;
        }
    }
    return 0;
}

const struct domain_entry *domains_first_single(const struct domain_list *l)
{
    for (size_t i = 0; l && i < l->n; i++)
        if (l->v[i].kind != DOMAIN_WILDCARD)
            return &l->v[i];
    return NULL;
}

/* Addresses and ranges ------------------------------------------------------------ */

static int hex_value(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = lower(ch);
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Four decimal parts of 1 to 3 digits, each at most 255, none with a
 * leading zero: "010" is 8 to inet_aton and 10 to others, and a relay range
 * must mean one thing. */
static int parse_ipv4(const char *s, size_t len, unsigned char out[4])
{
    size_t i = 0;
    for (int k = 0; k < 4; k++) {
        if (k > 0) {
            if (i >= len || s[i] != '.')
                return -1;
            i++;
        }
        unsigned v = 0, nd = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9' && nd < 4) {
            v = v * 10 + (unsigned)(s[i] - '0');
            i++;
            nd++;
        }
        if (nd == 0 || nd > 3 || v > 255 || (nd > 1 && s[i - nd] == '0'))
            return -1;
        out[k] = (unsigned char)v;
    }
    return i == len ? 0 : -1;
}

/* Does the text at s[0..len) have a decimal part with a leading zero? */
static int has_leading_zero(const char *s, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++)
        if (s[i] == '0' && (i == 0 || s[i - 1] == '.' || s[i - 1] == ':') &&
            s[i + 1] >= '0' && s[i + 1] <= '9' && memchr(s, '.', len))
            return 1;
    return 0;
}

/* RFC 4291 2.2 text: 8 groups of 1 to 4 hex digits, one "::" for one or
 * more groups of zeros, the last 32 bits optionally as IPv4. */
static int parse_ipv6(const char *s, size_t len, unsigned char out[16])
{
    unsigned char head[16], tail[16];
    size_t nh = 0, nt = 0, i = 0;
    int gap = 0;
    if (len >= 2 && s[0] == ':' && s[1] == ':') {
        gap = 1;
        i = 2;
    } else if (len == 0 || s[0] == ':') {
        return -1;
    }
    while (i < len) {
        unsigned char *dst = gap ? tail : head;
        size_t *n = gap ? &nt : &nh;
        size_t j = i;
        while (j < len && hex_value((unsigned char)s[j]) >= 0)
            j++;
        if (j < len && s[j] == '.') {          /* an IPv4 tail ends the text */
            if (*n > 12 || parse_ipv4(s + i, len - i, dst + *n) != 0)
                return -1;
            *n += 4;
            break;
        }
        if (j == i || j - i > 4 || *n > 14)
            return -1;
        unsigned v = 0;
        for (size_t k = i; k < j; k++)
            v = v * 16 + (unsigned)hex_value((unsigned char)s[k]);
        dst[(*n)++] = (unsigned char)(v >> 8);
        dst[(*n)++] = (unsigned char)v;
        i = j;
        if (i == len)
            break;
        if (s[i] != ':')
            return -1;
        i++;
        if (i < len && s[i] == ':') {
            if (gap)
                return -1;
            gap = 1;
            i++;
        } else if (i == len) {
            return -1;                          /* a single trailing ':' */
        }
    }
    if (gap ? nh + nt > 14 : nh != 16)
        return -1;
    memset(out, 0, 16);
    memcpy(out, head, nh);
    memcpy(out + 16 - nt, tail, nt);
    return 0;
}

int domains_parse_ip(const char *s, size_t len, int *v6, unsigned char out[16])
{
    if (!s || !v6 || !out || len == 0 || len > IP_TEXT_MAX)
        return -1;
    memset(out, 0, 16);
    if (memchr(s, ':', len)) {
        *v6 = 1;
        return parse_ipv6(s, len, out);
    }
    *v6 = 0;
    return parse_ipv4(s, len, out);
}

/* Zero the bits of a below the prefix length. */
static void mask_bits(unsigned char a[16], unsigned bits)
{
    for (unsigned i = 0; i < 16; i++) {
        unsigned have = bits > 8 * i ? bits - 8 * i : 0;
        if (have >= 8)
            continue;
        a[i] &= (unsigned char)(0xFF00u >> have);
    }
}

/* One RelayAddresses entry at s[0..len) into r. NULL, or why not. */
static const char *parse_range(const char *s, size_t len, struct addr_range *r)
{
    memset(r, 0, sizeof *r);
    const char *slash = memchr(s, '/', len);
    size_t alen = slash ? (size_t)(slash - s) : len;
    if (alen == 0)
        return "the address is missing";
    if (domains_parse_ip(s, alen, &r->v6, r->addr) != 0)
        return has_leading_zero(s, alen) ? "a part of the IPv4 address has a leading zero, "
                                           "which some programs read as octal: write it in "
                                           "plain decimal"
                                         : "it is not an IPv4 or IPv6 address";
    unsigned max = r->v6 ? 128 : 32;
    r->bits = max;
    if (slash) {
        const char *b = slash + 1;
        size_t blen = len - alen - 1;
        unsigned v = 0;
        if (blen == 0 || blen > 3)
            return "the prefix length after '/' must be a number of bits";
        for (size_t i = 0; i < blen; i++) {
            if (b[i] < '0' || b[i] > '9')
                return "the prefix length after '/' must be a number of bits";
            v = v * 10 + (unsigned)(b[i] - '0');
        }
        if (v > max)
            return r->v6 ? "an IPv6 prefix length is at most 128"
                         : "an IPv4 prefix length is at most 32";
        r->bits = v;
    }
    mask_bits(r->addr, r->bits);
    return NULL;
}

static int ranges_grow(struct range_list *l)
{
    if (l->n < l->cap)
        return 0;
    size_t cap = l->cap ? l->cap * 2 : LIST_FIRST_CAP;
    if (cap > (size_t)-1 / sizeof *l->v)
        return -1;
    struct addr_range *v = realloc(l->v, cap * sizeof *v);
    if (!v)
        return -1;
    l->v = v;
    l->cap = cap;
    return 0;
}

void domains_free_ranges(struct range_list *l)
{
    if (!l)
        return;
    free(l->v);
    memset(l, 0, sizeof *l);
}

int domains_parse_ranges(struct range_list *l, const char *text, char *why, size_t why_len)
{
    const char *p = text ? text : "", *s;
    size_t len;
    if (!l)
        return -2;
    memset(l, 0, sizeof *l);
    if (why && why_len)
        why[0] = '\0';
    while ((len = next_entry(&p, &s)) > 0) {
        struct addr_range r;
        const char *rule = len > IP_TEXT_MAX + 4 ? "it is too long for an address and a "
                                                   "prefix length"
                                                 : parse_range(s, len, &r);
        if (rule) {
            say(why, why_len, "'%.*s%s' is not an address range: %s %s",
                (int)(len > 100 ? 100 : len), s, len > 100 ? "..." : "", rule, RANGE_FORMS);
            domains_free_ranges(l);
            return -1;
        }
        if (ranges_grow(l) != 0) {
            say(why, why_len, "out of memory reading the address ranges");
            domains_free_ranges(l);
            return -2;
        }
        l->v[l->n++] = r;
    }
    return 0;
}

static int range_has(const struct addr_range *r, int v6, const unsigned char *a)
{
    unsigned char m[16] = { 0 };
    if (r->v6 != v6)
        return 0;
    memcpy(m, a, v6 ? 16 : 4);
    mask_bits(m, r->bits);
    return memcmp(m, r->addr, v6 ? 16 : 4) == 0;
}

int domains_in_ranges(const struct range_list *l, int v6, const unsigned char *addr)
{
    static const unsigned char v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    if (!l || !addr)
        return 0;
    int mapped = v6 && memcmp(addr, v4mapped, sizeof v4mapped) == 0;
    for (size_t i = 0; i < l->n; i++)
        if (range_has(&l->v[i], v6 != 0, addr) || (mapped && range_has(&l->v[i], 0, addr + 12)))
            return 1;
    return 0;
}
