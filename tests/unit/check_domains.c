/* check_domains.c - LocalDomains and RelayAddresses: what each list accepts,
 * what it refuses and why, what the matchers match, lists longer than the
 * old caps, and that the relay decision at RCPT TO (core/smtpd.c) and the
 * queue's routing (route_recipient) agree over the same parsed lists. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "domains.h"
#include "imcea.h"
#include "route.h"
#include "smtpd.h"

static const char LOCAL_A[] = "example.com; Example.ORG. ,*.corp.example\t[192.0.2.1] "
                              "[IPv6:2001:DB8:0::1]";

/* Matching ---------------------------------------------------------------------- */

static const struct {
    const char *domain;
    int want;
} match_cases[] = {
    /* exact names: any case, one trailing dot ignored */
    { "example.com", 1 },
    { "EXAMPLE.Com", 1 },
    { "example.com.", 1 },
    { "example.com..", 0 },
    { "example.org", 1 },           /* the entry was "Example.ORG." */
    { "sub.example.com", 0 },
    { "xexample.com", 0 },
    { "example.co", 0 },
    { "example.comm", 0 },
    /* *.corp.example: subdomains at any depth, never corp.example itself */
    { "a.corp.example", 1 },
    { "X.Y.Corp.Example.", 1 },
    { "corp.example", 0 },
    { "corp.example.", 0 },
    { "xcorp.example", 0 },
    { "a.corp.example.net", 0 },
    /* address literals, in any valid spelling of the same address */
    { "[192.0.2.1]", 1 },
    { "[192.000.002.001]", 1 },
    { "[192.0.2.2]", 0 },
    { "192.0.2.1", 0 },             /* a name made of digits is not the literal */
    { "[IPv6:2001:db8::1]", 1 },
    { "[ipv6:2001:0DB8:0:0:0:0:0:1]", 1 },
    { "[IPv6:2001:db8::2]", 0 },
    { "[IPv6:::ffff:192.0.2.1]", 0 }, /* an IPv6 literal never matches an IPv4 entry */
    { "[2001:db8::1]", 0 },         /* untagged: not a literal */
    /* not domains at all */
    { "", 0 },
    { ".", 0 },
    { "bad..example.com", 0 },
    { "[300.1.1.1]", 0 },
    { "[192.0.2.1", 0 },
    { "*.corp.example", 0 },
};

START_TEST(match_forms)
{
    struct domain_list l;
    ck_assert_int_eq(domains_parse(&l, LOCAL_A, NULL, 0), 0);
    ck_assert_uint_eq(l.n, 5);
    ck_assert_msg(domains_match(&l, match_cases[_i].domain) == match_cases[_i].want,
                  "%s: expected %d", match_cases[_i].domain, match_cases[_i].want);
    domains_free(&l);
}
END_TEST

START_TEST(match_canonical_entries)
{
    struct domain_list l;
    ck_assert_int_eq(domains_parse(&l, LOCAL_A, NULL, 0), 0);
    ck_assert_int_eq(l.v[0].kind, DOMAIN_NAME);
    ck_assert_str_eq(l.v[0].name, "example.com");
    ck_assert_int_eq(l.v[1].kind, DOMAIN_NAME);
    ck_assert_str_eq(l.v[1].name, "example.org");
    ck_assert_int_eq(l.v[2].kind, DOMAIN_WILDCARD);
    ck_assert_str_eq(l.v[2].name, "corp.example");
    ck_assert_int_eq(l.v[3].kind, DOMAIN_IPV4);
    ck_assert_str_eq(l.v[3].name, "[192.0.2.1]");
    ck_assert_int_eq(l.v[4].kind, DOMAIN_IPV6);
    ck_assert_str_eq(l.v[4].name, "[IPv6:2001:db8::1]");
    domains_free(&l);
    ck_assert_ptr_null(l.v);
    ck_assert_uint_eq(l.n, 0);
}
END_TEST

START_TEST(match_empty_and_null)
{
    struct domain_list l;
    ck_assert_int_eq(domains_parse(&l, " ;; , ", NULL, 0), 0);
    ck_assert_uint_eq(l.n, 0);
    ck_assert_int_eq(domains_match(&l, "example.com"), 0);
    ck_assert_int_eq(domains_match(NULL, "example.com"), 0);
    ck_assert_ptr_null(domains_first_single(&l));
    ck_assert_int_eq(domains_parse(&l, NULL, NULL, 0), 0);
    ck_assert_uint_eq(l.n, 0);
    domains_free(&l);
}
END_TEST

/* The old splitters stopped at 64 entries: every entry counts now. */
START_TEST(match_many_domains)
{
    char text[8192];
    size_t o = 0;
    for (int i = 1; i <= 200; i++) {
        int w = snprintf(text + o, sizeof text - o, "%sd%d.example", i > 1 ? ";" : "", i);
        ck_assert(w > 0 && (size_t)w < sizeof text - o);
        o += (size_t)w;
    }
    struct domain_list l;
    ck_assert_int_eq(domains_parse(&l, text, NULL, 0), 0);
    ck_assert_uint_eq(l.n, 200);
    ck_assert_int_eq(domains_match(&l, "d1.example"), 1);
    ck_assert_int_eq(domains_match(&l, "d65.example"), 1);
    ck_assert_int_eq(domains_match(&l, "D200.EXAMPLE"), 1);
    ck_assert_int_eq(domains_match(&l, "d201.example"), 0);
    domains_free(&l);
}
END_TEST

/* Bad entries: the whole list is refused, naming the entry and why. ------------ */

static const struct {
    const char *text;
    const char *why;            /* the sentence, up to the list of forms */
} bad_cases[] = {
    { "example.com;*", "'*' is not a local domain: '*' may stand only for the labels in front "
                       "of a domain, as in *.example.com" },
    { "*.", "'*.' is not a local domain: it is empty" },
    { "**.example", "'**.example' is not a local domain: '*' may stand only for the labels in "
                    "front of a domain, as in *.example.com" },
    { "a.*.example", "'a.*.example' is not a local domain: '*' may stand only" },
    { "*.a.*.example", "'*.a.*.example' is not a local domain: '*' may stand only" },
    { "ex*ample.com", "'ex*ample.com' is not a local domain: '*' may stand only" },
    { "ok.example bad..name", "'bad..name' is not a local domain: domain label must start with "
                              "a letter or digit" },
    { "-x.example", "'-x.example' is not a local domain: domain label must start with a letter "
                    "or digit" },
    { "x-.example", "'x-.example' is not a local domain: domain label must not end with a "
                    "hyphen" },
    { "a_b.example", "'a_b.example' is not a local domain: domain holds a character other than "
                     "a letter, digit, hyphen or dot" },
    { "caf\xc3\xa9.example", "'caf\xc3\xa9.example' is not a local domain: domain holds a "
                             "character other than" },
    { ".", "'.' is not a local domain: it is empty" },
    { "[192.0.2.1", "'[192.0.2.1' is not a local domain: an address literal is written in "
                    "brackets" },
    { "[2001:db8::1]", "'[2001:db8::1]' is not a local domain: an IPv6 address literal is "
                       "written with its tag, like [IPv6:2001:db8::1]" },
    { "[IPv6:2001:db8::g]", "'[IPv6:2001:db8::g]' is not a local domain: invalid IPv6 address "
                            "literal" },
    { "[300.1.1.1]", "'[300.1.1.1]' is not a local domain: invalid IPv4 address literal" },
    { "[example.com]", "'[example.com]' is not a local domain: invalid IPv4 address literal" },
    { "[]", "'[]' is not a local domain: " },
    { "x.example/24", "'x.example/24' is not a local domain: domain holds a character other" },
};

START_TEST(bad_entries)
{
    char why[DOMAINS_WHY_MAX];
    struct domain_list l;
    ck_assert_int_eq(domains_parse(&l, bad_cases[_i].text, why, sizeof why), -1);
    ck_assert_msg(strncmp(why, bad_cases[_i].why, strlen(bad_cases[_i].why)) == 0,
                  "got: %s", why);
    /* every refusal shows the forms that are accepted */
    ck_assert_ptr_nonnull(strstr(why, "(forms: example.com, *.example.com, [192.0.2.1], "
                                      "[IPv6:2001:db8::1])"));
    ck_assert_ptr_null(l.v);
    ck_assert_uint_eq(l.n, 0);
}
END_TEST

START_TEST(bad_lengths)
{
    char label[80], name[300], why[DOMAINS_WHY_MAX];
    struct domain_list l;
    memset(label, 'a', 64);
    memcpy(label + 64, ".example", sizeof ".example");
    ck_assert_int_eq(domains_parse(&l, label, why, sizeof why), -1);
    ck_assert_ptr_nonnull(strstr(why, "domain label longer than 63 octets"));
    memcpy(label + 63, ".example", sizeof ".example");      /* 63 is fine */
    ck_assert_int_eq(domains_parse(&l, label, why, sizeof why), 0);
    ck_assert_int_eq(domains_match(&l, label), 1);
    domains_free(&l);
    /* 256 octets in all; a long entry is shown cut, the sentence still whole */
    for (size_t i = 0; i < 256; i += 2) {
        name[i] = 'a';
        name[i + 1] = '.';
    }
    name[255] = 'a';
    name[256] = '\0';
    ck_assert_int_eq(domains_parse(&l, name, why, sizeof why), -1);
    ck_assert_ptr_nonnull(strstr(why, "...' is not a local domain: it is longer than 255 octets"));
    name[254] = '\0';                   /* 253 octets and a trailing dot */
    ck_assert_int_eq(domains_parse(&l, name, why, sizeof why), 0);
    ck_assert_int_eq(domains_match(&l, name), 1);
    domains_free(&l);
}
END_TEST

/* The first entry that names one domain: where <Postmaster> goes. */
START_TEST(first_single)
{
    struct domain_list l;
    ck_assert_int_eq(domains_parse(&l, "*.a.example;*.b.example;[IPv6:2001:db8::7];x.example",
                                   NULL, 0), 0);
    const struct domain_entry *e = domains_first_single(&l);
    ck_assert_ptr_nonnull(e);
    ck_assert_str_eq(e->name, "[IPv6:2001:db8::7]");
    domains_free(&l);
    ck_assert_int_eq(domains_parse(&l, "*.a.example", NULL, 0), 0);
    ck_assert_ptr_null(domains_first_single(&l));
    domains_free(&l);
}
END_TEST

/* IMCEA decodes for exactly the domains routing calls local. */
START_TEST(imcea_same_matcher)
{
    struct domain_list l;
    char type[IMCEA_TYPE_MAX + 1], addr[256];
    ck_assert_int_eq(domains_parse(&l, LOCAL_A, NULL, 0), 0);
    static const struct { const char *in; enum imcea_status st; } cases[] = {
        { "IMCEAEX-_o=Org_cn=x@example.com", IMCEA_OK },
        { "IMCEAEX-_o=Org_cn=x@Example.Org", IMCEA_OK },
        { "IMCEAEX-_o=Org_cn=x@sub.corp.example", IMCEA_OK },
        { "IMCEAEX-_o=Org_cn=x@corp.example", IMCEA_NOT_LOCAL },
        { "IMCEAEX-_o=Org_cn=x@other.example", IMCEA_NOT_LOCAL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *in = cases[i].in;
        ck_assert_int_eq(imcea_decode(in, strlen(in), &l, type, sizeof type, addr, sizeof addr,
                                      NULL), cases[i].st);
        ck_assert_int_eq(domains_match(&l, strchr(in, '@') + 1), cases[i].st == IMCEA_OK);
    }
    domains_free(&l);
}
END_TEST

/* Address ranges -------------------------------------------------------------------- */

static int in_ranges(const struct range_list *l, const char *ip)
{
    unsigned char a[16];
    int v6;
    ck_assert_msg(domains_parse_ip(ip, strlen(ip), &v6, a) == 0, "%s does not parse", ip);
    return domains_in_ranges(l, v6, a);
}

static const struct {
    const char *ranges, *ip;
    int want;
} range_cases[] = {
    { "192.0.2.0/24", "192.0.2.0", 1 },
    { "192.0.2.0/24", "192.0.2.255", 1 },
    { "192.0.2.0/24", "192.0.3.0", 0 },
    { "192.0.2.0/24", "192.0.1.255", 0 },
    { "192.0.2.77/24", "192.0.2.1", 1 },    /* bits below the prefix are ignored */
    { "10.0.0.0/9", "10.127.255.255", 1 },
    { "10.0.0.0/9", "10.128.0.0", 0 },
    { "192.0.2.7", "192.0.2.7", 1 },        /* a single address */
    { "192.0.2.7", "192.0.2.8", 0 },
    { "192.0.2.7/32", "192.0.2.6", 0 },
    { "192.0.2.7/31", "192.0.2.6", 1 },
    { "192.0.2.7/31", "192.0.2.8", 0 },
    { "0.0.0.0/0", "203.0.113.9", 1 },
    { "0.0.0.0/0", "2001:db8::1", 0 },      /* an IPv4 range never holds IPv6 */
    { "127.0.0.1/32", "::ffff:127.0.0.1", 1 }, /* but a dual-stack socket's mapped IPv4 counts */
    { "127.0.0.1/32", "::ffff:127.0.0.2", 0 },
    { "127.0.0.1/32", "::127.0.0.1", 0 },   /* IPv4-compatible is not mapped */
    { "::ffff:0:0/96", "::ffff:192.0.2.1", 1 },
    { "::ffff:0:0/96", "192.0.2.1", 0 },
    { "2001:db8::/32", "2001:db8:ffff:ffff::1", 1 },
    { "2001:db8::/32", "2001:db9::", 0 },
    { "2001:db8::/33", "2001:db8:7fff:ffff:ffff:ffff:ffff:ffff", 1 },
    { "2001:db8::/33", "2001:db8:8000::", 0 },
    { "2001:DB8::7", "2001:db8:0:0:0:0:0:7", 1 },
    { "2001:0db8:0000::/48", "2001:db8:0:ffff::1", 1 },     /* hex groups may have leading zeros */
    { "192.0.2.0/24", "192.0.2.100", 1 },
    { "0.0.0.0", "0.0.0.0", 1 },
    { "2001:db8::7/128", "2001:db8::6", 0 },
    { "2001:db8::7/127", "2001:db8::6", 1 },
    { "::/0", "fe80::1", 1 },
    { "::/0", "192.0.2.1", 0 },
    { "::1", "::1", 1 },
    { "1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0", 1 },   /* "::" for one group, as inet_pton */
    { "::ffff:192.0.2.1", "::ffff:c000:201", 1 },
    { "192.0.2.0/24;2001:db8::/32 , 198.51.100.1", "198.51.100.1", 1 },
    { "", "192.0.2.1", 0 },
};

START_TEST(range_match)
{
    struct range_list l;
    char why[DOMAINS_WHY_MAX];
    ck_assert_msg(domains_parse_ranges(&l, range_cases[_i].ranges, why, sizeof why) == 0, "%s",
                  why);
    ck_assert_msg(in_ranges(&l, range_cases[_i].ip) == range_cases[_i].want, "%s in %s: want %d",
                  range_cases[_i].ip, range_cases[_i].ranges, range_cases[_i].want);
    domains_free_ranges(&l);
}
END_TEST

/* RelayAddresses used to keep its first 32 ranges and drop the rest unsaid. */
START_TEST(range_more_than_32)
{
    char text[4096];
    size_t o = 0;
    for (int i = 1; i <= 40; i++) {
        int w = snprintf(text + o, sizeof text - o, "%s10.0.%d.0/24", i > 1 ? ";" : "", i);
        ck_assert(w > 0 && (size_t)w < sizeof text - o);
        o += (size_t)w;
    }
    struct range_list l;
    ck_assert_int_eq(domains_parse_ranges(&l, text, NULL, 0), 0);
    ck_assert_uint_eq(l.n, 40);
    ck_assert_int_eq(in_ranges(&l, "10.0.1.9"), 1);
    ck_assert_int_eq(in_ranges(&l, "10.0.32.9"), 1);
    ck_assert_int_eq(in_ranges(&l, "10.0.33.9"), 1);
    ck_assert_int_eq(in_ranges(&l, "10.0.40.255"), 1);
    ck_assert_int_eq(in_ranges(&l, "10.0.41.1"), 0);
    domains_free_ranges(&l);
    ck_assert_ptr_null(l.v);
}
END_TEST

static const struct {
    const char *text, *why;
} bad_range_cases[] = {
    { "192.0.2.0/33", "'192.0.2.0/33' is not an address range: an IPv4 prefix length is at "
                      "most 32" },
    { "2001:db8::/129", "'2001:db8::/129' is not an address range: an IPv6 prefix length is "
                        "at most 128" },
    { "192.0.2.0/", "'192.0.2.0/' is not an address range: the prefix length after '/' must be "
                    "a number of bits" },
    { "192.0.2.0/+24", "'192.0.2.0/+24' is not an address range: the prefix length" },
    { "192.0.2.0/2a", "'192.0.2.0/2a' is not an address range: the prefix length" },
    { "192.0.2.0/0024", "'192.0.2.0/0024' is not an address range: the prefix length" },
    { "192.0.2.0/24/8", "'192.0.2.0/24/8' is not an address range: the prefix length" },
    { "/24", "'/24' is not an address range: the address is missing" },
    { "192.0.2/24", "'192.0.2/24' is not an address range: it is not an IPv4 or IPv6 address" },
    { "256.0.0.1", "'256.0.0.1' is not an address range: it is not an IPv4 or IPv6" },
    { "1.2.3.4.5", "'1.2.3.4.5' is not an address range: it is not an IPv4 or IPv6" },
    { "1.2.3.1234", "'1.2.3.1234' is not an address range: it is not an IPv4 or IPv6" },
    { "2001:db8:::1", "'2001:db8:::1' is not an address range: it is not an IPv4 or IPv6" },
    { "1:2:3:4:5:6:7:8:9", "'1:2:3:4:5:6:7:8:9' is not an address range: it is not" },
    { "1:2:3:4:5:6:7:8::", "'1:2:3:4:5:6:7:8::' is not an address range: it is not" },
    { "1::2::3", "'1::2::3' is not an address range: it is not" },
    { "12345::", "'12345::' is not an address range: it is not" },
    { "::ffff:1.2.3", "'::ffff:1.2.3' is not an address range: it is not" },
    { "fe80::1%3", "'fe80::1%3' is not an address range: it is not" },
    { "[192.0.2.1]", "'[192.0.2.1]' is not an address range: it is not" },
    { "010.0.0.0/8", "'010.0.0.0/8' is not an address range: a part of the IPv4 address has a "
                     "leading zero, which some programs read as octal: write it in plain "
                     "decimal" },
    { "192.0.2.00", "'192.0.2.00' is not an address range: a part of the IPv4 address has a "
                    "leading zero" },
    { "::ffff:192.0.02.1", "'::ffff:192.0.02.1' is not an address range: a part of the IPv4 "
                           "address has a leading zero" },
    { "2001:0db8:::1", "'2001:0db8:::1' is not an address range: it is not an IPv4 or IPv6" },
    { "127.0.0.1/32;example.com", "'example.com' is not an address range: it is not" },
};

START_TEST(bad_ranges)
{
    char why[DOMAINS_WHY_MAX];
    struct range_list l;
    ck_assert_int_eq(domains_parse_ranges(&l, bad_range_cases[_i].text, why, sizeof why), -1);
    ck_assert_msg(strncmp(why, bad_range_cases[_i].why, strlen(bad_range_cases[_i].why)) == 0,
                  "got: %s", why);
    ck_assert_ptr_nonnull(strstr(why, "(forms: 192.0.2.7, 192.0.2.0/24, 2001:db8::7, "
                                      "2001:db8::/32)"));
    ck_assert_ptr_null(l.v);
}
END_TEST

START_TEST(parse_ip_octets)
{
    unsigned char a[16];
    int v6;
    static const unsigned char want6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
                                              0, 0, 0, 0, 0xc0, 0x00, 0x02, 0x01 };
    ck_assert_int_eq(domains_parse_ip("2001:db8::192.0.2.1", 19, &v6, a), 0);
    ck_assert_int_eq(v6, 1);
    ck_assert_mem_eq(a, want6, 16);
    ck_assert_int_eq(domains_parse_ip("192.0.2.1", 9, &v6, a), 0);
    ck_assert_int_eq(v6, 0);
    ck_assert_mem_eq(a, "\xc0\x00\x02\x01", 4);
    ck_assert_int_eq(domains_parse_ip("::", 2, &v6, a), 0);
    ck_assert_mem_eq(a, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16);
    ck_assert_int_eq(domains_parse_ip(":", 1, &v6, a), -1);
    ck_assert_int_eq(domains_parse_ip(":1::", 4, &v6, a), -1);
    ck_assert_int_eq(domains_parse_ip("1::2:", 5, &v6, a), -1);
    ck_assert_int_eq(domains_parse_ip("", 0, &v6, a), -1);
    ck_assert_int_eq(domains_parse_ip("1.2.3.4", 5, &v6, a), -1);   /* only len octets count */
    ck_assert_int_eq(domains_parse_ip("1.02.3.4", 8, &v6, a), -1);
}
END_TEST

/* The relay decision and routing agree --------------------------------------------------
 *
 * For each configuration, client and recipient: the SMTP engine's reply to
 * RCPT TO (relay_allowed from the range list, as service/listener/smtp_server.c asks
 * it), and the queue's verdict on what was accepted (route_recipient, as
 * service/queue/queue.c asks it, with a smart host) over the same parsed lists.
 * What is local is written in the table, not worked out by the matcher. */

static const struct {
    const char *local, *relay;
} agree_configs[] = {
    { LOCAL_A, "10.0.0.0/8;2001:db8:ff::/48" },
    /* the client's range is the 41st: past the old cap of 32 */
    { "*.example;example.com,[192.0.2.1] [IPv6:2001:db8::1] example.org corp.example",
      "172.16.0.1;172.16.0.2;172.16.0.3;172.16.0.4;172.16.0.5;172.16.0.6;172.16.0.7;172.16.0.8;"
      "172.16.0.9;172.16.0.10;172.16.0.11;172.16.0.12;172.16.0.13;172.16.0.14;172.16.0.15;"
      "172.16.0.16;172.16.0.17;172.16.0.18;172.16.0.19;172.16.0.20;172.16.0.21;172.16.0.22;"
      "172.16.0.23;172.16.0.24;172.16.0.25;172.16.0.26;172.16.0.27;172.16.0.28;172.16.0.29;"
      "172.16.0.30;172.16.0.31;172.16.0.32;172.16.0.33;172.16.0.34;172.16.0.35;172.16.0.36;"
      "172.16.0.37;172.16.0.38;172.16.0.39;172.16.0.40;10.0.0.0/8;2001:db8:ff::/48" },
};

static const struct {
    const char *ip;
    int relay;                  /* in both configurations' ranges */
} agree_clients[] = {
    { "192.0.2.7", 0 },
    { "10.1.2.3", 1 },
    { "2001:db8:ff::5", 1 },
    { "2001:db8:fe::5", 0 },
};

static const struct {
    const char *rcpt;
    int local[2];               /* local in agree_configs[0], [1] */
} agree_rcpts[] = {
    { "user@example.com", { 1, 1 } },
    { "User@EXAMPLE.ORG", { 1, 1 } },
    { "user@sub.corp.example", { 1, 1 } },
    { "user@corp.example", { 0, 1 } },
    { "user@sub.example", { 0, 1 } },
    { "user@example", { 0, 0 } },               /* "*.example" is not example itself */
    { "user@[192.0.2.1]", { 1, 1 } },
    { "user@[IPv6:2001:db8:0::1]", { 1, 1 } },
    { "user@[192.0.2.9]", { 0, 0 } },
    { "user@other.net", { 0, 0 } },
};

/* The code of the last reply the engine gave to conv. */
static int last_reply(const char *local, const char *client, int relay_allowed,
                      const char *rcpt)
{
    struct domain_list l;
    struct smtpd_config cfg;
    char conv[512], out[4096];
    ck_assert_int_eq(domains_parse(&l, local, NULL, 0), 0);
    memset(&cfg, 0, sizeof cfg);
    cfg.hostname = "mx.example.net";
    cfg.local_domains = &l;
    struct smtpd *s = smtpd_new(&cfg, client, relay_allowed);
    ck_assert_ptr_nonnull(s);
    int w = snprintf(conv, sizeof conv, "EHLO client.example\r\nMAIL FROM:<a@sender.example>\r\n"
                     "RCPT TO:<%s>\r\n", rcpt);
    ck_assert(w > 0 && (size_t)w < sizeof conv);
    ck_assert_uint_eq(smtpd_feed(s, conv, (size_t)w), (size_t)w);
    struct smtpd_event ev;
    for (int guard = 0; guard < 50 && smtpd_next(s, &ev) != SMTPD_EV_NONE; guard++)
        ;
    size_t n;
    const unsigned char *o = smtpd_output(s, &n);
    ck_assert_uint_lt(n, sizeof out);
    ck_assert_uint_gt(n, 5);
    memcpy(out, o, n);
    out[n] = '\0';
    size_t start = n - 2;
    while (start > 0 && out[start - 1] != '\n')
        start--;
    int code = (out[start] - '0') * 100 + (out[start + 1] - '0') * 10 + (out[start + 2] - '0');
    smtpd_free(s);
    domains_free(&l);
    return code;
}

START_TEST(relay_and_routing_agree)
{
    size_t ci = (size_t)_i;
    struct domain_list local;
    struct range_list relay;
    ck_assert_int_eq(domains_parse(&local, agree_configs[ci].local, NULL, 0), 0);
    ck_assert_int_eq(domains_parse_ranges(&relay, agree_configs[ci].relay, NULL, 0), 0);
    struct route_config queue = { &local, "relay.example.net", 25, 25, NULL };
    for (size_t k = 0; k < sizeof agree_clients / sizeof agree_clients[0]; k++) {
        const char *ip = agree_clients[k].ip;
        int may_relay = in_ranges(&relay, ip);
        ck_assert_msg(may_relay == agree_clients[k].relay, "%s: relay range", ip);
        for (size_t r = 0; r < sizeof agree_rcpts / sizeof agree_rcpts[0]; r++) {
            const char *rcpt = agree_rcpts[r].rcpt;
            int is_local = agree_rcpts[r].local[ci];
            int want = is_local || may_relay ? 250 : 550;
            int code = last_reply(agree_configs[ci].local, ip, may_relay, rcpt);
            ck_assert_msg(code == want, "config %zu, %s, RCPT TO:<%s>: %d, want %d", ci, ip, rcpt,
                          code, want);
            /* the engine's verdict is route_recipient's over the same list */
            struct addr_path p;
            struct route_verdict v, q;
            ck_assert_int_eq(addr_parse_mailbox(rcpt, strlen(rcpt), ADDR_RCPT, &p, NULL), 0);
            ck_assert_int_eq(route_recipient(&queue, &p, may_relay, &v) == 0, code == 250);
            ck_assert_int_eq(domains_match(&local, p.domain), is_local);
            if (code != 250)
                continue;
            /* what was accepted, the queue routes: dropped here exactly when local */
            ck_assert_int_eq(route_recipient(&queue, &v.addr, 1, &q), 0);
            ck_assert_msg(q.route.kind == (is_local ? ROUTE_DROP : ROUTE_SMARTHOST),
                          "config %zu, %s, <%s>: route %d", ci, ip, rcpt, (int)q.route.kind);
            struct route sel;
            ck_assert_int_eq(route_select(&queue, p.domain, &sel), 0);
            ck_assert_int_eq(sel.kind, q.route.kind);
        }
    }
    domains_free(&local);
    domains_free_ranges(&relay);
}
END_TEST

Suite *domains_suite(void)
{
    Suite *s = suite_create("domains");
    TCase *tc = tcase_create("local domains");
    tcase_add_loop_test(tc, match_forms, 0, sizeof match_cases / sizeof match_cases[0]);
    tcase_add_test(tc, match_canonical_entries);
    tcase_add_test(tc, match_empty_and_null);
    tcase_add_test(tc, match_many_domains);
    tcase_add_loop_test(tc, bad_entries, 0, sizeof bad_cases / sizeof bad_cases[0]);
    tcase_add_test(tc, bad_lengths);
    tcase_add_test(tc, first_single);
    tcase_add_test(tc, imcea_same_matcher);
    suite_add_tcase(s, tc);
    tc = tcase_create("relay ranges");
    tcase_add_loop_test(tc, range_match, 0, sizeof range_cases / sizeof range_cases[0]);
    tcase_add_test(tc, range_more_than_32);
    tcase_add_loop_test(tc, bad_ranges, 0, sizeof bad_range_cases / sizeof bad_range_cases[0]);
    tcase_add_test(tc, parse_ip_octets);
    suite_add_tcase(s, tc);
    tc = tcase_create("relay and routing agree");
    tcase_add_loop_test(tc, relay_and_routing_agree, 0,
                        sizeof agree_configs / sizeof agree_configs[0]);
    suite_add_tcase(s, tc);
    return s;
}
