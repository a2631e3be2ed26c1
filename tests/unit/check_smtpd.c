/* check_smtpd.c - the SMTP server engine driven by byte strings: a whole
 * transaction, pipelining and segmentation, SMTP smuggling, bare CR/LF,
 * line and size limits, AUTH/XAUTH, STARTTLS, relay policy, the 250 that
 * waits for the spool, the Received header, timeouts.
 *
 * The test plays the socket layer: it answers the engine's events the way
 * the service does (SSPI answers are scripted by token content). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addrmap.h"
#include "smtpd.h"

/* LocalDomains "example.com;corp.example", parsed once for every test. */
static const struct domain_list *local_list(void)
{
    static struct domain_list l;
    static int parsed;
    if (!parsed) {
        ck_assert_int_eq(domains_parse(&l, "example.com;corp.example", NULL, 0), 0);
        parsed = 1;
    }
    return &l;
}

enum store_mode { STORE_OK, STORE_HOLD, STORE_TEMPFAIL, STORE_PERMFAIL };

struct drv {
    struct smtpd_config cfg;
    struct smtpd *s;
    char out[1 << 16];
    size_t outlen;
    char body[1 << 16];         /* content of the last message */
    size_t bodylen;
    char received[2048];
    int data_begins, messages, stored, rejected, finals, aborts, starttls, closed;
    int ntlm_tokens, passwords;
    enum smtpd_reject last_reject;
    enum store_mode store;
    int tls_policy_ok;
    int auto_tls;               /* answer STARTTLS at once */
    unsigned qid;
};

static void drv_init(struct drv *d, unsigned options, int relay_allowed)
{
    memset(d, 0, sizeof *d);
    d->cfg.hostname = "mx.example.com";
    d->cfg.local_domains = local_list();
    d->cfg.options = options;
    d->tls_policy_ok = 1;
    d->auto_tls = 1;
    d->s = smtpd_new(&d->cfg, "192.0.2.7", relay_allowed);
    ck_assert_ptr_nonnull(d->s);
}

static void drv_start(struct drv *d)
{
    d->s = smtpd_new(&d->cfg, "192.0.2.7", 0);
    ck_assert_ptr_nonnull(d->s);
}

static void drv_done(struct drv *d)
{
    smtpd_free(d->s);
    d->s = NULL;
}

static void drain(struct drv *d)
{
    size_t n;
    const unsigned char *p = smtpd_output(d->s, &n);
    ck_assert_uint_le(d->outlen + n, sizeof d->out - 1);
    memcpy(d->out + d->outlen, p, n);
    d->outlen += n;
    d->out[d->outlen] = '\0';
    smtpd_output_consumed(d->s, n);
}

static int tok_is(const struct smtpd_event *ev, const char *s)
{
    return ev->len == strlen(s) && memcmp(ev->data, s, ev->len) == 0;
}

static void answer(struct drv *d, const struct smtpd_event *ev)
{
    char id[32];
    switch (ev->type) {
    case SMTPD_EV_STARTTLS:
        d->starttls++;
        if (d->auto_tls)
            ck_assert_int_eq(smtpd_tls_started(d->s, d->tls_policy_ok), 0);
        break;
    case SMTPD_EV_AUTH_NTLM:
        d->ntlm_tokens++;
        if (ev->first) {
            ck_assert(tok_is(ev, "NEGOTIATE"));
            ck_assert_int_eq(smtpd_auth_continue(d->s, "CHALLENGE", 9), 0);
        } else if (tok_is(ev, "AUTH-GOOD")) {
            ck_assert_int_eq(smtpd_auth_success(d->s, "EXAMPLE\\alice"), 0);
        } else if (tok_is(ev, "AUTH-TEMP")) {
            ck_assert_int_eq(smtpd_auth_tempfail(d->s), 0);
        } else {
            ck_assert_int_eq(smtpd_auth_fail(d->s), 0);
        }
        break;
    case SMTPD_EV_AUTH_PASSWORD:
        d->passwords++;
        if (strcmp(ev->user, "alice") == 0 && strcmp(ev->password, "secret") == 0)
            ck_assert_int_eq(smtpd_auth_success(d->s, "alice"), 0);
        else
            ck_assert_int_eq(smtpd_auth_fail(d->s), 0);
        break;
    case SMTPD_EV_AUTH_ABORT:
        d->aborts++;
        break;
    case SMTPD_EV_DATA_BEGIN:
        d->data_begins++;
        d->bodylen = 0;
        snprintf(id, sizeof id, "Q%u", d->qid + 1);
        ck_assert_int_gt(smtpd_received(d->s, id, "Tue, 1 Jul 2025 10:00:00 +0000",
                                        d->received, sizeof d->received), 0);
        break;
    case SMTPD_EV_DATA_CHUNK:
        ck_assert_uint_le(d->bodylen + ev->len, sizeof d->body);
        memcpy(d->body + d->bodylen, ev->data, ev->len);
        d->bodylen += ev->len;
        d->finals += ev->final;
        break;
    case SMTPD_EV_MESSAGE:
        d->messages++;
        if (d->store == STORE_OK) {
            snprintf(id, sizeof id, "Q%u", ++d->qid);
            ck_assert_int_eq(smtpd_message_stored(d->s, id), 0);
            d->stored++;
        } else if (d->store == STORE_TEMPFAIL) {
            ck_assert_int_eq(smtpd_message_failed(d->s, 0, "disk full"), 0);
        } else if (d->store == STORE_PERMFAIL) {
            ck_assert_int_eq(smtpd_message_failed(d->s, 1, NULL), 0);
        }
        break;
    case SMTPD_EV_MESSAGE_REJECTED:
        d->rejected++;
        d->last_reject = ev->reject;
        break;
    case SMTPD_EV_CLOSE:
        d->closed = 1;
        break;
    case SMTPD_EV_NONE:
        break;
    }
}

static void pump(struct drv *d)
{
    struct smtpd_event ev;
    for (int guard = 0; guard < 100000; guard++) {
        enum smtpd_event_type t = smtpd_next(d->s, &ev);
        drain(d);
        answer(d, &ev);
        if (t == SMTPD_EV_NONE || t == SMTPD_EV_CLOSE)
            return;
    }
    ck_abort_msg("engine never settled");
}

/* Feed n bytes in pieces of step (0: all at once); stops early if the engine
 * takes nothing (it awaits an answer the test holds back). Returns the bytes
 * it could not feed. */
static size_t drive_n(struct drv *d, const char *p, size_t n, size_t step)
{
    size_t off = 0;
    while (off < n) {
        size_t k = step && n - off > step ? step : n - off;
        size_t took = smtpd_feed(d->s, p + off, k);
        pump(d);
        if (took == 0) {
            took = smtpd_feed(d->s, p + off, k);
            pump(d);
            if (took == 0)
                return n - off;
        }
        off += took;
    }
    pump(d);
    return 0;
}

static void drive(struct drv *d, const char *p)
{
    ck_assert_uint_eq(drive_n(d, p, strlen(p), 0), 0);
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

#define ck_has(d, s) ck_assert_msg(strstr((d)->out, (s)) != NULL, "missing %s in:\n%s", (s), (d)->out)
#define ck_hasnt(d, s) ck_assert_msg(strstr((d)->out, (s)) == NULL, "unexpected %s in:\n%s", (s), (d)->out)

/* The transaction --------------------------------------------------------------- */

static const char TRANSACTION[] =
    "EHLO client.example\r\n"
    "MAIL FROM:<bob@sender.example> SIZE=40 BODY=8BITMIME\r\n"
    "RCPT TO:<alice@example.com>\r\n"
    "RCPT TO:<carol@corp.example>\r\n"
    "DATA\r\n"
    "Subject: hi\r\n"
    "\r\n"
    "..dot line\r\n"
    "body\r\n"
    ".\r\n"
    "NOOP\r\n"
    "VRFY alice\r\n"
    "RSET\r\n"
    "QUIT\r\n";

static const char TRANSACTION_REPLIES[] =
    "220 mx.example.com ESMTP imsvc ready\r\n"
    "250-mx.example.com\r\n"
    "250-PIPELINING\r\n"
    "250-SIZE 10485760\r\n"
    "250-8BITMIME\r\n"
    "250-ENHANCEDSTATUSCODES\r\n"
    "250-AUTH NTLM\r\n"
    "250 HELP\r\n"
    "250 2.1.0 Sender <bob@sender.example> ok\r\n"
    "250 2.1.5 Recipient <alice@example.com> ok\r\n"
    "250 2.1.5 Recipient <carol@corp.example> ok\r\n"
    "354 End data with <CR><LF>.<CR><LF>\r\n"
    "250 2.0.0 Ok: queued as Q1\r\n"
    "250 2.0.0 Ok\r\n"
    "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery\r\n"
    "250 2.0.0 Ok\r\n"
    "221 2.0.0 mx.example.com closing connection\r\n";

START_TEST(full_transaction)
{
    struct drv d;
    drv_init(&d, 0, 0);
    drive(&d, TRANSACTION);
    ck_assert_str_eq(d.out, TRANSACTION_REPLIES);
    ck_assert_int_eq(d.messages, 1);
    ck_assert_int_eq(d.stored, 1);
    ck_assert_int_eq(d.finals, 1);
    ck_assert_int_eq(d.closed, 1);
    ck_assert_uint_eq(d.bodylen, strlen("Subject: hi\r\n\r\n.dot line\r\nbody\r\n"));
    ck_assert(memcmp(d.body, "Subject: hi\r\n\r\n.dot line\r\nbody\r\n", d.bodylen) == 0);
    drv_done(&d);
}
END_TEST

START_TEST(empty_message_and_helo)
{
    struct drv d;
    drv_init(&d, 0, 0);
    drive(&d, "HELO client\r\nMAIL FROM:<>\r\nRCPT TO:<Postmaster>\r\nDATA\r\n.\r\n");
    ck_has(&d, "250 mx.example.com\r\n");
    ck_has(&d, "250 2.1.0 Sender <> ok\r\n");
    ck_has(&d, "250 2.0.0 Ok: queued as Q1\r\n");
    ck_assert_int_eq(d.messages, 1);
    ck_assert_uint_eq(d.bodylen, 0);
    /* ESMTP parameters need EHLO */
    drive(&d, "MAIL FROM:<a@b.example> SIZE=10\r\n");
    ck_has(&d, "555 5.5.4");
    drv_done(&d);
}
END_TEST

/* Pipelining and segmentation -------------------------------------------------- */

START_TEST(pipelining_segmentation_identical)
{
    struct drv a, b, c;
    drv_init(&a, 0, 0);
    drive(&a, TRANSACTION);
    drv_init(&b, 0, 0);
    ck_assert_uint_eq(drive_n(&b, TRANSACTION, strlen(TRANSACTION), 1), 0);
    ck_assert_str_eq(a.out, b.out);
    ck_assert_uint_eq(a.bodylen, b.bodylen);
    ck_assert(memcmp(a.body, b.body, a.bodylen) == 0);
    /* seeded random cuts */
    unsigned seed = 12345;
    for (int round = 0; round < 200; round++) {
        drv_init(&c, 0, 0);
        size_t off = 0, n = strlen(TRANSACTION);
        while (off < n) {
            seed = seed * 1103515245u + 12345u;
            size_t k = 1 + (seed >> 16) % 23;
            if (k > n - off)
                k = n - off;
            ck_assert_uint_eq(drive_n(&c, TRANSACTION + off, k, 0), 0);
            off += k;
        }
        ck_assert_str_eq(a.out, c.out);
        ck_assert_uint_eq(a.bodylen, c.bodylen);
        ck_assert(memcmp(a.body, c.body, a.bodylen) == 0);
        drv_done(&c);
    }
    drv_done(&a);
    drv_done(&b);
}
END_TEST

START_TEST(pipelined_replies_in_order)
{
    struct drv d;
    drv_init(&d, 0, 0);
    drive(&d, "EHLO c\r\nNOOP\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@other.example>\r\n"
              "RCPT TO:<y@example.com>\r\nRSET\r\nBOGUS\r\nQUIT\r\nNOOP\r\n");
    const char *p = strstr(d.out, "250 HELP\r\n");
    ck_assert_ptr_nonnull(p);
    ck_assert_str_eq(p, "250 HELP\r\n"
                        "250 2.0.0 Ok\r\n"
                        "250 2.1.0 Sender <a@b.example> ok\r\n"
                        "550 5.7.1 Error: relaying denied: other.example is not a local domain; "
                        "authenticate to send mail elsewhere\r\n"
                        "250 2.1.5 Recipient <y@example.com> ok\r\n"
                        "250 2.0.0 Ok\r\n"
                        "500 5.5.1 Error: command not recognized\r\n"
                        "221 2.0.0 mx.example.com closing connection\r\n");
    drv_done(&d);
}
END_TEST

/* Smuggling ------------------------------------------------------------------- */

static const char *const SMUGGLE[] = {
    "\n.\n", "\n.\r\n", "\r.\r\n", "\r\n\x00.\r\n", "\r.\n", "\r\n.\n", "\r\n.\r\r\n",
    "\n..\n", "\r\n.\r", "\n\r.\r\n",
};

START_TEST(smuggling_never_ends_data)
{
    char conv[512];
    for (size_t step = 0; step <= 1; step++) {
        for (size_t i = 0; i < sizeof SMUGGLE / sizeof SMUGGLE[0]; i++) {
            struct drv d;
            drv_init(&d, 0, 0);
            drive(&d, "EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.com>\r\nDATA\r\n");
            size_t n = 0;
            const char *seq = SMUGGLE[i];
            size_t seqlen = i == 3 ? 6 : strlen(seq);   /* the one with a NUL */
            memcpy(conv + n, "Subject: t\r\n\r\nhello", 19);
            n += 19;
            memcpy(conv + n, seq, seqlen);
            n += seqlen;
            static const char rest[] =
                "MAIL FROM:<evil@attacker.example>\r\nRCPT TO:<victim@example.com>\r\n"
                "DATA\r\nsmuggled\r\n\r\n.\r\nNOOP\r\n";
            memcpy(conv + n, rest, sizeof rest - 1);
            n += sizeof rest - 1;
            ck_assert_uint_eq(drive_n(&d, conv, n, step), 0);
            ck_assert_msg(count(d.out, "250 2.1.0") == 1, "smuggled MAIL ran for #%zu:\n%s", i, d.out);
            ck_assert_int_eq(count(d.out, "354 "), 1);
            ck_assert_int_eq(d.messages, 0);
            ck_assert_int_eq(d.rejected, 1);
            ck_assert_int_ne(d.last_reject, SMTPD_REJECT_NONE);
            ck_has(&d, " 5.6.0 ");
            /* after the real end the session is in step again */
            ck_assert_msg(strstr(d.out, " 5.6.0 ") < strstr(d.out, "250 2.0.0 Ok\r\n"), "%s", d.out);
            drv_done(&d);
        }
    }
}
END_TEST

START_TEST(nul_in_data_rejected)
{
    struct drv d;
    drv_init(&d, 0, 0);
    static const char m[] = "EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.com>\r\nDATA\r\n"
                            "a\x00z\r\n.\r\nNOOP\r\n";
    ck_assert_uint_eq(drive_n(&d, m, sizeof m - 1, 0), 0);
    ck_has(&d, "554 5.6.0 Error: NUL in message content not allowed\r\n250 2.0.0 Ok\r\n");
    ck_assert_int_eq(d.last_reject, SMTPD_REJECT_NUL);
    drv_done(&d);
}
END_TEST

/* Bare CR/LF in commands --------------------------------------------------------- */

START_TEST(bare_lf_in_command)
{
    struct drv d;
    drv_init(&d, 0, 0);
    drive(&d, "EHLO c\r\nNOOP\nMAIL FROM:<a@b.example>\r\nNOOP\rMAIL FROM:<e@b.example>\r\n"
              "MAIL FROM:<ok@b.example>\r\n");
    ck_assert_int_eq(count(d.out, "500 5.5.2 Error: bare CR or LF not allowed in commands\r\n"), 2);
    /* the first MAIL (after the bare LF) is a line of its own and runs; the
     * second, behind a bare CR, is part of the refused line */
    ck_has(&d, "250 2.1.0 Sender <a@b.example> ok");
    ck_hasnt(&d, "<e@b.example>");
    ck_has(&d, "503 5.5.1 Error: nested MAIL command");
    drv_done(&d);
}
END_TEST

START_TEST(nul_in_command)
{
    struct drv d;
    drv_init(&d, 0, 0);
    static const char m[] = "EHLO c\r\nNO\x00OP\r\nNOOP\r\n";
    ck_assert_uint_eq(drive_n(&d, m, sizeof m - 1, 0), 0);
    ck_has(&d, "500 5.5.2 Error: NUL not allowed in commands\r\n250 2.0.0 Ok\r\n");
    drv_done(&d);
}
END_TEST

/* Limits ------------------------------------------------------------------------- */

START_TEST(command_line_limit)
{
    struct drv d;
    static char line[20000];
    drv_init(&d, 0, 0);
    /* 512 octets with CRLF: fine */
    memset(line, 'x', sizeof line);
    memcpy(line, "NOOP ", 5);
    memcpy(line + 510, "\r\n", 2);
    ck_assert_uint_eq(drive_n(&d, line, 512, 0), 0);
    ck_assert_str_eq(strstr(d.out, "\r\n") + 2, "250 2.0.0 Ok\r\n");
    /* 513: too long */
    memset(line, 'x', sizeof line);
    memcpy(line, "NOOP ", 5);
    memcpy(line + 511, "\r\n", 2);
    ck_assert_uint_eq(drive_n(&d, line, 513, 0), 0);
    ck_has(&d, "500 5.5.2 Error: line too long\r\n");
    /* far beyond any buffer, then a command: no desync */
    memset(line, 'y', sizeof line);
    memcpy(line, "MAIL FROM:<", 11);
    memcpy(line + sizeof line - 2, "\r\n", 2);
    ck_assert_uint_eq(drive_n(&d, line, sizeof line, 0), 0);
    drive(&d, "NOOP\r\n");
    ck_assert_int_eq(count(d.out, "500 5.5.2 Error: line too long\r\n"), 2);
    ck_assert(strcmp(d.out + d.outlen - 14, "250 2.0.0 Ok\r\n") == 0);
    drv_done(&d);
}
END_TEST

START_TEST(text_line_limit)
{
    struct drv d;
    static char m[4096];
    drv_init(&d, 0, 0);
    drive(&d, "EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.com>\r\nDATA\r\n");
    memset(m, 'a', 998);
    memcpy(m + 998, "\r\n.\r\n", 5);
    ck_assert_uint_eq(drive_n(&d, m, 1003, 0), 0);
    ck_has(&d, "250 2.0.0 Ok: queued as Q1\r\n");
    drive(&d, "MAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.com>\r\nDATA\r\n");
    memset(m, 'a', 999);
    memcpy(m + 999, "\r\n.\r\nNOOP\r\n", 11);
    ck_assert_uint_eq(drive_n(&d, m, 1010, 7), 0);
    ck_has(&d, "554 5.6.0 Error: message line longer than 1000 octets\r\n250 2.0.0 Ok\r\n");
    ck_assert_int_eq(d.last_reject, SMTPD_REJECT_LINE);
    ck_assert_int_eq(d.messages, 1);
    drv_done(&d);
}
END_TEST

/* A message with n Received fields (the case varies, as it may), then a
 * body line that looks like one (not counted: the header has ended). */
static size_t hops_message(char *m, size_t cap, unsigned n)
{
    size_t o = 0;
    for (unsigned i = 0; i < n; i++)
        o += (size_t)snprintf(m + o, cap - o, "%s: from h%u by h%u; Mon, 23 Nov 2026 10:00:00 +0000\r\n",
                              i % 2 ? "Received" : "RECEIVED", i, i + 1);
    o += (size_t)snprintf(m + o, cap - o, "Subject: hops\r\n\r\nReceived: in the body\r\n.\r\n");
    return o;
}

START_TEST(hop_limit)
{
    struct drv d;
    static char m[16384];
    drv_init(&d, 0, 0);
    drive(&d, "EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.com>\r\nDATA\r\n");
    size_t n = hops_message(m, sizeof m, SMTPD_MAX_HOPS);
    ck_assert_uint_eq(drive_n(&d, m, n, 0), 0);
    ck_has(&d, "250 2.0.0 Ok: queued as Q1\r\n");
    drive(&d, "MAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.com>\r\nDATA\r\n");
    n = hops_message(m, sizeof m, SMTPD_MAX_HOPS + 1);
    ck_assert_uint_eq(drive_n(&d, m, n, 0), 0);
    ck_has(&d, "554 5.4.6 Error: too many hops (more than 50 Received header fields): a mail loop\r\n");
    ck_assert_int_eq(d.last_reject, SMTPD_REJECT_HOPS);
    ck_assert_int_eq(d.messages, 1);
    drv_done(&d);
}
END_TEST

START_TEST(size_limit)
{
    struct drv d;
    static char m[70000];
    memset(&d, 0, sizeof d);
    drv_init(&d, 0, 0);
    smtpd_free(d.s);
    d.cfg.max_size = 100;
    drv_start(&d);
    drive(&d, "EHLO c\r\n");
    ck_has(&d, "250-SIZE 100\r\n");
    drive(&d, "MAIL FROM:<a@b.example> SIZE=101\r\n");
    ck_has(&d, "552 5.3.4 Error: message size exceeds fixed maximum message size\r\n");
    drive(&d, "MAIL FROM:<a@b.example> SIZE=100\r\nRCPT TO:<x@example.com>\r\nDATA\r\n");
    /* 60,000 octets of lines, larger than every engine buffer */
    size_t n = 0;
    while (n < 60000) {
        memcpy(m + n, "0123456789012345678901234567890123456789\r\n", 42);
        n += 42;
    }
    memcpy(m + n, ".\r\nNOOP\r\n", 9);
    n += 9;
    ck_assert_uint_eq(drive_n(&d, m, n, 0), 0);
    ck_has(&d, "552 5.3.4 Error: message size exceeds fixed maximum message size\r\n250 2.0.0 Ok\r\n");
    ck_assert_int_eq(d.last_reject, SMTPD_REJECT_SIZE);
    ck_assert_int_eq(d.messages, 0);
    /* exactly at the limit is fine */
    drive(&d, "MAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.com>\r\nDATA\r\n");
    memset(m, 'z', 98);
    memcpy(m + 98, "\r\n.\r\n", 5);
    ck_assert_uint_eq(drive_n(&d, m, 103, 0), 0);
    ck_has(&d, "250 2.0.0 Ok: queued as Q1\r\n");
    ck_assert_uint_eq(d.bodylen, 100);
    drv_done(&d);
}
END_TEST

START_TEST(recipient_limit)
{
    struct drv d;
    drv_init(&d, 0, 0);
    smtpd_free(d.s);
    d.cfg.max_recipients = 2;
    drv_start(&d);
    drive(&d, "EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.com>\r\n"
              "RCPT TO:<y@example.com>\r\nRCPT TO:<z@example.com>\r\n");
    ck_assert_int_eq(count(d.out, "250 2.1.5"), 2);
    ck_has(&d, "452 4.5.3 Error: too many recipients\r\n");
    drv_done(&d);
}
END_TEST

START_TEST(large_message_chunks)
{
    struct drv d;
    static char m[50000];
    drv_init(&d, 0, 0);
    drive(&d, "EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.com>\r\nDATA\r\n");
    size_t n = 0;
    for (int i = 0; n < 40000; i++)
        n += (size_t)sprintf(m + n, "%s%d\r\n", i % 7 == 0 ? "." : "", i);
    memcpy(m + n, ".\r\n", 3);
    ck_assert_uint_eq(drive_n(&d, m, n + 3, 0), 0);
    ck_has(&d, "250 2.0.0 Ok: queued as Q1\r\n");
    ck_assert_int_eq(d.finals, 1);
    ck_assert(d.bodylen < n && d.bodylen > n - 6000);
    ck_assert(memcmp(d.body, "0\r\n1\r\n", 6) == 0);   /* ".0" unstuffed */
    drv_done(&d);
}
END_TEST

/* AUTH and XAUTH ---------------------------------------------------------------- */

START_TEST(auth_ntlm_exchange)
{
    struct drv d;
    drv_init(&d, 0, 0);
    drive(&d, "EHLO c\r\nAUTH NTLM\r\n");
    ck_has(&d, "334 ntlm supported\r\n");
    drive(&d, "TkVHT1RJQVRF\r\n");
    ck_has(&d, "334 Q0hBTExFTkdF\r\n");
    drive(&d, "QVVUSC1HT09E\r\n");
    ck_has(&d, "235 2.7.0 Authentication successful\r\n");
    ck_assert_uint_ne(smtpd_flags(d.s) & SF_AUTHENTICATED, 0);
    ck_assert_str_eq(smtpd_user(d.s), "EXAMPLE\\alice");
    ck_assert_int_eq(d.ntlm_tokens, 2);
    /* no second AUTH, and EHLO no longer offers it */
    drive(&d, "AUTH NTLM\r\nEHLO c\r\n");
    ck_has(&d, "503 5.5.1 Error: already authenticated\r\n");
    ck_assert_int_eq(count(d.out, "AUTH NTLM\r\n"), 1);
    drv_done(&d);
}
END_TEST

START_TEST(auth_ntlm_initial_response_and_failures)
{
    struct drv d;
    drv_init(&d, 0, 0);
    drive(&d, "EHLO c\r\nAUTH NTLM TkVHT1RJQVRF\r\nQVVUSC1CQUQ=\r\n");
    ck_hasnt(&d, "334 ntlm supported");
    ck_has(&d, "334 Q0hBTExFTkdF\r\n535 5.7.3 Authentication unsuccessful\r\n");
    ck_assert_uint_eq(smtpd_auth_failures(d.s), 1);
    ck_assert_uint_eq(smtpd_flags(d.s) & SF_AUTHENTICATED, 0);
    drive(&d, "AUTH NTLM TkVHT1RJQVRF\r\nQVVUSC1URU1Q\r\n");
    ck_has(&d, "454 4.7.0 Temporary authentication failure\r\n");
    ck_assert_uint_eq(smtpd_auth_failures(d.s), 1);
    drive(&d, "AUTH NTLM TkVHT1RJQVRF\r\nQVVUSC1CQUQ=\r\nAUTH NTLM TkVHT1RJQVRF\r\nQVVUSC1CQUQ=\r\n");
    ck_assert_uint_eq(smtpd_auth_failures(d.s), 3);
    ck_has(&d, "421 4.7.0 mx.example.com Error: too many failed authentication attempts\r\n");
    ck_assert_int_eq(d.closed, 1);
    drv_done(&d);
}
END_TEST

START_TEST(auth_cancel_and_errors)
{
    struct drv d;
    drv_init(&d, 0, 0);
    drive(&d, "AUTH NTLM\r\n");
    ck_has(&d, "503 5.5.1 Error: send EHLO first\r\n");
    drive(&d, "EHLO c\r\nAUTH CRAM-MD5\r\nAUTH LOGIN\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n");
    ck_has(&d, "504 5.5.4 Error: unrecognized authentication type\r\n");
    ck_assert_int_eq(count(d.out, "538 5.7.11"), 2);
    ck_assert_int_eq(d.passwords, 0);
    /* cancel before any token: nothing for the caller to drop */
    drive(&d, "AUTH NTLM\r\n*\r\n");
    ck_has(&d, "501 5.7.0 Authentication cancelled\r\n");
    ck_assert_int_eq(d.aborts, 0);
    /* cancel after the context exists */
    drive(&d, "AUTH NTLM TkVHT1RJQVRF\r\n*\r\n");
    ck_assert_int_eq(d.aborts, 1);
    /* bad base64 ends the exchange */
    drive(&d, "AUTH NTLM TkVHT1RJQVRF\r\nnot base64!\r\n");
    ck_has(&d, "501 5.5.2 Error: invalid base64 data\r\n");
    ck_assert_int_eq(d.aborts, 2);
    /* AUTH inside a transaction */
    drive(&d, "MAIL FROM:<a@b.example>\r\nAUTH NTLM\r\n");
    ck_has(&d, "503 5.5.1 Error: AUTH not allowed during a mail transaction\r\n");
    ck_assert_uint_eq(smtpd_auth_failures(d.s), 0);
    drv_done(&d);
}
END_TEST

START_TEST(xauth_exchange)
{
    struct drv d;
    drv_init(&d, 0, 0);
    drive(&d, "EHLO c\r\nXAUTH NTLM\r\n");
    ck_hasnt(&d, "XAUTH NTLM\r\n250");
    ck_has(&d, "502 5.5.1 Error: XAUTH is not offered\r\n");
    drv_done(&d);

    drv_init(&d, SMTPD_OPT_XAUTH, 0);
    drive(&d, "EHLO c\r\n");
    ck_has(&d, "250-AUTH NTLM\r\n250-XAUTH NTLM\r\n250 HELP\r\n");
    drive(&d, "XAUTH LOGIN\r\nXAUTH NTLM\r\nTkVHT1RJQVRF\r\nQVVUSC1HT09E\r\n");
    ck_has(&d, "504 5.5.4 Error: unrecognized authentication type\r\n");
    ck_has(&d, "334 ntlm supported\r\n334 Q0hBTExFTkdF\r\n235 2.7.0 Authentication successful\r\n");
    ck_assert_str_eq(smtpd_user(d.s), "EXAMPLE\\alice");
    drive(&d, "EHLO c\r\n");
    ck_assert_int_eq(count(d.out, "XAUTH NTLM\r\n"), 1);
    drv_done(&d);
}
END_TEST

/* SMTPD_OPT_NO_AUTH with SMTPD_OPT_XAUTH: an Exchange 5.0-style peer that
 * knows only XAUTH. AUTH is neither advertised (before or after TLS) nor
 * accepted, in any mechanism; XAUTH NTLM works as usual. */
START_TEST(xauth_only)
{
    struct drv d;
    drv_init(&d, SMTPD_OPT_XAUTH | SMTPD_OPT_NO_AUTH | SMTPD_OPT_STARTTLS, 0);
    drive(&d, "EHLO c\r\n");
    ck_hasnt(&d, "AUTH NTLM\r\n250-XAUTH");
    ck_has(&d, "250-STARTTLS\r\n250-XAUTH NTLM\r\n250 HELP\r\n");
    ck_assert_int_eq(count(d.out, "250-AUTH"), 0);
    drive(&d, "AUTH NTLM\r\nAUTH NTLM TkVHT1RJQVRF\r\nAUTH LOGIN\r\nHELP\r\n");
    ck_assert_int_eq(count(d.out, "502 5.5.1 Error: AUTH is not offered\r\n"), 3);
    ck_has(&d, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP STARTTLS XAUTH\r\n");
    ck_hasnt(&d, "334 ");
    ck_assert_uint_eq(smtpd_auth_failures(d.s), 0);
    drive(&d, "STARTTLS\r\n");
    drive(&d, "EHLO c\r\n");
    ck_assert_int_eq(count(d.out, "250-AUTH"), 0);
    ck_assert_int_eq(count(d.out, "250-XAUTH NTLM\r\n"), 2);
    drive(&d, "AUTH PLAIN AGFsaWNlAHB3\r\n");
    ck_assert_int_eq(count(d.out, "502 5.5.1 Error: AUTH is not offered\r\n"), 4);
    ck_assert_int_eq(d.passwords, 0);
    drive(&d, "XAUTH NTLM\r\nTkVHT1RJQVRF\r\nQVVUSC1HT09E\r\n");
    ck_has(&d, "334 ntlm supported\r\n334 Q0hBTExFTkdF\r\n235 2.7.0 Authentication successful\r\n");
    ck_assert_str_eq(smtpd_user(d.s), "EXAMPLE\\alice");
    ck_assert_uint_ne(smtpd_flags(d.s) & SF_AUTHENTICATED, 0);
    drv_done(&d);

    /* NO_AUTH alone: no authentication verb at all. */
    drv_init(&d, SMTPD_OPT_NO_AUTH, 0);
    drive(&d, "EHLO c\r\nAUTH NTLM\r\nXAUTH NTLM\r\n");
    ck_assert_int_eq(count(d.out, "AUTH NTLM\r\n"), 0);
    ck_has(&d, "502 5.5.1 Error: AUTH is not offered\r\n");
    ck_has(&d, "502 5.5.1 Error: XAUTH is not offered\r\n");
    drv_done(&d);
}
END_TEST

START_TEST(auth_login_plain_after_tls)
{
    struct drv d;
    drv_init(&d, SMTPD_OPT_STARTTLS, 0);
    drive(&d, "EHLO c\r\nSTARTTLS\r\n");
    drive(&d, "EHLO c\r\n");
    ck_has(&d, "250-AUTH NTLM LOGIN PLAIN\r\n");
    drive(&d, "AUTH LOGIN\r\nYWxpY2U=\r\nd3Jvbmc=\r\n");
    ck_has(&d, "334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n535 5.7.3 Authentication unsuccessful\r\n");
    drive(&d, "AUTH PLAIN AGFsaWNlAHdyb25n\r\nAUTH PLAIN\r\nAGFsaWNlAHNlY3JldA==\r\n");
    ck_has(&d, "334 \r\n235 2.7.0 Authentication successful\r\n");
    ck_assert_int_eq(d.passwords, 3);
    ck_assert_uint_eq(smtpd_auth_failures(d.s), 2);
    ck_assert_str_eq(smtpd_user(d.s), "alice");
    drive(&d, "AUTH LOGIN YWxpY2U=\r\n");
    ck_has(&d, "503 5.5.1 Error: already authenticated\r\n");
    drv_done(&d);
}
END_TEST

/* STARTTLS -------------------------------------------------------------------- */

START_TEST(starttls_resets_and_discards)
{
    struct drv d;
    drv_init(&d, SMTPD_OPT_STARTTLS, 0);
    d.auto_tls = 0;
    drive(&d, "EHLO c\r\n");
    ck_has(&d, "250-STARTTLS\r\n");
    drive(&d, "MAIL FROM:<a@b.example>\r\nRSET\r\n"
              "STARTTLS\r\nMAIL FROM:<evil@attacker.example>\r\nRCPT TO:<v@example.com>\r\n");
    ck_assert_int_eq(d.starttls, 1);
    ck_assert(strcmp(d.out + d.outlen - 30, "220 2.0.0 Ready to start TLS\r\n") == 0);
    /* bytes arriving before the handshake completes are dropped too */
    drive(&d, "MAIL FROM:<evil2@attacker.example>\r\n");
    size_t before = d.outlen;
    ck_assert_int_eq(smtpd_tls_started(d.s, 1), 0);
    ck_assert_int_eq(smtpd_tls_started(d.s, 1), -1);
    pump(&d);
    ck_assert_uint_eq(d.outlen, before);       /* no greeting, no replies */
    ck_hasnt(&d, "evil");
    ck_assert_str_eq(smtpd_helo(d.s), "");
    ck_assert_uint_eq(smtpd_flags(d.s), SF_SECURE);
    /* state is back to needing EHLO */
    drive(&d, "MAIL FROM:<a@b.example>\r\nEHLO c\r\nSTARTTLS\r\n");
    ck_has(&d, "503 5.5.1 Error: send HELO/EHLO first\r\n");
    ck_assert_int_eq(count(d.out, "250-STARTTLS\r\n"), 1);
    ck_has(&d, "503 5.5.1 Error: TLS is already active\r\n");
    drv_done(&d);
}
END_TEST

START_TEST(starttls_not_offered_and_policy)
{
    struct drv d;
    drv_init(&d, 0, 0);
    drive(&d, "EHLO c\r\nSTARTTLS\r\n");
    ck_hasnt(&d, "250-STARTTLS");
    ck_has(&d, "502 5.5.1 Error: STARTTLS is not offered\r\n");
    drv_done(&d);

    drv_init(&d, SMTPD_OPT_STARTTLS, 0);
    d.tls_policy_ok = 0;
    drive(&d, "EHLO c\r\nSTARTTLS\r\n");
    drive(&d, "EHLO c\r\nMAIL FROM:<a@b.example>\r\nAUTH NTLM\r\nQUIT\r\n");
    ck_assert_int_eq(count(d.out, "454 4.7.0 Error: TLS protection below policy; use QUIT\r\n"), 2);
    ck_has(&d, "221 2.0.0");
    drv_done(&d);
}
END_TEST

/* The refused stream passes nothing more: the engine answers at once and
 * closes, with what was negotiated and what policy requires. */
START_TEST(tls_refused_by_policy)
{
    struct drv d;
    drv_init(&d, SMTPD_OPT_STARTTLS, 0);
    d.auto_tls = 0;
    drive(&d, "EHLO c\r\nSTARTTLS\r\n");
    ck_assert_int_eq(d.starttls, 1);
    ck_assert_int_eq(smtpd_tls_refused(d.s, "negotiated TLS 1.0; policy requires TLS 1.2\r\nx"), 0);
    drain(&d);
    ck_has(&d, "454 4.7.0 TLS session refused by policy: negotiated TLS 1.0; policy requires "
               "TLS 1.2");
    ck_hasnt(&d, "\r\nx");
    ck_assert_int_eq(smtpd_closed(d.s), 1);
    ck_assert_int_eq(smtpd_tls_refused(d.s, "again"), -1);
    drv_done(&d);
}
END_TEST

/* AuthRequiresTls: neither AUTH nor XAUTH is offered or taken in clear. */
START_TEST(auth_needs_tls)
{
    struct drv d;
    drv_init(&d, SMTPD_OPT_STARTTLS | SMTPD_OPT_XAUTH | SMTPD_OPT_AUTH_NEEDS_TLS, 0);
    drive(&d, "EHLO c\r\nAUTH NTLM\r\nXAUTH NTLM\r\n");
    ck_hasnt(&d, "250-AUTH");
    ck_hasnt(&d, "XAUTH NTLM\r\n250");
    ck_assert_int_eq(count(d.out, "530 5.7.0 Must issue a STARTTLS command first\r\n"), 2);
    ck_assert_int_eq(d.ntlm_tokens, 0);
    drive(&d, "STARTTLS\r\n");
    drive(&d, "EHLO c\r\nAUTH NTLM TkVHT1RJQVRF\r\n");
    ck_has(&d, "250-AUTH NTLM LOGIN PLAIN\r\n");
    ck_has(&d, "334 Q0hBTExFTkdF\r\n");
    ck_assert_int_eq(d.ntlm_tokens, 1);
    drv_done(&d);
}
END_TEST

/* Message submission (RFC 6409): STARTTLS before AUTH, AUTH before MAIL. */
START_TEST(submission_needs_auth)
{
    struct drv d;
    drv_init(&d, SMTPD_OPT_STARTTLS | SMTPD_OPT_AUTH_NEEDS_TLS | SMTPD_OPT_AUTH_REQUIRED, 0);
    drive(&d, "EHLO c\r\nMAIL FROM:<a@b.example>\r\nAUTH NTLM TkVHT1RJQVRF\r\n");
    ck_has(&d, "530 5.7.0 Authentication required\r\n530 5.7.0 Must issue a STARTTLS command first\r\n");
    ck_assert_int_eq(d.ntlm_tokens, 0);
    drive(&d, "STARTTLS\r\n");
    drive(&d, "EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.com>\r\n");
    ck_assert_int_eq(count(d.out, "530 5.7.0 Authentication required\r\n"), 2);
    ck_has(&d, "503 5.5.1 Error: need MAIL command\r\n");   /* the RCPT after it */
    /* a failed AUTH does not open the door either */
    drive(&d, "AUTH NTLM TkVHT1RJQVRF\r\nQkFE\r\nMAIL FROM:<a@b.example>\r\n");
    ck_has(&d, "535 5.7.3 Authentication unsuccessful\r\n530 5.7.0 Authentication required\r\n");
    d.outlen = 0;
    drive(&d, "AUTH NTLM TkVHT1RJQVRF\r\nQVVUSC1HT09E\r\nMAIL FROM:<a@b.example>\r\n"
              "RCPT TO:<x@elsewhere.example>\r\nDATA\r\nhi\r\n.\r\n");
    ck_has(&d, "235 2.7.0 Authentication successful\r\n250 2.1.0 Sender <a@b.example> ok\r\n"
               "250 2.1.5 Recipient <x@elsewhere.example> ok\r\n");
    ck_has(&d, "250 2.0.0 Ok: queued as Q1\r\n");
    ck_hasnt(&d, "530");
    drv_done(&d);
    /* a relay range does not stand in for AUTH on a submission listener */
    drv_init(&d, SMTPD_OPT_AUTH_REQUIRED, 1);
    drive(&d, "EHLO c\r\nMAIL FROM:<a@b.example>\r\n");
    ck_has(&d, "530 5.7.0 Authentication required\r\n");
    drv_done(&d);
}
END_TEST

/* Implicit TLS (RFC 8314): the handshake first, then the greeting, never a
 * byte in clear; STARTTLS is neither offered nor taken. */
START_TEST(tls_on_connect)
{
    struct drv d;
    unsigned opts = SMTPD_OPT_STARTTLS | SMTPD_OPT_AUTH_REQUIRED | SMTPD_OPT_TLS_ON_CONNECT;
    drv_init(&d, opts, 0);
    size_t n;
    smtpd_output(d.s, &n);
    ck_assert_uint_eq(n, 0);                      /* no greeting in clear */
    ck_assert_uint_eq(smtpd_feed(d.s, "EHLO early\r\n", 12), 12);   /* discarded */
    ck_assert_int_eq(smtpd_tls_started(d.s, 1), -1);   /* not asked for yet */
    drive(&d, "");
    ck_assert_int_eq(d.starttls, 1);
    ck_assert_str_eq(d.out, "220 mx.example.com ESMTP imsvc ready\r\n");
    drive(&d, "EHLO c\r\nSTARTTLS\r\nMAIL FROM:<a@b.example>\r\n");
    ck_has(&d, "250-AUTH NTLM LOGIN PLAIN\r\n");
    ck_hasnt(&d, "250-STARTTLS");
    ck_hasnt(&d, "early");
    ck_has(&d, "503 5.5.1 Error: TLS is already active\r\n530 5.7.0 Authentication required\r\n");
    ck_assert_int_eq(d.starttls, 1);
    drive(&d, "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nMAIL FROM:<a@b.example>\r\n"
              "RCPT TO:<x@elsewhere.example>\r\nDATA\r\nhi\r\n.\r\n");
    ck_has(&d, "250 2.0.0 Ok: queued as Q1\r\n");
    ck_assert_ptr_nonnull(strstr(d.received, "with ESMTPSA id Q1"));
    drv_done(&d);

    /* below policy: refused instead of the greeting, and closed */
    drv_init(&d, opts, 0);
    d.auto_tls = 0;
    drive(&d, "");
    ck_assert_int_eq(d.starttls, 1);
    ck_assert_int_eq(smtpd_tls_refused(d.s, "negotiated TLS 1.0; policy requires TLS 1.2"), 0);
    pump(&d);
    ck_assert_str_eq(d.out, "421 4.7.0 mx.example.com TLS session refused by policy: negotiated "
                            "TLS 1.0; policy requires TLS 1.2\r\n");
    ck_assert_int_eq(d.closed, 1);
    drv_done(&d);

    /* the service stops before the handshake: closed, and not a byte in clear */
    drv_init(&d, opts, 0);
    smtpd_shutdown(d.s);
    drive(&d, "");
    ck_assert_uint_eq(d.outlen, 0);
    ck_assert_int_eq(d.starttls, 0);
    ck_assert_int_eq(d.closed, 1);
    drv_done(&d);
}
END_TEST

/* MaxMessagesPerConnection: the MAIL after the last allowed message gets
 * 421 and the session ends; MaxHops as configured. */
START_TEST(message_and_hop_limits)
{
    struct drv d;
    static char m[4096];
    drv_init(&d, 0, 0);
    smtpd_free(d.s);
    d.cfg.max_messages = 2;
    d.cfg.max_hops = 3;
    drv_start(&d);
    drive(&d, "EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.com>\r\nDATA\r\n");
    size_t n = hops_message(m, sizeof m, 3);
    ck_assert_uint_eq(drive_n(&d, m, n, 0), 0);
    ck_has(&d, "250 2.0.0 Ok: queued as Q1\r\n");
    drive(&d, "MAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.com>\r\nDATA\r\n");
    n = hops_message(m, sizeof m, 4);
    ck_assert_uint_eq(drive_n(&d, m, n, 0), 0);
    ck_has(&d, "554 5.4.6 Error: too many hops (more than 3 Received header fields): a mail loop\r\n");
    ck_assert_uint_eq(smtpd_messages(d.s), 2);
    ck_assert_int_eq(d.closed, 0);
    drive(&d, "RSET\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.com>\r\n");
    ck_has(&d, "250 2.0.0 Ok\r\n421 4.7.0 mx.example.com Error: too many messages in one "
               "connection (at most 2); reconnect to send more\r\n");
    ck_hasnt(&d, "503");   /* nothing after the 421 is read */
    ck_assert_int_eq(d.closed, 1);
    drv_done(&d);
}
END_TEST

/* A temporary SSPI failure counts toward the error limit: a client cannot
 * make the service fail (and log) without end on one session. */
START_TEST(auth_tempfail_counts_as_error)
{
    struct drv d;
    memset(&d, 0, sizeof d);
    d.cfg.hostname = "mx.example.com";
    d.cfg.local_domains = local_list();
    d.cfg.max_errors = 3;
    d.tls_policy_ok = 1;
    d.auto_tls = 1;
    drv_start(&d);
    drive(&d, "EHLO c\r\n");
    for (int i = 0; i < 5; i++)
        drive(&d, "AUTH NTLM TkVHT1RJQVRF\r\nQVVUSC1URU1Q\r\n");
    ck_assert_int_eq(count(d.out, "454 4.7.0 Temporary authentication failure\r\n"), 3);
    ck_has(&d, "421 4.7.0 mx.example.com Error: too many errors\r\n");
    ck_assert_int_eq(d.closed, 1);
    drv_done(&d);
}
END_TEST

/* Relay policy -------------------------------------------------------------------- */

START_TEST(relay_policy)
{
    struct drv d;
    drv_init(&d, 0, 0);
    drive(&d, "EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@EXAMPLE.com>\r\n"
              "RCPT TO:<y@corp.example>\r\nRCPT TO:<z@elsewhere.example>\r\n"
              "RCPT TO:<z@sub.example.com>\r\nRCPT TO:<z@[192.0.2.1]>\r\n");
    ck_assert_int_eq(count(d.out, "250 2.1.5"), 2);
    ck_assert_int_eq(count(d.out, "550 5.7.1 Error: relaying denied: "), 3);
    ck_has(&d, "550 5.7.1 Error: relaying denied: sub.example.com is not a local domain; "
               "authenticate to send mail elsewhere\r\n");
    ck_has(&d, "550 5.7.1 Error: relaying denied: [192.0.2.1] is not a local domain; "
               "authenticate to send mail elsewhere\r\n");
    drv_done(&d);

    /* from a relay range */
    drv_init(&d, 0, 1);
    drive(&d, "EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<z@elsewhere.example>\r\n");
    ck_has(&d, "250 2.1.5 Recipient <z@elsewhere.example> ok\r\n");
    drv_done(&d);

    /* authenticated */
    drv_init(&d, 0, 0);
    drive(&d, "EHLO c\r\nAUTH NTLM TkVHT1RJQVRF\r\nQVVUSC1HT09E\r\n"
              "MAIL FROM:<a@b.example>\r\nRCPT TO:<z@elsewhere.example>\r\n");
    ck_has(&d, "250 2.1.5 Recipient <z@elsewhere.example> ok\r\n");
    drv_done(&d);
}
END_TEST

/* Every recipient form the parser takes, from a client that may not relay:
 * the exact reply. What is accepted is local (the queue drops it); nothing
 * accepted is a recipient the queue would have to bounce. */
static const struct {
    const char *rcpt, *reply;
} stranger_cases[] = {
    { "<Postmaster>", "250 2.1.5 Recipient <postmaster@example.com> ok" },
    { "<POSTMASTER>", "250 2.1.5 Recipient <postmaster@example.com> ok" },
    { "<postmaster@corp.example>", "250 2.1.5 Recipient <postmaster@corp.example> ok" },
    { "<Postmaster@other.example>", "550 5.7.1 Error: relaying denied: other.example is not a "
      "local domain; authenticate to send mail elsewhere" },
    { "<user>", "501 5.1.3 mailbox has no '@domain'" },
    { "<postmaster@>", "501 5.1.3 domain label must start with a letter or digit" },
    { "<user@example.com.>", "501 5.1.3 domain label must start with a letter or digit" },
    { "<user%other.example@example.com>", "550 5.7.1 Error: relaying denied: '%' in the local "
      "part names a mailbox on another host; authenticate to send mail elsewhere" },
    { "<other.example!user@example.com>", "550 5.7.1 Error: relaying denied: '!' in the local "
      "part names a mailbox on another host; authenticate to send mail elsewhere" },
    { "<\"user@other.example\"@example.com>", "550 5.7.1 Error: relaying denied: '@' in the "
      "local part names a mailbox on another host; authenticate to send mail elsewhere" },
    { "<\"john smith\"@example.com>", "250 2.1.5 Recipient <\"john smith\"@example.com> ok" },
    { "<@example.com:user@other.example>", "550 5.7.1 Error: relaying denied: other.example is "
      "not a local domain; authenticate to send mail elsewhere" },
    { "<@other.example,@b.example:user@example.com>", "250 2.1.5 Recipient <user@example.com> ok" },
    { "<user@[192.0.2.7]>", "550 5.7.1 Error: relaying denied: [192.0.2.7] is not a local domain; "
      "authenticate to send mail elsewhere" },
    { "<user@[IPv6:2001:db8::7]>", "550 5.7.1 Error: relaying denied: [IPv6:2001:db8::7] is not "
      "a local domain; authenticate to send mail elsewhere" },
    { "<user@[0.0.0.0]>", "550 5.1.2 Error: [0.0.0.0] cannot receive mail: 0.0.0.0/8 means this "
      "network (RFC 1122), not a host" },
    { "<IMCEASMTP-user+40other+2Eexample@example.com>", "550 5.7.1 Error: relaying denied: an "
      "encoded '@' (+40) in the local part names a mailbox on another host; authenticate to send "
      "mail elsewhere" },
    { "<IMCEAEX-_o=Org_cn=bill@example.com>",
      "250 2.1.5 Recipient <IMCEAEX-_o=Org_cn=bill@example.com> ok" },
};

START_TEST(rcpt_verdicts_for_a_stranger)
{
    struct drv d;
    char cmd[512], want[512];
    drv_init(&d, 0, 0);
    drive(&d, "EHLO c\r\nMAIL FROM:<victim@other.example>\r\n");
    for (size_t i = 0; i < sizeof stranger_cases / sizeof stranger_cases[0]; i++) {
        size_t before = d.outlen;
        snprintf(cmd, sizeof cmd, "RCPT TO:%s\r\n", stranger_cases[i].rcpt);
        snprintf(want, sizeof want, "%s\r\n", stranger_cases[i].reply);
        drive(&d, cmd);
        ck_assert_msg(strcmp(d.out + before, want) == 0, "%s: got %s", stranger_cases[i].rcpt,
                      d.out + before);
    }
    /* what was accepted is what the engine hands to the spool: all local */
    drive(&d, "DATA\r\nSubject: x\r\n\r\nbody\r\n.\r\n");
    ck_assert_int_eq(d.stored, 1);
    drv_done(&d);
}
END_TEST

/* <Postmaster> without a domain is stored as postmaster@ the first local
 * domain, so the envelope, the Received header and the queue all name the
 * mailbox it is delivered to (RFC 5321 4.5.1). */
START_TEST(postmaster_without_domain)
{
    struct drv d;
    drv_init(&d, 0, 0);
    drive(&d, "HELO c\r\nMAIL FROM:<victim@other.example>\r\nRCPT TO:<postMaster>\r\nDATA\r\n");
    ck_assert_uint_eq(smtpd_rcpt_count(d.s), 1);
    const struct addr_path *p = smtpd_rcpt(d.s, 0);
    ck_assert_str_eq(p->local, "postmaster");
    ck_assert_str_eq(p->domain, "example.com");
    ck_assert_int_eq(p->kind, ADDR_DOMAIN_NAME);
    ck_assert_ptr_nonnull(strstr(d.received, "\tfor <postmaster@example.com>; "));
    drive(&d, "hi\r\n.\r\n");
    ck_assert_int_eq(d.stored, 1);
    drv_done(&d);

    /* with no local domain at all it stays <Postmaster>, and is still accepted */
    memset(&d, 0, sizeof d);
    d.cfg.hostname = "mx.example.com";
    d.s = smtpd_new(&d.cfg, "192.0.2.7", 0);
    drive(&d, "HELO c\r\nMAIL FROM:<>\r\nRCPT TO:<Postmaster>\r\nRCPT TO:<a@example.com>\r\n");
    ck_has(&d, "250 2.1.5 Recipient <Postmaster> ok\r\n");
    ck_has(&d, "550 5.7.1 Error: relaying denied: example.com is not a local domain; ");
    drv_done(&d);
}
END_TEST

/* A client that may relay: other domains are accepted, routing in the local
 * part is its own business, but an address no host can have is refused
 * while it can still be told (not bounced later). */
START_TEST(rcpt_verdicts_for_a_relay_client)
{
    struct drv d;
    drv_init(&d, 0, 1);
    drive(&d, "EHLO c\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<u@other.example>\r\n"
              "RCPT TO:<u%x@example.com>\r\nRCPT TO:<u@[192.0.2.7]>\r\n"
              "RCPT TO:<u@[255.255.255.255]>\r\nRCPT TO:<u@[IPv6:ff02::1]>\r\n"
              "RCPT TO:<u@[IPv6:::]>\r\nRCPT TO:<Postmaster>\r\n");
    ck_has(&d, "250 2.1.5 Recipient <u@other.example> ok\r\n");
    ck_has(&d, "250 2.1.5 Recipient <u%x@example.com> ok\r\n");
    ck_has(&d, "250 2.1.5 Recipient <u@[192.0.2.7]> ok\r\n");
    ck_has(&d, "550 5.1.2 Error: [255.255.255.255] cannot receive mail: it is the limited "
               "broadcast address\r\n");
    ck_has(&d, "550 5.1.2 Error: [IPv6:ff02::1] cannot receive mail: it is a multicast address "
               "(ff00::/8)\r\n");
    ck_has(&d, "550 5.1.2 Error: [IPv6:::] cannot receive mail: it is the unspecified address "
               "::\r\n");
    ck_has(&d, "250 2.1.5 Recipient <postmaster@example.com> ok\r\n");
    ck_assert_uint_eq(smtpd_rcpt_count(d.s), 4);
    drv_done(&d);

    /* authenticated is the same as a relay range */
    drv_init(&d, 0, 0);
    drive(&d, "EHLO c\r\nAUTH NTLM TkVHT1RJQVRF\r\nQVVUSC1HT09E\r\n"
              "MAIL FROM:<a@b.example>\r\nRCPT TO:<\"u@x.example\"@example.com>\r\n");
    ck_has(&d, "250 2.1.5 Recipient <\"u@x.example\"@example.com> ok\r\n");
    drv_done(&d);
}
END_TEST

START_TEST(address_errors)
{
    struct drv d;
    drv_init(&d, 0, 0);
    drive(&d, "EHLO c\r\nMAIL TO:<a@b.example>\r\nMAIL FROM:<a@@b>\r\nMAIL FROM:<a@b.example> FOO=1\r\n"
              "MAIL FROM:<a@b.example> BODY=BINARYMIME\r\nMAIL FROM: <a@b.example>\r\n"
              "RCPT TO:<bad address@example.com>\r\nDATA\r\nRCPT TO:<x@example.com> NOTIFY=NEVER\r\n");
    ck_has(&d, "501 5.5.4 Syntax: MAIL FROM:<address>\r\n");
    ck_has(&d, "501 5.1.7 ");
    ck_has(&d, "555 5.5.4 ");
    ck_has(&d, "250 2.1.0 Sender <a@b.example> ok\r\n");
    ck_has(&d, "501 5.1.3 ");
    ck_has(&d, "503 5.5.1 Error: need RCPT command\r\n");
    ck_has(&d, "555 5.5.4 Error: DSN parameters are not offered\r\n");
    ck_assert_int_eq(count(d.out, "555 5.5.4"), 3);
    drv_done(&d);
}
END_TEST

/* The spool handshake ------------------------------------------------------------- */

START_TEST(ack_only_after_stored)
{
    struct drv d;
    drv_init(&d, 0, 0);
    d.store = STORE_HOLD;
    drive(&d, "EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.com>\r\nDATA\r\n"
              "hello\r\n.\r\nMAIL FROM:<next@b.example>\r\n");
    ck_assert_int_eq(d.messages, 1);
    ck_assert_int_eq(d.finals, 1);
    ck_hasnt(&d, "250 2.0.0");
    ck_hasnt(&d, "<next@b.example>");        /* pipelined input waits */
    ck_assert_int_eq(smtpd_timeout_kind(d.s), SMTPD_TO_DATA_TERM);
    ck_assert_uint_eq(smtpd_timeout_secs(d.s), SMTPD_TIMEOUT_DATA_TERM);
    ck_assert_int_eq(smtpd_message_stored(d.s, "ABC123"), 0);
    ck_assert_int_eq(smtpd_message_stored(d.s, "ABC123"), -1);
    pump(&d);
    ck_assert(strcmp(strstr(d.out, "354 "), "354 End data with <CR><LF>.<CR><LF>\r\n"
                                             "250 2.0.0 Ok: queued as ABC123\r\n"
                                             "250 2.1.0 Sender <next@b.example> ok\r\n") == 0);
    /* a failure to store */
    drive(&d, "RCPT TO:<x@example.com>\r\nDATA\r\nhello\r\n.\r\n");
    ck_assert_int_eq(smtpd_message_failed(d.s, 0, "disk\r\nfull"), 0);
    pump(&d);
    ck_has(&d, "451 4.3.0 Error: disk??full\r\n");
    drive(&d, "MAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.com>\r\nDATA\r\nhello\r\n.\r\n");
    ck_assert_int_eq(smtpd_message_failed(d.s, 1, NULL), 0);
    pump(&d);
    ck_has(&d, "554 5.3.0 Error: message could not be stored\r\n");
    drv_done(&d);
}
END_TEST

/* An answer that comes before the event it answers is refused (found by
 * fuzz_smtpd: a stored-callback between the final chunk and MESSAGE). */
START_TEST(answer_before_event_refused)
{
    struct drv d;
    struct smtpd_event ev;
    drv_init(&d, 0, 0);
    static const char m[] = "EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.com>\r\nDATA\r\nhi\r\n.\r\n";
    ck_assert_uint_eq(smtpd_feed(d.s, m, sizeof m - 1), sizeof m - 1);
    enum smtpd_event_type t;
    do {
        t = smtpd_next(d.s, &ev);
    } while (t != SMTPD_EV_DATA_CHUNK || !ev.final);
    ck_assert_int_eq(smtpd_message_stored(d.s, "EARLY"), -1);
    ck_assert_int_eq(smtpd_auth_success(d.s, "x"), -1);
    ck_assert_int_eq(smtpd_tls_started(d.s, 1), -1);
    ck_assert_int_eq(smtpd_next(d.s, &ev), SMTPD_EV_MESSAGE);
    ck_assert_int_eq(smtpd_next(d.s, &ev), SMTPD_EV_NONE);
    ck_assert_int_eq(smtpd_message_stored(d.s, "Q9"), 0);
    pump(&d);
    ck_has(&d, "250 2.0.0 Ok: queued as Q9\r\n");
    ck_hasnt(&d, "EARLY");
    drv_done(&d);
}
END_TEST

/* Received --------------------------------------------------------------------- */

START_TEST(received_header)
{
    struct drv d;
    drv_init(&d, SMTPD_OPT_STARTTLS, 0);
    drive(&d, "EHLO c\r\nSTARTTLS\r\n");
    drive(&d, "EHLO client.example\r\nAUTH NTLM TkVHT1RJQVRF\r\nQVVUSC1HT09E\r\n"
              "MAIL FROM:<a@b.example>\r\nRCPT TO:<x@elsewhere.example>\r\nDATA\r\nhi\r\n.\r\n");
    ck_assert_str_eq(d.received,
                     "Received: from client.example ([192.0.2.7])\r\n"
                     "\t(authenticated as EXAMPLE\\\\alice)\r\n"
                     "\tby mx.example.com with ESMTPSA id Q1\r\n"
                     "\tfor <x@elsewhere.example>; Tue, 1 Jul 2025 10:00:00 +0000\r\n");
    drv_done(&d);

    drv_init(&d, 0, 0);
    drive(&d, "EHLO client.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.com>\r\n"
              "RCPT TO:<y@example.com>\r\nDATA\r\nhi\r\n.\r\n");
    ck_assert_str_eq(d.received,
                     "Received: from client.example ([192.0.2.7])\r\n"
                     "\tby mx.example.com with ESMTP id Q1;\r\n"
                     "\tTue, 1 Jul 2025 10:00:00 +0000\r\n");
    char small[40];
    ck_assert_int_eq(smtpd_received(d.s, "Q1", "date", small, sizeof small), -1);
    ck_assert_str_eq(small, "");
    drv_done(&d);

    /* IPv6 peer, HELO */
    memset(&d, 0, sizeof d);
    d.cfg.hostname = "mx.example.com";
    d.cfg.local_domains = local_list();
    d.s = smtpd_new(&d.cfg, "2001:db8::5", 0);
    drive(&d, "HELO pc_1\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.com>\r\nDATA\r\nhi\r\n.\r\n");
    ck_assert_ptr_nonnull(strstr(d.received, "from pc_1 ([IPv6:2001:db8::5])\r\n\tby mx.example.com with SMTP id Q1\r\n"));
    drv_done(&d);

    /* the client's name, from reverse DNS, when the socket layer found one */
    drv_init(&d, 0, 0);
    ck_assert_int_eq(smtpd_set_client_name(d.s, "bad name\r\nX-Injected: 1"), -1);
    ck_assert_int_eq(smtpd_set_client_name(d.s, "[192.0.2.7]"), -1);
    ck_assert_int_eq(smtpd_set_client_name(d.s, "host-7.client.example"), 0);
    drive(&d, "EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.com>\r\nDATA\r\nhi\r\n.\r\n");
    ck_assert_ptr_nonnull(strstr(d.received, "Received: from c (host-7.client.example [192.0.2.7])\r\n"));
    ck_assert_int_eq(smtpd_set_client_name(d.s, ""), -1);   /* and a bad one clears it */
    drive(&d, "MAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.com>\r\nDATA\r\nhi\r\n.\r\n");
    ck_assert_ptr_nonnull(strstr(d.received, "Received: from c ([192.0.2.7])\r\n"));
    drv_done(&d);
}
END_TEST

/* Timeouts and closing --------------------------------------------------------- */

START_TEST(timeouts)
{
    struct drv d;
    drv_init(&d, 0, 0);
    ck_assert_int_eq(smtpd_timeout_kind(d.s), SMTPD_TO_COMMAND);
    ck_assert_uint_eq(smtpd_timeout_secs(d.s), 300);
    drive(&d, "EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.com>\r\nDATA\r\npartial");
    ck_assert_int_eq(smtpd_timeout_kind(d.s), SMTPD_TO_DATA_BLOCK);
    ck_assert_uint_eq(smtpd_timeout_secs(d.s), 180);
    smtpd_timeout(d.s);
    pump(&d);
    ck_has(&d, "421 4.4.2 mx.example.com Error: timeout exceeded\r\n");
    ck_assert_int_eq(d.closed, 1);
    ck_assert_int_eq(smtpd_closed(d.s), 1);
    ck_assert_int_eq(smtpd_timeout_kind(d.s), SMTPD_TO_NONE);
    /* input after close is taken and ignored */
    size_t before = d.outlen;
    drive(&d, "NOOP\r\n");
    ck_assert_uint_eq(d.outlen, before);
    drv_done(&d);

    drv_init(&d, 0, 0);
    smtpd_shutdown(d.s);
    pump(&d);
    ck_has(&d, "421 4.3.2 mx.example.com Service shutting down, closing connection\r\n");
    drv_done(&d);
}
END_TEST

START_TEST(too_many_errors)
{
    struct drv d;
    drv_init(&d, 0, 0);
    for (int i = 0; i < 30; i++)
        drive(&d, "BOGUS\r\n");
    ck_assert_int_eq(count(d.out, "500 5.5.1"), 20);
    ck_has(&d, "421 4.7.0 mx.example.com Error: too many errors\r\n");
    ck_assert_int_eq(d.closed, 1);
    drv_done(&d);
}
END_TEST

/* MaxProtocolErrors: the configured limit replaces the default. */
START_TEST(configured_error_limit)
{
    struct drv d;
    memset(&d, 0, sizeof d);
    d.cfg.hostname = "mx.example.com";
    d.cfg.local_domains = local_list();
    d.cfg.max_errors = 10;
    d.tls_policy_ok = 1;
    d.auto_tls = 1;
    drv_start(&d);
    for (int i = 0; i < 9; i++)
        drive(&d, "BOGUS\r\n");
    ck_assert_int_eq(smtpd_errors(d.s), 9);
    ck_assert_int_eq(d.closed, 0);
    drive(&d, "BOGUS\r\nNOOP\r\n");
    ck_assert_int_eq(count(d.out, "500 5.5.1"), 10);
    ck_has(&d, "421 4.7.0 mx.example.com Error: too many errors\r\n");
    ck_assert_int_eq(count(d.out, "250 2.0.0"), 0);
    ck_assert_int_eq(d.closed, 1);
    drv_done(&d);
}
END_TEST

START_TEST(helo_validation_and_help)
{
    struct drv d;
    drv_init(&d, SMTPD_OPT_XAUTH, 0);
    drive(&d, "EHLO\r\nEHLO bad name\r\nHELO [192.0.2.1]\r\nHELP\r\nRSET x\r\nQUIT x\r\n");
    ck_has(&d, "501 5.5.4 Syntax: EHLO/HELO domain-or-address-literal\r\n");
    ck_has(&d, "501 5.5.4 Invalid domain name or address literal\r\n");
    ck_has(&d, "250 mx.example.com\r\n");
    ck_has(&d, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP AUTH XAUTH\r\n");
    ck_has(&d, "501 5.5.4 Syntax: RSET takes no arguments\r\n");
    ck_has(&d, "501 5.5.4 Syntax: QUIT takes no arguments\r\n");
    ck_assert_int_eq(d.closed, 0);
    drv_done(&d);
}
END_TEST

/* The transcript for the protocol log: every command and reply line in
 * order, an AUTH exchange's responses as their length only, no content. */
struct tx {
    char text[8192];
    size_t len;
    size_t secret_octets;
};

static void tx_line(void *arg, enum smtpd_dir dir, const char *line, size_t len)
{
    struct tx *t = arg;
    if (dir == SMTPD_RECEIVED_SECRET) {
        ck_assert_ptr_null(line);
        t->secret_octets += len;
        return;
    }
    int n = snprintf(t->text + t->len, sizeof t->text - t->len, "%s%.*s\n",
                     dir == SMTPD_SENT ? "S: " : "C: ", (int)len, line);
    ck_assert(n > 0 && (size_t)n < sizeof t->text - t->len);
    t->len += (size_t)n;
}

START_TEST(transcript_keeps_no_secret)
{
    struct drv d;
    struct tx t = { .len = 0 };
    drv_init(&d, SMTPD_OPT_STARTTLS, 0);
    smtpd_set_transcript(d.s, tx_line, &t);
    drive(&d, "EHLO c\r\nSTARTTLS\r\n");
    drive(&d, "EHLO c\r\nAUTH LOGIN\r\nYWxpY2U=\r\nc2VjcmV0\r\n");
    drive(&d, "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n"
              "Subject: hidden-content\r\n\r\nbody\r\n.\r\nQUIT\r\n");
    ck_assert_ptr_nonnull(strstr(t.text, "C: EHLO c\nS: 250-mx.example.com\n"));
    ck_assert_ptr_nonnull(strstr(t.text, "C: STARTTLS\nS: 220 2.0.0 Ready to start TLS\n"));
    ck_assert_ptr_nonnull(strstr(t.text, "C: AUTH LOGIN\nS: 334 VXNlcm5hbWU6\nS: 334 UGFzc3dvcmQ6\n"
                                         "S: 235 2.7.0 Authentication successful\n"));
    ck_assert_uint_eq(t.secret_octets, 8 + 8);
    ck_assert_ptr_null(strstr(t.text, "YWxpY2U="));
    ck_assert_ptr_null(strstr(t.text, "c2VjcmV0"));
    ck_assert_ptr_nonnull(strstr(t.text, "C: DATA\nS: 354 "));
    ck_assert_ptr_null(strstr(t.text, "hidden-content"));
    ck_assert_ptr_nonnull(strstr(t.text, "S: 250 2.0.0 Ok: queued as Q1\nC: QUIT\nS: 221 "));
    drv_done(&d);
}
END_TEST

/* The address map at MAIL and RCPT (core/rewrite.h): an IMCEA X.400
 * recipient is mapped, one that breaks a rule is refused 550 5.1.3 naming
 * the field, a valid unmapped one 550 5.1.1, an alias becomes several
 * recipients; each rewritten one keeps the address as written as its ORCPT. */
#define ANN_IMCEA "IMCEAX400-c=US+3Ba=+20+3Bo=Sales+3Bs=Ann+3B@example.com"
START_TEST(address_map_rewrites)
{
    struct drv d;
    struct addrmap *m;
    struct addrmap_error err;
    char buf[ADDR_PATH_MAX + 1];
    static const char map[] =
        "c=US;a= ;o=Sales;s=Ann;   ann@corp.example\n"
        "sales@example.com         ann@corp.example, bob@corp.example\n";
    ck_assert_int_eq(addrmap_parse(map, strlen(map), &m, &err), 0);
    drv_init(&d, 0, 0);
    smtpd_set_address_map(d.s, m, 1);
    drive(&d, "EHLO client.example\r\n"
              "MAIL FROM:<" ANN_IMCEA ">\r\n"
              "RCPT TO:<" ANN_IMCEA ">\r\n"
              "RCPT TO:<IMCEAX400-a=+20+3Bo=Sales+3Bs=Ann+3B@example.com>\r\n"
              "RCPT TO:<IMCEAX400-c=US+3Ba=+20+3Bo=Sales+3Bs=Bob+3B@example.com>\r\n"
              "RCPT TO:<sales@example.com>\r\n"
              "RCPT TO:<plain@example.com>\r\n");
    ck_has(&d, "250 2.1.0 Sender <" ANN_IMCEA "> ok, rewritten to <ann@corp.example>\r\n");
    ck_has(&d, "250 2.1.5 Recipient <" ANN_IMCEA "> ok, rewritten to <ann@corp.example>\r\n");
    ck_has(&d, "550 5.1.3 Error: the IMCEAX400 address is not valid: the X.400 address breaks a "
               "rule: field c: country is required\r\n");
    ck_has(&d, "550 5.1.1 Error: the X.400 address c=US;a= ;o=Sales;s=Bob; is valid but not in "
               "the address map, so no mailbox receives it\r\n");
    ck_has(&d, "250 2.1.5 Recipient <sales@example.com> ok, rewritten to 2 addresses (map line 2)\r\n");
    ck_has(&d, "250 2.1.5 Recipient <plain@example.com> ok\r\n");

    ck_assert_int_gt(addr_format_mailbox(smtpd_sender(d.s), buf, sizeof buf), 0);
    ck_assert_str_eq(buf, "ann@corp.example");
    ck_assert_uint_eq(smtpd_rcpt_count(d.s), 4);
    static const char *const want[4][2] = {
        { "ann@corp.example", "IMCEAX400-c+3DUS+2B3Ba+3D+2B20+2B3Bo+3DSales+2B3Bs+3DAnn+2B3B@example.com" },
        { "ann@corp.example", "sales@example.com" },
        { "bob@corp.example", "sales@example.com" },
        { "plain@example.com", NULL },
    };
    for (size_t i = 0; i < 4; i++) {
        ck_assert_int_gt(addr_format_mailbox(smtpd_rcpt(d.s, i), buf, sizeof buf), 0);
        ck_assert_str_eq(buf, want[i][0]);
        const struct addr_params *p = smtpd_rcpt_params(d.s, i);
        ck_assert_int_eq(p->has_orcpt, want[i][1] != NULL);
        if (want[i][1]) {
            ck_assert_str_eq(p->orcpt_type, "rfc822");
            ck_assert_str_eq(p->orcpt, want[i][1]);
        }
    }
    /* The Received field names the rewritten recipient of a one-recipient message. */
    drive(&d, "RSET\r\nMAIL FROM:<x@sender.example>\r\nRCPT TO:<" ANN_IMCEA ">\r\n"
              "DATA\r\nSubject: t\r\n\r\nb\r\n.\r\n");
    ck_assert_msg(strstr(d.received, "for <ann@corp.example>;") != NULL, "%s", d.received);
    drv_done(&d);
    addrmap_free(m);
}
END_TEST

/* No map set: an embedded address is still checked; a valid one is kept.
 * A map configured but not in force: 451, the sender retries. */
START_TEST(address_map_absent)
{
    struct drv d;
    drv_init(&d, 0, 0);
    drive(&d, "EHLO client.example\r\nMAIL FROM:<x@sender.example>\r\n"
              "RCPT TO:<IMCEAX400-c=US+3Ba=+20+3Bg=Ann+3B@example.com>\r\n"
              "RCPT TO:<" ANN_IMCEA ">\r\n");
    ck_has(&d, "550 5.1.3 Error: the IMCEAX400 address is not valid: the X.400 address breaks a "
               "rule: field s: surname is required when g is present\r\n");
    ck_has(&d, "250 2.1.5 Recipient <" ANN_IMCEA "> ok\r\n");
    drv_done(&d);
    drv_init(&d, 0, 0);
    smtpd_set_address_map(d.s, NULL, 1);
    drive(&d, "EHLO client.example\r\nMAIL FROM:<x@sender.example>\r\n"
              "RCPT TO:<" ANN_IMCEA ">\r\nRCPT TO:<plain@example.com>\r\n");
    ck_has(&d, "451 4.3.5 Error: the address map (AddressMapFile) is not loaded, so the X.400 "
               "address cannot be mapped yet\r\n");
    ck_has(&d, "250 2.1.5 Recipient <plain@example.com> ok\r\n");
    drv_done(&d);
}
END_TEST

Suite *smtpd_suite(void)
{
    Suite *s = suite_create("smtpd");
    TCase *tc = tcase_create("session");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, full_transaction);
    tcase_add_test(tc, hop_limit);
    tcase_add_test(tc, empty_message_and_helo);
    tcase_add_test(tc, pipelining_segmentation_identical);
    tcase_add_test(tc, pipelined_replies_in_order);
    tcase_add_test(tc, smuggling_never_ends_data);
    tcase_add_test(tc, nul_in_data_rejected);
    tcase_add_test(tc, bare_lf_in_command);
    tcase_add_test(tc, nul_in_command);
    tcase_add_test(tc, command_line_limit);
    tcase_add_test(tc, text_line_limit);
    tcase_add_test(tc, size_limit);
    tcase_add_test(tc, recipient_limit);
    tcase_add_test(tc, large_message_chunks);
    tcase_add_test(tc, auth_ntlm_exchange);
    tcase_add_test(tc, auth_ntlm_initial_response_and_failures);
    tcase_add_test(tc, auth_cancel_and_errors);
    tcase_add_test(tc, xauth_exchange);
    tcase_add_test(tc, xauth_only);
    tcase_add_test(tc, auth_login_plain_after_tls);
    tcase_add_test(tc, starttls_resets_and_discards);
    tcase_add_test(tc, starttls_not_offered_and_policy);
    tcase_add_test(tc, relay_policy);
    tcase_add_test(tc, rcpt_verdicts_for_a_stranger);
    tcase_add_test(tc, postmaster_without_domain);
    tcase_add_test(tc, rcpt_verdicts_for_a_relay_client);
    tcase_add_test(tc, address_errors);
    tcase_add_test(tc, ack_only_after_stored);
    tcase_add_test(tc, answer_before_event_refused);
    tcase_add_test(tc, received_header);
    tcase_add_test(tc, timeouts);
    tcase_add_test(tc, too_many_errors);
    tcase_add_test(tc, configured_error_limit);
    tcase_add_test(tc, tls_refused_by_policy);
    tcase_add_test(tc, auth_needs_tls);
    tcase_add_test(tc, auth_tempfail_counts_as_error);
    tcase_add_test(tc, submission_needs_auth);
    tcase_add_test(tc, tls_on_connect);
    tcase_add_test(tc, message_and_hop_limits);
    tcase_add_test(tc, helo_validation_and_help);
    tcase_add_test(tc, transcript_keeps_no_secret);
    tcase_add_test(tc, address_map_rewrites);
    tcase_add_test(tc, address_map_absent);
    suite_add_tcase(s, tc);
    return s;
}
