/*
 * mux.c -- a mesh link: many streams over one connection (mux_proto.h).
 *
 * A stream the peer opens is a socketpair: the user holds one end and
 * uses it as any socket; the mux holds the other and moves bytes
 * between it and the link.  A stream this end opens is a channel (an
 * xsock with no socket, xsock_new_chan): a DATA payload moves into the
 * xsock's input, the user's writes come straight to mux_chan_send()
 * (the same DATA frames, the same credit and mark as a socket's reads),
 * and what the user reads is given back as a socket's writes are; no
 * descriptor, no system call, no copy through a kernel buffer.  Its
 * FIN and RST are the xsock's shutdown and reset, its close a socket's
 * close (a FIN, or RST with bytes unread).
 *
 * Sending: a stream's socket is read only while the stream
 * has credit (the peer's window) and the link's output is under
 * MUX_LINK_HIGH; a read goes straight into the link's output, behind
 * its DATA header (evbuffer_reserve_space).  A stream that finds the
 * link full waits on a list, and the link's drain re-arms the list in
 * order, so bulk streams take turns.  Receiving: a DATA payload moves
 * (chains, no copy) into the stream's pending buffer, which is written
 * to its socket; what the socket took is given back to the peer as
 * WINDOW in quarters of MUX_WINDOW.  DATA past the window is the
 * peer's fault: the link ends.  A socket's EOF becomes FIN, a FIN a
 * half-close (shutdown) once the pending bytes are written, a socket
 * error or an RST ends the stream both ways (close: the user reads EOF
 * or ECONNRESET).
 *
 * The link's end (its EOF or error, a malformed frame, the keepalive)
 * closes every stream's socket at once and tells the owner from a
 * zero timer, outside the link's callbacks, so the owner may free the
 * mux there.
 *
 * A frame that finds the link's output empty goes to the stage, which
 * is written (tls_bev_send) once this turn of the loop has run every
 * callback that was ready: a reply goes out in the turn that caused
 * it, where the bufferevent would arm its write event and write on the
 * next turn (two epoll_ctl and a wake-up per message), and a burst (a
 * thousand resumes after a vMotion) still leaves in few records and
 * writes, not one each.  Otherwise a frame queues, in order, behind.
 */
#include <sys/ioctl.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "mux.h"
#include "mux_proto.h"
#include "tls.h"
#include "xmalloc.h"
#include "xsock.h"
#include "xtime.h"
#include "tree.h"

#define MUX_LINK_HIGH	(1024 * 1024)	/* link output: streams wait */
#define MUX_LINK_MAX	(16 * 1024 * 1024) /* a peer that does not read */
#define MUX_GIVE_BACK	(MUX_WINDOW / 4)
#define MUX_STREAMS_MAX	65536		/* per link, at once */

enum mux_state {
	MUX_ST_PREAMBLE = 0,	/* waiting for the peer's preamble */
	MUX_ST_UP,
	MUX_ST_DEAD,		/* the link is gone; closed() comes */
};

/* Stream flags. */
#define MUX_SF_EOF	0x01	/* the socket said EOF: FIN sent */
#define MUX_SF_FIN	0x02	/* the peer's FIN: shut down when written */
#define MUX_SF_SHUT	0x04	/* shutdown(SHUT_WR) done */
#define MUX_SF_STALLED	0x08	/* on the list: waits for the link */

struct mux_stream {
	struct mux		*m;
	uint32_t		 id;
	int			 fd;		/* our end of the socketpair;
						   -1: a channel */
	struct xsock		*x;		/* the user's channel; NULL
						   once the user let go */
	int			 adopted;	/* FD is the user's far side */
	struct event		*ev;
	short			 armed;		/* EV_READ, EV_WRITE as added */
	unsigned		 flags;
	uint32_t		 credit;	/* we may send this much more */
	uint32_t		 held;		/* received, not given back */
	uint32_t		 written;	/* of that, in the socket */
	uint32_t		 counted;	/* adopted: bytes at out's
						   head given back already */
	struct evbuffer		*out;		/* for the socket; NULL: none */
	RB_ENTRY(mux_stream)	 entry;
	TAILQ_ENTRY(mux_stream)	 stall;
};
RB_HEAD(mux_tree, mux_stream);
TAILQ_HEAD(mux_stall, mux_stream);

struct mux {
	struct bufferevent	*link;
	struct evbuffer		*stage;		/* frames for this turn's end */
	struct event		*flush_ev;	/* writes the stage */
	struct event_base	*base;
	int			 dialler;
	enum mux_state		 state;
	struct mux_cb		 cb;
	void			*arg;
	struct mux_tree		 streams;
	size_t			 nstreams;
	struct mux_stall	 stalled;
	uint32_t		 next_id;	/* dialler: the next to open */
	uint32_t		 peer_id;	/* acceptor: the last opened */
	struct event		*closed_ev;	/* closed() from the loop */
	struct event		*ka_ev;
	long long		 ka_ms;
	long long		 rx_ms;		/* last frame read */
	int			 pinged;
	char			 why[256];
	uint64_t		 opened, refused, adopted;
	uint64_t		 frames_in, frames_out;
	uint64_t		 bytes_in, bytes_out;
};

static int
mux_stream_cmp(const struct mux_stream *a, const struct mux_stream *b)
{
	return (a->id < b->id ? -1 : a->id > b->id);
}
RB_GENERATE_STATIC(mux_tree, mux_stream, entry, mux_stream_cmp);

static void	mux_stream_cb(evutil_socket_t, short, void *);
static void	mux_fail(struct mux *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));

const char *
mux_strerror(int e)
{
	static const char *const msgs[] = {
		"ok",
		"the mesh link is not up",
		"system error",
		"the mesh link's stream ids are used up",
		"the stream has bytes waiting",
		"no such open stream",
	};

	if (e > 0 || -e >= (int)(sizeof(msgs) / sizeof(msgs[0])))
		return ("unknown mux error");
	return (msgs[-e]);
}

static const char *
mux_strstate(enum mux_state st)
{
	static const char *const names[] = { "preamble", "up", "dead" };

	return (names[st]);
}

static void
mux_put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static uint32_t
mux_get32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3]);
}

/* Fill a frame header. */
static void
mux_hdr(uint8_t *h, enum mux_type type, uint32_t id, uint32_t arg)
{
	h[0] = type;
	h[1] = h[2] = h[3] = 0;
	mux_put32(h + 4, id);
	mux_put32(h + 8, arg);
}

static void	mux_unstall(struct mux *);

/*
 * The end of the loop's turn: write what the stage holds.  Streams the
 * stage stalled read again if the link took it: a write made here at
 * once never reaches the bufferevent, whose drain would wake them.
 */
static void
mux_flush_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct mux	*m = arg;

	if (m->state == MUX_ST_DEAD)
		return;
	if (tls_bev_send(m->link, m->stage,
	    evbuffer_get_length(m->stage)) == -1) {
		mux_fail(m, "out of memory");
		return;
	}
	if (!TAILQ_EMPTY(&m->stalled) && evbuffer_get_length(
	    bufferevent_get_output(m->link)) <= MUX_LINK_HIGH / 2)
		mux_unstall(m);
}

/*
 * Where the next frame goes: the stage while it holds frames or the
 * link's output is empty (then written at the turn's end), else the
 * output, behind what waits there.
 */
static struct evbuffer *
mux_out(struct mux *m)
{
	struct evbuffer	*out = bufferevent_get_output(m->link);

	if (evbuffer_get_length(m->stage) > 0 || evbuffer_get_length(out) == 0)
		return (m->stage);
	return (out);
}

/* A frame went to the stage: have it written at the turn's end. */
static void
mux_staged(struct mux *m)
{
	if (!event_pending(m->flush_ev, EV_TIMEOUT, NULL))
		event_active(m->flush_ev, EV_TIMEOUT, 0);
}

/* Queue a frame without payload on the link. */
static void
mux_send(struct mux *m, enum mux_type type, uint32_t id, uint32_t arg)
{
	struct evbuffer	*to;
	uint8_t		 h[MUX_HDR_LEN];

	if (m->state == MUX_ST_DEAD)
		return;
	mux_hdr(h, type, id, arg);
	to = mux_out(m);
	if (evbuffer_add(to, h, sizeof(h)) != 0)
		mux_fail(m, "out of memory");	/* deferred: S stays */
	else if (to == m->stage)
		mux_staged(m);
	m->frames_out++;
}

/* Whether S is a channel (mux_open_chan), not a socket's stream. */
static int
mux_is_chan(const struct mux_stream *s)
{
	return (s->fd == -1);
}

/* Arm the stream's event for WANT (EV_READ | EV_WRITE, or 0). */
static void
mux_arm(struct mux_stream *s, short want)
{
	if (mux_is_chan(s) || s->armed == want)
		return;
	if (s->armed != 0)
		event_del(s->ev);
	s->armed = want;
	if (want == 0)
		return;
	event_assign(s->ev, s->m->base, s->fd, want | EV_PERSIST,
	    mux_stream_cb, s);
	event_add(s->ev, NULL);
}

/* What the stream's event should wait for now. */
static void
mux_rearm(struct mux_stream *s)
{
	short	want = 0;

	if (s->m->state == MUX_ST_DEAD) {
		mux_arm(s, 0);
		return;
	}
	if (!(s->flags & (MUX_SF_EOF | MUX_SF_STALLED)) && s->credit > 0)
		want |= EV_READ;
	if (s->out != NULL && evbuffer_get_length(s->out) > 0)
		want |= EV_WRITE;
	mux_arm(s, want);
}

/*
 * Free a stream: its socket closes (the user reads its end), or its
 * channel's user hears ERR (0: it ended both ways).
 */
static void
mux_stream_free(struct mux_stream *s, int err)
{
	struct mux	*m = s->m;

	RB_REMOVE(mux_tree, &m->streams, s);
	m->nstreams--;
	if (s->flags & MUX_SF_STALLED)
		TAILQ_REMOVE(&m->stalled, s, stall);
	if (s->x != NULL)
		xsock_chan_detach(s->x, err);
	s->x = NULL;
	if (s->ev != NULL)
		event_free(s->ev);
	s->ev = NULL;
	if (s->out != NULL)
		evbuffer_free(s->out);
	s->out = NULL;
	if (s->fd != -1)
		close(s->fd);
	free(s);
}

/* A stream that is done both ways goes. */
static void
mux_stream_check(struct mux_stream *s)
{
	if ((s->flags & MUX_SF_EOF) && (s->flags & MUX_SF_SHUT))
		mux_stream_free(s, 0);
	else
		mux_rearm(s);
}

/* End a stream both ways: RST to the peer, our socket closed. */
static void
mux_stream_reset(struct mux_stream *s)
{
	mux_send(s->m, MUX_RST, s->id, 0);
	mux_stream_free(s, ECONNRESET);
}

/* A stream that finds the link full waits for it to drain, in order. */
static void
mux_stall(struct mux_stream *s)
{
	if (s->flags & MUX_SF_STALLED)
		return;
	s->flags |= MUX_SF_STALLED;
	TAILQ_INSERT_TAIL(&s->m->stalled, s, stall);
	bufferevent_setwatermark(s->m->link, EV_WRITE, MUX_LINK_HIGH / 2, 0);
}

/* Whether the link's output (the stage counted) is at its high mark. */
static int
mux_link_full(struct mux *m)
{
	return (evbuffer_get_length(bufferevent_get_output(m->link)) +
	    evbuffer_get_length(m->stage) >= MUX_LINK_HIGH);
}

/*
 * A new stream with id ID on our end FD of its socketpair, or a channel
 * (FD -1).
 */
static struct mux_stream *
mux_stream_new(struct mux *m, uint32_t id, int fd)
{
	struct mux_stream	*s;

	s = xcalloc(1, sizeof(*s));
	s->m = m;
	s->id = id;
	s->fd = fd;
	s->credit = MUX_WINDOW;
	if (fd != -1 && (s->ev = event_new(m->base, -1, 0, mux_stream_cb,
	    s)) == NULL) {
		free(s);
		return (NULL);
	}
	RB_INSERT(mux_tree, &m->streams, s);
	m->nstreams++;
	m->opened++;
	return (s);
}

/*
 * The link failed, WHY: from the loop, every stream's socket closes and
 * the owner hears of it.  Deferred, as this may run deep inside a
 * stream's or the link's callback.
 */
static void
mux_fail(struct mux *m, const char *fmt, ...)
{
	va_list	ap;

	if (m->state == MUX_ST_DEAD)
		return;
	m->state = MUX_ST_DEAD;
	va_start(ap, fmt);
	vsnprintf(m->why, sizeof(m->why), fmt, ap);
	va_end(ap);
	bufferevent_disable(m->link, EV_READ | EV_WRITE);
	bufferevent_setcb(m->link, NULL, NULL, NULL, NULL);
	if (m->ka_ev != NULL)
		event_del(m->ka_ev);
	event_active(m->closed_ev, EV_TIMEOUT, 0);
}

static void
mux_closed_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct mux		*m = arg;
	struct mux_stream	*s;

	while ((s = RB_ROOT(&m->streams)) != NULL)
		mux_stream_free(s, ECONNRESET);
	if (m->cb.closed != NULL)
		m->cb.closed(m, m->why, m->arg);
}

/*
 * Give back what the user took (s->written) as WINDOW: only in
 * quarters, never "all of it in": the peer stops only with a whole
 * window unanswered, and by then the user has taken a quarter or is
 * what holds it back.  A WINDOW per message was a frame (a TLS record,
 * a write) per reply.
 */
static void
mux_give_back(struct mux_stream *s)
{
	if (s->written >= MUX_GIVE_BACK) {
		mux_send(s->m, MUX_WINDOW_UPDATE, s->id, s->written);
		s->held -= s->written;
		s->written = 0;
	}
}

/* Write what the stream holds for its socket; give back what went. */
static void
mux_stream_write(struct mux_stream *s)
{
	uint32_t	k;
	int		n;

	if (s->out != NULL && evbuffer_get_length(s->out) > 0) {
		n = evbuffer_write(s->out, s->fd);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			mux_stream_reset(s);	/* the user closed it */
			return;
		}
		if (n > 0) {
			/* Bytes handed over by mux_adopt() went back once. */
			k = (uint32_t)n < s->counted ? (uint32_t)n : s->counted;
			s->counted -= k;
			s->written += (uint32_t)n - k;
		}
	}
	/* An idle stream keeps no buffer. */
	if (s->out != NULL && evbuffer_get_length(s->out) == 0) {
		evbuffer_free(s->out);
		s->out = NULL;
	}
	mux_give_back(s);
	if ((s->flags & MUX_SF_FIN) && !(s->flags & MUX_SF_SHUT) &&
	    (s->out == NULL || evbuffer_get_length(s->out) == 0)) {
		(void)shutdown(s->fd, SHUT_WR);
		s->flags |= MUX_SF_SHUT;
	}
	mux_stream_check(s);
}

/*
 * A DATA frame of S's whose LEN payload bytes are in V, reserved in TO
 * behind room for its header: the header, and the frame is sent (the
 * stage's at the turn's end).  -1: the link failed.
 */
static int
mux_data_commit(struct mux_stream *s, struct evbuffer *to,
    struct evbuffer_iovec *v, size_t len)
{
	struct mux	*m = s->m;

	mux_hdr(v->iov_base, MUX_DATA, s->id, (uint32_t)len);
	v->iov_len = MUX_HDR_LEN + len;
	if (evbuffer_commit_space(to, v, 1) != 0) {
		mux_fail(m, "out of memory");
		return (-1);
	}
	if (to == m->stage)
		mux_staged(m);
	m->frames_out++;
	m->bytes_out += len;
	s->credit -= (uint32_t)len;
	return (0);
}

/* Read the stream's socket into one DATA frame on the link. */
static void
mux_stream_read(struct mux_stream *s)
{
	struct mux		*m = s->m;
	struct evbuffer		*to;
	struct evbuffer_iovec	 v;
	size_t			 want;
	ssize_t			 n;

	/* The stage counts: a turn's reads stay under the mark too. */
	if (mux_link_full(m)) {
		mux_stall(s);
		mux_rearm(s);
		return;
	}
	want = s->credit < MUX_DATA_MAX ? s->credit : MUX_DATA_MAX;
	to = mux_out(m);
	if (evbuffer_reserve_space(to, MUX_HDR_LEN + want, &v, 1) != 1) {
		mux_fail(m, "out of memory");
		return;
	}
	n = read(s->fd, (uint8_t *)v.iov_base + MUX_HDR_LEN, want);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0) {
		mux_stream_reset(s);
		return;
	}
	if (n == 0) {
		s->flags |= MUX_SF_EOF;
		mux_send(m, MUX_FIN, s->id, 0);
		mux_stream_check(s);
		return;
	}
	if (mux_data_commit(s, to, &v, (size_t)n) == 0)
		mux_rearm(s);
}

static void
mux_stream_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct mux_stream	*s = arg;
	uint32_t		 id = s->id;
	struct mux		*m = s->m;
	struct mux_stream	 key;

	if (m->state == MUX_ST_DEAD) {
		mux_arm(s, 0);		/* closed from the loop */
		return;
	}
	if (ev & EV_WRITE) {
		mux_stream_write(s);
		/* It may be gone. */
		key.id = id;
		if (RB_FIND(mux_tree, &m->streams, &key) != s)
			return;
	}
	if ((ev & EV_READ) && m->state != MUX_ST_DEAD)
		mux_stream_read(s);
}

/* Streams that waited for the link read again, in order. */
static void
mux_unstall(struct mux *m)
{
	struct mux_stream	*s;

	bufferevent_setwatermark(m->link, EV_WRITE, 0, 0);
	while ((s = TAILQ_FIRST(&m->stalled)) != NULL) {
		TAILQ_REMOVE(&m->stalled, s, stall);
		s->flags &= ~MUX_SF_STALLED;
		if (s->x != NULL)
			xsock_chan_writable(s->x);
		mux_rearm(s);
	}
}

/* The link drained. */
static void
mux_link_writecb(struct bufferevent *bev, void *arg)
{
	mux_unstall(arg);
}

/* The stream ID names, or NULL (a stream reset or never opened). */
static struct mux_stream *
mux_find(struct mux *m, uint32_t id)
{
	struct mux_stream	key;

	key.id = id;
	return (RB_FIND(mux_tree, &m->streams, &key));
}

/*
 * Whether ID is one that was opened already (a frame for it after our
 * RST crossed the peer's frames is no fault).
 */
static int
mux_known(struct mux *m, uint32_t id)
{
	return (id != 0 && (m->dialler ? id < m->next_id : id <= m->peer_id));
}

/*
 * A frame's handler: S is its stream when the table says to look it up,
 * A the header's arg, IN the link's input (DATA's payload at its head).
 * Nonzero: the link failed.
 */
typedef int (*mux_frame_fn)(struct mux *, struct mux_stream *, uint32_t,
    uint32_t, struct evbuffer *);

static int
mux_on_open(struct mux *m, struct mux_stream *s, uint32_t id, uint32_t arg,
    struct evbuffer *in)
{
	int	fd[2];

	if (m->dialler) {
		mux_fail(m, "OPEN from the end that did not dial");
		return (-1);
	}
	if (id != m->peer_id + 1) {
		mux_fail(m, "OPEN of stream %u after %u", id, m->peer_id);
		return (-1);
	}
	m->peer_id = id;
	if (m->nstreams >= MUX_STREAMS_MAX ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0, fd) == -1) {
		m->refused++;
		mux_send(m, MUX_RST, id, 0);
		return (0);
	}
	if ((s = mux_stream_new(m, id, fd[0])) == NULL) {
		close(fd[0]);
		close(fd[1]);
		mux_send(m, MUX_RST, id, 0);
		return (0);
	}
	if (m->cb.accept == NULL || m->cb.accept(m, id, fd[1], m->arg) != 0) {
		m->refused++;
		close(fd[1]);
		mux_stream_reset(s);
		return (0);
	}
	if (m->state != MUX_ST_DEAD)
		mux_rearm(s);
	return (0);
}

static int
mux_on_data(struct mux *m, struct mux_stream *s, uint32_t id, uint32_t len,
    struct evbuffer *in)
{
	int	n;

	m->bytes_in += len;
	if (s->flags & MUX_SF_FIN) {
		mux_fail(m, "DATA on stream %u after its FIN", id);
		return (-1);
	}
	if (len > MUX_WINDOW - s->held) {
		mux_fail(m, "stream %u: %u bytes past its window", id,
		    len - (MUX_WINDOW - s->held));
		return (-1);
	}
	s->held += len;
	if (mux_is_chan(s)) {
		if (s->x != NULL)
			xsock_chan_input(s->x, in, len);
		else {
			/* Its user let go: a closed socket's reset. */
			evbuffer_drain(in, len);
			mux_stream_reset(s);
		}
		return (0);
	}
	/* Straight from the link's input while nothing waits before it. */
	if (s->out == NULL) {
		n = evbuffer_write_atmost(in, s->fd, len);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			evbuffer_drain(in, len);
			mux_stream_reset(s);	/* the user closed it */
			return (0);
		}
		if (n > 0) {
			s->written += n;
			len -= n;
		}
	}
	if (len > 0 && ((s->out == NULL && (s->out = evbuffer_new()) ==
	    NULL) || evbuffer_remove_buffer(in, s->out, len) != (int)len)) {
		mux_fail(m, "out of memory");
		return (-1);
	}
	mux_stream_write(s);
	return (0);
}

static int
mux_on_window(struct mux *m, struct mux_stream *s, uint32_t id, uint32_t n,
    struct evbuffer *in)
{
	if (n == 0 || n > MUX_WINDOW - s->credit) {
		mux_fail(m, "WINDOW of %u on stream %u with %u of credit", n,
		    id, s->credit);
		return (-1);
	}
	s->credit += n;
	if (s->x != NULL)
		xsock_chan_writable(s->x);
	mux_rearm(s);
	return (0);
}

static int
mux_on_fin(struct mux *m, struct mux_stream *s, uint32_t id, uint32_t arg,
    struct evbuffer *in)
{
	if (s->flags & MUX_SF_FIN) {
		mux_fail(m, "a second FIN on stream %u", id);
		return (-1);
	}
	s->flags |= MUX_SF_FIN;
	if (mux_is_chan(s)) {
		/* Behind the bytes moved in before it: the user's EOF. */
		s->flags |= MUX_SF_SHUT;
		if (s->x != NULL)
			xsock_chan_eof(s->x);
		mux_stream_check(s);
		return (0);
	}
	mux_stream_write(s);
	return (0);
}

static int
mux_on_rst(struct mux *m, struct mux_stream *s, uint32_t id, uint32_t arg,
    struct evbuffer *in)
{
	mux_stream_free(s, ECONNRESET);
	return (0);
}

static int
mux_on_ping(struct mux *m, struct mux_stream *s, uint32_t id, uint32_t token,
    struct evbuffer *in)
{
	mux_send(m, MUX_PONG, 0, token);
	return (0);
}

static int
mux_on_pong(struct mux *m, struct mux_stream *s, uint32_t id, uint32_t token,
    struct evbuffer *in)
{
	m->pinged = 0;
	return (0);
}

/*
 * Frames by type: its name, whether it names a stream, and whether that
 * is one opened already (looked up for the handler; a frame for one
 * that is gone, its RST crossing the peer's frames, is dropped).
 */
static const struct {
	const char	*name;
	int		 stream;	/* 1: id > 0; 0: id 0 */
	int		 opened;
	mux_frame_fn	 fn;
} mux_frames[MUX_TYPE_MAX + 1] = {
	[MUX_OPEN] = { "OPEN", 1, 0, mux_on_open },
	[MUX_DATA] = { "DATA", 1, 1, mux_on_data },
	[MUX_WINDOW_UPDATE] = { "WINDOW", 1, 1, mux_on_window },
	[MUX_FIN] = { "FIN", 1, 1, mux_on_fin },
	[MUX_RST] = { "RST", 1, 1, mux_on_rst },
	[MUX_PING] = { "PING", 0, 0, mux_on_ping },
	[MUX_PONG] = { "PONG", 0, 0, mux_on_pong },
};

/* The peer's preamble, if it has come whole: 0, or -1 (failed). */
static int
mux_preamble(struct mux *m, struct evbuffer *in)
{
	uint8_t		p[MUX_PREAMBLE_LEN];
	uint32_t	v;

	if (evbuffer_get_length(in) < MUX_PREAMBLE_LEN)
		return (0);
	evbuffer_remove(in, p, sizeof(p));
	if (mux_get32(p) != MUX_MAGIC) {
		mux_fail(m, "not a mesh link (no \"VRMX\" preamble)");
		return (-1);
	}
	if ((v = mux_get32(p + 4)) != MUX_VERSION) {
		mux_fail(m, "mesh link version %u, not %u", v, MUX_VERSION);
		return (-1);
	}
	m->state = MUX_ST_UP;
	if (m->cb.up != NULL)
		m->cb.up(m, m->arg);
	return (0);
}

/* Frames from the peer: one table, every fault ends the link. */
static void
mux_link_readcb(struct bufferevent *bev, void *arg)
{
	struct mux		*m = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct mux_stream	*s;
	uint8_t			 h[MUX_HDR_LEN];
	uint32_t		 id, a;

	m->rx_ms = xtime_mono_ms();
	m->pinged = 0;
	if (m->state == MUX_ST_PREAMBLE && mux_preamble(m, in) != 0)
		return;
	while (m->state == MUX_ST_UP &&
	    evbuffer_copyout(in, h, sizeof(h)) == (ssize_t)sizeof(h)) {
		id = mux_get32(h + 4);
		a = mux_get32(h + 8);
		if (h[0] == 0 || h[0] > MUX_TYPE_MAX) {
			mux_fail(m, "unknown frame type %u", h[0]);
			return;
		}
		if (h[1] != 0 || h[2] != 0 || h[3] != 0) {
			mux_fail(m, "%s with nonzero flags or reserved bits",
			    mux_frames[h[0]].name);
			return;
		}
		if (mux_frames[h[0]].stream != (id != 0)) {
			mux_fail(m, "%s on stream %u", mux_frames[h[0]].name,
			    id);
			return;
		}
		if (h[0] == MUX_DATA && (a == 0 || a > MUX_DATA_MAX)) {
			mux_fail(m, "DATA of %u bytes on stream %u", a, id);
			return;
		}
		if (h[0] == MUX_DATA &&
		    evbuffer_get_length(in) < MUX_HDR_LEN + (size_t)a)
			return;			/* the payload comes */
		evbuffer_drain(in, sizeof(h));
		m->frames_in++;
		s = NULL;
		if (mux_frames[h[0]].opened && (s = mux_find(m, id)) == NULL) {
			if (!mux_known(m, id)) {
				mux_fail(m, "%s on stream %u, never opened",
				    mux_frames[h[0]].name, id);
				return;
			}
			if (h[0] == MUX_DATA)
				evbuffer_drain(in, a);
			continue;
		}
		if (mux_frames[h[0]].fn(m, s, id, a, in) != 0)
			return;
	}
}

static void
mux_link_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct mux	*m = arg;
	const char	*why;
	int		 err = EVUTIL_SOCKET_ERROR();

	if (what & BEV_EVENT_CONNECTED)
		return;				/* TLS is up */
	if ((why = tls_bev_error(bev)) != NULL)
		mux_fail(m, "%s", why);
	else if (what & BEV_EVENT_EOF)
		mux_fail(m, "closed by the peer");
	else
		mux_fail(m, "%s", err != 0 ? strerror(err) : "link error");
}

/* Keepalive: PING after silence, give up after three times as long. */
static void
mux_ka_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct mux	*m = arg;
	long long	 idle = xtime_mono_ms() - m->rx_ms;

	if (idle >= 3 * m->ka_ms) {
		mux_fail(m, "no frame from the peer in %lld ms", idle);
		return;
	}
	if (evbuffer_get_length(bufferevent_get_output(m->link)) >
	    MUX_LINK_MAX) {
		mux_fail(m, "the peer does not read (%zu bytes queued)",
		    evbuffer_get_length(bufferevent_get_output(m->link)));
		return;
	}
	if (idle >= m->ka_ms && !m->pinged && m->state == MUX_ST_UP) {
		mux_send(m, MUX_PING, 0, (uint32_t)xtime_mono_ms());
		m->pinged = 1;
	}
}

/* A mesh link over LINK; see mux.h. */
struct mux *
mux_new(struct bufferevent *link, int dialler, const struct mux_cb *cb,
    void *arg)
{
	struct mux	*m;
	uint8_t		 p[MUX_PREAMBLE_LEN];

	m = xcalloc(1, sizeof(*m));
	m->link = link;
	m->base = bufferevent_get_base(link);
	m->dialler = dialler;
	m->cb = *cb;
	m->arg = arg;
	m->next_id = 1;
	m->rx_ms = xtime_mono_ms();
	RB_INIT(&m->streams);
	TAILQ_INIT(&m->stalled);
	if ((m->closed_ev = evtimer_new(m->base, mux_closed_cb, m)) == NULL ||
	    (m->flush_ev = evtimer_new(m->base, mux_flush_cb, m)) == NULL ||
	    (m->stage = evbuffer_new()) == NULL) {
		if (m->closed_ev != NULL)
			event_free(m->closed_ev);
		if (m->flush_ev != NULL)
			event_free(m->flush_ev);
		free(m);
		return (NULL);
	}
	mux_put32(p, MUX_MAGIC);
	mux_put32(p + 4, MUX_VERSION);
	if (bufferevent_write(link, p, sizeof(p)) != 0) {
		event_free(m->closed_ev);
		event_free(m->flush_ev);
		evbuffer_free(m->stage);
		free(m);
		return (NULL);
	}
	bufferevent_setcb(link, mux_link_readcb, mux_link_writecb,
	    mux_link_eventcb, m);
	bufferevent_setwatermark(link, EV_READ, 0, 0);
	bufferevent_enable(link, EV_READ | EV_WRITE);
	/* The peer's bytes may be buffered already (its preamble). */
	if (evbuffer_get_length(bufferevent_get_input(link)) > 0)
		bufferevent_trigger(link, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
	return (m);
}

/* Close every stream and the link; NULL is fine. */
void
mux_free(struct mux *m)
{
	struct mux_stream	*s;

	if (m == NULL)
		return;
	while ((s = RB_ROOT(&m->streams)) != NULL)
		mux_stream_free(s, ECONNRESET);
	bufferevent_free(m->link);
	m->link = NULL;
	event_free(m->closed_ev);
	m->closed_ev = NULL;
	event_free(m->flush_ev);
	m->flush_ev = NULL;
	evbuffer_free(m->stage);
	m->stage = NULL;
	if (m->ka_ev != NULL)
		event_free(m->ka_ev);
	m->ka_ev = NULL;
	free(m);
}

/*
 * A channel's user writes N bytes of SRC, then BN of BODY from OFF:
 * as many DATA frames as credit and mark allow, each made whole in the
 * link's buffer (a frame in pieces would be a TLS record per piece).
 */
static size_t
mux_chan_send(void *arg, struct evbuffer *src, size_t n, struct evbuffer *body,
    size_t off, size_t bn)
{
	struct mux_stream	*s = arg;
	struct mux		*m = s->m;
	struct evbuffer		*to;
	struct evbuffer_iovec	 v;
	struct evbuffer_ptr	 p;
	uint8_t			*d;
	size_t			 taken = 0, len, a;

	if (m->state != MUX_ST_UP || (s->flags & MUX_SF_EOF))
		return (0);
	while (taken < n + bn && s->credit > 0) {
		if (mux_link_full(m)) {
			mux_stall(s);
			break;
		}
		len = n + bn - taken;
		if (len > s->credit)
			len = s->credit;
		if (len > MUX_DATA_MAX)
			len = MUX_DATA_MAX;
		to = mux_out(m);
		if (evbuffer_reserve_space(to, MUX_HDR_LEN + len, &v, 1) != 1) {
			mux_fail(m, "out of memory");
			break;
		}
		d = (uint8_t *)v.iov_base + MUX_HDR_LEN;
		a = taken < n ? (n - taken < len ? n - taken : len) : 0;
		if (a > 0 && evbuffer_remove(src, d, a) != (int)a)
			abort();	/* N is within SRC */
		if (len > a && (evbuffer_ptr_set(body, &p, off + taken + a - n,
		    EVBUFFER_PTR_SET) != 0 || evbuffer_copyout_from(body, &p,
		    d + a, len - a) != (ev_ssize_t)(len - a)))
			abort();	/* so are BODY's */
		if (mux_data_commit(s, to, &v, len) != 0)
			break;
		taken += len;
	}
	return (taken);
}

/* A channel's user read N bytes: given back as a socket's writes are. */
static void
mux_chan_consumed(void *arg, size_t n)
{
	struct mux_stream	*s = arg;

	s->written += (uint32_t)n;
	mux_give_back(s);
}

/* A channel's user sent its last: FIN. */
static void
mux_chan_shutdown(void *arg)
{
	struct mux_stream	*s = arg;

	if (s->flags & MUX_SF_EOF)
		return;
	s->flags |= MUX_SF_EOF;
	mux_send(s->m, MUX_FIN, s->id, 0);
	mux_stream_check(s);
}

/*
 * A channel's user let go: as a socket closed, a FIN (the stream goes
 * once the peer's comes; DATA meanwhile is reset), or RST at once when
 * RESET or bytes were left unread.
 */
static void
mux_chan_close(void *arg, int reset)
{
	struct mux_stream	*s = arg;

	s->x = NULL;
	if (reset || s->held > s->written) {
		mux_stream_reset(s);
		return;
	}
	mux_chan_shutdown(s);	/* may free S */
}

static const struct xsock_chan_ops	mux_chan_ops = {
	mux_chan_send, mux_chan_consumed, mux_chan_shutdown, mux_chan_close
};

/*
 * Dialler: stream S on FD (-1: a channel) under the next id, its OPEN
 * sent; or an error, with nothing made.
 */
static int
mux_dial(struct mux *m, int fd, struct mux_stream **sp)
{
	*sp = NULL;
	if (m->state != MUX_ST_UP)
		return (MUX_E_STATE);
	if (m->next_id == UINT32_MAX)
		return (MUX_E_IDS);
	if ((*sp = mux_stream_new(m, m->next_id, fd)) == NULL) {
		errno = ENOMEM;
		return (MUX_E_SYSTEM);
	}
	m->next_id++;
	mux_send(m, MUX_OPEN, (*sp)->id, 0);
	return (MUX_OK);
}

/* A new stream; see mux.h. */
int
mux_open(struct mux *m, int *fdp)
{
	struct mux_stream	*s;
	int			 fd[2], e;

	*fdp = -1;
	if (!mux_up(m))
		return (MUX_E_STATE);	/* no socketpair for nothing */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0, fd) == -1)
		return (MUX_E_SYSTEM);
	if ((e = mux_dial(m, fd[0], &s)) != MUX_OK) {
		close(fd[0]);
		close(fd[1]);
		return (e);
	}
	mux_rearm(s);
	*fdp = fd[1];
	return (MUX_OK);
}

/* A new stream on a channel; see mux.h. */
int
mux_open_chan(struct mux *m, struct xsock **xp)
{
	struct mux_stream	*s;
	int			 e;

	*xp = NULL;
	if ((e = mux_dial(m, -1, &s)) != MUX_OK)
		return (e);
	s->x = xsock_new_chan(m->base, &mux_chan_ops, s);
	*xp = s->x;
	return (MUX_OK);
}

/*
 * Hand stream ID's socket over to FD; see mux.h.  What the user wrote
 * into the socketpair goes to the link first (a stream waiting for
 * credit is busy: the user keeps forwarding), then what it read and
 * did not pass on (PENDING) leads what the mux holds for the socket.
 */
int
mux_adopt(struct mux *m, uint32_t id, int fd, struct evbuffer *pending)
{
	struct mux_stream	*s;
	int			 n;

	if (m->state != MUX_ST_UP)
		return (MUX_E_STATE);
	if ((s = mux_find(m, id)) == NULL || mux_is_chan(s) || s->adopted ||
	    (s->flags & (MUX_SF_EOF | MUX_SF_FIN | MUX_SF_SHUT)))
		return (MUX_E_STREAM);
	while (ioctl(s->fd, FIONREAD, &n) == 0 && n > 0) {
		if (s->credit == 0 || mux_link_full(m))
			return (MUX_E_BUSY);
		mux_stream_read(s);
		if (mux_find(m, id) != s || (s->flags & MUX_SF_EOF))
			return (MUX_E_STREAM);	/* reset, or the user shut */
	}
	/*
	 * PENDING went into the pair and was given back as WINDOW then:
	 * not again when it reaches FD.
	 */
	if ((n = (int)evbuffer_get_length(pending)) > 0) {
		if (s->out == NULL && (s->out = evbuffer_new()) == NULL)
			return (MUX_E_BUSY);
		if (evbuffer_prepend_buffer(s->out, pending) != 0)
			return (MUX_E_BUSY);
		s->counted = (uint32_t)n;
	}
	mux_arm(s, 0);
	close(s->fd);
	s->fd = fd;
	s->adopted = 1;
	m->adopted++;
	mux_rearm(s);
	return (MUX_OK);
}

/* Reset every adopted stream; how many. */
size_t
mux_reset_adopted(struct mux *m)
{
	struct mux_stream	*s, *next;
	size_t			 n = 0;

	RB_FOREACH_SAFE(s, mux_tree, &m->streams, next) {
		if (!s->adopted)
			continue;
		mux_stream_reset(s);
		n++;
	}
	return (n);
}

/* Whether the peer's preamble came and the link is not gone. */
int
mux_up(const struct mux *m)
{
	return (m != NULL && m->state == MUX_ST_UP);
}

/* Streams open now. */
size_t
mux_streams(const struct mux *m)
{
	return (m->nstreams);
}

/* PING after MS of silence; give up after 3 MS (0: never). */
void
mux_set_keepalive(struct mux *m, long long ms)
{
	struct timeval	tv;

	m->ka_ms = ms;
	if (m->ka_ev != NULL)
		event_free(m->ka_ev);
	m->ka_ev = NULL;
	if (ms <= 0 || m->state == MUX_ST_DEAD)
		return;
	if ((m->ka_ev = event_new(m->base, -1, EV_PERSIST, mux_ka_cb, m)) ==
	    NULL)
		return;
	xtime_tv(ms / 2 > 0 ? ms / 2 : 1, &tv);
	event_add(m->ka_ev, &tv);
}

/* The link's state and counters, for status. */
json_t *
mux_json(const struct mux *m)
{
	return (json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
	    "state", mux_strstate(m->state),
	    "streams", (json_int_t)m->nstreams,
	    "opened", (json_int_t)m->opened,
	    "adopted", (json_int_t)m->adopted,
	    "refused", (json_int_t)m->refused,
	    "frames_in", (json_int_t)m->frames_in,
	    "frames_out", (json_int_t)m->frames_out,
	    "bytes_in", (json_int_t)m->bytes_in,
	    "bytes_out", (json_int_t)m->bytes_out,
	    "queued", (json_int_t)evbuffer_get_length(
	    bufferevent_get_output(m->link))));
}
