/* tls_bench.c - decrypt throughput of the secure stream against a bare
 * DecryptMessage loop, over the same kind of 16 KiB records, in one run.
 *
 * Not a test: it prints numbers. Two in-memory sessions (client and server
 * Schannel contexts in this process). Records are bound to their session's
 * sequence numbers and cannot be replayed, so the work goes in rounds: each
 * round the two clients write BENCH_ROUND records each (untimed, into a
 * buffer per side that is reused), then the two servers decrypt them, timed,
 * the order of the two sides swapped every round so that what the machine
 * does meanwhile falls on both; until each side has BENCH_MIN_SECONDS of
 * timed decrypting (at most BENCH_MAX_ROUNDS rounds).
 *
 *   stream  fed as service/io/channel.c chan_pump feeds it: the round's
 *           records are the socket buffer, read BENCH_READ bytes at a time;
 *           each read is copied into tls_in_buf and handed over with
 *           tls_in_done (as often as the stream offers room), then the
 *           plaintext is taken as smtp_server.c takes it, tls_app_buf and
 *           tls_app_done until there is none.
 *   bare    DecryptMessage called directly on its context over the round's
 *           whole buffer in place, following SECBUFFER_EXTRA, nothing else.
 *
 * Every byte of plaintext either side delivers is compared with the bytes
 * its client wrote (each record a different slice of a pattern, so a record
 * lost, repeated or out of order shows), outside the timed part: the stream
 * side's clock stops while a piece is compared, the bare side's pieces are
 * compared after its round. The clock is the processor's time-stamp counter
 * (a QueryPerformanceCounter reading costs about 80 ns under Wine, too much
 * to take twice per record), converted to seconds against
 * QueryPerformanceCounter over the whole run; what a reading costs is
 * printed, with how many fell inside the stream's timing.
 * Run with tools/bench-tls.sh.
 */
#include <windows.h>
#include <x86intrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cert.h"
#include "tls.h"

#define BENCH_RECORD      16384u
#define BENCH_ROUND       2000u         /* records per round per side */
#define BENCH_READ        65536u        /* bytes per socket read (stream side) */
#define BENCH_MIN_SECONDS 1.0           /* timed decrypting per side, at least */
#define BENCH_MAX_ROUNDS  400u
#define BENCH_PATTERN     (64u * 1024u) /* record r is BENCH_RECORD bytes at start(r) */

static unsigned char g_pattern[BENCH_PATTERN + BENCH_RECORD];
static double g_hz;        /* time-stamp counter ticks per second */

static void die(const char *what, unsigned long st)
{
    fprintf(stderr, "tls_bench: %s: 0x%08lx\n", what, st);
    exit(1);
}

static uint64_t now(void)
{
    return __rdtsc();
}

static double seconds(uint64_t ticks)
{
    return (double)ticks / g_hz;
}

/* Both clocks now, to measure the counter's rate between two of these. */
static void clocks(LARGE_INTEGER *q, uint64_t *t)
{
    QueryPerformanceCounter(q);
    *t = now();
}

/* Where record r's plaintext starts in the pattern: 4099 is odd, so 65,536
 * records in a row all start at different places. */
static const unsigned char *record_text(uint64_t r)
{
    return g_pattern + (size_t)((r * 4099u) % BENCH_PATTERN);
}

/* A reader's position in the plaintext its client wrote. */
struct verify {
    uint64_t pos;       /* bytes delivered so far */
    uint64_t bad;       /* pieces that differed */
};

static void verify(struct verify *v, const unsigned char *p, size_t n)
{
    while (n) {
        uint64_t r = v->pos / BENCH_RECORD;
        size_t o = (size_t)(v->pos % BENCH_RECORD);
        size_t k = BENCH_RECORD - o < n ? BENCH_RECORD - o : n;
        if (memcmp(p, record_text(r) + o, k) != 0)
            v->bad++;
        v->pos += k;
        p += k;
        n -= k;
    }
}

struct side {
    const char *name;
    struct tls_stream *c, *s;
    uint64_t written;            /* records the client wrote */
    unsigned char *wire;         /* this round's records, reused */
    size_t wire_len, wire_cap;
    struct verify v;
    uint64_t ticks;              /* timed decrypting */
    uint64_t clock_calls;        /* QueryPerformanceCounter calls inside the timing */
    unsigned rounds;
};

static void move(struct tls_stream *from, struct tls_stream *to)
{
    size_t n;
    const unsigned char *b = tls_out_buf(from, &n);
    if (n) {
        tls_feed(to, b, n);
        tls_out_done(from, n);
    }
}

static void session(struct tls_cred *cc, struct tls_cred *sc, struct side *d)
{
    struct tls_config ccfg = { NULL, L"localhost", TLS_TRUST_ANY };
    SECURITY_STATUS st;
    if ((st = tls_new(&d->c, cc, &ccfg)) != SEC_E_OK) die("client", st);
    if ((st = tls_new(&d->s, sc, NULL)) != SEC_E_OK) die("server", st);
    for (int i = 0; i < 16 && (tls_state(d->c) == TLS_ST_HANDSHAKE ||
                               tls_state(d->s) == TLS_ST_HANDSHAKE); i++) {
        move(d->c, d->s);
        move(d->s, d->c);
    }
    if (tls_state(d->c) != TLS_ST_OPEN || tls_state(d->s) != TLS_ST_OPEN)
        die("handshake", tls_status(d->s) ? tls_status(d->s) : tls_status(d->c));
}

/* Untimed: the client writes the round's records into the side's buffer. */
static void round_write(struct side *d)
{
    for (unsigned i = 0; i < BENCH_ROUND; i++)
        if (tls_write(d->c, record_text(d->written++), BENCH_RECORD) != SEC_E_OK)
            die("tls_write", tls_status(d->c));
    size_t len;
    const unsigned char *b = tls_out_buf(d->c, &len);
    if (len > d->wire_cap) {
        free(d->wire);
        d->wire = malloc(len);
        if (!d->wire) die("malloc", 0);
        d->wire_cap = len;
    }
    memcpy(d->wire, b, len);
    d->wire_len = len;
    tls_out_done(d->c, len);
}

/* The stream, fed and drained as the service's channel does. */
static void round_stream(struct side *d)
{
    uint64_t t = 0, calls = 0, a, b;
    const unsigned char *sock = d->wire, *end = d->wire + d->wire_len;
    while (sock < end) {
        size_t have = end - sock < BENCH_READ ? (size_t)(end - sock) : BENCH_READ;
        while (have) {
            size_t before = have;
            a = now();
            for (;;) { /* chan_pump */
                size_t cap;
                unsigned char *dst = tls_in_buf(d->s, &cap);
                if (!dst)
                    break;
                size_t n = have < cap ? have : cap;
                memcpy(dst, sock, n);
                sock += n;
                have -= n;
                tls_in_done(d->s, n);
                if (!have)
                    break;
            }
            if (tls_state(d->s) != TLS_ST_OPEN)
                die("stream", tls_status(d->s));
            for (;;) { /* chan_input, the engine's feed, chan_consume */
                size_t n;
                const unsigned char *p = tls_app_buf(d->s, &n);
                if (!n)
                    break;
                b = now();
                t += b - a;
                verify(&d->v, p, n);
                a = now();
                tls_app_done(d->s, n);
                calls += 2;
            }
            b = now();
            t += b - a;
            calls += 2;
            size_t left;
            if (have == before && !tls_app_buf(d->s, &left))
                die("stream takes no input and gives no plaintext", 0);
        }
    }
    d->ticks += t;
    d->clock_calls += calls;
}

/* The bare loop: DecryptMessage in place over the round's buffer. */
static void round_bare(struct side *d)
{
    static struct { unsigned char *p; size_t n; } piece[BENCH_ROUND + 1];
    size_t pieces = 0;
    CtxtHandle *ctx = (CtxtHandle *)tls_context(d->s);
    unsigned char *w = d->wire;
    size_t len = d->wire_len;
    uint64_t a = now();
    for (size_t off = 0; off < len;) {
        SecBuffer b[4] = { { (ULONG)(len - off), SECBUFFER_DATA, w + off },
                           { 0, SECBUFFER_EMPTY, NULL }, { 0, SECBUFFER_EMPTY, NULL },
                           { 0, SECBUFFER_EMPTY, NULL } };
        SecBufferDesc desc = { SECBUFFER_VERSION, 4, b };
        SECURITY_STATUS st = DecryptMessage(ctx, &desc, 0, NULL);
        if (st != SEC_E_OK) die("DecryptMessage", st);
        size_t extra = 0;
        for (int i = 0; i < 4; i++) {
            if (b[i].BufferType == SECBUFFER_DATA && pieces < BENCH_ROUND + 1) {
                piece[pieces].p = b[i].pvBuffer;
                piece[pieces++].n = b[i].cbBuffer;
            }
            if (b[i].BufferType == SECBUFFER_EXTRA) extra = b[i].cbBuffer;
        }
        off = len - extra;
    }
    d->ticks += now() - a;
    for (size_t i = 0; i < pieces; i++)
        verify(&d->v, piece[i].p, piece[i].n);
}

static void report(const struct side *d, double secs)
{
    double mib = (double)d->v.pos / 1048576.0;
    printf("%-40s %8.1f MiB/s  (%llu records, %.1f MiB, %.3f s, %u rounds)\n", d->name,
           mib / secs, (unsigned long long)(d->v.pos / BENCH_RECORD), mib, secs, d->rounds);
}

int main(void)
{
    PCCERT_CONTEXT cert;
    DWORD rc = cert_new(L"CN=localhost", CERT_NEW_NO_STORE | CERT_NEW_USER_KEYSET, &cert, NULL);
    if (rc) die("cert_new", rc);
    struct tls_cred sc, cc;
    if ((rc = (DWORD)tls_cred_server(&sc, cert, NULL)) != 0) die("server credentials", rc);
    if ((rc = (DWORD)tls_cred_client(&cc, NULL)) != 0) die("client credentials", rc);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < sizeof g_pattern; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        g_pattern[i] = (unsigned char)x;
    }
    LARGE_INTEGER freq, q0, q1;
    uint64_t t0, t1;
    QueryPerformanceFrequency(&freq);
    clocks(&q0, &t0);

    char stream_name[64];
    snprintf(stream_name, sizeof stream_name, "secure stream (%u-byte reads):", BENCH_READ);
    struct side st = { .name = stream_name }, bare = { .name = "bare DecryptMessage loop:" };
    session(&cc, &sc, &st);
    session(&cc, &sc, &bare);

    /* A first estimate of the counter's rate, for the loop's test. */
    Sleep(50);
    clocks(&q1, &t1);
    g_hz = (double)(t1 - t0) * (double)freq.QuadPart / (double)(q1.QuadPart - q0.QuadPart);

    unsigned round = 0;
    while (round < BENCH_MAX_ROUNDS &&
           (seconds(st.ticks) < BENCH_MIN_SECONDS || seconds(bare.ticks) < BENCH_MIN_SECONDS)) {
        round_write(&st);
        round_write(&bare);
        if (round % 2 == 0) {
            round_stream(&st);
            round_bare(&bare);
        } else {
            round_bare(&bare);
            round_stream(&st);
        }
        st.rounds++, bare.rounds++, round++;
    }

    clocks(&q1, &t1);
    g_hz = (double)(t1 - t0) * (double)freq.QuadPart / (double)(q1.QuadPart - q0.QuadPart);
    /* What one clock reading costs, to judge the stream side's readings. */
    uint64_t c0 = now();
    for (int i = 0; i < 100000; i++)
        now();
    double clock_ns = seconds(now() - c0) / 100000.0 * 1e9;

    double ds = seconds(st.ticks), db = seconds(bare.ticks);
    SecPkgContext_ConnectionInfo ci;
    char text[320] = "";
    struct tls_policy pol = TLS_POLICY_DEFAULT;
    if (tls_connection_info(st.s, &ci) == SEC_E_OK)
        tls_policy_check(&pol, &ci, NULL, text, sizeof text);
    printf("session: %s\n", text);
    printf("records: %u bytes, %u per round per side, sides alternating\n", BENCH_RECORD,
           BENCH_ROUND);
    report(&st, ds);
    report(&bare, db);
    printf("clock: %.0f ns a reading, %llu readings in the stream's timing (%.2f%% of it)\n",
           clock_ns, (unsigned long long)st.clock_calls,
           100.0 * st.clock_calls * clock_ns / 1e9 / ds);
    printf("ratio stream/bare: %.3f\n", ((double)st.v.pos / ds) / ((double)bare.v.pos / db));
    uint64_t want = (uint64_t)round * BENCH_ROUND * BENCH_RECORD;
    if (st.v.pos != want || bare.v.pos != want || st.v.bad || bare.v.bad) {
        fprintf(stderr, "tls_bench: plaintext differs: %llu and %llu bytes of %llu, %llu and %llu "
                "pieces differ\n", (unsigned long long)st.v.pos, (unsigned long long)bare.v.pos,
                (unsigned long long)want, (unsigned long long)st.v.bad,
                (unsigned long long)bare.v.bad);
        return 1;
    }
    printf("plaintext: every byte as written on both sides (%.1f MiB each)\n",
           (double)want / 1048576.0);
    tls_free(st.c), tls_free(st.s), tls_free(bare.c), tls_free(bare.s);
    free(st.wire), free(bare.wire);
    tls_cred_free(&sc), tls_cred_free(&cc);
    CertFreeCertificateContext(cert);
    return 0;
}
