/*
 * mux_fuzz.c -- libFuzzer harness for a mesh link's frames (mux.h,
 * mux_proto.h): what the accepting relay reads from whoever dialled
 * its mesh port, or (an input that starts with FZ_DIAL) what the
 * dialling relay reads from the relay it dialled.
 *
 * The input is the peer's bytes, preamble included, written into one
 * end of a socketpair whose other end is a mux's link, with the event
 * loop run until the mux has read them all or given up on the link.
 * An accepting mux's streams (the peer's OPENs) are read, and written
 * to once, as a forward would; an odd one's forward then hands the mux
 * a socket of the harness's to move its bytes to (mux_adopt), as relay
 * B's forward hands over the appliance's.  A dialling mux reads the preamble
 * first, then opens FZ_DIAL_STREAMS streams on sockets (a forward's)
 * and FZ_DIAL_CHANS on channels (a session end's leg: xsock.h), ids
 * after them, and writes to each before the rest of the input comes:
 * DATA, WINDOW, FIN and RST then find streams it knows.  One channel
 * reads all it is given, one reads nothing (its window fills), one
 * sends its FIN after its hello.  An odd-sized input frees the channels
 * before the mux, an even one after (closed, or detached by the mux).
 * Whatever the bytes, the link either stays up or ends with a reason
 * of printable ASCII, a channel's reads and errors say only what a
 * socket's would, and nothing leaks (ASan).
 */
#include <sys/socket.h>

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "log.h"
#include "mux.h"
#include "mux_proto.h"
#include "xsock.h"
#include "fuzz.h"

#define FZ_STREAMS	64
#define FZ_DIAL		0xd1	/* first byte: the mux under test dialled */
#define FZ_DIAL_STREAMS	3
#define FZ_DIAL_CHANS	3

struct fz_end {
	int	closed;
	char	why[256];
	int	fd[FZ_STREAMS];
	int	n;
};

static struct event_base	*base;

/* A channel's callback: reads and drops what comes (ARG: whether). */
static void
fz_chan_cb(struct xsock *x, enum xsock_event ev, size_t n, void *arg)
{
	struct evbuffer	*in;
	ssize_t		 r;

	switch (ev) {
	case XSOCK_READABLE:
		CHECK(arg != NULL);
		CHECK((in = evbuffer_new()) != NULL);
		while ((r = xsock_read(x, in, 1 << 20)) > 0)
			evbuffer_drain(in, (size_t)r);
		evbuffer_free(in);
		CHECK(r == 0 || errno == EAGAIN || errno == ECONNRESET);
		if (r <= 0 && errno != EAGAIN)
			xsock_read_enable(x, 0);
		break;
	case XSOCK_ERROR:
		CHECK(n == EPIPE || n == ECONNRESET);
		break;
	case XSOCK_WRITTEN:
		break;
	case XSOCK_CONNECTED:
	case XSOCK_TIMEOUT:
		CHECK(!"a channel connects or times out");
	}
}

/* A dialler's channels: one reads, one does not, one sends its FIN. */
static void
fz_open_chans(struct mux *m, struct xsock **x)
{
	struct evbuffer	*b;
	int		 i;

	CHECK((b = evbuffer_new()) != NULL);
	for (i = 0; i < FZ_DIAL_CHANS; i++) {
		if (mux_open_chan(m, &x[i]) != MUX_OK)
			continue;
		xsock_set_cb(x[i], fz_chan_cb, i == 1 ? NULL : x[i]);
		xsock_read_enable(x[i], i != 1);
		evbuffer_add(b, "hello", 5);
		(void)xsock_write(x[i], b, 5);
		if (i == 2)
			xsock_shutdown(x[i]);
	}
	evbuffer_free(b);
}

int	LLVMFuzzerInitialize(int *, char ***);

static int
fz_accept(struct mux *m, uint32_t id, int fd, void *arg)
{
	struct fz_end	*e = arg;
	struct evbuffer	*pending;
	int		 app[2], rv;

	if (e->n + 2 > FZ_STREAMS)
		return (-1);
	e->fd[e->n++] = fd;
	/* A forward answers: a byte the other way. */
	(void)write(fd, "x", 1);
	/*
	 * An odd stream's forward hands its far socket to the link, as
	 * relay B's does, with a byte it read and did not pass on.
	 */
	if (id % 2 == 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK,
	    0, app) == -1)
		return (0);
	CHECK((pending = evbuffer_new()) != NULL);
	evbuffer_add(pending, "p", 1);
	rv = mux_adopt(m, id, app[0], pending);
	CHECK(rv == MUX_OK || rv == MUX_E_BUSY);
	CHECK(rv != MUX_OK || evbuffer_get_length(pending) == 0);
	evbuffer_free(pending);
	if (rv != MUX_OK)
		close(app[0]);
	e->fd[e->n++] = app[1];
	return (0);
}

static void
fz_closed(struct mux *m, const char *why, void *arg)
{
	struct fz_end	*e = arg;

	e->closed = 1;
	strlcpy(e->why, why, sizeof(e->why));
}

static const struct mux_cb	fz_cb = { NULL, fz_accept, fz_closed };

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("mux_fuzz", LOG_LEVEL_WARN);
	base = event_base_new();
	return (0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_end		 e;
	struct bufferevent	*bev;
	struct mux		*m;
	struct xsock		*x[FZ_DIAL_CHANS] = { NULL };
	uint8_t			 buf[4096];
	size_t			 done = 0, i, lim;
	ssize_t			 r;
	int			 sv[2], rounds, dial, opened = 0, fd;

	memset(&e, 0, sizeof(e));
	dial = size > 0 && data[0] == FZ_DIAL;
	if (dial) {
		data++;
		size--;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == -1)
		return (0);
	bev = bufferevent_socket_new(base, sv[1], BEV_OPT_CLOSE_ON_FREE);
	CHECK(bev != NULL);
	m = mux_new(bev, dial, &fz_cb, &e);
	CHECK(m != NULL);
	for (rounds = 0; rounds < 1000 && !e.closed; rounds++) {
		/* A dialler's streams open once the preamble is in. */
		lim = dial && !opened && size > MUX_PREAMBLE_LEN ?
		    MUX_PREAMBLE_LEN : size;
		if (done < lim && (r = write(sv[0], data + done,
		    lim - done)) > 0)
			done += r;
		if (dial && !opened && mux_up(m)) {
			opened = 1;
			for (i = 0; i < FZ_DIAL_STREAMS; i++)
				if (mux_open(m, &fd) == MUX_OK) {
					(void)write(fd, "hello", 5);
					e.fd[e.n++] = fd;
				}
			fz_open_chans(m, x);
		}
		if (dial && !opened && rounds > 8)
			opened = 1;	/* never up: the rest as it comes */
		/* Keep the link's own answers from filling the socket. */
		while (read(sv[0], buf, sizeof(buf)) > 0)
			;
		for (i = 0; i < (size_t)e.n; i++)
			while (read(e.fd[i], buf, sizeof(buf)) > 0)
				;
		event_base_loop(base, EVLOOP_NONBLOCK);
		if (done == size && rounds > 4 &&
		    evbuffer_get_length(bufferevent_get_input(bev)) == 0)
			break;
	}
	if (e.closed) {
		CHECK(e.why[0] != '\0');
		fz_ascii(e.why);
	}
	for (i = 0; size % 2 == 1 && i < FZ_DIAL_CHANS; i++) {
		xsock_free(x[i]);
		x[i] = NULL;
	}
	mux_free(m);
	for (i = 0; i < FZ_DIAL_CHANS; i++)
		xsock_free(x[i]);
	for (i = 0; i < (size_t)e.n; i++)
		close(e.fd[i]);
	close(sv[0]);
	/* What the mux left to the loop (a closed() pending) goes. */
	event_base_loop(base, EVLOOP_NONBLOCK);
	return (0);
}
