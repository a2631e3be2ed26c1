/* check_ntlmmsg.c - reading NTLM messages: real ones captured from Samba's
 * ntlm_auth and Perl's Authen::NTLM, and hand-built hostile ones (fields
 * outside the message, overflowing offsets, bad UTF-16, control characters,
 * the oldest header layout without flags). */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "ntlmmsg.h"

/* Captured with tests/lib/winbind.sh running: ntlm_auth
 * --helper-protocol=ntlmssp-client-1 against squid-2.5-ntlmssp (NTLMv2,
 * Unicode), and Authen::NTLM 1.09 (NTLMv1; with ntlmv2(1) it writes the
 * domain in OEM bytes under the Unicode flag). User imsvctest, domain
 * IMSVCTEST, the fixture's test password. */
static const unsigned char SAMBA_AUTH[366] = {
    0x4e, 0x54, 0x4c, 0x4d, 0x53, 0x53, 0x50, 0x00, 0x03, 0x00, 0x00, 0x00,
    0x18, 0x00, 0x18, 0x00, 0x58, 0x00, 0x00, 0x00, 0xca, 0x00, 0xca, 0x00,
    0x70, 0x00, 0x00, 0x00, 0x12, 0x00, 0x12, 0x00, 0x3a, 0x01, 0x00, 0x00,
    0x12, 0x00, 0x12, 0x00, 0x4c, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x5e, 0x01, 0x00, 0x00, 0x10, 0x00, 0x10, 0x00, 0x5e, 0x01, 0x00, 0x00,
    0x05, 0x82, 0x08, 0x62, 0x06, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0f,
    0x32, 0x10, 0x12, 0x69, 0xd8, 0x13, 0xc8, 0xba, 0x04, 0x8c, 0x5e, 0xa1,
    0x56, 0x3a, 0x90, 0x6d, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x8c, 0x00, 0x75, 0xbc, 0x96, 0x55, 0xd6, 0xd0,
    0xa1, 0xff, 0x68, 0xaf, 0x6f, 0xeb, 0x06, 0x97, 0x01, 0x01, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x88, 0x77, 0x95, 0x92, 0x41, 0x7b, 0xdd, 0x01,
    0x85, 0x35, 0x10, 0x41, 0xa1, 0xa0, 0xf6, 0xff, 0x00, 0x00, 0x00, 0x00,
    0x02, 0x00, 0x12, 0x00, 0x49, 0x00, 0x4d, 0x00, 0x53, 0x00, 0x56, 0x00,
    0x43, 0x00, 0x54, 0x00, 0x45, 0x00, 0x53, 0x00, 0x54, 0x00, 0x01, 0x00,
    0x12, 0x00, 0x49, 0x00, 0x4d, 0x00, 0x53, 0x00, 0x56, 0x00, 0x43, 0x00,
    0x54, 0x00, 0x45, 0x00, 0x53, 0x00, 0x54, 0x00, 0x04, 0x00, 0x00, 0x00,
    0x03, 0x00, 0x12, 0x00, 0x69, 0x00, 0x6d, 0x00, 0x73, 0x00, 0x76, 0x00,
    0x63, 0x00, 0x74, 0x00, 0x65, 0x00, 0x73, 0x00, 0x74, 0x00, 0x07, 0x00,
    0x08, 0x00, 0x88, 0x77, 0x95, 0x92, 0x41, 0x7b, 0xdd, 0x01, 0x08, 0x00,
    0x30, 0x00, 0x30, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x76, 0x0a, 0x37, 0x5c, 0x6f, 0x10,
    0x6f, 0x7d, 0x21, 0x29, 0x0f, 0x72, 0x6d, 0x6b, 0xef, 0x1c, 0x92, 0x65,
    0x21, 0xdd, 0x0d, 0x15, 0xbb, 0x43, 0x03, 0x61, 0x24, 0x1e, 0xc9, 0x1e,
    0xd2, 0xaf, 0x0a, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x49, 0x00, 0x4d, 0x00, 0x53, 0x00, 0x56, 0x00, 0x43, 0x00,
    0x54, 0x00, 0x45, 0x00, 0x53, 0x00, 0x54, 0x00, 0x69, 0x00, 0x6d, 0x00,
    0x73, 0x00, 0x76, 0x00, 0x63, 0x00, 0x74, 0x00, 0x65, 0x00, 0x73, 0x00,
    0x74, 0x00, 0xc1, 0x81, 0x87, 0x48, 0x90, 0xd3, 0x47, 0x28, 0xa9, 0x43,
    0x27, 0x76, 0xc1, 0x73, 0x50, 0x7a,
};
static const unsigned char SAMBA_CHALLENGE[160] = {
    0x4e, 0x54, 0x4c, 0x4d, 0x53, 0x53, 0x50, 0x00, 0x02, 0x00, 0x00, 0x00,
    0x12, 0x00, 0x12, 0x00, 0x38, 0x00, 0x00, 0x00, 0x05, 0x82, 0x8a, 0x62,
    0xae, 0x61, 0x80, 0xb4, 0x54, 0x0e, 0xf8, 0x28, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x56, 0x00, 0x56, 0x00, 0x4a, 0x00, 0x00, 0x00,
    0x06, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0f, 0x49, 0x00, 0x4d, 0x00,
    0x53, 0x00, 0x56, 0x00, 0x43, 0x00, 0x54, 0x00, 0x45, 0x00, 0x53, 0x00,
    0x54, 0x00, 0x02, 0x00, 0x12, 0x00, 0x49, 0x00, 0x4d, 0x00, 0x53, 0x00,
    0x56, 0x00, 0x43, 0x00, 0x54, 0x00, 0x45, 0x00, 0x53, 0x00, 0x54, 0x00,
    0x01, 0x00, 0x12, 0x00, 0x49, 0x00, 0x4d, 0x00, 0x53, 0x00, 0x56, 0x00,
    0x43, 0x00, 0x54, 0x00, 0x45, 0x00, 0x53, 0x00, 0x54, 0x00, 0x04, 0x00,
    0x00, 0x00, 0x03, 0x00, 0x12, 0x00, 0x69, 0x00, 0x6d, 0x00, 0x73, 0x00,
    0x76, 0x00, 0x63, 0x00, 0x74, 0x00, 0x65, 0x00, 0x73, 0x00, 0x74, 0x00,
    0x07, 0x00, 0x08, 0x00, 0x88, 0x77, 0x95, 0x92, 0x41, 0x7b, 0xdd, 0x01,
    0x00, 0x00, 0x00, 0x00,
};
static const unsigned char SAMBA_NEGOTIATE[40] = {
    0x4e, 0x54, 0x4c, 0x4d, 0x53, 0x53, 0x50, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x05, 0x82, 0x08, 0x62, 0x00, 0x00, 0x00, 0x00, 0x28, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x28, 0x00, 0x00, 0x00, 0x06, 0x01, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x0f,
};
static const unsigned char PERL_V1_AUTH[166] = {
    0x4e, 0x54, 0x4c, 0x4d, 0x53, 0x53, 0x50, 0x00, 0x03, 0x00, 0x00, 0x00,
    0x18, 0x00, 0x18, 0x00, 0x40, 0x00, 0x00, 0x00, 0x18, 0x00, 0x18, 0x00,
    0x58, 0x00, 0x00, 0x00, 0x12, 0x00, 0x12, 0x00, 0x70, 0x00, 0x00, 0x00,
    0x12, 0x00, 0x12, 0x00, 0x82, 0x00, 0x00, 0x00, 0x12, 0x00, 0x12, 0x00,
    0x94, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x66, 0x00, 0x00, 0x00,
    0x05, 0x82, 0x8a, 0x62, 0x84, 0x9c, 0x43, 0xcb, 0x2f, 0x9f, 0x5d, 0x1d,
    0x92, 0x47, 0xbe, 0x96, 0x41, 0x7a, 0x19, 0xf2, 0xb7, 0x8e, 0x9a, 0xd8,
    0x29, 0x91, 0xe8, 0xda, 0xf3, 0x54, 0xe7, 0x1a, 0x4e, 0xa8, 0x36, 0xfb,
    0xdd, 0xf1, 0x77, 0xd5, 0x68, 0x20, 0xdd, 0xbf, 0xb6, 0x00, 0xa6, 0x0f,
    0xfc, 0xfe, 0xc5, 0x56, 0x49, 0x00, 0x4d, 0x00, 0x53, 0x00, 0x56, 0x00,
    0x43, 0x00, 0x54, 0x00, 0x45, 0x00, 0x53, 0x00, 0x54, 0x00, 0x69, 0x00,
    0x6d, 0x00, 0x73, 0x00, 0x76, 0x00, 0x63, 0x00, 0x74, 0x00, 0x65, 0x00,
    0x73, 0x00, 0x74, 0x00, 0x69, 0x00, 0x6d, 0x00, 0x73, 0x00, 0x76, 0x00,
    0x63, 0x00, 0x74, 0x00, 0x65, 0x00, 0x73, 0x00, 0x74, 0x00,
};
static const unsigned char PERL_V2_AUTH[267] = {
    0x4e, 0x54, 0x4c, 0x4d, 0x53, 0x53, 0x50, 0x00, 0x03, 0x00, 0x00, 0x00,
    0x18, 0x00, 0x18, 0x00, 0x40, 0x00, 0x00, 0x00, 0x86, 0x00, 0x86, 0x00,
    0x58, 0x00, 0x00, 0x00, 0x09, 0x00, 0x09, 0x00, 0xde, 0x00, 0x00, 0x00,
    0x12, 0x00, 0x12, 0x00, 0xe7, 0x00, 0x00, 0x00, 0x12, 0x00, 0x12, 0x00,
    0xf9, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xcb, 0x00, 0x00, 0x00,
    0x05, 0x82, 0x08, 0x00, 0x69, 0x2f, 0xfb, 0xc8, 0x77, 0xcc, 0x1e, 0x19,
    0x18, 0x49, 0xa5, 0x51, 0xdb, 0x6b, 0x8a, 0x6f, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x37, 0x8f, 0x91, 0x2d, 0xa1, 0x3b, 0x53, 0xcd,
    0x7e, 0x88, 0x03, 0x3b, 0xbf, 0x58, 0x7e, 0xa4, 0x01, 0x01, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x41, 0x51, 0xad, 0x21, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x02, 0x00, 0x12, 0x00, 0x49, 0x00, 0x4d, 0x00, 0x53, 0x00, 0x56, 0x00,
    0x43, 0x00, 0x54, 0x00, 0x45, 0x00, 0x53, 0x00, 0x54, 0x00, 0x01, 0x00,
    0x12, 0x00, 0x49, 0x00, 0x4d, 0x00, 0x53, 0x00, 0x56, 0x00, 0x43, 0x00,
    0x54, 0x00, 0x45, 0x00, 0x53, 0x00, 0x54, 0x00, 0x04, 0x00, 0x00, 0x00,
    0x03, 0x00, 0x12, 0x00, 0x69, 0x00, 0x6d, 0x00, 0x73, 0x00, 0x76, 0x00,
    0x63, 0x00, 0x74, 0x00, 0x65, 0x00, 0x73, 0x00, 0x74, 0x00, 0x07, 0x00,
    0x08, 0x00, 0x88, 0x77, 0x95, 0x92, 0x41, 0x7b, 0xdd, 0x01, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x49, 0x4d, 0x53, 0x56, 0x43, 0x54,
    0x45, 0x53, 0x54, 0x69, 0x00, 0x6d, 0x00, 0x73, 0x00, 0x76, 0x00, 0x63,
    0x00, 0x74, 0x00, 0x65, 0x00, 0x73, 0x00, 0x74, 0x00, 0x69, 0x00, 0x6d,
    0x00, 0x73, 0x00, 0x76, 0x00, 0x63, 0x00, 0x74, 0x00, 0x65, 0x00, 0x73,
    0x00, 0x74, 0x00,
};

static void put16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v)
{
    put16(p, (uint16_t)v);
    put16(p + 2, (uint16_t)(v >> 16));
}

/* A field to add to a built message. */
struct part {
    const void *bytes;
    uint16_t len;
};

/* UTF-16LE of an ASCII string, in a static buffer (up to 4 live). */
static struct part u16(const char *s)
{
    static unsigned char bufs[4][1024];
    static int next;
    unsigned char *b = bufs[next++ % 4];
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++)
        put16(b + 2 * i, (unsigned char)s[i]);
    return (struct part){ b, (uint16_t)(2 * n) };
}

static struct part oem(const char *s)
{
    return (struct part){ s, (uint16_t)strlen(s) };
}

static const unsigned char NT24[24] = { 1 };

/* An AUTHENTICATE message with a header of hdr bytes (52: no session key
 * field and no flags; 64: both), the payload in field order after it. */
static size_t build(unsigned char *m, size_t hdr, uint32_t flags, struct part lm, struct part nt,
                    struct part dom, struct part user, struct part ws)
{
    memset(m, 0, hdr);
    memcpy(m, "NTLMSSP", 8);
    put32(m + 8, NTLMMSG_AUTHENTICATE);
    struct part parts[5] = { lm, nt, dom, user, ws };
    size_t off = hdr;
    for (int i = 0; i < 5; i++) {
        put16(m + 12 + 8 * i, parts[i].len);
        put16(m + 14 + 8 * i, parts[i].len);
        put32(m + 16 + 8 * i, (uint32_t)off);
        if (parts[i].len)
            memcpy(m + off, parts[i].bytes, parts[i].len);
        off += parts[i].len;
    }
    if (hdr >= 60)
        put32(m + 56, (uint32_t)off);   /* empty session key */
    if (hdr >= 64)
        put32(m + 60, flags);
    return off;
}

static const struct part NONE = { NULL, 0 };
static const struct part V1 = { NT24, 24 };

START_TEST(samba_v2_unicode)
{
    struct ntlmmsg_auth a;
    ck_assert_int_eq(ntlmmsg_type(SAMBA_AUTH, sizeof SAMBA_AUTH), NTLMMSG_AUTHENTICATE);
    ck_assert_int_eq(ntlmmsg_parse_auth(SAMBA_AUTH, sizeof SAMBA_AUTH, 0, &a), NTLMMSG_OK);
    ck_assert_int_eq(a.has_flags, 1);
    ck_assert_int_eq(a.unicode, 1);
    ck_assert_uint_eq(a.flags, 0x62088205u);
    ck_assert_int_eq(a.response, NTLMMSG_RESP_V2);
    char name[2 * NTLMMSG_NAME_UTF8_MAX];
    ck_assert_int_eq(ntlmmsg_auth_user(SAMBA_AUTH, sizeof SAMBA_AUTH, 0, name, sizeof name), NTLMMSG_OK);
    ck_assert_str_eq(name, "IMSVCTEST\\imsvctest");
    ck_assert_int_eq(ntlmmsg_name_utf8(SAMBA_AUTH, sizeof SAMBA_AUTH, &a, &a.workstation, name,
                                       sizeof name), NTLMMSG_OK);
    ck_assert_str_eq(name, "");
    ck_assert_uint_eq(ntlmmsg_key_bits(a.flags), 128);
}
END_TEST

START_TEST(perl_v1_and_v2)
{
    char name[2 * NTLMMSG_NAME_UTF8_MAX];
    struct ntlmmsg_auth a;
    ck_assert_int_eq(ntlmmsg_parse_auth(PERL_V1_AUTH, sizeof PERL_V1_AUTH, 0, &a), NTLMMSG_OK);
    ck_assert_int_eq(a.response, NTLMMSG_RESP_V1);
    ck_assert_int_eq(ntlmmsg_auth_user(PERL_V1_AUTH, sizeof PERL_V1_AUTH, 0, name, sizeof name),
                     NTLMMSG_OK);
    ck_assert_str_eq(name, "IMSVCTEST\\imsvctest");
    ck_assert_int_eq(ntlmmsg_name_utf8(PERL_V1_AUTH, sizeof PERL_V1_AUTH, &a, &a.workstation, name,
                                       sizeof name), NTLMMSG_OK);
    ck_assert_str_eq(name, "imsvctest");

    /* Authen::NTLM's NTLMv2 mode: a 9-byte OEM domain under the Unicode
     * flag. Rejected rather than guessed at. */
    ck_assert_int_eq(ntlmmsg_parse_auth(PERL_V2_AUTH, sizeof PERL_V2_AUTH, 0, &a), NTLMMSG_OK);
    ck_assert_int_eq(a.unicode, 1);
    ck_assert_int_eq(a.response, NTLMMSG_RESP_V2);
    ck_assert_int_eq(ntlmmsg_name_utf8(PERL_V2_AUTH, sizeof PERL_V2_AUTH, &a, &a.user, name,
                                       sizeof name), NTLMMSG_OK);
    ck_assert_str_eq(name, "imsvctest");
    ck_assert_int_eq(ntlmmsg_auth_user(PERL_V2_AUTH, sizeof PERL_V2_AUTH, 0, name, sizeof name),
                     NTLMMSG_E_ENCODING);
}
END_TEST

START_TEST(flags_of_each_type)
{
    uint32_t f = 0;
    ck_assert_int_eq(ntlmmsg_type(SAMBA_NEGOTIATE, sizeof SAMBA_NEGOTIATE), NTLMMSG_NEGOTIATE);
    ck_assert_int_eq(ntlmmsg_flags(SAMBA_NEGOTIATE, sizeof SAMBA_NEGOTIATE, &f), NTLMMSG_OK);
    ck_assert_uint_eq(f, 0x62088205u);
    ck_assert_int_eq(ntlmmsg_type(SAMBA_CHALLENGE, sizeof SAMBA_CHALLENGE), NTLMMSG_CHALLENGE);
    ck_assert_int_eq(ntlmmsg_flags(SAMBA_CHALLENGE, sizeof SAMBA_CHALLENGE, &f), NTLMMSG_OK);
    ck_assert_uint_eq(f, 0x628a8205u);
    ck_assert_int_eq(ntlmmsg_flags(SAMBA_AUTH, sizeof SAMBA_AUTH, &f), NTLMMSG_OK);
    ck_assert_uint_eq(f, 0x62088205u);
    ck_assert_int_eq(ntlmmsg_flags(SAMBA_CHALLENGE, 23, &f), NTLMMSG_E_TRUNCATED);
    ck_assert_int_eq(ntlmmsg_flags(SAMBA_NEGOTIATE, 15, &f), NTLMMSG_E_TRUNCATED);
    ck_assert_int_eq(ntlmmsg_flags(SAMBA_NEGOTIATE, 8, &f), NTLMMSG_E_TRUNCATED);
    ck_assert_int_eq(ntlmmsg_flags(NULL, 0, &f), NTLMMSG_E_ARG);
    ck_assert_int_eq(ntlmmsg_flags(SAMBA_NEGOTIATE, sizeof SAMBA_NEGOTIATE, NULL), NTLMMSG_E_ARG);

    /* The oldest AUTHENTICATE layout has no flags to report. */
    unsigned char m[256];
    size_t n = build(m, 52, 0, NONE, V1, oem("D"), oem("u"), NONE);
    ck_assert_int_eq(ntlmmsg_flags(m, n, &f), NTLMMSG_E_TRUNCATED);
}
END_TEST

START_TEST(wrong_signature_or_type)
{
    unsigned char m[sizeof SAMBA_AUTH];
    struct ntlmmsg_auth a;
    memcpy(m, SAMBA_AUTH, sizeof m);
    m[0] = 'n';
    ck_assert_int_eq(ntlmmsg_parse_auth(m, sizeof m, 0, &a), NTLMMSG_E_SIGNATURE);
    memcpy(m, SAMBA_AUTH, sizeof m);
    m[7] = ' ';
    ck_assert_int_eq(ntlmmsg_type(m, sizeof m), NTLMMSG_E_SIGNATURE);
    memcpy(m, SAMBA_AUTH, sizeof m);
    put32(m + 8, 4);
    ck_assert_int_eq(ntlmmsg_type(m, sizeof m), NTLMMSG_E_TYPE);
    put32(m + 8, 0x103);
    ck_assert_int_eq(ntlmmsg_parse_auth(m, sizeof m, 0, &a), NTLMMSG_E_TYPE);
    ck_assert_int_eq(ntlmmsg_parse_auth(SAMBA_CHALLENGE, sizeof SAMBA_CHALLENGE, 0, &a), NTLMMSG_E_TYPE);
    ck_assert_int_eq(ntlmmsg_parse_auth(SAMBA_AUTH, 11, 0, &a), NTLMMSG_E_TRUNCATED);
    ck_assert_int_eq(ntlmmsg_parse_auth(SAMBA_AUTH, 51, 0, &a), NTLMMSG_E_TRUNCATED);
    ck_assert_int_eq(ntlmmsg_parse_auth(NULL, 100, 0, &a), NTLMMSG_E_ARG);
    ck_assert_int_eq(ntlmmsg_parse_auth(SAMBA_AUTH, sizeof SAMBA_AUTH, 0, NULL), NTLMMSG_E_ARG);
}
END_TEST

START_TEST(every_truncation_of_a_real_message_is_refused)
{
    struct ntlmmsg_auth a;
    char name[2 * NTLMMSG_NAME_UTF8_MAX];
    /* The last field (the MIC-less session key) ends the message: any
     * shorter length leaves some field outside it. */
    for (size_t n = 0; n < sizeof SAMBA_AUTH; n++) {
        ck_assert_int_ne(ntlmmsg_parse_auth(SAMBA_AUTH, n, 0, &a), NTLMMSG_OK);
        ck_assert_int_ne(ntlmmsg_auth_user(SAMBA_AUTH, n, 0, name, sizeof name), NTLMMSG_OK);
    }
}
END_TEST

START_TEST(fields_outside_the_message)
{
    unsigned char m[256];
    struct ntlmmsg_auth a;
    size_t n = build(m, 64, NTLMMSG_F_UNICODE, NONE, V1, u16("DOM"), u16("user"), NONE);
    ck_assert_int_eq(ntlmmsg_parse_auth(m, n, 0, &a), NTLMMSG_OK);

    /* User field one byte past the end. */
    put32(m + 40, (uint32_t)(n - 7));
    ck_assert_int_eq(ntlmmsg_parse_auth(m, n, 0, &a), NTLMMSG_E_FIELD);
    /* An offset that wraps a 32-bit sum. */
    put32(m + 40, 0xFFFFFFF8u);
    ck_assert_int_eq(ntlmmsg_parse_auth(m, n, 0, &a), NTLMMSG_E_FIELD);
    /* A field pointing into the fixed header. */
    put32(m + 40, 10);
    ck_assert_int_eq(ntlmmsg_parse_auth(m, n, 0, &a), NTLMMSG_E_FIELD);
    /* An empty field's offset is ignored, wherever it points. */
    n = build(m, 64, NTLMMSG_F_UNICODE, NONE, V1, NONE, u16("user"), NONE);
    put32(m + 32, 0xFFFFFFFFu);
    ck_assert_int_eq(ntlmmsg_parse_auth(m, n, 0, &a), NTLMMSG_OK);
    ck_assert_uint_eq(a.domain.offset, 0);
    /* A session key field whose data starts inside its own header. */
    n = build(m, 64, NTLMMSG_F_UNICODE, NONE, V1, NONE, u16("user"), NONE);
    put16(m + 52, 4);
    put32(m + 56, 56);
    ck_assert_int_eq(ntlmmsg_parse_auth(m, n, 0, &a), NTLMMSG_E_FIELD);
    /* Key data at 60 is the 60-byte layout: consistent, but no flags. */
    put32(m + 56, 60);
    ck_assert_int_eq(ntlmmsg_parse_auth(m, n, NTLMMSG_F_OEM, &a), NTLMMSG_OK);
    ck_assert_int_eq(a.has_flags, 0);
    ck_assert_uint_eq(a.flags, NTLMMSG_F_OEM);
}
END_TEST

START_TEST(oldest_layout_takes_default_flags)
{
    unsigned char m[256];
    struct ntlmmsg_auth a;
    char name[2 * NTLMMSG_NAME_UTF8_MAX];
    size_t n = build(m, 52, 0, NONE, V1, u16("DOM"), u16("bob"), NONE);
    ck_assert_int_eq(ntlmmsg_parse_auth(m, n, NTLMMSG_F_UNICODE, &a), NTLMMSG_OK);
    ck_assert_int_eq(a.has_flags, 0);
    ck_assert_uint_eq(a.flags, NTLMMSG_F_UNICODE);
    ck_assert_int_eq(ntlmmsg_auth_user(m, n, NTLMMSG_F_UNICODE, name, sizeof name), NTLMMSG_OK);
    ck_assert_str_eq(name, "DOM\\bob");

    n = build(m, 52, 0, NONE, V1, oem("DOM"), oem("bob"), NONE);
    ck_assert_int_eq(ntlmmsg_auth_user(m, n, NTLMMSG_F_OEM, name, sizeof name), NTLMMSG_OK);
    ck_assert_str_eq(name, "DOM\\bob");

    /* 60 bytes: session key field but no flags. */
    n = build(m, 60, 0, NONE, V1, oem("DOM"), oem("bob"), NONE);
    ck_assert_int_eq(ntlmmsg_parse_auth(m, n, NTLMMSG_F_OEM, &a), NTLMMSG_OK);
    ck_assert_int_eq(a.has_flags, 0);
    ck_assert_int_eq(a.unicode, 0);

    /* The message's own flags win over the default. */
    n = build(m, 64, NTLMMSG_F_OEM, NONE, V1, oem("DOM"), oem("bob"), NONE);
    ck_assert_int_eq(ntlmmsg_auth_user(m, n, NTLMMSG_F_UNICODE, name, sizeof name), NTLMMSG_OK);
    ck_assert_str_eq(name, "DOM\\bob");
}
END_TEST

START_TEST(names_in_utf8)
{
    unsigned char m[1024];
    char name[2 * NTLMMSG_NAME_UTF8_MAX];
    /* "Jürgen" and U+1F600 (a surrogate pair) in UTF-16LE. */
    static const unsigned char jurgen[] = { 'J', 0, 0xFC, 0, 'r', 0, 'g', 0, 'e', 0, 'n', 0 };
    static const unsigned char smile[] = { 'a', 0, 0x3D, 0xD8, 0x00, 0xDE, 'b', 0 };
    size_t n = build(m, 64, NTLMMSG_F_UNICODE, NONE, V1, (struct part){ smile, sizeof smile },
                     (struct part){ jurgen, sizeof jurgen }, NONE);
    ck_assert_int_eq(ntlmmsg_auth_user(m, n, 0, name, sizeof name), NTLMMSG_OK);
    ck_assert_str_eq(name, "a\xF0\x9F\x98\x80" "b\\J\xC3\xBCrgen");

    /* Empty domain: the user alone. */
    n = build(m, 64, NTLMMSG_F_UNICODE, NONE, V1, NONE, u16("alice@example.org"), NONE);
    ck_assert_int_eq(ntlmmsg_auth_user(m, n, 0, name, sizeof name), NTLMMSG_OK);
    ck_assert_str_eq(name, "alice@example.org");

    /* No user: anonymous, nobody to name. */
    n = build(m, 64, NTLMMSG_F_UNICODE, (struct part){ "", 1 }, NONE, u16("DOM"), NONE, NONE);
    struct ntlmmsg_auth a;
    ck_assert_int_eq(ntlmmsg_parse_auth(m, n, 0, &a), NTLMMSG_OK);
    ck_assert_int_eq(a.response, NTLMMSG_RESP_ANONYMOUS);
    ck_assert_int_eq(ntlmmsg_auth_user(m, n, 0, name, sizeof name), NTLMMSG_E_NAME);

    /* Output too small for the join, or for one name. */
    n = build(m, 64, NTLMMSG_F_UNICODE, NONE, V1, u16("DOM"), u16("bob"), NONE);
    ck_assert_int_eq(ntlmmsg_auth_user(m, n, 0, name, 7), NTLMMSG_E_ARG);
    ck_assert_int_eq(ntlmmsg_auth_user(m, n, 0, name, 8), NTLMMSG_OK);
    ck_assert_str_eq(name, "DOM\\bob");
    ck_assert_int_eq(ntlmmsg_parse_auth(m, n, 0, &a), NTLMMSG_OK);
    ck_assert_int_eq(ntlmmsg_name_utf8(m, n, &a, &a.user, name, 3), NTLMMSG_E_ARG);
    ck_assert_int_eq(ntlmmsg_name_utf8(m, n, &a, &a.user, name, 4), NTLMMSG_OK);
    ck_assert_str_eq(name, "bob");
}
END_TEST

START_TEST(bad_encodings_are_refused)
{
    unsigned char m[1024];
    char name[2 * NTLMMSG_NAME_UTF8_MAX];
    static const unsigned char odd[] = { 'a', 0, 'b' };
    static const unsigned char high_last[] = { 'a', 0, 0x3D, 0xD8 };
    static const unsigned char high_then_a[] = { 0x3D, 0xD8, 'a', 0 };
    static const unsigned char low_alone[] = { 0x00, 0xDE, 'a', 0 };
    const struct part bad[] = {
        { odd, sizeof odd }, { high_last, sizeof high_last },
        { high_then_a, sizeof high_then_a }, { low_alone, sizeof low_alone },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n = build(m, 64, NTLMMSG_F_UNICODE, NONE, V1, u16("DOM"), bad[i], NONE);
        ck_assert_int_eq(ntlmmsg_auth_user(m, n, 0, name, sizeof name), NTLMMSG_E_ENCODING);
    }
    /* OEM bytes above 0x7F: the code page is not known here. */
    size_t n = build(m, 64, NTLMMSG_F_OEM, NONE, V1, oem("DOM"), oem("J\x81rgen"), NONE);
    ck_assert_int_eq(ntlmmsg_auth_user(m, n, 0, name, sizeof name), NTLMMSG_E_ENCODING);
}
END_TEST

START_TEST(control_characters_are_refused)
{
    unsigned char m[1024];
    char name[2 * NTLMMSG_NAME_UTF8_MAX];
    static const char *const bad[] = { "bob\r\nX-Injected: 1", "bob\n", "b\tob", "bob\x7F", "\x1b" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n = build(m, 64, NTLMMSG_F_UNICODE, NONE, V1, u16("DOM"), u16(bad[i]), NONE);
        ck_assert_int_eq(ntlmmsg_auth_user(m, n, 0, name, sizeof name), NTLMMSG_E_NAME);
        ck_assert_str_eq(name, "");
        n = build(m, 64, NTLMMSG_F_OEM, NONE, V1, oem(bad[i]), oem("bob"), NONE);
        ck_assert_int_eq(ntlmmsg_auth_user(m, n, 0, name, sizeof name), NTLMMSG_E_NAME);
    }
    /* NUL, and the C1 control U+0085 (NEL). */
    static const unsigned char nul[] = { 'a', 0, 0, 0, 'b', 0 };
    static const unsigned char nel[] = { 'a', 0, 0x85, 0 };
    size_t n = build(m, 64, NTLMMSG_F_UNICODE, NONE, V1, NONE, (struct part){ nul, sizeof nul }, NONE);
    ck_assert_int_eq(ntlmmsg_auth_user(m, n, 0, name, sizeof name), NTLMMSG_E_NAME);
    n = build(m, 64, NTLMMSG_F_UNICODE, NONE, V1, NONE, (struct part){ nel, sizeof nel }, NONE);
    ck_assert_int_eq(ntlmmsg_auth_user(m, n, 0, name, sizeof name), NTLMMSG_E_NAME);
}
END_TEST

START_TEST(name_length_limit)
{
    static unsigned char m[4096];
    static unsigned char big[2 * (NTLMMSG_NAME_MAX + 1)];
    char name[2 * NTLMMSG_NAME_UTF8_MAX];
    /* NTLMMSG_NAME_MAX units of U+20AC (3 UTF-8 bytes each) fit exactly. */
    for (size_t i = 0; i < NTLMMSG_NAME_MAX + 1; i++)
        put16(big + 2 * i, 0x20AC);
    size_t n = build(m, 64, NTLMMSG_F_UNICODE, NONE, V1, NONE,
                     (struct part){ big, 2 * NTLMMSG_NAME_MAX }, NONE);
    struct ntlmmsg_auth a;
    ck_assert_int_eq(ntlmmsg_parse_auth(m, n, 0, &a), NTLMMSG_OK);
    ck_assert_int_eq(ntlmmsg_name_utf8(m, n, &a, &a.user, name, NTLMMSG_NAME_UTF8_MAX), NTLMMSG_OK);
    ck_assert_uint_eq(strlen(name), 3 * NTLMMSG_NAME_MAX);
    n = build(m, 64, NTLMMSG_F_UNICODE, NONE, V1, NONE,
              (struct part){ big, 2 * (NTLMMSG_NAME_MAX + 1) }, NONE);
    ck_assert_int_eq(ntlmmsg_auth_user(m, n, 0, name, sizeof name), NTLMMSG_E_NAME);

    static char longoem[NTLMMSG_NAME_MAX + 2];
    memset(longoem, 'x', NTLMMSG_NAME_MAX + 1);
    n = build(m, 64, NTLMMSG_F_OEM, NONE, V1, NONE, oem(longoem), NONE);
    ck_assert_int_eq(ntlmmsg_auth_user(m, n, 0, name, sizeof name), NTLMMSG_E_NAME);
}
END_TEST

START_TEST(response_kinds_and_key_bits)
{
    unsigned char m[512];
    static const unsigned char nt16[16], nt100[100];
    struct ntlmmsg_auth a;
    size_t n = build(m, 64, 1, NONE, (struct part){ nt16, 16 }, NONE, u16("u"), NONE);
    ck_assert_int_eq(ntlmmsg_parse_auth(m, n, 0, &a), NTLMMSG_OK);
    ck_assert_int_eq(a.response, NTLMMSG_RESP_OTHER);
    n = build(m, 64, 1, NONE, (struct part){ nt100, 100 }, NONE, u16("u"), NONE);
    ck_assert_int_eq(ntlmmsg_parse_auth(m, n, 0, &a), NTLMMSG_OK);
    ck_assert_int_eq(a.response, NTLMMSG_RESP_V2);
    n = build(m, 64, 1, (struct part){ nt16, 16 }, NONE, NONE, u16("u"), NONE);
    ck_assert_int_eq(ntlmmsg_parse_auth(m, n, 0, &a), NTLMMSG_OK);
    ck_assert_int_eq(a.response, NTLMMSG_RESP_OTHER);

    ck_assert_uint_eq(ntlmmsg_key_bits(NTLMMSG_F_128 | NTLMMSG_F_56), 128);
    ck_assert_uint_eq(ntlmmsg_key_bits(NTLMMSG_F_56), 56);
    ck_assert_uint_eq(ntlmmsg_key_bits(0), 40);
    for (int s = -7; s <= 0; s++)
        ck_assert_ptr_nonnull(ntlmmsg_strerror(s));
    ck_assert_str_eq(ntlmmsg_strerror(99), "unknown error");
}
END_TEST

Suite *ntlmmsg_suite(void)
{
    Suite *s = suite_create("ntlmmsg");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, samba_v2_unicode);
    tcase_add_test(tc, perl_v1_and_v2);
    tcase_add_test(tc, flags_of_each_type);
    tcase_add_test(tc, wrong_signature_or_type);
    tcase_add_test(tc, every_truncation_of_a_real_message_is_refused);
    tcase_add_test(tc, fields_outside_the_message);
    tcase_add_test(tc, oldest_layout_takes_default_flags);
    tcase_add_test(tc, names_in_utf8);
    tcase_add_test(tc, bad_encodings_are_refused);
    tcase_add_test(tc, control_characters_are_refused);
    tcase_add_test(tc, name_length_limit);
    tcase_add_test(tc, response_kinds_and_key_bits);
    suite_add_tcase(s, tc);
    return s;
}
