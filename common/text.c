/*
 * text.c -- printable-ASCII copies of untrusted bytes, escaped copies
 * that keep UTF-8, and the check for names that may stay UTF-8
 * (text.h).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "text.h"

/* Whether byte C may be shown as it is. */
static int
text_printable(unsigned char c)
{
	return (c >= 0x20 && c <= 0x7e);
}

/* In place: anything unprintable becomes '?'. */
char *
text_ascii(char *s)
{
	char	*p;

	for (p = s; *p != '\0'; p++)
		if (!text_printable((unsigned char)*p))
			*p = '?';
	return (s);
}

/* A bounded printable copy; "..." marks a cut. */
char *
text_ascii_copy(char *dst, size_t size, const void *src, size_t len)
{
	const unsigned char	*s = src;
	size_t			 i, max;

	if (size == 0)
		return (dst);
	max = size - 1;
	if (len > max && max > 3)
		max -= 3;
	for (i = 0; i < len && i < max; i++)
		dst[i] = text_printable(s[i]) ? (char)s[i] : '?';
	if (i < len)
		for (; i < size - 1; i++)
			dst[i] = '.';
	dst[i] = '\0';
	return (dst);
}

/*
 * The length of the well-formed multi-byte UTF-8 sequence at P (LEN
 * bytes left: no overlong form, no surrogate, nothing past U+10FFFF)
 * with its code point in *CP, or 0.
 */
static size_t
text_utf8_seq(const unsigned char *p, size_t len, uint32_t *cp)
{
	size_t	n, k;

	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 1;
		*cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 2;
		*cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 3;
		*cp = p[0] & 0x07;
	} else
		return (0);
	if (len <= n)
		return (0);
	for (k = 1; k <= n; k++) {
		if ((p[k] & 0xc0) != 0x80)
			return (0);
		*cp = (*cp << 6) | (p[k] & 0x3f);
	}
	if ((n == 2 && *cp < 0x800) || (n == 3 && *cp < 0x10000) ||
	    (*cp >= 0xd800 && *cp <= 0xdfff) || *cp > 0x10ffff)
		return (0);
	return (n + 1);
}

/* An escaped copy that keeps UTF-8 (text.h has the rules). */
size_t
text_vis(char *dst, size_t size, const void *src, size_t len)
{
	const unsigned char	*s = src;
	char			 esc[5];
	const char		*add;
	uint32_t		 cp;
	size_t			 i, n, k, out = 0, used = 0;
	int			 full = size == 0;

	for (i = 0; i < len; i += n) {
		add = esc;
		n = 1;
		if (s[i] == '\\')
			add = "\\\\";
		else if (s[i] == '\n')
			add = "\\n";
		else if (s[i] == '\r')
			add = "\\r";
		else if (s[i] == '\t')
			add = "\\t";
		else if (text_printable(s[i])) {
			esc[0] = (char)s[i];
			esc[1] = '\0';
		} else if ((n = text_utf8_seq(s + i, len - i, &cp)) > 0 &&
		    cp >= 0xa0) {
			/* Not the C1 controls, which some terminals obey. */
			memcpy(esc, s + i, n);
			esc[n] = '\0';
		} else {
			n = 1;
			snprintf(esc, sizeof(esc), "\\x%02x", s[i]);
		}
		k = strlen(add);
		/* Whole escapes only: never half of one, nor of a char. */
		if (!full && used + k < size) {
			memcpy(dst + used, add, k);
			used += k;
		} else
			full = 1;
		out += k;
	}
	if (size > 0)
		dst[used] = '\0';
	return (out);
}

/*
 * Whether LEN bytes at P are well-formed UTF-8 (no overlong forms, no
 * surrogates, nothing past U+10FFFF) without C0 controls or DEL.
 */
int
text_utf8_ok(const void *v, size_t len)
{
	const unsigned char	*p = v;
	uint32_t		 cp;
	size_t			 i = 0, n;

	while (i < len) {
		if (p[i] < 0x80) {
			if (p[i] < 0x20 || p[i] == 0x7f)
				return (0);
			i++;
			continue;
		}
		if ((n = text_utf8_seq(p + i, len - i, &cp)) == 0)
			return (0);
		i += n;
	}
	return (1);
}
