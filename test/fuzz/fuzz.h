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

#endif
