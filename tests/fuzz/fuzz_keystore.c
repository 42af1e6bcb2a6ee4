/*
 * fuzz_keystore.c - ruf_keystore_decode() on arbitrary bytes, without a
 * passphrase and with the fixed one the protected seed uses ("fuzz").
 *
 * The fuzzer cannot forge a Poly1305 tag, so mutated files never reach the
 * body parser and key checks; each input is therefore also sealed here as
 * the plaintext body of an unprotected keystore (whose AEAD key is a public
 * constant, docs/PROTOCOL.md) and decoded. The corpus holds both
 * whole files and bare bodies ("body-*"). A decoded keystore is encoded
 * again and must decode to the same keys.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "keystore.h"

#define FUZZ_PASS "fuzz"
#define HDR 68

static uint64_t
be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/*
 * Argon2id with the header's limits costs up to 1 GiB and seconds per run,
 * and even at interactive limits (64 MiB) each run is ~100 ms, which would
 * starve the fuzzer: mutated protected inputs only ever reach "wrong
 * passphrase" (the body parser is reached through unprotected inputs). So a
 * protected input is tried with the passphrase only at interactive limits,
 * and only for a deterministic 1/32 sample of inputs (by hash). The limits check itself runs on
 * every input through the NULL-passphrase call.
 */
static int
cheap_enough(const uint8_t *d, size_t n)
{
	struct ruf_kdf k = ruf_kdf_interactive();
	uint8_t h[16];

	if (!ruf_keystore_is_protected(d, n))
		return 1;
	if (be64(d + 12) != k.opslimit || be64(d + 20) != k.memlimit)
		return 0;
	crypto_generichash(h, sizeof(h), d, n, NULL, 0);
	return h[0] < 8;
}

static void
check_round_trip(const ruf_keystore *ks)
{
	ruf_keystore *back = NULL;
	uint8_t *buf;
	size_t len;

	if (ruf_keystore_encode(ks, NULL, 0, NULL, &buf, &len) != 0)
		abort();
	if (ruf_keystore_decode(buf, len, NULL, 0, &back) != 0)
		abort();
	if (ruf_keystore_count(back) != ruf_keystore_count(ks))
		abort();
	for (size_t i = 0; i < ruf_keystore_count(ks); i++) {
		const struct ruf_key *a = ruf_keystore_get(ks, i), *b = ruf_keystore_get(back, i);
		if (a->type != b->type || a->epoch != b->epoch || strcmp(a->name, b->name) != 0 ||
		    memcmp(a->pk, b->pk, 32) != 0 || a->sklen != b->sklen ||
		    memcmp(a->sk, b->sk, a->sklen) != 0)
			abort();
		if (ruf_keystore_find(ks, a->type, a->name, a->epoch) != a)
			abort();
	}
	ruf_keystore_free(back);
	free(buf);
}

/* Seals body as an unprotected keystore file (zero nonce: deterministic). */
static uint8_t *
seal_body(const uint8_t *body, size_t n, size_t *len)
{
	static const char ctx[] = "ruf-keystore-unprotected-v1";
	uint8_t key[32], *buf;

	*len = HDR + n + crypto_aead_xchacha20poly1305_ietf_ABYTES;
	if ((buf = calloc(1, *len)) == NULL)
		abort();
	memcpy(buf, "RUFKEYS\n", 8);
	buf[9] = 1;
	crypto_generichash(key, sizeof(key), (const uint8_t *)ctx, sizeof(ctx) - 1, NULL, 0);
	crypto_aead_xchacha20poly1305_ietf_encrypt(buf + HDR, NULL, body, n, buf, HDR, NULL,
	                                           buf + 44, key);
	return buf;
}

static void
decode_checked(const uint8_t *d, size_t n, const char *pass)
{
	ruf_keystore *ks = NULL;

	if (ruf_keystore_decode(d, n, pass, pass != NULL ? strlen(pass) : 0, &ks) == 0) {
		check_round_trip(ks);
		ruf_keystore_free(ks);
	} else if (ks != NULL) {
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	uint8_t *sealed;
	size_t slen;

	if (sodium_init() < 0)
		abort();
	decode_checked(d, n, NULL);
	if (cheap_enough(d, n))
		decode_checked(d, n, FUZZ_PASS);
	/* Bodies beyond the file bound are refused up front; no need to seal. */
	if (n <= RUF_KEYSTORE_FILE_MAX) {
		sealed = seal_body(d, n, &slen);
		decode_checked(sealed, slen, NULL);
		free(sealed);
	}
	return 0;
}
