/* mime.h - MIME structure scanner: is a message signed, encrypted, 8-bit,
 * an envelope around a signed message, and where are its leaf parts.
 *
 * The queue asks this before it relays to a next hop without 8BITMIME: a
 * message with 8-bit content inside a signed part cannot be converted without
 * breaking the signature, so it must bounce at once (5.6.3) rather than be
 * retried until expiry. 8-bit leaves outside signed parts are listed with
 * their byte ranges so a converter can re-encode just those.
 *
 * Sans-I/O, portable core: the scanner reads a whole message held in memory
 * (CRLF line ends, bare LF tolerated), never modifies it, never allocates,
 * and bounds its nesting depth and part count. Input is assumed hostile.
 */
#ifndef IMSVC_MIME_H
#define IMSVC_MIME_H

#include <stddef.h>

#define MIME_MAX_DEPTH    16   /* nested entities (multipart, message/rfc822) */
#define MIME_MAX_LEAVES   128  /* leaf parts recorded */
#define MIME_TYPE_MAX     64   /* "type/subtype", lowercased, with NUL */
#define MIME_BOUNDARY_MAX 70   /* RFC 2046 section 5.1.1 */

/* Findings about the whole message (mime_scan.flags). */
#define MIME_SIGNED_CLEAR   0x0001u /* a multipart/signed entity */
#define MIME_SIGNED_OPAQUE  0x0002u /* pkcs7-mime signed-data (or untyped pkcs7-mime) */
#define MIME_ENCRYPTED      0x0004u /* pkcs7-mime enveloped-data */
#define MIME_ENVELOPE       0x0008u /* a signed entity wrapped in message/rfc822 or
                                     * as the only part of a multipart */
#define MIME_8BIT           0x0010u /* an octet >= 0x80, or CTE 8bit/binary */
#define MIME_8BIT_SIGNED    0x0020u /* ... and some of it inside a signed entity */
#define MIME_UNCLOSED       0x0040u /* a multipart without its close delimiter */
#define MIME_LIMIT          0x0080u /* depth or leaf limit reached: scan incomplete */

#define MIME_SIGNED (MIME_SIGNED_CLEAR | MIME_SIGNED_OPAQUE)

enum mime_cte {
    MIME_CTE_7BIT,      /* also when absent */
    MIME_CTE_8BIT,
    MIME_CTE_BINARY,
    MIME_CTE_QP,
    MIME_CTE_BASE64,
    MIME_CTE_OTHER,     /* unknown token: treated as opaque */
};

/* One leaf part. [start, body) are its headers (with the blank line),
 * [body, end) its content, not counting the line break that belongs to the
 * next delimiter. Leaves never overlap and lie inside the input. */
struct mime_leaf {
    size_t start, body, end;
    char type[MIME_TYPE_MAX];   /* lowercased; "text/plain" by default */
    enum mime_cte cte;
    unsigned char eightbit;     /* octet >= 0x80 in [start, end), or CTE 8bit/binary */
    unsigned char in_signed;    /* covered by a signature: must not be changed */
};

struct mime_scan {
    unsigned flags;
    size_t nleaves;
    struct mime_leaf leaves[MIME_MAX_LEAVES];
};

/* Scan msg[0..len). Always fills *out (flags and leaves); never fails. */
void mime_scan(const unsigned char *msg, size_t len, struct mime_scan *out);

enum mime_verdict {
    MIME_VERDICT_OK,                /* relay the bytes as they are */
    MIME_VERDICT_CONVERT,           /* 8-bit only outside signed parts: re-encode those leaves */
    MIME_VERDICT_REFUSE_SIGNED_8BIT,/* conversion would break a signature: bounce 5.6.3 */
    MIME_VERDICT_REFUSE_COMPLEX,    /* 8-bit and too deep/many parts to convert: bounce 5.6.3 */
};

/* The type/subtype of a Content-Type field's value (v, n octets), lowercased,
 * into type; "" when the value does not parse (RFC 2045 5.2: the default
 * applies). The one reading of Content-Type: the scanner uses it for every
 * entity, and header rewriting (core/hdrrewrite.h) for the top level. */
void mime_content_type(const char *v, size_t n, char type[MIME_TYPE_MAX]);

/* Does p hold an octet above 127? */
int mime_has_8bit(const void *p, size_t n);

/* The queue's question: may this message go to a peer that does (or does
 * not) offer 8BITMIME? *why (if not NULL) gets a sentence for the NDR or the
 * log; it is a static string. */
enum mime_verdict mime_conversion_verdict(const struct mime_scan *scan, int peer_has_8bitmime,
                                          const char **why);

#endif
