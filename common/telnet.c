/*
 * telnet.c -- the TELNET stream codec (telnet.h).
 *
 * The parser is a byte-at-a-time state machine over a copy of at most
 * TELNET_CHUNK bytes of the input, draining exactly what it consumed,
 * so an event never outlives the buffer it came from and a command
 * split across reads resumes where it stopped.  Data runs are returned
 * before the command that ends them, so a caller that stops after any
 * event (a vMotion switch, a close) has consumed nothing past it.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "telnet.h"
#include "xmalloc.h"

#define TELNET_CHUNK	4096

enum telnet_state {
	TS_DATA = 0,
	TS_IAC,		/* IAC seen */
	TS_OPT,		/* IAC WILL/WONT/DO/DONT seen: the option next */
	TS_SB_OPT,	/* IAC SB seen: the option next */
	TS_SB,		/* inside a subnegotiation */
	TS_SB_IAC,	/* IAC inside a subnegotiation */
};

struct telnet {
	enum telnet_state	 state;
	uint8_t			 verb;
	uint8_t			 sb_opt;
	uint8_t			*sb;
	size_t			 sb_len;
	size_t			 sb_max;
	uint8_t			 data[TELNET_DATA_MAX];
	size_t			 data_len;
};

static const char *telnet_errs[] = {
	[-TELNET_OK] = "ok",
	[-TELNET_EAGAIN] = "incomplete",
	[-TELNET_E_SB_TOO_LONG] = "subnegotiation too long",
	[-TELNET_E_SB_IAC] =
	    "IAC followed by neither SE nor IAC in a subnegotiation",
};

/* Names of the two-byte commands, 240 (SE) to 255 (IAC). */
static const char *telnet_verbs[] = {
	"SE", "NOP", "DM", "BRK", "IP", "AO", "AYT", "EC", "EL", "GA", "SB",
	"WILL", "WONT", "DO", "DONT", "IAC"
};

/* A parser; see telnet.h. */
struct telnet *
telnet_new(size_t sb_max)
{
	struct telnet	*t;

	t = xcalloc(1, sizeof(*t));
	t->sb_max = sb_max;
	t->sb = xmalloc(sb_max > 0 ? sb_max : 1);
	return (t);
}

/* Free a parser; NULL is fine. */
void
telnet_free(struct telnet *t)
{
	if (t == NULL)
		return;
	free(t->sb);
	free(t);
}

/* Text for a telnet_next() code. */
const char *
telnet_strerror(int e)
{
	if (e > 0 || e <= -(int)(sizeof(telnet_errs) / sizeof(telnet_errs[0])))
		return ("unknown error");
	return (telnet_errs[-e]);
}

/* A command byte's name. */
const char *
telnet_strverb(uint8_t v)
{
	if (v < TELNET_SE)
		return ("unknown");
	return (telnet_verbs[v - TELNET_SE]);
}

/* The data run so far as an event. */
static void
telnet_data_ev(struct telnet *t, struct telnet_ev *ev)
{
	memset(ev, 0, sizeof(*ev));
	ev->type = TELNET_EV_DATA;
	ev->p = t->data;
	ev->len = t->data_len;
	t->data_len = 0;
}

/* One step of the parser; see telnet.h. */
int
telnet_next(struct telnet *t, struct evbuffer *in, struct telnet_ev *ev)
{
	uint8_t	chunk[TELNET_CHUNK], c;
	size_t	n, i;

	memset(ev, 0, sizeof(*ev));
	t->data_len = 0;
again:
	if ((n = (size_t)evbuffer_copyout(in, chunk, sizeof(chunk))) == 0 ||
	    n == (size_t)-1)
		return (TELNET_EAGAIN);
	for (i = 0; i < n; i++) {
		c = chunk[i];
		switch (t->state) {
		case TS_DATA:
			if (c == TELNET_IAC && i + 1 < n &&
			    chunk[i + 1] == TELNET_IAC) {
				/* An escaped 0xff inside the run. */
				i++;
			} else if (c == TELNET_IAC) {
				if (t->data_len > 0) {
					/* The run first; the IAC stays. */
					evbuffer_drain(in, i);
					telnet_data_ev(t, ev);
					return (TELNET_OK);
				}
				t->state = TS_IAC;
				break;
			}
			t->data[t->data_len++] = c;
			if (t->data_len == sizeof(t->data)) {
				evbuffer_drain(in, i + 1);
				telnet_data_ev(t, ev);
				return (TELNET_OK);
			}
			break;
		case TS_IAC:
			if (c == TELNET_IAC) {
				/* An escaped 0xff starts the next run. */
				t->state = TS_DATA;
				t->data[t->data_len++] = c;
				break;
			}
			if (c >= TELNET_WILL && c <= TELNET_DONT) {
				t->verb = c;
				t->state = TS_OPT;
				break;
			}
			if (c == TELNET_SB) {
				t->state = TS_SB_OPT;
				break;
			}
			t->state = TS_DATA;
			evbuffer_drain(in, i + 1);
			ev->type = TELNET_EV_CMD;
			ev->verb = c;
			return (TELNET_OK);
		case TS_OPT:
			t->state = TS_DATA;
			evbuffer_drain(in, i + 1);
			ev->type = TELNET_EV_OPT;
			ev->verb = t->verb;
			ev->opt = c;
			return (TELNET_OK);
		case TS_SB_OPT:
			t->sb_opt = c;
			t->sb_len = 0;
			t->state = TS_SB;
			break;
		case TS_SB:
			if (c == TELNET_IAC) {
				t->state = TS_SB_IAC;
				break;
			}
			if (t->sb_len == t->sb_max)
				return (TELNET_E_SB_TOO_LONG);
			t->sb[t->sb_len++] = c;
			break;
		case TS_SB_IAC:
			if (c == TELNET_IAC) {
				if (t->sb_len == t->sb_max)
					return (TELNET_E_SB_TOO_LONG);
				t->sb[t->sb_len++] = c;
				t->state = TS_SB;
				break;
			}
			if (c != TELNET_SE)
				return (TELNET_E_SB_IAC);
			t->state = TS_DATA;
			evbuffer_drain(in, i + 1);
			ev->type = TELNET_EV_SB;
			ev->opt = t->sb_opt;
			ev->p = t->sb;
			ev->len = t->sb_len;
			return (TELNET_OK);
		}
	}
	evbuffer_drain(in, n);
	if (t->data_len > 0) {
		telnet_data_ev(t, ev);
		return (TELNET_OK);
	}
	goto again;		/* a command longer than the chunk */
}

/* Stream bytes out, each 0xff doubled. */
void
telnet_add_data(struct evbuffer *out, const void *v, size_t len)
{
	static const uint8_t	 iac2[2] = { TELNET_IAC, TELNET_IAC };
	const uint8_t		*p = v, *q;

	while (len > 0) {
		if ((q = memchr(p, TELNET_IAC, len)) == NULL) {
			evbuffer_add(out, p, len);
			return;
		}
		if (q > p)
			evbuffer_add(out, p, (size_t)(q - p));
		evbuffer_add(out, iac2, sizeof(iac2));
		len -= (size_t)(q - p) + 1;
		p = q + 1;
	}
}

/* An option verb out: IAC VERB OPT. */
void
telnet_add_opt(struct evbuffer *out, uint8_t verb, uint8_t opt)
{
	uint8_t	b[3] = { TELNET_IAC, verb, opt };

	evbuffer_add(out, b, sizeof(b));
}

/* A subnegotiation out, its command and payload escaped. */
void
telnet_add_sb(struct evbuffer *out, uint8_t opt, uint8_t cmd,
    const void *p, size_t len)
{
	uint8_t	head[3] = { TELNET_IAC, TELNET_SB, opt };
	uint8_t	tail[2] = { TELNET_IAC, TELNET_SE };

	evbuffer_add(out, head, sizeof(head));
	telnet_add_data(out, &cmd, 1);
	telnet_add_data(out, p, len);
	evbuffer_add(out, tail, sizeof(tail));
}
