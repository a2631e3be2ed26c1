/* addrmap.h - the address map: typed addresses <-> SMTP, and aliases.
 *
 * Maps X.400 O/R addresses (and addresses of other types: EX, FAX, ...) to
 * SMTP mailboxes and back, so that mail to an X.400 recipient can be
 * routed and an NDR can show the address the sender used; and, as
 * Postfix's virtual aliases do, one SMTP address (or a whole domain) to
 * several. The map is text (format in docs/addresses.md):
 *
 *   # comment
 *   c=US;a= ;p=Fab;o=Sales;s=Lee;g=Bill;   bill.lee@fab.example   both
 *   EX:/o=Fab/ou=Site/cn=Recipients/cn=ann  ann@fab.example
 *   sales@fab.example                       bill@fab.example, ann@fab.example
 *   @old.example                            @fab.example
 *
 * A typed line: the typed address (an X.400 address running up to and
 * including its last ';', or TYPE:value), blanks, the SMTP mailbox
 * (optionally in <>), and optionally blanks and a direction (in, out, both;
 * default in). An alias line: an SMTP mailbox or @domain, blanks, then the
 * addresses it stands for, separated by commas or blanks. Parsing is
 * sans-I/O (addrmap_parse works on a buffer); addrmap_load is a thin stdio
 * loader. X.400 keys compare as X.400 does (canonical form, ignoring case);
 * other typed values and SMTP mailboxes compare ignoring case. What an
 * envelope address becomes is core/rewrite.h's decision, not this module's.
 */
#ifndef IMSVC_ADDRMAP_H
#define IMSVC_ADDRMAP_H

#include <stddef.h>

#include "address.h"
#include "imcea.h"
#include "x400.h"

#define ADDRMAP_FILE_MAX (16u * 1024u * 1024u)  /* larger files are refused */
#define ADDRMAP_LINE_MAX 2048
#define ADDRMAP_VALUE_MAX 1024      /* a typed address other than X.400 */
#define ADDRMAP_TARGETS_MAX 100     /* addresses one alias stands for */
#define ADDRMAP_ENTRY_TEXT_MAX (ADDRMAP_LINE_MAX + ADDRMAP_TARGETS_MAX * 4 + 64)

struct addrmap;

enum addrmap_kind { ADDRMAP_TYPED, ADDRMAP_ALIAS };

/* Which way a typed line rewrites envelope addresses (core/rewrite.h). */
#define ADDRMAP_IN   0x1u   /* the typed address, IMCEA-encapsulated, becomes the SMTP one */
#define ADDRMAP_OUT  0x2u   /* the SMTP address becomes the typed one, IMCEA-encapsulated */
#define ADDRMAP_BOTH (ADDRMAP_IN | ADDRMAP_OUT)

struct addrmap_entry {
    enum addrmap_kind kind;
    unsigned line;                          /* where it was defined */
    union {
        struct {                            /* ADDRMAP_TYPED */
            char type[IMCEA_TYPE_MAX + 1];  /* "X400", "EX", "FAX", ...: upper case */
            union {
                struct x400_addr x400;      /* type X400 */
                char value[ADDRMAP_VALUE_MAX + 1]; /* any other type, as written */
            };
            struct addr_path smtp;
            unsigned dir;                   /* ADDRMAP_IN, ADDRMAP_OUT or ADDRMAP_BOTH */
        };
        struct {                            /* ADDRMAP_ALIAS */
            struct addr_path key;           /* for a whole domain: local part "" */
            int key_domain;                 /* the key is "@domain" */
            size_t ntargets;                /* 1..ADDRMAP_TARGETS_MAX */
            struct addr_path *targets;      /* owned by the map; "@domain" (local
                                               part "") only as the one target of a
                                               domain key */
        };
    };
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
/* Typed lines and alias lines among them. */
size_t addrmap_count_kind(const struct addrmap *m, enum addrmap_kind kind);

/* Lookups on typed lines: the entry whose X.400 side equals the key, whose
 * typed side is (type, value) (X400 values are parsed and compared as
 * X.400), or whose SMTP side equals the key; NULL when none. */
const struct addrmap_entry *addrmap_find_x400(const struct addrmap *m, const struct x400_addr *key);
const struct addrmap_entry *addrmap_find_typed(const struct addrmap *m, const char *type,
                                               const char *value, size_t len);
const struct addrmap_entry *addrmap_find_smtp(const struct addrmap *m, const struct addr_path *key);

/* The alias for an address: the line for exactly that address, else the
 * line for its whole domain; NULL when none. */
const struct addrmap_entry *addrmap_find_alias(const struct addrmap *m, const struct addr_path *key);

/* An entry as a canonical map line (no line end): parsing it gives the same
 * entry back. Returns the length, or -1 if buf is too small (buf ""). */
int addrmap_format_entry(const struct addrmap_entry *e, char *buf, size_t n);

/* "in", "out" or "both". */
const char *addrmap_dir_name(unsigned dir);

#endif
