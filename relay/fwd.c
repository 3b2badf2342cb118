/*
 * fwd.c -- opaque forwards.  Two kinds of leg arrive at a relay
 * without being a session end here:
 *
 *   mesh   from another relay's ingress end (or a guest agent behind
 *          it): delivered into the appliance endpoint over vSocket,
 *          only if this relay's host runs the appliance;
 *   agent  from a guest agent on this host (guest/vguest), which is
 *          its own session end: sent on wherever the target says, to
 *          the appliance host's relay or into the local appliance;
 *   vmomi  from the appliance VM's vappliance (--vmomi-listen), the
 *          client end of a session to the locator's vmomi agent: sent
 *          over TLS to the agent's address (--vmomi-agent, else the
 *          locator's WELCOME), behind one attestation line naming the
 *          leg's vSocket peer (caller.h), which only this relay knows.
 *          A leg whose peer is not a vSocket one is refused.
 *
 * A mesh leg whose first bytes are a mesh link's preamble ("VRMX") is
 * no leg: it goes to mesh.c, and each stream the link opens comes back
 * here as a mesh leg of its own (fwd_stream), on a socketpair.
 *
 * Bytes are copied both ways without being read (the session ends do
 * all the protocol work, so this hop keeps no state worth saving and
 * may die at any time).  Where a leg goes is decided when its first
 * byte arrives, not when it is accepted: a relay pre-warms mesh legs
 * towards the host a vMotion is heading for (warm.c) before that host
 * runs the appliance.
 *
 * A leg that cannot go anywhere yet (no route, or the far side refused
 * the connect, or did not connect and finish TLS within the handshake
 * timeout: the appliance has just left this host) is parked, with
 * its first bytes unread, for up to FWD_PARK_MS: during a vMotion the
 * target moves within moments, and when it does the leg is sent on or
 * refused at once.  The session end then learns of the move when it
 * happens instead of at its next backoff retry.  A link to a relay
 * that comes up (one that was down is back), a session end of this
 * relay back through one after failed tries, or a forward's connect to
 * where a parked leg would go sends parked legs on too (fwd_wake,
 * fwd_wake_for): on a plaintext mesh nothing else says a relay is back.
 * After FWD_PARK_MS a leg is refused with a transient ERROR.  One whose
 * session end closed it meanwhile (POLLRDHUP, the bytes still unread)
 * is dropped instead of sent on, as is one that ended while its far
 * side connected: a stale handshake would only cost the appliance
 * (fwd_abandoned).
 *
 * Until the far side has answered anything, a forward keeps a copy of
 * what it sent there (a handshake's first frames, at most
 * FWD_FIRST_MAX).  If the target moves in that window, the forward
 * reconnects to the new place and sends the copy again, instead of
 * closing the leg: a guest agent whose HELLO went to the host the
 * appliance just left resumes without waiting for its next retry.
 * Backpressure follows le-proxy: stop
 * reading a side while the other side's output is above FWD_HIGH,
 * resume when it drains to half.
 *
 * Closing: when one side ends, each side still gets what was queued
 * for it, then a half-close, and the forward lingers (reading and
 * discarding) until both sides have closed or FWD_FLUSH_MS passes, so
 * a last frame (a CLOSE, an ERROR) is not destroyed by a reset.
 *
 * Splice: once the far side has answered (the first bytes are no longer
 * kept) and neither side is TLS, the forward stops copying through
 * userspace.  Its bufferevents are disabled and one event per socket
 * moves each direction with splice(2): source -> pipe -> destination.
 * What the bufferevents still held goes first, in order; a bufferevent
 * with nothing (left) to send is then freed and its socket kept by the
 * splice state, so an idle spliced forward holds no bufferevent (two
 * with their evbuffers were ~2.2 KiB of an idle session here).  A
 * direction reads its source only while its pipe is empty and nothing
 * is queued for its destination, so a slow destination stops the
 * source and FWD_PIPE_SZ bounds the memory (pipe pages) per direction.
 * Pipes are lent from a small pool only while they hold bytes: an idle
 * spliced forward holds no extra descriptor.  A kernel that refuses
 * splice for a socket (EINVAL: AF_VSOCK may) puts the forward back on
 * the copy path for good.  A side's EOF or error with nothing in the
 * pipes or queued (a session's last frames have gone through, or a
 * vMotion reset the appliance's side) closes in splice mode: the other
 * side gets its half-close at once and is read and discarded until it
 * ends (fwd_splice_ended).  Otherwise, and on fwd_close, the forward
 * leaves splice mode: its sockets go back into bufferevents set up as
 * the copy path's (fwd_side_wrap), what its pipes hold is read into
 * the destinations' output buffers, and the bufferevent path above
 * flushes, half-closes and lingers as always.
 */
#include <sys/queue.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "admit.h"
#include "caller.h"
#include "frame.h"
#include "log.h"
#include "mux.h"
#include "mux_proto.h"
#include "pipepool.h"
#include "relay.h"
#include "xaddr.h"
#include "xbev.h"
#include "xmalloc.h"
#include "xtime.h"

#define FWD_HIGH	(512 * 1024)
#define FWD_FLUSH_MS	5000
#define FWD_IDLE_MS	60000		/* a leg that never speaks */
#define FWD_PARK_MS	1000		/* a leg with nowhere to go */
#define FWD_WAKE_MS	25		/* parked legs sent on, at most */
#define FWD_FIRST_MAX	1024		/* kept until the far side answers */
#define FWD_CHUNK	(256 * 1024)	/* per read()/write() */
/*
 * Per direction in flight in splice mode: the pipe's capacity (64 pipe
 * slots).  Like FWD_CHUNK: one splice moves what one read would, and a
 * stuck direction pins at most this much.  Larger pipes did not move
 * more here, and an unprivileged user may only hold 16,384 pipe pages
 * (fs.pipe-user-pages-soft) before new pipes get the kernel's smallest
 * size: 256 KiB allows 256 full-size pipes at once, 1 MiB only 64
 * (the session ends' pipes, sess.c, count too).
 */
#define FWD_PIPE_SZ	(256 * 1024)
#define FWD_PIPES_IDLE	32		/* empty pipes kept for reuse */
#define FWD_SPLICE_ROUNDS 4		/* pipe loads per wakeup, at most */
#define FWD_SPLICE_RETRY_MS 1000	/* no pipe to be had: copy so long */
#define FWD_ADOPT_MS	100		/* a stream not handed over: again in */
#define FWD_ADOPT_MAX_MS 5000		/* ...doubling up to */

enum fwd_kind {
	FWD_MESH = 0,		/* from a relay: into the local appliance */
	FWD_AGENT,		/* from a guest agent: to the target */
	FWD_VMOMI,		/* from vappliance: to the vmomi agent */
};
#define FWD_NKINDS	3

enum fwd_state {
	FWD_WAITING = 0,	/* accepted; no byte yet, no far side */
	FWD_PARKED,		/* nowhere to go yet; waiting for the target */
	FWD_OPEN,		/* copying both ways */
	FWD_CLOSING,		/* flushing, half-closed, lingering */
	FWD_DEAD,		/* waiting for the reaper */
};

struct fwd {
	struct fwd_ctx		*ctx;
	uint64_t		 id;
	enum fwd_kind		 kind;
	struct bufferevent	*in;		/* the accepted leg */
	struct bufferevent	*out;		/* where it goes */
	char			*why;		/* parked: why */
	struct evbuffer		*first;		/* sent, not yet answered */
	char			 peer[XADDR_PEER_STRLEN];
	char			 src[ADMIT_SOURCE_MAX];
	struct caller		 caller;	/* vmomi: the vSocket peer */
	struct admit		*pending;	/* where it holds a slot */
	int			 guest;		/* holds a guest's slot */
	char			*dest;		/* canonical, once open */
	uint64_t		 to_out;
	uint64_t		 to_in;
	int			 connected;	/* out side is up */
	int			 hinted;	/* routed by the hint */
	enum fwd_state		 state;
	int			 in_gone;	/* EOF or error seen */
	int			 out_gone;
	struct event		*deadline;	/* idle wait, closing flush */
	struct fwd_splice	*sp;		/* once spliced; reaper frees */
	/* Spliced, sp owns the fds; a side holding nothing has no bev. */
	int			 splicing;
	int			 nosplice;	/* refused: copy for good */
	long long		 splice_retry_ms; /* no pipe: copy until */
	uint64_t		 link;		/* a mesh link's stream: its */
	uint32_t		 sid;		/* ...link and id (0: none) */
	int			 adopt_ms;	/* next hand-over try in */
	TAILQ_ENTRY(fwd)	 entry;
};
TAILQ_HEAD(fwd_list, fwd);

/*
 * Splice state: side 0 is the accepted leg (in), side 1 the far side
 * (out); way W moves side W's bytes to side 1 - W.
 */
struct fwd_splice {
	int			 fd[2];
	struct event		*ev[2];		/* per side, as armed */
	short			 armed[2];	/* EV_READ / EV_WRITE */
	int			 pipe[2][2];	/* per way; -1: none lent */
	size_t			 held[2];	/* bytes in the way's pipe */
};

struct fwd_ctx {
	struct relay		*r;
	struct fwd_list		 live;
	struct fwd_list		 dead;
	struct event		*reap_ev;
	uint64_t		 next_id;
	uint64_t		 total[FWD_NKINDS];	/* by kind */
	size_t			 nlive[FWD_NKINDS];
	uint64_t		 refused;
	uint64_t		 vmomi_not_vsock;	/* refused: peer */
	uint64_t		 parked;
	size_t			 nparked;	/* of them, parked now */
	long long		 woke_ms;	/* fwd_wake_for() */
	uint64_t		 abandoned;	/* its leg ended first */
	uint64_t		 rerouted;
	uint64_t		 hinted;	/* rerouted by the hint */
	uint64_t		 moved;		/* closed: target moved */
	uint64_t		 bytes;
	uint64_t		 spliced;	/* forwards that spliced */
	uint64_t		 adopted;	/* ...handed to their link */
	uint64_t		 adopted_later;	/* ...of them, on a later try */
	size_t			 splicing;	/* of them, spliced now */
	uint64_t		 splice_bytes;
	uint64_t		 splice_refused;
	struct pipepool		*pipes;		/* empty ones, for splice */
	/* Far sides given up on, for the reaper to free. */
	struct bufferevent	**gone;
	size_t			 ngone, gonecap;
};

static const char *fwd_kinds[FWD_NKINDS] = { "mesh", "agent", "vmomi" };

static void	fwd_readcb(struct bufferevent *, void *);
static void	fwd_authed(struct fwd *);
static void	fwd_writecb(struct bufferevent *, void *);
static void	fwd_eventcb(struct bufferevent *, short, void *);
static void	fwd_connected(struct fwd *);
static struct fwd *fwd_add(struct fwd_ctx *, enum fwd_kind, const char *,
		    const char *);
static void	fwd_wait(struct fwd *, long long);
static int	fwd_is_link(struct fwd *);
static void	fwd_unsplice(struct fwd *);
static void	fwd_splice_start(struct fwd *);
static void	fwd_splice_cb(evutil_socket_t, short, void *);
static int	fwd_try_hint(struct fwd *, const char *);

static void
fwd_reap_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct fwd_ctx	*ctx = arg;
	struct fwd	*f;

	while ((f = TAILQ_FIRST(&ctx->dead)) != NULL) {
		TAILQ_REMOVE(&ctx->dead, f, entry);
		if (f->in != NULL)
			bufferevent_free(f->in);
		if (f->out != NULL)
			bufferevent_free(f->out);
		event_free(f->deadline);
		if (f->sp != NULL) {
			event_free(f->sp->ev[0]);
			event_free(f->sp->ev[1]);
			free(f->sp);
		}
		if (f->first != NULL)
			evbuffer_free(f->first);
		free(f->why);
		free(f->dest);
		free(f);
	}
	while (ctx->ngone > 0)
		bufferevent_free(ctx->gone[--ctx->ngone]);
}

/* The forwarder for relay R. */
struct fwd_ctx *
fwd_new(struct relay *r)
{
	struct fwd_ctx	*ctx;

	ctx = xcalloc(1, sizeof(*ctx));
	ctx->r = r;
	TAILQ_INIT(&ctx->live);
	TAILQ_INIT(&ctx->dead);
	ctx->pipes = pipepool_new(FWD_PIPES_IDLE, FWD_PIPE_SZ);
	if ((ctx->reap_ev = evtimer_new(r->d.base, fwd_reap_cb, ctx)) == NULL)
		fatalx("evtimer_new");
	return (ctx);
}

static const char *
fwd_strstate(enum fwd_state st)
{
	static const char	*names[] = { "waiting", "parked", "open",
				    "closing", "dead" };

	return (names[st]);
}

static void
fwd_enter_state(struct fwd *f, enum fwd_state st)
{
	log_debug("forward=%llu %s -> %s", (unsigned long long)f->id,
	    fwd_strstate(f->state), fwd_strstate(st));
	if (f->state == FWD_PARKED)
		f->ctx->nparked--;
	if (st == FWD_PARKED)
		f->ctx->nparked++;
	f->state = st;
}

/* Stop a side's callbacks and I/O; NULL is fine. */
static void
fwd_side_stop(struct bufferevent *bev)
{
	if (bev == NULL)
		return;
	bufferevent_disable(bev, EV_READ | EV_WRITE);
	bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
}

/* Set up BEV as a side of F: its callbacks, read and write sizes. */
static void
fwd_side_setup(struct fwd *f, struct bufferevent *bev)
{
	bufferevent_setcb(bev, fwd_readcb, fwd_writecb, fwd_eventcb, f);
	bufferevent_set_max_single_read(bev, FWD_CHUNK);
	bufferevent_set_max_single_write(bev, FWD_CHUNK);
}

/*
 * A far side given up on (its connect failed, or a reroute): stop it
 * and let the reaper free it, as this may run in its own callback.
 */
static void
fwd_release(struct fwd_ctx *ctx, struct bufferevent *bev)
{
	struct timeval	tv = { 0, 0 };

	if (bev == NULL)
		return;
	fwd_side_stop(bev);
	if (ctx->ngone == ctx->gonecap) {
		ctx->gonecap = ctx->gonecap == 0 ? 16 : ctx->gonecap * 2;
		ctx->gone = xreallocarray(ctx->gone, ctx->gonecap,
		    sizeof(*ctx->gone));
	}
	ctx->gone[ctx->ngone++] = bev;
	evtimer_add(ctx->reap_ev, &tv);
}

/* Drop a forward now, for WHY; the reaper frees it outside callbacks. */
static void
fwd_drop(struct fwd *f, const char *why)
{
	struct timeval	tv = { 0, 0 };

	if (f->state == FWD_DEAD)
		return;
	log_debug("forward=%llu %s peer=%s dropped: %s",
	    (unsigned long long)f->id, fwd_kinds[f->kind], f->peer, why);
	fwd_enter_state(f, FWD_DEAD);
	fwd_authed(f);
	if (f->guest) {
		admit_release(f->ctx->r->guests, f->src);
		f->guest = 0;
	}
	TAILQ_REMOVE(&f->ctx->live, f, entry);
	f->ctx->nlive[f->kind]--;
	evtimer_del(f->deadline);
	fwd_unsplice(f);
	fwd_side_stop(f->in);
	fwd_side_stop(f->out);
	TAILQ_INSERT_TAIL(&f->ctx->dead, f, entry);
	evtimer_add(f->ctx->reap_ev, &tv);
}

static void	fwd_refuse(struct fwd *, const char *);

static void	fwd_connect_failed(struct fwd *, const char *);
static void	fwd_adopt_retry(struct fwd *);

/*
 * The one timer: parked too long, idle too long, a far side that does
 * not connect (or finish its TLS handshake) in time, flushed too long;
 * open, a mesh link's stream to try handing over again.
 */
static void
fwd_deadline_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct fwd	*f = arg;

	if (f->state == FWD_PARKED)
		fwd_refuse(f, f->why);
	else if (f->state == FWD_OPEN && f->connected)
		fwd_adopt_retry(f);
	else if (f->state == FWD_OPEN && !f->connected)
		fwd_connect_failed(f, "connect timed out");
	else
		fwd_drop(f, f->state == FWD_CLOSING ? "flush timed out" :
		    f->pending != NULL ? "handshake timed out" :
		    "no first byte in time");
}

/* A side with nothing left to send gets a half-close. */
static void
fwd_side_flushed(struct fwd *f, struct bufferevent *bev)
{
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		shutdown(bufferevent_getfd(bev), SHUT_WR);
}

/* Both sides closed: nothing more can move. */
static void
fwd_check_gone(struct fwd *f)
{
	if (f->state == FWD_CLOSING && f->in_gone && f->out_gone)
		fwd_drop(f, "both sides closed");
}

/* Enter FWD_CLOSING for REASON: the flush and linger get FWD_FLUSH_MS. */
static void
fwd_closing(struct fwd *f, const char *reason)
{
	struct timeval	tv;

	fwd_enter_state(f, FWD_CLOSING);
	log_debug("forward=%llu %s peer=%s closed to_out=%llu to_in=%llu "
	    "reason=\"%s\"", (unsigned long long)f->id, fwd_kinds[f->kind],
	    f->peer, (unsigned long long)f->to_out,
	    (unsigned long long)f->to_in, reason);
	xtime_tv(FWD_FLUSH_MS, &tv);
	evtimer_add(f->deadline, &tv);
}

/* The one teardown: flush both sides, half-close, linger, then go. */
static void
fwd_close(struct fwd *f, const char *reason)
{
	if (f->state != FWD_OPEN && f->state != FWD_WAITING &&
	    f->state != FWD_PARKED)
		return;
	/* The pipes' bytes go to the output buffers flushed below. */
	fwd_unsplice(f);
	fwd_closing(f, reason);
	if (!f->connected) {
		/* A far side still connecting is given up: nothing went. */
		fwd_release(f->ctx, f->out);
		f->out = NULL;
		f->out_gone = 1;
	}
	if (!f->in_gone) {
		bufferevent_setwatermark(f->in, EV_WRITE, 0, 0);
		bufferevent_enable(f->in, EV_READ | EV_WRITE);
		fwd_side_flushed(f, f->in);
	}
	if (!f->out_gone) {
		bufferevent_setwatermark(f->out, EV_WRITE, 0, 0);
		bufferevent_enable(f->out, EV_READ | EV_WRITE);
		fwd_side_flushed(f, f->out);
	}
	fwd_check_gone(f);
}

/*
 * Refuse a leg with one protocol ERROR its session end can read (the
 * code is transient: it retries), then close.
 */
static void
fwd_refuse(struct fwd *f, const char *why)
{
	f->ctx->refused++;
	log_info("%s leg from %s refused: %s", fwd_kinds[f->kind], f->peer,
	    why);
	frame_error_add(bufferevent_get_output(f->in), PROTO_ERROR,
	    PROTO_E_NOT_APPLIANCE, why);
	fwd_close(f, why);
}

void
fwd_free(struct fwd_ctx *ctx)
{
	struct fwd	*f;

	if (ctx == NULL)
		return;
	while ((f = TAILQ_FIRST(&ctx->live)) != NULL) {
		/* The loop is over: one non-blocking try at what is queued. */
		fwd_unsplice(f);
		tls_bev_write_now(f->in);
		fwd_drop(f, "shutting down");
	}
	fwd_reap_cb(-1, 0, ctx);
	pipepool_free(ctx->pipes);
	event_free(ctx->reap_ev);
	free(ctx->gone);
	free(ctx);
}

/*
 * The locator's vmomi agent: --vmomi-agent, else what the locator's
 * WELCOME named; NULL if neither.  *SOURCE (may be NULL) says which.
 */
static const struct xaddr *
fwd_vmomi_agent(const struct fwd_ctx *ctx, const char **source)
{
	const struct xaddr	*a;

	if (source != NULL)
		*source = "flag";
	if ((a = ctx->r->vmomi_agent) != NULL)
		return (a);
	if (source != NULL)
		*source = "locator";
	return (uplink_vmomi(ctx->r->uplink));
}

/*
 * A connection to A (HOST's relay; NULL: the appliance) for a forward,
 * pooled if possible: a bufferevent that reports BEV_EVENT_CONNECTED,
 * or with *UP set, one that is connected already (a vSocket connect
 * completes at once, and so does a pooled leg, or a stream on a mesh
 * link).  NULL with *why, and *WAIT set if the mesh link to HOST's
 * relay is coming up, or another link's TLS handshake to it: the leg
 * goes once it is up (fwd_wake), on the link or with the TLS ticket
 * it brings, not on a full TLS handshake of its own.
 */
static struct bufferevent *
fwd_dial(struct fwd_ctx *ctx, const struct xaddr *a, const char *host,
    int *up, int *wait, const char **why)
{
	struct sess_dial	 d;
	struct bufferevent	*bev;
	int			 e;

	*up = *wait = 0;
	if ((e = warm_leg(ctx->r->warm, a, host, 0, &d, why)) != 0) {
		*wait = e == 1;
		return (NULL);
	}
	if (d.bev != NULL)
		return (d.bev);
	/* Its events come later: a pooled socket leaves epoll meanwhile. */
	sess_dial_retire(&d);
	if ((bev = daemon_connected(&ctx->r->d, d.fd, d.up, a, TLS_ROLE_NONE,
	    NULL)) == NULL)
		*why = "cannot set up the connection (out of memory)";
	else
		*up = d.up;
	return (bev);
}

/*
 * Where a forward of this kind goes now, and *host, whose relay that
 * is (NULL: the appliance); NULL with *why if nowhere.
 */
static const struct xaddr *
fwd_route(struct fwd_ctx *ctx, enum fwd_kind kind, const char **why,
    const char **host)
{
	const struct xaddr	*a;

	*host = NULL;
	if (kind == FWD_AGENT)
		return (target_route(ctx->r->target, why, host));
	if (kind == FWD_VMOMI) {
		if ((a = fwd_vmomi_agent(ctx, NULL)) == NULL)
			*why = "no vmomi agent address (no --vmomi-agent, and "
			    "the locator named none)";
		return (a);
	}
	if ((a = target_local_appliance(ctx->r->target)) == NULL)
		*why = "this relay's host does not run the appliance";
	return (a);
}

/*
 * Nowhere to go now (WHY): hold the leg, its first bytes unread, until
 * the target moves (fwd_retarget) or FWD_PARK_MS after it first parked.
 */
static void
fwd_park(struct fwd *f, const char *why)
{
	struct timeval	tv;

	free(f->why);
	f->why = xstrdup(why);
	f->connected = 0;
	if (f->state == FWD_PARKED)
		return;		/* the deadline stays where it was */
	f->ctx->parked++;
	log_debug("forward=%llu %s peer=%s parked: %s",
	    (unsigned long long)f->id, fwd_kinds[f->kind], f->peer, why);
	fwd_enter_state(f, FWD_PARKED);
	bufferevent_disable(f->in, EV_READ);
	xtime_tv(FWD_PARK_MS, &tv);
	evtimer_add(f->deadline, &tv);
}

/*
 * The far side is unreachable (WHY) and nothing has gone through yet.
 * With a vMotion to or from here under way (a hint), the appliance has
 * left, or the hint sent this leg too early or wrongly: close at once,
 * so the relay in front (or the session end) tries the other place
 * now.  Else park until the target moves.
 */
static void
fwd_unreachable(struct fwd *f, const char *why)
{
	if (f->kind == FWD_MESH && target_hint_moving(f->ctx->r->target)) {
		/* No ERROR: a forward in front may reroute (fwd_try_hint). */
		f->ctx->refused++;
		log_info("%s leg from %s closed: %s (a vMotion is under way)",
		    fwd_kinds[f->kind], f->peer, why);
		f->connected = 0;
		fwd_close(f, why);
		return;
	}
	fwd_park(f, why);
}

/* What the far side of F is, for messages. */
static const char *
fwd_far(const struct fwd *f)
{
	static const char *const far[FWD_NKINDS] = { "appliance", "next hop",
	    "vmomi agent" };

	return (far[f->kind]);
}

/*
 * A vmomi forward's far side is new: the attestation line goes first,
 * ahead of any byte of the leg's (docs/protocol.md).  -1 (the forward
 * refused) if this relay cannot write one.
 */
static int
fwd_attest(struct fwd *f)
{
	char	line[CALLER_LINE_MAX + 1];
	size_t	len;
	int	e;

	strlcpy(f->caller.host, f->ctx->r->conf.host, sizeof(f->caller.host));
	if ((e = caller_format(&f->caller, line, sizeof(line), &len)) !=
	    CALLER_OK) {
		/* --host was checked at startup: a broken invariant. */
		log_warnx("forward=%llu vmomi: no caller line: %s",
		    (unsigned long long)f->id, caller_strerror(e));
		fwd_refuse(f, "this relay cannot attest the caller");
		return (-1);
	}
	if (bufferevent_write(f->out, line, len) != 0)
		fatalx("bufferevent_write");
	return (0);
}

/*
 * Whether F's leg ended while its first bytes waited (parked, or for
 * the far side's connect): a session end that gave up on it has tried
 * elsewhere since.  Then they are not sent: delivered late, a stale
 * handshake only costs the appliance a leg, a handshake slot and a
 * CHALLENGE nobody answers, and may overtake a live resume (protocol.md,
 * "Overtaken PROOFs").  1 if F went.
 */
static int
fwd_abandoned(struct fwd *f)
{
	if (f->to_out > 0 || !xaddr_hungup(bufferevent_getfd(f->in)))
		return (0);
	f->ctx->abandoned++;
	fwd_drop(f, "its leg ended before it could be sent on");
	return (1);
}

/* The first byte arrived (or the target moved): connect onwards. */
static void
fwd_open(struct fwd *f)
{
	struct fwd_ctx		*ctx = f->ctx;
	const struct xaddr	*a;
	const char		*why, *host;
	char			 msg[300];
	struct timeval		 tv;
	int			 up = 0, wait = 0;

	if (f->state == FWD_PARKED && fwd_abandoned(f))
		return;
	a = NULL;
	if (f->hinted)
		a = target_route_hint(ctx->r->target, &why, &host);
	if (a == NULL && (a = fwd_route(ctx, f->kind, &why, &host)) == NULL) {
		fwd_park(f, why);
		return;
	}
	/* The agent is the locator: only its certificate may take these. */
	if (f->kind == FWD_VMOMI)
		f->out = daemon_dial_bev(&ctx->r->d, a, TLS_ROLE_LOCATOR, NULL,
		    &why);
	else
		f->out = fwd_dial(ctx, a, host, &up, &wait, &why);
	if (wait) {
		fwd_park(f, why);
		return;
	}
	/* Not even a connect (the appliance has left this host). */
	if (f->out == NULL && fwd_try_hint(f, xaddr_str(a)))
		return;
	if (f->out == NULL) {
		snprintf(msg, sizeof(msg), "%s %s%s%s", fwd_far(f),
		    f->kind == FWD_VMOMI ? xaddr_str(a) : "",
		    f->kind == FWD_VMOMI ? " unreachable: " : "", why);
		fwd_unreachable(f, msg);
		return;
	}
	if (f->kind == FWD_VMOMI && fwd_attest(f) != 0)
		return;
	evtimer_del(f->deadline);
	/*
	 * The session ends ping through us: silence means a peer is gone.
	 * Only TCP has the option (a vSocket connect skips the lookup).
	 */
	if (ctx->r->conf.sess.keepalive_ms > 0 && xaddr_type(a) == XADDR_TCP)
		xaddr_dead_after(bufferevent_getfd(f->out),
		    ctx->r->conf.sess.keepalive_ms * 3);
	free(f->dest);
	f->dest = xstrdup(xaddr_str(a));
	fwd_side_setup(f, f->out);
	fwd_enter_state(f, FWD_OPEN);
	log_debug("forward=%llu %s peer=%s -> %s", (unsigned long long)f->id,
	    fwd_kinds[f->kind], f->peer, f->dest);
	if (up)
		fwd_connected(f);
	else {
		/*
		 * The leg waits, its first bytes held, for the far side: for
		 * as long as a handshake may take.  A far side that takes
		 * the connect but never finishes TLS would otherwise hold the
		 * forward (and a guest's slot) for good: nothing is read on
		 * the leg meanwhile, so not even its end would be seen.
		 */
		bufferevent_disable(f->in, EV_READ);
		xtime_tv(ctx->r->conf.sess.handshake_ms, &tv);
		evtimer_add(f->deadline, &tv);
	}
}

/*
 * Keep a copy of the N bytes about to go out while the far side has not
 * answered, so a target move can send them to the new place; past
 * FWD_FIRST_MAX the leg is carrying a stream, not a handshake.
 */
static void
fwd_keep_first(struct fwd *f, struct evbuffer *in, size_t n)
{
	uint8_t	buf[FWD_FIRST_MAX];

	if (f->to_in > 0 || f->to_out > FWD_FIRST_MAX) {
		if (f->first != NULL) {
			evbuffer_free(f->first);
			f->first = NULL;
		}
		return;
	}
	if (f->first == NULL && (f->first = evbuffer_new()) == NULL)
		fatalx("evbuffer_new");
	if (evbuffer_copyout(in, buf, n) != (ev_ssize_t)n ||
	    evbuffer_add(f->first, buf, n) != 0)
		fatalx("fwd_keep_first");
}

/*
 * The bufferevent of side I (0: the accepted leg, 1: the far side);
 * NULL while spliced with nothing queued (fwd_side_unwrap).
 */
static struct bufferevent *
fwd_side(struct fwd *f, int i)
{
	return (i == 0 ? f->in : f->out);
}

/* Side I's "ended" flag: 0 the leg's side (in), 1 the far side (out). */
static int *
fwd_gone(struct fwd *f, int i)
{
	return (i == 0 ? &f->in_gone : &f->out_gone);
}

/* Why a forward closes: side I ended as WHAT (a BEV_EVENT_*), for WHY. */
static void
fwd_side_msg(struct fwd *f, int i, short what, const char *why, char *msg,
    size_t len)
{
	snprintf(msg, len, "%s side %s%s%s",
	    i == 0 ? fwd_kinds[f->kind] : "far",
	    (what & BEV_EVENT_EOF) ? "closed" :
	    (what & BEV_EVENT_TIMEOUT) ? "timed out" : "error",
	    (what & BEV_EVENT_ERROR) && why != NULL ? ": " : "",
	    (what & BEV_EVENT_ERROR) && why != NULL ? why : "");
}

/* Bytes queued for side I in splice mode: its bufferevent's output. */
static size_t
fwd_queued(struct fwd *f, int i)
{
	struct bufferevent	*bev = fwd_side(f, i);

	if (bev == NULL)
		return (0);
	return (evbuffer_get_length(bufferevent_get_output(bev)));
}

/*
 * Spliced, side I's bufferevent holds nothing: free it (~1.1 KiB with
 * its evbuffers) and keep its socket, now owned by the splice state.
 * libevent closes a socket on free only if the bufferevent still has
 * it (be_socket_destruct): it is taken away first.
 */
static void
fwd_side_unwrap(struct fwd *f, int i)
{
	struct bufferevent	*bev = fwd_side(f, i);

	if (bev == NULL || fwd_queued(f, i) > 0 ||
	    evbuffer_get_length(bufferevent_get_input(bev)) > 0)
		return;
	bufferevent_setfd(bev, -1);
	bufferevent_free(bev);
	if (i == 0)
		f->in = NULL;
	else
		f->out = NULL;
}

/*
 * Leaving splice mode: side I's socket in a bufferevent again (if it
 * was freed), as the copy path left it when it spliced: a plain one,
 * set up as a side, watermarks at 0, disabled.
 */
static void
fwd_side_wrap(struct fwd *f, int i)
{
	struct bufferevent	*bev;

	if (fwd_side(f, i) != NULL)
		return;
	if ((bev = bufferevent_socket_new(f->ctx->r->d.base, f->sp->fd[i],
	    BEV_OPT_CLOSE_ON_FREE)) == NULL)
		fatalx("bufferevent_socket_new");
	fwd_side_setup(f, bev);
	bufferevent_disable(bev, EV_READ | EV_WRITE);
	if (i == 0)
		f->in = bev;
	else
		f->out = bev;
}

/* A side is back on the copy path: read unless its peer is full. */
static void
fwd_side_resume(struct fwd *f, struct bufferevent *src)
{
	struct bufferevent	*dst = src == f->in ? f->out : f->in;

	bufferevent_setwatermark(dst, EV_WRITE, 0, 0);
	bufferevent_enable(src, EV_READ | EV_WRITE);
	if (evbuffer_get_length(bufferevent_get_output(dst)) >= FWD_HIGH) {
		bufferevent_disable(src, EV_READ);
		bufferevent_setwatermark(dst, EV_WRITE, FWD_HIGH / 2, FWD_HIGH);
	}
}

/*
 * Leave splice mode: the events let go of the sockets, which go back
 * into bufferevents where theirs were freed, and what each pipe holds
 * is appended to its destination's output buffer (after what was
 * queued there: it was read later), so a close or the copy path sends
 * it next.  A no-op when not splicing.
 */
static void
fwd_unsplice(struct fwd *f)
{
	struct fwd_splice	*sp = f->sp;
	int			 w;

	if (!f->splicing)
		return;
	f->splicing = 0;
	f->ctx->splicing--;
	for (w = 0; w < 2; w++) {
		event_del(sp->ev[w]);
		sp->armed[w] = 0;
		fwd_side_wrap(f, w);
	}
	for (w = 0; w < 2; w++) {
		if (sp->held[w] > 0)
			pipepool_copyout(sp->pipe[w][0], bufferevent_get_output(
			    fwd_side(f, 1 - w)), sp->held[w]);
		pipepool_put(f->ctx->pipes, sp->pipe[w], 1);
		sp->held[w] = 0;
	}
}

/*
 * The kernel will not splice these sockets: copy, for good.  Out of
 * descriptors or memory for a pipe is a passing state: copy for now.
 */
static void
fwd_splice_refused(struct fwd *f, int err)
{
	int	passing = err == EMFILE || err == ENFILE || err == ENOMEM;

	log_debug("forward=%llu %s peer=%s: splice %s (%s), copying",
	    (unsigned long long)f->id, fwd_kinds[f->kind], f->peer,
	    passing ? "paused" : "refused", strerror(err));
	if (passing)
		f->splice_retry_ms = xtime_mono_ms() + FWD_SPLICE_RETRY_MS;
	else {
		f->ctx->splice_refused++;
		f->nosplice = 1;
	}
	fwd_unsplice(f);
	fwd_side_resume(f, f->in);
	fwd_side_resume(f, f->out);
}

static void	fwd_splice_arm(struct fwd *);

/*
 * Side I ended (EOF, or an error ERR) in splice mode.  With nothing in
 * the pipes or queued, the close stays in splice mode: the sides that
 * have not ended get their half-close now and are read and discarded
 * until they end too (fwd_splice_linger), as fwd_close() would do with
 * two bufferevents made for it.  Else it leaves splice mode and closes
 * as usual.  A spliced forward has had its answer (fwd_splice_start),
 * so it is never rerouted (fwd_try_hint) and a close is all there is.
 */
static void
fwd_splice_ended(struct fwd *f, int i, short what, int err)
{
	struct fwd_splice	*sp = f->sp;
	char			 msg[300];
	int			 s;

	if (f->state != FWD_OPEN || sp->held[0] > 0 || sp->held[1] > 0 ||
	    fwd_queued(f, 0) > 0 || fwd_queued(f, 1) > 0) {
		fwd_unsplice(f);
		errno = err;
		fwd_eventcb(fwd_side(f, i), what, f);
		return;
	}
	*fwd_gone(f, i) = 1;
	fwd_side_msg(f, i, what, err != 0 ? strerror(err) : NULL, msg,
	    sizeof(msg));
	fwd_closing(f, msg);
	for (s = 0; s < 2; s++) {
		if (!*fwd_gone(f, s))
			shutdown(sp->fd[s], SHUT_WR);
	}
	fwd_splice_arm(f);
	fwd_check_gone(f);
}

/* Closing in splice mode: read and drop what side I still sends. */
static void
fwd_splice_linger(struct fwd *f, int i)
{
	static char	sink[16384];
	ssize_t		n = 0;
	int		k;

	/* A few reads a wakeup, as a splice: a fast sender waits its turn. */
	for (k = 0; k < FWD_SPLICE_ROUNDS; k++)
		if ((n = read(f->sp->fd[i], sink, sizeof(sink))) <= 0)
			break;
	if (n > 0 || (n == -1 && (errno == EAGAIN || errno == EINTR)))
		return;
	*fwd_gone(f, i) = 1;
	fwd_splice_arm(f);
	fwd_check_gone(f);
}

/*
 * Send what way W holds to its destination: first what the
 * bufferevent had queued there (then it goes: fwd_side_unwrap), then
 * the pipe.  -1 if the forward left splice mode (ended or refused); 0
 * otherwise, held[w] > 0 if the destination is full.
 */
static int
fwd_splice_push(struct fwd *f, int w)
{
	struct fwd_splice	*sp = f->sp;
	int			 d = 1 - w;
	struct evbuffer		*out;
	ssize_t			 n;
	int			 err;

	while (fwd_queued(f, d) > 0) {
		out = bufferevent_get_output(fwd_side(f, d));
		/* A bufferevent's output is frozen at the front but for it. */
		evbuffer_unfreeze(out, 1);
		n = evbuffer_write(out, sp->fd[d]);
		err = errno;
		evbuffer_freeze(out, 1);
		if (n > 0 || (n == -1 && err == EINTR))
			continue;
		if (n == 0 || err == EAGAIN)
			return (0);
		fwd_splice_ended(f, d, BEV_EVENT_ERROR | BEV_EVENT_WRITING,
		    err);
		return (-1);
	}
	fwd_side_unwrap(f, d);
	while (sp->held[w] > 0) {
		n = splice(sp->pipe[w][0], NULL, sp->fd[d], NULL, sp->held[w],
		    SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n > 0) {
			sp->held[w] -= (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return (0);
		if (n == -1 && pipepool_refused(errno)) {
			fwd_splice_refused(f, errno);
			return (-1);
		}
		fwd_splice_ended(f, d, BEV_EVENT_ERROR | BEV_EVENT_WRITING,
		    n == 0 ? EPIPE : errno);
		return (-1);
	}
	pipepool_put(f->ctx->pipes, sp->pipe[w], 1);
	return (0);
}

/*
 * Move what side W has to side 1 - W through way W's pipe, a few pipe
 * loads at most, while the destination takes it all.  -1 if the
 * forward left splice mode.
 */
static int
fwd_splice_pull(struct fwd *f, int w)
{
	struct fwd_ctx		*ctx = f->ctx;
	struct fwd_splice	*sp = f->sp;
	ssize_t			 n;
	int			 round, err;

	for (round = 0; round < FWD_SPLICE_ROUNDS; round++) {
		if (sp->held[w] > 0 || fwd_queued(f, 1 - w) > 0)
			return (0);
		if (sp->pipe[w][0] == -1 &&
		    pipepool_get(ctx->pipes, sp->pipe[w]) == -1) {
			fwd_splice_refused(f, errno);
			return (-1);
		}
		n = splice(sp->fd[w], NULL, sp->pipe[w][1], NULL, FWD_PIPE_SZ,
		    SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		err = errno;
		if (n > 0) {
			sp->held[w] = (size_t)n;
			if (w == 0)
				f->to_out += (uint64_t)n;
			else
				f->to_in += (uint64_t)n;
			ctx->bytes += (uint64_t)n;
			ctx->splice_bytes += (uint64_t)n;
			if (fwd_splice_push(f, w) == -1)
				return (-1);
			if (n < FWD_PIPE_SZ)
				return (0);	/* most likely drained */
			continue;
		}
		pipepool_put(ctx->pipes, sp->pipe[w], 1);
		if (n == -1 && err == EINTR)
			continue;
		if (n == -1 && err == EAGAIN)
			return (0);
		if (n == -1 && pipepool_refused(err)) {
			fwd_splice_refused(f, err);
			return (-1);
		}
		if (n == 0)
			fwd_splice_ended(f, w, BEV_EVENT_EOF |
			    BEV_EVENT_READING, 0);
		else
			fwd_splice_ended(f, w, BEV_EVENT_ERROR |
			    BEV_EVENT_READING, err);
		return (-1);
	}
	return (0);
}

/*
 * Arm each side's event for what it is waiting for: readable while its
 * way is clear (empty pipe, nothing queued ahead), writable while
 * bytes wait for it.
 */
static void
fwd_splice_arm(struct fwd *f)
{
	struct fwd_splice	*sp = f->sp;
	struct event_base	*base = f->ctx->r->d.base;
	short			 want;
	int			 i;

	for (i = 0; i < 2; i++) {
		want = 0;
		if (f->state == FWD_CLOSING) {
			if (!*fwd_gone(f, i))
				want = EV_READ;
		} else {
			if (sp->held[i] == 0 && fwd_queued(f, 1 - i) == 0)
				want |= EV_READ;
			if (sp->held[1 - i] > 0 || fwd_queued(f, i) > 0)
				want |= EV_WRITE;
		}
		if (want == sp->armed[i])
			continue;
		event_del(sp->ev[i]);
		sp->armed[i] = want;
		if (want == 0)
			continue;
		if (event_assign(sp->ev[i], base, sp->fd[i], want | EV_PERSIST,
		    fwd_splice_cb, f) == -1 ||
		    event_add(sp->ev[i], NULL) == -1)
			fatalx("fwd_splice_arm");
	}
}

/* A side's socket is ready in splice mode. */
static void
fwd_splice_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fwd	*f = arg;
	int		 i = fd == f->sp->fd[0] ? 0 : 1;

	if (!f->splicing)
		return;
	if (f->state == FWD_CLOSING) {
		if (what & EV_READ)
			fwd_splice_linger(f, i);
		return;
	}
	/* Writable: the way into this side; readable: the way out of it. */
	if ((what & EV_WRITE) && fwd_splice_push(f, 1 - i) == -1)
		return;
	if ((what & EV_READ) && fwd_splice_pull(f, i) == -1)
		return;
	fwd_splice_arm(f);
}

/*
 * Switch an open forward to splice once it qualifies: connected, the
 * far side has answered (so its first bytes need not be kept for a
 * reroute), both sides plain sockets, neither ended.
 */
static void
fwd_splice_start(struct fwd *f)
{
	struct event_base	*base = f->ctx->r->d.base;
	struct fwd_splice	*sp;
	struct bufferevent	*bev;
	struct evbuffer		*in;
	size_t			 n;
	int			 i;

	if (f->splicing || f->nosplice || f->state != FWD_OPEN ||
	    !f->connected || f->first != NULL || f->to_in == 0 ||
	    f->in_gone || f->out_gone || tls_bev_is_tls(f->in) ||
	    tls_bev_is_tls(f->out) || (f->splice_retry_ms != 0 &&
	    xtime_mono_ms() < f->splice_retry_ms))
		return;
	if ((sp = f->sp) == NULL) {
		sp = f->sp = xcalloc(1, sizeof(*sp));
		for (i = 0; i < 2; i++) {
			sp->fd[i] = bufferevent_getfd(fwd_side(f, i));
			sp->pipe[i][0] = sp->pipe[i][1] = -1;
			if ((sp->ev[i] = event_new(base, sp->fd[i], 0,
			    fwd_splice_cb, f)) == NULL)
				fatalx("event_new");
		}
		f->ctx->spliced++;	/* once, whatever pauses follow */
	}
	f->splicing = 1;
	f->ctx->splicing++;
	log_debug("forward=%llu %s peer=%s spliced", (unsigned long long)f->id,
	    fwd_kinds[f->kind], f->peer);
	/*
	 * The splice events read before the bufferevents stop: libevent
	 * leaves a socket in epoll while any event wants it, so the
	 * hand-over costs no epoll_ctl (the other order removes each socket
	 * and adds it again).  fwd_splice_arm() below changes only what
	 * differs.
	 */
	for (i = 0; i < 2; i++) {
		if (sp->armed[i] != 0)
			continue;
		if (event_assign(sp->ev[i], base, sp->fd[i],
		    EV_READ | EV_PERSIST, fwd_splice_cb, f) == -1 ||
		    event_add(sp->ev[i], NULL) == -1)
			fatalx("fwd_splice_start");
		sp->armed[i] = EV_READ;
	}
	for (i = 0; i < 2; i++) {
		bev = fwd_side(f, i);
		bufferevent_disable(bev, EV_READ | EV_WRITE);
		bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
		/* Read, not yet passed on (none when open): first. */
		in = bufferevent_get_input(bev);
		n = evbuffer_get_length(in);
		if (i == 0)
			f->to_out += n;
		else
			f->to_in += n;
		f->ctx->bytes += n;
		evbuffer_add_buffer(bufferevent_get_output(fwd_side(f, 1 - i)),
		    in);
	}
	/*
	 * What is queued (the answer that got it here) goes now, not a
	 * loop turn later, and a side with nothing left queued loses its
	 * bufferevent: the events are then armed once, for reading.
	 */
	for (i = 0; i < 2; i++)
		if (fwd_splice_push(f, i) == -1)
			return;
	fwd_splice_arm(f);
}

/*
 * A mesh link's stream whose far side has answered: the link takes the
 * appliance's socket and moves the stream's bytes itself (mux_adopt),
 * with no socketpair, splice or forward between; this forward goes.
 * Only with nothing queued for either socket or held in a pipe (a
 * bufferevent's output cannot be taken from; the stream's is the
 * socketpair); what the stream sent that the forward has not passed on
 * (read dry now) goes first.  Copying or spliced alike, so a stream busy
 * at its answer is handed over once it is not (fwd_adopt_later).
 * MUX_OK if handed over.  Else the forward goes on, those bytes queued
 * for the appliance: MUX_E_BUSY if it may be tried again, another code
 * if its stream or link is gone (or its EOF came: the forward sees it).
 */
static int
fwd_adopt(struct fwd *f)
{
	struct fwd_splice	*sp = f->sp;
	struct evbuffer		*pending;
	int			 spliced = f->splicing, fd, n, rv, dry;

	if (f->sid == 0 || f->state != FWD_OPEN || !f->connected ||
	    f->first != NULL || f->to_in == 0 || f->in_gone || f->out_gone ||
	    fwd_queued(f, 0) > 0 || fwd_queued(f, 1) > 0 ||
	    (spliced && (sp->held[0] > 0 || sp->held[1] > 0)) ||
	    (f->out != NULL && (tls_bev_is_tls(f->out) ||
	    evbuffer_get_length(bufferevent_get_input(f->out)) > 0)))
		return (MUX_E_BUSY);
	if ((pending = evbuffer_new()) == NULL)
		return (MUX_E_BUSY);
	/* The input's front may go; its end is the bufferevent's alone. */
	if (f->in != NULL)
		evbuffer_add_buffer(pending, bufferevent_get_input(f->in));
	fd = spliced ? sp->fd[0] : bufferevent_getfd(f->in);
	while ((n = evbuffer_read(pending, fd, FWD_CHUNK)) > 0)
		;
	dry = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
	f->to_out += evbuffer_get_length(pending);
	f->ctx->bytes += evbuffer_get_length(pending);
	fd = spliced ? sp->fd[1] : bufferevent_getfd(f->out);
	rv = !dry ? MUX_E_STREAM : mesh_adopt(f->ctx->r->mesh, f->link, f->sid,
	    fd, pending);
	if (rv != MUX_OK) {
		log_debug("forward=%llu %s peer=%s not handed to its link: %s",
		    (unsigned long long)f->id, fwd_kinds[f->kind], f->peer,
		    mux_strerror(rv));
		if (evbuffer_get_length(pending) > 0 && spliced) {
			/* Ahead of the pipes' next bytes: by the copy path. */
			fwd_unsplice(f);
			evbuffer_add_buffer(bufferevent_get_output(f->out),
			    pending);
			fwd_splice_start(f);
			/* Not if that write ended it (then it is closing). */
			if (f->state == FWD_OPEN && !f->splicing) {
				fwd_side_resume(f, f->in);
				fwd_side_resume(f, f->out);
			}
		} else if (evbuffer_get_length(pending) > 0)
			evbuffer_add_buffer(bufferevent_get_output(f->out),
			    pending);
		evbuffer_free(pending);
		return (rv);
	}
	evbuffer_free(pending);
	/* The pipes are empty: they go back, the sockets into bufferevents. */
	fwd_unsplice(f);
	/* The socket is the link's: the bufferevent lets it go, unclosed. */
	fwd_side_stop(f->out);
	bufferevent_setfd(f->out, -1);
	f->ctx->adopted++;
	if (f->adopt_ms != 0)
		f->ctx->adopted_later++;
	log_debug("forward=%llu %s peer=%s handed to its link (stream %u)%s",
	    (unsigned long long)f->id, fwd_kinds[f->kind], f->peer, f->sid,
	    f->adopt_ms != 0 ? " on a later try" : "");
	fwd_drop(f, "handed to the mesh link");
	return (MUX_OK);
}

/*
 * A stream the appliance has answered but not handed over (bytes were
 * queued either way, or held for credit): try again in a while, the
 * wait doubling while it stays busy.  The forward's one timer is free
 * once it is open and connected.
 */
static void
fwd_adopt_later(struct fwd *f)
{
	struct timeval	tv;

	if (f->sid == 0 || f->first != NULL || f->to_in == 0 ||
	    evtimer_pending(f->deadline, NULL))
		return;
	if (f->adopt_ms == 0)
		f->adopt_ms = FWD_ADOPT_MS;
	xtime_tv(f->adopt_ms, &tv);
	evtimer_add(f->deadline, &tv);
}

/* The hand-over's timer: once more, unless its stream or link is gone. */
static void
fwd_adopt_retry(struct fwd *f)
{
	if (fwd_adopt(f) != MUX_E_BUSY)
		return;
	f->adopt_ms = f->adopt_ms >= FWD_ADOPT_MAX_MS / 2 ? FWD_ADOPT_MAX_MS :
	    f->adopt_ms * 2;
	fwd_adopt_later(f);
}

/* Copy what one side has to the other, pausing at the high mark. */
static void
fwd_readcb(struct bufferevent *bev, void *arg)
{
	struct fwd		*f = arg;
	struct bufferevent	*dst = bev == f->in ? f->out : f->in;
	struct evbuffer		*in = bufferevent_get_input(bev);
	size_t			 n = evbuffer_get_length(in);
	int			 rv;

	if (f->state == FWD_WAITING) {
		fwd_authed(f);
		if (fwd_is_link(f) == 0)
			fwd_open(f);
		return;
	}
	if (f->state == FWD_PARKED)
		return;				/* held for the target */
	if (f->state != FWD_OPEN) {
		evbuffer_drain(in, n);		/* lingering */
		return;
	}
	if (!f->connected)
		return;				/* held until connected */
	/* libevent reads 4 KiB at a time: read on, up to the high mark. */
	if (evbuffer_get_length(bufferevent_get_output(dst)) < FWD_HIGH) {
		xbev_read_more(bev, FWD_HIGH -
		    evbuffer_get_length(bufferevent_get_output(dst)));
		n = evbuffer_get_length(in);
	}
	if (bev == f->in) {
		f->to_out += n;
		fwd_keep_first(f, in, n);
	} else {
		f->to_in += n;
		if (f->first != NULL) {
			evbuffer_free(f->first);	/* answered */
			f->first = NULL;
		}
	}
	f->ctx->bytes += n;
	/*
	 * Straight to the socket (a TLS record) while nothing waits in its
	 * output, not on the loop's next turn: most messages (a leg's
	 * handshake before splicing, a TLS leg's records) go out whole.
	 */
	if (tls_bev_send(dst, in, n) == -1) {
		fwd_close(f, "out of memory");
		return;
	}
	if (evbuffer_get_length(bufferevent_get_output(dst)) >= FWD_HIGH) {
		bufferevent_disable(bev, EV_READ);
		bufferevent_setwatermark(dst, EV_WRITE, FWD_HIGH / 2, FWD_HIGH);
	}
	if ((rv = fwd_adopt(f)) == MUX_OK)
		return;
	if (rv == MUX_E_BUSY)
		fwd_adopt_later(f);
	fwd_splice_start(f);
}

/* Output drained: let the other side read again, or finish closing. */
static void
fwd_writecb(struct bufferevent *bev, void *arg)
{
	struct fwd		*f = arg;
	struct bufferevent	*src = bev == f->in ? f->out : f->in;

	if (f->state == FWD_CLOSING) {
		fwd_side_flushed(f, bev);
		return;
	}
	if (f->state != FWD_OPEN || !f->connected)
		return;			/* parked: the far side comes later */
	bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
	bufferevent_enable(src, EV_READ);
}

static void	fwd_wake_to(struct fwd_ctx *, const char *);

/*
 * F's far side connected: legs parked that would go to the same place
 * (a relay that was down is back) go now, not at their park deadline.
 * At most once per FWD_WAKE_MS: each try is a connect.
 */
static void
fwd_wake_for(struct fwd *f)
{
	struct fwd_ctx	*ctx = f->ctx;
	long long	 now;

	if (ctx->nparked == 0 || f->dest == NULL)
		return;
	now = xtime_mono_ms();
	if (now - ctx->woke_ms < FWD_WAKE_MS)
		return;
	ctx->woke_ms = now;
	fwd_wake_to(ctx, f->dest);
}

/* The far side is connected: both sides read, and the first bytes go. */
static void
fwd_connected(struct fwd *f)
{
	f->connected = 1;
	fwd_wake_for(f);
	evtimer_del(f->deadline);	/* the connect's */
	bufferevent_setwatermark(f->in, EV_READ, 0, 0);
	/*
	 * Writing stays as it is when already on (a new bufferevent's
	 * default): enabling it again would arm the write event for an
	 * empty output, one epoll_ctl to arm, one to disarm.  Reading is
	 * still on when the far side connected at once: no epoll_ctl.
	 */
	bufferevent_enable(f->in, (bufferevent_get_enabled(f->in) &
	    EV_WRITE) ? EV_READ : EV_READ | EV_WRITE);
	bufferevent_enable(f->out, EV_READ);
	/* What arrived while connecting goes now. */
	fwd_readcb(f->in, f);
	/*
	 * The appliance took a leg here on a hint's word: it has arrived,
	 * so every route follows the hint now (target.c).  Only a vSocket
	 * connect says so: an appliance reached over TCP answers from
	 * wherever it runs.
	 */
	if (f->kind == FWD_MESH && f->state == FWD_OPEN &&
	    strncmp(f->dest, "vsock://", 8) == 0 &&
	    target_hint_seen(f->ctx->r->target, f->dest))
		control_target_changed(f->ctx->r, "hint");
}

static void
fwd_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct fwd	*f = arg;
	char		 msg[300];
	const char	*why = tls_bev_error(bev);
	int		 err = EVUTIL_SOCKET_ERROR();
	struct timeval	 tv;

	if (why == NULL && err != 0)
		why = strerror(err);
	if ((what & BEV_EVENT_CONNECTED) && bev == f->in) {
		/* Its TLS handshake is done: now it may wait for a byte. */
		log_debug("forward=%llu %s peer=%s TLS up: %s",
		    (unsigned long long)f->id, fwd_kinds[f->kind], f->peer,
		    tls_bev_peer(bev));
		fwd_authed(f);
		if (f->state == FWD_WAITING) {
			xtime_tv(FWD_IDLE_MS, &tv);
			evtimer_add(f->deadline, &tv);
		}
		return;
	}
	if (what & BEV_EVENT_CONNECTED) {
		if (f->state == FWD_OPEN && !fwd_abandoned(f))
			fwd_connected(f);
		return;
	}
	*fwd_gone(f, bev == f->in ? 0 : 1) = 1;
	bufferevent_disable(bev, EV_READ | EV_WRITE);
	if (f->state == FWD_CLOSING) {
		fwd_check_gone(f);
		return;
	}
	if (f->state == FWD_WAITING) {
		/* A pre-warmed leg that was never used, or a failed TLS one. */
		if (f->pending != NULL && tls_bev_is_tls(bev) && why != NULL)
			log_info("%s leg from %s dropped: %s",
			    fwd_kinds[f->kind], f->peer, why);
		fwd_drop(f, why != NULL ? why : (what & BEV_EVENT_EOF) ?
		    "closed before its first byte" : "error before its first "
		    "byte");
		return;
	}
	if (bev == f->out && !f->connected) {
		fwd_connect_failed(f, why != NULL ? why : "connect failed");
		return;
	}
	if (bev == f->out && fwd_try_hint(f, f->dest))
		return;
	fwd_side_msg(f, bev == f->in ? 0 : 1, what, why, msg, sizeof(msg));
	/* Whatever was read before EOF still goes through. */
	if ((what & BEV_EVENT_EOF) && f->connected)
		fwd_readcb(bev, f);
	fwd_close(f, msg);
}

/*
 * The far side never connected (or finished its TLS handshake), WHY:
 * the hint's other route, or park or close as when unreachable.
 */
static void
fwd_connect_failed(struct fwd *f, const char *why)
{
	char	msg[300];

	snprintf(msg, sizeof(msg), "%s %s unreachable: %s", fwd_far(f),
	    f->dest, why);
	if (fwd_try_hint(f, f->dest))
		return;
	fwd_release(f->ctx, f->out);
	f->out = NULL;
	f->out_gone = 0;
	fwd_unreachable(f, msg);
}

/* A leg of KIND was accepted on FD: wait for its first byte. */
static void
fwd_start(struct fwd_ctx *ctx, enum fwd_kind kind, evutil_socket_t fd,
    struct sockaddr *sa, int salen)
{
	struct relay		*r = ctx->r;
	struct xaddr_peer	 peer;
	struct fwd		*f;
	struct admit		*pool = NULL;
	char			 src[ADMIT_SOURCE_MAX];
	int			 e = ADMIT_OK;

	xaddr_peer_describe(sa, salen, &peer);
	/*
	 * The agent trusts the caller line, so a leg whose peer is no VM
	 * (a local process over unix or tcp) gets no line and no forward.
	 */
	if (kind == FWD_VMOMI && peer.type != XADDR_VSOCK) {
		ctx->refused++;
		ctx->vmomi_not_vsock++;
		log_info("vmomi leg from %s refused: not a vSocket peer, so "
		    "there is no VM to attest", peer.str);
		close(fd);
		return;
	}
	admit_source(&peer, src, sizeof(src));
	/*
	 * Bounded pre-authentication work: a mesh leg holds a handshake
	 * slot until its TLS handshake is done (a plaintext mesh has no
	 * authentication to wait for), an agent leg a slot of its own pool
	 * until its first bytes, so guests cannot starve relays of slots.
	 * A guest's agent legs count towards its sessions.
	 */
	if (kind == FWD_AGENT || kind == FWD_VMOMI)
		pool = r->agents;
	else if (r->d.tls != NULL && xaddr_type(r->mesh_a) == XADDR_TCP)
		pool = r->pending;
	if (pool != NULL && (e = admit_take(pool, src)) == ADMIT_OK &&
	    kind != FWD_MESH && (e = admit_take(r->guests, src)) != ADMIT_OK)
		admit_release(pool, src);
	if (e != ADMIT_OK) {
		ctx->refused++;
		log_debug("%s leg from %s refused: %s", fwd_kinds[kind],
		    peer.str, admit_strerror(e));
		close(fd);
		return;
	}
	xaddr_tune(fd, peer.type);
	if (ctx->r->conf.sess.keepalive_ms > 0)
		xaddr_dead_after(fd, ctx->r->conf.sess.keepalive_ms * 3);
	f = fwd_add(ctx, kind, peer.str, src);
	f->pending = pool;
	f->guest = kind != FWD_MESH;
	f->caller.cid = peer.cid;
	f->caller.port = peer.port;
	/* Mesh legs come from relays (TLS); agent legs over vSocket. */
	if ((f->in = daemon_accepted(&ctx->r->d, fd, ctx->r->mesh_a,
	    kind == FWD_MESH ? TLS_ROLE_RELAY : TLS_ROLE_NONE)) == NULL)
		fatalx("bufferevent for an accepted leg");
	/*
	 * Unauthenticated (before its TLS handshake, or an agent's first
	 * bytes) it is kept short; a plaintext mesh leg may be pre-warmed.
	 */
	fwd_wait(f, pool != NULL ? ctx->r->conf.sess.handshake_ms :
	    FWD_IDLE_MS);
}

/* A new forward of KIND from PEER (admission source SRC). */
static struct fwd *
fwd_add(struct fwd_ctx *ctx, enum fwd_kind kind, const char *peer,
    const char *src)
{
	struct fwd	*f;

	f = xcalloc(1, sizeof(*f));
	f->ctx = ctx;
	f->kind = kind;
	f->id = ++ctx->next_id;
	if ((f->deadline = evtimer_new(ctx->r->d.base, fwd_deadline_cb, f)) ==
	    NULL)
		fatalx("evtimer_new");
	strlcpy(f->peer, peer, sizeof(f->peer));
	strlcpy(f->src, src, sizeof(f->src));
	TAILQ_INSERT_TAIL(&ctx->live, f, entry);
	ctx->nlive[kind]++;
	ctx->total[kind]++;
	return (f);
}

/* F's leg is set up: wait up to MS for its first byte. */
static void
fwd_wait(struct fwd *f, long long ms)
{
	struct timeval	tv;

	fwd_side_setup(f, f->in);
	/* Until its far side is up, a leg may make us hold a handshake. */
	bufferevent_setwatermark(f->in, EV_READ, 0, PROTO_HANDSHAKE_MAX * 2);
	xtime_tv(ms, &tv);
	evtimer_add(f->deadline, &tv);
	bufferevent_enable(f->in, EV_READ);
}

/*
 * A stream of a mesh link from relay PEER (mesh.c) on FD: a mesh leg,
 * authenticated with its link (LINK, the stream SID: fwd_adopt).  0,
 * or -1 (FD left to the caller).
 */
int
fwd_stream(struct fwd_ctx *ctx, int fd, const char *peer, uint64_t link,
    uint32_t sid)
{
	struct fwd	*f;
	char		 src[ADMIT_SOURCE_MAX];

	snprintf(src, sizeof(src), "mesh-link %s", peer);
	f = fwd_add(ctx, FWD_MESH, peer, src);
	f->link = link;
	f->sid = sid;
	if ((f->in = bufferevent_socket_new(ctx->r->d.base, fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		fwd_drop(f, "out of memory");
		return (-1);
	}
	fwd_wait(f, FWD_IDLE_MS);
	return (0);
}

/*
 * A mesh leg whose first bytes are a mesh link's preamble: the link is
 * mesh.c's from now on; this forward goes.  1 if taken, 0 if not one,
 * -1 while too few bytes have come to tell.
 */
static int
fwd_is_link(struct fwd *f)
{
	struct evbuffer	*in = bufferevent_get_input(f->in);
	uint8_t		 p[4], magic[4] = { MUX_MAGIC >> 24,
			    MUX_MAGIC >> 16 & 0xff, MUX_MAGIC >> 8 & 0xff,
			    MUX_MAGIC & 0xff };
	size_t		 n = evbuffer_get_length(in);
	struct bufferevent *bev;

	if (f->kind != FWD_MESH || n == 0 ||
	    evbuffer_copyout(in, p, n < 4 ? n : 4) < 0 ||
	    memcmp(p, magic, n < 4 ? n : 4) != 0)
		return (0);
	if (n < 4)
		return (-1);
	bev = f->in;
	fwd_side_stop(bev);
	f->in = NULL;
	f->in_gone = 1;
	f->ctx->total[FWD_MESH]--;	/* a link, not a leg: mesh.accepted */
	mesh_accept(f->ctx->r->mesh, bev, f->peer);
	fwd_drop(f, "a mesh link");
	return (1);
}

/* F is past its handshake (or gone): give its slot back. */
static void
fwd_authed(struct fwd *f)
{
	if (f->pending == NULL)
		return;
	admit_release(f->pending, f->src);
	f->pending = NULL;
}

/* A mesh leg arrived from another relay. */
void
fwd_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	fwd_start(arg, FWD_MESH, fd, sa, salen);
}

/* A vmomi leg arrived from vappliance (vsock://any:2003). */
void
fwd_vmomi_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	fwd_start(arg, FWD_VMOMI, fd, sa, salen);
}

/* A leg arrived from a guest agent on this host. */
void
fwd_agent_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	fwd_start(arg, FWD_AGENT, fd, sa, salen);
}

/*
 * The far side has answered nothing yet and the target moved (or the
 * far side failed and a hint names another place): drop it, put what
 * it was sent back in front of the leg's input, and open again at the
 * new place (or park).  The reaper frees the far side: this may run in
 * its own callback.
 */
static void
fwd_reroute(struct fwd *f)
{
	log_debug("forward=%llu %s peer=%s rerouted from %s%s",
	    (unsigned long long)f->id, fwd_kinds[f->kind], f->peer, f->dest,
	    f->hinted ? " by the hint" : "");
	fwd_release(f->ctx, f->out);
	f->out = NULL;
	f->connected = 0;
	f->out_gone = 0;
	f->ctx->bytes -= f->to_out;
	f->to_out = 0;
	if (f->first != NULL) {
		evbuffer_prepend_buffer(bufferevent_get_input(f->in),
		    f->first);
		evbuffer_free(f->first);
		f->first = NULL;
	}
	bufferevent_setwatermark(f->in, EV_WRITE, 0, 0);
	f->ctx->rerouted++;
	fwd_enter_state(f, FWD_WAITING);
	fwd_open(f);
}

/*
 * An agent forward's far side at FAILED failed (or could not even be
 * connected) before answering anything.  If a live migration hint
 * names another route (target.c), the appliance has likely just left:
 * try there once, first bytes and all.  1 if it did.
 */
static int
fwd_try_hint(struct fwd *f, const char *failed)
{
	const struct xaddr	*a;
	const char		*why, *host;

	/* An answer libevent read but has not handed us counts too. */
	if (f->kind != FWD_AGENT || f->hinted || f->to_in != 0 ||
	    (f->to_out != 0 && f->first == NULL) || (f->out != NULL &&
	    evbuffer_get_length(bufferevent_get_input(f->out)) > 0))
		return (0);
	if ((a = target_route_hint(f->ctx->r->target, &why, &host)) == NULL ||
	    strcmp(xaddr_str(a), failed) == 0)
		return (0);
	f->hinted = 1;
	f->ctx->hinted++;
	fwd_reroute(f);
	return (1);
}

/*
 * A walk of the live forwards goes on at NEXT, or from the start if a
 * forward opened meanwhile dropped NEXT (a far side that connected at
 * once wakes the legs parked for it, and one of them may have gone):
 * NEXT is then on the dead list.  Each start again follows a drop, so
 * the walk ends; a forward seen again passes (open where it should go,
 * closing) or, parked, tries once more.
 */
static struct fwd *
fwd_walk_on(struct fwd_ctx *ctx, struct fwd *next)
{
	if (next != NULL && next->state == FWD_DEAD)
		return (TAILQ_FIRST(&ctx->live));
	return (next);
}

/* The target moved: what forward F does (fwd_retarget). */
static void
fwd_retarget_one(struct fwd_ctx *ctx, struct fwd *f)
{
	const struct xaddr	*a;
	const char		*why, *host;

	/*
	 * Still nowhere to go: stay parked until the deadline, so a relay
	 * in front (moved by the same push) can reroute the leg before an
	 * ERROR from here reaches the session end.
	 */
	if (f->state == FWD_PARKED) {
		fwd_open(f);
		return;
	}
	if (f->state != FWD_OPEN)
		return;
	a = fwd_route(ctx, f->kind, &why, &host);
	if (a != NULL && strcmp(xaddr_str(a), f->dest) == 0)
		return;
	/* Sent where a live hint says: still right until it is not. */
	if (f->hinted && (a = target_route_hint(ctx->r->target, &why,
	    &host)) != NULL && strcmp(xaddr_str(a), f->dest) == 0)
		return;
	ctx->moved++;
	if (f->first != NULL && f->to_in == 0) {
		fwd_reroute(f);
		return;
	}
	fwd_close(f, "target moved");
}

/*
 * The target moved: a forward whose far side is no longer where its
 * kind should go is closed, so its session end resumes at the new
 * place at once instead of waiting for the move's reset to reach it.
 */
void
fwd_retarget(struct fwd_ctx *ctx)
{
	struct fwd	*f, *next;

	for (f = TAILQ_FIRST(&ctx->live); f != NULL; f = next) {
		next = TAILQ_NEXT(f, entry);
		fwd_retarget_one(ctx, f);
		next = fwd_walk_on(ctx, next);
	}
	/* Mesh streams handed to their links go as their forwards do. */
	if (target_local_appliance(ctx->r->target) == NULL)
		ctx->moved += mesh_reset_adopted(ctx->r->mesh);
}

/*
 * A link to a relay came up (a mesh link, or a TLS probe proved its
 * ticket): legs parked because it was down try again now, rather than
 * when the target next moves or, refused after FWD_PARK_MS, at their
 * session end's backoff.  One still with nowhere to go stays parked
 * until its deadline (fwd_open parks it again).
 */
void
fwd_wake(struct fwd_ctx *ctx)
{
	fwd_wake_to(ctx, NULL);
}

/* Parked legs try again: all (DEST NULL), or those routed to DEST. */
static void
fwd_wake_to(struct fwd_ctx *ctx, const char *dest)
{
	struct fwd		*f, *next;
	const struct xaddr	*a;
	const char		*why, *host;

	if (ctx->nparked == 0)
		return;
	for (f = TAILQ_FIRST(&ctx->live); f != NULL; f = next) {
		next = TAILQ_NEXT(f, entry);
		if (f->state == FWD_PARKED && (dest == NULL ||
		    ((a = fwd_route(ctx, f->kind, &why, &host)) != NULL &&
		    strcmp(xaddr_str(a), dest) == 0)))
			fwd_open(f);
		next = fwd_walk_on(ctx, next);
	}
}

/* Forwarding counters for the status socket. */
json_t *
fwd_json(const struct fwd_ctx *ctx)
{
	const struct xaddr	*a;
	const char		*source;

	a = fwd_vmomi_agent(ctx, &source);
	return (json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o, "
	    "s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
	    "active", (json_int_t)ctx->nlive[FWD_MESH],
	    "total", (json_int_t)ctx->total[FWD_MESH],
	    "agent_active", (json_int_t)ctx->nlive[FWD_AGENT],
	    "agent_total", (json_int_t)ctx->total[FWD_AGENT],
	    "vmomi_active", (json_int_t)ctx->nlive[FWD_VMOMI],
	    "vmomi_total", (json_int_t)ctx->total[FWD_VMOMI],
	    "vmomi_not_vsock", (json_int_t)ctx->vmomi_not_vsock,
	    "vmomi_agent", a != NULL ? json_string(xaddr_str(a)) : json_null(),
	    "vmomi_agent_source", a != NULL ? json_string(source) :
	    json_null(),
	    "refused", (json_int_t)ctx->refused,
	    "parked", (json_int_t)ctx->parked,
	    "abandoned", (json_int_t)ctx->abandoned,
	    "rerouted", (json_int_t)ctx->rerouted,
	    "hinted", (json_int_t)ctx->hinted,
	    "moved", (json_int_t)ctx->moved,
	    "bytes", (json_int_t)ctx->bytes,
	    "spliced", (json_int_t)ctx->spliced,
	    "adopted", (json_int_t)ctx->adopted,
	    "adopted_later", (json_int_t)ctx->adopted_later,
	    "splicing", (json_int_t)ctx->splicing,
	    "spliced_bytes", (json_int_t)ctx->splice_bytes,
	    "splice_refused", (json_int_t)ctx->splice_refused));
}

/* Agent forwards now open (each needs a new leg when the target moves). */
size_t
fwd_agents(const struct fwd_ctx *ctx)
{
	return (ctx->nlive[FWD_AGENT]);
}

/* Agent forwards now open whose far side is not DEST. */
size_t
fwd_agents_elsewhere(const struct fwd_ctx *ctx, const char *dest)
{
	const struct fwd	*f;
	size_t			 n = 0;

	TAILQ_FOREACH(f, &ctx->live, entry)
		if (f->kind == FWD_AGENT && (f->dest == NULL ||
		    strcmp(f->dest, dest) != 0))
			n++;
	return (n);
}
