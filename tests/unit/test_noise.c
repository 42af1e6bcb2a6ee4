/* test_noise.c - Noise_IK_25519_ChaChaPoly_BLAKE2b: known answers and misuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "err.h"
#include "noise.h"
#include "util.h"

#define VEC_DIR RUF_SOURCE_DIR "/tests/vectors/noise/"
#define MAX_VECTORS 8
#define MAX_MSGS 8

/* --- Vector files --------------------------------------------------------- */

struct vmsg {
	uint8_t *p, *c;
	size_t plen, clen;
};

struct vector {
	char name[32];
	uint8_t *prologue;
	size_t prologue_len;
	uint8_t init_static[32], init_ephemeral[32], init_remote_static[32];
	uint8_t resp_static[32], resp_ephemeral[32];
	uint8_t hh[64];
	bool has_hh;
	size_t nmsg;
	struct vmsg msg[MAX_MSGS];
};

/* Parses a hex token ("-" = empty) into a new malloc'ed buffer. */
static uint8_t *
hexdup(const char *tok, size_t *len)
{
	size_t n = strcmp(tok, "-") == 0 ? 0 : strlen(tok);
	uint8_t *out;

	assert_int_equal(n % 2, 0);
	out = malloc(n / 2 + 1);
	assert_non_null(out);
	if (n)
		assert_int_equal(ruf_unhex(tok, out, n / 2), 0);
	*len = n / 2;
	return out;
}

static void
hex32(const char *tok, uint8_t out[32])
{
	assert_non_null(tok);
	assert_int_equal(ruf_unhex(tok, out, 32), 0);
}

/* Reads the IK vector file; returns the number of vectors. */
static size_t
load_vectors(struct vector *v, size_t max)
{
	uint8_t *buf;
	size_t len, n = 0;
	char *save = NULL, *line;
	struct vector *cur = NULL;

	assert_int_equal(
	    ruf_file_read(VEC_DIR "ik_25519_chachapoly_blake2b.txt", 1 << 20, &buf, &len), 0);
	memset(v, 0, max * sizeof *v);
	for (line = strtok_r((char *)buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *s2 = NULL, *key = strtok_r(line, " ", &s2);
		char *a = key ? strtok_r(NULL, " ", &s2) : NULL;
		char *b = a ? strtok_r(NULL, " ", &s2) : NULL;

		if (key == NULL || key[0] == '#')
			continue;
		if (strcmp(key, "vector") == 0) {
			assert_true(n < max);
			cur = &v[n++];
			assert_non_null(a);
			snprintf(cur->name, sizeof cur->name, "%s", a);
			continue;
		}
		assert_non_null(cur);
		if (strcmp(key, "end") == 0)
			cur = NULL;
		else if (strcmp(key, "prologue") == 0)
			cur->prologue = hexdup(a, &cur->prologue_len);
		else if (strcmp(key, "init_static") == 0)
			hex32(a, cur->init_static);
		else if (strcmp(key, "init_ephemeral") == 0)
			hex32(a, cur->init_ephemeral);
		else if (strcmp(key, "init_remote_static") == 0)
			hex32(a, cur->init_remote_static);
		else if (strcmp(key, "resp_static") == 0)
			hex32(a, cur->resp_static);
		else if (strcmp(key, "resp_ephemeral") == 0)
			hex32(a, cur->resp_ephemeral);
		else if (strcmp(key, "handshake_hash") == 0) {
			assert_int_equal(ruf_unhex(a, cur->hh, 64), 0);
			cur->has_hh = true;
		} else if (strcmp(key, "msg") == 0) {
			struct vmsg *m;
			assert_true(cur->nmsg < MAX_MSGS);
			assert_non_null(b);
			m = &cur->msg[cur->nmsg++];
			m->p = hexdup(a, &m->plen);
			m->c = hexdup(b, &m->clen);
		} else {
			fail_msg("unknown vector line %s", key);
		}
	}
	free(buf);
	return n;
}

static void
free_vectors(struct vector *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].prologue);
		for (size_t j = 0; j < v[i].nmsg; j++) {
			free(v[i].msg[j].p);
			free(v[i].msg[j].c);
		}
	}
}

/* --- Helpers -------------------------------------------------------------- */

struct peer {
	uint8_t sk[32], pk[32];
};

static void
peer_gen(struct peer *p)
{
	randombytes_buf(p->sk, sizeof p->sk);
	crypto_scalarmult_base(p->pk, p->sk);
}

static const uint8_t prologue[] = "ruf/1";
#define PROLOGUE_LEN (sizeof prologue - 1)

/* Runs a full handshake with random keys; leaves both sides done. */
static void
handshake(ruf_noise_handshake *ini, ruf_noise_handshake *res, const struct peer *a,
          const struct peer *b)
{
	uint8_t m[256], p[64];
	size_t mlen, plen;

	assert_int_equal(
	    ruf_noise_handshake_init(ini, true, prologue, PROLOGUE_LEN, a->sk, a->pk, b->pk), 0);
	assert_int_equal(
	    ruf_noise_handshake_init(res, false, prologue, PROLOGUE_LEN, b->sk, b->pk, NULL), 0);
	assert_int_equal(
	    ruf_noise_write_message(ini, (const uint8_t *)"hello", 5, m, sizeof m, &mlen), 0);
	assert_int_equal(mlen, 5 + RUF_NOISE_MSG1_OVERHEAD);
	assert_int_equal(ruf_noise_read_message(res, m, mlen, p, sizeof p, &plen), 0);
	assert_int_equal(plen, 5);
	assert_memory_equal(p, "hello", 5);
	assert_int_equal(ruf_noise_write_message(res, NULL, 0, m, sizeof m, &mlen), 0);
	assert_int_equal(mlen, RUF_NOISE_MSG2_OVERHEAD);
	assert_int_equal(ruf_noise_read_message(ini, m, mlen, p, sizeof p, &plen), 0);
	assert_int_equal(plen, 0);
	assert_true(ruf_noise_handshake_done(ini));
	assert_true(ruf_noise_handshake_done(res));
}

/* Builds a valid message 1 from a to b into m. */
static size_t
make_msg1(ruf_noise_handshake *ini, const struct peer *a, const struct peer *b, uint8_t *m,
          size_t cap)
{
	size_t mlen;

	assert_int_equal(
	    ruf_noise_handshake_init(ini, true, prologue, PROLOGUE_LEN, a->sk, a->pk, b->pk), 0);
	assert_int_equal(
	    ruf_noise_write_message(ini, (const uint8_t *)"cert+time", 9, m, cap, &mlen), 0);
	return mlen;
}

/* --- Known-answer tests --------------------------------------------------- */

static void
run_vector(const struct vector *v, size_t *messages_checked)
{
	ruf_noise_handshake ini, res;
	ruf_noise_cipher isend, irecv, rsend, rrecv;
	uint8_t ipk[32], rpk[32], out[512], pt[512], hh1[64], hh2[64];
	size_t outlen, ptlen;

	crypto_scalarmult_base(ipk, v->init_static);
	crypto_scalarmult_base(rpk, v->resp_static);
	/* The vector's idea of the responder key must be the one we derive. */
	assert_memory_equal(rpk, v->init_remote_static, 32);
	assert_true(v->nmsg >= 2);

	assert_int_equal(ruf_noise_handshake_init(&ini, true, v->prologue, v->prologue_len,
	                                          v->init_static, ipk, v->init_remote_static),
	                 0);
	assert_int_equal(ruf_noise_handshake_init(&res, false, v->prologue, v->prologue_len,
	                                          v->resp_static, rpk, NULL),
	                 0);
	assert_int_equal(ruf_noise__set_ephemeral_for_tests(&ini, v->init_ephemeral), 0);
	assert_int_equal(ruf_noise__set_ephemeral_for_tests(&res, v->resp_ephemeral), 0);

	/* Message 1: initiator -> responder. */
	assert_int_equal(
	    ruf_noise_write_message(&ini, v->msg[0].p, v->msg[0].plen, out, sizeof out, &outlen),
	    0);
	assert_int_equal(outlen, v->msg[0].clen);
	assert_memory_equal(out, v->msg[0].c, outlen);
	assert_null(ruf_noise_remote_static(&res));
	assert_int_equal(
	    ruf_noise_read_message(&res, v->msg[0].c, v->msg[0].clen, pt, sizeof pt, &ptlen), 0);
	assert_int_equal(ptlen, v->msg[0].plen);
	assert_memory_equal(pt, v->msg[0].p, ptlen);
	assert_non_null(ruf_noise_remote_static(&res));
	assert_memory_equal(ruf_noise_remote_static(&res), ipk, 32);

	/* Message 2: responder -> initiator. */
	assert_int_equal(
	    ruf_noise_write_message(&res, v->msg[1].p, v->msg[1].plen, out, sizeof out, &outlen),
	    0);
	assert_int_equal(outlen, v->msg[1].clen);
	assert_memory_equal(out, v->msg[1].c, outlen);
	assert_int_equal(
	    ruf_noise_read_message(&ini, v->msg[1].c, v->msg[1].clen, pt, sizeof pt, &ptlen), 0);
	assert_int_equal(ptlen, v->msg[1].plen);
	assert_memory_equal(pt, v->msg[1].p, ptlen);
	*messages_checked += 2;

	assert_int_equal(ruf_noise_handshake_hash(&ini, hh1), 0);
	assert_int_equal(ruf_noise_handshake_hash(&res, hh2), 0);
	assert_memory_equal(hh1, hh2, 64);
	if (v->has_hh)
		assert_memory_equal(hh1, v->hh, 64);

	assert_int_equal(ruf_noise_handshake_split(&ini, &isend, &irecv), 0);
	assert_int_equal(ruf_noise_handshake_split(&res, &rsend, &rrecv), 0);
	/* The handshake hash survives the split (channel binding). */
	assert_int_equal(ruf_noise_handshake_hash(&ini, hh2), 0);
	assert_memory_equal(hh1, hh2, 64);

	/* Transport: alternate initiator, responder, ... as the vector files do. */
	for (size_t i = 2; i < v->nmsg; i++) {
		const struct vmsg *m = &v->msg[i];
		bool from_init = i % 2 == 0;
		ruf_noise_cipher *tx = from_init ? &isend : &rsend;
		ruf_noise_cipher *rx = from_init ? &rrecv : &irecv;

		assert_int_equal(
		    ruf_noise_cipher_encrypt(tx, NULL, 0, m->p, m->plen, out, sizeof out, &outlen),
		    0);
		assert_int_equal(outlen, m->clen);
		assert_memory_equal(out, m->c, outlen);
		assert_int_equal(
		    ruf_noise_cipher_decrypt(rx, NULL, 0, m->c, m->clen, pt, sizeof pt, &ptlen), 0);
		assert_int_equal(ptlen, m->plen);
		assert_memory_equal(pt, m->p, ptlen);
		(*messages_checked)++;
	}
	ruf_noise_handshake_wipe(&ini);
	ruf_noise_handshake_wipe(&res);
	ruf_noise_cipher_wipe(&isend);
	ruf_noise_cipher_wipe(&irecv);
	ruf_noise_cipher_wipe(&rsend);
	ruf_noise_cipher_wipe(&rrecv);
}

static void
test_ik_vectors_reproduce_every_byte(void **state)
{
	struct vector v[MAX_VECTORS];
	size_t n, msgs = 0, with_hh = 0;

	(void)state;
	n = load_vectors(v, MAX_VECTORS);
	/* cacophony, noise-c and snow: a vector lost from the file must show. */
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++) {
		run_vector(&v[i], &msgs);
		with_hh += v[i].has_hh;
	}
	assert_int_equal(msgs, 16);
	assert_int_equal(with_hh, 2);
	printf("# noise vectors: %zu vectors, %zu messages, %zu handshake hashes\n", n, msgs,
	       with_hh);
	free_vectors(v, n);
}

/* HMAC as RFC 2104 writes it, from one-shot hashes of whole buffers. */
static void
hmac_reference(uint8_t out[64], const uint8_t *key, size_t keylen, const uint8_t *d, size_t dlen)
{
	uint8_t k0[128] = {0}, inner[64];
	uint8_t *buf = malloc(128 + (dlen > 64 ? dlen : 64));

	assert_non_null(buf);
	if (keylen > 128)
		crypto_generichash(k0, 64, key, keylen, NULL, 0);
	else if (keylen)
		memcpy(k0, key, keylen);
	for (int i = 0; i < 128; i++)
		buf[i] = k0[i] ^ 0x36;
	if (dlen)
		memcpy(buf + 128, d, dlen);
	crypto_generichash(inner, 64, buf, 128 + dlen, NULL, 0);
	for (int i = 0; i < 128; i++)
		buf[i] = k0[i] ^ 0x5c;
	memcpy(buf + 128, inner, 64);
	crypto_generichash(out, 64, buf, 128 + 64, NULL, 0);
	free(buf);
}

static void
test_hmac_blake2b_matches_rfc2104_not_keyed_blake2b(void **state)
{
	uint8_t *buf, key[300], data[300], a[64], b[64];
	size_t len, nhmac = 0, nhkdf = 0;
	char *save = NULL, *line;
	static const size_t lens[] = {0, 1, 31, 32, 63, 64, 65, 127, 128, 129, 200, 300};

	(void)state;
	/* Known answers computed by CPython's hmac + hashlib.blake2b. */
	assert_int_equal(ruf_file_read(VEC_DIR "hmac_hkdf_blake2b.txt", 1 << 16, &buf, &len), 0);
	for (line = strtok_r((char *)buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *s2 = NULL, *kind = strtok_r(line, " ", &s2), *t[5];
		uint8_t *x[5], o[3][64];
		size_t xl[5];
		int nt = 0;

		if (kind == NULL || kind[0] == '#')
			continue;
		while (nt < 5 && (t[nt] = strtok_r(NULL, " ", &s2)) != NULL)
			nt++;
		for (int i = 0; i < nt; i++)
			x[i] = hexdup(t[i], &xl[i]);
		if (strcmp(kind, "hmac") == 0) {
			assert_int_equal(nt, 3);
			ruf_noise_hmac_blake2b(a, x[0], xl[0], x[1], xl[1]);
			assert_memory_equal(a, x[2], 64);
			nhmac++;
		} else {
			assert_string_equal(kind, "hkdf");
			assert_int_equal(nt, 5);
			assert_int_equal(xl[0], 64);
			ruf_noise_hkdf(x[0], x[1], xl[1], o[0], o[1], o[2]);
			assert_memory_equal(o[0], x[2], 64);
			assert_memory_equal(o[1], x[3], 64);
			assert_memory_equal(o[2], x[4], 64);
			/* Two outputs are the first two of three. */
			ruf_noise_hkdf(x[0], x[1], xl[1], o[0], o[1], NULL);
			assert_memory_equal(o[0], x[2], 64);
			assert_memory_equal(o[1], x[3], 64);
			nhkdf++;
		}
		for (int i = 0; i < nt; i++)
			free(x[i]);
	}
	free(buf);
	assert_int_equal(nhmac, 9);
	assert_int_equal(nhkdf, 3);

	/* Every key/data length class against the textbook construction. */
	randombytes_buf(key, sizeof key);
	randombytes_buf(data, sizeof data);
	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		for (size_t j = 0; j < sizeof lens / sizeof lens[0]; j++) {
			ruf_noise_hmac_blake2b(a, key, lens[i], data, lens[j]);
			hmac_reference(b, key, lens[i], data, lens[j]);
			assert_memory_equal(a, b, 64);
		}
	}
	/* libsodium's keyed BLAKE2b is another function: it must not match. */
	crypto_generichash(b, 64, data, 32, key, 64);
	ruf_noise_hmac_blake2b(a, key, 64, data, 32);
	assert_memory_not_equal(a, b, 64);
}

static void
test_hkdf_outputs_may_alias_chaining_key(void **state)
{
	uint8_t ck[64], ck2[64], ikm[32], o1[64], o2[64], o3[64], t[64];

	(void)state;
	randombytes_buf(ck, sizeof ck);
	randombytes_buf(ikm, sizeof ikm);
	memcpy(ck2, ck, sizeof ck);
	ruf_noise_hkdf(ck, ikm, sizeof ikm, o1, o2, o3);
	/* MixKey writes out1 over ck itself. */
	ruf_noise_hkdf(ck2, ikm, sizeof ikm, ck2, t, NULL);
	assert_memory_equal(ck2, o1, 64);
	assert_memory_equal(t, o2, 64);
	/* And by definition: temp = HMAC(ck, ikm); out1 = HMAC(temp, 0x01). */
	{
		uint8_t tk[64], one = 1, buf[65];
		ruf_noise_hmac_blake2b(tk, ck, 64, ikm, sizeof ikm);
		ruf_noise_hmac_blake2b(t, tk, 64, &one, 1);
		assert_memory_equal(t, o1, 64);
		memcpy(buf, o1, 64);
		buf[64] = 2;
		ruf_noise_hmac_blake2b(t, tk, 64, buf, 65);
		assert_memory_equal(t, o2, 64);
		memcpy(buf, o2, 64);
		buf[64] = 3;
		ruf_noise_hmac_blake2b(t, tk, 64, buf, 65);
		assert_memory_equal(t, o3, 64);
	}
}

/* --- CipherState ---------------------------------------------------------- */

static void
test_cipher_nonce_is_zero_prefixed_little_endian(void **state)
{
	ruf_noise_cipher cs;
	uint8_t k[32], nonce[12] = {0, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1};
	uint8_t ad[5] = "adata", pt[40], c1[56], c2[56];
	unsigned long long c2len;
	size_t c1len;

	(void)state;
	randombytes_buf(k, sizeof k);
	randombytes_buf(pt, sizeof pt);
	ruf_noise_cipher_init(&cs, k);
	ruf_noise_cipher_set_nonce(&cs, 0x0102030405060708ULL);
	assert_int_equal(
	    ruf_noise_cipher_encrypt(&cs, ad, sizeof ad, pt, sizeof pt, c1, sizeof c1, &c1len), 0);
	assert_int_equal(cs.n, 0x0102030405060709ULL);
	crypto_aead_chacha20poly1305_ietf_encrypt(c2, &c2len, pt, sizeof pt, ad, sizeof ad, NULL,
	                                          nonce, k);
	assert_int_equal(c1len, c2len);
	assert_memory_equal(c1, c2, c1len);
	ruf_noise_cipher_wipe(&cs);
	assert_false(cs.has_key);
}

static void
test_cipher_refuses_exhausted_nonce(void **state)
{
	ruf_noise_cipher tx, rx;
	uint8_t k[32], pt[8] = "abcdefgh", ct[24], ct2[24], back[8];
	size_t n;

	(void)state;
	randombytes_buf(k, sizeof k);
	ruf_noise_cipher_init(&tx, k);
	ruf_noise_cipher_init(&rx, k);
	ruf_noise_cipher_set_nonce(&tx, UINT64_MAX - 1);
	ruf_noise_cipher_set_nonce(&rx, UINT64_MAX - 1);
	/* 2^64-2 is the last usable nonce. */
	assert_int_equal(ruf_noise_cipher_encrypt(&tx, NULL, 0, pt, 8, ct, sizeof ct, &n), 0);
	assert_int_equal(ruf_noise_cipher_decrypt(&rx, NULL, 0, ct, n, back, sizeof back, &n), 0);
	assert_memory_equal(back, pt, 8);
	assert_int_equal(tx.n, UINT64_MAX);
	/* 2^64-1 is reserved: refused both ways, nothing written. */
	memset(ct2, 0xa5, sizeof ct2);
	assert_int_equal(ruf_noise_cipher_encrypt(&tx, NULL, 0, pt, 8, ct2, sizeof ct2, &n),
	                 RUF_E_NONCE_EXHAUSTED);
	for (size_t i = 0; i < sizeof ct2; i++)
		assert_int_equal(ct2[i], 0xa5);
	assert_int_equal(
	    ruf_noise_cipher_decrypt(&rx, NULL, 0, ct, sizeof ct, back, sizeof back, &n),
	    RUF_E_NONCE_EXHAUSTED);
	assert_int_equal(tx.n, UINT64_MAX);
	assert_int_equal(strcmp(ruf_errname(RUF_E_NONCE_EXHAUSTED), "NONCE_EXHAUSTED"), 0);
}

static void
test_cipher_decrypt_failure_keeps_nonce(void **state)
{
	ruf_noise_cipher tx, rx;
	uint8_t k[32], pt[20], ct[36], bad[36], back[20];
	size_t n, m;

	(void)state;
	randombytes_buf(k, sizeof k);
	randombytes_buf(pt, sizeof pt);
	ruf_noise_cipher_init(&tx, k);
	ruf_noise_cipher_init(&rx, k);
	assert_int_equal(ruf_noise_cipher_encrypt(&tx, NULL, 0, pt, sizeof pt, ct, sizeof ct, &n),
	                 0);
	for (size_t i = 0; i < n; i++) {
		memcpy(bad, ct, n);
		bad[i] ^= 0x01;
		assert_int_equal(
		    ruf_noise_cipher_decrypt(&rx, NULL, 0, bad, n, back, sizeof back, &m),
		    RUF_E_AUTH);
		assert_int_equal(rx.n, 0);
	}
	/* Wrong associated data fails too. */
	assert_int_equal(
	    ruf_noise_cipher_decrypt(&rx, (const uint8_t *)"x", 1, ct, n, back, sizeof back, &m),
	    RUF_E_AUTH);
	assert_int_equal(ruf_noise_cipher_decrypt(&rx, NULL, 0, ct, n, back, sizeof back, &m), 0);
	assert_int_equal(rx.n, 1);
	assert_memory_equal(back, pt, sizeof pt);
	/* A replay (same ciphertext, next nonce) fails. */
	assert_int_equal(ruf_noise_cipher_decrypt(&rx, NULL, 0, ct, n, back, sizeof back, &m),
	                 RUF_E_AUTH);
}

static void
test_cipher_rekey_is_spec_default(void **state)
{
	ruf_noise_cipher a, b;
	uint8_t k[32], expect[32], zeros[32] = {0};
	uint8_t nonce[12] = {0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	uint8_t pt[16] = "rekeyed message.", ct[32], back[16];
	size_t n;

	(void)state;
	randombytes_buf(k, sizeof k);
	/*
	 * ENCRYPT(k, 2^64-1, "", zeros)[0..32] is the ChaCha20 keystream from
	 * block 1 (block 0 keys Poly1305): an independent way to the answer.
	 */
	crypto_stream_chacha20_ietf_xor_ic(expect, zeros, 32, nonce, 1, k);
	ruf_noise_cipher_init(&a, k);
	ruf_noise_cipher_init(&b, k);
	ruf_noise_cipher_set_nonce(&a, 7);
	assert_int_equal(ruf_noise_cipher_rekey(&a), 0);
	assert_memory_equal(a.k, expect, 32);
	assert_int_equal(a.n, 7);
	assert_int_equal(ruf_noise_cipher_rekey(&b), 0);
	ruf_noise_cipher_set_nonce(&b, 7);
	assert_int_equal(ruf_noise_cipher_encrypt(&a, NULL, 0, pt, 16, ct, sizeof ct, &n), 0);
	assert_int_equal(ruf_noise_cipher_decrypt(&b, NULL, 0, ct, n, back, sizeof back, &n), 0);
	assert_memory_equal(back, pt, 16);
	ruf_noise_cipher_init(&a, NULL);
	assert_int_equal(ruf_noise_cipher_rekey(&a), RUF_E_INVAL);
}

static void
test_cipher_rejects_oversized_and_truncated(void **state)
{
	ruf_noise_cipher cs;
	uint8_t k[32], *big;
	size_t n;

	(void)state;
	big = calloc(1, RUF_NOISE_MAX_MSG + 2);
	assert_non_null(big);
	randombytes_buf(k, sizeof k);
	ruf_noise_cipher_init(&cs, k);
	assert_int_equal(ruf_noise_cipher_encrypt(&cs, NULL, 0, big, RUF_NOISE_MAX_PAYLOAD + 1, big,
	                                          RUF_NOISE_MAX_MSG + 2, &n),
	                 RUF_E_TOO_LARGE);
	/* The largest payload fits exactly in one 65535-byte message. */
	assert_int_equal(ruf_noise_cipher_encrypt(&cs, NULL, 0, big, RUF_NOISE_MAX_PAYLOAD, big,
	                                          RUF_NOISE_MAX_MSG, &n),
	                 0);
	assert_int_equal(n, RUF_NOISE_MAX_MSG);
	assert_int_equal(ruf_noise_cipher_decrypt(&cs, NULL, 0, big, RUF_NOISE_MAX_MSG + 1, big,
	                                          RUF_NOISE_MAX_MSG + 2, &n),
	                 RUF_E_TOO_LARGE);
	assert_int_equal(ruf_noise_cipher_decrypt(&cs, NULL, 0, big, 15, big, 16, &n),
	                 RUF_E_TRUNCATED);
	/* An output buffer one byte short is misuse. */
	assert_int_equal(ruf_noise_cipher_encrypt(&cs, NULL, 0, big, 10, big + 100, 25, &n),
	                 RUF_E_INVAL);
	assert_int_equal(ruf_noise_cipher_decrypt(&cs, NULL, 0, big, 26, big + 100, 9, &n),
	                 RUF_E_INVAL);
	ruf_noise_cipher_wipe(&cs);
	free(big);
}

static void
test_cipher_without_key_never_sends_plaintext(void **state)
{
	ruf_noise_cipher cs;
	uint8_t k[32], pt[8] = "secret!!", out[24];
	size_t n;

	(void)state;
	ruf_noise_cipher_init(&cs, NULL);
	assert_int_equal(ruf_noise_cipher_encrypt(&cs, NULL, 0, pt, 8, out, sizeof out, &n),
	                 RUF_E_INVAL);
	assert_int_equal(ruf_noise_cipher_decrypt(&cs, NULL, 0, out, 24, out, sizeof out, &n),
	                 RUF_E_INVAL);
	/* A wiped transport cipher is refused the same way. */
	randombytes_buf(k, sizeof k);
	ruf_noise_cipher_init(&cs, k);
	ruf_noise_cipher_wipe(&cs);
	assert_int_equal(ruf_noise_cipher_encrypt(&cs, NULL, 0, pt, 8, out, sizeof out, &n),
	                 RUF_E_INVAL);
	assert_int_equal(ruf_noise_cipher_encrypt(NULL, NULL, 0, pt, 8, out, sizeof out, &n),
	                 RUF_E_INVAL);
}

static void
test_symmetric_state_follows_definitions(void **state)
{
	ruf_noise_symmetric ss;
	uint8_t h0[64] = {0}, ck[64], h[64], th[64], tk[64], ikm[32], buf[128], out[64];
	size_t n;

	(void)state;
	/* A 33-byte name is padded, not hashed. */
	ruf_noise_symmetric_init(&ss, RUF_NOISE_PROTOCOL_NAME);
	memcpy(h0, RUF_NOISE_PROTOCOL_NAME, strlen(RUF_NOISE_PROTOCOL_NAME));
	assert_int_equal(strlen(RUF_NOISE_PROTOCOL_NAME), 33);
	assert_memory_equal(ss.h, h0, 64);
	assert_memory_equal(ss.ck, h0, 64);
	assert_false(ss.cs.has_key);
	/* Before any key, EncryptAndHash copies and hashes the plaintext. */
	assert_int_equal(
	    ruf_noise_encrypt_and_hash(&ss, (const uint8_t *)"abc", 3, out, sizeof out, &n), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(out, "abc", 3);
	memcpy(buf, h0, 64);
	memcpy(buf + 64, "abc", 3);
	crypto_generichash(h, 64, buf, 67, NULL, 0);
	assert_memory_equal(ss.h, h, 64);
	/* MixKeyAndHash(ikm): ck, temp_h, temp_k = HKDF(ck, ikm, 3). */
	randombytes_buf(ikm, sizeof ikm);
	memcpy(ck, ss.ck, 64);
	ruf_noise_hkdf(ck, ikm, sizeof ikm, ck, th, tk);
	memcpy(buf, ss.h, 64);
	memcpy(buf + 64, th, 64);
	crypto_generichash(h, 64, buf, 128, NULL, 0);
	assert_int_equal(ruf_noise_mix_key_and_hash(&ss, ikm, sizeof ikm), 0);
	assert_memory_equal(ss.ck, ck, 64);
	assert_memory_equal(ss.h, h, 64);
	assert_true(ss.cs.has_key);
	assert_memory_equal(ss.cs.k, tk, 32);
	assert_int_equal(ss.cs.n, 0);
	/* A name longer than 64 bytes is hashed. */
	{
		char longname[80];
		memset(longname, 'x', 79);
		longname[79] = '\0';
		ruf_noise_symmetric_init(&ss, longname);
		crypto_generichash(h, 64, (const uint8_t *)longname, 79, NULL, 0);
		assert_memory_equal(ss.h, h, 64);
	}
	ruf_noise_symmetric_wipe(&ss);
	assert_true(sodium_is_zero((const unsigned char *)&ss, sizeof ss));
}

/* --- Handshake ------------------------------------------------------------ */

static void
test_tampered_message1_fails_authentication(void **state)
{
	struct peer a, b;
	ruf_noise_handshake ini, res;
	uint8_t m[128], bad[128], p[64];
	size_t mlen, plen;

	(void)state;
	peer_gen(&a);
	peer_gen(&b);
	mlen = make_msg1(&ini, &a, &b, m, sizeof m);
	for (size_t i = 0; i < mlen; i++) {
		for (int bit = 0; bit < 8; bit += 7) {
			int err;
			memcpy(bad, m, mlen);
			bad[i] ^= (uint8_t)(1u << bit);
			assert_int_equal(ruf_noise_handshake_init(&res, false, prologue,
			                                          PROLOGUE_LEN, b.sk, b.pk, NULL),
			                 0);
			err = ruf_noise_read_message(&res, bad, mlen, p, sizeof p, &plen);
			assert_int_equal(err, RUF_E_AUTH);
			/* A failed handshake gives nothing away and cannot go on. */
			assert_null(ruf_noise_remote_static(&res));
			assert_false(ruf_noise_handshake_done(&res));
			assert_int_equal(
			    ruf_noise_write_message(&res, NULL, 0, bad, sizeof bad, &plen),
			    RUF_E_INVAL);
			assert_true(sodium_is_zero(p, 9));
		}
	}
	/* The untouched message still works. */
	assert_int_equal(
	    ruf_noise_handshake_init(&res, false, prologue, PROLOGUE_LEN, b.sk, b.pk, NULL), 0);
	assert_int_equal(ruf_noise_read_message(&res, m, mlen, p, sizeof p, &plen), 0);
	ruf_noise_handshake_wipe(&ini);
	ruf_noise_handshake_wipe(&res);
}

static void
test_tampered_message2_fails_authentication(void **state)
{
	struct peer a, b;
	ruf_noise_handshake ini, res, ini2;
	uint8_t m1[128], m2[128], bad[128], p[64];
	size_t m1len, m2len, plen;
	uint8_t e_sk[32];

	(void)state;
	peer_gen(&a);
	peer_gen(&b);
	randombytes_buf(e_sk, sizeof e_sk);
	assert_int_equal(
	    ruf_noise_handshake_init(&ini, true, prologue, PROLOGUE_LEN, a.sk, a.pk, b.pk), 0);
	assert_int_equal(ruf_noise__set_ephemeral_for_tests(&ini, e_sk), 0);
	assert_int_equal(ruf_noise_write_message(&ini, NULL, 0, m1, sizeof m1, &m1len), 0);
	assert_int_equal(
	    ruf_noise_handshake_init(&res, false, prologue, PROLOGUE_LEN, b.sk, b.pk, NULL), 0);
	assert_int_equal(ruf_noise_read_message(&res, m1, m1len, p, sizeof p, &plen), 0);
	assert_int_equal(
	    ruf_noise_write_message(&res, (const uint8_t *)"ok", 2, m2, sizeof m2, &m2len), 0);
	for (size_t i = 0; i < m2len; i++) {
		/* Replay the initiator's state with the same ephemeral key. */
		assert_int_equal(
		    ruf_noise_handshake_init(&ini2, true, prologue, PROLOGUE_LEN, a.sk, a.pk, b.pk),
		    0);
		assert_int_equal(ruf_noise__set_ephemeral_for_tests(&ini2, e_sk), 0);
		assert_int_equal(ruf_noise_write_message(&ini2, NULL, 0, bad, sizeof bad, &plen),
		                 0);
		memcpy(bad, m2, m2len);
		bad[i] ^= 0x80;
		assert_int_equal(ruf_noise_read_message(&ini2, bad, m2len, p, sizeof p, &plen),
		                 RUF_E_AUTH);
		assert_false(ruf_noise_handshake_done(&ini2));
	}
	assert_int_equal(ruf_noise_read_message(&ini, m2, m2len, p, sizeof p, &plen), 0);
	assert_int_equal(plen, 2);
	ruf_noise_handshake_wipe(&ini);
	ruf_noise_handshake_wipe(&ini2);
	ruf_noise_handshake_wipe(&res);
}

static void
test_wrong_responder_static_key_fails(void **state)
{
	struct peer a, b, c;
	ruf_noise_handshake ini, res;
	uint8_t m[128], p[64];
	size_t mlen, plen;

	(void)state;
	peer_gen(&a);
	peer_gen(&b);
	peer_gen(&c);
	/* The initiator thinks HQ's key is c's; b receives the message. */
	mlen = make_msg1(&ini, &a, &c, m, sizeof m);
	assert_int_equal(
	    ruf_noise_handshake_init(&res, false, prologue, PROLOGUE_LEN, b.sk, b.pk, NULL), 0);
	assert_int_equal(ruf_noise_read_message(&res, m, mlen, p, sizeof p, &plen), RUF_E_AUTH);
	assert_null(ruf_noise_remote_static(&res));
	ruf_noise_handshake_wipe(&ini);
	ruf_noise_handshake_wipe(&res);
}

static void
test_prologue_mismatch_fails(void **state)
{
	struct peer a, b;
	ruf_noise_handshake ini, res;
	uint8_t m[128], p[64];
	size_t mlen, plen;

	(void)state;
	peer_gen(&a);
	peer_gen(&b);
	mlen = make_msg1(&ini, &a, &b, m, sizeof m);
	assert_int_equal(
	    ruf_noise_handshake_init(&res, false, (const uint8_t *)"ruf/2", 5, b.sk, b.pk, NULL),
	    0);
	assert_int_equal(ruf_noise_read_message(&res, m, mlen, p, sizeof p, &plen), RUF_E_AUTH);
	ruf_noise_handshake_wipe(&ini);
	ruf_noise_handshake_wipe(&res);
}

/* The X25519 small-order points (and their non-canonical twins). */
static const uint8_t small_order[][32] = {
    {0},
    {1},
    {0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3,
     0xfa, 0xf1, 0x9f, 0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32,
     0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00},
    {0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1,
     0x55, 0x9c, 0x83, 0xef, 0x5b, 0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c,
     0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f, 0x11, 0x57},
    {0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
    {0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
    {0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
};
#define N_SMALL (sizeof small_order / sizeof small_order[0])

static void
test_small_order_keys_are_rejected(void **state)
{
	struct peer a, b;
	ruf_noise_handshake ini, res;
	uint8_t m1[128], m2[128], bad[128], p[64];
	size_t m1len, m2len, plen;
	uint8_t e_sk[32];

	(void)state;
	peer_gen(&a);
	peer_gen(&b);
	randombytes_buf(e_sk, sizeof e_sk);
	for (size_t i = 0; i < N_SMALL; i++) {
		/* As the responder static key known to the initiator. */
		assert_int_equal(ruf_noise_handshake_init(&ini, true, prologue, PROLOGUE_LEN, a.sk,
		                                          a.pk, small_order[i]),
		                 RUF_E_WEAK_KEY);
		assert_int_equal(ruf_noise_write_message(&ini, NULL, 0, m1, sizeof m1, &m1len),
		                 RUF_E_INVAL);

		/* As the ephemeral key in message 1. */
		m1len = make_msg1(&ini, &a, &b, m1, sizeof m1);
		memcpy(bad, m1, m1len);
		memcpy(bad, small_order[i], 32);
		assert_int_equal(
		    ruf_noise_handshake_init(&res, false, prologue, PROLOGUE_LEN, b.sk, b.pk, NULL),
		    0);
		assert_int_equal(ruf_noise_read_message(&res, bad, m1len, p, sizeof p, &plen),
		                 RUF_E_WEAK_KEY);

		/* As the ephemeral key in message 2. */
		assert_int_equal(
		    ruf_noise_handshake_init(&ini, true, prologue, PROLOGUE_LEN, a.sk, a.pk, b.pk),
		    0);
		assert_int_equal(ruf_noise__set_ephemeral_for_tests(&ini, e_sk), 0);
		assert_int_equal(ruf_noise_write_message(&ini, NULL, 0, m1, sizeof m1, &m1len), 0);
		assert_int_equal(
		    ruf_noise_handshake_init(&res, false, prologue, PROLOGUE_LEN, b.sk, b.pk, NULL),
		    0);
		assert_int_equal(ruf_noise_read_message(&res, m1, m1len, p, sizeof p, &plen), 0);
		assert_int_equal(ruf_noise_write_message(&res, NULL, 0, m2, sizeof m2, &m2len), 0);
		memcpy(m2, small_order[i], 32);
		assert_int_equal(ruf_noise_read_message(&ini, m2, m2len, p, sizeof p, &plen),
		                 RUF_E_WEAK_KEY);
	}
	ruf_noise_handshake_wipe(&ini);
	ruf_noise_handshake_wipe(&res);
}

static void
test_small_order_initiator_static_is_rejected(void **state)
{
	struct peer b;
	ruf_noise_symmetric ss;
	ruf_noise_handshake res;
	uint8_t e_sk[32], e_pk[32], shared[32], m[128], p[64];
	size_t off = 0, n, plen;

	(void)state;
	peer_gen(&b);
	/*
	 * An attacker builds message 1 by hand with an all-zero static key:
	 * es is fine, but ss = DH(b, 0) must be refused after s decrypts.
	 */
	randombytes_buf(e_sk, sizeof e_sk);
	crypto_scalarmult_base(e_pk, e_sk);
	ruf_noise_symmetric_init(&ss, RUF_NOISE_PROTOCOL_NAME);
	assert_int_equal(ruf_noise_mix_hash(&ss, prologue, PROLOGUE_LEN), 0);
	assert_int_equal(ruf_noise_mix_hash(&ss, b.pk, 32), 0);
	memcpy(m, e_pk, 32);
	off = 32;
	assert_int_equal(ruf_noise_mix_hash(&ss, e_pk, 32), 0);
	assert_int_equal(crypto_scalarmult(shared, e_sk, b.pk), 0);
	assert_int_equal(ruf_noise_mix_key(&ss, shared, 32), 0);
	assert_int_equal(ruf_noise_encrypt_and_hash(&ss, small_order[0], 32, m + off, 48, &n), 0);
	off += n;
	memset(m + off, 0, 16); /* a payload tag; never reached */
	off += 16;
	assert_int_equal(
	    ruf_noise_handshake_init(&res, false, prologue, PROLOGUE_LEN, b.sk, b.pk, NULL), 0);
	assert_int_equal(ruf_noise_read_message(&res, m, off, p, sizeof p, &plen), RUF_E_WEAK_KEY);
	assert_null(ruf_noise_remote_static(&res));
	ruf_noise_symmetric_wipe(&ss);
	sodium_memzero(e_sk, sizeof e_sk);
}

static void
test_truncated_and_oversized_messages_rejected(void **state)
{
	struct peer a, b;
	ruf_noise_handshake ini, res;
	uint8_t *big, p[64];
	size_t mlen, plen;

	(void)state;
	peer_gen(&a);
	peer_gen(&b);
	big = calloc(1, RUF_NOISE_MAX_MSG + 16);
	assert_non_null(big);
	mlen = make_msg1(&ini, &a, &b, big, RUF_NOISE_MAX_MSG);
	for (size_t cut = 0; cut < RUF_NOISE_MSG1_OVERHEAD; cut++) {
		assert_int_equal(
		    ruf_noise_handshake_init(&res, false, prologue, PROLOGUE_LEN, b.sk, b.pk, NULL),
		    0);
		assert_int_equal(ruf_noise_read_message(&res, big, cut, p, sizeof p, &plen),
		                 RUF_E_TRUNCATED);
		assert_false(ruf_noise_handshake_done(&res));
	}
	/* Cut into the payload: the length is fine, the tag is not. */
	assert_int_equal(
	    ruf_noise_handshake_init(&res, false, prologue, PROLOGUE_LEN, b.sk, b.pk, NULL), 0);
	assert_int_equal(ruf_noise_read_message(&res, big, mlen - 1, p, sizeof p, &plen),
	                 RUF_E_AUTH);
	/* Trailing bytes are not ignored either. */
	assert_int_equal(
	    ruf_noise_handshake_init(&res, false, prologue, PROLOGUE_LEN, b.sk, b.pk, NULL), 0);
	assert_int_equal(ruf_noise_read_message(&res, big, mlen + 1, p, sizeof p, &plen),
	                 RUF_E_AUTH);
	/* Over 65535 bytes. */
	assert_int_equal(
	    ruf_noise_handshake_init(&res, false, prologue, PROLOGUE_LEN, b.sk, b.pk, NULL), 0);
	assert_int_equal(ruf_noise_read_message(&res, big, RUF_NOISE_MAX_MSG + 1, big,
	                                        RUF_NOISE_MAX_MSG + 16, &plen),
	                 RUF_E_TOO_LARGE);
	/* Payload buffer too small: misuse, the handshake may go on. */
	assert_int_equal(
	    ruf_noise_handshake_init(&res, false, prologue, PROLOGUE_LEN, b.sk, b.pk, NULL), 0);
	assert_int_equal(ruf_noise_read_message(&res, big, mlen, p, 8, &plen), RUF_E_INVAL);
	assert_int_equal(ruf_noise_read_message(&res, big, mlen, p, 9, &plen), 0);
	assert_int_equal(plen, 9);

	/* Writing: payload over the limit, and an output buffer too small. */
	assert_int_equal(
	    ruf_noise_handshake_init(&ini, true, prologue, PROLOGUE_LEN, a.sk, a.pk, b.pk), 0);
	assert_int_equal(ruf_noise_write_message(&ini, big,
	                                         RUF_NOISE_MAX_MSG - RUF_NOISE_MSG1_OVERHEAD + 1,
	                                         big, RUF_NOISE_MAX_MSG + 16, &mlen),
	                 RUF_E_TOO_LARGE);
	assert_int_equal(ruf_noise_write_message(&ini, p, 10, big, 10 + 95, &mlen), RUF_E_INVAL);
	free(big);
	ruf_noise_handshake_wipe(&ini);
	ruf_noise_handshake_wipe(&res);
}

static void
test_largest_handshake_payloads_round_trip(void **state)
{
	struct peer a, b;
	ruf_noise_handshake ini, res;
	uint8_t *msg, *pl, *back;
	size_t mlen, plen;
	const size_t p1 = RUF_NOISE_MAX_MSG - RUF_NOISE_MSG1_OVERHEAD;
	const size_t p2 = RUF_NOISE_MAX_MSG - RUF_NOISE_MSG2_OVERHEAD;

	(void)state;
	peer_gen(&a);
	peer_gen(&b);
	msg = malloc(RUF_NOISE_MAX_MSG);
	pl = malloc(RUF_NOISE_MAX_MSG);
	back = malloc(RUF_NOISE_MAX_MSG);
	assert_true(msg && pl && back);
	randombytes_buf(pl, RUF_NOISE_MAX_MSG);
	assert_int_equal(
	    ruf_noise_handshake_init(&ini, true, prologue, PROLOGUE_LEN, a.sk, a.pk, b.pk), 0);
	assert_int_equal(
	    ruf_noise_handshake_init(&res, false, prologue, PROLOGUE_LEN, b.sk, b.pk, NULL), 0);
	assert_int_equal(ruf_noise_write_message(&ini, pl, p1, msg, RUF_NOISE_MAX_MSG, &mlen), 0);
	assert_int_equal(mlen, RUF_NOISE_MAX_MSG);
	assert_int_equal(ruf_noise_read_message(&res, msg, mlen, back, p1, &plen), 0);
	assert_memory_equal(back, pl, p1);
	assert_int_equal(ruf_noise_write_message(&res, pl, p2, msg, RUF_NOISE_MAX_MSG, &mlen), 0);
	assert_int_equal(mlen, RUF_NOISE_MAX_MSG);
	assert_int_equal(ruf_noise_read_message(&ini, msg, mlen, back, p2, &plen), 0);
	assert_memory_equal(back, pl, p2);
	free(msg);
	free(pl);
	free(back);
	ruf_noise_handshake_wipe(&ini);
	ruf_noise_handshake_wipe(&res);
}

static void
test_out_of_turn_calls_and_bad_keys_are_misuse(void **state)
{
	struct peer a, b;
	ruf_noise_handshake ini, res;
	ruf_noise_cipher s, r;
	uint8_t m[128], p[64], hh[64], badpk[32];
	size_t mlen, plen;

	(void)state;
	peer_gen(&a);
	peer_gen(&b);
	/* IK: initiator needs rs, responder must not have one. */
	assert_int_equal(
	    ruf_noise_handshake_init(&ini, true, prologue, PROLOGUE_LEN, a.sk, a.pk, NULL),
	    RUF_E_INVAL);
	assert_int_equal(
	    ruf_noise_handshake_init(&res, false, prologue, PROLOGUE_LEN, b.sk, b.pk, a.pk),
	    RUF_E_INVAL);
	/* A public key that is not ours. */
	memcpy(badpk, b.pk, 32);
	badpk[0] ^= 1;
	assert_int_equal(
	    ruf_noise_handshake_init(&res, false, prologue, PROLOGUE_LEN, b.sk, badpk, NULL),
	    RUF_E_INVAL);
	assert_int_equal(ruf_noise_handshake_init(&res, false, NULL, 3, b.sk, b.pk, NULL),
	                 RUF_E_INVAL);

	assert_int_equal(
	    ruf_noise_handshake_init(&ini, true, prologue, PROLOGUE_LEN, a.sk, a.pk, b.pk), 0);
	assert_int_equal(
	    ruf_noise_handshake_init(&res, false, prologue, PROLOGUE_LEN, b.sk, b.pk, NULL), 0);
	assert_int_equal(ruf_noise_write_message(&res, NULL, 0, m, sizeof m, &mlen), RUF_E_INVAL);
	assert_int_equal(ruf_noise_read_message(&ini, m, 48, p, sizeof p, &plen), RUF_E_INVAL);
	assert_int_equal(ruf_noise_handshake_split(&ini, &s, &r), RUF_E_INVAL);
	assert_int_equal(ruf_noise_handshake_hash(&ini, hh), RUF_E_INVAL);
	assert_int_equal(ruf_noise_write_message(&ini, NULL, 0, m, sizeof m, &mlen), 0);
	/* Our "e" is already out: it cannot be fixed any more. */
	assert_int_equal(ruf_noise__set_ephemeral_for_tests(&ini, a.sk), RUF_E_INVAL);
	assert_int_equal(ruf_noise_write_message(&ini, NULL, 0, m, sizeof m, &mlen), RUF_E_INVAL);
	assert_int_equal(ruf_noise_read_message(&res, m, mlen, p, sizeof p, &plen), 0);
	assert_int_equal(ruf_noise_read_message(&res, m, mlen, p, sizeof p, &plen), RUF_E_INVAL);
	assert_int_equal(ruf_noise_write_message(&res, NULL, 0, m, sizeof m, &mlen), 0);
	assert_int_equal(ruf_noise_read_message(&ini, m, mlen, p, sizeof p, &plen), 0);
	assert_int_equal(ruf_noise_handshake_split(&ini, &s, &r), 0);
	assert_int_equal(ruf_noise_handshake_split(&ini, &s, &r), RUF_E_INVAL);
	/* After split only h and rs remain. */
	assert_true(sodium_is_zero(ini.s_sk, 32));
	assert_true(sodium_is_zero(ini.e_sk, 32));
	assert_true(sodium_is_zero(ini.ss.ck, 64));
	assert_int_equal(ruf_noise_handshake_hash(&ini, hh), 0);
	assert_memory_equal(ruf_noise_remote_static(&ini), b.pk, 32);
	ruf_noise_handshake_wipe(&ini);
	assert_true(sodium_is_zero((const unsigned char *)&ini, sizeof ini));
	ruf_noise_handshake_wipe(NULL);
	ruf_noise_cipher_wipe(NULL);
	ruf_noise_handshake_wipe(&res);
	ruf_noise_cipher_wipe(&s);
	ruf_noise_cipher_wipe(&r);
}

static void
test_round_trip_1000_messages_each_way(void **state)
{
	struct peer a, b;
	ruf_noise_handshake ini, res;
	ruf_noise_cipher is, ir, rs, rr;
	uint8_t h1[64], h2[64], pt[600], ct[616], back[600];
	size_t n, m;

	(void)state;
	peer_gen(&a);
	peer_gen(&b);
	handshake(&ini, &res, &a, &b);
	assert_memory_equal(ruf_noise_remote_static(&res), a.pk, 32);
	assert_memory_equal(ruf_noise_remote_static(&ini), b.pk, 32);
	assert_int_equal(ruf_noise_handshake_hash(&ini, h1), 0);
	assert_int_equal(ruf_noise_handshake_hash(&res, h2), 0);
	assert_memory_equal(h1, h2, 64);
	assert_int_equal(ruf_noise_handshake_split(&ini, &is, &ir), 0);
	assert_int_equal(ruf_noise_handshake_split(&res, &rs, &rr), 0);
	/* The two directions use different keys. */
	assert_memory_not_equal(is.k, ir.k, 32);
	assert_memory_equal(is.k, rr.k, 32);
	assert_memory_equal(ir.k, rs.k, 32);
	for (size_t i = 0; i < 1000; i++) {
		size_t len = (i * 37) % sizeof pt;
		randombytes_buf(pt, len);
		/* initiator -> responder, in place on the receiving side */
		assert_int_equal(ruf_noise_cipher_encrypt(&is, NULL, 0, pt, len, ct, sizeof ct, &n),
		                 0);
		assert_int_equal(n, len + 16);
		assert_int_equal(ruf_noise_cipher_decrypt(&rr, NULL, 0, ct, n, ct, sizeof ct, &m),
		                 0);
		assert_int_equal(m, len);
		assert_memory_equal(ct, pt, len);
		/* responder -> initiator, in place on the sending side */
		memcpy(ct, pt, len);
		assert_int_equal(ruf_noise_cipher_encrypt(&rs, NULL, 0, ct, len, ct, sizeof ct, &n),
		                 0);
		assert_int_equal(
		    ruf_noise_cipher_decrypt(&ir, NULL, 0, ct, n, back, sizeof back, &m), 0);
		assert_int_equal(m, len);
		assert_memory_equal(back, pt, len);
	}
	assert_int_equal(is.n, 1000);
	assert_int_equal(ir.n, 1000);
	/* A message to the wrong direction fails. */
	assert_int_equal(ruf_noise_cipher_encrypt(&is, NULL, 0, pt, 10, ct, sizeof ct, &n), 0);
	assert_int_equal(ruf_noise_cipher_decrypt(&ir, NULL, 0, ct, n, back, sizeof back, &m),
	                 RUF_E_AUTH);
	ruf_noise_handshake_wipe(&ini);
	ruf_noise_handshake_wipe(&res);
	ruf_noise_cipher_wipe(&is);
	ruf_noise_cipher_wipe(&ir);
	ruf_noise_cipher_wipe(&rs);
	ruf_noise_cipher_wipe(&rr);
}

static void
test_fresh_ephemerals_make_distinct_sessions(void **state)
{
	struct peer a, b;
	ruf_noise_handshake i1, r1, i2, r2;
	uint8_t h1[64], h2[64];

	(void)state;
	peer_gen(&a);
	peer_gen(&b);
	handshake(&i1, &r1, &a, &b);
	handshake(&i2, &r2, &a, &b);
	assert_int_equal(ruf_noise_handshake_hash(&i1, h1), 0);
	assert_int_equal(ruf_noise_handshake_hash(&i2, h2), 0);
	assert_memory_not_equal(h1, h2, 64);
	ruf_noise_handshake_wipe(&i1);
	ruf_noise_handshake_wipe(&r1);
	ruf_noise_handshake_wipe(&i2);
	ruf_noise_handshake_wipe(&r2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ik_vectors_reproduce_every_byte),
	    cmocka_unit_test(test_hmac_blake2b_matches_rfc2104_not_keyed_blake2b),
	    cmocka_unit_test(test_hkdf_outputs_may_alias_chaining_key),
	    cmocka_unit_test(test_cipher_nonce_is_zero_prefixed_little_endian),
	    cmocka_unit_test(test_cipher_refuses_exhausted_nonce),
	    cmocka_unit_test(test_cipher_decrypt_failure_keeps_nonce),
	    cmocka_unit_test(test_cipher_rekey_is_spec_default),
	    cmocka_unit_test(test_cipher_rejects_oversized_and_truncated),
	    cmocka_unit_test(test_cipher_without_key_never_sends_plaintext),
	    cmocka_unit_test(test_symmetric_state_follows_definitions),
	    cmocka_unit_test(test_tampered_message1_fails_authentication),
	    cmocka_unit_test(test_tampered_message2_fails_authentication),
	    cmocka_unit_test(test_wrong_responder_static_key_fails),
	    cmocka_unit_test(test_prologue_mismatch_fails),
	    cmocka_unit_test(test_small_order_keys_are_rejected),
	    cmocka_unit_test(test_small_order_initiator_static_is_rejected),
	    cmocka_unit_test(test_truncated_and_oversized_messages_rejected),
	    cmocka_unit_test(test_largest_handshake_payloads_round_trip),
	    cmocka_unit_test(test_out_of_turn_calls_and_bad_keys_are_misuse),
	    cmocka_unit_test(test_round_trip_1000_messages_each_way),
	    cmocka_unit_test(test_fresh_ephemerals_make_distinct_sessions),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
