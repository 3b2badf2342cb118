/*
 * vappliance.c -- the appliance endpoint: main, configuration, loop,
 * status commands.
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

#include "appliance.h"
#include "conf.h"
#include "ctl.h"
#include "log.h"
#include "xaddr.h"
#include "xtime.h"

#define OPT(f)	offsetof(struct appliance_conf, f)

static const struct conf_opt appliance_opts[] = {
	{ "listen", CONF_STRLIST, OPT(listen), 0, 0, CONF_REQUIRED, "ADDR",
	    "accept session legs here (vsock://any:PORT in production)" },
	{ "backend", CONF_STR, OPT(backend), 0, 0, CONF_REQUIRED, "ADDR",
	    "the local service; one connection per session" },
	{ "vmomi-listen", CONF_STRLIST, OPT(vmomi_listen), 0, 0, 0, "ADDR",
	    "accept vSphere SOAP clients here (tcp://127.0.0.1:PORT or "
	    "unix:PATH); each connection goes to the locator's agent as a "
	    "session" },
	{ "vmomi-relay", CONF_STR, OPT(vmomi_relay), 0, 0, 0, "ADDR",
	    "the host relay's vmomi listener (default vsock://2:2003)" },
	{ "proxy-v2", CONF_BOOL, OPT(proxy_v2), 0, 0, 0, NULL,
	    "send a PROXY v2 header with the guest's identity to the backend" },
	{ "vspc-motion-timeout", CONF_MSEC, OPT(serial.motion_ms), 100,
	    86400000, 0, "DURATION", "vSPC: a vMotion's GOAHEAD to COMPLETE "
	    "at most (default 120s)" },
	{ "vspc-ident-timeout", CONF_MSEC, OPT(serial.ident_ms), 100,
	    600000, 0, "DURATION", "vSPC: a new connection names its VM "
	    "within (default 10s)" },
	{ "serial-hold", CONF_MSEC, OPT(serial.hold_ms), 100, 86400000, 0,
	    "DURATION", "keep a serial VM's backend connection this long "
	    "with no VM side (default 60s)" },
	{ "serial-buffer", CONF_SIZE, OPT(serial.buffer_max), 4096,
	    1LL << 30, 0, "SIZE", "bytes held per serial VM, each way "
	    "(default 1M)" },
	{ "status", CONF_STR, OPT(status), 0, 0, 0, "PATH",
	    "status socket (unix, mode 0600)" },
	{ "vsock-dir", CONF_STR, OPT(vsock_dir), 0, 0, 0, "DIR",
	    "emulate vsock in DIR (the simulated host this VM runs on)" },
	{ "vsock-cid", CONF_INT, OPT(vsock_cid), 3, 0xfffffffeLL, 0, "CID",
	    "this VM's CID under emulation (default 3)" },
	{ "debug", CONF_BOOL, OPT(debug), 0, 0, 0, NULL,
	    "log debug lines (state changes)" },
	{ "quiet", CONF_BOOL, OPT(quiet), 0, 0, 0, NULL,
	    "log warnings only" },
	DAEMON_SESS_OPTS(OPT(sess)),
	DAEMON_TLS_OPTS(OPT(tls)),
};
#define NOPTS	(sizeof(appliance_opts) / sizeof(appliance_opts[0]))

static json_t	*appliance_status(json_t *, void *, const char **);
static json_t	*appliance_watch(json_t *, void *, const char **);
static json_t	*appliance_migrate(json_t *, void *, const char **);

static const struct ctl_cmd appliance_cmds[] = {
	{ "status", "endpoint, listener and session summary", 0,
	    appliance_status },
	{ "sessions", "every session this endpoint terminates, then its "
	    "vmomi sessions (client end)", 0, daemon_cmd_sessions },
	{ "watch", "stream events: session open/close/detach/resume",
	    CTL_WATCH, appliance_watch },
	{ "close-session", "abort one session: {id}", 0, daemon_cmd_close },
	{ "migrate", "simulation: vMotion to another emulated host: "
	    "{vsock_dir, vsock_cid}", 0, appliance_migrate },
	{ "log", "set verbosity: {level: warn|info|debug}", 0,
	    daemon_cmd_log },
};

/* The endpoint at a glance. */
static json_t *
appliance_status(json_t *req, void *arg, const char **err)
{
	struct appliance	*a = arg;
	json_t			*l, *vl, *vmomi;
	size_t			 i;

	l = json_array();
	for (i = 0; i < a->nlisten; i++)
		json_array_append_new(l,
		    json_string(xaddr_str(a->listen_a[i])));
	vl = json_array();
	for (i = 0; i < a->nvmomi; i++)
		json_array_append_new(vl,
		    json_string(xaddr_str(a->vmomi_a[i])));
	vmomi = json_pack("{s:o, s:s, s:I, s:I, s:o}", "listen", vl,
	    "relay", xaddr_str(a->vmomi_relay),
	    "accepted", (json_int_t)a->vmomi_accepted,
	    "refused", (json_int_t)a->d.refused,
	    "sessions", daemon_ctx_summary(a->d.clients));
	return (json_pack("{s:s, s:I, s:I, s:o, s:o, s:o, s:s, s:b, s:o, "
	    "s:{s:I, s:I, s:I}, s:o, s:o, s:o}",
	    "daemon", "vappliance", "pid", (json_int_t)getpid(),
	    "uptime_ms", (json_int_t)(xtime_mono_ms() - a->d.started_ms),
	    "process", daemon_process_json(),
	    "listen", l, "vsock", daemon_vsock_json(),
	    "backend", xaddr_str(a->backend),
	    "proxy_v2", a->conf.proxy_v2,
	    "sessions", daemon_sess_summary(&a->d),
	    "legs", "accepted", (json_int_t)a->legs,
	    "refused", (json_int_t)a->refused,
	    "backend_failures", (json_int_t)a->backend_fail,
	    "tls", tls_json(a->d.tls), "serial", serial_json(a->serial),
	    "vmomi", vmomi));
}

static void	appliance_accept_cb(struct evconnlistener *, evutil_socket_t,
		    struct sockaddr *, int, void *);

/*
 * Simulation: a vMotion of the appliance VM.  Legs reset (the vmomi
 * sessions' too: daemon_migrate resets d.clients, whose legs then go
 * to the new host's relay), the vSocket listeners move; sessions and
 * backend connections stay.
 */
static json_t *
appliance_migrate(json_t *req, void *arg, const char **err)
{
	struct appliance	*a = arg;

	return (daemon_migrate(&a->d, req, a->listen_l, a->listen_a,
	    a->nlisten, appliance_accept_cb, a, err));
}

/* Subscribe to session events. */
static json_t *
appliance_watch(json_t *req, void *arg, const char **err)
{
	return (json_pack("{s:s}", "watching", "vappliance"));
}

/*
 * A session was admitted: a stream gets its own backend connection, a
 * serial port goes to its VM's (serial.c).
 */
static int
appliance_open(struct sess *s, void *arg, const char **why)
{
	struct appliance	*a = arg;
	uint8_t			 hdr[PROXY_HDR_MAX];
	size_t			 len = 0;
	int			 fd, e;

	switch (sess_service(s)) {
	case PROTO_SVC_STREAM:
		break;
	case PROTO_SVC_VSPC:
	case PROTO_SVC_SERIAL:
		if ((e = serial_open(a->serial, s, why)) == PROTO_E_BACKEND)
			a->backend_fail++;
		return (e);
	default:
		*why = "no such service here";
		return (PROTO_E_SERVICE);
	}
	if ((e = xaddr_connect(a->backend, &fd, NULL)) != XADDR_OK) {
		a->backend_fail++;
		*why = xaddr_why(e);
		log_warnx("session=%s backend %s unreachable: %s",
		    sess_idstr(s), xaddr_str(a->backend), *why);
		return (PROTO_E_BACKEND);
	}
	if (a->conf.proxy_v2)
		len = proxy_v2_header(hdr, sizeof(hdr), sess_host(s),
		    sess_cid(s), sess_port(s), sess_idstr(s));
	sess_set_local(s, fd, hdr, len);
	return (0);
}

/* Session events go to the log and the status socket. */
static void
appliance_event(struct sess *s, enum sess_event ev, const char *reason,
    void *arg)
{
	struct appliance	*a = arg;

	daemon_sess_event(&a->d, s, ev, reason);
}

/* A leg refused before it joined a session: log and tell watchers. */
static void
appliance_refused(const char *peer, const char *reason, void *arg)
{
	struct appliance	*a = arg;
	json_t			*o;

	a->refused++;
	log_info("leg refused peer=%s reason=\"%s\"", peer, reason);
	o = json_pack("{s:s, s:s, s:s}", "event", "leg-refused",
	    "peer", peer, "reason", reason);
	ctl_broadcast(a->d.ctl, o);
	json_decref(o);
}

/*
 * A vmomi session's new leg: to the relay of the host this VM runs on
 * now (vsock://2:2003 reaches whichever host that is).
 */
static int
appliance_vmomi_connect(struct sess *s, void *arg, struct sess_dial *dial,
    const char **desc)
{
	struct appliance	*a = arg;

	return (daemon_dial(&a->d, a->vmomi_relay, TLS_ROLE_NONE, NULL,
	    dial, desc));
}

/*
 * A vSphere client (govc, pyvmomi) connected: the client end of a
 * session to the locator's agent, as vguest is for its programs.  The
 * agent does not believe what HELLO says about us: the relay attests
 * the leg's vSocket peer (docs/protocol.md).
 */
static void
appliance_vmomi_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct appliance	*a = arg;
	struct xaddr_peer	 peer;
	struct sess_guest	 sg = { .host = "vappliance",
				    .cid = xaddr_vsock_cid(),
				    .service = PROTO_SVC_VMOMI };

	xaddr_peer_describe(sa, salen, &peer);
	sg.port = peer.port;
	if (daemon_client_in(&a->d, a->d.clients, fd, &peer,
	    a->conf.sess.max_sessions, &sg) != NULL)
		a->vmomi_accepted++;
}

/*
 * A --vmomi-listen address, or die: whoever connects gets the agent's
 * rights with no credentials, so only unix:PATH (its file mode decides
 * which local users) or loopback tcp; never vsock (that is the way out).
 */
static void
appliance_vmomi_check(const char *addr)
{
	struct xaddr	*xa;
	int		 e;

	if ((e = xaddr_parse(addr, &xa)) != XADDR_OK)
		fatalx("--vmomi-listen \"%s\": %s", addr, xaddr_strerror(e));
	if (xaddr_type(xa) == XADDR_VSOCK)
		fatalx("--vmomi-listen %s: vSphere clients connect over tcp "
		    "or unix; vSocket is the way out", addr);
	if (xaddr_type(xa) == XADDR_TCP && !xaddr_loopback(xa))
		fatalx("--vmomi-listen %s: not a loopback address; every "
		    "host that reached it would have the vmomi agent's "
		    "rights with no credentials: use unix:PATH (mode 0600 "
		    "or a group's) or tcp://127.0.0.1:PORT", addr);
	xaddr_free(xa);
}

/* --vmomi-listen and --vmomi-relay, or die saying what is wrong. */
static void
appliance_vmomi_init(struct appliance *a, const struct sess_conf *sc)
{
	static const struct sess_ops	 ops = {
		.connect = appliance_vmomi_connect,
		.event = appliance_event,
	};
	const char			*relay;
	size_t				 i;
	int				 e;

	if (a->conf.vmomi_listen.n > APPLIANCE_LISTEN_MAX)
		fatalx("--vmomi-listen: at most %d", APPLIANCE_LISTEN_MAX);
	relay = a->conf.vmomi_relay != NULL ? a->conf.vmomi_relay :
	    "vsock://2:2003";
	if ((e = xaddr_parse(relay, &a->vmomi_relay)) != XADDR_OK)
		fatalx("--vmomi-relay \"%s\": %s", relay, xaddr_strerror(e));
	if (xaddr_type(a->vmomi_relay) == XADDR_VSOCK &&
	    xaddr_cid(a->vmomi_relay) == XADDR_CID_ANY)
		fatalx("--vmomi-relay %s: give the host's CID (2), not any",
		    xaddr_str(a->vmomi_relay));
	if (a->conf.vmomi_listen.n == 0)
		return;
	for (i = 0; i < a->conf.vmomi_listen.n; i++)
		appliance_vmomi_check(a->conf.vmomi_listen.v[i]);
	a->d.clients = sess_ctx_new(a->d.base, SESS_CLIENT, sc, &ops, a);
	for (i = 0; i < a->conf.vmomi_listen.n; i++) {
		a->vmomi_l[a->nvmomi] = daemon_listen(&a->d,
		    a->conf.vmomi_listen.v[i], appliance_vmomi_cb, a,
		    &a->vmomi_a[a->nvmomi]);
		a->nvmomi++;
	}
}

/* A leg arrived (from the relay on this host, or directly). */
static void
appliance_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct appliance	*a = arg;
	struct xaddr_peer	 peer;
	struct bufferevent	*bev;
	const struct xaddr	*la = NULL;
	size_t			 i;

	xaddr_peer_describe(sa, salen, &peer);
	xaddr_tune(fd, peer.type);
	a->legs++;
	for (i = 0; i < a->nlisten; i++)
		if (a->listen_l[i] == l)
			la = a->listen_a[i];
	/* Over TCP (TLS), only a relay's certificate may deliver legs. */
	if (la == NULL ||
	    (bev = daemon_accepted(&a->d, fd, la, TLS_ROLE_RELAY)) == NULL) {
		log_warnx("leg from %s: out of memory", peer.str);
		if (la == NULL)
			close(fd);
		return;
	}
	sess_accept(a->d.sessions, bev, peer.str);
}

/* vappliance run: configure, listen, loop, tear down. */
static int
appliance_run(int argc, char **argv)
{
	static const struct sess_ops	 ops = {
		.open = appliance_open,
		.event = appliance_event,
		.refused = appliance_refused,
	};
	struct appliance		 a;
	struct sess_conf		 sc;
	size_t				 i;
	int				 e;

	memset(&a, 0, sizeof(a));
	a.conf.vsock_cid = 3;
	a.conf.serial.motion_ms = 120000;
	a.conf.serial.ident_ms = 10000;
	a.conf.serial.hold_ms = 60000;
	a.conf.serial.buffer_max = 1024 * 1024;
	daemon_sessconf_defaults(&a.conf.sess);
	daemon_parse("vappliance", appliance_opts, NOPTS, &a.conf, argc, argv);
	log_init("vappliance", a.conf.debug ? LOG_LEVEL_DEBUG :
	    a.conf.quiet ? LOG_LEVEL_WARN : LOG_LEVEL_INFO);
	if (a.conf.listen.n > APPLIANCE_LISTEN_MAX)
		fatalx("--listen: at most %d", APPLIANCE_LISTEN_MAX);
	daemon_init(&a.d, "vappliance");
	daemon_vsock(a.conf.vsock_dir, a.conf.vsock_cid);
	daemon_tls(&a.d, &a.conf.tls, TLS_ROLE_APPLIANCE);
	if ((e = xaddr_parse(a.conf.backend, &a.backend)) != XADDR_OK)
		fatalx("--backend \"%s\": %s", a.conf.backend,
		    xaddr_strerror(e));
	daemon_sessconf_apply(&a.conf.sess, &sc);
	a.d.sessions = sess_ctx_new(a.d.base, SESS_SERVER, &sc, &ops, &a);
	a.serial = serial_new(a.d.base, a.backend, a.conf.proxy_v2,
	    &a.conf.serial);
	for (i = 0; i < a.conf.listen.n; i++)
		a.listen_l[a.nlisten++] = daemon_listen(&a.d,
		    a.conf.listen.v[i], appliance_accept_cb, &a,
		    &a.listen_a[i]);
	appliance_vmomi_init(&a, &sc);
	/* Last, so a status socket means the daemon is ready. */
	daemon_status(&a.d, a.conf.status, appliance_cmds,
	    sizeof(appliance_cmds) / sizeof(appliance_cmds[0]), &a);
	log_info("vappliance started backend=%s pid=%ld",
	    xaddr_str(a.backend), (long)getpid());

	event_base_dispatch(a.d.base);

	log_info("vappliance stopping sessions=%zu",
	    sess_ctx_count(a.d.sessions));
	for (i = 0; i < a.nlisten; i++) {
		if (a.listen_l[i] != NULL)
			evconnlistener_free(a.listen_l[i]);
		xaddr_unlisten(a.listen_a[i]);
		xaddr_free(a.listen_a[i]);
	}
	for (i = 0; i < a.nvmomi; i++) {
		evconnlistener_free(a.vmomi_l[i]);
		xaddr_unlisten(a.vmomi_a[i]);
		xaddr_free(a.vmomi_a[i]);
	}
	sess_ctx_free(a.d.clients);
	xaddr_free(a.vmomi_relay);
	sess_ctx_free(a.d.sessions);
	serial_free(a.serial);
	xaddr_free(a.backend);
	daemon_fini(&a.d);
	conf_free(appliance_opts, NOPTS, &a.conf);
	return (0);
}

static const char usage[] =
	"usage: vappliance run [-c FILE.json] [options]  run the endpoint\n"
	"       vappliance status   --status PATH [--json]\n"
	"       vappliance sessions --status PATH [--json]\n"
	"       vappliance watch    --status PATH [--json]\n"
	"       vappliance migrate  --status PATH --arg vsock_dir=DIR "
	"[--arg vsock_cid:=N]\n"
	"       vappliance help --status PATH    commands the daemon takes\n"
	"       vappliance run --help            every run option\n";

/* vappliance: run the endpoint, or query one (daemon_main). */
int
main(int argc, char **argv)
{
	return (daemon_main("vappliance", argc, argv, appliance_run, usage));
}
