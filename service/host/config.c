/* config.c - the Parameters table: names, types, defaults and checks.
 *
 * Adding a value is one row in config_table and a field in imsvc_config.
 * Reading never fails the service for one bad value: it keeps that value's
 * default and says which value was bad, so the caller can report it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <wchar.h>
#include <wctype.h>
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#include <shlobj.h>

#include "acl.h"
#include "config.h"
#include "retry.h"
#include "tls.h"
#include "route.h"
#include "secret.h"

enum cfg_type { CFG_STR, CFG_DWORD, CFG_MULTI };

typedef DWORD (*cfg_check_fn)(const wchar_t *text, wchar_t *why, size_t why_len);

struct cfg_entry {
    const wchar_t *name;
    enum cfg_type type;
    size_t offset;          /* into struct imsvc_config */
    size_t len;             /* wchar_t count for strings */
    DWORD min, max;         /* for DWORDs */
    cfg_check_fn check;     /* for strings; NULL accepts anything that fits */
};

static DWORD check_abs_path(const wchar_t *t, wchar_t *why, size_t n);
static DWORD check_ip(const wchar_t *t, wchar_t *why, size_t n);
static DWORD check_host(const wchar_t *t, wchar_t *why, size_t n);
static DWORD check_domains(const wchar_t *t, wchar_t *why, size_t n);
static DWORD check_opt_path(const wchar_t *t, wchar_t *why, size_t n);
static DWORD check_ranges(const wchar_t *t, wchar_t *why, size_t n);
static DWORD check_smart_host(const wchar_t *t, wchar_t *why, size_t n);
static DWORD check_duration(const wchar_t *t, wchar_t *why, size_t n);
static DWORD check_durations(const wchar_t *t, wchar_t *why, size_t n);
static DWORD check_account(const wchar_t *t, wchar_t *why, size_t n);
static DWORD check_ndr_content(const wchar_t *t, wchar_t *why, size_t n);
static DWORD check_mechs(const wchar_t *t, wchar_t *why, size_t n);
static DWORD check_opt_ip(const wchar_t *t, wchar_t *why, size_t n);
static DWORD check_opt_host(const wchar_t *t, wchar_t *why, size_t n);
static const struct config_lists *lists_parse(const struct imsvc_config *cfg);
static DWORD read_routes(struct imsvc_config *cfg);
static void say(wchar_t *why, size_t n, const wchar_t *fmt, ...);

#define FIELD(f) offsetof(struct imsvc_config, f), \
                 sizeof(((struct imsvc_config *)0)->f) / sizeof(wchar_t)
#define DWFIELD(f) offsetof(struct imsvc_config, f), 0

static const struct cfg_entry config_table[] = {
    { L"DataDirectory",  CFG_STR,   FIELD(data_dir),         0, 0,       check_abs_path },
    { L"JournalMaxKB",   CFG_DWORD, DWFIELD(journal_max_kb), 64, 65536,  NULL },
    { L"ListenAddress",  CFG_STR,   FIELD(listen_address),   0, 0,       check_ip },
    { L"ListenPort",     CFG_DWORD, DWFIELD(listen_port),    1, 65535,   NULL },
    { L"HostName",       CFG_STR,   FIELD(host_name),        0, 0,       check_host },
    { L"LocalDomains",   CFG_MULTI, FIELD(local_domains),    0, 0,       check_domains },
    { L"AddressMapFile", CFG_STR,   FIELD(address_map_file), 0, 0,       check_opt_path },
    { L"RewriteHeaders", CFG_DWORD, DWFIELD(rewrite_headers), 0, 1,      NULL },
    { L"RelayAddresses", CFG_MULTI, FIELD(relay_addresses),  0, 0,       check_ranges },
    { L"MaxSessions",    CFG_DWORD, DWFIELD(max_sessions),   1, 100000,  NULL },
    { L"MaxSessionsPerAddress", CFG_DWORD, DWFIELD(max_sessions_per_address), 1, 100000, NULL },
    { L"IoThreads",      CFG_DWORD, DWFIELD(io_threads),     0, 64,      NULL },
    { L"InactivityTimeout", CFG_DWORD, DWFIELD(inactivity_timeout), 1, 86400, NULL },
    { L"DataTimeout",    CFG_DWORD, DWFIELD(data_timeout),   1, 86400,   NULL },
    { L"MinDataRate",    CFG_DWORD, DWFIELD(min_data_rate),  0, 1000000000, NULL },
    { L"SendTimeout",    CFG_DWORD, DWFIELD(send_timeout),   1, 86400,   NULL },
    { L"MaxProtocolErrors", CFG_DWORD, DWFIELD(max_protocol_errors), 1, 1000, NULL },
    { L"AuthRequiresTls", CFG_DWORD, DWFIELD(auth_requires_tls), 0, 1,   NULL },
    { L"MaxMessageKB",   CFG_DWORD, DWFIELD(max_message_kb), 64, 1048576, NULL },
    { L"XAuth",          CFG_DWORD, DWFIELD(xauth),          0, 2,       NULL },
    { L"Certificate",    CFG_STR,   FIELD(certificate),      0, 0,       NULL },
    { L"CertificateStore", CFG_STR, FIELD(certificate_store), 0, 0,      NULL },
    { L"CertificateFile", CFG_STR,  FIELD(certificate_file), 0, 0,       check_opt_path },
    { L"CertificatePasswordFile", CFG_STR, FIELD(certificate_password_file), 0, 0, check_opt_path },
    { L"TlsMinVersion",  CFG_DWORD, DWFIELD(tls_min_version), 10, 13,    NULL },
    { L"TlsMinCipherBits", CFG_DWORD, DWFIELD(tls_min_cipher_bits), 40, 512, NULL },
    { L"TlsAeadOnly",    CFG_DWORD, DWFIELD(tls_aead_only),  0, 1,       NULL },
    { L"NtlmMinKeyBits", CFG_DWORD, DWFIELD(ntlm_min_key_bits), 40, 256, NULL },
    { L"SmartHost",      CFG_STR,   FIELD(smart_host),       0, 0,       check_smart_host },
    { L"SmartHostTls",   CFG_DWORD, DWFIELD(smart_host_tls), 0, 2,       NULL },
    { L"SmartHostTrust", CFG_DWORD, DWFIELD(smart_host_trust), 0, 1,     NULL },
    { L"SmartHostAuth",  CFG_DWORD, DWFIELD(smart_host_auth), 0, 2,      NULL },
    { L"SmartHostAuthMechanisms", CFG_STR, FIELD(smart_host_mechs), 0, 0, check_mechs },
    { L"SmartHostUser",  CFG_STR,   FIELD(smart_host_user),  0, 0,       NULL },
    { L"SmartHostPasswordFile", CFG_STR, FIELD(smart_host_password_file), 0, 0, check_opt_path },
    { L"OutboundPort",   CFG_DWORD, DWFIELD(outbound_port),  1, 65535,   NULL },
    { L"MaxOutbound",    CFG_DWORD, DWFIELD(max_outbound),   1, 1000,    NULL },
    { L"MaxPerDestination", CFG_DWORD, DWFIELD(max_per_destination), 1, 1000, NULL },
    { L"RetryIntervals", CFG_STR,   FIELD(retry_intervals),  0, 0,       check_durations },
    { L"RetryEvery",     CFG_STR,   FIELD(retry_every),      0, 0,       check_duration },
    { L"DelayNotice",    CFG_STR,   FIELD(delay_notice),     0, 0,       check_duration },
    { L"Expire",         CFG_STR,   FIELD(expire),           0, 0,       check_duration },
    { L"ContentFilter",  CFG_STR,   FIELD(content_filter),   0, 0,       NULL },
    /* least privilege */
    { L"PickupWriters",  CFG_STR,   FIELD(pickup_writers),   0, 0,       check_account },
    { L"DropReaders",    CFG_STR,   FIELD(drop_readers),     0, 0,       check_account },
    { L"NdrContent",     CFG_STR,   FIELD(ndr_content),      0, 0,       check_ndr_content },
    /* the protocol log and the message tracking log (docs/logs.md) */
    { L"ProtocolLog",    CFG_DWORD, DWFIELD(protocol_log),   0, 1,       NULL },
    { L"TrackingLog",    CFG_DWORD, DWFIELD(tracking_log),   0, 1,       NULL },
    { L"LogRetentionDays", CFG_DWORD, DWFIELD(log_retention_days), 1, 3650, NULL },
    /* the submission listeners, limits, Drop files and the outbound envelope */
    { L"SubmissionAddress", CFG_STR, FIELD(submission_address), 0, 0,    check_opt_ip },
    { L"SubmissionPort", CFG_DWORD, DWFIELD(submission_port), 0, 65535,  NULL },
    { L"SubmissionTlsAddress", CFG_STR, FIELD(submission_tls_address), 0, 0, check_opt_ip },
    { L"SubmissionTlsPort", CFG_DWORD, DWFIELD(submission_tls_port), 0, 65535, NULL },
    { L"MaxRecipients",  CFG_DWORD, DWFIELD(max_recipients), 1, 1000,    NULL },
    { L"MaxMessagesPerConnection", CFG_DWORD, DWFIELD(max_messages_per_connection), 0, 1000000, NULL },
    { L"MaxHops",        CFG_DWORD, DWFIELD(max_hops),       1, 1000,    NULL },
    { L"MasqueradeDomain", CFG_STR, FIELD(masquerade_domain), 0, 0,      check_opt_host },
    { L"ReverseDns",     CFG_DWORD, DWFIELD(reverse_dns),    0, 1,       NULL },
    { L"ReverseDnsTimeoutMs", CFG_DWORD, DWFIELD(reverse_dns_timeout_ms), 100, 30000, NULL },
    { L"DropEnvelopeLines", CFG_DWORD, DWFIELD(drop_envelope_lines), 0, 1, NULL },
};
#define CONFIG_COUNT (sizeof config_table / sizeof config_table[0])

static wchar_t *field_str(const struct imsvc_config *c, const struct cfg_entry *e)
{
    return (wchar_t *)((char *)c + e->offset);
}

static DWORD *field_dw(const struct imsvc_config *c, const struct cfg_entry *e)
{
    return (DWORD *)((char *)c + e->offset);
}

static void config_defaults(struct imsvc_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    wchar_t base[MAX_PATH];
    if (SHGetFolderPathW(NULL, CSIDL_COMMON_APPDATA, NULL, SHGFP_TYPE_CURRENT, base) != S_OK)
        wcscpy(base, L"C:\\ProgramData");
    _snwprintf(cfg->data_dir, MAX_PATH, L"%ls\\IMSvc", base);
    cfg->data_dir[MAX_PATH - 1] = 0;
    cfg->journal_max_kb = 1024;
    wcscpy(cfg->listen_address, L"127.0.0.1");
    cfg->listen_port = 2525;
    DWORD n = ARRAYSIZE(cfg->host_name);
    if (!GetComputerNameExW(ComputerNameDnsHostname, cfg->host_name, &n) || n == 0)
        wcscpy(cfg->host_name, L"localhost");
    wcscpy(cfg->local_domains, L"localhost");
    cfg->address_map_file[0] = 0;
    cfg->relay_addresses[0] = 0;
    cfg->max_sessions = 5000;
    cfg->max_sessions_per_address = 20;
    cfg->io_threads = 0;
    cfg->inactivity_timeout = 300;
    cfg->data_timeout = 600;
    cfg->min_data_rate = 500;
    cfg->send_timeout = 300;
    cfg->max_protocol_errors = 10;
    cfg->max_message_kb = 10240;
    cfg->xauth = 1;
    wcscpy(cfg->certificate_store, L"MY");
    cfg->tls_min_version = 12;
    cfg->tls_min_cipher_bits = 128;
    cfg->ntlm_min_key_bits = 128;
    cfg->smart_host_tls = 1;
    wcscpy(cfg->smart_host_mechs, L"ntlm");
    cfg->outbound_port = 25;
    cfg->max_outbound = 50;
    cfg->max_per_destination = 10;
    wcscpy(cfg->retry_intervals, L"15m,30m,60m");
    wcscpy(cfg->retry_every, L"240m");
    wcscpy(cfg->delay_notice, L"12h");
    wcscpy(cfg->expire, L"2d");
    wcscpy(cfg->ndr_content, L"headers");
    cfg->protocol_log = 1;
    cfg->tracking_log = 1;
    cfg->log_retention_days = 30;
    cfg->max_recipients = 100;
    cfg->max_hops = 50;
    cfg->reverse_dns_timeout_ms = 2000;
    cfg->drop_envelope_lines = 1;
}

static const struct cfg_entry *config_find(const wchar_t *name)
{
    for (size_t i = 0; i < CONFIG_COUNT; i++)
        if (_wcsicmp(config_table[i].name, name) == 0)
            return &config_table[i];
    return NULL;
}

/* REG_MULTI_SZ <-> "a;b;c". */
static void multi_to_joined(wchar_t *s, size_t chars)
{
    for (size_t i = 0; i + 1 < chars; i++) {
        if (s[i] == 0 && s[i + 1] == 0)
            break;
        if (s[i] == 0)
            s[i] = L';';
    }
}

static size_t joined_to_multi(const wchar_t *joined, wchar_t *out, size_t cap)
{
    size_t o = 0;
    for (const wchar_t *p = joined; *p && o + 2 < cap; p++) {
        if (*p == L';' || *p == L' ' || *p == L',' || *p == L'\t') {
            if (o > 0 && out[o - 1] != 0)
                out[o++] = 0;
        } else {
            out[o++] = *p;
        }
    }
    if (o > 0 && out[o - 1] != 0)
        out[o++] = 0;
    out[o++] = 0;
    return o;
}

/* why (why_len) gets a sentence when a check refuses the value's text. */
static DWORD read_value(HKEY key, const struct cfg_entry *e, struct imsvc_config *cfg,
                        wchar_t *why, size_t why_len)
{
    DWORD type = 0;
    if (e->type == CFG_DWORD) {
        DWORD v = 0, size = sizeof v;
        LSTATUS rc = RegQueryValueExW(key, e->name, NULL, &type, (BYTE *)&v, &size);
        if (rc == ERROR_FILE_NOT_FOUND)
            return ERROR_SUCCESS;
        if (rc != ERROR_SUCCESS)
            return rc;
        if (type != REG_DWORD || v < e->min || v > e->max)
            return ERROR_INVALID_DATA;
        *field_dw(cfg, e) = v;
        return ERROR_SUCCESS;
    }
    wchar_t buf[CONFIG_STR_MAX + 2] = { 0 };
    DWORD size = (DWORD)(sizeof buf - 2 * sizeof(wchar_t));
    LSTATUS rc = RegQueryValueExW(key, e->name, NULL, &type, (BYTE *)buf, &size);
    if (rc == ERROR_FILE_NOT_FOUND)
        return ERROR_SUCCESS;
    if (rc != ERROR_SUCCESS)
        return rc;
    if (e->type == CFG_MULTI) {
        if (type != REG_MULTI_SZ)
            return ERROR_INVALID_DATA;
        multi_to_joined(buf, ARRAYSIZE(buf));
    } else if (type == REG_EXPAND_SZ) {
        wchar_t expanded[CONFIG_STR_MAX];
        DWORD n = ExpandEnvironmentStringsW(buf, expanded, ARRAYSIZE(expanded));
        if (n == 0 || n > ARRAYSIZE(expanded))
            return ERROR_INVALID_DATA;
        wcscpy(buf, expanded);
    } else if (type != REG_SZ) {
        return ERROR_INVALID_DATA;
    }
    if (wcslen(buf) >= e->len || (e->check && e->check(buf, why, why_len) != ERROR_SUCCESS))
        return ERROR_INVALID_DATA;
    wcscpy(field_str(cfg, e), buf);
    return ERROR_SUCCESS;
}

DWORD config_load(struct imsvc_config *cfg, const wchar_t **bad_value)
{
    config_defaults(cfg);
    if (bad_value)
        *bad_value = NULL;
    HKEY key;
    LSTATUS rc = RegOpenKeyExW(HKEY_LOCAL_MACHINE, IMSVC_PARAMETERS_KEY, 0, KEY_READ, &key);
    if (rc != ERROR_SUCCESS) {
        cfg->lists = lists_parse(cfg);
        if (rc == ERROR_FILE_NOT_FOUND)
            return cfg->lists ? ERROR_SUCCESS : ERROR_NOT_ENOUGH_MEMORY;
        return rc;
    }
    DWORD first = ERROR_SUCCESS;
    for (size_t i = 0; i < CONFIG_COUNT; i++) {
        wchar_t why[DOMAINS_WHY_MAX] = L"";
        rc = read_value(key, &config_table[i], cfg, why, ARRAYSIZE(why));
        if (rc != ERROR_SUCCESS && first == ERROR_SUCCESS) {
            if (why[0])
                say(cfg->bad_why, ARRAYSIZE(cfg->bad_why), L"%ls; the default is used", why);
            first = rc;
            if (bad_value)
                *bad_value = config_table[i].name;
        }
    }
    RegCloseKey(key);
    rc = read_routes(cfg);
    if (rc != ERROR_SUCCESS && first == ERROR_SUCCESS) {
        first = rc;
        if (bad_value)
            *bad_value = L"Routes";
    }
    cfg->secrets_stamp = secret_stamp();
    cfg->lists = lists_parse(cfg);
    if (!cfg->lists && first == ERROR_SUCCESS)
        first = ERROR_NOT_ENOUGH_MEMORY;
    return first;
}

DWORD config_read_routes(wchar_t *out, size_t cap)
{
    HKEY key;
    size_t used = 0;
    out[0] = 0;
    LSTATUS rc = RegOpenKeyExW(HKEY_LOCAL_MACHINE, IMSVC_ROUTES_KEY, 0, KEY_READ, &key);
    if (rc == ERROR_FILE_NOT_FOUND)
        return ERROR_SUCCESS;
    if (rc != ERROR_SUCCESS)
        return (DWORD)rc;
    for (DWORD i = 0;; i++) {
        wchar_t name[ROUTELIST_PATTERN_MAX + 8], data[ROUTELIST_LINE_MAX + 2];
        DWORD nl = ARRAYSIZE(name), dl = sizeof data - sizeof(wchar_t), type = 0;
        memset(data, 0, sizeof data);
        rc = RegEnumValueW(key, i, name, &nl, NULL, &type, (BYTE *)data, &dl);
        if (rc == ERROR_NO_MORE_ITEMS) {
            rc = ERROR_SUCCESS;
            break;
        }
        if (rc != ERROR_SUCCESS)
            break;
        /* a value of another type is shown as its name alone, which the
         * route parser refuses, naming it */
        int w = _snwprintf(out + used, cap - used, L"%ls%ls%ls\n", name, type == REG_SZ ? L" " : L"",
                           type == REG_SZ ? data : L"");
        if (w < 0 || (size_t)w >= cap - used) {
            out[used] = 0;
            rc = ERROR_MORE_DATA;
            break;
        }
        used += (size_t)w;
    }
    RegCloseKey(key);
    return (DWORD)rc;
}

/* The routes into cfg->routes, checked as the route parser reads them; a
 * list with a bad route is not used at all (cfg->bad_why says which and
 * why), as for any other invalid value. */
static DWORD read_routes(struct imsvc_config *cfg)
{
    char msg[ROUTELIST_WHY_MAX];
    struct route_list l;
    DWORD rc = config_read_routes(cfg->routes, ARRAYSIZE(cfg->routes));
    if (rc != ERROR_SUCCESS) {
        cfg->routes[0] = 0;
        if (!cfg->bad_why[0])
            say(cfg->bad_why, ARRAYSIZE(cfg->bad_why), L"the routes under HKLM\\%ls cannot be read "
                L"(error %lu); no route is used", IMSVC_ROUTES_KEY, (unsigned long)rc);
        return rc == ERROR_MORE_DATA ? ERROR_INVALID_DATA : rc;
    }
    int n = WideCharToMultiByte(CP_UTF8, 0, cfg->routes, -1, NULL, 0, NULL, NULL);
    char *text = n > 0 ? malloc((size_t)n) : NULL;
    if (!text || WideCharToMultiByte(CP_UTF8, 0, cfg->routes, -1, text, n, NULL, NULL) <= 0) {
        free(text);
        cfg->routes[0] = 0;
        return ERROR_NOT_ENOUGH_MEMORY;
    }
    int prc = routelist_parse(&l, text, msg, sizeof msg);
    routelist_free(&l);
    free(text);
    if (prc == 0)
        return ERROR_SUCCESS;
    if (!cfg->bad_why[0]) {
        wchar_t w[ROUTELIST_WHY_MAX];
        if (MultiByteToWideChar(CP_UTF8, 0, msg, -1, w, (int)ARRAYSIZE(w)) <= 0)
            wcscpy(w, L"a route is not valid");
        say(cfg->bad_why, ARRAYSIZE(cfg->bad_why), L"%ls; no route is used", w);
    }
    cfg->routes[0] = 0;
    return prc == -2 ? ERROR_NOT_ENOUGH_MEMORY : ERROR_INVALID_DATA;
}

static void say(wchar_t *why, size_t n, const wchar_t *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _vsnwprintf(why, n, fmt, ap);
    va_end(ap);
    why[n - 1] = 0;
}

static DWORD check_abs_path(const wchar_t *t, wchar_t *why, size_t n)
{
    if (!(iswalpha(t[0]) && t[1] == L':' && (t[2] == L'\\' || t[2] == L'/')) &&
        !(t[0] == L'\\' && t[1] == L'\\')) {
        say(why, n, L"'%ls' is not an absolute path (expected like C:\\ProgramData\\IMSvc)", t);
        return ERROR_INVALID_PARAMETER;
    }
    return ERROR_SUCCESS;
}

static DWORD check_opt_path(const wchar_t *t, wchar_t *why, size_t n)
{
    return t[0] == 0 ? ERROR_SUCCESS : check_abs_path(t, why, n);
}

/* A group or account this machine knows, or a SID string; empty: none. */
static DWORD check_account(const wchar_t *t, wchar_t *why, size_t n)
{
    BYTE sid[SECURITY_MAX_SID_SIZE];
    if (t[0] == 0 || acl_account_sid(t, sid) == ERROR_SUCCESS)
        return ERROR_SUCCESS;
    say(why, n, L"there is no account or group '%ls' (give a name like BUILTIN\\Users or "
        L"DOMAIN\\Group, or a SID like S-1-5-32-545)", t);
    return ERROR_INVALID_PARAMETER;
}

static DWORD check_ip(const wchar_t *t, wchar_t *why, size_t n)
{
    struct in6_addr a6;
    struct in_addr a4;
    if (InetPtonW(AF_INET, t, &a4) == 1 || InetPtonW(AF_INET6, t, &a6) == 1)
        return ERROR_SUCCESS;
    say(why, n, L"'%ls' is not an IPv4 or IPv6 address", t);
    return ERROR_INVALID_PARAMETER;
}

/* A DNS name: labels of letters, digits and hyphens, 1-63 each, 255 in all. */
static int dns_name_ok(const wchar_t *s, size_t len)
{
    if (len == 0 || len > 255)
        return 0;
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        wchar_t c = s[i];
        if (c == L'.') {
            if (label == 0 || s[i - 1] == L'-')
                return 0;
            label = 0;
        } else if ((c < 128 && iswalnum(c)) || (c == L'-' && label > 0)) {
            if (++label > 63)
                return 0;
        } else {
            return 0;
        }
    }
    return label > 0 && s[len - 1] != L'-';
}

static DWORD check_host(const wchar_t *t, wchar_t *why, size_t n)
{
    if (dns_name_ok(t, wcslen(t)))
        return ERROR_SUCCESS;
    say(why, n, L"'%ls' is not a valid host name (letters, digits, hyphens and dots)", t);
    return ERROR_INVALID_PARAMETER;
}

/* Empty (not set), or what check_host / check_ip accept. */
static DWORD check_opt_host(const wchar_t *t, wchar_t *why, size_t n)
{
    return t[0] == 0 ? ERROR_SUCCESS : check_host(t, why, n);
}

static DWORD check_opt_ip(const wchar_t *t, wchar_t *why, size_t n)
{
    return t[0] == 0 ? ERROR_SUCCESS : check_ip(t, why, n);
}

/* The list's text as UTF-8, for core/domains.c; -1 when it does not fit. */
static int list_utf8(const wchar_t *t, char *out, int cap)
{
    return WideCharToMultiByte(CP_UTF8, 0, t, -1, out, cap, NULL, NULL) > 0 ? 0 : -1;
}

/* A sentence from core/domains.c (UTF-8, at most DOMAINS_WHY_MAX) into why. */
static void say_utf8(wchar_t *why, size_t n, const char *text)
{
    wchar_t w[DOMAINS_WHY_MAX];
    if (MultiByteToWideChar(CP_UTF8, 0, text, -1, w, (int)ARRAYSIZE(w)) <= 0)
        wcscpy(w, L"the value is not valid");
    say(why, n, L"%ls", w);
}

/* LocalDomains: exactly what the matcher (core/domains.c) reads. */
static DWORD check_domains(const wchar_t *t, wchar_t *why, size_t n)
{
    char text[CONFIG_STR_MAX * 3 + 1], msg[DOMAINS_WHY_MAX];
    struct domain_list l;
    if (list_utf8(t, text, (int)sizeof text) != 0) {
        say(why, n, L"the list is too long");
        return ERROR_INVALID_PARAMETER;
    }
    int rc = domains_parse(&l, text, msg, sizeof msg);
    domains_free(&l);
    if (rc == 0)
        return ERROR_SUCCESS;
    say_utf8(why, n, msg);
    return rc == -2 ? ERROR_NOT_ENOUGH_MEMORY : ERROR_INVALID_PARAMETER;
}

/* RelayAddresses: exactly what the relay check (core/domains.c) reads. */
static DWORD check_ranges(const wchar_t *t, wchar_t *why, size_t n)
{
    char text[CONFIG_STR_MAX * 3 + 1], msg[DOMAINS_WHY_MAX];
    struct range_list l;
    if (list_utf8(t, text, (int)sizeof text) != 0) {
        say(why, n, L"the list is too long");
        return ERROR_INVALID_PARAMETER;
    }
    int rc = domains_parse_ranges(&l, text, msg, sizeof msg);
    domains_free_ranges(&l);
    if (rc == 0)
        return ERROR_SUCCESS;
    say_utf8(why, n, msg);
    return rc == -2 ? ERROR_NOT_ENOUGH_MEMORY : ERROR_INVALID_PARAMETER;
}

/* Both lists parsed, from the values config_load settled on (each was
 * checked, or is its default). NULL when out of memory. */
static const struct config_lists *lists_parse(const struct imsvc_config *cfg)
{
    char text[CONFIG_STR_MAX * 3 + 1];
    struct config_lists *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    int n = WideCharToMultiByte(CP_UTF8, 0, cfg->routes, -1, NULL, 0, NULL, NULL);
    char *routes = n > 0 ? malloc((size_t)n) : NULL;
    if (list_utf8(cfg->local_domains, text, (int)sizeof text) != 0 ||
        domains_parse(&l->local_domains, text, NULL, 0) == -2 ||
        list_utf8(cfg->relay_addresses, text, (int)sizeof text) != 0 ||
        domains_parse_ranges(&l->relay_ranges, text, NULL, 0) == -2 ||
        !routes || WideCharToMultiByte(CP_UTF8, 0, cfg->routes, -1, routes, n, NULL, NULL) <= 0 ||
        routelist_parse(&l->routes, routes, NULL, 0) == -2) {
        domains_free(&l->local_domains);
        domains_free_ranges(&l->relay_ranges);
        routelist_free(&l->routes);
        free(routes);
        free(l);
        return NULL;
    }
    free(routes);
    return l;
}

/* SmartHostAuthMechanisms: ntlm, plain, login, separated by commas. */
static DWORD check_mechs(const wchar_t *t, wchar_t *why, size_t n)
{
    char a[64];
    unsigned m;
    if (WideCharToMultiByte(CP_UTF8, 0, t, -1, a, (int)sizeof a, NULL, NULL) > 0 &&
        routelist_parse_mechs(a, strlen(a), &m) == 0 && m != 0)
        return ERROR_SUCCESS;
    say(why, n, L"'%ls' is not a list of ntlm, plain and login separated by commas, each once "
        L"(plain and login are used only inside TLS)", t);
    return ERROR_INVALID_PARAMETER;
}

static DWORD check_smart_host(const wchar_t *t, wchar_t *why, size_t n)
{
    char a[300], host[ROUTE_HOST_MAX + 1];
    unsigned port;
    if (t[0] == 0)
        return ERROR_SUCCESS;
    if (WideCharToMultiByte(CP_UTF8, 0, t, -1, a, (int)sizeof a, NULL, NULL) > 0 &&
        route_parse_hostport(a, 25, host, sizeof host, &port) == 0)
        return ERROR_SUCCESS;
    say(why, n, L"'%ls' is not a smart host (host, host:port, [address] or [address]:port)", t);
    return ERROR_INVALID_PARAMETER;
}

int config_parse_duration(const wchar_t *text, unsigned long *secs)
{
    wchar_t *end;
    if (!iswdigit(text[0]))
        return -1;
    unsigned long v = wcstoul(text, &end, 10);
    unsigned long mult = 60;
    if (*end == L's')
        mult = 1, end++;
    else if (*end == L'm')
        mult = 60, end++;
    else if (*end == L'h')
        mult = 3600, end++;
    else if (*end == L'd')
        mult = 86400, end++;
    if (*end || v > 0xFFFFFFFFul / mult)
        return -1;
    *secs = v * mult;
    return 0;
}

static DWORD check_duration(const wchar_t *t, wchar_t *why, size_t n)
{
    unsigned long s;
    if (config_parse_duration(t, &s) == 0)
        return ERROR_SUCCESS;
    say(why, n, L"'%ls' is not a duration (a number with s, m, h or d, like 15m or 2d)", t);
    return ERROR_INVALID_PARAMETER;
}

/* "15m,30m,60m": 1 to RETRY_STEPS_MAX durations, each at least a second. */
static int parse_durations(const wchar_t *t, uint32_t *out, size_t *n_out)
{
    size_t n = 0;
    const wchar_t *p = t;
    while (*p) {
        size_t len = wcscspn(p, L",; ");
        if (len > 0) {
            wchar_t one[32];
            unsigned long s;
            if (len >= ARRAYSIZE(one) || n >= RETRY_STEPS_MAX)
                return -1;
            wmemcpy(one, p, len);
            one[len] = 0;
            if (config_parse_duration(one, &s) != 0 || s == 0)
                return -1;
            if (out)
                out[n] = (uint32_t)s;
            n++;
        }
        p += len;
        if (*p)
            p++;
    }
    if (n == 0)
        return -1;
    if (n_out)
        *n_out = n;
    return 0;
}

static DWORD check_durations(const wchar_t *t, wchar_t *why, size_t n)
{
    if (parse_durations(t, NULL, NULL) == 0)
        return ERROR_SUCCESS;
    say(why, n, L"'%ls' is not a list of 1 to %d durations above zero (like 15m,30m,60m)", t,
        RETRY_STEPS_MAX);
    return ERROR_INVALID_PARAMETER;
}

/* NdrContent: what of a failed message its NDR carries. */
static DWORD check_ndr_content(const wchar_t *t, wchar_t *why, size_t n)
{
    if (_wcsicmp(t, L"headers") == 0 || _wcsicmp(t, L"full") == 0)
        return ERROR_SUCCESS;
    say(why, n, L"'%ls' is neither headers (the original's header fields only) nor full "
        L"(the whole original message)", t);
    return ERROR_INVALID_PARAMETER;
}

void config_retry_policy(const struct imsvc_config *cfg, struct retry_policy *p)
{
    struct retry_policy d;
    retry_defaults(&d);
    *p = d;
    unsigned long s;
    if (parse_durations(cfg->retry_intervals, p->first, &p->n_first) != 0) {
        memcpy(p->first, d.first, sizeof d.first);
        p->n_first = d.n_first;
    }
    if (config_parse_duration(cfg->retry_every, &s) == 0 && s > 0)
        p->every = (uint32_t)s;
    if (config_parse_duration(cfg->delay_notice, &s) == 0)
        p->delay_notice = (uint32_t)s;
    if (config_parse_duration(cfg->expire, &s) == 0 && s > 0)
        p->expire = (uint32_t)s;
}

DWORD config_set(const wchar_t *name, const wchar_t *text, wchar_t *why, size_t why_len)
{
    const struct cfg_entry *e = config_find(name);
    if (!e) {
        say(why, why_len, L"there is no configuration value named '%ls' (see `imsvc config show`)", name);
        return ERROR_INVALID_PARAMETER;
    }
    DWORD dw = 0;
    wchar_t multi[CONFIG_STR_MAX + 2];
    const BYTE *data;
    DWORD size, type;
    if (e->type == CFG_DWORD) {
        wchar_t *end;
        unsigned long v = wcstoul(text, &end, 0);
        if (end == text || *end || text[0] == L'-' || v < e->min || v > e->max) {
            say(why, why_len, L"%ls must be a number from %lu to %lu, not '%ls'",
                e->name, e->min, e->max, text);
            return ERROR_INVALID_PARAMETER;
        }
        dw = (DWORD)v;
        data = (const BYTE *)&dw;
        size = sizeof dw;
        type = REG_DWORD;
    } else {
        if (wcslen(text) >= e->len) {
            say(why, why_len, L"%ls is at most %u characters long", e->name, (unsigned)e->len - 1);
            return ERROR_INVALID_PARAMETER;
        }
        if (e->check && e->check(text, why, why_len) != ERROR_SUCCESS)
            return ERROR_INVALID_PARAMETER;
        if (e->type == CFG_MULTI) {
            size = (DWORD)(joined_to_multi(text, multi, ARRAYSIZE(multi)) * sizeof(wchar_t));
            data = (const BYTE *)multi;
            type = REG_MULTI_SZ;
        } else {
            data = (const BYTE *)text;
            size = (DWORD)((wcslen(text) + 1) * sizeof(wchar_t));
            type = REG_SZ;
        }
    }
    HKEY key;
    LSTATUS rc = RegCreateKeyExW(HKEY_LOCAL_MACHINE, IMSVC_PARAMETERS_KEY, 0, NULL, 0,
                                 KEY_SET_VALUE, NULL, &key, NULL);
    if (rc != ERROR_SUCCESS) {
        say(why, why_len, L"cannot open HKLM\\%ls (error %ld)", IMSVC_PARAMETERS_KEY, (long)rc);
        return rc;
    }
    rc = RegSetValueExW(key, e->name, 0, type, data, size);
    RegCloseKey(key);
    if (rc != ERROR_SUCCESS)
        say(why, why_len, L"cannot write %ls (error %ld)", e->name, (long)rc);
    return rc;
}

static void value_text(const struct imsvc_config *c, const struct cfg_entry *e,
                       wchar_t *out, size_t n)
{
    if (e->type == CFG_DWORD)
        _snwprintf(out, n, L"%lu", *field_dw(c, e));
    else
        _snwprintf(out, n, L"%ls", field_str(c, e));
    out[n - 1] = 0;
}

void config_print(const struct imsvc_config *cfg, FILE *out)
{
    struct imsvc_config def;
    config_defaults(&def);
    for (size_t i = 0; i < CONFIG_COUNT; i++) {
        wchar_t v[CONFIG_STR_MAX + 16], d[CONFIG_STR_MAX + 16];
        value_text(cfg, &config_table[i], v, ARRAYSIZE(v));
        value_text(&def, &config_table[i], d, ARRAYSIZE(d));
        fprintf(out, "%-24ls %ls%s\n", config_table[i].name, v,
                wcscmp(v, d) == 0 ? "  (default)" : "");
    }
    size_t routes = 0;
    for (const wchar_t *p = cfg->routes; *p; p++)
        routes += *p == L'\n';
    if (routes)
        fprintf(out, "%-24ls %zu (imsvc route list shows them)\n", L"Routes", routes);
    else
        fprintf(out, "%-24ls none  (default)\n", L"Routes");
    secret_print(out);
}

int config_diff(const struct imsvc_config *a, const struct imsvc_config *b,
                wchar_t *out, size_t out_len)
{
    int changed = 0;
    size_t used = 0;
    out[0] = 0;
    for (size_t i = 0; i < CONFIG_COUNT; i++) {
        wchar_t va[CONFIG_STR_MAX + 16], vb[CONFIG_STR_MAX + 16];
        value_text(a, &config_table[i], va, ARRAYSIZE(va));
        value_text(b, &config_table[i], vb, ARRAYSIZE(vb));
        if (wcscmp(va, vb) == 0)
            continue;
        int w = _snwprintf(out + used, out_len - used, L"%ls%ls: %ls -> %ls",
                           changed ? L"; " : L"", config_table[i].name, va, vb);
        if (w < 0 || (size_t)w >= out_len - used) {
            out[out_len - 1] = 0;  /* truncated: the count is still right */
            used = out_len - 1;
        } else {
            used += (size_t)w;
        }
        changed++;
    }
    if (wcscmp(a->routes, b->routes) != 0) {
        int w = _snwprintf(out + used, out_len - used, L"%lsRoutes: changed", changed ? L"; " : L"");
        if (w < 0 || (size_t)w >= out_len - used) {
            out[out_len - 1] = 0;
            used = out_len - 1;
        } else {
            used += (size_t)w;
        }
        changed++;
    }
    /* Secrets are not shown, only that they changed. */
    if (a->secrets_stamp != b->secrets_stamp) {
        int w = _snwprintf(out + used, out_len - used, L"%lssecrets: changed", changed ? L"; " : L"");
        if (w < 0 || (size_t)w >= out_len - used)
            out[out_len - 1] = 0;
        changed++;
    }
    return changed;
}

void config_drop_dir(const struct imsvc_config *cfg, wchar_t *out, size_t out_len)
{
    _snwprintf(out, out_len, L"%ls\\Drop", cfg->data_dir);
    out[out_len - 1] = 0;
}

void config_queue_dir(const struct imsvc_config *cfg, wchar_t *out, size_t out_len)
{
    _snwprintf(out, out_len, L"%ls\\Queue", cfg->data_dir);
    out[out_len - 1] = 0;
}

void config_pickup_dir(const struct imsvc_config *cfg, wchar_t *out, size_t out_len)
{
    _snwprintf(out, out_len, L"%ls\\Pickup", cfg->data_dir);
    out[out_len - 1] = 0;
}

void config_badmail_dir(const struct imsvc_config *cfg, wchar_t *out, size_t out_len)
{
    _snwprintf(out, out_len, L"%ls\\Badmail", cfg->data_dir);
    out[out_len - 1] = 0;
}

void config_journal_path(const struct imsvc_config *cfg, wchar_t *out, size_t out_len)
{
    _snwprintf(out, out_len, L"%ls\\IMSvc.evt", cfg->data_dir);
    out[out_len - 1] = 0;
}

DWORD config_make_data_dir(const struct imsvc_config *cfg)
{
    int rc = SHCreateDirectoryExW(NULL, cfg->data_dir, NULL);
    if (rc == ERROR_SUCCESS || rc == ERROR_ALREADY_EXISTS || rc == ERROR_FILE_EXISTS)
        return ERROR_SUCCESS;
    return (DWORD)rc;
}

void config_tls_policy(const struct imsvc_config *cfg, struct tls_policy *p)
{
    p->min_version = cfg->tls_min_version == 13 ? TLS_V1_3 :
                     cfg->tls_min_version == 11 ? TLS_V1_1 :
                     cfg->tls_min_version == 10 ? TLS_V1_0 : TLS_V1_2;
    p->min_cipher_bits = cfg->tls_min_cipher_bits;
    p->aead_only = cfg->tls_aead_only != 0;
}
