/* ctlreq.c - the queue control protocol (see ctlreq.h). */
#include "ctlreq.h"

#include <stdio.h>
#include <string.h>

#include "commitlog.h"

static const char *const action_names[] = { "retry", "delete" };

static int fits(int w, size_t n, char *buf)
{
    if (w < 0 || (size_t)w >= n) {
        if (n)
            buf[0] = 0;
        return -1;
    }
    return w;
}

int ctlreq_name(enum ctlreq_action a, const char *id, char *buf, size_t n)
{
    if ((unsigned)a > CTLREQ_DELETE || !id || !env_id_valid(id))
        return fits(-1, n, buf);
    return fits(snprintf(buf, n, "%s.%s", action_names[a], id), n, buf);
}

int ctlreq_answer_name(enum ctlreq_action a, const char *id, char *buf, size_t n)
{
    if ((unsigned)a > CTLREQ_DELETE || !id || !env_id_valid(id))
        return fits(-1, n, buf);
    return fits(snprintf(buf, n, "%s.%s.done", action_names[a], id), n, buf);
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
    for (unsigned i = 0; i <= CTLREQ_DELETE; i++) {
        if (strlen(action_names[i]) != alen || strncmp(name, action_names[i], alen) != 0)
            continue;
        *a = (enum ctlreq_action)i;
        if (n)
            snprintf(id, n, "%s", dot + 1);
        return env_id_valid(dot + 1) && strlen(dot + 1) < n ? CTLREQ_REQUEST : CTLREQ_BAD_ID;
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
