/*
 * target.c -- where this relay sends sessions: the appliance's host,
 * the appliance endpoint's address as reached from that host, and the
 * mesh address of every peer relay.  Changes carry an epoch so a late
 * or replayed update can never move the target backwards.
 *
 * A migration hint from the locator (vSphere's VmBeingHotMigratedEvent)
 * names the host a vMotion is taking the appliance to, before vCenter
 * reports the move (runtime.host, 100 ms to seconds after the
 * switchover).  The target keeps it beside the epoch's truth:
 *
 *   - a session whose leg broke while a hint is live tries the hinted
 *     host first (target_route_hint), the target's host next, and so
 *     on alternately (ingress.c): at a switchover every leg to the
 *     appliance breaks, and the appliance is already where the hint
 *     said;
 *   - a relay on the hinted host delivers a mesh leg into the local
 *     appliance (target_local_appliance): only a leg routed by the
 *     hint comes here before the push, and if the appliance is not
 *     here, the leg is closed at once (fwd.c) and its session tries
 *     the target's host next;
 *   - once a session has resumed through the hinted route, the move
 *     has been seen (target_hint_seen): every route follows the hint
 *     until the push confirms it.
 *
 * vCenter's "moved" event for the hinted host sees it too
 * (target_hint_done), and no other: such an event may come late.  A
 * push that moves the appliance ends the hint, as does a failed
 * migration's event; an unseen hint also ends after TARGET_HINT_MS.  A
 * wrong hint costs a session one refused try.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "log.h"
#include "relay.h"
#include "xaddr.h"
#include "xmalloc.h"
#include "xtime.h"

#define TARGET_PEERS_MAX	1024
#define TARGET_EPOCH_MAX	((1ULL << 53) - 1)	/* exact in any JSON */
#define TARGET_HINT_MS		(10 * 60 * 1000)	/* longest pre-copy */

struct target_peer {
	char		*name;
	struct xaddr	*addr;
};

struct target {
	char			*self;		/* this relay's host name */
	uint64_t		 epoch;
	char			*appliance_host;
	struct xaddr		*appliance;
	struct target_peer	*peers;
	size_t			 npeers;

	char			*hint_host;	/* where a vMotion goes */
	struct xaddr		*hint_relay;	/* its relay, as hinted */
	long long		 hint_ms;	/* when (monotonic) */
	int			 hint_seen;	/* a session resumed there */
};

/* An empty target for the relay on host SELF. */
struct target *
target_new(const char *self)
{
	struct target	*t;

	t = xcalloc(1, sizeof(*t));
	t->self = xstrdup(self);
	return (t);
}

/* Free N peers and the array. */
static void
target_peers_free(struct target_peer *p, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		free(p[i].name);
		xaddr_free(p[i].addr);
	}
	free(p);
}

/* Free a target; NULL is fine. */
void
target_free(struct target *t)
{
	if (t == NULL)
		return;
	free(t->self);
	free(t->appliance_host);
	xaddr_free(t->appliance);
	target_peers_free(t->peers, t->npeers);
	target_hint_clear(t);
	free(t);
}

/* A host name as HELLO carries it (frame_host_ok), and not empty. */
int
target_host_ok(const char *h)
{
	return (*h == '\0' ? -1 : frame_host_ok(h, strlen(h)));
}

/*
 * Parse one address for KEY, with a message naming both.  NUMERIC (a
 * push, set-target) refuses tcp host names: the event loop must not
 * wait on DNS.
 */
static int
target_addr(const char *key, const char *str, int numeric,
    struct xaddr **ap, char *err, size_t errlen)
{
	int	r;

	r = numeric ? xaddr_parse_numeric(str, ap) : xaddr_parse(str, ap);
	if (r == XADDR_E_RESOLVE && numeric) {
		snprintf(err, errlen, "%s: \"%s\": expected a numeric "
		    "address (a running relay looks up no host names: the "
		    "locator and the set-target command send addresses)", key,
		    str);
		return (-1);
	}
	if (r != XADDR_OK) {
		snprintf(err, errlen, "%s: \"%s\": %s", key, str,
		    xaddr_strerror(r));
		return (-1);
	}
	return (0);
}

/* One address of a set-target request, KEY's, resolved in place. */
static int
target_resolve_one(const char *key, json_t *v, char *err, size_t errlen,
    json_t **out)
{
	struct xaddr	*a = NULL;

	*out = NULL;
	if (!json_is_string(v))
		return (0);	/* target_set() says what is wrong */
	if (target_addr(key, json_string_value(v), 0, &a, err, errlen) != 0)
		return (-1);
	*out = json_string(xaddr_str(a));
	xaddr_free(a);
	return (0);
}

/*
 * The set-target command's side (cli_query_prepared): look up the host
 * names in REQ's "appliance" and "peers" and send numeric addresses,
 * which is all a running relay takes.  -1 with ERR if one does not
 * resolve.
 */
int
target_resolve(json_t *req, char *err, size_t errlen)
{
	json_t		*v, *peers, *n;
	void		*it;

	if ((v = json_object_get(req, "appliance")) != NULL) {
		if (target_resolve_one("appliance", v, err, errlen, &n) != 0)
			return (-1);
		if (n != NULL)
			json_object_set_new(req, "appliance", n);
	}
	if (!json_is_object(peers = json_object_get(req, "peers")))
		return (0);
	for (it = json_object_iter(peers); it != NULL;
	    it = json_object_iter_next(peers, it)) {
		if (target_resolve_one(json_object_iter_key(it),
		    json_object_iter_value(it), err, errlen, &n) != 0)
			return (-1);
		if (n != NULL)
			json_object_iter_set_new(peers, it, n);
	}
	return (0);
}

/*
 * Apply {"epoch": N, "appliance_host": "B", "appliance": "ADDR",
 * "peers": {"B": "ADDR", ...}}.  Absent keys keep their value; a null
 * appliance_host means "no peer relay: go to the appliance directly".
 * Nothing changes unless the whole update is valid.  NUMERIC refuses
 * tcp host names instead of resolving them (blocking) on the loop.
 */
int
target_set(struct target *t, json_t *o, int numeric, char *err,
    size_t errlen)
{
	json_t			*v, *pv;
	struct xaddr		*app = NULL;
	struct target_peer	*peers = NULL;
	const char		*key, *host = NULL;
	size_t			 npeers = 0;
	uint64_t		 epoch = t->epoch + 1;
	int			 host_set = 0;
	static const char *const keys[] = { "cmd", "epoch", "appliance_host",
	    "appliance", "peers" };
	size_t			 i;

	/* A misspelt key must not pass for "unchanged". */
	json_object_foreach(o, key, v) {
		for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (strcmp(key, keys[i]) == 0)
				break;
		if (i == sizeof(keys) / sizeof(keys[0])) {
			snprintf(err, errlen, "unknown key \"%.64s\" (expected "
			    "epoch, appliance_host, appliance, peers)", key);
			return (-1);
		}
	}

	if ((v = json_object_get(o, "epoch")) != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    (uint64_t)json_integer_value(v) > TARGET_EPOCH_MAX) {
			snprintf(err, errlen, "epoch: expected an integer "
			    "from 0 to %llu", (unsigned long long)
			    TARGET_EPOCH_MAX);
			goto fail;
		}
		epoch = (uint64_t)json_integer_value(v);
		if (epoch <= t->epoch) {
			snprintf(err, errlen, "stale epoch %" PRIu64
			    " (current %" PRIu64 ")", epoch, t->epoch);
			goto fail;
		}
	}
	if ((v = json_object_get(o, "appliance_host")) != NULL) {
		if (!json_is_string(v) && !json_is_null(v)) {
			snprintf(err, errlen, "appliance_host: expected a "
			    "host name or null");
			goto fail;
		}
		host = json_is_string(v) ? json_string_value(v) : NULL;
		if (host != NULL && target_host_ok(host) != 0) {
			snprintf(err, errlen, "appliance_host: expected 1 to "
			    "255 printable ASCII characters, no spaces");
			goto fail;
		}
		host_set = 1;
	}
	if ((v = json_object_get(o, "appliance")) != NULL) {
		if (!json_is_string(v)) {
			snprintf(err, errlen, "appliance: expected an address");
			goto fail;
		}
		if (target_addr("appliance", json_string_value(v), numeric,
		    &app, err, errlen) != 0)
			goto fail;
	}
	if ((v = json_object_get(o, "peers")) != NULL) {
		if (!json_is_object(v) ||
		    json_object_size(v) > TARGET_PEERS_MAX) {
			snprintf(err, errlen, "peers: expected an object of "
			    "at most %d host: address pairs", TARGET_PEERS_MAX);
			goto fail;
		}
		peers = xcalloc(json_object_size(v) + 1, sizeof(*peers));
		json_object_foreach(v, key, pv) {
			if (target_host_ok(key) != 0) {
				snprintf(err, errlen, "peers: host names are 1 "
				    "to 255 printable ASCII characters");
				goto fail;
			}
			if (!json_is_string(pv)) {
				snprintf(err, errlen, "peers.%s: expected an "
				    "address", key);
				goto fail;
			}
			if (target_addr(key, json_string_value(pv), numeric,
			    &peers[npeers].addr, err, errlen) != 0)
				goto fail;
			peers[npeers++].name = xstrdup(key);
		}
	}
	if (epoch > TARGET_EPOCH_MAX) {
		snprintf(err, errlen, "epoch: no epoch left after %llu",
		    (unsigned long long)t->epoch);
		goto fail;
	}
	t->epoch = epoch;
	/* The move is known now (or another one is): the hint is done. */
	if (host_set && t->hint_host != NULL && (host == NULL ||
	    t->appliance_host == NULL || strcmp(host, t->hint_host) == 0 ||
	    strcmp(host, t->appliance_host) != 0))
		target_hint_clear(t);
	if (host_set) {
		free(t->appliance_host);
		t->appliance_host = host != NULL ? xstrdup(host) : NULL;
	}
	if (app != NULL) {
		xaddr_free(t->appliance);
		t->appliance = app;
	}
	if (peers != NULL) {
		target_peers_free(t->peers, t->npeers);
		t->peers = peers;
		t->npeers = npeers;
	}
	return (0);
fail:
	xaddr_free(app);
	target_peers_free(peers, npeers);
	return (-1);
}

/* The peer entry for host NAME, or NULL. */
static const struct target_peer *
target_peer(const struct target *t, const char *name)
{
	size_t	i;

	for (i = 0; i < t->npeers; i++)
		if (strcmp(t->peers[i].name, name) == 0)
			return (&t->peers[i]);
	return (NULL);
}

/*
 * Whether a hint is in force.  A seen one stays until a push: it is the
 * best evidence there is of where the appliance runs, and dropping it
 * later would send new legs back to a host the appliance has left.
 */
static int
target_hint_live(const struct target *t)
{
	return (t->hint_host != NULL && (t->hint_seen ||
	    xtime_mono_ms() - t->hint_ms < TARGET_HINT_MS));
}

/* The host the appliance runs on as far as routing goes. */
static const char *
target_host(const struct target *t)
{
	return (target_hint_live(t) && t->hint_seen ? t->hint_host :
	    t->appliance_host);
}

/*
 * Where a leg goes if the appliance runs on HOST: its relay, or the
 * appliance itself when HOST is this one (local delivery) or NULL (the
 * appliance is reachable from every host).
 */
static const struct xaddr *
target_route_to(struct target *t, const char *host, const char **why,
    const char **hostp)
{
	const struct target_peer	*p;

	*hostp = NULL;
	if (host != NULL && strcmp(host, t->self) != 0) {
		if ((p = target_peer(t, host)) != NULL) {
			*why = xaddr_str(p->addr);
			*hostp = p->name;
			return (p->addr);
		}
		if (t->hint_relay == NULL || t->hint_host == NULL ||
		    strcmp(host, t->hint_host) != 0) {
			*why = "no mesh address for the appliance host";
			return (NULL);
		}
		*why = xaddr_str(t->hint_relay);
		*hostp = t->hint_host;
		return (t->hint_relay);
	}
	if (t->appliance == NULL) {
		*why = "no appliance address";
		return (NULL);
	}
	*why = xaddr_str(t->appliance);
	return (t->appliance);
}

/* Where a new leg goes now. */
const struct xaddr *
target_route(struct target *t, const char **why, const char **host)
{
	return (target_route_to(t, target_host(t), why, host));
}

/*
 * Where a leg goes if the appliance is already where a live hint says,
 * when that differs from target_route(); else NULL.
 */
const struct xaddr *
target_route_hint(struct target *t, const char **why, const char **host)
{
	const char	*cur = target_host(t);

	*host = NULL;
	if (!target_hint_live(t) || t->hint_seen || (cur != NULL &&
	    strcmp(cur, t->hint_host) == 0))
		return (NULL);
	return (target_route_to(t, t->hint_host, why, host));
}

/*
 * The appliance address if this relay's host runs it, or a live hint
 * says it has just come here (a leg routed by the hint).
 */
const struct xaddr *
target_local_appliance(struct target *t)
{
	const char	*host = target_host(t);

	if ((host == NULL || strcmp(host, t->self) != 0) &&
	    (!target_hint_live(t) || strcmp(t->hint_host, t->self) != 0))
		return (NULL);
	return (t->appliance);
}

/*
 * A vMotion is taking the appliance to HOST, whose relay the locator
 * named RELAY ("" if unknown; a numeric address).  Returns -1 with ERR
 * if RELAY does not parse (the hint still holds, with the peer address
 * this relay knows).
 */
int
target_hint(struct target *t, const char *host, const char *relay,
    char *err, size_t errlen)
{
	struct xaddr	*a = NULL;
	int		 rv = 0, seen = 0;

	if (*relay != '\0' && target_addr("relay", relay, 1, &a, err,
	    errlen) != 0)
		rv = -1;
	/* vCenter says "moving" again where we saw the move: no news. */
	if (t->hint_host != NULL && strcmp(t->hint_host, host) == 0 &&
	    t->hint_seen)
		seen = 1;
	target_hint_clear(t);
	t->hint_host = xstrdup(host);
	t->hint_relay = a;
	t->hint_ms = xtime_mono_ms();
	t->hint_seen = seen;
	return (rv);
}

/*
 * Whether "moving to HOST" is late news: the target names HOST as the
 * appliance's host already (the locator pushes an update's target
 * before its events, so a finished move's own events follow its push).
 */
int
target_hint_late(const struct target *t, const char *host)
{
	return (t->appliance_host != NULL &&
	    strcmp(t->appliance_host, host) == 0);
}

/*
 * vCenter says the move to HOST is done (VmMigratedEvent...): if a live
 * hint heads there, it is seen.  An event with no such hint (a late
 * one, after a push has moved the appliance on) changes nothing: only
 * a push moves routes then.  Returns 1 if the hint is newly seen.
 */
int
target_hint_done(struct target *t, const char *host)
{
	if (!target_hint_live(t) || t->hint_seen ||
	    strcmp(t->hint_host, host) != 0)
		return (0);
	t->hint_seen = 1;
	return (1);
}

/*
 * vCenter says a move failed: the hint ends, unless its move was seen
 * done already (a session resumed there, or VmMigratedEvent): that
 * failure is late news, and routes stay until the push.  Returns 1 if
 * the hint ended.
 */
int
target_hint_failed(struct target *t)
{
	if (t->hint_seen)
		return (0);
	target_hint_clear(t);
	return (1);
}

/* No vMotion under way (any more). */
void
target_hint_clear(struct target *t)
{
	free(t->hint_host);
	t->hint_host = NULL;
	xaddr_free(t->hint_relay);
	t->hint_relay = NULL;
	t->hint_seen = 0;
}

/*
 * A session resumed through ROUTE: if that is where the live hint
 * points and the move was not seen yet, it is now.  Returns 1 then:
 * every route changes.
 */
int
target_hint_seen(struct target *t, const char *route)
{
	const struct xaddr	*a;
	const char		*why, *host;

	/* No second route: no hint, seen already, or the same place. */
	if ((a = target_route_hint(t, &why, &host)) == NULL ||
	    strcmp(xaddr_str(a), route) != 0)
		return (0);
	t->hint_seen = 1;
	return (1);
}

/*
 * Whether a live hint, not yet seen, moves the appliance to or from
 * this host: then a local delivery that fails is no reason to wait.
 */
int
target_hint_moving(const struct target *t)
{
	const char	*host = target_host(t);

	return (target_hint_live(t) && !t->hint_seen &&
	    (strcmp(t->hint_host, t->self) == 0) !=
	    (host != NULL && strcmp(host, t->self) == 0));
}

/* The mesh address of a live hint's relay (another host's), or NULL. */
const struct xaddr *
target_hint_mesh(struct target *t)
{
	const char	*why, *host;

	if (!target_hint_live(t) || strcmp(t->hint_host, t->self) == 0)
		return (NULL);
	return (target_route_to(t, t->hint_host, &why, &host));
}

/* The mesh address of HOST's relay, or NULL if none is known. */
const struct xaddr *
target_mesh(struct target *t, const char *host)
{
	const struct target_peer	*p;

	return ((p = target_peer(t, host)) != NULL ? p->addr : NULL);
}

/* The current epoch (0 before any target). */
uint64_t
target_epoch(const struct target *t)
{
	return (t->epoch);
}

/* The target for the status socket. */
json_t *
target_json(const struct target *t)
{
	json_t	*o, *p;
	size_t	 i;

	p = json_object();
	for (i = 0; i < t->npeers; i++)
		json_object_set_new(p, t->peers[i].name,
		    json_string(xaddr_str(t->peers[i].addr)));
	o = json_pack("{s:I, s:o, s:o, s:o, s:b, s:o}",
	    "epoch", (json_int_t)t->epoch,
	    "appliance_host", t->appliance_host != NULL ?
	    json_string(t->appliance_host) : json_null(),
	    "appliance", t->appliance != NULL ?
	    json_string(xaddr_str(t->appliance)) : json_null(),
	    "peers", p,
	    "local", t->appliance_host != NULL &&
	    strcmp(t->appliance_host, t->self) == 0,
	    "hint", target_hint_live(t) ? json_pack("{s:s, s:o, s:I, s:b}",
	    "host", t->hint_host, "relay", t->hint_relay != NULL ?
	    json_string(xaddr_str(t->hint_relay)) : json_null(), "age_ms",
	    (json_int_t)(xtime_mono_ms() - t->hint_ms), "seen",
	    t->hint_seen) : json_null());
	return (o);
}
