/*
 * test_mux.c -- common/mux.c: streams over one link between a dialler
 * and an acceptor (two muxes on a socketpair), their bytes, half-closes,
 * windows, resets and the link's end; and a raw peer writing what a
 * broken or hostile relay might, each fault ending the link with its
 * reason.  The dialler's streams both as sockets (a forward's) and as
 * channels (an xsock with no socket, a session end's leg).
 */
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "log.h"
#include "mux.h"
#include "mux_proto.h"
#include "utest.h"
#include "xsock.h"
#include "xtime.h"

#define NACC	16

/* One end of the link under test. */
struct end {
	struct mux	*m;
	int		 up;
	int		 closed;
	char		 why[256];
	int		 acc[NACC];	/* accepted streams' fds */
	uint32_t	 ids[NACC];	/* ...and ids */
	int		 nacc;
	int		 refuse;	/* refuse the streams opened */
};

static struct event_base	*base;

static void
end_up(struct mux *m, void *arg)
{
	((struct end *)arg)->up++;
}

static int
end_accept(struct mux *m, uint32_t id, int fd, void *arg)
{
	struct end	*e = arg;

	if (e->refuse || e->nacc == NACC)
		return (-1);
	e->ids[e->nacc] = id;
	e->acc[e->nacc++] = fd;
	return (0);
}

static void
end_closed(struct mux *m, const char *why, void *arg)
{
	struct end	*e = arg;

	e->closed++;
	strlcpy(e->why, why, sizeof(e->why));
}

static const struct mux_cb	end_cb = { end_up, end_accept, end_closed };

/* Run the loop until *FLAG is set, or fail after 5 s. */
static void
spin_until(const int *flag)
{
	long long	t0 = xtime_mono_ms();

	while (*flag == 0) {
		if (xtime_mono_ms() - t0 > 5000)
			fail_msg("nothing within 5 s");
		event_base_loop(base, EVLOOP_NONBLOCK);
		usleep(200);
	}
}

/* Run the loop until *N is over WAS, or fail after 5 s. */
static void
spin_until_more(const int *n, int was)
{
	long long	t0 = xtime_mono_ms();

	while (*n <= was) {
		if (xtime_mono_ms() - t0 > 5000)
			fail_msg("nothing within 5 s");
		event_base_loop(base, EVLOOP_NONBLOCK);
		usleep(200);
	}
}

/* Run the loop for MS. */
static void
spin_for(int ms)
{
	long long	t0 = xtime_mono_ms();

	while (xtime_mono_ms() - t0 < ms) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		usleep(200);
	}
}

/* Read N bytes from FD into BUF, running the loop meanwhile. */
static void
read_n(int fd, void *buf, size_t n)
{
	long long	t0 = xtime_mono_ms();
	long long	lim = n > 1024 * 1024 ? 20000 : 5000;
	size_t		got = 0;
	ssize_t		r;

	while (got < n) {
		if (xtime_mono_ms() - t0 > lim)
			fail_msg("read %zu of %zu bytes in %lld ms", got, n,
			    lim);
		event_base_loop(base, EVLOOP_NONBLOCK);
		r = read(fd, (uint8_t *)buf + got, n - got);
		if (r == 0)
			fail_msg("EOF after %zu of %zu bytes", got, n);
		if (r > 0)
			got += r;
		else
			usleep(200);
	}
}

/* Whether FD reads its end (EOF or a reset) within 5 s. */
static int
read_end(int fd)
{
	long long	t0 = xtime_mono_ms();
	char		c;
	ssize_t		r;

	while (xtime_mono_ms() - t0 < 5000) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		r = read(fd, &c, 1);
		if (r == 0 || (r < 0 && errno != EAGAIN))
			return (1);
		if (r > 0)
			return (0);
		usleep(200);
	}
	return (0);
}

/* Write all of BUF to FD, running the loop while it is full. */
static void
write_n(int fd, const void *buf, size_t n)
{
	long long	t0 = xtime_mono_ms();
	size_t		done = 0;
	ssize_t		r;

	while (done < n) {
		if (xtime_mono_ms() - t0 > 5000)
			fail_msg("wrote %zu of %zu bytes in 5 s", done, n);
		r = write(fd, (const uint8_t *)buf + done, n - done);
		if (r > 0)
			done += r;
		else
			event_base_loop(base, EVLOOP_NONBLOCK);
	}
}

/* A dialler D and an acceptor A on the two ends of a socketpair. */
static void
pair(struct end *d, struct end *a)
{
	struct bufferevent	*bd, *ba;
	int			 sv[2];

	memset(d, 0, sizeof(*d));
	memset(a, 0, sizeof(*a));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
	    sv), 0);
	bd = bufferevent_socket_new(base, sv[0], BEV_OPT_CLOSE_ON_FREE);
	ba = bufferevent_socket_new(base, sv[1], BEV_OPT_CLOSE_ON_FREE);
	assert_non_null(d->m = mux_new(bd, 1, &end_cb, d));
	assert_non_null(a->m = mux_new(ba, 0, &end_cb, a));
	spin_until(&d->up);
	spin_until(&a->up);
	assert_true(mux_up(d->m) && mux_up(a->m));
}

static void
unpair(struct end *d, struct end *a)
{
	int	i;

	for (i = 0; i < a->nacc; i++)
		close(a->acc[i]);
	mux_free(d->m);
	mux_free(a->m);
}

/* Streams carry bytes both ways, each to its own peer, in order. */
static void
test_streams(void **state)
{
	struct end	d, a;
	int		fd[3], i;
	char		buf[32], want[32];

	pair(&d, &a);
	/* Only the dialler opens. */
	assert_int_equal(mux_open(a.m, &fd[0]), MUX_OK);
	close(fd[0]);
	spin_until(&d.closed);
	assert_string_equal(d.why, "OPEN from the end that did not dial");
	unpair(&d, &a);

	pair(&d, &a);
	for (i = 0; i < 3; i++)
		assert_int_equal(mux_open(d.m, &fd[i]), MUX_OK);
	for (i = 2; i >= 0; i--) {
		snprintf(want, sizeof(want), "stream %d says hello", i);
		write_n(fd[i], want, strlen(want));
	}
	while (a.nacc < 3)
		spin_for(1);
	for (i = 0; i < 3; i++) {
		snprintf(want, sizeof(want), "stream %d says hello", i);
		read_n(a.acc[i], buf, strlen(want));
		assert_memory_equal(buf, want, strlen(want));
		write_n(a.acc[i], "ok", 2);
		read_n(fd[i], buf, 2);
		assert_memory_equal(buf, "ok", 2);
	}
	assert_int_equal(mux_streams(d.m), 3);
	assert_int_equal(mux_streams(a.m), 3);

	/* A half-close: the other way still carries bytes. */
	shutdown(fd[1], SHUT_WR);
	assert_true(read_end(a.acc[1]));
	write_n(a.acc[1], "late", 4);
	read_n(fd[1], buf, 4);
	assert_memory_equal(buf, "late", 4);
	close(a.acc[1]);
	assert_true(read_end(fd[1]));
	close(fd[1]);
	spin_for(20);
	assert_int_equal(mux_streams(d.m), 2);
	assert_int_equal(mux_streams(a.m), 2);

	/* A stream closed with bytes unread: the other end sees its end. */
	write_n(fd[2], "unread", 6);
	spin_for(20);
	close(a.acc[2]);
	a.acc[2] = -1;
	assert_true(read_end(fd[2]));
	close(fd[2]);
	spin_for(20);
	assert_int_equal(mux_streams(d.m), 1);
	assert_int_equal(mux_streams(a.m), 1);
	close(fd[0]);
	a.nacc = 1;
	unpair(&d, &a);
}

/* Frames a mux has sent, from its status. */
static json_int_t
frames_out(const struct mux *m)
{
	json_t		*o = mux_json(m);
	json_int_t	 n;

	n = json_integer_value(json_object_get(o, "frames_out"));
	json_decref(o);
	return (n);
}

/*
 * Small messages back and forth: one DATA frame each, and no WINDOW
 * (credit goes back in quarters of the window, not per message: that
 * was a frame, a TLS record and a write more per reply).
 */
static void
test_ping_pong(void **state)
{
	struct end	d, a;
	json_int_t	d0, a0;
	char		buf[64], want[64];
	int		fd, i;

	pair(&d, &a);
	assert_int_equal(mux_open(d.m, &fd), MUX_OK);
	write_n(fd, "x", 1);
	spin_until(&a.nacc);
	read_n(a.acc[0], buf, 1);
	d0 = frames_out(d.m);
	a0 = frames_out(a.m);
	for (i = 0; i < 100; i++) {
		memset(want, 'a' + i % 26, sizeof(want));
		write_n(fd, want, sizeof(want));
		read_n(a.acc[0], buf, sizeof(buf));
		assert_memory_equal(buf, want, sizeof(want));
		write_n(a.acc[0], buf, sizeof(buf));
		read_n(fd, buf, sizeof(buf));
		assert_memory_equal(buf, want, sizeof(want));
	}
	spin_for(20);
	assert_int_equal(frames_out(d.m) - d0, 100);
	assert_int_equal(frames_out(a.m) - a0, 100);
	close(fd);
	unpair(&d, &a);
}

/* N bytes of a pattern that shows an offset's misplacement (malloc'd). */
static uint8_t *
bulk_bytes(size_t n)
{
	uint8_t	*b = malloc(n);
	size_t	 i;

	assert_non_null(b);
	for (i = 0; i < n; i++)
		b[i] = (uint8_t)(i * 7 + i / 65536);
	return (b);
}

/*
 * 16 MiB one way through a reader that stops: the window holds the
 * writer back, and every byte arrives once, in order.
 */
static void
test_bulk(void **state)
{
	struct end	 d, a;
	uint8_t		*src, *dst;
	size_t		 n = 16 * 1024 * 1024, done = 0, got = 0;
	ssize_t		 r;
	int		 fd, stuck = 0;
	long long	 t0;
	json_t		*j;

	src = bulk_bytes(n);
	dst = malloc(n);
	pair(&d, &a);
	assert_int_equal(mux_open(d.m, &fd), MUX_OK);
	/* Write until the writer is held back: nothing read yet. */
	t0 = xtime_mono_ms();
	while (stuck < 200 && xtime_mono_ms() - t0 < 5000) {
		r = write(fd, src + done, n - done);
		if (r > 0) {
			done += r;
			stuck = 0;
		} else
			stuck++;
		event_base_loop(base, EVLOOP_NONBLOCK);
	}
	assert_int_equal(a.nacc, 1);
	/* Held: the window and the sockets' buffers, far short of it. */
	assert_true(done < 4 * 1024 * 1024);
	j = mux_json(a.m);
	assert_true(json_integer_value(json_object_get(j, "bytes_in")) <=
	    (json_int_t)done);
	json_decref(j);
	/* Now read it all. */
	t0 = xtime_mono_ms();
	while (got < n) {
		if (xtime_mono_ms() - t0 > 20000)
			fail_msg("%zu of %zu bytes in 20 s", got, n);
		if (done < n && (r = write(fd, src + done, n - done)) > 0)
			done += r;
		event_base_loop(base, EVLOOP_NONBLOCK);
		if ((r = read(a.acc[0], dst + got, n - got)) > 0)
			got += r;
	}
	assert_memory_equal(src, dst, n);
	close(fd);
	assert_true(read_end(a.acc[0]));
	unpair(&d, &a);
	free(src);
	free(dst);
}

/* A refused stream and a lost link: the user's socket reads its end. */
static void
test_ends(void **state)
{
	struct end	d, a;
	int		fd, fd2;

	pair(&d, &a);
	a.refuse = 1;
	assert_int_equal(mux_open(d.m, &fd), MUX_OK);
	assert_true(read_end(fd));
	close(fd);
	spin_for(20);
	assert_int_equal(mux_streams(d.m), 0);
	a.refuse = 0;

	assert_int_equal(mux_open(d.m, &fd), MUX_OK);
	assert_int_equal(mux_open(d.m, &fd2), MUX_OK);
	while (a.nacc < 2)
		spin_for(1);
	/* The acceptor's side goes: its link closes under the dialler. */
	mux_free(a.m);
	a.m = NULL;
	spin_until(&d.closed);
	assert_string_equal(d.why, "closed by the peer");
	assert_false(mux_up(d.m));
	assert_int_equal(mux_open(d.m, &fd2) == MUX_E_STATE, 1);
	assert_int_equal(fd2, -1);
	assert_true(read_end(fd));
	assert_true(read_end(a.acc[0]));
	assert_int_equal(d.closed, 1);
	close(fd);
	unpair(&d, &a);
}

/* A dialled channel under test: what it read, and how it ended. */
struct chn {
	struct xsock	*x;
	struct evbuffer	*in;
	int		 eof;
	int		 err;		/* a read's or XSOCK_ERROR's errno */
	int		 timeouts;
	size_t		 written;	/* XSOCK_WRITTEN's counts */
	int		 told;		/* XSOCK_WRITTEN's */
};

static void
chn_cb(struct xsock *x, enum xsock_event ev, size_t n, void *arg)
{
	struct chn	*c = arg;
	ssize_t		 r;

	switch (ev) {
	case XSOCK_READABLE:
		while ((r = xsock_read(x, c->in, 1 << 20)) > 0)
			;
		if (r == 0)
			c->eof = 1;
		else if (errno != EAGAIN)
			c->err = errno;
		if (r == 0 || errno != EAGAIN)
			xsock_read_enable(x, 0);
		break;
	case XSOCK_WRITTEN:
		c->written += n;
		c->told++;
		break;
	case XSOCK_TIMEOUT:
		c->timeouts++;
		break;
	case XSOCK_ERROR:
		c->err = (int)n;
		break;
	case XSOCK_CONNECTED:
		fail_msg("a channel is connected from the start");
	}
}

/* Open C on D's link, reading. */
static void
chn_open(struct end *d, struct chn *c)
{
	memset(c, 0, sizeof(*c));
	assert_int_equal(mux_open_chan(d->m, &c->x), MUX_OK);
	assert_non_null(c->x);
	assert_int_equal(xsock_fd(c->x), -1);
	assert_non_null(c->in = evbuffer_new());
	xsock_set_cb(c->x, chn_cb, c);
	xsock_read_enable(c->x, 1);
}

static void
chn_close(struct chn *c)
{
	xsock_free(c->x);
	c->x = NULL;
	evbuffer_free(c->in);
	c->in = NULL;
}

/* Write N bytes of BUF to C: what it took at once. */
static size_t
chn_write(struct chn *c, const void *buf, size_t n)
{
	struct evbuffer	*b = evbuffer_new();
	size_t		 w;

	evbuffer_add(b, buf, n);
	w = xsock_write(c->x, b, n);
	assert_int_equal(evbuffer_get_length(b), 0);
	evbuffer_free(b);
	return (w);
}

/* Run the loop until C has read N bytes, and take them into BUF. */
static void
chn_read_n(struct chn *c, void *buf, size_t n)
{
	long long	t0 = xtime_mono_ms();

	while (evbuffer_get_length(c->in) < n) {
		if (xtime_mono_ms() - t0 > 5000)
			fail_msg("read %zu of %zu bytes in 5 s",
			    evbuffer_get_length(c->in), n);
		event_base_loop(base, EVLOOP_NONBLOCK);
		usleep(200);
	}
	evbuffer_remove(c->in, buf, n);
}

/*
 * A link between D and A, and C on it, its stream accepted by A (its
 * socket A's acc[0]) with a first byte read there.
 */
static void
chn_linked(struct end *d, struct end *a, struct chn *c)
{
	char	b;

	pair(d, a);
	chn_open(d, c);
	chn_write(c, "x", 1);
	spin_until(&a->nacc);
	read_n(a->acc[0], &b, 1);
}

/*
 * Channels carry bytes both ways, half-close either way, and go from
 * both muxes once both ends are done; no descriptor.
 */
static void
test_chan_streams(void **state)
{
	struct end	 d, a;
	struct chn	 c[2];
	char		 buf[32], want[32];
	int		 i;

	pair(&d, &a);
	for (i = 0; i < 2; i++)
		chn_open(&d, &c[i]);
	for (i = 1; i >= 0; i--) {
		snprintf(want, sizeof(want), "channel %d says hello", i);
		assert_int_equal(chn_write(&c[i], want, strlen(want)),
		    strlen(want));
	}
	while (a.nacc < 2)
		spin_for(1);
	for (i = 0; i < 2; i++) {
		snprintf(want, sizeof(want), "channel %d says hello", i);
		read_n(a.acc[i], buf, strlen(want));
		assert_memory_equal(buf, want, strlen(want));
		write_n(a.acc[i], "ok", 2);
		chn_read_n(&c[i], buf, 2);
		assert_memory_equal(buf, "ok", 2);
	}

	/* Our FIN: the acceptor reads its end, and still writes. */
	xsock_shutdown(c[0].x);
	assert_true(read_end(a.acc[0]));
	write_n(a.acc[0], "late", 4);
	chn_read_n(&c[0], buf, 4);
	assert_memory_equal(buf, "late", 4);
	assert_int_equal(c[0].eof, 0);
	/* Its FIN: EOF after the bytes; the stream goes from both. */
	close(a.acc[0]);
	a.acc[0] = -1;
	spin_until(&c[0].eof);
	spin_for(20);
	assert_int_equal(mux_streams(d.m), 1);
	assert_int_equal(mux_streams(a.m), 1);
	/* The channel, done both ways, refuses a write, once, from the loop. */
	assert_int_equal(chn_write(&c[0], "x", 1), 0);
	spin_until(&c[0].err);
	assert_int_equal(c[0].err, EPIPE);
	chn_close(&c[0]);

	/* The acceptor's FIN first: the channel writes after it. */
	shutdown(a.acc[1], SHUT_WR);
	spin_until(&c[1].eof);
	assert_int_equal(chn_write(&c[1], "after", 5), 5);
	read_n(a.acc[1], buf, 5);
	assert_memory_equal(buf, "after", 5);
	/* Freed: a socket's close, a FIN; both muxes let the stream go. */
	chn_close(&c[1]);
	assert_true(read_end(a.acc[1]));
	spin_for(20);
	assert_int_equal(mux_streams(d.m), 0);
	assert_int_equal(mux_streams(a.m), 0);
	unpair(&d, &a);
}

/*
 * A channel let go: with nothing unread a FIN (the peer's stream stays
 * until it closes), with bytes unread or by xsock_reset an RST (it goes
 * at once); a link that ends resets its channels.
 */
static void
test_chan_close(void **state)
{
	struct end	 d, a;
	struct chn	 c;
	char		 buf[8];

	pair(&d, &a);
	chn_open(&d, &c);
	chn_write(&c, "a", 1);
	spin_until(&a.nacc);
	read_n(a.acc[0], buf, 1);
	chn_close(&c);
	assert_true(read_end(a.acc[0]));
	spin_for(20);
	assert_int_equal(mux_streams(a.m), 1);	/* half-closed */
	/* A write to the closed channel resets the stream. */
	write_n(a.acc[0], "to nobody", 9);
	spin_for(50);
	assert_int_equal(mux_streams(a.m), 0);
	assert_int_equal(mux_streams(d.m), 0);

	chn_open(&d, &c);
	chn_write(&c, "b", 1);
	spin_until(&a.acc[1]);
	write_n(a.acc[1], "unread", 6);
	while (evbuffer_get_length(c.in) < 6)
		spin_for(1);
	xsock_read_enable(c.x, 0);
	write_n(a.acc[1], "more", 4);
	spin_for(20);
	chn_close(&c);
	spin_for(20);
	assert_int_equal(mux_streams(a.m), 0);
	assert_int_equal(mux_streams(d.m), 0);

	chn_open(&d, &c);
	chn_write(&c, "c", 1);
	while (a.nacc < 3)
		spin_for(1);
	xsock_reset(c.x);
	spin_for(20);
	assert_int_equal(mux_streams(a.m), 0);
	assert_int_equal(mux_streams(d.m), 0);
	chn_close(&c);

	/* The peer resets (a refused OPEN): ECONNRESET. */
	a.refuse = 1;
	chn_open(&d, &c);
	spin_until(&c.err);
	assert_int_equal(c.err, ECONNRESET);
	assert_int_equal(mux_streams(d.m), 0);
	chn_close(&c);
	a.refuse = 0;

	/* The link ends: reads say ECONNRESET, a write says so too. */
	chn_open(&d, &c);
	mux_free(a.m);
	a.m = NULL;
	spin_until(&d.closed);
	spin_until(&c.err);
	assert_int_equal(c.err, ECONNRESET);
	c.err = 0;
	chn_write(&c, "x", 1);
	spin_until(&c.err);
	assert_int_equal(c.err, ECONNRESET);
	chn_close(&c);
	unpair(&d, &a);
}

/*
 * A channel's ping-pong is one DATA frame a message each way (credit
 * back in quarters, as a socket's), and a read timeout runs only while
 * nothing comes.
 */
static void
test_chan_ping_pong(void **state)
{
	struct end	 d, a;
	struct chn	 c;
	struct timeval	 tv = { 0, 60 * 1000 };
	json_int_t	 d0, a0;
	char		 buf[64], want[64];
	int		 i;

	chn_linked(&d, &a, &c);
	xsock_set_timeout(c.x, &tv);
	d0 = frames_out(d.m);
	a0 = frames_out(a.m);
	for (i = 0; i < 100; i++) {
		memset(want, 'a' + i % 26, sizeof(want));
		assert_int_equal(chn_write(&c, want, sizeof(want)),
		    sizeof(want));
		read_n(a.acc[0], buf, sizeof(buf));
		assert_memory_equal(buf, want, sizeof(want));
		write_n(a.acc[0], buf, sizeof(buf));
		chn_read_n(&c, buf, sizeof(buf));
		assert_memory_equal(buf, want, sizeof(want));
		if (i % 10 == 0)
			spin_for(20);	/* bytes every 20 ms: no timeout */
	}
	spin_for(20);
	assert_int_equal(frames_out(d.m) - d0, 100);
	assert_int_equal(frames_out(a.m) - a0, 100);
	assert_int_equal(c.timeouts, 0);
	spin_until(&c.timeouts);
	xsock_set_timeout(c.x, NULL);
	i = c.timeouts;
	spin_for(150);
	assert_int_equal(c.timeouts, i);
	chn_close(&c);
	close(a.acc[0]);
	unpair(&d, &a);
}

/*
 * A read timeout set while a READABLE is on its way (the bytes came with
 * reads off, then reads went on) does not lose it, with no timeout or
 * one far off: a socket would stay readable.
 */
static void
test_chan_timeout_set(void **state)
{
	struct end		 d, a;
	struct chn		 c;
	struct timeval		 tv = { 2, 0 };
	const struct timeval	*tvs[2] = { NULL, &tv };
	int			 i;

	chn_linked(&d, &a, &c);
	for (i = 0; i < 2; i++) {
		xsock_read_enable(c.x, 0);
		write_n(a.acc[0], "hello", 5);
		spin_for(50);
		assert_int_equal(evbuffer_get_length(c.in), 0);
		xsock_read_enable(c.x, 1);
		xsock_set_timeout(c.x, tvs[i]);
		spin_for(300);		/* long before the timer */
		assert_int_equal(evbuffer_get_length(c.in), 5);
		evbuffer_drain(c.in, 5);
	}
	assert_int_equal(c.timeouts, 0);
	chn_close(&c);
	close(a.acc[0]);
	unpair(&d, &a);
}

/*
 * 16 MiB each way through a reader that stops: the window holds the
 * writer back (a channel queues what its credit does not cover and says
 * XSOCK_WRITTEN as it goes), and every byte arrives once, in order.
 */
static void
test_chan_bulk(void **state)
{
	struct end	 d, a;
	struct chn	 c;
	uint8_t		*src, *dst;
	size_t		 n = 16 * 1024 * 1024, done = 0, got = 0;
	ssize_t		 r;
	int		 stuck = 0;
	long long	 t0;
	json_t		*j;

	src = bulk_bytes(n);
	dst = malloc(n);
	pair(&d, &a);
	chn_open(&d, &c);
	/* Up: the channel takes its window at once, queues the rest. */
	assert_int_equal(chn_write(&c, src, n), MUX_WINDOW);
	assert_int_equal(xsock_pending(c.x), n - MUX_WINDOW);
	spin_for(50);
	assert_int_equal(a.nacc, 1);
	j = mux_json(a.m);
	assert_true(json_integer_value(json_object_get(j, "bytes_in")) <
	    4 * 1024 * 1024);
	json_decref(j);
	t0 = xtime_mono_ms();
	while (got < n) {
		if (xtime_mono_ms() - t0 > 20000)
			fail_msg("%zu of %zu bytes in 20 s", got, n);
		event_base_loop(base, EVLOOP_NONBLOCK);
		if ((r = read(a.acc[0], dst + got, n - got)) > 0)
			got += r;
	}
	assert_memory_equal(src, dst, n);
	assert_int_equal(xsock_pending(c.x), 0);
	assert_int_equal(c.written, n - MUX_WINDOW);

	/* The other way, the channel not reading. */
	xsock_read_enable(c.x, 0);
	t0 = xtime_mono_ms();
	while (stuck < 200 && xtime_mono_ms() - t0 < 5000) {
		r = write(a.acc[0], src + done, n - done);
		if (r > 0) {
			done += r;
			stuck = 0;
		} else
			stuck++;
		event_base_loop(base, EVLOOP_NONBLOCK);
	}
	assert_true(done < 4 * 1024 * 1024);
	assert_int_equal(evbuffer_get_length(c.in), 0);
	xsock_read_enable(c.x, 1);
	t0 = xtime_mono_ms();
	while (evbuffer_get_length(c.in) < n) {
		if (xtime_mono_ms() - t0 > 20000)
			fail_msg("%zu of %zu bytes in 20 s",
			    evbuffer_get_length(c.in), n);
		if (done < n && (r = write(a.acc[0], src + done, n - done)) > 0)
			done += r;
		event_base_loop(base, EVLOOP_NONBLOCK);
	}
	evbuffer_remove(c.in, dst, n);
	assert_memory_equal(src, dst, n);
	close(a.acc[0]);
	spin_until(&c.eof);
	chn_close(&c);
	unpair(&d, &a);
	free(src);
	free(dst);
}

/*
 * xsock_write_ref() on a channel: a header and a body its owner keeps
 * go in frames as far as the window allows; with TAKEN the rest stays
 * the owner's until XSOCK_WRITTEN, without it the rest is copied; the
 * body is never drained, and the peer reads header and body in order.
 */
static void
test_chan_write_ref(void **state)
{
	struct end	 d, a;
	struct chn	 c;
	struct evbuffer	*body, *hdr;
	uint8_t		*src, *dst;
	size_t		 n = 2 * MUX_WINDOW + 1000, off = 0, taken, w, i;
	int		 told;

	src = malloc(n + 4);
	dst = malloc(n + 4);
	memcpy(src, "HDR!", 4);
	for (i = 0; i < n; i++)
		src[4 + i] = (uint8_t)(i * 13 + i / 4096);
	body = evbuffer_new();
	hdr = evbuffer_new();
	evbuffer_add(body, src + 4, n);
	pair(&d, &a);
	chn_open(&d, &c);

	/* TAKEN: the window's worth goes, the rest is the owner's. */
	evbuffer_add(hdr, "HDR!", 4);
	assert_int_equal(xsock_write_ref(c.x, hdr, body, 0, n, &taken),
	    MUX_WINDOW);
	assert_int_equal(taken, MUX_WINDOW - 4);
	assert_int_equal(evbuffer_get_length(hdr), 0);
	assert_int_equal(xsock_pending(c.x), 0);
	off = taken;
	spin_until(&a.nacc);
	/* The peer reads: XSOCK_WRITTEN says more may go. */
	read_n(a.acc[0], dst, 4 + taken);
	spin_until(&c.told);
	while (off < n) {
		told = c.told;
		w = xsock_write_ref(c.x, hdr, body, off, n - off, &taken);
		assert_int_equal(w, taken);
		assert_true(taken > 0);
		read_n(a.acc[0], dst + 4 + off, taken);
		off += taken;
		if (off < n)
			spin_until_more(&c.told, told);
	}
	assert_memory_equal(src, dst, n + 4);
	assert_int_equal(evbuffer_get_length(body), n);

	/* No TAKEN: what the window leaves is copied, and goes in order. */
	evbuffer_add(hdr, "HDR!", 4);
	w = xsock_write_ref(c.x, hdr, body, 0, n, NULL);
	assert_true(w > 0 && w <= MUX_WINDOW);	/* the credit it has now */
	assert_int_equal(xsock_pending(c.x), n + 4 - w);
	assert_int_equal(evbuffer_get_length(body), n);
	read_n(a.acc[0], dst, n + 4);
	assert_memory_equal(src, dst, n + 4);
	chn_close(&c);
	unpair(&d, &a);
	evbuffer_free(body);
	evbuffer_free(hdr);
	free(src);
	free(dst);
}

/*
 * An accepted stream's user hands over the socket it forwards to (as
 * relay B's forward hands over the appliance's): what it wrote into the
 * pair still goes to the link, what it read and did not pass on
 * (PENDING) reaches the new socket first, and from then on the mux
 * moves bytes between the link and that socket, ends included; a reset
 * of adopted streams resets the stream.
 */
static void
test_adopt(void **state)
{
	struct end	 d, a;
	struct chn	 c;
	struct evbuffer	*pending;
	char		 buf[16];
	uint8_t		*big, *got;
	int		 app[2], app2[2];
	json_t		*j;

	pair(&d, &a);
	chn_open(&d, &c);
	chn_write(&c, "hello", 5);
	spin_until(&a.nacc);
	read_n(a.acc[0], buf, 5);
	assert_memory_equal(buf, "hello", 5);
	chn_write(&c, "pend", 4);
	read_n(a.acc[0], buf, 4);	/* read, not passed on yet */
	write_n(a.acc[0], "answer", 6);	/* in the pair, not read yet */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
	    app), 0);
	pending = evbuffer_new();
	evbuffer_add(pending, "pend", 4);
	/* Not a stream it accepted, or a channel: refused, nothing taken. */
	assert_int_equal(mux_adopt(a.m, 99, app[0], pending), MUX_E_STREAM);
	assert_int_equal(mux_adopt(d.m, 1, app[0], pending), MUX_E_STREAM);
	assert_int_equal(evbuffer_get_length(pending), 4);
	assert_int_equal(mux_adopt(a.m, a.ids[0], app[0], pending), MUX_OK);
	assert_int_equal(evbuffer_get_length(pending), 0);
	evbuffer_free(pending);
	chn_read_n(&c, buf, 6);
	assert_memory_equal(buf, "answer", 6);
	read_n(app[1], buf, 4);
	assert_memory_equal(buf, "pend", 4);
	assert_true(read_end(a.acc[0]));	/* the pair is closed */
	close(a.acc[0]);
	a.nacc = 0;
	chn_write(&c, "more", 4);
	read_n(app[1], buf, 4);
	assert_memory_equal(buf, "more", 4);
	write_n(app[1], "back", 4);
	chn_read_n(&c, buf, 4);
	assert_memory_equal(buf, "back", 4);
	j = mux_json(a.m);
	assert_int_equal(json_integer_value(json_object_get(j, "adopted")), 1);
	json_decref(j);

	/* The socket's EOF is the stream's FIN; the channel's FIN its. */
	shutdown(app[1], SHUT_WR);
	spin_until(&c.eof);
	xsock_shutdown(c.x);
	assert_true(read_end(app[1]));
	spin_for(20);
	assert_int_equal(mux_streams(a.m), 0);
	chn_close(&c);
	close(app[1]);

	/* Adopted streams reset: the channel hears ECONNRESET. */
	chn_open(&d, &c);
	chn_write(&c, "x", 1);
	spin_until(&a.nacc);
	read_n(a.acc[0], buf, 1);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
	    app2), 0);
	pending = evbuffer_new();
	assert_int_equal(mux_adopt(a.m, a.ids[0], app2[0], pending), MUX_OK);
	evbuffer_free(pending);
	close(a.acc[0]);
	a.nacc = 0;
	assert_int_equal(mux_reset_adopted(a.m), 1);
	spin_until(&c.err);
	assert_int_equal(c.err, ECONNRESET);
	assert_true(read_end(app2[1]));
	close(app2[1]);
	chn_close(&c);

	/*
	 * A whole window read from the pair and handed over as PENDING:
	 * given back when it went into the pair, not again when it goes
	 * to the new socket (the dialler would end the link on a WINDOW
	 * past its credit), and the stream carries on.
	 */
	big = bulk_bytes(2 * MUX_WINDOW);
	got = malloc(2 * MUX_WINDOW);
	chn_open(&d, &c);
	assert_int_equal(chn_write(&c, big, MUX_WINDOW), MUX_WINDOW);
	spin_until(&a.nacc);
	read_n(a.acc[0], got, MUX_WINDOW);
	assert_memory_equal(big, got, MUX_WINDOW);
	spin_for(20);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
	    app2), 0);
	pending = evbuffer_new();
	evbuffer_add(pending, got, MUX_WINDOW);
	assert_int_equal(mux_adopt(a.m, a.ids[0], app2[0], pending), MUX_OK);
	evbuffer_free(pending);
	close(a.acc[0]);
	a.nacc = 0;
	read_n(app2[1], got, MUX_WINDOW);
	assert_memory_equal(big, got, MUX_WINDOW);
	chn_write(&c, big + MUX_WINDOW, MUX_WINDOW);
	read_n(app2[1], got, MUX_WINDOW);
	assert_memory_equal(big + MUX_WINDOW, got, MUX_WINDOW);
	spin_for(20);
	assert_int_equal(d.closed, 0);
	assert_true(mux_up(d.m));
	close(app2[1]);
	chn_close(&c);
	free(big);
	free(got);
	unpair(&d, &a);
}

/* An acceptor facing raw bytes from the test: the link's reason. */
static const char *
raw(const void *bytes, size_t n, int open_first, long long ka_ms)
{
	static char		 why[256];
	struct end		 a;
	struct bufferevent	*b;
	uint8_t			 pre[MUX_PREAMBLE_LEN] = { 'V', 'R', 'M', 'X',
				    0, 0, 0, MUX_VERSION };
	uint8_t			 open[MUX_HDR_LEN] = { MUX_OPEN, 0, 0, 0,
				    0, 0, 0, 1, 0, 0, 0, 0 };
	size_t			 done;
	ssize_t			 r;
	int			 sv[2], i;

	memset(&a, 0, sizeof(a));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
	    sv), 0);
	b = bufferevent_socket_new(base, sv[1], BEV_OPT_CLOSE_ON_FREE);
	assert_non_null(a.m = mux_new(b, 0, &end_cb, &a));
	if (ka_ms > 0)
		mux_set_keepalive(a.m, ka_ms);
	if (open_first >= 0) {
		write_n(sv[0], pre, sizeof(pre));
		for (i = 0; i < open_first; i++)
			write_n(sv[0], open, sizeof(open));
	}
	/* Until the mux gives up on the link (and stops reading it). */
	for (done = 0; done < n && !a.closed; ) {
		if ((r = write(sv[0], (const uint8_t *)bytes + done,
		    n - done)) > 0)
			done += r;
		event_base_loop(base, EVLOOP_NONBLOCK);
	}
	spin_until(&a.closed);
	strlcpy(why, a.why, sizeof(why));
	for (i = 0; i < a.nacc; i++)
		close(a.acc[i]);
	mux_free(a.m);
	close(sv[0]);
	return (why);
}

/* Every malformed link ends with what was wrong, and only that link. */
static void
test_malformed(void **state)
{
	uint8_t		 f[MUX_HDR_LEN], *big;
	size_t		 i, n;

#define HDR(t, fl, id, arg) do {					\
	memset(f, 0, sizeof(f));					\
	f[0] = (t); f[1] = (fl);					\
	f[7] = (id); f[8] = (uint32_t)(arg) >> 24 & 0xff;		\
	f[9] = (uint32_t)(arg) >> 16 & 0xff;				\
	f[10] = (uint32_t)(arg) >> 8 & 0xff; f[11] = (arg) & 0xff;	\
} while (0)

	assert_string_equal(raw("GET / HTTP/1.0\r\n", 16, -1, 0),
	    "not a mesh link (no \"VRMX\" preamble)");
	assert_string_equal(raw("VRMX\0\0\0\2", 8, -1, 0),
	    "mesh link version 2, not 1");
	HDR(9, 0, 1, 0);
	assert_string_equal(raw(f, sizeof(f), 0, 0),
	    "unknown frame type 9");
	HDR(MUX_FIN, 1, 1, 0);
	assert_string_equal(raw(f, sizeof(f), 1, 0),
	    "FIN with nonzero flags or reserved bits");
	HDR(MUX_DATA, 0, 5, 3);
	{
		uint8_t	d[MUX_HDR_LEN + 3];

		memcpy(d, f, MUX_HDR_LEN);
		memcpy(d + MUX_HDR_LEN, "abc", 3);
		assert_string_equal(raw(d, sizeof(d), 0, 0),
		    "DATA on stream 5, never opened");
	}
	HDR(MUX_DATA, 0, 1, MUX_DATA_MAX + 1);
	assert_string_equal(raw(f, sizeof(f), 1, 0),
	    "DATA of 65537 bytes on stream 1");
	HDR(MUX_PING, 0, 1, 0);
	assert_string_equal(raw(f, sizeof(f), 1, 0), "PING on stream 1");
	HDR(MUX_OPEN, 0, 3, 0);
	assert_string_equal(raw(f, sizeof(f), 1, 0),
	    "OPEN of stream 3 after 1");
	HDR(MUX_WINDOW_UPDATE, 0, 1, 1);
	assert_string_equal(raw(f, sizeof(f), 1, 0),
	    "WINDOW of 1 on stream 1 with 524288 of credit");
	HDR(MUX_FIN, 0, 1, 0);
	{
		uint8_t	two[2 * MUX_HDR_LEN];

		memcpy(two, f, MUX_HDR_LEN);
		memcpy(two + MUX_HDR_LEN, f, MUX_HDR_LEN);
		assert_string_equal(raw(two, sizeof(two), 1, 0),
		    "a second FIN on stream 1");
	}

	/* DATA past the window: a stream whose user reads nothing. */
	n = (2 * MUX_WINDOW / MUX_DATA_MAX + 1) * (MUX_HDR_LEN + MUX_DATA_MAX);
	big = calloc(1, n);
	for (i = 0; i < n; i += MUX_HDR_LEN + MUX_DATA_MAX) {
		HDR(MUX_DATA, 0, 1, MUX_DATA_MAX);
		memcpy(big + i, f, sizeof(f));
	}
	/* The socket takes some, given back: twice the window is past. */
	assert_non_null(strstr(raw(big, n, 1, 0), "past its window"));
	free(big);

	/* A peer that says nothing: the keepalive gives up on it. */
	assert_non_null(strstr(raw("", 0, 0, 50),
	    "no frame from the peer in"));
#undef HDR
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_streams),
		cmocka_unit_test(test_ping_pong),
		cmocka_unit_test(test_bulk),
		cmocka_unit_test(test_ends),
		cmocka_unit_test(test_chan_streams),
		cmocka_unit_test(test_chan_close),
		cmocka_unit_test(test_chan_ping_pong),
		cmocka_unit_test(test_chan_timeout_set),
		cmocka_unit_test(test_chan_bulk),
		cmocka_unit_test(test_chan_write_ref),
		cmocka_unit_test(test_adopt),
		cmocka_unit_test(test_malformed),
	};
	int	r;

	log_init("test_mux", LOG_LEVEL_INFO);
	base = event_base_new();
	r = cmocka_run_group_tests(tests, NULL, NULL);
	event_base_free(base);
	return (r);
}
