/*
 * telnet.h -- a TELNET (RFC 854, 855) stream codec: the parser turns a
 * byte stream into data runs (IAC IAC unescaped), option verbs and
 * subnegotiations; the writers escape IAC on the way out.  It knows
 * no option's meaning: the vSPC (appliance/serial.c) does.
 */
#ifndef VRELAY_TELNET_H
#define VRELAY_TELNET_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

#define TELNET_IAC		255
#define TELNET_DONT		254
#define TELNET_DO		253
#define TELNET_WONT		252
#define TELNET_WILL		251
#define TELNET_SB		250
#define TELNET_SE		240

#define TELNET_OPT_BINARY	0
#define TELNET_OPT_ECHO		1
#define TELNET_OPT_SGA		3
#define TELNET_OPT_VMWARE	232	/* VMware's vSPC extension */

#define TELNET_DATA_MAX		4096	/* bytes in one data event */

enum telnet_ev_type {
	TELNET_EV_DATA = 1,	/* p, len: stream bytes, unescaped */
	TELNET_EV_OPT,		/* verb (WILL WONT DO DONT), opt */
	TELNET_EV_SB,		/* opt, p, len: the subnegotiation, unescaped */
	TELNET_EV_CMD,		/* verb: any other IAC command (NOP, BRK...) */
};

struct telnet_ev {
	enum telnet_ev_type	 type;
	uint8_t			 verb;
	uint8_t			 opt;
	const uint8_t		*p;	/* valid until the next call */
	size_t			 len;
};

enum telnet_err {
	TELNET_OK = 0,
	TELNET_EAGAIN = -1,		/* nothing complete yet */
	TELNET_E_SB_TOO_LONG = -2,	/* a subnegotiation over its cap */
	TELNET_E_SB_IAC = -3,		/* IAC then not SE or IAC inside SB */
};

struct telnet;

/* A parser whose subnegotiations may hold at most SB_MAX bytes. */
struct telnet	*telnet_new(size_t);
void		 telnet_free(struct telnet *);
/*
 * The next event from IN, whose bytes it consumes: TELNET_OK with *EV
 * filled in, TELNET_EAGAIN when IN holds no complete event (IN is then
 * empty: a partial command is kept in the parser), or an error after
 * which the stream is garbage.
 */
int		 telnet_next(struct telnet *, struct evbuffer *,
		    struct telnet_ev *);
const char	*telnet_strerror(int);
/* "WILL", "DO", "NOP"...: a command byte's name, or "unknown". */
const char	*telnet_strverb(uint8_t);

/* Append LEN stream bytes at P to OUT, IAC doubled. */
void		 telnet_add_data(struct evbuffer *, const void *, size_t);
/* Append IAC VERB OPT. */
void		 telnet_add_opt(struct evbuffer *, uint8_t, uint8_t);
/* Append IAC SB OPT CMD <LEN bytes at P, IAC doubled> IAC SE. */
void		 telnet_add_sb(struct evbuffer *, uint8_t, uint8_t,
		    const void *, size_t);

#endif
