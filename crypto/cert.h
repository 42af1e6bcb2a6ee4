/*
 * cert.h - ruf certificates.
 *
 * A certificate is a protobuf Certificate { body, signature } where body is
 * the exact bytes of a CertBody and signature is Ed25519 by the issuer over
 * "ruf-cert-v1" NUL || body. Only the HQ root issues certificates (the root
 * certificate is self-signed); the issuer is named by the BLAKE2b-128 key id
 * of its signing key. Verification always runs over the received bytes;
 * nothing is re-encoded before checking.
 *
 * Roles: the root, field devices (permissions: the situations they may report
 * on), desks (permissions: the queues they may read), the HQ server (its Noise
 * static key is the certificate's X25519 key), and the directory signer.
 */
#ifndef RUF_CERT_H
#define RUF_CERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keystore.h"

#define RUF_CERT_MAX 16384 /* bytes: certificates are small */
#define RUF_KEY_ID_BYTES 16

enum ruf_role {
	RUF_ROLE_ROOT = 1,
	RUF_ROLE_DEVICE = 2,
	RUF_ROLE_DESK = 3,
	RUF_ROLE_SERVER = 4,
	RUF_ROLE_DIRSIGNER = 5,
};

/* "root", "device", "desk", "server", "directory-signer"; NULL if unknown. */
const char *ruf_role_name(int role);
/* Inverse of ruf_role_name(); 0 if unknown. */
int ruf_role_parse(const char *name);

typedef struct ruf_cert {
	int role;
	uint64_t serial;
	char *subject; /* e.g. "rc-sd-1" or "hrt-desk": an identifier (ruf_is_ident) */
	char *country; /* devices: ISO 3166 alpha-2, lower case; may be empty */
	uint64_t not_before, not_after; /* Unix seconds, inclusive */
	uint8_t sign_pk[RUF_SIGN_PK_BYTES];
	uint8_t kx_pk[RUF_KX_PK_BYTES];
	uint8_t issuer_key_id[RUF_KEY_ID_BYTES];
	char **situations; /* devices: situations it may report on; "*" = any */
	size_t n_situations;
	char **queues; /* desks: queues it may read */
	size_t n_queues;
	uint8_t *raw; /* the exact certificate bytes it was parsed from */
	size_t rawlen;
	uint8_t *body; /* the exact signed body bytes (inside raw's allocation or own) */
	size_t bodylen;
	uint8_t signature[RUF_SIG_BYTES];
} ruf_cert;

/* What to put in a new certificate (ruf_cert_issue). */
struct ruf_cert_template {
	int role;
	uint64_t serial;
	const char *subject;
	const char *country; /* may be NULL */
	uint64_t not_before, not_after;
	const uint8_t *sign_pk; /* RUF_SIGN_PK_BYTES */
	const uint8_t *kx_pk;   /* RUF_KX_PK_BYTES */
	const char *const *situations;
	size_t n_situations;
	const char *const *queues;
	size_t n_queues;
};

/* BLAKE2b-128 of an Ed25519 public key: how certificates name their issuer. */
void ruf_key_id(const uint8_t sign_pk[RUF_SIGN_PK_BYTES], uint8_t out[RUF_KEY_ID_BYTES]);

/*
 * Public key validators for anything read from outside. False for an
 * X25519 key that is all zero or of small order (a Diffie-Hellman with it
 * gives a predictable result), and for an Ed25519 key that is not a
 * canonical point of the main subgroup.
 */
bool ruf_kx_pk_is_valid(const uint8_t pk[RUF_KX_PK_BYTES]);
bool ruf_sign_pk_is_valid(const uint8_t pk[RUF_SIGN_PK_BYTES]);

/*
 * Parses a certificate's structure (no signature check yet). Rejects
 * non-canonical encodings and invalid fields (RUF_E_CERT_FORMAT), unknown
 * critical extensions (RUF_E_CERT_CRITICAL), and weak public keys
 * (RUF_E_WEAK_KEY), in that order. *out is owned by the caller; buf is
 * copied and not kept.
 */
int ruf_cert_parse(const uint8_t *buf, size_t len, ruf_cert **out)
    __attribute__((warn_unused_result));

/*
 * Verifies c as issued by root at time now, in this order: c's issuer key id
 * is root's (RUF_E_CERT_ISSUER); root is a self-signed root (role root, else
 * RUF_E_CERT_ROLE; names itself as issuer, else RUF_E_CERT_ISSUER; its self
 * signature verifies, else RUF_E_CERT_SIGNATURE); c's signature over the
 * received body bytes (RUF_E_CERT_SIGNATURE); c's validity window
 * (RUF_E_CERT_NOT_YET_VALID, RUF_E_CERT_EXPIRED; both ends inclusive); then
 * root's window with the same codes. Does not check c's role (callers do,
 * with ruf_cert_check_role) nor revocation (the directory holds that).
 * For the root itself, pass c == root.
 */
int ruf_cert_verify(const ruf_cert *c, const ruf_cert *root, uint64_t now)
    __attribute__((warn_unused_result));
/*
 * ruf_cert_verify() again, for a certificate that already passed it under a
 * root with root's key (e.g. at a handshake): the issuer and both validity
 * windows at now, without the two signature checks. Same error codes.
 */
int ruf_cert_reverify(const ruf_cert *c, const ruf_cert *root, uint64_t now)
    __attribute__((warn_unused_result));

/* RUF_E_CERT_ROLE unless c->role == role. */
int ruf_cert_check_role(const ruf_cert *c, int role);

/*
 * Issues a certificate signed with issuer_sk; issuer_pk names the issuer
 * (for a root, pass the root's own keys and t->sign_pk == issuer_pk). The
 * result is parsed back before it is returned, so an invalid template fails
 * with the error ruf_cert_parse() would give; RUF_E_INVAL for NULL
 * arguments or an issuer_sk that does not match issuer_pk. *out is malloc'ed
 * and owned by the caller.
 */
int ruf_cert_issue(const struct ruf_cert_template *t, const uint8_t issuer_sk[RUF_SIGN_SK_BYTES],
                   const uint8_t issuer_pk[RUF_SIGN_PK_BYTES], uint8_t **out, size_t *outlen);

/* A device may report on situation s (its list names s, or holds "*"). */
bool ruf_cert_permits_situation(const ruf_cert *c, const char *s);
/* A desk may read queue q. */
bool ruf_cert_permits_queue(const ruf_cert *c, const char *q);

/* ruf_file_read (bounded) + ruf_cert_parse. */
int ruf_cert_load(const char *path, ruf_cert **out) __attribute__((warn_unused_result));

/* Deep copy. */
int ruf_cert_dup(const ruf_cert *c, ruf_cert **out);

/* Frees c and everything it owns. Accepts NULL. */
void ruf_cert_free(ruf_cert *c);

/*
 * Internal, shared with directory.c: Ed25519 over domain (domainlen bytes,
 * its NUL included) followed by msg. Sign returns 0, RUF_E_NOMEM or
 * RUF_E_CRYPTO; verify returns 0 or RUF_E_CRYPTO (signature wrong) or
 * RUF_E_NOMEM.
 */
int ruf__sign_domain(const char *domain, size_t domainlen, const uint8_t *msg, size_t msglen,
                     const uint8_t sk[RUF_SIGN_SK_BYTES], uint8_t sig[RUF_SIG_BYTES]);
int ruf__verify_domain(const char *domain, size_t domainlen, const uint8_t *msg, size_t msglen,
                       const uint8_t sig[RUF_SIG_BYTES], const uint8_t pk[RUF_SIGN_PK_BYTES])
    __attribute__((warn_unused_result));

#endif
