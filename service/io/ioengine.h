/* ioengine.h - every socket of the service on one I/O completion port.
 *
 * The engine owns the port, a fixed number of worker threads, the listening
 * sockets (AcceptEx), outbound connects (ConnectEx), and for each connection
 * one receive (WSARecv) and one send (WSASend) at a time. Its owner (an SMTP
 * session, an outbound delivery) is a handler function: the engine calls it
 * with an event, never two at once for the same connection, and the handler
 * acts through the io_* calls below. No call here blocks on the network.
 *
 * A handler may call io_input/io_consume/io_write/io_set_deadline/io_close
 * on its own connection only from inside its handler. From any other thread
 * the only call allowed is io_wake (work handed off has finished). Work that
 * can block (a group commit, an SSPI call, a content filter, DNS) goes to
 * io_work, which runs it on a thread that is not an I/O worker and then wakes
 * the connection.
 *
 * Flow control: the engine reads into a bounded input buffer and stops
 * reading while the buffer is full or while more than IO_OUT_HIGH bytes wait
 * to be sent (a peer that does not read its replies is not read either); a
 * send that makes no progress for the send timeout is reported
 * (IO_EV_SEND_STALLED). The engine never decides what to say to a peer.
 */
#ifndef IMSVC_IOENGINE_H
#define IMSVC_IOENGINE_H

#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#include <stddef.h>

#define IO_IN_CAP    (17u * 1024u)    /* one whole TLS record fits */
#define IO_OUT_HIGH  (64u * 1024u)    /* stop reading while this much waits to go out */

enum io_event {
    IO_EV_OPEN,          /* first event of an accepted connection */
    IO_EV_CONNECTED,     /* io_connect finished: err 0 or the Winsock error */
    IO_EV_INPUT,         /* bytes arrived: io_input */
    IO_EV_EOF,           /* the peer closed its side; io_input may still hold bytes */
    IO_EV_DRAINED,       /* everything written has been sent */
    IO_EV_TIMER,         /* the deadline set with io_set_deadline passed */
    IO_EV_SEND_STALLED,  /* the peer took none of our output for the send timeout */
    IO_EV_ERROR,         /* the socket failed (err: Winsock error); close it */
    IO_EV_WAKE,          /* io_wake, io_wake_ref or io_work finished */
    IO_EV_NOTIFY,        /* io_notify_all: something every connection must look at */
    IO_EV_CLOSED,        /* last event: the connection is gone; free the owner's state */
    IO_EV_RESUME,        /* the engine's own: never given to an owner */
};

struct io_conn;
typedef void (*io_handler)(struct io_conn *c, void *arg, enum io_event ev, DWORD err);

/* Accepted sockets are offered to the listener's owner, who attaches them
 * (io_attach) or closes them (closesocket) at once. */
typedef void (*io_accept_fn)(void *arg, SOCKET s, const struct sockaddr_storage *peer);

struct io_stats {
    LONG connections;    /* open connections, all kinds */
    LONG workers;        /* I/O worker threads */
    LONG work_pending;   /* io_work items queued or running */
};

/* Start the port and threads workers I/O threads (0: two per CPU). */
DWORD io_engine_start(unsigned workers);
/* Stop the threads and the port. Every connection must be closed first. */
void io_engine_stop(void);
void io_engine_stats(struct io_stats *st);
/* Applies to connections from now on; 0 disables. */
void io_set_send_timeout(unsigned secs);

/* Listen on addr:port (numeric) and offer each accepted socket to fn. */
DWORD io_listen(const char *addr, const char *port, io_accept_fn fn, void *arg, int *id);
void io_unlisten(int id);

/* Put an accepted socket on the engine. On failure the socket is closed and
 * NULL returned. Nothing happens until io_start, so the owner can keep the
 * connection before its handler first runs. io_start, called only from an
 * io_accept_fn (on a worker), runs IO_EV_OPEN before it returns. */
struct io_conn *io_attach(SOCKET s, io_handler fn, void *arg);
void io_start(struct io_conn *c);
/* A connection to one address, not started yet (NULL and *err when a socket
 * cannot be made); io_connect_start then connects, and IO_EV_CONNECTED
 * follows, with the Winsock error on failure (WSAETIMEDOUT comes as
 * IO_EV_TIMER once timeout_ms has passed; 0: no bound). */
struct io_conn *io_connect(const struct sockaddr *addr, int addrlen, DWORD timeout_ms,
                           io_handler fn, void *arg, DWORD *err);
void io_connect_start(struct io_conn *c);

/* Input: bytes received and not yet consumed. */
const unsigned char *io_input(struct io_conn *c, size_t *len);
void io_consume(struct io_conn *c, size_t n);
/* Output: queued, sent as the peer takes it. 0, or -1 once the connection
 * is closing or failed (the bytes are dropped). */
int io_write(struct io_conn *c, const void *p, size_t n);
size_t io_output_pending(const struct io_conn *c);
/* Stop or resume reading (the handler cannot take input now). */
void io_pause_input(struct io_conn *c, int paused);
/* IO_EV_TIMER after ms milliseconds; 0 cancels. One deadline at a time. */
void io_set_deadline(struct io_conn *c, DWORD ms);
/* Close: graceful sends what is queued first (bounded by the send timeout),
 * then shuts down; otherwise at once. IO_EV_CLOSED follows when every
 * operation has ended. */
void io_close(struct io_conn *c, int graceful);

/* From any thread: IO_EV_WAKE on c. */
void io_wake(struct io_conn *c);
/* From the handler: keep c alive for a callback from another module (the
 * group commit); that callback then calls io_wake_ref, which posts
 * IO_EV_WAKE and gives the reference back. */
void io_ref(struct io_conn *c);
void io_wake_ref(struct io_conn *c);
/* As io_wake_ref, but when no other event runs for c the handler runs at
 * once on the calling thread (no trip through the port), so that thread
 * must hold no lock the handler may take: the group commit's thread between
 * batches, a work item. */
void io_wake_here(struct io_conn *c);
/* Give back a reference taken with io_ref without an event (from any thread;
 * the last one ends the connection's life with IO_EV_CLOSED). */
void io_unref(struct io_conn *c);
/* IO_EV_NOTIFY on every open connection (the service is stopping). */
void io_notify_all(void);
/* Run fn(ctx) on a work thread, then IO_EV_WAKE on c. */
int io_work(struct io_conn *c, void (*fn)(void *ctx), void *ctx);

#endif
