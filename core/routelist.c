/* routelist.c - per-domain routes: parsing, matching, canonical text (see
 * routelist.h, docs/routing.md).
 *
 * The domain is read by core/domains.c and the host by core/route.c's
 * route_parse_hostport, so a route accepts exactly the forms LocalDomains
 * and SmartHost accept. Must never guess: a key it does not know, a value
 * out of its set, a repeated key or domain is refused with a sentence; must
 * never read past a bounded text.
 */
#include "routelist.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route.h"

#define ROUTELIST_DEFAULT_PORT 25u
#define SHOWN_MAX 80            /* octets of a bad token quoted in a sentence */

static int lower(int ch)
{
    return ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch;
}

static int is_space(int ch)
{
    return ch == ' ' || ch == '\t';
}

static int eq_ci(const char *a, size_t n, const char *lit)
{
    if (strlen(lit) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)a[i]) != lit[i])
            return 0;
    return 1;
}

static int say(char *why, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A refusal's sentence (cut with "..." if it does not fit), printable
 * whatever it quotes (domains.c quotes an entry as written); returns -1. */
static int say(char *why, size_t n, const char *fmt, ...)
{
    if (!why || n == 0)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(why, n, fmt, ap);
    va_end(ap);
    if (w < 0)
        why[0] = '\0';
    else if ((size_t)w >= n && n > 4)
        memcpy(why + n - 4, "...", 4);
    for (char *p = why; *p; p++)
        if ((unsigned char)*p < ' ' || (unsigned char)*p > '~')
            *p = '?';
    return -1;
}

/* A token for a sentence: printable, at most SHOWN_MAX octets. */
static void shown(const char *s, size_t n, char out[SHOWN_MAX + 4])
{
    size_t k = 0;
    for (size_t i = 0; i < n && k < SHOWN_MAX; i++)
        out[k++] = (unsigned char)s[i] >= ' ' && (unsigned char)s[i] <= '~' ? s[i] : '?';
    if (n > SHOWN_MAX) {
        memcpy(out + k, "...", 3);
        k += 3;
    }
    out[k] = '\0';
}

int routelist_parse_mechs(const char *text, size_t len, unsigned *mechs)
{
    unsigned m = 0;
    if (!text || !mechs || len == 0)
        return -1;
    if (eq_ci(text, len, "none")) {
        *mechs = 0;
        return 0;
    }
    for (size_t i = 0; i <= len;) {
        size_t j = i;
        while (j < len && text[j] != ',')
            j++;
        unsigned bit = eq_ci(text + i, j - i, "ntlm") ? ROUTELIST_AUTH_NTLM
                     : eq_ci(text + i, j - i, "plain") ? ROUTELIST_AUTH_PLAIN
                     : eq_ci(text + i, j - i, "login") ? ROUTELIST_AUTH_LOGIN : 0;
        if (!bit || (m & bit))
            return -1;
        m |= bit;
        i = j + 1;
    }
    *mechs = m;
    return 0;
}

/* The domain token: exactly one LocalDomains entry, kept with its
 * canonical text. */
static int parse_domain(struct route_entry *e, const char *s, size_t n, char *why, size_t why_len)
{
    char text[ROUTELIST_PATTERN_MAX + 2], msg[DOMAINS_WHY_MAX], show[SHOWN_MAX + 4];
    struct domain_list l = { 0 };
    shown(s, n, show);
    if (n > ROUTELIST_PATTERN_MAX + 1)
        return say(why, why_len, "the domain \"%s\" is longer than %d octets", show,
                   ROUTELIST_PATTERN_MAX);
    memcpy(text, s, n);
    text[n] = '\0';
    int rc = domains_parse(&l, text, msg, sizeof msg);
    if (rc == -2)
        return say(why, why_len, "out of memory");
    if (rc != 0 || l.n != 1) {
        domains_free(&l);
        if (rc == 0)
            return say(why, why_len, "\"%s\" is not one domain", show);
        /* domains.c's sentence, which speaks of LocalDomains */
        const char *k = strstr(msg, " is not a local domain");
        if (k)
            return say(why, why_len, "%.*s is not a domain a route can name%s", (int)(k - msg), msg,
                       k + strlen(" is not a local domain"));
        return say(why, why_len, "%s", msg);
    }
    e->domain = l.v[0];
    domains_free(&l);
    int w = snprintf(e->pattern, sizeof e->pattern, "%s%s",
                     e->domain.kind == DOMAIN_WILDCARD ? "*." : "", e->domain.name);
    if (w < 0 || (size_t)w >= sizeof e->pattern)
        return say(why, why_len, "the domain \"%s\" is too long", show);
    return 0;
}

static int parse_user(struct route_entry *e, const char *v, size_t n, char *why, size_t why_len)
{
    if (n == 0 || n > ROUTELIST_USER_MAX)
        return say(why, why_len, "user= wants a name of 1 to %d octets", ROUTELIST_USER_MAX);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] <= ' ' || (unsigned char)v[i] == 127)
            return say(why, why_len, "user= may not hold spaces or control characters");
    memcpy(e->user, v, n);
    e->user[n] = '\0';
    return 0;
}

int routelist_parse_line(struct route_entry *e, const char *text, size_t len, char *why,
                         size_t why_len)
{
    char host[ROUTELIST_HOST_MAX + 16], show[SHOWN_MAX + 4];
    const char *tok[8];
    size_t tlen[8], nt = 0;
    int have_tls = 0, have_trust = 0, have_auth = 0, have_user = 0;

    if (!e)
        return -1;
    memset(e, 0, sizeof *e);
    if (why && why_len)
        why[0] = '\0';
    if (!text || len > ROUTELIST_LINE_MAX)
        return say(why, why_len, "a route is at most %d octets", ROUTELIST_LINE_MAX);
    for (size_t i = 0; i < len;) {
        while (i < len && is_space((unsigned char)text[i]))
            i++;
        if (i == len)
            break;
        size_t j = i;
        while (j < len && !is_space((unsigned char)text[j]))
            j++;
        if (nt == sizeof tok / sizeof tok[0])
            return say(why, why_len, "too many words: a route is a domain, a host and at most "
                       "four key=value settings");
        tok[nt] = text + i;
        tlen[nt++] = j - i;
        i = j;
    }
    if (nt < 2)
        return say(why, why_len, "a route is a domain and a host[:port], then settings");
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)text[i] < ' ' && !is_space((unsigned char)text[i]))
            return say(why, why_len, "a route may not hold control characters");

    if (parse_domain(e, tok[0], tlen[0], why, why_len) != 0)
        return -1;
    shown(tok[1], tlen[1], show);
    if (tlen[1] >= sizeof host)
        return say(why, why_len, "the host \"%s\" is too long", show);
    memcpy(host, tok[1], tlen[1]);
    host[tlen[1]] = '\0';
    if (route_parse_hostport(host, ROUTELIST_DEFAULT_PORT, e->host, sizeof e->host, &e->port) != 0)
        return say(why, why_len, "\"%s\" is not a host, host:port, [address] or [address]:port", show);

    e->tls = ROUTELIST_TLS_OPPORTUNISTIC;
    for (size_t k = 2; k < nt; k++) {
        const char *t = tok[k], *eq = memchr(t, '=', tlen[k]);
        shown(t, tlen[k], show);
        if (!eq)
            return say(why, why_len, "\"%s\" is not key=value (tls=, trust=, auth= or user=)", show);
        size_t kl = (size_t)(eq - t), vl = tlen[k] - kl - 1;
        const char *v = eq + 1;
        if (eq_ci(t, kl, "tls")) {
            if (have_tls++)
                return say(why, why_len, "tls= is given twice");
            if (eq_ci(v, vl, "off"))
                e->tls = ROUTELIST_TLS_OFF;
            else if (eq_ci(v, vl, "opportunistic"))
                e->tls = ROUTELIST_TLS_OPPORTUNISTIC;
            else if (eq_ci(v, vl, "required"))
                e->tls = ROUTELIST_TLS_REQUIRED;
            else
                return say(why, why_len, "\"%s\": tls= is off, opportunistic or required", show);
        } else if (eq_ci(t, kl, "trust")) {
            if (have_trust++)
                return say(why, why_len, "trust= is given twice");
            if (eq_ci(v, vl, "verify"))
                e->trust_any = 0;
            else if (eq_ci(v, vl, "any"))
                e->trust_any = 1;
            else
                return say(why, why_len, "\"%s\": trust= is verify or any", show);
        } else if (eq_ci(t, kl, "auth")) {
            if (have_auth++)
                return say(why, why_len, "auth= is given twice");
            if (routelist_parse_mechs(v, vl, &e->auth) != 0)
                return say(why, why_len, "\"%s\": auth= is none, or ntlm, plain and login "
                           "separated by commas, each once", show);
        } else if (eq_ci(t, kl, "user")) {
            if (have_user++)
                return say(why, why_len, "user= is given twice");
            if (parse_user(e, v, vl, why, why_len) != 0)
                return -1;
        } else {
            return say(why, why_len, "\"%s\": the settings are tls=, trust=, auth= and user=", show);
        }
    }
    if (e->auth & ROUTELIST_AUTH_PASSWORD) {
        if (!e->user[0])
            return say(why, why_len, "auth=plain and auth=login send a user name and password: "
                       "give user=NAME");
        if (!have_tls)
            e->tls = ROUTELIST_TLS_REQUIRED;
        else if (e->tls == ROUTELIST_TLS_OFF)
            return say(why, why_len, "auth=plain and auth=login send the password itself, which "
                       "is never done in clear: tls=off cannot go with them");
    }
    if (e->user[0] && !e->auth)
        return say(why, why_len, "user= is used only with auth=ntlm, plain or login");
    return 0;
}

static int list_add(struct route_list *l, const struct route_entry *e)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        struct route_entry *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = *e;
    return 0;
}

int routelist_parse(struct route_list *l, const char *text, char *why, size_t why_len)
{
    struct route_entry e;
    char msg[ROUTELIST_WHY_MAX], show[SHOWN_MAX + 4];
    if (!l)
        return -1;
    memset(l, 0, sizeof *l);
    if (why && why_len)
        why[0] = '\0';
    if (!text)
        return 0;
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        const char *next = nl ? nl + 1 : p + n;
        if (n > 0 && p[n - 1] == '\r')
            n--;
        size_t a = 0;
        while (a < n && is_space((unsigned char)p[a]))
            a++;
        if (a < n) {
            shown(p + a, n - a, show);
            if (routelist_parse_line(&e, p, n, msg, sizeof msg) != 0) {
                routelist_free(l);
                return say(why, why_len, "the route \"%s\" is not valid: %s", show, msg);
            }
            if (routelist_get(l, e.pattern)) {
                routelist_free(l);
                return say(why, why_len, "%s has two routes", e.pattern);
            }
            if (l->n >= ROUTELIST_MAX) {
                routelist_free(l);
                return say(why, why_len, "more than %d routes", ROUTELIST_MAX);
            }
            if (list_add(l, &e) != 0) {
                routelist_free(l);
                say(why, why_len, "out of memory");
                return -2;
            }
        }
        p = next;
    }
    return 0;
}

const struct route_entry *routelist_get(const struct route_list *l, const char *pattern)
{
    for (size_t i = 0; l && pattern && i < l->n; i++)
        if (strcmp(l->v[i].pattern, pattern) == 0)
            return &l->v[i];
    return NULL;
}

const struct route_entry *routelist_find(const struct route_list *l, const char *domain)
{
    const struct route_entry *best = NULL;
    for (size_t i = 0; l && domain && i < l->n; i++) {
        const struct route_entry *e = &l->v[i];
        /* the one matcher, over a list of this one entry */
        struct domain_list one = { (struct domain_entry *)&e->domain, 1, 1 };
        if (!domains_match(&one, domain))
            continue;
        if (e->domain.kind != DOMAIN_WILDCARD)
            return e;       /* exact: nothing is more specific */
        if (!best || strlen(e->domain.name) > strlen(best->domain.name))
            best = e;
    }
    return best;
}

int routelist_format(const struct route_entry *e, int spec_only, char *buf, size_t n)
{
    char auth[32] = "";
    static const char *const tls[] = { "off", "opportunistic", "required" };
    if (!e || !buf || n == 0 || (unsigned)e->tls > ROUTELIST_TLS_REQUIRED)
        return -1;
    if (!e->auth)
        snprintf(auth, sizeof auth, "none");
    else
        snprintf(auth, sizeof auth, "%s%s%s%s%s",
                 e->auth & ROUTELIST_AUTH_NTLM ? "ntlm" : "",
                 (e->auth & ROUTELIST_AUTH_NTLM) && (e->auth & ROUTELIST_AUTH_PASSWORD) ? "," : "",
                 e->auth & ROUTELIST_AUTH_PLAIN ? "plain" : "",
                 (e->auth & ROUTELIST_AUTH_PLAIN) && (e->auth & ROUTELIST_AUTH_LOGIN) ? "," : "",
                 e->auth & ROUTELIST_AUTH_LOGIN ? "login" : "");
    int w = snprintf(buf, n, "%s%s%s%s%s:%u tls=%s trust=%s auth=%s%s%s",
                     spec_only ? "" : e->pattern, spec_only ? "" : " ",
                     strchr(e->host, ':') ? "[" : "", e->host, strchr(e->host, ':') ? "]" : "",
                     e->port, tls[e->tls], e->trust_any ? "any" : "verify", auth,
                     e->user[0] ? " user=" : "", e->user);
    if (w < 0 || (size_t)w >= n) {
        buf[0] = '\0';
        return -1;
    }
    return w;
}

void routelist_free(struct route_list *l)
{
    if (!l)
        return;
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}
