/* check_qmgr.c - the queue manager's plan for one message: delay notices,
 * due recipients grouped by destination, unroutable recipients. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "address.h"
#include "domains.h"
#include "qmgr.h"

#define T0 1795440000LL   /* arrival */
#define MIN 60LL
#define HR (60LL * MIN)

static struct domain_list locals;

static struct route_config config(const char *smarthost)
{
    domains_free(&locals);
    ck_assert_int_eq(domains_parse(&locals, "imsvc.test;*.corp.test", NULL, 0), 0);
    struct route_config rc = {
        .local = &locals, .smarthost = smarthost,
        .smarthost_default_port = 25, .outbound_port = 25,
    };
    return rc;
}

/* An envelope that arrived at T0 with these recipients, all pending. */
static void make(struct envelope *e, const char *const *to, size_t n)
{
    env_init(e);
    snprintf(e->id, sizeof e->id, "QMGRTEST");
    e->arrived = T0;
    struct addr_error err;
    ck_assert_int_eq(addr_parse_mailbox("alice@imsvc.test", 16, ADDR_MAIL, &e->from, &err), 0);
    for (size_t i = 0; i < n; i++) {
        struct addr_path a;
        ck_assert_msg(addr_parse_mailbox(to[i], strlen(to[i]), ADDR_RCPT, &a, &err) == 0, "%s", to[i]);
        ck_assert_int_eq(env_add_rcpt(e, &a, NULL), (int)i);
    }
}

static const struct qmgr_group *group(const struct qmgr_plan *pl, const char *key)
{
    for (size_t k = 0; k < pl->n_groups; k++)
        if (strcmp(pl->groups[k].key, key) == 0)
            return &pl->groups[k];
    return NULL;
}

START_TEST(test_groups_by_destination)
{
    static const char *const to[] = {
        "a@remote.test", "b@imsvc.test", "c@REMOTE.test", "d@other.test", "e@x.corp.test",
    };
    struct envelope e;
    make(&e, to, 5);
    struct retry_policy p;
    retry_defaults(&p);
    struct route_config rc = config(NULL);
    struct qmgr_plan pl;
    ck_assert_int_eq(qmgr_plan(&e, T0, &p, &rc, &pl), 0);
    ck_assert_uint_eq(pl.n_late, 0);
    ck_assert_uint_eq(pl.n_bad, 0);
    ck_assert_uint_eq(pl.n_groups, 3);
    /* in the order their first recipient appears */
    ck_assert_str_eq(pl.groups[0].key, "mx:remote.test");
    ck_assert_str_eq(pl.groups[1].key, "drop");
    ck_assert_str_eq(pl.groups[2].key, "mx:other.test");
    const struct qmgr_group *g = group(&pl, "mx:remote.test");
    ck_assert_uint_eq(g->n, 2);
    ck_assert_uint_eq(g->idx[0], 0);
    ck_assert_uint_eq(g->idx[1], 2);   /* the domain's case does not split a connection */
    g = group(&pl, "drop");
    ck_assert_uint_eq(g->n, 2);
    ck_assert_uint_eq(g->idx[0], 1);
    ck_assert_uint_eq(g->idx[1], 4);   /* *.corp.test is local */
    ck_assert_int_eq(g->route.kind, ROUTE_DROP);
    qmgr_plan_free(&pl);
    ck_assert_ptr_null(pl.groups);
    env_free(&e);
    domains_free(&locals);
}
END_TEST

START_TEST(test_smart_host_takes_remote)
{
    static const char *const to[] = { "a@remote.test", "b@other.test", "c@imsvc.test" };
    struct envelope e;
    make(&e, to, 3);
    struct retry_policy p;
    retry_defaults(&p);
    struct route_config rc = config("relay.test:2525");
    struct qmgr_plan pl;
    ck_assert_int_eq(qmgr_plan(&e, T0, &p, &rc, &pl), 0);
    ck_assert_uint_eq(pl.n_groups, 2);
    const struct qmgr_group *g = pl.groups;
    ck_assert_int_eq(g->route.kind, ROUTE_SMARTHOST);
    ck_assert_uint_eq(g->route.port, 2525);
    ck_assert_uint_eq(g->n, 2);
    ck_assert_str_eq(pl.groups[1].key, "drop");
    qmgr_plan_free(&pl);
    env_free(&e);
    domains_free(&locals);
}
END_TEST

/* Only recipients due now are planned; done ones never are. */
START_TEST(test_only_due)
{
    static const char *const to[] = { "a@remote.test", "b@remote.test", "c@remote.test",
                                      "d@remote.test" };
    struct envelope e;
    make(&e, to, 4);
    e.rcpt[0].state = ENV_DELIVERED;
    e.rcpt[1].state = ENV_DEFERRED;
    e.rcpt[1].first_failure = T0;
    e.rcpt[1].next_attempt = T0 + 15 * MIN;      /* not yet */
    e.rcpt[2].state = ENV_DEFERRED;
    e.rcpt[2].first_failure = T0;
    e.rcpt[2].next_attempt = T0 + 5 * MIN;       /* due */
    e.rcpt[3].state = ENV_FAILED;
    struct retry_policy p;
    retry_defaults(&p);
    struct route_config rc = config(NULL);
    struct qmgr_plan pl;
    ck_assert_int_eq(qmgr_plan(&e, T0 + 10 * MIN, &p, &rc, &pl), 0);
    ck_assert_uint_eq(pl.n_groups, 1);
    ck_assert_uint_eq(pl.groups[0].n, 1);
    ck_assert_uint_eq(pl.groups[0].idx[0], 2);
    ck_assert_uint_eq(pl.n_late, 0);
    qmgr_plan_free(&pl);
    env_free(&e);
    domains_free(&locals);
}
END_TEST

/* A delay notice is owed to deferred recipients past DelayNotice, once. */
START_TEST(test_late)
{
    static const char *const to[] = { "a@remote.test", "b@remote.test", "c@remote.test" };
    struct envelope e;
    make(&e, to, 3);
    for (size_t i = 0; i < 3; i++) {
        e.rcpt[i].state = ENV_DEFERRED;
        e.rcpt[i].first_failure = T0;
        e.rcpt[i].next_attempt = T0 + 20 * HR;
    }
    e.rcpt[1].notified = ENV_NOTIFIED_DELAY;    /* already told */
    e.rcpt[2].state = ENV_DELIVERED;
    struct retry_policy p;
    retry_defaults(&p);                          /* notice after 12 hours */
    struct route_config rc = config(NULL);
    struct qmgr_plan pl;
    ck_assert_int_eq(qmgr_plan(&e, T0 + 11 * HR, &p, &rc, &pl), 0);
    ck_assert_uint_eq(pl.n_late, 0);
    qmgr_plan_free(&pl);
    ck_assert_int_eq(qmgr_plan(&e, T0 + 12 * HR, &p, &rc, &pl), 0);
    ck_assert_uint_eq(pl.n_late, 1);
    ck_assert_uint_eq(pl.late[0], 0);
    ck_assert_uint_eq(pl.n_groups, 0);           /* nobody due before 20 hours */
    qmgr_plan_free(&pl);
    env_free(&e);
    domains_free(&locals);
}
END_TEST

/* A recipient the RCPT verdict would refuse now is not routed by a guess:
 * it gets the verdict's own result. */
START_TEST(test_unroutable)
{
    static const char *const to[] = { "a@remote.test", "b@[192.0.2.1]", "c@imsvc.test" };
    struct envelope e;
    make(&e, to, 3);
    struct retry_policy p;
    retry_defaults(&p);
    /* a smart host that does not parse: every non-local recipient waits */
    struct route_config rc = config("bad host:99999");
    struct qmgr_plan pl;
    ck_assert_int_eq(qmgr_plan(&e, T0, &p, &rc, &pl), 0);
    ck_assert_uint_eq(pl.n_groups, 1);
    ck_assert_str_eq(pl.groups[0].key, "drop");
    ck_assert_uint_eq(pl.n_bad, 2);
    ck_assert_uint_eq(pl.bad[0].idx, 0);
    ck_assert_uint_eq(pl.bad[1].idx, 1);
    for (size_t i = 0; i < pl.n_bad; i++) {
        const struct smtpc_result *r = &pl.bad[i].result;
        ck_assert_msg(r->status[0] == '4' || r->status[0] == '5', "status %s", r->status);
        ck_assert_int_eq(r->outcome, r->status[0] == '4' ? SMTPC_TRANSIENT : SMTPC_PERMANENT);
        ck_assert_msg(r->why[0] != 0, "a sentence says why");
    }
    qmgr_plan_free(&pl);
    env_free(&e);
    domains_free(&locals);
}
END_TEST

/* `queue retry --all` / `--destination`: only deferred recipients, and for
 * a destination only those whose domain or route's host it is; then the
 * plan has them due at once. */
static void defer_all(struct envelope *e)
{
    for (size_t i = 0; i < e->n_rcpt; i++) {
        e->rcpt[i].state = ENV_DEFERRED;
        e->rcpt[i].first_failure = T0;
        e->rcpt[i].next_attempt = T0 + 4 * HR;
    }
}

START_TEST(test_flush)
{
    static const char *const to[] = { "a@remote.test", "b@Other.test", "c@remote.test",
                                      "d@[192.0.2.1]", "e@imsvc.test" };
    struct envelope e;
    make(&e, to, 5);
    defer_all(&e);
    e.rcpt[2].state = ENV_DELIVERED;
    e.rcpt[2].next_attempt = 0;
    struct retry_policy p;
    retry_defaults(&p);
    struct route_config rc = config(NULL);
    struct qmgr_plan pl;
    ck_assert_int_eq(qmgr_plan(&e, T0 + HR, &p, &rc, &pl), 0);
    ck_assert_uint_eq(pl.n_groups, 0);            /* nothing due for 4 hours */
    qmgr_plan_free(&pl);

    /* by destination: the domain, in any case, with a trailing dot */
    ck_assert_uint_eq(qmgr_flush(&e, &rc, "OTHER.test."), 1);
    ck_assert_int_eq(e.rcpt[1].next_attempt, 0);
    ck_assert_int_eq(e.rcpt[0].next_attempt, T0 + 4 * HR);
    /* an address literal, with or without its brackets */
    ck_assert_uint_eq(qmgr_flush(&e, &rc, "192.0.2.1"), 1);
    ck_assert_int_eq(e.rcpt[3].next_attempt, 0);
    /* nothing matches: nothing changes */
    ck_assert_uint_eq(qmgr_flush(&e, &rc, "nowhere.test"), 0);
    ck_assert_uint_eq(qmgr_flush(&e, &rc, "remote"), 0);
    ck_assert_int_eq(e.rcpt[0].next_attempt, T0 + 4 * HR);
    ck_assert_int_eq(qmgr_plan(&e, T0 + HR, &p, &rc, &pl), 0);
    ck_assert_uint_eq(pl.n_groups, 2);
    ck_assert_str_eq(pl.groups[0].key, "mx:other.test");
    ck_assert_str_eq(pl.groups[1].key, "mx:[192.0.2.1]");
    qmgr_plan_free(&pl);

    /* through a smart host, its name takes every recipient routed to it */
    defer_all(&e);
    e.rcpt[2].state = ENV_DELIVERED;
    struct route_config sh = config("Relay.test:2525");
    ck_assert_uint_eq(qmgr_flush(&e, &sh, "relay.TEST"), 3);
    ck_assert_int_eq(e.rcpt[4].next_attempt, T0 + 4 * HR);   /* local: not the smart host's */
    ck_assert_int_eq(e.rcpt[2].next_attempt, T0 + 4 * HR);   /* delivered: left alone */

    /* all: every deferred recipient, done ones never */
    defer_all(&e);
    e.rcpt[2].state = ENV_FAILED;
    ck_assert_uint_eq(qmgr_flush(&e, &rc, NULL), 4);
    ck_assert_int_eq(e.rcpt[2].next_attempt, T0 + 4 * HR);
    ck_assert_uint_eq(qmgr_flush(&e, &rc, ""), 4);
    ck_assert_int_eq(qmgr_plan(&e, T0 + HR, &p, &rc, &pl), 0);
    size_t due = 0;
    for (size_t k = 0; k < pl.n_groups; k++)
        due += pl.groups[k].n;
    ck_assert_uint_eq(due, 4);
    qmgr_plan_free(&pl);
    env_free(&e);
    domains_free(&locals);
}
END_TEST

START_TEST(test_empty)
{
    struct envelope e;
    make(&e, NULL, 0);
    struct retry_policy p;
    retry_defaults(&p);
    struct route_config rc = config(NULL);
    struct qmgr_plan pl;
    ck_assert_int_eq(qmgr_plan(&e, T0, &p, &rc, &pl), 0);
    ck_assert_uint_eq(pl.n_groups + pl.n_late + pl.n_bad, 0);
    qmgr_plan_free(&pl);
    env_free(&e);
    domains_free(&locals);
}
END_TEST

Suite *qmgr_suite(void)
{
    Suite *s = suite_create("qmgr");
    TCase *tc = tcase_create("plan");
    tcase_add_test(tc, test_groups_by_destination);
    tcase_add_test(tc, test_smart_host_takes_remote);
    tcase_add_test(tc, test_only_due);
    tcase_add_test(tc, test_late);
    tcase_add_test(tc, test_unroutable);
    tcase_add_test(tc, test_flush);
    tcase_add_test(tc, test_empty);
    suite_add_tcase(s, tc);
    return s;
}
