/* dsn.h - delivery status notifications (RFC 3464), composed into a buffer.
 *
 * One call makes a complete message (CRLF line ends, 7-bit apart from the
 * original as given): a multipart/report with report-type delivery-status
 * holding a human-readable part whose sentence names the real reason for
 * each recipient, the machine-readable message/delivery-status part, and
 * the original message's header fields as text/rfc822-headers (RFC 3462),
 * or, only when the caller asks for it, the whole original as
 * message/rfc822. The queue then sends it like any other message, from the
 * null sender.
 *
 * Never composes a notice to the null sender (a DSN must not answer a DSN:
 * that is how mail loops start); honours each recipient's NOTIFY=. By
 * default never carries the original's content: a notice to a forged
 * sender must not deliver a stranger's payload (backscatter). Portable
 * core: no clock (dates come in as RFC 5322 strings), no windows.h.
 */
#ifndef IMSVC_DSN_H
#define IMSVC_DSN_H

#include <stddef.h>

#include "envelope.h"

enum dsn_action {
    DSN_FAILED,    /* the recipients will not get the message */
    DSN_DELAYED    /* not delivered yet; still trying */
};

/* What of the original message a notice carries. */
enum dsn_content {
    DSN_CONTENT_HEADERS,  /* its header fields only (text/rfc822-headers): the default */
    DSN_CONTENT_FULL      /* the whole message (message/rfc822), unless the sender
                             asked for headers only (RET=HDRS) */
};

/* The most of the original header a notice carries: the fields that fit
 * whole; the rest is left out (and the notice says so). */
#define DSN_HEADERS_MAX (16 * 1024)

enum dsn_result {
    DSN_OK,
    DSN_NULL_SENDER,   /* the message came from <>: no notice, ever */
    DSN_NOBODY,        /* no recipient listed asked for this notice (NOTIFY=) */
    DSN_TOO_SMALL,     /* buf too small: *len says how much is needed */
    DSN_BAD_INPUT      /* a required field missing or holding CR/LF, an index out of range */
};

struct dsn_request {
    enum dsn_action action;
    const struct envelope *env;     /* the original message's envelope */
    const size_t *which;            /* indexes into env->rcpt to report */
    size_t n_which;
    const char *host;               /* our host name: Reporting-MTA, From postmaster@host */
    const char *date;               /* Date: of the notice, RFC 5322 */
    const char *arrival_date;       /* when the original arrived, RFC 5322 */
    const char *message_id;         /* the notice's Message-ID, "<...>" */
    const char *retry_until;        /* delayed: Will-Retry-Until (RFC 5322), or NULL */
    const char *original;           /* the original message as queued (header and body) */
    size_t original_len;
    enum dsn_content content;       /* what of it to include */
};

/* Compose the notice into buf (NUL-terminated when it fits). *len gets the
 * message length, also when DSN_TOO_SMALL (then allocate *len + 1). */
enum dsn_result dsn_compose(const struct dsn_request *q, char *buf, size_t n, size_t *len);

/* The sentence for an enhanced status code ("5.1.1"), for people: it says
 * what went wrong in words, never just the code. Never NULL. */
const char *dsn_sentence(const char *status);

#endif
