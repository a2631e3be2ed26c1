/* tls_raw_peer.h - a minimal TLS 1.2 client written for check_tls.c, over
 * CNG (BCrypt), to do what Schannel's own client will not do under Wine:
 * renegotiate from the client side, and offer exactly one suite (a CBC one,
 * to meet an AEAD-only policy).
 *
 * It speaks just enough TLS 1.2 (RFC 5246) for that: a ClientHello with one
 * suite, ECDHE over P-256, RSA certificates, the renegotiation_info
 * extension (RFC 5746), records protected with AES-128-GCM
 * (TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256) or AES-128-CBC with HMAC-SHA1
 * (TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA). It must never be used outside tests:
 * it does not check the server's certificate or signature, nor its Finished.
 * Bytes in and out as the stream does: raw_out()/raw_feed(), no sockets.
 */
#ifndef IMSVC_TLS_RAW_PEER_H
#define IMSVC_TLS_RAW_PEER_H

#include <windows.h>
#include <bcrypt.h>
#include <stdint.h>
#include <string.h>

#ifndef BCRYPT_KDF_RAW_SECRET
#define BCRYPT_KDF_RAW_SECRET L"TRUNCATE" /* Windows 8.1 and later */
#endif

#define RAW_SUITE_GCM 0xC02Fu /* TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 */
#define RAW_SUITE_CBC 0xC013u /* TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA */
#define RAW_BUF       (96u * 1024u)

struct raw_dir {                 /* one direction's record protection */
    BCRYPT_KEY_HANDLE key;
    unsigned char mac[20], iv[4];
    uint64_t seq;
    int on;
};

struct raw_peer {
    unsigned suite;
    BCRYPT_ALG_HANDLE ecdh, gcm, cbc, hmac256, hmac1, sha256;
    unsigned char crandom[32], srandom[32], master[48];
    unsigned char client_verify[12];
    int have_verify;
    struct raw_dir w, r;          /* we write, we read */
    unsigned char spub[65];
    int got_kx, got_done, established;
    unsigned char alert[2];       /* the last alert received: level, description */
    int alerts;
    unsigned char *transcript;    /* handshake messages of the current handshake */
    size_t tlen;
    unsigned char hs[RAW_BUF];    /* handshake bytes not parsed yet */
    size_t hslen;
    unsigned char in[RAW_BUF];    /* records not complete yet */
    size_t inlen;
    unsigned char out[RAW_BUF];   /* records to send */
    size_t outlen;
    unsigned char app[RAW_BUF];   /* application data received */
    size_t applen;
    int error;                    /* set on anything unexpected; the test asserts it stays 0 */
};

static void raw_put(unsigned char *p, size_t *len, const void *d, size_t n)
{
    if (*len + n > RAW_BUF)
        return;
    memcpy(p + *len, d, n);
    *len += n;
}

static void raw_u16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static void raw_hmac(struct raw_peer *r, BCRYPT_ALG_HANDLE alg, const unsigned char *key, ULONG klen,
                     const unsigned char *a, ULONG alen, const unsigned char *b, ULONG blen,
                     unsigned char *out, ULONG outlen)
{
    BCRYPT_HASH_HANDLE h;
    if (BCryptCreateHash(alg, &h, NULL, 0, (PUCHAR)key, klen, 0) != 0) {
        r->error = 1;
        return;
    }
    BCryptHashData(h, (PUCHAR)a, alen, 0);
    if (blen)
        BCryptHashData(h, (PUCHAR)b, blen, 0);
    BCryptFinishHash(h, out, outlen, 0);
    BCryptDestroyHash(h);
}

/* The TLS 1.2 PRF with SHA-256 (RFC 5246, 5). */
static void raw_prf(struct raw_peer *r, const unsigned char *secret, ULONG slen, const char *label,
                    const unsigned char *s1, ULONG n1, const unsigned char *s2, ULONG n2,
                    unsigned char *out, size_t outlen)
{
    unsigned char seed[128], a[32], block[32];
    ULONG sl = 0;
    memcpy(seed, label, strlen(label)), sl += (ULONG)strlen(label);
    memcpy(seed + sl, s1, n1), sl += n1;
    memcpy(seed + sl, s2, n2), sl += n2;
    raw_hmac(r, r->hmac256, secret, slen, seed, sl, NULL, 0, a, 32);
    for (size_t done = 0; done < outlen;) {
        raw_hmac(r, r->hmac256, secret, slen, a, 32, seed, sl, block, 32);
        size_t n = outlen - done < 32 ? outlen - done : 32;
        memcpy(out + done, block, n);
        done += n;
        raw_hmac(r, r->hmac256, secret, slen, a, 32, NULL, 0, a, 32);
    }
}

static void raw_transcript(struct raw_peer *r, const unsigned char *m, size_t n)
{
    unsigned char *p = realloc(r->transcript, r->tlen + n);
    if (!p) {
        r->error = 1;
        return;
    }
    r->transcript = p;
    memcpy(p + r->tlen, m, n);
    r->tlen += n;
}

/* Protect and queue one record of type t. */
static void raw_record(struct raw_peer *r, unsigned t, const unsigned char *d, size_t n)
{
    unsigned char rec[5 + 16384 + 256];
    if (n > 16384) {
        r->error = 1;
        return;
    }
    rec[0] = (unsigned char)t;
    rec[1] = 3, rec[2] = 3;
    size_t body = n;
    if (!r->w.on) {
        memcpy(rec + 5, d, n);
    } else {
        unsigned char seq[8], aad[13];
        for (int i = 0; i < 8; i++)
            seq[i] = (unsigned char)(r->w.seq >> (56 - 8 * i));
        memcpy(aad, seq, 8);
        aad[8] = (unsigned char)t, aad[9] = 3, aad[10] = 3;
        raw_u16(aad + 11, (unsigned)n);
        ULONG got = 0;
        if (r->suite == RAW_SUITE_GCM) {
            unsigned char nonce[12], tag[16];
            memcpy(nonce, r->w.iv, 4);
            memcpy(nonce + 4, seq, 8);
            BCRYPT_AUTHENTICATED_CIPHER_MODE_INFO ai;
            BCRYPT_INIT_AUTH_MODE_INFO(ai);
            ai.pbNonce = nonce, ai.cbNonce = 12;
            ai.pbAuthData = aad, ai.cbAuthData = 13;
            ai.pbTag = tag, ai.cbTag = 16;
            memcpy(rec + 5, seq, 8);
            if (BCryptEncrypt(r->w.key, (PUCHAR)d, (ULONG)n, &ai, NULL, 0, rec + 13, (ULONG)n, &got, 0))
                r->error = 1;
            memcpy(rec + 13 + n, tag, 16);
            body = 8 + n + 16;
        } else {
            /* MAC-then-encrypt with an explicit random IV. */
            unsigned char plain[16384 + 64], iv[16];
            memcpy(plain, d, n);
            raw_hmac(r, r->hmac1, r->w.mac, 20, aad, 13, d, (ULONG)n, plain + n, 20);
            size_t len = n + 20;
            size_t pad = 16 - (len + 1) % 16;
            if (pad == 16)
                pad = 0;
            memset(plain + len, (int)pad, pad + 1);
            len += pad + 1;
            BCryptGenRandom(NULL, iv, 16, BCRYPT_USE_SYSTEM_PREFERRED_RNG);
            memcpy(rec + 5, iv, 16);
            if (BCryptEncrypt(r->w.key, plain, (ULONG)len, NULL, iv, 16, rec + 21, (ULONG)len, &got, 0))
                r->error = 1;
            body = 16 + len;
        }
        r->w.seq++;
    }
    raw_u16(rec + 3, (unsigned)body);
    raw_put(r->out, &r->outlen, rec, 5 + body);
}

/* Unprotect a record body in place; returns the plaintext length or -1. */
static long raw_open(struct raw_peer *r, unsigned t, unsigned char *b, size_t n)
{
    if (!r->r.on)
        return (long)n;
    unsigned char aad[13];
    for (int i = 0; i < 8; i++)
        aad[i] = (unsigned char)(r->r.seq >> (56 - 8 * i));
    aad[8] = (unsigned char)t, aad[9] = 3, aad[10] = 3;
    ULONG got = 0;
    long plain;
    if (r->suite == RAW_SUITE_GCM) {
        if (n < 24)
            return -1;
        size_t clen = n - 24;
        unsigned char nonce[12];
        memcpy(nonce, r->r.iv, 4);
        memcpy(nonce + 4, b, 8);
        raw_u16(aad + 11, (unsigned)clen);
        BCRYPT_AUTHENTICATED_CIPHER_MODE_INFO ai;
        BCRYPT_INIT_AUTH_MODE_INFO(ai);
        ai.pbNonce = nonce, ai.cbNonce = 12;
        ai.pbAuthData = aad, ai.cbAuthData = 13;
        ai.pbTag = b + 8 + clen, ai.cbTag = 16;
        if (BCryptDecrypt(r->r.key, b + 8, (ULONG)clen, &ai, NULL, 0, b, (ULONG)clen, &got, 0))
            return -1;
        plain = (long)clen;
    } else {
        if (n < 16 + 32 || (n - 16) % 16)
            return -1;
        unsigned char iv[16], mac[20];
        memcpy(iv, b, 16);
        if (BCryptDecrypt(r->r.key, b + 16, (ULONG)(n - 16), NULL, iv, 16, b, (ULONG)(n - 16), &got, 0))
            return -1;
        size_t len = n - 16;
        size_t pad = b[len - 1];
        if (pad + 1 + 20 > len)
            return -1;
        len -= pad + 1 + 20;
        raw_u16(aad + 11, (unsigned)len);
        raw_hmac(r, r->hmac1, r->r.mac, 20, aad, 13, b, (ULONG)len, mac, 20);
        if (memcmp(mac, b + len, 20) != 0)
            return -1;
        plain = (long)len;
    }
    r->r.seq++;
    return plain;
}

static void raw_key(struct raw_peer *r, struct raw_dir *d, const unsigned char *key)
{
    BCRYPT_ALG_HANDLE alg = r->suite == RAW_SUITE_GCM ? r->gcm : r->cbc;
    if (d->key)
        BCryptDestroyKey(d->key);
    if (BCryptGenerateSymmetricKey(alg, &d->key, NULL, 0, (PUCHAR)key, 16, 0))
        r->error = 1;
    d->seq = 0;
    d->on = 1;
}

static void raw_handshake_msg(struct raw_peer *r, unsigned type, const unsigned char *body, size_t n)
{
    unsigned char m[4 + 512];
    m[0] = (unsigned char)type;
    m[1] = 0, raw_u16(m + 2, (unsigned)n);
    memcpy(m + 4, body, n);
    raw_transcript(r, m, 4 + n);
    raw_record(r, 22, m, 4 + n);
}

/* ClientHello: the first, or a renegotiation inside the session. */
static void raw_hello(struct raw_peer *r)
{
    unsigned char b[256];
    size_t n = 0;
    free(r->transcript);
    r->transcript = NULL, r->tlen = 0;
    r->got_kx = r->got_done = 0;
    BCryptGenRandom(NULL, r->crandom, 32, BCRYPT_USE_SYSTEM_PREFERRED_RNG);
    b[n++] = 3, b[n++] = 3;
    memcpy(b + n, r->crandom, 32), n += 32;
    b[n++] = 0;                                   /* no session id */
    raw_u16(b + n, 2), n += 2;
    raw_u16(b + n, r->suite), n += 2;
    b[n++] = 1, b[n++] = 0;                       /* null compression */
    size_t ext = n;
    n += 2;
    static const unsigned char groups[] = { 0x00, 0x0a, 0x00, 0x04, 0x00, 0x02, 0x00, 0x17 };
    static const unsigned char points[] = { 0x00, 0x0b, 0x00, 0x02, 0x01, 0x00 };
    static const unsigned char sigalgs[] = { 0x00, 0x0d, 0x00, 0x0a, 0x00, 0x08,
                                             0x04, 0x01, 0x05, 0x01, 0x08, 0x04, 0x08, 0x05 };
    memcpy(b + n, groups, sizeof groups), n += sizeof groups;
    memcpy(b + n, points, sizeof points), n += sizeof points;
    memcpy(b + n, sigalgs, sizeof sigalgs), n += sizeof sigalgs;
    unsigned vlen = r->have_verify ? 12 : 0;      /* RFC 5746: client_verify_data */
    raw_u16(b + n, 0xff01), n += 2;
    raw_u16(b + n, 1 + vlen), n += 2;
    b[n++] = (unsigned char)vlen;
    if (vlen)
        memcpy(b + n, r->client_verify, 12), n += 12;
    raw_u16(b + ext, (unsigned)(n - ext - 2));
    raw_handshake_msg(r, 1, b, n);
}

/* The server's flight is complete: key exchange, keys, CCS, Finished. */
static void raw_finish(struct raw_peer *r)
{
    BCRYPT_KEY_HANDLE mine, theirs;
    BCRYPT_SECRET_HANDLE sec;
    unsigned char blob[8 + 64], pms[32], hash[32], kb[104];
    ULONG n = 0;
    if (BCryptGenerateKeyPair(r->ecdh, &mine, 256, 0) || BCryptFinalizeKeyPair(mine, 0) ||
        BCryptExportKey(mine, NULL, BCRYPT_ECCPUBLIC_BLOB, blob, sizeof blob, &n, 0) || n != 72) {
        r->error = 1;
        return;
    }
    unsigned char cke[66];
    cke[0] = 65, cke[1] = 4;
    memcpy(cke + 2, blob + 8, 64);
    BCRYPT_ECCKEY_BLOB *h = (BCRYPT_ECCKEY_BLOB *)blob;
    h->dwMagic = BCRYPT_ECDH_PUBLIC_P256_MAGIC;
    h->cbKey = 32;
    memcpy(blob + 8, r->spub + 1, 64);
    if (BCryptImportKeyPair(r->ecdh, NULL, BCRYPT_ECCPUBLIC_BLOB, &theirs, blob, 72, 0) ||
        BCryptSecretAgreement(mine, theirs, &sec, 0) ||
        BCryptDeriveKey(sec, BCRYPT_KDF_RAW_SECRET, NULL, pms, 32, &n, 0) || n != 32) {
        r->error = 1;
        return;
    }
    for (int i = 0; i < 16; i++) { /* CNG gives the raw secret little-endian */
        unsigned char t = pms[i];
        pms[i] = pms[31 - i], pms[31 - i] = t;
    }
    BCryptDestroySecret(sec);
    BCryptDestroyKey(theirs);
    BCryptDestroyKey(mine);
    raw_handshake_msg(r, 16, cke, sizeof cke);

    raw_prf(r, pms, 32, "master secret", r->crandom, 32, r->srandom, 32, r->master, 48);
    raw_prf(r, r->master, 48, "key expansion", r->srandom, 32, r->crandom, 32, kb, sizeof kb);
    unsigned char one = 1;
    raw_record(r, 20, &one, 1);
    if (r->suite == RAW_SUITE_GCM) {
        raw_key(r, &r->w, kb);
        memcpy(r->w.iv, kb + 32, 4);
        raw_key(r, &r->r, kb + 16), r->r.on = 0; /* on at the server's CCS */
        memcpy(r->r.iv, kb + 36, 4);
    } else {
        memcpy(r->w.mac, kb, 20);
        memcpy(r->r.mac, kb + 20, 20);
        raw_key(r, &r->w, kb + 40);
        raw_key(r, &r->r, kb + 56), r->r.on = 0;
    }
    BCRYPT_HASH_HANDLE hh;
    BCryptCreateHash(r->sha256, &hh, NULL, 0, NULL, 0, 0);
    BCryptHashData(hh, r->transcript, (ULONG)r->tlen, 0);
    BCryptFinishHash(hh, hash, 32, 0);
    BCryptDestroyHash(hh);
    raw_prf(r, r->master, 48, "client finished", hash, 32, NULL, 0, r->client_verify, 12);
    r->have_verify = 1;
    raw_handshake_msg(r, 20, r->client_verify, 12);
}

static void raw_parse_handshake(struct raw_peer *r)
{
    size_t off = 0;
    while (r->hslen - off >= 4) {
        const unsigned char *m = r->hs + off;
        size_t len = (size_t)m[1] << 16 | (size_t)m[2] << 8 | m[3];
        if (r->hslen - off < 4 + len)
            break;
        const unsigned char *b = m + 4;
        switch (m[0]) {
        case 2: /* ServerHello: version, random, session id, suite */
            if (len < 38 || len < 38u + b[34] ||
                ((unsigned)b[35 + b[34]] << 8 | b[36 + b[34]]) != r->suite)
                r->error = 1;
            else
                memcpy(r->srandom, b + 2, 32);
            break;
        case 12: /* ServerKeyExchange: named curve P-256, uncompressed point */
            if (len < 4 + 65 || b[0] != 3 || b[1] != 0 || b[2] != 0x17 || b[3] != 65)
                r->error = 1;
            else
                memcpy(r->spub, b + 4, 65), r->got_kx = 1;
            break;
        case 14: /* ServerHelloDone */
            r->got_done = 1;
            break;
        case 20: /* Finished */
            r->established = 1;
            break;
        default: /* Certificate and the rest: not checked */
            break;
        }
        if (m[0] != 20)
            raw_transcript(r, m, 4 + len);
        off += 4 + len;
        if (m[0] == 14) {
            if (!r->got_kx)
                r->error = 1;
            else
                raw_finish(r);
        }
    }
    memmove(r->hs, r->hs + off, r->hslen - off);
    r->hslen -= off;
}

/* The server's bytes, any segmentation. */
static void raw_feed(struct raw_peer *r, const unsigned char *p, size_t n)
{
    raw_put(r->in, &r->inlen, p, n);
    size_t off = 0;
    while (r->inlen - off >= 5) {
        unsigned char *rec = r->in + off;
        size_t len = (size_t)rec[3] << 8 | rec[4];
        if (r->inlen - off < 5 + len)
            break;
        unsigned t = rec[0];
        long plain = raw_open(r, t, rec + 5, len);
        if (plain < 0) {
            r->error = 1;
            break;
        }
        if (t == 20) {
            r->r.on = 1;
            r->r.seq = 0;
        } else if (t == 21 && plain >= 2) {
            memcpy(r->alert, rec + 5, 2);
            r->alerts++;
        } else if (t == 22) {
            raw_put(r->hs, &r->hslen, rec + 5, (size_t)plain);
            raw_parse_handshake(r);
        } else if (t == 23) {
            raw_put(r->app, &r->applen, rec + 5, (size_t)plain);
        }
        off += 5 + len;
    }
    memmove(r->in, r->in + off, r->inlen - off);
    r->inlen -= off;
}

static int raw_new(struct raw_peer *r, unsigned suite)
{
    memset(r, 0, sizeof *r);
    r->suite = suite;
    if (BCryptOpenAlgorithmProvider(&r->ecdh, BCRYPT_ECDH_P256_ALGORITHM, NULL, 0) ||
        BCryptOpenAlgorithmProvider(&r->gcm, BCRYPT_AES_ALGORITHM, NULL, 0) ||
        BCryptSetProperty(r->gcm, BCRYPT_CHAINING_MODE, (PUCHAR)BCRYPT_CHAIN_MODE_GCM,
                          sizeof BCRYPT_CHAIN_MODE_GCM, 0) ||
        BCryptOpenAlgorithmProvider(&r->cbc, BCRYPT_AES_ALGORITHM, NULL, 0) ||
        BCryptSetProperty(r->cbc, BCRYPT_CHAINING_MODE, (PUCHAR)BCRYPT_CHAIN_MODE_CBC,
                          sizeof BCRYPT_CHAIN_MODE_CBC, 0) ||
        BCryptOpenAlgorithmProvider(&r->hmac256, BCRYPT_SHA256_ALGORITHM, NULL,
                                    BCRYPT_ALG_HANDLE_HMAC_FLAG) ||
        BCryptOpenAlgorithmProvider(&r->hmac1, BCRYPT_SHA1_ALGORITHM, NULL,
                                    BCRYPT_ALG_HANDLE_HMAC_FLAG) ||
        BCryptOpenAlgorithmProvider(&r->sha256, BCRYPT_SHA256_ALGORITHM, NULL, 0))
        return -1;
    raw_hello(r);
    return 0;
}

static void raw_write(struct raw_peer *r, const void *d, size_t n)
{
    raw_record(r, 23, d, n);
}

static void raw_free(struct raw_peer *r)
{
    if (r->w.key)
        BCryptDestroyKey(r->w.key);
    if (r->r.key)
        BCryptDestroyKey(r->r.key);
    BCryptCloseAlgorithmProvider(r->ecdh, 0);
    BCryptCloseAlgorithmProvider(r->gcm, 0);
    BCryptCloseAlgorithmProvider(r->cbc, 0);
    BCryptCloseAlgorithmProvider(r->hmac256, 0);
    BCryptCloseAlgorithmProvider(r->hmac1, 0);
    BCryptCloseAlgorithmProvider(r->sha256, 0);
    free(r->transcript);
}

#endif
