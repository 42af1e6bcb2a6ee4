/*
 * fuzz_wire_frame.c - ruf_wire_frame_decode, and receipts.
 *
 * Every frame that decodes must encode back to exactly the input (the
 * decoder accepts only canonical frames, and the encoder enforces the same
 * rules). Receipt frames are also run through ruf_wire_receipt_verify.
 *
 * A mutated receipt body fails at the signature, hiding the body checks
 * behind it. So an input starting with 0xff (never a valid WireFrame: field
 * 31, wire type 7) is taken as a WireReceiptBody, signed here with the
 * server key and verified like a received receipt.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cert.h"
#include "pb.h"
#include "wire.h"
#include "wire.pb-c.h"

#define NOW 1800000000u

static ruf_cert *root, *server;
static uint8_t server_sk[64];
static uint8_t out[RUF_WIRE_MAX_MSG];

static void
keys(uint8_t tag, uint8_t pk[32], uint8_t sk[64], uint8_t kx_pk[32])
{
	uint8_t seed[crypto_sign_SEEDBYTES], kx_sk[32];

	memset(seed, tag, sizeof(seed));
	memset(kx_sk, tag ^ 0x5a, sizeof(kx_sk));
	if (crypto_sign_seed_keypair(pk, sk, seed) != 0 ||
	    crypto_scalarmult_base(kx_pk, kx_sk) != 0)
		abort();
}

static ruf_cert *
issue(int role, uint64_t serial, const char *subject, const uint8_t *pk, const uint8_t *kx_pk,
      const uint8_t *isk, const uint8_t *ipk)
{
	struct ruf_cert_template t = {
	    .role = role,
	    .serial = serial,
	    .subject = subject,
	    .not_before = 1790000000u,
	    .not_after = 1830000000u,
	    .sign_pk = pk,
	    .kx_pk = kx_pk,
	};
	uint8_t *raw;
	size_t len;
	ruf_cert *c;

	if (ruf_cert_issue(&t, isk, ipk, &raw, &len) != 0 || ruf_cert_parse(raw, len, &c) != 0)
		abort();
	free(raw);
	return c;
}

static void
init(void)
{
	uint8_t rpk[32], rsk[64], rkx[32], spk[32], skx[32];

	if (sodium_init() < 0)
		abort();
	keys(0x01, rpk, rsk, rkx);
	keys(0x02, spk, server_sk, skx);
	root = issue(RUF_ROLE_ROOT, 1, "hq-root", rpk, rkx, rsk, rpk);
	server = issue(RUF_ROLE_SERVER, 2, "hq-server", spk, skx, rsk, rpk);
}

static void
signed_body(const uint8_t *d, size_t n)
{
	Ruf__WireReceipt r = RUF__WIRE_RECEIPT__INIT;
	struct ruf_wire_receipt_info info;
	uint8_t sig[64], *msg, *enc;
	size_t len;
	static const char dom[] = RUF_WIRE_RECEIPT_DOMAIN;

	if ((msg = malloc(sizeof(dom) + n + 1)) == NULL)
		abort();
	memcpy(msg, dom, sizeof(dom));
	if (n > 0)
		memcpy(msg + sizeof(dom), d, n);
	crypto_sign_detached(sig, NULL, msg, sizeof(dom) + n, server_sk);
	free(msg);
	r.body.data = (uint8_t *)d;
	r.body.len = n;
	r.signature.data = sig;
	r.signature.len = sizeof(sig);
	if (ruf_pb_encode(&r.base, &enc, &len) != 0)
		abort();
	if (ruf_wire_receipt_verify(enc, len, server, root, NOW, NULL, NULL, &info) == 0) {
		/* Whatever verifies names our server and at least one valid queue. */
		if (info.body.server_serial != 2 || info.body.n_queues < 1 ||
		    !ruf_is_queue_name(info.body.queues[0]))
			abort();
	}
	free(enc);
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct ruf_wire_frame f;
	size_t len;

	if (root == NULL)
		init();
	if (n > 0 && d[0] == 0xff) {
		signed_body(d + 1, n - 1);
		return 0;
	}
	if (ruf_wire_frame_decode(d, n, &f) != 0) {
		if (f._pb != NULL)
			abort();
		return 0;
	}
	if (ruf_wire_frame_encode(&f, out, sizeof(out), &len) != 0 || len != n ||
	    memcmp(out, d, n) != 0)
		abort();
	if (f.type == RUF_WIRE_RECEIPT) {
		if (f.u.receipt.raw_len > n)
			abort();
		(void)!ruf_wire_receipt_verify(f.u.receipt.raw, f.u.receipt.raw_len, server, root,
		                               NOW, NULL, NULL, NULL);
	}
	ruf_wire_frame_clear(&f);
	return 0;
}
