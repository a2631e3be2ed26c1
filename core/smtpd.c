/* smtpd.c - the SMTP server session engine (see smtpd.h, docs/smtp.md).
 *
 * Bytes in, reply bytes and events out. One command table drives the
 * protocol; the session is an explicit state plus SF_* flags; what EHLO
 * offers is a set of ADVERTISE_* predicates over them. Only <CRLF>.<CRLF>
 * ends DATA: a bare CR or LF anywhere is refused, never taken as a line end,
 * so no byte sequence a downstream server might read differently can end a
 * message here (SMTP smuggling).
 *
 * It must never: read a socket, a clock or a file; acknowledge a message the
 * caller has not stored; write past a buffer; allocate per input byte (the
 * only allocations are the session and its recipient array, bounded by the
 * recipient limit).
 */
#include "base64.h"
#include "inbuf.h"
#include "rewrite.h"
#include "route.h"
#include "smtpd.h"

#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Limits ------------------------------------------------------------------- */
#define SMTPD_CMD_LINE_MAX   512           /* RFC 5321 4.5.3.1.4, with CRLF */
#define SMTPD_AUTH_LINE_MAX  12288         /* RFC 4954 4: AUTH and its responses */
#define SMTPD_TEXT_LINE_MAX  1000          /* RFC 5321 4.5.3.1.6, with CRLF */
#define SMTPD_INBUF_MAX      (17 * 1024)   /* one whole TLS record always fits */
#define SMTPD_OUTBUF_MAX     (16 * 1024)
#define SMTPD_REPLY_RESERVE  (8 * 1024)    /* free output needed to run a command */
#define SMTPD_REPLY_LINE_MAX 512           /* RFC 5321 4.5.3.1.5, with CRLF */
#define SMTPD_CHUNK_MAX      8192          /* message content per DATA_CHUNK event */
#define SMTPD_HOST_MAX       255
#define SMTPD_HELO_MAX       255
#define SMTPD_CLIENT_MAX     63            /* an IPv6 address as text, and then some */
#define SMTPD_USER_MAX       256
#define SMTPD_TOKEN_IN_MAX   9216          /* decoded client token: 12288 base64 */
#define SMTPD_TOKEN_OUT_MAX  4096          /* caller's token: 5464 base64, < reserve */
#define SMTPD_QUEUE_ID_MAX   64
#define SMTPD_REASON_MAX     200           /* caller's text in a failure reply */
#define SMTPD_REWRITTEN_TEXT_MAX 440       /* both paths in "ok, rewritten to": within a reply line */
#define SMTPD_ERRORS_MAX     20            /* 5xx replies before 421 and close */
#define SMTPD_AUTH_FAIL_MAX  3             /* failed AUTH before 421 and close */

enum smtpd_state {
    ST_INIT,        /* greeted; HELO/EHLO expected */
    ST_HELO,        /* HELO/EHLO done, no transaction */
    ST_MAIL,        /* MAIL accepted */
    ST_RCPT,        /* at least one RCPT accepted */
    ST_DATA,        /* reading message content */
    ST_MSG_WAIT,    /* content complete: waiting for the caller to store it */
    ST_AUTH_INPUT,  /* waiting for the client's next AUTH response line */
    ST_AUTH_WAIT,   /* waiting for the caller's answer to an AUTH event */
    ST_TLS_WAIT,    /* 220 to STARTTLS sent: waiting for the handshake */
    ST_CLOSED       /* 221 or 421 queued: nothing more is read */
};

enum auth_mech { MECH_NONE, MECH_NTLM, MECH_LOGIN, MECH_PLAIN };
enum auth_step { STEP_TOKEN, STEP_USER, STEP_PASS };

/* Where the DATA reader is within a line. */
enum data_pos {
    D_BOL,      /* at the start of a line (after CRLF) */
    D_TEXT,     /* inside a line */
    D_CR,       /* CR seen inside a line: only LF may follow */
    D_DOT,      /* "." at the start of a line */
    D_DOT_CR    /* ".<CR>" at the start of a line: LF ends the message */
};

/* Why a command line is refused before it is parsed. */
#define LB_BARE 0x1u  /* bare CR or bare LF */
#define LB_NUL  0x2u
#define LB_LONG 0x4u

struct smtpd_rcpt {
    struct addr_path path;
    struct addr_params params;
};

struct smtpd {
    const struct smtpd_config *cfg;
    enum smtpd_state state;
    unsigned flags;
    int relay_allowed;
    unsigned long long max_size;
    unsigned max_rcpt;
    char host[SMTPD_HOST_MAX + 1];
    char client[SMTPD_CLIENT_MAX + 1];
    char client_name[SMTPD_HOST_MAX + 1]; /* confirmed reverse DNS name, or "" */
    char helo[SMTPD_HELO_MAX + 1];
    char user[SMTPD_USER_MAX + 1];
    unsigned errors;
    unsigned max_errors;          /* errors before 421 and close */
    unsigned auth_failures;
    unsigned max_hops;            /* Received fields allowed in a message */
    unsigned max_messages;        /* DATA commands allowed; 0: no limit */
    unsigned messages;            /* DATA commands so far */
    int tls_on_connect;           /* 1: the STARTTLS event is still to give; 2: given,
                                     the greeting waits for the handshake */



    /* the command line being read */

    unsigned line_bad;
    int line_cr;

    /* where recipients go: local_domains as core/route.h reads them */
    struct route_config route;
    struct route_verdict verdict;  /* the last RCPT's (kept here: it is large) */
    /* what envelope addresses become: the address map (core/rewrite.h) */
    struct rewrite_config rewrite;
    struct rewrite_verdict rewritten; /* the last MAIL's or RCPT's */

    /* the transaction */
    struct addr_path sender;
    struct addr_params sender_params;
    struct smtpd_rcpt *rcpt;
    size_t nrcpt, rcpt_cap;

    /* DATA */
    enum data_pos dpos;
    size_t dline;                 /* octets in the current text line */
    unsigned long long dsize;     /* content octets so far */
    enum smtpd_reject dbad;
    int dheader;                  /* still in the message's header section */
    unsigned dhops;               /* Received fields in it */
    char dfield[9];               /* the current line's first octets, for "Received:" */

    int chunk_given;              /* chunk was handed out: clear on next call */

    /* AUTH */
    enum auth_mech mech;
    enum auth_step step;
    int auth_xauth;
    int auth_first;               /* the next NTLM token starts a context */

    /* the transcript (smtpd_set_transcript) */
    smtpd_transcript_fn transcript;
    void *transcript_arg;

    /* events */
    struct smtpd_event ev;
    enum smtpd_event_type pending;

    /* Lengths of the buffers below, which are not zeroed when a session is
     * made: each is written before it is read, so an idle session keeps
     * only the pages it has touched (thousands of sessions may be open). */
    size_t in_off, in_len;
    size_t out_off, out_len;
    size_t line_len;
    size_t chunk_len;
    size_t token_len;
    size_t login_used, secret_used;  /* octets to wipe */

    unsigned char in[SMTPD_INBUF_MAX];
    unsigned char out[SMTPD_OUTBUF_MAX];
    char line[SMTPD_AUTH_LINE_MAX + 1];   /* the command line being read */
    unsigned char chunk[SMTPD_CHUNK_MAX];
    unsigned char token[SMTPD_TOKEN_IN_MAX];
    char login_user[SMTPD_USER_MAX + 1];
    char secret[SMTPD_TOKEN_IN_MAX + 1];  /* password or PLAIN response */
};

/* What EHLO offers, as policy. */
#define ADVERTISE_STARTTLS(s)  (((s)->cfg->options & SMTPD_OPT_STARTTLS) && !((s)->flags & SF_SECURE))
#define OFFER_AUTH_VERB(s)     (!((s)->cfg->options & SMTPD_OPT_NO_AUTH))
#define OFFER_XAUTH_VERB(s)    ((s)->cfg->options & SMTPD_OPT_XAUTH)
#define NOT_AUTHENTICATED(s)   (!((s)->flags & SF_AUTHENTICATED))
#define AUTH_ALLOWED_NOW(s)    (!((s)->cfg->options & SMTPD_OPT_AUTH_NEEDS_TLS) || \
                                ((s)->flags & SF_SECURE))
#define ADVERTISE_AUTH(s)      (OFFER_AUTH_VERB(s) && NOT_AUTHENTICATED(s) && AUTH_ALLOWED_NOW(s))
#define ADVERTISE_AUTH_PLAIN(s) (ADVERTISE_AUTH(s) && ((s)->flags & SF_SECURE))
#define ADVERTISE_XAUTH(s)     (OFFER_XAUTH_VERB(s) && NOT_AUTHENTICATED(s) && AUTH_ALLOWED_NOW(s))
/* Who may send mail to domains that are not local. */
#define MAY_RELAY(s)           (!NOT_AUTHENTICATED(s) || (s)->relay_allowed)
/* Message submission (RFC 6409 4.3): no transaction before AUTH. */
#define MUST_AUTH_FIRST(s)     (((s)->cfg->options & SMTPD_OPT_AUTH_REQUIRED) && NOT_AUTHENTICATED(s))

/* Small helpers -------------------------------------------------------------- */

static int lc(int c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

static int prefix_ieq(const char *s, size_t n, const char *p)
{
    size_t k = strlen(p);
    if (n < k)
        return 0;
    for (size_t i = 0; i < k; i++)
        if (lc((unsigned char)s[i]) != lc((unsigned char)p[i]))
            return 0;
    return 1;
}

static int word_ieq(const char *s, size_t n, const char *w)
{
    return strlen(w) == n && prefix_ieq(s, n, w);
}

/* Copy printable ASCII from src, replacing anything else, bounded. */
static void copy_printable(char *dst, size_t cap, const char *src)
{
    size_t i = 0;
    for (; src && src[i] && i + 1 < cap; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[i] = (c >= 32 && c < 127) ? (char)c : '?';
    }
    dst[i] = '\0';
}

/* Zero memory that held a secret, so an optimiser cannot drop it. */
static void wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n--)
        *v++ = 0;
}

/* Output -------------------------------------------------------------------- */

static size_t out_free(const struct smtpd *s)
{
    return SMTPD_OUTBUF_MAX - s->out_len;
}

/* Append one reply line; the reserve guarantees room, but if the caller has
 * not drained the output the line is dropped and the session closed rather
 * than a reply being cut in half. */
static void out_line(struct smtpd *s, const char *text, size_t n)
{
    if (s->out_off > 0 && s->out_off == s->out_len)
        s->out_off = s->out_len = 0;
    if (s->out_off > 0 && out_free(s) < n + 2) {
        memmove(s->out, s->out + s->out_off, s->out_len - s->out_off);
        s->out_len -= s->out_off;
        s->out_off = 0;
    }
    if (out_free(s) < n + 2) {
        s->state = ST_CLOSED;
        return;
    }
    memcpy(s->out + s->out_len, text, n);
    s->out[s->out_len + n] = '\r';
    s->out[s->out_len + n + 1] = '\n';
    s->out_len += n + 2;
    if (text[0] == '5')
        s->errors++;
    if (s->transcript)
        s->transcript(s->transcript_arg, SMTPD_SENT, text, n);
}

static void reply(struct smtpd *s, const char *fmt, ...)
{
    char line[SMTPD_REPLY_LINE_MAX - 1];
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (r < 0 || (size_t)r >= sizeof line) {
        /* Our own text never gets here; a bounded argument that does is a bug
         * worth a clear transient reply, not a truncated one. */
        static const char fallback[] = "451 4.3.0 Error: reply too long";
        out_line(s, fallback, sizeof fallback - 1);
        return;
    }
    out_line(s, line, (size_t)r);
}

static void close_421(struct smtpd *s, const char *status, const char *text)
{
    if (s->state == ST_CLOSED)
        return;
    if (s->tls_on_connect) {
        /* implicit TLS not up yet: nothing may go out in clear */
        s->state = ST_CLOSED;
        return;
    }
    reply(s, "421 %s %s %s", status, s->host, text);
    s->state = ST_CLOSED;
}

/* Session state -------------------------------------------------------------- */

static void transaction_reset(struct smtpd *s)
{
    memset(&s->sender, 0, sizeof s->sender);
    memset(&s->sender_params, 0, sizeof s->sender_params);
    s->nrcpt = 0;
    s->flags &= ~SF_8BITMIME;
}

static void line_reset(struct smtpd *s)
{
    s->line_len = 0;
    s->line_bad = 0;
    s->line_cr = 0;
}

static void auth_clear(struct smtpd *s)
{
    wipe(s->secret, s->secret_used);
    wipe(s->token, s->token_len);
    wipe(s->login_user, s->login_used);
    s->secret_used = s->login_used = 0;
    s->token_len = 0;
    s->mech = MECH_NONE;
    s->auth_first = 0;
}

static void event(struct smtpd *s, enum smtpd_event_type type)
{
    memset(&s->ev, 0, sizeof s->ev);
    s->ev.type = type;
}

/* Valid as a HELO/EHLO argument: a name of letters, digits, '-', '.', '_'
 * (Windows machine names carry '_'), or an address literal in brackets. */
static int helo_valid(const char *a, size_t n)
{
    if (n == 0 || n > SMTPD_HELO_MAX)
        return 0;
    if (a[0] == '[') {
        if (n < 3 || a[n - 1] != ']')
            return 0;
        for (size_t i = 1; i + 1 < n; i++) {
            int c = (unsigned char)a[i];
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
                  c == '.' || c == ':' || c == 'I' || c == 'P' || c == 'v'))
                return 0;
        }
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)a[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '-' || c == '.' || c == '_'))
            return 0;
    }
    return 1;
}

/* The command table ----------------------------------------------------------- */

/* check: may this command run now, with these arguments? Replies and returns
 * -1 if not. proceed: run it. args is NUL-terminated, alen octets. */
typedef int (*cmd_check)(struct smtpd *s, const char *args, size_t alen);
typedef void (*cmd_proceed)(struct smtpd *s, const char *args, size_t alen);

#define CMD_BELOW_POLICY_OK 0x1u  /* allowed when TLS is weaker than policy */

struct smtpd_cmd {
    const char *verb;
    unsigned attrs;
    cmd_check check;
    cmd_proceed proceed;
};

static int check_no_args(struct smtpd *s, const char *verb, size_t alen)
{
    if (alen != 0) {
        reply(s, "501 5.5.4 Syntax: %s takes no arguments", verb);
        return -1;
    }
    return 0;
}

static int check_helo(struct smtpd *s, const char *args, size_t alen)
{
    if (alen == 0) {
        reply(s, "501 5.5.4 Syntax: EHLO/HELO domain-or-address-literal");
        return -1;
    }
    if (!helo_valid(args, alen)) {
        reply(s, "501 5.5.4 Invalid domain name or address literal");
        return -1;
    }
    return 0;
}

static void helo_common(struct smtpd *s, const char *args, size_t alen, int ehlo)
{
    memcpy(s->helo, args, alen);
    s->helo[alen] = '\0';
    transaction_reset(s);
    s->state = ST_HELO;
    if (ehlo)
        s->flags |= SF_EHLO;
    else
        s->flags &= ~SF_EHLO;
}

static void proceed_helo(struct smtpd *s, const char *args, size_t alen)
{
    helo_common(s, args, alen, 0);
    reply(s, "250 %s", s->host);
}

static void proceed_ehlo(struct smtpd *s, const char *args, size_t alen)
{
    helo_common(s, args, alen, 1);
    const char *lines[12];
    char size_line[48];
    int n = 0, r;
    r = snprintf(size_line, sizeof size_line, "SIZE %llu", s->max_size);
    lines[n++] = "PIPELINING";
    if (r > 0 && (size_t)r < sizeof size_line)
        lines[n++] = size_line;
    lines[n++] = "8BITMIME";
    lines[n++] = "ENHANCEDSTATUSCODES";
    if (ADVERTISE_STARTTLS(s))
        lines[n++] = "STARTTLS";
    if (ADVERTISE_AUTH_PLAIN(s))
        lines[n++] = "AUTH NTLM LOGIN PLAIN";
    else if (ADVERTISE_AUTH(s))
        lines[n++] = "AUTH NTLM";
    if (ADVERTISE_XAUTH(s))
        lines[n++] = "XAUTH NTLM";
    lines[n++] = "HELP";
    reply(s, "250-%s", s->host);
    for (int i = 0; i < n; i++)
        reply(s, "250%c%s", i + 1 < n ? '-' : ' ', lines[i]);
}

static int check_mail(struct smtpd *s, const char *args, size_t alen)
{
    (void)args;
    (void)alen;
    if (s->state == ST_INIT) {
        reply(s, "503 5.5.1 Error: send HELO/EHLO first");
        return -1;
    }
    if (s->state != ST_HELO) {
        reply(s, "503 5.5.1 Error: nested MAIL command");
        return -1;
    }
    if (MUST_AUTH_FIRST(s)) {
        reply(s, "530 5.7.0 Authentication required");
        return -1;
    }
    if (s->max_messages && s->messages >= s->max_messages) {
        char text[128];
        snprintf(text, sizeof text, "Error: too many messages in one connection (at most %u); "
                 "reconnect to send more", s->max_messages);
        close_421(s, "4.7.0", text);
        return -1;
    }
    return 0;
}

static int check_rcpt(struct smtpd *s, const char *args, size_t alen)
{
    (void)args;
    (void)alen;
    if (s->state != ST_MAIL && s->state != ST_RCPT) {
        reply(s, "503 5.5.1 Error: need MAIL command");
        return -1;
    }
    if (s->nrcpt >= s->max_rcpt) {
        reply(s, "452 4.5.3 Error: too many recipients");
        return -1;
    }
    return 0;
}

/* After "FROM:" / "TO:": tolerate spaces before the path (many clients send
 * them), then hand the rest to the address module. */
static int parse_path_arg(struct smtpd *s, const char *args, size_t alen, const char *kw,
                          enum addr_verb verb, struct addr_path *path,
                          struct addr_params *params)
{
    struct addr_error err;
    if (!prefix_ieq(args, alen, kw)) {
        reply(s, "501 5.5.4 Syntax: %s", verb == ADDR_MAIL ? "MAIL FROM:<address>" : "RCPT TO:<address>");
        return -1;
    }
    size_t k = strlen(kw);
    while (k < alen && args[k] == ' ')
        k++;
    if (addr_parse_command(args + k, alen - k, verb, path, params, &err) != 0) {
        reply(s, "%d %s %s", err.reply, err.status, err.rule);
        return -1;
    }
    int any = params->has_size || params->has_auth || params->has_envid || params->has_orcpt ||
              params->body != ADDR_BODY_NONE || params->ret != ADDR_RET_NONE || params->notify != 0;
    if (any && !(s->flags & SF_EHLO)) {
        reply(s, "555 5.5.4 Error: parameters need EHLO");
        return -1;
    }
    if (params->has_envid || params->has_orcpt || params->ret != ADDR_RET_NONE || params->notify != 0) {
        reply(s, "555 5.5.4 Error: DSN parameters are not offered");
        return -1;
    }
    return 0;
}

static void proceed_mail(struct smtpd *s, const char *args, size_t alen)
{
    struct addr_path path;
    struct addr_params params;
    char buf[ADDR_PATH_MAX + 8], to[ADDR_PATH_MAX + 8];
    if (parse_path_arg(s, args, alen, "FROM:", ADDR_MAIL, &path, &params) != 0)
        return;
    if (params.body == ADDR_BODY_BINARYMIME) {
        reply(s, "555 5.5.4 Error: BODY=BINARYMIME is not offered");
        return;
    }
    if (params.has_size && params.size > s->max_size) {
        reply(s, "552 5.3.4 Error: message size exceeds fixed maximum message size");
        return;
    }
    /* An IMCEA sender whose embedded address breaks a rule is refused
     * here; a mapped one is rewritten (core/rewrite.h). */
    if (rewrite_sender(&s->rewrite, &path, &s->rewritten) != 0) {
        reply(s, "%d %s Error: %s", s->rewritten.code, s->rewritten.status, s->rewritten.why);
        return;
    }
    s->sender = path;
    if (s->rewritten.result == REWRITE_CHANGED)
        s->sender = *rewrite_target(&s->rewritten, 0);
    s->sender_params = params;
    if (params.body == ADDR_BODY_8BITMIME)
        s->flags |= SF_8BITMIME;
    s->nrcpt = 0;
    s->state = ST_MAIL;
    if (addr_format_path(&path, buf, sizeof buf) < 0)
        reply(s, "250 2.1.0 Ok");
    else if (s->rewritten.result != REWRITE_CHANGED ||
             addr_format_path(&s->sender, to, sizeof to) < 0 ||
             strlen(buf) + strlen(to) > SMTPD_REWRITTEN_TEXT_MAX)
        reply(s, "250 2.1.0 Sender %s ok", buf);
    else
        reply(s, "250 2.1.0 Sender %s ok, rewritten to %s", buf, to);
}

static int rcpt_add(struct smtpd *s, const struct addr_path *p, const struct addr_params *pr)
{
    if (s->nrcpt == s->rcpt_cap) {
        size_t cap = s->rcpt_cap ? s->rcpt_cap * 2 : 4;
        if (cap > s->max_rcpt)
            cap = s->max_rcpt;
        struct smtpd_rcpt *n = realloc(s->rcpt, cap * sizeof *n);
        if (!n)
            return -1;
        s->rcpt = n;
        s->rcpt_cap = cap;
    }
    s->rcpt[s->nrcpt].path = *p;
    s->rcpt[s->nrcpt].params = *pr;
    s->nrcpt++;
    return 0;
}

/* The recipient the map rewrote (s->rewritten): every address it became
 * must be routable (the map's own lines may send mail elsewhere, so as
 * relayed mail), and then all are added, each with the address as the
 * client wrote it as its ORCPT (RFC 3461 4.2), or none is. */
static void rcpt_rewritten(struct smtpd *s, const struct addr_path *path,
                           const struct addr_params *params)
{
    const struct rewrite_verdict *rw = &s->rewritten;
    char buf[ADDR_PATH_MAX + 8], to[ADDR_PATH_MAX + 8];
    if (s->nrcpt + rw->n > s->max_rcpt) {
        reply(s, "452 4.5.3 Error: too many recipients (the address map makes this one %zu)",
              rw->n);
        return;
    }
    for (size_t i = 0; i < rw->n; i++) {
        if (route_recipient(&s->route, rewrite_target(rw, i), 1, &s->verdict) != 0) {
            if (addr_format_path(rewrite_target(rw, i), to, sizeof to) < 0)
                snprintf(to, sizeof to, "(unprintable)");
            reply(s, "%d %s Error: the address map makes it %.258s, which cannot be routed: %.150s",
                  s->verdict.code, s->verdict.status, to, s->verdict.why);
            return;
        }
    }
    size_t before = s->nrcpt;
    for (size_t i = 0; i < rw->n; i++) {
        struct addr_params p = *params;
        route_recipient(&s->route, rewrite_target(rw, i), 1, &s->verdict);
        rewrite_orcpt(path, &p);   /* past 500 characters of xtext: none, as RFC 3461 allows */
        if (rcpt_add(s, &s->verdict.addr, &p) != 0) {
            s->nrcpt = before;
            reply(s, "452 4.3.1 Error: insufficient system resources");
            return;
        }
    }
    s->state = ST_RCPT;
    if (addr_format_path(path, buf, sizeof buf) < 0)
        snprintf(buf, sizeof buf, "(unprintable)");
    if (rw->n == 1 && addr_format_path(&s->rcpt[before].path, to, sizeof to) > 0 &&
        strlen(buf) + strlen(to) <= SMTPD_REWRITTEN_TEXT_MAX)
        reply(s, "250 2.1.5 Recipient %s ok, rewritten to %s", buf, to);
    else
        reply(s, "250 2.1.5 Recipient %s ok, rewritten to %zu addresses (map line %u)", buf,
              rw->n, rw->line);
}

static void proceed_rcpt(struct smtpd *s, const char *args, size_t alen)
{
    struct addr_path path;
    struct addr_params params;
    char buf[ADDR_PATH_MAX + 8];
    if (parse_path_arg(s, args, alen, "TO:", ADDR_RCPT, &path, &params) != 0)
        return;
    /* The queue routes by the same verdict (core/route.h): what it could not
     * route is refused here, while the client can still be told, and never
     * accepted to be bounced later to a sender that may be forged. */
    if (route_recipient(&s->route, &path, MAY_RELAY(s), &s->verdict) != 0) {
        reply(s, "%d %s Error: %s", s->verdict.code, s->verdict.status, s->verdict.why);
        return;
    }
    /* What the address map makes of it (core/rewrite.h): refused here when
     * its embedded address breaks a rule or nothing receives it, never
     * accepted to be bounced later for a reason known now. */
    if (rewrite_recipient(&s->rewrite, &s->verdict.addr, &s->rewritten) != 0) {
        reply(s, "%d %s Error: %s", s->rewritten.code, s->rewritten.status, s->rewritten.why);
        return;
    }
    if (s->rewritten.result == REWRITE_CHANGED) {
        rcpt_rewritten(s, &path, &params);
        return;
    }
    if (rcpt_add(s, &s->verdict.addr, &params) != 0) {
        reply(s, "452 4.3.1 Error: insufficient system resources");
        return;
    }
    s->state = ST_RCPT;
    if (addr_format_path(&s->verdict.addr, buf, sizeof buf) < 0)
        reply(s, "250 2.1.5 Ok");
    else
        reply(s, "250 2.1.5 Recipient %s ok", buf);
}

static int check_data(struct smtpd *s, const char *args, size_t alen)
{
    (void)args;
    if (s->state == ST_INIT || s->state == ST_HELO) {
        reply(s, "503 5.5.1 Error: need MAIL command");
        return -1;
    }
    if (s->state != ST_RCPT) {
        reply(s, "503 5.5.1 Error: need RCPT command");
        return -1;
    }
    return check_no_args(s, "DATA", alen);
}

static void proceed_data(struct smtpd *s, const char *args, size_t alen)
{
    (void)args;
    (void)alen;
    reply(s, "354 End data with <CR><LF>.<CR><LF>");
    s->messages++;
    s->state = ST_DATA;
    s->dpos = D_BOL;
    s->dline = 0;
    s->dsize = 0;
    s->dbad = SMTPD_REJECT_NONE;
    s->dheader = 1;
    s->dhops = 0;
    s->chunk_len = 0;
    event(s, SMTPD_EV_DATA_BEGIN);
}

static int check_rset(struct smtpd *s, const char *args, size_t alen)
{
    (void)args;
    return check_no_args(s, "RSET", alen);
}

static void proceed_rset(struct smtpd *s, const char *args, size_t alen)
{
    (void)args;
    (void)alen;
    transaction_reset(s);
    if (s->state != ST_INIT)
        s->state = ST_HELO;
    reply(s, "250 2.0.0 Ok");
}

static int check_any(struct smtpd *s, const char *args, size_t alen)
{
    (void)s;
    (void)args;
    (void)alen;
    return 0;
}

static void proceed_noop(struct smtpd *s, const char *args, size_t alen)
{
    (void)args;
    (void)alen;
    reply(s, "250 2.0.0 Ok");
}

static int check_quit(struct smtpd *s, const char *args, size_t alen)
{
    (void)args;
    return check_no_args(s, "QUIT", alen);
}

static void proceed_quit(struct smtpd *s, const char *args, size_t alen)
{
    (void)args;
    (void)alen;
    reply(s, "221 2.0.0 %s closing connection", s->host);
    s->state = ST_CLOSED;
}

static int check_vrfy(struct smtpd *s, const char *args, size_t alen)
{
    (void)args;
    if (alen == 0) {
        reply(s, "501 5.5.4 Syntax: VRFY address");
        return -1;
    }
    return 0;
}

static void proceed_vrfy(struct smtpd *s, const char *args, size_t alen)
{
    (void)args;
    (void)alen;
    reply(s, "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery");
}

static void proceed_help(struct smtpd *s, const char *args, size_t alen)
{
    (void)args;
    (void)alen;
    reply(s, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP%s%s%s",
          ADVERTISE_STARTTLS(s) ? " STARTTLS" : "", OFFER_AUTH_VERB(s) ? " AUTH" : "",
          OFFER_XAUTH_VERB(s) ? " XAUTH" : "");
}

static int check_starttls(struct smtpd *s, const char *args, size_t alen)
{
    (void)args;
    if (!(s->cfg->options & SMTPD_OPT_STARTTLS)) {
        reply(s, "502 5.5.1 Error: STARTTLS is not offered");
        return -1;
    }
    if (s->flags & SF_SECURE) {
        reply(s, "503 5.5.1 Error: TLS is already active");
        return -1;
    }
    return check_no_args(s, "STARTTLS", alen);
}

static void proceed_starttls(struct smtpd *s, const char *args, size_t alen)
{
    (void)args;
    (void)alen;
    reply(s, "220 2.0.0 Ready to start TLS");
    /* Plaintext that followed STARTTLS is the attacker's, not the client's
     * TLS session: drop it (CVE-2011-0411 class). */
    s->in_off = s->in_len = 0;
    line_reset(s);
    s->state = ST_TLS_WAIT;
    event(s, SMTPD_EV_STARTTLS);
}

/* AUTH and XAUTH ------------------------------------------------------------- */

static void auth_abort(struct smtpd *s)
{
    int had_context = s->mech == MECH_NTLM && !s->auth_first;
    auth_clear(s);
    s->state = ST_HELO;
    if (had_context)
        event(s, SMTPD_EV_AUTH_ABORT);
}

static void auth_password_event(struct smtpd *s, const char *mech, const char *authzid,
                                const char *user, const char *password)
{
    s->state = ST_AUTH_WAIT;
    event(s, SMTPD_EV_AUTH_PASSWORD);
    s->ev.mechanism = mech;
    s->ev.authzid = authzid;
    s->ev.user = user;
    s->ev.password = password;
    s->ev.xauth = s->auth_xauth;
}

/* PLAIN: authzid NUL authcid NUL passwd, in s->secret (len octets). */
static void auth_plain(struct smtpd *s, size_t len)
{
    char *a = s->secret;
    char *u = memchr(a, '\0', len);
    char *p = u ? memchr(u + 1, '\0', len - (size_t)(u + 1 - a)) : NULL;
    if (!u || !p || u + 1 == p || memchr(p + 1, '\0', len - (size_t)(p + 1 - a)) ||
        (size_t)(p - (u + 1)) > SMTPD_USER_MAX) {
        reply(s, "501 5.5.2 Error: malformed AUTH PLAIN response");
        auth_abort(s);
        return;
    }
    s->secret[len] = '\0';
    auth_password_event(s, "PLAIN", a, u + 1, p + 1);
}

/* One decoded client response (or initial response) in s->token. */
static void auth_step(struct smtpd *s)
{
    switch (s->mech) {
    case MECH_NTLM:
        s->state = ST_AUTH_WAIT;
        event(s, SMTPD_EV_AUTH_NTLM);
        s->ev.data = s->token;
        s->ev.len = s->token_len;
        s->ev.first = s->auth_first;
        s->ev.xauth = s->auth_xauth;
        s->auth_first = 0;
        return;
    case MECH_PLAIN:
        memcpy(s->secret, s->token, s->token_len);
        s->secret_used = s->token_len + 1;
        auth_plain(s, s->token_len);
        return;
    case MECH_LOGIN:
        if (memchr(s->token, '\0', s->token_len) ||
            s->token_len > (s->step == STEP_USER ? SMTPD_USER_MAX : SMTPD_TOKEN_IN_MAX)) {
            reply(s, "501 5.5.2 Error: malformed AUTH LOGIN response");
            auth_abort(s);
            return;
        }
        if (s->step == STEP_USER) {
            memcpy(s->login_user, s->token, s->token_len);
            s->login_user[s->token_len] = '\0';
            s->login_used = s->token_len + 1;
            s->step = STEP_PASS;
            s->state = ST_AUTH_INPUT;
            reply(s, "334 UGFzc3dvcmQ6");   /* "Password:" */
            return;
        }
        memcpy(s->secret, s->token, s->token_len);
        s->secret[s->token_len] = '\0';
        s->secret_used = s->token_len + 1;
        auth_password_event(s, "LOGIN", "", s->login_user, s->secret);
        return;
    case MECH_NONE:
        break;
    }
    auth_abort(s);
}

static int auth_decode(struct smtpd *s, const char *b64, size_t n)
{
    long r = (n == 1 && b64[0] == '=') ? 0 : base64_decode(b64, n, s->token, sizeof s->token);
    if (r < 0) {
        reply(s, "501 5.5.2 Error: invalid base64 data");
        auth_abort(s);
        return -1;
    }
    s->token_len = (size_t)r;
    return 0;
}

static int check_auth_common(struct smtpd *s, const char *args, size_t alen)
{
    if (s->flags & SF_AUTHENTICATED) {
        reply(s, "503 5.5.1 Error: already authenticated");
        return -1;
    }
    if (s->state == ST_INIT || !(s->flags & SF_EHLO)) {
        reply(s, "503 5.5.1 Error: send EHLO first");
        return -1;
    }
    if (s->state != ST_HELO) {
        reply(s, "503 5.5.1 Error: AUTH not allowed during a mail transaction");
        return -1;
    }
    if (alen == 0) {
        reply(s, "501 5.5.4 Syntax: AUTH mechanism [initial-response]");
        return -1;
    }
    (void)args;
    return 0;
}

/* The mechanism word and the optional initial response. */
static enum auth_mech auth_parse(const char *args, size_t alen, const char **ir, size_t *irlen)
{
    const char *sp = memchr(args, ' ', alen);
    size_t mlen = sp ? (size_t)(sp - args) : alen;
    *ir = sp ? sp + 1 : NULL;
    *irlen = sp ? alen - mlen - 1 : 0;
    if (word_ieq(args, mlen, "NTLM"))
        return MECH_NTLM;
    if (word_ieq(args, mlen, "LOGIN"))
        return MECH_LOGIN;
    if (word_ieq(args, mlen, "PLAIN"))
        return MECH_PLAIN;
    return MECH_NONE;
}

static int check_auth(struct smtpd *s, const char *args, size_t alen)
{
    const char *ir;
    size_t irlen;
    if (!OFFER_AUTH_VERB(s)) {
        reply(s, "502 5.5.1 Error: AUTH is not offered");
        return -1;
    }
    if (check_auth_common(s, args, alen) != 0)
        return -1;
    enum auth_mech m = auth_parse(args, alen, &ir, &irlen);
    if (m == MECH_NONE) {
        reply(s, "504 5.5.4 Error: unrecognized authentication type");
        return -1;
    }
    if (m != MECH_NTLM && !(s->flags & SF_SECURE)) {
        reply(s, "538 5.7.11 Error: encryption required for requested authentication mechanism");
        return -1;
    }
    if (!AUTH_ALLOWED_NOW(s)) {
        reply(s, "530 5.7.0 Must issue a STARTTLS command first");
        return -1;
    }
    return 0;
}

static void auth_start(struct smtpd *s, const char *args, size_t alen, int xauth)
{
    const char *ir;
    size_t irlen;
    s->mech = auth_parse(args, alen, &ir, &irlen);
    s->auth_xauth = xauth;
    s->auth_first = 1;
    s->step = s->mech == MECH_LOGIN ? STEP_USER : STEP_TOKEN;
    s->state = ST_AUTH_INPUT;
    if (ir) {
        if (auth_decode(s, ir, irlen) == 0)
            auth_step(s);
        return;
    }
    switch (s->mech) {
    case MECH_NTLM:  reply(s, "334 ntlm supported"); break;     /* [MS-SMTPNTLM] 3.1.5.1 */
    case MECH_LOGIN: reply(s, "334 VXNlcm5hbWU6"); break;       /* "Username:" */
    default:         reply(s, "334 "); break;                   /* PLAIN: empty challenge */
    }
}

static void proceed_auth(struct smtpd *s, const char *args, size_t alen)
{
    auth_start(s, args, alen, 0);
}

static int check_xauth(struct smtpd *s, const char *args, size_t alen)
{
    const char *ir;
    size_t irlen;
    if (!OFFER_XAUTH_VERB(s)) {
        reply(s, "502 5.5.1 Error: XAUTH is not offered");
        return -1;
    }
    if (check_auth_common(s, args, alen) != 0)
        return -1;
    if (auth_parse(args, alen, &ir, &irlen) != MECH_NTLM) {
        reply(s, "504 5.5.4 Error: unrecognized authentication type");
        return -1;
    }
    if (!AUTH_ALLOWED_NOW(s)) {
        reply(s, "530 5.7.0 Must issue a STARTTLS command first");
        return -1;
    }
    return 0;
}

static void proceed_xauth(struct smtpd *s, const char *args, size_t alen)
{
    auth_start(s, args, alen, 1);
}

/* A client line while an AUTH exchange waits for it. */
static void auth_input(struct smtpd *s, const char *l, size_t n, unsigned bad)
{
    if (bad) {
        reply(s, "501 5.5.2 Error: malformed authentication response");
        auth_abort(s);
        return;
    }
    if (n == 1 && l[0] == '*') {
        reply(s, "501 5.7.0 Authentication cancelled");
        auth_abort(s);
        return;
    }
    if (auth_decode(s, l, n) == 0)
        auth_step(s);
}

static const struct smtpd_cmd smtpd_cmds[] = {
    { "EHLO",     CMD_BELOW_POLICY_OK, check_helo,     proceed_ehlo },
    { "HELO",     CMD_BELOW_POLICY_OK, check_helo,     proceed_helo },
    { "STARTTLS", 0,                   check_starttls, proceed_starttls },
    { "AUTH",     0,                   check_auth,     proceed_auth },
    { "XAUTH",    0,                   check_xauth,    proceed_xauth },
    { "MAIL",     0,                   check_mail,     proceed_mail },
    { "RCPT",     0,                   check_rcpt,     proceed_rcpt },
    { "DATA",     0,                   check_data,     proceed_data },
    { "RSET",     CMD_BELOW_POLICY_OK, check_rset,     proceed_rset },
    { "NOOP",     CMD_BELOW_POLICY_OK, check_any,      proceed_noop },
    { "QUIT",     CMD_BELOW_POLICY_OK, check_quit,     proceed_quit },
    { "VRFY",     0,                   check_vrfy,     proceed_vrfy },
    { "HELP",     CMD_BELOW_POLICY_OK, check_any,      proceed_help },
};

static int is_auth_line(const struct smtpd *s)
{
    return s->state == ST_AUTH_INPUT || prefix_ieq(s->line, s->line_len, "AUTH ") ||
           prefix_ieq(s->line, s->line_len, "XAUTH ");
}

static void command(struct smtpd *s, const char *l, size_t n)
{
    const char *sp = memchr(l, ' ', n);
    size_t vlen = sp ? (size_t)(sp - l) : n;
    const char *args = sp ? sp + 1 : l + n;
    size_t alen = sp ? n - vlen - 1 : 0;
    for (size_t i = 0; i < sizeof smtpd_cmds / sizeof smtpd_cmds[0]; i++) {
        const struct smtpd_cmd *c = &smtpd_cmds[i];
        if (!word_ieq(l, vlen, c->verb))
            continue;
        if ((s->flags & SF_TLS_BELOW_POLICY) && !(c->attrs & CMD_BELOW_POLICY_OK)) {
            reply(s, "454 4.7.0 Error: TLS protection below policy; use QUIT");
            return;
        }
        if (c->check(s, args, alen) == 0)
            c->proceed(s, args, alen);
        return;
    }
    reply(s, "500 5.5.1 Error: command not recognized");
}

/* The next complete line from the input into s->line; 0 if none yet. A line
 * ends at LF only; the CR before it is dropped, any other CR is bare. */
static int line_take(struct smtpd *s)
{
    while (s->in_off < s->in_len) {
        unsigned char c = s->in[s->in_off++];
        if (c == '\n') {
            if (!s->line_cr)
                s->line_bad |= LB_BARE;
            s->line_cr = 0;
            s->line[s->line_len] = '\0';
            return 1;
        }
        if (s->line_cr) {
            s->line_bad |= LB_BARE;
            s->line_cr = 0;
        }
        if (c == '\r') {
            s->line_cr = 1;
            continue;
        }
        if (c == '\0')
            s->line_bad |= LB_NUL;
        if (s->line_len < SMTPD_AUTH_LINE_MAX)
            s->line[s->line_len++] = (char)c;
        else
            s->line_bad |= LB_LONG;
    }
    return 0;
}

static void line_dispatch(struct smtpd *s)
{
    unsigned bad = s->line_bad;
    size_t limit = is_auth_line(s) ? SMTPD_AUTH_LINE_MAX : SMTPD_CMD_LINE_MAX;
    if (s->line_len + 2 > limit)
        bad |= LB_LONG;
    size_t n = s->line_len;
    line_reset(s);
    if (s->transcript)
        s->transcript(s->transcript_arg, s->state == ST_AUTH_INPUT ? SMTPD_RECEIVED_SECRET
                      : SMTPD_RECEIVED, s->state == ST_AUTH_INPUT ? NULL : s->line, n);
    if (s->state == ST_AUTH_INPUT)
        auth_input(s, s->line, n, bad);
    else if (bad & LB_BARE)
        reply(s, "500 5.5.2 Error: bare CR or LF not allowed in commands");
    else if (bad & LB_NUL)
        reply(s, "500 5.5.2 Error: NUL not allowed in commands");
    else if (bad & LB_LONG)
        reply(s, "500 5.5.2 Error: line too long");
    else
        command(s, s->line, n);
    if (s->errors >= s->max_errors && s->state != ST_CLOSED) {
        if (s->state == ST_AUTH_INPUT || s->state == ST_AUTH_WAIT)
            auth_abort(s);
        close_421(s, "4.7.0", "Error: too many errors");
    }
}

/* DATA ----------------------------------------------------------------------- */

static void data_bad(struct smtpd *s, enum smtpd_reject why)
{
    if (s->dbad == SMTPD_REJECT_NONE)
        s->dbad = why;
}

static void data_put(struct smtpd *s, const char *p, size_t n)
{
    if (s->dbad != SMTPD_REJECT_NONE)
        return;
    s->dsize += n;
    if (s->dsize > s->max_size) {
        data_bad(s, SMTPD_REJECT_SIZE);
        return;
    }
    memcpy(s->chunk + s->chunk_len, p, n);
    s->chunk_len += n;
}

/* One text octet inside a line. */
static void data_text(struct smtpd *s, unsigned char c)
{
    if (c == '\r') {
        s->dpos = D_CR;
        return;
    }
    s->dpos = D_TEXT;
    if (c == '\n') {
        data_bad(s, SMTPD_REJECT_BARE_EOL);
        return;
    }
    if (c == '\0')
        data_bad(s, SMTPD_REJECT_NUL);
    if (s->dheader && s->dline < sizeof s->dfield)
        s->dfield[s->dline] = (char)c;
    if (++s->dline > SMTPD_TEXT_LINE_MAX - 2)
        data_bad(s, SMTPD_REJECT_LINE);
    char ch = (char)c;
    data_put(s, &ch, 1);
}

/* A header line ended: count the Received fields (a hop each); the first
 * empty line ends the header section. */
static void data_line_end(struct smtpd *s)
{
    if (!s->dheader)
        return;
    if (s->dline == 0) {
        s->dheader = 0;
        return;
    }
    if (s->dline >= sizeof s->dfield && prefix_ieq(s->dfield, sizeof s->dfield, "Received:") &&
        ++s->dhops > s->max_hops)
        data_bad(s, SMTPD_REJECT_HOPS);
}

static void data_end(struct smtpd *s)
{
    switch (s->dbad) {
    case SMTPD_REJECT_NONE:
        /* ST_MSG_WAIT begins when SMTPD_EV_MESSAGE is handed out, so an
         * answer cannot come before the event it answers. */
        event(s, SMTPD_EV_DATA_CHUNK);
        s->ev.data = s->chunk;
        s->ev.len = s->chunk_len;
        s->ev.final = 1;
        s->chunk_given = 1;
        s->pending = SMTPD_EV_MESSAGE;
        return;
    case SMTPD_REJECT_SIZE:
        reply(s, "552 5.3.4 Error: message size exceeds fixed maximum message size");
        break;
    case SMTPD_REJECT_BARE_EOL:
        reply(s, "554 5.6.0 Error: bare CR or LF in message content not allowed");
        break;
    case SMTPD_REJECT_NUL:
        reply(s, "554 5.6.0 Error: NUL in message content not allowed");
        break;
    case SMTPD_REJECT_LINE:
        reply(s, "554 5.6.0 Error: message line longer than 1000 octets");
        break;
    case SMTPD_REJECT_HOPS:
        reply(s, "554 5.4.6 Error: too many hops (more than %u Received header fields): a "
              "mail loop", s->max_hops);
        break;
    }
    enum smtpd_reject why = s->dbad;
    transaction_reset(s);
    s->state = ST_HELO;
    s->chunk_len = 0;
    event(s, SMTPD_EV_MESSAGE_REJECTED);
    s->ev.reject = why;
}

/* Run the DATA reader over buffered input until the chunk fills, the message
 * ends, or the input runs out. */
static enum smtpd_event_type data_run(struct smtpd *s)
{
    while (s->in_off < s->in_len) {
        if (s->chunk_len + 2 > SMTPD_CHUNK_MAX || s->pending != SMTPD_EV_NONE)
            break;
        unsigned char c = s->in[s->in_off++];
        switch (s->dpos) {
        case D_BOL:
            s->dline = 0;
            if (c == '.') {
                s->dpos = D_DOT;
                s->dline = 1;
            } else {
                data_text(s, c);
            }
            break;
        case D_DOT:
            if (c == '\r')
                s->dpos = D_DOT_CR;
            else
                data_text(s, c);        /* the leading dot was stuffing: dropped */
            break;
        case D_DOT_CR:
            if (c == '\n') {
                data_end(s);
                return s->ev.type;
            }
            data_bad(s, SMTPD_REJECT_BARE_EOL);
            data_text(s, c);
            break;
        case D_CR:
            if (c == '\n') {
                data_put(s, "\r\n", 2);
                s->dpos = D_BOL;
                data_line_end(s);
                break;
            }
            data_bad(s, SMTPD_REJECT_BARE_EOL);
            data_text(s, c);
            break;
        case D_TEXT:
            data_text(s, c);
            break;
        }
    }
    if (s->chunk_len == 0)
        return SMTPD_EV_NONE;
    event(s, SMTPD_EV_DATA_CHUNK);
    s->ev.data = s->chunk;
    s->ev.len = s->chunk_len;
    s->chunk_given = 1;
    return SMTPD_EV_DATA_CHUNK;
}

/* Public ---------------------------------------------------------------------- */

struct smtpd *smtpd_new(const struct smtpd_config *cfg, const char *client_addr,
                        int relay_allowed)
{
    if (!cfg || !cfg->hostname || !cfg->hostname[0])
        return NULL;
    /* Only the state is zeroed: the buffers at the end stay untouched
     * until a session uses them. */
    struct smtpd *s = malloc(sizeof *s);
    if (!s)
        return NULL;
    memset(s, 0, offsetof(struct smtpd, in));
    s->cfg = cfg;
    s->relay_allowed = relay_allowed != 0;
    /* Only local_domains decide what is accepted: the smart host and the
     * outbound port change where accepted mail goes, not whether (and the
     * configuration never holds invalid ones: the service keeps defaults). */
    s->route.local = cfg->local_domains;
    s->rewrite.local = cfg->local_domains;
    s->route.smarthost_default_port = 25;
    s->route.outbound_port = 25;
    s->max_size = cfg->max_size ? cfg->max_size : SMTPD_DEFAULT_MAX_SIZE;
    s->max_rcpt = cfg->max_recipients ? cfg->max_recipients : SMTPD_DEFAULT_MAX_RCPT;
    s->max_errors = cfg->max_errors ? cfg->max_errors : SMTPD_ERRORS_MAX;
    if (s->max_rcpt > SMTPD_MAX_RCPT_LIMIT)
        s->max_rcpt = SMTPD_MAX_RCPT_LIMIT;
    s->max_hops = cfg->max_hops ? cfg->max_hops : SMTPD_MAX_HOPS;
    s->max_messages = cfg->max_messages;
    copy_printable(s->host, sizeof s->host, cfg->hostname);
    /* The client address goes into the Received header: only what an IP
     * address can contain. */
    size_t i = 0;
    for (; client_addr && client_addr[i] && i < SMTPD_CLIENT_MAX; i++) {
        char c = client_addr[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
              c == '.' || c == ':'))
            break;
        s->client[i] = c;
    }
    if (i == 0 || (client_addr && client_addr[i]))
        strcpy(s->client, "unknown");
    else
        s->client[i] = '\0';
    if (cfg->options & SMTPD_OPT_TLS_ON_CONNECT) {
        /* RFC 8314 3.3: TLS first; nothing in clear, not even the greeting */
        s->state = ST_TLS_WAIT;
        s->tls_on_connect = 1;
        return s;
    }
    s->state = ST_INIT;
    reply(s, "220 %s ESMTP imsvc ready", s->host);
    return s;
}

void smtpd_set_address_map(struct smtpd *s, const struct addrmap *map, int map_wanted)
{
    s->rewrite.map = map;
    s->rewrite.map_wanted = map_wanted != 0;
}

int smtpd_set_client_name(struct smtpd *s, const char *name)
{
    size_t n = name ? strlen(name) : 0;
    s->client_name[0] = '\0';
    if (n == 0 || n > SMTPD_HOST_MAX || !helo_valid(name, n) || name[0] == '[')
        return -1;
    memcpy(s->client_name, name, n + 1);
    return 0;
}

void smtpd_free(struct smtpd *s)
{
    if (!s)
        return;
    auth_clear(s);
    free(s->rcpt);
    free(s);
}

size_t smtpd_feed(struct smtpd *s, const void *data, size_t len)
{
    if (s->state == ST_CLOSED || s->state == ST_TLS_WAIT)
        return len;
    return inbuf_take(s->in, SMTPD_INBUF_MAX, &s->in_off, &s->in_len, data, len);
}

enum smtpd_event_type smtpd_next(struct smtpd *s, struct smtpd_event *ev)
{
    if (s->chunk_given) {
        s->chunk_len = 0;
        s->chunk_given = 0;
    }
    event(s, SMTPD_EV_NONE);
    if (s->pending == SMTPD_EV_MESSAGE && s->state == ST_DATA) {
        event(s, SMTPD_EV_MESSAGE);
        s->state = ST_MSG_WAIT;
    }
    s->pending = SMTPD_EV_NONE;
    if (s->tls_on_connect == 1 && s->state == ST_TLS_WAIT) {
        s->tls_on_connect = 2;
        event(s, SMTPD_EV_STARTTLS);
        *ev = s->ev;
        return ev->type;
    }
    while (s->ev.type == SMTPD_EV_NONE) {
        if (s->state == ST_CLOSED) {
            event(s, SMTPD_EV_CLOSE);
            break;
        }
        if (s->state == ST_TLS_WAIT || s->state == ST_AUTH_WAIT || s->state == ST_MSG_WAIT)
            break;
        if (out_free(s) + s->out_off < SMTPD_REPLY_RESERVE)
            break;
        if (s->state == ST_DATA) {
            data_run(s);
            break;
        }
        if (!line_take(s))
            break;
        line_dispatch(s);
    }
    *ev = s->ev;
    return ev->type;
}

const unsigned char *smtpd_output(const struct smtpd *s, size_t *len)
{
    *len = s->out_len - s->out_off;
    return s->out + s->out_off;
}

void smtpd_output_consumed(struct smtpd *s, size_t n)
{
    if (n > s->out_len - s->out_off)
        n = s->out_len - s->out_off;
    s->out_off += n;
    if (s->out_off == s->out_len)
        s->out_off = s->out_len = 0;
}

/* The handshake is over: TLS is up. Returns -1 if none was awaited, else
 * 1 when it was the implicit TLS of the connection (no greeting sent yet). */
static int tls_up(struct smtpd *s, int policy_ok)
{
    if (s->state != ST_TLS_WAIT || s->tls_on_connect == 1)
        return -1;
    int on_connect = s->tls_on_connect != 0;
    s->tls_on_connect = 0;
    /* RFC 3207 4.2: forget everything learnt before TLS. */
    s->flags = SF_SECURE | (policy_ok ? 0 : SF_TLS_BELOW_POLICY);
    s->helo[0] = '\0';
    s->user[0] = '\0';
    transaction_reset(s);
    auth_clear(s);
    s->in_off = s->in_len = 0;
    line_reset(s);
    s->state = ST_INIT;
    return on_connect;
}

int smtpd_tls_started(struct smtpd *s, int policy_ok)
{
    int r = tls_up(s, policy_ok);
    if (r < 0)
        return -1;
    if (r == 1)
        reply(s, "220 %s ESMTP imsvc ready", s->host);
    return 0;
}

int smtpd_tls_refused(struct smtpd *s, const char *why)
{
    int r = tls_up(s, 0);
    if (r < 0)
        return -1;
    /* The refused stream passes nothing the client says: answer now, once,
     * inside the secure channel, and end the session. On a connection that
     * began with TLS this is instead of the greeting. */
    char text[SMTPD_REASON_MAX + 1];
    copy_printable(text, sizeof text, why ? why : "");
    if (r == 1)
        reply(s, "421 4.7.0 %s TLS session refused by policy%s%s", s->host, text[0] ? ": " : "",
              text);
    else if (text[0])
        reply(s, "454 4.7.0 TLS session refused by policy: %s", text);
    else
        reply(s, "454 4.7.0 TLS session refused by policy");
    s->state = ST_CLOSED;
    return 0;
}

int smtpd_auth_continue(struct smtpd *s, const void *token, size_t len)
{
    char line[4 + (SMTPD_TOKEN_OUT_MAX + 2) / 3 * 4 + 1];
    if (s->state != ST_AUTH_WAIT || s->mech != MECH_NTLM || len > SMTPD_TOKEN_OUT_MAX ||
        (len > 0 && !token))
        return -1;
    memcpy(line, "334 ", 4);
    long r = base64_encode(token, len, line + 4, sizeof line - 4);
    if (r < 0)
        return -1;
    out_line(s, line, 4 + (size_t)r);
    if (s->state == ST_CLOSED)
        return 0;
    s->state = ST_AUTH_INPUT;
    return 0;
}

int smtpd_auth_success(struct smtpd *s, const char *user)
{
    if (s->state != ST_AUTH_WAIT)
        return -1;
    auth_clear(s);
    s->flags |= SF_AUTHENTICATED;
    copy_printable(s->user, sizeof s->user, user ? user : "");
    s->state = ST_HELO;
    reply(s, "235 2.7.0 Authentication successful");
    return 0;
}

int smtpd_auth_fail(struct smtpd *s)
{
    if (s->state != ST_AUTH_WAIT)
        return -1;
    auth_clear(s);
    s->auth_failures++;
    s->state = ST_HELO;
    reply(s, "535 5.7.3 Authentication unsuccessful");
    if (s->auth_failures >= SMTPD_AUTH_FAIL_MAX)
        close_421(s, "4.7.0", "Error: too many failed authentication attempts");
    return 0;
}

int smtpd_auth_tempfail(struct smtpd *s)
{
    if (s->state != ST_AUTH_WAIT)
        return -1;
    auth_clear(s);
    s->state = ST_HELO;
    reply(s, "454 4.7.0 Temporary authentication failure");
    /* A client can make SSPI fail at will (a garbage token): each failure
     * counts toward the session's error limit like a 5xx reply. */
    s->errors++;
    if (s->errors >= s->max_errors)
        close_421(s, "4.7.0", "Error: too many errors");
    return 0;
}

int smtpd_message_stored(struct smtpd *s, const char *queue_id)
{
    char id[SMTPD_QUEUE_ID_MAX + 1];
    size_t i = 0;
    if (s->state != ST_MSG_WAIT)
        return -1;
    for (; queue_id && queue_id[i] && i < SMTPD_QUEUE_ID_MAX; i++) {
        char c = queue_id[i];
        int ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 c == '.' || c == '-' || c == '_';
        id[i] = ok ? c : '_';
    }
    id[i] = '\0';
    transaction_reset(s);
    s->state = ST_HELO;
    reply(s, "250 2.0.0 Ok: queued as %s", i ? id : "(unnamed)");
    return 0;
}

int smtpd_message_failed(struct smtpd *s, int permanent, const char *text)
{
    char why[SMTPD_REASON_MAX + 1];
    if (s->state != ST_MSG_WAIT)
        return -1;
    copy_printable(why, sizeof why, text && text[0] ? text : "message could not be stored");
    transaction_reset(s);
    s->state = ST_HELO;
    if (permanent)
        reply(s, "554 5.3.0 Error: %s", why);
    else
        reply(s, "451 4.3.0 Error: %s", why);
    return 0;
}

int smtpd_message_refused(struct smtpd *s, int code, const char *status, const char *text)
{
    char why[SMTPD_REASON_MAX + 1];
    if (s->state != ST_MSG_WAIT || code < 400 || code > 599 || !status ||
        status[0] != (char)('0' + code / 100) || status[1] != '.' ||
        strspn(status, "0123456789.") != strlen(status) || strlen(status) > 11)
        return -1;
    copy_printable(why, sizeof why, text && text[0] ? text : "message refused");
    transaction_reset(s);
    s->state = ST_HELO;
    reply(s, "%d %s %s", code, status, why);
    return 0;
}

enum smtpd_timeout_kind smtpd_timeout_kind(const struct smtpd *s)
{
    switch (s->state) {
    case ST_DATA:      return SMTPD_TO_DATA_BLOCK;
    case ST_MSG_WAIT:  return SMTPD_TO_DATA_TERM;
    case ST_AUTH_WAIT:
    case ST_CLOSED:    return SMTPD_TO_NONE;
    default:           return SMTPD_TO_COMMAND;
    }
}

unsigned smtpd_timeout_secs(const struct smtpd *s)
{
    switch (smtpd_timeout_kind(s)) {
    case SMTPD_TO_COMMAND:    return SMTPD_TIMEOUT_COMMAND;
    case SMTPD_TO_DATA_BLOCK: return SMTPD_TIMEOUT_DATA_BLOCK;
    case SMTPD_TO_DATA_TERM:  return SMTPD_TIMEOUT_DATA_TERM;
    case SMTPD_TO_NONE:       break;
    }
    return 0;
}

void smtpd_timeout(struct smtpd *s)
{
    auth_clear(s);
    close_421(s, "4.4.2", "Error: timeout exceeded");
}

void smtpd_shutdown(struct smtpd *s)
{
    auth_clear(s);
    close_421(s, "4.3.2", "Service shutting down, closing connection");
}

unsigned smtpd_flags(const struct smtpd *s) { return s->flags; }
unsigned smtpd_auth_failures(const struct smtpd *s) { return s->auth_failures; }
unsigned smtpd_errors(const struct smtpd *s) { return s->errors; }
void smtpd_set_transcript(struct smtpd *s, smtpd_transcript_fn fn, void *arg)
{
    s->transcript = fn;
    s->transcript_arg = arg;
}

unsigned smtpd_messages(const struct smtpd *s) { return s->messages; }
const char *smtpd_helo(const struct smtpd *s) { return s->helo; }
const char *smtpd_user(const struct smtpd *s) { return s->user; }
int smtpd_closed(const struct smtpd *s) { return s->state == ST_CLOSED; }
const struct addr_path *smtpd_sender(const struct smtpd *s) { return &s->sender; }
const struct addr_params *smtpd_sender_params(const struct smtpd *s) { return &s->sender_params; }
size_t smtpd_rcpt_count(const struct smtpd *s) { return s->nrcpt; }

const struct addr_path *smtpd_rcpt(const struct smtpd *s, size_t i)
{
    return i < s->nrcpt ? &s->rcpt[i].path : NULL;
}

const struct addr_params *smtpd_rcpt_params(const struct smtpd *s, size_t i)
{
    return i < s->nrcpt ? &s->rcpt[i].params : NULL;
}

/* Append to buf at *o, checking for truncation. */
static int hdr_put(char *buf, size_t n, size_t *o, const char *fmt, ...)
{
    va_list ap;
    if (*o >= n)
        return -1;
    va_start(ap, fmt);
    int r = vsnprintf(buf + *o, n - *o, fmt, ap);
    va_end(ap);
    if (r < 0 || (size_t)r >= n - *o)
        return -1;
    *o += (size_t)r;
    return 0;
}

int smtpd_received(const struct smtpd *s, const char *queue_id, const char *date,
                   char *buf, size_t n)
{
    char id[SMTPD_QUEUE_ID_MAX + 1], when[SMTPD_REASON_MAX + 1];
    char user[2 * SMTPD_USER_MAX + 1], rcpt[ADDR_PATH_MAX + 8];
    size_t o = 0, u = 0;
    const char *proto;
    if (n == 0)
        return -1;
    buf[0] = '\0';
    copy_printable(id, sizeof id, queue_id ? queue_id : "");
    copy_printable(when, sizeof when, date ? date : "");
    /* The user name sits in a comment: '(', ')' and '\' are quoted-pairs
     * there (RFC 5322 3.2.2), so DOMAIN\user reads DOMAIN\\user. */
    for (const char *p = s->user; *p && u + 2 < sizeof user; p++) {
        if (*p == '(' || *p == ')' || *p == '\\')
            user[u++] = '\\';
        user[u++] = *p;
    }
    user[u] = '\0';
    if (!(s->flags & SF_EHLO))
        proto = "SMTP";
    else if (s->flags & SF_SECURE)
        proto = (s->flags & SF_AUTHENTICATED) ? "ESMTPSA" : "ESMTPS";
    else
        proto = (s->flags & SF_AUTHENTICATED) ? "ESMTPA" : "ESMTP";
    if (hdr_put(buf, n, &o, "Received: from %s (%s%s%s%s%s)\r\n", s->helo[0] ? s->helo : "unknown",
                s->client_name, s->client_name[0] ? " " : "",
                strchr(s->client, ':') ? "[IPv6:" : "[", s->client, "]") != 0)
        goto small;
    if ((s->flags & SF_AUTHENTICATED) &&
        hdr_put(buf, n, &o, "\t(authenticated as %s)\r\n", user) != 0)
        goto small;
    if (hdr_put(buf, n, &o, "\tby %s with %s id %s", s->host, proto, id[0] ? id : "unknown") != 0)
        goto small;
    if (s->nrcpt == 1 && addr_format_path(&s->rcpt[0].path, rcpt, sizeof rcpt) > 0) {
        if (hdr_put(buf, n, &o, "\r\n\tfor %s; %s\r\n", rcpt, when) != 0)
            goto small;
    } else if (hdr_put(buf, n, &o, ";\r\n\t%s\r\n", when) != 0) {
        goto small;
    }
    return (int)o;
small:
    buf[0] = '\0';
    return -1;
}
