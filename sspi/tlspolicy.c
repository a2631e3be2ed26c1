/* tlspolicy.c - what a TLS policy allows, and is what a handshake
 * negotiated strong enough?
 *
 * The policy (default: TLS 1.2 or newer, 128-bit or stronger cipher, any
 * suite mode) becomes protocol masks for the credentials
 * (tls_policy_protocols), and after every handshake the stream checks
 * SECPKG_ATTR_CONNECTION_INFO and SECPKG_ATTR_CIPHER_INFO against it and,
 * fit or not, writes both sides as one line of text: administrators read it
 * in the event, SMTP clients in the `454 4.7.0` reply, so it names the
 * values and never just says "failed". It must never guess in the peer's
 * favour: a suite it cannot classify is not AEAD.
 */
#include "tls.h"

#include <stdio.h>
#include <string.h>
#include <wchar.h>

#ifndef SP_PROT_TLS1_3_SERVER
#define SP_PROT_TLS1_3_SERVER 0x00001000
#define SP_PROT_TLS1_3_CLIENT 0x00002000
#endif

unsigned tls_protocol_version(DWORD p)
{
    if (p & (SP_PROT_TLS1_3_SERVER | SP_PROT_TLS1_3_CLIENT)) return TLS_V1_3;
    if (p & (SP_PROT_TLS1_2_SERVER | SP_PROT_TLS1_2_CLIENT)) return TLS_V1_2;
    if (p & (SP_PROT_TLS1_1_SERVER | SP_PROT_TLS1_1_CLIENT)) return TLS_V1_1;
    if (p & (SP_PROT_TLS1_0_SERVER | SP_PROT_TLS1_0_CLIENT)) return TLS_V1_0;
    if (p & (SP_PROT_SSL3_SERVER | SP_PROT_SSL3_CLIENT)) return 0x0300u;
    if (p & (SP_PROT_SSL2_SERVER | SP_PROT_SSL2_CLIENT)) return 0x0200u;
    return 0;
}

/* Wire version and SP_PROT_* bits, oldest first. */
static const struct {
    unsigned version;
    DWORD server, client;
} versions[] = {
    { 0x0200u, SP_PROT_SSL2_SERVER, SP_PROT_SSL2_CLIENT },
    { 0x0300u, SP_PROT_SSL3_SERVER, SP_PROT_SSL3_CLIENT },
    { TLS_V1_0, SP_PROT_TLS1_0_SERVER, SP_PROT_TLS1_0_CLIENT },
    { TLS_V1_1, SP_PROT_TLS1_1_SERVER, SP_PROT_TLS1_1_CLIENT },
    { TLS_V1_2, SP_PROT_TLS1_2_SERVER, SP_PROT_TLS1_2_CLIENT },
    { TLS_V1_3, SP_PROT_TLS1_3_SERVER, SP_PROT_TLS1_3_CLIENT },
};

DWORD tls_policy_protocols(const struct tls_policy *p, int server)
{
    DWORD bits = 0;
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++)
        if (versions[i].version >= TLS_V1_0 && versions[i].version >= p->min_version)
            bits |= server ? versions[i].server : versions[i].client;
    return bits;
}

DWORD tls_policy_disabled_protocols(const struct tls_policy *p, int server)
{
    DWORD all = 0;
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++)
        all |= server ? versions[i].server : versions[i].client;
    return all & ~tls_policy_protocols(p, server);
}

/* IANA numbers of AEAD suites: TLS 1.3 (all), GCM, CCM, ChaCha20-Poly1305. */
static int suite_number_is_aead(DWORD n)
{
    return (n >= 0x1301 && n <= 0x1305) ||   /* TLS 1.3 */
           (n >= 0x009C && n <= 0x00A7) ||   /* RSA, DH, DHE with AES-GCM */
           (n >= 0x00A8 && n <= 0x00AD) ||   /* PSK with AES-GCM */
           (n >= 0xC02B && n <= 0xC032) ||   /* ECDHE/ECDH with AES-GCM */
           (n >= 0xC09C && n <= 0xC0AF) ||   /* AES-CCM */
           (n >= 0xCCA8 && n <= 0xCCAE);     /* ChaCha20-Poly1305 */
}

int tls_suite_is_aead(const SecPkgContext_CipherInfo *suite)
{
    if (!suite)
        return -1;
    /* Windows names suites as IANA does; Wine builds the name from the
     * cipher, its chaining mode and the hash, and leaves the number 0. */
    wchar_t name[SZ_ALG_MAX_SIZE + 1];
    size_t n = 0;
    for (; n < SZ_ALG_MAX_SIZE && suite->szCipherSuite[n]; n++) {
        wchar_t ch = suite->szCipherSuite[n];
        name[n] = ch >= L'a' && ch <= L'z' ? (wchar_t)(ch - L'a' + L'A') : ch;
    }
    name[n] = 0;
    if (wcsstr(name, L"_GCM") || wcsstr(name, L"_CCM") || wcsstr(name, L"CHACHA20_POLY1305"))
        return 1;
    if (wcsstr(name, L"_CBC") || wcsstr(name, L"RC4") || wcsstr(name, L"_NULL") ||
        wcsstr(name, L"_EXPORT"))
        return 0;
    if (suite->dwCipherSuite)
        return suite_number_is_aead(suite->dwCipherSuite);
    /* Every suite before TLS 1.3 that is not AEAD has a MAC hash; a named
     * suite reported without one protects its records with the cipher's own
     * tag. (Wine 10 names ChaCha20-Poly1305 "<unknown>" but reports it so.) */
    if (name[0] && !suite->szHash[0] && suite->dwHashLen == 0)
        return 1;
    if (suite->dwProtocol == TLS_V1_3 || tls_protocol_version(suite->dwProtocol) == TLS_V1_3)
        return 1; /* every TLS 1.3 suite is AEAD (the field is a wire version or SP_PROT_*) */
    return -1;
}

enum tls_reneg tls_renegotiation_verdict(int server, unsigned version, unsigned *renegotiations,
                                         unsigned *post_handshake)
{
    if (version >= TLS_V1_3)
        return ++*post_handshake <= TLS_POST_HANDSHAKE_MAX ? TLS_RENEG_FOLLOW : TLS_RENEG_LIMIT;
    if (server)
        return TLS_RENEG_REFUSE;
    return ++*renegotiations <= TLS_RENEGOTIATIONS_MAX ? TLS_RENEG_FOLLOW : TLS_RENEG_LIMIT;
}

static void version_name(unsigned v, char *out, size_t cap)
{
    if (v >= TLS_V1_0 && v <= 0x03FFu)
        snprintf(out, cap, "TLS 1.%u", v - TLS_V1_0);
    else if (v == 0x0300u)
        snprintf(out, cap, "SSL 3.0");
    else if (v == 0x0200u)
        snprintf(out, cap, "SSL 2.0");
    else
        snprintf(out, cap, "an unknown protocol");
}

static const char *alg_name(ALG_ID a)
{
    switch (a) {
    case 0: return NULL;
    case CALG_AES_128: case CALG_AES_192: case CALG_AES_256: case CALG_AES: return "AES";
    case CALG_3DES: return "3DES";
    case CALG_3DES_112: return "3DES-112";
    case CALG_DES: return "DES";
    case CALG_RC2: return "RC2";
    case CALG_RC4: return "RC4";
    case CALG_NULLCIPHER: return "no cipher";
    case CALG_MD5: return "MD5";
    case CALG_SHA1: return "SHA-1";
    case CALG_SHA_256: return "SHA-256";
    case CALG_SHA_384: return "SHA-384";
    case CALG_SHA_512: return "SHA-512";
    case CALG_RSA_KEYX: return "RSA";
    case CALG_DH_EPHEM: return "DHE";
    case CALG_DH_SF: return "DH";
    case CALG_ECDH: return "ECDH";
    case CALG_ECDH_EPHEM: return "ECDHE";
    default: return NULL;
    }
}

/* "AES 256-bit", "cipher 0x6666 256-bit", "SHA-384" ... */
static void alg_text(ALG_ID a, DWORD bits, const char *what, char *out, size_t cap)
{
    const char *n = alg_name(a);
    char unknown[32];
    if (!n) {
        snprintf(unknown, sizeof unknown, "%s 0x%04X", what, (unsigned)a);
        n = unknown;
    }
    if (bits)
        snprintf(out, cap, "%s %lu-bit", n, (unsigned long)bits);
    else
        snprintf(out, cap, "%s", n);
}

int tls_policy_check(const struct tls_policy *p, const SecPkgContext_ConnectionInfo *ci,
                     const SecPkgContext_CipherInfo *suite, char *text, size_t cap)
{
    unsigned v = tls_protocol_version(ci->dwProtocol);
    int aead = tls_suite_is_aead(suite);
    int fits = v != 0 && v >= p->min_version && ci->dwCipherStrength >= p->min_cipher_bits &&
               ci->aiCipher != CALG_NULLCIPHER && (!p->aead_only || aead == 1);
    if (!cap)
        return fits;

    char ver[32], want[32], cipher[48], hash[48] = "", exch[48] = "", name[SZ_ALG_MAX_SIZE + 1] = "";
    version_name(v, ver, sizeof ver);
    version_name(p->min_version, want, sizeof want);
    alg_text(ci->aiCipher, ci->dwCipherStrength, "cipher", cipher, sizeof cipher);
    if (ci->aiHash)
        alg_text(ci->aiHash, 0, "hash", hash, sizeof hash);
    if (ci->aiExch)
        alg_text(ci->aiExch, ci->dwExchStrength, "exchange", exch, sizeof exch);
    if (suite) {
        /* Suite names are ASCII; anything else is shown as '?'. */
        size_t i = 0;
        for (; i < SZ_ALG_MAX_SIZE && suite->szCipherSuite[i]; i++) {
            wchar_t ch = suite->szCipherSuite[i];
            name[i] = ch > 0x20 && ch < 0x7F ? (char)ch : '?';
        }
        name[i] = 0;
    }
    int n = snprintf(text, cap,
                     "negotiated %s, %s%s%s%s%s%s%s; policy requires %s or newer, %u-bit or "
                     "stronger %scipher",
                     ver, cipher, hash[0] ? ", hash " : "", hash, exch[0] ? ", exchange " : "", exch,
                     name[0] ? ", suite " : "", name, want, p->min_cipher_bits,
                     p->aead_only ? "AEAD (GCM, CCM or ChaCha20-Poly1305) " : "");
    if (n < 0 || (size_t)n >= cap)
        text[cap - 1] = 0; /* truncated text still names the negotiated side first */
    return fits;
}
