/* evt.h - the classic NT event log file format (.evt), portable.
 *
 * What Event Viewer opens as a saved log and libevt's evtexport reads: a
 * 0x30-byte EVENTLOGHEADER, then a circular region of EVENTLOGRECORDs closed
 * by a 0x28-byte end-of-file cursor record. Once the file reaches its MaxSize
 * it wraps: the oldest records are overwritten and a record may be split
 * across the end of the file, continuing just after the header, as NT does.
 *
 * Three layers, each usable alone:
 *   - records: build one EVENTLOGRECORD into a buffer; parse one, checking
 *     every offset and length against the record's own size;
 *   - reader: iterate the records of a whole file held in memory, oldest to
 *     newest; strict (any damage is an error code) or skipping damaged
 *     records and counting them; rebuild a clean file from what survives;
 *   - journal: append records through a store (positioned reads and
 *     writes), keeping header and end-of-file record consistent after every
 *     append, wrapping when full. Its space is reserved up to MaxSize when
 *     it can be; where it cannot, a record is written so that a failed write
 *     (a full disk) leaves the file exactly as it was.
 * This module never reads the clock (times come from the caller), never
 * includes windows.h, and never trusts a length it read.
 */
#ifndef IMSVC_EVT_H
#define IMSVC_EVT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define EVT_HEADER_SIZE    0x30u
#define EVT_RECORD_FIXED   0x38u     /* EVENTLOGRECORD up to SourceName */
#define EVT_EOF_SIZE       0x28u
#define EVT_SIGNATURE      0x654c664cu /* "LfLe" */
#define EVT_VERSION_MAJOR  1u
#define EVT_VERSION_MINOR  1u
#define EVT_MIN_SIZE       0x1000u   /* smallest MaxSize a journal accepts */
#define EVT_MAX_FILE       0x40000000u /* largest file the reader loads */

/* EVENTLOGHEADER.Flags */
#define EVT_FLAG_DIRTY     0x1u
#define EVT_FLAG_WRAP      0x2u
#define EVT_FLAG_LOGFULL   0x4u
#define EVT_FLAG_ARCHIVE   0x8u

/* EVENTLOGRECORD.EventType */
#define EVT_TYPE_SUCCESS       0x0000u
#define EVT_TYPE_ERROR         0x0001u
#define EVT_TYPE_WARNING       0x0002u
#define EVT_TYPE_INFORMATION   0x0004u
#define EVT_TYPE_AUDIT_SUCCESS 0x0008u
#define EVT_TYPE_AUDIT_FAILURE 0x0010u

enum evt_status {
    EVT_OK = 0,
    EVT_E_ARG = -1,       /* a caller's argument is out of range */
    EVT_E_IO = -2,        /* read, write or seek failed (see errno) */
    EVT_E_NOMEM = -3,
    EVT_E_TRUNCATED = -4, /* the file or record ends before its own sizes say */
    EVT_E_CORRUPT = -5,   /* a signature, size or offset is inconsistent */
    EVT_E_TOO_LARGE = -6, /* the record cannot fit in the journal at all */
};
const char *evt_strerror(int status);

struct evt_header {
    uint32_t start_offset;   /* oldest record */
    uint32_t end_offset;     /* the end-of-file record */
    uint32_t current_record; /* number the next record will get */
    uint32_t oldest_record;  /* number of the oldest record, 0 when empty */
    uint32_t max_size;
    uint32_t flags;
    uint32_t retention;
};
void evt_header_encode(const struct evt_header *h, unsigned char out[EVT_HEADER_SIZE]);
int evt_header_decode(const unsigned char *buf, size_t len, struct evt_header *h);

/* The end-of-file record repeats the header's cursor fields. */
void evt_eof_encode(const struct evt_header *h, unsigned char out[EVT_EOF_SIZE]);
int evt_eof_decode(const unsigned char *buf, size_t len, struct evt_header *h);

/* An event to write. Strings are NUL-terminated UTF-16 (host order); on
 * Windows a wchar_t string can be passed as is. */
struct evt_event {
    uint32_t time_generated;  /* seconds since 1970-01-01 UTC */
    uint32_t time_written;
    uint32_t event_id;        /* the full 32-bit message ID */
    uint16_t event_type;      /* EVT_TYPE_* */
    uint16_t category;
    const uint16_t *source;
    const uint16_t *computer;
    const unsigned char *sid; /* optional binary SID */
    uint32_t sid_len;
    uint16_t nstrings;
    const uint16_t *const *strings;
    const unsigned char *data;
    uint32_t data_len;
};

/* Bytes the record for ev takes, or 0 if ev is invalid or too large. */
size_t evt_record_size(const struct evt_event *ev);
/* Build the record numbered record_number into buf. Returns its length, or 0
 * if cap is too small or ev invalid. */
size_t evt_record_build(const struct evt_event *ev, uint32_t record_number,
                        unsigned char *buf, size_t cap);

/* A parsed record: pointers into the caller's buffer; text is UTF-16LE bytes,
 * lengths in UTF-16 units without the NUL. */
struct evt_view {
    uint32_t length;
    uint32_t record_number;
    uint32_t time_generated;
    uint32_t time_written;
    uint32_t event_id;
    uint16_t event_type;
    uint16_t nstrings;
    uint16_t category;
    const unsigned char *source;   size_t source_units;
    const unsigned char *computer; size_t computer_units;
    const unsigned char *sid;      uint32_t sid_len;
    const unsigned char *strings;  size_t strings_bytes; /* all, with NULs */
    const unsigned char *data;     uint32_t data_len;
    const unsigned char *raw;      /* the whole record, length bytes */
};
int evt_record_parse(const unsigned char *buf, size_t len, struct evt_view *v);
/* String idx (0-based) of a parsed record. */
int evt_view_string(const struct evt_view *v, unsigned idx,
                    const unsigned char **text, size_t *units);

/* UTF-16LE (units, no NUL needed) to NUL-terminated UTF-8; unpaired
 * surrogates become U+FFFD. Returns the length the full text needs, without
 * the NUL (as snprintf does); out may be NULL when cap is 0. */
size_t evt_utf16le_to_utf8(const unsigned char *le, size_t units, char *out, size_t cap);

/* Reader over a whole file in memory. */
#define EVT_READ_SKIP_DAMAGED 0x1u /* pass over damage instead of failing */

struct evt_reader {
    const unsigned char *buf;
    size_t len;            /* bytes of the file the walk may use */
    struct evt_header h;
    uint32_t pos;          /* offset of the next record */
    uint64_t walked;       /* bytes walked, bounds the loop */
    int done;
    unsigned flags;
    unsigned char *scratch; /* holds a record split across the end */
    size_t scratch_cap;
    /* With EVT_READ_SKIP_DAMAGED, what the walk met (final once it ends): */
    uint32_t expect;       /* the record number expected next */
    int yielded;           /* a record has been returned */
    uint32_t skipped;      /* damaged records passed over (from the numbering
                              where it is plausible, else one per stretch) */
    uint32_t stretches;    /* damaged stretches passed over */
    int eof_found;         /* the walk ended at an end-of-file record */
};
/* Checks the header and the file's size against it (strict). */
int evt_reader_init(struct evt_reader *r, const unsigned char *buf, size_t len);
/* flags EVT_READ_SKIP_DAMAGED: only the header must be sound (and, for a
 * wrapped file, its start offset); the header's end offset is a hint, the
 * end is the end-of-file record the walk reaches; a record that does not
 * parse is passed over by scanning for the next record or end-of-file
 * record, and counted in skipped. */
int evt_reader_init_flags(struct evt_reader *r, const unsigned char *buf, size_t len,
                          unsigned flags);
/* 1: *v holds the next record (valid until the next call); 0: end reached
 * (strict: the end-of-file record matched the header); <0: EVT_E_*
 * (skipping damage, only EVT_E_ARG or EVT_E_NOMEM). */
int evt_reader_next(struct evt_reader *r, struct evt_view *v);
void evt_reader_free(struct evt_reader *r);
/* Walk the whole file strictly; on success *count is the number of records. */
int evt_validate(const unsigned char *buf, size_t len, uint32_t *count);

/* What a walk that skips damage found. */
struct evt_scan {
    uint32_t records;      /* records read */
    uint32_t skipped;      /* damaged records passed over */
    uint32_t stretches;    /* damaged stretches */
    int eof_found;         /* ended at an end-of-file record */
    int clean;             /* the strict reader accepts the file as is */
};
/* A clean, unwrapped journal image of the records a damage-skipping walk of
 * buf reads, in order, with their numbers, ending with an end-of-file record
 * (out_len = 0x30 + records + 0x28); the header keeps buf's MaxSize (raised
 * to fit) and numbering (the next number is never lower than buf's). *out is
 * malloc'd. Fails only when buf's header is unusable or memory runs out. */
int evt_rebuild(const unsigned char *buf, size_t len, unsigned char **out, size_t *out_len,
                struct evt_scan *scan);

/* Read a whole stream (at most EVT_MAX_FILE bytes) into malloc'd memory. */
int evt_slurp(FILE *f, unsigned char **buf, size_t *len);

/* A journal's storage: positioned I/O on one file. Each function returns 0
 * or the platform's error code (an errno value, a Win32 error), which the
 * journal keeps in its error field for the owner to report. write_at writes
 * all n bytes or fails (it may have written some); set_size truncates or
 * extends (extension need not allocate: the journal writes zeros to reserve
 * space). */
struct evt_store {
    void *ctx;
    unsigned long (*read_at)(void *ctx, uint32_t off, void *buf, size_t n);
    unsigned long (*write_at)(void *ctx, uint32_t off, const void *buf, size_t n);
    unsigned long (*get_size)(void *ctx, uint64_t *size);
    unsigned long (*set_size)(void *ctx, uint32_t size);
};
/* The store over a stdio stream (opened "w+b" or "r+b"); the stream is made
 * unbuffered, so a failed write is seen at once and nothing is left in a
 * buffer to land later. */
void evt_store_stdio(struct evt_store *s, FILE *f);

/* Journal: a .evt file open for appending. */
struct evt_journal {
    struct evt_store io;
    FILE *f;             /* the stream, when opened through one (closed by close) */
    struct evt_header h;
    uint32_t file_size;  /* physical size; the wrap point once wrapped */
    int reserved;        /* the file already spans MaxSize: appends cannot need space */
    unsigned long error; /* the store's code behind the last EVT_E_IO */
    /* What open found and did: */
    int repaired;        /* the file was damaged and rewritten from what survived */
    struct evt_scan repair; /* the damage-skipping walk behind a repair */
};
/* Take over a store: an empty file becomes a new journal bounded by
 * max_size (rounded down to a multiple of 4, at least EVT_MIN_SIZE); an
 * existing one is validated and continued, or, when damaged but its header
 * is sound, rewritten in place from the records that survive (repaired set,
 * repair says what was lost). Then the file is extended with zeros to its
 * MaxSize where the disk allows (reserved set); if not, the journal still
 * works, growing record by record. EVT_E_CORRUPT/TRUNCATED: the header is
 * unusable; EVT_E_IO: the store failed (error has its code). */
int evt_journal_open_store(struct evt_journal *j, const struct evt_store *io, uint32_t max_size);
/* The same over a stream (opened "w+b" or "r+b"); on error f is left open
 * for the caller. */
int evt_journal_open_fp(struct evt_journal *j, FILE *f, uint32_t max_size);
/* Convenience: fopen the path ("r+b", else "w+b"). */
int evt_journal_open(struct evt_journal *j, const char *path, uint32_t max_size);
/* Append one event; returns its record number in *number (may be NULL).
 * On any failure the file is left as it was before the call: the header,
 * the end-of-file record and every record already written are intact, and
 * the record is not counted. */
int evt_journal_append(struct evt_journal *j, const struct evt_event *ev, uint32_t *number);
/* Append an already built record (its number is rewritten). */
int evt_journal_append_raw(struct evt_journal *j, unsigned char *rec, size_t len, uint32_t *number);
/* Closes the stream if the journal was opened through one. */
void evt_journal_close(struct evt_journal *j);

#endif
