/* cert.c - certificates for the secure stream: load, find, create, verify.
 *
 * See cert.h. Nothing here keeps state between calls or logs; callers turn a
 * returned status into an event or a reply.
 */
#ifndef SECURITY_WIN32
#define SECURITY_WIN32
#endif
#include <windows.h>
#include <wincrypt.h>
#include <sspi.h>
#include <schannel.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "cert.h"

#define CERT_PFX_MAX        (1024u * 1024u) /* a PFX file larger than this is refused */
#define CERT_NEW_KEY_BITS   2048u
#define CERT_NEW_YEARS      5
#define CERT_NAME_MAX       512             /* encoded subject name bytes */
#define CERT_HOST_MAX       256
#define CERT_FRIENDLY_NAME  L"Internet Mail Service (self-signed)"

static DWORD last_error_or(DWORD fallback)
{
    DWORD e = GetLastError();
    return e ? e : fallback;
}

/* Does the certificate carry a private key we can reach? */
static int has_private_key(PCCERT_CONTEXT c)
{
    DWORD n = 0;
    return CertGetCertificateContextProperty(c, CERT_KEY_PROV_INFO_PROP_ID, NULL, &n) ||
           CertGetCertificateContextProperty(c, CERT_KEY_CONTEXT_PROP_ID, NULL, &n);
}

DWORD cert_load_pfx_blob(const void *data, DWORD len, const wchar_t *password,
                         PCCERT_CONTEXT *out)
{
    *out = NULL;
    CRYPT_DATA_BLOB blob = { len, (BYTE *)data };
    if (!PFXIsPFXBlob(&blob))
        return (DWORD)CRYPT_E_BAD_ENCODE;
    /* Exportable because Wine's Schannel reads the key itself; the store is
     * in memory, the key container persists like any imported key. */
    HCERTSTORE st = PFXImportCertStore(&blob, password ? password : L"",
                                       CRYPT_EXPORTABLE | CRYPT_USER_KEYSET);
    if (!st)
        return last_error_or((DWORD)CRYPT_E_BAD_ENCODE);
    PCCERT_CONTEXT c = NULL;
    while ((c = CertEnumCertificatesInStore(st, c)) != NULL)
        if (has_private_key(c)) {
            *out = CertDuplicateCertificateContext(c);
            CertFreeCertificateContext(c);
            break;
        }
    CertCloseStore(st, 0);
    return *out ? ERROR_SUCCESS : (DWORD)CRYPT_E_NO_KEY_PROPERTY;
}

DWORD cert_load_pfx(const wchar_t *path, const wchar_t *password, PCCERT_CONTEXT *out)
{
    *out = NULL;
    HANDLE f = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING,
                           FILE_ATTRIBUTE_NORMAL, NULL);
    if (f == INVALID_HANDLE_VALUE)
        return GetLastError();
    DWORD rc = ERROR_SUCCESS;
    LARGE_INTEGER size;
    BYTE *buf = NULL;
    DWORD got = 0;
    if (!GetFileSizeEx(f, &size))
        rc = GetLastError();
    else if (size.QuadPart <= 0 || size.QuadPart > CERT_PFX_MAX)
        rc = ERROR_FILE_TOO_LARGE;
    else if (!(buf = malloc((size_t)size.QuadPart)))
        rc = ERROR_NOT_ENOUGH_MEMORY;
    else if (!ReadFile(f, buf, (DWORD)size.QuadPart, &got, NULL))
        rc = GetLastError();
    else if (got != (DWORD)size.QuadPart)
        rc = ERROR_HANDLE_EOF;
    CloseHandle(f);
    if (rc == ERROR_SUCCESS)
        rc = cert_load_pfx_blob(buf, got, password, out);
    if (buf) {
        SecureZeroMemory(buf, got);
        free(buf);
    }
    return rc;
}

/* 40 hex digits, ignoring spaces and colons, to 20 bytes; 0 if not that. */
static int parse_thumbprint(const wchar_t *s, BYTE hash[20])
{
    int n = 0;
    for (; *s; s++) {
        if (*s == L' ' || *s == L':')
            continue;
        int v;
        if (*s >= L'0' && *s <= L'9') v = *s - L'0';
        else if (*s >= L'a' && *s <= L'f') v = *s - L'a' + 10;
        else if (*s >= L'A' && *s <= L'F') v = *s - L'A' + 10;
        else return 0;
        if (n >= 40)
            return 0;
        if (n % 2 == 0) hash[n / 2] = (BYTE)(v << 4);
        else hash[n / 2] |= (BYTE)v;
        n++;
    }
    return n == 40;
}

DWORD cert_find(const wchar_t *store_name, DWORD location, const wchar_t *which,
                PCCERT_CONTEXT *out)
{
    *out = NULL;
    if (!store_name || !which || !which[0])
        return ERROR_INVALID_PARAMETER;
    HCERTSTORE st = CertOpenStore(CERT_STORE_PROV_SYSTEM_W, 0, 0,
                                  location | CERT_STORE_OPEN_EXISTING_FLAG | CERT_STORE_READONLY_FLAG,
                                  store_name);
    if (!st)
        return last_error_or(ERROR_FILE_NOT_FOUND);
    BYTE hash[20];
    CRYPT_HASH_BLOB hb = { sizeof hash, hash };
    DWORD type = CERT_FIND_SUBJECT_STR_W;
    const void *para = which;
    if (parse_thumbprint(which, hash)) {
        type = CERT_FIND_SHA1_HASH;
        para = &hb;
    }
    PCCERT_CONTEXT c = NULL, best = NULL;
    while ((c = CertFindCertificateInStore(st, X509_ASN_ENCODING | PKCS_7_ASN_ENCODING, 0,
                                           type, para, c)) != NULL) {
        if (!has_private_key(c))
            continue;
        if (!best || CompareFileTime(&c->pCertInfo->NotAfter, &best->pCertInfo->NotAfter) > 0) {
            if (best)
                CertFreeCertificateContext(best);
            best = CertDuplicateCertificateContext(c);
        }
    }
    CertCloseStore(st, 0);
    if (!best)
        return (DWORD)CRYPT_E_NOT_FOUND;
    *out = best;
    return ERROR_SUCCESS;
}

DWORD cert_thumbprint(PCCERT_CONTEXT cert, wchar_t out[CERT_THUMBPRINT_CHARS + 1])
{
    BYTE hash[20];
    DWORD n = sizeof hash;
    out[0] = 0;
    if (!CertGetCertificateContextProperty(cert, CERT_SHA1_HASH_PROP_ID, hash, &n) || n != 20)
        return last_error_or((DWORD)CRYPT_E_NOT_FOUND);
    for (DWORD i = 0; i < 20; i++)
        swprintf(out + 2 * i, 3, L"%02X", hash[i]);
    out[CERT_THUMBPRINT_CHARS] = 0;
    return ERROR_SUCCESS;
}

/* The value of the CN in a subject string, for the DNS name. */
static void subject_cn(const wchar_t *subject, wchar_t *cn, size_t cap)
{
    cn[0] = 0;
    const wchar_t *p = wcsstr(subject, L"CN=");
    if (!p)
        return;
    p += 3;
    size_t n = 0;
    while (p[n] && p[n] != L',' && p[n] != L';' && n + 1 < cap)
        n++;
    wmemcpy(cn, p, n);
    cn[n] = 0;
}

/* Can Schannel make server credentials from this certificate? */
static SECURITY_STATUS probe_server_cred(PCCERT_CONTEXT c)
{
    SCHANNEL_CRED sc = { 0 };
    sc.dwVersion = SCHANNEL_CRED_VERSION;
    sc.cCreds = 1;
    sc.paCred = &c;
    CredHandle h;
    TimeStamp ts;
    SECURITY_STATUS st = AcquireCredentialsHandleW(NULL, (SEC_WCHAR *)UNISP_NAME_W,
                                                   SECPKG_CRED_INBOUND, NULL, &sc, NULL, NULL,
                                                   &h, &ts);
    if (st == SEC_E_OK)
        FreeCredentialsHandle(&h);
    return st;
}

/* One attempt in one key set: a new container, its key, the certificate. */
static DWORD make_self_signed(CERT_NAME_BLOB *name, CERT_EXTENSIONS *exts, DWORD keyset,
                              const wchar_t *container, PCCERT_CONTEXT *out)
{
    HCRYPTPROV prov = 0;
    HCRYPTKEY key = 0;
    *out = NULL;
    if (!CryptAcquireContextW(&prov, container, MS_ENH_RSA_AES_PROV_W, PROV_RSA_AES,
                              CRYPT_NEWKEYSET | keyset))
        return last_error_or((DWORD)NTE_BAD_KEYSET);
    DWORD rc = ERROR_SUCCESS;
    if (!CryptGenKey(prov, AT_KEYEXCHANGE, (CERT_NEW_KEY_BITS << 16), &key))
        rc = last_error_or((DWORD)NTE_FAIL);
    if (key)
        CryptDestroyKey(key);
    CryptReleaseContext(prov, 0);
    if (rc != ERROR_SUCCESS)
        return rc;

    CRYPT_KEY_PROV_INFO kpi = { 0 };
    kpi.pwszContainerName = (wchar_t *)container;
    kpi.pwszProvName = (wchar_t *)MS_ENH_RSA_AES_PROV_W;
    kpi.dwProvType = PROV_RSA_AES;
    kpi.dwFlags = keyset;
    kpi.dwKeySpec = AT_KEYEXCHANGE;
    CRYPT_ALGORITHM_IDENTIFIER alg = { (char *)szOID_RSA_SHA256RSA, { 0, NULL } };
    SYSTEMTIME start, end;
    GetSystemTime(&start);
    end = start;
    end.wYear += CERT_NEW_YEARS;
    if (end.wMonth == 2 && end.wDay == 29)
        end.wDay = 28;
    *out = CertCreateSelfSignCertificate(0, name, 0, &kpi, &alg, &start, &end, exts);
    if (!*out)
        return last_error_or((DWORD)NTE_FAIL);
    return ERROR_SUCCESS;
}

static void delete_container(const wchar_t *container, DWORD keyset)
{
    HCRYPTPROV prov;
    CryptAcquireContextW(&prov, container, MS_ENH_RSA_AES_PROV_W, PROV_RSA_AES,
                         CRYPT_DELETEKEYSET | keyset);
}

DWORD cert_new(const wchar_t *subject, unsigned flags, PCCERT_CONTEXT *out,
               unsigned *result_flags)
{
    *out = NULL;
    if (result_flags)
        *result_flags = 0;
    wchar_t subj[CERT_HOST_MAX + 8];
    if (!subject || !subject[0]) {
        wchar_t host[MAX_COMPUTERNAME_LENGTH + 1];
        DWORD n = ARRAYSIZE(host);
        if (!GetComputerNameExW(ComputerNameDnsFullyQualified, host, &n) || !host[0]) {
            n = ARRAYSIZE(host);
            if (!GetComputerNameW(host, &n))
                wcscpy(host, L"localhost");
        }
        if (_snwprintf(subj, ARRAYSIZE(subj), L"CN=%ls", host) < 0)
            return ERROR_BUFFER_OVERFLOW;
        subj[ARRAYSIZE(subj) - 1] = 0;
        subject = subj;
    }

    BYTE name_buf[CERT_NAME_MAX];
    DWORD name_len = sizeof name_buf;
    if (!CertStrToNameW(X509_ASN_ENCODING, subject, CERT_X500_NAME_STR, NULL, name_buf,
                        &name_len, NULL))
        return last_error_or((DWORD)CRYPT_E_INVALID_X500_STRING);
    CERT_NAME_BLOB name = { name_len, name_buf };

    /* Extensions: server authentication, and the CN as a DNS name since
     * clients match host names against subjectAltName. */
    wchar_t cn[CERT_HOST_MAX];
    subject_cn(subject, cn, ARRAYSIZE(cn));
    CERT_EXTENSION ext[2];
    DWORD next = 0;
    BYTE *eku_enc = NULL, *san_enc = NULL;
    DWORD eku_len = 0, san_len = 0;
    char *usages[] = { (char *)szOID_PKIX_KP_SERVER_AUTH };
    CERT_ENHKEY_USAGE eku = { 1, usages };
    if (!CryptEncodeObjectEx(X509_ASN_ENCODING, X509_ENHANCED_KEY_USAGE, &eku,
                             CRYPT_ENCODE_ALLOC_FLAG, NULL, &eku_enc, &eku_len))
        return last_error_or((DWORD)CRYPT_E_ASN1_ERROR);
    ext[next++] = (CERT_EXTENSION){ (char *)szOID_ENHANCED_KEY_USAGE, FALSE, { eku_len, eku_enc } };
    if (cn[0]) {
        CERT_ALT_NAME_ENTRY alt = { 0 };
        alt.dwAltNameChoice = CERT_ALT_NAME_DNS_NAME;
        alt.pwszDNSName = cn;
        CERT_ALT_NAME_INFO ani = { 1, &alt };
        if (CryptEncodeObjectEx(X509_ASN_ENCODING, X509_ALTERNATE_NAME, &ani,
                                CRYPT_ENCODE_ALLOC_FLAG, NULL, &san_enc, &san_len))
            ext[next++] = (CERT_EXTENSION){ (char *)szOID_SUBJECT_ALT_NAME2, FALSE, { san_len, san_enc } };
    }
    CERT_EXTENSIONS exts = { next, ext };

    /* A container name of our own: imsvc-<16 random hex digits>. */
    BYTE rnd[8] = { 0 };
    HCRYPTPROV rp;
    if (CryptAcquireContextW(&rp, NULL, NULL, PROV_RSA_FULL, CRYPT_VERIFYCONTEXT)) {
        CryptGenRandom(rp, sizeof rnd, rnd);
        CryptReleaseContext(rp, 0);
    }
    wchar_t container[64];
    swprintf(container, ARRAYSIZE(container), L"imsvc-%02x%02x%02x%02x%02x%02x%02x%02x",
             rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);

    DWORD keyset = (flags & CERT_NEW_USER_KEYSET) ? 0 : CRYPT_MACHINE_KEYSET;
    PCCERT_CONTEXT c = NULL;
    DWORD rc = make_self_signed(&name, &exts, keyset, container, &c);
    if (rc == ERROR_SUCCESS && keyset == CRYPT_MACHINE_KEYSET && probe_server_cred(c) != SEC_E_OK) {
        /* Wine 10's Schannel finds keys only in the user's key set
         * (AcquireCredentialsHandle: SEC_E_UNKNOWN_CREDENTIALS). */
        CertFreeCertificateContext(c);
        c = NULL;
        delete_container(container, keyset);
        keyset = 0;
        rc = make_self_signed(&name, &exts, keyset, container, &c);
        if (rc == ERROR_SUCCESS && result_flags)
            *result_flags |= CERT_NEW_USED_USER_KEYSET;
    }
    LocalFree(eku_enc);
    LocalFree(san_enc);
    if (rc != ERROR_SUCCESS) {
        delete_container(container, keyset);
        return rc;
    }
    CRYPT_DATA_BLOB fn = { (DWORD)((wcslen(CERT_FRIENDLY_NAME) + 1) * sizeof(wchar_t)),
                           (BYTE *)CERT_FRIENDLY_NAME };
    CertSetCertificateContextProperty(c, CERT_FRIENDLY_NAME_PROP_ID, 0, &fn);

    if (flags & CERT_NEW_NO_STORE) {
        *out = c;
        return ERROR_SUCCESS;
    }
    HCERTSTORE st = CertOpenStore(CERT_STORE_PROV_SYSTEM_W, 0, 0,
                                  CERT_SYSTEM_STORE_LOCAL_MACHINE, L"MY");
    if (!st) {
        rc = last_error_or(ERROR_ACCESS_DENIED);
        CertFreeCertificateContext(c);
        return rc;
    }
    /* Commit before anything else looks: a registry store may write only
     * when its last context is released (Wine does). */
    if (!CertAddCertificateContextToStore(st, c, CERT_STORE_ADD_NEW, NULL) ||
        !CertControlStore(st, 0, CERT_STORE_CTRL_COMMIT, NULL))
        rc = last_error_or(ERROR_ACCESS_DENIED);
    CertCloseStore(st, 0);
    if (rc != ERROR_SUCCESS) {
        CertFreeCertificateContext(c);
        return rc;
    }
    *out = c;
    return ERROR_SUCCESS;
}

int cert_is_own(PCCERT_CONTEXT cert)
{
    wchar_t name[64];
    DWORD n = sizeof name;
    if (!CertGetCertificateContextProperty(cert, CERT_FRIENDLY_NAME_PROP_ID, name, &n) ||
        n != sizeof CERT_FRIENDLY_NAME || memcmp(name, CERT_FRIENDLY_NAME, n) != 0)
        return 0;
    return CertCompareCertificateName(X509_ASN_ENCODING, &cert->pCertInfo->Subject,
                                      &cert->pCertInfo->Issuer) != 0;
}

DWORD cert_remove_own(const wchar_t *thumbprint, DWORD *key_rc)
{
    *key_rc = ERROR_SUCCESS;
    BYTE hash[20];
    if (!thumbprint || !parse_thumbprint(thumbprint, hash))
        return ERROR_INVALID_PARAMETER;
    HCERTSTORE st = CertOpenStore(CERT_STORE_PROV_SYSTEM_W, 0, 0,
                                  CERT_SYSTEM_STORE_LOCAL_MACHINE | CERT_STORE_OPEN_EXISTING_FLAG,
                                  L"MY");
    if (!st)
        return last_error_or(ERROR_FILE_NOT_FOUND);
    CRYPT_HASH_BLOB hb = { sizeof hash, hash };
    PCCERT_CONTEXT c = CertFindCertificateInStore(st, X509_ASN_ENCODING | PKCS_7_ASN_ENCODING, 0,
                                                  CERT_FIND_SHA1_HASH, &hb, NULL);
    if (!c) {
        CertCloseStore(st, 0);
        return (DWORD)CRYPT_E_NOT_FOUND;
    }
    if (!cert_is_own(c)) {
        CertFreeCertificateContext(c);
        CertCloseStore(st, 0);
        return ERROR_NOT_OWNER;
    }
    /* Where the key is, kept before the context goes with the deletion. */
    wchar_t container[128] = L"", provider[128] = L"";
    DWORD prov_type = 0, key_flags = 0, n = 0;
    if (CertGetCertificateContextProperty(c, CERT_KEY_PROV_INFO_PROP_ID, NULL, &n)) {
        CRYPT_KEY_PROV_INFO *kpi = malloc(n);
        if (kpi && CertGetCertificateContextProperty(c, CERT_KEY_PROV_INFO_PROP_ID, kpi, &n) &&
            kpi->pwszContainerName && kpi->dwProvType != 0) {
            _snwprintf(container, ARRAYSIZE(container), L"%ls", kpi->pwszContainerName);
            container[ARRAYSIZE(container) - 1] = 0;
            if (kpi->pwszProvName) {
                _snwprintf(provider, ARRAYSIZE(provider), L"%ls", kpi->pwszProvName);
                provider[ARRAYSIZE(provider) - 1] = 0;
            }
            prov_type = kpi->dwProvType;
            key_flags = kpi->dwFlags & CRYPT_MACHINE_KEYSET;
        }
        free(kpi);
    }
    DWORD rc = ERROR_SUCCESS;
    if (!CertDeleteCertificateFromStore(c))   /* frees c, whatever it returns */
        rc = last_error_or(ERROR_ACCESS_DENIED);
    else if (!CertControlStore(st, 0, CERT_STORE_CTRL_COMMIT, NULL) &&
             GetLastError() != ERROR_CALL_NOT_IMPLEMENTED)
        rc = last_error_or(ERROR_ACCESS_DENIED);
    CertCloseStore(st, 0);
    if (rc == ERROR_SUCCESS && container[0]) {
        HCRYPTPROV prov;
        if (!CryptAcquireContextW(&prov, container, provider[0] ? provider : NULL, prov_type,
                                  CRYPT_DELETEKEYSET | key_flags))
            *key_rc = last_error_or((DWORD)NTE_BAD_KEYSET);
    }
    return rc;
}

DWORD cert_verify_server(PCCERT_CONTEXT cert, const wchar_t *host, int accept_any)
{
    if (accept_any)
        return ERROR_SUCCESS;
    if (!cert)
        return (DWORD)SEC_E_CERT_UNKNOWN;
    if (!host || !host[0])
        return (DWORD)CERT_E_CN_NO_MATCH;

    char *usage[] = { (char *)szOID_PKIX_KP_SERVER_AUTH,
                      (char *)szOID_SERVER_GATED_CRYPTO, (char *)szOID_SGC_NETSCAPE };
    CERT_CHAIN_PARA cp = { 0 };
    cp.cbSize = sizeof cp;
    cp.RequestedUsage.dwType = USAGE_MATCH_TYPE_OR;
    cp.RequestedUsage.Usage.cUsageIdentifier = ARRAYSIZE(usage);
    cp.RequestedUsage.Usage.rgpszUsageIdentifier = usage;
    PCCERT_CHAIN_CONTEXT chain = NULL;
    /* The peer's intermediates are in cert->hCertStore. Revocation is not
     * checked: a mail gateway often cannot reach CRLs, and a failed fetch
     * would stop all outbound TLS. */
    if (!CertGetCertificateChain(NULL, cert, NULL, cert->hCertStore, &cp, 0, NULL, &chain))
        return last_error_or((DWORD)CERT_E_CHAINING);

    SSL_EXTRA_CERT_CHAIN_POLICY_PARA ssl = { 0 };
    ssl.cbSize = sizeof ssl;
    ssl.dwAuthType = AUTHTYPE_SERVER;
    ssl.pwszServerName = (wchar_t *)host;
    CERT_CHAIN_POLICY_PARA pp = { 0 };
    pp.cbSize = sizeof pp;
    pp.pvExtraPolicyPara = &ssl;
    CERT_CHAIN_POLICY_STATUS ps = { 0 };
    ps.cbSize = sizeof ps;
    DWORD rc = ERROR_SUCCESS;
    if (!CertVerifyCertificateChainPolicy(CERT_CHAIN_POLICY_SSL, chain, &pp, &ps))
        rc = last_error_or((DWORD)TRUST_E_FAIL);
    else if (ps.dwError)
        rc = ps.dwError;
    CertFreeCertificateChain(chain);
    return rc;
}

/* Private key rights ------------------------------------------------------ */

/* The CryptoAPI key container of the certificate, opened. */
static DWORD open_key_container(PCCERT_CONTEXT cert, HCRYPTPROV *prov, wchar_t *where,
                                size_t where_len)
{
    *prov = 0;
    DWORD n = 0;
    if (!CertGetCertificateContextProperty(cert, CERT_KEY_PROV_INFO_PROP_ID, NULL, &n))
        return last_error_or((DWORD)CRYPT_E_NO_KEY_PROPERTY);
    CRYPT_KEY_PROV_INFO *kpi = malloc(n);
    if (!kpi)
        return ERROR_NOT_ENOUGH_MEMORY;
    DWORD rc = ERROR_SUCCESS;
    if (!CertGetCertificateContextProperty(cert, CERT_KEY_PROV_INFO_PROP_ID, kpi, &n))
        rc = last_error_or((DWORD)CRYPT_E_NO_KEY_PROPERTY);
    else if (kpi->dwProvType == 0)
        rc = ERROR_NOT_SUPPORTED;   /* a CNG key: NCryptSetProperty, not handled here */
    else if (!CryptAcquireContextW(prov, kpi->pwszContainerName, kpi->pwszProvName,
                                   kpi->dwProvType, kpi->dwFlags & CRYPT_MACHINE_KEYSET))
        rc = last_error_or((DWORD)NTE_BAD_KEYSET);
    if (where && where_len) {
        _snwprintf(where, where_len, L"container %ls, CryptoAPI (%ls), %ls key set",
                   kpi->pwszContainerName ? kpi->pwszContainerName : L"?",
                   kpi->dwProvType ? (kpi->pwszProvName ? kpi->pwszProvName : L"default") : L"CNG",
                   (kpi->dwFlags & CRYPT_MACHINE_KEYSET) ? L"machine" : L"user");
        where[where_len - 1] = 0;
    }
    free(kpi);
    return rc;
}

/* The key container's DACL as a self-relative descriptor (malloc'd). */
static DWORD key_sd_get(HCRYPTPROV prov, BYTE **out)
{
    *out = NULL;
    DWORD n = 0;
    if (!CryptGetProvParam(prov, PP_KEYSET_SEC_DESCR, NULL, &n, DACL_SECURITY_INFORMATION) &&
        GetLastError() != ERROR_MORE_DATA)
        return last_error_or((DWORD)NTE_BAD_TYPE);
    BYTE *buf = malloc(n ? n : 1);
    if (!buf)
        return ERROR_NOT_ENOUGH_MEMORY;
    if (!CryptGetProvParam(prov, PP_KEYSET_SEC_DESCR, buf, &n, DACL_SECURITY_INFORMATION)) {
        free(buf);
        return last_error_or((DWORD)NTE_BAD_TYPE);
    }
    *out = buf;
    return ERROR_SUCCESS;
}

DWORD cert_key_security(PCCERT_CONTEXT cert, wchar_t *where, size_t where_len,
                        PSECURITY_DESCRIPTOR *sd)
{
    *sd = NULL;
    HCRYPTPROV prov;
    DWORD rc = open_key_container(cert, &prov, where, where_len);
    if (rc != ERROR_SUCCESS)
        return rc;
    BYTE *buf;
    rc = key_sd_get(prov, &buf);
    CryptReleaseContext(prov, 0);
    if (rc != ERROR_SUCCESS)
        return rc;
    DWORD len = GetSecurityDescriptorLength(buf);
    *sd = LocalAlloc(LMEM_FIXED, len);
    if (*sd)
        memcpy(*sd, buf, len);
    free(buf);
    return *sd ? ERROR_SUCCESS : ERROR_NOT_ENOUGH_MEMORY;
}

/* Is there already an allow ACE for sid that includes mask? */
static int dacl_allows(PACL dacl, PSID sid, DWORD mask)
{
    for (DWORD i = 0; dacl && i < dacl->AceCount; i++) {
        ACCESS_ALLOWED_ACE *a;
        if (GetAce(dacl, i, (void **)&a) && a->Header.AceType == ACCESS_ALLOWED_ACE_TYPE &&
            !(a->Header.AceFlags & INHERIT_ONLY_ACE) && (a->Mask & mask) == mask &&
            EqualSid((PSID)&a->SidStart, sid))
            return 1;
    }
    return 0;
}

DWORD cert_key_allow_read(PCCERT_CONTEXT cert, PSID sid)
{
    HCRYPTPROV prov;
    DWORD rc = open_key_container(cert, &prov, NULL, 0);
    if (rc != ERROR_SUCCESS)
        return rc;
    BYTE *buf = NULL;
    PACL old = NULL, fresh = NULL;
    BOOL present = FALSE, def;
    rc = key_sd_get(prov, &buf);
    if (rc == ERROR_SUCCESS && !GetSecurityDescriptorDacl(buf, &present, &old, &def))
        rc = GetLastError();
    /* No DACL at all lets everyone use the key: nothing to add. */
    if (rc != ERROR_SUCCESS || !present || !old || dacl_allows(old, sid, GENERIC_READ))
        goto done;
    /* The old ACEs with ours before the first inherited one: explicit
     * entries come first in a canonical DACL. */
    DWORD size = old->AclSize + (DWORD)offsetof(ACCESS_ALLOWED_ACE, SidStart) + GetLengthSid(sid);
    fresh = LocalAlloc(LPTR, size);
    if (!fresh || !InitializeAcl(fresh, size, ACL_REVISION)) {
        rc = fresh ? GetLastError() : ERROR_NOT_ENOUGH_MEMORY;
        goto done;
    }
    int added = 0;
    for (DWORD i = 0; i <= old->AceCount; i++) {
        ACE_HEADER *h = NULL;
        if (i < old->AceCount && !GetAce(old, i, (void **)&h)) {
            rc = GetLastError();
            goto done;
        }
        if (!added && (!h || (h->AceFlags & INHERITED_ACE))) {
            if (!AddAccessAllowedAce(fresh, ACL_REVISION, GENERIC_READ, sid)) {
                rc = GetLastError();
                goto done;
            }
            added = 1;
        }
        if (h && !AddAce(fresh, ACL_REVISION, MAXDWORD, h, h->AceSize)) {
            rc = GetLastError();
            goto done;
        }
    }
    SECURITY_DESCRIPTOR sd;
    SECURITY_DESCRIPTOR_CONTROL ctl = 0;
    DWORD rev;
    GetSecurityDescriptorControl(buf, &ctl, &rev);
    if (!InitializeSecurityDescriptor(&sd, SECURITY_DESCRIPTOR_REVISION) ||
        !SetSecurityDescriptorDacl(&sd, TRUE, fresh, FALSE) ||
        !SetSecurityDescriptorControl(&sd, SE_DACL_PROTECTED, ctl & SE_DACL_PROTECTED) ||
        !CryptSetProvParam(prov, PP_KEYSET_SEC_DESCR, (const BYTE *)&sd, DACL_SECURITY_INFORMATION))
        rc = last_error_or((DWORD)NTE_FAIL);
done:
    if (fresh)
        LocalFree(fresh);
    free(buf);
    CryptReleaseContext(prov, 0);
    return rc;
}
