/*
 * envelope.h - the sealed report envelope (DESIGN.md §4).
 *
 * One envelope is one file (or one upload); the same bytes travel by TCP,
 * USB stick or mail. Layout (byte-exact description in docs/PROTOCOL.md):
 *
 *   magic "RUFENV\r\n" | u32be head_len | EnvelopeHead (protobuf) |
 *   ciphertext (secretstream chunks) | Ed25519ph signature (64 bytes)
 *
 * The head carries the clear header (exact bytes, signed; routing metadata,
 * message id, created time, per-device sequence, size class), the per-queue
 * key wraps, the key commitment, the sender's certificate and the
 * secretstream header. The content is an inner preamble naming the message
 * id, the header hash, the recipients and the attachments' sizes and hashes,
 * then one zstd frame of the report and each attachment's bytes; it is
 * zero-padded to a size class (Padmé) and encrypted with
 * crypto_secretstream_xchacha20poly1305 in 64 KiB chunks under a key derived
 * from a fresh content key, each chunk authenticating the clear header hash.
 * The signature covers everything before it, with a domain separation
 * string. Memory stays bounded for attachments of any size.
 */
#ifndef RUF_ENVELOPE_H
#define RUF_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cert.h"
#include "directory.h"
#include "keystore.h"
#include "route.h"

#define RUF_MSGID_BYTES 16
#define RUF_CONTENT_KEY_BYTES 32
#define RUF_ENV_MAX_RECIPIENTS RUF_ROUTE_MAX_QUEUES
#define RUF_ENV_MAX_ATTACHMENTS 64
#define RUF_ENV_REPORT_MAX (8u << 20) /* serialized report, bytes */
#define RUF_ENV_HEAD_MAX (64u << 10)  /* EnvelopeHead, bytes */

/* The clear header, as C values. */
struct ruf_env_header {
	uint32_t version;
	uint8_t message_id[RUF_MSGID_BYTES];
	uint64_t created;  /* Unix seconds */
	uint64_t sequence; /* per-device, strictly increasing */
	uint64_t device_serial;
	int kind; /* enum ruf_kind */
	char situation[RUF_IDENT_MAX + 1];
	char country[RUF_IDENT_MAX + 1];
	char region[RUF_IDENT_MAX + 1];
	int risk; /* enum ruf_risk */
	uint32_t flags;
	uint64_t size_class;                  /* padded content length in bytes */
	uint64_t directory_version;           /* directory the sender sealed under */
	uint8_t reply_to[RUF_MSGID_BYTES];    /* replies: the message answered; zero otherwise */
	char reply_device[RUF_IDENT_MAX + 1]; /* replies: the device addressed */
};

/* The routing view of a header (pointers into h). */
void ruf_env_route_header(const struct ruf_env_header *h, struct ruf_route_header *out);

struct ruf_seal_recipient {
	const char *queue;
	uint32_t epoch;
	const uint8_t *pk; /* RUF_KX_PK_BYTES */
};

struct ruf_seal_attachment {
	const char *name;       /* file name shown to the desk (no '/') */
	const char *media_type; /* e.g. "image/jpeg"; may be NULL */
	const char *path;       /* read twice (size/hash, then content) */
};

struct ruf_seal_params {
	/* Routing fields, created, sequence, device_serial, directory_version
	 * and reply fields are taken from hdr; message_id is generated when
	 * all zero; version and size_class are set by seal. */
	const struct ruf_env_header *hdr;
	const uint8_t *report; /* serialized Report protobuf (report.h) */
	size_t report_len;
	const struct ruf_seal_attachment *attachments;
	size_t n_attachments;
	const struct ruf_seal_recipient *recipients;
	size_t n_recipients;
	const uint8_t *device_cert; /* exact bytes */
	size_t device_cert_len;
	const uint8_t *sign_sk; /* RUF_SIGN_SK_BYTES */
	int zstd_level;         /* 0 = default (3) */
};

/*
 * Seals an envelope and writes it to out_fd (sequentially, never seeking).
 * Returns 0, with the message id in msgid (if not NULL) and, if content_key
 * is not NULL, the content key (RUF_CONTENT_KEY_BYTES, for the sender's own
 * outbox wrap; wipe it after use). The caller should fsync out_fd. Fails with
 * RUF_E_INVAL for bad parameters (header fields, recipients: 1..16 unique
 * valid queue names with epoch >= 1, attachment names, zstd_level 0..19),
 * RUF_E_WEAK_KEY for a small-order queue key, RUF_E_TOO_LARGE past the limits,
 * and RUF_E_ENV_ATTACHMENT if an attachment changed between the two passes;
 * on any failure out_fd holds a partial envelope the caller must discard.
 * WARNING: each attachment is read twice; the report buffer must not change
 * during the call.
 */
int ruf_envelope_seal(const struct ruf_seal_params *p, int out_fd, uint8_t msgid[RUF_MSGID_BYTES],
                      uint8_t *content_key) __attribute__((warn_unused_result));

/* The clear parts of an envelope, readable without any key. */
struct ruf_env_info {
	struct ruf_env_header hdr;
	uint8_t *header_raw; /* exact signed header bytes */
	size_t header_len;
	struct {
		char queue[RUF_QUEUE_NAME_MAX + 1];
		uint32_t epoch;
	} recipients[RUF_ENV_MAX_RECIPIENTS];
	size_t n_recipients;
	ruf_cert *sender;   /* parsed, not verified by ruf_envelope_inspect */
	uint64_t total_len; /* bytes of the whole envelope */
	uint8_t hash[32];   /* BLAKE2b-256 of the whole envelope (its identity for receipts) */
};

/*
 * Parses the clear parts of the envelope in fd, checking structure and
 * lengths only (no signature, no key). *out is owned by the caller.
 */
int ruf_envelope_inspect(int fd, struct ruf_env_info **out) __attribute__((warn_unused_result));

/*
 * What a submission names an envelope by: its message id, BLAKE2b-256 hash
 * and length, after ruf_envelope_inspect()'s structure checks but without
 * parsing the sender certificate (the server checks it; the client library
 * calls this for every submission).
 */
int ruf_envelope_identity(int fd, uint8_t id[RUF_MSGID_BYTES], uint8_t hash[32], uint64_t *total)
    __attribute__((warn_unused_result));

/*
 * Verifies an envelope without opening it (what rufd does): structure,
 * version, sender certificate under root (role device, valid at now, not
 * revoked in dir, permitted for the header's situation), header matches the
 * certificate, signature over the whole file. dir may be NULL (no
 * revocation check). Returns the first failing check's error, in the order
 * of enum ruf_err's envelope group. *out (optional) gets the clear parts.
 */
int ruf_envelope_verify(int fd, const ruf_cert *root, const ruf_directory *dir, uint64_t now,
                        struct ruf_env_info **out) __attribute__((warn_unused_result));

/*
 * ruf_envelope_verify() that also says in d (may be NULL) why a check failed,
 * e.g. the certificate error behind ENV_SENDER ("sender certificate:
 * certificate has expired"). For the local log or user only.
 */
int ruf_envelope_verify_diag(int fd, const ruf_cert *root, const ruf_directory *dir, uint64_t now,
                             ruf_diag *d, struct ruf_env_info **out)
    __attribute__((warn_unused_result));

/*
 * ruf_envelope_verify_diag() of an envelope held in memory (len bytes at
 * buf). sender (may be NULL) is a certificate the caller has itself parsed
 * and verified under a root with root's key (rufd: the connected peer's, at
 * the handshake): when the envelope carries exactly its bytes, its parse
 * checks and signature are not checked again (its issuer, its and root's
 * validity at now, role, revocation in dir, situation and the header match
 * still are), and (*out)->sender is then NULL (it is sender). Otherwise the
 * envelope's certificate is checked in full as by ruf_envelope_verify().
 */
int ruf_envelope_verify_mem(const uint8_t *buf, size_t len, const ruf_cert *sender,
                            const ruf_cert *root, const ruf_directory *dir, uint64_t now,
                            ruf_diag *d, struct ruf_env_info **out)
    __attribute__((warn_unused_result));

struct ruf_opened_attachment {
	char *name;
	char *media_type;
	uint64_t size;
	uint8_t hash[32]; /* BLAKE2b-256 of the content, checked */
	char *saved_path; /* when saved, else NULL */
};

struct ruf_opened {
	struct ruf_env_info *info;
	char queue[RUF_QUEUE_NAME_MAX + 1]; /* the queue key that opened it */
	uint8_t *report;                    /* serialized Report protobuf */
	size_t report_len;
	struct ruf_opened_attachment *attachments;
	size_t n_attachments;
};

struct ruf_open_ctx {
	const ruf_cert *root;
	const ruf_directory *dir; /* may be NULL: no revocation check */
	const ruf_keystore *ks;   /* queue keys (RUF_KEY_QUEUE) */
	uint64_t now;
	const char *attach_dir; /* save attachments here; NULL = check hashes only */
};

/*
 * Verifies and opens the envelope in fd: ruf_envelope_verify()'s checks,
 * then find a recipient this keystore holds a queue key for
 * (ENV_NOT_RECIPIENT, ENV_EPOCH), unwrap (ENV_UNWRAP), key commitment
 * (ENV_COMMITMENT), decrypt (ENV_DECRYPT, ENV_TRUNCATED), decompress
 * (ENV_DECOMPRESS, ENV_PADDING), inner binding of message id and
 * recipients (ENV_READDRESSED), content (ENV_CONTENT, ENV_ATTACHMENT), and
 * that the file did not change between passes (ENV_CHANGED). Attachments
 * are only left in attach_dir when every check passed. *out is owned by the
 * caller.
 */
int ruf_envelope_open(int fd, const struct ruf_open_ctx *ctx, struct ruf_opened **out)
    __attribute__((warn_unused_result));

/* ruf_envelope_open() with details of a failure in d (may be NULL). */
int ruf_envelope_open_diag(int fd, const struct ruf_open_ctx *ctx, ruf_diag *d,
                           struct ruf_opened **out) __attribute__((warn_unused_result));

void ruf_env_info_free(struct ruf_env_info *info);
void ruf_opened_free(struct ruf_opened *o);

#endif

/*
 * --- Added by the field client (crypto/envelope_reseal.c) ----------------
 * The sender's own path back into an envelope it sealed, for re-sealing to
 * the queues of a newer directory with the SAME message id (rufd answered
 * "stale directory"). The sender kept the content key (outbox wrap).
 */

/*
 * Opens the envelope in fd with its content key instead of a queue key:
 * ruf_envelope_verify()'s checks (root, dir, now), the key commitment
 * (ENV_COMMITMENT), then decryption and every content check of
 * ruf_envelope_open() (the inner binding to the message id and the head's
 * recipients included). Attachments are saved into attach_dir (required,
 * so re-sealing can read them). *out is owned by the caller.
 */
int ruf_envelope_open_with_key(int fd, const ruf_cert *root, const ruf_directory *dir,
                               uint64_t now, const uint8_t content_key[RUF_CONTENT_KEY_BYTES],
                               const char *attach_dir, struct ruf_opened **out)
    __attribute__((warn_unused_result));
