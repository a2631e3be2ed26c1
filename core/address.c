/* address.c - RFC 5321 paths and MAIL/RCPT parameters (see address.h).
 *
 * A hand-written recursive-descent reader over the RFC 5321 4.1.2 grammar,
 * with the limits of 4.5.3.1. It works on (pointer, length) input, never
 * reads past len, never allocates, and writes only into the caller's fixed
 * structures. Each rejection is a static sentence naming the rule.
 */
#include "address.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define ST_RCPT   "5.1.3"   /* bad destination mailbox address syntax */
#define ST_MAIL   "5.1.7"   /* bad sender mailbox address syntax */
#define ST_PARAM  "5.5.4"   /* invalid command arguments */

#define KEYWORD_MAX 32
#define LABEL_MAX   63

struct rd {
    const char *s;
    size_t len, pos;
    enum addr_verb verb;
    struct addr_error *err;
};

static int fail_at(struct rd *r, int reply, const char *status, const char *rule)
{
    if (r->err) {
        r->err->reply = reply;
        r->err->status = status;
        r->err->rule = rule;
        r->err->offset = r->pos;
    }
    return -1;
}

/* A path syntax error: its status depends on whose path it is. */
static int bad_path(struct rd *r, const char *rule)
{
    return fail_at(r, 501, r->verb == ADDR_MAIL ? ST_MAIL : ST_RCPT, rule);
}

static int bad_param(struct rd *r, int reply, const char *rule)
{
    return fail_at(r, reply, ST_PARAM, rule);
}

static int peek(const struct rd *r) { return r->pos < r->len ? (unsigned char)r->s[r->pos] : -1; }

static int is_alpha(int c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_hex(int c) { return is_digit(c) || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f'); }
static int lower(int c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }
static int hexval(int c) { return is_digit(c) ? c - '0' : lower(c) - 'a' + 10; }

/* atext of RFC 5322 3.2.3, as RFC 5321 uses it for Atom. */
static int is_atext(int c)
{
    return is_alpha(c) || is_digit(c) || (c > 0 && c < 128 && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* qtextSMTP: %d32-33 / %d35-91 / %d93-126 */
static int is_qtext(int c) { return c == 32 || c == 33 || (c >= 35 && c <= 91) || (c >= 93 && c <= 126); }

static int ieq(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    if (alen != blen)
        return 0;
    for (size_t i = 0; i < alen; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return 0;
    return 1;
}

/* Domain names ------------------------------------------------------------ */

/* sub-domain *("." sub-domain), sub-domain = Let-dig [Ldh-str]. Reads as much
 * as belongs to the domain; returns its length or -1 with *rule set. */
static long scan_domain(const char *s, size_t len, const char **rule)
{
    size_t i = 0;
    for (;;) {
        size_t start = i;
        if (i >= len || !(is_alpha((unsigned char)s[i]) || is_digit((unsigned char)s[i]))) {
            *rule = "domain label must start with a letter or digit";
            return -1;
        }
        while (i < len && (is_alpha((unsigned char)s[i]) || is_digit((unsigned char)s[i]) || s[i] == '-'))
            i++;
        if (s[i - 1] == '-') {
            *rule = "domain label must not end with a hyphen";
            return -1;
        }
        if (i - start > LABEL_MAX) {
            *rule = "domain label longer than 63 octets";
            return -1;
        }
        if (i < len && s[i] == '.') {
            i++;
            continue;
        }
        break;
    }
    if (i > ADDR_DOMAIN_MAX) {
        *rule = "domain longer than 255 octets";
        return -1;
    }
    return (long)i;
}

int addr_domain_valid(const char *s, size_t len)
{
    return addr_domain_rule(s, len) == NULL;
}

const char *addr_domain_rule(const char *s, size_t len)
{
    const char *rule = NULL;
    if (len == 0)
        return "domain is empty";
    long n = scan_domain(s, len, &rule);
    if (n < 0)
        return rule;
    return n == (long)len ? NULL : "domain holds a character other than a letter, digit, "
                                   "hyphen or dot";
}

/* Address literals ---------------------------------------------------------- */

/* Snum 3("." Snum) at s[0..len); fills 4 octets. */
static int parse_ipv4(const char *s, size_t len, unsigned char out[4])
{
    size_t i = 0;
    for (int k = 0; k < 4; k++) {
        if (k > 0) {
            if (i >= len || s[i] != '.')
                return -1;
            i++;
        }
        unsigned v = 0, nd = 0;
        while (i < len && is_digit((unsigned char)s[i]) && nd < 4) {
            v = v * 10 + (unsigned)(s[i] - '0');
            i++;
            nd++;
        }
        if (nd == 0 || nd > 3 || v > 255)
            return -1;
        out[k] = (unsigned char)v;
    }
    return i == len ? 0 : -1;
}

/* IPv6-addr of RFC 5321 4.1.3 (full, comp, v4-full, v4-comp) into 8 groups. */
static int parse_ipv6(const char *s, size_t len, unsigned short g[8])
{
    unsigned short head[8], tail[8];
    int nh = 0, nt = 0, gap = 0, units;
    size_t i = 0;

    if (len >= 2 && s[0] == ':' && s[1] == ':') {
        gap = 1;
        i = 2;
    } else if (len > 0 && s[0] == ':') {
        return -1;
    }
    while (i < len) {
        /* An IPv4 tail: digits up to a '.' before the next ':'. */
        size_t j = i;
        while (j < len && is_hex((unsigned char)s[j]))
            j++;
        if (j < len && s[j] == '.') {
            unsigned char v4[4];
            if (parse_ipv4(s + i, len - i, v4) != 0)
                return -1;
            unsigned short *dst = gap ? tail : head;
            int *n = gap ? &nt : &nh;
            if (*n > 6)
                return -1;
            dst[(*n)++] = (unsigned short)(v4[0] << 8 | v4[1]);
            dst[(*n)++] = (unsigned short)(v4[2] << 8 | v4[3]);
            i = len;
            break;
        }
        if (j == i || j - i > 4)
            return -1;
        unsigned v = 0;
        for (size_t k = i; k < j; k++)
            v = v * 16 + (unsigned)hexval((unsigned char)s[k]);
        unsigned short *dst = gap ? tail : head;
        int *n = gap ? &nt : &nh;
        if (*n >= 8)
            return -1;
        dst[(*n)++] = (unsigned short)v;
        i = j;
        if (i == len)
            break;
        if (s[i] != ':')
            return -1;
        i++;
        if (i < len && s[i] == ':') {
            if (gap)
                return -1;
            gap = 1;
            i++;
        } else if (i == len) {
            return -1;          /* a single trailing ':' */
        }
    }
    units = nh + nt;
    if (gap ? units > 6 : units != 8)
        return -1;
    memset(g, 0, 8 * sizeof g[0]);
    for (int k = 0; k < nh; k++)
        g[k] = head[k];
    for (int k = 0; k < nt; k++)
        g[8 - nt + k] = tail[k];
    return 0;
}

/* RFC 5952 text: lower case, no leading zeros, the longest run of two or more
 * zero groups (the first of equals) as "::". */
static void format_ipv6(const unsigned short g[8], char *out, size_t n)
{
    int best = -1, bestlen = 0;
    for (int k = 0; k < 8;) {
        if (g[k] != 0) {
            k++;
            continue;
        }
        int e = k;
        while (e < 8 && g[e] == 0)
            e++;
        if (e - k > bestlen && e - k >= 2) {
            best = k;
            bestlen = e - k;
        }
        k = e;
    }
    size_t o = 0;
    out[0] = 0;
    for (int k = 0; k < 8; k++) {
        if (k == best) {
            o += (size_t)snprintf(out + o, n - o, "::");
            k += bestlen - 1;
            continue;
        }
        if (k > 0 && k != best + bestlen)
            o += (size_t)snprintf(out + o, n - o, ":");
        o += (size_t)snprintf(out + o, n - o, "%x", g[k]);
    }
}

/* "[" ... "]" starting at r->pos; the canonical literal goes to path. */
static int parse_literal(struct rd *r, struct addr_path *path)
{
    size_t start = ++r->pos;            /* past '[' */
    while (r->pos < r->len && r->s[r->pos] != ']' && r->s[r->pos] != '[' && r->s[r->pos] != '\\')
        r->pos++;
    if (peek(r) != ']')
        return bad_path(r, "address literal is not closed by ']'");
    const char *body = r->s + start;
    size_t blen = r->pos - start;
    r->pos++;
    if (blen > 5 && ieq(body, 5, "IPv6:")) {
        unsigned short g[8];
        char text[48];
        if (parse_ipv6(body + 5, blen - 5, g) != 0)
            return bad_path(r, "invalid IPv6 address literal");
        format_ipv6(g, text, sizeof text);
        snprintf(path->domain, sizeof path->domain, "[IPv6:%s]", text);
        path->kind = ADDR_DOMAIN_IPV6;
        return 0;
    }
    if (memchr(body, ':', blen))
        return bad_path(r, "unknown address literal tag (only IPv6: is defined)");
    unsigned char v4[4];
    if (parse_ipv4(body, blen, v4) != 0)
        return bad_path(r, "invalid IPv4 address literal");
    snprintf(path->domain, sizeof path->domain, "[%u.%u.%u.%u]", v4[0], v4[1], v4[2], v4[3]);
    path->kind = ADDR_DOMAIN_IPV4;
    return 0;
}

static int parse_domain_name(struct rd *r, struct addr_path *path)
{
    const char *rule;
    long n = scan_domain(r->s + r->pos, r->len - r->pos, &rule);
    if (n < 0)
        return bad_path(r, rule);
    for (long i = 0; i < n; i++)
        path->domain[i] = (char)lower((unsigned char)r->s[r->pos + (size_t)i]);
    path->domain[n] = 0;
    path->kind = ADDR_DOMAIN_NAME;
    r->pos += (size_t)n;
    return 0;
}

/* Local parts --------------------------------------------------------------- */

/* An IMCEA-encapsulated local part carries a whole foreign address and is
 * routinely longer than 64 octets; Exchange accepts it, so do we, up to the
 * path limit. Every other local part keeps RFC 5321's 64. */
static size_t addr_local_limit(const char *local, size_t len)
{
    return len >= 5 && ieq(local, 5, "IMCEA") ? ADDR_PATH_MAX : ADDR_LOCAL_MAX;
}

static int dot_string_ok(const char *s, size_t len)
{
    if (len == 0 || s[0] == '.' || s[len - 1] == '.')
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.') {
            if (s[i + 1] == '.')
                return 0;
        } else if (!is_atext((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}

static int parse_local(struct rd *r, struct addr_path *path)
{
    size_t start = r->pos, n = 0;
    if (peek(r) == '"') {
        r->pos++;
        for (;;) {
            int c = peek(r);
            if (c < 0)
                return bad_path(r, "quoted local part is not closed by '\"'");
            if (c == '"')
                break;
            if (c == '\\') {
                r->pos++;
                c = peek(r);
                if (c < 32 || c > 126)
                    return bad_path(r, "backslash in a quoted local part must precede a printable character");
            } else if (!is_qtext(c)) {
                return bad_path(r, "character not allowed in a quoted local part");
            }
            if (n >= ADDR_PATH_MAX)
                return bad_path(r, "path longer than 256 octets");
            path->local[n++] = (char)c;
            r->pos++;
        }
        r->pos++;
        path->local[n] = 0;
        path->quoted = !dot_string_ok(path->local, n);
    } else {
        int prev_dot = 1;
        for (;;) {
            int c = peek(r);
            if (c == '.') {
                if (prev_dot)
                    return bad_path(r, "empty atom in local part (leading or double dot)");
                prev_dot = 1;
            } else if (c >= 0 && is_atext(c)) {
                prev_dot = 0;
            } else {
                break;
            }
            if (n >= ADDR_PATH_MAX)
                return bad_path(r, "path longer than 256 octets");
            path->local[n++] = (char)c;
            r->pos++;
        }
        if (n == 0) {
            int c = peek(r);
            return bad_path(r, c == '@' || c == '>' || c < 0 ? "local part is empty"
                                                           : "character not allowed in local part");
        }
        if (prev_dot)
            return bad_path(r, "local part ends with a dot");
        path->local[n] = 0;
        path->quoted = 0;
    }
    if (r->pos - start > addr_local_limit(path->local, n))
        return bad_path(r, "local part longer than 64 octets");
    return 0;
}

/* Mailbox = Local-part "@" ( Domain / address-literal ) */
static int parse_mailbox_at(struct rd *r, struct addr_path *path)
{
    if (parse_local(r, path) != 0)
        return -1;
    if (peek(r) != '@')
        return bad_path(r, peek(r) < 0 || peek(r) == '>' ? "mailbox has no '@domain'"
                                                        : "character not allowed in local part");
    r->pos++;
    if (peek(r) == '[')
        return parse_literal(r, path);
    return parse_domain_name(r, path);
}

static void reset_path(struct addr_path *p)
{
    memset(p, 0, sizeof *p);
    p->kind = ADDR_DOMAIN_NONE;
}

/* "<" [ A-d-l ":" ] Mailbox ">" or "<>" (MAIL), or "<Postmaster>" (RCPT). */
static int parse_path_at(struct rd *r, struct addr_path *path)
{
    size_t start = r->pos;
    if (peek(r) != '<')
        return bad_path(r, "path must be enclosed in '<' and '>'");
    r->pos++;
    if (peek(r) == '>') {
        if (r->verb != ADDR_MAIL)
            return bad_path(r, "the null path <> is only valid for MAIL FROM");
        r->pos++;
        path->null_path = 1;
        return 0;
    }
    if (r->verb == ADDR_RCPT && r->len - r->pos >= 11 && ieq(r->s + r->pos, 11, "postmaster>")) {
        memcpy(path->local, "Postmaster", 11);
        r->pos += 11;
        return 0;
    }
    if (peek(r) == '@') {
        /* A-d-l: source routes are accepted and ignored (RFC 5321 C). */
        for (;;) {
            r->pos++;                   /* past '@' */
            const char *rule;
            long n = scan_domain(r->s + r->pos, r->len - r->pos, &rule);
            if (n < 0)
                return bad_path(r, "invalid domain in source route");
            r->pos += (size_t)n;
            if (peek(r) == ',') {
                r->pos++;
                if (peek(r) != '@')
                    return bad_path(r, "source route entry must start with '@'");
                continue;
            }
            if (peek(r) != ':')
                return bad_path(r, "source route must end with ':'");
            r->pos++;
            break;
        }
        path->had_route = 1;
    }
    if (parse_mailbox_at(r, path) != 0)
        return -1;
    if (peek(r) != '>')
        return bad_path(r, "path must end with '>'");
    r->pos++;
    if (r->pos - start > ADDR_PATH_MAX) {
        r->pos = start;
        return bad_path(r, "path longer than 256 octets");
    }
    return 0;
}

/* Parameters ---------------------------------------------------------------- */

/* xtext (RFC 3461 4): xchar is "!".."~" except "+" and "="; "+" HH with upper
 * case hex. Returns the decoded length, or -1. */
static long xtext_check(const char *v, size_t len)
{
    long n = 0;
    for (size_t i = 0; i < len; i++, n++) {
        int c = (unsigned char)v[i];
        if (c == '+') {
            if (len - i < 3)
                return -1;
            int h1 = (unsigned char)v[i + 1], h2 = (unsigned char)v[i + 2];
            if (!(is_digit(h1) || (h1 >= 'A' && h1 <= 'F')) || !(is_digit(h2) || (h2 >= 'A' && h2 <= 'F')))
                return -1;
            i += 2;
        } else if (c < 33 || c > 126 || c == '=') {
            return -1;
        }
    }
    return n;
}

#define P_SIZE   0x01u
#define P_BODY   0x02u
#define P_AUTH   0x04u
#define P_RET    0x08u
#define P_ENVID  0x10u
#define P_NOTIFY 0x20u
#define P_ORCPT  0x40u

#define FOR_MAIL 1u
#define FOR_RCPT 2u

typedef const char *(*param_take)(const char *v, size_t vlen, struct addr_params *p);

static int copy_value(char *dst, size_t cap, const char *v, size_t vlen)
{
    if (vlen >= cap)
        return -1;
    memcpy(dst, v, vlen);
    dst[vlen] = 0;
    return 0;
}

static const char *take_size(const char *v, size_t vlen, struct addr_params *p)
{
    unsigned long long x = 0;
    if (vlen == 0 || vlen > 20)
        return "SIZE must be 1 to 20 digits";
    for (size_t i = 0; i < vlen; i++) {
        if (!is_digit((unsigned char)v[i]))
            return "SIZE must be 1 to 20 digits";
        unsigned d = (unsigned)(v[i] - '0');
        if (x > (~0ULL - d) / 10)
            return "SIZE is out of range";
        x = x * 10 + d;
    }
    p->size = x;
    p->has_size = 1;
    return NULL;
}

static const char *take_body(const char *v, size_t vlen, struct addr_params *p)
{
    if (ieq(v, vlen, "7BIT"))
        p->body = ADDR_BODY_7BIT;
    else if (ieq(v, vlen, "8BITMIME"))
        p->body = ADDR_BODY_8BITMIME;
    else if (ieq(v, vlen, "BINARYMIME"))
        p->body = ADDR_BODY_BINARYMIME;
    else
        return "BODY must be 7BIT, 8BITMIME or BINARYMIME";
    return NULL;
}

static const char *take_auth(const char *v, size_t vlen, struct addr_params *p)
{
    if (!(vlen == 2 && v[0] == '<' && v[1] == '>') && xtext_check(v, vlen) <= 0)
        return "AUTH must be <> or xtext";
    if (copy_value(p->auth, sizeof p->auth, v, vlen) != 0)
        return "AUTH value longer than 500 octets";
    p->has_auth = 1;
    return NULL;
}

static const char *take_ret(const char *v, size_t vlen, struct addr_params *p)
{
    if (ieq(v, vlen, "FULL"))
        p->ret = ADDR_RET_FULL;
    else if (ieq(v, vlen, "HDRS"))
        p->ret = ADDR_RET_HDRS;
    else
        return "RET must be FULL or HDRS";
    return NULL;
}

static const char *take_envid(const char *v, size_t vlen, struct addr_params *p)
{
    long n = xtext_check(v, vlen);
    if (n <= 0)
        return "ENVID must be xtext";
    if (n > ADDR_ENVID_MAX)
        return "ENVID longer than 100 octets";
    copy_value(p->envid, sizeof p->envid, v, vlen);  /* vlen <= 300 here */
    p->has_envid = 1;
    return NULL;
}

static const char *take_notify(const char *v, size_t vlen, struct addr_params *p)
{
    unsigned bits = 0;
    size_t i = 0;
    while (i <= vlen) {
        size_t j = i;
        while (j < vlen && v[j] != ',')
            j++;
        if (ieq(v + i, j - i, "NEVER"))
            bits |= ADDR_NOTIFY_NEVER;
        else if (ieq(v + i, j - i, "SUCCESS"))
            bits |= ADDR_NOTIFY_SUCCESS;
        else if (ieq(v + i, j - i, "FAILURE"))
            bits |= ADDR_NOTIFY_FAILURE;
        else if (ieq(v + i, j - i, "DELAY"))
            bits |= ADDR_NOTIFY_DELAY;
        else
            return "NOTIFY must be NEVER or a list of SUCCESS, FAILURE, DELAY";
        i = j + 1;
    }
    if ((bits & ADDR_NOTIFY_NEVER) && bits != ADDR_NOTIFY_NEVER)
        return "NOTIFY=NEVER cannot be combined with other values";
    p->notify = bits;
    return NULL;
}

static const char *take_orcpt(const char *v, size_t vlen, struct addr_params *p)
{
    const char *semi = memchr(v, ';', vlen);
    if (!semi)
        return "ORCPT must be addr-type;xtext";
    size_t tlen = (size_t)(semi - v);
    if (tlen == 0 || tlen > ADDR_ORCPT_TYPE_MAX)
        return "ORCPT address type must be 1 to 32 characters";
    for (size_t i = 0; i < tlen; i++)
        if (!is_atext((unsigned char)v[i]))
            return "ORCPT address type must be an atom";
    if (xtext_check(semi + 1, vlen - tlen - 1) <= 0)
        return "ORCPT address must be xtext";
    if (copy_value(p->orcpt, sizeof p->orcpt, semi + 1, vlen - tlen - 1) != 0)
        return "ORCPT value longer than 500 octets";
    copy_value(p->orcpt_type, sizeof p->orcpt_type, v, tlen);
    p->has_orcpt = 1;
    return NULL;
}

static const struct param_rule {
    const char *keyword;
    unsigned bit, verbs;
    param_take take;
} param_rules[] = {
    { "SIZE",   P_SIZE,   FOR_MAIL, take_size },
    { "BODY",   P_BODY,   FOR_MAIL, take_body },
    { "AUTH",   P_AUTH,   FOR_MAIL, take_auth },
    { "RET",    P_RET,    FOR_MAIL, take_ret },
    { "ENVID",  P_ENVID,  FOR_MAIL, take_envid },
    { "NOTIFY", P_NOTIFY, FOR_RCPT, take_notify },
    { "ORCPT",  P_ORCPT,  FOR_RCPT, take_orcpt },
};

/* esmtp-param *(SP esmtp-param), from r->pos to the end. */
static int parse_params(struct rd *r, struct addr_params *params)
{
    unsigned seen = 0;
    for (;;) {
        while (peek(r) == ' ')
            r->pos++;
        if (r->pos >= r->len)
            return 0;
        size_t k = r->pos;
        if (!(is_alpha(peek(r)) || is_digit(peek(r))))
            return bad_param(r, 501, "parameter keyword must start with a letter or digit");
        while (is_alpha(peek(r)) || is_digit(peek(r)) || peek(r) == '-')
            r->pos++;
        size_t klen = r->pos - k;
        const char *v = NULL;
        size_t vlen = 0;
        if (peek(r) == '=') {
            r->pos++;
            v = r->s + r->pos;
            while (peek(r) >= 33 && peek(r) <= 126 && peek(r) != '=')
                r->pos++;
            vlen = (size_t)(r->s + r->pos - v);
            if (vlen == 0)
                return bad_param(r, 501, "parameter value is empty");
        }
        if (r->pos < r->len && peek(r) != ' ')
            return bad_param(r, 501, "character not allowed in parameter");
        const struct param_rule *rule = NULL;
        for (size_t i = 0; i < sizeof param_rules / sizeof param_rules[0]; i++)
            if (klen <= KEYWORD_MAX && ieq(r->s + k, klen, param_rules[i].keyword))
                rule = &param_rules[i];
        size_t end = r->pos;
        r->pos = k;
        if (!rule)
            return bad_param(r, 555, "unknown parameter");
        if (!(rule->verbs & (r->verb == ADDR_MAIL ? FOR_MAIL : FOR_RCPT)))
            return bad_param(r, 555, r->verb == ADDR_MAIL ? "parameter not valid for MAIL FROM"
                                                         : "parameter not valid for RCPT TO");
        if (seen & rule->bit)
            return bad_param(r, 501, "parameter given twice");
        if (!v)
            return bad_param(r, 501, "parameter requires a value");
        const char *why = rule->take(v, vlen, params);
        if (why)
            return bad_param(r, 501, why);
        seen |= rule->bit;
        r->pos = end;
    }
}

/* Public ---------------------------------------------------------------------- */

int addr_parse_path(const char *s, size_t len, enum addr_verb verb,
                    struct addr_path *path, struct addr_error *err)
{
    struct rd r = { s, len, 0, verb, err };
    reset_path(path);
    if (parse_path_at(&r, path) != 0)
        return -1;
    if (r.pos != len)
        return bad_path(&r, "text after the path");
    return 0;
}

int addr_parse_command(const char *s, size_t len, enum addr_verb verb,
                       struct addr_path *path, struct addr_params *params,
                       struct addr_error *err)
{
    struct rd r = { s, len, 0, verb, err };
    reset_path(path);
    memset(params, 0, sizeof *params);
    if (parse_path_at(&r, path) != 0)
        return -1;
    if (r.pos < len && peek(&r) != ' ')
        return bad_path(&r, "path must be followed by a space or the end");
    return parse_params(&r, params);
}

int addr_parse_mailbox(const char *s, size_t len, enum addr_verb verb,
                       struct addr_path *path, struct addr_error *err)
{
    struct rd r = { s, len, 0, verb, err };
    reset_path(path);
    if (parse_mailbox_at(&r, path) != 0)
        return -1;
    if (r.pos != len)
        return bad_path(&r, "text after the mailbox");
    return 0;
}

/* The local part as written: bare when it is a dot-string, else quoted with
 * a backslash before '"' and '\'. */
static int format_local(const struct addr_path *p, char *buf, size_t n, size_t *o)
{
    size_t len = strlen(p->local);
    if (!p->quoted) {
        if (*o + len >= n)
            return -1;
        memcpy(buf + *o, p->local, len);
        *o += len;
        return 0;
    }
    if (*o + 1 >= n)
        return -1;
    buf[(*o)++] = '"';
    for (size_t i = 0; i < len; i++) {
        if (p->local[i] == '"' || p->local[i] == '\\') {
            if (*o + 1 >= n)
                return -1;
            buf[(*o)++] = '\\';
        }
        if (*o + 1 >= n)
            return -1;
        buf[(*o)++] = p->local[i];
    }
    if (*o + 1 >= n)
        return -1;
    buf[(*o)++] = '"';
    return 0;
}

int addr_format_mailbox(const struct addr_path *p, char *buf, size_t n)
{
    size_t o = 0;
    if (n == 0)
        return -1;
    buf[0] = 0;
    if (p->null_path)
        return 0;
    if (format_local(p, buf, n, &o) != 0)
        goto too_small;
    if (p->kind != ADDR_DOMAIN_NONE) {
        size_t dl = strlen(p->domain);
        if (o + 1 + dl >= n)
            goto too_small;
        buf[o++] = '@';
        memcpy(buf + o, p->domain, dl);
        o += dl;
    }
    buf[o] = 0;
    return (int)o;
too_small:
    buf[0] = 0;
    return -1;
}

int addr_format_path(const struct addr_path *p, char *buf, size_t n)
{
    if (n < 3) {
        if (n)
            buf[0] = 0;
        return -1;
    }
    buf[0] = '<';
    int m = addr_format_mailbox(p, buf + 1, n - 2);
    if (m < 0) {
        buf[0] = 0;
        return -1;
    }
    buf[1 + m] = '>';
    buf[2 + m] = 0;
    return m + 2;
}

/* Append " " (unless first) and a formatted parameter; -1 if it does not fit. */
static int add_param(char *buf, size_t n, size_t *o, const char *fmt, ...)
{
    va_list ap;
    if (*o) {
        if (*o + 1 >= n)
            return -1;
        buf[(*o)++] = ' ';
        buf[*o] = 0;
    }
    va_start(ap, fmt);
    int w = vsnprintf(buf + *o, n - *o, fmt, ap);
    va_end(ap);
    if (w < 0 || (size_t)w >= n - *o)
        return -1;
    *o += (size_t)w;
    return 0;
}

int addr_format_params(const struct addr_params *p, char *buf, size_t n)
{
    static const char *const body[] = { "", "7BIT", "8BITMIME", "BINARYMIME" };
    char notify[32] = "";
    size_t o = 0;
    if (n == 0)
        return -1;
    buf[0] = 0;
    if (p->notify & ADDR_NOTIFY_NEVER)
        strcat(notify, ",NEVER");
    if (p->notify & ADDR_NOTIFY_SUCCESS)
        strcat(notify, ",SUCCESS");
    if (p->notify & ADDR_NOTIFY_FAILURE)
        strcat(notify, ",FAILURE");
    if (p->notify & ADDR_NOTIFY_DELAY)
        strcat(notify, ",DELAY");
    if ((p->has_size && add_param(buf, n, &o, "SIZE=%llu", p->size) != 0) ||
        (p->body != ADDR_BODY_NONE && add_param(buf, n, &o, "BODY=%s", body[p->body]) != 0) ||
        (p->has_auth && add_param(buf, n, &o, "AUTH=%s", p->auth) != 0) ||
        (p->ret != ADDR_RET_NONE &&
         add_param(buf, n, &o, "RET=%s", p->ret == ADDR_RET_FULL ? "FULL" : "HDRS") != 0) ||
        (p->has_envid && add_param(buf, n, &o, "ENVID=%s", p->envid) != 0) ||
        (p->notify && add_param(buf, n, &o, "NOTIFY=%s", notify + 1) != 0) ||
        (p->has_orcpt && add_param(buf, n, &o, "ORCPT=%s;%s", p->orcpt_type, p->orcpt) != 0)) {
        buf[0] = 0;
        return -1;
    }
    return (int)o;
}

int addr_mailbox_equal(const struct addr_path *a, const struct addr_path *b)
{
    if (a->null_path || b->null_path)
        return a->null_path == b->null_path;
    size_t la = strlen(a->local), lb = strlen(b->local);
    if (la != lb || a->kind != b->kind || strcmp(a->domain, b->domain) != 0)
        return 0;
    for (size_t i = 0; i < la; i++)
        if (lower((unsigned char)a->local[i]) != lower((unsigned char)b->local[i]))
            return 0;
    return 1;
}

void addr_mailbox_text(const struct addr_path *p, char *buf, size_t n)
{
    if (p->null_path || addr_format_mailbox(p, buf, n) < 0)
        snprintf(buf, n, "%s", p->null_path ? "<>" : "(unprintable)");
}
