/*
 * test_sess.c -- unit tests for the resumable session layer (sess.h).
 *
 * Both ends run in this one process on one event_base.  The client
 * context's legs are socketpairs whose other end goes straight to the
 * server context's sess_accept(); the guest and backend streams are
 * socketpairs whose far ends the test reads and writes itself.  A leg
 * is broken with shutdown() on the server's end of it, and hostile
 * peers are played by writing frames by hand (frame.h), so every
 * refusal can be decoded and its code checked.  With chan_legs, the
 * client's legs are channels on a mesh link (mux.h) instead, as a
 * relay's session ends hold them on a shared link, whose accepted
 * streams go to the server.
 */
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <netinet/in.h>

#include <errno.h>
#include <poll.h>
#include <inttypes.h>
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
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <jansson.h>

#include "frame.h"
#include "mux.h"
#include "proto.h"
#include "sess.h"
#include "xmalloc.h"
#include "xsock.h"

#define WAIT_MS		5000		/* longest any one wait may take */
#define CHUNK		(64 * 1024)	/* test-side read and write size */
#define MIB		((size_t)1024 * 1024)
#define ECHO_BUF	(64 * 1024)	/* an echo server's buffer */

#define GUEST_HOST	"guest.example"
#define GUEST_CID	42
#define GUEST_PORT	2049

/* One direction of test traffic: written on one fd, checked on another. */
struct flow {
	uint8_t		*src;		/* the bytes to send */
	int		 own;		/* src is ours to free */
	size_t		 len;
	size_t		 stop;		/* write no further than this yet */
	const size_t	*limit;		/* nor than *limit (echo) */
	const uint8_t	*pre;		/* expected ahead of src (preamble) */
	size_t		 prelen;
	size_t		 pre_rd;
	size_t		 wr;
	size_t		 rd;		/* src bytes read and checked */
	size_t		 bad;		/* first wrong offset + 1; 0: none */
	size_t		 extra;		/* bytes read beyond len */
	int		 eof;		/* reader saw EOF or a reset */
	int		 rpause;	/* reader reads nothing for now */
	const struct flow *echo;	/* reads nothing while this echo of
					   it has ECHO_BUF unwritten */
	int		 werr;		/* errno of a failed write */
	int		 shut;		/* shut the write side at the end */
	const int	*shut_after;	/* ...but only once this is set */
	int		 shut_done;
};

struct world;

/* What one context's callbacks saw. */
struct side {
	struct world	*w;
	struct sess_ctx	*ctx;
	struct sess	*s;		/* newest session; NULL once closed */
	int		 n_open;
	int		 n_detached;
	int		 n_resumed;
	int		 n_closed;
	int		 open_reason;	/* OPEN came with a reason */
	uint64_t	 resume_replay;	/* sess_resume_replay() at RESUMED */
	long long	 resume_ms;	/* sess_resume_ms() at RESUMED */
	char		 why_resumed[512];	/* RESUMED's reason: the leg */
	long long	 closed_at;
	char		 why_detached[512];
	char		 why_closed[512];
};

/* Everything one test runs on; freed by teardown even on failure. */
struct world {
	struct event_base	*base;
	struct event		*tick;
	struct sess_conf	 conf;
	struct side		 cl;
	struct side		 sv;
	int			 guest;		/* test end of the guest */
	int			 backend;	/* test end of the backend */
	int			 sleg;		/* server end of newest leg */
	int			 tcp_legs;	/* legs over TCP, not unix */
	int			 cleg;		/* client end of newest leg */
	int			 fake;		/* legs go to the test */
	int			 fake_fd;	/* test end of such a leg */
	int			 break_in_open;	/* legs to kill in open */
	int			 break_on_resumed; /* shut sleg at sv RESUMED */
	int			 accept_late;	/* the test hands legs over */
	struct bufferevent	*late_sb;	/* ...this one, not yet */
	struct flow		 up;		/* guest -> backend */
	struct flow		 down;		/* backend -> guest */
	const uint8_t		*pre;		/* sess_set_local preamble */
	size_t			 prelen;
	int			 calls;		/* ops->connect calls */
	int			 connects;	/* ...that gave a leg */
	int			 no_target;	/* ops->connect says no */
	int			 wait_target;	/* ... says wait */
	unsigned		 tries_seen;	/* sess_resume_tries there */
	int			 opens;		/* ops->open calls */
	int			 open_fail;	/* ops->open refuses */
	int			 admits[2];	/* ops->admit: new, resume */
	int			 admit_refuse[2];	/* ...refuses these */
	char			 admit_peer[64];	/* its last PEER */
	int			 refusals;
	char			 why_refused[512];
	int			 check_cap;	/* replay cap, every step */
	long long		 max_unacked;
	int			 watch_in;	/* track the server's unacked_in */
	long long		 max_unacked_in;
	long long		 deadline;
	int			 rogue[16];	/* test ends, hand-made legs */
	int			 nrogue;
	int			 chan_legs;	/* legs are channels on link */
	struct mux		*link[2];	/* ...its dialler, acceptor */
	int			 link_up;	/* the acceptor's preamble */
	int			 link_closed;	/* the dialler saw it end */
};

/* Milliseconds on the monotonic clock, as sess.c counts them. */
static long long
now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/* Deterministic pseudo-random bytes (xorshift64*), so reruns match. */
static void
fill_random(uint8_t *p, size_t len, uint64_t seed)
{
	uint64_t	x = seed | 1;
	size_t		i;

	for (i = 0; i < len; i++) {
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		p[i] = (uint8_t)((x * 0x2545f4914f6cdd1dULL) >> 56);
	}
}

/* A flow of LEN pseudo-random bytes. */
static void
flow_init(struct flow *f, size_t len, uint64_t seed)
{
	memset(f, 0, sizeof(*f));
	f->src = xmalloc(len > 0 ? len : 1);
	f->own = 1;
	f->len = len;
	f->stop = len;
	fill_random(f->src, len, seed);
}

/* A flow that sends back what FROM has read, as an echo server does. */
static void
flow_echo(struct flow *f, const struct flow *from)
{
	memset(f, 0, sizeof(*f));
	f->src = from->src;
	f->len = from->len;
	f->stop = from->len;
	f->limit = &from->rd;
	f->shut_after = &from->eof;
}

/* Write as much of a flow as the socket takes now. */
static void
flow_write(struct flow *f, int fd)
{
	size_t	end = f->stop < f->len ? f->stop : f->len, n;
	ssize_t	r;

	if (fd == -1 || f->src == NULL || f->werr != 0 || f->shut_done)
		return;
	if (f->limit != NULL && *f->limit < end)
		end = *f->limit;
	while (f->wr < end) {
		n = end - f->wr < CHUNK ? end - f->wr : CHUNK;
		r = write(fd, f->src + f->wr, n);
		if (r == -1) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				f->werr = errno;
			return;
		}
		f->wr += r;
	}
	if (f->shut && f->wr == f->len &&
	    (f->shut_after == NULL || *f->shut_after)) {
		shutdown(fd, SHUT_WR);
		f->shut_done = 1;
	}
}

/* Read what is there and check it against what was sent. */
static void
flow_read(struct flow *f, int fd)
{
	uint8_t		 buf[CHUNK];
	const uint8_t	*p;
	ssize_t		 r;
	size_t		 n, k, i;

	if (fd == -1 || f->src == NULL || f->eof || f->rpause)
		return;
	for (;;) {
		k = sizeof(buf);
		if (f->echo != NULL) {
			/* As an echo server: no reading while its write waits. */
			if (f->rd - f->echo->wr >= ECHO_BUF)
				return;
			k = ECHO_BUF - (f->rd - f->echo->wr);
		}
		r = read(fd, buf, k);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1 && errno == EAGAIN)
			return;
		if (r <= 0) {
			f->eof = 1;	/* EOF, or reset: closed either way */
			return;
		}
		p = buf;
		n = r;
		if (f->pre_rd < f->prelen) {
			k = f->prelen - f->pre_rd;
			if (k > n)
				k = n;
			if (f->bad == 0 &&
			    memcmp(p, f->pre + f->pre_rd, k) != 0)
				f->bad = 1;
			f->pre_rd += k;
			p += k;
			n -= k;
		}
		if (f->rd + n > f->len) {
			f->extra += f->rd + n - f->len;
			n = f->len - f->rd;
		}
		if (f->bad == 0 && memcmp(p, f->src + f->rd, n) != 0) {
			for (i = 0; i < n && p[i] == f->src[f->rd + i]; i++)
				;
			f->bad = f->rd + i + 1;
		}
		f->rd += n;
	}
}

/* A flow that arrived whole, exactly once, in order. */
static void
flow_check(const struct flow *f, const char *name)
{
	if (f->bad != 0)
		fail_msg("%s: wrong byte at offset %zu", name, f->bad - 1);
	if (f->extra != 0)
		fail_msg("%s: %zu bytes too many", name, f->extra);
	if (f->rd != f->len)
		fail_msg("%s: %zu of %zu bytes", name, f->rd, f->len);
	assert_int_equal(f->pre_rd, f->prelen);
}

/* Everything sent has arrived (maybe not yet checked for extras). */
static int
flow_done(const struct flow *f)
{
	return (f->rd == f->len && f->pre_rd == f->prelen);
}

/* An integer field of sess_json(); -1 if it is missing. */
static long long
jint(const struct sess *s, const char *key)
{
	json_t		*o, *v;
	long long	 r = -1;

	if ((o = sess_json(s)) == NULL)
		return (-2);
	if ((v = json_object_get(o, key)) != NULL && json_is_integer(v))
		r = json_integer_value(v);
	json_decref(o);
	return (r);
}

/* Whether a field of sess_json() is true (missing: false). */
static int
jbool(const struct sess *s, const char *key)
{
	json_t	*o;
	int	 r;

	if ((o = sess_json(s)) == NULL)
		return (0);
	r = json_is_true(json_object_get(o, key));
	json_decref(o);
	return (r);
}

/* A string field of sess_json(), copied into BUF ("" if missing). */
static const char *
jstr(const struct sess *s, const char *key, char *buf, size_t len)
{
	json_t	*o;

	buf[0] = '\0';
	if ((o = sess_json(s)) == NULL)
		return (buf);
	if (json_string_value(json_object_get(o, key)) != NULL)
		strlcpy(buf, json_string_value(json_object_get(o, key)), len);
	json_decref(o);
	return (buf);
}

/* An integer field of sess_ctx_stats(); -1 if it is missing. */
static long long
jstat(const struct sess_ctx *ctx, const char *key)
{
	json_t		*o, *v;
	long long	 r = -1;

	if ((o = sess_ctx_stats(ctx)) == NULL)
		return (-2);
	if ((v = json_object_get(o, key)) != NULL && json_is_integer(v))
		r = json_integer_value(v);
	json_decref(o);
	return (r);
}

/* --- callbacks (no asserts here: they would jump out of libevent) --- */

/* A connected pair of non-blocking stream sockets, or abort. */
static void
nonblock_pair(int fd[2])
{
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, fd) == -1)
		abort();
	if (evutil_make_socket_nonblocking(fd[0]) != 0 ||
	    evutil_make_socket_nonblocking(fd[1]) != 0)
		abort();
}

/*
 * The same over TCP on loopback, with small buffers: a full socket
 * takes part of a frame.
 */
static void
tcp_pair(int fd[2])
{
	struct sockaddr_in	sin;
	socklen_t		len = sizeof(sin);
	int			l, sz = 64 * 1024;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((l = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
	    setsockopt(l, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz)) == -1 ||
	    bind(l, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(l, 1) == -1 ||
	    getsockname(l, (struct sockaddr *)&sin, &len) == -1 ||
	    (fd[0] = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
	    setsockopt(fd[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)) == -1 ||
	    setsockopt(fd[0], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz)) == -1 ||
	    connect(fd[0], (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    (fd[1] = accept(l, NULL, NULL)) == -1 ||
	    setsockopt(fd[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)) == -1)
		abort();
	close(l);
	if (evutil_make_socket_nonblocking(fd[0]) != 0 ||
	    evutil_make_socket_nonblocking(fd[1]) != 0)
		abort();
}

/* The mesh link's acceptor: a stream is a leg for the server. */
static int
t_link_accept(struct mux *m, uint32_t id, int fd, void *arg)
{
	struct world		*w = arg;
	struct bufferevent	*sb;

	if ((sb = bufferevent_socket_new(w->base, fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL)
		abort();
	w->sleg = fd;
	sess_accept(w->sv.ctx, sb, "test-leg");
	return (0);
}

static void
t_link_up(struct mux *m, void *arg)
{
	((struct world *)arg)->link_up = 1;
}

static void
t_link_closed(struct mux *m, const char *why, void *arg)
{
	struct world	*w = arg;

	if (m == w->link[0])
		w->link_closed = 1;
}

static const struct mux_cb	t_link_cb = {
	t_link_up, t_link_accept, t_link_closed
};

/* A mesh link between the contexts (again): the client's legs' way. */
static void
world_link(struct world *w)
{
	struct bufferevent	*b[2];
	int			 fd[2], i;

	for (i = 0; i < 2; i++)
		mux_free(w->link[i]);
	w->link_up = w->link_closed = 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fd) == -1)
		abort();
	for (i = 0; i < 2; i++) {
		if ((b[i] = bufferevent_socket_new(w->base, fd[i],
		    BEV_OPT_CLOSE_ON_FREE)) == NULL ||
		    (w->link[i] = mux_new(b[i], i == 0, &t_link_cb, w)) ==
		    NULL)
			abort();
	}
	w->chan_legs = 1;
}

/*
 * Client: a new leg is a socketpair whose far end the server accepts.
 * Each leg comes in turn in each form ops->connect may give it: a
 * socket that is up, one said to be connecting, a bufferevent, and a
 * pooled socket that is up, with the bufferevent to retire.
 */
static int
t_connect(struct sess *s, void *arg, struct sess_dial *d, const char **desc)
{
	struct side		*sd = arg;
	struct world		*w = sd->w;
	struct bufferevent	*sb;
	int			 fd[2];

	w->calls++;
	w->tries_seen = sess_resume_tries(s);
	if (w->no_target) {
		*desc = "no target (test)";
		return (-1);
	}
	if (w->wait_target) {
		*desc = "waiting (test)";
		return (1);
	}
	if (w->chan_legs) {
		/* A stream on the link: the server accepts its far end. */
		if (!mux_up(w->link[0])) {
			*desc = "the test's mesh link is not up";
			return (-1);
		}
		*d = (struct sess_dial){ .fd = -1, .up = 1, .tuned = 1 };
		if (mux_open_chan(w->link[0], &d->x) != MUX_OK)
			abort();
		w->connects++;
		w->cleg = -1;
		*desc = "test-target";
		return (0);
	}
	if (w->tcp_legs)
		tcp_pair(fd);
	else
		nonblock_pair(fd);
	d->fd = -1;
	d->up = 0;
	d->bev = NULL;
	switch (w->connects++ % 4) {
	case 0:
		d->fd = fd[0];
		d->up = 1;
		break;
	case 1:
		d->fd = fd[0];
		break;
	case 3:
		/*
		 * A pooled socket: the bufferevent that watched it goes
		 * to the session layer to free, leaving the socket open.
		 */
		d->fd = fd[0];
		d->up = 1;
		d->retire = bufferevent_socket_new(w->base, fd[0],
		    BEV_OPT_CLOSE_ON_FREE);
		if (d->retire == NULL ||
		    bufferevent_enable(d->retire, EV_READ) != 0)
			abort();
		break;
	default:
		d->bev = bufferevent_socket_new(w->base, fd[0],
		    BEV_OPT_CLOSE_ON_FREE);
		if (d->bev == NULL)
			abort();
		/* Already connected; this still reports CONNECTED. */
		bufferevent_socket_connect(d->bev, NULL, 0);
		break;
	}
	w->cleg = fd[0];
	if (w->fake) {
		/* The test plays the server. */
		if (w->nrogue == (int)(sizeof(w->rogue) / sizeof(w->rogue[0])))
			abort();
		w->rogue[w->nrogue++] = w->fake_fd = fd[1];
		*desc = "fake-server";
		return (0);
	}
	if ((sb = bufferevent_socket_new(w->base, fd[1],
	    BEV_OPT_CLOSE_ON_FREE)) == NULL)
		abort();
	if (w->accept_late) {
		w->late_sb = sb;	/* test_accept_read_ahead */
		w->sleg = fd[1];
		*desc = "test-target";
		return (0);
	}
	sess_accept(w->sv.ctx, sb, "test-leg");
	w->sleg = fd[1];
	*desc = "test-target";
	return (0);
}

/* Server: the backend is a socketpair the test holds the far end of. */
static int
t_open(struct sess *s, void *arg, const char **why)
{
	struct side	*sd = arg;
	struct world	*w = sd->w;
	int		 fd[2];

	w->opens++;
	if (w->open_fail) {
		*why = "backend refused (test)";
		return (-1);
	}
	if (w->break_in_open > 0) {
		/* The leg dies before the WELCOME can be written. */
		w->break_in_open--;
		shutdown(w->sleg, SHUT_RDWR);
	}
	nonblock_pair(fd);
	sess_set_local(s, fd[0], w->pre, w->prelen);
	if (w->backend != -1)
		close(w->backend);
	w->backend = fd[1];
	sd->s = s;
	return (0);
}

/* Count lifecycle events per side; remember the last reasons. */
static void
t_event(struct sess *s, enum sess_event ev, const char *reason, void *arg)
{
	struct side	*sd = arg;

	switch (ev) {
	case SESS_EV_OPEN:
		sd->n_open++;
		if (reason != NULL)
			sd->open_reason = 1;
		sd->s = s;
		break;
	case SESS_EV_DETACHED:
		sd->n_detached++;
		strlcpy(sd->why_detached, reason != NULL ? reason : "(null)",
		    sizeof(sd->why_detached));
		break;
	case SESS_EV_RESUMED:
		sd->n_resumed++;
		sd->resume_replay = sess_resume_replay(s);
		sd->resume_ms = sess_resume_ms(s);
		strlcpy(sd->why_resumed, reason != NULL ? reason : "(null)",
		    sizeof(sd->why_resumed));
		if (sd == &sd->w->sv && sd->w->break_on_resumed > 0) {
			/*
			 * RESUMED went out (written through); lose it: drop
			 * what waits in the client's socket, break the leg.
			 */
			uint8_t	junk[256];

			sd->w->break_on_resumed--;
			while (read(sd->w->cleg, junk, sizeof(junk)) > 0)
				;
			shutdown(sd->w->sleg, SHUT_RDWR);
		}
		break;
	case SESS_EV_CLOSED:
		sd->n_closed++;
		sd->closed_at = now_ms();
		strlcpy(sd->why_closed, reason != NULL ? reason : "(null)",
		    sizeof(sd->why_closed));
		if (sd->s == s)
			sd->s = NULL;	/* freed after this callback */
		break;
	case SESS_EV_STATE:
		break;
	}
}

/* Server legs refused before they had a session. */
static void
t_refused(const char *peer, const char *reason, void *arg)
{
	struct side	*sd = arg;

	sd->w->refusals++;
	strlcpy(sd->w->why_refused, reason != NULL ? reason : "(null)",
	    sizeof(sd->w->why_refused));
}

/* The server's say on a leg that opens or resumes a session. */
static int
t_admit(struct sess *s, const char *peer, int resume, void *arg,
    const char **why)
{
	struct side	*sd = arg;

	sd->w->admits[resume]++;
	strlcpy(sd->w->admit_peer, peer, sizeof(sd->w->admit_peer));
	if (!sd->w->admit_refuse[resume])
		return (0);
	*why = resume ? "not the caller that opened it (test)" :
	    "no such service (test)";
	return (resume ? PROTO_E_AUTH : PROTO_E_SERVICE);
}

/* Client: every leg goes to the one test target (fake ones aside). */
static const char *
t_route(struct sess *s, void *arg)
{
	struct side	*sd = arg;

	return (sd->w->no_target ? NULL : "test-target");
}

static const struct sess_ops t_ops = {
	.connect = t_connect,
	.route = t_route,
	.open = t_open,
	.event = t_event,
	.refused = t_refused,
	.admit = t_admit,
};

/* Keeps EVLOOP_ONCE from sleeping longer than a millisecond. */
static void
tick_cb(evutil_socket_t fd, short ev, void *arg)
{
}

/* --- the world ---------------------------------------------------------- */

/* A fresh event_base and default conf; contexts come later. */
static int
setup(void **state)
{
	struct world	*w;
	struct timeval	 tv = { 0, 1000 };

	w = xcalloc(1, sizeof(*w));
	if ((w->base = event_base_new()) == NULL)
		return (-1);
	w->tick = event_new(w->base, -1, EV_PERSIST, tick_cb, NULL);
	if (w->tick == NULL || event_add(w->tick, &tv) != 0)
		return (-1);
	w->guest = w->backend = w->sleg = w->cleg = w->fake_fd = -1;
	w->cl.w = w->sv.w = w;
	w->conf.replay_max = MIB;
	w->conf.hold_ms = 5000;
	w->conf.handshake_ms = 2000;
	w->conf.keepalive_ms = 0;
	w->conf.max_sessions = 16;
	w->conf.max_pending = 16;
	*state = w;
	return (0);
}

/* Free everything, also after a failed assert, for ASan. */
static int
teardown(void **state)
{
	struct world	*w = *state;
	int		 i;

	sess_ctx_free(w->cl.ctx);
	sess_ctx_free(w->sv.ctx);
	mux_free(w->link[0]);
	mux_free(w->link[1]);
	if (w->guest != -1)
		close(w->guest);
	if (w->backend != -1)
		close(w->backend);
	for (i = 0; i < w->nrogue; i++)
		close(w->rogue[i]);
	if (w->up.own)
		free(w->up.src);
	if (w->down.own)
		free(w->down.src);
	event_free(w->tick);
	event_base_free(w->base);
	free(w);
	return (0);
}

/* Both contexts, with whatever w->conf the test set. */
static void
world_start(struct world *w)
{
	w->cl.ctx = sess_ctx_new(w->base, SESS_CLIENT, &w->conf, &t_ops,
	    &w->cl);
	w->sv.ctx = sess_ctx_new(w->base, SESS_SERVER, &w->conf, &t_ops,
	    &w->sv);
	assert_non_null(w->cl.ctx);
	assert_non_null(w->sv.ctx);
}

/* Both contexts, each with its own settings. */
static void
world_start_with(struct world *w, const struct sess_conf *cl,
    const struct sess_conf *sv)
{
	w->cl.ctx = sess_ctx_new(w->base, SESS_CLIENT, cl, &t_ops, &w->cl);
	w->sv.ctx = sess_ctx_new(w->base, SESS_SERVER, sv, &t_ops, &w->sv);
	assert_non_null(w->cl.ctx);
	assert_non_null(w->sv.ctx);
}

/* Both contexts as world_start(), but each with its own replay_max. */
static void
world_start_split(struct world *w, size_t cl_replay, size_t sv_replay)
{
	struct sess_conf	cl = w->conf, sv = w->conf;

	cl.replay_max = cl_replay;
	sv.replay_max = sv_replay;
	world_start_with(w, &cl, &sv);
}

/* A connection of guest G and its client session. */
static void
world_guest_as(struct world *w, const struct sess_guest *g)
{
	int	fd[2];

	nonblock_pair(fd);
	w->cl.s = sess_client_new(w->cl.ctx, fd[0], g);
	assert_non_null(w->cl.s);
	if (w->guest != -1)
		close(w->guest);
	w->guest = fd[1];
}

/* A guest connection and its client session: a vSocket stream. */
static void
world_guest(struct world *w)
{
	const struct sess_guest	g = { GUEST_HOST, GUEST_CID, GUEST_PORT,
				    PROTO_SVC_STREAM, NULL };

	world_guest_as(w, &g);
}

/* Move test traffic on whichever local streams exist. */
static void
world_io(struct world *w)
{
	flow_write(&w->up, w->guest);
	flow_read(&w->down, w->guest);
	flow_read(&w->up, w->backend);
	flow_write(&w->down, w->backend);
}

/* The replay buffer stays within replay_max, always. */
static void
world_check(struct world *w)
{
	const struct sess	*ss[2] = { w->cl.s, w->sv.s };
	long long		 v;
	int			 i;

	if (w->watch_in && w->sv.s != NULL &&
	    (v = jint(w->sv.s, "unacked_in")) > w->max_unacked_in)
		w->max_unacked_in = v;
	if (!w->check_cap)
		return;
	for (i = 0; i < 2; i++) {
		if (ss[i] == NULL)
			continue;
		v = jint(ss[i], "unacked_out");
		if (v > w->max_unacked)
			w->max_unacked = v;
		if (v < 0 || v > (long long)w->conf.replay_max)
			fail_msg("%s: unacked_out %lld, replay_max %zu",
			    i == 0 ? "client" : "server", v,
			    w->conf.replay_max);
	}
}

/* One turn of the loop; 0 once the deadline has passed. */
static int
world_step(struct world *w)
{
	if (now_ms() > w->deadline)
		return (0);
	event_base_loop(w->base, EVLOOP_ONCE);
	world_io(w);
	world_check(w);
	return (1);
}

/* Run the loop until COND holds; fail the test after WAIT_MS. */
#define WAIT(w, cond) do {						\
	(w)->deadline = now_ms() + WAIT_MS;				\
	world_io(w);							\
	while (!(cond))							\
		if (!world_step(w))					\
			fail_msg("timed out waiting for: %s", #cond);	\
} while (0)

/* Run the loop for MS milliseconds whatever happens. */
static void
world_idle(struct world *w, long long ms)
{
	w->deadline = now_ms() + ms;
	while (world_step(w))
		;
}

/* Both flows arrived whole and in order, the down one named DOWN. */
static void
flows_check(struct world *w, const char *down)
{
	flow_check(&w->up, "guest -> backend");
	flow_check(&w->down, down);
}

/* Let both flows finish, run the loop IDLE_MS more (late frames), check. */
static void
flows_finish(struct world *w, long long idle_ms, const char *down)
{
	WAIT(w, flow_done(&w->up) && flow_done(&w->down));
	if (idle_ms > 0)
		world_idle(w, idle_ms);
	flows_check(w, down);
}

/* Guest G's connection and the backend both connected and open. */
static void
world_open_as(struct world *w, const struct sess_guest *g)
{
	world_guest_as(w, g);
	WAIT(w, w->cl.n_open == 1 && w->sv.n_open == 1);
	assert_non_null(w->cl.s);
	assert_non_null(w->sv.s);
	assert_int_equal(sess_state(w->cl.s), SESS_ESTABLISHED);
	assert_int_equal(sess_state(w->sv.s), SESS_ESTABLISHED);
}

/* Guest and backend both connected and open. */
static void
world_open(struct world *w)
{
	world_guest(w);
	WAIT(w, w->cl.n_open == 1 && w->sv.n_open == 1);
	assert_non_null(w->cl.s);
	assert_non_null(w->sv.s);
	assert_int_equal(w->cl.open_reason, 0);
	assert_int_equal(w->sv.open_reason, 0);
	assert_int_equal(sess_state(w->cl.s), SESS_ESTABLISHED);
	assert_int_equal(sess_state(w->sv.s), SESS_ESTABLISHED);
}

/* --- hand-made legs ------------------------------------------------------- */

struct rogue {
	int		 fd;
	struct evbuffer	*in;
	int		 eof;
};

/* A leg the test plays the client end of. */
static void
rogue_open(struct world *w, struct rogue *r, const char *peer)
{
	struct bufferevent	*bev;
	int			 fd[2];

	assert_true(w->nrogue < (int)(sizeof(w->rogue) / sizeof(w->rogue[0])));
	nonblock_pair(fd);
	bev = bufferevent_socket_new(w->base, fd[1], BEV_OPT_CLOSE_ON_FREE);
	assert_non_null(bev);
	sess_accept(w->sv.ctx, bev, peer);
	r->fd = w->rogue[w->nrogue++] = fd[0];
	r->eof = 0;
	r->in = evbuffer_new();
	assert_non_null(r->in);
}

/* The test end of a fake-server leg. */
static void
rogue_attach(struct rogue *r, int fd)
{
	assert_true(fd != -1);
	r->fd = fd;
	r->eof = 0;
	r->in = evbuffer_new();
	assert_non_null(r->in);
}

/* Done with a hand-made leg (its fd is closed in teardown). */
static void
rogue_free(struct rogue *r)
{
	evbuffer_free(r->in);
	r->in = NULL;
}

/* Small writes only: they must fit in the socket at once. */
static void
rogue_send(struct rogue *r, const void *p, size_t len)
{
	assert_int_equal(write(r->fd, p, len), (ssize_t)len);
}

/* Send and empty an evbuffer of frames. */
static void
rogue_send_buf(struct rogue *r, struct evbuffer *b)
{
	size_t	len = evbuffer_get_length(b);

	rogue_send(r, evbuffer_pullup(b, -1), len);
	evbuffer_drain(b, len);
}

/* Open a leg named PEER on R and send the HELLO HI on it. */
static void
rogue_hello(struct world *w, struct rogue *r, const char *peer,
    const struct proto_hello *hi)
{
	struct evbuffer	*b = evbuffer_new();

	assert_non_null(b);
	frame_hello_add(b, hi);
	rogue_open(w, r, peer);
	rogue_send_buf(r, b);
	evbuffer_free(b);
}

/* Pull in what the server sent; note EOF. */
static void
rogue_read(struct rogue *r)
{
	int	n;

	while (!r->eof) {
		n = evbuffer_read(r->in, r->fd, 4096);
		if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR))
			r->eof = 1;
		else if (n == -1)
			return;
	}
}

/* Take one whole frame if there is one. */
static int
rogue_frame(struct rogue *r, struct frame_hdr *h, uint8_t *p, size_t cap)
{
	rogue_read(r);
	if (frame_peek(r->in, h) != FRAME_OK ||
	    evbuffer_get_length(r->in) < PROTO_HDR_LEN + h->len)
		return (0);
	if (h->len > cap)
		fail_msg("frame of %u bytes", h->len);
	evbuffer_drain(r->in, PROTO_HDR_LEN);
	evbuffer_remove(r->in, p, h->len);
	return (1);
}

/* Whether the server has closed its end. */
static int
rogue_closed(struct rogue *r)
{
	rogue_read(r);
	return (r->eof);
}

/* The server answers with one ERROR of CODE, then closes the leg. */
static void
rogue_expect_error(struct world *w, struct rogue *r, int code,
    struct proto_error *er)
{
	struct frame_hdr	h;
	uint8_t			p[PROTO_HANDSHAKE_MAX];

	WAIT(w, rogue_frame(r, &h, p, sizeof(p)) || rogue_closed(r));
	if (h.type != PROTO_ERROR)
		fail_msg("expected ERROR, got %s", frame_strtype(h.type));
	assert_int_equal(frame_error_decode(p, h.len, er), FRAME_OK);
	if (er->code != code)
		fail_msg("ERROR code %s (%s), expected %s",
		    frame_strcode(er->code), er->reason, frame_strcode(code));
	assert_true(er->reason[0] != '\0');
	WAIT(w, rogue_closed(r));
	assert_int_equal(evbuffer_get_length(r->in), 0);
}

/* A RESUME hello for SID. */
static void
hello_resume(struct evbuffer *b, uint64_t sid, int version)
{
	struct proto_hello	h;

	memset(&h, 0, sizeof(h));
	h.version = version;
	h.kind = PROTO_HELLO_RESUME;
	h.sid = sid;
	fill_random(h.nonce, sizeof(h.nonce), sid);
	frame_hello_add(b, &h);
}

/*
 * The client's HELLO on its newest leg to the test (w->fake), in *HI;
 * R is that leg's test end.
 */
static void
fake_hello(struct world *w, struct rogue *r, struct proto_hello *hi)
{
	struct frame_hdr	h;
	uint8_t			p[PROTO_HANDSHAKE_MAX];

	WAIT(w, w->fake_fd != -1);
	rogue_attach(r, w->fake_fd);
	WAIT(w, rogue_frame(r, &h, p, sizeof(p)) || rogue_closed(r));
	assert_int_equal(h.type, PROTO_HELLO);
	assert_int_equal(frame_hello_decode(p, h.len, hi), FRAME_OK);
}

/*
 * A WELCOME of VERSION for SID on R, with any X25519 key: the tests
 * that play the server never need the secret.
 */
static void
fake_welcome(struct rogue *r, uint64_t sid, int version)
{
	struct proto_welcome	 wel;
	struct evbuffer		*b;

	memset(&wel, 0, sizeof(wel));
	wel.version = version;
	wel.sid = sid;
	wel.window = 1U << 30;	/* past any test's: the client's holds */
	fill_random(wel.nonce, sizeof(wel.nonce), 7);
	fill_random(wel.pubkey, sizeof(wel.pubkey), 8);
	b = evbuffer_new();
	assert_non_null(b);
	frame_welcome_add(b, &wel);
	rogue_send_buf(r, b);
	evbuffer_free(b);
}

/*
 * A client session whose contexts keep WIN unacknowledged (0: the
 * world's default), opened by R playing its server with a WELCOME of
 * VERSION.  The HELLO that asked goes to *HI.
 */
static void
fake_open(struct world *w, struct rogue *r, size_t win, int version,
    struct proto_hello *hi)
{
	if (win == 0)
		world_start(w);
	else
		world_start_split(w, win, win);
	w->fake = 1;
	world_guest(w);
	fake_hello(w, r, hi);
	fake_welcome(r, hi->sid, version);
	WAIT(w, w->cl.n_open == 1);
}

/* --- tests ------------------------------------------------------------- */

/* Open, bytes both ways, and the counters that say so. */
static void
test_open_echo(void **state)
{
	static const uint8_t	 pre[] = "PROXY-test-preamble\n";
	struct world		*w = *state;
	const char		*gmsg = "hello from the guest\n";
	const char		*bmsg = "and hello back from the backend";
	json_t			*o;

	w->pre = pre;
	w->prelen = sizeof(pre) - 1;
	world_start(w);
	world_open(w);
	assert_int_equal(w->connects, 1);
	assert_int_equal(w->opens, 1);
	assert_int_equal(sess_ctx_count(w->cl.ctx), 1);
	assert_int_equal(sess_ctx_count(w->sv.ctx), 1);

	/* The HELLO carried who the guest is and which session. */
	assert_true(sess_id(w->cl.s) != 0);
	assert_true(sess_id(w->cl.s) == sess_id(w->sv.s));
	assert_string_equal(sess_idstr(w->cl.s), sess_idstr(w->sv.s));
	assert_ptr_equal(sess_ctx_find(w->sv.ctx, sess_id(w->cl.s)), w->sv.s);
	assert_ptr_equal(sess_ctx_find(w->cl.ctx, sess_id(w->cl.s)), w->cl.s);
	assert_string_equal(sess_host(w->sv.s), GUEST_HOST);
	assert_int_equal(sess_cid(w->sv.s), GUEST_CID);
	assert_int_equal(sess_port(w->sv.s), GUEST_PORT);

	flow_init(&w->up, strlen(gmsg), 1);
	memcpy(w->up.src, gmsg, w->up.len);
	w->up.pre = pre;
	w->up.prelen = w->prelen;
	flow_init(&w->down, strlen(bmsg), 2);
	memcpy(w->down.src, bmsg, w->down.len);
	flows_finish(w, 30, "backend -> guest");

	assert_int_equal(jint(w->cl.s, "bytes_out"), strlen(gmsg));
	assert_int_equal(jint(w->cl.s, "bytes_in"), strlen(bmsg));
	/* The preamble is not session data. */
	assert_int_equal(jint(w->sv.s, "bytes_in"), strlen(gmsg));
	assert_int_equal(jint(w->sv.s, "bytes_out"), strlen(bmsg));
	/* Delivered bytes get acknowledged: nothing left to replay. */
	assert_int_equal(jint(w->cl.s, "unacked_out"), 0);
	assert_int_equal(jint(w->sv.s, "unacked_out"), 0);
	assert_int_equal(jint(w->cl.s, "resumes"), 0);

	o = sess_json(w->sv.s);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "state")),
	    "established");
	assert_string_equal(json_string_value(json_object_get(o, "id")),
	    sess_idstr(w->sv.s));
	assert_string_equal(json_string_value(json_object_get(
	    json_object_get(o, "guest"), "host")), GUEST_HOST);
	/* A plain guest: the stream service, no VM name. */
	assert_int_equal(sess_service(w->sv.s), PROTO_SVC_STREAM);
	assert_string_equal(sess_name(w->sv.s), "");
	assert_string_equal(json_string_value(json_object_get(
	    json_object_get(o, "guest"), "service")), "stream");
	assert_string_equal(json_string_value(json_object_get(
	    json_object_get(o, "guest"), "name")), "");
	json_decref(o);
	o = sess_ctx_json(w->cl.ctx);
	assert_true(json_is_array(o));
	assert_int_equal(json_array_size(o), 1);
	json_decref(o);

	assert_int_equal(w->cl.n_detached + w->sv.n_detached, 0);
	assert_int_equal(w->cl.n_closed + w->sv.n_closed, 0);
	assert_int_equal(w->refusals, 0);
}

/* The service and the VM name of guest G, as status shows them. */
static void
check_guest_json(const struct sess *s, const struct sess_guest *g)
{
	json_t	*o, *gj;

	o = sess_json(s);
	assert_non_null(o);
	gj = json_object_get(o, "guest");
	assert_true(json_is_object(gj));
	assert_string_equal(json_string_value(json_object_get(gj, "host")),
	    g->host);
	assert_int_equal(json_integer_value(json_object_get(gj, "cid")),
	    g->cid);
	assert_int_equal(json_integer_value(json_object_get(gj, "port")),
	    g->port);
	assert_string_equal(json_string_value(json_object_get(gj,
	    "service")), sess_strservice(g->service));
	assert_string_equal(json_string_value(json_object_get(gj, "name")),
	    g->name);
	json_decref(o);
}

/* HELLO NEW carries the service and the VM name to the server. */
static void
test_service_name(void **state)
{
	static const char	 name[] = "vm-01 caf\xc3\xa9";
	const struct sess_guest	 g = { GUEST_HOST, 0, 1024,
				    PROTO_SVC_SERIAL, name };
	struct world		*w = *state;

	assert_string_equal(sess_strservice(PROTO_SVC_STREAM), "stream");
	assert_string_equal(sess_strservice(PROTO_SVC_VSPC), "vspc");
	assert_string_equal(sess_strservice(PROTO_SVC_SERIAL), "serial");
	assert_string_equal(sess_strservice(PROTO_SVC_VMOMI), "vmomi");
	assert_string_equal(sess_strservice(PROTO_SVC_MAX + 1), "unknown");
	assert_string_equal(sess_strservice((enum proto_service)65535),
	    "unknown");

	world_start(w);
	world_open_as(w, &g);
	/* The client keeps its own copy, the server has the HELLO's. */
	assert_int_equal(sess_service(w->cl.s), PROTO_SVC_SERIAL);
	assert_string_equal(sess_name(w->cl.s), name);
	assert_int_equal(sess_service(w->sv.s), PROTO_SVC_SERIAL);
	assert_string_equal(sess_name(w->sv.s), name);
	assert_string_equal(sess_host(w->sv.s), GUEST_HOST);
	assert_int_equal(sess_cid(w->sv.s), 0);
	assert_int_equal(sess_port(w->sv.s), 1024);
	check_guest_json(w->cl.s, &g);
	check_guest_json(w->sv.s, &g);

	/* And the session works as any other. */
	flow_init(&w->up, 5000, 11);
	flow_init(&w->down, 5000, 12);
	flows_finish(w, 0, "backend -> guest");
	assert_int_equal(w->refusals, 0);
}

/* A VM name of PROTO_NAME_MAX bytes arrives whole, not cut. */
static void
test_name_max(void **state)
{
	struct world		*w = *state;
	struct sess_guest	 g = { GUEST_HOST, GUEST_CID, GUEST_PORT,
				    PROTO_SVC_VSPC, NULL };
	char			 name[PROTO_NAME_MAX + 1];
	size_t			 i;

	for (i = 0; i < PROTO_NAME_MAX; i++)
		name[i] = 'a' + i % 26;
	name[PROTO_NAME_MAX - 1] = 'Z';		/* the last one counts */
	name[PROTO_NAME_MAX] = '\0';
	g.name = name;
	world_start(w);
	world_open_as(w, &g);
	assert_int_equal(strlen(sess_name(w->sv.s)), PROTO_NAME_MAX);
	assert_string_equal(sess_name(w->sv.s), name);
	assert_int_equal(sess_service(w->sv.s), PROTO_SVC_VSPC);
	check_guest_json(w->sv.s, &g);
	assert_int_equal(w->refusals, 0);
}

/*
 * The largest HELLO there is (a 255-byte host and a 160-byte name,
 * 507 bytes of payload) opens a session like any other.
 */
static void
test_hello_largest(void **state)
{
	struct world		*w = *state;
	struct sess_guest	 g = { NULL, GUEST_CID, GUEST_PORT,
				    PROTO_SVC_SERIAL, NULL };
	char			 host[PROTO_HOST_MAX + 1];
	char			 name[PROTO_NAME_MAX + 1];

	memset(host, 'h', PROTO_HOST_MAX);
	host[PROTO_HOST_MAX] = '\0';
	memset(name, 'n', PROTO_NAME_MAX);
	name[PROTO_NAME_MAX] = '\0';
	g.host = host;
	g.name = name;
	world_start(w);
	world_open_as(w, &g);
	assert_string_equal(sess_host(w->sv.s), host);
	assert_string_equal(sess_name(w->sv.s), name);
	check_guest_json(w->sv.s, &g);
	assert_int_equal(w->refusals, 0);
}

/* 8 MiB each way through a 64 KiB replay buffer. */
static void
test_large_transfer(void **state)
{
	struct world	*w = *state;
	size_t		 n = 8 * MIB;

	w->conf.replay_max = 64 * 1024;
	world_start(w);
	w->check_cap = 1;
	world_open(w);
	flow_init(&w->up, n, 0x1234);
	flow_init(&w->down, n, 0x5678);
	flows_finish(w, 0, "backend -> guest");
	/* It ran up against the cap: backpressure held it there. */
	if (w->max_unacked < (long long)w->conf.replay_max / 2)
		fail_msg("unacked_out peaked at %lld only", w->max_unacked);
	assert_int_equal(jint(w->cl.s, "bytes_out"), n);
	assert_int_equal(jint(w->sv.s, "bytes_in"), n);
	assert_int_equal(jint(w->sv.s, "bytes_out"), n);
	assert_int_equal(jint(w->cl.s, "bytes_in"), n);
	assert_int_equal(w->cl.n_detached + w->sv.n_detached, 0);
}

/*
 * DATA bodies are spliced from the leg to the local stream, in order
 * with those that cannot be: readers that stop for a while fill the
 * pipe and the bodies behind it are copied, and legs broken mid-stream
 * (perhaps mid-body) resume from the last byte either path delivered.
 */
static void
test_splice(void **state)
{
	struct world	*w = *state;
	size_t		 n = 24 * MIB;
	long long	 sp[4];
	int		 k;

	world_start(w);
	w->check_cap = 1;
	world_open(w);
	flow_init(&w->up, n, 0x51);
	flow_init(&w->down, n, 0x52);
	for (k = 1; k <= 6; k++) {
		WAIT(w, w->up.rd >= k * 3 * MIB && w->down.rd >= k * 3 * MIB);
		if (k % 2 == 1) {
			w->up.rpause = w->down.rpause = 1;
			world_idle(w, 30);
			w->up.rpause = w->down.rpause = 0;
			continue;
		}
		assert_int_equal(shutdown(w->sleg, SHUT_RDWR), 0);
		WAIT(w, w->cl.n_resumed == k / 2 && w->sv.n_resumed == k / 2);
	}
	flows_finish(w, 0, "backend -> guest");
	/* All acknowledged: neither end holds its pipes any more. */
	WAIT(w, !jbool(w->cl.s, "splicing") && !jbool(w->sv.s, "splicing"));
	sp[0] = jstat(w->cl.ctx, "spliced_bytes");
	sp[1] = jstat(w->sv.ctx, "spliced_bytes");
	sp[2] = jstat(w->cl.ctx, "spliced_sent_bytes");
	sp[3] = jstat(w->sv.ctx, "spliced_sent_bytes");
	/*
	 * Most of each direction spliced on the way in and on the way out,
	 * and not all of it.
	 */
	for (k = 0; k < 4; k++)
		if (sp[k] < (long long)n / 4 || sp[k] >= (long long)n)
			fail_msg("%s %s spliced %lld of %zu", k % 2 == 0 ?
			    "client" : "server", k < 2 ? "received" : "sent",
			    sp[k], n);
	assert_int_equal(jint(w->cl.s, "bytes_in"), n);
	assert_int_equal(jint(w->sv.s, "bytes_in"), n);
	assert_int_equal(w->cl.n_closed + w->sv.n_closed, 0);
	assert_int_equal(w->refusals, 0);
}

/* Whether FD has bytes to read now. */
static int
readable(int fd)
{
	struct pollfd	pfd = { fd, POLLIN, 0 };

	return (poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN));
}

/* Bytes waiting to be read on FD. */
static int
unread(int fd)
{
	int	n = 0;

	if (ioctl(fd, FIONREAD, &n) == -1)
		return (-1);
	return (n);
}

/*
 * The server's end of its leg is swapped for a socket whose peer has
 * gone: what the server had not read yet of the old one is lost, as in
 * a reset, and it reads EOF once it reads again.
 */
static void
world_lose_leg(struct world *w)
{
	int	fd[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
	close(fd[1]);
	assert_int_equal(dup2(fd[0], w->sleg), w->sleg);
	close(fd[0]);
}

/*
 * A leg lost with spliced DATA in flight, some unread by the server and
 * some frames cut by a full socket: the resume sends the lost bytes
 * again from what the pipes held, once each, in order.
 */
static void
splice_lost(struct world *w)
{
	size_t		 n = 16 * MIB;
	int		 k;

	world_start(w);
	w->check_cap = 1;
	world_open(w);
	flow_init(&w->up, n, 0x54);
	flow_init(&w->down, n, 0x55);
	for (k = 1; k <= 3; k++) {
		WAIT(w, w->up.rd >= k * 4 * MIB && w->down.rd >= k * 4 * MIB);
		/* The server waits on its backend, its leg fills. */
		w->up.rpause = 1;
		WAIT(w, unread(w->sleg) >= 64 * 1024);
		world_lose_leg(w);
		w->up.rpause = 0;
		WAIT(w, w->cl.n_resumed == k && w->sv.n_resumed == k);
	}
	flows_finish(w, 0, "backend -> guest");
	if (jstat(w->cl.ctx, "replayed_bytes") == 0)
		fail_msg("nothing was sent again");
	if (jstat(w->cl.ctx, "spliced_sent_bytes") < (long long)n / 4)
		fail_msg("client spliced %lld of %zu",
		    jstat(w->cl.ctx, "spliced_sent_bytes"), n);
	assert_int_equal(w->cl.n_closed + w->sv.n_closed, 0);
}

static void
test_splice_lost(void **state)
{
	splice_lost(*state);
}

/* The same over TCP, where a socket takes part of a frame's body. */
static void
test_splice_lost_tcp(void **state)
{
	struct world	*w = *state;

	w->tcp_legs = 1;
	splice_lost(w);
}

/*
 * An echo backend that reads nothing while its echo waits, as one does,
 * and a session window smaller than what is in flight.  The server's
 * leg waits for the backend to take the bodies spliced to it, but
 * still reads the ACK that opens its own window: else the server waits
 * for the backend, which waits for the server to read its echo, which
 * waits for that ACK, for good.
 */
static void
test_splice_echo(void **state)
{
	struct world	*w = *state;
	size_t		 n = 16 * MIB;
	int		 sz = 16 * 1024;

	w->conf.replay_max = 256 * 1024;
	world_start(w);
	w->check_cap = 1;
	world_open(w);
	/* Its echo blocks early: a small socket buffer. */
	assert_int_equal(setsockopt(w->backend, SOL_SOCKET, SO_SNDBUF, &sz,
	    sizeof(sz)), 0);
	flow_init(&w->up, n, 0x53);
	flow_echo(&w->down, &w->up);
	w->up.echo = &w->down;
	flows_finish(w, 0, "backend -> guest (echo)");
	if (jstat(w->sv.ctx, "spliced_bytes") < (long long)n / 4)
		fail_msg("server spliced %lld of %zu",
		    jstat(w->sv.ctx, "spliced_bytes"), n);
	assert_int_equal(w->cl.n_detached + w->sv.n_detached, 0);
}

/*
 * 16 MiB echoed by a backend behind the server, whose window is
 * SV_WIN, the client's CL_WIN: both ways, whole, and with no leg lost.
 */
static void
echo_split(struct world *w, size_t cl_win, size_t sv_win, int seed)
{
	size_t	n = 16 * MIB;
	int	sz = 16 * 1024;

	world_start_split(w, cl_win, sv_win);
	world_open(w);
	assert_int_equal(setsockopt(w->backend, SOL_SOCKET, SO_SNDBUF, &sz,
	    sizeof(sz)), 0);
	flow_init(&w->up, n, seed);
	flow_echo(&w->down, &w->up);
	w->up.echo = &w->down;
	flows_finish(w, 0, "backend -> guest (echo)");
	assert_int_equal(w->cl.n_detached + w->sv.n_detached, 0);
}

/*
 * An echo behind the end with the smaller window: that end's sending
 * waits for the ACK the client sends behind its DATA, so its leg must
 * read on toward it rather than pause for its local output.
 */
static void
test_unequal_echo(void **state)
{
	echo_split(*state, MIB, 64 * 1024, 0x56);
}

/*
 * The same with a peer whose window is far past the four caps a leg
 * reads on to for an older peer (8 MiB against 64 KiB): each end sends
 * no more than the smaller of the two windows, which HELLO NEW and
 * WELCOME announce (version 5), so the echo's end never holds more
 * than its own window for its local reader.
 */
static void
test_window_echo(void **state)
{
	struct world	*w = *state;

	echo_split(w, 8 * MIB, 64 * 1024, 0x57);
	assert_int_equal(jint(w->cl.s, "window"), 64 * 1024);
	assert_int_equal(jint(w->sv.s, "window"), 64 * 1024);
	assert_int_equal(jint(w->cl.s, "version"), PROTO_VERSION);
}

/*
 * A HELLO NEW that only version 5's window would take past the 507
 * bytes a version 4 server's header check allows goes in version 4:
 * that server would refuse it as malformed, not by version.
 */
static void
test_hello_long_v4(void **state)
{
	struct world		*w = *state;
	struct rogue		 r;
	struct proto_hello	 hi;
	char			 host[PROTO_HOST_MAX + 1];
	char			 name[PROTO_NAME_MAX + 1];
	struct sess_guest	 g = { host, GUEST_CID, GUEST_PORT,
				    PROTO_SVC_SERIAL, name };

	memset(host, 'h', sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	memset(name, 'n', sizeof(name) - 1);
	name[PROTO_NAME_MAX - 3] = '\0';	/* v5: 96 + 255 + 157 = 508 */
	world_start(w);
	w->fake = 1;
	world_guest_as(w, &g);
	fake_hello(w, &r, &hi);
	assert_int_equal(hi.version, 4);
	assert_int_equal(hi.window, 0);
	assert_string_equal(hi.name, name);
	rogue_free(&r);
}

/*
 * A DATA frame that repeats bytes already delivered, arriving in parts:
 * the repeat is dropped and the rest delivered once, never spliced
 * whole; the client's own frames for those bytes are dropped in turn.
 */
static void
test_data_overlap(void **state)
{
	struct world	*w = *state;
	struct evbuffer	*b;
	size_t		 n = 400000, at = n / 4, back = 1000;
	size_t		 len = 60000;

	world_start(w);
	world_open(w);
	flow_init(&w->up, n, 93);
	flow_init(&w->down, n, 94);
	w->up.stop = w->down.stop = at;
	WAIT(w, w->up.rd == at && w->down.rd == at);
	world_idle(w, 20);
	b = evbuffer_new();
	assert_non_null(b);
	/* From the client's idle leg: its header and a little, then more. */
	frame_data_hdr_add(b, at - back, len);
	evbuffer_add(b, w->up.src + at - back, len);
	assert_int_equal(evbuffer_write_atmost(b, w->cleg, PROTO_HDR_LEN +
	    8 + 100), PROTO_HDR_LEN + 8 + 100);
	world_idle(w, 20);
	assert_true(evbuffer_write(b, w->cleg) > 0);
	assert_int_equal(evbuffer_get_length(b), 0);
	evbuffer_free(b);
	WAIT(w, w->up.rd == at - back + len);
	w->up.stop = w->down.stop = n;
	flows_finish(w, 0, "backend -> guest");
	assert_int_equal(jint(w->sv.s, "bytes_in"), n);
	assert_int_equal(w->cl.n_detached + w->sv.n_detached, 0);
}

/* Break the leg three times mid-transfer; the streams do not notice. */
static void
test_resume(void **state)
{
	struct world	*w = *state;
	size_t		 n = 4 * MIB;
	int		 k;

	w->conf.replay_max = 256 * 1024;
	world_start(w);
	w->check_cap = 1;
	world_open(w);
	flow_init(&w->up, n, 0xabc);
	flow_init(&w->down, n, 0xdef);
	for (k = 1; k <= 3; k++) {
		WAIT(w, w->up.rd >= k * MIB && w->down.rd >= k * MIB);
		/* Hold the reconnect until the server has seen it too. */
		w->no_target = 1;
		assert_int_equal(shutdown(w->sleg, SHUT_RDWR), 0);
		WAIT(w, w->cl.n_detached == k && w->sv.n_detached == k);
		assert_int_equal(sess_state(w->cl.s), SESS_DETACHED);
		assert_int_equal(sess_state(w->sv.s), SESS_DETACHED);
		assert_non_null(strstr(w->cl.why_detached, "mesh leg"));
		assert_non_null(strstr(w->sv.why_detached, "mesh leg"));
		w->no_target = 0;
		WAIT(w, w->cl.n_resumed == k && w->sv.n_resumed == k);
		assert_int_equal(sess_state(w->cl.s), SESS_ESTABLISHED);
		assert_int_equal(sess_state(w->sv.s), SESS_ESTABLISHED);
		assert_int_equal(jint(w->cl.s, "resumes"), k);
		assert_int_equal(jint(w->sv.s, "resumes"), k);
		/* Each in one round trip: the HELLO carried the proof. */
		assert_int_equal(jstat(w->cl.ctx, "resumes_one_trip"), k);
		assert_int_equal(jstat(w->sv.ctx, "resumes_one_trip"), k);
		assert_true(sess_resume_ms(w->cl.s) >= 0);
		assert_true(sess_resume_ms(w->sv.s) >= 0);
		assert_int_equal(w->connects, 1 + k);
	}
	flows_finish(w, 30, "backend -> guest");
	assert_int_equal(w->connects, 4);
	assert_true(w->calls >= 4);
	assert_int_equal(w->cl.n_open + w->sv.n_open, 2);
	assert_int_equal(w->opens, 1);
	assert_int_equal(w->cl.n_closed + w->sv.n_closed, 0);
	assert_int_equal(jint(w->cl.s, "bytes_out"), n);
	assert_int_equal(jint(w->cl.s, "bytes_in"), n);
	assert_int_equal(jint(w->sv.s, "bytes_out"), n);
	assert_int_equal(jint(w->sv.s, "bytes_in"), n);
	assert_int_equal(w->refusals, 0);
}

/* A resume that cannot prove itself is refused; the session lives on. */
static void
test_bad_resume(void **state)
{
	struct world		*w = *state;
	struct rogue		 r;
	struct evbuffer		*b;
	struct frame_hdr	 h;
	struct proto_challenge	 c;
	struct proto_proof	 pr;
	struct proto_error	 er;
	uint8_t			 p[PROTO_HANDSHAKE_MAX];
	uint64_t		 sid, other;
	size_t			 n = 3 * 256 * 1024;

	world_start(w);
	world_open(w);
	flow_init(&w->up, n, 11);
	flow_init(&w->down, n, 12);
	w->up.stop = w->down.stop = n / 3;
	WAIT(w, w->up.rd == n / 3 && w->down.rd == n / 3);

	b = evbuffer_new();
	assert_non_null(b);
	sid = sess_id(w->sv.s);
	rogue_open(w, &r, "rogue-auth");
	hello_resume(b, sid, PROTO_VERSION);
	rogue_send_buf(&r, b);
	WAIT(w, rogue_frame(&r, &h, p, sizeof(p)) || rogue_closed(&r));
	assert_int_equal(h.type, PROTO_CHALLENGE);
	assert_int_equal(frame_challenge_decode(p, h.len, &c), FRAME_OK);

	/* The real leg carries on while the claimant thinks. */
	w->up.stop = w->down.stop = 2 * n / 3;
	WAIT(w, w->up.rd == 2 * n / 3 && w->down.rd == 2 * n / 3);

	memset(&pr, 0, sizeof(pr));
	pr.next = jint(w->cl.s, "bytes_in");
	memset(pr.mac, 0xa5, sizeof(pr.mac));
	frame_proof_add(b, &pr);
	rogue_send_buf(&r, b);
	rogue_expect_error(w, &r, PROTO_E_AUTH, &er);
	assert_int_equal(w->refusals, 1);
	assert_true(w->why_refused[0] != '\0');
	rogue_free(&r);

	/* Resume of a session nobody has. */
	other = sid ^ 0x8000000000000001ULL;
	assert_null(sess_ctx_find(w->sv.ctx, other));
	rogue_open(w, &r, "rogue-unknown");
	hello_resume(b, other, PROTO_VERSION);
	rogue_send_buf(&r, b);
	rogue_expect_error(w, &r, PROTO_E_UNKNOWN_SESSION, &er);
	assert_int_equal(w->refusals, 2);
	rogue_free(&r);
	evbuffer_free(b);

	/* The real session never noticed. */
	w->up.stop = w->down.stop = n;
	flows_finish(w, 0, "backend -> guest");
	assert_int_equal(w->cl.n_detached + w->sv.n_detached, 0);
	assert_int_equal(w->cl.n_resumed + w->sv.n_resumed, 0);
	assert_int_equal(w->cl.n_closed + w->sv.n_closed, 0);
	assert_int_equal(jint(w->sv.s, "resumes"), 0);
	assert_int_equal(sess_state(w->sv.s), SESS_ESTABLISHED);
	assert_int_equal(w->connects, 1);
	assert_int_equal(sess_ctx_count(w->sv.ctx), 1);
}

/* Version mismatch and garbage are refused with the right code. */
static void
test_bad_hello(void **state)
{
	static const char	 garbage[] = "GET / HTTP/1.1\r\n\r\n";
	struct world		*w = *state;
	struct rogue		 r;
	struct evbuffer		*b;
	struct proto_hello	 hn;
	struct proto_error	 er;
	uint8_t			 raw[PROTO_HDR_LEN + 48], *v1;
	size_t			 v1len;
	int			 i;

	/* Leaked handshake slots would show as LIMIT refusals later. */
	w->conf.max_pending = 2;
	world_start(w);
	b = evbuffer_new();
	assert_non_null(b);

	/* A NEW hello from a future version. */
	memset(&hn, 0, sizeof(hn));
	hn.version = 9;
	hn.kind = PROTO_HELLO_NEW;
	hn.sid = 0x1122334455667788ULL;
	strlcpy(hn.host, "h", sizeof(hn.host));
	rogue_hello(w, &r, "rogue-version", &hn);
	rogue_expect_error(w, &r, PROTO_E_VERSION, &er);
	/* docs/protocol.md gives this text. */
	assert_string_equal(er.reason,
	    "protocol version 9 not supported; this end speaks versions 2 "
	    "to 5");
	assert_int_equal(w->refusals, 1);
	assert_string_equal(w->why_refused, er.reason);
	rogue_free(&r);

	/*
	 * A version 1 peer's NEW: 89 + hostlen bytes, without v2's
	 * service and name.  Refused by version, not as malformed.
	 */
	hn.version = 1;
	frame_hello_add(b, &hn);
	v1 = evbuffer_pullup(b, -1);
	assert_non_null(v1);
	v1len = evbuffer_get_length(b) - 3;
	assert_int_equal(v1len, PROTO_HDR_LEN + 89 + 1);
	v1[7] = (uint8_t)(v1len - PROTO_HDR_LEN);
	rogue_open(w, &r, "rogue-v1");
	rogue_send(&r, v1, v1len);
	evbuffer_drain(b, evbuffer_get_length(b));
	rogue_expect_error(w, &r, PROTO_E_VERSION, &er);
	assert_string_equal(er.reason,
	    "protocol version 1 not supported; this end speaks versions 2 "
	    "to 5");
	assert_int_equal(w->refusals, 2);
	rogue_free(&r);

	/* Not this protocol at all. */
	rogue_open(w, &r, "rogue-http");
	rogue_send(&r, garbage, sizeof(garbage) - 1);
	rogue_expect_error(w, &r, PROTO_E_MALFORMED, &er);
	assert_int_equal(w->refusals, 3);
	assert_string_equal(w->why_refused, er.reason);
	rogue_free(&r);

	/* A well-formed header around a HELLO without the magic. */
	memset(raw, 0, sizeof(raw));
	raw[0] = PROTO_HELLO;
	raw[7] = 48;
	fill_random(raw + PROTO_HDR_LEN, 48, 99);
	rogue_open(w, &r, "rogue-magic");
	rogue_send(&r, raw, sizeof(raw));
	rogue_expect_error(w, &r, PROTO_E_MALFORMED, &er);
	assert_string_equal(er.reason,
	    "bad HELLO: bad magic (not a vrelay peer)");
	assert_int_equal(w->refusals, 4);
	rogue_free(&r);

	/* A stream frame before any handshake. */
	frame_u64_add(b, PROTO_ACK, 0);
	rogue_open(w, &r, "rogue-early");
	rogue_send_buf(&r, b);
	rogue_expect_error(w, &r, PROTO_E_MALFORMED, &er);
	assert_int_equal(w->refusals, 5);
	rogue_free(&r);

	/* Half a header, then hang up: closed quietly, slot given back. */
	for (i = 0; i < 3; i++) {
		rogue_open(w, &r, "rogue-short");
		rogue_send(&r, garbage, 5);
		shutdown(r.fd, SHUT_WR);
		WAIT(w, rogue_closed(&r));
		assert_int_equal(evbuffer_get_length(r.in), 0);
		rogue_free(&r);
	}
	assert_int_equal(w->refusals, 5);
	evbuffer_free(b);
	assert_int_equal(sess_ctx_count(w->sv.ctx), 0);
	assert_int_equal(w->opens, 0);

	/* The server still takes a real session. */
	world_open(w);
	flow_init(&w->up, 1000, 5);
	flow_init(&w->down, 1000, 6);
	flows_finish(w, 0, "backend -> guest");
	assert_int_equal(w->refusals, 5);
	assert_int_equal(sess_ctx_count(w->sv.ctx), 1);
}

/* Nobody comes back within the hold time: both ends close, say why. */
static void
test_hold_time(void **state)
{
	struct world	*w = *state;
	long long	 t0;
	int		 calls;

	w->conf.hold_ms = 300;
	world_start(w);
	world_open(w);
	flow_init(&w->up, 5000, 21);
	flow_init(&w->down, 5000, 22);
	WAIT(w, flow_done(&w->up) && flow_done(&w->down));

	w->no_target = 1;
	calls = w->calls;
	t0 = now_ms();
	assert_int_equal(shutdown(w->sleg, SHUT_RDWR), 0);
	WAIT(w, w->cl.n_closed == 1 && w->sv.n_closed == 1);
	assert_int_equal(w->cl.n_detached, 1);
	assert_int_equal(w->sv.n_detached, 1);
	assert_int_equal(w->cl.n_resumed + w->sv.n_resumed, 0);
	assert_true(w->calls > calls);		/* it kept trying */
	assert_int_equal(w->connects, 1);
	if (strstr(w->cl.why_closed, "hold time") == NULL)
		fail_msg("client reason: %s", w->cl.why_closed);
	if (strstr(w->sv.why_closed, "hold time") == NULL)
		fail_msg("server reason: %s", w->sv.why_closed);
	/* The client's reason says why it could not get back. */
	assert_non_null(strstr(w->cl.why_closed, "no target (test)"));
	if (w->cl.closed_at - t0 < 250 || w->sv.closed_at - t0 < 250)
		fail_msg("closed %lld/%lld ms after the break, hold 300",
		    w->cl.closed_at - t0, w->sv.closed_at - t0);
	assert_true(w->cl.closed_at - t0 < 2000);
	assert_true(w->sv.closed_at - t0 < 2000);
	assert_null(w->cl.s);
	assert_null(w->sv.s);

	/* Guest and backend connections are closed with it. */
	WAIT(w, w->down.eof && w->up.eof);
	WAIT(w, sess_ctx_count(w->cl.ctx) == 0 &&
	    sess_ctx_count(w->sv.ctx) == 0);
	flows_check(w, "backend -> guest");
}

/* Both sides finish writing: the session ends by itself, "done". */
static void
test_orderly_finish(void **state)
{
	struct world	*w = *state;
	size_t		 n = 300 * 1000;

	world_start(w);
	world_open(w);
	flow_init(&w->up, n, 31);
	w->up.shut = 1;
	flow_echo(&w->down, &w->up);
	w->down.shut = 1;
	WAIT(w, w->cl.n_closed == 1 && w->sv.n_closed == 1);
	assert_string_equal(w->cl.why_closed, "done");
	assert_string_equal(w->sv.why_closed, "done");
	assert_int_equal(sess_ctx_count(w->cl.ctx), 0);
	assert_int_equal(sess_ctx_count(w->sv.ctx), 0);
	/* Everything was delivered before the end, and then EOF. */
	WAIT(w, w->down.eof && w->up.eof);
	flows_check(w, "backend -> guest (echo)");
	assert_int_equal(w->cl.n_detached + w->sv.n_detached, 0);
	assert_int_equal(w->up.werr, 0);
	assert_int_equal(w->down.werr, 0);
}

/*
 * Half-close: each FIN arrives on its own after the data is delivered,
 * and the backend still sends after it has seen the guest's EOF.
 */
static void
test_half_close(void **state)
{
	struct world	*w = *state;

	world_start(w);
	world_open(w);
	flow_init(&w->up, 70000, 51);
	flow_init(&w->down, 90000, 52);
	w->down.stop = 0;
	WAIT(w, flow_done(&w->up));
	world_idle(w, 20);
	assert_int_equal(jint(w->cl.s, "unacked_out"), 0);

	assert_int_equal(shutdown(w->guest, SHUT_WR), 0);
	WAIT(w, w->up.eof);
	assert_int_equal(w->cl.n_closed + w->sv.n_closed, 0);
	assert_int_equal(sess_state(w->sv.s), SESS_ESTABLISHED);

	/* The other direction is still open. */
	w->down.stop = w->down.len;
	WAIT(w, flow_done(&w->down));
	world_idle(w, 20);
	assert_int_equal(w->cl.n_closed + w->sv.n_closed, 0);
	assert_int_equal(shutdown(w->backend, SHUT_WR), 0);
	WAIT(w, w->cl.n_closed == 1 && w->sv.n_closed == 1);
	assert_string_equal(w->cl.why_closed, "done");
	assert_string_equal(w->sv.why_closed, "done");
	WAIT(w, w->down.eof);
	flows_check(w, "backend -> guest");
	assert_int_equal(sess_ctx_count(w->cl.ctx), 0);
	assert_int_equal(sess_ctx_count(w->sv.ctx), 0);
}

/* sess_close() on one end closes the other, with the reason. */
static void
test_close_one_end(void **state)
{
	struct world	*w = *state;

	world_start(w);
	world_open(w);
	flow_init(&w->up, 10000, 41);
	flow_init(&w->down, 10000, 42);
	WAIT(w, flow_done(&w->up) && flow_done(&w->down));

	sess_close(w->cl.s, PROTO_E_SHUTDOWN, "bye");
	assert_int_equal(w->cl.n_closed, 1);
	assert_null(w->cl.s);
	assert_int_equal(sess_ctx_count(w->cl.ctx), 0);
	assert_string_equal(w->cl.why_closed, "bye");
	WAIT(w, w->sv.n_closed == 1);
	assert_string_equal(w->sv.why_closed,
	    "closed by the ingress end (shutdown): bye");
	assert_int_equal(sess_ctx_count(w->sv.ctx), 0);
	assert_int_equal(w->sv.n_detached, 0);
	WAIT(w, w->down.eof && w->up.eof);
	flows_check(w, "backend -> guest");

	/* And the other way round, on a second session. */
	close(w->backend);
	w->backend = -1;
	world_guest(w);
	WAIT(w, w->cl.n_open == 2 && w->sv.n_open == 2);
	free(w->up.src);
	free(w->down.src);
	flow_init(&w->up, 10000, 43);
	flow_init(&w->down, 10000, 44);
	WAIT(w, flow_done(&w->up) && flow_done(&w->down));
	sess_close(w->sv.s, PROTO_E_BACKEND, "backend went away");
	assert_int_equal(w->sv.n_closed, 2);
	WAIT(w, w->cl.n_closed == 2);
	assert_string_equal(w->cl.why_closed,
	    "closed by the appliance end (backend): backend went away");
	WAIT(w, w->down.eof && w->up.eof);
	assert_int_equal(sess_ctx_count(w->cl.ctx), 0);
	assert_int_equal(sess_ctx_count(w->sv.ctx), 0);
	assert_int_equal(w->connects, 2);
}

/* ops->open refusing: the client is told and gives up, with the reason. */
static void
test_backend_refused(void **state)
{
	struct world	*w = *state;

	world_start(w);
	w->open_fail = 1;
	world_guest(w);
	flow_init(&w->down, 0, 1);
	WAIT(w, w->cl.n_closed == 1);
	assert_int_equal(w->opens, 1);
	assert_int_equal(w->refusals, 1);
	assert_string_equal(w->why_refused, "backend refused (test)");
	if (strstr(w->cl.why_closed, "backend refused (test)") == NULL)
		fail_msg("client reason: %s", w->cl.why_closed);
	assert_int_equal(w->cl.n_open + w->sv.n_open, 0);
	assert_int_equal(sess_ctx_count(w->sv.ctx), 0);
	assert_int_equal(sess_ctx_count(w->cl.ctx), 0);
	assert_int_equal(w->connects, 1);
	WAIT(w, w->down.eof);
}

/*
 * ops->admit: asked before ops->open for the opening leg and after a
 * verified PROOF for each resume, with the leg's name.  A refused open
 * never reaches ops->open; a refused resume ends the client's session
 * (PROTO_E_AUTH is final) and leaves the server's as it was, detached.
 */
static void
test_admit(void **state)
{
	struct world	*w = *state;

	world_start(w);
	world_open(w);
	assert_int_equal(w->admits[0], 1);
	assert_int_equal(w->admits[1], 0);
	assert_string_equal(w->admit_peer, "test-leg");
	flow_init(&w->up, 64 * 1024, 71);
	WAIT(w, w->up.rd == 64 * 1024);
	/* A resume the server lets in. */
	assert_int_equal(shutdown(w->sleg, SHUT_RDWR), 0);
	WAIT(w, w->cl.n_resumed == 1 && w->sv.n_resumed == 1);
	assert_int_equal(w->admits[1], 1);
	/* One it refuses. */
	w->admit_refuse[1] = 1;
	assert_int_equal(shutdown(w->sleg, SHUT_RDWR), 0);
	WAIT(w, w->cl.n_closed == 1);
	assert_int_equal(w->admits[1], 2);
	assert_int_equal(w->sv.n_resumed, 1);
	assert_string_equal(w->why_refused,
	    "not the caller that opened it (test)");
	if (strstr(w->cl.why_closed, "not the caller") == NULL)
		fail_msg("client reason: %s", w->cl.why_closed);
	assert_non_null(w->sv.s);
	assert_int_equal(sess_state(w->sv.s), SESS_DETACHED);
	assert_int_equal(w->sv.n_closed, 0);
	assert_int_equal(jint(w->sv.s, "bytes_in"), 64 * 1024);

	/* A refused open: the client is told, ops->open never called. */
	w->admit_refuse[0] = 1;
	w->opens = 0;
	world_guest(w);
	WAIT(w, w->cl.n_closed == 2);
	assert_int_equal(w->admits[0], 2);
	assert_int_equal(w->opens, 0);
	if (strstr(w->cl.why_closed, "no such service (test)") == NULL)
		fail_msg("client reason: %s", w->cl.why_closed);
	assert_int_equal(sess_ctx_count(w->sv.ctx), 1);
}

/*
 * The leg breaks after the server has accepted the PROOF and rotated
 * its secret but before RESUMED reaches the client, twice in a row:
 * the client's next PROOF (old secret) must still be taken.
 */
static void
test_resumed_lost(void **state)
{
	struct world	*w = *state;
	size_t		 n = 2 * MIB;

	w->conf.replay_max = 256 * 1024;
	world_start(w);
	world_open(w);
	flow_init(&w->up, n, 61);
	flow_init(&w->down, n, 62);
	WAIT(w, w->up.rd >= n / 4 && w->down.rd >= n / 4);

	w->break_on_resumed = 2;
	assert_int_equal(shutdown(w->sleg, SHUT_RDWR), 0);
	WAIT(w, w->cl.n_resumed == 1);
	assert_int_equal(w->break_on_resumed, 0);
	/* The server accepted three PROOFs; the client saw one RESUMED. */
	WAIT(w, w->sv.n_resumed == 3);
	/*
	 * Only the first in one trip: the client, which missed RESUMED,
	 * offers the ticket of a secret the server has rotated away.
	 */
	assert_int_equal(jstat(w->sv.ctx, "resumes_one_trip"), 1);
	assert_int_equal(jstat(w->cl.ctx, "resumes_one_trip"), 0);
	assert_int_equal(w->connects, 4);
	assert_int_equal(w->cl.n_detached, 1);
	assert_int_equal(jint(w->cl.s, "resumes"), 1);
	assert_int_equal(jint(w->sv.s, "resumes"), 3);
	flows_finish(w, 20, "backend -> guest");
	assert_int_equal(w->refusals, 0);
	assert_int_equal(w->cl.n_closed + w->sv.n_closed, 0);

	/* And the secret the client rotated to works for the next one. */
	assert_int_equal(shutdown(w->sleg, SHUT_RDWR), 0);
	WAIT(w, w->cl.n_resumed == 2 && w->sv.n_resumed == 4);
	assert_int_equal(w->refusals, 0);
	assert_int_equal(jstat(w->sv.ctx, "resumes_one_trip"), 2);
	assert_int_equal(jstat(w->cl.ctx, "resumes_one_trip"), 1);
	assert_int_equal(sess_state(w->sv.s), SESS_ESTABLISHED);
}

/*
 * A session that carried a quarter of N bytes each way (flows seeded
 * SEED and SEED + 1, stopped there), whose leg then broke: the client's
 * next leg comes to the test, R its end, the HELLO on it in *HI.
 */
static void
world_fake_resume(struct world *w, size_t n, int seed, struct rogue *r,
    struct proto_hello *hi)
{
	world_start(w);
	world_open(w);
	flow_init(&w->up, n, seed);
	flow_init(&w->down, n, seed + 1);
	w->up.stop = w->down.stop = n / 4;
	WAIT(w, w->up.rd == n / 4 && w->down.rd == n / 4);
	w->fake = 1;
	assert_int_equal(shutdown(w->sleg, SHUT_RDWR), 0);
	WAIT(w, w->cl.n_detached == 1 && w->sv.n_detached == 1);
	fake_hello(w, r, hi);
	assert_int_equal(hi->version, PROTO_VERSION);
	assert_int_equal(hi->kind, PROTO_HELLO_RESUME_PROOF);
	assert_true(hi->next == (uint64_t)n / 4);
}

/*
 * A HELLO that carries its proof is good once: the same bytes again
 * get a CHALLENGE, never a second RESUMED.  The client, which never
 * saw the RESUMED its HELLO earned, still resumes through the
 * challenge with the secret the server kept as "prev".
 */
static void
test_resume_replay(void **state)
{
	struct world		*w = *state;
	struct rogue		 c, r1, r2;
	struct frame_hdr	 h;
	struct proto_hello	 hi;
	uint8_t			 p[PROTO_HANDSHAKE_MAX];
	uint64_t		 v;
	size_t			 n = 2 * MIB;

	/* The client's next leg comes to us: keep its HELLO. */
	world_fake_resume(w, n, 71, &c, &hi);

	/* Played to the server: resumed in one trip... */
	rogue_hello(w, &r1, "replay-1", &hi);
	WAIT(w, rogue_frame(&r1, &h, p, sizeof(p)) || rogue_closed(&r1));
	assert_int_equal(h.type, PROTO_RESUMED);
	assert_int_equal(frame_u64_decode(p, h.len, &v), FRAME_OK);
	assert_true(v == (uint64_t)n / 4);
	WAIT(w, w->sv.n_resumed == 1);
	assert_int_equal(jstat(w->sv.ctx, "resumes_one_trip"), 1);

	/* ...and again: only a challenge, and the first leg keeps it. */
	rogue_hello(w, &r2, "replay-2", &hi);
	WAIT(w, rogue_frame(&r2, &h, p, sizeof(p)) || rogue_closed(&r2));
	assert_int_equal(h.type, PROTO_CHALLENGE);
	world_idle(w, 20);
	assert_int_equal(w->sv.n_resumed, 1);
	assert_int_equal(jstat(w->sv.ctx, "resumes_one_trip"), 1);
	assert_int_equal(sess_state(w->sv.s), SESS_ESTABLISHED);
	rogue_free(&r2);
	rogue_free(&r1);

	/* The client's leg to us breaks: it resumes for real. */
	w->fake = 0;
	assert_int_equal(shutdown(c.fd, SHUT_RDWR), 0);
	rogue_free(&c);
	WAIT(w, w->cl.n_resumed == 1 && w->sv.n_resumed == 2);
	assert_int_equal(jstat(w->cl.ctx, "resumes_one_trip"), 0);
	assert_int_equal(jstat(w->sv.ctx, "resumes_one_trip"), 1);
	w->up.stop = w->down.stop = n;
	flows_finish(w, 20, "backend -> guest");
	assert_int_equal(w->refusals, 0);
	assert_int_equal(w->cl.n_closed + w->sv.n_closed, 0);
}

/* A frame of TYPE with body P as it came, into B. */
static void
frame_raw_add(struct evbuffer *b, int type, const uint8_t *p, size_t len)
{
	uint8_t	hdr[PROTO_HDR_LEN] = { (uint8_t)type, 0, 0, 0,
		    (uint8_t)(len >> 24), (uint8_t)(len >> 16),
		    (uint8_t)(len >> 8), (uint8_t)len };

	assert_int_equal(evbuffer_add(b, hdr, sizeof(hdr)), 0);
	assert_int_equal(evbuffer_add(b, p, len), 0);
}

/* Relay one handshake frame of TYPE from FROM to TO; its body to P. */
static void
relay_frame(struct world *w, struct rogue *from, struct rogue *to, int type,
    uint8_t *p, size_t cap, struct frame_hdr *h)
{
	struct evbuffer	*b;

	WAIT(w, rogue_frame(from, h, p, cap) || rogue_closed(from));
	if (h->type != type)
		fail_msg("expected %s, got %s", frame_strtype(type),
		    frame_strtype(h->type));
	b = evbuffer_new();
	assert_non_null(b);
	frame_raw_add(b, h->type, p, h->len);
	rogue_send_buf(to, b);
	evbuffer_free(b);
}

/*
 * A PROOF overtaken by another resume.  The client answered a CHALLENGE
 * on a leg that then broke (a vMotion reset its vSocket), and resumed
 * on its next leg through the previous secret; the first leg's PROOF,
 * still in flight in the mesh, arrives before the client has framed on
 * the new leg.  It verifies against that previous secret too, but
 * taken it would rotate the server's secret along nonces the client
 * dropped: the session's next resume would be refused and the session
 * lost.  The server drops it, and the session lives on.
 */
static void
test_resume_stale_proof(void **state)
{
	struct world		*w = *state;
	struct rogue		 c1, c2, c3, r1, r2, r3;
	struct evbuffer		*b;
	struct frame_hdr	 h;
	struct proto_hello	 hi;
	struct proto_error	 er;
	uint8_t			 p[PROTO_HANDSHAKE_MAX], stale[PROTO_HANDSHAKE_MAX];
	size_t			 n = 2 * MIB, stale_len;

	/* The client's next leg comes to us. */
	world_fake_resume(w, n, 81, &c1, &hi);
	b = evbuffer_new();
	assert_non_null(b);

	/* A copy of its HELLO spends the ticket; that RESUMED is lost. */
	rogue_hello(w, &r1, "copy-1", &hi);
	WAIT(w, rogue_frame(&r1, &h, p, sizeof(p)) || rogue_closed(&r1));
	assert_int_equal(h.type, PROTO_RESUMED);
	assert_int_equal(shutdown(r1.fd, SHUT_RDWR), 0);
	WAIT(w, w->sv.n_detached == 2);

	/* The other copy is challenged, and the client answers... */
	rogue_hello(w, &r2, "copy-2", &hi);
	relay_frame(w, &r2, &c1, PROTO_CHALLENGE, p, sizeof(p), &h);
	WAIT(w, rogue_frame(&c1, &h, stale, sizeof(stale)) ||
	    rogue_closed(&c1));
	assert_int_equal(h.type, PROTO_PROOF);
	stale_len = h.len;

	/* ...but its leg breaks: the PROOF is still on its way. */
	w->fake_fd = -1;
	assert_int_equal(shutdown(c1.fd, SHUT_RDWR), 0);
	fake_hello(w, &c2, &hi);

	/* The next leg resumes through the previous secret... */
	rogue_hello(w, &r3, "next", &hi);
	relay_frame(w, &r3, &c2, PROTO_CHALLENGE, p, sizeof(p), &h);
	relay_frame(w, &c2, &r3, PROTO_PROOF, p, sizeof(p), &h);
	WAIT(w, w->sv.n_resumed == 2);

	/* ...and the stale PROOF arrives before the client frames on it. */
	frame_raw_add(b, PROTO_PROOF, stale, stale_len);
	rogue_send_buf(&r2, b);
	rogue_expect_error(w, &r2, PROTO_E_OVERTAKEN, &er);
	assert_int_equal(w->sv.n_resumed, 2);
	assert_int_equal(jstat(w->sv.ctx, "resumes_overtaken"), 1);
	relay_frame(w, &r3, &c2, PROTO_RESUMED, p, sizeof(p), &h);
	WAIT(w, w->cl.n_resumed == 1);

	/*
	 * The client, overtaken in its turn (by a stale copy, say), tries
	 * again.  Both ends hold the same secret: its next leg resumes in
	 * one trip, and every byte arrives once.
	 */
	w->fake_fd = -1;
	assert_int_equal(shutdown(c2.fd, SHUT_RDWR), 0);
	assert_int_equal(shutdown(r3.fd, SHUT_RDWR), 0);
	fake_hello(w, &c3, &hi);
	w->fake = 0;
	frame_error_add(b, PROTO_ERROR, PROTO_E_OVERTAKEN, "test");
	rogue_send_buf(&c3, b);
	WAIT(w, w->cl.n_resumed == 2 && w->sv.n_resumed == 3);
	assert_int_equal(w->cl.n_closed, 0);
	assert_int_equal(jstat(w->cl.ctx, "resumes_one_trip"), 1);
	w->up.stop = w->down.stop = n;
	flows_finish(w, 20, "backend -> guest");
	assert_int_equal(w->cl.n_closed + w->sv.n_closed, 0);
	rogue_free(&r3);
	rogue_free(&r2);
	rogue_free(&r1);
	rogue_free(&c3);
	rogue_free(&c2);
	rogue_free(&c1);
	evbuffer_free(b);
}

/* No target at first: guest bytes wait, the session opens later. */
static void
test_connect_retry(void **state)
{
	struct world	*w = *state;
	long long	 t0;
	int		 calls;

	world_start(w);
	w->no_target = 1;
	flow_init(&w->up, 40000, 71);
	flow_init(&w->down, 40000, 72);
	t0 = now_ms();
	world_guest(w);
	WAIT(w, w->calls >= 3);
	/* First try at once, then 25 ms, then 50 ms, with jitter. */
	assert_true(now_ms() - t0 >= 40);
	assert_int_equal(sess_state(w->cl.s), SESS_CONNECTING);
	assert_int_equal(jint(w->cl.s, "bytes_out"), 0);
	assert_int_equal(w->opens, 0);
	w->no_target = 0;
	WAIT(w, w->cl.n_open == 1 && w->sv.n_open == 1);
	assert_int_equal(w->connects, 1);
	flows_finish(w, 0, "backend -> guest");
	assert_int_equal(w->cl.n_detached + w->cl.n_resumed, 0);

	/* Retargeting retries at once instead of after the backoff. */
	w->no_target = 1;
	calls = w->calls;
	assert_int_equal(shutdown(w->sleg, SHUT_RDWR), 0);
	WAIT(w, w->calls >= calls + 5);	/* next try in 300..500 ms */
	w->no_target = 0;
	t0 = now_ms();
	sess_ctx_retarget(w->cl.ctx, NULL);
	WAIT(w, w->connects == 2);
	assert_true(now_ms() - t0 < 150);
	WAIT(w, w->cl.n_resumed == 1 && w->sv.n_resumed == 1);
}

/*
 * A connect that says wait: the session tries again at its backoff,
 * each try counted, and at sess_ctx_wake() (a relay proved up) at once,
 * as the same try (ingress.c alternates targets by the count).  A wake
 * also cuts short the backoff of a session whose connect failed, as a
 * new try.  Nothing else wakes it: a link that fails at once, woken
 * each time, would spin.
 */
static void
test_connect_wait(void **state)
{
	struct world	*w = *state;
	long long	 t0;
	int		 calls;
	unsigned	 tries;
	char		 buf[64];

	world_start(w);
	flow_init(&w->up, 40000, 73);
	flow_init(&w->down, 40000, 74);
	world_guest(w);
	WAIT(w, w->cl.n_open == 1 && w->sv.n_open == 1);
	w->wait_target = 1;
	calls = w->calls;
	assert_int_equal(shutdown(w->sleg, SHUT_RDWR), 0);
	WAIT(w, w->calls >= calls + 5);	/* next try in 300..500 ms */
	tries = w->tries_seen;
	assert_true(tries >= 5);
	assert_string_equal(jstr(w->cl.s, "why", buf, sizeof(buf)),
	    "waiting (test)");
	w->wait_target = 0;
	t0 = now_ms();
	sess_ctx_wake(w->cl.ctx);
	WAIT(w, w->connects == 2);
	assert_true(now_ms() - t0 < 150);
	assert_int_equal(w->tries_seen, tries);
	WAIT(w, w->cl.n_resumed == 1 && w->sv.n_resumed == 1);

	/*
	 * A failed connect: woken as a try of its own.  Woken because a
	 * relay is up, its backoff starts over: the tries after the wake's
	 * come at 25 and 50 ms, not at the 800 ms it had grown to.
	 */
	w->no_target = 1;
	calls = w->calls;
	assert_int_equal(shutdown(w->sleg, SHUT_RDWR), 0);
	WAIT(w, w->calls >= calls + 5);
	tries = w->tries_seen;
	calls = w->calls;
	t0 = now_ms();
	sess_ctx_wake(w->cl.ctx);
	WAIT(w, w->calls >= calls + 3);
	assert_true(now_ms() - t0 < 300);
	assert_int_equal(w->tries_seen, tries + 3);
	w->no_target = 0;
	WAIT(w, w->connects == 3);
	WAIT(w, w->cl.n_resumed == 2 && w->sv.n_resumed == 2);
	flows_finish(w, 0, "backend -> guest");
	/* Nothing waits: a wake changes nothing. */
	calls = w->calls;
	sess_ctx_wake(w->cl.ctx);
	sess_ctx_wake(NULL);
	world_idle(w, 50);
	assert_int_equal(w->calls, calls);
}

/* Handshake deadline and the pending-handshake limit. */
static void
test_handshake_limits(void **state)
{
	struct world		*w = *state;
	struct rogue		 r[3];
	struct proto_error	 er;
	long long		 t0;
	int			 i;

	w->conf.handshake_ms = 300;
	w->conf.max_pending = 2;
	world_start(w);
	t0 = now_ms();
	for (i = 0; i < 3; i++)
		rogue_open(w, &r[i], "rogue-silent");
	/* The third is over the limit at once. */
	rogue_expect_error(w, &r[2], PROTO_E_LIMIT, &er);
	assert_int_equal(w->refusals, 1);
	assert_true(now_ms() - t0 < 250);
	/* The others say nothing and are dropped at the deadline. */
	WAIT(w, rogue_closed(&r[0]) && rogue_closed(&r[1]));
	assert_true(now_ms() - t0 >= 250);
	assert_int_equal(evbuffer_get_length(r[0].in), 0);
	assert_int_equal(evbuffer_get_length(r[1].in), 0);
	for (i = 0; i < 3; i++)
		rogue_free(&r[i]);
	/* Their slots were given back. */
	world_open(w);
	assert_int_equal(w->refusals, 1);
}

/* A half-closed session survives a break and still ends "done". */
static void
test_resume_after_fin(void **state)
{
	struct world	*w = *state;

	world_start(w);
	world_open(w);
	flow_init(&w->up, 100000, 81);
	flow_init(&w->down, 100000, 82);
	w->up.shut = 1;
	w->down.stop = 50000;
	WAIT(w, w->up.eof && w->down.rd == 50000);
	world_idle(w, 20);

	w->no_target = 1;
	assert_int_equal(shutdown(w->sleg, SHUT_RDWR), 0);
	WAIT(w, w->cl.n_detached == 1 && w->sv.n_detached == 1);
	w->down.stop = w->down.len;
	w->down.shut = 1;
	world_idle(w, 20);
	w->no_target = 0;
	WAIT(w, w->cl.n_closed == 1 && w->sv.n_closed == 1);
	assert_int_equal(w->cl.n_resumed, 1);
	assert_int_equal(w->sv.n_resumed, 1);
	assert_string_equal(w->cl.why_closed, "done");
	assert_string_equal(w->sv.why_closed, "done");
	WAIT(w, w->down.eof);
	flows_check(w, "backend -> guest");
}

/* Bad frames on an established leg cost the leg, not the session. */
static void
test_stream_violation(void **state)
{
	struct world	*w = *state;
	struct evbuffer	*b;
	uint8_t		 junk[4] = { 'j', 'u', 'n', 'k' };
	size_t		 n = 200000;
	int		 k;

	world_start(w);
	world_open(w);
	flow_init(&w->up, n, 91);
	flow_init(&w->down, n, 92);
	w->up.stop = w->down.stop = n / 4;
	WAIT(w, w->up.rd == n / 4 && w->down.rd == n / 4);
	world_idle(w, 20);
	b = evbuffer_new();
	assert_non_null(b);

	/* An old ACK is ignored. */
	frame_u64_add(b, PROTO_ACK, 1);
	assert_int_equal(evbuffer_write(b, w->cleg), PROTO_HDR_LEN + 8);
	world_idle(w, 20);
	assert_int_equal(w->sv.n_detached, 0);

	for (k = 1; k <= 3; k++) {
		/* Written into the client's idle leg, so between frames. */
		switch (k) {
		case 1:		/* a gap in the stream */
			frame_data_hdr_add(b, n, sizeof(junk));
			evbuffer_add(b, junk, sizeof(junk));
			break;
		case 2:		/* an ACK of bytes never sent */
			frame_u64_add(b, PROTO_ACK, 10 * n);
			break;
		case 3:		/* a handshake frame mid-stream */
			hello_resume(b, sess_id(w->sv.s), PROTO_VERSION);
			break;
		}
		assert_true(evbuffer_write(b, w->cleg) > 0);
		assert_int_equal(evbuffer_get_length(b), 0);
		WAIT(w, w->cl.n_resumed == k && w->sv.n_resumed == k);
		assert_int_equal(w->sv.n_detached, k);
		assert_non_null(strstr(w->cl.why_detached, "malformed"));
		w->up.stop = w->down.stop = (k + 1) * n / 4;
		WAIT(w, w->up.rd == (k + 1) * n / 4 &&
		    w->down.rd == (k + 1) * n / 4);
		world_idle(w, 20);
	}
	evbuffer_free(b);
	flows_check(w, "backend -> guest");
	assert_int_equal(w->cl.n_closed + w->sv.n_closed, 0);
	assert_int_equal(w->connects, 4);
}

/* The client's side of refusals, against a server played by hand. */
static void
test_client_handshake(void **state)
{
	struct world		*w = *state;
	struct rogue		 r;
	struct evbuffer		*b;
	struct proto_hello	 hi;
	struct proto_welcome	 wel;
	uint64_t		 sid;

	world_start(w);
	w->fake = 1;
	flow_init(&w->down, 0, 1);
	world_guest(w);
	sid = sess_id(w->cl.s);
	b = evbuffer_new();
	assert_non_null(b);

	/* The HELLO says who the guest is. */
	fake_hello(w, &r, &hi);
	assert_int_equal(hi.version, PROTO_VERSION);
	assert_int_equal(hi.kind, PROTO_HELLO_NEW);
	assert_true(hi.sid == sid);
	assert_int_equal(hi.guest_cid, GUEST_CID);
	assert_int_equal(hi.guest_port, GUEST_PORT);
	assert_string_equal(hi.host, GUEST_HOST);
	assert_int_equal(hi.service, PROTO_SVC_STREAM);
	assert_string_equal(hi.name, "");
	assert_int_equal(sess_state(w->cl.s), SESS_HANDSHAKE);

	/* A transient refusal: the client tries again. */
	frame_error_add(b, PROTO_ERROR, PROTO_E_LIMIT, "busy (test)");
	assert_true(evbuffer_write(b, r.fd) > 0);
	WAIT(w, rogue_closed(&r));
	rogue_free(&r);
	WAIT(w, w->connects == 2);
	assert_int_equal(w->cl.n_closed, 0);
	fake_hello(w, &r, &hi);
	assert_int_equal(hi.kind, PROTO_HELLO_NEW);
	/* No WELCOME came, so the retry asks under a fresh id. */
	assert_true(hi.sid != sid);
	sid = hi.sid;
	assert_true(sess_id(w->cl.s) == sid);

	/* A WELCOME from another protocol version is final. */
	memset(&wel, 0, sizeof(wel));
	wel.version = 9;
	wel.sid = sid;
	frame_welcome_add(b, &wel);
	assert_true(evbuffer_write(b, r.fd) > 0);
	WAIT(w, w->cl.n_closed == 1);
	assert_string_equal(w->cl.why_closed,
	    "appliance end speaks protocol version 9, we speak 5");
	WAIT(w, rogue_closed(&r));
	WAIT(w, w->down.eof);
	assert_int_equal(w->connects, 2);
	assert_int_equal(w->cl.n_open, 0);
	rogue_free(&r);
	evbuffer_free(b);
}

/*
 * A version 2 appliance end refuses our version 3 HELLO: the client
 * asks again in version 2 and then resumes as version 2 does, with a
 * CHALLENGE rather than a proof in its HELLO.
 */
static void
test_client_old_server(void **state)
{
	struct world		*w = *state;
	struct rogue		 r;
	struct evbuffer		*b;
	struct proto_hello	 hi;
	uint64_t		 sid;
	char			 msg[128];
	int			 v;

	world_start(w);
	w->fake = 1;
	flow_init(&w->down, 0, 1);
	world_guest(w);
	b = evbuffer_new();
	assert_non_null(b);
	fake_hello(w, &r, &hi);
	assert_int_equal(hi.version, PROTO_VERSION);
	assert_int_equal(hi.window, w->conf.replay_max);
	/* What a version 4, 3, then 2 vappliance says: one down each. */
	for (v = PROTO_VERSION - 1; v >= 2; v--) {
		sid = hi.sid;
		snprintf(msg, sizeof(msg), "protocol version %d not "
		    "supported; this end speaks versions 2 to %d", v + 1, v);
		frame_error_add(b, PROTO_ERROR, PROTO_E_VERSION, msg);
		assert_true(evbuffer_write(b, r.fd) > 0);
		WAIT(w, rogue_closed(&r));
		rogue_free(&r);
		WAIT(w, w->connects == PROTO_VERSION + 1 - v);
		assert_int_equal(w->cl.n_closed, 0);
		fake_hello(w, &r, &hi);
		assert_int_equal(hi.version, v);
		assert_int_equal(hi.kind, PROTO_HELLO_NEW);
		assert_int_equal(hi.window, 0);	/* version 5 on */
		assert_true(hi.sid != sid);
	}

	fake_welcome(&r, hi.sid, 2);
	WAIT(w, w->cl.n_open == 1);
	assert_int_equal(shutdown(r.fd, SHUT_RDWR), 0);
	rogue_free(&r);
	WAIT(w, w->cl.n_detached == 1);
	WAIT(w, w->connects == PROTO_VERSION);
	fake_hello(w, &r, &hi);
	assert_int_equal(hi.version, 2);
	assert_int_equal(hi.kind, PROTO_HELLO_RESUME);
	rogue_free(&r);
	evbuffer_free(b);
}

/* A rogue client's HELLO NEW of VERSION for SID from HOST, on R. */
static void
rogue_hello_new(struct world *w, struct rogue *r, int version, uint64_t sid,
    const char *host, const char *desc)
{
	struct proto_hello	 hn;

	memset(&hn, 0, sizeof(hn));
	hn.version = version;
	hn.kind = PROTO_HELLO_NEW;
	hn.sid = sid;
	fill_random(hn.nonce, sizeof(hn.nonce), version);
	fill_random(hn.pubkey, sizeof(hn.pubkey), version + 1);
	strlcpy(hn.host, host, sizeof(hn.host));
	if (version >= 5)
		hn.window = 1U << 30;	/* the server's holds */
	rogue_hello(w, r, desc, &hn);
}

/*
 * Read R's frames until N bytes of DATA came (into P, of CAP bytes);
 * the largest DATA payload among them.
 */
static size_t
rogue_data_max(struct world *w, struct rogue *r, size_t n, uint8_t *p,
    size_t cap)
{
	struct frame_hdr	h;
	size_t			got = 0, most = 0;

	while (got < n) {
		WAIT(w, rogue_frame(r, &h, p, cap) || rogue_closed(r));
		assert_false(r->eof);
		if (h.type != PROTO_DATA)
			continue;
		if (h.len - 8 > most)
			most = h.len - 8;
		got += h.len - 8;
	}
	assert_int_equal(got, n);
	return (most);
}

/*
 * A version 3 session (an older appliance end): DATA carries at most
 * 64 KiB, as that version allows, both ways; a larger one from the
 * peer breaks the leg.
 */
static void
test_client_v3_frames(void **state)
{
	static uint8_t		 p[8 + PROTO_DATA_MAX];
	struct world		*w = *state;
	struct rogue		 r;
	struct evbuffer		*b;
	struct proto_hello	 hi;
	size_t			 n = MIB;

	fake_open(w, &r, 0, 3, &hi);
	assert_int_equal(hi.version, PROTO_VERSION);
	flow_init(&w->up, n, 0x71);
	flow_init(&w->down, 0, 1);
	assert_int_equal(rogue_data_max(w, &r, n, p, sizeof(p)),
	    PROTO_DATA_MAX_V3);

	/* One byte more than version 3 allows, at the expected offset. */
	b = evbuffer_new();
	assert_non_null(b);
	frame_data_hdr_add(b, 0, PROTO_DATA_MAX_V3 + 1);
	evbuffer_add(b, p, PROTO_DATA_MAX_V3 + 1);
	rogue_send_buf(&r, b);
	WAIT(w, w->cl.n_detached == 1);
	assert_int_equal(w->down.rd, 0);
	assert_non_null(strstr(w->cl.why_detached, "version allows"));
	rogue_free(&r);
	evbuffer_free(b);
}

/*
 * What a resume sends again is what the peer says it lacks, and it is
 * counted: a server (played here) that read none of 256 KiB before its
 * leg broke answers RESUMED 0; what had gone goes again, and all of it
 * arrives.
 */
static void
test_resume_counts(void **state)
{
	struct world		*w = *state;
	struct rogue		 r;
	struct proto_hello	 hi;
	struct evbuffer		*b;
	size_t			 n = 256 * 1024;
	static uint8_t		 p[PROTO_HDR_LEN + 8 + PROTO_DATA_MAX];

	fake_open(w, &r, 0, PROTO_VERSION, &hi);
	flow_init(&w->up, n, 0x62);
	WAIT(w, jint(w->cl.s, "bytes_out") == (long long)n);
	world_idle(w, 20);
	assert_int_equal(jint(w->cl.s, "unacked_out"), n);
	assert_int_equal(shutdown(r.fd, SHUT_RDWR), 0);	/* read nothing */
	rogue_free(&r);
	WAIT(w, w->cl.n_detached == 1 && w->connects == 2);
	fake_hello(w, &r, &hi);
	assert_int_equal(hi.kind, PROTO_HELLO_RESUME_PROOF);
	assert_true(hi.next == 0);
	b = evbuffer_new();
	assert_non_null(b);
	frame_u64_add(b, PROTO_RESUMED, 0);
	rogue_send_buf(&r, b);
	evbuffer_free(b);
	WAIT(w, w->cl.n_resumed == 1);
	/* What the socket took before the break (the rest was unsent). */
	if (w->cl.resume_replay < 64 * 1024 || w->cl.resume_replay > n)
		fail_msg("resume replay %" PRIu64, w->cl.resume_replay);
	assert_int_equal(jstat(w->cl.ctx, "resumes"), 1);
	assert_int_equal(jstat(w->cl.ctx, "replayed_bytes"),
	    w->cl.resume_replay);
	assert_int_equal(jint(w->cl.s, "replayed"), w->cl.resume_replay);
	(void)rogue_data_max(w, &r, n, p, sizeof(p));
	rogue_free(&r);
}

/*
 * A peer that agreed to a window (version 5) and sends past it breaks
 * the leg: what waits for the local reader stays within the window.
 */
static void
test_window_violation(void **state)
{
	struct world		*w = *state;
	struct rogue		 r;
	struct proto_hello	 hi;
	struct proto_error	 er;
	struct evbuffer		*b;
	size_t			 n = 100 * 1024;
	uint8_t			*body;

	fake_open(w, &r, 64 * 1024, PROTO_VERSION, &hi);
	assert_int_equal(hi.window, 64 * 1024);
	assert_int_equal(jint(w->cl.s, "window"), 64 * 1024);
	flow_init(&w->down, n, 0x63);
	b = evbuffer_new();
	body = calloc(1, n);
	assert_non_null(b);
	assert_non_null(body);
	frame_data_hdr_add(b, 0, n);
	evbuffer_add(b, body, n);
	rogue_send_buf(&r, b);
	rogue_expect_error(w, &r, PROTO_E_MALFORMED, &er);
	assert_string_equal(er.reason, "DATA beyond the window");
	WAIT(w, w->cl.n_detached == 1);
	assert_int_equal(w->down.rd, 0);
	rogue_free(&r);
	evbuffer_free(b);
	free(body);
}

/*
 * An end acknowledges at once when half the window has reached its
 * local stream, so the peer never waits out the delay for room: the
 * ACK is on the leg by the time the guest has the bytes, before the
 * delay's timer could have run.
 */
static void
test_ack_half(void **state)
{
	static uint8_t		 p[8 + PROTO_DATA_MAX];
	struct world		*w = *state;
	struct rogue		 r;
	struct evbuffer		*b;
	struct proto_hello	 hi;
	struct frame_hdr	 h;
	size_t			 n = 32 * 1024;
	uint64_t		 v = 0;

	fake_open(w, &r, 2 * n, PROTO_VERSION, &hi);
	flow_init(&w->up, 0, 1);
	flow_init(&w->down, n, 0x73);
	b = evbuffer_new();
	assert_non_null(b);
	frame_data_hdr_add(b, 0, n);
	evbuffer_add(b, w->down.src, n);
	rogue_send_buf(&r, b);
	evbuffer_free(b);
	WAIT(w, w->down.rd == n);
	while (v != n && rogue_frame(&r, &h, p, sizeof(p)))
		if (h.type == PROTO_ACK)
			assert_int_equal(frame_u64_decode(p, h.len, &v),
			    FRAME_OK);
	assert_int_equal(v, n);
	rogue_free(&r);
}

/*
 * A PING is answered with the ACK owed, and an end whose window shuts
 * asks for its ACK with one: an older peer with a larger window
 * acknowledges at once only a quarter of its own, which may be all of
 * this window (the rogue here never acknowledges unasked).
 */
static void
test_ack_ask(void **state)
{
	static uint8_t		 p[8 + PROTO_DATA_MAX];
	struct world		*w = *state;
	struct rogue		 r;
	struct evbuffer		*b;
	struct proto_hello	 hi;
	struct frame_hdr	 h;
	size_t			 win = 64 * 1024, got = 0;
	uint64_t		 acked = 0;
	int			 asked = 0, i;

	fake_open(w, &r, win, PROTO_VERSION, &hi);
	flow_init(&w->up, 2 * win, 0x74);
	w->up.stop = 0;
	flow_init(&w->down, 1000, 0x75);
	b = evbuffer_new();
	assert_non_null(b);

	/* 1,000 bytes owe an ACK within the delay; a PING gets it now. */
	frame_data_hdr_add(b, 0, 1000);
	evbuffer_add(b, w->down.src, 1000);
	frame_u64_add(b, PROTO_PING, 42);
	rogue_send_buf(&r, b);
	for (h.type = 0; h.type != PROTO_PONG; ) {
		WAIT(w, rogue_frame(&r, &h, p, sizeof(p)) || rogue_closed(&r));
		assert_false(r.eof);
		if (h.type == PROTO_ACK)
			assert_int_equal(frame_u64_decode(p, h.len, &acked),
			    FRAME_OK);
	}
	assert_int_equal(acked, 1000);

	/* Twice: a window's DATA, then a PING, then nothing until an ACK. */
	w->up.stop = w->up.len;
	for (i = 1; i <= 2; i++) {
		for (asked = 0; !asked; ) {
			WAIT(w, rogue_frame(&r, &h, p, sizeof(p)) ||
			    rogue_closed(&r));
			assert_false(r.eof);
			if (h.type == PROTO_DATA)
				got += h.len - 8;
			else if (h.type == PROTO_PING)
				asked = 1;
		}
		assert_int_equal(got, i * win);
		world_idle(w, 20);
		assert_false(rogue_frame(&r, &h, p, sizeof(p)));
		frame_u64_add(b, PROTO_ACK, got);
		rogue_send_buf(&r, b);
	}
	evbuffer_free(b);
	rogue_free(&r);
}

/* A version 3 client gets DATA of at most 64 KiB from the server. */
static void
test_server_v3_frames(void **state)
{
	static uint8_t		 p[8 + PROTO_DATA_MAX];
	struct world		*w = *state;
	struct rogue		 r;
	struct frame_hdr	 h;
	size_t			 n = MIB;

	world_start(w);
	rogue_hello_new(w, &r, 3, 0x1122334455667799ULL, "v3", "rogue-v3");
	WAIT(w, rogue_frame(&r, &h, p, sizeof(p)) || rogue_closed(&r));
	assert_int_equal(h.type, PROTO_WELCOME);
	WAIT(w, w->backend != -1);
	flow_init(&w->down, n, 0x72);
	assert_int_equal(rogue_data_max(w, &r, n, p, sizeof(p)),
	    PROTO_DATA_MAX_V3);
	rogue_free(&r);
}

/*
 * A version 2 client: its NEW gets a version 2 WELCOME and its RESUME
 * a CHALLENGE, as from a version 2 server.
 */
static void
test_server_old_client(void **state)
{
	struct world		*w = *state;
	struct rogue		 r;
	struct evbuffer		*b;
	struct frame_hdr	 h;
	struct proto_welcome	 wel;
	uint8_t			 p[PROTO_HANDSHAKE_MAX];
	uint64_t		 sid = 0x1122334455667788ULL;

	world_start(w);
	rogue_hello_new(w, &r, 2, sid, "old", "rogue-v2");
	WAIT(w, rogue_frame(&r, &h, p, sizeof(p)) || rogue_closed(&r));
	assert_int_equal(h.type, PROTO_WELCOME);
	assert_int_equal(frame_welcome_decode(p, h.len, &wel), FRAME_OK);
	assert_int_equal(wel.version, 2);
	assert_true(wel.sid == sid);
	rogue_free(&r);

	b = evbuffer_new();
	assert_non_null(b);
	rogue_open(w, &r, "rogue-v2-resume");
	hello_resume(b, sid, 2);
	rogue_send_buf(&r, b);
	WAIT(w, rogue_frame(&r, &h, p, sizeof(p)) || rogue_closed(&r));
	assert_int_equal(h.type, PROTO_CHALLENGE);
	rogue_free(&r);
	evbuffer_free(b);
}

/* A leg that goes silent is found dead by the keepalive. */
static void
test_keepalive_dead_leg(void **state)
{
	struct world		*w = *state;
	struct rogue		 r;
	struct evbuffer		*b;
	struct frame_hdr	 h;
	struct proto_hello	 hi;
	uint8_t			 p[PROTO_HANDSHAKE_MAX];
	long long		 t0;
	int			 pings = 0;

	w->conf.keepalive_ms = 50;
	world_start(w);
	w->fake = 1;
	world_guest(w);
	b = evbuffer_new();
	assert_non_null(b);
	fake_hello(w, &r, &hi);

	fake_welcome(&r, hi.sid, PROTO_VERSION);
	t0 = now_ms();
	WAIT(w, w->cl.n_open == 1);
	assert_int_equal(sess_state(w->cl.s), SESS_ESTABLISHED);

	/* It PINGs, we never answer: dead after three periods. */
	w->no_target = 1;
	while (w->cl.n_detached == 0) {
		if (now_ms() - t0 > WAIT_MS)
			fail_msg("leg never timed out (%d PINGs)", pings);
		WAIT(w, rogue_frame(&r, &h, p, sizeof(p)) ||
		    w->cl.n_detached > 0);
		if (w->cl.n_detached == 0 && h.type == PROTO_PING)
			pings++;
	}
	assert_true(pings >= 2);
	assert_true(now_ms() - t0 >= 120);
	if (strstr(w->cl.why_detached, "keepalive") == NULL)
		fail_msg("detach reason: %s", w->cl.why_detached);
	assert_int_equal(sess_state(w->cl.s), SESS_DETACHED);
	rogue_free(&r);
	evbuffer_free(b);
}

/*
 * A backend that stops reading stalls the session (backpressure) but
 * the keepalive still flows, so the leg is not declared dead.
 */
static void
test_slow_backend(void **state)
{
	struct world	*w = *state;
	size_t		 n = 2 * MIB;

	w->conf.keepalive_ms = 40;
	w->conf.replay_max = 256 * 1024;
	world_start(w);
	w->check_cap = 1;
	world_open(w);
	flow_init(&w->up, n, 101);
	flow_init(&w->down, n, 102);
	w->up.rpause = 1;
	world_idle(w, 500);
	assert_true(w->up.wr < n);		/* the guest was held back */
	assert_int_equal(w->cl.n_detached + w->sv.n_detached, 0);
	assert_int_equal(sess_state(w->cl.s), SESS_ESTABLISHED);
	w->up.rpause = 0;
	flows_finish(w, 0, "backend -> guest");
	assert_int_equal(w->cl.n_detached + w->sv.n_detached, 0);
	assert_int_equal(w->connects, 1);
}

/* Each test gets its own world (setup/teardown). */
/*
 * A leg breaks while the peer's FIN has arrived but the guest has not
 * read what came before it: the resume must not count that FIN as
 * delivered, or the server would finish and the guest lose the tail.
 */
static void
test_resume_fin_undelivered(void **state)
{
	struct world	*w = *state;

	/* The client's leg is paused (guest not reading): its PINGs find
	 * the break. */
	w->conf.keepalive_ms = 50;
	world_start(w);
	world_open(w);
	flow_init(&w->up, 1000, 91);
	flow_init(&w->down, 300000, 92);
	w->up.shut = 1;
	w->down.shut = 1;
	w->down.rpause = 1;		/* the guest reads nothing yet */
	WAIT(w, w->up.eof && w->down.shut_done);
	world_idle(w, 100);

	assert_int_equal(shutdown(w->sleg, SHUT_RDWR), 0);
	WAIT(w, w->cl.n_resumed == 1 && w->sv.n_resumed == 1);
	world_idle(w, 200);
	assert_int_equal(w->cl.n_closed, 0);
	w->down.rpause = 0;
	WAIT(w, w->down.eof && w->cl.n_closed == 1 && w->sv.n_closed == 1);
	assert_string_equal(w->cl.why_closed, "done");
	assert_string_equal(w->sv.why_closed, "done");
	flows_check(w, "backend -> guest");
}

/*
 * The leg breaks after the server opened the session but before its
 * WELCOME left: the client holds no secret to resume, so it asks again
 * under a fresh id, and the stream is still exact; the server drops its
 * orphan after the handshake timeout.
 */
static void
test_break_before_welcome(void **state)
{
	struct world	*w = *state;

	/* A long hold: the orphan must go after the handshake timeout. */
	w->conf.hold_ms = 60000;
	w->conf.handshake_ms = 500;
	world_start(w);
	w->break_in_open = 1;
	world_guest(w);
	WAIT(w, w->cl.n_open == 1);
	/* Traffic starts once open, so none goes to the orphan's backend. */
	flow_init(&w->up, 100000, 1);
	flow_init(&w->down, 100000, 2);
	WAIT(w, flow_done(&w->up) && flow_done(&w->down));
	assert_int_equal(w->cl.n_closed, 0);
	assert_int_equal(w->cl.n_open, 1);
	assert_int_equal(w->opens, 2);
	assert_int_equal(w->connects, 2);
	/*
	 * The server's orphan (its client never framed on it) is dropped
	 * within the handshake timeout, not kept for the hold time.
	 */
	WAIT(w, sess_ctx_count(w->sv.ctx) == 1);
	assert_int_equal(w->cl.n_closed, 0);
}

/*
 * A client whose first frame is a DATA frame the server splices (its
 * header and a little, the body still to come) has framed all the same:
 * once its leg goes, the session is held for the hold time, not dropped
 * as an orphan after the handshake timeout.
 */
static void
test_confirmed_spliced(void **state)
{
	struct world		*w = *state;
	struct rogue		 r;
	struct evbuffer		*b;
	struct frame_hdr	 h;
	uint8_t			 p[PROTO_HANDSHAKE_MAX];
	uint8_t			 body[1000];

	w->conf.hold_ms = 60000;
	w->conf.handshake_ms = 200;
	world_start(w);
	rogue_hello_new(w, &r, PROTO_VERSION, 0x2233445566778899ULL, "sp",
	    "rogue-splice");
	WAIT(w, rogue_frame(&r, &h, p, sizeof(p)) || rogue_closed(&r));
	assert_int_equal(h.type, PROTO_WELCOME);
	WAIT(w, w->backend != -1);
	b = evbuffer_new();
	assert_non_null(b);
	memset(body, 'x', sizeof(body));
	frame_data_hdr_add(b, 0, 100000);
	evbuffer_add(b, body, sizeof(body));
	rogue_send_buf(&r, b);
	WAIT(w, readable(w->backend));
	assert_int_equal(shutdown(r.fd, SHUT_RDWR), 0);
	rogue_free(&r);
	WAIT(w, w->sv.n_detached == 1);
	world_idle(w, 600);		/* three handshake timeouts */
	assert_int_equal(sess_ctx_count(w->sv.ctx), 1);
	assert_int_equal(w->sv.n_closed, 0);
	evbuffer_free(b);
}

/*
 * The target moves: a leg up to the same address (or with no route
 * known) is kept; one up to another address goes at once, saying
 * where to, and the session resumes without waiting for a backoff.
 */
static void
test_retarget(void **state)
{
	struct world	*w = *state;
	char		 buf[128];
	size_t		 n = MIB;
	long long	 t0;

	world_start(w);
	world_open(w);
	flow_init(&w->up, n, 111);
	flow_init(&w->down, n, 112);
	w->up.stop = w->down.stop = n / 4;
	WAIT(w, w->up.rd == n / 4 && w->down.rd == n / 4);
	/* The leg is named by what ops->connect said. */
	assert_string_equal(jstr(w->cl.s, "leg", buf, sizeof(buf)),
	    "test-target");

	/* Same place, or nowhere known: the up leg stays. */
	sess_ctx_retarget(w->cl.ctx, "test-target");
	assert_int_equal(sess_state(w->cl.s), SESS_ESTABLISHED);
	sess_ctx_retarget(w->cl.ctx, NULL);
	assert_int_equal(sess_state(w->cl.s), SESS_ESTABLISHED);
	w->up.stop = w->down.stop = n / 2;
	WAIT(w, w->up.rd == n / 2 && w->down.rd == n / 2);
	world_idle(w, 30);
	assert_int_equal(w->cl.n_detached + w->sv.n_detached, 0);
	assert_int_equal(w->calls, 1);
	assert_int_equal(w->connects, 1);

	/* Elsewhere: detached now, with the reason, and back at once. */
	t0 = now_ms();
	sess_ctx_retarget(w->cl.ctx, "10.9.8.7:4433");
	assert_int_equal(w->cl.n_detached, 1);
	assert_string_equal(w->cl.why_detached,
	    "target moved to 10.9.8.7:4433");
	assert_int_equal(sess_state(w->cl.s), SESS_DETACHED);
	assert_string_equal(jstr(w->cl.s, "why", buf, sizeof(buf)),
	    "target moved to 10.9.8.7:4433");
	WAIT(w, w->cl.n_resumed == 1 && w->sv.n_resumed == 1);
	if (now_ms() - t0 >= 150)
		fail_msg("resumed %lld ms after the retarget", now_ms() - t0);
	assert_int_equal(w->connects, 2);
	assert_string_equal(w->cl.why_resumed, "test-target");
	assert_int_equal(jint(w->cl.s, "resumes"), 1);

	/* The new leg goes where the target is now: it stays. */
	sess_ctx_retarget(w->cl.ctx, "test-target");
	w->up.stop = w->down.stop = n;
	flows_finish(w, 30, "backend -> guest");
	assert_int_equal(w->cl.n_detached, 1);
	assert_int_equal(w->connects, 2);
	assert_int_equal(w->cl.n_closed + w->sv.n_closed, 0);
	assert_int_equal(w->refusals, 0);
}

/*
 * A leg still in handshake goes on a retarget to another address or to
 * none, and the session tries the new target at once, however far its
 * backoff had grown; a leg in handshake to the new target itself stays
 * (a hint seen mid-resume must not restart the resumes already going
 * there).
 */
static void
test_retarget_handshake(void **state)
{
	struct world		*w = *state;
	struct rogue		 r;
	struct frame_hdr	 h;
	uint8_t			 p[PROTO_HANDSHAKE_MAX];
	char			 buf[128];
	long long		 t0;
	int			 k;

	world_start(w);
	w->fake = 1;
	/* Failed tries first (0, 25, 50, 100 ms): the backoff grows. */
	w->no_target = 1;
	world_guest(w);
	WAIT(w, w->calls >= 4);
	w->no_target = 0;
	for (k = 1; k <= 2; k++) {
		WAIT(w, w->connects == k);
		rogue_attach(&r, w->fake_fd);
		WAIT(w, rogue_frame(&r, &h, p, sizeof(p)) || rogue_closed(&r));
		assert_int_equal(h.type, PROTO_HELLO);
		assert_int_equal(sess_state(w->cl.s), SESS_HANDSHAKE);

		t0 = now_ms();
		if (k == 2) {
			/* To where it is going already: it stays. */
			sess_ctx_retarget(w->cl.ctx, "fake-server");
			assert_int_equal(sess_state(w->cl.s), SESS_HANDSHAKE);
			assert_false(rogue_closed(&r));
		}
		sess_ctx_retarget(w->cl.ctx, k == 1 ? NULL : "elsewhere");
		/* Never opened: connecting again, and it says why. */
		assert_int_equal(sess_state(w->cl.s), SESS_CONNECTING);
		assert_string_equal(jstr(w->cl.s, "why", buf, sizeof(buf)),
		    "target changed during handshake");
		WAIT(w, rogue_closed(&r));
		rogue_free(&r);
		WAIT(w, w->connects == k + 1);
		if (now_ms() - t0 >= 150)
			fail_msg("retarget %d: next leg %lld ms later", k,
			    now_ms() - t0);
	}
	/* It was never up, so it never detached. */
	assert_int_equal(w->cl.n_detached + w->cl.n_closed, 0);
}

/*
 * A vMotion-style reset drops the legs whose peer names start with
 * the prefix, with a reset rather than a FIN, and leaves the others;
 * their sessions detach with the reason given and resume.
 */
static void
test_reset_legs(void **state)
{
	struct world	*w = *state;
	struct rogue	 r;
	struct linger	 l;
	socklen_t	 len;
	size_t		 n = MIB;
	int		 sdet;

	/* A leaked handshake slot would refuse the last resume. */
	w->conf.max_pending = 1;
	world_start(w);
	world_open(w);
	flow_init(&w->up, n, 121);
	flow_init(&w->down, n, 122);
	w->up.stop = w->down.stop = n / 4;
	WAIT(w, w->up.rd == n / 4 && w->down.rd == n / 4);

	/* No leg by these names (the server's is "test-leg"). */
	assert_int_equal(sess_ctx_reset_legs(w->cl.ctx, "test-leg", "x"), 0);
	assert_int_equal(sess_ctx_reset_legs(w->cl.ctx, "test-target-2",
	    "x"), 0);
	assert_int_equal(sess_ctx_reset_legs(w->sv.ctx, "test-target", "x"),
	    0);
	world_idle(w, 30);
	assert_int_equal(w->cl.n_detached + w->sv.n_detached, 0);
	assert_int_equal(sess_state(w->cl.s), SESS_ESTABLISHED);
	assert_int_equal(sess_state(w->sv.s), SESS_ESTABLISHED);
	assert_int_equal(w->connects, 1);

	/* The client's leg, by prefix: detached now, then resumed. */
	assert_int_equal(sess_ctx_reset_legs(w->cl.ctx, "test-",
	    "vMotion reset (test)"), 1);
	assert_int_equal(w->cl.n_detached, 1);
	assert_string_equal(w->cl.why_detached, "vMotion reset (test)");
	assert_int_equal(sess_state(w->cl.s), SESS_DETACHED);
	/* The socket closes from the reaper; it is set to reset. */
	len = sizeof(l);
	assert_int_equal(getsockopt(w->cleg, SOL_SOCKET, SO_LINGER, &l, &len),
	    0);
	assert_int_equal(l.l_onoff, 1);
	assert_int_equal(l.l_linger, 0);
	WAIT(w, w->cl.n_resumed == 1 && w->sv.n_resumed == 1);
	assert_int_equal(w->connects, 2);
	w->up.stop = w->down.stop = n / 2;
	WAIT(w, w->up.rd == n / 2 && w->down.rd == n / 2);

	/* Every leg of the server's. */
	sdet = w->sv.n_detached;
	assert_int_equal(sess_ctx_reset_legs(w->sv.ctx, NULL,
	    "all reset (test)"), 1);
	assert_int_equal(w->sv.n_detached, sdet + 1);
	assert_string_equal(w->sv.why_detached, "all reset (test)");
	assert_int_equal(sess_state(w->sv.s), SESS_DETACHED);
	len = sizeof(l);
	assert_int_equal(getsockopt(w->sleg, SOL_SOCKET, SO_LINGER, &l, &len),
	    0);
	assert_int_equal(l.l_onoff, 1);
	assert_int_equal(l.l_linger, 0);
	WAIT(w, w->cl.n_resumed == 2 && w->sv.n_resumed == 2);
	assert_int_equal(w->connects, 3);

	/* A leg still in handshake goes too; the session's stays. */
	rogue_open(w, &r, "rogue-pending");
	world_idle(w, 20);
	sdet = w->sv.n_detached;
	assert_int_equal(sess_ctx_reset_legs(w->sv.ctx, "rogue-", "x"), 1);
	WAIT(w, rogue_closed(&r));
	rogue_free(&r);
	world_idle(w, 20);
	assert_int_equal(w->sv.n_detached, sdet);
	assert_int_equal(sess_state(w->sv.s), SESS_ESTABLISHED);
	assert_int_equal(w->cl.n_detached, 2);

	/* Its handshake slot came back: one more resume gets through. */
	assert_int_equal(sess_ctx_reset_legs(w->cl.ctx, NULL, "again (test)"),
	    1);
	WAIT(w, w->cl.n_resumed == 3 && w->sv.n_resumed == 3);
	assert_int_equal(w->refusals, 0);
	w->up.stop = w->down.stop = n;
	flows_finish(w, 30, "backend -> guest");
	assert_int_equal(w->cl.n_closed + w->sv.n_closed, 0);
	assert_int_equal(w->connects, 4);
}

/*
 * Resume counters: what a resume had to send again is what the sender
 * did send twice, and the context totals add the resumes up.
 */
static void
test_resume_stats(void **state)
{
	struct world	*w = *state;
	struct sess_ctx	*ctxs[2];
	size_t		 n = 3 * MIB;
	long long	 cms[3], sms[3], held;
	uint64_t	 replay1;
	int		 i, k, sdet;

	/*
	 * A backend that does not read, so bytes are in flight when the leg
	 * breaks: the smaller window of the two, which both ends keep to.
	 */
	world_start_split(w, MIB, 128 * 1024);
	world_open(w);
	w->watch_in = 1;
	ctxs[0] = w->cl.ctx;
	ctxs[1] = w->sv.ctx;
	for (i = 0; i < 2; i++) {
		assert_int_equal(jstat(ctxs[i], "resumes"), 0);
		assert_int_equal(jstat(ctxs[i], "replayed_bytes"), 0);
		assert_int_equal(jstat(ctxs[i], "resume_ms_max"), 0);
		assert_int_equal(jstat(ctxs[i], "resume_ms_avg"), 0);
	}
	flow_init(&w->up, n, 131);
	flow_init(&w->down, 100000, 132);
	w->up.rpause = 1;
	WAIT(w, flow_done(&w->down) &&
	    jint(w->cl.s, "unacked_out") >= 64 * 1024);
	world_idle(w, 100);
	assert_int_equal(jint(w->cl.s, "window"), 128 * 1024);
	assert_int_equal(jint(w->sv.s, "window"), 128 * 1024);
	if (jint(w->cl.s, "unacked_out") > 128 * 1024)
		fail_msg("client holds %lld unacked, past the server's window",
		    jint(w->cl.s, "unacked_out"));
	if (w->max_unacked_in > 128 * 1024)
		fail_msg("unacked_in peaked at %lld", w->max_unacked_in);

	assert_int_equal(shutdown(w->sleg, SHUT_RDWR), 0);
	WAIT(w, w->cl.n_resumed == 1 && w->sv.n_resumed == 1);
	/* Bytes in flight, if the break caught any: within the window. */
	if (w->cl.resume_replay > 128 * 1024)
		fail_msg("client resume replay %" PRIu64,
		    w->cl.resume_replay);
	assert_int_equal(w->sv.resume_replay, 0);	/* guest had all */
	assert_int_equal(jstat(w->cl.ctx, "resumes"), 1);
	assert_int_equal(jstat(w->cl.ctx, "replayed_bytes"),
	    w->cl.resume_replay);
	assert_int_equal(jstat(w->cl.ctx, "resume_ms_max"), w->cl.resume_ms);
	assert_int_equal(jstat(w->cl.ctx, "resume_ms_avg"), w->cl.resume_ms);
	assert_int_equal(jstat(w->sv.ctx, "resumes"), 1);
	assert_int_equal(jstat(w->sv.ctx, "replayed_bytes"), 0);
	assert_int_equal(jstat(w->sv.ctx, "resume_ms_max"), w->sv.resume_ms);

	/* Exactly those bytes went again, and arrived once. */
	w->up.rpause = 0;
	WAIT(w, flow_done(&w->up));
	world_idle(w, 20);
	flows_check(w, "backend -> guest");
	assert_int_equal(jint(w->cl.s, "replayed"), w->cl.resume_replay);
	assert_int_equal(jint(w->sv.s, "replayed"), 0);

	/*
	 * Idle breaks held off 100 ms, then 10 ms: nothing is sent again,
	 * and the maximum is the middle one, the mean that of all three.
	 */
	replay1 = w->cl.resume_replay;
	cms[0] = w->cl.resume_ms;
	sms[0] = w->sv.resume_ms;
	for (k = 1; k <= 2; k++) {
		held = k == 1 ? 100 : 10;
		sdet = w->sv.n_detached;
		w->no_target = 1;
		assert_int_equal(shutdown(w->sleg, SHUT_RDWR), 0);
		WAIT(w, w->cl.n_detached == k + 1 &&
		    w->sv.n_detached == sdet + 1);
		world_idle(w, held);
		w->no_target = 0;
		WAIT(w, w->cl.n_resumed == k + 1 && w->sv.n_resumed == k + 1);
		cms[k] = w->cl.resume_ms;
		sms[k] = w->sv.resume_ms;
		assert_true(cms[k] >= held && sms[k] >= held);
		assert_int_equal(w->cl.resume_replay, 0);
		assert_int_equal(w->sv.resume_replay, 0);
	}
	/* Retries at 0, 25, 75, 175 ms (+-25%) against 0, 25: ordered. */
	assert_true(cms[1] > cms[2] && cms[1] > cms[0]);
	assert_int_equal(jstat(w->cl.ctx, "resumes"), 3);
	assert_int_equal(jstat(w->cl.ctx, "replayed_bytes"), replay1);
	assert_int_equal(jstat(w->cl.ctx, "resume_ms_max"), cms[1]);
	assert_int_equal(jstat(w->cl.ctx, "resume_ms_avg"),
	    (cms[0] + cms[1] + cms[2]) / 3);
	assert_int_equal(jstat(w->sv.ctx, "resumes"), 3);
	assert_int_equal(jstat(w->sv.ctx, "replayed_bytes"), 0);
	assert_int_equal(jstat(w->sv.ctx, "resume_ms_max"),
	    sms[0] > sms[1] ? (sms[0] > sms[2] ? sms[0] : sms[2]) :
	    (sms[1] > sms[2] ? sms[1] : sms[2]));
	assert_int_equal(jstat(w->sv.ctx, "resume_ms_avg"),
	    (sms[0] + sms[1] + sms[2]) / 3);
	assert_int_equal(jint(w->cl.s, "resumes"), 3);
	assert_int_equal(w->cl.n_closed + w->sv.n_closed, 0);
}

/*
 * The receive window is the replay cap, not a fixed 256 KiB: for a
 * backend that reads nothing the receiver still takes the sender's
 * whole window off the leg, and then the sender stops reading its
 * guest; the receiver never holds more than replay_max and one frame.
 */
static void
test_recv_window(void **state)
{
	struct world	*w = *state;
	size_t		 n = 4 * MIB;
	long long	 out;
	size_t		 wr;

	w->conf.replay_max = MIB;
	world_start(w);
	w->check_cap = 1;
	world_open(w);
	w->watch_in = 1;
	flow_init(&w->up, n, 141);
	w->up.rpause = 1;
	WAIT(w, jint(w->sv.s, "unacked_in") >= (long long)MIB);
	WAIT(w, jint(w->cl.s, "unacked_out") == (long long)MIB);
	world_idle(w, 50);

	/* The sender's replay is full: it reads its guest no further. */
	wr = w->up.wr;
	out = jint(w->cl.s, "bytes_out");
	world_idle(w, 200);
	assert_int_equal(w->up.wr, wr);
	assert_int_equal(jint(w->cl.s, "bytes_out"), out);
	assert_true(w->up.wr < n);
	assert_int_equal(w->up.rd, 0);
	/* All it sent is queued for the backend, and no more. */
	assert_int_equal(jint(w->sv.s, "unacked_in"), MIB);
	if (w->max_unacked_in <= 256 * 1024 + PROTO_DATA_MAX ||
	    w->max_unacked_in > (long long)(MIB + PROTO_DATA_MAX))
		fail_msg("unacked_in peaked at %lld", w->max_unacked_in);
	assert_int_equal(w->cl.n_detached + w->sv.n_detached, 0);

	/* The backend reads again: all of it arrives, once. */
	w->up.rpause = 0;
	WAIT(w, flow_done(&w->up));
	world_idle(w, 20);
	flow_check(&w->up, "guest -> backend");
	if (w->max_unacked_in > (long long)(MIB + PROTO_DATA_MAX))
		fail_msg("unacked_in peaked at %lld", w->max_unacked_in);
	assert_int_equal(jint(w->sv.s, "bytes_in"), n);
	assert_int_equal(w->cl.n_detached + w->sv.n_detached, 0);
	assert_int_equal(w->connects, 1);
}

/*
 * The backend reads while the session is detached: the server delivers
 * all it held (everything the client sent), but the ACK that would open
 * the client's window has no leg to go on.  A resume's offsets say what was received, not what
 * was delivered, so only the ACK that starts the new leg (with RESUMED,
 * in the same write) lets the client send on; without it the stream
 * stalls for good.
 */
static void
test_resume_window_ack(void **state)
{
	struct world	*w = *state;
	size_t		 n = 2 * MIB, rd;

	w->conf.replay_max = 256 * 1024;
	world_start(w);
	w->check_cap = 1;
	world_open(w);
	flow_init(&w->up, n, 151);
	flow_init(&w->down, 1000, 152);
	w->up.rpause = 1;
	WAIT(w, jint(w->cl.s, "unacked_out") == 256 * 1024);
	WAIT(w, jint(w->sv.s, "unacked_in") == 256 * 1024);
	world_idle(w, 50);

	w->no_target = 1;
	assert_int_equal(shutdown(w->sleg, SHUT_RDWR), 0);
	WAIT(w, w->cl.n_detached == 1 && w->sv.n_detached == 1);
	w->up.rpause = 0;			/* delivered while detached */
	WAIT(w, jint(w->sv.s, "unacked_in") == 0 &&
	    (long long)w->up.rd == jint(w->sv.s, "bytes_in"));
	rd = w->up.rd;
	world_idle(w, 50);
	assert_int_equal(w->up.rd, rd);		/* the client is held */
	assert_true(rd < n);

	w->no_target = 0;
	WAIT(w, w->cl.n_resumed == 1 && w->sv.n_resumed == 1);
	flows_finish(w, 0, "backend -> guest");
	assert_int_equal(jint(w->sv.s, "bytes_in"), n);
	assert_int_equal(w->connects, 2);
}

/*
 * A leg handed over with its first frames already read into the
 * bufferevent, as the locator's gate does when it reads past a caller
 * line: the session layer takes them, and the session opens.
 */
static void
test_accept_read_ahead(void **state)
{
	struct world	*w = *state;
	struct evbuffer	*in;

	w->accept_late = 1;
	world_start(w);
	world_guest(w);
	WAIT(w, w->late_sb != NULL && readable(w->sleg));
	in = bufferevent_get_input(w->late_sb);
	evbuffer_unfreeze(in, 0);	/* as libevent's own read does */
	while (evbuffer_read(in, w->sleg, -1) > 0)
		;
	evbuffer_freeze(in, 0);
	assert_true(evbuffer_get_length(in) > 0);	/* the HELLO */
	assert_false(readable(w->sleg));
	sess_accept(w->sv.ctx, w->late_sb, "test-leg");
	w->late_sb = NULL;
	WAIT(w, w->cl.n_open == 1 && w->sv.n_open == 1);
	flow_init(&w->up, 100000, 71);
	flow_init(&w->down, 100000, 72);
	flows_finish(w, 0, "backend -> guest");
}

/*
 * One more session from start to "done" on both ends: N bytes up,
 * echoed back, then EOF both ways; every byte checked.
 */
static void
world_echo_session(struct world *w, size_t n, uint64_t seed)
{
	int	cl = w->cl.n_closed, sv = w->sv.n_closed;

	/* The last session's backend is at EOF: not this one's. */
	if (w->backend != -1)
		close(w->backend);
	w->backend = -1;
	if (w->up.own)
		free(w->up.src);
	flow_init(&w->up, n, seed);
	w->up.shut = 1;
	flow_echo(&w->down, &w->up);
	w->down.shut = 1;
	world_guest(w);
	WAIT(w, w->cl.n_closed == cl + 1 && w->sv.n_closed == sv + 1);
	assert_string_equal(w->cl.why_closed, "done");
	assert_string_equal(w->sv.why_closed, "done");
	WAIT(w, w->down.eof && w->up.eof);
	flows_check(w, "backend -> guest (echo)");
}

/*
 * A finished session's leg carries the next one: the server says
 * RELEASE, both ends keep the leg idle, and the next session's HELLO
 * goes on it with no new connect; three sessions, one leg.
 */
static void
test_leg_reuse(void **state)
{
	struct world	*w = *state;
	int		 i;

	w->conf.idle_max = 4;	/* legs kept between sessions */
	world_start(w);
	for (i = 0; i < 3; i++) {
		world_echo_session(w, 100000 + i, 81 + i);
		WAIT(w, jstat(w->cl.ctx, "legs_idle") == 1 &&
		    jstat(w->sv.ctx, "legs_idle") == 1);
	}
	assert_int_equal(w->connects, 1);
	assert_int_equal(w->cl.n_open, 3);
	assert_int_equal(w->sv.n_open, 3);
	assert_int_equal(jstat(w->cl.ctx, "legs_reused"), 2);
	assert_int_equal(jstat(w->sv.ctx, "legs_reused"), 2);
	assert_int_equal(w->cl.n_detached + w->sv.n_detached, 0);
	assert_int_equal(w->refusals, 0);
}

/* The contexts, and a mesh link up between them for the client's legs. */
static void
world_start_chan(struct world *w)
{
	world_start(w);
	world_link(w);
	WAIT(w, w->link_up && mux_up(w->link[0]));
}

/*
 * Legs as channels on a mesh link (a relay's session ends on a shared
 * link): bytes both ways while the server's leg is broken twice (its
 * stream's socket shut: the channel's EOF), the client's leg is reset
 * (an RST on its stream) and the link is lost under the session (every
 * channel's ECONNRESET): each time it resumes over a new channel, and
 * every byte arrives once, in order.
 */
static void
test_chan_legs(void **state)
{
	struct world	*w = *state;
	size_t		 n = 6 * MIB;
	int		 k;

	w->conf.replay_max = 256 * 1024;
	world_start_chan(w);
	w->check_cap = 1;
	world_open(w);
	flow_init(&w->up, n, 0x51);
	flow_init(&w->down, n, 0x52);
	for (k = 1; k <= 4; k++) {
		WAIT(w, w->up.rd >= k * MIB && w->down.rd >= k * MIB);
		w->no_target = 1;
		if (k <= 2)
			assert_int_equal(shutdown(w->sleg, SHUT_RDWR), 0);
		else if (k == 3)
			assert_int_equal(sess_ctx_reset_legs(w->cl.ctx,
			    "test-", "vMotion reset (test)"), 1);
		else {
			mux_free(w->link[1]);
			w->link[1] = NULL;
		}
		WAIT(w, w->cl.n_detached == k && w->sv.n_detached == k);
		if (k == 4) {
			assert_non_null(strstr(w->cl.why_detached, "reset"));
			WAIT(w, w->link_closed);
			world_link(w);
			WAIT(w, w->link_up && mux_up(w->link[0]));
		}
		w->no_target = 0;
		sess_ctx_wake(w->cl.ctx);
		WAIT(w, w->cl.n_resumed == k && w->sv.n_resumed == k);
		assert_int_equal(w->connects, 1 + k);
	}
	flows_finish(w, 30, "backend -> guest");
	assert_int_equal(jint(w->cl.s, "bytes_out"), n);
	assert_int_equal(jint(w->cl.s, "bytes_in"), n);
	assert_int_equal(jint(w->sv.s, "bytes_out"), n);
	assert_int_equal(jint(w->sv.s, "bytes_in"), n);
	assert_int_equal(jstat(w->cl.ctx, "resumes_one_trip"), 4);
	assert_int_equal(w->refusals, 0);
}

/*
 * Over channels, a replay cap the bulk runs into holds the writers back
 * both ways (the channel's queue and the link's window in between), and
 * sessions one after another reuse the leg the server released.
 */
static void
test_chan_backpressure_reuse(void **state)
{
	struct world	*w = *state;
	size_t		 n = 8 * MIB;
	int		 i;

	w->conf.replay_max = 64 * 1024;
	w->conf.idle_max = 4;
	world_start_chan(w);
	w->check_cap = 1;
	world_open(w);
	flow_init(&w->up, n, 0x61);
	flow_init(&w->down, n, 0x62);
	w->up.shut = w->down.shut = 1;
	flows_finish(w, 0, "backend -> guest");
	if (w->max_unacked < (long long)w->conf.replay_max / 2)
		fail_msg("unacked_out peaked at %lld only", w->max_unacked);
	assert_int_equal(w->cl.n_detached + w->sv.n_detached, 0);
	WAIT(w, w->cl.n_closed == 1 && w->sv.n_closed == 1);
	assert_string_equal(w->cl.why_closed, "done");
	WAIT(w, jstat(w->cl.ctx, "legs_idle") == 1 &&
	    jstat(w->sv.ctx, "legs_idle") == 1);
	/* The echo sessions' downstream is their upstream's bytes. */
	free(w->down.src);
	w->down.src = NULL;
	w->down.own = 0;
	for (i = 0; i < 2; i++) {
		world_echo_session(w, 100000 + i, 91 + i);
		WAIT(w, jstat(w->cl.ctx, "legs_idle") == 1 &&
		    jstat(w->sv.ctx, "legs_idle") == 1);
	}
	assert_int_equal(w->connects, 1);
	assert_int_equal(jstat(w->cl.ctx, "legs_reused"), 2);
	assert_int_equal(w->refusals, 0);
}

/*
 * A server that keeps no idle legs sends no RELEASE: the client closes
 * the leg after the session, and the next one connects anew.
 */
static void
test_leg_reuse_server_off(void **state)
{
	struct world		*w = *state;
	struct sess_conf	 sv = w->conf;

	w->conf.idle_max = 4;
	sv.idle_max = 0;
	world_start_with(w, &w->conf, &sv);
	world_echo_session(w, 5000, 91);
	world_idle(w, 50);
	assert_int_equal(jstat(w->cl.ctx, "legs_idle"), 0);
	assert_int_equal(jstat(w->sv.ctx, "legs_idle"), 0);
	world_echo_session(w, 5000, 92);
	assert_int_equal(w->connects, 2);
	assert_int_equal(jstat(w->cl.ctx, "legs_reused"), 0);
}

/*
 * The server dropped its idle leg while the client was already saying
 * HELLO on it: the session takes a fresh leg and opens; nothing of the
 * guest's stream is lost.
 */
static void
test_leg_reuse_stale(void **state)
{
	struct world	*w = *state;
	int		 fd[2];
	const struct sess_guest	g = { GUEST_HOST, GUEST_CID, GUEST_PORT,
				    PROTO_SVC_STREAM, NULL };

	w->conf.idle_max = 4;	/* legs kept between sessions */
	world_start(w);
	world_echo_session(w, 5000, 93);
	WAIT(w, jstat(w->cl.ctx, "legs_idle") == 1 &&
	    jstat(w->sv.ctx, "legs_idle") == 1);
	close(w->backend);
	w->backend = -1;
	free(w->up.src);
	flow_init(&w->up, 70000, 94);
	w->up.shut = 1;
	flow_echo(&w->down, &w->up);
	w->down.shut = 1;
	nonblock_pair(fd);
	w->cl.s = sess_client_new(w->cl.ctx, fd[0], &g);
	close(w->guest);
	w->guest = fd[1];
	/* One turn: the retry fires and says HELLO on the idle leg... */
	event_base_loop(w->base, EVLOOP_ONCE);
	assert_int_equal(jstat(w->cl.ctx, "legs_reused"), 1);
	assert_int_equal(jstat(w->cl.ctx, "legs_idle"), 0);
	/* ...which the server drops before it reads the HELLO. */
	assert_int_equal(sess_ctx_reset_legs(w->sv.ctx, NULL, "test"), 1);
	WAIT(w, w->cl.n_closed == 2 && w->sv.n_closed == 2);
	assert_string_equal(w->cl.why_closed, "done");
	WAIT(w, w->down.eof && w->up.eof);
	flows_check(w, "backend -> guest (echo)");
	assert_int_equal(w->connects, 2);
	assert_int_equal(jstat(w->sv.ctx, "legs_reused"), 0);
}

/*
 * Idle legs go when the target moves elsewhere, and with a reset; the
 * far end's idle leg follows them at its EOF.
 */
static void
test_leg_idle_retarget(void **state)
{
	struct world	*w = *state;

	w->conf.idle_max = 4;	/* legs kept between sessions */
	world_start(w);
	world_echo_session(w, 3000, 95);
	WAIT(w, jstat(w->cl.ctx, "legs_idle") == 1 &&
	    jstat(w->sv.ctx, "legs_idle") == 1);
	sess_ctx_retarget(w->cl.ctx, "test-target");	/* same place */
	world_idle(w, 20);
	assert_int_equal(jstat(w->cl.ctx, "legs_idle"), 1);
	sess_ctx_retarget(w->cl.ctx, "elsewhere");
	assert_int_equal(jstat(w->cl.ctx, "legs_idle"), 0);
	WAIT(w, jstat(w->sv.ctx, "legs_idle") == 0);

	world_echo_session(w, 3000, 96);
	WAIT(w, jstat(w->cl.ctx, "legs_idle") == 1 &&
	    jstat(w->sv.ctx, "legs_idle") == 1);
	assert_int_equal(sess_ctx_reset_legs(w->cl.ctx, "test-", "test"),
	    1);
	assert_int_equal(jstat(w->cl.ctx, "legs_idle"), 0);
	WAIT(w, jstat(w->sv.ctx, "legs_idle") == 0);
	assert_int_equal(w->connects, 2);
}

/*
 * A frame that is no HELLO on a server's idle leg is refused with
 * ERROR malformed, and the leg closes at both ends.
 */
static void
test_leg_idle_garbage(void **state)
{
	struct world	*w = *state;
	struct evbuffer	*b;

	w->conf.idle_max = 4;	/* legs kept between sessions */
	world_start(w);
	world_echo_session(w, 3000, 97);
	WAIT(w, jstat(w->cl.ctx, "legs_idle") == 1 &&
	    jstat(w->sv.ctx, "legs_idle") == 1);
	b = evbuffer_new();
	assert_non_null(b);
	frame_u64_add(b, PROTO_FIN, 3000);
	assert_int_equal(evbuffer_write(b, w->cleg), PROTO_HDR_LEN + 8);
	evbuffer_free(b);
	WAIT(w, jstat(w->sv.ctx, "legs_idle") == 0 &&
	    jstat(w->cl.ctx, "legs_idle") == 0);
	assert_int_equal(w->refusals, 1);
	assert_non_null(strstr(w->why_refused, "unexpected FIN on an idle leg"));
	assert_int_equal(sess_ctx_count(w->cl.ctx), 0);
	assert_int_equal(sess_ctx_count(w->sv.ctx), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_echo, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_service_name, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_name_max, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_hello_largest, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_splice, setup, teardown),
		cmocka_unit_test_setup_teardown(test_splice_lost, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_splice_lost_tcp, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_splice_echo, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_data_overlap, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_large_transfer, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_resume, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_resume, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bad_hello, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_hold_time, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_orderly_finish, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_half_close, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_close_one_end, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_admit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backend_refused, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_resume_replay, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_resume_stale_proof, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_resumed_lost, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_connect_wait, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_connect_retry, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_handshake_limits, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_resume_after_fin, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_stream_violation, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_client_handshake, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_accept_read_ahead, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_client_old_server,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_ack_half, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_ack_ask, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_window_echo, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_hello_long_v4, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_resume_counts, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_window_violation, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_unequal_echo, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_client_v3_frames, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_server_v3_frames, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_server_old_client,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_keepalive_dead_leg, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_break_before_welcome,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_resume_fin_undelivered,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_slow_backend, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_confirmed_spliced, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_retarget, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_retarget_handshake, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_reset_legs, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_resume_stats, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_recv_window, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_resume_window_ack, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_leg_reuse, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_leg_reuse_server_off,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_leg_reuse_stale, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_leg_idle_retarget, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_chan_legs, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_chan_backpressure_reuse,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_leg_idle_garbage, setup,
		    teardown),
	};

	/* A leg shut under a pending write must not kill the test. */
	signal(SIGPIPE, SIG_IGN);
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
