/* smtpc.c - the SMTP client session engine (see smtpc.h, docs/smtp-client.md).
 *
 * Server bytes in; command bytes, events and results out. The session is an
 * explicit state plus SC_* flags; what the server offers is a set of
 * SC_EXT_* bits from its last EHLO, and the choices (STARTTLS, which AUTH
 * verb, SIZE=, BODY=, pipelining) are named predicates over them. A message
 * is a plan of commands (RSET, MAIL, RCPT..., DATA) sent all at once under
 * PIPELINING or one at a time without it, and answered in order.
 *
 * It must never: read a socket, a clock or a file; send a byte of an 8-bit
 * message to a server without 8BITMIME; send DATA when no recipient was
 * accepted (unless pipelined, where the server refuses it); put a bare CR or
 * LF on the wire; guess at a reply it cannot parse; send a password outside
 * TLS, or show one (SSPI makes the NTLM tokens; the AUTH PLAIN and LOGIN
 * lines reach the transcript as labels, and are wiped from its buffers).
 */
#include "smtpc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "base64.h"
#include "inbuf.h"

/* Limits ------------------------------------------------------------------- */
#define SMTPC_LINE_MAX       2048          /* a reply line, CRLF included (RFC: 512) */
#define SMTPC_REPLY_LINES    200           /* lines in one reply (EHLO is the long one) */
#define SMTPC_INBUF_MAX      (17 * 1024)   /* one whole TLS record always fits */
#define SMTPC_OUTBUF_MAX     (24 * 1024)
#define SMTPC_CMD_RESERVE    6144          /* free output needed to act on a reply:
                                              the longest single line (a token) fits */
#define SMTPC_CONTENT_SLACK  8             /* kept free for the end of the content */
#define SMTPC_PATH_BUF       800           /* a formatted path, quoting included */
#define SMTPC_CMD_BUF        (SMTPC_PATH_BUF + 80)
#define SMTPC_HELO_MAX       255
#define SMTPC_MECHS_MAX      200           /* "AUTH LOGIN PLAIN" as kept for messages */
#define SMTPC_AUTH_ROUNDS    4             /* 334 challenges in one exchange */
#define SMTPC_EVQ_MAX        4
#define SMTPC_TOKEN_B64_MAX  ((SMTPC_TOKEN_MAX + 2) / 3 * 4)

enum smtpc_state {
    ST_GREETING,     /* connected: waiting for 220 */
    ST_EHLO,         /* EHLO sent */
    ST_HELO,         /* HELO sent (EHLO got 5xx) */
    ST_STARTTLS,     /* STARTTLS sent */
    ST_TLS_WAIT,     /* 220 to STARTTLS: the caller runs the handshake */
    ST_AUTH_START,   /* AUTH NTLM / XAUTH NTLM / AUTH LOGIN sent: waiting for the first 334 */
    ST_AUTH_TOKEN,   /* waiting for the caller's NTLM token */
    ST_AUTH_REPLY,   /* token (or AUTH PLAIN with its response) sent: waiting for 334,
                        235 or a refusal */
    ST_READY,        /* idle: waiting for the caller's message or QUIT */
    ST_TRANSACTION,  /* RSET/MAIL/RCPT/DATA of a message in flight */
    ST_CONTENT,      /* 354 came: the caller streams the content */
    ST_FINAL,        /* "." sent: waiting for the final reply */
    ST_QUIT,         /* QUIT sent: waiting for 221 */
    ST_CLOSED
};

enum plan_kind { P_RSET, P_MAIL, P_RCPT, P_DATA };

/* The exchange in progress. */
enum auth_kind { A_NTLM, A_XAUTH, A_PLAIN, A_LOGIN };

struct plan_item {
    enum plan_kind kind;
    size_t rcpt;                        /* P_RCPT: index into rcpt[] */
};

struct rcpt {
    int valid;
    char path[SMTPC_PATH_BUF];
    struct smtpc_result res;
};

/* What the EHLO reply being read offers (committed when it ends in 250). */
struct offer {
    unsigned ext;
    unsigned long long size;
    char auth[SMTPC_MECHS_MAX + 1];     /* "AUTH LOGIN PLAIN" */
    char xauth[SMTPC_MECHS_MAX + 1];    /* "XAUTH NTLM" */
};

struct smtpc {
    const struct smtpc_config *cfg;
    enum smtpc_state state;
    unsigned flags;                     /* SC_* */
    int tls_declined;                   /* opportunistic STARTTLS refused: go on */
    struct offer offer, reading;

    /* input */
    unsigned char in[SMTPC_INBUF_MAX];
    size_t in_off, in_len;

    /* output */
    unsigned char out[SMTPC_OUTBUF_MAX];
    size_t out_off, out_len;

    /* the reply being read, and the last one complete */
    struct smtpc_reply cur;
    size_t cur_text_len;
    unsigned cur_lines;
    char cur_last[SMTPC_LINE_MAX];      /* text of the last line (334 challenges) */
    size_t cur_last_len;
    struct smtpc_reply last;

    /* events */
    enum smtpc_event_type evq[SMTPC_EVQ_MAX];
    unsigned evq_n;

    /* authentication */
    int auth_started;
    enum auth_kind auth_kind;
    int auth_xauth;                     /* auth_kind == A_XAUTH */
    unsigned auth_rounds;
    unsigned login_sent;                /* AUTH LOGIN: 1 user name sent, 2 password too */
    unsigned char chal[SMTPC_TOKEN_MAX];
    size_t chal_len;
    int chal_first;

    /* the message */
    int msg_active;                     /* begun, MESSAGE_DONE not yet queued */
    int have_msg;                       /* results can be read */
    int need_rset;                      /* a MAIL was sent on this connection */
    char from[SMTPC_PATH_BUF];
    unsigned long long msg_size;
    int msg_8bit;
    struct rcpt *rcpt;
    size_t n_rcpt;
    size_t n_accepted;
    int mail_ok, mail_failed, ignore_final;
    struct plan_item *plan;
    size_t n_plan, plan_sent, plan_done;
    struct smtpc_result msg_result;

    /* content */
    int c_bol, c_cr;

    struct smtpc_result failure;
};

/* What the server offers, and what we do with it. */
#define OFFERS(s, bit)        (((s)->offer.ext & (bit)) != 0)
#define USE_PIPELINING(s)     OFFERS(s, SC_EXT_PIPELINING)
#define WANT_STARTTLS(s)      ((s)->cfg->tls != SMTPC_TLS_OFF && !((s)->flags & SC_TLS) && \
                               !(s)->tls_declined)
#define WANT_AUTH(s)          ((s)->cfg->auth != SMTPC_AUTH_NONE && \
                               !((s)->flags & SC_AUTHENTICATED))
#define SEND_SIZE(s)          (OFFERS(s, SC_EXT_SIZE) && (s)->msg_size > 0)
#define SEND_8BITMIME(s)      ((s)->msg_8bit && OFFERS(s, SC_EXT_8BITMIME))
#define ENCRYPTED(s)          (((s)->flags & SC_TLS) != 0)
#define HAS_USER(s)           ((s)->cfg->user && (s)->cfg->user[0] && (s)->cfg->password)
/* Mechanisms this session may use: PLAIN and LOGIN only with a user. */
#define MECHS(s)              (((s)->cfg->mechs ? (s)->cfg->mechs : SMTPC_MECH_NTLM) & \
                               (HAS_USER(s) ? ~0u : SMTPC_MECH_NTLM))
#define ALLOWS(s, m)          ((MECHS(s) & (m)) != 0)

/* Small helpers ------------------------------------------------------------ */

/* snprintf into a fixed field; a sentence cut short ends in "...". */
static void textf(char *buf, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(buf, n, fmt, ap);
    va_end(ap);
    if (r < 0)
        buf[0] = '\0';
    else if ((size_t)r >= n && n > 4)
        memcpy(buf + n - 4, "...", 4);
}

static int ieq(const char *a, size_t n, const char *b)
{
    size_t m = strlen(b);
    if (n != m)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'a' && x <= 'z') x -= 32;
        if (y >= 'a' && y <= 'z') y -= 32;
        if (x != y)
            return 0;
    }
    return 1;
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

/* Memory that held a credential; volatile so the stores are not dropped. */
static void wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n--)
        *v++ = 0;
}

/* Base64, RFC 4648 ---------------------------------------------------------- */

/* Output --------------------------------------------------------------------- */

static size_t out_room(const struct smtpc *s)
{
    return SMTPC_OUTBUF_MAX - (s->out_len - s->out_off);
}

static void out_make_room(struct smtpc *s, size_t n)
{
    if (SMTPC_OUTBUF_MAX - s->out_len < n && s->out_off > 0) {
        memmove(s->out, s->out + s->out_off, s->out_len - s->out_off);
        s->out_len -= s->out_off;
        s->out_off = 0;
    }
}

static void out_bytes(struct smtpc *s, const void *p, size_t n)
{
    out_make_room(s, n);
    memcpy(s->out + s->out_len, p, n);
    s->out_len += n;
}

/* One command line. Returns -1 (nothing queued) when it does not fit. */
static int send_line(struct smtpc *s, enum smtpc_dir dir, const char *line, size_t n)
{
    if (out_room(s) < n + 2)
        return -1;
    out_bytes(s, line, n);
    out_bytes(s, "\r\n", 2);
    if (s->cfg->transcript)
        s->cfg->transcript(s->cfg->transcript_arg, dir, line, n);
    return 0;
}

static int send_cmd(struct smtpc *s, const char *line)
{
    return send_line(s, SMTPC_SENT, line, strlen(line));
}

/* Events --------------------------------------------------------------------- */

static void push_event(struct smtpc *s, enum smtpc_event_type t)
{
    if (s->evq_n < SMTPC_EVQ_MAX)
        s->evq[s->evq_n++] = t;
}

/* Results -------------------------------------------------------------------- */

static enum smtpc_outcome outcome_of_code(int code)
{
    if (code >= 200 && code < 400)
        return SMTPC_OK;
    return code >= 400 && code < 500 ? SMTPC_TRANSIENT : SMTPC_PERMANENT;
}

static void result_local(struct smtpc_result *r, enum smtpc_outcome o, enum smtpc_reason why,
                         const char *status, const char *fmt, ...)
{
    va_list ap;
    memset(r, 0, sizeof *r);
    r->outcome = o;
    r->reason = why;
    textf(r->status, sizeof r->status, "%c%s", o == SMTPC_TRANSIENT ? '4' : o == SMTPC_OK ? '2' : '5',
          status + 1);
    va_start(ap, fmt);
    int n = vsnprintf(r->why, sizeof r->why, fmt, ap);
    va_end(ap);
    if (n < 0)
        r->why[0] = '\0';
    else if ((size_t)n >= sizeof r->why)
        memcpy(r->why + sizeof r->why - 4, "...", 4);
}

/* A result decided by a server reply: its class, its status (or X.0.0), and
 * "<what>: <the reply>". */
static void result_reply(struct smtpc_result *r, const struct smtpc_reply *rep,
                         enum smtpc_reason why, const char *what)
{
    memset(r, 0, sizeof *r);
    r->outcome = outcome_of_code(rep->code);
    r->reason = why;
    r->reply = *rep;
    if (rep->status[0])
        textf(r->status, sizeof r->status, "%s", rep->status);
    else
        textf(r->status, sizeof r->status, "%d.0.0", rep->code / 100);
    textf(r->why, sizeof r->why, "%s: %s", what, rep->text);
}

static enum smtpc_outcome policy_class(enum smtpc_policy_class c, enum smtpc_outcome dflt)
{
    if (c == SMTPC_CLASS_TRANSIENT)
        return SMTPC_TRANSIENT;
    if (c == SMTPC_CLASS_PERMANENT)
        return SMTPC_PERMANENT;
    return dflt;
}

static void finish_message(struct smtpc *s);

/* QUIT answered, or the connection ended while waiting for it. */
static void end_normally(struct smtpc *s)
{
    result_local(&s->failure, SMTPC_OK, SMTPC_R_NONE, "2.0.0", "the session ended with QUIT");
    s->state = ST_CLOSED;
    s->in_off = s->in_len = 0;
}

/* The session is over: record why, give every undecided recipient the same
 * result, queue QUIT when the dialogue is still in step. */
static void fail(struct smtpc *s, const struct smtpc_result *r, int quit)
{
    if (s->state == ST_CLOSED)
        return;
    s->failure = *r;
    if (s->msg_active) {
        for (size_t i = 0; i < s->n_rcpt; i++)
            if (s->rcpt[i].res.outcome == SMTPC_PENDING)
                s->rcpt[i].res = *r;
        if (s->msg_result.outcome == SMTPC_PENDING)
            s->msg_result = *r;
        finish_message(s);
    }
    if (quit && out_room(s) >= 6)
        send_cmd(s, "QUIT");
    s->state = ST_CLOSED;
    s->in_off = s->in_len = 0;
}

static void fail_reply(struct smtpc *s, enum smtpc_reason why, const char *what, int quit)
{
    struct smtpc_result r;
    result_reply(&r, &s->last, why, what);
    fail(s, &r, quit);
}

static void fail_protocol(struct smtpc *s, const char *what)
{
    struct smtpc_result r;
    result_local(&r, SMTPC_TRANSIENT, SMTPC_R_PROTOCOL, "4.5.0",
                 "the server's reply makes no sense here (%s): %s", what, s->last.text);
    r.reply = s->last;
    fail(s, &r, 1);
}

/* What the session is waiting for, for timeout and connection-lost texts. */
static const char *waiting_for(const struct smtpc *s)
{
    switch (s->state) {
    case ST_GREETING:    return "the reply to the greeting";
    case ST_EHLO:        return "the reply to EHLO";
    case ST_HELO:        return "the reply to HELO";
    case ST_STARTTLS:    return "the reply to STARTTLS";
    case ST_TLS_WAIT:    return "the TLS handshake";
    case ST_AUTH_START:
    case ST_AUTH_REPLY:
        return s->auth_kind == A_XAUTH ? "the reply to XAUTH NTLM"
             : s->auth_kind == A_PLAIN ? "the reply to AUTH PLAIN"
             : s->auth_kind == A_LOGIN ? "the reply to AUTH LOGIN" : "the reply to AUTH NTLM";
    case ST_AUTH_TOKEN:  return "the NTLM token";
    case ST_READY:       return "the next message";
    case ST_TRANSACTION:
        if (s->plan_done < s->n_plan)
            switch (s->plan[s->plan_done].kind) {
            case P_RSET: return "the reply to RSET";
            case P_MAIL: return "the reply to MAIL FROM";
            case P_RCPT: return "the reply to RCPT TO";
            case P_DATA: return "the reply to DATA";
            }
        return "a reply";
    case ST_CONTENT:     return "sending the message content";
    case ST_FINAL:       return "the reply to the end of the message data";
    case ST_QUIT:        return "the reply to QUIT";
    case ST_CLOSED:      break;
    }
    return "nothing";
}

/* The session ------------------------------------------------------------------ */

struct smtpc *smtpc_new(const struct smtpc_config *cfg)
{
    if (!cfg || !cfg->helo_name)
        return NULL;
    size_t n = strlen(cfg->helo_name);
    if (n == 0 || n > SMTPC_HELO_MAX)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)cfg->helo_name[i] <= ' ' || (unsigned char)cfg->helo_name[i] > '~')
            return NULL;            /* it goes on the wire as is */
    struct smtpc *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->cfg = cfg;
    s->state = ST_GREETING;
    return s;
}

static void free_message(struct smtpc *s)
{
    free(s->rcpt);
    free(s->plan);
    s->rcpt = NULL;
    s->plan = NULL;
    s->n_rcpt = s->n_plan = 0;
}

void smtpc_free(struct smtpc *s)
{
    if (!s)
        return;
    free_message(s);
    memset(s->chal, 0, sizeof s->chal);
    wipe(s->out, sizeof s->out);    /* may hold an AUTH PLAIN or LOGIN line */
    free(s);
}

size_t smtpc_feed(struct smtpc *s, const void *data, size_t len)
{
    if (s->state == ST_CLOSED || s->state == ST_TLS_WAIT)
        return len;
    return inbuf_take(s->in, SMTPC_INBUF_MAX, &s->in_off, &s->in_len, data, len);
}

const unsigned char *smtpc_output(const struct smtpc *s, size_t *len)
{
    *len = s->out_len - s->out_off;
    return s->out + s->out_off;
}

void smtpc_output_consumed(struct smtpc *s, size_t n)
{
    if (n > s->out_len - s->out_off)
        n = s->out_len - s->out_off;
    s->out_off += n;
    if (s->out_off == s->out_len)
        s->out_off = s->out_len = 0;
}

/* Reading replies (RFC 5321 4.2) ---------------------------------------------- */

static void malformed(struct smtpc *s, const char *rule, const unsigned char *line, size_t n)
{
    char shown[81];
    size_t k = 0;
    for (size_t i = 0; i < n && k < sizeof shown - 1; i++)
        shown[k++] = line[i] >= ' ' && line[i] <= '~' ? (char)line[i] : '?';
    shown[k] = '\0';
    struct smtpc_result r;
    result_local(&r, SMTPC_TRANSIENT, SMTPC_R_MALFORMED, "4.5.0",
                 "the server sent a malformed reply (%s): \"%s\"", rule, shown);
    fail(s, &r, 0);
}

/* "D.DDD.DDD" at the start of a reply's text, of the reply's class. */
static void parse_status(struct smtpc *s, const char *t, size_t n)
{
    size_t i = 0;
    if (n < 5 || t[0] != (char)('0' + s->cur.code / 100) || t[1] != '.')
        return;
    i = 2;
    for (int part = 0; part < 2; part++) {
        size_t start = i;
        while (i < n && is_digit((unsigned char)t[i]) && i - start < 3)
            i++;
        if (i == start)
            return;
        if (part == 0) {
            if (i >= n || t[i] != '.')
                return;
            i++;
        }
    }
    if (i < n && t[i] != ' ')
        return;
    memcpy(s->cur.status, t, i);
    s->cur.status[i] = '\0';
}

static void offer_append(char *dst, const char *verb, const char *t, size_t n)
{
    size_t have = strlen(dst);
    if (have == 0)
        textf(dst, SMTPC_MECHS_MAX + 1, "%s", verb);
    have = strlen(dst);
    for (size_t i = 0; i < n && have < SMTPC_MECHS_MAX; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c == '\t')
            c = ' ';
        if (c < ' ' || c > '~')
            c = '?';
        if (i == 0 && have > 0)
            dst[have++] = ' ';
        if (have < SMTPC_MECHS_MAX)
            dst[have++] = (char)c;
    }
    dst[have] = '\0';
}

/* One EHLO keyword line: "KEYWORD[ params]". */
static void parse_ehlo_line(struct smtpc *s, const char *t, size_t n)
{
    struct offer *o = &s->reading;
    size_t k = 0;
    while (k < n && t[k] != ' ' && t[k] != '=')
        k++;
    const char *p = t + k + (k < n ? 1 : 0);
    size_t pn = k < n ? n - k - 1 : 0;
    int is_auth = ieq(t, k, "AUTH"), is_xauth = ieq(t, k, "XAUTH");

    if (ieq(t, k, "PIPELINING"))
        o->ext |= SC_EXT_PIPELINING;
    else if (ieq(t, k, "8BITMIME"))
        o->ext |= SC_EXT_8BITMIME;
    else if (ieq(t, k, "STARTTLS"))
        o->ext |= SC_EXT_STARTTLS;
    else if (ieq(t, k, "ENHANCEDSTATUSCODES"))
        o->ext |= SC_EXT_ENHANCED;
    else if (ieq(t, k, "SIZE")) {
        unsigned long long v = 0;
        size_t i = 0;
        o->ext |= SC_EXT_SIZE;
        for (; i < pn && is_digit((unsigned char)p[i]); i++) {
            if (v > (~0ull - 9) / 10) {
                v = 0;              /* absurd: treat as no stated limit */
                break;
            }
            v = v * 10 + (unsigned)(p[i] - '0');
        }
        o->size = i == pn ? v : 0;
    } else if (is_auth || is_xauth) {
        o->ext |= is_auth ? SC_EXT_AUTH : SC_EXT_XAUTH;
        offer_append(is_auth ? o->auth : o->xauth, is_auth ? "AUTH" : "XAUTH", p, pn);
        for (size_t i = 0; i < pn;) {
            size_t j = i;
            while (j < pn && p[j] != ' ')
                j++;
            if (ieq(p + i, j - i, "NTLM"))
                o->ext |= is_auth ? SC_EXT_AUTH_NTLM : SC_EXT_XAUTH_NTLM;
            else if (is_auth && ieq(p + i, j - i, "PLAIN"))
                o->ext |= SC_EXT_AUTH_PLAIN;
            else if (is_auth && ieq(p + i, j - i, "LOGIN"))
                o->ext |= SC_EXT_AUTH_LOGIN;
            i = j + 1;
        }
    }
}

/* Take one reply line out of the input. Returns 1 when the reply is complete
 * (in s->cur), 2 when a continuation line was taken, 0 when no whole line is
 * buffered, -1 when the session failed. */
static int read_line(struct smtpc *s)
{
    const unsigned char *p = s->in + s->in_off;
    size_t avail = s->in_len - s->in_off;
    const unsigned char *lf = memchr(p, '\n', avail < SMTPC_LINE_MAX ? avail : SMTPC_LINE_MAX);
    if (!lf) {
        if (avail >= SMTPC_LINE_MAX) {
            malformed(s, "a line longer than 2048 octets", p, avail);
            return -1;
        }
        return 0;
    }
    size_t n = (size_t)(lf - p);
    s->in_off += n + 1;
    if (n == 0 || p[n - 1] != '\r') {
        malformed(s, "a line ends in a bare LF", p, n);
        return -1;
    }
    n--;
    if (memchr(p, '\r', n)) {
        malformed(s, "a bare CR inside a line", p, n);
        return -1;
    }
    if (s->cfg->transcript) {
        enum smtpc_dir d = s->state == ST_AUTH_REPLY && s->auth_kind <= A_XAUTH && n > 3 &&
                           memcmp(p, "334", 3) == 0 ? SMTPC_RECEIVED_TOKEN : SMTPC_RECEIVED;
        s->cfg->transcript(s->cfg->transcript_arg, d, (const char *)p, n);
    }
    for (size_t i = 0; i < n; i++) {
        if ((p[i] < ' ' && p[i] != '\t') || p[i] == 127) {
            malformed(s, "a control character in the text", p, n);
            return -1;
        }
    }
    if (n < 3 || !is_digit(p[0]) || !is_digit(p[1]) || !is_digit(p[2]) ||
        p[0] < '2' || p[0] > '5' || p[1] > '5') {
        malformed(s, "no reply code 2xx-5xx at the start of a line", p, n);
        return -1;
    }
    if (n > 3 && p[3] != ' ' && p[3] != '-') {
        malformed(s, "the reply code is followed by neither a space nor '-'", p, n);
        return -1;
    }
    int code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
    int more = n > 3 && p[3] == '-';
    const char *text = (const char *)p + (n > 3 ? 4 : 3);
    size_t tn = n > 3 ? n - 4 : 0;

    if (s->cur_lines == 0) {
        memset(&s->cur, 0, sizeof s->cur);
        s->cur_text_len = 0;
        s->cur.code = code;
        parse_status(s, text, tn);
        if (s->state == ST_EHLO)
            memset(&s->reading, 0, sizeof s->reading);
    } else if (code != s->cur.code) {
        malformed(s, "a continuation line with a different code", p, n);
        return -1;
    } else if (s->state == ST_EHLO) {
        parse_ehlo_line(s, text, tn);
    }
    if (++s->cur_lines > SMTPC_REPLY_LINES) {
        malformed(s, "more than 200 lines in one reply", p, n);
        return -1;
    }
    /* keep the reply verbatim, lines joined by a space, cut at the limit */
    size_t room = SMTPC_REPLY_TEXT_MAX - s->cur_text_len;
    size_t add = (s->cur_text_len ? 1 : 0) + n;
    if (add > room)
        add = room;
    if (add > 0) {
        char *dst = s->cur.text + s->cur_text_len;
        if (s->cur_text_len) {
            *dst++ = ' ';
            add--;
            s->cur_text_len++;
        }
        memcpy(dst, p, add);
        s->cur_text_len += add;
        s->cur.text[s->cur_text_len] = '\0';
    }
    memcpy(s->cur_last, text, tn);
    s->cur_last_len = tn;
    if (more)
        return 2;
    s->cur_lines = 0;
    s->last = s->cur;
    return 1;
}

static int read_reply(struct smtpc *s)
{
    int r;
    while ((r = read_line(s)) == 2)
        ;
    return r;
}

/* The session steps --------------------------------------------------------- */

static void send_hello(struct smtpc *s, const char *verb, enum smtpc_state st)
{
    char line[SMTPC_HELO_MAX + 8];
    textf(line, sizeof line, "%s %s", verb, s->cfg->helo_name);
    send_cmd(s, line);
    s->state = st;
}

static void become_ready(struct smtpc *s)
{
    s->state = ST_READY;
    push_event(s, SMTPC_EV_READY);
}

static const char *verb_of(enum auth_kind k)
{
    switch (k) {
    case A_XAUTH: return "XAUTH NTLM";
    case A_PLAIN: return "AUTH PLAIN";
    case A_LOGIN: return "AUTH LOGIN";
    default:      return "AUTH NTLM";
    }
}

/* base64 of raw[0..n) after prefix, sent as one line; the transcript gets
 * label instead. Both buffers are wiped. -1 when it cannot be sent. */
static int send_secret(struct smtpc *s, const char *prefix, unsigned char *raw, size_t n,
                       const char *label)
{
    char line[16 + (2 * SMTPC_CRED_MAX + 2 + 2) / 3 * 4 + 1];
    size_t pl = strlen(prefix);
    int rc = -1;
    memcpy(line, prefix, pl);
    long b = base64_encode(raw, n, line + pl, sizeof line - pl);
    if (b >= 0 && out_room(s) >= pl + (size_t)b + 2) {
        out_bytes(s, line, pl + (size_t)b);
        out_bytes(s, "\r\n", 2);
        if (s->cfg->transcript)
            s->cfg->transcript(s->cfg->transcript_arg, SMTPC_SENT_SECRET, label, strlen(label));
        rc = 0;
    }
    wipe(line, sizeof line);
    wipe(raw, n);
    return rc;
}

/* A credential that does not fit: the exchange cannot start (transient:
 * the setting can be corrected while the message waits). */
static void fail_credentials(struct smtpc *s, const char *what)
{
    struct smtpc_result r;
    result_local(&r, SMTPC_TRANSIENT, SMTPC_R_AUTH_LOCAL, "4.7.0",
                 "%s for %s is empty or longer than %u octets", what, verb_of(s->auth_kind),
                 SMTPC_CRED_MAX);
    fail(s, &r, 1);
}

static void start_auth(struct smtpc *s, enum auth_kind k)
{
    s->auth_started = 1;
    s->auth_kind = k;
    s->auth_xauth = k == A_XAUTH;
    s->auth_rounds = 0;
    s->login_sent = 0;
    if (k == A_PLAIN || k == A_LOGIN) {
        /* checked before a word is sent, so no exchange is left half done */
        size_t ul = strlen(s->cfg->user), pl = strlen(s->cfg->password);
        if (ul == 0 || ul > SMTPC_CRED_MAX || pl == 0 || pl > SMTPC_CRED_MAX) {
            fail_credentials(s, ul == 0 || ul > SMTPC_CRED_MAX ? "the user name" : "the password");
            return;
        }
    }
    if (k == A_PLAIN) {
        /* RFC 4616 with the initial response (RFC 4954 4): no authzid, the
         * user, the password, each after a NUL */
        unsigned char raw[2 * SMTPC_CRED_MAX + 2];
        size_t ul = strlen(s->cfg->user), pl = strlen(s->cfg->password);
        raw[0] = 0;
        memcpy(raw + 1, s->cfg->user, ul);
        raw[1 + ul] = 0;
        memcpy(raw + 2 + ul, s->cfg->password, pl);
        if (send_secret(s, "AUTH PLAIN ", raw, ul + pl + 2, "AUTH PLAIN <user name and password>") != 0) {
            fail_credentials(s, "the user name and password");
            return;
        }
        s->state = ST_AUTH_REPLY;
        return;
    }
    send_cmd(s, verb_of(k));
    s->state = ST_AUTH_START;
}

/* AUTH LOGIN's two prompts: the user name, then the password. */
static void login_answer(struct smtpc *s)
{
    unsigned char raw[SMTPC_CRED_MAX];
    const char *v = s->login_sent == 0 ? s->cfg->user : s->cfg->password;
    size_t n = strlen(v);
    if (n == 0 || n > SMTPC_CRED_MAX) {
        fail_credentials(s, s->login_sent == 0 ? "the user name" : "the password");
        return;
    }
    memcpy(raw, v, n);
    if (send_secret(s, "", raw, n, s->login_sent == 0 ? "<user name>" : "<password>") != 0) {
        send_cmd(s, "*");           /* RFC 4954 4: cancel the exchange */
        fail_credentials(s, "the user name or password");
        return;
    }
    s->login_sent++;
    s->state = ST_AUTH_REPLY;
}

/* Why the session is in clear, for the refusal to send a password. */
static const char *clear_because(const struct smtpc *s)
{
    if (s->cfg->tls == SMTPC_TLS_OFF)
        return "TLS is off for this server";
    if (s->tls_declined)
        return "the server refused STARTTLS";
    return "the server does not offer STARTTLS";
}

/* After a successful EHLO/HELO (and after authentication): the next step by
 * policy. */
static void after_hello(struct smtpc *s)
{
    struct smtpc_result r;
    int helo = !(s->flags & SC_EHLO);

    if (WANT_STARTTLS(s)) {
        if (OFFERS(s, SC_EXT_STARTTLS)) {
            send_cmd(s, "STARTTLS");
            s->state = ST_STARTTLS;
            return;
        }
        if (s->cfg->tls == SMTPC_TLS_REQUIRED) {
            result_local(&r, policy_class(s->cfg->tls_missing, SMTPC_TRANSIENT),
                         SMTPC_R_TLS_NOT_OFFERED, "4.7.10",
                         "TLS is required but the server does not offer STARTTLS%s",
                         helo ? " (it does not accept EHLO)" : "");
            fail(s, &r, 1);
            return;
        }
    }
    if (WANT_AUTH(s)) {
        if (MECHS(s) == 0 && s->cfg->auth == SMTPC_AUTH_REQUIRED) {
            result_local(&r, SMTPC_TRANSIENT, SMTPC_R_AUTH_LOCAL, "4.7.0",
                         "authentication is required but no user name and password are set "
                         "for AUTH PLAIN or LOGIN");
            fail(s, &r, 1);
            return;
        }
        int plain = ALLOWS(s, SMTPC_MECH_PLAIN) && OFFERS(s, SC_EXT_AUTH_PLAIN);
        int login = ALLOWS(s, SMTPC_MECH_LOGIN) && OFFERS(s, SC_EXT_AUTH_LOGIN);
        if (ALLOWS(s, SMTPC_MECH_NTLM) && OFFERS(s, SC_EXT_AUTH_NTLM)) {
            start_auth(s, A_NTLM);
            return;
        }
        if (ALLOWS(s, SMTPC_MECH_NTLM) && OFFERS(s, SC_EXT_XAUTH_NTLM)) {
            start_auth(s, A_XAUTH);
            return;
        }
        if ((plain || login) && ENCRYPTED(s)) {
            start_auth(s, plain ? A_PLAIN : A_LOGIN);
            return;
        }
        if ((plain || login) && s->cfg->auth == SMTPC_AUTH_REQUIRED) {
            /* RFC 4954 4: a mechanism that sends the password itself is
             * for an encrypted session only; a stripped STARTTLS must not
             * be rewarded with it */
            result_local(&r, policy_class(s->cfg->tls_missing, SMTPC_TRANSIENT),
                         SMTPC_R_AUTH_NEEDS_TLS, "4.7.11",
                         "authentication is required and the server offers %s, but the session "
                         "is not encrypted (%s): a password is never sent in clear",
                         plain ? "AUTH PLAIN" : "AUTH LOGIN", clear_because(s));
            fail(s, &r, 1);
            return;
        }
        if (s->cfg->auth == SMTPC_AUTH_REQUIRED) {
            char offers[2 * SMTPC_MECHS_MAX + 80];
            enum smtpc_outcome o = policy_class(s->cfg->auth_missing, SMTPC_PERMANENT);
            if (helo)
                textf(offers, sizeof offers, "offers no authentication at all (it does not accept EHLO)");
            else if (!OFFERS(s, SC_EXT_AUTH | SC_EXT_XAUTH))
                textf(offers, sizeof offers, "offers no authentication at all");
            else if (MECHS(s) == SMTPC_MECH_NTLM)
                textf(offers, sizeof offers, "offers neither AUTH NTLM nor XAUTH NTLM (it offers: %s%s%s)",
                      s->offer.auth, s->offer.auth[0] && s->offer.xauth[0] ? "; " : "",
                      s->offer.xauth);
            else
                textf(offers, sizeof offers, "offers none of: %s%s%s%s%s (it offers: %s%s%s)",
                      ALLOWS(s, SMTPC_MECH_NTLM) ? "AUTH NTLM, XAUTH NTLM" : "",
                      ALLOWS(s, SMTPC_MECH_NTLM) && ALLOWS(s, SMTPC_MECH_PLAIN | SMTPC_MECH_LOGIN)
                          ? ", " : "",
                      ALLOWS(s, SMTPC_MECH_PLAIN) ? "AUTH PLAIN" : "",
                      ALLOWS(s, SMTPC_MECH_PLAIN) && ALLOWS(s, SMTPC_MECH_LOGIN) ? ", " : "",
                      ALLOWS(s, SMTPC_MECH_LOGIN) ? "AUTH LOGIN" : "",
                      s->offer.auth, s->offer.auth[0] && s->offer.xauth[0] ? "; " : "",
                      s->offer.xauth);
            result_local(&r, o, SMTPC_R_AUTH_NOT_OFFERED, "4.7.0",
                         "authentication is required but the server %s", offers);
            fail(s, &r, 1);
            return;
        }
    }
    become_ready(s);
}

static void handle_auth_reply(struct smtpc *s)
{
    int code = s->last.code;
    const char *verb = verb_of(s->auth_kind);
    char what[64];

    if (code == 334) {
        if (++s->auth_rounds > SMTPC_AUTH_ROUNDS) {
            fail_protocol(s, "too many 334 challenges");
            return;
        }
        if (s->auth_kind == A_PLAIN) {
            fail_protocol(s, "a 334 challenge after AUTH PLAIN's initial response");
            return;
        }
        if (s->auth_kind == A_LOGIN) {
            if (s->login_sent >= 2)
                fail_protocol(s, "AUTH LOGIN asked for more than a user name and a password");
            else
                login_answer(s);
            return;
        }
        s->chal_first = s->state == ST_AUTH_START;
        s->chal_len = 0;
        if (!s->chal_first) {
            long n = base64_decode(s->cur_last, s->cur_last_len, s->chal, sizeof s->chal);
            if (n <= 0) {
                fail_protocol(s, "the NTLM challenge is not base64");
                return;
            }
            s->chal_len = (size_t)n;
        }
        s->state = ST_AUTH_TOKEN;
        push_event(s, SMTPC_EV_NTLM);
    } else if (code == 235 && s->state == ST_AUTH_REPLY &&
               (s->auth_kind != A_LOGIN || s->login_sent == 2)) {
        s->flags |= SC_AUTHENTICATED | (s->auth_xauth ? SC_XAUTH : 0);
        push_event(s, SMTPC_EV_AUTHENTICATED);
        after_hello(s);
    } else if (code >= 400) {
        struct smtpc_result r;
        textf(what, sizeof what, "the server refused %s", verb);
        result_reply(&r, &s->last, SMTPC_R_AUTH_REFUSED, what);
        enum smtpc_outcome o = policy_class(s->cfg->auth_refused, r.outcome);
        if (o != r.outcome) {
            /* the server's reply stays verbatim; the status takes our class */
            r.outcome = o;
            r.status[0] = o == SMTPC_TRANSIENT ? '4' : '5';
        }
        fail(s, &r, 1);
    } else {
        fail_protocol(s, verb);
    }
}

/* The message ------------------------------------------------------------------ */

static void finish_message(struct smtpc *s)
{
    if (!s->msg_active)
        return;
    if (s->msg_result.outcome == SMTPC_PENDING) {
        /* nothing was sent as DATA: no recipient was accepted */
        const struct smtpc_result *first = NULL;
        enum smtpc_outcome o = SMTPC_PERMANENT;
        for (size_t i = 0; i < s->n_rcpt; i++) {
            if (s->rcpt[i].res.outcome == SMTPC_TRANSIENT && o != SMTPC_TRANSIENT) {
                o = SMTPC_TRANSIENT;
                first = &s->rcpt[i].res;
            } else if (!first) {
                first = &s->rcpt[i].res;
            }
        }
        result_local(&s->msg_result, o, SMTPC_R_NO_RECIPIENT, first ? first->status : "5.5.0",
                     "no recipient was accepted%s%s", first ? "; the first refusal: " : "",
                     first ? first->why : "");
        if (first)
            s->msg_result.reply = first->reply;
    }
    s->msg_active = 0;
    push_event(s, SMTPC_EV_MESSAGE_DONE);
}

static void end_message(struct smtpc *s)
{
    finish_message(s);
    become_ready(s);
}

static void set_all(struct smtpc *s, const struct smtpc_result *r, int only_accepted)
{
    for (size_t i = 0; i < s->n_rcpt; i++) {
        struct rcpt *rc = &s->rcpt[i];
        if (!rc->valid)
            continue;
        if (only_accepted && !(rc->res.outcome == SMTPC_PENDING && rc->res.reason == SMTPC_R_REPLY))
            continue;
        rc->res = *r;
    }
}

static int plan_line(struct smtpc *s, const struct plan_item *it, char *line, size_t n)
{
    int r;
    switch (it->kind) {
    case P_RSET:
        r = snprintf(line, n, "RSET");
        break;
    case P_MAIL:
        r = snprintf(line, n, "MAIL FROM:%s", s->from);
        if (r >= 0 && (size_t)r < n && SEND_SIZE(s))
            r += snprintf(line + r, n - (size_t)r, " SIZE=%llu", s->msg_size);
        if (r >= 0 && (size_t)r < n && SEND_8BITMIME(s))
            r += snprintf(line + r, n - (size_t)r, " BODY=8BITMIME");
        break;
    case P_RCPT:
        r = snprintf(line, n, "RCPT TO:%s", s->rcpt[it->rcpt].path);
        break;
    default:
        r = snprintf(line, n, "DATA");
        break;
    }
    return r < 0 || (size_t)r >= n ? -1 : r;
}

/* Send what may be sent now: everything under PIPELINING (as the output
 * allows), else the next command once the previous one is answered. */
static void top_up(struct smtpc *s)
{
    char line[SMTPC_CMD_BUF];
    while (s->state == ST_TRANSACTION && s->plan_sent < s->n_plan && !s->mail_failed) {
        const struct plan_item *it = &s->plan[s->plan_sent];
        if (!USE_PIPELINING(s)) {
            if (s->plan_sent > s->plan_done)
                return;
            if (it->kind == P_DATA && s->n_accepted == 0) {
                s->n_plan = s->plan_sent;       /* no DATA: nothing to send it for */
                end_message(s);
                return;
            }
        }
        int n = plan_line(s, it, line, sizeof line);
        if (n < 0 || send_line(s, SMTPC_SENT, line, (size_t)n) < 0)
            return;
        s->plan_sent++;
    }
}

static void handle_transaction(struct smtpc *s)
{
    const struct smtpc_reply *rep = &s->last;
    char what[SMTPC_PATH_BUF + 40];
    struct smtpc_result r;

    if (s->plan_done >= s->plan_sent) {
        fail_protocol(s, "a reply to a command not sent");
        return;
    }
    const struct plan_item *it = &s->plan[s->plan_done++];
    int cls = rep->code / 100;

    switch (it->kind) {
    case P_RSET:
        if (cls == 4 || cls == 5)
            fail_reply(s, SMTPC_R_REPLY, "the server refused RSET", 1);
        else if (cls != 2)
            fail_protocol(s, "RSET");
        if (cls != 2)
            return;
        break;
    case P_MAIL:
        if (cls == 2) {
            s->mail_ok = 1;
        } else if (cls == 4 || cls == 5) {
            textf(what, sizeof what, "MAIL FROM:%s was refused", s->from);
            result_reply(&r, rep, SMTPC_R_REPLY, what);
            set_all(s, &r, 0);
            s->msg_result = r;
            s->mail_failed = 1;
        } else {
            fail_protocol(s, "MAIL FROM");
            return;
        }
        break;
    case P_RCPT: {
        struct rcpt *rc = &s->rcpt[it->rcpt];
        if (s->mail_failed)
            break;                      /* already answered by MAIL's refusal */
        if (cls == 2) {
            rc->res.reason = SMTPC_R_REPLY;   /* accepted, PENDING until the final reply */
            rc->res.reply = *rep;
            s->n_accepted++;
        } else if (cls == 4 || cls == 5) {
            textf(what, sizeof what, "RCPT TO:%s was refused", rc->path);
            result_reply(&rc->res, rep, SMTPC_R_REPLY, what);
        } else {
            fail_protocol(s, "RCPT TO");
            return;
        }
        break;
    }
    case P_DATA:
        if (rep->code == 354) {
            if (s->n_accepted > 0) {
                s->state = ST_CONTENT;
                s->c_bol = 1;
                s->c_cr = 0;
                push_event(s, SMTPC_EV_CONTENT);
            } else {
                /* 354 with nobody to deliver to: end the empty data at once */
                send_cmd(s, ".");
                s->ignore_final = 1;
                s->state = ST_FINAL;
            }
            return;
        }
        if (s->n_accepted > 0) {
            if (cls != 4 && cls != 5) {
                fail_protocol(s, "DATA");
                return;
            }
            result_reply(&r, rep, SMTPC_R_REPLY, "the server refused DATA");
            set_all(s, &r, 1);
            s->msg_result = r;
        }
        break;
    }
    if (s->plan_done == s->plan_sent && (s->plan_done == s->n_plan || s->mail_failed))
        end_message(s);
}

static void handle_final(struct smtpc *s)
{
    struct smtpc_result r;
    int cls = s->last.code / 100;
    if (!s->ignore_final) {
        if (cls == 2)
            result_reply(&r, &s->last, SMTPC_R_REPLY, "delivered");
        else if (cls == 4 || cls == 5)
            result_reply(&r, &s->last, SMTPC_R_REPLY, "the server refused the message");
        else {
            fail_protocol(s, "the end of the message data");
            return;
        }
        set_all(s, &r, 1);
        s->msg_result = r;
    }
    end_message(s);
}

static void handle_reply(struct smtpc *s)
{
    int code = s->last.code, cls = code / 100;

    if (code == 421 && s->state != ST_QUIT) {
        fail_reply(s, SMTPC_R_REPLY, "the server is closing the connection", 0);
        return;
    }
    switch (s->state) {
    case ST_GREETING:
        if (cls == 2)
            send_hello(s, "EHLO", ST_EHLO);
        else if (cls >= 4)
            fail_reply(s, SMTPC_R_REPLY, "the server refused the session", 1);
        else
            fail_protocol(s, "the greeting");
        break;
    case ST_EHLO:
        if (cls == 2) {
            s->offer = s->reading;
            s->flags |= SC_EHLO;
            after_hello(s);
        } else if (cls == 5) {
            send_hello(s, "HELO", ST_HELO);
        } else if (cls == 4) {
            fail_reply(s, SMTPC_R_REPLY, "the server refused EHLO", 1);
        } else {
            fail_protocol(s, "EHLO");
        }
        break;
    case ST_HELO:
        if (cls == 2) {
            memset(&s->offer, 0, sizeof s->offer);
            s->flags &= ~SC_EHLO;
            after_hello(s);
        } else if (cls >= 4) {
            fail_reply(s, SMTPC_R_REPLY, "the server refused both EHLO and HELO", 1);
        } else {
            fail_protocol(s, "HELO");
        }
        break;
    case ST_STARTTLS:
        if (code == 220) {
            s->state = ST_TLS_WAIT;
            push_event(s, SMTPC_EV_STARTTLS);
        } else if (cls >= 4 && s->cfg->tls == SMTPC_TLS_REQUIRED) {
            fail_reply(s, SMTPC_R_TLS_REFUSED, "TLS is required but the server refused STARTTLS", 1);
        } else if (cls >= 4) {
            s->tls_declined = 1;    /* opportunistic: on in clear (RFC 3207 4.1) */
            after_hello(s);
        } else {
            fail_protocol(s, "STARTTLS");
        }
        break;
    case ST_AUTH_START:
    case ST_AUTH_REPLY:
        handle_auth_reply(s);
        break;
    case ST_TRANSACTION:
        handle_transaction(s);
        break;
    case ST_FINAL:
        handle_final(s);
        break;
    case ST_QUIT:
        end_normally(s);
        break;
    default:
        fail_protocol(s, "no command was pending");
        break;
    }
}

/* Input is read as replies only where one is due (or unexpected: READY). */
static int reads_replies(const struct smtpc *s)
{
    switch (s->state) {
    case ST_TLS_WAIT:
    case ST_AUTH_TOKEN:
    case ST_CONTENT:
    case ST_CLOSED:
        return 0;
    default:
        return 1;
    }
}

enum smtpc_event_type smtpc_next(struct smtpc *s, struct smtpc_event *ev)
{
    struct smtpc_event dummy;
    if (!ev)
        ev = &dummy;
    memset(ev, 0, sizeof *ev);
    for (;;) {
        if (s->evq_n > 0) {
            ev->type = s->evq[0];
            memmove(s->evq, s->evq + 1, (s->evq_n - 1) * sizeof s->evq[0]);
            s->evq_n--;
            if (ev->type == SMTPC_EV_NTLM) {
                ev->first = s->chal_first;
                ev->data = s->chal;
                ev->len = s->chal_len;
            }
            ev->xauth = s->auth_xauth;
            return ev->type;
        }
        if (s->state == ST_CLOSED) {
            ev->type = SMTPC_EV_CLOSE;
            return ev->type;
        }
        if (s->state == ST_TRANSACTION) {
            top_up(s);
            if (s->evq_n > 0)
                continue;
        }
        if (!reads_replies(s) || out_room(s) < SMTPC_CMD_RESERVE || s->in_off == s->in_len)
            return SMTPC_EV_NONE;
        int r = read_reply(s);
        if (r == 0)
            return SMTPC_EV_NONE;
        if (r > 0)
            handle_reply(s);
    }
}

/* Answers --------------------------------------------------------------------- */

int smtpc_tls_started(struct smtpc *s)
{
    if (s->state != ST_TLS_WAIT)
        return -1;
    /* RFC 3207 4.2: forget all the server said in clear, and anything it
     * sent after the 220 (it could only be an injection). */
    s->in_off = s->in_len = 0;
    s->cur_lines = 0;
    memset(&s->offer, 0, sizeof s->offer);
    memset(&s->last, 0, sizeof s->last);
    s->flags = (s->flags | SC_TLS) & ~SC_EHLO;
    send_hello(s, "EHLO", ST_EHLO);
    return 0;
}

int smtpc_tls_failed(struct smtpc *s, const char *why)
{
    struct smtpc_result r;
    if (s->state != ST_TLS_WAIT)
        return -1;
    result_local(&r, SMTPC_TRANSIENT, SMTPC_R_TLS_FAILED, "4.7.5",
                 "the TLS handshake failed: %s", why ? why : "no reason given");
    fail(s, &r, 0);
    return 0;
}

int smtpc_ntlm_token(struct smtpc *s, const void *token, size_t len)
{
    char line[SMTPC_TOKEN_B64_MAX + 1];
    if (s->state != ST_AUTH_TOKEN || !token || len == 0 || len > SMTPC_TOKEN_MAX)
        return -1;
    long n = base64_encode(token, len, line, sizeof line);
    if (n < 0 || send_line(s, SMTPC_SENT_TOKEN, line, (size_t)n) < 0)
        return -1;
    memset(s->chal, 0, s->chal_len);
    s->state = ST_AUTH_REPLY;
    return 0;
}

int smtpc_ntlm_failed(struct smtpc *s, const char *why)
{
    struct smtpc_result r;
    if (s->state != ST_AUTH_TOKEN)
        return -1;
    send_cmd(s, "*");               /* RFC 4954 4: cancel the exchange */
    result_local(&r, SMTPC_TRANSIENT, SMTPC_R_AUTH_LOCAL, "4.7.0",
                 "NTLM authentication could not be completed here: %s", why ? why : "no reason given");
    fail(s, &r, 1);
    return 0;
}

int smtpc_message_begin(struct smtpc *s, const struct smtpc_message *m)
{
    struct addr_path path;
    struct addr_error err;
    struct smtpc_result r;

    if (s->state != ST_READY || !m || !m->from || !m->to || m->n_to == 0 || m->n_to > SMTPC_MAX_RCPT)
        return -1;
    for (size_t i = 0; i < m->n_to; i++)
        if (!m->to[i])
            return -1;
    free_message(s);
    s->rcpt = calloc(m->n_to, sizeof *s->rcpt);
    s->plan = calloc(m->n_to + 3, sizeof *s->plan);
    if (!s->rcpt || !s->plan) {
        free_message(s);
        return -1;
    }
    s->n_rcpt = m->n_to;
    s->msg_size = m->size;
    s->msg_8bit = m->eight_bit != 0;
    s->n_accepted = 0;
    s->mail_ok = s->mail_failed = s->ignore_final = 0;
    s->plan_sent = s->plan_done = 0;
    memset(&s->msg_result, 0, sizeof s->msg_result);
    s->msg_active = 1;
    s->have_msg = 1;

    /* the sender */
    size_t fl = strlen(m->from);
    int bad_from = 0;
    if (fl == 0) {
        memcpy(s->from, "<>", 3);
    } else {
        int pr = m->from[0] == '<' ? addr_parse_path(m->from, fl, ADDR_MAIL, &path, &err)
                                   : addr_parse_mailbox(m->from, fl, ADDR_MAIL, &path, &err);
        if (pr != 0 || addr_format_path(&path, s->from, sizeof s->from) < 0) {
            bad_from = 1;
            result_local(&s->msg_result, SMTPC_PERMANENT, SMTPC_R_BAD_ADDRESS, "5.1.7",
                         "the sender address is not valid: %s", pr != 0 ? err.rule : "too long");
        }
    }
    /* the recipients */
    size_t valid = 0;
    for (size_t i = 0; i < m->n_to; i++) {
        struct rcpt *rc = &s->rcpt[i];
        size_t tl = strlen(m->to[i]);
        int pr = tl > 0 && m->to[i][0] == '<' ? addr_parse_path(m->to[i], tl, ADDR_RCPT, &path, &err)
                                              : addr_parse_mailbox(m->to[i], tl, ADDR_RCPT, &path, &err);
        if (pr == 0 && addr_format_path(&path, rc->path, sizeof rc->path) >= 0) {
            rc->valid = 1;
            valid++;
        } else {
            result_local(&rc->res, SMTPC_PERMANENT, SMTPC_R_BAD_ADDRESS, "5.1.3",
                         "the recipient address is not valid: %s", pr != 0 ? err.rule : "too long");
        }
    }
    /* what this server cannot take, decided before a byte is sent */
    if (bad_from) {
        r = s->msg_result;
    } else if (s->msg_8bit && !OFFERS(s, SC_EXT_8BITMIME)) {
        result_local(&r, SMTPC_PERMANENT, SMTPC_R_8BIT_UNSUPPORTED, "5.6.3",
                     "the message has 8-bit content and the server does not offer 8BITMIME");
    } else if (OFFERS(s, SC_EXT_SIZE) && s->offer.size > 0 && m->size > s->offer.size) {
        result_local(&r, SMTPC_PERMANENT, SMTPC_R_SIZE, "5.3.4",
                     "the message (%llu octets) is larger than the server's limit of %llu octets",
                     m->size, s->offer.size);
    } else if (valid == 0) {
        end_message(s);
        return 0;
    } else {
        size_t k = 0;
        if (s->need_rset)
            s->plan[k++].kind = P_RSET;
        s->plan[k++].kind = P_MAIL;
        for (size_t i = 0; i < s->n_rcpt; i++)
            if (s->rcpt[i].valid) {
                s->plan[k].kind = P_RCPT;
                s->plan[k++].rcpt = i;
            }
        s->plan[k++].kind = P_DATA;
        s->n_plan = k;
        s->need_rset = 1;
        s->state = ST_TRANSACTION;
        return 0;
    }
    for (size_t i = 0; i < s->n_rcpt; i++)
        if (s->rcpt[i].valid)
            s->rcpt[i].res = r;
    s->msg_result = r;
    end_message(s);
    return 0;
}

size_t smtpc_content(struct smtpc *s, const void *data, size_t len)
{
    const unsigned char *p = data;
    size_t i = 0;
    if (s->state != ST_CONTENT)
        return 0;
    /* each input octet makes at most 3 output octets (CR, then "." as "\n..") */
    while (i < len && out_room(s) >= 3 + SMTPC_CONTENT_SLACK) {
        unsigned char c = p[i++];
        if (s->c_cr) {
            s->c_cr = 0;
            s->c_bol = 1;
            out_bytes(s, "\n", 1);
            if (c == '\n')
                continue;
        }
        if (c == '\r') {
            out_bytes(s, "\r", 1);
            s->c_cr = 1;
            s->c_bol = 0;
        } else if (c == '\n') {
            out_bytes(s, "\r\n", 2);    /* a bare LF ends a line: CRLF on the wire */
            s->c_bol = 1;
        } else {
            if (s->c_bol && c == '.')
                out_bytes(s, ".", 1);   /* RFC 5321 4.5.2 */
            out_bytes(s, &c, 1);
            s->c_bol = 0;
        }
    }
    return i;
}

int smtpc_content_end(struct smtpc *s)
{
    if (s->state != ST_CONTENT)
        return -1;
    if (s->c_cr)
        out_bytes(s, "\n", 1);
    else if (!s->c_bol)
        out_bytes(s, "\r\n", 2);
    out_bytes(s, ".\r\n", 3);
    if (s->cfg->transcript)
        s->cfg->transcript(s->cfg->transcript_arg, SMTPC_SENT, ".", 1);
    s->state = ST_FINAL;
    return 0;
}

int smtpc_quit(struct smtpc *s)
{
    if (s->state != ST_READY || send_cmd(s, "QUIT") < 0)
        return -1;
    s->state = ST_QUIT;
    return 0;
}

void smtpc_connection_lost(struct smtpc *s)
{
    struct smtpc_result r;
    if (s->state == ST_CLOSED)
        return;
    if (s->state == ST_QUIT) {
        end_normally(s);
        return;
    }
    if (s->state == ST_FINAL)
        result_local(&r, SMTPC_TRANSIENT, SMTPC_R_CONNECTION_LOST, "4.4.2",
                     "the connection was lost after the message was sent, before the server's "
                     "reply (the message may have been delivered)");
    else
        result_local(&r, SMTPC_TRANSIENT, SMTPC_R_CONNECTION_LOST, "4.4.2",
                     "the connection was lost while waiting for %s", waiting_for(s));
    fail(s, &r, 0);
}

void smtpc_timeout(struct smtpc *s)
{
    struct smtpc_result r;
    if (s->state == ST_CLOSED)
        return;
    if (s->state == ST_QUIT) {
        end_normally(s);
        return;
    }
    unsigned secs = smtpc_timeout_secs(s);
    if (secs)
        result_local(&r, SMTPC_TRANSIENT, SMTPC_R_TIMEOUT, "4.4.2",
                     "timed out after %u seconds waiting for %s", secs, waiting_for(s));
    else
        result_local(&r, SMTPC_TRANSIENT, SMTPC_R_TIMEOUT, "4.4.2",
                     "timed out waiting for %s", waiting_for(s));
    fail(s, &r, 0);
}

enum smtpc_timeout_kind smtpc_timeout_kind(const struct smtpc *s)
{
    switch (s->state) {
    case ST_GREETING:
        return SMTPC_TO_INITIAL;
    case ST_EHLO:
    case ST_HELO:
    case ST_STARTTLS:
    case ST_AUTH_START:
    case ST_AUTH_REPLY:
    case ST_QUIT:
        return SMTPC_TO_COMMAND;
    case ST_TRANSACTION:
        if (s->plan_done < s->n_plan)
            switch (s->plan[s->plan_done].kind) {
            case P_RSET: return SMTPC_TO_COMMAND;
            case P_MAIL: return SMTPC_TO_MAIL;
            case P_RCPT: return SMTPC_TO_RCPT;
            case P_DATA: return SMTPC_TO_DATA_INIT;
            }
        return SMTPC_TO_COMMAND;
    case ST_CONTENT:
        return SMTPC_TO_DATA_BLOCK;
    case ST_FINAL:
        return SMTPC_TO_DATA_TERM;
    default:
        return SMTPC_TO_NONE;
    }
}

unsigned smtpc_timeout_secs(const struct smtpc *s)
{
    switch (smtpc_timeout_kind(s)) {
    case SMTPC_TO_INITIAL:    return SMTPC_TIMEOUT_INITIAL;
    case SMTPC_TO_COMMAND:    return SMTPC_TIMEOUT_COMMAND;
    case SMTPC_TO_MAIL:       return SMTPC_TIMEOUT_MAIL;
    case SMTPC_TO_RCPT:       return SMTPC_TIMEOUT_RCPT;
    case SMTPC_TO_DATA_INIT:  return SMTPC_TIMEOUT_DATA_INIT;
    case SMTPC_TO_DATA_BLOCK: return SMTPC_TIMEOUT_DATA_BLOCK;
    case SMTPC_TO_DATA_TERM:  return SMTPC_TIMEOUT_DATA_TERM;
    default:                  return 0;
    }
}

/* Facts ------------------------------------------------------------------------ */

unsigned smtpc_flags(const struct smtpc *s)
{
    return s->flags;
}

unsigned smtpc_extensions(const struct smtpc *s)
{
    return s->offer.ext;
}

unsigned long long smtpc_size_limit(const struct smtpc *s)
{
    return s->offer.size;
}

const struct smtpc_reply *smtpc_last_reply(const struct smtpc *s)
{
    return &s->last;
}

int smtpc_closed(const struct smtpc *s)
{
    return s->state == ST_CLOSED;
}

const char *smtpc_auth_verb(const struct smtpc *s)
{
    return s->auth_started ? verb_of(s->auth_kind) : "";
}

const struct smtpc_result *smtpc_failure(const struct smtpc *s)
{
    return &s->failure;
}

const struct smtpc_result *smtpc_message_result(const struct smtpc *s)
{
    return s->have_msg ? &s->msg_result : NULL;
}

size_t smtpc_rcpt_count(const struct smtpc *s)
{
    return s->have_msg ? s->n_rcpt : 0;
}

const struct smtpc_result *smtpc_rcpt_result(const struct smtpc *s, size_t i)
{
    return s->have_msg && i < s->n_rcpt ? &s->rcpt[i].res : NULL;
}

void smtpc_result_local(struct smtpc_result *r, enum smtpc_outcome outcome,
                        enum smtpc_reason reason, const char *status, const char *why)
{
    memset(r, 0, sizeof *r);
    r->outcome = outcome;
    r->reason = reason;
    snprintf(r->status, sizeof r->status, "%s", status);
    snprintf(r->why, sizeof r->why, "%s", why);
}
