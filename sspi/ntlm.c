/* ntlm.c - NTLM contexts over SSPI: AcceptSecurityContext for AUTH NTLM
 * received, InitializeSecurityContext for AUTH NTLM sent.
 *
 * Never does I/O, never logs, never keeps a password: the credentials handle
 * holds what AcquireCredentialsHandleW copied. Requests no integrity or
 * confidentiality (DESIGN.md: NTLM is for authentication only here).
 */
#include "ntlm.h"

#include <stdlib.h>
#include <string.h>

#define NTLM_PACKAGE      L"NTLM"
#define NTLM_TOKEN_FALLBACK 4096u  /* if the package cannot tell its cbMaxToken */
#define NTLM_TOKEN_LIMIT  65536u   /* no NTLM message is longer (16-bit fields) */
#define NTLM_TARGET_MAX   512u     /* SPN length, characters with the NUL */

/* NTSTATUS values AcceptSecurityContext may pass through for a refused
 * logon (ntstatus.h is not included beside windows.h). */
#define ST_NO_SUCH_USER        ((SECURITY_STATUS)0xC0000064L)
#define ST_WRONG_PASSWORD      ((SECURITY_STATUS)0xC000006AL)
#define ST_LOGON_FAILURE       ((SECURITY_STATUS)0xC000006DL)
#define ST_ACCOUNT_RESTRICTION ((SECURITY_STATUS)0xC000006EL)
#define ST_INVALID_LOGON_HOURS ((SECURITY_STATUS)0xC000006FL)
#define ST_INVALID_WORKSTATION ((SECURITY_STATUS)0xC0000070L)
#define ST_PASSWORD_EXPIRED    ((SECURITY_STATUS)0xC0000071L)
#define ST_ACCOUNT_DISABLED    ((SECURITY_STATUS)0xC0000072L)
#define ST_ACCOUNT_EXPIRED     ((SECURITY_STATUS)0xC0000193L)
#define ST_PASSWORD_MUST_CHANGE ((SECURITY_STATUS)0xC0000224L)
#define ST_ACCOUNT_LOCKED_OUT  ((SECURITY_STATUS)0xC0000234L)

enum role { ROLE_SERVER, ROLE_CLIENT };

struct ntlm {
    enum role role;
    CredHandle cred;
    CtxtHandle ctx;
    int have_ctx;
    int finished;                /* DONE, DENIED or FAILED was returned */
    unsigned char *out;          /* cbMaxToken bytes */
    size_t out_cap, out_len;
    char user[NTLM_USER_MAX];
    wchar_t target[NTLM_TARGET_MAX]; /* client: the SPN, or empty */
    enum ntlm_name_source source;
    struct ntlm_info info;
};

static void ntlm_zero(struct ntlm *n)
{
    memset(n, 0, sizeof *n);
    SecInvalidateHandle(&n->cred);
    SecInvalidateHandle(&n->ctx);
}

static SECURITY_STATUS ntlm_alloc(struct ntlm **out, enum role role)
{
    struct ntlm *n = malloc(sizeof *n);
    if (!n)
        return SEC_E_INSUFFICIENT_MEMORY;
    ntlm_zero(n);
    n->role = role;

    PSecPkgInfoW pi = NULL;
    SECURITY_STATUS st = QuerySecurityPackageInfoW(NTLM_PACKAGE, &pi);
    if (st != SEC_E_OK) {
        free(n);
        return st;
    }
    n->out_cap = pi->cbMaxToken ? pi->cbMaxToken : NTLM_TOKEN_FALLBACK;
    if (n->out_cap > NTLM_TOKEN_LIMIT)
        n->out_cap = NTLM_TOKEN_LIMIT;
    FreeContextBuffer(pi);
    n->out = malloc(n->out_cap);
    if (!n->out) {
        free(n);
        return SEC_E_INSUFFICIENT_MEMORY;
    }
    *out = n;
    return SEC_E_OK;
}

SECURITY_STATUS ntlm_server_new(struct ntlm **out)
{
    if (!out)
        return SEC_E_INVALID_PARAMETER;
    *out = NULL;
    struct ntlm *n;
    SECURITY_STATUS st = ntlm_alloc(&n, ROLE_SERVER);
    if (st != SEC_E_OK)
        return st;
    TimeStamp expiry;
    st = AcquireCredentialsHandleW(NULL, NTLM_PACKAGE, SECPKG_CRED_INBOUND, NULL, NULL,
                                   NULL, NULL, &n->cred, &expiry);
    if (st != SEC_E_OK) {
        SecInvalidateHandle(&n->cred);
        ntlm_free(n);
        return st;
    }
    *out = n;
    return SEC_E_OK;
}

SECURITY_STATUS ntlm_client_new(struct ntlm **out, const wchar_t *domain, const wchar_t *user,
                                const wchar_t *password, const wchar_t *target)
{
    if (!out)
        return SEC_E_INVALID_PARAMETER;
    *out = NULL;
    struct ntlm *n;
    SECURITY_STATUS st = ntlm_alloc(&n, ROLE_CLIENT);
    if (st != SEC_E_OK)
        return st;

    SEC_WINNT_AUTH_IDENTITY_W id;
    void *auth = NULL;
    if (user) {
        memset(&id, 0, sizeof id);
        id.User = (unsigned short *)user;
        id.UserLength = (unsigned long)wcslen(user);
        id.Domain = (unsigned short *)(domain ? domain : L"");
        id.DomainLength = domain ? (unsigned long)wcslen(domain) : 0;
        id.Password = (unsigned short *)(password ? password : L"");
        id.PasswordLength = password ? (unsigned long)wcslen(password) : 0;
        id.Flags = SEC_WINNT_AUTH_IDENTITY_UNICODE;
        auth = &id;
    }
    TimeStamp expiry;
    st = AcquireCredentialsHandleW(NULL, NTLM_PACKAGE, SECPKG_CRED_OUTBOUND, NULL, auth,
                                   NULL, NULL, &n->cred, &expiry);
    if (st != SEC_E_OK) {
        SecInvalidateHandle(&n->cred);
        ntlm_free(n);
        return st;
    }
    if (target) {
        size_t tl = wcslen(target);
        if (tl >= NTLM_TARGET_MAX) {
            ntlm_free(n);
            return SEC_E_INVALID_PARAMETER;
        }
        memcpy(n->target, target, (tl + 1) * sizeof(wchar_t));
    }
    *out = n;
    return SEC_E_OK;
}

int ntlm_status_is_denial(SECURITY_STATUS st)
{
    switch (st) {
    case SEC_E_LOGON_DENIED:
    case ST_NO_SUCH_USER:
    case ST_WRONG_PASSWORD:
    case ST_LOGON_FAILURE:
    case ST_ACCOUNT_RESTRICTION:
    case ST_INVALID_LOGON_HOURS:
    case ST_INVALID_WORKSTATION:
    case ST_PASSWORD_EXPIRED:
    case ST_ACCOUNT_DISABLED:
    case ST_ACCOUNT_EXPIRED:
    case ST_PASSWORD_MUST_CHANGE:
    case ST_ACCOUNT_LOCKED_OUT:
        return 1;
    default:
        return 0;
    }
}

/* Wide name to UTF-8 in out, refusing control characters: it may be put
 * into a header line. */
static int name_to_utf8(const wchar_t *w, char *out, size_t cap)
{
    for (const wchar_t *p = w; *p; p++)
        if (*p < 0x20 || (*p >= 0x7F && *p < 0xA0))
            return 0;
    int k = WideCharToMultiByte(CP_UTF8, 0, w, -1, out, (int)cap, NULL, NULL);
    if (k <= 1) {
        out[0] = '\0';
        return 0;
    }
    return 1;
}

/* "dom\name" (or "name" when dom is empty) into out; 0 if it does not fit. */
static int join_names(const wchar_t *dom, const wchar_t *name, wchar_t *out, size_t cap)
{
    size_t dl = wcslen(dom), nl = wcslen(name);
    size_t need = (dl ? dl + 1 : 0) + nl + 1;
    if (need > cap)
        return 0;
    size_t k = 0;
    if (dl) {
        memcpy(out, dom, dl * sizeof *out);
        out[dl] = L'\\';
        k = dl + 1;
    }
    memcpy(out + k, name, (nl + 1) * sizeof *out);
    return 1;
}

/* The user the context authenticated, from the first source that answers. */
static void server_name_user(struct ntlm *n, const unsigned char *auth, size_t auth_len)
{
    SecPkgContext_NamesW names = { 0 };
    n->info.names_status = QueryContextAttributesW(&n->ctx, SECPKG_ATTR_NAMES, &names);
    if (n->info.names_status == SEC_E_OK && names.sUserName) {
        int ok = name_to_utf8(names.sUserName, n->user, sizeof n->user);
        FreeContextBuffer(names.sUserName);
        if (ok) {
            n->source = NTLM_NAME_CONTEXT;
            return;
        }
    }

    HANDLE tok = NULL;
    n->info.token_status = QuerySecurityContextToken(&n->ctx, &tok);
    if (n->info.token_status == SEC_E_OK) {
        union { TOKEN_USER tu; unsigned char buf[256]; } tu;
        DWORD got = 0;
        wchar_t name[NTLMMSG_NAME_MAX + 1], dom[NTLMMSG_NAME_MAX + 1];
        wchar_t both[2 * NTLMMSG_NAME_MAX + 2];
        DWORD nl = NTLMMSG_NAME_MAX + 1, dl = NTLMMSG_NAME_MAX + 1;
        SID_NAME_USE use;
        if (GetTokenInformation(tok, TokenUser, &tu, sizeof tu, &got) &&
            LookupAccountSidW(NULL, tu.tu.User.Sid, name, &nl, dom, &dl, &use)) {
            if (join_names(dom, name, both, ARRAYSIZE(both)) &&
                name_to_utf8(both, n->user, sizeof n->user)) {
                CloseHandle(tok);
                n->source = NTLM_NAME_TOKEN;
                return;
            }
        }
        CloseHandle(tok);
    }

    /* The platform cannot say (Wine): the message the context has accepted
     * carries the names. OEM names beyond ASCII are converted here, where the
     * OEM code page is known. */
    if (ntlmmsg_auth_user(auth, auth_len, n->info.challenge_flags, n->user, sizeof n->user) ==
        NTLMMSG_OK) {
        n->source = NTLM_NAME_MESSAGE;
        return;
    }
    struct ntlmmsg_auth a;
    if (ntlmmsg_parse_auth(auth, auth_len, n->info.challenge_flags, &a) == NTLMMSG_OK &&
        !a.unicode && a.user.len && a.user.len <= NTLMMSG_NAME_MAX &&
        a.domain.len <= NTLMMSG_NAME_MAX) {
        wchar_t dom[NTLMMSG_NAME_MAX + 1], name[NTLMMSG_NAME_MAX + 1];
        wchar_t both[2 * NTLMMSG_NAME_MAX + 2];
        int dk = a.domain.len ? MultiByteToWideChar(CP_OEMCP, 0, (const char *)auth + a.domain.offset,
                                                    a.domain.len, dom, NTLMMSG_NAME_MAX) : 0;
        int uk = MultiByteToWideChar(CP_OEMCP, 0, (const char *)auth + a.user.offset, a.user.len,
                                     name, NTLMMSG_NAME_MAX);
        if (uk > 0 && (dk > 0 || a.domain.len == 0)) {
            dom[dk] = 0;
            name[uk] = 0;
            if (join_names(dom, name, both, ARRAYSIZE(both)) &&
                name_to_utf8(both, n->user, sizeof n->user)) {
                n->source = NTLM_NAME_MESSAGE;
                return;
            }
        }
    }
    n->user[0] = '\0';
    n->source = NTLM_NAME_NONE;
}

/* Key size as SSPI reports it (both attributes: platforms differ). */
static void record_keys(struct ntlm *n)
{
    SecPkgContext_SessionKey sk = { 0 };
    n->info.session_key_status = QueryContextAttributesW(&n->ctx, SECPKG_ATTR_SESSION_KEY, &sk);
    if (n->info.session_key_status == SEC_E_OK) {
        n->info.session_key_bits = sk.SessionKeyLength * 8ul;
        if (sk.SessionKey) {
            SecureZeroMemory(sk.SessionKey, sk.SessionKeyLength);
            FreeContextBuffer(sk.SessionKey);
        }
    }
    SecPkgContext_KeyInfoW ki = { 0 };
    n->info.key_info_status = QueryContextAttributesW(&n->ctx, SECPKG_ATTR_KEY_INFO, &ki);
    if (n->info.key_info_status == SEC_E_OK) {
        n->info.key_info_bits = ki.KeySize;
        n->info.sig_alg = ki.SignatureAlgorithm;
        n->info.enc_alg = ki.EncryptAlgorithm;
        if (ki.sSignatureAlgorithmName)
            FreeContextBuffer(ki.sSignatureAlgorithmName);
        if (ki.sEncryptAlgorithmName)
            FreeContextBuffer(ki.sEncryptAlgorithmName);
    }
}

/* The AUTHENTICATE message's flags and response kind, into info. */
static void record_auth(struct ntlm *n, const unsigned char *msg, size_t len)
{
    struct ntlmmsg_auth a;
    if (ntlmmsg_parse_auth(msg, len, n->info.challenge_flags, &a) == NTLMMSG_OK) {
        n->info.auth_flags = a.flags;
        n->info.flag_key_bits = ntlmmsg_key_bits(a.flags);
        n->info.response = a.response;
    }
}

static enum ntlm_result finish(struct ntlm *n, SECURITY_STATUS st)
{
    n->finished = 1;
    return ntlm_status_is_denial(st) ? NTLM_DENIED : NTLM_FAILED;
}

/* What both directions do with an SSPI step's answer: complete the token
 * when asked, then keep the context, its attributes and the output token.
 * Returns the step's status; on a failure *result is already set. */
static SECURITY_STATUS settle_step(struct ntlm *n, SECURITY_STATUS st, SecBufferDesc *od,
                                   ULONG attr, enum ntlm_result *result)
{
    if (st == SEC_I_COMPLETE_NEEDED || st == SEC_I_COMPLETE_AND_CONTINUE) {
        SECURITY_STATUS cs = CompleteAuthToken(&n->ctx, od);
        if (cs != SEC_E_OK) {
            n->have_ctx = 1;
            *result = finish(n, cs);
            return cs;
        }
        st = st == SEC_I_COMPLETE_NEEDED ? SEC_E_OK : SEC_I_CONTINUE_NEEDED;
    }
    if (st != SEC_E_OK && st != SEC_I_CONTINUE_NEEDED) {
        *result = finish(n, st);
        return st;
    }
    n->have_ctx = 1;
    n->info.attributes = attr;
    n->out_len = od->pBuffers[0].cbBuffer;
    return st;
}

static SECURITY_STATUS server_step(struct ntlm *n, const unsigned char *in, size_t in_len,
                                   enum ntlm_result *result)
{
    SecBuffer ib = { (unsigned long)in_len, SECBUFFER_TOKEN, (void *)in };
    SecBufferDesc id = { SECBUFFER_VERSION, 1, &ib };
    SecBuffer ob = { (unsigned long)n->out_cap, SECBUFFER_TOKEN, n->out };
    SecBufferDesc od = { SECBUFFER_VERSION, 1, &ob };
    ULONG attr = 0;
    TimeStamp expiry;

    SECURITY_STATUS st = AcceptSecurityContext(&n->cred, n->have_ctx ? &n->ctx : NULL, &id,
                                               0, SECURITY_NATIVE_DREP, &n->ctx, &od, &attr,
                                               &expiry);
    st = settle_step(n, st, &od, attr, result);
    if (st != SEC_E_OK && st != SEC_I_CONTINUE_NEEDED)
        return st;

    if (st == SEC_I_CONTINUE_NEEDED) {
        uint32_t f;
        if (ntlmmsg_flags(n->out, n->out_len, &f) == NTLMMSG_OK)
            n->info.challenge_flags = f;
        *result = NTLM_CONTINUE;
        return st;
    }

    n->finished = 1;
    record_auth(n, in, in_len);
    record_keys(n);
    server_name_user(n, in, in_len);
    if (n->info.response == NTLMMSG_RESP_ANONYMOUS || n->source == NTLM_NAME_NONE) {
        /* An anonymous logon authenticates nobody; a user no source can name
         * cannot be recorded, so it is not accepted either. */
        n->user[0] = '\0';
        *result = NTLM_DENIED;
        return SEC_E_LOGON_DENIED;
    }
    *result = NTLM_DONE;
    return st;
}

static SECURITY_STATUS client_step(struct ntlm *n, const unsigned char *in, size_t in_len,
                                   enum ntlm_result *result)
{
    SecBuffer ib = { (unsigned long)in_len, SECBUFFER_TOKEN, (void *)in };
    SecBufferDesc id = { SECBUFFER_VERSION, 1, &ib };
    SecBuffer ob = { (unsigned long)n->out_cap, SECBUFFER_TOKEN, n->out };
    SecBufferDesc od = { SECBUFFER_VERSION, 1, &ob };
    ULONG attr = 0;
    TimeStamp expiry;
    SEC_WCHAR *target = n->target[0] ? (SEC_WCHAR *)n->target : NULL;

    if (in_len) {
        uint32_t f;
        if (ntlmmsg_flags(in, in_len, &f) == NTLMMSG_OK)
            n->info.challenge_flags = f;
    }
    SECURITY_STATUS st = InitializeSecurityContextW(&n->cred, n->have_ctx ? &n->ctx : NULL,
                                                    target, 0, 0, SECURITY_NATIVE_DREP,
                                                    in_len ? &id : NULL, 0, &n->ctx, &od, &attr,
                                                    &expiry);
    st = settle_step(n, st, &od, attr, result);
    if (st != SEC_E_OK && st != SEC_I_CONTINUE_NEEDED)
        return st;
    if (st == SEC_I_CONTINUE_NEEDED) {
        *result = NTLM_CONTINUE;
        return st;
    }
    n->finished = 1;
    record_auth(n, n->out, n->out_len);
    record_keys(n);
    *result = NTLM_DONE;
    return st;
}

SECURITY_STATUS ntlm_step(struct ntlm *n, const unsigned char *in, size_t in_len,
                          enum ntlm_result *result)
{
    enum ntlm_result dummy;
    if (!result)
        result = &dummy;
    *result = NTLM_FAILED;
    if (!n || (in_len && !in))
        return SEC_E_INVALID_PARAMETER;
    if (n->finished)
        return SEC_E_OUT_OF_SEQUENCE;
    n->out_len = 0;
    if (in_len > NTLM_TOKEN_LIMIT) {
        n->finished = 1;
        return SEC_E_INVALID_TOKEN;
    }
    if (n->role == ROLE_SERVER) {
        if (in_len == 0) {
            n->finished = 1;
            return SEC_E_INVALID_TOKEN;
        }
        return server_step(n, in, in_len, result);
    }
    if (n->have_ctx && in_len == 0) {
        n->finished = 1;
        return SEC_E_INVALID_TOKEN;   /* the CHALLENGE is missing */
    }
    return client_step(n, in, in_len, result);
}

const unsigned char *ntlm_token(const struct ntlm *n, size_t *len)
{
    if (len)
        *len = n ? n->out_len : 0;
    return n ? n->out : NULL;
}

const char *ntlm_user(const struct ntlm *n)
{
    return n && n->role == ROLE_SERVER ? n->user : "";
}

enum ntlm_name_source ntlm_user_source(const struct ntlm *n)
{
    return n ? n->source : NTLM_NAME_NONE;
}

const struct ntlm_info *ntlm_info(const struct ntlm *n)
{
    return n ? &n->info : NULL;
}

const char *ntlm_result_name(enum ntlm_result r)
{
    switch (r) {
    case NTLM_CONTINUE: return "continue";
    case NTLM_DONE: return "done";
    case NTLM_DENIED: return "denied";
    case NTLM_FAILED: return "failed";
    }
    return "?";
}

const char *ntlm_source_name(enum ntlm_name_source s)
{
    switch (s) {
    case NTLM_NAME_NONE: return "none";
    case NTLM_NAME_CONTEXT: return "context attribute";
    case NTLM_NAME_TOKEN: return "context token";
    case NTLM_NAME_MESSAGE: return "AUTHENTICATE message";
    }
    return "?";
}

void ntlm_free(struct ntlm *n)
{
    if (!n)
        return;
    if (n->have_ctx)
        DeleteSecurityContext(&n->ctx);
    if (SecIsValidHandle(&n->cred))
        FreeCredentialsHandle(&n->cred);
    free(n->out);
    SecureZeroMemory(n, sizeof *n);
    free(n);
}
