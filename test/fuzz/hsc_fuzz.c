/*
 * hsc_fuzz.c -- libFuzzer harness for the client end of a session
 * (sess.c, SESS_CLIENT: an ingress relay's or a guest agent's), as the
 * far end (a relay or vappliance, or whatever answers on the mesh)
 * drives it, on a real sess_ctx and a real event loop.  hs_fuzz is the
 * same for the server end.
 *
 * Guests are socketpairs given to sess_client_new(); every leg the
 * client opens (ops->connect) is a socketpair whose far end the harness
 * holds, and a leg the harness RELEASEs after a finished session is
 * kept and carries the next one (ops->route).  The input is a script,
 * one byte per step (low nibble the step, high nibble its argument,
 * more bytes taken as the step needs them): a guest connects, writes,
 * shuts or closes, or is read; on the current leg the harness sends
 * WELCOME (the right id or not, its own key or the script's bytes as
 * one), CHALLENGE, RESUMED, ERROR, DATA, ACK, FIN, PING, PONG, RELEASE
 * or CLOSE with offsets that are right, stale, ahead or arbitrary, or
 * raw bytes; a leg is shut, closed or reset; the context is woken, its
 * legs reset (a vMotion), a session closed; ops->connect refuses or
 * says wait; time passes (the ACK delay).  After each step the loop runs
 * until nothing moves (fzloop.c) and the harness reads everything the
 * client wrote.
 *
 * What must hold whatever the far end says: everything the client
 * writes on a leg is well-formed frames a client may send (HELLO,
 * PROOF, DATA, ACK, FIN, PING, PONG, CLOSE, ERROR; never the server's);
 * a HELLO RESUME names the session that leg belongs to (its last HELLO
 * NEW's id: each NEW is under a fresh one); DATA carries the guest's
 * bytes at their offsets and nothing the guest has not written, FIN
 * exactly what it wrote; each guest reads the harness's bytes at their
 * offsets, never past what the harness sent in order (a correct client
 * delivers no byte twice and none out of order); reasons are
 * printable; a run leaves no descriptor open.  Raw bytes, or a frame
 * cut short, reach the client as whatever they parse to, so after them
 * a guest's bytes are no longer checked.  Timers other than the ACK
 * delay are set far out: their paths are the unit tests' (test_sess.c).
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "frame.h"
#include "proto.h"
#include "sess.h"
#include "fuzz.h"
#include "fzloop.h"

#define FZ_GUESTS	4
#define FZ_LEGS		6
#define FZ_TARGET	"unix:fuzz-far-end"

int	LLVMFuzzerInitialize(int *, char ***);

/* One guest connection, our end. */
struct fz_guest {
	int		 fd;		/* -1: none (closed) */
	int		 used;		/* a session was made for it */
	uint64_t	 sid;		/* from its HELLO NEW, 0: none yet */
	uint64_t	 up;		/* fzloop_up() bytes written into it */
	int		 up_shut;	/* our write side shut */
	uint64_t	 down;		/* fzloop_down() bytes read from it */
	uint64_t	 sent;		/* fzloop_down() bytes sent in order on legs */
	uint64_t	 got;		/* DATA bytes from the client, in order */
	int		 raw;		/* off the model: bytes unchecked */
};

/* One leg the client opened, our end. */
struct fz_leg {
	int		 fd;
	int		 gi;		/* whose session's; -1: unknown */
	int		 hello;		/* 0 or the last HELLO's kind */
	uint64_t	 sid;		/* the last HELLO's */
	int		 released;	/* we sent RELEASE for that sid */
	struct evbuffer	*rx;
};

struct fz_world {
	struct sess_ctx		*ctx;
	struct fz_guest		 g[FZ_GUESTS];
	struct fz_leg		 leg[FZ_LEGS];
	int			 cur;		/* current leg, -1: none */
	int			 new_gi;	/* the guest being made */
	int			 connect_mode;	/* 0 a leg, 1 none, 2 wait */
	struct fzloop_script	 sc;
};

static struct event_base	*fz_base;
static uint8_t			 fz_pub[PROTO_KEY_LEN];	/* a real key */
static struct sess_ctx		*fz_keep;	/* keeps sess.c's crypto up */
static struct fz_world		 w;

/* The script's next byte (0 past its end), and next 8 as a number. */
static uint8_t
fz_byte(void)
{
	return (fzloop_byte(&w.sc));
}

static uint64_t
fz_u64(void)
{
	return (fzloop_u64(&w.sc));
}

/* The guest index a session carries (set at its creation). */
static int
fz_gi(struct sess *s)
{
	void	*d = sess_get_data(s);

	return (d == NULL ? w.new_gi : (int)(intptr_t)d - 1);
}

/* ops->connect: a socketpair leg, none, or wait, as the script says. */
static int
fz_connect(struct sess *s, void *arg, struct sess_dial *dial,
    const char **desc)
{
	struct fz_leg	*leg = NULL;
	int		 fds[2], i;

	if (w.connect_mode == 1) {
		*desc = "fuzz: no far end now";
		return (-1);
	}
	if (w.connect_mode == 2) {
		*desc = "fuzz: waiting for the far end";
		return (1);
	}
	for (i = 0; i < FZ_LEGS; i++)
		if (w.leg[i].fd == -1 && w.leg[i].rx == NULL) {
			leg = &w.leg[i];
			break;
		}
	if (leg == NULL) {
		*desc = "fuzz: no leg free";
		return (-1);
	}
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0, fds) == 0);
	memset(leg, 0, sizeof(*leg));
	leg->fd = fds[1];
	leg->gi = fz_gi(s);
	leg->rx = evbuffer_new();
	CHECK(leg->rx != NULL);
	memset(dial, 0, sizeof(*dial));
	dial->fd = fds[0];
	dial->up = 1;
	dial->tuned = 1;
	*desc = FZ_TARGET;
	w.cur = i;
	return (0);
}

/* ops->route: where a released leg may carry the next session. */
static const char *
fz_route(struct sess *s, void *arg)
{
	return (FZ_TARGET);
}

/* ops->event: reasons are text; OPEN has none. */
static void
fz_event(struct sess *s, enum sess_event ev, const char *reason, void *arg)
{
	CHECK((reason == NULL) == (ev == SESS_EV_OPEN));
	if (reason != NULL)
		fz_ascii(reason);
	fz_ascii(sess_idstr(s));
	CHECK(sess_strservice(sess_service(s)) != NULL);
}

static const struct sess_ops	fz_ops = {
	.connect = fz_connect,
	.route = fz_route,
	.event = fz_event,
};

/*
 * Whose session a HELLO is: a NEW says its guest's CID (3 + the
 * guest's index, fz_new_guest), a RESUME the id of that guest's last
 * NEW.  -1 if none.
 */
static int
fz_hello_gi(const struct proto_hello *h)
{
	int	i;

	if (h->kind == PROTO_HELLO_NEW)
		return (h->guest_cid >= 3 && h->guest_cid < 3 + FZ_GUESTS ?
		    (int)h->guest_cid - 3 : -1);
	for (i = 0; i < FZ_GUESTS; i++)
		if (w.g[i].used && w.g[i].sid == h->sid)
			return (i);
	return (-1);
}

/* One frame the client sent on LEG. */
static void
fz_frame(void *arg, int type, const uint8_t *p, size_t len)
{
	struct fz_leg		*leg = arg;
	struct fz_guest		*g = leg->gi >= 0 ? &w.g[leg->gi] : NULL;
	struct proto_hello	 h;
	struct proto_proof	 pr;
	struct proto_error	 er;
	uint64_t		 v, i;
	int			 gi;

	switch (type) {
	case PROTO_HELLO:
		CHECK(frame_hello_decode(p, len, &h) == FRAME_OK);
		/* One per leg, or per session the far end released it from. */
		CHECK(leg->hello == 0 || leg->released);
		CHECK(h.version >= PROTO_VERSION_MIN &&
		    h.version <= PROTO_VERSION);
		/*
		 * A leg dialled for a session carries it; a kept one,
		 * whichever session took it.
		 */
		gi = fz_hello_gi(&h);
		if (leg->hello == 0 && leg->gi >= 0)
			CHECK(gi == leg->gi);
		leg->hello = h.kind;
		leg->sid = h.sid;
		leg->released = 0;
		leg->gi = gi;
		if (gi < 0)
			break;
		/*
		 * Until a WELCOME, each new leg says NEW again, under a
		 * fresh id (the last one may live on the far end).
		 */
		if (h.kind == PROTO_HELLO_NEW)
			w.g[gi].sid = h.sid;
		fz_ascii(h.host);
		break;
	case PROTO_PROOF:
		CHECK(frame_proof_decode(p, len, &pr) == FRAME_OK);
		CHECK(leg->hello == PROTO_HELLO_RESUME ||
		    leg->hello == PROTO_HELLO_RESUME_PROOF);
		break;
	case PROTO_DATA:
		CHECK(len > 8);
		CHECK(frame_u64_decode(p, 8, &v) == FRAME_OK);
		CHECK(leg->hello != 0);
		if (g == NULL)
			break;
		/* The guest's bytes at their offsets, only what it wrote. */
		CHECK(v + (len - 8) <= g->up);
		for (i = 0; i < len - 8; i++)
			CHECK(p[8 + i] == fzloop_up(leg->gi, v + i));
		if (v <= g->got && v + (len - 8) > g->got)
			g->got = v + (len - 8);
		break;
	case PROTO_FIN:
		CHECK(frame_u64_decode(p, len, &v) == FRAME_OK);
		if (g != NULL)
			CHECK(g->up_shut && v == g->up);
		break;
	case PROTO_ACK:
		CHECK(frame_u64_decode(p, len, &v) == FRAME_OK);
		/* What it delivered: at most what we sent, and our FIN. */
		if (g != NULL && !g->raw)
			CHECK(v <= g->sent + 1);
		break;
	case PROTO_PING:
	case PROTO_PONG:
		CHECK(frame_u64_decode(p, len, &v) == FRAME_OK);
		break;
	case PROTO_CLOSE:
	case PROTO_ERROR:
		CHECK(frame_error_decode(p, len, &er) == FRAME_OK);
		fz_ascii(er.reason);
		break;
	default:
		/* WELCOME, CHALLENGE, RESUMED, RELEASE are the server's. */
		fprintf(stderr, "hsc_fuzz: the client sent %s\n",
		    frame_strtype(type));
		CHECK(0);
	}
}

/* Read what the client wrote on LEG, frame by frame. */
static size_t
fz_leg_read(struct fz_leg *leg)
{
	return (fzloop_frames(leg->fd, leg->rx, fz_frame, leg));
}

/* Read what guest X was given: fzloop_down() at its offsets, no more. */
static size_t
fz_guest_read(int x)
{
	struct fz_guest	*g = &w.g[x];
	uint8_t		 buf[16384];
	size_t		 total = 0, i;
	ssize_t		 n;

	for (;;) {
		n = recv(g->fd, buf, sizeof(buf), 0);
		if (n <= 0)
			break;
		total += (size_t)n;
		for (i = 0; i < (size_t)n; i++, g->down++)
			if (!g->raw) {
				CHECK(g->down < g->sent);
				CHECK(buf[i] == fzloop_down(x, g->down));
			}
	}
	return (total);
}

/* Read whatever our ends have waiting (one poll()). */
static size_t
fz_read_ready(void)
{
	struct pollfd	 pfd[FZ_LEGS + FZ_GUESTS];
	int		 who[FZ_LEGS + FZ_GUESTS];
	size_t		 moved = 0;
	int		 i, n = 0;

	for (i = 0; i < FZ_LEGS; i++)
		if (w.leg[i].fd != -1) {
			pfd[n].fd = w.leg[i].fd;
			pfd[n].events = POLLIN;
			who[n++] = i;
		}
	for (i = 0; i < FZ_GUESTS; i++)
		if (w.g[i].fd != -1) {
			pfd[n].fd = w.g[i].fd;
			pfd[n].events = POLLIN;
			who[n++] = FZ_LEGS + i;
		}
	if (n == 0 || poll(pfd, n, 0) <= 0)
		return (0);
	for (i = 0; i < n; i++) {
		if (pfd[i].revents == 0)
			continue;
		if (who[i] < FZ_LEGS)
			moved += fz_leg_read(&w.leg[who[i]]);
		else
			moved += fz_guest_read(who[i] - FZ_LEGS);
	}
	return (moved);
}

/* The current leg, or NULL. */
static struct fz_leg *
fz_cur(void)
{
	if (w.cur < 0 || w.leg[w.cur].fd == -1)
		return (NULL);
	return (&w.leg[w.cur]);
}

/* The current leg's guest, or NULL. */
static struct fz_guest *
fz_cur_guest(void)
{
	struct fz_leg	*leg = fz_cur();

	return (leg == NULL || leg->gi < 0 ? NULL : &w.g[leg->gi]);
}

/* Send OUT on the current leg; a frame cut short leaves the model. */
static void
fz_send(struct evbuffer *out)
{
	struct fz_leg	*leg = fz_cur();
	size_t		 len = evbuffer_get_length(out);
	ssize_t		 n;

	if (leg != NULL && len > 0) {
		n = send(leg->fd, evbuffer_pullup(out, -1), len,
		    MSG_NOSIGNAL);
		if (n > 0 && (size_t)n != len && leg->gi >= 0)
			w.g[leg->gi].raw = 1;
	}
	evbuffer_drain(out, len);
}

/* A new guest connection and its session. */
static void
fz_new_guest(struct evbuffer *out, int arg)
{
	struct sess_guest	 sg;
	struct sess		*s;
	char			 name[16];
	int			 fds[2], i;

	for (i = 0; i < FZ_GUESTS; i++)
		if (!w.g[i].used)
			break;
	if (i == FZ_GUESTS)
		return;
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0, fds) == 0);
	memset(&w.g[i], 0, sizeof(w.g[i]));
	w.g[i].fd = fds[1];
	w.g[i].used = 1;
	memset(&sg, 0, sizeof(sg));
	sg.host = "fuzz-host";
	sg.cid = 3 + (uint32_t)i;
	sg.port = 1024 + (uint32_t)arg;
	sg.service = (enum proto_service)(arg & 3);
	snprintf(name, sizeof(name), "vm-%d", i);
	sg.name = (arg & 4) ? name : NULL;
	w.new_gi = i;
	s = sess_client_new(w.ctx, fds[0], &sg);
	sess_set_data(s, (void *)(intptr_t)(i + 1));
	w.new_gi = -1;
}

/* A guest writes, shuts its write side, or closes. */
static void
fz_guest_do(struct evbuffer *out, int arg)
{
	struct fz_guest	*g = &w.g[arg & 3];
	uint8_t		 buf[4096];
	size_t		 n, i;
	ssize_t		 k;

	if (g->fd == -1)
		return;
	switch (arg >> 2) {
	case 0:
	case 1:
		if (g->up_shut)
			return;
		n = (size_t)fz_byte() * 16 + 1;
		for (i = 0; i < n; i++)
			buf[i] = fzloop_up(arg & 3, g->up + i);
		k = send(g->fd, buf, n, MSG_NOSIGNAL);
		if (k > 0)
			g->up += (uint64_t)k;
		break;
	case 2:
		if (shutdown(g->fd, SHUT_WR) == 0)
			g->up_shut = 1;
		break;
	default:
		(void)fz_guest_read(arg & 3);
		close(g->fd);
		g->fd = -1;
		g->up_shut = 1;
		break;
	}
}

/* An offset by ARG: the right one R, just behind or ahead, or any. */
static uint64_t
fz_offset(uint64_t r, int arg)
{
	switch (arg & 3) {
	case 0:
		return (r);
	case 1:
		return (r - (r > 0 ? 1 + fz_byte() % (r < 256 ? r : 256) : 0));
	case 2:
		return (r + 1 + fz_byte());
	default:
		return (fz_u64());
	}
}

/* The far end's WELCOME on the current leg. */
static void
fz_welcome(struct evbuffer *out, int arg)
{
	struct fz_leg		*leg = fz_cur();
	struct proto_welcome	 wl;
	size_t			 i;

	if (leg == NULL)
		return;
	memset(&wl, 0, sizeof(wl));
	wl.version = (arg & 8) ? (uint16_t)(2 + fz_byte() % 4) : PROTO_VERSION;
	wl.sid = (arg & 1) ? fz_u64() : leg->sid;
	for (i = 0; i < PROTO_NONCE_LEN; i++)
		wl.nonce[i] = (uint8_t)(i + leg->sid);
	if (arg & 2)
		for (i = 0; i < PROTO_KEY_LEN; i++)
			wl.pubkey[i] = fz_byte();
	else
		memcpy(wl.pubkey, fz_pub, PROTO_KEY_LEN);
	wl.window = (arg & 4) ? (uint32_t)fz_u64() : 1024 * 1024;
	frame_welcome_add(out, &wl);
	fz_send(out);
}

/* The far end's DATA on the current leg: fzloop_down() at the offset ARG picks. */
static void
fz_data(struct evbuffer *out, int arg)
{
	static uint8_t	 buf[PROTO_DATA_MAX + 256 * 64 + 1];
	struct fz_leg	*leg = fz_cur();
	struct fz_guest	*g = fz_cur_guest();
	uint64_t	 off, i;
	size_t		 n;

	if (leg == NULL)
		return;
	off = fz_offset(g != NULL ? g->sent : 0, arg);
	n = (size_t)fz_byte() * 64 + 1;
	if (arg & 4)
		n += PROTO_DATA_MAX;	/* too long for a frame */
	for (i = 0; i < n; i++)
		buf[i] = fzloop_down(leg->gi >= 0 ? leg->gi : 0, off + i);
	frame_data_hdr_add(out, off, n);
	evbuffer_add(out, buf, n);
	if (g != NULL && off <= g->sent && off + n > g->sent)
		g->sent = off + n;
	fz_send(out);
}

/* The far end's one-number frames (and CLOSE, ERROR) on the leg. */
static void
fz_u64_frame(struct evbuffer *out, int type, int arg)
{
	struct fz_guest	*g = fz_cur_guest();
	struct fz_leg	*leg = fz_cur();
	uint64_t	 v;

	if (leg == NULL)
		return;
	switch (type) {
	case PROTO_RESUMED:
	case PROTO_ACK:
		v = fz_offset(g != NULL ? g->got : 0, arg);
		break;
	case PROTO_FIN:
		v = fz_offset(g != NULL ? g->sent : 0, arg);
		break;
	case PROTO_RELEASE:
		v = (arg & 1) ? fz_u64() : leg->sid;
		if (v == leg->sid)
			leg->released = 1;
		break;
	default:
		v = fz_u64();
		break;
	}
	frame_u64_add(out, type, v);
	fz_send(out);
}

/* ERROR or CLOSE with a code and a reason from the script. */
static void
fz_error(struct evbuffer *out, int type, int arg)
{
	char	reason[40];
	size_t	i, n = fz_byte() % sizeof(reason);

	for (i = 0; i < n; i++)
		reason[i] = (char)(0x20 + fz_byte() % 0x5f);
	reason[n] = '\0';
	frame_error_add(out, type, arg, reason);
	fz_send(out);
}

/* Raw bytes from the script on the current leg. */
static void
fz_raw(struct evbuffer *out, int arg)
{
	struct fz_guest	*g = fz_cur_guest();
	size_t		 i, n = (size_t)arg * 4 + 1;
	uint8_t		 b;

	for (i = 0; i < n && w.sc.len > 0; i++) {
		b = fz_byte();
		evbuffer_add(out, &b, 1);
	}
	if (g != NULL)
		g->raw = 1;
	fz_send(out);
}

/* The current leg ends: shut, closed, reset, or switched. */
static void
fz_leg_end(struct evbuffer *out, int arg)
{
	struct fz_leg	*leg = fz_cur();
	struct linger	 l = { 1, 0 };

	if ((arg & 8) != 0) {
		w.cur = (arg & 7) % FZ_LEGS;
		return;
	}
	if (leg == NULL)
		return;
	switch (arg & 3) {
	case 0:
		(void)shutdown(leg->fd, SHUT_WR);
		return;
	case 1:
		(void)setsockopt(leg->fd, SOL_SOCKET, SO_LINGER, &l,
		    sizeof(l));
		/* FALLTHROUGH */
	default:
		close(leg->fd);
		leg->fd = -1;
		evbuffer_free(leg->rx);
		leg->rx = NULL;
		return;
	}
}

/* The context: woken, its legs reset, a session closed, time passes. */
static void
fz_ctx(struct evbuffer *out, int arg)
{
	struct sess	*s;
	struct fz_guest	*g;

	switch (arg & 7) {
	case 0:
		sess_ctx_wake(w.ctx);
		break;
	case 1:
		(void)sess_ctx_reset_legs(w.ctx, NULL, "fuzz: vMotion");
		break;
	case 2:
		sess_ctx_retarget(w.ctx, (arg & 8) ? "unix:elsewhere" :
		    FZ_TARGET);
		break;
	case 3:
		g = &w.g[(arg >> 3) & 1];
		if (g->sid != 0 && (s = sess_ctx_find(w.ctx, g->sid)) != NULL)
			sess_close(s, PROTO_E_SHUTDOWN, "fuzz: closed");
		break;
	case 4:
	case 5:
	case 6:
		w.connect_mode = (arg & 7) - 4;
		break;
	default:
		/*
		 * The ACK delay runs out (5 ms).  Only at 0x7f: a sleep in
		 * every input that has 0xff would make the run crawl.
		 */
		if (arg == 7)
			usleep(6000);
		break;
	}
}

/* The far end's CHALLENGE, its nonce from ARG. */
static void
fz_challenge(struct evbuffer *out, int arg)
{
	struct proto_challenge	 ch;
	size_t			 i;

	if (fz_cur() == NULL)
		return;
	for (i = 0; i < PROTO_NONCE_LEN; i++)
		ch.nonce[i] = (uint8_t)(arg + i);
	frame_challenge_add(out, &ch);
	fz_send(out);
}

/* Steps that send one frame of a type (fz_u64_frame, fz_error). */
static void
fz_resumed(struct evbuffer *out, int arg)
{
	fz_u64_frame(out, PROTO_RESUMED, arg);
}

static void
fz_ack(struct evbuffer *out, int arg)
{
	fz_u64_frame(out, PROTO_ACK, arg);
}

static void
fz_fin(struct evbuffer *out, int arg)
{
	fz_u64_frame(out, PROTO_FIN, arg);
}

static void
fz_ping(struct evbuffer *out, int arg)
{
	fz_u64_frame(out, (arg & 4) ? PROTO_PONG : PROTO_PING, arg);
}

static void
fz_release(struct evbuffer *out, int arg)
{
	fz_u64_frame(out, PROTO_RELEASE, arg);
}

static void
fz_refuse(struct evbuffer *out, int arg)
{
	fz_error(out, PROTO_ERROR, arg);
}

static void
fz_abort(struct evbuffer *out, int arg)
{
	fz_error(out, PROTO_CLOSE, arg);
}

/* The steps, by a script byte's low nibble (its high one: ARG). */
static void (*const fz_steps[16])(struct evbuffer *, int) = {
	fz_new_guest,	fz_guest_do,	fz_welcome,	fz_challenge,
	fz_resumed,	fz_refuse,	fz_data,	fz_data,
	fz_ack,		fz_fin,		fz_ping,	fz_release,
	fz_abort,	fz_raw,		fz_leg_end,	fz_ctx,
};

/* One step of the script. */
static void
fz_step(void *arg_out)
{
	struct evbuffer	*out = arg_out;
	uint8_t		 b = fz_byte();

	fz_steps[b & 0x0f](out, b >> 4);
}

/* The event base, a real X25519 public key to answer with. */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const uint8_t	 warm[] = { 0x00, 0x02, 0x01, 0x10, 0x06, 0x04,
		0x1e, 0x0f, 0x03, 0x04, 0x81, 0x09, 0x7f };
	static const uint8_t	 priv[PROTO_KEY_LEN] = {
		0x5d, 0xab, 0x08, 0x7e, 0x62, 0x4a, 0x8a, 0x4b,
		0x79, 0xe1, 0x7f, 0x8b, 0x83, 0x80, 0x0e, 0xe6,
		0x6f, 0x3b, 0xb1, 0x29, 0x26, 0x18, 0xb6, 0xfd,
		0x1c, 0x2f, 0x8b, 0x27, 0xff, 0x88, 0xe0, 0xeb,
	};
	struct sess_conf	 conf;
	EVP_PKEY		*key;
	size_t			 len = PROTO_KEY_LEN;

	fz_base = fzloop_init("hsc_fuzz", "HSC_FUZZ_SPIN");
	key = EVP_PKEY_new_raw_private_key_ex(NULL, "X25519", NULL, priv,
	    sizeof(priv));
	CHECK(key != NULL);
	CHECK(EVP_PKEY_get_raw_public_key(key, fz_pub, &len) == 1 &&
	    len == PROTO_KEY_LEN);
	EVP_PKEY_free(key);
	/*
	 * sess.c sets its crypto up with the first context, not per run:
	 * else every run's allocations differ and libFuzzer looks for
	 * leaks after each (LeakSanitizer, most of the time).
	 */
	memset(&conf, 0, sizeof(conf));
	fz_keep = sess_ctx_new(fz_base, SESS_CLIENT, &conf, &fz_ops, NULL);
	/*
	 * One session opened, resumed and finished first: what the
	 * libraries open on first use (OpenSSL's random source) stays
	 * open, and is not a run's leak.
	 */
	(void)LLVMFuzzerTestOneInput(warm, sizeof(warm));
	fzloop_fds_baseline();
	return (0);
}

/* Entry point: one script against a fresh client context. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sess_conf		 conf;
	struct evbuffer			*out;
	int				 i;

	memset(&w, 0, sizeof(w));
	for (i = 0; i < FZ_GUESTS; i++)
		w.g[i].fd = -1;
	for (i = 0; i < FZ_LEGS; i++)
		w.leg[i].fd = -1;
	w.cur = -1;
	w.new_gi = -1;
	w.sc.in = data;
	w.sc.len = size;

	/* Small limits, so the script reaches them; timers far out. */
	memset(&conf, 0, sizeof(conf));
	conf.replay_max = PROTO_WINDOW_MIN;
	conf.hold_ms = 600000;
	conf.handshake_ms = 600000;
	conf.keepalive_ms = 600000;
	conf.idle_max = 2;
	w.ctx = sess_ctx_new(fz_base, SESS_CLIENT, &conf, &fz_ops, &w);
	CHECK(w.ctx != NULL);
	out = evbuffer_new();
	CHECK(out != NULL);

	(void)fzloop_run(&w.sc, fz_step, out, fz_read_ready);

	/* Every leg and guest goes; the client sees them go. */
	for (i = 0; i < FZ_LEGS; i++)
		if (w.leg[i].fd != -1) {
			close(w.leg[i].fd);
			w.leg[i].fd = -1;
		}
	for (i = 0; i < FZ_GUESTS; i++)
		if (w.g[i].fd != -1) {
			close(w.g[i].fd);
			w.g[i].fd = -1;
		}
	(void)fzloop_settle(fz_read_ready);
	sess_ctx_free(w.ctx);
	w.ctx = NULL;
	fzloop_finish();
	/* Legs dialled after ours closed (a session trying again). */
	for (i = 0; i < FZ_LEGS; i++) {
		if (w.leg[i].fd != -1)
			close(w.leg[i].fd);
		if (w.leg[i].rx != NULL)
			evbuffer_free(w.leg[i].rx);
	}
	evbuffer_free(out);
	/* Every leg and guest socket the client held is closed. */
	fzloop_fds_check();
	return (0);
}
