/* smtpc.h - the SMTP client session engine (RFC 5321), sans I/O.
 *
 * One struct smtpc is one outbound SMTP connection, possibly carrying several
 * messages. The socket layer feeds it the server's bytes (smtpc_feed), sends
 * the command bytes it queues (smtpc_output / smtpc_output_consumed), and
 * acts on the events smtpc_next returns: run the TLS client handshake, give
 * an NTLM token, hand over a message, stream its content, read the results.
 * The engine never reads a socket, a clock or a file, and never waits: where
 * it needs the caller it stops until the matching smtpc_* call. Portable
 * core: no windows.h. See docs/smtp-client.md for the contract in full.
 */
#ifndef IMSVC_SMTPC_H
#define IMSVC_SMTPC_H

#include <stddef.h>

/* Timeouts, RFC 5321 4.5.3.2, in seconds (see smtpc_timeout_secs). */
#define SMTPC_TIMEOUT_INITIAL    300u  /* the 220 greeting */
#define SMTPC_TIMEOUT_COMMAND    300u  /* EHLO, HELO, STARTTLS, AUTH, RSET, QUIT */
#define SMTPC_TIMEOUT_MAIL       300u  /* reply to MAIL FROM */
#define SMTPC_TIMEOUT_RCPT       300u  /* reply to RCPT TO */
#define SMTPC_TIMEOUT_DATA_INIT  120u  /* the 354 to DATA */
#define SMTPC_TIMEOUT_DATA_BLOCK 180u  /* each send of message content */
#define SMTPC_TIMEOUT_DATA_TERM  600u  /* the reply to the final "." */

#define SMTPC_MAX_RCPT        1000u  /* recipients per message */
#define SMTPC_TOKEN_MAX       4096u  /* an NTLM token either way, decoded */
#define SMTPC_STATUS_MAX      15     /* "5.1.1" with room: 1.3.3 digits */
#define SMTPC_REPLY_TEXT_MAX  1000   /* a reply as kept for the caller */
#define SMTPC_WHY_MAX         1400   /* a result's sentence, reply included */
#define SMTPC_CRED_MAX        1024u  /* octets of a user name or password for AUTH PLAIN/LOGIN */

enum smtpc_tls_policy {
    SMTPC_TLS_OFF,            /* never STARTTLS */
    SMTPC_TLS_OPPORTUNISTIC,  /* STARTTLS when offered; go on in clear if not
                                 offered or refused */
    SMTPC_TLS_REQUIRED        /* STARTTLS or fail the session */
};

enum smtpc_auth_policy {
    SMTPC_AUTH_NONE,          /* never authenticate */
    SMTPC_AUTH_IF_OFFERED,    /* an allowed mechanism when the server offers one, else go on */
    SMTPC_AUTH_REQUIRED       /* an allowed mechanism or fail the session */
};

/* Mechanisms the session may use (smtpc_config.mechs), tried in this order:
 * NTLM (AUTH, else XAUTH), then PLAIN, then LOGIN. PLAIN and LOGIN send the
 * password itself, so they are used only inside TLS and only with a user. */
#define SMTPC_MECH_NTLM  0x1u
#define SMTPC_MECH_PLAIN 0x2u
#define SMTPC_MECH_LOGIN 0x4u

/* How a failure that comes from local policy, not from a reply, is classed. */
enum smtpc_policy_class {
    SMTPC_CLASS_DEFAULT,      /* the documented default for that failure */
    SMTPC_CLASS_TRANSIENT,
    SMTPC_CLASS_PERMANENT
};

/* What a transcript line is (see smtpc_config.transcript). */
enum smtpc_dir {
    SMTPC_SENT,               /* a command line */
    SMTPC_RECEIVED,           /* a reply line */
    SMTPC_SENT_TOKEN,         /* an NTLM token line we sent (base64; no password) */
    SMTPC_RECEIVED_TOKEN,     /* a 334 line carrying the server's NTLM challenge */
    SMTPC_SENT_SECRET         /* a line carrying a user name or password (AUTH PLAIN or
                                 LOGIN): the transcript gets a label, never the line */
};

struct smtpc_config {
    const char *helo_name;             /* our name for EHLO/HELO; required */
    enum smtpc_tls_policy tls;
    enum smtpc_auth_policy auth;
    /* TLS required but not offered (or only HELO works): DEFAULT = transient,
     * since a retry may find STARTTLS back (a stripped or misconfigured
     * peer). Authentication required but neither AUTH NTLM nor XAUTH NTLM
     * offered: DEFAULT = permanent, since the peer's software will not
     * change between retries. */
    enum smtpc_policy_class tls_missing;
    enum smtpc_policy_class auth_missing;
    /* A refusal of the exchange (535, 454...): DEFAULT = the reply's class.
     * A queue that must not bounce mail over a wrong password sets TRANSIENT
     * (the message waits with the server's reply as its reason). */
    enum smtpc_policy_class auth_refused;
    /* SMTPC_MECH_*; 0 means NTLM only. PLAIN and LOGIN also need user and
     * password (UTF-8), which the engine reads only while it authenticates,
     * before the first READY: the caller may wipe them and set them to NULL
     * then. Neither ever reaches the transcript. */
    unsigned mechs;
    const char *user;
    const char *password;
    /* Called with every line sent and received, without its CRLF, while the
     * engine runs (never for message content). NULL: no transcript. */
    void (*transcript)(void *arg, enum smtpc_dir dir, const char *line, size_t len);
    void *transcript_arg;
};

enum smtpc_event_type {
    SMTPC_EV_NONE,           /* nothing to act on: send the output, read more */
    SMTPC_EV_STARTTLS,       /* the 220 to STARTTLS came: send the output, run the TLS
                                client handshake, then smtpc_tls_started() or
                                smtpc_tls_failed() */
    SMTPC_EV_NTLM,           /* give an NTLM token with smtpc_ntlm_token() (or
                                smtpc_ntlm_failed()): first: the NEGOTIATE token,
                                else (data, len) is the server's CHALLENGE */
    SMTPC_EV_AUTHENTICATED,  /* 235: the exchange succeeded; drop the SSPI context */
    SMTPC_EV_READY,          /* idle: smtpc_message_begin() or smtpc_quit() */
    SMTPC_EV_CONTENT,        /* 354: stream the message with smtpc_content(), then
                                smtpc_content_end() */
    SMTPC_EV_MESSAGE_DONE,   /* the message is finished: read smtpc_message_result()
                                and smtpc_rcpt_result(); READY or CLOSE follows */
    SMTPC_EV_CLOSE           /* send the output, then close; smtpc_failure() says why
                                (outcome SMTPC_OK: a normal end) */
};

struct smtpc_event {
    enum smtpc_event_type type;
    const unsigned char *data;  /* NTLM: the server's challenge, decoded */
    size_t len;
    int first;                  /* NTLM: no challenge yet: start a new context */
    int xauth;                  /* NTLM, AUTHENTICATED: the exchange runs under XAUTH */
};
/* Pointers in an event stay valid until the next call into the engine. */

/* A reply as the server sent it. */
struct smtpc_reply {
    int code;                               /* 0: no reply */
    char status[SMTPC_STATUS_MAX + 1];      /* enhanced status of the first line, or "" */
    char text[SMTPC_REPLY_TEXT_MAX + 1];    /* every line verbatim, code included,
                                               joined by one space; may be cut short */
};

enum smtpc_outcome {
    SMTPC_PENDING,            /* not decided yet */
    SMTPC_OK,                 /* accepted (RCPT) / delivered (message) / normal end */
    SMTPC_TRANSIENT,          /* retry later */
    SMTPC_PERMANENT           /* do not retry with this server */
};

enum smtpc_reason {
    SMTPC_R_NONE,
    SMTPC_R_REPLY,            /* the server's reply decided it (see reply) */
    SMTPC_R_CONNECTION_LOST,  /* smtpc_connection_lost() */
    SMTPC_R_TIMEOUT,          /* smtpc_timeout() */
    SMTPC_R_MALFORMED,        /* the server's reply broke RFC 5321 4.2 */
    SMTPC_R_PROTOCOL,         /* a well-formed reply that makes no sense here */
    SMTPC_R_TLS_NOT_OFFERED,  /* TLS required, STARTTLS not offered (tls_missing) */
    SMTPC_R_TLS_REFUSED,      /* TLS required, STARTTLS refused (class by reply) */
    SMTPC_R_TLS_FAILED,       /* smtpc_tls_failed(): always transient */
    SMTPC_R_AUTH_NOT_OFFERED, /* authentication required, NTLM not offered (auth_missing) */
    SMTPC_R_AUTH_REFUSED,     /* 535 or another refusal of the exchange (class by reply) */
    SMTPC_R_AUTH_LOCAL,       /* smtpc_ntlm_failed(): transient */
    SMTPC_R_AUTH_NEEDS_TLS,   /* authentication required, only PLAIN/LOGIN offered and the
                                 session is not encrypted: the password is never sent
                                 (class tls_missing, default transient, x.7.11) */
    SMTPC_R_8BIT_UNSUPPORTED, /* 8-bit message, no 8BITMIME: permanent, 5.6.3; the
                                 caller may convert and send again instead */
    SMTPC_R_SIZE,             /* larger than the server's SIZE: permanent, 5.3.4 */
    SMTPC_R_BAD_ADDRESS,      /* the address is not a valid RFC 5321 mailbox */
    SMTPC_R_NO_RECIPIENT      /* message: no recipient was accepted */
};

struct smtpc_result {
    enum smtpc_outcome outcome;
    enum smtpc_reason reason;
    char status[SMTPC_STATUS_MAX + 1];  /* for a DSN: the server's, else the engine's */
    struct smtpc_reply reply;           /* the server's reply that decided it (code 0: none) */
    char why[SMTPC_WHY_MAX + 1];        /* one sentence for events and NDRs */
};

/* A message to send. Addresses are bare mailboxes ("user@example.com") or
 * paths ("<user@example.com>"); "" or "<>" is the null sender. */
struct smtpc_message {
    const char *from;
    const char *const *to;
    size_t n_to;                 /* 1..SMTPC_MAX_RCPT */
    unsigned long long size;     /* octets, for SIZE=; 0: unknown, not sent */
    int eight_bit;               /* the content has octets above 127 */
};

/* Session flags (smtpc_flags). */
#define SC_EHLO           0x01u  /* EHLO was accepted (not HELO) */
#define SC_TLS            0x02u  /* TLS is up */
#define SC_AUTHENTICATED  0x04u  /* AUTH or XAUTH succeeded */
#define SC_XAUTH          0x08u  /* ... through XAUTH */

/* What the server offered in its last EHLO reply (smtpc_extensions). */
#define SC_EXT_PIPELINING 0x001u
#define SC_EXT_SIZE       0x002u
#define SC_EXT_8BITMIME   0x004u
#define SC_EXT_STARTTLS   0x008u
#define SC_EXT_AUTH       0x010u  /* AUTH with any mechanism */
#define SC_EXT_AUTH_NTLM  0x020u
#define SC_EXT_XAUTH      0x040u
#define SC_EXT_XAUTH_NTLM 0x080u
#define SC_EXT_ENHANCED   0x100u  /* ENHANCEDSTATUSCODES */
#define SC_EXT_AUTH_PLAIN 0x200u
#define SC_EXT_AUTH_LOGIN 0x400u

enum smtpc_timeout_kind {
    SMTPC_TO_NONE,        /* the engine waits for the caller, or is closed */
    SMTPC_TO_INITIAL,
    SMTPC_TO_COMMAND,
    SMTPC_TO_MAIL,
    SMTPC_TO_RCPT,
    SMTPC_TO_DATA_INIT,
    SMTPC_TO_DATA_BLOCK,
    SMTPC_TO_DATA_TERM
};

struct smtpc;

/* A new session, waiting for the greeting. cfg must outlive the session.
 * NULL when out of memory or cfg has no helo_name. */
struct smtpc *smtpc_new(const struct smtpc_config *cfg);
void smtpc_free(struct smtpc *s);

/* Input: the server's plaintext. Copies up to len bytes and returns how many
 * it took (fewer when its buffer is full: call smtpc_next, drain the output,
 * answer events, then feed the rest). Bytes fed while the TLS handshake is
 * pending or after the session closed are taken and discarded. */
size_t smtpc_feed(struct smtpc *s, const void *data, size_t len);

/* Process buffered input until there is something for the caller. Fills *ev
 * (may be NULL) and returns its type. CLOSE is returned again on every call
 * once the session has closed. */
enum smtpc_event_type smtpc_next(struct smtpc *s, struct smtpc_event *ev);

/* Output: the command bytes queued so far; send them, then say how many went. */
const unsigned char *smtpc_output(const struct smtpc *s, size_t *len);
void smtpc_output_consumed(struct smtpc *s, size_t n);

/* Answers. Each returns 0, or -1 if the engine was not waiting for it (or,
 * for smtpc_ntlm_token, the token is empty or longer than SMTPC_TOKEN_MAX). */
int smtpc_tls_started(struct smtpc *s);                     /* EHLO again */
int smtpc_tls_failed(struct smtpc *s, const char *why);     /* transient failure */
int smtpc_ntlm_token(struct smtpc *s, const void *token, size_t len);
int smtpc_ntlm_failed(struct smtpc *s, const char *why);    /* cancel, transient */

/* Start a message (only when READY). -1 if not ready or m is unusable (NULL,
 * no recipients, too many). Invalid addresses are not a -1: they become
 * SMTPC_R_BAD_ADDRESS results. */
int smtpc_message_begin(struct smtpc *s, const struct smtpc_message *m);

/* Content, after SMTPC_EV_CONTENT. smtpc_content takes what fits in the
 * output buffer and returns the count (0: drain the output first); lines are
 * dot-stuffed and every line end is sent as CRLF (a bare CR or LF becomes
 * CRLF). smtpc_content_end adds the final CRLF if missing and ".". */
size_t smtpc_content(struct smtpc *s, const void *data, size_t len);
int smtpc_content_end(struct smtpc *s);

/* End the session (only when READY): QUIT, then CLOSE on 221 or when the
 * connection is lost. */
int smtpc_quit(struct smtpc *s);

/* The connection ended (recv gave 0 or an error) or the peer timer fired:
 * the session fails as transient unless it was only waiting for 221. */
void smtpc_connection_lost(struct smtpc *s);
void smtpc_timeout(struct smtpc *s);

/* The peer timer for the current state (RFC 5321 4.5.3.2). */
enum smtpc_timeout_kind smtpc_timeout_kind(const struct smtpc *s);
unsigned smtpc_timeout_secs(const struct smtpc *s);

/* Session facts. */
unsigned smtpc_flags(const struct smtpc *s);                  /* SC_* */
unsigned smtpc_extensions(const struct smtpc *s);             /* SC_EXT_* */
unsigned long long smtpc_size_limit(const struct smtpc *s);   /* SIZE n; 0: none given */
const struct smtpc_reply *smtpc_last_reply(const struct smtpc *s);
int smtpc_closed(const struct smtpc *s);
/* The verb of the exchange tried or done ("AUTH NTLM", "XAUTH NTLM",
 * "AUTH PLAIN", "AUTH LOGIN"), or "" when none was. */
const char *smtpc_auth_verb(const struct smtpc *s);
/* A result made by the caller, not by a server (no reply): outcome, reason,
 * enhanced status and the sentence, each cut to fit. */
void smtpc_result_local(struct smtpc_result *r, enum smtpc_outcome outcome,
                        enum smtpc_reason reason, const char *status, const char *why);
/* Why the session closed (outcome SMTPC_PENDING while it is open). */
const struct smtpc_result *smtpc_failure(const struct smtpc *s);

/* The current (or last finished) message: its result and one per recipient,
 * in the order given. NULL when there is no such message or index. */
const struct smtpc_result *smtpc_message_result(const struct smtpc *s);
size_t smtpc_rcpt_count(const struct smtpc *s);
const struct smtpc_result *smtpc_rcpt_result(const struct smtpc *s, size_t i);

#endif
