/*
 * push.c -- the push channel's codec (push.h, docs/push.md): one JSON
 * object per line, decoded into and encoded from struct push_msg.
 *
 * Design.  Which members each message type carries, their JSON keys,
 * their kinds and whether they are required is one table (push_types);
 * the decoder and the encoder both walk it, so the two cannot drift
 * and a new member is one row.  Each kind has one checker shared by
 * both directions, in the kind table (push_kinds):
 *
 *	host	frame_host_ok(): 1 to 255 bytes of 0x21-0x7e
 *	addr	1 to 255 bytes of 0x21-0x7e that xaddr_check() takes: the
 *		syntax only, a tcp name is not resolved (the receiver
 *		resolves it where it is used; the codec never waits on DNS)
 *	text	0 to 255 bytes of 0x20-0x7e (refused by the decoder; the
 *		encoder masks others with '?' by text_ascii_copy())
 *	epoch	an integer from 0 to PUSH_EPOCH_MAX (exact in JSON)
 *	version	an integer; not PUSH_VERSION is PUSH_E_VERSION
 *	bool	true or false
 *
 * An optional string member may be absent, null or "" (all read as
 * ""); the encoder leaves out optional members that are "".  Unknown
 * members are ignored.  The peer's bytes meet this file first: a NUL,
 * a duplicate key, bad UTF-8 or a nesting bomb is an error code, never
 * a crash, and the line cap holds before anything is parsed.
 *
 * The decoder never accepts anything the encoder would refuse, so
 * whatever push_decode() accepts push_write() can send again (the
 * fuzzer checks this round trip).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "frame.h"
#include "push.h"
#include "text.h"
#include "xaddr.h"
#include "xtime.h"

enum push_kind {
	PUSH_K_VERSION = 1,	/* int: must be PUSH_VERSION */
	PUSH_K_BOOL,		/* int 0/1 */
	PUSH_K_EPOCH,		/* uint64_t, 0..PUSH_EPOCH_MAX */
	PUSH_K_HOST,		/* char[PUSH_HOST_MAX + 1] */
	PUSH_K_ADDR,		/* char[PUSH_ADDR_MAX + 1] */
	PUSH_K_TEXT,		/* char[PUSH_TEXT_MAX + 1] */
};

#define PUSH_REQ	0x1	/* must be present (strings: not "") */
#define PUSH_OPT	0x0

struct push_member {
	const char	*key;
	enum push_kind	 kind;
	int		 flags;
	size_t		 off;
};

#define PUSH_MEMBERS_MAX	4

struct push_type_row {
	const char		*name;
	struct push_member	 m[PUSH_MEMBERS_MAX];
};

#define F(f)	offsetof(struct push_msg, f)

/* Every message, by type; members in the order they are encoded. */
static const struct push_type_row push_types[PUSH_PONG + 1] = {
	[PUSH_HELLO] = { "hello", {
		{ "version", PUSH_K_VERSION, PUSH_REQ, F(version) },
		{ "host", PUSH_K_HOST, PUSH_REQ, F(host) },
		{ "mesh", PUSH_K_ADDR, PUSH_OPT, F(mesh) },
		{ "epoch", PUSH_K_EPOCH, PUSH_REQ, F(epoch) } } },
	[PUSH_WELCOME] = { "welcome", {
		{ "version", PUSH_K_VERSION, PUSH_REQ, F(version) },
		{ "known", PUSH_K_BOOL, PUSH_REQ, F(known) },
		{ "vmomi", PUSH_K_ADDR, PUSH_OPT, F(vmomi) } } },
	[PUSH_TARGET] = { "target", {
		{ "epoch", PUSH_K_EPOCH, PUSH_REQ, F(epoch) },
		{ "appliance_host", PUSH_K_HOST, PUSH_REQ, F(host) },
		{ "relay", PUSH_K_ADDR, PUSH_OPT, F(relay) },
		{ "appliance", PUSH_K_ADDR, PUSH_OPT, F(appliance) } } },
	[PUSH_ACK] = { "ack", {
		{ "epoch", PUSH_K_EPOCH, PUSH_REQ, F(epoch) } } },
	[PUSH_NACK] = { "nack", {
		{ "epoch", PUSH_K_EPOCH, PUSH_REQ, F(epoch) },
		{ "error", PUSH_K_TEXT, PUSH_REQ, F(text) },
		{ "current", PUSH_K_EPOCH, PUSH_OPT, F(current) } } },
	[PUSH_HINT] = { "hint", {
		{ "event", PUSH_K_TEXT, PUSH_REQ, F(text) },
		{ "host", PUSH_K_HOST, PUSH_REQ, F(host) },
		{ "relay", PUSH_K_ADDR, PUSH_OPT, F(relay) } } },
	[PUSH_ERROR] = { "error", {
		{ "error", PUSH_K_TEXT, PUSH_REQ, F(text) } } },
	[PUSH_PING] = { "ping", { { NULL, 0, 0, 0 } } },
	[PUSH_PONG] = { "pong", { { NULL, 0, 0, 0 } } },
};

#undef F

#define PUSH_NTYPES	(sizeof(push_types) / sizeof(push_types[0]))

/* Text for a PUSH_* code. */
const char *
push_strerror(int e)
{
	static const char *const msgs[] = {
		[-PUSH_OK] = "ok",
		[-PUSH_E_JSON] = "not one JSON object",
		[-PUSH_E_TYPE] = "unknown or missing message type",
		[-PUSH_E_FIELD] = "a member is missing or ill-typed",
		[-PUSH_E_TOOBIG] = "line too long",
		[-PUSH_E_VERSION] = "unsupported push protocol version",
		[-PUSH_E_INCOMPLETE] = "incomplete line",
	};

	if (e > 0 || (size_t)-e >= sizeof(msgs) / sizeof(msgs[0]))
		return ("unknown push error");
	return (msgs[-e]);
}

/* "hello", "target", ... or "?". */
const char *
push_type_name(enum push_type t)
{
	if ((int)t <= 0 || (size_t)t >= PUSH_NTYPES ||
	    push_types[t].name == NULL)
		return ("?");
	return (push_types[t].name);
}

/* The row for a message type, or NULL. */
static const struct push_type_row *
push_row(enum push_type t)
{
	if ((int)t <= 0 || (size_t)t >= PUSH_NTYPES ||
	    push_types[t].name == NULL)
		return (NULL);
	return (&push_types[t]);
}

/* Format an error message into ERR (may be NULL) and return CODE. */
static int __attribute__((format(printf, 4, 5)))
push_fail(int code, char *err, size_t errlen, const char *fmt, ...)
{
	va_list	ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		(void)vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
		/* Messages quote the peer, as jansson does: clean them. */
		text_ascii(err);
	}
	return (code);
}

/* Every byte within [LO, HI]. */
static int
push_chars(const char *s, size_t n, unsigned char lo, unsigned char hi)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < lo || (unsigned char)s[i] > hi)
			return (-1);
	return (0);
}

/* A host member: S (N bytes, no NUL) as the session protocol's HELLO. */
static int
push_host_ok(const char *s, size_t n)
{
	return (n == 0 ? -1 : frame_host_ok(s, n));
}

/*
 * An address member: S (N bytes, NUL-terminated) printable and of
 * xaddr's syntax, never resolved.
 */
static int
push_addr_ok(const char *s, size_t n)
{
	if (n == 0 || n > PUSH_ADDR_MAX || push_chars(s, n, 0x21, 0x7e) != 0)
		return (-1);
	return (xaddr_check(s) == XADDR_OK ? 0 : -1);
}

/* A text member: S (N bytes) short and printable. */
static int
push_text_ok(const char *s, size_t n)
{
	return (n > PUSH_TEXT_MAX ? -1 : push_chars(s, n, 0x20, 0x7e));
}

/* Messages name the largest epoch; it must be PUSH_EPOCH_MAX. */
_Static_assert(PUSH_EPOCH_MAX == 9007199254740991ULL,
    "push_kinds: the epoch's text");

/* Every kind: room, what it must look like, and its checker. */
static const struct {
	size_t		 size;		/* strings: with the NUL; else 0 */
	const char	*expect;	/* for messages: "expected ..." */
	int		(*ok)(const char *, size_t);	/* strings */
} push_kinds[] = {
	[PUSH_K_VERSION] = { 0, "an integer from 0 to 65535", NULL },
	[PUSH_K_BOOL] = { 0, "true or false", NULL },
	[PUSH_K_EPOCH] = { 0, "an integer from 0 to 9007199254740991",
	    NULL },
	[PUSH_K_HOST] = { PUSH_HOST_MAX + 1, "a host name (1 to 255 "
	    "printable ASCII characters, no spaces)", push_host_ok },
	[PUSH_K_ADDR] = { PUSH_ADDR_MAX + 1, "an address (tcp://HOST:PORT, "
	    "unix:PATH or vsock://CID:PORT)", push_addr_ok },
	[PUSH_K_TEXT] = { PUSH_TEXT_MAX + 1, "printable ASCII text of at "
	    "most 255 characters", push_text_ok },
};

/* Decode member MB of message NAME from V (NULL: absent) into M. */
static int
push_decode_member(const char *name, const struct push_member *mb,
    json_t *v, struct push_msg *m, char *err, size_t errlen)
{
	char		*p = (char *)m + mb->off;
	const char	*s;
	json_int_t	 i;
	size_t		 n, size = push_kinds[mb->kind].size;

	if (v == NULL || (json_is_null(v) && (mb->flags & PUSH_REQ) == 0 &&
	    size != 0)) {
		if (mb->flags & PUSH_REQ)
			return (push_fail(PUSH_E_FIELD, err, errlen,
			    "%s: \"%s\": missing", name, mb->key));
		return (PUSH_OK);	/* absent or null: "" or 0 */
	}
	switch (mb->kind) {
	case PUSH_K_VERSION:
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > 65535)
			goto bad;
		*(int *)(void *)p = (int)json_integer_value(v);
		if (json_integer_value(v) != PUSH_VERSION)
			return (push_fail(PUSH_E_VERSION, err, errlen,
			    "%s: \"%s\": version %d, this end speaks %d",
			    name, mb->key, (int)json_integer_value(v),
			    PUSH_VERSION));
		return (PUSH_OK);
	case PUSH_K_BOOL:
		if (!json_is_boolean(v))
			goto bad;
		*(int *)(void *)p = json_is_true(v);
		return (PUSH_OK);
	case PUSH_K_EPOCH:
		i = json_is_integer(v) ? json_integer_value(v) : -1;
		if (i < 0 || (unsigned long long)i > PUSH_EPOCH_MAX)
			goto bad;
		*(uint64_t *)(void *)p = (uint64_t)i;
		return (PUSH_OK);
	case PUSH_K_HOST:
	case PUSH_K_ADDR:
	case PUSH_K_TEXT:
		break;
	}
	if (!json_is_string(v))
		goto bad;
	s = json_string_value(v);
	n = json_string_length(v);
	if (n == 0 && (mb->flags & PUSH_REQ) == 0)
		return (PUSH_OK);
	/* An embedded NUL first: the checkers may read S as a C string. */
	if (strlen(s) != n || n >= size || push_kinds[mb->kind].ok(s, n) != 0)
		goto bad;
	memcpy(p, s, n);
	p[n] = '\0';
	return (PUSH_OK);
bad:
	return (push_fail(PUSH_E_FIELD, err, errlen, "%s: \"%s\": expected %s",
	    name, mb->key, push_kinds[mb->kind].expect));
}

/* Decode one line (without its newline) into *M. */
int
push_decode(const char *line, size_t len, struct push_msg *m, char *err,
    size_t errlen)
{
	const struct push_type_row	*row;
	json_error_t			 jerr;
	json_t				*o = NULL, *t;
	const char			*nul;
	size_t				 i;
	int				 rv;

	memset(m, 0, sizeof(*m));
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (len >= PUSH_LINE_MAX)
		return (push_fail(PUSH_E_TOOBIG, err, errlen,
		    "line of %zu bytes (at most %d with its newline)", len,
		    PUSH_LINE_MAX));
	if ((nul = memchr(line, '\0', len)) != NULL)
		return (push_fail(PUSH_E_JSON, err, errlen,
		    "NUL byte at offset %zu", (size_t)(nul - line)));
	if ((o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr)) ==
	    NULL) {
		rv = push_fail(PUSH_E_JSON, err, errlen,
		    "not JSON: %s (column %d)", jerr.text, jerr.column);
		goto out;
	}
	if (!json_is_object(o)) {
		rv = push_fail(PUSH_E_JSON, err, errlen, "not a JSON object");
		goto out;
	}
	if ((t = json_object_get(o, "type")) == NULL) {
		rv = push_fail(PUSH_E_TYPE, err, errlen, "\"type\": missing");
		goto out;
	}
	if (!json_is_string(t)) {
		rv = push_fail(PUSH_E_TYPE, err, errlen,
		    "\"type\": expected a string");
		goto out;
	}
	for (i = 1; i < PUSH_NTYPES; i++)
		if (push_types[i].name != NULL &&
		    strcmp(push_types[i].name, json_string_value(t)) == 0)
			break;
	if (i == PUSH_NTYPES) {
		rv = push_fail(PUSH_E_TYPE, err, errlen,
		    "\"type\": unknown message type \"%.32s\"",
		    json_string_value(t));
		goto out;
	}
	m->type = (enum push_type)i;
	row = &push_types[i];
	for (i = 0; i < PUSH_MEMBERS_MAX && row->m[i].key != NULL; i++) {
		rv = push_decode_member(row->name, &row->m[i],
		    json_object_get(o, row->m[i].key), m, err, errlen);
		if (rv != PUSH_OK)
			goto out;
	}
	rv = PUSH_OK;
out:
	json_decref(o);
	/* A failed decode leaves nothing half-filled, but names the version. */
	if (rv != PUSH_OK && rv != PUSH_E_VERSION)
		memset(m, 0, sizeof(*m));
	return (rv);
}

/* Take one line off BUF and decode it. */
int
push_read(struct evbuffer *buf, struct push_msg *m, char *err,
    size_t errlen)
{
	struct evbuffer_ptr	 eol;
	size_t			 eol_len, have;
	const char		*line;
	int			 rv;

	memset(m, 0, sizeof(*m));
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	have = evbuffer_get_length(buf);
	eol = evbuffer_search_eol(buf, NULL, &eol_len, EVBUFFER_EOL_LF);
	if (eol.pos == -1) {
		if (have >= PUSH_LINE_MAX)
			return (push_fail(PUSH_E_TOOBIG, err, errlen,
			    "no newline in %zu bytes (a line is at most %d "
			    "with its newline)", have, PUSH_LINE_MAX));
		return (PUSH_E_INCOMPLETE);
	}
	if ((size_t)eol.pos + 1 > PUSH_LINE_MAX) {
		evbuffer_drain(buf, (size_t)eol.pos + 1);
		return (push_fail(PUSH_E_TOOBIG, err, errlen,
		    "line of %zu bytes (at most %d with its newline)",
		    (size_t)eol.pos + 1, PUSH_LINE_MAX));
	}
	line = (const char *)evbuffer_pullup(buf, eol.pos + 1);
	if (line == NULL)
		return (push_fail(PUSH_E_JSON, err, errlen, "out of memory"));
	rv = push_decode(line, (size_t)eol.pos, m, err, errlen);
	evbuffer_drain(buf, (size_t)eol.pos + 1);
	return (rv);
}

/* Encode member MB of M into O; PUSH_E_FIELD if the value is not sendable. */
static int
push_encode_member(const struct push_member *mb, const struct push_msg *m,
    json_t *o)
{
	const char	*p = (const char *)m + mb->off;
	char		 text[PUSH_TEXT_MAX + 1];
	json_t		*v;
	uint64_t	 e;
	size_t		 n, size = push_kinds[mb->kind].size;

	switch (mb->kind) {
	case PUSH_K_VERSION:
		v = json_integer(*(const int *)(const void *)p);
		break;
	case PUSH_K_BOOL:
		v = json_boolean(*(const int *)(const void *)p);
		break;
	case PUSH_K_EPOCH:
		e = *(const uint64_t *)(const void *)p;
		if (e > PUSH_EPOCH_MAX)
			return (PUSH_E_FIELD);
		if (e == 0 && (mb->flags & PUSH_REQ) == 0)
			return (PUSH_OK);	/* optional and not said */
		v = json_integer((json_int_t)e);
		break;
	case PUSH_K_TEXT:
		/* Any text goes, as the decoder will take it. */
		v = json_string(text_ascii_copy(text, sizeof(text), p,
		    strnlen(p, size)));
		break;
	case PUSH_K_HOST:
	case PUSH_K_ADDR:
		n = strnlen(p, size);
		if (n == size)
			return (PUSH_E_FIELD);	/* unterminated */
		if (n == 0 && (mb->flags & PUSH_REQ) == 0)
			return (PUSH_OK);	/* optional and empty */
		if (push_kinds[mb->kind].ok(p, n) != 0)
			return (PUSH_E_FIELD);
		v = json_string(p);
		break;
	default:
		return (PUSH_E_FIELD);
	}
	if (v == NULL || json_object_set_new(o, mb->key, v) != 0)
		return (PUSH_E_FIELD);
	return (PUSH_OK);
}

/* Is EPOCH more than a day past the wall clock?  See push.h. */
int
push_epoch_ahead(uint64_t epoch)
{
	long long	now = xtime_wall_ms();

	return (now < 0 || epoch > (uint64_t)now + PUSH_EPOCH_AHEAD_MS);
}

/* Append M as one line to BUF. */
int
push_write(struct evbuffer *buf, const struct push_msg *m)
{
	const struct push_type_row	*row;
	json_t				*o;
	char				*s = NULL;
	size_t				 i, n;
	int				 rv;

	if ((row = push_row(m->type)) == NULL)
		return (PUSH_E_TYPE);
	o = json_object();
	if (o == NULL || json_object_set_new(o, "type",
	    json_string(row->name)) != 0) {
		rv = PUSH_E_JSON;
		goto out;
	}
	for (i = 0; i < PUSH_MEMBERS_MAX && row->m[i].key != NULL; i++)
		if ((rv = push_encode_member(&row->m[i], m, o)) != PUSH_OK)
			goto out;
	if ((s = json_dumps(o, JSON_COMPACT)) == NULL) {
		rv = PUSH_E_JSON;
		goto out;
	}
	n = strlen(s);
	if (n + 1 > PUSH_LINE_MAX) {
		rv = PUSH_E_TOOBIG;
		goto out;
	}
	if (evbuffer_add_printf(buf, "%s\n", s) != (int)n + 1) {
		rv = PUSH_E_JSON;
		goto out;
	}
	rv = PUSH_OK;
out:
	free(s);
	json_decref(o);
	return (rv);
}
