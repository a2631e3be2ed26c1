/* ntlm.h - NTLM authentication through SSPI, both directions, sans-I/O.
 *
 * A context takes the peer's raw NTLM token (bytes: the SMTP engine does the
 * base64 of AUTH NTLM / XAUTH NTLM) and says what to do next:
 *
 *   server (AcceptSecurityContext, SECPKG_CRED_INBOUND):
 *     NEGOTIATE in  -> NTLM_CONTINUE, CHALLENGE out (send it: 334 <b64>)
 *     AUTHENTICATE  -> NTLM_DONE, ntlm_user() names DOMAIN\user (235)
 *                   or NTLM_DENIED: the credentials were refused (535 5.7.3)
 *                   or NTLM_FAILED: anything else, with the status
 *   client (InitializeSecurityContext, SECPKG_CRED_OUTBOUND):
 *     no input      -> NTLM_CONTINUE, NEGOTIATE out
 *     CHALLENGE in  -> NTLM_DONE, AUTHENTICATE out: send it; the server's
 *                      reply (235 or 535) says whether it was accepted
 *
 * Authentication only: no integrity or confidentiality is requested (Wine's
 * NTLM sign/seal between Wine peers fails; TLS gives confidentiality), so
 * there is no message API here. This module never does I/O and never logs;
 * every function returns the SECURITY_STATUS it saw so the caller can report
 * it (event data [location][status]).
 *
 * The server names the user by asking the context (SECPKG_ATTR_NAMES, then
 * the context's token), and, where the platform cannot answer (Wine), by
 * reading the AUTHENTICATE message the context has just accepted
 * (core/ntlmmsg). ntlm_user_source() says which answered.
 */
#ifndef IMSVC_NTLM_H
#define IMSVC_NTLM_H

#ifndef SECURITY_WIN32
#define SECURITY_WIN32
#endif
#include <windows.h>
#include <sspi.h>
#include <stddef.h>
#include <stdint.h>

#include "ntlmmsg.h"

#define NTLM_USER_MAX (2u * NTLMMSG_NAME_UTF8_MAX)  /* "DOMAIN\user" + NUL, UTF-8 */

enum ntlm_result {
    NTLM_CONTINUE = 0, /* send ntlm_token(), then step again with the answer */
    NTLM_DONE = 1,     /* complete; send ntlm_token() if it is not empty */
    NTLM_DENIED = 2,   /* the credentials were refused (SEC_E_LOGON_DENIED...) */
    NTLM_FAILED = 3,   /* any other failure: see the returned status */
};

enum ntlm_name_source {
    NTLM_NAME_NONE = 0,
    NTLM_NAME_CONTEXT = 1, /* QueryContextAttributesW(SECPKG_ATTR_NAMES) */
    NTLM_NAME_TOKEN = 2,   /* QuerySecurityContextToken + LookupAccountSidW */
    NTLM_NAME_MESSAGE = 3, /* the accepted AUTHENTICATE message's fields */
};

/* What the handshake negotiated, for policy and logging. A status of 0 next
 * to a value means the value was read; otherwise the status is why not. */
struct ntlm_info {
    ULONG attributes;               /* context attributes SSPI returned */
    SECURITY_STATUS names_status;   /* server: QueryContextAttributesW(NAMES) */
    SECURITY_STATUS token_status;   /* server: QuerySecurityContextToken */
    SECURITY_STATUS session_key_status;
    unsigned long session_key_bits; /* SECPKG_ATTR_SESSION_KEY length * 8 */
    SECURITY_STATUS key_info_status;
    unsigned long key_info_bits;    /* SECPKG_ATTR_KEY_INFO KeySize */
    unsigned long sig_alg, enc_alg; /* SECPKG_ATTR_KEY_INFO algorithm ids */
    uint32_t challenge_flags;       /* the CHALLENGE message's flags */
    uint32_t auth_flags;            /* the AUTHENTICATE message's flags */
    unsigned flag_key_bits;         /* ntlmmsg_key_bits(auth_flags) */
    enum ntlmmsg_response response; /* NTLMv1 / NTLMv2, from AUTHENTICATE */
};

struct ntlm;

/* A server context over the NTLM package's inbound credentials. */
SECURITY_STATUS ntlm_server_new(struct ntlm **out);

/* A client context. With user NULL, the current account's credentials (the
 * service account); otherwise explicit ones (domain may be NULL or empty).
 * target is the SPN (e.g. L"SMTPSVC/host"), or NULL. */
SECURITY_STATUS ntlm_client_new(struct ntlm **out, const wchar_t *domain, const wchar_t *user,
                                const wchar_t *password, const wchar_t *target);

/* One step: in/in_len is the peer's token (the client's first step has none:
 * NULL, 0). *result says what to do next; the return value is the status the
 * SSPI call gave (SEC_E_OK, SEC_I_CONTINUE_NEEDED, or the failure). A step
 * after NTLM_DONE, NTLM_DENIED or NTLM_FAILED is SEC_E_OUT_OF_SEQUENCE. */
SECURITY_STATUS ntlm_step(struct ntlm *n, const unsigned char *in, size_t in_len,
                          enum ntlm_result *result);

/* The token the last step produced (valid until the next step); *len is 0
 * when there is nothing to send. */
const unsigned char *ntlm_token(const struct ntlm *n, size_t *len);

/* Server, after NTLM_DONE: the user as UTF-8 "DOMAIN\user" (no control
 * characters), and where the name came from. "" before then. */
const char *ntlm_user(const struct ntlm *n);
enum ntlm_name_source ntlm_user_source(const struct ntlm *n);

/* After NTLM_DONE: what was negotiated. */
const struct ntlm_info *ntlm_info(const struct ntlm *n);

/* Is this status a refusal of the credentials (wrong password, unknown
 * user, account disabled, locked or expired) rather than a failure? */
int ntlm_status_is_denial(SECURITY_STATUS st);

const char *ntlm_result_name(enum ntlm_result r);
const char *ntlm_source_name(enum ntlm_name_source s);

void ntlm_free(struct ntlm *n);

#endif
