/*
 * utest.h -- what the cmocka unit tests share: fixture files, stderr
 * captured to a file, the simulator helper's stdout, running an event
 * loop until a callback.
 * Header-only (static inline), so each test stays one .c file.
 * Include after <cmocka.h>.
 */
#ifndef VRELAY_UTEST_H
#define VRELAY_UTEST_H

#include <sys/socket.h>

#include <netinet/in.h>

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>

/* stderr captured to a temporary file (utest_capture_*). */
static FILE	*utest_capture_f;
static int	 utest_capture_fd = -1;

/* From now on, stderr is a fresh temporary file. */
static inline void
utest_capture_start(void)
{
	fflush(stderr);
	if ((utest_capture_f = tmpfile()) == NULL ||
	    (utest_capture_fd = dup(STDERR_FILENO)) == -1 ||
	    dup2(fileno(utest_capture_f), STDERR_FILENO) == -1)
		fail_msg("capture: %s", strerror(errno));
}

/* What was written to stderr so far (stderr stays captured; static). */
static inline char *
utest_capture_read(void)
{
	static char	buf[256 * 1024];
	size_t		n;

	fflush(stderr);
	rewind(utest_capture_f);
	n = fread(buf, 1, sizeof(buf) - 1, utest_capture_f);
	buf[n] = '\0';
	fseek(utest_capture_f, 0, SEEK_END);
	return (buf);
}

/* stderr back as it was; returns what was captured (static). */
static inline char *
utest_capture_stop(void)
{
	char	*s = utest_capture_read();

	dup2(utest_capture_fd, STDERR_FILENO);
	close(utest_capture_fd);
	utest_capture_fd = -1;
	fclose(utest_capture_f);
	utest_capture_f = NULL;
	return (s);
}

/* A whole file, NUL-terminated, and its length; fails the test if not. */
static inline char *
utest_slurp(const char *path, size_t *lenp)
{
	FILE	*f;
	char	*buf;
	long	 n;

	if ((f = fopen(path, "rb")) == NULL)
		fail_msg("%s: cannot open", path);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*lenp = (size_t)n;
	return (buf);
}

/*
 * A scratch directory DIR (LEN bytes, at least 32) holding what the
 * deploy/mkcerts.sh commands in SCRIPT mint, each "$m -d $d ...": run
 * from the top of the tree, as make unit does.  0, or -1.
 */
static inline int
utest_certs(char *dir, size_t len, const char *script)
{
	char	cmd[1024];

	if (len < 32)
		return (-1);
	snprintf(dir, len, "/tmp/vrelay-unit.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return (-1);
	snprintf(cmd, sizeof(cmd), "set -e; m=deploy/mkcerts.sh; d=%s; "
	    "{ %s; } >/dev/null", dir, script);
	return (system(cmd) == 0 ? 0 : -1);
}

/* Remove utest_certs()'s directory DIR: 0, or -1. */
static inline int
utest_certs_rm(const char *dir)
{
	char	cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return (system(cmd) == 0 ? 0 : -1);
}

/* A TCP listener on 127.0.0.1, any port (*PORT), with BACKLOG. */
static inline int
utest_listen(int backlog, int *port)
{
	struct sockaddr_in	sin;
	socklen_t		sl = sizeof(sin);
	int			s;

	s = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(s, backlog), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&sin, &sl), 0);
	*port = ntohs(sin.sin_port);
	return (s);
}

/* Read one line from FD within MS (per byte): 0, or -1. */
static inline int
utest_read_line(int fd, char *buf, size_t len, int ms)
{
	struct pollfd	pfd = { fd, POLLIN, 0 };
	size_t		n = 0;

	while (n + 1 < len) {
		if (poll(&pfd, 1, ms) != 1 || read(fd, buf + n, 1) != 1)
			return (-1);
		if (buf[n] == '\n') {
			buf[n] = '\0';
			return (0);
		}
		n++;
	}
	return (-1);
}

/* The watchdog of utest_run(). */
static inline void
utest_watchdog(evutil_socket_t fd, short what, void *arg)
{
	*(int *)arg = 1;
}

/*
 * Run BASE until *CALLED is set or SECONDS pass; then the callback
 * must have run exactly once.
 */
static inline void
utest_run(struct event_base *base, const int *called, int seconds)
{
	struct event	*ev;
	struct timeval	 tv = { seconds, 0 };
	int		 timed_out = 0;

	ev = evtimer_new(base, utest_watchdog, &timed_out);
	assert_non_null(ev);
	evtimer_add(ev, &tv);
	while (*called == 0 && !timed_out)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(ev);
	if (*called == 0)
		fail_msg("no callback within %d s", seconds);
	assert_int_equal(*called, 1);
}

#endif
