/* route.c - whether a recipient is accepted, where its mail goes, and MX
 * order (see route.h, docs/routing.md).
 *
 * Names and literals are validated and made canonical by core/address.c's
 * rules (a literal is checked by parsing "x@[...]" as a mailbox), so a
 * domain that address.c accepted in RCPT TO routes the same way here; what
 * is local is decided by core/domains.c's matcher alone. The SMTP server
 * and the queue both ask route_recipient, so what one accepts the other
 * routes. Must never resolve, allocate, read past a bounded name,
 * or accept for a client that may not relay anything that leaves the
 * server.
 */
#include "route.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "address.h"

#define PORT_DIGITS_MAX 5
#define PORT_MAX        65535u
#define LITERAL_BUF     (ROUTE_HOST_MAX + 16)   /* "x@[IPv6:" ... "]" */
#define IPV6_TAG        "IPv6:"
#define IPV6_TAG_LEN    5

static int lower(int ch)
{
    return ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch;
}

/* Length of s, or n + 1 when s is longer than n (never reads past s[n]). */
static size_t bounded_len(const char *s, size_t n)
{
    size_t i = 0;
    while (i <= n && s[i])
        i++;
    return i;
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

static int port_valid(unsigned p)
{
    return p >= 1 && p <= PORT_MAX;
}

/* 1..65535 in decimal digits, nothing else. */
static int parse_port(const char *s, size_t len, unsigned *port)
{
    unsigned v = 0;
    if (len == 0 || len > PORT_DIGITS_MAX)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (!port_valid(v))
        return -1;
    *port = v;
    return 0;
}

/* A domain name at s[0..len), one trailing dot allowed: lower case, no dot,
 * into out. */
static int canon_name(const char *s, size_t len, char *out, size_t cap)
{
    if (len > 0 && s[len - 1] == '.')
        len--;
    if (len == 0 || len >= cap || !addr_domain_valid(s, len))
        return -1;
    for (size_t i = 0; i < len; i++)
        out[i] = (char)lower((unsigned char)s[i]);
    out[len] = '\0';
    return 0;
}

/* The text between the brackets of an address literal (IPv4, "IPv6:..."
 * or, when tag_optional, bare IPv6): the canonical literal with brackets
 * ("[192.0.2.1]", "[IPv6:2001:db8::1]") into out. */
static int canon_literal(const char *s, size_t len, int tag_optional, char *out, size_t cap)
{
    char buf[LITERAL_BUF];
    const char *tag = "";
    if (tag_optional && memchr(s, ':', len) && !prefix_ci(s, len, IPV6_TAG))
        tag = IPV6_TAG;
    if (len > ROUTE_HOST_MAX)
        return -1;
    int w = snprintf(buf, sizeof buf, "x@[%s%.*s]", tag, (int)len, s);
    if (w < 0 || (size_t)w >= sizeof buf)
        return -1;
    struct addr_path p;
    if (addr_parse_mailbox(buf, (size_t)w, ADDR_RCPT, &p, NULL) != 0 ||
        (p.kind != ADDR_DOMAIN_IPV4 && p.kind != ADDR_DOMAIN_IPV6))
        return -1;
    w = snprintf(out, cap, "%s", p.domain);
    return w < 0 || (size_t)w >= cap ? -1 : 0;
}

/* "[192.0.2.1]" -> "192.0.2.1", "[IPv6:2001:db8::1]" -> "2001:db8::1". */
static int literal_address(const char *lit, char *out, size_t cap)
{
    size_t len = strlen(lit);
    if (len < 2)
        return -1;
    const char *a = lit + 1;
    size_t n = len - 2;
    if (n > IPV6_TAG_LEN && prefix_ci(a, n, IPV6_TAG)) {
        a += IPV6_TAG_LEN;
        n -= IPV6_TAG_LEN;
    }
    int w = snprintf(out, cap, "%.*s", (int)n, a);
    return w < 0 || (size_t)w >= cap ? -1 : 0;
}

/* A domain as RCPT TO gives it: a name or a bracketed literal, canonical. */
static int canon_domain(const char *s, char *out, size_t cap, int *literal)
{
    size_t len = bounded_len(s, ROUTE_HOST_MAX + 1);
    if (len > ROUTE_HOST_MAX + 1)
        return -1;
    if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
        *literal = 1;
        return canon_literal(s + 1, len - 2, 0, out, cap);
    }
    *literal = 0;
    return canon_name(s, len, out, cap);
}

int route_parse_hostport(const char *text, unsigned default_port, char *host, size_t host_len,
                         unsigned *port)
{
    char name[ROUTE_HOST_MAX + 1], lit[ROUTE_HOST_MAX + 1];
    const char *rest;
    if (!text || !host || host_len == 0 || !port)
        return -1;
    host[0] = '\0';
    size_t len = bounded_len(text, LITERAL_BUF);
    if (len > LITERAL_BUF)
        return -1;
    if (text[0] == '[') {
        const char *close = memchr(text, ']', len);
        if (!close || memchr(text + 1, '[', (size_t)(close - text - 1)))
            return -1;
        if (canon_literal(text + 1, (size_t)(close - text - 1), 1, lit, sizeof lit) != 0 ||
            literal_address(lit, name, sizeof name) != 0)
            return -1;
        rest = close + 1;
    } else {
        const char *colon = memchr(text, ':', len);
        size_t hlen = colon ? (size_t)(colon - text) : len;
        if (colon && memchr(colon + 1, ':', len - hlen - 1))
            return -1;          /* a bare IPv6 address, or junk */
        if (canon_name(text, hlen, name, sizeof name) != 0)
            return -1;
        rest = text + hlen;
    }
    unsigned p = default_port;
    if (*rest == ':') {
        if (parse_port(rest + 1, strlen(rest + 1), &p) != 0)
            return -1;
    } else if (*rest != '\0' || !port_valid(default_port)) {
        return -1;
    }
    int w = snprintf(host, host_len, "%s", name);
    if (w < 0 || (size_t)w >= host_len) {
        host[0] = '\0';
        return -1;
    }
    *port = p;
    return 0;
}

/* The one matcher (core/domains.c): the same as the relay check and IMCEA. */
static int is_local(const struct route_config *c, const char *domain)
{
    return domains_match(c->local, domain);
}

/* Where a canonical domain that is not local goes: its route, else the
 * smart host, else its MX hosts. domain is as the address gave it (for the
 * matcher). -1 when a setting is not valid. */
static int select_remote(const struct route_config *c, const char *domain, const char *dom,
                         int literal, struct route *out)
{
    const struct route_entry *re = routelist_find(c->routes, domain);
    if (re) {
        out->kind = ROUTE_SMARTHOST;
        out->port = re->port;
        memcpy(out->host, re->host, strlen(re->host) + 1);
        memcpy(out->via, re->pattern, strlen(re->pattern) + 1);
        return 0;
    }
    if (c->smarthost && c->smarthost[0]) {
        out->kind = ROUTE_SMARTHOST;
        if (route_parse_hostport(c->smarthost, c->smarthost_default_port, out->host,
                                 sizeof out->host, &out->port) != 0) {
            memset(out, 0, sizeof *out);
            return -1;
        }
        return 0;
    }
    if (!port_valid(c->outbound_port))
        return -1;
    out->kind = ROUTE_MX;
    out->port = c->outbound_port;
    out->literal = literal;
    if (literal)
        return literal_address(dom, out->host, sizeof out->host);
    memcpy(out->host, dom, strlen(dom) + 1);
    return 0;
}

int route_select(const struct route_config *c, const char *domain, struct route *out)
{
    char dom[ROUTE_HOST_MAX + 1];
    int literal;
    if (!c || !domain || !out)
        return -1;
    memset(out, 0, sizeof *out);
    if (canon_domain(domain, dom, sizeof dom, &literal) != 0)
        return -1;
    if (is_local(c, domain)) {
        out->kind = ROUTE_DROP;
        return 0;
    }
    return select_remote(c, domain, dom, literal, out);
}

/* The verdict on one recipient ---------------------------------------------- */

static int refuse(struct route_verdict *v, int code, const char *status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Fill in a refusal; a sentence too long for why ends in "..." (every
 * argument is bounded by its format, so this does not happen). */
static int refuse(struct route_verdict *v, int code, const char *status, const char *fmt, ...)
{
    va_list ap;
    v->code = code;
    v->status = status;
    va_start(ap, fmt);
    int w = vsnprintf(v->why, sizeof v->why, fmt, ap);
    va_end(ap);
    if (w < 0)
        snprintf(v->why, sizeof v->why, "refused");
    else if ((size_t)w >= sizeof v->why)
        memcpy(v->why + sizeof v->why - 4, "...", 4);
    return -1;
}

static int ieq_str(const char *a, const char *b)
{
    while (*a && *b && lower((unsigned char)*a) == lower((unsigned char)*b))
        a++, b++;
    return *a == '\0' && *b == '\0';
}

/* A local part that names a mailbox on another host, as the percent hack
 * ("user%host"), UUCP bang paths ("host!user") and a quoted "user@host" do:
 * the character, or 0. An IMCEA local part counts when its encapsulated
 * address holds one of them (+25, +21, +40): *encoded is set then. imsvc
 * never routes by the local part, but whatever reads the drop directory
 * might. */
static int local_routing_char(const char *local, int *encoded)
{
    *encoded = 0;
    for (const char *p = local; *p; p++)
        if (*p == '%' || *p == '!' || *p == '@')
            return *p;
    if (!prefix_ci(local, strlen(local), "IMCEA"))
        return 0;
    *encoded = 1;
    for (const char *p = local; *p; p++) {
        if (p[0] != '+' || !p[1] || !p[2])
            continue;
        if (p[1] == '2' && p[2] == '5')
            return '%';
        if (p[1] == '2' && p[2] == '1')
            return '!';
        if (p[1] == '4' && p[2] == '0')
            return '@';
    }
    *encoded = 0;
    return 0;
}

static int hex_digit(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = lower(ch);
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Hex groups "h:h:h" at s[0..len) into g; returns how many, or -1. */
static int hex_groups(const char *s, size_t len, unsigned g[8])
{
    int n = 0;
    size_t i = 0;
    if (len == 0)
        return 0;
    for (;;) {
        unsigned v = 0, nd = 0;
        while (i < len && hex_digit((unsigned char)s[i]) >= 0 && nd < 5) {
            v = v * 16 + (unsigned)hex_digit((unsigned char)s[i]);
            i++;
            nd++;
        }
        if (nd == 0 || nd > 4 || n == 8)
            return -1;
        g[n++] = v;
        if (i == len)
            return n;
        if (s[i] != ':')
            return -1;
        i++;
    }
}

/* The 16 octets of a canonical literal ("[192.0.2.1]" as ::ffff:192.0.2.1,
 * or "[IPv6:...]" as address.c prints it: hex groups, at most one "::"). */
static int literal_octets(const char *lit, unsigned char a[16])
{
    size_t len = strlen(lit);
    memset(a, 0, 16);
    if (len < 3 || lit[0] != '[' || lit[len - 1] != ']')
        return -1;
    const char *s = lit + 1;
    len -= 2;
    if (!prefix_ci(s, len, IPV6_TAG)) {
        unsigned v = 0, k = 12, nd = 0;
        for (size_t i = 0; i <= len; i++) {
            if (i == len || s[i] == '.') {
                if (nd == 0 || v > 255 || k > 15)
                    return -1;
                a[k++] = (unsigned char)v;
                v = nd = 0;
            } else if (s[i] >= '0' && s[i] <= '9' && nd < 3) {
                v = v * 10 + (unsigned)(s[i] - '0');
                nd++;
            } else {
                return -1;
            }
        }
        a[10] = a[11] = 0xff;
        return k == 16 ? 0 : -1;
    }
    s += IPV6_TAG_LEN;
    len -= IPV6_TAG_LEN;
    unsigned head[8], tail[8];
    int nh, nt = 0;
    const char *gap = NULL;
    for (size_t i = 0; i + 1 < len; i++)
        if (s[i] == ':' && s[i + 1] == ':') {
            gap = s + i;
            break;
        }
    if (gap) {
        nh = hex_groups(s, (size_t)(gap - s), head);
        nt = hex_groups(gap + 2, len - (size_t)(gap - s) - 2, tail);
        if (nh < 0 || nt < 0 || nh + nt > 7)
            return -1;
    } else {
        nh = hex_groups(s, len, head);
        if (nh != 8)
            return -1;
    }
    for (int i = 0; i < nh; i++) {
        a[2 * i] = (unsigned char)(head[i] >> 8);
        a[2 * i + 1] = (unsigned char)head[i];
    }
    for (int i = 0; i < nt; i++) {
        a[16 - 2 * nt + 2 * i] = (unsigned char)(tail[i] >> 8);
        a[16 - 2 * nt + 2 * i + 1] = (unsigned char)tail[i];
    }
    return 0;
}

/* Why no host can have the literal's address, or NULL when one can. */
static const char *literal_unusable(const char *lit)
{
    static const unsigned char v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    unsigned char a[16];
    if (literal_octets(lit, a) != 0)
        return "it is not an address this server can read";
    if (memcmp(a, v4mapped, sizeof v4mapped) == 0) {
        const unsigned char *b = a + 12;
        if (b[0] == 0)
            return "0.0.0.0/8 means this network (RFC 1122), not a host";
        if (b[0] == 255 && b[1] == 255 && b[2] == 255 && b[3] == 255)
            return "it is the limited broadcast address";
        if (b[0] >= 224 && b[0] <= 239)
            return "it is a multicast address (224.0.0.0/4)";
        if (b[0] >= 240)
            return "it is in the reserved block 240.0.0.0/4";
        return NULL;
    }
    static const unsigned char zero[16];
    if (memcmp(a, zero, 16) == 0)
        return "it is the unspecified address ::";
    if (a[0] == 0xff)
        return "it is a multicast address (ff00::/8)";
    return NULL;
}

/* postmaster@ the first local domain that names one domain (a wildcard
 * names many): RFC 5321 4.5.1's domain-less <Postmaster> delivered here.
 * With no such domain the address stays as it was: it is dropped all the
 * same. */
static void postmaster_address(const struct route_config *c, struct addr_path *p)
{
    const struct domain_entry *e = domains_first_single(c->local);
    if (!e)
        return;
    memset(p, 0, sizeof *p);
    memcpy(p->local, "postmaster", sizeof "postmaster");
    memcpy(p->domain, e->name, strlen(e->name) + 1);
    p->kind = e->kind == DOMAIN_IPV4 ? ADDR_DOMAIN_IPV4
            : e->kind == DOMAIN_IPV6 ? ADDR_DOMAIN_IPV6
            : ADDR_DOMAIN_NAME;
}

int route_recipient(const struct route_config *c, const struct addr_path *rcpt, int may_relay,
                    struct route_verdict *v)
{
    char dom[ROUTE_HOST_MAX + 1];
    int literal, encoded;
    if (!v)
        return -1;
    memset(v, 0, sizeof *v);
    if (!c || !rcpt || rcpt->null_path)
        return refuse(v, 550, "5.1.3", "the null path <> is not a recipient");
    v->addr = *rcpt;
    if (rcpt->kind == ADDR_DOMAIN_NONE) {
        if (!ieq_str(rcpt->local, "postmaster"))
            return refuse(v, 550, "5.1.3", "the address has no domain; only <Postmaster> may be "
                          "written without one (RFC 5321 4.5.1)");
        postmaster_address(c, &v->addr);
        goto drop;
    }
    if (canon_domain(rcpt->domain, dom, sizeof dom, &literal) != 0)
        return refuse(v, 550, "5.1.2", "%.255s is not a valid domain name or address literal",
                      rcpt->domain);
    if (is_local(c, rcpt->domain)) {
        int ch = local_routing_char(rcpt->local, &encoded);
        if (ch && !may_relay)
            return refuse(v, 550, "5.7.1", "relaying denied: %s'%c'%s in the local part names a "
                          "mailbox on another host; authenticate to send mail elsewhere",
                          encoded ? "an encoded " : "", ch,
                          encoded ? (ch == '%' ? " (+25)" : ch == '!' ? " (+21)" : " (+40)") : "");
        goto drop;
    }
    const char *unusable = literal ? literal_unusable(dom) : NULL;
    if (unusable)
        return refuse(v, 550, "5.1.2", "%.255s cannot receive mail: %s", dom, unusable);
    if (!may_relay)
        return refuse(v, 550, "5.7.1", "relaying denied: %.255s is not a local domain; "
                      "authenticate to send mail elsewhere", dom);
    if (select_remote(c, rcpt->domain, dom, literal, &v->route) != 0) {
        memset(&v->route, 0, sizeof v->route);
        if (c->smarthost && c->smarthost[0])
            return refuse(v, 451, "4.3.5", "the SmartHost setting \"%.200s\" is not a valid "
                          "host, host:port or [address]:port; mail for other domains waits until "
                          "it is corrected", c->smarthost);
        return refuse(v, 451, "4.3.5", "the OutboundPort setting %u is not a valid port; mail for "
                      "other domains waits until it is corrected", c->outbound_port);
    }
    v->code = 250;
    v->status = "2.1.5";
    return 0;
drop:
    v->route.kind = ROUTE_DROP;
    v->code = 250;
    v->status = "2.1.5";
    return 0;
}

int route_key(const struct route *r, char *buf, size_t n)
{
    int w;
    if (!r || !buf || n == 0)
        return -1;
    size_t hl = bounded_len(r->host, ROUTE_HOST_MAX);
    if (hl > ROUTE_HOST_MAX) {
        buf[0] = '\0';
        return -1;
    }
    switch (r->kind) {
    case ROUTE_DROP:
        w = snprintf(buf, n, "drop");
        break;
    case ROUTE_SMARTHOST:
        if (bounded_len(r->via, ROUTELIST_PATTERN_MAX) > ROUTELIST_PATTERN_MAX)
            w = -1;
        else if (r->via[0])
            w = snprintf(buf, n, "route:%s:%s:%u", r->via, r->host, r->port);
        else
            w = snprintf(buf, n, "smarthost:%s:%u", r->host, r->port);
        break;
    case ROUTE_MX:
        w = snprintf(buf, n, r->literal ? "mx:[%s]" : "mx:%s", r->host);
        break;
    default:
        w = -1;
        break;
    }
    if (w < 0 || (size_t)w >= n) {
        buf[0] = '\0';
        return -1;
    }
    for (int i = 0; i < w; i++)
        buf[i] = (char)lower((unsigned char)buf[i]);
    return w;
}

/* MX order --------------------------------------------------------------------- */

/* Host names equal as DNS compares them: case-insensitive, one trailing
 * dot ignored. */
static int name_eq(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 0 && a[la - 1] == '.')
        la--;
    if (lb > 0 && b[lb - 1] == '.')
        lb--;
    if (la != lb)
        return 0;
    for (size_t i = 0; i < la; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return 0;
    return 1;
}

static int is_root(const char *h)
{
    return h[0] == '\0' || (h[0] == '.' && h[1] == '\0');
}

static int is_self(const char *h, const char *const *self, size_t n_self)
{
    for (size_t i = 0; self && i < n_self; i++)
        if (self[i] && bounded_len(self[i], ROUTE_HOST_MAX) <= ROUTE_HOST_MAX &&
            name_eq(h, self[i]))
            return 1;
    return 0;
}

/* xorshift32: small, deterministic, and good enough to spread load. */
static unsigned prng_next(unsigned long *state)
{
    unsigned long x = *state;
    x ^= (x << 13) & 0xffffffffUL;
    x ^= x >> 17;
    x ^= (x << 5) & 0xffffffffUL;
    *state = x;
    return (unsigned)x;
}

static void shuffle_ties(struct route_mx *mx, size_t n, unsigned seed)
{
    /* Mix the seed so that nearby seeds give different orders; xorshift
     * must not start at zero. */
    unsigned long state = ((unsigned long)seed * 2654435761UL + 0x9e3779b9UL) & 0xffffffffUL;
    if (state == 0)
        state = 0x6d2b79f5UL;
    for (size_t a = 0; a < n;) {
        size_t b = a + 1;
        while (b < n && mx[b].pref == mx[a].pref)
            b++;
        for (size_t i = b - a; i > 1; i--) {
            size_t j = prng_next(&state) % i;
            struct route_mx t = mx[a + i - 1];
            mx[a + i - 1] = mx[a + j];
            mx[a + j] = t;
        }
        a = b;
    }
}

enum route_mx_result route_mx_order(struct route_mx *mx, size_t n, const char *const *self_names,
                                    size_t n_self, unsigned seed, size_t *n_out)
{
    size_t k = 0;
    *n_out = 0;
    if (n == 0 || !mx)
        return ROUTE_MX_IMPLICIT;

    /* Duplicates: keep the first occurrence, with the lowest preference. */
    for (size_t i = 0; i < n; i++) {
        mx[i].host[ROUTE_HOST_MAX] = '\0';
        size_t j = 0;
        while (j < k && !name_eq(mx[j].host, mx[i].host))
            j++;
        if (j < k) {
            if (mx[i].pref < mx[j].pref)
                mx[j].pref = mx[i].pref;
        } else {
            if (k != i)
                mx[k] = mx[i];
            k++;
        }
    }
    if (k == 1 && is_root(mx[0].host))
        return ROUTE_MX_NULL;

    /* The root among real hosts names no host. */
    size_t m = 0;
    for (size_t i = 0; i < k; i++)
        if (!is_root(mx[i].host)) {
            if (m != i)
                mx[m] = mx[i];
            m++;
        }

    /* Stable insertion sort: DNS answers are small. */
    for (size_t i = 1; i < m; i++) {
        struct route_mx t = mx[i];
        size_t j = i;
        while (j > 0 && mx[j - 1].pref > t.pref) {
            mx[j] = mx[j - 1];
            j--;
        }
        mx[j] = t;
    }
    shuffle_ties(mx, m, seed);

    /* RFC 5321 5.1: if we are listed, only strictly better hosts may be
     * tried; if there are none, we are the best MX and relaying would loop. */
    for (size_t i = 0; i < m; i++) {
        if (is_self(mx[i].host, self_names, n_self)) {
            unsigned short p = mx[i].pref;
            size_t keep = 0;
            while (keep < m && mx[keep].pref < p)
                keep++;
            if (keep == 0)
                return ROUTE_MX_SELF;
            m = keep;
            break;
        }
    }
    *n_out = m;
    return ROUTE_MX_OK;
}
