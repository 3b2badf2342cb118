/*
 * xtime.c -- clocks, timevals, UTC text and retry backoff (xtime.h).
 */
#include <sys/time.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "xtime.h"

/* Milliseconds on the monotonic clock. */
long long
xtime_mono_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/* Milliseconds since 1970. */
long long
xtime_wall_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/* A delay in milliseconds as a timeval. */
void
xtime_tv(long long ms, struct timeval *tv)
{
	if (ms < 0)
		ms = 0;
	tv->tv_sec = ms / 1000;
	tv->tv_usec = (ms % 1000) * 1000;
}

/* Wall-clock milliseconds as ISO 8601 UTC with milliseconds. */
char *
xtime_utc(long long ms, char *buf, size_t len)
{
	struct tm	tm;
	time_t		t;
	char		sec[24];

	if (ms < 0)
		ms = 0;
	t = (time_t)(ms / 1000);
	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		strlcpy(sec, "1970-01-01T00:00:00", sizeof(sec));
	snprintf(buf, len, "%s.%03lldZ", sec, ms % 1000);
	return (buf);
}

/* MS with +-25% jitter (from OpenSSL's generator: never predictable). */
long long
xtime_jitter(long long ms)
{
	uint32_t	r;

	if (ms <= 0)
		return (0);
	if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
		r = (uint32_t)xtime_mono_ms();
	return (ms * 3 / 4 + (long long)(r % (uint64_t)(ms / 2 + 1)));
}

/* This retry's delay from *STEP; the next step doubles, up to MAX. */
long long
xtime_backoff(long long *step, long long min, long long max)
{
	long long	d = xtime_jitter(*step);

	*step = *step <= 0 ? min : *step * 2 > max ? max : *step * 2;
	return (d);
}
