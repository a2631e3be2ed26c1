/* main.c - imsvc's command line: one table of commands.
 *
 * imsvc.exe is both the service (the SCM runs `imsvc service`) and the
 * administrator's tool. Each command is a row: its name, what it does, and
 * its usage. Arguments arrive as UTF-16 (wmain) and are handed to commands as
 * UTF-8. A command returns the process exit status: 0 done, 1 failed, 2 bad
 * usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>

#include "acl.h"
#include "cmd_address.h"
#include "cmd_queue.h"
#include "cmd_route.h"
#include "cmd_send.h"
#include "cmd_track.h"
#include "cmd_cert.h"
#include "config.h"
#include "eventlog.h"
#include "firewall.h"
#include "installer.h"
#include "secret.h"
#include "service.h"
#include "version.h"

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *usage;
};

static int cmd_help(int argc, char **argv);

static int no_args(int argc, char **argv, int (*fn)(void))
{
    if (argc > 1) {
        fprintf(stderr, "imsvc: %s takes no arguments\n", argv[0]);
        return 2;
    }
    return fn();
}

static int cmd_service(int argc, char **argv) { return no_args(argc, argv, service_dispatch); }
static int cmd_run(int argc, char **argv) { return no_args(argc, argv, service_run_console); }
static int cmd_start(int argc, char **argv) { return no_args(argc, argv, control_start); }
static int cmd_stop(int argc, char **argv) { return no_args(argc, argv, control_stop); }
static int cmd_pause(int argc, char **argv) { return no_args(argc, argv, control_pause); }
static int cmd_continue(int argc, char **argv) { return no_args(argc, argv, control_continue); }
static int cmd_status(int argc, char **argv) { return no_args(argc, argv, control_status); }

static wchar_t *to_wide(const char *s)
{
    int n = MultiByteToWideChar(CP_UTF8, 0, s, -1, NULL, 0);
    wchar_t *w = malloc((size_t)(n > 0 ? n : 1) * sizeof *w);
    if (w && MultiByteToWideChar(CP_UTF8, 0, s, -1, w, n) <= 0)
        w[0] = 0;
    return w;
}

static char *to_utf8(const wchar_t *w)
{
    int n = WideCharToMultiByte(CP_UTF8, 0, w, -1, NULL, 0, NULL, NULL);
    char *s = malloc((size_t)(n > 0 ? n : 1));
    if (s && WideCharToMultiByte(CP_UTF8, 0, w, -1, s, n, NULL, NULL) <= 0)
        s[0] = 0;
    return s;
}

static int cmd_config(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "show") == 0) {
        struct imsvc_config cfg;
        const wchar_t *bad = NULL;
        DWORD rc = config_load(&cfg, &bad);
        config_print(&cfg, stdout);
        if (rc != ERROR_SUCCESS && bad)
            fprintf(stderr, "imsvc: the registry value %ls is invalid; its default is shown\n", bad);
        return 0;
    }
    if (argc == 4 && strcmp(argv[1], "set") == 0) {
        wchar_t *name = to_wide(argv[2]), *value = to_wide(argv[3]);
        wchar_t why[512] = L"";
        DWORD rc = (name && value) ? config_set(name, value, why, ARRAYSIZE(why))
                                   : ERROR_NOT_ENOUGH_MEMORY;
        int status = 0;
        if (rc != ERROR_SUCCESS) {
            fprintf(stderr, "imsvc: config set: %ls\n", why[0] ? why : L"out of memory");
            status = 1;
        } else if (control_paramchange()) {
            printf("%s = %s (the running service was told to re-read its configuration)\n",
                   argv[2], argv[3]);
        } else {
            printf("%s = %s (takes effect when the service starts)\n", argv[2], argv[3]);
        }
        free(name);
        free(value);
        return status;
    }
    if (argc >= 2 && (strcmp(argv[1], "set-secret") == 0 || strcmp(argv[1], "delete-secret") == 0))
        return secret_cmd(argc, argv);
    fprintf(stderr, "usage: imsvc config show | imsvc config set NAME VALUE | "
                    "imsvc config set-secret NAME (reads standard input) | "
                    "imsvc config delete-secret NAME\n");
    return 2;
}

static int cmd_events(int argc, char **argv)
{
    struct imsvc_config cfg;
    config_load(&cfg, NULL);
    wchar_t journal[MAX_PATH];
    config_journal_path(&cfg, journal, ARRAYSIZE(journal));
    return evlog_cmd_events(journal, argc, argv);
}

/* LocalDomains as config_load parsed them, for the address command. */
static int cmd_address(int argc, char **argv)
{
    struct imsvc_config cfg;
    config_load(&cfg, NULL);
    char *map = cfg.address_map_file[0] ? to_utf8(cfg.address_map_file) : NULL;
    int rc = address_cmd(argc, argv, cfg.lists ? &cfg.lists->local_domains : NULL, map);
    free(map);
    return rc;
}

static int cmd_version(int argc, char **argv)
{
    (void)argc, (void)argv;
    printf("imsvc %s\n", IMSVC_VERSION);
    return 0;
}

static const struct command commands[] = {
    { "install",   installer_install,   "install [--start auto|demand|delayed] [--account LocalSystem | --account NAME [--password-file F]]" },
    { "uninstall", installer_uninstall, "uninstall" },
    { "start",     cmd_start,           "start" },
    { "stop",      cmd_stop,            "stop" },
    { "pause",     cmd_pause,           "pause" },
    { "continue",  cmd_continue,        "continue" },
    { "status",    cmd_status,          "status" },
    { "run",       cmd_run,             "run                  (console mode; Ctrl+C stops)" },
    { "config",    cmd_config,          "config show | config set NAME VALUE | config set-secret NAME | config delete-secret NAME" },
    { "acl",       acl_cmd,             "acl show PATH|HKLM\\KEY | acl check | acl apply | acl account" },
    { "events",    cmd_events,          "events [--last N] [--id N] [--export FILE]" },
    { "cert",      cert_cmd,            "cert new [--subject CN=host] | cert list   (self-signed certificates for STARTTLS)" },
    { "firewall",  firewall_cmd,        "firewall add | remove | show   (the inbound rule for ListenPort)" },
    { "msi",       msi_cmd,             "msi configure [--listen-port=N] | msi remove [--remove-data=1]   (run by the MSI package)" },
    { "address",   cmd_address,         "address check ADDRESS | address imcea encode|decode ... | address map test ADDRESS" },
    { "queue",     queue_cmd,           "queue [list] | queue show ID | queue retry ID | queue delete ID" },
    { "track",     track_cmd,           "track --message-id ID | --sender A | --recipient B [--since TIME]" },
    { "route",     route_cmd,           "route list | route add DOMAIN HOST[:PORT] [tls=..] [trust=..] [auth=..] [user=NAME] | route remove DOMAIN" },
    { "send",      send_cmd,            "send --server HOST[:PORT] --from A --to B [options] FILE.eml (send --help)" },
    { "version",   cmd_version,         "version" },
    { "help",      cmd_help,            "help" },
    { "service",   cmd_service,         NULL },  /* the SCM's entry point */
};

static int cmd_help(int argc, char **argv)
{
    (void)argc, (void)argv;
    printf("imsvc %s - Internet Mail Service\n\nusage:\n", IMSVC_VERSION);
    for (size_t i = 0; i < ARRAYSIZE(commands); i++)
        if (commands[i].usage)
            printf("  imsvc %s\n", commands[i].usage);
    return 0;
}

int wmain(int argc, wchar_t **wargv)
{
    if (argc < 2) {
        cmd_help(0, NULL);
        return 2;
    }
    char **argv = calloc((size_t)argc + 1, sizeof *argv);
    if (!argv)
        return 1;
    for (int i = 0; i < argc; i++)
        if (!(argv[i] = to_utf8(wargv[i])))
            return 1;
    for (size_t i = 0; i < ARRAYSIZE(commands); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "imsvc: unknown command '%s' (try `imsvc help`)\n", argv[1]);
    return 2;
}
