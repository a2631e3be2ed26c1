/* cmd_track.c - `imsvc track --message-id ID | --sender A | --recipient B
 * [--since TIME]`: did a message leave, and what did the other server say.
 *
 * Reads the message tracking log's daily files (docs/logs.md) in date
 * order, whether the service runs or not; never writes them. A message is
 * chosen by any of its lines that match the query (the Message-ID is on
 * its RECEIVE line); then every line of the chosen messages is shown, in
 * order, so the DELIVER, DEFER, FAIL and DSN lines that name the message
 * by its queue ID come with it. A line the reader cannot read exactly is
 * skipped and counted, never half-shown.
 */
#include "logs.h"   /* winsock2.h before windows.h */
#include "cmd_track.h"

#include <share.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "tracklog.h"

#define TRACK_FILES_MAX 4000u    /* daily files looked at (LogRetentionDays is at most 3650) */

struct ids {
    char (*id)[ENV_ID_MAX + 1];
    size_t n, cap;
};

static int ids_has(const struct ids *s, const char *id)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->id[i], id) == 0)
            return 1;
    return 0;
}

static int ids_add(struct ids *s, const char *id)
{
    if (!id[0] || ids_has(s, id))
        return 0;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        void *p = realloc(s->id, cap * sizeof *s->id);
        if (!p)
            return -1;
        s->id = p;
        s->cap = cap;
    }
    snprintf(s->id[s->n++], sizeof s->id[0], "%s", id);
    return 0;
}

static int name_cmp(const void *a, const void *b)
{
    return wcscmp(*(wchar_t *const *)a, *(wchar_t *const *)b);
}

/* The tracking log's files, oldest first (the date is in the name). */
static size_t list_files(const wchar_t *dir, wchar_t ***out)
{
    wchar_t pattern[MAX_PATH];
    _snwprintf(pattern, MAX_PATH, L"%ls\\%ls*.log", dir, LOGS_TRACKING_PREFIX);
    pattern[MAX_PATH - 1] = 0;
    wchar_t **names = calloc(TRACK_FILES_MAX, sizeof *names);
    size_t n = 0;
    WIN32_FIND_DATAW fd;
    HANDLE h = names ? FindFirstFileW(pattern, &fd) : INVALID_HANDLE_VALUE;
    if (h != INVALID_HANDLE_VALUE) {
        do {
            if (!(fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) && n < TRACK_FILES_MAX &&
                (names[n] = _wcsdup(fd.cFileName)) != NULL)
                n++;
        } while (FindNextFileW(h, &fd));
        FindClose(h);
    }
    if (n > 1)
        qsort(names, n, sizeof *names, name_cmp);
    *out = names;
    return n;
}

typedef void (*line_fn)(void *arg, const struct track_line *t);

/* Every readable line of every file; returns the lines skipped. */
static unsigned long each_line(const wchar_t *dir, wchar_t **names, size_t n, line_fn fn,
                               void *arg)
{
    static char buf[TRACK_LINE_MAX + 2];
    static struct track_line t;
    unsigned long bad = 0;
    for (size_t i = 0; i < n; i++) {
        wchar_t path[MAX_PATH];
        _snwprintf(path, MAX_PATH, L"%ls\\%ls", dir, names[i]);
        path[MAX_PATH - 1] = 0;
        FILE *f = _wfsopen(path, L"rb", _SH_DENYNO);   /* the service may be writing it */
        if (!f) {
            fprintf(stderr, "imsvc: cannot read %ls\n", path);
            continue;
        }
        int cut = 0;   /* inside a line longer than any the service writes */
        while (fgets(buf, sizeof buf, f)) {
            size_t len = strlen(buf);
            int whole = len > 0 && buf[len - 1] == '\n';
            if (cut) {
                cut = !whole;
                continue;
            }
            if (!whole && !feof(f)) {
                cut = 1;
                bad++;
                continue;
            }
            if (buf[0] == '#' || (len <= 2 && strspn(buf, "\r\n") == len))
                continue;
            if (track_parse(buf, len, &t) != 0) {
                bad++;
                continue;
            }
            fn(arg, &t);
        }
        fclose(f);
    }
    return bad;
}

struct search {
    struct track_query q;         /* sender, recipient and message-id: choose messages */
    const char *since;
    struct ids chosen;
    int oom;
    unsigned long shown;
};

static void choose(void *arg, const struct track_line *t)
{
    struct search *s = arg;
    if (t->queue_id[0] && track_matches(&s->q, t) && ids_add(&s->chosen, t->queue_id) != 0)
        s->oom = 1;
}

/* Events about one recipient; the others (DSN, BADMAIL) are about the message. */
static int per_recipient(enum track_event e)
{
    return e == TRACK_RECEIVE || e == TRACK_FILTER || e == TRACK_DEFER ||
           e == TRACK_DELIVER || e == TRACK_FAIL;
}

static void show(void *arg, const struct track_line *t)
{
    struct search *s = arg;
    if (!ids_has(&s->chosen, t->queue_id))
        return;
    struct track_query when = { .since = s->since };
    if (!track_matches(&when, t))
        return;
    if (s->q.recipient && per_recipient(t->event)) {
        struct track_query rq = { .recipient = s->q.recipient };
        if (!track_matches(&rq, t))
            return;
    }
    const char *how = t->event == TRACK_RECEIVE ? "from" : t->event == TRACK_DELIVER ? "to"
                      : t->event == TRACK_DSN ? "" : "at";
    printf("%s %-7s %s %s -> %s", t->when, track_event_name(t->event), t->queue_id,
           t->sender[0] ? t->sender : "-", t->recipient[0] ? t->recipient : "-");
    if (t->remote[0])
        printf(" %s %s", how, t->remote);
    printf(": %s", t->reply[0] ? t->reply : "-");
    if (t->message_id[0])
        printf(" (Message-ID %s)", t->message_id);
    printf("\n");
    s->shown++;
}

static int usage(void)
{
    fprintf(stderr, "usage: imsvc track --message-id ID | --sender ADDRESS | --recipient ADDRESS "
                    "[--since TIME]\n"
                    "  TIME: a UTC time like 2026-12-02 or 2026-12-02T06:30, or an age like "
                    "90m, 2h, 1d\n");
    return 2;
}

/* --since as a time prefix in the log's form, from a date or an age. */
static int since_text(const char *arg, char *out, size_t n)
{
    wchar_t w[32];
    unsigned long secs;
    if (MultiByteToWideChar(CP_UTF8, 0, arg, -1, w, ARRAYSIZE(w)) > 0 &&
        config_parse_duration(w, &secs) == 0 && strpbrk(arg, "smhd")) {
        time_t t = time(NULL) - (time_t)secs;
        struct tm *tm = gmtime(&t);
        if (!tm || strftime(out, n, "%Y-%m-%dT%H:%M:%S", tm) == 0)
            return -1;
        return 0;
    }
    if (strlen(arg) >= n)
        return -1;
    strcpy(out, arg);
    if (strlen(out) > 10 && out[10] == ' ')
        out[10] = 'T';   /* "2026-12-02 06:30" as people write it */
    return track_since_valid(out) ? 0 : -1;
}

int track_cmd(int argc, char **argv)
{
    struct search s = { 0 };
    char since[64] = "";
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v || !v[0])
            return usage();
        if (strcmp(argv[i], "--message-id") == 0)
            s.q.message_id = v;
        else if (strcmp(argv[i], "--sender") == 0)
            s.q.sender = v;
        else if (strcmp(argv[i], "--recipient") == 0)
            s.q.recipient = v;
        else if (strcmp(argv[i], "--since") == 0) {
            if (since_text(v, since, sizeof since) != 0) {
                fprintf(stderr, "imsvc: --since %s is not a time (2026-12-02, 2026-12-02T06:30) "
                                "or an age (90m, 2h, 1d)\n", v);
                return 2;
            }
            s.since = since;
        } else {
            return usage();
        }
        i++;
    }
    if (!s.q.message_id && !s.q.sender && !s.q.recipient)
        return usage();

    struct imsvc_config cfg;
    config_load(&cfg, NULL);
    wchar_t dir[MAX_PATH];
    logs_dir(&cfg, dir, MAX_PATH);
    wchar_t **names = NULL;
    size_t n = list_files(dir, &names);
    if (n == 0) {
        fprintf(stderr, "imsvc: no message tracking log in %ls (TrackingLog %s)\n", dir,
                cfg.tracking_log ? "is on" : "is off");
        free(names);
        return 1;
    }
    unsigned long bad = each_line(dir, names, n, choose, &s);
    if (!s.oom)
        each_line(dir, names, n, show, &s);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(s.chosen.id);
    if (s.oom) {
        fprintf(stderr, "imsvc: out of memory\n");
        return 1;
    }
    if (bad)
        fprintf(stderr, "imsvc: %lu lines of the tracking log could not be read and were "
                        "skipped\n", bad);
    if (s.shown == 0) {
        fprintf(stderr, "imsvc: no message in the tracking log matches\n");
        return 1;
    }
    return 0;
}
