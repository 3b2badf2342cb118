/*
 * gate.c -- the vmomi agent's door (docs/protocol.md, "vmomi legs").
 *
 * The appliance's vappliance is the client end of one session per
 * vSphere client connection (service vmomi).  Its legs reach the
 * relay of the host it runs on, which forwards them here over mutual
 * TLS, each behind one attestation line naming the leg's vSocket peer
 * (caller.h): only that relay knows which VM is calling.  This file:
 *
 *   1. accepts legs on --vmomi-listen: a TLS server with the locator's
 *      certificate that takes only relays' certificates, under the
 *      same pre-authentication bounds as the push listener (a slot per
 *      source address until the line is read, one absolute deadline);
 *   2. reads the line (at most CALLER_LINE_MAX bytes) and refuses a
 *      leg whose line does not parse or names another host than the
 *      relay's certificate: a relay attests for its own host only;
 *   3. hands the leg to a SESS_SERVER context, named after what its
 *      relay attested ("host=A cid=5 port=1234 via tcp://..."), so the
 *      session layer's admit hook can hold each session to its caller:
 *      a resume must come from the CID that opened the session (the
 *      host may differ: a vMotion);
 *   4. opens each session's local end as a socketpair whose other end
 *      agent.c serves (agent_serve), and answers gate_caller() for the
 *      agent's per-request identity check.
 *
 * Lifetimes: a gate_leg is ours until it is handed to sess_accept()
 * (then the bufferevent is the session layer's) or refused; either way
 * it goes on a dead list freed from a zero-delay event, never inside
 * its own callback.  The per-session record (struct gate_sess) hangs
 * off the session (sess_set_data) and goes with its SESS_EV_CLOSED.
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

#include "admit.h"
#include "caller.h"
#include "locator.h"
#include "log.h"
#include "push.h"
#include "xaddr.h"
#include "xmalloc.h"
#include "xtime.h"

#define GATE_PENDING_SOURCE	256	/* legs before the line, per address */
#define GATE_PENDING_MAX	1024	/* ...in all */
#define GATE_VIA		" via "	/* in a leg's name: caller, then peer */
/*
 * Live sessions (established or detached) per attested CID.  Each holds
 * up to a replay buffer and an agent connection (about 1 MiB at worst),
 * so one VM may not pile up detached sessions here; the appliance's
 * vSphere clients use a few connections each.  One more is refused
 * with PROTO_E_LIMIT, which the client end retries.
 */
#define GATE_CID_SESSIONS	64

enum gate_state {
	GATE_TLS = 0,		/* TLS handshake in progress */
	GATE_LINE,		/* waiting for the attestation line */
	GATE_DONE,		/* handed over or refused; reaper frees */
};

struct gate_leg {
	struct gate		*g;
	enum gate_state		 state;
	struct bufferevent	*bev;		/* NULL once handed over */
	struct event		*deadline;
	char			 peer[XADDR_PEER_STRLEN];
	char			 src[ADMIT_SOURCE_MAX];
	TAILQ_ENTRY(gate_leg)	 entry;
};
TAILQ_HEAD(gate_legs, gate_leg);

/* Live sessions of one attested CID (GATE_CID_SESSIONS at most). */
struct gate_cid {
	uint32_t		 cid;
	size_t			 n;
	TAILQ_ENTRY(gate_cid)	 entry;
};
TAILQ_HEAD(gate_cids, gate_cid);

/* Who a session's current leg came from, as its relay attested. */
struct gate_sess {
	struct caller		 now;		/* the current leg's */
	uint32_t		 cid;		/* the opening leg's CID */
	uint64_t		 legs;
};

struct gate {
	struct locator		*l;
	struct evconnlistener	*listener;
	struct xaddr		*addr;
	struct xaddr		*adv;		/* --vmomi-advertise */
	const char		*advertise;	/* WELCOME's "vmomi" */
	struct sess_ctx		*ctx;
	struct admit		*pending;
	struct gate_legs	 legs;
	struct gate_legs	 dead;
	struct gate_cids	 cids;		/* CIDs with live sessions */
	struct event		*reap;
	size_t			 nlegs;
	long long		 handshake_ms;
	uint64_t		 accepted;
	uint64_t		 attested;
	uint64_t		 refused;
	uint64_t		 resume_refused;
	uint64_t		 open_refused;	/* not the appliance; cap */
	uint64_t		 moved;		/* resumed via another host */
};

static const char *const gate_states[] = { "tls", "line", "done" };

/* A leg state's name. */
static const char *
gate_strstate(enum gate_state s)
{
	return ((size_t)s < sizeof(gate_states) / sizeof(gate_states[0]) ?
	    gate_states[s] : "?");
}

/* Move leg GL to state S, logging old -> new. */
static void
gate_enter_state(struct gate_leg *gl, enum gate_state s)
{
	log_debug("vmomi leg %s: %s -> %s", gl->peer,
	    gate_strstate(gl->state), gate_strstate(s));
	gl->state = s;
}

/* Free legs that are done, outside their callbacks. */
static void
gate_reap_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct gate	*g = arg;
	struct gate_leg	*gl;

	while ((gl = TAILQ_FIRST(&g->dead)) != NULL) {
		TAILQ_REMOVE(&g->dead, gl, entry);
		if (gl->bev != NULL)
			bufferevent_free(gl->bev);
		event_free(gl->deadline);
		free(gl);
	}
}

/*
 * GL is done with (BEV NULL: handed over): give its admission slot back
 * and leave it to the reaper, which closes a bufferevent we still own.
 */
static void
gate_leg_done(struct gate_leg *gl)
{
	struct gate	*g = gl->g;

	if (gl->state == GATE_DONE)
		return;
	gate_enter_state(gl, GATE_DONE);
	admit_release(g->pending, gl->src);
	evtimer_del(gl->deadline);
	if (gl->bev != NULL) {
		bufferevent_disable(gl->bev, EV_READ | EV_WRITE);
		bufferevent_setcb(gl->bev, NULL, NULL, NULL, NULL);
	}
	TAILQ_REMOVE(&g->legs, gl, entry);
	g->nlegs--;
	TAILQ_INSERT_TAIL(&g->dead, gl, entry);
	event_active(g->reap, EV_TIMEOUT, 0);
}

/* A refused leg or session: log it and tell `vlocator watch`. */
static void
gate_refused_event(struct gate *g, const char *peer, const char *why)
{
	g->refused++;
	control_event(g->l, "vmomi-leg-refused", json_pack("{s:s, s:s}",
	    "peer", peer, "reason", why));
}

/* Refuse leg GL before it reached the session layer: close it. */
static void
gate_refuse(struct gate_leg *gl, const char *why)
{
	gate_refused_event(gl->g, gl->peer, why);
	gate_leg_done(gl);
}

/*
 * The line is in: check it against the relay's certificate and give the
 * leg to the session layer under a name that carries the attestation.
 */
static void
gate_attested(struct gate_leg *gl, const struct caller *c)
{
	struct gate		*g = gl->g;
	struct bufferevent	*bev = gl->bev;
	char			 name[PROTO_HOST_MAX + XADDR_PEER_STRLEN + 64];
	char			 why[PROTO_HOST_MAX + 300];

	/* A relay attests for its own host: its certificate names it. */
	if (tls_bev_check_host(bev, c->host) != TLS_OK) {
		snprintf(why, sizeof(why), "caller line says host %s, not a "
		    "host the relay's certificate %s names", c->host,
		    tls_bev_peer(bev));
		gate_refuse(gl, why);
		return;
	}
	g->attested++;
	snprintf(name, sizeof(name), "host=%s cid=%u port=%u" GATE_VIA "%s",
	    c->host, c->cid, c->port, gl->peer);
	log_debug("vmomi leg %s attested: %s", gl->peer, name);
	gl->bev = NULL;
	gate_leg_done(gl);
	/*
	 * What followed the line (a HELLO) is in the input: the session
	 * layer takes it from there (and may free BEV: not ours now).
	 */
	sess_accept(g->ctx, bev, name);
}

/* Bytes on a leg: the attestation line, within CALLER_LINE_MAX. */
static void
gate_readcb(struct bufferevent *bev, void *arg)
{
	struct gate_leg		*gl = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct evbuffer_ptr	 eol;
	struct caller		 c;
	char			 line[CALLER_LINE_MAX + 1];
	char			 why[CALLER_LINE_MAX + 128];
	size_t			 n, eol_len;
	int			 e;

	if (gl->state != GATE_LINE)
		return;
	eol = evbuffer_search_eol(in, NULL, &eol_len,
	    EVBUFFER_EOL_CRLF_STRICT);
	if (eol.pos < 0) {
		if (evbuffer_get_length(in) >= CALLER_LINE_MAX)
			gate_refuse(gl, caller_strerror(CALLER_E_TOOLONG));
		return;
	}
	n = (size_t)eol.pos + eol_len;
	if (n > CALLER_LINE_MAX) {
		gate_refuse(gl, caller_strerror(CALLER_E_TOOLONG));
		return;
	}
	if (evbuffer_remove(in, line, n) != (int)n)
		fatalx("evbuffer_remove");
	if ((e = caller_parse(line, n, &c)) != CALLER_OK) {
		snprintf(why, sizeof(why), "bad caller line: %s",
		    caller_strerror(e));
		gate_refuse(gl, why);
		return;
	}
	gate_attested(gl, &c);
}

/* TLS up (now read the line), or the leg failed before it was read. */
static void
gate_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct gate_leg	*gl = arg;
	const char	*tlswhy = tls_bev_error(bev);
	char		 why[300];

	if (what & BEV_EVENT_CONNECTED) {
		log_debug("vmomi leg %s: TLS up: %s", gl->peer,
		    tls_bev_peer(bev));
		gate_enter_state(gl, GATE_LINE);
		gate_readcb(bev, gl);
		return;
	}
	snprintf(why, sizeof(why), "%s before the caller line%s%s",
	    (what & BEV_EVENT_EOF) ? "closed" : "connection error",
	    tlswhy != NULL ? ": " : "", tlswhy != NULL ? tlswhy : "");
	if (tlswhy != NULL)
		log_warnx("vmomi leg %s: %s", gl->peer, why);
	gate_refuse(gl, why);
}

/* No TLS and line within the handshake deadline. */
static void
gate_deadline_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct gate_leg	*gl = arg;

	gate_refuse(gl, gl->state == GATE_TLS ? "TLS handshake timed out" :
	    "no caller line within the handshake timeout");
}

/* A relay connected to --vmomi-listen. */
static void
gate_accept_cb(struct evconnlistener *lst, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct gate		*g = arg;
	struct gate_leg		*gl;
	struct xaddr_peer	 peer;
	struct timeval		 tv;
	char			 src[ADMIT_SOURCE_MAX];
	int			 e;

	xaddr_peer_describe(sa, salen, &peer);
	g->accepted++;
	/* One address cannot hold every pre-attestation slot. */
	admit_source(&peer, src, sizeof(src));
	if ((e = admit_take(g->pending, src)) != ADMIT_OK) {
		log_info("vmomi leg %s: refused before its caller line: %s",
		    peer.str, admit_strerror(e));
		g->refused++;
		evutil_closesocket(fd);
		return;
	}
	xaddr_tune(fd, peer.type);
	xaddr_dead_after(fd, g->l->conf.keepalive_ms * 3);
	gl = xcalloc(1, sizeof(*gl));
	gl->g = g;
	strlcpy(gl->peer, peer.str, sizeof(gl->peer));
	strlcpy(gl->src, src, sizeof(gl->src));
	/* Only relays' certificates may deliver legs (TLS). */
	gl->bev = daemon_accepted(&g->l->d, fd, g->addr, TLS_ROLE_RELAY);
	gl->deadline = evtimer_new(g->l->d.base, gate_deadline_cb, gl);
	if (gl->bev == NULL || gl->deadline == NULL) {
		/* daemon_accepted() closed the socket if it failed. */
		log_warnx("vmomi leg %s: refused: cannot set up the leg",
		    peer.str);
		if (gl->bev != NULL)
			bufferevent_free(gl->bev);
		if (gl->deadline != NULL)
			event_free(gl->deadline);
		free(gl);
		admit_release(g->pending, src);
		g->refused++;
		return;
	}
	gl->state = tls_bev_is_tls(gl->bev) ? GATE_TLS : GATE_LINE;
	bufferevent_setcb(gl->bev, gate_readcb, NULL, gate_eventcb, gl);
	bufferevent_setwatermark(gl->bev, EV_READ, 0, CALLER_LINE_MAX);
	bufferevent_enable(gl->bev, EV_READ | EV_WRITE);
	TAILQ_INSERT_TAIL(&g->legs, gl, entry);
	g->nlegs++;
	/* Absolute: TLS and the line together, a byte now and then or not. */
	xtime_tv(g->handshake_ms, &tv);
	evtimer_add(gl->deadline, &tv);
	log_debug("vmomi leg %s: connected", gl->peer);
}

/* What the relay attested for leg PEER (its name here), or -1. */
static int
gate_leg_caller(const char *peer, struct caller *c)
{
	const char	*via;

	if ((via = strstr(peer, GATE_VIA)) == NULL ||
	    caller_fields(peer, (size_t)(via - peer), c) != CALLER_OK)
		return (-1);
	return (0);
}

/* The live-session count of CID, created at 0 if CREATE. */
static struct gate_cid *
gate_cid_find(struct gate *g, uint32_t cid, int create)
{
	struct gate_cid	*gc;

	TAILQ_FOREACH(gc, &g->cids, entry)
		if (gc->cid == cid)
			return (gc);
	if (!create)
		return (NULL);
	gc = xcalloc(1, sizeof(*gc));
	gc->cid = cid;
	TAILQ_INSERT_TAIL(&g->cids, gc, entry);
	return (gc);
}

/* Session S is over (or was refused after admit): drop our record. */
static void
gate_sess_drop(struct gate *g, struct sess *s)
{
	struct gate_sess	*gs = sess_get_data(s);
	struct gate_cid		*gc;

	if (gs == NULL)
		return;
	if ((gc = gate_cid_find(g, gs->cid, 0)) != NULL && --gc->n == 0) {
		TAILQ_REMOVE(&g->cids, gc, entry);
		free(gc);
	}
	free(gs);
	sess_set_data(s, NULL);
}

/*
 * May caller C open a session?  Only the appliance VM, by the CID the
 * watch knows for it (any host: a vMotion keeps the CID), and only
 * GATE_CID_SESSIONS of them.  0, or a PROTO_E_* code with WHY (MSG):
 * transient ones (not known yet, the cap) make the client end retry.
 */
static int
gate_open_check(struct gate *g, const struct caller *c, char *msg,
    size_t len)
{
	long long	 cid = watch_cid(g->l->watch);
	struct gate_cid	*gc;

	if (cid < 0) {
		snprintf(msg, len, "CID %u on host %s: the appliance VM's "
		    "CID is not known yet (vSphere watch: %s)", c->cid,
		    c->host, watch_state(g->l->watch));
		return (PROTO_E_NOT_APPLIANCE);
	}
	if ((long long)c->cid != cid) {
		snprintf(msg, len, "CID %u on host %s is not the appliance "
		    "VM (CID %lld)", c->cid, c->host, cid);
		return (PROTO_E_AUTH);
	}
	if ((gc = gate_cid_find(g, c->cid, 0)) != NULL &&
	    gc->n >= GATE_CID_SESSIONS) {
		snprintf(msg, len, "CID %u already has %d sessions",
		    c->cid, GATE_CID_SESSIONS);
		return (PROTO_E_LIMIT);
	}
	return (0);
}

/*
 * sess_ops.admit: a session opens on leg PEER (the appliance VM only;
 * remember its caller) or resumes on it (the same CID only: a VM keeps
 * its CID when it moves, its host is what changes).
 */
static int
gate_admit(struct sess *s, const char *peer, int resume, void *arg,
    const char **why)
{
	static char		 msg[PROTO_HOST_MAX + 100];
	struct gate		*g = arg;
	struct gate_sess	*gs = sess_get_data(s);
	struct caller		 c;
	int			 e;

	if (gate_leg_caller(peer, &c) != 0) {
		*why = "leg without an attested caller";
		return (PROTO_E_INTERNAL);
	}
	if (!resume) {
		if ((e = gate_open_check(g, &c, msg, sizeof(msg))) != 0) {
			*why = msg;
			g->open_refused++;
			return (e);
		}
		gs = xcalloc(1, sizeof(*gs));
		gs->now = c;
		gs->cid = c.cid;
		gs->legs = 1;
		sess_set_data(s, gs);
		gate_cid_find(g, c.cid, 1)->n++;
		return (0);
	}
	if (gs == NULL) {
		*why = "session without a caller";
		return (PROTO_E_INTERNAL);
	}
	if (c.cid != gs->cid) {
		snprintf(msg, sizeof(msg), "resume from CID %u on host %s; "
		    "the session's caller is CID %u", c.cid, c.host, gs->cid);
		*why = msg;
		g->resume_refused++;
		return (PROTO_E_AUTH);
	}
	if (strcmp(c.host, gs->now.host) != 0) {
		g->moved++;
		control_event(g->l, "vmomi-caller-moved", json_pack(
		    "{s:s, s:I, s:s, s:s}", "id", sess_idstr(s),
		    "cid", (json_int_t)c.cid, "from", gs->now.host,
		    "host", c.host));
	}
	gs->now = c;
	gs->legs++;
	return (0);
}

/*
 * sess_ops.open: a vmomi session's local end is one end of a
 * socketpair; agent.c serves the other.
 */
static int
gate_open(struct sess *s, void *arg, const char **why)
{
	struct gate	*g = arg;
	int		 sv[2];

	if (sess_service(s) != PROTO_SVC_VMOMI || g->l->agent == NULL) {
		*why = "no such service here (this is the vmomi agent)";
		goto refuse;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	    sv) == -1) {
		*why = "socketpair failed";
		log_warn("session=%s: socketpair", sess_idstr(s));
		gate_sess_drop(g, s);
		return (PROTO_E_INTERNAL);
	}
	sess_set_local(s, sv[0], NULL, 0);
	agent_serve(g->l->agent, sv[1], sess_id(s));
	return (0);
refuse:
	gate_sess_drop(g, s);
	return (PROTO_E_SERVICE);
}

/* Session events: the log and the status socket; CLOSED frees ours. */
static void
gate_event(struct sess *s, enum sess_event ev, const char *reason,
    void *arg)
{
	struct gate	*g = arg;

	daemon_sess_event(&g->l->d, s, ev, reason);
	if (ev == SESS_EV_CLOSED)
		gate_sess_drop(g, s);
}

/* A leg the session layer refused (a bad HELLO, a failed resume). */
static void
gate_sess_refused(const char *peer, const char *reason, void *arg)
{
	gate_refused_event(arg, peer, reason);
}

/*
 * The address relays are told (WELCOME): --vmomi-advertise, else the
 * bound --vmomi-listen unless a wildcard; in canonical (numeric) form,
 * as relays take only numeric pushed addresses.
 */
static void
gate_advertise_init(struct gate *g)
{
	const struct locator	*l = g->l;
	const char		*s;
	int			 e;

	if (l->conf.vmomi_advertise != NULL) {
		if ((e = xaddr_parse(l->conf.vmomi_advertise, &g->adv)) !=
		    XADDR_OK)
			fatalx("--vmomi-advertise \"%s\": %s",
			    l->conf.vmomi_advertise, xaddr_strerror(e));
		if (xaddr_type(g->adv) != XADDR_TCP)
			fatalx("--vmomi-advertise %s: expected tcp://HOST:PORT",
			    xaddr_str(g->adv));
		s = xaddr_str(g->adv);
	} else {
		s = xaddr_str(g->addr);
		if (strncmp(s, "tcp://0.0.0.0:", 14) == 0 ||
		    strncmp(s, "tcp://[::]:", 11) == 0)
			fatalx("--vmomi-listen %s is a wildcard address, which "
			    "relays cannot connect to: give --vmomi-advertise "
			    "ADDR, the address they reach this locator at", s);
	}
	if (strlen(s) > PUSH_ADDR_MAX)
		fatalx("vmomi address %s: longer than %d bytes", s,
		    PUSH_ADDR_MAX);
	g->advertise = s;
}

/* The vmomi listener (fatal on failure: startup), or NULL if none. */
struct gate *
gate_new(struct locator *l)
{
	static const struct sess_ops	 ops = {
		.open = gate_open,
		.event = gate_event,
		.refused = gate_sess_refused,
		.admit = gate_admit,
	};
	struct daemon_sessconf		 dc;
	struct sess_conf		 sc;
	struct gate			*g;

	if (l->conf.vmomi_listen == NULL)
		return (NULL);
	g = xcalloc(1, sizeof(*g));
	g->l = l;
	TAILQ_INIT(&g->legs);
	TAILQ_INIT(&g->dead);
	TAILQ_INIT(&g->cids);
	g->pending = admit_new(GATE_PENDING_SOURCE, GATE_PENDING_MAX);
	if ((g->reap = event_new(l->d.base, -1, 0, gate_reap_cb, g)) == NULL)
		fatalx("event_new");
	/* The session defaults, with the locator's --keepalive. */
	daemon_sessconf_defaults(&dc);
	dc.keepalive_ms = l->conf.keepalive_ms;
	/*
	 * No leg outlives its session here: a leg's attestation line
	 * names one caller, and a second session on it would borrow it.
	 */
	dc.idle_legs = 0;
	daemon_sessconf_apply(&dc, &sc);
	g->handshake_ms = dc.handshake_ms;
	g->ctx = sess_ctx_new(l->d.base, SESS_SERVER, &sc, &ops, g);
	/* The locator's sessions (status: sessions, close-session). */
	l->d.sessions = g->ctx;
	g->listener = daemon_listen(&l->d, l->conf.vmomi_listen,
	    gate_accept_cb, g, &g->addr);
	if (xaddr_type(g->addr) != XADDR_TCP)
		fatalx("--vmomi-listen %s: expected tcp://HOST:PORT (relays "
		    "connect over TLS)", xaddr_str(g->addr));
	/*
	 * Without TLS anyone who reaches the port can write a caller line
	 * and be the appliance: only this machine may (tests, one box).
	 */
	if (l->d.tls == NULL && !xaddr_loopback(g->addr))
		fatalx("--vmomi-listen %s without TLS: anyone who can reach "
		    "it could forge a relay's caller line and act as the "
		    "appliance; give --tls-cert, --tls-key and --tls-ca, or "
		    "listen on loopback (127.0.0.1, ::1) only",
		    xaddr_str(g->addr));
	if (l->d.tls == NULL)
		log_warnx("--vmomi-listen %s without TLS: on loopback only; "
		    "any local process can act as the appliance",
		    xaddr_str(g->addr));
	gate_advertise_init(g);
	log_info("vmomi agent on %s advertised as %s", xaddr_str(g->addr),
	    g->advertise);
	return (g);
}

/* Close every leg and session; NULL is fine. */
void
gate_free(struct gate *g)
{
	struct gate_leg	*gl;
	struct gate_cid	*gc;

	if (g == NULL)
		return;
	if (g->listener != NULL)
		evconnlistener_free(g->listener);
	while ((gl = TAILQ_FIRST(&g->legs)) != NULL)
		gate_leg_done(gl);
	gate_reap_cb(-1, 0, g);
	sess_ctx_free(g->ctx);
	while ((gc = TAILQ_FIRST(&g->cids)) != NULL) {
		TAILQ_REMOVE(&g->cids, gc, entry);
		free(gc);
	}
	g->l->d.sessions = NULL;
	event_free(g->reap);
	admit_free(g->pending);
	xaddr_free(g->addr);
	xaddr_free(g->adv);
	free(g);
}

/* The caller of session ID now, as its current leg's relay said. */
int
gate_caller(const struct gate *g, uint64_t id, struct agent_caller *c)
{
	struct gate_sess	*gs;
	struct sess		*s;

	memset(c, 0, sizeof(*c));
	if (g == NULL || (s = sess_ctx_find(g->ctx, id)) == NULL ||
	    (gs = sess_get_data(s)) == NULL)
		return (-1);
	strlcpy(c->host, gs->now.host, sizeof(c->host));
	c->cid = gs->now.cid;
	return (0);
}

/* WELCOME's "vmomi": where relays reach the agent; NULL if none. */
const char *
gate_advertise(const struct gate *g)
{
	return (g != NULL ? g->advertise : NULL);
}

/* The "gate" object of vlocator status; null without a gate. */
json_t *
gate_json(const struct gate *g)
{
	if (g == NULL)
		return (json_null());
	return (json_pack("{s:s, s:s, s:{s:I, s:I, s:I, s:I}, s:I, s:I, "
	    "s:I, s:o, s:o}",
	    "listen", xaddr_str(g->addr), "advertise", g->advertise,
	    "legs", "accepted", (json_int_t)g->accepted,
	    "attested", (json_int_t)g->attested,
	    "refused", (json_int_t)g->refused,
	    "in_handshake", (json_int_t)g->nlegs,
	    "resumes_refused", (json_int_t)g->resume_refused,
	    "opens_refused", (json_int_t)g->open_refused,
	    "caller_moved", (json_int_t)g->moved,
	    "sessions", daemon_ctx_summary(g->ctx),
	    "admission", admit_json(g->pending)));
}
