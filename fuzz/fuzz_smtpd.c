/* fuzz_smtpd.c - arbitrary bytes into an SMTP server session.
 *
 * Input: byte 0 picks the options (STARTTLS, XAUTH, relay range, a small
 * size limit, AUTH required, implicit TLS, message and hop limits with a
 * client name), bytes 1-3 seed the choices (where the stream is cut, how each
 * event is answered, stray answer calls at the wrong time); the rest is what
 * the client sends. Besides the sanitizers, it checks the engine's promises:
 * every reply line is "DDD" then ' ' or '-' and printable text ending in
 * CRLF, 4xx/5xx lines carry an enhanced status code of their class, a
 * multi-line reply keeps its code, and message content handed out never
 * holds a bare CR, a bare LF or a NUL, nor exceeds the size limit. Every
 * recipient handed to the spool is one the queue routes (core/route.h, as
 * service/queue/queue.c asks), and from a client that may not relay, a local one:
 * nothing accepted is bounced later for a reason known at RCPT, and no
 * stranger's mail leaves. With AUTH required no transaction starts before
 * AUTH, and with implicit TLS no byte goes out before the handshake. Bit 0
 * of byte 3 gives the session an address map (core/rewrite.h) whose every
 * line leads to a local domain, so the same holds for what it rewrites; bit
 * 1 one configured but not loaded.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addrmap.h"
#include "route.h"
#include "smtpd.h"

/* LocalDomains, parsed on the first input and kept. */
static const struct domain_list *local_list(void)
{
    static struct domain_list l;
    static int parsed;
    if (!parsed && domains_parse(&l, "example.com;*.corp.example;[192.0.2.1]", NULL, 0) != 0)
        abort();
    parsed = 1;
    return &l;
}

/* An address map, parsed on first use and kept: IMCEA X.400 and EX lines,
 * an alias, a domain alias; every address it gives is local. */
static const struct addrmap *map_fixed(void)
{
    static struct addrmap *m;
    static const char text[] =
        "c=US;a= ;o=Sales;s=Ann;   ann@example.com   both\n"
        "EX:/o=Fab/cn=bo           bo@example.com\n"
        "sales@example.com         ann@example.com, bo@example.com\n"
        "@x.corp.example           @example.com\n";
    if (!m && addrmap_parse(text, sizeof text - 1, &m, NULL) != 0)
        abort();
    return m;
}

struct fz {
    struct smtpd *s;
    int relay_allowed;
    int auth_required;          /* SMTPD_OPT_AUTH_REQUIRED */
    unsigned max_messages;
    uint32_t rng;
    unsigned long long max_size;
    /* reply checker */
    char cont_code[3];
    int in_multi;
    /* content checker */
    int prev_cr;
    unsigned long long msg_size;
};

static unsigned next(struct fz *f)
{
    f->rng = f->rng * 1664525u + 1013904223u;
    return f->rng >> 16;
}

static void check_line(struct fz *f, const unsigned char *l, size_t n)
{
    if (n < 4)
        abort();
    for (int i = 0; i < 3; i++)
        if (l[i] < '0' || l[i] > '9')
            abort();
    if (l[3] != ' ' && l[3] != '-')
        abort();
    for (size_t i = 4; i < n; i++)
        if (l[i] < 32 || l[i] > 126)
            abort();
    if ((l[0] == '4' || l[0] == '5') && (n < 9 || l[4] != l[0] || l[5] != '.'))
        abort();
    if (f->in_multi && memcmp(f->cont_code, l, 3) != 0)
        abort();
    f->in_multi = l[3] == '-';
    memcpy(f->cont_code, l, 3);
}

static void drain(struct fz *f)
{
    size_t n;
    const unsigned char *p = smtpd_output(f->s, &n);
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n') {
            if (i == start || p[i - 1] != '\r')
                abort();
            check_line(f, p + start, i - 1 - start);
            start = i + 1;
        } else if (p[i] == '\r' && (i + 1 >= n || p[i + 1] != '\n')) {
            abort();
        }
    }
    if (start != n)
        abort();            /* a reply is only ever queued whole */
    /* Sometimes send it in two parts, as a short send() would. */
    if (n > 1 && (next(f) & 3) == 0) {
        smtpd_output_consumed(f->s, n / 2);
        p = smtpd_output(f->s, &n);
    }
    smtpd_output_consumed(f->s, n);
}

static void check_chunk(struct fz *f, const struct smtpd_event *ev)
{
    for (size_t i = 0; i < ev->len; i++) {
        unsigned char c = ev->data[i];
        if (c == 0)
            abort();
        if (f->prev_cr != (c == '\n'))
            abort();
        f->prev_cr = c == '\r';
    }
    f->msg_size += ev->len;
    if (f->msg_size > f->max_size)
        abort();
}

static void answer(struct fz *f, const struct smtpd_event *ev)
{
    static const unsigned char tok[] = "CHALLENGE-TOKEN";
    char hdr[512];
    unsigned r = next(f);
    switch (ev->type) {
    case SMTPD_EV_STARTTLS:
        if (r % 8 == 0)
            smtpd_timeout(f->s);
        else if (smtpd_tls_started(f->s, r % 8 != 1) != 0)
            abort();
        break;
    case SMTPD_EV_AUTH_NTLM:
        if (ev->first || r % 4 == 0) {
            if (smtpd_auth_continue(f->s, tok, r % sizeof tok) != 0)
                abort();
        } else if (r % 4 == 1) {
            smtpd_auth_success(f->s, "DOMAIN\\user(x)");
        } else if (r % 4 == 2) {
            smtpd_auth_fail(f->s);
        } else {
            smtpd_auth_tempfail(f->s);
        }
        break;
    case SMTPD_EV_AUTH_PASSWORD:
        if (!ev->user || !ev->password || !ev->authzid || !ev->mechanism)
            abort();
        if (r & 1)
            smtpd_auth_success(f->s, ev->user);
        else
            smtpd_auth_fail(f->s);
        break;
    case SMTPD_EV_DATA_BEGIN:
        f->prev_cr = 0;
        f->msg_size = 0;
        if (f->auth_required && !(smtpd_flags(f->s) & SF_AUTHENTICATED))
            abort();            /* submission: no transaction before AUTH */
        if (f->max_messages && smtpd_messages(f->s) > f->max_messages)
            abort();
        {
            /* the queue's routing, with a smart host as it might be configured */
            struct route_config rc = { local_list(), "relay.example.net:2525", 25, 25, NULL };
            int may_relay = f->relay_allowed || (smtpd_flags(f->s) & SF_AUTHENTICATED);
            size_t n = smtpd_rcpt_count(f->s);
            if (n == 0)
                abort();
            for (size_t i = 0; i < n; i++) {
                struct route_verdict v;
                const struct addr_path *p = smtpd_rcpt(f->s, i);
                if (!p || route_recipient(&rc, p, 1, &v) != 0)
                    abort();
                if (!may_relay && v.route.kind != ROUTE_DROP)
                    abort();
                if (p->kind == ADDR_DOMAIN_NONE)
                    abort();            /* <Postmaster> is stored with its local domain */
            }
        }
        {
            size_t cap = 1 + r % sizeof hdr;
            int n = smtpd_received(f->s, "Q1", "Tue, 1 Jul 2025 10:00:00 +0000", hdr, cap);
            if (n >= 0 && ((size_t)n != strlen(hdr) || n < 2 || memcmp(hdr + n - 2, "\r\n", 2) != 0))
                abort();
            if (n < 0 && hdr[0] != '\0')
                abort();
        }
        break;
    case SMTPD_EV_DATA_CHUNK:
        check_chunk(f, ev);
        if (ev->final && f->prev_cr)
            abort();
        break;
    case SMTPD_EV_MESSAGE:
        if (r % 4 == 0)
            smtpd_message_failed(f->s, r & 4, "could not \r\n store");
        else if (smtpd_message_stored(f->s, "Q1\r\n") != 0)
            abort();
        break;
    case SMTPD_EV_MESSAGE_REJECTED:
        if (ev->reject == SMTPD_REJECT_NONE)
            abort();
        break;
    case SMTPD_EV_AUTH_ABORT:
    case SMTPD_EV_CLOSE:
    case SMTPD_EV_NONE:
        break;
    }
}

/* Answers at the wrong time must be refused, never acted on. */
static void stray(struct fz *f)
{
    switch (next(f) % 8) {
    case 0: smtpd_message_stored(f->s, "X"); break;
    case 1: smtpd_auth_success(f->s, "x"); break;
    case 2: smtpd_tls_started(f->s, 1); break;
    case 3: smtpd_auth_continue(f->s, "t", 1); break;
    case 4: (void)smtpd_timeout_secs(f->s); break;
    default: break;
    }
}

static int pump(struct fz *f)
{
    struct smtpd_event ev;
    for (int guard = 0; guard < 100000; guard++) {
        if ((next(f) & 63) == 0)
            stray(f);
        enum smtpd_event_type t = smtpd_next(f->s, &ev);
        drain(f);
        answer(f, &ev);
        drain(f);
        if (t == SMTPD_EV_CLOSE)
            return 1;
        if (t == SMTPD_EV_NONE)
            return 0;
    }
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    struct smtpd_config cfg = { 0 };
    struct fz f;
    memset(&f, 0, sizeof f);
    cfg.hostname = "mx.example.com";
    cfg.local_domains = local_list();
    cfg.options = (data[0] & 1 ? SMTPD_OPT_STARTTLS : 0) | (data[0] & 2 ? SMTPD_OPT_XAUTH : 0) |
                  (data[0] & 32 ? SMTPD_OPT_AUTH_REQUIRED : 0) |
                  (data[0] & 64 ? SMTPD_OPT_TLS_ON_CONNECT | SMTPD_OPT_STARTTLS : 0);
    cfg.max_size = data[0] & 8 ? 300 : 0;
    cfg.max_recipients = data[0] & 16 ? 3 : 0;
    cfg.max_messages = data[0] & 128 ? 2 : 0;
    cfg.max_hops = data[0] & 128 ? 3 : 0;
    f.max_size = cfg.max_size ? cfg.max_size : SMTPD_DEFAULT_MAX_SIZE;
    f.rng = (uint32_t)data[1] | (uint32_t)data[2] << 8 | (uint32_t)data[3] << 16;
    f.relay_allowed = (data[0] & 4) != 0;
    f.s = smtpd_new(&cfg, "192.0.2.9", f.relay_allowed);
    if (!f.s)
        abort();
    if (data[3] & 1)
        smtpd_set_address_map(f.s, map_fixed(), 1);
    else if (data[3] & 2)
        smtpd_set_address_map(f.s, NULL, 1);
    f.auth_required = (cfg.options & SMTPD_OPT_AUTH_REQUIRED) != 0;
    f.max_messages = cfg.max_messages;
    if (cfg.options & SMTPD_OPT_TLS_ON_CONNECT) {
        size_t early;
        smtpd_output(f.s, &early);
        if (early != 0)
            abort();            /* implicit TLS: not one byte before the handshake */
    }
    if (data[0] & 128)
        smtpd_set_client_name(f.s, data[1] & 1 ? "client.example.net" : "bad name\r\n");
    pump(&f);
    data += 4;
    size -= 4;
    size_t off = 0;
    int closed = 0;
    while (off < size && !closed) {
        size_t k = 1 + next(&f) % 97;
        if (k > size - off)
            k = size - off;
        size_t took = smtpd_feed(f.s, data + off, k);
        off += took;
        closed = pump(&f);
        if (took == 0 && !closed) {
            /* every event was answered and the output drained: input must flow */
            took = smtpd_feed(f.s, data + off, k);
            if (took == 0)
                abort();
            off += took;
            closed = pump(&f);
        }
    }
    if (!closed && (next(&f) & 1))
        smtpd_timeout(f.s);
    pump(&f);
    smtpd_free(f.s);
    return 0;
}
