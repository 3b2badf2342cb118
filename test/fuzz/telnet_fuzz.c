/*
 * telnet_fuzz.c -- libFuzzer harness for the TELNET codec (telnet.h).
 *
 * Input: byte 0 picks sb_max (0 to 1023), byte 1 how the rest is cut
 * into feeds (0: all at once; else pieces of up to 2^(b & 7) bytes,
 * their sizes drawn from a PRNG seeded by b), the rest is the stream
 * off the wire.
 *
 * The stream is parsed three times: cut as byte 1 says, fed whole, and
 * (the differential) the events of the first parse re-encoded with the
 * telnet_add_* writers and parsed again byte by byte.  TELNET has one
 * encoding per event sequence, so the re-encoding must be exactly the
 * bytes the parser consumed, after every event; and how a stream is
 * cut must change nothing but where data runs are split, so all three
 * transcripts (data runs merged) must be the same, errors included.
 * A plain reference decoder over the whole input (fz_ref()) must give
 * that transcript too: it is what pins sb_max and the error cases.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "fuzz.h"
#include "telnet.h"

/* A flat growable byte string. */
struct fz_bytes {
	uint8_t	*p;
	size_t	 len;
	size_t	 cap;
};

/* What one parse produced. */
struct fz_parse {
	struct fz_bytes	 tr;		/* tagged events, data merged */
	size_t		 tr_data;	/* offset of the last data record */
	int		 tr_last_data;
	struct fz_bytes	 enc;		/* the events re-encoded */
	int		 err;		/* last result: EAGAIN or an error */
};

static struct evbuffer	*fz_scratch;

/* Append LEN bytes at P to B. */
static void
fz_put(struct fz_bytes *b, const void *p, size_t len)
{
	if (b->len + len > b->cap) {
		b->cap = (b->len + len) * 2 + 64;
		b->p = realloc(b->p, b->cap);
		CHECK(b->p != NULL);
	}
	if (len > 0)
		memcpy(b->p + b->len, p, len);
	b->len += len;
}

/* Move the scratch buffer's bytes (a writer's output) onto B. */
static void
fz_put_scratch(struct fz_bytes *b)
{
	size_t	n = evbuffer_get_length(fz_scratch);

	fz_put(b, evbuffer_pullup(fz_scratch, -1), n);
	evbuffer_drain(fz_scratch, n);
}

/* Add an event to P's transcript, a data run merged with one before. */
static void
fz_tr_add(struct fz_parse *p, int type, uint8_t verb, uint8_t opt,
    const uint8_t *b, size_t len)
{
	uint8_t	hd[4];
	size_t	old;

	if (type == TELNET_EV_DATA && p->tr_last_data) {
		memcpy(&old, p->tr.p + p->tr_data, sizeof(old));
		old += len;
		memcpy(p->tr.p + p->tr_data, &old, sizeof(old));
		fz_put(&p->tr, b, len);
	} else {
		hd[0] = (uint8_t)type;
		hd[1] = type == TELNET_EV_OPT || type == TELNET_EV_CMD ?
		    verb : 0;
		hd[2] = type == TELNET_EV_OPT || type == TELNET_EV_SB ?
		    opt : 0;
		hd[3] = 0;
		fz_put(&p->tr, hd, sizeof(hd));
		p->tr_data = p->tr.len;
		fz_put(&p->tr, &len, sizeof(len));
		if (type == TELNET_EV_DATA || type == TELNET_EV_SB)
			fz_put(&p->tr, b, len);
	}
	p->tr_last_data = type == TELNET_EV_DATA;
}

/* Record EV in P's transcript and re-encode it with the writers. */
static void
fz_record(struct fz_parse *p, const struct telnet_ev *ev)
{
	uint8_t	raw[5];

	fz_tr_add(p, ev->type, ev->verb, ev->opt, ev->p, ev->len);
	switch (ev->type) {
	case TELNET_EV_DATA:
		telnet_add_data(fz_scratch, ev->p, ev->len);
		break;
	case TELNET_EV_OPT:
		telnet_add_opt(fz_scratch, ev->verb, ev->opt);
		break;
	case TELNET_EV_SB:
		/* The writer insists on a command byte; empty SBs by hand. */
		if (ev->len > 0)
			telnet_add_sb(fz_scratch, ev->opt, ev->p[0],
			    ev->p + 1, ev->len - 1);
		else {
			raw[0] = TELNET_IAC;
			raw[1] = TELNET_SB;
			raw[2] = ev->opt;
			raw[3] = TELNET_IAC;
			raw[4] = TELNET_SE;
			evbuffer_add(fz_scratch, raw, 5);
		}
		break;
	case TELNET_EV_CMD:
		/* No writer for these: IAC VERB. */
		raw[0] = TELNET_IAC;
		raw[1] = ev->verb;
		evbuffer_add(fz_scratch, raw, 2);
		break;
	}
	fz_put_scratch(&p->enc);
}

/* The event must be well formed for a parser with SB_MAX. */
static void
fz_check_ev(const struct telnet_ev *ev, size_t sb_max)
{
	switch (ev->type) {
	case TELNET_EV_DATA:
		CHECK(ev->len >= 1 && ev->len <= TELNET_DATA_MAX);
		CHECK(ev->p != NULL);
		break;
	case TELNET_EV_OPT:
		CHECK(ev->verb >= TELNET_WILL && ev->verb <= TELNET_DONT);
		CHECK(strcmp(telnet_strverb(ev->verb), "unknown") != 0);
		break;
	case TELNET_EV_SB:
		CHECK(ev->len <= sb_max);
		CHECK(ev->len == 0 || ev->p != NULL);
		break;
	case TELNET_EV_CMD:
		/* Not a verb, SB or IAC: those are not two-byte commands. */
		CHECK(ev->verb < TELNET_SB);
		CHECK(telnet_strverb(ev->verb) != NULL);
		break;
	default:
		CHECK(!"event type");
	}
}

/* A small PRNG for the cuts (xorshift64*). */
static uint64_t
fz_rng(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return (*s * 0x2545f4914f6cdd1dULL);
}

/*
 * Parse S/LEN with a parser of SB_MAX, fed in pieces cut by CUT (0:
 * whole, 0x100: byte by byte, else as in the design note).  Stops at
 * the first error.
 */
static void
fz_run(const uint8_t *s, size_t len, size_t sb_max, unsigned cut,
    struct fz_parse *p)
{
	struct telnet		*t;
	struct evbuffer		*b;
	struct telnet_ev	 ev;
	uint64_t		 rs = 0x9e3779b97f4a7c15ULL * (cut + 1);
	size_t			 off = 0, n, before, after, fed = 0;
	size_t			 consumed;
	int			 rv = TELNET_EAGAIN;

	memset(p, 0, sizeof(*p));
	t = telnet_new(sb_max);
	CHECK(t != NULL);
	b = evbuffer_new();
	CHECK(b != NULL);
	while (off < len) {
		if (cut == 0)
			n = len - off;
		else if (cut == 0x100)
			n = 1;
		else
			n = 1 + (size_t)(fz_rng(&rs) % (1u << (cut & 7)));
		if (n > len - off)
			n = len - off;
		CHECK(evbuffer_add(b, s + off, n) == 0);
		off += n;
		fed += n;
		for (;;) {
			before = evbuffer_get_length(b);
			rv = telnet_next(t, b, &ev);
			after = evbuffer_get_length(b);
			CHECK(after <= before);
			CHECK(telnet_strerror(rv) != NULL);
			if (rv == TELNET_EAGAIN)
				break;
			if (rv != TELNET_OK) {
				CHECK(rv == TELNET_E_SB_TOO_LONG ||
				    rv == TELNET_E_SB_IAC);
				goto out;
			}
			/* Every event takes at least its last byte. */
			CHECK(after < before);
			fz_check_ev(&ev, sb_max);
			fz_record(p, &ev);

			/*
			 * Nothing consumed past the event, and the bytes
			 * consumed are exactly its canonical encoding.
			 */
			consumed = fed - after;
			CHECK(consumed <= len);
			CHECK(p->enc.len == consumed);
			CHECK(memcmp(p->enc.p, s, consumed) == 0);
		}
	}
out:
	CHECK(fed - evbuffer_get_length(b) <= len);
	p->err = rv;
	telnet_free(t);
	evbuffer_free(b);
}

/*
 * The reference: RFC 854/855 read straight off the whole of S/LEN, no
 * streaming, no chunks.  The parser must agree with it, error and all.
 */
static void
fz_ref(const uint8_t *s, size_t len, size_t sb_max, struct fz_parse *p)
{
	uint8_t	*sb, c;
	size_t	 i = 0, j, n;

	memset(p, 0, sizeof(*p));
	p->err = TELNET_EAGAIN;
	sb = malloc(sb_max + 1);
	CHECK(sb != NULL);
	while (i < len) {
		if (s[i] != TELNET_IAC) {
			fz_tr_add(p, TELNET_EV_DATA, 0, 0, &s[i], 1);
			i++;
			continue;
		}
		if (i + 1 >= len)
			break;
		c = s[i + 1];
		if (c == TELNET_IAC) {
			fz_tr_add(p, TELNET_EV_DATA, 0, 0, &c, 1);
			i += 2;
		} else if (c >= TELNET_WILL && c <= TELNET_DONT) {
			if (i + 2 >= len)
				break;
			fz_tr_add(p, TELNET_EV_OPT, c, s[i + 2], NULL, 0);
			i += 3;
		} else if (c != TELNET_SB) {
			fz_tr_add(p, TELNET_EV_CMD, c, 0, NULL, 0);
			i += 2;
		} else {
			if (i + 2 >= len)
				break;
			/* Errors show as soon as their byte is in. */
			for (j = i + 3, n = 0; j < len; j++) {
				if (s[j] == TELNET_IAC) {
					if (j + 1 >= len)
						goto out;
					if (s[j + 1] == TELNET_SE)
						break;
					if (s[j + 1] != TELNET_IAC) {
						p->err = TELNET_E_SB_IAC;
						goto out;
					}
					j++;
				}
				if (n == sb_max) {
					p->err = TELNET_E_SB_TOO_LONG;
					goto out;
				}
				sb[n++] = s[j];
			}
			if (j >= len)
				break;
			fz_tr_add(p, TELNET_EV_SB, 0, s[i + 2], sb, n);
			i = j + 2;
		}
	}
out:
	free(sb);
}

/* Free what fz_run() built. */
static void
fz_parse_free(struct fz_parse *p)
{
	free(p->tr.p);
	free(p->enc.p);
}

/* Same events (data merged), same outcome. */
static void
fz_same(const struct fz_parse *a, const struct fz_parse *b)
{
	CHECK(a->err == b->err);
	CHECK(a->tr.len == b->tr.len);
	CHECK(a->tr.len == 0 || memcmp(a->tr.p, b->tr.p, a->tr.len) == 0);
	CHECK(a->enc.len == b->enc.len);
}

/* Entry point: sb_max, the cut, then the stream. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_parse	 cut, whole, again, ref;
	size_t		 sb_max;

	if (size < 2)
		return (0);
	if (fz_scratch == NULL) {
		fz_scratch = evbuffer_new();
		CHECK(fz_scratch != NULL);
	}
	sb_max = (size_t)data[0] * 1023 / 255;

	fz_run(data + 2, size - 2, sb_max, data[1], &cut);
	fz_run(data + 2, size - 2, sb_max, 0, &whole);
	fz_same(&cut, &whole);
	fz_ref(data + 2, size - 2, sb_max, &ref);
	CHECK(ref.err == cut.err);
	CHECK(ref.tr.len == cut.tr.len);
	CHECK(cut.tr.len == 0 ||
	    memcmp(ref.tr.p, cut.tr.p, cut.tr.len) == 0);

	/*
	 * The differential: what was parsed, written back, parses to the
	 * same events with no error, even when the stream went on to an
	 * error (the events before it are a clean stream of their own).
	 */
	fz_run(cut.enc.p, cut.enc.len, sb_max, 0x100, &again);
	CHECK(again.err == TELNET_EAGAIN);
	CHECK(again.tr.len == cut.tr.len);
	CHECK(cut.tr.len == 0 ||
	    memcmp(again.tr.p, cut.tr.p, cut.tr.len) == 0);
	CHECK(again.enc.len == cut.enc.len);
	if (cut.err == TELNET_EAGAIN)
		CHECK(cut.enc.len <= size - 2);

	fz_parse_free(&cut);
	fz_parse_free(&whole);
	fz_parse_free(&again);
	fz_parse_free(&ref);
	return (0);
}
