/*
 * conf.c -- one option table for the command line and the JSON file.
 *
 * conf_parse() walks argv twice with the same tokenizer: the first pass
 * checks the syntax and finds -c, so the file can be loaded before any
 * flag is applied in the second pass, wherever -c appears.  A byte per
 * option records which source set it, for the list-replace rule and
 * the CONF_REQUIRED check.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "conf.h"
#include "text.h"
#include "xmalloc.h"

#define CONF_SET_FILE	0x1
#define CONF_SET_ARGV	0x2

#define CONF_SHOW_MAX	64	/* bytes of a user's string in a message */
#define CONF_PATH_SHOW	256	/* bytes of a file name in a message */
#define CONF_USAGE_COL	32	/* longest flag column before wrapping */

/* One parse: the table, the target and where the current value is from. */
struct conf {
	const struct conf_opt	*opts;
	size_t			 nopts;
	void			*cfg;
	unsigned char		*set;	/* CONF_SET_* per option, or NULL */
	const char		*file;	/* source being read; NULL: argv */
	const char		*key;	/* key or flag being set, or NULL */
	size_t			 keylen;
	char			*err;
	size_t			 errlen;
};

/* One command-line item; opt NULL is -c/--config. */
struct conf_arg {
	const struct conf_opt	*opt;
	size_t			 idx;
	const char		*key;	/* the flag as typed, up to '=' */
	size_t			 keylen;
	const char		*val;	/* NULL: a bare boolean flag */
};

static int	conf_err(struct conf *, int, const char *, ...)
		    __attribute__((format(printf, 3, 4)));

/* Human-readable names for the CONF_E_* codes. */
const char *
conf_strerror(int code)
{
	switch (code) {
	case CONF_OK:
		return ("no error");
	case CONF_E_INVALID:
		return ("invalid option or value");
	case CONF_E_MISSING:
		return ("required option missing");
	case CONF_E_FILE:
		return ("config file unreadable or not JSON");
	}
	return ("unknown conf error");
}

/* Format an error prefixed by its source and key; returns CODE. */
static int
conf_err(struct conf *c, int code, const char *fmt, ...)
{
	char	 show[CONF_SHOW_MAX + 1], path[CONF_PATH_SHOW + 1];
	size_t	 off;
	int	 n;
	va_list	 ap;

	if (c->err == NULL || c->errlen == 0)
		return (code);
	if (c->file != NULL)
		n = snprintf(c->err, c->errlen, "%s: ",
		    text_ascii_copy(path, sizeof path, c->file,
		    strlen(c->file)));
	else
		n = snprintf(c->err, c->errlen, "command line: ");
	if (n < 0 || (size_t)n >= c->errlen)
		return (code);
	off = n;
	if (c->key != NULL) {
		text_ascii_copy(show, sizeof show, c->key, c->keylen);
		n = snprintf(c->err + off, c->errlen - off,
		    c->file != NULL ? "\"%s\": " : "%s: ", show);
		if (n < 0 || (size_t)n >= c->errlen - off)
			return (code);
		off += n;
	}
	va_start(ap, fmt);
	vsnprintf(c->err + off, c->errlen - off, fmt, ap);
	va_end(ap);
	return (code);
}

/* The field an option writes, inside the caller's struct. */
static void *
conf_field(const struct conf *c, const struct conf_opt *o)
{
	return ((char *)c->cfg + o->off);
}

/* Empty a list, freeing its strings. */
static void
conf_list_clear(struct conf_list *l)
{
	size_t	i;

	if (l->v != NULL) {
		for (i = 0; i < l->n; i++)
			free(l->v[i]);
		free(l->v);
	}
	l->v = NULL;
	l->n = 0;
}

/* Append a copy of S, keeping v NULL-terminated and under the cap. */
static int
conf_list_add(struct conf *c, struct conf_list *l, const char *s)
{
	if (l->n >= CONF_LIST_MAX)
		return (conf_err(c, CONF_E_INVALID,
		    "too many values (at most %d)", CONF_LIST_MAX));
	l->v = xreallocarray(l->v, l->n + 2, sizeof *l->v);
	l->v[l->n++] = xstrdup(s);
	l->v[l->n] = NULL;
	return (CONF_OK);
}

/* Read decimal digits at *SP without sign or space; advance *SP. */
static int
conf_digits(const char **sp, long long *out)
{
	const char	*p = *sp;
	long long	 v = 0;
	int		 d;

	if (*p < '0' || *p > '9')
		return (-1);
	for (; *p >= '0' && *p <= '9'; p++) {
		d = *p - '0';
		if (v > (LLONG_MAX - d) / 10)
			return (-1);
		v = v * 10 + d;
	}
	*sp = p;
	*out = v;
	return (0);
}

/* Digits times a unit's multiplier, refusing overflow. */
static int
conf_scale(long long v, long long mult, long long *out)
{
	if (v > LLONG_MAX / mult)
		return (-1);
	*out = v * mult;
	return (0);
}

/* Durations for timers: a bare number is milliseconds, as in JSON. */
int
conf_parse_msec(const char *s, long long *out)
{
	const char	*p = s;
	long long	 v, mult;

	*out = 0;
	if (s == NULL || conf_digits(&p, &v) == -1)
		return (-1);
	if (*p == '\0' || strcmp(p, "ms") == 0)
		mult = 1;
	else if (strcmp(p, "s") == 0)
		mult = 1000;
	else if (strcmp(p, "m") == 0)
		mult = 60 * 1000;
	else if (strcmp(p, "h") == 0)
		mult = 60 * 60 * 1000;
	else
		return (-1);
	return (conf_scale(v, mult, out));
}

/* Byte counts for buffers and limits, in powers of 1024. */
int
conf_parse_size(const char *s, long long *out)
{
	const char	*p = s;
	long long	 v, mult;

	*out = 0;
	if (s == NULL || conf_digits(&p, &v) == -1)
		return (-1);
	if (p[0] != '\0' && p[1] != '\0')
		return (-1);
	switch (p[0]) {
	case '\0':
		mult = 1;
		break;
	case 'k':
	case 'K':
		mult = 1024;
		break;
	case 'm':
	case 'M':
		mult = 1024 * 1024;
		break;
	case 'g':
	case 'G':
		mult = 1024 * 1024 * 1024;
		break;
	default:
		return (-1);
	}
	return (conf_scale(v, mult, out));
}

/* Signed decimal integer, whole string, no leading space or plus. */
static int
conf_parse_int(const char *s, long long *out)
{
	const char	*p = s;
	long long	 v;
	int		 neg = 0;

	*out = 0;
	if (*p == '-') {
		neg = 1;
		p++;
	}
	/* LLONG_MIN itself is refused: nothing needs it. */
	if (conf_digits(&p, &v) == -1 || *p != '\0')
		return (-1);
	*out = neg ? -v : v;
	return (0);
}

/* The words a boolean flag accepts after '='. */
static int
conf_parse_bool(const char *s, int *out)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };
	size_t	i;

	for (i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		if (strcmp(s, yes[i]) == 0) {
			*out = 1;
			return (0);
		}
		if (strcmp(s, no[i]) == 0) {
			*out = 0;
			return (0);
		}
	}
	return (-1);
}

/* Print V in the option's own units, so ranges read like the input. */
static void
conf_fmt(enum conf_type type, long long v, char *buf, size_t len)
{
	if (type == CONF_MSEC && v > 0) {
		if (v % (60 * 60 * 1000) == 0)
			snprintf(buf, len, "%lldh", v / (60 * 60 * 1000));
		else if (v % (60 * 1000) == 0)
			snprintf(buf, len, "%lldm", v / (60 * 1000));
		else if (v % 1000 == 0)
			snprintf(buf, len, "%llds", v / 1000);
		else
			snprintf(buf, len, "%lldms", v);
	} else if (type == CONF_SIZE && v > 0) {
		if (v % (1024 * 1024 * 1024) == 0)
			snprintf(buf, len, "%lldG", v / (1024 * 1024 * 1024));
		else if (v % (1024 * 1024) == 0)
			snprintf(buf, len, "%lldM", v / (1024 * 1024));
		else if (v % 1024 == 0)
			snprintf(buf, len, "%lldK", v / 1024);
		else
			snprintf(buf, len, "%lld", v);
	} else
		snprintf(buf, len, "%lld", v);
}

/* Store a number after the range check; nothing is written if it fails. */
static int
conf_set_number(struct conf *c, const struct conf_opt *o, long long v)
{
	char	a[32], lo[32], hi[32];

	if ((o->min != 0 || o->max != 0) && (v < o->min || v > o->max)) {
		conf_fmt(o->type, v, a, sizeof a);
		conf_fmt(o->type, o->min, lo, sizeof lo);
		conf_fmt(o->type, o->max, hi, sizeof hi);
		return (conf_err(c, CONF_E_INVALID,
		    "%s is out of range [%s, %s]", a, lo, hi));
	}
	*(long long *)conf_field(c, o) = v;
	return (CONF_OK);
}

/* What a number option expects, for messages. */
static const char *
conf_expect(enum conf_type type)
{
	switch (type) {
	case CONF_INT:
		return ("an integer");
	case CONF_MSEC:
		return ("a duration like 30s");
	case CONF_SIZE:
		return ("a size like 64K");
	case CONF_BOOL:
		return ("true or false");
	case CONF_STRLIST:
		return ("a string or an array of strings");
	default:
		return ("a string");
	}
}

/*
 * Store one textual value (from argv or a JSON string).  VAL NULL is a
 * bare boolean flag.  Lists get appended to; the caller clears them.
 */
static int
conf_set_text(struct conf *c, const struct conf_opt *o, const char *val)
{
	char		  show[CONF_SHOW_MAX + 1];
	char		**sp;
	long long	  v = 0;
	int		  b, rv = -1;

	switch (o->type) {
	case CONF_STR:
		sp = conf_field(c, o);
		free(*sp);
		*sp = xstrdup(val);
		return (CONF_OK);
	case CONF_STRLIST:
		return (conf_list_add(c, conf_field(c, o), val));
	case CONF_BOOL:
		b = 1;
		if (val != NULL && conf_parse_bool(val, &b) == -1)
			break;
		*(int *)conf_field(c, o) = b;
		return (CONF_OK);
	case CONF_INT:
		rv = conf_parse_int(val, &v);
		break;
	case CONF_MSEC:
		rv = conf_parse_msec(val, &v);
		break;
	case CONF_SIZE:
		rv = conf_parse_size(val, &v);
		break;
	default:
		return (conf_err(c, CONF_E_INVALID, "bad option type %d",
		    (int)o->type));
	}
	if (o->type != CONF_BOOL && rv == 0)
		return (conf_set_number(c, o, v));
	return (conf_err(c, CONF_E_INVALID, "expected %s, got \"%s\"",
	    conf_expect(o->type), text_ascii_copy(show, sizeof show, val,
	    strlen(val))));
}

/* Describe a JSON value the way it was written, for messages. */
static char *
conf_json_show(const json_t *j, char *buf, size_t len)
{
	char	show[CONF_SHOW_MAX + 1];

	switch (json_typeof(j)) {
	case JSON_STRING:
		snprintf(buf, len, "\"%s\"", text_ascii_copy(show, sizeof show,
		    json_string_value(j), json_string_length(j)));
		break;
	case JSON_INTEGER:
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT,
		    json_integer_value(j));
		break;
	case JSON_REAL:
		snprintf(buf, len, "%g", json_real_value(j));
		break;
	case JSON_TRUE:
		snprintf(buf, len, "true");
		break;
	case JSON_FALSE:
		snprintf(buf, len, "false");
		break;
	case JSON_NULL:
		snprintf(buf, len, "null");
		break;
	case JSON_ARRAY:
		snprintf(buf, len, "an array");
		break;
	case JSON_OBJECT:
		snprintf(buf, len, "an object");
		break;
	}
	return (buf);
}

/* A JSON value of the wrong JSON type for its option. */
static int
conf_json_type(struct conf *c, const struct conf_opt *o, const json_t *j)
{
	char	show[CONF_SHOW_MAX + 8];

	return (conf_err(c, CONF_E_INVALID, "expected %s, got %s",
	    conf_expect(o->type), conf_json_show(j, show, sizeof show)));
}

/* Store one JSON value; a list replaces what the field held. */
static int
conf_set_json(struct conf *c, const struct conf_opt *o, const json_t *j)
{
	char		 show[CONF_SHOW_MAX + 8];
	struct conf_list *l;
	const json_t	*e;
	json_int_t	 v;
	size_t		 i;
	int		 rv;

	switch (o->type) {
	case CONF_STRLIST:
		l = conf_field(c, o);
		if (json_is_string(j)) {
			conf_list_clear(l);
			return (conf_list_add(c, l, json_string_value(j)));
		}
		if (!json_is_array(j))
			return (conf_json_type(c, o, j));
		if (json_array_size(j) > CONF_LIST_MAX)
			return (conf_err(c, CONF_E_INVALID,
			    "too many values (at most %d)", CONF_LIST_MAX));
		json_array_foreach(j, i, e) {
			if (!json_is_string(e))
				return (conf_err(c, CONF_E_INVALID,
				    "element %zu: expected a string, got %s",
				    i + 1, conf_json_show(e, show,
				    sizeof show)));
		}
		conf_list_clear(l);
		json_array_foreach(j, i, e) {
			if ((rv = conf_list_add(c, l,
			    json_string_value(e))) != CONF_OK)
				return (rv);
		}
		return (CONF_OK);
	case CONF_BOOL:
		if (!json_is_boolean(j))
			return (conf_json_type(c, o, j));
		*(int *)conf_field(c, o) = json_is_true(j);
		return (CONF_OK);
	case CONF_INT:
	case CONF_MSEC:
	case CONF_SIZE:
		if (json_is_integer(j)) {
			/* LLONG_MIN is refused, as in flags. */
			v = json_integer_value(j);
			if ((o->type != CONF_INT && v < 0) || v == LLONG_MIN)
				return (conf_json_type(c, o, j));
			return (conf_set_number(c, o, v));
		}
		break;
	default:
		break;
	}
	if (!json_is_string(j))
		return (conf_json_type(c, o, j));
	/* Embedded NULs are refused by the decoder (no JSON_ALLOW_NUL). */
	return (conf_set_text(c, o, json_string_value(j)));
}

/* The index of the option called NAME (LEN bytes), or nopts. */
static size_t
conf_find(const struct conf *c, const char *name, size_t len)
{
	size_t	i;

	for (i = 0; i < c->nopts; i++) {
		if (strlen(c->opts[i].name) == len &&
		    memcmp(c->opts[i].name, name, len) == 0)
			break;
	}
	return (i);
}

/* Read PATH whole, up to CONF_FILE_MAX bytes, and decode it. */
static int
conf_read_json(struct conf *c, const char *path, json_t **out)
{
	json_error_t	 jerr;
	char		 show[JSON_ERROR_TEXT_LENGTH];
	FILE		*fp;
	char		*buf = NULL;
	size_t		 len = 0, size = 0, n;
	int		 rv;

	*out = NULL;
	if ((fp = fopen(path, "r")) == NULL) {
		rv = conf_err(c, CONF_E_FILE, "%s", strerror(errno));
		goto out;
	}
	for (;;) {
		if (len == size) {
			if (size > CONF_FILE_MAX) {
				rv = conf_err(c, CONF_E_FILE,
				    "larger than %d bytes", CONF_FILE_MAX);
				goto out;
			}
			size = size == 0 ? 8192 : size * 2;
			if (size > CONF_FILE_MAX + 1)
				size = CONF_FILE_MAX + 1;
			buf = xreallocarray(buf, size, 1);
		}
		n = fread(buf + len, 1, size - len, fp);
		len += n;
		if (n == 0) {
			if (ferror(fp)) {
				rv = conf_err(c, CONF_E_FILE, "%s",
				    strerror(errno));
				goto out;
			}
			break;
		}
	}
	*out = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (*out == NULL) {
		rv = conf_err(c, CONF_E_FILE, "line %d, column %d: %s",
		    jerr.line, jerr.column, text_ascii_copy(show, sizeof show,
		    jerr.text, strlen(jerr.text)));
		goto out;
	}
	rv = CONF_OK;
out:
	if (fp != NULL)
		fclose(fp);
	free(buf);
	return (rv);
}

/* Load PATH into c->cfg, marking what it set. */
static int
conf_file(struct conf *c, const char *path)
{
	json_t		*root = NULL, *j;
	const char	*key;
	size_t		 i;
	int		 rv;

	c->file = path;
	c->key = NULL;
	if ((rv = conf_read_json(c, path, &root)) != CONF_OK)
		goto out;
	if (!json_is_object(root)) {
		rv = conf_err(c, CONF_E_FILE,
		    "expected a JSON object at the top level");
		goto out;
	}
	json_object_foreach(root, key, j) {
		c->key = key;
		c->keylen = strlen(key);
		if ((i = conf_find(c, key, c->keylen)) == c->nopts) {
			rv = conf_err(c, CONF_E_INVALID, "unknown key");
			goto out;
		}
		if ((rv = conf_set_json(c, &c->opts[i], j)) != CONF_OK)
			goto out;
		if (c->set != NULL)
			c->set[i] |= CONF_SET_FILE;
	}
	rv = CONF_OK;
out:
	json_decref(root);
	c->file = NULL;
	c->key = NULL;
	return (rv);
}

/* Whether a separate argument is a flag rather than a value. */
static int
conf_isflag(const char *s)
{
	return (s[0] == '-' && s[1] != '\0' && (s[1] < '0' || s[1] > '9'));
}

/*
 * Take the next item from argv at *IP: 1 and CA filled in, 0 at the
 * end, or a negative CONF_E_* code for a syntax error.
 */
static int
conf_next(struct conf *c, int argc, char **argv, int *ip,
    struct conf_arg *ca)
{
	char		 show[CONF_SHOW_MAX + 1];
	const char	*a, *name, *eq;
	size_t		 len;
	int		 known;

	memset(ca, 0, sizeof *ca);
	c->key = NULL;
	if (*ip >= argc || (a = argv[*ip]) == NULL)
		return (0);
	(*ip)++;
	if (strcmp(a, "--") == 0) {
		if (*ip < argc && argv[*ip] != NULL) {
			a = argv[*ip];
			goto positional;
		}
		return (0);
	}
	if (!conf_isflag(a))
		goto positional;

	eq = NULL;
	known = 0;
	ca->idx = c->nopts;
	if (strcmp(a, "-c") == 0)
		known = 1;
	else if (a[1] == '-') {
		name = a + 2;
		eq = strchr(name, '=');
		len = eq != NULL ? (size_t)(eq - name) : strlen(name);
		if (len == 6 && memcmp(name, "config", 6) == 0)
			known = 1;
		else if ((ca->idx = conf_find(c, name, len)) < c->nopts) {
			ca->opt = &c->opts[ca->idx];
			known = 1;
		}
	}
	c->key = ca->key = a;
	c->keylen = ca->keylen = eq != NULL ? (size_t)(eq - a) : strlen(a);
	if (!known)
		return (conf_err(c, CONF_E_INVALID, "unknown option"));

	if (eq != NULL)
		ca->val = eq + 1;
	else if (ca->opt != NULL && ca->opt->type == CONF_BOOL)
		ca->val = NULL;
	else if (*ip < argc && argv[*ip] != NULL && !conf_isflag(argv[*ip]))
		ca->val = argv[(*ip)++];
	else
		return (conf_err(c, CONF_E_INVALID, "missing %s",
		    ca->opt == NULL ? "file name" : "value"));
	if (ca->opt == NULL && *ca->val == '\0')
		return (conf_err(c, CONF_E_INVALID, "empty file name"));
	return (1);

positional:
	return (conf_err(c, CONF_E_INVALID, "unexpected argument \"%s\"",
	    text_ascii_copy(show, sizeof show, a, strlen(a))));
}

/* Apply one flag; the first flag for a list drops the file's list. */
static int
conf_apply(struct conf *c, const struct conf_arg *ca)
{
	const struct conf_opt	*o = ca->opt;
	int			 rv;

	c->key = ca->key;
	c->keylen = ca->keylen;
	if (o->type == CONF_STRLIST && !(c->set[ca->idx] & CONF_SET_ARGV))
		conf_list_clear(conf_field(c, o));
	if ((rv = conf_set_text(c, o, ca->val)) != CONF_OK)
		return (rv);
	c->set[ca->idx] |= CONF_SET_ARGV;
	return (CONF_OK);
}

/* Every required option was set, and a required list is not empty. */
static int
conf_check_required(struct conf *c)
{
	const struct conf_opt	*o;
	const struct conf_list	*l;
	size_t			 i;

	for (i = 0; i < c->nopts; i++) {
		o = &c->opts[i];
		if (!(o->flags & CONF_REQUIRED))
			continue;
		if (o->type == CONF_STRLIST) {
			l = conf_field(c, o);
			if (l->n > 0)
				continue;
		} else if (c->set[i] != 0)
			continue;
		if (c->err != NULL && c->errlen > 0)
			snprintf(c->err, c->errlen, "missing required option"
			    " \"%s\": give --%s or set \"%s\" in the config"
			    " file", o->name, o->name, o->name);
		return (CONF_E_MISSING);
	}
	return (CONF_OK);
}

/* The command line and the file it names, into CFG. */
int
conf_parse(const struct conf_opt *opts, size_t nopts, void *cfg, int argc,
    char **argv, char *err, size_t errlen)
{
	struct conf	 c;
	struct conf_arg	 ca;
	const char	*file = NULL;
	int		 i, r, rv;

	memset(&c, 0, sizeof c);
	c.opts = opts;
	c.nopts = nopts;
	c.cfg = cfg;
	c.set = xcalloc(nopts + 1, 1);
	c.err = err;
	c.errlen = errlen;
	if (err != NULL && errlen > 0)
		err[0] = '\0';

	i = 0;
	while ((r = conf_next(&c, argc, argv, &i, &ca)) > 0) {
		if (ca.opt != NULL)
			continue;
		if (file != NULL) {
			rv = conf_err(&c, CONF_E_INVALID, "given twice");
			goto out;
		}
		file = ca.val;
	}
	if (r < 0) {
		rv = r;
		goto out;
	}
	if (file != NULL && (rv = conf_file(&c, file)) != CONF_OK)
		goto out;

	i = 0;
	while ((r = conf_next(&c, argc, argv, &i, &ca)) > 0) {
		if (ca.opt != NULL && (rv = conf_apply(&c, &ca)) != CONF_OK)
			goto out;
	}
	if (r < 0) {
		rv = r;
		goto out;
	}
	rv = conf_check_required(&c);
out:
	free(c.set);
	return (rv);
}

/* One JSON file into CFG, for conf_parse's -c and for reloads. */
int
conf_load_file(const struct conf_opt *opts, size_t nopts, void *cfg,
    const char *path, char *err, size_t errlen)
{
	struct conf	c;

	memset(&c, 0, sizeof c);
	c.opts = opts;
	c.nopts = nopts;
	c.cfg = cfg;
	c.err = err;
	c.errlen = errlen;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	return (conf_file(&c, path));
}

/* The flag column of a usage line: "--name ARG". */
static void
conf_usage_flag(const struct conf_opt *o, char *buf, size_t len)
{
	const char	*arg = o->argname;

	if (arg == NULL) {
		switch (o->type) {
		case CONF_INT:
			arg = "N";
			break;
		case CONF_MSEC:
			arg = "DURATION";
			break;
		case CONF_SIZE:
			arg = "SIZE";
			break;
		default:
			arg = "VALUE";
			break;
		}
	}
	if (o->type == CONF_BOOL)
		snprintf(buf, len, "--%s", o->name);
	else
		snprintf(buf, len, "--%s %s", o->name, arg);
}

/* Print one usage line, wrapping the help under an overlong flag. */
static void
conf_usage_line(FILE *fp, int width, const char *flag, const char *help,
    const char *mark1, const char *mark2)
{
	if (help == NULL)
		help = "";
	if (*help == '\0' && *mark1 == '\0' && *mark2 == '\0')
		fprintf(fp, "  %s\n", flag);
	else if ((int)strlen(flag) > width)
		fprintf(fp, "  %s\n  %-*s  %s%s%s\n", flag, width, "", help,
		    mark1, mark2);
	else
		fprintf(fp, "  %-*s  %s%s%s\n", width, flag, help, mark1,
		    mark2);
}

/* Options help, from the same table the parser uses. */
void
conf_usage(FILE *fp, const struct conf_opt *opts, size_t nopts)
{
	static const char	*cflag = "-c, --config FILE";
	const struct conf_opt	*o;
	char			 flag[128];
	size_t			 i;
	int			 width;

	if (fp == NULL)
		return;
	width = strlen(cflag);
	for (i = 0; i < nopts; i++) {
		conf_usage_flag(&opts[i], flag, sizeof flag);
		if ((int)strlen(flag) > width &&
		    strlen(flag) <= CONF_USAGE_COL)
			width = strlen(flag);
	}
	conf_usage_line(fp, width, cflag, "load options from a JSON file",
	    "", "");
	for (i = 0; i < nopts; i++) {
		o = &opts[i];
		conf_usage_flag(o, flag, sizeof flag);
		conf_usage_line(fp, width, flag, o->help,
		    (o->flags & CONF_REQUIRED) ? " (required)" : "",
		    o->type == CONF_STRLIST ? " (repeatable)" : "");
	}
}

/* Free what conf allocated in CFG; the fields end NULL and empty. */
void
conf_free(const struct conf_opt *opts, size_t nopts, void *cfg)
{
	char	**sp;
	size_t	  i;

	if (opts == NULL || cfg == NULL)
		return;
	for (i = 0; i < nopts; i++) {
		switch (opts[i].type) {
		case CONF_STR:
			sp = (char **)((char *)cfg + opts[i].off);
			free(*sp);
			*sp = NULL;
			break;
		case CONF_STRLIST:
			conf_list_clear((struct conf_list *)
			    ((char *)cfg + opts[i].off));
			break;
		default:
			break;
		}
	}
}
