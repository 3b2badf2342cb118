/*
 * caller_fuzz.c -- libFuzzer harness for the attestation line parser
 * (caller.h), what the locator's gate reads from a relay before
 * anything else.
 *
 * The input is one line as it came off the wire (copied into its own
 * heap block, so ASan catches a read past its end), and also the bare
 * fields.  A line the parser accepts is formatted again and must come
 * back byte for byte: the line is canonical, so a difference means the
 * parser accepts something the relay would never write.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "caller.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct caller	 c, c2;
	char		 line[CALLER_LINE_MAX + 1];
	char		*buf;
	size_t		 len;
	int		 e;

	if ((buf = malloc(size + 1)) == NULL)
		return (0);
	memcpy(buf, data, size);
	if ((e = caller_parse(buf, size, &c)) == CALLER_OK) {
		CHECK(size <= CALLER_LINE_MAX);
		CHECK(caller_format(&c, line, sizeof(line), &len) ==
		    CALLER_OK);
		CHECK(len == size && memcmp(line, data, size) == 0);
		CHECK(caller_parse(line, len, &c2) == CALLER_OK);
		CHECK(strcmp(c.host, c2.host) == 0 && c.cid == c2.cid &&
		    c.port == c2.port);
	} else
		CHECK(e < 0 && caller_strerror(e) != NULL);
	if (caller_fields(buf, size, &c) == CALLER_OK)
		CHECK(strlen(c.host) > 0);
	free(buf);
	return (0);
}
