/*
 * fuzz_cert.c - ruf_cert_parse + ruf_cert_verify against a fixed root.
 *
 * The root is the one in tests/vectors/cert/root.hex (seed bytes 0x01), so
 * the seed corpus (tests/fuzz/corpus/cert/, written by test_cert with
 * RUF_WRITE_CORPUS) holds certificates that verify, and the fuzzer can reach
 * the signature and validity checks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cert.h"

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
	ruf_cert *c = NULL, *dup = NULL;

	if (root == NULL)
		init();
	if (ruf_cert_parse(d, n, &c) != 0) {
		if (c != NULL)
			abort();
		return 0;
	}
	/* Anything that parses must have re-parsable raw bytes and sane fields. */
	if (c->rawlen != n || memcmp(c->raw, d, n) != 0 || ruf_role_name(c->role) == NULL ||
	    c->not_before > c->not_after)
		abort();
	if (ruf_cert_dup(c, &dup) != 0)
		abort();
	(void)ruf_cert_verify(c, root, 1800000000u);
	(void)ruf_cert_verify(c, c, 1800000000u);
	(void)ruf_cert_permits_situation(c, "darfur");
	(void)ruf_cert_permits_queue(c, "hrt");
	ruf_cert_free(dup);
	ruf_cert_free(c);
	return 0;
}
