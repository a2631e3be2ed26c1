/* tlspolicy.c - is what a TLS handshake negotiated strong enough?
 *
 * After every handshake the stream checks SECPKG_ATTR_CONNECTION_INFO against
 * a policy (default: TLS 1.2 or newer, 128-bit or stronger cipher) and, fit
 * or not, writes both sides as one line of text: administrators read it in
 * the event, SMTP clients in the `454 4.7.0` reply, so it names the values
 * and never just says "failed".
 */
#include "tls.h"

#include <stdio.h>
#include <string.h>

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
                     char *text, size_t cap)
{
    unsigned v = tls_protocol_version(ci->dwProtocol);
    int fits = v != 0 && v >= p->min_version && ci->dwCipherStrength >= p->min_cipher_bits &&
               ci->aiCipher != CALG_NULLCIPHER;
    if (!cap)
        return fits;

    char ver[32], want[32], cipher[48], hash[48] = "", exch[48] = "";
    version_name(v, ver, sizeof ver);
    version_name(p->min_version, want, sizeof want);
    alg_text(ci->aiCipher, ci->dwCipherStrength, "cipher", cipher, sizeof cipher);
    if (ci->aiHash)
        alg_text(ci->aiHash, 0, "hash", hash, sizeof hash);
    if (ci->aiExch)
        alg_text(ci->aiExch, ci->dwExchStrength, "exchange", exch, sizeof exch);
    int n = snprintf(text, cap,
                     "negotiated %s, %s%s%s%s%s; policy requires %s or newer, %u-bit or stronger cipher",
                     ver, cipher, hash[0] ? ", hash " : "", hash, exch[0] ? ", exchange " : "", exch,
                     want, p->min_cipher_bits);
    if (n < 0 || (size_t)n >= cap)
        text[cap - 1] = 0; /* truncated text still names the negotiated side first */
    return fits;
}
