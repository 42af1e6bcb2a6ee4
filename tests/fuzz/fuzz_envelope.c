/*
 * fuzz_envelope.c - libFuzzer target: the whole envelope opener.
 *
 * The input is written to a memfd and given to ruf_envelope_inspect,
 * ruf_envelope_verify and ruf_envelope_open under a fixed PKI built from
 * fixed seeds (envelope_fixture.h), so the seeds in corpus/envelope (written
 * by test_envelope with RUF_WRITE_CORPUS) are valid envelopes. Mutations
 * rarely get past the signature; fuzz_envelope_inner covers what lies behind
 * it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "envelope_fixture.h"
#include "util.h"

static struct fx F;
static int memfd = -1;

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct ruf_open_ctx ctx;
	struct ruf_env_info *info = NULL;
	struct ruf_opened *o = NULL;

	if (memfd == -1) {
		if (fx_init(&F) != 0 || (memfd = memfd_create("fuzz", MFD_CLOEXEC)) == -1)
			abort();
	}
	if (ftruncate(memfd, 0) != 0 || (n > 0 && pwrite(memfd, d, n, 0) != (ssize_t)n))
		abort();
	if (ruf_envelope_inspect(memfd, &info) == 0) {
		if (info == NULL || info->total_len != n)
			abort();
		ruf_env_info_free(info);
		info = NULL;
	}
	if (ruf_envelope_verify(memfd, F.root, NULL, FX_NOW, &info) == 0)
		ruf_env_info_free(info);
	ctx = (struct ruf_open_ctx){
	    .root = F.root,
	    .dir = NULL,
	    .ks = F.ks,
	    .now = FX_NOW,
	    .attach_dir = NULL,
	};
	if (ruf_envelope_open(memfd, &ctx, &o) == 0) {
		if (o == NULL || o->info == NULL)
			abort();
		ruf_opened_free(o);
	}
	return 0;
}
