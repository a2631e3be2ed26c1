/* convert.c - 8-bit to 7-bit conversion of a scanned message (see convert.h).
 *
 * Two passes over the same code: the first only counts the output octets
 * (with overflow checks), the second writes them into a buffer of exactly
 * that size. A leaf that is already quoted-printable or base64 but carries
 * raw 8-bit octets is decoded leniently (as RFC 2045 tells decoders to) and
 * encoded again, so what it decodes to does not change. Must never write to
 * the input, change a byte outside the re-encoded leaves (save the one
 * MIME-Version line), or emit an octet >= 0x80 in a result it calls OK.
 */
#include "convert.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"

#define CTE_NAME        "content-transfer-encoding"
#define MIME_VERSION    "mime-version"
#define CTE_QP_LINE     "Content-Transfer-Encoding: quoted-printable"
#define CTE_B64_LINE    "Content-Transfer-Encoding: base64"
#define MIME_VER_LINE   "MIME-Version: 1.0"
#define B64_CHUNK       (CONVERT_B64_LINE_MAX / 4 * 3)  /* input octets per base64 line */
#define QP_TEXT_MAX     (CONVERT_QP_LINE_MAX - 1)       /* room for the soft break '=' */

static const char why_signed[] =
    "The message has 8-bit content inside a digitally signed part; converting it to 7-bit "
    "would break the signature, so it was not converted.";
static const char why_limit[] =
    "The message has 8-bit content and its MIME structure is too deeply nested or has too "
    "many parts to be converted to 7-bit safely.";
static const char why_header[] =
    "The message has 8-bit characters in a header; headers cannot be re-encoded without "
    "changing what they say, so it was not converted to 7-bit.";
static const char why_outside[] =
    "The message has 8-bit characters outside the content of its parts (in the headers of a "
    "nested part, or in a multipart preamble or epilogue); they cannot be re-encoded without "
    "changing what they say, so it was not converted to 7-bit.";
static const char why_unknown_cte[] =
    "The message has an 8-bit part in a transfer encoding this gateway does not know, so it "
    "cannot be re-encoded to 7-bit.";
static const char why_scan[] =
    "The MIME structure given for the message does not fit its bytes, so it was not converted.";

/* Output, or only its length when buf is NULL. */
struct wr {
    unsigned char *buf;
    size_t cap, len;
    int bad;            /* overflow, or more than cap: the result is unusable */
};

struct conv {
    const unsigned char *m;
    size_t len;
    const struct mime_scan *scan;
    const char *nl;         /* the message's own line end */
    size_t nl_len;
    size_t top_hdr_end;     /* where a top-level MIME-Version line goes */
    int add_mime_version;
};

static void put(struct wr *w, const void *p, size_t n)
{
    if (w->bad || n == 0)
        return;
    if (n > SIZE_MAX - w->len) {
        w->bad = 1;
        return;
    }
    if (w->buf) {
        if (w->len + n > w->cap) {
            w->bad = 1;
            return;
        }
        memcpy(w->buf + w->len, p, n);
    }
    w->len += n;
}

static void put_byte(struct wr *w, unsigned char ch)
{
    put(w, &ch, 1);
}

static void put_str(struct wr *w, const char *s)
{
    put(w, s, strlen(s));
}

static void put_line(struct wr *w, const struct conv *c, const char *s)
{
    put_str(w, s);
    put(w, c->nl, c->nl_len);
}

static int lower(int ch)
{
    return ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch;
}

static int is_ws(unsigned char ch)
{
    return ch == ' ' || ch == '\t';
}

/* Line at p ends at *eol (before CR LF or LF); returns the next line's start. */
static size_t line_next(const struct conv *c, size_t p, size_t end, size_t *eol)
{
    const unsigned char *nl = memchr(c->m + p, '\n', end - p);
    if (!nl) {
        *eol = end;
        return end;
    }
    size_t i = (size_t)(nl - c->m);
    *eol = (i > p && c->m[i - 1] == '\r') ? i - 1 : i;
    return i + 1;
}

/* Is the field line [p, eol) named name (lower case)? Whitespace before the
 * colon is allowed, as core/mime.c allows it. */
static int field_is(const struct conv *c, size_t p, size_t eol, const char *name)
{
    const unsigned char *colon = memchr(c->m + p, ':', eol - p);
    if (!colon)
        return 0;
    size_t e = (size_t)(colon - c->m);
    while (e > p && is_ws(c->m[e - 1]))
        e--;
    size_t k = strlen(name);
    if (e - p != k)
        return 0;
    for (size_t i = 0; i < k; i++)
        if (lower(c->m[p + i]) != name[i])
            return 0;
    return 1;
}

/* The header block at [start, end), read as core/mime.c reads it: it ends
 * at an empty line (*body after it) or at a line that is neither a field
 * nor a continuation (*body at that line). Returns where the block's last
 * field ends, which is where a new field goes. */
static size_t header_end(const struct conv *c, size_t start, size_t end, size_t *body)
{
    size_t p = start;
    while (p < end) {
        size_t eol, next = line_next(c, p, end, &eol);
        if (eol == p) {
            *body = next;
            return p;
        }
        if (!is_ws(c->m[p]) && !memchr(c->m + p, ':', eol - p)) {
            *body = p;
            return p;
        }
        p = next;
    }
    *body = end;
    return end;
}

static int has_field(const struct conv *c, size_t start, size_t end, const char *name)
{
    for (size_t p = start; p < end;) {
        size_t eol, next = line_next(c, p, end, &eol);
        if (!is_ws(c->m[p]) && field_is(c, p, eol, name))
            return 1;
        p = next;
    }
    return 0;
}

static int has_high(const unsigned char *m, size_t a, size_t b)
{
    for (size_t i = a; i < b; i++)
        if (m[i] >= 0x80)
            return 1;
    return 0;
}

static int is_text(const struct mime_leaf *l)
{
    return strncmp(l->type, "text/", 5) == 0;
}

static int wants_convert(const struct mime_leaf *l)
{
    return l->eightbit && !l->in_signed;
}

/* Decoders for leaves already encoded -------------------------------------- */

static int hexval(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = (unsigned char)lower(ch);
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

static int at_break(const unsigned char *s, size_t n, size_t j)
{
    return j == n || s[j] == '\n' || (s[j] == '\r' && j + 1 < n && s[j + 1] == '\n');
}

/* Quoted-printable, leniently: "=XX" and soft breaks decoded, a lone '='
 * kept, trailing whitespace dropped (RFC 2045 6.7 (3)), anything else,
 * raw 8-bit octets included, taken as itself. Returns the decoded length
 * (never more than n). */
static size_t qp_decode(const unsigned char *s, size_t n, unsigned char *out)
{
    size_t i = 0, o = 0;
    while (i < n) {
        unsigned char ch = s[i];
        if (is_ws(ch)) {
            size_t j = i;
            while (j < n && is_ws(s[j]))
                j++;
            if (!at_break(s, n, j)) {
                memcpy(out + o, s + i, j - i);
                o += j - i;
            }
            i = j;
        } else if (ch == '=') {
            if (i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
                out[o++] = (unsigned char)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
                i += 3;
                continue;
            }
            size_t j = i + 1;
            while (j < n && is_ws(s[j]))
                j++;
            if (j == n)
                i = j;
            else if (s[j] == '\n')
                i = j + 1;
            else if (s[j] == '\r' && j + 1 < n && s[j + 1] == '\n')
                i = j + 2;
            else
                out[o++] = s[i++];
        } else {
            out[o++] = ch;
            i++;
        }
    }
    return o;
}

static int b64val(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '+') return 62;
    if (ch == '/') return 63;
    return -1;
}

/* Base64, leniently: characters outside the alphabet are ignored (RFC 2045
 * 6.8); '=' ends a quantum, so concatenated encodings still decode. */
static size_t b64_decode_lenient(const unsigned char *s, size_t n, unsigned char *out)
{
    unsigned long acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '=') {
            acc = 0;
            bits = 0;
            continue;
        }
        int v = b64val(s[i]);
        if (v < 0)
            continue;
        acc = (acc << 6 | (unsigned long)v) & 0xffffffUL;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    return o;
}

/* Encoders ------------------------------------------------------------------ */

static const char hexdigits[] = "0123456789ABCDEF";

/* Quoted-printable (RFC 2045 6.7). text: CRLF and LF are hard line breaks,
 * kept as they are; otherwise every CR and LF is encoded. Trailing
 * whitespace and '=' are encoded; no encoded line starts with '-' (it is
 * written =2D there), so none can look like a MIME delimiter, whatever the
 * boundary (one such as "=E9" could otherwise match an escape). */
static void qp_encode(struct wr *w, const struct conv *c, const unsigned char *s, size_t n,
                      int text)
{
    size_t col = 0;
    for (size_t i = 0; i < n;) {
        unsigned char ch = s[i];
        if (text && ch == '\n') {
            put_byte(w, '\n');
            col = 0;
            i++;
            continue;
        }
        if (text && ch == '\r' && i + 1 < n && s[i + 1] == '\n') {
            put(w, "\r\n", 2);
            col = 0;
            i += 2;
            continue;
        }
        int eol = text ? at_break(s, n, i + 1) : i + 1 == n;
        int enc = !(ch >= 33 && ch <= 126 && ch != '=') && !(is_ws(ch) && !eol);
        size_t tok = enc ? 3 : 1;
        if (col + tok > QP_TEXT_MAX && !(eol && col + tok <= CONVERT_QP_LINE_MAX)) {
            put_byte(w, '=');
            put(w, c->nl, c->nl_len);
            col = 0;
        }
        if (col == 0 && ch == '-') {
            enc = 1;
            tok = 3;
        }
        if (enc) {
            unsigned char t[3] = { '=', (unsigned char)hexdigits[ch >> 4],
                                   (unsigned char)hexdigits[ch & 15] };
            put(w, t, 3);
        } else {
            put_byte(w, ch);
        }
        col += tok;
        i++;
    }
}

/* Base64 (RFC 2045 6.8) in lines of CONVERT_B64_LINE_MAX characters. */
static void b64_encode_lines(struct wr *w, const struct conv *c, const unsigned char *s, size_t n)
{
    char line[BASE64_ENCODED_SIZE(B64_CHUNK)];
    for (size_t i = 0; i < n; i += B64_CHUNK) {
        size_t k = n - i < B64_CHUNK ? n - i : B64_CHUNK;
        long e = base64_encode(s + i, k, line, sizeof line);
        if (e < 0) {
            w->bad = 1;
            return;
        }
        if (i > 0)
            put(w, c->nl, c->nl_len);
        put(w, line, (size_t)e);
    }
}

/* The pieces ---------------------------------------------------------------- */

/* The top-level MIME-Version line, at the end of the header block that ends
 * at pos. */
static void put_mime_version(struct wr *w, const struct conv *c, size_t start, size_t pos)
{
    if (pos > start && c->m[pos - 1] != '\n')
        put(w, c->nl, c->nl_len);
    put_line(w, c, MIME_VER_LINE);
}

/* One re-encoded leaf: its headers without any Content-Transfer-Encoding
 * field (continuation lines included), the new field, the blank line, and
 * the content in its new encoding. Returns -1 when out of memory. */
static int put_leaf(struct wr *w, const struct conv *c, const struct mime_leaf *l, int mime_version)
{
    size_t body, hend = header_end(c, l->start, l->body, &body);
    int skipping = 0;
    for (size_t p = l->start; p < hend;) {
        size_t eol, next = line_next(c, p, hend, &eol);
        if (!is_ws(c->m[p]))
            skipping = field_is(c, p, eol, CTE_NAME);
        if (!skipping) {
            put(w, c->m + p, next - p);
            if (next == eol)        /* the last line of the input, without a break */
                put(w, c->nl, c->nl_len);
        }
        p = next;
    }

    const unsigned char *src = c->m + l->body;
    size_t n = l->end - l->body;
    unsigned char *tmp = NULL;
    int qp;
    switch (l->cte) {
    case MIME_CTE_QP:
    case MIME_CTE_BASE64:
        tmp = malloc(n ? n : 1);
        if (!tmp)
            return -1;
        n = l->cte == MIME_CTE_QP ? qp_decode(src, n, tmp) : b64_decode_lenient(src, n, tmp);
        src = tmp;
        qp = l->cte == MIME_CTE_QP;
        break;
    default:
        qp = is_text(l);
        break;
    }
    put_line(w, c, qp ? CTE_QP_LINE : CTE_B64_LINE);
    if (mime_version)
        put_line(w, c, MIME_VER_LINE);
    if (body > hend)
        put(w, c->m + hend, body - hend);   /* the blank line, as it was */
    else
        put(w, c->nl, c->nl_len);
    if (qp) {
        qp_encode(w, c, src, n, is_text(l));
    } else {
        b64_encode_lines(w, c, src, n);
        /* A delimiter's line break follows a part; at the end, end the line. */
        if (n > 0 && l->end == c->len)
            put(w, c->nl, c->nl_len);
    }
    free(tmp);
    return 0;
}

/* The whole output; w->buf NULL only counts. */
static int put_message(struct wr *w, const struct conv *c)
{
    size_t pos = 0;
    int mv_pending = c->add_mime_version;
    for (size_t i = 0; i < c->scan->nleaves; i++) {
        const struct mime_leaf *l = &c->scan->leaves[i];
        if (!wants_convert(l))
            continue;
        if (mv_pending && l->start != 0) {
            put(w, c->m + pos, c->top_hdr_end - pos);
            put_mime_version(w, c, 0, c->top_hdr_end);
            pos = c->top_hdr_end;
            mv_pending = 0;
        }
        put(w, c->m + pos, l->start - pos);
        if (put_leaf(w, c, l, mv_pending) != 0)
            return -1;
        mv_pending = 0;
        pos = l->end;
    }
    put(w, c->m + pos, c->len - pos);
    return 0;
}

/* Refusals ------------------------------------------------------------------ */

static int scan_fits(const struct mime_scan *s, size_t len)
{
    size_t prev = 0;
    if (s->nleaves > MIME_MAX_LEAVES)
        return 0;
    for (size_t i = 0; i < s->nleaves; i++) {
        const struct mime_leaf *l = &s->leaves[i];
        if (l->start < prev || l->start > l->body || l->body > l->end || l->end > len)
            return 0;
        prev = l->end;
    }
    return 1;
}

/* Is position i inside some leaf's header block? */
static int in_leaf_headers(const struct mime_scan *s, size_t i)
{
    for (size_t k = 0; k < s->nleaves; k++)
        if (i >= s->leaves[k].start && i < s->leaves[k].body)
            return 1;
    return 0;
}

/* Every 8-bit octet must lie in the content of a leaf being re-encoded. */
static const char *check_outside(const struct conv *c, size_t top_body)
{
    size_t pos = 0;
    for (size_t k = 0; k <= c->scan->nleaves; k++) {
        const struct mime_leaf *l = k < c->scan->nleaves ? &c->scan->leaves[k] : NULL;
        if (l && !wants_convert(l))
            continue;
        size_t stop = l ? l->body : c->len;
        for (size_t i = pos; i < stop; i++)
            if (c->m[i] >= 0x80)
                return i < top_body || in_leaf_headers(c->scan, i) ? why_header : why_outside;
        if (l)
            pos = l->end;
    }
    return NULL;
}

enum convert_result convert_7bit(const unsigned char *msg, size_t len, const struct mime_scan *scan,
                                 unsigned char **out, size_t *out_len, const char **why)
{
    const char *refusal = NULL;
    *out = NULL;
    *out_len = 0;
    if (why)
        *why = NULL;
    if (!msg && len > 0)
        len = 0;

    struct conv c = { msg, len, scan, "\r\n", 2, 0, 0 };
    const unsigned char *first_nl = len ? memchr(msg, '\n', len) : NULL;
    if (first_nl && (first_nl == msg || first_nl[-1] != '\r')) {
        c.nl = "\n";
        c.nl_len = 1;
    }

    size_t top_body, nconv = 0;
    if (!scan || !scan_fits(scan, len)) {
        refusal = why_scan;
        goto refused;
    }
    int signed_8bit = (scan->flags & MIME_8BIT_SIGNED) != 0;
    for (size_t i = 0; i < scan->nleaves; i++)
        if (scan->leaves[i].eightbit && scan->leaves[i].in_signed)
            signed_8bit = 1;
    if (signed_8bit) {
        refusal = why_signed;
        goto refused;
    }
    if (!(scan->flags & MIME_8BIT) && !has_high(msg, 0, len))
        return CONVERT_UNCHANGED;
    if (scan->flags & MIME_LIMIT) {
        refusal = why_limit;
        goto refused;
    }
    for (size_t i = 0; i < scan->nleaves; i++) {
        if (!wants_convert(&scan->leaves[i]))
            continue;
        if (scan->leaves[i].cte == MIME_CTE_OTHER) {
            refusal = why_unknown_cte;
            goto refused;
        }
        nconv++;
    }
    c.top_hdr_end = header_end(&c, 0, len, &top_body);
    refusal = check_outside(&c, top_body);
    if (refusal)
        goto refused;
    if (nconv == 0)
        return CONVERT_UNCHANGED;   /* only an 8bit label on a multipart: nothing is 8-bit */
    if (scan->leaves[0].start != 0 && c.top_hdr_end > scan->leaves[0].start) {
        refusal = why_scan;
        goto refused;
    }
    c.add_mime_version = !has_field(&c, 0, c.top_hdr_end, MIME_VERSION);

    struct wr count = { NULL, 0, 0, 0 };
    if (put_message(&count, &c) != 0)
        return CONVERT_NOMEM;
    if (count.bad)
        return CONVERT_NOMEM;       /* the size does not fit in size_t */
    struct wr fill = { malloc(count.len ? count.len : 1), count.len, 0, 0 };
    if (!fill.buf)
        return CONVERT_NOMEM;
    if (put_message(&fill, &c) != 0 || fill.bad || fill.len != count.len) {
        free(fill.buf);
        return CONVERT_NOMEM;
    }
    *out = fill.buf;
    *out_len = fill.len;
    return CONVERT_OK;

refused:
    if (why)
        *why = refusal;
    return CONVERT_REFUSED;
}
