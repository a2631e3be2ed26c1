/* check_convert.c - 8-bit to 7-bit conversion: re-encoded leaves decode to
 * what they were, everything else (signed parts above all) is byte-identical,
 * and what cannot be converted is refused with its reason.
 *
 * The decoders here are deliberately separate from core/convert.c's and
 * strict: they accept only what a correct encoder writes.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"
#include "mime.h"

#define DATA_DIR "tests/data/mime/"
#define OUT_MAX  (1u << 18)

/* Static, not malloc'd: a failed assertion must not also report a leak. */
static struct mime_scan scan, rescan;
static unsigned char outbuf[OUT_MAX];
static size_t outlen;
static const char *why;

static unsigned char *slurp(const char *name, size_t *len)
{
    char path[256];
    ck_assert_int_lt(snprintf(path, sizeof path, "%s%s", DATA_DIR, name), (int)sizeof path);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    static unsigned char buf[65536];
    *len = fread(buf, 1, sizeof buf, f);
    ck_assert(feof(f));
    fclose(f);
    return buf;
}

/* Scan and convert; the output (if any) is copied to outbuf and freed. */
static enum convert_result run(const unsigned char *m, size_t len)
{
    unsigned char *out = (unsigned char *)"not set";
    size_t n = 1;
    mime_scan(m, len, &scan);
    enum convert_result r = convert_7bit(m, len, &scan, &out, &n, &why);
    if (r != CONVERT_OK) {
        ck_assert_ptr_null(out);
        ck_assert_uint_eq(n, 0);
        outlen = 0;
        return r;
    }
    ck_assert_ptr_nonnull(out);
    ck_assert_ptr_null(why);
    int fits = n <= sizeof outbuf;
    if (fits)
        memcpy(outbuf, out, n);
    free(out);
    ck_assert(fits);
    outlen = n;
    return r;
}

static enum convert_result run_str(const char *s)
{
    return run((const unsigned char *)s, strlen(s));
}

/* Strict decoders ------------------------------------------------------------ */

static int hexv(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* "=XX" (upper case), "=" CRLF / "=" LF soft breaks; everything else itself. */
static size_t t_qp_decode(const unsigned char *s, size_t n, unsigned char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] != '=') {
            out[o++] = s[i++];
        } else if (i + 2 < n && s[i + 1] == '\r' && s[i + 2] == '\n') {
            i += 3;
        } else if (i + 1 < n && s[i + 1] == '\n') {
            i += 2;
        } else {
            ck_assert_msg(i + 2 < n && hexv(s[i + 1]) >= 0 && hexv(s[i + 2]) >= 0,
                          "bad QP escape at %zu", i);
            out[o++] = (unsigned char)(hexv(s[i + 1]) << 4 | hexv(s[i + 2]));
            i += 3;
        }
    }
    return o;
}

static int b64v(unsigned char ch)
{
    const char *a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = ch ? strchr(a, ch) : NULL;
    return p ? (int)(p - a) : -1;
}

/* Line breaks skipped; '=' only as padding at the very end. */
static size_t t_b64_decode(const unsigned char *s, size_t n, unsigned char *out)
{
    unsigned long acc = 0;
    unsigned bits = 0;
    size_t o = 0, pad = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\r' || s[i] == '\n')
            continue;
        if (s[i] == '=') {
            pad++;
            continue;
        }
        ck_assert_uint_eq(pad, 0);
        int v = b64v(s[i]);
        ck_assert_msg(v >= 0, "bad base64 character %#x", s[i]);
        acc = (acc << 6 | (unsigned long)v) & 0xffffffUL;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    ck_assert_uint_le(pad, 2);
    return o;
}

/* Checks on any result ------------------------------------------------------- */

static const unsigned char *find(const unsigned char *h, size_t hn, const void *needle, size_t nn)
{
    if (nn == 0)
        return h;
    for (size_t i = 0; i + nn <= hn; i++)
        if (memcmp(h + i, needle, nn) == 0)
            return h + i;
    return NULL;
}

static int count(const unsigned char *h, size_t hn, const char *needle)
{
    int k = 0;
    size_t nn = strlen(needle);
    for (const unsigned char *p = h; (p = find(p, hn - (size_t)(p - h), needle, nn)) != NULL; p++)
        k++;
    return k;
}

static int has(const char *s)
{
    return find(outbuf, outlen, s, strlen(s)) != NULL;
}

static void assert_lines_within(const unsigned char *s, size_t n, size_t max)
{
    size_t col = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n') {
            col = 0;
            continue;
        }
        if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
            continue;
        col++;
        ck_assert_msg(col <= max, "line longer than %zu octets at %zu", max, i);
    }
}

/* The output is 7-bit and scans to the same leaves: untouched leaves are
 * byte-identical, re-encoded ones are QP (text) or base64 with short lines
 * and decode to the original content. */
static void assert_converted(const unsigned char *m, size_t len)
{
    static unsigned char dec[65536];
    for (size_t i = 0; i < outlen; i++)
        ck_assert_msg(outbuf[i] < 0x80, "8-bit octet at %zu", i);
    mime_scan(outbuf, outlen, &rescan);
    ck_assert_uint_eq(rescan.flags & (MIME_8BIT | MIME_LIMIT), 0);
    ck_assert_uint_eq(rescan.nleaves, scan.nleaves);
    for (size_t i = 0; i < scan.nleaves; i++) {
        const struct mime_leaf *a = &scan.leaves[i], *b = &rescan.leaves[i];
        ck_assert_str_eq(a->type, b->type);
        ck_assert_int_eq(a->in_signed, b->in_signed);
        if (!a->eightbit || a->in_signed) {
            ck_assert_uint_eq(a->end - a->start, b->end - b->start);
            ck_assert(memcmp(m + a->start, outbuf + b->start, a->end - a->start) == 0);
            continue;
        }
        const unsigned char *body = outbuf + b->body;
        size_t n = b->end - b->body, d;
        assert_lines_within(body, n, CONVERT_QP_LINE_MAX);
        if (strncmp(a->type, "text/", 5) == 0 || a->cte == MIME_CTE_QP) {
            ck_assert_int_eq(b->cte, MIME_CTE_QP);
            d = t_qp_decode(body, n, dec);
        } else {
            ck_assert_int_eq(b->cte, MIME_CTE_BASE64);
            d = t_b64_decode(body, n, dec);
        }
        if (a->cte == MIME_CTE_7BIT || a->cte == MIME_CTE_8BIT || a->cte == MIME_CTE_BINARY) {
            ck_assert_uint_eq(d, a->end - a->body);
            ck_assert(memcmp(dec, m + a->body, d) == 0);
        }
        /* Headers other than the transfer encoding are kept. */
        ck_assert_int_eq(count(outbuf + b->start, b->body - b->start, "Content-Transfer-Encoding:"), 1);
    }
    ck_assert(len > 0);
}

/* The verdict and the converter agree. Where the verdict says CONVERT the
 * converter may still refuse what the scan does not look at: 8-bit octets
 * in a header or a preamble, or an 8-bit part in an unknown encoding. */
static void assert_agrees(enum convert_result r)
{
    switch (mime_conversion_verdict(&scan, 0, NULL)) {
    case MIME_VERDICT_OK:
        ck_assert_int_eq(r, CONVERT_UNCHANGED);
        break;
    case MIME_VERDICT_CONVERT:
        ck_assert_msg(r == CONVERT_OK || r == CONVERT_UNCHANGED ||
                      (r == CONVERT_REFUSED && (strstr(why, "in a header") ||
                                                strstr(why, "outside the content") ||
                                                strstr(why, "does not know"))),
                      "result %d", r);
        break;
    default:
        ck_assert_int_eq(r, CONVERT_REFUSED);
        break;
    }
}

/* The corpus ------------------------------------------------------------------ */

static const struct { const char *file; enum convert_result want; } corpus_cases[] = {
    { "plain_7bit.eml", CONVERT_UNCHANGED },
    { "plain_8bit.eml", CONVERT_OK },
    { "signed_clear.eml", CONVERT_UNCHANGED },
    { "signed_opaque.eml", CONVERT_UNCHANGED },
    { "encrypted.eml", CONVERT_UNCHANGED },
    { "signed_in_rfc822.eml", CONVERT_UNCHANGED },
    { "signed_only_content.eml", CONVERT_UNCHANGED },
    { "signed_8bit_inside.eml", CONVERT_REFUSED },
    { "mixed_8bit_outside.eml", CONVERT_OK },
    { "nested.eml", CONVERT_UNCHANGED },
    { "unclosed.eml", CONVERT_UNCHANGED },
    { "boundary_in_base64.eml", CONVERT_UNCHANGED },
};

START_TEST(corpus)
{
    size_t len;
    unsigned char *m = slurp(corpus_cases[_i].file, &len);
    enum convert_result r = run(m, len);
    ck_assert_msg(r == corpus_cases[_i].want, "%s: %d", corpus_cases[_i].file, r);
    assert_agrees(r);
    if (r == CONVERT_OK)
        assert_converted(m, len);
    if (r == CONVERT_REFUSED)
        ck_assert_ptr_nonnull(strstr(why, "signature"));
}
END_TEST

/* The signed entity of mixed_8bit_outside.eml, from its headers to its close
 * delimiter, is in the output unchanged; the top-level header block (ended
 * by a non-field line, no blank line) is unchanged too, MIME-Version included. */
START_TEST(corpus_signed_part_intact)
{
    size_t len;
    unsigned char *m = slurp("mixed_8bit_outside.eml", &len);
    ck_assert_int_eq(run(m, len), CONVERT_OK);
    const unsigned char *a = find(m, len, "Content-Type: multipart/signed", 30);
    const unsigned char *z = find(m, len, "--mix--", 7);
    ck_assert(a && z && a < z);
    ck_assert_ptr_nonnull(find(outbuf, outlen, a, (size_t)(z - a)));
    const unsigned char *top = find(m, len, "--mix\r\n", 7);
    ck_assert_ptr_nonnull(top);
    ck_assert(memcmp(outbuf, m, (size_t)(top - m)) == 0);
    ck_assert_int_eq(count(outbuf, outlen, "MIME-Version:"), 1);
    ck_assert(has("Gr=C3=BC=C3=9Fe."));
}
END_TEST

/* Inline messages -------------------------------------------------------------- */

static const char plain[] =
    "From: Ann <ann@example.test>\r\n"
    "To: bob@example.test\r\n"
    "Subject: Treffen\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "Hallo Bob,\r\n"
    "das Treffen ist am Dienstag in K\xc3\xb6ln; danach gehen wir \xc3\xbc" "ber die Br\xc3\xbc"
    "cke zum Dom und dann weiter zum Bahnhof, wo der Zug um 18:40 f\xc3\xa4hrt.\r\n"
    "a=b, trailing space \r\n"
    "trailing tab\t\r\n"
    "\r\n"
    "Gr\xc3\xbc\xc3\x9f" "e\r\n";

START_TEST(plain_text)
{
    ck_assert_int_eq(run_str(plain), CONVERT_OK);
    assert_agrees(CONVERT_OK);
    assert_converted((const unsigned char *)plain, strlen(plain));
    assert_lines_within(outbuf, outlen, 76);
    /* MIME-Version and the encoding end the header block; the rest is kept. */
    const char *head = "From: Ann <ann@example.test>\r\nTo: bob@example.test\r\nSubject: Treffen\r\n"
                       "Content-Type: text/plain; charset=utf-8\r\n"
                       "Content-Transfer-Encoding: quoted-printable\r\nMIME-Version: 1.0\r\n\r\n";
    ck_assert_uint_gt(outlen, strlen(head));
    ck_assert(memcmp(outbuf, head, strlen(head)) == 0);
    static unsigned char dec[4096];
    const char *body = strstr(plain, "\r\n\r\n") + 4;
    size_t d = t_qp_decode(outbuf + strlen(head), outlen - strlen(head), dec);
    ck_assert_uint_eq(d, strlen(body));
    ck_assert(memcmp(dec, body, d) == 0);
    ck_assert(has("a=3Db, trailing space=20\r\n"));
    ck_assert(has("trailing tab=09\r\n"));
}
END_TEST

/* Bare LF line ends: the converter keeps them, soft breaks included. */
START_TEST(plain_text_lf)
{
    const char *m = "Subject: x\nMIME-Version: 1.0\nContent-Transfer-Encoding: 8bit\n\n"
                    "K\xc3\xb6ln\nzweite Zeile\n";
    ck_assert_int_eq(run_str(m), CONVERT_OK);
    assert_converted((const unsigned char *)m, strlen(m));
    const char *want = "Subject: x\nMIME-Version: 1.0\n"
                       "Content-Transfer-Encoding: quoted-printable\n\nK=C3=B6ln\nzweite Zeile\n";
    ck_assert_uint_eq(outlen, strlen(want));
    ck_assert(memcmp(outbuf, want, outlen) == 0);
}
END_TEST

static const char mixed[] =
    "From: ann@example.test\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
    "\r\n"
    "preamble\r\n"
    "--b1\r\n"
    "Content-Type: text/plain; charset=iso-8859-1\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "Content-Disposition: inline\r\n"
    "\r\n"
    "Gr\xfc\xdf" "e aus K\xf6ln\r\n"
    "--b1\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "seven bit part\r\n"
    "--b1\r\n"
    "Content-Type: application/octet-stream\r\n"
    "Content-Disposition: attachment; filename=\"x.bin\"\r\n"
    "\r\n"
    "\x80\x81\x82\xff\x00\x01 binary-ish \xfe\r\nand more\r\n"
    "--b1--\r\n"
    "epilogue\r\n";

START_TEST(multipart_mixed)
{
    size_t len = sizeof mixed - 1;
    ck_assert_int_eq(run((const unsigned char *)mixed, len), CONVERT_OK);
    assert_agrees(CONVERT_OK);
    assert_converted((const unsigned char *)mixed, len);
    ck_assert_int_eq(rescan.leaves[0].cte, MIME_CTE_QP);
    ck_assert_int_eq(rescan.leaves[2].cte, MIME_CTE_BASE64);
    /* Other headers stay, in order; the old encoding is gone. */
    ck_assert(has("--b1\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Disposition: inline\r\n"
                  "Content-Transfer-Encoding: quoted-printable\r\n\r\nGr=FC=DFe aus K=F6ln\r\n--b1\r\n"));
    ck_assert_int_eq(count(outbuf, outlen, "8bit"), 0);
    /* Everything up to the first part, and from the close delimiter on, as it was. */
    const char *first = strstr(mixed, "--b1\r\n");
    ck_assert(memcmp(outbuf, mixed, (size_t)(first - mixed)) == 0);
    ck_assert(has("\r\n--b1--\r\nepilogue\r\n"));
    ck_assert_int_eq(count(outbuf, outlen, "MIME-Version:"), 1);
}
END_TEST

/* An 8-bit part outside, a 7-bit multipart/signed beside it: the signed
 * entity is byte-identical in the output. */
static const char signed_beside[] =
    "Content-Type: multipart/mixed; boundary=out\r\n"
    "\r\n"
    "--out\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "\xc3\xa9t\xc3\xa9\r\n"
    "--out\r\n"
    "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; boundary=sig\r\n"
    "\r\n"
    "--sig\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "signed text   \r\n"
    "--sig\r\n"
    "Content-Type: application/pkcs7-signature\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "MIIB\r\n"
    "--sig--\r\n"
    "--out--\r\n";

START_TEST(signed_beside_8bit)
{
    size_t len = sizeof signed_beside - 1;
    ck_assert_int_eq(run((const unsigned char *)signed_beside, len), CONVERT_OK);
    assert_converted((const unsigned char *)signed_beside, len);
    const char *a = strstr(signed_beside, "Content-Type: multipart/signed");
    const char *z = strstr(signed_beside, "--out--");
    ck_assert_ptr_nonnull(find(outbuf, outlen, a, (size_t)(z - a)));
    /* No MIME-Version before: one now, at the end of the top-level headers. */
    ck_assert(memcmp(outbuf, "Content-Type: multipart/mixed; boundary=out\r\nMIME-Version: 1.0\r\n\r\n",
                     66) == 0);
}
END_TEST

static const struct { const char *msg; const char *because; } refusals[] = {
    /* 8-bit inside a clear-signed part */
    { "Content-Type: multipart/signed; boundary=s\r\n\r\n--s\r\n\r\nK\xc3\xb6ln\r\n"
      "--s\r\nContent-Type: application/pkcs7-signature\r\n\r\nMII=\r\n--s--\r\n", "signature" },
    /* 8bit declared inside a signed part, octets all 7-bit */
    { "Content-Type: multipart/signed; boundary=s\r\n\r\n--s\r\nContent-Transfer-Encoding: 8bit\r\n"
      "\r\nplain\r\n--s--\r\n", "signature" },
    /* opaque signed data in binary */
    { "Content-Type: application/pkcs7-mime; smime-type=signed-data\r\n"
      "Content-Transfer-Encoding: binary\r\n\r\n0\x82\x01\r\n", "signature" },
    /* 8-bit in a top-level header */
    { "Subject: Gr\xc3\xbc\xc3\x9f" "e\r\n\r\nK\xc3\xb6ln\r\n", "header" },
    /* 8-bit in a header of a part */
    { "Content-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\n"
      "Content-Disposition: attachment; filename=\"K\xc3\xb6ln.txt\"\r\n\r\nK\xc3\xb6ln\r\n--m--\r\n",
      "header" },
    /* 8-bit in a preamble */
    { "Content-Type: multipart/mixed; boundary=m\r\n\r\npr\xc3\xa9" "ambule\r\n--m\r\n\r\nx\r\n--m--\r\n",
      "preamble" },
    /* an unknown transfer encoding with 8-bit content */
    { "Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 \xe9\r\n", "does not know" },
};

START_TEST(refused)
{
    ck_assert_int_eq(run_str(refusals[_i].msg), CONVERT_REFUSED);
    ck_assert_ptr_nonnull(why);
    ck_assert_msg(strstr(why, refusals[_i].because) != NULL, "%d: %s", _i, why);
    assert_agrees(CONVERT_REFUSED);
}
END_TEST

/* Too deep to know every leaf: refused, as the verdict says. */
START_TEST(refused_limit)
{
    static char msg[8192];
    size_t n = 0;
    for (int i = 0; i < MIME_MAX_DEPTH + 2; i++) {
        int w = snprintf(msg + n, sizeof msg - n,
                         "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i);
        ck_assert(w > 0 && (size_t)w < sizeof msg - n);
        n += (size_t)w;
    }
    ck_assert_uint_lt(n + 16, sizeof msg);
    memcpy(msg + n, "\r\nK\xc3\xb6ln\r\n", 10);
    ck_assert_int_eq(run((const unsigned char *)msg, n + 10), CONVERT_REFUSED);
    ck_assert_ptr_nonnull(strstr(why, "too deeply nested"));
    assert_agrees(CONVERT_REFUSED);
}
END_TEST

START_TEST(unchanged)
{
    static const char *const msgs[] = {
        "",
        "Subject: hi\r\n\r\nplain ASCII\r\n",
        "Content-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\n\r\nx\r\n--m--\r\n",
        /* an 8bit label on a multipart whose parts are all 7-bit */
        "Content-Type: multipart/mixed; boundary=m\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "--m\r\n\r\nx\r\n--m--\r\n",
    };
    for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++) {
        ck_assert_int_eq(run_str(msgs[i]), CONVERT_UNCHANGED);
        ck_assert_ptr_null(why);
        assert_agrees(CONVERT_UNCHANGED);
    }
}
END_TEST

/* A folded Content-Transfer-Encoding is removed with its continuation; so
 * is a second one; the following header is kept. */
START_TEST(folded_cte_replaced)
{
    const char *m = "MIME-Version: 1.0\r\n"
                    "Content-Transfer-Encoding:\r\n"
                    "\t8bit\r\n"
                    "X-Keep: yes\r\n"
                    "content-transfer-encoding : 8bit\r\n"
                    "  (really)\r\n"
                    "Content-Type: text/plain\r\n"
                    "\r\n"
                    "\xe9\r\n";
    ck_assert_int_eq(run_str(m), CONVERT_OK);
    assert_converted((const unsigned char *)m, strlen(m));
    const char *want = "MIME-Version: 1.0\r\nX-Keep: yes\r\nContent-Type: text/plain\r\n"
                       "Content-Transfer-Encoding: quoted-printable\r\n\r\n=E9\r\n";
    ck_assert_uint_eq(outlen, strlen(want));
    ck_assert(memcmp(outbuf, want, outlen) == 0);
}
END_TEST

/* Soft breaks: 76 octets at most, an '=XX' never split, and no line starts
 * with '-' (it could look like a delimiter). */
START_TEST(qp_soft_breaks)
{
    static char m[1024];
    int n = snprintf(m, sizeof m, "Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\n"
                     "Content-Type: text/plain\r\n\r\n");
    ck_assert(n > 0);
    size_t k = (size_t)n;
    memset(m + k, 'x', 75);                 /* the soft break falls before "--zz--" */
    k += 75;
    memcpy(m + k, "--zz--\r\n-- \r\n", 13);
    k += 13;
    memset(m + k, 'y', 74);                 /* "=E9" would cross column 75 */
    k += 74;
    memcpy(m + k, "\xe9\r\n", 3);
    k += 3;
    for (int i = 0; i < 200; i++)
        m[k++] = (char)(i % 3 ? 0xe4 : 'a');
    memcpy(m + k, "\r\n--zz--\r\n", 10);
    k += 10;
    ck_assert_int_eq(run((const unsigned char *)m, k), CONVERT_OK);
    assert_converted((const unsigned char *)m, k);
    ck_assert(has("xxx=\r\n=2D-zz--\r\n=2D-=20\r\n"));
    ck_assert(has("yyy=\r\n=E9\r\n"));
    /* Inside the re-encoded part, no line begins with '-'. */
    for (size_t i = rescan.leaves[0].body; i + 1 < rescan.leaves[0].end; i++)
        ck_assert(!(outbuf[i] == '\n' && outbuf[i + 1] == '-'));
}
END_TEST

/* Already encoded, yet 8-bit: quoted-printable with raw octets is decoded
 * leniently and encoded again; base64 with stray 8-bit octets keeps its data. */
START_TEST(encoded_with_raw_8bit)
{
    static unsigned char dec[256];
    const char *qp = "Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
                     "K\xf6ln und K=F6ln, soft=\r\nbreak\r\n";
    ck_assert_int_eq(run_str(qp), CONVERT_OK);
    assert_converted((const unsigned char *)qp, strlen(qp));
    size_t d = t_qp_decode(outbuf + rescan.leaves[0].body,
                           rescan.leaves[0].end - rescan.leaves[0].body, dec);
    static const char want[] = "K\xf6ln und K\xf6ln, softbreak\r\n";
    ck_assert_uint_eq(d, sizeof want - 1);
    ck_assert(memcmp(dec, want, d) == 0);

    const char *b64 = "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                      "SGVs\xe9\r\nbG8=\r\n";
    ck_assert_int_eq(run_str(b64), CONVERT_OK);
    assert_converted((const unsigned char *)b64, strlen(b64));
    d = t_b64_decode(outbuf + rescan.leaves[0].body, rescan.leaves[0].end - rescan.leaves[0].body, dec);
    ck_assert_uint_eq(d, 5);
    ck_assert(memcmp(dec, "Hello", 5) == 0);
}
END_TEST

/* Base64 lines are 76 characters; the last one is ended at the end of the
 * message. */
START_TEST(base64_lines)
{
    static unsigned char m[512];
    const char *h = "MIME-Version: 1.0\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: binary\r\n\r\n";
    size_t n = strlen(h);
    memcpy(m, h, n);
    for (int i = 0; i < 120; i++)
        m[n++] = (unsigned char)(i * 7 + 128);
    ck_assert_int_eq(run(m, n), CONVERT_OK);
    assert_converted(m, n);
    size_t body = rescan.leaves[0].body;
    ck_assert_uint_eq(outlen - body, 76 + 2 + 76 + 2 + 8 + 2);   /* 120 octets: 160 characters */
    ck_assert(outbuf[body + 76] == '\r' && outbuf[outlen - 2] == '\r' && outbuf[outlen - 1] == '\n');
}
END_TEST

/* A scan that does not belong to the message is refused, not trusted. */
START_TEST(foreign_scan)
{
    const char *a = "Subject: x\r\n\r\n\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\r\n";
    mime_scan((const unsigned char *)a, strlen(a), &scan);
    unsigned char *out;
    size_t n;
    ck_assert_int_eq(convert_7bit((const unsigned char *)"x", 1, &scan, &out, &n, &why),
                     CONVERT_REFUSED);
    ck_assert_ptr_null(out);
    ck_assert_ptr_nonnull(why);
}
END_TEST

Suite *convert_suite(void)
{
    Suite *s = suite_create("convert");
    TCase *tc = tcase_create("convert");
    tcase_add_loop_test(tc, corpus, 0, (int)(sizeof corpus_cases / sizeof corpus_cases[0]));
    tcase_add_test(tc, corpus_signed_part_intact);
    tcase_add_test(tc, plain_text);
    tcase_add_test(tc, plain_text_lf);
    tcase_add_test(tc, multipart_mixed);
    tcase_add_test(tc, signed_beside_8bit);
    tcase_add_loop_test(tc, refused, 0, (int)(sizeof refusals / sizeof refusals[0]));
    tcase_add_test(tc, refused_limit);
    tcase_add_test(tc, unchanged);
    tcase_add_test(tc, folded_cte_replaced);
    tcase_add_test(tc, qp_soft_breaks);
    tcase_add_test(tc, encoded_with_raw_8bit);
    tcase_add_test(tc, base64_lines);
    tcase_add_test(tc, foreign_scan);
    suite_add_tcase(s, tc);
    return s;
}
