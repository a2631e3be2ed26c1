/* secret.h - passwords kept in the registry, encrypted with DPAPI for the
 * machine, in place of password files.
 *
 * `imsvc config set-secret NAME` reads a secret from standard input (never
 * from the command line) and stores CryptProtectData(CRYPTPROTECT_LOCAL_
 * MACHINE) of it as the REG_BINARY value NAME of Parameters\Secrets, a key
 * that only SYSTEM and Administrators (full control) and the service SID
 * (read) may open. The service reads a password through secret_password():
 * the secret when one is set, else the first line of the password file. This
 * module never prints, logs or writes a secret in clear, and wipes every
 * buffer that held one.
 */
#ifndef IMSVC_SECRET_H
#define IMSVC_SECRET_H

#include <stdio.h>
#include <windows.h>

#include "config.h"

#define SECRET_MAX        1024u   /* bytes of a secret (UTF-8) */
#define SECRET_BLOB_MAX   8192u   /* bytes of its DPAPI blob */
#define IMSVC_SECRETS_KEY IMSVC_PARAMETERS_KEY L"\\Secrets"
#define SECRET_NAME_MAX   300u    /* characters of a secret's name, with the NUL */
#define SECRET_ROUTE_PREFIX L"Route:"   /* a route's password: "Route:" and its domain */

/* Is NAME a secret imsvc uses (CertificatePassword, SmartHostPassword)?
 * Returns the configuration value it replaces, or NULL. */
const wchar_t *secret_replaces(const wchar_t *name);

/* The secret that holds the password of the route for pattern (its
 * canonical domain, UTF-8): "Route:" pattern. */
void secret_route_name(const char *pattern, wchar_t *out, size_t cap);

/* Encrypt len bytes of UTF-8 and store them as NAME (one of the names above,
 * or a route's). */
DWORD secret_set(const wchar_t *name, const char *utf8, size_t len, wchar_t *why, size_t why_len);
/* Remove NAME; ERROR_FILE_NOT_FOUND if it was not set. */
DWORD secret_delete(const wchar_t *name);

/* The password for NAME: the secret if one is set, else the first line of
 * file (empty: none), as UTF-16 in out (empty when neither is configured).
 * A secret that cannot be decrypted, or a file that cannot be read, is
 * reported (event MSG_SECRET_FAILED) and leaves out empty; the return value
 * is then the Win32 error. For the service: the one place it reads a
 * password. */
DWORD secret_password(const wchar_t *name, const wchar_t *file, wchar_t *out, size_t cap);

/* A number that changes whenever a secret is set or removed (a hash of the
 * stored blobs), so that a configuration re-read notices. 0: none set. */
DWORD secret_stamp(void);

/* One line per secret for `imsvc config show`: set or not, never a value. */
void secret_print(FILE *out);

/* Standard input up to its first line end (a console does not echo it)
 * into buf. Returns the length, or -1 when it is longer than cap. */
long secret_read_stdin(char *buf, size_t cap);

/* `imsvc config set-secret NAME` and `imsvc config delete-secret NAME`. */
int secret_cmd(int argc, char **argv);

#endif
