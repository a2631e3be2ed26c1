/* addrmap.c - the address map (see addrmap.h).
 *
 * Entries live in one growing array owned by the map. What a line is, is
 * told by how it starts: an X.400 field (c=, o=, dda:...) makes it a typed
 * X.400 line, TYPE: a typed line of another type, anything else an alias.
 * Each side of a typed line must be unique, and so must an alias's key: two
 * lines for the same address would make a lookup ambiguous, so the second
 * is an error naming both lines. Three hash indexes (typed side, SMTP
 * side, alias key) make the uniqueness check and every lookup constant
 * time, so a map of many thousand lines loads at start and at PARAMCHANGE
 * without holding the service thread. A hash only narrows the search: a
 * match is always confirmed by the same equality the rules use. A line is
 * taken whole or refused, never guessed at.
 */
#include "addrmap.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { IX_TYPED, IX_SMTP, IX_ALIAS, IX_COUNT };

struct addrmap {
    struct addrmap_entry *v;
    size_t n, cap;
    size_t *ix[IX_COUNT];   /* open addressing: entry index + 1; 0 is empty */
    size_t ixcap;           /* a power of two, more than twice n */
};

static int fail(struct addrmap_error *err, unsigned line, const char *what)
{
    if (err) {
        err->line = line;
        if (line)
            snprintf(err->text, sizeof err->text, "line %u: %s", line, what);
        else
            snprintf(err->text, sizeof err->text, "%s", what);
    }
    return -1;
}

static int is_blank(char c) { return c == ' ' || c == '\t'; }
static int lower(int c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }
static int is_alnum(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int ieq(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return 0;
    for (size_t i = 0; i < alen; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return 0;
    return 1;
}

const char *addrmap_dir_name(unsigned dir)
{
    return dir == ADDRMAP_BOTH ? "both" : dir == ADDRMAP_OUT ? "out" : "in";
}

static unsigned dir_of(const char *s, size_t len)
{
    if (ieq(s, len, "in", 2))
        return ADDRMAP_IN;
    if (ieq(s, len, "out", 3))
        return ADDRMAP_OUT;
    if (ieq(s, len, "both", 4))
        return ADDRMAP_BOTH;
    return 0;
}

/* "TYPE:" at the start (1 to 32 letters or digits): the type's length, or 0. */
static size_t type_prefix(const char *s, size_t len)
{
    size_t t = 0;
    while (t < len && t <= IMCEA_TYPE_MAX && is_alnum((unsigned char)s[t]))
        t++;
    if (t == 0 || t > IMCEA_TYPE_MAX || t >= len || s[t] != ':')
        return 0;
    return t;
}

/* A mailbox, bare or in <>; what names it in the error ("SMTP address"). */
static int parse_smtp(const char *s, size_t len, struct addr_path *out, const char *what,
                      unsigned line, struct addrmap_error *err)
{
    char why[160];
    struct addr_error aerr;
    if (len >= 2 && s[0] == '<' && s[len - 1] == '>') {
        s++;
        len -= 2;
    }
    if (addr_parse_mailbox(s, len, ADDR_RCPT, out, &aerr) != 0) {
        snprintf(why, sizeof why, "%s: %s", what, aerr.rule);
        return fail(err, line, why);
    }
    return 0;
}

/* "@domain": a domain name (no literal), kept in lower case. */
static int parse_domain_key(const char *s, size_t len, struct addr_path *out, const char *what,
                            unsigned line, struct addrmap_error *err)
{
    char why[160];
    memset(out, 0, sizeof *out);
    const char *rule = len < 2 ? "domain is empty" : addr_domain_rule(s + 1, len - 1);
    if (rule) {
        snprintf(why, sizeof why, "%s: %s", what, rule);
        return fail(err, line, why);
    }
    for (size_t i = 1; i < len; i++)
        out->domain[i - 1] = (char)lower((unsigned char)s[i]);
    out->kind = ADDR_DOMAIN_NAME;
    return 0;
}

/* A typed line from s[b] to s[len] (blanks trimmed at both ends). */
static int parse_typed(const char *s, size_t b, size_t len, unsigned line, int x400,
                       struct addrmap_entry *e, struct addrmap_error *err)
{
    char why[160];
    e->kind = ADDRMAP_TYPED;
    e->dir = ADDRMAP_IN;
    /* An optional direction: the last field. */
    size_t m = len;
    while (m > b && !is_blank(s[m - 1]))
        m--;
    unsigned d = m > b ? dir_of(s + m, len - m) : 0;
    if (d) {
        e->dir = d;
        len = m;
        while (len > b && is_blank(s[len - 1]))
            len--;
    }
    /* The SMTP side: the last field now. */
    m = len;
    while (m > b && !is_blank(s[m - 1]))
        m--;
    if (m == b)
        return fail(err, line, x400 ? "expected an X.400 address, blanks, then an SMTP address"
                                    : "expected a typed address, blanks, then an SMTP address");
    const char *smtp = s + m;
    size_t slen = len - m;
    size_t xend = m;
    while (xend > b && is_blank(s[xend - 1]))
        xend--;
    struct x400_error xerr;
    if (x400) {
        if (smtp[slen - 1] == ';')
            return fail(err, line, "no SMTP address after the X.400 address");
        if (s[xend - 1] != ';')
            return fail(err, line, "the X.400 address must end with ';'");
        memcpy(e->type, "X400", 5);
        if (x400_parse(s + b, xend - b, &e->x400, &xerr) != 0) {
            snprintf(why, sizeof why, "X.400 address: %s", xerr.text);
            return fail(err, line, why);
        }
    } else {
        size_t t = type_prefix(s + b, xend - b);
        for (size_t i = 0; i < t; i++) {
            int c = (unsigned char)s[b + i];
            e->type[i] = (char)((c >= 'a' && c <= 'z') ? c - 32 : c);
        }
        e->type[t] = 0;
        const char *v = s + b + t + 1;
        size_t vlen = xend - b - t - 1;
        if (strcmp(e->type, "X400") == 0) {
            if (x400_parse(v, vlen, &e->x400, &xerr) != 0) {
                snprintf(why, sizeof why, "X.400 address: %s", xerr.text);
                return fail(err, line, why);
            }
        } else {
            if (vlen == 0 || is_blank(v[0]))
                return fail(err, line, "the typed address is empty after its TYPE:");
            if (vlen > ADDRMAP_VALUE_MAX)
                return fail(err, line, "the typed address is longer than 1024 characters");
            for (size_t i = 0; i < vlen; i++)
                if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7e)
                    return fail(err, line, "the typed address holds a character outside "
                                           "printable ASCII");
            memcpy(e->value, v, vlen);
            e->value[vlen] = 0;
        }
    }
    return parse_smtp(smtp, slen, &e->smtp, "SMTP address", line, err);
}

/* An alias line from s[b] to s[len]: the key, then targets separated by
 * commas or blanks. scratch holds ADDRMAP_TARGETS_MAX addresses. */
static int parse_alias(const char *s, size_t b, size_t len, unsigned line,
                       struct addr_path *scratch, struct addrmap_entry *e,
                       struct addrmap_error *err)
{
    e->kind = ADDRMAP_ALIAS;
    size_t k = b;
    while (k < len && !is_blank(s[k]))
        k++;
    if (s[b] == '@') {
        e->key_domain = 1;
        if (parse_domain_key(s + b, k - b, &e->key, "alias @domain", line, err) != 0)
            return -1;
    } else if (parse_smtp(s + b, k - b, &e->key, "alias", line, err) != 0) {
        return -1;
    }
    size_t n = 0;
    int domain_target = 0;
    for (size_t i = k; i < len;) {
        while (i < len && (is_blank(s[i]) || s[i] == ','))
            i++;
        if (i == len)
            break;
        size_t j = i;
        while (j < len && !is_blank(s[j]) && s[j] != ',')
            j++;
        if (n == ADDRMAP_TARGETS_MAX)
            return fail(err, line, "an alias stands for at most 100 addresses");
        if (s[i] == '@') {
            if (!e->key_domain)
                return fail(err, line, "a target @domain needs an alias @domain");
            domain_target = 1;
            if (parse_domain_key(s + i, j - i, &scratch[n], "alias target", line, err) != 0)
                return -1;
        } else if (parse_smtp(s + i, j - i, &scratch[n], "alias target", line, err) != 0) {
            return -1;
        }
        n++;
        i = j;
    }
    if (n == 0)
        return fail(err, line, "expected an address or @domain, blanks, then the addresses it "
                               "stands for");
    if (domain_target && n > 1)
        return fail(err, line, "an alias to @domain takes no other target");
    e->targets = malloc(n * sizeof *e->targets);
    if (!e->targets)
        return fail(err, line, "out of memory");
    memcpy(e->targets, scratch, n * sizeof *e->targets);
    e->ntargets = n;
    return 0;
}

/* One line without its end of line. Returns 1 if it made an entry, 0 for a
 * blank or comment line, -1 on error. */
static int parse_line(const char *s, size_t len, unsigned line, struct addr_path *scratch,
                      struct addrmap_entry *e, struct addrmap_error *err)
{
    size_t b = 0;
    memset(e, 0, sizeof *e);
    while (b < len && is_blank(s[b]))
        b++;
    if (b == len || s[b] == '#')
        return 0;
    if (len > ADDRMAP_LINE_MAX)
        return fail(err, line, "line longer than 2048 characters");
    while (len > b && is_blank(s[len - 1]))
        len--;
    int r;
    if (x400_looks_like(s + b, len - b))
        r = parse_typed(s, b, len, line, 1, e, err);
    else if (type_prefix(s + b, len - b))
        r = parse_typed(s, b, len, line, 0, e, err);
    else
        r = parse_alias(s, b, len, line, scratch, e, err);
    e->line = line;
    return r < 0 ? -1 : 1;
}

static int typed_equal(const struct addrmap_entry *a, const struct addrmap_entry *b)
{
    if (strcmp(a->type, b->type) != 0)
        return 0;
    if (strcmp(a->type, "X400") == 0)
        return x400_equal(&a->x400, &b->x400);
    return ieq(a->value, strlen(a->value), b->value, strlen(b->value));
}

static int key_equal(const struct addrmap_entry *a, const struct addrmap_entry *b)
{
    if (a->key_domain != b->key_domain)
        return 0;
    return a->key_domain ? strcmp(a->key.domain, b->key.domain) == 0
                         : addr_mailbox_equal(&a->key, &b->key);
}

/* Hashes (FNV-1a over lower-case text): equal by the rules means equal
 * hash. X.400 DDAs are a set, so only their count is hashed. */
#define FNV_BASIS 2166136261u
#define FNV_PRIME 16777619u

static uint32_t fnv_n(uint32_t h, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint32_t)lower((unsigned char)s[i])) * FNV_PRIME;
    return (h ^ 0xffu) * FNV_PRIME;     /* a separator: "ab","c" differs from "a","bc" */
}

static uint32_t fnv(uint32_t h, const char *s) { return fnv_n(h, s, strlen(s)); }

static uint32_t hash_x400(const struct x400_addr *x)
{
    uint32_t h = fnv(FNV_BASIS, "X400");
    const char *f[] = { x->c, x->a, x->p, x->o, x->ou[0], x->ou[1], x->ou[2], x->ou[3],
                        x->s, x->g, x->i, x->q, x->cn };
    for (size_t k = 0; k < sizeof f / sizeof f[0]; k++)
        h = fnv(h, f[k]);
    return (h ^ (uint32_t)x->ndda) * FNV_PRIME;
}

static uint32_t hash_value(const char *type, const char *value, size_t len)
{
    return fnv_n(fnv(FNV_BASIS, type), value, len);
}

static uint32_t hash_mailbox(const struct addr_path *p)
{
    return (fnv(fnv(FNV_BASIS, p->local), p->domain) ^ (uint32_t)p->kind) * FNV_PRIME;
}

static uint32_t hash_domain(const char *domain)
{
    return fnv(fnv(FNV_BASIS, "@"), domain);
}

static uint32_t entry_hash(const struct addrmap_entry *e, int ix)
{
    if (ix == IX_TYPED)
        return strcmp(e->type, "X400") == 0 ? hash_x400(&e->x400)
                                             : hash_value(e->type, e->value, strlen(e->value));
    if (ix == IX_SMTP)
        return hash_mailbox(&e->smtp);
    return e->key_domain ? hash_domain(e->key.domain) : hash_mailbox(&e->key);
}

static int entry_indexed(const struct addrmap_entry *e, int ix)
{
    return ix == IX_ALIAS ? e->kind == ADDRMAP_ALIAS : e->kind == ADDRMAP_TYPED;
}

typedef int (*ix_match)(const struct addrmap_entry *e, const void *ctx);

/* The entry of index ix with hash h that match accepts, or NULL. */
static const struct addrmap_entry *ix_find(const struct addrmap *m, int ix, uint32_t h,
                                           ix_match match, const void *ctx)
{
    if (!m || !m->ixcap)
        return NULL;
    for (size_t i = h & (m->ixcap - 1);; i = (i + 1) & (m->ixcap - 1)) {
        size_t slot = m->ix[ix][i];
        if (!slot)
            return NULL;
        if (match(&m->v[slot - 1], ctx))
            return &m->v[slot - 1];
    }
}

static void ix_put(struct addrmap *m, int ix, size_t k)
{
    size_t i = entry_hash(&m->v[k], ix) & (m->ixcap - 1);
    while (m->ix[ix][i])
        i = (i + 1) & (m->ixcap - 1);
    m->ix[ix][i] = k + 1;
}

/* Room for one more entry in every index (rebuilt larger when needed). */
static int ix_reserve(struct addrmap *m)
{
    if (m->ixcap > 2 * (m->n + 1))
        return 0;
    size_t cap = m->ixcap ? m->ixcap * 2 : 64;
    size_t *nix[IX_COUNT];
    for (int ix = 0; ix < IX_COUNT; ix++) {
        nix[ix] = calloc(cap, sizeof *nix[ix]);
        if (!nix[ix]) {
            while (ix-- > 0)
                free(nix[ix]);
            return -1;
        }
    }
    for (int ix = 0; ix < IX_COUNT; ix++) {
        free(m->ix[ix]);
        m->ix[ix] = nix[ix];
    }
    m->ixcap = cap;
    for (size_t k = 0; k < m->n; k++)
        for (int ix = 0; ix < IX_COUNT; ix++)
            if (entry_indexed(&m->v[k], ix))
                ix_put(m, ix, k);
    return 0;
}

static int match_typed(const struct addrmap_entry *o, const void *ctx)
{
    return o->kind == ADDRMAP_TYPED && typed_equal(o, ctx);
}

static int match_smtp_side(const struct addrmap_entry *o, const void *ctx)
{
    return o->kind == ADDRMAP_TYPED && addr_mailbox_equal(&o->smtp, ctx);
}

static int match_key(const struct addrmap_entry *o, const void *ctx)
{
    return o->kind == ADDRMAP_ALIAS && key_equal(o, ctx);
}

static int check_unique(const struct addrmap *map, const struct addrmap_entry *e, struct addrmap_error *err)
{
    char why[96];
    const struct addrmap_entry *o;
    if (e->kind == ADDRMAP_ALIAS) {
        o = ix_find(map, IX_ALIAS, entry_hash(e, IX_ALIAS), match_key, e);
        if (o) {
            snprintf(why, sizeof why, "alias for this address already on line %u", o->line);
            return fail(err, e->line, why);
        }
        return 0;
    }
    o = ix_find(map, IX_TYPED, entry_hash(e, IX_TYPED), match_typed, e);
    if (o) {
        snprintf(why, sizeof why, "%s address already mapped on line %u",
                 strcmp(e->type, "X400") == 0 ? "X.400" : e->type, o->line);
        return fail(err, e->line, why);
    }
    o = ix_find(map, IX_SMTP, entry_hash(e, IX_SMTP), match_smtp_side, &e->smtp);
    if (o) {
        snprintf(why, sizeof why, "SMTP address already mapped on line %u", o->line);
        return fail(err, e->line, why);
    }
    return 0;
}

static void entry_release(struct addrmap_entry *e)
{
    if (e->kind == ADDRMAP_ALIAS) {
        free(e->targets);
        e->targets = NULL;
        e->ntargets = 0;
    }
}

int addrmap_parse(const char *text, size_t len, struct addrmap **out, struct addrmap_error *err)
{
    struct addrmap *map = calloc(1, sizeof *map);
    struct addrmap_entry *e = calloc(1, sizeof *e);
    struct addr_path *scratch = malloc(ADDRMAP_TARGETS_MAX * sizeof *scratch);
    unsigned line = 0;
    size_t i = 0;
    *out = NULL;
    if (err) {
        err->line = 0;
        err->text[0] = 0;
    }
    if (!map || !e || !scratch) {
        fail(err, 0, "out of memory");
        goto failed;
    }
    if (len > ADDRMAP_FILE_MAX) {
        fail(err, 0, "address map larger than 16 MiB");
        goto failed;
    }
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        i = 3;
    while (i < len) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - text) : len, l = end - i;
        line++;
        if (l > 0 && text[i + l - 1] == '\r')
            l--;
        if (memchr(text + i, 0, l) || memchr(text + i, '\r', l)) {
            fail(err, line, "stray NUL or carriage return in line");
            goto failed;
        }
        int r = parse_line(text + i, l, line, scratch, e, err);
        i = nl ? end + 1 : len;
        if (r < 0)
            goto failed;
        if (r == 0)
            continue;
        if (check_unique(map, e, err) != 0)
            goto failed;
        if (ix_reserve(map) != 0) {
            fail(err, line, "out of memory");
            goto failed;
        }
        if (map->n == map->cap) {
            size_t cap = map->cap ? map->cap * 2 : 16;
            struct addrmap_entry *v = realloc(map->v, cap * sizeof *v);
            if (!v) {
                fail(err, line, "out of memory");
                goto failed;
            }
            map->v = v;
            map->cap = cap;
        }
        map->v[map->n++] = *e;
        for (int ix = 0; ix < IX_COUNT; ix++)
            if (entry_indexed(e, ix))
                ix_put(map, ix, map->n - 1);
        e->kind = ADDRMAP_TYPED;        /* its targets belong to the map now */
    }
    free(scratch);
    free(e);
    *out = map;
    return 0;
failed:
    if (e)
        entry_release(e);
    free(scratch);
    free(e);
    addrmap_free(map);
    return -1;
}

int addrmap_load(const char *path, struct addrmap **out, struct addrmap_error *err)
{
    char why[160];
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, sizeof why, "cannot open %s", path);
        return fail(err, 0, why);
    }
    /* Grow the buffer as the file demands, up to one octet past the limit
     * so that an oversized file is noticed. */
    size_t cap = 0, n = 0;
    char *buf = NULL;
    int rc = 0;
    for (;;) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64 * 1024;
            if (ncap > ADDRMAP_FILE_MAX + 1)
                ncap = ADDRMAP_FILE_MAX + 1;
            if (ncap == cap)
                break;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                rc = fail(err, 0, "out of memory");
                break;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (rc == 0 && ferror(f)) {
        snprintf(why, sizeof why, "cannot read %s", path);
        rc = fail(err, 0, why);
    }
    fclose(f);
    if (rc == 0) {
        if (n > ADDRMAP_FILE_MAX)
            rc = fail(err, 0, "address map larger than 16 MiB");
        else
            rc = addrmap_parse(buf ? buf : "", n, out, err);
    }
    free(buf);
    return rc;
}

void addrmap_free(struct addrmap *m)
{
    if (!m)
        return;
    for (size_t k = 0; k < m->n; k++)
        entry_release(&m->v[k]);
    for (int ix = 0; ix < IX_COUNT; ix++)
        free(m->ix[ix]);
    free(m->v);
    free(m);
}

size_t addrmap_count(const struct addrmap *m) { return m ? m->n : 0; }

size_t addrmap_count_kind(const struct addrmap *m, enum addrmap_kind kind)
{
    size_t n = 0;
    for (size_t k = 0; m && k < m->n; k++)
        n += m->v[k].kind == kind;
    return n;
}

const struct addrmap_entry *addrmap_entry_at(const struct addrmap *m, size_t i)
{
    return m && i < m->n ? &m->v[i] : NULL;
}

static int match_x400(const struct addrmap_entry *o, const void *ctx)
{
    return o->kind == ADDRMAP_TYPED && strcmp(o->type, "X400") == 0 && x400_equal(&o->x400, ctx);
}

const struct addrmap_entry *addrmap_find_x400(const struct addrmap *m, const struct x400_addr *key)
{
    return ix_find(m, IX_TYPED, hash_x400(key), match_x400, key);
}

struct typed_key {
    const char *type, *value;
    size_t len;
};

static int match_value(const struct addrmap_entry *o, const void *ctx)
{
    const struct typed_key *k = ctx;
    return o->kind == ADDRMAP_TYPED && strcmp(o->type, k->type) == 0 &&
           ieq(o->value, strlen(o->value), k->value, k->len);
}

const struct addrmap_entry *addrmap_find_typed(const struct addrmap *m, const char *type,
                                               const char *value, size_t len)
{
    if (strcmp(type, "X400") == 0) {
        struct x400_addr x;
        return x400_parse(value, len, &x, NULL) == 0 ? addrmap_find_x400(m, &x) : NULL;
    }
    struct typed_key k = { type, value, len };
    return ix_find(m, IX_TYPED, hash_value(type, value, len), match_value, &k);
}

const struct addrmap_entry *addrmap_find_smtp(const struct addrmap *m, const struct addr_path *key)
{
    if (!key || key->null_path)
        return NULL;
    return ix_find(m, IX_SMTP, hash_mailbox(key), match_smtp_side, key);
}

static int match_alias_mailbox(const struct addrmap_entry *o, const void *ctx)
{
    return o->kind == ADDRMAP_ALIAS && !o->key_domain && addr_mailbox_equal(&o->key, ctx);
}

static int match_alias_domain(const struct addrmap_entry *o, const void *ctx)
{
    return o->kind == ADDRMAP_ALIAS && o->key_domain && strcmp(o->key.domain, ctx) == 0;
}

const struct addrmap_entry *addrmap_find_alias(const struct addrmap *m, const struct addr_path *key)
{
    if (!key || key->null_path)
        return NULL;
    const struct addrmap_entry *e = ix_find(m, IX_ALIAS, hash_mailbox(key), match_alias_mailbox, key);
    if (e || key->kind != ADDR_DOMAIN_NAME)
        return e;
    return ix_find(m, IX_ALIAS, hash_domain(key->domain), match_alias_domain, key->domain);
}

/* A mailbox, or "@domain" for an address with an empty local part. */
static int put_address(const struct addr_path *p, char *buf, size_t n, size_t *o)
{
    int w;
    if (*o >= n)
        return -1;
    if (!p->local[0] && p->kind == ADDR_DOMAIN_NAME)
        w = snprintf(buf + *o, n - *o, "@%s", p->domain);
    else
        w = addr_format_mailbox(p, buf + *o, n - *o);
    if (w < 0 || (size_t)w >= n - *o)
        return -1;
    *o += (size_t)w;
    return 0;
}

static int put_text(const char *s, char *buf, size_t n, size_t *o)
{
    size_t l = strlen(s);
    if (*o + l >= n)
        return -1;
    memcpy(buf + *o, s, l + 1);
    *o += l;
    return 0;
}

int addrmap_format_entry(const struct addrmap_entry *e, char *buf, size_t n)
{
    size_t o = 0;
    if (n == 0)
        return -1;
    buf[0] = 0;
    if (e->kind == ADDRMAP_TYPED) {
        if (strcmp(e->type, "X400") == 0) {
            int w = x400_format(&e->x400, buf, n);
            if (w < 0)
                goto too_small;
            o = (size_t)w;
        } else if (put_text(e->type, buf, n, &o) || put_text(":", buf, n, &o) ||
                   put_text(e->value, buf, n, &o)) {
            goto too_small;
        }
        if (put_text("\t", buf, n, &o) || put_address(&e->smtp, buf, n, &o) ||
            put_text("\t", buf, n, &o) || put_text(addrmap_dir_name(e->dir), buf, n, &o))
            goto too_small;
        return (int)o;
    }
    if (put_address(&e->key, buf, n, &o) || put_text("\t", buf, n, &o))
        goto too_small;
    for (size_t k = 0; k < e->ntargets; k++)
        if ((k && put_text(", ", buf, n, &o)) || put_address(&e->targets[k], buf, n, &o))
            goto too_small;
    return (int)o;
too_small:
    buf[0] = 0;
    return -1;
}
