/* cert.h - certificates for the secure stream: load, find, create, verify.
 *
 * The server certificate comes from a PFX file or from a Windows certificate
 * store (by SHA-1 thumbprint or subject); `imsvc cert new` makes a
 * self-signed one in the machine's "MY" store so that a default setup has
 * TLS at once. Outbound, the server's certificate is checked with
 * CertGetCertificateChain and CertVerifyCertificateChainPolicy (SSL policy,
 * host name) unless the destination is configured to accept any.
 *
 * Every function returns ERROR_SUCCESS or the Win32 error, HRESULT or SSPI
 * status it saw; none of them logs. A returned certificate context is the
 * caller's to free with CertFreeCertificateContext.
 */
#ifndef IMSVC_CERT_H
#define IMSVC_CERT_H

#include <windows.h>
#include <wincrypt.h>

#define CERT_THUMBPRINT_CHARS 40 /* SHA-1 in hex */

/* The first certificate in the PFX that has a private key. */
DWORD cert_load_pfx(const wchar_t *path, const wchar_t *password, PCCERT_CONTEXT *out);
/* Same from bytes in memory. */
DWORD cert_load_pfx_blob(const void *data, DWORD len, const wchar_t *password,
                         PCCERT_CONTEXT *out);

/* Find a certificate with a private key in system store store_name ("MY")
 * at location (CERT_SYSTEM_STORE_LOCAL_MACHINE or _CURRENT_USER). which is a
 * thumbprint (40 hex digits, spaces and colons ignored) or else a substring
 * of the subject; among several matches the one that expires last wins.
 * CRYPT_E_NOT_FOUND when none matches. */
DWORD cert_find(const wchar_t *store_name, DWORD location, const wchar_t *which,
                PCCERT_CONTEXT *out);

/* Hex SHA-1 thumbprint, upper case, NUL-terminated. */
DWORD cert_thumbprint(PCCERT_CONTEXT cert, wchar_t out[CERT_THUMBPRINT_CHARS + 1]);

/* cert_new flags */
#define CERT_NEW_NO_STORE     0x1u /* do not add to the MY store */
#define CERT_NEW_USER_KEYSET  0x2u /* key in the user's key set from the start */
/* cert_new result flags */
#define CERT_NEW_USED_USER_KEYSET 0x100u /* the machine key set did not work */

/* Create a self-signed server certificate (RSA 2048, SHA-256, five years,
 * server authentication, the CN as DNS name) for subject ("CN=host"; NULL
 * means CN=<computer name>), with its key in a new key container, and add it
 * to LocalMachine\MY. The key goes to the machine key set; if Schannel cannot
 * use a key there (as under Wine 10), it is made again in the user's key set
 * and *result_flags says so. */
DWORD cert_new(const wchar_t *subject, unsigned flags, PCCERT_CONTEXT *out,
               unsigned *result_flags);

/* The security descriptor (DACL) of the certificate's private key, and a
 * description of where the key is ("container NAME, CryptoAPI, machine key
 * set"). LocalFree *sd. ERROR_NOT_SUPPORTED for a CNG key: only CryptoAPI
 * keys (the kind cert_new makes) are handled here. */
DWORD cert_key_security(PCCERT_CONTEXT cert, wchar_t *where, size_t where_len,
                        PSECURITY_DESCRIPTOR *sd);

/* Let sid use the certificate's private key: an ACE allowing GENERIC_READ
 * (what "Manage Private Keys > Read" grants) is added to the DACL of its
 * CryptoAPI key container (PP_KEYSET_SEC_DESCR), before any inherited ACE;
 * nothing is added when sid already has it. ERROR_NOT_SUPPORTED for a CNG
 * key. */
DWORD cert_key_allow_read(PCCERT_CONTEXT cert, PSID sid);

/* Is cert one that cert_new made: self-signed, with cert_new's friendly
 * name? A certificate from a CA, or one the administrator made, is not. */
int cert_is_own(PCCERT_CONTEXT cert);

/* Remove the certificate with this thumbprint from LocalMachine\MY, and
 * delete its key container, if cert_new made it (cert_is_own).
 * CRYPT_E_NOT_FOUND when the store does not hold it, ERROR_NOT_OWNER when
 * it is not one of ours (it is left alone), ERROR_INVALID_PARAMETER when
 * thumbprint is not 40 hex digits. *key_rc: what deleting the key
 * container returned (ERROR_SUCCESS when the certificate had none). */
DWORD cert_remove_own(const wchar_t *thumbprint, DWORD *key_rc);

/* Check a server's certificate for host: a chain to a trusted root for
 * server authentication and the SSL policy with the host name.
 * accept_any skips every check. */
DWORD cert_verify_server(PCCERT_CONTEXT cert, const wchar_t *host, int accept_any);

#endif
