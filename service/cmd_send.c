/* cmd_send.c - `imsvc send` (see cmd_send.h): the blocking socket driver.
 *
 * The driver does what docs/smtp-client.md ("What the socket driver must
 * do") asks of it and nothing more: it owns the socket, the timers, the
 * secure stream and the NTLM context; every protocol decision is the
 * engine's. After STARTTLS only bytes the stream decrypted reach the engine,
 * and plaintext the engine has not taken yet stays in the stream's queue
 * until it does. The password is read from a file, lives only until the NTLM
 * credentials are acquired, and is never printed: the transcript shows the
 * NTLM token lines as their size. It never writes the service's journal
 * (the running service owns that file); events go to the event log.
 */
#include "cmd_send.h"

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
#include "smtpc.h"
#include "tls.h"

#define SEND_DEFAULT_PORT      "25"
#define SEND_CONNECT_TIMEOUT   60u     /* seconds for connect() */
#define SEND_TLS_TIMEOUT       300u    /* seconds for each read of the TLS handshake */
#define SEND_READ_CHUNK        16384u  /* clear-text reads */
#define SEND_FILE_CHUNK        16384u  /* message content reads */
#define SEND_HOST_MAX          256u
#define SEND_PORT_MAX          16u
#define SEND_PASSWORD_MAX      256u    /* octets of the password file's first line */
#define SEND_WHY_MAX           512u    /* a local failure's sentence */
#define SEND_PEER_MAX          (SEND_HOST_MAX + SEND_PORT_MAX + 4u)

struct send_opts {
    char host[SEND_HOST_MAX];
    char port[SEND_PORT_MAX];
    char peer[SEND_PEER_MAX];        /* "host:port", for messages and events */
    const char *from;
    const char **to;
    size_t n_to;
    enum smtpc_tls_policy tls;
    enum tls_trust trust;
    enum smtpc_auth_policy auth;
    const char *user;                /* DOMAIN\user, or NULL: the current account */
    const char *password_file;
    const char *helo;
    int verbose;
    const char *file;
};

enum io_result { IO_OK, IO_EOF, IO_TIMEOUT, IO_TLS_FAILED };

struct driver {
    const struct send_opts *o;
    SOCKET sock;
    int dead;                        /* the connection is gone: drop output */
    struct smtpc *s;
    struct tls_cred cred;
    struct tls_stream *tls;
    struct ntlm *ntlm;
    wchar_t peer_w[SEND_PEER_MAX];
    wchar_t host_w[SEND_HOST_MAX];
    wchar_t domain_w[SEND_HOST_MAX];
    wchar_t user_w[SEND_HOST_MAX];
    wchar_t password_w[SEND_PASSWORD_MAX + 1];
    int have_password;
    FILE *msg;
    unsigned char in[SEND_READ_CHUNK];   /* clear text read, not yet fed */
    size_t in_off, in_len;
    int message_sent;
    int results_taken;
    struct smtpc_result *results;        /* one per recipient */
    struct smtpc_result message;         /* the transaction's, or the session's */
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

static void to_wide(const char *s, wchar_t *out, size_t cap)
{
    out[0] = 0;
    if (MultiByteToWideChar(CP_UTF8, 0, s, -1, out, (int)cap) <= 0)
        out[0] = 0;
    out[cap - 1] = 0;
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

/* Events --------------------------------------------------------------------- */

/* An SSPI call failed: event 4131 with where and what. */
static void report_sspi(const struct driver *d, DWORD location, SECURITY_STATUS st, const char *what)
{
    wchar_t text[600];
    _snwprintf(text, ARRAYSIZE(text), L"imsvc send to %ls: %hs", d->peer_w, what);
    text[ARRAYSIZE(text) - 1] = 0;
    evlog_report(EVENTLOG_ERROR_TYPE, CAT_INTERNAL_PROCESSING, MSG_UNEXPECTED_ERROR, location,
                 (DWORD)st, 1, (const wchar_t *[]){ text });
}

/* The session or the connection failed: MSG_SEND_FAILED with the reason. */
static void report_send_failed(const wchar_t *peer, enum smtpc_reason reason, DWORD location,
                               DWORD status, const char *why)
{
    wchar_t w_why[SMTPC_WHY_MAX + 1];
    wchar_t w_peer[SEND_PEER_MAX];
    to_wide(why, w_why, ARRAYSIZE(w_why));
    wcsncpy(w_peer, peer, ARRAYSIZE(w_peer) - 1);
    w_peer[ARRAYSIZE(w_peer) - 1] = 0;
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
    DWORD ms = (secs ? secs : SEND_TLS_TIMEOUT) * 1000u;
    setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, (const char *)&ms, sizeof ms);
    setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, (const char *)&ms, sizeof ms);
}

/* Send what the stream has encrypted. */
static int flush_tls(struct driver *d)
{
    if (d->dead || net_send_tls(d->sock, d->tls) != 0) {
        d->dead = 1;
        return -1;
    }
    return 0;
}

/* Send the engine's output: through the stream once TLS is up. Once the
 * connection is gone the output is dropped, so the engine can still finish. */
static int flush(struct driver *d)
{
    size_t n;
    const unsigned char *p = smtpc_output(d->s, &n);
    if (n == 0)
        return d->tls ? flush_tls(d) : 0;
    int rc = 0;
    if (d->dead) {
        rc = -1;
    } else if (d->tls) {
        enum tls_state st = tls_state(d->tls);
        if ((st == TLS_ST_OPEN || st == TLS_ST_REFUSED) && tls_write(d->tls, p, n) == SEC_E_OK)
            rc = flush_tls(d);
        else
            rc = -1;
    } else if (net_send_all(d->sock, p, n) != 0) {
        rc = -1;
    }
    smtpc_output_consumed(d->s, n);
    if (rc != 0)
        d->dead = 1;
    return rc;
}

static enum io_result read_error(void)
{
    return WSAGetLastError() == WSAETIMEDOUT ? IO_TIMEOUT : IO_EOF;
}

/* Give the engine the next plaintext: what it has not taken yet, else one
 * read from the socket (decrypted, every complete record, when TLS is up). */
static enum io_result pump(struct driver *d)
{
    if (d->tls) {
        size_t n;
        const unsigned char *app = tls_app_buf(d->tls, &n);
        if (n > 0) {
            tls_app_done(d->tls, smtpc_feed(d->s, app, n));
            return IO_OK;
        }
        switch (tls_state(d->tls)) {
        case TLS_ST_CLOSED:
            return IO_EOF;
        case TLS_ST_FAILED:
            return IO_TLS_FAILED;
        default:
            break;
        }
        size_t cap;
        unsigned char *buf = tls_in_buf(d->tls, &cap);
        if (!buf)
            return tls_state(d->tls) == TLS_ST_FAILED ? IO_TLS_FAILED : IO_EOF;
        set_timeouts(d->sock, smtpc_timeout_secs(d->s));
        int r = recv(d->sock, (char *)buf, cap > INT_MAX ? INT_MAX : (int)cap, 0);
        if (r == 0)
            return IO_EOF;
        if (r < 0)
            return read_error();
        tls_in_done(d->tls, (size_t)r);
        /* a renegotiation or a TLS 1.3 post-handshake answer may be due */
        if (flush_tls(d) != 0)
            return IO_EOF;
        return tls_state(d->tls) == TLS_ST_FAILED ? IO_TLS_FAILED : IO_OK;
    }
    if (d->in_off < d->in_len) {
        d->in_off += smtpc_feed(d->s, d->in + d->in_off, d->in_len - d->in_off);
        return IO_OK;
    }
    set_timeouts(d->sock, smtpc_timeout_secs(d->s));
    int r = recv(d->sock, (char *)d->in, sizeof d->in, 0);
    if (r == 0)
        return IO_EOF;
    if (r < 0)
        return read_error();
    d->in_off = 0;
    d->in_len = (size_t)r;
    d->in_off += smtpc_feed(d->s, d->in, d->in_len);
    return IO_OK;
}

/* Connect to the first address of host:port that answers within the
 * timeout. Returns 0, or the Winsock error of the last attempt. */
static int net_connect(const struct send_opts *o, SOCKET *out)
{
    struct addrinfo hints = { 0 }, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    int err = getaddrinfo(o->host, o->port, &hints, &res);
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
                struct timeval tv = { SEND_CONNECT_TIMEOUT, 0 };
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
static void tls_fail(struct driver *d, const char *why)
{
    if (!d->tls || tls_state(d->tls) != TLS_ST_REFUSED)
        d->dead = 1;
    smtpc_tls_failed(d->s, why);
}

static void start_tls(struct driver *d)
{
    char why[SEND_WHY_MAX], st_text[96];
    /* Whatever followed the 220 in clear can only be an injection. */
    d->in_off = d->in_len = 0;
    if (!d->cred.valid) {
        SECURITY_STATUS st = tls_cred_client(&d->cred);
        if (st != SEC_E_OK) {
            status_text(st, st_text, sizeof st_text);
            snprintf(why, sizeof why, "AcquireCredentialsHandle (Schannel) failed: %s", st_text);
            report_sspi(d, LOC_SMTPC_TLS_CRED, st, why);
            tls_fail(d, why);
            return;
        }
    }
    struct tls_config cfg = { NULL, d->host_w, d->o->trust };
    SECURITY_STATUS st = tls_new(&d->tls, &d->cred, &cfg);
    if (st != SEC_E_OK) {
        status_text(st, st_text, sizeof st_text);
        snprintf(why, sizeof why, "the TLS client handshake could not start: %s", st_text);
        report_sspi(d, LOC_SMTPC_TLS_START, st, why);
        tls_free(d->tls);
        d->tls = NULL;
        tls_fail(d, why);
        return;
    }
    set_timeouts(d->sock, SEND_TLS_TIMEOUT);
    while (flush_tls(d) == 0 && tls_state(d->tls) == TLS_ST_HANDSHAKE) {
        size_t cap;
        unsigned char *buf = tls_in_buf(d->tls, &cap);
        if (!buf)
            break;
        int r = recv(d->sock, (char *)buf, cap > INT_MAX ? INT_MAX : (int)cap, 0);
        if (r <= 0) {
            if (r < 0 && WSAGetLastError() == WSAETIMEDOUT)
                snprintf(why, sizeof why, "the TLS handshake timed out after %u seconds",
                         SEND_TLS_TIMEOUT);
            else
                snprintf(why, sizeof why, "the connection was lost during the TLS handshake");
            d->dead = 1;
            tls_fail(d, why);
            return;
        }
        tls_in_done(d->tls, (size_t)r);
    }
    switch (tls_state(d->tls)) {
    case TLS_ST_OPEN:
        if (d->o->verbose)
            printf("TLS: %s\n", tls_policy_text(d->tls));
        smtpc_tls_started(d->s);
        return;
    case TLS_ST_REFUSED:
        snprintf(why, sizeof why, "the TLS session is below policy: %s", tls_policy_text(d->tls));
        tls_report_failure(d->tls, d->peer_w);
        break;
    case TLS_ST_FAILED:
        status_text(tls_status(d->tls), st_text, sizeof st_text);
        snprintf(why, sizeof why, "the TLS handshake failed: %s", st_text);
        tls_report_failure(d->tls, d->peer_w);
        break;
    case TLS_ST_CLOSED:
        snprintf(why, sizeof why, "the server closed the TLS session during the handshake");
        break;
    default:
        snprintf(why, sizeof why, "the connection was lost during the TLS handshake");
        d->dead = 1;
        break;
    }
    tls_fail(d, why);
}

/* NTLM ----------------------------------------------------------------------- */

static void ntlm_answer(struct driver *d, const struct smtpc_event *ev)
{
    char why[SEND_WHY_MAX], st_text[96];
    const char *verb = ev->xauth ? "XAUTH NTLM" : "AUTH NTLM";
    SECURITY_STATUS st;
    if (ev->first || !d->ntlm) {
        ntlm_free(d->ntlm);
        d->ntlm = NULL;
        wchar_t target[SEND_HOST_MAX + 16];
        _snwprintf(target, ARRAYSIZE(target), L"SMTPSVC/%ls", d->host_w);
        target[ARRAYSIZE(target) - 1] = 0;
        if (d->o->user)
            st = ntlm_client_new(&d->ntlm, d->domain_w[0] ? d->domain_w : NULL, d->user_w,
                                 d->password_w, target);
        else
            st = ntlm_client_new(&d->ntlm, NULL, NULL, NULL, target);
        SecureZeroMemory(d->password_w, sizeof d->password_w);
        if (st != SEC_E_OK) {
            status_text(st, st_text, sizeof st_text);
            snprintf(why, sizeof why, "AcquireCredentialsHandle (NTLM) for %s failed: %s", verb,
                     st_text);
            report_sspi(d, LOC_SMTPC_NTLM_CREDS, st, why);
            smtpc_ntlm_failed(d->s, why);
            return;
        }
    }
    enum ntlm_result r;
    st = ev->first ? ntlm_step(d->ntlm, NULL, 0, &r) : ntlm_step(d->ntlm, ev->data, ev->len, &r);
    size_t n = 0;
    const unsigned char *tok = ntlm_token(d->ntlm, &n);
    if ((r == NTLM_CONTINUE || r == NTLM_DONE) && n > 0 && smtpc_ntlm_token(d->s, tok, n) == 0)
        return;
    status_text(st, st_text, sizeof st_text);
    snprintf(why, sizeof why, "InitializeSecurityContext (NTLM) for %s failed: %s%s", verb,
             st_text, d->o->user ? "" : " (with the current account; try --user)");
    report_sspi(d, LOC_SMTPC_NTLM_INIT, st, why);
    smtpc_ntlm_failed(d->s, why);
    ntlm_free(d->ntlm);
    d->ntlm = NULL;
}

/* The message ---------------------------------------------------------------- */

/* Stream the file; the engine dot-stuffs and makes every line end CRLF. */
static void stream_content(struct driver *d)
{
    unsigned char buf[SEND_FILE_CHUNK];
    size_t n;
    rewind(d->msg);
    while ((n = fread(buf, 1, sizeof buf, d->msg)) > 0) {
        size_t off = 0;
        while (off < n) {
            size_t k = smtpc_content(d->s, buf + off, n - off);
            off += k;
            if (k == 0) {
                set_timeouts(d->sock, SMTPC_TIMEOUT_DATA_BLOCK);
                if (flush(d) != 0) {
                    smtpc_connection_lost(d->s);
                    return;
                }
            }
        }
    }
    if (ferror(d->msg)) {
        /* the file went bad under us: end the session rather than send a
         * truncated message as if it were whole */
        fprintf(stderr, "imsvc send: reading %s failed\n", d->o->file);
        d->dead = 1;
        smtpc_connection_lost(d->s);
        return;
    }
    smtpc_content_end(d->s);
}

static void take_results(struct driver *d)
{
    const struct smtpc_result *m = smtpc_message_result(d->s);
    if (m)
        d->message = *m;
    for (size_t i = 0; i < d->o->n_to; i++) {
        const struct smtpc_result *r = smtpc_rcpt_result(d->s, i);
        if (r)
            d->results[i] = *r;
    }
    d->results_taken = 1;
}

/* The session ---------------------------------------------------------------- */

static void run_session(struct driver *d, const struct smtpc_message *m)
{
    for (;;) {
        struct smtpc_event ev;
        enum smtpc_event_type t = smtpc_next(d->s, &ev);
        int lost = flush(d) != 0;
        if (lost && t != SMTPC_EV_CLOSE && !smtpc_closed(d->s)) {
            smtpc_connection_lost(d->s);
            continue;
        }
        switch (t) {
        case SMTPC_EV_NONE:
            switch (pump(d)) {
            case IO_OK:
                break;
            case IO_TIMEOUT:
                smtpc_timeout(d->s);
                break;
            case IO_TLS_FAILED:
                tls_report_failure(d->tls, d->peer_w);
                d->dead = 1;
                smtpc_connection_lost(d->s);
                break;
            case IO_EOF:
                d->dead = 1;
                smtpc_connection_lost(d->s);
                break;
            }
            break;
        case SMTPC_EV_STARTTLS:
            start_tls(d);
            break;
        case SMTPC_EV_NTLM:
            ntlm_answer(d, &ev);
            break;
        case SMTPC_EV_AUTHENTICATED:
            ntlm_free(d->ntlm);
            d->ntlm = NULL;
            if (d->o->verbose)
                printf("authenticated with %s\n", ev.xauth ? "XAUTH NTLM" : "AUTH NTLM");
            break;
        case SMTPC_EV_READY:
            if (!d->message_sent && smtpc_message_begin(d->s, m) == 0)
                d->message_sent = 1;
            else
                smtpc_quit(d->s);
            break;
        case SMTPC_EV_CONTENT:
            stream_content(d);
            break;
        case SMTPC_EV_MESSAGE_DONE:
            take_results(d);
            break;
        case SMTPC_EV_CLOSE:
            return;
        }
    }
}

static void end_connection(struct driver *d)
{
    if (d->tls && !d->dead) {
        enum tls_state st = tls_state(d->tls);
        if ((st == TLS_ST_OPEN || st == TLS_ST_REFUSED) && tls_shutdown(d->tls) == SEC_E_OK)
            flush_tls(d);
    }
    if (d->sock != INVALID_SOCKET) {
        shutdown(d->sock, SD_SEND);
        closesocket(d->sock);
        d->sock = INVALID_SOCKET;
    }
}

/* Command line --------------------------------------------------------------- */

static int usage(const char *why)
{
    if (why)
        fprintf(stderr, "imsvc send: %s\n", why);
    fprintf(stderr,
            "usage: imsvc send --server HOST[:PORT] --from A --to B [--to C ...]\n"
            "                  [--tls required|opportunistic|off] [--trust verify|any]\n"
            "                  [--auth ntlm|none] [--user DOMAIN\\user --password-file F]\n"
            "                  [--helo NAME] [-v] FILE.eml\n"
            "exit status: 0 every recipient accepted, 1 a permanent failure,\n"
            "             3 transient failures only (retry later), 2 bad usage\n");
    return SEND_EXIT_USAGE;
}

/* "host", "host:port", "[v6]" or "[v6]:port". */
static int parse_server(const char *arg, struct send_opts *o)
{
    const char *host = arg, *port = NULL;
    size_t hlen;
    if (arg[0] == '[') {
        const char *close = strchr(arg, ']');
        if (!close || (close[1] && close[1] != ':'))
            return -1;
        host = arg + 1;
        hlen = (size_t)(close - host);
        if (close[1] == ':')
            port = close + 2;
    } else {
        const char *colon = strchr(arg, ':');
        if (colon && strchr(colon + 1, ':'))
            return -1;    /* a bare IPv6 address needs brackets */
        hlen = colon ? (size_t)(colon - arg) : strlen(arg);
        if (colon)
            port = colon + 1;
    }
    if (hlen == 0 || hlen >= sizeof o->host)
        return -1;
    memcpy(o->host, host, hlen);
    o->host[hlen] = 0;
    if (!port)
        port = SEND_DEFAULT_PORT;
    char *end;
    unsigned long p = strtoul(port, &end, 10);
    if (!*port || *end || p == 0 || p > 65535)
        return -1;
    snprintf(o->port, sizeof o->port, "%lu", p);
    snprintf(o->peer, sizeof o->peer, strchr(o->host, ':') ? "[%s]:%s" : "%s:%s", o->host,
             o->port);
    return 0;
}

static int parse_args(int argc, char **argv, struct send_opts *o)
{
    memset(o, 0, sizeof *o);
    o->tls = SMTPC_TLS_OPPORTUNISTIC;
    o->trust = TLS_TRUST_VERIFY;
    o->auth = SMTPC_AUTH_NONE;
    o->to = calloc((size_t)argc + 1, sizeof *o->to);
    if (!o->to)
        return usage("out of memory");
    int have_server = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
            return usage(NULL);
        if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            o->verbose = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            if (o->file)
                return usage("only one message file may be given");
            o->file = a;
            continue;
        }
        if (!v) {
            fprintf(stderr, "imsvc send: %s needs a value\n", a);
            return usage(NULL);
        }
        i++;
        if (strcmp(a, "--server") == 0) {
            if (parse_server(v, o) != 0)
                return usage("--server wants HOST, HOST:PORT or [IPv6]:PORT");
            have_server = 1;
        } else if (strcmp(a, "--from") == 0) {
            o->from = v;
        } else if (strcmp(a, "--to") == 0) {
            if (o->n_to >= SMTPC_MAX_RCPT)
                return usage("too many recipients");
            o->to[o->n_to++] = v;
        } else if (strcmp(a, "--tls") == 0) {
            if (strcmp(v, "required") == 0)
                o->tls = SMTPC_TLS_REQUIRED;
            else if (strcmp(v, "opportunistic") == 0)
                o->tls = SMTPC_TLS_OPPORTUNISTIC;
            else if (strcmp(v, "off") == 0)
                o->tls = SMTPC_TLS_OFF;
            else
                return usage("--tls wants required, opportunistic or off");
        } else if (strcmp(a, "--trust") == 0) {
            if (strcmp(v, "verify") == 0)
                o->trust = TLS_TRUST_VERIFY;
            else if (strcmp(v, "any") == 0)
                o->trust = TLS_TRUST_ANY;
            else
                return usage("--trust wants verify or any");
        } else if (strcmp(a, "--auth") == 0) {
            if (_stricmp(v, "ntlm") == 0)
                o->auth = SMTPC_AUTH_REQUIRED;
            else if (strcmp(v, "none") == 0)
                o->auth = SMTPC_AUTH_NONE;
            else
                return usage("--auth wants ntlm or none");
        } else if (strcmp(a, "--user") == 0) {
            o->user = v;
        } else if (strcmp(a, "--password-file") == 0) {
            o->password_file = v;
        } else if (strcmp(a, "--helo") == 0) {
            o->helo = v;
        } else {
            fprintf(stderr, "imsvc send: unknown option %s\n", a);
            return usage(NULL);
        }
    }
    if (!have_server)
        return usage("--server is required");
    if (!o->from)
        return usage("--from is required (\"\" for the null sender)");
    if (o->n_to == 0)
        return usage("at least one --to is required");
    if (!o->file)
        return usage("the message file is required");
    if (o->user && !o->password_file)
        return usage("--user needs --password-file");
    if (o->password_file && !o->user)
        return usage("--password-file needs --user");
    if (o->user && o->auth == SMTPC_AUTH_NONE)
        return usage("--user is used only with --auth ntlm");
    return 0;
}

/* The first line of the password file, as UTF-16. */
static int read_password(const char *path, wchar_t *out, size_t cap)
{
    wchar_t wpath[MAX_PATH];
    to_wide(path, wpath, ARRAYSIZE(wpath));
    FILE *f = _wfopen(wpath, L"rb");
    if (!f)
        return -1;
    char line[SEND_PASSWORD_MAX + 2];
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[n] = 0;
    size_t len = strcspn(line, "\r\n");
    int rc = 0;
    if (len > SEND_PASSWORD_MAX)
        rc = -1;
    line[len] = 0;
    if (rc == 0 && MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, line, -1, out, (int)cap) <= 0)
        rc = -1;
    SecureZeroMemory(line, sizeof line);
    return rc;
}

/* DOMAIN\user (or user alone: the domain is left to the server). */
static int split_user(struct driver *d, const char *user)
{
    const char *bs = strchr(user, '\\');
    char dom[SEND_HOST_MAX] = "";
    const char *name = user;
    if (bs) {
        size_t dl = (size_t)(bs - user);
        if (dl >= sizeof dom)
            return -1;
        memcpy(dom, user, dl);
        dom[dl] = 0;
        name = bs + 1;
    }
    if (!*name || strlen(name) >= SEND_HOST_MAX)
        return -1;
    to_wide(dom, d->domain_w, ARRAYSIZE(d->domain_w));
    to_wide(name, d->user_w, ARRAYSIZE(d->user_w));
    return 0;
}

/* Size and 8-bit content, for SIZE= and BODY=8BITMIME. */
static int scan_message(FILE *f, unsigned long long *size, int *eight_bit)
{
    unsigned char buf[SEND_FILE_CHUNK];
    size_t n;
    *size = 0;
    *eight_bit = 0;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        *size += n;
        for (size_t i = 0; i < n && !*eight_bit; i++)
            if (buf[i] & 0x80)
                *eight_bit = 1;
    }
    return ferror(f) ? -1 : 0;
}

static const char *outcome_name(enum smtpc_outcome o)
{
    switch (o) {
    case SMTPC_OK:        return "delivered";
    case SMTPC_TRANSIENT: return "transient failure";
    case SMTPC_PERMANENT: return "permanent failure";
    default:              return "not attempted";
    }
}

/* Print every recipient's result; return the exit status they make. */
static int print_results(const struct send_opts *o, const struct smtpc_result *r)
{
    int permanent = 0, transient = 0;
    for (size_t i = 0; i < o->n_to; i++) {
        if (r[i].outcome == SMTPC_OK) {
            printf("%s: delivered%s%s\n", o->to[i], r[i].reply.code ? ": " : "",
                   r[i].reply.code ? r[i].reply.text : "");
            continue;
        }
        if (r[i].outcome == SMTPC_PERMANENT)
            permanent++;
        else
            transient++;
        printf("%s: %s, status %s\n", o->to[i], outcome_name(r[i].outcome),
               r[i].status[0] ? r[i].status : "4.0.0");
        if (r[i].reply.code)
            printf("  reply: %s\n", r[i].reply.text);
        printf("  why: %s\n", r[i].why[0] ? r[i].why : "the session ended before this recipient");
    }
    if (permanent)
        return SEND_EXIT_PERMANENT;
    return transient ? SEND_EXIT_TRANSIENT : SEND_EXIT_OK;
}

static void local_failure(struct smtpc_result *r, size_t n, enum smtpc_outcome outcome,
                          const char *status, const char *why)
{
    for (size_t i = 0; i < n; i++) {
        memset(&r[i], 0, sizeof r[i]);
        r[i].outcome = outcome;
        snprintf(r[i].status, sizeof r[i].status, "%s", status);
        snprintf(r[i].why, sizeof r[i].why, "%s", why);
    }
}

/* A helo name: the computer's DNS name when it is one the engine takes. */
static struct smtpc *new_session(const struct send_opts *o, struct smtpc_config *cfg)
{
    static char name[SEND_HOST_MAX];
    if (o->helo) {
        cfg->helo_name = o->helo;
        return smtpc_new(cfg);
    }
    DWORD n = sizeof name;
    if (GetComputerNameExA(ComputerNameDnsFullyQualified, name, &n) && name[0]) {
        cfg->helo_name = name;
        struct smtpc *s = smtpc_new(cfg);
        if (s)
            return s;
    }
    cfg->helo_name = "localhost";
    return smtpc_new(cfg);
}

int send_cmd(int argc, char **argv)
{
    struct send_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc != 0) {
        free(o.to);
        return rc;
    }
    struct driver *d = calloc(1, sizeof *d);
    struct smtpc_result *results = calloc(o.n_to, sizeof *results);
    if (!d || !results) {
        fprintf(stderr, "imsvc send: out of memory\n");
        free(d);
        free(results);
        free(o.to);
        return SEND_EXIT_TRANSIENT;
    }
    d->o = &o;
    d->sock = INVALID_SOCKET;
    d->results = results;
    to_wide(o.peer, d->peer_w, ARRAYSIZE(d->peer_w));
    to_wide(o.host, d->host_w, ARRAYSIZE(d->host_w));
    rc = SEND_EXIT_PERMANENT;

    wchar_t wfile[MAX_PATH];
    to_wide(o.file, wfile, ARRAYSIZE(wfile));
    struct smtpc_message m = { o.from, o.to, o.n_to, 0, 0 };
    d->msg = _wfopen(wfile, L"rb");
    if (!d->msg || scan_message(d->msg, &m.size, &m.eight_bit) != 0) {
        fprintf(stderr, "imsvc send: cannot read %s\n", o.file);
        goto out;
    }
    if (o.user) {
        if (split_user(d, o.user) != 0) {
            rc = usage("--user wants DOMAIN\\user or user");
            goto out;
        }
        if (read_password(o.password_file, d->password_w, ARRAYSIZE(d->password_w)) != 0) {
            fprintf(stderr, "imsvc send: cannot read a password (one UTF-8 line of at most %u "
                            "octets) from %s\n", SEND_PASSWORD_MAX, o.password_file);
            goto out;
        }
    }

    WSADATA wsa;
    int err = WSAStartup(MAKEWORD(2, 2), &wsa);
    if (err != 0) {
        fprintf(stderr, "imsvc send: WSAStartup failed (%d)\n", err);
        rc = SEND_EXIT_TRANSIENT;
        goto out;
    }
    err = net_connect(&o, &d->sock);
    if (err != 0) {
        char why[SEND_WHY_MAX];
        char *msg = NULL;
        FormatMessageA(FORMAT_MESSAGE_ALLOCATE_BUFFER | FORMAT_MESSAGE_FROM_SYSTEM |
                       FORMAT_MESSAGE_IGNORE_INSERTS, NULL, (DWORD)err, 0, (char *)&msg, 0, NULL);
        if (msg)
            msg[strcspn(msg, "\r\n")] = 0;
        snprintf(why, sizeof why, "could not connect to %s: %s (Winsock error %d)", o.peer,
                 msg && msg[0] ? msg : "connection failed", err);
        LocalFree(msg);
        local_failure(results, o.n_to, SMTPC_TRANSIENT, "4.4.1", why);
        report_send_failed(d->peer_w, SMTPC_R_CONNECTION_LOST, LOC_SMTPC_CONNECT,
                           (DWORD)err, why);
        rc = print_results(&o, results);
        goto out_wsa;
    }
    if (o.verbose)
        printf("connected to %s\n", o.peer);

    struct smtpc_config cfg = {
        .tls = o.tls,
        .auth = o.auth,
        .tls_missing = SMTPC_CLASS_DEFAULT,
        .auth_missing = SMTPC_CLASS_DEFAULT,
        .transcript = o.verbose ? transcript : NULL,
    };
    d->s = new_session(&o, &cfg);
    if (!d->s) {
        rc = usage("--helo wants a domain name or address literal");
        goto out_wsa;
    }
    run_session(d, &m);
    end_connection(d);

    /* A session that ended before the message (greeting, EHLO, TLS, AUTH)
     * decides for every recipient. */
    const struct smtpc_result *f = smtpc_failure(d->s);
    if (!d->results_taken) {
        local_failure(results, o.n_to, f->outcome == SMTPC_OK ? SMTPC_TRANSIENT : f->outcome,
                      f->status, f->why[0] ? f->why : "the session ended before the message");
        for (size_t i = 0; i < o.n_to; i++)
            results[i].reply = f->reply;
    }
    if (f->outcome != SMTPC_OK && f->outcome != SMTPC_PENDING)
        report_send_failed(d->peer_w, f->reason, LOC_SMTPC_SESSION, 0, f->why);
    rc = print_results(&o, results);

out_wsa:
    if (d->sock != INVALID_SOCKET)
        closesocket(d->sock);
    WSACleanup();
out:
    SecureZeroMemory(d->password_w, sizeof d->password_w);
    if (d->msg)
        fclose(d->msg);
    ntlm_free(d->ntlm);
    tls_free(d->tls);
    if (d->cred.valid)
        tls_cred_free(&d->cred);
    smtpc_free(d->s);
    free(d);
    free(results);
    free(o.to);
    return rc;
}
