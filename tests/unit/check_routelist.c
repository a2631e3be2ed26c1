/* check_routelist.c - per-domain routes: the text of a route (defaults,
 * canonical form, every refusal with its sentence), which route a domain
 * takes (exact over wildcard, the longest wildcard, never the apex of a
 * wildcard), and how routing uses them (a local domain is still dropped, a
 * route wins over SmartHost, a route is its own destination), by table. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "route.h"
#include "routelist.h"

/* routelist_parse_line and routelist_format ------------------------------------ */

static const struct {
    const char *text;
    const char *canonical;      /* NULL: refused */
    const char *why;            /* refused: a part of the sentence */
} line_cases[] = {
    { "example.com relay.example.net",
      "example.com relay.example.net:25 tls=opportunistic trust=verify auth=none", NULL },
    { "  Example.COM.\tRelay.Example.NET:2525   tls=REQUIRED trust=any ",
      "example.com relay.example.net:2525 tls=required trust=any auth=none", NULL },
    { "*.b.test 127.0.0.1:2753 tls=off",
      "*.b.test 127.0.0.1:2753 tls=off trust=verify auth=none", NULL },
    /* a password mechanism makes TLS required unless tls= says otherwise */
    { "a.test smtp.a.test:587 auth=plain,login user=alice",
      "a.test smtp.a.test:587 tls=required trust=verify auth=plain,login user=alice", NULL },
    { "a.test smtp.a.test:587 auth=login,PLAIN user=alice tls=opportunistic",
      "a.test smtp.a.test:587 tls=opportunistic trust=verify auth=plain,login user=alice", NULL },
    { "a.test [192.0.2.9]:26 auth=ntlm user=CORP\\svc",
      "a.test 192.0.2.9:26 tls=opportunistic trust=verify auth=ntlm user=CORP\\svc", NULL },
    { "a.test [IPv6:2001:db8::9]:26 auth=ntlm",
      "a.test [2001:db8::9]:26 tls=opportunistic trust=verify auth=ntlm", NULL },
    { "[192.0.2.1] relay.test", "[192.0.2.1] relay.test:25 tls=opportunistic trust=verify auth=none",
      NULL },
    /* refusals */
    { "", NULL, "a domain and a host" },
    { "a.test", NULL, "a domain and a host" },
    { "a_b.test relay.test", NULL, "a_b.test" },
    { "*.*.test relay.test", NULL, "*" },
    { "a.test relay.test:0", NULL, "is not a host" },
    { "a.test 2001:db8::1", NULL, "is not a host" },
    { "a.test relay.test tls=maybe", NULL, "tls= is off, opportunistic or required" },
    { "a.test relay.test trust=some", NULL, "trust= is verify or any" },
    { "a.test relay.test auth=cram-md5 user=u", NULL, "auth= is none" },
    { "a.test relay.test auth=plain,plain user=u", NULL, "each once" },
    { "a.test relay.test tls=off tls=off", NULL, "tls= is given twice" },
    { "a.test relay.test colour=blue", NULL, "the settings are tls=, trust=, auth= and user=" },
    { "a.test relay.test required", NULL, "is not key=value" },
    { "a.test relay.test auth=plain", NULL, "give user=NAME" },
    { "a.test relay.test auth=login user=u tls=off", NULL, "never done in clear" },
    { "a.test relay.test user=u", NULL, "user= is used only with auth=" },
    { "a.test relay.test auth=ntlm user=", NULL, "user= wants a name" },
    { "a.test relay.test a=1 b=2 c=3 d=4 e=5 f=6 g=7", NULL, "too many words" },
    { "a.test relay.test\x01", NULL, "control characters" },
    /* a sentence quoting what was written stays printable (found by fuzz_routelist) */
    { "caf\xc3\xa9.test relay.test", NULL, "'caf??.test' is not a domain a route can name" },
};

START_TEST(parse_and_format)
{
    struct route_entry e, again;
    char why[ROUTELIST_WHY_MAX], buf[ROUTELIST_LINE_MAX + 1];
    const char *t = line_cases[_i].text;
    int rc = routelist_parse_line(&e, t, strlen(t), why, sizeof why);
    if (!line_cases[_i].canonical) {
        ck_assert_msg(rc == -1, "accepted \"%s\"", t);
        ck_assert_msg(strstr(why, line_cases[_i].why) != NULL, "\"%s\": why \"%s\"", t, why);
        return;
    }
    ck_assert_msg(rc == 0, "\"%s\" refused: %s", t, why);
    ck_assert_int_gt(routelist_format(&e, 0, buf, sizeof buf), 0);
    ck_assert_str_eq(buf, line_cases[_i].canonical);
    /* the canonical text reads back to the same route */
    ck_assert_int_eq(routelist_parse_line(&again, buf, strlen(buf), why, sizeof why), 0);
    ck_assert_str_eq(again.pattern, e.pattern);
    ck_assert_int_eq(again.domain.kind, e.domain.kind);
    ck_assert_str_eq(again.host, e.host);
    ck_assert_uint_eq(again.port, e.port);
    ck_assert_int_eq(again.tls, e.tls);
    ck_assert_int_eq(again.trust_any, e.trust_any);
    ck_assert_uint_eq(again.auth, e.auth);
    ck_assert_str_eq(again.user, e.user);
    /* spec_only: what follows the domain */
    ck_assert_int_gt(routelist_format(&e, 1, buf, sizeof buf), 0);
    ck_assert_str_eq(buf, line_cases[_i].canonical + strlen(e.pattern) + 1);
}
END_TEST

START_TEST(format_too_small)
{
    struct route_entry e;
    char buf[16];
    ck_assert_int_eq(routelist_parse_line(&e, "a.test relay.test", 17, NULL, 0), 0);
    ck_assert_int_eq(routelist_format(&e, 0, buf, sizeof buf), -1);
    ck_assert_str_eq(buf, "");
}
END_TEST

START_TEST(mechs)
{
    unsigned m = 99;
    ck_assert_int_eq(routelist_parse_mechs("none", 4, &m), 0);
    ck_assert_uint_eq(m, 0);
    ck_assert_int_eq(routelist_parse_mechs("NTLM,login", 10, &m), 0);
    ck_assert_uint_eq(m, ROUTELIST_AUTH_NTLM | ROUTELIST_AUTH_LOGIN);
    ck_assert_int_eq(routelist_parse_mechs("plain,", 6, &m), -1);
    ck_assert_int_eq(routelist_parse_mechs(",plain", 6, &m), -1);
    ck_assert_int_eq(routelist_parse_mechs("none,plain", 10, &m), -1);
    ck_assert_int_eq(routelist_parse_mechs("", 0, &m), -1);
}
END_TEST

/* routelist_parse and routelist_find -------------------------------------------- */

#define LIST "a.test 127.0.0.1:2752 tls=off\r\n" \
             "\n" \
             "*.b.test 127.0.0.1:2753 tls=off\n" \
             "*.deep.b.test 127.0.0.1:2754\n" \
             "exact.b.test 127.0.0.1:2755\n" \
             "[192.0.2.7] 127.0.0.1:2756"

static const struct {
    const char *domain;
    const char *pattern;        /* NULL: no route */
} find_cases[] = {
    { "a.test", "a.test" },
    { "A.TEST.", "a.test" },
    { "x.a.test", NULL },               /* an exact route is not a wildcard */
    { "b.test", NULL },                 /* a wildcard never matches its apex */
    { "sub.b.test", "*.b.test" },
    { "x.y.sub.b.test", "*.b.test" },
    { "deep.b.test", "*.b.test" },
    { "x.deep.b.test", "*.deep.b.test" },  /* the longer wildcard */
    { "exact.b.test", "exact.b.test" },    /* exact over the wildcard */
    { "x.exact.b.test", "*.b.test" },
    { "[192.0.2.7]", "[192.0.2.7]" },
    { "other.test", NULL },
    { "not a domain", NULL },
};

START_TEST(find)
{
    static struct route_list l;
    static int parsed;
    char why[ROUTELIST_WHY_MAX];
    if (!parsed) {
        ck_assert_msg(routelist_parse(&l, LIST, why, sizeof why) == 0, "%s", why);
        ck_assert_uint_eq(l.n, 5);
        parsed = 1;
    }
    const struct route_entry *e = routelist_find(&l, find_cases[_i].domain);
    if (!find_cases[_i].pattern) {
        ck_assert_msg(e == NULL, "%s took %s", find_cases[_i].domain, e ? e->pattern : "");
        return;
    }
    ck_assert_msg(e != NULL, "%s took no route", find_cases[_i].domain);
    ck_assert_str_eq(e->pattern, find_cases[_i].pattern);
    ck_assert_ptr_eq(routelist_get(&l, find_cases[_i].pattern), e);
}
END_TEST

START_TEST(list_refusals)
{
    struct route_list l;
    char why[ROUTELIST_WHY_MAX];
    ck_assert_int_eq(routelist_parse(&l, "a.test r.test\nA.Test. s.test", why, sizeof why), -1);
    ck_assert_str_eq(why, "a.test has two routes");
    ck_assert_uint_eq(l.n, 0);
    ck_assert_int_eq(routelist_parse(&l, "a.test r.test\nb.test r.test tls=sometimes", why,
                                     sizeof why), -1);
    ck_assert_str_eq(why, "the route \"b.test r.test tls=sometimes\" is not valid: \"tls=sometimes\": "
                          "tls= is off, opportunistic or required");
    ck_assert_int_eq(routelist_parse(&l, "", why, sizeof why), 0);
    ck_assert_uint_eq(l.n, 0);
    ck_assert_ptr_null(routelist_find(&l, "a.test"));
    ck_assert_ptr_null(routelist_find(NULL, "a.test"));
    routelist_free(&l);
}
END_TEST

/* Routing with routes ---------------------------------------------------------- */

START_TEST(routing)
{
    struct domain_list local;
    struct route_list routes;
    struct route r;
    char key[ROUTE_KEY_MAX];
    ck_assert_int_eq(domains_parse(&local, "local.test;*.corp.test", NULL, 0), 0);
    ck_assert_int_eq(routelist_parse(&routes, "*.b.test 127.0.0.1:2753\na.test [192.0.2.9]\n"
                                     "x.corp.test 127.0.0.1:2754\nsmart.test relay.test:2525",
                                     NULL, 0), 0);
    struct route_config c = { &local, "relay.test:2525", 25, 25, &routes };

    /* a route wins over the smart host, and names itself */
    ck_assert_int_eq(route_select(&c, "x.B.test", &r), 0);
    ck_assert_int_eq(r.kind, ROUTE_SMARTHOST);
    ck_assert_str_eq(r.host, "127.0.0.1");
    ck_assert_uint_eq(r.port, 2753);
    ck_assert_str_eq(r.via, "*.b.test");
    ck_assert_int_gt(route_key(&r, key, sizeof key), 0);
    ck_assert_str_eq(key, "route:*.b.test:127.0.0.1:2753");
    ck_assert_int_eq(route_select(&c, "a.test", &r), 0);
    ck_assert_str_eq(r.host, "192.0.2.9");
    ck_assert_uint_eq(r.port, 25);

    /* a route to the smart host itself is still its own destination */
    ck_assert_int_eq(route_select(&c, "smart.test", &r), 0);
    ck_assert_int_gt(route_key(&r, key, sizeof key), 0);
    ck_assert_str_eq(key, "route:smart.test:relay.test:2525");

    /* no route: the smart host, via "" */
    ck_assert_int_eq(route_select(&c, "b.test", &r), 0);
    ck_assert_str_eq(r.via, "");
    ck_assert_int_gt(route_key(&r, key, sizeof key), 0);
    ck_assert_str_eq(key, "smarthost:relay.test:2525");

    /* a local domain is dropped even when a route names it */
    ck_assert_int_eq(route_select(&c, "x.corp.test", &r), 0);
    ck_assert_int_eq(r.kind, ROUTE_DROP);

    /* no smart host: a route still goes to its own host, others by MX */
    c.smarthost = NULL;
    ck_assert_int_eq(route_select(&c, "y.b.test", &r), 0);
    ck_assert_str_eq(r.via, "*.b.test");
    ck_assert_int_eq(route_select(&c, "y.c.test", &r), 0);
    ck_assert_int_eq(r.kind, ROUTE_MX);

    /* the verdict on a recipient takes the same route */
    struct addr_path p;
    struct route_verdict v;
    ck_assert_int_eq(addr_parse_path("<u@s.b.test>", 12, ADDR_RCPT, &p, NULL), 0);
    ck_assert_int_eq(route_recipient(&c, &p, 1, &v), 0);
    ck_assert_str_eq(v.route.via, "*.b.test");
    ck_assert_int_eq(route_recipient(&c, &p, 0, &v), -1);   /* routes do not open relaying */
    ck_assert_int_eq(v.code, 550);

    routelist_free(&routes);
    domains_free(&local);
}
END_TEST

Suite *routelist_suite(void)
{
    Suite *s = suite_create("routelist");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, parse_and_format, 0, sizeof line_cases / sizeof line_cases[0]);
    tcase_add_test(tc, format_too_small);
    tcase_add_test(tc, mechs);
    tcase_add_loop_test(tc, find, 0, sizeof find_cases / sizeof find_cases[0]);
    tcase_add_test(tc, list_refusals);
    tcase_add_test(tc, routing);
    suite_add_tcase(s, tc);
    return s;
}
