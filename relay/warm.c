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

struct warm_conn {
	struct warm		*w;
	int			 fd;
	char			*dest;		/* canonical address */
	long long		 expires_ms;
	struct event		*ev;		/* far end closed? */
	TAILQ_ENTRY(warm_conn)	 entry;
};
TAILQ_HEAD(warm_list, warm_conn);

struct warm {
	struct relay		*r;
	struct warm_list	 pool;		/* oldest first */
	size_t			 n;
	struct event		*expire_ev;
	uint64_t		 opened;
	uint64_t		 used;
	uint64_t		 wasted;	/* expired or closed unused */
};

static void	warm_expire_cb(evutil_socket_t, short, void *);

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
	warm_schedule(w);
}

/* A pooled connection became readable: the far end closed it. */
static void
warm_conn_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct warm_conn	*c = arg;
	struct warm		*w = c->w;

	w->wasted++;
	warm_conn_free(c, 0);
	warm_schedule(w);
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
 * WANT are pooled for it.  Returns how many were opened.
 */
size_t
warm_hint(struct warm *w, const char *host, const char *relay, size_t want)
{
	const struct xaddr	*a;
	struct xaddr		*parsed = NULL;
	struct warm_conn	*c;
	size_t			 have, opened = 0;
	int			 fd, e;

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
	while (have + opened < want && w->n < WARM_MAX) {
		if ((e = xaddr_connect(a, &fd)) != XADDR_OK) {
			log_info("pre-warm to %s (%s): %s", host, xaddr_str(a),
			    e == XADDR_E_SYSTEM ? strerror(errno) :
			    xaddr_strerror(e));
			break;
		}
		c = xcalloc(1, sizeof(*c));
		c->w = w;
		c->fd = fd;
		c->dest = xstrdup(xaddr_str(a));
		c->expires_ms = xtime_mono_ms() + WARM_TTL_MS;
		if ((c->ev = event_new(w->r->d.base, fd, EV_READ,
		    warm_conn_cb, c)) == NULL)
			fatalx("event_new");
		event_add(c->ev, NULL);
		TAILQ_INSERT_TAIL(&w->pool, c, entry);
		w->n++;
		opened++;
	}
	w->opened += opened;
	warm_schedule(w);
	xaddr_free(parsed);
	return (opened);
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
