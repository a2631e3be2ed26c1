/* cmd_cert.h - `imsvc cert new | list`, and the installation's certificate. */
#ifndef IMSVC_CMD_CERT_H
#define IMSVC_CMD_CERT_H

#include <wchar.h>

/* argv[0] is "cert". Returns an exit status. */
int cert_cmd(int argc, char **argv);

/* Create a self-signed certificate for subject (NULL: CN=<HostName>) and
 * configure it. quiet: print nothing on success. thumb_out (41 wide
 * characters, or NULL) receives its thumbprint. Returns an exit status. */
int cert_make_default(const wchar_t *subject, int quiet, wchar_t *thumb_out);

/* The value beside the configuration that names the certificate the
 * installation made (its thumbprint). */
#define CERT_INSTALLED_VALUE L"InstalledCertificate"

/* Make the default certificate, configure it and record it as the
 * installation's. Prints what it did; returns an exit status. */
int cert_make_installed(void);

/* Remove the certificate the installation made (as recorded, or else the
 * configured one) if imsvc made it; a certificate imsvc did not make is
 * kept and said so. Prints what it did; returns an exit status. */
int cert_remove_installed(void);

#endif
