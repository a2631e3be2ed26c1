/* tls.h - the secure stream: one Schannel context as a sans-I/O byte stream.
 *
 * A stream is a client (InitializeSecurityContextW) or server
 * (AcceptSecurityContextW) context with four byte queues, in the manner of
 * BearSSL's engine:
 *
 *   ciphertext in   tls_in_buf()/tls_in_done(), or tls_feed(): what the
 *                   socket read. Every complete record held is processed
 *                   before the stream asks for more: each SECBUFFER_EXTRA is
 *                   followed, the handshake's included, so application data
 *                   read together with the last handshake flight is kept.
 *   ciphertext out  tls_out_buf()/tls_out_done(): what to send.
 *   plaintext in    tls_app_buf()/tls_app_done(): what the peer said, in
 *                   pieces, mostly left where it was decrypted.
 *   plaintext out   tls_write(): what to say (queued while handshaking, cut
 *                   into records of at most cbMaximumMessage bytes).
 *
 * SEC_E_INCOMPLETE_MESSAGE waits for more bytes (as many as SECBUFFER_MISSING
 * says); SEC_I_RENEGOTIATE goes back through the handshake with the bytes that
 * followed; SEC_I_CONTEXT_EXPIRED (the peer's close_notify) ends the stream
 * cleanly; tls_shutdown() sends our close_notify. Any failure returns the
 * SECURITY_STATUS seen and the stream is dead from then on: its owner closes
 * that session only (and may call tls_report_failure()).
 *
 * The policy is decided first in the credentials (tls_cred_server/client:
 * protocols, cipher strength and, where the platform can, suites), so that a
 * peer or a scanner is never offered what policy refuses. After every
 * handshake the negotiated protocol, strength and suite are checked again
 * (tls_policy_check()), as a second line of defence and for what the
 * platform's credentials cannot express; a session below policy is refused:
 * it delivers no plaintext, but can still write (the 454 reply) and shut down.
 * A client stream also checks the server's certificate (TLS_TRUST_VERIFY).
 *
 * Renegotiation is bounded: a server stream refuses a client-initiated
 * renegotiation (TLS 1.2 and older) with a no_renegotiation alert and fails
 * (LOC_SSPI_RENEGOTIATE_REFUSED); a client stream follows at most
 * TLS_RENEGOTIATIONS_MAX server requests, and either side at most
 * TLS_POST_HANDSHAKE_MAX TLS 1.3 post-handshake messages (tickets, key
 * updates), beyond which it fails (LOC_SSPI_RENEGOTIATE_LIMIT).
 *
 * This module never touches a socket, never reads a clock, and never logs on
 * its own: the caller owns I/O and decides what to report.
 */
#ifndef IMSVC_TLS_H
#define IMSVC_TLS_H

#ifndef SECURITY_WIN32
#define SECURITY_WIN32
#endif
#include <windows.h>
#include <wincrypt.h>
#include <sspi.h>
#include <schannel.h>
#include <stddef.h>

/* Protocol versions as on the wire, for policies. */
#define TLS_V1_0 0x0301u
#define TLS_V1_1 0x0302u
#define TLS_V1_2 0x0303u
#define TLS_V1_3 0x0304u

/* The least a session must negotiate. */
struct tls_policy {
    unsigned min_version;     /* TLS_V1_2 */
    unsigned min_cipher_bits; /* 128 */
    int aead_only;            /* 0; 1: GCM, CCM or ChaCha20-Poly1305 suites only */
};
#define TLS_POLICY_DEFAULT { TLS_V1_2, 128, 0 }

/* Renegotiation bounds (see the top of this file). */
#define TLS_RENEGOTIATIONS_MAX 1u  /* server-requested, on a client stream */
#define TLS_POST_HANDSHAKE_MAX 32u /* TLS 1.3 tickets and key updates */

/* SEC_I_RENEGOTIATE arrived on a stream that negotiated version (0 if
 * unknown): follow it, refuse it (a server, before TLS 1.3), or refuse it as
 * beyond the bound. Counts it in *renegotiations (before TLS 1.3) or
 * *post_handshake (TLS 1.3). */
enum tls_reneg { TLS_RENEG_FOLLOW = 0, TLS_RENEG_REFUSE, TLS_RENEG_LIMIT };
enum tls_reneg tls_renegotiation_verdict(int server, unsigned version, unsigned *renegotiations,
                                         unsigned *post_handshake);

/* Map SecPkgContext_ConnectionInfo.dwProtocol (SP_PROT_*) to a wire version;
 * 0 when unknown. */
unsigned tls_protocol_version(DWORD sp_prot);

/* The SP_PROT_* bits of the versions the policy accepts (enabled) and of
 * those it refuses (disabled, SSL 2.0 and 3.0 always), for a server or a
 * client credential. */
DWORD tls_policy_protocols(const struct tls_policy *p, int server);
DWORD tls_policy_disabled_protocols(const struct tls_policy *p, int server);

/* Is the suite an AEAD one (GCM, CCM, ChaCha20-Poly1305; every TLS 1.3
 * suite)? From SECPKG_ATTR_CIPHER_INFO: the IANA number when the platform
 * gives one, else the suite's name. -1 when it cannot tell. */
int tls_suite_is_aead(const SecPkgContext_CipherInfo *suite);

/* Does the negotiated connection fit the policy? Returns 1 if so, 0 if not.
 * suite (SECPKG_ATTR_CIPHER_INFO) may be NULL when the platform has none;
 * then an AEAD-only policy cannot be met. In both cases text (when cap > 0)
 * receives, NUL-terminated, what was negotiated and what the policy
 * requires, e.g.
 *   "negotiated TLS 1.2, AES 256-bit, hash SHA-384, exchange ECDHE 256-bit;
 *    policy requires TLS 1.3 or newer, 128-bit or stronger cipher" */
int tls_policy_check(const struct tls_policy *p, const SecPkgContext_ConnectionInfo *ci,
                     const SecPkgContext_CipherInfo *suite, char *text, size_t cap);

/* Which structure the credentials were made with. */
enum tls_cred_form {
    TLS_CRED_NONE = 0,
    TLS_CRED_SCH,    /* SCH_CREDENTIALS + TLS_PARAMETERS (Windows 10 1809+) */
    TLS_CRED_LEGACY, /* SCHANNEL_CRED: grbitEnabledProtocols, dwMinimumCipherStrength */
};

struct tls_cache_entry;

/* Credentials, shared by any number of streams; free after the last one. */
struct tls_cred {
    CredHandle h;
    int server;
    int valid;
    enum tls_cred_form form;
    DWORD protocols;  /* SP_PROT_* the credentials allow, as Schannel reports them
                         (SECPKG_ATTR_SUPPORTED_PROTOCOLS; 0 if it cannot say) */
    int suites_set;   /* cipher restrictions (CRYPTO_SETTINGS) are in the credentials */
    struct tls_cache_entry *entry; /* from tls_cred_for_peer (tlscache.h) */
};
/* Server: the certificate must have a private key (cert.h loads one).
 * Client: no client certificate; the server's is checked by the stream.
 * Both take the policy (NULL: TLS_POLICY_DEFAULT) into the credentials:
 * SCH_CREDENTIALS with TLS_PARAMETERS where Schannel honours it, else
 * SCHANNEL_CRED; a platform that offers none of the versions the policy
 * accepts fails here (SEC_E_ALGORITHM_MISMATCH or similar). */
SECURITY_STATUS tls_cred_server(struct tls_cred *c, PCCERT_CONTEXT cert,
                                const struct tls_policy *policy);
SECURITY_STATUS tls_cred_client(struct tls_cred *c, const struct tls_policy *policy);
/* Frees the credentials, or gives a cached one back (tlscache.h). */
void tls_cred_free(struct tls_cred *c);
/* "SCHANNEL_CRED, TLS 1.2 (server)" and the like, for tests and reports. */
void tls_cred_describe(const struct tls_cred *c, char *text, size_t cap);

enum tls_trust {
    TLS_TRUST_VERIFY = 0, /* chain to a trusted root, SSL policy, host name */
    TLS_TRUST_ANY = 1,    /* accept any certificate (encryption only) */
};

struct tls_config {
    const struct tls_policy *policy; /* NULL: TLS_POLICY_DEFAULT */
    const wchar_t *peer_name;        /* client: server host (SNI, validation) */
    enum tls_trust trust;            /* client only */
};

enum tls_state {
    TLS_ST_HANDSHAKE = 0, /* negotiating (first time or renegotiation) */
    TLS_ST_OPEN,          /* application data flows both ways */
    TLS_ST_REFUSED,       /* handshake done but below policy: no plaintext in */
    TLS_ST_CLOSED,        /* the peer's close_notify arrived: clean end */
    TLS_ST_FAILED,        /* an SSPI call failed: tls_status() says which */
};

struct tls_stream;

/* A client stream has its ClientHello waiting in tls_out_buf() on return. */
SECURITY_STATUS tls_new(struct tls_stream **out, const struct tls_cred *cred,
                        const struct tls_config *cfg);
void tls_free(struct tls_stream *s);

/* Ciphertext in. tls_in_buf returns room for at least one full record, or
 * NULL with *cap 0 when the stream takes no more input (closed, failed,
 * refused, or the caller has not taken enough of the plaintext). */
unsigned char *tls_in_buf(struct tls_stream *s, size_t *cap);
SECURITY_STATUS tls_in_done(struct tls_stream *s, size_t n);
/* Copy n bytes in and process them (any n; no back-pressure). */
SECURITY_STATUS tls_feed(struct tls_stream *s, const void *data, size_t n);

/* Ciphertext out. */
const unsigned char *tls_out_buf(const struct tls_stream *s, size_t *len);
void tls_out_done(struct tls_stream *s, size_t n);

/* Plaintext in, in order, possibly in several pieces (a record's plaintext
 * is handed up where it was decrypted): take up to *len bytes of a piece,
 * say how many with tls_app_done, and ask again until it returns NULL. The
 * pointer is good until the next call that changes the stream. */
const unsigned char *tls_app_buf(const struct tls_stream *s, size_t *len);
void tls_app_done(struct tls_stream *s, size_t n);

/* Plaintext out: encrypted now when open or refused, queued while
 * handshaking. SEC_E_CONTEXT_EXPIRED after a close. */
SECURITY_STATUS tls_write(struct tls_stream *s, const void *data, size_t n);

/* Send close_notify (SCHANNEL_SHUTDOWN). Further writes fail. */
SECURITY_STATUS tls_shutdown(struct tls_stream *s);

enum tls_state tls_state(const struct tls_stream *s);
/* SEC_E_OK, or the status that killed or refused the stream. */
SECURITY_STATUS tls_status(const struct tls_stream *s);
/* Location code (core/location.h) of the call that failed; 0 if none. */
DWORD tls_fail_location(const struct tls_stream *s);
/* Number of handshakes completed (renegotiations included). */
unsigned tls_handshakes(const struct tls_stream *s);
/* True once our close_notify has been queued. */
int tls_close_sent(const struct tls_stream *s);
/* What the last handshake negotiated; SEC_E_INVALID_HANDLE before one. */
SECURITY_STATUS tls_connection_info(const struct tls_stream *s, SecPkgContext_ConnectionInfo *ci);
/* The suite the last handshake negotiated (SECPKG_ATTR_CIPHER_INFO);
 * SEC_E_INVALID_HANDLE before one or when the platform does not say. */
SECURITY_STATUS tls_cipher_info(const struct tls_stream *s, SecPkgContext_CipherInfo *suite);
/* The policy verdict text of the last handshake ("" before one). */
const char *tls_policy_text(const struct tls_stream *s);
/* The peer's certificate (free with CertFreeCertificateContext). */
SECURITY_STATUS tls_peer_cert(const struct tls_stream *s, PCCERT_CONTEXT *out);

/* The context itself, for queries the stream does not wrap (channel
 * bindings) and for benchmarks; NULL before the first handshake call. The
 * stream stays its owner: never delete it or feed it records. */
const CtxtHandle *tls_context(const struct tls_stream *s);

/* The event data payload: location then status, two little-endian DWORDs. */
void tls_event_data(DWORD location, DWORD status, unsigned char out[8]);
/* Report event 4131 (Internal Processing) for a failed or refused stream,
 * naming peer (may be NULL) and, for a refusal, the policy text. Returns
 * evlog_report()'s result. */
DWORD tls_report_failure(const struct tls_stream *s, const wchar_t *peer);

#endif
