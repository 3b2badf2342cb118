/*
 * vload -- a load generator and backend for vrelay's benchmarks.
 *
 *	vload serve --listen ADDR [--listen ADDR ...]
 *	    [--mode auto|echo|sink|source]
 *	vload bulk --connect ADDR [--streams N] [--seconds S] [--dir up|down]
 *	vload rtt --connect ADDR [--size B] [--count N]
 *	vload setup --connect ADDR [--seconds S] [--concurrency C] [--size B]
 *	vload idle --connect ADDR --sessions N --hold-file F
 *	    [--concurrency C] [--timeout S]
 *	common: [--vsock-dir DIR --vsock-cid CID] [-v]
 *
 * Unlike test/tools/vtraffic, which generates and checks every byte,
 * vload only moves bytes: one thread, epoll, 256 KiB reads and writes
 * from one scratch buffer, TCP_NODELAY on every TCP socket, so that the
 * relay under test and not the tool is what a figure measures.
 *
 * Wire: a client's first byte picks what the server does with the
 * connection: 'e' echo, 's' sink (read and discard), 'o' source (write
 * until the client goes).  serve --mode auto (the default) obeys it;
 * another --mode forces that behaviour but still consumes the byte, so
 * any vload client works against any vload server through any number of
 * transparent hops.
 *
 * Every subcommand prints exactly one JSON line on stdout: serve when
 * it stops (SIGINT/SIGTERM), idle once every session is open (it then
 * writes "ready" to --hold-file and holds them until SIGTERM), the
 * others when done.  Errors go to stderr and exit 1.
 */

#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>	/* isfinite, a macro: no libm */
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "xaddr.h"
#include "xmalloc.h"

#define VL_IO			(256 * 1024)	/* bytes per read or write */
#define VL_LISTEN_MAX		16
#define VL_BACKLOG		4096
#define VL_EVENTS		256
#define VL_ACCEPT_PAUSE_NS	(100 * 1000000ULL)	/* after EMFILE */
#define VL_OVERRUN_S		10	/* a bulk run may go on this long */
#define VL_CONNECT_MS		10000	/* one connect, bulk and rtt */
#define VL_SESSION_NS		(10 * 1000000000ULL)	/* setup, idle */
#define VL_SIZE_MAX		65536	/* rtt and setup message */
#define VL_SAMPLES_MAX		(4 * 1024 * 1024)	/* kept latencies */
#define VL_STREAMS_MAX		1024
#define VL_SLOTS_MAX		100000	/* setup/idle concurrency */
#define VL_SESSIONS_MAX		1000000

#define NSEC			1000000000ULL

/* The selector byte: what the server does with a connection. */
#define SEL_ECHO		'e'
#define SEL_SINK		's'
#define SEL_SOURCE		'o'

enum {
	OPT_LISTEN = 256,
	OPT_MODE,
	OPT_CONNECT,
	OPT_STREAMS,
	OPT_SECONDS,
	OPT_DIR,
	OPT_SIZE,
	OPT_COUNT,
	OPT_CONCURRENCY,
	OPT_SESSIONS,
	OPT_HOLD_FILE,
	OPT_TIMEOUT,
	OPT_WARMUP,
	OPT_VSOCK_DIR,
	OPT_VSOCK_CID,
};

static const struct option vl_options[] = {
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "mode", required_argument, NULL, OPT_MODE },
	{ "connect", required_argument, NULL, OPT_CONNECT },
	{ "streams", required_argument, NULL, OPT_STREAMS },
	{ "seconds", required_argument, NULL, OPT_SECONDS },
	{ "dir", required_argument, NULL, OPT_DIR },
	{ "size", required_argument, NULL, OPT_SIZE },
	{ "count", required_argument, NULL, OPT_COUNT },
	{ "concurrency", required_argument, NULL, OPT_CONCURRENCY },
	{ "sessions", required_argument, NULL, OPT_SESSIONS },
	{ "hold-file", required_argument, NULL, OPT_HOLD_FILE },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "warmup", required_argument, NULL, OPT_WARMUP },
	{ "vsock-dir", required_argument, NULL, OPT_VSOCK_DIR },
	{ "vsock-cid", required_argument, NULL, OPT_VSOCK_CID },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 }
};

/* Which options each subcommand accepts, by the bit of (opt - 256). */
#define OB(o)			(1U << ((o) - OPT_LISTEN))
#define OPTS_COMMON		(OB(OPT_VSOCK_DIR) | OB(OPT_VSOCK_CID))

/* Everything the command line said. */
static struct {
	const char	*listen[VL_LISTEN_MAX];
	u_int		 nlisten;
	int		 mode;		/* SEL_* or 0: auto */
	const char	*connect;
	u_int		 streams;
	double		 seconds;
	double		 warmup;	/* < 0: automatic */
	int		 up;
	u_int		 size;
	u_int		 count;
	u_int		 concurrency;
	u_int		 sessions;
	const char	*hold_file;
	double		 timeout;
	const char	*vsock_dir;
	uint32_t	 vsock_cid;
	int		 vsock_cid_set;
} opt = {
	.streams = 1,
	.seconds = 5,
	.warmup = -1,
	.up = 1,
	.size = 64,
	.count = 10000,
	.concurrency = 0,
	.timeout = 300,
};

/* What an epoll registration points at: a listener or a connection. */
struct ep {
	int	kind;
#define EP_LISTENER	1
#define EP_SCONN	2
#define EP_PING		3
	int	fd;
};

/* A server connection. */
struct sconn {
	struct ep	 ep;		/* first: epoll data points here */
	int		 mode;		/* SEL_*, 0 until the selector */
	int		 eof;		/* the client sent EOF */
	uint8_t		*pend;		/* echo bytes the socket refused */
	size_t		 pendoff;
	size_t		 pendlen;
};

/* One setup or idle session: connect, one echo, then close or hold. */
struct ping {
	struct ep	 ep;
	int		 state;
#define PING_FREE	0
#define PING_CONNECT	1	/* connect in progress */
#define PING_ECHO	2	/* message sent, reading the echo */
#define PING_IDLE	3	/* idle: echoed, held open */
	size_t		 got;
	uint64_t	 t0;
};

static struct xaddr		*target;
static int			 epfd = -1;
static uint8_t			*scratch;	/* every read and write */
static volatile sig_atomic_t	 stopping;

static void	usage(void) __attribute__((noreturn));

/* Nanoseconds on the monotonic clock. */
static uint64_t
now_ns(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * NSEC + (uint64_t)ts.tv_nsec);
}

/* SIGINT/SIGTERM: stop the loop at its next wakeup. */
static void
on_signal(int sig)
{
	stopping = 1;
}

/* Catch SIGINT and SIGTERM without SA_RESTART so epoll_wait returns. */
static void
signals_setup(void)
{
	struct sigaction	sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* Allow as many descriptors as the hard limit does: idle opens many. */
static void
raise_nofile(void)
{
	struct rlimit	rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* A whole number in [MIN, MAX] for option NAME, or exit. */
static long long
num_arg(const char *name, const char *s, long long min, long long max)
{
	const char	*errstr;
	long long	 v;

	v = strtonum(s, min, max, &errstr);
	if (errstr != NULL)
		fatalx("--%s %s: %s (want %lld..%lld)", name, s, errstr,
		    min, max);
	return (v);
}

/* Seconds (a decimal, e.g. 0.2) in [MIN, MAX] for option NAME. */
static double
sec_arg(const char *name, const char *s, double min, double max)
{
	char	*end;
	double	 v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !isfinite(v) ||
	    v < min || v > max)
		fatalx("--%s %s: want seconds in %g..%g", name, s, min, max);
	return (v);
}

/* Add (EPOLL_CTL_ADD) or change (EPOLL_CTL_MOD) FD's registration. */
static void
ep_ctl(int op, int fd, uint32_t events, struct ep *p)
{
	struct epoll_event	ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = events;
	ev.data.ptr = p;
	if (epoll_ctl(epfd, op, fd, &ev) == -1)
		fatal("epoll_ctl %s fd %d", op == EPOLL_CTL_ADD ? "add" :
		    "mod", fd);
}

/* Add FD to the epoll set for EVENTS, pointing at P. */
static void
ep_add(int fd, uint32_t events, struct ep *p)
{
	ep_ctl(EPOLL_CTL_ADD, fd, events, p);
}

/* Change what FD's registration waits for. */
static void
ep_mod(int fd, uint32_t events, struct ep *p)
{
	ep_ctl(EPOLL_CTL_MOD, fd, events, p);
}

/* Milliseconds until DEADLINE (ns), rounded up, for epoll_wait. */
static int
ms_until(uint64_t deadline, uint64_t now)
{
	if (deadline <= now)
		return (0);
	return ((int)((deadline - now + 999999) / 1000000));
}

/* --- serve -------------------------------------------------------- */

static struct {
	struct xaddr	*addr[VL_LISTEN_MAX];
	struct ep	 lis[VL_LISTEN_MAX];
	int		 paused;
	uint64_t	 resume_at;
	uint64_t	 conns;
	uint64_t	 bytes_in;
	uint64_t	 bytes_out;
} srv;

/* Forget a server connection. */
static void
sconn_close(struct sconn *c)
{
	close(c->ep.fd);	/* also leaves the epoll set */
	free(c->pend);
	free(c);
}

/*
 * Write what the echo could not send yet; 1 when all of it is out,
 * 0 when the socket is full, -1 on error.
 */
static int
sconn_flush(struct sconn *c)
{
	ssize_t	n;

	while (c->pendoff < c->pendlen) {
		n = write(c->ep.fd, c->pend + c->pendoff,
		    c->pendlen - c->pendoff);
		if (n == -1)
			return (errno == EAGAIN || errno == EINTR ? 0 : -1);
		c->pendoff += (size_t)n;
		srv.bytes_out += (size_t)n;
	}
	c->pendoff = c->pendlen = 0;
	return (1);
}

/* Echo LEN bytes at BUF; keep the rest and stop reading if refused. */
static int
sconn_echo(struct sconn *c, const uint8_t *buf, size_t len)
{
	ssize_t	n;

	n = write(c->ep.fd, buf, len);
	if (n == -1) {
		if (errno != EAGAIN && errno != EINTR)
			return (-1);
		n = 0;
	}
	srv.bytes_out += (size_t)n;
	if ((size_t)n == len)
		return (0);
	if (c->pend == NULL)
		c->pend = xmalloc(VL_IO);
	c->pendoff = 0;
	c->pendlen = len - (size_t)n;
	memcpy(c->pend, buf + n, c->pendlen);
	ep_mod(c->ep.fd, EPOLLOUT, &c->ep);
	return (0);
}

/* Readable: the selector, then echo, discard or ignore. */
static void
sconn_read(struct sconn *c)
{
	ssize_t	n;
	size_t	off = 0;

	n = read(c->ep.fd, scratch, VL_IO);
	if (n == -1) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		log_debug("fd %d: read: %s", c->ep.fd, strerror(errno));
		sconn_close(c);
		return;
	}
	if (n == 0) {
		sconn_close(c);	/* nothing pending: reading implies so */
		return;
	}
	srv.bytes_in += (size_t)n;
	if (c->mode == 0) {
		c->mode = opt.mode != 0 ? opt.mode : scratch[0];
		off = 1;
		switch (c->mode) {
		case SEL_ECHO:
		case SEL_SINK:
			break;
		case SEL_SOURCE:
			ep_mod(c->ep.fd, EPOLLIN | EPOLLOUT, &c->ep);
			break;
		default:
			log_warnx("fd %d: unknown selector 0x%02x: closing",
			    c->ep.fd, scratch[0]);
			sconn_close(c);
			return;
		}
	}
	if (c->mode == SEL_ECHO && (size_t)n > off &&
	    sconn_echo(c, scratch + off, (size_t)n - off) == -1) {
		log_debug("fd %d: write: %s", c->ep.fd, strerror(errno));
		sconn_close(c);
	}
}

/* Writable: drain an echo's leftovers, or source more bytes. */
static void
sconn_write(struct sconn *c)
{
	ssize_t	n;
	int	rv;

	if (c->mode == SEL_SOURCE) {
		n = write(c->ep.fd, scratch, VL_IO);
		if (n == -1 && errno != EAGAIN && errno != EINTR) {
			log_debug("fd %d: write: %s", c->ep.fd,
			    strerror(errno));
			sconn_close(c);
		} else if (n > 0)
			srv.bytes_out += (size_t)n;
		return;
	}
	if ((rv = sconn_flush(c)) == -1) {
		sconn_close(c);
		return;
	}
	if (rv == 1)
		ep_mod(c->ep.fd, EPOLLIN, &c->ep);
}

/* Accept every waiting connection on listener L. */
static void
serve_accept(struct ep *l)
{
	struct sconn	*c;
	u_int		 i;
	int		 fd;

	for (;;) {
		fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EMFILE || errno == ENFILE) {
				/* Stop accepting for a moment, not spin. */
				log_warnx("accept: %s; pausing listeners",
				    strerror(errno));
				for (i = 0; i < opt.nlisten; i++)
					epoll_ctl(epfd, EPOLL_CTL_DEL,
					    srv.lis[i].fd, NULL);
				srv.paused = 1;
				srv.resume_at = now_ns() + VL_ACCEPT_PAUSE_NS;
			} else if (errno != EAGAIN && errno != EINTR &&
			    errno != ECONNABORTED)
				log_warn("accept");
			return;
		}
		xaddr_tune(fd, xaddr_type(srv.addr[l - srv.lis]));
		c = xcalloc(1, sizeof(*c));
		c->ep.kind = EP_SCONN;
		c->ep.fd = fd;
		ep_add(fd, EPOLLIN, &c->ep);
		srv.conns++;
	}
}

/* The backend: accept, then echo, sink or source per connection. */
static int
serve_main(void)
{
	struct epoll_event	 evs[VL_EVENTS];
	struct ep		*p;
	u_int			 i;
	int			 n, k, rc, fd, tmo;
	uint32_t		 e;

	if (opt.nlisten == 0)
		fatalx("serve needs --listen ADDR");
	for (i = 0; i < opt.nlisten; i++) {
		if ((rc = xaddr_parse(opt.listen[i], &srv.addr[i])) !=
		    XADDR_OK)
			fatalx("--listen %s: %s", opt.listen[i],
			    xaddr_strerror(rc));
		rc = xaddr_listen(srv.addr[i], VL_BACKLOG, &fd);
		if (rc == XADDR_E_SYSTEM)
			fatal("listen %s", xaddr_str(srv.addr[i]));
		if (rc != XADDR_OK)
			fatalx("listen %s: %s", xaddr_str(srv.addr[i]),
			    xaddr_strerror(rc));
		srv.lis[i].kind = EP_LISTENER;
		srv.lis[i].fd = fd;
		ep_add(fd, EPOLLIN, &srv.lis[i]);
		log_debug("listening on %s", xaddr_str(srv.addr[i]));
	}
	while (!stopping) {
		tmo = srv.paused ? ms_until(srv.resume_at, now_ns()) : -1;
		n = epoll_wait(epfd, evs, VL_EVENTS, tmo);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			fatal("epoll_wait");
		}
		if (srv.paused && now_ns() >= srv.resume_at) {
			srv.paused = 0;
			for (i = 0; i < opt.nlisten; i++)
				ep_add(srv.lis[i].fd, EPOLLIN, &srv.lis[i]);
		}
		for (k = 0; k < n; k++) {
			p = evs[k].data.ptr;
			e = evs[k].events;
			if (p->kind == EP_LISTENER) {
				serve_accept(p);
				continue;
			}
			/* A write may close the connection: one or other. */
			if (e & EPOLLOUT)
				sconn_write((struct sconn *)p);
			else if (e & (EPOLLIN | EPOLLHUP | EPOLLERR))
				sconn_read((struct sconn *)p);
		}
	}
	for (i = 0; i < opt.nlisten; i++) {
		xaddr_unlisten(srv.addr[i]);
		xaddr_free(srv.addr[i]);
	}
	printf("{\"mode\":\"serve\",\"conns\":%" PRIu64 ",\"bytes_in\":%"
	    PRIu64 ",\"bytes_out\":%" PRIu64 "}\n", srv.conns, srv.bytes_in,
	    srv.bytes_out);
	return (0);
}

/* --- clients ------------------------------------------------------ */

/* Start a connect to the target; -1 with errno on failure. */
static int
conn_start(void)
{
	int	fd, rc;

	rc = xaddr_connect(target, &fd, NULL);
	if (rc == XADDR_E_SYSTEM)
		return (-1);
	if (rc != XADDR_OK)
		fatalx("connect %s: %s", xaddr_str(target),
		    xaddr_strerror(rc));
	return (fd);
}

/* Connect and wait until connected, or exit saying why. */
static int
conn_wait(void)
{
	struct pollfd	pfd;
	socklen_t	len = sizeof(int);
	int		fd, err = 0, n;

	if ((fd = conn_start()) == -1)
		fatal("connect %s", xaddr_str(target));
	pfd.fd = fd;
	pfd.events = POLLOUT;
	do
		n = poll(&pfd, 1, VL_CONNECT_MS);
	while (n == -1 && errno == EINTR);
	if (n == 0)
		fatalx("connect %s: timed out after %d ms", xaddr_str(target),
		    VL_CONNECT_MS);
	if (n == -1)
		fatal("poll");
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		fatal("getsockopt SO_ERROR");
	if (err != 0)
		fatalx("connect %s: %s", xaddr_str(target), strerror(err));
	return (fd);
}

/* Write all of BUF to a blocking socket, or exit. */
static void
write_full(int fd, const uint8_t *buf, size_t len, const char *what)
{
	ssize_t	n;

	while (len > 0) {
		if ((n = write(fd, buf, len)) == -1) {
			if (errno == EINTR)
				continue;
			fatal("%s: write", what);
		}
		buf += n;
		len -= (size_t)n;
	}
}

/* Read exactly LEN bytes from a blocking socket, or exit. */
static void
read_full(int fd, uint8_t *buf, size_t len, const char *what)
{
	ssize_t	n;

	while (len > 0) {
		if ((n = read(fd, buf, len)) == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				fatalx("%s: no echo within %d ms", what,
				    VL_CONNECT_MS);
			fatal("%s: read", what);
		}
		if (n == 0)
			fatalx("%s: the server closed the connection", what);
		buf += n;
		len -= (size_t)n;
	}
}

/* Sort helper for latencies. */
static int
u64_cmp(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x < y ? -1 : x > y);
}

/* Nearest-rank percentile Q/10000 of N sorted samples, in us. */
static double
pct_us(const uint64_t *v, size_t n, u_int q)
{
	size_t	i;

	if (n == 0)
		return (0);
	i = (size_t)(((uint64_t)q * n + 9999) / 10000);
	if (i == 0)
		i = 1;
	if (i > n)
		i = n;
	return ((double)v[i - 1] / 1000.0);
}

/* One bulk stream. */
struct stream {
	struct ep	 ep;
	u_int		 idx;
	uint64_t	 bytes;
};

/* Whether one of the streams has moved nothing yet. */
static int
idle_stream(const struct stream *st)
{
	u_int	i;

	for (i = 0; i < opt.streams; i++)
		if (st[i].bytes == 0)
			return (1);
	return (0);
}

/* Throughput: N streams one way for --seconds, after a warm-up. */
static int
bulk_main(void)
{
	struct epoll_event	 evs[VL_EVENTS];
	struct stream		*st, *s;
	uint64_t		 t0, tw = 0, tend, now, bytes = 0, base = 0;
	double			 warm, win;
	u_int			 i;
	int			 n, k, warmed = 0;
	ssize_t			 r;
	uint8_t			 sel;

	warm = opt.warmup >= 0 ? opt.warmup : opt.seconds * 0.2;
	if (opt.warmup < 0 && warm > 1.0)
		warm = 1.0;
	if (warm >= opt.seconds)
		fatalx("--warmup %g must be shorter than --seconds %g", warm,
		    opt.seconds);
	st = xcalloc(opt.streams, sizeof(*st));
	sel = opt.up ? SEL_SINK : SEL_SOURCE;
	for (i = 0; i < opt.streams; i++) {
		st[i].idx = i;
		st[i].ep.fd = conn_wait();
		write_full(st[i].ep.fd, &sel, 1, "selector");
		ep_add(st[i].ep.fd, opt.up ? EPOLLOUT : EPOLLIN, &st[i].ep);
	}
	t0 = now = now_ns();
	tend = t0 + (uint64_t)(opt.seconds * NSEC);
	/*
	 * Past the end, go on (for up to VL_OVERRUN_S more) until time has
	 * passed since the warm-up ended and every stream has moved bytes:
	 * on a loaded machine one wait can outlast a short run.
	 */
	while (now < tend || ((!warmed || now == tw || idle_stream(st)) &&
	    now < tend + (uint64_t)VL_OVERRUN_S * NSEC)) {
		n = epoll_wait(epfd, evs, VL_EVENTS, ms_until(tend, now));
		if (n == -1 && errno != EINTR)
			fatal("epoll_wait");
		if (stopping)
			fatalx("interrupted");
		for (k = 0; k < n; k++) {
			s = (struct stream *)evs[k].data.ptr;
			if (opt.up)
				r = write(s->ep.fd, scratch, VL_IO);
			else
				r = read(s->ep.fd, scratch, VL_IO);
			if (r == -1) {
				if (errno == EAGAIN || errno == EINTR)
					continue;
				fatal("stream %u: %s after %" PRIu64 " bytes",
				    s->idx, opt.up ? "write" : "read",
				    s->bytes);
			}
			if (r == 0)
				fatalx("stream %u: the server closed it after "
				    "%" PRIu64 " bytes", s->idx, s->bytes);
			s->bytes += (uint64_t)r;
			bytes += (uint64_t)r;
		}
		now = now_ns();
		if (!warmed && now >= t0 + (uint64_t)(warm * NSEC)) {
			warmed = 1;
			tw = now;
			base = bytes;
		}
	}
	if (!warmed || now == tw)
		fatalx("the run ended before its warm-up did");
	win = (double)(now - tw) / NSEC;
	bytes -= base;
	for (i = 0; i < opt.streams; i++)
		if (st[i].bytes == 0)
			fatalx("stream %u moved no bytes", i);
	printf("{\"mode\":\"bulk\",\"dir\":\"%s\",\"streams\":%u,"
	    "\"seconds\":%.3f,\"window_s\":%.3f,\"bytes\":%" PRIu64 ","
	    "\"gbit_s\":%.3f}\n", opt.up ? "up" : "down", opt.streams,
	    opt.seconds, win, bytes, (double)bytes * 8 / win / 1e9);
	for (i = 0; i < opt.streams; i++)
		close(st[i].ep.fd);
	free(st);
	return (0);
}

/* Ping-pong latency on one connection. */
static int
rtt_main(void)
{
	struct timeval	 tv = { VL_CONNECT_MS / 1000, 0 };
	uint64_t	*v, t, sum = 0;
	uint8_t		*msg, sel = SEL_ECHO;
	u_int		 i, warm;
	int		 fd, fl;

	fd = conn_wait();
	if ((fl = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == -1)
		fatal("fcntl");
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	write_full(fd, &sel, 1, "selector");
	msg = xcalloc(1, opt.size);
	v = xcalloc(opt.count, sizeof(*v));
	/* Warm the path (caches, buffers, a relay's session) first. */
	warm = opt.count / 10 < 1000 ? opt.count / 10 : 1000;
	for (i = 0; i < warm + opt.count; i++) {
		if (stopping)
			fatalx("interrupted");
		t = now_ns();
		write_full(fd, msg, opt.size, "ping");
		read_full(fd, msg, opt.size, "pong");
		if (i >= warm) {
			v[i - warm] = now_ns() - t;
			sum += v[i - warm];
		}
	}
	close(fd);
	qsort(v, opt.count, sizeof(*v), u64_cmp);
	printf("{\"mode\":\"rtt\",\"size\":%u,\"count\":%u,"
	    "\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,"
	    "\"mean_us\":%.1f,\"max_us\":%.1f}\n", opt.size, opt.count,
	    pct_us(v, opt.count, 5000), pct_us(v, opt.count, 9900),
	    pct_us(v, opt.count, 9990),
	    (double)sum / opt.count / 1000.0,
	    (double)v[opt.count - 1] / 1000.0);
	free(v);
	free(msg);
	return (0);
}

/* setup and idle share the session machine below. */
static struct {
	struct ping	*p;
	u_int		 n;		/* slots */
	int		 hold;		/* idle: keep sessions open */
	uint8_t		 msg[1 + VL_SIZE_MAX];	/* selector + message */
	uint64_t	 ok;
	uint64_t	 errors;
	uint64_t	 again;		/* connects refused with EAGAIN */
	u_int		 waiting;	/* slots to (re)start */
	char		 last_error[128];
	uint64_t	*lat;
	size_t		 nlat;
	size_t		 lat_cap;
} pg;

/* Remember why a session failed, for the final message. */
static void
ping_error(struct ping *p, const char *what, int err)
{
	pg.errors++;
	snprintf(pg.last_error, sizeof(pg.last_error), "%s: %s", what,
	    err != 0 ? strerror(err) : "closed by the server");
	log_debug("session: %s", pg.last_error);
	if (p->ep.fd != -1)
		close(p->ep.fd);
	p->ep.fd = -1;
	p->state = PING_FREE;
	pg.waiting++;
}

/* Start slot P's next session; 0 if started, -1 if it must wait. */
static int
ping_start(struct ping *p)
{
	int	fd;

	if ((fd = conn_start()) == -1) {
		if (errno == EAGAIN) {
			pg.again++;	/* unix backlog full: retry soon */
			return (-1);
		}
		ping_error(p, "connect", errno);
		pg.waiting--;	/* ping_error queued it; caller retries */
		return (-1);
	}
	p->ep.kind = EP_PING;
	p->ep.fd = fd;
	p->state = PING_CONNECT;
	p->got = 0;
	p->t0 = now_ns();
	ep_add(fd, EPOLLOUT, &p->ep);
	return (0);
}

/* A session event: connected, echo arriving, or an idle one dropped. */
static void
ping_event(struct ping *p)
{
	socklen_t	len = sizeof(int);
	uint8_t		buf[4096];
	ssize_t		n;
	size_t		want = opt.size;
	int		err = 0;

	switch (p->state) {
	case PING_CONNECT:
		if (getsockopt(p->ep.fd, SOL_SOCKET, SO_ERROR, &err,
		    &len) == -1)
			err = errno;
		if (err != 0) {
			ping_error(p, "connect", err);
			return;
		}
		n = write(p->ep.fd, pg.msg, 1 + want);
		if (n != (ssize_t)(1 + want)) {
			ping_error(p, "write", n == -1 ? errno : EIO);
			return;
		}
		p->state = PING_ECHO;
		ep_mod(p->ep.fd, EPOLLIN, &p->ep);
		return;
	case PING_ECHO:
		n = read(p->ep.fd, buf, sizeof(buf));
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			ping_error(p, "read", n == 0 ? 0 : errno);
			return;
		}
		p->got += (size_t)n;
		if (p->got < want)
			return;
		if (pg.nlat < VL_SAMPLES_MAX) {
			if (pg.nlat == pg.lat_cap) {
				pg.lat_cap = pg.lat_cap ? pg.lat_cap * 2 : 4096;
				pg.lat = xreallocarray(pg.lat, pg.lat_cap,
				    sizeof(*pg.lat));
			}
			pg.lat[pg.nlat++] = now_ns() - p->t0;
		}
		pg.ok++;
		if (pg.hold) {
			p->state = PING_IDLE;
			return;
		}
		close(p->ep.fd);
		p->ep.fd = -1;
		p->state = PING_FREE;
		pg.waiting++;
		return;
	case PING_IDLE:
		n = read(p->ep.fd, buf, sizeof(buf));
		if (n > 0 || (n == -1 && (errno == EAGAIN || errno == EINTR)))
			return;
		fatalx("an idle session was closed by the other side (%s); "
		    "the measurement is void", n == 0 ? "EOF" :
		    strerror(errno));
	}
}

/* Give up on sessions stuck longer than VL_SESSION_NS. */
static void
ping_expire(uint64_t now)
{
	u_int	i;

	for (i = 0; i < pg.n; i++)
		if ((pg.p[i].state == PING_CONNECT ||
		    pg.p[i].state == PING_ECHO) &&
		    now - pg.p[i].t0 > VL_SESSION_NS)
			ping_error(&pg.p[i], "no echo", ETIMEDOUT);
}

/* (Re)start every free slot. */
static void
ping_refill(void)
{
	u_int	i;

	for (i = 0; i < pg.n && pg.waiting > 0; i++) {
		if (pg.p[i].state != PING_FREE)
			continue;
		if (ping_start(&pg.p[i]) == -1)
			break;	/* EAGAIN or an error: next turn */
		pg.waiting--;
	}
}

/* Set up N slots and the message for setup/idle. */
static void
ping_init(u_int n, int hold)
{
	u_int	i;

	pg.n = n;
	pg.hold = hold;
	pg.p = xcalloc(n, sizeof(*pg.p));
	for (i = 0; i < n; i++)
		pg.p[i].ep.fd = -1;
	pg.waiting = n;
	pg.msg[0] = SEL_ECHO;
	memset(pg.msg + 1, 'x', opt.size);
}

/* Session setup rate: connect, one echo, close, C at a time. */
static int
setup_main(void)
{
	struct epoll_event	evs[VL_EVENTS];
	uint64_t		t0, tend, now, next_expire;
	double			secs;
	int			n, k, tmo;

	ping_init(opt.concurrency ? opt.concurrency : 16, 0);
	t0 = now = now_ns();
	tend = t0 + (uint64_t)(opt.seconds * NSEC);
	next_expire = t0 + NSEC / 10;
	/* Past the end, go on until one completes (see bulk_main). */
	while (now < tend || (pg.ok == 0 &&
	    now < tend + (uint64_t)VL_OVERRUN_S * NSEC)) {
		ping_refill();
		tmo = now < tend ? ms_until(tend, now) : 1;
		if (pg.waiting > 0 && tmo > 1)
			tmo = 1;	/* a slot waits for a retry */
		n = epoll_wait(epfd, evs, VL_EVENTS, tmo);
		if (n == -1 && errno != EINTR)
			fatal("epoll_wait");
		if (stopping)
			fatalx("interrupted");
		for (k = 0; k < n; k++)
			ping_event(evs[k].data.ptr);
		now = now_ns();
		if (now >= next_expire) {
			ping_expire(now);
			next_expire = now + NSEC / 10;
		}
	}
	secs = (double)(now - t0) / NSEC;
	if (pg.ok == 0)
		fatalx("no session completed in %.2f s (%" PRIu64 " errors; "
		    "last: %s)", secs, pg.errors, pg.last_error[0] ?
		    pg.last_error : "none");
	if (pg.errors > 0)
		log_warnx("%" PRIu64 " sessions failed; last: %s", pg.errors,
		    pg.last_error);
	qsort(pg.lat, pg.nlat, sizeof(*pg.lat), u64_cmp);
	printf("{\"mode\":\"setup\",\"concurrency\":%u,\"seconds\":%.3f,"
	    "\"sessions\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"per_s\":%.1f,"
	    "\"p50_us\":%.1f,\"p99_us\":%.1f}\n", pg.n, secs, pg.ok,
	    pg.errors, (double)pg.ok / secs, pct_us(pg.lat, pg.nlat, 5000),
	    pct_us(pg.lat, pg.nlat, 9900));
	return (0);
}

/* Write "ready" to the hold file (via a rename, so readers see all). */
static void
hold_ready(void)
{
	char	*tmp;
	FILE	*f;

	xasprintf(&tmp, "%s.tmp", opt.hold_file);
	if ((f = fopen(tmp, "w")) == NULL)
		fatal("--hold-file %s", tmp);
	fprintf(f, "ready\n");
	if (fclose(f) != 0 || rename(tmp, opt.hold_file) == -1)
		fatal("--hold-file %s", opt.hold_file);
	free(tmp);
}

/* Open N echoed sessions and hold them until SIGTERM. */
static int
idle_main(void)
{
	struct epoll_event	 evs[VL_EVENTS];
	struct ping		*held;
	uint64_t		 t0, now, deadline, next_expire;
	u_int			 i, c;
	int			 n, k, tmo;

	if (opt.hold_file == NULL)
		fatalx("idle needs --hold-file FILE");
	c = opt.concurrency ? opt.concurrency : 64;
	if (c > opt.sessions)
		c = opt.sessions;
	/* One slot per held session; at most C of them opening at once. */
	ping_init(opt.sessions, 1);
	held = pg.p;
	t0 = now = now_ns();
	deadline = t0 + (uint64_t)(opt.timeout * NSEC);
	next_expire = t0 + NSEC / 10;
	while (pg.ok < opt.sessions) {
		/* Start at most C at once: count those in flight. */
		u_int	inflight = 0;

		for (i = 0; i < pg.n; i++)
			if (held[i].state == PING_CONNECT ||
			    held[i].state == PING_ECHO)
				inflight++;
		for (i = 0; i < pg.n && inflight < c; i++)
			if (held[i].state == PING_FREE) {
				if (ping_start(&held[i]) == -1)
					break;
				pg.waiting--;
				inflight++;
			}
		if (pg.errors > 0)
			fatalx("session %" PRIu64 " of %u failed: %s",
			    pg.ok + 1, opt.sessions, pg.last_error);
		tmo = ms_until(deadline, now);
		if (tmo > 100)
			tmo = 100;
		if (inflight < c && pg.waiting > 0 && tmo > 1)
			tmo = 1;
		n = epoll_wait(epfd, evs, VL_EVENTS, tmo);
		if (n == -1 && errno != EINTR)
			fatal("epoll_wait");
		if (stopping)
			fatalx("interrupted after %" PRIu64 " sessions",
			    pg.ok);
		for (k = 0; k < n; k++)
			ping_event(evs[k].data.ptr);
		now = now_ns();
		if (now >= deadline)
			fatalx("only %" PRIu64 " of %u sessions open after "
			    "%g s", pg.ok, opt.sessions, opt.timeout);
		if (now >= next_expire) {
			ping_expire(now);
			next_expire = now + NSEC / 10;
		}
	}
	printf("{\"mode\":\"idle\",\"sessions\":%u,\"open_s\":%.3f}\n",
	    opt.sessions, (double)(now - t0) / NSEC);
	fflush(stdout);
	hold_ready();
	while (!stopping) {
		n = epoll_wait(epfd, evs, VL_EVENTS, -1);
		if (n == -1 && errno != EINTR)
			fatal("epoll_wait");
		for (k = 0; k < n; k++)
			ping_event(evs[k].data.ptr);
	}
	return (0);
}

/* --- main --------------------------------------------------------- */

/* Say how to call us and exit 1. */
static void
usage(void)
{
	fprintf(stderr,
	    "usage: vload serve --listen ADDR [--listen ADDR ...] "
	    "[--mode auto|echo|sink|source]\n"
	    "       vload bulk --connect ADDR [--streams N] [--seconds S] "
	    "[--dir up|down]\n"
	    "\t[--warmup S]\n"
	    "       vload rtt --connect ADDR [--size B] [--count N]\n"
	    "       vload setup --connect ADDR [--seconds S] "
	    "[--concurrency C] [--size B]\n"
	    "       vload idle --connect ADDR --sessions N --hold-file F "
	    "[--concurrency C]\n"
	    "\t[--timeout S]\n"
	    "common: [--vsock-dir DIR --vsock-cid CID] [-v]\n");
	exit(1);
}

/* Subcommands: their accepted options and entry points. */
static const struct {
	const char	*name;
	uint32_t	 opts;
	int		(*fn)(void);
	int		 client;
} vl_cmds[] = {
	{ "serve", OB(OPT_LISTEN) | OB(OPT_MODE), serve_main, 0 },
	{ "bulk", OB(OPT_CONNECT) | OB(OPT_STREAMS) | OB(OPT_SECONDS) |
	    OB(OPT_DIR) | OB(OPT_WARMUP), bulk_main, 1 },
	{ "rtt", OB(OPT_CONNECT) | OB(OPT_SIZE) | OB(OPT_COUNT), rtt_main,
	    1 },
	{ "setup", OB(OPT_CONNECT) | OB(OPT_SECONDS) | OB(OPT_CONCURRENCY) |
	    OB(OPT_SIZE), setup_main, 1 },
	{ "idle", OB(OPT_CONNECT) | OB(OPT_SESSIONS) | OB(OPT_HOLD_FILE) |
	    OB(OPT_CONCURRENCY) | OB(OPT_SIZE) | OB(OPT_TIMEOUT), idle_main,
	    1 },
};

/* Apply option CH with ARG. */
static void
opt_set(int ch, const char *arg)
{
	switch (ch) {
	case OPT_LISTEN:
		if (opt.nlisten == VL_LISTEN_MAX)
			fatalx("at most %d --listen", VL_LISTEN_MAX);
		opt.listen[opt.nlisten++] = arg;
		break;
	case OPT_MODE:
		if (strcmp(arg, "auto") == 0)
			opt.mode = 0;
		else if (strcmp(arg, "echo") == 0)
			opt.mode = SEL_ECHO;
		else if (strcmp(arg, "sink") == 0)
			opt.mode = SEL_SINK;
		else if (strcmp(arg, "source") == 0)
			opt.mode = SEL_SOURCE;
		else
			fatalx("--mode %s: want auto, echo, sink or source",
			    arg);
		break;
	case OPT_CONNECT:
		opt.connect = arg;
		break;
	case OPT_STREAMS:
		opt.streams = num_arg("streams", arg, 1, VL_STREAMS_MAX);
		break;
	case OPT_SECONDS:
		opt.seconds = sec_arg("seconds", arg, 0.01, 86400);
		break;
	case OPT_WARMUP:
		opt.warmup = sec_arg("warmup", arg, 0, 3600);
		break;
	case OPT_DIR:
		if (strcmp(arg, "up") == 0)
			opt.up = 1;
		else if (strcmp(arg, "down") == 0)
			opt.up = 0;
		else
			fatalx("--dir %s: want up (client to server) or "
			    "down", arg);
		break;
	case OPT_SIZE:
		opt.size = num_arg("size", arg, 1, VL_SIZE_MAX);
		break;
	case OPT_COUNT:
		opt.count = num_arg("count", arg, 1, 100000000);
		break;
	case OPT_CONCURRENCY:
		opt.concurrency = num_arg("concurrency", arg, 1,
		    VL_SLOTS_MAX);
		break;
	case OPT_SESSIONS:
		opt.sessions = num_arg("sessions", arg, 1, VL_SESSIONS_MAX);
		break;
	case OPT_HOLD_FILE:
		opt.hold_file = arg;
		break;
	case OPT_TIMEOUT:
		opt.timeout = sec_arg("timeout", arg, 0.1, 86400);
		break;
	case OPT_VSOCK_DIR:
		opt.vsock_dir = arg;
		break;
	case OPT_VSOCK_CID:
		opt.vsock_cid = num_arg("vsock-cid", arg, 0, UINT32_MAX - 1);
		opt.vsock_cid_set = 1;
		break;
	}
}

/* Parse the command line, set up, and run the subcommand. */
int
main(int argc, char **argv)
{
	size_t	i;
	int	ch, rc;

	log_init("vload", LOG_LEVEL_WARN);
	if (argc < 2)
		usage();
	for (i = 0; i < sizeof(vl_cmds) / sizeof(vl_cmds[0]); i++)
		if (strcmp(argv[1], vl_cmds[i].name) == 0)
			break;
	if (i == sizeof(vl_cmds) / sizeof(vl_cmds[0]))
		usage();
	argc--;
	argv++;
	while ((ch = getopt_long(argc, argv, "vh", vl_options, NULL)) != -1) {
		if (ch == 'v') {
			log_setlevel(LOG_LEVEL_DEBUG);
			continue;
		}
		if (ch < OPT_LISTEN ||
		    !((vl_cmds[i].opts | OPTS_COMMON) & OB(ch)))
			usage();
		opt_set(ch, optarg);
	}
	if (optind != argc)
		usage();
	if (vl_cmds[i].client && opt.connect == NULL)
		fatalx("%s needs --connect ADDR", vl_cmds[i].name);
	if (strcmp(vl_cmds[i].name, "idle") == 0 && opt.sessions == 0)
		fatalx("idle needs --sessions N");

	if (opt.vsock_dir != NULL || opt.vsock_cid_set) {
		if (opt.vsock_dir == NULL || !opt.vsock_cid_set)
			fatalx("--vsock-dir and --vsock-cid go together");
		rc = xaddr_vsock_emulate(opt.vsock_dir, opt.vsock_cid);
		if (rc == XADDR_E_SYSTEM)
			fatal("vsock emulation in %s", opt.vsock_dir);
		if (rc != XADDR_OK)
			fatalx("vsock emulation in %s: %s", opt.vsock_dir,
			    xaddr_strerror(rc));
	}
	if (vl_cmds[i].client &&
	    (rc = xaddr_parse(opt.connect, &target)) != XADDR_OK)
		fatalx("--connect %s: %s", opt.connect, xaddr_strerror(rc));

	signals_setup();
	raise_nofile();
	if ((epfd = epoll_create1(EPOLL_CLOEXEC)) == -1)
		fatal("epoll_create1");
	scratch = xcalloc(1, VL_IO);
	rc = vl_cmds[i].fn();
	fflush(stdout);
	xaddr_free(target);
	free(scratch);
	close(epfd);
	return (rc);
}
