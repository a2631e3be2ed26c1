/* check_x400.c - X.400 O/R addresses, one row per case. */
#include <check.h>
#include <string.h>

#include "x400.h"

#define S16 "abcdefghijklmnop"
#define S32 S16 S16
#define S64 S32 S32
#define S40 S32 "abcdefgh"
#define S128 S64 S64

struct x400_case {
    const char *in;
    const char *canon;      /* NULL: must fail */
    const char *error;      /* expected err.text on failure */
};

#define BASE "c=US;a= ;o=Site;"

static const struct x400_case x400_cases[] = {
    /* valid */
    { "c=US;a= ;p=Fab;o=NAmericaW;ou1=Sales;s=Lee;g=Bill;i=X;q=Jr;cn=Bill Lee;",
      "c=US;a= ;p=Fab;o=NAmericaW;ou1=Sales;s=Lee;g=Bill;i=X;q=Jr;cn=Bill Lee;", NULL },
    /* no PRMD, organization present: valid (the classic failure) */
    { "c=US;a= ;o=NAmericaW;s=Lee;g=Bill;", "c=US;a= ;o=NAmericaW;s=Lee;g=Bill;", NULL },
    /* no PRMD, no organization, surname only: valid */
    { "c=US;a= ;s=Lee;", "c=US;a= ;s=Lee;", NULL },
    { "c=US;a= ;o=Site", "c=US;a= ;o=Site;", NULL },
    { "c=US;a= ;p=Fab;", "c=US;a= ;p=Fab;", NULL },
    { "c=US;a= ;cn=Bill Lee;", "c=US;a= ;cn=Bill Lee;", NULL },
    { "c=US;a= ;ou1=Sales;", "c=US;a= ;ou1=Sales;", NULL },
    { "cn=Bill Lee;s=Lee;g=Bill;o=Site;a=ATTMAIL;c=us;", "c=US;a=ATTMAIL;o=Site;s=Lee;g=Bill;cn=Bill Lee;", NULL },
    { "C=US;A= ;O=Site;OU1=a;OU2=b;OU3=c;OU4=d;", "c=US;a= ;o=Site;ou1=a;ou2=b;ou3=c;ou4=d;", NULL },
    { "c=US;a= ;o=Site;ou=a;ou=b;", "c=US;a= ;o=Site;ou1=a;ou2=b;", NULL },
    { "c=840;a= ;o=Site;", "c=840;a= ;o=Site;", NULL },
    { "c=US;a= ;o=Site;dda:SMTP=bill@fab.example;", "c=US;a= ;o=Site;dda:SMTP=bill@fab.example;", NULL },
    { "c=US;a= ;o=Site;dda:A=1;dda:B=2;dda:C=3;dda:D=4;", "c=US;a= ;o=Site;dda:A=1;dda:B=2;dda:C=3;dda:D=4;", NULL },
    { "c=US;a= ;o=A=B (x);", "c=US;a= ;o=A=B (x);", NULL },
    /* every length limit at its bound */
    { "c=US;a=" S16 ";o=Site;", "c=US;a=" S16 ";o=Site;", NULL },
    { "c=US;a= ;p=" S16 ";", "c=US;a= ;p=" S16 ";", NULL },
    { "c=US;a= ;o=" S64 ";", "c=US;a= ;o=" S64 ";", NULL },
    { "c=US;a= ;ou1=" S32 ";", "c=US;a= ;ou1=" S32 ";", NULL },
    { "c=US;a= ;ou4=" S32 ";", "c=US;a= ;ou4=" S32 ";", NULL },
    { "c=US;a= ;s=" S40 ";", "c=US;a= ;s=" S40 ";", NULL },
    { "c=US;a= ;s=Lee;g=" S16 ";", "c=US;a= ;s=Lee;g=" S16 ";", NULL },
    { "c=US;a= ;s=Lee;i=ABCDE;", "c=US;a= ;s=Lee;i=ABCDE;", NULL },
    { "c=US;a= ;s=Lee;q=III;", "c=US;a= ;s=Lee;q=III;", NULL },
    { "c=US;a= ;cn=" S64 ";", "c=US;a= ;cn=" S64 ";", NULL },
    { BASE "dda:ABCDEFGH=x;", BASE "dda:ABCDEFGH=x;", NULL },
    { BASE "dda:T=" S128 ";", BASE "dda:T=" S128 ";", NULL },
    /* ... and one past it */
    { "c=US;a=" S16 "q;o=Site;", NULL, "field a: ADMD longer than 16 characters" },
    { "c=US;a= ;p=" S16 "q;", NULL, "field p: PRMD longer than 16 characters" },
    { "c=US;a= ;o=" S64 "q;", NULL, "field o: organization longer than 64 characters" },
    { "c=US;a= ;ou1=" S32 "q;", NULL, "field ou1: organizational unit longer than 32 characters" },
    { "c=US;a= ;ou4=" S32 "q;", NULL, "field ou4: organizational unit longer than 32 characters" },
    { "c=US;a= ;s=" S40 "q;", NULL, "field s: surname longer than 40 characters" },
    { "c=US;a= ;s=Lee;g=" S16 "q;", NULL, "field g: given name longer than 16 characters" },
    { "c=US;a= ;s=Lee;i=ABCDEF;", NULL, "field i: initials longer than 5 characters" },
    { "c=US;a= ;s=Lee;q=IIII;", NULL, "field q: generation qualifier longer than 3 characters" },
    { "c=US;a= ;cn=" S64 "q;", NULL, "field cn: common name longer than 64 characters" },
    { BASE "dda:ABCDEFGHI=x;", NULL, "field dda:ABCDEFGH: domain-defined attribute type longer than 8 characters" },
    { BASE "dda:T=" S128 "q;", NULL, "field dda:T: domain-defined attribute value longer than 128 characters" },
    { "c=USAA;a= ;o=Site;", NULL, "field c: country longer than 3 characters" },
    { "c=USA;a= ;o=Site;", NULL, "field c: country must be 2 letters or 3 digits" },
    /* country form */
    { "c=U;a= ;o=Site;", NULL, "field c: country must be 2 letters or 3 digits" },
    { "c=U1;a= ;o=Site;", NULL, "field c: country must be 2 letters or 3 digits" },
    { "c=84;a= ;o=Site;", NULL, "field c: country must be 2 letters or 3 digits" },
    { "c=ABC;a= ;o=Site;", NULL, "field c: country must be 2 letters or 3 digits" },
    /* required fields */
    { "a= ;o=Site;", NULL, "field c: country is required" },
    { "c=US;o=Site;", NULL, "field a: ADMD is required (a single space means none)" },
    { "c=US;a=;o=Site;", NULL, "field a: ADMD is empty (a single space means none)" },
    { "c=US;a=  ;o=Site;", NULL, "field a: ADMD of spaces must be exactly one space (none)" },
    { "c=US;a= ;", NULL, "at least one of cn, o, ou, a personal name (s) or p is required" },
    /* personal name needs surname */
    { "c=US;a= ;o=Site;g=Bill;", NULL, "field s: surname is required when g is present" },
    { "c=US;a= ;o=Site;i=X;", NULL, "field s: surname is required when i is present" },
    { "c=US;a= ;o=Site;q=Jr;", NULL, "field s: surname is required when q is present" },
    { "c=US;a= ;g=Bill;", NULL, "field s: surname is required when g is present" },
    /* syntax */
    { "c=US;a= ;o=Site;o=Other;", NULL, "field o: organization appears more than once" },
    { "c=US;a= ;o=Site;zz=1;", NULL, "field zz: unknown field" },
    { "c=US;a= ;o=Site;;", NULL, "empty field (two ';' in a row)" },
    { "c=US;a= ;o;", NULL, "field o: field has no '='" },
    { "c=US;a= ;o=;", NULL, "field o: organization is empty" },
    { "c=US;a= ;o=   ;", NULL, "field o: organization is blank" },
    { "c=US;a= ;o=Si\tte;", NULL, "field o: organization contains a character outside printable ASCII or ';'" },
    { "c=US;a= ;o=M\xc3\xbcller;", NULL, "field o: organization contains a character outside printable ASCII or ';'" },
    { "c=US;a= ;o=Site;ou=1;ou=2;ou=3;ou=4;ou=5;", NULL, "field ou: more than 4 organizational units" },
    { BASE "dda:A=1;dda:B=2;dda:C=3;dda:D=4;dda:E=5;", NULL, "field dda:E: more than 4 domain-defined attributes" },
    { BASE "dda:A=1;dda:a=2;", NULL, "field dda:a: domain-defined attribute appears more than once" },
    { BASE "dda:=1;", NULL, "field dda: domain-defined attribute has no type" },
    { BASE "dda:A=;", NULL, "field dda:A: domain-defined attribute value is empty" },
    { "", NULL, "field c: country is required" },
};

START_TEST(test_x400_table)
{
    const struct x400_case *c = &x400_cases[_i];
    struct x400_addr a, b;
    struct x400_error err;
    char out[X400_TEXT_MAX];
    int rc = x400_parse(c->in, strlen(c->in), &a, &err);
    if (c->canon) {
        ck_assert_msg(rc == 0, "row %d: %s rejected: %s", _i, c->in, err.text);
        ck_assert_int_gt(x400_format(&a, out, sizeof out), 0);
        ck_assert_str_eq(out, c->canon);
        ck_assert_int_eq(x400_parse(out, strlen(out), &b, &err), 0);
        ck_assert_int_eq(x400_equal(&a, &b), 1);
    } else {
        ck_assert_msg(rc == -1, "row %d: %s accepted", _i, c->in);
        ck_assert_str_eq(err.text, c->error);
    }
}
END_TEST

START_TEST(test_x400_fields)
{
    struct x400_addr a;
    struct x400_error err;
    const char *in = "c=us;a= ;o=NAmericaW;s=Lee;g=Bill;";
    ck_assert_int_eq(x400_parse(in, strlen(in), &a, &err), 0);
    ck_assert_str_eq(a.c, "US");
    ck_assert_str_eq(a.a, " ");
    ck_assert_str_eq(a.p, "");
    ck_assert_str_eq(a.o, "NAmericaW");
    ck_assert_str_eq(a.s, "Lee");
    ck_assert_str_eq(a.g, "Bill");
    in = "c=US;a= ;o=Site;g=Bill;";
    ck_assert_int_eq(x400_parse(in, strlen(in), &a, &err), -1);
    ck_assert_str_eq(err.field, "s");
    ck_assert_str_eq(err.rule, "surname is required when g is present");
}
END_TEST

START_TEST(test_x400_equal_and_format)
{
    struct x400_addr a, b;
    struct x400_error err;
    char small[10];
    const char *x = "c=US;a= ;o=SITE;s=LEE;g=bill;dda:X=1;dda:Y=2;";
    const char *y = "g=Bill;s=Lee;o=site;a= ;c=us;dda:y=2;dda:x=1;";
    const char *z = "c=US;a= ;o=site;s=Lee;g=Bob;dda:y=2;dda:x=1;";
    ck_assert_int_eq(x400_parse(x, strlen(x), &a, &err), 0);
    ck_assert_int_eq(x400_parse(y, strlen(y), &b, &err), 0);
    ck_assert_int_eq(x400_equal(&a, &b), 1);
    ck_assert_int_eq(x400_parse(z, strlen(z), &b, &err), 0);
    ck_assert_int_eq(x400_equal(&a, &b), 0);
    ck_assert_int_eq(x400_format(&a, small, sizeof small), -1);
    ck_assert_str_eq(small, "");
    ck_assert_int_eq(x400_looks_like("c=US;", 5), 1);
    ck_assert_int_eq(x400_looks_like("OU=x", 4), 1);
    ck_assert_int_eq(x400_looks_like("user@example.com", 16), 0);
    ck_assert_int_eq(x400_looks_like("user=x@example.com", 18), 0);
}
END_TEST

Suite *x400_suite(void)
{
    Suite *s = suite_create("x400");
    TCase *tc = tcase_create("or-address");
    tcase_add_loop_test(tc, test_x400_table, 0, (int)(sizeof x400_cases / sizeof x400_cases[0]));
    tcase_add_test(tc, test_x400_fields);
    tcase_add_test(tc, test_x400_equal_and_format);
    suite_add_tcase(s, tc);
    return s;
}
