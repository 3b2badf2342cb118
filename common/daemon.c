/*
 * daemon.c -- the loop-side plumbing vrelay and vappliance share.
 */
#include <sys/resource.h>
#include <sys/stat.h>

#include <errno.h>
#include <inttypes.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "cli.h"
#include "ctl.h"
#include "daemon.h"
#include "log.h"
#include "proto.h"
#include "text.h"
#include "xaddr.h"
#include "xmalloc.h"
#include "xtime.h"

/* The session defaults documented in docs/operations.md. */
void
daemon_sessconf_defaults(struct daemon_sessconf *sc)
{
	sc->hold_ms = 60000;
	sc->handshake_ms = 5000;
	sc->keepalive_ms = 5000;
	sc->replay_max = 4 * 1024 * 1024;
	sc->max_sessions = 100000;
	sc->max_pending = 1024;
	sc->idle_legs = 256;
}

/* Copy the daemon's session settings into the session layer's. */
void
daemon_sessconf_apply(const struct daemon_sessconf *sc, struct sess_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->hold_ms = sc->hold_ms;
	c->handshake_ms = sc->handshake_ms;
	c->keepalive_ms = sc->keepalive_ms;
	c->replay_max = (size_t)sc->replay_max;
	c->max_sessions = (size_t)sc->max_sessions;
	c->max_pending = (size_t)sc->max_pending;
	c->idle_max = (size_t)sc->idle_legs;
}

/* SIGINT or SIGTERM: leave the loop; the daemon's run() tears down. */
static void
daemon_signal_cb(evutil_socket_t sig, short ev, void *arg)
{
	struct daemon	*d = arg;

	log_info("signal=%s stopping", strsignal(sig));
	event_base_loopexit(d->base, NULL);
}

/*
 * Keep the heap's memory while bytes stream through.  A read takes a
 * 128 KiB evbuffer chain and the write frees it again; with glibc's
 * defaults a chain that size is an mmap() or, once the threshold has
 * moved, heap that is trimmed back as soon as 256 KiB lie free at its
 * top, so the next read faults every page in again (page faults were
 * ~8% of a bulk stream's CPU).  Chains come from the heap, and the heap
 * gives memory back beyond 8 MiB free.
 */
static void
daemon_malloc(void)
{
#ifdef __GLIBC__
	mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
	mallopt(M_TRIM_THRESHOLD, 8 * 1024 * 1024);
#endif
}

/* A log line waits (log_defer): write it once this loop pass is done. */
static void
daemon_log_wake(void *arg)
{
	struct daemon	*d = arg;

	event_active(d->logflush, EV_TIMEOUT, 0);
}

/* Write what the loop pass logged, in one go. */
static void
daemon_logflush_cb(evutil_socket_t fd, short ev, void *arg)
{
	log_flush();
}

/*
 * Links to a host may go (tls_link_wait): the pre-warm's hook; if a
 * host proved up, the sessions that waited (or backed off) try now.
 */
static void
daemon_wake_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct daemon	*d = arg;
	int		 up = d->wake_up;

	d->wake_up = 0;
	if (up) {
		sess_ctx_wake(d->sessions);
		sess_ctx_wake(d->clients);
	}
	if (d->woken != NULL)
		d->woken(d, up);
}

/* The event base and the signals every daemon handles. */
void
daemon_init(struct daemon *d, const char *prog)
{
	daemon_malloc();
	memset(d, 0, sizeof(*d));
	d->prog = prog;
	d->started_ms = xtime_mono_ms();
	signal(SIGPIPE, SIG_IGN);
	if ((d->base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	d->sigint = evsignal_new(d->base, SIGINT, daemon_signal_cb, d);
	d->sigterm = evsignal_new(d->base, SIGTERM, daemon_signal_cb, d);
	if (d->sigint == NULL || d->sigterm == NULL ||
	    evsignal_add(d->sigint, NULL) != 0 ||
	    evsignal_add(d->sigterm, NULL) != 0)
		fatalx("cannot install signal handlers");
	if ((d->logflush = event_new(d->base, -1, 0, daemon_logflush_cb,
	    d)) == NULL ||
	    (d->wake = evtimer_new(d->base, daemon_wake_cb, d)) == NULL)
		fatalx("event_new failed");
	log_defer(daemon_log_wake, d);
}

/* Turn on vsock emulation when a directory is given. */
void
daemon_vsock(const char *dir, long long cid)
{
	int	r;

	if (dir == NULL)
		return;
	if ((r = xaddr_vsock_emulate(dir, (uint32_t)cid)) != XADDR_OK)
		fatalx("--vsock-dir %s: %s%s%s", dir, xaddr_strerror(r),
		    r == XADDR_E_SYSTEM ? ": " : "",
		    r == XADDR_E_SYSTEM ? strerror(errno) : "");
	log_info("vsock emulated dir=%s cid=%lld", dir, cid);
}

/* Listen on ADDR; failing to is a startup error. */
struct evconnlistener *
daemon_listen(struct daemon *d, const char *str, evconnlistener_cb cb,
    void *arg, struct xaddr **addrp)
{
	struct evconnlistener	*l;
	struct xaddr		*a;
	int			 r;

	if ((r = xaddr_parse(str, &a)) != XADDR_OK)
		fatalx("listen address \"%s\": %s", str, xaddr_strerror(r));
	if ((r = daemon_listen_on(d, a, cb, arg, &l)) != XADDR_OK)
		fatalx("listen on %s: %s%s%s", xaddr_str(a), xaddr_strerror(r),
		    r == XADDR_E_SYSTEM ? ": " : "",
		    r == XADDR_E_SYSTEM ? strerror(errno) : "");
	*addrp = a;
	return (l);
}

/* Wake them from the loop (UP: a host is up); see daemon.h. */
void
daemon_wake(void *arg, int up)
{
	struct daemon	*d = arg;

	d->wake_up |= up;
	event_active(d->wake, EV_TIMEOUT, 0);
}

/* Load the daemon's TLS identity, or die saying what is wrong. */
void
daemon_tls(struct daemon *d, const struct daemon_tlsconf *tc,
    enum tls_role role)
{
	char	detail[300];
	int	r;

	if (tc->cert == NULL && tc->key == NULL && tc->ca == NULL)
		return;
	r = tls_new(tc->cert, tc->key, tc->ca, role, &d->tls, detail,
	    sizeof(detail));
	if (r != TLS_OK)
		fatalx("TLS: %s%s%s", tls_strerror(r),
		    r == TLS_E_SYSTEM || *detail != '\0' ? ": " : "",
		    r == TLS_E_SYSTEM ? strerror(errno) : detail);
	log_info("TLS on TCP links as %s (%s)", tls_strrole(role),
	    tc->cert);
	tls_set_wake(d->tls, daemon_wake, d);
}

/* Whether a link to or from A runs TLS. */
static int
daemon_tls_link(struct daemon *d, const struct xaddr *a, enum tls_role role)
{
	return (d->tls != NULL && role != TLS_ROLE_NONE &&
	    xaddr_type(a) == XADDR_TCP);
}

/* A bufferevent for a connect in progress on FD; see daemon.h. */
struct bufferevent *
daemon_connected(struct daemon *d, int fd, int up, const struct xaddr *a,
    enum tls_role role, const char *host)
{
	struct bufferevent	*bev;

	if (daemon_tls_link(d, a, role)) {
		if ((bev = tls_wrap(d->tls, d->base, fd, 0, role, host)) ==
		    NULL)
			close(fd);
		return (bev);
	}
	bev = bufferevent_socket_new(d->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		close(fd);
		return (NULL);
	}
	/* Connected or not, this reports BEV_EVENT_CONNECTED or an error. */
	if (!up)
		bufferevent_socket_connect(bev, NULL, 0);
	return (bev);
}

/* Whether a new link to HOST at A should wait; see daemon.h. */
int
daemon_link_wait(struct daemon *d, const struct xaddr *a, enum tls_role role,
    const char *host)
{
	return (daemon_tls_link(d, a, role) &&
	    tls_link_wait(d->tls, role, host));
}

/* A bufferevent for FD accepted on A; see daemon.h. */
struct bufferevent *
daemon_accepted(struct daemon *d, int fd, const struct xaddr *a,
    enum tls_role role)
{
	struct bufferevent	*bev;

	if (daemon_tls_link(d, a, role))
		bev = tls_wrap(d->tls, d->base, fd, 1, role, NULL);
	else
		bev = bufferevent_socket_new(d->base, fd,
		    BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		close(fd);
	return (bev);
}

/*
 * A client session's new leg on FD, whose connect to A is in progress
 * (sess_ops.connect): a plain socket goes to the session layer as it
 * is (a bufferevent would be made only to be taken apart).
 */
int
daemon_leg(struct daemon *d, int fd, int up, const struct xaddr *a,
    enum tls_role role, const char *host, struct sess_dial *dial,
    const char **desc)
{
	*dial = (struct sess_dial){ .fd = -1 };
	if (!daemon_tls_link(d, a, role)) {
		dial->fd = fd;
		dial->up = up;
		*desc = xaddr_str(a);
		return (0);
	}
	if ((dial->bev = daemon_connected(d, fd, 0, a, role, host)) == NULL) {
		*desc = "cannot set up the leg (out of memory)";
		return (-1);
	}
	*desc = xaddr_str(a);
	return (0);
}

#define DAEMON_REFUSE_LOG_MS	1000

/* A connection refused at accept; see daemon.h. */
void
daemon_refused(struct daemon *d, const char *fmt, ...)
{
	long long	 now = xtime_mono_ms();
	char		 why[512];
	va_list		 ap;

	d->refused++;
	if (d->refuse_log_ms != 0 &&
	    now - d->refuse_log_ms < DAEMON_REFUSE_LOG_MS) {
		d->refuse_quiet++;
		return;
	}
	va_start(ap, fmt);
	(void)vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (d->refuse_quiet > 0)
		log_warnx("%s (and %" PRIu64 " more refused in the last %lld "
		    "ms, not logged)", why, d->refuse_quiet,
		    now - d->refuse_log_ms);
	else
		log_warnx("%s", why);
	d->refuse_log_ms = now;
	d->refuse_quiet = 0;
}

/*
 * The client end of a session for the accepted connection FD from PEER
 * (its name in logs, its type for the socket's options) of guest G;
 * refused, FD closed and NULL returned, once LIMIT sessions exist.
 */
struct sess *
daemon_client(struct daemon *d, int fd, const struct xaddr_peer *peer,
    long long limit, const struct sess_guest *g)
{
	return (daemon_client_in(d, d->sessions, fd, peer, limit, g));
}

/* daemon_client() in the session context CTX. */
struct sess *
daemon_client_in(struct daemon *d, struct sess_ctx *ctx, int fd,
    const struct xaddr_peer *peer, long long limit,
    const struct sess_guest *g)
{
	if (sess_ctx_count(ctx) >= (size_t)limit) {
		daemon_refused(d, "guest=%s refused: session limit %lld "
		    "reached", peer->str, limit);
		close(fd);
		return (NULL);
	}
	if (g->name != NULL && (strlen(g->name) > PROTO_NAME_MAX ||
	    !text_utf8_ok(g->name, strlen(g->name)))) {
		daemon_refused(d, "guest=%s refused: its name is not 1 to %d "
		    "bytes of UTF-8 without control characters", peer->str,
		    PROTO_NAME_MAX);
		close(fd);
		return (NULL);
	}
	xaddr_tune(fd, peer->type);
	return (sess_client_new(ctx, fd, g));
}

/*
 * A client leg to A, the one place the daemon's legs go (a guest
 * agent's or vappliance's host relay): see daemon.h.
 */
int
daemon_dial(struct daemon *d, const struct xaddr *a, enum tls_role role,
    const char *host, struct sess_dial *dial, const char **desc)
{
	int	fd, up, e;

	if ((e = xaddr_connect(a, &fd, &up)) != XADDR_OK) {
		*desc = xaddr_why(e);
		return (-1);
	}
	return (daemon_leg(d, fd, up, a, role, host, dial, desc));
}

/* A forward's connect to A, as a bufferevent; see daemon.h. */
struct bufferevent *
daemon_dial_bev(struct daemon *d, const struct xaddr *a, enum tls_role role,
    const char *host, const char **desc)
{
	struct bufferevent	*bev;
	int			 fd, e;

	if ((e = xaddr_connect(a, &fd, NULL)) != XADDR_OK) {
		*desc = xaddr_why(e);
		return (NULL);
	}
	if ((bev = daemon_connected(d, fd, 0, a, role, host)) == NULL) {
		*desc = "cannot set up the connection (out of memory)";
		return (NULL);
	}
	*desc = xaddr_str(a);
	return (bev);
}

/* Listen on A into *LP; an xaddr code (errno set on XADDR_E_SYSTEM). */
int
daemon_listen_on(struct daemon *d, const struct xaddr *a,
    evconnlistener_cb cb, void *arg, struct evconnlistener **lp)
{
	int	fd, r;

	*lp = NULL;
	if ((r = xaddr_listen(a, 1024, &fd)) != XADDR_OK)
		return (r);
	/* Backlog 0: already listening (-1 would listen() again, at 128). */
	*lp = evconnlistener_new(d->base, cb, arg,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (*lp == NULL)
		fatalx("evconnlistener_new %s", xaddr_str(a));
	log_info("listening on %s", xaddr_str(a));
	return (XADDR_OK);
}

/* Where this process's emulated vSocket lives: {dir, cid}, or null. */
json_t *
daemon_vsock_json(void)
{
	if (xaddr_vsock_dir() == NULL)
		return (json_null());
	return (json_pack("{s:s, s:I}", "dir", xaddr_vsock_dir(), "cid",
	    (json_int_t)xaddr_vsock_cid()));
}

/*
 * This process's CPU time (user, system, ms) and resident memory (KiB,
 * from /proc: null where there is none), to read a daemon's cost per
 * byte or per session while it runs.
 */
json_t *
daemon_process_json(void)
{
	struct rusage	 ru;
	json_t		*rss = json_null();
	FILE		*fp;
	unsigned long	 res;

	if (getrusage(RUSAGE_SELF, &ru) == -1)
		memset(&ru, 0, sizeof(ru));
	if ((fp = fopen("/proc/self/statm", "r")) != NULL) {
		if (fscanf(fp, "%*u %lu", &res) == 1)
			rss = json_integer((json_int_t)res *
			    (sysconf(_SC_PAGESIZE) / 1024));
		fclose(fp);
	}
	return (json_pack("{s:I, s:I, s:o}",
	    "cpu_user_ms", (json_int_t)ru.ru_utime.tv_sec * 1000 +
	    ru.ru_utime.tv_usec / 1000,
	    "cpu_sys_ms", (json_int_t)ru.ru_stime.tv_sec * 1000 +
	    ru.ru_stime.tv_usec / 1000,
	    "rss_kib", rss));
}

/*
 * Simulation only ("migrate" on the status socket): do to this process
 * what a vMotion does to its VM.  Every vSocket leg is reset, the
 * vSocket listeners among the N in L/A close, the process moves to the
 * emulated directory REQ.vsock_dir (new CID REQ.vsock_cid, optional),
 * and the listeners open again there.  Memory, and so every session,
 * survives: the sessions resume on new legs.  Other sockets (TCP to a
 * backend, a guest agent's local listener) are untouched, as a VM's
 * network connections survive its vMotion.
 */
json_t *
daemon_migrate(struct daemon *d, json_t *req, struct evconnlistener **l,
    struct xaddr **a, size_t n, evconnlistener_cb cb, void *arg,
    const char **err)
{
	static char	 msg[300];
	json_t		*v, *ev, *relisted;
	const char	*dir, *old;
	char		*olddir;
	uint32_t	 cid, oldcid;
	size_t		 i, reset;
	int		 r;

	if ((old = xaddr_vsock_dir()) == NULL) {
		*err = "vsock is not emulated here (a real vMotion moves a "
		    "real VM)";
		return (NULL);
	}
	if ((v = json_object_get(req, "vsock_dir")) == NULL ||
	    (dir = json_string_value(v)) == NULL || *dir == '\0') {
		*err = "\"vsock_dir\": expected the new host's directory";
		return (NULL);
	}
	oldcid = cid = xaddr_vsock_cid();
	if ((v = json_object_get(req, "vsock_cid")) != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 3 ||
		    json_integer_value(v) > 0xfffffffeLL) {
			*err = "\"vsock_cid\": expected 3 to 4294967294";
			return (NULL);
		}
		cid = (uint32_t)json_integer_value(v);
	}
	olddir = xstrdup(old);
	for (i = 0; i < n; i++) {
		if (l[i] == NULL || xaddr_type(a[i]) != XADDR_VSOCK)
			continue;
		evconnlistener_free(l[i]);
		l[i] = NULL;
		xaddr_unlisten(a[i]);
	}
	if ((r = xaddr_vsock_emulate(dir, cid)) != XADDR_OK) {
		snprintf(msg, sizeof(msg), "\"vsock_dir\" %s: %s%s%s; staying "
		    "in %s", dir, xaddr_strerror(r),
		    r == XADDR_E_SYSTEM ? ": " : "",
		    r == XADDR_E_SYSTEM ? strerror(errno) : "", olddir);
		*err = msg;
		(void)xaddr_vsock_emulate(olddir, oldcid);
	}
	relisted = json_array();
	for (i = 0; i < n; i++) {
		if (l[i] != NULL || xaddr_type(a[i]) != XADDR_VSOCK)
			continue;
		if ((r = daemon_listen_on(d, a[i], cb, arg, &l[i])) !=
		    XADDR_OK) {
			log_warnx("migrate: listen on %s: %s", xaddr_str(a[i]),
			    xaddr_why(r));
			continue;
		}
		json_array_append_new(relisted, json_string(xaddr_str(a[i])));
	}
	/*
	 * The VM's listeners are at the destination the moment it runs
	 * there, while its old streams are torn down: listen first, then
	 * reset, so a peer that reconnects at once (a resume) does not
	 * find the listeners missing for as long as a thousand resets
	 * take.  A client's retry runs from the loop, after the move.
	 */
	reset = sess_ctx_reset_legs(d->sessions, "vsock://",
	    "vMotion: vSocket reset");
	if (d->clients != NULL)
		reset += sess_ctx_reset_legs(d->clients, "vsock://",
		    "vMotion: vSocket reset");
	log_info("migrated from %s to %s cid=%u legs_reset=%zu", olddir,
	    xaddr_vsock_dir(), xaddr_vsock_cid(), reset);
	ev = json_pack("{s:s, s:s, s:s, s:I, s:I, s:o}", "event", "migrated",
	    "from", olddir, "vsock_dir", xaddr_vsock_dir(),
	    "vsock_cid", (json_int_t)xaddr_vsock_cid(),
	    "legs_reset", (json_int_t)reset, "listen", relisted);
	free(olddir);
	if (*err != NULL) {
		json_decref(ev);
		return (NULL);
	}
	if (d->ctl != NULL)
		ctl_broadcast(d->ctl, ev);
	json_object_del(ev, "event");
	return (ev);
}

/* The status-event name of a session event. */
static const char *
daemon_evname(enum sess_event ev)
{
	switch (ev) {
	case SESS_EV_OPEN:
		return ("session-open");
	case SESS_EV_DETACHED:
		return ("session-detached");
	case SESS_EV_RESUMED:
		return ("session-resumed");
	case SESS_EV_CLOSED:
		return ("session-close");
	case SESS_EV_STATE:
		return ("session-state");
	}
	return ("session-unknown");
}

/* Free what daemon_init() and daemon_status() made. */
void
daemon_fini(struct daemon *d)
{
	ctl_free(d->ctl);
	d->ctl = NULL;
	log_defer(NULL, NULL);
	event_free(d->logflush);
	d->logflush = NULL;
	event_free(d->sigint);
	event_free(d->sigterm);
	/*
	 * Links freed with the base (a bufferevent_free() is finalized
	 * there) may end a probe and wake: not into a freed event.
	 */
	if (d->tls != NULL)
		tls_set_wake(d->tls, NULL, NULL);
	if (d->wake != NULL)
		event_free(d->wake);	/* libevent 2.1's takes no NULL */
	d->wake = NULL;
	event_base_free(d->base);
	tls_free(d->tls);
	d->tls = NULL;
	d->sigint = d->sigterm = NULL;
	d->base = NULL;
}

/* Open the status socket at PATH (none if NULL); failing is fatal. */
void
daemon_status(struct daemon *d, const char *path, const struct ctl_cmd *tab,
    size_t n, void *arg)
{
	int	e;

	if (path == NULL)
		return;
	if ((e = ctl_open(d->base, path, tab, n, arg, &d->ctl)) != CTL_OK)
		fatalx("status socket %s: %s%s%s", path, ctl_strerror(e),
		    e == CTL_E_SYSTEM ? ": " : "",
		    e == CTL_E_SYSTEM ? strerror(errno) : "");
	log_info("status socket %s", path);
}

/* One log line and one status event per session event. */
void
daemon_sess_event(struct daemon *d, struct sess *s, enum sess_event ev,
    const char *reason)
{
	json_t	*o;

	if (ev == SESS_EV_STATE) {
		log_debug("session=%s state %s", sess_idstr(s), reason);
		return;
	}
	o = NULL;
	if (d->ctl != NULL && ctl_nwatchers(d->ctl) > 0) {
		o = sess_json(s);
		json_object_set_new(o, "event",
		    json_string(daemon_evname(ev)));
		if (reason != NULL)
			json_object_set_new(o, ev == SESS_EV_RESUMED ? "leg" :
			    "reason", json_string(reason));
		if (ev == SESS_EV_RESUMED) {
			json_object_set_new(o, "resume_ms",
			    json_integer(sess_resume_ms(s)));
			json_object_set_new(o, "replay_bytes", json_integer(
			    (json_int_t)sess_resume_replay(s)));
		}
	}
	if (ev == SESS_EV_RESUMED)
		log_info("%s session=%s guest=%s/%u:%u leg=%s resume_ms=%lld "
		    "replay_bytes=%llu", daemon_evname(ev), sess_idstr(s),
		    sess_host(s), sess_cid(s), sess_port(s), reason,
		    sess_resume_ms(s),
		    (unsigned long long)sess_resume_replay(s));
	else
		log_info("%s session=%s guest=%s/%u:%u%s%s%s",
		    daemon_evname(ev), sess_idstr(s), sess_host(s),
		    sess_cid(s), sess_port(s),
		    reason != NULL ? " reason=\"" : "",
		    reason != NULL ? reason : "", reason != NULL ? "\"" : "");
	if (o != NULL) {
		ctl_broadcast(d->ctl, o);
		json_decref(o);
	}
}

/* Parse "run" arguments or explain what is wrong, then exit. */
void
daemon_parse(const char *prog, const struct conf_opt *tab, size_t n,
    void *cfg, int argc, char **argv)
{
	char	err[512];
	int	i;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0) {
			printf("usage: %s run [-c FILE.json] [options]\n",
			    prog);
			conf_usage(stdout, tab, n);
			exit(0);
		}
	}
	if (conf_parse(tab, n, cfg, argc, argv, err, sizeof(err)) != CONF_OK) {
		fprintf(stderr, "%s: %s\n", prog, err);
		fprintf(stderr, "try '%s run --help'\n", prog);
		exit(2);
	}
}

/* "sessions": every session of this daemon. */
json_t *
daemon_cmd_sessions(json_t *req, void *arg, const char **err)
{
	struct daemon	*d = arg;
	json_t		*a, *b;

	a = d->sessions != NULL ? sess_ctx_json(d->sessions) : json_array();
	if (d->clients != NULL) {
		b = sess_ctx_json(d->clients);
		json_array_extend(a, b);
		json_decref(b);
	}
	return (json_pack("{s:o}", "sessions", a));
}

/* "close-session": abort one session by id, on both ends. */
json_t *
daemon_cmd_close(json_t *req, void *arg, const char **err)
{
	struct daemon	*d = arg;
	const char	*id = json_string_value(json_object_get(req, "id"));
	struct sess	*s;
	char		*end;
	unsigned long long v;

	if (id == NULL || *id == '\0') {
		*err = "id: expected a session id string";
		return (NULL);
	}
	v = strtoull(id, &end, 16);
	s = NULL;
	if (*end == '\0' && d->sessions != NULL)
		s = sess_ctx_find(d->sessions, v);
	if (*end == '\0' && s == NULL && d->clients != NULL)
		s = sess_ctx_find(d->clients, v);
	if (s == NULL) {
		*err = "no such session";
		return (NULL);
	}
	sess_close(s, PROTO_E_SHUTDOWN, "closed by operator");
	return (json_object());
}

/* "log": change verbosity at run time. */
json_t *
daemon_cmd_log(json_t *req, void *arg, const char **err)
{
	static const char *const levels[] = { "warn", "info", "debug" };
	const char	*lv = json_string_value(json_object_get(req, "level"));
	int		 i;

	for (i = 0; lv != NULL && i < 3; i++) {
		if (strcmp(lv, levels[i]) == 0) {
			log_setlevel(i);
			return (json_object());
		}
	}
	*err = "level: expected warn, info or debug";
	return (NULL);
}

/* Session counts by state (only states that have sessions). */
json_t *
daemon_sess_summary(struct daemon *d)
{
	return (daemon_ctx_summary(d->sessions));
}

/* Session counts by state in CTX; {"count": 0} for NULL. */
json_t *
daemon_ctx_summary(struct sess_ctx *ctx)
{
	size_t	 counts[SESS_CLOSED + 1];
	json_t	*o, *stats;
	int	 st;

	if (ctx == NULL)
		return (json_pack("{s:i}", "count", 0));
	sess_ctx_states(ctx, counts);
	o = json_object();
	for (st = SESS_CONNECTING; st <= SESS_CLOSED; st++)
		if (counts[st] > 0)
			json_object_set_new(o, sess_strstate(st),
			    json_integer((json_int_t)counts[st]));
	json_object_set_new(o, "count",
	    json_integer((json_int_t)sess_ctx_count(ctx)));
	stats = sess_ctx_stats(ctx);
	json_object_update(o, stats);
	json_decref(stats);
	return (o);
}

/*
 * main() of every daemon binary: "run" starts the daemon, help prints
 * USAGE, anything else is a status-socket query (cli.c).
 */
int
daemon_main(const char *prog, int argc, char **argv,
    int (*run)(int, char **), const char *usage)
{
	if (argc < 2) {
		fputs(usage, stderr);
		return (2);
	}
	if (strcmp(argv[1], "run") == 0)
		return (run(argc - 2, argv + 2));
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    (strcmp(argv[1], "help") == 0 && argc == 2)) {
		fputs(usage, stdout);
		return (0);
	}
	log_init(prog, LOG_LEVEL_WARN);
	return (cli_query(prog, argv[1], argc - 2, argv + 2));
}
