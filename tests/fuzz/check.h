/* Fuzz targets: a broken promise aborts, saying which (libFuzzer keeps the input). */
#ifndef FUZZ_CHECK_H
#define FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(x)                                                                       \
	do {                                                                                \
		if (!(x)) {                                                                 \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x); \
			abort();                                                            \
		}                                                                           \
	} while (0)

#endif
