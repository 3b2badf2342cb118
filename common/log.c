/*
 * log.c -- daemon logging to stderr (see log.h).
 *
 * A daemon on its loop defers info and debug lines (log_defer): they
 * wait in a buffer and leave in one write when the loop gets to the
 * flush the wake callback arranged, so a thousand sessions resuming in
 * one burst cost a few writes, not a thousand.  Warnings and fatal
 * lines are written at once, behind whatever waits.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "xtime.h"

#define LOG_LINE_MAX	2400		/* a whole line, msg and suffix */
#define LOG_BUF_MAX	(64 * 1024)	/* deferred lines, then a write */

static const char	*log_prog = "vrelay";
static int		 log_level = LOG_LEVEL_INFO;
static long		 log_pid;
static void		(*log_wake)(void *);
static void		*log_wake_arg;
static int		 log_atexit;
static char		 log_buf[LOG_BUF_MAX];
static size_t		 log_len;

static void	log_vwrite(const char *, const char *, int, const char *,
		    va_list) __attribute__((format(printf, 4, 0)));

/* Set the program name and verbosity. */
void
log_init(const char *progname, int level)
{
	log_prog = progname;
	log_level = level;
	log_pid = (long)getpid();
	setvbuf(stderr, NULL, _IOLBF, 0);
}

/*
 * Defer info and debug lines until log_flush(); WAKE(ARG) runs when the
 * first one waits, to have the loop flush soon.  NULL: write every line
 * at once again (what waits goes first).  Lines waiting at exit() go.
 */
void
log_defer(void (*wake)(void *), void *arg)
{
	log_flush();
	log_wake = wake;
	log_wake_arg = arg;
	if (wake != NULL && !log_atexit)
		log_atexit = atexit(log_flush) == 0;
}

/* Write the deferred lines. */
void
log_flush(void)
{
	size_t	off = 0;
	ssize_t	n;

	fflush(stderr);
	while (off < log_len) {
		if ((n = write(STDERR_FILENO, log_buf + off,
		    log_len - off)) == -1) {
			if (errno == EINTR)
				continue;
			break;		/* nowhere to log that */
		}
		off += (size_t)n;
	}
	log_len = 0;
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

/*
 * Write one line: timestamp, program, level, message, optional suffix.
 * DEFER: it may wait for log_flush().
 */
static void
log_vwrite(const char *level, const char *suffix, int defer,
    const char *fmt, va_list ap)
{
	char		tbuf[XTIME_UTC_LEN], msg[2048], line[LOG_LINE_MAX];
	int		saved = errno, n;

	if (log_pid == 0)
		log_pid = (long)getpid();
	xtime_utc(xtime_wall_ms(), tbuf, sizeof(tbuf));
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = snprintf(line, sizeof(line), "%s %s[%ld]: %s %s%s%s\n", tbuf,
	    log_prog, log_pid, level, msg, suffix != NULL ? ": " : "",
	    suffix != NULL ? suffix : "");
	if (n < 0)
		goto out;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	if (log_wake == NULL || !defer) {
		if (log_len > 0)
			log_flush();
		fputs(line, stderr);
		goto out;
	}
	if (log_len + (size_t)n > sizeof(log_buf))
		log_flush();
	memcpy(log_buf + log_len, line, (size_t)n);
	if (log_len == 0)
		log_wake(log_wake_arg);
	log_len += (size_t)n;
out:
	errno = saved;
}

/* A warning with strerror(errno) appended. */
void
log_warn(const char *fmt, ...)
{
	va_list		 ap;
	const char	*err = strerror(errno);	/* single-threaded */

	va_start(ap, fmt);
	log_vwrite("warn", err, 0, fmt, ap);
	va_end(ap);
}

/* A warning without errno. */
void
log_warnx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vwrite("warn", NULL, 0, fmt, ap);
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
	log_vwrite("info", NULL, 1, fmt, ap);
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
	log_vwrite("debug", NULL, 1, fmt, ap);
	va_end(ap);
}

/* Die with strerror(errno): startup failures and broken invariants. */
void
fatal(const char *fmt, ...)
{
	va_list		 ap;
	const char	*err = strerror(errno);

	va_start(ap, fmt);
	log_vwrite("fatal", err, 0, fmt, ap);
	va_end(ap);
	exit(1);
}

/* Die without errno. */
void
fatalx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vwrite("fatal", NULL, 0, fmt, ap);
	va_end(ap);
	exit(1);
}
