/* address.h - RFC 5321 paths and the parameters of MAIL FROM and RCPT TO.
 *
 * Parses the argument of MAIL FROM: / RCPT TO: (the path and its ESMTP
 * parameters) into fixed-size structures, validates them by RFC 5321 and the
 * extensions we offer (SIZE, 8BITMIME/BINARYMIME, AUTH, DSN), and prints them
 * back canonically. Every failure names the rule that failed and carries the
 * SMTP reply code and enhanced status code to send. Portable core: no I/O, no
 * allocation, no windows.h. It never guesses: input it cannot read exactly
 * is rejected.
 */
#ifndef IMSVC_ADDRESS_H
#define IMSVC_ADDRESS_H

#include <stddef.h>

#define ADDR_LOCAL_MAX   64   /* RFC 5321 4.5.3.1.1, octets as written */
#define ADDR_DOMAIN_MAX  255  /* RFC 5321 4.5.3.1.2 */
#define ADDR_PATH_MAX    256  /* RFC 5321 4.5.3.1.3, including < and > */
#define ADDR_XTEXT_MAX   500  /* AUTH= and ORCPT= values, as written */
#define ADDR_ENVID_MAX   100  /* RFC 3461 4.4, decoded octets */
#define ADDR_ORCPT_TYPE_MAX 32

enum addr_verb { ADDR_MAIL, ADDR_RCPT };

enum addr_domain_kind {
    ADDR_DOMAIN_NONE,   /* the null path */
    ADDR_DOMAIN_NAME,   /* example.com */
    ADDR_DOMAIN_IPV4,   /* [192.0.2.1] */
    ADDR_DOMAIN_IPV6    /* [IPv6:2001:db8::1] */
};

/* A parsed path. local is the local part's value: quotes and backslashes of
 * a quoted string removed (quoted says it was, or must be, quoted to print).
 * domain is the canonical domain: a name in lower case, or the address
 * literal with brackets, in canonical form. A source route is dropped. */
struct addr_path {
    int null_path;                      /* <> (MAIL only) */
    int quoted;                         /* local part needs quoting to print */
    int had_route;                      /* a source route was given and ignored */
    enum addr_domain_kind kind;
    char local[ADDR_PATH_MAX + 1];      /* see addr_local_limit in address.c */
    char domain[ADDR_DOMAIN_MAX + 1];
};

enum addr_body { ADDR_BODY_NONE, ADDR_BODY_7BIT, ADDR_BODY_8BITMIME, ADDR_BODY_BINARYMIME };
enum addr_ret { ADDR_RET_NONE, ADDR_RET_FULL, ADDR_RET_HDRS };

#define ADDR_NOTIFY_NEVER   0x1u
#define ADDR_NOTIFY_SUCCESS 0x2u
#define ADDR_NOTIFY_FAILURE 0x4u
#define ADDR_NOTIFY_DELAY   0x8u

/* The parameters after the path. Strings are kept as written (xtext still
 * encoded) so they can be relayed unchanged; has_* flags say which were
 * given. */
struct addr_params {
    int has_size, has_auth, has_envid, has_orcpt;
    unsigned long long size;            /* SIZE= */
    enum addr_body body;                /* BODY= */
    enum addr_ret ret;                  /* RET= */
    unsigned notify;                    /* NOTIFY=, ADDR_NOTIFY_* bits; 0: not given */
    char auth[ADDR_XTEXT_MAX + 1];      /* AUTH= xtext, or "<>" */
    char envid[ADDR_XTEXT_MAX + 1];     /* ENVID= xtext */
    char orcpt_type[ADDR_ORCPT_TYPE_MAX + 1]; /* ORCPT= addr-type, e.g. rfc822 */
    char orcpt[ADDR_XTEXT_MAX + 1];     /* ORCPT= xtext after the ';' */
};

/* Why a parse failed: the reply to send and the rule, a static sentence. */
struct addr_error {
    int reply;              /* 501 or 555 (553 never: syntax is ours to judge) */
    const char *status;     /* "5.1.3", "5.1.7" or "5.5.4" */
    const char *rule;       /* e.g. "local part longer than 64 octets" */
    size_t offset;          /* where in the input it went wrong */
};

/* Parse the argument of MAIL FROM: or RCPT TO: - "<path>" optionally followed
 * by SP and parameters. Returns 0, or -1 with *err filled in. path and params
 * may not be NULL; both are reset first. */
int addr_parse_command(const char *s, size_t len, enum addr_verb verb,
                       struct addr_path *path, struct addr_params *params,
                       struct addr_error *err);

/* Parse only a path ("<...>"), no parameters. */
int addr_parse_path(const char *s, size_t len, enum addr_verb verb,
                    struct addr_path *path, struct addr_error *err);

/* Parse a bare Mailbox ("user@example.com", no brackets), as the address map
 * and the command line take it. Errors use verb's status code. */
int addr_parse_mailbox(const char *s, size_t len, enum addr_verb verb,
                       struct addr_path *path, struct addr_error *err);

/* Is s (len octets) a syntactically valid RFC 5321 Domain (a name, not a
 * literal)? Returns 1 or 0. */
int addr_domain_valid(const char *s, size_t len);

/* The same check, saying why: NULL when valid, else the rule it breaks
 * (a static sentence, e.g. "domain label must not end with a hyphen"). */
const char *addr_domain_rule(const char *s, size_t len);

/* Print canonically into buf (NUL-terminated). Each returns the length
 * written, or -1 if buf is too small (buf then holds an empty string).
 *   addr_format_mailbox: local@domain, the local part quoted only if needed;
 *                        "" for the null path
 *   addr_format_path:    <local@domain> or <>
 *   addr_format_params:  the parameters in a fixed order, space-separated,
 *                        keywords in upper case; "" when there are none */
int addr_format_mailbox(const struct addr_path *p, char *buf, size_t n);
/* For messages and events: the mailbox, "<>" for the null path, or
 * "(unprintable)" when it does not fit; always NUL-terminated (n > 0). */
void addr_mailbox_text(const struct addr_path *p, char *buf, size_t n);
int addr_format_path(const struct addr_path *p, char *buf, size_t n);
int addr_format_params(const struct addr_params *p, char *buf, size_t n);

/* Compare two mailboxes for equality as mail routing does: domain
 * case-insensitively, the local part case-insensitively as well (the
 * local part is case-sensitive in principle; no site here relies on it).
 * Returns 1 if equal. */
int addr_mailbox_equal(const struct addr_path *a, const struct addr_path *b);

#endif
