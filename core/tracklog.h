/* tracklog.h - the message tracking log's lines, their reader, and the
 * Message-ID of a message as it streams in; without I/O.
 *
 * One line per event, as Exchange's message tracking log keeps them:
 * comma-separated fields in the order of TRACK_FIELDS, a field quoted ("")
 * when it holds a comma, a quote or leading or trailing spaces, a quote
 * inside doubled. No field can hold a line break: control octets are
 * written as spaces. The reader (track_parse, what `imsvc track` uses)
 * takes exactly what the writer makes and rejects anything else: a wrong
 * field count, an unknown event, an over-long field, a malformed time or
 * queue ID, a stray quote, a control octet.
 *
 * The RECEIVE line carries the Message-ID; later events name the message
 * by its queue ID (and its sender and recipient), which `imsvc track` joins
 * on. Portable core: times are text passed in, no clock, no I/O.
 */
#ifndef IMSVC_TRACKLOG_H
#define IMSVC_TRACKLOG_H

#include <stddef.h>

#include "envelope.h"

enum track_event {
    TRACK_RECEIVE,    /* queued: from an SMTP client, the pickup folder, or a notice */
    TRACK_FILTER,     /* the content filter refused, held or failed on it */
    TRACK_DEFER,      /* a recipient's attempt failed transiently */
    TRACK_DELIVER,    /* a recipient was delivered: to Drop or to a remote host */
    TRACK_FAIL,       /* a recipient failed for good */
    TRACK_DSN,        /* a delivery status notification was queued about it */
    TRACK_BADMAIL,    /* it went to Badmail */
    TRACK_EVENT_COUNT
};

#define TRACK_FIELDS "date-time,event-id,queue-id,message-id,sender-address," \
                     "recipient-address,remote-host,reply"

#define TRACK_TIME_LEN    24     /* "2026-12-02T06:31:02.123Z" */
#define TRACK_MSGID_MAX   250    /* a Message-ID kept; longer ones are cut */
#define TRACK_ADDR_MAX    600    /* a sender or recipient as addr_mailbox_text writes it */
#define TRACK_REMOTE_MAX  300
#define TRACK_REPLY_MAX   1500
#define TRACK_LINE_MAX    8192   /* a written line, CRLF included (every field quoted
                                    and every quote doubled still fits) */

struct track_line {
    char when[TRACK_TIME_LEN + 1];
    enum track_event event;
    char queue_id[ENV_ID_MAX + 1];          /* "" when there is none */
    char message_id[TRACK_MSGID_MAX + 1];
    char sender[TRACK_ADDR_MAX + 1];
    char recipient[TRACK_ADDR_MAX + 1];
    char remote[TRACK_REMOTE_MAX + 1];      /* who replied: a host, "drop directory", a client */
    char reply[TRACK_REPLY_MAX + 1];        /* what it said, or why */
};

/* "RECEIVE", ...; NULL for no event. And back: -1 when unknown. */
const char *track_event_name(enum track_event e);
int track_event_parse(const char *s, size_t len);

/* Copy text into a field of t, cut to fit (never mid UTF-8 sequence is
 * not promised: fields are bounded, not validated). */
void track_set(char *field, size_t cap, const char *text);

/* One line, CRLF-terminated, into buf. Returns its length, or -1 (buf "")
 * when it does not fit or the event or time is not valid. */
int track_format(const struct track_line *t, char *buf, size_t n);

/* Read one line (its CRLF, or LF, may be there or not). Returns 0, or -1
 * with t cleared. Header lines ('#') are for the caller to skip. */
int track_parse(const char *line, size_t len, struct track_line *t);

/* What `imsvc track` looks for; NULL or "" matches anything. Addresses and
 * Message-IDs match case-insensitively, with or without their angle
 * brackets; since is a time in TRACK_FIELDS' form (or a prefix of one: a
 * day "2026-12-02"), and matches lines at or after it. */
struct track_query {
    const char *message_id;
    const char *sender;
    const char *recipient;
    const char *since;
};
int track_matches(const struct track_query *q, const struct track_line *t);
/* Is s usable as a query's since: a prefix of TRACK_FIELDS' time form,
 * the day at least ("2026-12-02", "2026-12-02T06:30")? */
int track_since_valid(const char *s);
/* Only the Message-ID part of the query. */
int track_same_msgid(const char *a, const char *b);

/* The Message-ID field of a message's header, fed in pieces as it arrives;
 * the first one counts, folded lines are unfolded, the search ends at the
 * header's end. Bounded: a value past TRACK_MSGID_MAX is cut. */
struct track_msgid {
    char value[TRACK_MSGID_MAX + 1];
    size_t len;
    int state;
    int found;                  /* a Message-ID field was seen (and ended) */
    int collecting;             /* inside its value */
    int done;                   /* the header ended */
    char name[12];
    size_t nlen;
};
void track_msgid_init(struct track_msgid *m);
void track_msgid_feed(struct track_msgid *m, const void *data, size_t len);
/* The value, trimmed; "" when the header had none. */
const char *track_msgid_value(struct track_msgid *m);

#endif
