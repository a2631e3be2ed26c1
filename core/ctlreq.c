/* ctlreq.c - the queue control protocol (see ctlreq.h). */
#include "ctlreq.h"

#include <stdio.h>
#include <string.h>

#include "commitlog.h"

static const char *const action_names[] = { "retry", "delete", "flush" };
#define ACTION_LAST CTLREQ_FLUSH
#define FLUSH_ALL "all"
#define FLUSH_TO  "to."

static int fits(int w, size_t n, char *buf)
{
    if (w < 0 || (size_t)w >= n) {
        if (n)
            buf[0] = 0;
        return -1;
    }
    return w;
}

int ctlreq_dest_valid(const char *d)
{
    size_t n = d ? strlen(d) : 0;
    if (n == 0 || n > CTLREQ_DEST_MAX || d[0] == '.' || d[0] == '-')
        return 0;
    int bracket = d[0] == '[';
    if (bracket && (n < 3 || d[n - 1] != ']'))
        return 0;
    for (size_t i = bracket; i < n - (size_t)bracket; i++) {
        char c = d[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_'))
            return 0;
    }
    return 1;
}

const char *ctlreq_action_name(enum ctlreq_action a)
{
    return (unsigned)a <= ACTION_LAST ? action_names[a] : "?";
}

/* The part after "ACTION.": the ID, or FLUSH's "all" / "to.DEST". */
static int target_text(enum ctlreq_action a, const char *id, char *buf, size_t n)
{
    if ((unsigned)a > ACTION_LAST || !id)
        return fits(-1, n, buf);
    if (a == CTLREQ_FLUSH) {
        if (!id[0])
            return fits(snprintf(buf, n, "%s", FLUSH_ALL), n, buf);
        if (!ctlreq_dest_valid(id))
            return fits(-1, n, buf);
        return fits(snprintf(buf, n, "%s%s", FLUSH_TO, id), n, buf);
    }
    if (!env_id_valid(id))
        return fits(-1, n, buf);
    return fits(snprintf(buf, n, "%s", id), n, buf);
}

int ctlreq_name(enum ctlreq_action a, const char *id, char *buf, size_t n)
{
    char t[CTLREQ_TARGET_MAX + sizeof FLUSH_TO];
    if (target_text(a, id, t, sizeof t) < 0)
        return fits(-1, n, buf);
    return fits(snprintf(buf, n, "%s.%s", action_names[a], t), n, buf);
}

int ctlreq_answer_name(enum ctlreq_action a, const char *id, char *buf, size_t n)
{
    char t[CTLREQ_TARGET_MAX + sizeof FLUSH_TO];
    if (target_text(a, id, t, sizeof t) < 0)
        return fits(-1, n, buf);
    return fits(snprintf(buf, n, "%s.%s.done", action_names[a], t), n, buf);
}

enum ctlreq_kind ctlreq_parse(const char *name, enum ctlreq_action *a, char *id, size_t n)
{
    if (n)
        id[0] = 0;
    size_t len = strlen(name);
    if (len > 5 && strcmp(name + len - 5, ".done") == 0)
        return CTLREQ_ANSWER;
    const char *dot = strchr(name, '.');
    if (!dot)
        return CTLREQ_OTHER;
    size_t alen = (size_t)(dot - name);
    for (unsigned i = 0; i <= ACTION_LAST; i++) {
        if (strlen(action_names[i]) != alen || strncmp(name, action_names[i], alen) != 0)
            continue;
        *a = (enum ctlreq_action)i;
        const char *t = dot + 1;
        if (i == CTLREQ_FLUSH) {
            if (strcmp(t, FLUSH_ALL) == 0)
                return CTLREQ_REQUEST;   /* id "": every destination */
            int to = strncmp(t, FLUSH_TO, sizeof FLUSH_TO - 1) == 0;
            if (to)
                t += sizeof FLUSH_TO - 1;
            if (n)
                snprintf(id, n, "%s", t);
            return to && ctlreq_dest_valid(t) && strlen(t) < n ? CTLREQ_REQUEST : CTLREQ_BAD_ID;
        }
        if (n)
            snprintf(id, n, "%s", t);
        return env_id_valid(t) && strlen(t) < n ? CTLREQ_REQUEST : CTLREQ_BAD_ID;
    }
    return CTLREQ_OTHER;
}

int ctlreq_answer(int failed, const char *text, char *buf, size_t n)
{
    size_t o = 0;
    if (failed) {
        if (n < 2)
            return fits(-1, n, buf);
        buf[o++] = '!';
    }
    for (size_t i = 0; text[i] && i < CTLREQ_ANSWER_MAX; i++) {
        if (o + 1 >= n)
            return fits(-1, n, buf);
        unsigned char c = (unsigned char)text[i];
        buf[o++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
    }
    if (o >= n)
        return fits(-1, n, buf);
    buf[o] = 0;
    return (int)o;
}

const char *ctlreq_read_answer(const char *buf, size_t len, int *failed)
{
    *failed = len > 0 && buf[0] == '!';
    return buf + *failed;
}
