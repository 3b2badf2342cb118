/*
 * fzloop.c -- what the session harnesses (hs_fuzz, hsc_fuzz) share
 * (fzloop.h): the script, the streams' content, the frame reader, the
 * event loop run in passes, and the descriptor check.
 *
 * A NONBLOCK pass of event_base_loop() only returns once no callback is
 * active, so a callback that keeps itself active (a busy loop, which in
 * a daemon is 100% CPU) would hang the run: each pass is ended by a
 * break event queued behind whatever is active, and a loop still busy
 * after FZ_SPIN passes without a byte moving is reported, or with
 * SPIN_ENV=ignore the input abandoned and counted, so a long run can go
 * on past a known one.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "frame.h"
#include "proto.h"

#include "fuzz.h"
#include "fzloop.h"

#define FZ_PASSES	1000		/* loop passes per settle, at most */
#define FZ_SPIN		64		/* busy passes with nothing moving */

static struct event_base	*fz_base;
static struct event		*fz_break;	/* ends a loop pass */
static const char		*fz_name;
static int			 fz_spin_ignore;
static unsigned long		 fz_spins;	/* inputs abandoned so */
static int			 fz_fds0 = -1;	/* open between runs */
static int			 fz_spun;	/* this input: a busy loop */

uint8_t
fzloop_byte(struct fzloop_script *sc)
{
	uint8_t	b;

	if (sc->len == 0)
		return (0);
	b = *sc->in++;
	sc->len--;
	return (b);
}

/* The script's next 8 bytes, big-endian. */
uint64_t
fzloop_u64(struct fzloop_script *sc)
{
	uint64_t	v = 0;
	int		i;

	for (i = 0; i < 8; i++)
		v = v << 8 | fzloop_byte(sc);
	return (v);
}

/* Stream content by offset; see fzloop.h. */
uint8_t
fzloop_up(int x, uint64_t i)
{
	return ((uint8_t)(i * 13 + (uint64_t)x * 17 + 5));
}

uint8_t
fzloop_down(int x, uint64_t i)
{
	return ((uint8_t)(i * 7 + (uint64_t)x * 31 + 1));
}

/* Read FD into RX and hand each whole frame to FN. */
size_t
fzloop_frames(int fd, struct evbuffer *rx,
    void (*fn)(void *, int, const uint8_t *, size_t), void *arg)
{
	struct frame_hdr	 h;
	uint8_t			 buf[16384], *p;
	size_t			 total = 0, have;
	ssize_t			 n;

	for (;;) {
		n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0)
			break;
		evbuffer_add(rx, buf, (size_t)n);
		total += (size_t)n;
	}
	for (;;) {
		have = evbuffer_get_length(rx);
		if (have < PROTO_HDR_LEN)
			break;
		p = evbuffer_pullup(rx, PROTO_HDR_LEN);
		CHECK(frame_hdr_decode(p, have, &h) == FRAME_OK);
		if (have < PROTO_HDR_LEN + h.len)
			break;
		p = evbuffer_pullup(rx, PROTO_HDR_LEN + h.len);
		fn(arg, h.type, p + PROTO_HDR_LEN, h.len);
		evbuffer_drain(rx, PROTO_HDR_LEN + h.len);
	}
	return (total);
}

/* Ends one pass of the loop. */
static void
fzloop_break_cb(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopbreak(fz_base);
}

/* At exit: how many inputs a busy loop cost (SPIN_ENV=ignore). */
static void
fzloop_report(void)
{
	if (fz_spin_ignore)
		fprintf(stderr, "%s: %lu executions abandoned on a busy "
		    "loop\n", fz_name, fz_spins);
}

/* The event base and the break event; SIGPIPE ignored. */
struct event_base *
fzloop_init(const char *name, const char *spin_env)
{
	const char	*v = getenv(spin_env);

	signal(SIGPIPE, SIG_IGN);
	fz_name = name;
	fz_base = event_base_new();
	CHECK(fz_base != NULL);
	fz_break = event_new(fz_base, -1, 0, fzloop_break_cb, NULL);
	CHECK(fz_break != NULL);
	fz_spin_ignore = v != NULL && strcmp(v, "ignore") == 0;
	atexit(fzloop_report);
	return (fz_base);
}

/* Run the loop until nothing moves (see the top of this file). */
int
fzloop_settle(size_t (*read)(void))
{
	size_t	moved;
	int	i, idle = 0, quiet = 0;

	for (i = 0; i < FZ_PASSES; i++) {
		event_active(fz_break, EV_TIMEOUT, 0);
		event_base_loop(fz_base, EVLOOP_NONBLOCK);
		moved = read();
		if (moved > 0) {
			idle = quiet = 0;
			continue;
		}
		/*
		 * Quiet twice: a write queued in one pass is only seen
		 * ready (and flushed) by the next one's epoll_wait().
		 */
		if (event_base_get_num_events(fz_base,
		    EVENT_BASE_COUNT_ACTIVE) == 0) {
			if (++quiet == 2)
				return (0);
			continue;
		}
		quiet = 0;
		if (++idle < FZ_SPIN)
			continue;
		if (fz_spin_ignore) {
			fz_spun = 1;
			return (-1);
		}
		fprintf(stderr, "%s: the event loop stays busy with nothing "
		    "moving (a busy loop; see docs/fuzzing.md)\n", fz_name);
		abort();
	}
	return (0);
}

/*
 * Whether descriptor NAME is close-on-exec: everything the code under
 * test and the harness open is (SOCK_CLOEXEC, O_CLOEXEC), and what
 * libFuzzer opens on its own while running (the symbolizer's pipes,
 * kept for the process's life) is not.
 */
static int
fzloop_cloexec(const char *name)
{
	char		 path[64], line[128];
	FILE		*f;
	unsigned long	 flags;
	int		 yes = 0;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%s", name);
	if ((f = fopen(path, "re")) == NULL)
		return (0);
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "flags: %lo", &flags) == 1) {
			yes = (flags & O_CLOEXEC) != 0;
			break;
		}
	fclose(f);
	return (yes);
}

static int
fzloop_fds(void)
{
	DIR		*d;
	struct dirent	*e;
	int		 n = 0;

	CHECK((d = opendir("/proc/self/fd")) != NULL);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.' && fzloop_cloexec(e->d_name))
			n++;
	closedir(d);
	return (n - 1);		/* not the DIR's own */
}

static void
fzloop_fds_show(void)
{
	DIR		*d;
	struct dirent	*e;
	char		 path[64], to[256];
	ssize_t		 n;

	CHECK((d = opendir("/proc/self/fd")) != NULL);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		if ((n = readlink(path, to, sizeof(to) - 1)) < 0)
			continue;
		to[n] = '\0';
		fprintf(stderr, "%s: fd %s -> %s\n", fz_name, e->d_name, to);
	}
	closedir(d);
}

/* The descriptors open now are the baseline. */
void
fzloop_fds_baseline(void)
{
	fz_fds0 = fzloop_fds();
}

/* Abort if a run left a descriptor open (or closed one of ours). */
void
fzloop_fds_check(void)
{
	int	n;

	if (fz_fds0 == -1 || (n = fzloop_fds()) == fz_fds0)
		return;
	fprintf(stderr, "%s: %d descriptors open after the run, %d before\n",
	    fz_name, n, fz_fds0);
	fzloop_fds_show();
	abort();
}

/* STEP (with ARG) and settle until the script ends or the loop spins. */
int
fzloop_run(struct fzloop_script *sc, void (*step)(void *), void *arg,
    size_t (*read)(void))
{
	while (sc->len > 0) {
		step(arg);
		if (fzloop_settle(read) != 0)
			return (-1);
	}
	return (0);
}

/* A few passes: what the loop finalizes goes; a spun input counted. */
void
fzloop_finish(void)
{
	int	i;

	if (fz_spun)
		fz_spins++;
	fz_spun = 0;

	for (i = 0; i < 4; i++)
		event_base_loop(fz_base, EVLOOP_NONBLOCK);
}
