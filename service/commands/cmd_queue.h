/* cmd_queue.h - `imsvc queue` and the queue lines of `imsvc status`. */
#ifndef IMSVC_CMD_QUEUE_H
#define IMSVC_CMD_QUEUE_H

#include <stdio.h>
#include <windows.h>

#include "config.h"

/* argv[0] is "queue". Exit status 0, 1 (failed or no such message), 2 usage. */
int queue_cmd(int argc, char **argv);

/* Queue size by state, oldest message's age and, when the service runs,
 * active sessions (from the status file it keeps). */
void queue_print_status(const struct imsvc_config *cfg, int running);

#endif
