/* envelope.c - the queue's envelope record as text, and back.
 *
 * Writing is a fixed sequence of "key value" lines; reading walks the same
 * sequence and rejects the first line that differs. The end line carries
 * the number of lines before it and the CRC-32 of their bytes: a file cut
 * anywhere, or with a block of zeros where a write never landed, fails that
 * check before any field is believed. This module must never guess: a line
 * it cannot read exactly makes the whole envelope invalid.
 */
#include "envelope.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obuf.h"

#define ENV_MAGIC       "imsvc-envelope"
#define ENV_LINE_MAX    8192    /* any one line, escapes included */
#define ENV_ATTEMPTS_MAX 1000000u
#define ENV_HEADER_LINES 10u    /* magic line to envid */
#define ENV_RCPT_LINES   12u    /* rcpt to why */

/* ---- writing (core/obuf.h) ---- */

/* Octets written raw: printable ASCII and space, except the escape itself. */
static int env_plain(unsigned char c)
{
    return c >= 0x20 && c <= 0x7e && c != '%';
}

static void ob_escaped(struct obuf *o, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *q = (const unsigned char *)s; *q; q++) {
        if (env_plain(*q)) {
            ob_put(o, (const char *)q, 1);
        } else {
            char e[3] = { '%', hex[*q >> 4], hex[*q & 15] };
            ob_put(o, e, 3);
        }
    }
}

static void ob_num(struct obuf *o, uint64_t v)
{
    char t[24];
    snprintf(t, sizeof t, "%llu", (unsigned long long)v);
    ob_str(o, t);
}

static void ob_key(struct obuf *o, const char *key)
{
    ob_str(o, key);
    ob_put(o, " ", 1);
}

static void ob_text_line(struct obuf *o, const char *key, const char *val)
{
    ob_key(o, key);
    ob_escaped(o, val);
    ob_put(o, "\n", 1);
}

static void ob_num_line(struct obuf *o, const char *key, uint64_t v)
{
    ob_key(o, key);
    ob_num(o, v);
    ob_put(o, "\n", 1);
}

/* ---- CRC-32 (IEEE 802.3, reflected), bitwise: envelopes are small ---- */

/* The table of CRC-32 (IEEE, reflected) over one byte, made by the compiler:
 * CRC_BYTE runs the bitwise step eight times on the byte's value. */
#define CRC_STEP(c) (((c) >> 1) ^ (0xedb88320u & (0u - ((c) & 1u))))
#define CRC_BYTE(n) CRC_STEP(CRC_STEP(CRC_STEP(CRC_STEP(CRC_STEP(CRC_STEP(CRC_STEP(CRC_STEP( \
    (uint32_t)(n)))))))))
#define CRC_4(n) CRC_BYTE(n), CRC_BYTE((n) + 1), CRC_BYTE((n) + 2), CRC_BYTE((n) + 3)
#define CRC_16(n) CRC_4(n), CRC_4((n) + 4), CRC_4((n) + 8), CRC_4((n) + 12)
#define CRC_64(n) CRC_16(n), CRC_16((n) + 16), CRC_16((n) + 32), CRC_16((n) + 48)
static const uint32_t crc_table[256] = { CRC_64(0), CRC_64(64), CRC_64(128), CRC_64(192) };

/* A byte at a time through the table: every byte of every message passes
 * here as it is received, so the bitwise form showed on the profile. */
uint32_t env_crc32_update(uint32_t crc, const void *p, size_t len)
{
    const unsigned char *s = p;
    uint32_t c = crc ^ 0xffffffffu;
    for (size_t i = 0; i < len; i++)
        c = crc_table[(c ^ s[i]) & 0xffu] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

uint32_t env_crc32(const char *s, size_t len)
{
    return env_crc32_update(0, s, len);
}

/* ---- keyword tables ---- */

static const char *const state_names[] = { "pending", "delivered", "deferred", "failed" };
static const char *const body_names[] = { "-", "7bit", "8bitmime", "binarymime" };
static const char *const ret_names[] = { "-", "full", "hdrs" };

struct flag_name {
    unsigned bit;
    const char *name;
};

static const struct flag_name notify_names[] = {
    { ADDR_NOTIFY_NEVER, "never" },
    { ADDR_NOTIFY_SUCCESS, "success" },
    { ADDR_NOTIFY_FAILURE, "failure" },
    { ADDR_NOTIFY_DELAY, "delay" },
};

static const struct flag_name notified_names[] = {
    { ENV_NOTIFIED_DELAY, "delay" },
    { ENV_NOTIFIED_FAILURE, "failure" },
};

const char *env_state_name(enum env_state s)
{
    if ((unsigned)s < sizeof state_names / sizeof state_names[0])
        return state_names[s];
    return "?";
}

static void ob_flags(struct obuf *o, const char *key, unsigned v,
                     const struct flag_name *t, size_t nt)
{
    int any = 0;
    ob_key(o, key);
    for (size_t i = 0; i < nt; i++) {
        if (v & t[i].bit) {
            if (any)
                ob_put(o, ",", 1);
            ob_str(o, t[i].name);
            any = 1;
        }
    }
    if (!any)
        ob_put(o, "-", 1);
    ob_put(o, "\n", 1);
}

/* ---- validation shared by both directions ---- */

int env_id_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > ENV_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

/* An ORCPT addr-type: an atom without ';' (RFC 3461 4.2: "rfc822" and the like). */
static int env_orcpt_type_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > ADDR_ORCPT_TYPE_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'))
            return 0;
    }
    return 1;
}

/* "" or an enhanced status code class.subject.detail, class 2, 4 or 5. */
static int env_status_valid(const char *s)
{
    if (!*s)
        return 1;
    if ((s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
        return 0;
    s += 2;
    for (int part = 0; part < 2; part++) {
        int digits = 0;
        while (*s >= '0' && *s <= '9') {
            s++;
            digits++;
        }
        if (digits < 1 || digits > 3)
            return 0;
        if (part == 0 && *s++ != '.')
            return 0;
    }
    return *s == '\0';
}

/* ---- envelope lifetime ---- */

void env_init(struct envelope *e)
{
    memset(e, 0, sizeof *e);
    e->from.null_path = 1;
}

void env_free(struct envelope *e)
{
    free(e->rcpt);
    env_init(e);
}

static struct env_rcpt *env_grow(struct envelope *e)
{
    if (e->n_rcpt >= ENV_RCPT_MAX)
        return NULL;
    if (e->n_rcpt == e->cap_rcpt) {
        size_t cap = e->cap_rcpt ? e->cap_rcpt * 2 : 4;
        if (cap > ENV_RCPT_MAX)
            cap = ENV_RCPT_MAX;
        struct env_rcpt *r = realloc(e->rcpt, cap * sizeof *r);
        if (!r)
            return NULL;
        e->rcpt = r;
        e->cap_rcpt = cap;
    }
    struct env_rcpt *r = &e->rcpt[e->n_rcpt++];
    memset(r, 0, sizeof *r);
    return r;
}

int env_add_rcpt(struct envelope *e, const struct addr_path *addr,
                 const struct addr_params *params)
{
    if (addr->null_path)
        return -1;
    if (params && params->has_orcpt && !env_orcpt_type_valid(params->orcpt_type))
        return -1;
    struct env_rcpt *r = env_grow(e);
    if (!r)
        return -1;
    r->addr = *addr;
    r->state = ENV_PENDING;
    if (params) {
        r->notify = params->notify;
        if (params->has_orcpt) {
            memcpy(r->orcpt_type, params->orcpt_type, sizeof r->orcpt_type);
            memcpy(r->orcpt, params->orcpt, sizeof r->orcpt);
        }
    }
    return (int)(e->n_rcpt - 1);
}

/* ---- writing ---- */

size_t env_format(const struct envelope *e, char *buf, size_t n)
{
    struct obuf o = { buf, n, 0 };
    char path[ADDR_PATH_MAX + 8];

    if (!env_id_valid(e->id) || e->n_rcpt == 0 || e->n_rcpt > ENV_RCPT_MAX ||
        (unsigned)e->body > ADDR_BODY_BINARYMIME || (unsigned)e->ret > ADDR_RET_HDRS ||
        e->arrived < 0)
        goto bad;

    ob_str(&o, ENV_MAGIC " ");
    ob_num(&o, ENV_VERSION);
    ob_put(&o, "\n", 1);
    ob_text_line(&o, "id", e->id);
    ob_num_line(&o, "arrived", (uint64_t)e->arrived);
    if (addr_format_path(&e->from, path, sizeof path) < 0)
        goto bad;
    ob_text_line(&o, "from", path);
    ob_text_line(&o, "client", e->client);
    ob_text_line(&o, "helo", e->helo);
    ob_text_line(&o, "auth-user", e->auth_user);
    ob_text_line(&o, "body", body_names[e->body]);
    ob_text_line(&o, "ret", ret_names[e->ret]);
    ob_text_line(&o, "envid", e->envid);

    for (size_t i = 0; i < e->n_rcpt; i++) {
        const struct env_rcpt *r = &e->rcpt[i];
        if (r->addr.null_path || (unsigned)r->state > ENV_FAILED ||
            r->next_attempt < 0 || r->first_failure < 0 || r->attempts > ENV_ATTEMPTS_MAX ||
            !env_status_valid(r->status) ||
            (r->orcpt_type[0] && !env_orcpt_type_valid(r->orcpt_type)) ||
            (!r->orcpt_type[0] && r->orcpt[0]) ||
            addr_format_path(&r->addr, path, sizeof path) < 0)
            goto bad;
        ob_text_line(&o, "rcpt", path);
        ob_key(&o, "orcpt");
        if (r->orcpt_type[0]) {
            ob_str(&o, r->orcpt_type);
            ob_put(&o, ";", 1);
            ob_escaped(&o, r->orcpt);
        }
        ob_put(&o, "\n", 1);
        ob_flags(&o, "notify", r->notify, notify_names, sizeof notify_names / sizeof notify_names[0]);
        ob_text_line(&o, "state", state_names[r->state]);
        ob_num_line(&o, "attempts", r->attempts);
        ob_num_line(&o, "next-attempt", (uint64_t)r->next_attempt);
        ob_num_line(&o, "first-failure", (uint64_t)r->first_failure);
        ob_flags(&o, "notified", r->notified, notified_names,
                 sizeof notified_names / sizeof notified_names[0]);
        ob_text_line(&o, "status", r->status);
        ob_text_line(&o, "remote", r->remote);
        ob_text_line(&o, "reply", r->reply);
        ob_text_line(&o, "why", r->why);
    }

    /* The end line needs the bytes before it. When they did not all fit, its
     * length is still known: the count is fixed and the CRC is 8 digits. */
    {
        size_t body_len = o.len;
        unsigned lines = ENV_HEADER_LINES + ENV_RCPT_LINES * (unsigned)e->n_rcpt;
        unsigned long crc = body_len < n ? (unsigned long)env_crc32(buf, body_len) : 0ul;
        char tail[48];
        snprintf(tail, sizeof tail, "end %u %08lx\n", lines, crc);
        ob_str(&o, tail);
    }
    if (n > 0)
        buf[o.len < n ? o.len : n - 1] = '\0';
    return o.len;

bad:
    if (n > 0)
        buf[0] = '\0';
    return 0;
}

/* ---- reading ---- */

struct reader {
    const char *s;
    size_t len;
    size_t pos;
    unsigned line;          /* line number of the line last taken */
    struct env_error *err;
};

static int rd_fail(struct reader *rd, const char *rule)
{
    rd->err->line = rd->line;
    rd->err->rule = rule;
    return -1;
}

/* Take the next line, which must start with "key "; val and vlen get the rest. */
static int rd_field(struct reader *rd, const char *key, const char **val, size_t *vlen)
{
    size_t start = rd->pos;
    const char *nl = memchr(rd->s + start, '\n', rd->len - start);
    rd->line++;
    if (!nl)
        return rd_fail(rd, "line not terminated");
    size_t end = (size_t)(nl - rd->s);
    size_t klen = strlen(key);
    if (end - start > ENV_LINE_MAX)
        return rd_fail(rd, "line too long");
    if (end - start < klen + 1 || memcmp(rd->s + start, key, klen) != 0 || rd->s[start + klen] != ' ') {
        rd->err->line = rd->line;
        rd->err->rule = "unexpected line";
        return -1;
    }
    *val = rd->s + start + klen + 1;
    *vlen = end - start - klen - 1;
    rd->pos = end + 1;
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Undo ob_escaped into out (cap includes the NUL). */
static int rd_unescape(struct reader *rd, const char *v, size_t vlen, char *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < vlen; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= vlen)
                return rd_fail(rd, "escape cut short");
            hi = hexval(v[i + 1]);
            lo = hexval(v[i + 2]);
            if (hi < 0 || lo < 0)
                return rd_fail(rd, "bad escape");
            c = (unsigned char)(hi * 16 + lo);
            if (c == 0)
                return rd_fail(rd, "escaped NUL");
            i += 2;
        } else if (!env_plain(c)) {
            return rd_fail(rd, "unescaped control or 8-bit octet");
        }
        if (k + 1 >= cap)
            return rd_fail(rd, "value too long");
        out[k++] = (char)c;
    }
    out[k] = '\0';
    return 0;
}

static int rd_text(struct reader *rd, const char *key, char *out, size_t cap)
{
    const char *v;
    size_t vlen;
    if (rd_field(rd, key, &v, &vlen) < 0)
        return -1;
    return rd_unescape(rd, v, vlen, out, cap);
}

static int rd_u64(struct reader *rd, const char *key, uint64_t max, uint64_t *out)
{
    const char *v;
    size_t vlen;
    uint64_t x = 0;
    if (rd_field(rd, key, &v, &vlen) < 0)
        return -1;
    if (vlen == 0 || vlen > 19 || (vlen > 1 && v[0] == '0'))
        return rd_fail(rd, "bad number");
    for (size_t i = 0; i < vlen; i++) {
        if (v[i] < '0' || v[i] > '9')
            return rd_fail(rd, "bad number");
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    if (x > max)
        return rd_fail(rd, "number out of range");
    *out = x;
    return 0;
}

static int rd_time(struct reader *rd, const char *key, int64_t *out)
{
    uint64_t x;
    if (rd_u64(rd, key, (uint64_t)INT64_MAX, &x) < 0)
        return -1;
    *out = (int64_t)x;
    return 0;
}

static int rd_keyword(struct reader *rd, const char *key, const char *const *names,
                      size_t nn, unsigned *out)
{
    char w[32];
    if (rd_text(rd, key, w, sizeof w) < 0)
        return -1;
    for (size_t i = 0; i < nn; i++) {
        if (strcmp(w, names[i]) == 0) {
            *out = (unsigned)i;
            return 0;
        }
    }
    return rd_fail(rd, "unknown keyword");
}

/* A comma-separated list of flag names, each once, or "-" for none. */
static int rd_flags(struct reader *rd, const char *key, const struct flag_name *t,
                    size_t nt, unsigned *out)
{
    char w[64];
    unsigned v = 0;
    if (rd_text(rd, key, w, sizeof w) < 0)
        return -1;
    if (strcmp(w, "-") == 0) {
        *out = 0;
        return 0;
    }
    char *p = w;
    for (;;) {
        char *comma = strchr(p, ',');
        size_t wl = comma ? (size_t)(comma - p) : strlen(p);
        size_t i;
        for (i = 0; i < nt; i++)
            if (strlen(t[i].name) == wl && memcmp(p, t[i].name, wl) == 0)
                break;
        if (i == nt || (v & t[i].bit))
            return rd_fail(rd, "unknown or repeated flag");
        v |= t[i].bit;
        if (!comma)
            break;
        p = comma + 1;
    }
    *out = v;
    return 0;
}

static int rd_path(struct reader *rd, const char *key, enum addr_verb verb, struct addr_path *p)
{
    char t[ADDR_PATH_MAX + 8];
    struct addr_error ae;
    if (rd_text(rd, key, t, sizeof t) < 0)
        return -1;
    if (addr_parse_path(t, strlen(t), verb, p, &ae) < 0)
        return rd_fail(rd, ae.rule);
    return 0;
}

static int rd_orcpt(struct reader *rd, struct env_rcpt *r)
{
    const char *v;
    size_t vlen;
    if (rd_field(rd, "orcpt", &v, &vlen) < 0)
        return -1;
    if (vlen == 0)
        return 0;
    const char *semi = memchr(v, ';', vlen);
    size_t tl = semi ? (size_t)(semi - v) : 0;
    if (!semi || tl == 0 || tl > ADDR_ORCPT_TYPE_MAX)
        return rd_fail(rd, "bad ORCPT");
    memcpy(r->orcpt_type, v, tl);
    r->orcpt_type[tl] = '\0';
    if (!env_orcpt_type_valid(r->orcpt_type))
        return rd_fail(rd, "bad ORCPT type");
    return rd_unescape(rd, semi + 1, vlen - tl - 1, r->orcpt, sizeof r->orcpt);
}

static int rd_rcpt(struct reader *rd, struct envelope *e)
{
    struct env_rcpt *r = env_grow(e);
    uint64_t x;
    unsigned k;
    if (!r) {
        rd->line++;
        return rd_fail(rd, "too many recipients or out of memory");
    }
    if (rd_path(rd, "rcpt", ADDR_RCPT, &r->addr) < 0 || rd_orcpt(rd, r) < 0 ||
        rd_flags(rd, "notify", notify_names, sizeof notify_names / sizeof notify_names[0], &r->notify) < 0 ||
        rd_keyword(rd, "state", state_names, 4, &k) < 0)
        return -1;
    r->state = (enum env_state)k;
    if (rd_u64(rd, "attempts", ENV_ATTEMPTS_MAX, &x) < 0)
        return -1;
    r->attempts = (unsigned)x;
    if (rd_time(rd, "next-attempt", &r->next_attempt) < 0 ||
        rd_time(rd, "first-failure", &r->first_failure) < 0 ||
        rd_flags(rd, "notified", notified_names, sizeof notified_names / sizeof notified_names[0],
                 &r->notified) < 0 ||
        rd_text(rd, "status", r->status, sizeof r->status) < 0)
        return -1;
    if (!env_status_valid(r->status))
        return rd_fail(rd, "bad enhanced status code");
    if (rd_text(rd, "remote", r->remote, sizeof r->remote) < 0 ||
        rd_text(rd, "reply", r->reply, sizeof r->reply) < 0 ||
        rd_text(rd, "why", r->why, sizeof r->why) < 0)
        return -1;
    return 0;
}

/* Check the last line "end LINES CRC" against what precedes it. Returns the
 * length of the text before the end line, or -1. */
static long rd_check_end(const char *s, size_t len, struct env_error *err)
{
    unsigned lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += s[i] == '\n';
    err->line = lines + 1;
    if (len == 0 || s[len - 1] != '\n') {
        err->rule = "truncated: no end line";
        return -1;
    }
    err->line = lines;
    size_t start = len - 1;
    while (start > 0 && s[start - 1] != '\n')
        start--;
    const char *l = s + start;
    size_t ll = len - 1 - start;
    if (ll < 4 || memcmp(l, "end ", 4) != 0) {
        err->rule = "truncated: no end line";
        return -1;
    }
    /* Exactly "end LINES CRC": LINES in decimal without leading zeros, CRC
     * in 8 lower-case hex digits, nothing else. */
    const char *p = l + 4, *e = l + ll;
    uint64_t want_lines = 0;
    const char *digits = p;
    while (p < e && *p >= '0' && *p <= '9' && p - digits < 10)
        want_lines = want_lines * 10 + (uint64_t)(*p++ - '0');
    uint32_t want_crc = 0;
    int ok = p > digits && (*digits != '0' || p - digits == 1) && want_lines <= 0xffffffffu &&
             p < e && *p++ == ' ' &&
             e - p == 8;
    for (; ok && p < e; p++) {
        int v = *p >= '0' && *p <= '9' ? *p - '0' : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10 : -1;
        ok = v >= 0;
        want_crc = (want_crc << 4) | (uint32_t)(ok ? v : 0);
    }
    if (!ok) {
        err->rule = "bad end line";
        return -1;
    }
    if (want_lines != lines - 1) {
        err->rule = "line count does not match: torn write";
        return -1;
    }
    if (env_crc32(s, start) != want_crc) {
        err->rule = "checksum does not match: torn write";
        return -1;
    }
    return (long)start;
}

int env_parse(const char *s, size_t len, struct envelope *e, struct env_error *err)
{
    struct reader rd = { s, 0, 0, 0, err };
    uint64_t version;
    unsigned k;
    long body;

    env_free(e);
    err->line = 0;
    err->rule = NULL;
    if (len > (size_t)ENV_LINE_MAX * (12 + 13 * (size_t)ENV_RCPT_MAX)) {
        err->line = 1;
        err->rule = "envelope too large";
        return -1;
    }
    if (memchr(s, '\0', len)) {
        /* name the line that holds it: zeros are what a torn write leaves */
        const char *z = memchr(s, '\0', len);
        unsigned line = 1;
        for (const char *q = s; q < z; q++)
            line += *q == '\n';
        err->line = line;
        err->rule = "NUL octet: torn write";
        return -1;
    }
    body = rd_check_end(s, len, err);
    if (body < 0)
        return -1;
    rd.len = (size_t)body;

    if (rd_u64(&rd, ENV_MAGIC, 1000, &version) < 0)
        goto fail;
    if (version != ENV_VERSION) {
        rd_fail(&rd, "unsupported version");
        goto fail;
    }
    if (rd_text(&rd, "id", e->id, sizeof e->id) < 0)
        goto fail;
    if (!env_id_valid(e->id)) {
        rd_fail(&rd, "bad queue ID");
        goto fail;
    }
    if (rd_time(&rd, "arrived", &e->arrived) < 0 ||
        rd_path(&rd, "from", ADDR_MAIL, &e->from) < 0 ||
        rd_text(&rd, "client", e->client, sizeof e->client) < 0 ||
        rd_text(&rd, "helo", e->helo, sizeof e->helo) < 0 ||
        rd_text(&rd, "auth-user", e->auth_user, sizeof e->auth_user) < 0 ||
        rd_keyword(&rd, "body", body_names, 4, &k) < 0)
        goto fail;
    e->body = (enum addr_body)k;
    if (rd_keyword(&rd, "ret", ret_names, 3, &k) < 0)
        goto fail;
    e->ret = (enum addr_ret)k;
    if (rd_text(&rd, "envid", e->envid, sizeof e->envid) < 0)
        goto fail;
    do {
        if (rd_rcpt(&rd, e) < 0)
            goto fail;
    } while (rd.pos < rd.len);
    return 0;

fail:
    env_free(e);
    return -1;
}

/* ---- queue helpers ---- */

int env_rcpt_outstanding(const struct env_rcpt *r)
{
    return r->state == ENV_PENDING || r->state == ENV_DEFERRED;
}

size_t env_due(const struct envelope *e, int64_t now, size_t *idx, size_t max)
{
    size_t k = 0;
    for (size_t i = 0; i < e->n_rcpt; i++) {
        if (env_rcpt_outstanding(&e->rcpt[i]) && e->rcpt[i].next_attempt <= now) {
            if (k < max)
                idx[k] = i;
            k++;
        }
    }
    return k;
}

int64_t env_next_attempt(const struct envelope *e)
{
    int64_t best = -1;
    for (size_t i = 0; i < e->n_rcpt; i++) {
        const struct env_rcpt *r = &e->rcpt[i];
        if (env_rcpt_outstanding(r) && (best < 0 || r->next_attempt < best))
            best = r->next_attempt;
    }
    return best;
}

int env_done(const struct envelope *e)
{
    return env_next_attempt(e) < 0;
}
