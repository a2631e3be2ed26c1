/* receive.h - the one way into the queue, as Postfix's cleanup is.
 *
 * SMTP sessions, the pickup folder and the service's own notices (NDRs,
 * delay notifications) all hand their messages here. This module creates
 * the spool file, writes the source's Received field, counts the message
 * against the hop and size limits, runs the content filter, commits, and
 * reports the same events for every source (a held message, a failed
 * filter). What differs between sources is data in core/receipt.h.
 *
 * A message goes begin, write..., end, then the steps end returns:
 * RECEIVE_STEP_FILTER: call receive_filter (it blocks: never on an I/O
 * worker) and then receive_filtered; RECEIVE_STEP_COMMIT: call
 * receive_commit (blocking) or receive_commit_async (the group commit calls
 * back; for SMTP sessions on the I/O engine) and then receive_committed;
 * RECEIVE_STEP_DONE: the outcome is known. receive_run does all of it on
 * the caller's thread. receive_free ends it (a message not committed is
 * dropped from the spool).
 *
 * This module never speaks SMTP, never reads the pickup folder and never
 * decides delivery; it only takes a message into the queue or says why not.
 */
#ifndef IMSVC_SERVICE_RECEIVE_H
#define IMSVC_SERVICE_RECEIVE_H

#include <windows.h>

#include "receipt.h"
#include "config.h"
#include "envelope.h"
#include "filter.h"

enum receive_step { RECEIVE_STEP_FILTER, RECEIVE_STEP_COMMIT, RECEIVE_STEP_DONE };

struct receive;

/* HostName, ContentFilter, MaxMessageKB and MaxHops; at start and on
 * PARAMCHANGE (a message being received keeps the settings it began with). */
void receive_configure(const struct imsvc_config *cfg);

/* A new message from src. session: the SMTP engine of an SMTP message (its
 * Received field comes from it), else NULL. NULL only when out of memory;
 * a spool that cannot take the message makes the outcome
 * RECEIPT_STORE_FAILED at the end, writes being ignored meanwhile. */
struct receive *receive_begin(enum receipt_source src, const struct smtpd *session);
#define RECEIVE_ORIGIN_MAX 320u
/* Where the message comes from, in words, for the events about it. */
void receive_describe(struct receive *r, const char *origin);
/* The queue ID ("" when the spool could not create the message). */
const char *receive_id(const struct receive *r);
/* Content, in order. The first failure is kept; later writes are ignored. */
void receive_write(struct receive *r, const void *p, size_t len);

/* The content is complete. env: its envelope (sender and recipients); its
 * id and arrival are set here; it must stay valid until the outcome is known. */
enum receive_step receive_end(struct receive *r, struct envelope *env);
/* RECEIVE_STEP_FILTER: run the filter (blocks up to FILTER_TIMEOUT_MS). */
void receive_filter(struct receive *r);
/* The filter could not even be started (no work thread): a failure of the
 * filter, answered as one. */
void receive_filter_unrun(struct receive *r, DWORD err, const char *why);
/* ... then its verdict: reported (hold, failure), and the next step. */
enum receive_step receive_filtered(struct receive *r);
/* RECEIVE_STEP_COMMIT, blocking. */
void receive_commit(struct receive *r);
/* RECEIVE_STEP_COMMIT without waiting: done(arg, err) comes from the
 * committer's thread and must not block; then call receive_committed on the
 * caller's own thread. Returns nonzero when the commit could not even be
 * queued (done is not called: call receive_committed with that error). */
DWORD receive_commit_async(struct receive *r, void (*done)(void *arg, DWORD err), void *arg);
void receive_committed(struct receive *r, DWORD err);

/* All of the above on this thread (pickup, notices). */
enum receipt_outcome receive_run(struct receive *r, struct envelope *env);

/* The outcome (valid once RECEIVE_STEP_DONE is reached or the commit
 * answered): *err the Win32 error of RECEIPT_STORE_FAILED. */
enum receipt_outcome receive_outcome(const struct receive *r, DWORD *err);
/* The answer for the source (core/receipt.h): reply, fate, events. */
void receive_result(const struct receive *r, struct receipt_answer *a);
void receive_free(struct receive *r);

#endif
