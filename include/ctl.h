/*
 * ctl.h -- the status socket: a unix socket (mode 0600, peers checked
 * with SO_PEERCRED: our uid or root) that speaks JSON lines.
 *
 * A request is one JSON object on one line: {"cmd": "NAME", ...}.
 * The answer is one line: {"ok": true, ...} or {"ok": false,
 * "error": "..."}.  A command flagged CTL_WATCH leaves the connection
 * open after its answer and streams every ctl_broadcast() event to it
 * as one JSON object per line.  Requests are capped (CTL_LINE_MAX); a
 * malformed or oversized request gets an error and that client is
 * closed, never the daemon.  "help" is built in and lists the table.
 */
#ifndef VRELAY_CTL_H
#define VRELAY_CTL_H

#include <stddef.h>
#include <jansson.h>

struct event_base;

#define CTL_OK			0
#define CTL_E_SYSTEM		(-1)	/* errno says why */
#define CTL_E_PATH		(-2)	/* socket path too long or live */
#define CTL_E_PROTO		(-3)	/* peer sent something not JSON */
#define CTL_E_TIMEOUT		(-4)
#define CTL_E_CLOSED		(-5)	/* peer closed the connection */
#define CTL_E_TOOBIG		(-6)	/* line over CTL_LINE_MAX */

#define CTL_LINE_MAX		(64 * 1024)	/* one request line */
#define CTL_WATCH_MAX		(1024 * 1024)	/* queued events per watcher */
#define CTL_EVENT_MAX		(256 * 1024)	/* one event line */
#define CTL_ANSWER_MAX		(32 * 1024 * 1024) /* one answer line */

#define CTL_WATCH		0x1	/* subscribe the client to events */

struct ctl;

/*
 * A command.  FN returns a new reference to the answer object (ctl
 * adds "ok": true) or NULL with *ERR set to a static or
 * ctl-freed-later message (ctl adds "ok": false).
 */
struct ctl_cmd {
	const char	*name;
	const char	*help;
	int		 flags;
	json_t		*(*fn)(json_t *req, void *arg, const char **err);
};

const char	*ctl_strerror(int);

/* Listen on PATH with TABLE of N commands; ARG goes to every fn. */
int		 ctl_open(struct event_base *, const char *,
		    const struct ctl_cmd *, size_t, void *, struct ctl **);
/*
 * The server's work for one request LINE of LEN bytes (no newline)
 * with TABLE of N commands and ARG, without a socket: the answer (new
 * reference; "ok" false with "error" for any refusal), or NULL for a
 * blank line.  *WHAT gets CTL_LINE_CLOSE when the server then closes
 * the client (the line is not JSON), CTL_LINE_WATCH when it streams
 * events to it from then on.  The status socket runs every line
 * through here; the fuzzer calls it directly.
 */
#define CTL_LINE_CLOSE		0x1
#define CTL_LINE_WATCH		0x2
json_t		*ctl_line(const struct ctl_cmd *, size_t, void *,
		    const char *, size_t, int *);
/* Close every client, remove the socket; NULL is fine. */
void		 ctl_free(struct ctl *);
/*
 * Send EVENT (borrowed) to every watcher, with "ts" (ms since the
 * epoch) added.  A watcher whose queue passes CTL_WATCH_MAX is dropped.
 * An event longer than CTL_EVENT_MAX reaches watchers as {"event":
 * "dropped", "dropped": its "event", "bytes": its length}, and the call
 * returns CTL_E_TOOBIG; else CTL_OK.
 */
int		 ctl_broadcast(struct ctl *, json_t *);
size_t		 ctl_nwatchers(const struct ctl *);
/*
 * A client that sends nothing for MS, or leaves an answer unread for
 * MS, is closed (default 60 s; watchers only by CTL_WATCH_MAX).
 * Applies to clients that connect afterwards.
 */
void		 ctl_set_idle(struct ctl *, int);

/* Client side, blocking: one request, one answer (new reference). */
int		 ctl_request(const char *, json_t *, int, json_t **);
/*
 * Client side, blocking: send REQ (a CTL_WATCH command), then call CB
 * for the answer and each event until CB returns nonzero or the
 * daemon closes the socket.
 */
int		 ctl_watch(const char *, json_t *,
		    int (*)(json_t *, void *), void *);

#endif
