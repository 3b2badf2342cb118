/*
 * mux.h -- a mesh link: many streams over one connection between two
 * relays (wire format: mux_proto.h).  A stream is handed to its user as
 * one end of a socketpair, so a forward uses it as it would any socket
 * (splice included), and the mux moves bytes between the other end and
 * the link; or, opened by a session end for its leg, as an xsock on a
 * channel (xsock.h): no descriptor, its bytes moved by the mux between
 * the xsock's buffers and the link.
 */
#ifndef VRELAY_MUX_H
#define VRELAY_MUX_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct bufferevent;
struct evbuffer;
struct mux;
struct xsock;

#define MUX_OK			0
#define MUX_E_STATE		(-1)	/* the link is not up (yet or now) */
#define MUX_E_SYSTEM		(-2)	/* socketpair failed, see errno */
#define MUX_E_IDS		(-3)	/* stream ids used up: a new link */
#define MUX_E_BUSY		(-4)	/* adopt: not now, bytes wait */
#define MUX_E_STREAM		(-5)	/* adopt: no such open stream */

struct mux_cb {
	/* The peer's preamble arrived: streams may open. */
	void	(*up)(struct mux *, void *);
	/*
	 * Acceptor: the peer opened stream ID; FD is the caller's end
	 * from now on.  Nonzero refuses it (FD is closed by the mux,
	 * the peer gets RST).
	 */
	int	(*accept)(struct mux *, uint32_t, int, void *);
	/*
	 * The link is gone, WHY (from the loop, not inside a link
	 * callback); every stream's socket has seen its end.  The owner
	 * may mux_free() here.
	 */
	void	(*closed)(struct mux *, const char *, void *);
};

const char	*mux_strerror(int);
/*
 * A mesh link over LINK (connected, or a TLS bufferevent still in its
 * handshake), which the mux owns from now on.  DIALLER: this end opens
 * the streams.  CB's functions are called with ARG.
 */
struct mux	*mux_new(struct bufferevent *, int, const struct mux_cb *,
		    void *);
/* Close all streams and the link; NULL is fine.  No callback follows. */
void		 mux_free(struct mux *);
/*
 * Dialler: a new stream; *FD is the caller's end (nonblocking,
 * close-on-exec), connected.  -1 in *FD on error.
 */
int		 mux_open(struct mux *, int *);
/*
 * Dialler: a new stream as *XP, an xsock on a channel (connected; the
 * caller sets its callback and frees it), or NULL in *XP on error.
 * Freeing the xsock closes the stream as a socket's close would; the
 * link's end or the peer's RST reach it as ECONNRESET.
 */
int		 mux_open_chan(struct mux *, struct xsock **);
/*
 * Acceptor: stream ID's user hands over FD, the socket its bytes go to
 * and come from (an appliance's leg, which the mux owns from now on),
 * with PENDING, bytes it read from the stream and did not write to FD
 * yet (taken).  The mux moves the stream's bytes between the link and
 * FD itself, and closes the socketpair; the user drops its end unread.
 * The user must have read its end dry and written all it read from FD
 * to it.  MUX_E_BUSY, with nothing taken or changed but bytes sent on,
 * while what the user wrote waits for credit; MUX_E_STREAM for a stream
 * that is gone, half-closed or a channel, MUX_E_STATE on a link down.
 */
int		 mux_adopt(struct mux *, uint32_t, int, struct evbuffer *);
/* Reset every adopted stream (its socket's far side went away). */
size_t		 mux_reset_adopted(struct mux *);
/* Whether the peer's preamble has come and the link is not gone. */
int		 mux_up(const struct mux *);
/* Streams open now. */
size_t		 mux_streams(const struct mux *);
/*
 * PING the peer after MS of silence, and give the link up after 3 MS
 * without a frame (0: never).
 */
void		 mux_set_keepalive(struct mux *, long long);
/* Counters for status: streams, bytes each way, frames. */
json_t		*mux_json(const struct mux *);

#endif /* VRELAY_MUX_H */
