/* smtp_server.c - accept SMTP connections and drive the session engine.
 *
 * Each pool thread accepts a connection and runs it to the end: read, feed
 * the engine, act on its events (authenticate through SSPI, spool the
 * message), send its replies. A session's failure (a socket error, an SSPI
 * failure, a full disk) closes that session only and is reported; the other
 * threads go on. Accepted mail goes to the queue (service/spool.h): the
 * 250 is sent only once the group commit it joined is on disk.
 */
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#include <shlobj.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "config.h"
#include "eventlog.h"
#include "filter.h"
#include "location.h"
#include "spool.h"
#include "netio.h"
#include "cert.h"
#include "ntlm.h"
#include "smtp_server.h"
#include "smtpd.h"
#include "storage.h"
#include "tls.h"
#include "utf.h"

#define IO_BUF            16384
#define POLL_MS           1000      /* how often a waiting session looks at the clock */
#define MAX_DOMAINS       64
#define MAX_RANGES        32
#define AUTH_DELAY_MS     1000      /* per failed AUTH beyond the first, capped */
#define AUTH_DELAY_MAX_MS 5000
#define HANDSHAKE_SECS    60        /* a TLS handshake must finish within this */
#define PENALTY_SLOTS     256       /* addresses remembered for AUTH failures */
#define PENALTY_FORGET_MS (15 * 60 * 1000) /* failures older than this are forgiven */

struct server {
    SOCKET listener;
    HANDLE threads[256];
    DWORD nthreads;
    volatile LONG stopping, paused, active, seq;
    struct smtpd_config engine;
    char hostname[256];
    char domain_text[CONFIG_STR_MAX * 3];
    const char *domains[MAX_DOMAINS];
    struct config_range ranges[MAX_RANGES];
    size_t nranges;
    wchar_t content_filter[CONFIG_STR_MAX];
    struct tls_cred tls_cred;       /* valid when a certificate is loaded */
    struct tls_policy tls_policy;
    DWORD ntlm_min_key_bits;
    /* Failed AUTH/XAUTH per client address, across sessions: a client that
     * keeps failing waits longer for each answer (a session alone is closed
     * after three failures by the engine, so guessing must reconnect). */
    SRWLOCK penalty_lock;
    struct penalty { char addr[INET6_ADDRSTRLEN]; unsigned failures; ULONGLONG last; }
        penalty[PENALTY_SLOTS];
};

static struct server srv = { .listener = INVALID_SOCKET, .penalty_lock = SRWLOCK_INIT };

/* Record a failed (failed != 0) or successful authentication from addr and
 * return how long to wait before answering: 1 s per recent failure beyond
 * the first, at most AUTH_DELAY_MAX_MS. A success forgets the address. */
static DWORD penalty_note(const char *addr, int failed)
{
    ULONGLONG now = GetTickCount64();
    DWORD delay = 0;
    AcquireSRWLockExclusive(&srv.penalty_lock);
    struct penalty *slot = NULL, *oldest = &srv.penalty[0];
    for (size_t i = 0; i < PENALTY_SLOTS; i++) {
        struct penalty *p = &srv.penalty[i];
        if (p->addr[0] && now - p->last > PENALTY_FORGET_MS)
            p->addr[0] = 0;
        if (p->addr[0] && strcmp(p->addr, addr) == 0)
            slot = p;
        if (!p->addr[0] || p->last < oldest->last)
            oldest = p;
    }
    if (failed) {
        if (!slot) {
            slot = oldest;
            snprintf(slot->addr, sizeof slot->addr, "%s", addr);
            slot->failures = 0;
        }
        slot->failures++;
        slot->last = now;
        delay = slot->failures > 1 ? AUTH_DELAY_MS * (slot->failures - 1) : 0;
        if (delay > AUTH_DELAY_MAX_MS)
            delay = AUTH_DELAY_MAX_MS;
    } else if (slot) {
        slot->addr[0] = 0;
    }
    ReleaseSRWLockExclusive(&srv.penalty_lock);
    return delay;
}

struct session {
    SOCKET sock;
    struct smtpd *engine;
    char peer[INET6_ADDRSTRLEN];
    struct tls_stream *tls;         /* after STARTTLS */
    struct ntlm *ntlm;              /* the AUTH NTLM exchange in progress */
    struct spool_msg *msg;          /* the message being received */
    DWORD failure;                  /* the first Win32 error while spooling */
};

static void report_session_error(const struct session *s, DWORD location, DWORD status,
                                 const char *what)
{
    wchar_t text[512];
    _snwprintf(text, ARRAYSIZE(text), L"%hs (session from %hs)", what, s->peer);
    text[ARRAYSIZE(text) - 1] = 0;
    evlog_report(EVENTLOG_ERROR_TYPE, CAT_INTERNAL_PROCESSING, MSG_UNEXPECTED_ERROR,
                 location, status, 1, (const wchar_t *[]){ text });
}

/* Socket I/O: plaintext, or through the TLS stream after STARTTLS ---- */

static int flush_tls(struct session *s)
{
    return net_send_tls(s->sock, s->tls);
}

static int flush_replies(struct session *s)
{
    size_t len;
    const unsigned char *out = smtpd_output(s->engine, &len);
    if (len == 0)
        return s->tls ? flush_tls(s) : 0;
    if (s->tls) {
        SECURITY_STATUS st = tls_write(s->tls, out, len);
        if (st != SEC_E_OK) {
            report_session_error(s, LOC_SSPI_ENCRYPT, (DWORD)st, "EncryptMessage failed");
            return -1;
        }
        smtpd_output_consumed(s->engine, len);
        return flush_tls(s);
    }
    if (net_send_all(s->sock, out, len) != 0)
        return -1;
    smtpd_output_consumed(s->engine, len);
    return 0;
}

/* Give ciphertext that arrived to the stream, send what it answers (the
 * handshake, a renegotiation), and say whether the session can go on. */
static int tls_take(struct session *s, const unsigned char *p, size_t n)
{
    tls_feed(s->tls, p, n);
    if (flush_tls(s) != 0)
        return -1;
    enum tls_state st = tls_state(s->tls);
    if (st == TLS_ST_FAILED) {
        wchar_t peer[INET6_ADDRSTRLEN];
        MultiByteToWideChar(CP_UTF8, 0, s->peer, -1, peer, ARRAYSIZE(peer));
        tls_report_failure(s->tls, peer);
        return -1;
    }
    return st == TLS_ST_CLOSED ? -1 : 0;
}

/* STARTTLS was answered with 220: run the server handshake on the socket.
 * Plaintext the client sent after STARTTLS is not fed to the stream (the
 * caller drops it). Returns 0 with the engine told the outcome, -1 to end. */
static int start_tls(struct session *s)
{
    struct tls_config tc = { .policy = &srv.tls_policy };
    SECURITY_STATUS st = tls_new(&s->tls, &srv.tls_cred, &tc);
    if (st != SEC_E_OK) {
        report_session_error(s, LOC_SSPI_HANDSHAKE, (DWORD)st, "cannot create a TLS context");
        return -1;
    }
    ULONGLONG deadline = GetTickCount64() + HANDSHAKE_SECS * 1000ull;
    unsigned char buf[IO_BUF];
    while (tls_state(s->tls) == TLS_ST_HANDSHAKE) {
        if (srv.stopping || GetTickCount64() > deadline)
            return -1;
        int n = recv(s->sock, (char *)buf, sizeof buf, 0);
        if (n == 0 || (n < 0 && WSAGetLastError() != WSAETIMEDOUT))
            return -1;
        if (n > 0 && tls_take(s, buf, (size_t)n) != 0)
            return -1;
    }
    if (tls_state(s->tls) == TLS_ST_REFUSED) {
        /* Below policy: the event names both sides. The stream takes no more
         * of the client's data, so the refusal is said at once, inside the
         * secure channel, as the answer to whatever the client sends first;
         * then the session ends with close_notify. */
        wchar_t peer[INET6_ADDRSTRLEN];
        MultiByteToWideChar(CP_UTF8, 0, s->peer, -1, peer, ARRAYSIZE(peer));
        tls_report_failure(s->tls, peer);
        char line[600];
        int n = snprintf(line, sizeof line, "454 4.7.0 TLS session refused by policy: %s\r\n",
                         tls_policy_text(s->tls));
        if (n < 0 || (size_t)n >= sizeof line)
            n = snprintf(line, sizeof line, "454 4.7.0 TLS session refused by policy\r\n");
        tls_write(s->tls, line, (size_t)n);
        flush_tls(s);
        return -1;
    }
    if (tls_state(s->tls) != TLS_ST_OPEN)
        return -1;
    smtpd_tls_started(s->engine, 1);
    return 0;
}

/* The queue ------------------------------------------------------------- */


static void spool_put(struct session *s, const void *p, size_t len)
{
    if (!s->msg || s->failure)
        return;
    s->failure = spool_write(s->msg, p, len);
}

static void spool_discard(struct session *s)
{
    spool_abort(s->msg);
    s->msg = NULL;
}

static void spool_begin(struct session *s)
{
    s->failure = spool_create(&s->msg);
    if (s->failure)
        return;
    char date[64], received[2048];
    clock_rfc5322(clock_unix(), date, sizeof date);
    int n = smtpd_received(s->engine, spool_msg_id(s->msg), date, received, sizeof received);
    if (n < 0)
        s->failure = ERROR_INSUFFICIENT_BUFFER;
    else
        spool_put(s, received, (size_t)n);
}


/* The transaction's envelope, as the engine holds it. */
static DWORD build_envelope(struct session *s, struct envelope *e)
{
    snprintf(e->id, sizeof e->id, "%s", spool_msg_id(s->msg));
    e->arrived = clock_unix();
    e->from = *smtpd_sender(s->engine);
    snprintf(e->client, sizeof e->client, "[%s]", s->peer);
    snprintf(e->helo, sizeof e->helo, "%s", smtpd_helo(s->engine));
    snprintf(e->auth_user, sizeof e->auth_user, "%s", smtpd_user(s->engine));
    const struct addr_params *mp = smtpd_sender_params(s->engine);
    if (mp) {
        e->body = mp->body;
        e->ret = mp->ret;
        if (mp->has_envid)
            snprintf(e->envid, sizeof e->envid, "%s", mp->envid);
    }
    for (size_t i = 0; i < smtpd_rcpt_count(s->engine); i++)
        if (env_add_rcpt(e, smtpd_rcpt(s->engine, i), smtpd_rcpt_params(s->engine, i)) < 0)
            return ERROR_NOT_ENOUGH_MEMORY;
    return ERROR_SUCCESS;
}

/* Nothing is acknowledged before it is on disk: the commit returns when
 * the group commit it joined has been flushed and renamed into the queue. */
static void spool_commit_session(struct session *s)
{
    struct envelope e;
    env_init(&e);
    if (!s->msg && !s->failure)
        s->failure = ERROR_INVALID_HANDLE;
    if (!s->failure)
        s->failure = build_envelope(s, &e);
    int hold = 0;
    if (!s->failure && srv.content_filter[0]) {
        char reason[FILTER_REASON_MAX];
        DWORD ferr = 0;
        enum filter_verdict v = filter_message(srv.content_filter, s->msg, &e, reason,
                                               sizeof reason, &ferr);
        if (v == FILTER_REJECT) {
            spool_discard(s);
            env_free(&e);
            smtpd_message_refused(s->engine, 554, "5.7.1", reason);
            return;
        }
        if (v == FILTER_ERROR) {
            wchar_t wid[ENV_ID_MAX + 1], wreason[FILTER_REASON_MAX];
            utf8_to_wide(spool_msg_id(s->msg), wid, ARRAYSIZE(wid));
            utf8_to_wide(reason, wreason, ARRAYSIZE(wreason));
            evlog_report(EVENTLOG_ERROR_TYPE, CAT_QUEUING, MSG_FILTER_FAILED, LOC_QUEUE_FILTER,
                         ferr, 3, (const wchar_t *[]){ srv.content_filter, wid, wreason });
            spool_discard(s);
            env_free(&e);
            smtpd_message_refused(s->engine, 451, "4.3.0",
                                  "the content filter failed; try again later");
            return;
        }
        if (v == FILTER_HOLD) {
            wchar_t wid[ENV_ID_MAX + 1], wfrom[600], wreason[FILTER_REASON_MAX];
            char from[600];
            if (e.from.null_path || addr_format_mailbox(&e.from, from, sizeof from) < 0)
                strcpy(from, "<>");
            utf8_to_wide(spool_msg_id(s->msg), wid, ARRAYSIZE(wid));
            utf8_to_wide(from, wfrom, ARRAYSIZE(wfrom));
            utf8_to_wide(reason, wreason, ARRAYSIZE(wreason));
            evlog_report(EVENTLOG_INFORMATION_TYPE, CAT_QUEUING, MSG_MESSAGE_HELD,
                         LOC_QUEUE_FILTER, 0, 3, (const wchar_t *[]){ wid, wfrom, wreason });
            hold = 1;
        }
    }
    char qid[ENV_ID_MAX + 1] = "";
    if (s->msg)
        snprintf(qid, sizeof qid, "%s", spool_msg_id(s->msg));
    if (!s->failure) {
        s->failure = spool_commit(s->msg, &e, hold);
        s->msg = NULL;   /* spool_commit frees it either way */
    }
    env_free(&e);
    if (s->failure) {
        struct storage_reply rp; /* a full disk: 452 4.3.1, reported once by the spool */
        storage_reply(s->failure, &rp);
        spool_discard(s);
        if (!rp.full)
            report_session_error(s, LOC_SMTPD_SPOOL, s->failure,
                                 "cannot store a message in the queue");
        smtpd_message_refused(s->engine, rp.code, rp.status, rp.text);
        return;
    }
    smtpd_message_stored(s->engine, qid);
}

/* Authentication --------------------------------------------------------- */

static void auth_ntlm(struct session *s, const struct smtpd_event *ev)
{
    if (ev->first || !s->ntlm) {
        ntlm_free(s->ntlm);
        s->ntlm = NULL;
        SECURITY_STATUS st = ntlm_server_new(&s->ntlm);
        if (st != SEC_E_OK) {
            report_session_error(s, LOC_SMTPD_NTLM_CREDS, (DWORD)st,
                                 "AcquireCredentialsHandle for NTLM failed");
            smtpd_auth_tempfail(s->engine);
            return;
        }
    }
    enum ntlm_result r;
    SECURITY_STATUS st = ntlm_step(s->ntlm, ev->data, ev->len, &r);
    size_t tlen = 0;
    const unsigned char *tok = ntlm_token(s->ntlm, &tlen);
    switch (r) {
    case NTLM_CONTINUE:
        smtpd_auth_continue(s->engine, tok, tlen);
        return;
    case NTLM_DONE: {
        /* The negotiated key is checked against policy like TLS strength. */
        const struct ntlm_info *info = ntlm_info(s->ntlm);
        unsigned long bits = info->session_key_status == SEC_E_OK ? info->session_key_bits
                                                                 : info->flag_key_bits;
        if (bits < srv.ntlm_min_key_bits) {
            char what[200];
            snprintf(what, sizeof what, "NTLM logon of %s refused: negotiated a %lu-bit session "
                     "key; policy requires %lu-bit or longer (NtlmMinKeyBits)",
                     ntlm_user(s->ntlm), bits, (unsigned long)srv.ntlm_min_key_bits);
            report_session_error(s, LOC_SMTPD_NTLM_POLICY, (DWORD)SEC_E_ALGORITHM_MISMATCH, what);
            Sleep(penalty_note(s->peer, 1));
            smtpd_auth_fail(s->engine);
            break;
        }
        penalty_note(s->peer, 0);
        smtpd_auth_success(s->engine, ntlm_user(s->ntlm));
        break;
    }
    case NTLM_DENIED:
        Sleep(penalty_note(s->peer, 1));
        smtpd_auth_fail(s->engine);
        break;
    default:
        report_session_error(s, LOC_SMTPD_NTLM_ACCEPT, (DWORD)st,
                             "AcceptSecurityContext for AUTH NTLM failed");
        smtpd_auth_tempfail(s->engine);
        break;
    }
    ntlm_free(s->ntlm);
    s->ntlm = NULL;
}

/* AUTH LOGIN and PLAIN (offered only over TLS): the password is checked by
 * running an NTLM exchange with it through SSPI, client and server in this
 * process, so the same account database decides as for AUTH NTLM. */
static void auth_password(struct session *s, const struct smtpd_event *ev)
{
    wchar_t domain[256] = L"", user[256], password[256];
    const char *u = ev->user, *slash = strchr(u, '\\'), *at = strrchr(u, '@');
    if (slash) {
        MultiByteToWideChar(CP_UTF8, 0, u, (int)(slash - u), domain, ARRAYSIZE(domain) - 1);
        domain[slash - u < 255 ? slash - u : 255] = 0;
        u = slash + 1;
    } else if (at) {
        MultiByteToWideChar(CP_UTF8, 0, at + 1, -1, domain, ARRAYSIZE(domain));
    }
    int ulen = at && !slash ? (int)(at - u) : -1;
    int wn = MultiByteToWideChar(CP_UTF8, 0, u, ulen, user, ARRAYSIZE(user) - 1);
    user[wn > 0 ? wn : 0] = 0;
    MultiByteToWideChar(CP_UTF8, 0, ev->password, -1, password, ARRAYSIZE(password));

    struct ntlm *client = NULL, *server = NULL;
    SECURITY_STATUS st = ntlm_client_new(&client, domain, user, password, NULL);
    SecureZeroMemory(password, sizeof password);
    if (st == SEC_E_OK)
        st = ntlm_server_new(&server);
    enum ntlm_result cr = NTLM_FAILED, sr = NTLM_CONTINUE;
    const unsigned char *tok = NULL;
    size_t tlen = 0;
    for (int round = 0; st >= 0 && round < 4 && sr == NTLM_CONTINUE; round++) {
        st = ntlm_step(client, tok, tlen, &cr);
        if (st < 0 || cr == NTLM_FAILED || cr == NTLM_DENIED)
            break;
        tok = ntlm_token(client, &tlen);
        st = ntlm_step(server, tok, tlen, &sr);
        tok = ntlm_token(server, &tlen);
    }
    if (sr == NTLM_DONE) {
        penalty_note(s->peer, 0);
        smtpd_auth_success(s->engine, ntlm_user(server));
    } else if (sr == NTLM_DENIED || ntlm_status_is_denial(st)) {
        Sleep(penalty_note(s->peer, 1));
        smtpd_auth_fail(s->engine);
    } else {
        report_session_error(s, LOC_SMTPD_NTLM_ACCEPT, (DWORD)st,
                             "checking an AUTH LOGIN/PLAIN password through NTLM failed");
        smtpd_auth_tempfail(s->engine);
    }
    ntlm_free(client);
    ntlm_free(server);
}

/* A session ---------------------------------------------------------------- */

static int relay_allowed(const struct sockaddr_storage *ss)
{
    const unsigned char *a;
    int family = ss->ss_family;
    if (family == AF_INET)
        a = (const unsigned char *)&((const struct sockaddr_in *)ss)->sin_addr;
    else if (family == AF_INET6)
        a = (const unsigned char *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
    else
        return 0;
    for (size_t i = 0; i < srv.nranges; i++)
        if (config_range_contains(&srv.ranges[i], family, a))
            return 1;
    return 0;
}

/* Handle one engine event. Returns 0 to go on, -1 to end the session. */
static int on_event(struct session *s, const struct smtpd_event *ev)
{
    switch (ev->type) {
    case SMTPD_EV_STARTTLS:
        if (flush_replies(s) != 0)
            return -1;
        return start_tls(s);
    case SMTPD_EV_AUTH_NTLM:
        auth_ntlm(s, ev);
        return 0;
    case SMTPD_EV_AUTH_PASSWORD:
        auth_password(s, ev);
        return 0;
    case SMTPD_EV_AUTH_ABORT:
        ntlm_free(s->ntlm);
        s->ntlm = NULL;
        return 0;
    case SMTPD_EV_DATA_BEGIN:
        spool_begin(s);
        return 0;
    case SMTPD_EV_DATA_CHUNK:
        spool_put(s, ev->data, ev->len);
        return 0;
    case SMTPD_EV_MESSAGE:
        spool_commit_session(s);
        return 0;
    case SMTPD_EV_MESSAGE_REJECTED:
        spool_discard(s);
        return 0;
    case SMTPD_EV_CLOSE:
        return -1;
    default:
        return 0;
    }
}

static void run_session(SOCKET sock, const struct sockaddr_storage *peer)
{
    struct session s = { .sock = sock };
    /* The bare numeric address: the engine and the events name the peer by it. */
    if (getnameinfo((const struct sockaddr *)peer, sizeof *peer, s.peer, sizeof s.peer, NULL, 0,
                    NI_NUMERICHOST) != 0)
        strcpy(s.peer, "unknown");
    s.engine = smtpd_new(&srv.engine, s.peer, relay_allowed(peer));
    if (!s.engine) {
        report_session_error(&s, LOC_SMTPD_SESSION, ERROR_NOT_ENOUGH_MEMORY,
                             "cannot create an SMTP session");
        return;
    }
    DWORD timeout = POLL_MS;
    setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, (const char *)&timeout, sizeof timeout);

    /* Plaintext waiting for the engine: in[] before STARTTLS, the stream's
     * plaintext buffer after it. */
    unsigned char in[IO_BUF];
    size_t in_len = 0, in_off = 0;
    ULONGLONG last_input = GetTickCount64();
    int told_shutdown = 0;
    for (;;) {
        if (flush_replies(&s) != 0)
            break;
        size_t avail = 0, took = 0;
        const unsigned char *p = NULL;
        if (s.tls) {
            p = tls_app_buf(s.tls, &avail);
        } else {
            p = in + in_off;
            avail = in_len - in_off;
        }
        if (avail > 0) {
            took = smtpd_feed(s.engine, p, avail);
            if (s.tls)
                tls_app_done(s.tls, took);
            else
                in_off += took;
        }
        int was_tls = s.tls != NULL;
        struct smtpd_event ev;
        if (smtpd_next(s.engine, &ev) != SMTPD_EV_NONE) {
            if (on_event(&s, &ev) != 0) {
                flush_replies(&s);
                break;
            }
            if (!was_tls && s.tls)
                in_off = in_len;  /* plaintext sent after STARTTLS: injected, dropped */
            continue;
        }
        if (smtpd_closed(s.engine))
            break;
        if (avail > took) {
            if (took == 0)
                break;  /* the engine can take nothing and wants nothing: give up */
            continue;
        }
        if (srv.stopping && !told_shutdown) {
            smtpd_shutdown(s.engine);
            told_shutdown = 1;
            continue;
        }
        /* The replies to what was just fed go out before waiting for more:
         * a client that does not pipeline waits for them. */
        if (flush_replies(&s) != 0)
            break;
        int n = recv(sock, (char *)in, sizeof in, 0);
        if (n > 0) {
            last_input = GetTickCount64();
            if (s.tls) {
                if (tls_take(&s, in, (size_t)n) != 0)
                    break;
            } else {
                in_len = (size_t)n;
                in_off = 0;
            }
            continue;
        }
        if (n == 0)
            break;
        if (WSAGetLastError() != WSAETIMEDOUT)
            break;
        unsigned secs = smtpd_timeout_secs(s.engine);
        if (secs && GetTickCount64() - last_input > (ULONGLONG)secs * 1000)
            smtpd_timeout(s.engine);
    }
    if (s.tls) {
        if (tls_state(s.tls) == TLS_ST_OPEN || tls_state(s.tls) == TLS_ST_REFUSED ||
            tls_state(s.tls) == TLS_ST_CLOSED) {
            tls_shutdown(s.tls);  /* close_notify */
            flush_tls(&s);
        }
        tls_free(s.tls);
    }
    spool_discard(&s);
    ntlm_free(s.ntlm);
    smtpd_free(s.engine);
}

static DWORD WINAPI pool_thread(void *arg)
{
    (void)arg;
    while (!srv.stopping) {
        struct sockaddr_storage peer;
        int plen = sizeof peer;
        SOCKET c = accept(srv.listener, (struct sockaddr *)&peer, &plen);
        if (c == INVALID_SOCKET) {
            if (srv.stopping)
                break;
            Sleep(10);  /* a failed accept (e.g. reset before accept) must not spin */
            continue;
        }
        if (srv.paused) {
            static const char msg[] = "421 4.3.2 Service paused, try again later\r\n";
            send(c, msg, sizeof msg - 1, 0);
        } else {
            InterlockedIncrement(&srv.active);
            run_session(c, &peer);
            InterlockedDecrement(&srv.active);
        }
        shutdown(c, SD_BOTH);
        closesocket(c);
    }
    return 0;
}

/* The server certificate: a PFX file, or a certificate in LocalMachine\MY
 * named by thumbprint or subject. Without one, STARTTLS is not offered; a
 * configured certificate that cannot be used is reported. */
static DWORD load_certificate(const struct imsvc_config *cfg)
{
    tls_cred_free(&srv.tls_cred);
    if (!cfg->certificate_file[0] && !cfg->certificate[0])
        return ERROR_NOT_FOUND;
    PCCERT_CONTEXT cert = NULL;
    DWORD rc;
    const wchar_t *what;
    if (cfg->certificate_file[0]) {
        wchar_t password[256] = L"";
        if (cfg->certificate_password_file[0]) {
            FILE *f = _wfopen(cfg->certificate_password_file, L"rb");
            char buf[256] = "";
            size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
            if (f)
                fclose(f);
            buf[n] = 0;
            buf[strcspn(buf, "\r\n")] = 0;
            MultiByteToWideChar(CP_UTF8, 0, buf, -1, password, ARRAYSIZE(password));
            SecureZeroMemory(buf, sizeof buf);
        }
        rc = cert_load_pfx(cfg->certificate_file, password, &cert);
        SecureZeroMemory(password, sizeof password);
        what = cfg->certificate_file;
    } else {
        rc = cert_find(cfg->certificate_store, CERT_SYSTEM_STORE_LOCAL_MACHINE, cfg->certificate,
                       &cert);
        what = cfg->certificate;
    }
    if (rc == ERROR_SUCCESS) {
        SECURITY_STATUS st = tls_cred_server(&srv.tls_cred, cert);
        CertFreeCertificateContext(cert);
        if (st == SEC_E_OK)
            return ERROR_SUCCESS;
        rc = (DWORD)st;
    }
    wchar_t text[CONFIG_STR_MAX + 128];
    _snwprintf(text, ARRAYSIZE(text), L"cannot use the server certificate %ls; STARTTLS is "
               L"not offered until it is fixed (imsvc cert new makes one)", what);
    text[ARRAYSIZE(text) - 1] = 0;
    evlog_report(EVENTLOG_ERROR_TYPE, CAT_SECURITY, MSG_UNEXPECTED_ERROR, LOC_SSPI_CERT_LOAD,
                 rc, 1, (const wchar_t *[]){ text });
    return rc;
}

/* Configuration into the engine's form (UTF-8, parsed ranges). */
static DWORD load_engine_config(const struct imsvc_config *cfg)
{
    WideCharToMultiByte(CP_UTF8, 0, cfg->host_name, -1, srv.hostname, sizeof srv.hostname,
                        NULL, NULL);
    WideCharToMultiByte(CP_UTF8, 0, cfg->local_domains, -1, srv.domain_text,
                        sizeof srv.domain_text, NULL, NULL);
    size_t nd = 0;
    for (char *p = srv.domain_text; *p && nd < MAX_DOMAINS;) {
        char *end = p + strcspn(p, ";");
        if (*end)
            *end++ = 0;
        for (char *q = p; *q; q++)
            if (*q >= 'A' && *q <= 'Z')
                *q = (char)(*q - 'A' + 'a');
        if (*p)
            srv.domains[nd++] = p;
        p = end;
    }
    srv.nranges = 0;
    wchar_t ranges[CONFIG_STR_MAX];
    wcscpy(ranges, cfg->relay_addresses);
    for (wchar_t *ctx = NULL, *tok = wcstok_s(ranges, L";", &ctx); tok && srv.nranges < MAX_RANGES;
         tok = wcstok_s(NULL, L";", &ctx))
        if (config_parse_range(tok, &srv.ranges[srv.nranges]) == 0)
            srv.nranges++;
    srv.engine.hostname = srv.hostname;
    srv.engine.max_size = (unsigned long long)cfg->max_message_kb * 1024;
    srv.engine.max_recipients = 0;
    srv.engine.local_domains = srv.domains;
    srv.engine.n_local_domains = nd;
    srv.engine.options = (cfg->xauth ? SMTPD_OPT_XAUTH : 0) | (cfg->xauth == 2 ? SMTPD_OPT_NO_AUTH : 0);
    srv.tls_policy.min_version = cfg->tls_min_version == 13 ? TLS_V1_3 :
                                 cfg->tls_min_version == 11 ? TLS_V1_1 :
                                 cfg->tls_min_version == 10 ? TLS_V1_0 : TLS_V1_2;
    srv.tls_policy.min_cipher_bits = cfg->tls_min_cipher_bits;
    srv.ntlm_min_key_bits = cfg->ntlm_min_key_bits;
    if (load_certificate(cfg) == ERROR_SUCCESS)
        srv.engine.options |= SMTPD_OPT_STARTTLS;
    _snwprintf(srv.content_filter, ARRAYSIZE(srv.content_filter), L"%ls", cfg->content_filter);
    srv.content_filter[ARRAYSIZE(srv.content_filter) - 1] = 0;
    return ERROR_SUCCESS;
}

DWORD smtp_server_start(const struct imsvc_config *cfg)
{
    WSADATA wsa;
    int wrc = WSAStartup(MAKEWORD(2, 2), &wsa);
    if (wrc != 0)
        return (DWORD)wrc;
    DWORD rc = load_engine_config(cfg);
    if (rc != ERROR_SUCCESS)
        return rc;

    char addr[64], port[16];
    WideCharToMultiByte(CP_UTF8, 0, cfg->listen_address, -1, addr, sizeof addr, NULL, NULL);
    snprintf(port, sizeof port, "%lu", cfg->listen_port);
    struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_PASSIVE,
                              .ai_socktype = SOCK_STREAM, .ai_protocol = IPPROTO_TCP };
    struct addrinfo *ai = NULL;
    if (getaddrinfo(addr, port, &hints, &ai) != 0 || !ai)
        return (DWORD)WSAGetLastError();
    srv.listener = socket(ai->ai_family, SOCK_STREAM, IPPROTO_TCP);
    if (srv.listener == INVALID_SOCKET) {
        rc = (DWORD)WSAGetLastError();
        freeaddrinfo(ai);
        return rc;
    }
    BOOL excl = TRUE;  /* no other process may bind the same port under us */
    setsockopt(srv.listener, SOL_SOCKET, SO_EXCLUSIVEADDRUSE, (const char *)&excl, sizeof excl);
    if (bind(srv.listener, ai->ai_addr, (int)ai->ai_addrlen) != 0 ||
        listen(srv.listener, SOMAXCONN) != 0) {
        rc = (DWORD)WSAGetLastError();
        freeaddrinfo(ai);
        closesocket(srv.listener);
        srv.listener = INVALID_SOCKET;
        return rc;
    }
    freeaddrinfo(ai);
    srv.stopping = 0;   /* `paused` survives a restart: the service may be paused */
    srv.nthreads = 0;
    DWORD want = cfg->max_sessions < ARRAYSIZE(srv.threads) ? cfg->max_sessions
                                                            : ARRAYSIZE(srv.threads);
    for (DWORD i = 0; i < want; i++) {
        HANDLE t = CreateThread(NULL, 256 * 1024, pool_thread, NULL,
                                STACK_SIZE_PARAM_IS_A_RESERVATION, NULL);
        if (!t) {
            rc = GetLastError();
            smtp_server_stop(5000);
            return rc;
        }
        srv.threads[srv.nthreads++] = t;
    }
    return ERROR_SUCCESS;
}

void smtp_server_pause(int paused)
{
    InterlockedExchange(&srv.paused, paused ? 1 : 0);
}

void smtp_server_stop(DWORD wait_ms)
{
    InterlockedExchange(&srv.stopping, 1);
    if (srv.listener != INVALID_SOCKET) {
        closesocket(srv.listener);  /* wakes every thread blocked in accept() */
        srv.listener = INVALID_SOCKET;
    }
    if (srv.nthreads > 0) {
        DWORD left = srv.nthreads, base = 0;
        while (left > 0) {
            DWORD batch = left > MAXIMUM_WAIT_OBJECTS ? MAXIMUM_WAIT_OBJECTS : left;
            WaitForMultipleObjects(batch, srv.threads + base, TRUE, wait_ms);
            base += batch;
            left -= batch;
        }
        for (DWORD i = 0; i < srv.nthreads; i++)
            CloseHandle(srv.threads[i]);
        srv.nthreads = 0;
    }
    tls_cred_free(&srv.tls_cred);
    WSACleanup();
}

LONG smtp_server_active(void)
{
    return srv.active;
}
