/*
 * vrelay.c -- the per-host relay agent: main, configuration, loop.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "admit.h"
#include "cli.h"
#include "conf.h"
#include "ctl.h"
#include "log.h"
#include "relay.h"
#include "xaddr.h"
#include "xmalloc.h"

#define OPT(f)	offsetof(struct relay_conf, f)

static const struct conf_opt relay_opts[] = {
	{ "host", CONF_STR, OPT(host), 0, 0, CONF_REQUIRED, "NAME",
	    "this ESX host's name, as vSphere names it" },
	{ "guest-listen", CONF_STRLIST, OPT(guest_listen), 0, 0, 0, "ADDR",
	    "accept containerVMs here (vsock://any:PORT in production)" },
	{ "agent-listen", CONF_STRLIST, OPT(agent_listen), 0, 0, 0, "ADDR",
	    "accept guest agents' session legs here (vsock://any:PORT)" },
	{ "vspc-listen", CONF_STRLIST, OPT(vspc_listen), 0, 0, 0, "ADDR",
	    "accept ESX's network serial ports (telnet, vSPC URI) here "
	    "(tcp://HOST:PORT)" },
	{ "vmomi-listen", CONF_STRLIST, OPT(vmomi_listen), 0, 0, 0, "ADDR",
	    "accept the appliance's vSphere SOAP legs here "
	    "(vsock://any:2003); vSocket peers only" },
	{ "vmomi-agent", CONF_STR, OPT(vmomi_agent), 0, 0, 0, "ADDR",
	    "the locator's vmomi agent (tcp://HOST:PORT; default: what the "
	    "locator's welcome names)" },
	{ "pipe", CONF_STRLIST, OPT(pipes), 0, 0, 0, "[listen:]PATH=NAME",
	    "carry VM NAME's pipe-backed serial port: connect to the unix "
	    "socket PATH (the VM is the server), or with listen: listen "
	    "there (the VM is the client)" },
	{ "pipe-dir", CONF_STRLIST, OPT(pipe_dirs), 0, 0, 0, "DIR",
	    "carry every unix socket in DIR (watched) as a pipe-backed "
	    "serial port; its VM is the file name less \".sock\"" },
	{ "mesh-listen", CONF_STR, OPT(mesh_listen), 0, 0, 0, "ADDR",
	    "accept legs from other relays here (tcp://HOST:PORT)" },
	{ "status", CONF_STR, OPT(status), 0, 0, 0, "PATH",
	    "status socket (unix, mode 0600)" },
	{ "peer", CONF_STRLIST, OPT(peers), 0, 0, 0, "NAME=ADDR",
	    "mesh address of the relay on host NAME" },
	{ "appliance-host", CONF_STR, OPT(appliance_host), 0, 0, 0, "NAME",
	    "the host that runs the appliance now" },
	{ "appliance", CONF_STR, OPT(appliance), 0, 0, 0, "ADDR",
	    "the appliance endpoint as reached from its host" },
	{ "locator", CONF_STR, OPT(locator), 0, 0, 0, "ADDR",
	    "take target pushes from vlocator here (tcp://HOST:PORT or "
	    "unix:PATH)" },
	{ "mesh-advertise", CONF_STR, OPT(mesh_advertise), 0, 0, 0, "ADDR",
	    "mesh address to register with the locator (default: "
	    "--mesh-listen, unless a wildcard)" },
	{ "mesh-links", CONF_STR, OPT(mesh_links), 0, 0, 0, "MODE",
	    "legs to other relays: shared (streams on one link per relay) "
	    "or per-session (a connection each); default: shared with TLS, "
	    "per-session without (plaintext legs splice end to end)" },
	{ "vsock-dir", CONF_STR, OPT(vsock_dir), 0, 0, 0, "DIR",
	    "emulate vsock in DIR (one directory per simulated host)" },
	{ "vsock-cid", CONF_INT, OPT(vsock_cid), 0, 0xfffffffeLL, 0, "CID",
	    "this process's CID under emulation (default 2, the host)" },
	{ "debug", CONF_BOOL, OPT(debug), 0, 0, 0, NULL,
	    "log debug lines (state changes, forwards)" },
	{ "quiet", CONF_BOOL, OPT(quiet), 0, 0, 0, NULL,
	    "log warnings only" },
	{ "max-handshakes-per-source", CONF_INT, OPT(max_pending_source), 1,
	    1000000, 0, "N", "legs one address or guest may have "
	    "unauthenticated (TLS handshake, agent's first bytes; "
	    "default 256)" },
	{ "max-sessions-per-guest", CONF_INT, OPT(max_per_guest), 1,
	    10000000, 0, "N", "sessions and agent legs of one guest CID "
	    "(default 16384)" },
	DAEMON_SESS_OPTS(OPT(sess)),
	DAEMON_TLS_OPTS(OPT(tls)),
};
#define NOPTS	(sizeof(relay_opts) / sizeof(relay_opts[0]))

/*
 * Listen on every address of LIST (option NAME) into L and A, at most
 * RELAY_LISTEN_MAX; how many.
 */
static size_t
relay_listen(struct relay *r, const char *name, const struct conf_list *list,
    struct evconnlistener **l, struct xaddr **a, evconnlistener_cb cb,
    void *arg)
{
	size_t	i;

	if (list->n > RELAY_LISTEN_MAX)
		fatalx("--%s: at most %d", name, RELAY_LISTEN_MAX);
	for (i = 0; i < list->n; i++)
		l[i] = daemon_listen(&r->d, list->v[i], cb, arg, &a[i]);
	return (list->n);
}

/* Close N listeners and remove their sockets. */
static void
relay_unlisten(struct evconnlistener **l, struct xaddr **a, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		evconnlistener_free(l[i]);
		xaddr_unlisten(a[i]);
		xaddr_free(a[i]);
	}
}

/* The static target from flags, through the same path as updates. */
static void
relay_target_init(struct relay *r)
{
	json_t	*o, *peers;
	char	 err[300], *eq;
	size_t	 i;

	r->target = target_new(r->conf.host);
	o = json_object();
	peers = json_object();
	for (i = 0; i < r->conf.peers.n; i++) {
		const char	*p = r->conf.peers.v[i];

		if ((eq = strchr(p, '=')) == NULL || eq == p)
			fatalx("--peer \"%s\": expected NAME=ADDR", p);
		*eq = '\0';
		if (target_host_ok(p) != 0)
			fatalx("--peer \"%s\": NAME must be 1 to 255 printable "
			    "ASCII characters, no spaces", p);
		if (json_object_set_new(peers, p, json_string(eq + 1)) != 0)
			fatalx("--peer %s: the address is not valid text", p);
		*eq = '=';
	}
	json_object_set_new(o, "peers", peers);
	if (r->conf.appliance_host != NULL &&
	    target_host_ok(r->conf.appliance_host) != 0)
		fatalx("--appliance-host \"%s\": expected 1 to 255 printable "
		    "ASCII characters, no spaces", r->conf.appliance_host);
	if (r->conf.appliance_host != NULL)
		json_object_set_new(o, "appliance_host",
		    json_string(r->conf.appliance_host));
	if (r->conf.appliance != NULL && json_object_set_new(o, "appliance",
	    json_string(r->conf.appliance)) != 0)
		fatalx("--appliance: the address is not valid text");
	if (target_set(r->target, o, 0, err, sizeof(err)) != 0)
		fatalx("target: %s", err);
	json_decref(o);
}

/*
 * The mesh address other relays reach this one at, as registered with
 * the locator: --mesh-advertise, else the bound --mesh-listen unless
 * it is a wildcard (which names no host); "" without a mesh listener.
 */
static const char *
relay_mesh_advertise(struct relay *r)
{
	const char	*s;
	int		 e;

	/*
	 * Registered in canonical form (a name resolved now, at startup):
	 * relays take pushed addresses only if numeric.
	 */
	if (r->conf.mesh_advertise != NULL) {
		if ((e = xaddr_parse(r->conf.mesh_advertise, &r->adv_a)) !=
		    XADDR_OK)
			fatalx("--mesh-advertise \"%s\": %s",
			    r->conf.mesh_advertise, xaddr_strerror(e));
		return (xaddr_str(r->adv_a));
	}
	if (r->mesh_a == NULL)
		return ("");
	s = xaddr_str(r->mesh_a);
	if ((xaddr_type(r->mesh_a) == XADDR_TCP &&
	    (strncmp(s, "tcp://0.0.0.0:", 14) == 0 ||
	    strncmp(s, "tcp://[::]:", 11) == 0)) ||
	    (xaddr_type(r->mesh_a) == XADDR_VSOCK &&
	    xaddr_cid(r->mesh_a) == XADDR_CID_ANY))
		fatalx("--mesh-listen %s is a wildcard address, which other "
		    "relays cannot connect to: give --mesh-advertise ADDR, "
		    "the address they reach this relay at", s);
	return (s);
}

/*
 * --vmomi-listen and --vmomi-agent: the appliance's vSphere SOAP legs
 * go to the locator's agent over TLS (a name is resolved now, at
 * startup); fatal on a bad flag.
 */
static void
relay_vmomi_init(struct relay *r)
{
	int	e;

	if (r->conf.vmomi_agent != NULL) {
		if ((e = xaddr_parse(r->conf.vmomi_agent, &r->vmomi_agent)) !=
		    XADDR_OK)
			fatalx("--vmomi-agent \"%s\": %s", r->conf.vmomi_agent,
			    xaddr_strerror(e));
		if (xaddr_type(r->vmomi_agent) == XADDR_VSOCK)
			fatalx("--vmomi-agent %s: expected tcp://HOST:PORT "
			    "(or unix:PATH)", xaddr_str(r->vmomi_agent));
	}
	r->nvmomi = relay_listen(r, "vmomi-listen", &r->conf.vmomi_listen,
	    r->vmomi_l, r->vmomi_a, fwd_vmomi_cb, r->fwd);
}

/*
 * --mesh-links, or its default: shared links with TLS on the mesh (a
 * TLS handshake and ~15 KiB of TLS state per leg saved), a connection
 * per leg without (a plaintext leg splices end to end, a stream would
 * cost two socket crossings more per relay).
 */
static enum mesh_mode
relay_mesh_mode(struct relay *r)
{
	const char	*m = r->conf.mesh_links;

	if (m == NULL)
		return (r->d.tls != NULL ? MESH_SHARED : MESH_PER_SESSION);
	if (strcmp(m, "shared") == 0)
		return (MESH_SHARED);
	if (strcmp(m, "per-session") == 0)
		return (MESH_PER_SESSION);
	fatalx("--mesh-links \"%s\": expected shared or per-session", m);
}

/* Links to a relay may go (the pre-warm's); if one proved up, parked legs. */
static void
relay_woken(struct daemon *d, int up)
{
	struct relay	*r = (struct relay *)d;

	warm_wake(r->warm);
	if (up)
		fwd_wake(r->fwd);
}

/* vrelay run: configure, listen, loop, tear down. */
static int
relay_run(int argc, char **argv)
{
	struct relay	 r;

	memset(&r, 0, sizeof(r));
	r.conf.vsock_cid = XADDR_CID_HOST;
	daemon_sessconf_defaults(&r.conf.sess);
	r.conf.max_pending_source = 256;
	r.conf.max_per_guest = 16384;
	daemon_parse("vrelay", relay_opts, NOPTS, &r.conf, argc, argv);
	log_init("vrelay", r.conf.debug ? LOG_LEVEL_DEBUG :
	    r.conf.quiet ? LOG_LEVEL_WARN : LOG_LEVEL_INFO);
	if (target_host_ok(r.conf.host) != 0)
		fatalx("--host \"%s\": expected 1 to 255 printable ASCII "
		    "characters, no spaces (it names this host to the "
		    "appliance end)", r.conf.host);
	if (r.conf.guest_listen.n == 0 && r.conf.agent_listen.n == 0 &&
	    r.conf.vspc_listen.n == 0 && r.conf.mesh_listen == NULL &&
	    r.conf.vmomi_listen.n == 0 &&
	    r.conf.pipes.n == 0 && r.conf.pipe_dirs.n == 0)
		fatalx("nothing to do: give --guest-listen, --agent-listen, "
		    "--vspc-listen, --vmomi-listen, --pipe, --pipe-dir and/or "
		    "--mesh-listen");
	if (r.conf.mesh_advertise != NULL && r.conf.mesh_listen == NULL)
		fatalx("--mesh-advertise needs --mesh-listen (no mesh "
		    "listener, nothing to advertise)");
	daemon_init(&r.d, "vrelay");
	daemon_vsock(r.conf.vsock_dir, r.conf.vsock_cid);
	daemon_tls(&r.d, &r.conf.tls, TLS_ROLE_RELAY);
	/* A vMotion opens a mesh leg per session at once: resume them. */
	if (r.d.tls != NULL)
		tls_set_resumable(r.d.tls, TLS_ROLE_RELAY);
	r.pending = admit_new((size_t)r.conf.max_pending_source,
	    (size_t)r.conf.sess.max_pending);
	r.agents = admit_new((size_t)r.conf.max_pending_source,
	    (size_t)r.conf.sess.max_pending);
	r.guests = admit_new((size_t)r.conf.max_per_guest, 0);
	relay_target_init(&r);
	ingress_init(&r);
	r.fwd = fwd_new(&r);
	r.warm = warm_new(&r);
	r.mesh = mesh_new(&r, relay_mesh_mode(&r));
	r.d.woken = relay_woken;
	/* Before the listeners: a bad --pipe stops us with nothing open. */
	r.pipes = pipe_new(&r);
	r.nguest = relay_listen(&r, "guest-listen", &r.conf.guest_listen,
	    r.guest_l, r.guest_a, ingress_accept_cb, &r);
	r.nagent = relay_listen(&r, "agent-listen", &r.conf.agent_listen,
	    r.agent_l, r.agent_a, fwd_agent_cb, r.fwd);
	r.nvspc = relay_listen(&r, "vspc-listen", &r.conf.vspc_listen,
	    r.vspc_l, r.vspc_a, ingress_vspc_cb, &r);
	relay_vmomi_init(&r);
	if (r.conf.mesh_listen != NULL)
		r.mesh_l = daemon_listen(&r.d, r.conf.mesh_listen,
		    fwd_accept_cb, r.fwd, &r.mesh_a);
	if (r.conf.locator != NULL)
		r.uplink = uplink_new(&r, r.conf.locator,
		    relay_mesh_advertise(&r));
	/* Last, so a status socket means the daemon is ready. */
	control_init(&r);
	log_info("vrelay started host=%s pid=%ld", r.conf.host,
	    (long)getpid());

	event_base_dispatch(r.d.base);

	log_info("vrelay stopping sessions=%zu",
	    sess_ctx_count(r.d.sessions));
	relay_unlisten(r.guest_l, r.guest_a, r.nguest);
	relay_unlisten(r.agent_l, r.agent_a, r.nagent);
	relay_unlisten(r.vspc_l, r.vspc_a, r.nvspc);
	relay_unlisten(r.vmomi_l, r.vmomi_a, r.nvmomi);
	xaddr_free(r.vmomi_agent);
	r.vmomi_agent = NULL;
	if (r.mesh_l != NULL) {
		evconnlistener_free(r.mesh_l);
		xaddr_unlisten(r.mesh_a);
	}
	uplink_free(r.uplink);
	r.uplink = NULL;
	xaddr_free(r.mesh_a);
	xaddr_free(r.adv_a);
	r.mesh_a = r.adv_a = NULL;
	/* Closing sessions tells pipes and admission: they go after. */
	sess_ctx_free(r.d.sessions);
	r.d.sessions = NULL;
	pipe_free(r.pipes);
	r.pipes = NULL;
	fwd_free(r.fwd);
	r.fwd = NULL;
	mesh_free(r.mesh);
	r.mesh = NULL;
	warm_free(r.warm);
	admit_free(r.pending);
	admit_free(r.agents);
	admit_free(r.guests);
	target_free(r.target);
	daemon_fini(&r.d);
	conf_free(relay_opts, NOPTS, &r.conf);
	return (0);
}

static const char usage[] =
	"usage: vrelay run [-c FILE.json] [options]   run the relay agent\n"
	"       vrelay status   --status PATH [--json]\n"
	"       vrelay sessions --status PATH [--json]\n"
	"       vrelay watch    --status PATH [--json]\n"
	"       vrelay set-target --status PATH --arg appliance_host=NAME"
	" [--arg appliance=ADDR]\n"
	"                       [--arg 'peers:={\"NAME\":\"ADDR\"}'] "
	"[--arg epoch:=N]\n"
	"       vrelay help --status PATH      commands the daemon takes\n"
	"       vrelay run --help              every run option\n";

/* vrelay: run the agent, or query one (daemon_main). */
int
main(int argc, char **argv)
{
	/* Names are looked up here, not on the running relay's loop. */
	if (argc >= 2 && strcmp(argv[1], "set-target") == 0) {
		log_init("vrelay", LOG_LEVEL_WARN);
		return (cli_query_prepared("vrelay", argv[1], argc - 2,
		    argv + 2, target_resolve));
	}
	return (daemon_main("vrelay", argc, argv, relay_run, usage));
}
