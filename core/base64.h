/* base64.h - base64 (RFC 4648) for the AUTH exchanges of both SMTP engines.
 *
 * Strict, because what it reads comes from the network: no whitespace, no
 * line breaks, length a multiple of four, '=' only as the last one or two
 * characters. Portable core: no allocation, no I/O.
 */
#ifndef IMSVC_BASE64_H
#define IMSVC_BASE64_H

#include <stddef.h>

/* Characters base64_encode needs for n octets, with the NUL. */
#define BASE64_ENCODED_SIZE(n) (((n) + 2) / 3 * 4 + 1)

/* Encode n octets into out (NUL-terminated). Returns the encoded length, or
 * -1 if cap is smaller than BASE64_ENCODED_SIZE(n). */
long base64_encode(const unsigned char *src, size_t n, char *out, size_t cap);

/* Decode n characters into out. Returns the decoded length, or -1 if src is
 * not strict base64 or out is too small. */
long base64_decode(const char *src, size_t n, unsigned char *out, size_t cap);

#endif
