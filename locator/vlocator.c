/*
 * vlocator.c -- the locator: main, configuration, credentials, loop.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf.h"
#include "locator.h"
#include "vmomi.h"
#include "log.h"
#include "xaddr.h"
#include "xmalloc.h"

#define OPT(f)	offsetof(struct locator_conf, f)
#define LOCATOR_CRED_MAX	4096

const struct conf_opt locator_opts[] = {
	{ "vcenter", CONF_STR, OPT(vcenter), 0, 0, CONF_REQUIRED, "URL",
	    "vCenter SDK URL, https://HOST/sdk" },
	{ "credentials", CONF_STR, OPT(credentials), 0, 0, CONF_REQUIRED,
	    "FILE", "JSON {\"user\": ..., \"password\": ...}, mode 0600" },
	{ "thumbprint", CONF_STR, OPT(thumbprint), 0, 0, 0, "HEX",
	    "pin vCenter's certificate (SHA-256 or SHA-1 thumbprint)" },
	{ "cacert", CONF_STR, OPT(cacert), 0, 0, 0, "FILE",
	    "verify vCenter against this CA bundle" },
	{ "insecure", CONF_BOOL, OPT(insecure), 0, 0, 0, NULL,
	    "do not verify vCenter's certificate at all" },
	{ "vm", CONF_STR, OPT(vm), 0, 0, CONF_REQUIRED, "NAME|PATH|UUID",
	    "the appliance VM: name, inventory path or UUID" },
	{ "listen", CONF_STR, OPT(listen), 0, 0, CONF_REQUIRED, "ADDR",
	    "accept relays here (tcp://HOST:PORT)" },
	{ "status", CONF_STR, OPT(status), 0, 0, 0, "PATH",
	    "status socket (unix, mode 0600)" },
	{ "appliance-port", CONF_INT, OPT(appliance_port), 1, 0xffffffffLL,
	    0, "PORT", "appliance endpoint's vSocket port (default 1024)" },
	{ "appliance", CONF_STR, OPT(appliance), 0, 0, 0, "ADDR",
	    "push this appliance address instead of vsock://CID:PORT" },
	{ "keepalive", CONF_MSEC, OPT(keepalive_ms), 100, 600000, 0,
	    "DURATION", "PING relays this often; 3 silent periods is dead "
	    "(default 5s)" },
	{ "poll", CONF_MSEC, OPT(poll_ms), 1000, 3600000, 0, "DURATION",
	    "WaitForUpdatesEx maxWaitSeconds (default 30s)" },
	{ "session-check", CONF_MSEC, OPT(session_check_ms), 100, 3600000, 0,
	    "DURATION", "ask vCenter this often whether our session lives "
	    "(default 10s)" },
	{ "timeout", CONF_MSEC, OPT(timeout_ms), 100, 600000, 0, "DURATION",
	    "per vSphere call (default 30s)" },
	{ "retry-max", CONF_MSEC, OPT(retry_max_ms), 250, 3600000, 0,
	    "DURATION", "longest wait between vCenter retries (default 30s)" },
	{ "vmomi-listen", CONF_STR, OPT(vmomi_listen), 0, 0, 0, "ADDR",
	    "run the vmomi agent: accept relays' vmomi legs here "
	    "(tcp://HOST:PORT, TLS)" },
	{ "vmomi-advertise", CONF_STR, OPT(vmomi_advertise), 0, 0, 0, "ADDR",
	    "the agent address relays are told (default: --vmomi-listen, "
	    "unless a wildcard)" },
	{ "max-relays", CONF_INT, OPT(max_relays), 1, 1000000, 0, "N",
	    "relay hosts remembered at most (default 4096)" },
	{ "vmomi-policy", CONF_STR, OPT(vmomi_policy), 0, 0, 0, "FILE",
	    "the vmomi agent's policy changes (JSON: read, vm, deny, "
	    "scope)" },
	{ "vmomi-max-request", CONF_SIZE, OPT(vmomi_max_request), 1024,
	    64LL * 1024 * 1024, 0, "SIZE",
	    "largest SOAP request the agent takes (default 1M)" },
	{ "debug", CONF_BOOL, OPT(debug), 0, 0, 0, NULL,
	    "log debug lines (state changes, pushes)" },
	{ "quiet", CONF_BOOL, OPT(quiet), 0, 0, 0, NULL,
	    "log warnings only" },
	DAEMON_TLS_OPTS(OPT(tls)),
};
#define NOPTS	(sizeof(locator_opts) / sizeof(locator_opts[0]))
const size_t locator_nopts = NOPTS;

/*
 * Read PATH's {"user", "password"} into *USER and *PASSWORD, or die
 * saying what is wrong (vlocator run, vlocator guestinfo).  The file
 * must be ours or root's and not readable by others: credentials never
 * travel on the command line, and neither they nor their contents
 * appear in logs or status output.
 */
void
locator_credentials(const char *path, char **user, char **password)
{
	struct stat	 st;
	json_t		*o, *u, *p;
	json_error_t	 je;
	const char	*key;
	json_t		*v;
	char		 buf[LOCATOR_CRED_MAX + 1];
	ssize_t		 n;
	size_t		 len = 0;
	int		 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		fatal("--credentials %s", path);
	if (fstat(fd, &st) == -1)
		fatal("--credentials %s", path);
	if (!S_ISREG(st.st_mode))
		fatalx("--credentials %s: not a regular file", path);
	if ((st.st_mode & 077) != 0)
		fatalx("--credentials %s: mode %04o lets others read it; "
		    "chmod 600 it", path, (unsigned)(st.st_mode & 07777));
	if (st.st_uid != getuid() && st.st_uid != 0)
		fatalx("--credentials %s: owned by uid %u, neither us nor "
		    "root", path, (unsigned)st.st_uid);
	while ((n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	if (n == -1)
		fatal("--credentials %s", path);
	close(fd);
	if (len >= sizeof(buf) - 1)
		fatalx("--credentials %s: over %d bytes", path,
		    LOCATOR_CRED_MAX - 1);
	if ((o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je)) == NULL ||
	    !json_is_object(o))
		fatalx("--credentials %s: line %d: expected a JSON object "
		    "{\"user\": ..., \"password\": ...}", path,
		    o == NULL ? je.line : 1);
	explicit_bzero(buf, sizeof(buf));
	json_object_foreach(o, key, v)
		if (strcmp(key, "user") != 0 && strcmp(key, "password") != 0)
			fatalx("--credentials %s: unknown key \"%.64s\" "
			    "(expected user, password)", path, key);
	u = json_object_get(o, "user");
	p = json_object_get(o, "password");
	if (!json_is_string(u) || *json_string_value(u) == '\0')
		fatalx("--credentials %s: \"user\": expected a non-empty "
		    "string", path);
	if (!json_is_string(p) || *json_string_value(p) == '\0')
		fatalx("--credentials %s: \"password\": expected a "
		    "non-empty string", path);
	*user = xstrdup(json_string_value(u));
	*password = xstrdup(json_string_value(p));
	json_decref(o);
}

/* Wipe and free a secret string. */
void
locator_wipe(char **s)
{
	if (*s == NULL)
		return;
	explicit_bzero(*s, strlen(*s));
	free(*s);
	*s = NULL;
}

/* The vSphere client settings of C, logging in as USER/PASSWORD. */
void
locator_vmomi_conf(const struct locator_conf *c, const char *user,
    const char *password, struct vmomi_conf *vc)
{
	memset(vc, 0, sizeof(*vc));
	vc->url = c->vcenter;
	vc->user = user;
	vc->password = password;
	vc->cacert = c->cacert;
	vc->thumbprint = c->thumbprint;
	vc->insecure = c->insecure;
	vc->timeout_ms = c->timeout_ms;
}

/* Check what conf cannot: one TLS mode, a numeric appliance address. */
static void
locator_check(struct locator *l)
{
	struct xaddr	*a;
	int		 modes, e;

	modes = (l->conf.thumbprint != NULL) + (l->conf.cacert != NULL) +
	    (l->conf.insecure != 0);
	if (modes > 1)
		fatalx("give one of --thumbprint, --cacert and --insecure");
	if (l->conf.appliance != NULL) {
		/* Pushed as it is, and relays never look a name up. */
		if ((e = xaddr_parse_numeric(l->conf.appliance, &a)) !=
		    XADDR_OK)
			fatalx("--appliance \"%s\": %s", l->conf.appliance,
			    e == XADDR_E_RESOLVE ? "a host name; relays take "
			    "only numeric addresses" : xaddr_why(e));
		xaddr_free(a);
	}
	if (l->conf.keepalive_ms * 3 < 1000)
		log_warnx("--keepalive %lldms: relays are dropped after %lld "
		    "ms of silence", l->conf.keepalive_ms,
		    l->conf.keepalive_ms * 3);
}

/* vlocator run: configure, listen, watch vSphere, loop, tear down. */
static int
locator_run(int argc, char **argv)
{
	struct locator	 l;

	memset(&l, 0, sizeof(l));
	l.conf.appliance_port = 1024;
	l.conf.keepalive_ms = 5000;
	l.conf.poll_ms = 30000;
	l.conf.session_check_ms = 10000;
	l.conf.timeout_ms = 30000;
	l.conf.retry_max_ms = 30000;
	l.conf.max_relays = 4096;
	daemon_parse("vlocator", locator_opts, NOPTS, &l.conf, argc, argv);
	log_init("vlocator", l.conf.debug ? LOG_LEVEL_DEBUG :
	    l.conf.quiet ? LOG_LEVEL_WARN : LOG_LEVEL_INFO);
	locator_check(&l);
	locator_credentials(l.conf.credentials, &l.user, &l.password);
	daemon_init(&l.d, "vlocator");
	daemon_tls(&l.d, &l.conf.tls, TLS_ROLE_LOCATOR);
	l.watch = watch_new(&l);
	if (l.conf.vmomi_listen != NULL)
		l.agent = agent_new(&l);
	l.gate = gate_new(&l);
	l.reg = registry_new(&l);
	/* Last, so a status socket means the daemon is ready. */
	control_init(&l);
	log_info("vlocator started vcenter=%s vm=%s pid=%ld",
	    l.conf.vcenter, l.conf.vm, (long)getpid());
	watch_start(l.watch);

	event_base_dispatch(l.d.base);

	log_info("vlocator stopping");
	registry_free(l.reg);
	gate_free(l.gate);
	agent_free(l.agent);
	watch_free(l.watch);
	publish_free(&l.pub);
	daemon_fini(&l.d);
	locator_wipe(&l.user);
	locator_wipe(&l.password);
	conf_free(locator_opts, NOPTS, &l.conf);
	return (0);
}

static const char usage[] =
	"usage: vlocator run [-c FILE.json] [options]   follow the appliance,"
	" push to relays\n"
	"       vlocator where  --status PATH [--json]  where the appliance "
	"runs\n"
	"       vlocator relays --status PATH [--json]  which relays have "
	"converged\n"
	"       vlocator status --status PATH [--json]\n"
	"       vlocator watch  --status PATH [--json]  vSphere changes, "
	"pushes, ACKs\n"
	"       vlocator guestinfo get|set|watch ...  VMs' guestinfo keys "
	"(vlocator guestinfo help)\n"
	"       vlocator help --status PATH      commands the daemon takes\n"
	"       vlocator run --help              every run option\n";

/* vlocator: run the locator, or query one (daemon_main). */
int
main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "guestinfo") == 0)
		return (ginfo_main(argc - 2, argv + 2));
	return (daemon_main("vlocator", argc, argv, locator_run, usage));
}
