/* cmd_send.h - `imsvc send`: send one message with the SMTP client engine.
 *
 *   imsvc send --server HOST[:PORT] --from A --to B [--to C ...]
 *              [--tls required|opportunistic|off] [--trust verify|any]
 *              [--auth ntlm|none] [--user DOMAIN\user --password-file F]
 *              [--helo NAME] [-v] [--repeat N] FILE.eml
 *
 * The command line around service/io/outbound, the blocking socket driver of
 * core/smtpc that the queue uses for delivery too: STARTTLS through the
 * secure stream (sspi/tls), AUTH NTLM or XAUTH NTLM through sspi/ntlm, the
 * message sent as it is in the file (the engine dot-stuffs and sends CRLF).
 * This command is the administrator's way to try a destination by hand;
 * --repeat N sends the message N times over one connection (tests
 * connection reuse).
 *
 * Exit status (SEND_EXIT_*): 0 every recipient was accepted; 1 at least one
 * recipient failed permanently (or the message file could not be read);
 * 3 no permanent failure, but at least one recipient failed transiently (a
 * retry may succeed: connection, timeout, 4xx, TLS); 2 bad usage.
 */
#ifndef IMSVC_CMD_SEND_H
#define IMSVC_CMD_SEND_H

#define SEND_EXIT_OK        0
#define SEND_EXIT_PERMANENT 1
#define SEND_EXIT_USAGE     2
#define SEND_EXIT_TRANSIENT 3

/* argv[0] is "send"; strings are UTF-8. Returns a SEND_EXIT_* status. */
int send_cmd(int argc, char **argv);

#endif
