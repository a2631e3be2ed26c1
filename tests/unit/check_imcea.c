/* check_imcea.c - IMCEA encapsulation: round trips and refusals, one row per case. */
#include <check.h>
#include <string.h>

#include "imcea.h"

/* LocalDomains "example.com;Fab.Example", parsed once. */
static const struct domain_list *local_list(void)
{
    static struct domain_list l;
    static int parsed;
    if (!parsed) {
        ck_assert_int_eq(domains_parse(&l, "example.com;Fab.Example", NULL, 0), 0);
        parsed = 1;
    }
    return &l;
}
#define LOCAL local_list()

struct trip_case {
    const char *type;       /* as given to encode */
    const char *addr;
    const char *domain;
    const char *encoded;    /* exact expected encoding */
};

static const struct trip_case trip_cases[] = {
    { "X400", "c=US;a= ;p=Fab;o=NAmericaW;s=Lee;g=Bill;",
      "example.com", "IMCEAX400-c=US+3Ba=+20+3Bp=Fab+3Bo=NAmericaW+3Bs=Lee+3Bg=Bill+3B@example.com" },
    { "EX", "/o=Org/ou=First Administrative Group/cn=Recipients/cn=bill.lee",
      "example.com", "IMCEAEX-_o=Org_ou=First+20Administrative+20Group_cn=Recipients_cn=bill+2Elee@example.com" },
    { "FAX", "+1 (425) 555-0100", "fab.example", "IMCEAFAX-+2B1+20+28425+29+20555-0100@fab.example" },
    { "fax", "555-0100", "example.com", "IMCEAFAX-555-0100@example.com" },
    { "SMTP", "\"odd user\"@other.example", "example.com",
      "IMCEASMTP-+22odd+20user+22+40other+2Eexample@example.com" },
    { "MS", "NET/PO/USER", "example.com", "IMCEAMS-NET_PO_USER@example.com" },
    { "X", "a_b+c%d<e>f\\g", "example.com", "IMCEAX-a+5Fb+2Bc+25d+3Ce+3Ef+5Cg@example.com" },
    { "X", "\x01\x7f\xff\xc3\xa9", "example.com", "IMCEAX-+01+7F+FF+C3+A9@example.com" },
    { "CCMAIL", "Lee, Bill at Fab", "example.com", "IMCEACCMAIL-Lee+2C+20Bill+20at+20Fab@example.com" },
};

START_TEST(test_round_trip)
{
    const struct trip_case *c = &trip_cases[_i];
    char enc[1024], type[IMCEA_TYPE_MAX + 1], dec[1024];
    size_t enc_len = 0, dec_len = 0;
    ck_assert_int_eq(imcea_encode(c->type, c->addr, strlen(c->addr), c->domain, enc, sizeof enc, &enc_len), IMCEA_OK);
    ck_assert_str_eq(enc, c->encoded);
    ck_assert_uint_eq(enc_len, strlen(c->encoded));
    ck_assert_int_eq(imcea_decode(enc, enc_len, LOCAL, type, sizeof type, dec, sizeof dec, &dec_len), IMCEA_OK);
    ck_assert_uint_eq(dec_len, strlen(c->addr));
    ck_assert_str_eq(dec, c->addr);
    for (size_t k = 0; c->type[k]; k++)
        ck_assert_int_eq(type[k], (c->type[k] >= 'a' && c->type[k] <= 'z') ? c->type[k] - 32 : c->type[k]);
    ck_assert_uint_eq(strlen(type), strlen(c->type));
}
END_TEST

struct decode_case {
    const char *in;
    enum imcea_status st;
    const char *type, *addr;    /* when IMCEA_OK */
};

static const struct decode_case decode_cases[] = {
    { "IMCEAEX-_o=Org_cn=x@EXAMPLE.COM", IMCEA_OK, "EX", "/o=Org/cn=x" },
    { "IMCEAEX-_o=Org_cn=x@fab.example", IMCEA_OK, "EX", "/o=Org/cn=x" },
    { "IMCEAFAX-+2b1+20555@example.com", IMCEA_OK, "FAX", "+1 555" },
    { "IMCEAX-+41@example.com", IMCEA_OK, "X", "A" },
    /* refusals */
    { "IMCEAEX-_o=Org_cn=x@other.example", IMCEA_NOT_LOCAL, NULL, NULL },
    { "IMCEAEX-_o=Org_cn=x@example.com.evil", IMCEA_NOT_LOCAL, NULL, NULL },
    { "IMCEAEX-_o=Org_cn=x@sub.example.com", IMCEA_NOT_LOCAL, NULL, NULL },
    { "imceaEX-_o=Org_cn=x@example.com", IMCEA_NOT_IMCEA, NULL, NULL },
    { "ImceaEX-_o=Org_cn=x@example.com", IMCEA_NOT_IMCEA, NULL, NULL },
    { "IMCEAex-_o=Org_cn=x@example.com", IMCEA_NOT_IMCEA, NULL, NULL },
    { "IMCEA-_o=Org@example.com", IMCEA_NOT_IMCEA, NULL, NULL },
    { "IMCEAEX_o=Org@example.com", IMCEA_NOT_IMCEA, NULL, NULL },
    { "user@example.com", IMCEA_NOT_IMCEA, NULL, NULL },
    { "IMCEAEX-_o=Org", IMCEA_NOT_IMCEA, NULL, NULL },
    { "IMCEAEX-@example.com", IMCEA_BAD_ADDRESS, NULL, NULL },
    { "IMCEAEX-a.b@example.com", IMCEA_BAD_ENCODING, NULL, NULL },
    { "IMCEAEX-a+2@example.com", IMCEA_BAD_ENCODING, NULL, NULL },
    { "IMCEAEX-a+G0@example.com", IMCEA_BAD_ENCODING, NULL, NULL },
    { "IMCEAEX-a+00b@example.com", IMCEA_BAD_ENCODING, NULL, NULL },
    { "IMCEAEX-a b@example.com", IMCEA_BAD_ENCODING, NULL, NULL },
    { "IMCEAEX-a@b@example.com", IMCEA_BAD_ENCODING, NULL, NULL },
    { "IMCEAEX-a@-example.com", IMCEA_BAD_DOMAIN, NULL, NULL },
    { "IMCEAABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-a@example.com", IMCEA_BAD_TYPE, NULL, NULL },
};

START_TEST(test_decode_table)
{
    const struct decode_case *c = &decode_cases[_i];
    char type[IMCEA_TYPE_MAX + 1] = "junk", dec[256] = "junk";
    enum imcea_status st = imcea_decode(c->in, strlen(c->in), LOCAL, type, sizeof type, dec, sizeof dec, NULL);
    ck_assert_msg(st == c->st, "row %d: %s gave %d (%s)", _i, c->in, st, imcea_strerror(st));
    if (c->st == IMCEA_OK) {
        ck_assert_str_eq(type, c->type);
        ck_assert_str_eq(dec, c->addr);
    } else {
        ck_assert_str_eq(dec, "");
        ck_assert_str_eq(type, "");
        ck_assert(strlen(imcea_strerror(st)) > 5);
    }
}
END_TEST

struct encode_fail {
    const char *type, *addr, *domain;
    size_t out_size;
    enum imcea_status st;
};

static const struct encode_fail encode_fails[] = {
    { "", "x", "example.com", 64, IMCEA_BAD_TYPE },
    { "X-400", "x", "example.com", 64, IMCEA_BAD_TYPE },
    { "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456", "x", "example.com", 128, IMCEA_BAD_TYPE },
    { "EX", "x", "[127.0.0.1]", 64, IMCEA_BAD_DOMAIN },
    { "EX", "x", "", 64, IMCEA_BAD_DOMAIN },
    { "EX", "", "example.com", 64, IMCEA_BAD_ADDRESS },
    { "EX", "/o=Org/cn=x", "example.com", 20, IMCEA_TOO_LONG },
    { "EX", "/o=Org/cn=x", "example.com", 31, IMCEA_TOO_LONG },
};

START_TEST(test_encode_fail)
{
    const struct encode_fail *c = &encode_fails[_i];
    char out[256];
    ck_assert_int_eq(imcea_encode(c->type, c->addr, strlen(c->addr), c->domain, out, c->out_size, NULL), c->st);
    ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(test_exact_fit_and_nul)
{
    char out[32], type[8], dec[4];
    /* "IMCEAEX-_o=Org_cn=x@example.com" is 31 octets: fits in 32 exactly. */
    ck_assert_int_eq(imcea_encode("EX", "/o=Org/cn=x", 11, "example.com", out, 32, NULL), IMCEA_OK);
    ck_assert_str_eq(out, "IMCEAEX-_o=Org_cn=x@example.com");
    ck_assert_int_eq(imcea_encode("EX", "a\0b", 3, "example.com", out, sizeof out, NULL), IMCEA_BAD_ADDRESS);
    ck_assert_int_eq(imcea_decode("IMCEAEX-abcd@example.com", 24, LOCAL, type, sizeof type, dec, sizeof dec, NULL),
                     IMCEA_TOO_LONG);
    ck_assert_int_eq(imcea_decode("IMCEAEX-abc@example.com", 23, LOCAL, type, sizeof type, dec, sizeof dec, NULL),
                     IMCEA_OK);
    ck_assert_str_eq(dec, "abc");
    ck_assert_int_eq(imcea_decode("IMCEAEX-abc@example.com", 23, NULL, type, sizeof type, dec, sizeof dec, NULL),
                     IMCEA_NOT_LOCAL);
    ck_assert_int_eq(imcea_looks_like("imceaEX-x@y", 11), 1);
    ck_assert_int_eq(imcea_looks_like("IMCEA-x@y", 9), 0);
    ck_assert_int_eq(imcea_looks_like("bill@y", 6), 0);
}
END_TEST

Suite *imcea_suite(void)
{
    Suite *s = suite_create("imcea");
    TCase *tc = tcase_create("encapsulation");
    tcase_add_loop_test(tc, test_round_trip, 0, (int)(sizeof trip_cases / sizeof trip_cases[0]));
    tcase_add_loop_test(tc, test_decode_table, 0, (int)(sizeof decode_cases / sizeof decode_cases[0]));
    tcase_add_loop_test(tc, test_encode_fail, 0, (int)(sizeof encode_fails / sizeof encode_fails[0]));
    tcase_add_test(tc, test_exact_fit_and_nul);
    suite_add_tcase(s, tc);
    return s;
}
