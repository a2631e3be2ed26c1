/* cmd_track.h - `imsvc track`: what became of a message, from the message
 * tracking log. */
#ifndef IMSVC_CMD_TRACK_H
#define IMSVC_CMD_TRACK_H

/* argv[0] is "track". Exit status 0 (events found), 1 (none, or the logs
 * cannot be read), 2 usage. */
int track_cmd(int argc, char **argv);

#endif
