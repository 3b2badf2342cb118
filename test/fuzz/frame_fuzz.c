/*
 * frame_fuzz.c -- libFuzzer harness for the frame codec (frame.h).
 *
 * The input is treated as bytes off the wire: the header is decoded
 * from the front (and peeked from an evbuffer, which must agree), then
 * every payload decoder is run on the payload slice whatever the type
 * says.  Anything a decoder accepts is encoded again and must come back
 * byte for byte and decode to the same struct: the encoding is
 * canonical, so a difference is a codec bug.
 *
 * The slice is copied into its own heap block so ASan catches a decoder
 * that reads even one byte past the length it was given.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "frame.h"
#include "fuzz.h"

static struct evbuffer	*fz_buf;

/* One scratch evbuffer for the whole run, empty on return. */
static struct evbuffer *
fz_evbuffer(void)
{
	if (fz_buf == NULL) {
		fz_buf = evbuffer_new();
		CHECK(fz_buf != NULL);
	}
	CHECK(evbuffer_get_length(fz_buf) == 0);
	return (fz_buf);
}

/* The re-encoding must be exactly one TYPE frame carrying PL; empty it. */
static void
fz_expect(struct evbuffer *b, int type, const uint8_t *pl, size_t plen)
{
	struct frame_hdr	 h;
	uint8_t			*p;
	size_t			 len;

	len = evbuffer_get_length(b);
	CHECK(len == PROTO_HDR_LEN + plen);
	p = evbuffer_pullup(b, -1);
	CHECK(p != NULL);
	CHECK(frame_hdr_decode(p, len, &h) == FRAME_OK);
	CHECK(h.type == type);
	CHECK(h.len == plen);
	CHECK(memcmp(p + PROTO_HDR_LEN, pl, plen) == 0);
	evbuffer_drain(b, len);
}

/* Compare two decoded HELLOs field by field (the struct has padding). */
static int
fz_hello_eq(const struct proto_hello *a, const struct proto_hello *b)
{
	return (a->version == b->version && a->kind == b->kind &&
	    a->sid == b->sid &&
	    memcmp(a->nonce, b->nonce, sizeof(a->nonce)) == 0 &&
	    memcmp(a->pubkey, b->pubkey, sizeof(a->pubkey)) == 0 &&
	    a->guest_cid == b->guest_cid && a->guest_port == b->guest_port &&
	    strcmp(a->host, b->host) == 0 && a->service == b->service &&
	    strcmp(a->name, b->name) == 0 && a->window == b->window &&
	    a->next == b->next &&
	    memcmp(a->mac, b->mac, sizeof(a->mac)) == 0);
}

/* HELLO: accepted means well-formed and canonical. */
static void
fz_hello(const uint8_t *pl, size_t plen)
{
	struct proto_hello	 m, m2;
	struct evbuffer		*b;
	size_t			 i, hl, nl;

	if (frame_hello_decode(pl, plen, &m) != FRAME_OK)
		return;
	CHECK(m.version >= PROTO_VERSION_MIN && m.version <= PROTO_VERSION);
	CHECK(m.sid != 0);
	CHECK(m.kind == PROTO_HELLO_NEW || m.kind == PROTO_HELLO_RESUME ||
	    (m.kind == PROTO_HELLO_RESUME_PROOF && m.version >= 3));
	hl = strlen(m.host);
	nl = strlen(m.name);
	if (m.kind == PROTO_HELLO_RESUME)
		CHECK(plen == 48 && hl == 0 && nl == 0 && m.service == 0);
	else if (m.kind == PROTO_HELLO_RESUME_PROOF)
		CHECK(plen == 88 && hl == 0 && nl == 0 && m.service == 0);
	else {
		CHECK(plen == 92 + hl + nl + (m.version >= 5 ? 4 : 0));
		CHECK(m.version >= 5 ? m.window >= PROTO_WINDOW_MIN :
		    m.window == 0);
	}
	/* What goes into logs and status: no control bytes, in bounds. */
	CHECK(hl <= PROTO_HOST_MAX && nl <= PROTO_NAME_MAX);
	for (i = 0; i < hl; i++)
		CHECK((uint8_t)m.host[i] > 0x20 && (uint8_t)m.host[i] < 0x7f);
	for (i = 0; i < nl; i++)
		CHECK((uint8_t)m.name[i] >= 0x20 && (uint8_t)m.name[i] != 0x7f);

	b = fz_evbuffer();
	frame_hello_add(b, &m);
	fz_expect(b, PROTO_HELLO, pl, plen);
	CHECK(frame_hello_decode(pl, plen, &m2) == FRAME_OK);
	CHECK(fz_hello_eq(&m, &m2));
}

/* WELCOME. */
static void
fz_welcome(const uint8_t *pl, size_t plen)
{
	struct proto_welcome	 m, m2;
	struct evbuffer		*b;
	uint8_t			*p;

	if (frame_welcome_decode(pl, plen, &m) != FRAME_OK)
		return;
	CHECK(m.version >= PROTO_VERSION_MIN && m.version <= PROTO_VERSION);

	CHECK(plen == 80 + (m.version >= 5 ? 4 : 0));
	CHECK(m.version >= 5 ? m.window >= PROTO_WINDOW_MIN : m.window == 0);

	b = fz_evbuffer();
	frame_welcome_add(b, &m);
	CHECK(evbuffer_get_length(b) == PROTO_HDR_LEN + plen);
	p = evbuffer_pullup(b, -1);
	CHECK(p != NULL);
	CHECK(frame_welcome_decode(p + PROTO_HDR_LEN, plen, &m2) == FRAME_OK);
	CHECK(m.version == m2.version && m.sid == m2.sid &&
	    m.window == m2.window &&
	    memcmp(m.nonce, m2.nonce, sizeof(m.nonce)) == 0 &&
	    memcmp(m.pubkey, m2.pubkey, sizeof(m.pubkey)) == 0);
	fz_expect(b, PROTO_WELCOME, pl, plen);
}

/* CHALLENGE. */
static void
fz_challenge(const uint8_t *pl, size_t plen)
{
	struct proto_challenge	 m, m2;
	struct evbuffer		*b;

	if (frame_challenge_decode(pl, plen, &m) != FRAME_OK)
		return;
	b = fz_evbuffer();
	frame_challenge_add(b, &m);
	fz_expect(b, PROTO_CHALLENGE, pl, plen);
	CHECK(frame_challenge_decode(pl, plen, &m2) == FRAME_OK);
	CHECK(memcmp(m.nonce, m2.nonce, sizeof(m.nonce)) == 0);
}

/* PROOF. */
static void
fz_proof(const uint8_t *pl, size_t plen)
{
	struct proto_proof	 m, m2;
	struct evbuffer		*b;

	if (frame_proof_decode(pl, plen, &m) != FRAME_OK)
		return;
	b = fz_evbuffer();
	frame_proof_add(b, &m);
	fz_expect(b, PROTO_PROOF, pl, plen);
	CHECK(frame_proof_decode(pl, plen, &m2) == FRAME_OK);
	CHECK(m.next == m2.next &&
	    memcmp(m.mac, m2.mac, sizeof(m.mac)) == 0);
}

/* ERROR or CLOSE: the reason that comes out is clean text. */
static void
fz_error(const uint8_t *pl, size_t plen, int type)
{
	struct proto_error	 m, m2;
	struct evbuffer		*b;
	size_t			 i, rlen;

	if (frame_error_decode(pl, plen, &m) != FRAME_OK)
		return;
	CHECK(frame_strcode(m.code) != NULL);
	rlen = strlen(m.reason);
	CHECK(plen == 3 + rlen);
	for (i = 0; i < rlen; i++)
		CHECK((uint8_t)m.reason[i] >= 0x20 &&
		    (uint8_t)m.reason[i] <= 0x7e);

	b = fz_evbuffer();
	frame_error_add(b, type, m.code, m.reason);
	fz_expect(b, type, pl, plen);
	CHECK(frame_error_decode(pl, plen, &m2) == FRAME_OK);
	CHECK(m.code == m2.code && strcmp(m.reason, m2.reason) == 0);
}

/* RESUMED, ACK, FIN, PING, PONG. */
static void
fz_u64(const uint8_t *pl, size_t plen, int type)
{
	struct evbuffer	*b;
	uint64_t	 v, v2;

	if (frame_u64_decode(pl, plen, &v) != FRAME_OK)
		return;
	b = fz_evbuffer();
	frame_u64_add(b, type, v);
	fz_expect(b, type, pl, plen);
	CHECK(frame_u64_decode(pl, plen, &v2) == FRAME_OK && v == v2);
}

/* DATA: an offset then the bytes; the header carries both lengths. */
static void
fz_data(const uint8_t *pl, size_t plen)
{
	struct evbuffer	*b;
	uint64_t	 off;

	if (plen < 9 || plen > 8 + PROTO_DATA_MAX)
		return;
	CHECK(frame_u64_decode(pl, 8, &off) == FRAME_OK);
	b = fz_evbuffer();
	frame_data_hdr_add(b, off, plen - 8);
	evbuffer_add(b, pl + 8, plen - 8);
	fz_expect(b, PROTO_DATA, pl, plen);
}

/*
 * The encoder masks and cuts whatever it is given, so its output must
 * always decode, to the masked prefix.
 */
static void
fz_error_add(const uint8_t *pl, size_t plen, int type)
{
	struct proto_error	 m;
	struct evbuffer		*b;
	char			 reason[PROTO_REASON_MAX + 64];
	size_t			 i, n, rlen;
	uint8_t			*p;
	int			 code;

	code = plen >= 2 ? (pl[0] << 8 | pl[1]) : 0;
	n = plen < sizeof(reason) - 1 ? plen : sizeof(reason) - 1;
	memcpy(reason, pl, n);
	reason[n] = '\0';
	rlen = strlen(reason);
	if (rlen > PROTO_REASON_MAX)
		rlen = PROTO_REASON_MAX;

	b = fz_evbuffer();
	frame_error_add(b, type, code, reason);
	CHECK(evbuffer_get_length(b) == PROTO_HDR_LEN + 3 + rlen);
	p = evbuffer_pullup(b, -1);
	CHECK(p != NULL);
	CHECK(frame_error_decode(p + PROTO_HDR_LEN, 3 + rlen, &m) ==
	    FRAME_OK);
	CHECK(m.code == (uint16_t)code);
	CHECK(strlen(m.reason) == rlen);
	for (i = 0; i < rlen; i++) {
		if ((uint8_t)reason[i] < 0x20 || (uint8_t)reason[i] > 0x7e)
			CHECK(m.reason[i] == '?');
		else
			CHECK(m.reason[i] == reason[i]);
	}
	evbuffer_drain(b, evbuffer_get_length(b));
}

/* The header, by array and by evbuffer peek, must agree. */
static int
fz_header(const uint8_t *data, size_t size, struct frame_hdr *h)
{
	struct frame_hdr	 h2;
	struct evbuffer		*b;
	int			 r, r2;

	r = frame_hdr_decode(data, size, h);
	CHECK(frame_strerror(r) != NULL);
	if (size > 0)
		CHECK(frame_strtype(data[0]) != NULL);
	if (size < PROTO_HDR_LEN)
		CHECK(r == FRAME_EAGAIN);
	else
		CHECK(r != FRAME_EAGAIN);
	if (r == FRAME_OK) {
		CHECK(h->type != 0);
		CHECK(strcmp(frame_strtype(h->type), "UNKNOWN") != 0);
		CHECK(data[0] == h->type);
	}

	b = fz_evbuffer();
	evbuffer_add(b, data, size);
	r2 = frame_peek(b, &h2);
	CHECK(evbuffer_get_length(b) == size);
	evbuffer_drain(b, size);
	CHECK(r == r2);
	if (r == FRAME_OK)
		CHECK(h->type == h2.type && h->len == h2.len);
	return (r);
}

/* Entry point: one candidate frame per input. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct frame_hdr	 h;
	const uint8_t		*src;
	uint8_t			*pl;
	size_t			 plen;
	int			 r, etype, utype;

	r = fz_header(data, size, &h);

	/* The payload slice: the frame's if whole, else what follows. */
	if (size <= PROTO_HDR_LEN) {
		src = data;
		plen = size;
	} else {
		src = data + PROTO_HDR_LEN;
		plen = size - PROTO_HDR_LEN;
		if (r == FRAME_OK && h.len < plen)
			plen = h.len;
	}
	pl = malloc(plen == 0 ? 1 : plen);
	CHECK(pl != NULL);
	if (plen != 0)
		memcpy(pl, src, plen);

	etype = r == FRAME_OK && h.type == PROTO_CLOSE ?
	    PROTO_CLOSE : PROTO_ERROR;
	utype = PROTO_PING;
	if (r == FRAME_OK && (h.type == PROTO_RESUMED ||
	    h.type == PROTO_ACK || h.type == PROTO_FIN ||
	    h.type == PROTO_PONG || h.type == PROTO_RELEASE))
		utype = h.type;

	fz_hello(pl, plen);
	fz_welcome(pl, plen);
	fz_challenge(pl, plen);
	fz_proof(pl, plen);
	fz_error(pl, plen, etype);
	fz_u64(pl, plen, utype);
	fz_data(pl, plen);
	fz_error_add(pl, plen, etype);

	free(pl);
	return (0);
}
