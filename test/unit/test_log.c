/*
 * test_log.c -- common/log.c: the line format, and deferred lines
 * (log_defer): info and debug wait for log_flush() and wake the loop
 * once, warnings go at once behind what waits, a full buffer writes
 * itself, undeferring writes what waits.  stderr is a temporary file
 * while a test logs; it is read back once stderr is restored.
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

#include "log.h"
#include "utest.h"

static int	wakes;

static void
wake(void *arg)
{
	assert_ptr_equal(arg, &wakes);
	wakes++;
}

/* Lines in order, each "... PROG[PID]: LEVEL message[: suffix]". */
static void
test_format(void **state)
{
	char	*out, want[64];

	(void)state;
	log_init("tlog", LOG_LEVEL_INFO);
	utest_capture_start();
	log_info("one %d", 1);
	log_debug("not shown");
	errno = ENOENT;
	log_warn("two");
	out = utest_capture_stop();
	snprintf(want, sizeof(want), " tlog[%ld]: info one 1\n",
	    (long)getpid());
	assert_non_null(strstr(out, want));
	assert_non_null(strstr(out, "warn two: No such file or directory\n"));
	assert_null(strstr(out, "not shown"));
	assert_true(strstr(out, "one 1") < strstr(out, "two"));
}

/* Deferred lines wait, wake once, and keep their order with warnings. */
static void
test_defer(void **state)
{
	char	*out;

	(void)state;
	log_init("tlog", LOG_LEVEL_DEBUG);
	wakes = 0;
	utest_capture_start();
	log_defer(wake, &wakes);
	log_info("a1");
	log_debug("a2");
	out = utest_capture_read();
	assert_int_equal(wakes, 1);
	assert_string_equal(out, "");
	log_flush();
	out = utest_capture_read();
	assert_non_null(strstr(out, "info a1\n"));
	assert_true(strstr(out, "a1") < strstr(out, "debug a2\n"));
	log_info("b1");
	assert_int_equal(wakes, 2);
	log_warnx("b2");		/* at once, behind b1 */
	out = utest_capture_read();
	assert_non_null(strstr(out, "warn b2\n"));
	assert_true(strstr(out, "b1") < strstr(out, "b2"));
	log_info("c1");
	log_defer(NULL, NULL);		/* what waits goes */
	assert_non_null(strstr(utest_capture_read(), "info c1\n"));
	log_info("c2");			/* and nothing waits any more */
	out = utest_capture_stop();
	assert_non_null(strstr(out, "info c2\n"));
	assert_int_equal(wakes, 3);
}

/* A full buffer writes itself; a too long line is cut, still a line. */
static void
test_defer_full(void **state)
{
	char	*out, *p, big[4000], want[16];
	int	i;

	(void)state;
	log_init("tlog", LOG_LEVEL_INFO);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	wakes = 0;
	utest_capture_start();
	log_defer(wake, &wakes);
	for (i = 0; i < 100; i++)
		log_info("%03d %.1000s", i, big);
	out = utest_capture_read();
	assert_true(strlen(out) > 0);		/* some went already */
	assert_true(wakes > 1 && wakes < 10);
	log_info("%s", big);
	log_defer(NULL, NULL);
	out = utest_capture_stop();
	for (i = 0, p = out; i < 100; i++) {
		snprintf(want, sizeof(want), "info %03d x", i);
		assert_non_null(p = strstr(p, want));
	}
	p = strrchr(out, ' ');
	assert_true(strlen(p) < 2400 && strlen(p) > 1000);
	assert_int_equal(out[strlen(out) - 1], '\n');
	assert_int_equal(p[strlen(p) - 2], 'x');
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_defer),
		cmocka_unit_test(test_defer_full),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
