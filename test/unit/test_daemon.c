/*
 * test_daemon.c -- common/daemon.c: refusals at accept are counted
 * one by one but logged at most once a second, the next line saying
 * how many were not.  stderr is a temporary file while a test logs.
 * A TLS probe freed with the event base does not wake a freed event;
 * its certificates come from deploy/mkcerts.sh.
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
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "daemon.h"
#include "log.h"
#include "tls.h"
#include "utest.h"
#include "xaddr.h"

static char	dir[64];

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

/* A CA and relay h1, in a scratch directory. */
static int
setup(void **state)
{
	return (utest_certs(dir, sizeof(dir), "$m -d $d ca; "
	    "$m -d $d relay h1"));
}

static int
teardown(void **state)
{
	return (utest_certs_rm(dir));
}

/*
 * A relay stopping with its first link to a host still a probe: the
 * link's bufferevent_free() is finalized in event_base_free(), which
 * ends the probe after the daemon's wake event is gone.
 */
static void
test_fini_probe(void **state)
{
	struct daemon		 d;
	struct daemon_tlsconf	 tc;
	struct xaddr		*a;
	struct bufferevent	*bev;
	char			 cert[128], key[128], ca[128], addr[64];
	int			 lfd, fd, up, port;

	snprintf(cert, sizeof(cert), "%s/h1.pem", dir);
	snprintf(key, sizeof(key), "%s/h1.key", dir);
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	tc.cert = cert;
	tc.key = key;
	tc.ca = ca;
	daemon_init(&d, "test_daemon");
	daemon_tls(&d, &tc, TLS_ROLE_RELAY);
	tls_set_resumable(d.tls, TLS_ROLE_RELAY);	/* as vrelay does */

	/* A listener that never answers the handshake. */
	lfd = utest_listen(1, &port);
	snprintf(addr, sizeof(addr), "tcp://127.0.0.1:%d", port);
	assert_int_equal(xaddr_parse(addr, &a), 0);
	assert_int_equal(xaddr_connect(a, &fd, &up), 0);
	bev = daemon_connected(&d, fd, up, a, TLS_ROLE_RELAY, "h2");
	assert_non_null(bev);
	assert_int_equal(daemon_link_wait(&d, a, TLS_ROLE_RELAY, "h2"), 1);
	/* The second link waits: the first is a probe. */
	bufferevent_free(bev);
	daemon_fini(&d);
	xaddr_free(a);
	close(lfd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refused),
		cmocka_unit_test_setup_teardown(test_fini_probe, setup,
		    teardown),
	};

	log_init("test_daemon", LOG_LEVEL_INFO);
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
