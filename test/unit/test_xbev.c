/*
 * test_xbev.c -- unit tests for the socket bufferevent helpers (xbev.h):
 * writing through to an idle socket, and reading ahead.  Real sockets
 * (socketpairs), a real event base.
 */
#include <sys/socket.h>

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "xbev.h"

struct pair {
	struct event_base	*base;
	struct bufferevent	*bev;	/* on sv[0] */
	int			 peer;	/* sv[1], read by the test */
};

/* A socket bufferevent enabled for writing, and its peer's fd. */
static void
pair_new(struct pair *p)
{
	int	sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
	    sv), 0);
	p->base = event_base_new();
	p->bev = bufferevent_socket_new(p->base, sv[0], BEV_OPT_CLOSE_ON_FREE);
	assert_non_null(p->bev);
	bufferevent_enable(p->bev, EV_READ | EV_WRITE);
	p->peer = sv[1];
}

static void
pair_free(struct pair *p)
{
	bufferevent_free(p->bev);
	event_base_free(p->base);
	close(p->peer);
}

/* Read what the peer has now (at most LEN) into BUF. */
static size_t
peer_read(struct pair *p, char *buf, size_t len)
{
	ssize_t	n;
	size_t	got = 0;

	while (got < len && (n = read(p->peer, buf + got, len - got)) > 0)
		got += (size_t)n;
	return (got);
}

/* Nothing queued: the bytes go straight to the socket, in order. */
static void
test_write_through_idle(void **state)
{
	struct pair	 p;
	struct evbuffer	*src = evbuffer_new();
	char		 buf[64];

	pair_new(&p);
	evbuffer_add(src, "hello, world", 12);
	assert_int_equal(xbev_write_through(p.bev, src, 5), 5);
	assert_int_equal(evbuffer_get_length(bufferevent_get_output(p.bev)),
	    0);
	assert_int_equal(evbuffer_get_length(src), 7);
	assert_int_equal(xbev_write_through(p.bev, src, 100), 7);
	assert_int_equal(peer_read(&p, buf, sizeof(buf)), 12);
	assert_memory_equal(buf, "hello, world", 12);
	evbuffer_free(src);
	pair_free(&p);
}

/*
 * Something queued already: the new bytes go behind it, none direct.
 * And with writing disabled, nothing is written past libevent.
 */
static void
test_write_through_queued(void **state)
{
	struct pair	 p;
	struct evbuffer	*src = evbuffer_new();
	char		 buf[64];

	pair_new(&p);
	evbuffer_add(bufferevent_get_output(p.bev), "first ", 6);
	evbuffer_add(src, "second", 6);
	assert_int_equal(xbev_write_through(p.bev, src, 6), 0);
	assert_int_equal(evbuffer_get_length(bufferevent_get_output(p.bev)),
	    12);
	assert_int_equal(peer_read(&p, buf, sizeof(buf)), 0);
	event_base_loop(p.base, EVLOOP_NONBLOCK);
	assert_int_equal(peer_read(&p, buf, sizeof(buf)), 12);
	assert_memory_equal(buf, "first second", 12);

	bufferevent_disable(p.bev, EV_WRITE);
	evbuffer_add(src, "later", 5);
	assert_int_equal(xbev_write_through(p.bev, src, 5), 0);
	assert_int_equal(peer_read(&p, buf, sizeof(buf)), 0);
	evbuffer_free(src);
	pair_free(&p);
}

/* A full socket takes part; the rest is queued, and order holds. */
static void
test_write_through_full(void **state)
{
	struct pair	 p;
	struct evbuffer	*src = evbuffer_new();
	unsigned char	*big, *got;
	size_t		 n = 4 * 1024 * 1024, w, have = 0, i;
	int		 sz = 65536;

	pair_new(&p);
	(void)setsockopt(bufferevent_getfd(p.bev), SOL_SOCKET, SO_SNDBUF,
	    &sz, sizeof(sz));
	big = malloc(n);
	got = malloc(n);
	assert_non_null(big);
	assert_non_null(got);
	for (i = 0; i < n; i++)
		big[i] = (unsigned char)(i * 7 + i / 251);
	evbuffer_add(src, big, n);
	w = xbev_write_through(p.bev, src, n);
	assert_true(w > 0 && w < n);
	assert_int_equal(evbuffer_get_length(bufferevent_get_output(p.bev)),
	    n - w);
	assert_int_equal(evbuffer_get_length(src), 0);
	while (have < n) {
		have += peer_read(&p, (char *)got + have, n - have);
		event_base_loop(p.base, EVLOOP_NONBLOCK);
	}
	assert_memory_equal(got, big, n);
	free(big);
	free(got);
	evbuffer_free(src);
	pair_free(&p);
}

/* As if libevent's own read had put N bytes of BUF in the input. */
static void
fake_read(struct pair *p, const char *buf, size_t n)
{
	struct evbuffer	*in = bufferevent_get_input(p->bev);

	evbuffer_unfreeze(in, 0);	/* libevent keeps the end frozen */
	assert_int_equal(evbuffer_add(in, buf, n), 0);
	evbuffer_freeze(in, 0);
}

/*
 * Reading ahead: only once libevent's read filled 4 KiB, and then up to
 * MAX exactly, whatever space the input's chains had.
 */
static void
test_read_more(void **state)
{
	struct pair	 p;
	struct evbuffer	*in;
	char		 buf[XBEV_LIBEVENT_READ * 4];

	pair_new(&p);
	in = bufferevent_get_input(p.bev);
	memset(buf, 'x', sizeof(buf));
	fake_read(&p, buf, 100);
	assert_int_equal(xbev_read_more(p.bev, sizeof(buf)), 0);
	evbuffer_drain(in, 100);
	assert_int_equal(write(p.peer, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	fake_read(&p, buf, XBEV_LIBEVENT_READ);
	assert_int_equal(xbev_read_more(p.bev, XBEV_LIBEVENT_READ * 2),
	    XBEV_LIBEVENT_READ);
	assert_int_equal(evbuffer_get_length(in), XBEV_LIBEVENT_READ * 2);
	pair_free(&p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_through_idle),
		cmocka_unit_test(test_write_through_queued),
		cmocka_unit_test(test_write_through_full),
		cmocka_unit_test(test_read_more),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
