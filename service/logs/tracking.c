/* tracking.c - the message tracking log's events (see tracking.h).
 *
 * Runs on the threads of the modules that call it (an I/O worker for an
 * SMTP commit, the queue's work threads): it must only format and append.
 */
#include "logs.h"   /* winsock2.h before windows.h */
#include "tracking.h"

#include <stdio.h>
#include <string.h>

#include "retry.h"
#include "tracklog.h"

static void stamp(struct track_line *t, enum track_event e, const char *id)
{
    SYSTEMTIME s;
    GetSystemTime(&s);
    memset(t, 0, sizeof *t);
    snprintf(t->when, sizeof t->when, "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ", s.wYear, s.wMonth,
             s.wDay, s.wHour, s.wMinute, s.wSecond, s.wMilliseconds);
    t->event = e;
    if (id && env_id_valid(id))
        track_set(t->queue_id, sizeof t->queue_id, id);
}

static void put(const struct track_line *t)
{
    char line[TRACK_LINE_MAX];
    int n = track_format(t, line, sizeof line);
    if (n > 0)
        logs_append(LOG_TRACKING, line, (size_t)n);
}

static void sender(struct track_line *t, const struct envelope *env)
{
    addr_mailbox_text(&env->from, t->sender, sizeof t->sender);
}

void tracking_receive(const struct envelope *env, const char *message_id,
                      enum receipt_source src, enum receipt_outcome o)
{
    if (!logs_enabled(LOG_TRACKING) || !env || (o != RECEIPT_QUEUED && o != RECEIPT_HELD))
        return;
    struct track_line t;
    stamp(&t, TRACK_RECEIVE, env->id);
    track_set(t.message_id, sizeof t.message_id, message_id);
    sender(&t, env);
    if (src == RECEIPT_SMTP)
        snprintf(t.remote, sizeof t.remote, "%s %s", env->client, env->helo);
    else
        snprintf(t.remote, sizeof t.remote, "%s", src == RECEIPT_PICKUP ? "pickup directory"
                                                                       : "this service (notice)");
    if (env->auth_user[0])
        snprintf(t.reply, sizeof t.reply, "%s as %s", o == RECEIPT_HELD ? "held" : "queued",
                 env->auth_user);
    else
        snprintf(t.reply, sizeof t.reply, "%s", o == RECEIPT_HELD ? "held" : "queued");
    for (size_t i = 0; i < env->n_rcpt; i++) {
        addr_mailbox_text(&env->rcpt[i].addr, t.recipient, sizeof t.recipient);
        put(&t);
    }
}

void tracking_filter(const struct envelope *env, const char *id, const char *message_id,
                     const char *what, const char *reason)
{
    if (!logs_enabled(LOG_TRACKING) || !env)
        return;
    struct track_line t;
    stamp(&t, TRACK_FILTER, id);
    track_set(t.message_id, sizeof t.message_id, message_id);
    sender(&t, env);
    track_set(t.remote, sizeof t.remote, "content filter");
    snprintf(t.reply, sizeof t.reply, "%s: %s", what, reason ? reason : "");
    for (size_t i = 0; i < env->n_rcpt; i++) {
        addr_mailbox_text(&env->rcpt[i].addr, t.recipient, sizeof t.recipient);
        put(&t);
    }
}

void tracking_rcpt(const char *id, const struct envelope *env, const struct env_rcpt *r,
                   int cls)
{
    if (!logs_enabled(LOG_TRACKING) || !env || !r)
        return;
    struct track_line t;
    stamp(&t, cls == RETRY_DELIVERED ? TRACK_DELIVER : cls == RETRY_TRANSIENT ? TRACK_DEFER
                                                                              : TRACK_FAIL, id);
    sender(&t, env);
    addr_mailbox_text(&r->addr, t.recipient, sizeof t.recipient);
    track_set(t.remote, sizeof t.remote, r->remote);
    /* what the other server said; our own sentence when it said nothing */
    if (r->reply[0] && r->why[0] && !strstr(r->why, r->reply))
        snprintf(t.reply, sizeof t.reply, "%s (%s)", r->reply, r->why);
    else
        track_set(t.reply, sizeof t.reply, r->reply[0] ? r->reply : r->why);
    put(&t);
}

void tracking_dsn(const char *id, const struct envelope *env, const char *new_id, int failure)
{
    if (!logs_enabled(LOG_TRACKING) || !env)
        return;
    struct track_line t;
    stamp(&t, TRACK_DSN, id);
    addr_mailbox_text(&env->from, t.recipient, sizeof t.recipient);   /* the notice goes to the sender */
    track_set(t.sender, sizeof t.sender, "<>");
    snprintf(t.reply, sizeof t.reply, "%s queued as %s",
             failure ? "non-delivery report" : "delay notification", new_id ? new_id : "");
    put(&t);
}

void tracking_badmail(const char *id, const struct envelope *env, const char *why)
{
    if (!logs_enabled(LOG_TRACKING))
        return;
    struct track_line t;
    stamp(&t, TRACK_BADMAIL, id);
    if (env)
        sender(&t, env);
    track_set(t.remote, sizeof t.remote, "Badmail");
    track_set(t.reply, sizeof t.reply, why);
    put(&t);
}
