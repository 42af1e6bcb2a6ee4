/*
 * envelope_internal.h - pieces of envelope.c exposed to its tests, fuzzers and
 * benchmark only. Nothing outside crypto/envelope.c, tests/ and bench/ may
 * include this header.
 */
#ifndef RUF_ENVELOPE_INTERNAL_H
#define RUF_ENVELOPE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "envelope.h"

#define RUF__ENV_CHUNK 65536u           /* plaintext bytes per secretstream chunk */
#define RUF__ENV_PAD_MIN 256u           /* smallest size class */
#define RUF__ENV_SIZE_MAX (1ull << 40)  /* largest size class and attachment size */
#define RUF__ENV_INNER_MAX (64u << 10)  /* serialized Inner, bytes */
#define RUF__ENV_ZSTD_WINDOW_LOG_MAX 23 /* 8 MiB: levels 1..19 stay below it */
#define RUF__ENV_ZSTD_LEVEL_MAX 19

/* The padded content length for n bytes of content (Padmé, at least 256). */
uint64_t ruf__env_pad_len(uint64_t n);

/* Ciphertext length of a size class: N + 17 per 64 KiB chunk. */
uint64_t ruf__env_ct_len(uint64_t size_class);

/* True if name is acceptable as an attachment file name (see envelope.md). */
bool ruf__env_attachment_name_ok(const char *name);

/*
 * The content parser: it consumes the decrypted, padded content stream
 * (u32be inner_len | Inner | zstd frame | zero padding) in pieces of any size
 * and checks it against what the clear head says. Envelope errors are
 * recorded, not returned by feed, so the caller keeps decrypting (an
 * authentication failure later in the stream outranks them); finish returns
 * the first failing check in the order ENV_DECOMPRESS, ENV_PADDING,
 * ENV_READDRESSED, ENV_CONTENT, ENV_ATTACHMENT.
 */
struct ruf__env_expect {
	const uint8_t *message_id;  /* RUF_MSGID_BYTES */
	const uint8_t *header_hash; /* 32 bytes */
	const char *const *queues;  /* the head's recipients, in order */
	const uint32_t *epochs;
	size_t n_recipients;
	uint64_t size_class; /* total bytes that will be fed */
	int attach_dirfd;    /* write attachments to temp files here; -1 = hash only */
};

struct ruf__env_content;

int ruf__env_content_new(const struct ruf__env_expect *e, struct ruf__env_content **out);
/* Returns 0, or a local error (RUF_E_NOMEM, RUF_E_IO...) that ends the opening. */
int ruf__env_content_feed(struct ruf__env_content *c, const uint8_t *p, size_t n);
/* Returns 0 or the first envelope content error (see above). */
int ruf__env_content_finish(struct ruf__env_content *c);
/*
 * After a successful finish: moves the report and the attachment list into o
 * and, when attach_dir is set, gives the temp files their names (never
 * replacing an existing file: RUF_E_ENV_CONTENT if one appeared).
 */
int ruf__env_content_take(struct ruf__env_content *c, const char *attach_dir, struct ruf_opened *o);
/* Frees c and removes any temp file it still owns. Accepts NULL. */
void ruf__env_content_free(struct ruf__env_content *c);

/*
 * Test-only seal variations: each produces a correctly signed envelope that
 * breaks one rule a sealer must keep, so the tests can check the opener
 * catches it. Never used outside tests.
 */
struct ruf__seal_tamper {
	uint32_t version;          /* header version to write; 0 = 1 */
	const char *inner_queue0;  /* replaces the first Inner recipient's queue name */
	uint32_t inner_epoch0;     /* replaces the first Inner recipient's epoch when != 0 */
	bool bad_commitment;       /* flips a bit of the commitment */
	bool bad_header_hash;      /* flips a bit of Inner.header_hash */
	bool bad_padding;          /* last padding byte 0x01 (needs padding to exist) */
	bool no_final_tag;         /* last chunk tagged MESSAGE */
	bool early_final_tag;      /* first chunk tagged FINAL (needs >= 2 chunks) */
	bool bad_attachment_hash;  /* Inner records a wrong hash for attachment 0 */
	uint64_t extra_size_class; /* added to the size class (more zero padding) */
};

/*
 * Tests only: when set, called between the two passes of sealing and of
 * opening, so a test can change an input file or the envelope in between.
 * Not thread-safe; NULL in every program.
 */
extern void (*ruf__env_between_passes)(void *arg);
extern void *ruf__env_between_passes_arg;

int ruf__envelope_seal_tampered(const struct ruf_seal_params *p, const struct ruf__seal_tamper *t,
                                int out_fd, uint8_t msgid[RUF_MSGID_BYTES], uint8_t *content_key)
    __attribute__((warn_unused_result));

#endif
