/* check_smtpc.c - the SMTP client engine against scripted servers: EHLO and
 * the HELO fallback, STARTTLS by policy, AUTH NTLM and XAUTH NTLM, AUTH
 * PLAIN and LOGIN (only inside TLS, never shown), the "offers neither" failure, the transaction with and without pipelining,
 * per-recipient results, dot-stuffing, 8-bit content, segmentation,
 * multi-line and malformed replies, connection reuse, timeouts.
 *
 * The test plays both the socket layer (it answers the engine's events as
 * imsvc send does, with scripted SSPI tokens) and the server (its replies
 * are byte strings fed to the engine). A script may hold "<TLS>": the bytes
 * after it are fed only once the TLS handshake event was answered. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtpc.h"

#define MAX_MSGS 4
#define MAX_RCPT 4

struct msg_spec {
    const char *from;
    const char *to[MAX_RCPT];
    size_t n_to;
    const char *body;
    unsigned long long size;
    int eight_bit;
};

struct drv {
    struct smtpc_config cfg;
    struct smtpc *s;
    char out[1 << 16];
    size_t outlen;
    char log[1 << 16];              /* the transcript, "C: " / "S: " / "C*: " / "S*: " */
    size_t loglen;
    struct msg_spec msgs[MAX_MSGS];
    size_t n_msgs, next_msg, done_msgs;
    struct smtpc_result res[MAX_MSGS][MAX_RCPT];
    struct smtpc_result msg_res[MAX_MSGS];
    int starttls, ntlm_first, ntlm_next, authenticated, closed, readies, contents;
    int tls_fail;                   /* answer STARTTLS with smtpc_tls_failed */
    int no_quit;                    /* do not QUIT when idle */
    unsigned char challenge[64];
    size_t challenge_len;
    const char *tail;               /* script after <TLS> */
};

static void transcript(void *arg, enum smtpc_dir dir, const char *line, size_t len)
{
    struct drv *d = arg;
    static const char *const tag[] = { "C: ", "S: ", "C*: ", "S*: ", "C#: " };
    int n = snprintf(d->log + d->loglen, sizeof d->log - d->loglen, "%s%.*s\n", tag[dir],
                     (int)len, line);
    ck_assert_int_gt(n, 0);
    ck_assert_uint_lt(d->loglen + (size_t)n, sizeof d->log);
    d->loglen += (size_t)n;
}

static void drv_init(struct drv *d, enum smtpc_tls_policy tls, enum smtpc_auth_policy auth)
{
    memset(d, 0, sizeof *d);
    d->cfg.helo_name = "client.example";
    d->cfg.tls = tls;
    d->cfg.auth = auth;
    d->cfg.transcript = transcript;
    d->cfg.transcript_arg = d;
    d->s = smtpc_new(&d->cfg);
    ck_assert_ptr_nonnull(d->s);
}

static void drv_done(struct drv *d)
{
    smtpc_free(d->s);
    d->s = NULL;
}

static void add_msg(struct drv *d, const char *from, const char *to1, const char *to2,
                    const char *to3, const char *body)
{
    struct msg_spec *m = &d->msgs[d->n_msgs++];
    m->from = from;
    m->to[0] = to1;
    m->to[1] = to2;
    m->to[2] = to3;
    m->n_to = to3 ? 3 : to2 ? 2 : 1;
    m->body = body;
    m->size = strlen(body);
}

static void drain(struct drv *d)
{
    size_t n;
    const unsigned char *p = smtpc_output(d->s, &n);
    ck_assert_uint_lt(d->outlen + n, sizeof d->out);
    memcpy(d->out + d->outlen, p, n);
    d->outlen += n;
    d->out[d->outlen] = '\0';
    smtpc_output_consumed(d->s, n);
}

static void feed_all(struct drv *d, const char *data, size_t len, size_t seg);

static void answer(struct drv *d, const struct smtpc_event *ev)
{
    switch (ev->type) {
    case SMTPC_EV_STARTTLS:
        d->starttls++;
        if (d->tls_fail) {
            ck_assert_int_eq(smtpc_tls_failed(d->s, "SEC_E_UNTRUSTED_ROOT (0x80090325)"), 0);
        } else {
            ck_assert_int_eq(smtpc_tls_started(d->s), 0);
        }
        break;
    case SMTPC_EV_NTLM:
        if (ev->first) {
            d->ntlm_first++;
            ck_assert_int_eq(smtpc_ntlm_token(d->s, "NEGOTIATE", 9), 0);
        } else {
            d->ntlm_next++;
            ck_assert_uint_le(ev->len, sizeof d->challenge);
            memcpy(d->challenge, ev->data, ev->len);
            d->challenge_len = ev->len;
            ck_assert_int_eq(smtpc_ntlm_token(d->s, "AUTHENTICATE", 12), 0);
        }
        break;
    case SMTPC_EV_AUTHENTICATED:
        d->authenticated++;
        break;
    case SMTPC_EV_READY:
        d->readies++;
        if (d->next_msg < d->n_msgs) {
            const struct msg_spec *m = &d->msgs[d->next_msg++];
            struct smtpc_message sm = { m->from, m->to, m->n_to, m->size, m->eight_bit };
            ck_assert_int_eq(smtpc_message_begin(d->s, &sm), 0);
        } else if (!d->no_quit) {
            ck_assert_int_eq(smtpc_quit(d->s), 0);
        }
        break;
    case SMTPC_EV_CONTENT: {
        const struct msg_spec *m = &d->msgs[d->next_msg - 1];
        size_t off = 0, n = strlen(m->body);
        d->contents++;
        while (off < n) {
            size_t took = smtpc_content(d->s, m->body + off, n - off);
            drain(d);
            off += took;
        }
        ck_assert_int_eq(smtpc_content_end(d->s), 0);
        break;
    }
    case SMTPC_EV_MESSAGE_DONE: {
        size_t k = d->done_msgs++;
        ck_assert_uint_lt(k, MAX_MSGS);
        ck_assert_uint_le(smtpc_rcpt_count(d->s), MAX_RCPT);
        for (size_t i = 0; i < smtpc_rcpt_count(d->s); i++)
            d->res[k][i] = *smtpc_rcpt_result(d->s, i);
        d->msg_res[k] = *smtpc_message_result(d->s);
        break;
    }
    case SMTPC_EV_CLOSE:
        d->closed = 1;
        break;
    case SMTPC_EV_NONE:
        break;
    }
}

static void pump(struct drv *d)
{
    for (int guard = 0; guard < 1000; guard++) {
        struct smtpc_event ev;
        enum smtpc_event_type t = smtpc_next(d->s, &ev);
        drain(d);
        answer(d, &ev);
        drain(d);
        if (t == SMTPC_EV_NONE || t == SMTPC_EV_CLOSE)
            return;
    }
    ck_abort_msg("the engine does not settle");
}

static void feed_all(struct drv *d, const char *data, size_t len, size_t seg)
{
    size_t off = 0;
    pump(d);
    while (off < len) {
        size_t k = seg && seg < len - off ? seg : len - off;
        size_t took = smtpc_feed(d->s, data + off, k);
        off += took;
        pump(d);
    }
}

/* Play a server script in segments of seg octets (0: all at once). */
static void play_seg(struct drv *d, const char *script, size_t seg)
{
    const char *tls = strstr(script, "<TLS>");
    size_t n1 = tls ? (size_t)(tls - script) : strlen(script);
    feed_all(d, script, n1, seg);
    if (tls) {
        ck_assert_int_eq(d->starttls, 1);
        feed_all(d, tls + 5, strlen(tls + 5), seg);
    }
}

static void play(struct drv *d, const char *script)
{
    play_seg(d, script, 0);
}

static int has(const char *hay, const char *needle)
{
    return strstr(hay, needle) != NULL;
}

#define GREET "220 mx.example.net ESMTP\r\n"
#define EHLO_FULL "250-mx.example.net\r\n250-PIPELINING\r\n250-SIZE 1000000\r\n" \
                  "250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n"
#define EHLO_PLAIN "250-mx.example.net\r\n250 ENHANCEDSTATUSCODES\r\n"

/* EHLO, HELO ------------------------------------------------------------------ */

START_TEST(ehlo_extensions)
{
    struct drv d;
    drv_init(&d, SMTPC_TLS_OFF, SMTPC_AUTH_NONE);
    d.no_quit = 1;
    play(&d, GREET "250-mx.example.net hello\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n"
             "250-8bitmime\r\n250-STARTTLS\r\n250-AUTH=LOGIN\r\n250-AUTH NTLM LOGIN\r\n"
             "250-XAUTH NTLM\r\n250 ENHANCEDSTATUSCODES\r\n");
    ck_assert_str_eq(d.out, "EHLO client.example\r\n");
    ck_assert_uint_eq(smtpc_extensions(d.s),
                      SC_EXT_PIPELINING | SC_EXT_SIZE | SC_EXT_8BITMIME | SC_EXT_STARTTLS |
                      SC_EXT_AUTH | SC_EXT_AUTH_NTLM | SC_EXT_AUTH_LOGIN | SC_EXT_XAUTH |
                      SC_EXT_XAUTH_NTLM | SC_EXT_ENHANCED);
    ck_assert_uint_eq(smtpc_size_limit(d.s), 52428800ull);
    ck_assert_uint_eq(smtpc_flags(d.s), SC_EHLO);
    ck_assert_int_eq(d.readies, 1);
    ck_assert_int_eq(smtpc_last_reply(d.s)->code, 250);
    ck_assert(has(d.log, "S: 250-XAUTH NTLM\n"));
    ck_assert_int_eq(smtpc_timeout_kind(d.s), SMTPC_TO_NONE);
    drv_done(&d);
}
END_TEST

START_TEST(helo_fallback)
{
    struct drv d;
    drv_init(&d, SMTPC_TLS_OFF, SMTPC_AUTH_NONE);
    add_msg(&d, "alice@example.com", "bob@example.net", NULL, NULL, "Subject: x\r\n\r\nhi\r\n");
    play(&d, GREET "502 5.5.2 Command not recognized\r\n250 mx.example.net\r\n"
             "250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n221 bye\r\n");
    ck_assert_str_eq(d.out, "EHLO client.example\r\nHELO client.example\r\n"
                            "MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.net>\r\nDATA\r\n"
                            "Subject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n");
    ck_assert_uint_eq(smtpc_flags(d.s), 0);
    ck_assert_uint_eq(smtpc_extensions(d.s), 0);
    ck_assert_int_eq(d.res[0][0].outcome, SMTPC_OK);
    ck_assert_int_eq(d.closed, 1);
    ck_assert_int_eq(smtpc_failure(d.s)->outcome, SMTPC_OK);
    drv_done(&d);

    /* both refused */
    drv_init(&d, SMTPC_TLS_OFF, SMTPC_AUTH_NONE);
    play(&d, GREET "500 what\r\n550 5.7.1 go away\r\n");
    ck_assert_int_eq(d.closed, 1);
    ck_assert_int_eq(smtpc_failure(d.s)->outcome, SMTPC_PERMANENT);
    ck_assert_str_eq(smtpc_failure(d.s)->status, "5.7.1");
    ck_assert_str_eq(smtpc_failure(d.s)->why,
                     "the server refused both EHLO and HELO: 550 5.7.1 go away");
    ck_assert(has(d.out, "HELO client.example\r\nQUIT\r\n"));
    drv_done(&d);

    /* 4xx to EHLO is not a reason to try HELO */
    drv_init(&d, SMTPC_TLS_OFF, SMTPC_AUTH_NONE);
    play(&d, GREET "451 4.3.0 try later\r\n");
    ck_assert_int_eq(smtpc_failure(d.s)->outcome, SMTPC_TRANSIENT);
    ck_assert(!has(d.out, "HELO"));
    drv_done(&d);

    /* a 554 greeting */
    drv_init(&d, SMTPC_TLS_OFF, SMTPC_AUTH_NONE);
    play(&d, "554 5.7.1 no mail from you\r\n");
    ck_assert_int_eq(smtpc_failure(d.s)->outcome, SMTPC_PERMANENT);
    ck_assert_str_eq(d.out, "QUIT\r\n");
    drv_done(&d);
}
END_TEST

/* STARTTLS ------------------------------------------------------------------ */

START_TEST(starttls_required_offered)
{
    struct drv d;
    drv_init(&d, SMTPC_TLS_REQUIRED, SMTPC_AUTH_NONE);
    add_msg(&d, "a@example.com", "b@example.net", NULL, NULL, "x\r\n");
    /* what the server said in clear (AUTH LOGIN, SIZE 10) must be forgotten */
    play(&d, GREET "250-mx\r\n250-STARTTLS\r\n250-SIZE 10\r\n250 AUTH LOGIN\r\n"
             "220 2.0.0 go ahead\r\n250 injected\r\n<TLS>"
             "250-mx\r\n250 8BITMIME\r\n250 ok\r\n250 ok\r\n354 go\r\n250 ok\r\n221 bye\r\n");
    ck_assert_str_eq(d.out, "EHLO client.example\r\nSTARTTLS\r\nEHLO client.example\r\n"
                            "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n"
                            "x\r\n.\r\nQUIT\r\n");
    ck_assert_int_eq(d.starttls, 1);
    ck_assert_uint_eq(smtpc_flags(d.s), SC_EHLO | SC_TLS);
    ck_assert_uint_eq(smtpc_extensions(d.s), SC_EXT_8BITMIME);
    ck_assert_uint_eq(smtpc_size_limit(d.s), 0);
    ck_assert_int_eq(d.res[0][0].outcome, SMTPC_OK);
    drv_done(&d);
}
END_TEST

START_TEST(starttls_required_missing_or_refused)
{
    struct drv d;
    drv_init(&d, SMTPC_TLS_REQUIRED, SMTPC_AUTH_NONE);
    add_msg(&d, "a@example.com", "b@example.net", NULL, NULL, "x\r\n");
    play(&d, GREET EHLO_FULL);
    ck_assert_int_eq(d.closed, 1);
    ck_assert_int_eq(d.readies, 0);
    ck_assert_int_eq(smtpc_failure(d.s)->outcome, SMTPC_TRANSIENT);   /* the default */
    ck_assert_int_eq(smtpc_failure(d.s)->reason, SMTPC_R_TLS_NOT_OFFERED);
    ck_assert_str_eq(smtpc_failure(d.s)->status, "4.7.10");
    ck_assert_str_eq(smtpc_failure(d.s)->why, "TLS is required but the server does not offer STARTTLS");
    ck_assert_str_eq(d.out, "EHLO client.example\r\nQUIT\r\n");
    drv_done(&d);

    /* configured permanent */
    drv_init(&d, SMTPC_TLS_REQUIRED, SMTPC_AUTH_NONE);
    d.cfg.tls_missing = SMTPC_CLASS_PERMANENT;
    play(&d, GREET "500 no\r\n250 mx\r\n");
    ck_assert_int_eq(smtpc_failure(d.s)->outcome, SMTPC_PERMANENT);
    ck_assert_str_eq(smtpc_failure(d.s)->status, "5.7.10");
    ck_assert_str_eq(smtpc_failure(d.s)->why,
                     "TLS is required but the server does not offer STARTTLS (it does not accept EHLO)");
    drv_done(&d);

    /* offered, then refused */
    drv_init(&d, SMTPC_TLS_REQUIRED, SMTPC_AUTH_NONE);
    play(&d, GREET "250-mx\r\n250 STARTTLS\r\n454 4.7.0 TLS not available due to temporary reason\r\n");
    ck_assert_int_eq(smtpc_failure(d.s)->outcome, SMTPC_TRANSIENT);
    ck_assert_int_eq(smtpc_failure(d.s)->reason, SMTPC_R_TLS_REFUSED);
    ck_assert_str_eq(smtpc_failure(d.s)->why, "TLS is required but the server refused STARTTLS: "
                                              "454 4.7.0 TLS not available due to temporary reason");
    ck_assert_int_eq(smtpc_failure(d.s)->reply.code, 454);
    drv_done(&d);

    /* the handshake failed */
    drv_init(&d, SMTPC_TLS_REQUIRED, SMTPC_AUTH_NONE);
    d.tls_fail = 1;
    add_msg(&d, "a@example.com", "b@example.net", NULL, NULL, "x\r\n");
    play(&d, GREET "250-mx\r\n250 STARTTLS\r\n220 go\r\n");
    ck_assert_int_eq(d.closed, 1);
    ck_assert_int_eq(smtpc_failure(d.s)->outcome, SMTPC_TRANSIENT);
    ck_assert_int_eq(smtpc_failure(d.s)->reason, SMTPC_R_TLS_FAILED);
    ck_assert(has(smtpc_failure(d.s)->why, "0x80090325"));
    ck_assert_str_eq(d.out, "EHLO client.example\r\nSTARTTLS\r\n");
    drv_done(&d);
}
END_TEST

START_TEST(starttls_opportunistic_and_off)
{
    struct drv d;
    /* offered: used */
    drv_init(&d, SMTPC_TLS_OPPORTUNISTIC, SMTPC_AUTH_NONE);
    play(&d, GREET "250-mx\r\n250 STARTTLS\r\n220 go\r\n<TLS>250 mx\r\n221 bye\r\n");
    ck_assert_str_eq(d.out, "EHLO client.example\r\nSTARTTLS\r\nEHLO client.example\r\nQUIT\r\n");
    ck_assert_uint_eq(smtpc_flags(d.s) & SC_TLS, SC_TLS);
    drv_done(&d);

    /* not offered: in clear */
    drv_init(&d, SMTPC_TLS_OPPORTUNISTIC, SMTPC_AUTH_NONE);
    play(&d, GREET "250 mx\r\n221 bye\r\n");
    ck_assert_str_eq(d.out, "EHLO client.example\r\nQUIT\r\n");
    ck_assert_int_eq(d.starttls, 0);
    ck_assert_int_eq(smtpc_failure(d.s)->outcome, SMTPC_OK);
    drv_done(&d);

    /* refused: in clear */
    drv_init(&d, SMTPC_TLS_OPPORTUNISTIC, SMTPC_AUTH_NONE);
    play(&d, GREET "250-mx\r\n250 STARTTLS\r\n454 4.7.0 not now\r\n221 bye\r\n");
    ck_assert_str_eq(d.out, "EHLO client.example\r\nSTARTTLS\r\nQUIT\r\n");
    ck_assert_int_eq(smtpc_failure(d.s)->outcome, SMTPC_OK);
    drv_done(&d);

    /* off: never, even when offered */
    drv_init(&d, SMTPC_TLS_OFF, SMTPC_AUTH_NONE);
    play(&d, GREET "250-mx\r\n250 STARTTLS\r\n221 bye\r\n");
    ck_assert_str_eq(d.out, "EHLO client.example\r\nQUIT\r\n");
    drv_done(&d);
}
END_TEST

/* AUTH and XAUTH ------------------------------------------------------------ */

START_TEST(auth_ntlm_over_xauth)
{
    struct drv d;
    drv_init(&d, SMTPC_TLS_OFF, SMTPC_AUTH_REQUIRED);
    /* "CHALLENGE" in base64: Q0hBTExFTkdF */
    play(&d, GREET "250-mx\r\n250-XAUTH NTLM\r\n250 AUTH LOGIN NTLM\r\n"
             "334 ntlm supported\r\n334 Q0hBTExFTkdF\r\n235 2.7.0 Authentication successful\r\n"
             "221 bye\r\n");
    /* NEGOTIATE = TkVHT1RJQVRF, AUTHENTICATE = QVVUSEVOVElDQVRF */
    ck_assert_str_eq(d.out, "EHLO client.example\r\nAUTH NTLM\r\nTkVHT1RJQVRF\r\nQVVUSEVOVElDQVRF\r\n"
                            "QUIT\r\n");
    ck_assert_int_eq(d.ntlm_first, 1);
    ck_assert_int_eq(d.ntlm_next, 1);
    ck_assert_uint_eq(d.challenge_len, 9);
    ck_assert(memcmp(d.challenge, "CHALLENGE", 9) == 0);
    ck_assert_int_eq(d.authenticated, 1);
    ck_assert_uint_eq(smtpc_flags(d.s), SC_EHLO | SC_AUTHENTICATED);
    ck_assert(has(d.log, "C*: TkVHT1RJQVRF\nS*: 334 Q0hBTExFTkdF\nC*: QVVUSEVOVElDQVRF\n"));
    drv_done(&d);
}
END_TEST

START_TEST(xauth_only)
{
    struct drv d;
    drv_init(&d, SMTPC_TLS_OFF, SMTPC_AUTH_REQUIRED);
    play(&d, GREET "250-mx\r\n250-AUTH LOGIN\r\n250 XAUTH NTLM\r\n"
             "334 ntlm supported\r\n334 Q0hBTExFTkdF\r\n235 ok\r\n221 bye\r\n");
    ck_assert_str_eq(d.out, "EHLO client.example\r\nXAUTH NTLM\r\nTkVHT1RJQVRF\r\nQVVUSEVOVElDQVRF\r\n"
                            "QUIT\r\n");
    ck_assert_uint_eq(smtpc_flags(d.s), SC_EHLO | SC_AUTHENTICATED | SC_XAUTH);
    drv_done(&d);
}
END_TEST

START_TEST(auth_offers_neither)
{
    struct drv d;
    drv_init(&d, SMTPC_TLS_OFF, SMTPC_AUTH_REQUIRED);
    add_msg(&d, "a@example.com", "b@example.net", NULL, NULL, "x\r\n");
    play(&d, GREET "250-mx\r\n250 AUTH LOGIN PLAIN\r\n");
    ck_assert_int_eq(d.closed, 1);
    ck_assert_int_eq(smtpc_failure(d.s)->outcome, SMTPC_PERMANENT);
    ck_assert_int_eq(smtpc_failure(d.s)->reason, SMTPC_R_AUTH_NOT_OFFERED);
    ck_assert_str_eq(smtpc_failure(d.s)->why, "authentication is required but the server offers "
                                              "neither AUTH NTLM nor XAUTH NTLM (it offers: AUTH LOGIN PLAIN)");
    ck_assert_str_eq(d.out, "EHLO client.example\r\nQUIT\r\n");
    drv_done(&d);

    drv_init(&d, SMTPC_TLS_OFF, SMTPC_AUTH_REQUIRED);
    play(&d, GREET "250-mx\r\n250-AUTH=LOGIN\r\n250 XAUTH KERBEROS\r\n");
    ck_assert_str_eq(smtpc_failure(d.s)->why, "authentication is required but the server offers "
                                              "neither AUTH NTLM nor XAUTH NTLM (it offers: AUTH LOGIN; XAUTH KERBEROS)");
    drv_done(&d);

    drv_init(&d, SMTPC_TLS_OFF, SMTPC_AUTH_REQUIRED);
    d.cfg.auth_missing = SMTPC_CLASS_TRANSIENT;
    play(&d, GREET "250-mx\r\n250 8BITMIME\r\n");
    ck_assert_int_eq(smtpc_failure(d.s)->outcome, SMTPC_TRANSIENT);
    ck_assert_str_eq(smtpc_failure(d.s)->why,
                     "authentication is required but the server offers no authentication at all");
    ck_assert(!has(smtpc_failure(d.s)->why, "argument"));
    drv_done(&d);

    /* only when required: otherwise go on unauthenticated */
    drv_init(&d, SMTPC_TLS_OFF, SMTPC_AUTH_IF_OFFERED);
    play(&d, GREET "250-mx\r\n250 AUTH LOGIN PLAIN\r\n221 bye\r\n");
    ck_assert_str_eq(d.out, "EHLO client.example\r\nQUIT\r\n");
    ck_assert_int_eq(smtpc_failure(d.s)->outcome, SMTPC_OK);
    drv_done(&d);
}
END_TEST

START_TEST(auth_refused)
{
    struct drv d;
    drv_init(&d, SMTPC_TLS_OFF, SMTPC_AUTH_REQUIRED);
    play(&d, GREET "250-mx\r\n250 AUTH NTLM\r\n334 ntlm supported\r\n334 Q0hBTExFTkdF\r\n"
             "535 5.7.3 Authentication unsuccessful\r\n");
    ck_assert_int_eq(smtpc_failure(d.s)->outcome, SMTPC_PERMANENT);
    ck_assert_int_eq(smtpc_failure(d.s)->reason, SMTPC_R_AUTH_REFUSED);
    ck_assert_str_eq(smtpc_failure(d.s)->why,
                     "the server refused AUTH NTLM: 535 5.7.3 Authentication unsuccessful");
    ck_assert_int_eq(d.authenticated, 0);
    drv_done(&d);

    drv_init(&d, SMTPC_TLS_OFF, SMTPC_AUTH_REQUIRED);
    play(&d, GREET "250-mx\r\n250 XAUTH NTLM\r\n454 4.7.0 Temporary authentication failure\r\n");
    ck_assert_int_eq(smtpc_failure(d.s)->outcome, SMTPC_TRANSIENT);
    ck_assert_str_eq(smtpc_failure(d.s)->status, "4.7.0");
    drv_done(&d);

    /* a challenge that is not base64 */
    drv_init(&d, SMTPC_TLS_OFF, SMTPC_AUTH_REQUIRED);
    play(&d, GREET "250-mx\r\n250 AUTH NTLM\r\n334 ntlm supported\r\n334 not base64!\r\n");
    ck_assert_int_eq(smtpc_failure(d.s)->reason, SMTPC_R_PROTOCOL);
    ck_assert_int_eq(d.ntlm_next, 0);
    drv_done(&d);
}
END_TEST

/* AUTH PLAIN and LOGIN ------------------------------------------------------- */

#define PW_USER "alice"
#define PW_PASS "s3cret!"
#define PW_PLAIN_B64 "AGFsaWNlAHMzY3JldCE="     /* "\0alice\0s3cret!" */
#define PW_USER_B64 "YWxpY2U="
#define PW_PASS_B64 "czNjcmV0IQ=="

static void pw_init(struct drv *d, enum smtpc_tls_policy tls, enum smtpc_auth_policy auth,
                    unsigned mechs)
{
    drv_init(d, tls, auth);
    d->cfg.mechs = mechs;
    d->cfg.user = PW_USER;
    d->cfg.password = PW_PASS;
}

/* Neither the password nor its base64 forms are in the transcript. */
static void assert_hidden(const struct drv *d)
{
    ck_assert(!has(d->log, PW_PASS));
    ck_assert(!has(d->log, PW_PLAIN_B64));
    ck_assert(!has(d->log, PW_PASS_B64));
}

START_TEST(auth_plain_inside_tls)
{
    struct drv d;
    pw_init(&d, SMTPC_TLS_REQUIRED, SMTPC_AUTH_REQUIRED, SMTPC_MECH_PLAIN | SMTPC_MECH_LOGIN);
    /* offered in clear too: nothing is sent before TLS */
    play(&d, GREET "250-mx\r\n250-STARTTLS\r\n250 AUTH PLAIN LOGIN\r\n220 go\r\n"
             "<TLS>250-mx\r\n250 AUTH LOGIN PLAIN\r\n235 2.7.0 Authentication successful\r\n"
             "221 bye\r\n");
    ck_assert_str_eq(d.out, "EHLO client.example\r\nSTARTTLS\r\nEHLO client.example\r\n"
                            "AUTH PLAIN " PW_PLAIN_B64 "\r\nQUIT\r\n");
    ck_assert_uint_eq(smtpc_flags(d.s), SC_EHLO | SC_TLS | SC_AUTHENTICATED);
    ck_assert_int_eq(d.authenticated, 1);
    ck_assert_int_eq(d.ntlm_first, 0);
    ck_assert_str_eq(smtpc_auth_verb(d.s), "AUTH PLAIN");
    ck_assert(has(d.log, "C#: AUTH PLAIN <user name and password>\n"));
    assert_hidden(&d);
    ck_assert_int_eq(smtpc_failure(d.s)->outcome, SMTPC_OK);
    drv_done(&d);
}
END_TEST

START_TEST(auth_login_inside_tls)
{
    struct drv d;
    pw_init(&d, SMTPC_TLS_REQUIRED, SMTPC_AUTH_REQUIRED, SMTPC_MECH_PLAIN | SMTPC_MECH_LOGIN);
    play(&d, GREET "250-mx\r\n250 STARTTLS\r\n220 go\r\n<TLS>250-mx\r\n250 AUTH=LOGIN\r\n"
             "334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n235 ok\r\n221 bye\r\n");
    ck_assert_str_eq(d.out, "EHLO client.example\r\nSTARTTLS\r\nEHLO client.example\r\n"
                            "AUTH LOGIN\r\n" PW_USER_B64 "\r\n" PW_PASS_B64 "\r\nQUIT\r\n");
    ck_assert_uint_eq(smtpc_flags(d.s), SC_EHLO | SC_TLS | SC_AUTHENTICATED);
    ck_assert_str_eq(smtpc_auth_verb(d.s), "AUTH LOGIN");
    /* the prompts are shown as they came, the answers as labels */
    ck_assert(has(d.log, "S: 334 VXNlcm5hbWU6\nC#: <user name>\nS: 334 UGFzc3dvcmQ6\nC#: <password>\n"));
    assert_hidden(&d);
    drv_done(&d);

    /* a third prompt is not answered */
    pw_init(&d, SMTPC_TLS_REQUIRED, SMTPC_AUTH_REQUIRED, SMTPC_MECH_LOGIN);
    play(&d, GREET "250-mx\r\n250 STARTTLS\r\n220 go\r\n<TLS>250-mx\r\n250 AUTH LOGIN\r\n"
             "334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n334 TW9yZTo=\r\n");
    ck_assert_int_eq(smtpc_failure(d.s)->reason, SMTPC_R_PROTOCOL);
    ck_assert_int_eq(d.authenticated, 0);
    drv_done(&d);

    /* PLAIN sent its response whole: a 334 after it makes no sense */
    pw_init(&d, SMTPC_TLS_REQUIRED, SMTPC_AUTH_REQUIRED, SMTPC_MECH_PLAIN);
    play(&d, GREET "250-mx\r\n250 STARTTLS\r\n220 go\r\n<TLS>250-mx\r\n250 AUTH PLAIN\r\n"
             "334 \r\n");
    ck_assert_int_eq(smtpc_failure(d.s)->reason, SMTPC_R_PROTOCOL);
    drv_done(&d);
}
END_TEST

START_TEST(auth_ntlm_first_when_allowed)
{
    struct drv d;
    pw_init(&d, SMTPC_TLS_REQUIRED, SMTPC_AUTH_REQUIRED, SMTPC_MECH_NTLM | SMTPC_MECH_PLAIN);
    play(&d, GREET "250-mx\r\n250 STARTTLS\r\n220 go\r\n<TLS>250-mx\r\n250 AUTH PLAIN NTLM\r\n"
             "334 ntlm supported\r\n334 Q0hBTExFTkdF\r\n235 ok\r\n221 bye\r\n");
    ck_assert(has(d.out, "\r\nAUTH NTLM\r\n"));
    ck_assert(!has(d.out, "AUTH PLAIN"));
    ck_assert_str_eq(smtpc_auth_verb(d.s), "AUTH NTLM");
    drv_done(&d);

    /* NTLM only (the default): PLAIN offered is not used */
    pw_init(&d, SMTPC_TLS_REQUIRED, SMTPC_AUTH_REQUIRED, 0);
    play(&d, GREET "250-mx\r\n250 STARTTLS\r\n220 go\r\n<TLS>250-mx\r\n250 AUTH PLAIN LOGIN\r\n");
    ck_assert_int_eq(smtpc_failure(d.s)->reason, SMTPC_R_AUTH_NOT_OFFERED);
    ck_assert(!has(d.out, "AUTH "));
    drv_done(&d);

    /* PLAIN allowed but no user: said plainly, nothing sent */
    drv_init(&d, SMTPC_TLS_REQUIRED, SMTPC_AUTH_REQUIRED);
    d.cfg.mechs = SMTPC_MECH_PLAIN;
    play(&d, GREET "250-mx\r\n250 STARTTLS\r\n220 go\r\n<TLS>250-mx\r\n250 AUTH PLAIN\r\n");
    ck_assert_int_eq(smtpc_failure(d.s)->outcome, SMTPC_TRANSIENT);
    ck_assert_str_eq(smtpc_failure(d.s)->why, "authentication is required but no user name and "
                                              "password are set for AUTH PLAIN or LOGIN");
    ck_assert(!has(d.out, "AUTH "));
    drv_done(&d);

    /* allowed mechanisms none of which is offered: the sentence names both sides */
    pw_init(&d, SMTPC_TLS_REQUIRED, SMTPC_AUTH_REQUIRED, SMTPC_MECH_PLAIN | SMTPC_MECH_LOGIN);
    play(&d, GREET "250-mx\r\n250 STARTTLS\r\n220 go\r\n<TLS>250-mx\r\n250 AUTH CRAM-MD5\r\n");
    ck_assert_int_eq(smtpc_failure(d.s)->outcome, SMTPC_PERMANENT);
    ck_assert_str_eq(smtpc_failure(d.s)->why, "authentication is required but the server offers "
                                              "none of: AUTH PLAIN, AUTH LOGIN (it offers: AUTH CRAM-MD5)");
    drv_done(&d);
}
END_TEST

START_TEST(auth_password_never_in_clear)
{
    static const struct {
        enum smtpc_tls_policy tls;
        const char *script;
        const char *out;
        const char *because;
    } cases[] = {
        { SMTPC_TLS_OPPORTUNISTIC, GREET "250-mx\r\n250 AUTH PLAIN LOGIN\r\n",
          "EHLO client.example\r\nQUIT\r\n", "the server does not offer STARTTLS" },
        { SMTPC_TLS_OPPORTUNISTIC, GREET "250-mx\r\n250-STARTTLS\r\n250 AUTH LOGIN\r\n"
          "454 4.7.0 TLS not available\r\n",
          "EHLO client.example\r\nSTARTTLS\r\nQUIT\r\n", "the server refused STARTTLS" },
        { SMTPC_TLS_OFF, GREET "250-mx\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n",
          "EHLO client.example\r\nQUIT\r\n", "TLS is off for this server" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct drv d;
        char why[300];
        pw_init(&d, cases[i].tls, SMTPC_AUTH_REQUIRED, SMTPC_MECH_PLAIN | SMTPC_MECH_LOGIN);
        add_msg(&d, "a@example.com", "b@example.net", NULL, NULL, "x\r\n");
        play(&d, cases[i].script);
        ck_assert_str_eq(d.out, cases[i].out);
        ck_assert_int_eq(d.closed, 1);
        const struct smtpc_result *f = smtpc_failure(d.s);
        ck_assert_int_eq(f->outcome, SMTPC_TRANSIENT);
        ck_assert_int_eq(f->reason, SMTPC_R_AUTH_NEEDS_TLS);
        ck_assert_str_eq(f->status, "4.7.11");
        snprintf(why, sizeof why, "authentication is required and the server offers %s, but the "
                 "session is not encrypted (%s): a password is never sent in clear",
                 i == 1 ? "AUTH LOGIN" : "AUTH PLAIN", cases[i].because);
        ck_assert_str_eq(f->why, why);
        assert_hidden(&d);
        ck_assert(!has(d.out, PW_USER_B64));
        drv_done(&d);
    }

    /* tls_missing decides the class */
    struct drv d;
    pw_init(&d, SMTPC_TLS_OPPORTUNISTIC, SMTPC_AUTH_REQUIRED, SMTPC_MECH_PLAIN);
    d.cfg.tls_missing = SMTPC_CLASS_PERMANENT;
    play(&d, GREET "250-mx\r\n250 AUTH PLAIN\r\n");
    ck_assert_int_eq(smtpc_failure(d.s)->outcome, SMTPC_PERMANENT);
    ck_assert_str_eq(smtpc_failure(d.s)->status, "5.7.11");
    drv_done(&d);

    /* only if offered: go on without authenticating, still nothing sent */
    pw_init(&d, SMTPC_TLS_OPPORTUNISTIC, SMTPC_AUTH_IF_OFFERED, SMTPC_MECH_PLAIN | SMTPC_MECH_LOGIN);
    play(&d, GREET "250-mx\r\n250 AUTH PLAIN LOGIN\r\n221 bye\r\n");
    ck_assert_str_eq(d.out, "EHLO client.example\r\nQUIT\r\n");
    ck_assert_int_eq(smtpc_failure(d.s)->outcome, SMTPC_OK);
    ck_assert_str_eq(smtpc_auth_verb(d.s), "");
    drv_done(&d);
}
END_TEST

START_TEST(auth_password_refused)
{
    struct drv d;
    const char *script = GREET "250-mx\r\n250 STARTTLS\r\n220 go\r\n<TLS>250-mx\r\n"
                         "250 AUTH PLAIN LOGIN\r\n535 5.7.8 Error: authentication failed: "
                         "authentication failure\r\n";
    pw_init(&d, SMTPC_TLS_REQUIRED, SMTPC_AUTH_REQUIRED, SMTPC_MECH_PLAIN);
    play(&d, script);
    ck_assert_int_eq(smtpc_failure(d.s)->outcome, SMTPC_PERMANENT);
    ck_assert_int_eq(smtpc_failure(d.s)->reason, SMTPC_R_AUTH_REFUSED);
    ck_assert_str_eq(smtpc_failure(d.s)->status, "5.7.8");
    drv_done(&d);

    /* a queue that defers instead: the reply stays verbatim, the status takes the class */
    pw_init(&d, SMTPC_TLS_REQUIRED, SMTPC_AUTH_REQUIRED, SMTPC_MECH_PLAIN);
    d.cfg.auth_refused = SMTPC_CLASS_TRANSIENT;
    add_msg(&d, "a@example.com", "b@example.net", NULL, NULL, "x\r\n");
    play(&d, script);
    const struct smtpc_result *f = smtpc_failure(d.s);
    ck_assert_int_eq(f->outcome, SMTPC_TRANSIENT);
    ck_assert_str_eq(f->status, "4.7.8");
    ck_assert_int_eq(f->reply.code, 535);
    ck_assert_str_eq(f->why, "the server refused AUTH PLAIN: 535 5.7.8 Error: authentication "
                             "failed: authentication failure");
    ck_assert(has(d.out, "AUTH PLAIN " PW_PLAIN_B64 "\r\nQUIT\r\n"));
    assert_hidden(&d);
    drv_done(&d);
}
END_TEST

START_TEST(answers_out_of_turn)
{
    struct drv d;
    struct smtpc_message m = { "a@example.com", (const char *const[]){ "b@example.net" }, 1, 0, 0 };
    drv_init(&d, SMTPC_TLS_OFF, SMTPC_AUTH_NONE);
    ck_assert_int_eq(smtpc_tls_started(d.s), -1);
    ck_assert_int_eq(smtpc_ntlm_token(d.s, "x", 1), -1);
    ck_assert_int_eq(smtpc_message_begin(d.s, &m), -1);
    ck_assert_int_eq(smtpc_content_end(d.s), -1);
    ck_assert_uint_eq(smtpc_content(d.s, "x", 1), 0);
    ck_assert_int_eq(smtpc_quit(d.s), -1);
    ck_assert_ptr_null(smtpc_message_result(d.s));
    d.no_quit = 1;
    play(&d, GREET "250 mx\r\n");
    m.n_to = 0;
    ck_assert_int_eq(smtpc_message_begin(d.s, &m), -1);
    drv_done(&d);

    struct smtpc_config bad = { 0 };
    ck_assert_ptr_null(smtpc_new(&bad));
    bad.helo_name = "bad\r\nname";
    ck_assert_ptr_null(smtpc_new(&bad));
}
END_TEST

/* The transaction ----------------------------------------------------------- */

#define THREE "ok@example.net", "no@example.net", "later@example.net"

START_TEST(transaction_pipelined)
{
    struct drv d;
    drv_init(&d, SMTPC_TLS_OFF, SMTPC_AUTH_NONE);
    add_msg(&d, "alice@example.com", THREE, "Subject: t\r\n\r\nbody\r\n");
    play(&d, GREET EHLO_FULL "250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 <no@example.net>: no such user\r\n"
             "450 4.2.0 <later@example.net>: greylisted\r\n354 go\r\n250 2.0.0 Ok: queued as 4F2\r\n"
             "221 2.0.0 bye\r\n");
    ck_assert_str_eq(d.out, "EHLO client.example\r\n"
                            "MAIL FROM:<alice@example.com> SIZE=20\r\nRCPT TO:<ok@example.net>\r\n"
                            "RCPT TO:<no@example.net>\r\nRCPT TO:<later@example.net>\r\nDATA\r\n"
                            "Subject: t\r\n\r\nbody\r\n.\r\nQUIT\r\n");
    ck_assert_int_eq(d.done_msgs, 1);
    ck_assert_int_eq(d.res[0][0].outcome, SMTPC_OK);
    ck_assert_str_eq(d.res[0][0].status, "2.0.0");
    ck_assert_str_eq(d.res[0][0].why, "delivered: 250 2.0.0 Ok: queued as 4F2");
    ck_assert_int_eq(d.res[0][1].outcome, SMTPC_PERMANENT);
    ck_assert_str_eq(d.res[0][1].status, "5.1.1");
    ck_assert_int_eq(d.res[0][1].reply.code, 550);
    ck_assert_str_eq(d.res[0][1].why,
                     "RCPT TO:<no@example.net> was refused: 550 5.1.1 <no@example.net>: no such user");
    ck_assert_int_eq(d.res[0][2].outcome, SMTPC_TRANSIENT);
    ck_assert_str_eq(d.res[0][2].status, "4.2.0");
    ck_assert_int_eq(d.msg_res[0].outcome, SMTPC_OK);
    ck_assert_int_eq(smtpc_failure(d.s)->outcome, SMTPC_OK);
    drv_done(&d);
}
END_TEST

START_TEST(transaction_not_pipelined)
{
    struct drv d;
    drv_init(&d, SMTPC_TLS_OFF, SMTPC_AUTH_NONE);
    add_msg(&d, "alice@example.com", THREE, "x\r\n");
    feed_all(&d, GREET "250-mx\r\n250 SIZE\r\n250 ok\r\n", strlen(GREET "250-mx\r\n250 SIZE\r\n250 ok\r\n"), 0);
    /* one command at a time: only the first RCPT has gone */
    ck_assert_str_eq(d.out, "EHLO client.example\r\nMAIL FROM:<alice@example.com> SIZE=3\r\n"
                            "RCPT TO:<ok@example.net>\r\n");
    ck_assert_int_eq(smtpc_timeout_kind(d.s), SMTPC_TO_RCPT);
    play(&d, "250 ok\r\n550 5.1.1 no\r\n450 4.2.0 later\r\n");
    ck_assert(has(d.out, "RCPT TO:<later@example.net>\r\nDATA\r\n"));
    ck_assert_int_eq(smtpc_timeout_kind(d.s), SMTPC_TO_DATA_INIT);
    ck_assert_uint_eq(smtpc_timeout_secs(d.s), 120);
    play(&d, "354 go\r\n");
    ck_assert_int_eq(smtpc_timeout_kind(d.s), SMTPC_TO_DATA_TERM);
    ck_assert_uint_eq(smtpc_timeout_secs(d.s), 600);
    play(&d, "452 4.3.1 insufficient storage\r\n221 bye\r\n");
    ck_assert_int_eq(d.res[0][0].outcome, SMTPC_TRANSIENT);
    ck_assert_str_eq(d.res[0][0].why, "the server refused the message: 452 4.3.1 insufficient storage");
    ck_assert_int_eq(d.res[0][1].outcome, SMTPC_PERMANENT);
    ck_assert_int_eq(d.res[0][2].outcome, SMTPC_TRANSIENT);
    ck_assert_int_eq(d.msg_res[0].outcome, SMTPC_TRANSIENT);
    drv_done(&d);

    /* no recipient accepted: no DATA at all */
    drv_init(&d, SMTPC_TLS_OFF, SMTPC_AUTH_NONE);
    add_msg(&d, "alice@example.com", "no@example.net", "later@example.net", NULL, "x\r\n");
    play(&d, GREET "250 mx\r\n250 ok\r\n550 5.1.1 no\r\n450 4.2.0 later\r\n221 bye\r\n");
    ck_assert(!has(d.out, "DATA"));
    ck_assert_int_eq(d.contents, 0);
    ck_assert_int_eq(d.msg_res[0].reason, SMTPC_R_NO_RECIPIENT);
    ck_assert_int_eq(d.msg_res[0].outcome, SMTPC_TRANSIENT);
    drv_done(&d);

    /* MAIL refused: every recipient gets that reply */
    drv_init(&d, SMTPC_TLS_OFF, SMTPC_AUTH_NONE);
    add_msg(&d, "alice@example.com", "a@example.net", "b@example.net", NULL, "x\r\n");
    play(&d, GREET "250 mx\r\n553 5.7.1 sender rejected\r\n221 bye\r\n");
    ck_assert(!has(d.out, "RCPT"));
    ck_assert_int_eq(d.res[0][0].outcome, SMTPC_PERMANENT);
    ck_assert_int_eq(d.res[0][1].outcome, SMTPC_PERMANENT);
    ck_assert_str_eq(d.res[0][1].why, "MAIL FROM:<alice@example.com> was refused: 553 5.7.1 sender rejected");
    drv_done(&d);
}
END_TEST

START_TEST(pipelined_none_accepted)
{
    struct drv d;
    drv_init(&d, SMTPC_TLS_OFF, SMTPC_AUTH_NONE);
    add_msg(&d, "", "no@example.net", NULL, NULL, "x\r\n");
    play(&d, GREET EHLO_FULL "250 ok\r\n550 5.1.1 no\r\n554 5.5.1 no valid recipients\r\n221 bye\r\n");
    ck_assert(has(d.out, "MAIL FROM:<> SIZE=3\r\nRCPT TO:<no@example.net>\r\nDATA\r\nQUIT\r\n"));
    ck_assert_int_eq(d.contents, 0);
    ck_assert_int_eq(d.res[0][0].outcome, SMTPC_PERMANENT);
    ck_assert_int_eq(d.msg_res[0].reason, SMTPC_R_NO_RECIPIENT);
    drv_done(&d);

    /* a server that says 354 anyway gets an empty data at once */
    drv_init(&d, SMTPC_TLS_OFF, SMTPC_AUTH_NONE);
    add_msg(&d, "", "no@example.net", NULL, NULL, "x\r\n");
    play(&d, GREET EHLO_FULL "250 ok\r\n550 5.1.1 no\r\n354 go\r\n250 ok\r\n221 bye\r\n");
    ck_assert(has(d.out, "DATA\r\n.\r\nQUIT\r\n"));
    ck_assert_int_eq(d.contents, 0);
    ck_assert_int_eq(d.res[0][0].outcome, SMTPC_PERMANENT);
    drv_done(&d);
}
END_TEST

static const char *content_of(struct drv *d)
{
    const char *p = strstr(d->out, "DATA\r\n");
    ck_assert_ptr_nonnull(p);
    return p + 6;
}

START_TEST(dot_stuffing_and_final_crlf)
{
    static const struct { const char *body, *wire; } cases[] = {
        { ".hidden\r\nline\r\n..two\r\n.\r\nend", "..hidden\r\nline\r\n...two\r\n..\r\nend\r\n.\r\n" },
        { "a\r\n", "a\r\n.\r\n" },
        { "", ".\r\n" },
        { "unix\n.dot\nend\n", "unix\r\n..dot\r\nend\r\n.\r\n" },
        { "mac\r.dot\rend\r", "mac\r\n..dot\r\nend\r\n.\r\n" },
        { "x. y\r\n \r\n.", "x. y\r\n \r\n..\r\n.\r\n" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct drv d;
        char want[256];
        drv_init(&d, SMTPC_TLS_OFF, SMTPC_AUTH_NONE);
        add_msg(&d, "a@example.com", "b@example.net", NULL, NULL, cases[i].body);
        play(&d, GREET "250 mx\r\n250 ok\r\n250 ok\r\n354 go\r\n250 ok\r\n221 bye\r\n");
        snprintf(want, sizeof want, "%sQUIT\r\n", cases[i].wire);
        ck_assert_str_eq(content_of(&d), want);
        drv_done(&d);
    }
}
END_TEST

START_TEST(content_in_small_pieces)
{
    /* the same content streamed one octet per call */
    const char *body = ".a\r\n\r\n.\n.\r.\r\n";
    struct drv d;
    drv_init(&d, SMTPC_TLS_OFF, SMTPC_AUTH_NONE);
    d.no_quit = 1;
    play(&d, GREET "250 mx\r\n");
    struct smtpc_message m = { "a@example.com", (const char *const[]){ "b@example.net" }, 1, 0, 0 };
    ck_assert_int_eq(smtpc_message_begin(d.s, &m), 0);
    play(&d, "250 ok\r\n250 ok\r\n");
    ck_assert_int_eq(d.contents, 0);
    struct smtpc_event ev;
    smtpc_feed(d.s, "354 go\r\n", 8);
    ck_assert_int_eq(smtpc_next(d.s, &ev), SMTPC_EV_CONTENT);
    ck_assert_int_eq(smtpc_timeout_kind(d.s), SMTPC_TO_DATA_BLOCK);
    ck_assert_uint_eq(smtpc_timeout_secs(d.s), 180);
    for (size_t i = 0; body[i]; i++)
        ck_assert_uint_eq(smtpc_content(d.s, body + i, 1), 1);
    ck_assert_int_eq(smtpc_content_end(d.s), 0);
    drain(&d);
    ck_assert_str_eq(content_of(&d), "..a\r\n\r\n..\r\n..\r\n..\r\n.\r\n");
    drv_done(&d);
}
END_TEST

START_TEST(eight_bit)
{
    struct drv d;
    /* no 8BITMIME: nothing is sent, the reason says why */
    drv_init(&d, SMTPC_TLS_OFF, SMTPC_AUTH_NONE);
    add_msg(&d, "a@example.com", "b@example.net", "c@example.net", NULL, "caf\xc3\xa9\r\n");
    d.msgs[0].eight_bit = 1;
    play(&d, GREET EHLO_PLAIN "221 bye\r\n");
    ck_assert_str_eq(d.out, "EHLO client.example\r\nQUIT\r\n");
    ck_assert_int_eq(d.done_msgs, 1);
    ck_assert_int_eq(d.msg_res[0].reason, SMTPC_R_8BIT_UNSUPPORTED);
    ck_assert_int_eq(d.msg_res[0].outcome, SMTPC_PERMANENT);
    ck_assert_str_eq(d.msg_res[0].status, "5.6.3");
    ck_assert_str_eq(d.msg_res[0].why, "the message has 8-bit content and the server does not offer 8BITMIME");
    ck_assert_int_eq(d.res[0][1].reason, SMTPC_R_8BIT_UNSUPPORTED);
    drv_done(&d);

    /* with 8BITMIME: BODY=8BITMIME, and SIZE= */
    drv_init(&d, SMTPC_TLS_OFF, SMTPC_AUTH_NONE);
    add_msg(&d, "a@example.com", "b@example.net", NULL, NULL, "caf\xc3\xa9\r\n");
    d.msgs[0].eight_bit = 1;
    play(&d, GREET EHLO_FULL "250 ok\r\n250 ok\r\n354 go\r\n250 ok\r\n221 bye\r\n");
    ck_assert(has(d.out, "MAIL FROM:<a@example.com> SIZE=7 BODY=8BITMIME\r\n"));
    ck_assert_int_eq(d.res[0][0].outcome, SMTPC_OK);
    drv_done(&d);

    /* 7-bit content never says BODY= */
    drv_init(&d, SMTPC_TLS_OFF, SMTPC_AUTH_NONE);
    add_msg(&d, "a@example.com", "b@example.net", NULL, NULL, "x\r\n");
    play(&d, GREET EHLO_FULL "250 ok\r\n250 ok\r\n354 go\r\n250 ok\r\n221 bye\r\n");
    ck_assert(has(d.out, "MAIL FROM:<a@example.com> SIZE=3\r\n"));
    drv_done(&d);
}
END_TEST

START_TEST(size_and_addresses)
{
    struct drv d;
    drv_init(&d, SMTPC_TLS_OFF, SMTPC_AUTH_NONE);
    add_msg(&d, "a@example.com", "b@example.net", NULL, NULL, "x\r\n");
    d.msgs[0].size = 2000000;
    play(&d, GREET EHLO_FULL "221 bye\r\n");
    ck_assert(!has(d.out, "MAIL"));
    ck_assert_int_eq(d.msg_res[0].reason, SMTPC_R_SIZE);
    ck_assert_str_eq(d.msg_res[0].status, "5.3.4");
    drv_done(&d);

    drv_init(&d, SMTPC_TLS_OFF, SMTPC_AUTH_NONE);
    add_msg(&d, "a@example.com", "not an address", "<B@Example.NET>", NULL, "x\r\n");
    play(&d, GREET "250 mx\r\n250 ok\r\n250 ok\r\n354 go\r\n250 ok\r\n221 bye\r\n");
    ck_assert(has(d.out, "MAIL FROM:<a@example.com>\r\nRCPT TO:<B@example.net>\r\nDATA\r\n"));
    ck_assert_int_eq(d.res[0][0].outcome, SMTPC_PERMANENT);
    ck_assert_int_eq(d.res[0][0].reason, SMTPC_R_BAD_ADDRESS);
    ck_assert_str_eq(d.res[0][0].status, "5.1.3");
    ck_assert_int_eq(d.res[0][1].outcome, SMTPC_OK);
    drv_done(&d);

    drv_init(&d, SMTPC_TLS_OFF, SMTPC_AUTH_NONE);
    add_msg(&d, "bad sender@", "b@example.net", NULL, NULL, "x\r\n");
    play(&d, GREET "250 mx\r\n221 bye\r\n");
    ck_assert(!has(d.out, "MAIL"));
    ck_assert_str_eq(d.msg_res[0].status, "5.1.7");
    ck_assert_int_eq(d.res[0][0].reason, SMTPC_R_BAD_ADDRESS);
    drv_done(&d);
}
END_TEST

/* Replies ------------------------------------------------------------------- */

START_TEST(multiline_replies)
{
    struct drv d;
    drv_init(&d, SMTPC_TLS_OFF, SMTPC_AUTH_NONE);
    add_msg(&d, "a@example.com", "b@example.net", NULL, NULL, "x\r\n");
    play(&d, "220-mx.example.net ESMTP\r\n220-no UCE\r\n220 here\r\n"
             "250-mx\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
             "250 ok\r\n550-5.7.1 Relaying denied.\r\n550-5.7.1 Please authenticate\r\n550 5.7.1 first\r\n"
             "554 5.5.1 no valid recipients\r\n221 bye\r\n");
    ck_assert_uint_eq(smtpc_extensions(d.s), SC_EXT_PIPELINING | SC_EXT_8BITMIME);
    ck_assert_int_eq(d.res[0][0].reply.code, 550);
    ck_assert_str_eq(d.res[0][0].reply.status, "5.7.1");
    ck_assert_str_eq(d.res[0][0].reply.text,
                     "550-5.7.1 Relaying denied. 550-5.7.1 Please authenticate 550 5.7.1 first");
    drv_done(&d);

    /* a reply without text, and a status of the wrong class is not a status */
    drv_init(&d, SMTPC_TLS_OFF, SMTPC_AUTH_NONE);
    d.no_quit = 1;
    play(&d, GREET "250\r\n");
    ck_assert_int_eq(d.readies, 1);
    ck_assert_str_eq(smtpc_last_reply(d.s)->text, "250");
    drv_done(&d);
    drv_init(&d, SMTPC_TLS_OFF, SMTPC_AUTH_NONE);
    add_msg(&d, "a@example.com", "b@example.net", NULL, NULL, "x\r\n");
    play(&d, GREET "250 mx\r\n250 ok\r\n550 2.1.5 odd\r\n221 bye\r\n");
    ck_assert_str_eq(d.res[0][0].reply.status, "");
    ck_assert_str_eq(d.res[0][0].status, "5.0.0");
    drv_done(&d);
}
END_TEST

START_TEST(malformed_replies)
{
    static const struct { const char *script, *rule; size_t len; } cases[] = {
        { "220 hi\n", "bare LF", 0 },
        { "220 hi\r\n250 mx\rx\r\n", "bare CR", 0 },
        { "22 hi\r\n", "no reply code", 0 },
        { "hello\r\n", "no reply code", 0 },
        { "220 hi\r\n150 mx\r\n", "no reply code", 0 },
        { "220 hi\r\n250x mx\r\n", "neither a space nor '-'", 0 },
        { "220-hi\r\n221 there\r\n", "different code", 0 },
        { "220 hi\x01\r\n", "control character", 0 },
        { "220 hi\r\n250 a\0b\r\n", "control character", 17 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct drv d;
        drv_init(&d, SMTPC_TLS_OFF, SMTPC_AUTH_NONE);
        const char *sc = cases[i].script;
        size_t n = cases[i].len ? cases[i].len : strlen(sc);
        feed_all(&d, sc, n, 0);
        ck_assert_msg(d.closed, "case %zu", i);
        ck_assert_int_eq(smtpc_failure(d.s)->reason, SMTPC_R_MALFORMED);
        ck_assert_int_eq(smtpc_failure(d.s)->outcome, SMTPC_TRANSIENT);
        ck_assert_msg(has(smtpc_failure(d.s)->why, cases[i].rule), "case %zu: %s", i,
                      smtpc_failure(d.s)->why);
        ck_assert(has(smtpc_failure(d.s)->why, "the server sent a malformed reply"));
        drv_done(&d);
    }

    /* a line that never ends */
    struct drv d;
    char big[3000];
    memset(big, 'x', sizeof big);
    memcpy(big, "220 ", 4);
    drv_init(&d, SMTPC_TLS_OFF, SMTPC_AUTH_NONE);
    feed_all(&d, big, sizeof big, 100);
    ck_assert(d.closed);
    ck_assert(has(smtpc_failure(d.s)->why, "longer than"));
    drv_done(&d);

    /* a reply nobody asked for */
    drv_init(&d, SMTPC_TLS_OFF, SMTPC_AUTH_NONE);
    d.no_quit = 1;
    play(&d, GREET "250 mx\r\n250 surprise\r\n");
    ck_assert(d.closed);
    ck_assert_int_eq(smtpc_failure(d.s)->reason, SMTPC_R_PROTOCOL);
    drv_done(&d);
}
END_TEST

/* Segmentation: every split point, and every fixed segment size, gives the
 * same commands, transcript and results. */
static const char seg_script[] =
        "220-mx.example.net\r\n220 ESMTP\r\n250-mx\r\n250-PIPELINING\r\n250-SIZE 1000\r\n"
        "250-STARTTLS\r\n250 AUTH NTLM\r\n220 go\r\n<TLS>250-mx\r\n250-PIPELINING\r\n"
        "250-8BITMIME\r\n250 AUTH NTLM\r\n334 ntlm supported\r\n334 Q0hBTExFTkdF\r\n235 ok\r\n"
        "250 ok\r\n250 ok\r\n550-5.1.1 no\r\n550 5.1.1 such user\r\n450 4.2.0 later\r\n354 go\r\n"
        "250 2.0.0 queued\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n250 2.0.0 again\r\n221 bye\r\n";

static void run_pipelined(struct drv *d, size_t split, size_t seg)
{
    drv_init(d, SMTPC_TLS_REQUIRED, SMTPC_AUTH_REQUIRED);
    add_msg(d, "alice@example.com", THREE, ".dot\r\nbody");
    add_msg(d, "alice@example.com", "ok@example.net", NULL, NULL, "second\r\n");
    if (split) {
        /* split once at split (in the clear part or after <TLS>) */
        const char *tls = strstr(seg_script, "<TLS>");
        size_t n1 = (size_t)(tls - seg_script);
        if (split < n1) {
            feed_all(d, seg_script, split, 0);
            feed_all(d, seg_script + split, n1 - split, 0);
            feed_all(d, tls + 5, strlen(tls + 5), 0);
        } else {
            size_t k = split - n1;
            const char *t = tls + 5;
            feed_all(d, seg_script, n1, 0);
            feed_all(d, t, k, 0);
            feed_all(d, t + k, strlen(t) - k, 0);
        }
    } else {
        play_seg(d, seg_script, seg);
    }
}

START_TEST(segmentation)
{
    static struct drv ref, d;
    run_pipelined(&ref, 0, 0);
    ck_assert_int_eq(ref.closed, 1);
    ck_assert_int_eq(smtpc_failure(ref.s)->outcome, SMTPC_OK);
    ck_assert_int_eq(ref.done_msgs, 2);
    ck_assert_str_eq(ref.out,
                     "EHLO client.example\r\nSTARTTLS\r\nEHLO client.example\r\nAUTH NTLM\r\n"
                     "TkVHT1RJQVRF\r\nQVVUSEVOVElDQVRF\r\n"
                     "MAIL FROM:<alice@example.com>\r\nRCPT TO:<ok@example.net>\r\n"
                     "RCPT TO:<no@example.net>\r\nRCPT TO:<later@example.net>\r\nDATA\r\n"
                     "..dot\r\nbody\r\n.\r\n"
                     "RSET\r\nMAIL FROM:<alice@example.com>\r\nRCPT TO:<ok@example.net>\r\nDATA\r\n"
                     "second\r\n.\r\nQUIT\r\n");
    ck_assert_int_eq(ref.res[0][0].outcome, SMTPC_OK);
    ck_assert_int_eq(ref.res[0][1].outcome, SMTPC_PERMANENT);
    ck_assert_str_eq(ref.res[0][1].reply.text, "550-5.1.1 no 550 5.1.1 such user");
    ck_assert_int_eq(ref.res[0][2].outcome, SMTPC_TRANSIENT);
    ck_assert_int_eq(ref.res[1][0].outcome, SMTPC_OK);
    ck_assert_str_eq(ref.res[1][0].why, "delivered: 250 2.0.0 again");

    size_t total = strlen(seg_script) - 5;    /* without the <TLS> mark */
    for (size_t split = 1; split < total; split++) {
        run_pipelined(&d, split, 0);
        ck_assert_msg(strcmp(d.out, ref.out) == 0, "split at %zu", split);
        ck_assert_msg(strcmp(d.log, ref.log) == 0, "split at %zu", split);
        ck_assert_int_eq(d.done_msgs, 2);
        for (int m = 0; m < 2; m++)
            for (int i = 0; i < 3; i++)
                ck_assert_msg(strcmp(d.res[m][i].why, ref.res[m][i].why) == 0, "split at %zu", split);
        drv_done(&d);
    }
    for (size_t seg = 1; seg < 40; seg++) {
        run_pipelined(&d, 0, seg);
        ck_assert_msg(strcmp(d.out, ref.out) == 0, "segments of %zu", seg);
        ck_assert_msg(strcmp(d.log, ref.log) == 0, "segments of %zu", seg);
        drv_done(&d);
    }
    drv_done(&ref);
}
END_TEST

START_TEST(connection_reuse)
{
    struct drv d;
    drv_init(&d, SMTPC_TLS_OFF, SMTPC_AUTH_NONE);
    add_msg(&d, "a@example.com", "b@example.net", NULL, NULL, "one\r\n");
    add_msg(&d, "a@example.com", "c@example.net", NULL, NULL, "two\r\n");
    add_msg(&d, "a@example.com", "d@example.net", NULL, NULL, "three\r\n");
    play(&d, GREET "250 mx\r\n"
             "250 ok\r\n250 ok\r\n354 go\r\n250 one\r\n"
             "250 ok\r\n250 ok\r\n550 no\r\n"
             "250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n250 three\r\n221 bye\r\n");
    ck_assert_str_eq(d.out, "EHLO client.example\r\n"
                            "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\nDATA\r\none\r\n.\r\n"
                            "RSET\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<c@example.net>\r\n"
                            "RSET\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<d@example.net>\r\nDATA\r\nthree\r\n.\r\n"
                            "QUIT\r\n");
    ck_assert_int_eq(d.done_msgs, 3);
    ck_assert_int_eq(d.res[0][0].outcome, SMTPC_OK);
    ck_assert_int_eq(d.res[1][0].outcome, SMTPC_PERMANENT);
    ck_assert_int_eq(d.res[2][0].outcome, SMTPC_OK);
    ck_assert_int_eq(d.readies, 4);
    drv_done(&d);

    /* RSET refused ends the session */
    drv_init(&d, SMTPC_TLS_OFF, SMTPC_AUTH_NONE);
    add_msg(&d, "a@example.com", "b@example.net", NULL, NULL, "one\r\n");
    add_msg(&d, "a@example.com", "c@example.net", NULL, NULL, "two\r\n");
    play(&d, GREET "250 mx\r\n250 ok\r\n250 ok\r\n354 go\r\n250 one\r\n500 what\r\n");
    ck_assert_int_eq(d.closed, 1);
    ck_assert_int_eq(d.done_msgs, 2);
    ck_assert_int_eq(d.res[1][0].outcome, SMTPC_PERMANENT);
    ck_assert_str_eq(d.res[1][0].why, "the server refused RSET: 500 what");
    drv_done(&d);
}
END_TEST

/* Failures mid-way ----------------------------------------------------------- */

START_TEST(lost_timeout_and_421)
{
    struct drv d;
    drv_init(&d, SMTPC_TLS_OFF, SMTPC_AUTH_NONE);
    ck_assert_int_eq(smtpc_timeout_kind(d.s), SMTPC_TO_INITIAL);
    ck_assert_uint_eq(smtpc_timeout_secs(d.s), 300);
    smtpc_timeout(d.s);
    pump(&d);
    ck_assert(d.closed);
    ck_assert_int_eq(smtpc_failure(d.s)->outcome, SMTPC_TRANSIENT);
    ck_assert_int_eq(smtpc_failure(d.s)->reason, SMTPC_R_TIMEOUT);
    ck_assert_str_eq(smtpc_failure(d.s)->why, "timed out after 300 seconds waiting for the reply to the greeting");
    ck_assert_int_eq(smtpc_timeout_kind(d.s), SMTPC_TO_NONE);
    drv_done(&d);

    /* lost after RCPT accepted: the recipient is transient */
    drv_init(&d, SMTPC_TLS_OFF, SMTPC_AUTH_NONE);
    add_msg(&d, "a@example.com", "b@example.net", "c@example.net", NULL, "x\r\n");
    play(&d, GREET "250 mx\r\n250 ok\r\n250 ok\r\n");
    ck_assert_int_eq(smtpc_timeout_kind(d.s), SMTPC_TO_RCPT);
    smtpc_connection_lost(d.s);
    pump(&d);
    ck_assert(d.closed);
    ck_assert_int_eq(d.done_msgs, 1);
    ck_assert_int_eq(d.res[0][0].outcome, SMTPC_TRANSIENT);
    ck_assert_int_eq(d.res[0][1].reason, SMTPC_R_CONNECTION_LOST);
    ck_assert_str_eq(d.res[0][1].status, "4.4.2");
    ck_assert_str_eq(d.res[0][1].why, "the connection was lost while waiting for the reply to RCPT TO");
    drv_done(&d);

    /* lost after the final dot: may have been delivered */
    drv_init(&d, SMTPC_TLS_OFF, SMTPC_AUTH_NONE);
    add_msg(&d, "a@example.com", "b@example.net", NULL, NULL, "x\r\n");
    play(&d, GREET "250 mx\r\n250 ok\r\n250 ok\r\n354 go\r\n");
    smtpc_connection_lost(d.s);
    pump(&d);
    ck_assert(has(d.res[0][0].why, "may have been delivered"));
    drv_done(&d);

    /* 421 in the middle of a pipelined batch */
    drv_init(&d, SMTPC_TLS_OFF, SMTPC_AUTH_NONE);
    add_msg(&d, "a@example.com", "b@example.net", "c@example.net", NULL, "x\r\n");
    play(&d, GREET EHLO_FULL "250 ok\r\n550 5.1.1 no\r\n421 4.3.2 shutting down\r\n");
    ck_assert(d.closed);
    ck_assert_int_eq(d.res[0][0].outcome, SMTPC_PERMANENT);
    ck_assert_int_eq(d.res[0][1].outcome, SMTPC_TRANSIENT);
    ck_assert_str_eq(d.res[0][1].why, "the server is closing the connection: 421 4.3.2 shutting down");
    ck_assert(!has(d.out, "QUIT"));
    drv_done(&d);

    /* waiting for 221: a lost connection is a normal end */
    drv_init(&d, SMTPC_TLS_OFF, SMTPC_AUTH_NONE);
    play(&d, GREET "250 mx\r\n");
    ck_assert_int_eq(smtpc_timeout_kind(d.s), SMTPC_TO_COMMAND);
    smtpc_connection_lost(d.s);
    pump(&d);
    ck_assert(d.closed);
    ck_assert_int_eq(smtpc_failure(d.s)->outcome, SMTPC_OK);
    drv_done(&d);
}
END_TEST

Suite *smtpc_suite(void)
{
    Suite *s = suite_create("smtpc");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, ehlo_extensions);
    tcase_add_test(tc, helo_fallback);
    tcase_add_test(tc, starttls_required_offered);
    tcase_add_test(tc, starttls_required_missing_or_refused);
    tcase_add_test(tc, starttls_opportunistic_and_off);
    tcase_add_test(tc, auth_ntlm_over_xauth);
    tcase_add_test(tc, xauth_only);
    tcase_add_test(tc, auth_offers_neither);
    tcase_add_test(tc, auth_refused);
    tcase_add_test(tc, auth_plain_inside_tls);
    tcase_add_test(tc, auth_login_inside_tls);
    tcase_add_test(tc, auth_ntlm_first_when_allowed);
    tcase_add_test(tc, auth_password_never_in_clear);
    tcase_add_test(tc, auth_password_refused);
    tcase_add_test(tc, answers_out_of_turn);
    tcase_add_test(tc, transaction_pipelined);
    tcase_add_test(tc, transaction_not_pipelined);
    tcase_add_test(tc, pipelined_none_accepted);
    tcase_add_test(tc, dot_stuffing_and_final_crlf);
    tcase_add_test(tc, content_in_small_pieces);
    tcase_add_test(tc, eight_bit);
    tcase_add_test(tc, size_and_addresses);
    tcase_add_test(tc, multiline_replies);
    tcase_add_test(tc, malformed_replies);
    tcase_add_test(tc, segmentation);
    tcase_add_test(tc, connection_reuse);
    tcase_add_test(tc, lost_timeout_and_421);
    suite_add_tcase(s, tc);
    return s;
}
