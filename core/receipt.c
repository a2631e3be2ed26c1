/* receipt.c - the decisions of the one way into the queue (see receipt.h).
 *
 * Pure functions over the caller's data: never reads a clock or a file, never
 * reports. A rule that differs between sources is a row here, not a branch
 * in the service.
 */
#include "receipt.h"

#include <stdio.h>
#include <string.h>

#include "smtpd.h"
#include "storage.h"

/* One limit: the engine refuses while the data streams in, this module for
 * every source at the end. */
_Static_assert(RECEIPT_MAX_HOPS == SMTPD_MAX_HOPS, "one hop limit for every source");

/* What applies to each source. A notice is made here from a queued message:
 * its size follows the original's, and refusing it would leave the sender
 * untold, so only the hop limit applies (its own header has no Received
 * field: the original's are inside its body); the filter sees what comes
 * from outside, not what the service says (as Postfix's cleanup leaves its
 * own bounces unfiltered by default). */
static const struct receipt_policy policies[] = {
    [RECEIPT_SMTP]   = { .filtered = 1, .size_limited = 1, .hop_limited = 1, .retried = 0,
                         .headers_rewritten = 1 },
    [RECEIPT_PICKUP] = { .filtered = 1, .size_limited = 1, .hop_limited = 1, .retried = 1,
                         .headers_rewritten = 1 },
    [RECEIPT_NOTICE] = { .filtered = 0, .size_limited = 0, .hop_limited = 1, .retried = 0,
                         .headers_rewritten = 0 },
};

static int source_ok(enum receipt_source src)
{
    return (unsigned)src < sizeof policies / sizeof policies[0];
}

void receipt_policy(enum receipt_source src, struct receipt_policy *out)
{
    if (!out)
        return;
    if (!source_ok(src)) {
        memset(out, 0, sizeof *out);
        return;
    }
    *out = policies[src];
}

const char *receipt_source_name(enum receipt_source src)
{
    switch (src) {
    case RECEIPT_SMTP:
        return "SMTP";
    case RECEIPT_PICKUP:
        return "pickup";
    case RECEIPT_NOTICE:
        return "notice";
    }
    return "unknown";
}

/* Received ------------------------------------------------------------------ */

int receipt_received(enum receipt_source src, const struct smtpd *session, const char *host,
                     const char *id, const char *date, char *buf, size_t n)
{
    if (!buf || n == 0)
        return -1;
    buf[0] = '\0';
    switch (src) {
    case RECEIPT_SMTP:
        if (!session || !id || !date)
            return -1;
        return smtpd_received(session, id, date, buf, n);
    case RECEIPT_PICKUP: {
        if (!host || !id || !date)
            return -1;
        int w = snprintf(buf, n, "Received: from pickup directory by %s with imsvc\r\n"
                         "\tid %s; %s\r\n", host, id, date);
        if (w < 0 || (size_t)w >= n) {
            buf[0] = '\0';
            return -1;
        }
        return w;
    }
    case RECEIPT_NOTICE:
        return 0;
    }
    return -1;
}

/* Counting ------------------------------------------------------------------ */

void receipt_count_init(struct receipt_count *c)
{
    memset(c, 0, sizeof *c);
}

static int field_is_received(const struct receipt_count *c)
{
    static const char name[] = "received:";
    if (c->line < sizeof c->field)
        return 0;
    for (size_t i = 0; i < sizeof c->field; i++) {
        char ch = c->field[i];
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        if (ch != name[i])
            return 0;
    }
    return 1;
}

void receipt_count_feed(struct receipt_count *c, const void *p, size_t len)
{
    const unsigned char *s = p;
    c->octets += len;
    for (size_t i = 0; i < len && !c->body; i++) {
        unsigned char ch = s[i];
        if (ch == '\n') {
            if (c->line == 0)
                c->body = 1;   /* the empty line: the header section ends */
            else if (field_is_received(c))
                c->hops++;
            c->line = 0;
            continue;
        }
        if (ch == '\r')
            continue;   /* a CR is part of the line end */
        if (c->line < sizeof c->field)
            c->field[c->line] = (char)ch;
        c->line++;
    }
}

enum receipt_outcome receipt_check(enum receipt_source src, const struct receipt_count *c,
                                   unsigned long long max_size, unsigned max_hops)
{
    struct receipt_policy pol;
    receipt_policy(src, &pol);
    if (pol.size_limited && max_size && c->octets > max_size)
        return RECEIPT_TOO_BIG;
    if (pol.hop_limited && c->hops > (max_hops ? max_hops : RECEIPT_MAX_HOPS))
        return RECEIPT_LOOP;
    return RECEIPT_QUEUED;
}

/* Answers ------------------------------------------------------------------- */

/* The printable part of an untrusted reason: it ends up in a reply line. */
static void copy_reason(char *dst, size_t cap, const char *src)
{
    size_t o = 0;
    for (const char *p = src ? src : ""; *p && o + 1 < cap; p++) {
        unsigned char ch = (unsigned char)*p;
        dst[o++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    dst[o] = '\0';
}

static void set(struct receipt_answer *a, enum receipt_fate fate, int code, const char *status,
                unsigned events, const char *fmt, const char *arg)
{
    a->fate = fate;
    a->code = code;
    a->status = status;
    a->events = events;
    int w = snprintf(a->text, sizeof a->text, fmt, arg ? arg : "");
    if (w < 0)
        a->text[0] = '\0';   /* a longer text is cut: RECEIPT_TEXT_MAX bounds a reply */
}

void receipt_answer(enum receipt_source src, enum receipt_outcome o, unsigned long err,
                    const char *reason, struct receipt_answer *out)
{
    char why[RECEIPT_TEXT_MAX - 64];
    copy_reason(why, sizeof why, reason);
    int pickup = src == RECEIPT_PICKUP;
    memset(out, 0, sizeof *out);
    switch (o) {
    case RECEIPT_QUEUED:
        set(out, RECEIPT_FATE_TAKEN, 250, "2.0.0", 0, "queued", NULL);
        return;
    case RECEIPT_HELD:
        set(out, RECEIPT_FATE_TAKEN, 250, "2.0.0", RECEIPT_EV_HELD, "held: %s", why);
        return;
    case RECEIPT_REJECTED:
        if (pickup)
            set(out, RECEIPT_FATE_REFUSED, 554, "5.7.1", 0,
                "rejected by the content filter: %s", why);
        else
            set(out, RECEIPT_FATE_REFUSED, 554, "5.7.1", 0, "%s", why);
        return;
    case RECEIPT_FILTER_FAILED:
        set(out, RECEIPT_FATE_RETRY, 451, "4.3.0", RECEIPT_EV_FILTER_FAILED,
            "the content filter failed; try again later", NULL);
        return;
    case RECEIPT_TOO_BIG:
        if (pickup)
            set(out, RECEIPT_FATE_REFUSED, 552, "5.3.4", 0,
                "the file is larger than MaxMessageKB", NULL);
        else
            set(out, RECEIPT_FATE_REFUSED, 552, "5.3.4", 0,
                "Error: message size exceeds fixed maximum message size", NULL);
        return;
    case RECEIPT_LOOP: {
        char hops[160];
        snprintf(hops, sizeof hops, "too many hops (more than %lu Received header fields): "
                 "a mail loop", err ? err : (unsigned long)RECEIPT_MAX_HOPS);
        set(out, RECEIPT_FATE_REFUSED, 554, "5.4.6", 0, pickup ? "%s" : "Error: %s", hops);
        return;
    }
    case RECEIPT_STORE_FAILED: {
        struct storage_reply rp;
        storage_reply(err, &rp);
        set(out, RECEIPT_FATE_RETRY, rp.code, rp.status, rp.full ? 0 : RECEIPT_EV_STORE_FAILED,
            "%s", rp.text);
        return;
    }
    }
    set(out, RECEIPT_FATE_RETRY, 451, "4.3.0", 0, "local error in processing", NULL);
}
