/*
 * fuzz_cert.c - ruf_cert_parse + ruf_cert_verify against a fixed root.
 *
 * The root is the one in tests/vectors/cert/root.hex (seed bytes 0x01), so
 * the seed corpus (tests/fuzz/corpus/cert/, written by test_cert with
 * RUF_WRITE_CORPUS) holds certificates that verify.
 *
 * A mutated body fails at the signature, hiding the checks behind it. So an
 * input starting with 0xff (never a valid Certificate: field 31, wire type
 * 7) is taken as a CertBody, signed here with the root key and wrapped, then
 * parsed and verified like any other input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cert.h"
#include "cert.pb-c.h"
#include "pb.h"

#define NOW 1800000000u

static ruf_cert *root;
static uint8_t root_sk[64];

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
	uint8_t seed[crypto_sign_SEEDBYTES], kx_sk[32], pk[32], kx_pk[32], *raw;
	size_t len;

	if (sodium_init() < 0)
		abort();
	memset(seed, 0x01, sizeof(seed));
	memset(kx_sk, 0x01 ^ 0x5a, sizeof(kx_sk));
	if (crypto_sign_seed_keypair(pk, root_sk, seed) != 0 ||
	    crypto_scalarmult_base(kx_pk, kx_sk) != 0)
		abort();
	t.sign_pk = pk;
	t.kx_pk = kx_pk;
	if (ruf_cert_issue(&t, root_sk, pk, &raw, &len) != 0 ||
	    ruf_cert_parse(raw, len, &root) != 0)
		abort();
	free(raw);
}

/* Signs body with the root key and wraps it (Certificate, by hand). */
static uint8_t *
wrap(const uint8_t *body, size_t bodylen, size_t *outlen)
{
	Ruf__Certificate cm = RUF__CERTIFICATE__INIT;
	uint8_t sig[64], *out;

	if (ruf__sign_domain("ruf-cert-v1", 12, body, bodylen, root_sk, sig) != 0)
		abort();
	cm.body.data = (uint8_t *)body;
	cm.body.len = bodylen;
	cm.signature.data = sig;
	cm.signature.len = sizeof(sig);
	if (ruf_pb_encode(&cm.base, &out, outlen) != 0)
		abort();
	return out;
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	ruf_cert *c = NULL, *dup = NULL;
	uint8_t *wrapped = NULL, root_id[RUF_KEY_ID_BYTES];
	int rc;

	if (root == NULL)
		init();
	if (n > 0 && d[0] == 0xff) {
		wrapped = wrap(d + 1, n - 1, &n);
		d = wrapped;
	}
	if ((rc = ruf_cert_parse(d, n, &c)) != 0) {
		if (c != NULL)
			abort();
		goto out;
	}
	/* Anything that parses keeps its exact bytes and sane fields. */
	if (c->rawlen != n || memcmp(c->raw, d, n) != 0 || ruf_role_name(c->role) == NULL ||
	    c->not_before > c->not_after || c->serial < 1)
		abort();
	if (ruf_cert_dup(c, &dup) != 0 || dup->rawlen != n)
		abort();
	/* A certificate that verifies names the root and is valid now. */
	ruf_key_id(root->sign_pk, root_id);
	if (ruf_cert_verify(c, root, NOW) == 0 &&
	    (memcmp(c->issuer_key_id, root_id, sizeof(root_id)) != 0 || NOW < c->not_before ||
	     NOW > c->not_after))
		abort();
	if (ruf_cert_verify(c, c, NOW) == 0 && c->role != RUF_ROLE_ROOT)
		abort();
	if (ruf_cert_permits_situation(c, "darfur") && c->role != RUF_ROLE_DEVICE)
		abort();
	if (ruf_cert_permits_queue(c, "hrt") && c->role != RUF_ROLE_DESK)
		abort();
out:
	ruf_cert_free(dup);
	ruf_cert_free(c);
	free(wrapped);
	return 0;
}
