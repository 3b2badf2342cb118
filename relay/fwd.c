/*
 * fwd.c -- the relay on the appliance's host: each mesh leg from an
 * ingress relay is joined to a fresh vSocket connection into the
 * appliance endpoint, and bytes are copied opaquely both ways (the
 * session ends do all the protocol work, so this hop keeps no state
 * worth saving and may die at any time).  Backpressure follows
 * libevent's le-proxy: stop reading a side while the other side's
 * output is above FWD_HIGH, resume when it drains to half.
 *
 * Closing: when one side ends, each side still gets what was queued
 * for it, then a half-close, and the forward lingers (reading and
 * discarding) until both sides have closed or FWD_FLUSH_MS passes, so
 * a last frame (a CLOSE, an ERROR) is not destroyed by a reset.
 */
#include <sys/queue.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "frame.h"
#include "log.h"
#include "relay.h"
#include "xaddr.h"
#include "xmalloc.h"
#include "xtime.h"

#define FWD_HIGH	(512 * 1024)
#define FWD_FLUSH_MS	5000
#define FWD_CHUNK	(256 * 1024)	/* per read()/write() */

enum fwd_state {
	FWD_OPEN = 0,		/* copying both ways */
	FWD_CLOSING,		/* flushing, half-closed, lingering */
	FWD_DEAD,		/* waiting for the reaper */
};

struct fwd {
	struct fwd_ctx		*ctx;
	uint64_t		 id;
	struct bufferevent	*mesh;		/* from the ingress relay */
	struct bufferevent	*app;		/* into the appliance */
	char			 peer[XADDR_PEER_STRLEN];
	uint64_t		 to_app;
	uint64_t		 to_mesh;
	int			 connected;	/* appliance side is up */
	enum fwd_state		 state;
	int			 mesh_gone;	/* EOF or error seen */
	int			 app_gone;
	struct event		*deadline;	/* for the closing flush */
	long long		 started_ms;
	TAILQ_ENTRY(fwd)	 entry;
};
TAILQ_HEAD(fwd_list, fwd);

struct fwd_ctx {
	struct relay		*r;
	struct fwd_list		 live;
	struct fwd_list		 dead;
	struct event		*reap_ev;
	uint64_t		 next_id;
	uint64_t		 total;
	uint64_t		 refused;
	uint64_t		 bytes;
	size_t			 nlive;
};

static void	fwd_readcb(struct bufferevent *, void *);
static void	fwd_writecb(struct bufferevent *, void *);
static void	fwd_eventcb(struct bufferevent *, short, void *);

static void
fwd_reap_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct fwd_ctx	*ctx = arg;
	struct fwd	*f;

	while ((f = TAILQ_FIRST(&ctx->dead)) != NULL) {
		TAILQ_REMOVE(&ctx->dead, f, entry);
		if (f->mesh != NULL)
			bufferevent_free(f->mesh);
		if (f->app != NULL)
			bufferevent_free(f->app);
		event_free(f->deadline);
		free(f);
	}
}

/* The forwarder for relay R. */
struct fwd_ctx *
fwd_new(struct relay *r)
{
	struct fwd_ctx	*ctx;

	ctx = xcalloc(1, sizeof(*ctx));
	ctx->r = r;
	TAILQ_INIT(&ctx->live);
	TAILQ_INIT(&ctx->dead);
	if ((ctx->reap_ev = evtimer_new(r->d.base, fwd_reap_cb, ctx)) == NULL)
		fatalx("evtimer_new");
	return (ctx);
}

/* Drop a forward now; the reaper frees it outside the callbacks. */
static void
fwd_drop(struct fwd *f)
{
	struct timeval	tv = { 0, 0 };

	if (f->state == FWD_DEAD)
		return;
	f->state = FWD_DEAD;
	TAILQ_REMOVE(&f->ctx->live, f, entry);
	f->ctx->nlive--;
	evtimer_del(f->deadline);
	bufferevent_disable(f->mesh, EV_READ | EV_WRITE);
	bufferevent_setcb(f->mesh, NULL, NULL, NULL, NULL);
	bufferevent_disable(f->app, EV_READ | EV_WRITE);
	bufferevent_setcb(f->app, NULL, NULL, NULL, NULL);
	TAILQ_INSERT_TAIL(&f->ctx->dead, f, entry);
	evtimer_add(f->ctx->reap_ev, &tv);
}

static void
fwd_deadline_cb(evutil_socket_t fd, short ev, void *arg)
{
	fwd_drop(arg);
}

/* A side with nothing left to send gets a half-close. */
static void
fwd_side_flushed(struct fwd *f, struct bufferevent *bev)
{
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		shutdown(bufferevent_getfd(bev), SHUT_WR);
}

/* Both sides closed: nothing more can move. */
static void
fwd_check_gone(struct fwd *f)
{
	if (f->state == FWD_CLOSING && f->mesh_gone && f->app_gone)
		fwd_drop(f);
}

/* The one teardown: flush both sides, half-close, linger, then go. */
static void
fwd_close(struct fwd *f, const char *reason)
{
	struct timeval	tv;

	if (f->state != FWD_OPEN)
		return;
	f->state = FWD_CLOSING;
	log_debug("forward=%llu peer=%s closed to_app=%llu to_mesh=%llu "
	    "reason=\"%s\"", (unsigned long long)f->id, f->peer,
	    (unsigned long long)f->to_app, (unsigned long long)f->to_mesh,
	    reason);
	tv.tv_sec = FWD_FLUSH_MS / 1000;
	tv.tv_usec = 0;
	evtimer_add(f->deadline, &tv);
	if (!f->connected)
		f->app_gone = 1;
	if (!f->mesh_gone) {
		bufferevent_setwatermark(f->mesh, EV_WRITE, 0, 0);
		bufferevent_enable(f->mesh, EV_READ | EV_WRITE);
		fwd_side_flushed(f, f->mesh);
	}
	if (!f->app_gone) {
		bufferevent_setwatermark(f->app, EV_WRITE, 0, 0);
		bufferevent_enable(f->app, EV_READ | EV_WRITE);
		fwd_side_flushed(f, f->app);
	}
	fwd_check_gone(f);
}

void
fwd_free(struct fwd_ctx *ctx)
{
	struct fwd	*f;

	if (ctx == NULL)
		return;
	while ((f = TAILQ_FIRST(&ctx->live)) != NULL) {
		/* The loop is over: one non-blocking try at what is queued. */
		evbuffer_write(bufferevent_get_output(f->mesh),
		    bufferevent_getfd(f->mesh));
		fwd_drop(f);
	}
	fwd_reap_cb(-1, 0, ctx);
	event_free(ctx->reap_ev);
	free(ctx);
}

/* Copy what one side has to the other, pausing at the high mark. */
static void
fwd_readcb(struct bufferevent *bev, void *arg)
{
	struct fwd		*f = arg;
	struct bufferevent	*dst = bev == f->mesh ? f->app : f->mesh;
	struct evbuffer		*in = bufferevent_get_input(bev);
	size_t			 n = evbuffer_get_length(in);

	if (f->state != FWD_OPEN) {
		evbuffer_drain(in, n);		/* lingering */
		return;
	}
	if (bev == f->mesh)
		f->to_app += n;
	else
		f->to_mesh += n;
	f->ctx->bytes += n;
	evbuffer_add_buffer(bufferevent_get_output(dst), in);
	if (evbuffer_get_length(bufferevent_get_output(dst)) >= FWD_HIGH) {
		bufferevent_disable(bev, EV_READ);
		bufferevent_setwatermark(dst, EV_WRITE, FWD_HIGH / 2, FWD_HIGH);
	}
}

/* Output drained: let the other side read again, or finish closing. */
static void
fwd_writecb(struct bufferevent *bev, void *arg)
{
	struct fwd		*f = arg;
	struct bufferevent	*src = bev == f->mesh ? f->app : f->mesh;

	if (f->state != FWD_OPEN) {
		fwd_side_flushed(f, bev);
		return;
	}
	bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
	bufferevent_enable(src, EV_READ);
}

static void
fwd_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct fwd	*f = arg;
	char		 msg[200];
	int		 err = EVUTIL_SOCKET_ERROR();

	if (what & BEV_EVENT_CONNECTED) {
		f->connected = 1;
		bufferevent_enable(f->mesh, EV_READ);
		bufferevent_enable(f->app, EV_READ);
		return;
	}
	if (bev == f->mesh)
		f->mesh_gone = 1;
	else
		f->app_gone = 1;
	bufferevent_disable(bev, EV_READ | EV_WRITE);
	if (f->state != FWD_OPEN) {
		fwd_check_gone(f);
		return;
	}
	if (bev == f->app && !f->connected) {
		/* Tell the ingress end, which is waiting for its handshake. */
		snprintf(msg, sizeof(msg), "appliance unreachable: %s",
		    err != 0 ? strerror(err) : "connect failed");
		frame_error_add(bufferevent_get_output(f->mesh), PROTO_ERROR,
		    PROTO_E_NOT_APPLIANCE, msg);
		f->ctx->refused++;
		log_info("mesh leg from %s refused: %s", f->peer, msg);
		fwd_close(f, msg);
		return;
	}
	snprintf(msg, sizeof(msg), "%s %s%s%s",
	    bev == f->mesh ? "mesh side" : "appliance side",
	    (what & BEV_EVENT_EOF) ? "closed" :
	    (what & BEV_EVENT_TIMEOUT) ? "timed out" : "error",
	    (what & BEV_EVENT_ERROR) && err != 0 ? ": " : "",
	    (what & BEV_EVENT_ERROR) && err != 0 ? strerror(err) : "");
	/* Whatever was read before EOF still goes through. */
	if (what & BEV_EVENT_EOF)
		fwd_readcb(bev, f);
	fwd_close(f, msg);
}

/* Refuse a mesh leg with a protocol ERROR the ingress end can read. */
static void
fwd_refuse(struct fwd_ctx *ctx, evutil_socket_t fd, const char *peer,
    int code, const char *why)
{
	struct evbuffer	*b;

	ctx->refused++;
	log_info("mesh leg from %s refused: %s", peer, why);
	if ((b = evbuffer_new()) != NULL) {
		frame_error_add(b, PROTO_ERROR, code, why);
		evbuffer_write(b, fd);
		evbuffer_free(b);
	}
	close(fd);
}

/* A mesh leg arrived from an ingress relay. */
void
fwd_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct fwd_ctx		*ctx = arg;
	const struct xaddr	*app;
	struct xaddr_peer	 peer;
	struct fwd		*f;
	char			 why[200];
	int			 afd, e;

	xaddr_peer_describe(sa, salen, &peer);
	if ((app = target_local_appliance(ctx->r->target)) == NULL) {
		fwd_refuse(ctx, fd, peer.str, PROTO_E_NOT_APPLIANCE,
		    "this relay's host does not run the appliance");
		return;
	}
	if ((e = xaddr_connect(app, &afd)) != XADDR_OK) {
		snprintf(why, sizeof(why), "appliance %s unreachable: %s",
		    xaddr_str(app), e == XADDR_E_SYSTEM ? strerror(errno) :
		    xaddr_strerror(e));
		fwd_refuse(ctx, fd, peer.str, PROTO_E_NOT_APPLIANCE, why);
		return;
	}
	xaddr_tune(fd);
	/* The session ends ping through us: silence means the peer is gone. */
	if (ctx->r->conf.sess.keepalive_ms > 0)
		xaddr_dead_after(fd, ctx->r->conf.sess.keepalive_ms * 3);
	f = xcalloc(1, sizeof(*f));
	f->ctx = ctx;
	f->id = ++ctx->next_id;
	f->started_ms = xtime_mono_ms();
	if ((f->deadline = evtimer_new(ctx->r->d.base, fwd_deadline_cb, f)) ==
	    NULL)
		fatalx("evtimer_new");
	strlcpy(f->peer, peer.str, sizeof(f->peer));
	f->mesh = bufferevent_socket_new(ctx->r->d.base, fd,
	    BEV_OPT_CLOSE_ON_FREE);
	f->app = bufferevent_socket_new(ctx->r->d.base, afd,
	    BEV_OPT_CLOSE_ON_FREE);
	if (f->mesh == NULL || f->app == NULL)
		fatalx("bufferevent_socket_new");
	bufferevent_setcb(f->mesh, fwd_readcb, fwd_writecb, fwd_eventcb, f);
	bufferevent_setcb(f->app, fwd_readcb, fwd_writecb, fwd_eventcb, f);
	bufferevent_set_max_single_read(f->mesh, FWD_CHUNK);
	bufferevent_set_max_single_write(f->mesh, FWD_CHUNK);
	bufferevent_set_max_single_read(f->app, FWD_CHUNK);
	bufferevent_set_max_single_write(f->app, FWD_CHUNK);
	TAILQ_INSERT_TAIL(&ctx->live, f, entry);
	ctx->nlive++;
	ctx->total++;
	/* Reading starts once the appliance side has connected. */
	bufferevent_socket_connect(f->app, NULL, 0);
	bufferevent_enable(f->mesh, EV_WRITE);
	log_debug("forward=%llu peer=%s -> %s", (unsigned long long)f->id,
	    f->peer, xaddr_str(app));
}

/* Forwarding counters for the status socket. */
json_t *
fwd_json(const struct fwd_ctx *ctx)
{
	return (json_pack("{s:I, s:I, s:I, s:I}",
	    "active", (json_int_t)ctx->nlive,
	    "total", (json_int_t)ctx->total,
	    "refused", (json_int_t)ctx->refused,
	    "bytes", (json_int_t)ctx->bytes));
}
