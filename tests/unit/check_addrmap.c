/* check_addrmap.c - the X.400 <-> SMTP address map, one row per case. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addrmap.h"

struct map_case {
    const char *text;
    size_t count;           /* entries when valid */
    const char *error;      /* NULL: must load; else the exact error text */
};

static const struct map_case map_cases[] = {
    { "", 0, NULL },
    { "# only a comment\n\n   \n\t# indented comment\n", 0, NULL },
    { "c=US;a= ;o=Site;s=Lee;g=Bill; bill.lee@fab.example\n", 1, NULL },
    { "c=US;a= ;o=Site;s=Lee;g=Bill;\t<bill.lee@fab.example>", 1, NULL },
    { "\xEF\xBB\xBF" "c=US;a= ;o=Site;s=Lee;\tlee@fab.example\r\n"
      "c=US;a= ;p=Fab;cn=Bill Lee;   bill@fab.example  \r\n", 2, NULL },
    { "c=US;a= ;o=Site;s=Lee;g=Bill;\n", 0, "line 1: no SMTP address after the X.400 address" },
    { "bill@fab.example\n", 0,
      "line 1: expected an address or @domain, blanks, then the addresses it stands for" },
    { "c=US;a=BT;o=Site;\n", 0, "line 1: expected an X.400 address, blanks, then an SMTP address" },
    { "c=US;a= ;o=Site x@y.example\n", 0, "line 1: the X.400 address must end with ';'" },
    { "# ok\nc=US;a= ;o=Site;g=Bill; bill@fab.example\n", 0,
      "line 2: X.400 address: field s: surname is required when g is present" },
    { "c=US;a= ;o=Site;s=Lee; bill@-fab.example\n", 0,
      "line 1: SMTP address: domain label must start with a letter or digit" },
    { "c=US;a= ;o=Site;s=Lee; bill@fab.example\n\nc=us;a= ;o=SITE;s=lee; other@fab.example\n", 0,
      "line 3: X.400 address already mapped on line 1" },
    { "c=US;a= ;o=Site;s=Lee; bill@fab.example\nc=US;a= ;o=Site;s=Other; BILL@FAB.example\n", 0,
      "line 2: SMTP address already mapped on line 1" },
    { "c=US;a= ;o=Site;s=Lee; bill@fab.example extra\n", 0,
      "line 1: the X.400 address must end with ';'" },
    { "c=US;a= ;o=Site;s=Lee; bi\rll@fab.example\n", 0, "line 1: stray NUL or carriage return in line" },
    /* directions */
    { "c=US;a= ;o=Site;s=Lee; bill@fab.example in\n"
      "c=US;a= ;o=Site;s=Ann;\tann@fab.example\tOUT\n"
      "c=US;a= ;o=Site;s=Bo; <bo@fab.example>  both\n", 3, NULL },
    { "c=US;a= ;o=Site;s=Lee; bill@fab.example sideways\n", 0,
      "line 1: the X.400 address must end with ';'" },
    { "c=US;a= ;o=Site;s=Lee; in\n", 0, "line 1: no SMTP address after the X.400 address" },
    /* other types */
    { "EX:/o=Fab/ou=Site/cn=Recipients/cn=ann  ann@fab.example\n"
      "FAX:+1 (425) 555-0100 fax-desk@fab.example out\n"
      "x400:c=US;a= ;o=Site;s=Lee   lee@fab.example\n", 3, NULL },
    { "EX:/o=Fab/cn=ann ann@fab.example\nex:/O=FAB/CN=ANN other@fab.example\n", 0,
      "line 2: EX address already mapped on line 1" },
    { "EX: ann@fab.example\n", 0, "line 1: the typed address is empty after its TYPE:" },
    { "EX:/o=Fab/cn=ann\n", 0, "line 1: expected a typed address, blanks, then an SMTP address" },
    { "X400:c=US;a= ;o=Site;g=Bill bill@fab.example\n", 0,
      "line 1: X.400 address: field s: surname is required when g is present" },
    { "c=US;a= ;o=Site;s=Lee; lee@fab.example\nX400:C=us;A= ;O=site;S=LEE; other@fab.example\n", 0,
      "line 2: X.400 address already mapped on line 1" },
    /* aliases */
    { "sales@fab.example bill@fab.example, ann@fab.example\n"
      "@old.example @fab.example\n"
      "@older.example catchall@fab.example\n"
      "info@fab.example\t<desk@fab.example>,,ops@other.example  x@y.example\n", 4, NULL },
    { "sales@fab.example bill@fab.example\nSALES@FAB.EXAMPLE ann@fab.example\n", 0,
      "line 2: alias for this address already on line 1" },
    { "@old.example @fab.example\n@Old.Example @new.example\n", 0,
      "line 2: alias for this address already on line 1" },
    { "sales@fab.example @fab.example\n", 0, "line 1: a target @domain needs an alias @domain" },
    { "@old.example @fab.example, bill@fab.example\n", 0,
      "line 1: an alias to @domain takes no other target" },
    { "@old.example\n", 0,
      "line 1: expected an address or @domain, blanks, then the addresses it stands for" },
    { "@-old.example a@fab.example\n", 0,
      "line 1: alias @domain: domain label must start with a letter or digit" },
    { "sales@fab.example bill@fab..example\n", 0,
      "line 1: alias target: domain label must start with a letter or digit" },
    { "sales@@fab.example bill@fab.example\n", 0,
      "line 1: alias: domain label must start with a letter or digit" },
};

START_TEST(test_map_table)
{
    const struct map_case *c = &map_cases[_i];
    struct addrmap *m = (struct addrmap *)&m;      /* must be reset to NULL on failure */
    struct addrmap_error err;
    int rc = addrmap_parse(c->text, strlen(c->text), &m, &err);
    if (!c->error) {
        ck_assert_msg(rc == 0, "row %d: %s", _i, err.text);
        ck_assert_uint_eq(addrmap_count(m), c->count);
        addrmap_free(m);
    } else {
        ck_assert_int_eq(rc, -1);
        ck_assert_ptr_null(m);
        ck_assert_str_eq(err.text, c->error);
    }
}
END_TEST

static const char sample[] =
    "# X.400 address                                  SMTP address\n"
    "c=US;a= ;p=Fab;o=NAmericaW;s=Lee;g=Bill;         bill.lee@fab.example\n"
    "c=US;a= ;o=NAmericaW;cn=Sales Desk;               sales@fab.example\n"
    "c=GB;a=BT;o=Other;ou1=Ops;s=Smith;               <j.smith@other.example>\n";

struct lookup_case {
    const char *x400;       /* looked up by X.400... */
    const char *smtp;       /* ...must give this (NULL: no mapping) */
    unsigned line;
};

static const struct lookup_case lookup_cases[] = {
    { "c=US;a= ;p=Fab;o=NAmericaW;s=Lee;g=Bill;", "bill.lee@fab.example", 2 },
    { "G=BILL;S=LEE;O=namericaw;P=fab;A= ;C=us", "bill.lee@fab.example", 2 },
    { "c=US;a= ;o=NAmericaW;cn=sales desk;", "sales@fab.example", 3 },
    { "c=GB;a=BT;o=Other;ou=Ops;s=Smith;", "j.smith@other.example", 4 },
    { "c=US;a= ;o=NAmericaW;s=Lee;g=Bill;", NULL, 0 },      /* no p: a different address */
    { "c=US;a= ;p=Fab;o=NAmericaW;s=Lee;", NULL, 0 },
};

START_TEST(test_lookup_table)
{
    const struct lookup_case *c = &lookup_cases[_i];
    struct addrmap *m;
    struct addrmap_error err;
    struct x400_addr key;
    struct x400_error xerr;
    char out[512];
    ck_assert_int_eq(addrmap_parse(sample, strlen(sample), &m, &err), 0);
    ck_assert_uint_eq(addrmap_count(m), 3);
    ck_assert_int_eq(x400_parse(c->x400, strlen(c->x400), &key, &xerr), 0);
    const struct addrmap_entry *e = addrmap_find_x400(m, &key);
    if (!c->smtp) {
        ck_assert_ptr_null(e);
        addrmap_free(m);
        return;
    }
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(e->line, c->line);
    ck_assert_int_gt(addr_format_mailbox(&e->smtp, out, sizeof out), 0);
    ck_assert_str_eq(out, c->smtp);
    /* And back: the SMTP side (in another case) finds the same entry. */
    struct addr_path p;
    struct addr_error aerr;
    for (char *q = out; *q; q++)
        *q = (char)((*q >= 'a' && *q <= 'z') ? *q - 32 : *q);
    ck_assert_int_eq(addr_parse_mailbox(out, strlen(out), ADDR_RCPT, &p, &aerr), 0);
    ck_assert_ptr_eq(addrmap_find_smtp(m, &p), e);
    ck_assert_int_eq(x400_equal(&e->x400, &key), 1);
    addrmap_free(m);
}
END_TEST

START_TEST(test_load_file)
{
    const char *path = "check_addrmap.tmp";
    struct addrmap *m;
    struct addrmap_error err;
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fputs(sample, f);
    fclose(f);
    ck_assert_int_eq(addrmap_load(path, &m, &err), 0);
    ck_assert_uint_eq(addrmap_count(m), 3);
    ck_assert_ptr_nonnull(addrmap_entry_at(m, 2));
    ck_assert_ptr_null(addrmap_entry_at(m, 3));
    ck_assert_str_eq(addrmap_entry_at(m, 0)->x400.s, "Lee");
    addrmap_free(m);
    remove(path);
    ck_assert_int_eq(addrmap_load("no-such-dir/no-such-map.txt", &m, &err), -1);
    ck_assert_ptr_null(m);
    ck_assert_uint_eq(err.line, 0);
    ck_assert(strstr(err.text, "cannot open") != NULL);
}
END_TEST

/* Aliases, typed lookups and directions. */
static const char more[] =
    "c=US;a= ;o=Site;s=Lee;            lee@fab.example\n"
    "c=US;a= ;o=Site;s=Ann;            ann.x400@fab.example   out\n"
    "EX:/o=Fab/ou=Site/cn=Recipients/cn=bo   bo@fab.example  both\n"
    "sales@fab.example                  lee@fab.example, bo@fab.example\n"
    "@old.example                       @fab.example\n"
    "@older.example                     desk@fab.example\n";

static void mailbox(const char *s, struct addr_path *p)
{
    struct addr_error err;
    ck_assert_int_eq(addr_parse_mailbox(s, strlen(s), ADDR_RCPT, p, &err), 0);
}

START_TEST(test_kinds_and_lookups)
{
    struct addrmap *m;
    struct addrmap_error err;
    struct addr_path p;
    char out[ADDRMAP_ENTRY_TEXT_MAX];
    ck_assert_msg(addrmap_parse(more, strlen(more), &m, &err) == 0, "%s", err.text);
    ck_assert_uint_eq(addrmap_count(m), 6);
    ck_assert_uint_eq(addrmap_count_kind(m, ADDRMAP_TYPED), 3);
    ck_assert_uint_eq(addrmap_count_kind(m, ADDRMAP_ALIAS), 3);
    ck_assert_uint_eq(addrmap_entry_at(m, 0)->dir, ADDRMAP_IN);       /* the default */
    ck_assert_uint_eq(addrmap_entry_at(m, 1)->dir, ADDRMAP_OUT);
    ck_assert_uint_eq(addrmap_entry_at(m, 2)->dir, ADDRMAP_BOTH);

    /* typed: X.400 by its rules, other types ignoring case */
    const char *x = "C=us;A= ;O=SITE;S=lee";
    const struct addrmap_entry *e = addrmap_find_typed(m, "X400", x, strlen(x));
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(e->line, 1);
    const char *ex = "/O=FAB/OU=SITE/CN=RECIPIENTS/CN=BO";
    e = addrmap_find_typed(m, "EX", ex, strlen(ex));
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(e->line, 3);
    ck_assert_ptr_null(addrmap_find_typed(m, "FAX", ex, strlen(ex)));
    ck_assert_ptr_null(addrmap_find_typed(m, "X400", "c=US;a= ;o=Site;g=Lee;", 22));

    /* aliases: the address first, then its domain */
    mailbox("Sales@FAB.example", &p);
    e = addrmap_find_alias(m, &p);
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(e->line, 4);
    ck_assert_uint_eq(e->ntargets, 2);
    ck_assert_int_gt(addr_format_mailbox(&e->targets[1], out, sizeof out), 0);
    ck_assert_str_eq(out, "bo@fab.example");
    mailbox("anyone@OLD.example", &p);
    e = addrmap_find_alias(m, &p);
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(e->line, 5);
    ck_assert_int_eq(e->key_domain, 1);
    ck_assert_str_eq(e->targets[0].domain, "fab.example");
    ck_assert_str_eq(e->targets[0].local, "");
    mailbox("anyone@sub.old.example", &p);
    ck_assert_ptr_null(addrmap_find_alias(m, &p));    /* a domain, not its subdomains */
    mailbox("lee@fab.example", &p);
    ck_assert_ptr_null(addrmap_find_alias(m, &p));

    /* canonical lines */
    static const char *const lines[] = {
        "c=US;a= ;o=Site;s=Lee;\tlee@fab.example\tin",
        "c=US;a= ;o=Site;s=Ann;\tann.x400@fab.example\tout",
        "EX:/o=Fab/ou=Site/cn=Recipients/cn=bo\tbo@fab.example\tboth",
        "sales@fab.example\tlee@fab.example, bo@fab.example",
        "@old.example\t@fab.example",
        "@older.example\tdesk@fab.example",
    };
    for (size_t k = 0; k < 6; k++) {
        ck_assert_int_gt(addrmap_format_entry(addrmap_entry_at(m, k), out, sizeof out), 0);
        ck_assert_str_eq(out, lines[k]);
    }
    ck_assert_int_eq(addrmap_format_entry(addrmap_entry_at(m, 3), out, 10), -1);
    ck_assert_str_eq(out, "");
    addrmap_free(m);
}
END_TEST

/* An alias of more than ADDRMAP_TARGETS_MAX addresses is refused. */
START_TEST(test_alias_limit)
{
    char text[ADDRMAP_LINE_MAX];
    size_t o = (size_t)snprintf(text, sizeof text, "big@fab.example");
    for (int k = 0; k <= ADDRMAP_TARGETS_MAX; k++)
        o += (size_t)snprintf(text + o, sizeof text - o, " u%d@f.example", k);
    ck_assert_uint_lt(o, sizeof text - 1);
    struct addrmap *m;
    struct addrmap_error err;
    ck_assert_int_eq(addrmap_parse(text, o, &m, &err), -1);
    ck_assert_str_eq(err.text, "line 1: an alias stands for at most 100 addresses");
    /* exactly 100 is fine */
    char *last = strrchr(text, ' ');
    ck_assert_int_eq(addrmap_parse(text, (size_t)(last - text), &m, &err), 0);
    ck_assert_uint_eq(addrmap_entry_at(m, 0)->ntargets, 100);
    addrmap_free(m);
}
END_TEST

/* A map of 20,000 typed lines and 20,000 aliases loads (the uniqueness
 * check and lookups are indexed, not a scan per line), finds every line
 * from each side, and still names the first line of a duplicate. */
#define BIG_LINES 20000
START_TEST(test_big_map)
{
    size_t cap = (size_t)BIG_LINES * 120, o = 0;
    char *text = malloc(cap);
    ck_assert_ptr_nonnull(text);
    for (int k = 0; k < BIG_LINES; k++) {
        o += (size_t)snprintf(text + o, cap - o, "c=US;a= ;o=Big;s=U%d;\tu%d@big.example\n", k, k);
        o += (size_t)snprintf(text + o, cap - o, "a%d@big.example u%d@big.example\n", k, k);
    }
    struct addrmap *m;
    struct addrmap_error err;
    ck_assert_msg(addrmap_parse(text, o, &m, &err) == 0, "%s", err.text);
    ck_assert_uint_eq(addrmap_count(m), 2 * BIG_LINES);
    char key[64];
    struct addr_path p;
    for (int k = 0; k < BIG_LINES; k += 997) {
        snprintf(key, sizeof key, "C=us;A= ;O=BIG;S=u%d", k);
        const struct addrmap_entry *e = addrmap_find_typed(m, "X400", key, strlen(key));
        ck_assert_ptr_nonnull(e);
        ck_assert_uint_eq(e->line, (unsigned)(2 * k + 1));
        snprintf(key, sizeof key, "U%d@big.example", k);
        mailbox(key, &p);
        ck_assert_ptr_eq(addrmap_find_smtp(m, &p), e);
        snprintf(key, sizeof key, "A%d@BIG.example", k);
        mailbox(key, &p);
        e = addrmap_find_alias(m, &p);
        ck_assert_ptr_nonnull(e);
        ck_assert_uint_eq(e->line, (unsigned)(2 * k + 2));
    }
    mailbox("nobody@big.example", &p);
    ck_assert_ptr_null(addrmap_find_smtp(m, &p));
    ck_assert_ptr_null(addrmap_find_alias(m, &p));
    addrmap_free(m);
    /* a duplicate at the end names the first line */
    o += (size_t)snprintf(text + o, cap - o, "c=us;a= ;o=big;s=u777;\tother@big.example\n");
    ck_assert_int_eq(addrmap_parse(text, o, &m, &err), -1);
    snprintf(key, sizeof key, "line %d: X.400 address already mapped on line %d", 2 * BIG_LINES + 1,
             2 * 777 + 1);
    ck_assert_str_eq(err.text, key);
    free(text);
}
END_TEST

Suite *addrmap_suite(void)
{
    Suite *s = suite_create("addrmap");
    TCase *tc = tcase_create("map");
    tcase_add_loop_test(tc, test_map_table, 0, (int)(sizeof map_cases / sizeof map_cases[0]));
    tcase_add_loop_test(tc, test_lookup_table, 0, (int)(sizeof lookup_cases / sizeof lookup_cases[0]));
    tcase_add_test(tc, test_load_file);
    tcase_add_test(tc, test_kinds_and_lookups);
    tcase_add_test(tc, test_alias_limit);
    tcase_add_test(tc, test_big_map);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}
