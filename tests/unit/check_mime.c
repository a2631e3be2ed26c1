/* check_mime.c - MIME structure scanner: signed, encrypted, envelope and
 * 8-bit findings on real-world-shaped messages, and the queue's verdict.
 *
 * The signed and encrypted samples in tests/data/mime were made with
 * `openssl smime -sign` (detached and -nodetach) and `openssl smime -encrypt`
 * using a throw-away key; only the messages are kept.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "mime.h"

#define DATA_DIR "tests/data/mime/"

struct leaf_want {
    const char *type;
    enum mime_cte cte;
    int eightbit, in_signed;
    const char *body;   /* what the leaf's content starts with */
};

struct sample {
    const char *file;
    unsigned flags;
    enum mime_verdict verdict;  /* next hop without 8BITMIME */
    size_t nleaves;
    struct leaf_want leaf[3];
};

static const struct sample samples[] = {
    { "plain_7bit.eml", 0, MIME_VERDICT_OK, 1,
      { { "text/plain", MIME_CTE_7BIT, 0, 0, "Hello Bob," } } },
    { "plain_8bit.eml", MIME_8BIT, MIME_VERDICT_CONVERT, 1,
      { { "text/plain", MIME_CTE_8BIT, 1, 0, "Hallo Bob," } } },
    { "signed_clear.eml", MIME_SIGNED_CLEAR, MIME_VERDICT_OK, 2,
      { { "text/plain", MIME_CTE_7BIT, 0, 1, "Quarterly figures" },
        { "application/x-pkcs7-signature", MIME_CTE_BASE64, 0, 1, "MII" } } },
    { "signed_opaque.eml", MIME_SIGNED_OPAQUE, MIME_VERDICT_OK, 1,
      { { "application/x-pkcs7-mime", MIME_CTE_BASE64, 0, 1, "MII" } } },
    { "encrypted.eml", MIME_ENCRYPTED, MIME_VERDICT_OK, 1,
      { { "application/x-pkcs7-mime", MIME_CTE_BASE64, 0, 0, "MII" } } },
    { "signed_in_rfc822.eml", MIME_SIGNED_CLEAR | MIME_ENVELOPE, MIME_VERDICT_OK, 3,
      { { "text/plain", MIME_CTE_7BIT, 0, 0, "Forwarding" },
        { "text/plain", MIME_CTE_7BIT, 0, 1, "Quarterly figures" },
        { "application/x-pkcs7-signature", MIME_CTE_BASE64, 0, 1, "MII" } } },
    { "signed_only_content.eml", MIME_SIGNED_CLEAR | MIME_ENVELOPE, MIME_VERDICT_OK, 2,
      { { "text/plain", MIME_CTE_7BIT, 0, 1, "Quarterly figures" },
        { "application/x-pkcs7-signature", MIME_CTE_BASE64, 0, 1, "MII" } } },
    { "signed_8bit_inside.eml", MIME_SIGNED_CLEAR | MIME_8BIT | MIME_8BIT_SIGNED,
      MIME_VERDICT_REFUSE_SIGNED_8BIT, 2,
      { { "text/plain", MIME_CTE_8BIT, 1, 1, "Gr\xc3\xbc\xc3\x9f" "e aus" },
        { "application/x-pkcs7-signature", MIME_CTE_BASE64, 0, 1, "MII" } } },
    { "mixed_8bit_outside.eml", MIME_SIGNED_CLEAR | MIME_8BIT, MIME_VERDICT_CONVERT, 3,
      { { "text/plain", MIME_CTE_8BIT, 1, 0, "Anbei" },
        { "text/plain", MIME_CTE_7BIT, 0, 1, "Quarterly figures" },
        { "application/x-pkcs7-signature", MIME_CTE_BASE64, 0, 1, "MII" } } },
    { "nested.eml", 0, MIME_VERDICT_OK, 3,
      { { "text/plain", MIME_CTE_7BIT, 0, 0, "See the attachment." },
        { "text/html", MIME_CTE_QP, 0, 0, "<p>" },
        { "application/pdf", MIME_CTE_BASE64, 0, 0, "JVBERi0xLjQK" } } },
    { "unclosed.eml", MIME_UNCLOSED, MIME_VERDICT_OK, 2,
      { { "text/plain", MIME_CTE_7BIT, 0, 0, "First part." },
        { "text/plain", MIME_CTE_7BIT, 0, 0, "The sender stopped here." } } },
    { "boundary_in_base64.eml", 0, MIME_VERDICT_OK, 2,
      { { "text/plain", MIME_CTE_7BIT, 0, 0, "This line is not a delimiter:\r\n--QUJDREVG-not" },
        { "application/octet-stream", MIME_CTE_BASE64, 0, 0, "QUJDREVGQUJDREVG" } } },
};

static unsigned char *slurp(const char *name, size_t *len)
{
    char path[256];
    ck_assert_int_lt(snprintf(path, sizeof path, "%s%s", DATA_DIR, name), (int)sizeof path);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    /* Static, not malloc'd: a failed assertion must not also report a leak. */
    static unsigned char buf[65536];
    *len = fread(buf, 1, sizeof buf, f);
    ck_assert(feof(f));
    fclose(f);
    return buf;
}

/* Leaves lie inside the input, in order, without overlap; a content never
 * swallows the line break of the delimiter after it. */
static void assert_leaves_sane(const struct mime_scan *s, const unsigned char *m, size_t len)
{
    size_t prev = 0;
    for (size_t i = 0; i < s->nleaves; i++) {
        const struct mime_leaf *l = &s->leaves[i];
        ck_assert(prev <= l->start && l->start <= l->body && l->body <= l->end && l->end <= len);
        if (l->end + 4 <= len && m[l->end] == '\r')
            ck_assert(memcmp(m + l->end, "\r\n--", 4) == 0);
        prev = l->end;
    }
}

static struct mime_scan scan;

START_TEST(corpus)
{
    const struct sample *t = &samples[_i];
    size_t len;
    unsigned char *m = slurp(t->file, &len);
    mime_scan(m, len, &scan);
    ck_assert_msg(scan.flags == t->flags, "%s: flags %#x, want %#x", t->file, scan.flags, t->flags);
    ck_assert_uint_eq(scan.nleaves, t->nleaves);
    assert_leaves_sane(&scan, m, len);
    for (size_t i = 0; i < t->nleaves; i++) {
        const struct mime_leaf *l = &scan.leaves[i];
        const struct leaf_want *w = &t->leaf[i];
        ck_assert_str_eq(l->type, w->type);
        ck_assert_int_eq(l->cte, w->cte);
        ck_assert_int_eq(l->eightbit, w->eightbit);
        ck_assert_int_eq(l->in_signed, w->in_signed);
        size_t n = strlen(w->body);
        ck_assert_uint_ge(l->end - l->body, n);
        ck_assert_msg(memcmp(m + l->body, w->body, n) == 0, "%s leaf %zu content", t->file, i);
    }
    const char *why = NULL;
    ck_assert_int_eq(mime_conversion_verdict(&scan, 0, &why), t->verdict);
    ck_assert(why && *why);
    ck_assert_int_eq(mime_conversion_verdict(&scan, 1, NULL), MIME_VERDICT_OK);
}
END_TEST

static void scan_str(const char *s)
{
    mime_scan((const unsigned char *)s, strlen(s), &scan);
    assert_leaves_sane(&scan, (const unsigned char *)s, strlen(s));
}

/* Names in any case, folded values, comments, parameters in any order. */
START_TEST(header_syntax)
{
    scan_str("content-TYPE: Multipart/Signed (clear);\r\n\tmicalg=sha-256;\r\n"
             " boundary=\"a b\"; protocol=\"application/pkcs7-signature\"\r\n"
             "\r\n--a b\r\nCONTENT-TRANSFER-ENCODING:  Base64 (why not)\r\n\r\nQUJD\r\n"
             "--a b\t \r\nContent-Type: application/pkcs7-signature\r\n\r\nMII=\r\n--a b--  \r\n");
    ck_assert_uint_eq(scan.flags, MIME_SIGNED_CLEAR);
    ck_assert_uint_eq(scan.nleaves, 2);
    ck_assert_int_eq(scan.leaves[0].cte, MIME_CTE_BASE64);
    ck_assert_str_eq(scan.leaves[1].type, "application/pkcs7-signature");
}
END_TEST

/* smime-type decides between signed and encrypted; absent means signed. */
START_TEST(pkcs7_kinds)
{
    scan_str("Content-Type: application/pkcs7-mime; smime-type=\"Enveloped-Data\"\r\n\r\nMII=\r\n");
    ck_assert_uint_eq(scan.flags, MIME_ENCRYPTED);
    ck_assert_int_eq(scan.leaves[0].in_signed, 0);
    scan_str("Content-Type: application/x-pkcs7-mime; name=smime.p7m; smime-type=signed-data\r\n\r\nMII=\r\n");
    ck_assert_uint_eq(scan.flags, MIME_SIGNED_OPAQUE);
    scan_str("Content-Type: application/pkcs7-mime\r\n\r\nMII=\r\n");
    ck_assert_uint_eq(scan.flags, MIME_SIGNED_OPAQUE);
    scan_str("Content-Type: application/pkcs7-mime; smime-type=signed-data\r\n"
             "Content-Transfer-Encoding: binary\r\n\r\n0\x82\x01\r\n");
    ck_assert_uint_eq(scan.flags, MIME_SIGNED_OPAQUE | MIME_8BIT | MIME_8BIT_SIGNED);
    ck_assert_int_eq(mime_conversion_verdict(&scan, 0, NULL), MIME_VERDICT_REFUSE_SIGNED_8BIT);
}
END_TEST

/* An opaque-signed part forwarded inside message/rfc822 is an envelope. */
START_TEST(opaque_in_rfc822)
{
    scan_str("Content-Type: message/rfc822\r\n\r\nSubject: x\r\n"
             "Content-Type: application/pkcs7-mime; smime-type=signed-data\r\n\r\nMII=\r\n");
    ck_assert_uint_eq(scan.flags, MIME_SIGNED_OPAQUE | MIME_ENVELOPE);
    ck_assert_uint_eq(scan.nleaves, 1);
    ck_assert_uint_eq(scan.leaves[0].start, 32);
}
END_TEST

/* 8-bit in the preamble of a signed multipart is still inside the signed entity. */
START_TEST(eightbit_in_signed_preamble)
{
    scan_str("Content-Type: multipart/signed; boundary=s\r\n\r\npr\xe9" "ambule\r\n--s\r\n\r\nx\r\n--s--\r\n");
    ck_assert_uint_eq(scan.flags, MIME_SIGNED_CLEAR | MIME_8BIT | MIME_8BIT_SIGNED);
}
END_TEST

/* Bare LF line ends are tolerated; a multipart without a boundary parameter,
 * or without any delimiter, is one leaf. */
START_TEST(degenerate_structure)
{
    scan_str("Content-Type: multipart/mixed; boundary=z\n\n--z\nContent-Type: text/html\n\nhi\n--z--\n");
    ck_assert_uint_eq(scan.flags, 0);
    ck_assert_uint_eq(scan.nleaves, 1);
    ck_assert_str_eq(scan.leaves[0].type, "text/html");
    scan_str("Content-Type: multipart/mixed\r\n\r\n--z\r\n\r\nx\r\n");
    ck_assert_uint_eq(scan.nleaves, 1);
    ck_assert_str_eq(scan.leaves[0].type, "multipart/mixed");
    scan_str("Content-Type: multipart/mixed; boundary=z\r\n\r\nno delimiter here\r\n");
    ck_assert_uint_eq(scan.flags, MIME_UNCLOSED);
    ck_assert_uint_eq(scan.nleaves, 1);
    scan_str("");
    ck_assert_uint_eq(scan.nleaves, 1);
    ck_assert_uint_eq(scan.leaves[0].end, 0);
}
END_TEST

/* Nesting deeper than MIME_MAX_DEPTH stops the descent and says so. */
START_TEST(depth_limit)
{
    static char msg[8192];
    size_t n = 0;
    for (int i = 0; i < MIME_MAX_DEPTH + 4; i++)
        n += (size_t)snprintf(msg + n, sizeof msg - n,
                              "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i);
    n += (size_t)snprintf(msg + n, sizeof msg - n, "\r\nK\xc3\xb6ln\r\n");
    ck_assert_uint_lt(n, sizeof msg);
    scan_str(msg);
    ck_assert(scan.flags & MIME_LIMIT);
    ck_assert(scan.flags & MIME_8BIT);
    ck_assert_int_eq(mime_conversion_verdict(&scan, 0, NULL), MIME_VERDICT_REFUSE_COMPLEX);
    ck_assert_int_eq(mime_conversion_verdict(&scan, 1, NULL), MIME_VERDICT_OK);
}
END_TEST

/* More parts than MIME_MAX_LEAVES: the first ones are kept, the limit reported. */
START_TEST(leaf_limit)
{
    static char msg[16384];
    size_t n = (size_t)snprintf(msg, sizeof msg, "Content-Type: multipart/mixed; boundary=p\r\n\r\n");
    for (int i = 0; i < MIME_MAX_LEAVES + 10; i++)
        n += (size_t)snprintf(msg + n, sizeof msg - n, "--p\r\n\r\n%d\r\n", i);
    n += (size_t)snprintf(msg + n, sizeof msg - n, "--p--\r\n");
    ck_assert_uint_lt(n, sizeof msg);
    scan_str(msg);
    ck_assert_uint_eq(scan.flags, MIME_LIMIT);
    ck_assert_uint_eq(scan.nleaves, MIME_MAX_LEAVES);
}
END_TEST

/* A Content-Type value alone, as header rewriting reads the top level. */
START_TEST(content_type_value)
{
    char t[MIME_TYPE_MAX];
    static const char *const v[][2] = {
        { " multipart/signed; protocol=\"application/pkcs7-signature\"", "multipart/signed" },
        { "\r\n (folded) Application/X-PKCS7-MIME;\r\n\tsmime-type=enveloped-data",
          "application/x-pkcs7-mime" },
        { " text/plain", "text/plain" },
        { " text", "" },
        { "", "" },
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        mime_content_type(v[i][0], strlen(v[i][0]), t);
        ck_assert_str_eq(t, v[i][1]);
    }
}
END_TEST

Suite *mime_suite(void)
{
    Suite *s = suite_create("mime");
    TCase *tc = tcase_create("scan");
    tcase_add_loop_test(tc, corpus, 0, (int)(sizeof samples / sizeof samples[0]));
    tcase_add_test(tc, header_syntax);
    tcase_add_test(tc, pkcs7_kinds);
    tcase_add_test(tc, opaque_in_rfc822);
    tcase_add_test(tc, eightbit_in_signed_preamble);
    tcase_add_test(tc, degenerate_structure);
    tcase_add_test(tc, depth_limit);
    tcase_add_test(tc, leaf_limit);
    tcase_add_test(tc, content_type_value);
    suite_add_tcase(s, tc);
    return s;
}
