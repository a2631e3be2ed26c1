/* queuectl.h - requests from `imsvc queue retry|delete` (and `retry --all`,
 * `retry --destination D`) to the running service: the one implementation
 * of both sides of core/ctlreq.h's protocol, over files in the queue's ctl
 * folder (spool.h names it).
 *
 * The command writes a request and waits for the answer (queuectl_request);
 * the service's queue manager scans the folder about once a second and
 * hands each request to its handler (queuectl_scan), which carries it out
 * or leaves it for a later scan. Neither side changes a queued message
 * here: the handler does, through the spool.
 */
#ifndef IMSVC_QUEUECTL_H
#define IMSVC_QUEUECTL_H

#include <windows.h>
#include <stddef.h>

#include "ctlreq.h"

/* The command's side: write the request for id, wait up to wait_ms for the
 * answer and print it (stdout; a timeout on stderr). Returns 0 when the
 * service answered with success, 1 otherwise. */
int queuectl_request(enum ctlreq_action a, const char *id, DWORD wait_ms);

/* The service's side. The handler carries out a request and returns 0 with
 * *failed and text (NUL-terminated, at most n) set, or 1 to leave the
 * request for a later scan. */
typedef int (*queuectl_handler)(void *arg, enum ctlreq_action a, const char *id, int *failed,
                                char *text, size_t n);
void queuectl_scan(queuectl_handler h, void *arg);

#endif
