/*
 * ctl.c -- the status socket (see ctl.h).
 *
 * Server side: an evconnlistener on a unix socket and one bufferevent
 * per client.  Requests are read with evbuffer_readln(); the read high
 * watermark (CTL_LINE_MAX + 1) keeps the input buffer from ever
 * holding more than one maximal line, so an endless line costs us at
 * most that much memory before the client is told and dropped.
 *
 * Every byte we queue for a client goes through ctl_client_send(),
 * which drops the client instead of letting its output pass
 * CTL_WATCH_MAX: a watcher (or a pipelining client) that does not read
 * can never make the daemon block or grow without bound.
 *
 * Clients are never freed inside their own callbacks.  Closing a
 * client moves it to a dead list and activates a reaper event that
 * frees it on a later loop turn (tmux server_client_unref).  For the
 * same reason ctl_free() called from a command function (a "quit"
 * command, say) only marks the ctl and the read callback finishes the
 * job once the function has returned.
 *
 * Writing to a client that went away raises SIGPIPE: the daemon is
 * expected to ignore it, as every daemon on a socket does.
 *
 * Client side (the CLI): plain blocking sockets with poll() deadlines.
 *
 * This is library code: no logging, no exits; return codes only.
 */
#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <jansson.h>

#include "ctl.h"
#include "text.h"
#include "xmalloc.h"
#include "xtime.h"

#define CTL_CLIENTS_MAX		64	/* concurrent status clients */
#define CTL_BACKLOG		16
#define CTL_ACCEPT_RETRY_MS	1000	/* after EMFILE and friends */
#define CTL_CMD_QUOTE_MAX	64	/* command name echoed in errors */
#define CTL_IDLE_MS		60000	/* silent non-watchers go */
#define CTL_FLUSH_MS		5000	/* to flush a last answer */

struct ctl_client {
	struct ctl		*cc_ctl;
	struct bufferevent	*cc_bev;
	int			 cc_flags;
#define CTL_CLIENT_WATCH	0x1	/* gets ctl_broadcast() */
#define CTL_CLIENT_CLOSING	0x2	/* flush, then close */
#define CTL_CLIENT_DEAD		0x4	/* on c_dead, freed soon */
	TAILQ_ENTRY(ctl_client)	 cc_entry;
};
TAILQ_HEAD(ctl_clients, ctl_client);

struct ctl {
	struct event_base	*c_base;
	struct evconnlistener	*c_listener;
	struct event		*c_retry;	/* re-enables listener */
	struct event		*c_reaper;	/* frees c_dead */
	char			*c_path;
	dev_t			 c_dev;		/* our socket file, so */
	ino_t			 c_ino;		/* we unlink only ours */
	const struct ctl_cmd	*c_cmds;
	size_t			 c_ncmds;
	void			*c_arg;
	struct ctl_clients	 c_clients;
	struct ctl_clients	 c_dead;
	size_t			 c_nclients;
	size_t			 c_nwatchers;
	int			 c_busy;	/* in a client callback */
	int			 c_freeing;	/* ctl_free() when busy */
	int			 c_idle_ms;	/* silent or unread client */
};

static void	ctl_client_close(struct ctl_client *);
static void	ctl_free_now(struct ctl *);

/* Describe a CTL_* code for the daemon's log or the CLI. */
const char *
ctl_strerror(int error)
{
	switch (error) {
	case CTL_OK:
		return ("no error");
	case CTL_E_SYSTEM:
		return ("system error");
	case CTL_E_PATH:
		return ("socket path too long or in use");
	case CTL_E_PROTO:
		return ("peer did not speak JSON lines");
	case CTL_E_TIMEOUT:
		return ("timed out");
	case CTL_E_CLOSED:
		return ("connection closed by peer");
	case CTL_E_TOOBIG:
		return ("line too long");
	}
	return ("unknown ctl error");
}

/* Fill a sockaddr_un, refusing paths that would be truncated. */
static int
ctl_sockaddr(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (path == NULL || *path == '\0' ||
	    strlcpy(sun->sun_path, path, sizeof(sun->sun_path)) >=
	    sizeof(sun->sun_path))
		return (CTL_E_PATH);
	return (CTL_OK);
}

/*
 * Is something already answering at SUN?  A socket file nobody listens
 * on is left over from a crash and removed; a live one is another
 * daemon's and must not be stolen.
 */
static int
ctl_probe(const struct sockaddr_un *sun)
{
	struct stat	st;
	int		fd, rv, saved;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1)
		return (CTL_E_SYSTEM);
	rv = connect(fd, (const struct sockaddr *)sun, sizeof(*sun));
	saved = errno;
	close(fd);
	if (rv == 0 || saved == EAGAIN || saved == EINPROGRESS)
		return (CTL_E_PATH);
	if (saved == ECONNREFUSED && lstat(sun->sun_path, &st) == 0 &&
	    S_ISSOCK(st.st_mode)) {
		if (unlink(sun->sun_path) == -1 && errno != ENOENT)
			return (CTL_E_SYSTEM);
	}
	/* Anything else: let bind() say what is wrong. */
	return (CTL_OK);
}

/* Queue LEN bytes of LINE plus a newline; drop a client that lags. */
static int
ctl_client_send(struct ctl_client *cc, const char *line, size_t len)
{
	struct evbuffer	*out;

	if (cc->cc_flags & CTL_CLIENT_DEAD)
		return (-1);
	out = bufferevent_get_output(cc->cc_bev);
	/* Watchers may lag by CTL_WATCH_MAX; others hold one answer. */
	if (evbuffer_get_length(out) + len + 1 > ((cc->cc_flags &
	    CTL_CLIENT_WATCH) ? CTL_WATCH_MAX : CTL_ANSWER_MAX + 1)) {
		ctl_client_close(cc);
		return (-1);
	}
	if (evbuffer_add(out, line, len) == -1 ||
	    evbuffer_add(out, "\n", 1) == -1) {
		ctl_client_close(cc);
		return (-1);
	}
	return (0);
}

/* Serialise and queue ANSWER (stolen); too-long answers become errors. */
static void
ctl_client_answer(struct ctl_client *cc, json_t *answer)
{
	static const char	 toolong[] =
	    "{\"ok\":false,\"error\":\"answer too long\"}";
	static const char	 noenc[] =
	    "{\"ok\":false,\"error\":\"cannot encode answer\"}";
	char			*s;
	size_t			 len;

	s = json_dumps(answer, JSON_COMPACT);
	json_decref(answer);
	if (s == NULL) {
		ctl_client_send(cc, noenc, sizeof(noenc) - 1);
		return;
	}
	len = strlen(s);
	if (len > CTL_ANSWER_MAX)
		ctl_client_send(cc, toolong, sizeof(toolong) - 1);
	else
		ctl_client_send(cc, s, len);
	free(s);
}

/* {"ok":false,"error":MSG} (new reference); MSG made plain ASCII. */
static json_t *
ctl_error(const char *msg)
{
	json_t	*o;
	char	*m = xstrdup(msg != NULL ? msg : "command failed");

	text_ascii(m);
	o = json_pack("{s:b, s:s}", "ok", 0, "error", m);
	free(m);
	return (o);
}

/* Arm the read and write timeouts; zero disarms one. */
static void
ctl_client_timeouts(struct ctl_client *cc, int read_ms, int write_ms)
{
	struct timeval	rtv, wtv;

	rtv.tv_sec = read_ms / 1000;
	rtv.tv_usec = (read_ms % 1000) * 1000;
	wtv.tv_sec = write_ms / 1000;
	wtv.tv_usec = (write_ms % 1000) * 1000;
	bufferevent_set_timeouts(cc->cc_bev, read_ms > 0 ? &rtv : NULL,
	    write_ms > 0 ? &wtv : NULL);
}

/*
 * Stop reading and close once the output is flushed, so the client
 * sees why it is being closed.
 */
static void
ctl_client_finish(struct ctl_client *cc)
{
	if (cc->cc_flags & (CTL_CLIENT_DEAD | CTL_CLIENT_CLOSING))
		return;
	if (cc->cc_flags & CTL_CLIENT_WATCH) {
		cc->cc_flags &= ~CTL_CLIENT_WATCH;
		cc->cc_ctl->c_nwatchers--;
	}
	cc->cc_flags |= CTL_CLIENT_CLOSING;
	bufferevent_disable(cc->cc_bev, EV_READ);
	ctl_client_timeouts(cc, 0, CTL_FLUSH_MS);
	if (evbuffer_get_length(bufferevent_get_output(cc->cc_bev)) == 0)
		ctl_client_close(cc);
}

/* The built-in "help": the table, so the CLI never hard-codes it. */
static json_t *
ctl_help(const struct ctl_cmd *cmds, size_t n)
{
	json_t	*list;
	size_t	 i;

	list = json_array();
	for (i = 0; i < n; i++) {
		json_array_append_new(list, json_pack("{s:s, s:s}",
		    "name", cmds[i].name,
		    "help", cmds[i].help != NULL ? cmds[i].help : ""));
	}
	json_array_append_new(list, json_pack("{s:s, s:s}", "name", "help",
	    "help", "list the commands"));
	return (json_pack("{s:b, s:o}", "ok", 1, "commands", list));
}

/* Run REQ (borrowed, an object with a string "cmd"): its answer. */
static json_t *
ctl_dispatch(const struct ctl_cmd *cmds, size_t n, void *arg, json_t *req,
    const char *name, int *what)
{
	const struct ctl_cmd	*cmd = NULL;
	json_t			*result, *answer;
	const char		*err = NULL;
	char			 msg[128];
	size_t			 i;

	for (i = 0; i < n; i++) {
		if (strcmp(cmds[i].name, name) == 0) {
			cmd = &cmds[i];
			break;
		}
	}
	if (cmd == NULL) {
		if (strcmp(name, "help") == 0)
			return (ctl_help(cmds, n));
		snprintf(msg, sizeof(msg), "unknown command \"%.*s\" "
		    "(try \"help\")", CTL_CMD_QUOTE_MAX, name);
		text_ascii(msg);
		return (ctl_error(msg));
	}

	if ((result = cmd->fn(req, arg, &err)) == NULL)
		return (ctl_error(err));
	if (!json_is_object(result)) {
		json_decref(result);
		return (ctl_error("internal error: answer is not an object"));
	}
	/* "ok" first, whatever the command put in its object. */
	answer = json_object();
	json_object_set_new(answer, "ok", json_true());
	json_object_update(answer, result);
	json_object_set_new(answer, "ok", json_true());
	json_decref(result);
	if (cmd->flags & CTL_WATCH)
		*what |= CTL_LINE_WATCH;
	return (answer);
}

/*
 * One request line: parse, check the shape, dispatch (see ctl.h).  It
 * knows no client, so the fuzzer reaches it without a socket.
 */
json_t *
ctl_line(const struct ctl_cmd *cmds, size_t n, void *arg, const char *line,
    size_t len, int *what)
{
	json_error_t	 jerr;
	json_t		*req, *cmd, *answer;
	char		 msg[256];

	*what = 0;
	/* Blank lines (a human at socat pressing return) are not requests. */
	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' ||
	    line[len - 1] == '\t'))
		len--;
	if (len == 0)
		return (NULL);

	req = json_loadb(line, len, JSON_DECODE_ANY, &jerr);
	if (req == NULL) {
		/* The stream cannot be trusted past a bad line: close. */
		snprintf(msg, sizeof(msg), "invalid JSON: %s", jerr.text);
		text_ascii(msg);
		*what |= CTL_LINE_CLOSE;
		return (ctl_error(msg));
	}
	if (!json_is_object(req))
		answer = ctl_error("request is not a JSON object");
	else if ((cmd = json_object_get(req, "cmd")) == NULL ||
	    !json_is_string(cmd))
		answer = ctl_error("request has no string \"cmd\"");
	else
		answer = ctl_dispatch(cmds, n, arg, req,
		    json_string_value(cmd), what);
	json_decref(req);
	return (answer);
}

/* One request line from a client: answer it, then close or watch. */
static void
ctl_client_line(struct ctl_client *cc, const char *line, size_t len)
{
	struct ctl	*ctl = cc->cc_ctl;
	json_t		*answer;
	int		 what;

	answer = ctl_line(ctl->c_cmds, ctl->c_ncmds, ctl->c_arg, line, len,
	    &what);
	if (answer == NULL)
		return;
	if (cc->cc_flags & (CTL_CLIENT_DEAD | CTL_CLIENT_CLOSING) ||
	    ctl->c_freeing) {
		/* The command dropped us (a broadcast) or freed the ctl. */
		json_decref(answer);
		return;
	}
	ctl_client_answer(cc, answer);
	if (what & CTL_LINE_CLOSE)
		ctl_client_finish(cc);
	else if ((what & CTL_LINE_WATCH) &&
	    !(cc->cc_flags & (CTL_CLIENT_WATCH | CTL_CLIENT_DEAD))) {
		cc->cc_flags |= CTL_CLIENT_WATCH;
		ctl->c_nwatchers++;
		/* Watchers are silent by design; the queue cap bounds them. */
		ctl_client_timeouts(cc, 0, 0);
	}
}

/*
 * Input arrived: handle complete lines, refuse endless ones.  One
 * request is answered per turn of the loop: while an answer waits to
 * be sent, reading stops (ctl_client_write_cb resumes it), so a client
 * pipelining thousands of requests cannot keep the daemon from its
 * sessions.
 */
static void
ctl_client_read_cb(struct bufferevent *bev, void *arg)
{
	struct ctl_client	*cc = arg;
	struct ctl		*ctl = cc->cc_ctl;
	struct evbuffer		*in = bufferevent_get_input(bev);
	char			*line;
	size_t			 len;

	ctl->c_busy++;
	while (!(cc->cc_flags & (CTL_CLIENT_DEAD | CTL_CLIENT_CLOSING)) &&
	    !ctl->c_freeing) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) > 0 &&
		    !(cc->cc_flags & CTL_CLIENT_WATCH)) {
			bufferevent_disable(bev, EV_READ);
			break;
		}
		line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);
		if (line == NULL)
			break;
		ctl_client_line(cc, line, len);
		free(line);
	}
	if (!(cc->cc_flags & (CTL_CLIENT_DEAD | CTL_CLIENT_CLOSING)) &&
	    !ctl->c_freeing && evbuffer_get_length(in) > CTL_LINE_MAX) {
		ctl_client_answer(cc, ctl_error("request too long"));
		ctl_client_finish(cc);
	}
	if (--ctl->c_busy == 0 && ctl->c_freeing)
		ctl_free_now(ctl);
}

/* Output drained: a closing client can go now; others read on. */
static void
ctl_client_write_cb(struct bufferevent *bev, void *arg)
{
	struct ctl_client	*cc = arg;

	if (cc->cc_flags & CTL_CLIENT_CLOSING) {
		ctl_client_close(cc);
		return;
	}
	if (cc->cc_flags & CTL_CLIENT_DEAD)
		return;
	if (!(bufferevent_get_enabled(bev) & EV_READ)) {
		bufferevent_enable(bev, EV_READ);
		ctl_client_read_cb(bev, cc);
	}
}

/* EOF or error.  At EOF, a last line without a newline still counts. */
static void
ctl_client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct ctl_client	*cc = arg;
	struct ctl		*ctl = cc->cc_ctl;
	struct evbuffer		*in = bufferevent_get_input(bev);
	char			*line;
	size_t			 len;

	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) &&
	    !(cc->cc_flags & (CTL_CLIENT_DEAD | CTL_CLIENT_CLOSING))) {
		len = evbuffer_get_length(in);
		if (len > 0 && len <= CTL_LINE_MAX) {
			line = xmalloc(len);
			evbuffer_remove(in, line, len);
			ctl->c_busy++;
			ctl_client_line(cc, line, len);
			free(line);
			if (--ctl->c_busy == 0 && ctl->c_freeing) {
				ctl_free_now(ctl);
				return;
			}
		}
		ctl_client_finish(cc);
		return;
	}
	ctl_client_close(cc);
}

/* Free a client for real; only the reaper and ctl_free_now() do this. */
static void
ctl_client_free(struct ctl_client *cc)
{
	bufferevent_free(cc->cc_bev);
	free(cc);
}

/* Drop a client now; its memory goes on the next loop turn. */
static void
ctl_client_close(struct ctl_client *cc)
{
	struct ctl	*ctl = cc->cc_ctl;

	if (cc->cc_flags & CTL_CLIENT_DEAD)
		return;
	if (cc->cc_flags & CTL_CLIENT_WATCH)
		ctl->c_nwatchers--;
	cc->cc_flags = CTL_CLIENT_DEAD;
	bufferevent_disable(cc->cc_bev, EV_READ | EV_WRITE);
	bufferevent_setcb(cc->cc_bev, NULL, NULL, NULL, NULL);
	TAILQ_REMOVE(&ctl->c_clients, cc, cc_entry);
	TAILQ_INSERT_TAIL(&ctl->c_dead, cc, cc_entry);
	ctl->c_nclients--;
	event_active(ctl->c_reaper, EV_TIMEOUT, 0);
}

/* Loop turn after a close: nobody's callback holds a dead client now. */
static void
ctl_reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ctl		*ctl = arg;
	struct ctl_client	*cc;

	while ((cc = TAILQ_FIRST(&ctl->c_dead)) != NULL) {
		TAILQ_REMOVE(&ctl->c_dead, cc, cc_entry);
		ctl_client_free(cc);
	}
}

/* Is the peer on FD us (or root)?  The 0600 mode is the first wall. */
static int
ctl_peer_ok(int fd)
{
	struct ucred	uc;
	socklen_t	len = sizeof(uc);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) == -1 ||
	    len != sizeof(uc))
		return (0);
	return (uc.uid == 0 || uc.uid == geteuid());
}

/* A client connected: check who it is and give it a bufferevent. */
static void
ctl_accept_cb(struct evconnlistener *listener, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct ctl		*ctl = arg;
	struct ctl_client	*cc;
	struct bufferevent	*bev;

	if (ctl->c_nclients >= CTL_CLIENTS_MAX || !ctl_peer_ok(fd)) {
		close(fd);
		return;
	}
	bev = bufferevent_socket_new(ctl->c_base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		close(fd);
		return;
	}
	cc = xcalloc(1, sizeof(*cc));
	cc->cc_ctl = ctl;
	cc->cc_bev = bev;
	bufferevent_setcb(bev, ctl_client_read_cb, ctl_client_write_cb,
	    ctl_client_event_cb, cc);
	bufferevent_setwatermark(bev, EV_READ, 0, CTL_LINE_MAX + 1);
	/*
	 * The write timeout counts only while an answer waits: reading
	 * stops then, and with it the read timeout, so without it a
	 * client that never reads its answer would keep its slot and up
	 * to CTL_ANSWER_MAX for good.
	 */
	ctl_client_timeouts(cc, ctl->c_idle_ms, ctl->c_idle_ms);
	if (bufferevent_enable(bev, EV_READ | EV_WRITE) == -1) {
		bufferevent_free(bev);
		free(cc);
		return;
	}
	TAILQ_INSERT_TAIL(&ctl->c_clients, cc, cc_entry);
	ctl->c_nclients++;
}

/*
 * accept() failed for real (EMFILE, ENFILE, ENOBUFS): the listener is
 * level-triggered and would spin, so pause it for a while (relayd).
 */
static void
ctl_accept_error_cb(struct evconnlistener *listener, void *arg)
{
	struct ctl	*ctl = arg;
	struct timeval	 tv = { CTL_ACCEPT_RETRY_MS / 1000,
			    (CTL_ACCEPT_RETRY_MS % 1000) * 1000 };

	evconnlistener_disable(listener);
	evtimer_add(ctl->c_retry, &tv);
}

/* Try accepting again after a pause. */
static void
ctl_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ctl	*ctl = arg;

	evconnlistener_enable(ctl->c_listener);
}

/* Bind PATH owner-only: umask for the bind itself, chmod to be sure. */
static int
ctl_bind(const struct sockaddr_un *sun, struct stat *st)
{
	mode_t	old;
	int	fd, rv, saved;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1)
		return (-1);
	old = umask(0177);
	rv = bind(fd, (const struct sockaddr *)sun, sizeof(*sun));
	umask(old);
	if (rv == -1)
		goto fail;
	if (chmod(sun->sun_path, 0600) == -1 ||
	    lstat(sun->sun_path, st) == -1 ||
	    listen(fd, CTL_BACKLOG) == -1) {
		saved = errno;
		unlink(sun->sun_path);
		errno = saved;
		goto fail;
	}
	return (fd);
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return (-1);
}

/* Listen on PATH with TABLE of N commands; ARG goes to every fn. */
int
ctl_open(struct event_base *base, const char *path,
    const struct ctl_cmd *table, size_t n, void *arg, struct ctl **ctlp)
{
	struct sockaddr_un	 sun;
	struct stat		 st;
	struct ctl		*ctl = NULL;
	size_t			 i;
	int			 fd = -1, rv, saved;

	*ctlp = NULL;
	if (base == NULL || (table == NULL && n > 0)) {
		errno = EINVAL;
		return (CTL_E_SYSTEM);
	}
	for (i = 0; i < n; i++) {
		if (table[i].name == NULL || table[i].fn == NULL) {
			errno = EINVAL;
			return (CTL_E_SYSTEM);
		}
	}
	if ((rv = ctl_sockaddr(path, &sun)) != CTL_OK)
		return (rv);
	if ((rv = ctl_probe(&sun)) != CTL_OK)
		return (rv);
	if ((fd = ctl_bind(&sun, &st)) == -1)
		return (CTL_E_SYSTEM);

	ctl = xcalloc(1, sizeof(*ctl));
	ctl->c_base = base;
	ctl->c_path = xstrdup(path);
	ctl->c_dev = st.st_dev;
	ctl->c_ino = st.st_ino;
	ctl->c_cmds = table;
	ctl->c_ncmds = n;
	ctl->c_idle_ms = CTL_IDLE_MS;
	ctl->c_arg = arg;
	TAILQ_INIT(&ctl->c_clients);
	TAILQ_INIT(&ctl->c_dead);

	ctl->c_reaper = event_new(base, -1, 0, ctl_reap_cb, ctl);
	ctl->c_retry = evtimer_new(base, ctl_retry_cb, ctl);
	if (ctl->c_reaper == NULL || ctl->c_retry == NULL) {
		errno = ENOMEM;
		rv = CTL_E_SYSTEM;
		goto fail;
	}
	ctl->c_listener = evconnlistener_new(base, ctl_accept_cb, ctl,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (ctl->c_listener == NULL) {
		rv = CTL_E_SYSTEM;
		goto fail;
	}
	fd = -1;	/* the listener owns it now */
	evconnlistener_set_error_cb(ctl->c_listener, ctl_accept_error_cb);
	*ctlp = ctl;
	return (CTL_OK);

fail:
	saved = errno;
	if (fd != -1)
		close(fd);
	ctl_free(ctl);	/* unlinks the socket */
	errno = saved;
	return (rv);
}

/* Tear everything down; no callback of ours is on the stack. */
static void
ctl_free_now(struct ctl *ctl)
{
	struct ctl_client	*cc;
	struct stat		 st;

	while ((cc = TAILQ_FIRST(&ctl->c_clients)) != NULL) {
		TAILQ_REMOVE(&ctl->c_clients, cc, cc_entry);
		ctl_client_free(cc);
	}
	while ((cc = TAILQ_FIRST(&ctl->c_dead)) != NULL) {
		TAILQ_REMOVE(&ctl->c_dead, cc, cc_entry);
		ctl_client_free(cc);
	}
	if (ctl->c_listener != NULL)
		evconnlistener_free(ctl->c_listener);
	if (ctl->c_reaper != NULL)
		event_free(ctl->c_reaper);
	if (ctl->c_retry != NULL)
		event_free(ctl->c_retry);
	/* Only our own socket: a successor may have taken the path. */
	if (lstat(ctl->c_path, &st) == 0 && st.st_dev == ctl->c_dev &&
	    st.st_ino == ctl->c_ino)
		unlink(ctl->c_path);
	free(ctl->c_path);
	free(ctl);
}

/*
 * Close every client, remove the socket.  From inside a command
 * function the work is finished when that function has returned.
 */
void
ctl_free(struct ctl *ctl)
{
	if (ctl == NULL)
		return;
	if (ctl->c_busy > 0) {
		ctl->c_freeing = 1;
		if (ctl->c_listener != NULL)
			evconnlistener_disable(ctl->c_listener);
		return;
	}
	ctl_free_now(ctl);
}

/* Send EVENT (borrowed) with "ts" to every watcher; drop the laggards. */
int
ctl_broadcast(struct ctl *ctl, json_t *event)
{
	struct ctl_client	*cc, *next;
	json_t			*copy;
	const char		*name;
	char			*s;
	size_t			 len;
	int			 rv = CTL_OK;

	if (ctl == NULL || event == NULL || !json_is_object(event) ||
	    ctl->c_nwatchers == 0 || ctl->c_freeing)
		return (CTL_OK);
	copy = json_copy(event);
	json_object_set_new(copy, "ts", json_integer(xtime_wall_ms()));
	s = json_dumps(copy, JSON_COMPACT);
	if (s != NULL && (len = strlen(s)) > CTL_EVENT_MAX) {
		/* Watchers learn that they missed one, and which. */
		free(s);
		name = json_string_value(json_object_get(event, "event"));
		json_decref(copy);
		copy = json_pack("{s:s, s:s, s:I, s:I}", "event", "dropped",
		    "dropped", name != NULL ? name : "?", "bytes",
		    (json_int_t)len, "ts", (json_int_t)xtime_wall_ms());
		s = copy != NULL ? json_dumps(copy, JSON_COMPACT) : NULL;
		len = s != NULL ? strlen(s) : 0;
		rv = CTL_E_TOOBIG;
	}
	json_decref(copy);
	if (s == NULL)
		return (CTL_E_PROTO);
	TAILQ_FOREACH_SAFE(cc, &ctl->c_clients, cc_entry, next) {
		if (cc->cc_flags & CTL_CLIENT_WATCH)
			ctl_client_send(cc, s, len);
	}
	free(s);
	return (rv);
}

/* How long a client may stay silent, or leave its answer unread. */
void
ctl_set_idle(struct ctl *ctl, int ms)
{
	ctl->c_idle_ms = ms;
}

/* How many clients are watching (a daemon may skip building events). */
size_t
ctl_nwatchers(const struct ctl *ctl)
{
	if (ctl == NULL)
		return (0);
	return (ctl->c_nwatchers);
}

/*
 * Client side.
 */

struct ctl_conn {
	int	 fd;
	int64_t	 deadline;	/* CLOCK_MONOTONIC ms, -1 for none */
	char	*buf;		/* CTL_ANSWER_MAX + 1: line, newline */
	size_t	 off;		/* start of unread bytes */
	size_t	 len;		/* end of unread bytes */
};

/* Monotonic milliseconds, for deadlines. */
static int64_t
ctl_mono_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/* Wait for EVENTS on the connection, honouring its deadline. */
static int
ctl_conn_wait(struct ctl_conn *cn, short events)
{
	struct pollfd	pfd;
	int64_t		left;
	int		n, ms;

	for (;;) {
		ms = -1;
		if (cn->deadline != -1) {
			left = cn->deadline - ctl_mono_ms();
			if (left <= 0)
				return (CTL_E_TIMEOUT);
			ms = left > INT_MAX ? INT_MAX : (int)left;
		}
		pfd.fd = cn->fd;
		pfd.events = events;
		pfd.revents = 0;
		n = poll(&pfd, 1, ms);
		if (n == -1)
			return (CTL_E_SYSTEM);	/* EINTR: a caller's signal */
		if (n == 1)
			return (CTL_OK);
	}
}

/*
 * Connect to PATH.  A unix connect() blocks only on a full backlog and
 * honours SO_SNDTIMEO there; after that the socket is non-blocking.
 */
static int
ctl_conn_open(struct ctl_conn *cn, const char *path, int timeout_ms)
{
	struct sockaddr_un	sun;
	struct timeval		tv;
	int			rv;

	memset(cn, 0, sizeof(*cn));
	cn->fd = -1;
	cn->deadline = timeout_ms > 0 ? ctl_mono_ms() + timeout_ms : -1;
	if ((rv = ctl_sockaddr(path, &sun)) != CTL_OK)
		return (rv);
	cn->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (cn->fd == -1)
		return (CTL_E_SYSTEM);
	if (timeout_ms > 0) {
		tv.tv_sec = timeout_ms / 1000;
		tv.tv_usec = (timeout_ms % 1000) * 1000;
		if (setsockopt(cn->fd, SOL_SOCKET, SO_SNDTIMEO, &tv,
		    sizeof(tv)) == -1)
			return (CTL_E_SYSTEM);
	}
	if (connect(cn->fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		if (errno == EAGAIN || errno == EINPROGRESS)
			return (timeout_ms > 0 ? CTL_E_TIMEOUT : CTL_E_SYSTEM);
		return (CTL_E_SYSTEM);
	}
	if (fcntl(cn->fd, F_SETFL, fcntl(cn->fd, F_GETFL) | O_NONBLOCK) ==
	    -1)
		return (CTL_E_SYSTEM);
	cn->buf = xmalloc(CTL_ANSWER_MAX + 1);
	return (CTL_OK);
}

/* Close the connection, keeping errno for the caller. */
static void
ctl_conn_close(struct ctl_conn *cn)
{
	int	saved = errno;

	if (cn->fd != -1)
		close(cn->fd);
	free(cn->buf);
	cn->fd = -1;
	cn->buf = NULL;
	errno = saved;
}

/* Write REQ as one compact line. */
static int
ctl_conn_send(struct ctl_conn *cn, json_t *req)
{
	char	*s;
	size_t	 len, done = 0;
	ssize_t	 n;
	int	 rv = CTL_OK;

	if (req == NULL || (s = json_dumps(req, JSON_COMPACT)) == NULL)
		return (CTL_E_PROTO);
	len = strlen(s);
	if (len > CTL_LINE_MAX) {
		free(s);
		return (CTL_E_TOOBIG);
	}
	s[len++] = '\n';	/* replaces the NUL; length is explicit now */
	while (done < len) {
		n = send(cn->fd, s + done, len - done, MSG_NOSIGNAL);
		if (n == -1 && errno == EAGAIN) {
			if ((rv = ctl_conn_wait(cn, POLLOUT)) != CTL_OK)
				break;
			continue;
		}
		if (n == -1) {
			rv = errno == EPIPE || errno == ECONNRESET ?
			    CTL_E_CLOSED : CTL_E_SYSTEM;
			break;
		}
		done += (size_t)n;
	}
	free(s);
	return (rv);
}

/* Read the next line and parse it into a new object reference. */
static int
ctl_conn_recv(struct ctl_conn *cn, json_t **objp)
{
	json_error_t	 jerr;
	char		*nl;
	size_t		 linelen;
	ssize_t		 n;
	int		 rv;

	*objp = NULL;
	for (;;) {
		nl = memchr(cn->buf + cn->off, '\n', cn->len - cn->off);
		if (nl != NULL)
			break;
		if (cn->len - cn->off > CTL_ANSWER_MAX)
			return (CTL_E_TOOBIG);
		if (cn->off > 0) {
			memmove(cn->buf, cn->buf + cn->off, cn->len - cn->off);
			cn->len -= cn->off;
			cn->off = 0;
		}
		n = recv(cn->fd, cn->buf + cn->len,
		    CTL_ANSWER_MAX + 1 - cn->len, 0);
		if (n == 0 || (n == -1 && errno == ECONNRESET))
			return (CTL_E_CLOSED);
		if (n == -1 && errno == EAGAIN) {
			if ((rv = ctl_conn_wait(cn, POLLIN)) != CTL_OK)
				return (rv);
			continue;
		}
		if (n == -1)
			return (CTL_E_SYSTEM);
		cn->len += (size_t)n;
	}
	linelen = (size_t)(nl - (cn->buf + cn->off));
	*objp = json_loadb(cn->buf + cn->off, linelen, 0, &jerr);
	cn->off += linelen + 1;
	if (*objp == NULL)
		return (CTL_E_PROTO);
	if (!json_is_object(*objp)) {
		json_decref(*objp);
		*objp = NULL;
		return (CTL_E_PROTO);
	}
	return (CTL_OK);
}

/*
 * One request, one answer.  TIMEOUT_MS covers the whole exchange;
 * zero or less waits forever.  A signal caught while waiting gives
 * CTL_E_SYSTEM with errno EINTR.
 */
int
ctl_request(const char *path, json_t *req, int timeout_ms, json_t **respp)
{
	struct ctl_conn	 cn;
	int		 rv;

	*respp = NULL;
	if ((rv = ctl_conn_open(&cn, path, timeout_ms)) != CTL_OK)
		goto out;
	if ((rv = ctl_conn_send(&cn, req)) != CTL_OK)
		goto out;
	rv = ctl_conn_recv(&cn, respp);
out:
	ctl_conn_close(&cn);
	return (rv);
}

/*
 * Send REQ, then hand CB the answer and every event until CB returns
 * nonzero (CTL_OK) or the daemon closes (CTL_E_CLOSED).  No timeout:
 * a caught signal ends it with CTL_E_SYSTEM and errno EINTR.
 */
int
ctl_watch(const char *path, json_t *req, int (*cb)(json_t *, void *),
    void *arg)
{
	struct ctl_conn	 cn;
	json_t		*obj;
	int		 rv, stop;

	if (cb == NULL) {
		errno = EINVAL;
		return (CTL_E_SYSTEM);
	}
	if ((rv = ctl_conn_open(&cn, path, 0)) != CTL_OK)
		goto out;
	if ((rv = ctl_conn_send(&cn, req)) != CTL_OK)
		goto out;
	for (;;) {
		if ((rv = ctl_conn_recv(&cn, &obj)) != CTL_OK)
			goto out;
		stop = cb(obj, arg);
		json_decref(obj);
		if (stop)
			break;
	}
out:
	ctl_conn_close(&cn);
	return (rv);
}
