/*
 * push.c -- the push channel's codec (push.h, docs/push.md): one JSON
 * object per line, decoded into and encoded from struct push_msg.
 *
 * Design.  Which members each message type carries, their JSON keys,
 * their kinds and whether they are required is one table (push_types);
 * the decoder and the encoder both walk it, so the two cannot drift
 * and a new member is one row.  Each kind has one checker shared by
 * both directions:
 *
 *	host	frame_host_ok(): 1 to 255 bytes of 0x21-0x7e
 *	addr	1 to 255 bytes of 0x21-0x7e in xaddr_parse()'s syntax; a
 *		tcp name is not resolved (the receiver resolves it where
 *		it is used, and the codec never blocks on DNS)
 *	text	0 to 255 bytes of 0x20-0x7e (refused by the decoder; the
 *		encoder cuts at 255 and replaces others with '?', as
 *		frame.c does for reasons)
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
 * The decoder never resolves anything the encoder would refuse, so
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
#include "xaddr.h"

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
		{ "known", PUSH_K_BOOL, PUSH_REQ, F(known) } } },
	[PUSH_TARGET] = { "target", {
		{ "epoch", PUSH_K_EPOCH, PUSH_REQ, F(epoch) },
		{ "appliance_host", PUSH_K_HOST, PUSH_REQ, F(host) },
		{ "relay", PUSH_K_ADDR, PUSH_OPT, F(relay) },
		{ "appliance", PUSH_K_ADDR, PUSH_OPT, F(appliance) } } },
	[PUSH_ACK] = { "ack", {
		{ "epoch", PUSH_K_EPOCH, PUSH_REQ, F(epoch) } } },
	[PUSH_NACK] = { "nack", {
		{ "epoch", PUSH_K_EPOCH, PUSH_REQ, F(epoch) },
		{ "error", PUSH_K_TEXT, PUSH_REQ, F(text) } } },
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
	char	*p;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		(void)vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
		/* Messages quote the peer, as jansson does: clean them. */
		for (p = err; *p != '\0'; p++)
			if ((unsigned char)*p < 0x20 ||
			    (unsigned char)*p > 0x7e)
				*p = '?';
	}
	return (code);
}

/* Room for a string member of KIND, terminator included. */
static size_t
push_strsize(enum push_kind kind)
{
	switch (kind) {
	case PUSH_K_HOST:
		return (PUSH_HOST_MAX + 1);
	case PUSH_K_ADDR:
		return (PUSH_ADDR_MAX + 1);
	case PUSH_K_TEXT:
		return (PUSH_TEXT_MAX + 1);
	default:
		return (0);
	}
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

/*
 * tcp://NAME:PORT or tcp://DOTTED.IPV4:PORT by xaddr_parse()'s rules
 * (host 1 to 253 of [A-Za-z0-9._-], port 1 to 65535, no sign), checked
 * here so that the codec never waits on a DNS lookup.
 */
static int
push_tcp_name_ok(const char *s)
{
	const char	*colon, *p;
	unsigned long	 port = 0;

	if ((colon = strchr(s, ':')) == NULL || colon == s || colon - s > 253)
		return (-1);
	for (p = s; p < colon; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= 'A' && *p <= 'Z') || *p == '.' || *p == '-' ||
		    *p == '_'))
			return (-1);
	if (colon[1] == '\0' || strlen(colon + 1) > 10)
		return (-1);
	for (p = colon + 1; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return (-1);
		port = port * 10 + (unsigned long)(*p - '0');
	}
	return (port >= 1 && port <= 65535 ? 0 : -1);
}

/*
 * Whether S (N bytes, no NUL) is a well-formed address.  Only the
 * syntax counts: a tcp name is not resolved (the receiver resolves it
 * where it uses it); IPv6 literals, unix and vsock go through
 * xaddr_parse(), which resolves nothing for them.
 */
static int
push_addr_ok(const char *s, size_t n)
{
	struct xaddr	*xa;
	int		 r;

	if (n == 0 || n > PUSH_ADDR_MAX || push_chars(s, n, 0x21, 0x7e) != 0)
		return (-1);
	if (strncmp(s, "tcp://", 6) == 0 && s[6] != '[')
		return (push_tcp_name_ok(s + 6));
	r = xaddr_parse(s, &xa);
	xaddr_free(xa);
	return (r == XADDR_OK ? 0 : -1);
}

/* What a string member of KIND must look like, for messages. */
static const char *
push_expect(enum push_kind kind)
{
	switch (kind) {
	case PUSH_K_HOST:
		return ("a host name (1 to 255 printable ASCII characters, "
		    "no spaces)");
	case PUSH_K_ADDR:
		return ("an address (tcp://HOST:PORT, unix:PATH or "
		    "vsock://CID:PORT)");
	case PUSH_K_TEXT:
		return ("printable ASCII text of at most 255 characters");
	default:
		return ("?");
	}
}

/* Check one string value S of N bytes against KIND. */
static int
push_str_ok(enum push_kind kind, const char *s, size_t n)
{
	switch (kind) {
	case PUSH_K_HOST:
		return (n == 0 ? -1 : frame_host_ok(s, n));
	case PUSH_K_ADDR:
		return (push_addr_ok(s, n));
	case PUSH_K_TEXT:
		return (n > PUSH_TEXT_MAX ? -1 : push_chars(s, n, 0x20, 0x7e));
	default:
		return (-1);
	}
}

/* Decode member MB of message NAME from V (NULL: absent) into M. */
static int
push_decode_member(const char *name, const struct push_member *mb,
    json_t *v, struct push_msg *m, char *err, size_t errlen)
{
	char		*p = (char *)m + mb->off;
	const char	*s;
	json_int_t	 i;
	size_t		 n;

	if (v == NULL || (json_is_null(v) && (mb->flags & PUSH_REQ) == 0 &&
	    push_strsize(mb->kind) != 0)) {
		if (mb->flags & PUSH_REQ)
			return (push_fail(PUSH_E_FIELD, err, errlen,
			    "%s: \"%s\": missing", name, mb->key));
		return (PUSH_OK);	/* absent or null: "" or 0 */
	}
	switch (mb->kind) {
	case PUSH_K_VERSION:
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > 65535)
			return (push_fail(PUSH_E_FIELD, err, errlen,
			    "%s: \"%s\": expected an integer from 0 to 65535",
			    name, mb->key));
		*(int *)(void *)p = (int)json_integer_value(v);
		if (json_integer_value(v) != PUSH_VERSION)
			return (push_fail(PUSH_E_VERSION, err, errlen,
			    "%s: \"%s\": version %d, this end speaks %d",
			    name, mb->key, (int)json_integer_value(v),
			    PUSH_VERSION));
		return (PUSH_OK);
	case PUSH_K_BOOL:
		if (!json_is_boolean(v))
			return (push_fail(PUSH_E_FIELD, err, errlen,
			    "%s: \"%s\": expected true or false", name,
			    mb->key));
		*(int *)(void *)p = json_is_true(v);
		return (PUSH_OK);
	case PUSH_K_EPOCH:
		i = json_is_integer(v) ? json_integer_value(v) : -1;
		if (i < 0 || (unsigned long long)i > PUSH_EPOCH_MAX)
			return (push_fail(PUSH_E_FIELD, err, errlen,
			    "%s: \"%s\": expected an integer from 0 to %llu",
			    name, mb->key, (unsigned long long)PUSH_EPOCH_MAX));
		*(uint64_t *)(void *)p = (uint64_t)i;
		return (PUSH_OK);
	case PUSH_K_HOST:
	case PUSH_K_ADDR:
	case PUSH_K_TEXT:
		break;
	}
	if (!json_is_string(v))
		return (push_fail(PUSH_E_FIELD, err, errlen,
		    "%s: \"%s\": expected %s", name, mb->key,
		    push_expect(mb->kind)));
	s = json_string_value(v);
	n = json_string_length(v);
	if (n == 0 && (mb->flags & PUSH_REQ) == 0)
		return (PUSH_OK);
	if (strlen(s) != n || push_str_ok(mb->kind, s, n) != 0)
		return (push_fail(PUSH_E_FIELD, err, errlen,
		    "%s: \"%s\": expected %s", name, mb->key,
		    push_expect(mb->kind)));
	memcpy(p, s, n);
	p[n] = '\0';
	return (PUSH_OK);
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

/*
 * A text member as the decoder will take it: at most PUSH_TEXT_MAX
 * bytes, anything outside 0x20-0x7e replaced with '?'.
 */
static json_t *
push_text_json(const char *s)
{
	char	buf[PUSH_TEXT_MAX + 1];
	size_t	i;

	for (i = 0; i < PUSH_TEXT_MAX && s[i] != '\0'; i++)
		buf[i] = ((unsigned char)s[i] < 0x20 ||
		    (unsigned char)s[i] > 0x7e) ? '?' : s[i];
	buf[i] = '\0';
	return (json_string(buf));
}

/* Encode member MB of M into O; PUSH_E_FIELD if the value is not sendable. */
static int
push_encode_member(const struct push_member *mb, const struct push_msg *m,
    json_t *o)
{
	const char	*p = (const char *)m + mb->off;
	json_t		*v;
	uint64_t	 e;
	size_t		 n;

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
		v = json_integer((json_int_t)e);
		break;
	case PUSH_K_TEXT:
		v = push_text_json(p);
		break;
	case PUSH_K_HOST:
	case PUSH_K_ADDR:
		n = strnlen(p, push_strsize(mb->kind));
		if (n == push_strsize(mb->kind))
			return (PUSH_E_FIELD);	/* unterminated */
		if (n == 0 && (mb->flags & PUSH_REQ) == 0)
			return (PUSH_OK);	/* optional and empty */
		if (push_str_ok(mb->kind, p, n) != 0)
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
