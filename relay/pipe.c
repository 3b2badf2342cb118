/*
 * pipe.c -- pipe-backed serial ports (docs/serial.md): ESX backs a VM's
 * serial port with a "named pipe", a unix stream socket on the host.
 * Each one is carried to the appliance as an ingress session of
 * service PROTO_SVC_SERIAL named after its VM, exactly like a guest's
 * accepted connection; the appliance attaches it to that VM's serial
 * stream, whose one backend connection outlives the session.
 *
 * Design.  A pipe is one socket path and one VM name.  Its role says
 * which end listens: with --pipe PATH=NAME and in --pipe-dir mode the
 * VM is the server and we connect (backoff 250 ms doubling to 5 s
 * while nobody answers); with --pipe listen:PATH=NAME the VM is the
 * client and we listen, taking one connection at a time.  The pipe's
 * fd becomes the session's local stream (daemon_client), so the
 * session owns and closes it.
 *
 * ingress.c hands us every serial session's events (pipe_sess_event):
 * the pipe is found by its VM name (names are unique among our pipes;
 * a session's id may change before it first opens, when sess.c sends
 * HELLO NEW again under a fresh id), so we never keep a pointer to a
 * session.  When it closes, a connecting pipe reconnects after a
 * backoff if its socket is still there, and a listening pipe takes the
 * next connection.
 *
 * Directory mode watches each DIR with inotify and rescans it every
 * PIPE_RESCAN_MS as well: every unix socket in it is a pipe whose VM
 * name is the file name less one trailing ".sock".  A socket that
 * disappears leaves its live session to end by itself; the pipe is
 * forgotten then.  Bad file names are skipped with one warning (and
 * remembered, so rescans do not warn again).
 */
#include <sys/types.h>
#include <sys/inotify.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "log.h"
#include "proto.h"
#include "relay.h"
#include "text.h"
#include "xaddr.h"
#include "xmalloc.h"
#include "xtime.h"

#define PIPE_MAX		512	/* pipes per relay, every kind */
#define PIPE_SKIP_MAX		PIPE_MAX	/* bad names remembered */
#define PIPE_DIR_MAX		RELAY_LISTEN_MAX	/* --pipe-dir */
#define PIPE_BACKOFF_MIN	250	/* ms, first retry after a failure */
#define PIPE_BACKOFF_MAX	5000
#define PIPE_STABLE_MS		5000	/* a session this old: backoff anew */
#define PIPE_RESCAN_MS		2000	/* directories, besides inotify */
#define PIPE_QUIET_MS		1000	/* a new socket may not listen yet */
#define PIPE_SUFFIX		".sock"	/* dropped from a file's VM name */
#define PIPE_ERR_MAX		160

enum pipe_role {
	PIPE_CONNECT = 1,	/* the VM listens; we connect */
	PIPE_LISTEN,		/* we listen; the VM connects */
};

enum pipe_state {
	PIPE_WAITING = 1,	/* connect role: retrying with backoff */
	PIPE_CONNECTED,		/* a session carries it */
	PIPE_LISTENING,		/* listen role: no connection now */
};

static const char *const pipe_states[] = {
	NULL, "waiting", "connected", "listening"
};

struct pipe_ctx;
struct pipe_dir;

struct pipe_port {
	struct pipe_ctx		*ctx;
	char			*path;
	char			*shown;		/* path, printable */
	char			*name;
	struct pipe_dir		*dir;		/* NULL: from --pipe */
	char			*file;		/* dir mode: its entry */
	enum pipe_role		 role;
	enum pipe_state		 state;
	struct xaddr		*addr;		/* unix:PATH */
	struct evconnlistener	*l;		/* listen role */
	struct event		*timer;		/* connect retry */
	uint64_t		 sid;		/* its session, 0: none */
	long long		 since_ms;	/* session started */
	long long		 step;		/* backoff */
	long long		 found_ms;	/* added, or session ended */
	uint64_t		 connects;
	uint64_t		 refused;	/* listen: 2nd connections */
	char			 last_error[PIPE_ERR_MAX];
	int			 logged;	/* said so in this streak */
	int			 gone;		/* dir mode: the file went */
	int			 seen;		/* dir mode: rescan mark */
	TAILQ_ENTRY(pipe_port)	 entry;
};
TAILQ_HEAD(pipe_list, pipe_port);

/* A socket in a watched directory we will not carry, warned once. */
struct pipe_skip {
	struct pipe_dir		*dir;
	char			*file;
	char			*why;
	int			 dup;		/* name taken: may free up */
	int			 seen;
	TAILQ_ENTRY(pipe_skip)	 entry;
};
TAILQ_HEAD(pipe_skip_list, pipe_skip);

struct pipe_dir {
	char			*path;
	char			*shown;
	int			 wd;		/* inotify watch, -1: none */
	int			 unreadable;	/* said so already */
};

struct pipe_ctx {
	struct relay		*r;
	struct pipe_list	 pipes;
	size_t			 npipes;
	struct pipe_skip_list	 skips;
	size_t			 nskips;
	struct pipe_dir		 dirs[PIPE_DIR_MAX];
	size_t			 ndirs;
	int			 ifd;		/* inotify, -1: none */
	struct event		*iev;
	struct event		*rescan;	/* periodic */
	struct event		*soon;		/* rescan on a later turn */
	int			 full;		/* PIPE_MAX warned */
	int			 skips_full;
};

static void	pipe_connect(struct pipe_port *);
static void	pipe_scan(struct pipe_ctx *);

/*
 * Why NAME (LEN bytes) cannot name a VM in a session's HELLO, or NULL:
 * 1 to PROTO_NAME_MAX bytes of UTF-8 without control characters (what
 * the appliance's frame decoder takes, and safe in logs and JSON).
 */
static const char *
pipe_name_bad(const char *name, size_t len)
{
	if (len == 0)
		return ("empty VM name");
	if (len > PROTO_NAME_MAX)
		return ("VM name longer than 160 bytes");
	if (!text_utf8_ok(name, len))
		return ("VM name is not UTF-8 without control characters");
	return (NULL);
}

/* A printable copy of S for logs and JSON (new string). */
static char *
pipe_shown(const char *s)
{
	char	buf[512];

	if (text_utf8_ok(s, strlen(s)))
		return (xstrdup(s));
	return (xstrdup(text_ascii_copy(buf, sizeof(buf), s, strlen(s))));
}

/* The pipe carrying VM NAME, or NULL. */
static struct pipe_port *
pipe_find_name(struct pipe_ctx *ctx, const char *name)
{
	struct pipe_port	*p;

	TAILQ_FOREACH(p, &ctx->pipes, entry)
		if (strcmp(p->name, name) == 0)
			return (p);
	return (NULL);
}

/* Connect now: the retry timer, at once. */
static void
pipe_timer_cb(evutil_socket_t fd, short ev, void *arg)
{
	pipe_connect(arg);
}

/* Retry P's connect after its backoff (0: on a later loop turn). */
static void
pipe_schedule(struct pipe_port *p)
{
	struct timeval	tv;

	xtime_tv(xtime_backoff(&p->step, PIPE_BACKOFF_MIN, PIPE_BACKOFF_MAX),
	    &tv);
	evtimer_add(p->timer, &tv);
}

/* A new pipe (not started); NULL with *why if PATH does not fit. */
static struct pipe_port *
pipe_add(struct pipe_ctx *ctx, const char *path, const char *name,
    enum pipe_role role, struct pipe_dir *dir, const char *file,
    const char **why)
{
	struct pipe_port	*p;
	struct xaddr		*a;
	char			*s;
	int			 e;

	xasprintf(&s, "unix:%s", path);
	e = xaddr_parse(s, &a);
	free(s);
	if (e != XADDR_OK) {
		*why = e == XADDR_E_TOOLONG ? "path does not fit a unix "
		    "socket address (sun_path)" : xaddr_strerror(e);
		return (NULL);
	}
	p = xcalloc(1, sizeof(*p));
	p->ctx = ctx;
	p->path = xstrdup(path);
	p->shown = pipe_shown(path);
	p->name = xstrdup(name);
	p->dir = dir;
	p->file = file != NULL ? xstrdup(file) : NULL;
	p->role = role;
	p->state = role == PIPE_LISTEN ? PIPE_LISTENING : PIPE_WAITING;
	p->addr = a;
	p->seen = 1;
	p->found_ms = xtime_mono_ms();
	if ((p->timer = evtimer_new(ctx->r->d.base, pipe_timer_cb, p)) ==
	    NULL)
		fatalx("pipe: evtimer_new");
	TAILQ_INSERT_TAIL(&ctx->pipes, p, entry);
	ctx->npipes++;
	return (p);
}

/* Forget P (its session, if any, goes on without us). */
static void
pipe_remove(struct pipe_port *p)
{
	struct pipe_ctx	*ctx = p->ctx;

	TAILQ_REMOVE(&ctx->pipes, p, entry);
	ctx->npipes--;
	if (ctx->npipes < PIPE_MAX)
		ctx->full = 0;
	if (p->l != NULL) {
		evconnlistener_free(p->l);
		xaddr_unlisten(p->addr);
	}
	if (p->timer != NULL)
		event_free(p->timer);
	xaddr_free(p->addr);
	free(p->path);
	free(p->shown);
	free(p->name);
	free(p->file);
	free(p);
}

/*
 * P failed to connect (or to get a session) because of WHY: say so
 * when that is news in this streak of failures, and retry later.
 */
static void
pipe_wait(struct pipe_port *p, const char *why)
{
	int	news;

	news = !p->logged || strcmp(p->last_error, why) != 0;
	strlcpy(p->last_error, why, sizeof(p->last_error));
	p->state = PIPE_WAITING;
	/*
	 * A socket file appears at bind(), before its listen(): refusals
	 * in the first moments are no news.
	 */
	if (!p->logged && xtime_mono_ms() - p->found_ms < PIPE_QUIET_MS) {
		log_debug("pipe vm=\"%s\" path=%s not yet: %s", p->name,
		    p->shown, why);
		news = 0;
	}
	if (news) {
		log_warnx("pipe vm=\"%s\" path=%s waiting: %s (retrying, "
		    "backoff up to %d ms)", p->name, p->shown, why,
		    PIPE_BACKOFF_MAX);
		p->logged = 1;
	}
	pipe_schedule(p);
}

/*
 * Carry FD, P's connection to its VM, as a new ingress session; 0, or
 * -1 with FD closed and *why set.
 */
static int
pipe_session(struct pipe_port *p, int fd, const char **why)
{
	struct relay		*r = p->ctx->r;
	struct sess_guest	 sg = { 0 };
	struct xaddr_peer	 peer = { .type = XADDR_UNIX };
	struct sess		*s;

	strlcpy(peer.str, p->shown, sizeof(peer.str));
	sg.host = r->conf.host;
	sg.service = PROTO_SVC_SERIAL;
	sg.name = p->name;
	if ((s = daemon_client(&r->d, fd, &peer, r->conf.sess.max_sessions,
	    &sg)) == NULL) {
		*why = "session limit reached";
		return (-1);
	}
	p->sid = sess_id(s);
	p->since_ms = xtime_mono_ms();
	p->state = PIPE_CONNECTED;
	p->connects++;
	p->logged = 0;
	log_info("pipe vm=\"%s\" path=%s connected (%s) session=%s",
	    p->name, p->shown, p->role == PIPE_LISTEN ? "the VM connected" :
	    "we connected", sess_idstr(s));
	return (0);
}

/* Connect role: try P's socket now. */
static void
pipe_connect(struct pipe_port *p)
{
	const char	*why;
	char		 msg[PIPE_ERR_MAX];
	int		 fd, e, gone;

	if (p->sid != 0 || p->gone)
		return;
	if ((e = xaddr_connect(p->addr, &fd, NULL)) != XADDR_OK) {
		gone = e == XADDR_E_SYSTEM && errno == ENOENT;
		snprintf(msg, sizeof(msg), "connect: %s", xaddr_why(e));
		/* A dir pipe whose file went: the rescan forgets it. */
		if (p->dir != NULL && gone)
			event_active(p->ctx->soon, EV_TIMEOUT, 0);
		pipe_wait(p, msg);
		return;
	}
	if (pipe_session(p, fd, &why) != 0)
		pipe_wait(p, why);
}

/* P's session ended: reconnect later, take the next one, or forget. */
static void
pipe_ended(struct pipe_port *p)
{
	long long	age = xtime_mono_ms() - p->since_ms;

	log_info("pipe vm=\"%s\" path=%s session ended after %lld ms%s",
	    p->name, p->shown, age, p->gone ? ", socket gone: forgotten" :
	    p->role == PIPE_LISTEN ? ", listening" : "");
	p->sid = 0;
	p->found_ms = xtime_mono_ms();
	if (p->gone) {
		pipe_remove(p);
		return;
	}
	if (p->role == PIPE_LISTEN) {
		p->state = PIPE_LISTENING;
		return;
	}
	/* A session that lasted starts the backoff over; a quick end not. */
	if (age >= PIPE_STABLE_MS || p->step < PIPE_BACKOFF_MIN)
		p->step = PIPE_BACKOFF_MIN;
	p->state = PIPE_WAITING;
	pipe_schedule(p);
}

/* A serial session's event (ingress.c): its pipe follows it. */
void
pipe_sess_event(struct pipe_ctx *ctx, struct sess *s, enum sess_event ev)
{
	struct pipe_port	*p;

	if (ctx == NULL || sess_service(s) != PROTO_SVC_SERIAL ||
	    (p = pipe_find_name(ctx, sess_name(s))) == NULL || p->sid == 0)
		return;
	if (ev == SESS_EV_OPEN)
		p->sid = sess_id(s);	/* the id is fixed from now on */
	else if (ev == SESS_EV_CLOSED)
		pipe_ended(p);
}

/* Listen role: the VM connected; one connection at a time. */
static void
pipe_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct pipe_port	*p = arg;
	const char		*why;

	if (p->sid != 0) {
		p->refused++;
		daemon_refused(&p->ctx->r->d, "pipe vm=\"%s\" path=%s: "
		    "another connection refused: session=%016" PRIx64 " still "
		    "carries this pipe", p->name, p->shown, p->sid);
		close(fd);
		return;
	}
	if (pipe_session(p, fd, &why) != 0) {
		strlcpy(p->last_error, why, sizeof(p->last_error));
		log_warnx("pipe vm=\"%s\" path=%s: connection refused: %s",
		    p->name, p->shown, why);
	}
}

/* Listen role: at P's path, replacing a stale socket (startup only). */
static void
pipe_listen(struct pipe_port *p)
{
	struct stat	st;
	int		e;

	if (lstat(p->path, &st) == 0 && !S_ISSOCK(st.st_mode))
		fatalx("--pipe listen:%s=%s: %s exists and is not a socket",
		    p->shown, p->name, p->shown);
	if ((e = daemon_listen_on(&p->ctx->r->d, p->addr, pipe_accept_cb, p,
	    &p->l)) != XADDR_OK)
		fatalx("--pipe listen:%s=%s: %s", p->shown, p->name,
		    e == XADDR_E_INUSE ? "another process listens there" :
		    xaddr_why(e));
}

/* One --pipe [listen:]PATH=NAME: checked and added (fatal if bad). */
static void
pipe_static(struct pipe_ctx *ctx, const char *spec)
{
	struct pipe_port	*p;
	enum pipe_role		 role = PIPE_CONNECT;
	const char		*s = spec, *eq, *why;
	char			*path, *shown;

	if (strncmp(s, "listen:", 7) == 0) {
		role = PIPE_LISTEN;
		s += 7;
	}
	/* The flag is quoted in messages; control bytes are not. */
	shown = pipe_shown(spec);
	if ((eq = strchr(s, '=')) == NULL || eq == s)
		fatalx("--pipe \"%s\": expected PATH=NAME or "
		    "listen:PATH=NAME", shown);
	if ((why = pipe_name_bad(eq + 1, strlen(eq + 1))) != NULL)
		fatalx("--pipe \"%s\": %s (NAME must be 1 to %d bytes of "
		    "UTF-8, no control characters)", shown, why,
		    PROTO_NAME_MAX);
	if (pipe_find_name(ctx, eq + 1) != NULL)
		fatalx("--pipe \"%s\": VM name \"%s\" is given twice",
		    shown, eq + 1);
	if (ctx->npipes >= PIPE_MAX)
		fatalx("--pipe: at most %d pipes", PIPE_MAX);
	xasprintf(&path, "%.*s", (int)(eq - s), s);
	TAILQ_FOREACH(p, &ctx->pipes, entry)
		if (strcmp(p->path, path) == 0)
			fatalx("--pipe \"%s\": its path is given twice",
			    shown);
	if ((p = pipe_add(ctx, path, eq + 1, role, NULL, NULL, &why)) ==
	    NULL)
		fatalx("--pipe \"%s\": %s", shown, why);
	free(path);
	free(shown);
}

/* Remember (and warn once about) a socket in DIR we will not carry. */
static void
pipe_skip(struct pipe_ctx *ctx, struct pipe_dir *d, const char *file,
    const char *why, int dup)
{
	struct pipe_skip	*k;
	char			*f;

	if (ctx->nskips >= PIPE_SKIP_MAX) {
		if (!ctx->skips_full)
			log_warnx("pipe-dir: more than %d sockets skipped; "
			    "not warning about more", PIPE_SKIP_MAX);
		ctx->skips_full = 1;
		return;
	}
	f = pipe_shown(file);
	log_warnx("pipe-dir %s: socket \"%s\" skipped: %s", d->shown, f, why);
	free(f);
	k = xcalloc(1, sizeof(*k));
	k->dir = d;
	k->file = xstrdup(file);
	k->why = xstrdup(why);
	k->dup = dup;
	k->seen = 1;
	TAILQ_INSERT_TAIL(&ctx->skips, k, entry);
	ctx->nskips++;
}

/* Forget a skipped socket (it went, or it may be carried now). */
static void
pipe_unskip(struct pipe_ctx *ctx, struct pipe_skip *k)
{
	TAILQ_REMOVE(&ctx->skips, k, entry);
	ctx->nskips--;
	ctx->skips_full = 0;
	free(k->file);
	free(k->why);
	free(k);
}

/* A socket FILE found in D: carry it, or skip it saying why. */
static void
pipe_found(struct pipe_ctx *ctx, struct pipe_dir *d, const char *file)
{
	struct pipe_port	*p;
	struct pipe_skip	*k;
	const char		*why;
	char			*path, *name, msg[PIPE_ERR_MAX + 200];
	size_t			 len = strlen(file), sl = strlen(PIPE_SUFFIX);

	TAILQ_FOREACH(p, &ctx->pipes, entry) {
		if (p->dir == d && strcmp(p->file, file) == 0) {
			p->seen = 1;
			if (p->gone)
				log_info("pipe vm=\"%s\" path=%s is back",
				    p->name, p->shown);
			p->gone = 0;
			return;
		}
	}
	TAILQ_FOREACH(k, &ctx->skips, entry)
		if (k->dir == d && strcmp(k->file, file) == 0)
			break;
	if (len > sl && strcmp(file + len - sl, PIPE_SUFFIX) == 0)
		len -= sl;
	xasprintf(&name, "%.*s", (int)len, file);
	if (k != NULL) {
		k->seen = 1;
		/* Skipped for a duplicate name: is the name free now? */
		if (!k->dup || pipe_find_name(ctx, name) != NULL) {
			free(name);
			return;
		}
		pipe_unskip(ctx, k);
	}
	if ((why = pipe_name_bad(name, len)) != NULL) {
		pipe_skip(ctx, d, file, why, 0);
		goto out;
	}
	if ((p = pipe_find_name(ctx, name)) != NULL) {
		snprintf(msg, sizeof(msg), "VM name \"%s\" is already "
		    "carried from %s", name, p->shown);
		pipe_skip(ctx, d, file, msg, 1);
		goto out;
	}
	if (ctx->npipes >= PIPE_MAX) {
		if (!ctx->full)
			log_warnx("pipe-dir %s: at most %d pipes per relay: "
			    "not adding \"%s\" or any more until some go",
			    d->shown, PIPE_MAX, name);
		ctx->full = 1;
		goto out;
	}
	xasprintf(&path, "%s/%s", d->path, file);
	p = pipe_add(ctx, path, name, PIPE_CONNECT, d, file, &why);
	free(path);
	if (p == NULL) {
		pipe_skip(ctx, d, file, why, 0);
		goto out;
	}
	log_info("pipe vm=\"%s\" path=%s found", p->name, p->shown);
	pipe_connect(p);
out:
	free(name);
}

/* Rescan directory D: new sockets, sockets gone. */
static void
pipe_scan_dir(struct pipe_ctx *ctx, struct pipe_dir *d)
{
	struct pipe_port	*p, *pn;
	struct pipe_skip	*k, *kn;
	struct dirent		*de;
	struct stat		 st;
	DIR			*dp;
	int			 ok = 0;

	TAILQ_FOREACH(p, &ctx->pipes, entry)
		if (p->dir == d)
			p->seen = 0;
	TAILQ_FOREACH(k, &ctx->skips, entry)
		if (k->dir == d)
			k->seen = 0;
	if (ctx->ifd != -1 && d->wd == -1)
		d->wd = inotify_add_watch(ctx->ifd, d->path, IN_CREATE |
		    IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM | IN_DELETE_SELF |
		    IN_MOVE_SELF | IN_ONLYDIR);
	if ((dp = opendir(d->path)) == NULL) {
		if (!d->unreadable)
			log_warnx("pipe-dir %s: %s: its pipes count as gone",
			    d->shown, strerror(errno));
		d->unreadable = 1;
	} else {
		if (d->unreadable)
			log_info("pipe-dir %s: readable again", d->shown);
		d->unreadable = 0;
		ok = 1;
	}
	while (ok && (de = readdir(dp)) != NULL) {
		/* Dot files: ".", "..", and files being set up. */
		if (de->d_name[0] == '.')
			continue;
		if (fstatat(dirfd(dp), de->d_name, &st, 0) != 0 ||
		    !S_ISSOCK(st.st_mode))
			continue;
		pipe_found(ctx, d, de->d_name);
	}
	if (dp != NULL)
		closedir(dp);
	TAILQ_FOREACH_SAFE(p, &ctx->pipes, entry, pn) {
		if (p->dir != d || p->seen || p->gone)
			continue;
		if (p->sid != 0) {
			log_info("pipe vm=\"%s\" path=%s: socket gone; its "
			    "session=%016" PRIx64 " ends by itself", p->name,
			    p->shown, p->sid);
			p->gone = 1;
			continue;
		}
		log_info("pipe vm=\"%s\" path=%s: socket gone, forgotten",
		    p->name, p->shown);
		pipe_remove(p);
	}
	TAILQ_FOREACH_SAFE(k, &ctx->skips, entry, kn)
		if (k->dir == d && !k->seen)
			pipe_unskip(ctx, k);
}

/* Rescan every directory. */
static void
pipe_scan(struct pipe_ctx *ctx)
{
	size_t	i;

	for (i = 0; i < ctx->ndirs; i++)
		pipe_scan_dir(ctx, &ctx->dirs[i]);
}

/* The periodic rescan, and the one inotify or a failed connect asks. */
static void
pipe_rescan_cb(evutil_socket_t fd, short ev, void *arg)
{
	pipe_scan(arg);
}

/* Something changed in a watched directory: drain, then rescan. */
static void
pipe_inotify_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct pipe_ctx			*ctx = arg;
	const struct inotify_event	*ie;
	char				 buf[4096]
	    __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t				 n;
	size_t				 i, off;

	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (off = 0; off + sizeof(*ie) <= (size_t)n;
		    off += sizeof(*ie) + ie->len) {
			ie = (const struct inotify_event *)(buf + off);
			if (!(ie->mask & IN_IGNORED))
				continue;
			/* The directory went: watch it again when back. */
			for (i = 0; i < ctx->ndirs; i++)
				if (ctx->dirs[i].wd == ie->wd)
					ctx->dirs[i].wd = -1;
		}
	}
	event_active(ctx->soon, EV_TIMEOUT, 0);
}

/* One --pipe-dir DIR: checked (fatal if bad) and set up. */
static void
pipe_dir_add(struct pipe_ctx *ctx, const char *path)
{
	struct pipe_dir	*d;
	struct stat	 st;
	size_t		 i;

	if (ctx->ndirs >= PIPE_DIR_MAX)
		fatalx("--pipe-dir: at most %d directories", PIPE_DIR_MAX);
	if (*path == '\0')
		fatalx("--pipe-dir: empty directory name");
	if (stat(path, &st) != 0)
		fatalx("--pipe-dir %s: %s", path, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		fatalx("--pipe-dir %s: not a directory", path);
	/* "DIR/x" must fit sun_path, or no socket in it could. */
	if (strlen(path) + 2 >= sizeof(((struct sockaddr_un *)0)->sun_path))
		fatalx("--pipe-dir %s: too long for a unix socket path "
		    "inside it", path);
	for (i = 0; i < ctx->ndirs; i++)
		if (strcmp(ctx->dirs[i].path, path) == 0)
			fatalx("--pipe-dir %s: given twice", path);
	d = &ctx->dirs[ctx->ndirs++];
	d->path = xstrdup(path);
	d->shown = pipe_shown(path);
	d->wd = -1;
	if (ctx->ifd != -1 && (d->wd = inotify_add_watch(ctx->ifd, path,
	    IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM |
	    IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)) == -1)
		log_warnx("pipe-dir %s: inotify: %s (rescanning every %d ms "
		    "only)", d->shown, strerror(errno), PIPE_RESCAN_MS);
	log_info("pipe-dir %s watched", d->shown);
}

/* Every pipe from --pipe and --pipe-dir; fatal on a bad flag. */
struct pipe_ctx *
pipe_new(struct relay *r)
{
	struct pipe_ctx		*ctx;
	struct pipe_port	*p;
	struct event_base	*base = r->d.base;
	struct timeval		 tv;
	size_t			 i;

	ctx = xcalloc(1, sizeof(*ctx));
	ctx->r = r;
	ctx->ifd = -1;
	TAILQ_INIT(&ctx->pipes);
	TAILQ_INIT(&ctx->skips);
	for (i = 0; i < r->conf.pipes.n; i++)
		pipe_static(ctx, r->conf.pipes.v[i]);
	if (r->conf.pipe_dirs.n > 0) {
		if ((ctx->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) ==
		    -1)
			log_warnx("pipe-dir: inotify: %s (rescanning every "
			    "%d ms only)", strerror(errno), PIPE_RESCAN_MS);
		for (i = 0; i < r->conf.pipe_dirs.n; i++)
			pipe_dir_add(ctx, r->conf.pipe_dirs.v[i]);
		if (ctx->ifd != -1 && ((ctx->iev = event_new(base, ctx->ifd,
		    EV_READ | EV_PERSIST, pipe_inotify_cb, ctx)) == NULL ||
		    event_add(ctx->iev, NULL) != 0))
			fatalx("pipe: inotify event");
		if ((ctx->rescan = event_new(base, -1, EV_PERSIST,
		    pipe_rescan_cb, ctx)) == NULL)
			fatalx("pipe: event_new");
		xtime_tv(PIPE_RESCAN_MS, &tv);
		evtimer_add(ctx->rescan, &tv);
	}
	if ((ctx->soon = event_new(base, -1, 0, pipe_rescan_cb, ctx)) ==
	    NULL)
		fatalx("pipe: event_new");
	TAILQ_FOREACH(p, &ctx->pipes, entry) {
		if (p->role == PIPE_LISTEN)
			pipe_listen(p);
		else
			pipe_schedule(p);	/* step 0: at once */
	}
	/* The directories' sockets from the loop, like later ones. */
	if (ctx->ndirs > 0)
		event_active(ctx->soon, EV_TIMEOUT, 0);
	return (ctx);
}

/* Stop watching and listening; sessions are the session layer's. */
void
pipe_free(struct pipe_ctx *ctx)
{
	struct pipe_skip	*k;
	size_t			 i;

	if (ctx == NULL)
		return;
	while (!TAILQ_EMPTY(&ctx->pipes))
		pipe_remove(TAILQ_FIRST(&ctx->pipes));
	while ((k = TAILQ_FIRST(&ctx->skips)) != NULL)
		pipe_unskip(ctx, k);
	for (i = 0; i < ctx->ndirs; i++) {
		free(ctx->dirs[i].path);
		free(ctx->dirs[i].shown);
	}
	if (ctx->iev != NULL)
		event_free(ctx->iev);
	if (ctx->rescan != NULL)
		event_free(ctx->rescan);
	if (ctx->soon != NULL)
		event_free(ctx->soon);
	if (ctx->ifd != -1)
		close(ctx->ifd);
	free(ctx);
}

/* The "pipes" array of vrelay status (new reference). */
json_t *
pipe_json(const struct pipe_ctx *ctx)
{
	const struct pipe_port	*p;
	struct sess		*s;
	json_t			*a, *o;

	a = json_array();
	if (ctx == NULL)
		return (a);
	TAILQ_FOREACH(p, &ctx->pipes, entry) {
		s = p->sid != 0 ? sess_ctx_find(ctx->r->d.sessions, p->sid) :
		    NULL;
		o = json_pack("{s:s, s:s, s:s, s:s?, s:s, s:s?, s:s?, s:I, "
		    "s:s?}",
		    "path", p->shown, "name", p->name,
		    "role", p->role == PIPE_LISTEN ? "listen" : "connect",
		    "dir", p->dir != NULL ? p->dir->shown : NULL,
		    "state", pipe_states[p->state],
		    "session", s != NULL ? sess_idstr(s) : NULL,
		    "session_state", s != NULL ?
		    sess_strstate(sess_state(s)) : NULL,
		    "connects", (json_int_t)p->connects,
		    "last_error", p->last_error[0] != '\0' ?
		    p->last_error : NULL);
		if (o == NULL)
			abort();
		if (p->role == PIPE_LISTEN)
			json_object_set_new(o, "refused",
			    json_integer((json_int_t)p->refused));
		if (p->dir != NULL)
			json_object_set_new(o, "file_gone",
			    json_boolean(p->gone));
		json_array_append_new(a, o);
	}
	return (a);
}

/* Sockets skipped in --pipe-dir directories and why (new reference). */
json_t *
pipe_skipped_json(const struct pipe_ctx *ctx)
{
	const struct pipe_skip	*k;
	json_t			*a, *o;
	char			*f;

	a = json_array();
	if (ctx == NULL)
		return (a);
	TAILQ_FOREACH(k, &ctx->skips, entry) {
		f = pipe_shown(k->file);
		o = json_pack("{s:s, s:s, s:s}", "dir", k->dir->shown,
		    "file", f, "why", k->why);
		free(f);
		if (o == NULL)
			abort();
		json_array_append_new(a, o);
	}
	return (a);
}
