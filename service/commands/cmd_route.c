/* cmd_route.c - `imsvc route list | add | remove`: per-domain routes (IIS
 * "remote domains"), each its own smart host, TLS, trust and authentication.
 *
 * A route is one REG_SZ value under Parameters\Routes, named by its domain
 * and holding the rest of its canonical text (core/routelist.h), so what is
 * stored is exactly what the parser reads back. Its password is never on
 * the command line and never a plain registry value: `route add` reads it
 * from standard input when the route has a user, and keeps it as the DPAPI
 * secret "Route:DOMAIN" (service/host/secret.c), written before the route so
 * the service never sees a route without its password. A running service is
 * told to re-read its configuration after every change.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>

#include "cmd_route.h"
#include "config.h"
#include "routelist.h"
#include "secret.h"
#include "service.h"
#include "utf.h"

static int usage(const char *why)
{
    if (why)
        fprintf(stderr, "imsvc route: %s\n", why);
    fprintf(stderr,
            "usage: imsvc route list\n"
            "       imsvc route add DOMAIN HOST[:PORT] [tls=off|opportunistic|required]\n"
            "                       [trust=verify|any] [auth=none|ntlm|plain|login[,...]] [user=NAME]\n"
            "       imsvc route remove DOMAIN\n"
            "  DOMAIN is example.com or *.example.com (every subdomain); with user=NAME the\n"
            "  password is read from standard input, never from the command line\n");
    return 2;
}

/* Is the route's password stored? */
static const char *password_state(const struct route_entry *e)
{
    wchar_t name[SECRET_NAME_MAX], pw[SECRET_MAX + 1];
    secret_route_name(e->pattern, name, ARRAYSIZE(name));
    DWORD rc = secret_password(name, NULL, pw, ARRAYSIZE(pw));
    int set = rc == ERROR_SUCCESS && pw[0];
    SecureZeroMemory(pw, sizeof pw);
    return rc != ERROR_SUCCESS ? "cannot be read" : set ? "set" : "not set";
}

static int route_list(void)
{
    static wchar_t text[CONFIG_ROUTES_MAX];
    DWORD rc = config_read_routes(text, ARRAYSIZE(text));
    if (rc != ERROR_SUCCESS) {
        print_win32_error("cannot read the routes", rc);
        return 1;
    }
    if (!text[0]) {
        printf("no routes: mail for other domains goes to the SmartHost, or to their MX hosts\n");
        return 0;
    }
    int status = 0;
    for (wchar_t *p = text; *p;) {
        wchar_t *nl = wcschr(p, L'\n');
        if (nl)
            *nl = 0;
        char line[ROUTELIST_LINE_MAX * 3 + 1], out[ROUTELIST_LINE_MAX + 1], why[ROUTELIST_WHY_MAX];
        struct route_entry e;
        wide_to_utf8(p, line, sizeof line);
        if (routelist_parse_line(&e, line, strlen(line), why, sizeof why) != 0) {
            printf("%s  (not valid: %s; the service uses no route until it is fixed)\n", line, why);
            status = 1;
        } else if (routelist_format(&e, 0, out, sizeof out) < 0) {
            printf("%s\n", line);
        } else if (e.user[0]) {
            printf("%s  (password: %s)\n", out, password_state(&e));
        } else {
            printf("%s\n", out);
        }
        p = nl ? nl + 1 : p + wcslen(p);
    }
    return status;
}

static DWORD write_route(const struct route_entry *e, int *replaced, wchar_t *why, size_t why_len)
{
    char spec[ROUTELIST_LINE_MAX + 1];
    wchar_t name[ROUTELIST_PATTERN_MAX + 1], data[ROUTELIST_LINE_MAX + 1];
    HKEY key;
    if (routelist_format(e, 1, spec, sizeof spec) < 0)
        return ERROR_INVALID_DATA;
    utf8_to_wide(e->pattern, name, ARRAYSIZE(name));
    utf8_to_wide(spec, data, ARRAYSIZE(data));
    LSTATUS rc = RegCreateKeyExW(HKEY_LOCAL_MACHINE, IMSVC_ROUTES_KEY, 0, NULL, 0,
                                 KEY_SET_VALUE | KEY_QUERY_VALUE, NULL, &key, NULL);
    if (rc != ERROR_SUCCESS) {
        _snwprintf(why, why_len, L"cannot open HKLM\\%ls (error %ld)", IMSVC_ROUTES_KEY, (long)rc);
        why[why_len - 1] = 0;
        return (DWORD)rc;
    }
    *replaced = RegQueryValueExW(key, name, NULL, NULL, NULL, NULL) == ERROR_SUCCESS;
    rc = RegSetValueExW(key, name, 0, REG_SZ, (const BYTE *)data,
                        (DWORD)((wcslen(data) + 1) * sizeof(wchar_t)));
    RegCloseKey(key);
    if (rc != ERROR_SUCCESS) {
        _snwprintf(why, why_len, L"cannot write the route %ls (error %ld)", name, (long)rc);
        why[why_len - 1] = 0;
    }
    return (DWORD)rc;
}

static void told(void)
{
    printf(control_paramchange() ? " (the running service was told to re-read its configuration)\n"
                                 : " (takes effect when the service starts)\n");
}

static int route_add(int argc, char **argv)
{
    char text[ROUTELIST_LINE_MAX + 1], why[ROUTELIST_WHY_MAX], out[ROUTELIST_LINE_MAX + 1];
    struct route_entry e;
    size_t used = 0;
    if (argc < 4)
        return usage("route add wants a domain and a host[:port]");
    for (int i = 2; i < argc; i++) {
        int w = snprintf(text + used, sizeof text - used, "%s%s", used ? " " : "", argv[i]);
        if (w < 0 || (size_t)w >= sizeof text - used)
            return usage("the route is longer than 1024 characters");
        used += (size_t)w;
    }
    if (routelist_parse_line(&e, text, used, why, sizeof why) != 0) {
        fprintf(stderr, "imsvc route add: %s\n", why);
        return 2;
    }
    wchar_t sname[SECRET_NAME_MAX], wwhy[400];
    secret_route_name(e.pattern, sname, ARRAYSIZE(sname));
    if (e.user[0]) {
        char pw[SECRET_MAX + 1];
        long len = secret_read_stdin(pw, SECRET_MAX);
        if (len <= 0) {
            SecureZeroMemory(pw, sizeof pw);
            if (len < 0)
                fprintf(stderr, "imsvc route add: the password is longer than %u bytes\n",
                        SECRET_MAX);
            else
                fprintf(stderr, "imsvc route add: user=%s needs its password on standard input "
                        "(for example from a pipe; never on the command line)\n", e.user);
            return 1;
        }
        DWORD rc = secret_set(sname, pw, (size_t)len, wwhy, ARRAYSIZE(wwhy));
        SecureZeroMemory(pw, sizeof pw);
        if (rc != ERROR_SUCCESS) {
            fprintf(stderr, "imsvc route add: %ls\n", wwhy);
            return 1;
        }
    } else {
        secret_delete(sname);   /* a password of an earlier route for the domain */
    }
    int replaced = 0;
    DWORD rc = write_route(&e, &replaced, wwhy, ARRAYSIZE(wwhy));
    if (rc != ERROR_SUCCESS) {
        fprintf(stderr, "imsvc route add: %ls\n", wwhy);
        return 1;
    }
    routelist_format(&e, 0, out, sizeof out);
    printf("route %s: %s%s", replaced ? "replaced" : "added", out,
           e.user[0] ? " (password stored, encrypted with DPAPI)" : "");
    told();
    return 0;
}

static int route_remove(int argc, char **argv)
{
    char text[ROUTELIST_PATTERN_MAX + 16], why[ROUTELIST_WHY_MAX];
    struct route_entry e;
    if (argc != 3)
        return usage("route remove wants one domain");
    /* the domain made canonical as add made it: parse it with a stand-in host */
    int w = snprintf(text, sizeof text, "%s localhost", argv[2]);
    if (w < 0 || (size_t)w >= sizeof text || routelist_parse_line(&e, text, (size_t)w, why,
                                                                  sizeof why) != 0) {
        fprintf(stderr, "imsvc route remove: %s\n", w > 0 && (size_t)w < sizeof text ? why
                        : "the domain is too long");
        return 2;
    }
    wchar_t name[ROUTELIST_PATTERN_MAX + 1], sname[SECRET_NAME_MAX];
    utf8_to_wide(e.pattern, name, ARRAYSIZE(name));
    HKEY key;
    LSTATUS rc = RegOpenKeyExW(HKEY_LOCAL_MACHINE, IMSVC_ROUTES_KEY, 0, KEY_SET_VALUE, &key);
    if (rc == ERROR_SUCCESS) {
        rc = RegDeleteValueW(key, name);
        RegCloseKey(key);
    }
    if (rc == ERROR_FILE_NOT_FOUND) {
        fprintf(stderr, "imsvc route remove: there is no route for %s (see imsvc route list)\n",
                e.pattern);
        return 1;
    }
    if (rc != ERROR_SUCCESS) {
        print_win32_error("cannot remove the route", (DWORD)rc);
        return 1;
    }
    secret_route_name(e.pattern, sname, ARRAYSIZE(sname));
    secret_delete(sname);
    printf("route for %s removed", e.pattern);
    told();
    return 0;
}

int route_cmd(int argc, char **argv)
{
    if (argc == 1 || (argc == 2 && strcmp(argv[1], "list") == 0))
        return route_list();
    if (argc >= 2 && strcmp(argv[1], "add") == 0)
        return route_add(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "remove") == 0)
        return route_remove(argc, argv);
    return usage(NULL);
}
