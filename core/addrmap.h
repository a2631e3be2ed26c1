/* addrmap.h - the X.400 <-> SMTP address map.
 *
 * Maps X.400 O/R addresses to SMTP mailboxes and back, so mail to an X.400
 * recipient can be routed and an NDR can show the address the sender used.
 * The map is text (format in docs/addresses.md):
 *
 *   # comment
 *   c=US;a= ;p=Fab;o=Sales;s=Lee;g=Bill;<spaces or tabs>bill.lee@fab.example
 *
 * The X.400 address runs up to and including its last ';', then at least one
 * space or tab, then the SMTP mailbox (optionally in <>), then nothing.
 * Parsing is sans-I/O (addrmap_parse works on a buffer); addrmap_load is a
 * thin stdio loader. X.400 keys compare as X.400 does (canonical form,
 * ignoring case); SMTP mailboxes compare ignoring case.
 */
#ifndef IMSVC_ADDRMAP_H
#define IMSVC_ADDRMAP_H

#include <stddef.h>

#include "address.h"
#include "x400.h"

#define ADDRMAP_FILE_MAX (16u * 1024u * 1024u)  /* larger files are refused */
#define ADDRMAP_LINE_MAX 2048

struct addrmap;

struct addrmap_entry {
    struct x400_addr x400;
    struct addr_path smtp;
    unsigned line;                      /* where it was defined */
};

struct addrmap_error {
    unsigned line;                      /* 0: not about a line (I/O, memory) */
    char text[200];                     /* "line 7: field s: surname is required ..." */
};

/* Parse len octets of map text into a new map (*out, free with
 * addrmap_free). An empty text is an empty map. Returns 0, or -1 with *err
 * set and *out NULL. A leading UTF-8 byte order mark is skipped; lines end
 * in LF or CRLF. */
int addrmap_parse(const char *text, size_t len, struct addrmap **out, struct addrmap_error *err);

/* Read the file at path (stdio, at most ADDRMAP_FILE_MAX octets) and parse
 * it. Same results as addrmap_parse; I/O errors have line 0. */
int addrmap_load(const char *path, struct addrmap **out, struct addrmap_error *err);

void addrmap_free(struct addrmap *m);

size_t addrmap_count(const struct addrmap *m);
const struct addrmap_entry *addrmap_entry_at(const struct addrmap *m, size_t i);

/* Lookups: the entry whose X.400 (or SMTP) side equals the key, or NULL. */
const struct addrmap_entry *addrmap_find_x400(const struct addrmap *m, const struct x400_addr *key);
const struct addrmap_entry *addrmap_find_smtp(const struct addrmap *m, const struct addr_path *key);

#endif
