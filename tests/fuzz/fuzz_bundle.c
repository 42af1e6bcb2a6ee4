/*
 * fuzz_bundle.c - the bundle reader (client/bundle.h) on arbitrary bytes,
 * as envelopes and as receipts: errors, never a crash, a leak or a read
 * outside the file. Every entry the reader reports lies inside the file.
 * Seeds: tests/fuzz/corpus/bundle/, written by test_field_formats with
 * RUF_WRITE_CORPUS=dir.
 */
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../client/cli_bundle.c"

static uint64_t fsize;

static int
check(void *ctx, int fd, const struct bundle_entry *e)
{
	(void)ctx;
	(void)fd;
	if (e->len == 0 || e->off > fsize || e->len > fsize - e->off)
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	static int fd = -1;
	uint8_t *cert;
	size_t cl;

	if (fd == -1 && (fd = memfd_create("fuzz", MFD_CLOEXEC)) == -1)
		abort();
	if (ftruncate(fd, 0) != 0 || pwrite(fd, d, n, 0) != (ssize_t)n)
		abort();
	fsize = n;
	(void)bundle_read(fd, BUNDLE_KIND_ENVELOPES, check, NULL, NULL, NULL, NULL);
	if (bundle_read(fd, BUNDLE_KIND_RECEIPTS, check, NULL, &cert, &cl, NULL) == 0) {
		if (cl < 1 || cl > BUNDLE_CERT_MAX)
			abort();
		free(cert);
	} else if (cert != NULL) {
		abort();
	}
	return 0;
}
