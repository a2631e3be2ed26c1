/* ntlmmsg.h - read the NTLM messages ([MS-NLMP] 2.2.1) that imsvc needs to
 * look inside, portable.
 *
 * SSPI does the authentication; this module only reads what a context has
 * already handled: the negotiate flags of any NTLM message (to record the key
 * strength and Unicode/OEM choice), and the domain, user and workstation of
 * an AUTHENTICATE message the server has accepted, for when the platform
 * cannot name the user itself (Wine: QueryContextAttributes(SECPKG_ATTR_NAMES)
 * is unsupported). Names come out as UTF-8 with every control character
 * refused, so they can go into a Received header as they are.
 *
 * This module never includes windows.h, never allocates, and never reads a
 * byte that a length or offset it checked does not cover: the input is the
 * peer's, and the peer may be hostile.
 */
#ifndef IMSVC_NTLMMSG_H
#define IMSVC_NTLMMSG_H

#include <stddef.h>
#include <stdint.h>

#define NTLMMSG_SIGNATURE_LEN  8u      /* "NTLMSSP\0" */
#define NTLMMSG_AUTH_MIN_LEN   52u     /* AUTHENTICATE up to Workstation, the
                                          oldest layout (no key, no flags) */
#define NTLMMSG_AUTH_FLAGS_OFF 60u     /* NegotiateFlags in AUTHENTICATE */
#define NTLMMSG_NAME_MAX       256u    /* UTF-16 units (or OEM bytes) per name */
#define NTLMMSG_NAME_UTF8_MAX  (3u * NTLMMSG_NAME_MAX + 1u) /* with its NUL */

/* MessageType */
#define NTLMMSG_NEGOTIATE      1u
#define NTLMMSG_CHALLENGE      2u
#define NTLMMSG_AUTHENTICATE   3u

/* NegotiateFlags used here ([MS-NLMP] 2.2.2.5). */
#define NTLMMSG_F_UNICODE      0x00000001u
#define NTLMMSG_F_OEM          0x00000002u
#define NTLMMSG_F_SIGN         0x00000010u
#define NTLMMSG_F_SEAL         0x00000020u
#define NTLMMSG_F_LM_KEY       0x00000080u
#define NTLMMSG_F_NTLM         0x00000200u
#define NTLMMSG_F_ANONYMOUS    0x00000800u
#define NTLMMSG_F_ALWAYS_SIGN  0x00008000u
#define NTLMMSG_F_EXT_SESSION  0x00080000u /* extended session security */
#define NTLMMSG_F_VERSION      0x02000000u
#define NTLMMSG_F_128          0x20000000u
#define NTLMMSG_F_KEY_EXCH     0x40000000u
#define NTLMMSG_F_56           0x80000000u

enum ntlmmsg_status {
    NTLMMSG_OK = 0,
    NTLMMSG_E_ARG = -1,        /* NULL pointer or output too small */
    NTLMMSG_E_TRUNCATED = -2,  /* shorter than its fixed header */
    NTLMMSG_E_SIGNATURE = -3,  /* not "NTLMSSP\0" */
    NTLMMSG_E_TYPE = -4,       /* another MessageType than the one asked for */
    NTLMMSG_E_FIELD = -5,      /* a field's offset/length leaves the message */
    NTLMMSG_E_ENCODING = -6,   /* odd UTF-16 length, unpaired surrogate, or an
                                  OEM byte above 0x7F (code page unknown here) */
    NTLMMSG_E_NAME = -7,       /* a control character, or a name too long */
};
const char *ntlmmsg_strerror(int status);

/* A payload field: where its bytes are in the message. */
struct ntlmmsg_field {
    uint32_t offset;
    uint16_t len;
};

/* NTLM response kind, from the NtChallengeResponse length. */
enum ntlmmsg_response {
    NTLMMSG_RESP_ANONYMOUS = 0, /* empty NT response (and LM empty or 1 byte) */
    NTLMMSG_RESP_V1 = 1,        /* 24-byte NT response: NTLMv1 (or NTLM2 session) */
    NTLMMSG_RESP_V2 = 2,        /* longer: NTLMv2 */
    NTLMMSG_RESP_OTHER = 3,     /* any other length */
};

/* An AUTHENTICATE message, its fields checked against its length. */
struct ntlmmsg_auth {
    struct ntlmmsg_field lm, nt, domain, user, workstation, session_key;
    uint32_t flags;             /* the message's own, or the caller's default */
    int has_flags;              /* 1 when the message carried NegotiateFlags */
    int unicode;                /* names are UTF-16LE (else OEM) */
    enum ntlmmsg_response response;
};

/* The MessageType of any NTLM message, or a negative ntlmmsg_status. */
int ntlmmsg_type(const unsigned char *msg, size_t len);

/* The NegotiateFlags of a NEGOTIATE, CHALLENGE or AUTHENTICATE message, in
 * *flags. An AUTHENTICATE message in the oldest layout carries none:
 * NTLMMSG_E_TRUNCATED then. */
int ntlmmsg_flags(const unsigned char *msg, size_t len, uint32_t *flags);

/* Parse an AUTHENTICATE message. default_flags stands for the message's flags
 * when it has none (pass the CHALLENGE's). Every field must lie inside msg. */
int ntlmmsg_parse_auth(const unsigned char *msg, size_t len, uint32_t default_flags,
                       struct ntlmmsg_auth *out);

/* One name field of a parsed message as NUL-terminated UTF-8 in out (cap of
 * at least NTLMMSG_NAME_UTF8_MAX always suffices). */
int ntlmmsg_name_utf8(const unsigned char *msg, size_t len, const struct ntlmmsg_auth *a,
                      const struct ntlmmsg_field *f, char *out, size_t cap);

/* "DOMAIN\user" (or "user" when the domain is empty) as UTF-8 in out: what a
 * server logs as the authenticated user. cap of 2 * NTLMMSG_NAME_UTF8_MAX
 * always suffices. An empty user name (anonymous) is NTLMMSG_E_NAME. */
int ntlmmsg_auth_user(const unsigned char *msg, size_t len, uint32_t default_flags,
                      char *out, size_t cap);

/* The key strength the flags negotiate, in bits ([MS-NLMP] 3.4.5.3): 128
 * when NEGOTIATE_128 is set, else 56 when NEGOTIATE_56 is, else 40. It is the
 * strength signing and sealing keys would have; imsvc uses neither, but
 * records it after every handshake, as it does for TLS. */
unsigned ntlmmsg_key_bits(uint32_t flags);

#endif
