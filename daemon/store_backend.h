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

#endif
