/*
 * ctl_fuzz.c -- libFuzzer harness for the status socket's requests
 * (ctl.h, ctl_line()).
 *
 * The input is what a client writes: it is cut into lines at '\n' as
 * the server's evbuffer_readln() does, a last line without a newline
 * counts (the server takes it at EOF), and each line goes through
 * ctl_line() in its own heap block, so ASan sees a read past its end.
 * As on the socket, nothing after a line that closes the client is
 * read.
 *
 * The table holds the commands the daemons have, with the argument
 * checks they make: "set-target" is relay/target.c's target_set() on a
 * real target (the relay's status command; then once more with
 * NUMERIC set, as a locator push takes it), "close-session" and "log"
 * are daemon.c's own functions on a real, empty session context, and
 * "migrate" checks {vsock_dir, vsock_cid} as daemon_migrate() does (the
 * real one creates directories and moves listeners, so it is not run).
 * A few more rows break the rules a command may break (an answer that
 * is not an object, an error with no message or with bytes that are
 * not text, "ok" set by the command) to reach ctl's defences.
 *
 * Every answer must be an object with a boolean "ok", an error must be
 * {"ok": false, "error": printable ASCII} and nothing else, and the
 * answer must go out as one line that reads back the same.
 *
 * Host names: getaddrinfo() is replaced by one that never sends a DNS
 * query: numeric hosts go to the C library with AI_NUMERICHOST,
 * "localhost" and names under example.com are 127.0.0.1, anything else
 * is not found.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <dlfcn.h>
#include <netdb.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include "ctl.h"
#include "daemon.h"
#include "log.h"
#include "sess.h"
#include "../../relay/relay.h"
#include "fuzz.h"

#define FZ_SELF		"esx-b"		/* this relay's --host */

int	LLVMFuzzerInitialize(int *, char ***);
int	getaddrinfo(const char *, const char *, const struct addrinfo *,
	    struct addrinfo **);

/* What every command gets: a daemon first, as the real ones do. */
struct fz_world {
	struct daemon	 d;
	struct target	*t;		/* "set-target" */
	struct target	*tn;		/* the same, NUMERIC */
};

static struct fz_world	 fz;

/* A resolver that never waits: see the comment at the top. */
int
getaddrinfo(const char *node, const char *serv, const struct addrinfo *hints,
    struct addrinfo **res)
{
	static int	(*real)(const char *, const char *,
			    const struct addrinfo *, struct addrinfo **);
	struct addrinfo	 h;
	size_t		 n;

	if (real == NULL) {
		real = (int (*)(const char *, const char *,
		    const struct addrinfo *, struct addrinfo **))
		    dlsym(RTLD_NEXT, "getaddrinfo");
		CHECK(real != NULL);
	}
	memset(&h, 0, sizeof(h));
	if (hints != NULL)
		h = *hints;
	if (!(h.ai_flags & AI_NUMERICHOST) && node != NULL &&
	    (strcmp(node, "localhost") == 0 ||
	    ((n = strlen(node)) > 12 &&
	    strcmp(node + n - 12, ".example.com") == 0)))
		node = h.ai_family == AF_INET6 ? "::1" : "127.0.0.1";
	h.ai_flags |= AI_NUMERICHOST;
	return (real(node, serv, &h, res));
}

/* "status", "where", "sessions", "relays": no arguments. */
static json_t *
fz_cmd_status(json_t *req, void *arg, const char **err)
{
	/* A command's own "ok" must not survive: ctl sets it. */
	return (json_pack("{s:s, s:b, s:o}", "daemon", "fuzz", "ok", 0,
	    "sessions", sess_ctx_json(fz.d.sessions)));
}

/* "watch": subscribes the client (CTL_WATCH). */
static json_t *
fz_cmd_watch(json_t *req, void *arg, const char **err)
{
	return (json_pack("{s:s, s:o}", "watching", "fuzz", "target",
	    target_json(fz.t)));
}

/*
 * NUMERIC is the same parse with names refused, so it can only refuse
 * more; what the status socket shows of a target (canonical, numeric
 * addresses) must pass it.  T must have been set at least once.
 */
static void
fz_target_sync(void)
{
	json_t	*o;
	char	 msg[300];

	target_free(fz.tn);
	fz.tn = target_new(FZ_SELF);
	o = target_json(fz.t);
	CHECK(o != NULL);
	json_object_del(o, "local");
	json_object_del(o, "hint");	/* a hint is not set this way */
	if (json_is_null(json_object_get(o, "appliance")))
		json_object_del(o, "appliance");
	CHECK(target_set(fz.tn, o, 1, msg, sizeof(msg)) == 0);
	CHECK(target_epoch(fz.tn) == target_epoch(fz.t));
	json_decref(o);
}

/*
 * "set-target", resolving as the startup configuration does, then
 * numerically, as relay/control.c and a push take it.
 */
static json_t *
fz_cmd_set_target(json_t *req, void *arg, const char **err)
{
	static char	 msg[300];
	char		 msgn[300];
	int		 r, rn;

	memset(msg, 'X', sizeof(msg));
	r = target_set(fz.t, req, 0, msg, sizeof(msg));
	memset(msgn, 'X', sizeof(msgn));
	rn = target_set(fz.tn, req, 1, msgn, sizeof(msgn));
	CHECK(r == 0 || r == -1);
	CHECK(rn == 0 || rn == -1);
	if (rn == 0)
		CHECK(r == 0);
	if (rn != 0)
		CHECK(msgn[0] != '\0' &&
		    memchr(msgn, '\0', sizeof(msgn)) != NULL);
	if (r != 0) {
		CHECK(msg[0] != '\0' && memchr(msg, '\0', sizeof(msg)) != NULL);
		*err = msg;
		return (NULL);
	}
	if (rn != 0)
		fz_target_sync();
	CHECK(target_epoch(fz.tn) == target_epoch(fz.t));
	return (json_pack("{s:o}", "target", target_json(fz.t)));
}

/* "migrate": daemon_migrate()'s argument checks, nothing moved. */
static json_t *
fz_cmd_migrate(json_t *req, void *arg, const char **err)
{
	json_t		*v;
	const char	*dir;

	if ((v = json_object_get(req, "vsock_dir")) == NULL ||
	    (dir = json_string_value(v)) == NULL || *dir == '\0') {
		*err = "\"vsock_dir\": expected the new host's directory";
		return (NULL);
	}
	if ((v = json_object_get(req, "vsock_cid")) != NULL &&
	    (!json_is_integer(v) || json_integer_value(v) < 3 ||
	    json_integer_value(v) > 0xfffffffeLL)) {
		*err = "\"vsock_cid\": expected 3 to 4294967294";
		return (NULL);
	}
	return (json_pack("{s:s, s:O}", "vsock_dir", dir, "vsock_cid",
	    v != NULL ? v : json_null()));
}

/* Answers back whatever came in (ctl must cope with any object). */
static json_t *
fz_cmd_echo(json_t *req, void *arg, const char **err)
{
	return (json_incref(req));
}

/* Breaks the rules: an answer that is not an object. */
static json_t *
fz_cmd_array(json_t *req, void *arg, const char **err)
{
	return (json_pack("[i, s]", 1, "x"));
}

/* Breaks the rules: a failure without a message. */
static json_t *
fz_cmd_nomsg(json_t *req, void *arg, const char **err)
{
	return (NULL);
}

/* A failure quoting the request's "text" member, bytes and all. */
static json_t *
fz_cmd_raw(json_t *req, void *arg, const char **err)
{
	static char	 msg[128];
	const char	*s = json_string_value(json_object_get(req, "text"));

	snprintf(msg, sizeof(msg), "raw \377 %s", s != NULL ? s : "\033[0m");
	*err = msg;
	return (NULL);
}

static const struct ctl_cmd fz_cmds[] = {
	{ "status", "summary", 0, fz_cmd_status },
	{ "sessions", "every session", 0, daemon_cmd_sessions },
	{ "where", "the target", 0, fz_cmd_status },
	{ "relays", "every relay", 0, fz_cmd_status },
	{ "watch", "stream events", CTL_WATCH, fz_cmd_watch },
	{ "set-target", "move the target: {epoch, appliance_host, "
	    "appliance, peers}", 0, fz_cmd_set_target },
	{ "close-session", "abort one session: {id}", 0, daemon_cmd_close },
	{ "log", "set verbosity: {level: warn|info|debug}", 0,
	    daemon_cmd_log },
	{ "migrate", "{vsock_dir, vsock_cid}", 0, fz_cmd_migrate },
	{ "echo", NULL, 0, fz_cmd_echo },
	{ "array", "not an object", 0, fz_cmd_array },
	{ "nomsg", "no message", 0, fz_cmd_nomsg },
	{ "raw", "not text", 0, fz_cmd_raw },
};
#define FZ_NCMDS	(sizeof(fz_cmds) / sizeof(fz_cmds[0]))

/* Nothing is ever opened: ops the server side needs, doing nothing. */
static int
fz_open(struct sess *s, void *arg, const char **why)
{
	*why = "fuzz";
	return (-1);
}

/* One event base and one empty session context for the whole run. */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const struct sess_ops	 ops = { .open = fz_open };
	struct sess_conf		 conf;

	log_init("ctl_fuzz", LOG_LEVEL_WARN);
	memset(&conf, 0, sizeof(conf));
	conf.replay_max = 65536;
	conf.hold_ms = 1000;
	conf.handshake_ms = 1000;
	fz.d.prog = "ctl_fuzz";
	fz.d.base = event_base_new();
	CHECK(fz.d.base != NULL);
	fz.d.sessions = sess_ctx_new(fz.d.base, SESS_SERVER, &conf, &ops,
	    &fz);
	CHECK(fz.d.sessions != NULL);
	return (0);
}

/* Whether LINE (LEN bytes) is blank to the server. */
static int
fz_blank(const char *line, size_t len)
{
	size_t	i;

	for (i = 0; i < len; i++)
		if (line[i] != '\r' && line[i] != ' ' && line[i] != '\t')
			return (0);
	return (1);
}

/* One line, as the server runs it; nonzero if the client is closed. */
static int
fz_line(const uint8_t *data, size_t len)
{
	json_error_t	 jerr;
	json_t		*a, *ok, *back;
	const char	*key;
	char		*line, *s;
	json_t		*v;
	int		 what = -1;

	line = malloc(len == 0 ? 1 : len);
	CHECK(line != NULL);
	if (len != 0)
		memcpy(line, data, len);
	a = ctl_line(fz_cmds, FZ_NCMDS, &fz, line, len, &what);
	CHECK(what >= 0 && (what & ~(CTL_LINE_CLOSE | CTL_LINE_WATCH)) == 0);
	if (a == NULL) {
		CHECK(fz_blank(line, len) && what == 0);
		free(line);
		return (0);
	}
	CHECK(!fz_blank(line, len));
	free(line);

	CHECK(json_is_object(a));
	ok = json_object_get(a, "ok");
	CHECK(json_is_boolean(ok));
	if (json_is_false(ok)) {
		CHECK(json_object_size(a) == 2);
		CHECK(json_is_string(json_object_get(a, "error")));
		CHECK(json_string_length(json_object_get(a, "error")) > 0);
		fz_ascii(json_string_value(json_object_get(a, "error")));
		CHECK((what & CTL_LINE_WATCH) == 0);
		if (what & CTL_LINE_CLOSE)
			CHECK(strncmp(json_string_value(json_object_get(a,
			    "error")), "invalid JSON: ", 14) == 0);
	} else {
		CHECK(what == 0 || what == CTL_LINE_WATCH);
		if (what == CTL_LINE_WATCH)
			CHECK(json_object_get(a, "watching") != NULL);
		json_object_foreach(a, key, v)
			CHECK(strcmp(key, "ok") != 0 || json_is_true(v));
	}

	/* One line on the wire, and it reads back the same. */
	s = json_dumps(a, JSON_COMPACT);
	CHECK(s != NULL);
	CHECK(strchr(s, '\n') == NULL && strlen(s) <= CTL_ANSWER_MAX);
	back = json_loads(s, 0, &jerr);
	CHECK(back != NULL && json_equal(back, a));
	json_decref(back);
	free(s);
	json_decref(a);
	return ((what & CTL_LINE_CLOSE) != 0);
}

/* Entry point: one client's bytes, line by line. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t	*p = data, *nl, *end = data + size;

	log_setlevel(LOG_LEVEL_WARN);
	fz.t = target_new(FZ_SELF);
	fz.tn = target_new(FZ_SELF);
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if ((nl != NULL ? (size_t)(nl - p) : (size_t)(end - p)) >
		    CTL_LINE_MAX)
			break;		/* "request too long", closed */
		if (fz_line(p, nl != NULL ? (size_t)(nl - p) :
		    (size_t)(end - p)) || nl == NULL)
			break;
		p = nl + 1;
	}
	target_free(fz.t);
	target_free(fz.tn);
	fz.t = fz.tn = NULL;
	return (0);
}
