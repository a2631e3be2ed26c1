/* rewrite.h - what an envelope address becomes through the address map.
 *
 * The one decision, taken by the SMTP server at MAIL FROM and RCPT TO
 * (core/smtpd.c), for a whole envelope by other sources (the pickup folder:
 * rewrite_envelope) and shown by `imsvc address map test`, so they never
 * disagree. For a recipient, in order:
 *   - an IMCEA address at a local domain (core/imcea.h) is decoded and the
 *     embedded address checked by the rules of its type (X400: core/x400.h;
 *     EX, SMTP, FAX and the rest below): one that breaks a rule is refused
 *     550 5.1.3 with a sentence naming the field and the rule. With a map in
 *     force it becomes the SMTP address of its typed line (direction in or
 *     both), and an alias of that address applies; no such line: 550 5.1.1.
 *     With no map configured it is kept as written; with one configured but
 *     not loaded: 451 4.3.5 (the sender retries once it is fixed);
 *   - an SMTP address on a typed line with direction out or both becomes
 *     the typed address, IMCEA-encapsulated at the first domain name in
 *     LocalDomains (not a wildcard or an address literal);
 *   - else an alias for the address, or for its whole domain, gives the
 *     addresses it stands for (one level: targets are not looked up again);
 *   - else the address is kept.
 * A sender is rewritten the same way but for aliases, and is never refused
 * for lacking a line (550 5.1.7 only when its embedded address breaks a
 * rule). Each address is rewritten at most once. Portable core: no I/O, no
 * allocation (but an envelope's new recipient list); it never routes
 * (core/route.h decides where results go).
 */
#ifndef IMSVC_REWRITE_H
#define IMSVC_REWRITE_H

#include <stddef.h>

#include "address.h"
#include "addrmap.h"
#include "domains.h"
#include "envelope.h"

#define REWRITE_WHY_MAX 400

enum rewrite_result {
    REWRITE_KEEP,       /* the address stays as it is */
    REWRITE_CHANGED,    /* it becomes rewrite_target(v, 0 .. v->n - 1) */
    REWRITE_REFUSED     /* code, status and why say how to refuse it */
};

struct rewrite_config {
    const struct addrmap *map;          /* the map in force; NULL: none */
    int map_wanted;                     /* AddressMapFile is set, so a map should be in force */
    const struct domain_list *local;    /* LocalDomains: IMCEA is decoded only for these */
};

struct rewrite_verdict {
    enum rewrite_result result;
    int code;                           /* REFUSED: 550 or 451 */
    const char *status;                 /* REFUSED: "5.1.3", "5.1.1", "5.1.7" or "4.3.5" */
    char why[REWRITE_WHY_MAX + 1];      /* refused: why; else how it was decided ("" when
                                           nothing applied) */
    unsigned line;                      /* the map line that decided; 0: none */
    char type[IMCEA_TYPE_MAX + 1];      /* the IMCEA type decoded; "" when not IMCEA */
    size_t n;                           /* CHANGED: how many addresses */
    struct addr_path one;               /* CHANGED to one address made here */
    const struct addr_path *list;       /* CHANGED by an alias: its targets, in the map */
};

/* The i-th address a CHANGED verdict gives (NULL past the end). A list
 * points into the map: it stays valid while the map does. */
const struct addr_path *rewrite_target(const struct rewrite_verdict *v, size_t i);

/* Decide for a recipient (as RCPT TO parsed it) / a sender (MAIL FROM).
 * Return 0 (KEEP or CHANGED) or -1 (REFUSED). */
int rewrite_recipient(const struct rewrite_config *c, const struct addr_path *rcpt,
                      struct rewrite_verdict *v);
int rewrite_sender(const struct rewrite_config *c, const struct addr_path *from,
                   struct rewrite_verdict *v);

/* Is value (len octets) a valid address of the given IMCEA type? NULL when
 * it is, else a sentence naming the rule it breaks (in why, n octets). */
const char *rewrite_check_typed(const char *type, const char *value, size_t len, char *why,
                                size_t n);

/* Record original (the recipient as the sender wrote it) as the ORCPT of
 * p (RFC 3461 4.2: an MTA that changes a recipient may add it), unless p
 * already has one. Returns 0, or -1 when its xtext would pass RFC 3461's
 * 500 characters (p unchanged). */
int rewrite_orcpt(const struct addr_path *original, struct addr_params *p);

/* Why an envelope was refused: the first address refused, as written, and
 * its verdict's reply. */
struct rewrite_refusal {
    int sender;                         /* the sender, else a recipient */
    char address[ADDR_PATH_MAX + 1];    /* as the envelope had it ("<>" never refused) */
    int code;                           /* 550, or 451 (4.3.5: the map is not loaded) */
    const char *status;
    char why[REWRITE_WHY_MAX + 1];
};

/* The envelope env as an SMTP session would have taken it address by
 * address: the sender by rewrite_sender, each recipient by
 * rewrite_recipient, in order, a changed one becoming every address its
 * verdict gives, each with the recipient as written as its ORCPT
 * (rewrite_orcpt). Returns 0 (env rewritten), or -1 (env unchanged) with
 * *ref saying why: the first address refused, or more recipients than an
 * envelope holds (550 5.5.3) or no memory for them (451 4.3.1). */
int rewrite_envelope(const struct rewrite_config *c, struct envelope *env,
                     struct rewrite_refusal *ref);

#endif
