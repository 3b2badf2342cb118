/*
 * test_telnet.c -- unit tests for the TELNET stream codec (telnet.h).
 *
 * Wire bytes are written out by hand from RFC 854/855 rather than made
 * with the writers, except in the random round trip, where the writers
 * are what is under test too.  Every test feeds an evbuffer the way a
 * bufferevent would: in pieces, sometimes one byte at a time, and
 * checks what is left in the buffer after each call, since a caller
 * that stops after an event relies on nothing past it being consumed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <event2/buffer.h>

#include "telnet.h"

#define IAC	0xff
#define NOP	241
#define BRK	243
#define GA	249

/* One event as recorded, with its bytes copied out of the parser. */
struct rec_ev {
	int		 type;
	uint8_t		 verb;
	uint8_t		 opt;
	uint8_t		*p;
	size_t		 len;
};

/* An event sequence, adjacent data events merged into one. */
struct rec {
	struct rec_ev	*ev;
	size_t		 n;
	size_t		 cap;
};

/* A small deterministic PRNG (xorshift64*): rand() is banned. */
static uint64_t
rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return (*s * 0x2545f4914f6cdd1dULL);
}

/* A number in [0, n). */
static size_t
rng_below(uint64_t *s, size_t n)
{
	return ((size_t)(rng_next(s) % n));
}

/* Append an event to R, merging it into a data event just before. */
static void
rec_add_raw(struct rec *r, int type, uint8_t verb, uint8_t opt,
    const uint8_t *p, size_t len)
{
	struct rec_ev	*e;

	if (type == TELNET_EV_DATA && r->n > 0 &&
	    r->ev[r->n - 1].type == TELNET_EV_DATA) {
		e = &r->ev[r->n - 1];
		e->p = realloc(e->p, e->len + len + 1);
		assert_non_null(e->p);
		memcpy(e->p + e->len, p, len);
		e->len += len;
		return;
	}
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 16;
		r->ev = realloc(r->ev, r->cap * sizeof(*r->ev));
		assert_non_null(r->ev);
	}
	e = &r->ev[r->n++];
	e->type = type;
	e->verb = verb;
	e->opt = opt;
	e->len = len;
	e->p = malloc(len + 1);
	assert_non_null(e->p);
	if (len > 0)
		memcpy(e->p, p, len);
}

/* Record a parser event. */
static void
rec_add(struct rec *r, const struct telnet_ev *ev)
{
	switch (ev->type) {
	case TELNET_EV_DATA:
	case TELNET_EV_SB:
		assert_true(ev->len == 0 || ev->p != NULL);
		rec_add_raw(r, ev->type, ev->verb, ev->opt, ev->p, ev->len);
		break;
	case TELNET_EV_OPT:
	case TELNET_EV_CMD:
		rec_add_raw(r, ev->type, ev->verb, ev->opt, NULL, 0);
		break;
	default:
		fail_msg("event type %d", (int)ev->type);
	}
}

/* Free what rec_add() built. */
static void
rec_free(struct rec *r)
{
	size_t	i;

	for (i = 0; i < r->n; i++)
		free(r->ev[i].p);
	free(r->ev);
	memset(r, 0, sizeof(*r));
}

/* The two sequences must match event for event. */
static void
rec_assert_eq(const struct rec *a, const struct rec *b)
{
	size_t	i;

	assert_int_equal(a->n, b->n);
	for (i = 0; i < a->n; i++) {
		assert_int_equal(a->ev[i].type, b->ev[i].type);
		assert_int_equal(a->ev[i].len, b->ev[i].len);
		if (a->ev[i].len > 0)
			assert_memory_equal(a->ev[i].p, b->ev[i].p,
			    a->ev[i].len);
		if (a->ev[i].type == TELNET_EV_OPT ||
		    a->ev[i].type == TELNET_EV_CMD)
			assert_int_equal(a->ev[i].verb, b->ev[i].verb);
		if (a->ev[i].type == TELNET_EV_OPT ||
		    a->ev[i].type == TELNET_EV_SB)
			assert_int_equal(a->ev[i].opt, b->ev[i].opt);
	}
}

/* Append LEN bytes to B. */
static void
feed(struct evbuffer *b, const void *p, size_t len)
{
	assert_int_equal(evbuffer_add(b, p, len), 0);
}

/* Every event B yields now, into R; returns the last result. */
static int
drain_all(struct telnet *t, struct evbuffer *b, struct rec *r)
{
	struct telnet_ev	ev;
	int			rv;

	while ((rv = telnet_next(t, b, &ev)) == TELNET_OK) {
		if (ev.type == TELNET_EV_DATA) {
			assert_true(ev.len > 0);
			assert_true(ev.len <= TELNET_DATA_MAX);
		}
		rec_add(r, &ev);
	}
	return (rv);
}

/* The next event must be data P/LEN, leaving LEFT bytes in B. */
static void
expect_data(struct telnet *t, struct evbuffer *b, const void *p,
    size_t len, size_t left)
{
	struct telnet_ev	ev;

	assert_int_equal(telnet_next(t, b, &ev), TELNET_OK);
	assert_int_equal(ev.type, TELNET_EV_DATA);
	assert_int_equal(ev.len, len);
	assert_memory_equal(ev.p, p, len);
	assert_int_equal(evbuffer_get_length(b), left);
}

/* The next event must be IAC VERB OPT, leaving LEFT bytes in B. */
static void
expect_opt(struct telnet *t, struct evbuffer *b, uint8_t verb,
    uint8_t opt, size_t left)
{
	struct telnet_ev	ev;

	assert_int_equal(telnet_next(t, b, &ev), TELNET_OK);
	assert_int_equal(ev.type, TELNET_EV_OPT);
	assert_int_equal(ev.verb, verb);
	assert_int_equal(ev.opt, opt);
	assert_int_equal(evbuffer_get_length(b), left);
}

/* The next event must be the command VERB, leaving LEFT bytes in B. */
static void
expect_cmd(struct telnet *t, struct evbuffer *b, uint8_t verb, size_t left)
{
	struct telnet_ev	ev;

	assert_int_equal(telnet_next(t, b, &ev), TELNET_OK);
	assert_int_equal(ev.type, TELNET_EV_CMD);
	assert_int_equal(ev.verb, verb);
	assert_int_equal(evbuffer_get_length(b), left);
}

/* The next event must be SB OPT P/LEN, leaving LEFT bytes in B. */
static void
expect_sb(struct telnet *t, struct evbuffer *b, uint8_t opt,
    const void *p, size_t len, size_t left)
{
	struct telnet_ev	ev;

	assert_int_equal(telnet_next(t, b, &ev), TELNET_OK);
	assert_int_equal(ev.type, TELNET_EV_SB);
	assert_int_equal(ev.opt, opt);
	assert_int_equal(ev.len, len);
	if (len > 0)
		assert_memory_equal(ev.p, p, len);
	assert_int_equal(evbuffer_get_length(b), left);
}

/* Nothing complete must be left. */
static void
expect_eagain(struct telnet *t, struct evbuffer *b)
{
	struct telnet_ev	ev;

	assert_int_equal(telnet_next(t, b, &ev), TELNET_EAGAIN);
}

/* Plain bytes in one feed are one event, and nothing more. */
static void
test_data_one(void **state)
{
	struct telnet	*t = telnet_new(64);
	struct evbuffer	*b = evbuffer_new();

	feed(b, "hello, world\r\n", 14);
	expect_data(t, b, "hello, world\r\n", 14, 0);
	expect_eagain(t, b);
	expect_eagain(t, b);
	telnet_free(t);
	evbuffer_free(b);
}

/* Plain bytes over several feeds: each feed's bytes, in order. */
static void
test_data_split(void **state)
{
	struct telnet	*t = telnet_new(64);
	struct evbuffer	*b = evbuffer_new();

	expect_eagain(t, b);
	feed(b, "hel", 3);
	expect_data(t, b, "hel", 3, 0);
	expect_eagain(t, b);
	feed(b, "l", 1);
	feed(b, "o", 1);
	expect_data(t, b, "lo", 2, 0);
	feed(b, "\0x", 2);
	expect_data(t, b, "\0x", 2, 0);
	expect_eagain(t, b);
	telnet_free(t);
	evbuffer_free(b);
}

/* The data event's bytes are the parser's, not the buffer's. */
static void
test_data_outlives_buffer(void **state)
{
	struct telnet		*t = telnet_new(64);
	struct evbuffer		*b = evbuffer_new();
	struct telnet_ev	 ev;

	feed(b, "abc", 3);
	assert_int_equal(telnet_next(t, b, &ev), TELNET_OK);
	evbuffer_free(b);
	assert_int_equal(ev.type, TELNET_EV_DATA);
	assert_int_equal(ev.len, 3);
	assert_memory_equal(ev.p, "abc", 3);
	telnet_free(t);
}

/* Parse WIRE/LEN fed whole; the data must be exactly WANT/WLEN. */
static void
check_data_only(const uint8_t *wire, size_t len, const uint8_t *want,
    size_t wlen)
{
	struct telnet	*t = telnet_new(64);
	struct evbuffer	*b = evbuffer_new();
	struct rec	 r = { 0 };

	feed(b, wire, len);
	assert_int_equal(drain_all(t, b, &r), TELNET_EAGAIN);
	assert_int_equal(evbuffer_get_length(b), 0);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.ev[0].type, TELNET_EV_DATA);
	assert_int_equal(r.ev[0].len, wlen);
	assert_memory_equal(r.ev[0].p, want, wlen);
	rec_free(&r);
	telnet_free(t);
	evbuffer_free(b);
}

/* IAC IAC is one 0xff, with runs either side, and at either end. */
static void
test_iac_iac(void **state)
{
	static const uint8_t	w1[] = { 'a', IAC, IAC, 'b' };
	static const uint8_t	d1[] = { 'a', IAC, 'b' };
	static const uint8_t	w2[] = { IAC, IAC };
	static const uint8_t	d2[] = { IAC };
	static const uint8_t	w3[] = { 'x', 'y', IAC, IAC };
	static const uint8_t	d3[] = { 'x', 'y', IAC };
	static const uint8_t	w4[] = { IAC, IAC, 'z', IAC, IAC, IAC, IAC,
				    0, IAC, IAC };
	static const uint8_t	d4[] = { IAC, 'z', IAC, IAC, 0, IAC };

	check_data_only(w1, sizeof(w1), d1, sizeof(d1));
	check_data_only(w2, sizeof(w2), d2, sizeof(d2));
	check_data_only(w3, sizeof(w3), d3, sizeof(d3));
	check_data_only(w4, sizeof(w4), d4, sizeof(d4));
}

/* A long run of 0xff, every one escaped, comes back as that many. */
static void
test_iac_many(void **state)
{
	uint8_t	wire[2 * 300 + 2], want[300 + 2];
	size_t	i;

	for (i = 0; i < 300; i++) {
		wire[1 + 2 * i] = IAC;
		wire[2 + 2 * i] = IAC;
		want[1 + i] = IAC;
	}
	wire[0] = want[0] = 'A';
	wire[sizeof(wire) - 1] = want[sizeof(want) - 1] = 'Z';
	check_data_only(wire, sizeof(wire), want, sizeof(want));
}

/* IAC IAC at the very end of a feed, then more data in the next. */
static void
test_iac_iac_end_of_feed(void **state)
{
	static const uint8_t	 w1[] = { 'a', 'b', IAC, IAC };
	static const uint8_t	 d1[] = { 'a', 'b', IAC };
	struct telnet		*t = telnet_new(64);
	struct evbuffer		*b = evbuffer_new();
	struct rec		 r = { 0 }, want = { 0 };

	feed(b, w1, sizeof(w1));
	assert_int_equal(drain_all(t, b, &r), TELNET_EAGAIN);
	assert_int_equal(evbuffer_get_length(b), 0);
	feed(b, "cd", 2);
	assert_int_equal(drain_all(t, b, &r), TELNET_EAGAIN);
	assert_int_equal(evbuffer_get_length(b), 0);

	rec_add_raw(&want, TELNET_EV_DATA, 0, 0, d1, sizeof(d1));
	rec_add_raw(&want, TELNET_EV_DATA, 0, 0, (const uint8_t *)"cd", 2);
	rec_assert_eq(&r, &want);
	rec_free(&r);
	rec_free(&want);
	telnet_free(t);
	evbuffer_free(b);
}

/* IAC ends one feed, its second IAC starts the next. */
static void
test_iac_split_across_feeds(void **state)
{
	static const uint8_t	 w1[] = { 'a', 'b', IAC };
	static const uint8_t	 w2[] = { IAC, 'c', 'd' };
	static const uint8_t	 d2[] = { IAC, 'c', 'd' };
	static const uint8_t	 i1[] = { IAC };
	struct telnet		*t = telnet_new(64);
	struct evbuffer		*b = evbuffer_new();

	feed(b, w1, sizeof(w1));
	/* The run is returned; its IAC is not data, not yet anything. */
	expect_data(t, b, "ab", 2, 1);
	expect_eagain(t, b);
	feed(b, w2, sizeof(w2));
	expect_data(t, b, d2, sizeof(d2), 0);
	expect_eagain(t, b);

	/* The same, the IAC alone in each feed. */
	feed(b, i1, 1);
	expect_eagain(t, b);
	feed(b, i1, 1);
	expect_data(t, b, i1, 1, 0);
	expect_eagain(t, b);
	telnet_free(t);
	evbuffer_free(b);
}

/* WILL WONT DO DONT, whole, split after the verb, and byte by byte. */
static void
test_opt(void **state)
{
	static const uint8_t	 verbs[] = { TELNET_WILL, TELNET_WONT,
				    TELNET_DO, TELNET_DONT };
	struct telnet		*t = telnet_new(64);
	struct evbuffer		*b = evbuffer_new();
	uint8_t			 w[3];
	size_t			 i;

	for (i = 0; i < sizeof(verbs); i++) {
		w[0] = IAC;
		w[1] = verbs[i];
		w[2] = (uint8_t)(TELNET_OPT_VMWARE + i);

		feed(b, w, 3);
		expect_opt(t, b, w[1], w[2], 0);
		expect_eagain(t, b);

		feed(b, w, 2);
		expect_eagain(t, b);
		feed(b, w + 2, 1);
		expect_opt(t, b, w[1], w[2], 0);

		feed(b, w, 1);
		expect_eagain(t, b);
		feed(b, w + 1, 1);
		expect_eagain(t, b);
		feed(b, w + 2, 1);
		expect_opt(t, b, w[1], w[2], 0);
		expect_eagain(t, b);
	}

	/* The option byte may be 0xff (and is not an escape there). */
	w[1] = TELNET_DO;
	w[2] = IAC;
	feed(b, w, 3);
	feed(b, "q", 1);
	expect_opt(t, b, TELNET_DO, IAC, 1);
	expect_data(t, b, "q", 1, 0);
	telnet_free(t);
	evbuffer_free(b);
}

/* ESX's opening negotiation: five verbs back to back. */
static void
test_opt_burst(void **state)
{
	static const uint8_t	 w[] = {
		IAC, TELNET_WILL, 0xe8, IAC, TELNET_WILL, 0x00,
		IAC, TELNET_DO, 0x00, IAC, TELNET_WILL, 0x03,
		IAC, TELNET_DO, 0x03 };
	struct telnet		*t = telnet_new(64);
	struct evbuffer		*b = evbuffer_new();

	feed(b, w, sizeof(w));
	expect_opt(t, b, TELNET_WILL, TELNET_OPT_VMWARE, 12);
	expect_opt(t, b, TELNET_WILL, TELNET_OPT_BINARY, 9);
	expect_opt(t, b, TELNET_DO, TELNET_OPT_BINARY, 6);
	expect_opt(t, b, TELNET_WILL, TELNET_OPT_SGA, 3);
	expect_opt(t, b, TELNET_DO, TELNET_OPT_SGA, 0);
	expect_eagain(t, b);
	telnet_free(t);
	evbuffer_free(b);
}

/* Two-byte commands, a stray SE among them, whole and split. */
static void
test_cmd(void **state)
{
	static const uint8_t	 cmds[] = { NOP, BRK, GA, TELNET_SE, 242,
				    244, 245, 246, 247, 248 };
	struct telnet		*t = telnet_new(64);
	struct evbuffer		*b = evbuffer_new();
	uint8_t			 w[2];
	size_t			 i;

	for (i = 0; i < sizeof(cmds); i++) {
		w[0] = IAC;
		w[1] = cmds[i];
		feed(b, w, 2);
		expect_cmd(t, b, cmds[i], 0);
		expect_eagain(t, b);

		feed(b, w, 1);
		expect_eagain(t, b);
		feed(b, w + 1, 1);
		feed(b, "k", 1);
		expect_cmd(t, b, cmds[i], 1);
		expect_data(t, b, "k", 1, 0);
	}
	telnet_free(t);
	evbuffer_free(b);
}

/*
 * A run is returned before the command that ends it, and that
 * command's bytes are still in the buffer until the next call.
 */
static void
test_data_before_cmd(void **state)
{
	static const uint8_t	 w1[] = { 'a', 'b', 'c', IAC, NOP, 'd', 'e' };
	static const uint8_t	 w2[] = { 'x', IAC, TELNET_WILL, 0x00, 'y' };
	static const uint8_t	 w3[] = { 'l', 'o', 'g', IAC, TELNET_SB,
				    0xe8, 0x29, IAC, TELNET_SE, 'z' };
	static const uint8_t	 w4[] = { 'p', IAC, IAC, 'q', IAC, GA };
	static const uint8_t	 d4[] = { 'p', IAC, 'q' };
	struct telnet		*t = telnet_new(64);
	struct evbuffer		*b = evbuffer_new();
	uint8_t			 sb = 0x29;

	feed(b, w1, sizeof(w1));
	expect_data(t, b, "abc", 3, 4);
	expect_cmd(t, b, NOP, 2);
	expect_data(t, b, "de", 2, 0);
	expect_eagain(t, b);

	feed(b, w2, sizeof(w2));
	expect_data(t, b, "x", 1, 4);
	expect_opt(t, b, TELNET_WILL, 0x00, 1);
	expect_data(t, b, "y", 1, 0);

	feed(b, w3, sizeof(w3));
	expect_data(t, b, "log", 3, 7);
	expect_sb(t, b, 0xe8, &sb, 1, 1);
	expect_data(t, b, "z", 1, 0);

	/* An escaped 0xff inside one read stays in the run; GA waits. */
	feed(b, w4, sizeof(w4));
	expect_data(t, b, d4, sizeof(d4), 2);
	expect_cmd(t, b, GA, 0);
	expect_eagain(t, b);

	/* A run that ends a feed with the IAC of a verb. */
	feed(b, "mn", 2);
	feed(b, w2 + 1, 1);
	expect_data(t, b, "mn", 2, 1);
	expect_eagain(t, b);
	feed(b, w2 + 2, 2);
	expect_opt(t, b, TELNET_WILL, 0x00, 0);
	telnet_free(t);
	evbuffer_free(b);
}

/* SB with IAC IAC inside: one 0xff in the payload. */
static void
test_sb_escaped(void **state)
{
	static const uint8_t	 w[] = { IAC, TELNET_SB, 0xe8, 0x29, 0x01,
				    IAC, IAC, 0x02, IAC, TELNET_SE };
	static const uint8_t	 pl[] = { 0x29, 0x01, IAC, 0x02 };
	static const uint8_t	 w2[] = { IAC, TELNET_SB, 0x18, IAC, IAC,
				    IAC, TELNET_SE };
	static const uint8_t	 w3[] = { IAC, TELNET_SB, 0x18, IAC,
				    TELNET_SE };
	struct telnet		*t = telnet_new(64);
	struct evbuffer		*b = evbuffer_new();
	uint8_t			 ff = IAC;

	feed(b, w, sizeof(w));
	feed(b, "t", 1);
	expect_sb(t, b, 0xe8, pl, sizeof(pl), 1);
	expect_data(t, b, "t", 1, 0);

	/* Only an escaped 0xff as payload; then an empty SB. */
	feed(b, w2, sizeof(w2));
	feed(b, w3, sizeof(w3));
	expect_sb(t, b, 0x18, &ff, 1, sizeof(w3));
	expect_sb(t, b, 0x18, NULL, 0, 0);
	expect_eagain(t, b);
	telnet_free(t);
	evbuffer_free(b);
}

/* An SB fed a byte at a time: nothing until its SE, then all of it. */
static void
test_sb_bytewise(void **state)
{
	static const uint8_t	 w[] = { IAC, TELNET_SB, 0xe8, 0x28, 'c',
				    'o', IAC, IAC, 'k', IAC, IAC, IAC, IAC,
				    0x00, IAC, TELNET_SE, 'Q' };
	static const uint8_t	 pl[] = { 0x28, 'c', 'o', IAC, 'k', IAC,
				    IAC, 0x00 };
	struct telnet		*t = telnet_new(64);
	struct evbuffer		*b = evbuffer_new();
	size_t			 i;

	for (i = 0; i < sizeof(w) - 2; i++) {
		feed(b, w + i, 1);
		expect_eagain(t, b);
	}
	feed(b, w + i, 1);
	expect_sb(t, b, 0xe8, pl, sizeof(pl), 0);
	expect_eagain(t, b);
	feed(b, w + i + 1, 1);
	expect_data(t, b, "Q", 1, 0);
	telnet_free(t);
	evbuffer_free(b);
}

/* IAC SB OPT, then LEN payload bytes (0xff escaped), then IAC SE. */
static void
mk_sb(struct evbuffer *b, uint8_t opt, const uint8_t *p, size_t len)
{
	uint8_t	hd[3] = { IAC, TELNET_SB, opt }, tl[2] = { IAC, TELNET_SE };
	uint8_t	ff2[2] = { IAC, IAC };
	size_t	i;

	feed(b, hd, 3);
	for (i = 0; i < len; i++) {
		if (p[i] == IAC)
			feed(b, ff2, 2);
		else
			feed(b, &p[i], 1);
	}
	feed(b, tl, 2);
}

/* SB OPT 9 with LEN bytes at P fed a byte at a time: too long. */
static void
sb_too_long_bytewise(const uint8_t *p, size_t len)
{
	struct telnet		*t = telnet_new(32);
	struct evbuffer		*b = evbuffer_new(), *w = evbuffer_new();
	struct telnet_ev	 ev;
	uint8_t			 c;
	int			 rv = TELNET_EAGAIN;

	mk_sb(w, 9, p, len);
	while (evbuffer_remove(w, &c, 1) == 1) {
		feed(b, &c, 1);
		if ((rv = telnet_next(t, b, &ev)) != TELNET_EAGAIN)
			break;
	}
	assert_int_equal(rv, TELNET_E_SB_TOO_LONG);
	telnet_free(t);
	evbuffer_free(b);
	evbuffer_free(w);
}

/* sb_max bytes fit; one more is an error, escaped 0xff counting one. */
static void
test_sb_max(void **state)
{
	struct telnet		*t;
	struct evbuffer		*b;
	struct telnet_ev	 ev;
	uint8_t			 pl[33];
	size_t			 i, j;

	for (i = 0; i < sizeof(pl); i++)
		pl[i] = (uint8_t)(i * 37);
	/* Last payload byte plain, then escaped: the two paths in. */
	for (j = 0; j < 2; j++) {
		pl[31] = j ? IAC : 'e';
		pl[32] = j ? IAC : 'f';

		t = telnet_new(32);
		b = evbuffer_new();
		mk_sb(b, 7, pl, 32);
		expect_sb(t, b, 7, pl, 32, 0);
		mk_sb(b, 7, pl, 33);
		assert_int_equal(telnet_next(t, b, &ev),
		    TELNET_E_SB_TOO_LONG);
		telnet_free(t);
		evbuffer_free(b);
	}

	/* Fed one byte at a time, too. */
	sb_too_long_bytewise(pl, 33);

	/* sb_max 0: only the empty SB is allowed. */
	t = telnet_new(0);
	b = evbuffer_new();
	mk_sb(b, 1, NULL, 0);
	expect_sb(t, b, 1, NULL, 0, 0);
	mk_sb(b, 1, pl, 1);
	assert_int_equal(telnet_next(t, b, &ev), TELNET_E_SB_TOO_LONG);
	telnet_free(t);
	evbuffer_free(b);
}

/* IAC inside an SB followed by neither IAC nor SE is an error. */
static void
test_sb_bad_iac(void **state)
{
	static const uint8_t	 w1[] = { IAC, TELNET_SB, 0xe8, 0x00, IAC,
				    'A', IAC, TELNET_SE };
	static const uint8_t	 w2[] = { IAC, TELNET_SB, 0x18, IAC, NOP };
	static const uint8_t	 w3[] = { IAC, TELNET_SB, 0x18, 0x00, IAC,
				    TELNET_SB };
	struct telnet		*t;
	struct evbuffer		*b;
	struct telnet_ev	 ev;

	t = telnet_new(64);
	b = evbuffer_new();
	feed(b, w1, sizeof(w1));
	assert_int_equal(telnet_next(t, b, &ev), TELNET_E_SB_IAC);
	telnet_free(t);
	evbuffer_free(b);

	/* Split right after the IAC. */
	t = telnet_new(64);
	b = evbuffer_new();
	feed(b, w2, 4);
	assert_int_equal(telnet_next(t, b, &ev), TELNET_EAGAIN);
	feed(b, w2 + 4, 1);
	assert_int_equal(telnet_next(t, b, &ev), TELNET_E_SB_IAC);
	telnet_free(t);
	evbuffer_free(b);

	t = telnet_new(64);
	b = evbuffer_new();
	feed(b, w3, sizeof(w3));
	assert_int_equal(telnet_next(t, b, &ev), TELNET_E_SB_IAC);
	telnet_free(t);
	evbuffer_free(b);
}

/*
 * An SB far longer than the parser's 4096-byte copy, all in the
 * buffer: it must come out without more input (the chunk loop).
 */
static void
test_sb_longer_than_chunk(void **state)
{
	struct telnet		*t = telnet_new(10000);
	struct evbuffer		*b = evbuffer_new();
	struct telnet_ev	 ev;
	uint8_t			*pl;
	size_t			 i, n = 9500;

	pl = malloc(10000);
	assert_non_null(pl);
	for (i = 0; i < n; i++)
		pl[i] = i % 97 == 0 ? IAC : (uint8_t)(i * 13);
	feed(b, "pre", 3);
	mk_sb(b, TELNET_OPT_VMWARE, pl, n);
	feed(b, "post", 4);

	expect_data(t, b, "pre", 3, evbuffer_get_length(b) - 3);
	assert_int_equal(telnet_next(t, b, &ev), TELNET_OK);
	assert_int_equal(ev.type, TELNET_EV_SB);
	assert_int_equal(ev.opt, TELNET_OPT_VMWARE);
	assert_int_equal(ev.len, n);
	assert_memory_equal(ev.p, pl, n);
	assert_int_equal(evbuffer_get_length(b), 4);
	expect_data(t, b, "post", 4, 0);
	expect_eagain(t, b);

	/* Exactly 10000 with every byte escaped: 20005 wire bytes. */
	memset(pl, IAC, 10000);
	mk_sb(b, 3, pl, 10000);
	assert_int_equal(evbuffer_get_length(b), 2 * 10000 + 5);
	expect_sb(t, b, 3, pl, 10000, 0);
	free(pl);
	telnet_free(t);
	evbuffer_free(b);
}

/* Data over TELNET_DATA_MAX comes in several events, exactly. */
static void
test_data_long(void **state)
{
	struct telnet		*t = telnet_new(64);
	struct evbuffer		*b = evbuffer_new();
	struct telnet_ev	 ev;
	uint8_t			*p, *got;
	size_t			 i, n = 3 * TELNET_DATA_MAX + 123, glen = 0;
	size_t			 nev = 0;
	int			 pass, rv;

	p = malloc(n);
	got = malloc(n);
	assert_non_null(p);
	assert_non_null(got);
	for (pass = 0; pass < 2; pass++) {
		/* First no 0xff at all, then some. */
		for (i = 0; i < n; i++)
			p[i] = pass && i % 1000 == 999 ? IAC :
			    (uint8_t)(i % 251);
		telnet_add_data(b, p, n);
		glen = nev = 0;
		while ((rv = telnet_next(t, b, &ev)) == TELNET_OK) {
			assert_int_equal(ev.type, TELNET_EV_DATA);
			assert_true(ev.len > 0);
			assert_true(ev.len <= TELNET_DATA_MAX);
			assert_true(glen + ev.len <= n);
			memcpy(got + glen, ev.p, ev.len);
			glen += ev.len;
			nev++;
		}
		assert_int_equal(rv, TELNET_EAGAIN);
		assert_int_equal(glen, n);
		assert_memory_equal(got, p, n);
		assert_int_equal(evbuffer_get_length(b), 0);
		if (pass == 0)
			assert_int_equal(nev, 4);
	}
	free(p);
	free(got);
	telnet_free(t);
	evbuffer_free(b);
}

/* Random bytes, one in eight 0xff. */
static void
rnd_bytes(uint64_t *s, uint8_t *p, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		p[i] = rng_below(s, 8) == 0 ? IAC : (uint8_t)rng_next(s);
}

/* One seeded round trip: writers, random feeds, parser. */
static void
round_trip(uint64_t seed)
{
	static const uint8_t	 verbs[] = { TELNET_WILL, TELNET_WONT,
				    TELNET_DO, TELNET_DONT };
	static const uint8_t	 cmds[] = { NOP, BRK, GA, TELNET_SE, 246 };
	struct telnet		*t = telnet_new(1024);
	struct evbuffer		*wire = evbuffer_new(), *b = evbuffer_new();
	struct rec		 want = { 0 }, got = { 0 };
	uint8_t			 buf[1 + 1023], piece[700], w[2];
	uint64_t		 s = seed;
	size_t			 i, k, n, nops;

	nops = 200 + rng_below(&s, 200);
	for (i = 0; i < nops; i++) {
		k = rng_below(&s, 10);
		if (k < 5) {
			n = 1 + rng_below(&s, k == 0 ? 5000 : 300);
			if (n > sizeof(buf))
				n = sizeof(buf);
			rnd_bytes(&s, buf, n);
			telnet_add_data(wire, buf, n);
			rec_add_raw(&want, TELNET_EV_DATA, 0, 0, buf, n);
		} else if (k < 7) {
			w[0] = verbs[rng_below(&s, 4)];
			rnd_bytes(&s, &w[1], 1);
			telnet_add_opt(wire, w[0], w[1]);
			rec_add_raw(&want, TELNET_EV_OPT, w[0], w[1], NULL, 0);
		} else if (k < 9) {
			/* The cmd byte counts as the SB's first byte. */
			n = rng_below(&s, sizeof(buf));
			rnd_bytes(&s, buf, n + 1);
			rnd_bytes(&s, w, 1);
			telnet_add_sb(wire, w[0], buf[0], buf + 1, n);
			rec_add_raw(&want, TELNET_EV_SB, 0, w[0], buf, n + 1);
		} else {
			w[0] = IAC;
			w[1] = cmds[rng_below(&s, sizeof(cmds))];
			assert_int_equal(evbuffer_add(wire, w, 2), 0);
			rec_add_raw(&want, TELNET_EV_CMD, w[1], 0, NULL, 0);
		}
	}

	while (evbuffer_get_length(wire) > 0) {
		k = rng_below(&s, 4);
		n = k == 0 ? 1 : 1 + rng_below(&s, k == 1 ? 8 :
		    sizeof(piece));
		n = (size_t)evbuffer_remove(wire, piece, n);
		feed(b, piece, n);
		assert_int_equal(drain_all(t, b, &got), TELNET_EAGAIN);
	}
	assert_int_equal(evbuffer_get_length(b), 0);
	rec_assert_eq(&got, &want);

	rec_free(&want);
	rec_free(&got);
	telnet_free(t);
	evbuffer_free(wire);
	evbuffer_free(b);
}

/* The random round trip, over a few seeds. */
static void
test_round_trip(void **state)
{
	uint64_t	seed;

	for (seed = 1; seed <= 40; seed++)
		round_trip(seed * 0x9e3779b97f4a7c15ULL);
}

/* Compare the whole content of B with P/LEN, then empty B. */
static void
expect_wire(struct evbuffer *b, const uint8_t *p, size_t len)
{
	assert_int_equal(evbuffer_get_length(b), len);
	assert_memory_equal(evbuffer_pullup(b, -1), p, len);
	evbuffer_drain(b, len);
}

/* The writers' exact bytes. */
static void
test_writers(void **state)
{
	static const uint8_t	 pl[] = { 0x01, IAC, 0x02 };
	static const uint8_t	 sb[] = { 0xff, 0xfa, 0xe8, 0x29, 0x01, 0xff,
				    0xff, 0x02, 0xff, 0xf0 };
	static const uint8_t	 sb2[] = { 0xff, 0xfa, 0x18, 0xff, 0xff,
				    0xff, 0xf0 };
	static const uint8_t	 sb3[] = { 0xff, 0xfa, 0xe8, 0x00, 0xff,
				    0xf0 };
	static const uint8_t	 d1[] = { IAC, 'a', IAC, IAC, 'b', IAC };
	static const uint8_t	 w1[] = { IAC, IAC, 'a', IAC, IAC, IAC, IAC,
				    'b', IAC, IAC };
	static const uint8_t	 o1[] = { 0xff, 0xfd, 0x03 };
	struct evbuffer		*b = evbuffer_new();

	telnet_add_sb(b, TELNET_OPT_VMWARE, 41, pl, sizeof(pl));
	expect_wire(b, sb, sizeof(sb));
	telnet_add_sb(b, 0x18, IAC, NULL, 0);
	expect_wire(b, sb2, sizeof(sb2));
	telnet_add_sb(b, TELNET_OPT_VMWARE, 0, NULL, 0);
	expect_wire(b, sb3, sizeof(sb3));
	telnet_add_data(b, d1, sizeof(d1));
	expect_wire(b, w1, sizeof(w1));
	telnet_add_data(b, "plain", 5);
	expect_wire(b, (const uint8_t *)"plain", 5);
	telnet_add_data(b, NULL, 0);
	assert_int_equal(evbuffer_get_length(b), 0);
	telnet_add_opt(b, TELNET_DO, TELNET_OPT_SGA);
	expect_wire(b, o1, sizeof(o1));
	evbuffer_free(b);
}

/* Error and verb names. */
static void
test_strings(void **state)
{
	assert_string_equal(telnet_strverb(251), "WILL");
	assert_string_equal(telnet_strverb(252), "WONT");
	assert_string_equal(telnet_strverb(253), "DO");
	assert_string_equal(telnet_strverb(254), "DONT");
	assert_string_equal(telnet_strverb(241), "NOP");
	assert_string_equal(telnet_strverb(243), "BRK");
	assert_string_equal(telnet_strverb(249), "GA");
	assert_string_equal(telnet_strverb(240), "SE");
	assert_string_equal(telnet_strverb(250), "SB");
	assert_string_equal(telnet_strverb(255), "IAC");
	assert_string_equal(telnet_strverb(100), "unknown");
	assert_string_equal(telnet_strverb(0), "unknown");
	assert_string_equal(telnet_strverb(239), "unknown");

	assert_string_equal(telnet_strerror(TELNET_OK), "ok");
	assert_non_null(telnet_strerror(TELNET_EAGAIN));
	assert_non_null(strstr(telnet_strerror(TELNET_E_SB_TOO_LONG),
	    "too long"));
	assert_non_null(strstr(telnet_strerror(TELNET_E_SB_IAC), "IAC"));
	assert_string_equal(telnet_strerror(-4), "unknown error");
	assert_string_equal(telnet_strerror(1), "unknown error");
	assert_string_equal(telnet_strerror(-1000), "unknown error");
}

/* Free accepts NULL. */
static void
test_free_null(void **state)
{
	telnet_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_data_one),
		cmocka_unit_test(test_data_split),
		cmocka_unit_test(test_data_outlives_buffer),
		cmocka_unit_test(test_iac_iac),
		cmocka_unit_test(test_iac_many),
		cmocka_unit_test(test_iac_iac_end_of_feed),
		cmocka_unit_test(test_iac_split_across_feeds),
		cmocka_unit_test(test_opt),
		cmocka_unit_test(test_opt_burst),
		cmocka_unit_test(test_cmd),
		cmocka_unit_test(test_data_before_cmd),
		cmocka_unit_test(test_sb_escaped),
		cmocka_unit_test(test_sb_bytewise),
		cmocka_unit_test(test_sb_max),
		cmocka_unit_test(test_sb_bad_iac),
		cmocka_unit_test(test_sb_longer_than_chunk),
		cmocka_unit_test(test_data_long),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_writers),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_free_null),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
