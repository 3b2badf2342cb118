/*
 * caller.c -- the vmomi leg's attestation line (caller.h): written by
 * the relay (relay/fwd.c), read by the locator (locator/gate.c).  The
 * parser is strict, as for any bytes from a peer: one shape, decimal
 * numbers without signs or leading zeros, a host as the session
 * protocol's HELLO takes it.
 */
#include <stdio.h>
#include <string.h>

#include "caller.h"
#include "frame.h"

#define CALLER_PREFIX	CALLER_MAGIC " "

/* Text for a CALLER_* code. */
const char *
caller_strerror(int e)
{
	static const char *const msgs[] = {
		[-CALLER_OK] = "ok",
		[-CALLER_E_SYNTAX] = "expected \"VRELAY-CALLER 1 host=H "
		    "cid=N port=P\" and CRLF",
		[-CALLER_E_VERSION] = "not version 1 of the caller line",
		[-CALLER_E_HOST] = "host: expected 1 to 255 printable ASCII "
		    "characters, no spaces",
		[-CALLER_E_NUMBER] = "cid, port: expected a decimal number "
		    "from 0 to 4294967295",
		[-CALLER_E_TOOLONG] = "caller line over 256 bytes",
	};

	if (e > 0 || (size_t)-e >= sizeof(msgs) / sizeof(msgs[0]))
		return ("unknown caller line error");
	return (msgs[-e]);
}

/* The line for C into BUF (SIZE bytes), CRLF included. */
int
caller_format(const struct caller *c, char *buf, size_t size, size_t *len)
{
	int	n;

	*len = 0;
	if (c->host[0] == '\0' ||
	    frame_host_ok(c->host, strlen(c->host)) != 0)
		return (CALLER_E_HOST);
	n = snprintf(buf, size, "%s%d host=%s cid=%u port=%u\r\n",
	    CALLER_PREFIX, CALLER_VERSION, c->host, c->cid, c->port);
	if (n < 0 || (size_t)n >= size || n > CALLER_LINE_MAX)
		return (CALLER_E_TOOLONG);
	*len = (size_t)n;
	return (CALLER_OK);
}

/*
 * A u32 in decimal at *P (before END), no sign, no leading zero; *P
 * moves past it.
 */
static int
caller_u32(const char **p, const char *end, uint32_t *v)
{
	unsigned long long	 n = 0;
	const char		*s = *p;

	if (s == end || *s < '0' || *s > '9' || (*s == '0' && s + 1 < end &&
	    s[1] >= '0' && s[1] <= '9'))
		return (CALLER_E_NUMBER);
	while (s < end && *s >= '0' && *s <= '9') {
		n = n * 10 + (unsigned)(*s - '0');
		if (n > 0xffffffffULL)
			return (CALLER_E_NUMBER);
		s++;
	}
	*v = (uint32_t)n;
	*p = s;
	return (CALLER_OK);
}

/* KEY at *P (before END): *P moves past it, or -1. */
static int
caller_key(const char **p, const char *end, const char *key)
{
	size_t	n = strlen(key);

	if ((size_t)(end - *p) < n || memcmp(*p, key, n) != 0)
		return (-1);
	*p += n;
	return (0);
}

/* caller_fields() but for clearing *C on failure. */
static int
caller_fields_do(const char *s, size_t len, struct caller *c)
{
	const char	*p = s, *end = s + len, *h;
	int		 e;

	memset(c, 0, sizeof(*c));
	if (caller_key(&p, end, "host=") != 0)
		return (CALLER_E_SYNTAX);
	for (h = p; p < end && *p != ' '; p++)
		;
	if (p == h || frame_host_ok(h, (size_t)(p - h)) != 0)
		return (CALLER_E_HOST);
	memcpy(c->host, h, (size_t)(p - h));
	c->host[p - h] = '\0';
	if (caller_key(&p, end, " cid=") != 0)
		return (CALLER_E_SYNTAX);
	if ((e = caller_u32(&p, end, &c->cid)) != CALLER_OK)
		return (e);
	if (caller_key(&p, end, " port=") != 0)
		return (CALLER_E_SYNTAX);
	if ((e = caller_u32(&p, end, &c->port)) != CALLER_OK)
		return (e);
	if (p != end)
		return (*p >= '0' && *p <= '9' ? CALLER_E_NUMBER :
		    CALLER_E_SYNTAX);
	return (CALLER_OK);
}

/* "host=H cid=N port=P", LEN bytes at S, into *C (all 0 on failure). */
int
caller_fields(const char *s, size_t len, struct caller *c)
{
	int	e;

	if ((e = caller_fields_do(s, len, c)) != CALLER_OK)
		memset(c, 0, sizeof(*c));
	return (e);
}

/* One whole line (LEN bytes at S, CRLF included) into *C. */
int
caller_parse(const char *s, size_t len, struct caller *c)
{
	const char	*p = s, *end = s + len;
	uint32_t	 v;
	int		 e;

	memset(c, 0, sizeof(*c));
	if (len > CALLER_LINE_MAX)
		return (CALLER_E_TOOLONG);
	if (len < 2 || end[-2] != '\r' || end[-1] != '\n')
		return (CALLER_E_SYNTAX);
	end -= 2;
	if (caller_key(&p, end, CALLER_PREFIX) != 0)
		return (CALLER_E_SYNTAX);
	if ((e = caller_u32(&p, end, &v)) != CALLER_OK)
		return (CALLER_E_SYNTAX);
	if (v != CALLER_VERSION)
		return (CALLER_E_VERSION);
	if (caller_key(&p, end, " ") != 0)
		return (CALLER_E_SYNTAX);
	return (caller_fields(p, (size_t)(end - p), c));
}
