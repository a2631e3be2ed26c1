/* outbound.h - one outbound SMTP connection: the driver around the client
 * engine (core/smtpc) on the I/O engine (ioengine.h), for `imsvc send` and
 * the queue. The session runs in the connection's handler; no call here
 * blocks on a socket (the I/O engine must be running).
 *
 * Opening connects (every address getaddrinfo gives, each with the connect
 * timeout) and runs the session until it is ready for a message: greeting,
 * EHLO, STARTTLS through the secure stream (sspi/tls), AUTH NTLM or XAUTH
 * NTLM through sspi/ntlm, or AUTH PLAIN or LOGIN inside TLS, as the options
 * ask. Sending then carries one
 * message at a time over that connection, as often as the caller likes while
 * the connection stays ready; closing says QUIT and closes. Every protocol
 * decision is the engine's; this module owns the socket, the timers, the
 * secure stream and the NTLM context.
 *
 * Two ways to use it. The queue uses the *_async calls: each starts a step
 * and returns at once, and the step's callback runs later, once, on a work
 * thread of the Windows thread pool (never on an I/O worker, so it may read
 * files or query DNS), where it may start the next step. No thread waits
 * for a connection. `imsvc send` uses outbound_open/send/close, which start
 * the same steps and wait for their callbacks.
 *
 * Threads: any number of connections at once; one step at a time on each.
 * The module keeps no mutable state outside the connection. The I/O engine
 * (which owns WSAStartup) runs before the first call.
 *
 * It never writes the journal and never touches a queue file: it reports
 * failures to the event log (4131 for a failed SSPI call, 4020
 * MSG_SEND_FAILED once for a failed connect or session) and returns every
 * result to the caller, who decides what a failure means for the message.
 * It never prints a password or an NTLM token (the -v transcript shows token
 * lines as their size) and keeps a copy of the credentials only until the
 * session is ready (zeroed then).
 */
#ifndef IMSVC_OUTBOUND_H
#define IMSVC_OUTBOUND_H

#include <winsock2.h>   /* before windows.h */
#include <windows.h>
#include <stddef.h>

#include "smtpc.h"
#include "tls.h"

struct outbound_opts {
    const char *host;            /* DNS name or address, without brackets */
    const char *port;            /* decimal, e.g. "25" */
    const char *helo;            /* our EHLO name; NULL (or ""): the computer's DNS name, else "localhost" */
    enum smtpc_tls_policy tls;
    enum tls_trust trust;
    const struct tls_policy *policy; /* NULL: TLS_POLICY_DEFAULT; set in the credentials and checked after the handshake */
    enum smtpc_auth_policy auth;
    unsigned mechs;              /* SMTPC_MECH_*; 0: NTLM only. PLAIN and LOGIN log on as
                                    DOMAIN\user (or user) with password, inside TLS only */
    enum smtpc_policy_class tls_missing, auth_missing;   /* passed to the engine; SMTPC_CLASS_DEFAULT normally */
    enum smtpc_policy_class auth_refused;                /* ... as is this (TRANSIENT: a wrong password defers) */
    const wchar_t *domain;       /* explicit NTLM credentials (domain may be NULL or L""), */
    const wchar_t *user;         /* or user NULL: the current account. outbound never */
    const wchar_t *password;     /* modifies or frees these; it copies them until the session is ready and zeroes the copies */
    int verbose;                 /* print the dialogue and TLS/auth facts on stdout, as `imsvc send -v` does */
    const wchar_t *who;          /* names the caller in event texts, e.g. L"imsvc send" or L"queue delivery" */
};

struct outbound;

/* Connect (each address getaddrinfo returns, with the connect timeout) and
 * run the session until it is ready for a message: greeting, EHLO, STARTTLS,
 * AUTH as the options ask. Returns 0 with *out set, or -1 with *fail filled
 * in (outcome SMTPC_TRANSIENT or SMTPC_PERMANENT, status like "4.4.1", why =
 * one sentence naming the real reason incl. the Winsock error text/number for
 * connect failures, reply = the server's reply if one decided it) and nothing
 * left open. SSPI failures are reported to the event log (4131); connect
 * failures and session failures too (event MSG_SEND_FAILED with
 * LOC_SMTPC_CONNECT / LOC_SMTPC_SESSION), but only once per failure. The
 * options need only live until this returns. */
int outbound_open(const struct outbound_opts *o, struct outbound **out, struct smtpc_result *fail);

/* The same, without waiting: returns 0 and later calls done(arg, c, fail)
 * once on a work thread, with c the ready connection (fail NULL), or c NULL
 * and fail the result outbound_open would give (valid during the call).
 * Returns -1 with *fail filled in, and never calls done, when it cannot
 * start at all. The options need only live until this returns. */
typedef void (*outbound_open_fn)(void *arg, struct outbound *c, const struct smtpc_result *fail);
int outbound_open_async(const struct outbound_opts *o, outbound_open_fn done, void *arg,
                        struct smtpc_result *fail);

unsigned outbound_extensions(const struct outbound *c);        /* SC_EXT_* from the last EHLO */
unsigned outbound_flags(const struct outbound *c);             /* SC_* (TLS up, authenticated) */
unsigned long long outbound_size_limit(const struct outbound *c); /* SIZE, 0: none */
const char *outbound_peer(const struct outbound *c);           /* "host:port" ("[v6]:port") */
const char *outbound_tls_text(const struct outbound *c);       /* negotiated protocol/cipher as tls_policy_text gives, or "" when no TLS */

/* Send one message: len octets at content (as stored: CRLF lines; the engine
 * dot-stuffs), to m->to. results[0..m->n_to) get each recipient's result
 * (never left PENDING: recipients the session never reached get the
 * session's failure, classed transient if the failure was OK/PENDING); *msg
 * (may be NULL) gets the message's own result. Returns 0 if the connection
 * is ready for another message, -1 if it has closed (results are filled
 * either way). A message the engine cannot start (no recipients, more than
 * SMTPC_MAX_RCPT, a NULL address) fails transiently, status 4.3.0, and the
 * connection stays ready. */
int outbound_send(struct outbound *c, const struct smtpc_message *m, const void *content, size_t len,
                  struct smtpc_result *results, struct smtpc_result *msg);

/* The same, without waiting: done(arg, rc) runs once on a work thread with
 * what outbound_send would return, the results filled in. m, content,
 * results and msg must live until then. */
typedef void (*outbound_send_fn)(void *arg, int rc);
void outbound_send_async(struct outbound *c, const struct smtpc_message *m, const void *content,
                         size_t len, struct smtpc_result *results, struct smtpc_result *msg,
                         outbound_send_fn done, void *arg);

/* Nothing more to send: QUIT if still open, TLS close_notify, close the
 * socket, free. NULL is fine. */
void outbound_close(struct outbound *c);

/* The same, without waiting: c is freed once the connection has ended; then
 * done(arg) runs on a work thread, if done is not NULL. */
void outbound_close_async(struct outbound *c, void (*done)(void *arg), void *arg);

#endif
