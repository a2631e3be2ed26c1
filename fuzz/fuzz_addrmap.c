/* fuzz_addrmap.c - the address map parser and the rewriting over it: no
 * crash or leak, and stable.
 *
 * A map that parses is written back out in canonical form, one line per
 * entry; that text must parse to a map whose entries print the same. Each
 * typed line is found from both sides, each alias from its address; and a
 * typed line that rewrites inward (in, both) must turn its own IMCEA form
 * at a local domain into its SMTP address (or what an alias makes of it),
 * never refuse it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addrmap.h"
#include "domains.h"
#include "rewrite.h"

static void check_rewrite(const struct addrmap *m, const struct addrmap_entry *e,
                          const struct domain_list *local)
{
    char text[X400_TEXT_MAX > ADDRMAP_VALUE_MAX ? X400_TEXT_MAX : ADDRMAP_VALUE_MAX + 1];
    char enc[4 * ADDR_PATH_MAX];
    size_t elen;
    if (strcmp(e->type, "X400") == 0) {
        if (x400_format(&e->x400, text, sizeof text) < 0)
            abort();
    } else {
        snprintf(text, sizeof text, "%s", e->value);
    }
    if (imcea_encode(e->type, text, strlen(text), "fuzz.example", enc, sizeof enc, &elen) != IMCEA_OK)
        return;
    struct addr_path p;
    if (elen + 2 > ADDR_PATH_MAX || addr_parse_mailbox(enc, elen, ADDR_RCPT, &p, NULL) != 0)
        return;     /* longer than a path may be: RCPT TO never gives one */
    struct rewrite_config c = { m, 1, local };
    struct rewrite_verdict v;
    int rc = rewrite_recipient(&c, &p, &v);
    /* A typed value that breaks its type's rules is refused 5.1.3 (the map
     * takes any printable value for types other than X.400); a line for
     * outgoing mail only receives nothing: 5.1.1. Nothing else refuses. */
    int bad_value = rc != 0 && v.code == 550 && strcmp(v.status, "5.1.3") == 0;
    if (!(e->dir & ADDRMAP_IN)) {
        if (rc == 0 || (!bad_value && !(v.code == 550 && strcmp(v.status, "5.1.1") == 0)))
            abort();
        return;
    }
    if (rc != 0) {
        if (!bad_value) {
            fprintf(stderr, "line %u refused: %d %s %s\n", e->line, v.code, v.status, v.why);
            abort();
        }
        return;
    }
    if (v.result != REWRITE_CHANGED || v.n == 0 || !rewrite_target(&v, 0))
        abort();
    if (!addrmap_find_alias(m, &e->smtp) && !addr_mailbox_equal(rewrite_target(&v, 0), &e->smtp))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct addrmap *m, *m2;
    struct addrmap_error err;
    if (addrmap_parse((const char *)data, size, &m, &err) != 0) {
        if (m || !err.text[0])
            abort();
        return 0;
    }
    struct domain_list local = { 0 };
    char why[DOMAINS_WHY_MAX];
    if (domains_parse(&local, "fuzz.example", why, sizeof why) != 0)
        abort();
    size_t n = addrmap_count(m), cap = n * (ADDRMAP_ENTRY_TEXT_MAX + 1) + 1, o = 0;
    char *text = malloc(cap), *line = malloc(ADDRMAP_ENTRY_TEXT_MAX);
    if (!text || !line)
        abort();
    text[0] = 0;
    int long_line = 0;
    for (size_t k = 0; k < n; k++) {
        const struct addrmap_entry *e = addrmap_entry_at(m, k);
        int w = addrmap_format_entry(e, line, ADDRMAP_ENTRY_TEXT_MAX);
        if (w < 0)
            abort();
        long_line |= w > ADDRMAP_LINE_MAX;   /* canonical text may grow a little */
        memcpy(text + o, line, (size_t)w);
        o += (size_t)w;
        text[o++] = '\n';
        if (e->kind == ADDRMAP_TYPED) {
            if (addrmap_find_smtp(m, &e->smtp) != e)
                abort();
            if (strcmp(e->type, "X400") == 0 && addrmap_find_x400(m, &e->x400) != e)
                abort();
            if (strcmp(e->type, "X400") != 0 &&
                addrmap_find_typed(m, e->type, e->value, strlen(e->value)) != e)
                abort();
            check_rewrite(m, e, &local);
        } else if (!e->key_domain && addrmap_find_alias(m, &e->key) != e) {
            abort();
        }
    }
    if (!long_line) {
        if (addrmap_parse(text, o, &m2, &err) != 0) {
            fprintf(stderr, "canonical map rejected: %s\n%.*s", err.text, (int)o, text);
            abort();
        }
        if (addrmap_count(m2) != n)
            abort();
        char *line2 = malloc(ADDRMAP_ENTRY_TEXT_MAX);
        if (!line2)
            abort();
        for (size_t k = 0; k < n; k++) {
            if (addrmap_format_entry(addrmap_entry_at(m, k), line, ADDRMAP_ENTRY_TEXT_MAX) < 0 ||
                addrmap_format_entry(addrmap_entry_at(m2, k), line2, ADDRMAP_ENTRY_TEXT_MAX) < 0 ||
                strcmp(line, line2) != 0)
                abort();
        }
        free(line2);
        addrmap_free(m2);
    }
    domains_free(&local);
    addrmap_free(m);
    free(line);
    free(text);
    return 0;
}
