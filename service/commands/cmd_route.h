/* cmd_route.h - `imsvc route list | add | remove`: per-domain routes. */
#ifndef IMSVC_CMD_ROUTE_H
#define IMSVC_CMD_ROUTE_H

/* argv[0] is "route". Returns an exit status: 0 done, 1 failed, 2 bad
 * usage or a route that is not valid. */
int route_cmd(int argc, char **argv);

#endif
