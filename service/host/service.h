/* service.h - the service's life: SCM glue and console mode.
 *
 * The same loop runs under the SCM (`imsvc service`, the ImagePath the
 * installer registers) and in a console (`imsvc run`, Ctrl+C stops it). Only
 * how state is reported differs: SetServiceStatus with checkpoints and wait
 * hints, or a line on stdout.
 */
#ifndef IMSVC_SERVICE_H
#define IMSVC_SERVICE_H

#include <windows.h>

/* Hand the process to the SCM. Returns a process exit status. */
int service_dispatch(void);

/* Run in the console until Ctrl+C, Ctrl+Break or console close. */
int service_run_console(void);

/* SCM control from the command line: `imsvc start|stop|pause|continue|status`
 * and PARAMCHANGE after `imsvc config set`. Each prints what it did and
 * returns a process exit status. */
int control_start(void);
int control_stop(void);
int control_pause(void);
int control_continue(void);
int control_status(void);
/* Tell a running service to re-read its configuration. Returns 1 if told,
 * 0 if the service is not installed or not running. */
int control_paramchange(void);
/* Is the service running (or paused) under the SCM? 1 or 0. */
int control_running(void);

/* Print a Win32 error's message after a prefix, on stderr. */
void print_win32_error(const char *what, DWORD err);

#endif
