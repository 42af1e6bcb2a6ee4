/* fuzz_archive_rec.c - the desk archive's index record decoder (client/ruf_archive.c). */
#include <stddef.h>
#include <stdint.h>

#include "../../client/ruf_archive.c"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct ruf_archive_rec r, r2;
	uint8_t buf[RUF_ARCHIVE_IDX_MAX];
	size_t len;

	if (ruf_archive_rec_decode(d, n, &r) != 0)
		return 0;
	/* What decodes re-encodes to something that decodes to the same record. */
	if (ruf_archive_rec_encode(&r, buf, sizeof(buf), &len) != 0 ||
	    ruf_archive_rec_decode(buf, len, &r2) != 0 || memcmp(&r, &r2, sizeof(r)) != 0)
		__builtin_trap();
	return 0;
}
