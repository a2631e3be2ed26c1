/* clock.h - the service's time: seconds since 1970 (what the queue's
 * envelopes and core/retry.h count in) and RFC 5322 dates for headers. */
#ifndef IMSVC_CLOCK_H
#define IMSVC_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Now, in seconds since 1970-01-01 UTC. */
int64_t clock_unix(void);
/* t as an RFC 5322 date-time in UTC ("Mon, 23 Nov 2026 14:41:10 +0000"). */
void clock_rfc5322(int64_t t, char *out, size_t n);

#endif
