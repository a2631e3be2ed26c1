/* rewrite.c - envelope address rewriting through the address map (see
 * rewrite.h, docs/addresses.md).
 *
 * Decisions only: it reads the map and LocalDomains the caller gives and
 * fills a verdict (rewrite_envelope applies them to an envelope, whose new
 * recipient list core/envelope.c allocates). It must never route, allocate
 * otherwise, rewrite an address twice
 * (a result is never looked up again, so two lines cannot loop), or accept
 * an embedded address without checking it by the rules of its type.
 */
#include "rewrite.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "imcea.h"
#include "x400.h"

#define DECODED_MAX (ADDR_PATH_MAX + 1)   /* an embedded address is shorter than its path */

static int lower(int c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

static void vsay(char *why, size_t n, const char *fallback, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

/* A sentence into why; one that does not fit ends in "..." (arguments are
 * bounded by their formats, so this does not happen); fallback if it cannot
 * be formatted at all. */
static void vsay(char *why, size_t n, const char *fallback, const char *fmt, va_list ap)
{
    int w = vsnprintf(why, n, fmt, ap);
    if (w < 0)
        snprintf(why, n, "%s", fallback);
    else if ((size_t)w >= n && n > 4)
        memcpy(why + n - 4, "...", 4);
}

static void say(char *why, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void say(char *why, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsay(why, n, "address rewriting failed", fmt, ap);
    va_end(ap);
}

static int refuse(struct rewrite_verdict *v, int code, const char *status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int refuse(struct rewrite_verdict *v, int code, const char *status, const char *fmt, ...)
{
    va_list ap;
    v->result = REWRITE_REFUSED;
    v->code = code;
    v->status = status;
    va_start(ap, fmt);
    vsay(v->why, sizeof v->why, "refused", fmt, ap);
    va_end(ap);
    v->n = 0;
    v->list = NULL;
    return -1;
}

const struct addr_path *rewrite_target(const struct rewrite_verdict *v, size_t i)
{
    if (!v || v->result != REWRITE_CHANGED || i >= v->n)
        return NULL;
    return v->list ? &v->list[i] : &v->one;
}

static int ieq_prefix(const char *s, size_t len, const char *lit)
{
    size_t k = strlen(lit);
    if (len < k)
        return 0;
    for (size_t i = 0; i < k; i++)
        if (lower((unsigned char)s[i]) != lower((unsigned char)lit[i]))
            return 0;
    return 1;
}

/* A legacy Exchange DN: "/o=Org/ou=Site/cn=Recipients/cn=name", each part
 * key=value with a key of letters and a value that is not empty. */
static const char *check_ex(const char *v, size_t len, char *why, size_t n)
{
    if (!ieq_prefix(v, len, "/o=")) {
        say(why, n, "the EX address must start with /o= (an Exchange distinguished name)");
        return why;
    }
    unsigned part = 0;
    for (size_t i = 0; i < len;) {
        size_t j = i + 1, k;
        part++;
        while (j < len && v[j] != '/')
            j++;
        for (k = i + 1; k < j && ((v[k] >= 'a' && v[k] <= 'z') || (v[k] >= 'A' && v[k] <= 'Z')); k++)
            ;
        if (k == i + 1 || k >= j || v[k] != '=' || k + 1 == j) {
            say(why, n, "part %u of the EX address is not key=value (it must look like /cn=name)",
                part);
            return why;
        }
        for (size_t m = k + 1; m < j; m++)
            if ((unsigned char)v[m] < 0x20 || (unsigned char)v[m] > 0x7e) {
                say(why, n, "part %u of the EX address holds a character outside printable "
                    "ASCII", part);
                return why;
            }
        i = j;
    }
    return NULL;
}

const char *rewrite_check_typed(const char *type, const char *value, size_t len, char *why,
                                size_t n)
{
    if (strcmp(type, "X400") == 0) {
        struct x400_addr x;
        struct x400_error err;
        if (x400_parse(value, len, &x, &err) == 0)
            return NULL;
        say(why, n, "the X.400 address breaks a rule: %s", err.text);
        return why;
    }
    if (strcmp(type, "EX") == 0)
        return check_ex(value, len, why, n);
    if (strcmp(type, "SMTP") == 0) {
        struct addr_path p;
        struct addr_error err;
        if (addr_parse_mailbox(value, len, ADDR_RCPT, &p, &err) == 0)
            return NULL;
        say(why, n, "the SMTP address breaks a rule: %s", err.rule);
        return why;
    }
    if (strcmp(type, "FAX") == 0) {
        int digits = 0;
        for (size_t i = 0; i < len; i++) {
            char c = value[i];
            if (c >= '0' && c <= '9')
                digits++;
            else if (!strchr("+-(). ", c) || c == 0) {
                say(why, n, "the FAX number may hold only digits, spaces and + - ( ) .");
                return why;
            }
        }
        if (!digits) {
            say(why, n, "the FAX number has no digit");
            return why;
        }
        return NULL;
    }
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)value[i] < 0x20 || (unsigned char)value[i] > 0x7e) {
            say(why, n, "the %.32s address holds a character outside printable ASCII", type);
            return why;
        }
    return NULL;
}

static const char *type_label(const char *type)
{
    return strcmp(type, "X400") == 0 ? "X.400" : type;
}

/* Decode an IMCEA address at a local domain into type and value. Returns 1
 * when decoded, 0 when it is an ordinary address, -1 when it is IMCEA at a
 * local domain but cannot be decoded (v refused with status). */
static int decode(const struct rewrite_config *c, const struct addr_path *a, const char *status,
                  struct rewrite_verdict *v, char *value, size_t cap, size_t *vlen)
{
    char text[ADDR_PATH_MAX + 1];
    if (a->null_path || a->kind != ADDR_DOMAIN_NAME ||
        !imcea_looks_like(a->local, strlen(a->local)))
        return 0;
    int w = addr_format_mailbox(a, text, sizeof text);
    if (w < 0)
        return 0;
    enum imcea_status st = imcea_decode(text, (size_t)w, c->local, v->type, sizeof v->type,
                                        value, cap, vlen);
    switch (st) {
    case IMCEA_OK:
        return 1;
    case IMCEA_NOT_IMCEA:
    case IMCEA_NOT_LOCAL:
    case IMCEA_BAD_DOMAIN:
        v->type[0] = 0;
        return 0;
    default:
        v->type[0] = 0;
        return refuse(v, 550, status, "the IMCEA address cannot be decoded: %s",
                      imcea_strerror(st));
    }
}

static void set_one(struct rewrite_verdict *v, const struct addr_path *p)
{
    v->result = REWRITE_CHANGED;
    v->one = *p;
    v->list = NULL;
    v->n = 1;
}

/* The typed side of e, IMCEA-encapsulated at the first LocalDomains entry
 * that is a domain name (not a wildcard or an address literal). */
static int encapsulate(const struct rewrite_config *c, const struct addrmap_entry *e,
                       struct rewrite_verdict *v)
{
    char text[X400_TEXT_MAX > ADDRMAP_VALUE_MAX ? X400_TEXT_MAX : ADDRMAP_VALUE_MAX + 1];
    char out[4 * ADDR_PATH_MAX];
    const struct domain_entry *d = NULL;
    for (size_t i = 0; c->local && i < c->local->n && !d; i++)
        if (c->local->v[i].kind == DOMAIN_NAME)
            d = &c->local->v[i];
    if (!d)
        return refuse(v, 451, "4.3.5", "map line %u turns this address into a %s address, but "
                      "LocalDomains names no domain to encapsulate it at", e->line,
                      type_label(e->type));
    if (strcmp(e->type, "X400") == 0) {
        if (x400_format(&e->x400, text, sizeof text) < 0)
            return refuse(v, 550, "5.1.3", "map line %u: its X.400 address cannot be written",
                          e->line);
    } else {
        snprintf(text, sizeof text, "%s", e->value);
    }
    struct addr_error aerr;
    size_t olen = 0;
    enum imcea_status st = imcea_encode(e->type, text, strlen(text), d->name, out, sizeof out, &olen);
    if (st != IMCEA_OK)
        return refuse(v, 550, "5.1.3", "map line %u: the %s address cannot be IMCEA-encapsulated: "
                      "%s", e->line, type_label(e->type), imcea_strerror(st));
    if (addr_parse_mailbox(out, olen, ADDR_RCPT, &v->one, &aerr) != 0)
        return refuse(v, 550, "5.1.3", "map line %u: the IMCEA form of its %s address is not a "
                      "valid SMTP address: %s", e->line, type_label(e->type), aerr.rule);
    v->result = REWRITE_CHANGED;
    v->list = NULL;
    v->n = 1;
    v->line = e->line;
    return 0;
}

/* An alias of a (which the caller has not taken from an alias). */
static int apply_alias(const struct rewrite_config *c, const struct addr_path *a,
                       struct rewrite_verdict *v, const char *before)
{
    const struct addrmap_entry *e = addrmap_find_alias(c->map, a);
    if (!e)
        return 0;
    const struct addr_path *t = &e->targets[0];
    if (e->key_domain && e->ntargets == 1 && !t->local[0]) {
        struct addr_path p = *a;
        memcpy(p.domain, t->domain, sizeof p.domain);
        p.kind = ADDR_DOMAIN_NAME;
        set_one(v, &p);
        say(v->why, sizeof v->why, "%salias @%.255s (line %u) moves it to @%.255s", before,
            e->key.domain, e->line, t->domain);
    } else {
        v->result = REWRITE_CHANGED;
        v->list = e->targets;
        v->n = e->ntargets;
        say(v->why, sizeof v->why, "%salias %s (line %u) stands for %lu address%s", before,
            e->key_domain ? "for its domain" : "for the address", e->line,
            (unsigned long)e->ntargets, e->ntargets == 1 ? "" : "es");
    }
    v->line = e->line;
    return 1;
}

static void reset(struct rewrite_verdict *v)
{
    memset(v, 0, sizeof *v);
    v->result = REWRITE_KEEP;
}

/* The typed line an SMTP address becomes (out or both), encapsulated. */
static int map_out(const struct rewrite_config *c, const struct addr_path *a,
                   struct rewrite_verdict *v, int *done)
{
    const struct addrmap_entry *e = addrmap_find_smtp(c->map, a);
    *done = 0;
    if (!e || !(e->dir & ADDRMAP_OUT))
        return 0;
    *done = 1;
    if (encapsulate(c, e, v) != 0)
        return -1;
    say(v->why, sizeof v->why, "map line %u (%s) makes it its %s address, IMCEA-encapsulated",
        e->line, addrmap_dir_name(e->dir), type_label(e->type));
    return 0;
}

static int rewrite(const struct rewrite_config *c, const struct addr_path *a, int recipient,
                   struct rewrite_verdict *v)
{
    char value[DECODED_MAX], why[REWRITE_WHY_MAX];
    size_t vlen = 0;
    const char *bad_status = recipient ? "5.1.3" : "5.1.7";
    const char *whose = recipient ? "" : "sender: ";
    reset(v);
    if (!c || !a || a->null_path || a->kind == ADDR_DOMAIN_NONE)
        return 0;
    int d = decode(c, a, bad_status, v, value, sizeof value, &vlen);
    if (d < 0)
        return -1;
    if (d == 1) {
        const char *rule = rewrite_check_typed(v->type, value, vlen, why, sizeof why);
        if (rule)
            return refuse(v, 550, bad_status, "%sthe IMCEA%.32s address is not valid: %s", whose,
                          v->type, rule);
        if (!c->map) {
            if (c->map_wanted && recipient)
                return refuse(v, 451, "4.3.5", "the address map (AddressMapFile) is not loaded, "
                              "so the %s address cannot be mapped yet", type_label(v->type));
            say(v->why, sizeof v->why, "IMCEA %s address %.300s is valid; no address map, so it "
                "is kept as written", type_label(v->type), value);
            return 0;
        }
        const struct addrmap_entry *e = addrmap_find_typed(c->map, v->type, value, vlen);
        if (!e || !(e->dir & ADDRMAP_IN)) {
            if (!recipient) {
                say(v->why, sizeof v->why, "IMCEA %s address %.300s is valid and not in the "
                    "address map; kept as written", type_label(v->type), value);
                return 0;
            }
            if (e)
                return refuse(v, 550, "5.1.1", "the %s address %.200s is mapped on line %u for "
                              "outgoing mail only (out), so no mailbox receives it",
                              type_label(v->type), value, e->line);
            return refuse(v, 550, "5.1.1", "the %s address %.250s is valid but not in the "
                          "address map, so no mailbox receives it", type_label(v->type), value);
        }
        char before[REWRITE_WHY_MAX];
        say(before, sizeof before, "IMCEA %s address %.200s is map line %u (%s); then ",
            type_label(v->type), value, e->line, addrmap_dir_name(e->dir));
        if (recipient && apply_alias(c, &e->smtp, v, before))
            return 0;
        set_one(v, &e->smtp);
        v->line = e->line;
        say(v->why, sizeof v->why, "IMCEA %s address %.250s is map line %u (%s)",
            type_label(v->type), value, e->line, addrmap_dir_name(e->dir));
        return 0;
    }
    if (!c->map)
        return 0;
    int done;
    if (map_out(c, a, v, &done) != 0)
        return -1;
    if (done || !recipient)
        return 0;
    apply_alias(c, a, v, "");
    return 0;
}

int rewrite_recipient(const struct rewrite_config *c, const struct addr_path *rcpt,
                      struct rewrite_verdict *v)
{
    return rewrite(c, rcpt, 1, v);
}

int rewrite_sender(const struct rewrite_config *c, const struct addr_path *from,
                   struct rewrite_verdict *v)
{
    return rewrite(c, from, 0, v);
}

int rewrite_orcpt(const struct addr_path *original, struct addr_params *p)
{
    static const char hex[] = "0123456789ABCDEF";
    char text[ADDR_PATH_MAX + 1], x[ADDR_XTEXT_MAX + 1];
    size_t o = 0;
    if (p->has_orcpt)
        return 0;
    int w = addr_format_mailbox(original, text, sizeof text);
    if (w <= 0)
        return -1;
    for (int i = 0; i < w; i++) {
        unsigned char c = (unsigned char)text[i];
        int plain = c >= 33 && c <= 126 && c != '+' && c != '=';
        if (o + (plain ? 1 : 3) > ADDR_XTEXT_MAX)
            return -1;
        if (plain) {
            x[o++] = (char)c;
        } else {
            x[o++] = '+';
            x[o++] = hex[c >> 4];
            x[o++] = hex[c & 15];
        }
    }
    x[o] = 0;
    memcpy(p->orcpt, x, o + 1);
    memcpy(p->orcpt_type, "rfc822", sizeof "rfc822");
    p->has_orcpt = 1;
    return 0;
}

static int refuse_envelope(struct rewrite_refusal *ref, int sender, const struct addr_path *a,
                           int code, const char *status, const char *why)
{
    ref->sender = sender;
    addr_mailbox_text(a, ref->address, sizeof ref->address);
    ref->code = code;
    ref->status = status;
    snprintf(ref->why, sizeof ref->why, "%s", why);
    return -1;
}

/* The recipient r as written, and what it becomes, into out. */
static int envelope_rcpt(const struct rewrite_config *c, const struct env_rcpt *r,
                         struct envelope *out, struct rewrite_refusal *ref)
{
    struct rewrite_verdict v;
    struct addr_params p;
    memset(&p, 0, sizeof p);
    p.notify = r->notify;
    if (r->orcpt_type[0]) {
        p.has_orcpt = 1;
        memcpy(p.orcpt_type, r->orcpt_type, sizeof p.orcpt_type);
        memcpy(p.orcpt, r->orcpt, sizeof p.orcpt);
    }
    if (rewrite_recipient(c, &r->addr, &v) != 0)
        return refuse_envelope(ref, 0, &r->addr, v.code, v.status, v.why);
    if (v.result == REWRITE_CHANGED)
        rewrite_orcpt(&r->addr, &p);    /* past 500 characters of xtext: none, as RFC 3461 allows */
    for (size_t i = 0; i < (v.result == REWRITE_CHANGED ? v.n : 1); i++) {
        const struct addr_path *t = v.result == REWRITE_CHANGED ? rewrite_target(&v, i) : &r->addr;
        if (out->n_rcpt >= ENV_RCPT_MAX)
            return refuse_envelope(ref, 0, &r->addr, 550, "5.5.3", "the address map makes the "
                                   "recipients more than a message may have");
        if (env_add_rcpt(out, t, &p) < 0)
            return refuse_envelope(ref, 0, &r->addr, 451, "4.3.1", "out of memory for the "
                                   "recipients the address map makes");
    }
    return 0;
}

int rewrite_envelope(const struct rewrite_config *c, struct envelope *env,
                     struct rewrite_refusal *ref)
{
    struct rewrite_verdict v;
    struct envelope out;
    memset(ref, 0, sizeof *ref);
    if (rewrite_sender(c, &env->from, &v) != 0)
        return refuse_envelope(ref, 1, &env->from, v.code, v.status, v.why);
    env_init(&out);
    for (size_t i = 0; i < env->n_rcpt; i++)
        if (envelope_rcpt(c, &env->rcpt[i], &out, ref) != 0) {
            env_free(&out);
            return -1;
        }
    if (v.result == REWRITE_CHANGED)
        env->from = *rewrite_target(&v, 0);
    struct env_rcpt *old = env->rcpt;
    env->rcpt = out.rcpt;
    env->n_rcpt = out.n_rcpt;
    env->cap_rcpt = out.cap_rcpt;
    out.rcpt = old;
    env_free(&out);     /* the old list */
    return 0;
}
