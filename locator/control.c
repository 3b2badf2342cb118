/*
 * control.c -- vlocator's status socket commands, as a table; the same
 * table answers "help".  Field names are documented in
 * docs/operations.md and kept stable.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "locator.h"
#include "log.h"
#include "xtime.h"

static json_t	*control_status(json_t *, void *, const char **);
static json_t	*control_where(json_t *, void *, const char **);
static json_t	*control_relays(json_t *, void *, const char **);
static json_t	*control_watch(json_t *, void *, const char **);
static json_t	*control_vmomi_policy(json_t *, void *, const char **);

static const struct ctl_cmd control_table[] = {
	{ "status", "locator, vSphere watch, published target, relays "
	    "summary", 0, control_status },
	{ "where", "where the appliance runs: host, its relay, vSocket "
	    "address, epoch, since", 0, control_where },
	{ "vmomi-policy", "the vmomi agent's policy: methods by class "
	    "(read, vm, login, logout), denied, scope", 0,
	    control_vmomi_policy },
	{ "relays", "every relay: host, address, connected, acked epoch, "
	    "lag", 0, control_relays },
	{ "watch", "stream events: vSphere changes, hints, pushes, ACKs "
	    "and NACKs, relays (dis)connecting", CTL_WATCH, control_watch },
	{ "sessions", "the vmomi agent's sessions (server end)", 0,
	    daemon_cmd_sessions },
	{ "close-session", "abort one vmomi session: {id}", 0,
	    daemon_cmd_close },
	{ "log", "set verbosity: {level: warn|info|debug}", 0,
	    daemon_cmd_log },
};

/* The whole locator at a glance. */
static json_t *
control_status(json_t *req, void *arg, const char **err)
{
	struct locator	*l = arg;

	return (json_pack("{s:s, s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
	    "daemon", "vlocator", "pid", (json_int_t)getpid(),
	    "uptime_ms", (json_int_t)(xtime_mono_ms() - l->d.started_ms),
	    "process", daemon_process_json(),
	    "vsphere", watch_json(l->watch),
	    "target", publish_json(l),
	    "relays", registry_summary(l->reg),
	    "tls", tls_json(l->d.tls),
	    "gate", gate_json(l->gate),
	    "agent", agent_json(l->agent)));
}

/* Where the appliance is, as published. */
static json_t *
control_where(json_t *req, void *arg, const char **err)
{
	struct locator	*l = arg;
	json_t		*o;

	o = publish_json(l);
	json_object_set_new(o, "vsphere", json_string(watch_state(l->watch)));
	return (o);
}

/* Every relay record. */
static json_t *
control_relays(json_t *req, void *arg, const char **err)
{
	struct locator	*l = arg;

	return (json_pack("{s:I, s:o}", "epoch", (json_int_t)l->pub.epoch,
	    "relays", registry_json(l->reg)));
}

/* Subscribe to events; answer with the published target. */
static json_t *
control_watch(json_t *req, void *arg, const char **err)
{
	struct locator	*l = arg;

	return (json_pack("{s:s, s:o}", "watching", "vlocator",
	    "target", publish_json(l)));
}

/* The vmomi agent's effective policy table. */
static json_t *
control_vmomi_policy(json_t *req, void *arg, const char **err)
{
	struct locator	*l = arg;
	json_t		*a, *p;

	if (l->agent == NULL) {
		*err = "no vmomi agent (--vmomi-listen)";
		return (NULL);
	}
	a = agent_json(l->agent);
	p = json_incref(json_object_get(a, "policy"));
	json_decref(a);
	return (p);
}

/* Per-relay events, one per relay per move: debug, not info. */
static const char *const control_quiet[] = { "push", "ack" };

/* Log an event and send it to watchers. */
void
control_event(struct locator *l, const char *name, json_t *ev)
{
	char	*s;
	size_t	 i;
	int	 quiet = 0;

	if (ev == NULL) {
		/* A member that is not valid text: drop the event, not us. */
		log_warnx("event %s: not valid JSON text; dropped", name);
		return;
	}
	for (i = 0; i < sizeof(control_quiet) / sizeof(control_quiet[0]); i++)
		quiet |= strcmp(name, control_quiet[i]) == 0;
	if ((s = json_dumps(ev, JSON_COMPACT | JSON_SORT_KEYS)) != NULL) {
		if (quiet)
			log_debug("%s %s", name, s);
		else
			log_info("%s %s", name, s);
	}
	free(s);
	if (l->d.ctl != NULL && ctl_nwatchers(l->d.ctl) > 0) {
		json_object_set_new(ev, "event", json_string(name));
		ctl_broadcast(l->d.ctl, ev);
	}
	json_decref(ev);
}

/* Open the status socket. */
void
control_init(struct locator *l)
{
	daemon_status(&l->d, l->conf.status, control_table,
	    sizeof(control_table) / sizeof(control_table[0]), l);
}
