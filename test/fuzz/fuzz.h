/*
 * fuzz.h -- what every libFuzzer harness here shares.
 */
#ifndef VRELAY_FUZZ_H
#define VRELAY_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Not assert(): must stay on even if someone builds with NDEBUG. */
#define CHECK(x) do {							\
	if (!(x)) {							\
		fprintf(stderr, "%s:%d: check failed: %s\n",		\
		    __FILE__, __LINE__, #x);				\
		abort();						\
	}								\
} while (0)

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* CHECK that S is printable ASCII, as every reason and message must be. */
static inline void
fz_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		CHECK((unsigned char)*s >= 0x20 && (unsigned char)*s <= 0x7e);
}

#endif
