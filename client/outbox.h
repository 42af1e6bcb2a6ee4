/*
 * outbox.h - the field device's crash-safe outbox (docs/FIELD.md).
 *
 * <home>/outbox/ holds, per sealed report (ID = message id in hex):
 *   ID.env    the envelope, exactly as sealed (never changes but on re-seal)
 *   ID.key    until a verified receipt: the content key wrapped to the
 *             device's own X25519 key (crypto_box_seal of message id ||
 *             content key to the certificate's kx_pk); never in the envelope
 *   ID.meta   the metadata record (msgpack, format version 1); written
 *             last: an entry exists once its .meta is durable
 *   quarantine/  entries whose files are damaged, moved aside
 * Every file is written to a temporary name, fsynced, renamed and the
 * directory fsynced, so what a compose command reported is there after a
 * power cut.
 *
 * (The implementation is client/cli_outbox.c: the build links client/cli_*.c
 * into both programs.)
 */
#ifndef RUF_OUTBOX_H
#define RUF_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "cert.h"
#include "envelope.h"
#include "util.h"

#define OUTBOX_META_VERSION 1
#define OUTBOX_META_MAX (64u << 10)
#define OUTBOX_WRAP_BYTES (crypto_box_SEALBYTES + RUF_MSGID_BYTES + RUF_CONTENT_KEY_BYTES)
#define OUTBOX_QUEUES_MAX 1100 /* "a,b,c" of at most 16 queue names */

enum outbox_state {
	OUTBOX_PENDING = 0,
	OUTBOX_INFLIGHT = 1,  /* an upload began; confirmed = bytes HQ holds */
	OUTBOX_DELIVERED = 2, /* verified receipt held */
	OUTBOX_FAILED = 3,    /* reason says why; not retried */
};

struct outbox_entry {
	char id[2 * RUF_MSGID_BYTES + 1];
	uint8_t msgid[RUF_MSGID_BYTES];
	int kind, risk;
	uint64_t created;
	int state;
	uint64_t confirmed; /* bytes HQ confirmed holding */
	uint64_t total_len; /* envelope bytes */
	uint64_t dir_version;
	char reason[256]; /* failed: why; others: last transient error, may be "" */
	uint8_t *receipt; /* delivered: the exact WireReceipt bytes (malloc'ed) */
	size_t receipt_len;
	uint64_t store_seq, receipt_time;
	char queues[OUTBOX_QUEUES_MAX]; /* sealed-to queues, or the receipt's once delivered */
	uint64_t attempts;
	uint64_t updated;
};

/* <home>/outbox into out (PATH_MAX); created (0700) if missing. */
int outbox_dir(const char *home, char *out, size_t outlen);

/* Paths of an entry's files ("env", "key", "meta", "draft"). */
void outbox_path(const char *dir, const char *id, const char *ext, char *out, size_t outlen);

/* Encodes / strictly decodes the metadata record. */
int outbox_meta_encode(const struct outbox_entry *e, uint8_t **out, size_t *len);
int outbox_meta_decode(const uint8_t *buf, size_t len, struct outbox_entry *e);

/* Writes e's .meta crash-safely (replacing the old one). */
int outbox_save(const char *dir, const struct outbox_entry *e);

/*
 * Loads every entry (sorted: risk high first, then oldest first). A damaged
 * entry (unreadable record, missing or wrong-size envelope) is moved to
 * quarantine/ with a one-line message on stderr and skipped; it never
 * blocks the others. *out is owned by the caller: outbox_list_free.
 */
int outbox_list(const char *dir, struct outbox_entry **out, size_t *n);
void outbox_entry_clear(struct outbox_entry *e);
void outbox_list_free(struct outbox_entry *v, size_t n);

/* Wraps key to pk bound to msgid and writes ID.key crash-safely. */
int outbox_key_write(const char *dir, const struct outbox_entry *e,
                     const uint8_t key[RUF_CONTENT_KEY_BYTES], const uint8_t pk[32]);
/* Unwraps ID.key with the device's X25519 pair; RUF_E_NOTFOUND if destroyed. */
int outbox_key_read(const char *dir, const struct outbox_entry *e, const uint8_t pk[32],
                    const uint8_t sk[32], uint8_t key[RUF_CONTENT_KEY_BYTES]);
/* Overwrites ID.key with zeros, fsyncs, unlinks, fsyncs the directory. */
int outbox_key_destroy(const char *dir, const char *id);

/*
 * Verifies receipt (a WireReceipt) against server_cert under root, the
 * entry's message id and its envelope's hash; then records it (state
 * delivered, store seq, queues, time; durable) and destroys the key wrap.
 */
int outbox_deliver(const char *dir, struct outbox_entry *e, const uint8_t *receipt, size_t len,
                   const ruf_cert *server_cert, const ruf_cert *root);

/* Moves an entry's files to quarantine/ (messages on stderr). */
void outbox_quarantine(const char *dir, const char *id, const char *why);

const char *outbox_state_name(int state);

#endif
