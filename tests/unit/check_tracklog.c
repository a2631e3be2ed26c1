/* check_tracklog.c - the message tracking log: lines written and read back
 * exactly, malformed lines refused, the query's matching, and the
 * Message-ID found however the header arrives. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "tracklog.h"

static void line_fill(struct track_line *t, enum track_event e)
{
    memset(t, 0, sizeof *t);
    track_set(t->when, sizeof t->when, "2026-12-02T06:31:02.123Z");
    t->event = e;
    track_set(t->queue_id, sizeof t->queue_id, "20261202.0A1B-2");
    track_set(t->message_id, sizeof t->message_id, "<m1@client.example>");
    track_set(t->sender, sizeof t->sender, "alice@imsvc.test");
    track_set(t->recipient, sizeof t->recipient, "bob@remote.test");
    track_set(t->remote, sizeof t->remote, "127.0.0.1:2746");
    track_set(t->reply, sizeof t->reply, "250 2.0.0 Ok: queued as ABC");
}

START_TEST(test_round_trip)
{
    struct track_line t, u;
    char buf[TRACK_LINE_MAX];
    line_fill(&t, TRACK_DELIVER);
    int n = track_format(&t, buf, sizeof buf);
    ck_assert_int_gt(n, 0);
    ck_assert_str_eq(buf, "2026-12-02T06:31:02.123Z,DELIVER,20261202.0A1B-2,<m1@client.example>,"
                          "alice@imsvc.test,bob@remote.test,127.0.0.1:2746,"
                          "250 2.0.0 Ok: queued as ABC\r\n");
    ck_assert_int_eq(track_parse(buf, (size_t)n, &u), 0);
    ck_assert_int_eq(memcmp(&t, &u, sizeof t), 0);
    /* commas, quotes, edge spaces and control octets */
    track_set(t.reply, sizeof t.reply, " 550 5.1.1 \"bob\", unknown\r\nX ");
    track_set(t.sender, sizeof t.sender, "\"a,b\"@x.example");
    track_set(t.message_id, sizeof t.message_id, "");
    t.event = TRACK_FAIL;
    n = track_format(&t, buf, sizeof buf);
    ck_assert_int_gt(n, 0);
    ck_assert_ptr_null(memchr(buf, '\n', (size_t)n - 1));   /* one line */
    ck_assert_int_eq(track_parse(buf, (size_t)n, &u), 0);
    ck_assert_str_eq(u.reply, " 550 5.1.1 \"bob\", unknown  X ");
    ck_assert_str_eq(u.sender, "\"a,b\"@x.example");
    ck_assert_str_eq(u.message_id, "");
    ck_assert_int_eq(u.event, TRACK_FAIL);
    /* every event's name reads back */
    for (int e = 0; e < TRACK_EVENT_COUNT; e++) {
        line_fill(&t, (enum track_event)e);
        n = track_format(&t, buf, sizeof buf);
        ck_assert_int_eq(track_parse(buf, (size_t)n, &u), 0);
        ck_assert_int_eq(u.event, e);
    }
    /* a field full of quotes still fits the longest line */
    line_fill(&t, TRACK_FAIL);
    memset(t.reply, '"', TRACK_REPLY_MAX);
    t.reply[TRACK_REPLY_MAX] = 0;
    memset(t.sender, ',', TRACK_ADDR_MAX);
    t.sender[TRACK_ADDR_MAX] = 0;
    memset(t.recipient, '"', TRACK_ADDR_MAX);
    t.recipient[TRACK_ADDR_MAX] = 0;
    n = track_format(&t, buf, sizeof buf);
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(track_parse(buf, (size_t)n, &u), 0);
    ck_assert_int_eq(memcmp(&t, &u, sizeof t), 0);
}
END_TEST

START_TEST(test_refused)
{
    struct track_line t, u;
    char buf[64];
    line_fill(&t, TRACK_RECEIVE);
    ck_assert_int_eq(track_format(&t, buf, sizeof buf), -1);   /* does not fit */
    ck_assert_str_eq(buf, "");
    track_set(t.when, sizeof t.when, "2026-12-02 06:31:02");
    char big[TRACK_LINE_MAX];
    ck_assert_int_eq(track_format(&t, big, sizeof big), -1);   /* not a time */
    static const char *const bad[] = {
        "",
        "2026-12-02T06:31:02.123Z,DELIVER,Q1,,a,b,c",                 /* 7 fields */
        "2026-12-02T06:31:02.123Z,DELIVER,Q1,,a,b,c,d,e",             /* 9 */
        "2026-12-02T06:31:02.123Z,SENT,Q1,,a,b,c,d",                  /* unknown event */
        "2026-12-02T06:31:02.123Z,deliver,Q1,,a,b,c,d",               /* names are upper case */
        "2026-12-02 06:31:02.123Z,DELIVER,Q1,,a,b,c,d",               /* time */
        "2026-12-02T06:31:02.123Z,DELIVER,Q 1,,a,b,c,d",              /* queue ID */
        "2026-12-02T06:31:02.123Z,DELIVER,../x,,a,b,c,d",
        "2026-12-02T06:31:02.123Z,DELIVER,Q1,,\"a,b,c,d",             /* unclosed quote */
        "2026-12-02T06:31:02.123Z,DELIVER,Q1,,\"a\"x,b,c,d",          /* text after a quote */
        "2026-12-02T06:31:02.123Z,DELIVER,Q1,,a\"b,b,c,d",            /* stray quote */
        "2026-12-02T06:31:02.123Z,DELIVER,Q1,,a\tb,b,c,d",            /* control octet */
        "2026-12-02T06:31:02.123Z,DELIVER,Q1,,a,b,c,d\r\nmore",
        "#Fields: " TRACK_FIELDS,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&u, 'x', sizeof u);
        ck_assert_msg(track_parse(bad[i], strlen(bad[i]), &u) == -1, "accepted: %s", bad[i]);
        ck_assert_str_eq(u.when, "");   /* nothing half-read */
    }
    /* a field longer than its buffer */
    char line[TRACK_LINE_MAX];
    int k = snprintf(line, sizeof line, "2026-12-02T06:31:02.123Z,DELIVER,Q1,,a,b,");
    memset(line + k, 'r', TRACK_REMOTE_MAX + 1);
    strcpy(line + k + TRACK_REMOTE_MAX + 1, ",d");
    ck_assert_int_eq(track_parse(line, strlen(line), &u), -1);
    /* an empty queue ID is fine (a pickup file that went to Badmail) */
    const char *ok = "2026-12-02T06:31:02.123Z,BADMAIL,,,,,pickup,why\n";
    ck_assert_int_eq(track_parse(ok, strlen(ok), &u), 0);
    ck_assert_str_eq(u.reply, "why");
}
END_TEST

START_TEST(test_query)
{
    struct track_line t;
    line_fill(&t, TRACK_DELIVER);
    struct track_query q = { 0 };
    ck_assert(track_matches(&q, &t));
    q.message_id = "m1@CLIENT.example";
    ck_assert(track_matches(&q, &t));
    q.message_id = "<m2@client.example>";
    ck_assert(!track_matches(&q, &t));
    q.message_id = NULL;
    q.sender = "<Alice@imsvc.test>";
    ck_assert(track_matches(&q, &t));
    q.recipient = "carol@remote.test";
    ck_assert(!track_matches(&q, &t));
    q.recipient = "bob@remote.test";
    q.since = "2026-12-02";
    ck_assert(track_matches(&q, &t));
    q.since = "2026-12-02T06:31:02.123Z";
    ck_assert(track_matches(&q, &t));
    q.since = "2026-12-02T06:31:03";
    ck_assert(!track_matches(&q, &t));
    q.since = "2026-12-03";
    ck_assert(!track_matches(&q, &t));
    ck_assert(!track_same_msgid("", ""));   /* no ID matches no ID: not a match */
    ck_assert(track_since_valid("2026-12-02"));
    ck_assert(track_since_valid("2026-12-02T06:30"));
    ck_assert(track_since_valid("2026-12-02T06:31:02.123Z"));
    ck_assert(!track_since_valid("2026-12"));
    ck_assert(!track_since_valid("2026-12-02 06:30"));
    ck_assert(!track_since_valid("yesterday"));
    ck_assert(!track_since_valid("2026-12-02T06:31:02.123Z0"));
}
END_TEST

static const char header[] =
    "Received: from x\r\n"
    "\tby y; Mon, 1 Dec 2026 10:00:00 +0000\r\n"
    "X-Message-ID: <not-this@x>\r\n"
    "Subject: Message-ID: <nor-this@x>\r\n"
    "message-id:\r\n"
    " <folded@client.example>  \r\n"
    "Message-ID: <second@x>\r\n"
    "\r\n"
    "Message-ID: <body@x>\r\n";

START_TEST(test_msgid_any_cut)
{
    size_t n = sizeof header - 1;
    for (size_t cut = 0; cut <= n; cut++) {
        struct track_msgid m;
        track_msgid_init(&m);
        track_msgid_feed(&m, header, cut);
        track_msgid_feed(&m, header + cut, n - cut);
        ck_assert_str_eq(track_msgid_value(&m), "<folded@client.example>");
    }
    /* one octet at a time */
    struct track_msgid m;
    track_msgid_init(&m);
    for (size_t i = 0; i < n; i++)
        track_msgid_feed(&m, header + i, 1);
    ck_assert_str_eq(track_msgid_value(&m), "<folded@client.example>");
}
END_TEST

START_TEST(test_msgid_none_and_long)
{
    struct track_msgid m;
    track_msgid_init(&m);
    const char *none = "Subject: x\r\n\r\nMessage-ID: <in-body@x>\r\n";
    track_msgid_feed(&m, none, strlen(none));
    ck_assert_str_eq(track_msgid_value(&m), "");
    /* the header's end with bare LFs too */
    track_msgid_init(&m);
    const char *lf = "Message-Id: <lf@x>\nSubject: y\n\nbody";
    track_msgid_feed(&m, lf, strlen(lf));
    ck_assert_str_eq(track_msgid_value(&m), "<lf@x>");
    /* a value past the bound is cut, not overrun */
    track_msgid_init(&m);
    track_msgid_feed(&m, "Message-ID: <", 13);
    char many[1000];
    memset(many, 'z', sizeof many);
    track_msgid_feed(&m, many, sizeof many);
    track_msgid_feed(&m, ">\r\n\r\n", 5);
    ck_assert_uint_eq(strlen(track_msgid_value(&m)), TRACK_MSGID_MAX);
}
END_TEST

Suite *tracklog_suite(void)
{
    Suite *s = suite_create("tracklog");
    TCase *tc = tcase_create("lines");
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_refused);
    tcase_add_test(tc, test_query);
    tcase_add_test(tc, test_msgid_any_cut);
    tcase_add_test(tc, test_msgid_none_and_long);
    suite_add_tcase(s, tc);
    return s;
}
