/*
 * directory.h - the signed HQ directory.
 *
 * The directory names the queues and their X25519 keys and epochs, carries
 * the compiled routing policy, the HQ server's Noise keys (current and next)
 * and addresses, and the revoked certificate serials, each with the time it
 * was revoked from (and a reason). It is signed by the
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
#define RUF_DIR_REASON_MAX 200       /* bytes of a revocation's reason */

/*
 * A revoked certificate. revoked_at is HQ's statement of when the
 * certificate stopped being trustworthy (it may be earlier than the
 * directory that publishes it, e.g. when a device was seized); reports
 * rufd accepted at or after it are not genuine (ruf_directory_judge).
 */
struct ruf_dir_revocation {
	uint64_t serial;     /* >= 1 */
	uint64_t revoked_at; /* Unix seconds, >= 1 */
	char *reason;        /* "" if none; <= RUF_DIR_REASON_MAX bytes, no control characters */
};

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
	struct ruf_dir_revocation *revoked; /* sorted by serial, unique */
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
	const struct ruf_dir_revocation *revoked; /* any order; reason may be NULL */
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
 * queues and revocations are sorted for the caller (a duplicate name or
 * serial, a revocation time 0 or a reason that is too long or holds a
 * control character: RUF_E_INVAL). RUF_E_CERT_ROLE if signer_cert is not a directory signer,
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

/* True if serial is revoked by d (at any time). */
bool ruf_directory_is_revoked(const ruf_directory *d, uint64_t serial);

/* serial's revocation in d, or NULL. The result is owned by d. */
const struct ruf_dir_revocation *ruf_directory_revocation(const ruf_directory *d, uint64_t serial);

/* What a reader makes of a message from a sender, given when rufd accepted it. */
enum ruf_revocation_verdict {
	RUF_REV_GOOD = 0,    /* the sender is not revoked */
	RUF_REV_BEFORE = 1,  /* revoked, but rufd accepted the message before revoked_at */
	RUF_REV_FLAGGED = 2, /* revoked and accepted at or after revoked_at, or when unknown */
};

/*
 * Judges a message from certificate serial that rufd accepted at
 * accepted_at (Unix seconds from rufd's signed receipt; 0 if the reader has
 * no such time it can trust). The time the sender put in its own header is
 * deliberately not an input: a stolen device can claim any time. *rev
 * (optional) gets the revocation, or NULL for RUF_REV_GOOD.
 */
enum ruf_revocation_verdict ruf_directory_judge(const ruf_directory *d, uint64_t serial,
                                                uint64_t accepted_at,
                                                const struct ruf_dir_revocation **rev);

/* Frees d and everything it owns. Accepts NULL. */
void ruf_directory_free(ruf_directory *d);

#endif
