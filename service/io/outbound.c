/* outbound.c - one outbound SMTP connection (see outbound.h): the driver
 * around core/smtpc, on the I/O engine.
 *
 * The driver does what docs/smtp-client.md ("What the socket driver must
 * do") asks of it and nothing more: it owns the connection, the timers, the
 * channel (and so the secure stream) and the NTLM context; every protocol
 * decision is the engine's. The session runs in the connection's handler
 * (service/io/ioengine.h), event by event: no call here blocks on a socket.
 * The caller's side is a chain of steps on work threads: each step starts
 * something and awaits a condition (READY, a message's results, the end);
 * the handler checks the awaited condition after every change and, once it
 * holds, submits the next step to the thread pool. The blocking calls wait
 * for the last step of their chain. An NTLM step runs on a work thread too. After STARTTLS only bytes the
 * stream decrypted reach the engine (whatever followed the 220 in clear is
 * dropped), and plaintext the engine has not taken yet stays in the stream
 * until it does. Each state's timer is the engine's (smtpc_timeout_secs).
 *
 * It must never keep state outside struct outbound (many connections run at
 * once on different threads), never keep the caller's credentials past
 * the session's READY, never print a password or a token, and never write the
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
#include "logs.h"
#include "channel.h"
#include "ioengine.h"
#include "ntlm.h"
#include "tlscache.h"
#include "utf.h"

#define OUT_CONNECT_TIMEOUT   60u     /* seconds for a connection to be made */
#define OUT_TLS_TIMEOUT       300u    /* seconds for the TLS handshake */
#define OUT_OUT_HIGH          (256u * 1024u)  /* content queued for the socket before waiting */
#define OUT_HOST_MAX          256u
#define OUT_PORT_MAX          16u
#define OUT_WHO_MAX           64u     /* the caller's name in event texts */
#define OUT_WHY_MAX           512u    /* a local failure's sentence */
#define OUT_PEER_MAX          (OUT_HOST_MAX + OUT_PORT_MAX + 4u)

struct outbound;
typedef void (*out_step)(struct outbound *c);

struct outbound {
    struct io_conn *io;              /* NULL between connections */
    struct chan ch;
    /* the step awaiting a condition, and the one submitted to run */
    int (*await_cond)(const struct outbound *);
    out_step await_next, run_next;
    volatile LONG await_armed;
    out_step after_let_go;
    volatile LONG gone_state;        /* 0; 1 a step awaits IO_EV_CLOSED; 2 it has come */
    /* the caller's callback for the chain in progress */
    outbound_open_fn open_done;
    outbound_send_fn send_done;
    void (*close_done)(void *);
    void *arg;
    struct addrinfo *addrs, *addr;   /* while opening: what getaddrinfo gave, the one tried */
    int last_err;                    /* ... and the Winsock error of the last attempt */
    int send_early;                  /* outbound_send_async on a connection not ready */
    int dead;                        /* the connection is gone: drop output */
    int connected;                   /* IO_EV_CONNECTED without error */
    DWORD connect_err;
    int ready;                       /* the engine said READY: a message may begin */
    int reported;                    /* the session's failure is in the event log */
    int verbose;
    int handshaking;
    int ntlm_busy;                   /* a work thread runs an NTLM step */
    int quit_asked;                  /* outbound_close: QUIT now (or close if not idle) */
    int closed;                      /* the handler has closed the connection */
    volatile int ntlm_returned;      /* the work thread finished the NTLM step */
    int ntlm_ok;
    char ntlm_why[OUT_WHY_MAX];
    char tls_text[320];              /* the negotiated protocol and cipher, once secured */
    int msg_asked;                   /* outbound_send: begin the message now */
    int msg_done;                    /* ... and it has been answered (or could not begin) */
    enum tls_trust trust;
    struct tls_policy policy;        /* copied: the options need not outlive outbound_open */
    struct smtpc_config cfg;         /* outlives the session, as smtpc_new asks */
    struct smtpc *s;
    struct tls_cred cred;
    struct ntlm *ntlm;
    struct smtpc_event ntlm_ev;      /* the NTLM step handed to a work thread */
    unsigned char *ntlm_in;
    int has_creds;                   /* until READY: the options' credentials, copied */
    wchar_t *cr_domain, *cr_user, *cr_password;   /* NULL user: the current account */
    char *cr_login, *cr_secret;      /* ... as UTF-8 for AUTH PLAIN/LOGIN (cfg.user, cfg.password) */
    char helo[OUT_HOST_MAX];
    char host[OUT_HOST_MAX], port[OUT_PORT_MAX];
    char peer[OUT_PEER_MAX];         /* "host:port", for messages and events */
    wchar_t peer_w[OUT_PEER_MAX];
    wchar_t host_w[OUT_HOST_MAX];
    wchar_t who_w[OUT_WHO_MAX];
    /* the message outbound_send is carrying */
    const struct smtpc_message *m;
    const unsigned char *content;
    size_t content_len, content_off;
    int streaming;
    size_t n_to;
    struct smtpc_result *results;        /* NULL outside outbound_send */
    struct smtpc_result *msg;
    int results_taken;
    int begin_failed;
    struct protolog_session *plog;       /* the protocol log's; NULL when it is off */
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
    struct outbound *c = arg;
    char label[64];
    /* an NTLM token and a PLAIN or LOGIN credential line go by their length only */
    int secret = dir == SMTPC_SENT_TOKEN || dir == SMTPC_SENT_SECRET;
    protolog_line(c->plog, dir == SMTPC_SENT ? PROTOLOG_COMMAND : secret ? PROTOLOG_SECRET :
                  PROTOLOG_REPLY, secret ? NULL : line, len, NULL);
    if (!c->verbose)
        return;
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
    case SMTPC_SENT_SECRET:
        /* the engine gives a label such as "<password>", never the line */
        print_line("C: ", line, len);
        break;
    }
    fflush(stdout);
}

/* A result the engine did not make: a connect or local failure. */
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
    case SMTPC_R_AUTH_NEEDS_TLS:
        cat = CAT_SECURITY;
        break;
    default:
        break;
    }
    evlog_report(EVENTLOG_ERROR_TYPE, cat, MSG_SEND_FAILED, location, status, 2,
                 (const wchar_t *[]){ w_peer, w_why });
}

/* The handler's side ----------------------------------------------------------- */

static void CALLBACK step_run(PTP_CALLBACK_INSTANCE inst, void *p)
{
    (void)inst;
    struct outbound *c = p;
    c->run_next(c);
}

/* If a step awaits a condition that now holds, submit it (once). Called by
 * the handler after every change and by await itself: whichever sees the
 * condition first wins the exchange. */
static void check_await(struct outbound *c)
{
    MemoryBarrier();
    if (!c->await_armed || !c->await_cond(c))
        return;
    if (InterlockedCompareExchange(&c->await_armed, 0, 1) != 1)
        return;
    c->run_next = c->await_next;
    if (!TrySubmitThreadpoolCallback(step_run, c, NULL))
        c->run_next(c);   /* the pool cannot take it: run it here, rather than never */
}

/* Run next on a work thread once cond holds. */
static void await(struct outbound *c, int (*cond)(const struct outbound *), out_step next)
{
    c->await_cond = cond;
    c->await_next = next;
    InterlockedExchange(&c->await_armed, 1);
    check_await(c);
}

static int always(const struct outbound *c) { (void)c; return 1; }

/* The end of the connection, met from both sides: the handler's
 * IO_EV_CLOSED and the caller's step that awaits it (and then frees c). The
 * second to arrive submits the step, so the handler never touches c after
 * the step may have run. */
static void gone_meet(struct outbound *c, LONG side)
{
    if (InterlockedExchange(&c->gone_state, side) == 0)
        return;   /* first: the other side submits */
    c->run_next = c->after_let_go;
    if (!TrySubmitThreadpoolCallback(step_run, c, NULL))
        c->run_next(c);
}

/* Send the engine's output: through the stream once TLS is up. Once the
 * connection is gone the output is dropped, so the engine can still finish. */
static int flush(struct outbound *c)
{
    size_t n;
    const unsigned char *p = smtpc_output(c->s, &n);
    if (n == 0)
        return c->dead ? -1 : 0;
    int rc = 0;
    if (c->dead) {
        rc = -1;
    } else if (chan_tls(&c->ch)) {
        int st = chan_tls_state(&c->ch);
        if ((st == TLS_ST_OPEN || st == TLS_ST_REFUSED) && chan_write(&c->ch, p, n) == 0)
            rc = 0;
        else
            rc = -1;
    } else if (chan_write(&c->ch, p, n) != 0) {
        rc = -1;
    }
    smtpc_output_consumed(c->s, n);
    if (rc != 0)
        c->dead = 1;
    return rc;
}

/* The server said 220 to STARTTLS: without a stream, nothing more may go
 * out in clear (a REFUSED stream can still carry the QUIT). */
static void tls_fail(struct outbound *c, const char *why)
{
    if (!chan_tls(&c->ch) || chan_tls_state(&c->ch) != TLS_ST_REFUSED)
        c->dead = 1;
    smtpc_tls_failed(c->s, why);
}

static void start_tls(struct outbound *c)
{
    char why[OUT_WHY_MAX], st_text[96];
    if (!c->cred.valid) {
        SECURITY_STATUS st = tls_cred_for_peer(&c->cred, c->host_w, &c->policy);
        if (st != SEC_E_OK) {
            status_text(st, st_text, sizeof st_text);
            snprintf(why, sizeof why, "AcquireCredentialsHandle (Schannel) failed: %s", st_text);
            report_sspi(c, LOC_SMTPC_TLS_CRED, st, why);
            tls_fail(c, why);
            return;
        }
    }
    struct tls_config cfg = { &c->policy, c->host_w, c->trust };
    /* Whatever followed the 220 in clear can only be an injection: the
     * channel drops it. */
    SECURITY_STATUS st = chan_start_tls(&c->ch, &c->cred, &cfg, LOC_SMTPC_TLS_START);
    if (st != SEC_E_OK) {
        status_text(st, st_text, sizeof st_text);
        snprintf(why, sizeof why, "the TLS client handshake could not start: %s", st_text);
        tls_fail(c, why);
        return;
    }
    c->handshaking = 1;
}

/* The handshake ended (CHAN_SECURED, a failure, or the end of the connection). */
static void tls_finished(struct outbound *c, enum chan_status cs)
{
    char why[OUT_WHY_MAX], st_text[96];
    c->handshaking = 0;
    int st = chan_tls_state(&c->ch);
    if (cs == CHAN_SECURED && st == TLS_ST_OPEN) {
        snprintf(c->tls_text, sizeof c->tls_text, "%s", tls_policy_text(chan_tls(&c->ch)));
        if (c->verbose)
            printf("TLS: %s\n", tls_policy_text(chan_tls(&c->ch)));
        smtpc_tls_started(c->s);
        return;
    }
    if (st == TLS_ST_REFUSED) {
        snprintf(why, sizeof why, "the TLS session is below policy: %s",
                 tls_policy_text(chan_tls(&c->ch)));
    } else if (st == TLS_ST_FAILED) {
        status_text(tls_status(chan_tls(&c->ch)), st_text, sizeof st_text);
        snprintf(why, sizeof why, "the TLS handshake failed: %s", st_text);
    } else if (st == TLS_ST_CLOSED) {
        snprintf(why, sizeof why, "the server closed the TLS session during the handshake");
    } else {
        snprintf(why, sizeof why, "the connection was lost during the TLS handshake");
        c->dead = 1;
    }
    tls_fail(c, why);
}

/* A work thread: one NTLM step. The credentials are the copy made at open
 * (kept until READY): AcquireCredentialsHandle copies them in turn. */
static void ntlm_step_work(struct outbound *c);

static void ntlm_work(void *arg)
{
    struct outbound *c = arg;
    ntlm_step_work(c);
    c->ntlm_returned = 1;   /* read by the handler on the IO_EV_WAKE that follows */
}

static void ntlm_step_work(struct outbound *c)
{
    const struct smtpc_event *ev = &c->ntlm_ev;
    char why[OUT_WHY_MAX], st_text[96];
    const char *verb = ev->xauth ? "XAUTH NTLM" : "AUTH NTLM";
    SECURITY_STATUS st;
    if (ev->first || !c->ntlm) {
        ntlm_free(c->ntlm);
        c->ntlm = NULL;
        wchar_t target[OUT_HOST_MAX + 16];
        _snwprintf(target, ARRAYSIZE(target), L"SMTPSVC/%ls", c->host_w);
        target[ARRAYSIZE(target) - 1] = 0;
        if (c->cr_user)
            st = ntlm_client_new(&c->ntlm, c->cr_domain && c->cr_domain[0] ? c->cr_domain : NULL,
                                 c->cr_user, c->cr_password ? c->cr_password : L"", target);
        else
            st = ntlm_client_new(&c->ntlm, NULL, NULL, NULL, target);
        if (st != SEC_E_OK) {
            status_text(st, st_text, sizeof st_text);
            snprintf(c->ntlm_why, sizeof c->ntlm_why, "AcquireCredentialsHandle (NTLM) for %s "
                     "failed: %s", verb, st_text);
            report_sspi(c, LOC_SMTPC_NTLM_CREDS, st, c->ntlm_why);
            c->ntlm_ok = 0;
            return;
        }
    }
    enum ntlm_result r;
    st = ev->first ? ntlm_step(c->ntlm, NULL, 0, &r) : ntlm_step(c->ntlm, ev->data, ev->len, &r);
    size_t n = 0;
    ntlm_token(c->ntlm, &n);
    if ((r == NTLM_CONTINUE || r == NTLM_DONE) && n > 0) {
        c->ntlm_ok = 1;
        return;
    }
    status_text(st, st_text, sizeof st_text);
    snprintf(why, sizeof why, "InitializeSecurityContext (NTLM) for %s failed: %s%s", verb,
             st_text, c->cr_user ? "" : " (with the current account; give explicit credentials)");
    snprintf(c->ntlm_why, sizeof c->ntlm_why, "%s", why);
    report_sspi(c, LOC_SMTPC_NTLM_INIT, st, why);
    ntlm_free(c->ntlm);
    c->ntlm = NULL;
    c->ntlm_ok = 0;
}

static void ntlm_start(struct outbound *c, const struct smtpc_event *ev)
{
    if (!c->has_creds) {
        /* the engine authenticates before its first READY: cannot happen */
        smtpc_ntlm_failed(c->s, "NTLM was asked for after the session was set up");
        return;
    }
    c->ntlm_ev = *ev;
    free(c->ntlm_in);
    c->ntlm_in = NULL;
    if (!ev->first && ev->len) {
        /* the event's data lives only until the next call into the engine */
        c->ntlm_in = malloc(ev->len);
        if (!c->ntlm_in) {
            smtpc_ntlm_failed(c->s, "out of memory for the NTLM challenge");
            return;
        }
        memcpy(c->ntlm_in, ev->data, ev->len);
        c->ntlm_ev.data = c->ntlm_in;
    }
    c->ntlm_busy = 1;
    if (io_work(c->io, ntlm_work, c) != 0) {
        c->ntlm_busy = 0;
        smtpc_ntlm_failed(c->s, "cannot hand the NTLM step to a work thread");
    }
}

/* The NTLM step came back from its work thread. */
static void ntlm_finished(struct outbound *c)
{
    c->ntlm_busy = 0;
    size_t n = 0;
    const unsigned char *tok = c->ntlm_ok ? ntlm_token(c->ntlm, &n) : NULL;
    if (!c->ntlm_ok || smtpc_ntlm_token(c->s, tok, n) != 0) {
        smtpc_ntlm_failed(c->s, c->ntlm_ok ? "the NTLM token is too long" : c->ntlm_why);
        ntlm_free(c->ntlm);
        c->ntlm = NULL;
    }
}

/* Stream the content while the connection takes it; the engine dot-stuffs
 * and makes every line end CRLF. Returns 1 while more remains (the next
 * IO_EV_DRAINED resumes). */
static int stream_content(struct outbound *c)
{
    while (c->content_off < c->content_len) {
        if (!c->dead && io_output_pending(c->io) > OUT_OUT_HIGH)
            return 1;
        size_t k = smtpc_content(c->s, c->content + c->content_off,
                                 c->content_len - c->content_off);
        c->content_off += k;
        if (k == 0 && flush(c) != 0) {
            smtpc_connection_lost(c->s);
            c->streaming = 0;
            return 0;
        }
    }
    smtpc_content_end(c->s);
    c->streaming = 0;
    return 0;
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

/* Close the connection (once) and tell the caller, who then lets go of
 * its reference and waits for the end. */
static void close_conn(struct outbound *c, int graceful)
{
    if (!c->closed) {
        c->closed = 1;
        if (graceful && !c->dead)
            chan_close(&c->ch, 1);   /* close_notify, then the socket */
        else
            io_close(c->io, 0);
    }
    c->dead = 1;
    c->ready = 0;
    check_await(c);
}

/* The engine closed: close the connection and report a failure, once. */
static void session_closed(struct outbound *c)
{
    c->ready = 0;
    flush(c);
    close_conn(c, !c->dead);
    const struct smtpc_result *f = smtpc_failure(c->s);
    if (!c->reported && f->outcome != SMTPC_OK && f->outcome != SMTPC_PENDING) {
        report_send_failed(c, f->reason, f->reason == SMTPC_R_AUTH_NEEDS_TLS
                           ? LOC_SMTPC_AUTH_CLEAR : LOC_SMTPC_SESSION, 0, f->why);
        c->reported = 1;
    }
}

/* The engine's timer for its state, or the handshake's. */
static void arm_timer(struct outbound *c)
{
    unsigned secs = c->handshaking ? OUT_TLS_TIMEOUT : smtpc_timeout_secs(c->s);
    if (c->ntlm_busy)
        secs = 0;
    io_set_deadline(c->io, secs ? secs * 1000u : 0);
}

/* Drive the engine as far as what has arrived allows. */
static void drive(struct outbound *c)
{
    for (;;) {
        if (c->ntlm_busy || c->closed)
            return;
        if (c->streaming && stream_content(c))
            break;
        if (c->quit_asked) {
            c->quit_asked = 0;
            int was_ready = c->ready;
            c->ready = 0;
            if (!was_ready || smtpc_quit(c->s) != 0) {
                close_conn(c, 0);   /* not idle: nothing polite to say */
                return;
            }
        }
        if (c->msg_asked && c->ready) {
            c->msg_asked = 0;
            c->ready = 0;
            if (smtpc_message_begin(c->s, c->m) != 0) {
                c->begin_failed = 1;
                c->ready = 1;
                c->msg_done = 1;
                check_await(c);
                goto wait;
            }
        }
        if (!c->dead) {
            enum chan_status cs = chan_pump(&c->ch);
            if (c->handshaking && cs != CHAN_OK) {
                tls_finished(c, cs);
            } else if (cs == CHAN_FAILED) {
                c->dead = 1;
                smtpc_connection_lost(c->s);
            } else if (cs == CHAN_PEER_CLOSED) {
                c->dead = 1;
                smtpc_connection_lost(c->s);
            }
        }
        struct smtpc_event ev;
        enum smtpc_event_type t = smtpc_next(c->s, &ev);
        int lost = flush(c) != 0;
        if (lost && t != SMTPC_EV_CLOSE && !smtpc_closed(c->s)) {
            smtpc_connection_lost(c->s);
            continue;
        }
        switch (t) {
        case SMTPC_EV_NONE: {
            if (c->handshaking)
                goto wait;
            size_t n;
            const unsigned char *p = chan_input(&c->ch, &n);
            if (n == 0)
                goto wait;
            size_t took = smtpc_feed(c->s, p, n);
            chan_consume(&c->ch, took);
            if (took == 0)
                goto wait;
            break;
        }
        case SMTPC_EV_STARTTLS:
            start_tls(c);
            break;
        case SMTPC_EV_NTLM:
            ntlm_start(c, &ev);
            break;
        case SMTPC_EV_AUTHENTICATED:
            ntlm_free(c->ntlm);
            c->ntlm = NULL;
            if (c->verbose)
                printf("authenticated with %s\n", smtpc_auth_verb(c->s));
            break;
        case SMTPC_EV_READY:
            c->ready = 1;
            if (c->results)
                c->msg_done = 1;   /* the message outbound_send asked for is answered */
            check_await(c);
            if (!c->quit_asked && !c->msg_asked)
                goto wait;
            break;
        case SMTPC_EV_CONTENT:
            c->streaming = 1;
            c->content_off = 0;
            break;
        case SMTPC_EV_MESSAGE_DONE:
            take_results(c);
            break;
        case SMTPC_EV_CLOSE:
            session_closed(c);
            return;
        }
    }
wait:
    if (c->dead && !smtpc_closed(c->s)) {
        smtpc_connection_lost(c->s);
        drive(c);
        return;
    }
    arm_timer(c);
}

static void conn_event(struct io_conn *io, void *arg, enum io_event ev, DWORD err)
{
    struct outbound *c = arg;
    (void)io;
    switch (ev) {
    case IO_EV_CONNECTED:
        if (err) {
            c->connect_err = err;
            close_conn(c, 0);
            return;
        }
        c->connected = 1;
        if (c->verbose)
            printf("connected to %s\n", c->peer);
        drive(c);
        break;
    case IO_EV_INPUT:
    case IO_EV_DRAINED:
        drive(c);
        break;
    case IO_EV_WAKE:
        if (c->ntlm_busy && c->ntlm_returned) {
            c->ntlm_returned = 0;
            ntlm_finished(c);
        }
        drive(c);
        check_await(c);   /* a request may have found nothing to do */
        break;
    case IO_EV_EOF:
    case IO_EV_ERROR:
    case IO_EV_SEND_STALLED:
        c->dead = 1;
        if (!c->connected) {
            c->connect_err = err ? err : WSAECONNRESET;
            close_conn(c, 0);
            return;
        }
        if (ev == IO_EV_EOF) {
            /* what arrived before the end is still the server's */
            drive(c);
            if (!smtpc_closed(c->s)) {
                smtpc_connection_lost(c->s);
                drive(c);
            }
        } else {
            if (chan_tls(&c->ch) && chan_tls_state(&c->ch) == TLS_ST_FAILED)
                tls_report_failure(chan_tls(&c->ch), c->peer_w);
            smtpc_connection_lost(c->s);
            drive(c);
        }
        break;
    case IO_EV_TIMER:
        if (!c->connected) {
            c->connect_err = WSAETIMEDOUT;
            close_conn(c, 0);
            return;
        }
        if (c->handshaking) {
            char why[OUT_WHY_MAX];
            snprintf(why, sizeof why, "the TLS handshake timed out after %u seconds",
                     OUT_TLS_TIMEOUT);
            c->handshaking = 0;
            c->dead = 1;
            tls_fail(c, why);
        } else {
            smtpc_timeout(c->s);
        }
        drive(c);
        break;
    case IO_EV_CLOSED:
        /* the caller's reference was the last: its step awaits this, and
         * may free c as soon as it runs */
        chan_free(&c->ch);
        gone_meet(c, 2);   /* last touch of c */
        break;
    default:
        break;
    }
}

/* The caller's side ---------------------------------------------------------- */

static int is_closed(const struct outbound *c) { return c->closed; }
static int is_ready_or_closed(const struct outbound *c) { return c->ready || c->closed; }
static int is_msg_done(const struct outbound *c) { return c->msg_done || c->closed; }

static void let_go_closed(struct outbound *c)
{
    struct io_conn *io = c->io;
    c->io = NULL;
    io_unref(io);
    gone_meet(c, 1);
}

/* The connection is over for the caller: have the handler close it if it
 * has not, give back the caller's reference, and run next once
 * IO_EV_CLOSED has come. The caller's reference makes waking the handler
 * always safe. */
static void let_go_then(struct outbound *c, out_step next)
{
    c->after_let_go = next;
    if (!c->io) {
        next(c);
        return;
    }
    if (c->closed) {
        let_go_closed(c);
        return;
    }
    c->quit_asked = 1;   /* QUIT when idle, else close */
    MemoryBarrier();
    io_wake(c->io);
    await(c, is_closed, let_go_closed);
}

static void forget_creds(struct outbound *c)
{
    wchar_t **p[3] = { &c->cr_domain, &c->cr_user, &c->cr_password };
    char **q[2] = { &c->cr_login, &c->cr_secret };
    /* the engine reads these only before READY; from here it never will */
    c->cfg.user = c->cfg.password = NULL;
    for (int i = 0; i < 3; i++) {
        if (*p[i]) {
            SecureZeroMemory(*p[i], wcslen(*p[i]) * sizeof(wchar_t));
            free(*p[i]);
            *p[i] = NULL;
        }
    }
    for (int i = 0; i < 2; i++) {
        if (*q[i]) {
            SecureZeroMemory(*q[i], strlen(*q[i]));
            free(*q[i]);
            *q[i] = NULL;
        }
    }
    c->has_creds = 0;
}

/* Everything but the connection, which is gone by now. */
static void free_connection(struct outbound *c)
{
    if (c->addrs)
        freeaddrinfo(c->addrs);
    forget_creds(c);
    ntlm_free(c->ntlm);
    free(c->ntlm_in);
    chan_free(&c->ch);
    if (c->cred.valid)
        tls_cred_free(&c->cred);
    smtpc_free(c->s);
    protolog_end(c->plog);
    free(c);
}

/* Opening: resolve, then connect to each address in turn until one answers
 * within the timeout, then run the session until READY or its end. */
static void open_try(struct outbound *c);

static void open_finish(struct outbound *c, const struct smtpc_result *fail)
{
    outbound_open_fn done = c->open_done;
    void *arg = c->arg;
    if (fail) {
        struct smtpc_result f = *fail;
        free_connection(c);
        done(arg, NULL, &f);
        return;
    }
    done(arg, c, NULL);
}

static void open_failed(struct outbound *c)
{
    int err = c->last_err;
    char why[OUT_WHY_MAX];
    char *msg = NULL;
    FormatMessageA(FORMAT_MESSAGE_ALLOCATE_BUFFER | FORMAT_MESSAGE_FROM_SYSTEM |
                   FORMAT_MESSAGE_IGNORE_INSERTS, NULL, (DWORD)err, 0, (char *)&msg, 0, NULL);
    if (msg)
        msg[strcspn(msg, "\r\n")] = 0;
    snprintf(why, sizeof why, "could not connect to %s: %s (Winsock error %d)", c->peer,
             msg && msg[0] ? msg : "connection failed", err);
    LocalFree(msg);
    struct smtpc_result fail;
    smtpc_result_local(&fail, SMTPC_TRANSIENT, SMTPC_R_CONNECTION_LOST, "4.4.1", why);
    report_send_failed(c, SMTPC_R_CONNECTION_LOST, LOC_SMTPC_CONNECT, (DWORD)err, why);
    open_finish(c, &fail);
}

/* The session ended before it was ready; the connection is gone. */
static void open_session_failed(struct outbound *c)
{
    struct smtpc_result fail;
    session_result(c, &fail);
    open_finish(c, &fail);
}

static void open_next_address(struct outbound *c)
{
    c->addr = c->addr->ai_next;
    open_try(c);
}

static void open_connected(struct outbound *c)
{
    if (!c->connected) {
        c->last_err = (int)c->connect_err;
        let_go_then(c, open_next_address);
        return;
    }
    forget_creds(c);
    if (!c->ready) {
        let_go_then(c, open_session_failed);
        return;
    }
    ntlm_free(c->ntlm);   /* a context left by the exchange */
    c->ntlm = NULL;
    open_finish(c, NULL);
}

static void open_try(struct outbound *c)
{
    for (; c->addr; c->addr = c->addr->ai_next) {
        c->connected = c->dead = c->closed = 0;
        c->gone_state = 0;
        c->connect_err = 0;
        DWORD cerr = 0;
        c->io = io_connect(c->addr->ai_addr, (int)c->addr->ai_addrlen,
                           OUT_CONNECT_TIMEOUT * 1000u, conn_event, c, &cerr);
        if (!c->io) {
            c->last_err = (int)cerr;
            continue;
        }
        io_ref(c->io);   /* the caller's: the connection lives until let_go_then */
        protolog_peer(c->plog, c->addr->ai_addr, (int)c->addr->ai_addrlen);
        chan_init(&c->ch, c->io, c->peer_w);
        await(c, is_ready_or_closed, open_connected);
        io_connect_start(c->io);
        return;
    }
    open_failed(c);
}

/* A work thread: the name lookup can block. */
static void open_resolve(struct outbound *c)
{
    struct addrinfo hints = { 0 };
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    c->last_err = getaddrinfo(c->host, c->port, &hints, &c->addrs);
    if (c->last_err != 0) {
        c->addrs = NULL;
        open_failed(c);
        return;
    }
    c->last_err = WSAEHOSTUNREACH;
    c->addr = c->addrs;
    open_try(c);
}

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

static wchar_t *dup_secret(const wchar_t *w, int *bad)
{
    if (!w)
        return NULL;
    wchar_t *p = _wcsdup(w);
    if (!p)
        *bad = 1;
    return p;
}

/* "DOMAIN\user" (or "user") and the password as UTF-8, for AUTH PLAIN and
 * LOGIN: the name as the administrator wrote it. */
static char *utf8_secret(const wchar_t *a, const wchar_t *b, int *bad)
{
    size_t n = (a ? wcslen(a) : 0) + 1 + wcslen(b) + 1;
    wchar_t *w = malloc(n * sizeof *w);
    char *out = malloc(4 * n);
    if (!w || !out) {
        free(w);
        free(out);
        *bad = 1;
        return NULL;
    }
    _snwprintf(w, n, L"%ls%ls%ls", a && a[0] ? a : L"", a && a[0] ? L"\\" : L"", b);
    w[n - 1] = 0;
    wide_to_utf8(w, out, 4 * n);
    SecureZeroMemory(w, n * sizeof *w);
    free(w);
    return out;
}

/* The interface -------------------------------------------------------------- */

int outbound_open_async(const struct outbound_opts *o, outbound_open_fn done, void *arg,
                        struct smtpc_result *fail)
{
    char why[OUT_WHY_MAX];
    memset(fail, 0, sizeof *fail);
    if (!o || !o->host || !o->port || !o->host[0] || strlen(o->host) >= OUT_HOST_MAX ||
        strlen(o->port) >= OUT_PORT_MAX) {
        smtpc_result_local(fail, SMTPC_PERMANENT, SMTPC_R_NONE, "5.1.2",
                     "the destination is not a usable host and port");
        return -1;
    }
    struct outbound *c = calloc(1, sizeof *c);
    if (!c) {
        smtpc_result_local(fail, SMTPC_TRANSIENT, SMTPC_R_NONE, "4.3.0", "out of memory");
        return -1;
    }
    c->open_done = done;
    c->arg = arg;
    c->verbose = o->verbose;
    c->trust = o->trust;
    if (o->policy)
        c->policy = *o->policy;
    else
        c->policy = (struct tls_policy)TLS_POLICY_DEFAULT;
    snprintf(c->host, sizeof c->host, "%s", o->host);
    snprintf(c->port, sizeof c->port, "%s", o->port);
    snprintf(c->peer, sizeof c->peer, strchr(o->host, ':') ? "[%s]:%s" : "%s:%s", o->host, o->port);
    utf8_to_wide(c->peer, c->peer_w, ARRAYSIZE(c->peer_w));
    utf8_to_wide(o->host, c->host_w, ARRAYSIZE(c->host_w));
    wcsncpy(c->who_w, o->who ? o->who : L"outbound", ARRAYSIZE(c->who_w) - 1);
    c->cfg.tls = o->tls;
    c->cfg.auth = o->auth;
    c->cfg.tls_missing = o->tls_missing;
    c->cfg.auth_missing = o->auth_missing;
    c->plog = protolog_outbound(o->host, o->port);
    c->cfg.auth_refused = o->auth_refused;
    c->cfg.mechs = o->mechs;
    c->cfg.transcript = o->verbose || c->plog ? transcript : NULL;
    c->cfg.transcript_arg = c;

    int bad = 0;
    c->has_creds = 1;   /* for NTLM, until the session is ready */
    if (o->user) {
        c->cr_domain = dup_secret(o->domain, &bad);
        c->cr_user = dup_secret(o->user, &bad);
        c->cr_password = dup_secret(o->password ? o->password : L"", &bad);
        if (o->mechs & (SMTPC_MECH_PLAIN | SMTPC_MECH_LOGIN)) {
            c->cr_login = utf8_secret(o->domain, o->user, &bad);
            c->cr_secret = utf8_secret(NULL, o->password ? o->password : L"", &bad);
            c->cfg.user = c->cr_login;
            c->cfg.password = c->cr_secret;
        }
    }
    if (bad) {
        smtpc_result_local(fail, SMTPC_TRANSIENT, SMTPC_R_NONE, "4.3.0", "out of memory");
        free_connection(c);
        return -1;
    }
    if (new_session(c, o->helo) != 0) {
        snprintf(why, sizeof why, "the EHLO name \"%.300s\" is not a domain name or address literal "
                 "the client can send (or out of memory)", c->helo);
        smtpc_result_local(fail, SMTPC_TRANSIENT, SMTPC_R_NONE, "4.3.5", why);
        report_send_failed(c, SMTPC_R_NONE, LOC_SMTPC_SESSION, 0, why);
        free_connection(c);
        return -1;
    }
    await(c, always, open_resolve);   /* the name lookup can block: not on this thread */
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
    if (!(smtpc_flags(c->s) & SC_TLS))
        return "";
    return c->tls_text;
}

/* The message is answered, could not begin, or the connection closed. */
static void send_finish(struct outbound *c)
{
    size_t n_to = c->n_to;
    struct smtpc_result *results = c->results, *msg = c->msg, f;
    int begin_failed = c->begin_failed, early = c->send_early;
    outbound_send_fn done = c->send_done;
    void *arg = c->arg;
    c->m = NULL;
    c->content = NULL;
    c->content_len = 0;
    c->results = NULL;
    c->msg = NULL;
    c->send_early = 0;
    int rc;
    if (early) {
        /* closed before: the failure that closed it decides */
        session_result(c, &f);
        for (size_t i = 0; i < n_to; i++)
            results[i] = f;
        if (msg)
            *msg = f;
        rc = -1;
    } else if (begin_failed) {
        smtpc_result_local(&f, SMTPC_TRANSIENT, SMTPC_R_NONE, "4.3.0",
                     "the message could not be started (no recipient, more than the recipient "
                     "limit, a missing address, or out of memory)");
        for (size_t i = 0; i < n_to; i++)
            results[i] = f;
        if (msg)
            *msg = f;
        rc = 0;
    } else {
        /* whatever the session never decided gets the session's end */
        session_result(c, &f);
        for (size_t i = 0; i < n_to; i++)
            if (results[i].outcome == SMTPC_PENDING)
                results[i] = f;
        if (msg && msg->outcome == SMTPC_PENDING)
            *msg = f;
        rc = c->ready && !c->closed ? 0 : -1;
    }
    done(arg, rc);
}

void outbound_send_async(struct outbound *c, const struct smtpc_message *m, const void *content,
                         size_t len, struct smtpc_result *results, struct smtpc_result *msg,
                         outbound_send_fn done, void *arg)
{
    size_t n_to = m && m->to ? m->n_to : 0;
    if (msg)
        memset(msg, 0, sizeof *msg);
    for (size_t i = 0; i < n_to; i++)
        memset(&results[i], 0, sizeof results[i]);
    c->send_done = done;
    c->arg = arg;
    c->n_to = n_to;
    c->results = results;
    c->msg = msg;
    if (!c->ready || c->closed) {
        c->send_early = 1;
        await(c, always, send_finish);
        return;
    }
    c->m = m;
    c->content = content;
    c->content_len = content ? len : 0;
    c->results_taken = 0;
    c->begin_failed = 0;
    c->msg_done = 0;
    c->msg_asked = 1;
    await(c, is_msg_done, send_finish);
    io_ref(c->io);   /* the handler begins the message and runs it, here if it can */
    io_wake_here(c->io);
}

static void close_finish(struct outbound *c)
{
    void (*done)(void *) = c->close_done;
    void *arg = c->arg;
    free_connection(c);
    if (done)
        done(arg);
}

void outbound_close_async(struct outbound *c, void (*done)(void *arg), void *arg)
{
    if (!c) {
        if (done)
            done(arg);
        return;
    }
    c->close_done = done;
    c->arg = arg;
    let_go_then(c, close_finish);   /* QUIT when idle, close_notify, the socket */
}

/* The blocking calls: start the chain, wait for its callback. */
struct waiter {
    HANDLE ev;
    struct outbound *c;
    struct smtpc_result fail;
    int rc;
};

static void wait_opened(void *arg, struct outbound *c, const struct smtpc_result *fail)
{
    struct waiter *w = arg;
    w->c = c;
    if (fail)
        w->fail = *fail;
    SetEvent(w->ev);
}

static void wait_sent(void *arg, int rc)
{
    struct waiter *w = arg;
    w->rc = rc;
    SetEvent(w->ev);
}

static void wait_closed(void *arg)
{
    SetEvent(((struct waiter *)arg)->ev);
}

int outbound_open(const struct outbound_opts *o, struct outbound **out, struct smtpc_result *fail)
{
    *out = NULL;
    struct waiter w = { 0 };
    w.ev = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (!w.ev) {
        smtpc_result_local(fail, SMTPC_TRANSIENT, SMTPC_R_NONE, "4.3.0", "cannot create an event");
        return -1;
    }
    if (outbound_open_async(o, wait_opened, &w, fail) != 0) {
        CloseHandle(w.ev);
        return -1;
    }
    WaitForSingleObject(w.ev, INFINITE);
    CloseHandle(w.ev);
    if (!w.c) {
        *fail = w.fail;
        return -1;
    }
    *out = w.c;
    return 0;
}

int outbound_send(struct outbound *c, const struct smtpc_message *m, const void *content, size_t len,
                  struct smtpc_result *results, struct smtpc_result *msg)
{
    struct waiter w = { 0 };
    w.ev = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (!w.ev) {
        struct smtpc_result f;
        smtpc_result_local(&f, SMTPC_TRANSIENT, SMTPC_R_NONE, "4.3.0", "cannot create an event");
        for (size_t i = 0; m && m->to && i < m->n_to; i++)
            results[i] = f;
        if (msg)
            *msg = f;
        return 0;
    }
    outbound_send_async(c, m, content, len, results, msg, wait_sent, &w);
    WaitForSingleObject(w.ev, INFINITE);
    CloseHandle(w.ev);
    return w.rc;
}

void outbound_close(struct outbound *c)
{
    if (!c)
        return;
    struct waiter w = { 0 };
    w.ev = CreateEventW(NULL, TRUE, FALSE, NULL);
    outbound_close_async(c, w.ev ? wait_closed : NULL, &w);
    if (w.ev) {
        WaitForSingleObject(w.ev, INFINITE);
        CloseHandle(w.ev);
    }
}
