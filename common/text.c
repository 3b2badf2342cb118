/*
 * text.c -- printable-ASCII copies of untrusted bytes (text.h).
 */
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
