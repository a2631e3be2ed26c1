/* envelope.h - the queue's envelope record: who a queued message is from and
 * to, and how far delivery to each recipient has come.
 *
 * The envelope is a small text file kept next to the message content. This
 * module turns a struct envelope into that text and back; it never touches
 * a file, a clock or the content. The format is line-oriented and versioned
 * (docs/queue-format.md): one "key value" per line, fields in a fixed order,
 * every free-text value escaped so that CR, LF and other control octets can
 * never split a line, and a last line "end LINES CRC32" so that a torn or
 * truncated write is rejected instead of read as a shorter envelope.
 * Portable core: no windows.h. Times are seconds since 1970, passed in.
 */
#ifndef IMSVC_ENVELOPE_H
#define IMSVC_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "address.h"

#define ENV_VERSION      1
#define ENV_ID_MAX       64     /* queue ID: letters, digits, '.', '-', '_' */
#define ENV_NAME_MAX     255    /* client, HELO, authenticated user, remote MTA */
#define ENV_STATUS_MAX   15     /* "5.1.1" and room for 3-digit fields */
#define ENV_REPLY_MAX    1000   /* the remote reply, as smtpc keeps it */
#define ENV_WHY_MAX      1400   /* the sentence that says why */
#define ENV_RCPT_MAX     1000   /* recipients per message */

enum env_state {
    ENV_PENDING,     /* not tried yet */
    ENV_DELIVERED,   /* done: accepted by the next hop or dropped locally */
    ENV_DEFERRED,    /* a transient failure: try again at next_attempt */
    ENV_FAILED       /* done: bounced (permanent failure or expired) */
};

/* Which DSNs have already gone out for a recipient (bits of env_rcpt.notified),
 * so that a restart never sends the same notice twice. */
#define ENV_NOTIFIED_DELAY   0x1u
#define ENV_NOTIFIED_FAILURE 0x2u

struct env_rcpt {
    struct addr_path addr;
    char orcpt_type[ADDR_ORCPT_TYPE_MAX + 1];  /* "" when no ORCPT= */
    char orcpt[ADDR_XTEXT_MAX + 1];            /* xtext, as given */
    unsigned notify;                           /* ADDR_NOTIFY_* bits; 0: not given */
    enum env_state state;
    unsigned attempts;                         /* delivery attempts made */
    int64_t next_attempt;                      /* 0: as soon as possible */
    int64_t first_failure;                     /* 0: has not failed */
    unsigned notified;                         /* ENV_NOTIFIED_* bits */
    char status[ENV_STATUS_MAX + 1];           /* last enhanced status, or "" */
    char remote[ENV_NAME_MAX + 1];             /* the host that replied, or "" */
    char reply[ENV_REPLY_MAX + 1];             /* its reply text, or "" */
    char why[ENV_WHY_MAX + 1];                 /* our sentence, or "" */
};

struct envelope {
    char id[ENV_ID_MAX + 1];
    int64_t arrived;
    struct addr_path from;                     /* null_path for <> */
    char client[ENV_NAME_MAX + 1];             /* e.g. "[192.0.2.1]" */
    char helo[ENV_NAME_MAX + 1];               /* as the client gave it */
    char auth_user[ENV_NAME_MAX + 1];          /* "" when not authenticated */
    enum addr_body body;
    enum addr_ret ret;
    char envid[ADDR_XTEXT_MAX + 1];            /* ENVID= xtext, or "" */
    size_t n_rcpt;
    size_t cap_rcpt;
    struct env_rcpt *rcpt;                     /* owned; env_free releases it */
};

/* Why a parse failed: the 1-based line and the rule it broke (static text). */
struct env_error {
    unsigned line;
    const char *rule;
};

/* Is s a queue ID: 1 to ENV_ID_MAX of A-Z a-z 0-9 . - _ ? (The one rule:
 * the spool, the commit log and the control protocol all use it.) */
int env_id_valid(const char *s);

/* Start an empty envelope (no recipients) / release its recipients. */
void env_init(struct envelope *e);
void env_free(struct envelope *e);

/* Append a recipient in state pending with the given address and DSN
 * parameters (params may be NULL). Returns its index, or -1 when out of
 * memory, past ENV_RCPT_MAX, or addr is the null path. */
int env_add_rcpt(struct envelope *e, const struct addr_path *addr,
                 const struct addr_params *params);

/* Write the envelope as text into buf (NUL-terminated when n > 0). Returns
 * the length the full text needs, not counting the NUL, as snprintf does:
 * the text is complete only when the result is less than n. Returns 0 when
 * the envelope cannot be written (no ID, an invalid ID, no recipients). */
size_t env_format(const struct envelope *e, char *buf, size_t n);

/* Read text written by env_format. e must be env_init'ed; it is reset first.
 * Returns 0, or -1 with *err filled in (e is then empty). Anything out of
 * order, unknown, over a limit, or not followed by a correct end line is
 * rejected. */
int env_parse(const char *s, size_t len, struct envelope *e, struct env_error *err);

/* Is the recipient still to be delivered (pending or deferred)? */
int env_rcpt_outstanding(const struct env_rcpt *r);

/* Fill idx (up to max entries) with the recipients to try at time now:
 * still to deliver and next_attempt <= now. Returns how many there are (may
 * exceed max). */
size_t env_due(const struct envelope *e, int64_t now, size_t *idx, size_t max);

/* The earliest next_attempt of any recipient still to deliver, or -1 when
 * the message is done. */
int64_t env_next_attempt(const struct envelope *e);

/* Is every recipient delivered or failed, so the message can leave the queue? */
int env_done(const struct envelope *e);

/* The CRC-32 (IEEE) the end line carries, of the len octets at s. */
uint32_t env_crc32(const char *s, size_t len);
/* The same CRC over data given in pieces: start with crc 0, feed each piece;
 * env_crc32_update(env_crc32_update(0, a, n), b, m) is the CRC of a then b. */
uint32_t env_crc32_update(uint32_t crc, const void *p, size_t len);

/* The name of a state as written in the file ("pending", ...). */
const char *env_state_name(enum env_state s);

#endif
