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
