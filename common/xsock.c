/*
 * xsock.c -- a plain stream socket on the event loop (xsock.h).
 *
 * Reading: the read event only says the socket is readable; the owner
 * reads as much as it has room for, straight into its own buffer, so
 * an xsock holds no input.  A read that comes back short (or EAGAIN,
 * or EOF) marks the socket dry, and until the read event fires again
 * xsock_read() answers EAGAIN without a syscall: an owner that calls it
 * whenever its room grows pays nothing when there is nothing.
 *
 * Writing: while nothing is queued, bytes go to the socket at once and
 * only what it does not take is queued, with write interest only while
 * bytes wait (a ping-pong changes nothing).  The output buffer exists
 * only while it holds bytes.
 *
 * One event per socket, its interest (read, write, both) changed as
 * needed.  The callback is the last thing the handler does, so it may
 * free the xsock; a socket both readable and writable reports the write
 * side first, and its readability again on the next loop turn (the
 * event is level-triggered).
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "xbev.h"
#include "xmalloc.h"
#include "xsock.h"

#define XSOCK_WRITE_MAX	(256 * 1024)	/* per writev from the queue */

struct xsock {
	int			 fd;
	int			 connecting;
	int			 dry;		/* ran dry, no event since */
	int			 reading;	/* wants XSOCK_READABLE */
	int			 failed;	/* the errno once failed */
	short			 armed;		/* ev's interest, as added */
	struct event_base	*base;
	struct event		*ev;
	struct evbuffer		*out;		/* only while bytes wait */
	xsock_cb		 cb;
	void			*arg;
};

static void	xsock_io_cb(evutil_socket_t, short, void *);
static void	xsock_update(struct xsock *);

/* Wrap FD; see xsock.h. */
struct xsock *
xsock_new(struct event_base *base, int fd, int flags, xsock_cb cb,
    void *arg)
{
	struct xsock	*x;

	x = xcalloc(1, sizeof(*x));
	x->fd = fd;
	x->base = base;
	x->cb = cb;
	x->arg = arg;
	if ((x->ev = event_new(base, fd, EV_READ | EV_PERSIST, xsock_io_cb,
	    x)) == NULL)
		abort();
	if (flags & XSOCK_CONNECTING) {
		x->connecting = 1;
		x->dry = 1;
		xsock_update(x);
	}
	return (x);
}

/* Close the socket and free X. */
void
xsock_free(struct xsock *x)
{
	if (x == NULL)
		return;
	event_free(x->ev);
	if (x->out != NULL)
		evbuffer_free(x->out);
	if (x->fd != -1)
		close(x->fd);
	free(x);
}

/* The socket. */
int
xsock_fd(const struct xsock *x)
{
	return (x->fd);
}

/* Bytes queued for the socket. */
size_t
xsock_pending(const struct xsock *x)
{
	return (x->out != NULL ? evbuffer_get_length(x->out) : 0);
}

/* Set the event's interest to what X wants now. */
static void
xsock_update(struct xsock *x)
{
	short	want = 0;

	if (x->reading)
		want |= EV_READ;
	if (x->connecting || xsock_pending(x) > 0)
		want |= EV_WRITE;
	if (want == x->armed)
		return;
	if (x->armed != 0)
		event_del(x->ev);
	x->armed = want;
	if (want == 0)
		return;
	if (event_assign(x->ev, x->base, x->fd, want | EV_PERSIST,
	    xsock_io_cb, x) == -1 || event_add(x->ev, NULL) == -1)
		abort();
}

/* Ask for XSOCK_READABLE or not. */
void
xsock_read_enable(struct xsock *x, int on)
{
	x->reading = on != 0;
	xsock_update(x);
}

/* Read into DST; see xsock.h. */
ssize_t
xsock_read(struct xsock *x, struct evbuffer *dst, size_t max)
{
	ssize_t	n;
	int	dry;

	if (x->dry || x->connecting) {
		errno = EAGAIN;
		return (-1);
	}
	n = xbev_readv(dst, x->fd, max, XBEV_LIBEVENT_READ, &dry);
	x->dry = dry;
	return (n);
}

/* Move N bytes of SRC to the socket; see xsock.h. */
size_t
xsock_write(struct xsock *x, struct evbuffer *src, size_t n)
{
	ev_ssize_t	w = 0;

	if (n > evbuffer_get_length(src))
		n = evbuffer_get_length(src);
	if (n == 0)
		return (0);
	if (xsock_pending(x) == 0 && !x->connecting && !x->failed &&
	    (w = evbuffer_write_atmost(src, x->fd, (ev_ssize_t)n)) < 0) {
		/*
		 * Kept for the loop to report: the kernel says a socket's
		 * error once, and a second write would only say EPIPE.
		 */
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			x->failed = errno;
		w = 0;
	}
	if ((size_t)w < n) {
		if (x->out == NULL && (x->out = evbuffer_new()) == NULL)
			abort();
		evbuffer_remove_buffer(src, x->out, n - (size_t)w);
		xsock_update(x);
	}
	return ((size_t)w);
}

/* The socket is ready: the write side first (see above). */
static void
xsock_io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct xsock	*x = arg;
	socklen_t	 len = sizeof(int);
	ev_ssize_t	 w;
	int		 err = 0;

	if (!(what & EV_WRITE)) {
		x->dry = 0;
		x->cb(x, XSOCK_READABLE, 0, x->arg);
		return;
	}
	if (x->connecting) {
		if (getsockopt(x->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
			err = errno;
		if (err == EINPROGRESS || err == EALREADY)
			return;
		if (err != 0) {
			x->connecting = 0;
			x->failed = err;
			x->reading = 0;
			xsock_update(x);
			x->cb(x, XSOCK_ERROR, (size_t)err, x->arg);
			return;
		}
		x->connecting = 0;
		x->dry = 0;
		xsock_update(x);
		x->cb(x, XSOCK_CONNECTED, 0, x->arg);
		return;
	}
	if (xsock_pending(x) == 0) {
		xsock_update(x);
		return;
	}
	if (x->failed != 0) {
		w = -1;
		errno = x->failed;
	} else
		w = evbuffer_write_atmost(x->out, x->fd, XSOCK_WRITE_MAX);
	if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (w <= 0) {
		err = w < 0 ? errno : EPIPE;
		/* Nothing more will go: stop asking, and say so once. */
		evbuffer_free(x->out);
		x->out = NULL;
		x->failed = err;
		x->reading = 0;
		xsock_update(x);
		x->cb(x, XSOCK_ERROR, (size_t)err, x->arg);
		return;
	}
	if (evbuffer_get_length(x->out) == 0) {
		/* Idle again: no queue, no write interest. */
		evbuffer_free(x->out);
		x->out = NULL;
		xsock_update(x);
	}
	x->cb(x, XSOCK_WRITTEN, (size_t)w, x->arg);
}
