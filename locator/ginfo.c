/*
 * ginfo.c -- vlocator guestinfo get|set|watch: the guestinfo channel
 * (vmomi/guestinfo.c) from the command line, with the locator's own
 * vCenter settings (-c vlocator.json and/or the same flags; the
 * credentials file as vlocator run reads it).  docs/guestinfo.md.
 *
 * Exit codes: 0 done; 1 vSphere or connection failure, VM not found,
 * write refused, watch failed; 2 usage, or a key or value refused
 * before anything is sent; 3 get: a named key is not set, watch:
 * every watched VM is gone.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include "conf.h"
#include "guestinfo.h"
#include "locator.h"
#include "log.h"
#include "text.h"
#include "vmomi.h"
#include "xmalloc.h"
#include "xtime.h"

#define GINFO_EXIT_OK		0
#define GINFO_EXIT_FAIL		1
#define GINFO_EXIT_USAGE	2
#define GINFO_EXIT_UNSET	3	/* get: a key unset; watch: all gone */
#define GINFO_ARGS_MAX		256

/* The locator's options first (same offsets), then the CLI's own. */
struct ginfo_conf {
	struct locator_conf	 lc;
	int			 json;
	char			*property;
};

struct ginfo;
typedef int	ginfo_start_fn(struct ginfo *);

struct ginfo_verb {
	const char	*name;
	int		 minargs;	/* positional, VM included */
	ginfo_start_fn	*start;
	const char	*usage;
};

struct ginfo {
	const struct ginfo_verb	*verb;
	struct ginfo_conf	 conf;
	char			*user;
	char			*password;
	struct event_base	*base;
	struct vmomi		*v;
	struct guestinfo	*gi;
	char			**pos;		/* VM, then keys or KEY=VALUE */
	int			 npos;
	struct guestinfo_kv	*kv;
	size_t			 nkv;
	int			 rc;
	size_t			 gone;
	size_t			 failed;
};

static ginfo_start_fn	ginfo_get, ginfo_set, ginfo_watch;

static const struct ginfo_verb ginfo_verbs[] = {
	{ "get", 1, ginfo_get, "get VM [KEY...] [--json]" },
	{ "set", 2, ginfo_set, "set VM KEY=VALUE..." },
	{ "watch", 1, ginfo_watch, "watch VM..." },
};

#define GOPT(f)	offsetof(struct ginfo_conf, f)

static const struct conf_opt ginfo_own[] = {
	{ "json", CONF_BOOL, GOPT(json), 0, 0, 0, NULL,
	    "get: one JSON object {vm, moref, keys}" },
	{ "property", CONF_STR, GOPT(property), 0, 0, 0, "PATH",
	    "follow config.extraConfig (default) or config (servers such "
	    "as govmomi's simulator)" },
};

/* Print usage to F. */
static void
ginfo_usage(FILE *f)
{
	size_t	i;

	for (i = 0; i < sizeof(ginfo_verbs) / sizeof(ginfo_verbs[0]); i++)
		fprintf(f, "%s vlocator guestinfo %s [-c vlocator.json] "
		    "[options]\n", i == 0 ? "usage:" : "      ",
		    ginfo_verbs[i].usage);
	fputs("options: vlocator run's vCenter options (--vcenter, "
	    "--credentials, --thumbprint,\n--cacert, --insecure, --timeout, "
	    "--poll, --debug), --json, --property PATH.\n"
	    "exit: 0 ok, 1 failed, 2 usage or refused key/value, 3 key "
	    "not set / every VM gone\n", f);
}

/* The options table: the locator's, required flags dropped, + ours. */
static struct conf_opt *
ginfo_table(size_t *n)
{
	struct conf_opt	*t;
	size_t		 i, nown = sizeof(ginfo_own) / sizeof(ginfo_own[0]);

	*n = locator_nopts + nown;
	t = xcalloc(*n, sizeof(*t));
	for (i = 0; i < locator_nopts; i++) {
		t[i] = locator_opts[i];
		t[i].flags &= ~CONF_REQUIRED;
	}
	for (i = 0; i < nown; i++)
		t[locator_nopts + i] = ginfo_own[i];
	return (t);
}

/* Does option ARG (in table T) take the next argument as its value? */
static int
ginfo_takes_value(const struct conf_opt *t, size_t n, const char *arg)
{
	size_t	i;

	if (strcmp(arg, "-c") == 0 || strcmp(arg, "--config") == 0)
		return (1);
	if (strncmp(arg, "--", 2) != 0 || strchr(arg, '=') != NULL)
		return (0);
	for (i = 0; i < n; i++)
		if (strcmp(arg + 2, t[i].name) == 0)
			return (t[i].type != CONF_BOOL);
	return (0);
}

/* Print one JSON value as a line on stdout, flushed. */
static void
ginfo_print(json_t *o)
{
	char	*s;

	if ((s = json_dumps(o, JSON_COMPACT)) != NULL) {
		printf("%s\n", s);
		free(s);
	}
	fflush(stdout);
	json_decref(o);
}

/* The wall clock as UTC text, as a JSON string. */
static json_t *
ginfo_now(void)
{
	char	buf[XTIME_UTC_LEN];

	return (json_string(xtime_utc(xtime_wall_ms(), buf, sizeof(buf))));
}

/* A JSON string, or null; values that are not UTF-8 become null. */
static json_t *
ginfo_str(const char *s)
{
	json_t	*j;

	if (s == NULL || (j = json_string(s)) == NULL)
		return (json_null());
	return (j);
}

/* Logged out (or not): leave the loop. */
static void
ginfo_logout_done(uint64_t id, int err, const char *msg, void *arg)
{
	struct ginfo	*c = arg;

	event_base_loopbreak(c->base);
}

/* The channel's collector is gone on the server: log out, then leave. */
static void
ginfo_freed(uint64_t id, int err, const char *msg, void *arg)
{
	struct ginfo	*c = arg;

	if (vmomi_service(c->v) == NULL ||
	    vmomi_logout(c->v, ginfo_logout_done, c) == 0)
		event_base_loopbreak(c->base);
}

/*
 * Done with exit code RC: drop the channel (its collector with it) and
 * log out once that is done, so no session is left behind on vCenter;
 * then leave.
 */
static void
ginfo_end(struct ginfo *c, int rc)
{
	struct guestinfo	*gi = c->gi;

	c->rc = rc;
	c->gi = NULL;
	if (gi == NULL || vmomi_service(c->v) == NULL) {
		guestinfo_free(gi);
		ginfo_freed(0, VMOMI_OK, NULL, c);
		return;
	}
	guestinfo_free_cb(gi, ginfo_freed, c);
}

/* Report failure ERR about WHAT and leave the loop. */
static void
ginfo_fail(struct ginfo *c, int rc, const char *what, int err,
    const char *msg)
{
	fprintf(stderr, "vlocator guestinfo %s: %s: %s: %s\n",
	    c->verb->name, what, vmomi_strerror(err), msg);
	ginfo_end(c, rc);
}

/*
 * Text mode: VAL (after "KEY=" unless KEY is NULL) and a newline, both
 * escaped (text_vis): values are the guest's, and a terminal must not
 * obey its escape sequences nor a script see its newlines as lines.
 */
static void
ginfo_text(const char *key, const char *val)
{
	char	*k = NULL, *v;
	size_t	 n;

	n = TEXT_VIS_SIZE(strlen(val));
	v = xmalloc(n);
	text_vis(v, n, val, strlen(val));
	if (key != NULL) {
		n = TEXT_VIS_SIZE(strlen(key));
		k = xmalloc(n);
		text_vis(k, n, key, strlen(key));
		printf("%s=%s\n", k, v);
	} else
		printf("%s\n", v);
	free(k);
	free(v);
}

/* get answered: print the keys asked for (or all). */
static void
ginfo_get_done(uint64_t id, int err, const char *msg,
    const struct vmomi_moref *ref, const struct guestinfo_keys *k,
    void *arg)
{
	struct ginfo	*c = arg;
	json_t		*keys;
	const char	*val;
	size_t		 i;
	int		 unset = 0;

	if (err != VMOMI_OK) {
		ginfo_fail(c, GINFO_EXIT_FAIL, c->pos[0], err, msg);
		return;
	}
	keys = json_object();
	if (c->npos == 1) {
		for (i = 0; i < k->n; i++) {
			json_object_set_new(keys, k->kv[i].key,
			    ginfo_str(k->kv[i].value));
			if (!c->conf.json)
				ginfo_text(k->kv[i].key, k->kv[i].value);
		}
	}
	for (i = 1; i < (size_t)c->npos; i++) {
		val = guestinfo_keys_get(k, c->pos[i]);
		json_object_set_new(keys, c->pos[i], ginfo_str(val));
		if (val == NULL) {
			unset = 1;
			fprintf(stderr, "vlocator guestinfo get: %s: %s is "
			    "not set\n", c->pos[0], c->pos[i]);
		} else if (!c->conf.json)
			ginfo_text(c->npos == 2 ? NULL : c->pos[i], val);
	}
	if (c->conf.json)
		ginfo_print(json_pack("{s:s, s:s, s:o}", "vm", c->pos[0],
		    "moref", ref->value, "keys", keys));
	else
		json_decref(keys);
	fflush(stdout);
	ginfo_end(c, unset ? GINFO_EXIT_UNSET : GINFO_EXIT_OK);
}

/* Read keys (all guestinfo.* keys when none are named). */
static int
ginfo_get(struct ginfo *c)
{
	char	msg[256];
	int	i;

	for (i = 1; i < c->npos; i++)
		if (guestinfo_key_check(c->pos[i], msg, sizeof(msg)) !=
		    VMOMI_OK) {
			fprintf(stderr, "vlocator guestinfo get: %s\n", msg);
			return (-1);
		}
	return (guestinfo_get(c->gi, c->pos[0], ginfo_get_done, c) != 0 ?
	    0 : -1);
}

/* set finished (the reconfigure task ended). */
static void
ginfo_set_done(uint64_t id, int err, const char *msg, void *arg)
{
	struct ginfo	*c = arg;

	if (err != VMOMI_OK) {
		ginfo_fail(c, err == VMOMI_E_ARG ? GINFO_EXIT_USAGE :
		    GINFO_EXIT_FAIL, c->pos[0], err, msg);
		return;
	}
	ginfo_end(c, GINFO_EXIT_OK);
}

/* Write KEY=VALUE pairs (checked before connecting: ginfo_parse_kv). */
static int
ginfo_set(struct ginfo *c)
{
	return (guestinfo_set(c->gi, c->pos[0], c->kv, c->nkv,
	    ginfo_set_done, c) != 0 ? 0 : -1);
}

/* A watch reported: one JSON line; leave when no watch is left. */
static void
ginfo_watch_cb(uint64_t id, const struct guestinfo_event *ev, void *arg)
{
	struct ginfo	*c = arg;
	json_t		*o;

	o = json_pack("{s:o, s:s}", "time", ginfo_now(), "vm", ev->vm);
	if (ev->ref != NULL)
		json_object_set_new(o, "moref", json_string(ev->ref->value));
	switch (ev->type) {
	case GUESTINFO_EV_VALUE:
		json_object_set_new(o, "event", json_string("change"));
		json_object_set_new(o, "key", ginfo_str(ev->key));
		json_object_set_new(o, "value", ginfo_str(ev->value));
		json_object_set_new(o, "old", ginfo_str(ev->old));
		json_object_set_new(o, "initial",
		    json_boolean(ev->initial));
		break;
	case GUESTINFO_EV_READY:
		json_object_set_new(o, "event", json_string("ready"));
		break;
	case GUESTINFO_EV_GONE:
		json_object_set_new(o, "event", json_string("gone"));
		c->gone++;
		break;
	case GUESTINFO_EV_ERROR:
		json_object_set_new(o, "event", json_string("error"));
		json_object_set_new(o, "error", ginfo_str(ev->msg));
		c->failed++;
		break;
	}
	ginfo_print(o);
	if (ev->type == GUESTINFO_EV_GONE || ev->type == GUESTINFO_EV_ERROR) {
		if (guestinfo_watching(c->gi) > 0)
			return;
		ginfo_end(c, c->failed > 0 ? GINFO_EXIT_FAIL :
		    GINFO_EXIT_UNSET);
	}
}

/* Watch every VM named. */
static int
ginfo_watch(struct ginfo *c)
{
	int	i;

	for (i = 0; i < c->npos; i++)
		if (guestinfo_watch(c->gi, c->pos[i], ginfo_watch_cb, c) == 0)
			return (-1);
	return (0);
}

/* Logged in: start the verb. */
static void
ginfo_login_done(uint64_t id, int err, const char *msg, void *arg)
{
	struct ginfo	*c = arg;

	if (err != VMOMI_OK) {
		ginfo_fail(c, GINFO_EXIT_FAIL, c->conf.lc.vcenter, err,
		    msg);
		return;
	}
	if (c->verb->start(c) == -1)
		ginfo_end(c, GINFO_EXIT_USAGE);
}

/* set's KEY=VALUE arguments, each checked; -1 after saying why. */
static int
ginfo_parse_kv(struct ginfo *c)
{
	char	 msg[256], *eq;
	int	 i;

	c->nkv = (size_t)c->npos - 1;
	c->kv = xcalloc(c->nkv, sizeof(*c->kv));
	for (i = 1; i < c->npos; i++) {
		if ((eq = strchr(c->pos[i], '=')) == NULL) {
			fprintf(stderr, "vlocator guestinfo set: \"%.60s\": "
			    "expected KEY=VALUE\n", c->pos[i]);
			return (-1);
		}
		*eq = '\0';
		c->kv[i - 1].key = c->pos[i];
		c->kv[i - 1].value = eq + 1;
		if (guestinfo_key_check(c->kv[i - 1].key, msg, sizeof(msg)) !=
		    VMOMI_OK ||
		    guestinfo_value_check(c->kv[i - 1].value, msg,
		    sizeof(msg)) != VMOMI_OK) {
			fprintf(stderr, "vlocator guestinfo set: %.128s: %s\n",
			    c->kv[i - 1].key, msg);
			return (-1);
		}
	}
	return (0);
}

/* Split ARGV into options (for conf) and positional arguments. */
static int
ginfo_split(struct ginfo *c, const struct conf_opt *t, size_t n, int argc,
    char **argv, char **optv, int *noptv)
{
	int	i, dashdash = 0;

	*noptv = 0;
	for (i = 0; i < argc; i++) {
		if (!dashdash && strcmp(argv[i], "--") == 0) {
			dashdash = 1;
			continue;
		}
		if (!dashdash && argv[i][0] == '-' && argv[i][1] != '\0') {
			optv[(*noptv)++] = argv[i];
			if (ginfo_takes_value(t, n, argv[i]) && i + 1 < argc)
				optv[(*noptv)++] = argv[++i];
			continue;
		}
		c->pos[c->npos++] = argv[i];
	}
	return (0);
}

/* vlocator guestinfo VERB ...: returns the exit code. */
int
ginfo_main(int argc, char **argv)
{
	struct ginfo		 c;
	struct conf_opt		*t;
	struct vmomi_conf	 vc;
	struct guestinfo_conf	 gc;
	char			 err[512], **optv;
	size_t			 n, i;
	int			 noptv, e;

	memset(&c, 0, sizeof(c));
	c.rc = GINFO_EXIT_FAIL;
	if (argc < 1 || strcmp(argv[0], "help") == 0 ||
	    strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
		ginfo_usage(argc < 1 ? stderr : stdout);
		return (argc < 1 ? GINFO_EXIT_USAGE : GINFO_EXIT_OK);
	}
	for (i = 0; i < sizeof(ginfo_verbs) / sizeof(ginfo_verbs[0]); i++)
		if (strcmp(argv[0], ginfo_verbs[i].name) == 0)
			c.verb = &ginfo_verbs[i];
	if (c.verb == NULL || argc - 1 > GINFO_ARGS_MAX) {
		fprintf(stderr, "vlocator guestinfo: unknown verb or too many "
		    "arguments: \"%.40s\"\n", argv[0]);
		ginfo_usage(stderr);
		return (GINFO_EXIT_USAGE);
	}
	log_init("vlocator", LOG_LEVEL_WARN);
	t = ginfo_table(&n);
	optv = xcalloc((size_t)argc, sizeof(*optv));
	c.pos = xcalloc((size_t)argc, sizeof(*c.pos));
	c.conf.lc.timeout_ms = 30000;
	c.conf.lc.poll_ms = GUESTINFO_MAXWAIT_S * 1000;
	ginfo_split(&c, t, n, argc - 1, argv + 1, optv, &noptv);
	if (conf_parse(t, n, &c.conf, noptv, optv, err, sizeof(err)) !=
	    CONF_OK) {
		fprintf(stderr, "vlocator guestinfo: %s\n", err);
		c.rc = GINFO_EXIT_USAGE;
		goto out;
	}
	c.rc = GINFO_EXIT_USAGE;
	if (c.npos < c.verb->minargs) {
		ginfo_usage(stderr);
		goto out;
	}
	if (c.conf.lc.vcenter == NULL || c.conf.lc.credentials == NULL) {
		fprintf(stderr, "vlocator guestinfo: give --vcenter and "
		    "--credentials (or -c vlocator.json)\n");
		goto out;
	}
	if ((c.conf.lc.thumbprint != NULL) + (c.conf.lc.cacert != NULL) +
	    (c.conf.lc.insecure != 0) > 1) {
		fprintf(stderr, "vlocator guestinfo: give one of --thumbprint, "
		    "--cacert and --insecure\n");
		goto out;
	}
	memset(&gc, 0, sizeof(gc));
	if (c.conf.property != NULL &&
	    strcmp(c.conf.property, "config") == 0)
		gc.path = GUESTINFO_PATH_CONFIG;
	else if (c.conf.property != NULL &&
	    strcmp(c.conf.property, "config.extraConfig") != 0) {
		fprintf(stderr, "vlocator guestinfo: --property \"%.60s\": "
		    "expected config.extraConfig or config\n",
		    c.conf.property);
		goto out;
	}
	gc.maxwait_s = (int)(c.conf.lc.poll_ms / 1000);
	if (c.verb->start == ginfo_set && ginfo_parse_kv(&c) == -1)
		goto out;
	if (c.conf.lc.debug)
		log_init("vlocator", LOG_LEVEL_DEBUG);
	locator_credentials(c.conf.lc.credentials, &c.user, &c.password);

	c.rc = GINFO_EXIT_FAIL;
	if ((c.base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	locator_vmomi_conf(&c.conf.lc, c.user, c.password, &vc);
	if ((e = vmomi_new(c.base, &vc, &c.v)) != VMOMI_OK) {
		fprintf(stderr, "vlocator guestinfo: --vcenter %s: %s\n",
		    c.conf.lc.vcenter, vmomi_strerror(e));
		goto out;
	}
	if (guestinfo_new(c.base, c.v, &gc, &c.gi) != VMOMI_OK)
		fatalx("guestinfo_new failed");
	vmomi_login(c.v, ginfo_login_done, &c);
	event_base_dispatch(c.base);
out:
	guestinfo_free(c.gi);
	vmomi_free(c.v);
	if (c.base != NULL)
		event_base_free(c.base);
	locator_wipe(&c.user);
	locator_wipe(&c.password);
	conf_free(t, n, &c.conf);
	free(t);
	free(optv);
	free(c.pos);
	free(c.kv);
	return (c.rc);
}
