/* hdrrewrite.h - the addresses in a message's header fields: found, and
 * rewritten through the address map when RewriteHeaders is on.
 *
 * Two jobs for the one reading of an address-list (RFC 5322 3.4):
 *   - hdr_addr_next walks a field value and gives each address's span:
 *     the addr-spec inside <...>, or a bare addr-spec; display names,
 *     quoted strings (commas in them included), comments, encoded words
 *     and group names are stepped over. The pickup folder takes its
 *     envelope from the same walk.
 *   - hdrrewrite_block rewrites the top-level From, Sender, Reply-To, To,
 *     Cc and their Resent- forms by rewrite_sender's decision (core/
 *     rewrite.h: X.400/IMCEA to SMTP and back, never an alias). Only an
 *     addr-spec is replaced; every other octet of the block stays as it
 *     was. An address that is refused, not mapped or does not parse stays
 *     as written.
 * It never touches a signed message (a top-level Content-Type
 * multipart/signed, application/pkcs7-mime or application/x-pkcs7-mime,
 * or a DKIM-Signature field), a header larger than HDRREWRITE_BLOCK_MAX,
 * or a block it cannot read as fields. Portable core: no I/O, no
 * allocation (the caller gives the output buffer).
 */
#ifndef IMSVC_HDRREWRITE_H
#define IMSVC_HDRREWRITE_H

#include <stddef.h>

#include "rewrite.h"

#define HDRREWRITE_BLOCK_MAX (64u * 1024u) /* header octets read; a longer header is left alone */
#define HDRREWRITE_LINE_MAX  998u          /* RFC 5322 2.1.1: a rewrite that would make a line
                                              longer (and longer than it was) is not made */

/* An address in a field value: value[start, end). angle: it was inside
 * <...> (a name-addr or angle-addr), else a bare addr-spec. */
struct hdr_addr {
    size_t start, end;
    int angle;
};

struct hdr_addr_iter {
    const char *v;
    size_t len, pos;
};

/* Walk the address-list in v[0, len). Each call gives the next element
 * that holds an address (empty elements, a group's name and an element
 * that is not one mailbox, such as two angle-addrs, are skipped): 1, or 0
 * at the end. The span is only where the address is: the caller parses it
 * (core/address.h), and one that does not parse is not an address. */
void hdr_addr_begin(struct hdr_addr_iter *it, const char *v, size_t len);
int hdr_addr_next(struct hdr_addr_iter *it, struct hdr_addr *a);

enum hdrrewrite_result {
    HDRREWRITE_UNCHANGED,   /* no address changed: keep the block as it is */
    HDRREWRITE_CHANGED,     /* the new block is the return value's length */
    HDRREWRITE_SIGNED,      /* signed: never changed */
    HDRREWRITE_TOO_BIG,     /* more than HDRREWRITE_BLOCK_MAX octets: left alone */
    HDRREWRITE_MALFORMED    /* a line that is neither a field nor its continuation */
};

struct hdrrewrite_report {
    enum hdrrewrite_result result;
    unsigned changed;       /* addresses replaced */
    unsigned kept;          /* addresses found and left as written */
    unsigned too_long;      /* ... of them because the line would pass HDRREWRITE_LINE_MAX */
    const char *why;        /* SIGNED, TOO_BIG, MALFORMED: a static sentence; else "" */
};

/* Rewrite the header block hdr[0, len): its fields up to and including the
 * empty line that ends them (octets after that line are copied as they
 * are), or a whole message that has no body. Line ends may be CRLF or LF.
 * When rep->result is CHANGED, returns the new block's length and writes
 * it into out when that length is less than cap (snprintf's way: call
 * again with a larger buffer); else returns 0 and out is not written. */
size_t hdrrewrite_block(const struct rewrite_config *c, const char *hdr, size_t len, char *out,
                        size_t cap, struct hdrrewrite_report *rep);

/* Where a header block ends, in content that comes in pieces: start with
 * a zeroed struct; each call returns how many octets of p (len) belong to
 * the block, and sets *end when the last of them is its empty line (CRLF
 * or LF). The caller stops feeding after that. */
struct hdr_end {
    int state;
};
size_t hdr_end_feed(struct hdr_end *h, const char *p, size_t len, int *end);

/* Is the field name (n octets, no colon) one whose addresses are rewritten? */
int hdrrewrite_field(const char *name, size_t n);

#endif
