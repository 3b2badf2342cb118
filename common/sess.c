/*
 * sess.c -- one end of a resumable session.
 *
 * Design.  Each end numbers the bytes it reads from its local stream
 * (read_off) and keeps every byte the far end has not acknowledged in
 * one buffer, "out": [acked_off, read_off), of which [acked_off,
 * sent_off) is the replay, sent but not acknowledged, and the rest is
 * unsent.  Sending moves only sent_off, a resume moves it back, an ACK
 * drains the front: no byte is copied between buffers (moving a
 * frame's bytes from one evbuffer to another copied every partial
 * chain, most of a bulk stream).  A bulk stream's later bytes sit in
 * pipes instead, spliced and tee(2)d, never copied (struct spl), until
 * a resume or a kernel that will not splice puts them back in the
 * buffer.  The window caps what is held: the smaller of the two ends'
 * replay_max, which HELLO NEW and WELCOME carry (version 5).  DATA
 * frames carry their 64-bit offset; the receiver writes each byte to
 * its local stream once (recv_off), counts what the kernel took
 * (deliv_off) and acknowledges that, so an ACK means delivered, not
 * merely received.
 * FIN takes one offset, like TCP's, so "FIN delivered" is ACK final+1.
 *
 * A leg is one mesh connection.  When it breaks the session detaches
 * and keeps reading its local stream until the window is held (then
 * backpressure, never a drop).  The client opens a new leg with
 * backoff and proves it holds the session secret (X25519 at open,
 * HMAC-SHA256 at resume, over a challenge or, in one round trip, over
 * the ticket nonce the secret implies; the secret rotated after each
 * use);
 * then each end states its next expected offset and the other sends
 * from there.  The server closes the old leg only after the new one
 * has authenticated.  A session detached longer than the hold time is
 * closed on both ends with a reason.
 *
 * Lifetimes: legs and sessions are freed from a reaper event, never
 * inside the callback that decided to free them; legs awaiting a
 * resume proof refer to their session by id, not by pointer.
 */
#include <sys/socket.h>
#include <sys/queue.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "frame.h"
#include "kx.h"
#include "pipepool.h"
#include "proto.h"
#include "sess.h"
#include "tls.h"
#include "xaddr.h"
#include "xsock.h"
#include "xmalloc.h"
#include "xtime.h"
#include "tree.h"

#define LEG_HIGH	(256 * 1024)	/* leg output: stop pumping */
#define LOCAL_LOW	(64 * 1024)	/* local output: read the leg again */
#define LOCAL_WAIT_MS	20		/* ...or after this, copying */
#define LEG_ACK_CAPS	4		/* local output, ACK awaited: caps */
#define LEG_READ_HIGH	(PROTO_DATA_MAX + 1024)
#define ACK_BYTES	(256 * 1024)	/* ack at once past this much, or past
					   half the window */
#define ACK_DELAY_MS	5		/* else within this */
#define KA_SLICES	8		/* keepalive ticks per period */
#define RETRY_MIN_MS	25
#define RETRY_MAX_MS	1000
#define FLUSH_MS	5000		/* a closing leg gets this long */
#define IO_CHUNK	(256 * 1024)	/* a read: local stream, closing leg */
#define SPLICE_MIN	(16 * 1024)	/* a DATA body left this long: splice */
#define SPL_R_MIN	(256 * 1024)	/* sending: R this full waits on ACKs */
#define PIPES_KEPT	4		/* empty pipes kept for splicing */
/*
 * A spliced body waits in its pipe while the local reader is slower
 * than the leg; a full pipe sends the next bodies through user space
 * until the reader has caught up.  128 KiB pipes spliced a third of a
 * download to a slow guest, 512 KiB ones half to most of it.  Pipes
 * count against fs.pipe-user-pages-soft (16,384 pages per user) from
 * creation: 128 of these at once, the forwarder's included, before the
 * kernel makes new ones at its smallest (they still splice, in smaller
 * pieces).
 */
#define PIPE_SZ		(512 * 1024)
#define TOMB_MAX	65536		/* completed ids a server remembers */
#define IDLE_MS		15000		/* client: an unused idle leg goes */
#define IDLE_SERVER_MS	(2 * IDLE_MS)	/* server: later, so the client
					   closes it first */

enum leg_state {
	LEG_CONNECTING = 1,	/* client: TCP/vsock connect in progress */
	LEG_C_HELLO,		/* client: HELLO sent */
	LEG_C_PROOF,		/* client: PROOF sent */
	LEG_C_PROVEN,		/* client: HELLO with its proof sent */
	LEG_S_HELLO,		/* server: waiting for HELLO */
	LEG_S_CHALLENGED,	/* server: CHALLENGE sent */
	LEG_UP,			/* carrying the session's stream */
	LEG_CLOSING,		/* flushing its last frames */
	LEG_DEAD,		/* waiting for the reaper */
	LEG_C_DONE,		/* client: session done, RELEASE awaited */
	LEG_C_IDLE,		/* client: released, for the next session */
	LEG_S_IDLE,		/* server: RELEASE sent, next HELLO awaited */
};

struct leg {
	struct sess_ctx		*ctx;
	struct xsock		*x;	/* a TLS one wraps a bufferevent */
	struct evbuffer		*in;	/* frames read, only while any */
	enum leg_state		 state;
	struct sess		*s;	/* client legs and LEG_UP only */
	uint64_t		 sid;	/* server: the session asked for;
					   client: the one done (RELEASE) */
	uint8_t			 nonce_c[PROTO_NONCE_LEN];
	uint8_t			 nonce_s[PROTO_NONCE_LEN];
	int			 fin_sent;
	int			 paused;	/* backpressure: no reads */
	int			 waiting;	/* paused until the local
						   stream drains its pipe */
	int			 impatient;	/* a wait timed out: copy
						   until the local stream
						   has taken all */
	size_t			 body;		/* of the DATA being read: the
						   payload still to come,
						   spliced (leg_body) */
	int			 headers;	/* read a frame's header alone:
						   bodies were spliced */
	size_t			 frame_rem;	/* of the DATA being sent: the
						   payload not yet taken by
						   the socket (unsent's
						   front) */
	int			 reused;	/* carried an earlier session */
	int			 tuned;		/* its dialer set keepalive */
	unsigned		 epoch;		/* server: the session's resumes
						   when it was challenged */
	struct event		*deadline;	/* handshake or flush */
	char			*peer;	/* allocated: most are short */
	TAILQ_ENTRY(leg)	 entry;
};
TAILQ_HEAD(leg_list, leg);

struct sess {
	struct sess_ctx		*ctx;
	RB_ENTRY(sess)		 entry;
	TAILQ_ENTRY(sess)	 dead_entry;
	uint64_t		 id;
	char			 idstr[17];
	enum sess_state		 state;
	int			 dead;

	char			*host;	/* guest's host (allocated) */
	uint32_t		 cid;
	uint32_t		 port;
	enum proto_service	 service;
	char			*name;	/* serial VM (allocated), or NULL */

	struct xsock		*local;
	int			 local_eof;	/* read() saw EOF */
	int			 local_shut;	/* we shut its write side */
	int			 local_connected;
	size_t			 pre_skip;	/* preamble not counted */

	/* Out: [acked_off, read_off): the replay to sent_off, then unsent. */
	struct evbuffer		*out;
	struct spl		*spl;		/* from spl->base: in pipes */
	int			 spl_want;	/* reads fill: splice them */
	uint64_t		 read_off;
	uint64_t		 acked_off;
	uint64_t		 win_off;	/* peer's last ACK: window */
	size_t			 peer_win;	/* its window (version 5), or 0:
						   not said */
	uint64_t		 sent_off;
	uint64_t		 sent_max;
	uint64_t		 replayed;

	/* Inbound. */
	uint64_t		 recv_off;
	uint64_t		 deliv_off;
	uint64_t		 ack_sent;
	uint64_t		 fin_in;
	int			 fin_in_seen;

	struct leg		*leg;
	int			 opened;	/* established once */
	int			 confirmed;	/* server: the client framed
						   on an up leg (it has the
						   WELCOME, so it can resume) */
	unsigned		 new_tries;	/* HELLO NEW sent */
	unsigned		 resume_tries;	/* legs tried since one broke */
	int			 parked;	/* client: connect said wait */
	uint8_t			 secret[PROTO_MAC_LEN];
	uint8_t			 prev[PROTO_MAC_LEN];
	int			 have_prev;	/* rotation not confirmed */
	int			 ticket_spent;	/* server: this secret's
						   one-trip resume was tried */
	uint16_t		 version;	/* the wire version it speaks:
						   the HELLO NEW's, which the
						   WELCOME repeats */
	EVP_PKEY		*kx;		/* client, during NEW */
	uint8_t			 pub_c[PROTO_KEY_LEN];
	uint8_t			 nonce_c[PROTO_NONCE_LEN];

	struct event		*hold_ev;
	struct event		*retry_ev;
	TAILQ_ENTRY(sess)	 ack_entry;	/* ctx->ackq while queued */
	int			 ack_queued;
	int			 ack_asked;	/* PING sent for an ACK we wait
						   for (sess_ask_ack) */
	long long		 ack_due_ms;
	long long		 backoff_ms;
	unsigned		 resumes;
	long long		 created_ms;
	long long		 detached_ms;
	long long		 resume_ms;
	uint64_t		 resume_replay;	/* resent by the last resume */
	char			*why;	/* last detach reason, or NULL */
	void			*data;
};

/*
 * Sending without copies (sess_spl_*): from BASE on, the bytes read from
 * the local stream are spliced into U, the unsent, and each frame's
 * body is tee(2)d into R before it goes from U to the leg, so R holds
 * what was sent and not yet acknowledged, page references, not copies.
 * The out buffer keeps what came before BASE.
 */
struct spl {
	int			 u[2];
	int			 r[2];
	uint64_t		 base;
	size_t			 rlen;		/* bytes in R */
	int			 rfull;		/* R full: waits on ACKs */
};

RB_HEAD(sess_tree, sess);
TAILQ_HEAD(sess_list, sess);

/*
 * A server remembers sessions that completed for the hold time, so a
 * client whose leg broke before our last ACK reached it learns the
 * session is done rather than unknown.
 */
struct tomb {
	uint64_t		 id;
	long long		 expires_ms;
	RB_ENTRY(tomb)		 entry;
	TAILQ_ENTRY(tomb)	 q;
};
RB_HEAD(tomb_tree, tomb);
TAILQ_HEAD(tomb_list, tomb);

struct sess_ctx {
	struct event_base	*base;
	enum sess_role		 role;
	struct sess_conf	 conf;
	struct sess_ops		 ops;
	void			*arg;
	struct sess_tree	 tree;
	size_t			 count;
	struct leg_list		 legs;		/* pending and closing */
	size_t			 npending;
	struct leg_list		 idle;		/* between sessions, newest
						   first */
	size_t			 nidle;
	uint64_t		 reused;	/* sessions on an idle leg */
	struct leg_list		 dead_legs;
	struct sess_list	 dead;
	struct event		*reap_ev;
	struct tomb_tree	 tombs;		/* by id */
	struct tomb_list	 tombq;		/* oldest first */
	size_t			 ntombs;
	/* Resumes since start, for status and the vMotion reports. */
	uint64_t		 resumes;
	uint64_t		 resumes_one_trip; /* no CHALLENGE */
	uint64_t		 overtaken;	/* PROOFs another resume beat */
	long long		 woke_ms;	/* client: last wake by a leg */
	uint64_t		 replay_bytes;
	long long		 resume_ms_max;
	long long		 resume_ms_sum;
	struct evbuffer		*scratch;	/* frames on their way out */
	struct evbuffer		*none;		/* always empty: no header */
	struct pipepool		*pipes;		/* for spliced DATA bodies */
	uint64_t		 spliced;	/* DATA bytes spliced */
	uint64_t		 spliced_out;	/* ...and sent so */
	int			 devnull;	/* where ACKed bytes go */
	/*
	 * Per-context timers, not per session (an event is ~150 bytes of
	 * every idle session): delayed ACKs in due order, and keepalive
	 * PINGs to one KA_SLICES-th of the sessions per tick.
	 */
	struct sess_list	 ackq;
	const struct timeval	*leg_tmo;	/* common: 3 x keepalive */
	struct event		*ack_ev;
	struct event		*ka_ev;
	unsigned		 ka_slice;
};

static int	sess_cmp(struct sess *, struct sess *);
RB_PROTOTYPE_STATIC(sess_tree, sess, entry, sess_cmp);
RB_PROTOTYPE_STATIC(tomb_tree, tomb, entry, tomb_cmp);
RB_GENERATE_STATIC(sess_tree, sess, entry, sess_cmp);

static void	sess_enter_state(struct sess *, enum sess_state);
static void	sess_detach(struct sess *, const char *);
static void	sess_pump(struct sess *);
static void	sess_check_done(struct sess *);
static void	sess_local_take(struct sess *);
static size_t	sess_held(const struct sess *);
static size_t	sess_window(const struct sess *);
static uint32_t	sess_wire_window(const struct sess_ctx *);
static int	sess_spl_start(struct sess *);
static void	sess_spl_stop(struct sess *);
static void	sess_spl_free(struct sess *);
static int	sess_spl_trim(struct sess *, uint64_t);
static int	sess_spl_frame(struct sess *, struct leg *);
static ssize_t	sess_spl_read(struct sess *, size_t);
static size_t	sess_local_room(const struct sess *);
static int	sess_window_shut(const struct sess *);
static int	sess_wants_ack(const struct sess *);
static void	sess_ask_ack(struct sess *);
static void	sess_local_shut(struct sess *);
static void	sess_local_fail(struct sess *, const char *, int);
static void	sess_trim(struct sess *, uint64_t);
static void	sess_ack(struct sess *, int);
static void	sess_ack_add(struct sess *, uint64_t);
static uint64_t	sess_ack_off(const struct sess *);
static uint64_t	sess_next(const struct sess *);
static int	sess_next_ok(const struct sess *, uint64_t);
static void	sess_ack_unqueue(struct sess *);
static void	sess_ack_piggyback(struct sess *);
static void	sess_ack_cb(evutil_socket_t, short, void *);
static void	sess_ka_cb(evutil_socket_t, short, void *);
static void	sess_bufs(struct sess *);
static void	sess_bufs_drop(struct sess *);
static void	sess_retry_schedule(struct sess *);
static void	leg_io_cb(struct xsock *, enum xsock_event, size_t, void *);
static void	leg_read(struct leg *);
static void	leg_written(struct leg *);
static void	leg_close(struct leg *, int, int, const char *);
static void	leg_free_later(struct leg *);
static void	leg_lost(struct leg *, const char *);
static void	leg_deadline_cb(evutil_socket_t, short, void *);
static void	leg_wake(struct leg *);
static int	leg_ack_wake(struct sess *);
static void	leg_retire(struct leg *, uint64_t);
static void	leg_violation(struct leg *, const char *, int);
static struct leg *leg_idle_take(struct sess_ctx *, const char *);

static int
sess_cmp(struct sess *a, struct sess *b)
{
	return (a->id < b->id ? -1 : a->id > b->id);
}

static int	tomb_cmp(struct tomb *, struct tomb *);
RB_GENERATE_STATIC(tomb_tree, tomb, entry, tomb_cmp);

static int
tomb_cmp(struct tomb *a, struct tomb *b)
{
	return (a->id < b->id ? -1 : a->id > b->id);
}

/* Forget tombstones that are past the hold time (or over the cap). */
static void
tomb_prune(struct sess_ctx *ctx, long long now)
{
	struct tomb	*t;

	while ((t = TAILQ_FIRST(&ctx->tombq)) != NULL &&
	    (t->expires_ms <= now || ctx->ntombs > TOMB_MAX)) {
		TAILQ_REMOVE(&ctx->tombq, t, q);
		RB_REMOVE(tomb_tree, &ctx->tombs, t);
		ctx->ntombs--;
		free(t);
	}
}

/* Remember that session ID completed. */
static void
tomb_add(struct sess_ctx *ctx, uint64_t id)
{
	struct tomb	*t;
	long long	 now = xtime_mono_ms();

	t = xcalloc(1, sizeof(*t));
	t->id = id;
	t->expires_ms = now + ctx->conf.hold_ms;
	if (RB_INSERT(tomb_tree, &ctx->tombs, t) != NULL) {
		free(t);
		return;
	}
	TAILQ_INSERT_TAIL(&ctx->tombq, t, q);
	ctx->ntombs++;
	tomb_prune(ctx, now);
}

/* Whether session ID completed within the hold time. */
static int
tomb_find(struct sess_ctx *ctx, uint64_t id)
{
	struct tomb	key;

	tomb_prune(ctx, xtime_mono_ms());
	key.id = id;
	return (RB_FIND(tomb_tree, &ctx->tombs, &key) != NULL);
}

/* Name of a session state. */
const char *
sess_strstate(enum sess_state st)
{
	switch (st) {
	case SESS_CONNECTING:
		return ("connecting");
	case SESS_HANDSHAKE:
		return ("handshake");
	case SESS_ESTABLISHED:
		return ("established");
	case SESS_DETACHED:
		return ("detached");
	case SESS_CLOSED:
		return ("closed");
	}
	return ("unknown");
}

/* Every state change goes through here and is traced to the owner. */
static void
sess_enter_state(struct sess *s, enum sess_state st)
{
	char	msg[64];

	if (s->state == st)
		return;
	snprintf(msg, sizeof(msg), "%s -> %s", sess_strstate(s->state),
	    sess_strstate(st));
	s->state = st;
	if (s->ctx->ops.event != NULL)
		s->ctx->ops.event(s, SESS_EV_STATE, msg, s->ctx->arg);
}

static void
sess_emit(struct sess *s, enum sess_event ev, const char *reason)
{
	if (s->ctx->ops.event != NULL)
		s->ctx->ops.event(s, ev, reason, s->ctx->arg);
}

/* --- context ------------------------------------------------------ */

static void
sess_reap_cb(evutil_socket_t fd, short ev, void *arg);

/* A session context: one per daemon role. */
struct sess_ctx *
sess_ctx_new(struct event_base *base, enum sess_role role,
    const struct sess_conf *conf, const struct sess_ops *ops, void *arg)
{
	struct sess_ctx	*ctx;
	struct timeval	 tv;

	kx_ref(base);
	ctx = xcalloc(1, sizeof(*ctx));
	ctx->base = base;
	ctx->role = role;
	ctx->conf = *conf;
	ctx->ops = *ops;
	ctx->arg = arg;
	RB_INIT(&ctx->tree);
	RB_INIT(&ctx->tombs);
	TAILQ_INIT(&ctx->tombq);
	TAILQ_INIT(&ctx->legs);
	TAILQ_INIT(&ctx->idle);
	TAILQ_INIT(&ctx->dead_legs);
	TAILQ_INIT(&ctx->dead);
	TAILQ_INIT(&ctx->ackq);
	ctx->reap_ev = evtimer_new(base, sess_reap_cb, ctx);
	ctx->ack_ev = evtimer_new(base, sess_ack_cb, ctx);
	ctx->ka_ev = event_new(base, -1, EV_PERSIST, sess_ka_cb, ctx);
	if (ctx->reap_ev == NULL || ctx->ack_ev == NULL || ctx->ka_ev == NULL ||
	    (ctx->scratch = evbuffer_new()) == NULL ||
	    (ctx->none = evbuffer_new()) == NULL)
		abort();
	ctx->pipes = pipepool_new(PIPES_KEPT, PIPE_SZ);
	ctx->devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (conf->keepalive_ms > 0) {
		/* One timeout for every leg: O(1) queues, not a heap. */
		xtime_tv(conf->keepalive_ms * 3, &tv);
		if ((ctx->leg_tmo = event_base_init_common_timeout(base,
		    &tv)) == NULL)
			abort();
		xtime_tv(conf->keepalive_ms / KA_SLICES > 0 ?
		    conf->keepalive_ms / KA_SLICES : 1, &tv);
		event_add(ctx->ka_ev, &tv);
	}
	return (ctx);
}

size_t
sess_ctx_count(const struct sess_ctx *ctx)
{
	return (ctx->count);
}

/* Client: sessions without a leg to ROUTE (no leg, or one elsewhere). */
size_t
sess_ctx_count_elsewhere(struct sess_ctx *ctx, const char *route)
{
	struct sess	*s;
	size_t		 n = 0;

	RB_FOREACH(s, sess_tree, &ctx->tree)
		if (s->leg == NULL || strcmp(s->leg->peer, route) != 0)
			n++;
	return (n);
}

/* Find a live session by id. */
struct sess *
sess_ctx_find(struct sess_ctx *ctx, uint64_t id)
{
	struct sess	key;

	key.id = id;
	return (RB_FIND(sess_tree, &ctx->tree, &key));
}

/* Sessions by state, without building anything per session. */
void
sess_ctx_states(struct sess_ctx *ctx, size_t *counts)
{
	struct sess	*s;

	memset(counts, 0, (SESS_CLOSED + 1) * sizeof(*counts));
	RB_FOREACH(s, sess_tree, &ctx->tree)
		counts[s->state]++;
}

/* Every session as a JSON array. */
json_t *
sess_ctx_json(struct sess_ctx *ctx)
{
	json_t		*a = json_array();
	struct sess	*s;

	RB_FOREACH(s, sess_tree, &ctx->tree)
		json_array_append_new(a, sess_json(s));
	return (a);
}

/*
 * The target moved to ROUTE (its canonical address, NULL if none):
 * legs to any other address go, up or in handshake, and every
 * session without a leg tries the new target now, not after its
 * backoff.  A leg still up to the old place would otherwise carry on
 * until the move's reset reaches it, or a keepalive timeout if the
 * old host went silent.
 */
void
sess_ctx_retarget(struct sess_ctx *ctx, const char *route)
{
	struct sess	*s, *next;
	struct leg	*leg, *lnext;
	char		 msg[128];

	snprintf(msg, sizeof(msg), "target moved to %s",
	    route != NULL ? route : "nowhere");
	TAILQ_FOREACH_SAFE(leg, &ctx->idle, entry, lnext)
		if (route == NULL || strcmp(leg->peer, route) != 0)
			leg_free_later(leg);
	RB_FOREACH_SAFE(s, sess_tree, &ctx->tree, next) {
		s->backoff_ms = 0;	/* the next try goes at once */
		if (s->leg != NULL && s->leg->state != LEG_UP &&
		    (route == NULL || strcmp(s->leg->peer, route) != 0))
			sess_detach(s, "target changed during handshake");
		else if (s->leg != NULL && route != NULL &&
		    strcmp(s->leg->peer, route) != 0)
			sess_detach(s, msg);
		else if (s->state == SESS_DETACHED ||
		    s->state == SESS_CONNECTING)
			sess_retry_schedule(s);
	}
}

/*
 * Drop every leg whose peer name starts with PREFIX (NULL: all), at
 * once and without a frame, as a vMotion resets the VM's vSocket
 * streams; their sessions detach and resume on new legs.  Returns how
 * many legs went.
 */
size_t
sess_ctx_reset_legs(struct sess_ctx *ctx, const char *prefix,
    const char *reason)
{
	struct sess	*s, *next;
	struct leg	*leg, *lnext;
	size_t		 n = 0, plen;
	int		 i;

	if (prefix == NULL)
		prefix = "";
	plen = strlen(prefix);
	RB_FOREACH_SAFE(s, sess_tree, &ctx->tree, next) {
		if (s->leg == NULL || strncmp(s->leg->peer, prefix, plen) != 0)
			continue;
		xsock_reset(s->leg->x);
		sess_detach(s, reason);
		n++;
	}
	/* Legs in handshake or closing, and those between sessions. */
	for (i = 0; i < 2; i++) {
		TAILQ_FOREACH_SAFE(leg, i == 0 ? &ctx->legs : &ctx->idle,
		    entry, lnext) {
			if (strncmp(leg->peer, prefix, plen) != 0)
				continue;
			xsock_reset(leg->x);
			leg_free_later(leg);
			n++;
		}
	}
	return (n);
}

/*
 * Resume counters since start, and the legs kept between sessions
 * (JSON object, new reference).
 */
json_t *
sess_ctx_stats(const struct sess_ctx *ctx)
{
	json_t	*o;

	o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
	    "legs_idle", (json_int_t)ctx->nidle,
	    "legs_reused", (json_int_t)ctx->reused,
	    "resumes", (json_int_t)ctx->resumes,
	    "resumes_one_trip", (json_int_t)ctx->resumes_one_trip,
	    "resumes_overtaken", (json_int_t)ctx->overtaken,
	    "replayed_bytes", (json_int_t)ctx->replay_bytes,
	    "spliced_bytes", (json_int_t)ctx->spliced,
	    "spliced_sent_bytes", (json_int_t)ctx->spliced_out,
	    "resume_ms_max", (json_int_t)ctx->resume_ms_max,
	    "resume_ms_avg", (json_int_t)(ctx->resumes > 0 ?
	    ctx->resume_ms_sum / (long long)ctx->resumes : 0));
	if (o == NULL)
		abort();
	return (o);
}

static void sess_free(struct sess *);
static void leg_free(struct leg *);

/* Free what callbacks have finished with. */
static void
sess_reap_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct sess_ctx	*ctx = arg;
	struct sess	*s;
	struct leg	*leg;

	while ((leg = TAILQ_FIRST(&ctx->dead_legs)) != NULL) {
		TAILQ_REMOVE(&ctx->dead_legs, leg, entry);
		leg_free(leg);
	}
	while ((s = TAILQ_FIRST(&ctx->dead)) != NULL) {
		TAILQ_REMOVE(&ctx->dead, s, dead_entry);
		sess_free(s);
	}
}

static void
sess_reap_schedule(struct sess_ctx *ctx)
{
	struct timeval	tv = { 0, 0 };

	evtimer_add(ctx->reap_ev, &tv);
}

/* Close everything and free the context. */
void
sess_ctx_free(struct sess_ctx *ctx)
{
	struct sess	*s, *next;
	struct leg	*leg;

	if (ctx == NULL)
		return;
	RB_FOREACH_SAFE(s, sess_tree, &ctx->tree, next)
		sess_close(s, PROTO_E_SHUTDOWN, "shutting down");
	while ((leg = TAILQ_FIRST(&ctx->legs)) != NULL) {
		TAILQ_REMOVE(&ctx->legs, leg, entry);
		/* The loop is over: one non-blocking try to send CLOSE. */
		if (leg->state == LEG_CLOSING)
			xsock_flush_now(leg->x);
		if (leg->state == LEG_S_HELLO ||
		    leg->state == LEG_S_CHALLENGED)
			ctx->npending--;
		leg->state = LEG_DEAD;
		TAILQ_INSERT_TAIL(&ctx->dead_legs, leg, entry);
	}
	while ((leg = TAILQ_FIRST(&ctx->idle)) != NULL)
		leg_free_later(leg);
	sess_reap_cb(-1, 0, ctx);
	ctx->conf.hold_ms = 0;
	tomb_prune(ctx, LLONG_MAX);
	event_free(ctx->reap_ev);
	event_free(ctx->ack_ev);
	event_free(ctx->ka_ev);
	evbuffer_free(ctx->scratch);
	evbuffer_free(ctx->none);
	pipepool_free(ctx->pipes);
	if (ctx->devnull != -1)
		close(ctx->devnull);
	free(ctx);
	kx_unref();
}

/* --- sessions ----------------------------------------------------- */

static void sess_hold_cb(evutil_socket_t, short, void *);
static void sess_retry_cb(evutil_socket_t, short, void *);
static void sess_local_cb(struct xsock *, enum xsock_event, size_t, void *);
static void sess_delivered(struct sess *, size_t);
static void leg_send(struct leg *);
static void leg_frame_finish(struct leg *);

static struct sess *
sess_alloc(struct sess_ctx *ctx, uint64_t id)
{
	struct sess	*s;

	s = xcalloc(1, sizeof(*s));
	s->ctx = ctx;
	s->id = id;
	snprintf(s->idstr, sizeof(s->idstr), "%016" PRIx64, id);
	s->state = ctx->role == SESS_CLIENT ? SESS_CONNECTING :
	    SESS_HANDSHAKE;
	/*
	 * hold_ev and retry_ev are made when a leg is missing (sess_timer),
	 * the out buffer when there are bytes (sess_bufs).
	 */
	s->created_ms = xtime_mono_ms();
	s->resume_ms = -1;
	s->version = PROTO_VERSION;
	return (s);
}

static void
sess_local_free(struct sess *s)
{
	xsock_free(s->local);
	s->local = NULL;
}

/* Timer *EVP for S, made on first use. */
static struct event *
sess_timer(struct sess *s, struct event **evp, event_callback_fn cb)
{
	if (*evp == NULL && (*evp = evtimer_new(s->ctx->base, cb, s)) == NULL)
		abort();
	return (*evp);
}

/* Free timer *EVP if it was made. */
static void
sess_timer_drop(struct event **evp)
{
	if (*evp != NULL)
		event_free(*evp);
	*evp = NULL;
}

/* The out buffer, made when bytes come. */
static void
sess_bufs(struct sess *s)
{
	if (s->out == NULL && (s->out = evbuffer_new()) == NULL)
		abort();
}

/* Free the out buffer (caught up, or the end). */
static void
sess_bufs_drop(struct sess *s)
{
	if (s->out != NULL)
		evbuffer_free(s->out);
	s->out = NULL;
}

/* The offset of the out buffer's first byte (a FIN's +1 aside). */
static uint64_t
sess_out_base(const struct sess *s)
{
	return (s->acked_off > s->read_off ? s->read_off : s->acked_off);
}

/* Arm LEG's handshake or flush deadline MS from now. */
static void
leg_deadline(struct leg *leg, long long ms)
{
	struct timeval	tv;

	if (leg->deadline == NULL && (leg->deadline = evtimer_new(
	    leg->ctx->base, leg_deadline_cb, leg)) == NULL)
		abort();
	xtime_tv(ms, &tv);
	evtimer_add(leg->deadline, &tv);
}

static void
sess_free(struct sess *s)
{
	if (s == NULL)
		return;
	sess_local_free(s);
	sess_spl_free(s);
	sess_bufs_drop(s);
	sess_ack_unqueue(s);
	sess_timer_drop(&s->hold_ev);
	sess_timer_drop(&s->retry_ev);
	EVP_PKEY_free(s->kx);
	OPENSSL_cleanse(s->secret, sizeof(s->secret));
	OPENSSL_cleanse(s->prev, sizeof(s->prev));
	free(s->host);
	free(s->name);
	free(s->why);
	free(s);
}

/* Remember why the session has no leg (NULL: it has one again). */
static void
sess_set_why(struct sess *s, const char *why)
{
	free(s->why);
	s->why = why != NULL ? xstrdup(why) : NULL;
}

/* A random session id not in use here. */
static uint64_t
sess_new_id(struct sess_ctx *ctx)
{
	uint64_t	id;

	do {
		if (RAND_bytes((uint8_t *)&id, sizeof(id)) != 1)
			abort();
	} while (id == 0 || sess_ctx_find(ctx, id) != NULL);
	return (id);
}

/* A new ingress session for an accepted guest. */
struct sess *
sess_client_new(struct sess_ctx *ctx, int fd, const struct sess_guest *g)
{
	struct sess	*s;

	s = sess_alloc(ctx, sess_new_id(ctx));
	s->host = xstrdup(g->host);
	s->cid = g->cid;
	s->port = g->port;
	s->service = g->service;
	if (g->name != NULL && g->name[0] != '\0')
		s->name = xstrdup(g->name);
	/* Guest bytes wait in the kernel until the session is open. */
	s->local = xsock_new(ctx->base, fd, 0, sess_local_cb, s);
	s->local_connected = 1;		/* accepted */
	RB_INSERT(sess_tree, &ctx->tree, s);
	ctx->count++;
	if (ctx->conf.hold_ms > 0) {
		struct timeval	tv;

		xtime_tv(ctx->conf.hold_ms, &tv);
		evtimer_add(sess_timer(s, &s->hold_ev, sess_hold_cb), &tv);
	}
	s->detached_ms = xtime_mono_ms();
	sess_retry_schedule(s);
	return (s);
}

/* The backend's end for a server session, from ops->open. */
void
sess_set_local(struct sess *s, int fd, const void *pre, size_t len)
{
	struct evbuffer	*sc = s->ctx->scratch;

	sess_local_free(s);
	/* Connected or not, this reports XSOCK_CONNECTED or an error. */
	s->local = xsock_new(s->ctx->base, fd, XSOCK_CONNECTING,
	    sess_local_cb, s);
	if (len > 0) {
		s->pre_skip = len;
		evbuffer_add(sc, pre, len);
		(void)xsock_write(s->local, sc, len);	/* queued */
	}
}

/* Common teardown: local closed, leg closed or kept for a last flush. */
static void
sess_end(struct sess *s, int code, const char *reason, int tell)
{
	struct sess_ctx	*ctx = s->ctx;
	struct leg	*leg;

	if (s->dead)
		return;
	s->dead = 1;
	if ((leg = s->leg) != NULL) {
		leg_frame_finish(leg);	/* before a CLOSE, whole */
		s->leg = NULL;
		leg->s = NULL;
		if (leg->state == LEG_UP && tell)
			leg_close(leg, PROTO_CLOSE, code, reason);
		else if (leg->state == LEG_UP && code == PROTO_E_NONE)
			leg_retire(leg, s->id);
		else if (leg->state == LEG_UP)
			leg_close(leg, 0, 0, NULL);
		else
			leg_free_later(leg);
	}
	/* An abort must not look like a complete stream: reset. */
	if (code != PROTO_E_NONE && s->local != NULL)
		xsock_reset(s->local);
	sess_local_free(s);
	sess_timer_drop(&s->hold_ev);
	sess_timer_drop(&s->retry_ev);
	sess_ack_unqueue(s);
	sess_enter_state(s, SESS_CLOSED);
	RB_REMOVE(sess_tree, &ctx->tree, s);
	ctx->count--;
	if (ctx->role == SESS_SERVER && code == PROTO_E_NONE)
		tomb_add(ctx, s->id);
	sess_emit(s, SESS_EV_CLOSED, reason);
	TAILQ_INSERT_TAIL(&ctx->dead, s, dead_entry);
	sess_reap_schedule(ctx);
}

/* Abort the session on both ends. */
void
sess_close(struct sess *s, int code, const char *reason)
{
	if (s == NULL)
		return;
	sess_end(s, code, reason, 1);
}

/* Hold time over: nobody came back for this session. */
static void
sess_hold_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct sess	*s = arg;
	char		 msg[256];

	snprintf(msg, sizeof(msg), "hold time %lld ms expired (%s)",
	    s->ctx->conf.hold_ms, s->why != NULL ? s->why : "no path");
	sess_close(s, PROTO_E_HOLD, msg);
}

/* The leg is gone; wait for (or, as client, go find) another. */
static void
sess_detach(struct sess *s, const char *reason)
{
	struct leg	*leg;
	struct timeval	 tv;
	long long	 hold;
	int		 was_up;

	sess_spl_stop(s);	/* a resume sends from the out buffer */
	if ((leg = s->leg) != NULL) {
		s->leg = NULL;
		leg->s = NULL;
		if (leg->state != LEG_DEAD)
			leg_free_later(leg);
	}
	was_up = s->state == SESS_ESTABLISHED;
	sess_set_why(s, reason);
	if (was_up || s->state == SESS_HANDSHAKE) {
		if (s->ctx->role == SESS_SERVER || s->opened)
			sess_enter_state(s, SESS_DETACHED);
		else
			sess_enter_state(s, SESS_CONNECTING);
	}
	if (was_up) {
		s->detached_ms = xtime_mono_ms();
		hold = s->ctx->conf.hold_ms;
		/*
		 * Server: a session whose client never framed on it may have
		 * lost its WELCOME, and a client without it cannot resume:
		 * it asks again under a fresh id.  Such an orphan is kept
		 * only a handshake's time, not the hold time, so it does
		 * not hold a slot (--max-sessions, a gate's cap) for long.
		 */
		if (s->ctx->role == SESS_SERVER && !s->confirmed &&
		    s->ctx->conf.handshake_ms > 0 &&
		    hold > s->ctx->conf.handshake_ms)
			hold = s->ctx->conf.handshake_ms;
		if (hold > 0) {
			xtime_tv(hold, &tv);
			evtimer_add(sess_timer(s, &s->hold_ev, sess_hold_cb),
			    &tv);
		}
		sess_emit(s, SESS_EV_DETACHED, reason);
	}
	sess_ack_unqueue(s);
	if (s->ctx->role == SESS_CLIENT)
		sess_retry_schedule(s);
}

/* Client: try again after the backoff, doubled each time. */
static void
sess_retry_schedule(struct sess *s)
{
	struct timeval	tv;

	xtime_tv(xtime_backoff(&s->backoff_ms, RETRY_MIN_MS, RETRY_MAX_MS),
	    &tv);
	evtimer_add(sess_timer(s, &s->retry_ev, sess_retry_cb), &tv);
}

static struct leg *leg_new(struct sess_ctx *, struct bufferevent *,
    const char *, int);
static struct leg *leg_new_fd(struct sess_ctx *, int, const char *, int);
static struct leg *leg_new_x(struct sess_ctx *, struct xsock *, const char *);
static void	sess_hello(struct sess *, struct leg *);

/*
 * The pool's bufferevent goes only now: libevent keeps a socket in
 * epoll while any event wants it, so the hand-over costs no epoll_ctl
 * (freeing it first removes the socket and the leg adds it again).
 * Nothing runs between the two, so it reads nothing meant for the leg.
 */
void
sess_dial_retire(struct sess_dial *d)
{
	if (d == NULL || d->retire == NULL)
		return;
	bufferevent_setfd(d->retire, -1);
	bufferevent_free(d->retire);
	d->retire = NULL;
}

/*
 * Client: a relay proved up.  Every session waiting to try a leg tries
 * now, from the loop, though its backoff has not run out: a relay it
 * could not reach may be back.  One whose connect said wait tries the
 * same target again (that try did not happen).  The backoff starts
 * over, so those the relay's admission turns away in the rush try again
 * in 25 ms, not in the second their backoff had grown to while it was
 * down.  The daemon calls it when a TLS probe or a mesh link to a relay
 * comes up; a session's own resume after failed tries does too
 * (sess_leg_up).  There is no wake for a link that failed: those that
 * waited for it try at their backoff (an immediate try would make the
 * next link, and a relay that refuses at once would have them spin).
 */
void
sess_ctx_wake(struct sess_ctx *ctx)
{
	struct sess	*s;
	struct timeval	 tv = { 0, 0 };

	if (ctx == NULL)
		return;
	RB_FOREACH(s, sess_tree, &ctx->tree) {
		if (s->leg != NULL || s->dead || s->retry_ev == NULL ||
		    !evtimer_pending(s->retry_ev, NULL))
			continue;
		if (s->parked && s->opened && s->resume_tries > 0)
			s->resume_tries--;
		s->parked = 0;
		s->backoff_ms = 0;
		evtimer_add(s->retry_ev, &tv);
	}
}

/* Client: open a new leg to wherever the target is now. */
static void
sess_retry_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct sess		*s = arg;
	struct sess_dial	 d = { .fd = -1 };
	struct leg		*leg;
	const char		*why = "no target";
	int			 rv;

	if (s->leg != NULL || s->dead)
		return;
	s->parked = 0;
	if (s->opened)
		s->resume_tries++;
	/* A leg the server released after an earlier session: no connect. */
	if (s->ctx->ops.route != NULL && (leg = leg_idle_take(s->ctx,
	    s->ctx->ops.route(s, s->ctx->arg))) != NULL) {
		leg->s = s;
		s->leg = leg;
		leg_deadline(leg, s->ctx->conf.handshake_ms);
		sess_hello(s, leg);
		return;
	}
	if ((rv = s->ctx->ops.connect(s, s->ctx->arg, &d, &why)) != 0) {
		s->parked = rv == 1;
		sess_set_why(s, why);
		sess_retry_schedule(s);
		return;
	}
	if (d.x != NULL) {
		leg = leg_new_x(s->ctx, d.x, why);
		d.up = 1;
	} else if (d.bev != NULL)
		leg = leg_new(s->ctx, d.bev, why, XSOCK_CONNECTING);
	else
		leg = leg_new_fd(s->ctx, d.fd, why,
		    d.up ? 0 : XSOCK_CONNECTING);
	leg->s = s;
	leg->state = LEG_CONNECTING;
	leg->tuned = d.tuned;
	s->leg = leg;
	leg_deadline(leg, s->ctx->conf.handshake_ms);
	xsock_read_enable(leg->x, 1);
	sess_dial_retire(&d);
	/* A pooled leg is up: no round through the loop to say so. */
	if (d.bev == NULL && d.up)
		sess_hello(s, leg);
}

/* Client: the leg's connect completed; say hello. */
static void
sess_hello(struct sess *s, struct leg *leg)
{
	struct proto_hello	h;

	/*
	 * A HELLO NEW whose WELCOME never came may still have opened the
	 * session on the server, and we hold no secret to resume it: ask
	 * again under a fresh id.  Nothing reached the guest, so nothing
	 * can be duplicated; the server drops the orphan after its
	 * handshake timeout (sess_detach).
	 */
	if (!s->opened && s->new_tries++ > 0) {
		RB_REMOVE(sess_tree, &s->ctx->tree, s);
		s->id = sess_new_id(s->ctx);
		snprintf(s->idstr, sizeof(s->idstr), "%016" PRIx64, s->id);
		RB_INSERT(sess_tree, &s->ctx->tree, s);
	}
	memset(&h, 0, sizeof(h));
	h.version = s->version;
	h.sid = s->id;
	if (RAND_bytes(leg->nonce_c, sizeof(leg->nonce_c)) != 1)
		abort();	/* no nonce that is not random */
	memcpy(h.nonce, leg->nonce_c, sizeof(h.nonce));
	if (!s->opened) {
		EVP_PKEY_free(s->kx);
		if (kx_keygen(&s->kx, s->pub_c) != 0) {
			sess_close(s, PROTO_E_INTERNAL, "X25519 keygen failed");
			return;
		}
		h.kind = PROTO_HELLO_NEW;
		memcpy(h.pubkey, s->pub_c, sizeof(h.pubkey));
		h.guest_cid = s->cid;
		h.guest_port = s->port;
		strlcpy(h.host, s->host, sizeof(h.host));
		h.service = s->service;
		if (s->name != NULL)
			strlcpy(h.name, s->name, sizeof(h.name));
		/*
		 * An older server's header check refuses a HELLO past its
		 * limit as malformed, before it could say "version": one
		 * that only the window takes past it goes in version 4.
		 */
		if (s->version >= 5 && PROTO_HELLO_NEW_FIXED +
		    strlen(h.host) + strlen(h.name) > PROTO_HELLO_MAX_V4)
			s->version = h.version = 4;
		h.window = sess_wire_window(s->ctx);
	} else if (s->version >= 3) {
		/*
		 * The proof goes with the HELLO, over the nonce our secret
		 * implies; a server that has spent it answers CHALLENGE.
		 */
		h.kind = PROTO_HELLO_RESUME_PROOF;
		kx_ticket(s->secret, s->id, leg->nonce_s);
		h.next = sess_next(s);
		kx_proof(s->secret, s->id, leg->nonce_c, leg->nonce_s,
		    h.next, h.mac);
	} else
		h.kind = PROTO_HELLO_RESUME;
	frame_hello_add(s->ctx->scratch, &h);
	OPENSSL_cleanse(h.mac, sizeof(h.mac));
	leg_send(leg);
	leg->state = h.kind == PROTO_HELLO_RESUME_PROOF ? LEG_C_PROVEN :
	    LEG_C_HELLO;
	sess_enter_state(s, SESS_HANDSHAKE);
}

/* A leg now carries the stream: set it up and send what is owed. */
static void
sess_leg_up(struct sess *s, struct leg *leg, uint64_t peer_next)
{
	sess_spl_stop(s);	/* the server's old leg may still be up */
	leg->state = LEG_UP;
	/* Up: no deadline until it closes (an idle leg keeps no timer). */
	sess_timer_drop(&leg->deadline);
	/*
	 * A leg paused for backpressure reads nothing, so no read timeout
	 * runs; unacknowledged TCP data (our PINGs) then tells a dead peer.
	 * A leg kept from an earlier session has it already, and so has one
	 * its dialer set up ahead (a pre-warmed leg, warm.c).
	 */
	if (s->ctx->conf.keepalive_ms > 0 && !leg->reused && !leg->tuned)
		xaddr_dead_after(xsock_fd(leg->x),
		    s->ctx->conf.keepalive_ms * 3);
	xsock_set_lowat(leg->x, LEG_HIGH / 2);
	xsock_set_read_high(leg->x, LEG_READ_HIGH);
	xsock_set_timeout(leg->x, s->ctx->leg_tmo);
	/*
	 * The peer holds everything below peer_next: that is an ack.  What
	 * it lacks of what we had sent is unsent again.
	 */
	if (peer_next > s->acked_off) {
		sess_trim(s, peer_next);
		s->acked_off = peer_next;
	}
	/* What went out on the old leg and never arrived goes again. */
	s->resume_replay = s->sent_max > s->acked_off ?
	    s->sent_max - s->acked_off : 0;
	s->sent_off = sess_out_base(s);
	s->ack_asked = 0;	/* a PING on the old leg may be lost */
	leg->fin_sent = s->local_eof && peer_next > s->read_off;
	/* Up again: idle established sessions keep no spare timers. */
	sess_timer_drop(&s->hold_ev);
	sess_timer_drop(&s->retry_ev);
	s->backoff_ms = 0;
	/*
	 * Client: a resume that got through after failed tries shows the
	 * way is open again (a relay restarted, the appliance arrived):
	 * the sessions backing off try now (sess_ctx_wake), not at their
	 * backoff, which has grown to up to a second meanwhile.  At most
	 * once per RETRY_MIN_MS: the rush that follows succeeds after
	 * failures too, and need not scan every session again for each.
	 */
	if (s->ctx->role == SESS_CLIENT && s->opened && s->resume_tries > 1 &&
	    xtime_mono_ms() - s->ctx->woke_ms >= RETRY_MIN_MS) {
		s->ctx->woke_ms = xtime_mono_ms();
		if (s->ctx->ops.way_open != NULL)
			s->ctx->ops.way_open(s, s->ctx->arg);
		else
			sess_ctx_wake(s->ctx);
	}
	s->resume_tries = 0;
	sess_set_why(s, NULL);
	sess_enter_state(s, SESS_ESTABLISHED);
	if (!s->opened) {
		s->opened = 1;
		sess_emit(s, SESS_EV_OPEN, NULL);
	} else {
		s->resumes++;
		s->resume_ms = xtime_mono_ms() - s->detached_ms;
		s->ctx->resumes++;
		s->ctx->replay_bytes += s->resume_replay;
		s->ctx->resume_ms_sum += s->resume_ms;
		if (s->resume_ms > s->ctx->resume_ms_max)
			s->ctx->resume_ms_max = s->resume_ms;
		sess_emit(s, SESS_EV_RESUMED, leg->peer);
	}
	if (s->dead)
		return;
	/*
	 * Always tell the new leg what we delivered: an ACK sent on the old
	 * leg may have been lost, and the peer's window waits for it.  The
	 * server's went out with RESUMED already (ack_sent says so).
	 */
	sess_ack(s, 1);
	sess_local_take(s);
	sess_pump(s);
	sess_check_done(s);
}

/*
 * Drop acknowledged bytes below offset V (FIN's +1 aside): the replay,
 * and some unsent too when a resume says the peer has more than this
 * leg ever carried (sent_off was reset).
 */
static void
sess_trim(struct sess *s, uint64_t v)
{
	uint64_t	from = sess_out_base(s);

	if (v > s->read_off)
		v = s->read_off;
	if (v <= from)
		return;
	if (s->spl == NULL || sess_spl_trim(s, v) != 0) {
		sess_spl_stop(s);	/* beyond what R holds: copy mode */
		evbuffer_drain(s->out, v - from);
	}
	if (s->sent_off < v)
		s->sent_off = v;
	if (s->out != NULL && evbuffer_get_length(s->out) == 0)
		sess_bufs_drop(s);	/* caught up: idle sessions hold none */
}

/*
 * Send the frames in the scratch buffer on LEG: straight to its socket
 * when nothing is queued (xsock.h), else behind what is, and after the
 * rest of a DATA frame the socket had not taken.
 */
static void
leg_send(struct leg *leg)
{
	struct evbuffer	*sc = leg->ctx->scratch;

	leg_frame_finish(leg);
	(void)xsock_write(leg->x, sc, evbuffer_get_length(sc));
}

/* N more bytes of the unsent went to the leg's socket (or its queue). */
static void
sess_sent(struct sess *s, size_t n)
{
	if (s->sent_off < s->sent_max)
		s->replayed += (s->sent_max - s->sent_off < n) ?
		    s->sent_max - s->sent_off : n;
	s->sent_off += n;
	if (s->sent_off > s->sent_max)
		s->sent_max = s->sent_off;
}

/*
 * The rest of LEG's DATA frame, before any other frame: what the
 * socket does not take now is copied into its queue.
 */
static void
leg_frame_finish(struct leg *leg)
{
	struct sess	*s = leg->s;
	size_t		 n = leg->frame_rem;

	if (n == 0)
		return;
	if (s == NULL)
		abort();	/* unlinked from its session mid-frame */
	if (s->spl != NULL && s->sent_off >= s->spl->base)
		(void)xsock_write_pipe(leg->x, s->spl->u[0], n, NULL);
	else
		(void)xsock_write_ref(leg->x, leg->ctx->none, s->out,
		    s->sent_off - sess_out_base(s), n, NULL);
	sess_sent(s, n);
	leg->frame_rem = 0;
}

/*
 * Send unsent bytes on the leg while it has room; keep them.  A plain
 * leg's frames go from the out buffer's own memory, and only as far
 * as the socket takes them: the rest of a frame stays unsent
 * (frame_rem) and goes first when the socket says it takes more
 * (XSOCK_WRITTEN).  Copying every frame into a queue first was the
 * sender's largest user-space cost, and copying each frame's rest when
 * the socket was full the next.  A TLS leg queues up to LEG_HIGH for
 * the record layer.
 */
static void
sess_pump(struct sess *s)
{
	struct leg		*leg = s->leg;
	struct evbuffer		*sc, *hdr;
	size_t			 n, high, took;

	if (leg == NULL || leg->state != LEG_UP)
		return;
	sc = s->ctx->scratch;
	high = xsock_bev(leg->x) != NULL ? LEG_HIGH : 1;
	while (xsock_pending(leg->x) < high) {
		if (s->spl != NULL && s->sent_off >= s->spl->base) {
			if (sess_spl_frame(s, leg) != 0)
				break;
			continue;
		}
		if ((n = leg->frame_rem) > 0)
			hdr = s->ctx->none;
		else if (s->sent_off < s->read_off) {
			n = s->read_off - s->sent_off;
			if (n > PROTO_DATA_MAX_OF(s->version))
				n = PROTO_DATA_MAX_OF(s->version);
			sess_ack_piggyback(s);
			frame_data_hdr_add(sc, s->sent_off, n);
			hdr = sc;
		} else
			break;
		(void)xsock_write_ref(leg->x, hdr, s->out, s->sent_off -
		    sess_out_base(s), n, &took);
		sess_sent(s, took);
		if ((leg->frame_rem = n - took) > 0)
			break;
	}
	/* All spliced bytes gone: read the local stream again. */
	if (s->spl != NULL && s->local != NULL && !s->local_eof)
		xsock_read_enable(s->local, s->sent_off >= s->read_off &&
		    sess_local_room(s) > 0);
	if (s->local_eof && s->sent_off == s->read_off && !leg->fin_sent) {
		sess_ack_piggyback(s);
		frame_u64_add(sc, PROTO_FIN, s->read_off);
		leg_send(leg);
		leg->fin_sent = 1;
	}
	sess_ask_ack(s);
}

/*
 * A delayed ACK that is owed goes in front of the frames being put in
 * the scratch buffer: it leaves with them, in the same write.
 */
static void
sess_ack_piggyback(struct sess *s)
{
	uint64_t	off = sess_ack_off(s);

	if (s->ack_queued && off > s->ack_sent)
		sess_ack_add(s, off);
}

/* What an ACK says now: the delivered offset, and the FIN once shut. */
static uint64_t
sess_ack_off(const struct sess *s)
{
	return (s->deliv_off + (s->local_shut ? 1 : 0));
}

/*
 * Where a resume asks the peer to send from (PROOF, RESUMED): what we
 * received, and the FIN only once delivered, as in an ACK.
 */
static uint64_t
sess_next(const struct sess *s)
{
	return (s->recv_off + (s->local_shut ? 1 : 0));
}

/*
 * Whether the peer's NEXT (PROOF, RESUMED) is one we can send from:
 * nothing it acknowledged, nothing we have not read (+1 for our FIN).
 */
static int
sess_next_ok(const struct sess *s, uint64_t next)
{
	return (next >= s->acked_off &&
	    next <= s->read_off + (s->local_eof ? 1 : 0));
}

/* An ACK of OFF into the scratch buffer, to leave with what follows. */
static void
sess_ack_add(struct sess *s, uint64_t off)
{
	frame_u64_add(s->ctx->scratch, PROTO_ACK, off);
	s->ack_sent = off;
	sess_ack_unqueue(s);
}

/*
 * How much delivered makes an ACK go at once: half the window, at most
 * ACK_BYTES.  The sender still has half to send meanwhile, and each
 * ACK costs three processes a wakeup: a quarter of a 64 KiB window
 * made twice the ACKs, frames half as large and uploads a quarter
 * slower here (benchmarks.md, "Each end's window").
 */
static size_t
sess_ack_bytes(const struct sess *s)
{
	size_t	q = sess_window(s) / 2;

	return (q < ACK_BYTES ? q : ACK_BYTES);
}

/* Acknowledge what the local stream has taken: now, or soon. */
static void
sess_ack(struct sess *s, int now)
{
	struct sess_ctx	*ctx = s->ctx;
	struct timeval	 tv;
	uint64_t	 off = sess_ack_off(s);

	if (s->leg == NULL || s->leg->state != LEG_UP || off <= s->ack_sent)
		return;
	if (now || off - s->ack_sent >= sess_ack_bytes(s)) {
		sess_ack_add(s, off);
		leg_send(s->leg);
	} else if (!s->ack_queued) {
		/* One delay for all: the queue is in due order. */
		s->ack_due_ms = xtime_mono_ms() + ACK_DELAY_MS;
		TAILQ_INSERT_TAIL(&ctx->ackq, s, ack_entry);
		s->ack_queued = 1;
		if (!evtimer_pending(ctx->ack_ev, NULL)) {
			xtime_tv(ACK_DELAY_MS, &tv);
			evtimer_add(ctx->ack_ev, &tv);
		}
	}
}

/* Take S off the delayed-ACK queue, if it is on it. */
static void
sess_ack_unqueue(struct sess *s)
{
	if (!s->ack_queued)
		return;
	TAILQ_REMOVE(&s->ctx->ackq, s, ack_entry);
	s->ack_queued = 0;
}

/* The delayed ACKs that are due. */
static void
sess_ack_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct sess_ctx	*ctx = arg;
	struct sess	*s;
	struct timeval	 tv;
	long long	 now = xtime_mono_ms();

	while ((s = TAILQ_FIRST(&ctx->ackq)) != NULL && s->ack_due_ms <= now) {
		sess_ack_unqueue(s);
		sess_ack(s, 1);
	}
	if (s != NULL) {
		xtime_tv(s->ack_due_ms - now, &tv);
		evtimer_add(ctx->ack_ev, &tv);
	}
}

/*
 * Keepalive: a PING each period keeps the far end's read timer fed.
 * Each tick serves one slice of the sessions (by id), so a period's
 * PINGs do not all leave at once.
 */
static void
sess_ka_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct sess_ctx	*ctx = arg;
	struct sess	*s;
	unsigned	 slice = ctx->ka_slice++ % KA_SLICES;

	RB_FOREACH(s, sess_tree, &ctx->tree) {
		if (s->id % KA_SLICES != slice || s->leg == NULL ||
		    s->leg->state != LEG_UP ||
		    xsock_pending(s->leg->x) >= LEG_HIGH)
			continue;
		frame_u64_add(ctx->scratch, PROTO_PING,
		    (uint64_t)xtime_mono_ms());
		leg_send(s->leg);
	}
}

/* Both directions finished and acknowledged: the session is done. */
static void
sess_check_done(struct sess *s)
{
	if (s->dead || !s->local_shut || !s->local_eof ||
	    s->acked_off != s->read_off + 1)
		return;
	/* Our last ACK (of the peer's FIN) is queued on the leg: flush. */
	sess_ack(s, 1);
	sess_end(s, PROTO_E_NONE, "done", 0);
}

/* Room in our window for more of the local stream (sess_local_take). */
static size_t
sess_local_room(const struct sess *s)
{
	size_t	held = sess_held(s), cap = sess_window(s);

	if (!s->local_connected ||
	    (s->state != SESS_ESTABLISHED && !s->opened))
		return (0);
	return (held < cap ? cap - held : 0);
}

/* --- sending by splice (struct spl) ----------------------------- */

/*
 * Splice from the next byte read on: a plain leg and a local stream
 * the kernel splices, two pipes from the pool.  -1 if not.
 */
static int
sess_spl_start(struct sess *s)
{
	struct spl	*p;

	if (s->spl != NULL)
		return (0);
	if (s->leg == NULL || s->leg->state != LEG_UP ||
	    !xsock_splices(s->local, s->leg->x) || s->ctx->devnull == -1)
		return (-1);
	p = xcalloc(1, sizeof(*p));
	if (pipepool_get(s->ctx->pipes, p->u) == -1) {
		free(p);
		return (-1);
	}
	if (pipepool_get(s->ctx->pipes, p->r) == -1) {
		pipepool_put(s->ctx->pipes, p->u, 1);
		free(p);
		return (-1);
	}
	p->base = s->read_off;
	s->spl = p;
	return (0);
}

/*
 * Back to copies (a resume, a leg or kernel that will not splice, R
 * full of small pieces): what R and U hold goes to the end of the out
 * buffer, in order, once each.  The rest of a frame sent in part is
 * then the out buffer's, as the copy path expects.
 */
static void
sess_spl_stop(struct sess *s)
{
	struct spl	*p = s->spl;
	uint64_t	 rfrom, rend, uhead;

	if (p == NULL)
		return;
	s->spl = NULL;
	rfrom = sess_out_base(s) > p->base ? sess_out_base(s) : p->base;
	rend = rfrom + p->rlen;
	uhead = s->sent_off > p->base ? s->sent_off : p->base;
	if (p->rlen > 0 || s->read_off > uhead)
		sess_bufs(s);
	/* R: [rfrom, rend); U: [uhead, read_off), [uhead, rend) in both. */
	pipepool_copyout(p->r[0], s->out, p->rlen);
	if (rend > uhead)
		pipepool_drop(p->u[0], rend - uhead, s->ctx->devnull);
	pipepool_copyout(p->u[0], s->out, s->read_off - (rend > uhead ?
	    rend : uhead));
	pipepool_put(s->ctx->pipes, p->u, 1);
	pipepool_put(s->ctx->pipes, p->r, 1);
	free(p);
	if (s->out != NULL && evbuffer_get_length(s->out) == 0)
		sess_bufs_drop(s);
	/* Splicing read only with U empty; copies read within the window. */
	if (s->local != NULL && !s->local_eof)
		xsock_read_enable(s->local, sess_local_room(s) > 0);
}

/* The session's end: its pipes go, whatever they hold. */
static void
sess_spl_free(struct sess *s)
{
	if (s->spl == NULL)
		return;
	pipepool_put(s->ctx->pipes, s->spl->u, 0);
	pipepool_put(s->ctx->pipes, s->spl->r, 0);
	free(s->spl);
	s->spl = NULL;
}

/*
 * Acknowledged below V: from the out buffer's part, then from R.  -1,
 * with nothing dropped, when V is beyond what R holds.  Once all is
 * acknowledged, the pipes go back to the pool (nothing to move): an
 * idle session holds none, and the next read that fills its buffer
 * takes them again.
 */
static int
sess_spl_trim(struct sess *s, uint64_t v)
{
	struct spl	*p = s->spl;
	uint64_t	 from = sess_out_base(s), rfrom;

	rfrom = from > p->base ? from : p->base;
	if (v > rfrom && v - rfrom > p->rlen)
		return (-1);
	if (from < p->base)
		evbuffer_drain(s->out, (v < p->base ? v : p->base) - from);
	if (v > rfrom) {
		pipepool_drop(p->r[0], v - rfrom, s->ctx->devnull);
		p->rlen -= v - rfrom;
		p->rfull = 0;
	}
	if (p->rlen == 0 && v == s->read_off && s->sent_off == s->read_off) {
		s->spl_want = 0;	/* until a read fills again */
		sess_spl_stop(s);
	}
	return (0);
}

/*
 * Read into U, only once all read before went (so EAGAIN means the
 * local stream has no more, never a full pipe, and no frame from the
 * out buffer reaches past spl->base): as xsock_read(), or -2 when the
 * copy path reads instead.  A small read says the bulk is over.
 */
static ssize_t
sess_spl_read(struct sess *s, size_t room)
{
	size_t	want = PROTO_DATA_MAX_OF(s->version);
	ssize_t	n;

	if (s->sent_off < s->read_off) {
		errno = EAGAIN;
		return (-1);
	}
	n = xsock_read_pipe(s->local, s->spl->u[1], room < want ? room :
	    want);
	if (n == -1 && errno == EBUSY) {
		sess_spl_stop(s);
		s->spl_want = 0;
		return (-2);
	}
	if (n > 0)
		s->spl_want = (size_t)n >= SPLICE_MIN;
	return (n);
}

/*
 * One step of sending spliced bytes on LEG: the rest of the frame its
 * socket did not take, or a new frame whose body is first tee(2)d into
 * R.  Nonzero when the socket takes no more now, R is full while the
 * ACKs that empty it are due, or all is sent.
 */
static int
sess_spl_frame(struct sess *s, struct leg *leg)
{
	struct spl	*p = s->spl;
	struct evbuffer	*sc = s->ctx->scratch;
	size_t		 n, took;
	ssize_t		 t;

	if ((n = leg->frame_rem) == 0) {
		if (s->sent_off >= s->read_off)
			return (1);
		n = s->read_off - s->sent_off;
		if (n > PROTO_DATA_MAX_OF(s->version))
			n = PROTO_DATA_MAX_OF(s->version);
		if ((t = tee(p->u[0], p->r[1], n, SPLICE_F_NONBLOCK)) <= 0) {
			/*
			 * R is out of slots.  With a window's worth in it,
			 * ACKs come and empty it; with less (many small
			 * pieces) they may wait: copies then.
			 */
			if (t < 0 && errno == EAGAIN && p->rlen >= SPL_R_MIN) {
				p->rfull = 1;
				/* The ACKs that empty R are on the leg. */
				(void)leg_ack_wake(s);
				return (1);
			}
			sess_spl_stop(s);
			s->spl_want = 0;	/* until a read fills again */
			return (0);
		}
		n = (size_t)t;
		p->rlen += n;
		sess_ack_piggyback(s);
		frame_data_hdr_add(sc, s->sent_off, n);
		(void)xsock_write_more(leg->x, sc, evbuffer_get_length(sc));
		leg->frame_rem = n;
	}
	if (xsock_write_pipe(leg->x, p->u[0], n, &took) != 0) {
		sess_spl_stop(s);	/* its rest is the out buffer's now */
		return (0);
	}
	s->ctx->spliced_out += took;
	sess_sent(s, took);
	leg->frame_rem = n - took;
	return (leg->frame_rem > 0);
}

/*
 * The window, what this session sends at most beyond the peer's last
 * ACK: our replay_max, or the peer's if smaller (it said so in HELLO
 * NEW or WELCOME, version 5).  Sending no more than the peer holds for
 * its local reader means it never has to stop reading its leg, and the
 * ACKs on it, for that reader (leg_local_cap).
 */
static size_t
sess_window(const struct sess *s)
{
	size_t	w = s->ctx->conf.replay_max;

	return (s->peer_win != 0 && s->peer_win < w ? s->peer_win : w);
}

/* The window we announce: our replay_max, as the wire can carry it. */
static uint32_t
sess_wire_window(const struct sess_ctx *ctx)
{
	size_t	w = ctx->conf.replay_max;

	if (w < PROTO_WINDOW_MIN)
		return (PROTO_WINDOW_MIN);
	return (w > UINT32_MAX ? UINT32_MAX : (uint32_t)w);
}

/*
 * What counts against our window: every byte read beyond the peer's
 * last ACK (sess_local_take).
 */
static size_t
sess_held(const struct sess *s)
{
	return (s->read_off - (s->win_off < s->read_off ? s->win_off :
	    s->read_off));
}

/* Our window is shut: nothing more is read until the peer ACKs. */
static int
sess_window_shut(const struct sess *s)
{
	return (sess_held(s) >= sess_window(s));
}

/*
 * Our sending waits for the peer's ACK: the window is shut, or the
 * replay pipe is out of slots.  The ACK is on the leg, so the leg must
 * not wait for the local reader meanwhile (leg_wait_local).
 */
static int
sess_wants_ack(const struct sess *s)
{
	return (sess_window_shut(s) || (s->spl != NULL && s->spl->rfull));
}

/*
 * Sending waits for an ACK and all that can go has gone: ask for it with
 * a PING, once until an ACK comes (the peer answers a PING with the
 * ACK it owes).  An older peer (version 4) whose own window is larger
 * acknowledges only a quarter of that at once, which may be all of
 * ours: without the PING ours would stay shut for its delay each time.
 */
static void
sess_ask_ack(struct sess *s)
{
	struct leg	*leg = s->leg;

	if (s->ack_asked || leg == NULL || leg->state != LEG_UP ||
	    leg->frame_rem > 0 || xsock_pending(leg->x) >= LEG_HIGH ||
	    !sess_wants_ack(s) || (s->sent_off < s->read_off &&
	    (s->spl == NULL || !s->spl->rfull)))
		return;
	s->ack_asked = 1;
	sess_ack_piggyback(s);
	frame_u64_add(s->ctx->scratch, PROTO_PING, (uint64_t)xtime_mono_ms());
	leg_send(leg);
}

/*
 * Read what the local stream has into the out buffer, as far as the
 * window allows (the rest waits in the kernel: backpressure), then
 * put it on the leg.  Reading waits for the session to be open, and for
 * a backend's connect.
 */
static void
sess_local_take(struct sess *s)
{
	struct leg	*leg;
	size_t		 room, want;
	ssize_t		 n = 0;

	if (s->local == NULL || s->local_eof)
		return;
	/*
	 * The window: never more than sess_window() beyond what the peer said
	 * its local stream took (its last ACK).  A resume's "next" is what
	 * the peer received, not what it delivered, so it moves acked_off
	 * (the replay's start) but not this base; otherwise bytes the peer
	 * still holds for a slow local reader would not count, and it
	 * could have to stop reading its leg (and our ACKs) to keep within
	 * its bound.  Held bytes (the out buffer) are within the window.
	 */
	room = sess_local_room(s);
	if (room > 0 && s->spl == NULL && s->spl_want)
		(void)sess_spl_start(s);
	if (room > 0) {
		if (s->spl == NULL || (n = sess_spl_read(s, room)) == -2) {
			sess_bufs(s);
			want = room < IO_CHUNK ? room : IO_CHUNK;
			n = xsock_read(s->local, s->out, want);
			/* A read that fills: bulk, which splicing sends. */
			s->spl_want = n >= (ssize_t)SPLICE_MIN &&
			    (size_t)n == want;
		}
		if (n > 0) {
			s->read_off += (size_t)n;
			room -= (size_t)n;
		} else if (n == 0)
			s->local_eof = 1;
		else if (errno != EAGAIN && errno != EWOULDBLOCK) {
			sess_local_fail(s, "read error", errno);
			return;
		}
		if (s->read_off == s->acked_off)
			sess_bufs_drop(s);	/* nothing came, none held */
	}
	/*
	 * Splicing reads again once all it read went (sess_pump); until
	 * then not at all, or a session with no leg to send on would wake
	 * for its readable local stream on every pass of the loop.
	 */
	xsock_read_enable(s->local, room > 0 && !s->local_eof &&
	    (s->spl == NULL || s->sent_off >= s->read_off));
	leg = s->leg;
	if (leg_ack_wake(s)) {
		/* The ACK that opens our window is on the leg. */
		leg_read(leg);
		if (s->dead)
			return;
	}
	sess_pump(s);
	if (s->local_eof)
		sess_check_done(s);
}

/*
 * Once every byte before the peer's FIN has been written to the local
 * stream, shut its write side: that is the FIN delivered, and it is
 * acknowledged as one more offset.  Never on a socket still
 * connecting, where Linux would take shutdown() as an abort.
 */
static void
sess_local_shut(struct sess *s)
{
	if (s->local == NULL || s->local_shut || !s->fin_in_seen ||
	    !s->local_connected || s->deliv_off != s->fin_in ||
	    xsock_pending(s->local) != 0)
		return;
	xsock_shutdown(s->local);
	s->local_shut = 1;
	/*
	 * Soon, not now: a local peer that closes in turn (the usual end
	 * of a request) makes our FIN, and this ACK leaves with it.  A
	 * finished session flushes it at once (sess_check_done).
	 */
	sess_ack(s, 0);
	sess_check_done(s);
}

/* The local stream failed (WHAT, ERR): the session ends on both sides. */
static void
sess_local_fail(struct sess *s, const char *what, int err)
{
	char	msg[160];

	snprintf(msg, sizeof(msg), "%s connection %s: %s",
	    s->ctx->role == SESS_CLIENT ? "guest" : "backend", what,
	    err != 0 ? strerror(err) : "unknown");
	sess_close(s, s->ctx->role == SESS_SERVER ? PROTO_E_BACKEND :
	    PROTO_E_RESET, msg);
}

/* The local stream's one callback: readable, written, connected, failed. */
static void
sess_local_cb(struct xsock *x, enum xsock_event ev, size_t n, void *arg)
{
	struct sess	*s = arg;
	struct leg	*leg;

	switch (ev) {
	case XSOCK_READABLE:
		sess_local_take(s);
		break;
	case XSOCK_WRITTEN:
		sess_delivered(s, n);
		/* Drained below the low mark: let the leg in again. */
		leg = s->leg;
		if (!s->dead && leg != NULL && xsock_pending(x) == 0)
			leg->impatient = 0;
		if (!s->dead && leg != NULL && leg->paused &&
		    xsock_pending(x) < LOCAL_LOW) {
			leg_wake(leg);
			leg_read(leg);
		}
		break;
	case XSOCK_CONNECTED:
		s->local_connected = 1;
		if (s->state == SESS_ESTABLISHED)
			sess_local_take(s);
		if (!s->dead)
			sess_local_shut(s);
		break;
	case XSOCK_ERROR:
		sess_local_fail(s, !s->local_connected ? "error" :
		    xsock_pending(x) > 0 ? "write error" : "error", (int)n);
		break;
	case XSOCK_TIMEOUT:
		break;		/* none set on a local stream */
	}
}

/* N more bytes left for the local peer (a PROXY header's first). */
static void
sess_delivered(struct sess *s, size_t n)
{
	size_t	skip;

	if (s->pre_skip > 0) {
		skip = n < s->pre_skip ? n : s->pre_skip;
		s->pre_skip -= skip;
		n -= skip;
	}
	s->deliv_off += n;
	sess_ack(s, 0);
	sess_local_shut(s);
}

/* --- legs --------------------------------------------------------- */

/*
 * A leg on BEV, which the daemon made (sess_ops.connect, or accepted):
 * a TLS one stays a bufferevent under the xsock, a plain one gives up
 * its socket to an xsock (a bufferevent is ~1.1 KiB of every idle
 * session), and what its buffers already hold: input the daemon read
 * ahead (the locator's gate reads past its caller line) becomes the
 * leg's, output still goes first.  FLAGS: XSOCK_CONNECTING for a
 * client's leg.
 */
static struct leg *
leg_new(struct sess_ctx *ctx, struct bufferevent *bev, const char *peer,
    int flags)
{
	struct leg	*leg;
	struct evbuffer	*in, *out;
	int		 fd;

	if (tls_bev_is_tls(bev)) {
		leg = xcalloc(1, sizeof(*leg));
		leg->ctx = ctx;
		leg->peer = xstrdup(peer);
		leg->x = xsock_new_bev(bev, leg_io_cb, leg);
		return (leg);
	}
	fd = bufferevent_getfd(bev);
	/* First: it unfreezes the buffers' ends, and keeps the socket. */
	bufferevent_setfd(bev, -1);
	leg = leg_new_fd(ctx, fd, peer, flags);
	in = bufferevent_get_input(bev);
	if (evbuffer_get_length(in) > 0) {
		if ((leg->in = evbuffer_new()) == NULL)
			abort();
		evbuffer_add_buffer(leg->in, in);
	}
	out = bufferevent_get_output(bev);
	(void)xsock_write(leg->x, out, evbuffer_get_length(out));
	bufferevent_free(bev);
	return (leg);
}

/* A leg on a plain socket FD (XSOCK_CONNECTING: a connect under way). */
static struct leg *
leg_new_fd(struct sess_ctx *ctx, int fd, const char *peer, int flags)
{
	return (leg_new_x(ctx, xsock_new(ctx->base, fd, flags, NULL, NULL),
	    peer));
}

/* A leg on X, which it takes (its callback is the leg's from now on). */
static struct leg *
leg_new_x(struct sess_ctx *ctx, struct xsock *x, const char *peer)
{
	struct leg	*leg;

	leg = xcalloc(1, sizeof(*leg));
	leg->ctx = ctx;
	leg->peer = xstrdup(peer);
	leg->x = x;
	xsock_set_cb(x, leg_io_cb, leg);
	return (leg);
}

static void
leg_free(struct leg *leg)
{
	if (leg == NULL)
		return;
	sess_timer_drop(&leg->deadline);
	xsock_free(leg->x);
	leg->x = NULL;
	if (leg->in != NULL)
		evbuffer_free(leg->in);
	leg->in = NULL;
	free(leg->peer);
	free(leg);
}

static void
leg_unlist(struct leg *leg)
{
	struct sess_ctx	*ctx = leg->ctx;

	if (leg->state == LEG_S_HELLO || leg->state == LEG_S_CHALLENGED) {
		ctx->npending--;
		TAILQ_REMOVE(&ctx->legs, leg, entry);
	} else if (leg->state == LEG_CLOSING || leg->state == LEG_C_DONE)
		TAILQ_REMOVE(&ctx->legs, leg, entry);
	else if (leg->state == LEG_C_IDLE || leg->state == LEG_S_IDLE) {
		ctx->nidle--;
		TAILQ_REMOVE(&ctx->idle, leg, entry);
	}
}

/* Drop a leg now (its socket closes) and free it from the reaper. */
static void
leg_free_later(struct leg *leg)
{
	if (leg->state == LEG_DEAD)
		return;
	leg_unlist(leg);
	if (leg->s != NULL && leg->s->leg == leg)
		leg->s->leg = NULL;
	leg->s = NULL;
	leg->frame_rem = 0;	/* the peer sees a cut frame, then EOF */
	leg->state = LEG_DEAD;
	sess_timer_drop(&leg->deadline);
	xsock_stop(leg->x);
	TAILQ_INSERT_TAIL(&leg->ctx->dead_legs, leg, entry);
	sess_reap_schedule(leg->ctx);
}

/*
 * Close a leg after flushing its output, optionally with a last ERROR
 * or CLOSE frame (TYPE 0: none).
 */
static void
leg_close(struct leg *leg, int type, int code, const char *reason)
{
	if (leg->state == LEG_DEAD || leg->state == LEG_CLOSING)
		return;
	if (type != 0) {
		frame_error_add(leg->ctx->scratch, type, code, reason);
		leg_send(leg);
	}
	leg_unlist(leg);
	if (leg->s != NULL && leg->s->leg == leg)
		leg->s->leg = NULL;
	leg->s = NULL;
	leg->frame_rem = 0;	/* the peer sees a cut frame, then EOF */
	leg->state = LEG_CLOSING;
	TAILQ_INSERT_TAIL(&leg->ctx->legs, leg, entry);
	/*
	 * Keep reading (and discarding) until the peer closes too: closing
	 * with unread input would make the kernel send a reset, which can
	 * destroy our last frame before the peer reads it.
	 */
	xsock_set_lowat(leg->x, 0);
	xsock_set_read_high(leg->x, 0);
	xsock_set_timeout(leg->x, NULL);
	leg_wake(leg);		/* before the flush deadline it arms */
	leg_deadline(leg, FLUSH_MS);
	if (xsock_pending(leg->x) == 0)
		leg_written(leg);
}

/* Refuse a leg that is not (yet, or no longer) any session's. */
static void
leg_refuse(struct leg *leg, int code, const char *reason)
{
	struct sess_ctx	*ctx = leg->ctx;

	if (ctx->role == SESS_SERVER && ctx->ops.refused != NULL)
		ctx->ops.refused(leg->peer, reason, ctx->arg);
	leg_close(leg, PROTO_ERROR, code, reason);
}

/*
 * Server: LEG (new, or idle and now saying HELLO) waits for a handshake
 * under its deadline; nonzero when it was refused instead.
 */
static int
leg_pending(struct leg *leg)
{
	struct sess_ctx	*ctx = leg->ctx;

	leg->state = LEG_S_HELLO;
	TAILQ_INSERT_TAIL(&ctx->legs, leg, entry);
	ctx->npending++;
	if (ctx->conf.max_pending > 0 &&
	    ctx->npending > ctx->conf.max_pending) {
		leg_refuse(leg, PROTO_E_LIMIT,
		    "too many handshakes in progress");
		return (-1);
	}
	/* An absolute deadline: a byte now and then must not extend it. */
	leg_deadline(leg, ctx->conf.handshake_ms);
	return (0);
}

/*
 * A session that finished cleanly leaves its leg for the next one.  The
 * server says RELEASE (nothing more of session SID follows on the leg)
 * and waits for a HELLO; the client waits for that RELEASE, which comes
 * once the server has read our last ACK, and only then offers the leg
 * to its next session.  Either end closes it when it keeps enough idle
 * legs already, and so does a server with idle_max 0, which says no
 * RELEASE: a client that never hears one closes after FLUSH_MS.
 */
static void
leg_retire(struct leg *leg, uint64_t sid)
{
	struct sess_ctx	*ctx = leg->ctx;

	if (ctx->conf.idle_max == 0 || ctx->nidle >= ctx->conf.idle_max) {
		leg_close(leg, 0, 0, NULL);
		return;
	}
	leg->sid = sid;
	leg->impatient = 0;
	leg->reused = 1;
	xsock_set_lowat(leg->x, 0);
	xsock_set_read_high(leg->x, PROTO_HANDSHAKE_MAX * 2);
	xsock_set_timeout(leg->x, NULL);
	leg_wake(leg);
	if (ctx->role == SESS_SERVER) {
		frame_u64_add(ctx->scratch, PROTO_RELEASE, sid);
		leg_send(leg);
		leg->state = LEG_S_IDLE;
		TAILQ_INSERT_HEAD(&ctx->idle, leg, entry);
		ctx->nidle++;
		leg_deadline(leg, IDLE_SERVER_MS);
	} else {
		leg->state = LEG_C_DONE;
		TAILQ_INSERT_TAIL(&ctx->legs, leg, entry);
		leg_deadline(leg, FLUSH_MS);
	}
}

/* Client: the server released LEG; keep it for the next session. */
static int
leg_released(struct leg *leg, const uint8_t *p, size_t len)
{
	struct sess_ctx	*ctx = leg->ctx;
	uint64_t	 sid;

	if (frame_u64_decode(p, len, &sid) != 0 || sid != leg->sid) {
		leg_violation(leg, "RELEASE of another session", 0);
		return (-1);
	}
	if (ctx->nidle >= ctx->conf.idle_max || xsock_pending(leg->x) > 0) {
		leg_close(leg, 0, 0, NULL);
		return (-1);
	}
	leg_unlist(leg);
	leg->state = LEG_C_IDLE;
	TAILQ_INSERT_HEAD(&ctx->idle, leg, entry);
	ctx->nidle++;
	leg_deadline(leg, IDLE_MS);
	return (0);
}

/* Client: the newest idle leg to DEST (NULL: none), out of the pool. */
static struct leg *
leg_idle_take(struct sess_ctx *ctx, const char *dest)
{
	struct leg	*leg;

	if (dest == NULL)
		return (NULL);
	TAILQ_FOREACH(leg, &ctx->idle, entry) {
		if (leg->state != LEG_C_IDLE || strcmp(leg->peer, dest) != 0)
			continue;
		leg_unlist(leg);
		leg->state = LEG_CONNECTING;
		leg->reused = 1;
		ctx->reused++;
		return (leg);
	}
	return (NULL);
}

/* Server: a new leg arrived. */
void
sess_accept(struct sess_ctx *ctx, struct bufferevent *bev, const char *peer)
{
	struct leg	*leg;

	leg = leg_new(ctx, bev, peer, 0);
	if (leg_pending(leg) != 0)
		return;
	xsock_set_read_high(leg->x, PROTO_HANDSHAKE_MAX * 2);
	xsock_read_enable(leg->x, 1);
	/* Frames the daemon read ahead are taken now: no event says so. */
	bev = xsock_bev(leg->x);
	if (leg->in != NULL || (bev != NULL &&
	    evbuffer_get_length(bufferevent_get_input(bev)) > 0))
		leg_read(leg);
}

/* The leg broke under a session (or before it had one). */
static void
leg_lost(struct leg *leg, const char *reason)
{
	struct sess	*s = leg->s;

	/*
	 * An idle leg that failed under its first HELLO was most likely
	 * closed by the far end meanwhile: a fresh leg goes at once.
	 */
	if (s != NULL && leg->reused && (leg->state == LEG_C_HELLO ||
	    leg->state == LEG_C_PROVEN))
		s->backoff_ms = 0;
	if (s != NULL && s->leg == leg)
		sess_detach(s, reason);
	else
		leg_free_later(leg);
}

/* A leg took too long to finish its handshake or its last flush. */
static void
leg_deadline_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct leg	*leg = arg;

	if (leg->state == LEG_CLOSING)
		leg_free_later(leg);
	else if (leg->state == LEG_UP && leg->waiting) {
		/* A local reader that takes nothing: copy, as before. */
		leg_wake(leg);
		leg->impatient = 1;
		leg_read(leg);
	} else if (leg->state != LEG_UP && leg->state != LEG_DEAD)
		leg_lost(leg, "handshake timed out");
}

/*
 * The leg failed: WHAT is BEV_EVENT_EOF (the peer closed), _TIMEOUT
 * (no keepalive) or _ERROR (ERR, or TLS's own reason).
 */
static void
leg_failed(struct leg *leg, short what, int err)
{
	struct bufferevent	*bev = xsock_bev(leg->x);
	char			 msg[300];
	const char		*why = bev != NULL ? tls_bev_error(bev) : NULL;
	int			 tlsfail = why != NULL;

	if (why == NULL && err != 0)
		why = strerror(err);
	if (leg->state == LEG_CLOSING) {
		leg_free_later(leg);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		snprintf(msg, sizeof(msg), "%s timed out%s",
		    leg->state == LEG_UP ? "mesh leg" : "handshake",
		    leg->state == LEG_UP ? " (no keepalive)" : "");
	else if (what & BEV_EVENT_EOF)
		snprintf(msg, sizeof(msg), "mesh leg closed by peer");
	else
		snprintf(msg, sizeof(msg), "mesh leg %s: %s",
		    leg->state == LEG_CONNECTING ? "connect failed" : "error",
		    why != NULL ? why : "unknown error");
	/* A server leg that failed TLS never reached HELLO: say so. */
	if (tlsfail && leg->s == NULL && leg->state == LEG_S_HELLO &&
	    leg->ctx->ops.refused != NULL)
		leg->ctx->ops.refused(leg->peer, msg, leg->ctx->arg);
	leg_lost(leg, msg);
}

/* The leg's one callback: readable, written, connected, failed. */
static void
leg_io_cb(struct xsock *x, enum xsock_event ev, size_t n, void *arg)
{
	struct leg	*leg = arg;

	switch (ev) {
	case XSOCK_READABLE:
		leg_read(leg);
		break;
	case XSOCK_WRITTEN:
		leg_written(leg);
		break;
	case XSOCK_CONNECTED:
		if (leg->s != NULL && leg->state == LEG_CONNECTING)
			sess_hello(leg->s, leg);
		break;
	case XSOCK_TIMEOUT:
		leg_failed(leg, BEV_EVENT_TIMEOUT, 0);
		break;
	case XSOCK_ERROR:
		leg_failed(leg, BEV_EVENT_ERROR, (int)n);
		break;
	}
}

/* The leg's queue went out (to the low mark, on TLS). */
static void
leg_written(struct leg *leg)
{
	if (leg->state == LEG_CLOSING) {
		/* All sent: half-close and wait for the peer's EOF. */
		if (xsock_pending(leg->x) == 0)
			xsock_shutdown(leg->x);
		return;
	}
	if (leg->state == LEG_UP && leg->s != NULL &&
	    xsock_pending(leg->x) <= LEG_HIGH / 2)
		sess_pump(leg->s);
}

/* A protocol violation on a leg: this leg goes, the session stays. */
static void
leg_violation(struct leg *leg, const char *what, int e)
{
	struct sess	*s;
	char		 msg[200];

	snprintf(msg, sizeof(msg), "%s%s%s", what, e != 0 ? ": " : "",
	    e != 0 ? frame_strerror(e) : "");
	if (leg->s == NULL) {
		leg_refuse(leg, PROTO_E_MALFORMED, msg);
		return;
	}
	frame_error_add(leg->ctx->scratch, PROTO_ERROR, PROTO_E_MALFORMED,
	    msg);
	leg_send(leg);
	s = leg->s;
	leg_close(leg, 0, 0, NULL);	/* unlinks it from s */
	sess_detach(s, msg);
}

static int	leg_handshake(struct leg *, struct frame_hdr *,
		    const uint8_t *);
static int	leg_stream(struct leg *, struct frame_hdr *, struct evbuffer *);
static void	leg_framed(struct leg *, const struct frame_hdr *);
static int	leg_splices(struct leg *, struct frame_hdr *,
		    struct evbuffer *);
static int	leg_data(struct leg *, struct frame_hdr *, struct evbuffer *,
		    size_t);
static ssize_t	leg_body(struct leg *);
static uint64_t	leg_data_off(struct evbuffer *);
static void	leg_backpressure(struct leg *);
static size_t	leg_local_cap(const struct sess *);
static int	leg_wait_local(struct leg *);

/*
 * Parse the frames in LEG's input: handshake frames are small and
 * copied; DATA moves.  Nonzero when the leg stopped taking frames
 * (paused, closed, refused).
 */
static int
leg_frames(struct leg *leg)
{
	struct evbuffer		*in = leg->in;
	struct frame_hdr	 h;
	uint8_t			 buf[PROTO_HDR_LEN + PROTO_HANDSHAKE_MAX];
	int			 e;

	for (;;) {
		if (leg->state == LEG_DEAD || leg->state == LEG_CLOSING ||
		    leg->paused)
			return (-1);
		if ((e = frame_peek(in, &h)) == FRAME_EAGAIN)
			return (0);
		if (e != FRAME_OK) {
			leg_violation(leg, "bad frame header", e);
			return (-1);
		}
		/*
		 * Refused from its header, before waiting for the rest: a
		 * handshake leg reads at most PROTO_HANDSHAKE_MAX * 2.
		 */
		if (leg->state != LEG_UP && h.len > PROTO_HANDSHAKE_MAX) {
			leg_violation(leg, "oversized handshake frame", 0);
			return (-1);
		}
		if (leg->state == LEG_UP && h.type == PROTO_DATA &&
		    leg_splices(leg, &h, in)) {
			/* Its start here, its body from the socket. */
			leg_framed(leg, &h);
			if (leg_data(leg, &h, in, evbuffer_get_length(in) -
			    PROTO_HDR_LEN - 8) != 0)
				return (-1);
			return (0);
		}
		if (evbuffer_get_length(in) < PROTO_HDR_LEN + h.len)
			return (0);
		if (leg->state != LEG_UP) {
			evbuffer_remove(in, buf, PROTO_HDR_LEN + h.len);
			if (leg_handshake(leg, &h, buf + PROTO_HDR_LEN) != 0)
				return (-1);
			continue;
		}
		/* A session that just finished may leave the leg idle. */
		if (leg_stream(leg, &h, in) != 0 && leg->state == LEG_UP)
			return (-1);
	}
}

/*
 * Read what the leg has, up to what its state may hold (a handshake's
 * frames, one DATA frame and a bit), and take the frames, until the
 * socket has no more or the leg stops taking.  A closing leg reads and
 * discards until EOF.  The input exists only while it holds bytes.
 */
static void
leg_read(struct leg *leg)
{
	size_t	cap, have;
	ssize_t	n;

	for (;;) {
		if (leg->state == LEG_DEAD || leg->paused)
			break;
		if (leg->in == NULL && (leg->in = evbuffer_new()) == NULL)
			abort();
		if (leg->body > 0 && (leg->state != LEG_UP || leg->s == NULL))
			leg->body = 0;	/* the session went: discarded */
		if (leg->body > 0) {
			if ((n = leg_body(leg)) > 0)
				continue;
			if (n == 0)
				leg_failed(leg, BEV_EVENT_EOF, 0);
			else if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR)
				leg_failed(leg, BEV_EVENT_ERROR, errno);
			break;
		}
		have = evbuffer_get_length(leg->in);
		/*
		 * After a spliced body, the next frame's header alone: a
		 * larger read would copy the start of its body.
		 */
		cap = leg->state == LEG_UP ? (leg->headers && have == 0 ?
		    PROTO_HDR_LEN + 8 : LEG_READ_HIGH) :
		    leg->state == LEG_CLOSING ? IO_CHUNK :
		    PROTO_HANDSHAKE_MAX * 2;
		n = -1;
		errno = EAGAIN;
		if (have < cap)
			n = xsock_read(leg->x, leg->in, cap - have);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			leg_failed(leg, BEV_EVENT_ERROR, errno);
			break;
		}
		if (leg->state == LEG_CLOSING)
			evbuffer_drain(leg->in, evbuffer_get_length(leg->in));
		else if (leg_frames(leg) != 0 && (n != 0 || leg->paused))
			break;		/* paused: an EOF waits its turn */
		if (n == 0) {
			leg_failed(leg, BEV_EVENT_EOF, 0);
			break;
		}
		if (n < 0)
			break;
	}
	if (leg->in != NULL && evbuffer_get_length(leg->in) == 0) {
		evbuffer_free(leg->in);
		leg->in = NULL;
	}
}

/* --- handshake ---------------------------------------------------- */

static int	leg_server_hello(struct leg *, const uint8_t *, size_t);
static int	leg_server_proof(struct leg *, const uint8_t *, size_t);
static int	leg_server_resume(struct leg *, struct sess *, uint64_t, int);
static int	leg_server_ticket(struct leg *, struct sess *,
		    const struct proto_hello *);

/* Whether an ERROR during handshake is worth another try. */
static int
proto_code_transient(int code)
{
	return (code == PROTO_E_NOT_APPLIANCE || code == PROTO_E_LIMIT ||
	    code == PROTO_E_SHUTDOWN || code == PROTO_E_INTERNAL ||
	    code == PROTO_E_OVERTAKEN);
}

/* One handshake frame; nonzero when the leg is no longer usable. */
static int
leg_handshake(struct leg *leg, struct frame_hdr *h, const uint8_t *p)
{
	struct sess_ctx		*ctx = leg->ctx;
	struct sess		*s = leg->s;
	struct proto_welcome	 w;
	struct proto_challenge	 c;
	struct proto_proof	 pr;
	struct proto_error	 er;
	char			 msg[PROTO_REASON_MAX + 64];
	uint64_t		 next;
	int			 e;

	switch (leg->state) {
	case LEG_S_HELLO:
		if (h->type != PROTO_HELLO)
			break;
		return (leg_server_hello(leg, p, h->len));
	case LEG_S_CHALLENGED:
		if (h->type != PROTO_PROOF)
			break;
		return (leg_server_proof(leg, p, h->len));
	case LEG_S_IDLE:
		if (h->type == PROTO_HELLO) {
			leg_unlist(leg);
			ctx->reused++;
			if (leg_pending(leg) != 0)
				return (-1);
			return (leg_server_hello(leg, p, h->len));
		}
		/* FALLTHROUGH */
	case LEG_C_DONE:
		if (h->type == PROTO_RELEASE && leg->state == LEG_C_DONE)
			return (leg_released(leg, p, h->len));
		/* The finished session's last ACK or keepalive. */
		if (h->type == PROTO_ACK || h->type == PROTO_PING ||
		    h->type == PROTO_PONG)
			return (0);
		break;
	case LEG_C_HELLO:
	case LEG_C_PROOF:
	case LEG_C_PROVEN:
		if (h->type == PROTO_ERROR) {
			if ((e = frame_error_decode(p, h->len, &er)) != 0) {
				leg_violation(leg, "bad ERROR frame", e);
				return (-1);
			}
			snprintf(msg, sizeof(msg), "refused by appliance end "
			    "(%s): %s", frame_strcode(er.code), er.reason);
			if (er.code == PROTO_E_DONE && s->local_eof &&
			    s->local_shut)
				/* Only the last ACK was missing. */
				sess_end(s, PROTO_E_NONE, "done", 0);
			else if (er.code == PROTO_E_VERSION && !s->opened &&
			    s->version > PROTO_VERSION_MIN) {
				/*
				 * An older appliance end: again, one version
				 * down, until it speaks ours.
				 */
				s->version--;
				s->backoff_ms = 0;
				sess_detach(s, msg);
			} else if (proto_code_transient(er.code))
				sess_detach(s, msg);
			else
				sess_close(s, er.code, msg);
			return (-1);
		}
		if (h->type == PROTO_WELCOME && leg->state == LEG_C_HELLO &&
		    !s->opened) {
			e = frame_welcome_decode(p, h->len, &w);
			if (e == FRAME_E_VERSION || (e == 0 &&
			    w.version > s->version)) {
				snprintf(msg, sizeof(msg), "appliance end "
				    "speaks protocol version %u, we speak %u",
				    w.version, s->version);
				sess_close(s, PROTO_E_VERSION, msg);
				return (-1);
			}
			if (e != 0 || w.sid != s->id) {
				leg_violation(leg, "bad WELCOME", e);
				return (-1);
			}
			if (kx_secret(s->kx, w.pubkey, s->id, leg->nonce_c,
			    w.nonce, s->pub_c, w.pubkey, s->secret) != 0) {
				sess_close(s, PROTO_E_INTERNAL,
				    "key exchange failed");
				return (-1);
			}
			EVP_PKEY_free(s->kx);
			s->kx = NULL;
			s->version = w.version;
			s->peer_win = w.window;
			sess_leg_up(s, leg, 0);
			return (s->dead ? -1 : 0);
		}
		if (h->type == PROTO_CHALLENGE && (leg->state == LEG_C_HELLO ||
		    leg->state == LEG_C_PROVEN) && s->opened) {
			if ((e = frame_challenge_decode(p, h->len, &c)) != 0) {
				leg_violation(leg, "bad CHALLENGE", e);
				return (-1);
			}
			memcpy(leg->nonce_s, c.nonce, sizeof(c.nonce));
			pr.next = sess_next(s);
			kx_proof(s->secret, s->id, leg->nonce_c,
			    leg->nonce_s, pr.next, pr.mac);
			frame_proof_add(leg->ctx->scratch, &pr);
			OPENSSL_cleanse(pr.mac, sizeof(pr.mac));
			leg_send(leg);
			leg->state = LEG_C_PROOF;
			return (0);
		}
		if (h->type == PROTO_RESUMED && (leg->state == LEG_C_PROOF ||
		    leg->state == LEG_C_PROVEN)) {
			if ((e = frame_u64_decode(p, h->len, &next)) != 0 ||
			    !sess_next_ok(s, next)) {
				leg_violation(leg, "bad RESUMED offset", e);
				return (-1);
			}
			kx_rotate(s->secret, s->id, leg->nonce_c,
			    leg->nonce_s);
			if (leg->state == LEG_C_PROVEN)
				s->ctx->resumes_one_trip++;
			s->ack_sent = 0;	/* the first ACK: sess_leg_up */
			sess_leg_up(s, leg, next);
			return (s->dead ? -1 : 0);
		}
		break;
	default:
		break;
	}
	snprintf(msg, sizeof(msg), "unexpected %s %s",
	    frame_strtype(h->type), leg->state == LEG_C_DONE ||
	    leg->state == LEG_C_IDLE || leg->state == LEG_S_IDLE ?
	    "on an idle leg" : "during handshake");
	leg_violation(leg, msg, 0);
	return (-1);
}

/* Server: a fresh nonce of ours for this leg (WELCOME, CHALLENGE). */
static void
leg_nonce_s(struct leg *leg)
{
	if (RAND_bytes(leg->nonce_s, sizeof(leg->nonce_s)) != 1)
		abort();	/* no nonce that is not random */
}

/* Server: HELLO, either a new session or a resume. */
static int
leg_server_hello(struct leg *leg, const uint8_t *p, size_t len)
{
	struct sess_ctx		*ctx = leg->ctx;
	struct proto_hello	 h;
	struct proto_welcome	 w;
	struct proto_challenge	 c;
	struct sess		*s;
	EVP_PKEY		*kx = NULL;
	const char		*why = "refused";
	char			 msg[128];
	int			 e;

	if ((e = frame_hello_decode(p, len, &h)) == FRAME_E_VERSION) {
		snprintf(msg, sizeof(msg), "protocol version %u not supported;"
		    " this end speaks versions %u to %u", h.version,
		    PROTO_VERSION_MIN, PROTO_VERSION);
		leg_refuse(leg, PROTO_E_VERSION, msg);
		return (-1);
	}
	if (e != 0) {
		leg_violation(leg, "bad HELLO", e);
		return (-1);
	}
	memcpy(leg->nonce_c, h.nonce, sizeof(h.nonce));
	s = sess_ctx_find(ctx, h.sid);
	if (h.kind != PROTO_HELLO_NEW) {
		if ((s == NULL || s->dead) && tomb_find(ctx, h.sid)) {
			leg_refuse(leg, PROTO_E_DONE,
			    "session already completed");
			return (-1);
		}
		if (s == NULL || s->dead) {
			leg_refuse(leg, PROTO_E_UNKNOWN_SESSION,
			    "no such session (closed or never opened)");
			return (-1);
		}
		leg->sid = h.sid;
		if (h.kind == PROTO_HELLO_RESUME_PROOF &&
		    (e = leg_server_ticket(leg, s, &h)) != 0)
			return (e < 0 ? -1 : 0);
		/* Version 2, or a ticket already spent: a round trip more. */
		leg_nonce_s(leg);
		memcpy(c.nonce, leg->nonce_s, sizeof(c.nonce));
		frame_challenge_add(leg->ctx->scratch, &c);
		leg_send(leg);
		leg->state = LEG_S_CHALLENGED;
		leg->epoch = s->resumes;
		return (0);
	}
	if (s != NULL) {
		leg_refuse(leg, PROTO_E_EXISTS, "session id already in use");
		return (-1);
	}
	if (ctx->conf.max_sessions > 0 &&
	    ctx->count >= ctx->conf.max_sessions) {
		leg_refuse(leg, PROTO_E_LIMIT, "session limit reached");
		return (-1);
	}
	leg_nonce_s(leg);
	s = sess_alloc(ctx, h.sid);
	s->host = xstrdup(h.host);
	s->cid = h.guest_cid;
	s->port = h.guest_port;
	s->service = h.service;
	if (h.name[0] != '\0')
		s->name = xstrdup(h.name);
	memset(&w, 0, sizeof(w));
	if (kx_keygen(&kx, w.pubkey) != 0 ||
	    kx_secret(kx, h.pubkey, s->id, h.nonce, leg->nonce_s, h.pubkey,
	    w.pubkey, s->secret) != 0) {
		EVP_PKEY_free(kx);
		sess_free(s);
		leg_refuse(leg, PROTO_E_INTERNAL, "key exchange failed");
		return (-1);
	}
	EVP_PKEY_free(kx);
	RB_INSERT(sess_tree, &ctx->tree, s);
	ctx->count++;
	if ((ctx->ops.admit != NULL &&
	    (e = ctx->ops.admit(s, leg->peer, 0, ctx->arg, &why)) != 0) ||
	    (e = ctx->ops.open(s, ctx->arg, &why)) != 0) {
		RB_REMOVE(sess_tree, &ctx->tree, s);
		ctx->count--;
		sess_free(s);
		leg_refuse(leg, e > 0 && e <= PROTO_CODE_MAX ? e :
		    PROTO_E_BACKEND, why);
		return (-1);
	}
	w.version = h.version;		/* answer in the client's */
	s->version = h.version;		/* DATA sizes follow it */
	w.window = sess_wire_window(ctx);
	s->peer_win = h.window;
	w.sid = h.sid;
	memcpy(w.nonce, leg->nonce_s, sizeof(w.nonce));
	frame_welcome_add(leg->ctx->scratch, &w);
	leg_send(leg);
	leg_unlist(leg);
	leg->s = s;
	s->leg = leg;
	sess_leg_up(s, leg, 0);
	return (s->dead ? -1 : 0);
}

/* Server: PROOF for a resume; the old leg goes only if it verifies. */
static int
leg_server_proof(struct leg *leg, const uint8_t *p, size_t len)
{
	struct proto_proof	 pr;
	struct sess		*s;
	uint8_t			 mac[PROTO_MAC_LEN];
	int			 e, ok = 0, prev = 0;

	if ((e = frame_proof_decode(p, len, &pr)) != 0) {
		leg_violation(leg, "bad PROOF", e);
		return (-1);
	}
	if ((s = sess_ctx_find(leg->ctx, leg->sid)) == NULL || s->dead) {
		leg_refuse(leg, PROTO_E_UNKNOWN_SESSION,
		    "session closed during resume");
		return (-1);
	}
	/*
	 * Another leg resumed since this one was challenged: either this
	 * PROOF is stale (the client answered, then moved on to that
	 * leg, and a PROOF over the secret it held then would still
	 * verify against "prev" and rotate along nonces it dropped), or
	 * the other leg was a stale copy and the client is here.  Only
	 * a fresh try tells: the client's next leg proves against what
	 * the server holds now.
	 */
	if (leg->epoch != s->resumes) {
		leg->ctx->overtaken++;
		leg_refuse(leg, PROTO_E_OVERTAKEN,
		    "another leg resumed the session first; try again");
		return (-1);
	}
	kx_proof(s->secret, s->id, leg->nonce_c, leg->nonce_s, pr.next, mac);
	ok = CRYPTO_memcmp(mac, pr.mac, sizeof(mac)) == 0;
	if (!ok && s->have_prev) {
		kx_proof(s->prev, s->id, leg->nonce_c, leg->nonce_s, pr.next,
		    mac);
		ok = prev = CRYPTO_memcmp(mac, pr.mac, sizeof(mac)) == 0;
	}
	OPENSSL_cleanse(mac, sizeof(mac));
	if (!ok) {
		leg_refuse(leg, PROTO_E_AUTH, "resume proof did not verify");
		return (-1);
	}
	return (leg_server_resume(leg, s, pr.next, prev));
}

/*
 * Server: a HELLO that carries its proof over the ticket nonce the
 * current secret implies.  Each secret's ticket is good for one try,
 * and never the previous secret's: a replayed HELLO, or one from a
 * client that missed our RESUMED, gets a CHALLENGE (0) instead.
 * Nonzero when the HELLO was answered: 1, or -1 when the leg goes.
 */
static int
leg_server_ticket(struct leg *leg, struct sess *s,
    const struct proto_hello *h)
{
	uint8_t		nonce[PROTO_NONCE_LEN], mac[PROTO_MAC_LEN];
	int		ok;

	if (s->ticket_spent)
		return (0);
	kx_ticket(s->secret, s->id, nonce);
	kx_proof(s->secret, s->id, h->nonce, nonce, h->next, mac);
	ok = CRYPTO_memcmp(mac, h->mac, sizeof(mac)) == 0;
	OPENSSL_cleanse(mac, sizeof(mac));
	if (!ok)
		return (0);
	s->ticket_spent = 1;
	memcpy(leg->nonce_s, nonce, sizeof(nonce));
	if (leg_server_resume(leg, s, h->next, 0) != 0)
		return (-1);
	leg->ctx->resumes_one_trip++;
	return (1);
}

/*
 * Server: the proof of a resume from NEXT verified (with the previous
 * secret if PREV); the old leg goes and this one carries the session.
 */
static int
leg_server_resume(struct leg *leg, struct sess *s, uint64_t next, int prev)
{
	const char	*why = "refused";
	uint64_t	 off;
	int		 e;

	if (!sess_next_ok(s, next)) {
		leg_refuse(leg, PROTO_E_TOO_FAR, "resume offset out of range");
		return (-1);
	}
	if (leg->ctx->ops.admit != NULL && (e = leg->ctx->ops.admit(s,
	    leg->peer, 1, leg->ctx->arg, &why)) != 0) {
		leg_refuse(leg, e > 0 && e <= PROTO_CODE_MAX ? e :
		    PROTO_E_AUTH, why);
		return (-1);
	}
	/*
	 * Single use: the secret just used is kept only until the client
	 * shows on the new leg that it rotated too.
	 */
	if (prev)
		memcpy(s->secret, s->prev, sizeof(s->secret));
	memcpy(s->prev, s->secret, sizeof(s->prev));
	s->have_prev = 1;
	kx_rotate(s->secret, s->id, leg->nonce_c, leg->nonce_s);
	s->ticket_spent = 0;		/* a new secret, a new ticket */
	if (s->leg != NULL) {
		struct leg	*old = s->leg;

		s->leg = NULL;
		old->s = NULL;
		leg_free_later(old);
	}
	if (s->state == SESS_ESTABLISHED)
		s->detached_ms = xtime_mono_ms();
	frame_u64_add(leg->ctx->scratch, PROTO_RESUMED, sess_next(s));
	/* The new leg's first ACK (sess_leg_up) goes in the same write. */
	if ((off = sess_ack_off(s)) > 0)
		sess_ack_add(s, off);
	leg_send(leg);
	leg_unlist(leg);
	leg->s = s;
	s->leg = leg;
	sess_leg_up(s, leg, next);
	return (s->dead ? -1 : 0);
}

/* --- stream ------------------------------------------------------- */

/*
 * The peer framed on LEG, up: the client has the WELCOME (so it can
 * resume), and its stream frame on a resumed leg proves it took the
 * rotated secret.  Every stream frame says so, a DATA frame whose body
 * is spliced too.
 */
static void
leg_framed(struct leg *leg, const struct frame_hdr *h)
{
	struct sess	*s = leg->s;

	s->confirmed = 1;
	if (s->have_prev && s->ctx->role == SESS_SERVER &&
	    h->type >= PROTO_DATA) {
		OPENSSL_cleanse(s->prev, sizeof(s->prev));
		s->have_prev = 0;
	}
}

/* One stream frame on an established leg; nonzero to stop reading. */
static int
leg_stream(struct leg *leg, struct frame_hdr *h, struct evbuffer *in)
{
	struct sess		*s = leg->s;
	struct proto_error	 er;
	uint8_t			 buf[PROTO_HDR_LEN + 8 + PROTO_REASON_MAX + 3];
	char			 msg[PROTO_REASON_MAX + 64];
	uint64_t		 v;
	int			 e;

	leg_framed(leg, h);
	if (h->type == PROTO_DATA) {
		/*
		 * Whole in the input, so copied.  A large one says bulk: the
		 * next header alone, so that a body like it is spliced.
		 */
		leg->headers = h->len - 8 >= SPLICE_MIN &&
		    xsock_splices(leg->x, s->local);
		return (leg_data(leg, h, in, h->len - 8));
	}
	if (h->len > sizeof(buf) - PROTO_HDR_LEN) {
		leg_violation(leg, "oversized control frame", 0);
		return (-1);
	}
	evbuffer_remove(in, buf, PROTO_HDR_LEN + h->len);
	switch (h->type) {
	case PROTO_ACK:
		frame_u64_decode(buf + PROTO_HDR_LEN, 8, &v);
		if (v > s->sent_off + (leg->fin_sent ? 1 : 0)) {
			leg_violation(leg, "ACK beyond what was sent", 0);
			return (-1);
		}
		if (v <= s->win_off && v <= s->acked_off)
			return (0);
		s->ack_asked = 0;
		if (v > s->win_off)
			s->win_off = v;
		if (v > s->acked_off) {
			sess_trim(s, v);
			s->acked_off = v;
		}
		sess_local_take(s);
		sess_check_done(s);
		if (s->dead)
			return (-1);
		return (0);
	case PROTO_FIN:
		frame_u64_decode(buf + PROTO_HDR_LEN, 8, &v);
		if (v != s->recv_off || (s->fin_in_seen && v != s->fin_in)) {
			leg_violation(leg, "FIN at the wrong offset", 0);
			return (-1);
		}
		if (!s->fin_in_seen) {
			s->fin_in_seen = 1;
			s->fin_in = v;
			sess_local_shut(s);
			if (s->dead)
				return (-1);
		}
		return (0);
	case PROTO_CLOSE:
		if ((e = frame_error_decode(buf + PROTO_HDR_LEN, h->len,
		    &er)) != 0) {
			leg_violation(leg, "bad CLOSE frame", e);
			return (-1);
		}
		snprintf(msg, sizeof(msg), "closed by the %s end (%s): %s",
		    s->ctx->role == SESS_CLIENT ? "appliance" : "ingress",
		    frame_strcode(er.code), er.reason);
		sess_end(s, er.code, msg, 0);
		return (-1);
	case PROTO_PING:
		/* A peer that pings and never reads gets no more answers. */
		frame_u64_decode(buf + PROTO_HDR_LEN, 8, &v);
		if (xsock_pending(leg->x) < LEG_HIGH) {
			/* With the ACK we owe: the peer may wait for it. */
			if (sess_ack_off(s) > s->ack_sent)
				sess_ack_add(s, sess_ack_off(s));
			frame_u64_add(leg->ctx->scratch, PROTO_PONG, v);
			leg_send(leg);
		}
		return (0);
	case PROTO_PONG:
		return (0);
	case PROTO_ERROR:
		if (frame_error_decode(buf + PROTO_HDR_LEN, h->len, &er) == 0)
			snprintf(msg, sizeof(msg), "peer reported %s: %s",
			    frame_strcode(er.code), er.reason);
		else
			snprintf(msg, sizeof(msg), "peer reported an error");
		leg_close(leg, 0, 0, NULL);
		sess_detach(s, msg);
		return (-1);
	}
	snprintf(msg, sizeof(msg), "unexpected %s on an open session",
	    frame_strtype(h->type));
	leg_violation(leg, msg, 0);
	return (-1);
}

/*
 * Whether the rest of the DATA frame at the front of IN, not all read
 * yet, should go from the socket to the local stream by splice: a
 * plain leg and local stream, a body of SPLICE_MIN or more still to
 * come, and nothing in it the local stream has had (a resume's
 * overlap is dropped by the copy path).
 */
static int
leg_splices(struct leg *leg, struct frame_hdr *h, struct evbuffer *in)
{
	struct sess	*s = leg->s;
	size_t		 have = evbuffer_get_length(in);

	if (s == NULL || s->local == NULL || h->len < 8 ||
	    have < PROTO_HDR_LEN + 8 || have >= PROTO_HDR_LEN + h->len ||
	    PROTO_HDR_LEN + h->len - have < SPLICE_MIN ||
	    !xsock_splices(leg->x, s->local))
		return (0);
	return (leg_data_off(in) == s->recv_off);
}

/* The offset of the DATA frame at the front of IN (its 16 bytes are). */
static uint64_t
leg_data_off(struct evbuffer *in)
{
	uint8_t		buf[PROTO_HDR_LEN + 8];
	uint64_t	off;

	evbuffer_copyout(in, buf, sizeof(buf));
	frame_u64_decode(buf + PROTO_HDR_LEN, 8, &off);
	return (off);
}

/*
 * A DATA frame at the front of IN with the first HAVE bytes of its
 * payload: all of it, or the start of one whose body follows on the
 * socket (leg_body).  Each byte goes to the local stream once.
 */
static int
leg_data(struct leg *leg, struct frame_hdr *h, struct evbuffer *in,
    size_t have)
{
	struct sess	*s = leg->s;
	uint64_t	 off = leg_data_off(in);
	size_t		 n = h->len - 8, skip, w;

	if (n > PROTO_DATA_MAX_OF(s->version)) {
		leg_violation(leg, "DATA larger than the session's version "
		    "allows", 0);
		return (-1);
	}
	if (off > s->recv_off) {
		leg_violation(leg, "DATA beyond the expected offset", 0);
		return (-1);
	}
	if (s->fin_in_seen && off + n > s->fin_in) {
		leg_violation(leg, "DATA after FIN", 0);
		return (-1);
	}
	/*
	 * The peer's ACK base is never past what we delivered, so a peer
	 * that keeps to the window it agreed to never sends beyond this:
	 * what waits for our local reader stays within the window.  That
	 * is the one we announced (a replay_max under PROTO_WINDOW_MIN
	 * goes out as the minimum), or the peer's if smaller.
	 */
	if (s->peer_win != 0 && off + n > s->deliv_off +
	    (s->peer_win < sess_wire_window(s->ctx) ? s->peer_win :
	    sess_wire_window(s->ctx))) {
		leg_violation(leg, "DATA beyond the window", 0);
		return (-1);
	}
	if (s->local == NULL) {
		leg_violation(leg, "DATA with no local end", 0);
		return (-1);
	}
	skip = s->recv_off - off < have ? s->recv_off - off : have;
	evbuffer_drain(in, PROTO_HDR_LEN + 8 + skip);
	s->recv_off += have - skip;
	leg->body = n - have;
	if ((w = xsock_write(s->local, in, have - skip)) > 0) {
		sess_delivered(s, w);
		if (s->dead)
			return (-1);
	}
	leg_backpressure(leg);
	return (0);
}

/*
 * A peer never sends more than the window beyond our last ACK (version
 * 5: the smaller of the two, and leg_data() holds it to that), so this
 * never pauses a leg: ACKs share the leg with DATA, and a leg paused
 * while a busy local peer (an echo) waits on our own full replay would
 * stall both directions for good.  The cap is for an older peer, which
 * keeps to its own window: if that is larger than ours, it may send
 * more before the ACK our sending waits for, so then the leg reads on
 * toward it, up to LEG_ACK_CAPS caps.
 */
static size_t
leg_local_cap(const struct sess *s)
{
	size_t	cap = s->ctx->conf.replay_max + PROTO_DATA_MAX;

	return (sess_wants_ack(s) ? cap * LEG_ACK_CAPS : cap);
}

/* Stop reading LEG while its local stream holds more than the cap. */
static void
leg_backpressure(struct leg *leg)
{
	struct sess	*s = leg->s;

	if (xsock_pending(s->local) > leg_local_cap(s)) {
		leg->paused = 1;
		xsock_read_enable(leg->x, 0);
	}
}

/*
 * Our sending now waits for an ACK: a leg that waits for the local
 * reader, or is paused below the larger cap, reads again (the ACK is on
 * it).  Nonzero when the leg was woken.
 */
static int
leg_ack_wake(struct sess *s)
{
	struct leg	*leg = s->leg;

	if (leg == NULL || !leg->paused || leg->state != LEG_UP ||
	    !sess_wants_ack(s) || (!leg->waiting &&
	    xsock_pending(s->local) > leg_local_cap(s)))
		return (0);
	leg_wake(leg);
	return (1);
}

/*
 * Whether LEG waits, not reading, for its session's local stream to
 * drain what it holds, rather than read the next body through user
 * space: bytes still queued for the local stream, and a body that
 * could be spliced once they have gone.  Not for long: a reader that
 * takes nothing in LOCAL_WAIT_MS gets the copy path, as any did before,
 * until it has taken all (the leg's other frames, a CLOSE, must not
 * wait on a stuck backend).  Never while our own window
 * is shut: the ACK that opens it is on the leg, and a local peer (an
 * echo) blocked on our full window may not read until it comes
 * (sess_local_take wakes a waiting leg then).  The leg's socket holds
 * the rest meanwhile; the copy path's cost was two copies of every
 * byte of a download to a guest slower than the leg.
 */
static int
leg_wait_local(struct leg *leg)
{
	struct sess	*s = leg->s;

	if (leg->impatient || xsock_pending(s->local) == 0 ||
	    !xsock_splices(leg->x, s->local) || sess_wants_ack(s))
		return (0);
	leg->paused = leg->waiting = 1;
	xsock_read_enable(leg->x, 0);
	leg_deadline(leg, LOCAL_WAIT_MS);
	return (1);
}

/* LEG reads again (the caller says when): no pause, no wait. */
static void
leg_wake(struct leg *leg)
{
	if (leg->waiting && leg->deadline != NULL)
		evtimer_del(leg->deadline);
	leg->paused = leg->waiting = 0;
	xsock_read_enable(leg->x, 1);
}

/*
 * The body of the DATA frame being read (leg->body bytes) from the leg
 * to the local stream: spliced while nothing is queued for the local
 * stream, else read and queued as the copy path does.  As read(2).
 */
static ssize_t
leg_body(struct leg *leg)
{
	struct sess	*s = leg->s;
	size_t		 w = 0;
	ssize_t		 n;

	n = xsock_splice(leg->x, s->local, leg->body, s->ctx->pipes, &w);
	if (n > 0) {
		s->ctx->spliced += (uint64_t)n;
		leg->headers = 1;
	} else if (n == -1 && errno == EBUSY && leg_wait_local(leg)) {
		errno = EAGAIN;
		return (-1);
	} else if (n == -1 && errno == EBUSY) {
		n = xsock_read(leg->x, leg->in, leg->body < LEG_READ_HIGH ?
		    leg->body : LEG_READ_HIGH);
		if (n > 0)
			w = xsock_write(s->local, leg->in, (size_t)n);
	}
	if (n <= 0)
		return (n);
	leg->body -= (size_t)n;
	s->recv_off += (uint64_t)n;
	if (w > 0) {
		sess_delivered(s, w);
		if (s->dead) {
			errno = EAGAIN;
			return (-1);
		}
	}
	leg_backpressure(leg);
	return (n);
}

/* --- accessors ---------------------------------------------------- */

/* Bytes the last resume sent again (the peer never had them). */
uint64_t
sess_resume_replay(const struct sess *s)
{
	return (s->resume_replay);
}

/* Client: legs tried since the session's last one broke (0: none). */
unsigned
sess_resume_tries(const struct sess *s)
{
	return (s->resume_tries);
}

uint64_t
sess_id(const struct sess *s)
{
	return (s->id);
}

const char *
sess_idstr(const struct sess *s)
{
	return (s->idstr);
}

const char *
sess_host(const struct sess *s)
{
	return (s->host);
}

uint32_t
sess_cid(const struct sess *s)
{
	return (s->cid);
}

uint32_t
sess_port(const struct sess *s)
{
	return (s->port);
}

/* What the session carries (HELLO NEW service). */
enum proto_service
sess_service(const struct sess *s)
{
	return (s->service);
}

/* A serial port's VM name ("" if none). */
const char *
sess_name(const struct sess *s)
{
	return (s->name != NULL ? s->name : "");
}

static const char *sess_services[] = {
	[PROTO_SVC_STREAM] = "stream",
	[PROTO_SVC_VSPC] = "vspc",
	[PROTO_SVC_SERIAL] = "serial",
	[PROTO_SVC_VMOMI] = "vmomi",
};

/* A service's name for logs and status. */
const char *
sess_strservice(enum proto_service svc)
{
	if ((unsigned)svc > PROTO_SVC_MAX)
		return ("unknown");
	return (sess_services[svc]);
}

enum sess_state
sess_state(const struct sess *s)
{
	return (s->state);
}

long long
sess_resume_ms(const struct sess *s)
{
	return (s->resume_ms);
}

void *
sess_get_data(const struct sess *s)
{
	return (s->data);
}

void
sess_set_data(struct sess *s, void *data)
{
	s->data = data;
}

/* One session for the status socket; field names are documented. */
json_t *
sess_json(const struct sess *s)
{
	json_t	*o;

	o = json_pack("{s:s, s:{s:s, s:I, s:I, s:s, s:s}, s:s, s:I, s:I, s:I, "
	    "s:I, s:I, s:I, s:I, s:I, s:I}",
	    "id", s->idstr,
	    "guest", "host", s->host, "cid", (json_int_t)s->cid,
	    "port", (json_int_t)s->port,
	    "service", sess_strservice(s->service), "name", sess_name(s),
	    "state", sess_strstate(s->state),
	    "bytes_in", (json_int_t)s->deliv_off,
	    "bytes_out", (json_int_t)s->read_off,
	    "unacked_out", (json_int_t)(s->read_off - (s->acked_off >
	    s->read_off ? s->read_off : s->acked_off)),
	    "unacked_in", (json_int_t)(s->recv_off - s->deliv_off),
	    "replayed", (json_int_t)s->replayed,
	    "resumes", (json_int_t)s->resumes,
	    "age_ms", (json_int_t)(xtime_mono_ms() - s->created_ms),
	    "version", (json_int_t)s->version,
	    "window", (json_int_t)sess_window(s));
	if (o == NULL)
		abort();
	json_object_set_new(o, "leg",
	    s->leg != NULL && s->leg->peer[0] != '\0' ?
	    json_string(s->leg->peer) : json_null());
	if (s->resume_ms >= 0)
		json_object_set_new(o, "last_resume_ms",
		    json_integer(s->resume_ms));
	if (s->spl != NULL)
		json_object_set_new(o, "splicing", json_true());
	if (s->state == SESS_DETACHED || s->state == SESS_CONNECTING) {
		json_object_set_new(o, "detached_ms",
		    json_integer(xtime_mono_ms() - s->detached_ms));
		json_object_set_new(o, "why", s->why != NULL ?
		    json_string(s->why) : json_null());
	} else if (s->why != NULL)	/* a new leg in handshake: why again */
		json_object_set_new(o, "why", json_string(s->why));
	return (o);
}
