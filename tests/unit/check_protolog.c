/* check_protolog.c - the protocol log: commands paired with their replies
 * (pipelined, multi-line, AUTH and DATA as one record each), no AUTH data
 * kept, and the W3C line with its escaping. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "protolog.h"

static struct plog p;
static struct plog_record r;

#define CMD(s, t) plog_command(&p, s, strlen(s), t)
#define REPLY(s, t) plog_reply(&p, s, strlen(s), t, &r)

START_TEST(test_greeting_and_simple)
{
    plog_init(&p);
    ck_assert_int_eq(REPLY("220 host ESMTP", 5), 1);   /* answers no command */
    ck_assert_str_eq(r.verb, "");
    ck_assert_int_eq(r.status, 220);
    ck_assert_uint_eq(r.sc_bytes, 16);
    CMD("ehlo client.example", 10);
    ck_assert_int_eq(REPLY("250-host", 12), 0);
    ck_assert_int_eq(REPLY("250-PIPELINING", 12), 0);
    ck_assert_int_eq(REPLY("250 8BITMIME", 13), 1);
    ck_assert_str_eq(r.verb, "EHLO");
    ck_assert_str_eq(r.args, "client.example");
    ck_assert_int_eq(r.status, 250);
    ck_assert_uint_eq(r.cs_bytes, 21);
    ck_assert_uint_eq(r.sc_bytes, 10 + 16 + 14);
    ck_assert_uint_eq(r.ms, 3);
}
END_TEST

START_TEST(test_pipelined)
{
    plog_init(&p);
    CMD("MAIL FROM:<a@x.example>", 100);
    CMD("RCPT TO:<b@y.example>", 100);
    CMD("RCPT TO:<c@y.example>", 101);
    CMD("DATA", 101);
    ck_assert_int_eq(REPLY("250 2.1.0 Ok", 110), 1);
    ck_assert_str_eq(r.verb, "MAIL");
    ck_assert_str_eq(r.args, "FROM:<a@x.example>");
    ck_assert_int_eq(REPLY("250 2.1.5 Ok", 111), 1);
    ck_assert_str_eq(r.args, "TO:<b@y.example>");
    ck_assert_int_eq(REPLY("550 5.1.1 no", 112), 1);
    ck_assert_str_eq(r.args, "TO:<c@y.example>");
    ck_assert_int_eq(r.status, 550);
    ck_assert_uint_eq(r.ms, 11);
    /* DATA: the 354, the content and its end are one record */
    ck_assert_int_eq(REPLY("354 go ahead", 113), 0);
    plog_content(&p, 1000);
    CMD(".", 150);   /* a client's transcript shows the end of the content */
    ck_assert_int_eq(REPLY("250 2.0.0 queued as X", 160), 1);
    ck_assert_str_eq(r.verb, "DATA");
    ck_assert_int_eq(r.status, 250);
    ck_assert_uint_eq(r.cs_bytes, 6 + 1000 + 3);
    ck_assert_uint_eq(r.sc_bytes, 14 + 23);
    ck_assert_uint_eq(r.ms, 59);
    CMD("QUIT", 170);
    ck_assert_int_eq(REPLY("221 bye", 171), 1);
    ck_assert_str_eq(r.verb, "QUIT");
}
END_TEST

START_TEST(test_auth_keeps_no_secret)
{
    plog_init(&p);
    CMD("AUTH PLAIN AGFsaWNlAHNlY3JldA==", 0);
    ck_assert_int_eq(REPLY("235 2.7.0 ok", 5), 1);
    ck_assert_str_eq(r.verb, "AUTH");
    ck_assert_str_eq(r.args, "PLAIN");
    ck_assert_uint_eq(r.cs_bytes, 33);
    CMD("auth ntlm TlRMTVNTUAABAAAA", 10);
    ck_assert_int_eq(REPLY("334 TlRMTVNTUAACAAAA", 11), 0);
    plog_secret(&p, 100);
    ck_assert_int_eq(REPLY("535 5.7.8 no", 20), 1);
    ck_assert_str_eq(r.verb, "AUTH");
    ck_assert_str_eq(r.args, "ntlm");   /* as sent: the verb alone is upper-cased */
    ck_assert_uint_eq(r.cs_bytes, 28 + 102);
    ck_assert_ptr_null(strstr(r.args, "TlRM"));
    CMD("XAUTH NTLM", 30);
    ck_assert_int_eq(REPLY("334 ntlm supported", 31), 0);
    plog_secret(&p, 40);
    ck_assert_int_eq(REPLY("235 ok", 32), 1);
    ck_assert_str_eq(r.verb, "XAUTH");
    /* a 334 to anything but AUTH, a 354 to anything but DATA: final */
    CMD("NOOP", 40);
    ck_assert_int_eq(REPLY("354 odd", 41), 1);
    ck_assert_str_eq(r.verb, "NOOP");
}
END_TEST

START_TEST(test_queue_overflow_keeps_pairs)
{
    plog_init(&p);
    char line[64];
    for (int i = 0; i < PLOG_QUEUE_MAX + 4; i++) {
        snprintf(line, sizeof line, "RCPT TO:<r%d@x>", i);
        CMD(line, (uint64_t)i);
    }
    for (int i = 0; i < PLOG_QUEUE_MAX; i++) {
        ck_assert_int_eq(REPLY("250 ok", 100), 1);
        snprintf(line, sizeof line, "TO:<r%d@x>", i);
        ck_assert_str_eq(r.args, line);
    }
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(REPLY("250 ok", 100), 1);
        ck_assert_str_eq(r.verb, "?");
    }
    /* and then the queue is in step again */
    CMD("QUIT", 200);
    ck_assert_int_eq(REPLY("221 bye", 201), 1);
    ck_assert_str_eq(r.verb, "QUIT");
}
END_TEST

START_TEST(test_long_lines_cut)
{
    plog_init(&p);
    char line[1200];
    memset(line, 'a', sizeof line - 1);
    line[sizeof line - 1] = 0;
    memcpy(line, "VERYVERYVERYLONGVERB ", 21);
    CMD(line, 0);
    ck_assert_int_eq(REPLY("500 no", 0), 1);
    ck_assert_uint_eq(strlen(r.verb), PLOG_VERB_MAX);
    ck_assert_uint_eq(strlen(r.args), PLOG_ARGS_MAX);
    ck_assert_uint_eq(r.cs_bytes, sizeof line - 1 + 2);
}
END_TEST

START_TEST(test_escape)
{
    char out[64];
    ck_assert_uint_eq(plog_escape("a b  c", 6, out, sizeof out), 6);
    ck_assert_str_eq(out, "a+b++c");
    plog_escape("", 0, out, sizeof out);
    ck_assert_str_eq(out, "-");
    plog_escape("x\ty%\x01\xc3\xa9", 7, out, sizeof out);
    ck_assert_str_eq(out, "x%09y%25%01%C3%A9");
    /* cut at a whole character, never mid-escape */
    char small[5];
    ck_assert_uint_eq(plog_escape("ab%cd", 5, small, sizeof small), 2);
    ck_assert_str_eq(small, "ab");
}
END_TEST

START_TEST(test_format_line)
{
    struct plog_where w = { "2026-12-02", "06:31:02", "127.0.0.1", "", "SMTP-IN",
                            "mail.example", "127.0.0.1", 2745 };
    struct plog_record rec = { "MAIL", "FROM:<a b@x> SIZE=10", 250, 30, 14, 2 };
    char buf[PLOG_LINE_MAX];
    int n = plog_format(&w, &rec, buf, sizeof buf);
    ck_assert_int_gt(n, 0);
    ck_assert_str_eq(buf, "2026-12-02 06:31:02 127.0.0.1 - SMTP-IN mail.example 127.0.0.1 2745 "
                          "MAIL FROM:<a+b@x>+SIZE=10 250 14 30 2\r\n");
    ck_assert_uint_eq((size_t)n, strlen(buf));
    /* a reply to no command, unknown port */
    struct plog_record greet = { "", "", 220, 0, 20, 0 };
    w.s_port = 0;
    w.user = "DOM\\user name";
    plog_format(&w, &greet, buf, sizeof buf);
    ck_assert_str_eq(buf, "2026-12-02 06:31:02 127.0.0.1 DOM\\user+name SMTP-IN mail.example "
                          "127.0.0.1 - - - 220 20 0 0\r\n");
    /* too small: nothing half-written */
    char tiny[20];
    ck_assert_int_eq(plog_format(&w, &greet, tiny, sizeof tiny), -1);
    ck_assert_str_eq(tiny, "");
    /* every line has the header's number of fields */
    char hdr[512];
    ck_assert_int_gt(plog_header("imsvc 1.0", "2026-12-02", "06:31:02", hdr, sizeof hdr), 0);
    ck_assert_ptr_nonnull(strstr(hdr, "#Fields: " PLOG_FIELDS "\r\n"));
    int fields = 1, spaces = 0;
    for (const char *c = PLOG_FIELDS; *c; c++)
        fields += *c == ' ';
    for (const char *c = buf; *c; c++)
        spaces += *c == ' ';
    ck_assert_int_eq(spaces + 1, fields);
}
END_TEST

Suite *protolog_suite(void)
{
    Suite *s = suite_create("protolog");
    TCase *tc = tcase_create("records");
    tcase_add_test(tc, test_greeting_and_simple);
    tcase_add_test(tc, test_pipelined);
    tcase_add_test(tc, test_auth_keeps_no_secret);
    tcase_add_test(tc, test_queue_overflow_keeps_pairs);
    tcase_add_test(tc, test_long_lines_cut);
    tcase_add_test(tc, test_escape);
    tcase_add_test(tc, test_format_line);
    suite_add_tcase(s, tc);
    return s;
}
