/*
 * xtime.h -- the clocks and delays every module uses: monotonic and
 * wall-clock milliseconds, timevals for libevent, UTC text, and
 * retry backoff with jitter.
 */
#ifndef VRELAY_XTIME_H
#define VRELAY_XTIME_H

#include <stddef.h>

struct timeval;

#define XTIME_UTC_LEN	25	/* "2026-11-26T12:00:00.000Z" + NUL */

/* Milliseconds on the monotonic clock (intervals, deadlines). */
long long	xtime_mono_ms(void);
/* Milliseconds since 1970 on the wall clock (timestamps people read). */
long long	xtime_wall_ms(void);
/* MS milliseconds (negative: 0) as a timeval. */
void		xtime_tv(long long, struct timeval *);
/* Wall-clock MS as "YYYY-MM-DDTHH:MM:SS.mmmZ" in BUF (XTIME_UTC_LEN). */
char		*xtime_utc(long long, char *, size_t);
/* MS with +-25% jitter, so retries of many peers do not line up. */
long long	xtime_jitter(long long);
/*
 * The next retry delay from *STEP, then double *STEP for the time
 * after (from 0: MIN; at most MAX).  A step of 0 retries at once.
 */
long long	xtime_backoff(long long *, long long, long long);

#endif
