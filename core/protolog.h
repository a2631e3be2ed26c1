/* protolog.h - the protocol log's lines, in the W3C Extended Log File
 * Format as IIS SMTP writes it, without I/O.
 *
 * The owner of a session (inbound or outbound) tells a struct plog every
 * command line (plog_command), every AUTH response line (plog_secret: its
 * length only), message content (plog_content: its length only) and every
 * reply line (plog_reply). Replies answer commands in order; pipelined
 * commands wait in a short queue. The last line of a reply completes a
 * record: the command, its arguments, the reply code, the octets each way
 * and the milliseconds from command to reply. A 334 to AUTH and a 354 to
 * DATA do not: the AUTH exchange and the message are one record each,
 * completed by their last reply. A reply that answers no command (the
 * greeting, a 421 at a timeout) is a record with no command.
 *
 * It never keeps an AUTH response, a password or message content: an AUTH
 * or XAUTH command keeps its mechanism only (an initial response is
 * dropped), and response lines are counted, never seen. Portable core: no
 * clock (times in ms are passed in), no I/O, no allocation.
 */
#ifndef IMSVC_PROTOLOG_H
#define IMSVC_PROTOLOG_H

#include <stddef.h>
#include <stdint.h>

#define PLOG_VERB_MAX   16     /* a command's verb; longer ones are cut */
#define PLOG_ARGS_MAX   200    /* argument octets kept per command; longer are cut */
#define PLOG_QUEUE_MAX  16     /* commands awaiting their replies, kept with text */
#define PLOG_LINE_MAX   4096   /* a formatted line, CRLF included: every field at its longest fits */
#define PLOG_FIELD_MAX  300    /* an escaped name or address field */

/* The W3C header's #Fields line: the order plog_format writes. */
#define PLOG_FIELDS "date time c-ip cs-username s-sitename s-computername s-ip s-port " \
                    "cs-method cs-uri-query sc-status sc-bytes cs-bytes time-taken"

struct plog_cmd {
    char verb[PLOG_VERB_MAX + 1];
    char args[PLOG_ARGS_MAX + 1];
    unsigned long long cs_bytes, sc_bytes;
    uint64_t t0;                  /* when the command was seen, ms */
    int data;                     /* DATA answered 354: the content is under way */
};

struct plog {
    struct plog_cmd q[PLOG_QUEUE_MAX];
    unsigned head, n;
    unsigned long untracked;      /* commands past the queue, answered without text */
    unsigned long long reply_bytes;  /* octets of the reply being read (multi-line) */
    uint64_t reply_t0;
    int in_reply;
};

struct plog_record {
    char verb[PLOG_VERB_MAX + 1];    /* "" for a reply that answers no command */
    char args[PLOG_ARGS_MAX + 1];
    int status;                      /* the reply code; 0 when the reply had none */
    unsigned long long cs_bytes;     /* client to server octets, CRLF included */
    unsigned long long sc_bytes;     /* server to client */
    uint64_t ms;                     /* time taken */
};

void plog_init(struct plog *p);
/* A command line, without its CRLF, seen at now (ms). */
void plog_command(struct plog *p, const char *line, size_t len, uint64_t now);
/* An AUTH response line of len octets (without CRLF): counted, never kept. */
void plog_secret(struct plog *p, size_t len);
/* len octets of message content for the DATA under way. */
void plog_content(struct plog *p, size_t len);
/* A reply line, without its CRLF, seen at now. Returns 1 and fills *rec
 * when it completes a record, else 0. */
int plog_reply(struct plog *p, const char *line, size_t len, uint64_t now,
               struct plog_record *rec);

/* What a line says besides its record; NULL or "" fields are written '-'. */
struct plog_where {
    const char *date;        /* "2026-12-02", UTC */
    const char *time;        /* "06:31:02", UTC */
    const char *c_ip;        /* the client's address */
    const char *user;        /* the authenticated user */
    const char *site;        /* s-sitename: "SMTP-IN" or "SMTP-OUT" */
    const char *s_name;      /* s-computername: the server's name */
    const char *s_ip;        /* the server's address */
    unsigned s_port;         /* the server's port; 0 '-' */
};

/* One log line, CRLF-terminated, NUL-terminated in buf. Returns its length,
 * or -1 (buf "") when buf is too small. */
int plog_format(const struct plog_where *w, const struct plog_record *r, char *buf, size_t n);

/* One W3C field: spaces become '+' (as IIS writes them), control octets,
 * octets above 126 and '%' become %XX, an empty value is "-". Returns the
 * length written (NUL-terminated); a value that does not fit is cut at a
 * whole character, never mid-escape. cap must be at least 2. */
size_t plog_escape(const char *in, size_t len, char *out, size_t cap);

/* The header a file starts with (and a restart writes again): #Software,
 * #Version, #Date and #Fields lines. Returns the length, or -1. */
int plog_header(const char *software, const char *date, const char *time, char *buf, size_t n);

#endif
