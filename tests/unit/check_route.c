/* check_route.c - local domains, the verdict on every recipient form RCPT TO
 * accepts, smart host syntax, destination keys and MX order (RFC 5321 5.1,
 * RFC 7505), by table. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "route.h"

/* LocalDomains, parsed once (entries it refuses: check_domains.c). */
static const struct domain_list *locals(void)
{
    static struct domain_list l;
    static int parsed;
    if (!parsed) {
        ck_assert_int_eq(domains_parse(&l, "example.com;Example.ORG.;*.corp.example;[192.0.2.1];"
                                           "[IPv6:2001:DB8:0::1]", NULL, 0), 0);
        parsed = 1;
    }
    return &l;
}

static struct route_config config(const char *smarthost)
{
    struct route_config c = { locals(), smarthost, 25, 587, NULL };
    return c;
}

/* route_select ---------------------------------------------------------------- */

static const struct {
    const char *domain, *smarthost;
    int rc;
    enum route_kind kind;
    const char *host;
    unsigned port;
    int literal;
} select_cases[] = {
    { "example.com", NULL, 0, ROUTE_DROP, "", 0, 0 },
    { "EXAMPLE.Com", NULL, 0, ROUTE_DROP, "", 0, 0 },
    { "example.com.", NULL, 0, ROUTE_DROP, "", 0, 0 },
    { "example.org", NULL, 0, ROUTE_DROP, "", 0, 0 },
    { "sub.example.com", NULL, 0, ROUTE_MX, "sub.example.com", 587, 0 },
    { "a.corp.example", NULL, 0, ROUTE_DROP, "", 0, 0 },
    { "X.Y.Corp.Example.", NULL, 0, ROUTE_DROP, "", 0, 0 },
    { "corp.example", NULL, 0, ROUTE_MX, "corp.example", 587, 0 },   /* wildcard: subdomains only */
    { "xcorp.example", NULL, 0, ROUTE_MX, "xcorp.example", 587, 0 },
    { "[192.0.2.1]", NULL, 0, ROUTE_DROP, "", 0, 0 },
    { "[192.0.2.2]", NULL, 0, ROUTE_MX, "192.0.2.2", 587, 1 },
    { "[IPv6:2001:db8::1]", NULL, 0, ROUTE_DROP, "", 0, 0 },
    { "[IPv6:2001:db8::2]", NULL, 0, ROUTE_MX, "2001:db8::2", 587, 1 },
    { "Other.NET", NULL, 0, ROUTE_MX, "other.net", 587, 0 },
    { "Other.NET", "", 0, ROUTE_MX, "other.net", 587, 0 },
    { "other.net", "Relay.Example.NET:2525", 0, ROUTE_SMARTHOST, "relay.example.net", 2525, 0 },
    { "[192.0.2.2]", "[192.0.2.9]", 0, ROUTE_SMARTHOST, "192.0.2.9", 25, 0 },
    { "example.com", "relay.example.net", 0, ROUTE_DROP, "", 0, 0 },   /* local wins */
    { "other.net", "relay:0", -1, ROUTE_DROP, "", 0, 0 },
    { "other.net", "2001:db8::9", -1, ROUTE_DROP, "", 0, 0 },
    { "", NULL, -1, ROUTE_DROP, "", 0, 0 },
    { ".", NULL, -1, ROUTE_DROP, "", 0, 0 },
    { "bad..domain", NULL, -1, ROUTE_DROP, "", 0, 0 },
    { "-x.example", NULL, -1, ROUTE_DROP, "", 0, 0 },
    { "[300.1.1.1]", NULL, -1, ROUTE_DROP, "", 0, 0 },
    { "[192.0.2.1", NULL, -1, ROUTE_DROP, "", 0, 0 },
    { "[2001:db8::1]", NULL, -1, ROUTE_DROP, "", 0, 0 },   /* RFC 5321 wants the IPv6: tag */
    { "*.corp.example", NULL, -1, ROUTE_DROP, "", 0, 0 },
};

START_TEST(select_table)
{
    struct route_config c = config(select_cases[_i].smarthost);
    struct route r;
    int rc = route_select(&c, select_cases[_i].domain, &r);
    ck_assert_msg(rc == select_cases[_i].rc, "%s: rc %d", select_cases[_i].domain, rc);
    if (rc != 0)
        return;
    ck_assert_int_eq(r.kind, select_cases[_i].kind);
    ck_assert_str_eq(r.host, select_cases[_i].host);
    ck_assert_uint_eq(r.port, select_cases[_i].port);
    ck_assert_int_eq(r.literal, select_cases[_i].literal);
}
END_TEST

/* A domain longer than a domain can be is rejected, not cut. */
START_TEST(select_long_domain)
{
    static char d[600];
    struct route_config c = config(NULL);
    struct route r;
    for (size_t i = 0; i + 1 < sizeof d; i += 2) {
        d[i] = 'a';
        d[i + 1] = '.';
    }
    d[sizeof d - 2] = 'a';
    d[sizeof d - 1] = '\0';
    ck_assert_int_eq(route_select(&c, d, &r), -1);
    d[255] = '\0';                          /* "a.a. ... a" of 255 octets */
    ck_assert_int_eq(route_select(&c, d, &r), 0);
    ck_assert_uint_eq(strlen(r.host), 255);
    c.outbound_port = 0;
    ck_assert_int_eq(route_select(&c, "other.net", &r), -1);
}
END_TEST

/* route_recipient ------------------------------------------------------------------ */

/* Every form RCPT TO accepts (core/address.c), for a client that may not
 * relay and for one that may: accepted and where it goes, or refused with
 * which reply. docs/routing.md has the same table in words. */
static const struct {
    const char *path;
    int may_relay;
    const char *smarthost;
    int code;               /* 250, or the refusal */
    const char *status;
    enum route_kind kind;   /* accepted: */
    const char *host;
    const char *addr;       /*   the address delivered to */
    const char *why;        /* refused: the start of the sentence */
} rcpt_cases[] = {
    /* RFC 5321 4.5.1: <Postmaster> needs no domain and is always local */
    { "<Postmaster>", 0, NULL, 250, "2.1.5", ROUTE_DROP, "", "postmaster@example.com", NULL },
    { "<pOSTmaster>", 1, "relay.example.net", 250, "2.1.5", ROUTE_DROP, "",
      "postmaster@example.com", NULL },
    { "<postmaster@example.com>", 0, NULL, 250, "2.1.5", ROUTE_DROP, "", "postmaster@example.com", NULL },
    /* local domains, by every rule route_select has */
    { "<user@example.com>", 0, NULL, 250, "2.1.5", ROUTE_DROP, "", "user@example.com", NULL },
    { "<User@EXAMPLE.org>", 0, NULL, 250, "2.1.5", ROUTE_DROP, "", "User@example.org", NULL },
    { "<u@a.corp.example>", 0, NULL, 250, "2.1.5", ROUTE_DROP, "", "u@a.corp.example", NULL },
    { "<u@[192.0.2.1]>", 0, NULL, 250, "2.1.5", ROUTE_DROP, "", "u@[192.0.2.1]", NULL },
    { "<u@[IPv6:2001:db8:0:0::1]>", 0, NULL, 250, "2.1.5", ROUTE_DROP, "",
      "u@[IPv6:2001:db8::1]", NULL },
    /* other domains: only for a client that may relay */
    { "<u@corp.example>", 0, NULL, 550, "5.7.1", ROUTE_DROP, "", NULL,
      "relaying denied: corp.example is not a local domain; authenticate to send mail elsewhere" },
    { "<u@other.example>", 0, NULL, 550, "5.7.1", ROUTE_DROP, "", NULL,
      "relaying denied: other.example is not a local domain" },
    { "<u@other.example>", 0, "relay.example.net", 550, "5.7.1", ROUTE_DROP, "", NULL,
      "relaying denied: other.example" },
    { "<u@other.example>", 1, NULL, 250, "2.1.5", ROUTE_MX, "other.example", "u@other.example", NULL },
    { "<u@other.example>", 1, "relay.example.net", 250, "2.1.5", ROUTE_SMARTHOST,
      "relay.example.net", "u@other.example", NULL },
    { "<u@other.example>", 1, "relay:0", 451, "4.3.5", ROUTE_DROP, "", NULL,
      "the SmartHost setting \"relay:0\" is not a valid host" },
    { "<u@example.com>", 1, "relay:0", 250, "2.1.5", ROUTE_DROP, "", "u@example.com", NULL },
    /* address literals: the server's own only when listed; none that no host can have */
    { "<u@[192.0.2.2]>", 0, NULL, 550, "5.7.1", ROUTE_DROP, "", NULL,
      "relaying denied: [192.0.2.2] is not a local domain" },
    { "<u@[127.0.0.1]>", 0, NULL, 550, "5.7.1", ROUTE_DROP, "", NULL,
      "relaying denied: [127.0.0.1] is not a local domain" },
    { "<u@[192.0.2.2]>", 1, NULL, 250, "2.1.5", ROUTE_MX, "192.0.2.2", "u@[192.0.2.2]", NULL },
    { "<u@[127.0.0.1]>", 1, NULL, 250, "2.1.5", ROUTE_MX, "127.0.0.1", "u@[127.0.0.1]", NULL },
    { "<u@[IPv6:::1]>", 1, NULL, 250, "2.1.5", ROUTE_MX, "::1", "u@[IPv6:::1]", NULL },
    { "<u@[IPv6:2001:db8::2]>", 0, NULL, 550, "5.7.1", ROUTE_DROP, "", NULL, "relaying denied: " },
    { "<u@[0.0.0.0]>", 1, NULL, 550, "5.1.2", ROUTE_DROP, "", NULL,
      "[0.0.0.0] cannot receive mail: 0.0.0.0/8 means this network" },
    { "<u@[0.1.2.3]>", 0, NULL, 550, "5.1.2", ROUTE_DROP, "", NULL, "[0.1.2.3] cannot receive mail" },
    { "<u@[255.255.255.255]>", 1, "relay.example.net", 550, "5.1.2", ROUTE_DROP, "", NULL,
      "[255.255.255.255] cannot receive mail: it is the limited broadcast address" },
    { "<u@[224.0.0.1]>", 1, NULL, 550, "5.1.2", ROUTE_DROP, "", NULL,
      "[224.0.0.1] cannot receive mail: it is a multicast address" },
    { "<u@[239.255.255.255]>", 1, NULL, 550, "5.1.2", ROUTE_DROP, "", NULL, "[239.255.255.255] cannot" },
    { "<u@[240.0.0.1]>", 1, NULL, 550, "5.1.2", ROUTE_DROP, "", NULL,
      "[240.0.0.1] cannot receive mail: it is in the reserved block" },
    { "<u@[223.255.255.255]>", 1, NULL, 250, "2.1.5", ROUTE_MX, "223.255.255.255",
      "u@[223.255.255.255]", NULL },
    { "<u@[IPv6:::]>", 1, NULL, 550, "5.1.2", ROUTE_DROP, "", NULL,
      "[IPv6:::] cannot receive mail: it is the unspecified address" },
    { "<u@[IPv6:0:0:0:0:0:0:0:0]>", 1, NULL, 550, "5.1.2", ROUTE_DROP, "", NULL, "[IPv6:::] cannot" },
    { "<u@[IPv6:FF02::1]>", 1, NULL, 550, "5.1.2", ROUTE_DROP, "", NULL,
      "[IPv6:ff02::1] cannot receive mail: it is a multicast address" },
    { "<u@[IPv6:::ffff:0.0.0.0]>", 1, NULL, 550, "5.1.2", ROUTE_DROP, "", NULL,
      "[IPv6:::ffff:0:0] cannot receive mail: 0.0.0.0/8" },
    { "<u@[IPv6:::ffff:224.1.1.1]>", 1, NULL, 550, "5.1.2", ROUTE_DROP, "", NULL, "[IPv6:::ffff:e001:101] cannot" },
    { "<u@[IPv6:fe80::1]>", 1, NULL, 250, "2.1.5", ROUTE_MX, "fe80::1", "u@[IPv6:fe80::1]", NULL },
    /* source routes are dropped (RFC 5321 C): the mailbox's own domain decides */
    { "<@example.com:u@other.example>", 0, NULL, 550, "5.7.1", ROUTE_DROP, "", NULL,
      "relaying denied: other.example" },
    { "<@other.example,@b.example:u@example.com>", 0, NULL, 250, "2.1.5", ROUTE_DROP, "",
      "u@example.com", NULL },
    /* a local part that routes elsewhere: not from a client that may not relay */
    { "<u%other.example@example.com>", 0, NULL, 550, "5.7.1", ROUTE_DROP, "", NULL,
      "relaying denied: '%' in the local part names a mailbox on another host; authenticate "
      "to send mail elsewhere" },
    { "<u%other.example@example.com>", 1, NULL, 250, "2.1.5", ROUTE_DROP, "",
      "u%other.example@example.com", NULL },
    { "<other.example!u@example.com>", 0, NULL, 550, "5.7.1", ROUTE_DROP, "", NULL,
      "relaying denied: '!' in the local part" },
    { "<\"u@other.example\"@example.com>", 0, NULL, 550, "5.7.1", ROUTE_DROP, "", NULL,
      "relaying denied: '@' in the local part" },
    { "<\"u@other.example\"@example.com>", 1, NULL, 250, "2.1.5", ROUTE_DROP, "",
      "\"u@other.example\"@example.com", NULL },
    { "<\"u%x\"@other.example>", 0, NULL, 550, "5.7.1", ROUTE_DROP, "", NULL,
      "relaying denied: other.example is not a local domain" },
    { "<u%x@other.example>", 1, NULL, 250, "2.1.5", ROUTE_MX, "other.example", "u%x@other.example", NULL },
    /* quoted local parts are mailboxes like any other */
    { "<\"john smith\"@example.com>", 0, NULL, 250, "2.1.5", ROUTE_DROP, "",
      "\"john smith\"@example.com", NULL },
    { "<\"john\"@example.com>", 0, NULL, 250, "2.1.5", ROUTE_DROP, "", "john@example.com", NULL },
    /* IMCEA: a foreign address at a local domain; one that holds an SMTP route is refused */
    { "<IMCEAEX-_o=Org_ou=Site_cn=Recipients_cn=bill@example.com>", 0, NULL, 250, "2.1.5",
      ROUTE_DROP, "", "IMCEAEX-_o=Org_ou=Site_cn=Recipients_cn=bill@example.com", NULL },
    { "<IMCEAFAX-+2B1+20+28425+29+20555-0100@example.com>", 0, NULL, 250, "2.1.5", ROUTE_DROP,
      "", "IMCEAFAX-+2B1+20+28425+29+20555-0100@example.com", NULL },
    { "<IMCEASMTP-u+40other+2Eexample@example.com>", 0, NULL, 550, "5.7.1", ROUTE_DROP, "", NULL,
      "relaying denied: an encoded '@' (+40) in the local part names a mailbox on another host" },
    { "<imceasmtp-u+25other@example.com>", 0, NULL, 550, "5.7.1", ROUTE_DROP, "", NULL,
      "relaying denied: an encoded '%' (+25)" },
    { "<IMCEAX-a+21b@example.com>", 0, NULL, 550, "5.7.1", ROUTE_DROP, "", NULL,
      "relaying denied: an encoded '!' (+21)" },
    { "<IMCEASMTP-u+40other+2Eexample@example.com>", 1, NULL, 250, "2.1.5", ROUTE_DROP, "",
      "IMCEASMTP-u+40other+2Eexample@example.com", NULL },
    { "<IMCEASMTP-u+40other+2Eexample@other.example>", 0, NULL, 550, "5.7.1", ROUTE_DROP, "",
      NULL, "relaying denied: other.example" },
    { "<u+40x@example.com>", 0, NULL, 250, "2.1.5", ROUTE_DROP, "", "u+40x@example.com", NULL },
};

START_TEST(recipient_table)
{
    struct route_config c = config(rcpt_cases[_i].smarthost);
    struct addr_path p;
    struct addr_error err;
    struct route_verdict v;
    char text[ADDR_PATH_MAX + 1];
    const char *in = rcpt_cases[_i].path;
    ck_assert_msg(addr_parse_path(in, strlen(in), ADDR_RCPT, &p, &err) == 0, "%s: %s", in, err.rule);
    int rc = route_recipient(&c, &p, rcpt_cases[_i].may_relay, &v);
    ck_assert_msg(v.code == rcpt_cases[_i].code, "%s: code %d (%s)", in, v.code, v.why);
    ck_assert_int_eq(rc, v.code == 250 ? 0 : -1);
    ck_assert_str_eq(v.status, rcpt_cases[_i].status);
    if (rc != 0) {
        ck_assert_msg(strncmp(v.why, rcpt_cases[_i].why, strlen(rcpt_cases[_i].why)) == 0,
                      "%s: why \"%s\"", in, v.why);
        return;
    }
    ck_assert_str_eq(v.why, "");
    ck_assert_int_eq(v.route.kind, rcpt_cases[_i].kind);
    ck_assert_str_eq(v.route.host, rcpt_cases[_i].host);
    ck_assert_int_gt(addr_format_mailbox(&v.addr, text, sizeof text), 0);
    ck_assert_str_eq(text, rcpt_cases[_i].addr);

    /* The queue routes what was accepted by the same verdict: a client that
     * could not relay got nothing the relaying verdict would send elsewhere,
     * and the accepted address routes there again (the queue sees v.addr). */
    struct route_verdict again;
    ck_assert_int_eq(route_recipient(&c, &p, 1, &again), 0);
    ck_assert_int_eq(again.route.kind, v.route.kind);
    ck_assert_str_eq(again.route.host, v.route.host);
    ck_assert_int_eq(route_recipient(&c, &v.addr, 1, &again), 0);
    ck_assert_int_eq(again.route.kind, v.route.kind);
    if (!rcpt_cases[_i].may_relay)
        ck_assert_int_eq(v.route.kind, ROUTE_DROP);
    if (p.kind != ADDR_DOMAIN_NONE) {
        struct route r;
        ck_assert_int_eq(route_select(&c, p.domain, &r), 0);
        ck_assert_int_eq(r.kind, v.route.kind);
    }
}
END_TEST

/* The domain of a domain-less <Postmaster>: the first local domain that is
 * one domain (not a wildcard); none: it stays domain-less, and local. */
START_TEST(recipient_postmaster_domain)
{
    struct { const char *list; const char *want; } cases[] = {
        { "*.w.example;;[IPv6:2001:DB8::7];x.example", "postmaster@[IPv6:2001:db8::7]" },
        { "*.v.example [192.0.2.9]", "postmaster@[192.0.2.9]" },
        { "*.w.example", "Postmaster" },
        { NULL, "Postmaster" },
    };
    struct addr_path p;
    struct addr_error err;
    struct route_verdict v;
    char text[ADDR_PATH_MAX + 1];
    ck_assert_int_eq(addr_parse_path("<postmaster>", 12, ADDR_RCPT, &p, &err), 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct domain_list l;
        ck_assert_int_eq(domains_parse(&l, cases[i].list, NULL, 0), 0);
        struct route_config c = { cases[i].list ? &l : NULL, "relay.example.net", 25, 25, NULL };
        for (int relay = 0; relay < 2; relay++) {
            ck_assert_int_eq(route_recipient(&c, &p, relay, &v), 0);
            ck_assert_int_eq(v.route.kind, ROUTE_DROP);
            ck_assert_int_gt(addr_format_mailbox(&v.addr, text, sizeof text), 0);
            ck_assert_str_eq(text, cases[i].want);
            /* and the rewritten address is local by the same rules */
            struct route_verdict again;
            ck_assert_int_eq(route_recipient(&c, &v.addr, 0, &again), 0);
            ck_assert_int_eq(again.route.kind, ROUTE_DROP);
        }
        domains_free(&l);
    }
}
END_TEST

/* What the parser never gives, the verdict still refuses rather than guesses. */
START_TEST(recipient_not_a_mailbox)
{
    struct route_config c = config(NULL);
    struct addr_path p;
    struct route_verdict v;
    memset(&p, 0, sizeof p);
    strcpy(p.local, "user");                /* no domain, not postmaster */
    ck_assert_int_eq(route_recipient(&c, &p, 1, &v), -1);
    ck_assert_int_eq(v.code, 550);
    ck_assert_str_eq(v.status, "5.1.3");
    ck_assert_str_eq(v.why, "the address has no domain; only <Postmaster> may be written "
                            "without one (RFC 5321 4.5.1)");
    strcpy(p.local, "postmasters");
    ck_assert_int_eq(route_recipient(&c, &p, 1, &v), -1);
    p.null_path = 1;
    ck_assert_int_eq(route_recipient(&c, &p, 1, &v), -1);
    ck_assert_str_eq(v.status, "5.1.3");
    memset(&p, 0, sizeof p);
    strcpy(p.local, "u");
    p.kind = ADDR_DOMAIN_NAME;
    strcpy(p.domain, "bad..domain");
    ck_assert_int_eq(route_recipient(&c, &p, 1, &v), -1);
    ck_assert_str_eq(v.status, "5.1.2");
    ck_assert_str_eq(v.why, "bad..domain is not a valid domain name or address literal");
    strcpy(p.domain, "other.example");
    c.outbound_port = 0;
    ck_assert_int_eq(route_recipient(&c, &p, 1, &v), -1);
    ck_assert_int_eq(v.code, 451);
    ck_assert_str_eq(v.status, "4.3.5");
    ck_assert_int_eq(route_recipient(NULL, &p, 1, &v), -1);
    ck_assert_int_eq(route_recipient(&c, &p, 1, NULL), -1);
}
END_TEST

/* route_parse_hostport ----------------------------------------------------------- */

static const struct {
    const char *text;
    unsigned def;
    int rc;
    const char *host;
    unsigned port;
} hostport_cases[] = {
    { "relay.example.net", 25, 0, "relay.example.net", 25 },
    { "Relay.Example.NET.", 25, 0, "relay.example.net", 25 },
    { "relay:587", 25, 0, "relay", 587 },
    { "relay:1", 25, 0, "relay", 1 },
    { "relay:65535", 25, 0, "relay", 65535 },
    { "relay:00025", 25, 0, "relay", 25 },
    { "192.0.2.7:2525", 25, 0, "192.0.2.7", 2525 },
    { "[192.0.2.7]", 25, 0, "192.0.2.7", 25 },
    { "[192.0.2.7]:2525", 25, 0, "192.0.2.7", 2525 },
    { "[2001:db8::7]", 25, 0, "2001:db8::7", 25 },
    { "[2001:DB8:0:0::7]:465", 25, 0, "2001:db8::7", 465 },
    { "[IPv6:2001:db8::7]:465", 25, 0, "2001:db8::7", 465 },
    { "[ipv6:::ffff:192.0.2.7]", 25, 0, "::ffff:c000:207", 25 },
    { "relay:0", 25, -1, "", 0 },
    { "relay:65536", 25, -1, "", 0 },
    { "relay:99999", 25, -1, "", 0 },
    { "relay:123456", 25, -1, "", 0 },
    { "relay:", 25, -1, "", 0 },
    { "relay:25x", 25, -1, "", 0 },
    { "relay:+25", 25, -1, "", 0 },
    { "relay:-1", 25, -1, "", 0 },
    { "relay: 25", 25, -1, "", 0 },
    { "relay", 0, -1, "", 0 },              /* no port anywhere */
    { "relay", 65536, -1, "", 0 },
    { "relay:25", 0, 0, "relay", 25 },
    { "[2001:db8::7]:0", 25, -1, "", 0 },
    { "2001:db8::7", 25, -1, "", 0 },       /* bare IPv6: which colon is the port's? */
    { "::1", 25, -1, "", 0 },
    { "[192.0.2.7", 25, -1, "", 0 },
    { "192.0.2.7]", 25, -1, "", 0 },
    { "[192.0.2.7]]", 25, -1, "", 0 },
    { "[[192.0.2.7]", 25, -1, "", 0 },
    { "[192.0.2.7]x", 25, -1, "", 0 },
    { "[192.0.2.7]:", 25, -1, "", 0 },
    { "[192.0.2.256]", 25, -1, "", 0 },
    { "[relay.example]", 25, -1, "", 0 },
    { "[]", 25, -1, "", 0 },
    { "", 25, -1, "", 0 },
    { ":25", 25, -1, "", 0 },
    { "relay example", 25, -1, "", 0 },
    { "relay..example", 25, -1, "", 0 },
    { " relay", 25, -1, "", 0 },
};

START_TEST(hostport_table)
{
    char host[ROUTE_HOST_MAX + 1];
    unsigned port = 12345;
    int rc = route_parse_hostport(hostport_cases[_i].text, hostport_cases[_i].def, host,
                                  sizeof host, &port);
    ck_assert_msg(rc == hostport_cases[_i].rc, "\"%s\": rc %d", hostport_cases[_i].text, rc);
    if (rc != 0)
        return;
    ck_assert_str_eq(host, hostport_cases[_i].host);
    ck_assert_uint_eq(port, hostport_cases[_i].port);
}
END_TEST

START_TEST(hostport_small_buffer)
{
    char host[6];
    unsigned port;
    ck_assert_int_eq(route_parse_hostport("relay:25", 25, host, sizeof host, &port), 0);
    ck_assert_int_eq(route_parse_hostport("relay1:25", 25, host, sizeof host, &port), -1);
    ck_assert_str_eq(host, "");
    ck_assert_int_eq(route_parse_hostport(NULL, 25, host, sizeof host, &port), -1);
}
END_TEST

/* route_key ------------------------------------------------------------------------ */

/* Recipients at domains a and b share a connection exactly when same is set. */
static const struct {
    const char *a, *b, *smarthost;
    int same;
} group_cases[] = {
    { "one.example", "two.example", "relay.example.net", 1 },
    { "one.example", "[192.0.2.5]", "relay.example.net", 1 },
    { "one.example", "two.example", NULL, 0 },
    { "One.Example", "one.example.", NULL, 1 },
    { "example.com", "a.corp.example", NULL, 1 },       /* both dropped */
    { "example.com", "one.example", "relay.example.net", 0 },
    { "[192.0.2.5]", "[192.0.2.5]", NULL, 1 },
    { "[192.0.2.5]", "[192.0.2.6]", NULL, 0 },
    { "[192.0.2.5]", "192.0.2.5", NULL, 0 },            /* a literal is not a name */
};

START_TEST(key_grouping)
{
    struct route_config c = config(group_cases[_i].smarthost);
    struct route ra, rb;
    char ka[ROUTE_KEY_MAX], kb[ROUTE_KEY_MAX];
    ck_assert_int_eq(route_select(&c, group_cases[_i].a, &ra), 0);
    ck_assert_int_eq(route_select(&c, group_cases[_i].b, &rb), 0);
    ck_assert_int_gt(route_key(&ra, ka, sizeof ka), 0);
    ck_assert_int_gt(route_key(&rb, kb, sizeof kb), 0);
    ck_assert_msg((strcmp(ka, kb) == 0) == group_cases[_i].same, "%s vs %s", ka, kb);
}
END_TEST

START_TEST(key_text)
{
    static const struct { struct route r; const char *key; } cases[] = {
        { { ROUTE_DROP, "", 0, 0, "" }, "drop" },
        { { ROUTE_SMARTHOST, "relay.example.net", 2525, 0, "" }, "smarthost:relay.example.net:2525" },
        { { ROUTE_SMARTHOST, "2001:db8::7", 25, 0, "" }, "smarthost:2001:db8::7:25" },
        { { ROUTE_MX, "Example.NET", 25, 0, "" }, "mx:example.net" },
        { { ROUTE_MX, "192.0.2.2", 25, 1, "" }, "mx:[192.0.2.2]" },
    };
    char k[ROUTE_KEY_MAX];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_assert_int_eq(route_key(&cases[i].r, k, sizeof k), (int)strlen(cases[i].key));
        ck_assert_str_eq(k, cases[i].key);
    }
    ck_assert_int_eq(route_key(&cases[1].r, k, 10), -1);
    ck_assert_str_eq(k, "");
    ck_assert_int_eq(route_key(&cases[0].r, k, 4), -1);
    struct route bad = { (enum route_kind)7, "x", 0, 0, "" };
    ck_assert_int_eq(route_key(&bad, k, sizeof k), -1);
}
END_TEST

/* route_mx_order ------------------------------------------------------------------- */

#define MX_CASE_MAX 8

struct mx_in {
    unsigned short pref;
    const char *host;
};

static const char *const self_names[] = { "mx.self.example", "Self-Alias.Example." };

static const struct {
    struct mx_in in[MX_CASE_MAX];
    size_t n;
    enum route_mx_result want;
    const char *order;      /* the hosts kept, in order, comma-separated */
} mx_cases[] = {
    { { { 0 } }, 0, ROUTE_MX_IMPLICIT, "" },
    { { { 20, "b" }, { 10, "a" }, { 30, "c" } }, 3, ROUTE_MX_OK, "a,b,c" },
    { { { 65535, "z" }, { 0, "a" } }, 2, ROUTE_MX_OK, "a,z" },
    /* duplicates, by name case and trailing dot; the best preference kept */
    { { { 10, "a" }, { 20, "A." }, { 5, "b" }, { 10, "a" }, { 30, "c" }, { 1, "C" } }, 6,
      ROUTE_MX_OK, "c,b,a" },
    /* the root alone is a null MX; among others it names no host */
    { { { 0, "." } }, 1, ROUTE_MX_NULL, "" },
    { { { 0, "" } }, 1, ROUTE_MX_NULL, "" },
    { { { 0, "." }, { 0, "" } }, 2, ROUTE_MX_NULL, "" },
    { { { 10, "" }, { 20, "a" } }, 2, ROUTE_MX_OK, "a" },
    { { { 0, "." }, { 10, "a" } }, 2, ROUTE_MX_OK, "a" },
    /* we are the best MX */
    { { { 10, "mx.self.example" }, { 20, "a" } }, 2, ROUTE_MX_SELF, "" },
    { { { 10, "a" }, { 10, "MX.SELF.EXAMPLE." } }, 2, ROUTE_MX_SELF, "" },
    { { { 5, "self-alias.example" } }, 1, ROUTE_MX_SELF, "" },
    /* we are a backup: only strictly better hosts remain */
    { { { 10, "a" }, { 20, "mx.self.example" }, { 30, "c" }, { 15, "d" } }, 4, ROUTE_MX_OK, "a,d" },
    { { { 30, "c" }, { 20, "mx.self.example" }, { 10, "a" }, { 40, "self-alias.example" } }, 4,
      ROUTE_MX_OK, "a" },
};

static void order_text(const struct route_mx *mx, size_t n, char *buf, size_t cap)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int w = snprintf(buf + o, cap - o, "%s%s", i ? "," : "", mx[i].host);
        ck_assert(w >= 0 && (size_t)w < cap - o);
        o += (size_t)w;
    }
}

START_TEST(mx_table)
{
    struct route_mx mx[MX_CASE_MAX];
    char got[512];
    size_t n_out = 99;
    memset(mx, 0, sizeof mx);
    for (size_t i = 0; i < mx_cases[_i].n; i++) {
        mx[i].pref = mx_cases[_i].in[i].pref;
        snprintf(mx[i].host, sizeof mx[i].host, "%s", mx_cases[_i].in[i].host);
    }
    enum route_mx_result r = route_mx_order(mx, mx_cases[_i].n, self_names, 2, 1, &n_out);
    ck_assert_int_eq(r, mx_cases[_i].want);
    order_text(mx, n_out, got, sizeof got);
    ck_assert_str_eq(got, mx_cases[_i].order);
    for (size_t i = 1; i < n_out; i++)
        ck_assert_uint_le(mx[i - 1].pref, mx[i].pref);
}
END_TEST

/* Equal preferences are shuffled: the same seed gives the same order, every
 * tied host is kept, different seeds spread the load, and ties never cross
 * preference levels. */
START_TEST(mx_ties)
{
    static const struct mx_in in[] = {
        { 20, "e" }, { 10, "a" }, { 10, "b" }, { 10, "c" }, { 10, "d" }, { 20, "f" },
    };
    const size_t n = sizeof in / sizeof in[0];
    unsigned first_seen = 0;    /* bit per host that came first */
    for (unsigned seed = 0; seed < 64; seed++) {
        struct route_mx a[8], b[8];
        size_t na, nb;
        for (size_t i = 0; i < n; i++) {
            a[i].pref = in[i].pref;
            snprintf(a[i].host, sizeof a[i].host, "%s", in[i].host);
        }
        memcpy(b, a, sizeof a);
        ck_assert_int_eq(route_mx_order(a, n, NULL, 0, seed, &na), ROUTE_MX_OK);
        ck_assert_int_eq(route_mx_order(b, n, NULL, 0, seed, &nb), ROUTE_MX_OK);
        ck_assert_uint_eq(na, n);
        ck_assert_uint_eq(nb, n);
        ck_assert(memcmp(a, b, n * sizeof a[0]) == 0);
        unsigned seen = 0;
        for (size_t i = 0; i < n; i++) {
            ck_assert_uint_eq(a[i].pref, i < 4 ? 10 : 20);
            ck_assert_uint_eq(strlen(a[i].host), 1);
            seen |= 1u << (a[i].host[0] - 'a');
        }
        ck_assert_uint_eq(seen, 0x3f);
        first_seen |= 1u << (a[0].host[0] - 'a');
    }
    ck_assert_uint_eq(first_seen, 0xf);
}
END_TEST

/* Names from DNS are hostile: one without its NUL is cut, not overrun. */
START_TEST(mx_unterminated)
{
    struct route_mx mx[2];
    size_t n;
    memset(mx[0].host, 'a', sizeof mx[0].host);
    mx[0].pref = 10;
    memset(mx[1].host, 'a', sizeof mx[1].host);
    mx[1].pref = 20;
    ck_assert_int_eq(route_mx_order(mx, 2, NULL, 0, 0, &n), ROUTE_MX_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(strlen(mx[0].host), ROUTE_HOST_MAX);
    ck_assert_uint_eq(mx[0].pref, 10);
}
END_TEST

Suite *route_suite(void)
{
    Suite *s = suite_create("route");
    TCase *tc = tcase_create("route");
    tcase_add_loop_test(tc, select_table, 0, (int)(sizeof select_cases / sizeof select_cases[0]));
    tcase_add_test(tc, select_long_domain);
    tcase_add_loop_test(tc, recipient_table, 0, (int)(sizeof rcpt_cases / sizeof rcpt_cases[0]));
    tcase_add_test(tc, recipient_postmaster_domain);
    tcase_add_test(tc, recipient_not_a_mailbox);
    tcase_add_loop_test(tc, hostport_table, 0, (int)(sizeof hostport_cases / sizeof hostport_cases[0]));
    tcase_add_test(tc, hostport_small_buffer);
    tcase_add_loop_test(tc, key_grouping, 0, (int)(sizeof group_cases / sizeof group_cases[0]));
    tcase_add_test(tc, key_text);
    tcase_add_loop_test(tc, mx_table, 0, (int)(sizeof mx_cases / sizeof mx_cases[0]));
    tcase_add_test(tc, mx_ties);
    tcase_add_test(tc, mx_unterminated);
    suite_add_tcase(s, tc);
    return s;
}
