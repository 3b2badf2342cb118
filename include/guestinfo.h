/*
 * guestinfo.h -- the guestinfo channel on libvmomi: read, watch and
 * write the guestinfo.* keys of VMs (their extraConfig), the channel
 * between containerVMs and the appliance (docs/guestinfo.md).
 *
 * Event-driven on the caller's loop and on a logged-in struct vmomi:
 * no call waits; every operation returns an id at once and reports
 * through its callback from the loop, never from inside the call.
 * Errors are VMOMI_E_* codes (vmomi_strerror) with a one-line reason;
 * a key or value the rules below refuse is VMOMI_E_ARG.  Re-login is
 * the caller's: a watch whose session ends reports the error and stops.
 *
 * Keys: "guestinfo." then 1 or more of [A-Za-z0-9._-], at most
 * GUESTINFO_KEY_MAX bytes in all (the guest's vmware-rpctool splits
 * "info-set KEY VALUE" at the first space, so a key can have none).
 * Values: UTF-8 without control characters other than tab, newline and
 * carriage return, at most GUESTINFO_VALUE_MAX bytes: the guest-to-VMX
 * channel carries at most 64 KB per message, overhead included, so a
 * longer value could be written here but never by the guest.  An empty
 * value deletes the key (as vSphere does); reading, an empty value is
 * the same as no key.  When a VM's extraConfig holds a key more than
 * once (govmomi's simulator appends on every reconfigure), the last
 * one wins.
 */
#ifndef VRELAY_GUESTINFO_H
#define VRELAY_GUESTINFO_H

#include <stddef.h>
#include <stdint.h>

#include "vmomi.h"

struct event_base;
struct guestinfo;

#define GUESTINFO_PREFIX	"guestinfo."
#define GUESTINFO_KEY_MAX	128		/* bytes, prefix included */
#define GUESTINFO_VALUE_MAX	64000		/* bytes */
#define GUESTINFO_KEYS_MAX	4096		/* guestinfo.* keys per VM */
#define GUESTINFO_WATCH_MAX	1024		/* VMs watched at once */
#define GUESTINFO_MAXWAIT_S	30		/* default long poll */

/* Which property a watch follows (see docs/guestinfo.md). */
enum guestinfo_path {
	GUESTINFO_PATH_EXTRA = 0,	/* config.extraConfig (vSphere) */
	GUESTINFO_PATH_CONFIG,		/* config: servers that report
					   extraConfig changes only there
					   (govmomi's simulator) */
};

struct guestinfo_conf {
	enum guestinfo_path	 path;
	int			 maxwait_s;	/* 0: GUESTINFO_MAXWAIT_S */
};

/* One key and its value. */
struct guestinfo_kv {
	char	*key;
	char	*value;
};

/* A VM's guestinfo.* keys, sorted by key; values never empty. */
struct guestinfo_keys {
	struct guestinfo_kv	*kv;
	size_t			 n;
	size_t			 cap;
};

enum guestinfo_ev {
	GUESTINFO_EV_VALUE = 1,	/* a key's value (initial or changed) */
	GUESTINFO_EV_READY,	/* every initial value was reported */
	GUESTINFO_EV_GONE,	/* the VM is gone; the watch is over */
	GUESTINFO_EV_ERROR,	/* the watch failed and is over */
};

struct guestinfo_event {
	enum guestinfo_ev		 type;
	const char			*vm;	/* as the caller named it */
	const struct vmomi_moref	*ref;	/* NULL before it is found */
	const char			*key;	/* VALUE */
	const char			*value;	/* VALUE; NULL: deleted */
	const char			*old;	/* VALUE; NULL: was not set */
	int				 initial; /* VALUE: first state */
	int				 err;	/* ERROR */
	const char			*msg;	/* ERROR */
};

typedef void	guestinfo_watch_cb(uint64_t, const struct guestinfo_event *,
		    void *);
typedef void	guestinfo_get_cb(uint64_t, int, const char *,
		    const struct vmomi_moref *, const struct guestinfo_keys *,
		    void *);
typedef void	guestinfo_diff_cb(const char *, const char *, const char *,
		    void *);

/* A channel on client V (logged in before operations start). */
int		 guestinfo_new(struct event_base *, struct vmomi *,
		    const struct guestinfo_conf *, struct guestinfo **);
/* Abort everything (no callbacks); the collector is destroyed. */
void		 guestinfo_free(struct guestinfo *);
/*
 * The same, then CB (from the loop) once the server has answered for
 * the collector's destroy: a Logout sent before that runs beside the
 * destroy on the server, which govmomi's simulator does not survive.
 */
void		 guestinfo_free_cb(struct guestinfo *, vmomi_done_cb *,
		    void *);

/* VMOMI_OK, or VMOMI_E_ARG and MSG saying why (see above). */
int		 guestinfo_key_check(const char *, char *, size_t);
int		 guestinfo_value_check(const char *, char *, size_t);

/*
 * The guestinfo.* keys of the VM named VM (name, inventory path or
 * UUID, as vmomi_find_vm): CB gets its moref and keys once.
 */
uint64_t	 guestinfo_get(struct guestinfo *, const char *,
		    guestinfo_get_cb *, void *);
/*
 * Write N keys of VM in one reconfigure (an empty value deletes),
 * followed to the task's end; every key and value is checked first.
 */
uint64_t	 guestinfo_set(struct guestinfo *, const char *,
		    const struct guestinfo_kv *, size_t, vmomi_done_cb *,
		    void *);
/*
 * Watch VM: its initial values (initial set), READY, then each change
 * once, old and new; GONE or ERROR end it.  One private collector
 * serves every watch of the channel, one filter per VM.
 */
uint64_t	 guestinfo_watch(struct guestinfo *, const char *,
		    guestinfo_watch_cb *, void *);
/* End watch ID (no more callbacks); unknown ids are fine. */
void		 guestinfo_unwatch(struct guestinfo *, uint64_t);
/* Watches still running. */
size_t		 guestinfo_watching(const struct guestinfo *);
/* The watch state's name: "idle", "creating", "live", "failed". */
const char	*guestinfo_state(const struct guestinfo *);

/*
 * Key sets, exposed for tests and fuzzers.  Apply one property change
 * of a VM -- "config", "config.extraConfig" (the whole set, duplicate
 * keys: the last wins) or "config.extraConfig[\"KEY\"]" (one entry) --
 * to K; CB (may be NULL) gets each key whose value changed (old, new;
 * NULL for absent).  Other properties are ignored.  VMOMI_E_PARSE
 * when the value is not an extraConfig, or over GUESTINFO_KEYS_MAX.
 */
int		 guestinfo_keys_apply(struct guestinfo_keys *,
		    const struct vmomi_change *, guestinfo_diff_cb *, void *,
		    char *, size_t);
/* KEY's value, or NULL. */
const char	*guestinfo_keys_get(const struct guestinfo_keys *,
		    const char *);
void		 guestinfo_keys_clear(struct guestinfo_keys *);

#endif
