/* fuzz_routelist.c - arbitrary text as a list of per-domain routes.
 *
 * Input: the text of the list. Besides the sanitizers, it checks what the
 * parser promises: a refusal leaves the list empty and says why in a
 * printable sentence; every route it keeps has a domain, a host and a port
 * of 1..65535, a user whenever PLAIN or LOGIN may be used and never TLS
 * off with them; its canonical text reads back to the same route and the
 * same text; no two routes share a domain; and for each route's own domain
 * (and a name under a wildcard) routelist_find gives a route that the one
 * matcher (domains_match) says covers it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "routelist.h"

static void check_sentence(const char *why)
{
    size_t n = strnlen(why, ROUTELIST_WHY_MAX);
    if (n == 0 || n >= ROUTELIST_WHY_MAX)
        abort();
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)why[i] < 32 || (unsigned char)why[i] > 126)
            abort();
}

static int same_entry(const struct route_entry *a, const struct route_entry *b)
{
    return a->domain.kind == b->domain.kind && strcmp(a->domain.name, b->domain.name) == 0 &&
           strcmp(a->pattern, b->pattern) == 0 && strcmp(a->host, b->host) == 0 &&
           a->port == b->port && a->tls == b->tls && a->trust_any == b->trust_any &&
           a->auth == b->auth && strcmp(a->user, b->user) == 0;
}

static void check_found(const struct route_list *l, const char *domain)
{
    const struct route_entry *f = routelist_find(l, domain);
    if (!f)
        abort();        /* its own domain always has a route */
    struct domain_list one = { (struct domain_entry *)&f->domain, 1, 1 };
    if (!domains_match(&one, domain))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    char why[ROUTELIST_WHY_MAX], buf[ROUTELIST_LINE_MAX + 1], again_buf[ROUTELIST_LINE_MAX + 1];
    char name[ROUTELIST_PATTERN_MAX + 8];
    struct route_list l;
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    int rc = routelist_parse(&l, text, why, sizeof why);
    if (rc != 0) {
        if (l.n != 0 || l.v != NULL)
            abort();
        check_sentence(why);
        free(text);
        return 0;
    }
    for (size_t i = 0; i < l.n; i++) {
        const struct route_entry *e = &l.v[i];
        struct route_entry again;
        if (!e->pattern[0] || !e->host[0] || e->port < 1 || e->port > 65535)
            abort();
        if ((e->auth & ROUTELIST_AUTH_PASSWORD) && (!e->user[0] || e->tls == ROUTELIST_TLS_OFF))
            abort();
        int w = routelist_format(e, 0, buf, sizeof buf);
        if (w <= 0 || routelist_parse_line(&again, buf, (size_t)w, why, sizeof why) != 0 ||
            !same_entry(&again, e))
            abort();
        if (routelist_format(&again, 0, again_buf, sizeof again_buf) != w ||
            strcmp(buf, again_buf) != 0)
            abort();
        for (size_t j = 0; j < i; j++)
            if (strcmp(l.v[j].pattern, e->pattern) == 0)
                abort();
        if (routelist_get(&l, e->pattern) != e)
            abort();
        if (e->domain.kind == DOMAIN_WILDCARD) {
            /* a name under the wildcard, if it is still a valid name */
            if (strlen(e->domain.name) + 3 <= ADDR_DOMAIN_MAX) {
                memcpy(name, "x.", 2);
                memcpy(name + 2, e->domain.name, strlen(e->domain.name) + 1);
                check_found(&l, name);
            }
        } else {
            check_found(&l, e->domain.name);
        }
    }
    routelist_free(&l);
    free(text);
    return 0;
}
