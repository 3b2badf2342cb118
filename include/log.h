/*
 * log.h -- daemon logging (relayd/tmux shape).
 *
 * Lines go to stderr as "TIMESTAMP PROG[PID]: LEVEL message", with
 * key=value fields inside the message so they can be grepped.  fatal()
 * appends strerror(errno); fatalx() does not.  On a loop, info and
 * debug lines may wait for the loop's flush (log_defer); warnings and
 * fatal lines never wait.  Libraries never call
 * these to decide policy: they return codes and let the daemon log.
 */
#ifndef VRELAY_LOG_H
#define VRELAY_LOG_H

#include <stdarg.h>

#define LOG_LEVEL_WARN	0
#define LOG_LEVEL_INFO	1
#define LOG_LEVEL_DEBUG	2

void	log_init(const char *progname, int level);
void	log_setlevel(int level);
int	log_getlevel(void);
void	log_defer(void (*)(void *), void *);
void	log_flush(void);
void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	fatal(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

#endif
