/* fuzz_route.c - the verdict on a recipient, as RCPT TO and the queue ask it.
 *
 * Byte 0 picks the configuration (a smart host or none; which local domains);
 * the rest is the argument of RCPT TO. Whatever parses gets a verdict for a
 * client that may not relay and for one that may, and the verdicts must
 * hold together: a refusal is a 451 or 550 with an enhanced status of its
 * class and a printable sentence; what a client that may not relay is given
 * is dropped here, and a relaying client gets it the same way; what is
 * accepted has a destination key, and its delivered address (a domain-less
 * <Postmaster> rewritten) gets the same verdict again, as the queue sees it;
 * what route_select says about the domain agrees.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "route.h"

/* Two LocalDomains settings, parsed on the first input and kept. */
static const struct domain_list *local_list(int which)
{
    static struct domain_list l[2];
    static int parsed;
    if (!parsed) {
        if (domains_parse(&l[0], "example.com;*.corp.example;[192.0.2.1];[IPv6:2001:db8::1]",
                          NULL, 0) != 0 ||
            domains_parse(&l[1], "*.w.example, [IPv6:2001:DB8::7]", NULL, 0) != 0)
            abort();
        parsed = 1;
    }
    return &l[which];
}

static void check_verdict(const struct route_verdict *v, int rc)
{
    if ((rc == 0) != (v->code == 250))
        abort();
    if (v->code != 250 && v->code != 451 && v->code != 550)
        abort();
    if (!v->status || v->status[0] != (char)('0' + v->code / 100) || v->status[1] != '.')
        abort();
    size_t n = strnlen(v->why, sizeof v->why);
    if (n >= sizeof v->why || (rc == 0) != (n == 0))
        abort();
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v->why[i] < 32 || (unsigned char)v->why[i] > 126)
            abort();
}

static int same_route(const struct route *a, const struct route *b)
{
    return a->kind == b->kind && strcmp(a->host, b->host) == 0 && a->port == b->port &&
           a->literal == b->literal;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct addr_path p;
    struct addr_params prm;
    struct addr_error err;
    struct route_verdict strange, relay, again;
    char key[ROUTE_KEY_MAX];
    if (size < 1)
        return 0;
    struct route_config c = { local_list(data[0] & 1), NULL, 25, 25, NULL };
    if (data[0] & 2)
        c.smarthost = (data[0] & 4) ? "relay.example.net:2525" : "relay:0";
    if (addr_parse_command((const char *)data + 1, size - 1, ADDR_RCPT, &p, &prm, &err) != 0)
        return 0;

    int rs = route_recipient(&c, &p, 0, &strange);
    int rr = route_recipient(&c, &p, 1, &relay);
    check_verdict(&strange, rs);
    check_verdict(&relay, rr);
    if (rs == 0) {
        /* a stranger only ever reaches the drop directory, and relaying changes nothing */
        if (strange.route.kind != ROUTE_DROP || rr != 0 || !same_route(&strange.route, &relay.route))
            abort();
        if (!addr_mailbox_equal(&strange.addr, &relay.addr))
            abort();
    }
    if (rr != 0)
        return 0;
    if (route_key(&relay.route, key, sizeof key) <= 0)
        abort();
    /* the queue asks about the address the server stored */
    if (route_recipient(&c, &relay.addr, 1, &again) != 0 || !same_route(&again.route, &relay.route))
        abort();
    if (p.kind == ADDR_DOMAIN_NONE) {
        if (relay.route.kind != ROUTE_DROP)
            abort();
        return 0;
    }
    struct route sel;
    if (route_select(&c, p.domain, &sel) != 0 || !same_route(&sel, &relay.route))
        abort();
    return 0;
}
