/* mapfile.c - the address map in force (see mapfile.h).
 *
 * A reference-counted holder per loaded map: the service thread swaps the
 * holder in under a lock, sessions take a reference, and the last one out
 * frees it. It must never drop the map in force for one that did not load.
 */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>

#include "mapfile.h"

#include "eventlog.h"
#include "location.h"
#include "utf.h"

struct holder {
    struct addrmap *map;
    volatile LONG refs;
};

static SRWLOCK lock = SRWLOCK_INIT;
static struct holder *current;
static int wanted;

DWORD mapfile_read(const wchar_t *path, struct addrmap **out, struct addrmap_error *err)
{
    *out = NULL;
    err->line = 0;
    err->text[0] = 0;
    /* _wfopen: a path outside the ANSI code page opens too. */
    FILE *f = _wfopen(path, L"rb");
    if (!f) {
        DWORD rc = GetLastError();
        snprintf(err->text, sizeof err->text, "cannot open the file (Win32 error %lu)",
                 (unsigned long)rc);
        return rc ? rc : ERROR_FILE_NOT_FOUND;
    }
    /* One octet past the limit is read, so that an oversized file is noticed. */
    size_t cap = 64 * 1024, n = 0;
    char *buf = malloc(cap);
    DWORD rc = buf ? ERROR_SUCCESS : ERROR_NOT_ENOUGH_MEMORY;
    while (rc == ERROR_SUCCESS) {
        if (n == cap) {
            if (cap > ADDRMAP_FILE_MAX)
                break;
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                rc = ERROR_NOT_ENOUGH_MEMORY;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (rc == ERROR_SUCCESS && ferror(f))
        rc = ERROR_READ_FAULT;
    fclose(f);
    if (rc != ERROR_SUCCESS) {
        snprintf(err->text, sizeof err->text, "cannot read the file (Win32 error %lu)",
                 (unsigned long)rc);
        free(buf);
        return rc;
    }
    rc = addrmap_parse(buf, n, out, err) == 0 ? ERROR_SUCCESS : ERROR_INVALID_DATA;
    free(buf);
    return rc;
}

static void holder_put(struct holder *h)
{
    if (h && InterlockedDecrement(&h->refs) == 0) {
        addrmap_free(h->map);
        free(h);
    }
}

/* Swap in h (NULL: none) and release the one it replaces. */
static void install(struct holder *h, int want)
{
    AcquireSRWLockExclusive(&lock);
    struct holder *old = current;
    current = h;
    wanted = want;
    ReleaseSRWLockExclusive(&lock);
    holder_put(old);
}

void mapfile_configure(const struct imsvc_config *cfg, int at_start)
{
    DWORD location = at_start ? LOC_ADDR_MAP_LOAD : LOC_ADDR_MAP_RELOAD;
    if (!cfg->address_map_file[0]) {
        install(NULL, 0);
        return;
    }
    struct addrmap *m = NULL;
    struct addrmap_error err;
    DWORD rc = mapfile_read(cfg->address_map_file, &m, &err);
    struct holder *h = NULL;
    if (rc == ERROR_SUCCESS) {
        h = calloc(1, sizeof *h);
        if (!h) {
            addrmap_free(m);
            rc = ERROR_NOT_ENOUGH_MEMORY;
            snprintf(err.text, sizeof err.text, "out of memory");
        }
    }
    wchar_t why[300], stays[200];
    if (rc != ERROR_SUCCESS) {
        AcquireSRWLockExclusive(&lock);
        size_t n = current ? addrmap_count(current->map) : 0;
        int had = current != NULL;
        wanted = 1;
        ReleaseSRWLockExclusive(&lock);
        utf8_to_wide(err.text, why, ARRAYSIZE(why));
        if (had)
            _snwprintf(stays, ARRAYSIZE(stays), L"The map loaded before (%lu lines) stays in "
                       L"force", (unsigned long)n);
        else
            _snwprintf(stays, ARRAYSIZE(stays), L"No map is in force: IMCEA recipients are "
                       L"answered 451 4.3.5 until one loads");
        stays[ARRAYSIZE(stays) - 1] = 0;
        evlog_report(EVENTLOG_WARNING_TYPE, CAT_CONFIGURATION, MSG_ADDRESS_MAP_INVALID, location,
                     rc, 3, (const wchar_t *[]){ cfg->address_map_file, why, stays });
        return;
    }
    h->map = m;
    h->refs = 1;
    wchar_t typed[16], aliases[16];
    _snwprintf(typed, ARRAYSIZE(typed), L"%lu", (unsigned long)addrmap_count_kind(m, ADDRMAP_TYPED));
    _snwprintf(aliases, ARRAYSIZE(aliases), L"%lu",
               (unsigned long)addrmap_count_kind(m, ADDRMAP_ALIAS));
    typed[ARRAYSIZE(typed) - 1] = aliases[ARRAYSIZE(aliases) - 1] = 0;
    install(h, 1);
    evlog_report(EVENTLOG_INFORMATION_TYPE, CAT_CONFIGURATION, MSG_ADDRESS_MAP_LOADED, location,
                 0, 3, (const wchar_t *[]){ cfg->address_map_file, typed, aliases });
}

void mapfile_acquire(struct mapfile_ref *r)
{
    AcquireSRWLockShared(&lock);
    struct holder *h = current;
    if (h)
        InterlockedIncrement(&h->refs);
    r->wanted = wanted;
    ReleaseSRWLockShared(&lock);
    r->holder = h;
    r->map = h ? h->map : NULL;
}

void mapfile_release(struct mapfile_ref *r)
{
    holder_put(r->holder);
    r->holder = NULL;
    r->map = NULL;
}

void mapfile_shutdown(void)
{
    install(NULL, 0);
}
