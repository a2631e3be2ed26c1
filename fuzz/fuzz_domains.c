/* fuzz_domains.c - LocalDomains and RelayAddresses text, parsed and matched.
 *
 * The input is cut at its first newline: before it, list text (parsed as
 * LocalDomains and as RelayAddresses); after it, a domain to match. Checks:
 * a refusal says why in one bounded sentence naming the entry, and leaves
 * the list empty; an accepted LocalDomains list is canonical (written back
 * and parsed again it is the same list), each name matches itself in any
 * case and with a trailing dot, each wildcard matches a subdomain; the domain
 * matches the list exactly when it matches the list parsed again, and only
 * if it is a name or literal that routing would read (route_select); an
 * accepted range holds its own first and last address.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "domains.h"
#include "route.h"

#define TEXT_MAX 4096

static void check_why(int rc, const char *why, size_t cap)
{
    size_t n = strnlen(why, cap);
    if (n >= cap)
        abort();
    if (rc == 0 && n != 0)
        abort();
    if (rc == -1 && (n == 0 || why[0] != '\''))
        abort();
    if (rc != 0 && rc != -1)
        abort();
}

/* The list written back as text: canonical entries, ';'-joined. */
static void write_back(const struct domain_list *l, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < l->n; i++) {
        const char *pre = l->v[i].kind == DOMAIN_WILDCARD ? "*." : "";
        size_t need = strlen(pre) + strlen(l->v[i].name) + 1;
        if (o + need + 1 > cap)
            abort();
        memcpy(out + o, pre, strlen(pre));
        o += strlen(pre);
        memcpy(out + o, l->v[i].name, strlen(l->v[i].name));
        o += strlen(l->v[i].name);
        out[o++] = ';';
        out[o] = '\0';
    }
}

static void check_domains(const char *text, const char *domain)
{
    static char back[TEXT_MAX * 2], probe[ADDR_DOMAIN_MAX + 8];
    char why[DOMAINS_WHY_MAX];
    struct domain_list l, again;
    int rc = domains_parse(&l, text, why, sizeof why);
    check_why(rc, why, sizeof why);
    if (rc != 0) {
        if (l.v || l.n)
            abort();
        return;
    }
    write_back(&l, back, sizeof back);
    if (domains_parse(&again, back, why, sizeof why) != 0 || again.n != l.n)
        abort();
    for (size_t i = 0; i < l.n; i++) {
        const struct domain_entry *e = &l.v[i];
        if (e->kind != again.v[i].kind || strcmp(e->name, again.v[i].name) != 0)
            abort();
        size_t n = strlen(e->name);
        if (e->kind == DOMAIN_WILDCARD) {
            if (n + 2 > ADDR_DOMAIN_MAX) {
                continue;
            }
            probe[0] = 'x';
            probe[1] = '.';
            memcpy(probe + 2, e->name, n + 1);
            if (!domains_match(&l, probe))
                abort();
            continue;
        }
        memcpy(probe, e->name, n + 1);
        for (size_t k = 0; k < n; k++)
            if (probe[k] >= 'a' && probe[k] <= 'z')
                probe[k] = (char)(probe[k] - 'a' + 'A');
        if (!domains_match(&l, probe) || !domains_match(&l, e->name))
            abort();
        if (e->kind == DOMAIN_NAME) {
            memcpy(probe + n, ".", 2);
            if (!domains_match(&l, probe))
                abort();
        }
    }
    int m = domains_match(&l, domain);
    if (m != domains_match(&again, domain))
        abort();
    if (m) {
        struct route r;
        struct route_config c = { &l, NULL, 25, 25, NULL };
        if (route_select(&c, domain, &r) != 0 || r.kind != ROUTE_DROP)
            abort();
    }
    domains_free(&again);
    domains_free(&l);
}

static void check_ranges(const char *text, const char *ip)
{
    char why[DOMAINS_WHY_MAX];
    struct range_list l;
    int rc = domains_parse_ranges(&l, text, why, sizeof why);
    check_why(rc, why, sizeof why);
    if (rc != 0) {
        if (l.v || l.n)
            abort();
        return;
    }
    for (size_t i = 0; i < l.n; i++) {
        const struct addr_range *r = &l.v[i];
        unsigned char last[16];
        unsigned max = r->v6 ? 128 : 32;
        if (r->bits > max)
            abort();
        memcpy(last, r->addr, 16);
        for (unsigned b = r->bits; b < max; b++)
            last[b / 8] |= (unsigned char)(0x80u >> (b % 8));
        if (!domains_in_ranges(&l, r->v6, r->addr) || !domains_in_ranges(&l, r->v6, last))
            abort();
    }
    unsigned char a[16];
    int v6;
    if (domains_parse_ip(ip, strlen(ip), &v6, a) == 0)
        (void)domains_in_ranges(&l, v6, a);
    domains_free_ranges(&l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char text[TEXT_MAX + 1], tail[TEXT_MAX + 1];
    if (size > TEXT_MAX)
        return 0;
    const uint8_t *nl = memchr(data, '\n', size);
    size_t n = nl ? (size_t)(nl - data) : size;
    memcpy(text, data, n);
    text[n] = '\0';
    size_t tn = nl ? size - n - 1 : 0;
    memcpy(tail, nl ? nl + 1 : data, tn);
    tail[tn] = '\0';
    /* a NUL ends the C strings early: the parsers see what a caller would */
    check_domains(text, tail);
    check_ranges(text, tail);
    return 0;
}
