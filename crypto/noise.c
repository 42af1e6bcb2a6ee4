/*
 * noise.c - Noise_IK_25519_ChaChaPoly_BLAKE2b (Noise rev 34) on libsodium.
 *
 * The structure follows the spec's objects one to one (CipherState,
 * SymmetricState, HandshakeState) so that a reader can hold this file next
 * to sections 5.1-5.3. Only the IK pattern is implemented; the token
 * sequence is written out in write_msg1/read_msg1/write_msg2/read_msg2
 * rather than interpreted from a pattern table, because a fixed sequence is
 * easier to audit than a general interpreter.
 */
#include <string.h>

#include <sodium.h>

#include "err.h"
#include "noise.h"

/* Handshake steps. FAILED and SPLIT are terminal. */
enum {
	HS_MSG1 = 1, /* initiator writes / responder reads message 1 */
	HS_MSG2,     /* responder writes / initiator reads message 2 */
	HS_DONE,
	HS_SPLIT,
	HS_FAILED,
};

#define NONCE_BYTES crypto_aead_chacha20poly1305_IETF_NPUBBYTES

/* --- Primitives ----------------------------------------------------------- */

/* Noise ChaChaPoly nonce: 32 zero bits, then n as 64-bit little-endian. */
static void
noise_nonce(uint8_t out[NONCE_BYTES], uint64_t n)
{
	int i;

	memset(out, 0, 4);
	for (i = 0; i < 8; i++)
		out[4 + i] = (uint8_t)(n >> (8 * i));
}

/* BLAKE2b-512 over up to three concatenated pieces (NULL pieces skipped). */
static void
hash3(uint8_t out[RUF_NOISE_HASHLEN], const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
      const uint8_t *c, size_t clen)
{
	crypto_generichash_blake2b_state st;

	crypto_generichash_blake2b_init(&st, NULL, 0, RUF_NOISE_HASHLEN);
	if (alen)
		crypto_generichash_blake2b_update(&st, a, alen);
	if (blen)
		crypto_generichash_blake2b_update(&st, b, blen);
	if (clen)
		crypto_generichash_blake2b_update(&st, c, clen);
	crypto_generichash_blake2b_final(&st, out, RUF_NOISE_HASHLEN);
	sodium_memzero(&st, sizeof st);
}

/*
 * HMAC(K, d1 || d2) per RFC 2104 with the BLAKE2b block size of 128 bytes:
 * H((K0 ^ opad) || H((K0 ^ ipad) || text)). libsodium's keyed BLAKE2b is a
 * different function and would not interoperate with other Noise stacks.
 */
static void
hmac2(uint8_t out[RUF_NOISE_HASHLEN], const uint8_t *key, size_t keylen, const uint8_t *d1,
      size_t l1, const uint8_t *d2, size_t l2)
{
	uint8_t k0[RUF_NOISE_BLOCKLEN], pad[RUF_NOISE_BLOCKLEN], inner[RUF_NOISE_HASHLEN];
	size_t i;

	memset(k0, 0, sizeof k0);
	if (keylen > RUF_NOISE_BLOCKLEN)
		hash3(k0, key, keylen, NULL, 0, NULL, 0);
	else if (keylen)
		memcpy(k0, key, keylen);
	for (i = 0; i < sizeof pad; i++)
		pad[i] = k0[i] ^ 0x36;
	hash3(inner, pad, sizeof pad, d1, l1, d2, l2);
	for (i = 0; i < sizeof pad; i++)
		pad[i] = k0[i] ^ 0x5c;
	hash3(out, pad, sizeof pad, inner, sizeof inner, NULL, 0);
	sodium_memzero(k0, sizeof k0);
	sodium_memzero(pad, sizeof pad);
	sodium_memzero(inner, sizeof inner);
}

void
ruf_noise_hmac_blake2b(uint8_t out[RUF_NOISE_HASHLEN], const uint8_t *key, size_t keylen,
                       const uint8_t *data, size_t datalen)
{
	hmac2(out, key, keylen, data, datalen, NULL, 0);
}

void
ruf_noise_hkdf(const uint8_t ck[RUF_NOISE_HASHLEN], const uint8_t *ikm, size_t ikmlen,
               uint8_t out1[RUF_NOISE_HASHLEN], uint8_t out2[RUF_NOISE_HASHLEN], uint8_t *out3)
{
	static const uint8_t one = 0x01, two = 0x02, three = 0x03;
	uint8_t tk[RUF_NOISE_HASHLEN], o1[RUF_NOISE_HASHLEN], o2[RUF_NOISE_HASHLEN];
	uint8_t o3[RUF_NOISE_HASHLEN];

	/* Work in locals so that any output may alias ck. */
	hmac2(tk, ck, RUF_NOISE_HASHLEN, ikm, ikmlen, NULL, 0);
	hmac2(o1, tk, sizeof tk, &one, 1, NULL, 0);
	hmac2(o2, tk, sizeof tk, o1, sizeof o1, &two, 1);
	if (out3 != NULL)
		hmac2(o3, tk, sizeof tk, o2, sizeof o2, &three, 1);
	memcpy(out1, o1, sizeof o1);
	memcpy(out2, o2, sizeof o2);
	if (out3 != NULL)
		memcpy(out3, o3, sizeof o3);
	sodium_memzero(tk, sizeof tk);
	sodium_memzero(o1, sizeof o1);
	sodium_memzero(o2, sizeof o2);
	sodium_memzero(o3, sizeof o3);
}

/*
 * DH(sk, pk) into out. crypto_scalarmult already refuses an all-zero result;
 * we check again so the rule does not depend on the libsodium version.
 */
static int
dh(uint8_t out[RUF_NOISE_DHLEN], const uint8_t sk[RUF_NOISE_DHLEN],
   const uint8_t pk[RUF_NOISE_DHLEN])
{
	if (crypto_scalarmult(out, sk, pk) != 0 || sodium_is_zero(out, RUF_NOISE_DHLEN)) {
		sodium_memzero(out, RUF_NOISE_DHLEN);
		return RUF_E_WEAK_KEY;
	}
	return 0;
}

/* --- CipherState ---------------------------------------------------------- */

void
ruf_noise_cipher_init(ruf_noise_cipher *cs, const uint8_t *k)
{
	if (k != NULL) {
		memcpy(cs->k, k, RUF_NOISE_KEYLEN);
		cs->has_key = true;
	} else {
		sodium_memzero(cs->k, sizeof cs->k);
		cs->has_key = false;
	}
	cs->n = 0;
}

void
ruf_noise_cipher_set_nonce(ruf_noise_cipher *cs, uint64_t n)
{
	cs->n = n;
}

/*
 * EncryptWithAd and DecryptWithAd as the spec defines them, including the
 * plain copy when k is empty. Only the SymmetricState may rely on the copy:
 * the public functions refuse an empty key, so that a wiped or forgotten
 * transport cipher can never send plaintext.
 */
static int
cipher_encrypt(ruf_noise_cipher *cs, const uint8_t *ad, size_t adlen, const uint8_t *pt,
               size_t ptlen, uint8_t *out, size_t outcap, size_t *outlen)
{
	uint8_t nonce[NONCE_BYTES];
	unsigned long long clen = 0;
	size_t need;

	if (cs == NULL || outlen == NULL || (ptlen && pt == NULL) || (adlen && ad == NULL))
		return RUF_E_INVAL;
	need = cs->has_key ? ptlen + RUF_NOISE_TAGLEN : ptlen;
	if (ptlen > RUF_NOISE_MAX_MSG || need > RUF_NOISE_MAX_MSG)
		return RUF_E_TOO_LARGE;
	if (outcap < need || (need && out == NULL))
		return RUF_E_INVAL;
	if (!cs->has_key) {
		/* The spec: without a key, EncryptWithAd returns the plaintext. */
		if (ptlen)
			memmove(out, pt, ptlen);
		*outlen = ptlen;
		return 0;
	}
	if (cs->n == UINT64_MAX)
		return RUF_E_NONCE_EXHAUSTED;
	noise_nonce(nonce, cs->n);
	crypto_aead_chacha20poly1305_ietf_encrypt(out, &clen, pt, ptlen, ad, adlen, NULL, nonce,
	                                          cs->k);
	cs->n++;
	*outlen = (size_t)clen;
	return 0;
}

static int
cipher_decrypt(ruf_noise_cipher *cs, const uint8_t *ad, size_t adlen, const uint8_t *ct,
               size_t ctlen, uint8_t *out, size_t outcap, size_t *outlen)
{
	uint8_t nonce[NONCE_BYTES];
	unsigned long long mlen = 0;
	size_t need;

	if (cs == NULL || outlen == NULL || (ctlen && ct == NULL) || (adlen && ad == NULL))
		return RUF_E_INVAL;
	if (ctlen > RUF_NOISE_MAX_MSG)
		return RUF_E_TOO_LARGE;
	if (cs->has_key && ctlen < RUF_NOISE_TAGLEN)
		return RUF_E_TRUNCATED;
	need = cs->has_key ? ctlen - RUF_NOISE_TAGLEN : ctlen;
	if (outcap < need || (need && out == NULL))
		return RUF_E_INVAL;
	if (!cs->has_key) {
		if (ctlen)
			memmove(out, ct, ctlen);
		*outlen = ctlen;
		return 0;
	}
	if (cs->n == UINT64_MAX)
		return RUF_E_NONCE_EXHAUSTED;
	noise_nonce(nonce, cs->n);
	if (crypto_aead_chacha20poly1305_ietf_decrypt(out, &mlen, NULL, ct, ctlen, ad, adlen, nonce,
	                                              cs->k) != 0) {
		if (need)
			sodium_memzero(out, need);
		return RUF_E_AUTH;
	}
	cs->n++;
	*outlen = (size_t)mlen;
	return 0;
}

int
ruf_noise_cipher_encrypt(ruf_noise_cipher *cs, const uint8_t *ad, size_t adlen, const uint8_t *pt,
                         size_t ptlen, uint8_t *out, size_t outcap, size_t *outlen)
{
	if (cs == NULL || !cs->has_key)
		return RUF_E_INVAL;
	return cipher_encrypt(cs, ad, adlen, pt, ptlen, out, outcap, outlen);
}

int
ruf_noise_cipher_decrypt(ruf_noise_cipher *cs, const uint8_t *ad, size_t adlen, const uint8_t *ct,
                         size_t ctlen, uint8_t *out, size_t outcap, size_t *outlen)
{
	if (cs == NULL || !cs->has_key)
		return RUF_E_INVAL;
	return cipher_decrypt(cs, ad, adlen, ct, ctlen, out, outcap, outlen);
}

int
ruf_noise_cipher_rekey(ruf_noise_cipher *cs)
{
	uint8_t zeros[RUF_NOISE_KEYLEN], tmp[RUF_NOISE_KEYLEN + RUF_NOISE_TAGLEN];
	uint8_t nonce[NONCE_BYTES];

	if (cs == NULL || !cs->has_key)
		return RUF_E_INVAL;
	memset(zeros, 0, sizeof zeros);
	/* The one use of the reserved nonce 2^64-1 (spec section 4.2). */
	noise_nonce(nonce, UINT64_MAX);
	crypto_aead_chacha20poly1305_ietf_encrypt(tmp, NULL, zeros, sizeof zeros, NULL, 0, NULL,
	                                          nonce, cs->k);
	memcpy(cs->k, tmp, RUF_NOISE_KEYLEN);
	sodium_memzero(tmp, sizeof tmp);
	return 0;
}

void
ruf_noise_cipher_wipe(ruf_noise_cipher *cs)
{
	if (cs != NULL)
		sodium_memzero(cs, sizeof *cs);
}

/* --- SymmetricState ------------------------------------------------------- */

void
ruf_noise_symmetric_init(ruf_noise_symmetric *ss, const char *protocol_name)
{
	size_t len = strlen(protocol_name);

	memset(ss->h, 0, sizeof ss->h);
	if (len <= RUF_NOISE_HASHLEN)
		memcpy(ss->h, protocol_name, len);
	else
		hash3(ss->h, (const uint8_t *)protocol_name, len, NULL, 0, NULL, 0);
	memcpy(ss->ck, ss->h, sizeof ss->ck);
	ruf_noise_cipher_init(&ss->cs, NULL);
}

int
ruf_noise_mix_key(ruf_noise_symmetric *ss, const uint8_t *ikm, size_t ikmlen)
{
	uint8_t tk[RUF_NOISE_HASHLEN];

	if (ss == NULL || (ikmlen && ikm == NULL))
		return RUF_E_INVAL;
	ruf_noise_hkdf(ss->ck, ikm, ikmlen, ss->ck, tk, NULL);
	/* HASHLEN 64: the cipher key is the first 32 bytes of temp_k. */
	ruf_noise_cipher_init(&ss->cs, tk);
	sodium_memzero(tk, sizeof tk);
	return 0;
}

int
ruf_noise_mix_hash(ruf_noise_symmetric *ss, const uint8_t *data, size_t len)
{
	if (ss == NULL || (len && data == NULL))
		return RUF_E_INVAL;
	hash3(ss->h, ss->h, sizeof ss->h, data, len, NULL, 0);
	return 0;
}

int
ruf_noise_mix_key_and_hash(ruf_noise_symmetric *ss, const uint8_t *ikm, size_t ikmlen)
{
	uint8_t th[RUF_NOISE_HASHLEN], tk[RUF_NOISE_HASHLEN];

	if (ss == NULL || (ikmlen && ikm == NULL))
		return RUF_E_INVAL;
	ruf_noise_hkdf(ss->ck, ikm, ikmlen, ss->ck, th, tk);
	hash3(ss->h, ss->h, sizeof ss->h, th, sizeof th, NULL, 0);
	ruf_noise_cipher_init(&ss->cs, tk);
	sodium_memzero(th, sizeof th);
	sodium_memzero(tk, sizeof tk);
	return 0;
}

int
ruf_noise_encrypt_and_hash(ruf_noise_symmetric *ss, const uint8_t *pt, size_t ptlen, uint8_t *out,
                           size_t outcap, size_t *outlen)
{
	int err;

	if (ss == NULL || outlen == NULL)
		return RUF_E_INVAL;
	err = cipher_encrypt(&ss->cs, ss->h, sizeof ss->h, pt, ptlen, out, outcap, outlen);
	if (err)
		return err;
	return ruf_noise_mix_hash(ss, out, *outlen);
}

int
ruf_noise_decrypt_and_hash(ruf_noise_symmetric *ss, const uint8_t *ct, size_t ctlen, uint8_t *out,
                           size_t outcap, size_t *outlen)
{
	uint8_t newh[RUF_NOISE_HASHLEN];
	int err;

	if (ss == NULL || outlen == NULL || (ctlen && ct == NULL))
		return RUF_E_INVAL;
	/*
	 * h must absorb the ciphertext, but the old h is the associated data,
	 * and decrypting in place would overwrite the ciphertext: hash first,
	 * commit after authentication.
	 */
	hash3(newh, ss->h, sizeof ss->h, ct, ctlen, NULL, 0);
	err = cipher_decrypt(&ss->cs, ss->h, sizeof ss->h, ct, ctlen, out, outcap, outlen);
	if (err == 0)
		memcpy(ss->h, newh, sizeof newh);
	sodium_memzero(newh, sizeof newh);
	return err;
}

void
ruf_noise_symmetric_split(const ruf_noise_symmetric *ss, ruf_noise_cipher *c1, ruf_noise_cipher *c2)
{
	uint8_t k1[RUF_NOISE_HASHLEN], k2[RUF_NOISE_HASHLEN];

	ruf_noise_hkdf(ss->ck, NULL, 0, k1, k2, NULL);
	ruf_noise_cipher_init(c1, k1);
	ruf_noise_cipher_init(c2, k2);
	sodium_memzero(k1, sizeof k1);
	sodium_memzero(k2, sizeof k2);
}

void
ruf_noise_symmetric_wipe(ruf_noise_symmetric *ss)
{
	if (ss != NULL)
		sodium_memzero(ss, sizeof *ss);
}

/* --- HandshakeState (IK) -------------------------------------------------- */

/* Wipes every secret but keeps h and rs (needed after split). */
static void
hs_wipe_keys(ruf_noise_handshake *hs)
{
	sodium_memzero(hs->ss.ck, sizeof hs->ss.ck);
	ruf_noise_cipher_wipe(&hs->ss.cs);
	sodium_memzero(hs->s_sk, sizeof hs->s_sk);
	sodium_memzero(hs->e_sk, sizeof hs->e_sk);
}

/* A failed handshake keeps nothing; every later call gets RUF_E_INVAL. */
static int
hs_fail(ruf_noise_handshake *hs, int err)
{
	ruf_noise_handshake_wipe(hs);
	hs->step = HS_FAILED;
	return err;
}

/* MixKey(DH(sk, pk)), the DH tokens es, ss, ee, se. */
static int
mix_dh(ruf_noise_handshake *hs, const uint8_t sk[RUF_NOISE_DHLEN],
       const uint8_t pk[RUF_NOISE_DHLEN])
{
	uint8_t shared[RUF_NOISE_DHLEN];
	int err;

	err = dh(shared, sk, pk);
	if (err == 0)
		err = ruf_noise_mix_key(&hs->ss, shared, sizeof shared);
	sodium_memzero(shared, sizeof shared);
	return err;
}

int
ruf_noise_handshake_init(ruf_noise_handshake *hs, bool initiator, const uint8_t *prologue,
                         size_t prologue_len, const uint8_t s_sk[RUF_NOISE_DHLEN],
                         const uint8_t s_pk[RUF_NOISE_DHLEN], const uint8_t *rs_pk)
{
	uint8_t pk[RUF_NOISE_DHLEN], shared[RUF_NOISE_DHLEN];
	int err;

	if (hs == NULL)
		return RUF_E_INVAL;
	memset(hs, 0, sizeof *hs);
	hs->step = HS_FAILED;
	if (s_sk == NULL || s_pk == NULL || (prologue_len && prologue == NULL))
		return RUF_E_INVAL;
	/* IK: only the initiator knows the peer's static key beforehand. */
	if (initiator != (rs_pk != NULL))
		return RUF_E_INVAL;
	if (prologue_len > RUF_NOISE_MAX_PROLOGUE)
		return RUF_E_TOO_LARGE;
	/* A mismatched pair would make us announce a key we cannot use. */
	if (crypto_scalarmult_base(pk, s_sk) != 0 || sodium_memcmp(pk, s_pk, sizeof pk) != 0)
		return RUF_E_INVAL;
	if (rs_pk != NULL) {
		/* Refuse a small-order responder key before sending anything. */
		err = dh(shared, s_sk, rs_pk);
		sodium_memzero(shared, sizeof shared);
		if (err)
			return err;
	}

	hs->initiator = initiator;
	memcpy(hs->s_sk, s_sk, RUF_NOISE_DHLEN);
	memcpy(hs->s_pk, s_pk, RUF_NOISE_DHLEN);
	ruf_noise_symmetric_init(&hs->ss, RUF_NOISE_PROTOCOL_NAME);
	(void)ruf_noise_mix_hash(&hs->ss, prologue, prologue_len);
	/* Pre-message "<- s": both sides hash the responder's static key. */
	if (initiator) {
		memcpy(hs->rs, rs_pk, RUF_NOISE_DHLEN);
		hs->has_rs = true;
		(void)ruf_noise_mix_hash(&hs->ss, hs->rs, sizeof hs->rs);
	} else {
		(void)ruf_noise_mix_hash(&hs->ss, hs->s_pk, sizeof hs->s_pk);
	}
	hs->step = HS_MSG1;
	return 0;
}

int
ruf_noise__set_ephemeral_for_tests(ruf_noise_handshake *hs, const uint8_t e_sk[RUF_NOISE_DHLEN])
{
	/* Only before we have written our own "e". */
	if (hs == NULL || e_sk == NULL ||
	    !(hs->step == HS_MSG1 || (!hs->initiator && hs->step == HS_MSG2)))
		return RUF_E_INVAL;
	memcpy(hs->e_sk, e_sk, RUF_NOISE_DHLEN);
	crypto_scalarmult_base(hs->e_pk, hs->e_sk);
	hs->fixed_e = true;
	return 0;
}

/* Token "e" when writing: a fresh ephemeral key, sent in clear and hashed. */
static void
write_e(ruf_noise_handshake *hs, uint8_t *out)
{
	if (!hs->fixed_e) {
		randombytes_buf(hs->e_sk, sizeof hs->e_sk);
		crypto_scalarmult_base(hs->e_pk, hs->e_sk);
	}
	memcpy(out, hs->e_pk, RUF_NOISE_DHLEN);
	(void)ruf_noise_mix_hash(&hs->ss, hs->e_pk, sizeof hs->e_pk);
}

/* -> e, es, s, ss, payload */
static int
write_msg1(ruf_noise_handshake *hs, const uint8_t *payload, size_t plen, uint8_t *out,
           size_t *outlen)
{
	size_t off = 0, n;
	int err;

	write_e(hs, out);
	off += RUF_NOISE_DHLEN;
	if ((err = mix_dh(hs, hs->e_sk, hs->rs)) != 0)
		return err;
	err = ruf_noise_encrypt_and_hash(&hs->ss, hs->s_pk, sizeof hs->s_pk, out + off,
	                                 RUF_NOISE_DHLEN + RUF_NOISE_TAGLEN, &n);
	if (err)
		return err;
	off += n;
	if ((err = mix_dh(hs, hs->s_sk, hs->rs)) != 0)
		return err;
	err = ruf_noise_encrypt_and_hash(&hs->ss, payload, plen, out + off, plen + RUF_NOISE_TAGLEN,
	                                 &n);
	if (err)
		return err;
	*outlen = off + n;
	return 0;
}

/* <- e, ee, se, payload */
static int
write_msg2(ruf_noise_handshake *hs, const uint8_t *payload, size_t plen, uint8_t *out,
           size_t *outlen)
{
	size_t n;
	int err;

	write_e(hs, out);
	if ((err = mix_dh(hs, hs->e_sk, hs->re)) != 0)
		return err;
	/* se: the initiator's static with our ephemeral. */
	if ((err = mix_dh(hs, hs->e_sk, hs->rs)) != 0)
		return err;
	err = ruf_noise_encrypt_and_hash(&hs->ss, payload, plen, out + RUF_NOISE_DHLEN,
	                                 plen + RUF_NOISE_TAGLEN, &n);
	if (err)
		return err;
	*outlen = RUF_NOISE_DHLEN + n;
	return 0;
}

int
ruf_noise_write_message(ruf_noise_handshake *hs, const uint8_t *payload, size_t payload_len,
                        uint8_t *out, size_t outcap, size_t *outlen)
{
	size_t overhead;
	int err;

	if (hs == NULL || out == NULL || outlen == NULL || (payload_len && payload == NULL))
		return RUF_E_INVAL;
	if (hs->initiator && hs->step == HS_MSG1)
		overhead = RUF_NOISE_MSG1_OVERHEAD;
	else if (!hs->initiator && hs->step == HS_MSG2)
		overhead = RUF_NOISE_MSG2_OVERHEAD;
	else
		return RUF_E_INVAL;
	if (payload_len > RUF_NOISE_MAX_MSG - overhead)
		return RUF_E_TOO_LARGE;
	if (outcap < payload_len + overhead)
		return RUF_E_INVAL;

	if (hs->step == HS_MSG1)
		err = write_msg1(hs, payload, payload_len, out, outlen);
	else
		err = write_msg2(hs, payload, payload_len, out, outlen);
	if (err) {
		sodium_memzero(out, payload_len + overhead);
		return hs_fail(hs, err);
	}
	hs->step = hs->step == HS_MSG1 ? HS_MSG2 : HS_DONE;
	return 0;
}

/* Responder: -> e, es, s, ss, payload */
static int
read_msg1(ruf_noise_handshake *hs, const uint8_t *msg, size_t mlen, uint8_t *pout, size_t cap,
          size_t *plen)
{
	size_t off = 0, n;
	int err;

	memcpy(hs->re, msg, RUF_NOISE_DHLEN);
	off += RUF_NOISE_DHLEN;
	(void)ruf_noise_mix_hash(&hs->ss, hs->re, sizeof hs->re);
	if ((err = mix_dh(hs, hs->s_sk, hs->re)) != 0)
		return err;
	err = ruf_noise_decrypt_and_hash(&hs->ss, msg + off, RUF_NOISE_DHLEN + RUF_NOISE_TAGLEN,
	                                 hs->rs, sizeof hs->rs, &n);
	if (err)
		return err;
	off += RUF_NOISE_DHLEN + RUF_NOISE_TAGLEN;
	hs->has_rs = true;
	if ((err = mix_dh(hs, hs->s_sk, hs->rs)) != 0)
		return err;
	return ruf_noise_decrypt_and_hash(&hs->ss, msg + off, mlen - off, pout, cap, plen);
}

/* Initiator: <- e, ee, se, payload */
static int
read_msg2(ruf_noise_handshake *hs, const uint8_t *msg, size_t mlen, uint8_t *pout, size_t cap,
          size_t *plen)
{
	int err;

	memcpy(hs->re, msg, RUF_NOISE_DHLEN);
	(void)ruf_noise_mix_hash(&hs->ss, hs->re, sizeof hs->re);
	if ((err = mix_dh(hs, hs->e_sk, hs->re)) != 0)
		return err;
	/* se: our static with the responder's ephemeral. */
	if ((err = mix_dh(hs, hs->s_sk, hs->re)) != 0)
		return err;
	return ruf_noise_decrypt_and_hash(&hs->ss, msg + RUF_NOISE_DHLEN, mlen - RUF_NOISE_DHLEN,
	                                  pout, cap, plen);
}

int
ruf_noise_read_message(ruf_noise_handshake *hs, const uint8_t *msg, size_t mlen,
                       uint8_t *payload_out, size_t cap, size_t *plen)
{
	size_t overhead;
	int err;

	if (hs == NULL || plen == NULL || (mlen && msg == NULL))
		return RUF_E_INVAL;
	if (!hs->initiator && hs->step == HS_MSG1)
		overhead = RUF_NOISE_MSG1_OVERHEAD;
	else if (hs->initiator && hs->step == HS_MSG2)
		overhead = RUF_NOISE_MSG2_OVERHEAD;
	else
		return RUF_E_INVAL;
	/* Lengths first: nothing is hashed or decrypted for a malformed message. */
	if (mlen > RUF_NOISE_MAX_MSG)
		return hs_fail(hs, RUF_E_TOO_LARGE);
	if (mlen < overhead)
		return hs_fail(hs, RUF_E_TRUNCATED);
	if (cap < mlen - overhead || (mlen > overhead && payload_out == NULL))
		return RUF_E_INVAL;

	if (hs->step == HS_MSG1)
		err = read_msg1(hs, msg, mlen, payload_out, cap, plen);
	else
		err = read_msg2(hs, msg, mlen, payload_out, cap, plen);
	if (err) {
		if (mlen > overhead)
			sodium_memzero(payload_out, mlen - overhead);
		return hs_fail(hs, err);
	}
	hs->step = hs->step == HS_MSG1 ? HS_MSG2 : HS_DONE;
	return 0;
}

bool
ruf_noise_handshake_done(const ruf_noise_handshake *hs)
{
	return hs != NULL && (hs->step == HS_DONE || hs->step == HS_SPLIT);
}

int
ruf_noise_handshake_split(ruf_noise_handshake *hs, ruf_noise_cipher *send, ruf_noise_cipher *recv)
{
	if (hs == NULL || send == NULL || recv == NULL || hs->step != HS_DONE)
		return RUF_E_INVAL;
	if (hs->initiator)
		ruf_noise_symmetric_split(&hs->ss, send, recv);
	else
		ruf_noise_symmetric_split(&hs->ss, recv, send);
	hs_wipe_keys(hs);
	hs->step = HS_SPLIT;
	return 0;
}

const uint8_t *
ruf_noise_remote_static(const ruf_noise_handshake *hs)
{
	if (hs == NULL || hs->step == HS_FAILED || !hs->has_rs)
		return NULL;
	return hs->rs;
}

int
ruf_noise_handshake_hash(const ruf_noise_handshake *hs, uint8_t out[RUF_NOISE_HASHLEN])
{
	if (hs == NULL || out == NULL || !ruf_noise_handshake_done(hs))
		return RUF_E_INVAL;
	memcpy(out, hs->ss.h, RUF_NOISE_HASHLEN);
	return 0;
}

void
ruf_noise_handshake_wipe(ruf_noise_handshake *hs)
{
	if (hs != NULL)
		sodium_memzero(hs, sizeof *hs);
}
