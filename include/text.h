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
 * Whether LEN bytes are a name that may be shown as it is: well-formed
 * UTF-8 without control characters.
 */
int	 text_utf8_ok(const void *, size_t);

#endif
