/* check_ctlreq.c - the queue control protocol: request and answer names,
 * what a file in the ctl folder is, and the answer's content. */
#include <check.h>
#include <string.h>

#include "ctlreq.h"

START_TEST(test_names)
{
    char b[CTLREQ_NAME_MAX];
    ck_assert_int_eq(ctlreq_name(CTLREQ_RETRY, "20261202.ab-1_Z", b, sizeof b), 21);
    ck_assert_str_eq(b, "retry.20261202.ab-1_Z");
    ck_assert_int_eq(ctlreq_answer_name(CTLREQ_DELETE, "X1", b, sizeof b), 14);
    ck_assert_str_eq(b, "delete.X1.done");
    /* no name for something that is not a queue ID */
    ck_assert_int_eq(ctlreq_name(CTLREQ_RETRY, "..\\evil", b, sizeof b), -1);
    ck_assert_str_eq(b, "");
    ck_assert_int_eq(ctlreq_name(CTLREQ_RETRY, "", b, sizeof b), -1);
    ck_assert_int_eq(ctlreq_name(CTLREQ_RETRY, "a b", b, sizeof b), -1);
    char id65[66];
    memset(id65, 'A', 65);
    id65[65] = 0;
    ck_assert_int_eq(ctlreq_name(CTLREQ_DELETE, id65, b, sizeof b), -1);
    id65[64] = 0;   /* 64 is the longest ID */
    ck_assert_int_eq(ctlreq_name(CTLREQ_DELETE, id65, b, sizeof b), 71);
    /* a buffer that is too small is never written past */
    char small[8];
    ck_assert_int_eq(ctlreq_name(CTLREQ_RETRY, "ABCDEF", small, sizeof small), -1);
    ck_assert_str_eq(small, "");
}
END_TEST

/* name -> kind, action, id */
static const struct {
    const char *name;
    enum ctlreq_kind kind;
    enum ctlreq_action a;
    const char *id;
} parse_cases[] = {
    { "retry.ABC", CTLREQ_REQUEST, CTLREQ_RETRY, "ABC" },
    { "delete.20261202.x-y_z", CTLREQ_REQUEST, CTLREQ_DELETE, "20261202.x-y_z" },
    { "retry.ABC.done", CTLREQ_ANSWER, 0, "" },
    { "delete.X.done", CTLREQ_ANSWER, 0, "" },
    { "retry.", CTLREQ_BAD_ID, CTLREQ_RETRY, "" },
    { "retry.a b", CTLREQ_BAD_ID, CTLREQ_RETRY, "a b" },
    { "delete.%41", CTLREQ_BAD_ID, CTLREQ_DELETE, "%41" },
    { "RETRY.ABC", CTLREQ_OTHER, 0, "" },      /* actions are lower case, as the command writes them */
    { "retryABC", CTLREQ_OTHER, 0, "" },
    { "hold.ABC", CTLREQ_OTHER, 0, "" },
    { "retr.ABC", CTLREQ_OTHER, 0, "" },
    { "", CTLREQ_OTHER, 0, "" },
    /* flush: every deferred message, or those for one destination */
    { "flush.all", CTLREQ_REQUEST, CTLREQ_FLUSH, "" },
    { "flush.to.example.com", CTLREQ_REQUEST, CTLREQ_FLUSH, "example.com" },
    { "flush.to.[192.0.2.1]", CTLREQ_REQUEST, CTLREQ_FLUSH, "[192.0.2.1]" },
    { "flush.to.all", CTLREQ_REQUEST, CTLREQ_FLUSH, "all" },   /* a host named "all" */
    { "flush.all.done", CTLREQ_ANSWER, 0, "" },
    { "flush.to.example.com.done", CTLREQ_ANSWER, 0, "" },
    { "flush.ABC", CTLREQ_BAD_ID, CTLREQ_FLUSH, "ABC" },      /* neither all nor to. */
    { "flush.to.", CTLREQ_BAD_ID, CTLREQ_FLUSH, "" },
    { "flush.to.a b", CTLREQ_BAD_ID, CTLREQ_FLUSH, "a b" },
    { "flush.to.[2001", CTLREQ_BAD_ID, CTLREQ_FLUSH, "[2001" },
    { "flush.to..hidden", CTLREQ_BAD_ID, CTLREQ_FLUSH, ".hidden" },
    { "FLUSH.all", CTLREQ_OTHER, 0, "" },
};

START_TEST(test_parse)
{
    enum ctlreq_action a = (enum ctlreq_action)99;
    char id[CTLREQ_TARGET_MAX + 1];
    enum ctlreq_kind k = ctlreq_parse(parse_cases[_i].name, &a, id, sizeof id);
    ck_assert_int_eq(k, parse_cases[_i].kind);
    if (k == CTLREQ_REQUEST || k == CTLREQ_BAD_ID)
        ck_assert_int_eq(a, parse_cases[_i].a);
    ck_assert_str_eq(id, parse_cases[_i].id);
}
END_TEST

/* What the command names, the service reads back the same. */
START_TEST(test_round_trip)
{
    char name[CTLREQ_NAME_MAX], id[CTLREQ_TARGET_MAX + 1];
    enum ctlreq_action a;
    ck_assert_int_ge(ctlreq_name(CTLREQ_DELETE, "Q.1", name, sizeof name), 0);
    ck_assert_int_eq(ctlreq_parse(name, &a, id, sizeof id), CTLREQ_REQUEST);
    ck_assert_int_eq(a, CTLREQ_DELETE);
    ck_assert_str_eq(id, "Q.1");
    ck_assert_int_ge(ctlreq_answer_name(CTLREQ_DELETE, "Q.1", name, sizeof name), 0);
    ck_assert_int_eq(ctlreq_parse(name, &a, id, sizeof id), CTLREQ_ANSWER);
}
END_TEST

/* The flush request: names for all and for one destination, which the
 * service reads back; the old actions' names are unchanged by it. */
START_TEST(test_flush_names)
{
    char b[CTLREQ_NAME_MAX], id[CTLREQ_TARGET_MAX + 1];
    enum ctlreq_action a = CTLREQ_RETRY;
    ck_assert_int_eq(ctlreq_name(CTLREQ_FLUSH, "", b, sizeof b), 9);
    ck_assert_str_eq(b, "flush.all");
    ck_assert_int_eq(ctlreq_answer_name(CTLREQ_FLUSH, "", b, sizeof b), 14);
    ck_assert_str_eq(b, "flush.all.done");
    ck_assert_int_eq(ctlreq_name(CTLREQ_FLUSH, "Remote.Example", b, sizeof b), 23);
    ck_assert_str_eq(b, "flush.to.Remote.Example");
    ck_assert_int_eq(ctlreq_parse(b, &a, id, sizeof id), CTLREQ_REQUEST);
    ck_assert_int_eq(a, CTLREQ_FLUSH);
    ck_assert_str_eq(id, "Remote.Example");
    /* no name for what cannot be a destination or a file name */
    ck_assert_int_eq(ctlreq_name(CTLREQ_FLUSH, "..\\evil", b, sizeof b), -1);
    ck_assert_str_eq(b, "");
    ck_assert_int_eq(ctlreq_name(CTLREQ_FLUSH, "[IPv6:2001:db8::1]", b, sizeof b), -1);
    ck_assert_int_eq(ctlreq_name(CTLREQ_FLUSH, NULL, b, sizeof b), -1);
    char longest[CTLREQ_DEST_MAX + 2];
    memset(longest, 'a', sizeof longest);
    longest[CTLREQ_DEST_MAX] = 0;
    ck_assert_int_gt(ctlreq_answer_name(CTLREQ_FLUSH, longest, b, sizeof b), 0);
    longest[CTLREQ_DEST_MAX] = 'a';
    longest[CTLREQ_DEST_MAX + 1] = 0;
    ck_assert_int_eq(ctlreq_name(CTLREQ_FLUSH, longest, b, sizeof b), -1);
    /* an ID is not a FLUSH target's only form, nor a destination a RETRY's */
    ck_assert_int_eq(ctlreq_name(CTLREQ_RETRY, "", b, sizeof b), -1);
    ck_assert_int_eq(ctlreq_name(CTLREQ_RETRY, "[192.0.2.1]", b, sizeof b), -1);
    ck_assert_int_eq(ctlreq_name(CTLREQ_RETRY, "ABC", b, sizeof b), 9);
    ck_assert_str_eq(b, "retry.ABC");
    ck_assert_str_eq(ctlreq_action_name(CTLREQ_FLUSH), "flush");
    ck_assert_str_eq(ctlreq_action_name(CTLREQ_DELETE), "delete");
}
END_TEST

START_TEST(test_answer)
{
    char b[CTLREQ_ANSWER_MAX + 2];
    int failed = -1;
    int n = ctlreq_answer(0, "ABC is being tried now", b, sizeof b);
    ck_assert_int_eq(n, 22);
    ck_assert_str_eq(ctlreq_read_answer(b, (size_t)n, &failed), "ABC is being tried now");
    ck_assert_int_eq(failed, 0);
    n = ctlreq_answer(1, "there is no queued message X", b, sizeof b);
    ck_assert_str_eq(b, "!there is no queued message X");
    ck_assert_str_eq(ctlreq_read_answer(b, (size_t)n, &failed), "there is no queued message X");
    ck_assert_int_eq(failed, 1);
    /* one line: control characters become spaces */
    ctlreq_answer(0, "a\r\nb\x1b[2J", b, sizeof b);
    ck_assert_str_eq(b, "a  b [2J");
    /* bounded */
    char longtext[1000];
    memset(longtext, 'x', sizeof longtext - 1);
    longtext[sizeof longtext - 1] = 0;
    ck_assert_int_eq(ctlreq_answer(1, longtext, b, sizeof b), CTLREQ_ANSWER_MAX + 1);
    char tiny[4];
    ck_assert_int_eq(ctlreq_answer(0, "long text", tiny, sizeof tiny), -1);
    ck_assert_str_eq(tiny, "");
    /* an empty answer file reads as an empty success */
    ck_assert_str_eq(ctlreq_read_answer("", 0, &failed), "");
    ck_assert_int_eq(failed, 0);
}
END_TEST

Suite *ctlreq_suite(void)
{
    Suite *s = suite_create("ctlreq");
    TCase *tc = tcase_create("protocol");
    tcase_add_test(tc, test_names);
    tcase_add_loop_test(tc, test_parse, 0, (int)(sizeof parse_cases / sizeof parse_cases[0]));
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_flush_names);
    tcase_add_test(tc, test_answer);
    suite_add_tcase(s, tc);
    return s;
}
