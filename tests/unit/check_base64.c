/* check_base64.c - the strict base64 both SMTP engines share. */
#include <check.h>
#include <string.h>

#include "base64.h"

/* RFC 4648 section 10 test vectors, both ways. */
static const struct { const char *plain, *coded; } vectors[] = {
    { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
    { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
};

START_TEST(rfc4648_vectors)
{
    const char *p = vectors[_i].plain, *c = vectors[_i].coded;
    char out[16];
    ck_assert_int_eq(base64_encode((const unsigned char *)p, strlen(p), out, sizeof out),
                     (long)strlen(c));
    ck_assert_str_eq(out, c);
    unsigned char back[16];
    long n = base64_decode(c, strlen(c), back, sizeof back);
    ck_assert_int_eq(n, (long)strlen(p));
    ck_assert_mem_eq(back, p, (size_t)n);
}
END_TEST

/* Each of these is refused: not a multiple of four, a character outside the
 * alphabet, whitespace, '=' not at the end, data after '='. */
static const char *const bad[] = {
    "Zm9", "Zm9v!", "Zm 9v", "Zm9v\r\n", "Z===", "=Zm9", "Zg=a", "Zm=v", "Zg==Zg==",
};

START_TEST(refuses_non_strict)
{
    unsigned char out[16];
    ck_assert_int_eq(base64_decode(bad[_i], strlen(bad[_i]), out, sizeof out), -1);
}
END_TEST

START_TEST(respects_capacity)
{
    char small[8];
    ck_assert_int_eq(base64_encode((const unsigned char *)"foobar", 6, small, sizeof small), -1);
    char exact[BASE64_ENCODED_SIZE(6)];
    ck_assert_int_eq(base64_encode((const unsigned char *)"foobar", 6, exact, sizeof exact), 8);
    unsigned char two[2];
    ck_assert_int_eq(base64_decode("Zm9v", 4, two, sizeof two), -1);
}
END_TEST

START_TEST(every_octet_round_trips)
{
    unsigned char all[256], back[256];
    char coded[BASE64_ENCODED_SIZE(256)];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    for (size_t len = 0; len <= 256; len++) {
        long n = base64_encode(all + (256 - len), len, coded, sizeof coded);
        ck_assert_int_ge(n, 0);
        ck_assert_int_eq(base64_decode(coded, (size_t)n, back, sizeof back), (long)len);
        ck_assert_mem_eq(back, all + (256 - len), len);
    }
}
END_TEST

Suite *base64_suite(void)
{
    Suite *s = suite_create("base64");
    TCase *tc = tcase_create("base64");
    tcase_add_loop_test(tc, rfc4648_vectors, 0, sizeof vectors / sizeof vectors[0]);
    tcase_add_loop_test(tc, refuses_non_strict, 0, sizeof bad / sizeof bad[0]);
    tcase_add_test(tc, respects_capacity);
    tcase_add_test(tc, every_octet_round_trips);
    suite_add_tcase(s, tc);
    return s;
}
