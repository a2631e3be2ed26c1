/* check_dsn.c - RFC 3464 notices: structure, fields, NOTIFY, hostile replies,
 * and what of the original goes back (header fields only, unless asked). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsn.h"

static const char headers[] =
    "Received: from client.example.org\n"
    "From: Alice <alice@example.org>\n"
    "To: bob@example.net, carol@example.net\n"
    "Subject: signed report\n"
    "Message-ID: <m1@example.org>\n"
    "\n"
    "body text that must not be in the notice\n";

static void path(const char *s, enum addr_verb v, struct addr_path *p)
{
    struct addr_error err;
    ck_assert_int_eq(addr_parse_path(s, strlen(s), v, p, &err), 0);
}

/* rcpt 0: bob, 5.1.1 with a reply and ORCPT; rcpt 1: carol, 5.6.3 decided by
 * us (no reply); rcpt 2: dan, NOTIFY=NEVER; rcpt 3: erin, NOTIFY=DELAY,
 * deferred with a 4.4.1 */
static void sample(struct envelope *e)
{
    struct addr_path p;
    struct addr_params prm;
    env_init(e);
    strcpy(e->id, "Q42");
    e->arrived = 1795440000;
    path("<alice@example.org>", ADDR_MAIL, &e->from);
    strcpy(e->envid, "QQ+2B314");

    memset(&prm, 0, sizeof prm);
    prm.has_orcpt = 1;
    strcpy(prm.orcpt_type, "rfc822");
    strcpy(prm.orcpt, "Bob+2Bx@example.net");
    prm.notify = ADDR_NOTIFY_FAILURE;
    path("<bob@example.net>", ADDR_RCPT, &p);
    env_add_rcpt(e, &p, &prm);
    e->rcpt[0].state = ENV_FAILED;
    strcpy(e->rcpt[0].status, "5.1.1");
    strcpy(e->rcpt[0].remote, "mx1.example.net");
    strcpy(e->rcpt[0].reply, "550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown in virtual mailbox table");
    strcpy(e->rcpt[0].why, "The server mx1.example.net rejected the recipient.");

    path("<carol@example.net>", ADDR_RCPT, &p);
    env_add_rcpt(e, &p, NULL);
    e->rcpt[1].state = ENV_FAILED;
    strcpy(e->rcpt[1].status, "5.6.3");
    strcpy(e->rcpt[1].remote, "mx1.example.net");

    memset(&prm, 0, sizeof prm);
    prm.notify = ADDR_NOTIFY_NEVER;
    path("<dan@example.net>", ADDR_RCPT, &p);
    env_add_rcpt(e, &p, &prm);
    e->rcpt[2].state = ENV_FAILED;
    strcpy(e->rcpt[2].status, "5.2.2");

    prm.notify = ADDR_NOTIFY_DELAY;
    path("<erin@example.net>", ADDR_RCPT, &p);
    env_add_rcpt(e, &p, &prm);
    e->rcpt[3].state = ENV_DEFERRED;
    strcpy(e->rcpt[3].status, "4.4.1");
    strcpy(e->rcpt[3].why, "No answer from mx1.example.net within 300 seconds.");
}

static void request(struct dsn_request *q, const struct envelope *e, enum dsn_action a,
                    const size_t *which, size_t n)
{
    memset(q, 0, sizeof *q);
    q->action = a;
    q->env = e;
    q->which = which;
    q->n_which = n;
    q->host = "gw.example.org";
    q->date = "Mon, 23 Nov 2026 14:00:00 +0000";
    q->arrival_date = "Mon, 23 Nov 2026 13:20:00 +0000";
    q->message_id = "<dsn.Q42.1@gw.example.org>";
    q->original = headers;
    q->original_len = sizeof headers - 1;
}

static char *compose(const struct dsn_request *q, size_t *len)
{
    ck_assert_int_eq(dsn_compose(q, NULL, 0, len), DSN_TOO_SMALL);
    char *buf = malloc(*len + 1);
    size_t len2;
    ck_assert_int_eq(dsn_compose(q, buf, *len, &len2), DSN_TOO_SMALL);
    ck_assert_int_eq(dsn_compose(q, buf, *len + 1, &len2), DSN_OK);
    ck_assert_uint_eq(len2, *len);
    ck_assert_uint_eq(strlen(buf), *len);
    /* every line ends in CRLF, none is longer than 998, all 7-bit here */
    size_t col = 0;
    for (size_t i = 0; i < *len; i++) {
        unsigned char c = (unsigned char)buf[i];
        ck_assert_uint_lt(c, 0x80);
        if (c == '\r') {
            ck_assert_msg(i + 1 < *len && buf[i + 1] == '\n', "bare CR at %zu", i);
            i++;
            col = 0;
            continue;
        }
        ck_assert_msg(c != '\n', "bare LF at %zu", i);
        ck_assert_uint_le(++col, 998);
    }
    ck_assert_uint_eq(col, 0);
    return buf;
}

/* The text with folds and wraps undone: CRLF followed by spaces becomes one space. */
static char *unfold(const char *s)
{
    char *out = malloc(strlen(s) + 1), *d = out;
    while (*s) {
        if (s[0] == '\r' && s[1] == '\n' && (s[2] == ' ' || s[2] == '\t')) {
            s += 2;
            while (*s == ' ' || *s == '\t')
                s++;
            *d++ = ' ';
            continue;
        }
        *d++ = *s++;
    }
    *d = '\0';
    return out;
}

#define HAS(buf, s) ck_assert_msg(strstr((buf), (s)) != NULL, "missing: %s", (s))
#define HASNT(buf, s) ck_assert_msg(strstr((buf), (s)) == NULL, "present: %s", (s))

START_TEST(test_failure_structure)
{
    struct envelope e;
    struct dsn_request q;
    size_t which[] = { 0, 1, 2 };
    size_t len;
    sample(&e);
    request(&q, &e, DSN_FAILED, which, 3);
    char *m = compose(&q, &len);
    char *u = unfold(m);

    ck_assert_int_eq(strncmp(m, "From: Mail Delivery System <postmaster@gw.example.org>\r\n", 56), 0);
    HAS(m, "\r\nTo: <alice@example.org>\r\n");
    HAS(m, "\r\nDate: Mon, 23 Nov 2026 14:00:00 +0000\r\n");
    HAS(m, "\r\nMessage-ID: <dsn.Q42.1@gw.example.org>\r\n");
    HAS(m, "\r\nSubject: Delivery Status Notification (Failure)\r\n");
    HAS(m, "\r\nAuto-Submitted: auto-replied\r\n");
    HAS(m, "\r\nMIME-Version: 1.0\r\n");
    HAS(u, "\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"=_imsvc-dsn_Q42_0\"\r\n");

    /* three parts, in order, then the close delimiter at the very end */
    char *p1 = strstr(m, "\r\n--=_imsvc-dsn_Q42_0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n");
    char *p2 = strstr(m, "\r\n--=_imsvc-dsn_Q42_0\r\nContent-Type: message/delivery-status\r\n\r\n");
    char *p3 = strstr(m, "\r\n--=_imsvc-dsn_Q42_0\r\nContent-Type: text/rfc822-headers\r\n\r\n");
    ck_assert_ptr_nonnull(p1);
    ck_assert_ptr_nonnull(p2);
    ck_assert_ptr_nonnull(p3);
    ck_assert(p1 < p2);
    ck_assert(p2 < p3);
    const char *close = "\r\n--=_imsvc-dsn_Q42_0--\r\n";
    ck_assert_str_eq(m + len - strlen(close), close);

    /* human part: the real reasons, the remote reply */
    HAS(u, "The message is signed and contains 8-bit data, and the next server does not accept "
           "8-bit data; converting it would break the signature");
    HAS(u, "The recipient's mailbox does not exist at the destination.");
    HAS(u, "The server mx1.example.net replied: 550 5.1.1 <bob@example.net>: Recipient address "
           "rejected: User unknown in virtual mailbox table");
    HAS(u, "The server mx1.example.net rejected the recipient.");
    /* the address as the sender wrote it, beside the one that failed */
    HAS(m, "\r\n  bob@example.net\r\n    Original address: Bob+x@example.net\r\n");
    HASNT(m, "\r\n  carol@example.net\r\n    Original address:");

    /* delivery-status part */
    char *ds = unfold(p2);
    *strstr(ds, "\r\n--=_imsvc-dsn_Q42_0\r\nContent-Type: text/rfc822-headers") = '\0';
    HAS(ds, "\r\n\r\nReporting-MTA: dns; gw.example.org\r\nOriginal-Envelope-Id: QQ+314\r\n"
            "Arrival-Date: Mon, 23 Nov 2026 13:20:00 +0000\r\n\r\n");
    HAS(ds, "\r\n\r\nFinal-Recipient: rfc822; bob@example.net\r\n"
            "Original-Recipient: rfc822; Bob+x@example.net\r\n"
            "Action: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; mx1.example.net\r\n"
            "Diagnostic-Code: smtp; 550 5.1.1 <bob@example.net>: Recipient address rejected: "
            "User unknown in virtual mailbox table\r\n");
    /* decided here, no reply: no Diagnostic-Code */
    HAS(ds, "\r\n\r\nFinal-Recipient: rfc822; carol@example.net\r\nAction: failed\r\n"
            "Status: 5.6.3\r\nRemote-MTA: dns; mx1.example.net\r\n");
    /* NOTIFY=NEVER: not mentioned anywhere */
    HASNT(m, "dan@example.net");
    HASNT(m, "Will-Retry-Until");

    /* the original headers, CRLF, without the body */
    HAS(p3, "\r\n\r\nReceived: from client.example.org\r\nFrom: Alice <alice@example.org>\r\n");
    HAS(p3, "\r\nMessage-ID: <m1@example.org>\r\n\r\n--=_imsvc-dsn_Q42_0--\r\n");
    HASNT(m, "must not be in the notice");

    free(ds);
    free(u);
    free(m);
    env_free(&e);
}
END_TEST

START_TEST(test_delay)
{
    struct envelope e;
    struct dsn_request q;
    size_t which[] = { 0, 3 };   /* bob asked for failure only */
    size_t len;
    sample(&e);
    request(&q, &e, DSN_DELAYED, which, 2);
    q.retry_until = "Wed, 25 Nov 2026 13:20:00 +0000";
    char *m = compose(&q, &len);
    char *u = unfold(m);
    HAS(m, "\r\nSubject: Delivery Status Notification (Delay)\r\n");
    HAS(u, "will keep trying until Wed, 25 Nov 2026 13:20:00 +0000");
    HAS(u, "\r\n\r\nFinal-Recipient: rfc822; erin@example.net\r\nAction: delayed\r\nStatus: 4.4.1\r\n"
           "Will-Retry-Until: Wed, 25 Nov 2026 13:20:00 +0000\r\n");
    HAS(u, "The destination server did not answer.");
    HAS(u, "No answer from mx1.example.net within 300 seconds.");
    HASNT(m, "Final-Recipient: rfc822; bob@example.net");
    HASNT(m, "\r\n  bob@example.net\r\n");
    free(u);
    free(m);
    env_free(&e);
}
END_TEST

START_TEST(test_no_notice)
{
    struct envelope e;
    struct dsn_request q;
    size_t never[] = { 2 }, bob[] = { 0 }, bad[] = { 9 };
    char buf[8192];
    size_t len;
    sample(&e);

    request(&q, &e, DSN_FAILED, never, 1);
    ck_assert_int_eq(dsn_compose(&q, buf, sizeof buf, &len), DSN_NOBODY);
    request(&q, &e, DSN_FAILED, bob, 0);
    ck_assert_int_eq(dsn_compose(&q, buf, sizeof buf, &len), DSN_NOBODY);
    request(&q, &e, DSN_DELAYED, bob, 1);
    ck_assert_int_eq(dsn_compose(&q, buf, sizeof buf, &len), DSN_NOBODY);
    request(&q, &e, DSN_FAILED, bad, 1);
    ck_assert_int_eq(dsn_compose(&q, buf, sizeof buf, &len), DSN_BAD_INPUT);
    request(&q, &e, DSN_FAILED, bob, 1);
    q.host = "gw.example.org\r\nBcc: victim@example.com";
    ck_assert_int_eq(dsn_compose(&q, buf, sizeof buf, &len), DSN_BAD_INPUT);
    request(&q, &e, DSN_FAILED, bob, 1);
    q.date = NULL;
    ck_assert_int_eq(dsn_compose(&q, buf, sizeof buf, &len), DSN_BAD_INPUT);

    /* never a notice to the null sender, whatever else is asked */
    e.from.null_path = 1;
    request(&q, &e, DSN_FAILED, bob, 1);
    ck_assert_int_eq(dsn_compose(&q, buf, sizeof buf, &len), DSN_NULL_SENDER);
    ck_assert_uint_eq(len, 0);
    ck_assert_str_eq(buf, "");
    env_free(&e);
}
END_TEST

START_TEST(test_hostile_reply)
{
    struct envelope e;
    struct dsn_request q;
    size_t which[] = { 0 };
    size_t len;
    sample(&e);
    strcpy(e.rcpt[0].reply, "550 no\r\nContent-Type: text/html\r\n\r\n--=_imsvc-dsn_Q42_0--\r\n\xff\x01");
    memset(e.rcpt[0].why, 'w', 1300);   /* one word far longer than a line may be */
    e.rcpt[0].why[1300] = '\0';
    request(&q, &e, DSN_FAILED, which, 1);
    char *m = compose(&q, &len);   /* checks CRLF, 7-bit, 998 */
    HASNT(m, "\r\nContent-Type: text/html");
    HASNT(m, "\r\n--=_imsvc-dsn_Q42_0--\r\n\r\n");
    char *u = unfold(m);
    HAS(u, "\r\nDiagnostic-Code: smtp; 550 no Content-Type: text/html --=_imsvc-dsn_Q42_0-- ??\r\n");
    free(u);
    /* exactly one close delimiter, at the end */
    char *close = strstr(m, "\r\n--=_imsvc-dsn_Q42_0--");
    ck_assert_ptr_eq(close + strlen("\r\n--=_imsvc-dsn_Q42_0--\r\n"), m + len);
    free(m);
    env_free(&e);
}
END_TEST

START_TEST(test_boundary_avoids_headers)
{
    struct envelope e;
    struct dsn_request q;
    size_t which[] = { 0 };
    size_t len;
    static const char h[] = "Subject: x\r\nX-Trap: --=_imsvc-dsn_Q42_0\r\n\r\nbody";
    sample(&e);
    request(&q, &e, DSN_FAILED, which, 1);
    q.original = h;
    q.original_len = sizeof h - 1;
    char *m = compose(&q, &len);
    HAS(m, "boundary=\"=_imsvc-dsn_Q42_1\"");
    HAS(m, "\r\n\r\nSubject: x\r\nX-Trap: --=_imsvc-dsn_Q42_0\r\n\r\n--=_imsvc-dsn_Q42_1--\r\n");
    free(m);
    env_free(&e);
}
END_TEST

/* A status that is not a code, and a header line too long to carry. */
START_TEST(test_bad_status_long_header)
{
    struct envelope e;
    struct dsn_request q;
    size_t which[] = { 1 };
    size_t len;
    static char h[2100];
    sample(&e);
    strcpy(e.rcpt[1].status, "5.1\r\nX: y");
    memcpy(h, "X-Long: ", 8);
    memset(h + 8, 'z', 2000);
    strcpy(h + 2008, "\r\n\r\n");
    request(&q, &e, DSN_FAILED, which, 1);
    q.original = h;
    q.original_len = strlen(h);
    char *m = compose(&q, &len);   /* checks the 998 limit */
    HAS(m, "\r\nAction: failed\r\nStatus: 5.0.0\r\n");
    HASNT(m, "\r\nX: y");
    char *u = unfold(m);
    HAS(u, "\r\nX-Long: zzzz");
    free(u);
    free(m);
    env_free(&e);
}
END_TEST

/* The header part of notice m (after its blank line, up to the next
 * delimiter), as a new string. */
static char *original_part(const char *m, const char *type)
{
    char start[128];
    snprintf(start, sizeof start, "\r\nContent-Type: %s\r\n\r\n", type);
    const char *p = strstr(m, start);
    ck_assert_msg(p != NULL, "no %s part", type);
    p += strlen(start);
    const char *b = strstr(m, "boundary=\"");
    ck_assert_ptr_nonnull(b);
    b += 10;
    char delim[96];
    snprintf(delim, sizeof delim, "\r\n--%.*s", (int)strcspn(b, "\""), b);
    const char *e = strstr(p, delim);
    ck_assert_ptr_nonnull(e);
    size_t n = (size_t)(e - p) + 2;
    char *out = malloc(n + 1);
    memcpy(out, p, n);
    out[n] = '\0';
    return out;
}

static char *notice_about(const char *original, enum dsn_content content, enum addr_ret ret)
{
    struct envelope e;
    struct dsn_request q;
    size_t which[] = { 0 };
    size_t len;
    sample(&e);
    e.ret = ret;
    request(&q, &e, DSN_FAILED, which, 1);
    q.original = original;
    q.original_len = strlen(original);
    q.content = content;
    char *m = compose(&q, &len);
    env_free(&e);
    return m;
}

/* A message with no empty line is not all header: what is not a field (or
 * its continuation) is content, and never goes back to a sender that may be
 * forged. */
START_TEST(test_headers_only_never_content)
{
    static const struct {
        const char *original, *kept;
    } cases[] = {
        /* no empty line: the fields, then the stranger's text */
        { "Subject: hi\r\nFrom: <v@other.example>\r\nBUY PAYLOAD NOW\r\nmore PAYLOAD\r\n",
          "Subject: hi\r\nFrom: <v@other.example>\r\n" },
        /* content from the first line: nothing is a header */
        { "PAYLOAD first\r\nSubject: x\r\n\r\nbody\r\n", "" },
        { "\r\nSubject: x\r\nPAYLOAD\r\n", "" },
        /* a continuation with no field before it is content */
        { " PAYLOAD\r\nSubject: x\r\n", "" },
        /* folded fields stay whole; the body does not come */
        { "Subject: a\r\n folded\r\n\tmore\r\nX-A: b\r\n\r\nPAYLOAD body\r\n",
          "Subject: a\r\n folded\r\n\tmore\r\nX-A: b\r\n" },
        /* a line without a colon, or a name with a space, ends the header */
        { "Subject: a\r\nNot a field PAYLOAD: x\r\n", "Subject: a\r\n" },
        { "Subject: a\r\n: PAYLOAD\r\n", "Subject: a\r\n" },
        /* bare LF and CR line ends (the pickup directory) are line ends too */
        { "Subject: a\nX: b\n\nPAYLOAD\n", "Subject: a\r\nX: b\r\n" },
        { "Subject: a\rPAYLOAD\r", "Subject: a\r\n" },
        /* the last field without a line end gets one */
        { "Subject: a\r\nX: b", "Subject: a\r\nX: b\r\n" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *m = notice_about(cases[i].original, DSN_CONTENT_HEADERS, ADDR_RET_NONE);
        char *part = original_part(m, "text/rfc822-headers");
        /* the part is the kept fields, then the empty line before the delimiter */
        char want[512];
        snprintf(want, sizeof want, "%s\r\n", cases[i].kept);
        ck_assert_msg(strcmp(part, want) == 0, "case %zu: got [%s]", i, part);
        HASNT(m, "PAYLOAD");
        HASNT(m, "message/rfc822");
        free(part);
        free(m);
    }
    /* RET=FULL asks for the content; the default configuration still says no */
    char *m = notice_about("Subject: a\r\n\r\nPAYLOAD\r\n", DSN_CONTENT_HEADERS, ADDR_RET_FULL);
    HASNT(m, "PAYLOAD");
    free(m);
}
END_TEST

/* The header part is bounded: whole fields up to DSN_HEADERS_MAX octets, and
 * the person reading is told the rest was left out. */
START_TEST(test_headers_bounded)
{
    static char h[64 * 1024];
    size_t o = 0;
    for (int i = 0; o + 200 < DSN_HEADERS_MAX * 3; i++) {
        int w = snprintf(h + o, sizeof h - o, "X-Field-%04d: %0100d\r\n", i, i);
        ck_assert(w > 0 && (size_t)w < sizeof h - o);
        o += (size_t)w;
    }
    strcpy(h + o, "\r\nPAYLOAD\r\n");
    char *m = notice_about(h, DSN_CONTENT_HEADERS, ADDR_RET_NONE);
    char *part = original_part(m, "text/rfc822-headers");
    size_t n = strlen(part) - 2;            /* without the empty line */
    ck_assert_uint_le(n, DSN_HEADERS_MAX);
    ck_assert_uint_gt(n, DSN_HEADERS_MAX - 200);
    ck_assert(memcmp(part, h, n) == 0);     /* a prefix of the original... */
    ck_assert(memcmp(h + n, "X-Field-", 8) == 0);   /* ...that ends where a field starts */
    char *u = unfold(m);
    HAS(m, "\r\n\r\nOnly the first 16384 octets of your message's header are included below.\r\n");
    HASNT(m, "PAYLOAD");
    free(u);
    free(part);
    free(m);

    /* one field larger than the bound: no field at all, rather than half of it */
    memcpy(h, "Subject: ", 9);
    memset(h + 9, 'p', DSN_HEADERS_MAX + 10);
    strcpy(h + 9 + DSN_HEADERS_MAX + 10, "\r\nX: y\r\n\r\nbody\r\n");
    m = notice_about(h, DSN_CONTENT_HEADERS, ADDR_RET_NONE);
    part = original_part(m, "text/rfc822-headers");
    ck_assert_str_eq(part, "\r\n");
    HASNT(m, "ppppp");
    free(part);
    free(m);

    /* exactly at the bound: everything fits, nothing is said */
    memset(h, 0, sizeof h);
    memcpy(h, "Subject: ", 9);
    memset(h + 9, 'q', DSN_HEADERS_MAX - 11);
    strcpy(h + DSN_HEADERS_MAX - 2, "\r\n\r\nbody\r\n");
    m = notice_about(h, DSN_CONTENT_HEADERS, ADDR_RET_NONE);
    u = unfold(m);
    HASNT(u, "Only the first");
    HAS(u, "\r\nSubject: qqqq");
    free(u);
    free(m);
}
END_TEST

/* NdrContent=full: the whole original as message/rfc822, unless the sender
 * said RET=HDRS. */
START_TEST(test_full_content)
{
    static const char msg[] = "Subject: a\r\nX-Trap: b\r\n\r\nbody line\n--=_imsvc-dsn_Q42_0\r\n"
                              ".dot\r\nlast";
    char *m = notice_about(msg, DSN_CONTENT_FULL, ADDR_RET_NONE);
    HAS(m, "boundary=\"=_imsvc-dsn_Q42_1\"");
    HASNT(m, "text/rfc822-headers");
    char *part = original_part(m, "message/rfc822");
    ck_assert_str_eq(part, "Subject: a\r\nX-Trap: b\r\n\r\nbody line\r\n--=_imsvc-dsn_Q42_0\r\n"
                           ".dot\r\nlast\r\n\r\n");
    free(part);
    free(m);

    m = notice_about(msg, DSN_CONTENT_FULL, ADDR_RET_HDRS);
    HASNT(m, "message/rfc822");
    HASNT(m, "body line");
    part = original_part(m, "text/rfc822-headers");
    ck_assert_str_eq(part, "Subject: a\r\nX-Trap: b\r\n\r\n");
    free(part);
    free(m);

    /* a body line of 998 octets is legal and stays whole; a longer one folds */
    static char big[3000];
    strcpy(big, "Subject: a\r\n\r\n");
    size_t o = strlen(big);
    memset(big + o, 'a', 998);
    o += 998;
    memcpy(big + o, "\r\n", 2);
    o += 2;
    memset(big + o, 'b', 1200);
    o += 1200;
    strcpy(big + o, "\r\n");
    m = notice_about(big, DSN_CONTENT_FULL, ADDR_RET_NONE);   /* compose checks 998 */
    part = original_part(m, "message/rfc822");
    ck_assert_uint_eq(strspn(part + 14, "a"), 998);
    ck_assert(memcmp(part + 14 + 998, "\r\nbbbb", 6) == 0);
    free(part);
    free(m);
}
END_TEST

static const struct {
    const char *status;
    const char *starts;
} sentence_cases[] = {
    { "5.6.3", "The message is signed and contains 8-bit data" },
    { "4.6.3", "The message needed a conversion" },
    { "5.1.1", "The recipient's mailbox does not exist" },
    { "4.2.2", "The recipient's mailbox is full." },
    { "5.4.7", "The message could not be delivered before its delivery time expired." },
    { "5.7.10", "The destination requires encryption" },
    { "5.9.9", "The destination rejected the message permanently." },
    { "4.9.9", "The destination could not accept the message for the time being." },
    { "", "The destination rejected the message permanently." },
};

START_TEST(test_sentences)
{
    const char *s = dsn_sentence(sentence_cases[_i].status);
    ck_assert_int_eq(strncmp(s, sentence_cases[_i].starts, strlen(sentence_cases[_i].starts)), 0);
    ck_assert_ptr_nonnull(dsn_sentence(NULL));
}
END_TEST

Suite *dsn_suite(void)
{
    Suite *s = suite_create("dsn");
    TCase *tc = tcase_create("rfc3464");
    tcase_add_test(tc, test_failure_structure);
    tcase_add_test(tc, test_delay);
    tcase_add_test(tc, test_no_notice);
    tcase_add_test(tc, test_hostile_reply);
    tcase_add_test(tc, test_boundary_avoids_headers);
    tcase_add_test(tc, test_bad_status_long_header);
    tcase_add_test(tc, test_headers_only_never_content);
    tcase_add_test(tc, test_headers_bounded);
    tcase_add_test(tc, test_full_content);
    tcase_add_loop_test(tc, test_sentences, 0, (int)(sizeof sentence_cases / sizeof sentence_cases[0]));
    suite_add_tcase(s, tc);
    return s;
}
