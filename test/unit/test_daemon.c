/*
 * test_daemon.c -- common/daemon.c: refusals at accept are counted
 * one by one but logged at most once a second, the next line saying
 * how many were not.  stderr is a temporary file while a test logs.
 */
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

#include "daemon.h"
#include "log.h"
#include "utest.h"

/* Lines in S. */
static int
lines(const char *s)
{
	int	n = 0;

	for (; *s != '\0'; s++)
		n += *s == '\n';
	return (n);
}

/* A flood of refusals: every one counted, one logged, then the tally. */
static void
test_refused(void **state)
{
	struct daemon	 d;
	char		*out;
	int		 i;

	memset(&d, 0, sizeof(d));
	utest_capture_start();
	for (i = 0; i < 100; i++)
		daemon_refused(&d, "guest=%d refused: test", i);
	out = utest_capture_stop();
	assert_int_equal(d.refused, 100);
	assert_int_equal(lines(out), 1);
	assert_non_null(strstr(out, "guest=0 refused: test\n"));

	usleep(1100 * 1000);
	utest_capture_start();
	daemon_refused(&d, "guest=%d refused: test", 100);
	daemon_refused(&d, "guest=%d refused: test", 101);
	out = utest_capture_stop();
	assert_int_equal(d.refused, 102);
	assert_int_equal(lines(out), 1);
	assert_non_null(strstr(out, "guest=100 refused: test (and 99 more "
	    "refused in the last"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refused),
	};

	log_init("test_daemon", LOG_LEVEL_INFO);
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
