/*
 * keystore.c - private keys at rest and in memory.
 *
 * File format (docs/PROTOCOL.md): a fixed 68-byte clear header
 * (magic, version, flags, Argon2id limits, salt, nonce) followed by an
 * XChaCha20-Poly1305-IETF ciphertext of a KeystoreBody protobuf, with the
 * whole header as associated data, so no header field can be changed without
 * the file failing to open.
 *
 * Secret key bytes only ever live in sodium_malloc'ed memory or on the stack:
 * the body is packed into and decrypted into sodium_malloc'ed buffers, and
 * the decoded protobuf (which protobuf-c places in plain malloc) has its
 * secret fields wiped before it is freed.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "err.h"
#include "keystore.h"
#include "keystore.pb-c.h"
#include "pb.h"
#include "util.h"

#define KS_MAGIC "RUFKEYS\n"
#define KS_MAGIC_LEN 8
#define KS_VERSION 1
#define KS_FLAG_PROTECTED 0x0001u
#define KS_SALT_BYTES 16
#define KS_NONCE_BYTES 24
#define KS_KEY_BYTES 32
/* magic, version, flags, opslimit, memlimit, salt, nonce */
#define KS_HEADER_BYTES (KS_MAGIC_LEN + 2 + 2 + 8 + 8 + KS_SALT_BYTES + KS_NONCE_BYTES)
#define KS_TAG_BYTES crypto_aead_xchacha20poly1305_ietf_ABYTES
#define KS_UNPROTECTED_CONTEXT "ruf-keystore-unprotected-v1"

_Static_assert(KS_HEADER_BYTES == 68, "keystore header is 68 bytes");
_Static_assert(KS_SALT_BYTES == crypto_pwhash_argon2id_SALTBYTES, "salt size");
_Static_assert(KS_NONCE_BYTES == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, "nonce size");
_Static_assert(KS_KEY_BYTES == crypto_aead_xchacha20poly1305_ietf_KEYBYTES, "key size");
_Static_assert(RUF_SIGN_SK_BYTES == crypto_sign_ed25519_SECRETKEYBYTES, "sign sk size");
_Static_assert(RUF_SIGN_PK_BYTES == crypto_sign_ed25519_PUBLICKEYBYTES, "sign pk size");
_Static_assert(RUF_KX_SK_BYTES == crypto_box_SECRETKEYBYTES, "kx sk size");
_Static_assert(RUF_KX_PK_BYTES == crypto_box_PUBLICKEYBYTES, "kx pk size");
_Static_assert(RUF_KEY_NAME_MAX <= RUF_QUEUE_NAME_MAX, "queue names fit key names");

/*
 * Keys are held through pointers so that a pointer returned by find or get
 * stays valid when the array grows.
 */
struct ruf_keystore {
	struct ruf_key **keys;
	size_t n;
	size_t cap;
};

/* The decoded clear header. */
struct ks_header {
	uint16_t version;
	uint16_t flags;
	uint64_t opslimit;
	uint64_t memlimit;
	uint8_t salt[KS_SALT_BYTES];
	uint8_t nonce[KS_NONCE_BYTES];
};

struct ruf_kdf
ruf_kdf_interactive(void)
{
	return (struct ruf_kdf){crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE,
	                        crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE};
}

struct ruf_kdf
ruf_kdf_moderate(void)
{
	return (struct ruf_kdf){crypto_pwhash_argon2id_OPSLIMIT_MODERATE,
	                        crypto_pwhash_argon2id_MEMLIMIT_MODERATE};
}

struct ruf_kdf
ruf_kdf_sensitive(void)
{
	return (struct ruf_kdf){crypto_pwhash_argon2id_OPSLIMIT_SENSITIVE,
	                        crypto_pwhash_argon2id_MEMLIMIT_SENSITIVE};
}

int
ruf_kdf_parse(const char *name, struct ruf_kdf *out)
{
	if (name == NULL)
		return RUF_E_INVAL;
	if (strcmp(name, "interactive") == 0)
		*out = ruf_kdf_interactive();
	else if (strcmp(name, "moderate") == 0)
		*out = ruf_kdf_moderate();
	else if (strcmp(name, "sensitive") == 0)
		*out = ruf_kdf_sensitive();
	else
		return RUF_E_INVAL;
	return 0;
}

/*
 * Below interactive a stolen file is too cheap to attack; above sensitive a
 * damaged or hostile header could make us allocate or spin without bound.
 */
static bool
kdf_in_bounds(uint64_t opslimit, uint64_t memlimit)
{
	return opslimit >= crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE &&
	       opslimit <= crypto_pwhash_argon2id_OPSLIMIT_SENSITIVE &&
	       memlimit >= crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE &&
	       memlimit <= crypto_pwhash_argon2id_MEMLIMIT_SENSITIVE;
}

static size_t
type_sk_bytes(uint32_t type)
{
	switch (type) {
	case RUF_KEY_SIGN:
		return RUF_SIGN_SK_BYTES;
	case RUF_KEY_KX:
	case RUF_KEY_QUEUE:
		return RUF_KX_SK_BYTES;
	default:
		return 0;
	}
}

/* Type, name and epoch rules (keystore.h, ruf_keystore_generate). */
static bool
meta_valid(uint32_t type, const char *name, size_t namelen, uint32_t epoch)
{
	if (type_sk_bytes(type) == 0)
		return false;
	if (name == NULL || namelen == 0 || namelen > RUF_KEY_NAME_MAX ||
	    !ruf_utf8_valid(name, namelen))
		return false;
	if (type == RUF_KEY_QUEUE)
		return epoch >= 1 && ruf_is_queue_name(name);
	return epoch == 0;
}

/*
 * True if pk is the public half of sk. For Ed25519 the whole secret key
 * (seed || pk) is rebuilt from its seed, so a secret key whose two halves
 * disagree is refused too, not only a stored pk that differs from sk's copy.
 */
static bool
pair_valid(uint32_t type, const uint8_t *pk, const uint8_t *sk)
{
	uint8_t seed[crypto_sign_ed25519_SEEDBYTES];
	uint8_t sk2[RUF_SIGN_SK_BYTES];
	uint8_t pk2[32];
	bool ok = false;

	switch (type) {
	case RUF_KEY_SIGN:
		crypto_sign_ed25519_sk_to_seed(seed, sk);
		if (crypto_sign_ed25519_seed_keypair(pk2, sk2, seed) != 0)
			goto out;
		ok = sodium_memcmp(pk2, pk, RUF_SIGN_PK_BYTES) == 0 &&
		     sodium_memcmp(sk2, sk, RUF_SIGN_SK_BYTES) == 0;
		break;
	case RUF_KEY_KX:
	case RUF_KEY_QUEUE:
		if (crypto_scalarmult_base(pk2, sk) != 0)
			goto out;
		ok = sodium_memcmp(pk2, pk, RUF_KX_PK_BYTES) == 0;
		break;
	default:
		break;
	}
out:
	sodium_memzero(seed, sizeof(seed));
	sodium_memzero(sk2, sizeof(sk2));
	return ok;
}

static void
key_free(struct ruf_key *k)
{
	if (k == NULL)
		return;
	/* sodium_free() zeroes the region before unmapping it. */
	sodium_free(k->sk);
	free(k);
}

/* A new key holding a sodium_malloc'ed copy of sk; the caller validated it. */
static int
key_new(uint32_t type, const char *name, uint32_t epoch, const uint8_t *pk, const uint8_t *sk,
        size_t sklen, struct ruf_key **out)
{
	struct ruf_key *k;
	size_t namelen = strlen(name);

	if ((k = calloc(1, sizeof(*k))) == NULL)
		return RUF_E_NOMEM;
	if ((k->sk = sodium_malloc(sklen)) == NULL) {
		free(k);
		return RUF_E_NOMEM;
	}
	k->type = (enum ruf_key_type)type;
	memcpy(k->name, name, namelen + 1);
	k->epoch = epoch;
	memcpy(k->pk, pk, 32);
	memcpy(k->sk, sk, sklen);
	k->sklen = sklen;
	*out = k;
	return 0;
}

static struct ruf_key *
find_exact(const ruf_keystore *ks, uint32_t type, const char *name, uint32_t epoch)
{
	for (size_t i = 0; i < ks->n; i++) {
		struct ruf_key *k = ks->keys[i];
		if ((uint32_t)k->type == type && k->epoch == epoch && strcmp(k->name, name) == 0)
			return k;
	}
	return NULL;
}

/* Takes ownership of k on success only. */
static int
ks_push(ruf_keystore *ks, struct ruf_key *k)
{
	if (ks->n >= RUF_KEYSTORE_KEYS_MAX)
		return RUF_E_TOO_LARGE;
	if (ks->n == ks->cap) {
		size_t cap = ks->cap ? ks->cap * 2 : 8;
		struct ruf_key **nk;

		if (cap > RUF_KEYSTORE_KEYS_MAX)
			cap = RUF_KEYSTORE_KEYS_MAX;
		if ((nk = realloc(ks->keys, cap * sizeof(*nk))) == NULL)
			return RUF_E_NOMEM;
		ks->keys = nk;
		ks->cap = cap;
	}
	ks->keys[ks->n++] = k;
	return 0;
}

int
ruf_keystore_new(ruf_keystore **out)
{
	*out = NULL;
	if (sodium_init() < 0)
		return RUF_E_CRYPTO;
	if ((*out = calloc(1, sizeof(**out))) == NULL)
		return RUF_E_NOMEM;
	return 0;
}

void
ruf_keystore_free(ruf_keystore *ks)
{
	if (ks == NULL)
		return;
	for (size_t i = 0; i < ks->n; i++)
		key_free(ks->keys[i]);
	free(ks->keys);
	free(ks);
}

int
ruf_keystore_generate(ruf_keystore *ks, enum ruf_key_type type, const char *name, uint32_t epoch,
                      uint8_t *pk)
{
	uint8_t pub[32];
	uint8_t *sk = NULL;
	struct ruf_key *k = NULL;
	size_t sklen;
	int rc;

	if (ks == NULL || name == NULL || !meta_valid(type, name, strlen(name), epoch))
		return RUF_E_INVAL;
	if (find_exact(ks, type, name, epoch) != NULL)
		return RUF_E_EXISTS;
	sklen = type_sk_bytes(type);
	if ((sk = sodium_malloc(sklen)) == NULL)
		return RUF_E_NOMEM;
	/* Independent key pairs per purpose: never derived from one another. */
	if (type == RUF_KEY_SIGN)
		rc = crypto_sign_ed25519_keypair(pub, sk);
	else
		rc = crypto_box_keypair(pub, sk);
	if (rc != 0) {
		rc = RUF_E_CRYPTO;
		goto out;
	}
	if ((rc = key_new(type, name, epoch, pub, sk, sklen, &k)) != 0)
		goto out;
	if ((rc = ks_push(ks, k)) != 0) {
		key_free(k);
		goto out;
	}
	if (pk != NULL)
		memcpy(pk, pub, 32);
out:
	sodium_free(sk);
	return rc;
}

int
ruf_keystore_add(ruf_keystore *ks, const struct ruf_key *key)
{
	struct ruf_key *k;
	size_t namelen;
	int rc;

	if (ks == NULL || key == NULL || key->sk == NULL)
		return RUF_E_INVAL;
	namelen = strnlen(key->name, sizeof(key->name));
	if (namelen == sizeof(key->name) || !meta_valid(key->type, key->name, namelen, key->epoch))
		return RUF_E_INVAL;
	if (key->sklen != type_sk_bytes(key->type) || !pair_valid(key->type, key->pk, key->sk))
		return RUF_E_INVAL;
	if (find_exact(ks, key->type, key->name, key->epoch) != NULL)
		return RUF_E_EXISTS;
	if ((rc = key_new(key->type, key->name, key->epoch, key->pk, key->sk, key->sklen, &k)) != 0)
		return rc;
	if ((rc = ks_push(ks, k)) != 0)
		key_free(k);
	return rc;
}

const struct ruf_key *
ruf_keystore_find(const ruf_keystore *ks, enum ruf_key_type type, const char *name, uint32_t epoch)
{
	const struct ruf_key *best = NULL;

	if (ks == NULL || name == NULL)
		return NULL;
	if (epoch != 0)
		return find_exact(ks, type, name, epoch);
	for (size_t i = 0; i < ks->n; i++) {
		const struct ruf_key *k = ks->keys[i];
		if (k->type == type && strcmp(k->name, name) == 0 &&
		    (best == NULL || k->epoch > best->epoch))
			best = k;
	}
	return best;
}

size_t
ruf_keystore_count(const ruf_keystore *ks)
{
	return ks == NULL ? 0 : ks->n;
}

const struct ruf_key *
ruf_keystore_get(const ruf_keystore *ks, size_t i)
{
	if (ks == NULL || i >= ks->n)
		return NULL;
	return ks->keys[i];
}

static void
put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void
put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint16_t
get_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint64_t
get_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static void
header_write(uint8_t out[KS_HEADER_BYTES], const struct ks_header *h)
{
	uint8_t *p = out;

	memcpy(p, KS_MAGIC, KS_MAGIC_LEN);
	p += KS_MAGIC_LEN;
	put_be16(p, h->version);
	p += 2;
	put_be16(p, h->flags);
	p += 2;
	put_be64(p, h->opslimit);
	p += 8;
	put_be64(p, h->memlimit);
	p += 8;
	memcpy(p, h->salt, KS_SALT_BYTES);
	p += KS_SALT_BYTES;
	memcpy(p, h->nonce, KS_NONCE_BYTES);
}

/* The caller checked len >= KS_HEADER_BYTES. */
static void
header_read(const uint8_t *in, struct ks_header *h)
{
	const uint8_t *p = in + KS_MAGIC_LEN;

	h->version = get_be16(p);
	p += 2;
	h->flags = get_be16(p);
	p += 2;
	h->opslimit = get_be64(p);
	p += 8;
	h->memlimit = get_be64(p);
	p += 8;
	memcpy(h->salt, p, KS_SALT_BYTES);
	p += KS_SALT_BYTES;
	memcpy(h->nonce, p, KS_NONCE_BYTES);
}

/*
 * The AEAD key: Argon2id of the passphrase for a protected keystore; for an
 * unprotected one a public constant, which only detects damage.
 * The caller validated the limits.
 */
static int
derive_key(const struct ks_header *h, const char *pass, size_t passlen, uint8_t key[KS_KEY_BYTES])
{
	if (!(h->flags & KS_FLAG_PROTECTED)) {
		crypto_generichash(key, KS_KEY_BYTES, (const uint8_t *)KS_UNPROTECTED_CONTEXT,
		                   strlen(KS_UNPROTECTED_CONTEXT), NULL, 0);
		return 0;
	}
	/* With limits in bounds, crypto_pwhash only fails when out of memory. */
	if (crypto_pwhash(key, KS_KEY_BYTES, pass, passlen, h->salt, h->opslimit,
	                  (size_t)h->memlimit, crypto_pwhash_ALG_ARGON2ID13) != 0)
		return RUF_E_NOMEM;
	return 0;
}

int
ruf_keystore_encode(const ruf_keystore *ks, const char *pass, size_t passlen,
                    const struct ruf_kdf *kdf, uint8_t **out, size_t *outlen)
{
	struct ruf_kdf lim = kdf != NULL ? *kdf : ruf_kdf_moderate();
	Ruf__KeystoreBody body = RUF__KEYSTORE_BODY__INIT;
	Ruf__StoredKey *sks = NULL, **skp = NULL;
	struct ks_header h = {0};
	uint8_t key[KS_KEY_BYTES];
	uint8_t *plain = NULL, *buf = NULL;
	size_t plen, total;
	int rc;

	*out = NULL;
	*outlen = 0;
	if (ks == NULL || (pass == NULL && passlen != 0) || (pass != NULL && passlen == 0))
		return RUF_E_INVAL;
	if (sodium_init() < 0)
		return RUF_E_CRYPTO;
	h.version = KS_VERSION;
	if (pass != NULL) {
		if (!kdf_in_bounds(lim.opslimit, lim.memlimit))
			return RUF_E_KDF_LIMITS;
		h.flags = KS_FLAG_PROTECTED;
		h.opslimit = lim.opslimit;
		h.memlimit = lim.memlimit;
		randombytes_buf(h.salt, sizeof(h.salt));
	}
	randombytes_buf(h.nonce, sizeof(h.nonce));

	/*
	 * The message points at the keys' own memory, so the secrets are not
	 * copied; it is packed straight into sodium_malloc'ed memory rather than
	 * with ruf_pb_encode(), whose plain malloc buffer would hold them.
	 */
	if (ks->n > 0) {
		sks = calloc(ks->n, sizeof(*sks));
		skp = calloc(ks->n, sizeof(*skp));
		if (sks == NULL || skp == NULL) {
			rc = RUF_E_NOMEM;
			goto out;
		}
	}
	for (size_t i = 0; i < ks->n; i++) {
		const struct ruf_key *k = ks->keys[i];

		ruf__stored_key__init(&sks[i]);
		sks[i].type = (uint32_t)k->type;
		sks[i].name = (char *)k->name;
		sks[i].epoch = k->epoch;
		sks[i].public_key.data = (uint8_t *)k->pk;
		sks[i].public_key.len = 32;
		sks[i].secret_key.data = k->sk;
		sks[i].secret_key.len = k->sklen;
		skp[i] = &sks[i];
	}
	body.n_keys = ks->n;
	body.keys = skp;
	plen = protobuf_c_message_get_packed_size(&body.base);
	total = KS_HEADER_BYTES + plen + KS_TAG_BYTES;
	/* Never write a file that ruf_keystore_load() would refuse. */
	if (plen > RUF_KEYSTORE_FILE_MAX || total > RUF_KEYSTORE_FILE_MAX) {
		rc = RUF_E_TOO_LARGE;
		goto out;
	}
	/* +1: sodium_malloc(0) is not guaranteed to return a usable pointer. */
	if ((plain = sodium_malloc(plen + 1)) == NULL || (buf = malloc(total)) == NULL) {
		rc = RUF_E_NOMEM;
		goto out;
	}
	protobuf_c_message_pack(&body.base, plain);
	header_write(buf, &h);
	if ((rc = derive_key(&h, pass, passlen, key)) != 0)
		goto out;
	crypto_aead_xchacha20poly1305_ietf_encrypt(buf + KS_HEADER_BYTES, NULL, plain, plen, buf,
	                                           KS_HEADER_BYTES, NULL, h.nonce, key);
	*out = buf;
	*outlen = total;
	buf = NULL;
	rc = 0;
out:
	sodium_memzero(key, sizeof(key));
	if (plain != NULL)
		sodium_free(plain);
	free(buf);
	free(sks);
	free(skp);
	return rc;
}

/* Checks one decoded key and adds a copy to ks; RUF_E_KEYSTORE if invalid. */
static int
stored_key_add(ruf_keystore *ks, const Ruf__StoredKey *sk)
{
	struct ruf_key *k;
	const char *name = sk->name != NULL ? sk->name : "";
	size_t sklen = type_sk_bytes(sk->type);
	int rc;

	if (!meta_valid(sk->type, name, strlen(name), sk->epoch))
		return RUF_E_KEYSTORE;
	if (sk->public_key.len != 32 || sk->secret_key.len != sklen ||
	    !pair_valid(sk->type, sk->public_key.data, sk->secret_key.data))
		return RUF_E_KEYSTORE;
	if (find_exact(ks, sk->type, name, sk->epoch) != NULL)
		return RUF_E_KEYSTORE;
	if ((rc = key_new(sk->type, name, sk->epoch, sk->public_key.data, sk->secret_key.data,
	                  sklen, &k)) != 0)
		return rc;
	if ((rc = ks_push(ks, k)) != 0)
		key_free(k);
	return rc;
}

/* The body was decoded with the wiping allocator: every block is wiped on free. */
static void
body_free(Ruf__KeystoreBody *body)
{
	if (body != NULL)
		ruf_pb_free_secret(&body->base);
}

int
ruf_keystore_decode(const uint8_t *buf, size_t len, const char *pass, size_t passlen,
                    ruf_keystore **out)
{
	struct ks_header h;
	ProtobufCMessage *msg = NULL;
	Ruf__KeystoreBody *body = NULL;
	ruf_keystore *ks = NULL;
	uint8_t key[KS_KEY_BYTES] = {0};
	uint8_t *plain = NULL;
	size_t plen;
	bool prot;
	int rc;

	*out = NULL;
	if ((buf == NULL && len != 0) || (pass == NULL && passlen != 0))
		return RUF_E_INVAL;
	if (sodium_init() < 0)
		return RUF_E_CRYPTO;
	if (len > RUF_KEYSTORE_FILE_MAX)
		return RUF_E_TOO_LARGE;
	/* Magic and version first, so a future format reads as such. */
	if (len < KS_MAGIC_LEN + 2 || memcmp(buf, KS_MAGIC, KS_MAGIC_LEN) != 0)
		return RUF_E_KEYSTORE;
	if (get_be16(buf + KS_MAGIC_LEN) != KS_VERSION)
		return RUF_E_VERSION;
	if (len < KS_HEADER_BYTES + KS_TAG_BYTES)
		return RUF_E_KEYSTORE;
	header_read(buf, &h);
	if ((h.flags & ~KS_FLAG_PROTECTED) != 0)
		return RUF_E_KEYSTORE;
	prot = (h.flags & KS_FLAG_PROTECTED) != 0;
	if (prot) {
		/* Before any passphrase work: a hostile header must not set the cost. */
		if (!kdf_in_bounds(h.opslimit, h.memlimit))
			return RUF_E_KDF_LIMITS;
		if (pass == NULL || passlen == 0)
			return RUF_E_NO_PASSPHRASE;
	} else {
		static const uint8_t zero_salt[KS_SALT_BYTES];
		if (h.opslimit != 0 || h.memlimit != 0 ||
		    memcmp(h.salt, zero_salt, KS_SALT_BYTES) != 0)
			return RUF_E_KEYSTORE;
	}

	plen = len - KS_HEADER_BYTES - KS_TAG_BYTES;
	if ((plain = sodium_malloc(plen + 1)) == NULL)
		return RUF_E_NOMEM;
	if ((rc = derive_key(&h, pass, passlen, key)) != 0)
		goto out;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, NULL, NULL, buf + KS_HEADER_BYTES,
	                                               len - KS_HEADER_BYTES, buf, KS_HEADER_BYTES,
	                                               h.nonce, key) != 0) {
		rc = prot ? RUF_E_PASSPHRASE : RUF_E_KEYSTORE;
		goto out;
	}
	if ((rc = ruf_pb_decode_secret(&ruf__keystore_body__descriptor, plain, plen,
	                               RUF_KEYSTORE_FILE_MAX, &msg)) != 0) {
		rc = rc == RUF_E_NOMEM ? rc : RUF_E_KEYSTORE;
		goto out;
	}
	body = (Ruf__KeystoreBody *)msg;
	if (body->n_keys > RUF_KEYSTORE_KEYS_MAX) {
		rc = RUF_E_KEYSTORE;
		goto out;
	}
	if ((rc = ruf_keystore_new(&ks)) != 0)
		goto out;
	for (size_t i = 0; i < body->n_keys; i++) {
		if ((rc = stored_key_add(ks, body->keys[i])) != 0)
			goto out;
	}
	*out = ks;
	ks = NULL;
	rc = 0;
out:
	ruf_keystore_free(ks);
	body_free(body);
	sodium_memzero(key, sizeof(key));
	sodium_free(plain);
	return rc;
}

bool
ruf_keystore_is_protected(const uint8_t *buf, size_t len)
{
	if (buf == NULL || len < KS_HEADER_BYTES || memcmp(buf, KS_MAGIC, KS_MAGIC_LEN) != 0 ||
	    get_be16(buf + KS_MAGIC_LEN) != KS_VERSION)
		return false;
	return (get_be16(buf + KS_MAGIC_LEN + 2) & KS_FLAG_PROTECTED) != 0;
}

int
ruf_keystore_save(const ruf_keystore *ks, const char *path, const char *pass, size_t passlen,
                  const struct ruf_kdf *kdf, bool exclusive)
{
	uint8_t *buf;
	size_t len;
	int rc;

	if (path == NULL)
		return RUF_E_INVAL;
	if ((rc = ruf_keystore_encode(ks, pass, passlen, kdf, &buf, &len)) != 0)
		return rc;
	rc = ruf_file_write_atomic(path, buf, len, 0600, exclusive);
	/* Unprotected, the encoding is as good as the keys themselves. */
	sodium_memzero(buf, len);
	free(buf);
	return rc;
}

int
ruf_keystore_load(const char *path, const char *pass, size_t passlen, ruf_keystore **out)
{
	uint8_t *buf;
	size_t len;
	int rc;

	*out = NULL;
	if (path == NULL)
		return RUF_E_INVAL;
	if ((rc = ruf_file_read(path, RUF_KEYSTORE_FILE_MAX, &buf, &len)) != 0)
		return rc;
	rc = ruf_keystore_decode(buf, len, pass, passlen, out);
	sodium_memzero(buf, len);
	free(buf);
	return rc;
}
