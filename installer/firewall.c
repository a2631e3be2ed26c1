/* firewall.c - the inbound firewall rule for the SMTP listener (see
 * firewall.h), through INetFwPolicy2.
 *
 * The rule is always read back after it is added, so that a firewall that
 * accepts a rule without keeping it is said plainly rather than taken on
 * trust. This module never opens more than the one port the service
 * listens on, and never changes the firewall's own state (enabled,
 * profiles, default actions).
 */
#define COBJMACROS
#include <stdio.h>
#include <string.h>
#include <wchar.h>
#include <windows.h>
#include <netfw.h>
#include <oleauto.h>

#include "config.h"
#include "firewall.h"
#include "service.h"

#define FW_RULE_DESCRIPTION L"Lets SMTP clients reach the Internet Mail Service (IMSvc)."

/* The classes and interfaces, spelled here so no import library has to
 * carry them (netfw.h only declares them). */
static const GUID fw_clsid_policy2 = { 0xe2b3c97f, 0x6ae1, 0x41ac,
                                       { 0x81, 0x7a, 0xf6, 0xf9, 0x21, 0x66, 0xd7, 0xdd } };
static const GUID fw_iid_policy2 = { 0x98325047, 0xc671, 0x4174,
                                     { 0x8d, 0x81, 0xde, 0xfc, 0xd3, 0xf0, 0x31, 0x86 } };
static const GUID fw_clsid_rule = { 0x2c5bc43e, 0x3369, 0x4c33,
                                    { 0xab, 0x0c, 0xbe, 0x94, 0x69, 0x67, 0x7a, 0xf4 } };
static const GUID fw_iid_rule = { 0xaf230d27, 0xbaba, 0x4e42,
                                  { 0xac, 0xed, 0xf5, 0x24, 0xf2, 0x2c, 0xfc, 0xe2 } };

struct fw_session {
    int com_owned;
    INetFwPolicy2 *policy;
    INetFwRules *rules;
};

static void fw_close(struct fw_session *s)
{
    if (s->rules)
        INetFwRules_Release(s->rules);
    if (s->policy)
        INetFwPolicy2_Release(s->policy);
    if (s->com_owned)
        CoUninitialize();
    memset(s, 0, sizeof *s);
}

static HRESULT fw_open(struct fw_session *s)
{
    memset(s, 0, sizeof *s);
    HRESULT hr = CoInitializeEx(NULL, COINIT_APARTMENTTHREADED);
    if (SUCCEEDED(hr))
        s->com_owned = 1;
    else if (hr != RPC_E_CHANGED_MODE)
        return hr;
    hr = CoCreateInstance(&fw_clsid_policy2, NULL, CLSCTX_INPROC_SERVER, &fw_iid_policy2,
                          (void **)&s->policy);
    if (SUCCEEDED(hr))
        hr = INetFwPolicy2_get_Rules(s->policy, &s->rules);
    if (FAILED(hr))
        fw_close(s);
    return hr;
}

/* Set one string property; the BSTR is the callee's to copy. */
static HRESULT put_str(INetFwRule *r, HRESULT (*put)(INetFwRule *, BSTR), const wchar_t *v)
{
    BSTR b = SysAllocString(v);
    if (!b)
        return E_OUTOFMEMORY;
    HRESULT hr = put(r, b);
    SysFreeString(b);
    return hr;
}

static HRESULT put_name(INetFwRule *r, BSTR b) { return INetFwRule_put_Name(r, b); }
static HRESULT put_desc(INetFwRule *r, BSTR b) { return INetFwRule_put_Description(r, b); }
static HRESULT put_app(INetFwRule *r, BSTR b) { return INetFwRule_put_ApplicationName(r, b); }
static HRESULT put_svc(INetFwRule *r, BSTR b) { return INetFwRule_put_ServiceName(r, b); }
static HRESULT put_ports(INetFwRule *r, BSTR b) { return INetFwRule_put_LocalPorts(r, b); }
static HRESULT put_group(INetFwRule *r, BSTR b) { return INetFwRule_put_Grouping(r, b); }

HRESULT fw_rule_remove(void)
{
    struct fw_session s;
    HRESULT hr = fw_open(&s);
    if (FAILED(hr))
        return hr;
    BSTR name = SysAllocString(FW_RULE_NAME);
    hr = name ? INetFwRules_Remove(s.rules, name) : E_OUTOFMEMORY;
    SysFreeString(name);
    fw_close(&s);
    if (hr == HRESULT_FROM_WIN32(ERROR_FILE_NOT_FOUND))
        hr = S_OK;
    return hr;
}

HRESULT fw_rule_add(const wchar_t *exe, DWORD port)
{
    wchar_t ports[16];
    if (_snwprintf(ports, ARRAYSIZE(ports), L"%lu", (unsigned long)port) < 0)
        return E_INVALIDARG;
    ports[ARRAYSIZE(ports) - 1] = 0;
    /* A rule of the same name from an earlier install goes first: Add
     * would otherwise keep both. */
    HRESULT hr = fw_rule_remove();
    if (FAILED(hr))
        return hr;
    struct fw_session s;
    if (FAILED(hr = fw_open(&s)))
        return hr;
    INetFwRule *r = NULL;
    hr = CoCreateInstance(&fw_clsid_rule, NULL, CLSCTX_INPROC_SERVER, &fw_iid_rule, (void **)&r);
    if (SUCCEEDED(hr)) hr = put_str(r, put_name, FW_RULE_NAME);
    if (SUCCEEDED(hr)) hr = put_str(r, put_desc, FW_RULE_DESCRIPTION);
    if (SUCCEEDED(hr)) hr = put_str(r, put_app, exe);
    if (SUCCEEDED(hr)) hr = put_str(r, put_svc, IMSVC_SERVICE_NAME);
    if (SUCCEEDED(hr)) hr = INetFwRule_put_Protocol(r, NET_FW_IP_PROTOCOL_TCP);
    if (SUCCEEDED(hr)) hr = put_str(r, put_ports, ports);
    if (SUCCEEDED(hr)) hr = INetFwRule_put_Direction(r, NET_FW_RULE_DIR_IN);
    if (SUCCEEDED(hr)) hr = INetFwRule_put_Action(r, NET_FW_ACTION_ALLOW);
    if (SUCCEEDED(hr)) hr = INetFwRule_put_Profiles(r, NET_FW_PROFILE2_ALL);
    if (SUCCEEDED(hr)) hr = put_str(r, put_group, FW_RULE_GROUP);
    if (SUCCEEDED(hr)) hr = INetFwRule_put_Enabled(r, VARIANT_TRUE);
    if (SUCCEEDED(hr)) hr = INetFwRules_Add(s.rules, r);
    if (r)
        INetFwRule_Release(r);
    fw_close(&s);
    return hr;
}

/* A string property into a fixed buffer; empty when the firewall has none. */
static void get_str(INetFwRule *r, HRESULT (*get)(INetFwRule *, BSTR *), wchar_t *out, size_t cap)
{
    BSTR b = NULL;
    out[0] = 0;
    if (SUCCEEDED(get(r, &b)) && b)
        _snwprintf(out, cap, L"%ls", b);
    out[cap - 1] = 0;
    SysFreeString(b);
}

static HRESULT get_app(INetFwRule *r, BSTR *b) { return INetFwRule_get_ApplicationName(r, b); }
static HRESULT get_svc(INetFwRule *r, BSTR *b) { return INetFwRule_get_ServiceName(r, b); }
static HRESULT get_ports(INetFwRule *r, BSTR *b) { return INetFwRule_get_LocalPorts(r, b); }

HRESULT fw_rule_read(struct fw_rule_info *out, LONG *count)
{
    memset(out, 0, sizeof *out);
    *count = -1;
    struct fw_session s;
    HRESULT hr = fw_open(&s);
    if (FAILED(hr))
        return hr;
    if (FAILED(INetFwRules_get_Count(s.rules, count)))
        *count = -1;
    BSTR name = SysAllocString(FW_RULE_NAME);
    INetFwRule *r = NULL;
    hr = name ? INetFwRules_Item(s.rules, name, &r) : E_OUTOFMEMORY;
    SysFreeString(name);
    if (SUCCEEDED(hr) && r) {
        get_str(r, get_app, out->application, ARRAYSIZE(out->application));
        get_str(r, get_svc, out->service, ARRAYSIZE(out->service));
        get_str(r, get_ports, out->local_ports, ARRAYSIZE(out->local_ports));
        NET_FW_RULE_DIRECTION dir = 0;
        NET_FW_ACTION act = 0;
        VARIANT_BOOL en = VARIANT_FALSE;
        INetFwRule_get_Protocol(r, &out->protocol);
        INetFwRule_get_Direction(r, &dir);
        INetFwRule_get_Action(r, &act);
        INetFwRule_get_Profiles(r, &out->profiles);
        INetFwRule_get_Enabled(r, &en);
        out->direction = (LONG)dir;
        out->action = (LONG)act;
        out->enabled = en == VARIANT_TRUE;
        INetFwRule_Release(r);
    } else if (SUCCEEDED(hr)) {
        hr = E_POINTER;
    }
    fw_close(&s);
    return hr;
}

/* `imsvc firewall` ------------------------------------------------------- */

static void print_hresult(const char *what, HRESULT hr)
{
    wchar_t msg[256];
    DWORD n = FormatMessageW(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL,
                             (DWORD)hr, 0, msg, ARRAYSIZE(msg), NULL);
    while (n > 0 && (msg[n - 1] == L'\n' || msg[n - 1] == L'\r' || msg[n - 1] == L' '))
        msg[--n] = 0;
    fprintf(stderr, "imsvc: %s: %ls (0x%08lX)\n", what, n ? msg : L"no text for this status",
            (unsigned long)hr);
}

/* Print the rule as read back; 0 when it matches exe and port (NULL, 0:
 * anything), 1 when it does not or cannot be read. */
static int firewall_show(const wchar_t *exe, DWORD port)
{
    struct fw_rule_info info;
    LONG count;
    HRESULT hr = fw_rule_read(&info, &count);
    if (hr == E_NOTIMPL) {
        printf("firewall rule '%ls': this firewall cannot look a rule up "
               "(INetFwRules::Item: E_NOTIMPL, 0x%08lX); it counts %ld rules in its policy\n",
               FW_RULE_NAME, (unsigned long)hr, (long)count);
        return 1;
    }
    if (hr == HRESULT_FROM_WIN32(ERROR_FILE_NOT_FOUND)) {
        printf("firewall rule '%ls': none\n", FW_RULE_NAME);
        return 1;
    }
    if (FAILED(hr)) {
        print_hresult("cannot read the firewall rule", hr);
        return 1;
    }
    printf("firewall rule '%ls':\n"
           "  program   %ls\n  service   %ls\n  protocol  %ld%s\n  ports     %ls\n"
           "  direction %s\n  action    %s\n  enabled   %s\n  profiles  0x%08lX\n",
           FW_RULE_NAME, info.application, info.service, (long)info.protocol,
           info.protocol == NET_FW_IP_PROTOCOL_TCP ? " (TCP)" : "", info.local_ports,
           info.direction == NET_FW_RULE_DIR_IN ? "in" : "out",
           info.action == NET_FW_ACTION_ALLOW ? "allow" : "block", info.enabled ? "yes" : "no",
           (unsigned long)info.profiles);
    if (!exe)
        return 0;
    wchar_t want[16];
    _snwprintf(want, ARRAYSIZE(want), L"%lu", (unsigned long)port);
    want[ARRAYSIZE(want) - 1] = 0;
    if (_wcsicmp(info.application, exe) != 0 || wcscmp(info.local_ports, want) != 0 ||
        info.protocol != NET_FW_IP_PROTOCOL_TCP || info.direction != NET_FW_RULE_DIR_IN ||
        info.action != NET_FW_ACTION_ALLOW || !info.enabled) {
        fprintf(stderr, "imsvc: the firewall holds a rule that differs from the one added "
                        "(TCP port %ls in, for %ls)\n", want, exe);
        return 1;
    }
    return 0;
}

/* Add the rule for this executable and ListenPort, then read it back.
 * Returns an exit status: a rule that reads back different fails; a
 * firewall that cannot read rules back is said, and is not a failure. */
int firewall_add_current(void)
{
    wchar_t exe[MAX_PATH];
    DWORD n = GetModuleFileNameW(NULL, exe, ARRAYSIZE(exe));
    if (n == 0 || n >= ARRAYSIZE(exe)) {
        print_win32_error("cannot find this executable's path", GetLastError());
        return 1;
    }
    struct imsvc_config cfg;
    config_load(&cfg, NULL);
    HRESULT hr = fw_rule_add(exe, cfg.listen_port);
    if (FAILED(hr)) {
        print_hresult("cannot add the firewall rule", hr);
        return 1;
    }
    printf("IMSvc: added the firewall rule '%ls': TCP port %lu in, for %ls (service %ls)\n",
           FW_RULE_NAME, (unsigned long)cfg.listen_port, exe, IMSVC_SERVICE_NAME);
    struct fw_rule_info info;
    LONG count;
    hr = fw_rule_read(&info, &count);
    if (hr == E_NOTIMPL) {
        printf("IMSvc: the firewall accepted the rule but cannot show it back "
               "(INetFwRules::Item: E_NOTIMPL; it counts %ld rules): not verified\n", (long)count);
        return 0;
    }
    return firewall_show(exe, cfg.listen_port);
}

int firewall_cmd(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "add") == 0)
        return firewall_add_current();
    if (argc == 2 && strcmp(argv[1], "show") == 0)
        return firewall_show(NULL, 0);
    if (argc == 2 && strcmp(argv[1], "remove") == 0) {
        HRESULT hr = fw_rule_remove();
        if (FAILED(hr)) {
            print_hresult("cannot remove the firewall rule", hr);
            return 1;
        }
        printf("IMSvc: the firewall rule '%ls' is gone\n", FW_RULE_NAME);
        return 0;
    }
    fprintf(stderr, "usage: imsvc firewall add | remove | show\n");
    return 2;
}
