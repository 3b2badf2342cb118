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
 *
 * With open-vm-tools the agent publishes the containerVM's state in
 * guestinfo (docs/guestinfo.md, rpctool.c): its address, re-checked
 * every --guestinfo-interval; component errors (a listener that cannot
 * accept, legs to the relay failing for --relay-error-after, errors
 * the container runtime reports with "report-error"); and the
 * container's exit status ("container-exit").
 */
#include <sys/socket.h>

#include <netinet/in.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
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
#include "rpctool.h"
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
	char			*rpctool;
	long long		 gi_interval_ms;
	long long		 relay_error_ms;
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
	struct rpctool		*rt;
	struct event		*gi_timer;
	char			 gi_addr[INET6_ADDRSTRLEN];
	long long		 relay_fail_ms;	/* failing since (mono) */
	char			 relay_why[160];
	int			 relay_error;	/* published */
	int			 listen_error;	/* published */
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
	{ "rpctool", CONF_STR, OPT(rpctool), 0, 0, 0, "PATH",
	    "publish guestinfo with this vmware-rpctool (default: on PATH)" },
	{ "guestinfo-interval", CONF_MSEC, OPT(gi_interval_ms), 100,
	    3600000, 0, "DURATION", "re-check the address and errors to "
	    "publish this often (default 5s)" },
	{ "relay-error-after", CONF_MSEC, OPT(relay_error_ms), 100,
	    86400000, 0, "DURATION", "publish a relay error once its legs "
	    "have failed this long (default 30s)" },
	DAEMON_SESS_OPTS(OPT(sess)),
};
#define NOPTS	(sizeof(guest_opts) / sizeof(guest_opts[0]))

static json_t	*guest_status(json_t *, void *, const char **);
static json_t	*guest_watch(json_t *, void *, const char **);
static json_t	*guest_migrate(json_t *, void *, const char **);
static json_t	*guest_exit(json_t *, void *, const char **);
static json_t	*guest_report(json_t *, void *, const char **);

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
	{ "container-exit", "publish the container's exit status: {code, "
	    "signal (optional)}", 0, guest_exit },
	{ "report-error", "publish a component's error: {component, error} "
	    "(\"\" clears it)", 0, guest_report },
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
	return (json_pack("{s:s, s:s, s:I, s:I, s:o, s:o, s:s, s:o, s:o, s:I, "
	    "s:I, s:I, s:s, s:o}",
	    "daemon", "vguest", "name", g->conf.name,
	    "pid", (json_int_t)getpid(),
	    "uptime_ms", (json_int_t)(xtime_mono_ms() - g->d.started_ms),
	    "process", daemon_process_json(),
	    "listen", l, "relay", xaddr_str(g->relay),
	    "vsock", daemon_vsock_json(),
	    "sessions", daemon_sess_summary(&g->d),
	    "accepted", (json_int_t)g->accepted,
	    "refused", (json_int_t)g->d.refused,
	    "migrations", (json_int_t)g->migrations,
	    "guestinfo", rpctool_state(g->rt),
	    "guestinfo_detail", rpctool_json(g->rt)));
}

/* ---- guestinfo: what this containerVM publishes ---- */

/* KEY (under guestinfo.vrelay.) = {"error": WHY, "since": now}. */
static void
guest_publish_error(struct guest *g, const char *component, const char *why)
{
	json_t	*o;
	char	 key[96], t[XTIME_UTC_LEN], *s;

	snprintf(key, sizeof(key), "vrelay.error.%s", component);
	if (why == NULL || why[0] == '\0') {
		rpctool_set(g->rt, key, "");
		return;
	}
	o = json_pack("{s:s, s:s}", "error", why, "since",
	    xtime_utc(xtime_wall_ms(), t, sizeof(t)));
	if (o != NULL && (s = json_dumps(o, JSON_COMPACT)) != NULL) {
		rpctool_set(g->rt, key, s);
		free(s);
	}
	json_decref(o);
}

/*
 * The assigned address: the first global address (not loopback, not
 * link-local) on the interface of the IPv4 default route, else of the
 * IPv6 one; "" when there is none.
 */
static void
guest_address(char *out, size_t outlen)
{
	static const char *const routes[] = { "/proc/net/route",
	    "/proc/net/ipv6_route" };
	struct ifaddrs	*ifa, *i;
	FILE		*f;
	char		 line[512], ifname[IF_NAMESIZE + 1], dst[40];
	size_t		 r;
	int		 af, plen;

	out[0] = '\0';
	if (getifaddrs(&ifa) == -1)
		return;
	for (r = 0; r < 2 && out[0] == '\0'; r++) {
		ifname[0] = '\0';
		if ((f = fopen(routes[r], "r")) == NULL)
			continue;
		while (fgets(line, sizeof(line), f) != NULL) {
			if (r == 0 && sscanf(line, "%16s %39s", ifname,
			    dst) == 2 && strcmp(dst, "00000000") == 0)
				break;
			if (r == 1 && sscanf(line, "%39s %x %*s %*s %*s "
			    "%*s %*s %*s %*s %16s", dst, &plen, ifname) == 3 &&
			    plen == 0 && strcmp(ifname, "lo") != 0 &&
			    strspn(dst, "0") == 32)
				break;
			ifname[0] = '\0';
		}
		fclose(f);
		if (ifname[0] == '\0')
			continue;
		af = r == 0 ? AF_INET : AF_INET6;
		for (i = ifa; i != NULL; i = i->ifa_next) {
			if (i->ifa_addr == NULL || i->ifa_addr->sa_family !=
			    af || strcmp(i->ifa_name, ifname) != 0)
				continue;
			if (af == AF_INET) {
				struct sockaddr_in *s4 =
				    (struct sockaddr_in *)i->ifa_addr;
				uint32_t a = ntohl(s4->sin_addr.s_addr);

				if ((a >> 24) == 127 || (a >> 16) == 0xa9fe)
					continue;
				inet_ntop(AF_INET, &s4->sin_addr, out, outlen);
			} else {
				struct sockaddr_in6 *s6 =
				    (struct sockaddr_in6 *)i->ifa_addr;

				if (IN6_IS_ADDR_LINKLOCAL(&s6->sin6_addr) ||
				    IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr))
					continue;
				inet_ntop(AF_INET6, &s6->sin6_addr, out,
				    outlen);
			}
			break;
		}
	}
	freeifaddrs(ifa);
}

/* Every --guestinfo-interval: the address, and a long relay failure. */
static void
guest_gi_tick(evutil_socket_t fd, short what, void *arg)
{
	struct guest	*g = arg;
	struct timeval	 tv;
	char		 addr[INET6_ADDRSTRLEN];

	guest_address(addr, sizeof(addr));
	if (strcmp(addr, g->gi_addr) != 0) {
		log_info("guestinfo: address %s -> %s",
		    g->gi_addr[0] != '\0' ? g->gi_addr : "none",
		    addr[0] != '\0' ? addr : "none");
		strlcpy(g->gi_addr, addr, sizeof(g->gi_addr));
		rpctool_set(g->rt, "vrelay.ip", addr);
	}
	if (g->relay_fail_ms != 0 && !g->relay_error &&
	    xtime_mono_ms() - g->relay_fail_ms >= g->conf.relay_error_ms) {
		guest_publish_error(g, "relay", g->relay_why);
		g->relay_error = 1;
	}
	xtime_tv(g->conf.gi_interval_ms, &tv);
	evtimer_add(g->gi_timer, &tv);
}

/* A leg to the relay failed (WHY): start or continue the clock. */
static void
guest_relay_failed(struct guest *g, const char *why)
{
	if (g->relay_fail_ms == 0)
		g->relay_fail_ms = xtime_mono_ms();
	snprintf(g->relay_why, sizeof(g->relay_why), "legs to %s failing: "
	    "%s", xaddr_str(g->relay), why != NULL ? why : "?");
}

/* A leg to the relay works: the relay error, if any, is over. */
static void
guest_relay_ok(struct guest *g)
{
	g->relay_fail_ms = 0;
	if (g->relay_error)
		guest_publish_error(g, "relay", "");
	g->relay_error = 0;
}

/* A listener cannot accept (EMFILE...): publish it. */
static void
guest_listen_error(struct evconnlistener *l, void *arg)
{
	struct guest	*g = arg;
	char		 why[128];

	snprintf(why, sizeof(why), "accept: %s", strerror(errno));
	log_warnx("listener: %s", why);
	if (!g->listen_error)
		guest_publish_error(g, "listener", why);
	g->listen_error = 1;
}

/*
 * The container runtime says the container ended: {code: 0-255,
 * signal: "KILL"}.  Published as guestinfo.vrelay.exit, JSON.
 */
static json_t *
guest_exit(json_t *req, void *arg, const char **err)
{
	struct guest	*g = arg;
	json_t		*code, *sig, *o;
	char		 t[XTIME_UTC_LEN], *s;

	code = json_object_get(req, "code");
	sig = json_object_get(req, "signal");
	if (!json_is_integer(code) || json_integer_value(code) < 0 ||
	    json_integer_value(code) > 255) {
		*err = "code: expected an integer 0-255";
		return (NULL);
	}
	if (sig != NULL && !json_is_null(sig) && (!json_is_string(sig) ||
	    json_string_length(sig) == 0 || json_string_length(sig) > 16)) {
		*err = "signal: expected a signal name like KILL";
		return (NULL);
	}
	if (!rpctool_available(g->rt)) {
		*err = rpctool_state(g->rt);
		return (NULL);
	}
	o = json_pack("{s:I, s:O?, s:s}", "code",
	    (json_int_t)json_integer_value(code), "signal",
	    json_is_null(sig) ? NULL : sig, "at",
	    xtime_utc(xtime_wall_ms(), t, sizeof(t)));
	s = json_dumps(o, JSON_COMPACT);
	rpctool_set(g->rt, "vrelay.exit", s);
	log_info("guestinfo: container exit %s", s);
	free(s);
	return (o);
}

/* The container runtime reports a component's error ("" clears it). */
static json_t *
guest_report(json_t *req, void *arg, const char **err)
{
	struct guest	*g = arg;
	const char	*c, *e;
	size_t		 i;

	c = json_string_value(json_object_get(req, "component"));
	e = json_string_value(json_object_get(req, "error"));
	if (c == NULL || c[0] == '\0' || strlen(c) > 32) {
		*err = "component: expected 1 to 32 of a-z 0-9 _ -";
		return (NULL);
	}
	for (i = 0; c[i] != '\0'; i++)
		if (strchr("abcdefghijklmnopqrstuvwxyz0123456789_-", c[i]) ==
		    NULL) {
			*err = "component: expected 1 to 32 of a-z 0-9 _ -";
			return (NULL);
		}
	if (e == NULL || strlen(e) > 4096) {
		*err = "error: expected a string of at most 4096 bytes";
		return (NULL);
	}
	if (!rpctool_available(g->rt)) {
		*err = rpctool_state(g->rt);
		return (NULL);
	}
	guest_publish_error(g, c, e);
	return (json_pack("{s:s, s:s}", "component", c, "error", e));
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
static int
guest_connect(struct sess *s, void *arg, struct sess_dial *dial,
    const char **desc)
{
	struct guest	*g = arg;

	if (daemon_dial(&g->d, g->relay, TLS_ROLE_NONE, NULL, dial,
	    desc) != 0) {
		guest_relay_failed(g, *desc);
		return (-1);
	}
	return (0);
}

/* Legs all go to the one relay address: a kept one may carry S. */
static const char *
guest_route(struct sess *s, void *arg)
{
	struct guest	*g = arg;

	return (xaddr_str(g->relay));
}

static void
guest_event(struct sess *s, enum sess_event ev, const char *reason,
    void *arg)
{
	struct guest	*g = arg;

	if (ev == SESS_EV_OPEN || ev == SESS_EV_RESUMED)
		guest_relay_ok(g);
	else if (ev == SESS_EV_DETACHED)
		guest_relay_failed(g, reason);
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

	if (g->listen_error) {
		guest_publish_error(g, "listener", "");
		g->listen_error = 0;
	}
	xaddr_peer_describe(sa, salen, &peer);
	if (daemon_client(&g->d, fd, &peer, g->conf.sess.max_sessions,
	    &sg) != NULL)
		g->accepted++;
}

/* vguest run: configure, listen, loop, tear down. */
static int
guest_run(int argc, char **argv)
{
	static const struct sess_ops	 ops = {
		.connect = guest_connect,
		.route = guest_route,
		.event = guest_event,
	};
	struct guest			 g;
	struct sess_conf		 sc;
	size_t				 i;
	int				 e;

	memset(&g, 0, sizeof(g));
	g.conf.vsock_cid = 4;
	g.conf.gi_interval_ms = 5000;
	g.conf.relay_error_ms = 30000;
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
		evconnlistener_set_error_cb(g.listen_l[g.nlisten],
		    guest_listen_error);
		g.nlisten++;
	}
	g.rt = rpctool_new(g.d.base, g.conf.rpctool);
	if ((g.gi_timer = evtimer_new(g.d.base, guest_gi_tick, &g)) == NULL)
		fatalx("evtimer_new failed");
	if (rpctool_available(g.rt)) {
		/* A new run: no exit status, no stale errors. */
		rpctool_set(g.rt, "vrelay.exit", "");
		guest_publish_error(&g, "relay", "");
		guest_publish_error(&g, "listener", "");
		guest_gi_tick(-1, 0, &g);
	} else
		log_warnx("guestinfo: %s; not publishing",
		    rpctool_state(g.rt));
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
	if (g.gi_timer != NULL)
		event_free(g.gi_timer);
	rpctool_free(g.rt);
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
	"       vguest container-exit --status PATH --arg code:=N "
	"[--arg signal=KILL]\n"
	"       vguest report-error --status PATH --arg component=NAME "
	"--arg error=TEXT\n"
	"       vguest help --status PATH      commands the daemon takes\n"
	"       vguest run --help              every run option\n";

/* vguest: run the agent, or query one (daemon_main). */
int
main(int argc, char **argv)
{
	return (daemon_main("vguest", argc, argv, guest_run, usage));
}
