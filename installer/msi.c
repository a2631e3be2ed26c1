/* msi.c - what the MSI package (installer/imsvc.wxs) asks of imsvc.exe:
 * the parts of an installation its tables cannot say.
 *
 * The package's own tables copy imsvc.exe, create the service
 * (ServiceInstall), register the event source (Registry), and stop, start
 * and delete the service (ServiceControl). Two deferred custom actions run
 * this program for the rest:
 *
 *   imsvc msi configure [--listen-port=N]   after InstallServices, before
 *     StartServices. The configuration an earlier uninstall kept is put
 *     back, ListenPort is set if given, the service's image path is quoted
 *     and its settings made (description, failure actions, service SID,
 *     privileges), the data folders are created with their rights, a
 *     certificate is made if none is configured, and the firewall rule is
 *     added.
 *   imsvc msi remove [--remove-data=1]   after StopServices, before
 *     DeleteServices. It waits until the service has stopped, removes the
 *     firewall rule, and keeps the configuration (Parameters, which
 *     deleting the service deletes) in HKLM\SOFTWARE\IMSvc\Parameters for
 *     the next install. A major upgrade removes the old product before it
 *     installs the new one, and Wine's msi runs that removal without
 *     UPGRADINGPRODUCTCODE, so a removal cannot tell an upgrade from an
 *     uninstall: it always keeps. With --remove-data=1 (msiexec /x ...
 *     REMOVEDATA=1) it removes instead the certificate the installation
 *     made, the kept configuration and the data directory (queue, journal,
 *     Drop, Pickup, Badmail).
 *
 * This module never creates or deletes the service: the tables own it.
 */
#include <stdio.h>
#include <string.h>
#include <wchar.h>
#include <windows.h>
#include <shellapi.h>
#include <shlwapi.h>

#include "acl.h"
#include "cmd_cert.h"
#include "config.h"
#include "firewall.h"
#include "installer.h"
#include "service.h"

#define MSI_KEPT_PARENT  L"SOFTWARE\\IMSvc"
#define MSI_KEPT_KEY     MSI_KEPT_PARENT L"\\Parameters"
#define MSI_STOP_WAIT_MS 30000
#define MSI_POLL_MS      200

/* "--name=value": the value, or NULL when arg is not that option. */
static const char *option_value(const char *arg, const char *name)
{
    size_t n = strlen(name);
    return strncmp(arg, name, n) == 0 && arg[n] == '=' ? arg + n + 1 : NULL;
}

static int key_exists(const wchar_t *path)
{
    HKEY k;
    if (RegOpenKeyExW(HKEY_LOCAL_MACHINE, path, 0, KEY_READ, &k) != ERROR_SUCCESS)
        return 0;
    RegCloseKey(k);
    return 1;
}

/* Copy Parameters, secrets included, to the kept key, which only SYSTEM,
 * Administrators and the service may read (acl_secure_key). */
static DWORD kept_save(int *saved)
{
    *saved = 0;
    HKEY src, parent, dst;
    LSTATUS rc = RegOpenKeyExW(HKEY_LOCAL_MACHINE, IMSVC_PARAMETERS_KEY, 0, KEY_READ, &src);
    if (rc == ERROR_FILE_NOT_FOUND)
        return ERROR_SUCCESS;
    if (rc != ERROR_SUCCESS)
        return (DWORD)rc;
    rc = RegCreateKeyExW(HKEY_LOCAL_MACHINE, MSI_KEPT_PARENT, 0, NULL, 0, KEY_ALL_ACCESS, NULL,
                         &parent, NULL);
    if (rc == ERROR_SUCCESS) {
        rc = (LSTATUS)acl_secure_key(parent);
        if (rc == ERROR_SUCCESS) {
            RegDeleteTreeW(parent, L"Parameters");   /* an older copy goes */
            rc = RegCreateKeyExW(parent, L"Parameters", 0, NULL, 0, KEY_ALL_ACCESS, NULL, &dst,
                                 NULL);
        }
        if (rc == ERROR_SUCCESS) {
            rc = RegCopyTreeW(src, NULL, dst);
            RegCloseKey(dst);
        }
        RegCloseKey(parent);
    }
    RegCloseKey(src);
    if (rc == ERROR_SUCCESS)
        *saved = 1;
    return (DWORD)rc;
}

/* Put the kept configuration back as Parameters, unless Parameters already
 * exists (an installation's own configuration wins), and drop the copy. */
static DWORD kept_restore(int *restored)
{
    *restored = 0;
    HKEY kept, dst;
    LSTATUS rc = RegOpenKeyExW(HKEY_LOCAL_MACHINE, MSI_KEPT_KEY, 0, KEY_READ, &kept);
    if (rc == ERROR_FILE_NOT_FOUND)
        return ERROR_SUCCESS;
    if (rc != ERROR_SUCCESS)
        return (DWORD)rc;
    if (key_exists(IMSVC_PARAMETERS_KEY)) {
        RegCloseKey(kept);
        return ERROR_SUCCESS;
    }
    rc = RegCreateKeyExW(HKEY_LOCAL_MACHINE, IMSVC_PARAMETERS_KEY, 0, NULL, 0, KEY_ALL_ACCESS,
                         NULL, &dst, NULL);
    if (rc == ERROR_SUCCESS) {
        rc = RegCopyTreeW(kept, NULL, dst);
        /* The copy carries the kept key's rights; Secrets gets its own. */
        HKEY sec;
        if (rc == ERROR_SUCCESS &&
            RegOpenKeyExW(dst, L"Secrets", 0, KEY_READ | WRITE_DAC, &sec) == ERROR_SUCCESS) {
            rc = (LSTATUS)acl_secure_key(sec);
            RegCloseKey(sec);
        }
        RegCloseKey(dst);
    }
    RegCloseKey(kept);
    if (rc == ERROR_SUCCESS) {
        RegDeleteTreeW(HKEY_LOCAL_MACHINE, MSI_KEPT_PARENT);
        *restored = 1;
    }
    return (DWORD)rc;
}

/* Wine's StopServices asks the service to stop and does not wait: the
 * program must not be removed while it still runs. */
static int wait_stopped(void)
{
    SC_HANDLE scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT);
    SC_HANDLE svc = scm ? OpenServiceW(scm, IMSVC_SERVICE_NAME,
                                       SERVICE_QUERY_STATUS | SERVICE_STOP) : NULL;
    int rc = 0;
    if (svc) {
        SERVICE_STATUS ss;
        DWORD waited = 0;
        for (;;) {
            if (!QueryServiceStatus(svc, &ss) || ss.dwCurrentState == SERVICE_STOPPED)
                break;
            if (ss.dwCurrentState == SERVICE_RUNNING || ss.dwCurrentState == SERVICE_PAUSED)
                ControlService(svc, SERVICE_CONTROL_STOP, &ss);
            if (waited >= MSI_STOP_WAIT_MS) {
                fprintf(stderr, "imsvc: msi remove: the service has not stopped after %u s\n",
                        MSI_STOP_WAIT_MS / 1000);
                rc = 1;
                break;
            }
            Sleep(MSI_POLL_MS);
            waited += MSI_POLL_MS;
        }
        CloseServiceHandle(svc);
    }
    if (scm)
        CloseServiceHandle(scm);
    return rc;
}

/* Delete the data directory and all below it. Refuses a drive's root. */
static int remove_data_dir(const wchar_t *dir)
{
    size_t len = wcslen(dir);
    if (len < 4 || len >= MAX_PATH || PathIsRootW(dir) || PathIsRelativeW(dir)) {
        fprintf(stderr, "imsvc: msi remove: will not delete '%ls' as the data directory\n", dir);
        return 1;
    }
    if (GetFileAttributesW(dir) == INVALID_FILE_ATTRIBUTES) {
        printf("IMSvc: the data directory %ls is already gone\n", dir);
        return 0;
    }
    wchar_t from[MAX_PATH + 2];
    wmemcpy(from, dir, len);
    from[len] = 0;
    from[len + 1] = 0;   /* SHFileOperation's list ends with two NULs */
    SHFILEOPSTRUCTW op = { 0 };
    op.wFunc = FO_DELETE;
    op.pFrom = from;
    op.fFlags = FOF_NO_UI;
    int r = SHFileOperationW(&op);
    if (r != 0 || op.fAnyOperationsAborted || GetFileAttributesW(dir) != INVALID_FILE_ATTRIBUTES) {
        fprintf(stderr, "imsvc: msi remove: cannot delete the data directory %ls (error %d)\n",
                dir, r);
        return 1;
    }
    printf("IMSvc: deleted the data directory %ls (queue, journal, Drop, Pickup, Badmail)\n", dir);
    return 0;
}

static int msi_configure(const char *listen_port)
{
    int rc = 0, restored = 0;
    DWORD err = kept_restore(&restored);
    if (err != ERROR_SUCCESS) {
        print_win32_error("cannot put back the configuration the last uninstall kept", err);
        rc = 1;
    } else if (restored) {
        printf("IMSvc: the configuration the last uninstall kept is in place again\n");
    }
    if (listen_port && listen_port[0]) {
        wchar_t value[16], why[256] = L"";
        if (MultiByteToWideChar(CP_UTF8, 0, listen_port, -1, value, ARRAYSIZE(value)) <= 0 ||
            config_set(L"ListenPort", value, why, ARRAYSIZE(why)) != ERROR_SUCCESS) {
            fprintf(stderr, "imsvc: msi configure: LISTENPORT: %ls\n",
                    why[0] ? why : L"the value is too long");
            return 1;
        }
    }
    wchar_t exe[MAX_PATH], image[MAX_PATH + 16];
    DWORD n = GetModuleFileNameW(NULL, exe, ARRAYSIZE(exe));
    if (n == 0 || n >= ARRAYSIZE(exe)) {
        print_win32_error("cannot find this executable's path", GetLastError());
        return 1;
    }
    if (_snwprintf(image, ARRAYSIZE(image), L"\"%ls\" service", exe) < 0) {
        fprintf(stderr, "imsvc: msi configure: the program's path is too long\n");
        return 1;
    }
    image[ARRAYSIZE(image) - 1] = 0;
    SC_HANDLE scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT);
    SC_HANDLE svc = scm ? OpenServiceW(scm, IMSVC_SERVICE_NAME,
                                       SERVICE_CHANGE_CONFIG | SERVICE_QUERY_CONFIG) : NULL;
    if (!svc) {
        print_win32_error("cannot open the IMSvc service the package's ServiceInstall table made",
                          GetLastError());
        rc = 1;
    } else {
        /* The image path as the package wrote it is the path and the
         * argument unquoted (Wine's msi does so): under Program Files the
         * service would start as "C:\Program". Quoted, it is one name. */
        if (!ChangeServiceConfigW(svc, SERVICE_NO_CHANGE, SERVICE_NO_CHANGE, SERVICE_NO_CHANGE,
                                  image, NULL, NULL, L"Tcpip\0", NULL, NULL, NULL)) {
            print_win32_error("cannot set the service's image path", GetLastError());
            rc = 1;
        }
        rc |= installer_service_settings(svc, FALSE);
        CloseServiceHandle(svc);
    }
    if (scm)
        CloseServiceHandle(scm);
    rc |= installer_prepare_data();
    rc |= firewall_add_current();
    if (rc == 0)
        printf("IMSvc: configured for the MSI package (%ls)\n", image);
    return rc;
}

static int msi_remove(int remove_data)
{
    struct imsvc_config cfg;
    config_load(&cfg, NULL);   /* before Parameters goes with the service */
    int rc = wait_stopped();
    HRESULT hr = fw_rule_remove();
    if (FAILED(hr)) {
        fprintf(stderr, "imsvc: cannot remove the firewall rule '%ls' (0x%08lX)\n", FW_RULE_NAME,
                (unsigned long)hr);
        rc = 1;
    }
    if (!remove_data) {
        int saved;
        DWORD err = kept_save(&saved);
        if (err != ERROR_SUCCESS) {
            print_win32_error("cannot keep the configuration for the next install", err);
            rc = 1;
        } else if (saved) {
            printf("IMSvc: the configuration is kept in HKLM\\%ls for the next install\n",
                   MSI_KEPT_KEY);
        }
        printf("IMSvc: the data directory %ls (queue, journal) is kept\n", cfg.data_dir);
        return rc;
    }
    rc |= cert_remove_installed();
    LSTATUS lrc = RegDeleteTreeW(HKEY_LOCAL_MACHINE, MSI_KEPT_PARENT);
    if (lrc != ERROR_SUCCESS && lrc != ERROR_FILE_NOT_FOUND) {
        print_win32_error("cannot delete the kept configuration", (DWORD)lrc);
        rc = 1;
    }
    rc |= remove_data_dir(cfg.data_dir);
    return rc;
}

int msi_cmd(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "configure") == 0) {
        const char *port = NULL;
        for (int i = 2; i < argc; i++)
            if (!(port = option_value(argv[i], "--listen-port")))
                goto usage;
        return msi_configure(port);
    }
    if (argc >= 2 && strcmp(argv[1], "remove") == 0) {
        const char *v = NULL;
        for (int i = 2; i < argc; i++)
            if (!(v = option_value(argv[i], "--remove-data")))
                goto usage;
        return msi_remove(v && strcmp(v, "1") == 0);
    }
usage:
    fprintf(stderr, "usage: imsvc msi configure [--listen-port=N] | "
                    "imsvc msi remove [--remove-data=1]\n"
                    "       (run by the MSI package's custom actions)\n");
    return 2;
}
