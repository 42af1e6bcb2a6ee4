/*
 * store.c - backend table and the argument checks every backend shares.
 */
#include <string.h>

#include "store.h"
#include "store_backend.h"

static const struct ruf_store_backend *const backends[] = {
    &ruf__store_lmdb,
#ifdef RUF_HAVE_JETSTREAM
    &ruf__store_jetstream,
#endif
};

int
ruf_store_open(const char *backend, const char *path, const struct ruf_store_opts *o, ruf_diag *d,
               ruf_store **out)
{
	size_t i;

	if (backend == NULL || path == NULL || *path == '\0' || out == NULL)
		return RUF_E_INVAL;
	*out = NULL;
	for (i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
		if (strcmp(backends[i]->name, backend) == 0)
			return backends[i]->open(path, o, d, out);
	}
	ruf_diag_set(d, "unknown store backend \"%.64s\"", backend);
	return RUF_E_NOTFOUND;
}

void
ruf_store_close(ruf_store *s)
{
	if (s != NULL)
		s->be->close(s);
}

int
ruf_store_set_map_size(ruf_store *s, uint64_t bytes)
{
	if (s == NULL || bytes == 0)
		return RUF_E_INVAL;
	return s->be->set_map_size(s, bytes);
}

int
ruf_store_batch_begin(ruf_store *s, ruf_store_batch **out)
{
	if (s == NULL || out == NULL)
		return RUF_E_INVAL;
	*out = NULL;
	return s->be->batch_begin(s, out);
}

static bool
queues_ok(const char *const *q, size_t n)
{
	size_t i, j;

	if (q == NULL || n == 0 || n > RUF_STORE_MAX_QUEUES)
		return false;
	for (i = 0; i < n; i++) {
		if (q[i] == NULL || !ruf_is_queue_name(q[i]))
			return false;
		/* A repeated queue would append the envelope twice to it. */
		for (j = 0; j < i; j++) {
			if (strcmp(q[i], q[j]) == 0)
				return false;
		}
	}
	return true;
}

int
ruf_store_put_envelope(ruf_store_batch *b, const struct ruf_store_put *p,
                       struct ruf_store_put_result *r)
{
	if (b == NULL || p == NULL || r == NULL || p->message_id == NULL || p->hash == NULL)
		return RUF_E_INVAL;
	if (p->len == 0 || p->len >= RUF_STORE_ENVELOPE_MAX || p->len > SIZE_MAX)
		return RUF_E_INVAL;
	if (p->envelope == NULL && p->fd < 0)
		return RUF_E_INVAL;
	if (!queues_ok(p->queues, p->n_queues))
		return RUF_E_INVAL;
	return b->s->be->put_envelope(b, p, r);
}

int
ruf_store_set_receipt(ruf_store_batch *b, const uint8_t *message_id, const uint8_t *receipt,
                      size_t len)
{
	if (b == NULL || message_id == NULL || receipt == NULL || len == 0 ||
	    len > RUF_STORE_RECEIPT_MAX)
		return RUF_E_INVAL;
	return b->s->be->set_receipt(b, message_id, receipt, len);
}

int
ruf_store_ack(ruf_store_batch *b, uint64_t desk_serial, const char *queue, uint64_t seq,
              uint64_t time)
{
	if (b == NULL || queue == NULL || !ruf_is_queue_name(queue) || seq == 0)
		return RUF_E_INVAL;
	return b->s->be->ack(b, desk_serial, queue, seq, time);
}

int
ruf_store_audit(ruf_store_batch *b, int event, const char *who, const uint8_t *message_id,
                const char *queue, uint64_t time)
{
	size_t wl;

	if (b == NULL || event < 1 || event > RUF_STORE_EV_MAX || who == NULL)
		return RUF_E_INVAL;
	wl = strnlen(who, RUF_STORE_WHO_MAX + 1);
	if (wl == 0 || wl > RUF_STORE_WHO_MAX)
		return RUF_E_INVAL;
	if (queue != NULL && !ruf_is_queue_name(queue))
		return RUF_E_INVAL;
	return b->s->be->audit(b, event, who, message_id, queue, time);
}

int
ruf_store_batch_commit(ruf_store_batch *b)
{
	if (b == NULL)
		return RUF_E_INVAL;
	return b->s->be->batch_commit(b);
}

void
ruf_store_batch_abort(ruf_store_batch *b)
{
	if (b != NULL)
		b->s->be->batch_abort(b);
}

int
ruf_store_lookup(ruf_store *s, const uint8_t *message_id, struct ruf_store_record *out)
{
	if (s == NULL || message_id == NULL || out == NULL)
		return RUF_E_INVAL;
	return s->be->lookup(s, message_id, out);
}

int
ruf_store_queue_read(ruf_store *s, const char *queue, uint64_t after_seq, size_t max,
                     ruf_store_entry_cb cb, void *ctx, size_t *n)
{
	if (n != NULL)
		*n = 0;
	if (s == NULL || queue == NULL || !ruf_is_queue_name(queue) || cb == NULL)
		return RUF_E_INVAL;
	if (max == 0 || after_seq == UINT64_MAX)
		return 0;
	return s->be->queue_read(s, queue, after_seq, max, cb, ctx, n);
}

int
ruf_store_envelope_read(ruf_store *s, const uint8_t *message_id, uint64_t off, void *buf,
                        size_t cap, size_t *got, uint64_t *total)
{
	if (s == NULL || message_id == NULL || (buf == NULL && cap != 0) || got == NULL ||
	    total == NULL)
		return RUF_E_INVAL;
	*got = 0;
	*total = 0;
	return s->be->envelope_read(s, message_id, off, buf, cap, got, total);
}

int
ruf_store_queue_head(ruf_store *s, const char *queue, uint64_t *seq)
{
	if (s == NULL || queue == NULL || !ruf_is_queue_name(queue) || seq == NULL)
		return RUF_E_INVAL;
	*seq = 0;
	return s->be->queue_head(s, queue, seq);
}

int
ruf_store_cursor(ruf_store *s, uint64_t desk_serial, const char *queue, uint64_t *seq)
{
	if (s == NULL || queue == NULL || !ruf_is_queue_name(queue) || seq == NULL)
		return RUF_E_INVAL;
	*seq = 0;
	return s->be->cursor(s, desk_serial, queue, seq);
}

int
ruf_store_stats(ruf_store *s, struct ruf_store_stats *st, ruf_store_queue_cb qcb, void *ctx)
{
	if (s == NULL || st == NULL)
		return RUF_E_INVAL;
	memset(st, 0, sizeof(*st));
	return s->be->stats(s, st, qcb, ctx);
}

int
ruf_store_audit_verify(ruf_store *s, uint64_t *n_entries, ruf_diag *d)
{
	if (s == NULL)
		return RUF_E_INVAL;
	if (n_entries != NULL)
		*n_entries = 0;
	return s->be->audit_verify(s, n_entries, d);
}

static bool
blob_name_ok(const char *name)
{
	size_t i, n;

	if (name == NULL)
		return false;
	n = strnlen(name, RUF_STORE_BLOB_NAME_MAX + 1);
	if (n == 0 || n > RUF_STORE_BLOB_NAME_MAX)
		return false;
	for (i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return false;
	}
	return true;
}

int
ruf_store_blob_put(ruf_store_batch *b, const char *name, const uint8_t *data, size_t len)
{
	if (b == NULL || !blob_name_ok(name) || data == NULL || len == 0 ||
	    len > RUF_STORE_BLOB_MAX)
		return RUF_E_INVAL;
	return b->s->be->blob_put(b, name, data, len);
}

int
ruf_store_blob_get(ruf_store *s, const char *name, uint8_t **data, size_t *len)
{
	if (s == NULL || !blob_name_ok(name) || data == NULL || len == NULL)
		return RUF_E_INVAL;
	*data = NULL;
	*len = 0;
	return s->be->blob_get(s, name, data, len);
}

void
ruf_store_set_notify(ruf_store *s, ruf_store_notify_cb cb, void *ctx)
{
	if (s != NULL && s->be->set_notify != NULL)
		s->be->set_notify(s, cb, ctx);
}

int
ruf_store_available(ruf_store *s)
{
	if (s == NULL)
		return 0;
	return s->be->available != NULL ? s->be->available(s) : 1;
}

const char *
ruf_store_event_name(int event)
{
	switch (event) {
	case RUF_STORE_EV_RECEIVED:
		return "received";
	case RUF_STORE_EV_ROUTED:
		return "routed";
	case RUF_STORE_EV_DELIVERED:
		return "delivered";
	case RUF_STORE_EV_ACKNOWLEDGED:
		return "acknowledged";
	default:
		return NULL;
	}
}
