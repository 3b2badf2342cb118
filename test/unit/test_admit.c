/*
 * test_admit.c -- unit tests for per-source admission (admit.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "admit.h"
#include "xaddr.h"

/* One source fills its share; others still get in; release frees. */
static void
test_per_source(void **state)
{
	struct admit	*a = admit_new(2, 0);

	assert_int_equal(admit_take(a, "vsock:5"), ADMIT_OK);
	assert_int_equal(admit_take(a, "vsock:5"), ADMIT_OK);
	assert_int_equal(admit_take(a, "vsock:5"), ADMIT_E_SOURCE);
	assert_int_equal(admit_take(a, "vsock:6"), ADMIT_OK);
	assert_int_equal(admit_count(a, "vsock:5"), 2);
	assert_int_equal(admit_total(a), 3);
	admit_release(a, "vsock:5");
	assert_int_equal(admit_take(a, "vsock:5"), ADMIT_OK);
	/* Releasing what was never taken changes nothing. */
	admit_release(a, "vsock:7");
	assert_int_equal(admit_total(a), 3);
	admit_free(a);
	admit_free(NULL);
}

/* The total cap holds across sources, and counters say who refused. */
static void
test_total(void **state)
{
	struct admit	*a = admit_new(10, 3);
	json_t		*j;
	char		 k[16];
	int		 i;

	for (i = 0; i < 3; i++) {
		snprintf(k, sizeof(k), "10.0.0.%d", i);
		assert_int_equal(admit_take(a, k), ADMIT_OK);
	}
	assert_int_equal(admit_take(a, "10.0.0.9"), ADMIT_E_TOTAL);
	admit_release(a, "10.0.0.1");
	assert_int_equal(admit_count(a, "10.0.0.1"), 0);
	assert_int_equal(admit_take(a, "10.0.0.9"), ADMIT_OK);
	j = admit_json(a);
	assert_int_equal(json_integer_value(json_object_get(j, "total")), 3);
	assert_int_equal(json_integer_value(json_object_get(j, "sources")),
	    3);
	assert_int_equal(json_integer_value(json_object_get(j,
	    "refused_total")), 1);
	json_decref(j);
	assert_string_equal(admit_strerror(ADMIT_E_TOTAL), "too many in all");
	admit_free(a);
}

/* Sources: IP without port (v4, v6), vSocket CID, one for unix. */
static void
test_source(void **state)
{
	struct xaddr_peer	p;
	char			buf[ADMIT_SOURCE_MAX];

	memset(&p, 0, sizeof(p));
	p.type = XADDR_TCP;
	strlcpy(p.str, "tcp://10.1.2.3:4567", sizeof(p.str));
	admit_source(&p, buf, sizeof(buf));
	assert_string_equal(buf, "tcp://10.1.2.3");
	strlcpy(p.str, "tcp://[fe80::1]:80", sizeof(p.str));
	admit_source(&p, buf, sizeof(buf));
	assert_string_equal(buf, "tcp://[fe80::1]");
	p.type = XADDR_VSOCK;
	p.cid = 42;
	admit_source(&p, buf, sizeof(buf));
	assert_string_equal(buf, "vsock:42");
	p.type = XADDR_UNIX;
	admit_source(&p, buf, sizeof(buf));
	assert_string_equal(buf, "unix");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_per_source),
		cmocka_unit_test(test_total),
		cmocka_unit_test(test_source),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
