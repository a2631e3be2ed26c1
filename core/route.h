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

#define ROUTE_HOST_MAX 255      /* a domain name, RFC 5321 4.5.3.1.2 */
#define ROUTE_KEY_MAX  (ROUTE_HOST_MAX + 32) /* longest route_key, with the NUL */

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
};

struct route_config {
    /* "example.com": matched case-insensitively, a trailing dot ignored; an
     * entry "*.example.com" matches subdomains only; "[192.0.2.1]" matches
     * that address literal. Entries that are none of these never match. */
    const char *const *local_domains;
    size_t n_local;
    const char *smarthost;              /* "" or NULL: none; else "host", "host:port",
                                         * "[v4 or v6 addr]" or "[addr]:port" */
    unsigned smarthost_default_port;    /* 25 */
    unsigned outbound_port;             /* port for MX delivery, normally 25 */
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
 * a local domain; else SMARTHOST when one is configured; else MX. Returns 0,
 * or -1 when the domain is not a valid name or literal, or the smart host
 * (or a needed port) is invalid. */
int route_select(const struct route_config *c, const char *domain, struct route *out);

/* A destination key that groups recipients for one connection: "drop",
 * "smarthost:HOST:PORT", "mx:domain" (lower case) or "mx:[address]" for an
 * address literal (so it can never equal a domain name). Returns the length
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
