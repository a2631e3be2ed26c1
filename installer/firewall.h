/* firewall.h - the Windows Firewall rule that lets SMTP clients reach the
 * service, through the firewall's own API (INetFwPolicy2), and `imsvc
 * firewall`.
 *
 * One inbound rule, named FW_RULE_NAME: TCP to ListenPort, for imsvc.exe
 * running as the service IMSvc, in every profile. The MSI adds it when it
 * installs (imsvc msi configure) and removes it when it uninstalls; `imsvc
 * uninstall` removes it too. Every function returns the HRESULT the
 * firewall gave; none prints.
 */
#ifndef IMSVC_FIREWALL_H
#define IMSVC_FIREWALL_H

#include <windows.h>

#define FW_RULE_NAME  L"IMSvc SMTP (TCP in)"
#define FW_RULE_GROUP L"IMSvc"

/* A rule as the firewall reports it back. */
struct fw_rule_info {
    wchar_t application[MAX_PATH];
    wchar_t service[64];
    wchar_t local_ports[64];
    LONG protocol;       /* 6: TCP */
    LONG direction;      /* 1: inbound */
    LONG action;         /* 1: allow */
    LONG profiles;
    int enabled;
};

/* Add (or replace) the rule for exe and port. */
HRESULT fw_rule_add(const wchar_t *exe, DWORD port);

/* Read the rule back by its name. HRESULT_FROM_WIN32(ERROR_FILE_NOT_FOUND)
 * when there is none; E_NOTIMPL from a firewall that cannot look a rule up
 * (Wine's). *count: the number of rules the policy says it holds (-1 when
 * it cannot say). */
HRESULT fw_rule_read(struct fw_rule_info *out, LONG *count);

/* Remove the rule; S_OK also when there was none. */
HRESULT fw_rule_remove(void);

/* Add the rule for this executable and ListenPort and read it back,
 * printing what was done. Returns an exit status. */
int firewall_add_current(void);

/* `imsvc firewall add | remove | show`. */
int firewall_cmd(int argc, char **argv);

#endif
