/* imcea.h - IMCEA encapsulation ([MS-OXCMAIL] 2.1.3.1.8 and 2.2.3.1.2).
 *
 * Wraps an address of any type (X400, EX, FAX, ...) in an SMTP mailbox,
 * IMCEA<TYPE>-<encoded>@<domain>, and unwraps it. Encoding: letters, digits,
 * '-' and '=' stay; '/' becomes '_'; every other octet becomes '+HH' (upper
 * case hex). Decoding is done only for a configured local domain (as
 * core/domains.c matches them, the matcher routing uses) and an upper-case
 * "IMCEA<TYPE>" prefix: anything else is an ordinary mailbox that belongs to
 * someone else. Portable core: no I/O, no allocation.
 */
#ifndef IMSVC_IMCEA_H
#define IMSVC_IMCEA_H

#include <stddef.h>

#include "domains.h"

#define IMCEA_TYPE_MAX 32   /* address type: 1..32 upper-case letters or digits */

enum imcea_status {
    IMCEA_OK = 0,
    IMCEA_BAD_TYPE,         /* type empty, too long, or not letters and digits */
    IMCEA_BAD_DOMAIN,       /* not a valid RFC 5321 domain name */
    IMCEA_BAD_ADDRESS,      /* empty address, or a NUL octet in it */
    IMCEA_NOT_IMCEA,        /* no "IMCEA<TYPE>-" prefix, or prefix not upper case */
    IMCEA_NOT_LOCAL,        /* well formed, but the domain is not one of ours */
    IMCEA_BAD_ENCODING,     /* a character or '+' escape the encoding does not allow */
    IMCEA_TOO_LONG          /* the output buffer is too small */
};

/* A sentence for a status, for messages and logs. */
const char *imcea_strerror(enum imcea_status st);

/* Encode addr (addr_len octets) of the given type for domain into out
 * (NUL-terminated). The type is taken case-insensitively and written in
 * upper case. Returns IMCEA_OK and sets *out_len (if not NULL). */
enum imcea_status imcea_encode(const char *type, const char *addr, size_t addr_len,
                               const char *domain, char *out, size_t out_size, size_t *out_len);

/* Decode s (len octets, a bare mailbox "IMCEA...@domain"). The domain must
 * be a local domain as core/domains.h matches them (the same matcher as
 * routing; local may be NULL: none). Writes the type and the decoded
 * address (both NUL-terminated; the address never contains NUL). */
enum imcea_status imcea_decode(const char *s, size_t len, const struct domain_list *local,
                               char *type, size_t type_size,
                               char *addr, size_t addr_size, size_t *addr_len);

/* Does s look encapsulated ("IMCEA" in any case, a type, '-')? Detection
 * only; [MS-OXCMAIL] says these three elements identify the form. */
int imcea_looks_like(const char *s, size_t len);

#endif
