/*
 * store.h - rufd's durable store, behind a backend-neutral interface.
 *
 * What is stored (docs/STORE.md has the layout of each backend):
 *   - every accepted envelope, once, by message id, however many queues it
 *     is routed to;
 *   - per queue, an ordered list of references: (queue, seq) -> message id,
 *     seq starting at 1 and growing by one per envelope appended;
 *   - a dedup record per message id: envelope hash, queues with their seqs,
 *     the global store_seq, time, device serial, and the signed receipt;
 *   - durable per-desk cursors: (desk serial, queue) -> last acknowledged seq;
 *   - a hash-chained audit log (received, routed, delivered, acknowledged).
 *
 * Backends are chosen by name at open time ("lmdb", or the replicated
 * "jetstream" when built with libnats), the way OpenSMTPD picks queue_fs or queue_ram: routing
 * and protocol code only ever see this header.
 *
 * Threads: writes go through a batch, and ONE thread at a time may hold a
 * batch (rufd's group-commit worker, daemon/commit.c). All read functions
 * (ruf_store_lookup, _queue_read, _cursor, ...) open their own read-only
 * snapshot and may be called from any thread, concurrently with a batch;
 * they never see a batch's writes before it commits.
 *
 * Durability: ruf_store_batch_commit returning 0 means every write of the
 * batch is on stable storage (fsynced). Before that, none of it is visible
 * to readers, and after a crash none of it exists. A batch is all or
 * nothing: there is no state in which part of a batch is visible.
 *
 * Errors: RUF_E_NOSPC when the store's map (or the disk) is full: the
 * batch is dead, nothing of it is kept, earlier commits are intact, and the
 * store works again once space is made (ruf_store_set_map_size, a bigger
 * map_size at the next open, or free disk). RUF_E_VERSION (with a diag
 * naming the version found) when the store on disk has a format this build
 * does not know: rufd must refuse to start rather than guess.
 * RUF_E_STORE_AUDIT when the audit hash chain does not verify. RUF_E_FORMAT
 * when a stored record is malformed.
 *
 * Replicated backend ("jetstream", docs/STORE.md): ruf_store_batch_commit
 * returns 0 only once the batch is stored on a quorum of the cluster and in
 * the local view. RUF_E_STORE_CONFLICT: another instance committed first;
 * nothing of the batch is kept and the caller redoes the whole batch (a new
 * batch_begin catches up first, so its puts may now be duplicates).
 * RUF_E_STORE_UNAVAILABLE: the cluster is unreachable or has no quorum;
 * nothing is acknowledged (the batch may still become visible later if the
 * cluster stored it after all, exactly once, by message id): retry later.
 * Reads never touch the network.
 */
#ifndef RUF_STORE_H
#define RUF_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "util.h"

#define RUF_STORE_MSGID_BYTES 16            /* == RUF_MSGID_BYTES (envelope.h) */
#define RUF_STORE_HASH_BYTES 32             /* BLAKE2b-256 */
#define RUF_STORE_MAX_QUEUES 16             /* == RUF_ROUTE_MAX_QUEUES (route.h) */
#define RUF_STORE_RECEIPT_MAX 4096          /* signed receipt frame bytes */
#define RUF_STORE_WHO_MAX 128               /* audit "who", bytes */
#define RUF_STORE_ENVELOPE_MAX (1ull << 32) /* exclusive upper bound, bytes */
#define RUF_STORE_DEFAULT_MAP_SIZE (1ull << 30)

typedef struct ruf_store ruf_store;
typedef struct ruf_store_batch ruf_store_batch;

#define RUF_STORE_BLOB_NAME_MAX 64        /* [a-z0-9._-]{1,64} */
#define RUF_STORE_BLOB_MAX (1u << 20)     /* bytes */
#define RUF_STORE_DEFAULT_PREFIX "RUF"    /* jetstream: stream name prefix */
#define RUF_STORE_DEFAULT_REPLICAS 3      /* jetstream: copies of every stream */
#define RUF_STORE_DEFAULT_TIMEOUT_MS 5000 /* jetstream: publish / ack wait */

struct ruf_store_opts {
	uint64_t map_size;    /* bytes the store may grow to; 0: RUF_STORE_DEFAULT_MAP_SIZE */
	unsigned max_readers; /* concurrent read snapshots; 0: backend default (126) */
	/*
	 * "jetstream" only (LMDB ignores them). The path given to
	 * ruf_store_open holds this instance's local view of the streams.
	 */
	const char *servers; /* comma-separated nats:// (or tls://) URLs; required */
	const char *prefix;  /* stream prefix [A-Z0-9_]{1,32}; NULL: RUF_STORE_DEFAULT_PREFIX */
	unsigned replicas;   /* stream replicas 1..5; 0: RUF_STORE_DEFAULT_REPLICAS */
	const char *creds;   /* NATS credentials file, or NULL */
	const char *tls_ca;  /* CA file for tls:// servers, or NULL */
	unsigned timeout_ms; /* publish / ack / fetch timeout; 0: RUF_STORE_DEFAULT_TIMEOUT_MS */
};

/*
 * Opens (creating it when missing, mode 0700) the store at path with the
 * named backend ("lmdb"). o may be NULL for defaults. Returns 0 and *out,
 * owned by the caller (ruf_store_close), or RUF_E_NOTFOUND (unknown
 * backend), RUF_E_VERSION (format on disk unknown; d says which),
 * RUF_E_FORMAT, RUF_E_IO, RUF_E_PERM, RUF_E_NOMEM. The map size of an
 * existing store may be raised (or lowered to no less than what is used)
 * by opening it with a different map_size.
 */
int ruf_store_open(const char *backend, const char *path, const struct ruf_store_opts *o,
                   ruf_diag *d, ruf_store **out);

/* Closes s (NULL allowed). WARNING: no batch may be open, no read running. */
void ruf_store_close(ruf_store *s);

/*
 * Changes the map size of an open store (for RUF_E_NOSPC from a full map:
 * raise it, e.g. on SIGHUP, and the next batch has room). A size below what
 * is used becomes the used size. Waits for running reads to finish.
 * Returns 0, RUF_E_INVAL, or RUF_E_IO. WARNING: the calling thread must
 * not hold a batch or be inside a ruf_store_queue_read callback (deadlock).
 */
int ruf_store_set_map_size(ruf_store *s, uint64_t bytes);

/* ---- writing: one batch = one transaction = one group commit ---- */

/*
 * Starts a batch. Only one batch may be open at a time (a second caller
 * blocks until the first ends). *out is owned by the store and freed by
 * ruf_store_batch_commit or ruf_store_batch_abort, exactly one of which
 * must be called, from the same thread.
 */
int ruf_store_batch_begin(ruf_store *s, ruf_store_batch **out);

/* One envelope to store: bytes from memory, or from a spool file. */
struct ruf_store_put {
	const uint8_t *message_id; /* RUF_STORE_MSGID_BYTES */
	const uint8_t *hash;       /* RUF_STORE_HASH_BYTES, of the whole envelope */
	const uint8_t *envelope;   /* len bytes; or NULL to read them from fd */
	int fd;                    /* when envelope == NULL: bytes [0, len) are read (pread) */
	uint64_t len;              /* 1 .. RUF_STORE_ENVELOPE_MAX - 1 */
	const char *const *queues; /* destination queue names, distinct, ruf_is_queue_name */
	size_t n_queues;           /* 1 .. RUF_STORE_MAX_QUEUES */
	uint64_t device_serial;    /* serial of the submitting device's certificate */
	uint64_t time;             /* Unix seconds the envelope was accepted */
};

/* The dedup record of one stored envelope. */
struct ruf_store_record {
	uint8_t message_id[RUF_STORE_MSGID_BYTES];
	uint8_t hash[RUF_STORE_HASH_BYTES];
	uint64_t store_seq; /* global, 1, 2, ... in commit order */
	uint64_t time;
	uint64_t device_serial;
	uint64_t envelope_len;
	size_t n_queues;
	char queues[RUF_STORE_MAX_QUEUES][RUF_QUEUE_NAME_MAX + 1]; /* in put order */
	uint64_t queue_seq[RUF_STORE_MAX_QUEUES]; /* seq of the envelope in queues[i] */
	size_t receipt_len;                       /* 0 until ruf_store_set_receipt */
	uint8_t receipt[RUF_STORE_RECEIPT_MAX];
};

struct ruf_store_put_result {
	/*
	 * true: the message id was already stored (by an earlier commit, or
	 * earlier in this batch); nothing was written and rec is the ORIGINAL
	 * record, with its receipt (receipt_len may be 0 if the original was
	 * put in this batch and its receipt is not set yet). The caller should
	 * compare rec.hash with its own: same id, other bytes is a different
	 * envelope reusing an id, not a retransmission.
	 * false: stored; rec holds the new store_seq and per-queue seqs, and
	 * receipt_len is 0.
	 */
	bool duplicate;
	struct ruf_store_record rec;
};

/*
 * Stores p's envelope once and appends a reference to it to each of
 * p->queues. The receipt must carry store_seq, so it is signed after this
 * returns and attached with ruf_store_set_receipt in the SAME batch.
 * Returns 0 (r filled), RUF_E_INVAL (bad argument; the batch stays usable),
 * or a batch-killing error: RUF_E_NOSPC (map full), RUF_E_IO,
 * RUF_E_TRUNCATED (fd shorter than len), RUF_E_FORMAT (a stored record is
 * damaged). After a batch-killing error every further call on b returns the
 * same error and the caller must abort b (it may retry the other items in
 * a new batch).
 */
int ruf_store_put_envelope(ruf_store_batch *b, const struct ruf_store_put *p,
                           struct ruf_store_put_result *r);

/*
 * Attaches the signed receipt (1..RUF_STORE_RECEIPT_MAX bytes, copied) to
 * message_id's record. Returns 0, RUF_E_NOTFOUND (no such message),
 * RUF_E_EXISTS (a receipt is already set: receipts are written once),
 * RUF_E_INVAL, or a batch-killing error as above.
 */
int ruf_store_set_receipt(ruf_store_batch *b, const uint8_t *message_id, const uint8_t *receipt,
                          size_t len);

/*
 * Records that desk desk_serial has acknowledged queue up to and including
 * seq: the durable cursor becomes max(cursor, seq), never less (a late or
 * repeated ack is harmless and returns 0). The cursor is a low-water mark:
 * the caller passes seq only once every seq <= it is acknowledged. Returns
 * 0, RUF_E_INVAL (bad queue, seq 0, or seq beyond the queue's last seq), or
 * a batch-killing error.
 */
int ruf_store_ack(ruf_store_batch *b, uint64_t desk_serial, const char *queue, uint64_t seq,
                  uint64_t time);

enum ruf_store_event {
	RUF_STORE_EV_RECEIVED = 1,     /* an envelope was accepted from a device */
	RUF_STORE_EV_ROUTED = 2,       /* appended to a queue */
	RUF_STORE_EV_DELIVERED = 3,    /* sent to a desk */
	RUF_STORE_EV_ACKNOWLEDGED = 4, /* a desk acknowledged it */
	RUF_STORE_EV_MAX = 4,
};

/*
 * Appends an audit entry: event, who (1..RUF_STORE_WHO_MAX bytes, e.g.
 * "device:17", "desk:42"; never report contents), message_id (NULL or
 * RUF_STORE_MSGID_BYTES), queue (NULL or a queue name), time (Unix
 * seconds). Entries are numbered 1, 2, ... and hash-chained (docs/STORE.md).
 * Returns 0, RUF_E_INVAL, or a batch-killing error.
 */
int ruf_store_audit(ruf_store_batch *b, int event, const char *who, const uint8_t *message_id,
                    const char *queue, uint64_t time);

/*
 * Commits b and frees it. Returns 0 only once the whole batch is durable.
 * Otherwise (RUF_E_NOSPC when the map or disk is full, RUF_E_IO, or the
 * batch's earlier error) nothing of b is kept. Either way b is gone.
 */
int ruf_store_batch_commit(ruf_store_batch *b);

/* Discards b's writes and frees it (NULL allowed). */
void ruf_store_batch_abort(ruf_store_batch *b);

/*
 * Stores a small named blob shared by every instance on the same store
 * (rufd keeps the signed directory as "directory"), replacing any earlier
 * value when the batch commits. name matches [a-z0-9._-]{1,64}; len is
 * 1..RUF_STORE_BLOB_MAX (data copied). Returns 0, RUF_E_INVAL, or a
 * batch-killing error.
 */
int ruf_store_blob_put(ruf_store_batch *b, const char *name, const uint8_t *data, size_t len);

/*
 * Copies blob name into *data (malloc'ed, the caller frees it) and *len.
 * Returns 0, RUF_E_NOTFOUND, RUF_E_INVAL, RUF_E_NOMEM, or RUF_E_FORMAT.
 */
int ruf_store_blob_get(ruf_store *s, const char *name, uint8_t **data, size_t *len);

/* ---- several instances on one replicated store ("jetstream") ---- */

enum {
	RUF_STORE_NOTE_QUEUES = 1, /* another instance's entries are readable: queues grew */
	RUF_STORE_NOTE_BLOB = 2,   /* another instance changed blob `blob` */
	RUF_STORE_NOTE_STATE = 3,  /* writes became (un)available: `available` */
};

struct ruf_store_note {
	int kind;                                     /* RUF_STORE_NOTE_* */
	const char (*queues)[RUF_QUEUE_NAME_MAX + 1]; /* QUEUES: the queues that grew */
	size_t n_queues;
	const char *blob; /* BLOB: its name */
	bool available;   /* STATE: true when writes can succeed again */
};

/*
 * Called on a store thread (never the caller's, never inside a batch of
 * the caller) with n valid during the call only; keep it short (rufd
 * signals a uv_async). LMDB never calls it.
 */
typedef void (*ruf_store_notify_cb)(void *ctx, const struct ruf_store_note *n);

/*
 * Sets (cb NULL: clears) the callback. A call running on the store thread
 * has finished when this returns, so ctx may be freed after clearing.
 */
void ruf_store_set_notify(ruf_store *s, ruf_store_notify_cb cb, void *ctx);

/*
 * 1 when writes can succeed now, 0 when a commit would return
 * RUF_E_STORE_UNAVAILABLE at once (jetstream: after a failed commit or
 * read, until the store's own probe write is stored again; checked every
 * second). Never blocks. LMDB: always 1.
 */
int ruf_store_available(ruf_store *s);

/* ---- reading: each call is one consistent read-only snapshot ---- */

/* Fills *out with message_id's record. Returns 0 or RUF_E_NOTFOUND. */
int ruf_store_lookup(ruf_store *s, const uint8_t *message_id, struct ruf_store_record *out);

/* One queue entry, valid only during the callback (it points into the store). */
struct ruf_store_entry {
	const char *queue;
	uint64_t seq;
	const uint8_t *message_id; /* RUF_STORE_MSGID_BYTES */
	const uint8_t *envelope;   /* len bytes, read-only, valid during the callback only */
	uint64_t len;
};

/*
 * Calls cb for up to max entries of queue with seq > after_seq, in seq
 * order. cb returns 0 to go on, > 0 to stop (ruf_store_queue_read then
 * returns 0), < 0 to stop with that error. *n (may be NULL) counts the
 * entries passed to cb. An unknown queue is an empty one. WARNING: the
 * snapshot is held during the callbacks; keep them short (copy out what
 * must outlive them, or use ruf_store_envelope_read).
 */
typedef int (*ruf_store_entry_cb)(void *ctx, const struct ruf_store_entry *e);
int ruf_store_queue_read(ruf_store *s, const char *queue, uint64_t after_seq, size_t max,
                         ruf_store_entry_cb cb, void *ctx, size_t *n);

/*
 * Copies up to cap bytes of message_id's envelope, from offset off, into
 * buf: *got bytes copied (0 at or past the end), *total the envelope
 * length. For streaming a large envelope in frames without holding a
 * snapshot. Returns 0 or RUF_E_NOTFOUND.
 */
int ruf_store_envelope_read(ruf_store *s, const uint8_t *message_id, uint64_t off, void *buf,
                            size_t cap, size_t *got, uint64_t *total);

/* *seq = the last seq appended to queue (0 for an empty or unknown queue). */
int ruf_store_queue_head(ruf_store *s, const char *queue, uint64_t *seq);

/* *seq = desk desk_serial's durable cursor on queue (0 when it acked nothing). */
int ruf_store_cursor(ruf_store *s, uint64_t desk_serial, const char *queue, uint64_t *seq);

struct ruf_store_stats {
	uint64_t envelopes;     /* stored envelopes (== last store_seq today) */
	uint64_t store_seq;     /* last store_seq assigned */
	uint64_t queues;        /* queues with at least one entry */
	uint64_t cursors;       /* (desk, queue) cursors */
	uint64_t audit_entries; /* audit log length */
	uint64_t bytes_used;    /* bytes of the map in use */
	uint64_t map_size;      /* bytes the map may grow to */
};

/*
 * Fills *st; when qcb is not NULL, calls it once per queue with its name
 * and last seq (the queue's depth: nothing is deleted yet), in name order.
 */
typedef void (*ruf_store_queue_cb)(void *ctx, const char *queue, uint64_t last_seq);
int ruf_store_stats(ruf_store *s, struct ruf_store_stats *st, ruf_store_queue_cb qcb, void *ctx);

/*
 * Recomputes the audit hash chain from the first entry and checks it ends
 * at the recorded head. Returns 0 with *n_entries, or RUF_E_STORE_AUDIT
 * (d names the first bad entry) or RUF_E_FORMAT (an entry does not decode).
 */
int ruf_store_audit_verify(ruf_store *s, uint64_t *n_entries, ruf_diag *d);

/* Name of an event ("received"), NULL when unknown. */
const char *ruf_store_event_name(int event);

#endif
