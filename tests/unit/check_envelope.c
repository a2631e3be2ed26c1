/* check_envelope.c - the queue envelope: round trips, torn writes, hostile text. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"

static void path(const char *s, enum addr_verb v, struct addr_path *p)
{
    struct addr_error err;
    ck_assert_int_eq(addr_parse_path(s, strlen(s), v, p, &err), 0);
}

/* A message from alice to three recipients in different states. */
static void sample(struct envelope *e)
{
    struct addr_path p;
    struct addr_params prm;
    env_init(e);
    strcpy(e->id, "20261123T133000.0001-a");
    e->arrived = 1795440000;
    path("<alice@example.org>", ADDR_MAIL, &e->from);
    strcpy(e->client, "[192.0.2.7]");
    strcpy(e->helo, "client.example.org");
    strcpy(e->auth_user, "EXAMPLE\\alice");
    e->body = ADDR_BODY_8BITMIME;
    e->ret = ADDR_RET_HDRS;
    strcpy(e->envid, "QQ314159");

    path("<bob@example.net>", ADDR_RCPT, &p);
    memset(&prm, 0, sizeof prm);
    prm.has_orcpt = 1;
    strcpy(prm.orcpt_type, "rfc822");
    strcpy(prm.orcpt, "Bob+2BTag@example.net");
    prm.notify = ADDR_NOTIFY_FAILURE | ADDR_NOTIFY_DELAY;
    ck_assert_int_eq(env_add_rcpt(e, &p, &prm), 0);

    path("<carol@example.net>", ADDR_RCPT, &p);
    ck_assert_int_eq(env_add_rcpt(e, &p, NULL), 1);
    e->rcpt[1].state = ENV_DEFERRED;
    e->rcpt[1].attempts = 2;
    e->rcpt[1].first_failure = 1795440010;
    e->rcpt[1].next_attempt = 1795441810;
    e->rcpt[1].notified = ENV_NOTIFIED_DELAY;
    strcpy(e->rcpt[1].status, "4.2.2");
    strcpy(e->rcpt[1].remote, "mx1.example.net");
    strcpy(e->rcpt[1].reply, "452 4.2.2 Mailbox full");
    strcpy(e->rcpt[1].why, "The recipient's mailbox is full.");

    path("<\"dan smith\"@[192.0.2.9]>", ADDR_RCPT, &p);
    ck_assert_int_eq(env_add_rcpt(e, &p, NULL), 2);
    e->rcpt[2].state = ENV_DELIVERED;
    e->rcpt[2].attempts = 1;
}

static char *format_alloc(const struct envelope *e, size_t *len)
{
    size_t need = env_format(e, NULL, 0);
    ck_assert_uint_gt(need, 0);
    char *buf = malloc(need + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(env_format(e, buf, need + 1), need);
    ck_assert_uint_eq(strlen(buf), need);
    *len = need;
    return buf;
}

static void rcpt_equal(const struct env_rcpt *a, const struct env_rcpt *b)
{
    ck_assert_int_eq(addr_mailbox_equal(&a->addr, &b->addr), 1);
    ck_assert_str_eq(a->orcpt_type, b->orcpt_type);
    ck_assert_str_eq(a->orcpt, b->orcpt);
    ck_assert_uint_eq(a->notify, b->notify);
    ck_assert_int_eq(a->state, b->state);
    ck_assert_uint_eq(a->attempts, b->attempts);
    ck_assert_int_eq(a->next_attempt, b->next_attempt);
    ck_assert_int_eq(a->first_failure, b->first_failure);
    ck_assert_uint_eq(a->notified, b->notified);
    ck_assert_str_eq(a->status, b->status);
    ck_assert_str_eq(a->remote, b->remote);
    ck_assert_str_eq(a->reply, b->reply);
    ck_assert_str_eq(a->why, b->why);
}

static void env_equal(const struct envelope *a, const struct envelope *b)
{
    ck_assert_str_eq(a->id, b->id);
    ck_assert_int_eq(a->arrived, b->arrived);
    ck_assert_int_eq(a->from.null_path, b->from.null_path);
    if (!a->from.null_path)
        ck_assert_int_eq(addr_mailbox_equal(&a->from, &b->from), 1);
    ck_assert_str_eq(a->client, b->client);
    ck_assert_str_eq(a->helo, b->helo);
    ck_assert_str_eq(a->auth_user, b->auth_user);
    ck_assert_int_eq(a->body, b->body);
    ck_assert_int_eq(a->ret, b->ret);
    ck_assert_str_eq(a->envid, b->envid);
    ck_assert_uint_eq(a->n_rcpt, b->n_rcpt);
    for (size_t i = 0; i < a->n_rcpt; i++)
        rcpt_equal(&a->rcpt[i], &b->rcpt[i]);
}

/* Replace the end line with a correct one, so a test can reach a field check. */
static size_t reseal(char *buf, size_t len)
{
    size_t start = len - 1;
    while (start > 0 && buf[start - 1] != '\n')
        start--;
    unsigned lines = 0;
    for (size_t i = 0; i < start; i++)
        lines += buf[i] == '\n';
    return start + (size_t)sprintf(buf + start, "end %u %08lx\n", lines,
                                   (unsigned long)env_crc32(buf, start));
}

START_TEST(test_round_trip)
{
    struct envelope e, f;
    struct env_error err;
    size_t len;
    sample(&e);
    char *text = format_alloc(&e, &len);
    env_init(&f);
    ck_assert_msg(env_parse(text, len, &f, &err) == 0, "line %u: %s", err.line, err.rule);
    env_equal(&e, &f);
    ck_assert_ptr_nonnull(strstr(text, "imsvc-envelope 1\nid 20261123T133000.0001-a\n"));
    ck_assert_ptr_nonnull(strstr(text, "\norcpt rfc822;Bob+2BTag@example.net\n"));
    ck_assert_ptr_nonnull(strstr(text, "\nnotify failure,delay\n"));
    ck_assert_ptr_nonnull(strstr(text, "\nauth-user EXAMPLE\\alice\n"));

    /* and the text it prints again is the same text */
    size_t len2;
    char *text2 = format_alloc(&f, &len2);
    ck_assert_uint_eq(len, len2);
    ck_assert_int_eq(memcmp(text, text2, len), 0);
    free(text);
    free(text2);
    env_free(&e);
    env_free(&f);
}
END_TEST

START_TEST(test_null_sender_and_small_buffer)
{
    struct envelope e, f;
    struct env_error err;
    char small[40];
    sample(&e);
    e.from.null_path = 1;
    size_t need = env_format(&e, small, sizeof small);
    ck_assert_uint_gt(need, sizeof small);
    ck_assert_uint_eq(strlen(small), sizeof small - 1);
    size_t len;
    char *text = format_alloc(&e, &len);
    ck_assert_uint_eq(len, need);
    ck_assert_ptr_nonnull(strstr(text, "\nfrom <>\n"));
    env_init(&f);
    ck_assert_int_eq(env_parse(text, len, &f, &err), 0);
    ck_assert_int_eq(f.from.null_path, 1);
    free(text);
    env_free(&e);
    env_free(&f);
}
END_TEST

START_TEST(test_every_truncation_rejected)
{
    struct envelope e, f;
    struct env_error err;
    size_t len;
    sample(&e);
    char *text = format_alloc(&e, &len);
    env_init(&f);
    for (size_t k = 0; k < len; k++) {
        ck_assert_msg(env_parse(text, k, &f, &err) == -1, "accepted a cut at %zu", k);
        ck_assert_ptr_nonnull(err.rule);
        ck_assert_uint_gt(err.line, 0);
        ck_assert_uint_eq(f.n_rcpt, 0);
    }
    /* zeros where a write never landed, and a single changed octet */
    char *copy = malloc(len);
    for (size_t k = 0; k < len; k += 7) {
        memcpy(copy, text, len);
        copy[k] = copy[k] == 'x' ? 'y' : 'x';
        ck_assert_msg(env_parse(copy, len, &f, &err) == -1, "accepted a change at %zu", k);
    }
    memcpy(copy, text, len);
    memset(copy + len / 2, 0, 16);
    ck_assert_int_eq(env_parse(copy, len, &f, &err), -1);
    ck_assert_str_eq(err.rule, "NUL octet: torn write");
    free(copy);
    free(text);
    env_free(&e);
}
END_TEST

START_TEST(test_hostile_reply_escaped)
{
    struct envelope e, f;
    struct env_error err;
    size_t len;
    static const char hostile[] =
        "550 5.7.1 no\r\nstate delivered\nend 3 00000000\n%41 \x01\x7f\xff tab\there";
    sample(&e);
    strcpy(e.rcpt[1].reply, hostile);
    strcpy(e.rcpt[1].why, "100% sure\r\n");
    strcpy(e.helo, "evil\nrcpt <mallory@example.com>");
    char *text = format_alloc(&e, &len);
    ck_assert_ptr_null(strchr(text, '\r'));
    ck_assert_ptr_null(strstr(text, "\nstate delivered\nend"));
    ck_assert_ptr_null(strstr(text, "\nrcpt <mallory"));
    ck_assert_ptr_nonnull(strstr(text, "\nreply 550 5.7.1 no%0D%0Astate delivered%0Aend 3 00000000%0A%2541 %01%7F%FF tab%09here\n"));
    ck_assert_ptr_nonnull(strstr(text, "\nwhy 100%25 sure%0D%0A\n"));
    unsigned lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    ck_assert_uint_eq(lines, 10 + 12 * 3 + 1);
    env_init(&f);
    ck_assert_int_eq(env_parse(text, len, &f, &err), 0);
    ck_assert_str_eq(f.rcpt[1].reply, hostile);
    ck_assert_str_eq(f.helo, e.helo);
    free(text);
    env_free(&e);
    env_free(&f);
}
END_TEST

/* A line edited in place (and resealed) is named by its number. */
struct bad_line {
    const char *from;   /* text to replace (first occurrence) */
    const char *to;
    unsigned line;
    const char *rule;
};

static const struct bad_line bad_lines[] = {
    { "imsvc-envelope 1\n", "imsvc-envelope 2\n", 1, "unsupported version" },
    { "\nid 2026", "\nid /2026", 2, "bad queue ID" },
    { "\narrived 1795440000\n", "\narrived -1\n", 3, "bad number" },
    { "\narrived 1795440000\n", "\narrived 01795440000\n", 3, "bad number" },
    { "\nfrom <alice@example.org>\n", "\nfrom alice@example.org\n", 4, NULL },
    { "\nhelo client", "\nHELO client", 6, "unexpected line" },
    { "\nbody 8bitmime\n", "\nbody 9bitmime\n", 8, "unknown keyword" },
    { "\nenvid QQ314159\n", "\nenvid QQ%3\n", 10, "escape cut short" },
    { "\nenvid QQ314159\n", "\nenvid QQ%zz\n", 10, "bad escape" },
    { "\nenvid QQ314159\n", "\nenvid QQ%00\n", 10, "escaped NUL" },
    { "\nenvid QQ314159\n", "\nenvid QQ\t\n", 10, "unescaped control or 8-bit octet" },
    { "\norcpt rfc822;", "\norcpt ;", 12, "bad ORCPT" },
    { "\nnotify failure,delay\n", "\nnotify failure,failure\n", 13, "unknown or repeated flag" },
    { "\nstate pending\n", "\nstate sleeping\n", 14, "unknown keyword" },
    { "\nattempts 0\n", "\nattempts 1000001\n", 15, "number out of range" },
    { "\nstatus 4.2.2\n", "\nstatus 4.2\n", 31, "bad enhanced status code" },
    { "\nwhy \n", "\n", 22, "unexpected line" },
};

START_TEST(test_bad_line_named)
{
    const struct bad_line *c = &bad_lines[_i];
    struct envelope e, f;
    struct env_error err;
    size_t len;
    sample(&e);
    char *text = format_alloc(&e, &len);
    char *buf = malloc(len + 64);
    char *at = strstr(text, c->from);
    ck_assert_ptr_nonnull(at);
    size_t pre = (size_t)(at - text);
    memcpy(buf, text, pre);
    strcpy(buf + pre, c->to);
    strcat(buf, at + strlen(c->from));
    size_t blen = reseal(buf, strlen(buf));
    env_init(&f);
    ck_assert_int_eq(env_parse(buf, blen, &f, &err), -1);
    ck_assert_uint_eq(err.line, c->line);
    if (c->rule)
        ck_assert_str_eq(err.rule, c->rule);
    ck_assert_uint_eq(f.n_rcpt, 0);
    free(buf);
    free(text);
    env_free(&e);
}
END_TEST

START_TEST(test_end_line)
{
    struct envelope e, f;
    struct env_error err;
    size_t len;
    sample(&e);
    char *text = format_alloc(&e, &len);
    env_init(&f);
    /* trailing bytes after the end line */
    char *buf = malloc(len + 8);
    memcpy(buf, text, len);
    memcpy(buf + len, "x\n", 2);
    ck_assert_int_eq(env_parse(buf, len + 2, &f, &err), -1);
    ck_assert_str_eq(err.rule, "truncated: no end line");
    /* a whole recipient block dropped, end line kept */
    char *third = strstr(text, "\nrcpt <\"dan");
    char *endl = strstr(text, "\nend ");
    size_t pre = (size_t)(third - text) + 1;
    memcpy(buf, text, pre);
    strcpy(buf + pre, endl + 1);
    ck_assert_int_eq(env_parse(buf, strlen(buf), &f, &err), -1);
    ck_assert_str_eq(err.rule, "line count does not match: torn write");
    /* no recipients at all, resealed */
    char *first = strstr(text, "\nrcpt ");
    pre = (size_t)(first - text) + 1;
    memcpy(buf, text, pre);
    strcpy(buf + pre, "end 0 00000000\n");
    size_t blen = reseal(buf, strlen(buf));
    ck_assert_int_eq(env_parse(buf, blen, &f, &err), -1);
    ck_assert_uint_eq(err.line, 11);
    /* hex in upper case is not what we write */
    memcpy(buf, text, len + 1);
    for (char *q = strstr(buf, "\nend ") + 5; *q; q++)
        if (*q >= 'a' && *q <= 'f')
            *q = (char)(*q - 'a' + 'A');
    if (strcmp(buf, text) != 0) {
        ck_assert_int_eq(env_parse(buf, len, &f, &err), -1);
        ck_assert_str_eq(err.rule, "bad end line");
    }
    free(buf);
    free(text);
    env_free(&e);
}
END_TEST

/* Every way an end line can differ from what env_format writes is refused. */
START_TEST(test_end_line_forms)
{
    struct envelope e, f;
    struct env_error err;
    size_t len;
    sample(&e);
    char *text = format_alloc(&e, &len);
    env_init(&f);
    char *endl = strstr(text, "\nend ");
    ck_assert_ptr_nonnull(endl);
    size_t pre = (size_t)(endl - text) + 1;
    unsigned lines;
    unsigned long crc;
    ck_assert_int_eq(sscanf(endl + 1, "end %u %lx", &lines, &crc), 2);
    char forms[8][64];
    snprintf(forms[0], sizeof forms[0], "end 0%u %08lx\n", lines, crc);   /* leading zero */
    snprintf(forms[1], sizeof forms[1], "end %u %09lx\n", lines, crc);    /* nine digits */
    snprintf(forms[2], sizeof forms[2], "end %u %07lx\n", lines, crc & 0xfffffffu);
    snprintf(forms[3], sizeof forms[3], "end %u  %08lx\n", lines, crc);   /* two spaces */
    snprintf(forms[4], sizeof forms[4], "end %u %08lx \n", lines, crc);   /* trailing space */
    snprintf(forms[5], sizeof forms[5], "end +%u %08lx\n", lines, crc);   /* a sign */
    snprintf(forms[6], sizeof forms[6], "end %u\n", lines);               /* no checksum */
    snprintf(forms[7], sizeof forms[7], "end 4294967296%u %08lx\n", lines, crc); /* too big */
    char *buf = malloc(len + 64);
    for (size_t i = 0; i < 8; i++) {
        memcpy(buf, text, pre);
        strcpy(buf + pre, forms[i]);
        ck_assert_int_eq(env_parse(buf, strlen(buf), &f, &err), -1);
        ck_assert_str_eq(err.rule, "bad end line");
    }
    /* and the line as written is taken */
    memcpy(buf, text, len + 1);
    ck_assert_int_eq(env_parse(buf, len, &f, &err), 0);
    env_free(&f);
    free(buf);
    free(text);
    env_free(&e);
}
END_TEST

/* The table-driven CRC against the check value of CRC-32 (IEEE) and against
 * the bitwise definition over every byte value, whole and in pieces. */
START_TEST(test_crc32_values)
{
    ck_assert_uint_eq(env_crc32("123456789", 9), 0xcbf43926u);
    ck_assert_uint_eq(env_crc32("", 0), 0u);
    ck_assert_uint_eq(env_crc32_update(env_crc32_update(0, "1234", 4), "56789", 5), 0xcbf43926u);
    unsigned char all[512];
    for (size_t i = 0; i < sizeof all; i++)
        all[i] = (unsigned char)(i * 7u);
    uint32_t bit = 0xffffffffu;
    for (size_t i = 0; i < sizeof all; i++) {
        bit ^= all[i];
        for (int k = 0; k < 8; k++)
            bit = (bit >> 1) ^ (0xedb88320u & (0u - (bit & 1u)));
    }
    bit ^= 0xffffffffu;
    ck_assert_uint_eq(env_crc32((const char *)all, sizeof all), bit);
    ck_assert_uint_eq(env_crc32_update(env_crc32_update(0, all, 100), all + 100, sizeof all - 100),
                      bit);
}
END_TEST

START_TEST(test_invalid_not_written)
{
    struct envelope e;
    char buf[4096];
    sample(&e);
    strcpy(e.id, "../etc");
    ck_assert_uint_eq(env_format(&e, buf, sizeof buf), 0);
    ck_assert_str_eq(buf, "");
    strcpy(e.id, "ok");
    strcpy(e.rcpt[0].status, "6.0.0");
    ck_assert_uint_eq(env_format(&e, buf, sizeof buf), 0);
    env_free(&e);
    env_init(&e);
    strcpy(e.id, "ok");
    ck_assert_uint_eq(env_format(&e, buf, sizeof buf), 0);  /* no recipients */
    struct addr_path p;
    p.null_path = 1;
    ck_assert_int_eq(env_add_rcpt(&e, &p, NULL), -1);
    env_free(&e);
}
END_TEST

START_TEST(test_helpers)
{
    struct envelope e;
    size_t idx[4];
    sample(&e);
    /* rcpt 0 pending (next 0), rcpt 1 deferred until 1795441810, rcpt 2 delivered */
    ck_assert_uint_eq(env_due(&e, 1795440100, idx, 4), 1);
    ck_assert_uint_eq(idx[0], 0);
    ck_assert_uint_eq(env_due(&e, 1795441810, idx, 4), 2);
    ck_assert_uint_eq(idx[1], 1);
    ck_assert_uint_eq(env_due(&e, 1795441810, idx, 1), 2);
    ck_assert_int_eq(env_next_attempt(&e), 0);
    ck_assert_int_eq(env_done(&e), 0);
    e.rcpt[0].state = ENV_DELIVERED;
    ck_assert_int_eq(env_next_attempt(&e), 1795441810);
    ck_assert_int_eq(env_done(&e), 0);
    e.rcpt[1].state = ENV_FAILED;
    ck_assert_int_eq(env_done(&e), 1);
    ck_assert_int_eq(env_next_attempt(&e), -1);
    ck_assert_uint_eq(env_due(&e, 1795441810, idx, 4), 0);
    ck_assert_str_eq(env_state_name(ENV_DEFERRED), "deferred");
    env_free(&e);
}
END_TEST

Suite *envelope_suite(void)
{
    Suite *s = suite_create("envelope");
    TCase *tc = tcase_create("format");
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_null_sender_and_small_buffer);
    tcase_add_test(tc, test_every_truncation_rejected);
    tcase_add_test(tc, test_hostile_reply_escaped);
    tcase_add_loop_test(tc, test_bad_line_named, 0, (int)(sizeof bad_lines / sizeof bad_lines[0]));
    tcase_add_test(tc, test_end_line);
    tcase_add_test(tc, test_end_line_forms);
    tcase_add_test(tc, test_crc32_values);
    tcase_add_test(tc, test_invalid_not_written);
    tcase_add_test(tc, test_helpers);
    suite_add_tcase(s, tc);
    return s;
}
