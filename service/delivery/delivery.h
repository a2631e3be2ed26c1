/* delivery.h - carrying a queued message's recipients to their destination:
 * the drop directory, the smart host or the domain's MX hosts.
 *
 * The queue manager (queue.h) decides what is due and where it goes; it
 * hands this module one job per message and destination, and gets each
 * job's results back through the job's done callback. This module owns the
 * destinations (their job lists, the connections parked on them, and what
 * is known about one that cannot be reached), the MX lookup, the outbound
 * connections (outbound.h) and the writes into Drop. It never reads or
 * changes the spool: the results are the queue manager's to record.
 *
 * A delivery carries the jobs of one destination, one after another, over
 * one connection. It has no thread: its steps run on the Windows thread
 * pool between the callbacks of its connection (docs/io.md). At most
 * MaxOutbound deliveries run at once, at most MaxPerDestination on one
 * destination; a connection with nothing more to carry waits two seconds on
 * its destination for another job, then says QUIT.
 */
#ifndef IMSVC_DELIVERY_H
#define IMSVC_DELIVERY_H

#include <winsock2.h>
#include <windows.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "envelope.h"
#include "route.h"
#include "smtpc.h"
#include "tls.h"

/* The remote host recorded for a recipient written into the drop directory. */
#define DELIVERY_DROP_REMOTE "drop directory"

struct delivery_job {
    const char *id;                  /* the queue ID (names the Drop file) */
    const struct envelope *env;      /* read only: the sender and the recipients' addresses */
    const unsigned char *content;    /* as stored; lives until done */
    size_t len;
    int eight_bit;                   /* the content has octets above 127 */
    const size_t *idx;               /* the recipients of env this job carries */
    size_t n;
    /* Called once, on a work thread, when the job is over: res[i] is the
     * result for idx[i] (res[0] for all when same), remote the host that
     * gave it. The job is the caller's again from then. */
    void (*done)(struct delivery_job *j, const struct smtpc_result *res, int same,
                 const char *remote);
    struct delivery_job *next;       /* this module's */
};

/* What the configuration says, prepared once per configuration. */
struct delivery_config {
    unsigned max_per_destination;
    uint32_t dead_hold_secs;         /* an unreachable destination is left alone this long */
    char helo[256];
    int smart_host_tls, smart_host_trust, smart_host_auth;   /* as in struct imsvc_config */
    unsigned smart_host_mechs;       /* SmartHostAuthMechanisms as SMTPC_MECH_* */
    wchar_t sh_domain[128], sh_user[256], sh_password[257];
    /* per-domain routes (the configuration's parsed list, immutable) and
     * each one's password, from its secret (route_pw[i] for routes->v[i];
     * "" when it has no user); never freed, as the configuration is not */
    const struct route_list *routes;
    wchar_t (*route_pw)[257];
    struct tls_policy tls_policy;    /* the smart host's */
    wchar_t drop_dir[MAX_PATH];
    int drop_envelope;               /* DropEnvelopeLines: x-sender/x-receiver lines first */
    char masquerade[256];            /* MasqueradeDomain: the sender's domain outbound; "" none */
};

/* Fill dc from cfg (reads the smart host's password); first_retry_secs is
 * the retry policy's first interval (0: none), which bounds the hold. */
void delivery_config_make(const struct imsvc_config *cfg, uint32_t first_retry_secs,
                          struct delivery_config *dc);

/* Before the first job: MaxOutbound, and the configuration, which must stay
 * valid (and unchanged) for as long as the module may read it. */
void delivery_start(unsigned max_outbound, const struct delivery_config *dc);
/* A new configuration for what starts from now on (same rule); what was
 * known about unreachable destinations is forgotten. */
void delivery_configure(const struct delivery_config *dc);

/* Carry j to the destination rt (key: route_key's, equal for equal
 * destinations). It starts at once if there is room, else when there is. */
void delivery_submit(const struct route *rt, const char *key, struct delivery_job *j);

/* About once a second, from the queue manager: close connections parked
 * long enough, start what waits for room. */
void delivery_tick(void);
/* `imsvc queue retry --all|--destination`: every destination marked
 * unreachable is tried again by its next job, instead of that job failing
 * with the last attempt's reason until the hold ends. */
void delivery_revive(void);
/* While paused no job starts, and parked connections close. */
void delivery_pause(int paused);
/* Nothing new starts; parked connections close; deliveries in progress get
 * until the deadline (GetTickCount) to finish, after which they are
 * abandoned (their messages are tried again at the next start). */
void delivery_stop(DWORD deadline);

/* Outbound connections open or being opened now. */
long delivery_connections(void);

#endif
