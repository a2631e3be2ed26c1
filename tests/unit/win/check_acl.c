/* check_acl.c - least privilege: the service SID derivation, the DACLs
 * imsvc builds for its folders, and DPAPI secrets (set, read, bound to
 * their name, replaced by the password file when absent). */
#include <check.h>
#include <windows.h>
#include <sddl.h>
#include <stdio.h>
#include <string.h>

#include "acl.h"
#include "secret.h"

static void sid_is(PSID sid, const wchar_t *want)
{
    LPWSTR text = NULL;
    ck_assert(ConvertSidToStringSidW(sid, &text));
    ck_assert_msg(wcscmp(text, want) == 0, "SID %ls, wanted %ls", text, want);
    LocalFree(text);
}

/* Windows' own service SID for TrustedInstaller is well known: the
 * derivation must give it. */
START_TEST(service_sid_matches_windows)
{
    BYTE sid[SECURITY_MAX_SID_SIZE];
    ck_assert_uint_eq(acl_service_sid(L"TrustedInstaller", sid), ERROR_SUCCESS);
    sid_is(sid, L"S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464");
    BYTE a[SECURITY_MAX_SID_SIZE], b[SECURITY_MAX_SID_SIZE];
    ck_assert_uint_eq(acl_service_sid(L"imsvc", a), ERROR_SUCCESS);
    ck_assert_uint_eq(acl_service_sid(L"IMSvc", b), ERROR_SUCCESS);
    ck_assert(EqualSid(a, b));   /* the name is upper-cased first */
    sid_is(b, L"S-1-5-80-2780295604-1917110178-646614130-1895034743-1642178515");
    ck_assert_uint_eq(acl_service_sid(L"", sid), ERROR_INVALID_PARAMETER);
}
END_TEST

START_TEST(account_names_and_sids)
{
    BYTE a[SECURITY_MAX_SID_SIZE], b[SECURITY_MAX_SID_SIZE];
    ck_assert_uint_eq(acl_account_sid(L"S-1-5-32-545", a), ERROR_SUCCESS);
    ck_assert_uint_eq(acl_account_sid(L"Users", b), ERROR_SUCCESS);
    ck_assert(EqualSid(a, b));
    ck_assert_uint_ne(acl_account_sid(L"no-such-group-here", a), ERROR_SUCCESS);
    ck_assert_uint_ne(acl_account_sid(L"S-1-x", a), ERROR_SUCCESS);
}
END_TEST

/* ACE i of dacl: allow, these flags and mask, for this SID string. */
static void ace_is(PACL dacl, DWORD i, BYTE flags, DWORD mask, const wchar_t *sid)
{
    ACCESS_ALLOWED_ACE *a;
    ck_assert(GetAce(dacl, i, (void **)&a));
    ck_assert_uint_eq(a->Header.AceType, ACCESS_ALLOWED_ACE_TYPE);
    ck_assert_msg(a->Header.AceFlags == flags, "ACE %lu flags 0x%x, wanted 0x%x",
                  (unsigned long)i, a->Header.AceFlags, flags);
    ck_assert_msg(a->Mask == mask, "ACE %lu mask 0x%lx, wanted 0x%lx", (unsigned long)i,
                  (unsigned long)a->Mask, (unsigned long)mask);
    sid_is((PSID)&a->SidStart, sid);
}

#define SVC L"S-1-5-80-2780295604-1917110178-646614130-1895034743-1642178515"
#define OICI (OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE)
#define OIIO (OBJECT_INHERIT_ACE | INHERIT_ONLY_ACE)

START_TEST(folder_dacls)
{
    BYTE users[SECURITY_MAX_SID_SIZE];
    ck_assert_uint_eq(acl_account_sid(L"S-1-5-32-545", users), ERROR_SUCCESS);
    PACL d;
    /* Plain: the three owners of the data, full control, inherited. An
     * extra SID given for a plain folder is ignored. */
    ck_assert_uint_eq(acl_folder_dacl(ACL_FOLDER_PLAIN, users, &d), ERROR_SUCCESS);
    ck_assert(IsValidAcl(d));
    ck_assert_uint_eq(d->AceCount, 3);
    ace_is(d, 0, OICI, FILE_ALL_ACCESS, L"S-1-5-18");
    ace_is(d, 1, OICI, FILE_ALL_ACCESS, L"S-1-5-32-544");
    ace_is(d, 2, OICI, FILE_ALL_ACCESS, SVC);
    LocalFree(d);
    /* Pickup with writers: add files on the folder only (no listing, no
     * reading), and CREATOR OWNER over the files each one makes. */
    ck_assert_uint_eq(acl_folder_dacl(ACL_FOLDER_PICKUP, users, &d), ERROR_SUCCESS);
    ck_assert_uint_eq(d->AceCount, 5);
    ace_is(d, 3, 0, FILE_ADD_FILE | FILE_TRAVERSE | FILE_READ_ATTRIBUTES | READ_CONTROL |
           SYNCHRONIZE, L"S-1-5-32-545");
    ace_is(d, 4, OIIO, FILE_ALL_ACCESS, L"S-1-3-0");
    LocalFree(d);
    ck_assert_uint_eq(acl_folder_dacl(ACL_FOLDER_PICKUP, NULL, &d), ERROR_SUCCESS);
    ck_assert_uint_eq(d->AceCount, 3);
    LocalFree(d);
    /* Drop with readers: read and list everything, delete files only. */
    ck_assert_uint_eq(acl_folder_dacl(ACL_FOLDER_DROP, users, &d), ERROR_SUCCESS);
    ck_assert_uint_eq(d->AceCount, 5);
    ace_is(d, 3, OICI, FILE_GENERIC_READ | FILE_GENERIC_EXECUTE, L"S-1-5-32-545");
    ace_is(d, 4, OIIO, DELETE, L"S-1-5-32-545");
    LocalFree(d);
}
END_TEST

/* The Secrets key under Parameters: this suite's prefix is thrown away. */
static void secrets_clean(void)
{
    secret_delete(L"SmartHostPassword");
    secret_delete(L"CertificatePassword");
}

static DWORD blob_of(const wchar_t *name, BYTE *buf, DWORD cap)
{
    DWORD len = cap;
    LSTATUS rc = RegGetValueW(HKEY_LOCAL_MACHINE, IMSVC_SECRETS_KEY, name, RRF_RT_REG_BINARY,
                              NULL, buf, &len);
    return rc == ERROR_SUCCESS ? len : 0;
}

START_TEST(secret_round_trip)
{
    secrets_clean();
    ck_assert_uint_eq(secret_stamp(), 0);
    wchar_t why[256], out[64];
    const char pw[] = "S\xc3\xa9kret pass";   /* UTF-8, with a space */
    ck_assert_uint_eq(secret_set(L"SmartHostPassword", pw, strlen(pw), why, 256), ERROR_SUCCESS);
    DWORD stamp = secret_stamp();
    ck_assert_uint_ne(stamp, 0);
    ck_assert_uint_eq(secret_password(L"SmartHostPassword", L"C:\\no\\such\\file", out, 64),
                      ERROR_SUCCESS);
    ck_assert_msg(wcscmp(out, L"S\u00e9kret pass") == 0, "got '%ls'", out);
    BYTE blob[SECRET_BLOB_MAX];
    DWORD len = blob_of(L"SmartHostPassword", blob, sizeof blob);
    ck_assert_uint_gt(len, strlen(pw));
    for (DWORD i = 0; i + strlen(pw) <= len; i++)
        ck_assert_msg(memcmp(blob + i, pw, strlen(pw)) != 0, "clear text at %lu", (unsigned long)i);
    /* Set again: a new blob, a new stamp. */
    ck_assert_uint_eq(secret_set(L"SmartHostPassword", pw, strlen(pw), why, 256), ERROR_SUCCESS);
    ck_assert_uint_ne(secret_stamp(), stamp);
    /* Names, lengths. */
    ck_assert_uint_eq(secret_set(L"Bogus", pw, strlen(pw), why, 256), ERROR_INVALID_PARAMETER);
    ck_assert_uint_eq(secret_set(L"SmartHostPassword", pw, 0, why, 256), ERROR_INVALID_PARAMETER);
    secrets_clean();
}
END_TEST

/* A blob moved to another secret's value does not decrypt as that secret:
 * the name is part of the encryption. */
START_TEST(secret_bound_to_name)
{
    secrets_clean();
    wchar_t why[256], out[64];
    ck_assert_uint_eq(secret_set(L"SmartHostPassword", "abc", 3, why, 256), ERROR_SUCCESS);
    BYTE blob[SECRET_BLOB_MAX];
    DWORD len = blob_of(L"SmartHostPassword", blob, sizeof blob);
    ck_assert_uint_gt(len, 0);
    ck_assert_uint_eq(RegSetKeyValueW(HKEY_LOCAL_MACHINE, IMSVC_SECRETS_KEY, L"CertificatePassword",
                                      REG_BINARY, blob, len), ERROR_SUCCESS);
    wcscpy(out, L"unchanged");
    ck_assert_uint_ne(secret_password(L"CertificatePassword", NULL, out, 64), ERROR_SUCCESS);
    ck_assert_msg(out[0] == 0, "got '%ls'", out);
    secrets_clean();
}
END_TEST

/* Without a secret, the password file's first line, as before. */
START_TEST(secret_falls_back_to_file)
{
    secrets_clean();
    wchar_t tmp[MAX_PATH], path[MAX_PATH], out[64];
    ck_assert_uint_gt(GetTempPathW(MAX_PATH, tmp), 0);
    _snwprintf(path, MAX_PATH, L"%lsimsvc-pw-%lu.txt", tmp, GetCurrentProcessId());
    FILE *f = _wfopen(path, L"wb");
    ck_assert_ptr_nonnull(f);
    fputs("from-file\r\nsecond line\r\n", f);
    fclose(f);
    ck_assert_uint_eq(secret_password(L"SmartHostPassword", path, out, 64), ERROR_SUCCESS);
    ck_assert_msg(wcscmp(out, L"from-file") == 0, "got '%ls'", out);
    /* A secret wins over the file. */
    wchar_t why[256];
    ck_assert_uint_eq(secret_set(L"SmartHostPassword", "from-secret", 11, why, 256), ERROR_SUCCESS);
    ck_assert_uint_eq(secret_password(L"SmartHostPassword", path, out, 64), ERROR_SUCCESS);
    ck_assert_msg(wcscmp(out, L"from-secret") == 0, "got '%ls'", out);
    secrets_clean();
    /* Neither: nothing, and no error. A missing file: the error, nothing. */
    ck_assert_uint_eq(secret_password(L"SmartHostPassword", L"", out, 64), ERROR_SUCCESS);
    ck_assert(out[0] == 0);
    DeleteFileW(path);
    ck_assert_uint_eq(secret_password(L"SmartHostPassword", path, out, 64), ERROR_FILE_NOT_FOUND);
    ck_assert(out[0] == 0);
}
END_TEST

Suite *acl_suite(void)
{
    Suite *s = suite_create("acl");
    TCase *t = tcase_create("acl");
    tcase_add_test(t, service_sid_matches_windows);
    tcase_add_test(t, account_names_and_sids);
    tcase_add_test(t, folder_dacls);
    tcase_add_test(t, secret_round_trip);
    tcase_add_test(t, secret_bound_to_name);
    tcase_add_test(t, secret_falls_back_to_file);
    suite_add_tcase(s, t);
    return s;
}
