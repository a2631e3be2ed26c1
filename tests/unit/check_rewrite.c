/* check_rewrite.c - what envelope addresses become through the address map:
 * one row per decision (core/rewrite.h). */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "rewrite.h"

static const char map_text[] =
    "c=US;a= ;p=Fab;o=Sales;s=Lee;g=Bill;      bill.lee@fab.example\n"        /* line 1 */
    "c=US;a= ;o=Sales;s=Ann;                    ann@fab.example     both\n"    /* 2: no PRMD */
    "c=GB;a=BT;o=Ops;s=Smith;                   smith@ext.example   out\n"     /* 3 */
    "EX:/o=Fab/ou=Site/cn=Recipients/cn=bo      bo@fab.example\n"              /* 4 */
    "FAX:+1 (425) 555-0100                      fax-desk@fab.example\n"        /* 5 */
    "c=US;a= ;o=Sales;cn=Sales Desk;            sales@fab.example\n"           /* 6 */
    "sales@fab.example                          bill.lee@fab.example, ann@fab.example\n" /* 7 */
    "@old.example                               @fab.example\n"                /* 8 */
    "@older.example                             desk@fab.example\n";           /* 9 */

#define LEE   "IMCEAX400-c=US+3Ba=+20+3Bp=Fab+3Bo=Sales+3Bs=Lee+3Bg=Bill+3B"
#define ANN   "IMCEAX400-c=US+3Ba=+20+3Bo=Sales+3Bs=Ann+3B"
#define SMITH "IMCEAX400-c=GB+3Ba=BT+3Bo=Ops+3Bs=Smith+3B"

struct rw_case {
    int sender;                 /* MAIL FROM, else RCPT TO */
    const char *addr;           /* a bare mailbox */
    int code;                   /* 250: not refused */
    const char *status;         /* refused: the enhanced status */
    const char *why;            /* a part of the sentence that must be there */
    unsigned line;              /* the deciding map line, 0: none */
    const char *to[3];          /* the addresses it becomes; to[0] NULL: kept */
};

static const struct rw_case cases[] = {
    /* IMCEA X.400 recipients: with and without PRMD, mapped */
    { 0, LEE "@gw.example", 250, NULL, "map line 1 (in)", 1, { "bill.lee@fab.example" } },
    { 0, ANN "@GW.Example", 250, NULL, "map line 2 (both)", 2, { "ann@fab.example" } },
    /* an embedded address that breaks a rule, named */
    { 0, "IMCEAX400-a=+20+3Bo=Sales+3Bs=Ann+3B@gw.example", 550, "5.1.3",
      "the IMCEAX400 address is not valid: the X.400 address breaks a rule: field c: country is required", 0, { 0 } },
    { 0, "IMCEAX400-c=US+3Ba=+20+3Bo=Sales+3Bs=Aaaaaaaaaabbbbbbbbbbccccccccccddddddddddx+3B@gw.example",
      550, "5.1.3", "field s: surname longer than 40 characters", 0, { 0 } },
    { 0, "IMCEAX400-c=US+3Ba=+20+3Bo=Sales+3Bg=Ann+3B@gw.example", 550, "5.1.3",
      "field s: surname is required when g is present", 0, { 0 } },
    { 0, "IMCEAX400-c=USA+3Ba=+20+3Bo=Sales+3B@gw.example", 550, "5.1.3",
      "field c: country must be 2 letters or 3 digits", 0, { 0 } },
    /* valid, but nothing receives it */
    { 0, "IMCEAX400-c=US+3Ba=+20+3Bo=Sales+3Bs=Nobody+3B@gw.example", 550, "5.1.1",
      "is valid but not in the address map", 0, { 0 } },
    { 0, SMITH "@gw.example", 550, "5.1.1", "on line 3 for outgoing mail only", 0, { 0 } },
    /* other types, each by its own rules */
    { 0, "IMCEAEX-_o=Fab_ou=Site_cn=Recipients_cn=bo@gw.example", 250, NULL, "map line 4", 4,
      { "bo@fab.example" } },
    { 0, "IMCEAEX-_O=FAB_OU=SITE_CN=RECIPIENTS_CN=BO@gw.example", 250, NULL, "map line 4", 4,
      { "bo@fab.example" } },
    { 0, "IMCEAEX-o=Fab_cn=bo@gw.example", 550, "5.1.3", "the EX address must start with /o=", 0, { 0 } },
    { 0, "IMCEAEX-_o=Fab_cn@gw.example", 550, "5.1.3", "part 2 of the EX address is not key=value", 0, { 0 } },
    { 0, "IMCEAFAX-+2B1+20+28425+29+20555-0100@gw.example", 250, NULL, "map line 5", 5,
      { "fax-desk@fab.example" } },
    { 0, "IMCEAFAX-call+20me@gw.example", 550, "5.1.3",
      "the FAX number may hold only digits, spaces and + - ( ) .", 0, { 0 } },
    { 0, "IMCEASMTP-a+40@gw.example", 550, "5.1.3", "the SMTP address breaks a rule", 0, { 0 } },
    { 0, "IMCEAEX-_o=Fab+ZZ@gw.example", 550, "5.1.3", "the IMCEA address cannot be decoded", 0, { 0 } },
    /* not ours to decode: an ordinary mailbox */
    { 0, "IMCEAX400-a=+20@remote.example", 250, NULL, "", 0, { 0 } },
    { 0, "imceaex-_o=Fab_cn=bo@gw.example", 250, NULL, "", 0, { 0 } },
    /* mapped to an address that has an alias: the alias applies, once */
    { 0, "IMCEAX400-c=US+3Ba=+20+3Bo=Sales+3Bcn=Sales+20Desk+3B@gw.example", 250, NULL,
      "map line 6 (in); then alias for the address (line 7) stands for 2 addresses", 7,
      { "bill.lee@fab.example", "ann@fab.example" } },
    /* SMTP to a typed address (out, both): IMCEA at the first local domain */
    { 0, "Ann@fab.example", 250, NULL, "map line 2 (both) makes it its X.400 address", 2,
      { ANN "@gw.example" } },
    { 0, "smith@ext.example", 250, NULL, "map line 3 (out)", 3, { SMITH "@gw.example" } },
    { 0, "bill.lee@fab.example", 250, NULL, "", 0, { 0 } },       /* in only */
    /* aliases */
    { 0, "SALES@fab.example", 250, NULL, "alias for the address (line 7) stands for 2 addresses", 7,
      { "bill.lee@fab.example", "ann@fab.example" } },
    { 0, "Some.One@old.example", 250, NULL, "alias @old.example (line 8) moves it to @fab.example", 8,
      { "Some.One@fab.example" } },
    { 0, "x@older.example", 250, NULL, "alias for its domain (line 9)", 9, { "desk@fab.example" } },
    { 0, "x@sub.old.example", 250, NULL, "", 0, { 0 } },
    { 0, "other@fab.example", 250, NULL, "", 0, { 0 } },
    /* senders: mapped both ways, never refused for want of a line, no aliases */
    { 1, LEE "@gw.example", 250, NULL, "map line 1", 1, { "bill.lee@fab.example" } },
    { 1, "IMCEAX400-c=US+3Ba=+20+3Bo=Sales+3Bs=Nobody+3B@gw.example", 250, NULL,
      "not in the address map; kept as written", 0, { 0 } },
    { 1, "IMCEAX400-a=+20+3Bo=Sales+3Bs=Ann+3B@gw.example", 550, "5.1.7",
      "sender: the IMCEAX400 address is not valid", 0, { 0 } },
    { 1, "ann@fab.example", 250, NULL, "map line 2", 2, { ANN "@gw.example" } },
    { 1, "sales@fab.example", 250, NULL, "", 0, { 0 } },
};

static void mailbox(const char *s, struct addr_path *p)
{
    struct addr_error err;
    ck_assert_msg(addr_parse_mailbox(s, strlen(s), ADDR_RCPT, p, &err) == 0, "%s: %s", s, err.rule);
}

static void check_case(const struct rw_case *c, const struct rewrite_config *cfg)
{
    struct addr_path p;
    struct rewrite_verdict v;
    char out[ADDR_PATH_MAX + 1];
    mailbox(c->addr, &p);
    int rc = c->sender ? rewrite_sender(cfg, &p, &v) : rewrite_recipient(cfg, &p, &v);
    if (c->code != 250) {
        ck_assert_msg(rc == -1, "%s: not refused (%s)", c->addr, v.why);
        ck_assert_int_eq(v.result, REWRITE_REFUSED);
        ck_assert_int_eq(v.code, c->code);
        ck_assert_str_eq(v.status, c->status);
        ck_assert_msg(strstr(v.why, c->why), "%s: why is '%s'", c->addr, v.why);
        ck_assert_ptr_null(rewrite_target(&v, 0));
        return;
    }
    ck_assert_msg(rc == 0, "%s: refused %d %s %s", c->addr, v.code, v.status, v.why);
    ck_assert_msg(strstr(v.why, c->why), "%s: why is '%s'", c->addr, v.why);
    ck_assert_uint_eq(v.line, c->line);
    if (!c->to[0]) {
        ck_assert_msg(v.result == REWRITE_KEEP, "%s: changed (%s)", c->addr, v.why);
        ck_assert_ptr_null(rewrite_target(&v, 0));
        return;
    }
    ck_assert_int_eq(v.result, REWRITE_CHANGED);
    size_t n = 0;
    while (n < 3 && c->to[n])
        n++;
    ck_assert_uint_eq(v.n, n);
    for (size_t k = 0; k < n; k++) {
        ck_assert_int_gt(addr_format_mailbox(rewrite_target(&v, k), out, sizeof out), 0);
        ck_assert_str_eq(out, c->to[k]);
    }
    ck_assert_ptr_null(rewrite_target(&v, n));
}

/* map_text in force, with these LocalDomains; unload frees both. */
static struct rewrite_config load(const char *domains, struct domain_list *local)
{
    struct addrmap *m;
    struct addrmap_error err;
    char why[DOMAINS_WHY_MAX];
    memset(local, 0, sizeof *local);
    ck_assert_int_eq(domains_parse(local, domains, why, sizeof why), 0);
    ck_assert_msg(addrmap_parse(map_text, strlen(map_text), &m, &err) == 0, "%s", err.text);
    return (struct rewrite_config){ m, 1, local };
}

static void unload(struct rewrite_config *c, struct domain_list *local)
{
    addrmap_free((struct addrmap *)c->map);
    domains_free(local);
}

START_TEST(test_rewrite_table)
{
    struct domain_list local;
    struct rewrite_config cfg = load("gw.example fab.example", &local);
    check_case(&cases[_i], &cfg);
    unload(&cfg, &local);
}
END_TEST

/* Without a map: IMCEA is still checked; kept when no map is configured,
 * 451 while a configured one is not loaded (senders are kept). */
START_TEST(test_without_map)
{
    struct domain_list local = { 0 };
    char why[DOMAINS_WHY_MAX];
    ck_assert_int_eq(domains_parse(&local, "gw.example", why, sizeof why), 0);
    struct rewrite_config none = { NULL, 0, &local }, broken = { NULL, 1, &local };
    static const struct rw_case plain[] = {
        { 0, LEE "@gw.example", 250, NULL, "no address map, so it is kept as written", 0, { 0 } },
        { 0, "IMCEAX400-a=+20+3Bs=Lee+3B@gw.example", 550, "5.1.3", "field c: country is required", 0, { 0 } },
        { 0, "sales@fab.example", 250, NULL, "", 0, { 0 } },
    };
    static const struct rw_case wanted[] = {
        { 0, LEE "@gw.example", 451, "4.3.5", "the address map (AddressMapFile) is not loaded", 0, { 0 } },
        { 0, "IMCEAX400-a=+20+3Bs=Lee+3B@gw.example", 550, "5.1.3", "field c: country is required", 0, { 0 } },
        { 1, LEE "@gw.example", 250, NULL, "kept as written", 0, { 0 } },
        { 0, "bill@gw.example", 250, NULL, "", 0, { 0 } },
    };
    for (size_t k = 0; k < sizeof plain / sizeof plain[0]; k++)
        check_case(&plain[k], &none);
    for (size_t k = 0; k < sizeof wanted / sizeof wanted[0]; k++)
        check_case(&wanted[k], &broken);
    domains_free(&local);
}
END_TEST

/* An SMTP address that becomes a typed one needs a LocalDomains name to
 * encapsulate it at: a wildcard alone is not one (451, a setting to fix). */
START_TEST(test_no_domain_to_encapsulate)
{
    struct domain_list local;
    struct rewrite_config cfg = load("*.gw.example", &local);
    static const struct rw_case c[] = {
        { 0, "ann@fab.example", 451, "4.3.5", "LocalDomains names no domain to encapsulate it at", 0, { 0 } },
        /* decoded at a domain the wildcard covers */
        { 0, LEE "@x.gw.example", 250, NULL, "map line 1", 1, { "bill.lee@fab.example" } },
    };
    check_case(&c[0], &cfg);
    check_case(&c[1], &cfg);
    unload(&cfg, &local);
}
END_TEST

START_TEST(test_orcpt)
{
    struct addr_path p;
    struct addr_params prm;
    memset(&prm, 0, sizeof prm);
    mailbox("IMCEAX400-c=US+3Ba=+20+3B@gw.example", &p);
    ck_assert_int_eq(rewrite_orcpt(&p, &prm), 0);
    ck_assert_int_eq(prm.has_orcpt, 1);
    ck_assert_str_eq(prm.orcpt_type, "rfc822");
    ck_assert_str_eq(prm.orcpt, "IMCEAX400-c+3DUS+2B3Ba+3D+2B20+2B3B@gw.example");
    /* one the client gave stays */
    mailbox("other@gw.example", &p);
    ck_assert_int_eq(rewrite_orcpt(&p, &prm), 0);
    ck_assert_str_eq(prm.orcpt, "IMCEAX400-c+3DUS+2B3Ba+3D+2B20+2B3B@gw.example");
    /* past RFC 3461's 500 characters: none */
    char big[ADDR_PATH_MAX];
    memset(&prm, 0, sizeof prm);
    int o = snprintf(big, sizeof big, "IMCEAX-");
    memset(big + o, '=', 190);
    snprintf(big + o + 190, sizeof big - (size_t)o - 190, "@gw.example");
    mailbox(big, &p);
    ck_assert_int_eq(rewrite_orcpt(&p, &prm), -1);
    ck_assert_int_eq(prm.has_orcpt, 0);
    ck_assert_str_eq(prm.orcpt, "");
}
END_TEST

/* A whole envelope, as the pickup folder has it: the same decisions as an
 * SMTP session, address by address; refused, it stays as it was. */
static void envelope_of(struct envelope *e, const char *from, const char *const *to)
{
    env_init(e);
    if (from)
        mailbox(from, &e->from);
    for (; *to; to++) {
        struct addr_path p;
        mailbox(*to, &p);
        ck_assert_int_ge(env_add_rcpt(e, &p, NULL), 0);
    }
}

static void rcpt_is(const struct envelope *e, size_t i, const char *addr, const char *orcpt)
{
    char out[ADDR_PATH_MAX + 1];
    ck_assert_uint_lt(i, e->n_rcpt);
    ck_assert_int_gt(addr_format_mailbox(&e->rcpt[i].addr, out, sizeof out), 0);
    ck_assert_str_eq(out, addr);
    ck_assert_str_eq(e->rcpt[i].orcpt, orcpt);
    ck_assert_str_eq(e->rcpt[i].orcpt_type, orcpt[0] ? "rfc822" : "");
}

START_TEST(test_envelope)
{
    struct domain_list local;
    char out[ADDR_PATH_MAX + 1];
    struct rewrite_config cfg = load("gw.example fab.example", &local);
    struct rewrite_config unloaded = { NULL, 1, &local };
    struct rewrite_refusal ref;
    struct envelope e;

    static const char *const to[] = { ANN "@gw.example", "sales@fab.example", "other@remote.example",
                                      NULL };
    envelope_of(&e, LEE "@gw.example", to);
    snprintf(e.client, sizeof e.client, "pickup directory");
    ck_assert_int_eq(rewrite_envelope(&cfg, &e, &ref), 0);
    ck_assert_int_gt(addr_format_mailbox(&e.from, out, sizeof out), 0);
    ck_assert_str_eq(out, "bill.lee@fab.example");
    ck_assert_str_eq(e.client, "pickup directory");
    ck_assert_uint_eq(e.n_rcpt, 4);
    rcpt_is(&e, 0, "ann@fab.example", "IMCEAX400-c+3DUS+2B3Ba+3D+2B20+2B3Bo+3DSales+2B3Bs+3DAnn+2B3B@gw.example");
    rcpt_is(&e, 1, "bill.lee@fab.example", "sales@fab.example");
    rcpt_is(&e, 2, "ann@fab.example", "sales@fab.example");
    rcpt_is(&e, 3, "other@remote.example", "");
    env_free(&e);

    /* a recipient refused: the envelope is as it was, the address named */
    static const char *const bad[] = { "ok@fab.example",
                                       "IMCEAX400-c=US+3Ba=+20+3Bo=Sales+3Bs=Nobody+3B@gw.example", NULL };
    envelope_of(&e, NULL, bad);
    ck_assert_int_eq(rewrite_envelope(&cfg, &e, &ref), -1);
    ck_assert_int_eq(ref.sender, 0);
    ck_assert_int_eq(ref.code, 550);
    ck_assert_str_eq(ref.status, "5.1.1");
    ck_assert_str_eq(ref.address, "IMCEAX400-c=US+3Ba=+20+3Bo=Sales+3Bs=Nobody+3B@gw.example");
    ck_assert_ptr_nonnull(strstr(ref.why, "is valid but not in the address map"));
    ck_assert_uint_eq(e.n_rcpt, 2);
    ck_assert(e.from.null_path);
    /* ... and while the map is not loaded: 451 4.3.5, to be tried again */
    ck_assert_int_eq(rewrite_envelope(&unloaded, &e, &ref), -1);
    ck_assert_int_eq(ref.code, 451);
    ck_assert_str_eq(ref.status, "4.3.5");
    env_free(&e);

    /* a sender whose embedded address breaks a rule */
    static const char *const one[] = { "ok@fab.example", NULL };
    envelope_of(&e, "IMCEAX400-a=+20+3Bo=Sales+3Bs=Ann+3B@gw.example", one);
    ck_assert_int_eq(rewrite_envelope(&cfg, &e, &ref), -1);
    ck_assert_int_eq(ref.sender, 1);
    ck_assert_str_eq(ref.status, "5.1.7");
    ck_assert_ptr_nonnull(strstr(ref.why, "field c: country is required"));
    env_free(&e);

    /* no map: kept as written, nothing recorded */
    struct rewrite_config none = { NULL, 0, &local };
    envelope_of(&e, LEE "@gw.example", to);
    ck_assert_int_eq(rewrite_envelope(&none, &e, &ref), 0);
    ck_assert_uint_eq(e.n_rcpt, 3);
    rcpt_is(&e, 0, ANN "@gw.example", "");
    env_free(&e);
    unload(&cfg, &local);
}
END_TEST

/* An alias may not make an envelope pass ENV_RCPT_MAX: refused, named. */
START_TEST(test_envelope_too_many)
{
    struct domain_list local;
    struct rewrite_config cfg = load("fab.example", &local);
    struct envelope e;
    struct rewrite_refusal ref;
    static const char *const none[] = { NULL };
    envelope_of(&e, NULL, none);
    struct addr_path p;
    mailbox("sales@fab.example", &p);
    for (int i = 0; i < ENV_RCPT_MAX / 2 + 1; i++)
        ck_assert_int_ge(env_add_rcpt(&e, &p, NULL), 0);
    ck_assert_int_eq(rewrite_envelope(&cfg, &e, &ref), -1);
    ck_assert_int_eq(ref.code, 550);
    ck_assert_str_eq(ref.status, "5.5.3");
    ck_assert_str_eq(ref.address, "sales@fab.example");
    ck_assert_uint_eq(e.n_rcpt, ENV_RCPT_MAX / 2 + 1);
    env_free(&e);
    unload(&cfg, &local);
}
END_TEST

Suite *rewrite_suite(void)
{
    Suite *s = suite_create("rewrite");
    TCase *tc = tcase_create("rewrite");
    tcase_add_loop_test(tc, test_rewrite_table, 0, (int)(sizeof cases / sizeof cases[0]));
    tcase_add_test(tc, test_without_map);
    tcase_add_test(tc, test_no_domain_to_encapsulate);
    tcase_add_test(tc, test_orcpt);
    tcase_add_test(tc, test_envelope);
    tcase_add_test(tc, test_envelope_too_many);
    suite_add_tcase(s, tc);
    return s;
}
