/* check_address.c - RFC 5321 paths and MAIL/RCPT parameters, one row per case. */
#include <check.h>
#include <string.h>

#include "address.h"

#define L64 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define L63 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define D50 "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb."
/* 5 x 50 + "example" = 257 octets: one past the domain limit. */
#define DOM257 D50 D50 D50 D50 D50 "example"
/* 4 x 50 + 55 = 255 octets: exactly the limit. */
#define DOM255 D50 D50 D50 D50 "ccccccccccccccccccccccccccccccccccccccccccccccccccccccc"

struct path_case {
    enum addr_verb verb;
    const char *in;
    const char *canon;      /* NULL: must fail */
    int reply;              /* on failure */
    const char *status;     /* on failure */
};

static const struct path_case path_cases[] = {
    /* valid */
    { ADDR_RCPT, "<user@example.com>", "<user@example.com>", 0, NULL },
    { ADDR_RCPT, "<User.Name@Example.COM>", "<User.Name@example.com>", 0, NULL },
    { ADDR_MAIL, "<>", "<>", 0, NULL },
    { ADDR_RCPT, "<Postmaster>", "<Postmaster>", 0, NULL },
    { ADDR_RCPT, "<postmaster>", "<Postmaster>", 0, NULL },
    { ADDR_RCPT, "<\"john smith\"@example.com>", "<\"john smith\"@example.com>", 0, NULL },
    { ADDR_RCPT, "<\"john\"@example.com>", "<john@example.com>", 0, NULL },
    { ADDR_RCPT, "<\"a\\\"b\"@example.com>", "<\"a\\\"b\"@example.com>", 0, NULL },
    { ADDR_RCPT, "<\"\"@example.com>", "<\"\"@example.com>", 0, NULL },
    { ADDR_RCPT, "<!#$%&'*+-/=?^_`{|}~@example.com>", "<!#$%&'*+-/=?^_`{|}~@example.com>", 0, NULL },
    { ADDR_RCPT, "<a@[127.0.0.1]>", "<a@[127.0.0.1]>", 0, NULL },
    { ADDR_RCPT, "<a@[010.000.0.1]>", "<a@[10.0.0.1]>", 0, NULL },
    { ADDR_RCPT, "<a@[IPv6:2001:DB8::1]>", "<a@[IPv6:2001:db8::1]>", 0, NULL },
    { ADDR_RCPT, "<a@[ipv6:2001:db8:0:0:1:0:0:1]>", "<a@[IPv6:2001:db8::1:0:0:1]>", 0, NULL },
    { ADDR_RCPT, "<a@[IPv6:::1]>", "<a@[IPv6:::1]>", 0, NULL },
    { ADDR_RCPT, "<a@[IPv6:::]>", "<a@[IPv6:::]>", 0, NULL },
    { ADDR_RCPT, "<a@[IPv6:::ffff:192.0.2.1]>", "<a@[IPv6:::ffff:c000:201]>", 0, NULL },
    { ADDR_RCPT, "<a@[IPv6:1:2:3:4:5:6:192.0.2.1]>", "<a@[IPv6:1:2:3:4:5:6:c000:201]>", 0, NULL },
    { ADDR_RCPT, "<@relay.example:user@example.com>", "<user@example.com>", 0, NULL },
    { ADDR_RCPT, "<@a.example,@b.example:user@example.com>", "<user@example.com>", 0, NULL },
    { ADDR_RCPT, "<" L64 "@example.com>", "<" L64 "@example.com>", 0, NULL },
    { ADDR_RCPT, "<a@" DOM255 ">", NULL, 501, "5.1.3" },   /* 255-octet domain: path 259 > 256 */
    { ADDR_RCPT, "<a@x-y.example>", "<a@x-y.example>", 0, NULL },
    { ADDR_RCPT, "<a@1.2.3.4>", "<a@1.2.3.4>", 0, NULL },
    { ADDR_RCPT, "<IMCEAEX-_o=Org_ou=First+20Administrative+20Group_cn=Recipients_cn=someone+2Ewith+2Ea+2Elong+2Ename@example.com>",
      "<IMCEAEX-_o=Org_ou=First+20Administrative+20Group_cn=Recipients_cn=someone+2Ewith+2Ea+2Elong+2Ename@example.com>", 0, NULL },
    { ADDR_MAIL, "<user@example.com> SIZE=1000", "<user@example.com> SIZE=1000", 0, NULL },
    { ADDR_MAIL, "<user@example.com> body=8bitmime", "<user@example.com> BODY=8BITMIME", 0, NULL },
    { ADDR_MAIL, "<user@example.com> BODY=BINARYMIME SIZE=5", "<user@example.com> SIZE=5 BODY=BINARYMIME", 0, NULL },
    { ADDR_MAIL, "<user@example.com> BODY=7BIT", "<user@example.com> BODY=7BIT", 0, NULL },
    { ADDR_MAIL, "<> AUTH=<>", "<> AUTH=<>", 0, NULL },
    { ADDR_MAIL, "<a@b.example> AUTH=e+2Bx@b.example", "<a@b.example> AUTH=e+2Bx@b.example", 0, NULL },
    { ADDR_MAIL, "<a@b.example> RET=hdrs ENVID=QQ314159", "<a@b.example> RET=HDRS ENVID=QQ314159", 0, NULL },
    { ADDR_MAIL, "<a@b.example> RET=FULL", "<a@b.example> RET=FULL", 0, NULL },
    { ADDR_MAIL, "<a@b.example> SIZE=18446744073709551615", "<a@b.example> SIZE=18446744073709551615", 0, NULL },
    { ADDR_RCPT, "<a@b.example> NOTIFY=NEVER", "<a@b.example> NOTIFY=NEVER", 0, NULL },
    { ADDR_RCPT, "<a@b.example> NOTIFY=delay,success", "<a@b.example> NOTIFY=SUCCESS,DELAY", 0, NULL },
    { ADDR_RCPT, "<a@b.example> ORCPT=rfc822;a+2Bb@c.example NOTIFY=FAILURE",
      "<a@b.example> NOTIFY=FAILURE ORCPT=rfc822;a+2Bb@c.example", 0, NULL },
    { ADDR_RCPT, "<a@b.example>  NOTIFY=FAILURE ", "<a@b.example> NOTIFY=FAILURE", 0, NULL },

    /* invalid paths: 5.1.3 for RCPT, 5.1.7 for MAIL */
    { ADDR_RCPT, "<>", NULL, 501, "5.1.3" },
    { ADDR_RCPT, "user@example.com", NULL, 501, "5.1.3" },
    { ADDR_MAIL, "user@example.com", NULL, 501, "5.1.7" },
    { ADDR_RCPT, "<user@example.com", NULL, 501, "5.1.3" },
    { ADDR_RCPT, "<user>", NULL, 501, "5.1.3" },
    { ADDR_MAIL, "<Postmaster>", NULL, 501, "5.1.7" },
    { ADDR_RCPT, "<@example.com>", NULL, 501, "5.1.3" },
    { ADDR_RCPT, "<.user@example.com>", NULL, 501, "5.1.3" },
    { ADDR_RCPT, "<user.@example.com>", NULL, 501, "5.1.3" },
    { ADDR_RCPT, "<us..er@example.com>", NULL, 501, "5.1.3" },
    { ADDR_MAIL, "<us er@example.com>", NULL, 501, "5.1.7" },
    { ADDR_RCPT, "<us(er@example.com>", NULL, 501, "5.1.3" },
    { ADDR_RCPT, "<\"unterminated@example.com>", NULL, 501, "5.1.3" },
    { ADDR_RCPT, "<\"tab\there\"@example.com>", NULL, 501, "5.1.3" },
    { ADDR_RCPT, "<a" L64 "@example.com>", NULL, 501, "5.1.3" },  /* 65 octets */
    { ADDR_RCPT, "<\"" L63 "\"@example.com>", NULL, 501, "5.1.3" }, /* 65 with quotes */
    { ADDR_MAIL, "<a@" DOM257 ">", NULL, 501, "5.1.7" },
    { ADDR_RCPT, "<a@-example.com>", NULL, 501, "5.1.3" },
    { ADDR_RCPT, "<a@example-.com>", NULL, 501, "5.1.3" },
    { ADDR_RCPT, "<a@example..com>", NULL, 501, "5.1.3" },
    { ADDR_RCPT, "<a@example.com.>", NULL, 501, "5.1.3" },
    { ADDR_RCPT, "<a@ex_ample.com>", NULL, 501, "5.1.3" },
    { ADDR_RCPT, "<a@" L64 ".example>", NULL, 501, "5.1.3" },     /* label of 64 */
    { ADDR_RCPT, "<a@[256.0.0.1]>", NULL, 501, "5.1.3" },
    { ADDR_RCPT, "<a@[1.2.3]>", NULL, 501, "5.1.3" },
    { ADDR_RCPT, "<a@[1.2.3.4.5]>", NULL, 501, "5.1.3" },
    { ADDR_RCPT, "<a@[0001.2.3.4]>", NULL, 501, "5.1.3" },
    { ADDR_RCPT, "<a@[IPv6:1:2:3:4:5:6:7]>", NULL, 501, "5.1.3" },
    { ADDR_RCPT, "<a@[IPv6:1:2:3:4:5:6:7:8:9]>", NULL, 501, "5.1.3" },
    { ADDR_RCPT, "<a@[IPv6:1::2::3]>", NULL, 501, "5.1.3" },
    { ADDR_RCPT, "<a@[IPv6:1:2:3:4::5:6:7]>", NULL, 501, "5.1.3" },  /* 7 groups and :: */
    { ADDR_RCPT, "<a@[IPv6:12345::1]>", NULL, 501, "5.1.3" },
    { ADDR_RCPT, "<a@[IPv6:1:]>", NULL, 501, "5.1.3" },
    { ADDR_RCPT, "<a@[IPv6:::1.2.3.256]>", NULL, 501, "5.1.3" },
    { ADDR_RCPT, "<a@[x400:c=us]>", NULL, 501, "5.1.3" },
    { ADDR_RCPT, "<a@[127.0.0.1>", NULL, 501, "5.1.3" },
    { ADDR_RCPT, "<@relay.example,user@example.com>", NULL, 501, "5.1.3" },
    { ADDR_RCPT, "<@relay.example user@example.com>", NULL, 501, "5.1.3" },
    { ADDR_RCPT, "<user@example.com>x", NULL, 501, "5.1.3" },
    { ADDR_RCPT, "<us\xc3\xa9r@example.com>", NULL, 501, "5.1.3" },

    /* invalid parameters: 555 unknown/misplaced, 501 bad value, all 5.5.4 */
    { ADDR_MAIL, "<a@b.example> FOO=bar", NULL, 555, "5.5.4" },
    { ADDR_MAIL, "<a@b.example> SMTPUTF8", NULL, 555, "5.5.4" },
    { ADDR_MAIL, "<a@b.example> NOTIFY=NEVER", NULL, 555, "5.5.4" },
    { ADDR_RCPT, "<a@b.example> SIZE=10", NULL, 555, "5.5.4" },
    { ADDR_RCPT, "<a@b.example> BODY=8BITMIME", NULL, 555, "5.5.4" },
    { ADDR_MAIL, "<a@b.example> SIZE", NULL, 501, "5.5.4" },
    { ADDR_MAIL, "<a@b.example> SIZE=", NULL, 501, "5.5.4" },
    { ADDR_MAIL, "<a@b.example> SIZE=12a", NULL, 501, "5.5.4" },
    { ADDR_MAIL, "<a@b.example> SIZE=18446744073709551616", NULL, 501, "5.5.4" },
    { ADDR_MAIL, "<a@b.example> SIZE=123456789012345678901", NULL, 501, "5.5.4" },
    { ADDR_MAIL, "<a@b.example> SIZE=1 SIZE=2", NULL, 501, "5.5.4" },
    { ADDR_MAIL, "<a@b.example> BODY=8BIT", NULL, 501, "5.5.4" },
    { ADDR_MAIL, "<a@b.example> AUTH=a+2b", NULL, 501, "5.5.4" },
    { ADDR_MAIL, "<a@b.example> AUTH=a+", NULL, 501, "5.5.4" },
    { ADDR_MAIL, "<a@b.example> RET=ALL", NULL, 501, "5.5.4" },
    { ADDR_MAIL, "<a@b.example> ENVID=" "0123456789012345678901234567890123456789"
                 "0123456789012345678901234567890123456789" "012345678901234567890", NULL, 501, "5.5.4" },
    { ADDR_RCPT, "<a@b.example> NOTIFY=NEVER,SUCCESS", NULL, 501, "5.5.4" },
    { ADDR_RCPT, "<a@b.example> NOTIFY=SOMETIMES", NULL, 501, "5.5.4" },
    { ADDR_RCPT, "<a@b.example> NOTIFY=", NULL, 501, "5.5.4" },
    { ADDR_RCPT, "<a@b.example> NOTIFY=SUCCESS,", NULL, 501, "5.5.4" },
    { ADDR_RCPT, "<a@b.example> ORCPT=a@b.example", NULL, 501, "5.5.4" },
    { ADDR_RCPT, "<a@b.example> ORCPT=;a@b.example", NULL, 501, "5.5.4" },
    { ADDR_RCPT, "<a@b.example> ORCPT=rfc822;", NULL, 501, "5.5.4" },
    { ADDR_RCPT, "<a@b.example> -X=1", NULL, 501, "5.5.4" },
    { ADDR_RCPT, "<a@b.example> NOTIFY=SUCCESS=1", NULL, 501, "5.5.4" },
    { ADDR_RCPT, "<a@b.example>\tNOTIFY=SUCCESS", NULL, 501, "5.1.3" },
};

START_TEST(test_path_table)
{
    const struct path_case *c = &path_cases[_i];
    struct addr_path path;
    struct addr_params params;
    struct addr_error err = { 0, NULL, NULL, 0 };
    char out[1024], prm[1024];
    int rc = addr_parse_command(c->in, strlen(c->in), c->verb, &path, &params, &err);
    if (c->canon) {
        ck_assert_msg(rc == 0, "row %d: %s rejected: %s", _i, c->in, err.rule ? err.rule : "?");
        ck_assert_int_ge(addr_format_path(&path, out, sizeof out), 2);
        ck_assert_int_ge(addr_format_params(&params, prm, sizeof prm), 0);
        if (prm[0]) {
            strcat(out, " ");
            strcat(out, prm);
        }
        ck_assert_str_eq(out, c->canon);
        /* The canonical form parses to itself. */
        ck_assert_int_eq(addr_parse_command(out, strlen(out), c->verb, &path, &params, &err), 0);
        ck_assert_int_ge(addr_format_path(&path, prm, sizeof prm), 2);
        ck_assert(strncmp(out, prm, strlen(prm)) == 0);
    } else {
        ck_assert_msg(rc == -1, "row %d: %s accepted", _i, c->in);
        ck_assert_int_eq(err.reply, c->reply);
        ck_assert_str_eq(err.status, c->status);
        ck_assert(err.rule != NULL && err.rule[0] != 0);
    }
}
END_TEST

/* The rule text for a few failures, so messages stay meaningful. */
struct rule_case {
    enum addr_verb verb;
    const char *in;
    const char *rule;
};

static const struct rule_case rule_cases[] = {
    { ADDR_RCPT, "<a" L64 "@example.com>", "local part longer than 64 octets" },
    { ADDR_RCPT, "<>", "the null path <> is only valid for MAIL FROM" },
    { ADDR_RCPT, "<a@b.example> SIZE=10", "parameter not valid for RCPT TO" },
    { ADDR_MAIL, "<a@b.example> XYZ", "unknown parameter" },
    { ADDR_RCPT, "<a@[IPv6:1::2::3]>", "invalid IPv6 address literal" },
    { ADDR_MAIL, "<a@" DOM257 ">", "domain longer than 255 octets" },
    { ADDR_RCPT, "<a@" DOM255 ">", "path longer than 256 octets" },
};

START_TEST(test_rule_table)
{
    const struct rule_case *c = &rule_cases[_i];
    struct addr_path path;
    struct addr_params params;
    struct addr_error err = { 0, NULL, NULL, 0 };
    ck_assert_int_eq(addr_parse_command(c->in, strlen(c->in), c->verb, &path, &params, &err), -1);
    ck_assert_str_eq(err.rule, c->rule);
}
END_TEST

START_TEST(test_fields_kept)
{
    const char *in = "<@r.example:\"x y\"@[IPv6:::1]> NOTIFY=SUCCESS ORCPT=rfc822;x+20y@q.example";
    struct addr_path p;
    struct addr_params m;
    struct addr_error err;
    ck_assert_int_eq(addr_parse_command(in, strlen(in), ADDR_RCPT, &p, &m, &err), 0);
    ck_assert_str_eq(p.local, "x y");
    ck_assert_int_eq(p.quoted, 1);
    ck_assert_int_eq(p.had_route, 1);
    ck_assert_int_eq(p.kind, ADDR_DOMAIN_IPV6);
    ck_assert_uint_eq(m.notify, ADDR_NOTIFY_SUCCESS);
    ck_assert_str_eq(m.orcpt_type, "rfc822");
    ck_assert_str_eq(m.orcpt, "x+20y@q.example");
    in = "<a@b.example> SIZE=42 BODY=8BITMIME AUTH=<> RET=FULL ENVID=x";
    ck_assert_int_eq(addr_parse_command(in, strlen(in), ADDR_MAIL, &p, &m, &err), 0);
    ck_assert_int_eq(m.has_size, 1);
    ck_assert_uint_eq(m.size, 42);
    ck_assert_int_eq(m.body, ADDR_BODY_8BITMIME);
    ck_assert_str_eq(m.auth, "<>");
    ck_assert_int_eq(m.ret, ADDR_RET_FULL);
    ck_assert_str_eq(m.envid, "x");
}
END_TEST

START_TEST(test_mailbox_and_format_bounds)
{
    struct addr_path p, q;
    struct addr_error err;
    char small[8];
    ck_assert_int_eq(addr_parse_mailbox("Bill.Lee@Fab.Example", 20, ADDR_RCPT, &p, &err), 0);
    ck_assert_int_eq(addr_parse_mailbox("bill.lee@fab.example", 20, ADDR_RCPT, &q, &err), 0);
    ck_assert_int_eq(addr_mailbox_equal(&p, &q), 1);
    ck_assert_int_eq(addr_parse_mailbox("bill.lee2@fab.example", 21, ADDR_RCPT, &q, &err), 0);
    ck_assert_int_eq(addr_mailbox_equal(&p, &q), 0);
    ck_assert_int_eq(addr_format_mailbox(&p, small, sizeof small), -1);
    ck_assert_str_eq(small, "");
    ck_assert_int_eq(addr_parse_mailbox("<a@b>", 5, ADDR_MAIL, &p, &err), -1);
    ck_assert_str_eq(err.status, "5.1.7");
    ck_assert_int_eq(addr_domain_valid("example.com", 11), 1);
    ck_assert_int_eq(addr_domain_valid("[1.2.3.4]", 9), 0);
    ck_assert_int_eq(addr_domain_valid("", 0), 0);
}
END_TEST

Suite *address_suite(void)
{
    Suite *s = suite_create("address");
    TCase *tc = tcase_create("rfc5321");
    tcase_add_loop_test(tc, test_path_table, 0, (int)(sizeof path_cases / sizeof path_cases[0]));
    tcase_add_loop_test(tc, test_rule_table, 0, (int)(sizeof rule_cases / sizeof rule_cases[0]));
    tcase_add_test(tc, test_fields_kept);
    tcase_add_test(tc, test_mailbox_and_format_bounds);
    suite_add_tcase(s, tc);
    return s;
}
