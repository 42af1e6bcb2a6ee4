/*
 * bundle.h - envelopes carried by hand (USB stick, mail) instead of TCP, and
 * the receipts HQ gives back for them (docs/FIELD.md, byte-exact).
 *
 *   header   "RUFBNDL\n" | u16be version (1) | u16be kind | u32be count
 *   kind 1 (envelopes), count entries of
 *            u8 0xE1 | message id (16) | u64be len (1..2^32-1) | envelope | BLAKE2b-256(envelope)
 *   kind 2 (receipts), u32be cert_len (1..16384) | HQ server certificate, then count entries of
 *            u8 0xC1 | message id (16) | u32be len (1..4096) | WireReceipt bytes
 *   trailer  "RUFBEND\n", then end of file
 *
 * count is 0..4096. The reader is strict: every length is checked against
 * the bytes that remain before anything is read or allocated, tags and the
 * trailer must be exact, nothing may follow the trailer. A damaged envelope
 * (hash mismatch) is reported for that entry and the others are still
 * read; damaged framing ends the read with an error naming the entry.
 *
 * (The implementation is client/cli_bundle.c: the build links client/cli_*.c
 * into both programs.)
 */
#ifndef RUF_BUNDLE_H
#define RUF_BUNDLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define BUNDLE_MAGIC "RUFBNDL\n"
#define BUNDLE_TRAILER "RUFBEND\n"
#define BUNDLE_VERSION 1
#define BUNDLE_KIND_ENVELOPES 1
#define BUNDLE_KIND_RECEIPTS 2
#define BUNDLE_MAX_ENTRIES 4096
#define BUNDLE_ENV_MAX ((1ull << 32) - 1)
#define BUNDLE_CERT_MAX 16384
#define BUNDLE_RECEIPT_MAX 4096
#define BUNDLE_TAG_ENV 0xE1
#define BUNDLE_TAG_RECEIPT 0xC1

struct bundle_entry {
	size_t index;      /* 0-based position in the bundle */
	uint8_t msgid[16]; /* as the bundle names it */
	uint64_t off, len; /* where the envelope / receipt bytes are in the file */
	bool hash_ok;      /* envelopes: the bytes match their hash */
};

/* Called per entry; a nonzero return stops the read and is returned. */
typedef int (*bundle_cb)(void *ctx, int fd, const struct bundle_entry *e);

/*
 * Reads the bundle in fd (a regular file or memfd), which must be of kind.
 * For receipts, *cert / *cert_len (malloc'ed, caller frees) get the server
 * certificate's bytes. Returns 0, a callback's result, or RUF_E_FORMAT /
 * RUF_E_TRUNCATED / RUF_E_TRAILING / RUF_E_VERSION with d naming where.
 */
int bundle_read(int fd, int kind, bundle_cb cb, void *ctx, uint8_t **cert, size_t *cert_len,
                ruf_diag *d);

/* Writing: begin (count known in advance), entries, end. */
int bundle_write_begin(int fd, int kind, uint32_t count, const uint8_t *cert, size_t cert_len);
/* Copies len bytes of src_fd (from offset 0) as one envelope entry. */
int bundle_write_envelope(int fd, const uint8_t msgid[16], int src_fd, uint64_t len);
int bundle_write_receipt(int fd, const uint8_t msgid[16], const uint8_t *r, size_t len);
int bundle_write_end(int fd);

#endif
