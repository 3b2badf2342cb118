/*
 * guestinfo.c -- the guestinfo channel on libvmomi (see guestinfo.h).
 *
 * Watches share one private PropertyCollector and one long poll; each
 * watched VM has its own filter on config.extraConfig (or config), so
 * a VM is added or dropped without disturbing the others.  A VM's
 * state is its own sorted key set: every update, from the poll or from
 * the RetrievePropertiesEx that fetches its first state, is applied to
 * that set and only the keys whose value differs are reported.  So a
 * server that re-sends the whole set on any change, or an initial dump
 * that arrives twice (the poll and the retrieve), reports each change
 * once.
 *
 *   watch:  FIND (vmomi_find_vm) -> FILTER (CreateFilter, once the
 *           collector exists) -> FETCH (RetrievePropertiesEx: initial
 *           values, READY) -> LIVE (changes from the poll) -> GONE
 *   the channel: IDLE -> CREATING (CreatePropertyCollector) -> LIVE
 *           (WaitForUpdatesEx in a loop while any filter exists)
 *           -> FAILED (the poll failed: every watch ends in ERROR)
 *
 * vmomi answers are matched to what asked by request id, never by a
 * pointer handed to vmomi: a watch ended meanwhile simply matches
 * nothing.  User callbacks may unwatch or free the channel; ended
 * watches are unlinked and freed only once no callback is running.
 */
#include <sys/types.h>
#include <sys/queue.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "guestinfo.h"
#include "log.h"
#include "text.h"
#include "vmomi.h"
#include "xmalloc.h"

#define GI_MSG_MAX		512
#define GI_VERSION_MAX		4096
#define GI_RECHECKS_MAX		5	/* NOTFOUND waits in a row */

enum gi_state {
	GI_IDLE,
	GI_CREATING,
	GI_LIVE,
	GI_FAILED,
};

enum gi_vm_state {
	GI_VM_FIND,
	GI_VM_FILTER,
	GI_VM_FETCH,
	GI_VM_LIVE,
	GI_VM_DONE,
};

enum gi_op_kind {
	GI_OP_GET,
	GI_OP_SET,
};

/* One watched VM. */
struct gi_vm {
	uint64_t		 id;
	char			*name;
	enum gi_vm_state	 state;
	struct vmomi_moref	 ref;
	struct vmomi_moref	 filter;
	int			 has_filter;
	uint64_t		 req;		/* vmomi request in flight */
	guestinfo_watch_cb	*cb;
	void			*arg;
	struct guestinfo_keys	 keys;
	int			 initial;	/* applying the first state */
	TAILQ_ENTRY(gi_vm)	 entry;
};
TAILQ_HEAD(gi_vms, gi_vm);

/* One get or set: find the VM, then retrieve or reconfigure. */
struct gi_op {
	struct guestinfo	*g;
	uint64_t		 id;
	enum gi_op_kind		 kind;
	char			*name;
	struct vmomi_option	*opts;
	size_t			 nopts;
	uint64_t		 req;
	struct vmomi_moref	 ref;
	struct guestinfo_keys	 keys;
	guestinfo_get_cb	*get_cb;
	vmomi_done_cb		*done_cb;
	void			*arg;
	struct event		*later;		/* early errors */
	int			 err;
	char			 msg[GI_MSG_MAX];
	int			 over;
	TAILQ_ENTRY(gi_op)	 entry;
};
TAILQ_HEAD(gi_ops, gi_op);

struct guestinfo {
	struct event_base	*base;
	struct vmomi		*v;
	enum guestinfo_path	 path;
	int			 maxwait_s;
	enum gi_state		 state;
	struct vmomi_moref	 pc;
	uint64_t		 pc_req;
	uint64_t		 wait_req;
	char			*version;
	int			 rechecks;	/* waits ended NOTFOUND */
	uint64_t		 next_id;
	struct gi_vms		 vms;
	struct gi_ops		 ops;
	struct event		*reap;
	int			 busy;		/* in a user callback */
	int			 freeing;
	vmomi_done_cb		*freed_cb;	/* guestinfo_free_cb */
	void			*freed_arg;
};

static const char *const gi_states[] = {
	"idle", "creating", "live", "failed",
};

static const char *const gi_vm_states[] = {
	"find", "filter", "fetch", "live", "done",
};

static void	gi_free_now(struct guestinfo *);
static void	gi_wait(struct guestinfo *);
static void	gi_wait_rechecked(struct guestinfo *);
static void	gi_vm_filter(struct guestinfo *, struct gi_vm *);
static const char *gi_path(const struct guestinfo *);

/* ---- checks ---- */

/* VMOMI_OK if KEY is a guestinfo.* key we may write. */
int
guestinfo_key_check(const char *key, char *msg, size_t msglen)
{
	size_t	plen = strlen(GUESTINFO_PREFIX), len, i;
	char	c;

	if (msg != NULL && msglen > 0)
		msg[0] = '\0';
	if (key == NULL || strncmp(key, GUESTINFO_PREFIX, plen) != 0) {
		snprintf(msg, msglen, "key \"%.60s\" does not start with "
		    "\"%s\"", key != NULL ? key : "", GUESTINFO_PREFIX);
		goto bad;
	}
	if ((len = strlen(key)) == plen || len > GUESTINFO_KEY_MAX) {
		snprintf(msg, msglen, "key \"%.60s\": %zu bytes; want %zu to "
		    "%d", key, len, plen + 1, GUESTINFO_KEY_MAX);
		goto bad;
	}
	for (i = plen; i < len; i++) {
		c = key[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		    c == '-')) {
			snprintf(msg, msglen, "key \"%.60s\": byte %zu is not "
			    "one of A-Z a-z 0-9 . _ -", key, i + 1);
			goto bad;
		}
	}
	return (VMOMI_OK);
bad:
	if (msg != NULL)
		text_ascii(msg);
	return (VMOMI_E_ARG);
}

/* VMOMI_OK if VALUE may be written (UTF-8, no controls, capped). */
int
guestinfo_value_check(const char *value, char *msg, size_t msglen)
{
	char	*copy;
	size_t	 len, i;
	int	 ok;

	if (msg != NULL && msglen > 0)
		msg[0] = '\0';
	if (value == NULL) {
		snprintf(msg, msglen, "no value");
		return (VMOMI_E_ARG);
	}
	if ((len = strlen(value)) > GUESTINFO_VALUE_MAX) {
		snprintf(msg, msglen, "value of %zu bytes is over the %d-byte "
		    "cap (the guest-to-VMX channel carries 64 KB per message)",
		    len, GUESTINFO_VALUE_MAX);
		return (VMOMI_E_ARG);
	}
	for (i = 0; i < len; i++)
		if (((unsigned char)value[i] < 0x20 && value[i] != '\t' &&
		    value[i] != '\n' && value[i] != '\r') ||
		    value[i] == 0x7f) {
			snprintf(msg, msglen, "value: byte %zu is a control "
			    "character", i + 1);
			return (VMOMI_E_ARG);
		}
	/* text_utf8_ok() refuses every control; these three are fine. */
	copy = xstrdup(value);
	for (i = 0; i < len; i++)
		if (copy[i] == '\t' || copy[i] == '\n' || copy[i] == '\r')
			copy[i] = ' ';
	ok = text_utf8_ok(copy, len);
	free(copy);
	if (!ok) {
		snprintf(msg, msglen, "value is not valid UTF-8");
		return (VMOMI_E_ARG);
	}
	return (VMOMI_OK);
}

/* ---- key sets ---- */

/* Index of KEY in K, or where it would go (*FOUND says which). */
static size_t
gi_keys_find(const struct guestinfo_keys *k, const char *key, int *found)
{
	size_t	lo = 0, hi = k->n, mid;
	int	c;

	*found = 0;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if ((c = strcmp(k->kv[mid].key, key)) == 0) {
			*found = 1;
			return (mid);
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (lo);
}

/* KEY's value in K, or NULL. */
const char *
guestinfo_keys_get(const struct guestinfo_keys *k, const char *key)
{
	size_t	i;
	int	found;

	if (k == NULL || key == NULL)
		return (NULL);
	i = gi_keys_find(k, key, &found);
	return (found ? k->kv[i].value : NULL);
}

/* Set KEY to VALUE in K ("" removes it); -1 past GUESTINFO_KEYS_MAX. */
static int
gi_keys_put(struct guestinfo_keys *k, const char *key, const char *value)
{
	size_t	i;
	int	found;

	i = gi_keys_find(k, key, &found);
	if (found) {
		free(k->kv[i].value);
		if (value[0] != '\0') {
			k->kv[i].value = xstrdup(value);
			return (0);
		}
		free(k->kv[i].key);
		memmove(&k->kv[i], &k->kv[i + 1],
		    (k->n - i - 1) * sizeof(*k->kv));
		k->n--;
		return (0);
	}
	if (value[0] == '\0')
		return (0);
	if (k->n >= GUESTINFO_KEYS_MAX)
		return (-1);
	if (k->n == k->cap) {
		k->cap = k->cap == 0 ? 16 : k->cap * 2;
		k->kv = xreallocarray(k->kv, k->cap, sizeof(*k->kv));
	}
	memmove(&k->kv[i + 1], &k->kv[i], (k->n - i) * sizeof(*k->kv));
	k->kv[i].key = xstrdup(key);
	k->kv[i].value = xstrdup(value);
	k->n++;
	return (0);
}

/* Forget every key; K may be reused. */
void
guestinfo_keys_clear(struct guestinfo_keys *k)
{
	size_t	i;

	if (k == NULL)
		return;
	for (i = 0; i < k->n; i++) {
		free(k->kv[i].key);
		free(k->kv[i].value);
	}
	free(k->kv);
	memset(k, 0, sizeof(*k));
}

/* An OptionValue's key and string value (absent or not text: ""). */
static int
gi_option(const struct vmomi_val *o, const char **key, const char **value)
{
	const struct vmomi_val	*vv;

	*key = vmomi_val_text(vmomi_val_child(o, "key"));
	if (*key == NULL || (*key)[0] == '\0')
		return (-1);
	vv = vmomi_val_child(o, "value");
	*value = vv != NULL ? vmomi_val_text(vv) : "";
	if (*value == NULL)
		*value = "";
	return (0);
}

/* Is KEY in the guestinfo namespace? */
static int
gi_ours(const char *key)
{
	return (strncmp(key, GUESTINFO_PREFIX, strlen(GUESTINFO_PREFIX)) ==
	    0);
}

/* Report the differences between OLD and NEW (both sorted) to CB. */
static void
gi_keys_diff(const struct guestinfo_keys *o, const struct guestinfo_keys *n,
    guestinfo_diff_cb *cb, void *arg)
{
	size_t	i = 0, j = 0;
	int	c;

	while (cb != NULL && (i < o->n || j < n->n)) {
		if (i == o->n)
			c = 1;
		else if (j == n->n)
			c = -1;
		else
			c = strcmp(o->kv[i].key, n->kv[j].key);
		if (c < 0) {
			cb(o->kv[i].key, o->kv[i].value, NULL, arg);
			i++;
		} else if (c > 0) {
			cb(n->kv[j].key, NULL, n->kv[j].value, arg);
			j++;
		} else {
			if (strcmp(o->kv[i].value, n->kv[j].value) != 0)
				cb(n->kv[j].key, o->kv[i].value,
				    n->kv[j].value, arg);
			i++;
			j++;
		}
	}
}

/*
 * Apply the whole extraConfig in ARR (its entries are the children
 * named ENTRY) to K: the last of duplicate keys wins, "" deletes.
 */
static int
gi_keys_set_all(struct guestinfo_keys *k, const struct vmomi_val *arr,
    const char *entry, guestinfo_diff_cb *cb, void *arg, char *msg,
    size_t msglen)
{
	struct guestinfo_keys	 nk;
	const struct vmomi_val	*o;
	const char		*key, *value;

	memset(&nk, 0, sizeof(nk));
	for (o = vmomi_val_child(arr, entry); o != NULL;
	    o = vmomi_val_next(o)) {
		if (gi_option(o, &key, &value) == -1 || !gi_ours(key))
			continue;
		if (gi_keys_put(&nk, key, value) == -1) {
			snprintf(msg, msglen, "more than %d guestinfo keys",
			    GUESTINFO_KEYS_MAX);
			guestinfo_keys_clear(&nk);
			return (VMOMI_E_PARSE);
		}
	}
	gi_keys_diff(k, &nk, cb, arg);
	guestinfo_keys_clear(k);
	*k = nk;
	return (VMOMI_OK);
}

/* Apply one property change to K (see guestinfo.h). */
int
guestinfo_keys_apply(struct guestinfo_keys *k, const struct vmomi_change *c,
    guestinfo_diff_cb *cb, void *arg, char *msg, size_t msglen)
{
	static const char	 idx[] = "config.extraConfig[\"";
	struct guestinfo_keys	 empty;
	const struct vmomi_val	*val;
	const char		*key, *value, *old;
	char			 name[GUESTINFO_KEY_MAX + 1];
	size_t			 len;
	int			 removed;

	if (msg != NULL && msglen > 0)
		msg[0] = '\0';
	if (k == NULL || c == NULL || c->name == NULL) {
		snprintf(msg, msglen, "no change");
		return (VMOMI_E_ARG);
	}
	removed = c->op == VMOMI_OP_REMOVE ||
	    c->op == VMOMI_OP_INDIRECT_REMOVE;
	val = removed ? NULL : c->val;
	if (strcmp(c->name, "config") == 0 ||
	    strcmp(c->name, "config.extraConfig") == 0) {
		if (val != NULL && vmomi_val_text(val) != NULL &&
		    vmomi_val_text(val)[0] != '\0') {
			snprintf(msg, msglen, "%s is text, not a structure",
			    c->name);
			return (VMOMI_E_PARSE);
		}
		if (val == NULL) {
			memset(&empty, 0, sizeof(empty));
			gi_keys_diff(k, &empty, cb, arg);
			guestinfo_keys_clear(k);
			return (VMOMI_OK);
		}
		return (gi_keys_set_all(k, val, strcmp(c->name, "config") ==
		    0 ? "extraConfig" : "OptionValue", cb, arg, msg, msglen));
	}
	if (strncmp(c->name, idx, sizeof(idx) - 1) != 0)
		return (VMOMI_OK);		/* not ours */
	key = c->name + sizeof(idx) - 1;
	len = strlen(key);
	if (len < 2 || strcmp(key + len - 2, "\"]") != 0 ||
	    len - 2 > GUESTINFO_KEY_MAX) {
		snprintf(msg, msglen, "bad extraConfig index in %.100s",
		    c->name);
		text_ascii(msg);
		return (VMOMI_E_PARSE);
	}
	memcpy(name, key, len - 2);
	name[len - 2] = '\0';
	if (!gi_ours(name))
		return (VMOMI_OK);
	value = "";
	if (val != NULL && gi_option(val, &key, &value) == -1) {
		value = vmomi_val_text(val);	/* a bare value */
		if (value == NULL) {
			snprintf(msg, msglen, "%.100s: not an OptionValue",
			    name);
			text_ascii(msg);
			return (VMOMI_E_PARSE);
		}
	}
	old = guestinfo_keys_get(k, name);
	if (cb != NULL && (old == NULL ? value[0] != '\0' :
	    strcmp(old, value) != 0))
		cb(name, old, value[0] != '\0' ? value : NULL, arg);
	if (gi_keys_put(k, name, value) == -1) {
		snprintf(msg, msglen, "more than %d guestinfo keys",
		    GUESTINFO_KEYS_MAX);
		return (VMOMI_E_PARSE);
	}
	return (VMOMI_OK);
}

/* ---- the channel ---- */

/* The channel's state name. */
const char *
guestinfo_state(const struct guestinfo *g)
{
	return (g != NULL ? gi_states[g->state] : "none");
}

/* Move the channel to NEW, logging the change. */
static void
gi_enter_state(struct guestinfo *g, enum gi_state new)
{
	if (g->state == new)
		return;
	log_debug("guestinfo: %s -> %s", gi_states[g->state],
	    gi_states[new]);
	g->state = new;
}

/* Move watch W to NEW, logging the change. */
static void
gi_vm_enter_state(struct gi_vm *w, enum gi_vm_state new)
{
	if (w->state == new)
		return;
	log_debug("guestinfo: watch %llu (%s): %s -> %s",
	    (unsigned long long)w->id, w->name, gi_vm_states[w->state],
	    gi_vm_states[new]);
	w->state = new;
}

/* Ended watches and operations go later, from the loop. */
static void
gi_reap(evutil_socket_t fd, short what, void *arg)
{
	struct guestinfo	*g = arg;
	struct gi_vm		*w, *wn;
	struct gi_op		*o, *on;

	if (g->busy > 0)
		return;
	for (w = TAILQ_FIRST(&g->vms); w != NULL; w = wn) {
		wn = TAILQ_NEXT(w, entry);
		if (w->state != GI_VM_DONE)
			continue;
		TAILQ_REMOVE(&g->vms, w, entry);
		guestinfo_keys_clear(&w->keys);
		free(w->name);
		free(w);
	}
	for (o = TAILQ_FIRST(&g->ops); o != NULL; o = on) {
		on = TAILQ_NEXT(o, entry);
		if (!o->over)
			continue;
		TAILQ_REMOVE(&g->ops, o, entry);
		event_free(o->later);
		guestinfo_keys_clear(&o->keys);
		if (o->opts != NULL) {
			size_t	i;

			for (i = 0; i < o->nopts; i++) {
				free((char *)(uintptr_t)o->opts[i].key);
				free((char *)(uintptr_t)o->opts[i].value);
			}
		}
		free(o->opts);
		free(o->name);
		free(o);
	}
}

/* A user callback is over: free the channel if it asked for it. */
static int
gi_after_cb(struct guestinfo *g)
{
	g->busy--;
	if (g->freeing && g->busy == 0) {
		gi_free_now(g);
		return (-1);
	}
	event_active(g->reap, EV_TIMEOUT, 0);
	return (g->freeing ? -1 : 0);
}

/*
 * Report EV to watch W (LAST: its final report, W already ended);
 * -1 when the channel was freed meanwhile.
 */
static int
gi_vm_report(struct guestinfo *g, struct gi_vm *w,
    struct guestinfo_event *ev, int last)
{
	if ((w->state == GI_VM_DONE && !last) || w->cb == NULL ||
	    g->freeing)
		return (g->freeing ? -1 : 0);
	ev->vm = w->name;
	ev->ref = w->ref.type[0] != '\0' ? &w->ref : NULL;
	g->busy++;
	w->cb(w->id, ev, w->arg);
	return (gi_after_cb(g));
}

/* End watch W: abort its request, drop its filter, free it later. */
static void
gi_vm_end(struct guestinfo *g, struct gi_vm *w)
{
	if (w->state == GI_VM_DONE)
		return;
	vmomi_abort(g->v, w->req);
	w->req = 0;
	if (w->has_filter && g->state == GI_LIVE)
		vmomi_filter_destroy(g->v, &w->filter, NULL, NULL);
	w->has_filter = 0;
	gi_vm_enter_state(w, GI_VM_DONE);
	event_active(g->reap, EV_TIMEOUT, 0);
	/* W's recheck, aborted, may be the last one the poll waited for. */
	gi_wait_rechecked(g);
}

/* End W with ERR (NOTFOUND: the VM is gone) and tell its owner. */
static int
gi_vm_fail(struct guestinfo *g, struct gi_vm *w, int err, const char *msg)
{
	struct guestinfo_event	 ev;

	memset(&ev, 0, sizeof(ev));
	ev.type = err == VMOMI_E_NOTFOUND && w->ref.type[0] != '\0' ?
	    GUESTINFO_EV_GONE : GUESTINFO_EV_ERROR;
	ev.err = err;
	ev.msg = msg != NULL ? msg : vmomi_strerror(err);
	log_debug("guestinfo: watch %llu (%s): %s: %s",
	    (unsigned long long)w->id, w->name,
	    ev.type == GUESTINFO_EV_GONE ? "gone" : "failed", ev.msg);
	gi_vm_end(g, w);
	return (gi_vm_report(g, w, &ev, 1));
}

/* The watch waiting for vmomi request ID, or NULL. */
static struct gi_vm *
gi_vm_by_req(struct guestinfo *g, uint64_t id)
{
	struct gi_vm	*w;

	TAILQ_FOREACH(w, &g->vms, entry)
		if (w->req == id && w->state != GI_VM_DONE)
			return (w);
	return (NULL);
}

/* The watch whose filter or VM is REF, or NULL. */
static struct gi_vm *
gi_vm_by_obj(struct guestinfo *g, const struct vmomi_moref *filter,
    const struct vmomi_moref *obj)
{
	struct gi_vm	*w;

	TAILQ_FOREACH(w, &g->vms, entry) {
		if (w->state == GI_VM_DONE || !w->has_filter)
			continue;
		if (filter->value[0] != '\0') {
			if (strcmp(w->filter.value, filter->value) == 0)
				return (w);
		} else if (strcmp(w->ref.value, obj->value) == 0)
			return (w);
	}
	return (NULL);
}

struct gi_diff {
	struct guestinfo	*g;
	struct gi_vm		*w;
	int			 gone;	/* channel freed in a callback */
};

/* A key of a watched VM changed: report it. */
static void
gi_vm_diff(const char *key, const char *old, const char *value, void *arg)
{
	struct gi_diff		*d = arg;
	struct guestinfo_event	 ev;

	if (d->gone)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.type = GUESTINFO_EV_VALUE;
	ev.key = key;
	ev.old = old;
	ev.value = value;
	ev.initial = d->w->initial;
	if (gi_vm_report(d->g, d->w, &ev, 0) == -1)
		d->gone = 1;
}

/*
 * Apply object O (an update or a retrieved object) to watch W; -1 when
 * the channel was freed in a callback.
 */
static int
gi_vm_apply(struct guestinfo *g, struct gi_vm *w,
    const struct vmomi_object *o)
{
	struct gi_diff	 d = { g, w, 0 };
	char		 msg[GI_MSG_MAX];
	size_t		 i;
	int		 err, rv = 0;

	if (o->kind == VMOMI_KIND_LEAVE)
		return (gi_vm_fail(g, w, VMOMI_E_NOTFOUND, "the VM is gone"));
	/*
	 * Held busy throughout: a VALUE callback that frees the channel
	 * must not free W's keys while guestinfo_keys_apply() holds them.
	 */
	g->busy++;
	for (i = 0; i < o->nchanges && w->state != GI_VM_DONE; i++) {
		err = guestinfo_keys_apply(&w->keys, &o->changes[i],
		    gi_vm_diff, &d, msg, sizeof(msg));
		if (d.gone) {
			rv = -1;
			break;
		}
		if (err != VMOMI_OK) {
			rv = gi_vm_fail(g, w, err, msg);
			break;
		}
	}
	for (i = 0; rv == 0 && i < o->nmissing && w->state != GI_VM_DONE;
	    i++)
		if (o->missing[i].err == VMOMI_E_NOTFOUND) {
			rv = gi_vm_fail(g, w, VMOMI_E_NOTFOUND,
			    "the VM is gone");
			break;
		}
	if (gi_after_cb(g) == -1)
		return (-1);
	return (rv);
}

/* Every watch ends with ERR: the poll or the collector failed. */
static void
gi_fail_all(struct guestinfo *g, int err, const char *msg)
{
	struct gi_vm	*w;

	gi_enter_state(g, GI_FAILED);
	TAILQ_FOREACH(w, &g->vms, entry) {
		if (w->state == GI_VM_DONE)
			continue;
		w->ref.type[0] = '\0';		/* an error, not "gone" */
		if (gi_vm_fail(g, w, err, msg) == -1)
			return;
	}
}

/* A recheck answered: the VM is there (apply it) or gone. */
static void
gi_vm_rechecked(uint64_t id, int err, const char *msg,
    const struct vmomi_update *u, void *arg)
{
	struct guestinfo	*g = arg;
	struct gi_vm		*w;
	size_t			 i;
	int			 found = 0;

	if ((w = gi_vm_by_req(g, id)) == NULL)
		return;
	if (err != VMOMI_OK || !u->more)
		w->req = 0;
	if (err == VMOMI_OK)
		for (i = 0; i < u->nobjects; i++)
			if (strcmp(u->objects[i].obj.value, w->ref.value) ==
			    0) {
				found = 1;
				if (gi_vm_apply(g, w, &u->objects[i]) == -1)
					return;
			}
	if (err == VMOMI_E_NOTFOUND || (err == VMOMI_OK && !found &&
	    !u->more)) {
		if (gi_vm_fail(g, w, VMOMI_E_NOTFOUND, "the VM is gone") ==
		    -1)
			return;
	} else if (err != VMOMI_OK) {
		gi_fail_all(g, err, msg);
		return;
	}
	gi_wait_rechecked(g);
}

/*
 * The poll resumes once every live watch's recheck has answered
 * (gi_recheck): none has a request out any more.
 */
static void
gi_wait_rechecked(struct guestinfo *g)
{
	struct gi_vm	*w;

	TAILQ_FOREACH(w, &g->vms, entry)
		if (w->state == GI_VM_LIVE && w->req != 0)
			return;			/* more to come */
	gi_wait(g);
}

/*
 * The poll ended ManagedObjectNotFound: some filtered VM vanished
 * (govmomi's simulator fails the whole wait instead of reporting it
 * leaving).  Retrieve each live VM: the missing ones end GONE, their
 * filters go, and the poll resumes once every answer is in.
 */
static void
gi_recheck(struct guestinfo *g, const char *msg)
{
	struct gi_vm		*w;
	struct vmomi_spec	 spec;
	const char		*paths[2];
	int			 asked = 0;

	if (++g->rechecks > GI_RECHECKS_MAX) {
		gi_fail_all(g, VMOMI_E_NOTFOUND, msg);
		return;
	}
	paths[0] = gi_path(g);
	paths[1] = NULL;
	TAILQ_FOREACH(w, &g->vms, entry) {
		if (w->state != GI_VM_LIVE || w->req != 0)
			continue;
		memset(&spec, 0, sizeof(spec));
		spec.obj = w->ref;
		spec.type = "VirtualMachine";
		spec.paths = paths;
		w->req = vmomi_retrieve(g->v, &spec, gi_vm_rechecked, g);
		asked++;
	}
	if (asked == 0)
		gi_wait(g);
}

/* The poll answered: apply each object to its watch, poll again. */
static void
gi_wait_done(uint64_t id, int err, const char *msg,
    const struct vmomi_update *u, void *arg)
{
	struct guestinfo	*g = arg;
	struct gi_vm		*w;
	size_t			 i;

	if (id != g->wait_req)
		return;
	g->wait_req = 0;
	if (err == VMOMI_E_NOTFOUND) {
		gi_recheck(g, msg);
		return;
	}
	if (err != VMOMI_OK) {
		gi_fail_all(g, err, msg);
		return;
	}
	g->rechecks = 0;
	if (u->version != NULL) {
		if (strlen(u->version) > GI_VERSION_MAX) {
			gi_fail_all(g, VMOMI_E_PARSE, "collector version too "
			    "long");
			return;
		}
		free(g->version);
		g->version = xstrdup(u->version);
	}
	for (i = 0; i < u->nobjects; i++) {
		if ((w = gi_vm_by_obj(g, &u->objects[i].filter,
		    &u->objects[i].obj)) == NULL)
			continue;
		if (gi_vm_apply(g, w, &u->objects[i]) == -1)
			return;
	}
	gi_wait(g);
}

/* Poll the collector unless a poll is out or nothing is filtered. */
static void
gi_wait(struct guestinfo *g)
{
	struct gi_vm	*w;

	if (g->state != GI_LIVE || g->wait_req != 0)
		return;
	TAILQ_FOREACH(w, &g->vms, entry)
		if (w->has_filter && w->state != GI_VM_DONE)
			break;
	if (w == NULL)
		return;
	g->wait_req = vmomi_wait(g->v, &g->pc, g->version, g->maxwait_s,
	    gi_wait_done, g);
}

/* The property a watch follows. */
static const char *
gi_path(const struct guestinfo *g)
{
	return (g->path == GUESTINFO_PATH_CONFIG ? "config" :
	    "config.extraConfig");
}

/* A page of the first state: apply it; the last one makes W ready. */
static void
gi_vm_fetched(uint64_t id, int err, const char *msg,
    const struct vmomi_update *u, void *arg)
{
	struct guestinfo	*g = arg;
	struct gi_vm		*w;
	struct guestinfo_event	 ev;
	size_t			 i;

	if ((w = gi_vm_by_req(g, id)) == NULL)
		return;
	if (err != VMOMI_OK) {
		w->req = 0;
		gi_vm_fail(g, w, err, msg);
		return;
	}
	if (!u->more)
		w->req = 0;
	w->initial = 1;
	for (i = 0; i < u->nobjects; i++)
		if (strcmp(u->objects[i].obj.value, w->ref.value) == 0 &&
		    gi_vm_apply(g, w, &u->objects[i]) == -1)
			return;
	w->initial = 0;
	if (u->more || w->state == GI_VM_DONE)
		return;
	if (u->nobjects == 0) {
		gi_vm_fail(g, w, VMOMI_E_NOTFOUND, "the VM is gone");
		return;
	}
	gi_vm_enter_state(w, GI_VM_LIVE);
	memset(&ev, 0, sizeof(ev));
	ev.type = GUESTINFO_EV_READY;
	gi_vm_report(g, w, &ev, 0);
}

/* W's filter exists: fetch the first state, make sure the poll runs. */
static void
gi_vm_filtered(uint64_t id, int err, const char *msg,
    const struct vmomi_moref *ref, void *arg)
{
	struct guestinfo	*g = arg;
	struct gi_vm		*w;
	const char		*paths[2];
	struct vmomi_spec	 spec;

	if ((w = gi_vm_by_req(g, id)) == NULL) {
		if (err == VMOMI_OK && g->state == GI_LIVE)
			vmomi_filter_destroy(g->v, ref, NULL, NULL);
		return;
	}
	w->req = 0;
	if (err != VMOMI_OK) {
		gi_vm_fail(g, w, err, msg);
		return;
	}
	w->filter = *ref;
	w->has_filter = 1;
	gi_vm_enter_state(w, GI_VM_FETCH);
	paths[0] = gi_path(g);
	paths[1] = NULL;
	memset(&spec, 0, sizeof(spec));
	spec.obj = w->ref;
	spec.type = "VirtualMachine";
	spec.paths = paths;
	w->req = vmomi_retrieve(g->v, &spec, gi_vm_fetched, g);
	gi_wait(g);
}

/* CreateFilter on the VM of W, once the collector exists. */
static void
gi_vm_filter(struct guestinfo *g, struct gi_vm *w)
{
	const char		*paths[2];
	struct vmomi_spec	 spec;

	gi_vm_enter_state(w, GI_VM_FILTER);
	if (g->state != GI_LIVE)
		return;			/* gi_pc_done() comes back */
	paths[0] = gi_path(g);
	paths[1] = NULL;
	memset(&spec, 0, sizeof(spec));
	spec.obj = w->ref;
	spec.type = "VirtualMachine";
	spec.paths = paths;
	w->req = vmomi_filter_create(g->v, &g->pc, &spec, gi_vm_filtered, g);
}

/* The collector exists: filter every VM found meanwhile. */
static void
gi_pc_done(uint64_t id, int err, const char *msg,
    const struct vmomi_moref *ref, void *arg)
{
	struct guestinfo	*g = arg;
	struct gi_vm		*w;

	if (id != g->pc_req)
		return;
	g->pc_req = 0;
	if (err != VMOMI_OK) {
		gi_fail_all(g, err, msg);
		return;
	}
	g->pc = *ref;
	gi_enter_state(g, GI_LIVE);
	TAILQ_FOREACH(w, &g->vms, entry)
		if (w->state == GI_VM_FILTER && w->req == 0)
			gi_vm_filter(g, w);
}

/* The VM of a watch was found: on to its filter. */
static void
gi_vm_found(uint64_t id, int err, const char *msg,
    const struct vmomi_moref *ref, void *arg)
{
	struct guestinfo	*g = arg;
	struct gi_vm		*w;

	if ((w = gi_vm_by_req(g, id)) == NULL)
		return;
	w->req = 0;
	if (err != VMOMI_OK) {
		gi_vm_fail(g, w, err, msg);
		return;
	}
	w->ref = *ref;
	if (g->state == GI_FAILED) {
		gi_vm_fail(g, w, VMOMI_E_SYSTEM, "the watch failed");
		return;
	}
	if (g->state == GI_IDLE) {
		gi_enter_state(g, GI_CREATING);
		g->pc_req = vmomi_pc_create(g->v, gi_pc_done, g);
	}
	gi_vm_filter(g, w);
}

/* A channel on client V. */
int
guestinfo_new(struct event_base *base, struct vmomi *v,
    const struct guestinfo_conf *conf, struct guestinfo **out)
{
	struct guestinfo	*g;

	*out = NULL;
	if (base == NULL || v == NULL)
		return (VMOMI_E_ARG);
	if (conf != NULL && (conf->maxwait_s < 0 ||
	    conf->maxwait_s > 24 * 3600 ||
	    (conf->path != GUESTINFO_PATH_EXTRA &&
	    conf->path != GUESTINFO_PATH_CONFIG)))
		return (VMOMI_E_ARG);
	g = xcalloc(1, sizeof(*g));
	g->base = base;
	g->v = v;
	g->path = conf != NULL ? conf->path : GUESTINFO_PATH_EXTRA;
	g->maxwait_s = conf != NULL && conf->maxwait_s > 0 ?
	    conf->maxwait_s : GUESTINFO_MAXWAIT_S;
	TAILQ_INIT(&g->vms);
	TAILQ_INIT(&g->ops);
	if ((g->reap = event_new(base, -1, 0, gi_reap, g)) == NULL)
		fatalx("guestinfo: event_new failed");
	*out = g;
	return (VMOMI_OK);
}

/* Everything goes: requests aborted, the collector destroyed. */
static void
gi_free_now(struct guestinfo *g)
{
	struct gi_vm	*w;
	struct gi_op	*o;

	TAILQ_FOREACH(w, &g->vms, entry)
		gi_vm_end(g, w);
	TAILQ_FOREACH(o, &g->ops, entry) {
		vmomi_abort(g->v, o->req);
		o->over = 1;
	}
	vmomi_abort(g->v, g->pc_req);
	vmomi_abort(g->v, g->wait_req);
	if (g->state == GI_LIVE)
		vmomi_pc_destroy(g->v, &g->pc, g->freed_cb, g->freed_arg);
	else if (g->freed_cb != NULL)
		vmomi_session_active(g->v, g->freed_cb, g->freed_arg);
	gi_reap(-1, 0, g);
	event_free(g->reap);
	free(g->version);
	free(g);
}

/*
 * Free the channel, and call CB once the server has answered for its
 * collector (destroyed; or, without one, a SessionIsActive round trip),
 * always from the loop.
 */
void
guestinfo_free_cb(struct guestinfo *g, vmomi_done_cb *cb, void *arg)
{
	if (g == NULL || g->freeing)
		return;
	g->freed_cb = cb;
	g->freed_arg = arg;
	guestinfo_free(g);
}

/* Free the channel (deferred while one of its callbacks runs). */
void
guestinfo_free(struct guestinfo *g)
{
	if (g == NULL || g->freeing)
		return;
	g->freeing = 1;
	if (g->busy == 0)
		gi_free_now(g);
}

/* Start watching VM. */
uint64_t
guestinfo_watch(struct guestinfo *g, const char *vm, guestinfo_watch_cb *cb,
    void *arg)
{
	struct gi_vm	*w;

	if (g == NULL || g->freeing || vm == NULL)
		return (0);
	w = xcalloc(1, sizeof(*w));
	w->id = ++g->next_id;
	w->name = xstrdup(vm);
	w->cb = cb;
	w->arg = arg;
	w->state = GI_VM_FIND;
	TAILQ_INSERT_TAIL(&g->vms, w, entry);
	if (guestinfo_watching(g) > GUESTINFO_WATCH_MAX) {
		w->req = vmomi_find_vm(g->v, "", gi_vm_found, g);
		return (w->id);		/* fails VMOMI_E_ARG, later */
	}
	w->req = vmomi_find_vm(g->v, vm, gi_vm_found, g);
	return (w->id);
}

/* End watch ID. */
void
guestinfo_unwatch(struct guestinfo *g, uint64_t id)
{
	struct gi_vm	*w;

	if (g == NULL)
		return;
	TAILQ_FOREACH(w, &g->vms, entry)
		if (w->id == id) {
			gi_vm_end(g, w);
			return;
		}
}

/* Watches not over. */
size_t
guestinfo_watching(const struct guestinfo *g)
{
	struct gi_vm	*w;
	size_t		 n = 0;

	if (g == NULL)
		return (0);
	TAILQ_FOREACH(w, &g->vms, entry)
		if (w->state != GI_VM_DONE)
			n++;
	return (n);
}

/* ---- get and set ---- */

/* Report the end of O once; -1 when the channel was freed meanwhile. */
static int
gi_op_finish(struct guestinfo *g, struct gi_op *o, int err, const char *msg)
{
	if (o->over)
		return (0);
	o->over = 1;
	vmomi_abort(g->v, o->req);
	o->req = 0;
	if (err == VMOMI_OK)
		msg = NULL;
	else if (msg == NULL || msg[0] == '\0')
		msg = vmomi_strerror(err);
	g->busy++;
	if (o->kind == GI_OP_GET && o->get_cb != NULL)
		o->get_cb(o->id, err, msg, err == VMOMI_OK ? &o->ref : NULL,
		    err == VMOMI_OK ? &o->keys : NULL, o->arg);
	else if (o->kind == GI_OP_SET && o->done_cb != NULL)
		o->done_cb(o->id, err, msg, o->arg);
	return (gi_after_cb(g));
}

/* The operation waiting for vmomi request ID, or NULL. */
static struct gi_op *
gi_op_by_req(struct guestinfo *g, uint64_t id)
{
	struct gi_op	*o;

	TAILQ_FOREACH(o, &g->ops, entry)
		if (o->req == id && !o->over)
			return (o);
	return (NULL);
}

/* An early error, now from the loop. */
static void
gi_op_later(evutil_socket_t fd, short what, void *arg)
{
	struct gi_op	*o = arg;

	gi_op_finish(o->g, o, o->err, o->msg);
}

/* End O with ERR from the loop, not from the caller's stack. */
static void
gi_op_fail(struct gi_op *o, int err, const char *msg)
{
	o->err = err;
	strlcpy(o->msg, msg != NULL ? msg : "", sizeof(o->msg));
	event_active(o->later, EV_TIMEOUT, 0);
}

/* A page of a get: apply it; the last one reports. */
static void
gi_get_fetched(uint64_t id, int err, const char *msg,
    const struct vmomi_update *u, void *arg)
{
	struct guestinfo	*g = arg;
	struct gi_op		*o;
	char			 m2[GI_MSG_MAX];
	size_t			 i, j;
	int			 found = 0;

	if ((o = gi_op_by_req(g, id)) == NULL)
		return;
	if (err != VMOMI_OK) {
		gi_op_finish(g, o, err, msg);
		return;
	}
	for (i = 0; i < u->nobjects; i++) {
		if (strcmp(u->objects[i].obj.value, o->ref.value) != 0)
			continue;
		found = 1;
		for (j = 0; j < u->objects[i].nchanges; j++)
			if ((err = guestinfo_keys_apply(&o->keys,
			    &u->objects[i].changes[j], NULL, NULL, m2,
			    sizeof(m2))) != VMOMI_OK) {
				gi_op_finish(g, o, err, m2);
				return;
			}
	}
	if (!found && !u->more) {
		snprintf(m2, sizeof(m2), "VM %.200s is gone", o->name);
		gi_op_finish(g, o, VMOMI_E_NOTFOUND, m2);
	} else if (!u->more)
		gi_op_finish(g, o, VMOMI_OK, NULL);
}

/* A set's reconfigure task ended. */
static void
gi_set_done(uint64_t id, int err, const char *msg, void *arg)
{
	struct guestinfo	*g = arg;
	struct gi_op		*o;

	if ((o = gi_op_by_req(g, id)) != NULL)
		gi_op_finish(g, o, err, msg);
}

/* The VM of a get or set was found: retrieve, or reconfigure. */
static void
gi_op_found(uint64_t id, int err, const char *msg,
    const struct vmomi_moref *ref, void *arg)
{
	struct guestinfo	*g = arg;
	struct gi_op		*o;
	const char		*paths[2];
	struct vmomi_spec	 spec;

	if ((o = gi_op_by_req(g, id)) == NULL)
		return;
	o->req = 0;
	if (err != VMOMI_OK) {
		gi_op_finish(g, o, err, msg);
		return;
	}
	o->ref = *ref;
	if (o->kind == GI_OP_SET) {
		o->req = vmomi_reconfig_extra(g->v, &o->ref, o->opts,
		    o->nopts, gi_set_done, g);
		return;
	}
	paths[0] = gi_path(g);
	paths[1] = NULL;
	memset(&spec, 0, sizeof(spec));
	spec.obj = o->ref;
	spec.type = "VirtualMachine";
	spec.paths = paths;
	o->req = vmomi_retrieve(g->v, &spec, gi_get_fetched, g);
}

/* A new get or set on VM. */
static struct gi_op *
gi_op_new(struct guestinfo *g, enum gi_op_kind kind, const char *vm,
    void *arg)
{
	struct gi_op	*o;

	o = xcalloc(1, sizeof(*o));
	o->g = g;
	o->id = ++g->next_id;
	o->kind = kind;
	o->name = xstrdup(vm != NULL ? vm : "");
	o->arg = arg;
	if ((o->later = event_new(g->base, -1, 0, gi_op_later, o)) == NULL)
		fatalx("guestinfo: event_new failed");
	TAILQ_INSERT_TAIL(&g->ops, o, entry);
	return (o);
}

/* Read the guestinfo.* keys of VM. */
uint64_t
guestinfo_get(struct guestinfo *g, const char *vm, guestinfo_get_cb *cb,
    void *arg)
{
	struct gi_op	*o;

	if (g == NULL || g->freeing)
		return (0);
	o = gi_op_new(g, GI_OP_GET, vm, arg);
	o->get_cb = cb;
	o->req = vmomi_find_vm(g->v, o->name, gi_op_found, g);
	return (o->id);
}

/* Write N keys of VM in one reconfigure. */
uint64_t
guestinfo_set(struct guestinfo *g, const char *vm,
    const struct guestinfo_kv *kv, size_t n, vmomi_done_cb *cb, void *arg)
{
	struct gi_op	*o;
	char		 msg[GI_MSG_MAX], m2[GI_MSG_MAX];
	size_t		 i;

	if (g == NULL || g->freeing)
		return (0);
	o = gi_op_new(g, GI_OP_SET, vm, arg);
	o->done_cb = cb;
	if (kv == NULL || n == 0 || n > VMOMI_OPTIONS_MAX) {
		snprintf(msg, sizeof(msg), "1 to %d keys at once",
		    VMOMI_OPTIONS_MAX);
		gi_op_fail(o, VMOMI_E_ARG, msg);
		return (o->id);
	}
	for (i = 0; i < n; i++) {
		if (guestinfo_key_check(kv[i].key, msg, sizeof(msg)) !=
		    VMOMI_OK ||
		    guestinfo_value_check(kv[i].value, m2, sizeof(m2)) !=
		    VMOMI_OK) {
			if (msg[0] == '\0')
				snprintf(msg, sizeof(msg), "%.128s: %.300s",
				    kv[i].key, m2);
			gi_op_fail(o, VMOMI_E_ARG, msg);
			return (o->id);
		}
	}
	o->opts = xcalloc(n, sizeof(*o->opts));
	o->nopts = n;
	for (i = 0; i < n; i++) {
		o->opts[i].key = xstrdup(kv[i].key);
		o->opts[i].value = xstrdup(kv[i].value);
	}
	o->req = vmomi_find_vm(g->v, o->name, gi_op_found, g);
	return (o->id);
}
