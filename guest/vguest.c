/*
 * vguest.c -- the guest agent in a containerVM.
 *
 * An unmodified program connects to a local listener (unix or tcp on
 * the guest's own loopback); the agent is the client end of a
 * resumable session for each connection (common/sess.c), and its legs
 * go over vSocket to the relay on whatever host the VM runs on now
 * (vrelay --agent-listen, which forwards them opaquely).  A vMotion of
 * the containerVM resets its vSocket streams and puts it on another
 * host: the agent's legs break, the next leg reaches the new host's
 * relay, and the session resumes with the appliance end, so the
 * program's connection never sees the move.  Without the agent the
 * ingress relay is the session end, and a containerVM vMotion resets
 * the guest's connection.
 *
 * Under emulation the status command "migrate" plays the vMotion.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "conf.h"
#include "ctl.h"
#include "daemon.h"
#include "frame.h"
#include "log.h"
#include "xaddr.h"
#include "xtime.h"

#define GUEST_LISTEN_MAX	16

struct guest_conf {
	char			*name;
	struct conf_list	 listen;
	char			*relay;
	char			*status;
	char			*vsock_dir;
	long long		 vsock_cid;
	int			 debug;
	int			 quiet;
	struct daemon_sessconf	 sess;
};

struct guest {
	struct daemon		 d;	/* first: see daemon.h */
	struct guest_conf	 conf;
	struct xaddr		*relay;
	struct evconnlistener	*listen_l[GUEST_LISTEN_MAX];
	struct xaddr		*listen_a[GUEST_LISTEN_MAX];
	size_t			 nlisten;
	uint64_t		 accepted;
	uint64_t		 migrations;
};

#define OPT(f)	offsetof(struct guest_conf, f)

static const struct conf_opt guest_opts[] = {
	{ "name", CONF_STR, OPT(name), 0, 0, CONF_REQUIRED, "NAME",
	    "this containerVM's name (the session's host field)" },
	{ "listen", CONF_STRLIST, OPT(listen), 0, 0, CONF_REQUIRED, "ADDR",
	    "accept local programs here (unix:PATH or tcp://127.0.0.1:PORT)" },
	{ "relay", CONF_STR, OPT(relay), 0, 0, 0, "ADDR",
	    "the host relay's agent listener (default vsock://2:2001)" },
	{ "status", CONF_STR, OPT(status), 0, 0, 0, "PATH",
	    "status socket (unix, mode 0600)" },
	{ "vsock-dir", CONF_STR, OPT(vsock_dir), 0, 0, 0, "DIR",
	    "emulate vsock in DIR (the simulated host this VM runs on)" },
	{ "vsock-cid", CONF_INT, OPT(vsock_cid), 3, 0xfffffffeLL, 0, "CID",
	    "this VM's CID under emulation (default 4)" },
	{ "debug", CONF_BOOL, OPT(debug), 0, 0, 0, NULL,
	    "log debug lines (state changes)" },
	{ "quiet", CONF_BOOL, OPT(quiet), 0, 0, 0, NULL,
	    "log warnings only" },
	DAEMON_SESS_OPTS(OPT(sess)),
};
#define NOPTS	(sizeof(guest_opts) / sizeof(guest_opts[0]))

static json_t	*guest_status(json_t *, void *, const char **);
static json_t	*guest_watch(json_t *, void *, const char **);
static json_t	*guest_migrate(json_t *, void *, const char **);

static const struct ctl_cmd guest_cmds[] = {
	{ "status", "agent, relay and session summary", 0, guest_status },
	{ "sessions", "every session this agent is the client end of", 0,
	    daemon_cmd_sessions },
	{ "watch", "stream events: session open/detach/resume/close, "
	    "migrations", CTL_WATCH, guest_watch },
	{ "close-session", "abort one session: {id}", 0, daemon_cmd_close },
	{ "migrate", "simulation: vMotion to another emulated host: "
	    "{vsock_dir, vsock_cid}", 0, guest_migrate },
	{ "log", "set verbosity: {level: warn|info|debug}", 0,
	    daemon_cmd_log },
};

/* The agent at a glance. */
static json_t *
guest_status(json_t *req, void *arg, const char **err)
{
	struct guest	*g = arg;
	json_t		*l;
	size_t		 i;

	l = json_array();
	for (i = 0; i < g->nlisten; i++)
		json_array_append_new(l,
		    json_string(xaddr_str(g->listen_a[i])));
	return (json_pack("{s:s, s:s, s:I, s:I, s:o, s:s, s:o, s:o, s:I, "
	    "s:I}",
	    "daemon", "vguest", "name", g->conf.name,
	    "pid", (json_int_t)getpid(),
	    "uptime_ms", (json_int_t)(xtime_mono_ms() - g->d.started_ms),
	    "listen", l, "relay", xaddr_str(g->relay),
	    "vsock", daemon_vsock_json(),
	    "sessions", daemon_sess_summary(&g->d),
	    "accepted", (json_int_t)g->accepted,
	    "migrations", (json_int_t)g->migrations));
}

static json_t *
guest_watch(json_t *req, void *arg, const char **err)
{
	return (json_pack("{s:s}", "watching", "vguest"));
}

/*
 * Simulation: this containerVM's vMotion.  Its legs reset and the next
 * ones reach the new host's relay; local programs see nothing.
 */
static json_t *
guest_migrate(json_t *req, void *arg, const char **err)
{
	struct guest	*g = arg;
	json_t		*o;

	if ((o = daemon_migrate(&g->d, req, NULL, NULL, 0, NULL, NULL,
	    err)) != NULL)
		g->migrations++;
	return (o);
}

/* Open a leg to the relay of the host this VM runs on now. */
static struct bufferevent *
guest_connect(struct sess *s, void *arg, const char **desc)
{
	struct guest	*g = arg;

	return (daemon_dial(&g->d, g->relay, TLS_ROLE_NONE, NULL, desc));
}

static void
guest_event(struct sess *s, enum sess_event ev, const char *reason,
    void *arg)
{
	struct guest	*g = arg;

	daemon_sess_event(&g->d, s, ev, reason);
}

/*
 * A local program connected: a new session, identified by this VM's
 * name and CID (a guest's identity is its VM, not the local port).
 */
static void
guest_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct guest		*g = arg;
	struct xaddr_peer	 peer;
	struct sess_guest	 sg = { .host = g->conf.name,
				    .cid = xaddr_vsock_cid(), .port = 0,
				    .service = PROTO_SVC_STREAM };

	xaddr_peer_describe(sa, salen, &peer);
	if (daemon_client(&g->d, fd, peer.str, g->conf.sess.max_sessions,
	    &sg) != NULL)
		g->accepted++;
}

/* vguest run: configure, listen, loop, tear down. */
static int
guest_run(int argc, char **argv)
{
	static const struct sess_ops	 ops = {
		.connect = guest_connect,
		.event = guest_event,
	};
	struct guest			 g;
	struct sess_conf		 sc;
	size_t				 i;
	int				 e;

	memset(&g, 0, sizeof(g));
	g.conf.vsock_cid = 4;
	daemon_sessconf_defaults(&g.conf.sess);
	daemon_parse("vguest", guest_opts, NOPTS, &g.conf, argc, argv);
	log_init("vguest", g.conf.debug ? LOG_LEVEL_DEBUG :
	    g.conf.quiet ? LOG_LEVEL_WARN : LOG_LEVEL_INFO);
	if (*g.conf.name == '\0' || frame_host_ok(g.conf.name,
	    strlen(g.conf.name)) != 0)
		fatalx("--name \"%s\": expected 1 to 255 printable ASCII "
		    "characters, no spaces", g.conf.name);
	if (g.conf.listen.n > GUEST_LISTEN_MAX)
		fatalx("--listen: at most %d", GUEST_LISTEN_MAX);
	daemon_init(&g.d, "vguest");
	daemon_vsock(g.conf.vsock_dir, g.conf.vsock_cid);
	if ((e = xaddr_parse(g.conf.relay != NULL ? g.conf.relay :
	    "vsock://2:2001", &g.relay)) != XADDR_OK)
		fatalx("--relay \"%s\": %s", g.conf.relay, xaddr_strerror(e));
	if (xaddr_type(g.relay) == XADDR_VSOCK &&
	    xaddr_cid(g.relay) == XADDR_CID_ANY)
		fatalx("--relay %s: give the host's CID (2), not any",
		    xaddr_str(g.relay));
	daemon_sessconf_apply(&g.conf.sess, &sc);
	g.d.sessions = sess_ctx_new(g.d.base, SESS_CLIENT, &sc, &ops, &g);
	for (i = 0; i < g.conf.listen.n; i++) {
		g.listen_l[g.nlisten] = daemon_listen(&g.d, g.conf.listen.v[i],
		    guest_accept_cb, &g, &g.listen_a[g.nlisten]);
		if (xaddr_type(g.listen_a[g.nlisten]) == XADDR_VSOCK)
			fatalx("--listen %s: local programs connect over "
			    "unix or tcp; vSocket is the agent's uplink",
			    g.conf.listen.v[i]);
		g.nlisten++;
	}
	/* Last, so a status socket means the daemon is ready. */
	daemon_status(&g.d, g.conf.status, guest_cmds,
	    sizeof(guest_cmds) / sizeof(guest_cmds[0]), &g);
	log_info("vguest started name=%s relay=%s pid=%ld", g.conf.name,
	    xaddr_str(g.relay), (long)getpid());

	event_base_dispatch(g.d.base);

	log_info("vguest stopping sessions=%zu",
	    sess_ctx_count(g.d.sessions));
	for (i = 0; i < g.nlisten; i++) {
		evconnlistener_free(g.listen_l[i]);
		xaddr_unlisten(g.listen_a[i]);
		xaddr_free(g.listen_a[i]);
	}
	sess_ctx_free(g.d.sessions);
	xaddr_free(g.relay);
	daemon_fini(&g.d);
	conf_free(guest_opts, NOPTS, &g.conf);
	return (0);
}

static const char usage[] =
	"usage: vguest run [-c FILE.json] [options]   run the guest agent\n"
	"       vguest status   --status PATH [--json]\n"
	"       vguest sessions --status PATH [--json]\n"
	"       vguest watch    --status PATH [--json]\n"
	"       vguest migrate  --status PATH --arg vsock_dir=DIR "
	"[--arg vsock_cid:=N]\n"
	"       vguest help --status PATH      commands the daemon takes\n"
	"       vguest run --help              every run option\n";

/* vguest: run the agent, or query one (daemon_main). */
int
main(int argc, char **argv)
{
	return (daemon_main("vguest", argc, argv, guest_run, usage));
}
