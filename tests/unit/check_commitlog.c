/* check_commitlog.c - the commit-log record format: what is written reads
 * back field for field; a torn tail ends the read at the last whole record;
 * no record that was changed in any octet, or written in any form but the
 * writer's, is accepted. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "commitlog.h"

static const char ENV[] = "id 01DC1234ABCD5678.00120001\nfrom <a@example.org>\nrcpt <b@example.net>\n";
static const char BODY[] = "Received: from x\r\nSubject: t\r\n\r\nhello\r\n";

/* A whole record into out (as service/spool/spool.c writes one); its length. */
static size_t put_rec(char kind, const char *id, unsigned flags, const char *env,
                      const char *content, size_t clen, unsigned char *out, size_t cap)
{
    char head[CLOG_HEAD_MAX], tail[CLOG_TAIL_MAX];
    size_t env_len = strlen(env);
    uint32_t ccrc = env_crc32_update(0, content, clen);
    size_t hn = clog_format_head(kind, id, flags, env_len, clen, ccrc, head, sizeof head);
    ck_assert_uint_gt(hn, 0);
    size_t tn = clog_format_tail(head, hn, env, env_len, tail, sizeof tail);
    ck_assert_uint_gt(tn, 0);
    size_t inl = (flags & CLOG_INLINE) ? clen : 0;
    ck_assert_uint_le(hn + env_len + inl + tn, cap);
    memcpy(out, head, hn);
    memcpy(out + hn, env, env_len);
    memcpy(out + hn + env_len, content, inl);
    memcpy(out + hn + env_len + inl, tail, tn);
    return hn + env_len + inl + tn;
}

START_TEST(test_round_trip_inline)
{
    unsigned char buf[1024];
    size_t n = put_rec('C', "01DC1234ABCD5678.00120001", CLOG_INLINE | CLOG_HOLD, ENV, BODY,
                       strlen(BODY), buf, sizeof buf);
    struct clog_rec r;
    ck_assert_uint_eq(clog_parse(buf, n, &r), n);
    ck_assert_int_eq(r.kind, 'C');
    ck_assert_str_eq(r.id, "01DC1234ABCD5678.00120001");
    ck_assert_uint_eq(r.flags, CLOG_INLINE | CLOG_HOLD);
    ck_assert_uint_eq(r.env_len, strlen(ENV));
    ck_assert_int_eq(memcmp(r.env, ENV, r.env_len), 0);
    ck_assert_ptr_nonnull(r.content);
    ck_assert_uint_eq(r.clen, strlen(BODY));
    ck_assert_int_eq(memcmp(r.content, BODY, strlen(BODY)), 0);
    ck_assert_uint_eq(r.ccrc, env_crc32(BODY, strlen(BODY)));
    /* the head as written */
    ck_assert_int_eq(memcmp(buf, "rec 1 C 01DC1234ABCD5678.00120001 3 ", 36), 0);
}
END_TEST

/* A spilled message: only its size and CRC are logged, the content is a file. */
START_TEST(test_round_trip_spilled)
{
    unsigned char buf[512];
    char head[CLOG_HEAD_MAX], tail[CLOG_TAIL_MAX];
    size_t hn = clog_format_head('C', "A.B", 0, strlen(ENV), 5000000000ull, 0xdeadbeefu, head,
                                 sizeof head);
    ck_assert_str_eq(head, "rec 1 C A.B 0 71 5000000000 deadbeef\n");
    size_t tn = clog_format_tail(head, hn, ENV, strlen(ENV), tail, sizeof tail);
    memcpy(buf, head, hn);
    memcpy(buf + hn, ENV, strlen(ENV));
    memcpy(buf + hn + strlen(ENV), tail, tn);
    size_t n = hn + strlen(ENV) + tn;
    struct clog_rec r;
    ck_assert_uint_eq(clog_parse(buf, n, &r), n);
    ck_assert_ptr_null(r.content);
    ck_assert_uint_eq(r.clen, 5000000000ull);
    ck_assert_uint_eq(r.ccrc, 0xdeadbeefu);
    ck_assert_uint_eq(r.flags, 0);
}
END_TEST

START_TEST(test_removal)
{
    char out[CLOG_HEAD_MAX + CLOG_TAIL_MAX];
    size_t n = clog_format_removal("X-1_y", out, sizeof out);
    ck_assert_uint_gt(n, 0);
    ck_assert_uint_eq(strlen(out), n);
    ck_assert_int_eq(memcmp(out, "rec 1 D X-1_y 0 0 0 00000000\nend ", 33), 0);
    struct clog_rec r;
    ck_assert_uint_eq(clog_parse((const unsigned char *)out, n, &r), n);
    ck_assert_int_eq(r.kind, 'D');
    ck_assert_str_eq(r.id, "X-1_y");
    /* too small a buffer: nothing, never a cut record */
    ck_assert_uint_eq(clog_format_removal("X-1_y", out, n), 0);
    ck_assert_uint_eq(clog_format_removal("bad/id", out, sizeof out), 0);
}
END_TEST

struct seen {
    unsigned n;
    char ids[8][ENV_ID_MAX + 1];
};

static void collect(void *arg, const struct clog_rec *r)
{
    struct seen *s = arg;
    if (s->n < 8)
        strcpy(s->ids[s->n], r->id);
    s->n++;
}

/* Three records; the log cut at every length: exactly the whole ones are read. */
START_TEST(test_torn_tail)
{
    unsigned char buf[2048];
    size_t end[3], n = 0;
    n += put_rec('C', "one", CLOG_INLINE, ENV, BODY, strlen(BODY), buf + n, sizeof buf - n);
    end[0] = n;
    char rm[128];
    size_t k = clog_format_removal("one", rm, sizeof rm);
    memcpy(buf + n, rm, k);
    n += k;
    end[1] = n;
    n += put_rec('C', "three", 0, ENV, BODY, strlen(BODY), buf + n, sizeof buf - n);
    end[2] = n;
    for (size_t cut = 0; cut <= n; cut++) {
        struct seen s = { 0 };
        size_t got = clog_read(buf, cut, collect, &s);
        unsigned want = (cut >= end[0]) + (cut >= end[1]) + (cut >= end[2]);
        ck_assert_uint_eq(s.n, want);
        ck_assert_uint_eq(got, want ? end[want - 1] : 0);
    }
    struct seen s = { 0 };
    clog_read(buf, n, collect, &s);
    ck_assert_str_eq(s.ids[0], "one");
    ck_assert_str_eq(s.ids[1], "one");
    ck_assert_str_eq(s.ids[2], "three");
}
END_TEST

/* Any one octet changed, anywhere in a record: it is not read. */
START_TEST(test_every_octet_checked)
{
    unsigned char buf[1024];
    size_t n = put_rec('C', "ID9", CLOG_INLINE, ENV, BODY, strlen(BODY), buf, sizeof buf);
    for (size_t i = 0; i < n; i++) {
        for (unsigned bit = 0; bit < 8; bit++) {
            buf[i] ^= (unsigned char)(1u << bit);
            struct clog_rec r;
            ck_assert_msg(clog_parse(buf, n, &r) == 0, "octet %zu bit %u changed, still read", i,
                          bit);
            buf[i] ^= (unsigned char)(1u << bit);
        }
    }
    struct clog_rec r;
    ck_assert_uint_eq(clog_parse(buf, n, &r), n);
}
END_TEST

/* First lines in forms the writer never makes: refused, even with a good CRC. */
static const char *const bad_heads[] = {
    "rec 1 C id 0 10 0 00000000\n",       /* (good, for the count below) */
    "rec 2 C id 0 10 0 00000000\n",       /* another version */
    "rec 1 X id 0 10 0 00000000\n",       /* unknown kind */
    "rec 1 C id 0 +10 0 00000000\n",      /* sign */
    "rec 1 C id 0 010 0 00000000\n",      /* leading zero */
    "rec 1 C id 0  10 0 00000000\n",      /* two spaces */
    "rec 1 C id 0 10 0 0000000A\n",       /* upper-case hex */
    "rec 1 C id 0 10 0 0000000\n",        /* short CRC */
    "rec 1 C id 0 10 0 000000000\n",      /* long CRC */
    "rec 1 C id 4 10 0 00000000\n",       /* unknown flag */
    "rec 1 C i/d 0 10 0 00000000\n",      /* not a queue ID */
    "rec 1 C .. 0 10 0 00000000\n",       /* only valid characters: accepted */
    "rec 1 C id 0 10 0 00000000 \n",      /* trailing space */
    "rec 1 C id 0 10 0 00000000\r\n",     /* CR */
    "rec 1 C id 0 4194305 0 00000000\n",  /* envelope over CLOG_ENV_MAX */
    "rec 1 C id 1 10 1048577 00000000\n", /* inline content over CLOG_INLINE_MAX */
    "rec 1 C id 0 10 18446744073709551616 00000000\n", /* 2^64 */
    "rec 1 D id 0 10 0 00000000\n",       /* a removal with an envelope */
    "rec 1 C  0 10 0 00000000\n",         /* empty ID */
    "rec 1 C 12345678901234567890123456789012345678901234567890123456789012345 0 10 0 00000000\n",
};
static const int bad_heads_ok[] = { 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0 };

START_TEST(test_strict_head)
{
    const char *h = bad_heads[_i];
    struct clog_rec r;
    ck_assert_int_eq(clog_parse_head(h, strlen(h), &r) == 0, bad_heads_ok[_i]);
    /* as a whole record with a right CRC too */
    unsigned char buf[512];
    const char *env = "0123456789";
    size_t hn = strlen(h);
    char tail[CLOG_TAIL_MAX];
    size_t tn = clog_format_tail(h, hn, env, 10, tail, sizeof tail);
    memcpy(buf, h, hn);
    memcpy(buf + hn, env, 10);
    memcpy(buf + hn + 10, tail, tn);
    ck_assert_int_eq(clog_parse(buf, hn + 10 + tn, &r) != 0, bad_heads_ok[_i]);
}
END_TEST

START_TEST(test_id_valid)
{
    ck_assert_int_eq(env_id_valid("01DC1234ABCD5678.00120001"), 1);
    ck_assert_int_eq(env_id_valid("a-b_c.D"), 1);
    ck_assert_int_eq(env_id_valid(""), 0);
    ck_assert_int_eq(env_id_valid("a b"), 0);
    ck_assert_int_eq(env_id_valid("a\\b"), 0);
    ck_assert_int_eq(env_id_valid("a/b"), 0);
    ck_assert_int_eq(env_id_valid("a:b"), 0);
    ck_assert_int_eq(env_id_valid("\xc3\xa9"), 0);
    char id[ENV_ID_MAX + 2];
    memset(id, 'a', sizeof id - 1);
    id[ENV_ID_MAX] = 0;
    ck_assert_int_eq(env_id_valid(id), 1);
    id[ENV_ID_MAX] = 'a';
    id[ENV_ID_MAX + 1] = 0;
    ck_assert_int_eq(env_id_valid(id), 0);
}
END_TEST

/* The writer refuses what the reader would refuse. */
START_TEST(test_format_refuses)
{
    char head[CLOG_HEAD_MAX];
    ck_assert_uint_eq(clog_format_head('C', "a/b", 0, 1, 0, 0, head, sizeof head), 0);
    ck_assert_uint_eq(clog_format_head('Q', "ab", 0, 1, 0, 0, head, sizeof head), 0);
    ck_assert_uint_eq(clog_format_head('C', "ab", 8, 1, 0, 0, head, sizeof head), 0);
    ck_assert_uint_eq(clog_format_head('C', "ab", CLOG_INLINE, 1, CLOG_INLINE_MAX + 1, 0, head,
                                       sizeof head), 0);
    ck_assert_uint_eq(clog_format_head('C', "ab", 0, CLOG_ENV_MAX + 1, 0, 0, head, sizeof head), 0);
    ck_assert_uint_eq(clog_format_head('C', "ab", 0, 1, 0, 0, head, 10), 0);
    ck_assert_uint_gt(clog_format_head('C', "ab", 0, 1, 0, 0, head, sizeof head), 0);
}
END_TEST

Suite *commitlog_suite(void)
{
    Suite *s = suite_create("commitlog");
    TCase *tc = tcase_create("records");
    tcase_add_test(tc, test_round_trip_inline);
    tcase_add_test(tc, test_round_trip_spilled);
    tcase_add_test(tc, test_removal);
    tcase_add_test(tc, test_torn_tail);
    tcase_add_test(tc, test_every_octet_checked);
    tcase_add_loop_test(tc, test_strict_head, 0, (int)(sizeof bad_heads / sizeof bad_heads[0]));
    tcase_add_test(tc, test_id_valid);
    tcase_add_test(tc, test_format_refuses);
    suite_add_tcase(s, tc);
    return s;
}
