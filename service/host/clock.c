/* clock.c - see clock.h. */
#include "clock.h"

#include <stdio.h>
#include <windows.h>

#define UNIX_EPOCH_AS_FILETIME 11644473600ll   /* seconds from 1601 to 1970 */
#define FILETIME_PER_SECOND    10000000ull

int64_t clock_unix(void)
{
    FILETIME ft;
    GetSystemTimeAsFileTime(&ft);
    ULARGE_INTEGER u = { .LowPart = ft.dwLowDateTime, .HighPart = ft.dwHighDateTime };
    return (int64_t)(u.QuadPart / FILETIME_PER_SECOND) - UNIX_EPOCH_AS_FILETIME;
}

void clock_rfc5322(int64_t t, char *out, size_t n)
{
    static const char *days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char *months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    ULARGE_INTEGER u;
    u.QuadPart = (uint64_t)(t + UNIX_EPOCH_AS_FILETIME) * FILETIME_PER_SECOND;
    FILETIME ft = { u.LowPart, u.HighPart };
    SYSTEMTIME st;
    if (!FileTimeToSystemTime(&ft, &st))
        GetSystemTime(&st);
    snprintf(out, n, "%s, %u %s %u %02u:%02u:%02u +0000", days[st.wDayOfWeek % 7], st.wDay,
             months[(st.wMonth + 11) % 12], st.wYear, st.wHour, st.wMinute, st.wSecond);
}
