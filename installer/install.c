/* install.c - register imsvc with the SCM and the event log, and remove it.
 *
 * `imsvc install` creates the IMSvc service (own process, the chosen start
 * type and account), sets its description and failure actions (restart after
 * one minute), creates its Parameters key and registers the IMSvc event
 * source pointing at this executable's message table.
 *
 * Least privilege: the default account is the virtual account
 * NT SERVICE\IMSvc; the service gets an unrestricted service SID and only
 * the privileges in IMSVC_REQUIRED_PRIVILEGES (docs/service-account.md says
 * why each); the data folders get their protected DACLs (service/host/acl.c) and
 * the key of the self-signed certificate is made readable by the service
 * SID. LocalSystem (`--account LocalSystem`) and a named account with a
 * password file remain possible. `imsvc uninstall`
 * stops the service if it runs and removes all of that, the self-signed
 * certificate install made and the firewall rule included; the data
 * directory (queue, journal) stays. The service runs the
 * executable from where it was installed: install from its final location.
 */
#include <stdio.h>
#include <string.h>
#include <windows.h>

#include "acl.h"
#include "config.h"
#include "eventlog.h"
#include "cmd_cert.h"
#include "firewall.h"
#include "installer.h"
#include "service.h"

#define IMSVC_DESCRIPTION L"Relays Internet mail over SMTP with STARTTLS and NTLM " \
                          L"authentication through Windows security (SSPI), and reports " \
                          L"to the Application event log under the source IMSvc."
#define RESTART_DELAY_MS 60000
#define FAILURE_RESET_S  86400
#define VIRTUAL_ACCOUNT  L"NT SERVICE\\" IMSVC_SERVICE_NAME
/* SeChangeNotifyPrivilege (bypass traverse checking) only: the service
 * reaches its folders through paths whose parents it may not list. It does
 * not impersonate (no SeImpersonatePrivilege), makes no global objects (no
 * SeCreateGlobalPrivilege) and starts the content filter with its own
 * token (no SeAssignPrimaryTokenPrivilege or SeIncreaseQuotaPrivilege). */
#define IMSVC_REQUIRED_PRIVILEGES L"SeChangeNotifyPrivilege\0"

static void usage_install(void)
{
    fprintf(stderr, "usage: imsvc install [--start auto|demand|delayed] "
                    "[--account LocalSystem | --account NAME [--password-file FILE]]\n"
                    "       (the default account is NT SERVICE\\IMSvc)\n");
}

/* ChangeServiceConfig2 for a least-privilege level. An SCM that does not
 * know the level (ERROR_INVALID_LEVEL: Wine's; every Windows since Vista
 * knows both) is said plainly and is not a failure of the install. */
static int config2_least_privilege(SC_HANDLE svc, DWORD level, void *info, const char *what)
{
    if (ChangeServiceConfig2W(svc, level, info))
        return 0;
    DWORD err = GetLastError();
    if (err == ERROR_INVALID_LEVEL) {
        fprintf(stderr, "imsvc: this Service Control Manager does not support %s "
                        "(ChangeServiceConfig2: ERROR_INVALID_LEVEL); not set\n", what);
        return 0;
    }
    char text[160];
    snprintf(text, sizeof text, "cannot set %s", what);
    print_win32_error(text, err);
    return 1;
}

/* The first line of a file, without its line end; for the account password,
 * so it never appears on a command line. */
static int read_secret(const char *path, wchar_t *out, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    char buf[512];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    buf[strcspn(buf, "\r\n")] = 0;
    int w = MultiByteToWideChar(CP_UTF8, 0, buf, -1, out, (int)cap);
    SecureZeroMemory(buf, sizeof buf);
    return w > 0;
}

int installer_service_settings(SC_HANDLE svc, BOOL delayed)
{
    int rc = 0;
    SERVICE_DESCRIPTIONW desc = { (wchar_t *)IMSVC_DESCRIPTION };
    if (!ChangeServiceConfig2W(svc, SERVICE_CONFIG_DESCRIPTION, &desc)) {
        print_win32_error("cannot set the service description", GetLastError());
        rc = 1;
    }
    SC_ACTION actions[3] = {
        { SC_ACTION_RESTART, RESTART_DELAY_MS },
        { SC_ACTION_RESTART, RESTART_DELAY_MS },
        { SC_ACTION_RESTART, RESTART_DELAY_MS },
    };
    SERVICE_FAILURE_ACTIONSW fa = { FAILURE_RESET_S, NULL, NULL, ARRAYSIZE(actions), actions };
    if (!ChangeServiceConfig2W(svc, SERVICE_CONFIG_FAILURE_ACTIONS, &fa)) {
        print_win32_error("cannot set the failure actions", GetLastError());
        rc = 1;
    }
    SERVICE_SID_INFO sid_info = { SERVICE_SID_TYPE_UNRESTRICTED };
    rc |= config2_least_privilege(svc, SERVICE_CONFIG_SERVICE_SID_INFO, &sid_info,
                                  "the service SID (SERVICE_SID_TYPE_UNRESTRICTED)");
    SERVICE_REQUIRED_PRIVILEGES_INFOW privs = { (wchar_t *)IMSVC_REQUIRED_PRIVILEGES };
    rc |= config2_least_privilege(svc, SERVICE_CONFIG_REQUIRED_PRIVILEGES_INFO, &privs,
                                  "the required privileges (SeChangeNotifyPrivilege only)");
    if (delayed) {
        SERVICE_DELAYED_AUTO_START_INFO dl = { TRUE };
        if (!ChangeServiceConfig2W(svc, SERVICE_CONFIG_DELAYED_AUTO_START_INFO, &dl)) {
            print_win32_error("cannot set delayed automatic start", GetLastError());
            rc = 1;
        }
    }
    return rc;
}

int installer_prepare_data(void)
{
    int rc = 0;
    HKEY key;
    LSTATUS lrc = RegCreateKeyExW(HKEY_LOCAL_MACHINE, IMSVC_PARAMETERS_KEY, 0, NULL, 0,
                                  KEY_READ, NULL, &key, NULL);
    if (lrc == ERROR_SUCCESS)
        RegCloseKey(key);
    else {
        print_win32_error("cannot create the Parameters key", (DWORD)lrc);
        rc = 1;
    }
    struct imsvc_config cfg;
    config_load(&cfg, NULL);
    struct acl_result ar;
    if (acl_secure_data(&cfg, &ar) != ERROR_SUCCESS) {
        char what[sizeof ar.error_what];
        snprintf(what, sizeof what, "%ls", ar.error_what);
        print_win32_error(what, ar.error);
        rc = 1;
    }
    if (ar.not_kept)
        fprintf(stderr, "imsvc: %u of %u data folders (first: %ls) did not keep the access rights "
                        "set on them: their file system stores none (imsvc acl check shows them)\n",
                ar.not_kept, ar.folders, ar.not_kept_first);
    /* STARTTLS out of the box: a self-signed certificate unless one is set. */
    if (!cfg.certificate[0] && !cfg.certificate_file[0] && cert_make_installed() != 0)
        fprintf(stderr, "imsvc: installed without a certificate: STARTTLS is not offered\n");
    return rc;
}

int installer_install(int argc, char **argv)
{
    DWORD start_type = SERVICE_DEMAND_START;
    BOOL delayed = FALSE;
    wchar_t account[256] = L"", password[256] = L"";
    int have_account = 0, have_password = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--start") == 0 && i + 1 < argc) {
            const char *v = argv[++i];
            if (strcmp(v, "auto") == 0) {
                start_type = SERVICE_AUTO_START;
            } else if (strcmp(v, "demand") == 0) {
                start_type = SERVICE_DEMAND_START;
            } else if (strcmp(v, "delayed") == 0) {
                start_type = SERVICE_AUTO_START;
                delayed = TRUE;
            } else {
                fprintf(stderr, "imsvc: --start takes auto, demand or delayed, not '%s'\n", v);
                return 2;
            }
        } else if (strcmp(argv[i], "--account") == 0 && i + 1 < argc) {
            MultiByteToWideChar(CP_UTF8, 0, argv[++i], -1, account, ARRAYSIZE(account));
            have_account = 1;
        } else if (strcmp(argv[i], "--password-file") == 0 && i + 1 < argc) {
            const char *p = argv[++i];
            if (!read_secret(p, password, ARRAYSIZE(password))) {
                fprintf(stderr, "imsvc: cannot read the password file %s\n", p);
                return 2;
            }
            have_password = 1;
        } else {
            usage_install();
            return 2;
        }
    }
    if (have_password && !have_account) {
        fprintf(stderr, "imsvc: --password-file needs --account\n");
        return 2;
    }
    /* No --account: the virtual account. LocalSystem is the SCM's NULL. */
    if (!have_account) {
        wcscpy(account, VIRTUAL_ACCOUNT);
        have_account = 1;
    } else if (_wcsicmp(account, L"LocalSystem") == 0) {
        have_account = 0;
    }
    if (have_password && (!have_account || _wcsnicmp(account, L"NT SERVICE\\", 11) == 0)) {
        SecureZeroMemory(password, sizeof password);
        fprintf(stderr, "imsvc: --password-file is for a named account; LocalSystem and "
                        "NT SERVICE accounts have no password\n");
        return 2;
    }

    wchar_t exe[MAX_PATH], image[MAX_PATH + 16];
    DWORD n = GetModuleFileNameW(NULL, exe, ARRAYSIZE(exe));
    if (n == 0 || n >= ARRAYSIZE(exe)) {
        print_win32_error("cannot find this executable's path", GetLastError());
        return 1;
    }
    _snwprintf(image, ARRAYSIZE(image), L"\"%ls\" service", exe);
    image[ARRAYSIZE(image) - 1] = 0;

    SC_HANDLE scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CREATE_SERVICE);
    if (!scm) {
        print_win32_error("cannot open the Service Control Manager (run as an administrator)",
                          GetLastError());
        return 1;
    }
    SC_HANDLE svc = CreateServiceW(scm, IMSVC_SERVICE_NAME, IMSVC_DISPLAY_NAME,
                                   SERVICE_ALL_ACCESS, SERVICE_WIN32_OWN_PROCESS, start_type,
                                   SERVICE_ERROR_NORMAL, image, NULL, NULL, L"Tcpip\0\0",
                                   have_account ? account : NULL,
                                   have_password ? password : NULL);
    SecureZeroMemory(password, sizeof password);
    if (!svc) {
        DWORD err = GetLastError();
        if (err == ERROR_SERVICE_EXISTS)
            fprintf(stderr, "imsvc: the IMSvc service is already installed "
                            "(run `imsvc uninstall` first to reinstall)\n");
        else
            print_win32_error("cannot create the IMSvc service", err);
        CloseServiceHandle(scm);
        return 1;
    }

    int rc = installer_service_settings(svc, delayed);
    rc |= installer_prepare_data();
    DWORD erc = evlog_register_source(exe);
    if (erc != ERROR_SUCCESS) {
        print_win32_error("cannot register the IMSvc event source", erc);
        rc = 1;
    }
    CloseServiceHandle(svc);
    CloseServiceHandle(scm);
    if (rc == 0)
        printf("IMSvc: installed (%ls, start %s) as %ls\n", image,
               delayed ? "delayed" : start_type == SERVICE_AUTO_START ? "auto" : "demand",
               have_account ? account : L"LocalSystem");
    return rc;
}

int installer_uninstall(int argc, char **argv)
{
    (void)argv;
    if (argc > 1) {
        fprintf(stderr, "usage: imsvc uninstall\n");
        return 2;
    }
    SC_HANDLE scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT);
    if (!scm) {
        print_win32_error("cannot open the Service Control Manager", GetLastError());
        return 1;
    }
    SC_HANDLE svc = OpenServiceW(scm, IMSVC_SERVICE_NAME,
                                 DELETE | SERVICE_STOP | SERVICE_QUERY_STATUS);
    if (!svc) {
        DWORD err = GetLastError();
        if (err == ERROR_SERVICE_DOES_NOT_EXIST)
            fprintf(stderr, "imsvc: the IMSvc service is not installed; nothing to uninstall\n");
        else
            print_win32_error("cannot open the IMSvc service", err);
        CloseServiceHandle(scm);
        return 1;
    }
    SERVICE_STATUS ss;
    if (QueryServiceStatus(svc, &ss) && ss.dwCurrentState != SERVICE_STOPPED) {
        CloseServiceHandle(svc);
        CloseServiceHandle(scm);
        if (control_stop() != 0) {
            fprintf(stderr, "imsvc: the service did not stop; not uninstalled\n");
            return 1;
        }
        scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT);
        svc = scm ? OpenServiceW(scm, IMSVC_SERVICE_NAME, DELETE) : NULL;
        if (!svc) {
            print_win32_error("cannot reopen the IMSvc service", GetLastError());
            if (scm)
                CloseServiceHandle(scm);
            return 1;
        }
    }
    /* What install made beside the service, read before Parameters goes. */
    int rc = cert_remove_installed();
    HRESULT fhr = fw_rule_remove();
    if (FAILED(fhr)) {
        fprintf(stderr, "imsvc: cannot remove the firewall rule '%ls' (0x%08lX); "
                        "`imsvc firewall remove` tries again\n", FW_RULE_NAME, (unsigned long)fhr);
        rc = 1;
    }
    if (!DeleteService(svc)) {
        print_win32_error("cannot delete the IMSvc service", GetLastError());
        rc = 1;
    }
    CloseServiceHandle(svc);
    CloseServiceHandle(scm);
    RegDeleteTreeW(HKEY_LOCAL_MACHINE, IMSVC_PARAMETERS_KEY);
    DWORD erc = evlog_unregister_source();
    if (erc != ERROR_SUCCESS && erc != ERROR_FILE_NOT_FOUND) {
        print_win32_error("cannot remove the IMSvc event source", erc);
        rc = 1;
    }
    if (rc == 0)
        printf("IMSvc: uninstalled (the data directory and its journal are kept)\n");
    return rc;
}
