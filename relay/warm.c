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
 * the way, and a lost SYN costs its session a 1 s retransmit.
 */
#include <sys/queue.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "relay.h"
#include "xaddr.h"
#include "xmalloc.h"
#include "xtime.h"

#define WARM_TTL_MS	30000
#define WARM_MAX	1024	/* pooled connections at most */
#define WARM_BURST	64	/* connects in progress at most */

struct warm_conn {
	struct warm		*w;
	int			 fd;
	char			*dest;		/* canonical address */
	long long		 expires_ms;
	int			 connecting;
	struct event		*ev;		/* connected? far end closed? */
	TAILQ_ENTRY(warm_conn)	 entry;
};
TAILQ_HEAD(warm_list, warm_conn);

struct warm {
	struct relay		*r;
	struct warm_list	 pool;		/* oldest first */
	size_t			 n;
	size_t			 connecting;
	struct xaddr		*todo_addr;	/* more to open, to here */
	size_t			 todo;
	struct event		*expire_ev;
	uint64_t		 opened;
	uint64_t		 used;
	uint64_t		 wasted;	/* expired or closed unused */
};

static void	warm_expire_cb(evutil_socket_t, short, void *);
static void	warm_conn_cb(evutil_socket_t, short, void *);
static void	warm_fill(struct warm *);

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

/* Unlink C; close its socket unless KEEP (it was handed out). */
static void
warm_conn_free(struct warm_conn *c, int keep)
{
	TAILQ_REMOVE(&c->w->pool, c, entry);
	c->w->n--;
	if (c->connecting)
		c->w->connecting--;
	event_free(c->ev);
	if (!keep)
		close(c->fd);
	free(c->dest);
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
	event_free(w->expire_ev);
	free(w);
}

/* Arm the expiry timer for the oldest connection. */
static void
warm_schedule(struct warm *w)
{
	struct warm_conn	*c;
	struct timeval		 tv;
	long long		 ms;

	if ((c = TAILQ_FIRST(&w->pool)) == NULL) {
		evtimer_del(w->expire_ev);
		return;
	}
	ms = c->expires_ms - xtime_mono_ms();
	xtime_tv(ms > 0 ? ms : 0, &tv);
	evtimer_add(w->expire_ev, &tv);
}

static void
warm_expire_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct warm		*w = arg;
	struct warm_conn	*c;
	long long		 now = xtime_mono_ms();

	while ((c = TAILQ_FIRST(&w->pool)) != NULL && c->expires_ms <= now) {
		w->wasted++;
		warm_conn_free(c, 0);
	}
	warm_fill(w);
	warm_schedule(w);
}

/*
 * A connect completed (writable): from now on watch for the far end
 * closing, and start the next one.  Readable, or a failed connect: the
 * connection is no use.
 */
static void
warm_conn_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct warm_conn	*c = arg;
	struct warm		*w = c->w;
	socklen_t		 len = sizeof(int);
	int			 err = 0;

	if (c->connecting && (ev & EV_WRITE) && !(ev & EV_READ) &&
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
	    err == 0) {
		c->connecting = 0;
		w->connecting--;
		event_free(c->ev);
		if ((c->ev = event_new(w->r->d.base, fd, EV_READ,
		    warm_conn_cb, c)) == NULL)
			fatalx("event_new");
		event_add(c->ev, NULL);
	} else {
		w->wasted++;
		warm_conn_free(c, 0);
	}
	warm_fill(w);
	warm_schedule(w);
}

/* Start connects towards todo_addr while fewer than WARM_BURST run. */
static void
warm_fill(struct warm *w)
{
	struct warm_conn	*c;
	int			 fd, e;

	while (w->todo > 0 && w->connecting < WARM_BURST && w->n < WARM_MAX) {
		if ((e = xaddr_connect(w->todo_addr, &fd)) != XADDR_OK) {
			log_info("pre-warm to %s: %s",
			    xaddr_str(w->todo_addr), xaddr_why(e));
			w->todo = 0;
			return;
		}
		c = xcalloc(1, sizeof(*c));
		c->w = w;
		c->fd = fd;
		c->dest = xstrdup(xaddr_str(w->todo_addr));
		c->expires_ms = xtime_mono_ms() + WARM_TTL_MS;
		c->connecting = 1;
		if ((c->ev = event_new(w->r->d.base, fd, EV_READ | EV_WRITE,
		    warm_conn_cb, c)) == NULL)
			fatalx("event_new");
		event_add(c->ev, NULL);
		TAILQ_INSERT_TAIL(&w->pool, c, entry);
		w->n++;
		w->connecting++;
		w->todo--;
		w->opened++;
	}
}

/* Pooled connections to DEST. */
static size_t
warm_count(struct warm *w, const char *dest)
{
	struct warm_conn	*c;
	size_t			 n = 0;

	TAILQ_FOREACH(c, &w->pool, entry)
		if (strcmp(c->dest, dest) == 0)
			n++;
	return (n);
}

/*
 * The appliance is heading for HOST, whose relay the locator names
 * RELAY ("" if it does not know): open connections to that relay until
 * WANT are pooled for it, WARM_BURST at a time.  Returns how many more
 * it will open.
 */
size_t
warm_hint(struct warm *w, const char *host, const char *relay, size_t want)
{
	const struct xaddr	*a;
	struct xaddr		*parsed = NULL;
	size_t			 have;

	if (want == 0 || strcmp(host, w->r->conf.host) == 0)
		return (0);	/* nothing to move, or local delivery */
	if ((a = target_mesh(w->r->target, host)) == NULL) {
		/* Best effort: never wait on a name lookup here. */
		if (*relay == '\0' ||
		    xaddr_parse_numeric(relay, &parsed) != XADDR_OK)
			return (0);
		a = parsed;
	}
	have = warm_count(w, xaddr_str(a));
	/* A new destination replaces what was still to open. */
	xaddr_free(w->todo_addr);
	w->todo_addr = parsed != NULL ? parsed : xaddr_dup(a);
	w->todo = want > have ? want - have : 0;
	if (w->todo > WARM_MAX - w->n)
		w->todo = WARM_MAX - w->n;
	want = w->todo;
	warm_fill(w);
	warm_schedule(w);
	return (want);
}

/*
 * A connecting (or connected) socket to A for a new leg: a pooled one
 * if there is one, else a fresh connect.  Returns an xaddr code.
 */
int
warm_connect(struct warm *w, const struct xaddr *a, int *fdp)
{
	struct warm_conn	*c;
	const char		*dest = xaddr_str(a);

	*fdp = -1;
	TAILQ_FOREACH(c, &w->pool, entry) {
		if (strcmp(c->dest, dest) != 0)
			continue;
		*fdp = c->fd;
		w->used++;
		warm_conn_free(c, 1);
		warm_fill(w);
		warm_schedule(w);
		return (XADDR_OK);
	}
	return (xaddr_connect(a, fdp));
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
