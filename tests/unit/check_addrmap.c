/* check_addrmap.c - the X.400 <-> SMTP address map, one row per case. */
#include <check.h>
#include <stdio.h>
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
    { "bill@fab.example\n", 0, "line 1: expected an X.400 address, blanks, then an SMTP address" },
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

Suite *addrmap_suite(void)
{
    Suite *s = suite_create("addrmap");
    TCase *tc = tcase_create("map");
    tcase_add_loop_test(tc, test_map_table, 0, (int)(sizeof map_cases / sizeof map_cases[0]));
    tcase_add_loop_test(tc, test_lookup_table, 0, (int)(sizeof lookup_cases / sizeof lookup_cases[0]));
    tcase_add_test(tc, test_load_file);
    suite_add_tcase(s, tc);
    return s;
}
