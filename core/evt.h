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
 *     newest, rejecting a truncated or corrupt file with an error code;
 *   - journal: append records to a FILE *, keeping header and end-of-file
 *     record consistent after every append, wrapping when full.
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
struct evt_reader {
    const unsigned char *buf;
    size_t len;
    struct evt_header h;
    uint32_t pos;          /* offset of the next record */
    uint64_t walked;       /* bytes walked, bounds the loop */
    int done;
    unsigned char *scratch; /* holds a record split across the end */
    size_t scratch_cap;
};
/* Checks the header and the file's size against it. */
int evt_reader_init(struct evt_reader *r, const unsigned char *buf, size_t len);
/* 1: *v holds the next record (valid until the next call); 0: end reached
 * (the end-of-file record matched the header); <0: EVT_E_*. */
int evt_reader_next(struct evt_reader *r, struct evt_view *v);
void evt_reader_free(struct evt_reader *r);
/* Walk the whole file; on success *count is the number of records. */
int evt_validate(const unsigned char *buf, size_t len, uint32_t *count);

/* Read a whole stream (at most EVT_MAX_FILE bytes) into malloc'd memory. */
int evt_slurp(FILE *f, unsigned char **buf, size_t *len);

/* Journal: a .evt file open for appending. */
struct evt_journal {
    FILE *f;
    struct evt_header h;
    uint32_t file_size;  /* physical size; the wrap point once wrapped */
};
/* Take over f (opened "w+b" or "r+b"): an empty stream becomes a new journal
 * bounded by max_size (rounded down to a multiple of 4, at least
 * EVT_MIN_SIZE); an existing one is validated and continued. On error f is
 * left open for the caller. */
int evt_journal_open_fp(struct evt_journal *j, FILE *f, uint32_t max_size);
/* Convenience: fopen the path ("r+b", else "w+b"). */
int evt_journal_open(struct evt_journal *j, const char *path, uint32_t max_size);
/* Append one event; returns its record number in *number (may be NULL). */
int evt_journal_append(struct evt_journal *j, const struct evt_event *ev, uint32_t *number);
/* Append an already built record (its number is rewritten). */
int evt_journal_append_raw(struct evt_journal *j, unsigned char *rec, size_t len, uint32_t *number);
void evt_journal_close(struct evt_journal *j);

#endif
