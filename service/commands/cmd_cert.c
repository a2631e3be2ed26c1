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
 *
 * `imsvc install` records the thumbprint of the certificate it made
 * (InstalledCertificate, beside the configuration) so that `imsvc
 * uninstall` removes exactly that one, and only if imsvc made it: a
 * certificate from a CA is never deleted here. `imsvc cert list` shows the
 * machine's certificates, which of them imsvc made, and which is in use.
 */
#include <stdio.h>
#include <string.h>
#include <windows.h>

#include "acl.h"
#include "cert.h"
#include "cmd_cert.h"
#include "config.h"
#include "service.h"

int cert_make_default(const wchar_t *subject, int quiet, wchar_t *thumb_out)
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
    if (thumb_out)
        wcscpy(thumb_out, thumb);
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

int cert_make_installed(void)
{
    wchar_t thumb[CERT_THUMBPRINT_CHARS + 1];
    if (cert_make_default(NULL, 1, thumb) != 0)
        return 1;
    HKEY key;
    LSTATUS rc = RegCreateKeyExW(HKEY_LOCAL_MACHINE, IMSVC_PARAMETERS_KEY, 0, NULL, 0,
                                 KEY_SET_VALUE, NULL, &key, NULL);
    if (rc == ERROR_SUCCESS) {
        rc = RegSetValueExW(key, CERT_INSTALLED_VALUE, 0, REG_SZ, (const BYTE *)thumb,
                            (DWORD)sizeof thumb);
        RegCloseKey(key);
    }
    if (rc != ERROR_SUCCESS)
        print_win32_error("cannot record the installed certificate (imsvc uninstall will "
                          "leave it in LocalMachine\\MY)", (DWORD)rc);
    printf("IMSvc: created a self-signed certificate for STARTTLS, thumbprint %ls (imsvc cert new "
           "makes another; set Certificate for one from a CA)\n", thumb);
    return 0;
}

int cert_remove_installed(void)
{
    wchar_t thumb[128];
    DWORD n = sizeof thumb;
    LSTATUS lrc = RegGetValueW(HKEY_LOCAL_MACHINE, IMSVC_PARAMETERS_KEY, CERT_INSTALLED_VALUE,
                               RRF_RT_REG_SZ, NULL, thumb, &n);
    if (lrc == ERROR_FILE_NOT_FOUND) {
        /* Installed before the thumbprint was recorded: the configured
         * certificate, if imsvc made it. */
        struct imsvc_config cfg;
        config_load(&cfg, NULL);
        if (!cfg.certificate[0] || cfg.certificate_file[0])
            return 0;
        _snwprintf(thumb, ARRAYSIZE(thumb), L"%ls", cfg.certificate);
        thumb[ARRAYSIZE(thumb) - 1] = 0;
    } else if (lrc != ERROR_SUCCESS) {
        print_win32_error("cannot read which certificate imsvc install made", (DWORD)lrc);
        return 1;
    }
    DWORD key_rc;
    DWORD rc = cert_remove_own(thumb, &key_rc);
    switch (rc) {
    case ERROR_SUCCESS:
        printf("IMSvc: removed the self-signed certificate %ls from LocalMachine\\MY\n", thumb);
        if (key_rc != ERROR_SUCCESS) {
            print_win32_error("cannot delete that certificate's key container", key_rc);
            return 1;
        }
        return 0;
    case CRYPT_E_NOT_FOUND:
        printf("IMSvc: the certificate %ls is no longer in LocalMachine\\MY\n", thumb);
        return 0;
    case ERROR_NOT_OWNER:
    case ERROR_INVALID_PARAMETER:
        printf("IMSvc: kept the certificate %ls: imsvc did not make it\n", thumb);
        return 0;
    default:
        print_win32_error("cannot remove the self-signed certificate", rc);
        return 1;
    }
}

/* Every certificate in LocalMachine\MY: thumbprint, whether imsvc made it,
 * whether it is the one configured, expiry and subject. */
static int cert_list(void)
{
    struct imsvc_config cfg;
    config_load(&cfg, NULL);
    HCERTSTORE st = CertOpenStore(CERT_STORE_PROV_SYSTEM_W, 0, 0,
                                  CERT_SYSTEM_STORE_LOCAL_MACHINE | CERT_STORE_OPEN_EXISTING_FLAG |
                                  CERT_STORE_READONLY_FLAG, L"MY");
    if (!st) {
        DWORD err = GetLastError();
        if (err == ERROR_FILE_NOT_FOUND) {
            printf("0 certificates in LocalMachine\\MY\n");
            return 0;
        }
        print_win32_error("cannot open LocalMachine\\MY", err);
        return 1;
    }
    unsigned count = 0;
    PCCERT_CONTEXT c = NULL;
    while ((c = CertEnumCertificatesInStore(st, c)) != NULL) {
        wchar_t thumb[CERT_THUMBPRINT_CHARS + 1], subject[256];
        if (cert_thumbprint(c, thumb) != ERROR_SUCCESS)
            continue;
        if (!CertNameToStrW(X509_ASN_ENCODING, &c->pCertInfo->Subject, CERT_X500_NAME_STR,
                            subject, ARRAYSIZE(subject)))
            wcscpy(subject, L"?");
        SYSTEMTIME t;
        FileTimeToSystemTime(&c->pCertInfo->NotAfter, &t);
        printf("%ls  %-8s %-10s until %04u-%02u-%02u  %ls\n", thumb,
               cert_is_own(c) ? "imsvc" : "other",
               _wcsicmp(thumb, cfg.certificate) == 0 ? "configured" : "-",
               t.wYear, t.wMonth, t.wDay, subject);
        count++;
    }
    CertCloseStore(st, 0);
    printf("%u certificate%s in LocalMachine\\MY\n", count, count == 1 ? "" : "s");
    return 0;
}

int cert_cmd(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "list") == 0)
        return cert_list();
    if (argc >= 2 && strcmp(argv[1], "new") == 0) {
        if (argc == 2)
            return cert_make_default(NULL, 0, NULL);
        if (argc == 4 && strcmp(argv[2], "--subject") == 0) {
            wchar_t subject[256];
            if (MultiByteToWideChar(CP_UTF8, 0, argv[3], -1, subject, ARRAYSIZE(subject)) <= 0 ||
                wcsncmp(subject, L"CN=", 3) != 0 || subject[3] == 0) {
                fprintf(stderr, "imsvc: cert new: the subject must look like CN=mail.example.com\n");
                return 2;
            }
            return cert_make_default(subject, 0, NULL);
        }
    }
    fprintf(stderr, "usage: imsvc cert new [--subject CN=host] | imsvc cert list\n");
    return 2;
}
