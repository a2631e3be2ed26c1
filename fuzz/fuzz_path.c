/* fuzz_path.c - RFC 5321 MAIL/RCPT arguments: no crash, and print is stable.
 *
 * The first byte picks MAIL or RCPT; the rest is the argument. Whatever
 * parses must print canonically, and that text must parse and print to
 * itself (parse -> print -> parse -> print is a fixed point).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"

static void print_all(const struct addr_path *p, const struct addr_params *m, char *out, size_t n)
{
    char prm[2048];
    if (addr_format_path(p, out, n) < 0 || addr_format_params(m, prm, sizeof prm) < 0)
        abort();
    if (prm[0]) {
        strcat(out, " ");
        strcat(out, prm);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct addr_path p, p2;
    struct addr_params m, m2;
    struct addr_error err;
    char a[4096], b[4096];
    if (size < 1)
        return 0;
    enum addr_verb verb = (data[0] & 1) ? ADDR_MAIL : ADDR_RCPT;
    const char *s = (const char *)data + 1;
    size_t len = size - 1;

    if (addr_parse_mailbox(s, len, verb, &p, &err) == 0) {
        if (addr_format_mailbox(&p, a, sizeof a) < 0)
            abort();
        if (addr_parse_mailbox(a, strlen(a), verb, &p2, &err) != 0 || !addr_mailbox_equal(&p, &p2))
            abort();
    } else if (!err.rule || !err.status || (err.reply != 501 && err.reply != 555)) {
        abort();
    }

    if (addr_parse_command(s, len, verb, &p, &m, &err) != 0) {
        if (!err.rule || !err.status || err.offset > len)
            abort();
        return 0;
    }
    print_all(&p, &m, a, sizeof a);
    if (addr_parse_command(a, strlen(a), verb, &p2, &m2, &err) != 0) {
        fprintf(stderr, "canonical form rejected: %s: %s\n", a, err.rule);
        abort();
    }
    print_all(&p2, &m2, b, sizeof b);
    if (strcmp(a, b) != 0 || !addr_mailbox_equal(&p, &p2)) {
        fprintf(stderr, "not a fixed point: %s | %s\n", a, b);
        abort();
    }
    return 0;
}
