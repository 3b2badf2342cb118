/*
 * registry.c -- the relays, as the locator sees them (docs/push.md).
 *
 * A connection starts anonymous and must say HELLO within the
 * handshake time; HELLO binds it to the record of its host, which
 * outlives the connection so "vlocator relays" can show a relay that
 * went away and what it last acknowledged.  A second connection for a
 * host replaces the first (a relay that restarted before its old
 * connection timed out).  The locator pushes the published target to
 * every relay that has not acknowledged its epoch; an ACK records the
 * lag from publish to acknowledgement.  A malformed message, a silent
 * peer or a refused HELLO ends that one connection with a reason.
 */
#include <sys/queue.h>
#include <sys/socket.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "admit.h"
#include "locator.h"
#include "log.h"
#include "push.h"
#include "xaddr.h"
#include "xmalloc.h"
#include "xtime.h"

#define REGISTRY_HELLO_MS	5000	/* HELLO within this */
#define REGISTRY_FLUSH_MS	1000	/* last words before close */
#define REGISTRY_OUT_MAX	(256 * 1024)	/* queued to one relay */
#define REGISTRY_CONNS_MAX	8192
#define REGISTRY_PENDING_SOURCE	16	/* before HELLO, per address */
#define REGISTRY_RAISE_MS	1000	/* NACK-driven republishes */
#define REGISTRY_REPLACE_MS	10000	/* one replacement per host */

enum registry_state {
	REGISTRY_HELLO = 0,	/* waiting for HELLO */
	REGISTRY_READY,		/* bound to a relay record */
	REGISTRY_CLOSING,	/* flushing its last message */
	REGISTRY_DEAD,		/* waiting for the reaper */
};

struct registry_relay;

struct registry_conn {
	struct registry		*reg;
	uint64_t		 id;
	enum registry_state	 state;
	struct bufferevent	*bev;
	struct event		*timer;	/* hello deadline, keepalive, flush */
	struct registry_relay	*relay;	/* once READY */
	char			 peer[XADDR_PEER_STRLEN];
	char			 src[ADMIT_SOURCE_MAX];
	int			 pending;	/* no HELLO yet */
	long long		 rx_ms;	/* last byte in */
	long long		 tx_ms;	/* last message out */
	TAILQ_ENTRY(registry_conn) entry;
};
TAILQ_HEAD(registry_conns, registry_conn);

struct registry_relay {
	char			 host[PUSH_HOST_MAX + 1];
	char			 mesh[PUSH_ADDR_MAX + 1];
	char			 peer[XADDR_PEER_STRLEN];
	struct registry_conn	*conn;	/* NULL while disconnected */
	int			 known;	/* vSphere has this host */
	uint64_t		 pushed;	/* epoch last sent */
	uint64_t		 answered;	/* epoch last ACKed or NACKed */
	uint64_t		 acked;		/* epoch last acknowledged */
	long long		 replaced_ms;	/* a HELLO took over conn */
	long long		 lag_ms;	/* publish -> ACK, last time */
	long long		 since_ms;	/* monotonic: (dis)connected */
	uint64_t		 connects;
	uint64_t		 nacks;
	char			 error[PUSH_TEXT_MAX + 1];	/* last NACK */
	TAILQ_ENTRY(registry_relay) entry;
};
TAILQ_HEAD(registry_relays, registry_relay);

struct registry {
	struct locator		*l;
	struct evconnlistener	*listener;
	struct xaddr		*addr;
	struct registry_conns	 conns;
	struct registry_conns	 dead;
	struct registry_relays	 relays;
	struct event		*reap;
	struct event		*raise_ev;	/* a republish held back */
	long long		 raised_ms;	/* a NACK last republished */
	uint64_t		 raise_floor;	/* held back: above this */
	struct admit		*pending;	/* connections before HELLO */
	size_t			 nconns;
	size_t			 nrelays;
	uint64_t		 next_id;
	uint64_t		 pushes;
	uint64_t		 acks;
	uint64_t		 nacks;
	uint64_t		 refused;
};

static void	registry_readcb(struct bufferevent *, void *);
static void	registry_writecb(struct bufferevent *, void *);
static void	registry_eventcb(struct bufferevent *, short, void *);
static void	registry_accept_cb(struct evconnlistener *, evutil_socket_t,
		    struct sockaddr *, int, void *);
static void	registry_timer_cb(evutil_socket_t, short, void *);
static void	registry_close(struct registry_conn *, const char *, int);
static void	registry_helloed(struct registry_conn *);

static const char *const registry_states[] = {
	"hello", "ready", "closing", "dead"
};

/* A connection state's name. */
static const char *
registry_strstate(enum registry_state s)
{
	return ((size_t)s < sizeof(registry_states) /
	    sizeof(registry_states[0]) ? registry_states[s] : "?");
}

/* Move C to state S, logging old -> new. */
static void
registry_enter_state(struct registry_conn *c, enum registry_state s)
{
	log_debug("relay %s: %s -> %s", c->relay != NULL ? c->relay->host :
	    c->peer, registry_strstate(c->state), registry_strstate(s));
	c->state = s;
}

/* Free connections closed in callbacks, outside them. */
static void
registry_reap_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct registry		*reg = arg;
	struct registry_conn	*c;

	while ((c = TAILQ_FIRST(&reg->dead)) != NULL) {
		TAILQ_REMOVE(&reg->dead, c, entry);
		if (c->bev != NULL)
			bufferevent_free(c->bev);
		event_free(c->timer);
		free(c);
	}
}

/* (Re)arm C's timer for MS milliseconds. */
static void
registry_arm(struct registry_conn *c, long long ms)
{
	struct timeval	tv;

	xtime_tv(ms, &tv);
	evtimer_add(c->timer, &tv);
}

/*
 * Queue message M to C.  publish.c only publishes values the codec
 * takes, so a refusal here is a broken invariant, but it costs this
 * one connection, not the locator.
 */
static void
registry_send(struct registry_conn *c, const struct push_msg *m)
{
	struct evbuffer	*out = bufferevent_get_output(c->bev);
	int		 rv;

	if (c->state != REGISTRY_CLOSING &&
	    evbuffer_get_length(out) > REGISTRY_OUT_MAX) {
		/* Not reading: pushes (or PONGs) would pile up for good. */
		registry_close(c, "relay does not read its pushes", 0);
		return;
	}
	if ((rv = push_write(out, m)) != PUSH_OK) {
		log_warnx("relay %s: cannot encode %s: %s", c->peer,
		    push_type_name(m->type), push_strerror(rv));
		return;
	}
	c->tx_ms = xtime_mono_ms();
}

/*
 * End connection C for WHY; with ERROR, tell the relay first.  The
 * relay record stays, marked disconnected.
 */
static void
registry_close(struct registry_conn *c, const char *why, int error)
{
	struct registry		*reg = c->reg;
	struct registry_relay	*r = c->relay;
	struct push_msg		 m;

	if (c->state == REGISTRY_DEAD)
		return;
	registry_helloed(c);
	if (r != NULL) {
		r->conn = NULL;
		r->since_ms = xtime_mono_ms();
		control_event(reg->l, "relay-disconnect", json_pack(
		    "{s:s, s:s, s:s}", "host", r->host, "peer", c->peer,
		    "reason", why));
		c->relay = NULL;
	} else if (c->state != REGISTRY_CLOSING) {
		/* A TLS failure is a warning: a peer without our CA. */
		if (strncmp(why, "connection error: TLS", 21) == 0)
			log_warnx("relay %s: closed: %s", c->peer, why);
		else
			log_info("relay %s: closed: %s", c->peer, why);
	}
	if (error && c->state != REGISTRY_CLOSING) {
		registry_enter_state(c, REGISTRY_CLOSING);
		memset(&m, 0, sizeof(m));
		m.type = PUSH_ERROR;
		strlcpy(m.text, why, sizeof(m.text));
		registry_send(c, &m);
		bufferevent_disable(c->bev, EV_READ);
		registry_arm(c, REGISTRY_FLUSH_MS);
		return;
	}
	registry_enter_state(c, REGISTRY_DEAD);
	TAILQ_REMOVE(&reg->conns, c, entry);
	reg->nconns--;
	TAILQ_INSERT_TAIL(&reg->dead, c, entry);
	event_del(c->timer);
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	event_active(reg->reap, EV_TIMEOUT, 0);
}

/* C said HELLO (or goes): it no longer holds a pre-HELLO slot. */
static void
registry_helloed(struct registry_conn *c)
{
	if (!c->pending)
		return;
	admit_release(c->reg->pending, c->src);
	c->pending = 0;
}

/* The record for HOST, or NULL. */
static struct registry_relay *
registry_find(const struct registry *reg, const char *host)
{
	struct registry_relay	*r;

	TAILQ_FOREACH(r, &reg->relays, entry)
		if (strcmp(r->host, host) == 0)
			return (r);
	return (NULL);
}

/* The mesh address of HOST's relay (connected or last known). */
const char *
registry_relay_addr(const struct registry *reg, const char *host)
{
	struct registry_relay	*r;

	if ((r = registry_find(reg, host)) == NULL || r->mesh[0] == '\0')
		return (NULL);
	return (r->mesh);
}

/* Send the published target to relay R if it does not have it yet. */
static void
registry_push_one(struct registry *reg, struct registry_relay *r)
{
	const struct publish	*p = &reg->l->pub;
	struct push_msg		 m;

	if (p->epoch == 0 || r->conn == NULL ||
	    r->conn->state != REGISTRY_READY ||
	    r->pushed == p->epoch || r->acked == p->epoch)
		return;
	memset(&m, 0, sizeof(m));
	m.type = PUSH_TARGET;
	m.epoch = p->epoch;
	strlcpy(m.host, p->host, sizeof(m.host));
	if (p->relay != NULL)
		strlcpy(m.relay, p->relay, sizeof(m.relay));
	if (p->appliance != NULL)
		strlcpy(m.appliance, p->appliance, sizeof(m.appliance));
	registry_send(r->conn, &m);
	r->pushed = p->epoch;
	reg->pushes++;
	control_event(reg->l, "push", json_pack("{s:s, s:I}", "host", r->host,
	    "epoch", (json_int_t)p->epoch));
}

/* Push the published target to every relay that lacks it. */
void
registry_push(struct registry *reg)
{
	struct registry_relay	*r;

	TAILQ_FOREACH(r, &reg->relays, entry)
		registry_push_one(reg, r);
}

/* Tell every ready relay that the appliance is moving to HOST. */
void
registry_hint(struct registry *reg, const char *event, const char *host)
{
	struct registry_conn	*c, *cn;
	struct push_msg		 m;
	const char		*relay;

	memset(&m, 0, sizeof(m));
	m.type = PUSH_HINT;
	strlcpy(m.text, event, sizeof(m.text));
	strlcpy(m.host, host, sizeof(m.host));
	if ((relay = registry_relay_addr(reg, host)) != NULL)
		strlcpy(m.relay, relay, sizeof(m.relay));
	/* A relay too slow to read is closed by registry_send(): SAFE. */
	TAILQ_FOREACH_SAFE(c, &reg->conns, entry, cn)
		if (c->state == REGISTRY_READY)
			registry_send(c, &m);
}

/* vSphere's host list changed: refresh each relay's "known". */
void
registry_hosts_changed(struct registry *reg)
{
	struct registry_relay	*r;
	int			 k;

	TAILQ_FOREACH(r, &reg->relays, entry) {
		k = watch_host_known(reg->l->watch, r->host);
		if (k == r->known)
			continue;
		r->known = k;
		if (k == 0)
			log_warnx("relay %s: vSphere has no host by that name",
			    r->host);
	}
}

/*
 * Make room for a new relay record: forget the one disconnected the
 * longest (a renamed host, a typo in some --host).  -1 if every
 * record has a live connection.
 */
static int
registry_evict(struct registry *reg)
{
	struct registry_relay	*r, *old = NULL;

	TAILQ_FOREACH(r, &reg->relays, entry)
		if (r->conn == NULL && (old == NULL ||
		    r->since_ms < old->since_ms))
			old = r;
	if (old == NULL)
		return (-1);
	log_info("relay %s: forgotten (disconnected longest, %zu relays)",
	    old->host, reg->nrelays);
	TAILQ_REMOVE(&reg->relays, old, entry);
	reg->nrelays--;
	free(old);
	return (0);
}

/* HELLO: bind C to its host's record, answer WELCOME, push. */
static void
registry_hello(struct registry_conn *c, const struct push_msg *m)
{
	struct registry		*reg = c->reg;
	struct registry_relay	*r;
	struct push_msg		 w;
	struct xaddr		*a = NULL;
	char			 why[2 * XADDR_PEER_STRLEN + PUSH_HOST_MAX +
				     200];
	int			 e;

	registry_helloed(c);
	if (push_epoch_ahead(m->epoch)) {
		/* Epochs are wall-clock ms; this one would pin us forever. */
		snprintf(why, sizeof(why), "epoch %" PRIu64 " is more than a "
		    "day ahead of this locator's clock", m->epoch);
		reg->refused++;
		registry_close(c, why, 1);
		return;
	}
	/*
	 * Its mesh address is pushed to every relay, and relays take only
	 * numeric ones: each would NACK every push naming it.
	 */
	if (m->mesh[0] != '\0' && (e = xaddr_parse_numeric(m->mesh, &a)) !=
	    XADDR_OK) {
		snprintf(why, sizeof(why), "mesh address \"%s\": %s", m->mesh,
		    e == XADDR_E_RESOLVE ? "a host name; relays take only "
		    "numeric addresses" : xaddr_why(e));
		log_warnx("relay %s: refused: %s", c->peer, why);
		reg->refused++;
		registry_close(c, why, 1);
		return;
	}
	xaddr_free(a);
	/* A relay speaks for its own host only: its certificate says which. */
	if (tls_bev_check_host(c->bev, m->host) != TLS_OK) {
		snprintf(why, sizeof(why), "certificate %s does not name host "
		    "%s", tls_bev_peer(c->bev), m->host);
		log_warnx("relay %s: refused: %s", c->peer, why);
		reg->refused++;
		registry_close(c, why, 1);
		return;
	}
	if ((r = registry_find(reg, m->host)) == NULL) {
		if (reg->nrelays >= (size_t)reg->l->conf.max_relays &&
		    registry_evict(reg) != 0) {
			reg->refused++;
			registry_close(c, "too many relays", 1);
			return;
		}
		r = xcalloc(1, sizeof(*r));
		strlcpy(r->host, m->host, sizeof(r->host));
		TAILQ_INSERT_TAIL(&reg->relays, r, entry);
		reg->nrelays++;
	}
	if (r->conn != NULL) {
		/*
		 * A relay that restarted before its old connection timed
		 * out takes over.  Taking over again at once is two relays
		 * with one --host, which would otherwise replace each other
		 * for good: the live one keeps it for a while.
		 */
		if (r->replaced_ms != 0 &&
		    xtime_mono_ms() - r->replaced_ms < REGISTRY_REPLACE_MS) {
			snprintf(why, sizeof(why), "host %s has a live relay "
			    "at %s, which replaced another %lld ms ago (two "
			    "relays with the same --host?)", r->host,
			    r->conn->peer, xtime_mono_ms() - r->replaced_ms);
			log_warnx("relay %s: refused: %s", c->peer, why);
			reg->refused++;
			registry_close(c, why, 1);
			return;
		}
		r->replaced_ms = xtime_mono_ms();
		snprintf(why, sizeof(why), "replaced by a newer connection "
		    "from %s", c->peer);
		registry_close(r->conn, why, 1);
	}
	r->conn = c;
	c->relay = r;
	r->connects++;
	r->since_ms = xtime_mono_ms();
	r->pushed = 0;
	r->answered = 0;
	r->acked = 0;
	strlcpy(r->peer, c->peer, sizeof(r->peer));
	strlcpy(r->mesh, m->mesh, sizeof(r->mesh));
	r->known = watch_host_known(reg->l->watch, r->host);
	registry_enter_state(c, REGISTRY_READY);
	registry_arm(c, reg->l->conf.keepalive_ms);

	memset(&w, 0, sizeof(w));
	w.type = PUSH_WELCOME;
	w.version = PUSH_VERSION;
	w.known = r->known == 1;
	if (gate_advertise(reg->l->gate) != NULL)
		strlcpy(w.vmomi, gate_advertise(reg->l->gate),
		    sizeof(w.vmomi));
	registry_send(c, &w);
	if (c->state != REGISTRY_READY)
		return;		/* closed: it did not read (PONGs) */
	control_event(reg->l, "relay-connect", json_pack(
	    "{s:s, s:s, s:s, s:I, s:o}", "host", r->host, "mesh", r->mesh,
	    "peer", c->peer, "epoch", (json_int_t)m->epoch,
	    "known", r->known < 0 ? json_null() : json_boolean(r->known)));
	if (r->known == 0)
		log_warnx("relay %s (%s): vSphere has no host by that name; "
		    "it gets pushes, but check its --host", r->host, c->peer);

	publish_floor(reg->l, m->epoch);
	/* Its mesh address may be what the target was missing. */
	publish_update(reg->l, "relay registered");
	registry_push_one(reg, r);
}

/* Republish above FLOOR (relay R's NACK), or hold it back a while. */
static void
registry_raise(struct registry *reg, const struct registry_relay *r,
    uint64_t floor, long long now)
{
	struct timeval	tv;

	if (reg->raised_ms == 0 || now - reg->raised_ms >= REGISTRY_RAISE_MS) {
		/* Due now: with whatever was held back, if its timer lags. */
		evtimer_del(reg->raise_ev);
		if (reg->raise_floor > floor)
			floor = reg->raise_floor;
		reg->raise_floor = 0;
		reg->raised_ms = now;
		publish_floor(reg->l, floor);
		return;
	}
	log_warnx("relay %s: holds epoch %" PRIu64 ", within %d ms of the "
	    "last republish; republishing when they are up", r->host,
	    floor - 1, REGISTRY_RAISE_MS);
	if (floor > reg->raise_floor)
		reg->raise_floor = floor;
	if (!evtimer_pending(reg->raise_ev, NULL)) {
		xtime_tv(REGISTRY_RAISE_MS - (now - reg->raised_ms), &tv);
		evtimer_add(reg->raise_ev, &tv);
	}
}

/* The republish held back by registry_raise(). */
static void
registry_raise_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct registry	*reg = arg;
	uint64_t	 floor = reg->raise_floor;

	reg->raise_floor = 0;
	reg->raised_ms = xtime_mono_ms();
	publish_floor(reg->l, floor);
}

/*
 * ACK or NACK from a ready relay.  Pushes on a connection have strictly
 * growing epochs and each gets one answer, in order: an answer for an
 * epoch not pushed, or answered already, is a protocol error (it would
 * mark a relay converged that never had the target, or drive
 * republishing without a push to answer).
 */
static void
registry_answer(struct registry_conn *c, const struct push_msg *m)
{
	struct registry		*reg = c->reg;
	struct registry_relay	*r = c->relay;
	const struct publish	*p = &reg->l->pub;
	long long		 lag = -1, now = xtime_mono_ms();
	char			 why[128];

	if (m->epoch > r->pushed || m->epoch <= r->answered) {
		snprintf(why, sizeof(why), "%s for epoch %" PRIu64 ", which "
		    "was %s", push_type_name(m->type), m->epoch,
		    m->epoch > r->pushed ? "never pushed" : "answered already");
		log_warnx("relay %s: %s", r->host, why);
		registry_close(c, why, 1);
		return;
	}
	r->answered = m->epoch;
	if (m->epoch == p->epoch && p->epoch != 0)
		lag = now - p->at_ms;
	if (m->type == PUSH_ACK) {
		reg->acks++;
		if (m->epoch > r->acked)
			r->acked = m->epoch;
		if (lag >= 0)
			r->lag_ms = lag;
		control_event(reg->l, "ack", json_pack("{s:s, s:I, s:I}",
		    "host", r->host, "epoch", (json_int_t)m->epoch,
		    "lag_ms", (json_int_t)lag));
		return;
	}
	reg->nacks++;
	r->nacks++;
	strlcpy(r->error, m->text, sizeof(r->error));
	/*
	 * It holds our epoch or a later one (its target was moved by
	 * set-target): publish above it.  A relay that refuses for another
	 * reason holds an older epoch and moves nothing here.  A relay
	 * claiming each epoch pushed to it would have every relay pushed
	 * to in a loop: such republishes go once a second at most, the
	 * ones held back together when the second is up.
	 */
	if (p->epoch != 0 && m->current >= p->epoch &&
	    !push_epoch_ahead(m->current))
		registry_raise(reg, r, m->current + 1, now);
	control_event(reg->l, "nack", json_pack("{s:s, s:I, s:s}",
	    "host", r->host, "epoch", (json_int_t)m->epoch,
	    "error", m->text));
}

/* PING: answer PONG. */
static void
registry_ping(struct registry_conn *c, const struct push_msg *m)
{
	struct push_msg	 pong;

	memset(&pong, 0, sizeof(pong));
	pong.type = PUSH_PONG;
	registry_send(c, &pong);
}

/* PONG: receiving it was the point (rx_ms). */
static void
registry_pong(struct registry_conn *c, const struct push_msg *m)
{
}

/* ERROR: the relay gives up on us; say why in the log. */
static void
registry_error(struct registry_conn *c, const struct push_msg *m)
{
	char	 why[PUSH_TEXT_MAX + 64];

	snprintf(why, sizeof(why), "relay says: %s", m->text);
	registry_close(c, why, 0);
}

#define REGISTRY_IN_HELLO	(1 << REGISTRY_HELLO)
#define REGISTRY_IN_READY	(1 << REGISTRY_READY)

/* What a relay may send, and in which states. */
static const struct registry_msg {
	enum push_type	 type;
	int		 states;
	void		(*fn)(struct registry_conn *, const struct push_msg *);
} registry_msgs[] = {
	{ PUSH_HELLO, REGISTRY_IN_HELLO, registry_hello },
	{ PUSH_ACK, REGISTRY_IN_READY, registry_answer },
	{ PUSH_NACK, REGISTRY_IN_READY, registry_answer },
	{ PUSH_PING, REGISTRY_IN_HELLO | REGISTRY_IN_READY, registry_ping },
	{ PUSH_PONG, REGISTRY_IN_HELLO | REGISTRY_IN_READY, registry_pong },
	{ PUSH_ERROR, REGISTRY_IN_HELLO | REGISTRY_IN_READY, registry_error },
};

/* One message from C: run its handler if the state allows it. */
static void
registry_dispatch(struct registry_conn *c, const struct push_msg *m)
{
	const struct registry_msg	*h;
	char				 why[128];
	size_t				 i;

	for (i = 0; i < sizeof(registry_msgs) / sizeof(registry_msgs[0]);
	    i++) {
		h = &registry_msgs[i];
		if (h->type == m->type && (h->states & (1 << c->state))) {
			h->fn(c, m);
			return;
		}
	}
	snprintf(why, sizeof(why), "unexpected %s in state %s",
	    push_type_name(m->type), registry_strstate(c->state));
	registry_close(c, why, 1);
}

/* Read every whole line C has sent. */
static void
registry_readcb(struct bufferevent *bev, void *arg)
{
	struct registry_conn	*c = arg;
	struct push_msg		 m;
	char			 err[256], why[320];
	int			 rv;

	c->rx_ms = xtime_mono_ms();
	while (c->state == REGISTRY_HELLO || c->state == REGISTRY_READY) {
		rv = push_read(bufferevent_get_input(bev), &m, err,
		    sizeof(err));
		if (rv == PUSH_E_INCOMPLETE)
			return;
		if (rv != PUSH_OK) {
			snprintf(why, sizeof(why), "bad push message: %s", err);
			log_warnx("relay %s: %s", c->relay != NULL ?
			    c->relay->host : c->peer, why);
			registry_close(c, why, 1);
			return;
		}
		registry_dispatch(c, &m);
	}
}

/* Output drained: a closing connection is done. */
static void
registry_writecb(struct bufferevent *bev, void *arg)
{
	struct registry_conn	*c = arg;

	if (c->state == REGISTRY_CLOSING)
		registry_close(c, "closed", 0);
}

/* EOF or error on C. */
static void
registry_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct registry_conn	*c = arg;

	char			 why[300];
	const char		*tlswhy;

	if (what & BEV_EVENT_EOF)
		registry_close(c, "connection closed by the relay", 0);
	else if (what & BEV_EVENT_ERROR) {
		tlswhy = tls_bev_error(bev);
		snprintf(why, sizeof(why), "connection error%s%s",
		    tlswhy != NULL ? ": " : "", tlswhy != NULL ? tlswhy : "");
		registry_close(c, why, 0);
	}
}

/* Hello deadline, keepalive tick, or the end of a closing flush. */
static void
registry_timer_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct registry_conn	*c = arg;
	long long		 ka = c->reg->l->conf.keepalive_ms;
	long long		 now = xtime_mono_ms();
	struct push_msg		 m;

	switch (c->state) {
	case REGISTRY_HELLO:
		registry_close(c, "no HELLO in time", 1);
		return;
	case REGISTRY_CLOSING:
		registry_close(c, "closed", 0);
		return;
	case REGISTRY_READY:
		break;
	default:
		return;
	}
	if (now - c->rx_ms >= 3 * ka) {
		registry_close(c, "relay silent for 3 keepalive periods", 0);
		return;
	}
	if (now - c->tx_ms >= ka) {
		memset(&m, 0, sizeof(m));
		m.type = PUSH_PING;
		registry_send(c, &m);
	}
	registry_arm(c, ka);
}

/* A relay connects to the push listener. */
static void
registry_accept_cb(struct evconnlistener *lst, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct registry		*reg = arg;
	struct registry_conn	*c;
	struct xaddr_peer	 peer;
	char			 src[ADMIT_SOURCE_MAX];
	int			 e;

	xaddr_peer_describe(sa, salen, &peer);
	/* One address cannot hold every pre-HELLO slot (half-open floods). */
	admit_source(&peer, src, sizeof(src));
	if ((e = admit_take(reg->pending, src)) != ADMIT_OK) {
		log_info("relay %s: refused before HELLO: %s", peer.str,
		    admit_strerror(e));
		reg->refused++;
		evutil_closesocket(fd);
		return;
	}
	if (reg->nconns >= REGISTRY_CONNS_MAX) {
		log_warnx("relay %s: refused: %zu connections already",
		    peer.str, reg->nconns);
		admit_release(reg->pending, src);
		reg->refused++;
		evutil_closesocket(fd);
		return;
	}
	xaddr_tune(fd, peer.type);
	xaddr_dead_after(fd, reg->l->conf.keepalive_ms * 3);
	c = xcalloc(1, sizeof(*c));
	c->reg = reg;
	c->id = ++reg->next_id;
	strlcpy(c->peer, peer.str, sizeof(c->peer));
	strlcpy(c->src, src, sizeof(c->src));
	c->pending = 1;
	c->rx_ms = c->tx_ms = xtime_mono_ms();
	/* Only relays' certificates may register (TLS). */
	c->bev = daemon_accepted(&reg->l->d, fd, reg->addr, TLS_ROLE_RELAY);
	c->timer = evtimer_new(reg->l->d.base, registry_timer_cb, c);
	if (c->bev == NULL || c->timer == NULL) {
		/* daemon_accepted() closed the socket if it failed. */
		log_warnx("relay %s: refused: cannot set up the connection",
		    c->peer);
		if (c->bev != NULL)
			bufferevent_free(c->bev);
		if (c->timer != NULL)
			event_free(c->timer);
		free(c);
		admit_release(reg->pending, src);
		reg->refused++;
		return;
	}
	bufferevent_setcb(c->bev, registry_readcb, registry_writecb,
	    registry_eventcb, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, PUSH_LINE_MAX * 2);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	TAILQ_INSERT_TAIL(&reg->conns, c, entry);
	reg->nconns++;
	registry_arm(c, REGISTRY_HELLO_MS);
	log_debug("relay %s: connected", c->peer);
}

/* The registry, listening on --listen (fatal on failure: startup). */
struct registry *
registry_new(struct locator *l)
{
	struct registry	*reg;

	reg = xcalloc(1, sizeof(*reg));
	reg->l = l;
	TAILQ_INIT(&reg->conns);
	TAILQ_INIT(&reg->dead);
	TAILQ_INIT(&reg->relays);
	reg->pending = admit_new(REGISTRY_PENDING_SOURCE, REGISTRY_CONNS_MAX);
	if ((reg->reap = event_new(l->d.base, -1, 0, registry_reap_cb,
	    reg)) == NULL ||
	    (reg->raise_ev = evtimer_new(l->d.base, registry_raise_cb,
	    reg)) == NULL)
		fatalx("event_new");
	reg->listener = daemon_listen(&l->d, l->conf.listen,
	    registry_accept_cb, reg, &reg->addr);
	return (reg);
}

/* Close every connection, forget every relay; NULL is fine. */
void
registry_free(struct registry *reg)
{
	struct registry_conn	*c;
	struct registry_relay	*r;

	if (reg == NULL)
		return;
	if (reg->listener != NULL)
		evconnlistener_free(reg->listener);
	if (reg->addr != NULL)
		xaddr_unlisten(reg->addr);
	xaddr_free(reg->addr);
	while ((c = TAILQ_FIRST(&reg->conns)) != NULL) {
		c->relay = NULL;
		registry_close(c, "locator stopping", 0);
	}
	registry_reap_cb(-1, 0, reg);
	while ((r = TAILQ_FIRST(&reg->relays)) != NULL) {
		TAILQ_REMOVE(&reg->relays, r, entry);
		free(r);
	}
	event_free(reg->reap);
	event_free(reg->raise_ev);
	admit_free(reg->pending);
	free(reg);
}

/* One relay for "relays". */
static json_t *
registry_relay_json(const struct registry *reg,
    const struct registry_relay *r)
{
	const struct publish	*p = &reg->l->pub;
	long long		 now = xtime_mono_ms(), lag;
	int			 converged;

	converged = p->epoch != 0 && r->acked == p->epoch;
	if (converged)
		lag = r->lag_ms;
	else if (p->epoch != 0)
		lag = now - p->at_ms;
	else
		lag = -1;
	return (json_pack("{s:s, s:s, s:s, s:b, s:o, s:I, s:I, s:b, s:o, "
	    "s:I, s:I, s:o}",
	    "host", r->host, "mesh", r->mesh, "peer", r->peer,
	    "connected", r->conn != NULL,
	    "known", r->known < 0 ? json_null() : json_boolean(r->known),
	    "acked_epoch", (json_int_t)r->acked,
	    "pushed_epoch", (json_int_t)r->pushed,
	    "converged", converged,
	    "lag_ms", lag >= 0 ? json_integer(lag) : json_null(),
	    "since_ms", (json_int_t)(now - r->since_ms),
	    "nacks", (json_int_t)r->nacks,
	    "last_error", r->error[0] != '\0' ? json_string(r->error) :
	    json_null()));
}

/* Every relay record, for "relays". */
json_t *
registry_json(const struct registry *reg)
{
	const struct registry_relay	*r;
	json_t				*a;

	a = json_array();
	TAILQ_FOREACH(r, &reg->relays, entry)
		json_array_append_new(a, registry_relay_json(reg, r));
	return (a);
}

/* Counts, for "status". */
json_t *
registry_summary(const struct registry *reg)
{
	const struct registry_relay	*r;
	size_t				 up = 0, conv = 0;

	TAILQ_FOREACH(r, &reg->relays, entry) {
		if (r->conn != NULL)
			up++;
		if (reg->l->pub.epoch != 0 && r->acked == reg->l->pub.epoch)
			conv++;
	}
	return (json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
	    "listen", xaddr_str(reg->addr),
	    "relays", (json_int_t)reg->nrelays,
	    "connected", (json_int_t)up,
	    "converged", (json_int_t)conv,
	    "connections", (json_int_t)reg->nconns,
	    "pushes", (json_int_t)reg->pushes,
	    "acks", (json_int_t)reg->acks,
	    "nacks", (json_int_t)reg->nacks,
	    "refused", (json_int_t)reg->refused));
}
