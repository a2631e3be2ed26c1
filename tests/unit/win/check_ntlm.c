/* check_ntlm.c - NTLM client and server contexts in one process, under Wine,
 * against the winbindd of tests/lib/winbind.sh (make unit-ntlm starts it).
 *
 * Without the fixture (IMSVC_WINBIND unset) every test fails and says so:
 * the server side cannot work without winbindd, and a silent skip would
 * hide that AUTH NTLM was never tested. */
#include <check.h>
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ntlm.h"
#include "ntlmmsg.h"

#define MAX_STEPS 6

static wchar_t dom_w[64], user_w[64], pass_w[128];
static char expect_user[160];

static void need_fixture(void)
{
    const char *on = getenv("IMSVC_WINBIND");
    const char *d = getenv("IMSVC_NTLM_DOMAIN");
    const char *u = getenv("IMSVC_NTLM_USER");
    const char *p = getenv("IMSVC_NTLM_PASSWORD");
    if (!on || !d || !u || !p)
        ck_abort_msg("winbindd fixture not running (IMSVC_WINBIND unset): run "
                     "`make -f Makefile.mingw unit-ntlm`, which starts tests/lib/winbind.sh");
    MultiByteToWideChar(CP_UTF8, 0, d, -1, dom_w, ARRAYSIZE(dom_w));
    MultiByteToWideChar(CP_UTF8, 0, u, -1, user_w, ARRAYSIZE(user_w));
    MultiByteToWideChar(CP_UTF8, 0, p, -1, pass_w, ARRAYSIZE(pass_w));
    snprintf(expect_user, sizeof expect_user, "%s\\%s", d, u);
}

struct run {
    SECURITY_STATUS client_st, server_st;
    enum ntlm_result client_res, server_res;
    int steps;
    unsigned char auth[4096];   /* the AUTHENTICATE the client sent */
    size_t auth_len;
};

/* Drive both contexts to the end: client token -> server -> client ... */
static void converse(struct ntlm *c, struct ntlm *s, struct run *r)
{
    memset(r, 0, sizeof *r);
    const unsigned char *tok = NULL;
    size_t len = 0;
    r->client_st = ntlm_step(c, NULL, 0, &r->client_res);
    for (r->steps = 1; r->steps < MAX_STEPS; r->steps++) {
        if (r->client_res != NTLM_CONTINUE && r->client_res != NTLM_DONE)
            return;
        tok = ntlm_token(c, &len);
        if (len == 0)
            return;
        if (r->client_res == NTLM_DONE && len <= sizeof r->auth) {
            memcpy(r->auth, tok, len);
            r->auth_len = len;
        }
        r->server_st = ntlm_step(s, tok, len, &r->server_res);
        if (r->server_res != NTLM_CONTINUE || r->client_res == NTLM_DONE)
            return;
        tok = ntlm_token(s, &len);
        r->client_st = ntlm_step(c, tok, len, &r->client_res);
    }
}

static void show(const char *what, const struct ntlm *s, const struct run *r)
{
    const struct ntlm_info *i = ntlm_info(s);
    printf("ntlm %s: client 0x%08lx %s, server 0x%08lx %s, user \"%s\" from %s\n", what,
           (unsigned long)r->client_st, ntlm_result_name(r->client_res),
           (unsigned long)r->server_st, ntlm_result_name(r->server_res), ntlm_user(s),
           ntlm_source_name(ntlm_user_source(s)));
    if (r->server_res != NTLM_DONE) {
        fflush(stdout);
        return;   /* the rest is recorded only after a completed handshake */
    }
    printf("ntlm %s: NAMES 0x%08lx, token 0x%08lx, SESSION_KEY 0x%08lx (%lu bits), "
           "KEY_INFO 0x%08lx (%lu bits), challenge flags 0x%08x, auth flags 0x%08x "
           "(%u bits), response %d, attributes 0x%08lx\n", what,
           (unsigned long)i->names_status, (unsigned long)i->token_status,
           (unsigned long)i->session_key_status, i->session_key_bits,
           (unsigned long)i->key_info_status, i->key_info_bits, (unsigned)i->challenge_flags,
           (unsigned)i->auth_flags, i->flag_key_bits, (int)i->response,
           (unsigned long)i->attributes);
    fflush(stdout);
}

START_TEST(right_password_names_the_user)
{
    need_fixture();
    struct ntlm *c, *s;
    ck_assert_int_eq(ntlm_client_new(&c, dom_w, user_w, pass_w, L"SMTPSVC/localhost"), SEC_E_OK);
    ck_assert_int_eq(ntlm_server_new(&s), SEC_E_OK);
    struct run r;
    converse(c, s, &r);
    show("right password", s, &r);
    ck_assert_int_eq(r.client_res, NTLM_DONE);
    ck_assert_int_eq(r.client_st, SEC_E_OK);
    ck_assert_int_eq(r.server_res, NTLM_DONE);
    ck_assert_int_eq(r.server_st, SEC_E_OK);
    ck_assert_str_eq(ntlm_user(s), expect_user);
    ck_assert_int_ne(ntlm_user_source(s), NTLM_NAME_NONE);

    /* What the client sent is what the server reported. */
    char from_msg[NTLM_USER_MAX];
    ck_assert_int_eq(ntlmmsg_auth_user(r.auth, r.auth_len, 0, from_msg, sizeof from_msg), NTLMMSG_OK);
    ck_assert_str_eq(from_msg, expect_user);

    /* Authentication only: neither side negotiated integrity or sealing. */
    const struct ntlm_info *si = ntlm_info(s), *ci = ntlm_info(c);
    ck_assert_uint_eq(si->attributes & (ASC_RET_CONFIDENTIALITY | ASC_RET_INTEGRITY), 0);
    ck_assert_uint_eq(ci->attributes & (ISC_RET_CONFIDENTIALITY | ISC_RET_INTEGRITY), 0);
    ck_assert_uint_eq(si->auth_flags & NTLMMSG_F_SEAL, 0);

    /* Both sides agree on the AUTHENTICATE flags; no more steps. */
    ck_assert_uint_eq(si->auth_flags, ci->auth_flags);
    enum ntlm_result res;
    ck_assert_int_eq(ntlm_step(s, r.auth, r.auth_len, &res), SEC_E_OUT_OF_SEQUENCE);
    ck_assert_int_eq(res, NTLM_FAILED);
    ntlm_free(c);
    ntlm_free(s);
}
END_TEST

START_TEST(wrong_password_is_logon_denied)
{
    need_fixture();
    struct ntlm *c, *s;
    ck_assert_int_eq(ntlm_client_new(&c, dom_w, user_w, L"not-the-password", NULL), SEC_E_OK);
    ck_assert_int_eq(ntlm_server_new(&s), SEC_E_OK);
    struct run r;
    converse(c, s, &r);
    show("wrong password", s, &r);
    ck_assert_int_eq(r.client_res, NTLM_DONE);
    ck_assert_int_eq(r.server_res, NTLM_DENIED);
    ck_assert_int_eq(r.server_st, SEC_E_LOGON_DENIED);
    ck_assert_str_eq(ntlm_user(s), "");
    ntlm_free(c);
    ntlm_free(s);
}
END_TEST

START_TEST(unknown_user_is_denied)
{
    need_fixture();
    struct ntlm *c, *s;
    ck_assert_int_eq(ntlm_client_new(&c, dom_w, L"nosuchuser", pass_w, NULL), SEC_E_OK);
    ck_assert_int_eq(ntlm_server_new(&s), SEC_E_OK);
    struct run r;
    converse(c, s, &r);
    show("unknown user", s, &r);
    ck_assert_int_eq(r.server_res, NTLM_DENIED);
    ck_assert(ntlm_status_is_denial(r.server_st));
    ntlm_free(c);
    ntlm_free(s);
}
END_TEST

START_TEST(key_size_is_recorded)
{
    need_fixture();
    struct ntlm *c, *s;
    ck_assert_int_eq(ntlm_client_new(&c, dom_w, user_w, pass_w, NULL), SEC_E_OK);
    ck_assert_int_eq(ntlm_server_new(&s), SEC_E_OK);
    struct run r;
    converse(c, s, &r);
    ck_assert_int_eq(r.server_res, NTLM_DONE);
    const struct ntlm_info *si = ntlm_info(s), *ci = ntlm_info(c);
    printf("ntlm key size: server SESSION_KEY 0x%08lx %lu bits, KEY_INFO 0x%08lx %lu bits; "
           "client SESSION_KEY 0x%08lx %lu bits, KEY_INFO 0x%08lx %lu bits; flags say %u bits\n",
           (unsigned long)si->session_key_status, si->session_key_bits,
           (unsigned long)si->key_info_status, si->key_info_bits,
           (unsigned long)ci->session_key_status, ci->session_key_bits,
           (unsigned long)ci->key_info_status, ci->key_info_bits, si->flag_key_bits);
    fflush(stdout);
    /* The flags always give a strength; SSPI's own answer is recorded with
     * its status, and when it answers, it is a real key. */
    ck_assert_uint_eq(si->flag_key_bits, ntlmmsg_key_bits(si->auth_flags));
    ck_assert(si->flag_key_bits == 128 || si->flag_key_bits == 56 || si->flag_key_bits == 40);
    if (si->session_key_status == SEC_E_OK)
        ck_assert_uint_ge(si->session_key_bits, 40);
    if (si->key_info_status == SEC_E_OK)
        ck_assert_uint_ge(si->key_info_bits, 40);
    ck_assert_int_ne(si->response, NTLMMSG_RESP_ANONYMOUS);
    ntlm_free(c);
    ntlm_free(s);
}
END_TEST

START_TEST(garbage_and_sequence_errors_fail)
{
    need_fixture();
    struct ntlm *s;
    enum ntlm_result res;
    ck_assert_int_eq(ntlm_server_new(&s), SEC_E_OK);
    static const unsigned char junk[] = "this is not an NTLM message";
    SECURITY_STATUS st = ntlm_step(s, junk, sizeof junk - 1, &res);
    printf("ntlm garbage NEGOTIATE: 0x%08lx %s\n", (unsigned long)st, ntlm_result_name(res));
    fflush(stdout);
    ck_assert_int_ne(st, SEC_E_OK);
    ck_assert_int_ne(st, SEC_I_CONTINUE_NEEDED);
    ck_assert(res == NTLM_FAILED || res == NTLM_DENIED);
    ck_assert_int_eq(ntlm_step(s, junk, sizeof junk - 1, &res), SEC_E_OUT_OF_SEQUENCE);
    ntlm_free(s);

    /* A server step with no token is refused before SSPI sees it. */
    ck_assert_int_eq(ntlm_server_new(&s), SEC_E_OK);
    ck_assert_int_eq(ntlm_step(s, NULL, 0, &res), SEC_E_INVALID_TOKEN);
    ck_assert_int_eq(res, NTLM_FAILED);
    ntlm_free(s);
}
END_TEST

/* Measured, not asserted beyond "it says something": what the current
 * account (no explicit credentials) and a foreign domain give under Wine. */
START_TEST(current_account_and_other_domain_are_reported)
{
    need_fixture();
    struct ntlm *c, *s;
    struct run r;
    SECURITY_STATUS st = ntlm_client_new(&c, NULL, NULL, NULL, NULL);
    printf("ntlm current account: AcquireCredentialsHandle 0x%08lx\n", (unsigned long)st);
    if (st == SEC_E_OK) {
        ck_assert_int_eq(ntlm_server_new(&s), SEC_E_OK);
        converse(c, s, &r);
        show("current account", s, &r);
        ck_assert(r.server_res != NTLM_DONE || ntlm_user(s)[0] != '\0');
        ntlm_free(c);
        ntlm_free(s);
    }

    ck_assert_int_eq(ntlm_client_new(&c, L"OTHERDOM", user_w, pass_w, NULL), SEC_E_OK);
    ck_assert_int_eq(ntlm_server_new(&s), SEC_E_OK);
    converse(c, s, &r);
    show("other domain", s, &r);
    if (r.server_res == NTLM_DONE)
        ck_assert_str_ne(ntlm_user(s), "");
    ntlm_free(c);
    ntlm_free(s);
}
END_TEST

Suite *ntlm_suite(void)
{
    Suite *s = suite_create("ntlm");
    TCase *tc = tcase_create("sspi");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, right_password_names_the_user);
    tcase_add_test(tc, wrong_password_is_logon_denied);
    tcase_add_test(tc, unknown_user_is_denied);
    tcase_add_test(tc, key_size_is_recorded);
    tcase_add_test(tc, garbage_and_sequence_errors_fail);
    tcase_add_test(tc, current_account_and_other_domain_are_reported);
    suite_add_tcase(s, tc);
    return s;
}
