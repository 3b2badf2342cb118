/*
 * conf_fuzz.c -- libFuzzer harness for the option table (conf.h): the
 * JSON config file and the command line, with every CONF_* type.
 *
 * Input: the config file's bytes up to the first NUL, then command-line
 * words separated by NULs (each in its own heap block, so ASan sees a
 * read past one).  A first byte below 0x08 (never the start of JSON
 * text) picks the variant: bit 0 the second table, bit 1 how the file
 * is named (-c FILE, --config FILE or --config=FILE), bit 2
 * conf_load_file() instead of conf_parse().  The file is a memfd named
 * by its /proc/self/fd path and always given first, so "-c" in the
 * words is "given twice" and nothing else on disk is ever opened; an
 * empty file part is "{}".
 *
 * Tables: the relay's rows (relay/vrelay.c, copied with their limits,
 * and the real DAEMON_SESS_OPTS), and a synthetic one with what the
 * relay's lacks: a required list and a required integer, negative and
 * unlimited ranges.  Whatever conf accepts must be in range and must
 * come out the same when written back as flags and as a JSON file;
 * whatever it refuses must be an error code with one printable line
 * naming where.  conf never exits: a refusal that killed the process
 * would end the run here.
 */
#include <sys/mman.h>

#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "conf.h"
#include "daemon.h"
#include "fuzz.h"

#define FZ_ARGS_MAX	64		/* words taken from one input */
#define FZ_UNSET	0x5a5a5a5a5a5aLL	/* a scalar nobody set */

int	LLVMFuzzerInitialize(int *, char ***);

/* Room for either table's fields. */
struct fz_cfg {
	char			*str[12];
	struct conf_list	 list[4];
	long long		 num[6];
	int			 b[3];
	struct daemon_sessconf	 sess;
};

#define S(i)	offsetof(struct fz_cfg, str[i])
#define L(i)	offsetof(struct fz_cfg, list[i])
#define N(i)	offsetof(struct fz_cfg, num[i])
#define B(i)	offsetof(struct fz_cfg, b[i])

/* relay/vrelay.c's rows. */
static const struct conf_opt fz_relay[] = {
	{ "host", CONF_STR, S(0), 0, 0, CONF_REQUIRED, "NAME", NULL },
	{ "guest-listen", CONF_STRLIST, L(0), 0, 0, 0, "ADDR", NULL },
	{ "agent-listen", CONF_STRLIST, L(1), 0, 0, 0, "ADDR", NULL },
	{ "mesh-listen", CONF_STR, S(1), 0, 0, 0, "ADDR", NULL },
	{ "status", CONF_STR, S(2), 0, 0, 0, "PATH", NULL },
	{ "peer", CONF_STRLIST, L(2), 0, 0, 0, "NAME=ADDR", NULL },
	{ "appliance-host", CONF_STR, S(3), 0, 0, 0, "NAME", NULL },
	{ "appliance", CONF_STR, S(4), 0, 0, 0, "ADDR", NULL },
	{ "locator", CONF_STR, S(5), 0, 0, 0, "ADDR", NULL },
	{ "mesh-advertise", CONF_STR, S(6), 0, 0, 0, "ADDR", NULL },
	{ "vsock-dir", CONF_STR, S(7), 0, 0, 0, "DIR", NULL },
	{ "vsock-cid", CONF_INT, N(0), 0, 0xfffffffeLL, 0, "CID", NULL },
	{ "debug", CONF_BOOL, B(0), 0, 0, 0, NULL, NULL },
	{ "quiet", CONF_BOOL, B(1), 0, 0, 0, NULL, NULL },
	DAEMON_SESS_OPTS(offsetof(struct fz_cfg, sess)),
};

/* What the relay's table lacks. */
static const struct conf_opt fz_synth[] = {
	{ "name", CONF_STR, S(0), 0, 0, CONF_REQUIRED, NULL, NULL },
	{ "listen", CONF_STRLIST, L(0), 0, 0, CONF_REQUIRED, NULL, NULL },
	{ "port", CONF_INT, N(0), 1, 0xffffffffLL, CONF_REQUIRED, NULL,
	    NULL },
	{ "offset", CONF_INT, N(1), -5, 5, 0, NULL, NULL },
	{ "any", CONF_INT, N(2), 0, 0, 0, NULL, NULL },
	{ "delay", CONF_MSEC, N(3), 0, 0, 0, NULL, NULL },
	{ "buf", CONF_SIZE, N(4), 0, 0, 0, NULL, NULL },
	{ "period", CONF_MSEC, N(5), 250, 3600000, 0, NULL, NULL },
	{ "c", CONF_STR, S(1), 0, 0, 0, NULL, NULL },
	{ "x", CONF_STRLIST, L(1), 0, 0, 0, NULL, NULL },
	{ "on", CONF_BOOL, B(0), 0, 0, 0, NULL, NULL },
};

static const struct {
	const struct conf_opt	*opts;
	size_t			 n;
} fz_tables[] = {
	{ fz_relay, sizeof(fz_relay) / sizeof(fz_relay[0]) },
	{ fz_synth, sizeof(fz_synth) / sizeof(fz_synth[0]) },
};

static int	 fz_fd = -1;		/* the config file */
static char	 fz_path[64];

/* The file lives in memory: nothing on disk is written or read. */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fz_fd = memfd_create("conf_fuzz.json", MFD_CLOEXEC);
	CHECK(fz_fd != -1);
	snprintf(fz_path, sizeof(fz_path), "/proc/self/fd/%d", fz_fd);
	return (0);
}

/* Make the file hold LEN bytes of P. */
static void
fz_file(const void *p, size_t len)
{
	CHECK(ftruncate(fz_fd, 0) == 0);
	CHECK(len == 0 || pwrite(fz_fd, p, len, 0) == (ssize_t)len);
}

/* Every scalar "not set", every string and list empty. */
static void
fz_cfg_init(struct fz_cfg *c)
{
	size_t	i;

	memset(c, 0, sizeof(*c));
	for (i = 0; i < sizeof(c->num) / sizeof(c->num[0]); i++)
		c->num[i] = FZ_UNSET;
	c->sess.hold_ms = c->sess.handshake_ms = c->sess.keepalive_ms =
	    c->sess.replay_max = c->sess.max_sessions =
	    c->sess.max_pending = FZ_UNSET;
	for (i = 0; i < sizeof(c->b) / sizeof(c->b[0]); i++)
		c->b[i] = 7;
}

/* The field of option O in C. */
static void *
fz_field(const struct fz_cfg *c, const struct conf_opt *o)
{
	return ((char *)(uintptr_t)c + o->off);
}

/* Whether option O holds anything in C. */
static int
fz_isset(const struct fz_cfg *c, const struct conf_opt *o)
{
	switch (o->type) {
	case CONF_STR:
		return (*(char **)fz_field(c, o) != NULL);
	case CONF_STRLIST:
		return (((struct conf_list *)fz_field(c, o))->n > 0);
	case CONF_BOOL:
		return (*(int *)fz_field(c, o) != 7);
	default:
		return (*(long long *)fz_field(c, o) != FZ_UNSET);
	}
}

/* What an accepted parse promises (FULL: REQUIRED was checked too). */
static void
fz_valid(const struct fz_cfg *c, const struct conf_opt *opts, size_t n,
    int full)
{
	const struct conf_opt	*o;
	const struct conf_list	*l;
	long long		 v;
	size_t			 i, j;

	for (i = 0; i < n; i++) {
		o = &opts[i];
		if (full && (o->flags & CONF_REQUIRED))
			CHECK(fz_isset(c, o));
		if (!fz_isset(c, o))
			continue;
		switch (o->type) {
		case CONF_STR:
			break;
		case CONF_STRLIST:
			l = fz_field(c, o);
			CHECK(l->n <= CONF_LIST_MAX && l->v != NULL &&
			    l->v[l->n] == NULL);
			for (j = 0; j < l->n; j++)
				CHECK(l->v[j] != NULL);
			break;
		case CONF_BOOL:
			CHECK(*(int *)fz_field(c, o) == 0 ||
			    *(int *)fz_field(c, o) == 1);
			break;
		default:
			v = *(long long *)fz_field(c, o);
			if (o->min != 0 || o->max != 0)
				CHECK(v >= o->min && v <= o->max);
			if (o->type != CONF_INT)
				CHECK(v >= 0);
			break;
		}
	}
}

/* A and B hold the same values. */
static void
fz_same(const struct fz_cfg *a, const struct fz_cfg *b,
    const struct conf_opt *opts, size_t n)
{
	const struct conf_opt	*o;
	const struct conf_list	*la, *lb;
	size_t			 i, j;

	for (i = 0; i < n; i++) {
		o = &opts[i];
		CHECK(fz_isset(a, o) == fz_isset(b, o));
		if (!fz_isset(a, o))
			continue;
		switch (o->type) {
		case CONF_STR:
			CHECK(strcmp(*(char **)fz_field(a, o),
			    *(char **)fz_field(b, o)) == 0);
			break;
		case CONF_STRLIST:
			la = fz_field(a, o);
			lb = fz_field(b, o);
			CHECK(la->n == lb->n);
			for (j = 0; j < la->n; j++)
				CHECK(strcmp(la->v[j], lb->v[j]) == 0);
			break;
		case CONF_BOOL:
			CHECK(*(int *)fz_field(a, o) == *(int *)fz_field(b, o));
			break;
		default:
			CHECK(*(long long *)fz_field(a, o) ==
			    *(long long *)fz_field(b, o));
			break;
		}
	}
}

/* After conf_free() nothing is left. */
static void
fz_freed(const struct fz_cfg *c, const struct conf_opt *opts, size_t n)
{
	const struct conf_list	*l;
	size_t			 i;

	for (i = 0; i < n; i++) {
		if (opts[i].type == CONF_STR)
			CHECK(*(char **)fz_field(c, &opts[i]) == NULL);
		if (opts[i].type == CONF_STRLIST) {
			l = fz_field(c, &opts[i]);
			CHECK(l->v == NULL && l->n == 0);
		}
	}
}

/* A refusal: one line of printable ASCII saying where. */
static void
fz_refused(int rv, const char *err, size_t errlen)
{
	size_t	i;

	CHECK(rv == CONF_E_INVALID || rv == CONF_E_MISSING ||
	    rv == CONF_E_FILE);
	CHECK(strcmp(conf_strerror(rv), "unknown conf error") != 0);
	CHECK(memchr(err, '\0', errlen) != NULL && err[0] != '\0');
	for (i = 0; err[i] != '\0'; i++)
		CHECK((unsigned char)err[i] >= 0x20 &&
		    (unsigned char)err[i] <= 0x7e);
	CHECK(strncmp(err, "command line: ", 14) == 0 ||
	    strncmp(err, fz_path, strlen(fz_path)) == 0 ||
	    strncmp(err, "missing required option \"", 25) == 0);
}

/* Append one flag --NAME=VALUE to ARGV. */
static void
fz_flag(char ***argv, int *argc, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
fz_flag(char ***argv, int *argc, const char *name, const char *fmt, ...)
{
	va_list	 ap;
	char	*val;

	va_start(ap, fmt);
	CHECK(vasprintf(&val, fmt, ap) != -1);
	va_end(ap);
	*argv = realloc(*argv, (*argc + 2) * sizeof(**argv));
	CHECK(*argv != NULL);
	CHECK(asprintf(&(*argv)[*argc], "--%s=%s", name, val) != -1);
	(*argv)[++*argc] = NULL;
	free(val);
}

/*
 * C written back as flags and as a JSON object (NULL if a string from
 * the command line is not UTF-8, which JSON cannot carry).
 */
static json_t *
fz_write(const struct fz_cfg *c, const struct conf_opt *opts, size_t n,
    char ***argvp, int *argcp)
{
	const struct conf_opt	*o;
	const struct conf_list	*l;
	json_t			*obj, *a, *v;
	long long		 num;
	size_t			 i, j;
	int			 ok = 1;

	obj = json_object();
	*argvp = NULL;
	*argcp = 0;
	for (i = 0; i < n; i++) {
		o = &opts[i];
		if (!fz_isset(c, o))
			continue;
		switch (o->type) {
		case CONF_STR:
			fz_flag(argvp, argcp, o->name, "%s",
			    *(char **)fz_field(c, o));
			v = json_string(*(char **)fz_field(c, o));
			ok &= v != NULL;
			break;
		case CONF_STRLIST:
			l = fz_field(c, o);
			v = json_array();
			for (j = 0; j < l->n; j++) {
				fz_flag(argvp, argcp, o->name, "%s", l->v[j]);
				a = json_string(l->v[j]);
				ok &= a != NULL;
				json_array_append_new(v, a);
			}
			break;
		case CONF_BOOL:
			fz_flag(argvp, argcp, o->name, "%s",
			    *(int *)fz_field(c, o) ? "true" : "false");
			v = json_boolean(*(int *)fz_field(c, o));
			break;
		default:
			num = *(long long *)fz_field(c, o);
			fz_flag(argvp, argcp, o->name, "%lld", num);
			v = json_integer(num);
			break;
		}
		if (v != NULL)
			CHECK(json_object_set_new(obj, o->name, v) == 0);
	}
	if (!ok) {
		json_decref(obj);
		return (NULL);
	}
	return (obj);
}

/* Free an argv made here. */
static void
fz_args_free(char **argv, int argc)
{
	int	i;

	for (i = 0; i < argc; i++)
		free(argv[i]);
	free(argv);
}

/*
 * Accepted: write it back both ways; each must read back the same.  As
 * flags only when the required options were checked (FULL).
 */
static void
fz_roundtrip(const struct fz_cfg *c, const struct conf_opt *opts, size_t n,
    int full)
{
	struct fz_cfg	 c2;
	json_t		*obj;
	char		**argv, *s, err[512];
	int		 argc;

	obj = fz_write(c, opts, n, &argv, &argc);

	if (full) {
		fz_cfg_init(&c2);
		CHECK(conf_parse(opts, n, &c2, argc, argv, err, sizeof(err)) ==
		    CONF_OK);
		fz_same(c, &c2, opts, n);
		conf_free(opts, n, &c2);
	}

	if (obj != NULL) {
		s = json_dumps(obj, 0);
		CHECK(s != NULL);
		fz_file(s, strlen(s));
		fz_cfg_init(&c2);
		CHECK(conf_load_file(opts, n, &c2, fz_path, err,
		    sizeof(err)) == CONF_OK);
		fz_same(c, &c2, opts, n);
		conf_free(opts, n, &c2);
		free(s);
		json_decref(obj);
	}
	fz_args_free(argv, argc);
}

/* The exported value parsers on one word: what they take reads back. */
static void
fz_values(const char *w)
{
	char		 buf[32];
	long long	 v, v2;

	if (conf_parse_msec(w, &v) == 0) {
		CHECK(v >= 0);
		snprintf(buf, sizeof(buf), "%lld", v);
		CHECK(conf_parse_msec(buf, &v2) == 0 && v2 == v);
	} else
		CHECK(v == 0);
	if (conf_parse_size(w, &v) == 0) {
		CHECK(v >= 0);
		snprintf(buf, sizeof(buf), "%lld", v);
		CHECK(conf_parse_size(buf, &v2) == 0 && v2 == v);
	} else
		CHECK(v == 0);
}

/* Entry point: a file, then words. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct conf_opt	*opts;
	struct fz_cfg		 c;
	const uint8_t		*p, *end = data + size, *nul;
	char			**argv, err[512];
	size_t			 n, flen, wlen;
	int			 mode = 0, argc = 0, i, rv;

	if (size > 0 && data[0] < 0x08) {
		mode = data[0];
		data++;
		size--;
	}
	opts = fz_tables[mode & 1].opts;
	n = fz_tables[mode & 1].n;

	nul = memchr(data, '\0', size);
	flen = nul != NULL ? (size_t)(nul - data) : size;
	if (flen == 0)
		fz_file("{}", 2);
	else
		fz_file(data, flen);

	/* The file first: see the top of this file. */
	argv = calloc(FZ_ARGS_MAX + 3, sizeof(*argv));
	CHECK(argv != NULL);
	switch (mode & 2 ? 1 + (flen & 1) : 0) {
	case 0:
		argv[argc++] = strdup("-c");
		argv[argc++] = strdup(fz_path);
		break;
	case 1:
		argv[argc++] = strdup("--config");
		argv[argc++] = strdup(fz_path);
		break;
	default:
		CHECK(asprintf(&argv[argc++], "--config=%s", fz_path) != -1);
		break;
	}
	/* The words: each NUL ends one, the end of the input the last. */
	for (p = nul != NULL ? nul + 1 : NULL; p != NULL &&
	    argc < FZ_ARGS_MAX + 2; p = nul != NULL ? nul + 1 : NULL) {
		nul = memchr(p, '\0', (size_t)(end - p));
		wlen = nul != NULL ? (size_t)(nul - p) : (size_t)(end - p);
		argv[argc] = malloc(wlen + 1);
		CHECK(argv[argc] != NULL);
		memcpy(argv[argc], p, wlen);
		argv[argc][wlen] = '\0';
		fz_values(argv[argc]);
		argc++;
	}
	for (i = 0; i < argc; i++)
		CHECK(argv[i] != NULL);

	fz_cfg_init(&c);
	memset(err, 'X', sizeof(err));
	if (mode & 4)
		rv = conf_load_file(opts, n, &c, fz_path, err, sizeof(err));
	else
		rv = conf_parse(opts, n, &c, argc, argv, err, sizeof(err));
	if (rv == CONF_OK) {
		CHECK(err[0] == '\0');
		fz_valid(&c, opts, n, !(mode & 4));
		fz_roundtrip(&c, opts, n, !(mode & 4));
	} else
		fz_refused(rv, err, sizeof(err));
	conf_free(opts, n, &c);
	fz_freed(&c, opts, n);

	fz_args_free(argv, argc);
	return (0);
}
