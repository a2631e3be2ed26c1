/* domains.h - the LocalDomains list and the RelayAddresses list: each parsed
 * once from the configuration's text, and the one matcher for each.
 *
 * The relay check (core/route.c through core/smtpd.c), routing in the queue
 * (core/route.c), IMCEA decoding (core/imcea.c) and the configuration check
 * (service/host/config.c) all use these, so what one of them calls local the
 * others call local, and what the configuration accepts is exactly what the
 * matcher can match. Portable core: no windows.h, no I/O. Lists grow as
 * needed (they are the only allocation here); an entry the matcher could
 * not use is a configuration error naming the entry, never skipped.
 *
 * Text: entries separated by ';', ',', spaces or tabs (the registry's
 * REG_MULTI_SZ strings arrive joined by ';'); empty entries are ignored.
 *
 * LocalDomains entries:
 *   example.com        that name: any case, one trailing dot ignored
 *   *.example.com      every subdomain of example.com, not example.com itself
 *   [192.0.2.1]        that IPv4 address literal, written in any valid form
 *   [IPv6:2001:db8::1] that IPv6 address literal (the tag is required, as in
 *                      RFC 5321; an IPv4 literal never matches an IPv6 one)
 * RelayAddresses entries: an IPv4 or IPv6 address ("192.0.2.7",
 * "2001:db8::7") or a range in CIDR form ("192.0.2.0/24", "2001:db8::/32");
 * bits below the prefix length are ignored.
 */
#ifndef IMSVC_DOMAINS_H
#define IMSVC_DOMAINS_H

#include <stddef.h>

#include "address.h"

#define DOMAINS_WHY_MAX  400    /* a configuration error's sentence, with its NUL */
#define DOMAINS_ENTRY_MAX 300   /* longest entry text that is read (a domain is 255) */

enum domain_kind {
    DOMAIN_NAME,        /* example.com */
    DOMAIN_WILDCARD,    /* *.example.com: name holds "example.com" */
    DOMAIN_IPV4,        /* [192.0.2.1] */
    DOMAIN_IPV6         /* [IPv6:2001:db8::1] */
};

struct domain_entry {
    enum domain_kind kind;
    /* canonical: a name in lower case without a trailing dot; a literal with
     * its brackets as core/address.c prints it (so equal addresses are equal
     * text) */
    char name[ADDR_DOMAIN_MAX + 1];
};

struct domain_list {
    struct domain_entry *v;
    size_t n, cap;
};

struct addr_range {
    int v6;                     /* 0: IPv4 (addr[0..4)), 1: IPv6 */
    unsigned char addr[16];     /* network order, bits below the prefix zeroed */
    unsigned bits;              /* prefix length: 0..32 or 0..128 */
};

struct range_list {
    struct addr_range *v;
    size_t n, cap;
};

/* Parse LocalDomains text into l (which must be zeroed or freed; it is
 * replaced). Returns 0; or -1 with why (if not NULL) saying which entry is
 * wrong and why, and l empty; or -2 when out of memory (l empty). */
int domains_parse(struct domain_list *l, const char *text, char *why, size_t why_len);

/* Is domain local? domain is as an address gives it: a name (any case, one
 * trailing dot allowed) or an address literal "[192.0.2.1]" /
 * "[IPv6:2001:db8::1]". A domain that is neither never matches. l may be
 * NULL (no local domains). Returns 1 or 0. */
int domains_match(const struct domain_list *l, const char *domain);

/* The first entry that names one domain (a name or a literal, not a
 * wildcard), or NULL: where a domain-less <Postmaster> is delivered. */
const struct domain_entry *domains_first_single(const struct domain_list *l);

void domains_free(struct domain_list *l);

/* Parse RelayAddresses text into l, as domains_parse. */
int domains_parse_ranges(struct range_list *l, const char *text, char *why, size_t why_len);

/* Is the address (v6: 0 for 4 octets of IPv4, 1 for 16 of IPv6, network
 * order) in one of the ranges? An IPv4-mapped IPv6 address (::ffff:a.b.c.d)
 * is looked up as the IPv4 address it carries, since that is how a dual-stack
 * socket reports an IPv4 client. l may be NULL. Returns 1 or 0. */
int domains_in_ranges(const struct range_list *l, int v6, const unsigned char *addr);

void domains_free_ranges(struct range_list *l);

/* An IPv4 ("192.0.2.1") or IPv6 ("2001:db8::1", "::ffff:192.0.2.1") address
 * in text at s[0..len) into 16 octets (IPv4: the first 4), as inet_pton
 * reads it; *v6 says which. Returns 0 or -1. */
int domains_parse_ip(const char *s, size_t len, int *v6, unsigned char out[16]);

#endif
