/*
 * cli.c -- the query subcommands every daemon binary shares (cli.h).
 *
 * Everything the daemon says is printed through cli_clean(), which
 * turns control characters into '?': session ids and guest names come
 * from peers, and a status tool must not let them drive the terminal.
 */
#include <sys/types.h>

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "ctl.h"
#include "xmalloc.h"
#include "xtime.h"

struct cli {
	const char	*prog;
	const char	*subcmd;
	const char	*path;
	int		 json;
	int		 timeout;
	int		 help;
	json_t		*req;
};

/* A table column: title, member, how to show it, numbers right. */
struct cli_col {
	const char	*title;
	const char	*key;
	char		*(*fmt)(json_t *, const char *);
	int		 right;
};

/* A subcommand whose answer is a list printed as a table. */
struct cli_table {
	const char		*subcmd;
	const char		*list;		/* the answer's array */
	const struct cli_col	*cols;
	size_t			 ncols;
};

static volatile sig_atomic_t	cli_interrupted;

/* How to call us; to stderr on a mistake, to stdout when asked. */
static void
cli_usage(FILE *f, const char *prog)
{
	fprintf(f, "usage: %s status|sessions|watch|help|COMMAND "
	    "[--status PATH] [--json]\n"
	    "       %*s [--timeout MS] [--arg KEY=STR|KEY:=JSON ...]\n"
	    "The status socket is --status PATH or $%s.\n",
	    prog, (int)strlen(prog), "", CLI_ENV_STATUS);
}

/* A usage mistake: say what, show how, exit code 2. */
static int
cli_usage_error(const struct cli *c, const char *what, const char *arg)
{
	fprintf(stderr, "%s: %s%s%s\n", c->prog, what,
	    arg != NULL ? ": " : "", arg != NULL ? arg : "");
	cli_usage(stderr, c->prog);
	return (CLI_EXIT_USAGE);
}

/* Replace control characters in place so output cannot drive a tty. */
static char *
cli_clean(char *s)
{
	char	*p;

	for (p = s; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
			*p = '?';
	}
	return (s);
}

/*
 * Add --arg KEY=VALUE (VALUE a string, always: a session id of digits
 * stays a string) or --arg KEY:=JSON (a number, null, an object...).
 */
static int
cli_add_arg(struct cli *c, const char *kv)
{
	const char	*eq;
	char		*key;
	json_t		*val;
	int		 typed;

	if ((eq = strchr(kv, '=')) == NULL || eq == kv)
		return (cli_usage_error(c,
		    "--arg wants KEY=STRING or KEY:=JSON", kv));
	typed = eq[-1] == ':';
	key = xstrdup(kv);
	key[eq - kv - typed] = '\0';
	if (key[0] == '\0') {
		free(key);
		return (cli_usage_error(c,
		    "--arg wants KEY=STRING or KEY:=JSON", kv));
	}
	if (strcmp(key, "cmd") == 0) {
		free(key);
		return (cli_usage_error(c, "--arg cannot set", "cmd"));
	}
	if (typed) {
		if ((val = json_loads(eq + 1, JSON_DECODE_ANY, NULL)) == NULL) {
			free(key);
			return (cli_usage_error(c, "--arg KEY:=JSON: not JSON",
			    kv));
		}
	} else
		val = json_string(eq + 1);
	if (val == NULL || json_object_set_new(c->req, key, val) == -1) {
		free(key);
		return (cli_usage_error(c, "--arg is not valid UTF-8", kv));
	}
	free(key);
	return (CLI_EXIT_OK);
}

/*
 * Parse the options after the subcommand.  Hand-rolled rather than
 * getopt_long() so that we leave no global state behind for the
 * daemon's own option parsing.
 */
static int
cli_parse(struct cli *c, int argc, char **argv)
{
	const char	*arg, *val, *errstr;
	size_t		 namelen;
	int		 i, rv;

	for (i = 0; i < argc; i++) {
		arg = argv[i];
		if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
			c->help = 1;
			continue;
		}
		if (strcmp(arg, "--json") == 0) {
			c->json = 1;
			continue;
		}
		if (strncmp(arg, "--", 2) != 0)
			return (cli_usage_error(c, "unexpected argument", arg));
		arg += 2;
		if ((val = strchr(arg, '=')) != NULL) {
			namelen = (size_t)(val - arg);
			val++;
		} else {
			namelen = strlen(arg);
			if (i + 1 < argc)
				val = argv[i + 1];
		}
#define CLI_OPT(s)	(namelen == strlen(s) && memcmp(arg, s, namelen) == 0)
		if (!CLI_OPT("status") && !CLI_OPT("timeout") &&
		    !CLI_OPT("arg"))
			return (cli_usage_error(c, "unknown option", argv[i]));
		if (val == NULL)
			return (cli_usage_error(c, "option needs a value",
			    argv[i]));
		if (strchr(argv[i], '=') == NULL)
			i++;
		if (CLI_OPT("status")) {
			if (*val == '\0')
				return (cli_usage_error(c, "empty --status",
				    NULL));
			c->path = val;
		} else if (CLI_OPT("timeout")) {
			c->timeout = (int)strtonum(val, 0, INT_MAX, &errstr);
			if (errstr != NULL)
				return (cli_usage_error(c, "--timeout wants "
				    "milliseconds", val));
		} else if ((rv = cli_add_arg(c, val)) != CLI_EXIT_OK)
			return (rv);
#undef CLI_OPT
	}
	return (CLI_EXIT_OK);
}

/* Say why the exchange failed, in the user's terms. */
static int
cli_ctl_error(const struct cli *c, int rv)
{
	switch (rv) {
	case CTL_E_SYSTEM:
		fprintf(stderr, "%s: cannot reach status socket %s: %s\n",
		    c->prog, c->path, strerror(errno));
		break;
	case CTL_E_PATH:
		fprintf(stderr, "%s: status socket path too long: %s\n",
		    c->prog, c->path);
		break;
	case CTL_E_TIMEOUT:
		fprintf(stderr, "%s: status socket %s: no answer after %d ms\n",
		    c->prog, c->path, c->timeout);
		break;
	case CTL_E_PROTO:
		fprintf(stderr, "%s: status socket %s: answer is not a JSON "
		    "object\n", c->prog, c->path);
		break;
	default:
		fprintf(stderr, "%s: status socket %s: %s\n", c->prog,
		    c->path, ctl_strerror(rv));
		break;
	}
	return (CLI_EXIT_ERROR);
}

/* Did the daemon refuse?  Then say what it said. */
static int
cli_refused(const struct cli *c, json_t *answer)
{
	const char	*err;
	char		*msg;

	if (json_is_true(json_object_get(answer, "ok")))
		return (0);
	err = json_string_value(json_object_get(answer, "error"));
	msg = xstrdup(err != NULL ? err : "request refused");
	fprintf(stderr, "%s: %s: %s\n", c->prog, c->subcmd, cli_clean(msg));
	free(msg);
	return (1);
}

/* Print V compactly as one line of JSON. */
static void
cli_print_json(json_t *v)
{
	char	*s;

	if ((s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)) == NULL)
		return;
	printf("%s\n", s);
	free(s);
}

/* A value as text: strings bare, null and empty containers as "-". */
static char *
cli_scalar(json_t *v)
{
	char	*s;

	switch (json_typeof(v)) {
	case JSON_STRING:
		s = xstrdup(json_string_value(v));
		break;
	case JSON_INTEGER:
		xasprintf(&s, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		break;
	case JSON_REAL:
		xasprintf(&s, "%g", json_real_value(v));
		break;
	case JSON_TRUE:
		s = xstrdup("true");
		break;
	case JSON_FALSE:
		s = xstrdup("false");
		break;
	case JSON_OBJECT:
	case JSON_ARRAY:
		if (json_is_object(v) ? json_object_size(v) == 0 :
		    json_array_size(v) == 0)
			s = xstrdup("-");
		else if ((s = json_dumps(v, JSON_COMPACT)) == NULL)
			s = xstrdup("?");
		break;
	default:
		s = xstrdup("-");
		break;
	}
	return (cli_clean(s));
}

/* Does array A hold an object or array (so it needs a block)? */
static int
cli_nested(json_t *a)
{
	json_t	*v;
	size_t	 i;

	json_array_foreach(a, i, v) {
		if (json_is_object(v) || json_is_array(v))
			return (1);
	}
	return (0);
}

static void	cli_print_object(json_t *, int, int);

/* Print key: value for one member, blocks for nested members. */
static void
cli_print_member(const char *key, json_t *v, int indent, int width,
    const char *lead)
{
	json_t	*e;
	char	*k, *s;
	size_t	 i;

	k = cli_clean(xstrdup(key));
	if (json_is_object(v) && json_object_size(v) > 0) {
		printf("%s%s:\n", lead, k);
		cli_print_object(v, indent + 2, 0);
	} else if (json_is_array(v) && cli_nested(v)) {
		printf("%s%s:\n", lead, k);
		json_array_foreach(v, i, e) {
			if (json_is_object(e) && json_object_size(e) > 0)
				cli_print_object(e, indent + 4, 1);
			else {
				s = cli_scalar(e);
				printf("%*s- %s\n", indent + 2, "", s);
				free(s);
			}
		}
	} else if (json_is_array(v) && json_array_size(v) > 0) {
		printf("%s%s:%*s ", lead, k, width - (int)strlen(k), "");
		json_array_foreach(v, i, e) {
			s = cli_scalar(e);
			printf("%s%s", i > 0 ? ", " : "", s);
			free(s);
		}
		printf("\n");
	} else {
		s = cli_scalar(v);
		printf("%s%s:%*s %s\n", lead, k, width - (int)strlen(k), "", s);
		free(s);
	}
	free(k);
}

/*
 * Print an object as aligned key: value lines, nested objects indented
 * under their key.  BULLET marks an array element: its first line
 * starts with "- " in the two columns before INDENT.  The top-level
 * "ok" is the transport's, not the daemon's news: skip it.
 */
static void
cli_print_object(json_t *obj, int indent, int bullet)
{
	const char	*key;
	json_t		*v;
	char		*lead;
	int		 width = 0, first = 1;

	json_object_foreach(obj, key, v) {
		if (indent == 0 && strcmp(key, "ok") == 0)
			continue;
		if ((int)strlen(key) > width)
			width = (int)strlen(key);
	}
	json_object_foreach(obj, key, v) {
		if (indent == 0 && strcmp(key, "ok") == 0)
			continue;
		if (bullet && first)
			xasprintf(&lead, "%*s- ", indent - 2, "");
		else
			xasprintf(&lead, "%*s", indent, "");
		cli_print_member(key, v, indent, width, lead);
		free(lead);
		first = 0;
	}
}

/* "help": the command table as two columns. */
static int
cli_print_help(json_t *answer)
{
	json_t		*cmds, *e;
	const char	*name, *help;
	char		*n, *h;
	size_t		 i;
	int		 width = 0;

	cmds = json_object_get(answer, "commands");
	if (!json_is_array(cmds)) {
		cli_print_object(answer, 0, 0);
		return (CLI_EXIT_OK);
	}
	json_array_foreach(cmds, i, e) {
		name = json_string_value(json_object_get(e, "name"));
		if (name != NULL && (int)strlen(name) > width)
			width = (int)strlen(name);
	}
	json_array_foreach(cmds, i, e) {
		name = json_string_value(json_object_get(e, "name"));
		help = json_string_value(json_object_get(e, "help"));
		n = cli_clean(xstrdup(name != NULL ? name : "-"));
		h = cli_clean(xstrdup(help != NULL ? help : ""));
		printf("%-*s  %s\n", width, n, h);
		free(n);
		free(h);
	}
	return (CLI_EXIT_OK);
}

/* Bytes the way people read them: 512, 1.5K, 23M. */
static char *
cli_bytes(json_t *v)
{
	static const char	 units[] = "KMGTPE";
	double			 d;
	char			*s;
	int			 u = -1;

	if (!json_is_number(v) || (d = json_number_value(v)) < 0)
		return (xstrdup("-"));
	while (d >= 1024 && u < (int)sizeof(units) - 2) {
		d /= 1024;
		u++;
	}
	if (u == -1)
		xasprintf(&s, "%.0f", d);
	else if (d < 10)
		xasprintf(&s, "%.1f%c", d, units[u]);
	else
		xasprintf(&s, "%.0f%c", d, units[u]);
	return (s);
}

/* An age in milliseconds, coarser as it grows: 3.2s, 5m, 7h, 2d. */
static char *
cli_age(json_t *v)
{
	long long	 ms;
	char		*s;

	if (!json_is_number(v) || json_number_value(v) < 0 ||
	    json_number_value(v) > 1e15)
		return (xstrdup("-"));
	ms = (long long)json_number_value(v);
	if (ms < 60 * 1000)
		xasprintf(&s, "%.1fs", (double)ms / 1000);
	else if (ms < 60 * 60 * 1000)
		xasprintf(&s, "%lldm", ms / (60 * 1000));
	else if (ms < 2 * 24 * 60 * 60 * 1000LL)
		xasprintf(&s, "%lldh", ms / (60 * 60 * 1000));
	else
		xasprintf(&s, "%lldd", ms / (24 * 60 * 60 * 1000LL));
	return (s);
}

/* A member as a table cell, "-" when missing. */
static char *
cli_cell(json_t *obj, const char *key)
{
	json_t	*v = json_object_get(obj, key);

	if (v == NULL || json_is_null(v))
		return (xstrdup("-"));
	return (cli_scalar(v));
}

/* The guest end as host/cid:port. */
static char *
cli_guest(json_t *session, const char *key)
{
	json_t	*g = json_object_get(session, "guest");
	char	*host, *cid, *port, *s;

	if (!json_is_object(g))
		return (xstrdup("-"));
	host = cli_cell(g, "host");
	cid = cli_cell(g, "cid");
	port = cli_cell(g, "port");
	xasprintf(&s, "%s/%s:%s", host, cid, port);
	free(host);
	free(cid);
	free(port);
	return (s);
}

/* Bytes of member KEY. */
static char *
cli_bytes_of(json_t *row, const char *key)
{
	return (cli_bytes(json_object_get(row, key)));
}

/* Age of member KEY (milliseconds). */
static char *
cli_age_of(json_t *row, const char *key)
{
	return (cli_age(json_object_get(row, key)));
}

/* Milliseconds of member KEY as "12ms". */
static char *
cli_ms_of(json_t *row, const char *key)
{
	json_t	*v = json_object_get(row, key);
	char	*s;

	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return (xstrdup("-"));
	xasprintf(&s, "%lldms", (long long)json_integer_value(v));
	return (s);
}

/* A boolean member as yes/no ("-" when null or missing). */
static char *
cli_yesno(json_t *row, const char *key)
{
	json_t	*v = json_object_get(row, key);

	if (!json_is_boolean(v))
		return (xstrdup("-"));
	return (xstrdup(json_is_true(v) ? "yes" : "no"));
}

/* Unacknowledged bytes both ways as in/out. */
static char *
cli_unacked(json_t *s, const char *key)
{
	char	*in, *out, *r;

	in = cli_bytes(json_object_get(s, "unacked_in"));
	out = cli_bytes(json_object_get(s, "unacked_out"));
	if (strcmp(in, "-") == 0 && strcmp(out, "-") == 0)
		r = xstrdup("-");
	else
		xasprintf(&r, "%s/%s", in, out);
	free(in);
	free(out);
	return (r);
}

static const struct cli_col cli_session_cols[] = {
	{ "ID", "id", cli_cell, 0 },
	{ "STATE", "state", cli_cell, 0 },
	{ "GUEST", "guest", cli_guest, 0 },
	{ "IN", "bytes_in", cli_bytes_of, 1 },
	{ "OUT", "bytes_out", cli_bytes_of, 1 },
	{ "UNACKED", NULL, cli_unacked, 1 },
	{ "WINDOW", "window", cli_bytes_of, 1 },
	{ "REPLAYED", "replayed", cli_bytes_of, 1 },
	{ "RESUMES", "resumes", cli_cell, 1 },
	{ "AGE", "age_ms", cli_age_of, 1 },
};

static const struct cli_col cli_relay_cols[] = {
	{ "HOST", "host", cli_cell, 0 },
	{ "MESH", "mesh", cli_cell, 0 },
	{ "CONNECTED", "connected", cli_yesno, 0 },
	{ "IN-VSPHERE", "known", cli_yesno, 0 },
	{ "ACKED", "acked_epoch", cli_cell, 1 },
	{ "CONVERGED", "converged", cli_yesno, 0 },
	{ "LAG", "lag_ms", cli_ms_of, 1 },
	{ "SINCE", "since_ms", cli_age_of, 1 },
	{ "LAST-NACK", "last_error", cli_cell, 0 },
};

#define CLI_NELEM(a)	(sizeof(a) / sizeof((a)[0]))
static const struct cli_table cli_tables[] = {
	{ "sessions", "sessions", cli_session_cols,
	    CLI_NELEM(cli_session_cols) },
	{ "relays", "relays", cli_relay_cols, CLI_NELEM(cli_relay_cols) },
};

/* The table layout for SUBCMD, or NULL. */
static const struct cli_table *
cli_table_find(const char *subcmd)
{
	size_t	i;

	for (i = 0; i < CLI_NELEM(cli_tables); i++)
		if (strcmp(cli_tables[i].subcmd, subcmd) == 0)
			return (&cli_tables[i]);
	return (NULL);
}

/* A list answer: one aligned row per element under a header. */
static int
cli_print_table(const struct cli *c, const struct cli_table *t,
    json_t *answer)
{
	json_t	*list, *s;
	char	**cells;
	size_t	 n, i, r, col, nc = t->ncols;
	int	 width[16], w;

	list = json_object_get(answer, t->list);
	if (!json_is_array(list) || nc > CLI_NELEM(width)) {
		fprintf(stderr, "%s: %s: answer has no \"%s\" list\n",
		    c->prog, c->subcmd, t->list);
		return (CLI_EXIT_ERROR);
	}
	n = json_array_size(list);
	cells = xreallocarray(NULL, (n + 1) * nc, sizeof(*cells));
	for (col = 0; col < nc; col++)
		cells[col] = xstrdup(t->cols[col].title);
	json_array_foreach(list, i, s)
		for (col = 0; col < nc; col++)
			cells[(i + 1) * nc + col] = t->cols[col].fmt(s,
			    t->cols[col].key);

	for (col = 0; col < nc; col++) {
		width[col] = 0;
		for (r = 0; r <= n; r++) {
			w = (int)strlen(cells[r * nc + col]);
			if (w > width[col])
				width[col] = w;
		}
	}
	for (r = 0; r <= n; r++) {
		for (col = 0; col < nc; col++) {
			w = col == nc - 1 && !t->cols[col].right ? 0 :
			    width[col];
			printf("%s%*s", col > 0 ? "  " : "",
			    t->cols[col].right ? w : -w, cells[r * nc + col]);
			free(cells[r * nc + col]);
		}
		printf("\n");
	}
	free(cells);
	return (CLI_EXIT_OK);
}

/* Would a reader splitting on spaces and '=' misread string V? */
static int
cli_needs_quote(json_t *v)
{
	const char	*p = json_string_value(v);

	if (p == NULL || *p == '\0')
		return (1);
	for (; *p != '\0'; p++) {
		if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '=' ||
		    *p == '"' || *p == '\\')
			return (1);
	}
	return (0);
}

/* key=value, quoting values a reader could not split on spaces. */
static void
cli_print_kv(const char *key, json_t *v)
{
	char	*k, *s;

	k = cli_clean(xstrdup(key));
	if (json_is_string(v) && cli_needs_quote(v))
		s = json_dumps(v, JSON_ENCODE_ANY);
	else if (json_is_array(v))
		s = json_dumps(v, JSON_COMPACT);
	else
		s = cli_scalar(v);
	printf(" %s=%s", k, s != NULL ? cli_clean(s) : "?");
	free(s);
	free(k);
}

/* Nested objects become a.b=value. */
static void
cli_print_flat(const char *prefix, json_t *obj)
{
	const char	*key;
	json_t		*v;
	char		*full;

	json_object_foreach(obj, key, v) {
		if (prefix == NULL && (strcmp(key, "event") == 0 ||
		    strcmp(key, "ts") == 0))
			continue;
		if (prefix != NULL)
			xasprintf(&full, "%s.%s", prefix, key);
		else
			full = xstrdup(key);
		if (json_is_object(v) && json_object_size(v) > 0)
			cli_print_flat(full, v);
		else
			cli_print_kv(full, v);
		free(full);
	}
}

/*
 * One event as "HH:MM:SS.mmm EVENT key=value ...".  UTC, like the
 * daemons' log lines, so the two can be read side by side.
 */
static void
cli_print_event(json_t *ev)
{
	json_t		*ts;
	const char	*name;
	char		*n, utc[XTIME_UTC_LEN];
	long long	 ms;

	ts = json_object_get(ev, "ts");
	if (json_is_number(ts) && json_number_value(ts) >= 0 &&
	    json_number_value(ts) < 1e15)
		ms = (long long)json_number_value(ts);
	else
		ms = xtime_wall_ms();
	/* "YYYY-MM-DDT" off the front, "Z" off the end. */
	xtime_utc(ms, utc, sizeof(utc));
	utc[23] = '\0';
	name = json_string_value(json_object_get(ev, "event"));
	n = cli_clean(xstrdup(name != NULL ? name : "-"));
	printf("%s %s", utc + 11, n);
	free(n);
	cli_print_flat(NULL, ev);
	printf("\n");
}

struct cli_watch {
	const struct cli	*c;
	int			 answered;
	int			 rv;
};

/* Each line of a watch: first the answer, then the events. */
static int
cli_watch_cb(json_t *obj, void *arg)
{
	struct cli_watch	*w = arg;

	if (!w->answered) {
		w->answered = 1;
		if (w->c->json)
			cli_print_json(obj);
		if (cli_refused(w->c, obj)) {
			w->rv = CLI_EXIT_ERROR;
			return (1);
		}
	} else if (w->c->json)
		cli_print_json(obj);
	else
		cli_print_event(obj);
	fflush(stdout);
	return (cli_interrupted);
}

/* ^C ends a watch; a second one (handler reset) kills as usual. */
static void
cli_sigint(int sig)
{
	cli_interrupted = 1;
}

/* "watch": stream until ^C (exit 0) or the daemon closes (exit 1). */
static int
cli_watch(const struct cli *c)
{
	struct sigaction	 sa, old;
	struct cli_watch	 w;
	int			 rv;

	memset(&w, 0, sizeof(w));
	w.c = c;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = cli_sigint;
	sa.sa_flags = SA_RESETHAND;	/* and no SA_RESTART: wake poll() */
	sigemptyset(&sa.sa_mask);
	cli_interrupted = 0;
	sigaction(SIGINT, &sa, &old);
	rv = ctl_watch(c->path, c->req, cli_watch_cb, &w);
	sigaction(SIGINT, &old, NULL);

	if (cli_interrupted && (rv == CTL_OK ||
	    (rv == CTL_E_SYSTEM && errno == EINTR)))
		return (w.rv);
	if (rv == CTL_OK)
		return (w.rv);
	if (rv == CTL_E_CLOSED && w.answered) {
		fflush(stdout);
		fprintf(stderr, "%s: watch: the daemon closed the status "
		    "socket\n", c->prog);
		return (CLI_EXIT_ERROR);
	}
	return (cli_ctl_error(c, rv));
}

/* One request, one answer, printed the way SUBCMD wants. */
static int
cli_request(const struct cli *c)
{
	const struct cli_table	*t;
	json_t			*answer;
	int			 rv;

	if ((rv = ctl_request(c->path, c->req, c->timeout, &answer)) !=
	    CTL_OK)
		return (cli_ctl_error(c, rv));
	if (c->json) {
		cli_print_json(answer);
		rv = cli_refused(c, answer) ? CLI_EXIT_ERROR : CLI_EXIT_OK;
	} else if (cli_refused(c, answer))
		rv = CLI_EXIT_ERROR;
	else if ((t = cli_table_find(c->subcmd)) != NULL)
		rv = cli_print_table(c, t, answer);
	else if (strcmp(c->subcmd, "help") == 0)
		rv = cli_print_help(answer);
	else {
		cli_print_object(answer, 0, 0);
		rv = CLI_EXIT_OK;
	}
	json_decref(answer);
	return (rv);
}

/* Run a query subcommand; returns the exit code (0, 1, 2). */
int
cli_query(const char *prog, const char *subcmd, int argc, char **argv)
{
	return (cli_query_prepared(prog, subcmd, argc, argv, NULL));
}

/* The same, with PREPARE on the request first; see cli.h. */
int
cli_query_prepared(const char *prog, const char *subcmd, int argc,
    char **argv, int (*prepare)(json_t *, char *, size_t))
{
	struct cli	c;
	char		err[512];
	int		rv;

	memset(&c, 0, sizeof(c));
	c.prog = prog != NULL ? prog : "vrelay";
	c.subcmd = subcmd;
	c.timeout = CLI_TIMEOUT_MS;
	if (subcmd == NULL || *subcmd == '\0' || *subcmd == '-') {
		cli_usage(stderr, c.prog);
		return (CLI_EXIT_USAGE);
	}
	c.req = json_pack("{s:s}", "cmd", subcmd);
	if (c.req == NULL) {
		rv = cli_usage_error(&c, "command is not valid UTF-8", NULL);
		goto out;
	}
	if ((rv = cli_parse(&c, argc, argv)) != CLI_EXIT_OK)
		goto out;
	if (c.help) {
		cli_usage(stdout, c.prog);
		rv = CLI_EXIT_OK;
		goto out;
	}
	if (c.path == NULL)
		c.path = getenv(CLI_ENV_STATUS);
	if (c.path == NULL || *c.path == '\0') {
		rv = cli_usage_error(&c, "no status socket: use --status PATH "
		    "or set " CLI_ENV_STATUS, NULL);
		goto out;
	}
	if (prepare != NULL && prepare(c.req, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s: %s: %s\n", c.prog, subcmd, cli_clean(err));
		rv = CLI_EXIT_ERROR;
		goto out;
	}
	if (strcmp(subcmd, "watch") == 0)
		rv = cli_watch(&c);
	else
		rv = cli_request(&c);
out:
	fflush(stdout);
	json_decref(c.req);
	return (rv);
}
