/* netio.h - blocking socket writes shared by the SMTP server and `imsvc send`.
 *
 * Both sides own their sockets and their loops; what they share is how bytes
 * leave: all of a buffer, and all of the ciphertext a TLS stream has queued.
 */
#ifndef IMSVC_NETIO_H
#define IMSVC_NETIO_H

#include <winsock2.h>
#include <windows.h>
#include <stddef.h>

#include "tls.h"

/* Send all len bytes. 0, or -1 when the socket failed or closed. */
int net_send_all(SOCKET sock, const void *data, size_t len);

/* Send the ciphertext tls has queued and mark it sent. 0 or -1. */
int net_send_tls(SOCKET sock, struct tls_stream *tls);

#endif
