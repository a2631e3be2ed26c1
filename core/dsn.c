/* dsn.c - RFC 3464 delivery status notifications.
 *
 * Everything that came from outside (the remote reply, our own sentences,
 * addresses) is reduced to printable US-ASCII before it is written, and long
 * values are folded, so a hostile reply can neither add header fields nor
 * break the MIME structure. The original's header fields (or, only when
 * asked, the whole original) are copied with their line ends made CRLF; the
 * boundary is chosen so that it does not occur in them. What is not a
 * header field is content, and content of the original never goes back by
 * default: the sender may be forged (backscatter).
 */
#include "dsn.h"

#include <stdio.h>
#include <string.h>

#include "obuf.h"

#define DSN_WRAP      76    /* fold or wrap before this column when we can */
#define DSN_FIELD_MAX 255   /* host, dates, Message-ID as the caller gives them */
#define DSN_HARD_MAX  900   /* a word longer than this is broken (998 is the law) */
#define DSN_LINE_MAX  998   /* RFC 5322 2.1.1: octets in a line, without CRLF */
#define DSN_TEXT_MAX  (ENV_REPLY_MAX + ENV_WHY_MAX + 64)

static void ob_line(struct obuf *o, const char *s)
{
    ob_str(o, s);
    ob_put(o, "\r\n", 2);
}

static void ob_field(struct obuf *o, const char *name, const char *a, const char *b)
{
    ob_str(o, name);
    ob_str(o, ": ");
    ob_str(o, a);
    if (b)
        ob_str(o, b);
    ob_put(o, "\r\n", 2);
}

/* Printable US-ASCII only: anything else (CR, LF, TAB, 8-bit) becomes a
 * space or '?', so it cannot end a line or a header field. */
static void clean(char *dst, size_t cap, const char *src)
{
    size_t k = 0;
    for (const unsigned char *s = (const unsigned char *)src; *s && k + 1 < cap; s++) {
        unsigned char c = *s;
        if (c == '\t' || c == '\r' || c == '\n')
            c = ' ';
        else if (c < 0x20 || c > 0x7e)
            c = '?';
        dst[k++] = (char)c;
    }
    dst[k] = '\0';
}

/* Write text (already clean) as lines: first starts with lead, the rest
 * with cont; breaks at spaces before DSN_WRAP columns where there is one.
 * With cont " " this is header folding (RFC 5322 2.2.3). */
static void ob_wrapped(struct obuf *o, const char *lead, const char *cont, const char *text)
{
    size_t col = strlen(lead);
    int fresh = 1;  /* nothing but the prefix on this line yet */
    const char *s = text;
    ob_str(o, lead);
    while (*s) {
        const char *w = s;
        while (*w == ' ')
            w++;
        const char *e = w;
        while (*e && *e != ' ')
            e++;
        size_t sp = (size_t)(w - s), wl = (size_t)(e - w);
        if (wl == 0)
            break;   /* trailing spaces: drop */
        if (!fresh && col + sp + wl > DSN_WRAP) {
            ob_put(o, "\r\n", 2);
            ob_str(o, cont);
            col = strlen(cont);
            sp = 0;
        } else if (fresh) {
            sp = 0;
        }
        ob_put(o, " ", sp ? 1 : 0);
        col += sp ? 1 : 0;
        while (wl > DSN_HARD_MAX) {
            ob_put(o, w, DSN_HARD_MAX);
            ob_put(o, "\r\n", 2);
            ob_str(o, cont);
            col = strlen(cont);
            w += DSN_HARD_MAX;
            wl -= DSN_HARD_MAX;
        }
        ob_put(o, w, wl);
        col += wl;
        fresh = 0;
        s = e;
    }
    ob_put(o, "\r\n", 2);
}

/* ---- sentences ---- */

static const struct {
    const char *code;      /* "5.6.3": exact; ".1.1": any class */
    const char *sentence;
} sentences[] = {
    { "5.6.3", "The message is signed and contains 8-bit data, and the next server does not "
               "accept 8-bit data; converting it would break the signature, so it was not sent." },
    { ".1.1", "The recipient's mailbox does not exist at the destination." },
    { ".1.2", "The recipient's domain does not exist or does not accept mail." },
    { ".1.3", "The recipient's address is not a valid mail address." },
    { ".1.6", "The recipient's mailbox has moved and no forwarding address is known." },
    { ".2.1", "The recipient's mailbox is disabled and does not accept messages." },
    { ".2.2", "The recipient's mailbox is full." },
    { ".2.3", "The message is larger than the recipient's mailbox accepts." },
    { ".3.4", "The message is larger than the destination server accepts." },
    { ".4.1", "The destination server did not answer." },
    { ".4.2", "The connection to the destination server was broken." },
    { ".4.4", "No mail server could be found for the recipient's domain." },
    { ".4.7", "The message could not be delivered before its delivery time expired." },
    { ".5.0", "The destination server did not understand our mail protocol exchange." },
    { ".6.3", "The message needed a conversion that could not be done." },
    { ".7.0", "The destination refused the message for a security reason." },
    { ".7.1", "The destination's policy does not allow this sender to deliver to this recipient." },
    { ".7.10", "The destination requires encryption that could not be negotiated." },
    { ".7.8", "The destination refused our credentials." },
};

const char *dsn_sentence(const char *status)
{
    const char *rest = status ? strchr(status, '.') : NULL;
    for (size_t i = 0; status && i < sizeof sentences / sizeof sentences[0]; i++) {
        const char *c = sentences[i].code;
        if ((c[0] == '.' && rest && strcmp(rest, c) == 0) || strcmp(status, c) == 0)
            return sentences[i].sentence;
    }
    if (status && status[0] == '4')
        return "The destination could not accept the message for the time being.";
    if (status && status[0] == '2')
        return "The message was delivered.";
    return "The destination rejected the message permanently.";
}

/* ---- pieces ---- */

/* A caller's string for a header field: present, one line, not absurdly long. */
static int bad_field(const char *s)
{
    return !s || strpbrk(s, "\r\n") != NULL || strlen(s) > DSN_FIELD_MAX;
}

static int hexv(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* xtext (RFC 3461 4) decoded to printable ASCII; where that is not possible
 * the text is kept as written, which is printable by definition. */
static void xtext_decode(char *dst, size_t cap, const char *src)
{
    size_t k = 0;
    for (const char *s = src; *s; s++) {
        char c = *s;
        if (c == '+') {
            int hi = hexv(s[1]), lo = hi < 0 ? -1 : hexv(s[2]);
            if (lo < 0 || hi * 16 + lo < 0x21 || hi * 16 + lo > 0x7e)
                goto raw;
            c = (char)(hi * 16 + lo);
            s += 2;
        }
        if (k + 1 >= cap)
            goto raw;
        dst[k++] = c;
    }
    dst[k] = '\0';
    return;
raw:
    clean(dst, cap, src);
}

static int wants(const struct env_rcpt *r, enum dsn_action a)
{
    if (r->notify == 0)
        return 1;   /* RFC 3461 4.1: no NOTIFY means failure (and delay, our choice) */
    if (r->notify & ADDR_NOTIFY_NEVER)
        return 0;
    return (r->notify & (a == DSN_FAILED ? ADDR_NOTIFY_FAILURE : ADDR_NOTIFY_DELAY)) != 0;
}

/* The recipient's status code if it looks like one (digits and dots, as the
 * envelope reader insists), else the generic code for the action. */
static const char *status_of(const struct env_rcpt *r, enum dsn_action a)
{
    size_t n = strnlen(r->status, sizeof r->status);
    if (n > 0 && n < sizeof r->status && strspn(r->status, "0123456789.") == n &&
        (r->status[0] == '4' || r->status[0] == '5') && r->status[1] == '.')
        return r->status;
    return a == DSN_FAILED ? "5.0.0" : "4.0.0";
}

/* Where the line starting at i ends (*end, before its line break) and the
 * next begins. CRLF, LF and CR each end a line, as ob_original writes them. */
static size_t line_next(const char *h, size_t len, size_t i, size_t *end)
{
    size_t e = i;
    while (e < len && h[e] != '\r' && h[e] != '\n')
        e++;
    *end = e;
    if (e < len && h[e] == '\r' && e + 1 < len && h[e + 1] == '\n')
        return e + 2;
    return e < len ? e + 1 : len;
}

/* Does the line h[i..e) start a header field: a name of printable ASCII
 * other than ':', then ':' (RFC 5322 2.2)? */
static int field_start(const char *h, size_t i, size_t e)
{
    size_t j = i;
    while (j < e && h[j] != ':' && (unsigned char)h[j] >= 33 && (unsigned char)h[j] <= 126)
        j++;
    return j > i && j < e && h[j] == ':';
}

/* The length of the original's header fields: up to the empty line that
 * ends them, or up to the first line that is neither a field nor the
 * continuation of one (a message with no empty line is not all header: its
 * text is content, and content never goes back). Whole fields only, at
 * most DSN_HEADERS_MAX octets; *cut says fields were left out. */
static size_t header_section(const char *h, size_t len, int *cut)
{
    size_t i = 0, keep = 0, e;
    int in_field = 0;
    *cut = 0;
    while (i < len) {
        size_t next = line_next(h, len, i, &e);
        int cont = e > i && (h[i] == ' ' || h[i] == '\t');
        if (cont && in_field) {
            i = next;
            continue;
        }
        if (e == i || cont || !field_start(h, i, e))
            break;
        /* a field starts at i: the ones before it are whole */
        if (i > DSN_HEADERS_MAX) {
            *cut = 1;
            return keep;
        }
        keep = i;
        in_field = 1;
        i = next;
    }
    if (i > DSN_HEADERS_MAX) {
        *cut = 1;
        return keep;
    }
    return i;
}

static int occurs(const char *hay, size_t hlen, const char *needle)
{
    size_t nl = strlen(needle);
    for (size_t i = 0; i + nl <= hlen; i++)
        if (memcmp(hay + i, needle, nl) == 0)
            return 1;
    return 0;
}

/* Original text, line ends made CRLF, NUL made '?', a line longer than
 * fold_at folded, ending in CRLF. */
static void ob_original(struct obuf *o, const char *h, size_t len, size_t fold_at)
{
    size_t col = 0;
    for (size_t i = 0; i < len; i++) {
        char c = h[i];
        if (c == '\r' || c == '\n') {
            if (c == '\r' && i + 1 < len && h[i + 1] == '\n')
                i++;
            ob_put(o, "\r\n", 2);
            col = 0;
            continue;
        }
        if (col >= fold_at) {
            ob_put(o, "\r\n ", 3);
            col = 1;
        }
        ob_put(o, c ? &c : "?", 1);
        col++;
    }
    if (col)
        ob_put(o, "\r\n", 2);
}

static void human_part(struct obuf *o, const struct dsn_request *q, int cut, char *tmp,
                       size_t cap)
{
    const struct envelope *e = q->env;
    char who[ADDR_PATH_MAX + 8];

    ob_line(o, "Content-Type: text/plain; charset=us-ascii");
    ob_line(o, "");
    clean(tmp, cap, q->host);
    ob_str(o, "This is an automatically generated Delivery Status Notification from ");
    ob_str(o, tmp);
    ob_line(o, ".");
    ob_line(o, "");
    if (q->action == DSN_FAILED) {
        ob_line(o, "Your message could not be delivered to the following recipients.");
    } else {
        ob_line(o, "Your message has not yet been delivered to the following recipients.");
        if (q->retry_until) {
            clean(tmp, cap, q->retry_until);
            ob_str(o, "The mail system will keep trying until ");
            ob_str(o, tmp);
            ob_line(o, ";");
        } else {
            ob_line(o, "The mail system will keep trying;");
        }
        ob_line(o, "you do not need to send the message again.");
    }
    for (size_t i = 0; i < q->n_which; i++) {
        const struct env_rcpt *r = &e->rcpt[q->which[i]];
        if (!wants(r, q->action))
            continue;
        ob_line(o, "");
        if (addr_format_mailbox(&r->addr, who, sizeof who) < 0)
            who[0] = '\0';
        clean(tmp, cap, who);
        ob_str(o, "  ");
        ob_line(o, tmp);
        /* The address as the sender wrote it, when it was rewritten (or the
         * sender gave an ORCPT): what they will recognise. */
        if (r->orcpt_type[0]) {
            xtext_decode(tmp, cap, r->orcpt);
            ob_str(o, "    Original address: ");
            ob_line(o, tmp);
        }
        const char *st = status_of(r, q->action);
        ob_wrapped(o, "    ", "    ", dsn_sentence(st));
        if (r->why[0]) {
            clean(tmp, cap, r->why);
            ob_wrapped(o, "    ", "    ", tmp);
        }
        if (r->reply[0]) {
            char line[DSN_TEXT_MAX + ENV_NAME_MAX + 32];
            clean(tmp, cap, r->reply);
            if (r->remote[0]) {
                char host[ENV_NAME_MAX + 1];
                clean(host, sizeof host, r->remote);
                snprintf(line, sizeof line, "The server %s replied: %s", host, tmp);
            } else {
                snprintf(line, sizeof line, "The server replied: %s", tmp);
            }
            ob_wrapped(o, "    ", "    ", line);
        }
        snprintf(tmp, cap, "    (status %s)", st);
        ob_line(o, tmp);
    }
    if (cut) {
        ob_line(o, "");
        snprintf(tmp, cap, "Only the first %u octets of your message's header are included "
                 "below.", (unsigned)DSN_HEADERS_MAX);
        ob_line(o, tmp);
    }
    ob_line(o, "");
}

static void status_part(struct obuf *o, const struct dsn_request *q, char *tmp, size_t cap)
{
    const struct envelope *e = q->env;
    char who[ADDR_PATH_MAX + 8];

    ob_line(o, "Content-Type: message/delivery-status");
    ob_line(o, "");
    ob_field(o, "Reporting-MTA", "dns; ", q->host);
    if (e->envid[0]) {
        xtext_decode(tmp, cap, e->envid);
        ob_field(o, "Original-Envelope-Id", tmp, NULL);
    }
    ob_field(o, "Arrival-Date", q->arrival_date, NULL);
    for (size_t i = 0; i < q->n_which; i++) {
        const struct env_rcpt *r = &e->rcpt[q->which[i]];
        if (!wants(r, q->action))
            continue;
        ob_line(o, "");
        if (addr_format_mailbox(&r->addr, who, sizeof who) < 0)
            who[0] = '\0';
        clean(tmp, cap, who);
        ob_field(o, "Final-Recipient", "rfc822; ", tmp);
        if (r->orcpt_type[0]) {
            char type[ADDR_ORCPT_TYPE_MAX + 1];
            clean(type, sizeof type, r->orcpt_type);
            xtext_decode(tmp, cap, r->orcpt);
            ob_str(o, "Original-Recipient: ");
            ob_str(o, type);
            ob_str(o, "; ");
            ob_line(o, tmp);
        }
        ob_field(o, "Action", q->action == DSN_FAILED ? "failed" : "delayed", NULL);
        ob_field(o, "Status", status_of(r, q->action), NULL);
        if (r->remote[0]) {
            clean(tmp, cap, r->remote);
            ob_field(o, "Remote-MTA", "dns; ", tmp);
        }
        if (r->reply[0]) {
            clean(tmp, cap, r->reply);
            ob_wrapped(o, "Diagnostic-Code: smtp; ", " ", tmp);
        }
        if (q->action == DSN_DELAYED && q->retry_until)
            ob_field(o, "Will-Retry-Until", q->retry_until, NULL);
    }
    ob_line(o, "");
}

enum dsn_result dsn_compose(const struct dsn_request *q, char *buf, size_t n, size_t *len)
{
    struct obuf o = { buf, n, 0 };
    const struct envelope *e = q->env;
    char tmp[DSN_TEXT_MAX];
    char boundary[ENV_ID_MAX + 64];
    char sender[ADDR_PATH_MAX + 8];
    size_t wanted = 0;

    *len = 0;
    if (n > 0)
        buf[0] = '\0';
    if (!e || bad_field(q->host) || !q->host[0] || bad_field(q->date) ||
        bad_field(q->arrival_date) || bad_field(q->message_id) ||
        (q->retry_until && bad_field(q->retry_until)) || (q->n_which && !q->which) ||
        (q->original_len && !q->original))
        return DSN_BAD_INPUT;
    if (e->from.null_path)
        return DSN_NULL_SENDER;
    for (size_t i = 0; i < q->n_which; i++) {
        if (q->which[i] >= e->n_rcpt)
            return DSN_BAD_INPUT;
        wanted += wants(&e->rcpt[q->which[i]], q->action);
    }
    if (wanted == 0)
        return DSN_NOBODY;
    if (addr_format_path(&e->from, sender, sizeof sender) < 0)
        return DSN_BAD_INPUT;

    /* The whole original only when configured and the sender did not ask
     * for less (RFC 3461 4.3 RET=HDRS). */
    int full = q->content == DSN_CONTENT_FULL && e->ret != ADDR_RET_HDRS;
    int cut = 0;
    size_t hlen = !q->original ? 0 : full ? q->original_len
                                          : header_section(q->original, q->original_len, &cut);
    for (unsigned k = 0;; k++) {
        char delim[sizeof boundary + 2];
        snprintf(boundary, sizeof boundary, "=_imsvc-dsn_%s_%u", e->id, k);
        snprintf(delim, sizeof delim, "--%s", boundary);
        if (!occurs(q->original, hlen, delim))
            break;
    }

    clean(tmp, sizeof tmp, q->host);
    ob_str(&o, "From: Mail Delivery System <postmaster@");
    ob_str(&o, tmp);
    ob_line(&o, ">");
    ob_field(&o, "To", sender, NULL);
    ob_field(&o, "Date", q->date, NULL);
    ob_field(&o, "Message-ID", q->message_id, NULL);
    ob_field(&o, "Subject", q->action == DSN_FAILED ? "Delivery Status Notification (Failure)"
                                                   : "Delivery Status Notification (Delay)", NULL);
    ob_line(&o, "Auto-Submitted: auto-replied");
    ob_line(&o, "MIME-Version: 1.0");
    ob_line(&o, "Content-Type: multipart/report; report-type=delivery-status;");
    ob_str(&o, "\tboundary=\"");
    ob_str(&o, boundary);
    ob_line(&o, "\"");
    ob_line(&o, "");
    ob_line(&o, "This is a MIME-formatted delivery status notification.");
    ob_line(&o, "");

    ob_str(&o, "--");
    ob_line(&o, boundary);
    human_part(&o, q, cut, tmp, sizeof tmp);
    ob_str(&o, "--");
    ob_line(&o, boundary);
    status_part(&o, q, tmp, sizeof tmp);
    ob_str(&o, "--");
    ob_line(&o, boundary);
    if (full) {
        /* a message's own lines may be 998 octets long: only longer ones fold */
        ob_line(&o, "Content-Type: message/rfc822");
        ob_line(&o, "");
        ob_original(&o, q->original, hlen, DSN_LINE_MAX);
    } else {
        ob_line(&o, "Content-Type: text/rfc822-headers");
        ob_line(&o, "");
        ob_original(&o, q->original, hlen, DSN_HARD_MAX);
    }
    ob_line(&o, "");
    ob_str(&o, "--");
    ob_str(&o, boundary);
    ob_line(&o, "--");

    *len = o.len;
    if (o.len >= n) {
        if (n > 0)
            buf[0] = '\0';
        return DSN_TOO_SMALL;
    }
    buf[o.len] = '\0';
    return DSN_OK;
}
