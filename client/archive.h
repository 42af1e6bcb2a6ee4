/*
 * archive.h - the desk's (and the device inbox's) local archive of received
 * envelopes (docs/DESK.md).
 *
 *   <home>/archive/<id>.env     the envelope exactly as received (already
 *                               encrypted to the queue key) or as sent
 *   <home>/archive/<id>.idx     its index record: msgpack, format version 2,
 *                               encrypted (XChaCha20-Poly1305) under a key
 *                               derived from the identity's kx secret key
 *   <home>/quarantine/<name>.env + <name>.reason
 *                               envelopes that failed verification
 *
 * Every file is written crash-safely (temporary file, write, fsync, rename,
 * fsync directory): once ruf_archive_put() returns 0 the message survives a
 * crash, so the delivery may be acknowledged.
 */
#ifndef RUF_ARCHIVE_H
#define RUF_ARCHIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "envelope.h"
#include "keystore.h"

#define RUF_ARCHIVE_FORMAT 2u /* 1: without accepted (read as 0) */
#define RUF_ARCHIVE_TITLE_MAX 255
#define RUF_ARCHIVE_STATUS_MAX 31
#define RUF_ARCHIVE_IDX_MAX (16u << 10) /* bytes of one index file */

enum ruf_archive_dir {
	RUF_ARCHIVE_RECEIVED = 0,
	RUF_ARCHIVE_SENT = 1, /* a reply this desk sent */
};

/* One index record: clear-header-level data plus the title (and reply status). */
struct ruf_archive_rec {
	uint8_t id[RUF_MSGID_BYTES];
	char queues[RUF_ENV_MAX_RECIPIENTS][RUF_QUEUE_NAME_MAX + 1]; /* arrived on */
	size_t n_queues;
	uint64_t received; /* Unix seconds: archived (or sent) */
	struct ruf_env_header hdr;
	char sender[RUF_IDENT_MAX + 1]; /* certificate subject */
	uint64_t sender_serial;
	int sender_role;
	char verification[64]; /* "verified" (only verified envelopes are archived) */
	char title[RUF_ARCHIVE_TITLE_MAX + 1];
	int direction;                           /* enum ruf_archive_dir */
	char status[RUF_ARCHIVE_STATUS_MAX + 1]; /* replies: the status */
	uint8_t hash[32];                        /* BLAKE2b-256 of the envelope */
	uint64_t total_len;
	uint64_t accepted; /* rufd's verified signed store time (receipt), 0 if unknown */
	/*
	 * Not stored: the sender's revocation under the directory at hand, set
	 * by desk_judge() (zero: not judged, or not revoked).
	 */
	int verdict; /* enum ruf_revocation_verdict */
	uint64_t revoked_at;
	char revoked_reason[RUF_DIR_REASON_MAX + 1];
};

typedef struct ruf_archive ruf_archive;

/*
 * Opens (creating the directories, mode 0700) the archive under home. The
 * index key is derived from ks's "kx" key; RUF_E_NO_KEY without one.
 */
int ruf_archive_open(const char *home, const ruf_keystore *ks, ruf_archive **out)
    __attribute__((warn_unused_result));
void ruf_archive_close(ruf_archive *a);

/* <home>/archive/<hex id>.env into out (PATH_MAX). */
void ruf_archive_env_path(const ruf_archive *a, const uint8_t id[RUF_MSGID_BYTES], char *out,
                          size_t outlen);
/* A scratch file name in the archive directory, for receiving (PATH_MAX). */
void ruf_archive_tmp_path(const ruf_archive *a, const char *tag, char *out, size_t outlen);

/* Reads the index record of id: RUF_E_NOTFOUND if absent, RUF_E_FORMAT if damaged. */
int ruf_archive_get(const ruf_archive *a, const uint8_t id[RUF_MSGID_BYTES],
                    struct ruf_archive_rec *out) __attribute__((warn_unused_result));

/*
 * Archives an envelope: the file at tmp_path (already complete; it is
 * fsynced and renamed to <id>.env) and the record. If id is already archived
 * with the same hash this only adds rec's queues to the stored record (a
 * duplicate) and removes tmp_path; *dup says which happened. A different hash
 * under the same id is RUF_E_EXISTS (the caller quarantines it).
 */
int ruf_archive_put(ruf_archive *a, const char *tmp_path, const struct ruf_archive_rec *rec,
                    bool *dup) __attribute__((warn_unused_result));

/* Moves tmp_path to the quarantine as <name>.env with <name>.reason (one line). */
int ruf_archive_quarantine(ruf_archive *a, const char *tmp_path, const char *name,
                           const char *reason) __attribute__((warn_unused_result));

/*
 * Every index record, sorted by received time then id; damaged records are
 * skipped with a warning on stderr. The caller frees *out.
 */
int ruf_archive_list(const ruf_archive *a, struct ruf_archive_rec **out, size_t *n)
    __attribute__((warn_unused_result));

/* Finds one id by a hex prefix (>= 4 digits): RUF_E_NOTFOUND, RUF_E_INVAL if ambiguous. */
int ruf_archive_resolve(const ruf_archive *a, const char *prefix, uint8_t id[RUF_MSGID_BYTES])
    __attribute__((warn_unused_result));

/* msgpack encoding of a record (exposed for tests and the fuzz target). */
int ruf_archive_rec_encode(const struct ruf_archive_rec *r, uint8_t *buf, size_t cap, size_t *len)
    __attribute__((warn_unused_result));
int ruf_archive_rec_decode(const uint8_t *buf, size_t len, struct ruf_archive_rec *out)
    __attribute__((warn_unused_result));

#endif
