/* cmd_queue.c - `imsvc queue list|show ID|retry ID|delete ID`, `imsvc queue
 * retry --all|--destination D`, and the queue figures of `imsvc status`.
 *
 * Reads the queue's files directly, so it works whether the service runs or
 * not. Changes (retry, delete) are never made under a running service's
 * feet: they are handed to it as request files in Queue\ctl and carried out
 * by its queue manager (queuectl.h); with the service stopped they are made
 * here.
 */
#include "cmd_queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qmgr.h"
#include "queue.h"
#include "queuectl.h"
#include "service.h"
#include "spool.h"
#include "status.h"

#define CTL_WAIT_MS 15000u

struct lister {
    int verbose;
    unsigned messages, held, pending, deferred, delivered, failed;
    long long oldest;
    unsigned long long bytes;
};

static long long now_unix(void)
{
    return (long long)time(NULL);
}

static void age_text(long long secs, char *out, size_t n)
{
    if (secs < 0)
        secs = 0;
    if (secs < 120)
        snprintf(out, n, "%llds", secs);
    else if (secs < 7200)
        snprintf(out, n, "%lldm", secs / 60);
    else if (secs < 172800)
        snprintf(out, n, "%lldh", secs / 3600);
    else
        snprintf(out, n, "%lldd", secs / 86400);
}

static void utc_text(long long t, char *out, size_t n)
{
    time_t tt = (time_t)t;
    struct tm *tm = gmtime(&tt);
    if (!t || !tm)
        snprintf(out, n, "-");
    else
        strftime(out, n, "%Y-%m-%d %H:%M:%S UTC", tm);
}

static unsigned long long content_size(const char *id, int held)
{
    wchar_t p[MAX_PATH];
    spool_path(spool_dir(), id, held, L"eml", p, MAX_PATH);
    WIN32_FILE_ATTRIBUTE_DATA a;
    if (!GetFileAttributesExW(p, GetFileExInfoStandard, &a))
        return 0;
    return ((unsigned long long)a.nFileSizeHigh << 32) | a.nFileSizeLow;
}

static void list_one(void *arg, const char *id, int held)
{
    struct lister *l = arg;
    struct envelope e;
    env_init(&e);
    if (spool_read_env(id, held, &e) != ERROR_SUCCESS) {
        if (l->verbose)
            printf("%-28s (envelope unreadable)\n", id);
        return;
    }
    unsigned st[4] = { 0 };
    for (size_t i = 0; i < e.n_rcpt; i++)
        st[e.rcpt[i].state]++;
    l->messages++;
    l->held += held;
    l->pending += st[ENV_PENDING];
    l->deferred += st[ENV_DEFERRED];
    l->delivered += st[ENV_DELIVERED];
    l->failed += st[ENV_FAILED];
    if (!l->oldest || e.arrived < l->oldest)
        l->oldest = e.arrived;
    unsigned long long size = content_size(id, held);
    l->bytes += size;
    if (l->verbose) {
        char from[600], age[16], state[64];
        if (e.from.null_path || addr_format_mailbox(&e.from, from, sizeof from) < 0)
            strcpy(from, "<>");
        age_text(now_unix() - e.arrived, age, sizeof age);
        if (held)
            snprintf(state, sizeof state, "held");
        else if (st[ENV_DEFERRED])
            snprintf(state, sizeof state, "deferred");
        else
            snprintf(state, sizeof state, "pending");
        printf("%-28s %-9s %6s %9llu  %s -> %zu recipient%s\n", id, state, age, size, from,
               e.n_rcpt, e.n_rcpt == 1 ? "" : "s");
    }
    env_free(&e);
}

static int queue_dir_of(wchar_t *out, size_t cap)
{
    struct imsvc_config cfg;
    config_load(&cfg, NULL);
    config_queue_dir(&cfg, out, cap);
    spool_set_dir(out);
    return 0;
}

static int cmd_list(void)
{
    wchar_t dir[MAX_PATH];
    queue_dir_of(dir, MAX_PATH);
    struct lister l = { .verbose = 1 };
    printf("%-28s %-9s %6s %9s  %s\n", "ID", "STATE", "AGE", "SIZE", "FROM -> RECIPIENTS");
    unsigned bad = 0;
    DWORD err = spool_scan(dir, list_one, &l, &bad);
    if (err) {
        fprintf(stderr, "imsvc: cannot read the queue %ls (error %lu)\n", dir, err);
        return 1;
    }
    printf("%u message%s, %llu octets", l.messages, l.messages == 1 ? "" : "s", l.bytes);
    if (bad)
        printf("; %u file%s with a name that is not a queue ID", bad, bad == 1 ? "" : "s");
    printf("\n");
    return 0;
}

static int find_message(const char *id, int *held)
{
    wchar_t p[MAX_PATH];
    for (*held = 0; *held <= 1; (*held)++) {
        if (spool_path(spool_dir(), id, *held, L"env", p, MAX_PATH) == 0 &&
            GetFileAttributesW(p) != INVALID_FILE_ATTRIBUTES)
            return 0;
    }
    return -1;
}

static int cmd_show(const char *id)
{
    wchar_t dir[MAX_PATH];
    queue_dir_of(dir, MAX_PATH);
    int held;
    struct envelope e;
    env_init(&e);
    if (find_message(id, &held) != 0 || spool_read_env(id, held, &e) != ERROR_SUCCESS) {
        fprintf(stderr, "imsvc: there is no queued message %s (see `imsvc queue list`)\n", id);
        return 1;
    }
    char from[600], t[64];
    if (e.from.null_path || addr_format_mailbox(&e.from, from, sizeof from) < 0)
        strcpy(from, "<>");
    utc_text(e.arrived, t, sizeof t);
    printf("Message:    %s%s\n", e.id, held ? " (held by the content filter)" : "");
    printf("Arrived:    %s\n", t);
    printf("Size:       %llu octets\n", content_size(id, held));
    printf("From:       %s\n", from);
    printf("Client:     %s (HELO %s)%s%s\n", e.client[0] ? e.client : "-",
           e.helo[0] ? e.helo : "-", e.auth_user[0] ? ", authenticated as " : "", e.auth_user);
    for (size_t i = 0; i < e.n_rcpt; i++) {
        const struct env_rcpt *r = &e.rcpt[i];
        char to[600], next[64];
        if (addr_format_mailbox(&r->addr, to, sizeof to) < 0)
            strcpy(to, "(unprintable)");
        utc_text(r->next_attempt, next, sizeof next);
        printf("Recipient:  %s\n", to);
        printf("  state %s, %u attempt%s", env_state_name(r->state), r->attempts,
               r->attempts == 1 ? "" : "s");
        if (r->state == ENV_DEFERRED)
            printf(", next %s", next);
        printf("\n");
        if (r->status[0])
            printf("  status %s%s%s\n", r->status, r->remote[0] ? " from " : "", r->remote);
        if (r->reply[0])
            printf("  reply  %s\n", r->reply);
        if (r->why[0])
            printf("  why    %s\n", r->why);
    }
    env_free(&e);
    return 0;
}

/* With the service stopped: change the files here. */
static int apply_offline(const char *action, const char *id, int held)
{
    if (strcmp(action, "delete") == 0) {
        DWORD err = spool_remove(id, held);
        if (err) {
            fprintf(stderr, "imsvc: cannot delete %s (error %lu)\n", id, err);
            return 1;
        }
        printf("%s deleted (no notification was sent)\n", id);
        return 0;
    }
    if (held) {
        DWORD err = spool_release(id);
        if (err) {
            fprintf(stderr, "imsvc: cannot release %s (error %lu)\n", id, err);
            return 1;
        }
    }
    spool_retry_now(id);
    printf("%s %s; it is tried when the service starts\n", id, held ? "released" : "due now");
    return 0;
}

static int cmd_change(const char *action, const char *id)
{
    wchar_t dir[MAX_PATH];
    queue_dir_of(dir, MAX_PATH);
    int held;
    if (find_message(id, &held) != 0) {
        fprintf(stderr, "imsvc: there is no queued message %s (see `imsvc queue list`)\n", id);
        return 1;
    }
    if (control_running())   /* the service carries it out (queuectl.h) */
        return queuectl_request(action[0] == 'r' ? CTLREQ_RETRY : CTLREQ_DELETE, id, CTL_WAIT_MS);
    return apply_offline(action, id, held);
}

/* `retry --all|--destination D` with the service stopped: the deferred
 * recipients are made due in the envelopes here, tried when it starts. */
struct flusher {
    const char *dest;
    struct route_config rc;
    unsigned messages, recipients, failed;
};

static void flush_one(void *arg, const char *id, int held)
{
    struct flusher *f = arg;
    struct envelope e;
    if (held)
        return;   /* held by the content filter: `queue retry ID` releases one */
    env_init(&e);
    if (spool_read_env(id, 0, &e) == ERROR_SUCCESS) {
        size_t k = qmgr_flush(&e, &f->rc, f->dest);
        if (k && spool_update_env(&e) == ERROR_SUCCESS) {
            f->messages++;
            f->recipients += (unsigned)k;
        } else if (k) {
            f->failed++;
        }
    }
    env_free(&e);
}

static int cmd_flush(const char *dest)
{
    if (dest[0] && !ctlreq_dest_valid(dest)) {
        fprintf(stderr, "imsvc: %s is not a destination (a domain or host name, or an IPv4 "
                "address; at most %d characters)\n", dest, CTLREQ_DEST_MAX);
        return 1;
    }
    struct imsvc_config cfg;
    wchar_t dir[MAX_PATH];
    char smarthost[300];
    config_load(&cfg, NULL);
    config_queue_dir(&cfg, dir, MAX_PATH);
    spool_set_dir(dir);   /* the ctl folder is under it */
    if (control_running())   /* the service carries it out (queuectl.h) */
        return queuectl_request(CTLREQ_FLUSH, dest, CTL_WAIT_MS);
    WideCharToMultiByte(CP_UTF8, 0, cfg.smart_host, -1, smarthost, sizeof smarthost, NULL, NULL);
    struct flusher f = { .dest = dest };
    f.rc.local = cfg.lists ? &cfg.lists->local_domains : NULL;
    f.rc.smarthost = smarthost;
    f.rc.smarthost_default_port = 25;
    f.rc.outbound_port = cfg.outbound_port;
    DWORD err = spool_scan(dir, flush_one, &f, NULL);
    if (err) {
        fprintf(stderr, "imsvc: cannot read the queue %ls (error %lu)\n", dir, err);
        return 1;
    }
    printf("%u message%s (%u deferred recipient%s%s%s) due now; they are tried when the service "
           "starts\n", f.messages, f.messages == 1 ? "" : "s", f.recipients,
           f.recipients == 1 ? "" : "s", dest[0] ? " for " : "", dest);
    if (f.failed)
        fprintf(stderr, "imsvc: %u envelope%s could not be rewritten\n", f.failed,
                f.failed == 1 ? "" : "s");
    return f.failed ? 1 : 0;
}

int queue_cmd(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "retry") == 0 && strcmp(argv[2], "--all") == 0)
        return cmd_flush("");
    if (argc == 4 && strcmp(argv[1], "retry") == 0 && strcmp(argv[2], "--destination") == 0)
        return cmd_flush(argv[3]);
    if (argc == 3 && (strcmp(argv[1], "show") == 0 || strcmp(argv[1], "retry") == 0 ||
                      strcmp(argv[1], "delete") == 0) && !spool_id_valid(argv[2])) {
        fprintf(stderr, "imsvc: %s is not a queue ID (letters, digits, '.', '-' and '_', at most "
                "%d; see `imsvc queue list`)\n", argv[2], ENV_ID_MAX);
        return 1;
    }
    if (argc == 1 || (argc == 2 && strcmp(argv[1], "list") == 0))
        return cmd_list();
    if (argc == 3 && strcmp(argv[1], "show") == 0)
        return cmd_show(argv[2]);
    if (argc == 3 && (strcmp(argv[1], "retry") == 0 || strcmp(argv[1], "delete") == 0))
        return cmd_change(argv[1], argv[2]);
    fprintf(stderr, "usage: imsvc queue [list] | queue show ID | queue retry ID | queue delete ID\n"
                    "       imsvc queue retry --all | queue retry --destination DOMAIN-OR-HOST\n"
                    "  retry: try a deferred message now, or release a held one\n"
                    "  retry --all: try every deferred message now (--destination: those for\n"
                    "    one domain, or routed to one host such as the smart host)\n"
                    "  delete: remove a message from the queue without notifying anyone\n");
    return 2;
}

void queue_print_status(const struct imsvc_config *cfg, int running)
{
    wchar_t dir[MAX_PATH];
    config_queue_dir(cfg, dir, MAX_PATH);
    spool_set_dir(dir);
    struct lister l = { 0 };
    spool_scan(dir, list_one, &l, NULL);
    char age[16] = "-";
    if (l.oldest)
        age_text(now_unix() - l.oldest, age, sizeof age);
    printf("Queue:        %u message%s (%u held); recipients: %u pending, %u deferred\n",
           l.messages, l.messages == 1 ? "" : "s", l.held, l.pending, l.deferred);
    printf("Oldest:       %s\n", age);
    if (running)
        status_print(cfg);
}
