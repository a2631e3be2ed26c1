/* convert.h - make a message 7-bit for a next hop without 8BITMIME, never
 * touching a signed part.
 *
 * Works from core/mime.h's scan of the message: each leaf that is 8-bit and
 * not inside a signed entity is re-encoded (any text type as quoted-printable,
 * anything else as base64, RFC 2045 6.7 and 6.8) and its
 * Content-Transfer-Encoding header replaced; every other octet of the message
 * is copied exactly. When it cannot make the message 7-bit without changing
 * a signed part or what a header says, it refuses and says why, so the queue
 * bounces at once (5.6.3) instead of sending something altered.
 *
 * Portable core: no windows.h, no I/O, no clock. The only allocation is the
 * output (and a scratch buffer per re-encoded leaf); the input is never
 * written. Input, and the scan, are treated as hostile.
 */
#ifndef IMSVC_CONVERT_H
#define IMSVC_CONVERT_H

#include <stddef.h>

#include "mime.h"

#define CONVERT_QP_LINE_MAX  76   /* RFC 2045 6.7 (5): encoded line, with the soft break '=' */
#define CONVERT_B64_LINE_MAX 76   /* RFC 2045 6.8 */

enum convert_result {
    CONVERT_OK,
    CONVERT_UNCHANGED,  /* already 7-bit: nothing to do */
    CONVERT_REFUSED,    /* cannot: *why says why */
    CONVERT_NOMEM,
};

/* Make msg[0..len) 7-bit, using scan (mime_scan's result for exactly these
 * bytes). On CONVERT_OK, *out is a malloc'd new message (the caller frees
 * it) and *out_len its length; otherwise *out is NULL and *out_len 0. *why
 * (may be NULL) gets a static sentence on CONVERT_REFUSED, NULL otherwise.
 *
 * Refused: 8-bit content inside a signed entity; a scan that hit a limit;
 * an 8-bit octet in any header, or anywhere outside the content of a leaf
 * (a multipart preamble or epilogue); an 8-bit leaf whose transfer encoding
 * is unknown; a scan that does not fit msg. A message without MIME-Version
 * gains "MIME-Version: 1.0" at the end of its top-level header block.
 * CONVERT_UNCHANGED when there is no 8-bit octet and no leaf declared 8bit
 * or binary. */
enum convert_result convert_7bit(const unsigned char *msg, size_t len, const struct mime_scan *scan,
                                 unsigned char **out, size_t *out_len, const char **why);

#endif
