/*
 * push.h -- the push channel between vlocator and the relays, version 1
 * (docs/push.md).
 *
 * A relay connects to the locator (TCP or unix), sends HELLO with its
 * host name as vSphere names the HostSystem and its mesh address, and
 * from then on receives TARGET pushes, which it answers with ACK or
 * NACK.  HINT carries a migration hint (pre-warm).  Both ends send
 * PING when they have been quiet for the keepalive period and answer
 * every PING with PONG; a peer silent for three periods is dead.
 *
 * Each message is one JSON object on one line ("\n"), at most
 * PUSH_LINE_MAX bytes including the newline, with a "type" member.
 * Unknown members are ignored (forward compatible); a missing or
 * ill-typed member is an error that closes that one connection.
 */
#ifndef VRELAY_PUSH_H
#define VRELAY_PUSH_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

#define PUSH_VERSION		1
#define PUSH_LINE_MAX		(16 * 1024)
#define PUSH_EPOCH_MAX		((1ULL << 53) - 1)	/* exact in JSON */
/* Locator epochs are wall-clock ms: one further ahead is refused. */
#define PUSH_EPOCH_AHEAD_MS	(24 * 3600 * 1000LL)
#define PUSH_HOST_MAX		255	/* as frame_host_ok() */
#define PUSH_ADDR_MAX		255	/* an xaddr string */
#define PUSH_TEXT_MAX		255	/* error and event texts */

#define PUSH_OK			0
#define PUSH_E_JSON		(-1)	/* not one JSON object */
#define PUSH_E_TYPE		(-2)	/* unknown or missing "type" */
#define PUSH_E_FIELD		(-3)	/* a member missing or ill-typed */
#define PUSH_E_TOOBIG		(-4)	/* line over PUSH_LINE_MAX */
#define PUSH_E_VERSION		(-5)	/* HELLO/WELCOME of another version */
#define PUSH_E_INCOMPLETE	(-6)	/* no whole line buffered yet */

enum push_type {
	PUSH_HELLO = 1,		/* relay: version, host, mesh, epoch */
	PUSH_WELCOME,		/* locator: version, known, vmomi */
	PUSH_TARGET,		/* locator: epoch, appliance_host, relay,
				   appliance */
	PUSH_ACK,		/* relay: epoch */
	PUSH_NACK,		/* relay: epoch, error */
	PUSH_HINT,		/* locator: event, host, relay */
	PUSH_ERROR,		/* either: error, then close */
	PUSH_PING,		/* either */
	PUSH_PONG,		/* either */
};

/*
 * A decoded message.  String members are "" when absent (and allowed
 * to be absent); which members a type carries is push.c's table.
 */
struct push_msg {
	enum push_type	type;
	int		version;			/* HELLO, WELCOME */
	int		known;				/* WELCOME: host known
							   to vSphere */
	uint64_t	epoch;				/* HELLO, TARGET, ACK,
							   NACK */
	uint64_t	current;			/* NACK: the relay's
							   own epoch (0: not
							   said) */
	char		host[PUSH_HOST_MAX + 1];	/* HELLO, HINT; TARGET:
							   appliance host */
	char		mesh[PUSH_ADDR_MAX + 1];	/* HELLO: own mesh
							   address */
	char		relay[PUSH_ADDR_MAX + 1];	/* TARGET, HINT: the
							   host's relay */
	char		appliance[PUSH_ADDR_MAX + 1];	/* TARGET */
	char		text[PUSH_TEXT_MAX + 1];	/* NACK, ERROR: why;
							   HINT: event type */
	char		vmomi[PUSH_ADDR_MAX + 1];	/* WELCOME: the vmomi
							   agent's address */
};

const char	*push_strerror(int);
/* "hello", "target", ... or "?" */
const char	*push_type_name(enum push_type);

/*
 * Decode one line (without its newline) into *M (cleared first).  ERR
 * (may be NULL) gets a message naming the member at fault, e.g.
 * `target: "epoch": expected an integer from 0 to 9007199254740991`;
 * it is printable ASCII.  On PUSH_E_VERSION, M holds the type and the
 * offered version; on other errors M is all zero.
 */
int		 push_decode(const char *, size_t, struct push_msg *, char *,
		    size_t);
/*
 * Take one line off BUF and decode it; PUSH_E_INCOMPLETE when no whole
 * line is buffered yet, PUSH_E_TOOBIG when one is longer than
 * PUSH_LINE_MAX (buffered or not).
 */
int		 push_read(struct evbuffer *, struct push_msg *, char *,
		    size_t);
/*
 * Append M as one line to BUF: PUSH_OK, PUSH_E_TYPE (no such type) or
 * PUSH_E_FIELD (a host, address or epoch the decoder would refuse;
 * nothing is appended).  In texts, bytes outside printable ASCII
 * become '?' and one that fills its array unterminated is cut at
 * PUSH_TEXT_MAX, ending "...", so any text can be sent.
 */
int		 push_write(struct evbuffer *, const struct push_msg *);
/*
 * Whether EPOCH is more than PUSH_EPOCH_AHEAD_MS past this machine's
 * wall clock: a locator refuses to follow one (its epochs are
 * wall-clock ms, and one bad epoch must not pin every later one).
 */
int		 push_epoch_ahead(uint64_t);

#endif
