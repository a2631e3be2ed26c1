/* smtpd.h - the SMTP server session engine (RFC 5321), sans I/O.
 *
 * One struct smtpd is one inbound SMTP session. The socket layer gives it the
 * bytes it received (smtpd_feed), takes the reply bytes it must send
 * (smtpd_output / smtpd_output_consumed), and acts on the events smtpd_next
 * returns: run the TLS handshake, run an SSPI authentication step, spool the
 * message. The engine never reads a socket, a clock or a file, and never
 * waits: where it needs the caller's answer it stops consuming input until
 * the matching smtpd_* answer function is called. Portable core: no
 * windows.h. See docs/smtp.md for the contract in full.
 */
#ifndef IMSVC_SMTPD_H
#define IMSVC_SMTPD_H

#include <stddef.h>

#include "address.h"
#include "domains.h"

/* Defaults used when the configuration leaves a limit at 0. */
#define SMTPD_DEFAULT_MAX_SIZE  (10ull * 1024 * 1024)  /* SIZE advertised */
#define SMTPD_DEFAULT_MAX_RCPT  100u                   /* RFC 5321 4.5.3.1.8 minimum */
#define SMTPD_MAX_RCPT_LIMIT    1000u                  /* a configuration above is clamped */

/* Timeouts, RFC 5321 4.5.3.2, in seconds (see smtpd_timeout_secs). */
#define SMTPD_TIMEOUT_COMMAND    300u  /* greeting and every command */
#define SMTPD_TIMEOUT_DATA_BLOCK 180u  /* between blocks of message content */
#define SMTPD_TIMEOUT_DATA_TERM  600u  /* storing the message after <CRLF>.<CRLF> */

/* Received header fields a message may carry before it is refused as
 * looping (RFC 5321 section 6.3 asks for a limit of at least 100 hops in
 * principle; every real mail system uses far fewer, Postfix 50): the
 * default of smtpd_config.max_hops. */
#define SMTPD_MAX_HOPS 50

/* Session flags (smtpd_flags). */
#define SF_EHLO           0x0001u  /* EHLO (not HELO) was given: extensions apply */
#define SF_SECURE         0x0002u  /* TLS is up */
#define SF_AUTHENTICATED  0x0004u  /* AUTH or XAUTH succeeded */
#define SF_8BITMIME       0x0008u  /* the current MAIL said BODY=8BITMIME */
#define SF_TLS_BELOW_POLICY 0x0010u /* TLS is up but weaker than policy: refuse */

/* Configuration options (smtpd_config.options). */
#define SMTPD_OPT_STARTTLS 0x1u  /* a server certificate is loaded: offer STARTTLS */
#define SMTPD_OPT_XAUTH    0x2u  /* offer and accept XAUTH NTLM (Exchange 5.0 peers) */
#define SMTPD_OPT_NO_AUTH  0x4u  /* neither offer nor accept the AUTH verb (502 5.5.1):
                                    with SMTPD_OPT_XAUTH, an XAUTH-only peer in the
                                    manner of Exchange 5.0 */
#define SMTPD_OPT_AUTH_NEEDS_TLS 0x8u /* AUTH and XAUTH only after STARTTLS: neither is
                                    offered in clear, and both get 530 5.7.0 there */
#define SMTPD_OPT_AUTH_REQUIRED 0x10u /* message submission (RFC 6409): MAIL before a
                                    successful AUTH/XAUTH gets 530 5.7.0 */
#define SMTPD_OPT_TLS_ON_CONNECT 0x20u /* implicit TLS (RFC 8314): the first event is
                                    SMTPD_EV_STARTTLS, before any greeting; the 220
                                    comes once smtpd_tls_started says TLS is up */

struct smtpd_config {
    const char *hostname;                 /* this server's name: greeting, Received */
    unsigned long long max_size;          /* message size limit, octets; 0: default */
    unsigned max_recipients;              /* per message; 0: default */
    const struct domain_list *local_domains; /* LocalDomains, parsed (core/domains.h);
                                             RCPT TO is decided by route_recipient over
                                             them, the verdict the queue routes by; must
                                             outlive every session made with cfg */
    unsigned options;                     /* SMTPD_OPT_* */
    unsigned max_errors;                  /* error replies before 421 4.7.0 and close;
                                             0: 20 */
    unsigned max_messages;                /* DATA commands per connection; the next MAIL
                                             gets 421 4.7.0 and the session closes; 0: no
                                             limit */
    unsigned max_hops;                    /* Received fields a message may carry; one more
                                             is a loop (554 5.4.6); 0: SMTPD_MAX_HOPS */
};

enum smtpd_event_type {
    SMTPD_EV_NONE,           /* nothing to act on: send the output, read more */
    SMTPD_EV_STARTTLS,       /* send the output (the 220), then run the TLS server
                                handshake; then smtpd_tls_started(), or close */
    SMTPD_EV_AUTH_NTLM,      /* an NTLM token (data, len; first: new exchange) for
                                AcceptSecurityContext; answer with smtpd_auth_* */
    SMTPD_EV_AUTH_PASSWORD,  /* AUTH LOGIN or PLAIN: mechanism, authzid, user,
                                password; answer with smtpd_auth_success/fail/tempfail */
    SMTPD_EV_AUTH_ABORT,     /* the exchange ended without an answer from the caller
                                (client cancelled, bad base64): drop the context */
    SMTPD_EV_DATA_BEGIN,     /* DATA accepted: open a spool (envelope: smtpd_sender,
                                smtpd_rcpt; header: smtpd_received) */
    SMTPD_EV_DATA_CHUNK,     /* message content (data, len), dot-unstuffed, CRLF
                                line ends; final: the last one, then SMTPD_EV_MESSAGE */
    SMTPD_EV_MESSAGE,        /* the message is complete: store it, then call
                                smtpd_message_stored() or smtpd_message_failed() */
    SMTPD_EV_MESSAGE_REJECTED, /* the engine refused the content (reason); the reply
                                is queued; discard the spool */
    SMTPD_EV_CLOSE           /* send the output, then close the connection */
};

enum smtpd_reject {
    SMTPD_REJECT_NONE,
    SMTPD_REJECT_SIZE,       /* larger than the SIZE limit: 552 5.3.4 */
    SMTPD_REJECT_BARE_EOL,   /* bare CR or bare LF in the content: 554 5.6.0 */
    SMTPD_REJECT_NUL,        /* a NUL octet in the content: 554 5.6.0 */
    SMTPD_REJECT_LINE,       /* a line longer than 1000 octets: 554 5.6.0 */
    SMTPD_REJECT_HOPS        /* more than max_hops Received fields: a mail loop
                                (RFC 5321 6.3): 554 5.4.6 */
};

struct smtpd_event {
    enum smtpd_event_type type;
    const unsigned char *data;  /* AUTH_NTLM token, DATA_CHUNK content */
    size_t len;
    int final;                  /* DATA_CHUNK: last chunk of a good message */
    int first;                  /* AUTH_NTLM: first token: start a new context */
    int xauth;                  /* AUTH_*: the exchange came through XAUTH */
    const char *mechanism;      /* AUTH_PASSWORD: "LOGIN" or "PLAIN" */
    const char *authzid;        /* AUTH_PASSWORD: "" when none was given */
    const char *user;
    const char *password;
    enum smtpd_reject reject;   /* MESSAGE_REJECTED */
};
/* Pointers in an event stay valid until the next call into the engine. */

enum smtpd_timeout_kind {
    SMTPD_TO_NONE,        /* no peer timer: the engine waits for the caller, or is closed */
    SMTPD_TO_COMMAND,     /* SMTPD_TIMEOUT_COMMAND */
    SMTPD_TO_DATA_BLOCK,  /* SMTPD_TIMEOUT_DATA_BLOCK */
    SMTPD_TO_DATA_TERM    /* SMTPD_TIMEOUT_DATA_TERM: the caller's own deadline to store */
};

struct smtpd;

/* A new session; queues the 220 greeting. cfg must outlive the session.
 * client_addr is the peer's address as text ("192.0.2.1", "2001:db8::1");
 * relay_allowed: the peer is in a configured relay range (it may then send
 * to any domain, as after AUTH). NULL when out of memory or cfg has no host
 * name. */
struct smtpd *smtpd_new(const struct smtpd_config *cfg, const char *client_addr,
                        int relay_allowed);
void smtpd_free(struct smtpd *s);

/* The client's host name, once the socket layer has found and confirmed it
 * (reverse DNS, then forward): the Received field then reads "from HELO
 * (NAME [ADDR])". Letters, digits, '-', '.' and '_' only, at most 255; -1
 * (and no name) otherwise. */
int smtpd_set_client_name(struct smtpd *s, const char *name);

/* Input. Copies up to len bytes into the engine and returns how many it took
 * (fewer when its buffer is full: process events and drain the output, then
 * feed the rest). Bytes fed while a STARTTLS handshake is pending, or after
 * the session closed, are taken and discarded. */
size_t smtpd_feed(struct smtpd *s, const void *data, size_t len);

/* Process buffered input until there is something for the caller. Fills *ev
 * and returns its type. SMTPD_EV_NONE also while an answer is awaited. */
enum smtpd_event_type smtpd_next(struct smtpd *s, struct smtpd_event *ev);

/* Output: the reply bytes queued so far; send them, then say how many went. */
const unsigned char *smtpd_output(const struct smtpd *s, size_t *len);
void smtpd_output_consumed(struct smtpd *s, size_t n);

/* Answers. Each returns 0, or -1 if the engine was not waiting for it. */
int smtpd_tls_started(struct smtpd *s, int policy_ok);
/* The handshake completed below policy and the stream takes nothing more
 * from the client: queue "454 4.7.0 TLS session refused by policy: why"
 * (why: what was negotiated and what policy requires) and close. */
int smtpd_tls_refused(struct smtpd *s, const char *why);
int smtpd_auth_continue(struct smtpd *s, const void *token, size_t len); /* 334 */
int smtpd_auth_success(struct smtpd *s, const char *user);               /* 235 */
int smtpd_auth_fail(struct smtpd *s);                                     /* 535 */
int smtpd_auth_tempfail(struct smtpd *s);                                 /* 454 */
int smtpd_message_stored(struct smtpd *s, const char *queue_id);         /* 250 */
int smtpd_message_failed(struct smtpd *s, int permanent, const char *text); /* 451/554 */
/* The message is refused with the caller's code (4xx/5xx) and enhanced status
 * (of the same class), e.g. a content filter's 554 5.7.1 and its reason. */
int smtpd_message_refused(struct smtpd *s, int code, const char *status, const char *text);

/* The peer timer for the current state, and what to do when it fires:
 * smtpd_timeout queues 421 4.4.2 and closes; smtpd_shutdown queues
 * 421 4.3.2 (service stopping) and closes. */
enum smtpd_timeout_kind smtpd_timeout_kind(const struct smtpd *s);
unsigned smtpd_timeout_secs(const struct smtpd *s);
void smtpd_timeout(struct smtpd *s);
void smtpd_shutdown(struct smtpd *s);

/* A transcript for the protocol log: fn is called with every command line
 * the engine takes and every reply line it queues, without CRLF, as it
 * happens; a line of an AUTH exchange's responses comes as
 * SMTPD_RECEIVED_SECRET with its length only (line NULL). Never message
 * content. fn NULL: none. */
enum smtpd_dir { SMTPD_RECEIVED, SMTPD_RECEIVED_SECRET, SMTPD_SENT };
typedef void (*smtpd_transcript_fn)(void *arg, enum smtpd_dir dir, const char *line, size_t len);
void smtpd_set_transcript(struct smtpd *s, smtpd_transcript_fn fn, void *arg);
/* The address map for this session's MAIL and RCPT (core/rewrite.h): map
 * may be NULL (none in force); map_wanted says one is configured, so that
 * without one IMCEA recipients wait (451) rather than pass unmapped. The
 * map must outlive the session. Without this call: no map, none wanted. */
struct addrmap;
void smtpd_set_address_map(struct smtpd *s, const struct addrmap *map, int map_wanted);

/* Session facts. */
unsigned smtpd_flags(const struct smtpd *s);               /* SF_* */
unsigned smtpd_auth_failures(const struct smtpd *s);       /* failed AUTH/XAUTH so far */
unsigned smtpd_errors(const struct smtpd *s);              /* error replies so far */
unsigned smtpd_messages(const struct smtpd *s);            /* DATA commands accepted so far */
const char *smtpd_helo(const struct smtpd *s);             /* "" before HELO/EHLO */
const char *smtpd_user(const struct smtpd *s);             /* "" unless authenticated */
int smtpd_closed(const struct smtpd *s);

/* The envelope of the current transaction (valid from DATA_BEGIN until the
 * message is answered). Recipients are as route_recipient gave them: a
 * domain-less <Postmaster> is postmaster@ the first local domain; and as
 * the address map rewrote them (one RCPT may become several), each
 * rewritten one with an ORCPT holding the address as the client wrote it.
 * The sender is as the map rewrote it. */
const struct addr_path *smtpd_sender(const struct smtpd *s);
const struct addr_params *smtpd_sender_params(const struct smtpd *s);
size_t smtpd_rcpt_count(const struct smtpd *s);
const struct addr_path *smtpd_rcpt(const struct smtpd *s, size_t i);
const struct addr_params *smtpd_rcpt_params(const struct smtpd *s, size_t i);

/* The Received header field for the current message, folded, ending in CRLF,
 * NUL-terminated in buf. queue_id and date (RFC 5322 date-time) come from the
 * caller. Returns its length, or -1 if buf is too small. */
int smtpd_received(const struct smtpd *s, const char *queue_id, const char *date,
                   char *buf, size_t n);

#endif
