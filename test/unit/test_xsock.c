/*
 * test_xsock.c -- unit tests for the plain event-loop socket (xsock.h)
 * and the readv loop under it (xbev_readv, xbev.h): writing through
 * while idle and queueing behind what waits, reading with the socket's
 * dry mark, EOF, connecting, errors only from the loop, and a callback
 * that frees the xsock.  Real sockets (socketpairs, TCP on 127.0.0.1),
 * a real event base.
 */
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/sockios.h>

#include <dirent.h>
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

#include <event2/buffer.h>
#include <event2/event.h>

#include "pipepool.h"
#include "utest.h"
#include "xbev.h"
#include "xsock.h"

#define BIG	(4 * 1024 * 1024)	/* more than a small socket takes */

/* What the callback was told. */
struct rec {
	int		 readable;	/* XSOCK_READABLE calls */
	int		 written;	/* XSOCK_WRITTEN calls */
	size_t		 wbytes;	/* their N, summed */
	int		 idle_added;	/* events added as the queue emptied */
	int		 connected;	/* XSOCK_CONNECTED calls */
	int		 errors;	/* XSOCK_ERROR calls */
	int		 timeouts;	/* XSOCK_TIMEOUT calls */
	size_t		 err;		/* the last XSOCK_ERROR's N */
	unsigned int	 free_on;	/* free the xsock on (1 << event) */
	int		 freed;		/* and it did */
};

struct pair {
	struct event_base	*base;
	struct xsock		*x;	/* on sv[0]; NULL once freed */
	int			 peer;	/* sv[1] (or the accepted socket) */
	struct rec		 r;
};

/* Count what X reports; free it when told to. */
static void
rec_cb(struct xsock *x, enum xsock_event ev, size_t n, void *arg)
{
	struct pair	*p = arg;

	assert_ptr_equal(x, p->x);
	switch (ev) {
	case XSOCK_READABLE:
		assert_int_equal(n, 0);
		p->r.readable++;
		break;
	case XSOCK_WRITTEN:		/* N 0: xsock_write_ref's TAKEN */
		p->r.written++;
		p->r.wbytes += n;
		if (xsock_pending(x) == 0)
			p->r.idle_added = event_base_get_num_events(p->base,
			    EVENT_BASE_COUNT_ADDED);
		break;
	case XSOCK_CONNECTED:
		assert_int_equal(n, 0);
		p->r.connected++;
		break;
	case XSOCK_ERROR:
		p->r.errors++;
		p->r.err = n;
		break;
	case XSOCK_TIMEOUT:
		assert_int_equal(n, 0);
		p->r.timeouts++;
		break;
	}
	if (p->r.free_on & (1U << ev)) {
		xsock_free(x);
		p->x = NULL;
		p->r.freed++;
	}
}

/* An xsock on one end of a socketpair; the test holds the other. */
static void
pair_new(struct pair *p)
{
	int	sv[2];

	memset(p, 0, sizeof(*p));
	p->r.idle_added = -1;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
	    sv), 0);
	p->base = event_base_new();
	assert_non_null(p->base);
	p->x = xsock_new(p->base, sv[0], 0, rec_cb, p);
	assert_non_null(p->x);
	assert_int_equal(xsock_fd(p->x), sv[0]);
	p->peer = sv[1];
}

static void
pair_free(struct pair *p)
{
	xsock_free(p->x);
	event_base_free(p->base);
	if (p->peer != -1)
		close(p->peer);
}

/* Events added to P's base (the read event; the write event, armed). */
static int
added(struct pair *p)
{
	return (event_base_get_num_events(p->base, EVENT_BASE_COUNT_ADDED));
}

/* Read what FD has now (at most LEN) into BUF. */
static size_t
peer_read(int fd, unsigned char *buf, size_t len)
{
	ssize_t	n;
	size_t	got = 0;

	while (got < len && (n = read(fd, buf + got, len - got)) > 0)
		got += (size_t)n;
	return (got);
}

/* LEN bytes of a pattern that shows order, from offset OFF on. */
static unsigned char *
pattern(size_t off, size_t len)
{
	unsigned char	*b;
	size_t		 i;

	b = malloc(len);
	assert_non_null(b);
	for (i = 0; i < len; i++)
		b[i] = (unsigned char)((off + i) * 7 + (off + i) / 251);
	return (b);
}

/*
 * Run the loop while the peer reads, until it has N bytes in GOT or
 * 10 s pass; returns what it read.
 */
static size_t
drain(struct pair *p, unsigned char *got, size_t n)
{
	time_t	end = time(NULL) + 10;
	size_t	have = 0;

	while (have < n && time(NULL) < end) {
		have += peer_read(p->peer, got + have, n - have);
		event_base_loop(p->base, EVLOOP_NONBLOCK);
	}
	return (have);
}

/*
 * Write the pattern's first N bytes to a socket made small: some go at
 * once, the rest waits.  Returns the bytes written at once.
 */
static size_t
fill(struct pair *p, size_t n)
{
	struct evbuffer	*src = evbuffer_new();
	unsigned char	*big = pattern(0, n);
	size_t		 w;
	int		 sz = 65536;

	(void)setsockopt(xsock_fd(p->x), SOL_SOCKET, SO_SNDBUF, &sz,
	    sizeof(sz));
	evbuffer_add(src, big, n);
	w = xsock_write(p->x, src, n);
	assert_true(w > 0 && w < n);
	assert_int_equal(xsock_pending(p->x), n - w);
	assert_int_equal(evbuffer_get_length(src), 0);
	evbuffer_free(src);
	free(big);
	return (w);
}

/* A nonblocking TCP socket connecting to 127.0.0.1:PORT. */
static int
tcp_connect(int port)
{
	struct sockaddr_in	sin;
	int			fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	assert_true(fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)port);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
		assert_int_equal(errno, EINPROGRESS);
	return (fd);
}

/* An xsock on a connected TCP socket; the accepted end is the peer. */
static void
tcp_pair_new(struct pair *p)
{
	int	l, port, fd;

	memset(p, 0, sizeof(*p));
	p->r.idle_added = -1;
	p->base = event_base_new();
	assert_non_null(p->base);
	l = utest_listen(1, &port);
	fd = tcp_connect(port);
	p->peer = accept4(l, NULL, NULL, SOCK_NONBLOCK);
	assert_true(p->peer >= 0);
	close(l);
	p->x = xsock_new(p->base, fd, 0, rec_cb, p);
	assert_non_null(p->x);
}

/* The TCP peer resets, and the xsock's socket has seen it. */
static void
peer_reset(struct pair *p)
{
	struct linger	lg = { 1, 0 };
	struct pollfd	pfd = { xsock_fd(p->x), POLLIN, 0 };

	assert_int_equal(setsockopt(p->peer, SOL_SOCKET, SO_LINGER, &lg,
	    sizeof(lg)), 0);
	close(p->peer);
	p->peer = -1;
	assert_int_equal(poll(&pfd, 1, 5000), 1);
	assert_true(pfd.revents & (POLLERR | POLLHUP));
}

/*
 * Nothing queued: the bytes go straight to the socket, in order, with
 * no write event armed and no XSOCK_WRITTEN for them.
 */
static void
test_write_idle(void **state)
{
	struct pair	 p;
	struct evbuffer	*src = evbuffer_new();
	unsigned char	 buf[64];
	int		 i;

	pair_new(&p);
	evbuffer_add(src, "hello, world", 12);
	assert_int_equal(xsock_write(p.x, src, 5), 5);
	assert_int_equal(xsock_pending(p.x), 0);
	assert_int_equal(evbuffer_get_length(src), 7);
	assert_int_equal(xsock_write(p.x, src, 100), 7);
	assert_int_equal(xsock_pending(p.x), 0);
	assert_int_equal(evbuffer_get_length(src), 0);
	assert_int_equal(xsock_write(p.x, src, 10), 0);	/* nothing left */
	assert_int_equal(added(&p), 0);
	for (i = 0; i < 3; i++)
		event_base_loop(p.base, EVLOOP_NONBLOCK);
	assert_int_equal(p.r.written, 0);
	assert_int_equal(peer_read(p.peer, buf, sizeof(buf)), 12);
	assert_memory_equal(buf, "hello, world", 12);
	evbuffer_free(src);
	pair_free(&p);
}

/*
 * A full socket takes part; the loop sends the rest, in order, and
 * XSOCK_WRITTEN accounts for exactly what was not written at once.
 * The write that drains the queue disarms the write event.
 */
static void
test_write_full(void **state)
{
	struct pair	 p;
	unsigned char	*want, *got;
	size_t		 w;

	pair_new(&p);
	w = fill(&p, BIG);
	assert_int_equal(added(&p), 1);		/* the write event */
	assert_int_equal(p.r.written, 0);
	want = pattern(0, BIG);
	got = malloc(BIG);
	assert_non_null(got);
	assert_int_equal(drain(&p, got, BIG), BIG);
	assert_memory_equal(got, want, BIG);
	assert_true(p.r.written > 0);
	assert_int_equal(p.r.wbytes + w, BIG);
	assert_int_equal(xsock_pending(p.x), 0);
	assert_int_equal(p.r.idle_added, 0);
	assert_int_equal(added(&p), 0);
	assert_int_equal(p.r.errors, 0);
	free(want);
	free(got);
	pair_free(&p);
}

/*
 * Bytes written while others wait go behind them, even once the socket
 * has room again (the peer read, the loop has not run).
 */
static void
test_write_behind(void **state)
{
	struct pair	 p;
	struct evbuffer	*src = evbuffer_new();
	unsigned char	*want, *got, *tail;
	size_t		 n = BIG / 4, more = 10000, w, have, pend;

	pair_new(&p);
	w = fill(&p, n);
	want = pattern(0, n + more);
	got = malloc(n + more);
	assert_non_null(got);
	have = peer_read(p.peer, got, n + more);	/* room again */
	assert_int_equal(have, w);
	pend = xsock_pending(p.x);
	tail = pattern(n, more);
	evbuffer_add(src, tail, more);
	assert_int_equal(xsock_write(p.x, src, more), 0);
	assert_int_equal(xsock_pending(p.x), pend + more);
	assert_int_equal(evbuffer_get_length(src), 0);
	assert_int_equal(drain(&p, got + have, n + more - have),
	    n + more - have);
	assert_memory_equal(got, want, n + more);
	assert_int_equal(p.r.wbytes + w, n + more);
	assert_int_equal(xsock_pending(p.x), 0);
	free(want);
	free(got);
	free(tail);
	evbuffer_free(src);
	pair_free(&p);
}

/*
 * xsock_write_ref with TAKEN: of BODY only what the socket takes goes,
 * none is queued, and XSOCK_WRITTEN (N: 0) says when it takes more --
 * not before.  Sent piece by piece (no header after the first), the
 * peer gets header and body in order.  Behind a queue none of BODY
 * goes, and a header that did not fit waits in the queue.
 */
static void
test_write_ref_taken(void **state)
{
	struct pair	 p;
	struct evbuffer	*src = evbuffer_new(), *none = evbuffer_new();
	struct evbuffer	*body = evbuffer_new();
	unsigned char	*want, *got, hdr[7] = "HEADER:";
	size_t		 n = BIG / 2, taken, sent = 0, have = 0;
	int		 sz = 65536, rounds = 0;
	time_t		 end;

	pair_new(&p);
	(void)setsockopt(xsock_fd(p.x), SOL_SOCKET, SO_SNDBUF, &sz,
	    sizeof(sz));
	want = pattern(0, n);
	got = malloc(n + sizeof(hdr));
	assert_non_null(got);
	evbuffer_add(src, hdr, sizeof(hdr));
	evbuffer_add(body, want, n);
	(void)xsock_write_ref(p.x, src, body, 0, n, &taken);
	assert_true(taken < n);
	assert_int_equal(xsock_pending(p.x), 0);
	assert_int_equal(evbuffer_get_length(body), n);
	/* Nothing read: the socket takes no more, and says nothing. */
	event_base_loop(p.base, EVLOOP_NONBLOCK);
	assert_int_equal(p.r.written, 0);
	while (sent + taken < n) {
		sent += taken;
		evbuffer_drain(body, taken);
		/* The peer reads: the socket says it takes more. */
		end = time(NULL) + 10;
		while (p.r.written == rounds && time(NULL) < end) {
			have += peer_read(p.peer, got + have,
			    n + sizeof(hdr) - have);
			event_base_loop(p.base, EVLOOP_NONBLOCK);
		}
		assert_int_equal(p.r.written, ++rounds);
		assert_int_equal(p.r.wbytes, 0);
		(void)xsock_write_ref(p.x, none, body, 0, n - sent, &taken);
		assert_int_equal(xsock_pending(p.x), 0);
	}
	have += drain(&p, got + have, n + sizeof(hdr) - have);
	assert_int_equal(have, n + sizeof(hdr));
	assert_memory_equal(got, hdr, sizeof(hdr));
	assert_memory_equal(got + sizeof(hdr), want, n);
	assert_true(rounds > 1);

	/* Behind a queue: the header is queued, the body stays. */
	evbuffer_drain(body, evbuffer_get_length(body));
	evbuffer_add(body, want, n);
	evbuffer_add(src, want, n);
	(void)xsock_write(p.x, src, n);
	assert_true(xsock_pending(p.x) > 0);
	evbuffer_add(src, hdr, sizeof(hdr));
	have = xsock_pending(p.x);
	assert_int_equal(xsock_write_ref(p.x, src, body, 0, n, &taken), 0);
	assert_int_equal(taken, 0);
	assert_int_equal(xsock_pending(p.x), have + sizeof(hdr));
	assert_int_equal(evbuffer_get_length(body), n);
	assert_int_equal(p.r.errors, 0);
	free(want);
	free(got);
	evbuffer_free(src);
	evbuffer_free(none);
	evbuffer_free(body);
	pair_free(&p);
}

/*
 * xsock_write_ref: a header from SRC and N bytes of BODY, BODY left as
 * it was.  Idle: all at once, nothing queued.  A small socket: what it
 * leaves is queued (a copy: BODY may change afterwards), the loop sends
 * it in order.  Behind a queue: all of it queued.  BODY scattered over
 * more chains than one writev takes: the same bytes, by copy.
 */
/*
 * Through pipes, as a session sends by splice: the socket's bytes into
 * a pipe (EAGAIN while there are none, 0 at EOF); a pipe's bytes to a
 * small socket, only what it takes, XSOCK_WRITTEN with N 0 once it
 * takes more, then the rest; without TAKEN, what it does not take is
 * queued.  The peer gets every byte once, in order.
 */
static void
test_pipe_io(void **state)
{
	struct pair	 p;
	unsigned char	*want, *got, buf[1000];
	size_t		 n = 512 * 1024, m = 128 * 1024, taken, sent = 0;
	size_t		 have = 0;
	int		 pp[2], sz = 65536, rounds = 0;
	time_t		 end;

	pair_new(&p);
	assert_int_equal(pipe2(pp, O_NONBLOCK | O_CLOEXEC), 0);
	assert_true(fcntl(pp[1], F_SETPIPE_SZ, 1 << 20) >= (int)(n + m));
	want = pattern(0, n + m);
	got = malloc(n + m);
	assert_non_null(got);

	/* In. */
	xsock_read_enable(p.x, 1);
	assert_int_equal(xsock_read_pipe(p.x, pp[1], sizeof(buf)), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(write(p.peer, want, sizeof(buf)), sizeof(buf));
	event_base_loop(p.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	assert_int_equal(p.r.readable, 1);
	assert_int_equal(xsock_read_pipe(p.x, pp[1], 2 * sizeof(buf)),
	    sizeof(buf));
	assert_int_equal(read(pp[0], buf, sizeof(buf)), sizeof(buf));
	assert_memory_equal(buf, want, sizeof(buf));
	assert_int_equal(shutdown(p.peer, SHUT_WR), 0);
	event_base_loop(p.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	assert_int_equal(xsock_read_pipe(p.x, pp[1], sizeof(buf)), 0);
	xsock_read_enable(p.x, 0);

	/* Out, with TAKEN: what the socket takes, as it takes it. */
	(void)setsockopt(xsock_fd(p.x), SOL_SOCKET, SO_SNDBUF, &sz,
	    sizeof(sz));
	assert_int_equal(write(pp[1], want, n), (ssize_t)n);
	assert_int_equal(xsock_write_pipe(p.x, pp[0], n, &taken), 0);
	assert_true(taken > 0 && taken < n);
	assert_int_equal(xsock_pending(p.x), 0);
	event_base_loop(p.base, EVLOOP_NONBLOCK);
	assert_int_equal(p.r.written, 0);
	while (sent + taken < n) {
		sent += taken;
		end = time(NULL) + 10;
		while (p.r.written == rounds && time(NULL) < end) {
			have += peer_read(p.peer, got + have, n + m - have);
			event_base_loop(p.base, EVLOOP_NONBLOCK);
		}
		assert_int_equal(p.r.written, ++rounds);
		assert_int_equal(p.r.wbytes, 0);
		assert_int_equal(xsock_write_pipe(p.x, pp[0], n - sent,
		    &taken), 0);
	}

	/* Without: the rest is queued, and goes by itself. */
	assert_int_equal(write(pp[1], want + n, m), (ssize_t)m);
	assert_int_equal(xsock_write_pipe(p.x, pp[0], m, NULL), 0);
	assert_int_equal(read(pp[0], buf, 1), -1);	/* the pipe is empty */
	have += drain(&p, got + have, n + m - have);
	assert_int_equal(have, n + m);
	assert_memory_equal(got, want, n + m);
	assert_int_equal(xsock_pending(p.x), 0);
	assert_int_equal(p.r.errors, 0);
	close(pp[0]);
	close(pp[1]);
	free(want);
	free(got);
	pair_free(&p);
}

/* Bytes of FD's send queue not yet sent: held back, or waiting. */
static int
unsent(int fd)
{
	int	n = -1;

	assert_int_equal(ioctl(fd, SIOCOUTQNSD, &n), 0);
	return (n);
}

/*
 * A header written with more to follow waits in the TCP socket rather
 * than leaving as a segment of its own (TCP_NODELAY or not), and goes
 * with the body spliced after it.  A stream that is no TCP one takes
 * it as a plain write.
 */
static void
test_write_more(void **state)
{
	struct pair	 p;
	struct evbuffer	*src = evbuffer_new();
	struct pollfd	 pfd;
	unsigned char	*want, got[16 + 4096];
	size_t		 taken;
	int		 pp[2], one = 1;

	assert_non_null(src);
	want = pattern(0, sizeof(got));
	assert_int_equal(pipe2(pp, O_NONBLOCK | O_CLOEXEC), 0);
	tcp_pair_new(&p);
	pfd.fd = xsock_fd(p.x);
	pfd.events = POLLOUT;
	assert_int_equal(poll(&pfd, 1, 5000), 1);	/* connected */
	assert_int_equal(setsockopt(xsock_fd(p.x), IPPROTO_TCP, TCP_NODELAY,
	    &one, sizeof(one)), 0);

	evbuffer_add(src, want, 16);
	assert_int_equal(xsock_write_more(p.x, src, 16), 16);
	assert_int_equal(evbuffer_get_length(src), 0);
	assert_int_equal(xsock_pending(p.x), 0);
	assert_int_equal(unsent(xsock_fd(p.x)), 16);
	assert_int_equal(write(pp[1], want + 16, 4096), 4096);
	assert_int_equal(xsock_write_pipe(p.x, pp[0], 4096, &taken), 0);
	assert_int_equal(taken, 4096);
	assert_int_equal(drain(&p, got, sizeof(got)), sizeof(got));
	assert_memory_equal(got, want, sizeof(got));
	assert_int_equal(unsent(xsock_fd(p.x)), 0);
	pair_free(&p);

	pair_new(&p);
	evbuffer_add(src, want, 16);
	assert_int_equal(xsock_write_more(p.x, src, 16), 16);
	assert_int_equal(drain(&p, got, 16), 16);
	assert_memory_equal(got, want, 16);
	pair_free(&p);

	close(pp[0]);
	close(pp[1]);
	evbuffer_free(src);
	free(want);
}

static void
test_write_ref(void **state)
{
	struct pair	 p;
	struct evbuffer	*src = evbuffer_new(), *body = evbuffer_new();
	unsigned char	*want, *got, hdr[7] = "HEADER:";
	size_t		 n = BIG / 2, w, have, i;
	int		 sz = 65536;

	pair_new(&p);
	want = pattern(0, n);
	got = malloc(n + sizeof(hdr));
	assert_non_null(got);
	evbuffer_add(src, hdr, sizeof(hdr));
	evbuffer_add(body, want, 100);
	assert_int_equal(xsock_write_ref(p.x, src, body, 0, 60, NULL),
	    sizeof(hdr) + 60);
	assert_int_equal(evbuffer_get_length(src), 0);
	assert_int_equal(evbuffer_get_length(body), 100);
	assert_int_equal(xsock_pending(p.x), 0);
	assert_int_equal(added(&p), 0);
	assert_int_equal(peer_read(p.peer, got, n), sizeof(hdr) + 60);
	assert_memory_equal(got, hdr, sizeof(hdr));
	assert_memory_equal(got + sizeof(hdr), want, 60);
	/* From an offset into BODY, no header. */
	assert_int_equal(xsock_write_ref(p.x, src, body, 40, 50, NULL), 50);
	assert_int_equal(peer_read(p.peer, got, n), 50);
	assert_memory_equal(got, want + 40, 50);

	/* A small socket: part now, the rest from the queue. */
	(void)setsockopt(xsock_fd(p.x), SOL_SOCKET, SO_SNDBUF, &sz,
	    sizeof(sz));
	evbuffer_drain(body, 100);
	evbuffer_add(body, want, n);
	evbuffer_add(src, hdr, sizeof(hdr));
	w = xsock_write_ref(p.x, src, body, 0, n, NULL);
	assert_true(w > 0 && w < n);
	assert_int_equal(xsock_pending(p.x), sizeof(hdr) + n - w);
	assert_int_equal(evbuffer_get_length(src), 0);
	assert_int_equal(evbuffer_get_length(body), n);
	evbuffer_drain(body, n);		/* the queue has its own */
	assert_int_equal(added(&p), 1);
	/* Behind that queue: all queued, none written. */
	evbuffer_add(src, hdr, sizeof(hdr));
	evbuffer_add(body, want, 10);
	assert_int_equal(xsock_write_ref(p.x, src, body, 0, 10, NULL), 0);
	assert_int_equal(evbuffer_get_length(body), 10);
	evbuffer_drain(body, 10);
	have = drain(&p, got, sizeof(hdr) + n);
	assert_int_equal(have, sizeof(hdr) + n);
	assert_memory_equal(got, hdr, sizeof(hdr));
	assert_memory_equal(got + sizeof(hdr), want, n);
	assert_int_equal(drain(&p, got, sizeof(hdr) + 10), sizeof(hdr) + 10);
	assert_memory_equal(got + sizeof(hdr), want, 10);
	assert_int_equal(xsock_pending(p.x), 0);

	/* Scattered: 40 chains of 100 bytes. */
	for (i = 0; i < 40; i++)
		evbuffer_add_reference(body, want + i * 100, 100, NULL, NULL);
	evbuffer_add(src, hdr, sizeof(hdr));
	assert_int_equal(xsock_write_ref(p.x, src, body, 0, 3950, NULL),
	    sizeof(hdr) + 3950);
	assert_int_equal(evbuffer_get_length(body), 4000);
	assert_int_equal(peer_read(p.peer, got, n), sizeof(hdr) + 3950);
	assert_memory_equal(got + sizeof(hdr), want, 3950);
	assert_int_equal(p.r.errors, 0);
	free(want);
	free(got);
	evbuffer_free(src);
	evbuffer_free(body);
	pair_free(&p);
}

/*
 * Reading: EAGAIN on an empty socket; the bytes once XSOCK_READABLE
 * came.  A read that came back short marks the socket dry: bytes that
 * arrive later are not read (no syscall: EAGAIN) until the read event
 * has fired again.
 */
static void
test_read_dry(void **state)
{
	struct pair	 p;
	struct evbuffer	*dst = evbuffer_new();
	char		 buf[16];

	pair_new(&p);
	errno = 0;
	assert_int_equal(xsock_read(p.x, dst, 1000), -1);
	assert_int_equal(errno, EAGAIN);
	xsock_read_enable(p.x, 1);
	assert_int_equal(added(&p), 1);

	assert_int_equal(write(p.peer, "abc", 3), 3);
	errno = 0;
	assert_int_equal(xsock_read(p.x, dst, 1000), -1);	/* dry */
	assert_int_equal(errno, EAGAIN);
	utest_run(p.base, &p.r.readable, 5);
	assert_int_equal(xsock_read(p.x, dst, 1000), 3);	/* short */

	assert_int_equal(write(p.peer, "defg", 4), 4);
	errno = 0;
	assert_int_equal(xsock_read(p.x, dst, 1000), -1);	/* dry */
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(evbuffer_get_length(dst), 3);
	p.r.readable = 0;
	utest_run(p.base, &p.r.readable, 5);
	assert_int_equal(xsock_read(p.x, dst, 1000), 4);
	assert_int_equal(evbuffer_remove(dst, buf, sizeof(buf)), 7);
	assert_memory_equal(buf, "abcdefg", 7);

	/* Not enabled: no XSOCK_READABLE, whatever waits. */
	xsock_read_enable(p.x, 0);
	assert_int_equal(added(&p), 0);
	assert_int_equal(write(p.peer, "h", 1), 1);
	p.r.readable = 0;
	event_base_loop(p.base, EVLOOP_NONBLOCK);
	assert_int_equal(p.r.readable, 0);
	evbuffer_free(dst);
	pair_free(&p);
}

/*
 * MAX is exact, across the first small read and the next: a read that
 * filled MAX does not mark the socket dry, so the next call reads on
 * without the loop.
 */
static void
test_read_max(void **state)
{
	struct pair	 p;
	struct evbuffer	*dst = evbuffer_new();
	unsigned char	*want, got[10000];

	pair_new(&p);
	want = pattern(0, sizeof(got));
	assert_int_equal(write(p.peer, want, 100), 100);
	assert_int_equal(xsock_read(p.x, dst, 40), 40);
	assert_int_equal(evbuffer_get_length(dst), 40);
	assert_int_equal(xsock_read(p.x, dst, 1000), 60);
	errno = 0;
	assert_int_equal(xsock_read(p.x, dst, 1000), -1);
	assert_int_equal(errno, EAGAIN);

	/* 5000 > XBEV_LIBEVENT_READ: two reads, the second cut to fit. */
	assert_int_equal(write(p.peer, want + 100, sizeof(got) - 100),
	    (ssize_t)sizeof(got) - 100);
	p.r.readable = 0;
	xsock_read_enable(p.x, 1);
	utest_run(p.base, &p.r.readable, 5);
	assert_int_equal(xsock_read(p.x, dst, 5000), 5000);
	assert_int_equal(evbuffer_get_length(dst), 5100);
	assert_int_equal(xsock_read(p.x, dst, 1000000), sizeof(got) - 5100);
	assert_int_equal(evbuffer_remove(dst, got, sizeof(got)),
	    (int)sizeof(got));
	assert_memory_equal(got, want, sizeof(got));
	free(want);
	evbuffer_free(dst);
	pair_free(&p);
}

/*
 * EOF is XSOCK_READABLE and a read of 0: at once, and after bytes that
 * came before it.
 */
static void
test_read_eof(void **state)
{
	struct pair	 p;
	struct evbuffer	*dst = evbuffer_new();

	pair_new(&p);
	xsock_read_enable(p.x, 1);
	close(p.peer);
	p.peer = -1;
	utest_run(p.base, &p.r.readable, 5);
	assert_int_equal(xsock_read(p.x, dst, 1000), 0);
	pair_free(&p);

	pair_new(&p);
	xsock_read_enable(p.x, 1);
	assert_int_equal(write(p.peer, "bye", 3), 3);
	close(p.peer);
	p.peer = -1;
	utest_run(p.base, &p.r.readable, 5);
	assert_int_equal(xsock_read(p.x, dst, 1000), 3);
	p.r.readable = 0;
	utest_run(p.base, &p.r.readable, 5);
	assert_int_equal(xsock_read(p.x, dst, 1000), 0);
	assert_int_equal(evbuffer_get_length(dst), 3);
	evbuffer_free(dst);
	pair_free(&p);
}

/*
 * A connect under way: writes are queued (0 written at once), reads
 * say EAGAIN; XSOCK_CONNECTED comes, then the queue goes out, and what
 * is written while it waits goes behind it.  Then it reads.
 */
static void
test_connect(void **state)
{
	struct pair	 p;
	struct evbuffer	*src = evbuffer_new(), *dst = evbuffer_new();
	unsigned char	 got[64];
	int		 l, port;

	memset(&p, 0, sizeof(p));
	p.base = event_base_new();
	l = utest_listen(1, &port);
	p.x = xsock_new(p.base, tcp_connect(port), XSOCK_CONNECTING, rec_cb,
	    &p);
	evbuffer_add(src, "hello", 5);
	assert_int_equal(xsock_write(p.x, src, 5), 0);
	assert_int_equal(xsock_pending(p.x), 5);
	errno = 0;
	assert_int_equal(xsock_read(p.x, dst, 100), -1);
	assert_int_equal(errno, EAGAIN);
	utest_run(p.base, &p.r.connected, 5);
	assert_int_equal(p.r.errors, 0);
	assert_int_equal(p.r.written, 0);
	assert_int_equal(xsock_pending(p.x), 5);
	evbuffer_add(src, ", world", 7);
	assert_int_equal(xsock_write(p.x, src, 7), 0);	/* behind */
	assert_int_equal(xsock_pending(p.x), 12);

	p.peer = accept4(l, NULL, NULL, SOCK_NONBLOCK);
	assert_true(p.peer >= 0);
	assert_int_equal(drain(&p, got, 12), 12);
	assert_memory_equal(got, "hello, world", 12);
	assert_int_equal(p.r.wbytes, 12);
	assert_int_equal(xsock_pending(p.x), 0);

	xsock_read_enable(p.x, 1);
	assert_int_equal(write(p.peer, "pong", 4), 4);
	utest_run(p.base, &p.r.readable, 5);
	assert_int_equal(xsock_read(p.x, dst, 100), 4);
	assert_int_equal(evbuffer_remove(dst, got, sizeof(got)), 4);
	assert_memory_equal(got, "pong", 4);
	close(l);
	evbuffer_free(src);
	evbuffer_free(dst);
	pair_free(&p);
}

/* A connect to a closed port: XSOCK_ERROR with ECONNREFUSED. */
static void
test_connect_refused(void **state)
{
	struct pair	 p;
	struct evbuffer	*src = evbuffer_new();
	int		 l, port;

	memset(&p, 0, sizeof(p));
	p.peer = -1;
	p.base = event_base_new();
	l = utest_listen(1, &port);
	close(l);
	p.x = xsock_new(p.base, tcp_connect(port), XSOCK_CONNECTING, rec_cb,
	    &p);
	evbuffer_add(src, "lost", 4);
	assert_int_equal(xsock_write(p.x, src, 4), 0);
	utest_run(p.base, &p.r.errors, 5);
	assert_int_equal(p.r.err, ECONNREFUSED);
	assert_int_equal(p.r.connected, 0);
	assert_int_equal(p.r.written, 0);
	evbuffer_free(src);
	pair_free(&p);
}

/*
 * A write to a closed peer: xsock_write just returns (0 written, the
 * bytes queued, no callback); the loop reports XSOCK_ERROR.
 */
static void
test_write_error(void **state)
{
	struct pair	 p;
	struct evbuffer	*src = evbuffer_new();

	pair_new(&p);
	close(p.peer);
	p.peer = -1;
	evbuffer_add(src, "hello, world", 12);
	assert_int_equal(xsock_write(p.x, src, 5), 0);
	assert_int_equal(p.r.errors, 0);
	assert_int_equal(xsock_write(p.x, src, 7), 0);
	assert_int_equal(p.r.errors, 0);
	assert_int_equal(xsock_pending(p.x), 12);
	utest_run(p.base, &p.r.errors, 5);
	assert_int_equal(p.r.err, EPIPE);
	assert_int_equal(p.r.written, 0);
	evbuffer_free(src);
	pair_free(&p);
}

/* The peer goes while bytes wait: XSOCK_ERROR from the loop. */
static void
test_write_error_queued(void **state)
{
	struct pair	 p;

	pair_new(&p);
	(void)fill(&p, BIG);
	close(p.peer);
	p.peer = -1;
	utest_run(p.base, &p.r.errors, 5);
	assert_true(p.r.err == EPIPE || p.r.err == ECONNRESET);
	pair_free(&p);
}

/* A TCP peer resets while bytes wait: XSOCK_ERROR says ECONNRESET. */
static void
test_write_error_reset_queued(void **state)
{
	struct pair	p;

	tcp_pair_new(&p);
	(void)fill(&p, BIG);
	peer_reset(&p);
	utest_run(p.base, &p.r.errors, 5);
	assert_int_equal(p.r.err, ECONNRESET);
	pair_free(&p);
}

/*
 * A TCP peer reset before a write through: xsock_write just returns,
 * and XSOCK_ERROR says ECONNRESET too, as it does for queued bytes
 * (the error the socket failed with, not a later write's EPIPE).  The
 * errno is checked last, so that its failure leaks nothing.
 */
static void
test_write_error_reset(void **state)
{
	struct pair	 p;
	struct evbuffer	*src = evbuffer_new();
	size_t		 err;

	tcp_pair_new(&p);
	peer_reset(&p);
	evbuffer_add(src, "hello", 5);
	assert_int_equal(xsock_write(p.x, src, 5), 0);
	assert_int_equal(p.r.errors, 0);
	assert_int_equal(xsock_pending(p.x), 5);
	utest_run(p.base, &p.r.errors, 5);
	err = p.r.err;
	evbuffer_free(src);
	pair_free(&p);
	assert_int_equal(err, ECONNRESET);
}

/*
 * The callback frees the xsock in event EV (XSOCK_WRITTEN or
 * XSOCK_READABLE), with bytes queued and both the read and the write
 * event active in the same loop turn: nothing runs on it after, so EV
 * was reported once.
 */
static void
free_in_turn(enum xsock_event ev)
{
	struct pair	 p;
	unsigned char	*got = malloc(BIG);
	int		*calls;

	assert_non_null(got);
	pair_new(&p);
	calls = ev == XSOCK_WRITTEN ? &p.r.written : &p.r.readable;
	xsock_read_enable(p.x, 1);
	(void)fill(&p, BIG);
	p.r.free_on = 1U << ev;
	assert_int_equal(write(p.peer, "x", 1), 1);
	(void)peer_read(p.peer, got, BIG);
	utest_run(p.base, &p.r.freed, 5);
	assert_null(p.x);
	assert_int_equal(*calls, 1);
	event_base_loop(p.base, EVLOOP_NONBLOCK);
	assert_int_equal(*calls, 1);
	free(got);
	pair_free(&p);
}

static void
test_free_in_written(void **state)
{
	free_in_turn(XSOCK_WRITTEN);
}

static void
test_free_in_readable(void **state)
{
	free_in_turn(XSOCK_READABLE);
}

/*
 * The callback frees the xsock in XSOCK_CONNECTED (bytes queued, the
 * write event armed) and in XSOCK_ERROR.
 */
static void
test_free_in_connect(void **state)
{
	struct pair	 p;
	struct evbuffer	*src = evbuffer_new();
	int		 l, port;

	memset(&p, 0, sizeof(p));
	p.peer = -1;
	p.base = event_base_new();
	l = utest_listen(1, &port);
	p.x = xsock_new(p.base, tcp_connect(port), XSOCK_CONNECTING, rec_cb,
	    &p);
	xsock_read_enable(p.x, 1);
	evbuffer_add(src, "hello", 5);
	assert_int_equal(xsock_write(p.x, src, 5), 0);
	p.r.free_on = 1U << XSOCK_CONNECTED;
	utest_run(p.base, &p.r.freed, 5);
	assert_int_equal(p.r.connected, 1);
	event_base_loop(p.base, EVLOOP_NONBLOCK);
	assert_int_equal(p.r.written, 0);
	close(l);

	l = utest_listen(1, &port);
	close(l);
	memset(&p.r, 0, sizeof(p.r));
	p.x = xsock_new(p.base, tcp_connect(port), XSOCK_CONNECTING, rec_cb,
	    &p);
	xsock_read_enable(p.x, 1);
	p.r.free_on = 1U << XSOCK_ERROR;
	utest_run(p.base, &p.r.freed, 5);
	assert_int_equal(p.r.errors, 1);
	event_base_loop(p.base, EVLOOP_NONBLOCK);
	assert_int_equal(p.r.errors, 1);
	evbuffer_free(src);
	pair_free(&p);
}

/*
 * xbev_readv: a small first read takes a small message whole (and sets
 * *dry), without a 64 KiB chain; an empty socket is -1/EAGAIN and dry;
 * MAX is exact and a read that filled it is not dry; a bulk read goes
 * on past the first read until the socket is empty.
 */
static void
test_readv(void **state)
{
	struct evbuffer		*buf = evbuffer_new();
	struct evbuffer_iovec	 v;
	unsigned char		*want, *got;
	size_t			 n = 150000, w = 0;
	ssize_t			 r;
	int			 sv[2], dry, err, sz = 1024 * 1024;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
	    sv), 0);
	want = pattern(0, n);
	got = malloc(n);
	assert_non_null(got);
	assert_int_equal(write(sv[1], want, 100), 100);
	dry = 0;
	assert_int_equal(xbev_readv(buf, sv[0], 65536, XBEV_LIBEVENT_READ,
	    &dry, &err), 100);
	assert_int_equal(dry, 1);
	assert_int_equal(evbuffer_get_length(buf), 100);
	/* The chain read into has room for the first read, not 64 KiB. */
	assert_int_equal(evbuffer_reserve_space(buf, 1, &v, 1), 1);
	assert_true(v.iov_len < XBEV_READ / 2);
	assert_int_equal(evbuffer_commit_space(buf, &v, 0), 0);
	assert_int_equal(evbuffer_remove(buf, got, n), 100);
	assert_memory_equal(got, want, 100);

	dry = 0;
	errno = 0;
	assert_int_equal(xbev_readv(buf, sv[0], 65536, XBEV_LIBEVENT_READ,
	    &dry, &err), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(dry, 1);

	assert_int_equal(write(sv[1], want, 100), 100);
	dry = 1;
	assert_int_equal(xbev_readv(buf, sv[0], 40, XBEV_LIBEVENT_READ, &dry,
	    &err),
	    40);
	assert_int_equal(dry, 0);
	assert_int_equal(xbev_readv(buf, sv[0], 1000, XBEV_LIBEVENT_READ,
	    &dry, &err), 60);
	assert_int_equal(dry, 1);
	assert_int_equal(evbuffer_remove(buf, got, n), 100);
	assert_memory_equal(got, want, 100);

	/* Bulk: as much as the socket took, in one call. */
	(void)setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	while (w < n && (r = write(sv[1], want + w, n - w)) > 0)
		w += (size_t)r;
	assert_true(w > XBEV_READ);
	dry = 0;
	assert_int_equal(xbev_readv(buf, sv[0], 1024 * 1024,
	    XBEV_LIBEVENT_READ, &dry, &err), w);
	assert_int_equal(dry, 1);
	assert_int_equal(evbuffer_remove(buf, got, n), (int)w);
	assert_memory_equal(got, want, w);
	free(want);
	free(got);
	evbuffer_free(buf);
	close(sv[0]);
	close(sv[1]);
}

/*
 * xbev_readv asked for nothing is -1/ENOBUFS, not 0 (no EOF), and
 * reads nothing; at EOF it is 0 and dry, after any bytes before it.
 */
static void
test_readv_nothing_eof(void **state)
{
	struct evbuffer	*buf = evbuffer_new();
	char		 got[16];
	int		 sv[2], dry, err;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
	    sv), 0);
	assert_int_equal(write(sv[1], "0123456789", 10), 10);
	errno = 0;
	assert_int_equal(xbev_readv(buf, sv[0], 0, XBEV_LIBEVENT_READ, &dry,
	    &err),
	    -1);
	assert_int_equal(errno, ENOBUFS);
	assert_int_equal(evbuffer_get_length(buf), 0);
	close(sv[1]);
	errno = 0;
	assert_int_equal(xbev_readv(buf, sv[0], 0, XBEV_LIBEVENT_READ, &dry,
	    &err),
	    -1);	/* at EOF too */
	assert_int_equal(errno, ENOBUFS);

	dry = 0;
	assert_int_equal(xbev_readv(buf, sv[0], 100, XBEV_LIBEVENT_READ,
	    &dry, &err), 10);
	assert_int_equal(dry, 1);
	assert_int_equal(evbuffer_remove(buf, got, sizeof(got)), 10);
	assert_memory_equal(got, "0123456789", 10);
	dry = 0;
	assert_int_equal(xbev_readv(buf, sv[0], 100, XBEV_LIBEVENT_READ,
	    &dry, &err), 0);
	assert_int_equal(dry, 1);
	assert_int_equal(evbuffer_get_length(buf), 0);
	evbuffer_free(buf);
	close(sv[0]);
}

/*
 * A TCP peer that resets right after sending exactly what a read asks
 * for: the bytes come first, then the reset, not an EOF (the kernel
 * reports it once, to the read that met it).
 */
static void
test_read_reset_behind_data(void **state)
{
	struct pair	 p;
	struct evbuffer	*in = evbuffer_new();
	unsigned char	*buf = pattern(0, XBEV_LIBEVENT_READ);

	tcp_pair_new(&p);
	assert_int_equal(write(p.peer, buf, XBEV_LIBEVENT_READ),
	    XBEV_LIBEVENT_READ);
	peer_reset(&p);
	assert_int_equal(xsock_read(p.x, in, XBEV_LIBEVENT_READ + 100),
	    XBEV_LIBEVENT_READ);
	errno = 0;
	assert_int_equal(xsock_read(p.x, in, 100), -1);
	assert_int_equal(errno, ECONNRESET);
	errno = 0;
	assert_int_equal(xsock_read(p.x, in, 100), -1);	/* and stays */
	assert_int_equal(errno, ECONNRESET);
	free(buf);
	evbuffer_free(in);
	pair_free(&p);
}

/* Run P's loop for MS milliseconds. */
static void
run_for(struct pair *p, long ms)
{
	struct timeval	tv = { ms / 1000, (ms % 1000) * 1000 };

	event_base_loopexit(p->base, &tv);
	event_base_dispatch(p->base);
}

/*
 * The timeout: reported while reads are wanted and nothing comes, not
 * while they are not, and renewed by what arrives.
 */
static void
test_timeout(void **state)
{
	struct pair	 p;
	struct timeval	 tv = { 0, 60 * 1000 };
	unsigned char	 buf[16];
	struct evbuffer	*in = evbuffer_new();
	int		 i;

	pair_new(&p);
	xsock_set_timeout(p.x, &tv);
	run_for(&p, 150);
	assert_int_equal(p.r.timeouts, 0);	/* not reading */
	xsock_read_enable(p.x, 1);
	run_for(&p, 100);
	assert_int_equal(p.r.timeouts, 1);
	/* Bytes every 20 ms keep it from firing. */
	p.r.timeouts = 0;
	for (i = 0; i < 6; i++) {
		assert_int_equal(write(p.peer, "x", 1), 1);
		run_for(&p, 20);
		while (xsock_read(p.x, in, sizeof(buf)) > 0)
			;
	}
	assert_int_equal(p.r.timeouts, 0);
	assert_int_equal(evbuffer_get_length(in), 6);
	/*
	 * Taken off: none fires, even after a read (libevent re-arms a
	 * persistent event with the last timeout it was added with).
	 */
	xsock_set_timeout(p.x, NULL);
	run_for(&p, 100);
	assert_int_equal(write(p.peer, "y", 1), 1);
	run_for(&p, 20);
	assert_int_equal(xsock_read(p.x, in, sizeof(buf)), 1);
	run_for(&p, 100);
	assert_int_equal(p.r.timeouts, 0);
	/* The same when it was taken off while reads were not wanted. */
	xsock_set_timeout(p.x, &tv);
	run_for(&p, 20);
	xsock_read_enable(p.x, 0);
	xsock_set_timeout(p.x, NULL);
	xsock_read_enable(p.x, 1);
	assert_int_equal(write(p.peer, "z", 1), 1);
	run_for(&p, 20);
	assert_int_equal(xsock_read(p.x, in, sizeof(buf)), 1);
	run_for(&p, 100);
	assert_int_equal(p.r.timeouts, 0);
	evbuffer_free(in);
	pair_free(&p);
}

/*
 * Splice: SRC's bytes reach DST in order without a read; what DST does
 * not take waits in the pipe, more spliced bytes join them there, and
 * written bytes queue behind them (after which splicing waits for the
 * queue to empty: EBUSY).  XSOCK_WRITTEN counts the piped bytes as it
 * does written ones, and EOF on SRC is a 0.
 */
static void
test_splice(void **state)
{
	struct pair	 s, d;
	struct pipepool	*pool = pipepool_new(2, 0);
	struct evbuffer	*tail = evbuffer_new();
	unsigned char	*in = pattern(0, BIG), *got = malloc(BIG + 4096);
	unsigned char	*t = pattern(BIG, 4096);
	size_t		 taken = 0, now = 0, w, queued, fed = 0, rd;
	ssize_t		 n;
	int		 sz = 65536;

	pair_new(&s);
	pair_new(&d);
	(void)setsockopt(xsock_fd(d.x), SOL_SOCKET, SO_SNDBUF, &sz,
	    sizeof(sz));
	xsock_read_enable(s.x, 1);
	/* The peer feeds SRC while DST's reader reads nothing. */
	while (xsock_pending(d.x) == 0) {
		if (fed < BIG && (n = write(s.peer, in + fed, BIG - fed)) > 0)
			fed += (size_t)n;
		n = xsock_splice(s.x, d.x, 16384, pool, &w);
		if (n > 0) {
			taken += (size_t)n;
			now += w;
		} else {
			assert_int_equal(errno, EAGAIN);
			event_base_loop(s.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		}
	}
	assert_true(taken > 0 && now < taken);
	assert_int_equal(xsock_pending(d.x), taken - now);
	/* DST is full: more joins the pipe. */
	while ((n = xsock_splice(s.x, d.x, 16384, pool, &w)) == -1 &&
	    errno == EAGAIN)
		event_base_loop(s.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	assert_true(n > 0);
	assert_int_equal(w, 0);
	taken += (size_t)n;
	queued = xsock_pending(d.x);
	assert_int_equal(queued, taken - now);
	/* Written bytes go behind the piped ones; splicing waits. */
	evbuffer_add(tail, t, 4096);
	assert_int_equal(xsock_write(d.x, tail, 4096), 0);
	assert_int_equal(xsock_pending(d.x), queued + 4096);
	n = xsock_splice(s.x, d.x, 1024, pool, &w);
	assert_int_equal(n, -1);
	assert_int_equal(errno, EBUSY);
	assert_int_equal(drain(&d, got, taken + 4096), taken + 4096);
	assert_memory_equal(got, in, taken);
	assert_memory_equal(got + taken, t, 4096);
	/* The tail was not the pattern's: take it out of the comparison. */
	memcpy(got + taken, in + taken, 4096);
	rd = taken;
	assert_int_equal(d.r.wbytes, queued + 4096);
	assert_int_equal(xsock_pending(d.x), 0);
	/* The rest, now with a reader: all of it, then EOF. */
	for (;;) {
		if (fed < BIG && (n = write(s.peer, in + fed, BIG - fed)) > 0)
			fed += (size_t)n;
		if (fed == BIG && s.peer != -1) {
			close(s.peer);
			s.peer = -1;
		}
		if ((n = xsock_splice(s.x, d.x, 256 * 1024, pool, &w)) == 0)
			break;
		if (n > 0)
			taken += (size_t)n;
		else {
			assert_true(errno == EAGAIN || errno == EBUSY);
			event_base_loop(s.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		}
		rd += drain(&d, got + rd, taken - rd);
	}
	assert_int_equal(taken, BIG);
	assert_int_equal(rd, BIG);
	assert_memory_equal(got, in, BIG);
	assert_int_equal(d.r.errors + s.r.errors, 0);
	pair_free(&s);
	pair_free(&d);
	pipepool_free(pool);
	evbuffer_free(tail);
	free(in);
	free(got);
	free(t);
}

/*
 * A source the kernel will not splice (an eventfd: no splice_read):
 * EBUSY, remembered, so the next try makes no syscall and says EBUSY
 * too, and nothing was taken.
 */
static void
test_splice_refused(void **state)
{
	struct pair	 d;
	struct pipepool	*pool = pipepool_new(1, 0);
	struct xsock	*src;
	uint64_t	 one = 1, v = 0;
	size_t		 w = 7;
	int		 efd;

	pair_new(&d);
	efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(efd >= 0);
	assert_int_equal(write(efd, &one, sizeof(one)), sizeof(one));
	src = xsock_new(d.base, efd, 0, rec_cb, &d);
	assert_int_equal(xsock_splice(src, d.x, 4096, pool, &w), -1);
	assert_int_equal(errno, EBUSY);
	assert_int_equal(w, 0);
	assert_int_equal(xsock_splice(src, d.x, 4096, pool, &w), -1);
	assert_int_equal(errno, EBUSY);
	assert_int_equal(xsock_pending(d.x), 0);
	/* Nothing taken: the eventfd still holds its count. */
	assert_int_equal(read(efd, &v, sizeof(v)), sizeof(v));
	assert_int_equal(v, 1);
	xsock_free(src);
	pair_free(&d);
	pipepool_free(pool);
}

/* Descriptors this process has open. */
static int
nfds(void)
{
	DIR		*d = opendir("/proc/self/fd");
	struct dirent	*e;
	int		 n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return (n - 1);		/* the directory's own */
}

/*
 * DST's reader goes while spliced bytes wait in its pipe: XSOCK_ERROR
 * once, the queue (and the pipe with it) dropped, not handed back to
 * the pool as if empty.
 */
static void
test_splice_error_queued(void **state)
{
	struct pair	 s, d;
	struct pipepool	*pool = pipepool_new(1, 0);
	unsigned char	*in = pattern(0, BIG);
	size_t		 w, fed = 0;
	ssize_t		 n;
	int		 sz = 65536, fds, tries = 0;

	pair_new(&s);
	pair_new(&d);
	(void)setsockopt(xsock_fd(d.x), SOL_SOCKET, SO_SNDBUF, &sz,
	    sizeof(sz));
	xsock_read_enable(s.x, 1);
	while (xsock_pending(d.x) == 0 && tries++ < 10000) {
		if ((n = write(s.peer, in + fed, BIG - fed)) > 0)
			fed += (size_t)n;
		if (xsock_splice(s.x, d.x, 16384, pool, &w) == -1)
			event_base_loop(s.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	}
	assert_true(xsock_pending(d.x) > 0);
	close(d.peer);
	d.peer = -1;
	fds = nfds();
	utest_run(d.base, &d.r.errors, 5);
	assert_int_equal(d.r.errors, 1);
	assert_true(d.r.err == EPIPE || d.r.err == ECONNRESET);
	assert_int_equal(xsock_pending(d.x), 0);
	/* The pipe closed: two descriptors fewer than with it. */
	assert_int_equal(nfds(), fds - 2);
	event_base_loop(d.base, EVLOOP_NONBLOCK);
	assert_int_equal(d.r.errors, 1);
	pair_free(&s);
	pair_free(&d);
	pipepool_free(pool);
	free(in);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_idle),
		cmocka_unit_test(test_write_full),
		cmocka_unit_test(test_write_behind),
		cmocka_unit_test(test_write_ref),
		cmocka_unit_test(test_pipe_io),
		cmocka_unit_test(test_write_more),
		cmocka_unit_test(test_write_ref_taken),
		cmocka_unit_test(test_read_dry),
		cmocka_unit_test(test_read_max),
		cmocka_unit_test(test_read_eof),
		cmocka_unit_test(test_connect),
		cmocka_unit_test(test_connect_refused),
		cmocka_unit_test(test_write_error),
		cmocka_unit_test(test_write_error_queued),
		cmocka_unit_test(test_write_error_reset_queued),
		cmocka_unit_test(test_write_error_reset),
		cmocka_unit_test(test_free_in_written),
		cmocka_unit_test(test_free_in_readable),
		cmocka_unit_test(test_free_in_connect),
		cmocka_unit_test(test_readv),
		cmocka_unit_test(test_readv_nothing_eof),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_read_reset_behind_data),
		cmocka_unit_test(test_splice),
		cmocka_unit_test(test_splice_refused),
		cmocka_unit_test(test_splice_error_queued),
	};

	/* A write to a closed peer is EPIPE, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
