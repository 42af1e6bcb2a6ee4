/*
 * keystore.h - private keys at rest, protected by a passphrase.
 *
 * Key kinds are kept apart: Ed25519 signing keys and X25519 keys (the Noise
 * static key, and one per queue) are generated independently and never
 * converted into each other.
 *
 * A keystore file is a small clear header (magic, version, Argon2id
 * parameters and salt, nonce) followed by an XChaCha20-Poly1305 ciphertext of
 * the key list under a key derived from the passphrase with crypto_pwhash
 * (Argon2id); the header is the associated data. A keystore without a
 * passphrase exists only when the caller asks for one explicitly (the daemon
 * under systemd, which gets its key through LoadCredential). Secret key bytes
 * live in sodium_malloc'ed, mlock'ed memory and are wiped on free.
 */
#ifndef RUF_KEYSTORE_H
#define RUF_KEYSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RUF_SIGN_PK_BYTES 32 /* Ed25519 public key */
#define RUF_SIGN_SK_BYTES 64 /* Ed25519 secret key (libsodium form: seed || pk) */
#define RUF_SIG_BYTES 64     /* Ed25519 signature */
#define RUF_KX_PK_BYTES 32   /* X25519 public key */
#define RUF_KX_SK_BYTES 32   /* X25519 secret key */
#define RUF_KEY_NAME_MAX 64

enum ruf_key_type {
	RUF_KEY_SIGN = 1,  /* Ed25519: an identity's signing key */
	RUF_KEY_KX = 2,    /* X25519: an identity's Noise static key */
	RUF_KEY_QUEUE = 3, /* X25519: a queue's sealing key (name = queue, with epoch) */
};

/* Conventional key names for an identity's own keys. */
#define RUF_KEYNAME_SIGN "sign"
#define RUF_KEYNAME_KX "kx"

struct ruf_key {
	enum ruf_key_type type;
	char name[RUF_KEY_NAME_MAX + 1];
	uint32_t epoch;
	uint8_t pk[32];
	uint8_t *sk; /* sodium_malloc'ed; RUF_SIGN_SK_BYTES or RUF_KX_SK_BYTES */
	size_t sklen;
};

/* Argon2id limits; ruf_kdf_moderate() is the default for new keystores. */
struct ruf_kdf {
	uint64_t opslimit;
	uint64_t memlimit;
};
struct ruf_kdf ruf_kdf_interactive(void);
struct ruf_kdf ruf_kdf_moderate(void);
struct ruf_kdf ruf_kdf_sensitive(void);
/* Parses "interactive", "moderate" or "sensitive". */
int ruf_kdf_parse(const char *name, struct ruf_kdf *out);

typedef struct ruf_keystore ruf_keystore;

/* A new empty keystore; free with ruf_keystore_free(). */
int ruf_keystore_new(ruf_keystore **out);

/* Wipes every secret and frees ks. Accepts NULL. */
void ruf_keystore_free(ruf_keystore *ks);

/*
 * Generates a fresh key of type with name (and epoch, for queue keys) and adds
 * it. RUF_E_EXISTS if a key of that type, name and epoch is already there.
 * If pk is not NULL the new public key is copied there (32 bytes).
 */
int ruf_keystore_generate(ruf_keystore *ks, enum ruf_key_type type, const char *name,
			  uint32_t epoch, uint8_t *pk);

/* Adds a copy of an existing key (e.g. a queue key given to a desk). */
int ruf_keystore_add(ruf_keystore *ks, const struct ruf_key *key);

/*
 * Finds a key by type and name; epoch 0 means the highest epoch held.
 * Returns NULL if none. The key stays owned by ks.
 */
const struct ruf_key *ruf_keystore_find(const ruf_keystore *ks, enum ruf_key_type type,
					const char *name, uint32_t epoch);

size_t ruf_keystore_count(const ruf_keystore *ks);
const struct ruf_key *ruf_keystore_get(const ruf_keystore *ks, size_t i);

/*
 * Serialises and encrypts ks. pass == NULL (passlen 0) writes an unprotected
 * keystore: only when the operator asked for it. kdf NULL means moderate.
 * The caller owns *out (plain malloc; it holds no secret in the clear).
 */
int ruf_keystore_encode(const ruf_keystore *ks, const char *pass, size_t passlen,
			const struct ruf_kdf *kdf, uint8_t **out, size_t *outlen);

/*
 * Decrypts and parses a keystore. RUF_E_KEYSTORE for a damaged or foreign file,
 * RUF_E_PASSPHRASE for a wrong passphrase, RUF_E_NO_PASSPHRASE if the file is
 * protected and pass is NULL, RUF_E_KDF_LIMITS if the header asks for
 * unreasonable Argon2id limits (so a damaged file cannot make us allocate
 * gigabytes).
 */
int ruf_keystore_decode(const uint8_t *buf, size_t len, const char *pass, size_t passlen,
			ruf_keystore **out) __attribute__((warn_unused_result));

/* True if the encoded keystore buf is protected by a passphrase. */
bool ruf_keystore_is_protected(const uint8_t *buf, size_t len);

/* ruf_keystore_encode() + crash-safe write (mode 0600); exclusive: never overwrite. */
int ruf_keystore_save(const ruf_keystore *ks, const char *path, const char *pass, size_t passlen,
		      const struct ruf_kdf *kdf, bool exclusive);

/* Reads path (bounded) and ruf_keystore_decode()s it. */
int ruf_keystore_load(const char *path, const char *pass, size_t passlen, ruf_keystore **out)
	__attribute__((warn_unused_result));

/*
 * Passphrase input for the command-line tools, in this order: the file named
 * by file (first line), the environment variable env, then the terminal
 * (echo off; asked twice when confirm is set). Fails with
 * RUF_E_NO_PASSPHRASE when none is available (no terminal). *out is
 * sodium_malloc'ed; release it with ruf_passphrase_free().
 */
int ruf_passphrase_get(const char *prompt, const char *file, const char *env, bool confirm,
		       char **out, size_t *outlen);
void ruf_passphrase_free(char *p, size_t len);

#endif
