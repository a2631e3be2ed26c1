/* qmgr.c - the queue manager's decisions for one message (see qmgr.h). */
#include "qmgr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void unroutable(struct qmgr_unroutable *u, size_t idx, const struct env_rcpt *r,
                       struct route_verdict *v)
{
    memset(u, 0, sizeof *u);
    u->idx = idx;
    /* an accepted verdict without a usable key: a route we cannot name */
    if (v->code == 250)
        snprintf(v->why, sizeof v->why, "no route to the domain %.255s", r->addr.domain);
    smtpc_result_local(&u->result, v->code / 100 == 4 ? SMTPC_TRANSIENT : SMTPC_PERMANENT,
                       SMTPC_R_NONE, v->code == 250 || !v->status ? "5.4.4" : v->status, v->why);
}

int qmgr_plan(const struct envelope *e, int64_t now, const struct retry_policy *p,
              const struct route_config *rc, struct qmgr_plan *out)
{
    memset(out, 0, sizeof *out);
    size_t n = e->n_rcpt, cap = n ? n : 1;
    size_t *due = calloc(cap, sizeof *due);
    out->late = calloc(cap, sizeof *out->late);
    out->groups = calloc(cap, sizeof *out->groups);
    out->bad = calloc(cap, sizeof *out->bad);
    if (!due || !out->late || !out->groups || !out->bad)
        goto nomem;

    for (size_t i = 0; i < n; i++) {
        const struct env_rcpt *r = &e->rcpt[i];
        if (r->state == ENV_DEFERRED &&
            retry_delay_due(p, e->arrived, now, (r->notified & ENV_NOTIFIED_DELAY) != 0))
            out->late[out->n_late++] = i;
    }

    size_t n_due = env_due(e, now, due, n);
    for (size_t i = 0; i < n_due; i++) {
        const struct env_rcpt *r = &e->rcpt[due[i]];
        struct route_verdict v;
        char key[ROUTE_KEY_MAX];
        if (route_recipient(rc, &r->addr, 1, &v) != 0 || route_key(&v.route, key, sizeof key) < 0) {
            unroutable(&out->bad[out->n_bad++], due[i], r, &v);
            continue;
        }
        size_t k = 0;
        while (k < out->n_groups && strcmp(out->groups[k].key, key) != 0)
            k++;
        struct qmgr_group *g = &out->groups[k];
        if (k == out->n_groups) {
            g->idx = calloc(cap, sizeof *g->idx);
            if (!g->idx)
                goto nomem;
            snprintf(g->key, sizeof g->key, "%s", key);
            g->route = v.route;
            out->n_groups++;
        }
        g->idx[g->n++] = due[i];
    }
    free(due);
    return 0;

nomem:
    free(due);
    qmgr_plan_free(out);
    return -1;
}

void qmgr_plan_free(struct qmgr_plan *pl)
{
    if (pl->groups)
        for (size_t k = 0; k < pl->n_groups; k++)
            free(pl->groups[k].idx);
    free(pl->groups);
    free(pl->late);
    free(pl->bad);
    memset(pl, 0, sizeof *pl);
}

/* a and b name the same host: case-insensitive, brackets around either and
 * one trailing dot ignored. */
static int host_eq(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    if (na >= 2 && a[0] == '[' && a[na - 1] == ']')
        a++, na -= 2;
    if (nb >= 2 && b[0] == '[' && b[nb - 1] == ']')
        b++, nb -= 2;
    if (na && a[na - 1] == '.')
        na--;
    if (nb && b[nb - 1] == '.')
        nb--;
    if (na != nb || na == 0)
        return 0;
    for (size_t i = 0; i < na; i++) {
        int x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z')
            x += 32;
        if (y >= 'A' && y <= 'Z')
            y += 32;
        if (x != y)
            return 0;
    }
    return 1;
}

size_t qmgr_flush(struct envelope *e, const struct route_config *rc, const char *dest)
{
    size_t n = 0;
    int all = !dest || !dest[0];
    struct route_verdict *v = all ? NULL : malloc(sizeof *v);   /* large: not on the stack */
    if (!all && !v)
        return 0;
    for (size_t i = 0; i < e->n_rcpt; i++) {
        struct env_rcpt *r = &e->rcpt[i];
        if (r->state != ENV_DEFERRED)
            continue;
        if (!all && !host_eq(r->addr.domain, dest) &&
            !(route_recipient(rc, &r->addr, 1, v) == 0 && v->route.kind != ROUTE_DROP &&
              host_eq(v->route.host, dest)))
            continue;
        r->next_attempt = 0;
        n++;
    }
    free(v);
    return n;
}
