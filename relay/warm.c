/*
 * warm.c -- make-before-break for mesh legs.  When the locator hints
 * that the appliance is about to move (VmBeingHotMigratedEvent names
 * the destination host), this relay connects ahead of time to that
 * host's relay, one connection for each session (and agent forward)
 * that will need a new leg there.  When the target then moves, new
 * legs take a connection from this pool instead of connecting: the
 * TCP handshake was paid while the old path still worked.
 *
 * The far relay's fwd.c decides where a leg goes on its first byte,
 * not at accept, so a warm leg may arrive before that host runs the
 * appliance.  Unused connections go after WARM_TTL_MS, or as soon as
 * the far end closes them (a watch on readability).
 *
 * Connects are paced: at most WARM_BURST in progress, the next one
 * started as one completes.  A burst of a thousand SYNs loses some on
 * the way, and a lost SYN costs its session a 1 s retransmit.  With
 * TLS, none while that relay's ticket is unproven and a probe is under
 * way (tls_link_wait): a burst would make each pay a full handshake,
 * where the probe's ticket lets the rest resume.  A session's own new
 * leg waits the same way (warm_leg).
 *
 * The pool holds bufferevents, not sockets: with TLS the handshake
 * (and the check of the far relay's certificate) is paid ahead too,
 * and the far relay sees an authenticated leg that may wait for its
 * first byte, not a pre-authentication one it must time out.  A plain
 * one leaves the pool as its socket, up, for the session layer's own
 * event (warm_leg); its bufferevent is freed once that event is added
 * (sess_dial_retire), so the socket never leaves epoll.
 */
#include <sys/queue.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "log.h"
#include "relay.h"
#include "xaddr.h"
#include "xmalloc.h"
#include "xtime.h"

#define WARM_TTL_MS	30000
#define WARM_MAX	1024	/* pooled connections at most */
#define WARM_BURST	64	/* connects in progress at most */
#define WARM_POLL_MS	100	/* with more to open: look again */

struct warm_conn {
	struct warm		*w;
	struct bufferevent	*bev;
	char			*dest;		/* canonical address */
	char			*host;		/* whose relay it is */
	long long		 expires_ms;	/* 0: dead, reap it */
	int			 connecting;
	TAILQ_ENTRY(warm_conn)	 entry;
};
TAILQ_HEAD(warm_list, warm_conn);

struct warm {
	struct relay		*r;
	struct warm_list	 pool;		/* dead, then oldest first */
	size_t			 n;
	size_t			 connecting;
	struct xaddr		*todo_addr;	/* more to open, to here */
	char			*todo_host;	/* the relay of this host */
	size_t			 todo;
	struct event		*expire_ev;
	uint64_t		 opened;
	uint64_t		 used;
	uint64_t		 wasted;	/* expired or closed unused */
};

static void	warm_expire_cb(evutil_socket_t, short, void *);
static void	warm_fill(struct warm *);
static void	warm_schedule(struct warm *);

/* The pool of relay R. */
struct warm *
warm_new(struct relay *r)
{
	struct warm	*w;

	w = xcalloc(1, sizeof(*w));
	w->r = r;
	TAILQ_INIT(&w->pool);
	if ((w->expire_ev = evtimer_new(r->d.base, warm_expire_cb, w)) ==
	    NULL)
		fatalx("evtimer_new");
	return (w);
}

/* Unlink C; free its leg unless KEEP (it was handed out). */
static void
warm_conn_free(struct warm_conn *c, int keep)
{
	TAILQ_REMOVE(&c->w->pool, c, entry);
	c->w->n--;
	if (c->connecting)
		c->w->connecting--;
	if (!keep && c->bev != NULL)
		bufferevent_free(c->bev);
	free(c->dest);
	free(c->host);
	free(c);
}

/* Close every pooled connection and free; NULL is fine. */
void
warm_free(struct warm *w)
{
	struct warm_conn	*c;

	if (w == NULL)
		return;
	while ((c = TAILQ_FIRST(&w->pool)) != NULL)
		warm_conn_free(c, 0);
	xaddr_free(w->todo_addr);
	free(w->todo_host);
	event_free(w->expire_ev);
	free(w);
}

/*
 * Arm the expiry timer for the pool's head: the oldest connection, or a
 * dead one (warm_conn_dead moves those to the front), at once.  With
 * more to open, WARM_POLL_MS at most: a probe that brought no ticket
 * wakes no one (tls_set_wake), and stops holding the rest in a while.
 */
static void
warm_schedule(struct warm *w)
{
	struct warm_conn	*c;
	struct timeval		 tv;
	long long		 ms = WARM_POLL_MS;

	if ((c = TAILQ_FIRST(&w->pool)) == NULL && w->todo == 0) {
		evtimer_del(w->expire_ev);
		return;
	}
	if (c != NULL && (w->todo == 0 ||
	    c->expires_ms - xtime_mono_ms() < ms))
		ms = c->expires_ms - xtime_mono_ms();
	xtime_tv(ms > 0 ? ms : 0, &tv);
	evtimer_add(w->expire_ev, &tv);
}

static void
warm_expire_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct warm		*w = arg;
	struct warm_conn	*c, *next;
	long long		 now = xtime_mono_ms();

	/* Dead ones first, then by age: stop at the first still good. */
	TAILQ_FOREACH_SAFE(c, &w->pool, entry, next) {
		if (c->expires_ms > now)
			break;
		w->wasted++;
		warm_conn_free(c, 0);
	}
	warm_fill(w);
	warm_schedule(w);
}

/* A pooled leg is dead: reap it outside its callback. */
static void
warm_conn_dead(struct warm_conn *c)
{
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
	if (c->connecting) {
		c->connecting = 0;
		c->w->connecting--;
	}
	c->expires_ms = 0;
	/* In expiry order: a dead one expires before anything else. */
	TAILQ_REMOVE(&c->w->pool, c, entry);
	TAILQ_INSERT_HEAD(&c->w->pool, c, entry);
	warm_schedule(c->w);
}

/*
 * A pooled leg is up (connected, TLS verified): start the next one.
 * EOF or an error: the far end closed it, or would not have it.
 */
static void
warm_conn_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct warm_conn	*c = arg;
	struct warm		*w = c->w;
	const char		*why;

	if (what & BEV_EVENT_CONNECTED) {
		c->connecting = 0;
		w->connecting--;
		warm_fill(w);
		return;
	}
	if (c->connecting && (why = tls_bev_error(bev)) != NULL)
		log_info("pre-warm to %s: %s", c->dest, why);
	warm_conn_dead(c);
}

/* The far end spoke first: that is no relay waiting for a leg. */
static void
warm_conn_readcb(struct bufferevent *bev, void *arg)
{
	warm_conn_dead(arg);
}

/* Start connects towards todo_addr while fewer than WARM_BURST run. */
static void
warm_fill(struct warm *w)
{
	struct warm_conn	*c;
	struct bufferevent	*bev;
	int			 fd, e;

	while (w->todo > 0 && w->connecting < WARM_BURST && w->n < WARM_MAX &&
	    !daemon_link_wait(&w->r->d, w->todo_addr, TLS_ROLE_RELAY,
	    w->todo_host)) {
		if ((e = xaddr_connect(w->todo_addr, &fd, NULL)) != XADDR_OK) {
			log_info("pre-warm to %s: %s",
			    xaddr_str(w->todo_addr), xaddr_why(e));
			w->todo = 0;
			return;
		}
		/* The keepalive a session's leg sets, paid ahead too. */
		xaddr_dead_after(fd, w->r->conf.sess.keepalive_ms * 3);
		if ((bev = daemon_connected(&w->r->d, fd, 0, w->todo_addr,
		    TLS_ROLE_RELAY, w->todo_host)) == NULL) {
			w->todo = 0;
			return;
		}
		c = xcalloc(1, sizeof(*c));
		c->w = w;
		c->bev = bev;
		c->dest = xstrdup(xaddr_str(w->todo_addr));
		c->host = xstrdup(w->todo_host);
		c->expires_ms = xtime_mono_ms() + WARM_TTL_MS;
		c->connecting = 1;
		bufferevent_setcb(bev, warm_conn_readcb, NULL,
		    warm_conn_eventcb, c);
		bufferevent_enable(bev, EV_READ);
		TAILQ_INSERT_TAIL(&w->pool, c, entry);
		w->n++;
		w->connecting++;
		w->todo--;
		w->opened++;
	}
}

/* Links to a relay may go (daemon_link_wait): open what waited. */
void
warm_wake(struct warm *w)
{
	warm_fill(w);
	warm_schedule(w);
}

/* Pooled legs to HOST's relay at DEST. */
static size_t
warm_count(struct warm *w, const char *dest, const char *host)
{
	struct warm_conn	*c;
	size_t			 n = 0;

	TAILQ_FOREACH(c, &w->pool, entry)
		if (c->expires_ms != 0 && strcmp(c->dest, dest) == 0 &&
		    strcmp(c->host, host) == 0)
			n++;
	return (n);
}

/*
 * The appliance is heading for HOST, whose relay is at A (NULL if
 * unknown): open connections to it until WANT are pooled for it,
 * WARM_BURST at a time.  Returns how many more it will open; *LINK is
 * the state of the shared link to HOST's relay if legs go on one (then
 * the link is what is warmed, and no connection is pooled), else NULL.
 */
size_t
warm_hint(struct warm *w, const char *host, const struct xaddr *a,
    size_t want, const char **link)
{
	size_t	have;

	*link = NULL;
	if (want == 0 || a == NULL || strcmp(host, w->r->conf.host) == 0)
		return (0);	/* nothing to move, or local delivery */
	/* Over a shared link, a leg is a stream: the link is what to warm. */
	if ((*link = mesh_prepare(w->r->mesh, a, host)) != NULL)
		return (0);
	have = warm_count(w, xaddr_str(a), host);
	/* A new destination replaces what was still to open. */
	xaddr_free(w->todo_addr);
	w->todo_addr = xaddr_dup(a);
	free(w->todo_host);
	w->todo_host = xstrdup(host);
	w->todo = want > have ? want - have : 0;
	if (w->todo > WARM_MAX - w->n)
		w->todo = WARM_MAX - w->n;
	want = w->todo;
	warm_fill(w);
	warm_schedule(w);
	return (want);
}

/*
 * Legs now go to ROUTE.  If that is where the pre-warm was heading, the
 * legs that move have moved or are moving now, and what is pooled
 * serves them: opening more would only compete with their handshakes.
 */
void
warm_settle(struct warm *w, const char *route)
{
	if (w->todo_addr != NULL && route != NULL &&
	    strcmp(xaddr_str(w->todo_addr), route) == 0)
		w->todo = 0;
}

/* The move will not happen: open nothing more for it. */
void
warm_cancel(struct warm *w)
{
	w->todo = 0;
}

/* A pooled leg handed out: its owner hears that it is connected. */
static void
warm_ready_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct bufferevent	*bev = arg;

	bufferevent_trigger_event(bev, BEV_EVENT_CONNECTED, 0);
	bufferevent_decref(bev);
}

/*
 * A new leg to A (HOST's relay, or the appliance if HOST is NULL): a
 * pooled one if there is one, else a fresh connect.  A plain socket
 * leaves the pool without its bufferevent, up unless its connect is
 * still under way; a TLS one stays a bufferevent and reports
 * BEV_EVENT_CONNECTED to whoever sets its callbacks next.  -1 with
 * *why saying why; 1 if a fresh one should wait for another link's TLS
 * handshake to HOST (daemon_link_wait).  Where legs to HOST share a
 * link (mesh.c), a stream on it instead (an xsock on a channel if CHAN,
 * for a session end), or 1 while the link comes up.
 */
int
warm_leg(struct warm *w, const struct xaddr *a, const char *host, int chan,
    struct sess_dial *dial, const char **why)
{
	static char		 msg[200];
	struct warm_conn	*c;
	struct bufferevent	*bev;
	const char		*dest = xaddr_str(a);
	struct timeval		 tv0 = { 0, 0 };
	int			 fd, up, e;

	*dial = (struct sess_dial){ .fd = -1 };
	/* A stream on the shared link to HOST's relay, if legs go so. */
	if ((e = mesh_leg(w->r->mesh, a, host, chan, dial, why)) != 2)
		return (e);
	TAILQ_FOREACH(c, &w->pool, entry) {
		if (c->expires_ms == 0 || host == NULL ||
		    strcmp(c->dest, dest) != 0 || strcmp(c->host, host) != 0)
			continue;
		bev = c->bev;
		bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
		if (!tls_bev_is_tls(bev)) {
			/* Freed once the new owner watches the socket. */
			dial->fd = bufferevent_getfd(bev);
			dial->up = !c->connecting;
			dial->retire = bev;
		} else {
			/*
			 * Up already: tell its new owner, from the loop,
			 * once its callbacks are set.  The reference keeps
			 * the bufferevent valid if the owner frees it
			 * first.
			 */
			if (!c->connecting) {
				bufferevent_incref(bev);
				if (event_base_once(w->r->d.base, -1,
				    EV_TIMEOUT, warm_ready_cb, bev, &tv0) == -1)
					fatalx("event_base_once");
			}
			dial->bev = bev;
		}
		dial->tuned = 1;	/* warm_fill set its keepalive */
		w->used++;
		*why = dest;
		warm_conn_free(c, 1);
		warm_fill(w);
		warm_schedule(w);
		return (0);
	}
	if (host != NULL &&
	    daemon_link_wait(&w->r->d, a, TLS_ROLE_RELAY, host)) {
		snprintf(msg, sizeof(msg), "waiting for a TLS handshake to "
		    "%s's relay", host);
		*why = msg;
		return (1);
	}
	if ((e = xaddr_connect(a, &fd, &up)) != XADDR_OK) {
		snprintf(msg, sizeof(msg), "%s unreachable: %s",
		    xaddr_str(a), xaddr_why(e));
		*why = msg;
		return (-1);
	}
	return (daemon_leg(&w->r->d, fd, up, a, host != NULL ? TLS_ROLE_RELAY :
	    TLS_ROLE_APPLIANCE, host, dial, why));
}

/* Pool counters for vrelay status. */
json_t *
warm_json(const struct warm *w)
{
	return (json_pack("{s:I, s:I, s:I, s:I}",
	    "pooled", (json_int_t)w->n,
	    "opened", (json_int_t)w->opened,
	    "used", (json_int_t)w->used,
	    "wasted", (json_int_t)w->wasted));
}
