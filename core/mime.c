/* mime.c - MIME structure scanner (see mime.h).
 *
 * One pass per nesting level: an entity's headers are read for Content-Type
 * and Content-Transfer-Encoding, then a multipart body is cut at its
 * delimiter lines (RFC 2046 5.1.1) and each part is scanned as an entity; a
 * message/rfc822 body is scanned as an entity; anything else is a leaf.
 * Must never write to the message, allocate, or recurse without bound.
 */
#include "mime.h"

#include <string.h>

#define PARAM_MAX 128   /* longest parameter value kept; longer ones are ignored */
#define ATTR_MAX  32

struct span {
    size_t a, b;        /* [a, b) */
};

struct ctx {
    const unsigned char *m;
    size_t len;
    struct mime_scan *out;
};

struct headers {
    struct span ct, cte;
    int have_ct, have_cte;
    size_t body;        /* first octet of the body */
};

struct ctype {
    char type[MIME_TYPE_MAX];
    char boundary[MIME_BOUNDARY_MAX + 1];
    size_t blen;        /* 0: no usable boundary */
    char smime[ATTR_MAX];
};

static int lower(int ch)
{
    return ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch;
}

static int eq_ci(const unsigned char *s, size_t n, const char *lit)
{
    size_t k = strlen(lit);
    if (n != k)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (lower(s[i]) != lit[i])
            return 0;
    return 1;
}

static int has_high(const struct ctx *c, size_t a, size_t b)
{
    for (size_t i = a; i < b; i++)
        if (c->m[i] >= 0x80)
            return 1;
    return 0;
}

/* The line at p ends at *eol (before CR LF or LF); returns the next line's start. */
static size_t line_next(const struct ctx *c, size_t p, size_t end, size_t *eol)
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

/* Header block of the entity at [start, end). A line that is neither a field
 * nor a continuation ends the headers: it is taken as the start of the body. */
static void parse_headers(const struct ctx *c, size_t start, size_t end, struct headers *h)
{
    struct span *cur = NULL;
    memset(h, 0, sizeof *h);
    h->body = end;
    size_t p = start;
    while (p < end) {
        size_t eol, next = line_next(c, p, end, &eol);
        if (eol == p) {
            h->body = next;
            return;
        }
        if (c->m[p] == ' ' || c->m[p] == '\t') {
            if (cur)
                cur->b = eol;
            p = next;
            continue;
        }
        const unsigned char *colon = memchr(c->m + p, ':', eol - p);
        if (!colon) {
            h->body = p;
            return;
        }
        size_t vstart = (size_t)(colon - c->m) + 1, nend = vstart - 1;
        while (nend > p && (c->m[nend - 1] == ' ' || c->m[nend - 1] == '\t'))
            nend--;
        cur = NULL;
        if (eq_ci(c->m + p, nend - p, "content-type") && !h->have_ct) {
            h->have_ct = 1;
            cur = &h->ct;
        } else if (eq_ci(c->m + p, nend - p, "content-transfer-encoding") && !h->have_cte) {
            h->have_cte = 1;
            cur = &h->cte;
        }
        if (cur) {
            cur->a = vstart;
            cur->b = eol;
        }
        p = next;
    }
}

/* Whitespace, line folds and (nested) comments. */
static size_t skip_cfws(const struct ctx *c, size_t p, size_t e)
{
    size_t depth = 0;
    while (p < e) {
        unsigned char ch = c->m[p];
        if (depth > 0) {
            if (ch == '\\' && p + 1 < e)
                p++;
            else if (ch == '(')
                depth++;
            else if (ch == ')')
                depth--;
            p++;
        } else if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
            p++;
        } else if (ch == '(') {
            depth = 1;
            p++;
        } else {
            break;
        }
    }
    return p;
}

static int is_token_char(unsigned char ch)
{
    return ch > 32 && ch < 127 && !strchr("()<>@,;:\\\"/[]?=", ch);
}

/* A token at p, copied (lowercased if asked) into buf when it fits; *n gets
 * its full length. Returns the position after it. */
static size_t take_token(const struct ctx *c, size_t p, size_t e, char *buf, size_t cap,
                         int fold, size_t *n)
{
    size_t k = 0;
    while (p < e && is_token_char(c->m[p])) {
        if (k + 1 < cap)
            buf[k] = (char)(fold ? lower(c->m[p]) : c->m[p]);
        k++;
        p++;
    }
    buf[k < cap ? k : cap - 1] = '\0';
    *n = k;
    return p;
}

/* A quoted-string at p (which is '"'): unescaped and unfolded into buf. */
static size_t take_quoted(const struct ctx *c, size_t p, size_t e, char *buf, size_t cap,
                          size_t *n)
{
    size_t k = 0;
    for (p++; p < e && c->m[p] != '"'; p++) {
        unsigned char ch = c->m[p];
        if (ch == '\r' || ch == '\n')
            continue;
        if (ch == '\\' && p + 1 < e)
            ch = c->m[++p];
        if (k + 1 < cap)
            buf[k] = (char)ch;
        k++;
    }
    buf[k < cap ? k : cap - 1] = '\0';
    *n = k;
    return p < e ? p + 1 : p;
}

/* Content-Type value: type/subtype and the parameters we act on. A value that
 * does not parse leaves the default (RFC 2045 5.2). */
static void parse_ctype(const struct ctx *c, struct span s, struct ctype *t)
{
    char major[MIME_TYPE_MAX], minor[MIME_TYPE_MAX];
    size_t n1, n2, p = skip_cfws(c, s.a, s.b);
    p = take_token(c, p, s.b, major, sizeof major, 1, &n1);
    p = skip_cfws(c, p, s.b);
    if (n1 == 0 || n1 >= sizeof major || p >= s.b || c->m[p] != '/')
        return;
    p = take_token(c, skip_cfws(c, p + 1, s.b), s.b, minor, sizeof minor, 1, &n2);
    if (n2 == 0 || n1 + 1 + n2 >= sizeof t->type)
        return;
    memcpy(t->type, major, n1);
    t->type[n1] = '/';
    memcpy(t->type + n1 + 1, minor, n2 + 1);

    for (;;) {
        char attr[ATTR_MAX], val[PARAM_MAX];
        size_t na, nv;
        p = skip_cfws(c, p, s.b);
        if (p >= s.b || c->m[p] != ';')
            return;
        p = take_token(c, skip_cfws(c, p + 1, s.b), s.b, attr, sizeof attr, 1, &na);
        p = skip_cfws(c, p, s.b);
        if (na == 0 || p >= s.b || c->m[p] != '=')
            return;
        p = skip_cfws(c, p + 1, s.b);
        if (p < s.b && c->m[p] == '"')
            p = take_quoted(c, p, s.b, val, sizeof val, &nv);
        else
            p = take_token(c, p, s.b, val, sizeof val, 0, &nv);
        if (na >= sizeof attr || nv >= sizeof val)
            continue;
        if (strcmp(attr, "boundary") == 0 && nv >= 1 && nv <= MIME_BOUNDARY_MAX && !t->blen) {
            memcpy(t->boundary, val, nv + 1);
            t->blen = nv;
        } else if (strcmp(attr, "smime-type") == 0 && nv < sizeof t->smime) {
            for (size_t i = 0; i <= nv; i++)
                t->smime[i] = (char)lower((unsigned char)val[i]);
        }
    }
}

static enum mime_cte parse_cte(const struct ctx *c, struct span s)
{
    char tok[32];
    size_t n;
    take_token(c, skip_cfws(c, s.a, s.b), s.b, tok, sizeof tok, 1, &n);
    if (n >= sizeof tok)
        return MIME_CTE_OTHER;
    static const struct { const char *name; enum mime_cte cte; } names[] = {
        { "7bit", MIME_CTE_7BIT }, { "8bit", MIME_CTE_8BIT }, { "binary", MIME_CTE_BINARY },
        { "quoted-printable", MIME_CTE_QP }, { "base64", MIME_CTE_BASE64 },
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(tok, names[i].name) == 0)
            return names[i].cte;
    return MIME_CTE_OTHER;
}

/* 0: not a delimiter line of this boundary; 1: delimiter; 2: close delimiter. */
static int delimiter_kind(const struct ctx *c, size_t p, size_t eol, const char *bnd, size_t blen)
{
    if (eol - p < blen + 2 || c->m[p] != '-' || c->m[p + 1] != '-' ||
        memcmp(c->m + p + 2, bnd, blen) != 0)
        return 0;
    size_t q = p + 2 + blen;
    int close = 0;
    if (eol - q >= 2 && c->m[q] == '-' && c->m[q + 1] == '-') {
        close = 1;
        q += 2;
    }
    while (q < eol && (c->m[q] == ' ' || c->m[q] == '\t'))
        q++;
    return q == eol ? 1 + close : 0;
}

static void add_leaf(struct ctx *c, size_t start, size_t body, size_t end, const char *type,
                     enum mime_cte cte, int in_signed)
{
    int eight = cte == MIME_CTE_8BIT || cte == MIME_CTE_BINARY || has_high(c, start, end);
    if (eight && in_signed)
        c->out->flags |= MIME_8BIT_SIGNED;
    if (c->out->nleaves >= MIME_MAX_LEAVES) {
        c->out->flags |= MIME_LIMIT;
        return;
    }
    struct mime_leaf *l = &c->out->leaves[c->out->nleaves++];
    l->start = start;
    l->body = body;
    l->end = end;
    memcpy(l->type, type, sizeof l->type);
    l->cte = cte;
    l->eightbit = (unsigned char)eight;
    l->in_signed = (unsigned char)(in_signed != 0);
}

static int scan_entity(struct ctx *c, size_t start, size_t end, unsigned depth, int in_signed,
                       int in_rfc822, int digest);

/* The parts of a multipart body at [body, end). Returns how many parts were
 * found (-1 if no delimiter at all); *last_signed tells whether the last one
 * scanned was itself signed. */
static long scan_parts(struct ctx *c, size_t body, size_t end, const struct ctype *t,
                       unsigned depth, int in_signed, int *last_signed)
{
    int digest = strcmp(t->type, "multipart/digest") == 0;
    int open = 0;
    long nparts = 0;
    size_t part = 0, p = body;
    while (p < end) {
        size_t eol, next = line_next(c, p, end, &eol);
        int kind = delimiter_kind(c, p, eol, t->boundary, t->blen);
        if (kind) {
            if (open) {
                /* The line break before a delimiter belongs to the delimiter. */
                size_t pe = p;
                if (pe > part && c->m[pe - 1] == '\n')
                    pe--;
                if (pe > part && c->m[pe - 1] == '\r')
                    pe--;
                nparts++;
                *last_signed = scan_entity(c, part, pe, depth, in_signed, 0, digest);
            }
            if (kind == 2)
                return nparts;
            open = 1;
            part = next;
        }
        p = next;
    }
    c->out->flags |= MIME_UNCLOSED;
    if (!open)
        return -1;
    nparts++;
    *last_signed = scan_entity(c, part, end, depth, in_signed, 0, digest);
    return nparts;
}

/* Scan the entity at [start, end); returns 1 if it is itself signed. */
static int scan_entity(struct ctx *c, size_t start, size_t end, unsigned depth, int in_signed,
                       int in_rfc822, int digest)
{
    struct headers h;
    struct ctype t;
    memset(&t, 0, sizeof t);
    strcpy(t.type, digest ? "message/rfc822" : "text/plain");
    parse_headers(c, start, end, &h);
    if (h.have_ct)
        parse_ctype(c, h.ct, &t);
    enum mime_cte cte = h.have_cte ? parse_cte(c, h.cte) : MIME_CTE_7BIT;
    int identity = cte == MIME_CTE_7BIT || cte == MIME_CTE_8BIT || cte == MIME_CTE_BINARY;
    if (cte == MIME_CTE_8BIT || cte == MIME_CTE_BINARY)
        c->out->flags |= in_signed ? MIME_8BIT | MIME_8BIT_SIGNED : MIME_8BIT;

    int signed_here = 0;
    if (strcmp(t.type, "multipart/signed") == 0) {
        c->out->flags |= MIME_SIGNED_CLEAR;
        signed_here = 1;
    } else if (strcmp(t.type, "application/pkcs7-mime") == 0 ||
               strcmp(t.type, "application/x-pkcs7-mime") == 0) {
        /* Without a recognised smime-type we cannot tell signed from not:
         * the safe reading is that it is signed and must not be touched. */
        if (strcmp(t.smime, "enveloped-data") == 0 || strcmp(t.smime, "authenveloped-data") == 0) {
            c->out->flags |= MIME_ENCRYPTED;
        } else {
            c->out->flags |= MIME_SIGNED_OPAQUE;
            signed_here = 1;
        }
    }
    if (signed_here) {
        if (in_rfc822)
            c->out->flags |= MIME_ENVELOPE;
        if (has_high(c, h.body, end))
            c->out->flags |= MIME_8BIT_SIGNED;
        in_signed = 1;
    }

    int multipart = strncmp(t.type, "multipart/", 10) == 0 && t.blen > 0;
    int message = strcmp(t.type, "message/rfc822") == 0;
    if ((multipart || message) && identity) {
        if (depth >= MIME_MAX_DEPTH) {
            c->out->flags |= MIME_LIMIT;
        } else if (message) {
            scan_entity(c, h.body, end, depth + 1, in_signed, 1, 0);
            return signed_here;
        } else {
            int last_signed = 0;
            long n = scan_parts(c, h.body, end, &t, depth + 1, in_signed, &last_signed);
            if (n == 1 && last_signed)
                c->out->flags |= MIME_ENVELOPE;
            if (n >= 0)
                return signed_here;
        }
    }
    add_leaf(c, start, h.body, end, t.type, cte, in_signed);
    return signed_here;
}

void mime_scan(const unsigned char *msg, size_t len, struct mime_scan *out)
{
    struct ctx c = { msg, len, out };
    out->flags = 0;
    out->nleaves = 0;
    if (has_high(&c, 0, len))
        out->flags |= MIME_8BIT;
    scan_entity(&c, 0, len, 0, 0, 0, 0);
    for (size_t i = 0; i < out->nleaves; i++)
        if (out->leaves[i].eightbit)
            out->flags |= MIME_8BIT;
    if (out->flags & MIME_8BIT_SIGNED)
        out->flags |= MIME_8BIT;
}

enum mime_verdict mime_conversion_verdict(const struct mime_scan *scan, int peer_has_8bitmime,
                                          const char **why)
{
    enum mime_verdict v;
    const char *text;
    if (!(scan->flags & MIME_8BIT)) {
        v = MIME_VERDICT_OK;
        text = "The message is 7-bit and is relayed as it is.";
    } else if (peer_has_8bitmime) {
        v = MIME_VERDICT_OK;
        text = "The next hop accepts 8-bit content (8BITMIME); the message is relayed as it is.";
    } else if (scan->flags & MIME_8BIT_SIGNED) {
        v = MIME_VERDICT_REFUSE_SIGNED_8BIT;
        text = "The message has 8-bit content inside a digitally signed part and the next hop "
               "does not accept 8-bit data (no 8BITMIME); converting it to 7-bit would break "
               "the signature, so it was not sent.";
    } else if (scan->flags & MIME_LIMIT) {
        v = MIME_VERDICT_REFUSE_COMPLEX;
        text = "The message has 8-bit content and the next hop does not accept 8-bit data "
               "(no 8BITMIME); its MIME structure is too deeply nested or has too many parts "
               "to be converted to 7-bit safely, so it was not sent.";
    } else {
        v = MIME_VERDICT_CONVERT;
        text = "The next hop does not accept 8-bit data (no 8BITMIME); the 8-bit parts outside "
               "any signed part are converted to a 7-bit transfer encoding.";
    }
    if (why)
        *why = text;
    return v;
}

void mime_content_type(const char *v, size_t n, char type[MIME_TYPE_MAX])
{
    struct ctx c = { (const unsigned char *)v, n, NULL };
    struct ctype t;
    memset(&t, 0, sizeof t);
    parse_ctype(&c, (struct span){ 0, n }, &t);
    memcpy(type, t.type, MIME_TYPE_MAX);
}

int mime_has_8bit(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] & 0x80)
            return 1;
    return 0;
}
