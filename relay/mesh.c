/*
 * mesh.c -- shared mesh links: one connection from this relay to each
 * relay it sends legs to, carrying every leg to that relay as a stream
 * (common/mux.c; wire format include/mux_proto.h).
 *
 * With TLS on the mesh, a leg of its own per session costs a TLS
 * handshake when it opens (every session's, at once, after a vMotion)
 * and ~17 KiB of OpenSSL state for as long as it lives.  A stream on a
 * link that is up opens in no round trip and costs no descriptor: a
 * session end's leg is an xsock on the stream's channel (mux_open_chan);
 * a forward's (a guest agent's leg, fwd.c) is a socketpair's end.  The
 * link is dialled when a leg first needs it, or when a vMotion hint
 * names the host (warm.c): legs wait for it (sess_ops.connect returns
 * 1) and are woken when it is up (daemon_wake), or try at their backoff
 * if it fails.  A link that
 * fails, or is lost while up (its streams close, and their sessions
 * resume), is dialled again by itself after a backoff (MESH_BACKOFF_MS,
 * doubling to MESH_BACKOFF_MAX) for as long as legs asked for it in the
 * last MESH_WANTED_MS, and legs are held off meanwhile: the sessions
 * come back as soon as the far relay does (the link's wake), not at
 * their own backoff, which grows to a second while that relay is down.
 *
 * The far relay tells a link from a leg by its first byte (fwd.c) and
 * hands it here (mesh_accept): each stream becomes a forward into the
 * appliance, as a leg of its own would (fwd_stream).  A relay that
 * does not speak mesh links answers the preamble with something else:
 * legs to it go one per connection (MESH_NOMUX_MS) as before.
 *
 * Links with no stream for MESH_IDLE_MS are closed; so is a link whose
 * stream ids are used up (the next leg dials a new one).
 */
#include <sys/queue.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "log.h"
#include "mux.h"
#include "relay.h"
#include "tls.h"
#include "xaddr.h"
#include "xmalloc.h"
#include "xtime.h"

#define MESH_BACKOFF_MS		50
#define MESH_BACKOFF_MAX	100
#define MESH_WANTED_MS		60000	/* redial while legs asked since */
#define MESH_NOMUX_MS		(10 * 60 * 1000)
#define MESH_IDLE_MS		(5 * 60 * 1000)
#define MESH_TICK_MS		10000

enum mesh_state {
	MESH_CONNECTING = 0,	/* dialled: TCP, TLS, the peer's preamble */
	MESH_UP,
	MESH_DOWN,		/* failed: legs held off until retry_ms */
	MESH_GONE,		/* closed: freed from the loop */
};

struct mesh_link {
	struct mesh		*ms;
	uint64_t		 id;
	int			 dialled;	/* 1: ours; 0: accepted */
	char			*host;		/* dialled: whose relay */
	char			*dest;		/* dialled: its address */
	struct xaddr		*addr;		/* ...parsed */
	char			 peer[XADDR_PEER_STRLEN]; /* accepted */
	enum mesh_state		 state;
	struct mux		*mux;
	long long		 since_ms;	/* in this state since */
	long long		 idle_ms;	/* last with a stream */
	long long		 retry_ms;	/* DOWN: not before */
	long long		 backoff_ms;
	long long		 asked_ms;	/* a leg last wanted it */
	struct event		*redial_ev;	/* down: redial; dialling:
						   the handshake's deadline */
	long long		 nomux_until;	/* DOWN: per-connection legs */
	char			 why[256];	/* DOWN: the failure */
	TAILQ_ENTRY(mesh_link)	 entry;
};
TAILQ_HEAD(mesh_links, mesh_link);

struct mesh {
	struct relay		*r;
	enum mesh_mode		 mode;
	struct mesh_links	 links;
	struct mesh_links	 gone;
	struct event		*reap_ev;
	struct event		*tick_ev;
	uint64_t		 next_id;
	uint64_t		 dialled, redials, accepted, failed, lost;
	uint64_t		 streams;
};

static const char *
mesh_strstate(enum mesh_state st)
{
	static const char *const names[] = { "connecting", "up", "down",
					    "gone" };

	return (names[st]);
}

/* Name a link in log lines. */
static const char *
mesh_name(const struct mesh_link *l)
{
	static char	buf[400];

	if (l->dialled)
		snprintf(buf, sizeof(buf), "mesh-link=%llu to=%s(%s)",
		    (unsigned long long)l->id, l->host, l->dest);
	else
		snprintf(buf, sizeof(buf), "mesh-link=%llu from=%s",
		    (unsigned long long)l->id, l->peer);
	return (buf);
}

static void
mesh_enter_state(struct mesh_link *l, enum mesh_state st)
{
	log_debug("%s %s -> %s", mesh_name(l), mesh_strstate(l->state),
	    mesh_strstate(st));
	l->state = st;
	l->since_ms = xtime_mono_ms();
}

static void
mesh_reap_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct mesh		*ms = arg;
	struct mesh_link	*l;

	while ((l = TAILQ_FIRST(&ms->gone)) != NULL) {
		TAILQ_REMOVE(&ms->gone, l, entry);
		mux_free(l->mux);
		if (l->redial_ev != NULL)
			event_free(l->redial_ev);
		xaddr_free(l->addr);
		free(l->host);
		free(l->dest);
		free(l);
	}
}

/* The one teardown: L's link closes (its streams with it), WHY. */
static void
mesh_close(struct mesh_link *l, const char *why)
{
	struct timeval	tv = { 0, 0 };

	if (l->state == MESH_GONE)
		return;
	log_info("%s closed: %s", mesh_name(l), why);
	mesh_enter_state(l, MESH_GONE);
	if (l->redial_ev != NULL)
		evtimer_del(l->redial_ev);
	TAILQ_REMOVE(&l->ms->links, l, entry);
	TAILQ_INSERT_TAIL(&l->ms->gone, l, entry);
	evtimer_add(l->ms->reap_ev, &tv);
}

/* Idle links go; so do failures that no longer hold legs off. */
static void
mesh_tick_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct mesh		*ms = arg;
	struct mesh_link	*l, *next;
	long long		 now = xtime_mono_ms();

	TAILQ_FOREACH_SAFE(l, &ms->links, entry, next) {
		if (l->state == MESH_UP && mux_streams(l->mux) > 0)
			l->idle_ms = now;
		else if (l->state == MESH_UP && l->dialled &&
		    now - l->idle_ms >= MESH_IDLE_MS)
			mesh_close(l, "idle");
		else if (l->state == MESH_DOWN && now >= l->retry_ms &&
		    now >= l->nomux_until && now - l->since_ms >= MESH_IDLE_MS)
			mesh_close(l, "forgotten");
	}
}

/* The mesh links of relay R, in MODE. */
struct mesh *
mesh_new(struct relay *r, enum mesh_mode mode)
{
	struct mesh	*ms;
	struct timeval	 tv;

	ms = xcalloc(1, sizeof(*ms));
	ms->r = r;
	ms->mode = mode;
	TAILQ_INIT(&ms->links);
	TAILQ_INIT(&ms->gone);
	if ((ms->reap_ev = evtimer_new(r->d.base, mesh_reap_cb, ms)) ==
	    NULL || (ms->tick_ev = event_new(r->d.base, -1, EV_PERSIST,
	    mesh_tick_cb, ms)) == NULL)
		fatalx("event_new");
	xtime_tv(MESH_TICK_MS, &tv);
	event_add(ms->tick_ev, &tv);
	return (ms);
}

/* Close every link; NULL is fine. */
void
mesh_free(struct mesh *ms)
{
	struct mesh_link	*l;

	if (ms == NULL)
		return;
	while ((l = TAILQ_FIRST(&ms->links)) != NULL)
		mesh_close(l, "shutting down");
	mesh_reap_cb(-1, 0, ms);
	event_free(ms->reap_ev);
	event_free(ms->tick_ev);
	free(ms);
}

/* The dialled link to HOST at DEST, or NULL. */
static struct mesh_link *
mesh_find(struct mesh *ms, const char *host, const char *dest)
{
	struct mesh_link	*l;

	TAILQ_FOREACH(l, &ms->links, entry)
		if (l->dialled && strcmp(l->host, host) == 0 &&
		    strcmp(l->dest, dest) == 0)
			return (l);
	return (NULL);
}

static void
mesh_up_cb(struct mux *m, void *arg)
{
	struct mesh_link	*l = arg;

	if (!l->dialled)
		return;
	log_info("%s up after %lld ms", mesh_name(l),
	    xtime_mono_ms() - l->since_ms);
	mesh_enter_state(l, MESH_UP);
	evtimer_del(l->redial_ev);
	l->backoff_ms = 0;
	l->idle_ms = xtime_mono_ms();
	daemon_wake(&l->ms->r->d, 1);
}

/* An accepted link's stream: a forward into the appliance. */
static int
mesh_accept_cb(struct mux *m, uint32_t sid, int fd, void *arg)
{
	struct mesh_link	*l = arg;

	l->ms->streams++;
	return (fwd_stream(l->ms->r->fwd, fd, l->peer, l->id, sid));
}

/*
 * A forward of stream SID on link LINK (fwd_stream's) hands over FD,
 * its appliance leg, and PENDING (mux_adopt): MUX_OK if the link took
 * them, else why not (a MUX_E_* code).
 */
int
mesh_adopt(struct mesh *ms, uint64_t link, uint32_t sid, int fd,
    struct evbuffer *pending)
{
	struct mesh_link	*l;

	if (ms == NULL)
		return (MUX_E_STATE);
	TAILQ_FOREACH(l, &ms->links, entry)
		if (l->id == link)
			break;
	if (l == NULL || l->mux == NULL)
		return (MUX_E_STATE);
	return (mux_adopt(l->mux, sid, fd, pending));
}

/*
 * The appliance left this host: streams handed over to their links go
 * as their forwards would (fwd_retarget).  How many.
 */
size_t
mesh_reset_adopted(struct mesh *ms)
{
	struct mesh_link	*l;
	size_t			 n = 0;

	if (ms == NULL)
		return (0);
	TAILQ_FOREACH(l, &ms->links, entry)
		if (!l->dialled && l->mux != NULL)
			n += mux_reset_adopted(l->mux);
	return (n);
}

static void	mesh_dial(struct mesh_link *);

static void	mesh_closed_cb(struct mux *, const char *, void *);

/*
 * Down: dial again, if legs still want it.  Dialling: the far relay did
 * not answer (TCP, TLS, preamble) within the handshake timeout.
 */
static void
mesh_redial_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct mesh_link	*l = arg;
	long long		 now = xtime_mono_ms();
	char			 why[64];

	if (l->state == MESH_CONNECTING) {
		snprintf(why, sizeof(why), "no answer in %lld ms",
		    l->ms->r->conf.sess.handshake_ms);
		mesh_closed_cb(l->mux, why, l);
	} else if (l->state == MESH_DOWN && now >= l->nomux_until &&
	    now - l->asked_ms < MESH_WANTED_MS) {
		l->ms->redials++;
		mesh_dial(l);
	}
}

/*
 * The link is gone.  Dialled: down, legs held off for its backoff
 * (doubling; from the start when it was lost while up), and dialled
 * again then by itself while legs want it.
 */
static void
mesh_closed_cb(struct mux *m, const char *why, void *arg)
{
	struct mesh_link	*l = arg;
	long long		 now = xtime_mono_ms();
	struct timeval		 tv;
	int			 lost;

	if (!l->dialled) {
		mesh_close(l, why);
		return;
	}
	if (l->state == MESH_GONE)
		return;		/* closed idle: the reaper's now */
	/* The handshake's deadline, if dialling: the backoff's below. */
	evtimer_del(l->redial_ev);
	lost = l->state == MESH_UP;
	if (lost) {
		l->ms->lost++;
		l->backoff_ms = 0;
		log_info("%s lost: %s", mesh_name(l), why);
	} else
		l->ms->failed++;
	strlcpy(l->why, why, sizeof(l->why));
	l->backoff_ms = l->backoff_ms == 0 ? MESH_BACKOFF_MS :
	    l->backoff_ms * 2 > MESH_BACKOFF_MAX ? MESH_BACKOFF_MAX :
	    l->backoff_ms * 2;
	l->retry_ms = now + l->backoff_ms;
	mesh_enter_state(l, MESH_DOWN);
	/* WHY may be the mux's own: l->why from here on. */
	mux_free(l->mux);
	l->mux = NULL;
	/* An older relay took our preamble for a leg's first bytes. */
	if (strncmp(l->why, "not a mesh link", 15) == 0) {
		l->nomux_until = now + MESH_NOMUX_MS;
		log_info("%s: the peer does not speak mesh links (%s): a "
		    "connection per leg", mesh_name(l), l->why);
	} else {
		/* The first failure in a row says so; the retries do not. */
		if (!lost && l->backoff_ms == MESH_BACKOFF_MS)
			log_info("%s failed: %s (dialled again while legs "
			    "want it)", mesh_name(l), l->why);
		xtime_tv(l->backoff_ms, &tv);
		evtimer_add(l->redial_ev, &tv);
	}
}

static const struct mux_cb	mesh_cb = {
	mesh_up_cb, mesh_accept_cb, mesh_closed_cb
};

/* Dial L's link (again). */
static void
mesh_dial(struct mesh_link *l)
{
	const struct xaddr	*a = l->addr;
	struct relay		*r = l->ms->r;
	struct bufferevent	*bev;
	struct timeval		 tv;
	int			 fd, up, e;

	mesh_enter_state(l, MESH_CONNECTING);
	evtimer_del(l->redial_ev);
	l->ms->dialled++;
	if ((e = xaddr_connect(a, &fd, &up)) != XADDR_OK) {
		mesh_closed_cb(NULL, xaddr_why(e), l);
		return;
	}
	if (r->conf.sess.keepalive_ms > 0)
		xaddr_dead_after(fd, r->conf.sess.keepalive_ms * 3);
	if ((bev = daemon_connected(&r->d, fd, up, a, TLS_ROLE_RELAY,
	    l->host)) == NULL) {
		mesh_closed_cb(NULL, "out of memory", l);
		return;
	}
	if ((l->mux = mux_new(bev, 1, &mesh_cb, l)) == NULL) {
		bufferevent_free(bev);
		mesh_closed_cb(NULL, "out of memory", l);
		return;
	}
	mux_set_keepalive(l->mux, r->conf.sess.keepalive_ms);
	xtime_tv(r->conf.sess.handshake_ms, &tv);
	evtimer_add(l->redial_ev, &tv);
	log_debug("%s dialling", mesh_name(l));
}

/*
 * The link legs to HOST's relay at A go on, made and dialled if there is
 * none, or dialled again if it is down and its backoff is over; NULL if
 * they go one per connection (the mode, not TCP, or a relay that does
 * not speak links).
 */
static struct mesh_link *
mesh_want(struct mesh *ms, const struct xaddr *a, const char *host)
{
	struct mesh_link	*l;
	long long		 now = xtime_mono_ms();

	if (ms == NULL || host == NULL || ms->mode == MESH_PER_SESSION ||
	    xaddr_type(a) != XADDR_TCP)
		return (NULL);
	if ((l = mesh_find(ms, host, xaddr_str(a))) != NULL) {
		if (l->state == MESH_DOWN && now < l->nomux_until)
			return (NULL);
		l->asked_ms = now;
		if (l->state == MESH_DOWN && now >= l->retry_ms)
			mesh_dial(l);
		return (l);
	}
	l = xcalloc(1, sizeof(*l));
	l->ms = ms;
	l->id = ++ms->next_id;
	l->dialled = 1;
	l->host = xstrdup(host);
	l->dest = xstrdup(xaddr_str(a));
	l->addr = xaddr_dup(a);
	l->asked_ms = now;
	if ((l->redial_ev = evtimer_new(ms->r->d.base, mesh_redial_cb, l)) ==
	    NULL)
		fatalx("evtimer_new");
	TAILQ_INSERT_TAIL(&ms->links, l, entry);
	mesh_dial(l);
	return (l);
}

/*
 * A vMotion heads for HOST, whose relay is at A: have its link up.  Its
 * state ("connecting", "up", "down"), or NULL if legs to HOST go one
 * per connection.
 */
const char *
mesh_prepare(struct mesh *ms, const struct xaddr *a, const char *host)
{
	struct mesh_link	*l;

	if ((l = mesh_want(ms, a, host)) == NULL)
		return (NULL);
	return (mesh_strstate(l->state));
}

/*
 * A new leg to HOST's relay at A as a stream: 0 with *DIAL its socket,
 * or its xsock if CHAN (a session end's leg: a channel, no descriptor);
 * 1 while the link comes up (the daemon's wake says when it is); -1
 * with *WHY while it is down; 2 if legs to HOST go one per connection.
 */
int
mesh_leg(struct mesh *ms, const struct xaddr *a, const char *host, int chan,
    struct sess_dial *dial, const char **why)
{
	static char		 msg[400];
	struct mesh_link	*l;
	struct xsock		*x = NULL;
	int			 e, fd = -1;

	if ((l = mesh_want(ms, a, host)) == NULL)
		return (2);
	switch (l->state) {
	case MESH_UP:
		break;
	case MESH_CONNECTING:
		snprintf(msg, sizeof(msg), "waiting for the mesh link to "
		    "%s's relay", host);
		*why = msg;
		return (1);
	default:
		snprintf(msg, sizeof(msg), "mesh link to %s (%s): %s", host,
		    l->dest, l->why);
		*why = msg;
		return (-1);
	}
	if ((e = chan ? mux_open_chan(l->mux, &x) : mux_open(l->mux, &fd)) !=
	    MUX_OK) {
		snprintf(msg, sizeof(msg), "mesh link to %s (%s): %s%s%s",
		    host, l->dest, mux_strerror(e), e == MUX_E_SYSTEM ?
		    ": " : "", e == MUX_E_SYSTEM ? strerror(errno) : "");
		*why = msg;
		if (e == MUX_E_IDS)
			mesh_close(l, mux_strerror(e));
		return (-1);
	}
	ms->streams++;
	l->idle_ms = xtime_mono_ms();
	dial->fd = fd;
	dial->x = x;
	dial->up = 1;
	dial->bev = NULL;
	dial->tuned = 1;	/* no TCP options */
	*why = l->dest;
	return (0);
}

/* Another relay's link arrived on a mesh leg (fwd.c): take BEV. */
void
mesh_accept(struct mesh *ms, struct bufferevent *bev, const char *peer)
{
	struct mesh_link	*l;

	l = xcalloc(1, sizeof(*l));
	l->ms = ms;
	l->id = ++ms->next_id;
	strlcpy(l->peer, peer, sizeof(l->peer));
	l->state = MESH_UP;
	l->since_ms = l->idle_ms = xtime_mono_ms();
	TAILQ_INSERT_TAIL(&ms->links, l, entry);
	ms->accepted++;
	if ((l->mux = mux_new(bev, 0, &mesh_cb, l)) == NULL) {
		bufferevent_free(bev);
		mesh_close(l, "out of memory");
		return;
	}
	mux_set_keepalive(l->mux, ms->r->conf.sess.keepalive_ms);
	log_info("%s accepted: %s", mesh_name(l), tls_bev_is_tls(bev) ?
	    tls_bev_peer(bev) : "plaintext");
}

/* Links and counters for vrelay status. */
json_t *
mesh_json(const struct mesh *ms)
{
	struct mesh_link	*l;
	json_t			*a, *o;
	long long		 now = xtime_mono_ms();

	a = json_array();
	TAILQ_FOREACH(l, &ms->links, entry) {
		o = l->mux != NULL ? mux_json(l->mux) : json_object();
		json_object_set_new(o, "id", json_integer((json_int_t)l->id));
		json_object_set_new(o, "link", json_string(l->dialled ?
		    "dialled" : "accepted"));
		if (l->dialled) {
			json_object_set_new(o, "host", json_string(l->host));
			json_object_set_new(o, "dest", json_string(l->dest));
		} else
			json_object_set_new(o, "peer", json_string(l->peer));
		json_object_set_new(o, "state",
		    json_string(mesh_strstate(l->state)));
		json_object_set_new(o, "for_ms",
		    json_integer(now - l->since_ms));
		if (l->state == MESH_DOWN)
			json_object_set_new(o, "why", json_string(l->why));
		json_array_append_new(a, o);
	}
	return (json_pack("{s:s, s:o, s:I, s:I, s:I, s:I, s:I, s:I}",
	    "mode", ms->mode == MESH_SHARED ? "shared" : "per-session",
	    "links", a,
	    "dialled", (json_int_t)ms->dialled,
	    "redials", (json_int_t)ms->redials,
	    "accepted", (json_int_t)ms->accepted,
	    "failed", (json_int_t)ms->failed,
	    "lost", (json_int_t)ms->lost,
	    "streams", (json_int_t)ms->streams));
}
