/*
 * control.c -- vrelay's status socket commands, as a table; the same
 * table answers "help".  Field names are documented in
 * docs/operations.md and kept stable.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admit.h"
#include "ctl.h"
#include "log.h"
#include "proto.h"
#include "push.h"
#include "relay.h"
#include "xaddr.h"
#include "xtime.h"

static json_t	*control_status(json_t *, void *, const char **);
static json_t	*control_watch(json_t *, void *, const char **);
static json_t	*control_set_target(json_t *, void *, const char **);

static const struct ctl_cmd control_table[] = {
	{ "status", "relay, target, session and forwarding summary", 0,
	    control_status },
	{ "sessions", "every session this relay is the ingress end of", 0,
	    daemon_cmd_sessions },
	{ "watch", "stream events: session open/detach/resume/close, "
	    "target change, uplink state, hints", CTL_WATCH, control_watch },
	{ "set-target", "move the target: {epoch, appliance_host, "
	    "appliance, peers}", 0, control_set_target },
	{ "close-session", "abort one session: {id}", 0, daemon_cmd_close },
	{ "log", "set verbosity: {level: warn|info|debug}", 0, daemon_cmd_log },
};

/* Listener addresses as a JSON array (new reference). */
static json_t *
control_addrs(struct xaddr **a, size_t n)
{
	json_t	*l;
	size_t	 i;

	l = json_array();
	for (i = 0; i < n; i++)
		json_array_append_new(l, json_string(xaddr_str(a[i])));
	return (l);
}

/* The whole relay at a glance. */
static json_t *
control_status(json_t *req, void *arg, const char **err)
{
	struct relay	*r = arg;
	json_t		*sess, *o;

	sess = daemon_sess_summary(&r->d);
	json_object_set_new(sess, "accepted", json_integer(
	    (json_int_t)r->accepted));
	json_object_set_new(sess, "refused", json_integer(
	    (json_int_t)r->d.refused));
	o = json_pack("{s:s, s:s, s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, "
	    "s:o, s:o, s:o, s:o, s:o, s:{s:o, s:o, s:o}}",
	    "daemon", "vrelay", "host", r->conf.host,
	    "pid", (json_int_t)getpid(),
	    "uptime_ms", (json_int_t)(xtime_mono_ms() - r->d.started_ms),
	    "process", daemon_process_json(),
	    "guest_listen", control_addrs(r->guest_a, r->nguest),
	    "agent_listen", control_addrs(r->agent_a, r->nagent),
	    "vspc_listen", control_addrs(r->vspc_a, r->nvspc),
	    "vmomi_listen", control_addrs(r->vmomi_a, r->nvmomi),
	    "mesh_listen", r->mesh_a != NULL ?
	    json_string(xaddr_str(r->mesh_a)) : json_null(),
	    "target", target_json(r->target),
	    "sessions", sess,
	    "forwards", fwd_json(r->fwd),
	    "prewarm", warm_json(r->warm),
	    "uplink", r->uplink != NULL ? uplink_json(r->uplink) :
	    json_null(),
	    "tls", tls_json(r->d.tls),
	    "admission", "handshakes", admit_json(r->pending),
	    "agent_legs", admit_json(r->agents),
	    "guests", admit_json(r->guests));
	if (o == NULL)
		abort();
	json_object_set_new(o, "mesh", mesh_json(r->mesh));
	json_object_set_new(o, "pipes", pipe_json(r->pipes));
	json_object_set_new(o, "pipes_skipped", pipe_skipped_json(r->pipes));
	return (o);
}

/* Subscribe to events; answer with the current target. */
static json_t *
control_watch(json_t *req, void *arg, const char **err)
{
	struct relay	*r = arg;

	return (json_pack("{s:s, s:o}", "watching", "vrelay",
	    "target", target_json(r->target)));
}

/*
 * The target moved (set-target here, or a TARGET from the locator in
 * uplink.c): log it, tell the watchers where it came from, and move
 * every leg that now goes to the wrong place (sess.c and fwd.c).
 */
void
control_target_changed(struct relay *r, const char *source)
{
	const struct xaddr	*a;
	const char		*why, *host;
	json_t			*ev;

	log_info("target-change epoch=%llu source=%s",
	    (unsigned long long)target_epoch(r->target), source);
	if (r->d.ctl != NULL && ctl_nwatchers(r->d.ctl) > 0) {
		ev = target_json(r->target);
		json_object_set_new(ev, "event", json_string("target-change"));
		json_object_set_new(ev, "source", json_string(source));
		ctl_broadcast(r->d.ctl, ev);
		json_decref(ev);
	}
	a = target_route(r->target, &why, &host);
	warm_settle(r->warm, a != NULL ? xaddr_str(a) : NULL);
	sess_ctx_retarget(r->d.sessions, a != NULL ? xaddr_str(a) : NULL);
	fwd_retarget(r->fwd);
}

/* Move the target; relays keep their last good target otherwise. */
static json_t *
control_set_target(json_t *req, void *arg, const char **err)
{
	struct relay	*r = arg;
	static char	 msg[300];
	json_t		*e = json_object_get(req, "epoch");

	/*
	 * The locator refuses a relay holding such an epoch, and nothing
	 * but a restart could take it back (epochs only grow).
	 */
	if (r->uplink != NULL && json_is_integer(e) &&
	    json_integer_value(e) > 0 &&
	    push_epoch_ahead((uint64_t)json_integer_value(e))) {
		snprintf(msg, sizeof(msg), "epoch %" JSON_INTEGER_FORMAT " is "
		    "more than a day ahead of the clock: the locator would "
		    "refuse this relay until it restarts (its epochs are "
		    "wall-clock ms)", json_integer_value(e));
		*err = msg;
		return (NULL);
	}
	if (target_set(r->target, req, 1, msg, sizeof(msg)) != 0) {
		*err = msg;
		return (NULL);
	}
	control_target_changed(r, "control");
	return (json_pack("{s:o}", "target", target_json(r->target)));
}

/* Open the status socket. */
void
control_init(struct relay *r)
{
	daemon_status(&r->d, r->conf.status, control_table,
	    sizeof(control_table) / sizeof(control_table[0]), r);
}
