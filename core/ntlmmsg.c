/* ntlmmsg.c - read NTLM messages: flags, and the names in AUTHENTICATE.
 *
 * Layouts from [MS-NLMP] 2.2.1. All integers are little-endian. Offsets are
 * 32-bit and lengths 16-bit, so offset + length is computed in 64 bits and
 * compared with the message length before any byte of the field is read.
 */
#include "ntlmmsg.h"

#include <string.h>

static const unsigned char SIGNATURE[NTLMMSG_SIGNATURE_LEN] = { 'N', 'T', 'L', 'M', 'S', 'S', 'P', 0 };

/* Offsets of the AUTHENTICATE header fields. */
enum {
    AUTH_LM = 12,
    AUTH_NT = 20,
    AUTH_DOMAIN = 28,
    AUTH_USER = 36,
    AUTH_WORKSTATION = 44,
    AUTH_SESSION_KEY = 52,
    NEGOTIATE_FLAGS_OFF = 12,
    CHALLENGE_FLAGS_OFF = 20,
    NT_V1_LEN = 24,
};

const char *ntlmmsg_strerror(int status)
{
    switch (status) {
    case NTLMMSG_OK: return "ok";
    case NTLMMSG_E_ARG: return "bad argument";
    case NTLMMSG_E_TRUNCATED: return "message shorter than its header";
    case NTLMMSG_E_SIGNATURE: return "not an NTLMSSP message";
    case NTLMMSG_E_TYPE: return "unexpected NTLM message type";
    case NTLMMSG_E_FIELD: return "field outside the message";
    case NTLMMSG_E_ENCODING: return "invalid name encoding";
    case NTLMMSG_E_NAME: return "name too long or with a control character";
    default: return "unknown error";
    }
}

static uint16_t rd16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int ntlmmsg_type(const unsigned char *msg, size_t len)
{
    if (!msg)
        return NTLMMSG_E_ARG;
    if (len < NTLMMSG_SIGNATURE_LEN + 4)
        return NTLMMSG_E_TRUNCATED;
    if (memcmp(msg, SIGNATURE, NTLMMSG_SIGNATURE_LEN) != 0)
        return NTLMMSG_E_SIGNATURE;
    uint32_t t = rd32(msg + NTLMMSG_SIGNATURE_LEN);
    if (t != NTLMMSG_NEGOTIATE && t != NTLMMSG_CHALLENGE && t != NTLMMSG_AUTHENTICATE)
        return NTLMMSG_E_TYPE;
    return (int)t;
}

/* Read a field descriptor (Len, MaxLen, Offset) at off and check that the
 * field lies inside the message. MaxLen is ignored, as receivers must. */
static int field_at(const unsigned char *msg, size_t len, size_t off, struct ntlmmsg_field *f)
{
    f->len = rd16(msg + off);
    f->offset = rd32(msg + off + 4);
    if (f->len == 0) {
        f->offset = 0;   /* an empty field's offset means nothing */
        return NTLMMSG_OK;
    }
    if ((uint64_t)f->offset + f->len > len)
        return NTLMMSG_E_FIELD;
    return NTLMMSG_OK;
}

/* The AUTHENTICATE header is 52 bytes in the oldest layout, 60 with the
 * session key field, 64 with the flags. A sender's header ends where its
 * payload begins, so the flags are present only if no field starts before
 * byte 64 (an empty field does not count: it has no position). */
static size_t auth_header_len(const struct ntlmmsg_field *const fields[], size_t n, size_t len)
{
    size_t lowest = len;
    for (size_t i = 0; i < n; i++)
        if (fields[i]->len && fields[i]->offset < lowest)
            lowest = fields[i]->offset;
    return lowest;
}

int ntlmmsg_parse_auth(const unsigned char *msg, size_t len, uint32_t default_flags,
                       struct ntlmmsg_auth *out)
{
    if (!msg || !out)
        return NTLMMSG_E_ARG;
    memset(out, 0, sizeof *out);
    int t = ntlmmsg_type(msg, len);
    if (t < 0)
        return t;
    if (t != NTLMMSG_AUTHENTICATE)
        return NTLMMSG_E_TYPE;
    if (len < NTLMMSG_AUTH_MIN_LEN)
        return NTLMMSG_E_TRUNCATED;

    int rc;
    if ((rc = field_at(msg, len, AUTH_LM, &out->lm)) != NTLMMSG_OK ||
        (rc = field_at(msg, len, AUTH_NT, &out->nt)) != NTLMMSG_OK ||
        (rc = field_at(msg, len, AUTH_DOMAIN, &out->domain)) != NTLMMSG_OK ||
        (rc = field_at(msg, len, AUTH_USER, &out->user)) != NTLMMSG_OK ||
        (rc = field_at(msg, len, AUTH_WORKSTATION, &out->workstation)) != NTLMMSG_OK)
        return rc;

    const struct ntlmmsg_field *fields[6] = {
        &out->lm, &out->nt, &out->domain, &out->user, &out->workstation, &out->session_key
    };
    size_t header = auth_header_len(fields, 5, len);
    if (header < AUTH_SESSION_KEY)
        return NTLMMSG_E_FIELD;      /* a field overlaps the fixed header */
    if (header >= AUTH_SESSION_KEY + 8) {
        if ((rc = field_at(msg, len, AUTH_SESSION_KEY, &out->session_key)) != NTLMMSG_OK)
            return rc;
        header = auth_header_len(fields, 6, len);
        if (header < AUTH_SESSION_KEY + 8)
            return NTLMMSG_E_FIELD;  /* the key's own field points into it */
    }
    if (header >= NTLMMSG_AUTH_FLAGS_OFF + 4) {
        out->flags = rd32(msg + NTLMMSG_AUTH_FLAGS_OFF);
        out->has_flags = 1;
    } else {
        out->flags = default_flags;
    }
    out->unicode = (out->flags & NTLMMSG_F_UNICODE) != 0;

    if (out->nt.len == 0)
        out->response = out->lm.len <= 1 ? NTLMMSG_RESP_ANONYMOUS : NTLMMSG_RESP_OTHER;
    else if (out->nt.len == NT_V1_LEN)
        out->response = NTLMMSG_RESP_V1;
    else if (out->nt.len > NT_V1_LEN)
        out->response = NTLMMSG_RESP_V2;
    else
        out->response = NTLMMSG_RESP_OTHER;
    return NTLMMSG_OK;
}

int ntlmmsg_flags(const unsigned char *msg, size_t len, uint32_t *flags)
{
    if (!flags)
        return NTLMMSG_E_ARG;
    int t = ntlmmsg_type(msg, len);
    if (t < 0)
        return t;
    size_t off = t == NTLMMSG_NEGOTIATE ? NEGOTIATE_FLAGS_OFF : CHALLENGE_FLAGS_OFF;
    if (t == NTLMMSG_AUTHENTICATE) {
        struct ntlmmsg_auth a;
        int rc = ntlmmsg_parse_auth(msg, len, 0, &a);
        if (rc != NTLMMSG_OK)
            return rc;
        if (!a.has_flags)
            return NTLMMSG_E_TRUNCATED;
        *flags = a.flags;
        return NTLMMSG_OK;
    }
    if (len < off + 4)
        return NTLMMSG_E_TRUNCATED;
    *flags = rd32(msg + off);
    return NTLMMSG_OK;
}

/* Append code point cp as UTF-8; refuse control characters (C0, DEL, C1):
 * a name may end up in a header line. */
static int put_utf8(uint32_t cp, char *out, size_t cap, size_t *n)
{
    unsigned char b[4];
    size_t k;
    if (cp < 0x20 || (cp >= 0x7F && cp < 0xA0))
        return NTLMMSG_E_NAME;
    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        k = 1;
    } else if (cp < 0x800) {
        b[0] = (unsigned char)(0xC0 | cp >> 6);
        b[1] = (unsigned char)(0x80 | (cp & 0x3F));
        k = 2;
    } else if (cp < 0x10000) {
        b[0] = (unsigned char)(0xE0 | cp >> 12);
        b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (unsigned char)(0x80 | (cp & 0x3F));
        k = 3;
    } else {
        b[0] = (unsigned char)(0xF0 | cp >> 18);
        b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (unsigned char)(0x80 | (cp & 0x3F));
        k = 4;
    }
    if (*n + k >= cap)   /* room for the NUL too */
        return NTLMMSG_E_ARG;
    memcpy(out + *n, b, k);
    *n += k;
    return NTLMMSG_OK;
}

int ntlmmsg_name_utf8(const unsigned char *msg, size_t len, const struct ntlmmsg_auth *a,
                      const struct ntlmmsg_field *f, char *out, size_t cap)
{
    if (!msg || !a || !f || !out || cap == 0)
        return NTLMMSG_E_ARG;
    out[0] = '\0';
    if (f->len && (uint64_t)f->offset + f->len > len)
        return NTLMMSG_E_FIELD;
    const unsigned char *p = msg + f->offset;
    size_t n = 0;
    int rc;
    if (a->unicode) {
        if (f->len % 2)
            return NTLMMSG_E_ENCODING;
        size_t units = f->len / 2u;
        if (units > NTLMMSG_NAME_MAX)
            return NTLMMSG_E_NAME;
        for (size_t i = 0; i < units; i++) {
            uint32_t cp = rd16(p + 2 * i);
            if (cp >= 0xD800 && cp < 0xDC00) {
                if (i + 1 >= units)
                    return NTLMMSG_E_ENCODING;
                uint32_t lo = rd16(p + 2 * (i + 1));
                if (lo < 0xDC00 || lo >= 0xE000)
                    return NTLMMSG_E_ENCODING;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                i++;
            } else if (cp >= 0xDC00 && cp < 0xE000) {
                return NTLMMSG_E_ENCODING;
            }
            if ((rc = put_utf8(cp, out, cap, &n)) != NTLMMSG_OK) {
                out[0] = '\0';
                return rc;
            }
        }
    } else {
        if (f->len > NTLMMSG_NAME_MAX)
            return NTLMMSG_E_NAME;
        for (size_t i = 0; i < f->len; i++) {
            if (p[i] >= 0x80) {
                out[0] = '\0';
                return NTLMMSG_E_ENCODING;
            }
            if ((rc = put_utf8(p[i], out, cap, &n)) != NTLMMSG_OK) {
                out[0] = '\0';
                return rc;
            }
        }
    }
    out[n] = '\0';
    return NTLMMSG_OK;
}

int ntlmmsg_auth_user(const unsigned char *msg, size_t len, uint32_t default_flags,
                      char *out, size_t cap)
{
    if (!out || cap == 0)
        return NTLMMSG_E_ARG;
    out[0] = '\0';
    struct ntlmmsg_auth a;
    char dom[NTLMMSG_NAME_UTF8_MAX], user[NTLMMSG_NAME_UTF8_MAX];
    int rc = ntlmmsg_parse_auth(msg, len, default_flags, &a);
    if (rc == NTLMMSG_OK)
        rc = ntlmmsg_name_utf8(msg, len, &a, &a.domain, dom, sizeof dom);
    if (rc == NTLMMSG_OK)
        rc = ntlmmsg_name_utf8(msg, len, &a, &a.user, user, sizeof user);
    if (rc != NTLMMSG_OK)
        return rc;
    size_t dl = strlen(dom), ul = strlen(user);
    if (ul == 0)
        return NTLMMSG_E_NAME;   /* anonymous: nobody to name */
    size_t need = (dl ? dl + 1 : 0) + ul + 1;
    if (need > cap)
        return NTLMMSG_E_ARG;
    size_t n = 0;
    if (dl) {
        memcpy(out, dom, dl);
        out[dl] = '\\';
        n = dl + 1;
    }
    memcpy(out + n, user, ul + 1);
    return NTLMMSG_OK;
}

unsigned ntlmmsg_key_bits(uint32_t flags)
{
    if (flags & NTLMMSG_F_128)
        return 128;
    if (flags & NTLMMSG_F_56)
        return 56;
    return 40;
}
