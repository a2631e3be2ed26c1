/* protolog.c - the protocol log's records and lines (see protolog.h).
 *
 * Must never keep or write what an AUTH exchange carries, nor content.
 */
#include "protolog.h"

#include <stdio.h>
#include <string.h>

static int upper(int c) { return (c >= 'a' && c <= 'z') ? c - 32 : c; }

static int verb_is(const char *verb, const char *w)
{
    return strcmp(verb, w) == 0;
}

void plog_init(struct plog *p)
{
    memset(p, 0, sizeof *p);
}

static struct plog_cmd *tail(struct plog *p)
{
    if (p->n == 0 || p->untracked)
        return NULL;
    return &p->q[(p->head + p->n - 1) % PLOG_QUEUE_MAX];
}

void plog_command(struct plog *p, const char *line, size_t len, uint64_t now)
{
    struct plog_cmd *t = tail(p);
    /* A client's own transcript shows the "." that ends the content: part
     * of the DATA record, not a command. */
    if (t && t->data) {
        t->cs_bytes += len + 2;
        return;
    }
    if (p->untracked || p->n == PLOG_QUEUE_MAX) {
        p->untracked++;   /* replies still pair up: these are answered in order */
        return;
    }
    struct plog_cmd *c = &p->q[(p->head + p->n) % PLOG_QUEUE_MAX];
    memset(c, 0, sizeof *c);
    size_t i = 0;
    while (i < len && line[i] != ' ') {
        if (i < PLOG_VERB_MAX)
            c->verb[i] = (char)upper((unsigned char)line[i]);
        i++;
    }
    c->verb[i < PLOG_VERB_MAX ? i : PLOG_VERB_MAX] = '\0';
    while (i < len && line[i] == ' ')
        i++;
    size_t alen = len - i;
    if (verb_is(c->verb, "AUTH") || verb_is(c->verb, "XAUTH")) {
        /* the mechanism only: an initial response is AUTH data */
        size_t m = 0;
        while (m < alen && line[i + m] != ' ')
            m++;
        alen = m;
    }
    if (alen > PLOG_ARGS_MAX)
        alen = PLOG_ARGS_MAX;
    memcpy(c->args, line + i, alen);
    c->args[alen] = '\0';
    c->cs_bytes = len + 2;
    c->t0 = now;
    p->n++;
}

void plog_secret(struct plog *p, size_t len)
{
    struct plog_cmd *t = tail(p);
    if (t)
        t->cs_bytes += len + 2;
}

void plog_content(struct plog *p, size_t len)
{
    struct plog_cmd *t = tail(p);
    if (t && t->data)
        t->cs_bytes += len;
}

static int digit(char c) { return c >= '0' && c <= '9'; }

int plog_reply(struct plog *p, const char *line, size_t len, uint64_t now,
               struct plog_record *rec)
{
    if (!p->in_reply) {
        p->in_reply = 1;
        p->reply_bytes = 0;
        p->reply_t0 = now;
    }
    p->reply_bytes += len + 2;
    int coded = len >= 3 && digit(line[0]) && digit(line[1]) && digit(line[2]);
    if (coded && len > 3 && line[3] == '-')
        return 0;   /* more lines of this reply follow */
    p->in_reply = 0;
    int code = coded ? (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0') : 0;
    unsigned long long bytes = p->reply_bytes;
    memset(rec, 0, sizeof *rec);
    rec->status = code;
    if (p->n > 0) {
        struct plog_cmd *c = &p->q[p->head];
        int auth = verb_is(c->verb, "AUTH") || verb_is(c->verb, "XAUTH");
        if ((code == 334 && auth) || (code == 354 && verb_is(c->verb, "DATA") && !c->data)) {
            c->sc_bytes += bytes;   /* the exchange or the message goes on */
            if (code == 354)
                c->data = 1;
            return 0;
        }
        memcpy(rec->verb, c->verb, sizeof rec->verb);
        memcpy(rec->args, c->args, sizeof rec->args);
        rec->cs_bytes = c->cs_bytes;
        rec->sc_bytes = c->sc_bytes + bytes;
        rec->ms = now >= c->t0 ? now - c->t0 : 0;
        p->head = (p->head + 1) % PLOG_QUEUE_MAX;
        p->n--;
        return 1;
    }
    if (p->untracked) {
        p->untracked--;
        strcpy(rec->verb, "?");   /* a command the queue had no room to keep */
        rec->sc_bytes = bytes;
        return 1;
    }
    rec->sc_bytes = bytes;
    rec->ms = now >= p->reply_t0 ? now - p->reply_t0 : 0;
    return 1;
}

size_t plog_escape(const char *in, size_t len, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    if (cap < 2) {
        if (cap)
            out[0] = '\0';
        return 0;
    }
    if (!in || len == 0) {
        out[0] = '-';
        out[1] = '\0';
        return 1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == ' ') {
            if (o + 1 >= cap)
                break;
            out[o++] = '+';
        } else if (c < 0x21 || c > 0x7e || c == '%') {
            if (o + 3 >= cap)
                break;
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else {
            if (o + 1 >= cap)
                break;
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
    return o;
}

static const char *field(const char *s, char *buf, size_t cap)
{
    plog_escape(s, s ? strlen(s) : 0, buf, cap);
    return buf;
}

int plog_format(const struct plog_where *w, const struct plog_record *r, char *buf, size_t n)
{
    char cip[PLOG_FIELD_MAX], user[PLOG_FIELD_MAX], site[PLOG_FIELD_MAX], sname[PLOG_FIELD_MAX],
         sip[PLOG_FIELD_MAX], verb[PLOG_VERB_MAX * 3 + 2], args[PLOG_ARGS_MAX * 3 + 2],
         port[16], status[16];
    if (w->s_port)
        snprintf(port, sizeof port, "%u", w->s_port);
    else
        strcpy(port, "-");
    if (r->status)
        snprintf(status, sizeof status, "%d", r->status);
    else
        strcpy(status, "-");
    int k = snprintf(buf, n, "%s %s %s %s %s %s %s %s %s %s %s %llu %llu %llu\r\n",
                     w->date && w->date[0] ? w->date : "-", w->time && w->time[0] ? w->time : "-",
                     field(w->c_ip, cip, sizeof cip), field(w->user, user, sizeof user),
                     field(w->site, site, sizeof site), field(w->s_name, sname, sizeof sname),
                     field(w->s_ip, sip, sizeof sip), port,
                     field(r->verb, verb, sizeof verb), field(r->args, args, sizeof args),
                     status, r->sc_bytes, r->cs_bytes, (unsigned long long)r->ms);
    if (k < 0 || (size_t)k >= n) {
        if (n)
            buf[0] = '\0';
        return -1;
    }
    return k;
}

int plog_header(const char *software, const char *date, const char *time, char *buf, size_t n)
{
    int k = snprintf(buf, n, "#Software: %s\r\n#Version: 1.0\r\n#Date: %s %s\r\n#Fields: %s\r\n",
                     software, date, time, PLOG_FIELDS);
    if (k < 0 || (size_t)k >= n) {
        if (n)
            buf[0] = '\0';
        return -1;
    }
    return k;
}
