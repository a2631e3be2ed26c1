/* tracklog.c - the message tracking log's lines (see tracklog.h).
 *
 * The reader must reject rather than guess: a line it cannot read exactly
 * is skipped by `imsvc track`, never half-read.
 */
#include "tracklog.h"

#include <stdio.h>
#include <string.h>

static const char *const event_names[TRACK_EVENT_COUNT] = {
    "RECEIVE", "FILTER", "DEFER", "DELIVER", "FAIL", "DSN", "BADMAIL",
};

const char *track_event_name(enum track_event e)
{
    return (unsigned)e < TRACK_EVENT_COUNT ? event_names[e] : NULL;
}

int track_event_parse(const char *s, size_t len)
{
    for (int i = 0; i < TRACK_EVENT_COUNT; i++)
        if (strlen(event_names[i]) == len && memcmp(event_names[i], s, len) == 0)
            return i;
    return -1;
}

void track_set(char *field, size_t cap, const char *text)
{
    if (cap == 0)
        return;
    size_t n = text ? strlen(text) : 0;
    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(field, text, n);
    field[n] = '\0';
}

/* "2026-12-02T06:31:02.123Z", or (prefix) its first len octets */
static int time_shape(const char *s, size_t len)
{
    static const char pat[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    if (len > TRACK_TIME_LEN)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (pat[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != pat[i])
            return 0;
    }
    return 1;
}

static int time_valid(const char *s, size_t len)
{
    return len == TRACK_TIME_LEN && time_shape(s, len);
}

int track_since_valid(const char *s)
{
    size_t n = strlen(s);
    return n >= 10 && time_shape(s, n);
}

/* One field; returns the octets written, or (size_t)-1 when out of room. */
static size_t put_field(char *buf, size_t n, const char *v)
{
    size_t len = strlen(v), o = 0;
    int quote = len > 0 && (strpbrk(v, ",\"") || v[0] == ' ' || v[len - 1] == ' ');
    if (quote) {
        if (o + 1 >= n)
            return (size_t)-1;
        buf[o++] = '"';
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c == 0x7f)
            c = ' ';   /* a field never splits a line */
        size_t need = c == '"' ? 2 : 1;
        if (o + need >= n)
            return (size_t)-1;
        if (c == '"')
            buf[o++] = '"';
        buf[o++] = (char)c;
    }
    if (quote) {
        if (o + 1 >= n)
            return (size_t)-1;
        buf[o++] = '"';
    }
    return o;
}

int track_format(const struct track_line *t, char *buf, size_t n)
{
    const char *ev = track_event_name(t->event);
    const char *fields[8] = { t->when, ev, t->queue_id, t->message_id, t->sender,
                              t->recipient, t->remote, t->reply };
    size_t o = 0;
    if (n == 0)
        return -1;
    buf[0] = '\0';
    if (!ev || !time_valid(t->when, strlen(t->when)))
        return -1;
    for (int i = 0; i < 8; i++) {
        if (i) {
            if (o + 1 >= n)
                goto full;
            buf[o++] = ',';
        }
        size_t k = put_field(buf + o, n - o, fields[i]);
        if (k == (size_t)-1)
            goto full;
        o += k;
    }
    if (o + 3 > n)
        goto full;
    buf[o++] = '\r';
    buf[o++] = '\n';
    buf[o] = '\0';
    return (int)o;
full:
    buf[0] = '\0';
    return -1;
}

/* One field from *p (up to end) into out (cap); moves *p past its comma.
 * Returns 1 when a comma followed, 0 at the end, -1 when malformed. */
static int get_field(const char **p, const char *end, char *out, size_t cap)
{
    const char *s = *p;
    size_t o = 0;
    if (s < end && *s == '"') {
        s++;
        for (;;) {
            if (s >= end)
                return -1;   /* no closing quote */
            unsigned char c = (unsigned char)*s++;
            if (c == '"') {
                if (s < end && *s == '"') {
                    c = '"';
                    s++;
                } else {
                    break;
                }
            }
            if (c < 0x20 || c == 0x7f || o + 1 >= cap)
                return -1;
            out[o++] = (char)c;
        }
    } else {
        while (s < end && *s != ',') {
            unsigned char c = (unsigned char)*s++;
            if (c == '"' || c < 0x20 || c == 0x7f || o + 1 >= cap)
                return -1;
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
    if (s == end) {
        *p = s;
        return 0;
    }
    if (*s != ',')
        return -1;   /* text after a closing quote */
    *p = s + 1;
    return 1;
}

int track_parse(const char *line, size_t len, struct track_line *t)
{
    memset(t, 0, sizeof *t);
    if (len > 0 && line[len - 1] == '\n')
        len--;
    if (len > 0 && line[len - 1] == '\r')
        len--;
    if (len == 0 || len >= TRACK_LINE_MAX)
        return -1;
    const char *p = line, *end = line + len;
    char ev[16];
    struct { char *out; size_t cap; } f[8] = {
        { t->when, sizeof t->when }, { ev, sizeof ev }, { t->queue_id, sizeof t->queue_id },
        { t->message_id, sizeof t->message_id }, { t->sender, sizeof t->sender },
        { t->recipient, sizeof t->recipient }, { t->remote, sizeof t->remote },
        { t->reply, sizeof t->reply },
    };
    for (int i = 0; i < 8; i++) {
        int r = get_field(&p, end, f[i].out, f[i].cap);
        if (r < 0 || (r == 0 && i < 7) || (r == 1 && i == 7))
            goto bad;
    }
    int e = track_event_parse(ev, strlen(ev));
    if (e < 0 || !time_valid(t->when, strlen(t->when)) ||
        (t->queue_id[0] && !env_id_valid(t->queue_id)))
        goto bad;
    t->event = (enum track_event)e;
    return 0;
bad:
    memset(t, 0, sizeof *t);
    return -1;
}

static int lc(int c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

/* a and b equal case-insensitively once each loses one pair of <>. */
static int same_bracketed(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la >= 2 && a[0] == '<' && a[la - 1] == '>')
        a++, la -= 2;
    if (lb >= 2 && b[0] == '<' && b[lb - 1] == '>')
        b++, lb -= 2;
    if (la != lb)
        return 0;
    for (size_t i = 0; i < la; i++)
        if (lc((unsigned char)a[i]) != lc((unsigned char)b[i]))
            return 0;
    return 1;
}

int track_same_msgid(const char *a, const char *b)
{
    return a && b && a[0] && b[0] && same_bracketed(a, b);
}

int track_matches(const struct track_query *q, const struct track_line *t)
{
    if (q->message_id && q->message_id[0] && !track_same_msgid(q->message_id, t->message_id))
        return 0;
    if (q->sender && q->sender[0] && !same_bracketed(q->sender, t->sender))
        return 0;
    if (q->recipient && q->recipient[0] && !same_bracketed(q->recipient, t->recipient))
        return 0;
    if (q->since && q->since[0] && strncmp(t->when, q->since, strlen(q->since)) < 0)
        return 0;
    return 1;
}

/* The Message-ID scanner ------------------------------------------------- */

enum { MS_BOL, MS_NAME, MS_VALUE, MS_SKIP, MS_BLANK };

void track_msgid_init(struct track_msgid *m)
{
    memset(m, 0, sizeof *m);
}

static void value_put(struct track_msgid *m, char c)
{
    if (c == '\t')
        c = ' ';
    if (c == ' ' && (m->len == 0 || m->value[m->len - 1] == ' '))
        return;   /* leading and repeated white space (an unfolded line) go */
    if ((unsigned char)c < 0x20 || c == 0x7f)
        return;
    if (m->len < TRACK_MSGID_MAX)
        m->value[m->len++] = c;
}

void track_msgid_feed(struct track_msgid *m, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len && !m->done; i++) {
        unsigned char c = p[i];
        switch (m->state) {
        case MS_BOL:
            if (c == '\r') {
                m->state = MS_BLANK;
            } else if (c == '\n') {
                m->done = 1;   /* an empty line ends the header */
            } else if (c == ' ' || c == '\t') {
                /* a folded line goes on with the field before it */
                if (m->collecting) {
                    value_put(m, ' ');
                    m->state = MS_VALUE;
                } else {
                    m->state = MS_SKIP;
                }
            } else {
                if (m->collecting) {
                    m->collecting = 0;
                    m->found = 1;
                }
                m->nlen = 0;
                m->state = MS_NAME;
                i--;   /* read the name from this octet */
            }
            break;
        case MS_BLANK:
            if (c == '\n') {
                m->done = 1;
            } else {
                m->state = MS_SKIP;   /* a stray CR at the start of a line */
                i--;
            }
            break;
        case MS_NAME:
            if (c == ':') {
                if (!m->found && m->nlen == 10 && memcmp(m->name, "message-id", 10) == 0) {
                    m->collecting = 1;
                    m->state = MS_VALUE;
                } else {
                    m->state = MS_SKIP;
                }
            } else if (c == '\n') {
                m->state = MS_BOL;
            } else if (m->nlen < sizeof m->name) {
                m->name[m->nlen++] = (char)lc(c);
            } else {
                m->state = MS_SKIP;
            }
            break;
        case MS_VALUE:
            if (c == '\n')
                m->state = MS_BOL;
            else if (c != '\r')
                value_put(m, (char)c);
            break;
        default:   /* MS_SKIP */
            if (c == '\n')
                m->state = MS_BOL;
            break;
        }
    }
    if (m->done && m->collecting) {
        m->collecting = 0;
        m->found = 1;
    }
}

const char *track_msgid_value(struct track_msgid *m)
{
    while (m->len > 0 && m->value[m->len - 1] == ' ')
        m->len--;
    m->value[m->len] = '\0';
    return m->value;
}
