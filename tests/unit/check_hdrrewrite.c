/* check_hdrrewrite.c - addresses in header fields (core/hdrrewrite.h): the
 * spans the walk finds, and the header blocks rewritten, left byte for byte
 * or never touched (signed, too big, unreadable). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hdrrewrite.h"

static const char map_text[] =
    "c=US;a= ;p=Fab;o=Sales;s=Lee;g=Bill;      bill.lee@fab.example\n"          /* in */
    "c=US;a= ;o=Sales;s=Ann;                    ann@fab.example     both\n"
    "sales@fab.example                          bill.lee@fab.example, ann@fab.example\n";

#define LEE "IMCEAX400-c=US+3Ba=+20+3Bp=Fab+3Bo=Sales+3Bs=Lee+3Bg=Bill+3B@gw.example"
#define ANN "IMCEAX400-c=US+3Ba=+20+3Bo=Sales+3Bs=Ann+3B@gw.example"
#define NOC "IMCEAX400-a=+20+3Bo=Sales+3Bs=Ann+3B@gw.example"      /* no C=: refused */

static struct addrmap *map;
static struct domain_list local;
static struct rewrite_config cfg;

static void setup(void)
{
    struct addrmap_error err;
    char why[DOMAINS_WHY_MAX];
    memset(&local, 0, sizeof local);
    ck_assert_int_eq(domains_parse(&local, "gw.example fab.example", why, sizeof why), 0);
    ck_assert_msg(addrmap_parse(map_text, strlen(map_text), &map, &err) == 0, "%s", err.text);
    cfg = (struct rewrite_config){ map, 1, &local };
}

static void teardown(void)
{
    addrmap_free(map);
    domains_free(&local);
}

/* Rewrite in; the block it becomes (in itself when unchanged). */
static char *run(const char *in, struct hdrrewrite_report *rep)
{
    size_t len = strlen(in);
    size_t n = hdrrewrite_block(&cfg, in, len, NULL, 0, rep);
    if (rep->result != HDRREWRITE_CHANGED) {
        ck_assert_uint_eq(n, 0);
        return strdup(in);
    }
    char *out = malloc(n + 1);
    ck_assert_ptr_nonnull(out);
    struct hdrrewrite_report again;
    ck_assert_uint_eq(hdrrewrite_block(&cfg, in, len, out, n + 1, &again), n);
    ck_assert_uint_eq(again.changed, rep->changed);
    ck_assert_uint_eq(strlen(out), n);
    return out;
}

static void expect(const char *in, const char *want, enum hdrrewrite_result result,
                   unsigned changed, unsigned kept)
{
    struct hdrrewrite_report rep;
    char *out = run(in, &rep);
    ck_assert_int_eq(rep.result, result);
    ck_assert_str_eq(out, want);
    ck_assert_uint_eq(rep.changed, changed);
    ck_assert_uint_eq(rep.kept, kept);
    free(out);
}

/* The spans of one value, as "[...]" joined, "<" marking an angle-addr. */
static void spans(const char *v, const char *want)
{
    struct hdr_addr_iter it;
    struct hdr_addr a;
    char got[512] = "";
    size_t o = 0;
    hdr_addr_begin(&it, v, strlen(v));
    while (hdr_addr_next(&it, &a)) {
        ck_assert_uint_le(a.start, a.end);
        ck_assert_uint_le(a.end, strlen(v));
        o += (size_t)snprintf(got + o, sizeof got - o, "%s[%.*s]", a.angle ? "<" : "",
                              (int)(a.end - a.start), v + a.start);
        ck_assert_uint_lt(o, sizeof got);
    }
    ck_assert_str_eq(got, want);
}

START_TEST(test_walk)
{
    spans(" a@b.example", "[a@b.example]");
    spans(" \"Lee, Bill\" <bill@x.example>, ann@y.example (Ann, Sales)",
          "<[bill@x.example][ann@y.example]");
    spans(" Team: a@x.example, \"b\" <b@x.example>;, c@x.example", "[a@x.example]<[b@x.example][c@x.example]");
    spans(" undisclosed-recipients:;", "");
    spans(" =?utf-8?Q?Lee,_Bill?= < bill@x.example >", "<[bill@x.example]");
    spans(" Bill (the, boss) <bill@x.example>,\r\n\t(c) ann@x.example", "<[bill@x.example][ann@x.example]");
    spans(" \"john doe\"@x.example", "[\"john doe\"@x.example]");
    spans(" <a@x.example> <b@x.example>, c@x.example", "[c@x.example]");    /* not one mailbox */
    spans(" <a@x.example> junk, <>", "");
    spans(" Ann <\"a>b\"@x.example>", "<[\"a>b\"@x.example]");
    spans(" ,, ;", "");
    spans(" <unclosed@x.example", "");
    spans(" (unclosed comment a@x.example", "");
}
END_TEST

START_TEST(test_display_names_and_comments)
{
    expect("From: \"Lee, Bill\" <" LEE ">\r\n"
           "Subject: for " LEE "\r\n"
           "\r\n"
           "body " LEE "\r\n",
           "From: \"Lee, Bill\" <bill.lee@fab.example>\r\n"
           "Subject: for " LEE "\r\n"
           "\r\n"
           "body " LEE "\r\n", HDRREWRITE_CHANGED, 1, 0);
    expect("Reply-To: " LEE " (Bill, at the gateway)\r\n\r\n",
           "Reply-To: bill.lee@fab.example (Bill, at the gateway)\r\n\r\n", HDRREWRITE_CHANGED, 1, 0);
    /* an encoded word in the display name stays as it is */
    expect("Sender: =?utf-8?Q?Lee,_Bill?= <" LEE ">\r\n\r\n",
           "Sender: =?utf-8?Q?Lee,_Bill?= <bill.lee@fab.example>\r\n\r\n", HDRREWRITE_CHANGED, 1, 0);
}
END_TEST

START_TEST(test_folded_and_many)
{
    /* SMTP to IMCEA (both), IMCEA to SMTP, an alias never expanded, an
     * unmapped one kept, the fold and every blank as they were */
    expect("To: Ann <ann@fab.example>,\r\n"
           "\t\"Sales, Desk\" <sales@fab.example>, (c) " LEE " (Bill),\r\n"
           "  other@remote.example\r\n"
           "cc:   <" LEE ">\r\n"
           "\r\n",
           "To: Ann <" ANN ">,\r\n"
           "\t\"Sales, Desk\" <sales@fab.example>, (c) bill.lee@fab.example (Bill),\r\n"
           "  other@remote.example\r\n"
           "cc:   <bill.lee@fab.example>\r\n"
           "\r\n", HDRREWRITE_CHANGED, 3, 2);
    /* LF line ends and the Resent- forms */
    expect("Resent-From: <" LEE ">\nResent-To: ann@fab.example\nResent-Cc: x@y.example\n\nbody\n",
           "Resent-From: <bill.lee@fab.example>\nResent-To: " ANN "\nResent-Cc: x@y.example\n\nbody\n",
           HDRREWRITE_CHANGED, 2, 1);
}
END_TEST

START_TEST(test_groups)
{
    expect("To: Team: " LEE ", \"Ann\" <ann@fab.example>;, undisclosed:;\r\n\r\n",
           "To: Team: bill.lee@fab.example, \"Ann\" <" ANN ">;, undisclosed:;\r\n\r\n",
           HDRREWRITE_CHANGED, 2, 0);
}
END_TEST

START_TEST(test_unchanged_byte_identical)
{
    static const char *const same[] = {
        /* nothing mapped, an alias (never in headers), other fields */
        "From: Someone <someone@remote.example>\r\nTo: sales@fab.example\r\n"
        "Bcc: " LEE "\r\nX-Orig: " LEE "\r\nReceived: from " LEE "\r\n\r\nbody\r\n",
        /* refused (no C=) and unmapped IMCEA stay as written */
        "From: <" NOC ">\r\nTo: IMCEAX400-c=US+3Ba=+20+3Bo=Sales+3Bs=Nobody+3B@gw.example\r\n\r\n",
        /* IMCEA at a domain that is not local: not ours */
        "To: IMCEAX400-c=US+3Ba=+20+3Bp=Fab+3Bo=Sales+3Bs=Lee+3Bg=Bill+3B@remote.example\r\n\r\n",
        /* no header at all, and no body separator */
        "\r\nbody\r\n",
        "",
        "Subject: only a header",
    };
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        struct hdrrewrite_report rep;
        char out[8] = "x";
        ck_assert_uint_eq(hdrrewrite_block(&cfg, same[i], strlen(same[i]), out, sizeof out, &rep), 0);
        ck_assert_int_eq(rep.result, HDRREWRITE_UNCHANGED);
        ck_assert_uint_eq(rep.changed, 0);
        ck_assert_str_eq(out, "x");
    }
}
END_TEST

START_TEST(test_signed_untouched)
{
    static const char *const signed_forms[] = {
        "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\";\r\n"
        "\tmicalg=sha-256; boundary=b\r\n",
        "Content-Type: application/pkcs7-mime; smime-type=signed-data; name=smime.p7m\r\n",
        "Content-Type: Application/X-PKCS7-MIME; smime-type=enveloped-data\r\n",
        "Content-Type: application/pkcs7-mime\r\n",
        "DKIM-Signature: v=1; a=rsa-sha256; d=fab.example; s=s1; h=from:to; bh=x; b=y\r\n",
        "dkim-signature: v=1\r\n",
    };
    for (size_t i = 0; i < sizeof signed_forms / sizeof signed_forms[0]; i++) {
        char in[1024];
        snprintf(in, sizeof in, "From: <" LEE ">\r\n%sTo: ann@fab.example\r\n\r\nbody\r\n",
                 signed_forms[i]);
        struct hdrrewrite_report rep;
        ck_assert_uint_eq(hdrrewrite_block(&cfg, in, strlen(in), NULL, 0, &rep), 0);
        ck_assert_msg(rep.result == HDRREWRITE_SIGNED, "%s: not seen as signed", signed_forms[i]);
        ck_assert_ptr_nonnull(strstr(rep.why, "sign"));
        ck_assert_uint_eq(rep.changed, 0);
    }
    /* not signed: a Content-Type that only names it in a parameter */
    expect("Content-Type: text/plain; x=\"multipart/signed\"\r\nFrom: <" LEE ">\r\n\r\n",
           "Content-Type: text/plain; x=\"multipart/signed\"\r\nFrom: <bill.lee@fab.example>\r\n\r\n",
           HDRREWRITE_CHANGED, 1, 0);
}
END_TEST

START_TEST(test_limits)
{
    /* an address too long to be one (local part over 64): kept */
    char in[HDRREWRITE_BLOCK_MAX + 64], want[2048];
    char big[300];
    memset(big, 'x', 200);
    big[200] = 0;
    snprintf(in, sizeof in, "From: <IMCEAX400-c=US+3B%s@gw.example>, " LEE "\r\n\r\n", big);
    snprintf(want, sizeof want, "From: <IMCEAX400-c=US+3B%s@gw.example>, bill.lee@fab.example\r\n\r\n",
             big);
    expect(in, want, HDRREWRITE_CHANGED, 1, 1);

    /* a header over the limit is left alone */
    size_t n = (size_t)snprintf(in, sizeof in, "From: <" LEE ">\r\nX-Pad: ");
    memset(in + n, 'p', HDRREWRITE_BLOCK_MAX - n - 4);
    memcpy(in + HDRREWRITE_BLOCK_MAX - 4, "\r\n\r\n", 5);
    struct hdrrewrite_report rep;
    ck_assert_uint_eq(strlen(in), HDRREWRITE_BLOCK_MAX);
    hdrrewrite_block(&cfg, in, strlen(in), NULL, 0, &rep);
    ck_assert_int_eq(rep.result, HDRREWRITE_CHANGED);       /* at the limit: read */
    memcpy(in + HDRREWRITE_BLOCK_MAX - 4, "p\r\n\r\n", 6);
    ck_assert_uint_eq(hdrrewrite_block(&cfg, in, strlen(in), NULL, 0, &rep), 0);
    ck_assert_int_eq(rep.result, HDRREWRITE_TOO_BIG);

    /* a rewrite that would make a line pass 998 octets is not made */
    n = (size_t)snprintf(in, sizeof in, "To: ");
    memset(in + n, 'a', 950);
    snprintf(in + n + 950, sizeof in - n - 950, "@remote.example, ann@fab.example\r\n\r\n");
    expect(in, in, HDRREWRITE_UNCHANGED, 0, 2);
    free(run(in, &rep));
    ck_assert_uint_eq(rep.too_long, 1);
}
END_TEST

START_TEST(test_malformed_and_buffer)
{
    /* a line that is not a field: the block is not read */
    struct hdrrewrite_report rep;
    static const char *const bad[] = {
        "From " LEE " Mon Jan  1\r\nFrom: <" LEE ">\r\n\r\n",
        " folded-first: x\r\nFrom: <" LEE ">\r\n\r\n",
        "From: <" LEE ">\r\nnot a field\r\n\r\n",
        ": no name\r\nFrom: <" LEE ">\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_uint_eq(hdrrewrite_block(&cfg, bad[i], strlen(bad[i]), NULL, 0, &rep), 0);
        ck_assert_int_eq(rep.result, HDRREWRITE_MALFORMED);
    }
    /* too small a buffer: the length needed, and a cut, terminated text */
    const char *in = "From: <" LEE ">\r\n\r\n";
    char out[10];
    size_t need = hdrrewrite_block(&cfg, in, strlen(in), out, sizeof out, &rep);
    ck_assert_uint_eq(need, strlen("From: <bill.lee@fab.example>\r\n\r\n"));
    ck_assert_str_eq(out, "From: <bi");
    ck_assert_int_eq(hdrrewrite_field("resent-cc", 9), 1);
    ck_assert_int_eq(hdrrewrite_field("Bcc", 3), 0);
}
END_TEST

/* The header block's end, found the same wherever the content is cut. */
START_TEST(test_end_in_pieces)
{
    static const struct { const char *msg; size_t end; } cases[] = {
        { "From: a@b.example\r\nTo: c@d.example\r\n\r\nbody\r\n\r\n", 38 },
        { "From: a@b.example\nTo: c@d.example\n\nbody\n", 35 },
        { "Subject: x\r\n folded\r\n\r\n", 23 },
        { "Subject: a\rb\r\n\r\nbody", 16 },     /* a CR inside a line is not a line end */
        { "\r\nbody", 2 },
        { "\nbody", 1 },
        { "Subject: no body\r\n", 0 },          /* 0: no end */
        { "", 0 },
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const char *m = cases[k].msg;
        size_t len = strlen(m);
        for (size_t cut = 0; cut <= len; cut++) {
            struct hdr_end h = { 0 };
            int end;
            size_t got = hdr_end_feed(&h, m, cut, &end);
            if (!end)
                got += hdr_end_feed(&h, m + cut, len - cut, &end);
            ck_assert_msg(end == (cases[k].end != 0) && (!end || got == cases[k].end),
                          "case %zu cut %zu: end %d at %zu", k, cut, end, got);
        }
        /* one octet at a time */
        struct hdr_end h = { 0 };
        int end = 0;
        size_t got = 0;
        for (size_t i = 0; i < len && !end; i++)
            got += hdr_end_feed(&h, m + i, 1, &end);
        ck_assert_uint_eq(end ? got : 0, cases[k].end);
    }
}
END_TEST

Suite *hdrrewrite_suite(void)
{
    Suite *s = suite_create("hdrrewrite");
    TCase *tc = tcase_create("hdrrewrite");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_walk);
    tcase_add_test(tc, test_display_names_and_comments);
    tcase_add_test(tc, test_folded_and_many);
    tcase_add_test(tc, test_groups);
    tcase_add_test(tc, test_unchanged_byte_identical);
    tcase_add_test(tc, test_signed_untouched);
    tcase_add_test(tc, test_limits);
    tcase_add_test(tc, test_malformed_and_buffer);
    tcase_add_test(tc, test_end_in_pieces);
    suite_add_tcase(s, tc);
    return s;
}
