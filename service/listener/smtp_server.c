/* smtp_server.c - SMTP sessions on the I/O engine, around core/smtpd.
 *
 * The listener's accepted sockets become sessions here, or are refused with
 * 421 4.7.0 when MaxSessions or MaxSessionsPerAddress is reached. A session
 * is a handler on the engine (ioengine.h) over a channel (channel.h): input
 * is fed to the engine, the engine's events are acted on, its replies
 * written. A message goes into the queue through the receive module
 * (receive.h). Nothing here waits: AUTH through SSPI and the content filter
 * run on work threads (io_work), the group commit calls back
 * (receive_commit_async), and each resumes the session with IO_EV_WAKE.
 * While such work runs the session takes no input and reads none: its
 * bytes wait in the socket.
 *
 * Listeners: SMTP on ListenAddress:ListenPort, and for message submission
 * (RFC 6409) SubmissionPort (STARTTLS, then AUTH before MAIL) and
 * SubmissionTlsPort (implicit TLS, RFC 8314). Each has its own address,
 * port and engine policy; their sessions share the limits and counts. With
 * ReverseDns, the greeting waits (at most ReverseDnsTimeoutMs) for the
 * client's confirmed name from rdns.h, looked up off the I/O workers.
 *
 * Timers: the engine's peer timer for the state (InactivityTimeout for a
 * command, DataTimeout inside DATA), MinDataRate during DATA, the TLS
 * handshake's own bound, and the engine-wide SendTimeout. Each closes that
 * session only, with 421 4.4.2 where the client can still read it, and is
 * counted for `imsvc status`. A session's failure (socket, SSPI, disk)
 * closes that session only and is reported; the rest go on. Accepted mail
 * is acknowledged only once its group commit is on disk.
 *
 * This module never parses SMTP and never chooses a reply: core/smtpd does.
 */
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cert.h"
#include "channel.h"
#include "clock.h"
#include "config.h"
#include "eventlog.h"
#include "ioengine.h"
#include "location.h"
#include "logs.h"
#include "mapfile.h"
#include "ntlm.h"
#include "penalty.h"
#include "rdns.h"
#include "receive.h"
#include "secret.h"
#include "smtp_server.h"
#include "smtpd.h"
#include "tls.h"
#include "utf.h"

#define AUTH_DELAY_MS     1000      /* per failed AUTH beyond the first, capped */
#define AUTH_DELAY_MAX_MS 5000
#define HANDSHAKE_MS      60000u    /* a TLS handshake must finish within this */
#define RATE_GRACE_MS     30000u    /* MinDataRate is judged from this long after DATA */
#define PENALTY_FORGET_MS (15 * 60 * 1000) /* failures older than this are forgiven */
#define EVENT_WINDOW_MS   60000u    /* identical events from one address: one a minute */
#define ADDR_BUCKETS      1024u     /* per-address session counts */
#define ADDR_KEY_LEN      17u       /* family + 16 octets (IPv6: the /64 only) */
#define AUTH_TEXT_MAX     257       /* AUTH LOGIN/PLAIN user or password, with NUL:
                                       longer ones are refused, never cut */

/* Why sessions were refused or closed, for `imsvc status`. */
enum { REFUSE_MAX, REFUSE_PER_ADDRESS, REFUSE_PAUSED, REFUSE_COUNT };
enum { CLOSE_INACTIVITY, CLOSE_SEND_TIMEOUT, CLOSE_DATA_RATE, CLOSE_ERRORS, CLOSE_COUNT };

struct addr_count {
    unsigned char key[ADDR_KEY_LEN];
    unsigned n;
    struct addr_count *next;
};

struct session;

/* The listeners, each with its own address, port and engine policy. */
enum { LST_SMTP, LST_SUBMISSION, LST_SUBMISSION_TLS, LST_COUNT };
struct listener {
    int id;                         /* io_listen's; -1: not listening */
    const wchar_t *name;            /* for events */
    struct smtpd_config engine;
};

struct server {
    struct listener lst[LST_COUNT];
    volatile LONG stopping, paused, active;
    DWORD rdns_ms;                  /* ReverseDns: how long the greeting waits; 0 off */
    char hostname[256];
    const struct config_lists *lists;   /* LocalDomains and RelayAddresses, parsed by
                                           config_load; never freed (config.h) */
    struct tls_cred tls_cred;       /* valid when a certificate is loaded */
    struct tls_policy tls_policy;
    DWORD ntlm_min_key_bits;
    DWORD max_sessions, max_per_address;
    DWORD inactivity_ms, data_ms, min_data_rate;
    /* Open sessions (to tell each one at shutdown) and counts per address. */
    SRWLOCK lock;
    struct session *sessions;
    struct addr_count *by_addr[ADDR_BUCKETS];
    HANDLE all_closed;              /* set when active drops to 0 while stopping */
    volatile LONG refused[REFUSE_COUNT], closed[CLOSE_COUNT];
    /* Failed AUTH/XAUTH per client address (IPv6 per /64), across sessions
     * and threads: a client that keeps failing waits longer for each answer
     * (a session alone is closed after three failures by the engine, so
     * guessing must reconnect). And identical events per address, limited. */
    SRWLOCK penalty_lock;
    struct penalty_throttle throttle;
    struct penalty_limiter events;
};

static struct server srv = {
    .lst = { [LST_SMTP] = { .id = -1, .name = L"SMTP" },
             [LST_SUBMISSION] = { .id = -1, .name = L"submission (SubmissionPort)" },
             [LST_SUBMISSION_TLS] = { .id = -1, .name = L"submission with implicit TLS "
                                                       L"(SubmissionTlsPort)" } },
    .lock = SRWLOCK_INIT, .penalty_lock = SRWLOCK_INIT };
static LONG penalty_ready;

/* Sessions per address ---------------------------------------------------- */

/* IPv4: the address; IPv6: its /64, so one host cannot take a /64's worth
 * of slots by changing its interface identifier. */
static void addr_key(const struct sockaddr_storage *ss, unsigned char key[ADDR_KEY_LEN])
{
    memset(key, 0, ADDR_KEY_LEN);
    if (ss->ss_family == AF_INET) {
        key[0] = 4;
        memcpy(key + 1, &((const struct sockaddr_in *)ss)->sin_addr, 4);
    } else if (ss->ss_family == AF_INET6) {
        key[0] = 6;
        memcpy(key + 1, &((const struct sockaddr_in6 *)ss)->sin6_addr, 8);
    }
}

static unsigned addr_bucket(const unsigned char key[ADDR_KEY_LEN])
{
    uint32_t h = 2166136261u;   /* FNV-1a */
    for (unsigned i = 0; i < ADDR_KEY_LEN; i++)
        h = (h ^ key[i]) * 16777619u;
    return h % ADDR_BUCKETS;
}

/* srv.lock held. Count one more session from key; 0, or -1 at the limit. */
static int addr_take(const unsigned char key[ADDR_KEY_LEN], DWORD limit)
{
    struct addr_count **head = &srv.by_addr[addr_bucket(key)], *a = *head;
    while (a && memcmp(a->key, key, ADDR_KEY_LEN) != 0)
        a = a->next;
    if (a && a->n >= limit)
        return -1;
    if (!a) {
        a = calloc(1, sizeof *a);
        if (!a)
            return -1;
        memcpy(a->key, key, ADDR_KEY_LEN);
        a->next = *head;
        *head = a;
    }
    a->n++;
    return 0;
}

/* srv.lock held. */
static void addr_drop(const unsigned char key[ADDR_KEY_LEN])
{
    struct addr_count **pp = &srv.by_addr[addr_bucket(key)];
    for (struct addr_count *a = *pp; a; pp = &a->next, a = a->next) {
        if (memcmp(a->key, key, ADDR_KEY_LEN) != 0)
            continue;
        if (--a->n == 0) {
            *pp = a->next;
            free(a);
        }
        return;
    }
}

/* Penalties -------------------------------------------------------------- */

/* A failed (failed != 0) or successful authentication from the session's
 * address; returns how long to hold back the answer. */
static DWORD penalty_note(const unsigned char key[ADDR_KEY_LEN], int failed)
{
    DWORD delay = 0;
    AcquireSRWLockExclusive(&srv.penalty_lock);
    if (failed)
        delay = penalty_fail(&srv.throttle, key, ADDR_KEY_LEN, GetTickCount64());
    else
        penalty_success(&srv.throttle, key, ADDR_KEY_LEN);
    ReleaseSRWLockExclusive(&srv.penalty_lock);
    return delay;
}

/* One event a minute per address, location and status; returns 0 to
 * suppress it, else 1 with *suppressed the count it stands for. */
static int event_allowed(const unsigned char key[ADDR_KEY_LEN], DWORD location, DWORD status,
                         unsigned long *suppressed)
{
    unsigned char k[ADDR_KEY_LEN + 8];
    memcpy(k, key, ADDR_KEY_LEN);
    memcpy(k + ADDR_KEY_LEN, &location, 4);
    memcpy(k + ADDR_KEY_LEN + 4, &status, 4);
    AcquireSRWLockExclusive(&srv.penalty_lock);
    int ok = penalty_report(&srv.events, k, sizeof k, GetTickCount64(), suppressed);
    ReleaseSRWLockExclusive(&srv.penalty_lock);
    return ok;
}

/* A session --------------------------------------------------------------- */

/* Work a session hands off; while it runs the session takes no input. */
enum work {
    WORK_NONE,
    WORK_NTLM,          /* one AcceptSecurityContext step */
    WORK_PASSWORD,      /* AUTH LOGIN/PLAIN checked through NTLM */
    WORK_FILTER,        /* the content filter, then the commit */
    WORK_COMMIT,        /* the group commit (receive_commit_async) */
    WORK_DELAY,         /* a failed AUTH's answer, held back by the penalty */
    WORK_RDNS,          /* the client's name (rdns.h): the greeting waits for it */
};

/* An AUTH answer, applied to the engine when the work is back. */
enum answer { ANS_NONE, ANS_CONTINUE, ANS_SUCCESS, ANS_FAIL, ANS_TEMPFAIL };

struct session {
    struct io_conn *io;
    struct chan ch;
    struct smtpd *engine;
    const struct listener *lst;     /* the listener it came through */
    struct sockaddr_storage addr;   /* the client's address */
    struct rdns *rdns;              /* WORK_RDNS: the lookup */
    char peer[INET6_ADDRSTRLEN];
    wchar_t wpeer[INET6_ADDRSTRLEN];
    unsigned char key[ADDR_KEY_LEN];
    struct session *prev, *next;
    int eof;                        /* the client closed its side */
    int told_shutdown;
    int handshaking;                /* TLS handshake under way: its own deadline */
    /* handed-off work */
    enum work work;
    enum answer answer;
    struct ntlm *ntlm;              /* the AUTH NTLM exchange in progress */
    unsigned char *token;           /* the client's token for WORK_NTLM */
    size_t token_len;
    int token_first;
    char user[AUTH_TEXT_MAX]; /* WORK_PASSWORD; the authenticated name */
    char password[AUTH_TEXT_MAX];
    DWORD delay_ms;
    SECURITY_STATUS sspi_status;
    /* the message being received */
    struct receive *rcv;            /* NULL: none, or out of memory at DATA */
    struct envelope env;
    int have_env;
    struct mapfile_ref map;         /* the address map the engine reads, held */
    volatile DWORD commit_err;
    ULONGLONG data_start;
    unsigned long long data_bytes;
    struct protolog_session *plog;  /* the protocol log's; NULL when it is off */
};

static void report_session_error(const struct session *s, DWORD location, DWORD status,
                                 const char *what)
{
    unsigned long suppressed = 0;
    if (!event_allowed(s->key, location, status, &suppressed))
        return;   /* one client cannot flood the log: counted, said with the next */
    wchar_t text[640];
    if (suppressed)
        _snwprintf(text, ARRAYSIZE(text), L"%hs (session from %hs; %lu identical events from "
                   L"this address in the last minute were not logged)", what, s->peer,
                   suppressed);
    else
        _snwprintf(text, ARRAYSIZE(text), L"%hs (session from %hs)", what, s->peer);
    text[ARRAYSIZE(text) - 1] = 0;
    evlog_report(EVENTLOG_ERROR_TYPE, CAT_INTERNAL_PROCESSING, MSG_UNEXPECTED_ERROR,
                 location, status, 1, (const wchar_t *[]){ text });
}

/* The engine's transcript into the protocol log (never AUTH data or content). */
static void transcript(void *arg, enum smtpd_dir dir, const char *line, size_t len)
{
    struct session *s = arg;
    protolog_line(s->plog, dir == SMTPD_SENT ? PROTOLOG_REPLY : dir == SMTPD_RECEIVED ?
                  PROTOLOG_COMMAND : PROTOLOG_SECRET, line, len, smtpd_user(s->engine));
}

/* The engine's replies to the channel. -1 when the connection cannot take them. */
static int flush_replies(struct session *s)
{
    size_t len;
    const unsigned char *out = smtpd_output(s->engine, &len);
    if (len == 0)
        return 0;
    int rc = chan_write(&s->ch, out, len);
    smtpd_output_consumed(s->engine, len);
    return rc;
}

static void session_close(struct session *s, int graceful)
{
    flush_replies(s);
    chan_close(&s->ch, graceful);
}

/* Peer timers: the engine's state decides which one runs. */
static void arm_timer(struct session *s)
{
    DWORD ms = 0;
    if (s->work == WORK_DELAY || s->work == WORK_RDNS)
        return;   /* the delayed AUTH answer, or the name's wait, owns the deadline */
    if (s->handshaking) {
        ms = HANDSHAKE_MS;
    } else if (s->work == WORK_NONE) {
        switch (smtpd_timeout_kind(s->engine)) {
        case SMTPD_TO_COMMAND:
            ms = srv.inactivity_ms;
            break;
        case SMTPD_TO_DATA_BLOCK:
            ms = srv.data_ms;
            break;
        default:
            break;   /* storing: our own work, bounded by its own means */
        }
    }
    io_set_deadline(s->io, ms);
}

/* The queue ------------------------------------------------------------- */

static void message_discard(struct session *s)
{
    receive_free(s->rcv);
    s->rcv = NULL;
}

static void message_begin(struct session *s)
{
    s->data_start = GetTickCount64();
    s->data_bytes = 0;
    message_discard(s);
    s->rcv = receive_begin(RECEIPT_SMTP, s->engine);
    if (s->rcv) {
        char origin[INET6_ADDRSTRLEN + 32];
        snprintf(origin, sizeof origin, "session from %s", s->peer);
        receive_describe(s->rcv, origin);
    }
}

/* The transaction's envelope, as the engine holds it (its id and arrival
 * are the receive module's). */
static DWORD build_envelope(struct session *s, struct envelope *e)
{
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

/* The committer's thread: the group commit this message joined is done.
 * The session is resumed here when no worker is running it (its answer is
 * one send): under Wine a trip through the port costs more than that. */
static void commit_done(void *arg, DWORD err)
{
    struct session *s = arg;
    s->commit_err = err;
    io_wake_here(s->io);   /* the reference taken before the commit travels with it */
}

/* Start the commit; the answer comes back as IO_EV_WAKE. */
static void commit_start(struct session *s)
{
    s->work = WORK_COMMIT;
    io_ref(s->io);
    DWORD err = receive_commit_async(s->rcv, commit_done, s);
    if (err) {
        s->commit_err = err;
        io_wake_ref(s->io);
    }
}

/* A work thread: the content filter; the commit follows on the session. */
static void filter_work(void *ctx)
{
    struct session *s = ctx;
    receive_filter(s->rcv);
}

/* The message's fate once nothing more runs for it: the receive module's
 * answer to the engine. A store failure other than a full disk (which the
 * spool reports once) is reported here, naming the client. */
static void message_answer(struct session *s)
{
    struct receipt_answer a;
    DWORD err = 0;
    if (s->rcv) {
        receive_outcome(s->rcv, &err);
        receive_result(s->rcv, &a);
    } else {
        err = ERROR_NOT_ENOUGH_MEMORY;
        receipt_answer(RECEIPT_SMTP, RECEIPT_STORE_FAILED, err, NULL, &a);
    }
    if (a.events & RECEIPT_EV_STORE_FAILED)
        report_session_error(s, LOC_SMTPD_SPOOL, err, "cannot store a message in the queue");
    if (a.fate == RECEIPT_FATE_TAKEN)
        smtpd_message_stored(s->engine, receive_id(s->rcv));
    else
        smtpd_message_refused(s->engine, a.code, a.status, a.text);
    message_discard(s);
    if (s->have_env) {
        env_free(&s->env);
        s->have_env = 0;
    }
}

/* The next step of the receive module, scheduled so that nothing blocks
 * this I/O worker: the filter on a work thread, the commit asynchronously. */
static void message_step(struct session *s, enum receive_step step)
{
    if (step == RECEIVE_STEP_FILTER) {
        s->work = WORK_FILTER;
        if (io_work(s->io, filter_work, s) == 0)
            return;
        s->work = WORK_NONE;
        receive_filter_unrun(s->rcv, ERROR_NOT_ENOUGH_MEMORY, "cannot start the content filter");
        step = receive_filtered(s->rcv);
    }
    if (step == RECEIVE_STEP_COMMIT) {
        commit_start(s);
        return;
    }
    message_answer(s);
}

/* The engine has the whole message: its envelope, then the receive steps. */
static void message_end(struct session *s)
{
    env_init(&s->env);
    s->have_env = 1;
    if (!s->rcv) {
        message_answer(s);
        return;
    }
    DWORD err = build_envelope(s, &s->env);
    if (err) {
        receive_committed(s->rcv, err);   /* not queued: answered as a store failure */
        message_answer(s);
        return;
    }
    message_step(s, receive_end(s->rcv, &s->env));
}

/* Authentication --------------------------------------------------------- */

/* A work thread: one AcceptSecurityContext step (Wine runs ntlm_auth for
 * it; Windows may ask a domain controller): never on an I/O worker. */
static void ntlm_work(void *ctx)
{
    struct session *s = ctx;
    s->answer = ANS_TEMPFAIL;
    s->delay_ms = 0;
    if (s->token_first || !s->ntlm) {
        ntlm_free(s->ntlm);
        s->ntlm = NULL;
        SECURITY_STATUS st = ntlm_server_new(&s->ntlm);
        if (st != SEC_E_OK) {
            report_session_error(s, LOC_SMTPD_NTLM_CREDS, (DWORD)st,
                                 "AcquireCredentialsHandle for NTLM failed");
            return;
        }
    }
    enum ntlm_result r;
    SECURITY_STATUS st = ntlm_step(s->ntlm, s->token, s->token_len, &r);
    s->sspi_status = st;
    switch (r) {
    case NTLM_CONTINUE:
        s->answer = ANS_CONTINUE;
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
            s->delay_ms = penalty_note(s->key, 1);
            s->answer = ANS_FAIL;
            break;
        }
        penalty_note(s->key, 0);
        snprintf(s->user, sizeof s->user, "%s", ntlm_user(s->ntlm));
        s->answer = ANS_SUCCESS;
        break;
    }
    case NTLM_DENIED:
        s->delay_ms = penalty_note(s->key, 1);
        s->answer = ANS_FAIL;
        break;
    default:
        report_session_error(s, LOC_SMTPD_NTLM_ACCEPT, (DWORD)st,
                             "AcceptSecurityContext for AUTH NTLM failed");
        break;
    }
    ntlm_free(s->ntlm);
    s->ntlm = NULL;
}

/* A work thread: AUTH LOGIN and PLAIN (offered only over TLS). The password
 * is checked by running an NTLM exchange with it through SSPI, client and
 * server in this process, so the same account database decides as for AUTH
 * NTLM. */
static void password_work(void *ctx)
{
    struct session *s = ctx;
    wchar_t domain[256] = L"", user[256], password[256];
    const char *u = s->user, *slash = strchr(u, '\\'), *at = strrchr(u, '@');
    if (slash) {
        int dn = MultiByteToWideChar(CP_UTF8, 0, u, (int)(slash - u), domain, ARRAYSIZE(domain) - 1);
        domain[dn > 0 ? dn : 0] = 0;
        u = slash + 1;
    } else if (at) {
        utf8_to_wide(at + 1, domain, ARRAYSIZE(domain));
    }
    int ulen = at && !slash ? (int)(at - u) : -1;
    int wn = MultiByteToWideChar(CP_UTF8, 0, u, ulen, user, ARRAYSIZE(user) - 1);
    user[wn > 0 ? wn : 0] = 0;
    utf8_to_wide(s->password, password, ARRAYSIZE(password));
    SecureZeroMemory(s->password, sizeof s->password);

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
    s->delay_ms = 0;
    if (sr == NTLM_DONE) {
        penalty_note(s->key, 0);
        snprintf(s->user, sizeof s->user, "%s", ntlm_user(server));
        s->answer = ANS_SUCCESS;
    } else if (sr == NTLM_DENIED || ntlm_status_is_denial(st)) {
        s->delay_ms = penalty_note(s->key, 1);
        s->answer = ANS_FAIL;
    } else {
        report_session_error(s, LOC_SMTPD_NTLM_ACCEPT, (DWORD)st,
                             "checking an AUTH LOGIN/PLAIN password through NTLM failed");
        s->answer = ANS_TEMPFAIL;
    }
    ntlm_free(client);
    ntlm_free(server);
}

/* The AUTH answer to the engine, after the penalty's delay if any. Returns
 * 1 when it is held back (a timer brings it). */
static int auth_answer(struct session *s)
{
    if (s->delay_ms) {
        s->work = WORK_DELAY;
        io_set_deadline(s->io, s->delay_ms);
        s->delay_ms = 0;
        return 1;
    }
    s->work = WORK_NONE;
    size_t tlen = 0;
    const unsigned char *tok = NULL;
    switch (s->answer) {
    case ANS_CONTINUE:
        tok = ntlm_token(s->ntlm, &tlen);
        smtpd_auth_continue(s->engine, tok, tlen);
        break;
    case ANS_SUCCESS:
        smtpd_auth_success(s->engine, s->user);
        break;
    case ANS_FAIL:
        smtpd_auth_fail(s->engine);
        break;
    default:
        smtpd_auth_tempfail(s->engine);
        break;
    }
    s->answer = ANS_NONE;
    free(s->token);
    s->token = NULL;
    return 0;
}

/* Engine events ------------------------------------------------------------ */

/* Is the peer in RelayAddresses? The one range matcher (core/domains.c). */
static int relay_allowed(const struct sockaddr_storage *ss)
{
    const struct range_list *r = srv.lists ? &srv.lists->relay_ranges : NULL;
    const void *a;
    if (ss->ss_family == AF_INET)
        a = &((const struct sockaddr_in *)ss)->sin_addr;
    else if (ss->ss_family == AF_INET6)
        a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
    else
        return 0;
    return domains_in_ranges(r, ss->ss_family == AF_INET6, a);
}

/* Hand work to a work thread; on failure the engine gets a temporary failure. */
static void start_work(struct session *s, enum work w, void (*fn)(void *))
{
    s->work = w;
    if (io_work(s->io, fn, s) == 0)
        return;
    s->work = WORK_NONE;
    report_session_error(s, LOC_SMTPD_SESSION, ERROR_NOT_ENOUGH_MEMORY,
                         "cannot hand an authentication step to a work thread");
    smtpd_auth_tempfail(s->engine);
}

/* Handle one engine event. Returns 0 to go on, -1 to end the session. */
static int on_event(struct session *s, const struct smtpd_event *ev)
{
    switch (ev->type) {
    case SMTPD_EV_STARTTLS: {
        if (flush_replies(s) != 0)   /* the 220 goes out in clear */
            return -1;
        struct tls_config tc = { .policy = &srv.tls_policy };
        if (chan_start_tls(&s->ch, &srv.tls_cred, &tc, LOC_SSPI_HANDSHAKE) != SEC_E_OK)
            return -1;
        s->handshaking = 1;
        return 0;
    }
    case SMTPD_EV_AUTH_NTLM:
        free(s->token);
        s->token = malloc(ev->len ? ev->len : 1);
        if (!s->token) {
            smtpd_auth_tempfail(s->engine);
            return 0;
        }
        memcpy(s->token, ev->data, ev->len);
        s->token_len = ev->len;
        s->token_first = ev->first;
        start_work(s, WORK_NTLM, ntlm_work);
        return 0;
    case SMTPD_EV_AUTH_PASSWORD:
        if (snprintf(s->user, sizeof s->user, "%s", ev->user) >= (int)sizeof s->user ||
            snprintf(s->password, sizeof s->password, "%s", ev->password) >= (int)sizeof s->password) {
            /* longer than any account name or password SSPI takes */
            SecureZeroMemory(s->password, sizeof s->password);
            s->delay_ms = penalty_note(s->key, 1);
            s->answer = ANS_FAIL;
            auth_answer(s);
            return 0;
        }
        start_work(s, WORK_PASSWORD, password_work);
        return 0;
    case SMTPD_EV_AUTH_ABORT:
        ntlm_free(s->ntlm);
        s->ntlm = NULL;
        return 0;
    case SMTPD_EV_DATA_BEGIN:
        message_begin(s);
        return 0;
    case SMTPD_EV_DATA_CHUNK:
        s->data_bytes += ev->len;
        protolog_line(s->plog, PROTOLOG_CONTENT, NULL, ev->len, NULL);
        if (s->rcv)
            receive_write(s->rcv, ev->data, ev->len);
        return 0;
    case SMTPD_EV_MESSAGE:
        message_end(s);
        return 0;
    case SMTPD_EV_MESSAGE_REJECTED:
        message_discard(s);
        return 0;
    case SMTPD_EV_CLOSE:
        return -1;
    default:
        return 0;
    }
}

/* Work came back: give the engine its answer. */
static void work_returned(struct session *s)
{
    switch (s->work) {
    case WORK_NTLM:
    case WORK_PASSWORD:
        auth_answer(s);
        break;
    case WORK_DELAY:
        s->delay_ms = 0;
        auth_answer(s);
        break;
    case WORK_FILTER:
        s->work = WORK_NONE;
        message_step(s, receive_filtered(s->rcv));
        break;
    case WORK_COMMIT:
        s->work = WORK_NONE;
        receive_committed(s->rcv, s->commit_err);
        message_answer(s);
        break;
    case WORK_RDNS: {
        char name[NI_MAXHOST];
        rdns_finish(s->rdns, name, sizeof name);
        s->rdns = NULL;
        s->work = WORK_NONE;
        if (name[0])
            smtpd_set_client_name(s->engine, name);
        break;
    }
    default:
        break;
    }
}

/* ReverseDns: look up the client's name before the greeting goes out.
 * Returns 1 while the session waits for it (IO_EV_WAKE or its deadline). */
static int rdns_begin(struct session *s)
{
    if (!srv.rdns_ms || !(s->rdns = rdns_start(s->io, &s->addr)))
        return 0;
    s->work = WORK_RDNS;
    io_set_deadline(s->io, srv.rdns_ms);
    return 1;
}

/* Below MinDataRate once the grace period is over? */
static int data_too_slow(const struct session *s)
{
    if (!srv.min_data_rate || smtpd_timeout_kind(s->engine) != SMTPD_TO_DATA_BLOCK)
        return 0;
    ULONGLONG ms = GetTickCount64() - s->data_start;
    return ms > RATE_GRACE_MS && s->data_bytes * 1000ull < (ULONGLONG)srv.min_data_rate * ms;
}

/* Feed what arrived, act on the engine's events, send its replies. */
static void run(struct session *s)
{
    if (s->work == WORK_RDNS)
        return;   /* not even the greeting before the client's name */
    for (;;) {
        if (s->work != WORK_NONE)
            break;   /* resumed by IO_EV_WAKE (or the delay's timer) */
        enum chan_status cs = chan_pump(&s->ch);
        if (cs == CHAN_FAILED || cs == CHAN_PEER_CLOSED) {
            session_close(s, cs == CHAN_PEER_CLOSED);
            return;
        }
        if (cs == CHAN_SECURED) {
            s->handshaking = 0;
            if (chan_tls_state(&s->ch) == TLS_ST_OPEN)
                smtpd_tls_started(s->engine, 1);
            else
                smtpd_tls_refused(s->engine, tls_policy_text(chan_tls(&s->ch)));
        }
        if (srv.stopping && !s->told_shutdown) {
            s->told_shutdown = 1;
            smtpd_shutdown(s->engine);
        }
        size_t avail = 0, took = 0;
        const unsigned char *p = s->handshaking ? NULL : chan_input(&s->ch, &avail);
        if (avail > 0) {
            took = smtpd_feed(s->engine, p, avail);
            chan_consume(&s->ch, took);
        }
        struct smtpd_event ev;
        if (smtpd_next(s->engine, &ev) != SMTPD_EV_NONE) {
            if (on_event(s, &ev) != 0) {
                if (smtpd_errors(s->engine) >= s->lst->engine.max_errors)
                    InterlockedIncrement(&srv.closed[CLOSE_ERRORS]);
                session_close(s, 1);
                return;
            }
            continue;
        }
        if (smtpd_closed(s->engine)) {
            session_close(s, 1);
            return;
        }
        if (data_too_slow(s)) {
            InterlockedIncrement(&srv.closed[CLOSE_DATA_RATE]);
            smtpd_timeout(s->engine);
            continue;
        }
        if (took > 0)
            continue;
        if (avail > 0 && took == 0) {
            /* The engine stops when its reply buffer is full: hand the
             * replies to the connection (which queues them, and stops
             * reading while too many wait) and go on. */
            size_t pending;
            smtpd_output(s->engine, &pending);
            if (pending) {
                if (flush_replies(s) != 0) {
                    chan_close(&s->ch, 0);
                    return;
                }
                continue;
            }
            report_session_error(s, LOC_SMTPD_STALLED, ERROR_INVALID_STATE,
                                 "the SMTP engine took no input and asked for nothing; the "
                                 "session is closed");
            session_close(s, 0);
            return;
        }
        break;
    }
    if (flush_replies(s) != 0) {
        chan_close(&s->ch, 0);
        return;
    }
    if (s->eof && s->work == WORK_NONE) {
        session_close(s, 1);   /* the client has gone: nothing more can come */
        return;
    }
    arm_timer(s);
}

static void session_free(struct session *s)
{
    AcquireSRWLockExclusive(&srv.lock);
    if (s->prev)
        s->prev->next = s->next;
    else
        srv.sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    addr_drop(s->key);
    LONG left = InterlockedDecrement(&srv.active);
    if (left == 0 && srv.stopping && srv.all_closed)
        SetEvent(srv.all_closed);
    ReleaseSRWLockExclusive(&srv.lock);
    message_discard(s);
    if (s->have_env)
        env_free(&s->env);
    ntlm_free(s->ntlm);
    free(s->token);
    if (s->rdns)
        rdns_finish(s->rdns, NULL, 0);   /* its wake came with the close */
    SecureZeroMemory(s->password, sizeof s->password);
    chan_free(&s->ch);
    smtpd_free(s->engine);
    protolog_end(s->plog);
    mapfile_release(&s->map);
    free(s);
}

static void session_event(struct io_conn *c, void *arg, enum io_event ev, DWORD err)
{
    struct session *s = arg;
    switch (ev) {
    case IO_EV_OPEN:
        if (!rdns_begin(s))
            run(s);
        break;
    case IO_EV_INPUT:
    case IO_EV_NOTIFY:   /* the service is stopping: run() says so */
        run(s);
        break;
    case IO_EV_WAKE:
        work_returned(s);
        run(s);
        break;
    case IO_EV_EOF:
        s->eof = 1;
        run(s);
        break;
    case IO_EV_TIMER:
        if (s->work == WORK_RDNS) {
            if (rdns_abandon(s->rdns)) {   /* else its answer is on the way */
                s->rdns = NULL;
                s->work = WORK_NONE;
                run(s);
            }
        } else if (s->work == WORK_DELAY) {
            work_returned(s);
            run(s);
        } else if (s->handshaking) {
            session_close(s, 0);
        } else if (s->work == WORK_NONE) {
            InterlockedIncrement(&srv.closed[CLOSE_INACTIVITY]);
            smtpd_timeout(s->engine);   /* 421 4.4.2, and the engine closes */
            run(s);
        }
        break;
    case IO_EV_SEND_STALLED:
        /* The client sends and does not read: no reply can reach it. */
        InterlockedIncrement(&srv.closed[CLOSE_SEND_TIMEOUT]);
        chan_close(&s->ch, 0);
        break;
    case IO_EV_ERROR:
        /* a reset by the client is its own business; anything else is ours */
        if (err != WSAECONNRESET && err != WSAECONNABORTED && err != ERROR_NETNAME_DELETED)
            report_session_error(s, LOC_SMTPD_SOCKET, err, "a socket operation failed");
        chan_close(&s->ch, 0);
        break;
    case IO_EV_CLOSED:
        session_free(s);
        return;
    default:
        break;
    }
    /* While work runs for it the session reads nothing more: what the client
     * sends meanwhile waits in the socket, and no receive is left pending
     * (under Wine one that completes later costs a signal to the thread that
     * posted it, and a trip through the port). */
    io_pause_input(c, s->work != WORK_NONE);
}

/* Refused connections ------------------------------------------------------ */

/* The one reply a refused connection gets, then it is closed. */
static void refuse_event(struct io_conn *c, void *arg, enum io_event ev, DWORD err)
{
    (void)err;
    const char *text = arg;
    if (ev == IO_EV_OPEN) {
        io_write(c, text, strlen(text));
        io_close(c, 1);
    } else if (ev != IO_EV_CLOSED) {
        io_close(c, 0);
    }
}

static const char refuse_paused[] = "421 4.3.2 Service paused, try again later\r\n";
static const char refuse_max[] =
    "421 4.7.0 Too many connections to this server (MaxSessions); try again later\r\n";
static const char refuse_addr[] =
    "421 4.7.0 Too many connections from your address (MaxSessionsPerAddress); "
    "try again later\r\n";

/* The engine's listener hands over each accepted socket. */
static void on_accept(void *arg, SOCKET sock, const struct sockaddr_storage *peer)
{
    const struct listener *lst = arg;
    const char *refusal = NULL;
    unsigned char key[ADDR_KEY_LEN];
    addr_key(peer, key);
    AcquireSRWLockExclusive(&srv.lock);
    if (srv.stopping) {
        ReleaseSRWLockExclusive(&srv.lock);
        closesocket(sock);
        return;
    }
    if (srv.paused) {
        refusal = refuse_paused;
        InterlockedIncrement(&srv.refused[REFUSE_PAUSED]);
    } else if ((DWORD)srv.active >= srv.max_sessions) {
        refusal = refuse_max;
        InterlockedIncrement(&srv.refused[REFUSE_MAX]);
    } else if (addr_take(key, srv.max_per_address) != 0) {
        refusal = refuse_addr;
        InterlockedIncrement(&srv.refused[REFUSE_PER_ADDRESS]);
    } else {
        InterlockedIncrement(&srv.active);
    }
    ReleaseSRWLockExclusive(&srv.lock);
    if (refusal) {
        struct io_conn *c = io_attach(sock, refuse_event, (void *)refusal);
        if (c)
            io_start(c);
        return;
    }
    struct session *s = calloc(1, sizeof *s);
    if (s) {
        memcpy(s->key, key, sizeof key);
        s->lst = lst;
        s->addr = *peer;
        /* The bare numeric address: the engine and the events name the peer by it. */
        if (getnameinfo((const struct sockaddr *)peer, sizeof *peer, s->peer, sizeof s->peer,
                        NULL, 0, NI_NUMERICHOST) != 0)
            strcpy(s->peer, "unknown");
        utf8_to_wide(s->peer, s->wpeer, ARRAYSIZE(s->wpeer));
        s->engine = smtpd_new(&lst->engine, s->peer, relay_allowed(peer));
        if (s->engine && (s->plog = protolog_inbound(s->peer)))
            smtpd_set_transcript(s->engine, transcript, s);
        if (s->engine) {
            /* held until the session ends: a reload never frees it under us */
            mapfile_acquire(&s->map);
            smtpd_set_address_map(s->engine, s->map.map, s->map.wanted);
        }
    }
    if (!s || !s->engine) {
        if (s)
            report_session_error(s, LOC_SMTPD_SESSION, ERROR_NOT_ENOUGH_MEMORY,
                                 "cannot create an SMTP session");
        free(s);
        closesocket(sock);
        AcquireSRWLockExclusive(&srv.lock);
        addr_drop(key);
        InterlockedDecrement(&srv.active);
        ReleaseSRWLockExclusive(&srv.lock);
        return;
    }
    AcquireSRWLockExclusive(&srv.lock);
    s->next = srv.sessions;
    if (srv.sessions)
        srv.sessions->prev = s;
    srv.sessions = s;
    ReleaseSRWLockExclusive(&srv.lock);
    s->io = io_attach(sock, session_event, s);
    if (!s->io) {
        session_free(s);
        return;
    }
    chan_init(&s->ch, s->io, s->wpeer);
    io_start(s->io);   /* the handler runs from here on */
}

/* Configuration and the listener ---------------------------------------------- */

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
        secret_password(L"CertificatePassword", cfg->certificate_password_file, password,
                        ARRAYSIZE(password));
        rc = cert_load_pfx(cfg->certificate_file, password, &cert);
        SecureZeroMemory(password, sizeof password);
        what = cfg->certificate_file;
    } else {
        rc = cert_find(cfg->certificate_store, CERT_SYSTEM_STORE_LOCAL_MACHINE, cfg->certificate,
                       &cert);
        what = cfg->certificate;
    }
    if (rc == ERROR_SUCCESS) {
        SECURITY_STATUS st = tls_cred_server(&srv.tls_cred, cert, &srv.tls_policy);
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

/* Configuration into the engine's form (UTF-8; the lists as config_load
 * parsed them). */
static DWORD load_engine_config(const struct imsvc_config *cfg)
{
    WideCharToMultiByte(CP_UTF8, 0, cfg->host_name, -1, srv.hostname, sizeof srv.hostname,
                        NULL, NULL);
    srv.lists = cfg->lists;
    struct smtpd_config *e = &srv.lst[LST_SMTP].engine;
    e->hostname = srv.hostname;
    e->max_size = (unsigned long long)cfg->max_message_kb * 1024;
    e->max_recipients = cfg->max_recipients;
    e->max_messages = cfg->max_messages_per_connection;
    e->max_hops = cfg->max_hops;
    e->local_domains = cfg->lists ? &cfg->lists->local_domains : NULL;
    e->options = (cfg->xauth ? SMTPD_OPT_XAUTH : 0) | (cfg->xauth == 2 ? SMTPD_OPT_NO_AUTH : 0);
    config_tls_policy(cfg, &srv.tls_policy);
    srv.ntlm_min_key_bits = cfg->ntlm_min_key_bits;
    if (load_certificate(cfg) == ERROR_SUCCESS)
        e->options |= SMTPD_OPT_STARTTLS;
    /* MaxProtocolErrors errors are allowed; the engine closes at its count,
     * so the one beyond them (as Postfix's smtpd_hard_error_limit). */
    e->max_errors = cfg->max_protocol_errors + 1;
    if (cfg->auth_requires_tls)
        e->options |= SMTPD_OPT_AUTH_NEEDS_TLS;
    /* Submission: the same limits; AUTH (only after TLS) before any MAIL,
     * whatever RelayAddresses says; on the second port TLS from the start.
     * AUTH NTLM stays offered beside LOGIN and PLAIN, as on the SMTP port. */
    struct smtpd_config *sub = &srv.lst[LST_SUBMISSION].engine;
    *sub = *e;
    sub->options = (e->options & ~SMTPD_OPT_NO_AUTH) | SMTPD_OPT_AUTH_NEEDS_TLS |
                   SMTPD_OPT_AUTH_REQUIRED;
    srv.lst[LST_SUBMISSION_TLS].engine = *sub;
    srv.lst[LST_SUBMISSION_TLS].engine.options |= SMTPD_OPT_TLS_ON_CONNECT;
    srv.rdns_ms = cfg->reverse_dns ? cfg->reverse_dns_timeout_ms : 0;
    return ERROR_SUCCESS;
}

/* A submission listener that cannot serve is reported; the rest go on. */
static void report_listener(const struct listener *l, const wchar_t *addr, DWORD port,
                            DWORD err, const wchar_t *why)
{
    wchar_t wport[16];
    _snwprintf(wport, ARRAYSIZE(wport), L"%lu", (unsigned long)port);
    wport[ARRAYSIZE(wport) - 1] = 0;
    evlog_report(EVENTLOG_WARNING_TYPE, CAT_SMTP_INTERFACE, MSG_LISTENER_NOT_STARTED,
                 LOC_SMTPD_LISTEN_SUBMISSION, err, 4,
                 (const wchar_t *[]){ l->name, addr, wport, why });
}

/* Listen for one listener on addr:port (addr "" is ListenAddress). */
static DWORD listener_open(struct listener *l, const struct imsvc_config *cfg,
                           const wchar_t *waddr, DWORD port)
{
    char addr[64], sport[16];
    if (!waddr[0])
        waddr = cfg->listen_address;
    WideCharToMultiByte(CP_UTF8, 0, waddr, -1, addr, sizeof addr, NULL, NULL);
    snprintf(sport, sizeof sport, "%lu", (unsigned long)port);
    DWORD rc = io_listen(addr, sport, on_accept, l, &l->id);
    if (rc != ERROR_SUCCESS)
        l->id = -1;
    return rc;
}

/* The submission listeners that are configured; each failure is reported. */
static void submission_open(const struct imsvc_config *cfg)
{
    static const int which[] = { LST_SUBMISSION, LST_SUBMISSION_TLS };
    for (size_t i = 0; i < ARRAYSIZE(which); i++) {
        struct listener *l = &srv.lst[which[i]];
        int tls = which[i] == LST_SUBMISSION_TLS;
        DWORD port = tls ? cfg->submission_tls_port : cfg->submission_port;
        const wchar_t *addr = tls ? cfg->submission_tls_address : cfg->submission_address;
        if (!port)
            continue;
        if (!(l->engine.options & SMTPD_OPT_STARTTLS)) {
            report_listener(l, addr[0] ? addr : cfg->listen_address, port, ERROR_NOT_FOUND,
                            L"there is no server certificate, and submission needs TLS "
                            L"(imsvc cert new makes one)");
            continue;
        }
        DWORD rc = listener_open(l, cfg, addr, port);
        if (rc != ERROR_SUCCESS)
            report_listener(l, addr[0] ? addr : cfg->listen_address, port, rc,
                            L"the address or port cannot be bound");
    }
}

static void listeners_close(void)
{
    for (int i = 0; i < LST_COUNT; i++) {
        if (srv.lst[i].id >= 0)
            io_unlisten(srv.lst[i].id);
        srv.lst[i].id = -1;
    }
}

DWORD smtp_server_start(const struct imsvc_config *cfg)
{
    DWORD rc = load_engine_config(cfg);
    if (rc != ERROR_SUCCESS)
        return rc;
    srv.max_sessions = cfg->max_sessions;
    srv.max_per_address = cfg->max_sessions_per_address;
    srv.inactivity_ms = cfg->inactivity_timeout * 1000u;
    srv.data_ms = cfg->data_timeout * 1000u;
    srv.min_data_rate = cfg->min_data_rate;
    if (InterlockedExchange(&penalty_ready, 1) == 0) {   /* kept across restarts */
        penalty_throttle_init(&srv.throttle, AUTH_DELAY_MS, AUTH_DELAY_MAX_MS, PENALTY_FORGET_MS);
        penalty_limiter_init(&srv.events, EVENT_WINDOW_MS);
    }
    io_set_send_timeout(cfg->send_timeout);
    if (!srv.all_closed)
        srv.all_closed = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (!srv.all_closed)
        return GetLastError();
    ResetEvent(srv.all_closed);
    srv.stopping = 0;   /* `paused` survives a restart: the service may be paused */

    rc = listener_open(&srv.lst[LST_SMTP], cfg, cfg->listen_address, cfg->listen_port);
    if (rc != ERROR_SUCCESS) {
        tls_cred_free(&srv.tls_cred);
        return rc;
    }
    submission_open(cfg);
    return ERROR_SUCCESS;
}

void smtp_server_pause(int paused)
{
    InterlockedExchange(&srv.paused, paused ? 1 : 0);
}

void smtp_server_stop(DWORD wait_ms)
{
    AcquireSRWLockExclusive(&srv.lock);
    InterlockedExchange(&srv.stopping, 1);
    ReleaseSRWLockExclusive(&srv.lock);
    listeners_close();
    /* Every session says 421 4.3.2 at its next turn (run() sees stopping). */
    io_notify_all();
    if (srv.active > 0 && srv.all_closed)
        WaitForSingleObject(srv.all_closed, wait_ms);
    if (srv.active == 0)
        tls_cred_free(&srv.tls_cred);
    /* else: sessions that outlived the wait keep the credentials */
}

LONG smtp_server_active(void)
{
    return srv.active;
}

int smtp_server_status_text(char *buf, size_t cap)
{
    struct io_stats st;
    io_engine_stats(&st);
    int n = snprintf(buf, cap,
                     "refused-max-sessions %ld\r\nrefused-per-address %ld\r\nrefused-paused %ld\r\n"
                     "closed-inactivity %ld\r\nclosed-send-timeout %ld\r\nclosed-data-rate %ld\r\n"
                     "closed-protocol-errors %ld\r\nio-threads %ld\r\nio-connections %ld\r\n",
                     (long)srv.refused[REFUSE_MAX], (long)srv.refused[REFUSE_PER_ADDRESS],
                     (long)srv.refused[REFUSE_PAUSED], (long)srv.closed[CLOSE_INACTIVITY],
                     (long)srv.closed[CLOSE_SEND_TIMEOUT], (long)srv.closed[CLOSE_DATA_RATE],
                     (long)srv.closed[CLOSE_ERRORS], (long)st.workers, (long)st.connections);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}
