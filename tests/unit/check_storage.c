/* check_storage.c - the reply to a failed store (452 4.3.1 for a full disk,
 * 451 4.3.0 otherwise, as the SMTP engine sends them) and the watch that
 * reports a full disk once and its end once. */
#include <check.h>
#include <string.h>

#include "smtpd.h"
#include "storage.h"

START_TEST(full_disk_errors_are_452_4_3_1)
{
    static const unsigned long full[] = { 112u /* ERROR_DISK_FULL */,
                                          39u /* ERROR_HANDLE_DISK_FULL */,
                                          1295u /* ERROR_DISK_QUOTA_EXCEEDED */ };
    for (size_t i = 0; i < sizeof full / sizeof full[0]; i++) {
        struct storage_reply r;
        ck_assert(storage_is_full(full[i]));
        storage_reply(full[i], &r);
        ck_assert_int_eq(r.code, 452);
        ck_assert_str_eq(r.status, "4.3.1");
        ck_assert_int_eq(r.full, 1);
        ck_assert_ptr_nonnull(strstr(r.text, "storage"));
    }
}
END_TEST

START_TEST(other_errors_are_451_4_3_0)
{
    static const unsigned long other[] = { 0u, 5u /* ACCESS_DENIED */, 8u /* NOT_ENOUGH_MEMORY */,
                                           29u /* WRITE_FAULT */, 38u /* HANDLE_EOF */,
                                           122u /* INSUFFICIENT_BUFFER */, 1816u /* NOT_ENOUGH_QUOTA */,
                                           28u /* ENOSPC's number is no Win32 full disk */ };
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
        struct storage_reply r;
        ck_assert(!storage_is_full(other[i]));
        storage_reply(other[i], &r);
        ck_assert_int_eq(r.code, 451);
        ck_assert_str_eq(r.status, "4.3.0");
        ck_assert_int_eq(r.full, 0);
    }
}
END_TEST

/* The reply as the client sees it, through the SMTP engine: a session that
 * reached the end of DATA and was refused for each error. */
static void reply_for(unsigned long err, char *out, size_t cap)
{
    struct smtpd_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.hostname = "mx.example";
    struct domain_list local;
    ck_assert_int_eq(domains_parse(&local, "example.org", NULL, 0), 0);
    cfg.local_domains = &local;
    struct smtpd *s = smtpd_new(&cfg, "192.0.2.7", 0);
    ck_assert_ptr_nonnull(s);
    const char *conv = "EHLO client.example\r\nMAIL FROM:<a@example.net>\r\n"
                       "RCPT TO:<b@example.org>\r\nDATA\r\nSubject: x\r\n\r\nbody\r\n.\r\n";
    ck_assert_uint_eq(smtpd_feed(s, conv, strlen(conv)), strlen(conv));
    struct smtpd_event ev;
    int stored = 0;
    enum smtpd_event_type t;
    for (int guard = 0; guard < 100 && (t = smtpd_next(s, &ev)) != SMTPD_EV_NONE; guard++) {
        if (t == SMTPD_EV_MESSAGE) {
            struct storage_reply r;
            storage_reply(err, &r);
            ck_assert_int_eq(smtpd_message_refused(s, r.code, r.status, r.text), 0);
            stored = 1;
        }
    }
    ck_assert(stored);
    size_t len;
    const unsigned char *o = smtpd_output(s, &len);
    /* The last line is the reply to the message. */
    ck_assert_uint_gt(len, 2);
    size_t start = len - 2;
    while (start > 0 && o[start - 1] != '\n')
        start--;
    ck_assert_uint_lt(len - start, cap);
    memcpy(out, o + start, len - start);
    out[len - start] = 0;
    smtpd_free(s);
    domains_free(&local);
}

START_TEST(engine_sends_the_mapped_reply)
{
    char line[256];
    reply_for(112u, line, sizeof line);
    ck_assert_str_eq(line, "452 4.3.1 Insufficient system storage: the mail system is full; "
                           "try again later\r\n");
    reply_for(5u, line, sizeof line);
    ck_assert_str_eq(line, "451 4.3.0 Error: cannot store the message now; try again later\r\n");
}
END_TEST

/* A run of failures is one report, a success too soon after the last
 * failure ends nothing, the first success after the quiet time ends it with
 * the counts, and the next failure begins a new report. */
START_TEST(watch_reports_once_and_ends_once)
{
    struct storage_watch w;
    memset(&w, 0, sizeof w);
    ck_assert_int_eq(storage_stored(&w, 100), STORAGE_NONE);
    ck_assert_int_eq(storage_failed(&w, 5u, 1, 100), STORAGE_NONE); /* not a full disk */
    ck_assert(!w.full);
    ck_assert_int_eq(storage_failed(&w, 112u, 1, 101), STORAGE_BEGAN);
    ck_assert(w.full);
    ck_assert_uint_eq(w.error, 112u);
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(storage_failed(&w, i % 2 ? 112u : 39u, i % 3 != 0, 101 + i / 100),
                         STORAGE_NONE);
    ck_assert_uint_eq(w.failures, 1001);
    ck_assert_uint_eq(w.messages, 1 + 666);
    ck_assert_int_eq(w.last_failure, 110);
    /* At the edge: stores succeed between failures; still one condition. */
    ck_assert_int_eq(storage_stored(&w, 111), STORAGE_NONE);
    ck_assert_int_eq(storage_failed(&w, 112u, 1, 115), STORAGE_NONE);
    ck_assert_int_eq(storage_stored(&w, 115 + STORAGE_CLEAR_SECS - 1), STORAGE_NONE);
    ck_assert(w.full);
    ck_assert_int_eq(storage_stored(&w, 115 + STORAGE_CLEAR_SECS), STORAGE_ENDED);
    ck_assert(!w.full);
    ck_assert_uint_eq(w.messages, 1 + 666 + 1);
    ck_assert_int_eq(w.since, 101);
    ck_assert_int_eq(storage_stored(&w, 200), STORAGE_NONE);
    /* Full again later: a new report, counts from zero. */
    ck_assert_int_eq(storage_failed(&w, 1295u, 0, 300), STORAGE_BEGAN);
    ck_assert_uint_eq(w.messages, 0);
    ck_assert_uint_eq(w.failures, 1);
    ck_assert_int_eq(w.since, 300);
    /* A clock that goes back does not end it early. */
    ck_assert_int_eq(storage_stored(&w, 50), STORAGE_NONE);
    ck_assert(w.full);
}
END_TEST

Suite *storage_suite(void)
{
    Suite *s = suite_create("storage");
    TCase *tc = tcase_create("reply");
    tcase_add_test(tc, full_disk_errors_are_452_4_3_1);
    tcase_add_test(tc, other_errors_are_451_4_3_0);
    tcase_add_test(tc, engine_sends_the_mapped_reply);
    tcase_add_test(tc, watch_reports_once_and_ends_once);
    suite_add_tcase(s, tc);
    return s;
}
