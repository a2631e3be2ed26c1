/* check_tls.c - the secure stream (sspi/tls.c) with a Schannel client and
 * server in one process, bytes shuttled in memory (no sockets), under Wine.
 *
 * The invariant from DESIGN.md: whatever the segmentation of the same byte
 * stream (1-byte reads, one read holding every record, the handshake's last
 * flight together with application records, random cuts), the plaintext
 * delivered is identical; so is it when the consumer lags and takes the
 * plaintext in odd pieces (held in place, then through the app queue), and
 * when a renegotiation arrives while plaintext is held. Also: close_notify,
 * a truncated record, a flipped bit (4131 with f3 03 15 00 0f 03 09 80),
 * records cut at cbMaximumMessage,
 * the negotiated-strength policy, certificates (self-signed, store, check).
 * TLS decided at the handshake: the policy in the credentials (protocols,
 * and suites where the platform can), the AEAD-only policy, a client's
 * renegotiation refused by the server and the renegotiation bounds, and
 * outbound credentials kept per destination (sspi/tlscache.c). A minimal
 * TLS 1.2 client over CNG (tls_raw_peer.h) plays the peers Schannel's own
 * client cannot under Wine.
 */
#include <check.h>
#include <windows.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cert.h"
#include "eventlog.h"
#include "evt.h"
#include "location.h"
#include "tls.h"
#include "tlscache.h"
#include "tls_raw_peer.h"
#include "tls_test_pfx.h"

#define SEGMENTATIONS 1000
#define SEED 0x1DB0u

/* The conversation: record sizes chosen to cross every boundary that
 * matters (1 byte, odd sizes, exactly 16 KiB, 16 KiB +- 1, several records
 * in one write). */
static const size_t SIZES[] = { 1, 2, 5, 17, 100, 512, 1000, 4096, 16384, 16383, 7,
                                16385, 8191, 3000, 40000, 64, 16384, 3 };

static PCCERT_CONTEXT g_cert;
static struct tls_cred g_scred, g_ccred;
static unsigned char *g_conv;  /* the conversation's plaintext */
static size_t g_conv_len;

static void need_creds(void)
{
    if (g_cert)
        return;
    DWORD rc = cert_new(L"CN=localhost", CERT_NEW_NO_STORE | CERT_NEW_USER_KEYSET, &g_cert, NULL);
    ck_assert_msg(rc == ERROR_SUCCESS, "cert_new: 0x%08lx", (unsigned long)rc);
    SECURITY_STATUS st = tls_cred_server(&g_scred, g_cert, NULL);
    ck_assert_msg(st == SEC_E_OK, "tls_cred_server: 0x%08lx", (unsigned long)st);
    st = tls_cred_client(&g_ccred, NULL);
    ck_assert_msg(st == SEC_E_OK, "tls_cred_client: 0x%08lx", (unsigned long)st);

    for (size_t i = 0; i < ARRAYSIZE(SIZES); i++)
        g_conv_len += SIZES[i];
    g_conv = malloc(g_conv_len);
    ck_assert_ptr_nonnull(g_conv);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < g_conv_len; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        g_conv[i] = (unsigned char)x;
    }
}

/* Seeded xorshift32, so a failing segmentation can be replayed. */
static uint32_t rnd_state;
static uint32_t rnd(void)
{
    uint32_t x = rnd_state;
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    return rnd_state = x;
}

struct pair {
    struct tls_stream *c, *s;
};

static void pair_new(struct pair *p, const struct tls_policy *spol, enum tls_trust trust)
{
    need_creds();
    struct tls_config cc = { NULL, L"localhost", trust };
    struct tls_config sc = { spol, NULL, TLS_TRUST_ANY };
    SECURITY_STATUS st = tls_new(&p->c, &g_ccred, &cc);
    ck_assert_msg(st == SEC_E_OK, "client tls_new: 0x%08lx", (unsigned long)st);
    st = tls_new(&p->s, &g_scred, &sc);
    ck_assert_msg(st == SEC_E_OK, "server tls_new: 0x%08lx", (unsigned long)st);
}

static void pair_free(struct pair *p)
{
    tls_free(p->c);
    tls_free(p->s);
}

/* Move everything from's output holds into to, in one read. */
static SECURITY_STATUS move(struct tls_stream *from, struct tls_stream *to)
{
    size_t n;
    const unsigned char *b = tls_out_buf(from, &n);
    if (!n)
        return tls_status(to);
    SECURITY_STATUS st = tls_feed(to, b, n);
    tls_out_done(from, n);
    return st;
}

static void handshake(struct pair *p)
{
    for (int i = 0; i < 16; i++) {
        size_t a, b;
        tls_out_buf(p->c, &a);
        tls_out_buf(p->s, &b);
        if (!a && !b && tls_state(p->c) != TLS_ST_HANDSHAKE && tls_state(p->s) != TLS_ST_HANDSHAKE)
            break;
        move(p->c, p->s);
        move(p->s, p->c);
    }
    ck_assert_msg(tls_state(p->c) == TLS_ST_OPEN, "client state %d status 0x%08lx",
                  tls_state(p->c), (unsigned long)tls_status(p->c));
    ck_assert_msg(tls_state(p->s) == TLS_ST_OPEN, "server state %d status 0x%08lx",
                  tls_state(p->s), (unsigned long)tls_status(p->s));
}

/* The writer's records of one conversation, as one byte array (malloc'd). */
static unsigned char *write_conversation(struct tls_stream *w, size_t *len)
{
    size_t off = 0;
    for (size_t i = 0; i < ARRAYSIZE(SIZES); i++) {
        ck_assert_int_eq(tls_write(w, g_conv + off, SIZES[i]), SEC_E_OK);
        off += SIZES[i];
    }
    const unsigned char *b = tls_out_buf(w, len);
    unsigned char *copy = malloc(*len);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, b, *len);
    tls_out_done(w, *len);
    return copy;
}

/* A reader's collected plaintext. */
struct sink {
    unsigned char *p;
    size_t len, cap;
};

static void sink_put(struct sink *k, const unsigned char *b, size_t n)
{
    if (k->len + n > k->cap) {
        k->cap = (k->len + n) * 2;
        k->p = realloc(k->p, k->cap);
        ck_assert_ptr_nonnull(k->p);
    }
    memcpy(k->p + k->len, b, n);
    k->len += n;
}

/* Take all the plaintext, piece by piece as tls_app_buf gives it. */
static void drain(struct tls_stream *r, struct sink *k)
{
    size_t n;
    const unsigned char *b;
    while ((b = tls_app_buf(r, &n)) != NULL && n) {
        sink_put(k, b, n);
        tls_app_done(r, n);
    }
}

/* Feed wire in pieces given by cut() (NULL: one piece), through the
 * buffer-to-fill API on odd pieces and tls_feed on even ones. */
static void deliver(struct tls_stream *r, const unsigned char *wire, size_t len,
                    size_t (*cut)(size_t left), struct sink *k)
{
    size_t off = 0;
    for (unsigned piece = 0; off < len; piece++) {
        size_t n = cut ? cut(len - off) : len - off;
        if (n > len - off)
            n = len - off;
        SECURITY_STATUS st;
        size_t cap;
        unsigned char *in = piece % 2 ? tls_in_buf(r, &cap) : NULL;
        if (in && cap >= n) {
            memcpy(in, wire + off, n);
            st = tls_in_done(r, n);
        } else {
            st = tls_feed(r, wire + off, n);
        }
        ck_assert_msg(st == SEC_E_OK, "piece %u at %zu: status 0x%08lx", piece, off,
                      (unsigned long)st);
        off += n;
        drain(r, k);
    }
}

static void expect_conversation(const struct sink *k, const char *what)
{
    ck_assert_msg(k->len == g_conv_len, "%s: %zu bytes of plaintext, expected %zu", what, k->len,
                  g_conv_len);
    ck_assert_msg(memcmp(k->p, g_conv, g_conv_len) == 0, "%s: plaintext differs", what);
}

static size_t cut_one(size_t left)
{
    (void)left;
    return 1;
}

static size_t cut_random(size_t left)
{
    (void)left;
    uint32_t r = rnd();
    switch (r & 3) {
    case 0: return 1 + (r >> 8) % 8;       /* a few bytes: headers split */
    case 1: return 1 + (r >> 8) % 100;
    case 2: return 1 + (r >> 8) % 5000;
    default: return 1 + (r >> 8) % 40000; /* several records at once */
    }
}

static int running_on_wine(void)
{
    HMODULE nt = GetModuleHandleW(L"ntdll.dll");
    return nt && GetProcAddress(nt, "wine_get_version") != NULL;
}

/* Tests -------------------------------------------------------------------- */

START_TEST(handshake_completes)
{
    struct pair p;
    pair_new(&p, NULL, TLS_TRUST_ANY);
    handshake(&p);
    SecPkgContext_ConnectionInfo ci;
    ck_assert_int_eq(tls_connection_info(p.s, &ci), SEC_E_OK);
    ck_assert_uint_ge(tls_protocol_version(ci.dwProtocol), TLS_V1_2);
    ck_assert_uint_ge(ci.dwCipherStrength, 128);
    ck_assert_uint_eq(tls_handshakes(p.s), 1);
    ck_assert_uint_eq(tls_handshakes(p.c), 1);
    ck_assert_ptr_nonnull(strstr(tls_policy_text(p.s), "negotiated TLS 1."));
    PCCERT_CONTEXT peer;
    ck_assert_int_eq(tls_peer_cert(p.c, &peer), SEC_E_OK);
    ck_assert(CertCompareCertificate(X509_ASN_ENCODING, peer->pCertInfo, g_cert->pCertInfo));
    CertFreeCertificateContext(peer);
    pair_free(&p);
}
END_TEST

START_TEST(one_byte_reads)
{
    struct pair p;
    struct sink k = { 0 };
    size_t len;
    pair_new(&p, NULL, TLS_TRUST_ANY);
    handshake(&p);
    unsigned char *wire = write_conversation(p.c, &len);
    deliver(p.s, wire, len, cut_one, &k);
    expect_conversation(&k, "1-byte reads");
    free(wire);
    free(k.p);
    pair_free(&p);
}
END_TEST

START_TEST(one_read_all_records)
{
    struct pair p;
    struct sink k = { 0 };
    size_t len;
    pair_new(&p, NULL, TLS_TRUST_ANY);
    handshake(&p);
    unsigned char *wire = write_conversation(p.c, &len);
    deliver(p.s, wire, len, NULL, &k);
    expect_conversation(&k, "one read");
    /* And the other direction, server to client. */
    struct sink k2 = { 0 };
    free(wire);
    wire = write_conversation(p.s, &len);
    deliver(p.c, wire, len, NULL, &k2);
    expect_conversation(&k2, "one read, server to client");
    free(wire);
    free(k.p);
    free(k2.p);
    pair_free(&p);
}
END_TEST

/* TLS 1.2: the server's CCS+Finished is the last flight; the server writes
 * at once, and the client gets Finished and records in one read. */
START_TEST(last_flight_with_records)
{
    struct pair p;
    struct sink k = { 0 };
    pair_new(&p, NULL, TLS_TRUST_ANY);
    for (int i = 0; i < 8 && tls_state(p.s) == TLS_ST_HANDSHAKE; i++) {
        move(p.c, p.s);
        if (tls_state(p.s) == TLS_ST_HANDSHAKE)
            move(p.s, p.c);
    }
    ck_assert_int_eq(tls_state(p.s), TLS_ST_OPEN);
    ck_assert_int_eq(tls_state(p.c), TLS_ST_HANDSHAKE);
    size_t off = 0;
    for (size_t i = 0; i < ARRAYSIZE(SIZES); i++) {
        ck_assert_int_eq(tls_write(p.s, g_conv + off, SIZES[i]), SEC_E_OK);
        off += SIZES[i];
    }
    size_t len;
    const unsigned char *b = tls_out_buf(p.s, &len);
    unsigned char *wire = malloc(len);
    memcpy(wire, b, len);
    tls_out_done(p.s, len);
    deliver(p.c, wire, len, NULL, &k);
    ck_assert_int_eq(tls_state(p.c), TLS_ST_OPEN);
    expect_conversation(&k, "last flight + records");
    free(wire);
    free(k.p);
    pair_free(&p);
}
END_TEST

/* The client queues writes while it handshakes: they go out once open. */
START_TEST(write_while_handshaking)
{
    struct pair p;
    struct sink k = { 0 };
    pair_new(&p, NULL, TLS_TRUST_ANY);
    ck_assert_int_eq(tls_write(p.c, g_conv, g_conv_len), SEC_E_OK);
    handshake(&p);
    move(p.c, p.s);
    drain(p.s, &k);
    expect_conversation(&k, "queued while handshaking");
    free(k.p);
    pair_free(&p);
}
END_TEST

START_TEST(random_segmentations)
{
    struct pair p;
    pair_new(&p, NULL, TLS_TRUST_ANY);
    handshake(&p);
    for (unsigned i = 0; i < SEGMENTATIONS; i++) {
        struct sink k = { 0 };
        size_t len;
        rnd_state = SEED + i * 2654435761u;
        if (!rnd_state)
            rnd_state = 1;
        unsigned char *wire = write_conversation(p.c, &len);
        deliver(p.s, wire, len, cut_random, &k);
        if (k.len != g_conv_len || memcmp(k.p, g_conv, g_conv_len))
            ck_abort_msg("segmentation %u (seed 0x%08x): %zu bytes, plaintext differs", i,
                         SEED + i * 2654435761u, k.len);
        free(wire);
        free(k.p);
    }
    pair_free(&p);
}
END_TEST

/* Take at most budget bytes of plaintext, in pieces of 1 to 61 bytes
 * whatever tls_app_buf offers; note the longest piece offered. */
static size_t take_some(struct tls_stream *r, struct sink *k, size_t budget, size_t *longest)
{
    size_t took = 0;
    while (took < budget) {
        size_t n;
        const unsigned char *b = tls_app_buf(r, &n);
        if (!b || !n)
            break;
        if (n > *longest)
            *longest = n;
        size_t want = 1 + rnd() % 61;
        if (want > n)
            want = n;
        if (want > budget - took)
            want = budget - took;
        sink_put(k, b, want);
        tls_app_done(r, want);
        took += want;
    }
    return took;
}

/* The consumer lags: between feeds it takes a few odd-sized pieces, so
 * records pile up held in place, a piece ends inside a record and the next
 * starts there, the ring of held records fills and later records go to the
 * app queue, and records arrive while the app queue holds some. The
 * plaintext is still the conversation, byte for byte. */
#define LAG_RECORD_MAX 3000u
START_TEST(lagging_consumer_odd_pieces)
{
    struct pair p;
    pair_new(&p, NULL, TLS_TRUST_ANY);
    handshake(&p);
    size_t longest_all = 0;
    for (unsigned i = 0; i < 40; i++) {
        rnd_state = SEED + 7919u * (i + 1);
        /* About 80 records of 1 to LAG_RECORD_MAX bytes. */
        for (size_t off = 0; off < g_conv_len;) {
            size_t n = 1 + rnd() % LAG_RECORD_MAX;
            if (n > g_conv_len - off)
                n = g_conv_len - off;
            ck_assert_int_eq(tls_write(p.c, g_conv + off, n), SEC_E_OK);
            off += n;
        }
        size_t len, longest = 0;
        const unsigned char *w = tls_out_buf(p.c, &len);
        unsigned char *wire = malloc(len);
        ck_assert_ptr_nonnull(wire);
        memcpy(wire, w, len);
        tls_out_done(p.c, len);
        struct sink k = { 0 };
        size_t off = 0;
        for (unsigned piece = 0; off < len; piece++) {
            size_t n = cut_random(len - off), cap;
            if (n > len - off)
                n = len - off;
            unsigned char *in = piece % 2 ? tls_in_buf(p.s, &cap) : NULL;
            SECURITY_STATUS st;
            if (in && cap >= n) {
                memcpy(in, wire + off, n);
                st = tls_in_done(p.s, n);
            } else {
                st = tls_feed(p.s, wire + off, n);
            }
            ck_assert_msg(st == SEC_E_OK, "round %u piece %u: 0x%08lx", i, piece, (unsigned long)st);
            off += n;
            take_some(p.s, &k, rnd() % 1500, &longest);
        }
        while (take_some(p.s, &k, (size_t)-1, &longest))
            ;
        if (k.len != g_conv_len || memcmp(k.p, g_conv, g_conv_len))
            ck_abort_msg("round %u: %zu bytes, plaintext differs", i, k.len);
        if (longest > longest_all)
            longest_all = longest;
        free(wire);
        free(k.p);
    }
    /* A piece longer than any record came from the app queue holding
     * several: the ring did fill and records came in behind it. */
    ck_assert_uint_gt(longest_all, LAG_RECORD_MAX);
    pair_free(&p);
}
END_TEST

START_TEST(close_notify_is_clean)
{
    struct pair p;
    struct sink k = { 0 };
    pair_new(&p, NULL, TLS_TRUST_ANY);
    handshake(&p);
    ck_assert_int_eq(tls_write(p.c, "QUIT\r\n", 6), SEC_E_OK);
    ck_assert_int_eq(tls_shutdown(p.c), SEC_E_OK);
    ck_assert(tls_close_sent(p.c));
    ck_assert_int_eq(tls_write(p.c, "x", 1), SEC_E_CONTEXT_EXPIRED);
    ck_assert_int_eq(move(p.c, p.s), SEC_E_OK);
    drain(p.s, &k);
    ck_assert_uint_eq(k.len, 6);
    ck_assert_int_eq(memcmp(k.p, "QUIT\r\n", 6), 0);
    ck_assert_int_eq(tls_state(p.s), TLS_ST_CLOSED);
    ck_assert_int_eq(tls_status(p.s), SEC_E_OK);
    size_t cap;
    ck_assert_ptr_null(tls_in_buf(p.s, &cap));
    /* The server answers with its own close_notify. */
    ck_assert_int_eq(tls_shutdown(p.s), SEC_E_OK);
    ck_assert_int_eq(move(p.s, p.c), SEC_E_OK);
    ck_assert_int_eq(tls_state(p.c), TLS_ST_CLOSED);
    free(k.p);
    pair_free(&p);
}
END_TEST

START_TEST(truncated_record_waits)
{
    struct pair p;
    struct sink k = { 0 };
    pair_new(&p, NULL, TLS_TRUST_ANY);
    handshake(&p);
    ck_assert_int_eq(tls_write(p.c, "hello", 5), SEC_E_OK);
    ck_assert_int_eq(tls_write(p.c, "world", 5), SEC_E_OK);
    size_t len;
    const unsigned char *b = tls_out_buf(p.c, &len);
    ck_assert_int_eq(tls_feed(p.s, b, len - 1), SEC_E_OK);
    ck_assert_int_eq(tls_state(p.s), TLS_ST_OPEN);
    drain(p.s, &k);
    ck_assert_uint_eq(k.len, 5);
    ck_assert_int_eq(tls_feed(p.s, b + len - 1, 1), SEC_E_OK);
    tls_out_done(p.c, len);
    drain(p.s, &k);
    ck_assert_uint_eq(k.len, 10);
    ck_assert_int_eq(memcmp(k.p, "helloworld", 10), 0);
    free(k.p);
    pair_free(&p);
}
END_TEST

START_TEST(flipped_bit_fails_with_4131)
{
    struct pair p;
    struct sink k = { 0 };
    pair_new(&p, NULL, TLS_TRUST_ANY);
    handshake(&p);
    ck_assert_int_eq(tls_write(p.c, "first", 5), SEC_E_OK);
    size_t first;
    tls_out_buf(p.c, &first);
    ck_assert_int_eq(tls_write(p.c, "second record", 13), SEC_E_OK);
    ck_assert_int_eq(tls_write(p.c, "third", 5), SEC_E_OK);
    size_t len;
    const unsigned char *b = tls_out_buf(p.c, &len);
    unsigned char *wire = malloc(len);
    memcpy(wire, b, len);
    tls_out_done(p.c, len);
    wire[first + 5 + 10] ^= 0x08; /* inside the second record's ciphertext */

    /* Windows says SEC_E_MESSAGE_ALTERED; Wine 10 maps GnuTLS's "Decryption
     * has failed" to SEC_E_INTERNAL_ERROR. The stream reports what it saw. */
    SECURITY_STATUS st = tls_feed(p.s, wire, len);
    SECURITY_STATUS expect = running_on_wine() ? SEC_E_INTERNAL_ERROR : SEC_E_MESSAGE_ALTERED;
    ck_assert_msg(st == expect, "status 0x%08lx", (unsigned long)st);
    ck_assert_int_eq(tls_state(p.s), TLS_ST_FAILED);
    ck_assert_uint_eq(tls_fail_location(p.s), LOC_SSPI_DECRYPT);
    drain(p.s, &k);
    ck_assert_uint_eq(k.len, 5); /* the record before the damage was delivered */
    ck_assert_int_eq(tls_feed(p.s, "x", 1), expect); /* dead stays dead */
    ck_assert_int_eq(tls_write(p.s, "x", 1), expect);

    /* The seed incident's payload, and this failure's. */
    static const unsigned char seed[8] = { 0xf3, 0x03, 0x15, 0x00, 0x0f, 0x03, 0x09, 0x80 };
    unsigned char want[8];
    tls_event_data(LOC_SSPI_DECRYPT, (DWORD)SEC_E_MESSAGE_ALTERED, want);
    ck_assert_int_eq(memcmp(want, seed, 8), 0);
    tls_event_data(tls_fail_location(p.s), (DWORD)tls_status(p.s), want);
    ck_assert_int_eq(memcmp(want, seed, 4), 0);
    ck_assert_uint_eq(want[4] | want[5] << 8 | want[6] << 16 | (DWORD)want[7] << 24, (DWORD)expect);

    /* The event as the journal keeps it. */
    wchar_t dir[MAX_PATH], path[MAX_PATH];
    ck_assert_uint_gt(GetTempPathW(ARRAYSIZE(dir), dir), 0);
    ck_assert_uint_ne(GetTempFileNameW(dir, L"tls", 0, path), 0);
    DeleteFileW(path);
    ck_assert_uint_eq(evlog_open(path, 0x10000), ERROR_SUCCESS);
    tls_report_failure(p.s, L"127.0.0.1:2525");
    evlog_close();
    FILE *f = _wfopen(path, L"rb");
    ck_assert_ptr_nonnull(f);
    unsigned char *file;
    size_t flen;
    ck_assert_int_eq(evt_slurp(f, &file, &flen), EVT_OK);
    fclose(f);
    struct evt_reader r;
    struct evt_view v;
    ck_assert_int_eq(evt_reader_init(&r, file, flen), EVT_OK);
    int found = 0;
    while (evt_reader_next(&r, &v) == 1)
        if ((v.event_id & 0xFFFFu) == 4131u) {
            found = 1;
            ck_assert_uint_eq(v.category, CAT_INTERNAL_PROCESSING);
            ck_assert_uint_eq(v.data_len, 8);
            ck_assert_int_eq(memcmp(v.data, want, 8), 0);
            const unsigned char *t;
            size_t units;
            ck_assert_int_eq(evt_view_string(&v, 0, &t, &units), EVT_OK);
            char u8[512];
            evt_utf16le_to_utf8(t, units, u8, sizeof u8);
            char code[16];
            snprintf(code, sizeof code, "0x%08lX", (unsigned long)expect);
            ck_assert_msg(strstr(u8, "DecryptMessage") && strstr(u8, code) &&
                          strstr(u8, "127.0.0.1:2525"), "text: %s", u8);
        }
    evt_reader_free(&r);
    free(file);
    DeleteFileW(path);
    ck_assert(found);
    free(wire);
    free(k.p);
    pair_free(&p);
}
END_TEST

/* A large write becomes records of at most cbMaximumMessage bytes. */
START_TEST(large_write_is_split)
{
    struct pair p;
    struct sink k = { 0 };
    pair_new(&p, NULL, TLS_TRUST_ANY);
    handshake(&p);
    ck_assert_int_eq(tls_write(p.c, g_conv, g_conv_len), SEC_E_OK);
    size_t len, records = 0;
    const unsigned char *b = tls_out_buf(p.c, &len);
    for (size_t off = 0; off < len; records++) {
        ck_assert_uint_ge(len - off, 5);
        size_t body = (size_t)b[off + 3] << 8 | b[off + 4];
        ck_assert_uint_eq(b[off], 23); /* application_data */
        ck_assert_uint_le(body, 16384 + 2048);
        off += 5 + body;
        ck_assert_uint_le(off, len);
    }
    ck_assert_uint_ge(records, (g_conv_len + 16383) / 16384);
    move(p.c, p.s);
    drain(p.s, &k);
    expect_conversation(&k, "one large write");
    free(k.p);
    pair_free(&p);
}
END_TEST

START_TEST(policy_text_names_both_sides)
{
    SecPkgContext_ConnectionInfo ci = { 0 };
    ci.dwProtocol = SP_PROT_TLS1_2_SERVER;
    ci.aiCipher = CALG_AES_256;
    ci.dwCipherStrength = 256;
    ci.aiHash = CALG_SHA_384;
    ci.aiExch = CALG_ECDH_EPHEM;
    ci.dwExchStrength = 256;
    char text[256];
    struct tls_policy def = TLS_POLICY_DEFAULT;
    ck_assert_int_eq(tls_policy_check(&def, &ci, NULL, text, sizeof text), 1);
    ck_assert_str_eq(text, "negotiated TLS 1.2, AES 256-bit, hash SHA-384, exchange ECDHE 256-bit; "
                           "policy requires TLS 1.2 or newer, 128-bit or stronger cipher");
    struct tls_policy v13 = { TLS_V1_3, 128, 0 };
    ck_assert_int_eq(tls_policy_check(&v13, &ci, NULL, text, sizeof text), 0);
    struct tls_policy b512 = { TLS_V1_2, 512, 0 };
    ck_assert_int_eq(tls_policy_check(&b512, &ci, NULL, text, sizeof text), 0);
    ck_assert_ptr_nonnull(strstr(text, "512-bit or stronger"));
    ci.dwProtocol = SP_PROT_TLS1_0_CLIENT;
    ci.aiCipher = CALG_RC4;
    ci.dwCipherStrength = 40;
    ck_assert_int_eq(tls_policy_check(&def, &ci, NULL, text, sizeof text), 0);
    ck_assert_ptr_nonnull(strstr(text, "negotiated TLS 1.0, RC4 40-bit"));
    char small[16];
    tls_policy_check(&def, &ci, NULL, small, sizeof small); /* truncates, stays terminated */
    ck_assert_uint_eq(strlen(small), sizeof small - 1);
}
END_TEST

/* A server whose policy the session cannot meet refuses it, names both
 * sides, and can still say so to the client before closing. */
START_TEST(policy_below_minimum_refused)
{
    static const struct tls_policy pols[2] = { { TLS_V1_3, 128, 0 }, { TLS_V1_2, 512, 0 } };
    static const char *const want[2] = { "policy requires TLS 1.3 or newer", "512-bit or stronger" };
    for (int i = 0; i < 2; i++) {
        struct pair p;
        struct sink k = { 0 };
        pair_new(&p, &pols[i], TLS_TRUST_ANY);
        for (int j = 0; j < 8; j++) {
            move(p.c, p.s);
            move(p.s, p.c);
        }
        ck_assert_int_eq(tls_state(p.s), TLS_ST_REFUSED);
        ck_assert_int_eq(tls_status(p.s), SEC_E_ALGORITHM_MISMATCH);
        ck_assert_uint_eq(tls_fail_location(p.s), LOC_SSPI_POLICY);
        const char *t = tls_policy_text(p.s);
        ck_assert_msg(strstr(t, "negotiated TLS 1.2") && strstr(t, want[i]), "text: %s", t);
        /* Nothing the client says gets through; the 454 reply does. */
        ck_assert_int_eq(tls_write(p.c, "MAIL FROM:<a@b>\r\n", 17), SEC_E_OK);
        move(p.c, p.s);
        size_t n;
        ck_assert_ptr_null(tls_app_buf(p.s, &n));
        ck_assert_int_eq(tls_write(p.s, "454 4.7.0 TLS not available\r\n", 30), SEC_E_OK);
        ck_assert_int_eq(tls_shutdown(p.s), SEC_E_OK);
        move(p.s, p.c);
        drain(p.c, &k);
        ck_assert_uint_eq(k.len, 30);
        ck_assert_int_eq(memcmp(k.p, "454 4.7.0", 9), 0);
        ck_assert_int_eq(tls_state(p.c), TLS_ST_CLOSED);
        free(k.p);
        pair_free(&p);
    }
}
END_TEST

/* Outbound with "verify": a self-signed certificate is not trusted. */
START_TEST(verify_rejects_untrusted)
{
    struct pair p;
    pair_new(&p, NULL, TLS_TRUST_VERIFY);
    for (int j = 0; j < 8; j++) {
        move(p.c, p.s);
        move(p.s, p.c);
    }
    ck_assert_int_eq(tls_state(p.c), TLS_ST_FAILED);
    ck_assert_uint_eq(tls_fail_location(p.c), LOC_SSPI_CERT_VERIFY);
    ck_assert_msg(tls_status(p.c) == CERT_E_UNTRUSTEDROOT, "status 0x%08lx",
                  (unsigned long)tls_status(p.c));
    ck_assert_uint_eq(cert_verify_server(g_cert, L"localhost", 1), ERROR_SUCCESS);
    ck_assert_uint_ne(cert_verify_server(g_cert, L"localhost", 0), ERROR_SUCCESS);
    pair_free(&p);
}
END_TEST

/* `imsvc cert new`: into LocalMachine\MY, found again by thumbprint and by
 * subject, and usable by Schannel. */
START_TEST(cert_new_in_machine_store)
{
    PCCERT_CONTEXT c = NULL, f = NULL;
    unsigned rf = 0;
    DWORD rc = cert_new(L"CN=mail.imsvc.test", 0, &c, &rf);
    ck_assert_msg(rc == ERROR_SUCCESS, "cert_new: 0x%08lx", (unsigned long)rc);
    if (rf & CERT_NEW_USED_USER_KEYSET)
        fprintf(stderr, "check_tls: cert_new: the machine key set is not usable by Schannel here; "
                        "the key went to the user key set\n");
    wchar_t tp[CERT_THUMBPRINT_CHARS + 1];
    ck_assert_uint_eq(cert_thumbprint(c, tp), ERROR_SUCCESS);
    ck_assert_uint_eq(wcslen(tp), 40);
    ck_assert_uint_eq(cert_find(L"MY", CERT_SYSTEM_STORE_LOCAL_MACHINE, tp, &f), ERROR_SUCCESS);
    ck_assert(CertCompareCertificate(X509_ASN_ENCODING, c->pCertInfo, f->pCertInfo));
    CertFreeCertificateContext(f);
    ck_assert_uint_eq(cert_find(L"MY", CERT_SYSTEM_STORE_LOCAL_MACHINE, L"mail.imsvc.test", &f),
                      ERROR_SUCCESS);
    struct tls_cred cr;
    SECURITY_STATUS st = tls_cred_server(&cr, f, NULL);
    ck_assert_msg(st == SEC_E_OK, "tls_cred_server: 0x%08lx", (unsigned long)st);
    tls_cred_free(&cr);
    CertFreeCertificateContext(f);
    ck_assert_uint_eq(cert_find(L"MY", CERT_SYSTEM_STORE_LOCAL_MACHINE, L"no.such.subject", &f),
                      (DWORD)CRYPT_E_NOT_FOUND);
    CertFreeCertificateContext(c);
}
END_TEST

START_TEST(pfx_errors)
{
    PCCERT_CONTEXT c = NULL;
    ck_assert_uint_eq(cert_load_pfx(L"C:\\no\\such.pfx", L"", &c), ERROR_PATH_NOT_FOUND);
    ck_assert_uint_eq(cert_load_pfx_blob("not a pfx", 9, L"", &c), (DWORD)CRYPT_E_BAD_ENCODE);
    ck_assert_ptr_null(c);
}
END_TEST

/* A server certificate from a PFX file, as the configuration names one. */
START_TEST(pfx_file_serves)
{
    PCCERT_CONTEXT c = NULL;
    ck_assert_uint_ne(cert_load_pfx_blob(tls_test_pfx, sizeof tls_test_pfx, L"wrong", &c),
                      ERROR_SUCCESS);
    ck_assert_ptr_null(c);
    wchar_t dir[MAX_PATH], path[MAX_PATH];
    ck_assert_uint_gt(GetTempPathW(ARRAYSIZE(dir), dir), 0);
    ck_assert_uint_ne(GetTempFileNameW(dir, L"pfx", 0, path), 0);
    FILE *f = _wfopen(path, L"wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(tls_test_pfx, 1, sizeof tls_test_pfx, f), sizeof tls_test_pfx);
    fclose(f);
    DWORD rc = cert_load_pfx(path, TLS_TEST_PFX_PASSWORD, &c);
    DeleteFileW(path);
    ck_assert_msg(rc == ERROR_SUCCESS, "cert_load_pfx: 0x%08lx", (unsigned long)rc);

    need_creds();
    struct tls_cred sc;
    SECURITY_STATUS st = tls_cred_server(&sc, c, NULL);
    ck_assert_msg(st == SEC_E_OK, "tls_cred_server: 0x%08lx", (unsigned long)st);
    struct tls_config cc = { NULL, L"pfx.imsvc.test", TLS_TRUST_ANY };
    struct pair p;
    ck_assert_int_eq(tls_new(&p.c, &g_ccred, &cc), SEC_E_OK);
    ck_assert_int_eq(tls_new(&p.s, &sc, NULL), SEC_E_OK);
    handshake(&p);
    PCCERT_CONTEXT peer;
    ck_assert_int_eq(tls_peer_cert(p.c, &peer), SEC_E_OK);
    ck_assert(CertCompareCertificate(X509_ASN_ENCODING, peer->pCertInfo, c->pCertInfo));
    /* Untrusted still, and the name is checked against the certificate's. */
    ck_assert_uint_eq(cert_verify_server(peer, L"pfx.imsvc.test", 0), (DWORD)CERT_E_UNTRUSTEDROOT);
    CertFreeCertificateContext(peer);
    pair_free(&p);
    tls_cred_free(&sc);
    CertFreeCertificateContext(c);
}
END_TEST

/* TLS decided at the handshake --------------------------------------------- */

/* A server stream on creds with policy pol, and the raw client: run the
 * handshake, shuttling whole flights, at most 16 rounds. */
static void raw_handshake(struct raw_peer *r, struct tls_stream *s)
{
    for (int i = 0; i < 16 && !r->error; i++) {
        if (r->outlen) {
            tls_feed(s, r->out, r->outlen);
            r->outlen = 0;
        }
        size_t n;
        const unsigned char *b = tls_out_buf(s, &n);
        if (n) {
            raw_feed(r, b, n);
            tls_out_done(s, n);
        }
        if (tls_state(s) != TLS_ST_HANDSHAKE && !r->outlen)
            break;
    }
}

static void suite_name(const struct tls_stream *s, char *out, size_t cap)
{
    SecPkgContext_CipherInfo ci;
    out[0] = 0;
    if (tls_cipher_info(s, &ci) == SEC_E_OK)
        WideCharToMultiByte(CP_UTF8, 0, ci.szCipherSuite, -1, out, (int)cap, NULL, NULL);
}

/* The policy is in the credentials: Schannel reports only the versions the
 * policy accepts. Wine 10 takes SCH_CREDENTIALS but ignores TLS_PARAMETERS
 * (it reports TLS 1.0 to 1.2 for them), so the legacy form is used there. */
START_TEST(credentials_carry_policy)
{
    need_creds();
    static const struct tls_policy pols[] = { TLS_POLICY_DEFAULT, { TLS_V1_0, 128, 0 },
                                              { TLS_V1_2, 256, 1 } };
    const DWORD old_bits = SP_PROT_SSL2 | SP_PROT_SSL3 | SP_PROT_TLS1_0 | SP_PROT_TLS1_1;
    for (size_t i = 0; i < ARRAYSIZE(pols); i++)
        for (int server = 0; server < 2; server++) {
            struct tls_cred c;
            SECURITY_STATUS st = server ? tls_cred_server(&c, g_cert, &pols[i])
                                        : tls_cred_client(&c, &pols[i]);
            ck_assert_msg(st == SEC_E_OK, "policy %zu side %d: 0x%08lx", i, server, (unsigned long)st);
            char d[160];
            tls_cred_describe(&c, d, sizeof d);
            fprintf(stderr, "check_tls: policy TLS 0x%04x+ %u-bit%s: %s\n", pols[i].min_version,
                    pols[i].min_cipher_bits, pols[i].aead_only ? " AEAD" : "", d);
            ck_assert_int_eq(c.server, server);
            ck_assert(c.form == TLS_CRED_SCH || c.form == TLS_CRED_LEGACY);
            if (running_on_wine()) {
                ck_assert_int_eq(c.form, TLS_CRED_LEGACY);
                ck_assert_int_eq(c.suites_set, 0);
            }
            ck_assert_msg(c.protocols, "Schannel did not report the versions: %s", d);
            DWORD v12 = server ? SP_PROT_TLS1_2_SERVER : SP_PROT_TLS1_2_CLIENT;
            DWORD v10 = server ? SP_PROT_TLS1_0_SERVER : SP_PROT_TLS1_0_CLIENT;
            ck_assert_msg(c.protocols & v12, "%s", d);
            if (pols[i].min_version == TLS_V1_0)
                ck_assert_msg(c.protocols & v10, "%s", d);
            else
                ck_assert_msg(!(c.protocols & old_bits), "%s", d);
            tls_cred_free(&c);
            ck_assert_int_eq(c.valid, 0);
        }
    /* A floor no version of this Schannel reaches fails at once. */
    struct tls_cred c;
    static const struct tls_policy v13 = { TLS_V1_3, 128, 0 };
    SECURITY_STATUS st = tls_cred_server(&c, g_cert, &v13);
    if (running_on_wine())
        ck_assert_msg(st == SEC_E_ALGORITHM_MISMATCH, "TLS 1.3 only under Wine 10: 0x%08lx",
                      (unsigned long)st);
    if (st == SEC_E_OK)
        tls_cred_free(&c);
}
END_TEST

/* A client limited to TLS 1.0 meets a server whose credentials carry the
 * default policy: the handshake itself fails; with TlsMinVersion=10 in the
 * credentials and the policy it is served. */
START_TEST(old_protocol_refused_in_handshake)
{
    need_creds();
    SCHANNEL_CRED old = { 0 };
    old.dwVersion = SCHANNEL_CRED_VERSION;
    old.grbitEnabledProtocols = SP_PROT_TLS1_0_CLIENT;
    old.dwFlags = SCH_CRED_MANUAL_CRED_VALIDATION | SCH_CRED_NO_DEFAULT_CREDS;
    struct tls_cred oc = { 0 };
    TimeStamp ts;
    ck_assert_int_eq(AcquireCredentialsHandleW(NULL, (SEC_WCHAR *)UNISP_NAME_W, SECPKG_CRED_OUTBOUND,
                                               NULL, &old, NULL, NULL, &oc.h, &ts), SEC_E_OK);
    oc.valid = 1;
    static const struct tls_policy v10 = { TLS_V1_0, 128, 0 };
    for (int allow = 0; allow < 2; allow++) {
        struct tls_cred sc;
        ck_assert_int_eq(tls_cred_server(&sc, g_cert, allow ? &v10 : NULL), SEC_E_OK);
        struct tls_config scfg = { allow ? &v10 : NULL, NULL, TLS_TRUST_ANY };
        struct tls_config ccfg = { &v10, L"localhost", TLS_TRUST_ANY };
        struct pair p;
        ck_assert_int_eq(tls_new(&p.c, &oc, &ccfg), SEC_E_OK);
        ck_assert_int_eq(tls_new(&p.s, &sc, &scfg), SEC_E_OK);
        for (int j = 0; j < 8; j++) {
            move(p.c, p.s);
            move(p.s, p.c);
        }
        if (allow) {
            ck_assert_int_eq(tls_state(p.s), TLS_ST_OPEN);
            SecPkgContext_ConnectionInfo ci;
            ck_assert_int_eq(tls_connection_info(p.s, &ci), SEC_E_OK);
            ck_assert_uint_eq(tls_protocol_version(ci.dwProtocol), TLS_V1_0);
        } else {
            /* Refused by Schannel in the handshake, not by the check after it. */
            ck_assert_msg(tls_state(p.s) == TLS_ST_FAILED, "server state %d", tls_state(p.s));
            ck_assert_uint_eq(tls_fail_location(p.s), LOC_SSPI_HANDSHAKE);
            ck_assert_uint_eq(tls_handshakes(p.s), 0);
            ck_assert_int_ne(tls_state(p.c), TLS_ST_OPEN);
        }
        pair_free(&p);
        tls_cred_free(&sc);
    }
    FreeCredentialsHandle(&oc.h);
}
END_TEST

START_TEST(aead_suite_names)
{
    SecPkgContext_CipherInfo ci = { 0 };
    static const struct { const wchar_t *name; DWORD number; int aead; } cases[] = {
        { L"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", 0, 1 },    /* as Wine 10 names it */
        { L"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", 0, 0 },
        { L"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384", 0, 0 },
        { L"TLS_AES_128_GCM_SHA256", 0x1301, 1 },
        { L"TLS_CHACHA20_POLY1305_SHA256", 0x1303, 1 },
        { L"TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8", 0, 1 },
        { L"TLS_RSA_WITH_RC4_128_SHA", 0, 0 },
        { L"", 0xC02F, 1 },                                    /* the number alone */
        { L"", 0xC013, 0 },
        { L"TLS_ECDHE_RSA_WITH_<unknown>_256_<unknown>_SHA384", 0, -1 },
    };
    wcscpy(ci.szHash, L"SHA384"); /* as for a suite with a MAC */
    ci.dwHashLen = 384;
    for (size_t i = 0; i < ARRAYSIZE(cases); i++) {
        wcscpy(ci.szCipherSuite, cases[i].name);
        ci.dwCipherSuite = cases[i].number;
        ck_assert_msg(tls_suite_is_aead(&ci) == cases[i].aead, "case %zu", i);
    }
    ck_assert_int_eq(tls_suite_is_aead(NULL), -1);
    /* Wine 10's ChaCha20-Poly1305: no name for the cipher, and no MAC hash. */
    wcscpy(ci.szCipherSuite, L"TLS_ECDHE_RSA_WITH_<unknown>_0_<unknown>_SHA384");
    ci.dwCipherSuite = 0;
    ci.szHash[0] = 0;
    ci.dwHashLen = 0;
    ck_assert_int_eq(tls_suite_is_aead(&ci), 1);
    wcscpy(ci.szHash, L"SHA1");
    ci.dwHashLen = 160;
    ck_assert_int_eq(tls_suite_is_aead(&ci), -1);
    memset(&ci, 0, sizeof ci); /* a platform that filled nothing */
    ck_assert_int_eq(tls_suite_is_aead(&ci), -1);

    SecPkgContext_ConnectionInfo conn = { 0 };
    conn.dwProtocol = SP_PROT_TLS1_2_SERVER;
    conn.aiCipher = CALG_AES_256;
    conn.dwCipherStrength = 256;
    struct tls_policy aead = { TLS_V1_2, 128, 1 };
    char text[320];
    wcscpy(ci.szCipherSuite, L"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384");
    ci.dwCipherSuite = 0;
    ck_assert_int_eq(tls_policy_check(&aead, &conn, &ci, text, sizeof text), 0);
    ck_assert_msg(strstr(text, "suite TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384") &&
                  strstr(text, "stronger AEAD (GCM, CCM or ChaCha20-Poly1305) cipher"), "%s", text);
    ck_assert_int_eq(tls_policy_check(&aead, &conn, NULL, text, sizeof text), 0); /* cannot tell */
    wcscpy(ci.szCipherSuite, L"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384");
    ck_assert_int_eq(tls_policy_check(&aead, &conn, &ci, text, sizeof text), 1);
    struct tls_policy def = TLS_POLICY_DEFAULT;
    wcscpy(ci.szCipherSuite, L"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384");
    ck_assert_int_eq(tls_policy_check(&def, &conn, &ci, text, sizeof text), 1);
}
END_TEST

/* AEAD only: a client offering nothing but a CBC suite is not served; a
 * GCM one is. Where the credentials can carry the restriction (Windows'
 * CRYPTO_SETTINGS), the handshake fails; where they cannot (Wine 10), the
 * check after it refuses the session, naming the suite. */
START_TEST(aead_only_refuses_cbc)
{
    need_creds();
    static const struct tls_policy aead = { TLS_V1_2, 128, 1 };
    struct tls_cred sc;
    ck_assert_int_eq(tls_cred_server(&sc, g_cert, &aead), SEC_E_OK);
    struct tls_config scfg = { &aead, NULL, TLS_TRUST_ANY };
    char name[SZ_ALG_MAX_SIZE * 3];

    /* The same CBC client against the default policy is served. */
    struct raw_peer r;
    struct tls_stream *s;
    ck_assert_int_eq(raw_new(&r, RAW_SUITE_CBC), 0);
    ck_assert_int_eq(tls_new(&s, &g_scred, NULL), SEC_E_OK);
    raw_handshake(&r, s);
    ck_assert_msg(!r.error && r.established, "raw CBC client: error %d established %d", r.error,
                  r.established);
    ck_assert_int_eq(tls_state(s), TLS_ST_OPEN);
    suite_name(s, name, sizeof name);
    fprintf(stderr, "check_tls: a CBC-only client negotiated %s\n", name);
    SecPkgContext_CipherInfo ci;
    ck_assert_int_eq(tls_cipher_info(s, &ci), SEC_E_OK);
    ck_assert_int_eq(tls_suite_is_aead(&ci), 0);
    raw_write(&r, "NOOP\r\n", 6);
    tls_feed(s, r.out, r.outlen), r.outlen = 0;
    size_t n;
    const unsigned char *b = tls_app_buf(s, &n);
    ck_assert_uint_eq(n, 6);
    ck_assert_int_eq(memcmp(b, "NOOP\r\n", 6), 0);
    tls_free(s);
    raw_free(&r);

    ck_assert_int_eq(raw_new(&r, RAW_SUITE_CBC), 0);
    ck_assert_int_eq(tls_new(&s, &sc, &scfg), SEC_E_OK);
    raw_handshake(&r, s);
    if (sc.suites_set) {
        ck_assert_int_eq(tls_state(s), TLS_ST_FAILED);
        ck_assert_uint_eq(tls_handshakes(s), 0);
    } else {
        ck_assert_msg(tls_state(s) == TLS_ST_REFUSED, "state %d status 0x%08lx", tls_state(s),
                      (unsigned long)tls_status(s));
        ck_assert_uint_eq(tls_fail_location(s), LOC_SSPI_POLICY);
        const char *t = tls_policy_text(s);
        ck_assert_msg(strstr(t, "_CBC_") && strstr(t, "AEAD"), "text: %s", t);
        raw_write(&r, "MAIL FROM:<a@b>\r\n", 17);
        tls_feed(s, r.out, r.outlen), r.outlen = 0;
        ck_assert_ptr_null(tls_app_buf(s, &n));
    }
    tls_free(s);
    raw_free(&r);

    ck_assert_int_eq(raw_new(&r, RAW_SUITE_GCM), 0);
    ck_assert_int_eq(tls_new(&s, &sc, &scfg), SEC_E_OK);
    raw_handshake(&r, s);
    ck_assert_msg(!r.error && r.established, "raw GCM client: error %d", r.error);
    ck_assert_msg(tls_state(s) == TLS_ST_OPEN, "state %d: %s", tls_state(s), tls_policy_text(s));
    suite_name(s, name, sizeof name);
    ck_assert_msg(strstr(name, "GCM"), "suite %s", name);
    tls_free(s);
    raw_free(&r);

    /* Schannel's own client (Wine: AES-256-GCM) is served under AEAD only. */
    struct pair p;
    pair_new(&p, &aead, TLS_TRUST_ANY);
    handshake(&p);
    pair_free(&p);
    tls_cred_free(&sc);
}
END_TEST

/* The raw GCM client and a server stream on the default credentials, open. */
static void raw_session(struct raw_peer *r, struct tls_stream **s)
{
    need_creds();
    ck_assert_int_eq(raw_new(r, RAW_SUITE_GCM), 0);
    ck_assert_int_eq(tls_new(s, &g_scred, NULL), SEC_E_OK);
    raw_handshake(r, *s);
    ck_assert_msg(!r->error && r->established, "raw client: error %d", r->error);
    ck_assert_int_eq(tls_state(*s), TLS_ST_OPEN);
}

/* A client that renegotiates (RFC 5746, inside the session) is refused at
 * once with a no_renegotiation alert; the stream fails with a location of
 * its own and the status seen, and what came before is kept. Before, the
 * server stream went back to the handshake and waited for ever. */
START_TEST(client_renegotiation_refused)
{
    struct raw_peer r;
    struct tls_stream *s;
    raw_session(&r, &s);

    raw_write(&r, "EHLO client\r\n", 13);
    raw_hello(&r); /* the renegotiation, encrypted, in the same read */
    raw_write(&r, "after\r\n", 7);
    SECURITY_STATUS st = tls_feed(s, r.out, r.outlen);
    r.outlen = 0;
    ck_assert_msg(st == SEC_I_RENEGOTIATE, "status 0x%08lx", (unsigned long)st);
    ck_assert_int_eq(tls_state(s), TLS_ST_FAILED);
    ck_assert_uint_eq(tls_fail_location(s), LOC_SSPI_RENEGOTIATE_REFUSED);
    ck_assert_uint_eq(tls_handshakes(s), 1);
    size_t n;
    const unsigned char *b = tls_app_buf(s, &n);
    ck_assert_uint_eq(n, 13);
    ck_assert_int_eq(memcmp(b, "EHLO client\r\n", 13), 0);
    b = tls_out_buf(s, &n);
    ck_assert_msg(n > 0, "no alert for the client");
    raw_feed(&r, b, n);
    ck_assert_int_eq(r.error, 0);
    ck_assert_int_eq(r.alerts, 1);
    ck_assert_uint_eq(r.alert[0], TLS1_ALERT_WARNING);
    ck_assert_uint_eq(r.alert[1], TLS1_ALERT_NO_RENEGOTIATION);
    ck_assert_int_eq(tls_feed(s, "x", 1), SEC_I_RENEGOTIATE); /* dead stays dead */

    unsigned char data[8];
    tls_event_data(tls_fail_location(s), (DWORD)tls_status(s), data);
    static const unsigned char want[8] = { 0x10, 0x01, 0x15, 0x00, 0x21, 0x03, 0x09, 0x00 };
    ck_assert_int_eq(memcmp(data, want, 8), 0);
    tls_free(s);
    raw_free(&r);
}
END_TEST

/* A renegotiation (SEC_I_RENEGOTIATE) arrives while plaintext is held in
 * place, some of it half taken, and more is in the app queue: all of it is
 * still delivered, in order, and nothing after the renegotiation. Once in
 * its own read, once in the same read as the last records. (Under Wine 10
 * there is no TLS 1.3, so no post-handshake message to follow; the refused
 * renegotiation is the SEC_I_RENEGOTIATE path that can be played here.) */
START_TEST(renegotiation_with_plaintext_held)
{
    for (int same_read = 0; same_read < 2; same_read++) {
        struct raw_peer r;
        struct tls_stream *s;
        raw_session(&r, &s);
        /* 40 records: more than the ring holds, so the last go to the app queue. */
        char want[40 * 64];
        size_t wlen = 0, first = 0;
        for (int i = 0; i < 40; i++) {
            char line[64];
            int n = snprintf(line, sizeof line, "RCPT TO:<user%02d@example.test>%.*s\r\n", i,
                             i % 17, "xxxxxxxxxxxxxxxxx");
            raw_write(&r, line, (size_t)n);
            memcpy(want + wlen, line, (size_t)n);
            wlen += (size_t)n;
            if (!first)
                first = (size_t)n;
        }
        struct sink k = { 0 };
        if (!same_read) {
            ck_assert_int_eq(tls_feed(s, r.out, r.outlen), SEC_E_OK);
            r.outlen = 0;
            size_t n;
            const unsigned char *b = tls_app_buf(s, &n);
            ck_assert_uint_eq(n, first); /* the first record, in place */
            sink_put(&k, b, 10);
            tls_app_done(s, 10);
        }
        raw_hello(&r);
        raw_write(&r, "after\r\n", 7);
        ck_assert_int_eq(tls_feed(s, r.out, r.outlen), SEC_I_RENEGOTIATE);
        r.outlen = 0;
        ck_assert_int_eq(tls_state(s), TLS_ST_FAILED);
        ck_assert_uint_eq(tls_fail_location(s), LOC_SSPI_RENEGOTIATE_REFUSED);
        drain(s, &k);
        ck_assert_uint_eq(k.len, wlen);
        ck_assert_int_eq(memcmp(k.p, want, wlen), 0);
        free(k.p);
        tls_free(s);
        raw_free(&r);
    }
}
END_TEST

/* The bounds themselves: a server refuses every renegotiation before
 * TLS 1.3, a client follows TLS_RENEGOTIATIONS_MAX, either side follows
 * TLS_POST_HANDSHAKE_MAX TLS 1.3 post-handshake messages; then no more. */
START_TEST(renegotiation_bounds)
{
    unsigned reneg = 0, post = 0;
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(tls_renegotiation_verdict(1, TLS_V1_2, &reneg, &post), TLS_RENEG_REFUSE);
    ck_assert_int_eq(tls_renegotiation_verdict(1, 0, &reneg, &post), TLS_RENEG_REFUSE);
    for (unsigned i = 0; i < TLS_RENEGOTIATIONS_MAX; i++)
        ck_assert_int_eq(tls_renegotiation_verdict(0, TLS_V1_2, &reneg, &post), TLS_RENEG_FOLLOW);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(tls_renegotiation_verdict(0, TLS_V1_2, &reneg, &post), TLS_RENEG_LIMIT);
    for (int server = 0; server < 2; server++) {
        reneg = post = 0;
        for (unsigned i = 0; i < TLS_POST_HANDSHAKE_MAX; i++)
            ck_assert_int_eq(tls_renegotiation_verdict(server, TLS_V1_3, &reneg, &post),
                             TLS_RENEG_FOLLOW);
        ck_assert_int_eq(tls_renegotiation_verdict(server, TLS_V1_3, &reneg, &post), TLS_RENEG_LIMIT);
        ck_assert_uint_eq(reneg, 0);
    }
}
END_TEST

/* Outbound credentials: one per destination and policy, shared while held,
 * reused after release, freed when idle, bounded. */
START_TEST(cache_per_destination)
{
    need_creds();
    tls_cache_shutdown();
    tls_cache_configure(3, 60000);
    struct tls_cache_stats st0, st;
    tls_cache_stats(&st0);
    struct tls_cred a, a2, b, c;
    ck_assert_int_eq(tls_cred_for_peer(&a, L"mx1.example", NULL), SEC_E_OK);
    ck_assert_int_eq(tls_cred_for_peer(&a2, L"MX1.Example", NULL), SEC_E_OK);
    ck_assert_ptr_nonnull(a.entry);
    ck_assert_ptr_eq(a.entry, a2.entry);
    ck_assert(a.h.dwLower == a2.h.dwLower && a.h.dwUpper == a2.h.dwUpper);
    static const struct tls_policy aead = { TLS_V1_2, 128, 1 };
    ck_assert_int_eq(tls_cred_for_peer(&b, L"mx1.example", &aead), SEC_E_OK);
    ck_assert_ptr_ne(b.entry, a.entry);
    ck_assert_int_eq(tls_cred_for_peer(&c, L"mx2.example", NULL), SEC_E_OK);
    ck_assert_ptr_ne(c.entry, a.entry);
    tls_cache_stats(&st);
    ck_assert_uint_eq(st.entries, 3);
    ck_assert_uint_eq(st.held, 3);
    ck_assert_uint_eq(st.hits - st0.hits, 1);
    ck_assert_uint_eq(st.misses - st0.misses, 3);

    /* Full of held entries: the fourth destination gets its own. */
    struct tls_cred d;
    ck_assert_int_eq(tls_cred_for_peer(&d, L"mx3.example", NULL), SEC_E_OK);
    ck_assert_ptr_null(d.entry);
    ck_assert_int_eq(d.valid, 1);
    tls_cred_free(&d);
    tls_cache_stats(&st);
    ck_assert_uint_eq(st.uncached - st0.uncached, 1);
    ck_assert_uint_eq(st.entries, 3);

    /* A held credential serves handshakes; released, it is kept. Whether
     * the second session resumes is the platform's business: printed (the
     * ClientHello's session id, the server's first flight). */
    struct pair p;
    struct tls_config cc = { NULL, L"localhost", TLS_TRUST_ANY };
    for (int round = 0; round < 2; round++) {
        ck_assert_int_eq(tls_new(&p.c, &a, &cc), SEC_E_OK);
        ck_assert_int_eq(tls_new(&p.s, &g_scred, NULL), SEC_E_OK);
        size_t hello, flight;
        const unsigned char *h = tls_out_buf(p.c, &hello);
        ck_assert_uint_gt(hello, 44);
        unsigned sid = h[43];
        move(p.c, p.s);
        tls_out_buf(p.s, &flight);
        fprintf(stderr, "check_tls: cached credential, session %d: ClientHello session id %u bytes, "
                        "server's first flight %zu bytes\n", round + 1, sid, flight);
        handshake(&p);
        pair_free(&p);
    }
    CredHandle kept = a.h;
    tls_cred_free(&a2);
    tls_cred_free(&a);
    ck_assert_int_eq(a.valid, 0);
    ck_assert_int_eq(tls_cred_for_peer(&a, L"mx1.example", NULL), SEC_E_OK);
    ck_assert(a.h.dwLower == kept.dwLower && a.h.dwUpper == kept.dwUpper);
    tls_cred_free(&a);

    /* Room for a new destination comes from the least recently used
     * entry nobody holds. */
    ck_assert_int_eq(tls_cred_for_peer(&d, L"mx4.example", NULL), SEC_E_OK);
    ck_assert_ptr_nonnull(d.entry);
    tls_cache_stats(&st);
    ck_assert_uint_eq(st.entries, 3);
    ck_assert_uint_eq(st.freed - st0.freed, 1);

    /* Shut down while held: the holder keeps a working credential, freed
     * at its release. */
    tls_cache_shutdown();
    tls_cache_stats(&st);
    ck_assert_uint_eq(st.entries, 0);
    ck_assert_int_eq(tls_new(&p.c, &d, &cc), SEC_E_OK);
    ck_assert_int_eq(tls_new(&p.s, &g_scred, NULL), SEC_E_OK);
    handshake(&p);
    pair_free(&p);
    unsigned long before = st.freed;
    tls_cred_free(&d);
    tls_cred_free(&b);
    tls_cred_free(&c);
    tls_cache_stats(&st);
    ck_assert_uint_eq(st.freed - before, 3);

    /* Idle time 0: released entries go at the next use. */
    tls_cache_configure(3, 0);
    ck_assert_int_eq(tls_cred_for_peer(&a, L"mx1.example", NULL), SEC_E_OK);
    tls_cred_free(&a);
    tls_cache_stats(&st);
    ck_assert_uint_eq(st.entries, 0);
    tls_cache_configure(TLS_CACHE_MAX_DEFAULT, TLS_CACHE_IDLE_DEFAULT);
}
END_TEST

Suite *tls_suite(void)
{
    Suite *s = suite_create("tls");
    TCase *tc = tcase_create("stream");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, handshake_completes);
    tcase_add_test(tc, one_byte_reads);
    tcase_add_test(tc, one_read_all_records);
    tcase_add_test(tc, last_flight_with_records);
    tcase_add_test(tc, write_while_handshaking);
    tcase_add_test(tc, random_segmentations);
    tcase_add_test(tc, close_notify_is_clean);
    tcase_add_test(tc, truncated_record_waits);
    tcase_add_test(tc, flipped_bit_fails_with_4131);
    tcase_add_test(tc, large_write_is_split);
    tcase_add_test(tc, lagging_consumer_odd_pieces);
    suite_add_tcase(s, tc);
    TCase *tp = tcase_create("policy");
    tcase_add_test(tp, policy_text_names_both_sides);
    tcase_add_test(tp, policy_below_minimum_refused);
    suite_add_tcase(s, tp);
    TCase *th = tcase_create("handshake policy");
    tcase_set_timeout(th, 300);
    tcase_add_test(th, credentials_carry_policy);
    tcase_add_test(th, old_protocol_refused_in_handshake);
    tcase_add_test(th, aead_suite_names);
    tcase_add_test(th, aead_only_refuses_cbc);
    tcase_add_test(th, client_renegotiation_refused);
    tcase_add_test(th, renegotiation_with_plaintext_held);
    tcase_add_test(th, renegotiation_bounds);
    tcase_add_test(th, cache_per_destination);
    suite_add_tcase(s, th);
    TCase *tcert = tcase_create("cert");
    tcase_set_timeout(tcert, 120);
    tcase_add_test(tcert, verify_rejects_untrusted);
    tcase_add_test(tcert, cert_new_in_machine_store);
    tcase_add_test(tcert, pfx_errors);
    tcase_add_test(tcert, pfx_file_serves);
    suite_add_tcase(s, tcert);
    return s;
}
