/*
 * test_xbev.c -- unit tests for the socket bufferevent helper (xbev.h):
 * reading ahead.  Real sockets (socketpairs), a real event base.  The
 * readv loop under it is tested with xsock (test_xsock.c).
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
		cmocka_unit_test(test_read_more),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
