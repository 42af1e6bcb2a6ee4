/*
 * noise.h - the Noise protocol core for the transport between field devices
 * or desks and rufd: exactly Noise_IK_25519_ChaChaPoly_BLAKE2b as in the
 * Noise Protocol Framework, revision 34, built on libsodium only.
 *
 *   DH      X25519 (crypto_scalarmult). An all-zero DH result (the peer sent
 *           a small-order or all-zero public key) is an error, RUF_E_WEAK_KEY;
 *           the spec allows either behaviour, we refuse.
 *   cipher  ChaCha20-Poly1305 IETF (crypto_aead_chacha20poly1305_ietf), the
 *           96-bit nonce is 4 zero bytes followed by the 64-bit counter n in
 *           little-endian order; n = 2^64-1 is reserved and never used.
 *   hash    BLAKE2b-512 (HASHLEN 64, BLOCKLEN 128). HMAC-BLAKE2b is RFC 2104
 *           with 128-byte blocks, NOT libsodium's keyed BLAKE2b (a different
 *           function); HKDF as in the spec, section 4.3.
 *
 * IK, with the responder's static key known to the initiator in advance:
 *
 *     <- s
 *     ...
 *     -> e, es, s, ss     message 1: e.pk (32) || enc(s.pk) (48) || enc(payload)
 *     <- e, ee, se        message 2: e.pk (32) || enc(payload)
 *
 * Every Noise message, handshake or transport, is at most RUF_NOISE_MAX_MSG
 * (65535) bytes. Framing on the wire is the caller's job (see
 * docs/PROTOCOL.md).
 *
 * WARNING: message 1 can be replayed by anyone who saw it; its payload is
 * authenticated as coming from the initiator's static key but not fresh. A
 * responder must act on nothing before the first transport message from the
 * initiator has decrypted.
 *
 * All structures hold secrets. Keep them on the stack or in sodium_malloc'ed
 * memory and wipe them with the ruf_noise_*_wipe() functions on every path.
 * Nothing here allocates. Functions return 0 or a negative RUF_E_* code:
 *   RUF_E_INVAL            misuse: NULL pointer, call in the wrong state,
 *                          output buffer too small, key pair mismatch
 *   RUF_E_TOO_LARGE        a message or payload over the 65535-byte limit
 *   RUF_E_TRUNCATED        a message shorter than its fixed parts
 *   RUF_E_AUTH             a ciphertext fails authentication
 *   RUF_E_WEAK_KEY         a DH result is all zero (small-order public key)
 *   RUF_E_NONCE_EXHAUSTED  the cipher's nonce reached 2^64-1
 */
#ifndef RUF_NOISE_H
#define RUF_NOISE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RUF_NOISE_PROTOCOL_NAME "Noise_IK_25519_ChaChaPoly_BLAKE2b"
#define RUF_NOISE_DHLEN 32   /* X25519 public key, secret key, DH output */
#define RUF_NOISE_KEYLEN 32  /* cipher key */
#define RUF_NOISE_TAGLEN 16  /* Poly1305 tag */
#define RUF_NOISE_HASHLEN 64 /* BLAKE2b-512 */
#define RUF_NOISE_BLOCKLEN 128
#define RUF_NOISE_MAX_MSG 65535
/* Largest transport plaintext: one maximal message minus the tag. */
#define RUF_NOISE_MAX_PAYLOAD (RUF_NOISE_MAX_MSG - RUF_NOISE_TAGLEN)
/* Fixed bytes of message 1 (e, encrypted s, payload tag) and message 2 (e, tag). */
#define RUF_NOISE_MSG1_OVERHEAD (RUF_NOISE_DHLEN + RUF_NOISE_DHLEN + 2 * RUF_NOISE_TAGLEN)
#define RUF_NOISE_MSG2_OVERHEAD (RUF_NOISE_DHLEN + RUF_NOISE_TAGLEN)
/* Largest prologue accepted; ours is a few bytes. */
#define RUF_NOISE_MAX_PROLOGUE 65535

/* CipherState (spec section 5.1). has_key false means "k is empty". */
typedef struct ruf_noise_cipher {
	uint8_t k[RUF_NOISE_KEYLEN];
	uint64_t n;
	bool has_key;
} ruf_noise_cipher;

/* SymmetricState (spec section 5.2). */
typedef struct ruf_noise_symmetric {
	ruf_noise_cipher cs;
	uint8_t ck[RUF_NOISE_HASHLEN];
	uint8_t h[RUF_NOISE_HASHLEN];
} ruf_noise_symmetric;

/* HandshakeState (spec section 5.3), for IK only. Opaque: use the functions. */
typedef struct ruf_noise_handshake {
	ruf_noise_symmetric ss;
	uint8_t s_sk[RUF_NOISE_DHLEN], s_pk[RUF_NOISE_DHLEN];
	uint8_t e_sk[RUF_NOISE_DHLEN], e_pk[RUF_NOISE_DHLEN];
	uint8_t rs[RUF_NOISE_DHLEN], re[RUF_NOISE_DHLEN];
	bool initiator;
	bool has_rs;
	bool fixed_e; /* set by the test seam below */
	int step;     /* internal: which message comes next */
} ruf_noise_handshake;

/* --- Primitives ----------------------------------------------------------- */

/*
 * HMAC-BLAKE2b per RFC 2104 with B = 128 and L = 64: keys longer than 128
 * bytes are first hashed. Writes 64 bytes to out. Never fails.
 */
void ruf_noise_hmac_blake2b(uint8_t out[RUF_NOISE_HASHLEN], const uint8_t *key, size_t keylen,
                            const uint8_t *data, size_t datalen);

/*
 * HKDF(chaining_key, input_key_material, 2 or 3) from spec section 4.3:
 * out1 and out2 always, out3 when it is not NULL. The outputs may alias ck.
 */
void ruf_noise_hkdf(const uint8_t ck[RUF_NOISE_HASHLEN], const uint8_t *ikm, size_t ikmlen,
                    uint8_t out1[RUF_NOISE_HASHLEN], uint8_t out2[RUF_NOISE_HASHLEN],
                    uint8_t *out3);

/* --- CipherState ---------------------------------------------------------- */

/* InitializeKey(k): k may be NULL for "empty". Sets n = 0. */
void ruf_noise_cipher_init(ruf_noise_cipher *cs, const uint8_t *k);

/* SetNonce(n): for tests and for protocols that carry explicit nonces. */
void ruf_noise_cipher_set_nonce(ruf_noise_cipher *cs, uint64_t n);

/*
 * EncryptWithAd(ad, plaintext): writes ptlen + 16 bytes to out and *outlen,
 * then increments n. out may equal pt exactly (in-place) but must not
 * otherwise overlap it. Fails with RUF_E_NONCE_EXHAUSTED, without touching
 * out, when n is 2^64-1, and with RUF_E_TOO_LARGE when the result would
 * exceed RUF_NOISE_MAX_MSG. Unlike the spec's CipherState, a cipher without
 * a key is refused (RUF_E_INVAL) rather than copying the plaintext: these
 * two functions are for transport messages, where an empty key is a bug.
 */
__attribute__((warn_unused_result)) int
ruf_noise_cipher_encrypt(ruf_noise_cipher *cs, const uint8_t *ad, size_t adlen, const uint8_t *pt,
                         size_t ptlen, uint8_t *out, size_t outcap, size_t *outlen);

/*
 * DecryptWithAd(ad, ciphertext): writes ctlen - 16 bytes to out and *outlen.
 * On RUF_E_AUTH n is not incremented and out holds no plaintext; the caller
 * should close the session. out may equal ct exactly.
 */
__attribute__((warn_unused_result)) int
ruf_noise_cipher_decrypt(ruf_noise_cipher *cs, const uint8_t *ad, size_t adlen, const uint8_t *ct,
                         size_t ctlen, uint8_t *out, size_t outcap, size_t *outlen);

/*
 * Rekey(): k = the first 32 bytes of ENCRYPT(k, 2^64-1, empty, 32 zeros),
 * the spec's default (sections 4.2 and 11.3). n is left unchanged.
 * RUF_E_INVAL when the cipher has no key.
 */
__attribute__((warn_unused_result)) int ruf_noise_cipher_rekey(ruf_noise_cipher *cs);

/* Wipes k and n. Accepts NULL. */
void ruf_noise_cipher_wipe(ruf_noise_cipher *cs);

/* --- SymmetricState ------------------------------------------------------- */

/*
 * InitializeSymmetric(protocol_name): h = name padded with zeros to 64 bytes
 * (or BLAKE2b(name) if longer than 64), ck = h, no cipher key.
 */
void ruf_noise_symmetric_init(ruf_noise_symmetric *ss, const char *protocol_name);
/* MixKey(ikm): RUF_E_INVAL only on NULL with a non-zero length. */
int ruf_noise_mix_key(ruf_noise_symmetric *ss, const uint8_t *ikm, size_t ikmlen);
/* MixHash(data): h = BLAKE2b(h || data). */
int ruf_noise_mix_hash(ruf_noise_symmetric *ss, const uint8_t *data, size_t len);
/* MixKeyAndHash(ikm): for PSK modes; unused by IK, kept for completeness. */
int ruf_noise_mix_key_and_hash(ruf_noise_symmetric *ss, const uint8_t *ikm, size_t ikmlen);
/*
 * EncryptAndHash(plaintext) and DecryptAndHash(ciphertext), exactly as the
 * spec: with an empty key they copy (never the case in IK, where s and the
 * payloads follow a DH). out may equal the input exactly.
 */
__attribute__((warn_unused_result)) int ruf_noise_encrypt_and_hash(ruf_noise_symmetric *ss,
                                                                   const uint8_t *pt, size_t ptlen,
                                                                   uint8_t *out, size_t outcap,
                                                                   size_t *outlen);
__attribute__((warn_unused_result)) int ruf_noise_decrypt_and_hash(ruf_noise_symmetric *ss,
                                                                   const uint8_t *ct, size_t ctlen,
                                                                   uint8_t *out, size_t outcap,
                                                                   size_t *outlen);
/* Split(): the two transport ciphers (c1 initiator->responder, c2 back). */
void ruf_noise_symmetric_split(const ruf_noise_symmetric *ss, ruf_noise_cipher *c1,
                               ruf_noise_cipher *c2);
/* Wipes ck, h and the cipher. Accepts NULL. */
void ruf_noise_symmetric_wipe(ruf_noise_symmetric *ss);

/* --- HandshakeState (IK) -------------------------------------------------- */

/*
 * Starts an IK handshake. s_sk/s_pk is our X25519 static key pair (s_pk must
 * be crypto_scalarmult_base(s_sk), else RUF_E_INVAL). The initiator passes
 * the responder's static public key rs_pk (RUF_E_WEAK_KEY if it is small
 * order); the responder passes NULL and learns the initiator's key from
 * message 1. The prologue (at most RUF_NOISE_MAX_PROLOGUE bytes) must be
 * identical on both sides or message 1 fails authentication. The keys are
 * copied; hs must later be wiped with ruf_noise_handshake_wipe().
 */
__attribute__((warn_unused_result)) int
ruf_noise_handshake_init(ruf_noise_handshake *hs, bool initiator, const uint8_t *prologue,
                         size_t prologue_len, const uint8_t s_sk[RUF_NOISE_DHLEN],
                         const uint8_t s_pk[RUF_NOISE_DHLEN], const uint8_t *rs_pk);

/*
 * Writes the next handshake message (message 1 for the initiator, message 2
 * for the responder) carrying payload into out (outcap bytes), its length
 * into *outlen. The message is payload_len + RUF_NOISE_MSG1_OVERHEAD or
 * RUF_NOISE_MSG2_OVERHEAD bytes. RUF_E_INVAL (state unchanged) when it is
 * not our turn or out is too small; RUF_E_TOO_LARGE when the message would
 * exceed 65535 bytes. Any other error leaves the handshake failed.
 */
__attribute__((warn_unused_result)) int ruf_noise_write_message(ruf_noise_handshake *hs,
                                                                const uint8_t *payload,
                                                                size_t payload_len, uint8_t *out,
                                                                size_t outcap, size_t *outlen);

/*
 * Reads the next handshake message msg (message 1 at the responder, message
 * 2 at the initiator) and writes its payload to payload_out (cap bytes),
 * the payload length to *plen. RUF_E_INVAL (state unchanged) when it is not
 * our turn or payload_out is too small for mlen minus the fixed overhead.
 * RUF_E_TOO_LARGE, RUF_E_TRUNCATED, RUF_E_WEAK_KEY and RUF_E_AUTH leave the
 * handshake failed and its secrets wiped: the caller closes the connection
 * without telling the peer why. payload_out holds nothing on failure.
 */
__attribute__((warn_unused_result)) int ruf_noise_read_message(ruf_noise_handshake *hs,
                                                               const uint8_t *msg, size_t mlen,
                                                               uint8_t *payload_out, size_t cap,
                                                               size_t *plen);

/* True once both handshake messages have been written/read successfully. */
bool ruf_noise_handshake_done(const ruf_noise_handshake *hs);

/*
 * Split: once done, gives our sending and receiving transport ciphers
 * (initiator sends with c1; responder sends with c2) and wipes every key in
 * hs, keeping only the handshake hash and the remote static key. Call once;
 * RUF_E_INVAL before the handshake is done or after a previous split.
 */
__attribute__((warn_unused_result)) int
ruf_noise_handshake_split(ruf_noise_handshake *hs, ruf_noise_cipher *send, ruf_noise_cipher *recv);

/*
 * The peer's static public key (32 bytes, owned by hs): for the responder
 * the initiator's key, known once message 1 has been read; NULL before that
 * or after a failure. The responder must check it against the certificate
 * in message 1's payload.
 */
const uint8_t *ruf_noise_remote_static(const ruf_noise_handshake *hs);

/*
 * The handshake hash h (64 bytes) for channel binding, once the handshake is
 * done (also after split); RUF_E_INVAL before. Both sides get the same value.
 */
int ruf_noise_handshake_hash(const ruf_noise_handshake *hs, uint8_t out[RUF_NOISE_HASHLEN]);

/* Wipes every secret and the state. Accepts NULL. */
void ruf_noise_handshake_wipe(ruf_noise_handshake *hs);

/*
 * TESTS ONLY: fixes our ephemeral secret key instead of drawing a random one,
 * so that published test vectors can be reproduced. Call after
 * ruf_noise_handshake_init() and before writing our handshake message.
 * Production code must never call this: a repeated ephemeral key destroys
 * forward secrecy and, with a repeated payload, reveals plaintext.
 */
int ruf_noise__set_ephemeral_for_tests(ruf_noise_handshake *hs,
                                       const uint8_t e_sk[RUF_NOISE_DHLEN]);

#endif
