/*
 * test_caller.c -- unit tests for the vmomi leg's attestation line
 * (caller.h): round trips, the caps, and every refusal.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "caller.h"

/* Parse the C string S as one line. */
static int
parse(const char *s, struct caller *c)
{
	return (caller_parse(s, strlen(s), c));
}

/* Format, parse back, the same; the exact text is the documented one. */
static void
test_round_trip(void **state)
{
	struct caller	c = { "esx-a.example", 5, 1234 }, d;
	char		buf[CALLER_LINE_MAX + 1];
	size_t		len;

	assert_int_equal(caller_format(&c, buf, sizeof(buf), &len), CALLER_OK);
	assert_int_equal(len, strlen(buf));
	assert_string_equal(buf,
	    "VRELAY-CALLER 1 host=esx-a.example cid=5 port=1234\r\n");
	assert_int_equal(caller_parse(buf, len, &d), CALLER_OK);
	assert_string_equal(d.host, c.host);
	assert_int_equal(d.cid, 5);
	assert_int_equal(d.port, 1234);
	/* The extremes of each field. */
	memset(c.host, 'h', PROTO_HOST_MAX);
	c.host[PROTO_HOST_MAX] = '\0';
	c.cid = 4294967295U;
	c.port = 0;
	assert_int_equal(caller_format(&c, buf, sizeof(buf), &len),
	    CALLER_E_TOOLONG);
	c.host[200] = '\0';
	assert_int_equal(caller_format(&c, buf, sizeof(buf), &len), CALLER_OK);
	assert_true(len <= CALLER_LINE_MAX);
	assert_int_equal(caller_parse(buf, len, &d), CALLER_OK);
	assert_string_equal(d.host, c.host);
	assert_int_equal(d.cid, 4294967295U);
	assert_int_equal(d.port, 0);
	/* No host, or a host HELLO would refuse, is never written. */
	c.host[0] = '\0';
	assert_int_equal(caller_format(&c, buf, sizeof(buf), &len),
	    CALLER_E_HOST);
	strlcpy(c.host, "a b", sizeof(c.host));
	assert_int_equal(caller_format(&c, buf, sizeof(buf), &len),
	    CALLER_E_HOST);
}

/* The fields alone, as the locator names its legs. */
static void
test_fields(void **state)
{
	struct caller	 c;
	const char	*s = "host=B cid=7 port=99 via tcp://127.0.0.1:1";

	assert_int_equal(caller_fields(s, strstr(s, " via ") - s, &c),
	    CALLER_OK);
	assert_string_equal(c.host, "B");
	assert_int_equal(c.cid, 7);
	assert_int_equal(c.port, 99);
	assert_int_equal(caller_fields(s, strlen(s), &c), CALLER_E_SYNTAX);
	assert_string_equal(c.host, "");	/* cleared on failure */
}

/* Every malformed line is refused with the code that says why. */
static void
test_refused(void **state)
{
	static const struct {
		const char	*line;
		int		 e;
	} bad[] = {
		{ "", CALLER_E_SYNTAX },
		{ "\r\n", CALLER_E_SYNTAX },
		{ "VRELAY-CALLER 1 host=A cid=5 port=1\n", CALLER_E_SYNTAX },
		{ "VRELAY-CALLER 1 host=A cid=5 port=1", CALLER_E_SYNTAX },
		{ "VRELAY-CALLER 1 host=A cid=5 port=1\r\n\r\n",
		    CALLER_E_SYNTAX },
		{ "vrelay-caller 1 host=A cid=5 port=1\r\n", CALLER_E_SYNTAX },
		{ "VRELAY-CALLER 2 host=A cid=5 port=1\r\n", CALLER_E_VERSION },
		{ "VRELAY-CALLER x host=A cid=5 port=1\r\n", CALLER_E_SYNTAX },
		{ "VRELAY-CALLER 1  host=A cid=5 port=1\r\n", CALLER_E_SYNTAX },
		{ "VRELAY-CALLER 1 host= cid=5 port=1\r\n", CALLER_E_HOST },
		{ "VRELAY-CALLER 1 host=A\x01 cid=5 port=1\r\n",
		    CALLER_E_HOST },
		{ "VRELAY-CALLER 1 host=A\xc3\xa9 cid=5 port=1\r\n",
		    CALLER_E_HOST },
		{ "VRELAY-CALLER 1 host=A cid=-5 port=1\r\n", CALLER_E_NUMBER },
		{ "VRELAY-CALLER 1 host=A cid=+5 port=1\r\n", CALLER_E_NUMBER },
		{ "VRELAY-CALLER 1 host=A cid=05 port=1\r\n", CALLER_E_NUMBER },
		{ "VRELAY-CALLER 1 host=A cid=4294967296 port=1\r\n",
		    CALLER_E_NUMBER },
		{ "VRELAY-CALLER 1 host=A cid=99999999999999999999999 "
		    "port=1\r\n", CALLER_E_NUMBER },
		{ "VRELAY-CALLER 1 host=A cid= port=1\r\n", CALLER_E_NUMBER },
		{ "VRELAY-CALLER 1 host=A port=1 cid=5\r\n", CALLER_E_SYNTAX },
		{ "VRELAY-CALLER 1 host=A cid=5\r\n", CALLER_E_SYNTAX },
		{ "VRELAY-CALLER 1 host=A cid=5 port=1 x=2\r\n",
		    CALLER_E_SYNTAX },
		{ "VRELAY-CALLER 1 host=A cid=5 port=1x\r\n", CALLER_E_SYNTAX },
	};
	struct caller	c;
	char		big[CALLER_LINE_MAX + 8];
	size_t		i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse(bad[i].line, &c) != bad[i].e)
			fail_msg("line %zu \"%s\": %d, expected %d", i,
			    bad[i].line, parse(bad[i].line, &c), bad[i].e);
		assert_string_equal(c.host, "");
		assert_string_not_equal(caller_strerror(bad[i].e), "");
	}
	/* One byte over the cap is refused before anything is read. */
	memset(big, 'x', sizeof(big));
	assert_int_equal(caller_parse(big, CALLER_LINE_MAX + 1, &c),
	    CALLER_E_TOOLONG);
	assert_string_equal(caller_strerror(1), "unknown caller line error");
	assert_string_equal(caller_strerror(-99), "unknown caller line error");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_refused),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
