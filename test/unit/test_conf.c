/*
 * test_conf.c -- the option table against the command line, JSON files
 * and both together, every error path, and the value parsers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"
#include "xmalloc.h"

struct tcfg {
	char			*listen;
	char			*name;
	struct conf_list	 peers;
	long long		 workers;
	long long		 offset;
	int			 daemon;
	long long		 hold;
	long long		 bufsz;
};

static const struct conf_opt topts[] = {
	{ "listen", CONF_STR, offsetof(struct tcfg, listen), 0, 0,
	    CONF_REQUIRED, "ADDR", "address to listen on" },
	{ "name", CONF_STR, offsetof(struct tcfg, name), 0, 0, 0,
	    "NAME", "relay name" },
	{ "peer", CONF_STRLIST, offsetof(struct tcfg, peers), 0, 0, 0,
	    "NAME=ADDR", "a peer relay" },
	{ "workers", CONF_INT, offsetof(struct tcfg, workers), 1, 64, 0,
	    NULL, "worker count" },
	{ "offset", CONF_INT, offsetof(struct tcfg, offset), 0, 0, 0,
	    NULL, "any integer" },
	{ "daemon", CONF_BOOL, offsetof(struct tcfg, daemon), 0, 0, 0,
	    NULL, "run in the background" },
	{ "hold-time", CONF_MSEC, offsetof(struct tcfg, hold), 1000,
	    3600 * 1000, 0, NULL, "hold time" },
	{ "buffer-size", CONF_SIZE, offsetof(struct tcfg, bufsz), 4096,
	    1024LL * 1024 * 1024, 0, NULL, "buffer size" },
};
#define NOPTS	(sizeof topts / sizeof topts[0])

struct fixture {
	struct tcfg	cfg;
	char		path[2][64];
	char		err[512];
};

/* A fresh config and no temporary files. */
static int
setup(void **state)
{
	struct fixture	*f;

	f = xcalloc(1, sizeof *f);
	*state = f;
	return (0);
}

/* Free the config and remove the files even when an assert failed. */
static int
teardown(void **state)
{
	struct fixture	*f = *state;
	size_t		 i;

	conf_free(topts, NOPTS, &f->cfg);
	for (i = 0; i < 2; i++)
		if (f->path[i][0] != '\0')
			unlink(f->path[i]);
	free(f);
	return (0);
}

/* Write TEXT to temporary file number N; returns its path. */
static const char *
write_file(struct fixture *f, int n, const char *text)
{
	size_t	len = strlen(text);
	int	fd;

	if (f->path[n][0] != '\0')
		unlink(f->path[n]);
	strlcpy(f->path[n], "/tmp/test_conf.XXXXXX", sizeof f->path[n]);
	fd = mkstemp(f->path[n]);
	assert_true(fd != -1);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	return (f->path[n]);
}

/* conf_parse on a NULL-terminated list, with writable copies of it. */
static int
parse_args(struct fixture *f, const char *const *args)
{
	char	*argv[64];
	int	 argc, i, rv;

	for (argc = 0; args[argc] != NULL; argc++) {
		assert_true(argc < 63);
		argv[argc] = xstrdup(args[argc]);
	}
	argv[argc] = NULL;
	rv = conf_parse(topts, NOPTS, &f->cfg, argc, argv, f->err,
	    sizeof f->err);
	for (i = 0; i < argc; i++)
		free(argv[i]);
	return (rv);
}

#define PARSE(f, ...)	parse_args((f), (const char *[]){ __VA_ARGS__, NULL })

/* The error is CODE and its message contains every string given. */
static void
expect_err(struct fixture *f, int rv, int code, ...)
{
	const char	*s;
	va_list		 ap;

	if (rv != code)
		fail_msg("rv %d, expected %d; err \"%s\"", rv, code, f->err);
	va_start(ap, code);
	while ((s = va_arg(ap, const char *)) != NULL) {
		if (strstr(f->err, s) == NULL)
			fail_msg("\"%s\" not in error \"%s\"", s, f->err);
	}
	va_end(ap);
}

#define EXPECT_ERR(f, rv, code, ...) \
	expect_err((f), (rv), (code), __VA_ARGS__, (const char *)NULL)

/* Every form of flag, and every type, from the command line alone. */
static void
test_flags_only(void **state)
{
	struct fixture	*f = *state;
	struct tcfg	*c = &f->cfg;

	assert_int_equal(PARSE(f, "--listen", "tcp://[::1]:7000",
	    "--name=r1", "--peer", "a=vsock://3:5000", "--peer=b",
	    "--workers", "8", "--offset", "-5", "--daemon",
	    "--hold-time", "30s", "--buffer-size=64K"), CONF_OK);
	assert_string_equal(f->err, "");
	assert_string_equal(c->listen, "tcp://[::1]:7000");
	assert_string_equal(c->name, "r1");
	assert_int_equal(c->peers.n, 2);
	assert_string_equal(c->peers.v[0], "a=vsock://3:5000");
	assert_string_equal(c->peers.v[1], "b");
	assert_null(c->peers.v[2]);
	assert_int_equal(c->workers, 8);
	assert_int_equal(c->offset, -5);
	assert_int_equal(c->daemon, 1);
	assert_int_equal(c->hold, 30000);
	assert_int_equal(c->bufsz, 65536);
}

/* Booleans: bare, =word, and a bad word. */
static void
test_flags_bool(void **state)
{
	struct fixture	*f = *state;

	f->cfg.daemon = 1;
	assert_int_equal(PARSE(f, "--listen", "x", "--daemon=false"),
	    CONF_OK);
	assert_int_equal(f->cfg.daemon, 0);
	assert_int_equal(PARSE(f, "--listen", "x", "--daemon=yes"), CONF_OK);
	assert_int_equal(f->cfg.daemon, 1);
	assert_int_equal(PARSE(f, "--listen", "x", "--daemon=off"), CONF_OK);
	assert_int_equal(f->cfg.daemon, 0);
	EXPECT_ERR(f, PARSE(f, "--listen", "x", "--daemon=maybe"),
	    CONF_E_INVALID, "command line: --daemon: ", "\"maybe\"");
	/* A separate word is not the flag's value. */
	EXPECT_ERR(f, PARSE(f, "--listen", "x", "--daemon", "true"),
	    CONF_E_INVALID, "unexpected argument \"true\"");
}

/* Values that start with a dash: numbers and the = form. */
static void
test_flags_dash_values(void **state)
{
	struct fixture	*f = *state;

	assert_int_equal(PARSE(f, "--listen", "-", "--name=--odd",
	    "--offset=-9223372036854775807"), CONF_OK);
	assert_string_equal(f->cfg.listen, "-");
	assert_string_equal(f->cfg.name, "--odd");
	assert_int_equal(f->cfg.offset, -LLONG_MAX);
	/* "--" ends the options. */
	assert_int_equal(PARSE(f, "--listen", "y", "--"), CONF_OK);
	assert_string_equal(f->cfg.listen, "y");
}

/* Scalars keep the caller's defaults unless a source sets them. */
static void
test_defaults_kept(void **state)
{
	struct fixture	*f = *state;

	f->cfg.workers = 4;
	f->cfg.hold = 90000;
	assert_int_equal(PARSE(f, "--listen", "x"), CONF_OK);
	assert_int_equal(f->cfg.workers, 4);
	assert_int_equal(f->cfg.hold, 90000);
	assert_null(f->cfg.name);
	assert_int_equal(f->cfg.peers.n, 0);
	assert_null(f->cfg.peers.v);
}

/* Every type from a file, through each way of naming the file. */
static void
test_file_only(void **state)
{
	struct fixture	*f = *state;
	struct tcfg	*c = &f->cfg;
	const char	*p;
	char		 opt[128];

	p = write_file(f, 0, "{\n"
	    "  \"listen\": \"unix:/run/vrelay.sock\",\n"
	    "  \"name\": \"r2\",\n"
	    "  \"peer\": [\"a\", \"b\"],\n"
	    "  \"workers\": \"12\",\n"
	    "  \"offset\": -3,\n"
	    "  \"daemon\": true,\n"
	    "  \"hold-time\": 1500,\n"
	    "  \"buffer-size\": \"8M\"\n"
	    "}\n");
	assert_int_equal(PARSE(f, "-c", p), CONF_OK);
	assert_string_equal(c->listen, "unix:/run/vrelay.sock");
	assert_string_equal(c->name, "r2");
	assert_int_equal(c->peers.n, 2);
	assert_string_equal(c->peers.v[0], "a");
	assert_string_equal(c->peers.v[1], "b");
	assert_int_equal(c->workers, 12);
	assert_int_equal(c->offset, -3);
	assert_int_equal(c->daemon, 1);
	assert_int_equal(c->hold, 1500);
	assert_int_equal(c->bufsz, 8 * 1024 * 1024);

	/* Again, over the same struct: no leaks, same result. */
	conf_free(topts, NOPTS, c);
	assert_int_equal(PARSE(f, "--config", p), CONF_OK);
	assert_string_equal(c->name, "r2");
	snprintf(opt, sizeof opt, "--config=%s", p);
	assert_int_equal(PARSE(f, opt), CONF_OK);
	assert_int_equal(c->peers.n, 2);
	assert_int_equal(c->workers, 12);

	p = write_file(f, 1, "{\"listen\": \"x\", \"hold-time\": \"2m\","
	    " \"buffer-size\": 4096, \"workers\": 64, \"daemon\": false}");
	assert_int_equal(conf_load_file(topts, NOPTS, c, p, f->err,
	    sizeof f->err), CONF_OK);
	assert_int_equal(c->hold, 120000);
	assert_int_equal(c->bufsz, 4096);
	assert_int_equal(c->workers, 64);
	assert_int_equal(c->daemon, 0);
	/* Keys the second file lacks keep the first file's values. */
	assert_string_equal(c->name, "r2");
}

/* Flags win over the file wherever -c stands. */
static void
test_file_flag_override(void **state)
{
	struct fixture	*f = *state;
	struct tcfg	*c = &f->cfg;
	const char	*p;

	p = write_file(f, 0, "{\"listen\": \"x\", \"name\": \"file\","
	    " \"workers\": 2, \"hold-time\": \"5s\", \"daemon\": true}");
	assert_int_equal(PARSE(f, "--name", "flag", "--hold-time", "1h",
	    "-c", p, "--daemon=no"), CONF_OK);
	assert_string_equal(c->name, "flag");
	assert_string_equal(c->listen, "x");
	assert_int_equal(c->workers, 2);
	assert_int_equal(c->hold, 3600 * 1000);
	assert_int_equal(c->daemon, 0);
}

/* A list on the command line replaces the file's; flags append. */
static void
test_list_replace(void **state)
{
	struct fixture	*f = *state;
	struct tcfg	*c = &f->cfg;
	const char	*p;

	p = write_file(f, 0, "{\"listen\": \"x\", \"peer\": [\"a\", \"b\"]}");
	assert_int_equal(PARSE(f, "-c", p, "--peer", "c", "--peer", "d"),
	    CONF_OK);
	assert_int_equal(c->peers.n, 2);
	assert_string_equal(c->peers.v[0], "c");
	assert_string_equal(c->peers.v[1], "d");
	assert_null(c->peers.v[2]);

	/* Without flags the file's list stands. */
	assert_int_equal(PARSE(f, "-c", p), CONF_OK);
	assert_int_equal(c->peers.n, 2);
	assert_string_equal(c->peers.v[0], "a");
	assert_string_equal(c->peers.v[1], "b");

	/* One string is a list of one; it replaces the old list. */
	p = write_file(f, 1, "{\"listen\": \"x\", \"peer\": \"solo\"}");
	assert_int_equal(PARSE(f, "-c", p), CONF_OK);
	assert_int_equal(c->peers.n, 1);
	assert_string_equal(c->peers.v[0], "solo");
	assert_null(c->peers.v[1]);

	/* An empty array empties it. */
	p = write_file(f, 1, "{\"listen\": \"x\", \"peer\": []}");
	assert_int_equal(PARSE(f, "-c", p), CONF_OK);
	assert_int_equal(c->peers.n, 0);
	assert_null(c->peers.v);
}

/* Setting a string twice frees the first (ASan reports a leak). */
static void
test_repeat_str(void **state)
{
	struct fixture	*f = *state;

	assert_int_equal(PARSE(f, "--listen", "a", "--name", "one",
	    "--name", "two", "--listen=b"), CONF_OK);
	assert_string_equal(f->cfg.name, "two");
	assert_string_equal(f->cfg.listen, "b");
	assert_int_equal(PARSE(f, "--listen", "c"), CONF_OK);
	assert_string_equal(f->cfg.listen, "c");
	assert_string_equal(f->cfg.name, "two");
}

/* Flags and keys conf does not know, including -h and --help. */
static void
test_err_unknown(void **state)
{
	struct fixture	*f = *state;
	const char	*p;

	EXPECT_ERR(f, PARSE(f, "--listen", "x", "--bogus", "1"),
	    CONF_E_INVALID, "command line: --bogus: unknown option");
	EXPECT_ERR(f, PARSE(f, "--bogus=1"), CONF_E_INVALID,
	    "command line: --bogus: unknown option");
	EXPECT_ERR(f, PARSE(f, "-h"), CONF_E_INVALID,
	    "command line: -h: unknown option");
	EXPECT_ERR(f, PARSE(f, "--listen", "x", "--help"), CONF_E_INVALID,
	    "--help: unknown option");
	EXPECT_ERR(f, PARSE(f, "-x"), CONF_E_INVALID, "-x");
	/* Prefixes are not abbreviations. */
	EXPECT_ERR(f, PARSE(f, "--list", "x"), CONF_E_INVALID, "--list:");

	p = write_file(f, 0, "{\"listen\": \"x\", \"bogus\": 1}");
	EXPECT_ERR(f, PARSE(f, "-c", p), CONF_E_INVALID, p,
	    "\"bogus\": unknown key");
	/* The flag spelling is not a key. */
	p = write_file(f, 0, "{\"--listen\": \"x\"}");
	EXPECT_ERR(f, PARSE(f, "-c", p), CONF_E_INVALID,
	    "\"--listen\": unknown key");
}

/* A flag at the end, or before another flag, lacks its value. */
static void
test_err_missing_value(void **state)
{
	struct fixture	*f = *state;

	EXPECT_ERR(f, PARSE(f, "--listen", "x", "--name"), CONF_E_INVALID,
	    "command line: --name: missing value");
	EXPECT_ERR(f, PARSE(f, "--name", "--listen", "x"), CONF_E_INVALID,
	    "--name: missing value");
	EXPECT_ERR(f, PARSE(f, "--hold-time", "-c", "f"), CONF_E_INVALID,
	    "--hold-time: missing value");
	EXPECT_ERR(f, PARSE(f, "--listen", "x", "-c"), CONF_E_INVALID,
	    "-c: missing file name");
	EXPECT_ERR(f, PARSE(f, "--config"), CONF_E_INVALID,
	    "--config: missing file name");
	EXPECT_ERR(f, PARSE(f, "--config="), CONF_E_INVALID,
	    "--config: empty file name");
}

/* Positional arguments have no place. */
static void
test_err_positional(void **state)
{
	struct fixture	*f = *state;

	EXPECT_ERR(f, PARSE(f, "--listen", "x", "stray"), CONF_E_INVALID,
	    "command line: unexpected argument \"stray\"");
	EXPECT_ERR(f, PARSE(f, "--listen", "x", "--", "after"),
	    CONF_E_INVALID, "unexpected argument \"after\"");
	EXPECT_ERR(f, PARSE(f, "run", "--listen", "x"), CONF_E_INVALID,
	    "\"run\"");
	EXPECT_ERR(f, PARSE(f, "--listen", "x", "-5"), CONF_E_INVALID,
	    "\"-5\"");
	/* Control characters do not reach the message. */
	EXPECT_ERR(f, PARSE(f, "a\033[2Jb"), CONF_E_INVALID, "\"a?[2Jb\"");
}

/* -c twice is a mistake, not a layering. */
static void
test_err_config_twice(void **state)
{
	struct fixture	*f = *state;
	const char	*p;

	p = write_file(f, 0, "{\"listen\": \"x\"}");
	EXPECT_ERR(f, PARSE(f, "-c", p, "--config", p), CONF_E_INVALID,
	    "command line: --config: given twice");
}

/* Integers: syntax and range, from both sources. */
static void
test_err_int(void **state)
{
	struct fixture	*f = *state;
	const char	*p;

	EXPECT_ERR(f, PARSE(f, "--workers", "abc"), CONF_E_INVALID,
	    "command line: --workers: expected an integer, got \"abc\"");
	EXPECT_ERR(f, PARSE(f, "--workers", "0"), CONF_E_INVALID,
	    "--workers: 0 is out of range [1, 64]");
	EXPECT_ERR(f, PARSE(f, "--workers=65"), CONF_E_INVALID,
	    "--workers: 65 is out of range [1, 64]");
	EXPECT_ERR(f, PARSE(f, "--workers", "8x"), CONF_E_INVALID,
	    "--workers", "\"8x\"");
	EXPECT_ERR(f, PARSE(f, "--workers="), CONF_E_INVALID,
	    "--workers", "got \"\"");
	EXPECT_ERR(f, PARSE(f, "--offset", "99999999999999999999"),
	    CONF_E_INVALID, "--offset");
	EXPECT_ERR(f, PARSE(f, "--offset", "-"), CONF_E_INVALID, "--offset");
	EXPECT_ERR(f, PARSE(f, "--offset", "+5"), CONF_E_INVALID,
	    "--offset: expected an integer, got \"+5\"");
	EXPECT_ERR(f, PARSE(f, "--offset= 5"), CONF_E_INVALID, "--offset");
	/* Out of range leaves the old value. */
	f->cfg.workers = 3;
	EXPECT_ERR(f, PARSE(f, "--workers", "100"), CONF_E_INVALID,
	    "workers");
	assert_int_equal(f->cfg.workers, 3);

	p = write_file(f, 0, "{\"workers\": 3.5}");
	EXPECT_ERR(f, PARSE(f, "-c", p), CONF_E_INVALID, p,
	    "\"workers\": expected an integer, got 3.5");
	p = write_file(f, 0, "{\"workers\": \"many\"}");
	EXPECT_ERR(f, PARSE(f, "-c", p), CONF_E_INVALID,
	    "\"workers\": expected an integer, got \"many\"");
	p = write_file(f, 0, "{\"workers\": 1000}");
	EXPECT_ERR(f, PARSE(f, "-c", p), CONF_E_INVALID,
	    "\"workers\": 1000 is out of range [1, 64]");
	p = write_file(f, 0, "{\"workers\": null}");
	EXPECT_ERR(f, PARSE(f, "-c", p), CONF_E_INVALID,
	    "\"workers\": expected an integer, got null");
}

/* Durations: the header's example message, word for word. */
static void
test_err_msec(void **state)
{
	struct fixture	*f = *state;
	const char	*p;
	char		 want[256];

	EXPECT_ERR(f, PARSE(f, "--hold-time", "abc"), CONF_E_INVALID,
	    "hold-time");
	assert_string_equal(f->err,
	    "command line: --hold-time: expected a duration like 30s,"
	    " got \"abc\"");

	p = write_file(f, 0, "{\"listen\": \"x\", \"hold-time\": \"abc\"}");
	EXPECT_ERR(f, PARSE(f, "-c", p), CONF_E_INVALID, "hold-time");
	snprintf(want, sizeof want, "%s: \"hold-time\": expected a duration"
	    " like 30s, got \"abc\"", p);
	assert_string_equal(f->err, want);

	EXPECT_ERR(f, PARSE(f, "--hold-time", "2h"), CONF_E_INVALID,
	    "--hold-time: 2h is out of range [1s, 1h]");
	EXPECT_ERR(f, PARSE(f, "--hold-time", "999"), CONF_E_INVALID,
	    "--hold-time: 999ms is out of range [1s, 1h]");
	p = write_file(f, 0, "{\"hold-time\": -5}");
	EXPECT_ERR(f, PARSE(f, "-c", p), CONF_E_INVALID,
	    "\"hold-time\": expected a duration like 30s, got -5");
	p = write_file(f, 0, "{\"hold-time\": 1.5}");
	EXPECT_ERR(f, PARSE(f, "-c", p), CONF_E_INVALID,
	    "\"hold-time\": expected a duration like 30s, got 1.5");
	p = write_file(f, 0, "{\"hold-time\": 7200000}");
	EXPECT_ERR(f, PARSE(f, "-c", p), CONF_E_INVALID,
	    "\"hold-time\": 2h is out of range [1s, 1h]");
}

/* Sizes, from both sources. */
static void
test_err_size(void **state)
{
	struct fixture	*f = *state;
	const char	*p;

	EXPECT_ERR(f, PARSE(f, "--buffer-size", "12Q"), CONF_E_INVALID,
	    "command line: --buffer-size: expected a size like 64K,"
	    " got \"12Q\"");
	EXPECT_ERR(f, PARSE(f, "--buffer-size", "2G"), CONF_E_INVALID,
	    "--buffer-size: 2G is out of range [4K, 1G]");
	EXPECT_ERR(f, PARSE(f, "--buffer-size", "100"), CONF_E_INVALID,
	    "--buffer-size: 100 is out of range [4K, 1G]");
	p = write_file(f, 0, "{\"buffer-size\": true}");
	EXPECT_ERR(f, PARSE(f, "-c", p), CONF_E_INVALID, p,
	    "\"buffer-size\": expected a size like 64K, got true");
	p = write_file(f, 0, "{\"buffer-size\": \"1.5M\"}");
	EXPECT_ERR(f, PARSE(f, "-c", p), CONF_E_INVALID,
	    "\"buffer-size\": expected a size like 64K, got \"1.5M\"");
}

/* Wrong JSON types for strings, lists and booleans. */
static void
test_err_json_types(void **state)
{
	struct fixture	*f = *state;
	const char	*p;

	p = write_file(f, 0, "{\"daemon\": \"yes\"}");
	EXPECT_ERR(f, PARSE(f, "-c", p), CONF_E_INVALID,
	    "\"daemon\": expected true or false, got \"yes\"");
	p = write_file(f, 0, "{\"daemon\": 1}");
	EXPECT_ERR(f, PARSE(f, "-c", p), CONF_E_INVALID,
	    "\"daemon\": expected true or false, got 1");
	p = write_file(f, 0, "{\"name\": 5}");
	EXPECT_ERR(f, PARSE(f, "-c", p), CONF_E_INVALID,
	    "\"name\": expected a string, got 5");
	p = write_file(f, 0, "{\"name\": [\"a\"]}");
	EXPECT_ERR(f, PARSE(f, "-c", p), CONF_E_INVALID,
	    "\"name\": expected a string, got an array");
	p = write_file(f, 0, "{\"peer\": [\"a\", 1]}");
	EXPECT_ERR(f, PARSE(f, "-c", p), CONF_E_INVALID,
	    "\"peer\": element 2: expected a string, got 1");
	p = write_file(f, 0, "{\"peer\": {\"a\": \"b\"}}");
	EXPECT_ERR(f, PARSE(f, "-c", p), CONF_E_INVALID,
	    "\"peer\": expected a string or an array of strings,"
	    " got an object");
	/* As in flags, LLONG_MIN is refused and LLONG_MIN + 1 is not. */
	p = write_file(f, 0,
	    "{\"listen\": \"x\", \"offset\": -9223372036854775808}");
	EXPECT_ERR(f, PARSE(f, "-c", p), CONF_E_INVALID, "\"offset\": ",
	    "-9223372036854775808");
	p = write_file(f, 0,
	    "{\"listen\": \"x\", \"offset\": -9223372036854775807}");
	assert_int_equal(PARSE(f, "-c", p), CONF_OK);
	assert_int_equal(f->cfg.offset, -LLONG_MAX);
}

/* Required options: absent, then satisfied by either source. */
static void
test_err_required(void **state)
{
	struct fixture	*f = *state;
	const char	*p;

	EXPECT_ERR(f, PARSE(f, "--name", "x"), CONF_E_MISSING,
	    "\"listen\"", "--listen");
	EXPECT_ERR(f, parse_args(f, (const char *[]){ NULL }),
	    CONF_E_MISSING, "listen");
	p = write_file(f, 0, "{\"name\": \"x\"}");
	EXPECT_ERR(f, PARSE(f, "-c", p), CONF_E_MISSING, "listen");
	p = write_file(f, 1, "{\"listen\": \"x\"}");
	assert_int_equal(PARSE(f, "-c", p), CONF_OK);
	assert_int_equal(PARSE(f, "--listen", "y"), CONF_OK);
	/* A value already in the struct is not a source. */
	EXPECT_ERR(f, PARSE(f, "--name", "z"), CONF_E_MISSING, "listen");
}

/* A required list must end up with at least one string. */
static void
test_err_required_list(void **state)
{
	static const struct conf_opt lopts[] = {
		{ "peer", CONF_STRLIST, offsetof(struct tcfg, peers), 0, 0,
		    CONF_REQUIRED, NULL, NULL },
	};
	struct fixture	*f = *state;
	char		*argv[3];
	const char	*p;

	p = write_file(f, 0, "{\"peer\": []}");
	argv[0] = xstrdup("-c");
	argv[1] = xstrdup(p);
	argv[2] = xstrdup("--peer=a");
	assert_int_equal(conf_parse(lopts, 1, &f->cfg, 2, argv, f->err,
	    sizeof f->err), CONF_E_MISSING);
	assert_non_null(strstr(f->err, "peer"));
	assert_int_equal(conf_parse(lopts, 1, &f->cfg, 3, argv, f->err,
	    sizeof f->err), CONF_OK);
	assert_int_equal(f->cfg.peers.n, 1);
	conf_free(lopts, 1, &f->cfg);
	free(argv[0]);
	free(argv[1]);
	free(argv[2]);
}

/* Files that cannot be read or are not JSON objects. */
static void
test_err_file(void **state)
{
	struct fixture	*f = *state;
	const char	*p;
	char		*big;
	size_t		 len;

	EXPECT_ERR(f, PARSE(f, "-c", "/nonexistent/vrelay.json"),
	    CONF_E_FILE, "/nonexistent/vrelay.json: ", "No such file");
	EXPECT_ERR(f, PARSE(f, "-c", "/tmp"), CONF_E_FILE, "/tmp: ");

	p = write_file(f, 0, "{\n  \"name\": \n}\n");
	EXPECT_ERR(f, PARSE(f, "-c", p), CONF_E_FILE, p, "line 3");
	p = write_file(f, 0, "{\"name\": \"a\"");
	EXPECT_ERR(f, PARSE(f, "-c", p), CONF_E_FILE, p, "line 1, column");
	p = write_file(f, 0, "");
	EXPECT_ERR(f, PARSE(f, "-c", p), CONF_E_FILE, p);
	p = write_file(f, 0, "[\"listen\", \"x\"]");
	EXPECT_ERR(f, PARSE(f, "-c", p), CONF_E_FILE, p,
	    "expected a JSON object");
	p = write_file(f, 0, "{\"name\": \"a\", \"name\": \"b\"}");
	EXPECT_ERR(f, PARSE(f, "-c", p), CONF_E_FILE, p, "name");

	/* Over the cap, even though it is valid JSON. */
	len = CONF_FILE_MAX + 64;
	big = xmalloc(len + 1);
	memset(big, ' ', len);
	memcpy(big, "{\"listen\": \"x\"}", 15);
	big[len] = '\0';
	p = write_file(f, 1, big);
	free(big);
	EXPECT_ERR(f, PARSE(f, "-c", p), CONF_E_FILE, p, "larger than");

	/* conf_load_file reports the same way. */
	EXPECT_ERR(f, conf_load_file(topts, NOPTS, &f->cfg, "/nonexistent",
	    f->err, sizeof f->err), CONF_E_FILE, "/nonexistent");
}

/* A list has a hard cap from either source. */
static void
test_err_list_cap(void **state)
{
	struct fixture	*f = *state;
	char		**argv, *json, *q;
	const char	*p;
	int		  i, argc;
	size_t		  len;

	argc = 2 * (CONF_LIST_MAX + 1);
	argv = xcalloc(argc, sizeof *argv);
	for (i = 0; i < argc; i += 2) {
		argv[i] = xstrdup("--peer");
		argv[i + 1] = xstrdup("p");
	}
	assert_int_equal(conf_parse(topts, NOPTS, &f->cfg, argc - 2, argv,
	    f->err, sizeof f->err), CONF_E_MISSING);
	assert_int_equal(f->cfg.peers.n, CONF_LIST_MAX);
	EXPECT_ERR(f, conf_parse(topts, NOPTS, &f->cfg, argc, argv, f->err,
	    sizeof f->err), CONF_E_INVALID, "--peer: too many values");
	for (i = 0; i < argc; i++)
		free(argv[i]);
	free(argv);

	len = 16 + 4 * (CONF_LIST_MAX + 1);
	json = q = xmalloc(len);
	q += snprintf(q, len, "{\"peer\": [");
	for (i = 0; i <= CONF_LIST_MAX; i++)
		q += snprintf(q, len - (q - json), "%s\"p\"", i ? "," : "");
	snprintf(q, len - (q - json), "]}");
	p = write_file(f, 0, json);
	free(json);
	EXPECT_ERR(f, PARSE(f, "-c", p), CONF_E_INVALID,
	    "\"peer\": too many values");
}

/* No buffer, or a tiny one, still gives the code and a C string. */
static void
test_err_buffers(void **state)
{
	struct fixture	*f = *state;
	char		*argv[1], small[8];

	argv[0] = xstrdup("--bogus");
	assert_int_equal(conf_parse(topts, NOPTS, &f->cfg, 1, argv, NULL, 0),
	    CONF_E_INVALID);
	memset(small, 'z', sizeof small);
	assert_int_equal(conf_parse(topts, NOPTS, &f->cfg, 1, argv, small,
	    sizeof small), CONF_E_INVALID);
	assert_int_equal(strlen(small), sizeof small - 1);
	assert_int_equal(conf_parse(topts, NOPTS, &f->cfg, 0, argv, NULL, 0),
	    CONF_E_MISSING);
	assert_int_equal(conf_parse(topts, 0, &f->cfg, 0, argv, small,
	    sizeof small), CONF_OK);
	assert_string_equal(small, "");
	free(argv[0]);
}

/* Durations: units, limits and everything that must be refused. */
static void
test_parse_msec(void **state)
{
	static const struct {
		const char	*s;
		long long	 v;
	} ok[] = {
		{ "0", 0 }, { "250", 250 }, { "250ms", 250 },
		{ "5s", 5000 }, { "2m", 120000 }, { "1h", 3600000 },
		{ "007s", 7000 }, { "0h", 0 },
		{ "9223372036854775807", LLONG_MAX },
		{ "9223372036854775807ms", LLONG_MAX },
		{ "2562047788015h", 2562047788015LL * 3600000 },
	};
	static const char *const bad[] = {
		"", "-1s", "+1s", " 1s", "1s ", "1.5s", "s", "ms", "1x",
		"1sec", "1S", "1H", "1 s", "1ss", "1mss", "0x10",
		"9223372036854775808", "9223372036854775807s",
		"2562047788016h", "99999999999999999999999",
	};
	long long	v;
	size_t		i;

	for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		v = -1;
		if (conf_parse_msec(ok[i].s, &v) != 0 || v != ok[i].v)
			fail_msg("msec \"%s\": got %lld", ok[i].s, v);
	}
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		v = 42;
		if (conf_parse_msec(bad[i], &v) != -1 || v != 0)
			fail_msg("msec \"%s\" accepted as %lld", bad[i], v);
	}
	v = 42;
	assert_int_equal(conf_parse_msec(NULL, &v), -1);
	assert_int_equal(v, 0);
}

/* Sizes: units, limits and everything that must be refused. */
static void
test_parse_size(void **state)
{
	static const struct {
		const char	*s;
		long long	 v;
	} ok[] = {
		{ "0", 0 }, { "512", 512 }, { "64K", 65536 },
		{ "64k", 65536 }, { "8M", 8LL << 20 }, { "8m", 8LL << 20 },
		{ "1G", 1LL << 30 }, { "1g", 1LL << 30 },
		{ "8589934591G", 8589934591LL << 30 },
		{ "9223372036854775807", LLONG_MAX },
	};
	static const char *const bad[] = {
		"", "-1", "+1", " 1", "1 ", "1.5M", "K", "1KB", "1KiB",
		"1T", "1B", "1Q", "1 K", "0x10", "8589934592G",
		"9223372036854775808", "9007199254740992K",
	};
	long long	v;
	size_t		i;

	for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		v = -1;
		if (conf_parse_size(ok[i].s, &v) != 0 || v != ok[i].v)
			fail_msg("size \"%s\": got %lld", ok[i].s, v);
	}
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		v = 42;
		if (conf_parse_size(bad[i], &v) != -1 || v != 0)
			fail_msg("size \"%s\" accepted as %lld", bad[i], v);
	}
	v = 42;
	assert_int_equal(conf_parse_size(NULL, &v), -1);
	assert_int_equal(v, 0);
}

/* conf_free empties every string field and accepts NULL and repeats. */
static void
test_conf_free(void **state)
{
	struct fixture	*f = *state;
	struct tcfg	*c = &f->cfg;

	assert_int_equal(PARSE(f, "--listen", "x", "--name", "n",
	    "--peer", "a", "--peer", "b", "--workers", "5"), CONF_OK);
	conf_free(topts, NOPTS, c);
	assert_null(c->listen);
	assert_null(c->name);
	assert_null(c->peers.v);
	assert_int_equal(c->peers.n, 0);
	assert_int_equal(c->workers, 5);
	conf_free(topts, NOPTS, c);
	conf_free(topts, NOPTS, NULL);
	conf_free(NULL, 0, c);
}

/* The column where help text starts on a usage line. */
static long
help_col(const char *out, const char *flag, const char *help)
{
	const char	*line, *h;

	line = strstr(out, flag);
	assert_non_null(line);
	h = strstr(line, help);
	assert_non_null(h);
	assert_null(memchr(line, '\n', h - line));
	while (line > out && line[-1] != '\n')
		line--;
	return (h - line);
}

/* Usage lists every option, aligned, with its marks. */
static void
test_usage(void **state)
{
	char	*out = NULL;
	size_t	 len = 0;
	FILE	*fp;
	long	 col;

	fp = open_memstream(&out, &len);
	assert_non_null(fp);
	conf_usage(fp, topts, NOPTS);
	fclose(fp);

	assert_non_null(strstr(out, "  -c, --config FILE  "));
	assert_non_null(strstr(out,
	    "address to listen on (required)\n"));
	assert_non_null(strstr(out, "a peer relay (repeatable)\n"));
	assert_null(strstr(out, "relay name (re"));
	assert_non_null(strstr(out, "  --peer NAME=ADDR "));
	assert_non_null(strstr(out, "  --workers N "));
	assert_non_null(strstr(out, "  --hold-time DURATION "));
	assert_non_null(strstr(out, "  --buffer-size SIZE "));
	assert_non_null(strstr(out, "  --daemon  "));

	col = help_col(out, "--config FILE", "load options");
	assert_int_equal(help_col(out, "--listen ADDR", "address"), col);
	assert_int_equal(help_col(out, "--daemon", "run in"), col);
	assert_int_equal(help_col(out, "--hold-time DURATION", "hold time"),
	    col);
	free(out);
	conf_usage(NULL, topts, NOPTS);
}

/* Each code has its own message. */
static void
test_strerror(void **state)
{
	assert_string_equal(conf_strerror(CONF_OK), "no error");
	assert_string_not_equal(conf_strerror(CONF_E_INVALID),
	    conf_strerror(CONF_E_MISSING));
	assert_string_not_equal(conf_strerror(CONF_E_MISSING),
	    conf_strerror(CONF_E_FILE));
	assert_string_not_equal(conf_strerror(CONF_E_FILE),
	    conf_strerror(CONF_E_INVALID));
	assert_non_null(conf_strerror(-99));
}

#define T(fn)	cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_flags_only),
		T(test_flags_bool),
		T(test_flags_dash_values),
		T(test_defaults_kept),
		T(test_file_only),
		T(test_file_flag_override),
		T(test_list_replace),
		T(test_repeat_str),
		T(test_err_unknown),
		T(test_err_missing_value),
		T(test_err_positional),
		T(test_err_config_twice),
		T(test_err_int),
		T(test_err_msec),
		T(test_err_size),
		T(test_err_json_types),
		T(test_err_required),
		T(test_err_required_list),
		T(test_err_file),
		T(test_err_list_cap),
		T(test_err_buffers),
		T(test_parse_msec),
		T(test_parse_size),
		T(test_conf_free),
		T(test_usage),
		T(test_strerror),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
