/*
 * directory.h - the signed HQ directory.
 *
 * The directory names the queues and their X25519 keys and epochs, carries
 * the compiled routing policy, the HQ server's Noise keys (current and next)
 * and addresses, and the revoked certificate serials. It is signed by the
 * directory signer, whose certificate (issued by the root) travels with it;
 * the signer key never lives on the daemon host, so rufd cannot substitute a
 * queue key. Versions strictly increase; every directory expires.
 *
 * Wire form: SignedDirectory { signer_cert, body, signature } with signature
 * = Ed25519 by the signer over "ruf-directory-v1" NUL || body.
 */
#ifndef RUF_DIRECTORY_H
#define RUF_DIRECTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cert.h"
#include "route.h"

#define RUF_DIRECTORY_MAX (4u << 20) /* bytes */

struct ruf_dir_queue {
	char *name;
	uint32_t epoch;
	uint8_t pk[RUF_KX_PK_BYTES];
};

struct ruf_dir_hq {
	uint8_t noise_pk[RUF_KX_PK_BYTES];
	bool has_next;
	uint8_t next_noise_pk[RUF_KX_PK_BYTES];
	char **addresses; /* "host:port" */
	size_t n_addresses;
};

typedef struct ruf_directory {
	uint64_t version;
	uint64_t issued_at, expires_at;
	struct ruf_dir_queue *queues; /* sorted by name, unique */
	size_t n_queues;
	uint64_t *revoked; /* sorted, unique */
	size_t n_revoked;
	struct ruf_dir_hq hq;
	ruf_policy *policy;
	ruf_cert *signer;
	uint8_t *raw; /* exact bytes it was parsed from */
	size_t rawlen;
} ruf_directory;

/* What to put in a new directory (ruf_directory_sign). */
struct ruf_directory_template {
	uint64_t version;
	uint64_t issued_at, expires_at;
	const struct ruf_dir_queue *queues;
	size_t n_queues;
	const uint64_t *revoked;
	size_t n_revoked;
	const struct ruf_dir_hq *hq;
	const ruf_policy *policy;
};

/*
 * Parses buf and verifies it under the pinned root at time now, in this
 * order: structure (RUF_E_DIR_FORMAT; a weak queue or Noise key:
 * RUF_E_WEAK_KEY), signer certificate chained to root with role
 * directory-signer and valid now (RUF_E_DIR_SIGNER), signature
 * (RUF_E_DIR_SIGNATURE), the signer not revoked by this directory
 * (RUF_E_DIR_SIGNER), expiry (RUF_E_DIR_EXPIRED), the policy decodes
 * (RUF_E_DIR_FORMAT; decoded only once the signature holds), and that the
 * policy routes only to queues the directory has keys for, "triage"
 * included (RUF_E_DIR_NO_QUEUE). root NULL: RUF_E_INVAL. *out is owned by
 * the caller; buf is copied into (*out)->raw and not kept.
 */
int ruf_directory_load_mem(const uint8_t *buf, size_t len, const ruf_cert *root, uint64_t now,
                           ruf_directory **out) __attribute__((warn_unused_result));

/* ruf_file_read (bounded) + ruf_directory_load_mem. */
int ruf_directory_load(const char *path, const ruf_cert *root, uint64_t now, ruf_directory **out)
    __attribute__((warn_unused_result));

/*
 * Whether a client holding current (NULL if none) may replace it with
 * candidate: RUF_E_DIR_ROLLBACK unless candidate->version > current->version.
 */
int ruf_directory_accept(const ruf_directory *current, const ruf_directory *candidate);

/*
 * Signs a directory with the signer's key; signer_cert is embedded. The
 * queues and revoked serials are sorted for the caller (duplicates:
 * RUF_E_INVAL). RUF_E_CERT_ROLE if signer_cert is not a directory signer,
 * RUF_E_INVAL if signer_sk is not its key. The result is loaded back with
 * every check but the chain to a root and the clock, so a template clients
 * would refuse fails here with the loader's error (e.g. RUF_E_DIR_NO_QUEUE).
 * *out is malloc'ed and owned by the caller.
 */
int ruf_directory_sign(const struct ruf_directory_template *t, const uint8_t *signer_cert,
                       size_t signer_cert_len, const uint8_t signer_sk[RUF_SIGN_SK_BYTES],
                       uint8_t **out, size_t *outlen);

/* The queue named name, or NULL. The result is owned by d. */
const struct ruf_dir_queue *ruf_directory_queue(const ruf_directory *d, const char *name);

/* True if serial is revoked by d. */
bool ruf_directory_is_revoked(const ruf_directory *d, uint64_t serial);

/* Frees d and everything it owns. Accepts NULL. */
void ruf_directory_free(ruf_directory *d);

#endif
