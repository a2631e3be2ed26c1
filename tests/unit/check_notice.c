/* check_notice.c - what becomes of the notice owed to a sender: queued, not
 * wanted, impossible (null sender) or not queued; and the words Badmail
 * gives for each. The bug this guards: a message whose NDR could not be
 * queued went to Badmail labelled as coming from the null sender. */
#include <check.h>
#include <string.h>

#include "notice.h"

START_TEST(fates)
{
    ck_assert_int_eq(notice_fate(DSN_OK, 0), NOTICE_QUEUED);
    ck_assert_int_eq(notice_fate(DSN_NOBODY, 0), NOTICE_NOT_WANTED);
    ck_assert_int_eq(notice_fate(DSN_NULL_SENDER, 0), NOTICE_NULL_SENDER);
    /* queueing failed: the disk is full (112), access denied (5) */
    ck_assert_int_eq(notice_fate(DSN_OK, 112u), NOTICE_NOT_QUEUED);
    ck_assert_int_eq(notice_fate(DSN_OK, 5u), NOTICE_NOT_QUEUED);
    /* could not be composed: owed all the same, and not from <> */
    ck_assert_int_eq(notice_fate(DSN_BAD_INPUT, 13u), NOTICE_NOT_QUEUED);
    ck_assert_int_eq(notice_fate(DSN_TOO_SMALL, 0), NOTICE_NOT_QUEUED);
    /* "none needed" and "could not be queued" are told apart */
    ck_assert_int_ne(notice_fate(DSN_NULL_SENDER, 0), notice_fate(DSN_OK, 112u));
    ck_assert(!notice_to_badmail(NOTICE_QUEUED));
    ck_assert(!notice_to_badmail(NOTICE_NOT_WANTED));
    ck_assert(notice_to_badmail(NOTICE_NULL_SENDER));
    ck_assert(notice_to_badmail(NOTICE_NOT_QUEUED));
}
END_TEST

START_TEST(badmail_words)
{
    char note[256], why[256];
    ck_assert_int_gt(notice_badmail_note(NOTICE_NULL_SENDER, DSN_FAILED, 0, note, sizeof note), 0);
    ck_assert_str_eq(note, "No notification was sent: the message came from the null sender "
                           "<>.\r\n");
    ck_assert_int_gt(notice_badmail_why(NOTICE_NULL_SENDER, DSN_FAILED, 0, why, sizeof why), 0);
    ck_assert_str_eq(why, "it came from the null sender <>, so it is itself a notification");

    ck_assert_int_gt(notice_badmail_note(NOTICE_NOT_QUEUED, DSN_FAILED, 112u, note, sizeof note), 0);
    ck_assert_str_eq(note, "No notification was sent: the non-delivery report to the sender "
                           "could not be queued (error 112).\r\n");
    ck_assert_int_gt(notice_badmail_why(NOTICE_NOT_QUEUED, DSN_FAILED, 112u, why, sizeof why), 0);
    ck_assert_str_eq(why, "the non-delivery report to its sender could not be queued (error 112)");
    ck_assert_ptr_null(strstr(note, "null sender"));
    ck_assert_ptr_null(strstr(why, "null sender"));

    ck_assert_int_gt(notice_badmail_note(NOTICE_NOT_QUEUED, DSN_FAILED, 0, note, sizeof note), 0);
    ck_assert_ptr_nonnull(strstr(note, "could not be composed"));
    ck_assert_int_gt(notice_badmail_why(NOTICE_NOT_QUEUED, DSN_DELAYED, 5u, why, sizeof why), 0);
    ck_assert_ptr_nonnull(strstr(why, "delay notification"));

    /* nothing to say when a notice went out or was not wanted */
    ck_assert_int_eq(notice_badmail_note(NOTICE_QUEUED, DSN_FAILED, 0, note, sizeof note), 0);
    ck_assert_str_eq(note, "");
    /* too small: -1 and nothing half written */
    ck_assert_int_eq(notice_badmail_why(NOTICE_NOT_QUEUED, DSN_FAILED, 112u, why, 10), -1);
    ck_assert_str_eq(why, "");
}
END_TEST

Suite *notice_suite(void)
{
    Suite *s = suite_create("notice");
    TCase *tc = tcase_create("fate");
    tcase_add_test(tc, fates);
    tcase_add_test(tc, badmail_words);
    suite_add_tcase(s, tc);
    return s;
}
