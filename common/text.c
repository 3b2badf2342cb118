/*
 * text.c -- printable-ASCII copies of untrusted bytes, and the check
 * for names that may stay UTF-8 (text.h).
 */
#include <stdint.h>
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
 * Whether LEN bytes at P are well-formed UTF-8 (no overlong forms, no
 * surrogates, nothing past U+10FFFF) without C0 controls or DEL.
 */
int
text_utf8_ok(const void *v, size_t len)
{
	const unsigned char	*p = v;
	uint32_t		 cp;
	size_t			 i = 0, n, k;

	while (i < len) {
		if (p[i] < 0x80) {
			if (p[i] < 0x20 || p[i] == 0x7f)
				return (0);
			i++;
			continue;
		}
		if (p[i] >= 0xc2 && p[i] <= 0xdf) {
			n = 1;
			cp = p[i] & 0x1f;
		} else if (p[i] >= 0xe0 && p[i] <= 0xef) {
			n = 2;
			cp = p[i] & 0x0f;
		} else if (p[i] >= 0xf0 && p[i] <= 0xf4) {
			n = 3;
			cp = p[i] & 0x07;
		} else
			return (0);
		if (len - i <= n)
			return (0);
		for (k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return (0);
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return (0);
		i += n + 1;
	}
	return (1);
}
