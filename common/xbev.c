/*
 * xbev.c -- larger reads for socket bufferevents, and the readv loop
 * under them and under xsock (xbev.h).
 *
 * libevent 2.1 reads at most 4 KiB per wakeup (EVBUFFER_MAX_READ in
 * buffer.c, whatever bufferevent_set_max_single_read() says): a loop
 * turn, an ioctl(FIONREAD) and a readv for every 4 KiB of a bulk
 * stream.  A read callback calls xbev_read_more() first and handles
 * what is then in the input: the same bytes, in 64 KiB reads.  The
 * input's end is frozen by libevent between its own reads; we unfreeze
 * it the way its read callback does.
 *
 * libevent reads what FIONREAD says, up to 4 KiB: when the input holds
 * less, that read emptied the socket, and one more read() would only
 * say EAGAIN -- a syscall per small message per hop, which is what a
 * ping-pong pays for.  So we read on only from an input of 4 KiB or
 * more.  (The session ends' sockets are xsocks, which read and write
 * without bufferevents: xsock.c.)
 */
#include <sys/types.h>
#include <sys/uio.h>

#include <errno.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/bufferevent.h>

#include "tls.h"
#include "xbev.h"

/* Read into BUF from FD; see xbev.h. */
ssize_t
xbev_readv(struct evbuffer *buf, int fd, size_t max, size_t first,
    int *dry, int *err)
{
	struct evbuffer_iovec	 v[2];
	struct iovec		 iov[2];
	size_t			 want, left, total = 0;
	ssize_t			 n;
	int			 nv, i;

	*dry = 0;
	*err = 0;
	if (max == 0) {
		errno = ENOBUFS;	/* asked for nothing: not an EOF */
		return (-1);
	}
	for (;;) {
		want = total == 0 && first < XBEV_READ ? first : XBEV_READ;
		if (want > max - total)
			want = max - total;
		if ((nv = evbuffer_reserve_space(buf, (ev_ssize_t)want, v, 2)) <
		    1) {
			errno = ENOMEM;
			n = -1;
			break;
		}
		/* The space may be larger than asked: read no more. */
		for (i = 0, left = want; i < nv; i++) {
			iov[i].iov_base = v[i].iov_base;
			iov[i].iov_len = v[i].iov_len < left ? v[i].iov_len :
			    left;
			left -= iov[i].iov_len;
		}
		if ((n = readv(fd, iov, nv)) <= 0) {
			evbuffer_commit_space(buf, v, 0);
			break;
		}
		for (i = 0, left = (size_t)n; i < nv && left > 0; i++) {
			if (v[i].iov_len > left)
				v[i].iov_len = left;
			left -= v[i].iov_len;
		}
		evbuffer_commit_space(buf, v, i);	/* the vectors filled */
		total += (size_t)n;
		if ((size_t)n < want)
			*dry = 1;	/* a short read emptied the socket */
		if ((size_t)n < want || total == max)
			return ((ssize_t)total);
	}
	if (n == 0 || errno == EAGAIN || errno == EWOULDBLOCK)
		*dry = 1;
	else if (total > 0)
		*err = errno;	/* the kernel will not say it again */
	if (total > 0)
		return ((ssize_t)total);	/* EOF stays; *err: kept */
	return (n);
}

/* Read ahead into BEV's input; see xbev.h. */
size_t
xbev_read_more(struct bufferevent *bev, size_t max)
{
	struct evbuffer		*in = bufferevent_get_input(bev);
	size_t			 high, have;
	ssize_t			 n;
	int			 fd, dry, err;

	if (tls_bev_is_tls(bev) || (fd = bufferevent_getfd(bev)) == -1 ||
	    (have = evbuffer_get_length(in)) < XBEV_LIBEVENT_READ)
		return (0);
	bufferevent_getwatermark(bev, EV_READ, NULL, &high);
	if (high == 0 || high > max)
		high = max;
	if (have >= high)
		return (0);
	evbuffer_unfreeze(in, 0);
	/*
	 * EOF and errors are left for libevent's next read to report (an
	 * error behind data reads as EOF then: the forwarder ends the
	 * other side with a FIN, and the session ends above it tell).
	 */
	n = xbev_readv(in, fd, high - have, XBEV_READ, &dry, &err);
	evbuffer_freeze(in, 0);
	return (n > 0 ? (size_t)n : 0);
}
