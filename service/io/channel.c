/* channel.c - plaintext over a connection, in clear or through the secure
 * stream (see channel.h). It must never choose a reply, and never read the
 * socket itself: the engine reads, the channel moves bytes.
 */
#include "channel.h"

#include <stdio.h>
#include <string.h>

#include "eventlog.h"
#include "location.h"

void chan_init(struct chan *ch, struct io_conn *io, const wchar_t *peer)
{
    memset(ch, 0, sizeof *ch);
    ch->io = io;
    _snwprintf(ch->peer, CHAN_PEER_MAX, L"%ls", peer ? peer : L"");
    ch->peer[CHAN_PEER_MAX - 1] = 0;
}

static void report_once(struct chan *ch)
{
    if (ch->reported || !ch->tls)
        return;
    ch->reported = 1;
    tls_report_failure(ch->tls, ch->peer);
}

/* Hand the stream's ciphertext to the connection. */
static int flush_tls(struct chan *ch)
{
    size_t n;
    const unsigned char *p = tls_out_buf(ch->tls, &n);
    if (n == 0)
        return 0;
    if (io_write(ch->io, p, n) != 0)
        return -1;
    tls_out_done(ch->tls, n);
    return 0;
}

SECURITY_STATUS chan_start_tls(struct chan *ch, const struct tls_cred *cred,
                               const struct tls_config *cfg, DWORD location)
{
    size_t left;
    io_input(ch->io, &left);
    io_consume(ch->io, left);   /* clear text after STARTTLS: injected, dropped */
    SECURITY_STATUS st = tls_new(&ch->tls, cred, cfg);
    if (st != SEC_E_OK) {
        tls_free(ch->tls);
        ch->tls = NULL;
        wchar_t text[CHAN_PEER_MAX + 64];
        _snwprintf(text, ARRAYSIZE(text), L"%ls: cannot create a TLS context", ch->peer);
        text[ARRAYSIZE(text) - 1] = 0;
        evlog_report(EVENTLOG_ERROR_TYPE, CAT_INTERNAL_PROCESSING, MSG_UNEXPECTED_ERROR, location,
                     (DWORD)st, 1, (const wchar_t *[]){ text });
        return st;
    }
    ch->handshakes = 0;
    flush_tls(ch);
    return SEC_E_OK;
}

enum chan_status chan_pump(struct chan *ch)
{
    if (!ch->tls)
        return CHAN_OK;
    for (;;) {
        size_t have;
        const unsigned char *p = io_input(ch->io, &have);
        if (have == 0)
            break;
        size_t cap;
        unsigned char *dst = tls_in_buf(ch->tls, &cap);
        if (!dst)
            break;   /* the plaintext must be taken first, or the stream is done */
        size_t n = have < cap ? have : cap;
        memcpy(dst, p, n);
        io_consume(ch->io, n);
        tls_in_done(ch->tls, n);
    }
    if (flush_tls(ch) != 0)
        return CHAN_FAILED;
    switch (tls_state(ch->tls)) {
    case TLS_ST_FAILED:
        report_once(ch);
        return CHAN_FAILED;
    case TLS_ST_CLOSED: {
        /* the peer's close_notify ends the stream only once every piece of
         * plaintext before it has been taken (tls_app_buf hands it up in
         * pieces: a caller takes one per pass) */
        size_t left;
        return tls_app_buf(ch->tls, &left) && left ? CHAN_OK : CHAN_PEER_CLOSED;
    }
    case TLS_ST_REFUSED:
        if (ch->handshakes == 0) {
            ch->handshakes = tls_handshakes(ch->tls);
            report_once(ch);   /* the event names both sides' values */
            return CHAN_SECURED;
        }
        return CHAN_OK;
    case TLS_ST_OPEN:
        if (ch->handshakes == 0) {
            ch->handshakes = tls_handshakes(ch->tls);
            return CHAN_SECURED;
        }
        return CHAN_OK;
    default:
        return CHAN_OK;
    }
}

const unsigned char *chan_input(struct chan *ch, size_t *len)
{
    if (!ch->tls)
        return io_input(ch->io, len);
    const unsigned char *p = tls_app_buf(ch->tls, len);
    return p ? p : (const unsigned char *)"";
}

void chan_consume(struct chan *ch, size_t n)
{
    if (ch->tls)
        tls_app_done(ch->tls, n);
    else
        io_consume(ch->io, n);
}

int chan_write(struct chan *ch, const void *p, size_t n)
{
    if (!ch->tls)
        return io_write(ch->io, p, n);
    if (n == 0)
        return flush_tls(ch);
    SECURITY_STATUS st = tls_write(ch->tls, p, n);
    if (st != SEC_E_OK) {
        if (tls_state(ch->tls) == TLS_ST_FAILED)
            report_once(ch);
        return -1;
    }
    return flush_tls(ch);
}

void chan_close(struct chan *ch, int graceful)
{
    if (ch->tls && graceful && !tls_close_sent(ch->tls)) {
        enum tls_state st = tls_state(ch->tls);
        if ((st == TLS_ST_OPEN || st == TLS_ST_REFUSED || st == TLS_ST_CLOSED) &&
            tls_shutdown(ch->tls) == SEC_E_OK)
            flush_tls(ch);
    }
    io_close(ch->io, graceful);
}

int chan_tls_state(const struct chan *ch)
{
    return ch->tls ? (int)tls_state(ch->tls) : -1;
}

struct tls_stream *chan_tls(const struct chan *ch)
{
    return ch->tls;
}

void chan_free(struct chan *ch)
{
    tls_free(ch->tls);
    ch->tls = NULL;
}
