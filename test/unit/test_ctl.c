/*
 * test_ctl.c -- the status socket, both sides.
 *
 * Each test that needs a daemon forks one: the child runs ctl_open()
 * and event_base_dispatch() with a small command table and a timer
 * that broadcasts "tick" events; the parent talks to it with
 * ctl_request()/ctl_watch() or a raw socket.  The teardown stops and
 * reaps the child whatever the test did.
 */
#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <jansson.h>

#include "ctl.h"
#include "xmalloc.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND	0
#endif

/* Waits of N (s or ms) that are not measured: under valgrind, 20 N. */
#define SLOW(n)		(RUNNING_ON_VALGRIND ? (n) * 20 : (n))

/* A hung test (a watch that never ends) fails the run, not hang it. */
static void
deadline(unsigned int secs)
{
	alarm(SLOW(secs));
}

#define TICK_MS		20
#define FLOOD_EVENTS	400
#define FLOOD_PAD	8192
#define HUGE_PAD	(4 * 1024 * 1024)
#define IDLE_MS		300	/* setup_idle's ctl_set_idle() */

struct srv {
	pid_t	 pid;
	char	 dir[64];
	char	 path[128];
};

/* ctl_set_idle() for the next daemon started; 0 keeps the default. */
static int	srv_idle_ms;

/* The child's daemon state, handed to every command as ARG. */
struct daemon {
	struct event_base	*base;
	struct ctl		*ctl;
	json_t			*tick;
	int			 ticks;
	int			 borrowed_ok;
};

/* "echo": the request back, plus a field of our own. */
static json_t *
cmd_echo(json_t *req, void *arg, const char **err)
{
	return (json_pack("{s:O, s:i}", "got", req, "n", 42));
}

/* "fail": a command that refuses. */
static json_t *
cmd_fail(json_t *req, void *arg, const char **err)
{
	*err = "it failed on purpose";
	return (NULL);
}

/* "watch": subscribe. */
static json_t *
cmd_watch(json_t *req, void *arg, const char **err)
{
	return (json_pack("{s:b}", "watching", 1));
}

/* "stats": what the server side knows, for the parent to check. */
static json_t *
cmd_stats(json_t *req, void *arg, const char **err)
{
	struct daemon	*d = arg;

	return (json_pack("{s:I, s:b, s:i}", "nwatchers",
	    (json_int_t)ctl_nwatchers(d->ctl), "borrowed_ok", d->borrowed_ok,
	    "ticks", d->ticks));
}

/* {"pad": N times CH}: an answer of a chosen size. */
static json_t *
pad_answer(int ch, size_t n)
{
	json_t	*ans;
	char	*pad;

	pad = xmalloc(n + 1);
	memset(pad, ch, n);
	pad[n] = '\0';
	ans = json_pack("{s:s}", "pad", pad);
	free(pad);
	return (ans);
}

/* "flood": more events at once than any watcher may queue. */
static json_t *
cmd_flood(json_t *req, void *arg, const char **err)
{
	struct daemon	*d = arg;
	json_t		*ev = pad_answer('f', FLOOD_PAD);
	int		 i;

	json_object_set_new(ev, "event", json_string("flood"));
	for (i = 0; i < FLOOD_EVENTS; i++)
		ctl_broadcast(d->ctl, ev);
	json_decref(ev);
	return (json_pack("{s:I}", "nwatchers",
	    (json_int_t)ctl_nwatchers(d->ctl)));
}

/* "big": an answer over CTL_ANSWER_MAX. */
static json_t *
cmd_big(json_t *req, void *arg, const char **err)
{
	return (pad_answer('b', CTL_ANSWER_MAX));
}

/* "wide": an answer far over CTL_LINE_MAX but within CTL_ANSWER_MAX. */
static json_t *
cmd_wide(json_t *req, void *arg, const char **err)
{
	return (pad_answer('w', 4 * CTL_LINE_MAX));
}

/* "huge": an answer far larger than the socket's buffers. */
static json_t *
cmd_huge(json_t *req, void *arg, const char **err)
{
	return (pad_answer('h', HUGE_PAD));
}

/*
 * "event": broadcast {"event": "big", "pad": N bytes} (N from the
 * request's "pad"); answers what ctl_broadcast() returned.
 */
static json_t *
cmd_event(json_t *req, void *arg, const char **err)
{
	struct daemon	*d = arg;
	json_t		*ev;
	int		 rv;

	ev = pad_answer('e', (size_t)json_integer_value(json_object_get(req,
	    "pad")));
	json_object_set_new(ev, "event", json_string("big"));
	rv = ctl_broadcast(d->ctl, ev);
	json_decref(ev);
	return (json_pack("{s:i}", "rv", rv));
}

/* "quit": free the ctl from inside its own callback, then stop. */
static json_t *
cmd_quit(json_t *req, void *arg, const char **err)
{
	struct daemon	*d = arg;

	ctl_free(d->ctl);
	d->ctl = NULL;
	event_base_loopexit(d->base, NULL);
	return (json_pack("{s:b}", "bye", 1));
}

static const struct ctl_cmd daemon_cmds[] = {
	{ "echo", "echo the request", 0, cmd_echo },
	{ "fail", "always fails", 0, cmd_fail },
	{ "watch", "stream events", CTL_WATCH, cmd_watch },
	{ "stats", "server-side counters", 0, cmd_stats },
	{ "flood", "overrun every watcher", 0, cmd_flood },
	{ "big", "an answer too long to send", 0, cmd_big },
	{ "wide", "a long answer that still fits", 0, cmd_wide },
	{ "huge", "an answer larger than any socket buffer", 0, cmd_huge },
	{ "event", "broadcast an event of a chosen size", 0, cmd_event },
	{ "quit", "ctl_free from a command", 0, cmd_quit },
};
#define NCMDS	(sizeof(daemon_cmds) / sizeof(daemon_cmds[0]))

/* Broadcast a tick; the event must come back untouched (borrowed). */
static void
daemon_tick(evutil_socket_t fd, short what, void *arg)
{
	struct daemon	*d = arg;

	d->ticks++;
	json_object_set_new(d->tick, "n", json_integer(d->ticks));
	ctl_broadcast(d->ctl, d->tick);
	if (json_object_get(d->tick, "ts") != NULL)
		d->borrowed_ok = 0;
}

/* SIGTERM: the daemon's orderly shutdown. */
static void
daemon_term(evutil_socket_t fd, short what, void *arg)
{
	struct daemon	*d = arg;

	event_base_loopexit(d->base, NULL);
}

/* The forked daemon: report ctl_open()'s result on READY, then serve. */
static void __attribute__((noreturn))
daemon_main(const char *path, int ready)
{
	struct daemon	 d;
	struct event	*tick, *term;
	struct timeval	 tv = { 0, TICK_MS * 1000 };
	int		 rv;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGALRM, SIG_DFL);
	deadline(60);
	signal(SIGPIPE, SIG_IGN);
	umask(0);	/* ctl_open must not depend on the caller's umask */

	memset(&d, 0, sizeof(d));
	d.borrowed_ok = 1;
	d.base = event_base_new();
	d.tick = json_pack("{s:s, s:{s:i, s:s}}", "event", "tick", "nested",
	    "a", 1, "b", "two words");
	rv = ctl_open(d.base, path, daemon_cmds, NCMDS, &d, &d.ctl);
	if (write(ready, &rv, sizeof(rv)) != sizeof(rv) || rv != CTL_OK)
		_exit(3);
	if (srv_idle_ms > 0)
		ctl_set_idle(d.ctl, srv_idle_ms);
	close(ready);
	tick = event_new(d.base, -1, EV_PERSIST, daemon_tick, &d);
	event_add(tick, &tv);
	term = evsignal_new(d.base, SIGTERM, daemon_term, &d);
	event_add(term, NULL);
	event_base_dispatch(d.base);
	ctl_free(d.ctl);
	event_free(tick);
	event_free(term);
	event_base_free(d.base);
	json_decref(d.tick);
	_exit(0);
}

/* Start a daemon on S->path; returns once it is listening. */
static void
srv_start(struct srv *s)
{
	int	fds[2], rv = -100;

	assert_int_equal(pipe(fds), 0);
	s->pid = fork();
	assert_true(s->pid != -1);
	if (s->pid == 0) {
		close(fds[0]);
		daemon_main(s->path, fds[1]);
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], &rv, sizeof(rv)), sizeof(rv));
	close(fds[0]);
	assert_int_equal(rv, CTL_OK);
}

/* Wait up to MS for the child; returns its wait status or -1. */
static int
srv_wait(struct srv *s, int ms)
{
	int	status, i;

	for (i = 0; i < ms; i += 10) {
		if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
			s->pid = -1;
			return (status);
		}
		usleep(10 * 1000);
	}
	return (-1);
}

/*
 * The current test's daemon and files.  cmocka skips the teardown of
 * a failed test, so the next setup (or main) cleans up after it.
 */
static struct srv	*live;

/* Kill and reap the daemon if it is still there; remove the files. */
static void
srv_cleanup(void)
{
	struct srv	*s = live;

	alarm(0);
	if (s == NULL)
		return;
	if (s->pid > 0) {
		kill(s->pid, SIGKILL);
		waitpid(s->pid, NULL, 0);
	}
	unlink(s->path);
	rmdir(s->dir);
	free(s);
	live = NULL;
}

/* A test hung (a watch that never ends): clean up, fail the run. */
static void
on_alarm(int sig)
{
	static const char	msg[] = "test_ctl: a test timed out\n";

	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) == -1)
		_exit(1);
	if (live != NULL) {
		if (live->pid > 0)
			kill(live->pid, SIGKILL);
		unlink(live->path);
		rmdir(live->dir);
	}
	_exit(1);
}

/* Per-test scratch directory, no daemon. */
static int
setup_dir(void **state)
{
	struct srv	*s;

	srv_cleanup();
	s = xcalloc(1, sizeof(*s));
	s->pid = -1;
	strlcpy(s->dir, "/tmp/test_ctl.XXXXXX", sizeof(s->dir));
	if (mkdtemp(s->dir) == NULL)
		return (-1);
	snprintf(s->path, sizeof(s->path), "%s/status.sock", s->dir);
	*state = live = s;
	deadline(30);
	return (0);
}

/* Scratch directory plus a running daemon. */
static int
setup_srv(void **state)
{
	struct srv	*s;

	if (setup_dir(state) != 0)
		return (-1);
	s = *state;
	srv_start(s);
	return (0);
}

/* A running daemon whose clients may idle for IDLE_MS only. */
static int
setup_idle(void **state)
{
	int	rv;

	srv_idle_ms = IDLE_MS;
	rv = setup_srv(state);
	srv_idle_ms = 0;
	return (rv);
}

/* The test is over: no daemon or file outlives it. */
static int
teardown(void **state)
{
	srv_cleanup();
	return (0);
}

/* A blocking raw connection with a receive timeout, to see the wire. */
static int
raw_connect(const char *path)
{
	struct sockaddr_un	sun;
	struct timeval		tv = { 5, 0 };
	int			fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strlcpy(sun.sun_path, path, sizeof(sun.sun_path));
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd != -1);
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)),
	    0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return (fd);
}

/* Write all of LEN bytes; the peer may hang up if TOLERANT. */
static void
raw_send(int fd, const void *buf, size_t len, int tolerant)
{
	const char	*p = buf;
	ssize_t		 n;

	while (len > 0) {
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n == -1 && tolerant &&
		    (errno == EPIPE || errno == ECONNRESET))
			return;
		assert_true(n > 0);
		p += n;
		len -= (size_t)n;
	}
}

/* Write all of LEN bytes. */
static void
raw_write(int fd, const void *buf, size_t len)
{
	raw_send(fd, buf, len, 0);
}

/* One line (without the newline) parsed as JSON; NULL at EOF. */
static json_t *
raw_readjson(int fd)
{
	char	*buf;
	size_t	 len = 0;
	ssize_t	 n;
	json_t	*j;
	char	 c;

	buf = xmalloc(CTL_EVENT_MAX + 2);
	for (;;) {
		n = recv(fd, &c, 1, 0);
		if (n <= 0) {
			/* EOF, or a reset because we left data unread. */
			assert_true(n == 0 || errno == ECONNRESET);
			assert_int_equal(len, 0);
			free(buf);
			return (NULL);
		}
		if (c == '\n')
			break;
		assert_true(len < CTL_EVENT_MAX + 1);
		buf[len++] = c;
	}
	j = json_loadb(buf, len, 0, NULL);
	free(buf);
	assert_non_null(j);
	return (j);
}

/* Is the connection at EOF (or reset) with nothing more to read? */
static int
raw_at_eof(int fd)
{
	char	c;
	ssize_t	n;

	n = recv(fd, &c, 1, 0);
	return (n == 0 || (n == -1 && errno == ECONNRESET));
}

/* Read until EOF (or a reset), not the receive timeout: bytes read. */
static size_t
raw_drain(int fd)
{
	char	buf[65536];
	size_t	total = 0;
	ssize_t	n;

	for (;;) {
		n = recv(fd, buf, sizeof(buf), 0);
		if (n == 0 || (n == -1 && errno == ECONNRESET))
			return (total);
		assert_true(n > 0);	/* not the 5 s receive timeout */
		total += (size_t)n;
	}
}

/* Send {"cmd": NAME} with ctl_request; asserts the exchange worked. */
static json_t *
request(const char *path, const char *name)
{
	json_t	*req, *resp = NULL;

	req = json_pack("{s:s}", "cmd", name);
	assert_int_equal(ctl_request(path, req, SLOW(5000), &resp), CTL_OK);
	json_decref(req);
	assert_non_null(resp);
	return (resp);
}

/* Assert an {"ok":false,"error":MSG} answer (MSG NULL: any message). */
static void
assert_refused(json_t *resp, const char *msg)
{
	assert_non_null(resp);
	assert_true(json_is_false(json_object_get(resp, "ok")));
	assert_true(json_is_string(json_object_get(resp, "error")));
	if (msg != NULL)
		assert_string_equal(json_string_value(json_object_get(resp,
		    "error")), msg);
}

/* The server is alive and answering. */
static void
assert_alive(const char *path)
{
	json_t	*resp;

	resp = request(path, "echo");
	assert_true(json_is_true(json_object_get(resp, "ok")));
	json_decref(resp);
}

/* "help" lists the table, then itself. */
static void
test_help(void **state)
{
	struct srv	*s = *state;
	json_t		*resp, *cmds, *e;
	size_t		 i;

	resp = request(s->path, "help");
	assert_true(json_is_true(json_object_get(resp, "ok")));
	cmds = json_object_get(resp, "commands");
	assert_true(json_is_array(cmds));
	assert_int_equal(json_array_size(cmds), NCMDS + 1);
	for (i = 0; i < NCMDS; i++) {
		e = json_array_get(cmds, i);
		assert_string_equal(json_string_value(json_object_get(e,
		    "name")), daemon_cmds[i].name);
		assert_string_equal(json_string_value(json_object_get(e,
		    "help")), daemon_cmds[i].help);
	}
	e = json_array_get(cmds, NCMDS);
	assert_string_equal(json_string_value(json_object_get(e, "name")),
	    "help");
	json_decref(resp);
}

/* A command's fields come back with "ok": true first; refusals too. */
static void
test_command(void **state)
{
	struct srv	*s = *state;
	json_t		*req, *resp;

	req = json_pack("{s:s, s:i}", "cmd", "echo", "x", 5);
	assert_int_equal(ctl_request(s->path, req, 5000, &resp), CTL_OK);
	json_decref(req);
	assert_string_equal(json_object_iter_key(json_object_iter(resp)),
	    "ok");
	assert_true(json_is_true(json_object_get(resp, "ok")));
	assert_int_equal(json_integer_value(json_object_get(resp, "n")), 42);
	assert_int_equal(json_integer_value(json_object_get(
	    json_object_get(resp, "got"), "x")), 5);
	json_decref(resp);

	resp = request(s->path, "fail");
	assert_refused(resp, "it failed on purpose");
	json_decref(resp);

	resp = request(s->path, "wide");
	assert_true(json_is_true(json_object_get(resp, "ok")));
	assert_int_equal(strlen(json_string_value(json_object_get(resp,
	    "pad"))), 4 * CTL_LINE_MAX);
	json_decref(resp);

	resp = request(s->path, "big");
	assert_refused(resp, "answer too long");
	json_decref(resp);
}

/* Bad requests that are still JSON get an error; the client stays. */
static void
test_unknown_keeps_open(void **state)
{
	static const char	*bad[] = {
		"{\"cmd\":\"nope\"}\n",
		"[1,2]\n",
		"{\"cmd\":5}\n",
		"{\"nocmd\":true}\n",
	};
	struct srv		*s = *state;
	json_t			*resp;
	size_t			 i;
	int			 fd;

	fd = raw_connect(s->path);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		raw_write(fd, bad[i], strlen(bad[i]));
		resp = raw_readjson(fd);
		assert_refused(resp, i == 0 ?
		    "unknown command \"nope\" (try \"help\")" : NULL);
		json_decref(resp);
	}
	/* Blank lines are skipped, not answered. */
	raw_write(fd, "\n\r\n{\"cmd\":\"echo\"}\n", 19);
	resp = raw_readjson(fd);
	assert_true(json_is_true(json_object_get(resp, "ok")));
	json_decref(resp);
	close(fd);
}

/* Two requests in one write get two answers, in order. */
static void
test_pipelined(void **state)
{
	static const char	 two[] =
	    "{\"cmd\":\"echo\",\"i\":1}\n{\"cmd\":\"echo\",\"i\":2}\n";
	struct srv		*s = *state;
	json_t			*resp;
	int			 fd, i;

	fd = raw_connect(s->path);
	raw_write(fd, two, sizeof(two) - 1);
	for (i = 1; i <= 2; i++) {
		resp = raw_readjson(fd);
		assert_int_equal(json_integer_value(json_object_get(
		    json_object_get(resp, "got"), "i")), i);
		json_decref(resp);
	}
	/* A last request ended by EOF instead of a newline still counts. */
	raw_write(fd, "{\"cmd\":\"echo\"}", 14);
	shutdown(fd, SHUT_WR);
	resp = raw_readjson(fd);
	assert_true(json_is_true(json_object_get(resp, "ok")));
	json_decref(resp);
	assert_true(raw_at_eof(fd));
	close(fd);
}

/* Malformed JSON: an error, then that client is closed; others live. */
static void
test_malformed_closes(void **state)
{
	static const char	 bad[] = "{not json\n{\"cmd\":\"echo\"}\n";
	struct srv		*s = *state;
	json_t			*resp;
	const char		*err;
	int			 fd;

	fd = raw_connect(s->path);
	raw_write(fd, bad, sizeof(bad) - 1);
	resp = raw_readjson(fd);
	assert_refused(resp, NULL);
	err = json_string_value(json_object_get(resp, "error"));
	assert_true(strncmp(err, "invalid JSON", 12) == 0);
	json_decref(resp);
	assert_true(raw_at_eof(fd));	/* the echo was never answered */
	close(fd);
	assert_alive(s->path);
}

/* A line over CTL_LINE_MAX: "request too long", closed; others live. */
static void
test_oversized(void **state)
{
	struct srv	*s = *state;
	json_t		*resp;
	char		*buf;
	size_t		 len = CTL_LINE_MAX + 100;
	int		 fd;

	buf = xmalloc(len);
	memset(buf, 'a', len);
	fd = raw_connect(s->path);
	raw_send(fd, buf, len, 1);	/* it may close before the end */
	free(buf);
	resp = raw_readjson(fd);
	assert_refused(resp, "request too long");
	json_decref(resp);
	assert_true(raw_at_eof(fd));
	close(fd);
	assert_alive(s->path);
}

/* Build {"cmd":"stats","pad":"xxx"} exactly LEN bytes long. */
static json_t *
padded_request(size_t len)
{
	json_t	*req;
	char	*pad;
	size_t	 base = strlen("{\"cmd\":\"stats\",\"pad\":\"\"}");

	pad = xmalloc(len - base + 1);
	memset(pad, 'p', len - base);
	pad[len - base] = '\0';
	req = json_pack("{s:s, s:s}", "cmd", "stats", "pad", pad);
	free(pad);
	return (req);
}

/* CTL_LINE_MAX itself is fine; one more byte is not, on either side. */
static void
test_line_limit(void **state)
{
	struct srv	*s = *state;
	json_t		*req, *resp;
	char		*line;
	int		 fd;

	req = padded_request(CTL_LINE_MAX);
	line = json_dumps(req, JSON_COMPACT);
	assert_int_equal(strlen(line), CTL_LINE_MAX);
	free(line);
	assert_int_equal(ctl_request(s->path, req, 5000, &resp), CTL_OK);
	assert_true(json_is_true(json_object_get(resp, "ok")));
	json_decref(resp);
	json_decref(req);

	/* The client refuses to send an over-long line at all... */
	req = padded_request(CTL_LINE_MAX + 1);
	resp = (json_t *)&resp;
	assert_int_equal(ctl_request(s->path, req, 5000, &resp),
	    CTL_E_TOOBIG);
	assert_null(resp);

	/* ...and the server refuses it when it comes anyway. */
	line = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	fd = raw_connect(s->path);
	raw_send(fd, line, strlen(line), 1);
	raw_send(fd, "\n", 1, 1);
	free(line);
	resp = raw_readjson(fd);
	assert_refused(resp, "request too long");
	json_decref(resp);
	close(fd);
	assert_alive(s->path);
}

struct watch_state {
	int	calls;
	int	events;
};

/* Check the answer, then three ticks, then stop. */
static int
watch_cb(json_t *obj, void *arg)
{
	struct watch_state	*w = arg;
	struct timespec		 now;
	json_t			*ts, *nested;
	json_int_t		 nowms;

	if (w->calls++ == 0) {
		assert_true(json_is_true(json_object_get(obj, "ok")));
		assert_true(json_is_true(json_object_get(obj, "watching")));
		return (0);
	}
	assert_string_equal(json_string_value(json_object_get(obj,
	    "event")), "tick");
	ts = json_object_get(obj, "ts");
	assert_true(json_is_integer(ts));
	clock_gettime(CLOCK_REALTIME, &now);
	nowms = (json_int_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	assert_true(json_integer_value(ts) <= nowms);
	assert_true(json_integer_value(ts) > nowms - 60 * 1000);
	nested = json_object_get(obj, "nested");
	assert_int_equal(json_integer_value(json_object_get(nested, "a")), 1);
	return (++w->events == 3);
}

/* Poll "stats" until nwatchers is WANT (the server frees lazily). */
static void
assert_nwatchers(const char *path, json_int_t want)
{
	json_t		*resp;
	json_int_t	 n = -1;
	int		 i;

	for (i = 0; i < 200 && n != want; i++) {
		if (i > 0)
			usleep(10 * 1000);
		resp = request(path, "stats");
		n = json_integer_value(json_object_get(resp, "nwatchers"));
		json_decref(resp);
	}
	assert_int_equal(n, want);
}

/* A watcher gets the answer, then broadcast events with "ts". */
static void
test_watch(void **state)
{
	struct srv		*s = *state;
	struct watch_state	 w;
	json_t			*req, *resp;

	memset(&w, 0, sizeof(w));
	req = json_pack("{s:s}", "cmd", "watch");
	assert_int_equal(ctl_watch(s->path, req, watch_cb, &w), CTL_OK);
	json_decref(req);
	assert_int_equal(w.events, 3);
	assert_nwatchers(s->path, 0);

	/* The daemon's event object was never touched. */
	resp = request(s->path, "stats");
	assert_true(json_is_true(json_object_get(resp, "borrowed_ok")));
	assert_true(json_integer_value(json_object_get(resp, "ticks")) >= 3);
	json_decref(resp);
}

/* A raw connection to PATH that has subscribed to events. */
static int
raw_watcher(const char *path)
{
	json_t	*resp;
	int	 fd;

	fd = raw_connect(path);
	raw_write(fd, "{\"cmd\":\"watch\"}\n", 16);
	resp = raw_readjson(fd);
	assert_true(json_is_true(json_object_get(resp, "ok")));
	json_decref(resp);
	assert_nwatchers(path, 1);
	return (fd);
}

/* The next event on FD other than a tick (new reference), soon. */
static json_t *
raw_event(int fd)
{
	json_t	*j;
	int	 i;

	for (i = 0; i < 5000 / TICK_MS; i++) {
		assert_non_null(j = raw_readjson(fd));
		if (strcmp(json_string_value(json_object_get(j, "event")),
		    "tick") != 0)
			return (j);
		json_decref(j);
	}
	fail_msg("no event but ticks for 5 s");
	return (NULL);
}

/*
 * Have the daemon broadcast an event padded with PAD bytes: its
 * ctl_broadcast() must return RV, and the watcher on FD get NAME next
 * (returned, a new reference).
 */
static json_t *
broadcast(const char *path, int fd, int pad, int rv, const char *name)
{
	json_t	*req, *resp = NULL, *ev;

	req = json_pack("{s:s, s:i}", "cmd", "event", "pad", pad);
	assert_int_equal(ctl_request(path, req, 5000, &resp), CTL_OK);
	json_decref(req);
	assert_non_null(resp);
	assert_int_equal(json_integer_value(json_object_get(resp, "rv")), rv);
	json_decref(resp);
	ev = raw_event(fd);
	assert_string_equal(json_string_value(json_object_get(ev, "event")),
	    name);
	return (ev);
}

/*
 * Events longer than a request line reach watchers whole; one over
 * CTL_EVENT_MAX becomes a "dropped" event that names it, and the
 * daemon hears CTL_E_TOOBIG.
 */
static void
test_watch_big(void **state)
{
	struct srv	*s = *state;
	json_t		*ev;
	int		 fd;

	fd = raw_watcher(s->path);
	ev = broadcast(s->path, fd, 2 * CTL_LINE_MAX, CTL_OK, "big");
	assert_int_equal(strlen(json_string_value(json_object_get(ev, "pad"))),
	    2 * CTL_LINE_MAX);
	json_decref(ev);

	ev = broadcast(s->path, fd, CTL_EVENT_MAX, CTL_E_TOOBIG, "dropped");
	assert_string_equal(json_string_value(json_object_get(ev, "dropped")),
	    "big");
	assert_true(json_integer_value(json_object_get(ev, "bytes")) >
	    CTL_EVENT_MAX);
	assert_non_null(json_object_get(ev, "ts"));
	json_decref(ev);
	close(fd);
	assert_alive(s->path);
}

/* A watcher that never reads is dropped, not buffered without end. */
static void
test_watch_drop(void **state)
{
	struct srv	*s = *state;
	json_t		*resp;
	size_t		 total;
	int		 fd;

	fd = raw_watcher(s->path);

	resp = request(s->path, "flood");
	assert_int_equal(json_integer_value(json_object_get(resp,
	    "nwatchers")), 0);
	json_decref(resp);

	/* What was queued before the cap may arrive; then EOF. */
	total = raw_drain(fd);
	assert_true(total <= CTL_WATCH_MAX);
	close(fd);
	assert_alive(s->path);
}

/* A client that says nothing is closed after the idle time. */
static void
test_idle_silent(void **state)
{
	struct srv	*s = *state;
	int		 fd;

	fd = raw_connect(s->path);
	usleep(3 * IDLE_MS * 1000);
	assert_true(raw_at_eof(fd));	/* not the 5 s receive timeout */
	close(fd);
	assert_alive(s->path);
}

/*
 * A client that asks and never reads its answer is closed after the
 * idle time too: reading stops while an answer waits, and with it the
 * read timeout, so only the write timeout can end it.
 */
static void
test_idle_unread(void **state)
{
	struct srv	*s = *state;
	size_t		 total;
	int		 fd;

	fd = raw_connect(s->path);
	raw_write(fd, "{\"cmd\":\"huge\"}\n", 15);
	usleep(3 * IDLE_MS * 1000);
	total = raw_drain(fd);
	assert_true(total < HUGE_PAD);
	close(fd);
	assert_alive(s->path);
}

/* The socket is a socket, mode 0600, even under umask 0. */
static void
test_mode(void **state)
{
	struct srv	*s = *state;
	struct stat	 st;

	assert_int_equal(lstat(s->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
}

/* A live socket is never stolen. */
static void
test_live_path(void **state)
{
	struct srv		*s = *state;
	struct event_base	*base;
	struct ctl		*ctl = (struct ctl *)&ctl;

	base = event_base_new();
	assert_int_equal(ctl_open(base, s->path, daemon_cmds, NCMDS, NULL,
	    &ctl), CTL_E_PATH);
	assert_null(ctl);
	event_base_free(base);
	assert_alive(s->path);
}

/* A stale socket is replaced; a regular file is not touched. */
static void
test_stale_path(void **state)
{
	struct srv		*s = *state;
	struct sockaddr_un	 sun;
	struct event_base	*base;
	struct ctl		*ctl;
	struct stat		 st;
	int			 fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strlcpy(sun.sun_path, s->path, sizeof(sun.sun_path));
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(fd);	/* the file stays, nobody listens: stale */

	base = event_base_new();
	assert_int_equal(ctl_open(base, s->path, daemon_cmds, NCMDS, NULL,
	    &ctl), CTL_OK);
	assert_non_null(ctl);
	assert_int_equal(lstat(s->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(ctl_nwatchers(ctl), 0);
	ctl_free(ctl);
	assert_int_equal(lstat(s->path, &st), -1);
	assert_int_equal(errno, ENOENT);
	ctl_free(NULL);

	fd = open(s->path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd != -1);
	close(fd);
	assert_int_equal(ctl_open(base, s->path, daemon_cmds, NCMDS, NULL,
	    &ctl), CTL_E_SYSTEM);
	assert_int_equal(errno, EADDRINUSE);
	assert_null(ctl);
	assert_int_equal(lstat(s->path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	event_base_free(base);
}

/* No daemon: ENOENT; a path that cannot fit: CTL_E_PATH. */
static void
test_missing_path(void **state)
{
	static const struct ctl_cmd	 broken = { "x", "no fn", 0, NULL };
	struct srv			*s = *state;
	struct event_base		*base;
	struct ctl			*ctl;
	json_t				*req, *resp = (json_t *)&resp;
	char				 longpath[200];

	req = json_pack("{s:s}", "cmd", "status");
	errno = 0;
	assert_int_equal(ctl_request(s->path, req, 1000, &resp),
	    CTL_E_SYSTEM);
	assert_int_equal(errno, ENOENT);
	assert_null(resp);

	memset(longpath, 'x', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	assert_int_equal(ctl_request(longpath, req, 1000, &resp),
	    CTL_E_PATH);
	base = event_base_new();
	assert_int_equal(ctl_open(base, longpath, daemon_cmds, NCMDS, NULL,
	    &ctl), CTL_E_PATH);
	/* A table entry without a function is the caller's bug. */
	assert_int_equal(ctl_open(base, s->path, &broken, 1, NULL, &ctl),
	    CTL_E_SYSTEM);
	assert_int_equal(errno, EINVAL);
	assert_null(ctl);
	event_base_free(base);
	json_decref(req);

	assert_string_equal(ctl_strerror(CTL_E_TIMEOUT), "timed out");
	assert_string_equal(ctl_strerror(12345), "unknown ctl error");
}

/* A listening socket we control, to play a broken daemon. */
static int
fake_listen(const char *path)
{
	struct sockaddr_un	sun;
	int			fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strlcpy(sun.sun_path, path, sizeof(sun.sun_path));
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd != -1);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(fd, 4), 0);
	return (fd);
}

/* Fork a fake daemon: accept, read, answer REPLY, linger or close. */
static void
fake_start(struct srv *s, int lfd, const char *reply, size_t len,
    int linger)
{
	char	buf[256];
	int	fd;

	s->pid = fork();
	assert_true(s->pid != -1);
	if (s->pid != 0)
		return;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGALRM, SIG_DFL);
	deadline(30);
	if ((fd = accept(lfd, NULL, NULL)) == -1)
		_exit(1);
	if (read(fd, buf, sizeof(buf)) <= 0)
		_exit(1);
	if (len > 0 && write(fd, reply, len) != (ssize_t)len)
		_exit(1);
	if (linger)
		pause();
	_exit(0);
}

/* One exchange against a fake daemon; returns ctl_request's code. */
static int
fake_exchange(struct srv *s, const char *reply, size_t len, int linger,
    int timeout_ms)
{
	json_t	*req, *resp = (json_t *)&resp;
	int	 lfd, rv;

	unlink(s->path);
	lfd = fake_listen(s->path);
	fake_start(s, lfd, reply, len, linger);
	req = json_pack("{s:s}", "cmd", "status");
	rv = ctl_request(s->path, req, timeout_ms, &resp);
	json_decref(req);
	assert_null(resp);
	close(lfd);
	kill(s->pid, SIGKILL);
	waitpid(s->pid, NULL, 0);
	s->pid = -1;
	return (rv);
}

/* The client's error codes for each way a daemon can misbehave. */
static void
test_client_errors(void **state)
{
	struct srv	*s = *state;
	struct timespec	 t0, t1;
	json_t		*req, *resp = (json_t *)&resp;
	char		*big;
	long		 ms;
	int		 lfd;

	assert_int_equal(fake_exchange(s, "garbage\n", 8, 1, 5000),
	    CTL_E_PROTO);
	assert_int_equal(fake_exchange(s, "[1]\n", 4, 1, 5000), CTL_E_PROTO);
	assert_int_equal(fake_exchange(s, "{\"ok\":tr", 8, 0, 5000),
	    CTL_E_CLOSED);
	assert_int_equal(fake_exchange(s, NULL, 0, 0, 5000), CTL_E_CLOSED);
	big = xmalloc(CTL_ANSWER_MAX + 10);
	memset(big, 'x', CTL_ANSWER_MAX + 10);
	assert_int_equal(fake_exchange(s, big, CTL_ANSWER_MAX + 10, 1, 5000),
	    CTL_E_TOOBIG);
	free(big);

	/* A daemon that never answers (never even accepts). */
	unlink(s->path);
	lfd = fake_listen(s->path);
	req = json_pack("{s:s}", "cmd", "status");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(ctl_request(s->path, req, 200, &resp),
	    CTL_E_TIMEOUT);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	json_decref(req);
	close(lfd);
	assert_null(resp);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 +
	    (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(ms >= 190 && ms < 2000);
}

/* ctl_free() from inside a command: no crash, socket gone, exit 0. */
static void
test_free_in_callback(void **state)
{
	struct srv	*s = *state;
	struct stat	 st;
	json_t		*req, *resp;
	int		 status, fd;

	fd = raw_connect(s->path);	/* a bystander, freed too */
	req = json_pack("{s:s}", "cmd", "quit");
	assert_int_equal(ctl_request(s->path, req, 5000, &resp),
	    CTL_E_CLOSED);
	json_decref(req);
	status = srv_wait(s, 5000);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(lstat(s->path, &st), -1);
	assert_true(raw_at_eof(fd));
	close(fd);
}

/* An orderly stop (SIGTERM -> ctl_free) removes the socket. */
static void
test_free_unlinks(void **state)
{
	struct srv	*s = *state;
	struct stat	 st;
	int		 status, fd;

	fd = raw_connect(s->path);
	raw_write(fd, "{\"cmd\":\"watch\"}\n", 16);
	json_decref(raw_readjson(fd));
	kill(s->pid, SIGTERM);
	status = srv_wait(s, 5000);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(lstat(s->path, &st), -1);
	assert_int_equal(errno, ENOENT);
	/* The watcher sees ticks, maybe, then EOF. */
	for (;;) {
		json_t	*ev = raw_readjson(fd);

		if (ev == NULL)
			break;
		json_decref(ev);
	}
	close(fd);
}

/*
 * Another uid is refused by SO_PEERCRED even if the mode lets it in.
 * Needs root to become someone else.
 */
static void
test_peercred(void **state)
{
	struct srv	*s = *state;
	pid_t		 pid;
	int		 status, fd;
	char		 c;

	if (geteuid() != 0)
		skip();
	assert_int_equal(chmod(s->dir, 0711), 0);
	assert_int_equal(chmod(s->path, 0666), 0);
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		struct sockaddr_un	sun;
		struct timeval		tv = { 5, 0 };

		signal(SIGALRM, SIG_DFL);
		deadline(10);
		if (setgid(65534) == -1 || setuid(65534) == -1)
			_exit(2);
		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		strlcpy(sun.sun_path, s->path, sizeof(sun.sun_path));
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
			_exit(3);
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		send(fd, "{\"cmd\":\"help\"}\n", 15, MSG_NOSIGNAL);
		if (recv(fd, &c, 1, 0) > 0)
			_exit(4);	/* it answered a stranger */
		_exit(errno == EAGAIN ? 5 : 0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_alive(s->path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_help, setup_srv,
		    teardown),
		cmocka_unit_test_setup_teardown(test_command, setup_srv,
		    teardown),
		cmocka_unit_test_setup_teardown(test_unknown_keeps_open,
		    setup_srv, teardown),
		cmocka_unit_test_setup_teardown(test_pipelined, setup_srv,
		    teardown),
		cmocka_unit_test_setup_teardown(test_malformed_closes,
		    setup_srv, teardown),
		cmocka_unit_test_setup_teardown(test_oversized, setup_srv,
		    teardown),
		cmocka_unit_test_setup_teardown(test_line_limit, setup_srv,
		    teardown),
		cmocka_unit_test_setup_teardown(test_watch, setup_srv,
		    teardown),
		cmocka_unit_test_setup_teardown(test_watch_big, setup_srv,
		    teardown),
		cmocka_unit_test_setup_teardown(test_watch_drop, setup_srv,
		    teardown),
		cmocka_unit_test_setup_teardown(test_idle_silent, setup_idle,
		    teardown),
		cmocka_unit_test_setup_teardown(test_idle_unread, setup_idle,
		    teardown),
		cmocka_unit_test_setup_teardown(test_mode, setup_srv,
		    teardown),
		cmocka_unit_test_setup_teardown(test_live_path, setup_srv,
		    teardown),
		cmocka_unit_test_setup_teardown(test_stale_path, setup_dir,
		    teardown),
		cmocka_unit_test_setup_teardown(test_missing_path, setup_dir,
		    teardown),
		cmocka_unit_test_setup_teardown(test_client_errors, setup_dir,
		    teardown),
		cmocka_unit_test_setup_teardown(test_free_in_callback,
		    setup_srv, teardown),
		cmocka_unit_test_setup_teardown(test_free_unlinks, setup_srv,
		    teardown),
		cmocka_unit_test_setup_teardown(test_peercred, setup_srv,
		    teardown),
	};

	int	rv;

	signal(SIGPIPE, SIG_IGN);
	signal(SIGALRM, on_alarm);
	rv = cmocka_run_group_tests(tests, NULL, NULL);
	srv_cleanup();
	return (rv);
}
