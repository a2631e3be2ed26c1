/* x400.c - X.400 O/R addresses (see x400.h).
 *
 * One table lists the fields: key, where it is stored, its length limit and
 * its name for messages. The parser fills fields through the table; the
 * rules that relate fields to each other (required fields, personal name
 * needs surname) run after the whole address is read, so that a message
 * names the real cause rather than the first oddity seen. The absence of
 * PRMD must never be an error by itself.
 */
#include "x400.h"

#include <stdio.h>
#include <string.h>

enum field_id { F_C, F_A, F_P, F_O, F_OU1, F_OU2, F_OU3, F_OU4, F_S, F_G, F_I, F_Q, F_CN, F_COUNT };

static const struct field {
    const char *key;
    size_t offset;      /* into struct x400_addr */
    size_t max;
    const char *name;
} fields[F_COUNT] = {
    [F_C]   = { "c",   offsetof(struct x400_addr, c),     X400_C_MAX,  "country" },
    [F_A]   = { "a",   offsetof(struct x400_addr, a),     X400_A_MAX,  "ADMD" },
    [F_P]   = { "p",   offsetof(struct x400_addr, p),     X400_P_MAX,  "PRMD" },
    [F_O]   = { "o",   offsetof(struct x400_addr, o),     X400_O_MAX,  "organization" },
    [F_OU1] = { "ou1", offsetof(struct x400_addr, ou[0]), X400_OU_MAX, "organizational unit" },
    [F_OU2] = { "ou2", offsetof(struct x400_addr, ou[1]), X400_OU_MAX, "organizational unit" },
    [F_OU3] = { "ou3", offsetof(struct x400_addr, ou[2]), X400_OU_MAX, "organizational unit" },
    [F_OU4] = { "ou4", offsetof(struct x400_addr, ou[3]), X400_OU_MAX, "organizational unit" },
    [F_S]   = { "s",   offsetof(struct x400_addr, s),     X400_S_MAX,  "surname" },
    [F_G]   = { "g",   offsetof(struct x400_addr, g),     X400_G_MAX,  "given name" },
    [F_I]   = { "i",   offsetof(struct x400_addr, i),     X400_I_MAX,  "initials" },
    [F_Q]   = { "q",   offsetof(struct x400_addr, q),     X400_Q_MAX,  "generation qualifier" },
    [F_CN]  = { "cn",  offsetof(struct x400_addr, cn),    X400_CN_MAX, "common name" },
};

static char *field_ptr(struct x400_addr *a, int f) { return (char *)a + fields[f].offset; }
static const char *field_cptr(const struct x400_addr *a, int f) { return (const char *)a + fields[f].offset; }

static int lower(int c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

static int ieq(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    if (alen != blen)
        return 0;
    for (size_t i = 0; i < alen; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return 0;
    return 1;
}

static int fail(struct x400_error *err, const char *field, size_t flen, const char *fmt, const char *arg1,
                size_t arg2)
{
    if (!err)
        return -1;
    if (flen >= sizeof err->field)
        flen = sizeof err->field - 1;
    memcpy(err->field, field, flen);
    err->field[flen] = 0;
    snprintf(err->rule, sizeof err->rule, fmt, arg1, arg2);
    if (err->field[0])
        snprintf(err->text, sizeof err->text, "field %s: %s", err->field, err->rule);
    else
        snprintf(err->text, sizeof err->text, "%s", err->rule);
    return -1;
}

/* Printable ASCII except ';', which separates fields in this form. */
static long bad_char(const char *v, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c > 0x7e || c == ';')
            return (long)i;
    }
    return -1;
}

static int all_spaces(const char *v, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (v[i] != ' ')
            return 0;
    return 1;
}

static int set_field(struct x400_addr *a, int f, const char *v, size_t vlen, struct x400_error *err)
{
    const char *key = fields[f].key;
    char *dst = field_ptr(a, f);
    if (dst[0])
        return fail(err, key, strlen(key), "%s appears more than once", fields[f].name, 0);
    if (vlen == 0)
        return fail(err, key, strlen(key), f == F_A ? "%s is empty (a single space means none)"
                                                    : "%s is empty", fields[f].name, 0);
    if (f == F_A) {
        if (all_spaces(v, vlen) && vlen != 1)
            return fail(err, key, 1, "%s of spaces must be exactly one space (none)", fields[f].name, 0);
    } else if (all_spaces(v, vlen)) {
        return fail(err, key, strlen(key), "%s is blank", fields[f].name, 0);
    }
    if (vlen > fields[f].max)
        return fail(err, key, strlen(key), "%s longer than %zu characters", fields[f].name, fields[f].max);
    long bad = bad_char(v, vlen);
    if (bad >= 0)
        return fail(err, key, strlen(key), "%s contains a character outside printable ASCII or ';'",
                    fields[f].name, 0);
    if (f == F_C) {
        int letters = vlen == 2, digits = vlen == 3;
        for (size_t i = 0; i < vlen; i++) {
            int c = (unsigned char)v[i];
            letters &= (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
            digits &= c >= '0' && c <= '9';
        }
        if (!letters && !digits)
            return fail(err, key, 1, "%s must be 2 letters or 3 digits", fields[f].name, 0);
        for (size_t i = 0; i < vlen; i++)
            dst[i] = (char)((v[i] >= 'a' && v[i] <= 'z') ? v[i] - 32 : v[i]);
    } else {
        memcpy(dst, v, vlen);
    }
    dst[vlen] = 0;
    return 0;
}

static int set_dda(struct x400_addr *a, const char *type, size_t tlen, const char *v, size_t vlen,
                   struct x400_error *err)
{
    char key[16];
    snprintf(key, sizeof key, "dda:%.*s", (int)(tlen > 8 ? 8 : tlen), type);
    if (tlen == 0)
        return fail(err, "dda", 3, "%sdomain-defined attribute has no type", "", 0);
    if (tlen > X400_DDA_TYPE_MAX)
        return fail(err, key, strlen(key), "%sdomain-defined attribute type longer than %zu characters", "",
                    X400_DDA_TYPE_MAX);
    if (bad_char(type, tlen) >= 0 || memchr(type, '=', tlen) || all_spaces(type, tlen))
        return fail(err, key, strlen(key), "%sdomain-defined attribute type is not printable text", "", 0);
    if (vlen == 0 || all_spaces(v, vlen))
        return fail(err, key, strlen(key), "%sdomain-defined attribute value is empty", "", 0);
    if (vlen > X400_DDA_VALUE_MAX)
        return fail(err, key, strlen(key), "%sdomain-defined attribute value longer than %zu characters", "",
                    X400_DDA_VALUE_MAX);
    if (bad_char(v, vlen) >= 0)
        return fail(err, key, strlen(key),
                    "%sdomain-defined attribute value contains a character outside printable ASCII or ';'", "", 0);
    for (size_t k = 0; k < a->ndda; k++)
        if (ieq(type, tlen, a->dda[k].type))
            return fail(err, key, strlen(key), "%sdomain-defined attribute appears more than once", "", 0);
    if (a->ndda >= X400_DDA_COUNT)
        return fail(err, key, strlen(key), "%smore than %zu domain-defined attributes", "", X400_DDA_COUNT);
    memcpy(a->dda[a->ndda].type, type, tlen);
    a->dda[a->ndda].type[tlen] = 0;
    memcpy(a->dda[a->ndda].value, v, vlen);
    a->dda[a->ndda].value[vlen] = 0;
    a->ndda++;
    return 0;
}

/* Rules across fields, checked once everything is read. */
static int check_rules(const struct x400_addr *a, struct x400_error *err)
{
    if (!a->c[0])
        return fail(err, "c", 1, "%s is required", "country", 0);
    if (!a->a[0])
        return fail(err, "a", 1, "%s is required (a single space means none)", "ADMD", 0);
    static const int personal[] = { F_G, F_I, F_Q };
    for (size_t k = 0; k < sizeof personal / sizeof personal[0]; k++)
        if (field_cptr(a, personal[k])[0] && !a->s[0])
            return fail(err, "s", 1, "surname is required when %s is present", fields[personal[k]].key, 0);
    int ou = a->ou[0][0] || a->ou[1][0] || a->ou[2][0] || a->ou[3][0];
    if (!a->cn[0] && !a->o[0] && !ou && !a->s[0] && !a->p[0])
        return fail(err, "", 0,
                    "at least one of cn, o, ou, a personal name (s) or p is required%s", "", 0);
    return 0;
}

int x400_parse(const char *s, size_t len, struct x400_addr *out, struct x400_error *err)
{
    size_t i = 0;
    memset(out, 0, sizeof *out);
    if (err)
        memset(err, 0, sizeof *err);
    while (i < len) {
        const char *semi = memchr(s + i, ';', len - i);
        size_t end = semi ? (size_t)(semi - s) : len;
        const char *item = s + i, *eq = memchr(item, '=', end - i);
        size_t ilen = end - i;
        i = semi ? end + 1 : len;
        if (ilen == 0)
            return fail(err, "", 0, "empty field (two ';' in a row)%s", "", 0);
        if (!eq)
            return fail(err, item, ilen > 15 ? 15 : ilen, "%sfield has no '='", "", 0);
        size_t klen = (size_t)(eq - item);
        const char *v = eq + 1;
        size_t vlen = ilen - klen - 1;
        if (klen > 4 && ieq(item, 4, "dda:")) {
            if (set_dda(out, item + 4, klen - 4, v, vlen, err) != 0)
                return -1;
            continue;
        }
        if (ieq(item, klen, "dda:"))
            return fail(err, "dda", 3, "%sdomain-defined attribute has no type", "", 0);
        int f = -1;
        for (int k = 0; k < F_COUNT; k++)
            if (ieq(item, klen, fields[k].key))
                f = k;
        if (f < 0 && ieq(item, klen, "ou")) {
            for (int k = F_OU1; k <= F_OU4 && f < 0; k++)
                if (!field_ptr(out, k)[0])
                    f = k;
            if (f < 0)
                return fail(err, "ou", 2, "%smore than %zu organizational units", "", X400_OU_COUNT);
        }
        if (f < 0)
            return fail(err, item, klen > 15 ? 15 : klen, "unknown field%s", "", 0);
        if (set_field(out, f, v, vlen, err) != 0)
            return -1;
    }
    return check_rules(out, err);
}

int x400_format(const struct x400_addr *a, char *buf, size_t n)
{
    size_t o = 0;
    int w;
    if (n == 0)
        return -1;
    buf[0] = 0;
    for (int f = 0; f < F_COUNT; f++) {
        const char *v = field_cptr(a, f);
        if (!v[0])
            continue;
        w = snprintf(buf + o, n - o, "%s=%s;", fields[f].key, v);
        if (w < 0 || (size_t)w >= n - o)
            goto too_small;
        o += (size_t)w;
    }
    for (size_t k = 0; k < a->ndda && k < X400_DDA_COUNT; k++) {
        w = snprintf(buf + o, n - o, "dda:%s=%s;", a->dda[k].type, a->dda[k].value);
        if (w < 0 || (size_t)w >= n - o)
            goto too_small;
        o += (size_t)w;
    }
    return (int)o;
too_small:
    buf[0] = 0;
    return -1;
}

static int istr_eq(const char *a, const char *b)
{
    return ieq(a, strlen(a), b);
}

int x400_equal(const struct x400_addr *a, const struct x400_addr *b)
{
    for (int f = 0; f < F_COUNT; f++)
        if (!istr_eq(field_cptr(a, f), field_cptr(b, f)))
            return 0;
    if (a->ndda != b->ndda)
        return 0;
    /* DDAs are a set: order does not matter. */
    for (size_t k = 0; k < a->ndda && k < X400_DDA_COUNT; k++) {
        int found = 0;
        for (size_t m = 0; m < b->ndda && m < X400_DDA_COUNT && !found; m++)
            found = istr_eq(a->dda[k].type, b->dda[m].type) && istr_eq(a->dda[k].value, b->dda[m].value);
        if (!found)
            return 0;
    }
    return 1;
}

int x400_looks_like(const char *s, size_t len)
{
    const char *eq = memchr(s, '=', len);
    if (!eq)
        return 0;
    size_t klen = (size_t)(eq - s);
    if (klen > 4 && ieq(s, 4, "dda:"))
        return 1;
    if (ieq(s, klen, "ou"))
        return 1;
    for (int f = 0; f < F_COUNT; f++)
        if (ieq(s, klen, fields[f].key))
            return 1;
    return 0;
}
