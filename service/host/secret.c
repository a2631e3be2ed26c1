/* secret.c - DPAPI-protected passwords in the registry (see secret.h). */
#include <stdio.h>
#include <string.h>
#include <wchar.h>
#include <windows.h>
#include <wincrypt.h>

#include "acl.h"
#include "config.h"
#include "eventlog.h"
#include "location.h"
#include "secret.h"
#include "service.h"

/* Each secret and the file value it replaces. */
static const struct {
    const wchar_t *name;
    const wchar_t *replaces;
} secrets[] = {
    { L"CertificatePassword", L"CertificatePasswordFile" },
    { L"SmartHostPassword",   L"SmartHostPasswordFile" },
};

const wchar_t *secret_replaces(const wchar_t *name)
{
    for (size_t i = 0; i < ARRAYSIZE(secrets); i++)
        if (_wcsicmp(secrets[i].name, name) == 0)
            return secrets[i].replaces;
    return NULL;
}

/* "Route:DOMAIN", a route's password (imsvc route add). */
static int is_route_secret(const wchar_t *name)
{
    size_t n = wcslen(SECRET_ROUTE_PREFIX);
    return _wcsnicmp(name, SECRET_ROUTE_PREFIX, n) == 0 && name[n] != 0 &&
           wcslen(name) < SECRET_NAME_MAX;
}

void secret_route_name(const char *pattern, wchar_t *out, size_t cap)
{
    wchar_t w[SECRET_NAME_MAX];
    if (MultiByteToWideChar(CP_UTF8, 0, pattern, -1, w, (int)ARRAYSIZE(w)) <= 0)
        w[0] = 0;
    _snwprintf(out, cap, L"%ls%ls", SECRET_ROUTE_PREFIX, w);
    out[cap - 1] = 0;
}

/* The secret's name mixed into the encryption, so that a blob copied to
 * another value does not decrypt as that value's secret. */
static DATA_BLOB entropy(const wchar_t *name, wchar_t *buf, size_t cap)
{
    _snwprintf(buf, cap, L"IMSvc secret %ls", name);
    buf[cap - 1] = 0;
    CharUpperW(buf);
    DATA_BLOB e = { (DWORD)(wcslen(buf) * sizeof(wchar_t)), (BYTE *)buf };
    return e;
}

DWORD secret_set(const wchar_t *name, const char *utf8, size_t len, wchar_t *why, size_t why_len)
{
    why[0] = 0;
    if (!secret_replaces(name) && !is_route_secret(name)) {
        _snwprintf(why, why_len, L"there is no secret named '%ls' (CertificatePassword or "
                   L"SmartHostPassword)", name);
        why[why_len - 1] = 0;
        return ERROR_INVALID_PARAMETER;
    }
    if (len == 0 || len > SECRET_MAX) {
        _snwprintf(why, why_len, L"a secret is 1 to %u bytes long", SECRET_MAX);
        why[why_len - 1] = 0;
        return ERROR_INVALID_PARAMETER;
    }
    wchar_t ebuf[SECRET_NAME_MAX + 16];
    DATA_BLOB in = { (DWORD)len, (BYTE *)utf8 }, ent = entropy(name, ebuf, ARRAYSIZE(ebuf)), out;
    if (!CryptProtectData(&in, name, &ent, NULL, NULL,
                          CRYPTPROTECT_LOCAL_MACHINE | CRYPTPROTECT_UI_FORBIDDEN, &out)) {
        DWORD rc = GetLastError();
        _snwprintf(why, why_len, L"CryptProtectData failed (error 0x%08lX)", (unsigned long)rc);
        why[why_len - 1] = 0;
        return rc;
    }
    HKEY key;
    LSTATUS rc = RegCreateKeyExW(HKEY_LOCAL_MACHINE, IMSVC_SECRETS_KEY, 0, NULL, 0,
                                 KEY_SET_VALUE | KEY_QUERY_VALUE | WRITE_DAC, NULL, &key, NULL);
    if (rc == ERROR_SUCCESS) {
        /* Set the key's rights before the value goes in; Wine ignores a
         * descriptor given to RegCreateKeyEx, RegSetKeySecurity works on both. */
        DWORD arc = acl_secure_key(key);
        if (arc != ERROR_SUCCESS) {
            _snwprintf(why, why_len, L"cannot restrict HKLM\\%ls to administrators and the "
                       L"service (error %lu); nothing was stored", IMSVC_SECRETS_KEY, arc);
            rc = (LSTATUS)arc;
        } else if ((rc = RegSetValueExW(key, name, 0, REG_BINARY, out.pbData, out.cbData)) !=
                   ERROR_SUCCESS) {
            _snwprintf(why, why_len, L"cannot write %ls (error %ld)", name, (long)rc);
        }
        RegCloseKey(key);
    } else {
        _snwprintf(why, why_len, L"cannot open HKLM\\%ls (error %ld)", IMSVC_SECRETS_KEY, (long)rc);
    }
    why[why_len - 1] = 0;
    LocalFree(out.pbData);
    return (DWORD)rc;
}

DWORD secret_delete(const wchar_t *name)
{
    HKEY key;
    LSTATUS rc = RegOpenKeyExW(HKEY_LOCAL_MACHINE, IMSVC_SECRETS_KEY, 0, KEY_SET_VALUE, &key);
    if (rc != ERROR_SUCCESS)
        return (DWORD)rc;
    rc = RegDeleteValueW(key, name);
    RegCloseKey(key);
    return (DWORD)rc;
}

/* The stored blob of NAME (ERROR_FILE_NOT_FOUND when not set). */
static DWORD blob_read(const wchar_t *name, BYTE *buf, DWORD *len)
{
    HKEY key;
    LSTATUS rc = RegOpenKeyExW(HKEY_LOCAL_MACHINE, IMSVC_SECRETS_KEY, 0, KEY_QUERY_VALUE, &key);
    if (rc != ERROR_SUCCESS)
        return (DWORD)rc;
    DWORD type = 0;
    rc = RegQueryValueExW(key, name, NULL, &type, buf, len);
    RegCloseKey(key);
    if (rc == ERROR_SUCCESS && type != REG_BINARY)
        rc = ERROR_INVALID_DATA;
    return (DWORD)rc;
}

static void report(const wchar_t *name, DWORD err, const wchar_t *fmt, const wchar_t *arg)
{
    wchar_t what[MAX_PATH + 200];
    _snwprintf(what, ARRAYSIZE(what), fmt, arg);
    what[ARRAYSIZE(what) - 1] = 0;
    evlog_report(EVENTLOG_ERROR_TYPE, CAT_SECURITY, MSG_SECRET_FAILED, LOC_CFG_SECRET, err, 2,
                 (const wchar_t *[]){ name, what });
}

/* UTF-8 (its first line) to UTF-16 in out; the input is wiped. */
static void first_line_to(char *text, size_t len, wchar_t *out, size_t cap)
{
    size_t n = 0;
    while (n < len && text[n] != '\r' && text[n] != '\n' && text[n] != 0)
        n++;
    int w = n ? MultiByteToWideChar(CP_UTF8, 0, text, (int)n, out, (int)cap - 1) : 0;
    out[w > 0 ? w : 0] = 0;
    SecureZeroMemory(text, len);
}

static DWORD file_first_line(const wchar_t *path, wchar_t *out, size_t cap)
{
    HANDLE f = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING,
                           FILE_ATTRIBUTE_NORMAL, NULL);
    if (f == INVALID_HANDLE_VALUE)
        return GetLastError();
    char buf[SECRET_MAX + 2];
    DWORD got = 0;
    BOOL ok = ReadFile(f, buf, sizeof buf, &got, NULL);
    DWORD rc = ok ? ERROR_SUCCESS : GetLastError();
    CloseHandle(f);
    if (rc == ERROR_SUCCESS)
        first_line_to(buf, got, out, cap);
    SecureZeroMemory(buf, sizeof buf);
    return rc;
}

DWORD secret_password(const wchar_t *name, const wchar_t *file, wchar_t *out, size_t cap)
{
    out[0] = 0;
    BYTE blob[SECRET_BLOB_MAX];
    DWORD len = sizeof blob;
    DWORD rc = blob_read(name, blob, &len);
    if (rc == ERROR_SUCCESS) {
        wchar_t ebuf[SECRET_NAME_MAX + 16];
        DATA_BLOB in = { len, blob }, ent = entropy(name, ebuf, ARRAYSIZE(ebuf)), plain;
        if (!CryptUnprotectData(&in, NULL, &ent, NULL, NULL, CRYPTPROTECT_UI_FORBIDDEN, &plain)) {
            rc = GetLastError();
            report(name, rc, L"the stored secret cannot be decrypted on this machine (set it "
                   L"again with imsvc config set-secret %ls); no password is used", name);
            return rc;
        }
        first_line_to((char *)plain.pbData, plain.cbData, out, cap);
        LocalFree(plain.pbData);
        return ERROR_SUCCESS;
    }
    if (rc != ERROR_FILE_NOT_FOUND) {
        report(name, rc, L"the stored secret cannot be read from HKLM\\%ls; no password is used",
               IMSVC_SECRETS_KEY);
        return rc;
    }
    if (!file || !file[0])
        return ERROR_SUCCESS;
    rc = file_first_line(file, out, cap);
    if (rc != ERROR_SUCCESS)
        report(name, rc, L"the password file %ls cannot be read; no password is used", file);
    return rc;
}

DWORD secret_stamp(void)
{
    DWORD h = 2166136261u;   /* FNV-1a over every name and blob, routes' included */
    int any = 0;
    HKEY key;
    if (RegOpenKeyExW(HKEY_LOCAL_MACHINE, IMSVC_SECRETS_KEY, 0, KEY_QUERY_VALUE, &key) != ERROR_SUCCESS)
        return 0;
    for (DWORD i = 0;; i++) {
        wchar_t name[SECRET_NAME_MAX];
        BYTE blob[SECRET_BLOB_MAX];
        DWORD nl = ARRAYSIZE(name), len = sizeof blob, type = 0;
        LSTATUS rc = RegEnumValueW(key, i, name, &nl, NULL, &type, blob, &len);
        if (rc == ERROR_NO_MORE_ITEMS)
            break;
        if (rc != ERROR_SUCCESS || type != REG_BINARY)
            continue;
        any = 1;
        const BYTE *p = (const BYTE *)name;
        for (size_t k = 0; k < nl * sizeof(wchar_t); k++)
            h = (h ^ p[k]) * 16777619u;
        for (DWORD k = 0; k < len; k++)
            h = (h ^ blob[k]) * 16777619u;
    }
    RegCloseKey(key);
    return any ? (h ? h : 1) : 0;
}

void secret_print(FILE *out)
{
    for (size_t i = 0; i < ARRAYSIZE(secrets); i++) {
        BYTE blob[SECRET_BLOB_MAX];
        DWORD len = sizeof blob;
        DWORD rc = blob_read(secrets[i].name, blob, &len);
        if (rc == ERROR_SUCCESS)
            fprintf(out, "%-24ls (secret) set: %lu bytes of DPAPI data, used instead of %ls\n",
                    secrets[i].name, (unsigned long)len, secrets[i].replaces);
        else if (rc == ERROR_FILE_NOT_FOUND)
            fprintf(out, "%-24ls (secret) not set\n", secrets[i].name);
        else
            fprintf(out, "%-24ls (secret) cannot be read (error %lu)\n", secrets[i].name,
                    (unsigned long)rc);
    }
}

/* Standard input up to its first line end (or its end): a console does not
 * echo it. Returns the length, or -1 when it is longer than SECRET_MAX. */
long secret_read_stdin(char *buf, size_t cap)
{
    HANDLE in = GetStdHandle(STD_INPUT_HANDLE);
    DWORD mode = 0;
    int console = in && in != INVALID_HANDLE_VALUE && GetConsoleMode(in, &mode);
    if (console) {
        fprintf(stderr, "secret (not echoed): ");
        fflush(stderr);
        SetConsoleMode(in, (mode | ENABLE_LINE_INPUT) & ~(DWORD)ENABLE_ECHO_INPUT);
    }
    size_t got = 0;
    int too_long = 0;
    for (;;) {
        char c;
        DWORD k = 0;
        if (!ReadFile(in, &c, 1, &k, NULL) || k == 0)
            break;
        if (c == '\n')
            break;
        if (got < cap)
            buf[got++] = c;
        else
            too_long = 1;
    }
    if (console) {
        SetConsoleMode(in, mode);
        fprintf(stderr, "\n");
    }
    while (got > 0 && buf[got - 1] == '\r')
        got--;
    return too_long ? -1 : (long)got;
}

int secret_cmd(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[1], "set-secret") != 0 && strcmp(argv[1], "delete-secret") != 0)) {
        fprintf(stderr, "usage: imsvc config set-secret NAME   (the secret is read from standard "
                        "input, never from the command line)\n"
                        "       imsvc config delete-secret NAME\n");
        return 2;
    }
    wchar_t name[64];
    if (MultiByteToWideChar(CP_UTF8, 0, argv[2], -1, name, ARRAYSIZE(name)) <= 0 ||
        !secret_replaces(name)) {
        fprintf(stderr, "imsvc: there is no secret named '%s' (CertificatePassword or "
                        "SmartHostPassword)\n", argv[2]);
        return 2;
    }
    if (strcmp(argv[1], "delete-secret") == 0) {
        DWORD rc = secret_delete(name);
        if (rc == ERROR_FILE_NOT_FOUND) {
            fprintf(stderr, "imsvc: the secret %ls is not set\n", name);
            return 1;
        }
        if (rc != ERROR_SUCCESS) {
            print_win32_error("cannot delete the secret", rc);
            return 1;
        }
        printf("%ls deleted; %ls is read again%s\n", name, secret_replaces(name),
               control_paramchange() ? " (the running service was told)" : "");
        return 0;
    }
    char buf[SECRET_MAX + 1];
    long len = secret_read_stdin(buf, SECRET_MAX);
    if (len <= 0) {
        SecureZeroMemory(buf, sizeof buf);
        fprintf(stderr, len < 0 ? "imsvc: the secret is longer than %u bytes\n"
                                : "imsvc: no secret on standard input (give it there, for "
                                  "example from a pipe; never on the command line)\n",
                SECRET_MAX);
        return 1;
    }
    wchar_t why[300];
    DWORD rc = secret_set(name, buf, (size_t)len, why, ARRAYSIZE(why));
    SecureZeroMemory(buf, sizeof buf);
    if (rc != ERROR_SUCCESS) {
        fprintf(stderr, "imsvc: config set-secret: %ls\n", why);
        return 1;
    }
    printf("%ls stored, encrypted with DPAPI for this machine; used instead of %ls%s\n", name,
           secret_replaces(name), control_paramchange()
           ? " (the running service was told to re-read its configuration)"
           : " (takes effect when the service starts)");
    return 0;
}
