/*
 * commit.c - the group-commit worker (see commit.h).
 */
#include "commit.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "util.h"
#include "wire.h"

struct rufd_commit {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct commit_req *todo, **todo_tail; /* loop -> worker */
	struct commit_req *done, **done_tail; /* worker -> loop */
	size_t pending;
	bool stop;
	bool started;
	uv_async_t async;
	ruf_store *store;
	uint8_t *sign_sk; /* sodium_malloc'ed copy, under mu */
	uint64_t server_serial;
	uint64_t new_map_size;   /* under mu: a resize the worker does between batches */
	struct rufd_stats stats; /* the worker's counters, under mu */
};

void
rufd_commit_req_free(struct commit_req *r)
{
	if (!r)
		return;
	if (r->fd >= 0)
		close(r->fd);
	free(r->envelope);
	free(r->receipt);
	free(r->blob);
	free(r);
}

static uint64_t
usec_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Signs r's receipt from its record; the key is read under c->mu. */
static int
sign_receipt(struct rufd_commit *c, struct commit_req *r)
{
	struct ruf_wire_receipt_body b = {0};
	const char *q[RUF_STORE_MAX_QUEUES];
	int rc;

	for (size_t i = 0; i < r->rec.n_queues; i++)
		q[i] = r->rec.queues[i];
	qsort(q, r->rec.n_queues, sizeof(q[0]), cmp_str);
	memcpy(b.message_id, r->rec.message_id, sizeof(b.message_id));
	memcpy(b.envelope_hash, r->rec.hash, sizeof(b.envelope_hash));
	b.queues = q;
	b.n_queues = r->rec.n_queues;
	b.store_seq = r->rec.store_seq;
	b.time = r->rec.time;
	b.device_serial = r->rec.device_serial;
	pthread_mutex_lock(&c->mu);
	b.server_serial = c->server_serial;
	rc = ruf_wire_receipt_sign(&b, c->sign_sk, &r->receipt, &r->receipt_len);
	pthread_mutex_unlock(&c->mu);
	return rc;
}

static int
audit(ruf_store_batch *b, int ev, const char *who, const uint8_t *id, const char *q, uint64_t now)
{
	return ruf_store_audit(b, ev, who, id, q, now);
}

/* One request inside the open batch. Returns a batch-killing error or 0. */
static int
run_one(struct rufd_commit *c, ruf_store_batch *b, struct commit_req *r, uint64_t now)
{
	int rc;

	if (r->kind == COMMIT_AUDIT)
		return audit(b, r->event, r->who, r->message_id, r->queue, now);
	if (r->kind == COMMIT_BLOB) {
		rc = ruf_store_blob_put(b, r->blob_name, r->blob, r->blob_len);
		if (rc == RUF_E_INVAL) {
			r->rc = rc;
			return 0;
		}
		return rc;
	}
	if (r->kind == COMMIT_ACK) {
		char who[RUF_STORE_WHO_MAX];
		rc = ruf_store_ack(b, r->desk_serial, r->queue, r->seq, now);
		if (rc == RUF_E_INVAL) {
			r->rc = rc;
			return 0;
		}
		if (rc != 0)
			return rc;
		snprintf(who, sizeof(who), "desk:%llu", (unsigned long long)r->desk_serial);
		return audit(b, RUF_STORE_EV_ACKNOWLEDGED, who, NULL, r->queue, now);
	}
	const char *q[RUF_STORE_MAX_QUEUES];
	struct ruf_store_put p = {0};
	struct ruf_store_put_result res;

	for (size_t i = 0; i < r->n_queues; i++)
		q[i] = r->queues[i];
	p.message_id = r->message_id;
	p.hash = r->hash;
	p.envelope = r->envelope;
	p.fd = r->fd;
	p.len = r->len;
	p.queues = q;
	p.n_queues = r->n_queues;
	p.device_serial = r->device_serial;
	p.time = now;
	memset(&res, 0, sizeof(res));
	if ((rc = ruf_store_put_envelope(b, &p, &res)) != 0) {
		if (rc == RUF_E_INVAL) {
			r->rc = rc;
			return 0;
		}
		return rc;
	}
	r->rec = res.rec;
	r->duplicate = res.duplicate;
	if (res.duplicate) {
		/* Sent again (perhaps while the first was committing): same receipt. */
		if (res.rec.receipt_len > 0) {
			if (!(r->receipt = malloc(res.rec.receipt_len)))
				return RUF_E_NOMEM;
			memcpy(r->receipt, res.rec.receipt, res.rec.receipt_len);
			r->receipt_len = res.rec.receipt_len;
		}
		return 0;
	}
	if ((rc = sign_receipt(c, r)) != 0) {
		log_err("cannot sign a receipt: %s", ruf_strerror(rc));
		return rc;
	}
	if ((rc = ruf_store_set_receipt(b, r->message_id, r->receipt, r->receipt_len)) != 0)
		return rc;
	if ((rc = audit(b, RUF_STORE_EV_RECEIVED, r->who, r->message_id, NULL, now)) != 0)
		return rc;
	for (size_t i = 0; i < r->n_queues; i++)
		if ((rc = audit(b, RUF_STORE_EV_ROUTED, r->who, r->message_id, q[i], now)) != 0)
			return rc;
	return 0;
}

/* Runs items as one batch. Returns the batch's result (0 = durable). */
static int
run_batch(struct rufd_commit *c, struct commit_req *items, size_t *n)
{
	ruf_store_batch *b = NULL;
	uint64_t now = ruf_now();
	int rc;

	*n = 0;
	if ((rc = ruf_store_batch_begin(c->store, &b)) != 0)
		return rc;
	for (struct commit_req *r = items; r; r = r->next) {
		r->rc = 0;
		free(r->receipt);
		r->receipt = NULL;
		r->receipt_len = 0;
		(*n)++;
		if ((rc = run_one(c, b, r, now)) != 0) {
			ruf_store_batch_abort(b);
			return rc;
		}
	}
	return ruf_store_batch_commit(b);
}

/*
 * run_batch, again while another instance committed first (a replicated
 * store): the next batch_begin catches up with what it wrote, so a put may
 * now be a duplicate and get the original receipt. Bounded: instances that
 * keep colliding get "retry later" rather than a worker that never ends.
 */
static int
run_batch_retry(struct rufd_commit *c, struct commit_req *items, size_t *n)
{
	int rc = run_batch(c, items, n);

	for (unsigned i = 0; rc == RUF_E_STORE_CONFLICT && i < COMMIT_CONFLICT_RETRIES; i++) {
		pthread_mutex_lock(&c->mu);
		c->stats.store_conflicts++;
		pthread_mutex_unlock(&c->mu);
		rc = run_batch(c, items, n);
	}
	if (rc == RUF_E_STORE_CONFLICT) {
		log_warnx("store: %u conflicts in a row with other instances: retry later",
		          COMMIT_CONFLICT_RETRIES + 1);
		rc = RUF_E_STORE_UNAVAILABLE;
	}
	return rc;
}

static void *
worker(void *arg)
{
	struct rufd_commit *c = arg;

	pthread_mutex_lock(&c->mu);
	for (;;) {
		struct commit_req *items, *r;
		size_t n = 0;
		uint64_t t0, dt;
		int rc;

		while (!c->todo && !c->stop && !c->new_map_size)
			pthread_cond_wait(&c->cv, &c->mu);
		if (c->new_map_size) {
			/* Between batches: LMDB resizes only without a write transaction. */
			uint64_t sz = c->new_map_size;
			c->new_map_size = 0;
			pthread_mutex_unlock(&c->mu);
			if ((rc = ruf_store_set_map_size(c->store, sz)) != 0)
				log_err("store: cannot set map_size %llu: %s",
				        (unsigned long long)sz, ruf_strerror(rc));
			else
				log_notice("store: map_size now %llu bytes",
				           (unsigned long long)sz);
			pthread_mutex_lock(&c->mu);
			continue;
		}
		if (!c->todo && c->stop)
			break;
		items = c->todo;
		c->todo = NULL;
		c->todo_tail = &c->todo;
		pthread_mutex_unlock(&c->mu);

		t0 = usec_now();
		rc = run_batch_retry(c, items, &n);
		if (rc == RUF_E_STORE_UNAVAILABLE) {
			/* Every item would wait for the same cluster (logged by the store). */
			for (r = items; r; r = r->next)
				r->rc = rc;
		} else if (rc != 0 && items->next) {
			/*
			 * One item may have killed the batch (a damaged record, a
			 * huge envelope against a full map): run each alone so the
			 * others are not refused with it.
			 */
			for (r = items; r; r = r->next) {
				struct commit_req *next = r->next;
				size_t one;
				r->next = NULL;
				r->rc = run_batch_retry(c, r, &one);
				r->next = next;
			}
		} else if (rc != 0) {
			items->rc = rc;
		}
		dt = usec_now() - t0;
		for (r = items; r; r = r->next) {
			if (r->rc != 0) {
				free(r->receipt);
				r->receipt = NULL;
				r->receipt_len = 0;
				if (r->rc != RUF_E_NOSPC && r->rc != RUF_E_STORE_UNAVAILABLE)
					log_err("commit failed: %s", ruf_strerror(r->rc));
			} else if (r->kind == COMMIT_PUT && r->spool_path[0]) {
				/* Stored durably (or already was): the partial upload is done. */
				if (unlink(r->spool_path) != 0)
					log_warnx("cannot remove spool file %s", r->spool_path);
			}
			if (r->fd >= 0) {
				close(r->fd);
				r->fd = -1;
			}
		}

		pthread_mutex_lock(&c->mu);
		c->stats.commits++;
		c->stats.commit_items += n;
		if (rc != 0)
			c->stats.commit_failures++;
		if (rc == RUF_E_STORE_UNAVAILABLE)
			c->stats.store_unavailable++;
		c->stats.commit_usec_total += dt;
		if (dt > c->stats.commit_usec_max)
			c->stats.commit_usec_max = dt;
		if (n > c->stats.commit_items_max)
			c->stats.commit_items_max = n;
		*c->done_tail = items;
		for (r = items; r->next; r = r->next)
			;
		c->done_tail = &r->next;
		pthread_mutex_unlock(&c->mu);
		uv_async_send(&c->async);
		pthread_mutex_lock(&c->mu);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

static void
on_async(uv_async_t *a)
{
	struct rufd *d = a->data;
	struct rufd_commit *c = d->commit;
	struct commit_req *items, *next;

	pthread_mutex_lock(&c->mu);
	items = c->done;
	c->done = NULL;
	c->done_tail = &c->done;
	rufd_stats.commits = c->stats.commits;
	rufd_stats.commit_items = c->stats.commit_items;
	rufd_stats.commit_failures = c->stats.commit_failures;
	rufd_stats.commit_usec_total = c->stats.commit_usec_total;
	rufd_stats.commit_usec_max = c->stats.commit_usec_max;
	rufd_stats.commit_items_max = c->stats.commit_items_max;
	rufd_stats.store_conflicts = c->stats.store_conflicts;
	rufd_stats.store_unavailable = c->stats.store_unavailable;
	pthread_mutex_unlock(&c->mu);
	for (; items; items = next) {
		next = items->next;
		items->next = NULL;
		c->pending--;
		items->done(items);
	}
}

int
rufd_commit_start(struct rufd *d)
{
	struct rufd_commit *c;

	if (!(c = calloc(1, sizeof(*c))))
		return RUF_E_NOMEM;
	if (!(c->sign_sk = sodium_malloc(RUF_SIGN_SK_BYTES))) {
		free(c);
		return RUF_E_NOMEM;
	}
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	c->todo_tail = &c->todo;
	c->done_tail = &c->done;
	c->store = d->store;
	uv_async_init(d->loop, &c->async, on_async);
	c->async.data = d;
	d->commit = c;
	rufd_commit_set_signer(d, d->id->sign->sk, d->id->server->serial);
	if (pthread_create(&c->thread, NULL, worker, c) != 0) {
		log_err("cannot start the commit thread");
		return RUF_E_NOMEM;
	}
	c->started = true;
	return 0;
}

void
rufd_commit_set_signer(struct rufd *d, const uint8_t sk[RUF_SIGN_SK_BYTES], uint64_t serial)
{
	struct rufd_commit *c = d->commit;

	pthread_mutex_lock(&c->mu);
	memcpy(c->sign_sk, sk, RUF_SIGN_SK_BYTES);
	c->server_serial = serial;
	pthread_mutex_unlock(&c->mu);
}

void
rufd_commit_submit(struct rufd *d, struct commit_req *r)
{
	struct rufd_commit *c = d->commit;

	r->next = NULL;
	pthread_mutex_lock(&c->mu);
	*c->todo_tail = r;
	c->todo_tail = &r->next;
	c->pending++;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

void
rufd_commit_set_map_size(struct rufd *d, uint64_t bytes)
{
	struct rufd_commit *c = d->commit;

	pthread_mutex_lock(&c->mu);
	c->new_map_size = bytes;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

size_t
rufd_commit_pending(struct rufd *d)
{
	return d->commit ? d->commit->pending : 0;
}

static void
on_async_closed(uv_handle_t *h)
{
	struct rufd_commit *c = ((struct rufd *)h->data)->commit;

	((struct rufd *)h->data)->commit = NULL;
	sodium_free(c->sign_sk);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c);
}

void
rufd_commit_stop(struct rufd *d)
{
	struct rufd_commit *c = d->commit;

	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	c->stop = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	if (c->started)
		pthread_join(c->thread, NULL);
	c->started = false;
	/* Deliver what the worker finished last, then close. */
	on_async(&c->async);
	uv_close((uv_handle_t *)&c->async, on_async_closed);
}
