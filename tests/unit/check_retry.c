/* check_retry.c - the retry schedule and the transient/permanent split, by table. */
#include <check.h>
#include <string.h>

#include "retry.h"

#define T0 1795440000LL   /* arrival */
#define MIN 60LL
#define HR (60LL * MIN)

/* retry_next with the defaults: failure number -> wait. */
static const struct { unsigned failures; int64_t wait; } next_cases[] = {
    { 0, 0 }, { 1, 15 * MIN }, { 2, 30 * MIN }, { 3, 60 * MIN },
    { 4, 240 * MIN }, { 5, 240 * MIN }, { 40, 240 * MIN },
};

START_TEST(test_next_defaults)
{
    struct retry_policy p;
    retry_defaults(&p);
    ck_assert_int_eq(retry_policy_valid(&p), 1);
    ck_assert_int_eq(retry_next(&p, next_cases[_i].failures, T0), T0 + next_cases[_i].wait);
}
END_TEST

/* arrived T0; at time now: expired? delay notice due (not yet sent / sent)? */
static const struct { int64_t at; int expired; int due; } time_cases[] = {
    { 0, 0, 0 },
    { 12 * HR - 1, 0, 0 },
    { 12 * HR, 0, 1 },
    { 30 * HR, 0, 1 },
    { 48 * HR - 1, 0, 1 },
    { 48 * HR, 1, 0 },
    { 100 * HR, 1, 0 },
};

START_TEST(test_times_defaults)
{
    struct retry_policy p;
    retry_defaults(&p);
    int64_t now = T0 + time_cases[_i].at;
    ck_assert_int_eq(retry_expired(&p, T0, now), time_cases[_i].expired);
    ck_assert_int_eq(retry_delay_due(&p, T0, now, 0), time_cases[_i].due);
    ck_assert_int_eq(retry_delay_due(&p, T0, now, 1), 0);
}
END_TEST

START_TEST(test_configured)
{
    struct retry_policy p;
    memset(&p, 0, sizeof p);
    p.first[0] = 5;
    p.n_first = 1;
    p.every = 7;
    p.delay_notice = 0;
    p.expire = 60;
    ck_assert_int_eq(retry_policy_valid(&p), 1);
    ck_assert_int_eq(retry_next(&p, 1, 100), 105);
    ck_assert_int_eq(retry_next(&p, 2, 100), 107);
    ck_assert_int_eq(retry_delay_due(&p, 100, 159, 0), 0);   /* never */
    ck_assert_int_eq(retry_expired(&p, 100, 160), 1);
    p.every = 0;
    ck_assert_int_eq(retry_policy_valid(&p), 0);
    p.every = 1;
    p.n_first = RETRY_STEPS_MAX + 1;
    ck_assert_int_eq(retry_policy_valid(&p), 0);
}
END_TEST

static const struct {
    int code;
    enum retry_class cls;
} reply_cases[] = {
    { 250, RETRY_DELIVERED }, { 251, RETRY_DELIVERED },
    { 421, RETRY_TRANSIENT }, { 450, RETRY_TRANSIENT }, { 452, RETRY_TRANSIENT },
    { 550, RETRY_PERMANENT }, { 552, RETRY_PERMANENT }, { 554, RETRY_PERMANENT },
    { 0, RETRY_TRANSIENT }, { 354, RETRY_TRANSIENT }, { 600, RETRY_TRANSIENT },
};

START_TEST(test_classify_reply)
{
    ck_assert_int_eq(retry_classify_reply(reply_cases[_i].code), reply_cases[_i].cls);
}
END_TEST

static const struct {
    enum smtpc_outcome outcome;
    enum smtpc_reason reason;
    int code;
    enum retry_class cls;
} result_cases[] = {
    { SMTPC_OK, SMTPC_R_REPLY, 250, RETRY_DELIVERED },
    { SMTPC_TRANSIENT, SMTPC_R_REPLY, 451, RETRY_TRANSIENT },
    { SMTPC_PERMANENT, SMTPC_R_REPLY, 550, RETRY_PERMANENT },
    { SMTPC_TRANSIENT, SMTPC_R_CONNECTION_LOST, 0, RETRY_TRANSIENT },
    { SMTPC_TRANSIENT, SMTPC_R_TIMEOUT, 0, RETRY_TRANSIENT },
    { SMTPC_TRANSIENT, SMTPC_R_TLS_FAILED, 0, RETRY_TRANSIENT },
    { SMTPC_TRANSIENT, SMTPC_R_TLS_NOT_OFFERED, 0, RETRY_TRANSIENT },
    { SMTPC_PERMANENT, SMTPC_R_TLS_NOT_OFFERED, 0, RETRY_PERMANENT },   /* configured so */
    { SMTPC_PERMANENT, SMTPC_R_TLS_REFUSED, 554, RETRY_PERMANENT },
    { SMTPC_TRANSIENT, SMTPC_R_TLS_REFUSED, 454, RETRY_TRANSIENT },
    { SMTPC_PERMANENT, SMTPC_R_AUTH_NOT_OFFERED, 0, RETRY_PERMANENT },
    { SMTPC_PERMANENT, SMTPC_R_AUTH_REFUSED, 535, RETRY_PERMANENT },
    { SMTPC_TRANSIENT, SMTPC_R_AUTH_LOCAL, 0, RETRY_TRANSIENT },
    { SMTPC_PERMANENT, SMTPC_R_8BIT_UNSUPPORTED, 0, RETRY_PERMANENT },
    { SMTPC_PERMANENT, SMTPC_R_SIZE, 0, RETRY_PERMANENT },
    { SMTPC_PERMANENT, SMTPC_R_BAD_ADDRESS, 0, RETRY_PERMANENT },
    { SMTPC_TRANSIENT, SMTPC_R_MALFORMED, 0, RETRY_TRANSIENT },
    { SMTPC_PERMANENT, SMTPC_R_NO_RECIPIENT, 550, RETRY_PERMANENT },
    { SMTPC_PENDING, SMTPC_R_NONE, 0, RETRY_TRANSIENT },
};

START_TEST(test_classify_result)
{
    struct smtpc_result r;
    memset(&r, 0, sizeof r);
    r.outcome = result_cases[_i].outcome;
    r.reason = result_cases[_i].reason;
    r.reply.code = result_cases[_i].code;
    ck_assert_int_eq(retry_classify(&r), result_cases[_i].cls);
}
END_TEST

static void result(struct smtpc_result *r, enum smtpc_outcome o, enum smtpc_reason why,
                   int code, const char *status, const char *text, const char *sentence)
{
    memset(r, 0, sizeof *r);
    r->outcome = o;
    r->reason = why;
    r->reply.code = code;
    strcpy(r->status, status);
    strcpy(r->reply.status, status);
    strcpy(r->reply.text, text);
    strcpy(r->why, sentence);
}

/* A recipient that keeps failing transiently walks the schedule and expires;
 * a permanent failure bounces on the first attempt. */
START_TEST(test_record_walk)
{
    struct retry_policy p;
    struct env_rcpt rc;
    struct smtpc_result busy, gone, ok;
    retry_defaults(&p);
    result(&busy, SMTPC_TRANSIENT, SMTPC_R_REPLY, 451, "4.3.0", "451 4.3.0 try later",
           "The server asked us to try later.");
    result(&gone, SMTPC_PERMANENT, SMTPC_R_REPLY, 550, "5.1.1", "550 5.1.1 no such user",
           "The mailbox does not exist.");
    result(&ok, SMTPC_OK, SMTPC_R_REPLY, 250, "2.0.0", "250 2.0.0 ok", "");

    memset(&rc, 0, sizeof rc);
    int64_t now = T0;
    static const int64_t waits[] = { 15 * MIN, 30 * MIN, 60 * MIN, 240 * MIN, 240 * MIN };
    for (size_t i = 0; i < sizeof waits / sizeof waits[0]; i++) {
        ck_assert_int_eq(retry_record(&p, &rc, &busy, "mx.example.net", T0, now), RETRY_TRANSIENT);
        ck_assert_int_eq(rc.state, ENV_DEFERRED);
        ck_assert_uint_eq(rc.attempts, i + 1);
        ck_assert_int_eq(rc.first_failure, T0);
        ck_assert_int_eq(rc.next_attempt, now + waits[i]);
        now = rc.next_attempt;
    }
    ck_assert_str_eq(rc.status, "4.3.0");
    ck_assert_str_eq(rc.remote, "mx.example.net");
    ck_assert_str_eq(rc.reply, "451 4.3.0 try later");

    /* the last retry is pulled in to the expiry time, then the failure there ends it */
    now = T0 + 47 * HR;
    ck_assert_int_eq(retry_record(&p, &rc, &busy, "mx.example.net", T0, now), RETRY_TRANSIENT);
    ck_assert_int_eq(rc.next_attempt, T0 + 48 * HR);
    ck_assert_int_eq(retry_record(&p, &rc, &busy, "mx.example.net", T0, rc.next_attempt), RETRY_PERMANENT);
    ck_assert_int_eq(rc.state, ENV_FAILED);
    ck_assert_str_eq(rc.status, "4.3.0");
    ck_assert_ptr_nonnull(strstr(rc.why, "given up after 7 attempts over 48 hours"));
    ck_assert_ptr_nonnull(strstr(rc.why, "The server asked us to try later."));
    ck_assert_int_eq(env_rcpt_outstanding(&rc), 0);

    memset(&rc, 0, sizeof rc);
    ck_assert_int_eq(retry_record(&p, &rc, &gone, "mx.example.net", T0, T0 + 1), RETRY_PERMANENT);
    ck_assert_int_eq(rc.state, ENV_FAILED);
    ck_assert_uint_eq(rc.attempts, 1);
    ck_assert_str_eq(rc.status, "5.1.1");
    ck_assert_str_eq(rc.why, "The mailbox does not exist.");

    memset(&rc, 0, sizeof rc);
    ck_assert_int_eq(retry_record(&p, &rc, &busy, NULL, T0, T0), RETRY_TRANSIENT);
    ck_assert_int_eq(retry_record(&p, &rc, &ok, "mx.example.net", T0, T0 + 15 * MIN), RETRY_DELIVERED);
    ck_assert_int_eq(rc.state, ENV_DELIVERED);
    ck_assert_int_eq(rc.next_attempt, 0);

    /* a connection lost with no status of its own is still recorded as 4.x.x */
    struct smtpc_result lost;
    result(&lost, SMTPC_TRANSIENT, SMTPC_R_CONNECTION_LOST, 0, "", "", "The connection was lost.");
    memset(&rc, 0, sizeof rc);
    ck_assert_int_eq(retry_record(&p, &rc, &lost, "mx.example.net", T0, T0), RETRY_TRANSIENT);
    ck_assert_str_eq(rc.status, "4.0.0");
    ck_assert_str_eq(rc.reply, "");
}
END_TEST

Suite *retry_suite(void)
{
    Suite *s = suite_create("retry");
    TCase *tc = tcase_create("schedule");
    tcase_add_loop_test(tc, test_next_defaults, 0, (int)(sizeof next_cases / sizeof next_cases[0]));
    tcase_add_loop_test(tc, test_times_defaults, 0, (int)(sizeof time_cases / sizeof time_cases[0]));
    tcase_add_test(tc, test_configured);
    tcase_add_loop_test(tc, test_classify_reply, 0, (int)(sizeof reply_cases / sizeof reply_cases[0]));
    tcase_add_loop_test(tc, test_classify_result, 0, (int)(sizeof result_cases / sizeof result_cases[0]));
    tcase_add_test(tc, test_record_walk);
    suite_add_tcase(s, tc);
    return s;
}
