/*
 * store_backend.h - what a store backend implements (for store_*.c only).
 *
 * store.c checks every argument that does not depend on stored state
 * (queue names, lengths, NULLs) before calling a backend, so backends see
 * clean input. A backend embeds struct ruf_store / struct ruf_store_batch as
 * the first member of its own structs.
 */
#ifndef RUF_STORE_BACKEND_H
#define RUF_STORE_BACKEND_H

#include "store.h"

struct ruf_store_backend;

struct ruf_store {
	const struct ruf_store_backend *be;
};

struct ruf_store_batch {
	ruf_store *s;
};

struct ruf_store_backend {
	const char *name;
	int (*open)(const char *path, const struct ruf_store_opts *o, ruf_diag *d, ruf_store **out);
	void (*close)(ruf_store *s);
	int (*set_map_size)(ruf_store *s, uint64_t bytes);

	int (*batch_begin)(ruf_store *s, ruf_store_batch **out);
	int (*put_envelope)(ruf_store_batch *b, const struct ruf_store_put *p,
	                    struct ruf_store_put_result *r);
	int (*set_receipt)(ruf_store_batch *b, const uint8_t *message_id, const uint8_t *receipt,
	                   size_t len);
	int (*ack)(ruf_store_batch *b, uint64_t desk_serial, const char *queue, uint64_t seq,
	           uint64_t time);
	int (*audit)(ruf_store_batch *b, int event, const char *who, const uint8_t *message_id,
	             const char *queue, uint64_t time);
	int (*batch_commit)(ruf_store_batch *b);
	void (*batch_abort)(ruf_store_batch *b);

	int (*lookup)(ruf_store *s, const uint8_t *message_id, struct ruf_store_record *out);
	int (*queue_read)(ruf_store *s, const char *queue, uint64_t after_seq, size_t max,
	                  ruf_store_entry_cb cb, void *ctx, size_t *n);
	int (*envelope_read)(ruf_store *s, const uint8_t *message_id, uint64_t off, void *buf,
	                     size_t cap, size_t *got, uint64_t *total);
	int (*queue_head)(ruf_store *s, const char *queue, uint64_t *seq);
	int (*cursor)(ruf_store *s, uint64_t desk_serial, const char *queue, uint64_t *seq);
	int (*stats)(ruf_store *s, struct ruf_store_stats *st, ruf_store_queue_cb qcb, void *ctx);
	int (*audit_verify)(ruf_store *s, uint64_t *n_entries, ruf_diag *d);

	int (*blob_put)(ruf_store_batch *b, const char *name, const uint8_t *data, size_t len);
	int (*blob_get)(ruf_store *s, const char *name, uint8_t **data, size_t *len);
	/* NULL for a backend without other instances: no notes, always available. */
	void (*set_notify)(ruf_store *s, ruf_store_notify_cb cb, void *ctx);
	int (*available)(ruf_store *s);
};

extern const struct ruf_store_backend ruf__store_lmdb;
#ifdef RUF_HAVE_JETSTREAM
extern const struct ruf_store_backend ruf__store_jetstream;

/*
 * Test hook of the jetstream backend: when set, called at named points of a
 * commit ("after_puback": the log entry is stored on a quorum, the local
 * view not yet committed); a nonzero return makes the commit stop there as
 * if the process had died (the view batch is dropped, RUF_E_IO returned).
 */
extern int (*ruf__store_js_test_hook)(const char *point);
#endif

/*
 * For the jetstream backend, which keeps its local view in an LMDB store
 * (s, b are LMDB handles). Small values in the LMDB "info" table under keys
 * of its own ("js.*"), written in the batch's transaction so they commit
 * atomically with the batch: info_get returns 0, RUF_E_NOTFOUND, or
 * RUF_E_TOO_LARGE (cap too small). batch_envelope points *p at an envelope
 * inside b's transaction (valid until the next write in b or its end).
 */
int ruf__store_lmdb_info_get(ruf_store *s, const char *key, void *buf, size_t cap, size_t *len);
int ruf__store_lmdb_info_put(ruf_store_batch *b, const char *key, const void *val, size_t len);
/* The same for a u64 (stored big-endian, 8 bytes; another size is RUF_E_FORMAT). */
int ruf__store_lmdb_info_get_u64(ruf_store *s, const char *key, uint64_t *v);
int ruf__store_lmdb_info_put_u64(ruf_store_batch *b, const char *key, uint64_t v);
int ruf__store_lmdb_batch_envelope(ruf_store_batch *b, const uint8_t *message_id, const uint8_t **p,
                                   size_t *len);

#endif
