/*
 * test_text.c -- common/text.c: printable-ASCII copies, the escaped
 * copy for terminals (text_vis: UTF-8 kept, controls escaped, cuts at
 * whole escapes) and the UTF-8 name check.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <setjmp.h>

#include <cmocka.h>

#include "text.h"

/* text_vis of the C string IN must be WANT, and say its length. */
static void
vis_is(const char *in, const char *want)
{
	char	buf[256];
	size_t	n;

	n = text_vis(buf, sizeof(buf), in, strlen(in));
	if (strcmp(buf, want) != 0)
		fail_msg("text_vis(\"%s\"): \"%s\", want \"%s\"", in, buf,
		    want);
	assert_int_equal(n, strlen(want));
}

/* What stays, what is escaped and how. */
static void
test_vis_escapes(void **state)
{
	char	buf[16];

	(void)state;
	vis_is("", "");
	vis_is("plain 10.0.0.5 {\"a\":1}", "plain 10.0.0.5 {\"a\":1}");
	vis_is("a\033[2Jb", "a\\x1b[2Jb");
	vis_is("line1\nline2\r\ttab", "line1\\nline2\\r\\ttab");
	vis_is("back\\slash", "back\\\\slash");
	vis_is("del\x7f bell\a", "del\\x7f bell\\x07");
	/* UTF-8 stays as it is; the C1 controls do not. */
	vis_is("\xc3\xa9\xe6\xbc\xa2\xf0\x9f\x99\x82", "\xc3\xa9\xe6\xbc\xa2"
	    "\xf0\x9f\x99\x82");
	vis_is("csi\xc2\x9b" "2J", "csi\\xc2\\x9b2J");
	vis_is("\xc2\xa0nbsp", "\xc2\xa0nbsp");
	/* Not UTF-8: a lone byte, an overlong form, a surrogate, a cut. */
	vis_is("\xff", "\\xff");
	vis_is("\xc0\xaf", "\\xc0\\xaf");
	vis_is("\xed\xa0\x80", "\\xed\\xa0\\x80");
	vis_is("cut\xe6\xbc", "cut\\xe6\\xbc");
	/* A NUL inside the bytes given. */
	assert_int_equal(text_vis(buf, sizeof(buf), "a\0b", 3), 6);
	assert_string_equal(buf, "a\\x00b");
}

/* Short buffers: whole escapes only, always terminated, full length. */
static void
test_vis_cut(void **state)
{
	char	buf[8];

	(void)state;
	memset(buf, 'Z', sizeof(buf));
	assert_int_equal(text_vis(buf, 6, "ab\033cd", 5), 8);
	assert_string_equal(buf, "ab");
	assert_int_equal(text_vis(buf, 7, "ab\033cd", 5), 8);
	assert_string_equal(buf, "ab\\x1b");
	assert_int_equal(text_vis(buf, 4, "a\xe6\xbc\xa2", 4), 4);
	assert_string_equal(buf, "a");
	assert_int_equal(text_vis(buf, 1, "abc", 3), 3);
	assert_string_equal(buf, "");
	buf[0] = 'Z';
	assert_int_equal(text_vis(buf, 0, "abc", 3), 3);
	assert_int_equal(buf[0], 'Z');
	/* The documented worst case fits. */
	assert_int_equal(text_vis(buf, TEXT_VIS_SIZE(1), "\001", 1), 4);
	assert_string_equal(buf, "\\x01");
}

/* The printable-ASCII copies and the UTF-8 name check. */
static void
test_ascii_utf8(void **state)
{
	char	s[] = "a\033b\xc3\xa9", buf[8];

	(void)state;
	assert_string_equal(text_ascii(s), "a?b??");
	assert_string_equal(text_ascii_copy(buf, sizeof(buf),
	    "0123456789", 10), "0123...");
	assert_true(text_utf8_ok("\xc3\xa9t\xc3\xa9", 5));
	assert_false(text_utf8_ok("a\nb", 3));
	assert_false(text_utf8_ok("\xc0\xaf", 2));
	assert_false(text_utf8_ok("\xe6\xbc", 2));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vis_escapes),
		cmocka_unit_test(test_vis_cut),
		cmocka_unit_test(test_ascii_utf8),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
