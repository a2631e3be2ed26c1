/* hdrrewrite.c - addresses in header fields, found and rewritten (see
 * hdrrewrite.h, docs/addresses.md).
 *
 * Reads a header block and writes a copy in which only addr-specs may
 * differ. It must never change a signed message, an octet outside an
 * address, or an address rewrite_sender does not change; it must never
 * guess at a block it cannot read (it is then left as it is).
 */
#include "hdrrewrite.h"

#include <string.h>

#include "mime.h"
#include "obuf.h"

static int lower(int c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static int name_eq(const char *s, size_t n, const char *lit)
{
    if (strlen(lit) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)s[i]) != lower((unsigned char)lit[i]))
            return 0;
    return 1;
}

/* The walk over an address-list ------------------------------------------------ */

/* After the quoted-string that starts at i (a '"'). */
static size_t skip_quoted(const char *v, size_t len, size_t i)
{
    for (i++; i < len; i++) {
        if (v[i] == '\\' && i + 1 < len)
            i++;
        else if (v[i] == '"')
            return i + 1;
    }
    return len;
}

/* After the (nested) comment that starts at i (a '('). */
static size_t skip_comment(const char *v, size_t len, size_t i)
{
    size_t depth = 0;
    for (; i < len; i++) {
        if (v[i] == '\\' && i + 1 < len)
            i++;
        else if (v[i] == '(')
            depth++;
        else if (v[i] == ')' && --depth == 0)
            return i + 1;
    }
    return len;
}

/* After an encoded word (RFC 2047: =?charset?X?text?=, no white space)
 * that starts at i, or i when there is none. */
static size_t skip_encoded_word(const char *v, size_t len, size_t i)
{
    size_t k = i + 2, q = 0;
    if (i + 1 >= len || v[i] != '=' || v[i + 1] != '?')
        return i;
    for (; k + 1 < len && !is_space(v[k]); k++) {
        if (v[k] != '?')
            continue;
        if (++q >= 3 && v[k + 1] == '=')
            return k + 2;
    }
    return i;
}

/* After the '>' of the angle-addr that starts at i, *end at the '>' (len
 * when there is none). */
static size_t skip_angle(const char *v, size_t len, size_t i, size_t *end)
{
    for (i++; i < len; i++) {
        if (v[i] == '"')
            i = skip_quoted(v, len, i) - 1;
        else if (v[i] == '(')
            i = skip_comment(v, len, i) - 1;
        else if (v[i] == '>')
            break;
    }
    *end = i;
    return i < len ? i + 1 : len;
}

void hdr_addr_begin(struct hdr_addr_iter *it, const char *v, size_t len)
{
    it->v = v;
    it->len = len;
    it->pos = 0;
}

int hdr_addr_next(struct hdr_addr_iter *it, struct hdr_addr *a)
{
    const char *v = it->v;
    size_t len = it->len, i = it->pos;
    while (i < len) {
        size_t t0 = 0, t1 = 0, a0 = 0, a1 = 0;
        int tokens = 0, angles = 0, after_angle = 0;
        while (i < len && v[i] != ',' && v[i] != ';') {
            char c = v[i];
            if (is_space(c)) {
                i++;
            } else if (c == '(') {
                i = skip_comment(v, len, i);
            } else if (c == '<') {
                angles++;
                a0 = i + 1;
                i = skip_angle(v, len, i, &a1);
                if (a1 >= len)
                    angles++;   /* no '>': not an address */
            } else if (c == ':' && !angles) {
                tokens = 0;     /* a group's name: its addresses follow */
                i++;
            } else {
                size_t e = c == '"' ? skip_quoted(v, len, i) : skip_encoded_word(v, len, i);
                if (e == i)
                    e = i + 1;
                if (angles)
                    after_angle = 1;
                if (!tokens++)
                    t0 = i;
                t1 = e;
                i = e;
            }
        }
        if (i < len)
            i++;    /* the ',' or the ';' that ends a group */
        if (angles == 1 && !after_angle) {
            while (a0 < a1 && is_space(v[a0]))
                a0++;
            while (a1 > a0 && is_space(v[a1 - 1]))
                a1--;
            if (a1 > a0) {
                it->pos = i;
                a->start = a0;
                a->end = a1;
                a->angle = 1;
                return 1;
            }
        } else if (!angles && tokens) {
            it->pos = i;
            a->start = t0;
            a->end = t1;
            a->angle = 0;
            return 1;
        }
    }
    it->pos = len;
    return 0;
}

/* The header block ------------------------------------------------------------------ */

static const char *const address_fields[] = {
    "From", "Sender", "Reply-To", "To", "Cc",
    "Resent-From", "Resent-Sender", "Resent-To", "Resent-Cc",
};

int hdrrewrite_field(const char *name, size_t n)
{
    for (size_t i = 0; i < sizeof address_fields / sizeof address_fields[0]; i++)
        if (name_eq(name, n, address_fields[i]))
            return 1;
    return 0;
}

/* One field: h[start, end) with its folded lines; the name is
 * h[start, name_end); the value h[value, end). */
struct field {
    size_t start, name_end, value, end;
};

/* The end of the line at p (before its CR LF or LF) into *eol; returns the
 * next line's start. */
static size_t line_next(const char *h, size_t len, size_t p, size_t *eol)
{
    const char *nl = memchr(h + p, '\n', len - p);
    size_t i = nl ? (size_t)(nl - h) : len;
    *eol = (i > p && h[i - 1] == '\r') ? i - 1 : i;
    return nl ? i + 1 : len;
}

/* The field at *pos: 1 (and *pos after it), 0 at the empty line or the end
 * (*pos at it), -1 when the line there is not a field. */
static int next_field(const char *h, size_t len, size_t *pos, struct field *f)
{
    size_t p = *pos, eol, next;
    if (p >= len)
        return 0;
    next = line_next(h, len, p, &eol);
    if (eol == p)
        return 0;
    if (h[p] == ' ' || h[p] == '\t')
        return -1;
    const char *colon = memchr(h + p, ':', eol - p);
    if (!colon)
        return -1;
    size_t ne = (size_t)(colon - h);
    while (ne > p && (h[ne - 1] == ' ' || h[ne - 1] == '\t'))
        ne--;
    if (ne == p)
        return -1;
    for (size_t k = p; k < ne; k++)
        if ((unsigned char)h[k] < 33 || (unsigned char)h[k] > 126)
            return -1;
    f->start = p;
    f->name_end = ne;
    f->value = (size_t)(colon - h) + 1;
    while (next < len && (h[next] == ' ' || h[next] == '\t'))
        next = line_next(h, len, next, &eol);
    f->end = next;
    *pos = next;
    return 1;
}

/* Why the block is left alone, or NULL when its addresses may be rewritten. */
static const char *untouchable(const char *h, size_t len, enum hdrrewrite_result *r)
{
    struct field f;
    size_t pos = 0;
    int k;
    *r = HDRREWRITE_TOO_BIG;
    if (len > HDRREWRITE_BLOCK_MAX)
        return "the header is larger than the header rewriting limit";
    *r = HDRREWRITE_SIGNED;
    while ((k = next_field(h, len, &pos, &f)) == 1) {
        const char *name = h + f.start;
        size_t n = f.name_end - f.start;
        if (name_eq(name, n, "DKIM-Signature"))
            return "the message carries a DKIM signature";
        if (name_eq(name, n, "Content-Type")) {
            char type[MIME_TYPE_MAX];
            mime_content_type(h + f.value, f.end - f.value, type);
            if (strcmp(type, "multipart/signed") == 0 ||
                strcmp(type, "application/pkcs7-mime") == 0 ||
                strcmp(type, "application/x-pkcs7-mime") == 0)
                return "the message is signed or encrypted (S/MIME)";
        }
    }
    *r = HDRREWRITE_MALFORMED;
    if (k < 0)
        return "a header line is neither a field nor the continuation of one";
    *r = HDRREWRITE_UNCHANGED;
    return NULL;
}

enum { END_BOL, END_BOL_CR, END_MID };   /* hdr_end.state: where the search is */

size_t hdr_end_feed(struct hdr_end *h, const char *p, size_t len, int *end)
{
    *end = 0;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (c == '\n' && h->state != END_MID) {
            *end = 1;
            return i + 1;
        }
        h->state = c == '\n' ? END_BOL : c == '\r' && h->state == END_BOL ? END_BOL_CR : END_MID;
    }
    return len;
}

/* The copy being written: line_out is where its current line starts. */
struct writer {
    struct obuf o;
    size_t line_out;
};

static void copy(struct writer *w, const char *s, size_t n)
{
    size_t at = w->o.len;
    ob_put(&w->o, s, n);
    for (size_t k = n; k > 0; k--)
        if (s[k - 1] == '\n') {
            w->line_out = at + k;
            break;
        }
}

/* What the address a (n octets) becomes: its length in to, or -1 when it
 * stays as written. */
static int decide(const struct rewrite_config *c, const char *a, size_t n, char *to, size_t cap)
{
    struct addr_path p;
    struct addr_error err;
    struct rewrite_verdict v;
    if (addr_parse_mailbox(a, n, ADDR_MAIL, &p, &err) != 0)
        return -1;
    if (rewrite_sender(c, &p, &v) != 0 || v.result != REWRITE_CHANGED)
        return -1;
    int w = addr_format_mailbox(rewrite_target(&v, 0), to, cap);
    if (w <= 0 || ((size_t)w == n && memcmp(to, a, n) == 0))
        return -1;
    return w;
}

/* The field f into w, its addresses rewritten; *done: octets of h copied. */
static void rewrite_field(const struct rewrite_config *c, const char *h, size_t len,
                          const struct field *f, struct writer *w, size_t *done,
                          struct hdrrewrite_report *rep)
{
    struct hdr_addr_iter it;
    struct hdr_addr a;
    char to[ADDR_PATH_MAX + 1];
    hdr_addr_begin(&it, h + f->value, f->end - f->value);
    while (hdr_addr_next(&it, &a)) {
        size_t s = f->value + a.start, e = f->value + a.end, n = e - s, eol;
        int k = decide(c, h + s, n, to, sizeof to);
        if (k < 0) {
            rep->kept++;
            continue;
        }
        copy(w, h + *done, s - *done);
        line_next(h, len, e, &eol);
        size_t line = w->o.len - w->line_out + (size_t)k + (eol - e);
        if ((size_t)k > n && line > HDRREWRITE_LINE_MAX) {
            copy(w, h + s, n);
            rep->kept++;
            rep->too_long++;
        } else {
            copy(w, to, (size_t)k);
            rep->changed++;
        }
        *done = e;
    }
}

size_t hdrrewrite_block(const struct rewrite_config *c, const char *hdr, size_t len, char *out,
                        size_t cap, struct hdrrewrite_report *rep)
{
    memset(rep, 0, sizeof *rep);
    rep->why = untouchable(hdr, len, &rep->result);
    if (rep->why)
        return 0;
    rep->why = "";
    struct writer w = { { out, cap, 0 }, 0 };
    struct field f;
    size_t pos = 0, done = 0;
    while (next_field(hdr, len, &pos, &f) == 1)
        if (hdrrewrite_field(hdr + f.start, f.name_end - f.start))
            rewrite_field(c, hdr, len, &f, &w, &done, rep);
    if (!rep->changed)
        return 0;
    copy(&w, hdr + done, len - done);
    if (cap)
        out[w.o.len < cap ? w.o.len : cap - 1] = 0;
    rep->result = HDRREWRITE_CHANGED;
    return w.o.len;
}
