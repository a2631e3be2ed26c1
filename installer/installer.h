/* installer.h - `imsvc install` and `imsvc uninstall`. */
#ifndef IMSVC_INSTALLER_H
#define IMSVC_INSTALLER_H

/* argv[0] is the command name; strings are UTF-8. Return exit statuses. */
int installer_install(int argc, char **argv);
int installer_uninstall(int argc, char **argv);

#endif
