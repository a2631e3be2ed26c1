/* acl.c - the service SID, the data folders' DACLs, and `imsvc acl` (see
 * acl.h).
 *
 * Rights are built here and nowhere else, from named masks, so that what
 * install sets, what a start checks and what `imsvc acl check` compares are
 * the same bytes. Nothing here widens a right beyond the table in
 * docs/service-account.md, and nothing here changes an owner.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>
#include <windows.h>
#include <aclapi.h>
#include <sddl.h>
#include <shlobj.h>
#include <wincrypt.h>

#include "acl.h"
#include "cert.h"
#include "config.h"
#include "location.h"
#include "service.h"
#include "spool.h"

#define ACL_INHERIT      (OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE)
#define ACL_FILES_ONLY   (OBJECT_INHERIT_ACE | INHERIT_ONLY_ACE)
/* PickupWriters on Pickup itself: add a file, nothing more. No listing, so
 * one application does not learn what another dropped; CREATOR OWNER (below)
 * lets each writer finish, rename or withdraw the files it made. */
#define ACL_PICKUP_ADD   (FILE_ADD_FILE | FILE_TRAVERSE | FILE_READ_ATTRIBUTES | \
                          READ_CONTROL | SYNCHRONIZE)
/* DropReaders: list and read everything in Drop, and take files away. */
#define ACL_DROP_READ    (FILE_GENERIC_READ | FILE_GENERIC_EXECUTE)
#define ACL_DROP_TAKE    DELETE
#define ACL_MAX_ACES     8
#define ACL_DATA_FOLDERS 16

/* SIDs ------------------------------------------------------------------ */

DWORD acl_service_sid(const wchar_t *service_name, BYTE sid[SECURITY_MAX_SID_SIZE])
{
    wchar_t upper[257];
    size_t len = wcslen(service_name);
    if (len == 0 || len >= ARRAYSIZE(upper))
        return ERROR_INVALID_PARAMETER;
    wmemcpy(upper, service_name, len + 1);
    CharUpperBuffW(upper, (DWORD)len);
    BYTE digest[20];
    DWORD n = sizeof digest, rc = ERROR_SUCCESS;
    HCRYPTPROV prov = 0;
    HCRYPTHASH hash = 0;
    if (!CryptAcquireContextW(&prov, NULL, NULL, PROV_RSA_AES, CRYPT_VERIFYCONTEXT) ||
        !CryptCreateHash(prov, CALG_SHA1, 0, 0, &hash) ||
        !CryptHashData(hash, (const BYTE *)upper, (DWORD)(len * sizeof(wchar_t)), 0) ||
        !CryptGetHashParam(hash, HP_HASHVAL, digest, &n, 0) || n != sizeof digest)
        rc = GetLastError() ? GetLastError() : (DWORD)NTE_FAIL;
    if (hash)
        CryptDestroyHash(hash);
    if (prov)
        CryptReleaseContext(prov, 0);
    if (rc != ERROR_SUCCESS)
        return rc;
    SID_IDENTIFIER_AUTHORITY nt = SECURITY_NT_AUTHORITY;
    if (!InitializeSid((PSID)sid, &nt, 6))
        return GetLastError();
    *GetSidSubAuthority((PSID)sid, 0) = SECURITY_SERVICE_ID_BASE_RID;  /* 80 */
    for (int i = 0; i < 5; i++) {
        const BYTE *d = digest + 4 * i;
        *GetSidSubAuthority((PSID)sid, (DWORD)i + 1) =
            (DWORD)d[0] | (DWORD)d[1] << 8 | (DWORD)d[2] << 16 | (DWORD)d[3] << 24;
    }
    return ERROR_SUCCESS;
}

DWORD acl_account_sid(const wchar_t *name, BYTE sid[SECURITY_MAX_SID_SIZE])
{
    if (!name || !name[0])
        return ERROR_INVALID_PARAMETER;
    if ((name[0] == L'S' || name[0] == L's') && name[1] == L'-') {
        PSID tmp;
        if (!ConvertStringSidToSidW(name, &tmp))
            return GetLastError();
        DWORD len = GetLengthSid(tmp);
        DWORD rc = len <= SECURITY_MAX_SID_SIZE && CopySid(SECURITY_MAX_SID_SIZE, sid, tmp)
                   ? ERROR_SUCCESS : ERROR_INVALID_SID;
        LocalFree(tmp);
        return rc;
    }
    DWORD n = SECURITY_MAX_SID_SIZE, dn = 256;
    wchar_t domain[256];
    SID_NAME_USE use;
    if (!LookupAccountNameW(NULL, name, sid, &n, domain, &dn, &use))
        return GetLastError();
    return ERROR_SUCCESS;
}

static DWORD well_known(WELL_KNOWN_SID_TYPE type, BYTE sid[SECURITY_MAX_SID_SIZE])
{
    DWORD n = SECURITY_MAX_SID_SIZE;
    return CreateWellKnownSid(type, NULL, sid, &n) ? ERROR_SUCCESS : GetLastError();
}

/* DACLs ----------------------------------------------------------------- */

struct ace_spec {
    PSID sid;
    DWORD mask;
    BYTE flags;
};

static DWORD dacl_build(const struct ace_spec *aces, size_t n, PACL *out)
{
    *out = NULL;
    DWORD size = sizeof(ACL);
    for (size_t i = 0; i < n; i++)
        size += offsetof(ACCESS_ALLOWED_ACE, SidStart) + GetLengthSid(aces[i].sid);
    PACL acl = LocalAlloc(LPTR, size);
    if (!acl)
        return ERROR_NOT_ENOUGH_MEMORY;
    if (!InitializeAcl(acl, size, ACL_REVISION)) {
        DWORD rc = GetLastError();
        LocalFree(acl);
        return rc;
    }
    for (size_t i = 0; i < n; i++)
        if (!AddAccessAllowedAceEx(acl, ACL_REVISION, aces[i].flags, aces[i].mask, aces[i].sid)) {
            DWORD rc = GetLastError();
            LocalFree(acl);
            return rc;
        }
    *out = acl;
    return ERROR_SUCCESS;
}

/* The SIDs every DACL here starts with: SYSTEM, Administrators, the service. */
static DWORD base_aces(BYTE sys[SECURITY_MAX_SID_SIZE], BYTE adm[SECURITY_MAX_SID_SIZE],
                       BYTE svc[SECURITY_MAX_SID_SIZE])
{
    DWORD rc = well_known(WinLocalSystemSid, sys);
    if (!rc)
        rc = well_known(WinBuiltinAdministratorsSid, adm);
    if (!rc)
        rc = acl_service_sid(IMSVC_SERVICE_NAME, svc);
    return rc;
}

DWORD acl_folder_dacl(enum acl_folder_kind kind, PSID extra, PACL *out)
{
    BYTE sys[SECURITY_MAX_SID_SIZE], adm[SECURITY_MAX_SID_SIZE], svc[SECURITY_MAX_SID_SIZE];
    BYTE owner[SECURITY_MAX_SID_SIZE];
    *out = NULL;
    DWORD rc = base_aces(sys, adm, svc);
    if (!rc)
        rc = well_known(WinCreatorOwnerSid, owner);
    if (rc)
        return rc;
    struct ace_spec aces[ACL_MAX_ACES];
    size_t n = 0;
    aces[n++] = (struct ace_spec){ sys, FILE_ALL_ACCESS, ACL_INHERIT };
    aces[n++] = (struct ace_spec){ adm, FILE_ALL_ACCESS, ACL_INHERIT };
    aces[n++] = (struct ace_spec){ svc, FILE_ALL_ACCESS, ACL_INHERIT };
    if (extra && kind == ACL_FOLDER_PICKUP) {
        aces[n++] = (struct ace_spec){ extra, ACL_PICKUP_ADD, 0 };
        aces[n++] = (struct ace_spec){ owner, FILE_ALL_ACCESS, ACL_FILES_ONLY };
    } else if (extra && kind == ACL_FOLDER_DROP) {
        aces[n++] = (struct ace_spec){ extra, ACL_DROP_READ, ACL_INHERIT };
        aces[n++] = (struct ace_spec){ extra, ACL_DROP_TAKE, ACL_FILES_ONLY };
    }
    return dacl_build(aces, n, out);
}

DWORD acl_secure_key(HKEY key)
{
    BYTE sys[SECURITY_MAX_SID_SIZE], adm[SECURITY_MAX_SID_SIZE], svc[SECURITY_MAX_SID_SIZE];
    DWORD rc = base_aces(sys, adm, svc);
    if (rc)
        return rc;
    struct ace_spec aces[] = {
        { sys, KEY_ALL_ACCESS, CONTAINER_INHERIT_ACE },
        { adm, KEY_ALL_ACCESS, CONTAINER_INHERIT_ACE },
        { svc, KEY_READ, CONTAINER_INHERIT_ACE },
    };
    PACL dacl;
    if ((rc = dacl_build(aces, ARRAYSIZE(aces), &dacl)) != ERROR_SUCCESS)
        return rc;
    SECURITY_DESCRIPTOR sd;
    if (!InitializeSecurityDescriptor(&sd, SECURITY_DESCRIPTOR_REVISION) ||
        !SetSecurityDescriptorDacl(&sd, TRUE, dacl, FALSE) ||
        !SetSecurityDescriptorControl(&sd, SE_DACL_PROTECTED, SE_DACL_PROTECTED))
        rc = GetLastError();
    else
        rc = (DWORD)RegSetKeySecurity(key, DACL_SECURITY_INFORMATION |
                                      PROTECTED_DACL_SECURITY_INFORMATION, &sd);
    LocalFree(dacl);
    return rc;
}

/* Do two DACLs hold the same ACEs, in the same order? */
static int dacl_same(const ACL *a, const ACL *b)
{
    if (!a || !b)
        return a == b;
    if (a->AceCount != b->AceCount)
        return 0;
    for (DWORD i = 0; i < a->AceCount; i++) {
        ACE_HEADER *x, *y;
        if (!GetAce((PACL)a, i, (void **)&x) || !GetAce((PACL)b, i, (void **)&y))
            return 0;
        if (x->AceSize != y->AceSize || memcmp(x, y, x->AceSize) != 0)
            return 0;
    }
    return 1;
}

static int sd_protected(PSECURITY_DESCRIPTOR sd)
{
    SECURITY_DESCRIPTOR_CONTROL c = 0;
    DWORD rev;
    return GetSecurityDescriptorControl(sd, &c, &rev) && (c & SE_DACL_PROTECTED);
}

/* Does path have exactly this protected DACL? 1, 0, or -1 with *err. */
static int folder_has(const wchar_t *path, const ACL *want, DWORD *err)
{
    PACL have = NULL;
    PSECURITY_DESCRIPTOR sd = NULL;
    *err = GetNamedSecurityInfoW(path, SE_FILE_OBJECT, DACL_SECURITY_INFORMATION, NULL, NULL,
                                 &have, NULL, &sd);
    if (*err != ERROR_SUCCESS)
        return -1;
    int same = sd_protected(sd) && dacl_same(have, want);
    LocalFree(sd);
    return same;
}

/* The data folders ------------------------------------------------------ */

struct folder {
    wchar_t path[MAX_PATH];
    enum acl_folder_kind kind;
};

/* Parents before children. */
static size_t data_folders(const struct imsvc_config *cfg, struct folder *f, size_t max)
{
    size_t n = 0;
    wchar_t queue[MAX_PATH];
    config_queue_dir(cfg, queue, MAX_PATH);
    _snwprintf(f[n].path, MAX_PATH, L"%ls", cfg->data_dir);
    f[n++].kind = ACL_FOLDER_PLAIN;
    _snwprintf(f[n].path, MAX_PATH, L"%ls", queue);
    f[n++].kind = ACL_FOLDER_PLAIN;
    for (size_t i = 0; spool_subfolders[i] && n + 3 < max; i++) {
        _snwprintf(f[n].path, MAX_PATH, L"%ls\\%ls", queue, spool_subfolders[i]);
        f[n++].kind = ACL_FOLDER_PLAIN;
    }
    config_drop_dir(cfg, f[n].path, MAX_PATH);
    f[n++].kind = ACL_FOLDER_DROP;
    config_pickup_dir(cfg, f[n].path, MAX_PATH);
    f[n++].kind = ACL_FOLDER_PICKUP;
    config_badmail_dir(cfg, f[n].path, MAX_PATH);
    f[n++].kind = ACL_FOLDER_PLAIN;
    for (size_t i = 0; i < n; i++)
        f[i].path[MAX_PATH - 1] = 0;
    return n;
}

static void result_fail(struct acl_result *r, DWORD err, DWORD location, const wchar_t *fmt,
                        const wchar_t *arg)
{
    if (r->error != ERROR_SUCCESS)
        return;
    r->error = err;
    r->error_location = location;
    _snwprintf(r->error_what, ARRAYSIZE(r->error_what), fmt, arg);
    r->error_what[ARRAYSIZE(r->error_what) - 1] = 0;
}

/* PickupWriters or DropReaders: the SID into buf, or NULL (none, or a name
 * that does not resolve: reported, and the folder stays closed to it). */
static PSID extra_sid(const wchar_t *value_name, const wchar_t *account, BYTE *buf,
                      struct acl_result *r)
{
    if (!account[0])
        return NULL;
    DWORD rc = acl_account_sid(account, buf);
    if (rc == ERROR_SUCCESS)
        return buf;
    wchar_t what[400];
    _snwprintf(what, ARRAYSIZE(what), L"the %ls account '%ls' was not found; its folder is "
               L"left to administrators and the service", value_name, account);
    what[ARRAYSIZE(what) - 1] = 0;
    result_fail(r, rc, LOC_CFG_ACCOUNT, L"%ls", what);
    return NULL;
}

DWORD acl_secure_data(const struct imsvc_config *cfg, struct acl_result *r)
{
    memset(r, 0, sizeof *r);
    BYTE writers[SECURITY_MAX_SID_SIZE], readers[SECURITY_MAX_SID_SIZE];
    PSID w = extra_sid(L"PickupWriters", cfg->pickup_writers, writers, r);
    PSID rd = extra_sid(L"DropReaders", cfg->drop_readers, readers, r);
    struct folder folders[ACL_DATA_FOLDERS];
    size_t n = data_folders(cfg, folders, ARRAYSIZE(folders));
    for (size_t i = 0; i < n; i++) {
        const wchar_t *path = folders[i].path;
        PACL dacl;
        DWORD rc = acl_folder_dacl(folders[i].kind, folders[i].kind == ACL_FOLDER_PICKUP ? w :
                                   folders[i].kind == ACL_FOLDER_DROP ? rd : NULL, &dacl);
        if (rc != ERROR_SUCCESS) {
            result_fail(r, rc, LOC_CFG_FOLDER_ACL, L"cannot build the access rights for %ls", path);
            continue;
        }
        r->folders++;
        /* A folder made now has its DACL from the start: nothing is ever
         * in it under the rights it would inherit. */
        SECURITY_DESCRIPTOR sd;
        InitializeSecurityDescriptor(&sd, SECURITY_DESCRIPTOR_REVISION);
        SetSecurityDescriptorDacl(&sd, TRUE, dacl, FALSE);
        SetSecurityDescriptorControl(&sd, SE_DACL_PROTECTED, SE_DACL_PROTECTED);
        SECURITY_ATTRIBUTES sa = { sizeof sa, &sd, FALSE };
        if (i == 0) {
            int mk = SHCreateDirectoryExW(NULL, path, &sa);
            rc = (mk == ERROR_SUCCESS || mk == ERROR_ALREADY_EXISTS || mk == ERROR_FILE_EXISTS)
                 ? ERROR_SUCCESS : (DWORD)mk;
        } else {
            rc = CreateDirectoryW(path, &sa) || GetLastError() == ERROR_ALREADY_EXISTS
                 ? ERROR_SUCCESS : GetLastError();
        }
        if (rc != ERROR_SUCCESS) {
            result_fail(r, rc, LOC_CFG_FOLDER_ACL, L"cannot create the folder %ls", path);
            LocalFree(dacl);
            continue;
        }
        DWORD err;
        if (folder_has(path, dacl, &err) == 1) {
            LocalFree(dacl);
            continue;
        }
        /* Set only when different: on NTFS this also rewrites the inherited
         * rights of everything below, which a queue of many files pays for. */
        rc = SetNamedSecurityInfoW((wchar_t *)path, SE_FILE_OBJECT,
                                   DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
                                   NULL, NULL, dacl, NULL);
        if (rc != ERROR_SUCCESS) {
            result_fail(r, rc, LOC_CFG_FOLDER_ACL, L"cannot set the access rights of %ls", path);
        } else {
            r->changed++;
            if (folder_has(path, dacl, &err) != 1) {
                if (r->not_kept++ == 0)
                    _snwprintf(r->not_kept_first, MAX_PATH, L"%ls", path);
                r->not_kept_first[MAX_PATH - 1] = 0;
            }
        }
        LocalFree(dacl);
    }
    return r->error;
}

/* Printing -------------------------------------------------------------- */

static void sid_print(PSID sid, FILE *out)
{
    LPWSTR text = NULL;
    if (!ConvertSidToStringSidW(sid, &text)) {
        fprintf(out, "(bad SID)");
        return;
    }
    wchar_t name[256], domain[256];
    DWORD n = ARRAYSIZE(name), dn = ARRAYSIZE(domain);
    SID_NAME_USE use;
    BYTE svc[SECURITY_MAX_SID_SIZE];
    if (LookupAccountSidW(NULL, sid, name, &n, domain, &dn, &use))
        fprintf(out, "%ls %ls%ls%ls", text, domain, domain[0] ? L"\\" : L"", name);
    else if (acl_service_sid(IMSVC_SERVICE_NAME, svc) == ERROR_SUCCESS && EqualSid(sid, svc))
        fprintf(out, "%ls NT SERVICE\\%ls", text, IMSVC_SERVICE_NAME);
    else
        fprintf(out, "%ls", text);
    LocalFree(text);
}

static void flags_text(BYTE f, char *out, size_t n)
{
    static const struct { BYTE bit; const char *name; } names[] = {
        { OBJECT_INHERIT_ACE, "OI" }, { CONTAINER_INHERIT_ACE, "CI" },
        { INHERIT_ONLY_ACE, "IO" }, { NO_PROPAGATE_INHERIT_ACE, "NP" },
        { INHERITED_ACE, "ID" },
    };
    size_t used = 0;
    out[0] = 0;
    for (size_t i = 0; i < ARRAYSIZE(names); i++)
        if (f & names[i].bit) {
            int w = snprintf(out + used, n - used, "%s%s", used ? "|" : "", names[i].name);
            if (w < 0 || (size_t)w >= n - used)
                break;
            used += (size_t)w;
        }
    if (!used)
        snprintf(out, n, "-");
}

static const char *mask_name(DWORD m)
{
    switch (m) {
    case FILE_ALL_ACCESS: return "full control";
    case ACL_PICKUP_ADD: return "add files";
    case ACL_DROP_READ: return "read and list";
    case ACL_DROP_TAKE: return "delete";
    case FILE_GENERIC_READ | FILE_GENERIC_EXECUTE | FILE_GENERIC_WRITE | DELETE: return "modify";
    case KEY_ALL_ACCESS: return "full control (key)";
    case KEY_READ: return "read (key)";
    case GENERIC_ALL: return "generic all";
    case GENERIC_READ: return "generic read (use the key)";
    default: return "";
    }
}

static void dacl_print(const ACL *dacl, int present, FILE *out)
{
    if (!present || !dacl) {
        fprintf(out, "  no DACL: everyone has full access\n");
        return;
    }
    for (DWORD i = 0; i < dacl->AceCount; i++) {
        ACE_HEADER *h;
        if (!GetAce((PACL)dacl, i, (void **)&h))
            break;
        char flags[32];
        flags_text(h->AceFlags, flags, sizeof flags);
        if (h->AceType == ACCESS_ALLOWED_ACE_TYPE || h->AceType == ACCESS_DENIED_ACE_TYPE) {
            ACCESS_ALLOWED_ACE *a = (ACCESS_ALLOWED_ACE *)h;
            fprintf(out, "  %-5s %-8s 0x%08lX ", h->AceType == ACCESS_ALLOWED_ACE_TYPE ? "allow" : "deny",
                    flags, (unsigned long)a->Mask);
            sid_print((PSID)&a->SidStart, out);
            const char *mn = mask_name(a->Mask);
            fprintf(out, "%s%s\n", mn[0] ? "  # " : "", mn);
        } else {
            fprintf(out, "  ace type %u, %s\n", h->AceType, flags);
        }
    }
}

static void sd_print(PSECURITY_DESCRIPTOR sd, FILE *out)
{
    PSID owner = NULL;
    BOOL def, present = FALSE;
    PACL dacl = NULL;
    if (GetSecurityDescriptorOwner(sd, &owner, &def) && owner) {
        fprintf(out, "  owner ");
        sid_print(owner, out);
        fprintf(out, "\n");
    }
    GetSecurityDescriptorDacl(sd, &present, &dacl, &def);
    fprintf(out, "  dacl  %s\n", sd_protected(sd) ? "protected (inherits nothing from its parent)"
                                                  : "not protected (inherits from its parent)");
    dacl_print(dacl, present, out);
}

/* "HKLM\..." names a registry key, anything else a file or folder. */
static int acl_show(const wchar_t *path)
{
    wchar_t name[MAX_PATH + 16];
    SE_OBJECT_TYPE type = SE_FILE_OBJECT;
    if (_wcsnicmp(path, L"HKLM\\", 5) == 0) {
        _snwprintf(name, ARRAYSIZE(name), L"MACHINE\\%ls", path + 5);
        type = SE_REGISTRY_KEY;
    } else {
        _snwprintf(name, ARRAYSIZE(name), L"%ls", path);
    }
    name[ARRAYSIZE(name) - 1] = 0;
    PSECURITY_DESCRIPTOR sd = NULL;
    DWORD rc = GetNamedSecurityInfoW(name, type, OWNER_SECURITY_INFORMATION |
                                     DACL_SECURITY_INFORMATION, NULL, NULL, NULL, NULL, &sd);
    if (rc != ERROR_SUCCESS) {
        char what[MAX_PATH + 64];
        snprintf(what, sizeof what, "cannot read the security of %ls", path);
        print_win32_error(what, rc);
        return 1;
    }
    printf("%ls\n", path);
    sd_print(sd, stdout);
    LocalFree(sd);
    return 0;
}

/* Every data folder against the DACL imsvc sets. 0 all as set, 1 not. */
static int acl_check(void)
{
    struct imsvc_config cfg;
    config_load(&cfg, NULL);
    BYTE wb[SECURITY_MAX_SID_SIZE], rb[SECURITY_MAX_SID_SIZE];
    struct acl_result ignored = { 0 };
    PSID w = extra_sid(L"PickupWriters", cfg.pickup_writers, wb, &ignored);
    PSID rd = extra_sid(L"DropReaders", cfg.drop_readers, rb, &ignored);
    if (ignored.error)
        fprintf(stderr, "imsvc: %ls\n", ignored.error_what);
    struct folder folders[ACL_DATA_FOLDERS];
    size_t n = data_folders(&cfg, folders, ARRAYSIZE(folders));
    unsigned differ = 0;
    for (size_t i = 0; i < n; i++) {
        PACL want;
        if (acl_folder_dacl(folders[i].kind, folders[i].kind == ACL_FOLDER_PICKUP ? w :
                            folders[i].kind == ACL_FOLDER_DROP ? rd : NULL, &want) != ERROR_SUCCESS)
            return 1;
        DWORD err;
        int same = folder_has(folders[i].path, want, &err);
        if (same == 1) {
            printf("%ls: as imsvc sets it\n", folders[i].path);
        } else {
            differ++;
            if (same < 0)
                printf("%ls: cannot be read (error %lu)\n", folders[i].path, (unsigned long)err);
            else
                printf("%ls: differs from what imsvc sets\n", folders[i].path);
            printf(" imsvc sets:\n  dacl  protected\n");
            dacl_print(want, 1, stdout);
            PSECURITY_DESCRIPTOR sd = NULL;
            if (same == 0 && GetNamedSecurityInfoW(folders[i].path, SE_FILE_OBJECT,
                                                   DACL_SECURITY_INFORMATION, NULL, NULL, NULL,
                                                   NULL, &sd) == ERROR_SUCCESS) {
                printf(" it has:\n");
                sd_print(sd, stdout);
                LocalFree(sd);
            }
        }
        LocalFree(want);
    }
    printf("%u of %u folders as imsvc sets them\n", (unsigned)(n - differ), (unsigned)n);
    return differ ? 1 : 0;
}

static int acl_apply(void)
{
    struct imsvc_config cfg;
    config_load(&cfg, NULL);
    struct acl_result r;
    DWORD rc = acl_secure_data(&cfg, &r);
    printf("%u folders: %u set, %u already right\n", r.folders, r.changed, r.folders - r.changed);
    if (r.not_kept)
        printf("%u of them did not keep what was set (first: %ls): this file system does not "
               "store access rights\n", r.not_kept, r.not_kept_first);
    if (rc != ERROR_SUCCESS) {
        char what[sizeof r.error_what];
        snprintf(what, sizeof what, "%ls", r.error_what);
        print_win32_error(what, rc);
        return 1;
    }
    return 0;
}

static const char *sid_type_name(DWORD t)
{
    switch (t) {
    case SERVICE_SID_TYPE_NONE: return "none";
    case SERVICE_SID_TYPE_UNRESTRICTED: return "unrestricted";
    case SERVICE_SID_TYPE_RESTRICTED: return "restricted";
    default: return "unknown";
    }
}

/* What the SCM holds for the service, read back, and the certificate key's
 * DACL. */
static int acl_account(void)
{
    SC_HANDLE scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT);
    SC_HANDLE svc = scm ? OpenServiceW(scm, IMSVC_SERVICE_NAME, SERVICE_QUERY_CONFIG) : NULL;
    if (!svc) {
        print_win32_error("cannot open the IMSvc service", GetLastError());
        if (scm)
            CloseServiceHandle(scm);
        return 1;
    }
    union { QUERY_SERVICE_CONFIGW c; BYTE b[8192]; } qc;
    union { SERVICE_SID_INFO s; SERVICE_REQUIRED_PRIVILEGES_INFOW p; BYTE b[4096]; } q2;
    DWORD need;
    if (QueryServiceConfigW(svc, &qc.c, sizeof qc, &need))
        printf("Account:         %ls\n", qc.c.lpServiceStartName ? qc.c.lpServiceStartName : L"");
    else
        printf("Account:         cannot be read (error %lu)\n", GetLastError());
    BYTE sid[SECURITY_MAX_SID_SIZE];
    if (acl_service_sid(IMSVC_SERVICE_NAME, sid) == ERROR_SUCCESS) {
        printf("Service SID:     ");
        sid_print(sid, stdout);
        printf("\n");
    }
    if (QueryServiceConfig2W(svc, SERVICE_CONFIG_SERVICE_SID_INFO, q2.b, sizeof q2, &need))
        printf("Service SID type: %s\n", sid_type_name(q2.s.dwServiceSidType));
    else
        printf("Service SID type: not known to this SCM (error %lu)\n", GetLastError());
    if (QueryServiceConfig2W(svc, SERVICE_CONFIG_REQUIRED_PRIVILEGES_INFO, q2.b, sizeof q2, &need)) {
        printf("Privileges:      ");
        const wchar_t *p = q2.p.pmszRequiredPrivileges;
        if (!p || !*p)
            printf("all the account has (none required)");
        for (int first = 1; p && *p; p += wcslen(p) + 1, first = 0)
            printf("%s%ls", first ? "" : " ", p);
        printf("\n");
    } else {
        printf("Privileges:      not known to this SCM (error %lu)\n", GetLastError());
    }
    CloseServiceHandle(svc);
    CloseServiceHandle(scm);

    struct imsvc_config cfg;
    config_load(&cfg, NULL);
    if (cfg.certificate_file[0]) {
        printf("Certificate:     the PFX file %ls (its key is imported by the service)\n",
               cfg.certificate_file);
        return 0;
    }
    if (!cfg.certificate[0]) {
        printf("Certificate:     none\n");
        return 0;
    }
    PCCERT_CONTEXT cert;
    DWORD rc = cert_find(cfg.certificate_store, CERT_SYSTEM_STORE_LOCAL_MACHINE, cfg.certificate,
                         &cert);
    if (rc != ERROR_SUCCESS) {
        printf("Certificate:     %ls not found (error 0x%08lX)\n", cfg.certificate,
               (unsigned long)rc);
        return 1;
    }
    PSECURITY_DESCRIPTOR sd = NULL;
    wchar_t container[256];
    rc = cert_key_security(cert, container, ARRAYSIZE(container), &sd);
    CertFreeCertificateContext(cert);
    if (rc != ERROR_SUCCESS) {
        printf("Certificate key: its rights cannot be read (error 0x%08lX)\n", (unsigned long)rc);
        return 1;
    }
    printf("Certificate key: %ls\n", container);
    sd_print(sd, stdout);
    LocalFree(sd);
    return 0;
}

int acl_cmd(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "show") == 0) {
        wchar_t path[MAX_PATH];
        if (MultiByteToWideChar(CP_UTF8, 0, argv[2], -1, path, MAX_PATH) <= 0) {
            fprintf(stderr, "imsvc: acl show: the path is too long\n");
            return 2;
        }
        return acl_show(path);
    }
    if (argc == 2 && strcmp(argv[1], "check") == 0)
        return acl_check();
    if (argc == 2 && strcmp(argv[1], "apply") == 0)
        return acl_apply();
    if (argc == 2 && strcmp(argv[1], "account") == 0)
        return acl_account();
    fprintf(stderr, "usage: imsvc acl show PATH|HKLM\\KEY | acl check | acl apply | acl account\n");
    return 2;
}
