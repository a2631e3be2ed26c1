/* mapfile.h - the address map the service runs with (AddressMapFile).
 *
 * The one reader of the map file (the service and `imsvc address` both
 * read it here) and the one owner of the map in force. It is loaded at
 * start and at every PARAMCHANGE (the file may change while the value does
 * not): a map that loads replaces the one in force (event 2301); one that
 * does not is reported with the line and the rule (event 2300) and the map
 * in force stays. Sessions hold a reference for their lifetime, so a reload
 * never frees a map a session still reads. It never decides what an
 * address becomes: core/rewrite.h does.
 */
#ifndef IMSVC_MAPFILE_H
#define IMSVC_MAPFILE_H

#include <windows.h>

#include "addrmap.h"
#include "config.h"

/* Read and parse the map file at path. Returns ERROR_SUCCESS, or a Win32
 * error (ERROR_INVALID_DATA for a map that does not parse) with err->text
 * saying why (a parse error names the line). */
DWORD mapfile_read(const wchar_t *path, struct addrmap **out, struct addrmap_error *err);

/* Load AddressMapFile as cfg names it and report the outcome; at_start
 * picks the event's location code. */
void mapfile_configure(const struct imsvc_config *cfg, int at_start);

/* The map in force, held until mapfile_release: map NULL when none is;
 * wanted when AddressMapFile is set. */
struct mapfile_ref {
    const struct addrmap *map;
    int wanted;
    void *holder;
};
void mapfile_acquire(struct mapfile_ref *r);
void mapfile_release(struct mapfile_ref *r);

/* Drop the map in force (at stop). */
void mapfile_shutdown(void);

#endif
