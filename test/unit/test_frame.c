/*
 * test_frame.c -- unit tests for the session protocol's frame codec
 * (frame.h, proto.h).
 *
 * Lengths and byte offsets below are written out from proto.h by hand
 * rather than taken from frame.c, so a drift in either shows up here.
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

#include "frame.h"

/* Payload sizes straight from the comments in proto.h. */
#define HELLO_RESUME_LEN	48	/* magic ver kind sid nonce */
#define HELLO_NEW_V4		92	/* + pubkey cid port hostlen svc nlen */
#define HELLO_NEW_MIN		96	/* + window, version 5 */
#define HELLO_HOSTLEN_OFF	88	/* u8 hostlen; host at 89 */
#define WELCOME_V4_LEN		80
#define WELCOME_LEN		84	/* + window, version 5 */
#define WINDOW			0x00123456U	/* every byte differs */
#define ERROR_MIN		3

/* One row of the length-limits table. */
struct size_case {
	int		type;
	uint32_t	min;
	uint32_t	max;
};

static const struct size_case size_cases[] = {
	{ PROTO_HELLO, 48, 96 + 255 + 160 },
	{ PROTO_WELCOME, 80, 84 },
	{ PROTO_CHALLENGE, 32, 32 },
	{ PROTO_PROOF, 40, 40 },
	{ PROTO_RESUMED, 8, 8 },
	{ PROTO_ERROR, 3, 3 + 255 },
	{ PROTO_DATA, 9, 8 + 262144 },
	{ PROTO_ACK, 8, 8 },
	{ PROTO_FIN, 8, 8 },
	{ PROTO_CLOSE, 3, 3 + 255 },
	{ PROTO_PING, 8, 8 },
	{ PROTO_PONG, 8, 8 },
	{ PROTO_RELEASE, 8, 8 },
};
#define NSIZE_CASES	(sizeof(size_cases) / sizeof(size_cases[0]))

static const int u64_types[] = {
	PROTO_RESUMED, PROTO_ACK, PROTO_FIN, PROTO_PING, PROTO_PONG,
	PROTO_RELEASE
};

static const uint64_t u64_values[] = {
	0, 1, 0xff, 0x0123456789abcdefULL, 0x8000000000000000ULL,
	UINT64_MAX
};

/* A recognisable, position-dependent byte pattern for key material. */
static void
pattern(uint8_t *p, size_t n, uint8_t seed)
{
	size_t	i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

/* Write a raw 8-byte header so tests can build frames the encoders won't. */
static void
mkhdr(uint8_t *p, uint8_t type, uint8_t flags, uint16_t rsvd, uint32_t len)
{
	p[0] = type;
	p[1] = flags;
	p[2] = rsvd >> 8;
	p[3] = rsvd & 0xff;
	p[4] = len >> 24;
	p[5] = (len >> 16) & 0xff;
	p[6] = (len >> 8) & 0xff;
	p[7] = len & 0xff;
}

/* Flatten an evbuffer for the byte-array decoders. */
static uint8_t *
pull(struct evbuffer *b, size_t *len)
{
	uint8_t	*p;

	*len = evbuffer_get_length(b);
	p = evbuffer_pullup(b, -1);
	assert_non_null(p);
	return (p);
}

/*
 * Check the header of an encoded frame both ways (array and evbuffer)
 * and that the buffer holds exactly one frame; returns the payload.
 */
static const uint8_t *
check_frame(struct evbuffer *b, int type, uint32_t plen)
{
	struct frame_hdr h;
	uint8_t		*p;
	size_t		 len;

	p = pull(b, &len);
	assert_int_equal(len, PROTO_HDR_LEN + plen);
	assert_int_equal(p[0], type);
	assert_int_equal(p[1], 0);
	assert_int_equal(p[2], 0);
	assert_int_equal(p[3], 0);

	assert_int_equal(frame_hdr_decode(p, len, &h), FRAME_OK);
	assert_int_equal(h.type, type);
	assert_int_equal(h.len, plen);

	memset(&h, 0xa5, sizeof(h));
	assert_int_equal(frame_peek(b, &h), FRAME_OK);
	assert_int_equal(h.type, type);
	assert_int_equal(h.len, plen);
	assert_int_equal(evbuffer_get_length(b), len);	/* not drained */
	return (p + PROTO_HDR_LEN);
}

/* A NEW hello with every field distinguishable (service 0, no name). */
static void
mkhello_new(struct proto_hello *m, const char *host)
{
	memset(m, 0, sizeof(*m));
	m->version = PROTO_VERSION;
	m->kind = PROTO_HELLO_NEW;
	m->sid = 0x0102030405060708ULL;
	pattern(m->nonce, sizeof(m->nonce), 0x11);
	pattern(m->pubkey, sizeof(m->pubkey), 0x77);
	m->guest_cid = 0xfffffffeU;
	m->guest_port = 0x80000001U;
	strlcpy(m->host, host, sizeof(m->host));
	m->window = WINDOW;
}

/* Encode a hello and copy its payload out; returns the payload length. */
static size_t
hello_payload(const struct proto_hello *m, uint8_t *out, size_t outsz)
{
	struct evbuffer	*b;
	uint8_t		*p;
	size_t		 len;

	b = evbuffer_new();
	assert_non_null(b);
	frame_hello_add(b, m);
	p = pull(b, &len);
	assert_true(len >= PROTO_HDR_LEN);
	len -= PROTO_HDR_LEN;
	assert_true(len <= outsz);
	memcpy(out, p + PROTO_HDR_LEN, len);
	evbuffer_free(b);
	return (len);
}

/* NEW hello, every field through the wire and back. */
static void
test_hello_new_roundtrip(void **state)
{
	static const char *hosts[] = { "esx01.example.com", "", "h" };
	struct proto_hello	 m, d;
	struct evbuffer		*b;
	const uint8_t		*pl;
	char			 big[PROTO_HOST_MAX + 1];
	size_t			 i, hl;

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (i = 0; i < 4; i++) {
		const char *host = i < 3 ? hosts[i] : big;

		mkhello_new(&m, host);
		hl = strlen(host);
		b = evbuffer_new();
		assert_non_null(b);
		frame_hello_add(b, &m);
		pl = check_frame(b, PROTO_HELLO, HELLO_NEW_MIN + hl);

		/* Spot-check the wire layout of proto.h. */
		assert_memory_equal(pl, "VRLY", 4);
		assert_int_equal(pl[4], 0);
		assert_int_equal(pl[5], PROTO_VERSION);
		assert_int_equal(pl[6], 0);
		assert_int_equal(pl[7], PROTO_HELLO_NEW);
		assert_int_equal(pl[8], 0x01);
		assert_int_equal(pl[15], 0x08);
		assert_memory_equal(pl + 16, m.nonce, PROTO_NONCE_LEN);
		assert_memory_equal(pl + 48, m.pubkey, PROTO_KEY_LEN);
		assert_int_equal(pl[80], 0xff);
		assert_int_equal(pl[83], 0xfe);
		assert_int_equal(pl[84], 0x80);
		assert_int_equal(pl[87], 0x01);
		assert_int_equal(pl[88], hl);
		assert_memory_equal(pl + 89, host, hl);
		/* v2: u16 service 0 and namelen 0; v5: the window ends it. */
		assert_int_equal(pl[89 + hl], 0);
		assert_int_equal(pl[90 + hl], 0);
		assert_int_equal(pl[91 + hl], 0);
		assert_int_equal(pl[92 + hl], 0x00);
		assert_int_equal(pl[93 + hl], 0x12);
		assert_int_equal(pl[95 + hl], 0x56);

		memset(&d, 0xa5, sizeof(d));
		assert_int_equal(frame_hello_decode(pl, HELLO_NEW_MIN + hl, &d),
		    FRAME_OK);
		assert_memory_equal(&d, &m, sizeof(m));
		assert_string_equal(d.host, host);
		evbuffer_free(b);
	}
}

/* HELLO NEW's v2 tail: services (any u16 decodes) and VM names. */
static const uint16_t	 svcs[] = {
	PROTO_SVC_STREAM, PROTO_SVC_VSPC, PROTO_SVC_SERIAL, 65535
};
#define NSVCS	(sizeof(svcs) / sizeof(svcs[0]))
static const char	*names[] = {
	"", "vm-01", NULL /* 160 bytes */, "caf\xc3\xa9 vm \xe2\x82\xac"
};
#define NNAMES	(sizeof(names) / sizeof(names[0]))

/*
 * v2's tail: every service value and a range of names, with a short
 * host and the longest one (the largest HELLO there is).
 */
static void
test_hello_new_service_name(void **state)
{
	struct proto_hello	 m, d;
	struct evbuffer		*b;
	const uint8_t		*pl;
	char			 bigname[PROTO_NAME_MAX + 1];
	char			 bighost[PROTO_HOST_MAX + 1];
	const char		*host, *name;
	size_t			 i, j, k, n, hl, nl, plen;

	assert_int_equal(PROTO_SVC_STREAM, 0);
	assert_int_equal(PROTO_SVC_VSPC, 1);
	assert_int_equal(PROTO_SVC_SERIAL, 2);
	assert_int_equal(PROTO_NAME_MAX, 160);
	for (k = 0; k < sizeof(bigname) - 1; k++)
		bigname[k] = 0x20 + (k % 95);	/* ' ' .. '~' */
	bigname[sizeof(bigname) - 1] = '\0';
	memset(bighost, 'h', sizeof(bighost) - 1);
	bighost[sizeof(bighost) - 1] = '\0';

	for (n = 0; n < 2 * NSVCS * NNAMES; n++) {
		k = n / (NSVCS * NNAMES);
		i = n / NNAMES % NSVCS;
		j = n % NNAMES;
		host = k == 0 ? "esx01" : bighost;
		name = names[j] != NULL ? names[j] : bigname;
		mkhello_new(&m, host);
		m.service = svcs[i];
		strlcpy(m.name, name, sizeof(m.name));
		hl = strlen(host);
		nl = strlen(name);
		plen = HELLO_NEW_MIN + hl + nl;
		b = evbuffer_new();
		assert_non_null(b);
		frame_hello_add(b, &m);
		/* The header, too, must take up to 96 + 255 + 160. */
		pl = check_frame(b, PROTO_HELLO, plen);
		assert_true(plen <= 96 + 255 + 160);

		/* u16 service at 89 + hl, namelen at 91, name at 92. */
		assert_int_equal(pl[HELLO_HOSTLEN_OFF], hl);
		assert_memory_equal(pl + 89, host, hl);
		assert_int_equal(pl[89 + hl], svcs[i] >> 8);
		assert_int_equal(pl[90 + hl], svcs[i] & 0xff);
		assert_int_equal(pl[91 + hl], nl);
		if (nl > 0)
			assert_memory_equal(pl + 92 + hl, name, nl);

		memset(&d, 0xa5, sizeof(d));
		assert_int_equal(frame_hello_decode(pl, plen, &d), FRAME_OK);
		assert_int_equal(d.service, svcs[i]);
		assert_string_equal(d.name, name);
		assert_string_equal(d.host, host);
		assert_memory_equal(&d, &m, sizeof(m));
		evbuffer_free(b);
	}
	/* The largest is exactly 511. */
	assert_int_equal(HELLO_NEW_MIN + PROTO_HOST_MAX + PROTO_NAME_MAX, 511);
	assert_true(511 <= PROTO_HANDSHAKE_MAX);
}

/* RESUME hello: 48 bytes, NEW-only fields come back zero. */
static void
test_hello_resume_roundtrip(void **state)
{
	struct proto_hello	 m, d;
	struct evbuffer		*b;
	const uint8_t		*pl;

	memset(&m, 0, sizeof(m));
	m.version = PROTO_VERSION;
	m.kind = PROTO_HELLO_RESUME;
	m.sid = UINT64_MAX;
	pattern(m.nonce, sizeof(m.nonce), 0x42);

	b = evbuffer_new();
	assert_non_null(b);
	frame_hello_add(b, &m);
	pl = check_frame(b, PROTO_HELLO, HELLO_RESUME_LEN);
	assert_int_equal(pl[7], PROTO_HELLO_RESUME);

	memset(&d, 0xa5, sizeof(d));
	assert_int_equal(frame_hello_decode(pl, HELLO_RESUME_LEN, &d),
	    FRAME_OK);
	assert_memory_equal(&d, &m, sizeof(m));
	evbuffer_free(b);
}

/*
 * RESUME_PROOF hello (version 3): 88 bytes with the proof's next and
 * mac; a version 2 peer cannot send it, and version 2 still decodes.
 */
static void
test_hello_resume_proof(void **state)
{
	static const size_t	 bad[] = { 48, 56, 87, 89, 92 };
	struct proto_hello	 m, d;
	struct proto_welcome	 w, wd;
	struct evbuffer		*b;
	const uint8_t		*pl;
	uint8_t			 buf[512];
	size_t			 i, n;

	memset(&m, 0, sizeof(m));
	m.version = 3;
	m.kind = PROTO_HELLO_RESUME_PROOF;
	m.sid = 0x0102030405060708ULL;
	pattern(m.nonce, sizeof(m.nonce), 0x42);
	m.next = 0x1122334455667788ULL;
	pattern(m.mac, sizeof(m.mac), 0x99);

	b = evbuffer_new();
	assert_non_null(b);
	frame_hello_add(b, &m);
	pl = check_frame(b, PROTO_HELLO, HELLO_RESUME_LEN + 8 + PROTO_MAC_LEN);
	assert_int_equal(pl[5], 3);
	assert_int_equal(pl[7], PROTO_HELLO_RESUME_PROOF);
	assert_int_equal(pl[48], 0x11);
	assert_int_equal(pl[55], 0x88);
	assert_memory_equal(pl + 56, m.mac, PROTO_MAC_LEN);
	memset(&d, 0xa5, sizeof(d));
	assert_int_equal(frame_hello_decode(pl, 88, &d), FRAME_OK);
	assert_memory_equal(&d, &m, sizeof(m));

	/* Exactly 88 bytes. */
	memcpy(buf, pl, 88);
	memset(buf + 88, 0, sizeof(buf) - 88);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(frame_hello_decode(buf, bad[i], &d),
		    FRAME_E_SIZE);

	/* Not in version 2, which has no tickets. */
	buf[5] = 2;
	assert_int_equal(frame_hello_decode(buf, 88, &d), FRAME_E_FIELD);
	evbuffer_free(b);

	/* Version 2's own frames still decode, for its peers. */
	mkhello_new(&m, "host");
	m.version = 2;
	n = hello_payload(&m, buf, sizeof(buf));
	assert_int_equal(frame_hello_decode(buf, n, &d), FRAME_OK);
	assert_int_equal(d.version, 2);
	m.kind = PROTO_HELLO_RESUME;
	n = hello_payload(&m, buf, sizeof(buf));
	assert_int_equal(frame_hello_decode(buf, n, &d), FRAME_OK);
	memset(&w, 0, sizeof(w));
	w.version = 2;
	w.sid = 9;
	b = evbuffer_new();
	assert_non_null(b);
	frame_welcome_add(b, &w);
	pl = check_frame(b, PROTO_WELCOME, WELCOME_V4_LEN);
	assert_int_equal(frame_welcome_decode(pl, WELCOME_V4_LEN, &wd),
	    FRAME_OK);
	assert_int_equal(wd.version, 2);
	evbuffer_free(b);
}

static void
test_welcome_roundtrip(void **state)
{
	struct proto_welcome	 m, d;
	struct evbuffer		*b;
	const uint8_t		*pl;

	memset(&m, 0, sizeof(m));
	m.version = PROTO_VERSION;
	m.sid = 0xdeadbeefcafef00dULL;
	pattern(m.nonce, sizeof(m.nonce), 0x01);
	pattern(m.pubkey, sizeof(m.pubkey), 0x99);
	m.window = WINDOW;

	b = evbuffer_new();
	assert_non_null(b);
	frame_welcome_add(b, &m);
	pl = check_frame(b, PROTO_WELCOME, WELCOME_LEN);
	assert_memory_equal(pl, "VRLY", 4);
	assert_int_equal(pl[5], PROTO_VERSION);
	assert_int_equal(pl[6], 0);
	assert_int_equal(pl[7], 0);
	assert_int_equal(pl[8], 0xde);
	assert_memory_equal(pl + 16, m.nonce, PROTO_NONCE_LEN);
	assert_memory_equal(pl + 48, m.pubkey, PROTO_KEY_LEN);
	assert_int_equal(pl[80], 0x00);	/* version 5: the window */
	assert_int_equal(pl[81], 0x12);
	assert_int_equal(pl[83], 0x56);

	memset(&d, 0xa5, sizeof(d));
	assert_int_equal(frame_welcome_decode(pl, WELCOME_LEN, &d), FRAME_OK);
	assert_int_equal(d.version, m.version);
	assert_int_equal(d.window, WINDOW);
	assert_true(d.sid == m.sid);
	assert_memory_equal(d.nonce, m.nonce, PROTO_NONCE_LEN);
	assert_memory_equal(d.pubkey, m.pubkey, PROTO_KEY_LEN);
	evbuffer_free(b);
}

static void
test_challenge_roundtrip(void **state)
{
	struct proto_challenge	 m, d;
	struct evbuffer		*b;
	const uint8_t		*pl;

	pattern(m.nonce, sizeof(m.nonce), 0x33);
	b = evbuffer_new();
	assert_non_null(b);
	frame_challenge_add(b, &m);
	pl = check_frame(b, PROTO_CHALLENGE, PROTO_NONCE_LEN);
	assert_memory_equal(pl, m.nonce, PROTO_NONCE_LEN);

	memset(&d, 0xa5, sizeof(d));
	assert_int_equal(frame_challenge_decode(pl, PROTO_NONCE_LEN, &d),
	    FRAME_OK);
	assert_memory_equal(d.nonce, m.nonce, PROTO_NONCE_LEN);
	evbuffer_free(b);
}

static void
test_proof_roundtrip(void **state)
{
	struct proto_proof	 m, d;
	struct evbuffer		*b;
	const uint8_t		*pl;

	memset(&m, 0, sizeof(m));
	m.next = 0x1122334455667788ULL;
	pattern(m.mac, sizeof(m.mac), 0xc0);
	b = evbuffer_new();
	assert_non_null(b);
	frame_proof_add(b, &m);
	pl = check_frame(b, PROTO_PROOF, 8 + PROTO_MAC_LEN);
	assert_int_equal(pl[0], 0x11);
	assert_int_equal(pl[7], 0x88);
	assert_memory_equal(pl + 8, m.mac, PROTO_MAC_LEN);

	memset(&d, 0xa5, sizeof(d));
	assert_int_equal(frame_proof_decode(pl, 8 + PROTO_MAC_LEN, &d),
	    FRAME_OK);
	assert_true(d.next == m.next);
	assert_memory_equal(d.mac, m.mac, PROTO_MAC_LEN);
	evbuffer_free(b);
}

/*
 * ERROR and CLOSE, with a plain, an empty, a NULL and a UTF-8 reason
 * (sent masked: reasons are ASCII on the wire).
 */
static void
test_error_roundtrip(void **state)
{
	static const struct {
		int		 type;
		int		 code;
		const char	*reason;
		const char	*sent;
	} cases[] = {
		{ PROTO_ERROR, PROTO_E_AUTH, "proof did not verify", NULL },
		{ PROTO_ERROR, PROTO_E_VERSION, "", NULL },
		{ PROTO_CLOSE, PROTO_E_SHUTDOWN, NULL, NULL },
		{ PROTO_CLOSE, PROTO_E_INTERNAL, "caf\xc3\xa9 ~ ok",
		    "caf?? ~ ok" },
		{ PROTO_CLOSE, 0xffff, "future code", NULL },
	};
	struct proto_error	 d;
	struct evbuffer		*b;
	const uint8_t		*pl;
	size_t			 i, rl;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rl = cases[i].reason == NULL ? 0 : strlen(cases[i].reason);
		b = evbuffer_new();
		assert_non_null(b);
		frame_error_add(b, cases[i].type, cases[i].code,
		    cases[i].reason);
		pl = check_frame(b, cases[i].type, ERROR_MIN + rl);
		assert_int_equal(pl[0], (cases[i].code >> 8) & 0xff);
		assert_int_equal(pl[1], cases[i].code & 0xff);
		assert_int_equal(pl[2], rl);

		memset(&d, 0xa5, sizeof(d));
		assert_int_equal(frame_error_decode(pl, ERROR_MIN + rl, &d),
		    FRAME_OK);
		assert_int_equal(d.code, cases[i].code);
		assert_string_equal(d.reason, cases[i].sent != NULL ?
		    cases[i].sent : cases[i].reason == NULL ? "" :
		    cases[i].reason);
		evbuffer_free(b);
	}
}

static void
test_u64_roundtrip(void **state)
{
	struct evbuffer	*b;
	const uint8_t	*pl;
	uint64_t	 v;
	size_t		 i, j;

	for (i = 0; i < sizeof(u64_types) / sizeof(u64_types[0]); i++) {
		for (j = 0; j < sizeof(u64_values) / sizeof(u64_values[0]);
		    j++) {
			b = evbuffer_new();
			assert_non_null(b);
			frame_u64_add(b, u64_types[i], u64_values[j]);
			pl = check_frame(b, u64_types[i], 8);
			assert_int_equal(pl[0], u64_values[j] >> 56);
			assert_int_equal(pl[7], u64_values[j] & 0xff);
			v = 42;
			assert_int_equal(frame_u64_decode(pl, 8, &v),
			    FRAME_OK);
			assert_true(v == u64_values[j]);
			evbuffer_free(b);
		}
	}
}

/* DATA: header from frame_data_hdr_add, offset first, bytes after. */
static void
test_data_roundtrip(void **state)
{
	static const size_t	 sizes[] = { 1, 2, 1400, PROTO_DATA_MAX };
	struct evbuffer		*b;
	struct frame_hdr	 h;
	const uint8_t		*pl;
	uint8_t			*bytes;
	uint64_t		 off;
	size_t			 i;

	bytes = malloc(PROTO_DATA_MAX + 1);
	assert_non_null(bytes);
	pattern(bytes, PROTO_DATA_MAX + 1, 0x5a);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		b = evbuffer_new();
		assert_non_null(b);
		frame_data_hdr_add(b, 0xfedcba9876543210ULL, sizes[i]);
		/* Only the header is there yet: peek must still say OK. */
		assert_int_equal(evbuffer_get_length(b), PROTO_HDR_LEN + 8);
		assert_int_equal(frame_peek(b, &h), FRAME_OK);
		assert_int_equal(h.type, PROTO_DATA);
		assert_int_equal(h.len, 8 + sizes[i]);
		evbuffer_add(b, bytes, sizes[i]);

		pl = check_frame(b, PROTO_DATA, 8 + sizes[i]);
		assert_int_equal(frame_u64_decode(pl, 8, &off), FRAME_OK);
		assert_true(off == 0xfedcba9876543210ULL);
		assert_memory_equal(pl + 8, bytes, sizes[i]);
		evbuffer_free(b);
	}

	/* One byte over 256 KiB of payload is refused, by array and peek. */
	b = evbuffer_new();
	assert_non_null(b);
	frame_data_hdr_add(b, 0, PROTO_DATA_MAX + 1);
	evbuffer_add(b, bytes, PROTO_DATA_MAX + 1);
	pl = evbuffer_pullup(b, -1);
	assert_non_null(pl);
	assert_int_equal(pl[4], 0x00);
	assert_int_equal(pl[5], 0x04);
	assert_int_equal(pl[6], 0x00);
	assert_int_equal(pl[7], 0x09);
	assert_int_equal(frame_hdr_decode(pl, evbuffer_get_length(b), &h),
	    FRAME_E_SIZE);
	assert_int_equal(frame_peek(b, &h), FRAME_E_SIZE);
	evbuffer_free(b);

	/* And an empty DATA (offset only) too. */
	b = evbuffer_new();
	assert_non_null(b);
	frame_data_hdr_add(b, 7, 0);
	assert_int_equal(frame_peek(b, &h), FRAME_E_SIZE);
	evbuffer_free(b);
	free(bytes);
}

/* Fewer than 8 bytes is never an error, only "not yet". */
static void
test_hdr_partial(void **state)
{
	struct frame_hdr	 h;
	struct evbuffer		*b;
	uint8_t			 hdr[PROTO_HDR_LEN];
	size_t			 n;

	mkhdr(hdr, PROTO_PING, 0, 0, 8);
	for (n = 0; n < PROTO_HDR_LEN; n++) {
		memset(&h, 0xa5, sizeof(h));
		assert_int_equal(frame_hdr_decode(hdr, n, &h), FRAME_EAGAIN);
		assert_int_equal(h.type, 0);
		assert_int_equal(h.len, 0);

		b = evbuffer_new();
		assert_non_null(b);
		evbuffer_add(b, hdr, n);
		memset(&h, 0xa5, sizeof(h));
		assert_int_equal(frame_peek(b, &h), FRAME_EAGAIN);
		assert_int_equal(h.type, 0);
		assert_int_equal(h.len, 0);
		assert_int_equal(evbuffer_get_length(b), n);
		evbuffer_free(b);
	}

	/* Even garbage is only EAGAIN while it is short. */
	memset(hdr, 0xff, sizeof(hdr));
	for (n = 0; n < PROTO_HDR_LEN; n++)
		assert_int_equal(frame_hdr_decode(hdr, n, &h), FRAME_EAGAIN);
	assert_int_equal(frame_hdr_decode(hdr, PROTO_HDR_LEN, &h),
	    FRAME_E_TYPE);

	/* A header split over two evbuffer chains still peeks whole. */
	mkhdr(hdr, PROTO_ACK, 0, 0, 8);
	b = evbuffer_new();
	assert_non_null(b);
	evbuffer_add(b, hdr, 3);
	evbuffer_add_reference(b, hdr + 3, 5, NULL, NULL);
	assert_int_equal(frame_peek(b, &h), FRAME_OK);
	assert_int_equal(h.type, PROTO_ACK);
	assert_int_equal(h.len, 8);
	evbuffer_free(b);
}

static void
test_hdr_unknown_type(void **state)
{
	static const uint8_t	 bad[] = {
		0, 7, 8, 9, 10, 11, 12, 13, 14, 15, 23, 24, 31, 32, 128, 255
	};
	struct frame_hdr	 h;
	struct evbuffer		*b;
	uint8_t			 hdr[PROTO_HDR_LEN];
	size_t			 i;

	for (i = 0; i < sizeof(bad); i++) {
		mkhdr(hdr, bad[i], 0, 0, 8);
		memset(&h, 0xa5, sizeof(h));
		assert_int_equal(frame_hdr_decode(hdr, sizeof(hdr), &h),
		    FRAME_E_TYPE);
		assert_int_equal(h.type, 0);

		b = evbuffer_new();
		assert_non_null(b);
		evbuffer_add(b, hdr, sizeof(hdr));
		assert_int_equal(frame_peek(b, &h), FRAME_E_TYPE);
		evbuffer_free(b);

		assert_string_equal(frame_strtype(bad[i]), "UNKNOWN");
	}
}

static void
test_hdr_reserved(void **state)
{
	static const struct {
		uint8_t		flags;
		uint16_t	rsvd;
	} bad[] = {
		{ 0x01, 0 }, { 0x80, 0 }, { 0xff, 0 },
		{ 0, 0x0001 }, { 0, 0x0100 }, { 0, 0x8000 }, { 0, 0xffff },
		{ 0x01, 0x0001 },
	};
	struct frame_hdr	 h;
	struct evbuffer		*b;
	uint8_t			 hdr[PROTO_HDR_LEN];
	size_t			 i, t;

	for (t = 0; t < NSIZE_CASES; t++) {
		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			mkhdr(hdr, size_cases[t].type, bad[i].flags,
			    bad[i].rsvd, size_cases[t].min);
			memset(&h, 0xa5, sizeof(h));
			assert_int_equal(frame_hdr_decode(hdr, sizeof(hdr),
			    &h), FRAME_E_HEADER);
			assert_int_equal(h.type, 0);
			assert_int_equal(h.len, 0);

			b = evbuffer_new();
			assert_non_null(b);
			evbuffer_add(b, hdr, sizeof(hdr));
			assert_int_equal(frame_peek(b, &h), FRAME_E_HEADER);
			evbuffer_free(b);
		}
	}
}

/* Every type: exactly [min, max] is accepted. */
static void
test_hdr_size(void **state)
{
	const struct size_case	*c;
	struct frame_hdr	 h;
	uint8_t			 hdr[PROTO_HDR_LEN];
	size_t			 t;

	for (t = 0; t < NSIZE_CASES; t++) {
		c = &size_cases[t];

		mkhdr(hdr, c->type, 0, 0, c->min);
		assert_int_equal(frame_hdr_decode(hdr, sizeof(hdr), &h),
		    FRAME_OK);
		assert_int_equal(h.type, c->type);
		assert_int_equal(h.len, c->min);

		mkhdr(hdr, c->type, 0, 0, c->max);
		assert_int_equal(frame_hdr_decode(hdr, sizeof(hdr), &h),
		    FRAME_OK);
		assert_int_equal(h.len, c->max);

		mkhdr(hdr, c->type, 0, 0, c->min - 1);
		assert_int_equal(frame_hdr_decode(hdr, sizeof(hdr), &h),
		    FRAME_E_SIZE);
		mkhdr(hdr, c->type, 0, 0, 0);
		assert_int_equal(frame_hdr_decode(hdr, sizeof(hdr), &h),
		    FRAME_E_SIZE);
		mkhdr(hdr, c->type, 0, 0, c->max + 1);
		assert_int_equal(frame_hdr_decode(hdr, sizeof(hdr), &h),
		    FRAME_E_SIZE);
		mkhdr(hdr, c->type, 0, 0, 0x80000000U);
		assert_int_equal(frame_hdr_decode(hdr, sizeof(hdr), &h),
		    FRAME_E_SIZE);
		mkhdr(hdr, c->type, 0, 0, UINT32_MAX);
		assert_int_equal(frame_hdr_decode(hdr, sizeof(hdr), &h),
		    FRAME_E_SIZE);
		/* Length limits for a type are not shifted onto another. */
		mkhdr(hdr, c->type, 0, 0, c->max + 256);
		assert_int_equal(frame_hdr_decode(hdr, sizeof(hdr), &h),
		    FRAME_E_SIZE);
	}
}

static void
test_hello_bad_magic(void **state)
{
	struct proto_hello	m, d;
	uint8_t			pl[512];
	size_t			len, i;

	mkhello_new(&m, "host");
	len = hello_payload(&m, pl, sizeof(pl));
	assert_int_equal(frame_hello_decode(pl, len, &d), FRAME_OK);
	for (i = 0; i < 4; i++) {
		pl[i] ^= 0x20;		/* "vRLY", "VrLY", ... */
		memset(&d, 0xa5, sizeof(d));
		assert_int_equal(frame_hello_decode(pl, len, &d),
		    FRAME_E_MAGIC);
		assert_int_equal(d.kind, 0);
		assert_true(d.sid == 0);
		pl[i] ^= 0x20;
	}
	/* A byte-swapped magic is still wrong. */
	pl[0] = 'Y'; pl[1] = 'L'; pl[2] = 'R'; pl[3] = 'V';
	assert_int_equal(frame_hello_decode(pl, len, &d), FRAME_E_MAGIC);
}

/* The offered version is reported so the ERROR can say what it was. */
static void
test_hello_bad_version(void **state)
{
	static const uint16_t	 vers[] = { 0, 1, 6, 0x0100, 0x0500, 0xffff };
	struct proto_hello	 m, d;
	struct proto_welcome	 w, wd;
	struct evbuffer		*b;
	uint8_t			 pl[512], *p;
	size_t			 len, i, n;

	for (i = 0; i < sizeof(vers) / sizeof(vers[0]); i++) {
		mkhello_new(&m, "host");
		m.version = vers[i];
		len = hello_payload(&m, pl, sizeof(pl));
		memset(&d, 0xa5, sizeof(d));
		assert_int_equal(frame_hello_decode(pl, len, &d),
		    FRAME_E_VERSION);
		assert_int_equal(d.version, vers[i]);

		/* A v1 peer's NEW (no service or name): version first. */
		memset(&d, 0xa5, sizeof(d));
		assert_int_equal(frame_hello_decode(pl, len - 3, &d),
		    FRAME_E_VERSION);
		assert_int_equal(d.version, vers[i]);

		m.kind = PROTO_HELLO_RESUME;
		len = hello_payload(&m, pl, sizeof(pl));
		assert_int_equal(len, HELLO_RESUME_LEN);
		assert_int_equal(frame_hello_decode(pl, len, &d),
		    FRAME_E_VERSION);
		assert_int_equal(d.version, vers[i]);

		memset(&w, 0, sizeof(w));
		w.version = vers[i];
		w.sid = 5;
		b = evbuffer_new();
		assert_non_null(b);
		frame_welcome_add(b, &w);
		p = pull(b, &n);
		assert_int_equal(n, PROTO_HDR_LEN + (vers[i] >= 5 ?
		    WELCOME_LEN : WELCOME_V4_LEN));
		memset(&wd, 0xa5, sizeof(wd));
		assert_int_equal(frame_welcome_decode(p + PROTO_HDR_LEN,
		    n - PROTO_HDR_LEN, &wd), FRAME_E_VERSION);
		assert_int_equal(wd.version, vers[i]);
		evbuffer_free(b);
	}
}

static void
test_hello_sid_zero(void **state)
{
	struct proto_hello	m, d;
	uint8_t			pl[512];
	size_t			len;

	mkhello_new(&m, "host");
	m.sid = 0;
	len = hello_payload(&m, pl, sizeof(pl));
	assert_int_equal(frame_hello_decode(pl, len, &d), FRAME_E_FIELD);

	m.kind = PROTO_HELLO_RESUME;
	len = hello_payload(&m, pl, sizeof(pl));
	assert_int_equal(frame_hello_decode(pl, len, &d), FRAME_E_FIELD);

	/* The smallest nonzero id is fine, in either byte. */
	m.sid = 1;
	len = hello_payload(&m, pl, sizeof(pl));
	assert_int_equal(frame_hello_decode(pl, len, &d), FRAME_OK);
	m.sid = 1ULL << 63;
	len = hello_payload(&m, pl, sizeof(pl));
	assert_int_equal(frame_hello_decode(pl, len, &d), FRAME_OK);
}

static void
test_hello_bad_kind(void **state)
{
	static const uint16_t	kinds[] = { 0, 4, 0x0103, 0xffff };
	struct proto_hello	m, d;
	uint8_t			pl[512];
	size_t			len, i;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		/* At the RESUME length... */
		mkhello_new(&m, "host");
		m.kind = kinds[i];
		len = hello_payload(&m, pl, sizeof(pl));
		assert_int_equal(len, HELLO_RESUME_LEN);
		assert_int_equal(frame_hello_decode(pl, len, &d),
		    FRAME_E_FIELD);

		/* ...and at a well-formed NEW length. */
		m.kind = PROTO_HELLO_NEW;
		len = hello_payload(&m, pl, sizeof(pl));
		pl[6] = kinds[i] >> 8;
		pl[7] = kinds[i] & 0xff;
		assert_int_equal(frame_hello_decode(pl, len, &d),
		    FRAME_E_FIELD);
	}
}

/* NEW: hostlen must account for the payload exactly. */
static void
test_hello_new_hostlen(void **state)
{
	struct proto_hello	m, d;
	uint8_t			pl[512];
	size_t			len, i;

	mkhello_new(&m, "abcd");
	len = hello_payload(&m, pl, sizeof(pl));
	assert_int_equal(len, HELLO_NEW_MIN + 4);
	assert_int_equal(pl[88], 4);
	assert_int_equal(frame_hello_decode(pl, len, &d), FRAME_OK);

	pl[88] = 3;			/* hostlen short of the payload */
	assert_int_equal(frame_hello_decode(pl, len, &d), FRAME_E_SIZE);
	pl[88] = 9;			/* hostlen past the payload */
	assert_int_equal(frame_hello_decode(pl, len, &d), FRAME_E_SIZE);
	pl[88] = 255;
	assert_int_equal(frame_hello_decode(pl, len, &d), FRAME_E_SIZE);
	pl[88] = 0;
	assert_int_equal(frame_hello_decode(pl, len, &d), FRAME_E_SIZE);
	pl[88] = 4;
	assert_int_equal(frame_hello_decode(pl, len - 1, &d), FRAME_E_SIZE);
	pl[len] = 'e';
	assert_int_equal(frame_hello_decode(pl, len + 1, &d), FRAME_E_SIZE);

	/* NEW cut off anywhere, before or after the hostlen byte. */
	for (i = HELLO_RESUME_LEN + 1; i < len; i++)
		assert_int_equal(frame_hello_decode(pl, i, &d), FRAME_E_SIZE);
	assert_int_equal(frame_hello_decode(pl, HELLO_HOSTLEN_OFF, &d),
	    FRAME_E_SIZE);
	assert_int_equal(frame_hello_decode(pl, HELLO_RESUME_LEN, &d),
	    FRAME_E_SIZE);
	assert_int_equal(frame_hello_decode(pl, 60, &d), FRAME_E_SIZE);

	/* Shorter than any HELLO. */
	memset(&d, 0xa5, sizeof(d));
	assert_int_equal(frame_hello_decode(pl, HELLO_RESUME_LEN - 1, &d),
	    FRAME_E_SIZE);
	assert_int_equal(d.version, 0);
	assert_int_equal(frame_hello_decode(pl, 0, &d), FRAME_E_SIZE);
}

static void
test_hello_host_nul(void **state)
{
	struct proto_hello	m, d;
	uint8_t			pl[512];
	size_t			len, i;

	mkhello_new(&m, "abcd");
	len = hello_payload(&m, pl, sizeof(pl));
	for (i = 0; i < 4; i++) {
		pl[89 + i] = '\0';
		assert_int_equal(frame_hello_decode(pl, len, &d),
		    FRAME_E_FIELD);
		pl[89 + i] = "abcd"[i];
	}
	assert_int_equal(frame_hello_decode(pl, len, &d), FRAME_OK);
}

/*
 * NEW: namelen must account for the rest exactly, at most 160 bytes of
 * anything but control bytes and DEL; a v1-shaped NEW is too short.
 */
static void
test_hello_name_bad(void **state)
{
	static const uint8_t	 bad[] = {
		0x00, 0x01, '\t', '\n', '\r', 0x1b, 0x1f, 0x7f
	};
	static const uint8_t	 good[] = { 0x20, 0x7e };
	static const uint8_t	 notutf8[] = { 0x80, 0xc3, 0xff, 0xf8 };
	struct proto_hello	 m, d;
	uint8_t			 pl[600];
	size_t			 len, i, j, nl;

	mkhello_new(&m, "abcd");
	strlcpy(m.name, "vm-01", sizeof(m.name));
	m.service = PROTO_SVC_SERIAL;
	len = hello_payload(&m, pl, sizeof(pl));
	assert_int_equal(len, HELLO_NEW_MIN + 4 + 5);
	assert_int_equal(pl[91 + 4], 5);
	assert_int_equal(frame_hello_decode(pl, len, &d), FRAME_OK);

	/* A control byte or DEL anywhere in the name. */
	for (i = 0; i < 5; i++) {
		for (j = 0; j < sizeof(bad); j++) {
			pl[96 + i] = bad[j];
			memset(&d, 0xa5, sizeof(d));
			assert_int_equal(frame_hello_decode(pl, len, &d),
			    FRAME_E_FIELD);
		}
		/* A byte past ASCII that does not make UTF-8. */
		for (j = 0; j < sizeof(notutf8); j++) {
			pl[96 + i] = notutf8[j];
			assert_int_equal(frame_hello_decode(pl, len, &d),
			    FRAME_E_FIELD);
		}
		/* Space and '~' are fine. */
		for (j = 0; j < sizeof(good); j++) {
			pl[96 + i] = good[j];
			assert_int_equal(frame_hello_decode(pl, len, &d),
			    FRAME_OK);
			assert_int_equal((uint8_t)d.name[i], good[j]);
			assert_int_equal(strlen(d.name), 5);
		}
		pl[96 + i] = "vm-01"[i];
	}
	assert_int_equal(frame_hello_decode(pl, len, &d), FRAME_OK);
	assert_string_equal(d.name, "vm-01");
	/* UTF-8 stays: "v\xc3\xa9-1"; an overlong '/' and a surrogate go. */
	memcpy(pl + 96, "v\xc3\xa9-1", 5);
	assert_int_equal(frame_hello_decode(pl, len, &d), FRAME_OK);
	assert_string_equal(d.name, "v\xc3\xa9-1");
	memcpy(pl + 96, "v\xc0\xaf-1", 5);
	assert_int_equal(frame_hello_decode(pl, len, &d), FRAME_E_FIELD);
	memcpy(pl + 96, "\xed\xa0\x80-1", 5);
	assert_int_equal(frame_hello_decode(pl, len, &d), FRAME_E_FIELD);
	memcpy(pl + 96, "vm-01", 5);

	/* namelen one short of the payload, one past it, far past it. */
	pl[95] = 4;
	assert_int_equal(frame_hello_decode(pl, len, &d), FRAME_E_SIZE);
	pl[95] = 6;
	assert_int_equal(frame_hello_decode(pl, len, &d), FRAME_E_SIZE);
	pl[95] = 255;
	assert_int_equal(frame_hello_decode(pl, len, &d), FRAME_E_SIZE);
	pl[95] = 5;
	assert_int_equal(frame_hello_decode(pl, len - 1, &d), FRAME_E_SIZE);
	pl[len] = 'x';
	assert_int_equal(frame_hello_decode(pl, len + 1, &d), FRAME_E_SIZE);
	assert_int_equal(frame_hello_decode(pl, len, &d), FRAME_OK);

	/* 160 bytes pass, 161 (length agreeing) is out of range. */
	for (nl = PROTO_NAME_MAX; nl <= PROTO_NAME_MAX + 1; nl++) {
		pl[95] = (uint8_t)nl;
		memset(pl + 96, 'n', nl);
		memcpy(pl + 96 + nl, "\x00\x12\x34\x56", 4);	/* WINDOW */
		memset(&d, 0xa5, sizeof(d));
		assert_int_equal(frame_hello_decode(pl, HELLO_NEW_MIN + 4 + nl,
		    &d), nl <= PROTO_NAME_MAX ? FRAME_OK : FRAME_E_FIELD);
		if (nl <= PROTO_NAME_MAX)
			assert_int_equal(strlen(d.name), nl);
	}
	pl[95] = 255;
	memset(pl + 96, 'n', 255);
	assert_int_equal(frame_hello_decode(pl, HELLO_NEW_MIN + 4 + 255, &d),
	    FRAME_E_FIELD);

	/* A v1-style NEW: the same HELLO without its last 3 (+4) bytes. */
	mkhello_new(&m, "abcd");
	len = hello_payload(&m, pl, sizeof(pl));
	assert_int_equal(len, HELLO_NEW_MIN + 4);
	assert_int_equal(frame_hello_decode(pl, len, &d), FRAME_OK);
	for (i = 1; i <= 7; i++) {
		memset(&d, 0xa5, sizeof(d));
		assert_int_equal(frame_hello_decode(pl, len - i, &d),
		    FRAME_E_SIZE);
	}
	mkhello_new(&m, "");
	len = hello_payload(&m, pl, sizeof(pl));
	assert_int_equal(len, HELLO_NEW_MIN);
	assert_int_equal(frame_hello_decode(pl, 89, &d), FRAME_E_SIZE);
}

/*
 * Version 5's window ends a HELLO NEW: below PROTO_WINDOW_MIN it is
 * refused; version 4's NEW has none, and one that carries it is too
 * long.
 */
static void
test_hello_window(void **state)
{
	struct proto_hello	m, d;
	uint8_t			pl[512];
	size_t			len;

	mkhello_new(&m, "abcd");
	len = hello_payload(&m, pl, sizeof(pl));
	assert_int_equal(len, HELLO_NEW_MIN + 4);
	assert_int_equal(frame_hello_decode(pl, len, &d), FRAME_OK);
	assert_int_equal(d.window, WINDOW);
	memcpy(pl + len - 4, "\x00\x00\xff\xff", 4);
	assert_int_equal(frame_hello_decode(pl, len, &d), FRAME_E_FIELD);
	memcpy(pl + len - 4, "\xff\xff\xff\xff", 4);
	assert_int_equal(frame_hello_decode(pl, len, &d), FRAME_OK);
	assert_int_equal(d.window, UINT32_MAX);

	pl[5] = 4;
	assert_int_equal(frame_hello_decode(pl, len, &d), FRAME_E_SIZE);
	m.version = 4;
	len = hello_payload(&m, pl, sizeof(pl));
	assert_int_equal(len, HELLO_NEW_V4 + 4);
	assert_int_equal(frame_hello_decode(pl, len, &d), FRAME_OK);
	assert_int_equal(d.window, 0);
}

/* RESUME is exactly 48 bytes: nothing may follow the nonce. */
static void
test_hello_resume_trailing(void **state)
{
	struct proto_hello	m, d;
	uint8_t			pl[512];
	size_t			len;

	mkhello_new(&m, "abcd");
	m.kind = PROTO_HELLO_RESUME;
	len = hello_payload(&m, pl, sizeof(pl));
	assert_int_equal(len, HELLO_RESUME_LEN);
	memset(pl + len, 0, sizeof(pl) - len);
	assert_int_equal(frame_hello_decode(pl, len, &d), FRAME_OK);
	assert_int_equal(frame_hello_decode(pl, len + 1, &d), FRAME_E_SIZE);
	assert_int_equal(frame_hello_decode(pl, HELLO_NEW_MIN, &d),
	    FRAME_E_SIZE);
	assert_int_equal(frame_hello_decode(pl, HELLO_NEW_MIN + 255, &d),
	    FRAME_E_SIZE);
}

static void
test_welcome_bad(void **state)
{
	struct proto_welcome	 m, d;
	struct evbuffer		*b;
	uint8_t			 pl[WELCOME_LEN + 1], *p;
	size_t			 n;

	memset(&m, 0, sizeof(m));
	m.version = PROTO_VERSION;
	m.sid = 9;
	m.window = WINDOW;
	b = evbuffer_new();
	assert_non_null(b);
	frame_welcome_add(b, &m);
	p = pull(b, &n);
	assert_int_equal(n, PROTO_HDR_LEN + WELCOME_LEN);
	memcpy(pl, p + PROTO_HDR_LEN, WELCOME_LEN);
	pl[WELCOME_LEN] = 0;
	evbuffer_free(b);

	assert_int_equal(frame_welcome_decode(pl, WELCOME_LEN, &d), FRAME_OK);

	pl[6] = 0x01;			/* reserved u16, high byte */
	assert_int_equal(frame_welcome_decode(pl, WELCOME_LEN, &d),
	    FRAME_E_FIELD);
	pl[6] = 0;
	pl[7] = 0x01;			/* reserved u16, low byte */
	assert_int_equal(frame_welcome_decode(pl, WELCOME_LEN, &d),
	    FRAME_E_FIELD);
	pl[7] = 0;
	/* A window under PROTO_WINDOW_MIN, version 5's tail. */
	memcpy(pl + 80, "\x00\x00\xff\xff", 4);
	assert_int_equal(frame_welcome_decode(pl, WELCOME_LEN, &d),
	    FRAME_E_FIELD);
	memcpy(pl + 80, "\x00\x01\x00\x00", 4);
	assert_int_equal(frame_welcome_decode(pl, WELCOME_LEN, &d), FRAME_OK);
	assert_int_equal(d.window, PROTO_WINDOW_MIN);
	/* Version 4's WELCOME has none: 80 bytes. */
	pl[5] = 4;
	assert_int_equal(frame_welcome_decode(pl, WELCOME_V4_LEN, &d),
	    FRAME_OK);
	assert_int_equal(d.window, 0);
	assert_int_equal(frame_welcome_decode(pl, WELCOME_LEN, &d),
	    FRAME_E_SIZE);
	pl[5] = PROTO_VERSION;

	assert_int_equal(frame_welcome_decode(pl, WELCOME_LEN - 1, &d),
	    FRAME_E_SIZE);
	assert_int_equal(frame_welcome_decode(pl, WELCOME_LEN + 1, &d),
	    FRAME_E_SIZE);
	assert_int_equal(frame_welcome_decode(pl, 0, &d), FRAME_E_SIZE);

	pl[3] ^= 1;
	assert_int_equal(frame_welcome_decode(pl, WELCOME_LEN, &d),
	    FRAME_E_MAGIC);
}

static void
test_fixed_bad_size(void **state)
{
	struct proto_challenge	c;
	struct proto_proof	p;
	uint8_t			buf[64];
	uint64_t		v;
	size_t			n;

	memset(buf, 0x5a, sizeof(buf));
	for (n = 0; n < sizeof(buf); n++) {
		memset(&c, 0xa5, sizeof(c));
		assert_int_equal(frame_challenge_decode(buf, n, &c),
		    n == 32 ? FRAME_OK : FRAME_E_SIZE);
		if (n != 32)
			assert_int_equal(c.nonce[0], 0);

		memset(&p, 0xa5, sizeof(p));
		assert_int_equal(frame_proof_decode(buf, n, &p),
		    n == 40 ? FRAME_OK : FRAME_E_SIZE);
		if (n != 40)
			assert_true(p.next == 0);

		v = 42;
		assert_int_equal(frame_u64_decode(buf, n, &v),
		    n == 8 ? FRAME_OK : FRAME_E_SIZE);
		assert_true(v == (n == 8 ? 0x5a5a5a5a5a5a5a5aULL : 0));
	}
}

/* Build an ERROR payload by hand: code, reasonlen, reason bytes. */
static size_t
mkerror(uint8_t *p, uint16_t code, const uint8_t *r, size_t rl)
{
	p[0] = code >> 8;
	p[1] = code & 0xff;
	p[2] = (uint8_t)rl;
	memcpy(p + 3, r, rl);
	return (3 + rl);
}

static void
test_error_bad(void **state)
{
	static const uint8_t	 ctl[] = {
		0x00, 0x01, '\t', '\n', '\r', 0x1b, 0x1f, 0x7f
	};
	struct proto_error	 d;
	uint8_t			 pl[3 + 256], r[8];
	size_t			 len, i;

	/* The edges of the printable range pass... */
	memcpy(r, " ~", 2);
	len = mkerror(pl, PROTO_E_LIMIT, r, 2);
	assert_int_equal(frame_error_decode(pl, len, &d), FRAME_OK);
	assert_int_equal(d.code, PROTO_E_LIMIT);
	assert_memory_equal(d.reason, " ~", 3);
	/* ...bytes past ASCII do not: reasons go into logs and JSON. */
	memcpy(r, " ~\x80\xff", 4);
	len = mkerror(pl, PROTO_E_LIMIT, r, 4);
	assert_int_equal(frame_error_decode(pl, len, &d), FRAME_E_FIELD);

	for (i = 0; i < sizeof(ctl); i++) {
		memcpy(r, "ab?d", 4);
		r[2] = ctl[i];
		len = mkerror(pl, PROTO_E_LIMIT, r, 4);
		memset(&d, 0xa5, sizeof(d));
		assert_int_equal(frame_error_decode(pl, len, &d),
		    FRAME_E_FIELD);
		r[0] = ctl[i];
		r[2] = 'c';
		len = mkerror(pl, PROTO_E_LIMIT, r, 4);
		assert_int_equal(frame_error_decode(pl, len, &d),
		    FRAME_E_FIELD);
		len = mkerror(pl, PROTO_E_LIMIT, r, 1);
		assert_int_equal(frame_error_decode(pl, len, &d),
		    FRAME_E_FIELD);
	}

	/* reasonlen must match the payload exactly. */
	len = mkerror(pl, PROTO_E_LIMIT, (const uint8_t *)"abcd", 4);
	assert_int_equal(frame_error_decode(pl, len, &d), FRAME_OK);
	assert_int_equal(frame_error_decode(pl, len - 1, &d), FRAME_E_SIZE);
	pl[len] = 'e';
	assert_int_equal(frame_error_decode(pl, len + 1, &d), FRAME_E_SIZE);
	pl[2] = 255;
	assert_int_equal(frame_error_decode(pl, len, &d), FRAME_E_SIZE);
	pl[2] = 0;
	assert_int_equal(frame_error_decode(pl, len, &d), FRAME_E_SIZE);
	assert_int_equal(frame_error_decode(pl, 3, &d), FRAME_OK);
	assert_string_equal(d.reason, "");
	memset(&d, 0xa5, sizeof(d));
	assert_int_equal(frame_error_decode(pl, 2, &d), FRAME_E_SIZE);
	assert_int_equal(d.code, 0);
	assert_int_equal(frame_error_decode(pl, 0, &d), FRAME_E_SIZE);
}

/* The encoder never emits what the decoder would refuse. */
static void
test_error_add_sanitises(void **state)
{
	static const int	 types[] = { PROTO_ERROR, PROTO_CLOSE };
	static const size_t	 lens[] = { 0, 1, 254, 255, 256, 399 };
	struct proto_error	 d;
	struct evbuffer		*b;
	const uint8_t		*pl;
	char			 longr[400];
	size_t			 i, j, n;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		b = evbuffer_new();
		assert_non_null(b);
		frame_error_add(b, types[i], PROTO_E_BACKEND,
		    "a\tb\nc\x7f\x01\x1f z");
		pl = check_frame(b, types[i], ERROR_MIN + 10);
		assert_int_equal(frame_error_decode(pl, ERROR_MIN + 10, &d),
		    FRAME_OK);
		assert_string_equal(d.reason, "a?b?c??? z");
		evbuffer_free(b);
	}

	/* Up to 255 kept whole; 256 and more cut at PROTO_REASON_MAX. */
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		n = lens[i];
		for (j = 0; j < n; j++)
			longr[j] = 'a' + (j % 26);
		longr[n] = '\0';
		b = evbuffer_new();
		assert_non_null(b);
		frame_error_add(b, PROTO_CLOSE, PROTO_E_HOLD, longr);
		if (n > PROTO_REASON_MAX) {
			pl = check_frame(b, PROTO_CLOSE,
			    ERROR_MIN + PROTO_REASON_MAX);
			assert_int_equal(pl[2], PROTO_REASON_MAX);
			assert_int_equal(frame_error_decode(pl,
			    ERROR_MIN + PROTO_REASON_MAX, &d), FRAME_OK);
			assert_int_equal(strlen(d.reason), PROTO_REASON_MAX);
			assert_memory_equal(d.reason, longr,
			    PROTO_REASON_MAX);
		} else {
			pl = check_frame(b, PROTO_CLOSE, ERROR_MIN + n);
			assert_int_equal(frame_error_decode(pl, ERROR_MIN + n,
			    &d), FRAME_OK);
			assert_string_equal(d.reason, longr);
		}
		assert_int_equal(d.code, PROTO_E_HOLD);
		evbuffer_free(b);
	}
}

static void
test_strings(void **state)
{
	const char	*s, *unknown_err;
	int		 i, j;

	for (i = -10; i <= 300; i++) {
		s = frame_strerror(i);
		assert_non_null(s);
		assert_true(s[0] != '\0');
		s = frame_strtype(i);
		assert_non_null(s);
		assert_true(s[0] != '\0');
		s = frame_strcode(i);
		assert_non_null(s);
		assert_true(s[0] != '\0');
	}
	s = frame_strtype(INT32_MIN);
	assert_non_null(s);
	s = frame_strtype(INT32_MAX);
	assert_non_null(s);
	s = frame_strcode(INT32_MIN);
	assert_non_null(s);
	s = frame_strerror(INT32_MIN);
	assert_non_null(s);

	/* Every FRAME_* code has its own text, not the fallback. */
	unknown_err = frame_strerror(-100);
	for (i = FRAME_E_FIELD; i <= FRAME_OK; i++) {
		assert_string_not_equal(frame_strerror(i), unknown_err);
		for (j = FRAME_E_FIELD; j < i; j++)
			assert_string_not_equal(frame_strerror(i),
			    frame_strerror(j));
	}

	for (i = 0; i < (int)NSIZE_CASES; i++)
		assert_string_not_equal(frame_strtype(size_cases[i].type),
		    "UNKNOWN");
	assert_string_equal(frame_strtype(PROTO_HELLO), "HELLO");
	assert_string_equal(frame_strtype(PROTO_DATA), "DATA");
	assert_string_equal(frame_strtype(PROTO_PONG), "PONG");
	assert_string_equal(frame_strtype(PROTO_RELEASE), "RELEASE");
	assert_string_equal(frame_strtype(0), "UNKNOWN");
	assert_string_equal(frame_strtype(PROTO_TYPE_MAX + 1), "UNKNOWN");

	for (i = PROTO_E_NONE; i <= PROTO_CODE_MAX; i++)
		assert_string_not_equal(frame_strcode(i), "unknown");
	assert_string_equal(frame_strcode(PROTO_E_AUTH), "auth");
	assert_int_equal(PROTO_E_SERVICE, 15);
	assert_string_equal(frame_strcode(PROTO_E_SERVICE), "no-such-service");
	assert_int_equal(PROTO_E_OVERTAKEN, 16);
	assert_int_equal(PROTO_CODE_MAX, PROTO_E_OVERTAKEN);
	assert_string_equal(frame_strcode(PROTO_E_OVERTAKEN), "overtaken");
	assert_string_equal(frame_strcode(PROTO_CODE_MAX + 1), "unknown");
	assert_string_equal(frame_strcode(-1), "unknown");
}

/* Two frames back to back: peek sees only the first. */
static void
test_peek_stream(void **state)
{
	struct proto_hello	 m;
	struct frame_hdr	 h;
	struct evbuffer		*b;

	mkhello_new(&m, "abc");
	b = evbuffer_new();
	assert_non_null(b);
	frame_hello_add(b, &m);
	frame_u64_add(b, PROTO_PING, 77);
	assert_int_equal(evbuffer_get_length(b),
	    PROTO_HDR_LEN + HELLO_NEW_MIN + 3 + PROTO_HDR_LEN + 8);
	assert_int_equal(frame_peek(b, &h), FRAME_OK);
	assert_int_equal(h.type, PROTO_HELLO);
	assert_int_equal(h.len, HELLO_NEW_MIN + 3);
	evbuffer_drain(b, PROTO_HDR_LEN + h.len);
	assert_int_equal(frame_peek(b, &h), FRAME_OK);
	assert_int_equal(h.type, PROTO_PING);
	assert_int_equal(h.len, 8);
	evbuffer_free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hello_new_roundtrip),
		cmocka_unit_test(test_hello_new_service_name),
		cmocka_unit_test(test_hello_resume_roundtrip),
		cmocka_unit_test(test_welcome_roundtrip),
		cmocka_unit_test(test_challenge_roundtrip),
		cmocka_unit_test(test_proof_roundtrip),
		cmocka_unit_test(test_error_roundtrip),
		cmocka_unit_test(test_u64_roundtrip),
		cmocka_unit_test(test_data_roundtrip),
		cmocka_unit_test(test_hdr_partial),
		cmocka_unit_test(test_hdr_unknown_type),
		cmocka_unit_test(test_hdr_reserved),
		cmocka_unit_test(test_hdr_size),
		cmocka_unit_test(test_hello_bad_magic),
		cmocka_unit_test(test_hello_bad_version),
		cmocka_unit_test(test_hello_resume_proof),
		cmocka_unit_test(test_hello_sid_zero),
		cmocka_unit_test(test_hello_bad_kind),
		cmocka_unit_test(test_hello_new_hostlen),
		cmocka_unit_test(test_hello_host_nul),
		cmocka_unit_test(test_hello_name_bad),
		cmocka_unit_test(test_hello_window),
		cmocka_unit_test(test_hello_resume_trailing),
		cmocka_unit_test(test_welcome_bad),
		cmocka_unit_test(test_fixed_bad_size),
		cmocka_unit_test(test_error_bad),
		cmocka_unit_test(test_error_add_sanitises),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_peek_stream),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
