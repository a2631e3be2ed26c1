/* tls_bench.c - decrypt throughput of the secure stream against a bare
 * DecryptMessage loop, over the same 16 KiB records, in one run.
 *
 * Not a test: it prints numbers. Two in-memory sessions (client and server
 * Schannel contexts in this process) each receive BENCH_RECORDS records of
 * 16 KiB from their client; one server takes them through tls_feed in 64 KiB
 * reads (what a socket loop does), the other through DecryptMessage called
 * directly on its context, following SECBUFFER_EXTRA, with nothing else.
 * Run with tools/bench-tls.sh.
 */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cert.h"
#include "tls.h"

#define BENCH_RECORD  16384u
#define BENCH_RECORDS 4000u
#define BENCH_READ    65536u

static void die(const char *what, unsigned long st)
{
    fprintf(stderr, "tls_bench: %s: 0x%08lx\n", what, st);
    exit(1);
}

static void move(struct tls_stream *from, struct tls_stream *to)
{
    size_t n;
    const unsigned char *b = tls_out_buf(from, &n);
    if (n) {
        tls_feed(to, b, n);
        tls_out_done(from, n);
    }
}

static void session(struct tls_cred *cc, struct tls_cred *sc, struct tls_stream **c,
                    struct tls_stream **s)
{
    struct tls_config ccfg = { NULL, L"localhost", TLS_TRUST_ANY };
    SECURITY_STATUS st;
    if ((st = tls_new(c, cc, &ccfg)) != SEC_E_OK) die("client", st);
    if ((st = tls_new(s, sc, NULL)) != SEC_E_OK) die("server", st);
    for (int i = 0; i < 16 && (tls_state(*c) == TLS_ST_HANDSHAKE || tls_state(*s) == TLS_ST_HANDSHAKE); i++) {
        move(*c, *s);
        move(*s, *c);
    }
    if (tls_state(*c) != TLS_ST_OPEN || tls_state(*s) != TLS_ST_OPEN)
        die("handshake", tls_status(*s) ? tls_status(*s) : tls_status(*c));
}

/* BENCH_RECORDS records of plain from c, as one malloc'd array. */
static unsigned char *records(struct tls_stream *c, const unsigned char *plain, size_t *len)
{
    for (unsigned i = 0; i < BENCH_RECORDS; i++)
        if (tls_write(c, plain, BENCH_RECORD) != SEC_E_OK)
            die("tls_write", tls_status(c));
    const unsigned char *b = tls_out_buf(c, len);
    unsigned char *copy = malloc(*len);
    if (!copy) die("malloc", 0);
    memcpy(copy, b, *len);
    tls_out_done(c, *len);
    return copy;
}

static double seconds(LARGE_INTEGER a, LARGE_INTEGER b, LARGE_INTEGER f)
{
    return (double)(b.QuadPart - a.QuadPart) / (double)f.QuadPart;
}

int main(void)
{
    PCCERT_CONTEXT cert;
    DWORD rc = cert_new(L"CN=localhost", CERT_NEW_NO_STORE | CERT_NEW_USER_KEYSET, &cert, NULL);
    if (rc) die("cert_new", rc);
    struct tls_cred sc, cc;
    if ((rc = (DWORD)tls_cred_server(&sc, cert, NULL)) != 0) die("server credentials", rc);
    if ((rc = (DWORD)tls_cred_client(&cc, NULL)) != 0) die("client credentials", rc);
    static unsigned char plain[BENCH_RECORD];
    for (unsigned i = 0; i < sizeof plain; i++)
        plain[i] = (unsigned char)(i * 131u + 7u);

    struct tls_stream *c1, *s1, *c2, *s2;
    session(&cc, &sc, &c1, &s1);
    session(&cc, &sc, &c2, &s2);
    size_t len1, len2;
    unsigned char *w1 = records(c1, plain, &len1);
    unsigned char *w2 = records(c2, plain, &len2);
    LARGE_INTEGER f, t0, t1, t2, t3;
    QueryPerformanceFrequency(&f);

    /* The stream, fed as a socket loop would. */
    size_t got1 = 0;
    QueryPerformanceCounter(&t0);
    for (size_t off = 0; off < len1;) {
        size_t n = len1 - off < BENCH_READ ? len1 - off : BENCH_READ;
        if (tls_feed(s1, w1 + off, n) != SEC_E_OK) die("tls_feed", tls_status(s1));
        off += n;
        size_t a;
        tls_app_buf(s1, &a);
        got1 += a;
        tls_app_done(s1, a);
    }
    QueryPerformanceCounter(&t1);

    /* The bare loop: DecryptMessage in place over the whole array. */
    CtxtHandle *ctx = (CtxtHandle *)tls_context(s2);
    size_t got2 = 0;
    QueryPerformanceCounter(&t2);
    for (size_t off = 0; off < len2;) {
        SecBuffer b[4] = { { (ULONG)(len2 - off), SECBUFFER_DATA, w2 + off },
                           { 0, SECBUFFER_EMPTY, NULL }, { 0, SECBUFFER_EMPTY, NULL },
                           { 0, SECBUFFER_EMPTY, NULL } };
        SecBufferDesc d = { SECBUFFER_VERSION, 4, b };
        SECURITY_STATUS st = DecryptMessage(ctx, &d, 0, NULL);
        if (st != SEC_E_OK) die("DecryptMessage", st);
        size_t extra = 0;
        for (int i = 0; i < 4; i++) {
            if (b[i].BufferType == SECBUFFER_DATA) got2 += b[i].cbBuffer;
            if (b[i].BufferType == SECBUFFER_EXTRA) extra = b[i].cbBuffer;
        }
        off = len2 - extra;
    }
    QueryPerformanceCounter(&t3);

    double ds = seconds(t0, t1, f), db = seconds(t2, t3, f);
    double mbs = got1 / ds / 1048576.0, mbb = got2 / db / 1048576.0;
    SecPkgContext_ConnectionInfo ci;
    char text[320] = "";
    struct tls_policy pol = TLS_POLICY_DEFAULT;
    if (tls_connection_info(s1, &ci) == SEC_E_OK)
        tls_policy_check(&pol, &ci, NULL, text, sizeof text);
    printf("session: %s\n", text);
    printf("records: %u x %u bytes (%.1f MiB plaintext each way)\n", BENCH_RECORDS, BENCH_RECORD,
           BENCH_RECORDS * (double)BENCH_RECORD / 1048576.0);
    printf("secure stream (tls_feed, %u-byte reads): %8.1f MiB/s  (%.3f s)\n", BENCH_READ, mbs, ds);
    printf("bare DecryptMessage loop:                 %8.1f MiB/s  (%.3f s)\n", mbb, db);
    printf("ratio stream/bare: %.3f\n", mbs / mbb);
    if (got1 != got2 || got1 != (size_t)BENCH_RECORDS * BENCH_RECORD) {
        fprintf(stderr, "tls_bench: plaintext sizes differ: %zu %zu\n", got1, got2);
        return 1;
    }
    tls_free(c1), tls_free(s1), tls_free(c2), tls_free(s2);
    free(w1), free(w2);
    tls_cred_free(&sc), tls_cred_free(&cc);
    CertFreeCertificateContext(cert);
    return 0;
}
