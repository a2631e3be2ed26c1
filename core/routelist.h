/* routelist.h - per-domain routes (IIS "remote domains"): the text of a
 * route, parsed once, and the one decision of which route a domain takes.
 *
 * A route sends the mail of one domain, or of every subdomain of one
 * ("*.example.com"), to its own smart host, with its own TLS policy,
 * certificate trust and authentication, instead of SmartHost or the MX
 * hosts. What a route's domain matches is core/domains.c's matcher, so
 * "*.example.com" means here exactly what it means in LocalDomains.
 *
 * Text: one route a line (LF or CRLF; empty lines are ignored):
 *
 *   DOMAIN HOST[:PORT] [tls=off|opportunistic|required] [trust=verify|any]
 *                      [auth=none|MECH[,MECH...]] [user=NAME]
 *
 * DOMAIN as a LocalDomains entry; HOST[:PORT] as SmartHost (port 25 when
 * none); MECH is ntlm, plain or login. Defaults: trust=verify, auth=none,
 * tls=required when auth has plain or login (they send the password
 * itself), else tls=opportunistic. plain and login need user=NAME and
 * refuse tls=off; NAME is 1 to 255 printable octets without spaces
 * (DOMAIN\user for NTLM). Each key at most once, one route per domain.
 *
 * Portable core: no windows.h, no I/O. A route never holds a password:
 * the service keeps it as a DPAPI secret named after the route's domain.
 * Lists grow as needed (their only allocation); an entry that cannot be
 * used is refused with a sentence naming it, never skipped.
 */
#ifndef IMSVC_ROUTELIST_H
#define IMSVC_ROUTELIST_H

#include <stddef.h>

#include "domains.h"

#define ROUTELIST_HOST_MAX  255     /* as ROUTE_HOST_MAX */
#define ROUTELIST_USER_MAX  255
#define ROUTELIST_PATTERN_MAX (ADDR_DOMAIN_MAX + 2)   /* "*." and a domain */
#define ROUTELIST_LINE_MAX  1024    /* one route's text */
#define ROUTELIST_WHY_MAX   400     /* a refusal's sentence, with its NUL */
#define ROUTELIST_MAX       1000    /* routes in one list */

#define ROUTELIST_AUTH_NTLM  0x1u   /* the same bits as SMTPC_MECH_* */
#define ROUTELIST_AUTH_PLAIN 0x2u
#define ROUTELIST_AUTH_LOGIN 0x4u
#define ROUTELIST_AUTH_PASSWORD (ROUTELIST_AUTH_PLAIN | ROUTELIST_AUTH_LOGIN)

enum routelist_tls { ROUTELIST_TLS_OFF, ROUTELIST_TLS_OPPORTUNISTIC, ROUTELIST_TLS_REQUIRED };

struct route_entry {
    struct domain_entry domain;             /* as domains_parse reads it */
    char pattern[ROUTELIST_PATTERN_MAX + 1]; /* canonical: "example.com", "*.example.com",
                                               "[192.0.2.1]" */
    char host[ROUTELIST_HOST_MAX + 1];      /* as route_parse_hostport gives it */
    unsigned port;
    enum routelist_tls tls;
    int trust_any;                          /* trust=any */
    unsigned auth;                          /* ROUTELIST_AUTH_*; 0: none */
    char user[ROUTELIST_USER_MAX + 1];      /* "" when none */
};

struct route_list {
    struct route_entry *v;
    size_t n, cap;
};

/* One route from text[0..len) (no line end). Returns 0, or -1 with why (if
 * not NULL) saying what is wrong. */
int routelist_parse_line(struct route_entry *e, const char *text, size_t len, char *why,
                         size_t why_len);

/* Every line of text into l (zeroed or freed before; it is replaced).
 * Returns 0; -1 with why naming the route and what is wrong (l empty);
 * -2 when out of memory (l empty). */
int routelist_parse(struct route_list *l, const char *text, char *why, size_t why_len);

/* The route for domain (a name, any case, one trailing dot allowed, or an
 * address literal, as an address gives it), or NULL. An exact entry wins
 * over a wildcard, a longer wildcard over a shorter one. l may be NULL. */
const struct route_entry *routelist_find(const struct route_list *l, const char *domain);

/* The route whose pattern is exactly pattern (canonical), or NULL. */
const struct route_entry *routelist_get(const struct route_list *l, const char *pattern);

/* "auth=..." value: a comma list of ntlm, plain, login, or none. Returns
 * 0 with *mechs set, or -1. */
int routelist_parse_mechs(const char *text, size_t len, unsigned *mechs);

/* The canonical text of a route: every key written, in the order above,
 * the port always given; routelist_parse_line reads it back to an equal
 * entry. spec_only leaves out the domain (what follows it). Returns the
 * length, or -1 when n is too small. */
int routelist_format(const struct route_entry *e, int spec_only, char *buf, size_t n);

void routelist_free(struct route_list *l);

#endif
