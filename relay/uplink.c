/*
 * uplink.c -- the relay's end of the push channel (docs/push.md): one
 * connection to vlocator that registers this host and its mesh
 * address (HELLO), then applies each TARGET the locator pushes and
 * answers ACK or NACK.
 *
 * Design.  An explicit state machine (enum uplink_state in relay.h):
 *
 *	BACKOFF --timer--> CONNECTING --connected, HELLO--> HELLO
 *	HELLO --WELCOME--> UP;  any state --failure--> BACKOFF
 *
 * Every failure (connect refused, EOF, a malformed or unexpected
 * line, an ERROR from the locator, silence for three keepalive
 * periods, no WELCOME within --handshake-timeout) goes through
 * uplink_lost(): close, record why, back off 100 ms doubling to 5 s
 * with +-25 % jitter.  The relay keeps its last good target
 * throughout: losing the locator never moves or clears it.
 *
 * What each message does, and in which states it is allowed, is one
 * table (uplink_handlers).  A TARGET with the epoch and content of the
 * last one applied from the locator (a re-push after a reconnect) is
 * ACKed without change; anything target_set() refuses is NACKed with
 * its message; the rest is applied, ACKed, and announced exactly as a
 * set-target on the status socket is (control_target_changed()).
 *
 * Closing: what is queued (an ERROR, say) is flushed, the write side
 * shut, and the rest read and discarded until the locator closes too
 * or UPLINK_LINGER_MS passes, so our last line is not destroyed by a
 * reset for data we never read.  Lifetimes: a closed connection goes
 * on a dead list and a zero-delay event frees it, never inside its own
 * callback.
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

#include "ctl.h"
#include "log.h"
#include "push.h"
#include "relay.h"
#include "xaddr.h"
#include "xmalloc.h"
#include "xtime.h"

#define UPLINK_BACKOFF_MIN_MS	100
#define UPLINK_BACKOFF_MAX_MS	5000
#define UPLINK_STABLE_MS	5000	/* up this long: back off anew */
#define UPLINK_OUT_MAX		(256 * 1024)	/* unread by the locator */
#define UPLINK_READ_HIGH	(4 * PUSH_LINE_MAX)
#define UPLINK_ERR_MAX		300
#define UPLINK_LINGER_MS	1000	/* a closing connection's last say */

struct uplink_conn {
	struct uplink			*u;
	struct bufferevent		*bev;
	struct event			*linger;	/* absolute end */
	TAILQ_ENTRY(uplink_conn)	 entry;
};
TAILQ_HEAD(uplink_conns, uplink_conn);

struct uplink {
	struct relay		*r;
	struct xaddr		*addr;
	char			 mesh[PUSH_ADDR_MAX + 1];
	enum uplink_state	 state;
	long long		 since_ms;	/* entered state */
	struct uplink_conn	*conn;		/* NULL in BACKOFF */
	struct uplink_conns	 closing;	/* flushing their last line */
	struct uplink_conns	 dead;
	struct event		*retry_ev;	/* BACKOFF -> CONNECTING */
	struct event		*deadline_ev;	/* connect + WELCOME */
	struct event		*ka_ev;		/* keepalive tick */
	struct event		*reap_ev;
	long long		 backoff_ms;
	long long		 up_ms;		/* WELCOME came, monotonic */
	int			 sent;		/* wrote since the last tick */
	int			 known;		/* WELCOME's "known" */
	struct xaddr		*vmomi;		/* WELCOME's "vmomi" */
	int			 have_applied;
	struct push_msg		 applied;	/* last TARGET applied */
	uint64_t		 connects;
	uint64_t		 pushes;
	uint64_t		 acks;
	uint64_t		 nacks;
	uint64_t		 hints;
	uint64_t		 epoch;		/* last TARGET acknowledged */
	char			 last_error[UPLINK_ERR_MAX];
};

static void	uplink_on_welcome(struct uplink *, const struct push_msg *);
static void	uplink_on_target(struct uplink *, const struct push_msg *);
static void	uplink_on_hint(struct uplink *, const struct push_msg *);
static void	uplink_on_error(struct uplink *, const struct push_msg *);
static void	uplink_on_ping(struct uplink *, const struct push_msg *);
static void	uplink_on_pong(struct uplink *, const struct push_msg *);

#define ST(s)	(1 << (s))

/* What the relay does with each message, and in which states. */
static const struct {
	int	states;
	void	(*fn)(struct uplink *, const struct push_msg *);
} uplink_handlers[PUSH_PONG + 1] = {
	[PUSH_WELCOME] = { ST(UPLINK_HELLO), uplink_on_welcome },
	[PUSH_TARGET] = { ST(UPLINK_UP), uplink_on_target },
	[PUSH_HINT] = { ST(UPLINK_UP), uplink_on_hint },
	[PUSH_ERROR] = { ST(UPLINK_HELLO) | ST(UPLINK_UP), uplink_on_error },
	[PUSH_PING] = { ST(UPLINK_HELLO) | ST(UPLINK_UP), uplink_on_ping },
	[PUSH_PONG] = { ST(UPLINK_HELLO) | ST(UPLINK_UP), uplink_on_pong },
};

static void	uplink_lost(struct uplink *, const char *);

/* Name of a state, for logs and status. */
const char *
uplink_strstate(enum uplink_state s)
{
	static const char *const names[] = {
		[UPLINK_BACKOFF] = "backoff",
		[UPLINK_CONNECTING] = "connecting",
		[UPLINK_HELLO] = "hello",
		[UPLINK_UP] = "up",
	};

	if ((int)s <= 0 || (size_t)s >= sizeof(names) / sizeof(names[0]))
		return ("?");
	return (names[s]);
}

/* The one place the state changes: log it and tell the watchers. */
static void
uplink_enter_state(struct uplink *u, enum uplink_state s, const char *why)
{
	struct relay		*r = u->r;
	enum uplink_state	 old = u->state;
	json_t			*ev;

	if (s == old)
		return;
	u->state = s;
	u->since_ms = xtime_mono_ms();
	if (s == UPLINK_UP || old == UPLINK_UP)
		log_info("locator %s state %s -> %s", xaddr_str(u->addr),
		    uplink_strstate(old), uplink_strstate(s));
	else
		log_debug("locator %s state %s -> %s", xaddr_str(u->addr),
		    uplink_strstate(old), uplink_strstate(s));
	if (r->d.ctl == NULL || ctl_nwatchers(r->d.ctl) == 0)
		return;
	ev = json_pack("{s:s, s:s, s:s, s:s}", "event", "uplink",
	    "locator", xaddr_str(u->addr), "state", uplink_strstate(s),
	    "from", uplink_strstate(old));
	if (why != NULL)
		json_object_set_new(ev, "reason", json_string(why));
	ctl_broadcast(r->d.ctl, ev);
	json_decref(ev);
}

/* Free closed connections, outside their callbacks. */
static void
uplink_reap_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct uplink		*u = arg;
	struct uplink_conn	*c;

	while ((c = TAILQ_FIRST(&u->dead)) != NULL) {
		TAILQ_REMOVE(&u->dead, c, entry);
		bufferevent_free(c->bev);
		if (c->linger != NULL)
			event_free(c->linger);
		free(c);
	}
}

/* A closing connection is done: free it from the reaper. */
static void
uplink_conn_dead(struct uplink_conn *c)
{
	struct uplink	*u = c->u;
	struct timeval	 tv = { 0, 0 };

	TAILQ_REMOVE(&u->closing, c, entry);
	if (c->linger != NULL)
		evtimer_del(c->linger);
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
	TAILQ_INSERT_TAIL(&u->dead, c, entry);
	evtimer_add(u->reap_ev, &tv);
}

/* Closing: discard what still arrives. */
static void
uplink_linger_readcb(struct bufferevent *bev, void *arg)
{
	struct evbuffer	*in = bufferevent_get_input(bev);

	evbuffer_drain(in, evbuffer_get_length(in));
}

/* Closing: all sent, so shut our side. */
static void
uplink_linger_writecb(struct bufferevent *bev, void *arg)
{
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		(void)shutdown(bufferevent_getfd(bev), SHUT_WR);
}

/* Closing: the locator closed too. */
static void
uplink_linger_eventcb(struct bufferevent *bev, short what, void *arg)
{
	uplink_conn_dead(arg);
}

/* Closing took UPLINK_LINGER_MS, busy or not: drop it. */
static void
uplink_linger_cb(evutil_socket_t fd, short ev, void *arg)
{
	uplink_conn_dead(arg);
}

/* Close the connection, letting a connected one flush and linger. */
static void
uplink_close(struct uplink *u)
{
	struct uplink_conn	*c = u->conn;
	struct timeval		 tv;

	evtimer_del(u->deadline_ev);
	event_del(u->ka_ev);
	if (c == NULL)
		return;
	u->conn = NULL;
	TAILQ_INSERT_TAIL(&u->closing, c, entry);
	if (u->state != UPLINK_HELLO && u->state != UPLINK_UP) {
		uplink_conn_dead(c);	/* never connected */
		return;
	}
	/* An absolute limit: a locator that keeps writing cannot hold it. */
	if ((c->linger = evtimer_new(u->r->d.base, uplink_linger_cb, c)) ==
	    NULL)
		fatalx("evtimer_new");
	xtime_tv(UPLINK_LINGER_MS, &tv);
	evtimer_add(c->linger, &tv);
	bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
	bufferevent_setcb(c->bev, uplink_linger_readcb, uplink_linger_writecb,
	    uplink_linger_eventcb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	uplink_linger_writecb(c->bev, c);
}

/* Wait before the next connect: 100 ms doubling to 5 s, +-25 %. */
static void
uplink_schedule(struct uplink *u, const char *why)
{
	struct timeval	tv;

	xtime_tv(xtime_backoff(&u->backoff_ms, UPLINK_BACKOFF_MIN_MS,
	    UPLINK_BACKOFF_MAX_MS), &tv);
	evtimer_add(u->retry_ev, &tv);
	uplink_enter_state(u, UPLINK_BACKOFF, why);
}

/*
 * The connection failed or must go: close it, say why (once per
 * distinct reason while the locator stays away), back off.
 */
static void
uplink_lost(struct uplink *u, const char *why)
{
	/*
	 * A connection that lasted starts the backoff over; one the
	 * locator drops right after WELCOME does not, or a locator that
	 * keeps doing so would have us reconnect ten times a second.
	 */
	if (u->state == UPLINK_UP &&
	    xtime_mono_ms() - u->up_ms >= UPLINK_STABLE_MS)
		u->backoff_ms = UPLINK_BACKOFF_MIN_MS;
	if (u->state == UPLINK_HELLO || u->state == UPLINK_UP ||
	    strcmp(why, u->last_error) != 0)
		log_warnx("locator %s: %s; reconnecting", xaddr_str(u->addr),
		    why);
	else
		log_debug("locator %s: %s; reconnecting", xaddr_str(u->addr),
		    why);
	strlcpy(u->last_error, why, sizeof(u->last_error));
	uplink_close(u);
	uplink_schedule(u, why);
}

/* Queue one message; 0, or -1 if the connection was dropped. */
static int
uplink_send(struct uplink *u, const struct push_msg *m)
{
	struct evbuffer	*out;
	int		 rv;

	if (u->conn == NULL)
		return (-1);
	out = bufferevent_get_output(u->conn->bev);
	if (evbuffer_get_length(out) > UPLINK_OUT_MAX) {
		uplink_lost(u, "the locator does not read what it is sent");
		return (-1);
	}
	if ((rv = push_write(out, m)) != PUSH_OK) {
		/* Only our own bad data gets here: a bug, not the peer's. */
		log_warnx("locator %s: cannot send %s: %s", xaddr_str(u->addr),
		    push_type_name(m->type), push_strerror(rv));
		return (0);
	}
	u->sent = 1;
	return (0);
}

/* A message with only a type, or an epoch and a text. */
static int
uplink_reply(struct uplink *u, enum push_type type, uint64_t epoch,
    const char *text)
{
	struct push_msg	m;

	memset(&m, 0, sizeof(m));
	m.type = type;
	m.epoch = epoch;
	if (text != NULL)
		strlcpy(m.text, text, sizeof(m.text));
	return (uplink_send(u, &m));
}

/*
 * NACK EPOCH for WHY, saying which epoch we hold: a locator below it
 * (our target moved by set-target) then publishes above it.
 */
static int
uplink_nack(struct uplink *u, uint64_t epoch, const char *why)
{
	struct push_msg	m;

	memset(&m, 0, sizeof(m));
	m.type = PUSH_NACK;
	m.epoch = epoch;
	m.current = target_epoch(u->r->target);
	strlcpy(m.text, why, sizeof(m.text));
	return (uplink_send(u, &m));
}

/* The locator sent something we cannot take: tell it, then reconnect. */
static void
uplink_bad(struct uplink *u, const char *what)
{
	char	why[UPLINK_ERR_MAX];

	(void)snprintf(why, sizeof(why), "bad push: %s", what);
	/* A failed send has already dropped the connection and backed off. */
	if (uplink_reply(u, PUSH_ERROR, 0, why) == 0)
		uplink_lost(u, why);
}

/*
 * WELCOME's "vmomi": where the locator's vmomi agent listens (numeric,
 * like every pushed address: no DNS on the loop).  Forwards parked for
 * want of it go now, and those to an address it no longer names close.
 */
static void
uplink_set_vmomi(struct uplink *u, const char *addr)
{
	struct xaddr	*a = NULL;
	int		 e;

	if (addr[0] != '\0' && (e = xaddr_parse_numeric(addr, &a)) !=
	    XADDR_OK) {
		log_warnx("locator %s: welcome: \"vmomi\" %s: %s; ignored",
		    xaddr_str(u->addr), addr, xaddr_strerror(e));
		a = NULL;
	}
	if (a == NULL && u->vmomi == NULL)
		return;
	if (a != NULL && u->vmomi != NULL && xaddr_equal(a, u->vmomi)) {
		xaddr_free(a);
		return;
	}
	log_info("locator %s: vmomi agent %s", xaddr_str(u->addr),
	    a != NULL ? xaddr_str(a) : "none");
	xaddr_free(u->vmomi);
	u->vmomi = a;
	fwd_retarget(u->r->fwd);
}

/* WELCOME: registered; targets flow from now on. */
static void
uplink_on_welcome(struct uplink *u, const struct push_msg *m)
{
	u->known = m->known;
	uplink_set_vmomi(u, m->vmomi);
	u->up_ms = xtime_mono_ms();
	evtimer_del(u->deadline_ev);
	if (!m->known)
		log_info("locator %s: host %s is not known to vSphere yet",
		    xaddr_str(u->addr), u->r->conf.host);
	uplink_enter_state(u, UPLINK_UP, NULL);
}

/* The same TARGET as the one last applied, with the target unmoved. */
static int
uplink_same_target(struct uplink *u, const struct push_msg *m)
{
	const struct push_msg	*a = &u->applied;

	return (u->have_applied && m->epoch == a->epoch &&
	    target_epoch(u->r->target) == m->epoch &&
	    strcmp(m->host, a->host) == 0 && strcmp(m->relay, a->relay) == 0 &&
	    strcmp(m->appliance, a->appliance) == 0);
}

/*
 * TARGET: the object target_set() takes.  The pushed relay becomes the
 * one peer.  Without one (the locator has not heard from that host's
 * relay, e.g. just after it restarted) the peers stay as they are: an
 * address this relay already knows for that host is better than none,
 * and with none routing says "no mesh address".  Without an appliance
 * address the relay keeps its configured --appliance.
 */
static json_t *
uplink_target_json(const struct push_msg *m)
{
	json_t	*o;

	o = json_pack("{s:I, s:s}", "epoch", (json_int_t)m->epoch,
	    "appliance_host", m->host);
	if (m->relay[0] != '\0')
		json_object_set_new(o, "peers", json_pack("{s:s}", m->host,
		    m->relay));
	if (m->appliance[0] != '\0')
		json_object_set_new(o, "appliance", json_string(m->appliance));
	return (o);
}

/* TARGET: apply, ACK or NACK. */
static void
uplink_on_target(struct uplink *u, const struct push_msg *m)
{
	struct relay	*r = u->r;
	json_t		*o;
	char		 err[UPLINK_ERR_MAX];

	u->pushes++;
	if (uplink_same_target(u, m)) {
		log_debug("locator %s: target epoch=%llu again, unchanged",
		    xaddr_str(u->addr), (unsigned long long)m->epoch);
		u->acks++;
		(void)uplink_reply(u, PUSH_ACK, m->epoch, NULL);
		return;
	}
	o = uplink_target_json(m);
	if (o == NULL || target_set(r->target, o, 1, err, sizeof(err)) != 0) {
		if (o == NULL)
			strlcpy(err, "out of memory", sizeof(err));
		json_decref(o);
		log_warnx("locator %s: target epoch=%llu refused: %s",
		    xaddr_str(u->addr), (unsigned long long)m->epoch, err);
		u->nacks++;
		(void)uplink_nack(u, m->epoch, err);
		return;
	}
	json_decref(o);
	u->applied = *m;
	u->have_applied = 1;
	u->epoch = m->epoch;
	u->acks++;
	log_debug("locator %s: target epoch=%llu appliance_host=%s relay=%s "
	    "appliance=%s", xaddr_str(u->addr), (unsigned long long)m->epoch,
	    m->host, m->relay[0] != '\0' ? m->relay : "-",
	    m->appliance[0] != '\0' ? m->appliance : "-");
	(void)uplink_reply(u, PUSH_ACK, m->epoch, NULL);
	control_target_changed(r, "locator");
}

/* What a migration hint's vSphere event means for routing (target.c). */
enum uplink_hint_kind {
	UPLINK_HINT_ADVISORY = 0,	/* pre-warm only */
	UPLINK_HINT_MOVING,		/* the move is under way */
	UPLINK_HINT_MOVED,		/* it is done: sees a hint there */
	UPLINK_HINT_FAILED,		/* it will not happen */
};

static const struct {
	const char		*event;
	enum uplink_hint_kind	 kind;
} uplink_hints[] = {
	{ "VmBeingHotMigratedEvent",	UPLINK_HINT_MOVING },
	{ "VmMigratedEvent",		UPLINK_HINT_MOVED },
	{ "DrsVmMigratedEvent",		UPLINK_HINT_MOVED },
	{ "VmRelocatedEvent",		UPLINK_HINT_MOVED },
	{ "VmFailedMigrateEvent",	UPLINK_HINT_FAILED },
};

/* The kind of hint vSphere event EVENT is. */
static enum uplink_hint_kind
uplink_hint_kind(const char *event)
{
	size_t	i;

	for (i = 0; i < sizeof(uplink_hints) / sizeof(uplink_hints[0]); i++)
		if (strcmp(event, uplink_hints[i].event) == 0)
			return (uplink_hints[i].kind);
	return (UPLINK_HINT_ADVISORY);
}

/*
 * HINT: the appliance is moving (or has moved, or failed to move) to
 * m->host.  Routing follows it (target.c), and one mesh connection to
 * its relay is pre-warmed per leg that will need one; then log and
 * broadcast.
 */
static void
uplink_on_hint(struct uplink *u, const struct push_msg *m)
{
	struct relay		*r = u->r;
	enum uplink_hint_kind	 kind = uplink_hint_kind(m->text);
	const struct xaddr	*a;
	const char		*why, *host, *link = NULL;
	json_t			*ev;
	char			 err[300], *before;
	size_t			 warmed = 0;

	u->hints++;
	a = target_route(r->target, &why, &host);
	before = xstrdup(a != NULL ? xaddr_str(a) : "");
	if (kind == UPLINK_HINT_FAILED) {
		if (target_hint_failed(r->target))
			warm_cancel(r->warm);
	} else if (kind == UPLINK_HINT_MOVED)
		(void)target_hint_done(r->target, m->host);
	else if (kind == UPLINK_HINT_MOVING &&
	    !target_hint_late(r->target, m->host)) {
		if (target_hint(r->target, m->host, m->relay, err,
		    sizeof(err)) != 0)
			log_warnx("locator %s: hint: %s", xaddr_str(u->addr),
			    err);
		/* One per leg not already there (a repeated hint). */
		if ((a = target_hint_mesh(r->target)) != NULL)
			warmed = warm_hint(r->warm, m->host, a,
			    sess_ctx_count_elsewhere(r->d.sessions,
			    xaddr_str(a)) + fwd_agents_elsewhere(r->fwd,
			    xaddr_str(a)), &link);
	}
	log_info("locator %s: hint event=\"%s\" host=%s relay=%s "
	    "prewarmed=%zu link=%s", xaddr_str(u->addr), m->text, m->host,
	    m->relay[0] != '\0' ? m->relay : "-", warmed,
	    link != NULL ? link : "-");
	/* A finished (or failed) move moves every route, as a push does. */
	a = target_route(r->target, &why, &host);
	if (strcmp(before, a != NULL ? xaddr_str(a) : "") != 0)
		control_target_changed(r, "hint");
	free(before);
	if (r->d.ctl == NULL || ctl_nwatchers(r->d.ctl) == 0)
		return;
	ev = json_pack("{s:s, s:s, s:s, s:o, s:I, s:o}", "event", "hint",
	    "hint", m->text, "host", m->host, "relay", m->relay[0] != '\0' ?
	    json_string(m->relay) : json_null(), "prewarmed",
	    (json_int_t)warmed, "link", link != NULL ? json_string(link) :
	    json_null());
	ctl_broadcast(r->d.ctl, ev);
	json_decref(ev);
}

/* ERROR: the locator is closing; say why and come back later. */
static void
uplink_on_error(struct uplink *u, const struct push_msg *m)
{
	char	why[UPLINK_ERR_MAX];

	(void)snprintf(why, sizeof(why), "error from the locator: %s",
	    m->text);
	uplink_lost(u, why);
}

/* PING: answer at once. */
static void
uplink_on_ping(struct uplink *u, const struct push_msg *m)
{
	(void)uplink_reply(u, PUSH_PONG, 0, NULL);
}

/* PONG: its arrival already fed the read timeout. */
static void
uplink_on_pong(struct uplink *u, const struct push_msg *m)
{
}

/* Lines from the locator, one message each, through the table. */
static void
uplink_readcb(struct bufferevent *bev, void *arg)
{
	struct uplink		*u = arg;
	struct uplink_conn	*c = u->conn;
	struct push_msg		 m;
	char			 err[UPLINK_ERR_MAX - 16];
	int			 rv;

	while (u->conn == c && c != NULL) {
		rv = push_read(bufferevent_get_input(bev), &m, err,
		    sizeof(err));
		if (rv == PUSH_E_INCOMPLETE)
			return;
		if (rv != PUSH_OK) {
			uplink_bad(u, err);
			return;
		}
		if (uplink_handlers[m.type].fn == NULL) {
			(void)snprintf(err, sizeof(err), "unexpected %s from "
			    "the locator", push_type_name(m.type));
			uplink_bad(u, err);
			return;
		}
		if ((uplink_handlers[m.type].states & ST(u->state)) == 0) {
			(void)snprintf(err, sizeof(err), "%s before welcome",
			    push_type_name(m.type));
			uplink_bad(u, err);
			return;
		}
		uplink_handlers[m.type].fn(u, &m);
	}
}

/* Connected: say who we are; EOF, errors and silence: reconnect. */
static void
uplink_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct uplink	*u = arg;
	struct push_msg	 m;
	struct timeval	 tv;
	long long	 ka = u->r->conf.sess.keepalive_ms;
	char		 why[UPLINK_ERR_MAX];
	const char	*tlswhy = tls_bev_error(bev);
	int		 err = EVUTIL_SOCKET_ERROR();

	if (what & BEV_EVENT_CONNECTED) {
		u->connects++;
		if (ka > 0) {
			xaddr_dead_after(bufferevent_getfd(bev), ka * 3);
			xtime_tv(ka * 3, &tv);
			bufferevent_set_timeouts(bev, &tv, NULL);
			xtime_tv(ka, &tv);
			event_add(u->ka_ev, &tv);
		}
		memset(&m, 0, sizeof(m));
		m.type = PUSH_HELLO;
		m.version = PUSH_VERSION;
		strlcpy(m.host, u->r->conf.host, sizeof(m.host));
		strlcpy(m.mesh, u->mesh, sizeof(m.mesh));
		m.epoch = target_epoch(u->r->target);
		uplink_enter_state(u, UPLINK_HELLO, NULL);
		(void)uplink_send(u, &m);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		(void)snprintf(why, sizeof(why), "silent for 3 keepalive "
		    "periods (%lld ms)", ka * 3);
	else if (what & BEV_EVENT_EOF)
		(void)snprintf(why, sizeof(why), "closed by the locator");
	else
		(void)snprintf(why, sizeof(why), "%s: %s",
		    u->state == UPLINK_CONNECTING ? "connect failed" : "error",
		    tlswhy != NULL ? tlswhy : err != 0 ? strerror(err) :
		    "unknown error");
	uplink_lost(u, why);
}

/* No WELCOME (or no connection) within the handshake timeout. */
static void
uplink_deadline_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct uplink	*u = arg;

	uplink_lost(u, u->state == UPLINK_CONNECTING ? "connect timed out" :
	    "no welcome within the handshake timeout");
}

/* Keepalive: a PING when we have sent nothing for a whole period. */
static void
uplink_ka_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct uplink	*u = arg;

	if (u->conn == NULL || u->state < UPLINK_HELLO)
		return;
	if (!u->sent)
		(void)uplink_reply(u, PUSH_PING, 0, NULL);
	u->sent = 0;
}

/* Backoff over: open a new connection. */
static void
uplink_retry_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct uplink	*u = arg;
	struct timeval	 tv;
	char		 why[UPLINK_ERR_MAX];
	int		 sfd, e;

	if (u->conn != NULL)
		return;
	if ((e = xaddr_connect(u->addr, &sfd, NULL)) != XADDR_OK) {
		(void)snprintf(why, sizeof(why), "connect failed: %s",
		    xaddr_why(e));
		uplink_lost(u, why);
		return;
	}
	u->conn = xcalloc(1, sizeof(*u->conn));
	u->conn->u = u;
	/* Pushes move every session: only the locator's certificate. */
	u->conn->bev = daemon_connected(&u->r->d, sfd, 0, u->addr,
	    TLS_ROLE_LOCATOR, NULL);
	if (u->conn->bev == NULL)
		fatalx("bufferevent for the locator connection");
	bufferevent_setcb(u->conn->bev, uplink_readcb, NULL, uplink_eventcb,
	    u);
	bufferevent_setwatermark(u->conn->bev, EV_READ, 0, UPLINK_READ_HIGH);
	bufferevent_enable(u->conn->bev, EV_READ | EV_WRITE);
	u->sent = 0;
	xtime_tv(u->r->conf.sess.handshake_ms, &tv);
	evtimer_add(u->deadline_ev, &tv);
	uplink_enter_state(u, UPLINK_CONNECTING, NULL);
}

/* Keep a connection to the locator at ADDR; MESH is what to register. */
struct uplink *
uplink_new(struct relay *r, const char *addr, const char *mesh)
{
	struct uplink	*u;
	struct evbuffer	*b;
	struct push_msg	 m;
	struct timeval	 tv = { 0, 0 };
	int		 e;

	u = xcalloc(1, sizeof(*u));
	u->r = r;
	TAILQ_INIT(&u->closing);
	TAILQ_INIT(&u->dead);
	if ((e = xaddr_parse(addr, &u->addr)) != XADDR_OK)
		fatalx("--locator \"%s\": %s", addr, xaddr_strerror(e));
	if (xaddr_type(u->addr) == XADDR_VSOCK)
		fatalx("--locator \"%s\": expected tcp://HOST:PORT or "
		    "unix:PATH", addr);
	if (strlcpy(u->mesh, mesh, sizeof(u->mesh)) >= sizeof(u->mesh))
		fatalx("mesh address \"%s\": longer than %d bytes", mesh,
		    PUSH_ADDR_MAX);
	/* Refuse at startup what HELLO could not carry later. */
	memset(&m, 0, sizeof(m));
	m.type = PUSH_HELLO;
	m.version = PUSH_VERSION;
	strlcpy(m.host, r->conf.host, sizeof(m.host));
	strlcpy(m.mesh, u->mesh, sizeof(m.mesh));
	if ((b = evbuffer_new()) == NULL)
		fatalx("evbuffer_new");
	if ((e = push_write(b, &m)) != PUSH_OK)
		fatalx("mesh address \"%s\": not an address the locator "
		    "can take (%s)", mesh, push_strerror(e));
	evbuffer_free(b);

	u->retry_ev = evtimer_new(r->d.base, uplink_retry_cb, u);
	u->deadline_ev = evtimer_new(r->d.base, uplink_deadline_cb, u);
	u->ka_ev = event_new(r->d.base, -1, EV_PERSIST, uplink_ka_cb, u);
	u->reap_ev = evtimer_new(r->d.base, uplink_reap_cb, u);
	if (u->retry_ev == NULL || u->deadline_ev == NULL ||
	    u->ka_ev == NULL || u->reap_ev == NULL)
		fatalx("evtimer_new");
	u->state = UPLINK_BACKOFF;
	u->since_ms = xtime_mono_ms();
	u->backoff_ms = UPLINK_BACKOFF_MIN_MS;
	evtimer_add(u->retry_ev, &tv);		/* first try at once */
	log_info("locator %s host=%s mesh=%s", xaddr_str(u->addr),
	    r->conf.host, u->mesh[0] != '\0' ? u->mesh : "-");
	return (u);
}

/* Close the connection and free; NULL is fine. */
void
uplink_free(struct uplink *u)
{
	struct uplink_conn	*c;

	if (u == NULL)
		return;
	uplink_close(u);
	while ((c = TAILQ_FIRST(&u->closing)) != NULL) {
		/* The loop is over: one non-blocking try at what is queued. */
		tls_bev_write_now(c->bev);
		uplink_conn_dead(c);
	}
	uplink_reap_cb(-1, 0, u);
	event_free(u->retry_ev);
	event_free(u->deadline_ev);
	event_free(u->ka_ev);
	event_free(u->reap_ev);
	xaddr_free(u->addr);
	xaddr_free(u->vmomi);
	free(u);
}

/* The vmomi agent the locator's last WELCOME named, or NULL. */
const struct xaddr *
uplink_vmomi(const struct uplink *u)
{
	return (u != NULL ? u->vmomi : NULL);
}

/* The "uplink" object of vrelay status. */
json_t *
uplink_json(const struct uplink *u)
{
	return (json_pack("{s:s, s:s, s:s, s:I, s:b, s:I, s:I, s:I, s:I, "
	    "s:I, s:I, s:o, s:o}",
	    "address", xaddr_str(u->addr),
	    "mesh", u->mesh,
	    "state", uplink_strstate(u->state),
	    "since_ms", (json_int_t)(xtime_mono_ms() - u->since_ms),
	    "known", u->known,
	    "connects", (json_int_t)u->connects,
	    "pushes", (json_int_t)u->pushes,
	    "acks", (json_int_t)u->acks,
	    "nacks", (json_int_t)u->nacks,
	    "hints", (json_int_t)u->hints,
	    "epoch", (json_int_t)u->epoch,
	    "last_error", u->last_error[0] != '\0' ?
	    json_string(u->last_error) : json_null(),
	    "vmomi", u->vmomi != NULL ? json_string(xaddr_str(u->vmomi)) :
	    json_null()));
}
