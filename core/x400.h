/* x400.h - X.400 O/R addresses in Exchange's "c=US;a= ;p=...;" form.
 *
 * Parses, validates and prints back canonically (a fixed field order). The
 * rules are X.400's real ones, not a stricter house version: PRMD (p) is
 * optional, and an address with an organization or a surname and no PRMD is
 * valid. A rejection names the field and the rule. Portable core: no I/O, no
 * allocation.
 */
#ifndef IMSVC_X400_H
#define IMSVC_X400_H

#include <stddef.h>

/* Upper bounds of X.411 (ub-*), in characters; values are printable ASCII. */
#define X400_C_MAX    3
#define X400_A_MAX    16
#define X400_P_MAX    16
#define X400_O_MAX    64
#define X400_OU_MAX   32
#define X400_OU_COUNT 4
#define X400_S_MAX    40
#define X400_G_MAX    16
#define X400_I_MAX    5
#define X400_Q_MAX    3
#define X400_CN_MAX   64
#define X400_DDA_COUNT     4
#define X400_DDA_TYPE_MAX  8
#define X400_DDA_VALUE_MAX 128

/* Canonical text is never longer than this (all fields at their limits). */
#define X400_TEXT_MAX 1024

/* An empty string means the field is absent; a is " " when there is no
 * ADMD. c is stored in upper case. */
struct x400_addr {
    char c[X400_C_MAX + 1];
    char a[X400_A_MAX + 1];
    char p[X400_P_MAX + 1];
    char o[X400_O_MAX + 1];
    char ou[X400_OU_COUNT][X400_OU_MAX + 1];
    char s[X400_S_MAX + 1];
    char g[X400_G_MAX + 1];
    char i[X400_I_MAX + 1];
    char q[X400_Q_MAX + 1];
    char cn[X400_CN_MAX + 1];
    size_t ndda;
    struct {
        char type[X400_DDA_TYPE_MAX + 1];
        char value[X400_DDA_VALUE_MAX + 1];
    } dda[X400_DDA_COUNT];
};

/* field: the key the rule is about ("s", "ou2", "dda:SMTP", or "" for the
 * address as a whole); rule: a sentence. text: "field s: surname is required
 * when g is present", ready to print. */
struct x400_error {
    char field[16];
    char rule[96];
    char text[128];
};

/* Parse "key=value;key=value;..." (the final ';' optional). Keys are
 * case-insensitive: c a p o ou1..ou4 (ou alone takes the next free unit)
 * s g i q cn, and dda:TYPE. Returns 0, or -1 with *err filled in. */
int x400_parse(const char *s, size_t len, struct x400_addr *out, struct x400_error *err);

/* Print canonically: c;a;p;o;ou1..ou4;s;g;i;q;cn;dda... each followed by ';'.
 * Returns the length, or -1 if buf is too small (buf then ""). */
int x400_format(const struct x400_addr *a, char *buf, size_t n);

/* Equal as X.400 compares them: field by field, case-insensitively. */
int x400_equal(const struct x400_addr *a, const struct x400_addr *b);

/* Does the text look like an X.400 address (first key is a known field
 * followed by '=')? For telling address kinds apart; not validation. */
int x400_looks_like(const char *s, size_t len);

#endif
