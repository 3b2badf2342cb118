/*
 * watch.c -- follow the appliance VM through vSphere.
 *
 * Setup is a fixed sequence of calls (watch_steps): log in, find the
 * VM, create a private PropertyCollector (the shared one hands updates
 * to whichever session waited last), a ContainerView of every
 * HostSystem and a filter on their names, a filter on the VM's
 * runtime.host and devices (the VMCI device's id is the VM's vSocket
 * CID), and, best effort, an event collector for migration events with
 * a filter on its latestPage.  Then WaitForUpdatesEx long-polls: the
 * first answer (version "") is the full state, later ones are changes.
 *
 * runtime.host is the truth; events are only hints.  Any failure
 * starts over: NotAuthenticated (a fault, or a 200 whose properties
 * are all missing) logs in again at once, InvalidCollectorVersion
 * rebuilds the collector on the same session (either at once only if
 * the last such start-over is 10 s past), anything else drops the
 * session and retries with backoff.  Every start-over is a full
 * resync; until it completes the last known state stands, and the
 * relays keep their target.  Host names seen before a resync that do
 * not come back in its full answer are dropped when it completes.
 *
 * Requests are referred to by id: a callback for an id we no longer
 * wait for (after a start-over) is never delivered, because every
 * pending id is aborted when the state machine leaves a state.
 */
#include <sys/queue.h>

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "locator.h"
#include "log.h"
#include "vmomi.h"
#include "xmalloc.h"
#include "xtime.h"

#define WATCH_BACKOFF_MIN_MS	250
#define WATCH_QUICK_MS		10000	/* one start-over at once per */
#define WATCH_HOSTS_MAX		65536
#define WATCH_PAGE_MAX		64	/* new events hinted per update */

enum watch_state {
	WATCH_BACKOFF = 0,	/* waiting to start over */
	WATCH_LOGIN,		/* RetrieveServiceContent, Login */
	WATCH_FIND,		/* the VM by name, path or UUID */
	WATCH_COLLECTOR,	/* CreatePropertyCollector */
	WATCH_VIEW,		/* ContainerView of HostSystem */
	WATCH_FILTER_HOSTS,	/* their names */
	WATCH_FILTER_VM,	/* runtime.host, devices, name */
	WATCH_EVENTS,		/* CreateCollectorForEvents (hints) */
	WATCH_FILTER_EVENTS,	/* its latestPage */
	WATCH_SYNC,		/* first WaitForUpdatesEx: full state */
	WATCH_LIVE,		/* long-polling for changes */
};

struct watch_host {
	char			*moref;
	char			*name;
	int			 stale;	/* not seen in the current resync */
	TAILQ_ENTRY(watch_host)	 entry;
};
TAILQ_HEAD(watch_hosts, watch_host);

struct watch {
	struct locator		*l;
	struct vmomi		*v;
	enum watch_state	 state;
	uint64_t		 req;		/* this state's call */
	uint64_t		 check_req;	/* SessionIsActive in flight */
	struct event		*timer;		/* backoff */
	struct event		*check;		/* session check tick */
	long long		 backoff_ms;
	long long		 quick_ms;	/* last start-over at once */
	long long		 state_ms;	/* monotonic: state entered */

	struct vmomi_moref	 vm;
	struct vmomi_moref	 pc;
	struct vmomi_moref	 view;
	struct vmomi_moref	 events;
	char			*version;

	struct watch_hosts	 hosts;
	size_t			 nhosts;
	int			 synced;	/* a full state was read */
	char			*host;		/* moref of runtime.host */
	char			*vm_name;
	long long		 cid;		/* VMCI id, -1: none */
	long long		 event_key;	/* newest event seen */
	int			 events_primed;

	uint64_t		 logins;
	uint64_t		 resyncs;
	uint64_t		 updates;
	uint64_t		 hints;
	uint64_t		 failures;
	char			 error[512];
};

static void	watch_next(struct watch *);
static void	watch_fail(struct watch *, const char *, int, const char *);
static void	watch_done_cb(uint64_t, int, const char *, void *);
static void	watch_ref_cb(uint64_t, int, const char *,
		    const struct vmomi_moref *, void *);
static void	watch_update_cb(uint64_t, int, const char *,
		    const struct vmomi_update *, void *);

static const char *const watch_event_types[] = {
	"VmBeingHotMigratedEvent", "VmMigratedEvent", "DrsVmMigratedEvent",
	"VmRelocatedEvent", "VmFailedMigrateEvent", NULL
};

static const char *const watch_states[] = {
	"backoff", "login", "find-vm", "collector", "view", "filter-hosts",
	"filter-vm", "events", "filter-events", "sync", "live",
};

/* A state's name. */
static const char *
watch_strstate(enum watch_state s)
{
	return ((size_t)s < sizeof(watch_states) / sizeof(watch_states[0]) ?
	    watch_states[s] : "?");
}

/* Move to state S, logging old -> new. */
static void
watch_enter_state(struct watch *w, enum watch_state s)
{
	log_debug("vsphere: %s -> %s", watch_strstate(w->state),
	    watch_strstate(s));
	w->state = s;
	w->state_ms = xtime_mono_ms();
}

static uint64_t
watch_start_login(struct watch *w)
{
	return (vmomi_login(w->v, watch_done_cb, w));
}

static uint64_t
watch_start_find(struct watch *w)
{
	return (vmomi_find_vm(w->v, w->l->conf.vm, watch_ref_cb, w));
}

static uint64_t
watch_start_collector(struct watch *w)
{
	return (vmomi_pc_create(w->v, watch_ref_cb, w));
}

static uint64_t
watch_start_view(struct watch *w)
{
	return (vmomi_view_create(w->v, &vmomi_service(w->v)->root_folder,
	    "HostSystem", 1, watch_ref_cb, w));
}

/* A filter on collector PC for PATHS of TYPE objects from OBJ. */
static uint64_t
watch_filter(struct watch *w, const struct vmomi_moref *obj, int view,
    const char *type, const char *const *paths)
{
	struct vmomi_spec	spec;

	memset(&spec, 0, sizeof(spec));
	spec.obj = *obj;
	spec.view = view;
	spec.type = type;
	spec.paths = paths;
	return (vmomi_filter_create(w->v, &w->pc, &spec, watch_ref_cb, w));
}

static uint64_t
watch_start_filter_hosts(struct watch *w)
{
	static const char *const paths[] = { "name", NULL };

	return (watch_filter(w, &w->view, 1, "HostSystem", paths));
}

static uint64_t
watch_start_filter_vm(struct watch *w)
{
	static const char *const paths[] = { "runtime.host",
	    "config.hardware.device", "name", NULL };

	return (watch_filter(w, &w->vm, 0, "VirtualMachine", paths));
}

static uint64_t
watch_start_events(struct watch *w)
{
	return (vmomi_events_create(w->v, &w->vm, watch_event_types,
	    watch_ref_cb, w));
}

static uint64_t
watch_start_filter_events(struct watch *w)
{
	static const char *const paths[] = { "latestPage", NULL };

	return (watch_filter(w, &w->events, 0, "EventHistoryCollector",
	    paths));
}

/*
 * The first wait reads everything (maybe in truncated parts): before
 * its first part, mark every host, to sweep those not read again.
 */
static uint64_t
watch_start_sync(struct watch *w)
{
	struct watch_host	*h;

	if (w->version == NULL)
		TAILQ_FOREACH(h, &w->hosts, entry)
			h->stale = 1;
	return (vmomi_wait(w->v, &w->pc, w->version,
	    (int)(w->l->conf.poll_ms / 1000), watch_update_cb, w));
}

static uint64_t
watch_start_live(struct watch *w)
{
	return (vmomi_wait(w->v, &w->pc, w->version,
	    (int)(w->l->conf.poll_ms / 1000), watch_update_cb, w));
}

/* Each state's call, and the moref its answer fills (0: none). */
static const struct watch_step {
	uint64_t	(*start)(struct watch *);
	size_t		  ref;
} watch_steps[] = {
	[WATCH_BACKOFF] = { NULL, 0 },
	[WATCH_LOGIN] = { watch_start_login, 0 },
	[WATCH_FIND] = { watch_start_find, offsetof(struct watch, vm) },
	[WATCH_COLLECTOR] = { watch_start_collector,
	    offsetof(struct watch, pc) },
	[WATCH_VIEW] = { watch_start_view, offsetof(struct watch, view) },
	[WATCH_FILTER_HOSTS] = { watch_start_filter_hosts, 0 },
	[WATCH_FILTER_VM] = { watch_start_filter_vm, 0 },
	[WATCH_EVENTS] = { watch_start_events,
	    offsetof(struct watch, events) },
	[WATCH_FILTER_EVENTS] = { watch_start_filter_events, 0 },
	[WATCH_SYNC] = { watch_start_sync, 0 },
	[WATCH_LIVE] = { watch_start_live, 0 },
};

/* Forget the morefs of a session's objects. */
static void
watch_forget(struct watch *w)
{
	memset(&w->pc, 0, sizeof(w->pc));
	memset(&w->view, 0, sizeof(w->view));
	memset(&w->events, 0, sizeof(w->events));
	free(w->version);
	w->version = NULL;
	w->events_primed = 0;
}

/* The host record for moref REF, or NULL. */
static struct watch_host *
watch_host_find(const struct watch *w, const char *ref)
{
	struct watch_host	*h;

	TAILQ_FOREACH(h, &w->hosts, entry)
		if (strcmp(h->moref, ref) == 0)
			return (h);
	return (NULL);
}

/* Drop one host record. */
static void
watch_host_drop(struct watch *w, struct watch_host *h)
{
	TAILQ_REMOVE(&w->hosts, h, entry);
	w->nhosts--;
	free(h->moref);
	free(h->name);
	free(h);
}

/* The appliance's host as vSphere names it, or NULL if not known. */
const char *
watch_host(const struct watch *w)
{
	const struct watch_host	*h;

	if (w->host == NULL || (h = watch_host_find(w, w->host)) == NULL)
		return (NULL);
	return (h->name);
}

/* The appliance VM's VMCI context id, or -1. */
long long
watch_cid(const struct watch *w)
{
	return (w->cid);
}

/* The appliance VM's moref, or NULL before it was found. */
const struct vmomi_moref *
watch_vm(const struct watch *w)
{
	return (w->vm.value[0] != '\0' ? &w->vm : NULL);
}

/* Whether vSphere has a HostSystem named NAME (-1: not read yet). */
int
watch_host_known(const struct watch *w, const char *name)
{
	const struct watch_host	*h;

	if (!w->synced)
		return (-1);
	TAILQ_FOREACH(h, &w->hosts, entry)
		if (strcmp(h->name, name) == 0)
			return (1);
	return (0);
}

/* Completion for calls whose answer does not matter (cleanup). */
static void
watch_ignore_cb(uint64_t id, int err, const char *msg, void *arg)
{
	if (err != VMOMI_OK)
		log_debug("vsphere: cleanup call: %s", msg);
}

/*
 * Start over: abort what is pending; after a session-level failure
 * drop the session too.  Objects of a live session are destroyed in
 * the background so a resync does not leak collectors on the server.
 */
static void
watch_restart(struct watch *w, int keep_session)
{
	vmomi_abort(w->v, w->req);
	w->req = 0;
	vmomi_abort(w->v, w->check_req);
	w->check_req = 0;
	event_del(w->check);
	if (keep_session) {
		if (w->pc.value[0] != '\0')
			vmomi_pc_destroy(w->v, &w->pc, watch_ignore_cb, w);
		if (w->view.value[0] != '\0')
			vmomi_view_destroy(w->v, &w->view, watch_ignore_cb, w);
		if (w->events.value[0] != '\0')
			vmomi_events_destroy(w->v, &w->events,
			    watch_ignore_cb, w);
	} else
		vmomi_reset(w->v);
	watch_forget(w);
	w->resyncs++;
}

/* Backoff over: start again from the login. */
static void
watch_timer_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct watch	*w = arg;

	watch_enter_state(w, WATCH_LOGIN);
	watch_next(w);
}

/*
 * A call failed in WHERE with ERR/MSG: say so (once per distinct
 * reason at warning level), then start over as the error asks.
 */
static void
watch_fail(struct watch *w, const char *where, int err, const char *msg)
{
	struct timeval	 tv;
	char		 line[sizeof(w->error)];
	long long	 delay;
	int		 quick;

	w->failures++;
	snprintf(line, sizeof(line), "%s: %s: %s", where,
	    vmomi_strerror(err), msg != NULL ? msg : "");
	if (strcmp(line, w->error) != 0)
		log_warnx("vsphere %s: %s", w->l->conf.vcenter, line);
	else
		log_debug("vsphere %s: %s (again)", w->l->conf.vcenter, line);
	strlcpy(w->error, line, sizeof(w->error));
	control_event(w->l, "vsphere-error", json_pack("{s:s, s:s, s:s}",
	    "state", watch_strstate(w->state), "code", vmomi_strerror(err),
	    "error", line));

	/*
	 * A new collector or a login at once, but not twice within
	 * WATCH_QUICK_MS: a vCenter that fails every fresh collector or
	 * session the same way gets the backoff, not a loop of full
	 * resyncs.
	 */
	quick = xtime_mono_ms() - w->quick_ms >= WATCH_QUICK_MS;
	if (quick && err == VMOMI_E_VERSION && w->state == WATCH_LIVE) {
		/* Same session, new collector and a full read. */
		w->quick_ms = xtime_mono_ms();
		watch_restart(w, 1);
		watch_enter_state(w, WATCH_COLLECTOR);
		watch_next(w);
		return;
	}
	if (quick && err == VMOMI_E_NOTAUTH && w->state >= WATCH_FIND) {
		/* Session expired or was ended: log in again now. */
		w->quick_ms = xtime_mono_ms();
		watch_restart(w, 0);
		watch_enter_state(w, WATCH_LOGIN);
		watch_next(w);
		return;
	}
	watch_restart(w, 0);
	delay = xtime_backoff(&w->backoff_ms, WATCH_BACKOFF_MIN_MS,
	    w->l->conf.retry_max_ms);
	watch_enter_state(w, WATCH_BACKOFF);
	xtime_tv(delay, &tv);
	evtimer_add(w->timer, &tv);
}

/* Completion of a step that returns nothing. */
static void
watch_done_cb(uint64_t id, int err, const char *msg, void *arg)
{
	struct watch	*w = arg;

	if (id != w->req)
		return;
	w->req = 0;
	if (err != VMOMI_OK) {
		watch_fail(w, watch_strstate(w->state), err, msg);
		return;
	}
	if (w->state == WATCH_LOGIN) {
		w->logins++;
		log_info("vsphere %s: logged in (API %s)", w->l->conf.vcenter,
		    vmomi_service(w->v)->api_version);
		control_event(w->l, "vsphere-login", json_pack("{s:s, s:I}",
		    "api_version", vmomi_service(w->v)->api_version,
		    "logins", (json_int_t)w->logins));
	}
	watch_enter_state(w, w->state + 1);
	watch_next(w);
}

/* Completion of a step that returns a moref. */
static void
watch_ref_cb(uint64_t id, int err, const char *msg,
    const struct vmomi_moref *ref, void *arg)
{
	struct watch		*w = arg;
	struct vmomi_moref	*dst = NULL;

	if (id != w->req)
		return;
	w->req = 0;
	if (err != VMOMI_OK && (w->state == WATCH_EVENTS ||
	    w->state == WATCH_FILTER_EVENTS) && err != VMOMI_E_NOTAUTH) {
		/* Hints are optional: watch without them. */
		log_warnx("vsphere: no migration hints: %s", msg);
		watch_enter_state(w, WATCH_SYNC);
		watch_next(w);
		return;
	}
	if (err != VMOMI_OK) {
		watch_fail(w, watch_strstate(w->state), err, msg);
		return;
	}
	if (watch_steps[w->state].ref != 0 && ref != NULL) {
		dst = (struct vmomi_moref *)((char *)w +
		    watch_steps[w->state].ref);
		*dst = *ref;
	}
	if (w->state == WATCH_FIND)
		log_info("vsphere: appliance VM \"%s\" is %s",
		    w->l->conf.vm, w->vm.value);
	watch_enter_state(w, w->state + 1);
	watch_next(w);
}

/* The VMCI context id among a VM's devices, or -1. */
static long long
watch_vmci(const struct vmomi_val *devs)
{
	const struct vmomi_val	*d, *id;
	const char		*t;
	long long		 cid;

	for (d = vmomi_val_child(devs, NULL); d != NULL;
	    d = vmomi_val_next(d)) {
		if ((t = vmomi_val_type(d)) == NULL ||
		    strcmp(t, "VirtualMachineVMCIDevice") != 0)
			continue;
		if ((id = vmomi_val_child(d, "id")) != NULL &&
		    vmomi_val_int(id, &cid) == 0 && cid >= 0 &&
		    cid <= 0xffffffffLL)
			return (cid);
	}
	return (-1);
}

/* Migration event types, and where each says the VM goes. */
static const struct watch_hint {
	const char	*type;
	const char	*host;		/* member naming the host */
} watch_hints[] = {
	{ "VmBeingHotMigratedEvent", "destHost" },
	{ "VmMigratedEvent", "host" },
	{ "DrsVmMigratedEvent", "host" },
	{ "VmRelocatedEvent", "host" },
	{ "VmFailedMigrateEvent", "destHost" },
};

/* A new migration event EV (key KEY): tell every relay. */
static void
watch_hint(struct watch *w, const struct vmomi_val *ev, long long key)
{
	const struct vmomi_val	*h, *n;
	const char		*type, *name;
	size_t			 i;

	if ((type = vmomi_val_type(ev)) == NULL)
		return;
	for (i = 0; i < sizeof(watch_hints) / sizeof(watch_hints[0]); i++)
		if (strcmp(type, watch_hints[i].type) == 0)
			break;
	if (i == sizeof(watch_hints) / sizeof(watch_hints[0]))
		return;
	if ((h = vmomi_val_child(ev, watch_hints[i].host)) == NULL ||
	    (n = vmomi_val_child(h, "name")) == NULL ||
	    (name = vmomi_val_text(n)) == NULL || *name == '\0')
		return;
	w->hints++;
	control_event(w->l, "hint", json_pack("{s:s, s:s, s:I}",
	    "type", type, "host", name, "key", (json_int_t)key));
	registry_hint(w->l->reg, type, name);
}

struct watch_newev {
	long long		 key;
	const struct vmomi_val	*ev;
};

/* Oldest first. */
static int
watch_newev_cmp(const void *a, const void *b)
{
	const struct watch_newev	*x = a, *y = b;

	return (x->key < y->key ? -1 : x->key > y->key);
}

/*
 * The collector's latestPage: the events newer than any seen become
 * hints, oldest first, whatever order the page lists them in (the
 * first page, read at sync, only sets where "new" starts).
 */
static void
watch_events(struct watch *w, const struct vmomi_val *page)
{
	struct watch_newev	 nev[WATCH_PAGE_MAX];
	const struct vmomi_val	*e, *k;
	long long		 key, newest = w->event_key;
	size_t			 n = 0, i;

	for (e = vmomi_val_child(page, NULL); e != NULL;
	    e = vmomi_val_next(e)) {
		if ((k = vmomi_val_child(e, "key")) == NULL ||
		    vmomi_val_int(k, &key) != 0 || key <= w->event_key)
			continue;
		if (key > newest)
			newest = key;
		if (n < WATCH_PAGE_MAX) {
			nev[n].key = key;
			nev[n++].ev = e;
		}
	}
	w->event_key = newest;
	if (!w->events_primed)
		return;
	qsort(nev, n, sizeof(nev[0]), watch_newev_cmp);
	for (i = 0; i < n; i++)
		watch_hint(w, nev[i].ev, nev[i].key);
}

/* A HostSystem's name changed, appeared or left. */
static int
watch_apply_host(struct watch *w, const struct vmomi_object *o)
{
	struct watch_host	*h;
	const char		*name;
	size_t			 i;

	h = watch_host_find(w, o->obj.value);
	if (o->kind == VMOMI_KIND_LEAVE) {
		if (h != NULL)
			watch_host_drop(w, h);
		return (h != NULL);
	}
	for (i = 0; i < o->nchanges; i++) {
		if (strcmp(o->changes[i].name, "name") != 0 ||
		    o->changes[i].val == NULL ||
		    (name = vmomi_val_text(o->changes[i].val)) == NULL)
			continue;
		if (h == NULL) {
			if (w->nhosts >= WATCH_HOSTS_MAX)
				return (0);
			h = xcalloc(1, sizeof(*h));
			h->moref = xstrdup(o->obj.value);
			TAILQ_INSERT_TAIL(&w->hosts, h, entry);
			w->nhosts++;
		} else if (h->name != NULL && strcmp(h->name, name) == 0) {
			h->stale = 0;
			return (0);
		}
		free(h->name);
		h->name = xstrdup(name);
		h->stale = 0;
		return (1);
	}
	if (h != NULL)
		h->stale = 0;
	return (0);
}

/* The VM's properties changed; 0, or -1 if the VM is gone. */
static int
watch_apply_vm(struct watch *w, const struct vmomi_object *o, int *moved)
{
	const struct vmomi_change	*c;
	struct vmomi_moref		 ref;
	const char			*s;
	long long			 cid;
	size_t				 i;

	if (o->kind == VMOMI_KIND_LEAVE)
		return (-1);
	for (i = 0; i < o->nchanges; i++) {
		c = &o->changes[i];
		if (strcmp(c->name, "runtime.host") == 0) {
			if (c->val == NULL ||
			    vmomi_val_moref(c->val, &ref) != 0)
				continue;
			if (w->host == NULL ||
			    strcmp(w->host, ref.value) != 0) {
				free(w->host);
				w->host = xstrdup(ref.value);
				*moved = 1;
			}
		} else if (strcmp(c->name, "config.hardware.device") == 0) {
			cid = c->val != NULL ? watch_vmci(c->val) : -1;
			if (cid != w->cid) {
				w->cid = cid;
				*moved = 1;
			}
		} else if (strcmp(c->name, "name") == 0 && c->val != NULL &&
		    (s = vmomi_val_text(c->val)) != NULL) {
			free(w->vm_name);
			w->vm_name = xstrdup(s);
		}
	}
	for (i = 0; i < o->nmissing; i++)
		log_debug("vsphere: %s: %s unreadable: %s", w->vm.value,
		    o->missing[i].path, o->missing[i].fault);
	return (0);
}

/* Apply one update; 0, or -1 with the failure already handled. */
static int
watch_apply(struct watch *w, const struct vmomi_update *u)
{
	const struct vmomi_object	*o;
	const char			*prev;
	char				*was;
	struct watch_host		*h, *hn;
	int				 hosts = 0, moved = 0, synced;
	size_t				 i, j;

	prev = watch_host(w);
	was = prev != NULL ? xstrdup(prev) : NULL;

	for (i = 0; i < u->nobjects; i++) {
		o = &u->objects[i];
		if (strcmp(o->obj.type, "HostSystem") == 0)
			hosts |= watch_apply_host(w, o);
		else if (strcmp(o->obj.value, w->vm.value) == 0 &&
		    strcmp(o->obj.type, "VirtualMachine") == 0) {
			if (watch_apply_vm(w, o, &moved) != 0) {
				free(was);
				watch_fail(w, "watch", VMOMI_E_NOTFOUND,
				    "the appliance VM left the inventory");
				return (-1);
			}
		}
	}
	/*
	 * The full state is in (a version and nothing left out): hosts
	 * not in it are gone.  An empty answer (no version: the wait
	 * timed out) says nothing about them.
	 */
	synced = w->state == WATCH_SYNC && !u->truncated && u->version != NULL;
	if (synced) {
		TAILQ_FOREACH_SAFE(h, &w->hosts, entry, hn)
			if (h->stale) {
				watch_host_drop(w, h);
				hosts = 1;
			}
		w->synced = 1;
	}
	if (hosts)
		registry_hosts_changed(w->l->reg);
	prev = watch_host(w);
	if (moved || hosts) {
		if (prev == NULL && w->host != NULL && w->synced)
			log_warnx("vsphere: appliance host %s has no name "
			    "yet", w->host);
		if (prev != NULL && (was == NULL || strcmp(was, prev) != 0))
			control_event(w->l, "vsphere-host", json_pack(
			    "{s:s, s:o, s:s, s:o}", "host", prev,
			    "from", was != NULL ? json_string(was) :
			    json_null(), "moref", w->host,
			    "cid", w->cid >= 0 ? json_integer(w->cid) :
			    json_null()));
		publish_update(w->l, moved ? "vSphere: runtime.host" :
		    "vSphere: host names");
	}
	/*
	 * Then the update's events.  One update can report a move done
	 * and the next one starting (its VmBeingHotMigratedEvent): the
	 * relays must hear target, then hint, or the push would end the
	 * next move's hint.  The finished move's own events come after
	 * its push too, and change nothing there (uplink.c).
	 */
	for (i = 0; i < u->nobjects; i++) {
		o = &u->objects[i];
		if (strcmp(o->obj.value, w->events.value) != 0)
			continue;
		for (j = 0; j < o->nchanges; j++)
			if (strcmp(o->changes[j].name, "latestPage") == 0 &&
			    o->changes[j].val != NULL)
				watch_events(w, o->changes[j].val);
	}
	if (synced)
		w->events_primed = 1;
	free(was);
	return (0);
}

/* (Re)arm the session check. */
static void
watch_check_arm(struct watch *w)
{
	struct timeval	tv;

	xtime_tv(w->l->conf.session_check_ms, &tv);
	evtimer_add(w->check, &tv);
}

/* SessionIsActive answered: an ended session restarts the watch. */
static void
watch_check_cb(uint64_t id, int err, const char *msg, void *arg)
{
	struct watch	*w = arg;

	if (id != w->check_req)
		return;
	w->check_req = 0;
	if (err == VMOMI_E_NOTAUTH) {
		watch_fail(w, "SessionIsActive", err, msg);
		return;
	}
	if (err != VMOMI_OK)
		log_debug("vsphere: session check: %s", msg);
	watch_check_arm(w);
}

/*
 * While long-polling, ask whether our session still lives: a pending
 * WaitForUpdatesEx may not notice a session ended on the server (the
 * simulator's does not) until it returns, up to --poll later.
 */
static void
watch_check_tick(evutil_socket_t fd, short ev, void *arg)
{
	struct watch	*w = arg;

	if (w->state != WATCH_LIVE || w->check_req != 0)
		return;
	w->check_req = vmomi_session_active(w->v, watch_check_cb, w);
}

/* A WaitForUpdatesEx answer. */
static void
watch_update_cb(uint64_t id, int err, const char *msg,
    const struct vmomi_update *u, void *arg)
{
	struct watch	*w = arg;

	if (id != w->req)
		return;
	w->req = 0;
	if (err != VMOMI_OK) {
		watch_fail(w, "WaitForUpdatesEx", err, msg);
		return;
	}
	w->updates++;
	if (u->version != NULL) {
		free(w->version);
		w->version = xstrdup(u->version);
	}
	if (watch_apply(w, u) != 0)
		return;
	if (w->state == WATCH_SYNC && !u->truncated && u->version != NULL) {
		watch_enter_state(w, WATCH_LIVE);
		watch_check_arm(w);
		w->backoff_ms = WATCH_BACKOFF_MIN_MS;
		w->error[0] = '\0';
		log_info("vsphere: in sync: appliance on %s (%s), CID %lld, "
		    "%zu hosts", watch_host(w) != NULL ? watch_host(w) : "?",
		    w->host != NULL ? w->host : "?", w->cid, w->nhosts);
		control_event(w->l, "vsphere-sync", json_pack(
		    "{s:o, s:I, s:I}", "host", watch_host(w) != NULL ?
		    json_string(watch_host(w)) : json_null(),
		    "hosts", (json_int_t)w->nhosts,
		    "resyncs", (json_int_t)w->resyncs));
	}
	watch_next(w);
}

/* Start the call of the current state. */
static void
watch_next(struct watch *w)
{
	if (watch_steps[w->state].start != NULL)
		w->req = watch_steps[w->state].start(w);
}

/* The watcher for locator L (fatal on a bad configuration). */
struct watch *
watch_new(struct locator *l)
{
	struct watch		*w;
	struct vmomi_conf	 vc;
	int			 rv;

	w = xcalloc(1, sizeof(*w));
	w->l = l;
	w->cid = -1;
	w->event_key = -1;
	w->backoff_ms = WATCH_BACKOFF_MIN_MS;
	w->quick_ms = -WATCH_QUICK_MS;
	TAILQ_INIT(&w->hosts);
	locator_vmomi_conf(&l->conf, l->user, l->password, &vc);
	if ((rv = vmomi_new(l->d.base, &vc, &w->v)) != VMOMI_OK)
		fatalx("--vcenter %s: %s", l->conf.vcenter,
		    vmomi_strerror(rv));
	if ((w->timer = evtimer_new(l->d.base, watch_timer_cb, w)) == NULL ||
	    (w->check = evtimer_new(l->d.base, watch_check_tick, w)) == NULL)
		fatalx("evtimer_new");
	return (w);
}

/* Log in and start watching. */
void
watch_start(struct watch *w)
{
	watch_enter_state(w, WATCH_LOGIN);
	watch_next(w);
}

/* Stop, free; NULL is fine.  No Logout: the process is leaving. */
void
watch_free(struct watch *w)
{
	struct watch_host	*h;

	if (w == NULL)
		return;
	vmomi_free(w->v);
	event_free(w->timer);
	event_free(w->check);
	while ((h = TAILQ_FIRST(&w->hosts)) != NULL)
		watch_host_drop(w, h);
	free(w->version);
	free(w->host);
	free(w->vm_name);
	free(w);
}

/* The state's name, for "where". */
const char *
watch_state(const struct watch *w)
{
	return (watch_strstate(w->state));
}

/* The vSphere side, for "status". */
json_t *
watch_json(const struct watch *w)
{
	const char	*host = watch_host(w);

	return (json_pack("{s:s, s:s, s:s, s:I, s:o, s:o, s:o, s:o, s:I, "
	    "s:o, s:I, s:I, s:I, s:I, s:I, s:o}",
	    "vcenter", w->l->conf.vcenter,
	    "vm", w->l->conf.vm,
	    "state", watch_strstate(w->state),
	    "state_ms", (json_int_t)(xtime_mono_ms() - w->state_ms),
	    "vm_moref", w->vm.value[0] != '\0' ? json_string(w->vm.value) :
	    json_null(),
	    "host", host != NULL ? json_string(host) : json_null(),
	    "host_moref", w->host != NULL ? json_string(w->host) : json_null(),
	    "cid", w->cid >= 0 ? json_integer(w->cid) : json_null(),
	    "hosts", (json_int_t)w->nhosts,
	    "version", w->version != NULL ? json_string(w->version) :
	    json_null(),
	    "logins", (json_int_t)w->logins,
	    "resyncs", (json_int_t)w->resyncs,
	    "updates", (json_int_t)w->updates,
	    "hints", (json_int_t)w->hints,
	    "failures", (json_int_t)w->failures,
	    "last_error", w->error[0] != '\0' ? json_string(w->error) :
	    json_null()));
}
