/* addrmap.c - the X.400 <-> SMTP address map (see addrmap.h).
 *
 * Entries live in one growing array owned by the map. Each side must be
 * unique: two lines mapping the same X.400 address (or the same SMTP
 * mailbox) would make one direction ambiguous, so the second is an error
 * naming both lines. Lookup is linear; maps are small and loaded once.
 */
#include "addrmap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct addrmap {
    struct addrmap_entry *v;
    size_t n, cap;
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

/* One line without its end of line. Returns 1 if it made an entry, 0 for a
 * blank or comment line, -1 on error. */
static int parse_line(const char *s, size_t len, unsigned line, struct addrmap_entry *e,
                      struct addrmap_error *err)
{
    char why[160];
    size_t b = 0;
    while (b < len && is_blank(s[b]))
        b++;
    if (b == len || s[b] == '#')
        return 0;
    if (len > ADDRMAP_LINE_MAX)
        return fail(err, line, "line longer than 2048 characters");
    while (len > b && is_blank(s[len - 1]))
        len--;
    /* The SMTP side is the last field: after the last blank. */
    size_t m = len;
    while (m > b && !is_blank(s[m - 1]))
        m--;
    if (m == b)
        return fail(err, line, "expected an X.400 address, blanks, then an SMTP address");
    const char *smtp = s + m;
    size_t slen = len - m;
    if (smtp[slen - 1] == ';')
        return fail(err, line, "no SMTP address after the X.400 address");
    size_t xend = m;
    while (xend > b && is_blank(s[xend - 1]))
        xend--;
    if (s[xend - 1] != ';')
        return fail(err, line, "the X.400 address must end with ';'");

    struct x400_error xerr;
    if (x400_parse(s + b, xend - b, &e->x400, &xerr) != 0) {
        snprintf(why, sizeof why, "X.400 address: %s", xerr.text);
        return fail(err, line, why);
    }
    if (slen >= 2 && smtp[0] == '<' && smtp[slen - 1] == '>') {
        smtp++;
        slen -= 2;
    }
    struct addr_error aerr;
    if (addr_parse_mailbox(smtp, slen, ADDR_RCPT, &e->smtp, &aerr) != 0) {
        snprintf(why, sizeof why, "SMTP address: %s", aerr.rule);
        return fail(err, line, why);
    }
    e->line = line;
    return 1;
}

static int check_unique(const struct addrmap *map, const struct addrmap_entry *e, struct addrmap_error *err)
{
    char why[96];
    for (size_t k = 0; k < map->n; k++) {
        if (x400_equal(&map->v[k].x400, &e->x400)) {
            snprintf(why, sizeof why, "X.400 address already mapped on line %u", map->v[k].line);
            return fail(err, e->line, why);
        }
        if (addr_mailbox_equal(&map->v[k].smtp, &e->smtp)) {
            snprintf(why, sizeof why, "SMTP address already mapped on line %u", map->v[k].line);
            return fail(err, e->line, why);
        }
    }
    return 0;
}

int addrmap_parse(const char *text, size_t len, struct addrmap **out, struct addrmap_error *err)
{
    struct addrmap *map = calloc(1, sizeof *map);
    struct addrmap_entry *e = malloc(sizeof *e);
    unsigned line = 0;
    size_t i = 0;
    *out = NULL;
    if (err) {
        err->line = 0;
        err->text[0] = 0;
    }
    if (!map || !e) {
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
        int r = parse_line(text + i, l, line, e, err);
        i = nl ? end + 1 : len;
        if (r < 0)
            goto failed;
        if (r == 0)
            continue;
        if (check_unique(map, e, err) != 0)
            goto failed;
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
    }
    free(e);
    *out = map;
    return 0;
failed:
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
    free(m->v);
    free(m);
}

size_t addrmap_count(const struct addrmap *m) { return m ? m->n : 0; }

const struct addrmap_entry *addrmap_entry_at(const struct addrmap *m, size_t i)
{
    return m && i < m->n ? &m->v[i] : NULL;
}

const struct addrmap_entry *addrmap_find_x400(const struct addrmap *m, const struct x400_addr *key)
{
    for (size_t k = 0; m && k < m->n; k++)
        if (x400_equal(&m->v[k].x400, key))
            return &m->v[k];
    return NULL;
}

const struct addrmap_entry *addrmap_find_smtp(const struct addrmap *m, const struct addr_path *key)
{
    for (size_t k = 0; m && k < m->n; k++)
        if (addr_mailbox_equal(&m->v[k].smtp, key))
            return &m->v[k];
    return NULL;
}
