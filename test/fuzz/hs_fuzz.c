/*
 * hs_fuzz.c -- libFuzzer harness for the server end of a session
 * (sess.c, SESS_SERVER): the handshake and the stream as a peer drives
 * them, on a real sess_ctx and a real event loop.
 *
 * frame_fuzz covers the payload decoders; what decides what to do with
 * a decoded HELLO, PROOF, DATA or ACK (sessions by id, the limits, the
 * resume proof and the secret's rotation, offsets, FIN, the replay,
 * refusals and leg closes) is in sess.c and is reached only through a
 * leg.  Here every leg is a socketpair whose far end the harness holds,
 * and every session's backend is another socketpair (ops->open).
 *
 * The input is a script, one byte per step (low nibble the step, high
 * nibble its argument, more bytes taken as the step needs them): open
 * a leg, write raw bytes on it, or send a frame the harness builds --
 * HELLO NEW with the harness's own X25519 key (and any host, service
 * and VM name the script gives), HELLO RESUME, or one that carries
 * its proof over the ticket (version 3), a PROOF
 * with the right MAC (or the previous secret's, or a wrong one), DATA,
 * ACK, FIN, PING, CLOSE, ERROR -- with offsets that are right, stale,
 * ahead or arbitrary; shut or close a leg; write to, shut or reset a
 * backend; reset every leg (a vMotion) or close a session (an
 * operator).  After each step the loop runs (EVLOOP_NONBLOCK) until
 * nothing moves, and the harness reads everything the server wrote.
 *
 * The harness is the client end: it derives the session secret from
 * the WELCOME as docs/protocol.md says (its own kdf, not sess.c's), so
 * resumes verify and the server's side of them runs.  What the server
 * sends must be well-formed frames in a legal order, DATA must carry
 * the backend's bytes at their offsets, FIN the backend's length, ACK
 * no more than was sent; the backend must get the preamble, then the
 * harness's bytes in order, each once; a session that finished
 * releases its leg (RELEASE with its id), and the script may say HELLO
 * on that leg again.  Raw bytes (or a frame cut short) make the
 * harness's model of that leg and of its session unreliable, so after
 * them only the framing is checked there.
 *
 * Timers (hold time, handshake deadline, keepalive) are set far out and
 * never fire here: their paths are the unit tests' (test_sess.c).
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "frame.h"
#include "proto.h"
#include "sess.h"
#include "fuzz.h"
#include "fzloop.h"
#include "../refkdf.h"

#define FZ_LEGS		6
#define FZ_SIDS		4		/* ids the script can name */
#define FZ_BACKENDS	8
#define FZ_PRE		"PROXY fuzz\r\n"	/* odd sids' preamble */

int	LLVMFuzzerInitialize(int *, char ***);

/* One session id as the client end knows it. */
struct fz_sid {
	uint64_t	 id;
	int		 have_secret;
	uint8_t		 secret[PROTO_MAC_LEN];
	uint8_t		 prev[PROTO_MAC_LEN];	/* before the last rotation */
	int		 have_prev;
	uint64_t	 up_next;	/* our next DATA offset */
	uint64_t	 up_max;	/* end of the furthest DATA sent */
	int		 fin_sent;
	uint64_t	 down;		/* backend bytes received in order */
	int		 lied;		/* claimed an offset we lack */
	int		 raw;		/* bytes off the model reached it:
					   what the server holds is unknown */
	int		 gen;		/* sessions opened under this id */
	uint16_t	 service;	/* of our last HELLO NEW */
	char		 name[PROTO_NAME_MAX + 1];
};

/* One backend connection (ops->open), our end. */
struct fz_backend {
	int		 fd;
	int		 sidx;		/* -1: an id the script cannot name */
	int		 gen;
	size_t		 prelen;
	size_t		 pre_rd;
	uint64_t	 rd;		/* stream bytes read (after the pre) */
	uint64_t	 written;	/* fzloop_down() bytes written into it */
	int		 shut;		/* our write side shut cleanly */
};

/* One leg, our end. */
struct fz_leg {
	int		 fd;
	int		 sidx;		/* named by our first HELLO; -1 */
	int		 raw;		/* raw bytes went out: no model */
	int		 hello;		/* 0, PROTO_HELLO_NEW or _RESUME */
	int		 up;		/* WELCOME or RESUMED seen */
	int		 refused;	/* ERROR seen */
	int		 gen;
	uint8_t		 nonce_c[PROTO_NONCE_LEN];
	uint8_t		 nonce_s[PROTO_NONCE_LEN];
	int		 challenged;
	int		 one_trip;	/* the HELLO carried the proof */
	uint8_t		 used[PROTO_MAC_LEN];	/* the PROOF's secret */
	int		 proved;
	int		 paused;	/* we stopped reading it */
	struct evbuffer	*rx;
};

struct fz_world {
	struct sess_ctx		*ctx;
	struct fz_sid		 sid[FZ_SIDS];
	struct fz_backend	 be[FZ_BACKENDS];
	struct fz_leg		 leg[FZ_LEGS];
	int			 cur;		/* current leg, -1: none */
	int			 refuse_open;
	int			 raw;		/* raw bytes went out */
	struct fzloop_script	 sc;		/* the rest of the script */
};

static struct event_base	*fz_base;
static struct sess_ctx		*fz_keep;	/* keeps sess.c's crypto up */
static EVP_PKEY			*fz_key;	/* our X25519 key */
static uint8_t			 fz_pub[PROTO_KEY_LEN];
static struct fz_world		 w;

static const uint64_t fz_ids[FZ_SIDS] = {
	1, 2, 0x8000000000000000ULL, 0xfedcba9876543210ULL
};

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

/* docs/protocol.md's kdf (refkdf.h); the harness cannot go on without. */
static void
fz_kdf(const uint8_t *key, const char *label, uint64_t sid,
    const uint8_t *nc, const uint8_t *ns, const uint8_t *tail, size_t tlen,
    uint8_t out[PROTO_MAC_LEN])
{
	CHECK(refkdf(key, label, sid, nc, ns, tail, tlen, out) == 0);
}

/* The secret of a session the WELCOME W opened on LEG. */
static void
fz_secret(struct fz_leg *leg, const struct proto_welcome *wl,
    uint8_t out[PROTO_MAC_LEN])
{
	EVP_PKEY	*peer;
	EVP_PKEY_CTX	*pc;
	uint8_t		 shared[PROTO_KEY_LEN], pubs[2 * PROTO_KEY_LEN];
	size_t		 len = sizeof(shared);

	peer = EVP_PKEY_new_raw_public_key_ex(NULL, "X25519", NULL,
	    wl->pubkey, PROTO_KEY_LEN);
	CHECK(peer != NULL);
	pc = EVP_PKEY_CTX_new_from_pkey(NULL, fz_key, NULL);
	CHECK(pc != NULL && EVP_PKEY_derive_init(pc) == 1 &&
	    EVP_PKEY_derive_set_peer(pc, peer) == 1 &&
	    EVP_PKEY_derive(pc, shared, &len) == 1 && len == sizeof(shared));
	EVP_PKEY_CTX_free(pc);
	EVP_PKEY_free(peer);
	memcpy(pubs, fz_pub, PROTO_KEY_LEN);
	memcpy(pubs + PROTO_KEY_LEN, wl->pubkey, PROTO_KEY_LEN);
	fz_kdf(shared, "vrelay-v1-secret", wl->sid, leg->nonce_c, wl->nonce,
	    pubs, sizeof(pubs), out);
}

/* Which of our ids ID is, or -1. */
static int
fz_sidx(uint64_t id)
{
	int	i;

	for (i = 0; i < FZ_SIDS; i++)
		if (fz_ids[i] == id)
			return (i);
	return (-1);
}

/* ops->open: a backend socketpair, unless the script says refuse. */
static int
fz_open(struct sess *s, void *arg, const char **why)
{
	struct fz_backend	*b = NULL;
	int			 fds[2], i, x;

	for (i = 0; i < FZ_BACKENDS; i++)
		if (w.be[i].fd == -1) {
			b = &w.be[i];
			break;
		}
	if (w.refuse_open || b == NULL) {
		*why = "fuzz: backend refused";
		return (-1);
	}
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0, fds) == 0);
	memset(b, 0, sizeof(*b));
	b->fd = fds[1];
	b->sidx = x = fz_sidx(sess_id(s));
	if (x >= 0)
		b->gen = ++w.sid[x].gen;
	/* What our HELLO NEW said is what the server took. */
	if (x >= 0 && !w.raw) {
		CHECK(sess_service(s) == w.sid[x].service);
		CHECK(strcmp(sess_name(s), w.sid[x].name) == 0);
	}
	b->prelen = x >= 0 && (x & 1) ? strlen(FZ_PRE) : 0;
	sess_set_local(s, fds[0], FZ_PRE, b->prelen);
	return (0);
}

/* ops->event: reasons are text; OPEN has none. */
static void
fz_event(struct sess *s, enum sess_event ev, const char *reason, void *arg)
{
	const char	*p;

	CHECK((reason == NULL) == (ev == SESS_EV_OPEN));
	if (reason != NULL)
		fz_ascii(reason);
	fz_ascii(sess_idstr(s));
	CHECK(sess_host(s) != NULL);
	fz_ascii(sess_host(s));
	/* A VM name may be UTF-8, but never has control bytes. */
	CHECK(sess_name(s) != NULL && strlen(sess_name(s)) <= PROTO_NAME_MAX);
	for (p = sess_name(s); *p != '\0'; p++)
		CHECK((unsigned char)*p >= 0x20 && (unsigned char)*p != 0x7f);
	CHECK(sess_strservice(sess_service(s)) != NULL);
}

/* ops->refused. */
static void
fz_refused(const char *peer, const char *reason, void *arg)
{
	fz_ascii(peer);
	fz_ascii(reason);
}

/* The current backend of our id X, or NULL. */
static struct fz_backend *
fz_be(int x)
{
	int	i;

	for (i = 0; i < FZ_BACKENDS; i++)
		if (w.be[i].fd != -1 && w.be[i].sidx == x &&
		    w.be[i].gen == w.sid[x].gen)
			return (&w.be[i]);
	return (NULL);
}

/* One frame the server sent on LEG. */
static void
fz_frame(void *arg, int type, const uint8_t *p, size_t len)
{
	struct fz_leg		*leg = arg;
	struct fz_sid		*sd = leg->sidx >= 0 ? &w.sid[leg->sidx] : NULL;
	struct fz_backend	*b = leg->sidx >= 0 ? fz_be(leg->sidx) : NULL;
	struct proto_welcome	 wl;
	struct proto_challenge	 ch;
	struct proto_error	 er;
	uint64_t		 v, off, i;
	int			 model = !leg->raw && sd != NULL;

	/* Nothing follows an ERROR: the server closes the leg. */
	CHECK(!leg->refused);
	switch (type) {
	case PROTO_WELCOME:
		CHECK(frame_welcome_decode(p, len, &wl) == FRAME_OK);
		if (!model)
			return;
		CHECK(leg->hello == PROTO_HELLO_NEW && !leg->up);
		CHECK(wl.sid == sd->id);
		fz_secret(leg, &wl, sd->secret);
		sd->have_secret = 1;
		sd->have_prev = 0;
		sd->up_next = sd->up_max = sd->down = 0;
		sd->fin_sent = sd->lied = sd->raw = 0;
		leg->up = 1;
		leg->gen = sd->gen;
		return;
	case PROTO_CHALLENGE:
		CHECK(frame_challenge_decode(p, len, &ch) == FRAME_OK);
		if (!model)
			return;
		CHECK(leg->hello == PROTO_HELLO_RESUME && !leg->up &&
		    !leg->challenged);
		memcpy(leg->nonce_s, ch.nonce, sizeof(ch.nonce));
		leg->challenged = 1;
		leg->proved = 0;	/* a HELLO's proof is void now */
		return;
	case PROTO_RESUMED:
		CHECK(frame_u64_decode(p, len, &v) == FRAME_OK);
		if (!model)
			return;
		CHECK(leg->proved && !leg->up);
		if (!sd->raw)
			CHECK(v <= sd->up_max + (sd->fin_sent ? 1 : 0));
		/* A ticket is only ever the current secret's, once. */
		if (leg->one_trip && !leg->challenged)
			CHECK(memcmp(leg->used, sd->secret, PROTO_MAC_LEN) == 0);
		memcpy(sd->prev, leg->used, PROTO_MAC_LEN);
		memcpy(sd->secret, leg->used, PROTO_MAC_LEN);
		fz_kdf(sd->prev, "vrelay-v1-rotate", sd->id, leg->nonce_c,
		    leg->nonce_s, NULL, 0, sd->secret);
		sd->have_prev = 1;
		sd->up_next = v > sd->up_max ? sd->up_max : v;
		leg->up = 1;
		leg->gen = sd->gen;
		return;
	case PROTO_ERROR:
	case PROTO_CLOSE:
		CHECK(frame_error_decode(p, len, &er) == FRAME_OK);
		CHECK(er.code <= PROTO_CODE_MAX && er.code != PROTO_E_NONE);
		fz_ascii(er.reason);
		if (type == PROTO_ERROR)
			leg->refused = 1;
		else if (model)
			CHECK(leg->up);
		return;
	case PROTO_DATA:
		CHECK(len > 8 && len <= 8 + PROTO_DATA_MAX);
		CHECK(frame_u64_decode(p, 8, &off) == FRAME_OK);
		if (!model)
			return;
		CHECK(leg->up);
		for (i = 0; i < len - 8; i++)
			CHECK(p[8 + i] == fzloop_down(leg->sidx, off + i));
		if (leg->gen != sd->gen)
			return;
		if (b != NULL)
			CHECK(off + (len - 8) <= b->written);
		if (off <= sd->down && off + (len - 8) > sd->down)
			sd->down = off + (len - 8);
		else if (off > sd->down)
			CHECK(sd->lied);	/* a gap we did not ask for */
		return;
	case PROTO_ACK:
	case PROTO_FIN:
	case PROTO_PING:
	case PROTO_PONG:
		CHECK(frame_u64_decode(p, len, &v) == FRAME_OK);
		if (!model)
			return;
		CHECK(leg->up);
		if (type == PROTO_ACK && leg->gen == sd->gen && !sd->raw)
			CHECK(v <= sd->up_max + (sd->fin_sent ? 1 : 0));
		if (type == PROTO_FIN && leg->gen == sd->gen && b != NULL) {
			CHECK(v <= b->written);
			if (b->shut)
				CHECK(v == b->written);
		}
		return;
	case PROTO_RELEASE:
		CHECK(frame_u64_decode(p, len, &v) == FRAME_OK);
		if (!model)
			return;
		CHECK(leg->up && v == sd->id);
		/* The session is done; the leg may take a new HELLO. */
		leg->sidx = -1;
		leg->hello = leg->up = leg->challenged = leg->proved = 0;
		return;
	default:
		/* HELLO, PROOF or worse: never from a server. */
		CHECK(!"server sent a client's frame");
	}
}

/* Read what the server wrote on LEG; frames are checked as they end. */
static size_t
fz_leg_read(struct fz_leg *leg)
{
	if (leg->fd == -1 || leg->paused)
		return (0);
	return (fzloop_frames(leg->fd, leg->rx, fz_frame, leg));
}

/* Read what the server wrote to backend B: the preamble, then fzloop_up(). */
static size_t
fz_be_read(struct fz_backend *b)
{
	uint8_t		 buf[16384];
	size_t		 total = 0, i;
	ssize_t		 n;

	for (;;) {
		n = recv(b->fd, buf, sizeof(buf), 0);
		if (n <= 0)
			break;
		total += (size_t)n;
		for (i = 0; i < (size_t)n; i++) {
			if (b->pre_rd < b->prelen) {
				CHECK(buf[i] == (uint8_t)FZ_PRE[b->pre_rd]);
				b->pre_rd++;
				continue;
			}
			if (b->sidx >= 0 && !w.raw) {
				CHECK(buf[i] == fzloop_up(b->sidx, b->rd));
				if (b->gen == w.sid[b->sidx].gen)
					CHECK(b->rd < w.sid[b->sidx].up_max);
			}
			b->rd++;
		}
	}
	return (total);
}

/* Read whatever our ends have waiting (one poll(), no idle recv()). */
static size_t
fz_read_ready(void)
{
	struct pollfd	 pfd[FZ_LEGS + FZ_BACKENDS];
	void		*who[FZ_LEGS + FZ_BACKENDS];
	size_t		 moved = 0;
	int		 i, n = 0;

	for (i = 0; i < FZ_LEGS; i++)
		if (w.leg[i].fd != -1 && !w.leg[i].paused) {
			pfd[n].fd = w.leg[i].fd;
			pfd[n].events = POLLIN;
			who[n++] = &w.leg[i];
		}
	for (i = 0; i < FZ_BACKENDS; i++)
		if (w.be[i].fd != -1) {
			pfd[n].fd = w.be[i].fd;
			pfd[n].events = POLLIN;
			who[n++] = &w.be[i];
		}
	if (n == 0 || poll(pfd, n, 0) <= 0)
		return (0);
	for (i = 0; i < n; i++) {
		if (pfd[i].revents == 0)
			continue;
		if ((char *)who[i] >= (char *)w.leg &&
		    (char *)who[i] < (char *)(w.leg + FZ_LEGS))
			moved += fz_leg_read(who[i]);
		else
			moved += fz_be_read(who[i]);
	}
	return (moved);
}

/*
 * Bytes off the model go out on LEG.  Its session's model goes too: a
 * cut or raw DATA frame's first bytes are real session data the server
 * may take (it streams a body as it comes), and raw bytes may say any
 * offset, so what the session holds, and from where the server sends
 * on another leg, is unknown.
 */
static void
fz_off_model(struct fz_leg *leg)
{
	leg->raw = w.raw = 1;
	if (leg->sidx >= 0)
		w.sid[leg->sidx].raw = w.sid[leg->sidx].lied = 1;
}

/* Send the frames in OUT on the current leg, whole or marked raw. */
static void
fz_send(struct evbuffer *out)
{
	struct fz_leg	*leg;
	size_t		 len = evbuffer_get_length(out);
	ssize_t		 n;

	if (w.cur < 0 || (leg = &w.leg[w.cur])->fd == -1) {
		evbuffer_drain(out, len);
		return;
	}
	n = send(leg->fd, evbuffer_pullup(out, -1), len, MSG_NOSIGNAL);
	if (n != (ssize_t)len && n > 0)
		fz_off_model(leg);	/* a frame cut: framing is lost */
	evbuffer_drain(out, len);
}

/* A new leg: a socketpair, the server's end to sess_accept(). */
static void
fz_newleg(void)
{
	struct bufferevent	*bev;
	struct fz_leg		*leg = NULL;
	char			 peer[32];
	int			 fds[2], i;

	for (i = 0; i < FZ_LEGS; i++)
		if (w.leg[i].fd == -1 && w.leg[i].rx == NULL) {
			leg = &w.leg[i];
			break;
		}
	if (leg == NULL)
		return;
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0, fds) == 0);
	memset(leg, 0, sizeof(*leg));
	leg->fd = fds[1];
	leg->sidx = -1;
	leg->rx = evbuffer_new();
	CHECK(leg->rx != NULL);
	bev = bufferevent_socket_new(fz_base, fds[0], BEV_OPT_CLOSE_ON_FREE);
	CHECK(bev != NULL);
	snprintf(peer, sizeof(peer), "unix:fuzz-leg-%d", i);
	sess_accept(w.ctx, bev, peer);
	w.cur = i;
}

/*
 * A HELLO's proof (RESUME_PROOF): next is what we received, the MAC
 * over the ticket our secret implies, or the previous secret's (arg 8).
 */
static void
fz_hello_proof(struct proto_hello *h, struct fz_leg *leg, int x, int arg)
{
	struct fz_sid	*sd = &w.sid[x];
	uint8_t		 tail[8];
	int		 i;

	memcpy(leg->used, (arg & 8) && sd->have_prev ? sd->prev : sd->secret,
	    PROTO_MAC_LEN);
	fz_kdf(leg->used, "vrelay-v3-ticket", sd->id, NULL, NULL, NULL, 0,
	    leg->nonce_s);
	h->next = sd->down;
	for (i = 7; i >= 0; i--)
		tail[7 - i] = (uint8_t)(h->next >> (i * 8));
	fz_kdf(leg->used, "vrelay-v1-proof", sd->id, h->nonce, leg->nonce_s,
	    tail, sizeof(tail), h->mac);
	leg->proved = 1;
	if (!sd->have_secret)
		leg->raw = w.raw = 1;	/* no secret: a guess */
}

/* HELLO, NEW or RESUME (arg 4: with its proof), for our id X. */
static void
fz_hello(struct evbuffer *out, int kind, int arg)
{
	struct proto_hello	 h;
	struct fz_leg		*leg;
	size_t			 n, i;
	int			 x = arg & 3;

	if (w.cur < 0)
		return;
	leg = &w.leg[w.cur];
	memset(&h, 0, sizeof(h));
	h.version = PROTO_VERSION;
	h.kind = kind;
	h.sid = fz_ids[x];
	memset(h.nonce, fz_byte(), sizeof(h.nonce));
	h.nonce[0] = (uint8_t)w.cur;
	if (kind == PROTO_HELLO_NEW) {
		/* Version 5's window: any the decoder takes. */
		h.window = PROTO_WINDOW_MIN + fz_byte() * 65536U;
		if (arg & 8)
			memset(h.pubkey, 0, sizeof(h.pubkey));	/* low order */
		else
			memcpy(h.pubkey, fz_pub, sizeof(h.pubkey));
		h.guest_cid = 42;
		h.guest_port = fz_byte();
		if (arg & 4) {
			n = fz_byte() % 40;
			for (i = 0; i < n; i++)
				h.host[i] = (char)fz_byte();
			/* v2's tail: any service, a name of any bytes. */
			h.service = fz_byte();
			n = fz_byte();
			if (n > PROTO_NAME_MAX)
				n = PROTO_NAME_MAX;
			for (i = 0; i < n; i++)
				h.name[i] = (char)fz_byte();
		} else
			strlcpy(h.host, "guest.example", sizeof(h.host));
		w.sid[x].service = h.service;
		strlcpy(w.sid[x].name, h.name, sizeof(w.sid[x].name));
	}
	if (kind == PROTO_HELLO_RESUME_PROOF)
		fz_hello_proof(&h, leg, x, arg);
	frame_hello_add(out, &h);
	if (leg->hello == 0 && !leg->raw) {
		leg->sidx = x;
		/* The model's: either resume may be CHALLENGEd. */
		leg->hello = kind == PROTO_HELLO_NEW ? kind :
		    PROTO_HELLO_RESUME;
		leg->one_trip = kind == PROTO_HELLO_RESUME_PROOF;
		memcpy(leg->nonce_c, h.nonce, sizeof(h.nonce));
		if (!leg->one_trip)
			leg->proved = 0;
	} else
		leg->raw = w.raw = 1;	/* a second HELLO: off the model */
}

/* PROOF for the current leg's resume. */
static void
fz_proof(struct evbuffer *out, int arg)
{
	struct proto_proof	 pr;
	struct fz_leg		*leg;
	struct fz_sid		*sd;
	uint8_t			 tail[8];
	int			 i;

	if (w.cur < 0 || (leg = &w.leg[w.cur])->sidx < 0)
		return;
	sd = &w.sid[leg->sidx];
	switch (arg & 3) {
	case 0:
		pr.next = sd->down;
		break;
	case 1:
		pr.next = 0;
		break;
	case 2:
		pr.next = fz_u64();
		break;
	default:
		pr.next = sd->down + 1;
		break;
	}
	if (pr.next != sd->down)
		sd->lied = 1;
	memcpy(leg->used, (arg & 4) && sd->have_prev ? sd->prev : sd->secret,
	    PROTO_MAC_LEN);
	for (i = 7; i >= 0; i--)
		tail[7 - i] = (uint8_t)(pr.next >> (i * 8));
	fz_kdf(leg->used, "vrelay-v1-proof", sd->id, leg->nonce_c,
	    leg->nonce_s, tail, sizeof(tail), pr.mac);
	if (arg & 8)
		pr.mac[fz_byte() % PROTO_MAC_LEN] ^= 1;
	if (!sd->have_secret || !leg->challenged)
		leg->raw = w.raw = 1;	/* no secret or no nonce: a guess */
	leg->proved = 1;
	frame_proof_add(out, &pr);
}

/* DATA from the current leg's id, fzloop_up() bytes at the chosen offset. */
static void
fz_data(struct evbuffer *out, int arg)
{
	struct fz_leg	*leg;
	struct fz_sid	*sd;
	uint8_t		 buf[256];
	uint64_t	 off;
	size_t		 n, i;
	int		 x;

	if (w.cur < 0)
		return;
	leg = &w.leg[w.cur];
	x = leg->sidx >= 0 ? leg->sidx : 0;
	sd = &w.sid[x];
	switch (arg & 3) {
	case 0:
		off = sd->up_next;
		break;
	case 1:
		off = sd->up_next - (sd->up_next < 16 ? sd->up_next :
		    fz_byte() % 16);
		break;
	case 2:
		off = sd->up_next + 1;
		break;
	default:
		off = fz_u64();
		break;
	}
	n = fz_byte();
	for (i = 0; i < n; i++)
		buf[i] = fzloop_up(x, off + i);
	frame_data_hdr_add(out, off, n);
	evbuffer_add(out, buf, n);
	if ((arg & 3) <= 1 && n > 0 && off + n > sd->up_next)
		sd->up_next = off + n;
	/* The server holds at most up_max; beyond it DATA is a gap. */
	if (n > 0 && off <= sd->up_max && off + n > sd->up_max)
		sd->up_max = off + n;
}

/* A backend step for our id X. */
static void
fz_backend(int arg)
{
	struct fz_backend	*b;
	struct linger		 lg = { 1, 0 };
	uint8_t			 buf[256];
	size_t			 n, i;
	ssize_t			 r;

	if ((b = fz_be(arg & 3)) == NULL)
		return;
	if (arg & 4) {
		shutdown(b->fd, SHUT_WR);
		b->shut = 1;
	} else if (arg & 8) {
		setsockopt(b->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(b->fd);
		b->fd = -1;
	} else if (!b->shut) {
		n = fz_byte();
		for (i = 0; i < n; i++)
			buf[i] = fzloop_down(arg & 3, b->written + i);
		if ((r = send(b->fd, buf, n, MSG_NOSIGNAL)) > 0)
			b->written += (size_t)r;
	}
}

/* Anything else: pause a leg, refuse opens, reset, close, status. */
static void
fz_misc(int arg)
{
	struct sess	*s;
	size_t		 counts[SESS_CLOSED + 1];
	json_t		*j;

	switch (arg) {
	case 0:
		if (w.cur >= 0)
			w.leg[w.cur].paused = !w.leg[w.cur].paused;
		break;
	case 1:
		w.refuse_open = !w.refuse_open;
		break;
	case 2:
		(void)sess_ctx_reset_legs(w.ctx, "unix:", "fuzz: vMotion");
		break;
	case 3:
		if ((s = sess_ctx_find(w.ctx, fz_ids[fz_byte() & 3])) != NULL)
			sess_close(s, PROTO_E_SHUTDOWN, "closed by operator");
		break;
	case 4:
		sess_ctx_states(w.ctx, counts);
		j = sess_ctx_json(w.ctx);
		CHECK(json_array_size(j) == sess_ctx_count(w.ctx));
		json_decref(j);
		j = sess_ctx_stats(w.ctx);
		CHECK(j != NULL);
		json_decref(j);
		break;
	default:
		break;
	}
}

/*
 * A stream frame on a leg whose WELCOME or RESUMED we have not read
 * yet (a paused leg): the server may take it, but our model of the
 * session would be reset under it when the answer is read.  Off it.
 */
static void
fz_pipelined(struct fz_leg *leg)
{
	if (leg != NULL && leg->hello != 0 && !leg->up)
		fz_off_model(leg);
}

/* The leg the script is on, or NULL. */
static struct fz_leg *
fz_cur_leg(void)
{
	return (w.cur >= 0 ? &w.leg[w.cur] : NULL);
}

/* Steps that only change the harness's state, or a leg's socket. */
static void
fz_step_newleg(struct evbuffer *out, int arg)
{
	fz_newleg();
}

static void
fz_step_pick(struct evbuffer *out, int arg)
{
	if (w.leg[arg % FZ_LEGS].fd != -1)
		w.cur = arg % FZ_LEGS;
}

static void
fz_step_leg_end(struct evbuffer *out, int arg)
{
	struct fz_leg	*leg = fz_cur_leg();

	if (leg == NULL || leg->fd == -1)
		return;
	if (arg & 1) {
		close(leg->fd);
		leg->fd = -1;
	} else
		shutdown(leg->fd, SHUT_WR);
}

static void
fz_step_backend(struct evbuffer *out, int arg)
{
	fz_backend(arg);
}

static void
fz_step_misc(struct evbuffer *out, int arg)
{
	fz_misc(arg);
}

/* Steps that send what they build on the current leg (fz_send). */
static void
fz_step_raw(struct evbuffer *out, int arg)
{
	struct fz_leg	*leg = fz_cur_leg();
	uint8_t		 buf[256];
	size_t		 n, i;

	n = fz_byte();
	for (i = 0; i < n; i++)
		buf[i] = fz_byte();
	evbuffer_add(out, buf, n);
	if (leg != NULL)
		fz_off_model(leg);
	fz_send(out);
}

static void
fz_step_hello_new(struct evbuffer *out, int arg)
{
	fz_hello(out, PROTO_HELLO_NEW, arg);
	fz_send(out);
}

static void
fz_step_hello_resume(struct evbuffer *out, int arg)
{
	fz_hello(out, arg & 4 ? PROTO_HELLO_RESUME_PROOF : PROTO_HELLO_RESUME,
	    arg);
	fz_send(out);
}

static void
fz_step_proof(struct evbuffer *out, int arg)
{
	fz_proof(out, arg);
	fz_send(out);
}

/*
 * Stream steps: a leg whose HELLO is not answered yet has its offsets
 * modelled no more (they are pipelined behind it).
 */
static void
fz_step_data(struct evbuffer *out, int arg)
{
	fz_pipelined(fz_cur_leg());
	fz_data(out, arg);
	fz_send(out);
}

static void
fz_step_ack(struct evbuffer *out, int arg)
{
	struct fz_leg	*leg = fz_cur_leg();
	struct fz_sid	*sd;

	fz_pipelined(leg);
	if (leg == NULL || leg->sidx < 0) {
		frame_u64_add(out, PROTO_ACK, fz_u64());
		fz_send(out);
		return;
	}
	sd = &w.sid[leg->sidx];
	switch (arg & 3) {
	case 0:
		frame_u64_add(out, PROTO_ACK, sd->down);
		break;
	case 1:
		frame_u64_add(out, PROTO_ACK, sd->down + 1);
		sd->lied = 1;
		break;
	case 2:
		frame_u64_add(out, PROTO_ACK, fz_u64());
		sd->lied = 1;
		break;
	default:
		frame_u64_add(out, PROTO_ACK, 0);
		break;
	}
	fz_send(out);
}

static void
fz_step_fin(struct evbuffer *out, int arg)
{
	struct fz_leg	*leg = fz_cur_leg();

	fz_pipelined(leg);
	if (leg == NULL || leg->sidx < 0 || (arg & 1)) {
		frame_u64_add(out, PROTO_FIN, fz_u64());
		if (leg != NULL && leg->sidx >= 0)
			w.sid[leg->sidx].fin_sent = 1;
	} else {
		frame_u64_add(out, PROTO_FIN, w.sid[leg->sidx].up_next);
		w.sid[leg->sidx].fin_sent = 1;
	}
	fz_send(out);
}

static void
fz_step_ping(struct evbuffer *out, int arg)
{
	fz_pipelined(fz_cur_leg());
	frame_u64_add(out, arg & 1 ? PROTO_PONG : PROTO_PING, fz_byte());
	fz_send(out);
}

static void
fz_step_error(struct evbuffer *out, int arg)
{
	char	reason[64];
	size_t	n, i;
	int	code;

	fz_pipelined(fz_cur_leg());
	code = fz_byte();
	n = fz_byte() % sizeof(reason);
	for (i = 0; i + 1 < n; i++)
		reason[i] = (char)fz_byte();
	reason[i] = '\0';
	frame_error_add(out, arg & 1 ? PROTO_CLOSE : PROTO_ERROR, code,
	    reason);
	fz_send(out);
}

/*
 * The steps, by a script byte's low nibble (its high one: ARG); the
 * last two repeat the first two, as the nibble modulo 14 did.
 */
static void (*const fz_steps[16])(struct evbuffer *, int) = {
	fz_step_newleg,	fz_step_pick,	fz_step_raw,	fz_step_hello_new,
	fz_step_hello_resume, fz_step_proof, fz_step_data, fz_step_ack,
	fz_step_fin,	fz_step_ping,	fz_step_error,	fz_step_leg_end,
	fz_step_backend, fz_step_misc,	fz_step_newleg,	fz_step_pick,
};

/* One step of the script. */
static void
fz_step(void *arg_out)
{
	uint8_t	b = fz_byte();

	fz_steps[b & 0x0f](arg_out, b >> 4);
}

/* The event base, our key, SIGPIPE off (the daemons ignore it too). */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const struct sess_ops	 ops = {
		.open = fz_open,
		.event = fz_event,
		.refused = fz_refused,
	};
	static const uint8_t		 warm[] = { 0x00, 0x03 };
	static const uint8_t		 priv[PROTO_KEY_LEN] = {
		0x77, 0x07, 0x6d, 0x0a, 0x73, 0x18, 0xa5, 0x7d,
		0x3c, 0x16, 0xc1, 0x72, 0x51, 0xb2, 0x66, 0x45,
		0xdf, 0x4c, 0x2f, 0x87, 0xeb, 0xc0, 0x99, 0x2a,
		0xb1, 0x77, 0xfb, 0xa5, 0x1d, 0xb9, 0x2c, 0x2a,
	};
	struct sess_conf		 conf;
	size_t				 len = PROTO_KEY_LEN;

	fz_base = fzloop_init("hs_fuzz", "HS_FUZZ_SPIN");
	fz_key = EVP_PKEY_new_raw_private_key_ex(NULL, "X25519", NULL, priv,
	    sizeof(priv));
	CHECK(fz_key != NULL);
	CHECK(EVP_PKEY_get_raw_public_key(fz_key, fz_pub, &len) == 1 &&
	    len == PROTO_KEY_LEN);
	/* sess.c sets its crypto up with the first context, not per run. */
	memset(&conf, 0, sizeof(conf));
	fz_keep = sess_ctx_new(fz_base, SESS_SERVER, &conf, &ops, NULL);
	/* A session opened first: what OpenSSL opens on first use stays. */
	(void)LLVMFuzzerTestOneInput(warm, sizeof(warm));
	fzloop_fds_baseline();
	return (0);
}

/* Entry point: one script against a fresh server context. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct sess_ops	 ops = {
		.open = fz_open,
		.event = fz_event,
		.refused = fz_refused,
	};
	struct sess_conf		 conf;
	struct evbuffer			*out;
	int				 i;

	memset(&w, 0, sizeof(w));
	for (i = 0; i < FZ_SIDS; i++)
		w.sid[i].id = fz_ids[i];
	for (i = 0; i < FZ_BACKENDS; i++)
		w.be[i].fd = -1;
	for (i = 0; i < FZ_LEGS; i++)
		w.leg[i].fd = -1;
	w.cur = -1;
	w.sc.in = data;
	w.sc.len = size;

	/* Small limits, so the script reaches them; timers far out. */
	memset(&conf, 0, sizeof(conf));
	conf.replay_max = 1024;
	conf.hold_ms = 600000;
	conf.handshake_ms = 600000;
	conf.keepalive_ms = 600000;
	conf.max_sessions = 3;
	conf.max_pending = 3;
	conf.idle_max = 2;	/* a finished session's leg waits for more */
	w.ctx = sess_ctx_new(fz_base, SESS_SERVER, &conf, &ops, &w);
	out = evbuffer_new();
	CHECK(out != NULL);

	(void)fzloop_run(&w.sc, fz_step, out, fz_read_ready);

	/* Every leg and backend goes; the server sees them go. */
	for (i = 0; i < FZ_LEGS; i++)
		if (w.leg[i].fd != -1) {
			close(w.leg[i].fd);
			w.leg[i].fd = -1;
		}
	for (i = 0; i < FZ_BACKENDS; i++)
		if (w.be[i].fd != -1) {
			close(w.be[i].fd);
			w.be[i].fd = -1;
		}
	(void)fzloop_settle(fz_read_ready);
	sess_ctx_free(w.ctx);
	w.ctx = NULL;
	fzloop_finish();	/* bufferevents are finalized from the loop */
	for (i = 0; i < FZ_LEGS; i++)
		if (w.leg[i].rx != NULL)
			evbuffer_free(w.leg[i].rx);
	evbuffer_free(out);
	/* Every leg and backend socket the server held is closed. */
	fzloop_fds_check();
	return (0);
}
