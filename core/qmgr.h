/* qmgr.h - the queue manager's decisions for one message it looks at:
 * which recipients are owed a delay notice, which are due for an attempt
 * now, where each due one goes (grouped by destination, one connection's
 * worth each), and which cannot be routed and with what result.
 *
 * The service (service/queue/queue.c) reads the message, asks for the plan,
 * sends the notices, records the unroutable recipients' results and hands
 * each group to delivery. Routing is core/route.h's route_recipient, the
 * same verdict the SMTP server gave at RCPT TO; a recipient it would refuse
 * now (the configuration changed, or it came another way) fails or waits
 * with the same reason, and is never routed by a guess. Portable core: no
 * clock, no windows.h; the time is passed in.
 */
#ifndef IMSVC_QMGR_H
#define IMSVC_QMGR_H

#include <stddef.h>
#include <stdint.h>

#include "envelope.h"
#include "retry.h"
#include "route.h"
#include "smtpc.h"


struct qmgr_group {
    char key[ROUTE_KEY_MAX];      /* route_key: equal for recipients that share a connection */
    struct route route;
    size_t *idx;                 /* recipients (indexes into the envelope), in envelope order */
    size_t n;
};

struct qmgr_unroutable {
    size_t idx;
    struct smtpc_result result;  /* transient (4xx verdict) or permanent, with the verdict's reason */
};

struct qmgr_plan {
    size_t *late;                /* deferred recipients owed a delay notice */
    size_t n_late;
    struct qmgr_group *groups;   /* in the order their first recipient appears */
    size_t n_groups;
    struct qmgr_unroutable *bad;
    size_t n_bad;
};

/* The plan for e at now. Returns 0, or -1 when out of memory (the plan is
 * then empty and the message should be looked at again later). */
int qmgr_plan(const struct envelope *e, int64_t now, const struct retry_policy *p,
              const struct route_config *rc, struct qmgr_plan *out);

/* `imsvc queue retry --all` (dest NULL or "") or `--destination dest`:
 * e's deferred recipients that go to dest are made due now (next_attempt
 * 0), as Postfix's `postqueue -f` / `-s site` do. A recipient goes to dest
 * when its domain is dest, or when the route the queue would take for it
 * (route_recipient over rc) leads to the host dest: the smart host, an MX
 * route's domain, an address literal (brackets optional); names compare
 * case-insensitively, a trailing dot ignored. Returns how many were made due. */
size_t qmgr_flush(struct envelope *e, const struct route_config *rc, const char *dest);

/* Release what the plan holds. A caller that keeps a group's idx sets it
 * to NULL first. */
void qmgr_plan_free(struct qmgr_plan *pl);

#endif
