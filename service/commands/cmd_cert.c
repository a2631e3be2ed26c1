/* cmd_cert.c - `imsvc cert new [--subject CN=host]`: a server certificate.
 *
 * Makes a self-signed certificate for STARTTLS in LocalMachine\MY (sspi/
 * cert.c), points the Certificate value at its thumbprint, and tells a
 * running service to re-read its configuration. `imsvc install` runs the
 * same when no certificate is configured, so a new installation offers
 * STARTTLS at once; a certificate from a real CA replaces it by setting
 * Certificate (or CertificateFile) to that one. The new key is made readable
 * by the service SID, so that the service can use it under its virtual
 * account NT SERVICE\IMSvc.
 */
#include <stdio.h>
#include <string.h>
#include <windows.h>

#include "acl.h"
#include "cert.h"
#include "cmd_cert.h"
#include "config.h"
#include "service.h"

int cert_make_default(const wchar_t *subject, int quiet)
{
    wchar_t def[300];
    if (!subject) {
        struct imsvc_config cfg;
        config_load(&cfg, NULL);
        _snwprintf(def, ARRAYSIZE(def), L"CN=%ls", cfg.host_name);
        def[ARRAYSIZE(def) - 1] = 0;
        subject = def;
    }
    PCCERT_CONTEXT cert = NULL;
    unsigned result = 0;
    DWORD rc = cert_new(subject, 0, &cert, &result);
    if (rc != ERROR_SUCCESS) {
        print_win32_error("cannot create a self-signed certificate", rc);
        return 1;
    }
    /* Not fatal: LocalSystem and administrators can use the key anyway. */
    BYTE sid[SECURITY_MAX_SID_SIZE];
    DWORD grc = acl_service_sid(IMSVC_SERVICE_NAME, sid);
    if (grc == ERROR_SUCCESS)
        grc = cert_key_allow_read(cert, sid);
    if (grc != ERROR_SUCCESS)
        print_win32_error("cannot let NT SERVICE\\IMSvc use the new certificate's key "
                          "(STARTTLS will fail under that account)", grc);
    wchar_t thumb[CERT_THUMBPRINT_CHARS + 1];
    rc = cert_thumbprint(cert, thumb);
    CertFreeCertificateContext(cert);
    if (rc != ERROR_SUCCESS) {
        print_win32_error("cannot read the new certificate's thumbprint", rc);
        return 1;
    }
    wchar_t why[256];
    rc = config_set(L"Certificate", thumb, why, ARRAYSIZE(why));
    if (rc != ERROR_SUCCESS) {
        fprintf(stderr, "imsvc: cert new: %ls\n", why);
        return 1;
    }
    if (!quiet) {
        printf("created %ls in LocalMachine\\MY, thumbprint %ls%s\n", subject, thumb,
               result & CERT_NEW_USED_USER_KEYSET
                   ? " (its key is in the user key set: Schannel here cannot use machine keys)"
                   : "");
        printf("Certificate = %ls%s\n", thumb, control_paramchange()
               ? " (the running service was told to re-read its configuration)" : "");
    }
    return 0;
}

int cert_cmd(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "new") == 0) {
        if (argc == 2)
            return cert_make_default(NULL, 0);
        if (argc == 4 && strcmp(argv[2], "--subject") == 0) {
            wchar_t subject[256];
            if (MultiByteToWideChar(CP_UTF8, 0, argv[3], -1, subject, ARRAYSIZE(subject)) <= 0 ||
                wcsncmp(subject, L"CN=", 3) != 0 || subject[3] == 0) {
                fprintf(stderr, "imsvc: cert new: the subject must look like CN=mail.example.com\n");
                return 2;
            }
            return cert_make_default(subject, 0);
        }
    }
    fprintf(stderr, "usage: imsvc cert new [--subject CN=host]\n");
    return 2;
}
