/*
 * cli.h -- the query subcommands every daemon binary shares: talk to a
 * running daemon's status socket (ctl.h) and print what it says.
 *
 *   PROG status   [options]	the "status" answer as key: value lines
 *   PROG sessions [options]	the session table
 *   PROG watch    [options]	stream events until ^C or the daemon closes
 *   PROG CMD      [options]	any other command: {"cmd": CMD, ...}
 *
 * Options: --status PATH (else $VRELAY_STATUS), --json (raw JSON lines),
 * --timeout MS (default 5000, 0 waits forever), --arg KEY=STRING or
 * --arg KEY:=JSON (repeatable).
 *
 * This is a front end, so it prints (answers to stdout, errors to
 * stderr prefixed with PROG), but it never exits: it returns the
 * process exit code.
 */
#ifndef VRELAY_CLI_H
#define VRELAY_CLI_H

#include <jansson.h>

#define CLI_EXIT_OK		0
#define CLI_EXIT_ERROR		1	/* unreachable, refused, garbled */
#define CLI_EXIT_USAGE		2

#define CLI_ENV_STATUS		"VRELAY_STATUS"
#define CLI_TIMEOUT_MS		5000

/*
 * Run SUBCMD for PROG ("vrelay"); ARGV holds the ARGC arguments after
 * the subcommand (no program name), e.g. from main():
 * cli_query("vrelay", argv[1], argc - 2, argv + 2).
 */
int	cli_query(const char *, const char *, int, char **);

/*
 * The same, with PREPARE called on the request before it is sent: the
 * place for work the daemon must not do on its event loop (resolving
 * host names).  It returns 0, or -1 with a message in ERR, which is
 * printed and ends the command with CLI_EXIT_ERROR.
 */
int	cli_query_prepared(const char *, const char *, int, char **,
	    int (*)(json_t *, char *, size_t));

#endif
