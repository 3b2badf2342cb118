/*
 * frame.c -- encode and decode the session protocol's frames.
 *
 * The decoders are the first thing a peer's bytes meet, so they check
 * every length against the frame type before looking inside, and
 * never trust a length field to stay within the buffer.
 */
#include <string.h>

#include <event2/buffer.h>

#include "frame.h"
#include "text.h"

/* Smallest and largest payload for each frame type. */
static const struct {
	const char	*name;
	uint32_t	 min;
	uint32_t	 max;
} frame_types[PROTO_TYPE_MAX + 1] = {
	[PROTO_HELLO] = { "HELLO", 48,
	    PROTO_HELLO_NEW_FIXED + PROTO_HOST_MAX + PROTO_NAME_MAX },
	[PROTO_WELCOME] = { "WELCOME", 80, 84 },
	[PROTO_CHALLENGE] = { "CHALLENGE", 32, 32 },
	[PROTO_PROOF] = { "PROOF", 40, 40 },
	[PROTO_RESUMED] = { "RESUMED", 8, 8 },
	[PROTO_ERROR] = { "ERROR", 3, 3 + PROTO_REASON_MAX },
	[PROTO_DATA] = { "DATA", 9, 8 + PROTO_DATA_MAX },
	[PROTO_ACK] = { "ACK", 8, 8 },
	[PROTO_FIN] = { "FIN", 8, 8 },
	[PROTO_CLOSE] = { "CLOSE", 3, 3 + PROTO_REASON_MAX },
	[PROTO_PING] = { "PING", 8, 8 },
	[PROTO_PONG] = { "PONG", 8, 8 },
	[PROTO_RELEASE] = { "RELEASE", 8, 8 },
};

static const char *frame_codes[PROTO_CODE_MAX + 1] = {
	[PROTO_E_NONE] = "none",
	[PROTO_E_VERSION] = "version",
	[PROTO_E_MALFORMED] = "malformed",
	[PROTO_E_UNKNOWN_SESSION] = "unknown-session",
	[PROTO_E_AUTH] = "auth",
	[PROTO_E_NOT_APPLIANCE] = "not-appliance-host",
	[PROTO_E_LIMIT] = "limit",
	[PROTO_E_EXISTS] = "exists",
	[PROTO_E_BACKEND] = "backend",
	[PROTO_E_HOLD] = "hold-expired",
	[PROTO_E_RESET] = "reset",
	[PROTO_E_SHUTDOWN] = "shutdown",
	[PROTO_E_TOO_FAR] = "too-far-behind",
	[PROTO_E_INTERNAL] = "internal",
	[PROTO_E_DONE] = "done",
	[PROTO_E_SERVICE] = "no-such-service",
	[PROTO_E_OVERTAKEN] = "overtaken",
};

/* The largest HELLO is a handshake frame like any other. */
_Static_assert(PROTO_HELLO_NEW_FIXED + PROTO_HOST_MAX + PROTO_NAME_MAX <=
    PROTO_HANDSHAKE_MAX,
    "HELLO NEW does not fit PROTO_HANDSHAKE_MAX");

/* Text for a FRAME_* code. */
const char *
frame_strerror(int e)
{
	switch (e) {
	case FRAME_OK:
		return ("ok");
	case FRAME_EAGAIN:
		return ("incomplete frame");
	case FRAME_E_TYPE:
		return ("unknown frame type");
	case FRAME_E_HEADER:
		return ("nonzero reserved header bits");
	case FRAME_E_SIZE:
		return ("frame length out of range for its type");
	case FRAME_E_MAGIC:
		return ("bad magic (not a vrelay peer)");
	case FRAME_E_VERSION:
		return ("unsupported protocol version");
	case FRAME_E_FIELD:
		return ("field out of range");
	}
	return ("unknown frame error");
}

/* Name of a frame type, for logs. */
const char *
frame_strtype(int type)
{
	if (type <= 0 || type > PROTO_TYPE_MAX ||
	    frame_types[type].name == NULL)
		return ("UNKNOWN");
	return (frame_types[type].name);
}

/* Name of an ERROR/CLOSE code. */
const char *
frame_strcode(int code)
{
	if (code < 0 || code > PROTO_CODE_MAX || frame_codes[code] == NULL)
		return ("unknown");
	return (frame_codes[code]);
}

static uint16_t
get16(const uint8_t *p)
{
	return ((uint16_t)(p[0] << 8 | p[1]));
}

static uint32_t
get32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3]);
}

static uint64_t
get64(const uint8_t *p)
{
	return ((uint64_t)get32(p) << 32 | get32(p + 4));
}

static uint8_t *
put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v;
	return (p + 2);
}

static uint8_t *
put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
	return (p + 4);
}

static uint8_t *
put64(uint8_t *p, uint64_t v)
{
	put32(p, v >> 32);
	return (put32(p + 4, (uint32_t)v));
}

static uint8_t *
puthdr(uint8_t *p, int type, size_t len)
{
	p[0] = type;
	p[1] = 0;
	p[2] = 0;
	p[3] = 0;
	return (put32(p + 4, (uint32_t)len));
}

/* Check a frame header: known type, zero reserved bits, sane length. */
int
frame_hdr_decode(const uint8_t *p, size_t len, struct frame_hdr *h)
{
	memset(h, 0, sizeof(*h));
	if (len < PROTO_HDR_LEN)
		return (FRAME_EAGAIN);
	if (p[0] == 0 || p[0] > PROTO_TYPE_MAX ||
	    frame_types[p[0]].name == NULL)
		return (FRAME_E_TYPE);
	if (p[1] != 0 || p[2] != 0 || p[3] != 0)
		return (FRAME_E_HEADER);
	h->type = p[0];
	h->len = get32(p + 4);
	if (h->len < frame_types[h->type].min ||
	    h->len > frame_types[h->type].max)
		return (FRAME_E_SIZE);
	return (FRAME_OK);
}

/* Check the header at the front of an evbuffer without draining it. */
int
frame_peek(struct evbuffer *in, struct frame_hdr *h)
{
	uint8_t	hdr[PROTO_HDR_LEN];

	memset(h, 0, sizeof(*h));
	if (evbuffer_copyout(in, hdr, sizeof(hdr)) != sizeof(hdr))
		return (FRAME_EAGAIN);
	return (frame_hdr_decode(hdr, sizeof(hdr), h));
}

/* A host name HELLO may carry: it ends up in logs and status output. */
int
frame_host_ok(const void *s, size_t n)
{
	const uint8_t	*p = s;
	size_t		 i;

	if (n > PROTO_HOST_MAX)
		return (-1);
	for (i = 0; i < n; i++)
		if (p[i] < 0x21 || p[i] > 0x7e)
			return (-1);
	return (0);
}

/* Magic and version, common to HELLO and WELCOME. */
static int
frame_check_magic(const uint8_t *p, uint16_t *version)
{
	if (get32(p) != PROTO_MAGIC)
		return (FRAME_E_MAGIC);
	*version = get16(p + 4);
	if (*version < PROTO_VERSION_MIN || *version > PROTO_VERSION)
		return (FRAME_E_VERSION);
	return (FRAME_OK);
}

/* The bytes a window takes in a HELLO NEW or WELCOME of VERSION. */
static size_t
frame_window_len(uint16_t version)
{
	return (version >= 5 ? 4 : 0);
}

/* The window at P in a frame of VERSION (none before 5: 0). */
static int
frame_window_decode(const uint8_t *p, uint16_t version, uint32_t *window)
{
	*window = 0;
	if (frame_window_len(version) == 0)
		return (FRAME_OK);
	*window = get32(p);
	return (*window < PROTO_WINDOW_MIN ? FRAME_E_FIELD : FRAME_OK);
}

/*
 * HELLO.  On FRAME_E_VERSION the version field is still filled in so
 * the server can say which version it was offered.
 */
int
frame_hello_decode(const uint8_t *p, size_t len, struct proto_hello *m)
{
	size_t	hostlen, namelen;
	int	r;

	memset(m, 0, sizeof(*m));
	if (len < 48)
		return (FRAME_E_SIZE);
	if ((r = frame_check_magic(p, &m->version)) != FRAME_OK)
		return (r);
	m->kind = get16(p + 6);
	m->sid = get64(p + 8);
	memcpy(m->nonce, p + 16, PROTO_NONCE_LEN);
	if (m->sid == 0)
		return (FRAME_E_FIELD);
	switch (m->kind) {
	case PROTO_HELLO_RESUME:
		return (len == 48 ? FRAME_OK : FRAME_E_SIZE);
	case PROTO_HELLO_RESUME_PROOF:
		if (m->version < 3)
			return (FRAME_E_FIELD);
		if (len != 48 + 8 + PROTO_MAC_LEN)
			return (FRAME_E_SIZE);
		m->next = get64(p + 48);
		memcpy(m->mac, p + 56, PROTO_MAC_LEN);
		return (FRAME_OK);
	case PROTO_HELLO_NEW:
		break;
	default:
		return (FRAME_E_FIELD);
	}
	if (len < 48 + 32 + 9)
		return (FRAME_E_SIZE);
	memcpy(m->pubkey, p + 48, PROTO_KEY_LEN);
	m->guest_cid = get32(p + 80);
	m->guest_port = get32(p + 84);
	hostlen = p[88];
	if (len < 89 + hostlen + 3)
		return (FRAME_E_SIZE);
	if (frame_host_ok(p + 89, hostlen) != 0)
		return (FRAME_E_FIELD);
	memcpy(m->host, p + 89, hostlen);
	m->host[hostlen] = '\0';
	p += 89 + hostlen;
	m->service = get16(p);
	namelen = p[2];
	if (len != 89 + hostlen + 3 + namelen + frame_window_len(m->version))
		return (FRAME_E_SIZE);
	if (namelen > PROTO_NAME_MAX)
		return (FRAME_E_FIELD);
	/* It goes into logs, JSON and the backend's header. */
	if (!text_utf8_ok(p + 3, namelen))
		return (FRAME_E_FIELD);
	memcpy(m->name, p + 3, namelen);
	m->name[namelen] = '\0';
	return (frame_window_decode(p + 3 + namelen, m->version, &m->window));
}

/* WELCOME. */
int
frame_welcome_decode(const uint8_t *p, size_t len, struct proto_welcome *m)
{
	int	r;

	memset(m, 0, sizeof(*m));
	if (len < 80)
		return (FRAME_E_SIZE);
	if ((r = frame_check_magic(p, &m->version)) != FRAME_OK)
		return (r);
	if (len != 80 + frame_window_len(m->version))
		return (FRAME_E_SIZE);
	if (get16(p + 6) != 0)
		return (FRAME_E_FIELD);
	m->sid = get64(p + 8);
	memcpy(m->nonce, p + 16, PROTO_NONCE_LEN);
	memcpy(m->pubkey, p + 48, PROTO_KEY_LEN);
	return (frame_window_decode(p + 80, m->version, &m->window));
}

/* CHALLENGE. */
int
frame_challenge_decode(const uint8_t *p, size_t len,
    struct proto_challenge *m)
{
	memset(m, 0, sizeof(*m));
	if (len != PROTO_NONCE_LEN)
		return (FRAME_E_SIZE);
	memcpy(m->nonce, p, PROTO_NONCE_LEN);
	return (FRAME_OK);
}

/* PROOF. */
int
frame_proof_decode(const uint8_t *p, size_t len, struct proto_proof *m)
{
	memset(m, 0, sizeof(*m));
	if (len != 8 + PROTO_MAC_LEN)
		return (FRAME_E_SIZE);
	m->next = get64(p);
	memcpy(m->mac, p + 8, PROTO_MAC_LEN);
	return (FRAME_OK);
}

/* ERROR and CLOSE: the reason must be printable text. */
int
frame_error_decode(const uint8_t *p, size_t len, struct proto_error *m)
{
	size_t	rlen, i;

	memset(m, 0, sizeof(*m));
	if (len < 3)
		return (FRAME_E_SIZE);
	m->code = get16(p);
	rlen = p[2];
	if (len != 3 + rlen)
		return (FRAME_E_SIZE);
	for (i = 0; i < rlen; i++) {
		/* Printable ASCII: it ends up in logs and JSON. */
		if (p[3 + i] < 0x20 || p[3 + i] > 0x7e)
			return (FRAME_E_FIELD);
		m->reason[i] = p[3 + i];
	}
	m->reason[rlen] = '\0';
	return (FRAME_OK);
}

/* RESUMED, ACK, FIN, PING, PONG, RELEASE. */
int
frame_u64_decode(const uint8_t *p, size_t len, uint64_t *v)
{
	*v = 0;
	if (len != 8)
		return (FRAME_E_SIZE);
	*v = get64(p);
	return (FRAME_OK);
}

/* Append a HELLO. */
void
frame_hello_add(struct evbuffer *out, const struct proto_hello *m)
{
	uint8_t	 buf[PROTO_HDR_LEN + PROTO_HELLO_NEW_FIXED + PROTO_HOST_MAX +
		     PROTO_NAME_MAX], *p;
	size_t	 hostlen = 0, namelen = 0, len = 48;

	if (m->kind == PROTO_HELLO_NEW) {
		hostlen = strnlen(m->host, PROTO_HOST_MAX);
		namelen = strnlen(m->name, PROTO_NAME_MAX);
		len = PROTO_HELLO_NEW_FIXED_V4 + hostlen + namelen +
		    frame_window_len(m->version);
	} else if (m->kind == PROTO_HELLO_RESUME_PROOF)
		len = 48 + 8 + PROTO_MAC_LEN;
	p = puthdr(buf, PROTO_HELLO, len);
	p = put32(p, PROTO_MAGIC);
	p = put16(p, m->version);
	p = put16(p, m->kind);
	p = put64(p, m->sid);
	memcpy(p, m->nonce, PROTO_NONCE_LEN);
	p += PROTO_NONCE_LEN;
	if (m->kind == PROTO_HELLO_NEW) {
		memcpy(p, m->pubkey, PROTO_KEY_LEN);
		p += PROTO_KEY_LEN;
		p = put32(p, m->guest_cid);
		p = put32(p, m->guest_port);
		*p++ = (uint8_t)hostlen;
		memcpy(p, m->host, hostlen);
		p += hostlen;
		p = put16(p, m->service);
		*p++ = (uint8_t)namelen;
		memcpy(p, m->name, namelen);
		p += namelen;
		if (frame_window_len(m->version) > 0)
			p = put32(p, m->window);
	} else if (m->kind == PROTO_HELLO_RESUME_PROOF) {
		p = put64(p, m->next);
		memcpy(p, m->mac, PROTO_MAC_LEN);
		p += PROTO_MAC_LEN;
	}
	evbuffer_add(out, buf, p - buf);
}

/* Append a WELCOME. */
void
frame_welcome_add(struct evbuffer *out, const struct proto_welcome *m)
{
	uint8_t	 buf[PROTO_HDR_LEN + 84], *p;

	p = puthdr(buf, PROTO_WELCOME, 80 + frame_window_len(m->version));
	p = put32(p, PROTO_MAGIC);
	p = put16(p, m->version);
	p = put16(p, 0);
	p = put64(p, m->sid);
	memcpy(p, m->nonce, PROTO_NONCE_LEN);
	p += PROTO_NONCE_LEN;
	memcpy(p, m->pubkey, PROTO_KEY_LEN);
	p += PROTO_KEY_LEN;
	if (frame_window_len(m->version) > 0)
		p = put32(p, m->window);
	evbuffer_add(out, buf, p - buf);
}

/* Append a CHALLENGE. */
void
frame_challenge_add(struct evbuffer *out, const struct proto_challenge *m)
{
	uint8_t	 buf[PROTO_HDR_LEN + PROTO_NONCE_LEN], *p;

	p = puthdr(buf, PROTO_CHALLENGE, PROTO_NONCE_LEN);
	memcpy(p, m->nonce, PROTO_NONCE_LEN);
	evbuffer_add(out, buf, sizeof(buf));
}

/* Append a PROOF. */
void
frame_proof_add(struct evbuffer *out, const struct proto_proof *m)
{
	uint8_t	 buf[PROTO_HDR_LEN + 8 + PROTO_MAC_LEN], *p;

	p = puthdr(buf, PROTO_PROOF, 8 + PROTO_MAC_LEN);
	p = put64(p, m->next);
	memcpy(p, m->mac, PROTO_MAC_LEN);
	evbuffer_add(out, buf, sizeof(buf));
}

/* Append an ERROR or CLOSE; a long reason is cut, control bytes masked. */
void
frame_error_add(struct evbuffer *out, int type, int code, const char *reason)
{
	uint8_t	 buf[PROTO_HDR_LEN + 3 + PROTO_REASON_MAX], *p;
	size_t	 rlen, i;

	rlen = reason == NULL ? 0 : strnlen(reason, PROTO_REASON_MAX);
	p = puthdr(buf, type, 3 + rlen);
	p = put16(p, (uint16_t)code);
	*p++ = (uint8_t)rlen;
	for (i = 0; i < rlen; i++) {
		uint8_t	c = (uint8_t)reason[i];

		*p++ = (c < 0x20 || c > 0x7e) ? '?' : c;
	}
	evbuffer_add(out, buf, p - buf);
}

/* Append a frame whose payload is one u64. */
void
frame_u64_add(struct evbuffer *out, int type, uint64_t v)
{
	uint8_t	 buf[PROTO_HDR_LEN + 8], *p;

	p = puthdr(buf, type, 8);
	put64(p, v);
	evbuffer_add(out, buf, sizeof(buf));
}

/* Append a DATA header; LEN bytes of payload must follow. */
void
frame_data_hdr_add(struct evbuffer *out, uint64_t offset, size_t len)
{
	uint8_t	 buf[PROTO_HDR_LEN + 8], *p;

	p = puthdr(buf, PROTO_DATA, 8 + len);
	put64(p, offset);
	evbuffer_add(out, buf, sizeof(buf));
}
