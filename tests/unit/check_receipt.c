/* check_receipt.c - the decisions of the one way into the queue: each
 * source's Received field, the hop and size count over what is written, and
 * what each outcome means for each source (reply, fate, events). The SMTP
 * answers are checked against the engine's own replies, so the two cannot
 * drift apart. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "domains.h"
#include "receipt.h"
#include "smtpd.h"

/* LocalDomains "example.org", parsed once for the suite */
static const struct domain_list *local(void)
{
    static struct domain_list l;
    if (l.n == 0)
        ck_assert_int_eq(domains_parse(&l, "example.org", NULL, 0), 0);
    return &l;
}

static struct smtpd *session_at_data(const char *extra)
{
    struct smtpd_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.hostname = "mx.example";
    cfg.local_domains = local();
    struct smtpd *s = smtpd_new(&cfg, "192.0.2.7", 0);
    ck_assert_ptr_nonnull(s);
    char conv[512];
    int n = snprintf(conv, sizeof conv, "EHLO client.example\r\nMAIL FROM:<a@example.net>\r\n"
                     "RCPT TO:<b@example.org>\r\nDATA\r\n%s", extra ? extra : "");
    ck_assert(n > 0 && (size_t)n < sizeof conv);
    ck_assert_uint_eq(smtpd_feed(s, conv, (size_t)n), (size_t)n);
    struct smtpd_event ev;
    int begun = 0;
    for (int guard = 0; guard < 50 && smtpd_next(s, &ev) != SMTPD_EV_NONE; guard++)
        if (ev.type == SMTPD_EV_DATA_BEGIN)
            begun = 1;
    ck_assert(begun);
    return s;
}

START_TEST(smtp_received_is_the_engines)
{
    struct smtpd *s = session_at_data(NULL);
    char want[2048], got[2048];
    int wn = smtpd_received(s, "Q1", "Wed, 2 Dec 2026 02:00:00 +0000", want, sizeof want);
    ck_assert_int_gt(wn, 0);
    int gn = receipt_received(RECEIPT_SMTP, s, "ignored.example", "Q1",
                              "Wed, 2 Dec 2026 02:00:00 +0000", got, sizeof got);
    ck_assert_int_eq(gn, wn);
    ck_assert_str_eq(got, want);
    ck_assert_ptr_nonnull(strstr(got, "from client.example ([192.0.2.7])"));
    ck_assert_ptr_nonnull(strstr(got, "by mx.example with ESMTP id Q1"));
    /* without its engine an SMTP field cannot be made */
    ck_assert_int_eq(receipt_received(RECEIPT_SMTP, NULL, "mx.example", "Q1", "d", got,
                                      sizeof got), -1);
    ck_assert_str_eq(got, "");
    smtpd_free(s);
}
END_TEST

START_TEST(pickup_received_keeps_its_form)
{
    char got[512];
    int n = receipt_received(RECEIPT_PICKUP, NULL, "mx.example", "ABC.1",
                             "Wed, 2 Dec 2026 02:00:00 +0000", got, sizeof got);
    const char *want = "Received: from pickup directory by mx.example with imsvc\r\n"
                       "\tid ABC.1; Wed, 2 Dec 2026 02:00:00 +0000\r\n";
    ck_assert_str_eq(got, want);
    ck_assert_int_eq(n, (int)strlen(want));
    /* one octet short: nothing half written */
    ck_assert_int_eq(receipt_received(RECEIPT_PICKUP, NULL, "mx.example", "ABC.1",
                                      "Wed, 2 Dec 2026 02:00:00 +0000", got, strlen(want)),
                     -1);
    ck_assert_str_eq(got, "");
}
END_TEST

START_TEST(notice_has_no_received)
{
    char got[64] = "x";
    ck_assert_int_eq(receipt_received(RECEIPT_NOTICE, NULL, "mx.example", "N1", "d", got,
                                      sizeof got), 0);
    ck_assert_str_eq(got, "");
}
END_TEST

static void feed_str(struct receipt_count *c, const char *s, int bytewise)
{
    if (!bytewise) {
        receipt_count_feed(c, s, strlen(s));
        return;
    }
    for (const char *p = s; *p; p++)
        receipt_count_feed(c, p, 1);
}

START_TEST(hops_are_received_fields_of_the_header)
{
    const char *m = "Received: from a\r\n\tby b; date\r\nRECEIVED: from c\r\n"
                    "received:x\nX-Received: no\r\nReceived-SPF: pass\r\nReceived no colon\r\n"
                    "Subject: hi\r\n\r\nReceived: in the body\r\n";
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        struct receipt_count c;
        receipt_count_init(&c);
        feed_str(&c, m, bytewise);
        ck_assert_uint_eq(c.hops, 3);
        ck_assert_uint_eq(c.octets, strlen(m));
        ck_assert(c.body);
    }
}
END_TEST

START_TEST(limits_apply_per_source)
{
    struct receipt_count c;
    receipt_count_init(&c);
    for (unsigned i = 0; i < RECEIPT_MAX_HOPS; i++)
        feed_str(&c, "Received: from x by y; d\r\n", 0);
    ck_assert_int_eq(receipt_check(RECEIPT_SMTP, &c, 0, 0), RECEIPT_QUEUED);
    feed_str(&c, "Received: one too many\r\n", 0);
    ck_assert_int_eq(receipt_check(RECEIPT_SMTP, &c, 0, 0), RECEIPT_LOOP);
    /* MaxHops: a configured limit, above or below the default */
    ck_assert_int_eq(receipt_check(RECEIPT_SMTP, &c, 0, RECEIPT_MAX_HOPS + 1), RECEIPT_QUEUED);
    ck_assert_int_eq(receipt_check(RECEIPT_PICKUP, &c, 0, RECEIPT_MAX_HOPS), RECEIPT_LOOP);
    struct receipt_count three;
    receipt_count_init(&three);
    for (unsigned i = 0; i < 4; i++)
        feed_str(&three, "Received: from x by y; d\r\n", 0);
    ck_assert_int_eq(receipt_check(RECEIPT_PICKUP, &three, 0, 4), RECEIPT_QUEUED);
    ck_assert_int_eq(receipt_check(RECEIPT_PICKUP, &three, 0, 3), RECEIPT_LOOP);
    struct receipt_answer la;
    receipt_answer(RECEIPT_PICKUP, RECEIPT_LOOP, 3, NULL, &la);
    ck_assert_str_eq(la.text, "too many hops (more than 3 Received header fields): a mail loop");
    receipt_answer(RECEIPT_SMTP, RECEIPT_LOOP, 0, NULL, &la);
    ck_assert_str_eq(la.text, "Error: too many hops (more than 50 Received header fields): a mail loop");
    /* size: above the limit only; 0 is no limit */
    struct receipt_count z;
    receipt_count_init(&z);
    feed_str(&z, "Subject: s\r\n\r\n0123456789", 0);
    ck_assert_int_eq(receipt_check(RECEIPT_SMTP, &z, z.octets, 0), RECEIPT_QUEUED);
    ck_assert_int_eq(receipt_check(RECEIPT_SMTP, &z, z.octets - 1, 0), RECEIPT_TOO_BIG);
    ck_assert_int_eq(receipt_check(RECEIPT_SMTP, &z, 0, 0), RECEIPT_QUEUED);
    ck_assert_int_eq(receipt_check(RECEIPT_PICKUP, &z, z.octets - 1, 0), RECEIPT_TOO_BIG);
    /* a notice is never refused for its size: refusing it leaves the sender untold */
    ck_assert_int_eq(receipt_check(RECEIPT_NOTICE, &z, 1, 0), RECEIPT_QUEUED);
    struct receipt_policy p;
    receipt_policy(RECEIPT_NOTICE, &p);
    ck_assert(!p.filtered && !p.headers_rewritten);
    receipt_policy(RECEIPT_SMTP, &p);
    ck_assert(p.filtered && p.size_limited && p.hop_limited && !p.retried && p.headers_rewritten);
    receipt_policy(RECEIPT_PICKUP, &p);
    ck_assert(p.filtered && p.size_limited && p.retried && p.headers_rewritten);
}
END_TEST

/* The last reply line the engine sent. */
static void last_reply(struct smtpd *s, char *out, size_t cap)
{
    size_t len;
    const unsigned char *o = smtpd_output(s, &len);
    ck_assert_uint_gt(len, 2);
    size_t start = len - 2;
    while (start > 0 && o[start - 1] != '\n')
        start--;
    ck_assert_uint_lt(len - start, cap);
    memcpy(out, o + start, len - start);
    out[len - start] = 0;
}

/* The engine refuses a loop while the data streams in: the receive module's
 * answer for the same outcome is the same reply. */
START_TEST(smtp_loop_answer_is_the_engines_reply)
{
    char m[8192];
    size_t o = 0;
    for (unsigned i = 0; i <= RECEIPT_MAX_HOPS; i++)
        o += (size_t)snprintf(m + o, sizeof m - o, "Received: from h%u\r\n", i);
    o += (size_t)snprintf(m + o, sizeof m - o, "\r\nbody\r\n.\r\n");
    ck_assert_uint_lt(o, sizeof m);
    struct smtpd *s = session_at_data(NULL);
    ck_assert_uint_eq(smtpd_feed(s, m, o), o);
    struct smtpd_event ev;
    int rejected = 0;
    for (int guard = 0; guard < 100 && smtpd_next(s, &ev) != SMTPD_EV_NONE; guard++)
        if (ev.type == SMTPD_EV_MESSAGE_REJECTED)
            rejected = 1;
    ck_assert(rejected);
    char line[512], want[600];
    last_reply(s, line, sizeof line);
    struct receipt_answer a;
    receipt_answer(RECEIPT_SMTP, RECEIPT_LOOP, 0, NULL, &a);
    snprintf(want, sizeof want, "%d %s %s\r\n", a.code, a.status, a.text);
    ck_assert_str_eq(line, want);
    ck_assert_int_eq(a.fate, RECEIPT_FATE_REFUSED);
    smtpd_free(s);
}
END_TEST

/* Every SMTP answer goes to the engine as a refusal or a 250 and reads as
 * the reply a client sees. */
START_TEST(smtp_answers)
{
    struct receipt_answer a;
    receipt_answer(RECEIPT_SMTP, RECEIPT_QUEUED, 0, NULL, &a);
    ck_assert_int_eq(a.fate, RECEIPT_FATE_TAKEN);
    ck_assert_uint_eq(a.events, 0);
    receipt_answer(RECEIPT_SMTP, RECEIPT_HELD, 0, "held for review", &a);
    ck_assert_int_eq(a.fate, RECEIPT_FATE_TAKEN);
    ck_assert_uint_eq(a.events, RECEIPT_EV_HELD);
    receipt_answer(RECEIPT_SMTP, RECEIPT_REJECTED, 0, "no\r\nthanks\x01", &a);
    ck_assert_int_eq(a.fate, RECEIPT_FATE_REFUSED);
    ck_assert_int_eq(a.code, 554);
    ck_assert_str_eq(a.status, "5.7.1");
    ck_assert_str_eq(a.text, "no??thanks?");   /* a reason never breaks the reply line */
    receipt_answer(RECEIPT_SMTP, RECEIPT_FILTER_FAILED, 0, "exit status 7", &a);
    ck_assert_int_eq(a.fate, RECEIPT_FATE_RETRY);
    ck_assert_int_eq(a.code, 451);
    ck_assert_str_eq(a.status, "4.3.0");
    ck_assert_str_eq(a.text, "the content filter failed; try again later");
    ck_assert_uint_eq(a.events, RECEIPT_EV_FILTER_FAILED);
    receipt_answer(RECEIPT_SMTP, RECEIPT_TOO_BIG, 0, NULL, &a);
    ck_assert_int_eq(a.code, 552);
    ck_assert_str_eq(a.status, "5.3.4");
    /* a full disk: 452 4.3.1, reported once by the spool, not per message */
    receipt_answer(RECEIPT_SMTP, RECEIPT_STORE_FAILED, 112u, NULL, &a);
    ck_assert_int_eq(a.fate, RECEIPT_FATE_RETRY);
    ck_assert_int_eq(a.code, 452);
    ck_assert_str_eq(a.status, "4.3.1");
    ck_assert_uint_eq(a.events, 0);
    receipt_answer(RECEIPT_SMTP, RECEIPT_STORE_FAILED, 5u, NULL, &a);
    ck_assert_int_eq(a.code, 451);
    ck_assert_str_eq(a.status, "4.3.0");
    ck_assert_str_eq(a.text, "Error: cannot store the message now; try again later");
    ck_assert_uint_eq(a.events, RECEIPT_EV_STORE_FAILED);
}
END_TEST

START_TEST(pickup_answers)
{
    struct receipt_answer a;
    receipt_answer(RECEIPT_PICKUP, RECEIPT_QUEUED, 0, NULL, &a);
    ck_assert_int_eq(a.fate, RECEIPT_FATE_TAKEN);
    receipt_answer(RECEIPT_PICKUP, RECEIPT_REJECTED, 0, "spam", &a);
    ck_assert_int_eq(a.fate, RECEIPT_FATE_REFUSED);
    ck_assert_str_eq(a.text, "rejected by the content filter: spam");
    receipt_answer(RECEIPT_PICKUP, RECEIPT_TOO_BIG, 0, NULL, &a);
    ck_assert_int_eq(a.fate, RECEIPT_FATE_REFUSED);
    ck_assert_str_eq(a.text, "the file is larger than MaxMessageKB");
    /* the file stays for the next scan; the events are SMTP's */
    receipt_answer(RECEIPT_PICKUP, RECEIPT_FILTER_FAILED, 0, NULL, &a);
    ck_assert_int_eq(a.fate, RECEIPT_FATE_RETRY);
    ck_assert_uint_eq(a.events, RECEIPT_EV_FILTER_FAILED);
    receipt_answer(RECEIPT_PICKUP, RECEIPT_HELD, 0, "review", &a);
    ck_assert_int_eq(a.fate, RECEIPT_FATE_TAKEN);
    ck_assert_uint_eq(a.events, RECEIPT_EV_HELD);
    receipt_answer(RECEIPT_PICKUP, RECEIPT_STORE_FAILED, 5u, NULL, &a);
    ck_assert_int_eq(a.fate, RECEIPT_FATE_RETRY);
    ck_assert_uint_eq(a.events, RECEIPT_EV_STORE_FAILED);
    receipt_answer(RECEIPT_PICKUP, RECEIPT_LOOP, 0, NULL, &a);
    ck_assert_int_eq(a.fate, RECEIPT_FATE_REFUSED);
    ck_assert_str_eq(a.text, "too many hops (more than 50 Received header fields): a mail loop");
}

/* Every source reports a hold and a failed filter the same way (a pickup
 * file reported neither before). */
START_TEST(events_are_the_same_for_every_source)
{
    static const enum receipt_outcome outcomes[] = {
        RECEIPT_QUEUED, RECEIPT_HELD, RECEIPT_REJECTED, RECEIPT_FILTER_FAILED,
        RECEIPT_TOO_BIG, RECEIPT_LOOP, RECEIPT_STORE_FAILED };
    static const unsigned long errs[] = { 5u, 112u };
    for (size_t i = 0; i < sizeof outcomes / sizeof outcomes[0]; i++) {
        for (size_t e = 0; e < 2; e++) {
            struct receipt_answer smtp, pickup, notice;
            receipt_answer(RECEIPT_SMTP, outcomes[i], errs[e], "r", &smtp);
            receipt_answer(RECEIPT_PICKUP, outcomes[i], errs[e], "r", &pickup);
            receipt_answer(RECEIPT_NOTICE, outcomes[i], errs[e], "r", &notice);
            ck_assert_uint_eq(smtp.events, pickup.events);
            ck_assert_uint_eq(smtp.events, notice.events);
            ck_assert_int_eq(smtp.fate, pickup.fate);
        }
    }
}
END_TEST

/* A pickup file is held to the hop limit as an SMTP message is. */
START_TEST(pickup_and_notices_count_hops)
{
    struct receipt_count c;
    receipt_count_init(&c);
    for (unsigned i = 0; i <= RECEIPT_MAX_HOPS; i++)
        feed_str(&c, "Received: from x by y; d\r\n", 0);
    feed_str(&c, "\r\nbody\r\n", 0);
    ck_assert_int_eq(receipt_check(RECEIPT_PICKUP, &c, 0, 0), RECEIPT_LOOP);
    ck_assert_int_eq(receipt_check(RECEIPT_NOTICE, &c, 0, 0), RECEIPT_LOOP);
}
END_TEST
END_TEST

Suite *receipt_suite(void)
{
    Suite *s = suite_create("receipt");
    TCase *tc = tcase_create("received");
    tcase_add_test(tc, smtp_received_is_the_engines);
    tcase_add_test(tc, pickup_received_keeps_its_form);
    tcase_add_test(tc, notice_has_no_received);
    suite_add_tcase(s, tc);
    tc = tcase_create("limits");
    tcase_add_test(tc, hops_are_received_fields_of_the_header);
    tcase_add_test(tc, limits_apply_per_source);
    tcase_add_test(tc, smtp_loop_answer_is_the_engines_reply);
    suite_add_tcase(s, tc);
    tc = tcase_create("answers");
    tcase_add_test(tc, smtp_answers);
    tcase_add_test(tc, pickup_answers);
    tcase_add_test(tc, events_are_the_same_for_every_source);
    tcase_add_test(tc, pickup_and_notices_count_hops);
    suite_add_tcase(s, tc);
    return s;
}
