/* spool.h - the queue on disk: nothing is acknowledged before it is there.
 *
 * Layout under the queue directory (<DataDirectory>\Queue):
 *   active\ID.eml, active\ID.env
 *                    a queued message: content (byte for byte, our Received
 *                    header first) and envelope (core/envelope.h), from its
 *                    commit until its first envelope update
 *   XX\YY\ID.eml, XX\YY\ID.env
 *                    ... after it: XX and YY hash folders derived from the ID,
 *                    so no folder grows with the messages waiting
 *   Hold\XX\YY\ID.*  a message a content filter held: kept, never delivered
 *                    until released (`imsvc queue retry ID`)
 *   tmp\             messages being received; emptied on start, but for the
 *                    spilled contents a kept commit log needs
 *   log\commit-N.log the group-commit log (docs/queue-format.md)
 *
 * A commit appends the envelope and (up to SPOOL_INLINE_MAX) the content to
 * the commit log; commits that arrive together share one FlushFileBuffers of
 * that log (group commit); only then are the files moved into the queue with
 * an atomic rename and the caller told, so it may send 250. A larger message
 * has its own content flushed first and only its envelope logged. A
 * checkpointer flushes the queue files a log covers, off the acknowledgement
 * path, and then deletes the log; on start, whatever a surviving log holds
 * that is missing or torn in the queue is rewritten from it.
 *
 * This module is the only owner of the queue's layout: no other file builds
 * a path inside it or decides what a queue ID is. A flat queue (main before
 * the hash folders) is moved into the hash folders by spool_open.
 * This module never decides anything about delivery and never sends mail.
 */
#ifndef IMSVC_SPOOL_H
#define IMSVC_SPOOL_H

#include <windows.h>

#include "envelope.h"

#define SPOOL_INLINE_MAX (1024u * 1024u)  /* larger contents are flushed on their own */

struct spool_msg;

/* Create the directories, recover what the commit logs hold, empty tmp\ and
 * start the committer and checkpointer threads. *recovered (may be NULL)
 * gets how many messages the logs had to restore. A log that cannot be read
 * or restored from is kept (event 4160) and replayed at the next start; that
 * is no failure. Returns a Win32 error. */
DWORD spool_open(const wchar_t *queue_dir, unsigned *recovered);
/* Finish the commits in progress, checkpoint, stop the threads. */
void spool_close(void);

/* A new message: a fresh queue ID (letters, digits, '.') and an open file
 * in tmp\ to write the content to. spool_create_readable for a message
 * whose file another program opens before the commit (the content filter):
 * it is opened without delete access, which that program would otherwise
 * have to share. */
DWORD spool_create(struct spool_msg **out);
DWORD spool_create_readable(struct spool_msg **out);
const char *spool_msg_id(const struct spool_msg *m);
const wchar_t *spool_msg_path(const struct spool_msg *m);   /* tmp\ID.eml */
DWORD spool_write(struct spool_msg *m, const void *p, size_t len);
/* Write the envelope next to the content as tmp\ID.env (for a content
 * filter to read) and return its path; NULL on failure. */
const wchar_t *spool_msg_env_path(struct spool_msg *m, const struct envelope *env);
/* Make it durable and queue it (in Hold\ when hold is set). Blocks until
 * the group commit it joined is on disk and the files are renamed into the
 * queue. env->id must be spool_msg_id(m). Frees m. Returns a Win32 error:
 * on anything but ERROR_SUCCESS the message is not queued. */
DWORD spool_commit(struct spool_msg *m, const struct envelope *env, int hold);
/* The same without waiting: done(arg, error) is called from the committer
 * thread once the group commit it joined is on disk and renamed (or has
 * failed); it must not block. Returns an error (and done is not called) if
 * the commit could not even be queued. Frees m either way. */
DWORD spool_commit_async(struct spool_msg *m, const struct envelope *env, int hold,
                         void (*done)(void *arg, DWORD err), void *arg);
/* Drop a message that is not to be queued. Frees m. */
void spool_abort(struct spool_msg *m);

/* Called by the committer for every message queued (not held), after the
 * rename; set before spool_open. */
void spool_set_notify(void (*fn)(const char *id));

/* The queue's side. Envelope updates are atomic (tmp then rename); the
 * first one moves the message from active\ into its hash folder. */
DWORD spool_read_env(const char *id, int held, struct envelope *env);
DWORD spool_update_env(const struct envelope *env);
DWORD spool_read_content(const char *id, int held, unsigned char **buf, size_t *len);
DWORD spool_remove(const char *id, int held);
/* Make every deferred recipient of a queued message due now. */
DWORD spool_retry_now(const char *id);
/* Move a held message into the queue (released) or delete it. */
DWORD spool_release(const char *id);

/* Every queued message: fn is called with its ID and whether it is held.
 * Works without spool_open (the `imsvc queue` command reads the queue of a
 * service that is running or not); files that do not parse are skipped and
 * counted in *bad (may be NULL). */
DWORD spool_scan(const wchar_t *queue_dir, void (*fn)(void *arg, const char *id, int held),
                 void *arg, unsigned *bad);

/* The queue directory's subfolders (tmp, log, Hold, ctl, active), NULL-terminated,
 * for whoever creates or secures them (service/host/acl.c). */
extern const wchar_t *const spool_subfolders[];
/* A write to the data directory failed with err. When err means the disk
 * is full, the first such failure is reported (event 4150, location and
 * err as its Data, fmt saying what failed) and later ones are only counted
 * until a message is stored again after a quiet spell (event 4151); returns
 * nonzero then, and the caller reports nothing more. message: it was a
 * message being stored. Other errors: returns 0, the caller reports them. */
int spool_note_failure(DWORD err, DWORD location, int message, const wchar_t *fmt, ...);

/* Messages committed and log flushes made since spool_open: with group
 * commit, flushes stay below commits when commits arrive together. */
void spool_counters(unsigned long long *commits, unsigned long long *flushes);

/* The queue directory spool_open was given; spool_set_dir sets it for a
 * reader (the `imsvc queue` command) that does not open the spool. */
const wchar_t *spool_dir(void);
void spool_set_dir(const wchar_t *queue_dir);

/* A queue ID: 1 to ENV_ID_MAX letters, digits, '.', '-', '_'. Every ID
 * that comes from outside (a command line, a request file's name) is
 * checked with this before it is used. */
int spool_id_valid(const char *id);
/* The path of a message's file in queue_dir, ext L"eml" or L"env": where it
 * is now, Queue\active\ID.ext when it is there, else its hash folder
 * (Queue\XX\YY\ID.ext; held: Hold\XX\YY\ID.ext). 0, or -1 with out
 * empty when id is not a queue ID or the path does not fit. */
int spool_path(const wchar_t *queue_dir, const char *id, int held, const wchar_t *ext,
               wchar_t *out, size_t cap);
/* The folder of control requests (`imsvc queue retry|delete` while the
 * service runs) in spool_dir(), and the status file in queue_dir; out is
 * empty if the path does not fit. */
void spool_ctl_dir(wchar_t *out, size_t cap);
void spool_status_path(const wchar_t *queue_dir, wchar_t *out, size_t cap);

/* Read a whole small file (at most max octets). */
DWORD spool_read_file(const wchar_t *path, size_t max, unsigned char **buf, size_t *len);

#endif
