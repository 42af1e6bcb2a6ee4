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

/* Bounds on what a keystore may hold; a file beyond them is refused. */
#define RUF_KEYSTORE_FILE_MAX (1024 * 1024) /* bytes, whole encoded file */
#define RUF_KEYSTORE_KEYS_MAX 1024          /* keys in one keystore */
#define RUF_PASSPHRASE_MAX 1024             /* bytes of one passphrase */

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
/*
 * Parses "interactive", "moderate" or "sensitive" into *out. Returns 0, or
 * RUF_E_INVAL for any other name (or NULL).
 */
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
 *
 * Every key, however it enters a keystore (generate, add, decode), must
 * satisfy: type known; name 1..RUF_KEY_NAME_MAX bytes of UTF-8 without NUL;
 * queue keys have a queue name (ruf_is_queue_name) and epoch >= 1, sign and kx
 * keys epoch 0; sklen fits the type; pk is the public half of sk. Otherwise
 * generate and add fail with RUF_E_INVAL. RUF_E_TOO_LARGE once the keystore
 * holds RUF_KEYSTORE_KEYS_MAX keys.
 */
int ruf_keystore_generate(ruf_keystore *ks, enum ruf_key_type type, const char *name,
                          uint32_t epoch, uint8_t *pk);

/*
 * Adds a copy of an existing key (e.g. a queue key given to a desk); the
 * caller keeps key. Same checks and errors as ruf_keystore_generate().
 */
int ruf_keystore_add(ruf_keystore *ks, const struct ruf_key *key);

/*
 * Finds a key by type and name; epoch 0 means the highest epoch held.
 * Returns NULL if none. The key stays owned by ks: the pointer is valid until
 * ruf_keystore_free(ks) (adding keys does not move existing ones).
 */
const struct ruf_key *ruf_keystore_find(const ruf_keystore *ks, enum ruf_key_type type,
                                        const char *name, uint32_t epoch);

/* Number of keys, and the i-th in insertion order (NULL if i is out of range). */
size_t ruf_keystore_count(const ruf_keystore *ks);
const struct ruf_key *ruf_keystore_get(const ruf_keystore *ks, size_t i);

/*
 * Serialises and encrypts ks. pass == NULL (passlen 0) writes an unprotected
 * keystore: only when the operator asked for it. WARNING: an unprotected
 * keystore offers no secrecy at all (its AEAD key is a public constant; it
 * only detects damage). An empty passphrase (pass != NULL, passlen 0) is
 * refused with RUF_E_INVAL. kdf NULL means moderate; limits outside
 * [interactive, sensitive] give RUF_E_KDF_LIMITS.
 * The caller owns *out (plain malloc). A protected encoding holds no secret
 * in the clear; an unprotected one is as sensitive as the keys themselves:
 * sodium_memzero() it before free().
 */
int ruf_keystore_encode(const ruf_keystore *ks, const char *pass, size_t passlen,
                        const struct ruf_kdf *kdf, uint8_t **out, size_t *outlen);

/*
 * Decrypts and parses a keystore. RUF_E_KEYSTORE for a damaged or foreign file,
 * RUF_E_VERSION for an unknown format version, RUF_E_PASSPHRASE for a wrong
 * passphrase, RUF_E_NO_PASSPHRASE if the file is protected and pass is NULL
 * (or passlen 0), RUF_E_KDF_LIMITS if the header asks for Argon2id limits
 * outside [interactive, sensitive] (so a damaged file cannot make us allocate
 * gigabytes), RUF_E_TOO_LARGE beyond RUF_KEYSTORE_FILE_MAX.
 * WARNING: pass is ignored for an unprotected file, which then decodes
 * successfully; a caller that requires protection checks
 * ruf_keystore_is_protected() first. On success the caller owns *out.
 */
int ruf_keystore_decode(const uint8_t *buf, size_t len, const char *pass, size_t passlen,
                        ruf_keystore **out) __attribute__((warn_unused_result));

/* True if the encoded keystore buf is protected by a passphrase. */
bool ruf_keystore_is_protected(const uint8_t *buf, size_t len);

/*
 * ruf_keystore_encode() + crash-safe write (mode 0600); exclusive: never
 * overwrite (RUF_E_EXISTS).
 */
int ruf_keystore_save(const ruf_keystore *ks, const char *path, const char *pass, size_t passlen,
                      const struct ruf_kdf *kdf, bool exclusive);

/*
 * Reads path (at most RUF_KEYSTORE_FILE_MAX bytes, else RUF_E_TOO_LARGE) and
 * ruf_keystore_decode()s it.
 */
int ruf_keystore_load(const char *path, const char *pass, size_t passlen, ruf_keystore **out)
    __attribute__((warn_unused_result));

/*
 * Passphrase input for the command-line tools, in this order:
 *  - file != NULL: the first line of that file (without its "\n" or "\r\n");
 *    the file must exist and the line be non-empty (else RUF_E_NO_PASSPHRASE);
 *    no later source is tried;
 *  - env != NULL and getenv(env) set and non-empty: its value;
 *  - the terminal /dev/tty, echo off, prompt written there (asked twice when
 *    confirm is set; RUF_E_PASSPHRASE_MISMATCH if the two differ).
 * Fails with RUF_E_NO_PASSPHRASE when none is available (no terminal, or an
 * empty line typed), RUF_E_TOO_LARGE beyond RUF_PASSPHRASE_MAX bytes,
 * RUF_E_FORMAT if it holds a NUL byte. On success *out is sodium_malloc'ed and
 * NUL-terminated, *outlen its length; release it with ruf_passphrase_free().
 */
int ruf_passphrase_get(const char *prompt, const char *file, const char *env, bool confirm,
                       char **out, size_t *outlen);
/* Wipes and frees a passphrase from ruf_passphrase_get(). Accepts NULL. */
void ruf_passphrase_free(char *p, size_t len);

#endif
