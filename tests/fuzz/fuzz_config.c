/* fuzz_config.c - rufd's configuration parser on arbitrary bytes. */
#include <stddef.h>
#include <stdint.h>

#include "config.h"

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct rufd_config cfg;
	ruf_diag diag;

	if (rufd_config_parse((const char *)d, n, "fuzz", &cfg, &diag) == 0)
		rufd_config_free(&cfg);
	return 0;
}
