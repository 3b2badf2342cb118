/*
 * test_xaddr.c -- unit tests for transport addresses (xaddr.h).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <linux/vm_sockets.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "xaddr.h"

#define WAIT_MS		5000

/* One row of the parse table. */
struct parse_case {
	const char	*in;
	int		 rv;
	const char	*canon;
	enum xaddr_type	 type;
	uint32_t	 cid;
	uint32_t	 port;
};

static const struct parse_case good_cases[] = {
	{ "tcp://127.0.0.1:7000", XADDR_OK, "tcp://127.0.0.1:7000",
	    XADDR_TCP, 0, 7000 },
	{ "tcp://10.0.0.1:1", XADDR_OK, "tcp://10.0.0.1:1", XADDR_TCP, 0, 1 },
	{ "tcp://10.0.0.1:65535", XADDR_OK, "tcp://10.0.0.1:65535",
	    XADDR_TCP, 0, 65535 },
	{ "tcp://10.0.0.1:007000", XADDR_OK, "tcp://10.0.0.1:7000",
	    XADDR_TCP, 0, 7000 },
	{ "tcp://0.0.0.0:80", XADDR_OK, "tcp://0.0.0.0:80", XADDR_TCP, 0, 80 },
	{ "tcp://[::1]:7000", XADDR_OK, "tcp://[::1]:7000", XADDR_TCP, 0,
	    7000 },
	{ "tcp://[0:0:0:0:0:0:0:1]:7000", XADDR_OK, "tcp://[::1]:7000",
	    XADDR_TCP, 0, 7000 },
	{ "tcp://[::]:443", XADDR_OK, "tcp://[::]:443", XADDR_TCP, 0, 443 },
	{ "tcp://[2001:DB8::A]:1", XADDR_OK, "tcp://[2001:db8::a]:1",
	    XADDR_TCP, 0, 1 },
	{ "tcp://[::ffff:192.0.2.1]:80", XADDR_OK,
	    "tcp://[::ffff:192.0.2.1]:80", XADDR_TCP, 0, 80 },
	{ "unix:/tmp/x.sock", XADDR_OK, "unix:/tmp/x.sock", XADDR_UNIX, 0, 0 },
	{ "unix:relative/s", XADDR_OK, "unix:relative/s", XADDR_UNIX, 0, 0 },
	{ "vsock://any:1024", XADDR_OK, "vsock://any:1024", XADDR_VSOCK,
	    XADDR_CID_ANY, 1024 },
	{ "vsock://5:1024", XADDR_OK, "vsock://5:1024", XADDR_VSOCK, 5,
	    1024 },
	{ "vsock://0:0", XADDR_OK, "vsock://0:0", XADDR_VSOCK, 0, 0 },
	{ "vsock://2:4294967294", XADDR_OK, "vsock://2:4294967294",
	    XADDR_VSOCK, 2, 4294967294U },
	{ "vsock://4294967295:7", XADDR_OK, "vsock://any:7", XADDR_VSOCK,
	    XADDR_CID_ANY, 7 },
	{ "vsock://0005:01", XADDR_OK, "vsock://5:1", XADDR_VSOCK, 5, 1 },
};

static const struct parse_case bad_cases[] = {
	{ "", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
	{ "127.0.0.1:7000", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
	{ "udp://127.0.0.1:7000", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
	{ "TCP://127.0.0.1:7000", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
	{ "tcp:127.0.0.1:7000", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
	{ "tcp://", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
	{ "tcp://127.0.0.1", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
	{ "tcp://127.0.0.1:", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
	{ "tcp://127.0.0.1:0", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
	{ "tcp://127.0.0.1:65536", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
	{ "tcp://127.0.0.1:99999999999", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
	{ "tcp://127.0.0.1:7000x", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
	{ "tcp://127.0.0.1:7000 ", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
	{ "tcp://127.0.0.1: 7000", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
	{ "tcp://127.0.0.1:+7000", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
	{ "tcp://127.0.0.1:-1", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
	{ "tcp://127.0.0.1:7000/x", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
	{ "tcp://127.0.0.1:70:00", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
	{ "tcp://:7000", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
	{ "tcp://host name:7000", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
	{ "tcp://::1:7000", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
	{ "tcp://[::1]", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
	{ "tcp://[::1]:", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
	{ "tcp://[::1]7000", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
	{ "tcp://[::1:7000", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
	{ "tcp://[]:7000", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
	{ "tcp://[127.0.0.1]:7000", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
	{ "tcp://[::g]:7000", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
	{ "tcp://[::1]:0", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
	{ "unix:", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
	{ "unix", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
	{ "vsock://", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
	{ "vsock://any", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
	{ "vsock://any:", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
	{ "vsock://:5", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
	{ "vsock://ANY:5", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
	{ "vsock://anyx:5", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
	{ "vsock://x:5", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
	{ "vsock://-1:5", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
	{ "vsock://4294967296:5", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
	{ "vsock://2:4294967295", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
	{ "vsock://2:5x", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
	{ "vsock://2:5:6", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
	{ "vsock://2:0x10", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
	{ "vsock:2:5", XADDR_E_SYNTAX, NULL, 0, 0, 0 },
};

/* Remove one entry of a scratch tree (nftw callback). */
static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return (remove(path));
}

/* A fresh scratch directory under /tmp. */
static void
mktmp(char *buf, size_t len)
{
	assert_true(snprintf(buf, len, "/tmp/xaddr-test.XXXXXX") < (int)len);
	assert_non_null(mkdtemp(buf));
}

/* rm -rf of a scratch directory. */
static void
rmtmp(const char *dir)
{
	assert_int_equal(nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
}

/* Parse that must succeed. */
static struct xaddr *
must_parse(const char *s)
{
	struct xaddr	*xa = NULL;
	int		 rv;

	rv = xaddr_parse(s, &xa);
	if (rv != XADDR_OK)
		fail_msg("parse %s: %s", s, xaddr_strerror(rv));
	assert_non_null(xa);
	return (xa);
}

/* Wait for a non-blocking connect and insist that it worked. */
static void
wait_connected(int fd)
{
	struct pollfd	pfd = { .fd = fd, .events = POLLOUT };
	socklen_t	len = sizeof(int);
	int		err = -1;

	assert_int_equal(poll(&pfd, 1, WAIT_MS), 1);
	assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len), 0);
	assert_int_equal(err, 0);
}

/* accept() one connection within the deadline. */
static int
accept_one(int lfd, struct sockaddr_storage *ss, socklen_t *len)
{
	struct pollfd	pfd = { .fd = lfd, .events = POLLIN };
	int		fd;

	assert_int_equal(poll(&pfd, 1, WAIT_MS), 1);
	*len = sizeof(*ss);
	fd = accept4(lfd, (struct sockaddr *)ss, len, SOCK_CLOEXEC);
	assert_true(fd >= 0);
	return (fd);
}

/* Send MSG on one end and insist it arrives intact on the other. */
static void
flow(int from, int to, const char *msg)
{
	struct pollfd	pfd = { .fd = to, .events = POLLIN };
	char		buf[64];
	size_t		len = strlen(msg);

	assert_int_equal(write(from, msg, len), (ssize_t)len);
	assert_int_equal(poll(&pfd, 1, WAIT_MS), 1);
	assert_int_equal(read(to, buf, sizeof(buf)), (ssize_t)len);
	assert_memory_equal(buf, msg, len);
}

/* A loopback TCP port nobody is listening on right now. */
static uint16_t
free_port(int family)
{
	struct sockaddr_storage	ss;
	socklen_t		len;
	int			fd;

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET6) {
		((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
		len = sizeof(struct sockaddr_in6);
	} else {
		((struct sockaddr_in *)&ss)->sin_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_addr.s_addr =
		    htonl(INADDR_LOOPBACK);
		len = sizeof(struct sockaddr_in);
	}
	assert_true((fd = socket(family, SOCK_STREAM, 0)) >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&ss, len), 0);
	len = sizeof(ss);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	close(fd);
	if (family == AF_INET6)
		return (ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
	return (ntohs(((struct sockaddr_in *)&ss)->sin_port));
}

/* Entries in a directory other than . and .. */
static int
count_entries(const char *dir)
{
	DIR		*d;
	struct dirent	*de;
	int		 n = 0;

	if ((d = opendir(dir)) == NULL)
		return (-1);
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return (n);
}

/* Good strings parse to the expected type, fields and canonical text. */
static void
test_parse_good(void **state)
{
	const struct parse_case	*c;
	struct xaddr		*xa, *again;
	size_t			 i;

	(void)state;
	for (i = 0; i < sizeof(good_cases) / sizeof(good_cases[0]); i++) {
		c = &good_cases[i];
		xa = must_parse(c->in);
		assert_int_equal(xaddr_type(xa), c->type);
		assert_string_equal(xaddr_str(xa), c->canon);
		assert_int_equal(xaddr_cid(xa), c->cid);
		assert_int_equal(xaddr_port(xa), c->port);
		/* The canonical form is a fixed point. */
		again = must_parse(xaddr_str(xa));
		assert_string_equal(xaddr_str(again), c->canon);
		assert_true(xaddr_equal(xa, again));
		xaddr_free(again);
		xaddr_free(xa);
	}
}

/* Bad strings give the expected code and leave the out-param NULL. */
static void
test_parse_bad(void **state)
{
	const struct parse_case	*c;
	struct xaddr		*xa;
	size_t			 i;
	int			 rv;

	(void)state;
	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		c = &bad_cases[i];
		xa = (struct xaddr *)&xa;	/* must be cleared */
		rv = xaddr_parse(c->in, &xa);
		if (rv != c->rv)
			fail_msg("\"%s\": got %d want %d", c->in, rv, c->rv);
		assert_null(xa);
	}
	xa = (struct xaddr *)&xa;
	assert_int_equal(xaddr_parse(NULL, &xa), XADDR_E_SYNTAX);
	assert_null(xa);
}

/*
 * Host names resolve at parse time; the canonical text is numeric.
 * xaddr_parse_numeric() refuses them instead.
 */
static void
test_parse_hostname(void **state)
{
	struct xaddr	*xa = NULL;
	const char	*s;

	(void)state;
	xa = must_parse("tcp://localhost:7000");
	assert_int_equal(xaddr_type(xa), XADDR_TCP);
	assert_int_equal(xaddr_port(xa), 7000);
	s = xaddr_str(xa);
	assert_true(strcmp(s, "tcp://127.0.0.1:7000") == 0 ||
	    strcmp(s, "tcp://[::1]:7000") == 0);
	xaddr_free(xa);

	xa = (struct xaddr *)&xa;
	assert_int_equal(xaddr_parse("tcp://nonexistent.invalid:80", &xa),
	    XADDR_E_RESOLVE);
	assert_null(xa);

	/* Numeric only: a name (even one that resolves) is never looked up. */
	xa = (struct xaddr *)&xa;
	assert_int_equal(xaddr_parse_numeric("tcp://localhost:7000", &xa),
	    XADDR_E_RESOLVE);
	assert_null(xa);
	assert_int_equal(xaddr_parse_numeric("tcp://10.0.0.1:7", &xa),
	    XADDR_OK);
	assert_string_equal(xaddr_str(xa), "tcp://10.0.0.1:7");
	xaddr_free(xa);
	assert_int_equal(xaddr_parse_numeric("tcp://[::1]:7", &xa), XADDR_OK);
	assert_string_equal(xaddr_str(xa), "tcp://[::1]:7");
	xaddr_free(xa);
	assert_int_equal(xaddr_parse_numeric("vsock://3:1024", &xa),
	    XADDR_OK);
	xaddr_free(xa);
	assert_int_equal(xaddr_parse_numeric("tcp://10.0.0.1", &xa),
	    XADDR_E_SYNTAX);
}

/* unix paths must fit sun_path including the terminating NUL. */
static void
test_parse_unix_toolong(void **state)
{
	struct sockaddr_un	 sun;
	struct xaddr		*xa;
	char			 buf[600];
	size_t			 max = sizeof(sun.sun_path) - 1;

	(void)state;
	memcpy(buf, "unix:/", 6);
	memset(buf + 6, 'a', sizeof(buf) - 6);

	buf[5 + max] = '\0';			/* longest that fits */
	xa = must_parse(buf);
	assert_int_equal(strlen(xaddr_path(xa)), max);
	xaddr_free(xa);

	buf[5 + max] = 'a';
	buf[5 + max + 1] = '\0';		/* one too many */
	xa = (struct xaddr *)&xa;
	assert_int_equal(xaddr_parse(buf, &xa), XADDR_E_TOOLONG);
	assert_null(xa);

	buf[5 + max] = 'a';
	buf[sizeof(buf) - 1] = '\0';
	assert_int_equal(xaddr_parse(buf, &xa), XADDR_E_TOOLONG);
	assert_null(xa);
}

/* Loopback: 127/8, ::1 and v4-mapped 127/8 only, tcp only. */
static void
test_loopback(void **state)
{
	static const struct {
		const char	*addr;
		int		 loopback;
	} t[] = {
		{ "tcp://127.0.0.1:9", 1 },
		{ "tcp://127.200.3.4:9", 1 },
		{ "tcp://[::1]:9", 1 },
		{ "tcp://[::ffff:127.0.0.2]:9", 1 },
		{ "tcp://0.0.0.0:9", 0 },
		{ "tcp://[::]:9", 0 },
		{ "tcp://128.0.0.1:9", 0 },
		{ "tcp://10.1.2.3:9", 0 },
		{ "tcp://[::ffff:10.0.0.1]:9", 0 },
		{ "tcp://[::2]:9", 0 },
		{ "unix:/run/x.sock", 0 },
		{ "vsock://2:9", 0 },
	};
	struct xaddr	*xa;
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		xa = must_parse(t[i].addr);
		if (xaddr_loopback(xa) != t[i].loopback)
			fail_msg("%s: loopback %d, want %d", t[i].addr,
			    xaddr_loopback(xa), t[i].loopback);
		xaddr_free(xa);
	}
	assert_false(xaddr_loopback(NULL));
}

/* Accessors, deep copies, equality and the error strings. */
static void
test_accessors(void **state)
{
	struct xaddr	*a, *b, *c, *d;
	const char	*s;
	int		 codes[] = { XADDR_OK, XADDR_E_SYNTAX,
	    XADDR_E_RESOLVE, XADDR_E_SYSTEM, XADDR_E_INUSE, XADDR_E_TOOLONG,
	    XADDR_E_NOVSOCK };
	size_t		 i, j;

	(void)state;
	a = must_parse("unix:/run/vrelay.sock");
	b = xaddr_dup(a);
	assert_ptr_not_equal(a, b);
	assert_true(xaddr_equal(a, b));
	assert_ptr_not_equal(xaddr_path(a), xaddr_path(b));
	assert_string_equal(xaddr_path(b), "/run/vrelay.sock");
	assert_ptr_not_equal(xaddr_str(a), xaddr_str(b));
	xaddr_free(a);		/* the copy must survive the original */
	assert_string_equal(xaddr_str(b), "unix:/run/vrelay.sock");
	assert_int_equal(xaddr_port(b), 0);
	assert_int_equal(xaddr_cid(b), 0);

	c = must_parse("tcp://[::1]:9");
	d = xaddr_dup(c);
	assert_null(xaddr_path(c));
	assert_true(xaddr_equal(c, d));
	assert_false(xaddr_equal(b, c));
	assert_false(xaddr_equal(c, NULL));
	assert_true(xaddr_equal(NULL, NULL));
	xaddr_free(d);
	d = must_parse("tcp://[::1]:10");
	assert_false(xaddr_equal(c, d));
	xaddr_free(c);
	xaddr_free(d);
	xaddr_free(b);

	c = must_parse("vsock://any:5");
	d = must_parse("vsock://4294967295:5");
	assert_true(xaddr_equal(c, d));
	assert_null(xaddr_path(c));
	xaddr_free(c);
	xaddr_free(d);

	xaddr_free(NULL);
	assert_null(xaddr_dup(NULL));
	xaddr_unlisten(NULL);

	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		s = xaddr_strerror(codes[i]);
		assert_non_null(s);
		for (j = 0; j < i; j++)
			assert_string_not_equal(s, xaddr_strerror(codes[j]));
	}
	assert_non_null(xaddr_strerror(-100));
}

/* TCP listen/connect/accept on a loopback address of FAMILY. */
static void
tcp_roundtrip(int family)
{
	struct sockaddr_storage	 ss;
	struct xaddr_peer	 peer;
	struct xaddr		*xa;
	char			 s[64], want[XADDR_PEER_STRLEN];
	socklen_t		 len;
	uint16_t		 port, cport;
	int			 lfd, cfd, afd, on, fl;

	port = free_port(family);
	if (family == AF_INET6)
		snprintf(s, sizeof(s), "tcp://[::1]:%u", port);
	else
		snprintf(s, sizeof(s), "tcp://127.0.0.1:%u", port);
	xa = must_parse(s);
	assert_int_equal(xaddr_listen(xa, 16, &lfd), XADDR_OK);
	assert_true(lfd >= 0);
	fl = fcntl(lfd, F_GETFL);
	assert_true(fl & O_NONBLOCK);
	assert_true(fcntl(lfd, F_GETFD) & FD_CLOEXEC);
	len = sizeof(on);
	assert_int_equal(getsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &on,
	    &len), 0);
	assert_true(on);
	len = sizeof(ss);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&ss, &len), 0);
	assert_int_equal(ss.ss_family, family);

	assert_int_equal(xaddr_connect(xa, &cfd, NULL), XADDR_OK);
	assert_true(cfd >= 0);
	assert_true(fcntl(cfd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(cfd, F_GETFD) & FD_CLOEXEC);
	wait_connected(cfd);
	on = 0;
	len = sizeof(on);
	assert_int_equal(getsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &on,
	    &len), 0);
	assert_true(on);		/* xaddr_tune ran */

	afd = accept_one(lfd, &ss, &len);
	xaddr_peer_describe((struct sockaddr *)&ss, len, &peer);
	len = sizeof(ss);
	assert_int_equal(getsockname(cfd, (struct sockaddr *)&ss, &len), 0);
	if (family == AF_INET6) {
		cport = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		snprintf(want, sizeof(want), "tcp://[::1]:%u", cport);
	} else {
		cport = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		snprintf(want, sizeof(want), "tcp://127.0.0.1:%u", cport);
	}
	assert_int_equal(peer.type, XADDR_TCP);
	assert_int_equal(peer.port, cport);
	assert_int_equal(peer.cid, 0);
	assert_string_equal(peer.str, want);

	flow(cfd, afd, "ping");
	flow(afd, cfd, "pong");
	close(afd);
	close(cfd);
	close(lfd);
	xaddr_unlisten(xa);	/* a no-op for tcp */
	xaddr_free(xa);
}

/* IPv4 loopback round trip. */
static void
test_tcp4_roundtrip(void **state)
{
	(void)state;
	tcp_roundtrip(AF_INET);
}

/* IPv6 loopback round trip. */
static void
test_tcp6_roundtrip(void **state)
{
	int	fd;

	(void)state;
	if ((fd = socket(AF_INET6, SOCK_STREAM, 0)) == -1)
		skip();
	close(fd);
	tcp_roundtrip(AF_INET6);
}

/* A refused TCP connect fails now or through SO_ERROR, never hangs. */
static void
test_tcp_refused(void **state)
{
	struct pollfd	 pfd;
	struct xaddr	*xa;
	char		 s[64];
	socklen_t	 len = sizeof(int);
	int		 fd, rv, err = 0, up;

	(void)state;
	snprintf(s, sizeof(s), "tcp://127.0.0.1:%u", free_port(AF_INET));
	xa = must_parse(s);
	errno = 0;
	up = -1;
	rv = xaddr_connect(xa, &fd, &up);
	assert_int_equal(up, 0);	/* refused: never up */
	if (rv == XADDR_OK) {
		pfd.fd = fd;
		pfd.events = POLLOUT;
		assert_int_equal(poll(&pfd, 1, WAIT_MS), 1);
		assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err,
		    &len), 0);
		close(fd);
	} else {
		assert_int_equal(rv, XADDR_E_SYSTEM);
		assert_int_equal(fd, -1);
		err = errno;
	}
	assert_int_equal(err, ECONNREFUSED);
	xaddr_free(xa);
}

/* unix listen/connect/accept in a scratch directory. */
static void
test_unix_roundtrip(void **state)
{
	struct sockaddr_storage	 ss;
	struct xaddr_peer	 peer;
	struct xaddr		*xa;
	struct stat		 st;
	char			 dir[64], s[160], path[128];
	socklen_t		 len;
	int			 lfd, cfd, afd, up;

	(void)state;
	mktmp(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/s.sock", dir);
	snprintf(s, sizeof(s), "unix:%s", path);
	xa = must_parse(s);
	assert_string_equal(xaddr_path(xa), path);
	assert_int_equal(xaddr_listen(xa, 0, &lfd), XADDR_OK);
	assert_true(fcntl(lfd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(lfd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));

	up = -1;
	assert_int_equal(xaddr_connect(xa, &cfd, &up), XADDR_OK);
	assert_int_equal(up, 1);	/* a unix connect is done at once */
	assert_true(fcntl(cfd, F_GETFL) & O_NONBLOCK);
	wait_connected(cfd);
	xaddr_tune(cfd, XADDR_UNIX);	/* nothing to set on unix */
	afd = accept_one(lfd, &ss, &len);
	xaddr_peer_describe((struct sockaddr *)&ss, len, &peer);
	assert_int_equal(peer.type, XADDR_UNIX);
	assert_string_equal(peer.str, "unix:(unnamed)");
	assert_int_equal(peer.port, 0);
	flow(cfd, afd, "hello");
	flow(afd, cfd, "world");
	close(afd);
	close(cfd);
	close(lfd);

	xaddr_unlisten(xa);
	assert_int_equal(lstat(path, &st), -1);
	assert_int_equal(errno, ENOENT);
	xaddr_free(xa);
	rmtmp(dir);
}

/* Stale sockets are replaced; live ones and plain files are not. */
static void
test_unix_stale_live(void **state)
{
	struct sockaddr_un	 sun;
	struct xaddr		*xa;
	struct stat		 st;
	char			 dir[64], s[160], path[128];
	int			 fd, lfd, lfd2, cfd;

	(void)state;
	mktmp(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/stale.sock", dir);
	snprintf(s, sizeof(s), "unix:%s", path);
	xa = must_parse(s);

	/* A listener that died without unlinking. */
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strlcpy(sun.sun_path, path, sizeof(sun.sun_path));
	assert_true((fd = socket(AF_UNIX, SOCK_STREAM, 0)) >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(fd, 1), 0);
	close(fd);
	assert_int_equal(lstat(path, &st), 0);

	assert_int_equal(xaddr_listen(xa, 4, &lfd), XADDR_OK);

	/* Now it is live: a second listener must not steal it. */
	lfd2 = 12345;
	assert_int_equal(xaddr_listen(xa, 4, &lfd2), XADDR_E_INUSE);
	assert_int_equal(lfd2, -1);
	assert_int_equal(xaddr_connect(xa, &cfd, NULL), XADDR_OK);
	wait_connected(cfd);
	close(cfd);
	close(lfd);
	xaddr_unlisten(xa);
	xaddr_free(xa);

	/* A regular file in the way is left alone. */
	snprintf(path, sizeof(path), "%s/file", dir);
	snprintf(s, sizeof(s), "unix:%s", path);
	assert_true((fd = open(path, O_CREAT | O_WRONLY, 0600)) >= 0);
	close(fd);
	xa = must_parse(s);
	errno = 0;
	assert_int_equal(xaddr_listen(xa, 4, &lfd), XADDR_E_SYSTEM);
	assert_int_equal(errno, EEXIST);
	assert_int_equal(lfd, -1);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	xaddr_free(xa);

	/* Nothing there: connect fails at once with ENOENT. */
	snprintf(s, sizeof(s), "unix:%s/missing", dir);
	xa = must_parse(s);
	errno = 0;
	cfd = 12345;
	assert_int_equal(xaddr_connect(xa, &cfd, NULL), XADDR_E_SYSTEM);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(cfd, -1);
	xaddr_free(xa);
	rmtmp(dir);
}

/* Emulation settings: directory creation, absolute paths, off switch. */
static void
test_emulate_settings(void **state)
{
	struct stat	 st;
	char		 dir[64], sub[128], want[PATH_MAX], big[200];
	mode_t		 old;
	int		 cwd, fd;

	(void)state;
	mktmp(dir, sizeof(dir));
	assert_int_equal(xaddr_vsock_emulate(NULL, 0), XADDR_OK);
	assert_false(xaddr_vsock_emulated());
	assert_null(xaddr_vsock_dir());

	old = umask(022);
	snprintf(sub, sizeof(sub), "%s/a/b/esx1/", dir);
	assert_int_equal(xaddr_vsock_emulate(sub, 2), XADDR_OK);
	umask(old);
	assert_true(xaddr_vsock_emulated());
	assert_int_equal(xaddr_vsock_cid(), 2);
	snprintf(want, sizeof(want), "%s/a/b/esx1", dir);
	assert_string_equal(xaddr_vsock_dir(), want);
	assert_int_equal(stat(want, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
	snprintf(want, sizeof(want), "%s/a", dir);
	assert_int_equal(stat(want, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);

	/* Existing directory: fine, CID changes. */
	assert_int_equal(xaddr_vsock_emulate(sub, 7), XADDR_OK);
	assert_int_equal(xaddr_vsock_cid(), 7);

	/* Relative directories become absolute. */
	assert_true((cwd = open(".", O_RDONLY | O_DIRECTORY)) >= 0);
	assert_int_equal(chdir(dir), 0);
	assert_int_equal(xaddr_vsock_emulate("rel", 3), XADDR_OK);
	assert_int_equal(fchdir(cwd), 0);
	close(cwd);
	snprintf(want, sizeof(want), "%s/rel", dir);
	assert_string_equal(xaddr_vsock_dir(), want);
	assert_int_equal(stat(want, &st), 0);

	/* Failures leave the previous setting alone. */
	errno = 0;
	assert_int_equal(xaddr_vsock_emulate(dir, XADDR_CID_ANY),
	    XADDR_E_SYSTEM);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(xaddr_vsock_emulate("", 3), XADDR_E_SYSTEM);
	memset(big, 'd', sizeof(big));
	big[0] = '/';
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(xaddr_vsock_emulate(big, 3), XADDR_E_TOOLONG);
	snprintf(sub, sizeof(sub), "%s/file", dir);
	assert_true((fd = open(sub, O_CREAT | O_WRONLY, 0600)) >= 0);
	close(fd);
	errno = 0;
	assert_int_equal(xaddr_vsock_emulate(sub, 3), XADDR_E_SYSTEM);
	assert_int_equal(errno, ENOTDIR);
	snprintf(sub, sizeof(sub), "%s/file/x", dir);
	errno = 0;
	assert_int_equal(xaddr_vsock_emulate(sub, 3), XADDR_E_SYSTEM);
	assert_int_equal(errno, ENOTDIR);
	assert_string_equal(xaddr_vsock_dir(), want);
	assert_int_equal(xaddr_vsock_cid(), 3);

	assert_int_equal(xaddr_vsock_emulate(NULL, 0), XADDR_OK);
	assert_false(xaddr_vsock_emulated());
	assert_null(xaddr_vsock_dir());
	rmtmp(dir);
}

/* Two simulated processes: a listener as CID 2, a connector as CID 7. */
static void
test_vsock_emulated(void **state)
{
	struct sockaddr_storage	 ss;
	struct xaddr_peer	 peer, peer2;
	struct xaddr		*any, *to2, *explicit;
	struct stat		 st;
	char			 dir[64], cdir[128], path[128];
	char			 want[XADDR_PEER_STRLEN];
	socklen_t		 len;
	int			 lfd, lfd2, cfd, cfd2, afd, afd2, xfd, up;

	(void)state;
	mktmp(dir, sizeof(dir));
	snprintf(cdir, sizeof(cdir), "%s/.c", dir);
	any = must_parse("vsock://any:1024");
	to2 = must_parse("vsock://2:1024");

	/* "Process" with CID 2 listens. */
	assert_int_equal(xaddr_vsock_emulate(dir, 2), XADDR_OK);
	assert_int_equal(xaddr_listen(any, 8, &lfd), XADDR_OK);
	assert_true(fcntl(lfd, F_GETFL) & O_NONBLOCK);
	snprintf(path, sizeof(path), "%s/2.1024", dir);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));

	/* "Process" with CID 7 connects, at once. */
	assert_int_equal(xaddr_vsock_emulate(dir, 7), XADDR_OK);
	up = -1;
	assert_int_equal(xaddr_connect(to2, &cfd, &up), XADDR_OK);
	assert_int_equal(up, 1);
	assert_true(fcntl(cfd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(cfd, F_GETFD) & FD_CLOEXEC);
	wait_connected(cfd);
	assert_int_equal(xaddr_connect(to2, &cfd2, NULL), XADDR_OK);
	wait_connected(cfd2);
	/* An owner-only DIR: abstract connector names, no file, no .c. */
	assert_int_equal(lstat(cdir, &st), -1);
	len = sizeof(ss);
	assert_int_equal(getsockname(cfd, (struct sockaddr *)&ss, &len), 0);
	assert_true(len > offsetof(struct sockaddr_un, sun_path) + 1);
	assert_int_equal(((struct sockaddr_un *)&ss)->sun_path[0], '\0');

	/* Back to CID 2: accept and see who called. */
	assert_int_equal(xaddr_vsock_emulate(dir, 2), XADDR_OK);
	afd = accept_one(lfd, &ss, &len);
	xaddr_peer_describe((struct sockaddr *)&ss, len, &peer);
	assert_int_equal(peer.type, XADDR_VSOCK);
	assert_int_equal(peer.cid, 7);
	assert_true(peer.port >= 0x40000000U);
	snprintf(want, sizeof(want), "vsock://7:%u", peer.port);
	assert_string_equal(peer.str, want);
	afd2 = accept_one(lfd, &ss, &len);
	xaddr_peer_describe((struct sockaddr *)&ss, len, &peer2);
	assert_int_equal(peer2.type, XADDR_VSOCK);
	assert_int_equal(peer2.cid, 7);
	assert_int_not_equal(peer2.port, peer.port);

	flow(cfd, afd, "from 7");
	flow(afd, cfd, "from 2");
	flow(cfd2, afd2, "second");

	/*
	 * A second listener on the same emulated port is refused.  Its
	 * probe leaves an unnamed connection that is already at EOF.
	 */
	assert_int_equal(xaddr_listen(any, 8, &lfd2), XADDR_E_INUSE);
	assert_int_equal(lfd2, -1);
	xfd = accept_one(lfd, &ss, &len);
	xaddr_peer_describe((struct sockaddr *)&ss, len, &peer2);
	assert_int_equal(peer2.type, XADDR_UNIX);
	assert_int_equal(read(xfd, want, sizeof(want)), 0);
	close(xfd);
	close(afd);
	close(afd2);
	close(cfd);
	close(cfd2);
	close(lfd);
	xaddr_unlisten(any);
	assert_int_equal(lstat(path, &st), -1);

	/* An explicit CID in a listen address names the file. */
	explicit = must_parse("vsock://9:1025");
	assert_int_equal(xaddr_listen(explicit, 8, &xfd), XADDR_OK);
	snprintf(path, sizeof(path), "%s/9.1025", dir);
	assert_int_equal(lstat(path, &st), 0);
	close(xfd);
	xaddr_unlisten(explicit);
	assert_int_equal(lstat(path, &st), -1);
	xaddr_free(explicit);

	assert_int_equal(xaddr_vsock_emulate(NULL, 0), XADDR_OK);
	xaddr_free(any);
	xaddr_free(to2);
	rmtmp(dir);
}

/* Connecting to an emulated port nobody listens on fails at once. */
static void
test_vsock_emulated_missing(void **state)
{
	struct sockaddr_un	 sun;
	struct xaddr		*xa;
	char			 dir[64], cdir[128];
	int			 fd, rv;

	(void)state;
	mktmp(dir, sizeof(dir));
	snprintf(cdir, sizeof(cdir), "%s/.c", dir);
	assert_int_equal(xaddr_vsock_emulate(dir, 7), XADDR_OK);

	xa = must_parse("vsock://3:999");
	errno = 0;
	fd = 12345;
	rv = xaddr_connect(xa, &fd, NULL);
	assert_int_equal(rv, XADDR_E_SYSTEM);
	assert_true(errno == ENOENT || errno == ECONNREFUSED);
	assert_int_equal(fd, -1);
	assert_int_equal(count_entries(cdir), -1);	/* abstract names */
	xaddr_free(xa);

	/* A dead listener's file: refused. */
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/3.1000", dir);
	assert_true((fd = socket(AF_UNIX, SOCK_STREAM, 0)) >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(fd);
	xa = must_parse("vsock://3:1000");
	errno = 0;
	assert_int_equal(xaddr_connect(xa, &fd, NULL), XADDR_E_SYSTEM);
	assert_int_equal(errno, ECONNREFUSED);
	assert_int_equal(fd, -1);
	assert_int_equal(count_entries(cdir), -1);
	/* With file names (DIR not owner-only) none is left behind. */
	assert_int_equal(chmod(dir, 0750), 0);
	assert_int_equal(xaddr_vsock_emulate(dir, 7), XADDR_OK);
	errno = 0;
	assert_int_equal(xaddr_connect(xa, &fd, NULL), XADDR_E_SYSTEM);
	assert_int_equal(errno, ECONNREFUSED);
	assert_int_equal(count_entries(cdir), 0);
	xaddr_free(xa);

	/* "any" is for listeners only. */
	xa = must_parse("vsock://any:1000");
	assert_int_equal(xaddr_connect(xa, &fd, NULL), XADDR_E_SYSTEM);
	assert_int_equal(fd, -1);
	xaddr_free(xa);

	assert_int_equal(xaddr_vsock_emulate(NULL, 0), XADDR_OK);
	rmtmp(dir);
}

/*
 * The abstract-name tag of emulation directory DIR, as xaddr.c makes
 * it: its key, from DIR/.emu-key (owner-only, as DIR is).
 */
static void
emu_tag(const char *dir, char *buf, size_t len)
{
	char	path[PATH_MAX], key[33];
	FILE	*fp;

	snprintf(path, sizeof(path), "%s/.emu-key", dir);
	assert_non_null(fp = fopen(path, "r"));
	assert_int_equal(fread(key, 1, 32, fp), 32);
	fclose(fp);
	key[32] = '\0';
	assert_true(snprintf(buf, len, "vrelay-emu:%s/", key) < (int)len);
}

/* Describe the abstract unix name "\0" NAME (LEN bytes). */
static void
describe_abstract(const char *name, size_t len, struct xaddr_peer *p)
{
	struct sockaddr_un	sun;

	assert_true(len < sizeof(sun.sun_path));
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path + 1, name, len);
	xaddr_peer_describe((struct sockaddr *)&sun,
	    offsetof(struct sockaddr_un, sun_path) + 1 + len, p);
}

/*
 * A connector falls back to a file name in DIR/.c when DIR is not
 * owner-only, and when someone holds the abstract name it would bind;
 * the listener reports the same vsock peer either way.
 */
static void
test_vsock_emulated_files(void **state)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_un	 sq, *sun = (struct sockaddr_un *)&ss;
	struct xaddr_peer	 peer;
	struct xaddr		*any, *to2;
	char			 dir[64], cdir[128], tag[64], name[108];
	socklen_t		 len;
	unsigned int		 cid, port, pid, seq;
	int			 lfd, cfd, afd, sqfd, n;

	(void)state;
	mktmp(dir, sizeof(dir));
	snprintf(cdir, sizeof(cdir), "%s/.c", dir);
	any = must_parse("vsock://any:1024");
	to2 = must_parse("vsock://2:1024");
	assert_int_equal(xaddr_vsock_emulate(dir, 2), XADDR_OK);
	emu_tag(dir, tag, sizeof(tag));
	assert_int_equal(xaddr_listen(any, 8, &lfd), XADDR_OK);

	/* Squat the abstract name our next connect would bind. */
	assert_int_equal(xaddr_vsock_emulate(dir, 7), XADDR_OK);
	assert_int_equal(xaddr_connect(to2, &cfd, NULL), XADDR_OK);
	wait_connected(cfd);
	len = sizeof(ss);
	assert_int_equal(getsockname(cfd, (struct sockaddr *)&ss, &len), 0);
	n = (int)(len - offsetof(struct sockaddr_un, sun_path)) - 1;
	assert_true(n > (int)strlen(tag) && n < (int)sizeof(name));
	assert_memory_equal(sun->sun_path + 1, tag, strlen(tag));
	memcpy(name, sun->sun_path + 1 + strlen(tag), n - strlen(tag));
	name[n - strlen(tag)] = '\0';
	assert_int_equal(sscanf(name, "%u.%u.%u.%u", &cid, &port, &pid,
	    &seq), 4);
	assert_int_equal(cid, 7);
	assert_int_equal(pid, (unsigned int)getpid());
	assert_true((seq & 0xffff) != 0xffff);
	close(cfd);
	close(accept_one(lfd, &ss, &len));
	memset(&sq, 0, sizeof(sq));
	sq.sun_family = AF_UNIX;
	n = snprintf(sq.sun_path + 1, sizeof(sq.sun_path) - 1,
	    "%s%u.%u.%u.%u", tag, cid, port + 1, pid, seq + 1);
	assert_true((sqfd = socket(AF_UNIX, SOCK_STREAM, 0)) >= 0);
	assert_int_equal(bind(sqfd, (struct sockaddr *)&sq,
	    offsetof(struct sockaddr_un, sun_path) + 1 + n), 0);
	assert_int_equal(xaddr_connect(to2, &cfd, NULL), XADDR_OK);
	wait_connected(cfd);
	len = sizeof(ss);
	assert_int_equal(getsockname(cfd, (struct sockaddr *)&ss, &len), 0);
	assert_non_null(strstr(sun->sun_path, "/.c/"));
	assert_int_equal(count_entries(cdir), 0);
	close(sqfd);
	assert_int_equal(xaddr_vsock_emulate(dir, 2), XADDR_OK);
	afd = accept_one(lfd, &ss, &len);
	xaddr_peer_describe((struct sockaddr *)&ss, len, &peer);
	assert_int_equal(peer.type, XADDR_VSOCK);
	assert_int_equal(peer.cid, 7);
	assert_int_equal(peer.port, port + 1);
	flow(cfd, afd, "file name");
	close(afd);
	close(cfd);

	/* A directory others may search: file names only, and tidied. */
	assert_int_equal(chmod(dir, 0711), 0);
	assert_int_equal(xaddr_vsock_emulate(dir, 7), XADDR_OK);
	assert_int_equal(xaddr_connect(to2, &cfd, NULL), XADDR_OK);
	wait_connected(cfd);
	len = sizeof(ss);
	assert_int_equal(getsockname(cfd, (struct sockaddr *)&ss, &len), 0);
	assert_int_not_equal(sun->sun_path[0], '\0');
	assert_int_equal(count_entries(cdir), 0);
	assert_int_equal(xaddr_vsock_emulate(dir, 2), XADDR_OK);
	afd = accept_one(lfd, &ss, &len);
	xaddr_peer_describe((struct sockaddr *)&ss, len, &peer);
	assert_int_equal(peer.type, XADDR_VSOCK);
	assert_int_equal(peer.cid, 7);
	/* Nor does such a listener take an abstract name's claim. */
	snprintf(name, sizeof(name), "%s7.8.9.10", tag);
	describe_abstract(name, strlen(name), &peer);
	assert_int_equal(peer.type, XADDR_UNIX);
	assert_int_equal(peer.cid, 0);
	close(afd);
	close(cfd);

	close(lfd);
	xaddr_unlisten(any);
	assert_int_equal(xaddr_vsock_emulate(NULL, 0), XADDR_OK);
	xaddr_free(any);
	xaddr_free(to2);
	rmtmp(dir);
}

/*
 * Abstract connector names: only "\0" + our own directory's tag +
 * CID.PORT.PID.SEQ is a vsock peer; anything else stays a unix peer,
 * shown printable.
 */
static void
test_peer_describe_emu(void **state)
{
	static const struct {
		const char	*rest;	/* after the tag */
		uint32_t	 cid, port;
	} good[] = {
		{ "5.6.7.8", 5, 6 },
		{ "7.1073741825.123.0", 7, 1073741825U },
		{ "0.0.0.0", 0, 0 },
		{ "4294967294.4294967295.4294967295.4294967295",
		    UINT32_MAX - 1, UINT32_MAX },
	};
	static const char *bad[] = {
		"", "5", "5.6.7", "5.6.7.8.9", "5..7.8", ".5.6.7", "5.6.7.",
		"5.6.7.8x", "+5.6.7.8", " 5.6.7.8", "5.6.7.8/", "/5.6.7.8",
		"4294967296.6.7.8", "99999999999.1.2.3", "5.6\n.7.8",
	};
	struct xaddr_peer	 p;
	char			 dir[64], dir2[64], tag[64], tag2[64];
	char			 name[108], want[XADDR_PEER_STRLEN];
	size_t			 i, n;

	(void)state;
	mktmp(dir, sizeof(dir));
	mktmp(dir2, sizeof(dir2));
	/* Each directory gets its key when emulation first uses it. */
	assert_int_equal(xaddr_vsock_emulate(dir2, 2), XADDR_OK);
	assert_int_equal(xaddr_vsock_emulate(dir, 2), XADDR_OK);
	emu_tag(dir, tag, sizeof(tag));
	emu_tag(dir2, tag2, sizeof(tag2));
	assert_string_not_equal(tag, tag2);
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(name, sizeof(name), "%s%s", tag, good[i].rest);
		describe_abstract(name, strlen(name), &p);
		snprintf(want, sizeof(want), "vsock://%u:%u", good[i].cid,
		    good[i].port);
		assert_int_equal(p.type, XADDR_VSOCK);
		assert_int_equal(p.cid, good[i].cid);
		assert_int_equal(p.port, good[i].port);
		assert_string_equal(p.str, want);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(name, sizeof(name), "%s%s", tag, bad[i]);
		describe_abstract(name, strlen(name), &p);
		assert_int_equal(p.type, XADDR_UNIX);
		assert_int_equal(p.cid, 0);
		assert_int_equal(p.port, 0);
		assert_int_equal(strncmp(p.str, "unix:@vrelay-emu:", 17), 0);
		assert_null(strchr(p.str, '\n'));
	}
	/* A NUL inside the name (or padding after it) is no claim. */
	snprintf(name, sizeof(name), "%s5.6.7.8", tag);
	n = strlen(name);
	describe_abstract(name, n + 1, &p);
	assert_int_equal(p.type, XADDR_UNIX);
	snprintf(want, sizeof(want), "unix:@%s?", name);
	assert_string_equal(p.str, want);
	/* Shown as it always was: "unix:@NAME". */
	describe_abstract(name, n - 1, &p);
	assert_int_equal(p.type, XADDR_UNIX);
	snprintf(want, sizeof(want), "unix:@%.*s", (int)(n - 1), name);
	assert_string_equal(p.str, want);
	/* Another directory's tag, a made-up tag, no tag at all. */
	snprintf(name, sizeof(name), "%s5.6.7.8", tag2);
	describe_abstract(name, strlen(name), &p);
	assert_int_equal(p.type, XADDR_UNIX);
	describe_abstract("vrelay-emu:0:0/5.6.7.8", 22, &p);
	assert_int_equal(p.type, XADDR_UNIX);
	describe_abstract("5.6.7.8", 7, &p);
	assert_int_equal(p.type, XADDR_UNIX);
	assert_string_equal(p.str, "unix:@5.6.7.8");
	/* Each directory honours only its own tag. */
	assert_int_equal(xaddr_vsock_emulate(dir2, 2), XADDR_OK);
	snprintf(name, sizeof(name), "%s5.6.7.8", tag);
	describe_abstract(name, strlen(name), &p);
	assert_int_equal(p.type, XADDR_UNIX);
	snprintf(name, sizeof(name), "%s5.6.7.8", tag2);
	describe_abstract(name, strlen(name), &p);
	assert_int_equal(p.type, XADDR_VSOCK);
	/* Emulation off: no CID for anyone. */
	assert_int_equal(xaddr_vsock_emulate(NULL, 0), XADDR_OK);
	describe_abstract(name, strlen(name), &p);
	assert_int_equal(p.type, XADDR_UNIX);
	assert_int_equal(p.cid, 0);
	rmtmp(dir);
	rmtmp(dir2);
}

/*
 * Abstract names belong to a network namespace, yet a path listener
 * sees the name of a connector in another one (as deploy/cluster.sh
 * runs relays); needs CAP_SYS_ADMIN for unshare, else skipped.
 */
static void
test_vsock_emulated_netns(void **state)
{
	struct sockaddr_storage	 ss;
	struct xaddr_peer	 peer;
	struct xaddr		*any, *to2;
	char			 dir[64], c;
	socklen_t		 len;
	pid_t			 pid;
	int			 lfd, afd, fd, pfd[2], status;

	(void)state;
	mktmp(dir, sizeof(dir));
	any = must_parse("vsock://any:1024");
	to2 = must_parse("vsock://2:1024");
	assert_int_equal(xaddr_vsock_emulate(dir, 2), XADDR_OK);
	assert_int_equal(xaddr_listen(any, 8, &lfd), XADDR_OK);
	assert_int_equal(pipe(pfd), 0);
	assert_true((pid = fork()) >= 0);
	if (pid == 0) {
		/*
		 * Connect ('y') or not ('n'); the listener's queue keeps
		 * the connection and its peer name after we are gone.
		 */
		c = unshare(CLONE_NEWNET) == 0 &&
		    xaddr_vsock_emulate(dir, 7) == XADDR_OK &&
		    xaddr_connect(to2, &fd, NULL) == XADDR_OK ? 'y' : 'n';
		if (c == 'y')
			close(fd);
		(void)xaddr_vsock_emulate(NULL, 0);
		xaddr_free(any);
		xaddr_free(to2);
		_exit(write(pfd[1], &c, 1) == 1 ? 0 : 1);
	}
	close(pfd[1]);
	assert_int_equal(read(pfd[0], &c, 1), 1);
	if (c == 'y') {
		afd = accept_one(lfd, &ss, &len);
		xaddr_peer_describe((struct sockaddr *)&ss, len, &peer);
		close(afd);
	}
	close(pfd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(lfd);
	xaddr_unlisten(any);
	assert_int_equal(xaddr_vsock_emulate(NULL, 0), XADDR_OK);
	xaddr_free(any);
	xaddr_free(to2);
	rmtmp(dir);
	if (c != 'y')
		skip();
	assert_int_equal(peer.type, XADDR_VSOCK);
	assert_int_equal(peer.cid, 7);
	assert_true(peer.port >= 0x40000000U);
}

/* Describe addresses built by hand, including malformed ones. */
static void
test_peer_describe(void **state)
{
	struct sockaddr_in	 sin;
	struct sockaddr_in6	 sin6;
	struct sockaddr_un	 sun;
	struct sockaddr_vm	 svm;
	struct xaddr_peer	 p;
	const char		*vpaths[] = { ".c/7.1073741825.123.0",
	    ".c/5.6.7.8" };
	char			 edir[] = "/tmp/test_xaddr.XXXXXX";
	const char		*upaths[] = { "/run/x.sock",
	    "/tmp/e/.c/7.1.2",
	    "/tmp/e/x.c/7.1.2.3", "/tmp/e/.c/7.1.2.3x", "/tmp/e/.c/7.1.2.3.4",
	    "/tmp/e/.c/7..2.3", "/tmp/e/.c/99999999999.1.2.3", "7.1.2.3",
	    "/tmp/.c/", "/tmp/e/.cc/7.1.2.3" };
	char			 want[XADDR_PEER_STRLEN];
	size_t			 i;

	(void)state;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(4567);
	inet_pton(AF_INET, "10.1.2.3", &sin.sin_addr);
	xaddr_peer_describe((struct sockaddr *)&sin, sizeof(sin), &p);
	assert_int_equal(p.type, XADDR_TCP);
	assert_int_equal(p.port, 4567);
	assert_string_equal(p.str, "tcp://10.1.2.3:4567");

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(80);
	sin6.sin6_addr = in6addr_loopback;
	xaddr_peer_describe((struct sockaddr *)&sin6, sizeof(sin6), &p);
	assert_int_equal(p.type, XADDR_TCP);
	assert_string_equal(p.str, "tcp://[::1]:80");
	inet_pton(AF_INET6, "::ffff:192.0.2.1", &sin6.sin6_addr);
	xaddr_peer_describe((struct sockaddr *)&sin6, sizeof(sin6), &p);
	assert_string_equal(p.str, "tcp://192.0.2.1:80");
	assert_int_equal(p.port, 80);

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	xaddr_peer_describe((struct sockaddr *)&sun, sizeof(sa_family_t), &p);
	assert_int_equal(p.type, XADDR_UNIX);
	assert_string_equal(p.str, "unix:(unnamed)");
	for (i = 0; i < sizeof(upaths) / sizeof(upaths[0]); i++) {
		strlcpy(sun.sun_path, upaths[i], sizeof(sun.sun_path));
		xaddr_peer_describe((struct sockaddr *)&sun, sizeof(sun), &p);
		snprintf(want, sizeof(want), "unix:%s", upaths[i]);
		assert_int_equal(p.type, XADDR_UNIX);
		assert_string_equal(p.str, want);
		assert_int_equal(p.cid, 0);
	}
	/* Connector names count only inside our emulation directory. */
	assert_non_null(mkdtemp(edir));
	assert_int_equal(xaddr_vsock_emulate(edir, 2), XADDR_OK);
	for (i = 0; i < sizeof(vpaths) / sizeof(vpaths[0]); i++) {
		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/%s", edir,
		    vpaths[i]);
		xaddr_peer_describe((struct sockaddr *)&sun,
		    offsetof(struct sockaddr_un, sun_path) +
		    strlen(sun.sun_path) + 1, &p);
		assert_int_equal(p.type, XADDR_VSOCK);
	}
	assert_string_equal(p.str, "vsock://5:6");
	assert_int_equal(p.cid, 5);
	assert_int_equal(p.port, 6);
	strlcpy(sun.sun_path, "/tmp/elsewhere/.c/5.6.7.8", sizeof(sun.sun_path));
	xaddr_peer_describe((struct sockaddr *)&sun, sizeof(sun), &p);
	assert_int_equal(p.type, XADDR_UNIX);
	/* A peer's name is shown printable. */
	strlcpy(sun.sun_path, "/tmp/x\ny\033", sizeof(sun.sun_path));
	xaddr_peer_describe((struct sockaddr *)&sun, sizeof(sun), &p);
	assert_string_equal(p.str, "unix:/tmp/x?y?");
	assert_int_equal(xaddr_vsock_emulate(NULL, 0), XADDR_OK);
	rmtmp(edir);	/* the emulation left its key there */
	/* A name without its NUL, exactly as long as sun_path. */
	memset(sun.sun_path, 'z', sizeof(sun.sun_path));
	xaddr_peer_describe((struct sockaddr *)&sun, sizeof(sun), &p);
	assert_int_equal(p.type, XADDR_UNIX);
	assert_int_equal(strlen(p.str), 5 + sizeof(sun.sun_path));
	/* Abstract namespace. */
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, "\0abc", 4);
	xaddr_peer_describe((struct sockaddr *)&sun,
	    offsetof(struct sockaddr_un, sun_path) + 4, &p);
	assert_string_equal(p.str, "unix:@abc");

	memset(&svm, 0, sizeof(svm));
	svm.svm_family = AF_VSOCK;
	svm.svm_cid = 5;
	svm.svm_port = 1234;
	xaddr_peer_describe((struct sockaddr *)&svm, sizeof(svm), &p);
	assert_int_equal(p.type, XADDR_VSOCK);
	assert_int_equal(p.cid, 5);
	assert_int_equal(p.port, 1234);
	assert_string_equal(p.str, "vsock://5:1234");

	/* Nonsense: cleared type, "unknown". */
	xaddr_peer_describe(NULL, 0, &p);
	assert_int_equal(p.type, 0);
	assert_string_equal(p.str, "unknown");
	xaddr_peer_describe((struct sockaddr *)&sin, 4, &p);
	assert_int_equal(p.type, 0);
	assert_int_equal(p.port, 0);
	xaddr_peer_describe((struct sockaddr *)&svm, 8, &p);
	assert_int_equal(p.type, 0);
	sin.sin_family = AF_APPLETALK;
	xaddr_peer_describe((struct sockaddr *)&sin, sizeof(sin), &p);
	assert_int_equal(p.type, 0);
	assert_string_equal(p.str, "unknown");
}

/*
 * xaddr_tune sets TCP_NODELAY on what its caller says is TCP and asks
 * nothing of anything else (not even the socket: a system call each).
 */
static void
test_tune(void **state)
{
	socklen_t	len = sizeof(int);
	int		fd, on = 0;

	(void)state;
	xaddr_tune(-1, XADDR_TCP);
	assert_true((fd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len),
	    0);
	assert_false(on);
	xaddr_tune(fd, XADDR_VSOCK);
	assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len),
	    0);
	assert_false(on);
	xaddr_tune(fd, XADDR_TCP);
	assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len),
	    0);
	assert_true(on);
	close(fd);
}

/*
 * Real AF_VSOCK: listen and check the port; connect only far enough to
 * see it does not block (CID 1 has no loopback transport here).
 */
static void
test_vsock_real(void **state)
{
	struct sockaddr_vm	 svm;
	struct timeval		 t0, t1;
	struct xaddr		*xa;
	char			 s[64];
	socklen_t		 len;
	uint32_t		 port = 0;
	int			 i, fd = -1, cfd, rv = XADDR_E_SYSTEM;

	(void)state;
	assert_int_equal(xaddr_vsock_emulate(NULL, 0), XADDR_OK);
	for (i = 0; i < 8; i++) {
		port = 0x50000000U + (((uint32_t)getpid() + i) & 0xffff);
		snprintf(s, sizeof(s), "vsock://any:%u", port);
		xa = must_parse(s);
		errno = 0;
		rv = xaddr_listen(xa, 4, &fd);
		xaddr_free(xa);
		if (rv == XADDR_E_NOVSOCK)
			skip();
		if (rv != XADDR_E_SYSTEM || errno != EADDRINUSE)
			break;
	}
	if (rv != XADDR_OK)
		fail_msg("vsock listen: %s: %s", xaddr_strerror(rv),
		    strerror(errno));
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	memset(&svm, 0, sizeof(svm));
	len = sizeof(svm);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&svm, &len), 0);
	assert_int_equal(svm.svm_family, AF_VSOCK);
	assert_int_equal(svm.svm_port, port);
	assert_int_equal(svm.svm_cid, VMADDR_CID_ANY);

	snprintf(s, sizeof(s), "vsock://1:%u", port);
	xa = must_parse(s);
	gettimeofday(&t0, NULL);
	rv = xaddr_connect(xa, &cfd, NULL);
	gettimeofday(&t1, NULL);
	assert_true(t1.tv_sec - t0.tv_sec < 2);
	if (rv == XADDR_OK) {
		assert_true(cfd >= 0);
		assert_true(fcntl(cfd, F_GETFL) & O_NONBLOCK);
		close(cfd);
	} else {
		assert_int_equal(rv, XADDR_E_SYSTEM);
		assert_int_equal(cfd, -1);
	}
	xaddr_free(xa);
	close(fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_parse_hostname),
		cmocka_unit_test(test_parse_unix_toolong),
		cmocka_unit_test(test_accessors),
		cmocka_unit_test(test_loopback),
		cmocka_unit_test(test_tcp4_roundtrip),
		cmocka_unit_test(test_tcp6_roundtrip),
		cmocka_unit_test(test_tcp_refused),
		cmocka_unit_test(test_unix_roundtrip),
		cmocka_unit_test(test_unix_stale_live),
		cmocka_unit_test(test_emulate_settings),
		cmocka_unit_test(test_vsock_emulated),
		cmocka_unit_test(test_vsock_emulated_missing),
		cmocka_unit_test(test_vsock_emulated_files),
		cmocka_unit_test(test_vsock_emulated_netns),
		cmocka_unit_test(test_peer_describe),
		cmocka_unit_test(test_peer_describe_emu),
		cmocka_unit_test(test_tune),
		cmocka_unit_test(test_vsock_real),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
