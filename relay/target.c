/*
 * target.c -- where this relay sends sessions: the appliance's host,
 * the appliance endpoint's address as reached from that host, and the
 * mesh address of every peer relay.  Changes carry an epoch so a late
 * or replayed update can never move the target backwards.
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

#define TARGET_PEERS_MAX	1024
#define TARGET_EPOCH_MAX	((1ULL << 53) - 1)	/* exact in any JSON */

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
 * push from the locator) refuses tcp host names: the event loop must
 * not wait on DNS for a peer.
 */
static int
target_addr(const char *key, const char *str, int numeric,
    struct xaddr **ap, char *err, size_t errlen)
{
	int	r;

	r = numeric ? xaddr_parse_numeric(str, ap) : xaddr_parse(str, ap);
	if (r == XADDR_E_RESOLVE && numeric) {
		snprintf(err, errlen, "%s: \"%s\": a pushed address must be "
		    "numeric (host names are not looked up at run time)", key,
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
 * Where a leg goes: the appliance host's relay, or the appliance
 * itself when it runs here (local delivery) or no host is named (the
 * appliance is reachable from every host).
 */
const struct xaddr *
target_route(struct target *t, const char **why, const char **host)
{
	const struct target_peer	*p;

	*host = NULL;
	if (t->appliance_host != NULL &&
	    strcmp(t->appliance_host, t->self) != 0) {
		if ((p = target_peer(t, t->appliance_host)) == NULL) {
			*why = "no mesh address for the appliance host";
			return (NULL);
		}
		*why = xaddr_str(p->addr);
		*host = t->appliance_host;
		return (p->addr);
	}
	if (t->appliance == NULL) {
		*why = "no appliance address";
		return (NULL);
	}
	*why = xaddr_str(t->appliance);
	return (t->appliance);
}

/* The appliance address if this relay's host runs it. */
const struct xaddr *
target_local_appliance(struct target *t)
{
	if (t->appliance_host == NULL ||
	    strcmp(t->appliance_host, t->self) != 0)
		return (NULL);
	return (t->appliance);
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
	o = json_pack("{s:I, s:o, s:o, s:o, s:b}",
	    "epoch", (json_int_t)t->epoch,
	    "appliance_host", t->appliance_host != NULL ?
	    json_string(t->appliance_host) : json_null(),
	    "appliance", t->appliance != NULL ?
	    json_string(xaddr_str(t->appliance)) : json_null(),
	    "peers", p,
	    "local", t->appliance_host != NULL &&
	    strcmp(t->appliance_host, t->self) == 0);
	return (o);
}
