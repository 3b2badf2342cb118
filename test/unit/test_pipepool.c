/*
 * test_pipepool.c -- common/pipepool.c: pipes lent and kept, their
 * size, and a pipe's bytes copied out or dropped.
 */
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <unistd.h>

#include <cmocka.h>

#include <event2/buffer.h>

#include "pipepool.h"

/* Kept only while empty and within KEEP; given back as -1. */
static void
test_keep(void **state)
{
	struct pipepool	*pp;
	int		 a[2], b[2], c[2], a0;

	(void)state;
	pp = pipepool_new(1, 64 * 1024);
	assert_int_equal(pipepool_get(pp, a), 0);
	assert_int_equal(pipepool_get(pp, b), 0);
	assert_true(a[0] >= 0 && b[0] >= 0 && a[0] != b[0]);
	assert_true(fcntl(a[1], F_GETPIPE_SZ) >= 64 * 1024);
	a0 = a[0];
	pipepool_put(pp, a, 1);
	assert_int_equal(a[0], -1);
	assert_int_equal(a[1], -1);
	/* No room left: closed. */
	pipepool_put(pp, b, 1);
	assert_int_equal(b[0], -1);
	/* The kept one comes back. */
	assert_int_equal(pipepool_get(pp, c), 0);
	assert_int_equal(c[0], a0);
	/* One that holds bytes is closed, not kept: the next is empty. */
	assert_int_equal(write(c[1], "x", 1), 1);
	pipepool_put(pp, c, 0);
	assert_int_equal(c[0], -1);
	assert_int_equal(pipepool_get(pp, a), 0);
	assert_int_equal(read(a[0], &a0, 1), -1);
	assert_int_equal(errno, EAGAIN);
	pipepool_put(pp, a, 1);
	pipepool_put(pp, c, 1);		/* -1: nothing */
	pipepool_free(pp);
	pipepool_free(NULL);
}

/* Bytes out of a pipe: copied to a buffer, in order, or dropped. */
static void
test_copyout_drop(void **state)
{
	struct evbuffer	*b;
	unsigned char	 buf[100000], got[4];
	int		 p[2], null;
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)(i * 7 + i / 251);
	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	assert_true(fcntl(p[1], F_SETPIPE_SZ, 1 << 20) >= 1 << 17);
	assert_int_equal(write(p[1], buf, sizeof(buf)), sizeof(buf));
	b = evbuffer_new();
	assert_non_null(b);
	evbuffer_add(b, "ab", 2);
	pipepool_copyout(p[0], b, 60000);
	assert_int_equal(evbuffer_get_length(b), 60002);
	assert_memory_equal(evbuffer_pullup(b, -1), "ab", 2);
	assert_memory_equal(evbuffer_pullup(b, -1) + 2, buf, 60000);
	/* Dropped: to /dev/null, and where that is no splice target. */
	null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	assert_true(null >= 0);
	pipepool_drop(p[0], 30000, null);
	pipepool_drop(p[0], 5000, -1);
	assert_int_equal(read(p[0], got, sizeof(got)), sizeof(got));
	assert_memory_equal(got, buf + 95000, sizeof(got));
	pipepool_drop(p[0], sizeof(buf) - 95004, null);
	assert_int_equal(read(p[0], got, 1), -1);
	assert_int_equal(errno, EAGAIN);
	close(null);
	close(p[0]);
	close(p[1]);
	evbuffer_free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keep),
		cmocka_unit_test(test_copyout_drop),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
