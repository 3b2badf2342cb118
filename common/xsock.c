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
 * only while it holds bytes.  xsock_write_ref() sends bytes that stay
 * their owner's (a session's replay) from the owner's memory, and
 * copies only what the socket leaves.
 *
 * A read event, with a timeout while reads are wanted, and a write
 * event that exists only while the socket is connecting or bytes wait
 * (two events on one fd cost one epoll_ctl per change of interest; one
 * event re-armed with new interest would cost two).  The callback is
 * the last thing a handler does, so it may free the xsock (libevent
 * lets a callback free the event that runs it).
 *
 * Splicing (xsock_splice): bytes go from one plain socket to another
 * through a pipe lent by the caller's pool, never through user space.
 * What the destination does not take at once stays in the pipe, which
 * the destination then holds as the head of its queue and gives back
 * to the pool once it has sent it; more spliced bytes may join them
 * there while nothing was written behind them.  A socket the kernel
 * will not splice is remembered and copied from then on.
 *
 * A TLS stream is a bufferevent (bufferevent_openssl does the record
 * layer and handshake); xsock_new_bev() puts the same interface on one,
 * so a session's leg code has one path for both.  Its reads take from
 * the bufferevent's input; its writes are records written at once while
 * nothing is queued (tls_bev_send), as a plain socket's, else queued on
 * its output.
 *
 * A channel (xsock_new_chan) is a stream that lives in this process: a
 * mesh link's (mux.c), which would otherwise be a socketpair, two
 * descriptors and two socket crossings per byte.  Its input is what the
 * channel moved in (xsock_chan_input), read as a socket's would be; a
 * write goes to the channel's send at once while nothing is queued, the
 * rest waits until the channel says it takes more.  Its events are
 * activated, not polled: the read event (also the timeout's timer) when
 * input comes while reads are wanted, the write event when the channel
 * takes more, as a socket's would fire, and never from inside a call of
 * the owner's, which a callback could free.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "pipepool.h"
#include "tls.h"
#include "xbev.h"
#include "xaddr.h"
#include "xmalloc.h"
#include "xsock.h"

#define XSOCK_WRITE_MAX	(256 * 1024)	/* per writev from the queue */
#define XSOCK_BEV_HIGH	(256 * 1024)	/* TLS: input read ahead, at most */
#define XSOCK_REF_IOV	16		/* xsock_write_ref: one writev */
#define XSOCK_MORE_IOV	4		/* xsock_write_more: one sendmsg */

struct xsock {
	int			 fd;
	int			 connecting;
	int			 dry;		/* ran dry, no event since */
	int			 reading;	/* wants XSOCK_READABLE */
	int			 failed;	/* the errno once failed */
	int			 r_added;	/* rev added, and how */
	int			 r_tmo;
	int			 rev_tmo;	/* rev was ever given one */
	int			 rerr;		/* a read error behind data */
	int			 stopped;	/* no more callbacks */
	int			 nosplice;	/* the kernel refused */
	int			 nomore;	/* ...or MSG_MORE */
	int			 want_w;	/* an owner's bytes wait: tell
						   when writable (N: 0) */
	int			 has_tmo;
	struct timeval		 tmo;
	struct event_base	*base;
	struct event		*rev;		/* NULL when bev */
	struct event		*wev;		/* while connecting or queued */
	struct evbuffer		*out;		/* only while bytes wait */
	int			 pipe[2];	/* spliced bytes wait, before
						   out's; -1 when none */
	size_t			 piped;
	struct pipepool		*pool;		/* the pipe's */
	struct bufferevent	*bev;		/* TLS: the stream */
	int			 eof;		/* bev, chan: EOF after input */
	size_t			 written;	/* bev: sent, not yet told */
	const struct xsock_chan_ops *cops;	/* a channel: its side */
	void			*chan;		/* ...NULL once it is gone */
	struct evbuffer		*in;		/* chan: while bytes wait */
	int			 shut;		/* chan: FIN once drained */
	xsock_cb		 cb;
	void			*arg;
};

static void	xsock_read_cb(evutil_socket_t, short, void *);
static void	xsock_write_cb(evutil_socket_t, short, void *);
static void	xsock_update(struct xsock *);
static size_t	xsock_write_flags(struct xsock *, struct evbuffer *, size_t,
		    int);
static void	xsock_drop_queue(struct xsock *);
static void	xsock_bev_readcb(struct bufferevent *, void *);
static void	xsock_bev_writecb(struct bufferevent *, void *);
static void	xsock_bev_eventcb(struct bufferevent *, short, void *);
static void	xsock_bev_outcb(struct evbuffer *,
		    const struct evbuffer_cb_info *, void *);
static void	xsock_chan_update(struct xsock *);
static void	xsock_chan_kick_r(struct xsock *);
static ssize_t	xsock_chan_read(struct xsock *, struct evbuffer *, size_t);
static size_t	xsock_chan_write_ref(struct xsock *, struct evbuffer *,
		    size_t, struct evbuffer *, size_t, size_t, size_t *);
static void	xsock_chan_rcb(evutil_socket_t, short, void *);
static void	xsock_chan_wcb(evutil_socket_t, short, void *);

/* Wrap FD; see xsock.h. */
struct xsock *
xsock_new(struct event_base *base, int fd, int flags, xsock_cb cb,
    void *arg)
{
	struct xsock	*x;

	x = xcalloc(1, sizeof(*x));
	x->fd = fd;
	x->pipe[0] = x->pipe[1] = -1;
	x->base = base;
	x->cb = cb;
	x->arg = arg;
	if ((x->rev = event_new(base, fd, EV_READ | EV_PERSIST, xsock_read_cb,
	    x)) == NULL)
		abort();
	if (flags & XSOCK_CONNECTING) {
		x->connecting = 1;
		x->dry = 1;
		xsock_update(x);
	}
	return (x);
}

/*
 * Take BEV (a TLS bufferevent, closing its socket on free, connected or
 * connecting: it reports XSOCK_CONNECTED when its BEV_EVENT_CONNECTED
 * comes).
 */
struct xsock *
xsock_new_bev(struct bufferevent *bev, xsock_cb cb, void *arg)
{
	struct xsock	*x;

	x = xcalloc(1, sizeof(*x));
	x->fd = -1;
	x->pipe[0] = x->pipe[1] = -1;
	x->bev = bev;
	x->base = bufferevent_get_base(bev);
	x->cb = cb;
	x->arg = arg;
	bufferevent_setcb(bev, xsock_bev_readcb, xsock_bev_writecb,
	    xsock_bev_eventcb, x);
	bufferevent_setwatermark(bev, EV_READ, 0, XSOCK_BEV_HIGH);
	bufferevent_disable(bev, EV_READ);
	bufferevent_enable(bev, EV_WRITE);
	if (evbuffer_add_cb(bufferevent_get_output(bev), xsock_bev_outcb,
	    x) == NULL)
		abort();
	return (x);
}

/* An xsock on channel CHAN; see xsock.h. */
struct xsock *
xsock_new_chan(struct event_base *base, const struct xsock_chan_ops *ops,
    void *chan)
{
	struct xsock	*x;

	x = xcalloc(1, sizeof(*x));
	x->fd = -1;
	x->pipe[0] = x->pipe[1] = -1;
	x->base = base;
	x->cops = ops;
	x->chan = chan;
	x->nosplice = 1;
	if ((x->rev = event_new(base, -1, 0, xsock_chan_rcb, x)) == NULL)
		abort();
	return (x);
}

/* The callback from now on. */
void
xsock_set_cb(struct xsock *x, xsock_cb cb, void *arg)
{
	x->cb = cb;
	x->arg = arg;
}

/* The TLS bufferevent under X, or NULL for a plain socket. */
struct bufferevent *
xsock_bev(const struct xsock *x)
{
	return (x->bev);
}

/* Stop all callbacks; the socket stays open until xsock_free. */
void
xsock_stop(struct xsock *x)
{
	x->stopped = 1;
	x->reading = 0;
	if (x->bev != NULL) {
		bufferevent_disable(x->bev, EV_READ | EV_WRITE);
		bufferevent_setcb(x->bev, NULL, NULL, NULL, NULL);
		return;
	}
	xsock_update(x);
}

/* Send a FIN; see xsock.h. */
void
xsock_shutdown(struct xsock *x)
{
	if (x->cops == NULL) {
		(void)shutdown(xsock_fd(x), SHUT_WR);
		return;
	}
	if (x->chan == NULL || x->shut)
		return;
	if (xsock_pending(x) > 0) {
		x->shut = 1;		/* once the queue has gone */
		xsock_update(x);
		return;
	}
	x->cops->shutdown(x->chan);
}

/* End with a reset; see xsock.h. */
void
xsock_reset(struct xsock *x)
{
	void	*chan;

	if (x->cops == NULL) {
		xaddr_reset(xsock_fd(x));
		return;
	}
	if ((chan = x->chan) == NULL)
		return;
	x->chan = NULL;
	x->failed = x->rerr = ECONNRESET;
	x->cops->close(chan, 1);
}

/* Close the socket and free X. */
void
xsock_free(struct xsock *x)
{
	if (x == NULL)
		return;
	if (x->bev != NULL) {
		evbuffer_remove_cb(bufferevent_get_output(x->bev),
		    xsock_bev_outcb, x);
		bufferevent_free(x->bev);
		free(x);
		return;
	}
	if (x->chan != NULL)
		x->cops->close(x->chan, 0);
	if (x->in != NULL)
		evbuffer_free(x->in);
	event_free(x->rev);
	if (x->wev != NULL)
		event_free(x->wev);
	xsock_drop_queue(x);
	if (x->fd != -1)
		close(x->fd);
	free(x);
}

/* The socket. */
int
xsock_fd(const struct xsock *x)
{
	return (x->bev != NULL ? bufferevent_getfd(x->bev) : x->fd);
}

/* Bytes queued for the socket. */
size_t
xsock_pending(const struct xsock *x)
{
	if (x->bev != NULL)
		return (evbuffer_get_length(bufferevent_get_output(x->bev)));
	return (x->piped + (x->out != NULL ? evbuffer_get_length(x->out) :
	    0));
}

/* The output buffer, made for bytes that must wait. */
static struct evbuffer *
xsock_outbuf(struct xsock *x)
{
	if (x->out == NULL && (x->out = evbuffer_new()) == NULL)
		abort();
	return (x->out);
}

/* Forget what is queued: the output buffer, and a pipe's bytes. */
static void
xsock_drop_queue(struct xsock *x)
{
	if (x->out != NULL) {
		evbuffer_free(x->out);
		x->out = NULL;
	}
	if (x->pipe[0] != -1) {
		close(x->pipe[0]);
		close(x->pipe[1]);
		x->pipe[0] = x->pipe[1] = -1;
	}
	x->piped = 0;
}

/*
 * Write what the pipe holds (it goes back to the pool once empty): as
 * write(2).
 */
static ssize_t
xsock_pipe_out(struct xsock *x)
{
	ssize_t	w;

	w = splice(x->pipe[0], NULL, x->fd, NULL, x->piped,
	    SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	if (w > 0 && (x->piped -= (size_t)w) == 0)
		pipepool_put(x->pool, x->pipe, 1);
	return (w);
}

/* Write what is queued: the pipe first, then the output buffer. */
static ssize_t
xsock_queue_out(struct xsock *x, size_t max)
{
	if (x->piped > 0)
		return (xsock_pipe_out(x));
	return (evbuffer_write_atmost(x->out, x->fd, (ev_ssize_t)max));
}

/* XSOCK_TIMEOUT after TV with nothing to read while reading (NULL: none). */
void
xsock_set_timeout(struct xsock *x, const struct timeval *tv)
{
	x->has_tmo = tv != NULL;
	if (tv != NULL)
		x->tmo = *tv;	/* a common timeout keeps its magic */
	if (x->bev != NULL) {
		bufferevent_set_timeouts(x->bev, tv, NULL);
		return;
	}
	x->r_tmo = -1;		/* re-add with the new timeout */
	if (x->cops != NULL)
		x->r_added = -1;
	xsock_update(x);
}

/* TLS: let the bufferevent read ahead at most N bytes (0: 256 KiB). */
void
xsock_set_read_high(struct xsock *x, size_t n)
{
	if (x->bev != NULL)
		bufferevent_setwatermark(x->bev, EV_READ, 0,
		    n > 0 ? n : XSOCK_BEV_HIGH);
}

/* TLS: report XSOCK_WRITTEN once the queue is down to N. */
void
xsock_set_lowat(struct xsock *x, size_t n)
{
	if (x->bev != NULL)
		bufferevent_setwatermark(x->bev, EV_WRITE, n, 0);
}

/* One non-blocking try to write what is queued (the loop is over). */
void
xsock_flush_now(struct xsock *x)
{
	if (x->bev != NULL)
		tls_bev_write_now(x->bev);
	else if (x->cops == NULL && xsock_pending(x) > 0 && !x->connecting &&
	    x->failed == 0) {
		if (x->piped > 0)
			(void)xsock_pipe_out(x);
		if (x->piped == 0 && x->out != NULL)
			(void)evbuffer_write_atmost(x->out, x->fd,
			    XSOCK_WRITE_MAX);
	}
}

/* Arm the read and write events for what X wants now. */
static void
xsock_update(struct xsock *x)
{
	int	r = x->reading && !x->stopped;
	int	tmo = r && x->has_tmo;
	int	w = !x->stopped && (x->connecting || xsock_pending(x) > 0 ||
		    x->want_w);

	if (x->cops != NULL) {
		xsock_chan_update(x);
		return;
	}
	if (r != x->r_added || tmo != x->r_tmo) {
		if (!r)
			event_del(x->rev);
		else if (!tmo && x->rev_tmo && x->r_added &&
		    event_pending(x->rev, EV_TIMEOUT, NULL)) {
			/*
			 * Pending with a timeout: event_remove_timer() takes
			 * it and the one it re-arms with, and the socket
			 * stays in epoll.
			 */
			if (event_remove_timer(x->rev) == -1)
				abort();
			x->rev_tmo = 0;
		} else if (!tmo && x->rev_tmo) {
			/*
			 * A persistent event keeps the last timeout it was
			 * added with and re-arms it at each activation, also
			 * once deleted: only a new event has none.
			 */
			event_free(x->rev);
			if ((x->rev = event_new(x->base, x->fd,
			    EV_READ | EV_PERSIST, xsock_read_cb, x)) == NULL)
				abort();
			x->rev_tmo = 0;
		}
		if (r && tmo)
			x->rev_tmo = 1;
		if (r && event_add(x->rev, tmo ? &x->tmo : NULL) == -1)
			abort();
		x->r_added = r;
		x->r_tmo = tmo;
	}
	if (w && x->wev == NULL) {
		x->wev = event_new(x->base, x->fd, EV_WRITE | EV_PERSIST,
		    xsock_write_cb, x);
		if (x->wev == NULL || event_add(x->wev, NULL) == -1)
			abort();
	} else if (!w && x->wev != NULL) {
		event_free(x->wev);
		x->wev = NULL;
	}
}

/* Ask for XSOCK_READABLE or not. */
void
xsock_read_enable(struct xsock *x, int on)
{
	x->reading = on != 0;
	if (x->bev != NULL) {
		if (on && !x->stopped)
			bufferevent_enable(x->bev, EV_READ);
		else
			bufferevent_disable(x->bev, EV_READ);
		return;
	}
	xsock_update(x);
	if (x->cops != NULL)
		xsock_chan_kick_r(x);
}

/*
 * Whether a plain socket's read may be tried: 0, or -1 and errno (the
 * error the kernel said once, or EAGAIN while dry or connecting).
 */
static int
xsock_read_ready(const struct xsock *x)
{
	if (x->rerr != 0) {
		errno = x->rerr;	/* the kernel says it once */
		return (-1);
	}
	if (x->dry || x->connecting) {
		errno = EAGAIN;
		return (-1);
	}
	return (0);
}

/* Read into DST; see xsock.h. */
ssize_t
xsock_read(struct xsock *x, struct evbuffer *dst, size_t max)
{
	struct evbuffer	*in;
	size_t		 have;
	ssize_t		 n;
	int		 dry, err;

	if (x->bev != NULL) {
		in = bufferevent_get_input(x->bev);
		if ((have = evbuffer_get_length(in)) > 0) {
			if (have > max)
				have = max;
			evbuffer_remove_buffer(in, dst, have);
			return ((ssize_t)have);
		}
		if (x->eof)
			return (0);
		errno = EAGAIN;
		return (-1);
	}
	if (x->cops != NULL)
		return (xsock_chan_read(x, dst, max));
	if (xsock_read_ready(x) != 0)
		return (-1);
	n = xbev_readv(dst, x->fd, max, XBEV_LIBEVENT_READ, &dry, &err);
	x->dry = dry;
	x->rerr = err;
	return (n);
}

/*
 * Write up to N bytes of SRC to the socket with MSG_MORE, which holds a
 * TCP segment back for what follows; as evbuffer_write_atmost().  A
 * socket that refuses the flag (or a descriptor that is no socket) is
 * written plainly from then on.
 */
static ev_ssize_t
xsock_send_more(struct xsock *x, struct evbuffer *src, size_t n)
{
	struct evbuffer_iovec	 v[XSOCK_MORE_IOV];
	struct iovec		 iov[XSOCK_MORE_IOV];
	struct msghdr		 m;
	ssize_t			 w;
	int			 i, nv;

	nv = evbuffer_peek(src, (ev_ssize_t)n, NULL, v, XSOCK_MORE_IOV);
	if (x->nomore || nv > XSOCK_MORE_IOV)
		return (evbuffer_write_atmost(src, x->fd, (ev_ssize_t)n));
	memset(&m, 0, sizeof(m));
	for (i = 0, w = 0; i < nv; i++) {	/* the peek covers N, or more */
		iov[i].iov_base = v[i].iov_base;
		iov[i].iov_len = v[i].iov_len;
		if ((size_t)w + iov[i].iov_len > n)
			iov[i].iov_len = n - (size_t)w;
		w += (ssize_t)iov[i].iov_len;
	}
	m.msg_iov = iov;
	m.msg_iovlen = (size_t)nv;
	if ((w = sendmsg(x->fd, &m, MSG_MORE | MSG_NOSIGNAL)) == -1 &&
	    (errno == ENOTSOCK || errno == EOPNOTSUPP)) {
		x->nomore = 1;
		return (evbuffer_write_atmost(src, x->fd, (ev_ssize_t)n));
	}
	if (w > 0)
		evbuffer_drain(src, (size_t)w);
	return (w);
}

/* Move N bytes of SRC to the socket; see xsock.h. */
size_t
xsock_write(struct xsock *x, struct evbuffer *src, size_t n)
{
	return (xsock_write_flags(x, src, n, 0));
}

/* As xsock_write(), with more to follow at once; see xsock.h. */
size_t
xsock_write_more(struct xsock *x, struct evbuffer *src, size_t n)
{
	return (xsock_write_flags(x, src, n, 1));
}

/* xsock_write(), MORE: MSG_MORE on a straight write. */
static size_t
xsock_write_flags(struct xsock *x, struct evbuffer *src, size_t n, int more)
{
	ev_ssize_t	w = 0;

	if (n > evbuffer_get_length(src))
		n = evbuffer_get_length(src);
	if (n == 0)
		return (0);
	if (x->bev != NULL) {
		/* At once if nothing waits (a record), else queued. */
		w = tls_bev_send(x->bev, src, n);
		return (w > 0 ? (size_t)w : 0);
	}
	if (x->cops != NULL)
		return (xsock_chan_write_ref(x, src, n, NULL, 0, 0, NULL));
	errno = 0;
	if (xsock_pending(x) == 0 && !x->connecting && !x->failed &&
	    (w = more ? xsock_send_more(x, src, n) :
	    evbuffer_write_atmost(src, x->fd, (ev_ssize_t)n)) < 0) {
		/*
		 * Kept for the loop to report: the kernel says a socket's
		 * error once, and a second write would only say EPIPE.
		 */
		if (errno != 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			x->failed = errno;
		w = 0;
	}
	if ((size_t)w < n) {
		evbuffer_remove_buffer(src, xsock_outbuf(x), n - (size_t)w);
		xsock_update(x);
	}
	return ((size_t)w);
}

/* Copy bytes OFF..OFF+N of BODY to the end of DST. */
static void
xsock_copy_from(struct evbuffer *dst, struct evbuffer *body, size_t off,
    size_t n)
{
	struct evbuffer_ptr	p;
	struct evbuffer_iovec	v;

	if (n == 0)
		return;
	if (evbuffer_ptr_set(body, &p, off, EVBUFFER_PTR_SET) != 0 ||
	    evbuffer_reserve_space(dst, (ev_ssize_t)n, &v, 1) != 1 ||
	    evbuffer_copyout_from(body, &p, v.iov_base, n) != (ev_ssize_t)n)
		abort();
	v.iov_len = n;
	evbuffer_commit_space(dst, &v, 1);
}

/* SRC, then N bytes of BODY from OFF, kept in place; see xsock.h. */
size_t
xsock_write_ref(struct xsock *x, struct evbuffer *src, struct evbuffer *body,
    size_t off, size_t n, size_t *taken)
{
	struct evbuffer_iovec	 v[XSOCK_REF_IOV];
	struct iovec		 iov[XSOCK_REF_IOV];
	struct evbuffer_ptr	 p;
	size_t			 hl, w = 0, left, bw, blen;
	ssize_t			 r;
	int			 nh = 0, nb = 0, i;

	blen = evbuffer_get_length(body);
	if (off > blen)
		off = blen;
	if (n > blen - off)
		n = blen - off;
	if (taken != NULL)
		*taken = 0;
	hl = evbuffer_get_length(src);
	if (x->cops != NULL)
		return (xsock_chan_write_ref(x, src, hl, body, off, n, taken));
	if (hl > 0)
		nh = evbuffer_peek(src, -1, NULL, v, XSOCK_REF_IOV / 2);
	if (x->bev != NULL || (taken == NULL && (xsock_pending(x) > 0 ||
	    x->connecting || x->failed != 0)) || nh > XSOCK_REF_IOV / 2 ||
	    (n > 0 && evbuffer_ptr_set(body, &p, off, EVBUFFER_PTR_SET) != 0) ||
	    (nb = n == 0 ? 0 : evbuffer_peek(body, (ev_ssize_t)n, &p,
	    v + nh, XSOCK_REF_IOV - nh)) > XSOCK_REF_IOV - nh) {
		/* Queued behind others, or too scattered: a copy. */
		xsock_copy_from(src, body, off, n);
		if (taken != NULL)
			*taken = n;
		return (xsock_write(x, src, hl + n));
	}
	if (xsock_pending(x) > 0 || x->connecting || x->failed != 0) {
		/* TAKEN: the header waits in the queue, the body with us. */
		return (xsock_write(x, src, hl));
	}
	for (i = 0, left = n; i < nh + nb; i++) {
		iov[i].iov_base = v[i].iov_base;
		iov[i].iov_len = v[i].iov_len;
		if (i >= nh) {
			if (iov[i].iov_len > left)
				iov[i].iov_len = left;
			left -= iov[i].iov_len;
		}
	}
	if ((r = writev(x->fd, iov, nh + nb)) >= 0)
		w = (size_t)r;
	else if (errno != EAGAIN && errno != EWOULDBLOCK)
		x->failed = errno;	/* for the loop to report */
	bw = w > hl ? w - hl : 0;
	if (taken != NULL)
		*taken = bw;
	if (w >= hl + n) {
		evbuffer_drain(src, hl);
		return (w);
	}
	if (w < hl) {
		evbuffer_drain(src, w);
		evbuffer_remove_buffer(src, xsock_outbuf(x), hl - w);
	} else
		evbuffer_drain(src, hl);
	if (taken == NULL)
		xsock_copy_from(xsock_outbuf(x), body, off + bw, n - bw);
	else if (xsock_pending(x) == 0)
		x->want_w = 1;	/* XSOCK_WRITTEN once it takes more */
	xsock_update(x);
	return (w);
}

/*
 * N bytes of the pipe whose read end is PR (which DST could not
 * splice) into DST's queue, to go as written bytes do.
 */
static void
xsock_unpipe_fd(struct xsock *dst, int pr, size_t n)
{
	pipepool_copyout(pr, dst->bev != NULL ?
	    bufferevent_get_output(dst->bev) : xsock_outbuf(dst), n);
}

/* The same, for pipe P. */
static void
xsock_unpipe(struct xsock *dst, int p[2], size_t n)
{
	xsock_unpipe_fd(dst, p[0], n);
}

/* Splice from the socket into a pipe; see xsock.h. */
ssize_t
xsock_read_pipe(struct xsock *x, int pw, size_t max)
{
	ssize_t	n;
	int	err;

	if (x->bev != NULL || x->nosplice) {
		errno = EBUSY;
		return (-1);
	}
	if (xsock_read_ready(x) != 0)
		return (-1);
	n = splice(x->fd, NULL, pw, NULL, max, SPLICE_F_MOVE |
	    SPLICE_F_NONBLOCK);
	if (n < 0) {
		err = errno;
		if (pipepool_refused(err)) {
			x->nosplice = 1;
			err = EBUSY;
		} else if (err != EAGAIN && err != EINTR)
			x->rerr = err;
		if (err != EBUSY && err != EINTR)
			x->dry = 1;
		errno = err;
		return (-1);
	}
	if ((size_t)n < max)
		x->dry = 1;
	return (n);
}

/* From a pipe to the socket; see xsock.h. */
int
xsock_write_pipe(struct xsock *x, int pr, size_t n, size_t *taken)
{
	ssize_t	w = 0;

	if (taken != NULL)
		*taken = 0;
	if (n == 0)
		return (0);
	if (x->bev != NULL || x->nosplice) {
		if (taken != NULL) {
			errno = EBUSY;
			return (-1);
		}
		xsock_unpipe_fd(x, pr, n);
		if (x->bev == NULL)
			xsock_update(x);
		if (x->cops != NULL)
			xsock_chan_writable(x);
		return (0);
	}
	if (xsock_pending(x) == 0 && !x->connecting && x->failed == 0) {
		w = splice(pr, NULL, x->fd, NULL, n, SPLICE_F_MOVE |
		    SPLICE_F_NONBLOCK);
		if (w < 0 && pipepool_refused(errno)) {
			x->nosplice = 1;
			return (xsock_write_pipe(x, pr, n, taken));
		}
		if (w < 0) {
			/* Kept for the loop to report, as a write's error. */
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR)
				x->failed = errno;
			w = 0;
		}
	}
	if (taken != NULL) {
		*taken = (size_t)w;
		if ((size_t)w < n && xsock_pending(x) == 0)
			x->want_w = 1;	/* XSOCK_WRITTEN once it takes more */
	} else if ((size_t)w < n)
		xsock_unpipe_fd(x, pr, n - (size_t)w);
	xsock_update(x);
	return (0);
}

/* Could SRC's bytes be spliced to DST; see xsock.h. */
int
xsock_splices(const struct xsock *src, const struct xsock *dst)
{
	return (src->bev == NULL && dst->bev == NULL && !src->nosplice &&
	    !dst->nosplice);
}

/* SRC's bytes to DST through a pipe; see xsock.h. */
ssize_t
xsock_splice(struct xsock *src, struct xsock *dst, size_t max,
    struct pipepool *pool, size_t *written)
{
	ssize_t	n, w;
	int	p[2], err, queued = dst->piped > 0;

	*written = 0;
	if (src->bev != NULL || dst->bev != NULL || src->nosplice ||
	    dst->nosplice || (dst->out != NULL &&
	    evbuffer_get_length(dst->out) > 0) || dst->connecting ||
	    dst->failed != 0) {
		errno = EBUSY;
		return (-1);
	}
	if (src->rerr != 0 || src->dry || src->connecting) {
		errno = src->rerr != 0 ? src->rerr : EAGAIN;
		return (-1);
	}
	if (queued) {
		/* Behind the bytes the pipe holds already. */
		p[0] = dst->pipe[0];
		p[1] = dst->pipe[1];
	} else if (pipepool_get(pool, p) == -1) {
		errno = EBUSY;
		return (-1);
	}
	n = splice(src->fd, NULL, p[1], NULL, max, SPLICE_F_MOVE |
	    SPLICE_F_NONBLOCK);
	if (n <= 0) {
		err = n == 0 ? 0 : errno;
		if (!queued)
			pipepool_put(pool, p, 1);
		if (n < 0 && pipepool_refused(err)) {
			src->nosplice = 1;
			err = EBUSY;
		} else if (n < 0 && err == EAGAIN && queued)
			err = EBUSY;	/* the pipe may be full: copy */
		else if (n < 0 && err != EAGAIN && err != EINTR)
			src->rerr = err;	/* the kernel says it once */
		if (err != EBUSY && err != EINTR)
			src->dry = 1;
		errno = err;
		return (n == 0 ? 0 : -1);
	}
	if ((size_t)n < max)
		src->dry = 1;
	if (queued) {
		/* DST was full a moment ago: its write event sends them. */
		dst->piped += (size_t)n;
		return (n);
	}
	w = splice(p[0], NULL, dst->fd, NULL, (size_t)n, SPLICE_F_MOVE |
	    SPLICE_F_NONBLOCK);
	if (w < 0) {
		if (pipepool_refused(errno)) {
			/* Taken from SRC already: they go as a copy. */
			dst->nosplice = 1;
			xsock_unpipe(dst, p, (size_t)n);
			pipepool_put(pool, p, 1);
			xsock_update(dst);
			return (n);
		}
		/* Kept for the loop to report, as a write's error. */
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			dst->failed = errno;
		w = 0;
	}
	*written = (size_t)w;
	if (w == n) {
		pipepool_put(pool, p, 1);
		return (n);
	}
	dst->pipe[0] = p[0];
	dst->pipe[1] = p[1];
	dst->piped = (size_t)(n - w);
	dst->pool = pool;
	xsock_update(dst);
	return (n);
}

/* Readable, or no progress for the timeout. */
static void
xsock_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct xsock	*x = arg;

	if (what == EV_TIMEOUT) {
		x->cb(x, XSOCK_TIMEOUT, 0, x->arg);
		return;
	}
	x->dry = 0;
	x->cb(x, XSOCK_READABLE, 0, x->arg);
}

/* The socket takes more: a connect completed, or queued bytes go. */
static void
xsock_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct xsock	*x = arg;
	socklen_t	 len = sizeof(int);
	ev_ssize_t	 w;
	int		 err = 0, n;

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
		/* Still dry: the read event says when the peer has spoken. */
		x->connecting = 0;
		xsock_update(x);
		x->cb(x, XSOCK_CONNECTED, 0, x->arg);
		return;
	}
	if (xsock_pending(x) == 0 && x->failed == 0) {
		/* The owner's bytes may go now (xsock_write_ref, TAKEN). */
		n = x->want_w;
		x->want_w = 0;
		xsock_update(x);
		if (n)
			x->cb(x, XSOCK_WRITTEN, 0, x->arg);
		return;
	}
	if (x->failed != 0) {
		w = -1;
		errno = x->failed;
	} else
		w = xsock_queue_out(x, XSOCK_WRITE_MAX);
	if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (w <= 0) {
		err = w < 0 ? errno : EPIPE;
		/* Nothing more will go: stop asking, and say so once. */
		xsock_drop_queue(x);
		x->failed = err;
		x->reading = 0;
		x->want_w = 0;
		xsock_update(x);
		x->cb(x, XSOCK_ERROR, (size_t)err, x->arg);
		return;
	}
	if (xsock_pending(x) == 0) {
		/* Idle again: no queue, no write interest. */
		xsock_drop_queue(x);
		xsock_update(x);
	}
	x->cb(x, XSOCK_WRITTEN, (size_t)w, x->arg);
}

/* TLS: the bufferevent read some. */
static void
xsock_bev_readcb(struct bufferevent *bev, void *arg)
{
	struct xsock	*x = arg;

	x->cb(x, XSOCK_READABLE, 0, x->arg);
}

/* TLS: count what the bufferevent's output lost to the socket. */
static void
xsock_bev_outcb(struct evbuffer *buf, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct xsock	*x = arg;

	x->written += info->n_deleted;
}

/* TLS: the output is down to the low mark. */
static void
xsock_bev_writecb(struct bufferevent *bev, void *arg)
{
	struct xsock	*x = arg;
	size_t		 n = x->written;

	x->written = 0;
	x->cb(x, XSOCK_WRITTEN, n, x->arg);
}

/* TLS: connected (handshake done), EOF, error or timeout. */
static void
xsock_bev_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct xsock	*x = arg;
	int		 err = EVUTIL_SOCKET_ERROR(), soerr = 0;
	socklen_t	 len = sizeof(soerr);

	/*
	 * With dirty shutdowns allowed, libevent reports a socket error
	 * under TLS (a refused connect, a reset) as EOF: the socket's own
	 * error says which it was.
	 */
	if ((what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) &&
	    getsockopt(bufferevent_getfd(bev), SOL_SOCKET, SO_ERROR, &soerr,
	    &len) == 0 && soerr != 0) {
		what = BEV_EVENT_ERROR;
		err = soerr;
	}
	if (what & BEV_EVENT_CONNECTED)
		x->cb(x, XSOCK_CONNECTED, 0, x->arg);
	else if (what & BEV_EVENT_TIMEOUT)
		x->cb(x, XSOCK_TIMEOUT, 0, x->arg);
	else if (what & BEV_EVENT_EOF) {
		x->eof = 1;
		x->cb(x, XSOCK_READABLE, 0, x->arg);
	} else
		x->cb(x, XSOCK_ERROR, (size_t)err, x->arg);
}

/* --- channels ------------------------------------------------------ */

/* Whether a read would say something: bytes, EOF or the error. */
static int
xsock_chan_readable(const struct xsock *x)
{
	return ((x->in != NULL && evbuffer_get_length(x->in) > 0) ||
	    x->eof || x->rerr != 0);
}

/*
 * Whether the write event has something to do when the channel takes
 * more: queued bytes, an owner's (xsock_write_ref's TAKEN), a FIN.
 */
static int
xsock_chan_waits(const struct xsock *x)
{
	return (!x->stopped && (xsock_pending(x) > 0 || x->want_w ||
	    x->shut));
}

/*
 * A channel's events for what X wants now: the read event's timer
 * while reads are wanted (a fired event is no longer pending, and is
 * added again), the write event while something waits.
 */
static void
xsock_chan_update(struct xsock *x)
{
	int	r = x->reading && !x->stopped;
	int	tmo = r && x->has_tmo, was;

	if (r != x->r_added || tmo != x->r_tmo) {
		/*
		 * An activation pending (added, or not known: a new timeout)
		 * goes with the event: made again, as a socket's level would.
		 */
		was = x->r_added != 0;
		event_del(x->rev);
		if (tmo && event_add(x->rev, &x->tmo) == -1)
			abort();
		x->r_added = r;
		x->r_tmo = tmo;
		if (was)
			xsock_chan_kick_r(x);
	}
	if (xsock_chan_waits(x) && x->wev == NULL) {
		if ((x->wev = event_new(x->base, -1, 0, xsock_chan_wcb, x)) ==
		    NULL)
			abort();
	} else if (!xsock_chan_waits(x) && x->wev != NULL) {
		event_free(x->wev);
		x->wev = NULL;
	}
}

/* XSOCK_READABLE from the loop, if reads are wanted and one would say. */
static void
xsock_chan_kick_r(struct xsock *x)
{
	if (x->reading && !x->stopped && xsock_chan_readable(x))
		event_active(x->rev, EV_READ, 0);
}

/* A channel's read; as xsock_read(). */
static ssize_t
xsock_chan_read(struct xsock *x, struct evbuffer *dst, size_t max)
{
	size_t	have = x->in != NULL ? evbuffer_get_length(x->in) : 0;

	if (have == 0) {
		errno = x->rerr != 0 ? x->rerr : EAGAIN;
		return (x->eof && x->rerr == 0 ? 0 : -1);
	}
	if (have > max)
		have = max;
	evbuffer_remove_buffer(x->in, dst, have);
	if (evbuffer_get_length(x->in) == 0) {
		evbuffer_free(x->in);	/* an idle channel keeps none */
		x->in = NULL;
	} else
		xsock_chan_kick_r(x);	/* as a socket's level would */
	if (x->chan != NULL)
		x->cops->consumed(x->chan, have);
	return ((ssize_t)have);
}

/*
 * A channel's xsock_write_ref() (and xsock_write(), BODY NULL): HL
 * bytes of SRC and N of BODY from OFF go to the channel in one call
 * (its frames copy them, BODY stays as it is) as far as its window
 * allows; then as a plain socket's.
 */
static size_t
xsock_chan_write_ref(struct xsock *x, struct evbuffer *src, size_t hl,
    struct evbuffer *body, size_t off, size_t n, size_t *taken)
{
	size_t	w = 0, bw;

	if (xsock_pending(x) == 0 && x->chan != NULL && !x->shut)
		w = x->cops->send(x->chan, src, hl, body, off, n);
	if (w < hl)
		evbuffer_remove_buffer(src, xsock_outbuf(x), hl - w);
	bw = w > hl ? w - hl : 0;
	if (taken != NULL) {
		*taken = bw;
		if (bw < n && xsock_pending(x) == 0)
			x->want_w = 1;	/* XSOCK_WRITTEN once it takes more */
	} else if (bw < n)
		xsock_copy_from(xsock_outbuf(x), body, off + bw, n - bw);
	xsock_update(x);
	if (x->failed != 0)
		xsock_chan_writable(x);		/* to say so */
	return (w);
}

/* Input, EOF or the channel's end; or the timeout. */
static void
xsock_chan_rcb(evutil_socket_t fd, short what, void *arg)
{
	struct xsock	*x = arg;
	int		 tmo = !(what & EV_READ) && !xsock_chan_readable(x);

	x->r_added = 0;		/* fired: neither active nor pending */
	xsock_chan_update(x);
	if (x->cb != NULL)
		x->cb(x, tmo ? XSOCK_TIMEOUT : XSOCK_READABLE, 0, x->arg);
}

/* The channel takes more (or is gone): send what waits. */
static void
xsock_chan_wcb(evutil_socket_t fd, short what, void *arg)
{
	struct xsock	*x = arg;
	size_t		 w = 0;
	int		 err, told;

	if (x->failed != 0) {
		/* Nothing more will go: say so once. */
		err = x->failed;
		xsock_drop_queue(x);
		x->reading = 0;
		x->want_w = x->shut = 0;
		xsock_chan_update(x);
		if (x->cb != NULL)
			x->cb(x, XSOCK_ERROR, (size_t)err, x->arg);
		return;
	}
	if (x->out != NULL && evbuffer_get_length(x->out) > 0)
		w = x->cops->send(x->chan, x->out, evbuffer_get_length(x->out),
		    NULL, 0, 0);
	if (x->out != NULL && evbuffer_get_length(x->out) == 0) {
		evbuffer_free(x->out);
		x->out = NULL;
	}
	told = xsock_pending(x) == 0 && x->want_w;
	if (xsock_pending(x) == 0) {
		x->want_w = 0;
		if (x->shut) {
			x->shut = 0;
			x->cops->shutdown(x->chan);	/* may detach X */
		}
	}
	xsock_chan_update(x);
	if ((w > 0 || told) && x->cb != NULL)
		x->cb(x, XSOCK_WRITTEN, w, x->arg);
}

/* The channel moved N bytes of SRC in. */
void
xsock_chan_input(struct xsock *x, struct evbuffer *src, size_t n)
{
	if (x->in == NULL && (x->in = evbuffer_new()) == NULL)
		abort();
	evbuffer_remove_buffer(src, x->in, n);
	xsock_chan_kick_r(x);
}

/* The far end sent its last byte. */
void
xsock_chan_eof(struct xsock *x)
{
	x->eof = 1;
	xsock_chan_kick_r(x);
}

/* The channel takes more: what waits goes from the loop. */
void
xsock_chan_writable(struct xsock *x)
{
	if (!xsock_chan_waits(x))
		return;
	xsock_chan_update(x);
	event_active(x->wev, EV_WRITE, 0);
}

/* The channel is gone, with ERR (0: it ended both ways). */
void
xsock_chan_detach(struct xsock *x, int err)
{
	x->chan = NULL;
	if (err != 0)
		x->rerr = err;
	else
		x->eof = 1;
	if (x->failed == 0)
		x->failed = err != 0 ? err : EPIPE;
	xsock_chan_kick_r(x);
	xsock_chan_writable(x);
}
