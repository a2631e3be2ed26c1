/* cmd_address.h - `imsvc address ...`: check and convert addresses.
 *
 * The administrator's way to test an address before mail bounces:
 *   address check [--mail|--rcpt] ADDRESS
 *   address imcea encode TYPE ADDRESS DOMAIN
 *   address imcea decode ADDRESS
 *   address map test [--mail|--rcpt] ADDRESS
 * The command only reads: it never changes configuration or the map file.
 */
#ifndef IMSVC_CMD_ADDRESS_H
#define IMSVC_CMD_ADDRESS_H

#include <stddef.h>

#include "domains.h"

/* argv[0] is "address"; strings are UTF-8. local_domains are the configured
 * LocalDomains, parsed (IMCEA decoding happens only for these; NULL: none);
 * map_path is the
 * AddressMapFile or NULL. Returns 0 done/valid, 1 invalid or failed, 2 bad
 * usage. */
int address_cmd(int argc, char **argv, const struct domain_list *local_domains,
                const char *map_path);

#endif
