/*
 * xsock.h -- a plain stream socket on the event loop, for the many
 * long-lived, mostly idle streams a daemon holds (a session end's local
 * stream).  A bufferevent costs about 1.1 KiB even idle (its private
 * part, two evbuffers, callbacks and watermarks); an xsock is a read
 * event, a write event made on first use and an output buffer that
 * exists only while bytes wait for the socket.  Reads go straight into
 * the caller's buffer, writes straight to the socket while nothing
 * waits.  A TLS stream is a bufferevent under the same interface
 * (xsock_new_bev), at a bufferevent's cost; a stream that lives in this
 * process (a mesh link's, mux.c) is a channel under it (xsock_new_chan):
 * no descriptor, no system call, its bytes moved between buffers.
 */
#ifndef VRELAY_XSOCK_H
#define VRELAY_XSOCK_H

#include <sys/types.h>

#include <stddef.h>

struct event_base;
struct evbuffer;
struct pipepool;
struct xsock;

/* What the callback is told, with its argument N. */
enum xsock_event {
	XSOCK_READABLE,		/* bytes or EOF to read (N: 0) */
	XSOCK_WRITTEN,		/* N queued bytes went to the socket */
	XSOCK_CONNECTED,	/* the connect completed (N: 0) */
	XSOCK_ERROR,		/* the socket failed (N: the errno) */
	XSOCK_TIMEOUT		/* nothing to read for the timeout (N: 0) */
};

/*
 * The one callback of an xsock.  It may free the xsock: nothing touches
 * it after the callback returns.
 */
typedef void (*xsock_cb)(struct xsock *, enum xsock_event, size_t, void *);

#define XSOCK_CONNECTING	0x1	/* xsock_new: a connect is under way */

struct bufferevent;
struct timeval;

/*
 * A channel: the far side of an xsock that is no socket.  Each is
 * called with the channel's CHAN, never from inside an xsock callback
 * that it could reach again.
 */
struct xsock_chan_ops {
	/*
	 * Take up to N bytes from the front of SRC (drained), then up to
	 * BN bytes of BODY from offset OFF (left in place; BODY may be
	 * NULL with BN 0): the bytes taken, of SRC's first.
	 */
	size_t	(*send)(void *, struct evbuffer *, size_t, struct evbuffer *,
		    size_t, size_t);
	/* The owner read N bytes of what the channel gave it. */
	void	(*consumed)(void *, size_t);
	/* Nothing more will be sent (a socket's shutdown(SHUT_WR)). */
	void	(*shutdown)(void *);
	/*
	 * The owner let go: RESET as a socket closed with SO_LINGER 0,
	 * else as one closed.  The channel hears nothing more of it.
	 */
	void	(*close)(void *, int);
};

/* Take FD (nonblocking; closed by xsock_free). */
struct xsock	*xsock_new(struct event_base *, int, int, xsock_cb, void *);
/*
 * Take a TLS bufferevent (made with BEV_OPT_CLOSE_ON_FREE, connected or
 * connecting): XSOCK_CONNECTED when its BEV_EVENT_CONNECTED comes, EOF
 * as for a socket once its input is read.
 */
struct xsock	*xsock_new_bev(struct bufferevent *, xsock_cb, void *);
/*
 * An xsock on channel CHAN (connected): its callback is set with
 * xsock_set_cb() before the loop runs again.
 */
struct xsock	*xsock_new_chan(struct event_base *,
		    const struct xsock_chan_ops *, void *);
/* The callback from now on. */
void		 xsock_set_cb(struct xsock *, xsock_cb, void *);
/*
 * The channel's side: N bytes of SRC are X's to read (moved), the far
 * end sent its last, the channel takes bytes again, and the channel is
 * gone (ERR: the errno its reads and writes now give; 0 for one that
 * ended both ways: reads give EOF after the input, writes EPIPE).
 */
void		 xsock_chan_input(struct xsock *, struct evbuffer *, size_t);
void		 xsock_chan_eof(struct xsock *);
void		 xsock_chan_writable(struct xsock *);
void		 xsock_chan_detach(struct xsock *, int);
/*
 * Send a FIN: shutdown(SHUT_WR) on a socket (the caller waits for its
 * queue to drain first); a channel sends it once its queue has.
 */
void		 xsock_shutdown(struct xsock *);
/* End with a reset when freed (SO_LINGER 0): a channel's RST now. */
void		 xsock_reset(struct xsock *);
void		 xsock_free(struct xsock *);
/* No more callbacks; the socket stays open until xsock_free. */
void		 xsock_stop(struct xsock *);
/* The socket, or -1 for a channel. */
int		 xsock_fd(const struct xsock *);
/* The TLS bufferevent, or NULL for a plain socket. */
struct bufferevent *xsock_bev(const struct xsock *);
/*
 * XSOCK_TIMEOUT when nothing is readable for TV while reads are wanted
 * (NULL: none).  TV may be a libevent common timeout.
 */
void		 xsock_set_timeout(struct xsock *, const struct timeval *);
/*
 * TLS: the bufferevent reads ahead at most N bytes (0: its default, 256
 * KiB); a plain xsock reads only what xsock_read asks for.
 */
void		 xsock_set_read_high(struct xsock *, size_t);
/* TLS: XSOCK_WRITTEN once the queue has drained to N (plain: always). */
void		 xsock_set_lowat(struct xsock *, size_t);
/* One non-blocking try to write what is queued (after the loop). */
void		 xsock_flush_now(struct xsock *);
/* Ask for XSOCK_READABLE (nonzero) or not (zero). */
void		 xsock_read_enable(struct xsock *, int);
/*
 * Read into DST, in reads of up to 64 KiB, until MAX bytes or the socket
 * has no more.  As read(2): the bytes read, 0 at EOF, -1 and errno
 * (EAGAIN: nothing now, and no syscall is made while the socket has not
 * been readable since it last ran dry).  An error met after some bytes
 * is returned by the next call, and every one after.
 */
ssize_t		 xsock_read(struct xsock *, struct evbuffer *, size_t);
/*
 * Move N bytes from the front of SRC to the socket: written at once
 * while nothing is queued and the socket is connected, the rest queued
 * (XSOCK_WRITTEN reports them as they go).  Returns the bytes written
 * at once.  A write error is reported by XSOCK_ERROR from the loop,
 * never from here, with the errno the socket gave.  After XSOCK_ERROR
 * the socket is done: writes only report the error again.
 */
size_t		 xsock_write(struct xsock *, struct evbuffer *, size_t);
/*
 * As xsock_write(), for bytes that more follow at once (a frame header
 * before its body from xsock_write_pipe()): a TCP socket holds them
 * back (MSG_MORE) to go in one segment with what follows, not alone.
 */
size_t		 xsock_write_more(struct xsock *, struct evbuffer *, size_t);
/*
 * As xsock_write() of all of SRC (which may be empty) followed by N
 * bytes of BODY from offset OFF, but BODY is left as it is (its owner
 * keeps those bytes): on a plain socket with nothing queued they go out
 * in one writev straight from BODY's memory.  TAKEN NULL: what the socket
 * does not take of BODY is copied into the queue.  Else *TAKEN says how
 * much of BODY the socket took, the rest is not sent, and the owner
 * sends it (before anything else) once XSOCK_WRITTEN comes, with N 0
 * when nothing was queued; with bytes queued ahead none of BODY goes.
 * A TLS stream takes all of BODY, copied.  Returns the bytes written at
 * once (of SRC and BODY).
 */
size_t		 xsock_write_ref(struct xsock *, struct evbuffer *,
		    struct evbuffer *, size_t, size_t, size_t *);
/*
 * Move up to MAX bytes from SRC's socket to DST's with splice(2),
 * through a pipe from POOL, never through user space.  Returns the
 * bytes taken from SRC as xsock_read() does (0 at EOF; -1 and errno,
 * EAGAIN: nothing now); *WRITTEN says how many of them DST took at
 * once, and DST keeps the rest queued (in the pipe; XSOCK_WRITTEN
 * reports them as they go); bytes spliced while DST's queue is only
 * spliced bytes join it.  -1 and EBUSY when it cannot be done now or
 * ever: a TLS stream, written bytes queued for DST, DST connecting or
 * failed, a full pipe or none to be had, or a kernel that would not
 * splice one of the two sockets (remembered): the caller copies
 * instead.  A write error is reported as xsock_write's are.
 */
ssize_t		 xsock_splice(struct xsock *, struct xsock *, size_t,
		    struct pipepool *, size_t *);
/*
 * Move up to MAX bytes from the socket into the pipe whose write end is
 * PW with splice(2), as xsock_read() reads: 0 at EOF, -1 and errno
 * (EAGAIN: nothing now, which is also what a full pipe says; EBUSY: a
 * TLS stream, or a socket the kernel will not splice, remembered: read
 * instead).
 */
ssize_t		 xsock_read_pipe(struct xsock *, int, size_t);
/*
 * Move N bytes from the pipe whose read end is PR to the socket with
 * splice(2), straight when nothing is queued.  With TAKEN, *TAKEN says
 * how many went, the rest stays in the pipe and XSOCK_WRITTEN with N 0
 * says when the socket takes more; -1 and EBUSY on a TLS stream or a
 * socket the kernel will not splice (remembered), with nothing taken.
 * Without, what does not go now is copied into the queue.  A write
 * error is reported as xsock_write's are.  Returns 0.
 */
int		 xsock_write_pipe(struct xsock *, int, size_t, size_t *);
/*
 * Whether xsock_splice() could move SRC's bytes to DST once DST's queue
 * has drained: both plain sockets the kernel has not refused.
 */
int		 xsock_splices(const struct xsock *, const struct xsock *);
/* Bytes queued for the socket (spliced ones included). */
size_t		 xsock_pending(const struct xsock *);

#endif
