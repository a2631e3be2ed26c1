/* viewer.c - `imsvc events`: print the journal as Event Viewer shows events.
 *
 * Reads the whole journal and walks it with the core reader that skips
 * damage: a record that cannot be read is passed over, counted and reported
 * on stderr (exit status 2), and every other record is shown, formatted with
 * this executable's own message table. It only reads the journal; --export
 * writes a checked copy elsewhere (rebuilt from what survives when the
 * journal is damaged).
 */
#include <windows.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventlog.h"
#include "evt.h"
#include "viewer.h"

#define MAX_INSERTS 99        /* FormatMessage knows %1 .. %99 */
#define BYTES_PER_LINE 8      /* Event Viewer's Bytes view */
#define WORDS_PER_LINE 4      /* Event Viewer's Words view */

static const char USAGE[] = "usage: imsvc events [--last N] [--id N] [--export FILE]\n";

/* A growing UTF-8 buffer. */
struct sb {
    char *p;
    size_t n, cap;
    int failed;
};

static void sb_add(struct sb *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void sb_printf(struct sb *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        b->failed = 1; /* only short fixed fields go through here */
        return;
    }
    sb_add(b, tmp, (size_t)n);
}

/* UTF-16 (wchar_t) to the buffer as UTF-8, CRLF becoming LF. */
static void sb_addw(struct sb *b, const wchar_t *w)
{
    int need = WideCharToMultiByte(CP_UTF8, 0, w, -1, NULL, 0, NULL, NULL);
    if (need <= 0)
        return;
    char *u = malloc((size_t)need);
    if (!u) {
        b->failed = 1;
        return;
    }
    WideCharToMultiByte(CP_UTF8, 0, w, -1, u, need, NULL, NULL);
    for (char *s = u; *s; s++)
        if (!(s[0] == '\r' && s[1] == '\n'))
            sb_add(b, s, 1);
    free(u);
}

static void sb_add_le(struct sb *b, const unsigned char *le, size_t units)
{
    size_t need = evt_utf16le_to_utf8(le, units, NULL, 0);
    char *u = malloc(need + 1);
    if (!u) {
        b->failed = 1;
        return;
    }
    evt_utf16le_to_utf8(le, units, u, need + 1);
    sb_add(b, u, need);
    free(u);
}

static wchar_t *wdup_le(const unsigned char *le, size_t units)
{
    wchar_t *w = malloc((units + 1) * sizeof *w);
    if (!w)
        return NULL;
    for (size_t i = 0; i < units; i++)
        w[i] = (wchar_t)(le[2 * i] | le[2 * i + 1] << 8);
    w[units] = 0;
    return w;
}

static wchar_t *wdup(const wchar_t *s)
{
    size_t n = wcslen(s) + 1;
    wchar_t *w = malloc(n * sizeof *w);
    if (w)
        memcpy(w, s, n * sizeof *w);
    return w;
}

static void trim_end(wchar_t *s)
{
    size_t n = wcslen(s);
    while (n && (s[n - 1] == L'\r' || s[n - 1] == L'\n' || s[n - 1] == L' '))
        s[--n] = 0;
}

/* Message id from this module's table, with args or none; malloc'd or NULL. */
static wchar_t *table_text(DWORD id, DWORD_PTR *args)
{
    wchar_t *buf = NULL;
    DWORD flags = FORMAT_MESSAGE_FROM_HMODULE | FORMAT_MESSAGE_ALLOCATE_BUFFER |
                  (args ? FORMAT_MESSAGE_ARGUMENT_ARRAY : FORMAT_MESSAGE_IGNORE_INSERTS);
    DWORD n = FormatMessageW(flags, GetModuleHandleW(NULL), id, MAKELANGID(LANG_NEUTRAL, SUBLANG_NEUTRAL),
                             (wchar_t *)&buf, 0, (va_list *)args);
    if (n == 0 || !buf) {
        if (buf)
            LocalFree(buf);
        return NULL;
    }
    wchar_t *out = wdup(buf);
    LocalFree(buf);
    if (out)
        trim_end(out);
    return out;
}

wchar_t *evlog_format_message(DWORD event_id, int nstrings, const wchar_t *const *strings)
{
    if (nstrings < 0)
        nstrings = 0;
    /* Every insert %1..%99 gets an argument, so a message that names more
     * inserts than the event carries shows "%3" instead of reading past the
     * array. */
    wchar_t placeholders[MAX_INSERTS][4];
    DWORD_PTR args[MAX_INSERTS];
    for (int i = 0; i < MAX_INSERTS; i++) {
        if (i < nstrings && strings && strings[i]) {
            args[i] = (DWORD_PTR)strings[i];
        } else {
            _snwprintf(placeholders[i], 4, L"%%%d", i + 1);
            placeholders[i][3] = 0;
            args[i] = (DWORD_PTR)placeholders[i];
        }
    }
    wchar_t *text = table_text(event_id, args);
    if (text)
        return text;

    /* Not in the table: say so, and still show what the event carries. */
    size_t len = 200;
    for (int i = 0; i < nstrings; i++)
        len += (strings && strings[i] ? wcslen(strings[i]) : 0) + 2;
    wchar_t *out = malloc(len * sizeof *out);
    if (!out)
        return NULL;
    _snwprintf(out, len, L"The description for Event ID %u from source %ls is not in this "
               L"program's message table.", (unsigned)(event_id & 0xffff), EVLOG_SOURCE);
    out[len - 1] = 0;
    if (nstrings) {
        wcscat(out, L" The event carries these strings:");
        for (int i = 0; i < nstrings; i++) {
            wcscat(out, i ? L"; " : L" ");
            if (strings && strings[i])
                wcscat(out, strings[i]);
        }
    }
    return out;
}

wchar_t *evlog_category_name(WORD category)
{
    if (category == 0)
        return wdup(L"None");
    wchar_t *text = table_text(category, NULL);
    if (text)
        return text;
    wchar_t num[16];
    _snwprintf(num, ARRAYSIZE(num), L"(%u)", (unsigned)category);
    num[ARRAYSIZE(num) - 1] = 0;
    return wdup(num);
}

static const char *type_name(WORD type)
{
    switch (type) {
    case EVENTLOG_ERROR_TYPE: return "Error";
    case EVENTLOG_WARNING_TYPE: return "Warning";
    case EVENTLOG_INFORMATION_TYPE: return "Information";
    case EVENTLOG_AUDIT_SUCCESS: return "Success Audit";
    case EVENTLOG_AUDIT_FAILURE: return "Failure Audit";
    case EVENTLOG_SUCCESS: return "Success";
    default: return "Unknown";
    }
}

/* S-1-5-18 style, from the binary SID; "N/A" when absent. */
static void add_user(struct sb *b, const struct evt_view *v)
{
    const unsigned char *s = v->sid;
    if (!s || v->sid_len < 8 || v->sid_len < 8u + 4u * s[1]) {
        sb_add(b, "N/A", 3);
        return;
    }
    unsigned long long auth = 0;
    for (int i = 2; i < 8; i++)
        auth = auth << 8 | s[i];
    sb_printf(b, "S-%u-%llu", s[0], auth);
    for (unsigned i = 0; i < s[1]; i++) {
        const unsigned char *p = s + 8 + 4 * i;
        sb_printf(b, "-%lu", (unsigned long)p[0] | (unsigned long)p[1] << 8 |
                                 (unsigned long)p[2] << 16 | (unsigned long)p[3] << 24);
    }
}

static void add_data(struct sb *b, const unsigned char *d, uint32_t n)
{
    if (n == 0) {
        sb_printf(b, "Data:\t\t(none)\n");
        return;
    }
    sb_printf(b, "Data (Bytes):\n");
    for (uint32_t off = 0; off < n; off += BYTES_PER_LINE) {
        sb_printf(b, "%04x:", (unsigned)off);
        for (uint32_t i = off; i < n && i < off + BYTES_PER_LINE; i++)
            sb_printf(b, " %02x", d[i]);
        sb_add(b, "\n", 1);
    }
    sb_printf(b, "Data (Words):\n");
    for (uint32_t off = 0; off < n; off += 4 * WORDS_PER_LINE) {
        sb_printf(b, "%04x:", (unsigned)off);
        for (uint32_t w = off; w < n && w < off + 4 * WORDS_PER_LINE; w += 4) {
            uint32_t k = n - w < 4 ? n - w : 4, val = 0;
            for (uint32_t i = 0; i < k; i++)
                val |= (uint32_t)d[w + i] << (8 * i);
            sb_printf(b, " %0*lx", (int)(2 * k), (unsigned long)val);
        }
        sb_add(b, "\n", 1);
    }
}

char *evlog_render_record(const struct evt_view *v)
{
    struct sb b = { 0 };
    /* TimeGenerated, in local time as Event Viewer shows it. */
    ULARGE_INTEGER t;
    t.QuadPart = ((ULONGLONG)v->time_generated + 11644473600ull) * 10000000ull;
    FILETIME ft = { t.LowPart, t.HighPart }, lft;
    SYSTEMTIME st = { 0 };
    if (!FileTimeToLocalFileTime(&ft, &lft) || !FileTimeToSystemTime(&lft, &st))
        FileTimeToSystemTime(&ft, &st);
    unsigned hour12 = st.wHour % 12 ? st.wHour % 12 : 12;
    sb_printf(&b, "Date:\t\t%u/%u/%u\n", st.wMonth, st.wDay, st.wYear);
    sb_printf(&b, "Time:\t\t%u:%02u:%02u %s\n", hour12, st.wMinute, st.wSecond,
              st.wHour < 12 ? "AM" : "PM");
    sb_printf(&b, "Type:\t\t%s\n", type_name(v->event_type));
    sb_printf(&b, "User:\t\t");
    add_user(&b, v);
    sb_printf(&b, "\nComputer:\t");
    sb_add_le(&b, v->computer, v->computer_units);
    sb_printf(&b, "\nSource:\t\t");
    sb_add_le(&b, v->source, v->source_units);
    sb_printf(&b, "\nCategory:\t");
    wchar_t *cat = evlog_category_name(v->category);
    if (cat)
        sb_addw(&b, cat);
    free(cat);
    sb_printf(&b, "\nEvent ID:\t%u\n", (unsigned)(v->event_id & 0xffff));

    wchar_t **strs = v->nstrings ? calloc(v->nstrings, sizeof *strs) : NULL;
    int n = 0;
    if (v->nstrings && !strs)
        b.failed = 1;
    for (; strs && n < v->nstrings; n++) {
        const unsigned char *text;
        size_t units;
        if (evt_view_string(v, (unsigned)n, &text, &units) != EVT_OK)
            break;
        strs[n] = wdup_le(text, units);
    }
    wchar_t *desc = evlog_format_message(v->event_id, n, (const wchar_t *const *)strs);
    sb_printf(&b, "Description:\n");
    if (desc)
        sb_addw(&b, desc);
    sb_add(&b, "\n", 1);
    free(desc);
    for (int i = 0; i < n; i++)
        free(strs[i]);
    free(strs);

    add_data(&b, v->data, v->data_len);
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* Command line ---------------------------------------------------------------- */

static int parse_number(const char *s, unsigned long max, unsigned long *out)
{
    if (!s || !*s)
        return 0;
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (*end || errno || s[0] == '-' || s[0] == '+' || v > max)
        return 0;
    *out = v;
    return 1;
}

static char *path_utf8(const wchar_t *w)
{
    int need = WideCharToMultiByte(CP_UTF8, 0, w, -1, NULL, 0, NULL, NULL);
    char *u = need > 0 ? malloc((size_t)need) : NULL;
    if (u)
        WideCharToMultiByte(CP_UTF8, 0, w, -1, u, need, NULL, NULL);
    return u;
}

static wchar_t *path_wide(const char *u)
{
    int need = MultiByteToWideChar(CP_UTF8, 0, u, -1, NULL, 0);
    wchar_t *w = need > 0 ? malloc((size_t)need * sizeof *w) : NULL;
    if (w)
        MultiByteToWideChar(CP_UTF8, 0, u, -1, w, need);
    return w;
}

static int export_copy(const unsigned char *buf, size_t len, const char *dest, uint32_t count,
                       uint32_t skipped)
{
    wchar_t *wdest = path_wide(dest);
    FILE *f = wdest ? _wfopen(wdest, L"wb") : NULL;
    free(wdest);
    if (!f) {
        fprintf(stderr, "imsvc events: cannot create %s: %s\n", dest, strerror(errno));
        return 1;
    }
    int ok = fwrite(buf, 1, len, f) == len;
    if (fclose(f) != 0)
        ok = 0;
    if (!ok) {
        fprintf(stderr, "imsvc events: cannot write %s: %s\n", dest, strerror(errno));
        return 1;
    }
    if (skipped)
        printf("exported %u events to %s (%u damaged records left out)\n", (unsigned)count, dest,
               (unsigned)skipped);
    else
        printf("exported %u events to %s\n", (unsigned)count, dest);
    return 0;
}

int evlog_cmd_events(const wchar_t *journal_path, int argc, char **argv)
{
    unsigned long last = 0, id = 0;
    int have_last = 0, have_id = 0;
    const char *export_to = NULL;
    int i = (argc > 0 && argv[0] && strcmp(argv[0], "events") == 0) ? 1 : 0;
    for (; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--last") == 0) {
            if (!parse_number(val, 0x7fffffffUL, &last) || last == 0) {
                fprintf(stderr, "imsvc events: --last needs a positive number, not '%s'\n%s",
                        val ? val : "", USAGE);
                return 1;
            }
            have_last = 1;
            i++;
        } else if (strcmp(a, "--id") == 0) {
            if (!parse_number(val, 0xffffUL, &id)) {
                fprintf(stderr, "imsvc events: --id needs an event ID from 0 to 65535, not '%s'\n%s",
                        val ? val : "", USAGE);
                return 1;
            }
            have_id = 1;
            i++;
        } else if (strcmp(a, "--export") == 0) {
            if (!val || !*val) {
                fprintf(stderr, "imsvc events: --export needs a file name\n%s", USAGE);
                return 1;
            }
            export_to = val;
            i++;
        } else {
            fprintf(stderr, "imsvc events: unknown argument '%s'\n%s", a, USAGE);
            return 1;
        }
    }
    if (export_to && (have_last || have_id)) {
        fprintf(stderr, "imsvc events: --export copies the whole journal; it cannot be combined "
                        "with --last or --id\n%s", USAGE);
        return 1;
    }

    char *jname = journal_path ? path_utf8(journal_path) : NULL;
    const char *shown = jname ? jname : "(none)";
    FILE *f = journal_path ? _wfopen(journal_path, L"rb") : NULL;
    if (!f) {
        fprintf(stderr, "imsvc events: cannot open the journal %s: %s\n", shown,
                errno == ENOENT ? "it does not exist (the service has not logged an event yet)"
                                : strerror(errno));
        free(jname);
        return 1;
    }
    unsigned char *buf = NULL;
    size_t len = 0;
    int rc = evt_slurp(f, &buf, &len);
    fclose(f);
    /* One walk that skips damage: the count, and what was lost. */
    struct evt_reader r;
    struct evt_view v;
    uint32_t count = 0;
    if (rc == EVT_OK)
        rc = evt_reader_init_flags(&r, buf, len, EVT_READ_SKIP_DAMAGED);
    if (rc == EVT_OK) {
        while ((rc = evt_reader_next(&r, &v)) == 1)
            count++;
        evt_reader_free(&r);
    }
    if (rc != EVT_OK) {
        fprintf(stderr, "imsvc events: cannot read the journal %s: %s\n", shown, evt_strerror(rc));
        free(buf);
        free(jname);
        return 1;
    }
    uint32_t skipped = r.skipped;
    int damaged = r.stretches || !r.eof_found;
    if (damaged) {
        if (skipped)
            fprintf(stderr, "imsvc events: the journal %s is damaged: skipped %u record%s that "
                    "could not be read; %u records read\n", shown, (unsigned)skipped,
                    skipped == 1 ? "" : "s", (unsigned)count);
        else
            fprintf(stderr, "imsvc events: the journal %s ends without its end-of-file record; "
                    "%u records read\n", shown, (unsigned)count);
    }
    if (export_to) {
        int st;
        if (damaged) {
            /* A clean copy of what survives, so other tools read it as is. */
            unsigned char *img;
            size_t img_len;
            rc = evt_rebuild(buf, len, &img, &img_len, NULL);
            if (rc != EVT_OK) {
                fprintf(stderr, "imsvc events: cannot rebuild the journal %s: %s\n", shown,
                        evt_strerror(rc));
                st = 1;
            } else {
                st = export_copy(img, img_len, export_to, count, skipped);
                free(img);
            }
        } else {
            st = export_copy(buf, len, export_to, count, 0);
        }
        free(buf);
        free(jname);
        return st ? st : damaged ? 2 : 0;
    }
    free(jname);

    /* Two passes: count the matches, then print the newest `last` of them. */
    unsigned long matched = 0, seen = 0;
    evt_reader_init_flags(&r, buf, len, EVT_READ_SKIP_DAMAGED);
    while (evt_reader_next(&r, &v) == 1)
        if (!have_id || (v.event_id & 0xffff) == id)
            matched++;
    evt_reader_free(&r);
    unsigned long skip = have_last && matched > last ? matched - last : 0;
    int status = 0, first = 1;
    evt_reader_init_flags(&r, buf, len, EVT_READ_SKIP_DAMAGED);
    while (evt_reader_next(&r, &v) == 1) {
        if (have_id && (v.event_id & 0xffff) != id)
            continue;
        if (seen++ < skip)
            continue;
        char *text = evlog_render_record(&v);
        if (!text) {
            fprintf(stderr, "imsvc events: out of memory\n");
            status = 1;
            break;
        }
        if (!first)
            fputs("\n", stdout);
        fputs(text, stdout);
        first = 0;
        free(text);
    }
    evt_reader_free(&r);
    free(buf);
    if (fflush(stdout) != 0)
        status = 1;
    return status ? status : damaged ? 2 : 0;
}
