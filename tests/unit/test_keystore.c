/*
 * test_keystore.c - keystore format, key rules and passphrase input.
 *
 * Bodies with deliberate faults (duplicates, mismatched halves) are sealed
 * here by a second, independent writer of the format in
 * docs/PROTOCOL.md (seal_unprotected), which also pins the layout.
 *
 * With RUF_WRITE_CORPUS=DIR set, test_keystore_writes_fuzz_corpus writes the
 * seed corpus of tests/fuzz/fuzz_keystore.c into DIR.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "err.h"
#include "keystore.h"
#include "keystore.pb-c.h"
#include "pb.h"
#include "util.h"

#define HDR 68
#define TAG 16
#define PASS "correct horse battery staple"
#define PASSLEN (sizeof(PASS) - 1)

static int
setup(void **state)
{
	(void)state;
	return sodium_init() < 0 ? -1 : 0;
}

/* A keystore with one key of every type, and two epochs of one queue. */
static ruf_keystore *
make_full(void)
{
	ruf_keystore *ks;

	assert_int_equal(ruf_keystore_new(&ks), 0);
	assert_int_equal(ruf_keystore_generate(ks, RUF_KEY_SIGN, RUF_KEYNAME_SIGN, 0, NULL), 0);
	assert_int_equal(ruf_keystore_generate(ks, RUF_KEY_KX, RUF_KEYNAME_KX, 0, NULL), 0);
	assert_int_equal(ruf_keystore_generate(ks, RUF_KEY_QUEUE, "itf.darfur", 1, NULL), 0);
	assert_int_equal(ruf_keystore_generate(ks, RUF_KEY_QUEUE, "itf.darfur", 2, NULL), 0);
	assert_int_equal(ruf_keystore_generate(ks, RUF_KEY_QUEUE, "sag", 1, NULL), 0);
	return ks;
}

static void
assert_same_keys(const ruf_keystore *a, const ruf_keystore *b)
{
	assert_int_equal(ruf_keystore_count(a), ruf_keystore_count(b));
	for (size_t i = 0; i < ruf_keystore_count(a); i++) {
		const struct ruf_key *x = ruf_keystore_get(a, i), *y = ruf_keystore_get(b, i);
		assert_int_equal(x->type, y->type);
		assert_string_equal(x->name, y->name);
		assert_int_equal(x->epoch, y->epoch);
		assert_memory_equal(x->pk, y->pk, 32);
		assert_int_equal(x->sklen, y->sklen);
		assert_memory_equal(x->sk, y->sk, x->sklen);
	}
}

/* Independent writer: header per the spec, body sealed with the public key. */
static void
seal_unprotected(const uint8_t *body, size_t blen, uint8_t **out, size_t *outlen)
{
	static const char ctx[] = "ruf-keystore-unprotected-v1";
	uint8_t key[32], *buf;

	*outlen = HDR + blen + TAG;
	assert_non_null(buf = calloc(1, *outlen));
	memcpy(buf, "RUFKEYS\n", 8);
	buf[9] = 1; /* version 1, flags 0, limits and salt zero */
	randombytes_buf(buf + 44, 24);
	crypto_generichash(key, 32, (const uint8_t *)ctx, sizeof(ctx) - 1, NULL, 0);
	crypto_aead_xchacha20poly1305_ietf_encrypt(buf + HDR, NULL, body, blen, buf, HDR, NULL,
	                                           buf + 44, key);
	*out = buf;
}

/* Packs n hand-made StoredKeys and seals them. */
static void
seal_keys(Ruf__StoredKey **keys, size_t n, uint8_t **out, size_t *outlen)
{
	Ruf__KeystoreBody body = RUF__KEYSTORE_BODY__INIT;
	uint8_t *b;
	size_t blen;

	body.n_keys = n;
	body.keys = keys;
	assert_int_equal(ruf_pb_encode(&body.base, &b, &blen), 0);
	seal_unprotected(b, blen, out, outlen);
	free(b);
}

static void
stored_from(Ruf__StoredKey *sk, const struct ruf_key *k)
{
	ruf__stored_key__init(sk);
	sk->type = k->type;
	sk->name = (char *)k->name;
	sk->epoch = k->epoch;
	sk->public_key.data = (uint8_t *)k->pk;
	sk->public_key.len = 32;
	sk->secret_key.data = k->sk;
	sk->secret_key.len = k->sklen;
}

static int
decode_keys(Ruf__StoredKey **keys, size_t n)
{
	ruf_keystore *ks = NULL;
	uint8_t *buf;
	size_t len;
	int rc;

	seal_keys(keys, n, &buf, &len);
	rc = ruf_keystore_decode(buf, len, NULL, 0, &ks);
	if (rc == 0)
		assert_non_null(ks);
	else
		assert_null(ks);
	ruf_keystore_free(ks);
	free(buf);
	return rc;
}

static void
test_keystore_round_trips_every_key_type(void **state)
{
	struct ruf_kdf kdf = ruf_kdf_interactive();
	ruf_keystore *ks = make_full(), *back;
	uint8_t *buf;
	size_t len;

	(void)state;
	assert_int_equal(ruf_keystore_encode(ks, NULL, 0, NULL, &buf, &len), 0);
	assert_false(ruf_keystore_is_protected(buf, len));
	assert_int_equal(ruf_keystore_decode(buf, len, NULL, 0, &back), 0);
	assert_same_keys(ks, back);
	ruf_keystore_free(back);
	free(buf);

	assert_int_equal(ruf_keystore_encode(ks, PASS, PASSLEN, &kdf, &buf, &len), 0);
	assert_true(ruf_keystore_is_protected(buf, len));
	assert_int_equal(ruf_keystore_decode(buf, len, PASS, PASSLEN, &back), 0);
	assert_same_keys(ks, back);
	ruf_keystore_free(back);
	free(buf);

	/* An empty keystore round-trips too. */
	ruf_keystore_free(ks);
	assert_int_equal(ruf_keystore_new(&ks), 0);
	assert_int_equal(ruf_keystore_encode(ks, NULL, 0, NULL, &buf, &len), 0);
	assert_int_equal(len, HDR + TAG);
	assert_int_equal(ruf_keystore_decode(buf, len, NULL, 0, &back), 0);
	assert_int_equal(ruf_keystore_count(back), 0);
	ruf_keystore_free(back);
	free(buf);
	ruf_keystore_free(ks);
}

static void
test_keystore_header_layout_is_as_documented(void **state)
{
	struct ruf_kdf kdf = ruf_kdf_interactive();
	ruf_keystore *ks = make_full();
	uint8_t *buf, *buf2, be[8];
	size_t len, len2;

	(void)state;
	assert_int_equal(ruf_keystore_encode(ks, PASS, PASSLEN, &kdf, &buf, &len), 0);
	assert_memory_equal(buf, "RUFKEYS\n", 8);
	assert_int_equal(buf[8], 0);
	assert_int_equal(buf[9], 1);
	assert_int_equal(buf[10], 0);
	assert_int_equal(buf[11], 1);
	for (int i = 0; i < 8; i++)
		be[i] = (uint8_t)(kdf.opslimit >> (56 - 8 * i));
	assert_memory_equal(buf + 12, be, 8);
	for (int i = 0; i < 8; i++)
		be[i] = (uint8_t)(kdf.memlimit >> (56 - 8 * i));
	assert_memory_equal(buf + 20, be, 8);

	/* Fresh salt and nonce every time. */
	assert_int_equal(ruf_keystore_encode(ks, PASS, PASSLEN, &kdf, &buf2, &len2), 0);
	assert_int_equal(len, len2);
	assert_memory_not_equal(buf + 28, buf2 + 28, 16);
	assert_memory_not_equal(buf + 44, buf2 + 44, 24);
	free(buf);
	free(buf2);

	/* Unprotected: flags 0, limits and salt zero. */
	assert_int_equal(ruf_keystore_encode(ks, NULL, 0, NULL, &buf, &len), 0);
	assert_int_equal(buf[11], 0);
	for (int i = 12; i < 44; i++)
		assert_int_equal(buf[i], 0);
	free(buf);
	ruf_keystore_free(ks);
}

static void
test_keystore_rejects_wrong_or_missing_passphrase(void **state)
{
	struct ruf_kdf kdf = ruf_kdf_interactive();
	ruf_keystore *ks, *back = NULL;
	uint8_t *buf;
	size_t len;

	(void)state;
	assert_int_equal(ruf_keystore_new(&ks), 0);
	assert_int_equal(ruf_keystore_generate(ks, RUF_KEY_KX, "kx", 0, NULL), 0);
	assert_int_equal(ruf_keystore_encode(ks, PASS, PASSLEN, &kdf, &buf, &len), 0);
	assert_int_equal(ruf_keystore_decode(buf, len, "wrong", 5, &back), RUF_E_PASSPHRASE);
	assert_null(back);
	/* One byte short of the right passphrase is still wrong. */
	assert_int_equal(ruf_keystore_decode(buf, len, PASS, PASSLEN - 1, &back), RUF_E_PASSPHRASE);
	assert_int_equal(ruf_keystore_decode(buf, len, NULL, 0, &back), RUF_E_NO_PASSPHRASE);
	assert_int_equal(ruf_keystore_decode(buf, len, PASS, 0, &back), RUF_E_NO_PASSPHRASE);
	assert_null(back);
	free(buf);
	ruf_keystore_free(ks);
}

static void
test_keystore_encode_rejects_empty_passphrase_and_bad_limits(void **state)
{
	struct ruf_kdf kdf = ruf_kdf_interactive();
	ruf_keystore *ks;
	uint8_t *buf;
	size_t len;

	(void)state;
	assert_int_equal(ruf_keystore_new(&ks), 0);
	assert_int_equal(ruf_keystore_encode(ks, "", 0, &kdf, &buf, &len), RUF_E_INVAL);
	assert_int_equal(ruf_keystore_encode(ks, NULL, 3, &kdf, &buf, &len), RUF_E_INVAL);
	kdf.opslimit = 1;
	assert_int_equal(ruf_keystore_encode(ks, PASS, PASSLEN, &kdf, &buf, &len),
	                 RUF_E_KDF_LIMITS);
	kdf = ruf_kdf_sensitive();
	kdf.memlimit *= 2;
	assert_int_equal(ruf_keystore_encode(ks, PASS, PASSLEN, &kdf, &buf, &len),
	                 RUF_E_KDF_LIMITS);
	assert_null(buf);
	ruf_keystore_free(ks);
}

/*
 * Flips every byte of f in turn: each must fail to decode. The flipped byte
 * is XORed with 0x01 so the low bits of memlimit, which Argon2 rounds away,
 * are covered: the header is associated data, so they must still count.
 */
static void
flip_every_byte(const uint8_t *f, size_t len, const char *pass, size_t passlen)
{
	uint8_t *c = malloc(len);

	assert_non_null(c);
	for (size_t i = 0; i < len; i++) {
		ruf_keystore *ks = NULL;
		int rc;

		memcpy(c, f, len);
		c[i] ^= 0x01;
		rc = ruf_keystore_decode(c, len, pass, passlen, &ks);
		if (rc == 0)
			fail_msg("flipped byte %zu decoded", i);
		assert_null(ks);
	}
	free(c);
}

static void
test_keystore_rejects_any_flipped_byte_unprotected(void **state)
{
	ruf_keystore *ks = make_full();
	uint8_t *buf;
	size_t len;

	(void)state;
	assert_int_equal(ruf_keystore_encode(ks, NULL, 0, NULL, &buf, &len), 0);
	flip_every_byte(buf, len, NULL, 0);
	flip_every_byte(buf, len, PASS, PASSLEN);
	free(buf);
	ruf_keystore_free(ks);
}

/*
 * An empty protected keystore: every flip past the limits costs one
 * Argon2id run, so the file is kept to header and tag (84 bytes); the body
 * is covered by the unprotected case, which uses the same AEAD.
 */
static void
test_keystore_rejects_any_flipped_byte_protected(void **state)
{
	struct ruf_kdf kdf = ruf_kdf_interactive();
	ruf_keystore *ks;
	uint8_t *buf;
	size_t len;

	(void)state;
	assert_int_equal(ruf_keystore_new(&ks), 0);
	assert_int_equal(ruf_keystore_encode(ks, PASS, PASSLEN, &kdf, &buf, &len), 0);
	assert_int_equal(len, HDR + TAG);
	flip_every_byte(buf, len, PASS, PASSLEN);
	free(buf);
	ruf_keystore_free(ks);
}

static void
truncate_everywhere_and_extend(const uint8_t *f, size_t len, const char *pass, size_t passlen)
{
	uint8_t *c = malloc(len + 1);
	ruf_keystore *ks = NULL;

	assert_non_null(c);
	memcpy(c, f, len);
	for (size_t n = 0; n < len; n++) {
		if (ruf_keystore_decode(c, n, pass, passlen, &ks) == 0)
			fail_msg("truncated to %zu decoded", n);
		assert_null(ks);
	}
	c[len] = 0;
	assert_int_not_equal(ruf_keystore_decode(c, len + 1, pass, passlen, &ks), 0);
	assert_null(ks);
	free(c);
}

static void
test_keystore_rejects_truncation_and_trailing_byte(void **state)
{
	struct ruf_kdf kdf = ruf_kdf_interactive();
	ruf_keystore *ks = make_full(), *empty, *back = NULL;
	uint8_t *buf;
	size_t len;

	(void)state;
	assert_int_equal(ruf_keystore_encode(ks, NULL, 0, NULL, &buf, &len), 0);
	truncate_everywhere_and_extend(buf, len, NULL, 0);
	free(buf);

	/* Protected: every truncation is shorter than header + tag, so cheap. */
	assert_int_equal(ruf_keystore_new(&empty), 0);
	assert_int_equal(ruf_keystore_encode(empty, PASS, PASSLEN, &kdf, &buf, &len), 0);
	truncate_everywhere_and_extend(buf, len, PASS, PASSLEN);
	free(buf);
	ruf_keystore_free(empty);

	/* A trailing byte after a protected keystore with keys. */
	assert_int_equal(ruf_keystore_encode(ks, PASS, PASSLEN, &kdf, &buf, &len), 0);
	assert_non_null(buf = realloc(buf, len + 1));
	buf[len] = '\n';
	assert_int_equal(ruf_keystore_decode(buf, len + 1, PASS, PASSLEN, &back), RUF_E_PASSPHRASE);
	assert_null(back);
	free(buf);
	ruf_keystore_free(ks);
}

static void
put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

/*
 * Limits out of bounds are refused before Argon2id runs: had it run, a
 * memlimit of 2^62 would fail allocation (RUF_E_NOMEM) and one just above
 * sensitive would run and then fail authentication (RUF_E_PASSPHRASE).
 */
static void
test_keystore_rejects_huge_kdf_limits_before_deriving(void **state)
{
	struct ruf_kdf kdf = ruf_kdf_interactive(), sens = ruf_kdf_sensitive();
	const struct {
		uint64_t ops, mem;
	} bad[] = {
	    {kdf.opslimit, UINT64_C(1) << 62},    {kdf.opslimit, UINT64_MAX},
	    {kdf.opslimit, sens.memlimit + 1024}, {sens.opslimit + 1, kdf.memlimit},
	    {UINT64_MAX, kdf.memlimit},           {kdf.opslimit - 1, kdf.memlimit},
	    {kdf.opslimit, kdf.memlimit - 1},     {0, 0},
	};
	ruf_keystore *ks, *back = NULL;
	uint8_t *buf;
	size_t len;

	(void)state;
	assert_int_equal(ruf_keystore_new(&ks), 0);
	assert_int_equal(ruf_keystore_encode(ks, PASS, PASSLEN, &kdf, &buf, &len), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		put_be64(buf + 12, bad[i].ops);
		put_be64(buf + 20, bad[i].mem);
		assert_int_equal(ruf_keystore_decode(buf, len, PASS, PASSLEN, &back),
		                 RUF_E_KDF_LIMITS);
		/* The header is judged before the missing passphrase. */
		assert_int_equal(ruf_keystore_decode(buf, len, NULL, 0, &back), RUF_E_KDF_LIMITS);
		assert_null(back);
	}
	free(buf);
	ruf_keystore_free(ks);
}

static void
test_keystore_rejects_foreign_header(void **state)
{
	ruf_keystore *ks, *back = NULL;
	uint8_t *buf, *c;
	size_t len;

	(void)state;
	assert_int_equal(ruf_keystore_new(&ks), 0);
	assert_int_equal(ruf_keystore_encode(ks, NULL, 0, NULL, &buf, &len), 0);
	assert_non_null(c = malloc(len));

	memcpy(c, buf, len);
	c[0] = 'X';
	assert_int_equal(ruf_keystore_decode(c, len, NULL, 0, &back), RUF_E_KEYSTORE);
	memcpy(c, buf, len);
	c[9] = 2; /* version 2 */
	assert_int_equal(ruf_keystore_decode(c, len, NULL, 0, &back), RUF_E_VERSION);
	/* A future version is reported as such even if its header is shorter. */
	assert_int_equal(ruf_keystore_decode(c, 10, NULL, 0, &back), RUF_E_VERSION);
	memcpy(c, buf, len);
	c[10] = 0x80; /* unknown flag */
	assert_int_equal(ruf_keystore_decode(c, len, NULL, 0, &back), RUF_E_KEYSTORE);
	memcpy(c, buf, len);
	c[30] = 1; /* salt in an unprotected file */
	assert_int_equal(ruf_keystore_decode(c, len, NULL, 0, &back), RUF_E_KEYSTORE);
	assert_int_equal(ruf_keystore_decode(NULL, 0, NULL, 0, &back), RUF_E_KEYSTORE);
	assert_false(ruf_keystore_is_protected(c, 5));
	assert_null(back);
	free(c);
	free(buf);
	ruf_keystore_free(ks);
}

static void
test_keystore_rejects_duplicate_key(void **state)
{
	ruf_keystore *ks;
	const struct ruf_key *k;
	Ruf__StoredKey a, b, *keys[2] = {&a, &b};

	(void)state;
	assert_int_equal(ruf_keystore_new(&ks), 0);
	assert_int_equal(ruf_keystore_generate(ks, RUF_KEY_QUEUE, "sag", 1, NULL), 0);
	assert_int_equal(ruf_keystore_generate(ks, RUF_KEY_QUEUE, "sag", 1, NULL), RUF_E_EXISTS);
	k = ruf_keystore_find(ks, RUF_KEY_QUEUE, "sag", 1);
	assert_non_null(k);
	assert_int_equal(ruf_keystore_add(ks, k), RUF_E_EXISTS);
	assert_int_equal(ruf_keystore_count(ks), 1);

	/* In a file: the same key twice, then a different key with the same id. */
	stored_from(&a, k);
	stored_from(&b, k);
	assert_int_equal(decode_keys(keys, 1), 0);
	assert_int_equal(decode_keys(keys, 2), RUF_E_KEYSTORE);
	assert_int_equal(ruf_keystore_generate(ks, RUF_KEY_QUEUE, "sag", 2, NULL), 0);
	stored_from(&b, ruf_keystore_find(ks, RUF_KEY_QUEUE, "sag", 2));
	assert_int_equal(decode_keys(keys, 2), 0);
	b.epoch = 1;
	assert_int_equal(decode_keys(keys, 2), RUF_E_KEYSTORE);
	/* Same name and epoch but another type is not a duplicate. */
	assert_int_equal(ruf_keystore_generate(ks, RUF_KEY_KX, "sag", 0, NULL), 0);
	stored_from(&b, ruf_keystore_find(ks, RUF_KEY_KX, "sag", 0));
	assert_int_equal(decode_keys(keys, 2), 0);
	ruf_keystore_free(ks);
}

static void
test_keystore_rejects_mismatched_public_key(void **state)
{
	ruf_keystore *ks;
	struct ruf_key copy;
	uint8_t sk[RUF_SIGN_SK_BYTES];
	Ruf__StoredKey a, *keys[1] = {&a};
	const enum ruf_key_type types[] = {RUF_KEY_SIGN, RUF_KEY_KX, RUF_KEY_QUEUE};
	const char *names[] = {"sign", "kx", "sag"};

	(void)state;
	assert_int_equal(ruf_keystore_new(&ks), 0);
	for (size_t t = 0; t < 3; t++) {
		uint32_t ep = types[t] == RUF_KEY_QUEUE ? 1 : 0;
		const struct ruf_key *k;

		assert_int_equal(ruf_keystore_generate(ks, types[t], names[t], ep, NULL), 0);
		k = ruf_keystore_find(ks, types[t], names[t], ep);
		assert_non_null(k);
		memcpy(sk, k->sk, k->sklen);

		/* pk altered: rejected by add and by decode. */
		copy = *k;
		copy.sk = sk;
		copy.pk[5] ^= 0x40;
		assert_int_equal(ruf_keystore_add(ks, &copy), RUF_E_INVAL);
		stored_from(&a, &copy);
		assert_int_equal(decode_keys(keys, 1), RUF_E_KEYSTORE);

		/* sk altered (for Ed25519, the seed half; its pk copy is intact). */
		copy = *k;
		copy.sk = sk;
		sk[3] ^= 0x01;
		stored_from(&a, &copy);
		assert_int_equal(decode_keys(keys, 1), RUF_E_KEYSTORE);
		sk[3] ^= 0x01;

		/* Wrong secret length for the type. */
		stored_from(&a, k);
		a.secret_key.len = k->sklen - 1;
		assert_int_equal(decode_keys(keys, 1), RUF_E_KEYSTORE);
		stored_from(&a, k);
		a.public_key.len = 31;
		assert_int_equal(decode_keys(keys, 1), RUF_E_KEYSTORE);

		/* The untouched key still decodes. */
		stored_from(&a, k);
		assert_int_equal(decode_keys(keys, 1), 0);
	}
	/* Ed25519: the pk copy inside sk disagreeing with the seed. */
	{
		const struct ruf_key *k = ruf_keystore_find(ks, RUF_KEY_SIGN, "sign", 0);
		memcpy(sk, k->sk, 64);
		sk[40] ^= 0x01;
		copy = *k;
		copy.sk = sk;
		assert_int_equal(ruf_keystore_add(ks, &copy), RUF_E_INVAL);
	}
	sodium_memzero(sk, sizeof(sk));
	ruf_keystore_free(ks);
}

static void
test_keystore_rejects_bad_type_name_or_epoch(void **state)
{
	ruf_keystore *ks;
	const struct ruf_key *q, *s;
	Ruf__StoredKey a, *keys[1] = {&a};
	char longname[RUF_KEY_NAME_MAX + 2];

	(void)state;
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(ruf_keystore_new(&ks), 0);
	assert_int_equal(ruf_keystore_generate(ks, RUF_KEY_QUEUE, "ITF", 1, NULL), RUF_E_INVAL);
	assert_int_equal(ruf_keystore_generate(ks, RUF_KEY_QUEUE, "sag", 0, NULL), RUF_E_INVAL);
	assert_int_equal(ruf_keystore_generate(ks, RUF_KEY_SIGN, "sign", 1, NULL), RUF_E_INVAL);
	assert_int_equal(ruf_keystore_generate(ks, RUF_KEY_SIGN, "", 0, NULL), RUF_E_INVAL);
	assert_int_equal(ruf_keystore_generate(ks, RUF_KEY_SIGN, longname, 0, NULL), RUF_E_INVAL);
	assert_int_equal(ruf_keystore_generate(ks, RUF_KEY_SIGN, "\xc0\xaf", 0, NULL), RUF_E_INVAL);
	assert_int_equal(ruf_keystore_generate(ks, (enum ruf_key_type)4, "x", 0, NULL),
	                 RUF_E_INVAL);
	longname[RUF_KEY_NAME_MAX] = '\0';
	assert_int_equal(ruf_keystore_generate(ks, RUF_KEY_SIGN, longname, 0, NULL), 0);
	assert_int_equal(ruf_keystore_count(ks), 1);

	assert_int_equal(ruf_keystore_generate(ks, RUF_KEY_QUEUE, "sag", 1, NULL), 0);
	assert_int_equal(ruf_keystore_generate(ks, RUF_KEY_SIGN, "sign", 0, NULL), 0);
	q = ruf_keystore_find(ks, RUF_KEY_QUEUE, "sag", 1);
	s = ruf_keystore_find(ks, RUF_KEY_SIGN, "sign", 0);

	stored_from(&a, q);
	a.epoch = 0;
	assert_int_equal(decode_keys(keys, 1), RUF_E_KEYSTORE);
	stored_from(&a, q);
	a.name = "not a queue";
	assert_int_equal(decode_keys(keys, 1), RUF_E_KEYSTORE);
	stored_from(&a, q);
	a.type = RUF_KEY_KX; /* kx keys have epoch 0 */
	assert_int_equal(decode_keys(keys, 1), RUF_E_KEYSTORE);
	a.epoch = 0;
	assert_int_equal(decode_keys(keys, 1), 0);
	a.type = 0;
	assert_int_equal(decode_keys(keys, 1), RUF_E_KEYSTORE);
	a.type = 9;
	assert_int_equal(decode_keys(keys, 1), RUF_E_KEYSTORE);
	stored_from(&a, s);
	a.epoch = 7;
	assert_int_equal(decode_keys(keys, 1), RUF_E_KEYSTORE);
	stored_from(&a, s);
	a.name = "";
	assert_int_equal(decode_keys(keys, 1), RUF_E_KEYSTORE);
	a.name = longname;
	longname[RUF_KEY_NAME_MAX] = 'a';
	assert_int_equal(decode_keys(keys, 1), RUF_E_KEYSTORE);
	ruf_keystore_free(ks);
}

static void
test_keystore_rejects_garbage_body(void **state)
{
	static const uint8_t bodies[][4] = {
	    {0x0a, 0x05, 0x08},       /* truncated submessage */
	    {0x12, 0x00},             /* unknown field 2 */
	    {0x0a, 0x00, 0x00, 0x00}, /* trailing zero bytes */
	};
	static const size_t lens[] = {3, 2, 4};
	ruf_keystore *ks = NULL;
	uint8_t *buf;
	size_t len;

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		seal_unprotected(bodies[i], lens[i], &buf, &len);
		assert_int_equal(ruf_keystore_decode(buf, len, NULL, 0, &ks), RUF_E_KEYSTORE);
		assert_null(ks);
		free(buf);
	}
	/* An empty StoredKey (all defaults) is not a key. */
	seal_unprotected(bodies[2], 2, &buf, &len);
	assert_int_equal(ruf_keystore_decode(buf, len, NULL, 0, &ks), RUF_E_KEYSTORE);
	free(buf);
}

static void
test_keystore_add_copies_and_rejects_bad_keys(void **state)
{
	ruf_keystore *a = make_full(), *b;
	struct ruf_key bad;

	(void)state;
	assert_int_equal(ruf_keystore_new(&b), 0);
	for (size_t i = 0; i < ruf_keystore_count(a); i++)
		assert_int_equal(ruf_keystore_add(b, ruf_keystore_get(a, i)), 0);
	assert_same_keys(a, b);
	/* A copy: b's secrets do not alias a's. */
	assert_ptr_not_equal(ruf_keystore_get(a, 0)->sk, ruf_keystore_get(b, 0)->sk);
	ruf_keystore_free(a);
	assert_int_equal(ruf_keystore_count(b), 5);

	assert_int_equal(ruf_keystore_add(b, NULL), RUF_E_INVAL);
	bad = *ruf_keystore_get(b, 0);
	bad.sk = NULL;
	assert_int_equal(ruf_keystore_add(b, &bad), RUF_E_INVAL);
	bad = *ruf_keystore_get(b, 0);
	memset(bad.name, 'a', sizeof(bad.name)); /* no terminator */
	assert_int_equal(ruf_keystore_add(b, &bad), RUF_E_INVAL);
	bad = *ruf_keystore_get(b, 0);
	bad.sklen = 32;
	assert_int_equal(ruf_keystore_add(b, &bad), RUF_E_INVAL);
	assert_int_equal(ruf_keystore_count(b), 5);
	ruf_keystore_free(b);

	/* NULL keystores and arguments are refused, not dereferenced. */
	assert_int_equal(ruf_keystore_count(NULL), 0);
	assert_null(ruf_keystore_get(NULL, 0));
	assert_null(ruf_keystore_find(NULL, RUF_KEY_SIGN, "sign", 0));
	assert_int_equal(ruf_keystore_generate(NULL, RUF_KEY_SIGN, "sign", 0, NULL), RUF_E_INVAL);
	assert_int_equal(ruf_keystore_decode((const uint8_t *)"x", 1, NULL, 4, &b), RUF_E_INVAL);
	assert_int_equal(ruf_keystore_save(NULL, "/nonexistent", NULL, 0, NULL, true), RUF_E_INVAL);
	assert_int_equal(ruf_keystore_load(NULL, NULL, 0, &b), RUF_E_INVAL);
	ruf_keystore_free(NULL);
}

static void
test_keystore_rejects_more_than_max_keys(void **state)
{
	Ruf__StoredKey *sks;
	Ruf__StoredKey **ptrs;
	ruf_keystore *ks, *back, *other;
	uint8_t *buf;
	size_t len;

	(void)state;
	assert_int_equal(ruf_keystore_new(&ks), 0);
	for (uint32_t e = 1; e <= RUF_KEYSTORE_KEYS_MAX; e++)
		assert_int_equal(ruf_keystore_generate(ks, RUF_KEY_QUEUE, "sag", e, NULL), 0);
	assert_int_equal(ruf_keystore_generate(ks, RUF_KEY_KX, "kx", 0, NULL), RUF_E_TOO_LARGE);
	assert_int_equal(ruf_keystore_count(ks), RUF_KEYSTORE_KEYS_MAX);
	assert_int_equal(ruf_keystore_find(ks, RUF_KEY_QUEUE, "sag", 0)->epoch,
	                 RUF_KEYSTORE_KEYS_MAX);

	/* The maximum round-trips. */
	assert_int_equal(ruf_keystore_encode(ks, NULL, 0, NULL, &buf, &len), 0);
	assert_true(len <= RUF_KEYSTORE_FILE_MAX);
	assert_int_equal(ruf_keystore_decode(buf, len, NULL, 0, &back), 0);
	assert_int_equal(ruf_keystore_count(back), RUF_KEYSTORE_KEYS_MAX);
	ruf_keystore_free(back);
	free(buf);

	/* One more in a file is refused. */
	assert_non_null(sks = calloc(RUF_KEYSTORE_KEYS_MAX + 1, sizeof(*sks)));
	assert_non_null(ptrs = calloc(RUF_KEYSTORE_KEYS_MAX + 1, sizeof(*ptrs)));
	for (size_t i = 0; i < RUF_KEYSTORE_KEYS_MAX; i++) {
		stored_from(&sks[i], ruf_keystore_get(ks, i));
		ptrs[i] = &sks[i];
	}
	assert_int_equal(ruf_keystore_generate(ks, RUF_KEY_QUEUE, "hrt", 1, NULL), RUF_E_TOO_LARGE);
	assert_int_equal(ruf_keystore_new(&other), 0);
	assert_int_equal(ruf_keystore_generate(other, RUF_KEY_QUEUE, "hrt", 1, NULL), 0);
	stored_from(&sks[RUF_KEYSTORE_KEYS_MAX], ruf_keystore_get(other, 0));
	ptrs[RUF_KEYSTORE_KEYS_MAX] = &sks[RUF_KEYSTORE_KEYS_MAX];
	assert_int_equal(decode_keys(ptrs, RUF_KEYSTORE_KEYS_MAX), 0);
	assert_int_equal(decode_keys(ptrs, RUF_KEYSTORE_KEYS_MAX + 1), RUF_E_KEYSTORE);
	free(ptrs);
	free(sks);
	ruf_keystore_free(other);
	ruf_keystore_free(ks);
}

static void
test_keystore_find_epoch_zero_returns_highest(void **state)
{
	ruf_keystore *ks;
	uint8_t pk1[32], pk3[32], pk2[32];
	const struct ruf_key *k;

	(void)state;
	assert_int_equal(ruf_keystore_new(&ks), 0);
	assert_int_equal(ruf_keystore_generate(ks, RUF_KEY_QUEUE, "itf.darfur", 1, pk1), 0);
	assert_int_equal(ruf_keystore_generate(ks, RUF_KEY_QUEUE, "itf.darfur", 3, pk3), 0);
	assert_int_equal(ruf_keystore_generate(ks, RUF_KEY_QUEUE, "itf.darfur", 2, pk2), 0);
	assert_int_equal(ruf_keystore_generate(ks, RUF_KEY_QUEUE, "sag", 9, NULL), 0);
	k = ruf_keystore_find(ks, RUF_KEY_QUEUE, "itf.darfur", 0);
	assert_non_null(k);
	assert_int_equal(k->epoch, 3);
	assert_memory_equal(k->pk, pk3, 32);
	k = ruf_keystore_find(ks, RUF_KEY_QUEUE, "itf.darfur", 2);
	assert_non_null(k);
	assert_memory_equal(k->pk, pk2, 32);
	assert_null(ruf_keystore_find(ks, RUF_KEY_QUEUE, "itf.darfur", 4));
	assert_null(ruf_keystore_find(ks, RUF_KEY_KX, "itf.darfur", 0));
	assert_null(ruf_keystore_find(ks, RUF_KEY_QUEUE, "itf", 0));
	assert_null(ruf_keystore_get(ks, 4));
	ruf_keystore_free(ks);
}

/*
 * The signing key and the Noise key are separate random key pairs; each
 * works for its own purpose.
 */
static void
test_keystore_sign_and_kx_keys_are_independent(void **state)
{
	ruf_keystore *ks, *ks2;
	const struct ruf_key *s, *x, *s2;
	uint8_t sig[RUF_SIG_BYTES], pk[32];
	static const uint8_t msg[] = "situation report";

	(void)state;
	assert_int_equal(ruf_keystore_new(&ks), 0);
	assert_int_equal(ruf_keystore_new(&ks2), 0);
	assert_int_equal(ruf_keystore_generate(ks, RUF_KEY_SIGN, "sign", 0, NULL), 0);
	assert_int_equal(ruf_keystore_generate(ks, RUF_KEY_KX, "kx", 0, NULL), 0);
	assert_int_equal(ruf_keystore_generate(ks2, RUF_KEY_SIGN, "sign", 0, NULL), 0);
	s = ruf_keystore_find(ks, RUF_KEY_SIGN, "sign", 0);
	x = ruf_keystore_find(ks, RUF_KEY_KX, "kx", 0);
	s2 = ruf_keystore_find(ks2, RUF_KEY_SIGN, "sign", 0);
	assert_int_equal(s->sklen, RUF_SIGN_SK_BYTES);
	assert_int_equal(x->sklen, RUF_KX_SK_BYTES);
	assert_memory_not_equal(s->pk, x->pk, 32);
	assert_memory_not_equal(s->sk, x->sk, 32); /* seed vs X25519 scalar */
	assert_memory_not_equal(s->pk, s2->pk, 32);

	assert_int_equal(crypto_sign_detached(sig, NULL, msg, sizeof(msg), s->sk), 0);
	assert_int_equal(crypto_sign_verify_detached(sig, msg, sizeof(msg), s->pk), 0);
	assert_int_equal(crypto_scalarmult_base(pk, x->sk), 0);
	assert_memory_equal(pk, x->pk, 32);
	ruf_keystore_free(ks);
	ruf_keystore_free(ks2);
}

static void
test_keystore_save_is_exclusive_private_and_loads(void **state)
{
	struct ruf_kdf kdf = ruf_kdf_interactive();
	char dir[] = "/tmp/ruf-test-ks-XXXXXX", path[256], big[256];
	ruf_keystore *ks = make_full(), *back = NULL;
	struct stat st;
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/keys", dir);
	snprintf(big, sizeof(big), "%s/big", dir);
	assert_int_equal(ruf_keystore_save(ks, path, PASS, PASSLEN, &kdf, true), 0);
	assert_int_equal(ruf_keystore_save(ks, path, NULL, 0, NULL, true), RUF_E_EXISTS);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(ruf_keystore_load(path, PASS, PASSLEN, &back), 0);
	assert_same_keys(ks, back);
	ruf_keystore_free(back);
	/* Not exclusive: replaced, now unprotected. */
	assert_int_equal(ruf_keystore_save(ks, path, NULL, 0, NULL, false), 0);
	assert_int_equal(ruf_keystore_load(path, NULL, 0, &back), 0);
	assert_same_keys(ks, back);
	ruf_keystore_free(back);

	/* A file past the bound is refused before it is read. */
	assert_true((fd = open(big, O_WRONLY | O_CREAT | O_EXCL, 0600)) >= 0);
	assert_int_equal(ftruncate(fd, RUF_KEYSTORE_FILE_MAX + 1), 0);
	close(fd);
	assert_int_equal(ruf_keystore_load(big, NULL, 0, &back), RUF_E_TOO_LARGE);
	assert_null(back);
	unlink(big);
	unlink(path);
	rmdir(dir);
	ruf_keystore_free(ks);
}

static void
test_kdf_parse_rejects_unknown_names(void **state)
{
	struct ruf_kdf k, m = ruf_kdf_moderate();

	(void)state;
	assert_int_equal(ruf_kdf_parse("moderate", &k), 0);
	assert_int_equal(k.opslimit, m.opslimit);
	assert_int_equal(k.memlimit, m.memlimit);
	assert_int_equal(ruf_kdf_parse("interactive", &k), 0);
	assert_int_equal(k.memlimit, ruf_kdf_interactive().memlimit);
	assert_int_equal(ruf_kdf_parse("sensitive", &k), 0);
	assert_int_equal(k.opslimit, ruf_kdf_sensitive().opslimit);
	assert_int_equal(ruf_kdf_parse("Moderate", &k), RUF_E_INVAL);
	assert_int_equal(ruf_kdf_parse("", &k), RUF_E_INVAL);
	assert_int_equal(ruf_kdf_parse(NULL, &k), RUF_E_INVAL);
	assert_true(ruf_kdf_interactive().memlimit < m.memlimit);
	assert_true(m.memlimit < ruf_kdf_sensitive().memlimit);
}

static void
write_file(const char *path, const void *data, size_t len)
{
	unlink(path);
	assert_int_equal(ruf_file_write_atomic(path, data, len, 0600, false), 0);
}

static void
assert_pass_from_file(const char *path, const char *content, size_t clen, const char *want)
{
	char *p = NULL;
	size_t n = 0;

	write_file(path, content, clen);
	assert_int_equal(ruf_passphrase_get(NULL, path, NULL, false, &p, &n), 0);
	assert_int_equal(n, strlen(want));
	assert_string_equal(p, want);
	ruf_passphrase_free(p, n);
}

static void
test_passphrase_from_file_first_line_only(void **state)
{
	char dir[] = "/tmp/ruf-test-pass-XXXXXX", path[256];
	char *p = NULL, *big;
	size_t n = 0;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/pass", dir);
	assert_pass_from_file(path, "secret\n", 7, "secret");
	assert_pass_from_file(path, "secret\r\n", 8, "secret");
	assert_pass_from_file(path, "secret", 6, "secret");
	assert_pass_from_file(path, "two words\nsecond line\n", 22, "two words");
	assert_pass_from_file(path, " padded \n", 9, " padded ");

	/* The file wins over the environment and is never skipped. */
	setenv("RUF_TEST_PASS", "from-env", 1);
	assert_pass_from_file(path, "from-file\n", 10, "from-file");
	write_file(path, "\n", 1);
	assert_int_equal(ruf_passphrase_get(NULL, path, "RUF_TEST_PASS", false, &p, &n),
	                 RUF_E_NO_PASSPHRASE);
	write_file(path, "", 0);
	assert_int_equal(ruf_passphrase_get(NULL, path, "RUF_TEST_PASS", false, &p, &n),
	                 RUF_E_NO_PASSPHRASE);
	write_file(path, "a\0b\n", 4);
	assert_int_equal(ruf_passphrase_get(NULL, path, NULL, false, &p, &n), RUF_E_FORMAT);
	unsetenv("RUF_TEST_PASS");

	/* Exactly the maximum is fine; one more byte is not. */
	assert_non_null(big = malloc(RUF_PASSPHRASE_MAX + 3));
	memset(big, 'x', RUF_PASSPHRASE_MAX + 2);
	big[RUF_PASSPHRASE_MAX] = '\n';
	write_file(path, big, RUF_PASSPHRASE_MAX + 1);
	assert_int_equal(ruf_passphrase_get(NULL, path, NULL, false, &p, &n), 0);
	assert_int_equal(n, RUF_PASSPHRASE_MAX);
	ruf_passphrase_free(p, n);
	big[RUF_PASSPHRASE_MAX] = 'x';
	write_file(path, big, RUF_PASSPHRASE_MAX + 2);
	assert_int_equal(ruf_passphrase_get(NULL, path, NULL, false, &p, &n), RUF_E_TOO_LARGE);
	free(big);

	unlink(path);
	assert_int_not_equal(ruf_passphrase_get(NULL, path, NULL, false, &p, &n), 0);
	assert_null(p);
	rmdir(dir);
}

static bool
have_tty(void)
{
	int fd = open("/dev/tty", O_RDWR | O_NOCTTY);

	if (fd == -1)
		return false;
	close(fd);
	return true;
}

static void
test_passphrase_from_env_and_none_without_tty(void **state)
{
	char *p = NULL, *big;
	size_t n = 0;

	(void)state;
	setenv("RUF_TEST_PASS", "hunter2 with spaces", 1);
	assert_int_equal(ruf_passphrase_get("x: ", NULL, "RUF_TEST_PASS", true, &p, &n), 0);
	assert_int_equal(n, 19);
	assert_string_equal(p, "hunter2 with spaces");
	ruf_passphrase_free(p, n);

	assert_non_null(big = malloc(RUF_PASSPHRASE_MAX + 2));
	memset(big, 'y', RUF_PASSPHRASE_MAX + 1);
	big[RUF_PASSPHRASE_MAX + 1] = '\0';
	setenv("RUF_TEST_PASS", big, 1);
	p = NULL;
	assert_int_equal(ruf_passphrase_get(NULL, NULL, "RUF_TEST_PASS", false, &p, &n),
	                 RUF_E_TOO_LARGE);
	assert_null(p);
	free(big);
	unsetenv("RUF_TEST_PASS");

	/* With no terminal there is nothing left to ask (with one, it would prompt). */
	if (have_tty())
		skip();
	assert_int_equal(ruf_passphrase_get(NULL, NULL, "RUF_TEST_PASS", false, &p, &n),
	                 RUF_E_NO_PASSPHRASE);
	setenv("RUF_TEST_PASS", "", 1);
	assert_int_equal(ruf_passphrase_get(NULL, NULL, "RUF_TEST_PASS", false, &p, &n),
	                 RUF_E_NO_PASSPHRASE);
	unsetenv("RUF_TEST_PASS");
	assert_int_equal(ruf_passphrase_get(NULL, NULL, NULL, false, &p, &n), RUF_E_NO_PASSPHRASE);
	assert_null(p);
}

/* Output seen on a pty master so far, NUL-terminated. */
struct pty_out {
	char buf[4096];
	size_t len;
};

/*
 * Reads from the pty master until want has appeared. The generous timeout
 * only keeps a broken implementation from hanging the test run.
 */
static void
pty_expect(int master, struct pty_out *o, const char *want)
{
	while (strstr(o->buf, want) == NULL) {
		struct pollfd pfd = {.fd = master, .events = POLLIN};
		ssize_t r;

		assert_int_equal(poll(&pfd, 1, 30000), 1);
		r = read(master, o->buf + o->len, sizeof(o->buf) - 1 - o->len);
		assert_true(r > 0);
		o->len += (size_t)r;
		o->buf[o->len] = '\0';
	}
}

/* Drains the master until the child has closed the terminal. */
static void
pty_drain(int master, struct pty_out *o)
{
	for (;;) {
		ssize_t r = read(master, o->buf + o->len, sizeof(o->buf) - 1 - o->len);
		if (r <= 0)
			break;
		o->len += (size_t)r;
		o->buf[o->len] = '\0';
	}
}

struct tty_result {
	int rc;
	int echo_after; /* ECHO was set again when ruf_passphrase_get returned */
	size_t len;
	char pass[64];
};

/*
 * Runs ruf_passphrase_get() in a child whose controlling terminal is a new
 * pty, types lines[] at its prompts, and returns what it got.
 */
static void
run_on_tty(const char *const *lines, size_t nlines, bool confirm, struct tty_result *res,
           struct pty_out *o)
{
	struct termios t;
	int master, p[2], status;
	pid_t pid;
	const char *prompts[] = {"Pass: ", "Again: "};

	memset(res, 0, sizeof(*res));
	memset(o, 0, sizeof(*o));
	assert_int_equal(pipe(p), 0);
	pid = forkpty(&master, NULL, NULL, NULL);
	assert_true(pid >= 0);
	if (pid == 0) {
		struct tty_result r = {0};
		char *pw = NULL;
		size_t n = 0;

		close(p[0]);
		r.rc = ruf_passphrase_get("Pass: ", NULL, NULL, confirm, &pw, &n);
		r.echo_after = tcgetattr(0, &t) == 0 && (t.c_lflag & ECHO) != 0;
		if (r.rc == 0 && n < sizeof(r.pass)) {
			memcpy(r.pass, pw, n);
			r.len = n;
		}
		ruf_passphrase_free(pw, n);
		_exit(write(p[1], &r, sizeof(r)) == (ssize_t)sizeof(r) ? 0 : 1);
	}
	close(p[1]);
	for (size_t i = 0; i < nlines; i++) {
		pty_expect(master, o, prompts[i]);
		/* Echo is off before the prompt is written, so typing is safe now. */
		assert_int_equal(tcgetattr(master, &t), 0);
		assert_int_equal(t.c_lflag & ECHO, 0);
		assert_int_equal(write(master, lines[i], strlen(lines[i])),
		                 (ssize_t)strlen(lines[i]));
	}
	assert_int_equal(read(p[0], res, sizeof(*res)), (ssize_t)sizeof(*res));
	pty_drain(master, o);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(p[0]);
	close(master);
}

static void
test_passphrase_from_tty_hides_input_and_confirms(void **state)
{
	static const char *const same[] = {"tty secret\n", "tty secret\n"};
	static const char *const differ[] = {"tty secret\n", "tty secreT\n"};
	static const char *const crlf[] = {"abc\r\n"};
	static const char *const empty[] = {"\n"};
	struct tty_result r;
	struct pty_out o;

	(void)state;
	run_on_tty(same, 2, true, &r, &o);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.len, 10);
	assert_memory_equal(r.pass, "tty secret", 10);
	assert_true(r.echo_after);
	assert_null(strstr(o.buf, "secret")); /* never echoed */

	run_on_tty(differ, 2, true, &r, &o);
	assert_int_equal(r.rc, RUF_E_PASSPHRASE_MISMATCH);
	assert_true(r.echo_after);

	run_on_tty(crlf, 1, false, &r, &o);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.len, 3);
	assert_memory_equal(r.pass, "abc", 3);

	run_on_tty(empty, 1, false, &r, &o);
	assert_int_equal(r.rc, RUF_E_NO_PASSPHRASE);
	assert_true(r.echo_after);
}

/* A terminating signal at the prompt still leaves echo on. */
static void
test_passphrase_tty_restores_echo_on_signal(void **state)
{
	struct termios t;
	struct pty_out o = {0};
	int master, status;
	pid_t pid;

	(void)state;
	pid = forkpty(&master, NULL, NULL, NULL);
	assert_true(pid >= 0);
	if (pid == 0) {
		char *pw = NULL;
		size_t n = 0;

		signal(SIGTERM, SIG_DFL);
		(void)ruf_passphrase_get("Pass: ", NULL, NULL, false, &pw, &n);
		_exit(3); /* not reached: the signal is raised again */
	}
	pty_expect(master, &o, "Pass: ");
	assert_int_equal(tcgetattr(master, &t), 0);
	assert_int_equal(t.c_lflag & ECHO, 0);
	assert_int_equal(kill(pid, SIGTERM), 0);
	/* A lost signal would leave the child blocked: do not hang the run. */
	for (int i = 0; waitpid(pid, &status, WNOHANG) == 0; i++) {
		if (i == 3000) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			fail_msg("the child survived SIGTERM at the prompt");
		}
		usleep(10000);
	}
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
	assert_int_equal(tcgetattr(master, &t), 0);
	assert_int_not_equal(t.c_lflag & ECHO, 0);
	close(master);
}

/*
 * Seed corpus for fuzz_keystore: mostly unprotected samples (each protected
 * one costs an Argon2id run per execution), written only on request.
 */
static void
write_sample(const char *dir, const char *name, const ruf_keystore *ks, const char *pass)
{
	struct ruf_kdf kdf = ruf_kdf_interactive();
	char path[512];
	uint8_t *buf;
	size_t len;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(ruf_keystore_encode(ks, pass, pass ? strlen(pass) : 0, &kdf, &buf, &len),
	                 0);
	write_file(path, buf, len);
	free(buf);
}

/* The bare body of ks, for the body half of fuzz_keystore. */
static void
write_body_sample(const char *dir, const char *name, const ruf_keystore *ks)
{
	static const char ctx[] = "ruf-keystore-unprotected-v1";
	char path[512];
	uint8_t key[32], *buf, *plain;
	size_t len;

	snprintf(path, sizeof(path), "%s/body-%s", dir, name);
	assert_int_equal(ruf_keystore_encode(ks, NULL, 0, NULL, &buf, &len), 0);
	assert_non_null(plain = malloc(len));
	crypto_generichash(key, 32, (const uint8_t *)ctx, sizeof(ctx) - 1, NULL, 0);
	assert_int_equal(crypto_aead_xchacha20poly1305_ietf_decrypt(
	                     plain, NULL, NULL, buf + HDR, len - HDR, buf, HDR, buf + 44, key),
	                 0);
	write_file(path, plain, len - HDR - TAG);
	free(plain);
	free(buf);
}

static void
test_keystore_writes_fuzz_corpus(void **state)
{
	const char *dir = getenv("RUF_WRITE_CORPUS");
	ruf_keystore *ks;

	(void)state;
	if (dir == NULL || *dir == '\0')
		skip();
	assert_int_equal(ruf_mkdirs(dir, 0755), 0);
	assert_int_equal(ruf_keystore_new(&ks), 0);
	write_sample(dir, "empty", ks, NULL);
	assert_int_equal(ruf_keystore_generate(ks, RUF_KEY_SIGN, "sign", 0, NULL), 0);
	write_sample(dir, "sign", ks, NULL);
	assert_int_equal(ruf_keystore_generate(ks, RUF_KEY_KX, "kx", 0, NULL), 0);
	write_sample(dir, "identity", ks, NULL);
	write_body_sample(dir, "identity", ks);
	ruf_keystore_free(ks);
	ks = make_full();
	write_sample(dir, "full", ks, NULL);
	write_body_sample(dir, "full", ks);
	ruf_keystore_free(ks);
	assert_int_equal(ruf_keystore_new(&ks), 0);
	assert_int_equal(ruf_keystore_generate(ks, RUF_KEY_QUEUE, "inbox.rc-sd-1", 1, NULL), 0);
	write_sample(dir, "queue", ks, NULL);
	/* fuzz_keystore.c decodes with this passphrase. */
	write_sample(dir, "protected", ks, "fuzz");
	ruf_keystore_free(ks);
}

/*
 * Known-answer vectors (tests/vectors/keystore/): two files written once by
 * test_keystore_writes_vectors, with the keys they must hold listed in
 * expected.txt as "type name epoch public-key-hex". They pin the format: a
 * later change that cannot read them breaks existing keystores.
 */
#define VECTOR_PASS "ruf test vector"

static void
check_vector(const char *file, const char *pass)
{
	char path[512], line[256], name[80], hex[80];
	ruf_keystore *ks = NULL;
	FILE *f;
	size_t n = 0;
	unsigned type, epoch;

	snprintf(path, sizeof(path), "%s/tests/vectors/keystore/%s", RUF_SOURCE_DIR, file);
	assert_int_equal(ruf_keystore_load(path, pass, pass ? strlen(pass) : 0, &ks), 0);
	snprintf(path, sizeof(path), "%s/tests/vectors/keystore/expected.txt", RUF_SOURCE_DIR);
	assert_non_null(f = fopen(path, "r"));
	while (fgets(line, sizeof(line), f) != NULL) {
		const struct ruf_key *k;
		uint8_t pk[32];

		if (line[0] == '#' || line[0] == '\n')
			continue;
		assert_int_equal(sscanf(line, "%u %79s %u %79s", &type, name, &epoch, hex), 4);
		assert_int_equal(ruf_unhex(hex, pk, 32), 0);
		k = ruf_keystore_get(ks, n++);
		assert_non_null(k);
		assert_int_equal(k->type, type);
		assert_string_equal(k->name, name);
		assert_int_equal(k->epoch, epoch);
		assert_memory_equal(k->pk, pk, 32);
	}
	fclose(f);
	assert_int_equal(ruf_keystore_count(ks), n);
	assert_true(n > 0);
	ruf_keystore_free(ks);
}

static void
test_keystore_reads_known_answer_vectors(void **state)
{
	ruf_keystore *ks = NULL;
	char path[512];

	(void)state;
	check_vector("unprotected-v1.bin", NULL);
	check_vector("protected-v1.bin", VECTOR_PASS);
	snprintf(path, sizeof(path), "%s/tests/vectors/keystore/protected-v1.bin", RUF_SOURCE_DIR);
	assert_int_equal(ruf_keystore_load(path, "ruf test vectoR", 15, &ks), RUF_E_PASSPHRASE);
	assert_null(ks);
}

static void
test_keystore_writes_vectors(void **state)
{
	const char *dir = getenv("RUF_WRITE_VECTORS");
	struct ruf_kdf kdf = ruf_kdf_interactive();
	char path[512], hex[65];
	ruf_keystore *ks;
	FILE *f;

	(void)state;
	if (dir == NULL || *dir == '\0')
		skip();
	assert_int_equal(ruf_mkdirs(dir, 0755), 0);
	ks = make_full();
	snprintf(path, sizeof(path), "%s/unprotected-v1.bin", dir);
	unlink(path);
	assert_int_equal(ruf_keystore_save(ks, path, NULL, 0, NULL, true), 0);
	snprintf(path, sizeof(path), "%s/protected-v1.bin", dir);
	unlink(path);
	assert_int_equal(ruf_keystore_save(ks, path, VECTOR_PASS, strlen(VECTOR_PASS), &kdf, true),
	                 0);
	snprintf(path, sizeof(path), "%s/expected.txt", dir);
	assert_non_null(f = fopen(path, "w"));
	fprintf(f,
	        "# Keys held by unprotected-v1.bin and protected-v1.bin (passphrase\n"
	        "# \"%s\", interactive limits), in file order:\n"
	        "# type name epoch public-key-hex\n",
	        VECTOR_PASS);
	for (size_t i = 0; i < ruf_keystore_count(ks); i++) {
		const struct ruf_key *k = ruf_keystore_get(ks, i);
		ruf_hex(k->pk, 32, hex);
		fprintf(f, "%d %s %u %s\n", (int)k->type, k->name, k->epoch, hex);
	}
	assert_int_equal(fclose(f), 0);
	ruf_keystore_free(ks);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_keystore_round_trips_every_key_type),
	    cmocka_unit_test(test_keystore_header_layout_is_as_documented),
	    cmocka_unit_test(test_keystore_rejects_wrong_or_missing_passphrase),
	    cmocka_unit_test(test_keystore_encode_rejects_empty_passphrase_and_bad_limits),
	    cmocka_unit_test(test_keystore_rejects_any_flipped_byte_unprotected),
	    cmocka_unit_test(test_keystore_rejects_any_flipped_byte_protected),
	    cmocka_unit_test(test_keystore_rejects_truncation_and_trailing_byte),
	    cmocka_unit_test(test_keystore_rejects_huge_kdf_limits_before_deriving),
	    cmocka_unit_test(test_keystore_rejects_foreign_header),
	    cmocka_unit_test(test_keystore_rejects_duplicate_key),
	    cmocka_unit_test(test_keystore_rejects_mismatched_public_key),
	    cmocka_unit_test(test_keystore_rejects_bad_type_name_or_epoch),
	    cmocka_unit_test(test_keystore_rejects_garbage_body),
	    cmocka_unit_test(test_keystore_add_copies_and_rejects_bad_keys),
	    cmocka_unit_test(test_keystore_rejects_more_than_max_keys),
	    cmocka_unit_test(test_keystore_find_epoch_zero_returns_highest),
	    cmocka_unit_test(test_keystore_sign_and_kx_keys_are_independent),
	    cmocka_unit_test(test_keystore_save_is_exclusive_private_and_loads),
	    cmocka_unit_test(test_kdf_parse_rejects_unknown_names),
	    cmocka_unit_test(test_passphrase_from_file_first_line_only),
	    cmocka_unit_test(test_passphrase_from_env_and_none_without_tty),
	    cmocka_unit_test(test_passphrase_from_tty_hides_input_and_confirms),
	    cmocka_unit_test(test_passphrase_tty_restores_echo_on_signal),
	    cmocka_unit_test(test_keystore_reads_known_answer_vectors),
	    cmocka_unit_test(test_keystore_writes_fuzz_corpus),
	    cmocka_unit_test(test_keystore_writes_vectors),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
