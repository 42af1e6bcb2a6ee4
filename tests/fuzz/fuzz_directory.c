/*
 * fuzz_directory.c - ruf_directory_load_mem with a fixed root.
 *
 * The root is the one in tests/vectors/cert/root.hex (seed bytes 0x01); the
 * seed corpus (tests/fuzz/corpus/directory/, written by test_directory with
 * RUF_WRITE_CORPUS) holds directories signed under it, so mutations reach
 * every check, and a mutated body fails only at the signature.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cert.h"
#include "directory.h"

#define NOW 1800000000u

static ruf_cert *root;

static void
init(void)
{
	struct ruf_cert_template t = {
	    .role = RUF_ROLE_ROOT,
	    .serial = 1,
	    .subject = "hq-root",
	    .not_before = 1790000000u,
	    .not_after = 1830000000u,
	};
	uint8_t seed[crypto_sign_SEEDBYTES], kx_sk[32], pk[32], sk[64], kx_pk[32], *raw;
	size_t len;

	if (sodium_init() < 0)
		abort();
	memset(seed, 0x01, sizeof(seed));
	memset(kx_sk, 0x01 ^ 0x5a, sizeof(kx_sk));
	if (crypto_sign_seed_keypair(pk, sk, seed) != 0 ||
	    crypto_scalarmult_base(kx_pk, kx_sk) != 0)
		abort();
	t.sign_pk = pk;
	t.kx_pk = kx_pk;
	if (ruf_cert_issue(&t, sk, pk, &raw, &len) != 0 || ruf_cert_parse(raw, len, &root) != 0)
		abort();
	free(raw);
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	ruf_directory *dir = NULL;

	if (root == NULL)
		init();
	if (ruf_directory_load_mem(d, n, root, NOW, &dir) != 0) {
		if (dir != NULL)
			abort();
		return 0;
	}
	/* Whatever loads must honour the invariants the lookups rely on. */
	for (size_t i = 0; i < dir->n_queues; i++)
		if (ruf_directory_queue(dir, dir->queues[i].name) != &dir->queues[i])
			abort();
	for (size_t i = 0; i < dir->n_revoked; i++)
		if (!ruf_directory_is_revoked(dir, dir->revoked[i]))
			abort();
	if (ruf_directory_queue(dir, "triage") == NULL || dir->signer == NULL ||
	    dir->policy == NULL || dir->rawlen != n)
		abort();
	ruf_directory_free(dir);
	return 0;
}
