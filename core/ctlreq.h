/* ctlreq.h - the protocol between `imsvc queue retry|delete` and the
 * running service, without I/O.
 *
 * A request is an empty file in the queue's ctl folder named ACTION.ID
 * ("retry.ID" or "delete.ID", ID a queue ID as core/commitlog.h checks it),
 * or, for `imsvc queue retry --all|--destination D`, "flush.all" or
 * "flush.to.D" (D a destination as ctlreq_dest_valid checks it).
 * The service carries it out at its next scan (about once a second), writes
 * its answer to ACTION.ID.done, and deletes the request. The answer is one
 * line of text for the administrator, preceded by '!' when the request
 * failed. A request the service cannot carry out yet (its message is being
 * delivered) stays where it is until a later scan. Portable core.
 */
#ifndef IMSVC_CTLREQ_H
#define IMSVC_CTLREQ_H

#include <stddef.h>

#include "envelope.h"

/* FLUSH: every deferred message now (its target "" for all, or a
 * destination); added after RETRY and DELETE, whose names stay as they were. */
enum ctlreq_action { CTLREQ_RETRY, CTLREQ_DELETE, CTLREQ_FLUSH };

/* A destination for FLUSH: a domain or host name, or an IPv4 address with or
 * without brackets; short enough that a request's path fits MAX_PATH. */
#define CTLREQ_DEST_MAX 160
#define CTLREQ_TARGET_MAX (CTLREQ_DEST_MAX > ENV_ID_MAX ? CTLREQ_DEST_MAX : ENV_ID_MAX)
#define CTLREQ_NAME_MAX (sizeof "flush.to." + CTLREQ_TARGET_MAX + sizeof ".done")
#define CTLREQ_ANSWER_MAX 400   /* an answer's text, without the '!' */

/* Letters, digits, '-', '.', '_', and '[' ']' around an address: a name
 * that is safe as part of a file name and can be a route's host or a
 * recipient's domain. 1 or 0. */
int ctlreq_dest_valid(const char *dest);

/* "retry", "delete" or "flush": for messages. */
const char *ctlreq_action_name(enum ctlreq_action a);

/* The request file's name, and its answer's. id: the queue ID, or FLUSH's
 * target ("" for all, else a destination). Each returns the length, or -1
 * (buf "") when id is not valid for the action or buf is too small. */
int ctlreq_name(enum ctlreq_action a, const char *id, char *buf, size_t n);
int ctlreq_answer_name(enum ctlreq_action a, const char *id, char *buf, size_t n);

enum ctlreq_kind {
    CTLREQ_REQUEST,     /* a request: *a and id are set (FLUSH: "" for all) */
    CTLREQ_BAD_ID,      /* a known action with something that is no queue ID, or
                           for FLUSH no destination (id: its text, cut) */
    CTLREQ_ANSWER,      /* an answer file: not for the service */
    CTLREQ_OTHER        /* anything else: left alone */
};

/* What a file name in the ctl folder is. id (n >= CTLREQ_TARGET_MAX + 1)
 * gets the ID (or FLUSH's target) of a request. */
enum ctlreq_kind ctlreq_parse(const char *name, enum ctlreq_action *a, char *id, size_t n);

/* The answer file's content: "!" when failed, then text (control
 * characters become spaces; cut at CTLREQ_ANSWER_MAX). Returns the length,
 * or -1 if buf is too small. */
int ctlreq_answer(int failed, const char *text, char *buf, size_t n);

/* Read an answer file's content (len bytes, NUL-terminated by the caller):
 * *failed, and the text (a pointer into buf). */
const char *ctlreq_read_answer(const char *buf, size_t len, int *failed);

#endif
