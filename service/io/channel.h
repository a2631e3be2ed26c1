/* channel.h - one adapter between a socket on the I/O engine and the
 * secure stream, for inbound sessions and outbound connections alike.
 *
 * A channel carries plaintext: in clear until chan_start_tls, through the
 * secure stream (sspi/tls) after it. It moves ciphertext between the
 * connection and the stream, sends what the handshake and renegotiations
 * answer, sends close_notify at the end, and reports a failed or refused
 * stream to the event log once (event 4131, the stream's location and
 * status). It never decides what to say to the peer: the SMTP engines do,
 * from the state the channel returns (a session below policy gets its 454
 * from core/smtpd, an outbound one its failure from core/smtpc).
 *
 * All calls are made from the connection's handler (ioengine.h).
 */
#ifndef IMSVC_CHANNEL_H
#define IMSVC_CHANNEL_H

#include "ioengine.h"
#include "tls.h"

#define CHAN_PEER_MAX 320

struct chan {
    struct io_conn *io;
    struct tls_stream *tls;
    int reported;                   /* the stream's failure is in the event log */
    unsigned handshakes;            /* completed, as last seen */
    wchar_t peer[CHAN_PEER_MAX];    /* names the peer in events */
};

enum chan_status {
    CHAN_OK,          /* go on: read plaintext, or wait for more */
    CHAN_SECURED,     /* a handshake has just completed: chan_tls_state says OPEN or REFUSED */
    CHAN_PEER_CLOSED, /* the peer sent close_notify */
    CHAN_FAILED,      /* the stream failed (reported); close the connection */
};

void chan_init(struct chan *ch, struct io_conn *io, const wchar_t *peer);

/* Start TLS on the connection: clear input not yet consumed is dropped (it
 * can only be an injection); a client stream's hello goes out at once.
 * Returns the SSPI status of creating the stream (reported when not OK). */
SECURITY_STATUS chan_start_tls(struct chan *ch, const struct tls_cred *cred,
                               const struct tls_config *cfg, DWORD location);

/* Move what the connection received into the stream and send what it
 * answers. Call on every IO_EV_INPUT (and after the plaintext was taken). */
enum chan_status chan_pump(struct chan *ch);

/* Plaintext received and not yet taken. */
const unsigned char *chan_input(struct chan *ch, size_t *len);
void chan_consume(struct chan *ch, size_t n);

/* Send plaintext. 0, or -1 when the connection or stream cannot take it
 * (an encryption failure is reported). */
int chan_write(struct chan *ch, const void *p, size_t n);

/* close_notify when a stream is up, then close the connection (graceful:
 * after what is queued has gone). */
void chan_close(struct chan *ch, int graceful);

/* TLS_ST_* of the stream; -1 in clear. */
int chan_tls_state(const struct chan *ch);
struct tls_stream *chan_tls(const struct chan *ch);

/* Free the stream (on IO_EV_CLOSED). */
void chan_free(struct chan *ch);

#endif
