/* storage.c - the reply to a failed store, and the full-disk watch (see
 * storage.h). Pure functions over plain numbers: no clock, no I/O. */
#include "storage.h"

int storage_is_full(unsigned long err)
{
    return err == STORAGE_ERROR_DISK_FULL || err == STORAGE_ERROR_HANDLE_DISK_FULL ||
           err == STORAGE_ERROR_DISK_QUOTA_EXCEEDED;
}

void storage_reply(unsigned long err, struct storage_reply *out)
{
    if (!out)
        return;
    if (storage_is_full(err)) {
        out->code = 452;
        out->status = "4.3.1";
        out->text = "Insufficient system storage: the mail system is full; try again later";
        out->full = 1;
    } else {
        /* The words of the reply the session gave before this module. */
        out->code = 451;
        out->status = "4.3.0";
        out->text = "Error: cannot store the message now; try again later";
        out->full = 0;
    }
}

enum storage_event storage_failed(struct storage_watch *w, unsigned long err, int message,
                                  int64_t now)
{
    if (!w || !storage_is_full(err))
        return STORAGE_NONE;
    if (!w->full) {
        w->full = 1;
        w->error = err;
        w->since = now;
        w->messages = 0;
        w->failures = 0;
    }
    w->last_failure = now;
    w->failures++;
    if (message)
        w->messages++;
    return w->failures == 1 ? STORAGE_BEGAN : STORAGE_NONE;
}

enum storage_event storage_stored(struct storage_watch *w, int64_t now)
{
    if (!w || !w->full)
        return STORAGE_NONE;
    /* A clock that went back counts as no time passed. */
    if (now < w->last_failure || now - w->last_failure < (int64_t)STORAGE_CLEAR_SECS)
        return STORAGE_NONE;
    w->full = 0;
    return STORAGE_ENDED;
}
