/*
 * publish.c -- the target the locator publishes, and its epoch.
 *
 * The value is (appliance host, that host's relay address, appliance
 * vSocket address).  Its epoch grows only when the value changes, so a
 * resync that re-reads the same host pushes nothing new.  Epochs must
 * also grow across locator restarts, which keep no state on disk: a
 * new epoch is at least the wall clock in milliseconds and above any
 * epoch a relay reported in its HELLO (publish_floor), so a restarted
 * locator never looks stale to relays that kept its old pushes.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "locator.h"
#include "log.h"
#include "push.h"
#include "xmalloc.h"
#include "xtime.h"

/* Both NULL, or equal strings. */
static int
publish_same(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return (a == b);
	return (strcmp(a, b) == 0);
}

/* Replace *P by a copy of S (may be NULL). */
static void
publish_set(char **p, const char *s)
{
	free(*p);
	*p = s != NULL ? xstrdup(s) : NULL;
}

/* The next epoch: above the last, the floor and the wall clock. */
static uint64_t
publish_next_epoch(const struct publish *p)
{
	uint64_t	e = p->epoch + 1;
	long long	now = xtime_wall_ms();

	if (p->floor >= e)
		e = p->floor + 1;
	if (now > 0 && (uint64_t)now > e)
		e = (uint64_t)now;
	return (e);
}

/* Take a new epoch for the current value and push it everywhere. */
static void
publish_bump(struct locator *l, const char *why)
{
	struct publish	*p = &l->pub;
	uint64_t	 e;

	if ((e = publish_next_epoch(p)) > PUSH_EPOCH_MAX) {
		/* registry.c refuses such floors; this is the last guard. */
		log_warnx("publish: epoch %" PRIu64 " beyond the protocol's "
		    "range; not published", e);
		return;
	}
	p->epoch = e;
	p->since_ms = xtime_wall_ms();
	p->at_ms = xtime_mono_ms();
	p->changes++;
	control_event(l, "publish", json_pack("{s:I, s:o, s:o, s:o, s:s}",
	    "epoch", (json_int_t)p->epoch,
	    "appliance_host", json_string(p->host),
	    "relay", p->relay != NULL ? json_string(p->relay) : json_null(),
	    "appliance", p->appliance != NULL ? json_string(p->appliance) :
	    json_null(), "why", why));
	registry_push(l->reg);
}

/*
 * What the target should be now, from vSphere and the registry.  An
 * unknown host publishes nothing: relays keep their last target.
 */
void
publish_update(struct locator *l, const char *why)
{
	struct publish	*p = &l->pub;
	const char	*host, *relay;
	char		*app = NULL;
	long long	 cid;

	if ((host = watch_host(l->watch)) == NULL)
		return;
	if (*host == '\0' || frame_host_ok(host, strlen(host)) != 0) {
		/* Relays could not take it; keep the last target. */
		log_warnx("vsphere: host name \"%.64s\" is not one relays "
		    "accept (1 to 255 printable ASCII, no spaces)", host);
		return;
	}
	relay = registry_relay_addr(l->reg, host);
	if (l->conf.appliance != NULL)
		app = xstrdup(l->conf.appliance);
	else if ((cid = watch_cid(l->watch)) >= 0)
		xasprintf(&app, "vsock://%lld:%lld", cid,
		    l->conf.appliance_port);
	if (p->epoch != 0 && publish_same(p->host, host) &&
	    publish_same(p->relay, relay) &&
	    publish_same(p->appliance, app)) {
		free(app);
		return;
	}
	publish_set(&p->host, host);
	publish_set(&p->relay, relay);
	free(p->appliance);
	p->appliance = app;
	publish_bump(l, why);
}

/*
 * A relay holds EPOCH.  If that is above ours, it came from an earlier
 * run of the locator (or an operator's set-target): re-publish the
 * same value above it so the relay does not refuse us as stale.  An
 * equal epoch is ours (a relay that reconnected): nothing to do, or
 * every reconnect would move every relay's epoch.
 */
void
publish_floor(struct locator *l, uint64_t epoch)
{
	struct publish	*p = &l->pub;

	if (epoch > p->floor)
		p->floor = epoch;
	if (p->epoch != 0 && epoch > p->epoch)
		publish_bump(l, "a relay holds a newer epoch");
}

/* The published target, for "where" and "status". */
json_t *
publish_json(const struct locator *l)
{
	const struct publish	*p = &l->pub;
	char			 utc[XTIME_UTC_LEN];

	if (p->epoch == 0)
		return (json_pack("{s:I, s:n, s:n, s:n, s:n, s:I}",
		    "epoch", (json_int_t)0, "appliance_host", "relay",
		    "appliance", "since", "changes", (json_int_t)p->changes));
	return (json_pack("{s:I, s:s, s:o, s:o, s:s, s:I, s:I, s:I}",
	    "epoch", (json_int_t)p->epoch,
	    "appliance_host", p->host,
	    "relay", p->relay != NULL ? json_string(p->relay) : json_null(),
	    "appliance", p->appliance != NULL ? json_string(p->appliance) :
	    json_null(),
	    "since", xtime_utc(p->since_ms, utc, sizeof(utc)),
	    "since_ms", (json_int_t)p->since_ms,
	    "age_ms", (json_int_t)(xtime_mono_ms() - p->at_ms),
	    "changes", (json_int_t)p->changes));
}

/* Free the strings of a published target. */
void
publish_free(struct publish *p)
{
	free(p->host);
	free(p->relay);
	free(p->appliance);
	p->host = p->relay = p->appliance = NULL;
}
