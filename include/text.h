/*
 * text.h -- making bytes from peers safe to quote: in logs, errors,
 * JSON (jansson refuses invalid UTF-8) and on a terminal.
 */
#ifndef VRELAY_TEXT_H
#define VRELAY_TEXT_H

#include <stddef.h>

/* Replace every byte outside printable ASCII (0x20-0x7e) with '?'. */
char	*text_ascii(char *);
/*
 * Copy LEN bytes of SRC into DST (SIZE bytes, NUL-terminated) the same
 * way; a copy cut short ends in "..." when SIZE allows.
 */
char	*text_ascii_copy(char *, size_t, const void *, size_t);
/*
 * Copy LEN bytes of SRC into DST (SIZE bytes, NUL-terminated) for a
 * terminal: well-formed UTF-8 and printable ASCII stay, backslash,
 * newline, CR and tab become \\ \n \r \t, and every other byte (C0
 * controls such as ESC, DEL, the C1 controls' bytes, bytes that are
 * not UTF-8) \xHH.  Returns the length of the whole escaped text (as
 * snprintf): at most TEXT_VIS_SIZE(LEN) - 1; a copy that does not fit
 * ends at a whole escape.
 */
#define TEXT_VIS_SIZE(len)	((len) * 4 + 1)
size_t	 text_vis(char *, size_t, const void *, size_t);
/*
 * Whether LEN bytes are a name that may be shown as it is: well-formed
 * UTF-8 without control characters.
 */
int	 text_utf8_ok(const void *, size_t);

#endif
