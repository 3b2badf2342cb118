/*
 * rpctool.h -- the guest agent's side of the guestinfo channel: publish
 * guestinfo.* keys through open-vm-tools' vmware-rpctool
 * ("info-set guestinfo.KEY VALUE"), run without a shell, one child at
 * a time, never blocking the loop (docs/guestinfo.md).
 */
#ifndef VRELAY_RPCTOOL_H
#define VRELAY_RPCTOOL_H

#include <jansson.h>

struct event_base;
struct rpctool;

#define RPCTOOL_NAME		"vmware-rpctool"
#define RPCTOOL_PENDING_MAX	64	/* distinct keys waiting */
#define RPCTOOL_TIMEOUT_MS	10000	/* one child, then SIGKILL */
#define RPCTOOL_REAP_MS		200	/* then look for its end this often */
#define RPCTOOL_OUTPUT_MAX	256	/* bytes of its output kept */

/*
 * PATH, or RPCTOOL_NAME found on $PATH when NULL.  Never fails: without
 * the tool the publisher is "unavailable" and drops what it is given.
 */
struct rpctool	*rpctool_new(struct event_base *, const char *);
void		 rpctool_free(struct rpctool *);
int		 rpctool_available(const struct rpctool *);
/*
 * Publish KEY (without the "guestinfo." prefix) = VALUE ("" deletes):
 * queued, coalesced with a pending value for the same key (the newest
 * wins), at most RPCTOOL_PENDING_MAX keys waiting (more are dropped
 * and counted).
 */
void		 rpctool_set(struct rpctool *, const char *, const char *);
/* "ok", "unavailable: ...", or "failing: <last error>". */
const char	*rpctool_state(const struct rpctool *);
/* Counters, pending keys and what was last published (new ref). */
json_t		*rpctool_json(const struct rpctool *);

#endif
