/* receipt.h - the decisions of the one way into the queue, sans I/O.
 *
 * Every message enters the queue through service/receive/receive.c, whatever brought
 * it: an SMTP session, a file in the pickup folder, or a notice the service
 * composed itself (an NDR, a delay notification). What differs between those
 * sources is data here, not a copy of the code:
 *   - the Received field each source writes (receipt_received),
 *   - which limits and which content filter apply (receipt_policy),
 *   - what each outcome means for the source: the SMTP reply, what becomes of
 *     a pickup file, which events are reported (receipt_answer).
 * The hop and size limits are counted here over the octets written
 * (receipt_count), the same way for every source.
 *
 * Portable core: no windows.h, no clock, no I/O, no reporting; Win32 errors
 * are plain numbers (core/storage.h classifies them).
 */
#ifndef IMSVC_RECEIPT_H
#define IMSVC_RECEIPT_H

#include <stddef.h>

struct smtpd;

/* Received header fields a message may carry before it is refused as a
 * mail loop (RFC 5321 6.3), unless MaxHops says otherwise; the SMTP engine
 * refuses at the same count while the data streams in (SMTPD_MAX_HOPS is
 * this default). */
#define RECEIPT_MAX_HOPS 50u

#define RECEIPT_TEXT_MAX 512u   /* an answer's text, with its NUL */

enum receipt_source {
    RECEIPT_SMTP,     /* an SMTP session (core/smtpd holds its transaction) */
    RECEIPT_PICKUP,   /* a .eml file an application dropped into Pickup */
    RECEIPT_NOTICE    /* a notice the service composed (core/dsn) */
};

/* What applies to a source. */
struct receipt_policy {
    int filtered;       /* the content filter runs (ContentFilter) */
    int size_limited;   /* MaxMessageKB applies */
    int hop_limited;    /* the hop limit (MaxHops) applies */
    int retried;        /* a failure leaves the source to be tried again
                           (a pickup file stays): its repeated events are
                           limited by the caller */
    int headers_rewritten; /* RewriteHeaders applies (core/hdrrewrite.h): not to
                           the service's own notices */
};
void receipt_policy(enum receipt_source src, struct receipt_policy *out);

/* The Received field a source writes first, ending in CRLF, NUL-terminated
 * in buf. session: the SMTP engine (RECEIPT_SMTP only; it knows HELO, TLS,
 * AUTH and the recipient). host: this server's name; id: the queue ID; date:
 * RFC 5322 date-time. A notice carries none (it is made here, and its own
 * header says so): returns 0 and buf is "". Returns the length, or -1 when
 * buf is too small or the arguments do not fit the source. */
int receipt_received(enum receipt_source src, const struct smtpd *session, const char *host,
                     const char *id, const char *date, char *buf, size_t n);

/* Octets and hops of a message as it is written (the source's own Received
 * field excluded: it is counted by the caller not feeding it). Received
 * fields are counted in the header section only, up to its first empty
 * line; a field name is recognised at the start of a line whatever its
 * case. Line ends may be CRLF or LF. */
struct receipt_count {
    unsigned long long octets;
    unsigned hops;
    int body;           /* past the header section */
    size_t line;        /* octets of the current line so far */
    char field[9];      /* its first octets, for "Received:" */
};
void receipt_count_init(struct receipt_count *c);
void receipt_count_feed(struct receipt_count *c, const void *p, size_t len);

enum receipt_outcome {
    RECEIPT_QUEUED,         /* committed to the queue */
    RECEIPT_HELD,           /* committed into Hold: the filter held it */
    RECEIPT_REJECTED,       /* the content filter refused it (its reason) */
    RECEIPT_FILTER_FAILED,  /* the filter did not answer: try again later */
    RECEIPT_TOO_BIG,        /* larger than MaxMessageKB */
    RECEIPT_LOOP,           /* more Received fields than the hop limit */
    RECEIPT_STORE_FAILED    /* the queue could not store it (a Win32 error) */
};

/* The limits over what was written: RECEIPT_QUEUED when the message may go
 * on, else RECEIPT_TOO_BIG or RECEIPT_LOOP. max_size: octets, 0 for none;
 * max_hops: Received fields allowed, 0 for RECEIPT_MAX_HOPS. */
enum receipt_outcome receipt_check(enum receipt_source src, const struct receipt_count *c,
                                   unsigned long long max_size, unsigned max_hops);

/* What becomes of the source's copy of the message. */
enum receipt_fate {
    RECEIPT_FATE_TAKEN,     /* queued: an SMTP client gets 250, a pickup file is deleted */
    RECEIPT_FATE_REFUSED,   /* for good: 5xx, a pickup file goes to Badmail with text */
    RECEIPT_FATE_RETRY      /* for now: 4xx, a pickup file stays for the next scan */
};

/* Events the receive module reports for an outcome (bits). */
#define RECEIPT_EV_HELD          0x1u  /* the filter held it (1120) */
#define RECEIPT_EV_FILTER_FAILED 0x2u  /* the filter failed (4110) */
#define RECEIPT_EV_STORE_FAILED  0x4u  /* the source reports a store failure with its
                                          own context; a full disk is reported once by
                                          the spool instead (4150) */

struct receipt_answer {
    enum receipt_fate fate;
    int code;                       /* SMTP reply code (250 when taken) */
    const char *status;             /* its enhanced status */
    char text[RECEIPT_TEXT_MAX];    /* the reply's text; a Badmail reason for pickup */
    unsigned events;                /* RECEIPT_EV_* */
};

/* The answer for an outcome. err: the Win32 error of RECEIPT_STORE_FAILED,
 * or for RECEIPT_LOOP the hop limit that was exceeded (0: RECEIPT_MAX_HOPS);
 * reason: the filter's reason (REJECTED, FILTER_FAILED, HELD), may be NULL. */
void receipt_answer(enum receipt_source src, enum receipt_outcome o, unsigned long err,
                    const char *reason, struct receipt_answer *out);

const char *receipt_source_name(enum receipt_source src);

#endif
