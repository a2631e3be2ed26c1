/* tls.c - the secure stream: one Schannel context as a sans-I/O byte stream.
 *
 * See tls.h for the contract. The engine is process(): it runs whenever
 * ciphertext arrives and consumes every complete record it holds, handshake
 * or application data, following each SECBUFFER_EXTRA, before it returns to
 * ask for more. It must never drop a byte it was given, never call an SSPI
 * function with a buffer Schannel could misread (fewer than a record
 * header's five bytes, or fewer than SECBUFFER_MISSING asked for), and never
 * loop without progress: every turn consumes input, or waits, or counts
 * against a renegotiation bound.
 *
 * Plaintext is handed up where DecryptMessage left it, in the input queue,
 * not copied out (the copy and its moves cost about 6 % of the decrypting
 * time, bench/tls_bench.c). The input queue is in two parts:
 *
 *   [in.off, in.off + held)   records decrypted, whose plaintext is still
 *                             held: the spans point into them
 *   [in.off + held, in.len)   ciphertext not decrypted yet: all that the
 *                             decrypt loop, the handshake and the input
 *                             limit ever look at
 *
 * A record's plaintext becomes a span (offset from in.off, so compaction
 * keeps it right) while the app queue is empty and the ring of
 * TLS_SPANS has room; otherwise it is copied to the app queue as before, so
 * the app queue always holds plaintext that comes after every span's. The
 * consumer gets the first span, else the app queue; when the last span is
 * taken, in.off moves past the held records. Nothing waits undecrypted for
 * the consumer: every record is still decrypted as soon as it is complete.
 * A renegotiation's handshake reads [in.off + held, in.len) like the decrypt
 * loop, so the spans stay valid through it; a close or a refusal drops only
 * the bytes not decrypted; while spans are held the queue is grown rather
 * than compacted (up to a bound), so held plaintext is not moved.
 *
 * Credentials carry the policy (protocols, strength, suites): the new
 * SCH_CREDENTIALS form first, kept only if Schannel shows that it honoured
 * it; the legacy SCHANNEL_CRED otherwise (docs/tls.md says what each
 * platform measured did).
 */
#define SCHANNEL_USE_BLACKLISTS /* SCH_CREDENTIALS, TLS_PARAMETERS, CRYPTO_SETTINGS */
#include <windows.h>
#include <subauth.h>            /* UNICODE_STRING, which they use */
#include <bcrypt.h>             /* CNG algorithm and chaining mode names */

#include "tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cert.h"
#include "eventlog.h"
#include "location.h"
#include "tlscache.h"

#define TLS_HEADER        5u                       /* record header bytes */
#define TLS_CONTENT_ALERT 21u                      /* record content type */
#define TLS_RECORD_MAX    (TLS_HEADER + 16384u + 2048u) /* largest TLS 1.2 record */
#define TLS_IN_OFFER      (TLS_RECORD_MAX + 1024u) /* room tls_in_buf offers */
#define TLS_IN_LIMIT      (4u * TLS_RECORD_MAX)    /* unprocessed bytes a peer may leave */
#define TLS_APP_LIMIT     (256u * 1024u)           /* plaintext held before back-pressure */
#define TLS_SPANS         16u                      /* records handed up in place, at most */
#define TLS_IN_GROW_MAX   (2u * TLS_APP_LIMIT)     /* input queue grown to keep plaintext still */
#define TLS_HANDSHAKE_MAX_RETRY 4                  /* SEC_I_INCOMPLETE_CREDENTIALS loops */
#define TLS_TEXT_MAX      320

#define ISC_FLAGS (ISC_REQ_SEQUENCE_DETECT | ISC_REQ_REPLAY_DETECT | ISC_REQ_CONFIDENTIALITY | \
                   ISC_REQ_ALLOCATE_MEMORY | ISC_REQ_STREAM | ISC_REQ_EXTENDED_ERROR |      \
                   ISC_REQ_MANUAL_CRED_VALIDATION | ISC_REQ_USE_SUPPLIED_CREDS)
#define ASC_FLAGS (ASC_REQ_SEQUENCE_DETECT | ASC_REQ_REPLAY_DETECT | ASC_REQ_CONFIDENTIALITY | \
                   ASC_REQ_ALLOCATE_MEMORY | ASC_REQ_STREAM | ASC_REQ_EXTENDED_ERROR)

/* A byte queue: bytes [off, len) are pending. */
struct buf {
    unsigned char *p;
    size_t off, len, cap;
};

/* Plaintext of one record, in place in the input queue, at in.off + off. */
struct span {
    size_t off, len;
};

struct tls_stream {
    int server;
    CredHandle cred;
    CtxtHandle ctx;
    int have_ctx;
    wchar_t *peer_name;
    enum tls_trust trust;
    struct tls_policy policy;

    enum tls_state state;
    SECURITY_STATUS status;
    DWORD fail_loc;
    int close_sent;
    int renegotiating;
    unsigned handshakes;
    unsigned renegotiations;     /* TLS 1.2 and older, after the first handshake */
    unsigned post_handshake;     /* TLS 1.3 post-handshake messages */
    size_t need;                 /* pending input needed before the next call */

    SecPkgContext_StreamSizes sizes;
    SecPkgContext_ConnectionInfo info;
    int have_info;
    SecPkgContext_CipherInfo suite;
    int have_suite;
    char policy_text[TLS_TEXT_MAX];

    struct buf in, out, app, pending;
    size_t held;                 /* [in.off, in.off + held): decrypted, plaintext held */
    struct span span[TLS_SPANS]; /* a ring: span_count from span_first */
    unsigned span_first, span_count;
};

/* Byte queues -------------------------------------------------------------- */

static size_t buf_pending(const struct buf *b)
{
    return b->len - b->off;
}

/* Move the pending bytes to the front. */
static void buf_compact(struct buf *b)
{
    if (b->off) {
        memmove(b->p, b->p + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
}

/* Make room for extra bytes after len, growing the queue. */
static int buf_grow(struct buf *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return 1;
    size_t want = b->len + extra;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < want) {
        if (cap > ((size_t)-1) / 2)
            return 0;
        cap *= 2;
    }
    unsigned char *p = realloc(b->p, cap);
    if (!p)
        return 0;
    b->p = p;
    b->cap = cap;
    return 1;
}

/* Make room for extra bytes after len, moving pending bytes to the front. */
static int buf_reserve(struct buf *b, size_t extra)
{
    if (b->off && (b->off == b->len || b->cap - b->len < extra))
        buf_compact(b);
    return buf_grow(b, extra);
}

static int buf_append(struct buf *b, const void *data, size_t n)
{
    if (!n)
        return 1;
    if (!buf_reserve(b, n))
        return 0;
    memcpy(b->p + b->len, data, n);
    b->len += n;
    return 1;
}

static void buf_consume(struct buf *b, size_t n)
{
    if (n > buf_pending(b))
        n = buf_pending(b);
    b->off += n;
    if (b->off == b->len)
        b->off = b->len = 0;
}

static void buf_free(struct buf *b, int wipe)
{
    if (b->p && wipe)
        SecureZeroMemory(b->p, b->cap);
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* The input queue (see the top of this file) ------------------------------ */

/* The ciphertext not decrypted yet. */
static unsigned char *in_next(const struct tls_stream *s)
{
    return s->in.p + s->in.off + s->held;
}

static size_t in_avail(const struct tls_stream *s)
{
    return buf_pending(&s->in) - s->held;
}

/* n bytes of ciphertext were processed: with spans held they join the held
 * records, else they are gone. */
static void in_take(struct tls_stream *s, size_t n)
{
    if (s->span_count)
        s->held += n;
    else
        buf_consume(&s->in, n);
}

/* Drop the ciphertext not decrypted yet (the stream has ended). */
static void in_drop(struct tls_stream *s)
{
    s->in.len = s->in.off + s->held;
    if (s->in.off == s->in.len)
        s->in.off = s->in.len = 0;
}

/* Room for extra bytes of ciphertext, moving as little as can be.
 * With no plaintext held, the undecrypted tail (about a record at most) goes
 * to the front once less than half the queue is left after it, so that what
 * the owner reads before taking the plaintext usually fits without a move.
 * With plaintext held, the queue grows rather than move it, up to
 * TLS_IN_GROW_MAX (back-pressure bounds what it holds); beyond, it moves.
 * Spans are offsets from in.off: a move keeps them right. */
static int in_reserve(struct tls_stream *s, size_t extra)
{
    struct buf *b = &s->in;
    size_t room = b->cap - b->len;
    if (!s->held) {
        if (b->off && (room < extra || room < b->cap / 2))
            buf_compact(b);
    } else if (room < extra && b->cap >= TLS_IN_GROW_MAX) {
        buf_compact(b);
    }
    return buf_grow(b, extra);
}

/* What the consumer's plaintext keeps in memory, for back-pressure: the
 * app queue and the held records (their plaintext and their overhead, which
 * for tiny records is most of them). */
static size_t app_held(const struct tls_stream *s)
{
    return buf_pending(&s->app) + s->held;
}

/* Hand the plaintext at p (n bytes, inside the record of rec bytes at
 * in_next()) up: in place while nothing waits in the app queue and the ring
 * has room, else copied to the app queue. Returns 0 if out of memory. */
static int in_plaintext(struct tls_stream *s, const unsigned char *p, size_t n, size_t rec)
{
    const unsigned char *base = in_next(s);
    if (!n)
        return 1;
    if (buf_pending(&s->app) || s->span_count == TLS_SPANS || p < base || p + n > base + rec)
        return buf_append(&s->app, p, n);
    struct span *sp = &s->span[(s->span_first + s->span_count++) % TLS_SPANS];
    sp->off = (size_t)(p - (s->in.p + s->in.off));
    sp->len = n;
    return 1;
}

/* State ------------------------------------------------------------------- */

static SECURITY_STATUS fail(struct tls_stream *s, DWORD loc, SECURITY_STATUS st)
{
    if (s->state != TLS_ST_FAILED) {
        s->state = TLS_ST_FAILED;
        s->status = st;
        s->fail_loc = loc;
    }
    return s->status;
}

static SECURITY_STATUS oom(struct tls_stream *s, DWORD loc)
{
    return fail(s, loc, SEC_E_INSUFFICIENT_MEMORY);
}

/* Status the caller sees: failures and refusals are sticky. */
static SECURITY_STATUS result(const struct tls_stream *s)
{
    return s->state == TLS_ST_FAILED || s->state == TLS_ST_REFUSED ? s->status : SEC_E_OK;
}

/* Append an SSPI-allocated output token to the send queue and free it. */
static int take_token(struct tls_stream *s, SecBuffer *b)
{
    int ok = 1;
    if (b->pvBuffer) {
        if (b->cbBuffer)
            ok = buf_append(&s->out, b->pvBuffer, b->cbBuffer);
        FreeContextBuffer(b->pvBuffer);
        b->pvBuffer = NULL;
        b->cbBuffer = 0;
    }
    return ok;
}

/* One call of the handshake function; in may be NULL (first client call,
 * shutdown). Output tokens are queued whatever the status: on failure they
 * hold the alert for the peer. */
static SECURITY_STATUS handshake_call(struct tls_stream *s, SecBufferDesc *in)
{
    SecBuffer ob[2] = { { 0, SECBUFFER_TOKEN, NULL }, { 0, SECBUFFER_ALERT, NULL } };
    SecBufferDesc od = { SECBUFFER_VERSION, 2, ob };
    ULONG attrs = 0;
    TimeStamp ts;
    SECURITY_STATUS st;
    CtxtHandle before = s->ctx;

    if (s->server)
        st = AcceptSecurityContext(&s->cred, s->have_ctx ? &s->ctx : NULL, in, ASC_FLAGS, 0,
                                   &s->ctx, &od, &attrs, &ts);
    else
        st = InitializeSecurityContextW(&s->cred, s->have_ctx ? &s->ctx : NULL,
                                        s->peer_name, ISC_FLAGS, 0, 0, in, 0, &s->ctx, &od,
                                        &attrs, &ts);
    /* A first call may or may not create the context when it fails or needs
     * more input (Wine creates it, Windows does not): the handle tells. */
    if (!s->have_ctx && (s->ctx.dwLower != before.dwLower || s->ctx.dwUpper != before.dwUpper))
        s->have_ctx = 1;
    int ok = take_token(s, &ob[0]);
    ok &= take_token(s, &ob[1]);
    if (!ok && !FAILED(st))
        st = SEC_E_INSUFFICIENT_MEMORY;
    return st;
}

static void flush_pending(struct tls_stream *s);

/* After every handshake: sizes, what was negotiated, policy, peer check. */
static void handshake_done(struct tls_stream *s)
{
    SECURITY_STATUS st;
    s->renegotiating = 0;
    s->handshakes++;
    st = QueryContextAttributesW(&s->ctx, SECPKG_ATTR_STREAM_SIZES, &s->sizes);
    if (st == SEC_E_OK && (s->sizes.cbMaximumMessage == 0 || s->sizes.cbHeader > TLS_RECORD_MAX))
        st = SEC_E_INTERNAL_ERROR;
    if (st != SEC_E_OK) {
        fail(s, LOC_SSPI_ATTRIBUTES, st);
        return;
    }
    st = QueryContextAttributesW(&s->ctx, SECPKG_ATTR_CONNECTION_INFO, &s->info);
    if (st != SEC_E_OK) {
        fail(s, LOC_SSPI_ATTRIBUTES, st);
        return;
    }
    s->have_info = 1;
    /* The suite's name says its mode (CBC or AEAD), which CONNECTION_INFO
     * does not; a platform without it leaves an AEAD-only policy unmet. */
    memset(&s->suite, 0, sizeof s->suite);
    s->suite.dwVersion = SECPKGCONTEXT_CIPHERINFO_V1;
    s->have_suite = QueryContextAttributesW(&s->ctx, SECPKG_ATTR_CIPHER_INFO, &s->suite) == SEC_E_OK;
    if (!s->server && s->trust != TLS_TRUST_ANY) {
        PCCERT_CONTEXT peer = NULL;
        st = QueryContextAttributesW(&s->ctx, SECPKG_ATTR_REMOTE_CERT_CONTEXT, &peer);
        if (st != SEC_E_OK) {
            fail(s, LOC_SSPI_CERT_VERIFY, st);
            return;
        }
        DWORD rc = cert_verify_server(peer, s->peer_name, 0);
        CertFreeCertificateContext(peer);
        if (rc != ERROR_SUCCESS) {
            fail(s, LOC_SSPI_CERT_VERIFY, (SECURITY_STATUS)rc);
            return;
        }
    }
    if (!tls_policy_check(&s->policy, &s->info, s->have_suite ? &s->suite : NULL, s->policy_text,
                          sizeof s->policy_text)) {
        s->state = TLS_ST_REFUSED;
        s->status = SEC_E_ALGORITHM_MISMATCH;
        s->fail_loc = LOC_SSPI_POLICY;
        buf_free(&s->pending, 1); /* nothing queued is said below policy */
        return;
    }
    s->state = TLS_ST_OPEN;
    flush_pending(s);
}

/* How many pending bytes to hold before the next call after
 * SEC_E_INCOMPLETE_MESSAGE. SECBUFFER_MISSING is a hint, and not always one
 * number: Wine (like Windows, it says) marks two buffers, one with the bytes
 * missing and one with the whole record's size. The record header says
 * exactly how long the first record is; the smallest hint covers the rest. */
static size_t need_more(const struct tls_stream *s, size_t avail, const SecBuffer *b, int n)
{
    const unsigned char *p = in_next(s);
    size_t record = TLS_HEADER + ((size_t)p[3] << 8 | p[4]);
    if (record > avail)
        return record;
    ULONG missing = 0;
    for (int i = 0; i < n; i++)
        if (b[i].BufferType == SECBUFFER_MISSING && b[i].cbBuffer &&
            (!missing || b[i].cbBuffer < missing))
            missing = b[i].cbBuffer;
    return avail + (missing ? missing : 1);
}

/* One handshake step over the pending input. Returns 1 to go on, 0 to wait
 * for more bytes (or stop). */
static int step_handshake(struct tls_stream *s)
{
    size_t avail = in_avail(s);
    DWORD loc = s->renegotiating ? LOC_SSPI_RENEGOTIATE : LOC_SSPI_HANDSHAKE;
    if (avail < TLS_HEADER || avail < s->need)
        return 0;
    if (avail > (ULONG)-1)
        avail = (ULONG)-1;
    for (int retry = 0;; retry++) {
        SecBuffer ib[2] = { { (ULONG)avail, SECBUFFER_TOKEN, in_next(s) },
                            { 0, SECBUFFER_EMPTY, NULL } };
        SecBufferDesc id = { SECBUFFER_VERSION, 2, ib };
        SECURITY_STATUS st = handshake_call(s, &id);
        if (st == SEC_E_INCOMPLETE_MESSAGE) {
            s->need = need_more(s, avail, ib, 2);
            return 0;
        }
        if (st == SEC_I_INCOMPLETE_CREDENTIALS && !s->server && retry < TLS_HANDSHAKE_MAX_RETRY)
            continue; /* the server asked for a client certificate: go on without */
        if (st != SEC_E_OK && st != SEC_I_CONTINUE_NEEDED) {
            fail(s, loc, st);
            return 0;
        }
        size_t extra = ib[1].BufferType == SECBUFFER_EXTRA ? ib[1].cbBuffer : 0;
        if (extra > avail)
            extra = avail;
        if (st == SEC_I_CONTINUE_NEEDED && extra == avail) {
            /* Nothing taken: calling again with the same bytes would loop. */
            s->need = avail + 1;
            return 0;
        }
        in_take(s, avail - extra);
        s->need = 0;
        if (st == SEC_E_OK)
            handshake_done(s);
        return s->state != TLS_ST_FAILED;
    }
}

/* Queue an alert for the peer (SCHANNEL_ALERT, then one handshake call
 * whose output token carries it). Best effort: the stream is ending. */
static void queue_alert(struct tls_stream *s, DWORD type, DWORD number)
{
    SCHANNEL_ALERT_TOKEN t = { SCHANNEL_ALERT, type, number };
    SecBuffer tb = { sizeof t, SECBUFFER_TOKEN, &t };
    SecBufferDesc td = { SECBUFFER_VERSION, 1, &tb };
    if (ApplyControlToken(&s->ctx, &td) == SEC_E_OK)
        handshake_call(s, NULL);
}

/* SEC_I_RENEGOTIATE arrived: may the stream go back to the handshake?
 * TLS 1.3 has no renegotiation, only post-handshake messages (tickets, key
 * updates): those are followed up to a bound. Before TLS 1.3 it is a new
 * handshake: a server refuses the client's (a peer that renegotiates at will
 * makes the server do public-key work at will, and the SMTP session gains
 * nothing); a client follows a server's request at most
 * TLS_RENEGOTIATIONS_MAX times. A refusal fails the stream with the status
 * seen (SEC_I_RENEGOTIATE), so the owner ends the session and reports it. */
static int renegotiation_allowed(struct tls_stream *s)
{
    unsigned v = s->have_info ? tls_protocol_version(s->info.dwProtocol) : 0;
    switch (tls_renegotiation_verdict(s->server, v, &s->renegotiations, &s->post_handshake)) {
    case TLS_RENEG_FOLLOW:
        return 1;
    case TLS_RENEG_REFUSE:
        queue_alert(s, TLS1_ALERT_WARNING, TLS1_ALERT_NO_RENEGOTIATION);
        fail(s, LOC_SSPI_RENEGOTIATE_REFUSED, SEC_I_RENEGOTIATE);
        return 0;
    default:
        fail(s, LOC_SSPI_RENEGOTIATE_LIMIT, SEC_I_RENEGOTIATE);
        return 0;
    }
}

/* Decrypt the record at the front of the pending input. Returns 1 to go on,
 * 0 to wait for more bytes (or stop). */
static int step_decrypt(struct tls_stream *s)
{
    size_t avail = in_avail(s);
    unsigned char *base = in_next(s);
    if (avail < TLS_HEADER || avail < s->need)
        return 0;
    if (avail > (ULONG)-1)
        avail = (ULONG)-1;
    SecBuffer b[4] = { { (ULONG)avail, SECBUFFER_DATA, base },
                       { 0, SECBUFFER_EMPTY, NULL },
                       { 0, SECBUFFER_EMPTY, NULL },
                       { 0, SECBUFFER_EMPTY, NULL } };
    SecBufferDesc d = { SECBUFFER_VERSION, 4, b };
    SECURITY_STATUS st = DecryptMessage(&s->ctx, &d, 0, NULL);

    if (st == SEC_E_INCOMPLETE_MESSAGE) {
        s->need = need_more(s, avail, b, 4);
        return 0;
    }
    if (st != SEC_E_OK && st != SEC_I_RENEGOTIATE && st != SEC_I_CONTEXT_EXPIRED) {
        fail(s, LOC_SSPI_DECRYPT, st);
        return 0;
    }
    const SecBuffer *data = NULL, *extra = NULL;
    for (int i = 0; i < 4; i++) {
        if (b[i].BufferType == SECBUFFER_DATA && !data)
            data = &b[i];
        else if (b[i].BufferType == SECBUFFER_EXTRA && !extra)
            extra = &b[i];
    }
    /* Wine 10 returns SEC_E_OK with no data for the peer's close_notify
     * where Windows returns SEC_I_CONTEXT_EXPIRED: an alert record (content
     * type 21, visible before TLS 1.3) that decrypts to no data is taken as
     * the close it is. */
    if (st == SEC_E_OK && base[0] == TLS_CONTENT_ALERT && (!data || !data->cbBuffer))
        st = SEC_I_CONTEXT_EXPIRED;
    if (st == SEC_I_CONTEXT_EXPIRED) {
        /* The peer's close_notify: a clean end; what follows is not ours. */
        s->state = TLS_ST_CLOSED;
        in_drop(s);
        return 0;
    }
    size_t rest = extra ? extra->cbBuffer : 0;
    if (rest > avail)
        rest = avail;
    if (st == SEC_E_OK && rest == avail) {
        /* Success that took nothing would be asked again forever. */
        fail(s, LOC_SSPI_DECRYPT, SEC_E_INTERNAL_ERROR);
        return 0;
    }
    if (data && !in_plaintext(s, data->pvBuffer, data->cbBuffer, avail - rest)) {
        oom(s, LOC_SSPI_DECRYPT);
        return 0;
    }
    in_take(s, avail - rest);
    s->need = 0;
    if (st == SEC_I_RENEGOTIATE) {
        if (!renegotiation_allowed(s))
            return 0;
        /* The bytes that follow are handshake messages (TLS 1.3 tickets and
         * key updates come this way): they go to the handshake function. */
        s->state = TLS_ST_HANDSHAKE;
        s->renegotiating = 1;
        if (in_avail(s) == 0) {
            /* Schannel wants a handshake call even with nothing more. */
            SecBuffer ib[2] = { { 0, SECBUFFER_TOKEN, NULL }, { 0, SECBUFFER_EMPTY, NULL } };
            SecBufferDesc id = { SECBUFFER_VERSION, 2, ib };
            SECURITY_STATUS hs = handshake_call(s, &id);
            if (hs == SEC_E_OK)
                handshake_done(s);
            else if (hs != SEC_I_CONTINUE_NEEDED && hs != SEC_E_INCOMPLETE_MESSAGE)
                fail(s, LOC_SSPI_RENEGOTIATE, hs);
        }
    }
    return s->state != TLS_ST_FAILED;
}

/* The engine: consume every complete record held. */
static SECURITY_STATUS process(struct tls_stream *s)
{
    for (;;) {
        int go;
        if (s->state == TLS_ST_HANDSHAKE)
            go = step_handshake(s);
        else if (s->state == TLS_ST_OPEN)
            go = step_decrypt(s);
        else
            break;
        if (!go)
            break;
    }
    if (s->state == TLS_ST_REFUSED || s->state == TLS_ST_CLOSED)
        in_drop(s);
    else if (s->state != TLS_ST_FAILED && in_avail(s) > TLS_IN_LIMIT)
        fail(s, LOC_SSPI_INPUT_LIMIT, SEC_E_INVALID_TOKEN);
    return result(s);
}

/* Encrypt n bytes (n <= cbMaximumMessage) as one record onto the send queue. */
static SECURITY_STATUS encrypt_record(struct tls_stream *s, const unsigned char *p, size_t n)
{
    const SecPkgContext_StreamSizes *z = &s->sizes;
    size_t room = (size_t)z->cbHeader + n + z->cbTrailer;
    if (!buf_reserve(&s->out, room))
        return oom(s, LOC_SSPI_ENCRYPT);
    unsigned char *base = s->out.p + s->out.len;
    memcpy(base + z->cbHeader, p, n);
    SecBuffer b[4] = { { z->cbHeader, SECBUFFER_STREAM_HEADER, base },
                       { (ULONG)n, SECBUFFER_DATA, base + z->cbHeader },
                       { z->cbTrailer, SECBUFFER_STREAM_TRAILER, base + z->cbHeader + n },
                       { 0, SECBUFFER_EMPTY, NULL } };
    SecBufferDesc d = { SECBUFFER_VERSION, 4, b };
    SECURITY_STATUS st = EncryptMessage(&s->ctx, 0, &d, 0);
    if (st != SEC_E_OK)
        return fail(s, LOC_SSPI_ENCRYPT, st);
    /* The record is header, data, trailer as Schannel sized them; close any
     * gap left where a part came out shorter than its room. */
    size_t used = b[0].cbBuffer;
    if (b[1].pvBuffer != base + used)
        memmove(base + used, b[1].pvBuffer, b[1].cbBuffer);
    used += b[1].cbBuffer;
    if (b[2].pvBuffer != base + used)
        memmove(base + used, b[2].pvBuffer, b[2].cbBuffer);
    used += b[2].cbBuffer;
    if (used > room)
        return fail(s, LOC_SSPI_ENCRYPT, SEC_E_INTERNAL_ERROR);
    s->out.len += used;
    return SEC_E_OK;
}

static SECURITY_STATUS encrypt_all(struct tls_stream *s, const unsigned char *p, size_t n)
{
    while (n) {
        size_t chunk = n < s->sizes.cbMaximumMessage ? n : s->sizes.cbMaximumMessage;
        SECURITY_STATUS st = encrypt_record(s, p, chunk);
        if (st != SEC_E_OK)
            return st;
        p += chunk;
        n -= chunk;
    }
    return SEC_E_OK;
}

static void flush_pending(struct tls_stream *s)
{
    if (buf_pending(&s->pending)) {
        encrypt_all(s, s->pending.p + s->pending.off, buf_pending(&s->pending));
        buf_free(&s->pending, 1);
    }
}

/* Public: credentials ------------------------------------------------------ */

/* Bulk ciphers no session may use, whatever the policy. */
static const wchar_t *const never_ciphers[] = { L"RC4", L"DES", L"3DES", L"3DES_112", L"RC2" };
#define CRED_CRYPTO_MAX 10u

/* Everything SCH_CREDENTIALS points to, in one place that outlives the call. */
struct sch_build {
    UNICODE_STRING alg[CRED_CRYPTO_MAX];
    UNICODE_STRING cbc;
    CRYPTO_SETTINGS crypto[CRED_CRYPTO_MAX];
    TLS_PARAMETERS tp;
    SCH_CREDENTIALS sc;
};

static void ustr(UNICODE_STRING *u, const wchar_t *text)
{
    u->Length = (USHORT)(wcslen(text) * sizeof(wchar_t));
    u->MaximumLength = (USHORT)(u->Length + sizeof(wchar_t));
    u->Buffer = (PWSTR)text;
}

static void add_crypto(struct sch_build *b, const wchar_t *alg, DWORD min_bits, int cbc_only)
{
    DWORD i = b->tp.cDisabledCrypto;
    if (i >= CRED_CRYPTO_MAX)
        return;
    ustr(&b->alg[i], alg);
    b->crypto[i].eAlgorithmUsage = TlsParametersCngAlgUsageCipher;
    b->crypto[i].strCngAlgId = b->alg[i];
    if (cbc_only) {
        b->crypto[i].cChainingModes = 1;
        b->crypto[i].rgstrChainingModes = &b->cbc;
    }
    /* A minimum bit length disables the algorithm's shorter keys only. */
    b->crypto[i].dwMinBitLength = min_bits;
    b->tp.cDisabledCrypto = i + 1;
}

static void sch_fill(struct sch_build *b, const struct tls_policy *p, int server,
                     PCCERT_CONTEXT *cert, DWORD flags)
{
    memset(b, 0, sizeof *b);
    ustr(&b->cbc, BCRYPT_CHAIN_MODE_CBC);
    for (size_t i = 0; i < ARRAYSIZE(never_ciphers); i++)
        add_crypto(b, never_ciphers[i], 0, 0);
    if (p->min_cipher_bits > 128)
        add_crypto(b, BCRYPT_AES_ALGORITHM, p->min_cipher_bits, 0);
    if (p->min_cipher_bits > 256)
        add_crypto(b, L"CHACHA20_POLY1305", 0, 0);
    if (p->aead_only)
        add_crypto(b, BCRYPT_AES_ALGORITHM, 0, 1);
    b->tp.grbitDisabledProtocols = tls_policy_disabled_protocols(p, server);
    b->tp.pDisabledCrypto = b->crypto;
    b->sc.dwVersion = SCH_CREDENTIALS_VERSION;
    b->sc.cCreds = cert ? 1 : 0;
    b->sc.paCred = cert;
    b->sc.dwFlags = flags;
    b->sc.cTlsParameters = 1;
    b->sc.pTlsParameters = &b->tp;
}

static SECURITY_STATUS acquire(struct tls_cred *c, ULONG use, void *auth)
{
    TimeStamp ts;
    memset(c, 0, sizeof *c);
    SECURITY_STATUS st = AcquireCredentialsHandleW(NULL, (SEC_WCHAR *)UNISP_NAME_W, use, NULL, auth,
                                                   NULL, NULL, &c->h, &ts);
    if (st == SEC_E_OK) {
        c->valid = 1;
        c->server = use == SECPKG_CRED_INBOUND;
        SecPkgCred_SupportedProtocols sp = { 0 };
        if (QueryCredentialsAttributesW(&c->h, SECPKG_ATTR_SUPPORTED_PROTOCOLS, &sp) == SEC_E_OK)
            c->protocols = sp.grbitProtocol;
    }
    return st;
}

/* The new form where Schannel takes it and shows it honoured the protocol
 * floor (a Schannel that accepts SCH_CREDENTIALS but ignores TLS_PARAMETERS,
 * as Wine 10's does, still reports the versions it would offer); else the
 * legacy form, whose protocol mask and minimum strength every Schannel
 * reads. Either way the stream checks every handshake again. */
static SECURITY_STATUS cred_make(struct tls_cred *c, ULONG use, PCCERT_CONTEXT cert,
                                 const struct tls_policy *policy, DWORD flags)
{
    static const struct tls_policy def = TLS_POLICY_DEFAULT;
    const struct tls_policy *p = policy ? policy : &def;
    int server = use == SECPKG_CRED_INBOUND;
    PCCERT_CONTEXT certs[1] = { cert };

    struct sch_build *b = calloc(1, sizeof *b);
    if (!b)
        return SEC_E_INSUFFICIENT_MEMORY;
    sch_fill(b, p, server, cert ? certs : NULL, flags | SCH_USE_STRONG_CRYPTO);
    SECURITY_STATUS st = acquire(c, use, &b->sc);
    DWORD suites = b->tp.cDisabledCrypto;
    free(b);
    if (st == SEC_E_OK) {
        if (!(c->protocols & tls_policy_disabled_protocols(p, server))) {
            c->form = TLS_CRED_SCH;
            c->suites_set = suites > 0;
            return SEC_E_OK;
        }
        tls_cred_free(c); /* TLS_PARAMETERS ignored: offered versions below policy */
    }

    SCHANNEL_CRED sc = { 0 };
    sc.dwVersion = SCHANNEL_CRED_VERSION;
    sc.cCreds = cert ? 1 : 0;
    sc.paCred = cert ? certs : NULL;
    sc.grbitEnabledProtocols = tls_policy_protocols(p, server);
    sc.dwMinimumCipherStrength = p->min_cipher_bits;
    sc.dwFlags = flags | SCH_USE_STRONG_CRYPTO;
    st = acquire(c, use, &sc);
    if (st == SEC_E_OK)
        c->form = TLS_CRED_LEGACY;
    return st;
}

SECURITY_STATUS tls_cred_server(struct tls_cred *c, PCCERT_CONTEXT cert,
                                const struct tls_policy *policy)
{
    return cred_make(c, SECPKG_CRED_INBOUND, cert, policy, 0);
}

SECURITY_STATUS tls_cred_client(struct tls_cred *c, const struct tls_policy *policy)
{
    /* The stream validates the server itself (cert_verify_server), so that
     * the trust choice is per destination and the failure has its status. */
    return cred_make(c, SECPKG_CRED_OUTBOUND, NULL, policy,
                     SCH_CRED_MANUAL_CRED_VALIDATION | SCH_CRED_NO_DEFAULT_CREDS);
}

void tls_cred_free(struct tls_cred *c)
{
    if (c->entry) {
        tls_cache_release(c);
    } else if (c->valid) {
        FreeCredentialsHandle(&c->h);
    }
    memset(c, 0, sizeof *c);
}

void tls_cred_describe(const struct tls_cred *c, char *text, size_t cap)
{
    static const struct { DWORD bits; const char *name; } names[] = {
        { SP_PROT_SSL2_SERVER | SP_PROT_SSL2_CLIENT, "SSL 2.0" },
        { SP_PROT_SSL3_SERVER | SP_PROT_SSL3_CLIENT, "SSL 3.0" },
        { SP_PROT_TLS1_0_SERVER | SP_PROT_TLS1_0_CLIENT, "TLS 1.0" },
        { SP_PROT_TLS1_1_SERVER | SP_PROT_TLS1_1_CLIENT, "TLS 1.1" },
        { SP_PROT_TLS1_2_SERVER | SP_PROT_TLS1_2_CLIENT, "TLS 1.2" },
        { SP_PROT_TLS1_3_SERVER | SP_PROT_TLS1_3_CLIENT, "TLS 1.3" },
    };
    char vers[96] = "";
    size_t used = 0;
    for (size_t i = 0; i < ARRAYSIZE(names); i++)
        if (c->protocols & names[i].bits) {
            int n = snprintf(vers + used, sizeof vers - used, "%s%s", used ? ", " : "", names[i].name);
            if (n < 0 || (size_t)n >= sizeof vers - used)
                break;
            used += (size_t)n;
        }
    int n = snprintf(text, cap, "%s, %s (%s)%s",
                     c->form == TLS_CRED_SCH ? "SCH_CREDENTIALS" :
                     c->form == TLS_CRED_LEGACY ? "SCHANNEL_CRED" : "no credentials",
                     used ? vers : "versions not reported", c->server ? "server" : "client",
                     c->suites_set ? ", suites restricted in the credentials" : "");
    if (cap && (n < 0 || (size_t)n >= cap))
        text[cap - 1] = 0;
}

/* Public: the stream ------------------------------------------------------- */

SECURITY_STATUS tls_new(struct tls_stream **out, const struct tls_cred *cred,
                        const struct tls_config *cfg)
{
    static const struct tls_policy def = TLS_POLICY_DEFAULT;
    *out = NULL;
    if (!cred || !cred->valid)
        return SEC_E_INVALID_HANDLE;
    struct tls_stream *s = calloc(1, sizeof *s);
    if (!s)
        return SEC_E_INSUFFICIENT_MEMORY;
    s->server = cred->server;
    s->cred = cred->h;
    s->ctx.dwLower = s->ctx.dwUpper = (ULONG_PTR)-1;
    s->policy = cfg && cfg->policy ? *cfg->policy : def;
    s->trust = cfg ? cfg->trust : TLS_TRUST_VERIFY;
    if (cfg && cfg->peer_name) {
        s->peer_name = _wcsdup(cfg->peer_name);
        if (!s->peer_name) {
            free(s);
            return SEC_E_INSUFFICIENT_MEMORY;
        }
    }
    s->state = TLS_ST_HANDSHAKE;
    if (!s->server) {
        SECURITY_STATUS st = handshake_call(s, NULL);
        if (st != SEC_I_CONTINUE_NEEDED) {
            SECURITY_STATUS rc = st == SEC_E_OK ? SEC_E_INTERNAL_ERROR : st;
            tls_free(s);
            return rc;
        }
    }
    *out = s;
    return SEC_E_OK;
}

void tls_free(struct tls_stream *s)
{
    if (!s)
        return;
    if (s->have_ctx)
        DeleteSecurityContext(&s->ctx);
    buf_free(&s->in, 1); /* held plaintext is in it */
    buf_free(&s->out, 0);
    buf_free(&s->app, 1);
    buf_free(&s->pending, 1);
    free(s->peer_name);
    free(s);
}

static int accepts_input(const struct tls_stream *s)
{
    return s->state == TLS_ST_HANDSHAKE || s->state == TLS_ST_OPEN;
}

unsigned char *tls_in_buf(struct tls_stream *s, size_t *cap)
{
    *cap = 0;
    if (!accepts_input(s) || app_held(s) >= TLS_APP_LIMIT)
        return NULL;
    if (!in_reserve(s, TLS_IN_OFFER)) {
        oom(s, s->state == TLS_ST_OPEN ? LOC_SSPI_DECRYPT : LOC_SSPI_HANDSHAKE);
        return NULL;
    }
    *cap = s->in.cap - s->in.len;
    return s->in.p + s->in.len;
}

SECURITY_STATUS tls_in_done(struct tls_stream *s, size_t n)
{
    if (!accepts_input(s))
        return result(s);
    if (n > s->in.cap - s->in.len)
        n = s->in.cap - s->in.len;
    s->in.len += n;
    return process(s);
}

SECURITY_STATUS tls_feed(struct tls_stream *s, const void *data, size_t n)
{
    const unsigned char *p = data;
    while (n && accepts_input(s)) {
        /* In pieces of at most a few records, so the input queue stays small
         * however much the caller hands over at once. */
        size_t chunk = n < TLS_IN_OFFER ? n : TLS_IN_OFFER;
        if (!in_reserve(s, chunk))
            return oom(s, s->state == TLS_ST_OPEN ? LOC_SSPI_DECRYPT : LOC_SSPI_HANDSHAKE);
        memcpy(s->in.p + s->in.len, p, chunk);
        s->in.len += chunk;
        process(s);
        p += chunk;
        n -= chunk;
    }
    return result(s);
}

const unsigned char *tls_out_buf(const struct tls_stream *s, size_t *len)
{
    *len = buf_pending(&s->out);
    return *len ? s->out.p + s->out.off : NULL;
}

void tls_out_done(struct tls_stream *s, size_t n)
{
    buf_consume(&s->out, n);
}

const unsigned char *tls_app_buf(const struct tls_stream *s, size_t *len)
{
    if (s->span_count) {
        const struct span *sp = &s->span[s->span_first];
        *len = sp->len;
        return s->in.p + s->in.off + sp->off;
    }
    *len = buf_pending(&s->app);
    return *len ? s->app.p + s->app.off : NULL;
}

void tls_app_done(struct tls_stream *s, size_t n)
{
    if (!s->span_count) {
        buf_consume(&s->app, n);
        return;
    }
    struct span *sp = &s->span[s->span_first];
    if (n > sp->len)
        n = sp->len;
    sp->off += n;
    sp->len -= n;
    if (sp->len)
        return;
    s->span_first = (s->span_first + 1) % TLS_SPANS;
    if (--s->span_count == 0) {
        /* The last span taken: the held records are done with. */
        buf_consume(&s->in, s->held);
        s->held = 0;
        s->span_first = 0;
    }
}

SECURITY_STATUS tls_write(struct tls_stream *s, const void *data, size_t n)
{
    if (s->state == TLS_ST_FAILED)
        return s->status;
    if (s->close_sent || s->state == TLS_ST_CLOSED)
        return SEC_E_CONTEXT_EXPIRED;
    if (s->state == TLS_ST_HANDSHAKE) {
        if (!buf_append(&s->pending, data, n))
            return oom(s, LOC_SSPI_ENCRYPT);
        return SEC_E_OK;
    }
    SECURITY_STATUS st = encrypt_all(s, data, n);
    return st != SEC_E_OK ? st : SEC_E_OK;
}

SECURITY_STATUS tls_shutdown(struct tls_stream *s)
{
    if (s->close_sent)
        return SEC_E_OK;
    if (s->state == TLS_ST_FAILED)
        return s->status;
    s->close_sent = 1;
    buf_free(&s->pending, 1);
    if (!s->have_ctx)
        return SEC_E_OK;
    DWORD token = SCHANNEL_SHUTDOWN;
    SecBuffer tb = { sizeof token, SECBUFFER_TOKEN, &token };
    SecBufferDesc td = { SECBUFFER_VERSION, 1, &tb };
    SECURITY_STATUS st = ApplyControlToken(&s->ctx, &td);
    if (st != SEC_E_OK)
        return fail(s, LOC_SSPI_SHUTDOWN, st);
    st = handshake_call(s, NULL);
    if (st != SEC_E_OK && st != SEC_I_CONTINUE_NEEDED && st != SEC_I_CONTEXT_EXPIRED)
        return fail(s, LOC_SSPI_SHUTDOWN, st);
    return SEC_E_OK;
}

enum tls_state tls_state(const struct tls_stream *s)
{
    return s->state;
}

SECURITY_STATUS tls_status(const struct tls_stream *s)
{
    return result(s);
}

DWORD tls_fail_location(const struct tls_stream *s)
{
    return s->fail_loc;
}

unsigned tls_handshakes(const struct tls_stream *s)
{
    return s->handshakes;
}

int tls_close_sent(const struct tls_stream *s)
{
    return s->close_sent;
}

SECURITY_STATUS tls_connection_info(const struct tls_stream *s, SecPkgContext_ConnectionInfo *ci)
{
    if (!s->have_info)
        return SEC_E_INVALID_HANDLE;
    *ci = s->info;
    return SEC_E_OK;
}

SECURITY_STATUS tls_cipher_info(const struct tls_stream *s, SecPkgContext_CipherInfo *suite)
{
    if (!s->have_suite)
        return SEC_E_INVALID_HANDLE;
    *suite = s->suite;
    return SEC_E_OK;
}

const char *tls_policy_text(const struct tls_stream *s)
{
    return s->policy_text;
}

SECURITY_STATUS tls_peer_cert(const struct tls_stream *s, PCCERT_CONTEXT *out)
{
    *out = NULL;
    if (!s->have_ctx)
        return SEC_E_INVALID_HANDLE;
    return QueryContextAttributesW((PCtxtHandle)&s->ctx, SECPKG_ATTR_REMOTE_CERT_CONTEXT, out);
}

const CtxtHandle *tls_context(const struct tls_stream *s)
{
    return s->have_ctx ? &s->ctx : NULL;
}

/* Events ------------------------------------------------------------------- */

void tls_event_data(DWORD location, DWORD status, unsigned char out[8])
{
    for (int i = 0; i < 4; i++) {
        out[i] = (unsigned char)(location >> (8 * i));
        out[4 + i] = (unsigned char)(status >> (8 * i));
    }
}

static const char *site_name(DWORD loc)
{
    switch (loc) {
    case LOC_SSPI_DECRYPT: return "DecryptMessage";
    case LOC_SSPI_HANDSHAKE: return "the TLS handshake";
    case LOC_SSPI_RENEGOTIATE: return "the TLS renegotiation";
    case LOC_SSPI_RENEGOTIATE_REFUSED: return "a renegotiation the client asked for (refused)";
    case LOC_SSPI_RENEGOTIATE_LIMIT: return "a renegotiation beyond the limit (refused)";
    case LOC_SSPI_ENCRYPT: return "EncryptMessage";
    case LOC_SSPI_SHUTDOWN: return "the TLS shutdown";
    case LOC_SSPI_ATTRIBUTES: return "QueryContextAttributes";
    case LOC_SSPI_POLICY: return "the security policy check";
    case LOC_SSPI_CERT_VERIFY: return "the server certificate check";
    case LOC_SSPI_INPUT_LIMIT: return "the input limit";
    default: return "the secure channel";
    }
}

DWORD tls_report_failure(const struct tls_stream *s, const wchar_t *peer)
{
    char text[TLS_TEXT_MAX + 160];
    int n;
    if (s->state == TLS_ST_REFUSED)
        n = snprintf(text, sizeof text, "secure session refused: %s", s->policy_text);
    else
        n = snprintf(text, sizeof text, "secure session failed in %s with status 0x%08lX",
                     site_name(s->fail_loc), (unsigned long)s->status);
    if (n < 0 || (size_t)n >= sizeof text)
        text[sizeof text - 1] = 0;
    wchar_t wtext[TLS_TEXT_MAX + 400];
    n = _snwprintf(wtext, ARRAYSIZE(wtext), L"%ls%ls%hs", peer ? peer : L"",
                   peer ? L": " : L"", text);
    if (n < 0)
        wtext[ARRAYSIZE(wtext) - 1] = 0;
    const wchar_t *strings[1] = { wtext };
    return evlog_report(EVENTLOG_ERROR_TYPE, CAT_INTERNAL_PROCESSING, MSG_UNEXPECTED_ERROR,
                        s->fail_loc, (DWORD)s->status, 1, strings);
}
