/* check_penalty.c - the AUTH throttle and the event limiter. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "penalty.h"

static struct penalty_throttle thr;
static struct penalty_limiter lim;

START_TEST(throttle_grows_from_the_first_failure)
{
    penalty_throttle_init(&thr, 1000, 5000, 15 * 60 * 1000);
    ck_assert_uint_eq(penalty_fail(&thr, "a", 1, 100), 1000);
    ck_assert_uint_eq(penalty_fail(&thr, "a", 1, 200), 2000);
    ck_assert_uint_eq(penalty_fail(&thr, "b", 1, 300), 1000);   /* another key: its own count */
    for (int i = 0; i < 10; i++)
        penalty_fail(&thr, "a", 1, 400);
    ck_assert_uint_eq(penalty_fail(&thr, "a", 1, 500), 5000);   /* capped */
    penalty_success(&thr, "a", 1);
    ck_assert_uint_eq(penalty_fail(&thr, "a", 1, 600), 1000);   /* a success forgets */
    /* failures older than the forget time are forgiven */
    ck_assert_uint_eq(penalty_fail(&thr, "b", 1, 300 + 15 * 60 * 1000 + 1), 1000);
}
END_TEST

START_TEST(throttle_is_bounded)
{
    penalty_throttle_init(&thr, 1000, 5000, 15 * 60 * 1000);
    char key[16];
    for (unsigned i = 0; i < 3 * PENALTY_SLOTS; i++) {
        snprintf(key, sizeof key, "k%u", i);
        ck_assert_uint_eq(penalty_fail(&thr, key, strlen(key), i), 1000);
    }
    /* the newest keys are remembered, the oldest gave way */
    snprintf(key, sizeof key, "k%u", 3 * PENALTY_SLOTS - 1);
    ck_assert_uint_eq(penalty_fail(&thr, key, strlen(key), 10000), 2000);
    ck_assert_uint_eq(penalty_fail(&thr, "k0", 2, 10001), 1000);
}
END_TEST

START_TEST(limiter_reports_once_per_window_with_the_count)
{
    penalty_limiter_init(&lim, 60000);
    unsigned long n = 99;
    ck_assert_int_eq(penalty_report(&lim, "x", 1, 1000, &n), 1);
    ck_assert_uint_eq(n, 0);
    for (int i = 0; i < 37; i++)
        ck_assert_int_eq(penalty_report(&lim, "x", 1, 2000 + i, &n), 0);
    ck_assert_int_eq(penalty_report(&lim, "y", 1, 3000, &n), 1);   /* other keys go on */
    ck_assert_int_eq(penalty_report(&lim, "x", 1, 60999, &n), 0);
    ck_assert_int_eq(penalty_report(&lim, "x", 1, 61000, &n), 1);
    ck_assert_uint_eq(n, 38);
    ck_assert_int_eq(penalty_report(&lim, "x", 1, 61001, &n), 0);
    ck_assert_int_eq(penalty_report(&lim, "x", 1, 200000, &n), 1);
    ck_assert_uint_eq(n, 1);
}
END_TEST

Suite *penalty_suite(void)
{
    Suite *s = suite_create("penalty");
    TCase *tc = tcase_create("penalty");
    tcase_add_test(tc, throttle_grows_from_the_first_failure);
    tcase_add_test(tc, throttle_is_bounded);
    tcase_add_test(tc, limiter_reports_once_per_window_with_the_count);
    suite_add_tcase(s, tc);
    return s;
}
