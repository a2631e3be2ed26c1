/* commitlog.h - the record format of the queue's group-commit log
 * (docs/queue-format.md): formatting a record, reading records back.
 *
 * Record: "rec 1 KIND ID FLAGS ENVLEN CLEN CCRC\n", ENVLEN octets of
 * envelope, CLEN octets of content when inline, "end CRC\n" with the CRC of
 * everything before it except the content (whose own CRC is CCRC). KIND is
 * C (committed) or D (removed).
 * Portable core: no windows.h, no I/O. Reading must never accept a record it
 * cannot verify whole: a torn tail is where reading stops.
 */
#ifndef IMSVC_COMMITLOG_H
#define IMSVC_COMMITLOG_H

#include <stddef.h>
#include <stdint.h>

#include "envelope.h"

#define CLOG_HEAD_MAX   160u                   /* a record's first line */
#define CLOG_TAIL_MAX   32u                    /* its "end CRC" line */
#define CLOG_ENV_MAX    (4u * 1024u * 1024u)   /* an envelope in a record */
#define CLOG_INLINE_MAX (1024u * 1024u)        /* content kept in the record */

#define CLOG_INLINE 0x1u   /* the content is in the record */
#define CLOG_HOLD   0x2u   /* the message went to Hold\ */

struct clog_rec {
    char kind;
    char id[ENV_ID_MAX + 1];
    unsigned flags;
    const char *env;
    size_t env_len;
    const unsigned char *content;   /* NULL unless CLOG_INLINE */
    uint64_t clen;
    uint32_t ccrc;
};

/* The first line of a record into head (CLOG_HEAD_MAX); its length, or 0. */
size_t clog_format_head(char kind, const char *id, unsigned flags, size_t env_len,
                        uint64_t clen, uint32_t ccrc, char *head, size_t cap);
/* The last line, given the first line and the envelope; its length, or 0. */
size_t clog_format_tail(const char *head, size_t head_len, const char *env, size_t env_len,
                        char *tail, size_t cap);
/* A whole D record for id; its length, or 0. */
size_t clog_format_removal(const char *id, char *out, size_t cap);

/* A record's first line (line[len-1] is its '\n'), every field exactly as
 * clog_format_head writes it: 0 and r filled (env and content NULL), or -1. */
int clog_parse_head(const char *line, size_t len, struct clog_rec *r);
/* One whole record at the start of buf: its length, r pointing into buf; 0
 * when it is torn, damaged, or not one (a CRC that does not match, a field
 * out of bounds, anything clog_format_* would not write). */
size_t clog_parse(const unsigned char *buf, size_t len, struct clog_rec *r);
/* Calls fn for each whole record of buf in order; stops at the first torn
 * or damaged one (the tail a crash cut short: never acknowledged). Returns
 * the length of the records read: len when the whole buffer was good. */
size_t clog_read(const unsigned char *buf, size_t len,
                 void (*fn)(void *arg, const struct clog_rec *r), void *arg);

#endif
