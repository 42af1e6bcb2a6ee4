/*
 * fuzz_outbox_meta.c - the outbox metadata record decoder (client/outbox.h)
 * on arbitrary bytes: a damaged .meta must give an error (and quarantine),
 * never a crash. What decodes must re-encode to exactly the same bytes
 * (the record has one fixed encoding).
 * Seeds: tests/fuzz/corpus/outbox_meta/, written by test_field_formats with
 * RUF_WRITE_CORPUS=dir.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../client/cli_outbox.c"

const char *cli_progname = "fuzz";

void
cli_path(char *out, size_t outlen, const char *fmt, ...)
{
	(void)fmt;
	if (outlen > 0)
		out[0] = '\0';
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct outbox_entry e;
	uint8_t *buf;
	size_t len;

	if (outbox_meta_decode(d, n, &e) != 0)
		return 0;
	if (outbox_meta_encode(&e, &buf, &len) != 0 || len != n || memcmp(buf, d, n) != 0)
		abort();
	free(buf);
	outbox_entry_clear(&e);
	return 0;
}
