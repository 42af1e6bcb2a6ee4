/*
 * fuzz_directory.c - ruf_directory_load_mem with a fixed root.
 *
 * The root is the one in tests/vectors/cert/root.hex (seed bytes 0x01); the
 * seed corpus (tests/fuzz/corpus/directory/, written by test_directory with
 * RUF_WRITE_CORPUS) holds directories signed under it.
 *
 * A mutated body fails at the signature, which would hide the policy
 * decoding and queue-key checks behind it. So an input starting with 0xff
 * (never a valid SignedDirectory: field 31, wire type 7) is taken as a
 * DirectoryBody, signed here with the fixed signer (seed bytes 0x05, as in
 * tests/vectors/cert/directory.hex) and then loaded like any other input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cert.h"
#include "directory.h"
#include "directory.pb-c.h"
#include "pb.h"

#define NOW 1800000000u

static ruf_cert *root;
static uint8_t signer_sk[64], *signer_cert;
static size_t signer_cert_len;

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
	uint8_t seed[crypto_sign_SEEDBYTES], kx_sk[32], pk[32], sk[64], kx_pk[32], spk[32], *raw;
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

	memset(seed, 0x05, sizeof(seed));
	memset(kx_sk, 0x05 ^ 0x5a, sizeof(kx_sk));
	if (crypto_sign_seed_keypair(spk, signer_sk, seed) != 0 ||
	    crypto_scalarmult_base(kx_pk, kx_sk) != 0)
		abort();
	t.role = RUF_ROLE_DIRSIGNER;
	t.serial = 2;
	t.subject = "dir-signer";
	t.sign_pk = spk;
	if (ruf_cert_issue(&t, sk, pk, &signer_cert, &signer_cert_len) != 0)
		abort();
}

/* Signs body as the fixed signer and wraps it (SignedDirectory, by hand). */
static uint8_t *
wrap(const uint8_t *body, size_t bodylen, size_t *outlen)
{
	Ruf__SignedDirectory sm = RUF__SIGNED_DIRECTORY__INIT;
	uint8_t sig[64], *out;

	if (ruf__sign_domain("ruf-directory-v1", 17, body, bodylen, signer_sk, sig) != 0)
		abort();
	sm.signer_cert.data = signer_cert;
	sm.signer_cert.len = signer_cert_len;
	sm.body.data = (uint8_t *)body;
	sm.body.len = bodylen;
	sm.signature.data = sig;
	sm.signature.len = sizeof(sig);
	if (ruf_pb_encode(&sm.base, &out, outlen) != 0)
		abort();
	return out;
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	ruf_directory *dir = NULL;
	uint8_t *wrapped = NULL;
	int rc;

	if (root == NULL)
		init();
	if (n > 0 && d[0] == 0xff) {
		wrapped = wrap(d + 1, n - 1, &n);
		d = wrapped;
	}
	rc = ruf_directory_load_mem(d, n, root, NOW, &dir);
	free(wrapped);
	if (rc != 0) {
		if (dir != NULL)
			abort();
		return 0;
	}
	/* Whatever loads must honour the invariants the lookups rely on. */
	for (size_t i = 0; i < dir->n_queues; i++)
		if (ruf_directory_queue(dir, dir->queues[i].name) != &dir->queues[i])
			abort();
	for (size_t i = 0; i < dir->n_revoked; i++)
		if (!ruf_directory_is_revoked(dir, dir->revoked[i].serial))
			abort();
	if (ruf_directory_queue(dir, "triage") == NULL || dir->signer == NULL ||
	    dir->policy == NULL || dir->version < 1)
		abort();
	ruf_directory_free(dir);
	return 0;
}
