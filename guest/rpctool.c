/*
 * rpctool.c -- publish guestinfo keys through vmware-rpctool (see
 * rpctool.h).
 *
 * vmware-rpctool is the only way a guest sets its own guestinfo (the
 * backdoor RPC is open-vm-tools' business), and it is a program: each
 * value is one fork/exec, with no shell (a value is one argv string,
 * never parsed).  One child runs at a time; keys set meanwhile wait in
 * a small table where a newer value replaces an older one, so a
 * flapping address costs one run, not one per flap.  A child is
 * watched by SIGCHLD (a libevent signal event) and a timer that kills
 * it after RPCTOOL_TIMEOUT_MS; its stdout and stderr go to a pipe
 * whose first RPCTOOL_OUTPUT_MAX bytes explain a failure.
 *
 * Reaping never blocks: a killed child stuck in uninterruptible sleep
 * (a hung backdoor call) dies only when the kernel lets it, so after
 * SIGKILL the child stays ours (the next key waits) until SIGCHLD or
 * the timer, re-armed every RPCTOOL_REAP_MS, sees it with WNOHANG.
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "rpctool.h"
#include "text.h"
#include "xmalloc.h"
#include "xtime.h"

struct rpctool_kv {
	char	*key;
	char	*value;
};

struct rpctool {
	struct event_base	*base;
	char			*path;		/* NULL: unavailable */
	char			 why[128];	/* when unavailable */
	struct rpctool_kv	 pending[RPCTOOL_PENDING_MAX];
	size_t			 npending;
	pid_t			 pid;		/* the child, or 0 */
	int			 killed;	/* SIGKILL sent, not reaped */
	struct rpctool_kv	 running;
	int			 outfd;
	char			 out[RPCTOOL_OUTPUT_MAX + 1];
	size_t			 outlen;
	struct event		*sigchld;
	struct event		*timer;
	struct event		*outev;
	json_t			*published;	/* key -> value */
	char			 last_error[384];
	int			 failing;
	unsigned long long	 runs;
	unsigned long long	 failures;
	unsigned long long	 dropped;
};

static void	rpctool_next(struct rpctool *);

/* NAME on $PATH, executable, or NULL. */
static char *
rpctool_find(const char *name)
{
	const char	*path, *p, *colon;
	char		*cand;
	size_t		 len;

	if ((path = getenv("PATH")) == NULL)
		path = "/usr/bin:/bin";
	for (p = path; *p != '\0'; p = *colon != '\0' ? colon + 1 : colon) {
		colon = strchr(p, ':');
		if (colon == NULL)
			colon = p + strlen(p);
		len = (size_t)(colon - p);
		xasprintf(&cand, "%.*s/%s", (int)len, len > 0 ? p : ".", name);
		if (access(cand, X_OK) == 0)
			return (cand);
		free(cand);
	}
	return (NULL);
}

/* Drain the child's output into the capped buffer. */
static void
rpctool_output(evutil_socket_t fd, short what, void *arg)
{
	struct rpctool	*rt = arg;
	char		 buf[512];
	ssize_t		 n;
	size_t		 room;

	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		room = RPCTOOL_OUTPUT_MAX - rt->outlen;
		if ((size_t)n < room)
			room = (size_t)n;
		memcpy(rt->out + rt->outlen, buf, room);
		rt->outlen += room;
		rt->out[rt->outlen] = '\0';
	}
	if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR))
		event_del(rt->outev);
}

/* The child is over (STATUS from waitpid, or -1: timed out). */
static void
rpctool_ended(struct rpctool *rt, int status)
{
	char	out[RPCTOOL_OUTPUT_MAX + 1];

	if (rt->outfd != -1) {
		rpctool_output(rt->outfd, EV_READ, rt);
		close(rt->outfd);
	}
	event_del(rt->outev);
	event_del(rt->timer);
	rt->outfd = -1;
	rt->pid = 0;
	rt->killed = 0;
	while (rt->outlen > 0 && (rt->out[rt->outlen - 1] == '\n' ||
	    rt->out[rt->outlen - 1] == '\r' || rt->out[rt->outlen - 1] == ' '))
		rt->outlen--;
	text_ascii_copy(out, sizeof(out), rt->out, rt->outlen);
	if (status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		if (rt->failing)
			log_info("guestinfo: %s works again", rt->path);
		rt->failing = 0;
		if (rt->running.value[0] != '\0')
			json_object_set_new(rt->published, rt->running.key,
			    json_string(rt->running.value));
		else
			json_object_del(rt->published, rt->running.key);
		log_debug("guestinfo: published %s", rt->running.key);
	} else {
		rt->failures++;
		if (status == -1)
			snprintf(rt->last_error, sizeof(rt->last_error),
			    "info-set %s: no answer in %d ms (killed)",
			    rt->running.key, RPCTOOL_TIMEOUT_MS);
		else if (WIFEXITED(status))
			snprintf(rt->last_error, sizeof(rt->last_error),
			    "info-set %s: exit %d: %s", rt->running.key,
			    WEXITSTATUS(status), out);
		else
			snprintf(rt->last_error, sizeof(rt->last_error),
			    "info-set %s: signal %d", rt->running.key,
			    WTERMSIG(status));
		if (!rt->failing)
			log_warnx("guestinfo: %s", rt->last_error);
		rt->failing = 1;
	}
	free(rt->running.key);
	free(rt->running.value);
	memset(&rt->running, 0, sizeof(rt->running));
	rpctool_next(rt);
}

/* Reap our child if it ended, without waiting; 1 if it did. */
static int
rpctool_reap(struct rpctool *rt)
{
	int	status;

	if (rt->pid == 0 || waitpid(rt->pid, &status, WNOHANG) != rt->pid)
		return (0);
	rpctool_ended(rt, rt->killed ? -1 : status);
	return (1);
}

/* SIGCHLD: reap our child if it is the one that ended. */
static void
rpctool_sigchld(evutil_socket_t sig, short what, void *arg)
{
	rpctool_reap(arg);
}

/*
 * The child took too long: kill it; then, until it is reaped, look
 * again every RPCTOOL_REAP_MS (SIGCHLD may come first).
 */
static void
rpctool_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct rpctool	*rt = arg;
	struct timeval	 tv;

	if (rt->pid == 0)
		return;
	if (!rt->killed) {
		kill(rt->pid, SIGKILL);
		rt->killed = 1;
		log_debug("guestinfo: info-set %s: killed pid %ld after %d ms",
		    rt->running.key, (long)rt->pid, RPCTOOL_TIMEOUT_MS);
	}
	if (rpctool_reap(rt))
		return;
	xtime_tv(RPCTOOL_REAP_MS, &tv);
	evtimer_add(rt->timer, &tv);
}

/* Start the next pending key, if nothing runs. */
static void
rpctool_next(struct rpctool *rt)
{
	struct timeval	 tv;
	char		*cmd, *argv[3];
	int		 p[2], null, w;
	pid_t		 pid;

	if (rt->pid != 0 || rt->npending == 0 || rt->path == NULL)
		return;
	rt->running = rt->pending[0];
	memmove(&rt->pending[0], &rt->pending[1],
	    (rt->npending - 1) * sizeof(rt->pending[0]));
	rt->npending--;
	xasprintf(&cmd, "info-set guestinfo.%s %s", rt->running.key,
	    rt->running.value);
	if (pipe2(p, O_CLOEXEC) == -1) {
		log_warn("guestinfo: pipe");
		free(cmd);
		rt->outfd = -1;
		rpctool_ended(rt, 1 << 8);
		return;
	}
	argv[0] = rt->path;
	argv[1] = cmd;
	argv[2] = NULL;
	rt->outlen = 0;
	rt->out[0] = '\0';
	rt->runs++;
	if ((pid = fork()) == -1) {
		log_warn("guestinfo: fork");
		close(p[0]);
		close(p[1]);
		free(cmd);
		rt->outfd = -1;
		rpctool_ended(rt, 1 << 8);
		return;
	}
	if (pid == 0) {
		/*
		 * With fd 0, 1 or 2 closed when vguest started, the pipe
		 * or /dev/null can be one of them, and dup2 onto itself
		 * would leave close-on-exec set: move the write end above
		 * 2 first, and clear the flag on a /dev/null that is 0.
		 */
		if ((w = fcntl(p[1], F_DUPFD_CLOEXEC, 3)) == -1)
			_exit(127);
		if ((null = open("/dev/null", O_RDONLY | O_CLOEXEC)) == 0)
			fcntl(0, F_SETFD, 0);
		else if (null != -1)
			dup2(null, 0);
		if (dup2(w, 1) == -1 || dup2(w, 2) == -1)
			_exit(127);
		execv(rt->path, argv);
		_exit(127);
	}
	free(cmd);
	close(p[1]);
	rt->pid = pid;
	rt->outfd = p[0];
	fcntl(rt->outfd, F_SETFL, fcntl(rt->outfd, F_GETFL) | O_NONBLOCK);
	event_assign(rt->outev, rt->base, rt->outfd, EV_READ | EV_PERSIST,
	    rpctool_output, rt);
	event_add(rt->outev, NULL);
	xtime_tv(RPCTOOL_TIMEOUT_MS, &tv);
	evtimer_add(rt->timer, &tv);
	/* It may have ended before the signal event could see it. */
	rpctool_sigchld(SIGCHLD, 0, rt);
}

/* A publisher using PATH (NULL: vmware-rpctool on $PATH). */
struct rpctool *
rpctool_new(struct event_base *base, const char *path)
{
	struct rpctool	*rt;

	rt = xcalloc(1, sizeof(*rt));
	rt->base = base;
	rt->outfd = -1;
	rt->published = json_object();
	if (path != NULL) {
		if (access(path, X_OK) == 0)
			rt->path = xstrdup(path);
		else
			snprintf(rt->why, sizeof(rt->why), "unavailable: "
			    "%.80s: %s", path, strerror(errno));
	} else if ((rt->path = rpctool_find(RPCTOOL_NAME)) == NULL)
		snprintf(rt->why, sizeof(rt->why), "unavailable: %s not "
		    "found", RPCTOOL_NAME);
	text_ascii(rt->why);
	rt->sigchld = evsignal_new(base, SIGCHLD, rpctool_sigchld, rt);
	rt->timer = evtimer_new(base, rpctool_timeout, rt);
	rt->outev = event_new(base, -1, 0, rpctool_output, rt);
	if (rt->sigchld == NULL || rt->timer == NULL || rt->outev == NULL)
		fatalx("rpctool: event_new failed");
	if (rt->path != NULL)
		evsignal_add(rt->sigchld, NULL);
	return (rt);
}

/* Kill a running child, drop what waits, free; NULL is fine. */
void
rpctool_free(struct rpctool *rt)
{
	size_t	i;
	int	status;

	if (rt == NULL)
		return;
	/* Not waited for: a child in uninterruptible sleep would hang us. */
	if (rt->pid != 0) {
		kill(rt->pid, SIGKILL);
		waitpid(rt->pid, &status, WNOHANG);
	}
	if (rt->outfd != -1)
		close(rt->outfd);
	for (i = 0; i < rt->npending; i++) {
		free(rt->pending[i].key);
		free(rt->pending[i].value);
	}
	free(rt->running.key);
	free(rt->running.value);
	event_free(rt->sigchld);
	event_free(rt->timer);
	event_free(rt->outev);
	json_decref(rt->published);
	free(rt->path);
	free(rt);
}

/* Is there a vmware-rpctool to run? */
int
rpctool_available(const struct rpctool *rt)
{
	return (rt != NULL && rt->path != NULL);
}

/* Queue KEY = VALUE, replacing a pending value of KEY. */
void
rpctool_set(struct rpctool *rt, const char *key, const char *value)
{
	size_t	i;

	if (rt == NULL || rt->path == NULL)
		return;
	for (i = 0; i < rt->npending; i++)
		if (strcmp(rt->pending[i].key, key) == 0) {
			free(rt->pending[i].value);
			rt->pending[i].value = xstrdup(value);
			return;
		}
	if (rt->npending == RPCTOOL_PENDING_MAX) {
		rt->dropped++;
		log_warnx("guestinfo: %d keys waiting; %s dropped",
		    RPCTOOL_PENDING_MAX, key);
		return;
	}
	rt->pending[rt->npending].key = xstrdup(key);
	rt->pending[rt->npending].value = xstrdup(value);
	rt->npending++;
	rpctool_next(rt);
}

/* One word on the channel, for status. */
const char *
rpctool_state(const struct rpctool *rt)
{
	static char	buf[sizeof(rt->last_error) + 16];

	if (rt->path == NULL)
		return (rt->why);
	if (!rt->failing)
		return ("ok");
	snprintf(buf, sizeof(buf), "failing: %s", rt->last_error);
	return (buf);
}

/* Details for status. */
json_t *
rpctool_json(const struct rpctool *rt)
{
	json_t	*pend;
	size_t	 i;

	pend = json_array();
	for (i = 0; i < rt->npending; i++)
		json_array_append_new(pend, json_string(rt->pending[i].key));
	return (json_pack("{s:s?, s:I, s:I, s:I, s:o, s:O, s:s?}",
	    "rpctool", rt->path,
	    "runs", (json_int_t)rt->runs,
	    "failures", (json_int_t)rt->failures,
	    "dropped", (json_int_t)rt->dropped,
	    "pending", pend,
	    "published", rt->published,
	    "last_error", rt->last_error[0] != '\0' ? rt->last_error :
	    NULL));
}
