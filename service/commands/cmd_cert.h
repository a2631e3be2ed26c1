/* cmd_cert.h - `imsvc cert new`, and the installer's default certificate. */
#ifndef IMSVC_CMD_CERT_H
#define IMSVC_CMD_CERT_H

#include <wchar.h>

/* argv[0] is "cert". Returns an exit status. */
int cert_cmd(int argc, char **argv);

/* Create a self-signed certificate for subject (NULL: CN=<HostName>) and
 * configure it. quiet: print nothing on success. Returns an exit status. */
int cert_make_default(const wchar_t *subject, int quiet);

#endif
