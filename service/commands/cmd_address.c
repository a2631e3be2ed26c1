/* cmd_address.c - `imsvc address ...` (see cmd_address.h).
 *
 * Tells the kind of an address from its shape (a <path>, an IMCEA mailbox,
 * an X.400 O/R address, a bare mailbox), runs the core parser for it and
 * prints the fields, the canonical form and any address map entry. Results
 * go to stdout, usage and map-file problems to stderr. It reads only.
 */
#include "cmd_address.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>

#include "address.h"
#include "addrmap.h"
#include "imcea.h"
#include "mapfile.h"
#include "rewrite.h"
#include "x400.h"

#define OUT_MAX 2048

static int usage(void)
{
    fprintf(stderr,
            "usage: imsvc address check [--mail|--rcpt] ADDRESS\n"
            "       imsvc address imcea encode TYPE ADDRESS DOMAIN\n"
            "       imsvc address imcea decode ADDRESS\n"
            "       imsvc address map test [--mail|--rcpt] ADDRESS\n");
    return 2;
}

/* The map through the service's own reader (service/host/mapfile.c), so
 * the command and the service load the same file the same way. */
static int load_map(const char *path, struct addrmap **map)
{
    struct addrmap_error err;
    wchar_t wpath[MAX_PATH];
    if (MultiByteToWideChar(CP_UTF8, 0, path, -1, wpath, MAX_PATH) <= 0) {
        fprintf(stderr, "imsvc: address map %s: path is too long\n", path);
        return -1;
    }
    if (mapfile_read(wpath, map, &err) != ERROR_SUCCESS) {
        fprintf(stderr, "imsvc: address map %s: %s\n", path, err.text);
        return -1;
    }
    return 0;
}

static void print_x400_fields(const struct x400_addr *x)
{
    static const struct { const char *key, *name; size_t off; } rows[] = {
        { "c", "country", offsetof(struct x400_addr, c) },
        { "a", "ADMD", offsetof(struct x400_addr, a) },
        { "p", "PRMD", offsetof(struct x400_addr, p) },
        { "o", "organization", offsetof(struct x400_addr, o) },
        { "ou1", "organizational unit 1", offsetof(struct x400_addr, ou[0]) },
        { "ou2", "organizational unit 2", offsetof(struct x400_addr, ou[1]) },
        { "ou3", "organizational unit 3", offsetof(struct x400_addr, ou[2]) },
        { "ou4", "organizational unit 4", offsetof(struct x400_addr, ou[3]) },
        { "s", "surname", offsetof(struct x400_addr, s) },
        { "g", "given name", offsetof(struct x400_addr, g) },
        { "i", "initials", offsetof(struct x400_addr, i) },
        { "q", "generation qualifier", offsetof(struct x400_addr, q) },
        { "cn", "common name", offsetof(struct x400_addr, cn) },
    };
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
        const char *v = (const char *)x + rows[k].off;
        if (!v[0])
            continue;
        if (k == 1 && strcmp(v, " ") == 0)
            printf("  %-4s %-22s (none)\n", rows[k].key, rows[k].name);
        else
            printf("  %-4s %-22s %s\n", rows[k].key, rows[k].name, v);
    }
    for (size_t k = 0; k < x->ndda && k < X400_DDA_COUNT; k++)
        printf("  dda  %-22s %s\n", x->dda[k].type, x->dda[k].value);
}

static void print_smtp_mapping(const struct addrmap *map, const struct addr_path *p)
{
    const struct addrmap_entry *e = map ? addrmap_find_smtp(map, p) : NULL;
    char text[X400_TEXT_MAX];
    if (e && strcmp(e->type, "X400") != 0)
        printf("address map: %s %s (line %u)\n", e->type, e->value, e->line);
    else if (e && x400_format(&e->x400, text, sizeof text) >= 0)
        printf("address map: X.400 %s (line %u)\n", text, e->line);
}

static int check_x400(const char *s, const struct addrmap *map)
{
    struct x400_addr x;
    struct x400_error err;
    char text[X400_TEXT_MAX];
    printf("kind: X.400 O/R address\n");
    if (x400_parse(s, strlen(s), &x, &err) != 0) {
        printf("invalid: %s\n", err.text);
        return 1;
    }
    print_x400_fields(&x);
    if (x400_format(&x, text, sizeof text) < 0)
        return 1;
    printf("canonical: %s\n", text);
    const struct addrmap_entry *e = map ? addrmap_find_x400(map, &x) : NULL;
    if (e && addr_format_mailbox(&e->smtp, text, sizeof text) >= 0)
        printf("address map: SMTP %s (line %u)\n", text, e->line);
    return 0;
}

static void print_path_fields(const struct addr_path *p)
{
    static const char *const kinds[] = { "none", "domain name", "IPv4 literal", "IPv6 literal" };
    if (p->null_path) {
        printf("  null path (no sender: bounces and notifications)\n");
        return;
    }
    printf("  local part   %s%s\n", p->local, p->quoted ? " (quoted)" : "");
    if (p->kind != ADDR_DOMAIN_NONE)
        printf("  domain       %s (%s)\n", p->domain, kinds[p->kind]);
    if (p->had_route)
        printf("  source route given and ignored\n");
}

/* IMCEA: decode when the domain is ours; say why not otherwise. The address
 * is also an ordinary mailbox, which is checked as well. */
static void check_imcea_part(const char *s, const struct domain_list *local,
                             const struct addrmap *map)
{
    char type[IMCEA_TYPE_MAX + 1], addr[OUT_MAX];
    enum imcea_status st = imcea_decode(s, strlen(s), local, type, sizeof type, addr, sizeof addr, NULL);
    if (st != IMCEA_OK) {
        printf("IMCEA: not decoded: %s\n", imcea_strerror(st));
        return;
    }
    printf("IMCEA: type %s, address %s\n", type, addr);
    if (strcmp(type, "X400") == 0) {
        struct x400_addr x;
        struct x400_error err;
        if (x400_parse(addr, strlen(addr), &x, &err) != 0) {
            printf("IMCEA: encapsulated X.400 address is invalid: %s\n", err.text);
            return;
        }
        char text[X400_TEXT_MAX];
        if (x400_format(&x, text, sizeof text) >= 0)
            printf("IMCEA: X.400 canonical: %s\n", text);
        const struct addrmap_entry *e = map ? addrmap_find_x400(map, &x) : NULL;
        if (e && addr_format_mailbox(&e->smtp, text, sizeof text) >= 0)
            printf("address map: SMTP %s (line %u)\n", text, e->line);
    }
}

static int check_smtp(const char *s, int verb_given, enum addr_verb verb,
                      const struct domain_list *local, const struct addrmap *map)
{
    struct addr_path path;
    struct addr_params params;
    struct addr_error err;
    char text[OUT_MAX];
    size_t len = strlen(s);
    int rc;
    if (s[0] == '<') {
        if (!verb_given && len >= 2 && s[1] == '>')
            verb = ADDR_MAIL;
        printf("kind: RFC 5321 path (%s)\n", verb == ADDR_MAIL ? "MAIL FROM" : "RCPT TO");
        rc = addr_parse_command(s, len, verb, &path, &params, &err);
    } else {
        printf("kind: RFC 5321 mailbox (%s)\n", verb == ADDR_MAIL ? "MAIL FROM" : "RCPT TO");
        memset(&params, 0, sizeof params);
        rc = addr_parse_mailbox(s, len, verb, &path, &err);
    }
    if (rc != 0) {
        printf("invalid: %d %s %s (at offset %zu)\n", err.reply, err.status, err.rule, err.offset);
        return 1;
    }
    print_path_fields(&path);
    if (addr_format_path(&path, text, sizeof text) < 0)
        return 1;
    printf("canonical: %s", text);
    if (addr_format_params(&params, text, sizeof text) > 0)
        printf(" %s", text);
    printf("\n");
    if (!path.null_path && imcea_looks_like(path.local, strlen(path.local)) &&
        addr_format_mailbox(&path, text, sizeof text) >= 0)
        check_imcea_part(text, local, map);
    print_smtp_mapping(map, &path);
    return 0;
}

static int cmd_check(int argc, char **argv, const struct domain_list *local, const char *map_path)
{
    int verb_given = 0;
    enum addr_verb verb = ADDR_RCPT;
    int i = 2;
    for (; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
        if (strcmp(argv[i], "--mail") == 0)
            verb = ADDR_MAIL;
        else if (strcmp(argv[i], "--rcpt") == 0)
            verb = ADDR_RCPT;
        else
            return usage();
        verb_given = 1;
    }
    if (i != argc - 1)
        return usage();
    const char *s = argv[i];
    struct addrmap *map = NULL;
    int map_bad = map_path && map_path[0] && load_map(map_path, &map) != 0;
    int rc;
    size_t len = strlen(s);
    if (s[0] == '<' || (!x400_looks_like(s, len) && strchr(s, '@')))
        rc = check_smtp(s, verb_given, verb, local, map);
    else if (x400_looks_like(s, len))
        rc = check_x400(s, map);
    else {
        printf("invalid: not an RFC 5321 path or mailbox (no '@'), nor an X.400 address (no key=value;)\n");
        rc = 1;
    }
    addrmap_free(map);
    return rc ? rc : map_bad;
}

static int cmd_imcea(int argc, char **argv, const struct domain_list *local)
{
    if (argc >= 3 && strcmp(argv[2], "encode") == 0) {
        if (argc != 6)
            return usage();
        char out[OUT_MAX];
        enum imcea_status st = imcea_encode(argv[3], argv[4], strlen(argv[4]), argv[5], out, sizeof out, NULL);
        if (st != IMCEA_OK) {
            printf("invalid: %s\n", imcea_strerror(st));
            return 1;
        }
        printf("%s\n", out);
        return 0;
    }
    if (argc >= 3 && strcmp(argv[2], "decode") == 0) {
        if (argc != 4)
            return usage();
        const char *s = argv[3];
        size_t len = strlen(s);
        if (len >= 2 && s[0] == '<' && s[len - 1] == '>') {
            s++;
            len -= 2;
        }
        char type[IMCEA_TYPE_MAX + 1], addr[OUT_MAX];
        enum imcea_status st = imcea_decode(s, len, local, type, sizeof type, addr, sizeof addr, NULL);
        if (st != IMCEA_OK) {
            printf("invalid: %s\n", imcea_strerror(st));
            if (st == IMCEA_NOT_LOCAL)
                printf("local domains: %zu configured (LocalDomains)\n", local ? local->n : 0);
            return 1;
        }
        printf("%s:%s\n", type, addr);
        return 0;
    }
    return usage();
}

/* `map test`: what the SMTP server would make of ADDRESS as a recipient
 * (or with --mail a sender), by the same decision (core/rewrite.h). */
static int cmd_map_test(int argc, char **argv, const struct domain_list *local,
                        const char *map_path)
{
    int i = 3, sender = 0;
    for (; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
        if (strcmp(argv[i], "--mail") == 0)
            sender = 1;
        else if (strcmp(argv[i], "--rcpt") == 0)
            sender = 0;
        else
            return usage();
    }
    if (i != argc - 1)
        return usage();
    const char *s = argv[i];
    size_t len = strlen(s);
    struct addr_path path;
    struct addr_error aerr;
    int rc = len >= 1 && s[0] == '<'
                 ? addr_parse_path(s, len, sender ? ADDR_MAIL : ADDR_RCPT, &path, &aerr)
                 : addr_parse_mailbox(s, len, sender ? ADDR_MAIL : ADDR_RCPT, &path, &aerr);
    if (rc != 0) {
        printf("invalid: %d %s %s (at offset %zu)\n", aerr.reply, aerr.status, aerr.rule,
               aerr.offset);
        return 1;
    }
    struct addrmap *map = NULL;
    int map_bad = map_path && map_path[0] && load_map(map_path, &map) != 0;
    char text[OUT_MAX];
    if (addr_format_path(&path, text, sizeof text) >= 0)
        printf("%s: %s\n", sender ? "sender" : "recipient", text);
    if (map)
        printf("map: %s (%zu typed lines, %zu aliases)\n", map_path,
               addrmap_count_kind(map, ADDRMAP_TYPED), addrmap_count_kind(map, ADDRMAP_ALIAS));
    else
        printf("map: %s\n", map_path && map_path[0] ? "not loaded" : "none (AddressMapFile is empty)");
    struct rewrite_config c = { map, map_path && map_path[0], local };
    struct rewrite_verdict v;
    rc = sender ? rewrite_sender(&c, &path, &v) : rewrite_recipient(&c, &path, &v);
    if (v.type[0])
        printf("IMCEA type: %s\n", v.type);
    if (rc != 0) {
        printf("result: refused %d %s\n", v.code, v.status);
        printf("why: %s\n", v.why);
    } else if (v.result == REWRITE_KEEP) {
        printf("result: kept as written\n");
        printf("why: %s\n", v.why[0] ? v.why : "no line of the address map applies");
    } else {
        for (size_t k = 0; k < v.n; k++)
            if (addr_format_path(rewrite_target(&v, k), text, sizeof text) >= 0)
                printf("result: rewritten to %s\n", text);
        printf("why: %s\n", v.why);
    }
    static char line[ADDRMAP_ENTRY_TEXT_MAX];
    for (size_t k = 0; v.line && k < addrmap_count(map); k++) {
        const struct addrmap_entry *e = addrmap_entry_at(map, k);
        if (e->line == v.line && addrmap_format_entry(e, line, sizeof line) >= 0)
            printf("map line %u: %s\n", e->line, line);
    }
    addrmap_free(map);
    return rc != 0 || map_bad ? 1 : 0;
}

int address_cmd(int argc, char **argv, const struct domain_list *local_domains, const char *map_path)
{
    if (argc >= 3 && strcmp(argv[1], "map") == 0 && strcmp(argv[2], "test") == 0)
        return cmd_map_test(argc, argv, local_domains, map_path);
    if (argc >= 2 && strcmp(argv[1], "check") == 0)
        return cmd_check(argc, argv, local_domains, map_path);
    if (argc >= 2 && strcmp(argv[1], "imcea") == 0)
        return cmd_imcea(argc, argv, local_domains);
    return usage();
}
