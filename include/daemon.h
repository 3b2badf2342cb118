/*
 * daemon.h -- what vrelay and vappliance share around their loops:
 * signals, listeners, the session settings every daemon takes, and
 * turning session events into log lines and status-socket events.
 */
#ifndef VRELAY_DAEMON_H
#define VRELAY_DAEMON_H

#include <stddef.h>

#include <event2/listener.h>

#include "conf.h"
#include "sess.h"
#include "tls.h"

struct bufferevent;
struct ctl;
struct ctl_cmd;
struct xaddr;
struct xaddr_peer;

/* Session settings, embedded in each daemon's config struct. */
struct daemon_sessconf {
	long long	hold_ms;
	long long	handshake_ms;
	long long	keepalive_ms;
	long long	replay_max;
	long long	max_sessions;
	long long	max_pending;
	long long	idle_legs;
};

/* conf_opt rows for daemon_sessconf at offset OFF in the config. */
#define DAEMON_SESS_OPTS(OFF) \
	{ "hold-time", CONF_MSEC, (OFF) + offsetof(struct daemon_sessconf, \
	    hold_ms), 100, 86400000, 0, "DURATION", \
	    "keep a detached session this long (default 60s)" }, \
	{ "handshake-timeout", CONF_MSEC, (OFF) + \
	    offsetof(struct daemon_sessconf, handshake_ms), 100, 600000, 0, \
	    "DURATION", "per-leg handshake deadline (default 5s)" }, \
	{ "keepalive", CONF_MSEC, (OFF) + offsetof(struct daemon_sessconf, \
	    keepalive_ms), 100, 600000, 0, "DURATION", \
	    "PING period; a leg silent for 3 periods is dead (default 5s)" }, \
	{ "replay-max", CONF_SIZE, (OFF) + offsetof(struct daemon_sessconf, \
	    replay_max), 65536, 1LL << 32, 0, "SIZE", \
	    "unacknowledged bytes kept per session (default 4M)" }, \
	{ "max-sessions", CONF_INT, (OFF) + \
	    offsetof(struct daemon_sessconf, max_sessions), 1, 10000000, 0, \
	    "N", "sessions at most (default 100000)" }, \
	{ "max-handshakes", CONF_INT, (OFF) + \
	    offsetof(struct daemon_sessconf, max_pending), 1, 1000000, 0, \
	    "N", "legs in handshake at most (default 1024)" }, \
	{ "idle-legs", CONF_INT, (OFF) + \
	    offsetof(struct daemon_sessconf, idle_legs), 0, 65536, 0, "N", \
	    "legs kept open for the next session (default 256, 0: none)" }

/* Mutual TLS for TCP links (docs/security.md), in each daemon's config. */
struct daemon_tlsconf {
	char		*cert;
	char		*key;
	char		*ca;
};

/* conf_opt rows for daemon_tlsconf at offset OFF in the config. */
#define DAEMON_TLS_OPTS(OFF) \
	{ "tls-cert", CONF_STR, (OFF) + offsetof(struct daemon_tlsconf, \
	    cert), 0, 0, 0, "FILE", \
	    "this daemon's certificate (PEM chain): TLS on TCP links" }, \
	{ "tls-key", CONF_STR, (OFF) + offsetof(struct daemon_tlsconf, \
	    key), 0, 0, 0, "FILE", "its private key (PEM, mode 0600)" }, \
	{ "tls-ca", CONF_STR, (OFF) + offsetof(struct daemon_tlsconf, ca), \
	    0, 0, 0, "FILE", "the cluster CA that peers must chain to" }

/*
 * Each daemon's own struct starts with this one, so status commands
 * shared by all of them (below) can take the daemon as their argument.
 */
struct daemon {
	const char		*prog;
	struct sess_ctx		*sessions;
	struct sess_ctx		*clients;	/* a second set, or NULL */
	struct event_base	*base;
	struct ctl		*ctl;
	struct tls		*tls;	/* NULL: TCP links in plaintext */
	struct event		*sigint;
	struct event		*sigterm;
	struct event		*logflush;	/* deferred log lines go */
	struct event		*wake;		/* links may go */
	int			 wake_up;	/* ... a host proved up */
	/*
	 * Optional: links tls_link_wait() held may go (after sessions);
	 * UP: a host proved up.
	 */
	void			(*woken)(struct daemon *, int);
	long long		 started_ms;
	uint64_t		 refused;	/* connections, at accept */
	long long		 refuse_log_ms;	/* last refusal logged */
	uint64_t		 refuse_quiet;	/* refusals not logged since */
};

/* Defaults for the session settings, then apply them to a sess_conf. */
void	daemon_sessconf_defaults(struct daemon_sessconf *);
void	daemon_sessconf_apply(const struct daemon_sessconf *,
	    struct sess_conf *);

/*
 * A connection was refused at accept: count it and log why, at most
 * one line a second (a guest reconnecting in a loop must not flood the
 * log); the next line logged says how many were not.
 */
void	daemon_refused(struct daemon *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
/* Event base, signals (SIGINT/SIGTERM leave the loop), SIGPIPE ignored. */
void	daemon_init(struct daemon *, const char *);
/* Free the status socket, signals and event base. */
void	daemon_fini(struct daemon *);
/* Emulated vsock from --vsock-dir/--vsock-cid, or die. */
void	daemon_vsock(const char *, long long);
/* Listen on ADDR (fatal on failure: startup only). */
struct evconnlistener *daemon_listen(struct daemon *, const char *,
	    evconnlistener_cb, void *, struct xaddr **);
/*
 * Load --tls-cert/--tls-key/--tls-ca for a daemon playing ROLE (none
 * given: plaintext), or die saying why.
 */
void	daemon_tls(struct daemon *, const struct daemon_tlsconf *,
	    enum tls_role);
/*
 * A bufferevent for FD, whose connect to A is in progress: TLS when
 * this daemon has certificates, A is TCP and ROLE is not NONE (the
 * peer must carry ROLE and, unless HOST is NULL, name HOST).  It
 * reports BEV_EVENT_CONNECTED once usable, except a plain one whose
 * connect completed already (UP), which is usable now.  NULL: FD
 * closed.
 */
struct bufferevent *daemon_connected(struct daemon *, int, int,
	    const struct xaddr *, enum tls_role, const char *);
/*
 * Whether a new link to HOST at A, as daemon_connected() makes it,
 * should wait for another to HOST to prove its TLS ticket or bring one
 * (tls_link_wait); sessions that waited are woken when it proves the
 * host up (sess_ctx_wake), else try at their backoff; the daemon's
 * woken hook runs either way.
 */
int	daemon_link_wait(struct daemon *, const struct xaddr *, enum tls_role,
	    const char *);
/* The same for FD accepted on listener address A. */
struct bufferevent *daemon_accepted(struct daemon *, int,
	    const struct xaddr *, enum tls_role);
/*
 * From the loop: the daemon's woken hook, and if UP (a host proved up)
 * the sessions that waited for a link or backed off (sess_ctx_wake).
 * ARG is the struct daemon (a tls_set_wake callback).
 */
void	daemon_wake(void *, int);
/*
 * A client session's leg on FD, whose connect to A is in progress (or
 * done if UP), in *DIAL (sess_ops.connect): the socket itself, or a
 * TLS bufferevent (as daemon_connected() decides); *desc names A.  -1:
 * out of memory, FD closed, *desc says so.
 */
int	daemon_leg(struct daemon *, int, int, const struct xaddr *,
	    enum tls_role, const char *, struct sess_dial *, const char **);
/* A client session for an accepted guest, unless at the limit. */
struct sess *daemon_client(struct daemon *, int, const struct xaddr_peer *,
	    long long, const struct sess_guest *);
/* The same in the context CTX (e.g. the daemon's clients). */
struct sess *daemon_client_in(struct daemon *, struct sess_ctx *, int,
	    const struct xaddr_peer *, long long, const struct sess_guest *);
/*
 * sess_ops.connect for a client whose legs all go to A: connect, then
 * daemon_leg(); -1 with *desc saying why (retried with backoff).
 */
int	daemon_dial(struct daemon *, const struct xaddr *, enum tls_role,
	    const char *, struct sess_dial *, const char **);
/* Connect to A for a forward: daemon_connected(); NULL, *desc why. */
struct bufferevent *daemon_dial_bev(struct daemon *, const struct xaddr *,
	    enum tls_role, const char *, const char **);
/* Emulated vSocket {dir, cid} for status, or JSON null (new ref). */
json_t	*daemon_vsock_json(void);
/* This process's {cpu_user_ms, cpu_sys_ms, rss_kib} for status. */
json_t	*daemon_process_json(void);
/* Listen on an address; an xaddr code, errno set on XADDR_E_SYSTEM. */
int	daemon_listen_on(struct daemon *, const struct xaddr *,
	    evconnlistener_cb, void *, struct evconnlistener **);
/*
 * Simulation: the status command "migrate" {vsock_dir, vsock_cid}:
 * reset vSocket legs, move the N vSocket listeners in L/A to another
 * emulated directory (see daemon.c).  Returns the answer or NULL, *err.
 */
json_t	*daemon_migrate(struct daemon *, json_t *, struct evconnlistener **,
	    struct xaddr **, size_t, evconnlistener_cb, void *,
	    const char **);
/* Open the status socket (PATH NULL: none), or die saying why. */
void	daemon_status(struct daemon *, const char *, const struct ctl_cmd *,
	    size_t, void *);
/* Log a session event and broadcast it on the status socket. */
void	daemon_sess_event(struct daemon *, struct sess *, enum sess_event,
	    const char *);
/* Status commands every daemon has; ARG is its struct daemon. */
json_t	*daemon_cmd_sessions(json_t *, void *, const char **);
json_t	*daemon_cmd_close(json_t *, void *, const char **);
json_t	*daemon_cmd_log(json_t *, void *, const char **);
/* Session counts by state, for "status". */
json_t	*daemon_sess_summary(struct daemon *);
/* The same for one context (NULL: none, an empty summary). */
json_t	*daemon_ctx_summary(struct sess_ctx *);

/* Parse argv for "run" with TABLE into CFG, or print usage and exit. */
void	daemon_parse(const char *, const struct conf_opt *, size_t, void *,
	    int, char **);

/* main(): run, help, or a status query; returns the exit code. */
int	daemon_main(const char *, int, char **, int (*)(int, char **),
	    const char *);

#endif
