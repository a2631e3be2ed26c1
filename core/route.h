/* route.h - where a recipient's mail goes: dropped here (a local domain),
 * relayed to the configured smart host, or delivered to the domain's MX
 * hosts; and the order in which MX hosts are tried (RFC 5321 section 5.1,
 * RFC 7505 null MX).
 *
 * Pure decisions over strings the caller supplies: this module never
 * resolves a name, opens a socket, reads the registry or the clock, and
 * never allocates. DNS answers are hostile input like anything else: names
 * are bounded and compared exactly, and the caller's seed (not a clock)
 * decides how hosts of equal preference are shuffled, so tests can pin it.
 * Portable core: no windows.h.
 */
#ifndef IMSVC_ROUTE_H
#define IMSVC_ROUTE_H

#include <stddef.h>

#include "address.h"
#include "domains.h"
#include "routelist.h"

#define ROUTE_HOST_MAX 255      /* a domain name, RFC 5321 4.5.3.1.2 */
/* longest route_key, with the NUL: "route:" pattern ":" host ":" port */
#define ROUTE_KEY_MAX  (ROUTELIST_PATTERN_MAX + ROUTE_HOST_MAX + 32)

enum route_kind { ROUTE_DROP, ROUTE_SMARTHOST, ROUTE_MX };

struct route {
    enum route_kind kind;
    /* DROP: "";  SMARTHOST: the smart host name (lower case) or address (no
     * brackets);  MX: the recipient's domain (lower case, no trailing dot),
     * or for an address-literal domain like [192.0.2.1] the address without
     * brackets (and without the "IPv6:" tag). */
    char host[ROUTE_HOST_MAX + 1];
    unsigned port;      /* SMARTHOST: its port; MX: the configured outbound port; DROP: 0 */
    int literal;        /* MX: the domain was an address literal: connect to it directly, no DNS */
    /* SMARTHOST through a per-domain route (core/routelist.h): the route's
     * domain ("example.com", "*.example.com"), which names its settings;
     * "" for SmartHost itself. */
    char via[ROUTELIST_PATTERN_MAX + 1];
};

struct route_config {
    /* LocalDomains, parsed (core/domains.h: "example.com" matched
     * case-insensitively with a trailing dot ignored, "*.example.com"
     * subdomains only, "[192.0.2.1]" that address literal); NULL: none */
    const struct domain_list *local;
    const char *smarthost;              /* "" or NULL: none; else "host", "host:port",
                                         * "[v4 or v6 addr]" or "[addr]:port" */
    unsigned smarthost_default_port;    /* 25 */
    unsigned outbound_port;             /* port for MX delivery, normally 25 */
    /* per-domain routes, tried before the smart host; NULL: none */
    const struct route_list *routes;
};

/* Parse "host", "host:port", "[addr]" or "[addr]:port" (addr IPv4, IPv6, or
 * "IPv6:" followed by IPv6). A bare IPv6 address without brackets is
 * rejected: its colons cannot be told from the port's. A port is 1..65535
 * in decimal digits; default_port (also 1..65535) is used when none is
 * given. host gets the name in lower case without a trailing dot, or the
 * address in canonical form without brackets. Returns 0, or -1 (nothing
 * useful in host and *port). */
int route_parse_hostport(const char *text, unsigned default_port, char *host, size_t host_len,
                         unsigned *port);

/* Where mail for domain (a name, or an address literal "[192.0.2.1]" /
 * "[IPv6:2001:db8::1]", as struct addr_path holds it) goes: DROP when it is
 * a local domain; else SMARTHOST through the domain's route when one
 * matches (routelist_find, via set); else SMARTHOST when one is configured;
 * else MX. Returns 0,
 * or -1 when the domain is not a valid name or literal, or the smart host
 * (or a needed port) is invalid. */
int route_select(const struct route_config *c, const char *domain, struct route *out);

/* The verdict on one recipient ------------------------------------------------
 *
 * route_recipient is the one decision, made the same way by the SMTP server
 * at RCPT TO (core/smtpd.c) and by the queue before each delivery round
 * (service/queue/queue.c), so that a recipient is either refused while the client
 * is still there, or accepted and routable: never accepted and then bounced
 * for a reason known at RCPT. docs/routing.md has the table of forms. */

#define ROUTE_WHY_MAX 400

struct route_verdict {
    int code;                   /* 250: accepted; else the reply to refuse with:
                                   550 (permanent) or 451 (a setting is wrong) */
    const char *status;         /* enhanced status: "2.1.5", "5.1.2", "5.1.3",
                                   "5.7.1" or "4.3.5" */
    char why[ROUTE_WHY_MAX + 1]; /* refused: a sentence that says why; "" if accepted */
    struct addr_path addr;      /* accepted: the address to deliver to; a domain-less
                                   <Postmaster> becomes postmaster@ the first local
                                   domain (RFC 5321 4.5.1) */
    struct route route;         /* accepted: where it goes */
};

/* Decide for one recipient as RCPT TO parsed it. may_relay: the client
 * authenticated or is in a relay range (the queue passes 1: what it holds
 * was accepted). Returns 0 (accepted: v->addr and v->route are set), or -1
 * (refused: v->code, v->status and v->why say how). In order:
 *   - <Postmaster> with no domain: DROP, always;
 *   - any other address without a domain: 550 5.1.3;
 *   - a local domain: DROP; but a client that may not relay is refused
 *     (550 5.7.1) a local part that names another host: '%', '!' or '@' in
 *     it, or an IMCEA local part that encapsulates one (+25, +21, +40);
 *   - an address literal that no host can have (0.0.0.0/8, broadcast,
 *     multicast, reserved; IPv6 unspecified or multicast): 550 5.1.2;
 *   - any other domain when the client may not relay: 550 5.7.1;
 *   - else route_select; a SmartHost or OutboundPort setting that is not
 *     valid: 451 4.3.5 (the message waits until it is fixed). */
int route_recipient(const struct route_config *c, const struct addr_path *rcpt, int may_relay,
                    struct route_verdict *v);

/* A destination key that groups recipients for one connection: "drop",
 * "smarthost:HOST:PORT", "route:DOMAIN:HOST:PORT" (a per-domain route: its
 * own settings, so never shared with SmartHost), "mx:domain" (lower case)
 * or "mx:[address]" for an address literal (so it can never equal a domain
 * name). Returns the length
 * written (NUL-terminated), or -1 if buf is too small or r is not a route. */
int route_key(const struct route *r, char *buf, size_t n);

/* MX records ---------------------------------------------------------------- */

struct route_mx {
    unsigned short pref;
    char host[ROUTE_HOST_MAX + 1];
};

enum route_mx_result {
    ROUTE_MX_OK,
    ROUTE_MX_IMPLICIT,  /* no MX records: use the domain itself (A/AAAA) */
    ROUTE_MX_NULL,      /* RFC 7505 null MX: the domain accepts no mail: permanent 5.1.10 */
    ROUTE_MX_SELF,      /* we are the best MX: loop, permanent 5.4.6 */
};

/* Order the n records in place by preference, shuffling equal preferences
 * with the given seed (a tiny deterministic PRNG), drop duplicates (names
 * compared case-insensitively, a trailing dot ignored; the lowest preference
 * is kept) and empty names, and when one of the hosts is us (self_names,
 * case-insensitive) drop it and every record of equal or higher preference
 * number. *n_out gets how many remain (0 unless ROUTE_MX_OK).
 *
 * A target of "" or "." is the root: when it is the only record (after
 * duplicates are removed) the domain has a null MX (RFC 7505); among other
 * records it names no host and is dropped. Each name is cut at
 * ROUTE_HOST_MAX octets (its NUL is forced). */
enum route_mx_result route_mx_order(struct route_mx *mx, size_t n, const char *const *self_names,
                                    size_t n_self, unsigned seed, size_t *n_out);

#endif
