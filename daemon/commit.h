/*
 * commit.h - the group-commit worker: one thread that owns the store's
 * write side. The loop thread queues requests; the worker takes everything
 * queued, runs it as ONE store batch (one transaction, one fsync), signs
 * receipts inside the batch once store_seq is known, commits, and posts the
 * results back to the loop (uv_async). The loop answers clients only from
 * those results: nothing is acknowledged before it is durable, and the loop
 * never waits on the disk.
 */
#ifndef RUFD_COMMIT_H
#define RUFD_COMMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "rufd.h"
#include "store.h"

enum commit_kind {
	COMMIT_PUT = 1, /* store an envelope (memory or spool file), queue it, sign a receipt */
	COMMIT_ACK,     /* advance a desk's durable cursor */
	COMMIT_AUDIT,   /* append an audit entry (event, who, message_id, queue) */
	COMMIT_BLOB,    /* store a shared blob (blob_name, blob, blob_len) */
};

/* Times a batch is run again when another instance committed first. */
#define COMMIT_CONFLICT_RETRIES 8

struct commit_req {
	struct commit_req *next;
	enum commit_kind kind;
	void *owner;                        /* loop-side owner (a session, ref'd), for done() */
	void (*done)(struct commit_req *r); /* called on the loop thread; frees r */

	/* COMMIT_PUT */
	uint8_t message_id[RUF_STORE_MSGID_BYTES];
	uint8_t hash[RUF_STORE_HASH_BYTES];
	uint8_t *envelope;    /* the envelope (len bytes, malloc'ed, owned by r), or NULL: */
	int fd;               /* the spool file holding it; closed by the worker */
	char spool_path[512]; /* unlinked by the worker once stored (or a duplicate) */
	uint64_t len;
	char queues[RUF_STORE_MAX_QUEUES][RUF_QUEUE_NAME_MAX + 1];
	size_t n_queues;
	uint64_t device_serial;
	char who[RUF_STORE_WHO_MAX];

	/* COMMIT_AUDIT: also who, message_id and queue */
	int event; /* enum ruf_store_event */

	/* COMMIT_ACK */
	uint64_t desk_serial;
	char queue[RUF_QUEUE_NAME_MAX + 1];
	uint64_t seq;

	/* COMMIT_BLOB */
	char blob_name[RUF_STORE_BLOB_NAME_MAX + 1];
	uint8_t *blob; /* malloc'ed, owned by r */
	size_t blob_len;

	/* results (valid in done) */
	int rc;           /* 0; RUF_E_NOSPC, RUF_E_STORE_UNAVAILABLE (retry later); other errors */
	bool duplicate;   /* PUT: the message id was already stored */
	uint8_t *receipt; /* PUT: encoded WireReceipt, malloc'ed, owned by r */
	size_t receipt_len;
	struct ruf_store_record rec;
};

/* Starts the worker. Returns 0 or an error. */
int rufd_commit_start(struct rufd *d);
/* Hands r to the worker (loop thread). r->done runs later on the loop. */
void rufd_commit_submit(struct rufd *d, struct commit_req *r);
/* Sets the receipt signing key and server serial (loop thread, on start and reload). */
void rufd_commit_set_signer(struct rufd *d, const uint8_t sk[RUF_SIGN_SK_BYTES], uint64_t serial);
/* Asks the worker to change the store's map size between two batches. */
void rufd_commit_set_map_size(struct rufd *d, uint64_t bytes);
/* Requests queued or running, not yet reported back. */
size_t rufd_commit_pending(struct rufd *d);
/* Finishes queued work, stops the thread, closes the async handle. */
void rufd_commit_stop(struct rufd *d);
/* Frees r and what it owns. */
void rufd_commit_req_free(struct commit_req *r);

#endif
