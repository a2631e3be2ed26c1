/* installer.h - `imsvc install` and `imsvc uninstall`. */
#ifndef IMSVC_INSTALLER_H
#define IMSVC_INSTALLER_H

#include <windows.h>

/* argv[0] is the command name; strings are UTF-8. Return exit statuses. */
int installer_install(int argc, char **argv);
int installer_uninstall(int argc, char **argv);

/* `imsvc msi configure | remove`: the steps the MSI package runs
 * (installer/msi.c). */
int msi_cmd(int argc, char **argv);

/* The steps an installation shares, whoever created the service (imsvc
 * install, or the MSI's ServiceInstall table). Each prints what failed and
 * returns 0 or 1. */
/* Description, failure actions, service SID, required privileges and
 * (delayed) delayed automatic start. */
int installer_service_settings(SC_HANDLE svc, BOOL delayed);
/* The Parameters key, the data folders with their rights, and a
 * self-signed certificate when none is configured. */
int installer_prepare_data(void);

#endif
