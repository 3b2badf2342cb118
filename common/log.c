/*
 * log.c -- daemon logging to stderr (see log.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "xtime.h"

static const char	*log_prog = "vrelay";
static int		 log_level = LOG_LEVEL_INFO;

static void	log_vwrite(const char *, const char *, const char *, va_list)
		    __attribute__((format(printf, 3, 0)));

/* Set the program name and verbosity. */
void
log_init(const char *progname, int level)
{
	log_prog = progname;
	log_level = level;
	setvbuf(stderr, NULL, _IOLBF, 0);
}

/* Change verbosity at run time (status socket "log" command). */
void
log_setlevel(int level)
{
	log_level = level;
}

/* Current verbosity. */
int
log_getlevel(void)
{
	return (log_level);
}

/* Write one line: timestamp, program, level, message, optional suffix. */
static void
log_vwrite(const char *level, const char *suffix, const char *fmt,
    va_list ap)
{
	char		tbuf[XTIME_UTC_LEN], msg[2048];
	int		saved = errno;

	xtime_utc(xtime_wall_ms(), tbuf, sizeof(tbuf));
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (suffix != NULL)
		fprintf(stderr, "%s %s[%ld]: %s %s: %s\n", tbuf, log_prog,
		    (long)getpid(), level, msg, suffix);
	else
		fprintf(stderr, "%s %s[%ld]: %s %s\n", tbuf, log_prog,
		    (long)getpid(), level, msg);
	errno = saved;
}

/* A warning with strerror(errno) appended. */
void
log_warn(const char *fmt, ...)
{
	va_list	ap;
	char	err[128];

	strerror_r(errno, err, sizeof(err));
	va_start(ap, fmt);
	log_vwrite("warn", err, fmt, ap);
	va_end(ap);
}

/* A warning without errno. */
void
log_warnx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vwrite("warn", NULL, fmt, ap);
	va_end(ap);
}

/* An informational line, shown at LOG_LEVEL_INFO and above. */
void
log_info(const char *fmt, ...)
{
	va_list	ap;

	if (log_level < LOG_LEVEL_INFO)
		return;
	va_start(ap, fmt);
	log_vwrite("info", NULL, fmt, ap);
	va_end(ap);
}

/* A debug line, shown at LOG_LEVEL_DEBUG. */
void
log_debug(const char *fmt, ...)
{
	va_list	ap;

	if (log_level < LOG_LEVEL_DEBUG)
		return;
	va_start(ap, fmt);
	log_vwrite("debug", NULL, fmt, ap);
	va_end(ap);
}

/* Die with strerror(errno): startup failures and broken invariants. */
void
fatal(const char *fmt, ...)
{
	va_list	ap;
	char	err[128];

	strerror_r(errno, err, sizeof(err));
	va_start(ap, fmt);
	log_vwrite("fatal", err, fmt, ap);
	va_end(ap);
	exit(1);
}

/* Die without errno. */
void
fatalx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vwrite("fatal", NULL, fmt, ap);
	va_end(ap);
	exit(1);
}
