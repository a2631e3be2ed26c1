/* outbound.c - one outbound SMTP connection (see outbound.h): the blocking
 * socket driver around core/smtpc.
 *
 * The driver does what docs/smtp-client.md ("What the socket driver must
 * do") asks of it and nothing more: it owns the socket, the timers, the
 * secure stream and the NTLM context; every protocol decision is the
 * engine's. After STARTTLS only bytes the stream decrypted reach the engine
 * (whatever followed the 220 in clear is dropped), and plaintext the engine
 * has not taken yet stays in the stream's queue until it does. Each read
 * waits as long as the engine's timer for its state (SO_RCVTIMEO).
 *
 * It must never keep state outside struct outbound (many connections run at
 * once on different threads), never keep the caller's credentials past
 * outbound_open, never print a password or a token, and never write the
 * journal (the running service owns that file): events go to the event log.
 */
#include "outbound.h"

#include <winsock2.h>
#include <ws2tcpip.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventlog.h"
#include "location.h"
#include "netio.h"
#include "ntlm.h"
#include "tlscache.h"
#include "utf.h"

#define OUT_CONNECT_TIMEOUT   60u     /* seconds for connect() */
#define OUT_TLS_TIMEOUT       300u    /* seconds for each read of the TLS handshake */
#define OUT_READ_CHUNK        16384u  /* clear-text reads */
#define OUT_HOST_MAX          256u
#define OUT_PORT_MAX          16u
#define OUT_WHO_MAX           64u     /* the caller's name in event texts */
#define OUT_WHY_MAX           512u    /* a local failure's sentence */
#define OUT_PEER_MAX          (OUT_HOST_MAX + OUT_PORT_MAX + 4u)

enum io_result { IO_OK, IO_EOF, IO_TIMEOUT, IO_TLS_FAILED };

struct outbound {
    SOCKET sock;
    int dead;                        /* the connection is gone: drop output */
    int ready;                       /* the engine said READY: a message may begin */
    int reported;                    /* the session's failure is in the event log */
    int verbose;
    enum tls_trust trust;
    struct smtpc_config cfg;         /* outlives the session, as smtpc_new asks */
    struct smtpc *s;
    struct tls_cred cred;
    struct tls_stream *tls;
    struct ntlm *ntlm;
    const struct outbound_opts *creds;   /* during outbound_open only */
    char helo[OUT_HOST_MAX];
    char peer[OUT_PEER_MAX];         /* "host:port", for messages and events */
    wchar_t peer_w[OUT_PEER_MAX];
    wchar_t host_w[OUT_HOST_MAX];
    wchar_t who_w[OUT_WHO_MAX];
    unsigned char in[OUT_READ_CHUNK];    /* clear text read, not yet fed */
    size_t in_off, in_len;
    /* the message outbound_send is carrying */
    const unsigned char *content;
    size_t content_len;
    size_t n_to;
    struct smtpc_result *results;        /* NULL outside outbound_send */
    struct smtpc_result *msg;
    int results_taken;
};

/* Text ----------------------------------------------------------------------- */

struct status_name {
    long status;
    const char *name;
};

/* The statuses a client meets in practice; others are shown in hex only. */
static const struct status_name status_names[] = {
    { SEC_E_INSUFFICIENT_MEMORY, "SEC_E_INSUFFICIENT_MEMORY" },
    { SEC_E_INVALID_HANDLE, "SEC_E_INVALID_HANDLE" },
    { SEC_E_UNSUPPORTED_FUNCTION, "SEC_E_UNSUPPORTED_FUNCTION" },
    { SEC_E_TARGET_UNKNOWN, "SEC_E_TARGET_UNKNOWN" },
    { SEC_E_INTERNAL_ERROR, "SEC_E_INTERNAL_ERROR" },
    { SEC_E_SECPKG_NOT_FOUND, "SEC_E_SECPKG_NOT_FOUND" },
    { SEC_E_INVALID_TOKEN, "SEC_E_INVALID_TOKEN" },
    { SEC_E_LOGON_DENIED, "SEC_E_LOGON_DENIED" },
    { SEC_E_UNKNOWN_CREDENTIALS, "SEC_E_UNKNOWN_CREDENTIALS" },
    { SEC_E_NO_CREDENTIALS, "SEC_E_NO_CREDENTIALS" },
    { SEC_E_MESSAGE_ALTERED, "SEC_E_MESSAGE_ALTERED" },
    { SEC_E_OUT_OF_SEQUENCE, "SEC_E_OUT_OF_SEQUENCE" },
    { SEC_E_NO_AUTHENTICATING_AUTHORITY, "SEC_E_NO_AUTHENTICATING_AUTHORITY" },
    { SEC_E_CONTEXT_EXPIRED, "SEC_E_CONTEXT_EXPIRED" },
    { SEC_E_INCOMPLETE_MESSAGE, "SEC_E_INCOMPLETE_MESSAGE" },
    { SEC_E_WRONG_PRINCIPAL, "SEC_E_WRONG_PRINCIPAL" },
    { SEC_E_UNTRUSTED_ROOT, "SEC_E_UNTRUSTED_ROOT" },
    { SEC_E_CERT_EXPIRED, "SEC_E_CERT_EXPIRED" },
    { SEC_E_ILLEGAL_MESSAGE, "SEC_E_ILLEGAL_MESSAGE" },
    { SEC_E_ALGORITHM_MISMATCH, "SEC_E_ALGORITHM_MISMATCH" },
    { SEC_E_DECRYPT_FAILURE, "SEC_E_DECRYPT_FAILURE" },
    { CERT_E_EXPIRED, "CERT_E_EXPIRED" },
    { CERT_E_UNTRUSTEDROOT, "CERT_E_UNTRUSTEDROOT" },
    { CERT_E_CHAINING, "CERT_E_CHAINING" },
    { CERT_E_WRONG_USAGE, "CERT_E_WRONG_USAGE" },
    { CERT_E_CN_NO_MATCH, "CERT_E_CN_NO_MATCH" },
    { CERT_E_REVOKED, "CERT_E_REVOKED" },
    { TRUST_E_CERT_SIGNATURE, "TRUST_E_CERT_SIGNATURE" },
};

/* "SEC_E_UNTRUSTED_ROOT (0x80090325)", or just the hex for others. */
static void status_text(long status, char *buf, size_t n)
{
    const char *name = NULL;
    for (size_t i = 0; i < ARRAYSIZE(status_names); i++)
        if (status_names[i].status == status)
            name = status_names[i].name;
    if (name)
        snprintf(buf, n, "%s (0x%08lX)", name, (unsigned long)status);
    else
        snprintf(buf, n, "0x%08lX", (unsigned long)status);
}

/* One line of the dialogue, with anything unprintable escaped. */
static void print_line(const char *prefix, const char *line, size_t len)
{
    fputs(prefix, stdout);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c >= 0x20 && c < 0x7f)
            putchar(c);
        else
            printf("\\x%02x", c);
    }
    putchar('\n');
}

/* Octets a base64 text decodes to. */
static size_t b64_octets(const char *p, size_t len)
{
    while (len > 0 && (p[len - 1] == '=' || p[len - 1] == ' '))
        len--;
    return len * 3 / 4;
}

static void transcript(void *arg, enum smtpc_dir dir, const char *line, size_t len)
{
    (void)arg;
    char label[64];
    switch (dir) {
    case SMTPC_SENT:
        print_line("C: ", line, len);
        break;
    case SMTPC_RECEIVED:
        print_line("S: ", line, len);
        break;
    case SMTPC_SENT_TOKEN:
        /* user, domain, workstation and the response: never a password, but
         * no use to a reader either */
        snprintf(label, sizeof label, "<NTLM token, %zu octets>", b64_octets(line, len));
        print_line("C: ", label, strlen(label));
        break;
    case SMTPC_RECEIVED_TOKEN:
        snprintf(label, sizeof label, "%.4s<NTLM challenge, %zu octets>", line,
                 len > 4 ? b64_octets(line + 4, len - 4) : 0);
        print_line("S: ", label, strlen(label));
        break;
    }
    fflush(stdout);
}

/* A result the engine did not make: a connect or local failure. */
static void result_local(struct smtpc_result *r, enum smtpc_outcome outcome, enum smtpc_reason reason,
                         const char *status, const char *why)
{
    memset(r, 0, sizeof *r);
    r->outcome = outcome;
    r->reason = reason;
    snprintf(r->status, sizeof r->status, "%s", status);
    snprintf(r->why, sizeof r->why, "%s", why);
}

/* Why the session ended, as a result for anything it never decided: a
 * normal or unfinished end cannot be a delivery, so it counts as transient. */
static void session_result(const struct outbound *c, struct smtpc_result *r)
{
    *r = *smtpc_failure(c->s);
    if (r->outcome == SMTPC_OK || r->outcome == SMTPC_PENDING)
        r->outcome = SMTPC_TRANSIENT;
    if (!r->status[0])
        snprintf(r->status, sizeof r->status, "4.0.0");
    if (!r->why[0])
        snprintf(r->why, sizeof r->why, "the session ended before the message");
}

/* Events --------------------------------------------------------------------- */

/* An SSPI call failed: event 4131 with where and what. */
static void report_sspi(const struct outbound *c, DWORD location, SECURITY_STATUS st, const char *what)
{
    wchar_t text[600];
    _snwprintf(text, ARRAYSIZE(text), L"%ls to %ls: %hs", c->who_w, c->peer_w, what);
    text[ARRAYSIZE(text) - 1] = 0;
    evlog_report(EVENTLOG_ERROR_TYPE, CAT_INTERNAL_PROCESSING, MSG_UNEXPECTED_ERROR, location,
                 (DWORD)st, 1, (const wchar_t *[]){ text });
}

/* The session or the connection failed: MSG_SEND_FAILED with the reason. */
static void report_send_failed(const struct outbound *c, enum smtpc_reason reason, DWORD location,
                               DWORD status, const char *why)
{
    wchar_t w_why[SMTPC_WHY_MAX + 1];
    wchar_t w_peer[OUT_PEER_MAX];
    utf8_to_wide(why, w_why, ARRAYSIZE(w_why));
    memcpy(w_peer, c->peer_w, sizeof w_peer);
    WORD cat = CAT_MESSAGE_TRANSFER;
    switch (reason) {
    case SMTPC_R_TLS_NOT_OFFERED:
    case SMTPC_R_TLS_REFUSED:
    case SMTPC_R_TLS_FAILED:
    case SMTPC_R_AUTH_NOT_OFFERED:
    case SMTPC_R_AUTH_REFUSED:
    case SMTPC_R_AUTH_LOCAL:
        cat = CAT_SECURITY;
        break;
    default:
        break;
    }
    evlog_report(EVENTLOG_ERROR_TYPE, cat, MSG_SEND_FAILED, location, status, 2,
                 (const wchar_t *[]){ w_peer, w_why });
}

/* Socket I/O ----------------------------------------------------------------- */

static void set_timeouts(SOCKET sock, unsigned secs)
{
    DWORD ms = (secs ? secs : OUT_TLS_TIMEOUT) * 1000u;
    setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, (const char *)&ms, sizeof ms);
    setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, (const char *)&ms, sizeof ms);
}

/* Send what the stream has encrypted. */
static int flush_tls(struct outbound *c)
{
    if (c->dead || net_send_tls(c->sock, c->tls) != 0) {
        c->dead = 1;
        return -1;
    }
    return 0;
}

/* Send the engine's output: through the stream once TLS is up. Once the
 * connection is gone the output is dropped, so the engine can still finish. */
static int flush(struct outbound *c)
{
    size_t n;
    const unsigned char *p = smtpc_output(c->s, &n);
    if (n == 0)
        return c->tls ? flush_tls(c) : 0;
    int rc = 0;
    if (c->dead) {
        rc = -1;
    } else if (c->tls) {
        enum tls_state st = tls_state(c->tls);
        if ((st == TLS_ST_OPEN || st == TLS_ST_REFUSED) && tls_write(c->tls, p, n) == SEC_E_OK)
            rc = flush_tls(c);
        else
            rc = -1;
    } else if (net_send_all(c->sock, p, n) != 0) {
        rc = -1;
    }
    smtpc_output_consumed(c->s, n);
    if (rc != 0)
        c->dead = 1;
    return rc;
}

static enum io_result read_error(void)
{
    return WSAGetLastError() == WSAETIMEDOUT ? IO_TIMEOUT : IO_EOF;
}

/* Give the engine the next plaintext: what it has not taken yet, else one
 * read from the socket (decrypted, every complete record, when TLS is up). */
static enum io_result pump(struct outbound *c)
{
    if (c->tls) {
        size_t n;
        const unsigned char *app = tls_app_buf(c->tls, &n);
        if (n > 0) {
            tls_app_done(c->tls, smtpc_feed(c->s, app, n));
            return IO_OK;
        }
        switch (tls_state(c->tls)) {
        case TLS_ST_CLOSED:
            return IO_EOF;
        case TLS_ST_FAILED:
            return IO_TLS_FAILED;
        default:
            break;
        }
        size_t cap;
        unsigned char *buf = tls_in_buf(c->tls, &cap);
        if (!buf)
            return tls_state(c->tls) == TLS_ST_FAILED ? IO_TLS_FAILED : IO_EOF;
        set_timeouts(c->sock, smtpc_timeout_secs(c->s));
        int r = recv(c->sock, (char *)buf, cap > INT_MAX ? INT_MAX : (int)cap, 0);
        if (r == 0)
            return IO_EOF;
        if (r < 0)
            return read_error();
        tls_in_done(c->tls, (size_t)r);
        /* a renegotiation or a TLS 1.3 post-handshake answer may be due */
        if (flush_tls(c) != 0)
            return IO_EOF;
        return tls_state(c->tls) == TLS_ST_FAILED ? IO_TLS_FAILED : IO_OK;
    }
    if (c->in_off < c->in_len) {
        c->in_off += smtpc_feed(c->s, c->in + c->in_off, c->in_len - c->in_off);
        return IO_OK;
    }
    set_timeouts(c->sock, smtpc_timeout_secs(c->s));
    int r = recv(c->sock, (char *)c->in, sizeof c->in, 0);
    if (r == 0)
        return IO_EOF;
    if (r < 0)
        return read_error();
    c->in_off = 0;
    c->in_len = (size_t)r;
    c->in_off += smtpc_feed(c->s, c->in, c->in_len);
    return IO_OK;
}

/* Connect to the first address of host:port that answers within the
 * timeout. Returns 0, or the Winsock error of the last attempt. */
static int net_connect(const char *host, const char *port, SOCKET *out)
{
    struct addrinfo hints = { 0 }, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    int err = getaddrinfo(host, port, &hints, &res);
    if (err != 0)
        return err;
    err = WSAEHOSTUNREACH;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        SOCKET s = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (s == INVALID_SOCKET) {
            err = WSAGetLastError();
            continue;
        }
        u_long nb = 1;
        ioctlsocket(s, FIONBIO, &nb);
        if (connect(s, ai->ai_addr, (int)ai->ai_addrlen) != 0) {
            err = WSAGetLastError();
            if (err == WSAEWOULDBLOCK) {
                fd_set wr, ex;
                FD_ZERO(&wr);
                FD_ZERO(&ex);
                FD_SET(s, &wr);
                FD_SET(s, &ex);
                struct timeval tv = { OUT_CONNECT_TIMEOUT, 0 };
                int r = select(0, NULL, &wr, &ex, &tv);
                int soerr = 0, len = sizeof soerr;
                if (r == 0)
                    err = WSAETIMEDOUT;
                else if (r < 0)
                    err = WSAGetLastError();
                else if (getsockopt(s, SOL_SOCKET, SO_ERROR, (char *)&soerr, &len) != 0)
                    err = WSAGetLastError();
                else
                    err = soerr;
            }
        } else {
            err = 0;
        }
        if (err == 0) {
            nb = 0;
            ioctlsocket(s, FIONBIO, &nb);
            *out = s;
            freeaddrinfo(res);
            return 0;
        }
        closesocket(s);
    }
    freeaddrinfo(res);
    return err;
}

/* STARTTLS ------------------------------------------------------------------- */

/* The server said 220 to STARTTLS: without a stream, nothing more may go
 * out in clear (a REFUSED stream can still carry the QUIT). */
static void tls_fail(struct outbound *c, const char *why)
{
    if (!c->tls || tls_state(c->tls) != TLS_ST_REFUSED)
        c->dead = 1;
    smtpc_tls_failed(c->s, why);
}

static void start_tls(struct outbound *c)
{
    char why[OUT_WHY_MAX], st_text[96];
    /* Whatever followed the 220 in clear can only be an injection. */
    c->in_off = c->in_len = 0;
    if (!c->cred.valid) {
        SECURITY_STATUS st = tls_cred_for_peer(&c->cred, c->host_w, NULL);
        if (st != SEC_E_OK) {
            status_text(st, st_text, sizeof st_text);
            snprintf(why, sizeof why, "AcquireCredentialsHandle (Schannel) failed: %s", st_text);
            report_sspi(c, LOC_SMTPC_TLS_CRED, st, why);
            tls_fail(c, why);
            return;
        }
    }
    struct tls_config cfg = { NULL, c->host_w, c->trust };
    SECURITY_STATUS st = tls_new(&c->tls, &c->cred, &cfg);
    if (st != SEC_E_OK) {
        status_text(st, st_text, sizeof st_text);
        snprintf(why, sizeof why, "the TLS client handshake could not start: %s", st_text);
        report_sspi(c, LOC_SMTPC_TLS_START, st, why);
        tls_free(c->tls);
        c->tls = NULL;
        tls_fail(c, why);
        return;
    }
    set_timeouts(c->sock, OUT_TLS_TIMEOUT);
    while (flush_tls(c) == 0 && tls_state(c->tls) == TLS_ST_HANDSHAKE) {
        size_t cap;
        unsigned char *buf = tls_in_buf(c->tls, &cap);
        if (!buf)
            break;
        int r = recv(c->sock, (char *)buf, cap > INT_MAX ? INT_MAX : (int)cap, 0);
        if (r <= 0) {
            if (r < 0 && WSAGetLastError() == WSAETIMEDOUT)
                snprintf(why, sizeof why, "the TLS handshake timed out after %u seconds",
                         OUT_TLS_TIMEOUT);
            else
                snprintf(why, sizeof why, "the connection was lost during the TLS handshake");
            c->dead = 1;
            tls_fail(c, why);
            return;
        }
        tls_in_done(c->tls, (size_t)r);
    }
    switch (tls_state(c->tls)) {
    case TLS_ST_OPEN:
        if (c->verbose)
            printf("TLS: %s\n", tls_policy_text(c->tls));
        smtpc_tls_started(c->s);
        return;
    case TLS_ST_REFUSED:
        snprintf(why, sizeof why, "the TLS session is below policy: %s", tls_policy_text(c->tls));
        tls_report_failure(c->tls, c->peer_w);
        break;
    case TLS_ST_FAILED:
        status_text(tls_status(c->tls), st_text, sizeof st_text);
        snprintf(why, sizeof why, "the TLS handshake failed: %s", st_text);
        tls_report_failure(c->tls, c->peer_w);
        break;
    case TLS_ST_CLOSED:
        snprintf(why, sizeof why, "the server closed the TLS session during the handshake");
        break;
    default:
        snprintf(why, sizeof why, "the connection was lost during the TLS handshake");
        c->dead = 1;
        break;
    }
    tls_fail(c, why);
}

/* NTLM ----------------------------------------------------------------------- */

/* The credentials are the caller's (c->creds, during outbound_open only):
 * AcquireCredentialsHandle copies them, so nothing here keeps a password. */
static void ntlm_answer(struct outbound *c, const struct smtpc_event *ev)
{
    char why[OUT_WHY_MAX], st_text[96];
    const char *verb = ev->xauth ? "XAUTH NTLM" : "AUTH NTLM";
    SECURITY_STATUS st;
    if (!c->creds) {
        /* the engine authenticates before its first READY: cannot happen */
        smtpc_ntlm_failed(c->s, "NTLM was asked for after the session was set up");
        return;
    }
    const struct outbound_opts *o = c->creds;
    if (ev->first || !c->ntlm) {
        ntlm_free(c->ntlm);
        c->ntlm = NULL;
        wchar_t target[OUT_HOST_MAX + 16];
        _snwprintf(target, ARRAYSIZE(target), L"SMTPSVC/%ls", c->host_w);
        target[ARRAYSIZE(target) - 1] = 0;
        if (o->user)
            st = ntlm_client_new(&c->ntlm, o->domain && o->domain[0] ? o->domain : NULL, o->user,
                                 o->password ? o->password : L"", target);
        else
            st = ntlm_client_new(&c->ntlm, NULL, NULL, NULL, target);
        if (st != SEC_E_OK) {
            status_text(st, st_text, sizeof st_text);
            snprintf(why, sizeof why, "AcquireCredentialsHandle (NTLM) for %s failed: %s", verb,
                     st_text);
            report_sspi(c, LOC_SMTPC_NTLM_CREDS, st, why);
            smtpc_ntlm_failed(c->s, why);
            return;
        }
    }
    enum ntlm_result r;
    st = ev->first ? ntlm_step(c->ntlm, NULL, 0, &r) : ntlm_step(c->ntlm, ev->data, ev->len, &r);
    size_t n = 0;
    const unsigned char *tok = ntlm_token(c->ntlm, &n);
    if ((r == NTLM_CONTINUE || r == NTLM_DONE) && n > 0 && smtpc_ntlm_token(c->s, tok, n) == 0)
        return;
    status_text(st, st_text, sizeof st_text);
    snprintf(why, sizeof why, "InitializeSecurityContext (NTLM) for %s failed: %s%s", verb,
             st_text, o->user ? "" : " (with the current account; give explicit credentials)");
    report_sspi(c, LOC_SMTPC_NTLM_INIT, st, why);
    smtpc_ntlm_failed(c->s, why);
    ntlm_free(c->ntlm);
    c->ntlm = NULL;
}

/* The message ---------------------------------------------------------------- */

/* Stream the content; the engine dot-stuffs and makes every line end CRLF. */
static void stream_content(struct outbound *c)
{
    size_t off = 0;
    while (off < c->content_len) {
        size_t k = smtpc_content(c->s, c->content + off, c->content_len - off);
        off += k;
        if (k == 0) {
            set_timeouts(c->sock, SMTPC_TIMEOUT_DATA_BLOCK);
            if (flush(c) != 0) {
                smtpc_connection_lost(c->s);
                return;
            }
        }
    }
    smtpc_content_end(c->s);
}

static void take_results(struct outbound *c)
{
    if (!c->results)
        return;
    const struct smtpc_result *m = smtpc_message_result(c->s);
    if (m && c->msg)
        *c->msg = *m;
    for (size_t i = 0; i < c->n_to; i++) {
        const struct smtpc_result *r = smtpc_rcpt_result(c->s, i);
        if (r)
            c->results[i] = *r;
    }
    c->results_taken = 1;
}

/* The session ---------------------------------------------------------------- */

/* Close notify, then the socket. */
static void end_connection(struct outbound *c)
{
    if (c->tls && !c->dead) {
        enum tls_state st = tls_state(c->tls);
        if ((st == TLS_ST_OPEN || st == TLS_ST_REFUSED) && tls_shutdown(c->tls) == SEC_E_OK)
            flush_tls(c);
    }
    if (c->sock != INVALID_SOCKET) {
        shutdown(c->sock, SD_SEND);
        closesocket(c->sock);
        c->sock = INVALID_SOCKET;
    }
    c->dead = 1;
}

/* The engine closed: close the connection and report a failure, once. */
static void session_closed(struct outbound *c)
{
    c->ready = 0;
    end_connection(c);
    const struct smtpc_result *f = smtpc_failure(c->s);
    if (!c->reported && f->outcome != SMTPC_OK && f->outcome != SMTPC_PENDING) {
        report_send_failed(c, f->reason, LOC_SMTPC_SESSION, 0, f->why);
        c->reported = 1;
    }
}

/* Drive the engine until it is READY (returns 0) or has closed (-1). */
static int run(struct outbound *c)
{
    for (;;) {
        struct smtpc_event ev;
        enum smtpc_event_type t = smtpc_next(c->s, &ev);
        int lost = flush(c) != 0;
        if (lost && t != SMTPC_EV_CLOSE && !smtpc_closed(c->s)) {
            smtpc_connection_lost(c->s);
            continue;
        }
        switch (t) {
        case SMTPC_EV_NONE:
            switch (pump(c)) {
            case IO_OK:
                break;
            case IO_TIMEOUT:
                smtpc_timeout(c->s);
                break;
            case IO_TLS_FAILED:
                tls_report_failure(c->tls, c->peer_w);
                c->dead = 1;
                smtpc_connection_lost(c->s);
                break;
            case IO_EOF:
                c->dead = 1;
                smtpc_connection_lost(c->s);
                break;
            }
            break;
        case SMTPC_EV_STARTTLS:
            start_tls(c);
            break;
        case SMTPC_EV_NTLM:
            ntlm_answer(c, &ev);
            break;
        case SMTPC_EV_AUTHENTICATED:
            ntlm_free(c->ntlm);
            c->ntlm = NULL;
            if (c->verbose)
                printf("authenticated with %s\n", ev.xauth ? "XAUTH NTLM" : "AUTH NTLM");
            break;
        case SMTPC_EV_READY:
            c->ready = 1;
            return 0;
        case SMTPC_EV_CONTENT:
            stream_content(c);
            break;
        case SMTPC_EV_MESSAGE_DONE:
            take_results(c);
            break;
        case SMTPC_EV_CLOSE:
            session_closed(c);
            return -1;
        }
    }
}

static void free_connection(struct outbound *c)
{
    if (c->sock != INVALID_SOCKET)
        closesocket(c->sock);
    ntlm_free(c->ntlm);
    tls_free(c->tls);
    if (c->cred.valid)
        tls_cred_free(&c->cred);
    smtpc_free(c->s);
    free(c);
}

/* The interface -------------------------------------------------------------- */

/* The session, named by the caller's helo or by the computer's DNS name
 * when that is one the engine takes. */
static int new_session(struct outbound *c, const char *helo)
{
    if (helo && helo[0]) {
        snprintf(c->helo, sizeof c->helo, "%s", helo);
        c->cfg.helo_name = c->helo;
        c->s = strlen(helo) < sizeof c->helo ? smtpc_new(&c->cfg) : NULL;
        return c->s ? 0 : -1;
    }
    DWORD n = sizeof c->helo;
    if (GetComputerNameExA(ComputerNameDnsFullyQualified, c->helo, &n) && c->helo[0]) {
        c->cfg.helo_name = c->helo;
        c->s = smtpc_new(&c->cfg);
        if (c->s)
            return 0;
    }
    snprintf(c->helo, sizeof c->helo, "localhost");
    c->cfg.helo_name = c->helo;
    c->s = smtpc_new(&c->cfg);
    return c->s ? 0 : -1;
}

int outbound_open(const struct outbound_opts *o, struct outbound **out, struct smtpc_result *fail)
{
    char why[OUT_WHY_MAX];
    *out = NULL;
    memset(fail, 0, sizeof *fail);
    if (!o || !o->host || !o->port || !o->host[0] || strlen(o->host) >= OUT_HOST_MAX ||
        strlen(o->port) >= OUT_PORT_MAX) {
        result_local(fail, SMTPC_PERMANENT, SMTPC_R_NONE, "5.1.2",
                     "the destination is not a usable host and port");
        return -1;
    }
    struct outbound *c = calloc(1, sizeof *c);
    if (!c) {
        result_local(fail, SMTPC_TRANSIENT, SMTPC_R_NONE, "4.3.0", "out of memory");
        return -1;
    }
    c->sock = INVALID_SOCKET;
    c->verbose = o->verbose;
    c->trust = o->trust;
    snprintf(c->peer, sizeof c->peer, strchr(o->host, ':') ? "[%s]:%s" : "%s:%s", o->host, o->port);
    utf8_to_wide(c->peer, c->peer_w, ARRAYSIZE(c->peer_w));
    utf8_to_wide(o->host, c->host_w, ARRAYSIZE(c->host_w));
    wcsncpy(c->who_w, o->who ? o->who : L"outbound", ARRAYSIZE(c->who_w) - 1);
    c->cfg.tls = o->tls;
    c->cfg.auth = o->auth;
    c->cfg.tls_missing = o->tls_missing;
    c->cfg.auth_missing = o->auth_missing;
    c->cfg.transcript = o->verbose ? transcript : NULL;
    c->cfg.transcript_arg = c;

    if (new_session(c, o->helo) != 0) {
        snprintf(why, sizeof why, "the EHLO name \"%.300s\" is not a domain name or address literal "
                 "the client can send (or out of memory)", c->helo);
        result_local(fail, SMTPC_TRANSIENT, SMTPC_R_NONE, "4.3.5", why);
        report_send_failed(c, SMTPC_R_NONE, LOC_SMTPC_SESSION, 0, why);
        free_connection(c);
        return -1;
    }

    int err = net_connect(o->host, o->port, &c->sock);
    if (err != 0) {
        char *msg = NULL;
        FormatMessageA(FORMAT_MESSAGE_ALLOCATE_BUFFER | FORMAT_MESSAGE_FROM_SYSTEM |
                       FORMAT_MESSAGE_IGNORE_INSERTS, NULL, (DWORD)err, 0, (char *)&msg, 0, NULL);
        if (msg)
            msg[strcspn(msg, "\r\n")] = 0;
        snprintf(why, sizeof why, "could not connect to %s: %s (Winsock error %d)", c->peer,
                 msg && msg[0] ? msg : "connection failed", err);
        LocalFree(msg);
        result_local(fail, SMTPC_TRANSIENT, SMTPC_R_CONNECTION_LOST, "4.4.1", why);
        report_send_failed(c, SMTPC_R_CONNECTION_LOST, LOC_SMTPC_CONNECT, (DWORD)err, why);
        c->sock = INVALID_SOCKET;
        free_connection(c);
        return -1;
    }
    if (c->verbose)
        printf("connected to %s\n", c->peer);

    c->creds = o;
    int rc = run(c);
    c->creds = NULL;
    ntlm_free(c->ntlm);    /* a context left by a failed exchange */
    c->ntlm = NULL;
    if (rc != 0) {
        session_result(c, fail);
        free_connection(c);
        return -1;
    }
    *out = c;
    return 0;
}

unsigned outbound_extensions(const struct outbound *c)
{
    return smtpc_extensions(c->s);
}

unsigned outbound_flags(const struct outbound *c)
{
    return smtpc_flags(c->s);
}

unsigned long long outbound_size_limit(const struct outbound *c)
{
    return smtpc_size_limit(c->s);
}

const char *outbound_peer(const struct outbound *c)
{
    return c->peer;
}

const char *outbound_tls_text(const struct outbound *c)
{
    if (!c->tls || !(smtpc_flags(c->s) & SC_TLS))
        return "";
    return tls_policy_text(c->tls);
}

int outbound_send(struct outbound *c, const struct smtpc_message *m, const void *content, size_t len,
                  struct smtpc_result *results, struct smtpc_result *msg)
{
    size_t n_to = m && m->to ? m->n_to : 0;
    struct smtpc_result f;
    if (msg)
        memset(msg, 0, sizeof *msg);
    for (size_t i = 0; i < n_to; i++)
        memset(&results[i], 0, sizeof results[i]);

    if (!c->ready) {
        /* closed before: the failure that closed it decides */
        session_result(c, &f);
        for (size_t i = 0; i < n_to; i++)
            results[i] = f;
        if (msg)
            *msg = f;
        return -1;
    }
    if (smtpc_message_begin(c->s, m) != 0) {
        result_local(&f, SMTPC_TRANSIENT, SMTPC_R_NONE, "4.3.0",
                     "the message could not be started (no recipient, more than the recipient "
                     "limit, a missing address, or out of memory)");
        for (size_t i = 0; i < n_to; i++)
            results[i] = f;
        if (msg)
            *msg = f;
        return 0;
    }
    c->ready = 0;
    c->content = content;
    c->content_len = content ? len : 0;
    c->n_to = n_to;
    c->results = results;
    c->msg = msg;
    c->results_taken = 0;
    int rc = run(c);
    c->content = NULL;
    c->content_len = 0;
    c->results = NULL;
    c->msg = NULL;

    /* whatever the session never decided gets the session's end */
    session_result(c, &f);
    for (size_t i = 0; i < n_to; i++)
        if (results[i].outcome == SMTPC_PENDING)
            results[i] = f;
    if (msg && msg->outcome == SMTPC_PENDING)
        *msg = f;
    return rc;
}

void outbound_close(struct outbound *c)
{
    if (!c)
        return;
    if (c->ready && !c->dead && smtpc_quit(c->s) == 0) {
        c->ready = 0;
        run(c);
    }
    if (c->sock != INVALID_SOCKET)
        end_connection(c);
    free_connection(c);
}
