/*
 * conf.h -- one option table serves the command line (--NAME VALUE)
 * and the JSON config file (-c FILE.json, {"NAME": VALUE}), so the two
 * can never disagree.  Command-line values override the file's (a list
 * given on the command line replaces the file's list).
 *
 * Errors name the key and where it came from, e.g.
 *	/etc/vrelay.json: "hold-time": expected a duration like 30s, got "abc"
 *	command line: --hold-time: expected a duration like 30s, got "abc"
 *
 * Command line syntax, for each table entry NAME:
 *	--NAME VALUE, --NAME=VALUE	every type but CONF_BOOL
 *	--NAME, --NAME=false		CONF_BOOL (also true/yes/no/on/off/1/0)
 *	-c FILE, --config FILE		load FILE before applying any flag,
 *					wherever it appears; at most once
 *	--				ends the options (nothing may follow)
 * A separate VALUE may not look like an option ("-x", "--x"; "-5" and
 * "-" are fine): "--name --other" is a missing value, not the string
 * "--other".  Write --name=-x for a value that starts with a dash.
 * "config" is reserved and must not be a table name.
 *
 * conf does not handle -h/--help: they are unknown options like any
 * other, so callers look for them in argv before calling conf_parse()
 * and print conf_usage() themselves.
 *
 * JSON values: CONF_STR a string; CONF_STRLIST an array of strings or
 * one string; CONF_INT an integer or a string of digits; CONF_MSEC and
 * CONF_SIZE a string as conf_parse_msec()/conf_parse_size() take or an
 * integer (milliseconds, bytes); CONF_BOOL true or false.  Unknown and
 * duplicate keys are errors.
 *
 * Strings stored in the caller's struct are allocated by conf (a STR or
 * STRLIST field must start NULL/empty or hold conf-allocated memory;
 * set string defaults after parsing).  Scalar fields may hold defaults
 * beforehand: they are only written when a source sets them.  After an
 * error the struct may be partly filled: call conf_free() either way.
 */
#ifndef VRELAY_CONF_H
#define VRELAY_CONF_H

#include <stddef.h>
#include <stdio.h>

#define CONF_OK			0
#define CONF_E_INVALID		(-1)	/* bad value, unknown key or flag */
#define CONF_E_MISSING		(-2)	/* a required key is absent */
#define CONF_E_FILE		(-3)	/* file unreadable or not JSON */

#define CONF_LIST_MAX		256	/* strings in one CONF_STRLIST */
#define CONF_FILE_MAX		(1024 * 1024)	/* bytes of a config file */

enum conf_type {
	CONF_STR = 1,		/* char * */
	CONF_STRLIST,		/* struct conf_list; repeatable flag */
	CONF_INT,		/* long long, in [min, max] */
	CONF_BOOL,		/* int 0/1; a flag without a value */
	CONF_MSEC,		/* long long ms: "250ms", "5s", "2m", "1h" */
	CONF_SIZE,		/* long long bytes: "512", "64K", "8M", "1G" */
};

#define CONF_REQUIRED		0x1	/* CONF_STRLIST: at least one */

/* v[n] is NULL when v is not; an empty list is {NULL, 0}. */
struct conf_list {
	char	**v;
	size_t	  n;
};

struct conf_opt {
	const char	*name;		/* flag --name and JSON key "name" */
	enum conf_type	 type;
	size_t		 off;		/* offsetof() in the config struct */
	long long	 min, max;	/* INT, MSEC, SIZE; both 0: no limit */
	int		 flags;
	const char	*argname;	/* for usage: "ADDR", "NAME=ADDR" */
	const char	*help;
};

const char	*conf_strerror(int);

/*
 * Parse ARGV into CFG.  ARGV holds only options: no program or
 * subcommand name in argv[0] (pass argc - optind, argv + optind).
 * "-c FILE" loads FILE first, then the flags are applied in order;
 * then every CONF_REQUIRED option must have been set by either.
 * Non-option arguments are an error.  ERR (may be NULL) gets the
 * message.
 */
int	conf_parse(const struct conf_opt *, size_t, void *, int, char **,
	    char *, size_t);
/*
 * Load one JSON file into CFG (used by conf_parse for -c).  A list in
 * the file replaces the list in CFG.  Does not check CONF_REQUIRED.
 */
int	conf_load_file(const struct conf_opt *, size_t, void *,
	    const char *, char *, size_t);
/*
 * Print "  --name ARG   help" lines, from the same table, after a
 * line for -c/--config; required and repeatable options are marked.
 */
void	conf_usage(FILE *, const struct conf_opt *, size_t);
/* Free the strings and lists the table points at in CFG (may be NULL). */
void	conf_free(const struct conf_opt *, size_t, void *);

/*
 * Value parsers shared with other modules; 0 or -1 (and *out 0).
 * Decimal digits and an optional unit; no sign, space or fraction.
 * msec: "" (milliseconds), "ms", "s", "m", "h".
 * size: "" (bytes), "K", "M", "G" (either case, powers of 1024).
 */
int	conf_parse_msec(const char *, long long *);
int	conf_parse_size(const char *, long long *);

#endif
