/*
 * ingest.c - the submit flow of one session:
 *
 *   SubmitOffer -> rate limit, size limit -> already stored? send the
 *   original Receipt again -> open the spool file (threadpool) ->
 *   SubmitStatus(have) -> SubmitChunk (offset == have, written by the
 *   threadpool) ... -> at total_len: verify in the threadpool (signature,
 *   sender == connected cert, hash == offered hash, routing, a wrap per
 *   destination queue at the directory's epoch) -> the group-commit worker
 *   -> Receipt, or Nack.
 *
 * Small uploads (the common case: a report of a few KiB) skip the spool: an
 * offer of at most one chunk with no partial upload to resume is answered
 * have = 0 at once, and a first chunk that carries the whole envelope is
 * verified from memory and handed to the group commit as bytes, so the
 * store's commit is the only disk write and the only fsync. Any other chunk
 * starts a spool file as before (it can then be resumed after a cut).
 *
 * While a job for the session runs, the session is blocked: it reads and
 * processes nothing more, so a client cannot make rufd queue work for it.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commit.h"
#include "envelope.h"
#include "log.h"
#include "metrics.h"
#include "session.h"
#include "spool.h"
#include "util.h"

#define RETRY_BUSY_S 5
#define RETRY_NOSPC_S 60
#define RETRY_UNAVAILABLE_S 10 /* replicated store without quorum: another instance may do */

struct ingest {
	struct session *s;
	bool active; /* an upload is open: id, total, hash, fd, have */
	uint8_t id[RUF_WIRE_MSGID_BYTES];
	uint8_t hash[RUF_WIRE_HASH_BYTES];
	uint64_t total, have;
	int fd;
	char path[RUFD_SPOOL_PATH_MAX];
	bool in_memory; /* offered small, no spool file yet (fd < 0) */
	uint8_t *env;   /* in memory: the whole envelope (total bytes), being verified */

	/* the running job */
	uv_work_t work;
	uv_fs_t fs;
	uint8_t *wbuf;
	size_t wlen;
	int job_rc;
	struct rufd_ident *ident; /* what the verify job checks against */
	char spool_dir[RUFD_SPOOL_PATH_MAX];
	uint64_t max_envelope;
	/* verify results */
	int nack; /* 0 = accepted, else a Nack reason */
	struct ruf_queue_set qs;
};

/* Per-device offers per minute: a small table, collisions share a counter. */
#define RATE_SLOTS 1024
static struct {
	uint64_t serial;
	uint64_t window; /* minute number */
	uint64_t count;
} rate[RATE_SLOTS];

static bool
rate_ok(uint64_t serial, uint64_t limit, uint32_t *retry)
{
	uint64_t now = ruf_now(), minute = now / 60;
	size_t i = (size_t)(serial % RATE_SLOTS);

	if (rate[i].window != minute || rate[i].serial != serial) {
		if (rate[i].window == minute && rate[i].count >= limit) {
			/* Another device in this slot is busy this minute: share its count. */
		} else {
			rate[i].serial = serial;
			rate[i].window = minute;
			rate[i].count = 0;
		}
	}
	if (rate[i].count >= limit) {
		*retry = (uint32_t)(60 - now % 60);
		return false;
	}
	rate[i].count++;
	return true;
}

static struct ingest *
ingest_get(struct session *s)
{
	if (!s->ingest) {
		if (!(s->ingest = calloc(1, sizeof(*s->ingest))))
			return NULL;
		s->ingest->s = s;
		s->ingest->fd = -1;
	}
	return s->ingest;
}

static void
upload_drop(struct ingest *g)
{
	if (g->fd >= 0)
		close(g->fd);
	g->fd = -1;
	g->active = false;
	g->in_memory = false;
	free(g->env);
	g->env = NULL;
}

void
ingest_session_free(struct session *s)
{
	struct ingest *g = s->ingest;

	if (!g)
		return;
	upload_drop(g);
	free(g->wbuf);
	free(g);
	s->ingest = NULL;
}

static void
send_nack(struct session *s, const uint8_t *id, uint32_t reason, uint32_t retry)
{
	struct ruf_wire_frame f = {.type = RUF_WIRE_NACK};

	memcpy(f.u.nack.message_id, id, RUF_WIRE_MSGID_BYTES);
	f.u.nack.reason = reason;
	if (reason == RUF_WIRE_NACK_RETRY_LATER) {
		f.u.nack.retry_after_s = retry;
		rufd_stats.nack_retry++;
	}
	if (reason == RUF_WIRE_NACK_STALE_DIRECTORY) {
		f.u.nack.directory = s->d->id->dir->raw;
		f.u.nack.directory_len = s->d->id->dir->rawlen;
		rufd_stats.submissions_stale++;
	}
	if (reason == RUF_WIRE_NACK_REJECTED)
		rufd_stats.submissions_rejected++;
	(void)session_send(s, &f);
}

/* Sends a stored receipt (the encoded WireReceipt, as signed) as a Receipt frame. */
static void
send_stored_receipt(struct session *s, const uint8_t *rcpt, size_t len)
{
	struct ruf_wire_frame f = {.type = RUF_WIRE_RECEIPT};

	f.u.receipt.raw = rcpt;
	f.u.receipt.raw_len = len;
	(void)session_send(s, &f);
}

static void
send_status(struct session *s, struct ingest *g)
{
	struct ruf_wire_frame f = {.type = RUF_WIRE_SUBMIT_STATUS};

	memcpy(f.u.status.message_id, g->id, sizeof(g->id));
	f.u.status.have = g->have;
	(void)session_send(s, &f);
}

/* ---- commit ---- */

static void
on_committed(struct commit_req *r)
{
	struct session *s = r->owner;
	struct ruf_store_record rec;

	if (s->state != S_CLOSING) {
		if (r->rc == RUF_E_NOSPC) {
			log_warnx("store full: %s %s told to retry later", s->peer, s->who);
			send_nack(s, r->message_id, RUF_WIRE_NACK_RETRY_LATER, RETRY_NOSPC_S);
		} else if (r->rc == RUF_E_STORE_UNAVAILABLE) {
			log_warnx("store unavailable: %s %s told to retry later", s->peer, s->who);
			send_nack(s, r->message_id, RUF_WIRE_NACK_RETRY_LATER, RETRY_UNAVAILABLE_S);
		} else if (r->rc != 0) {
			send_nack(s, r->message_id, RUF_WIRE_NACK_RETRY_LATER, RETRY_BUSY_S);
		} else if (r->duplicate && memcmp(r->rec.hash, r->hash, sizeof(r->hash)) != 0) {
			send_nack(s, r->message_id, RUF_WIRE_NACK_REJECTED, 0);
		} else if (r->receipt_len > 0) {
			char hex[33];
			if (r->duplicate) {
				rufd_stats.dedup_hits++;
			} else {
				rufd_stats.receipts++;
				rufd_stats.submissions++;
				rufd_stats.submit_bytes += r->len;
				rufd_delivery_notify(s->d, r->queues, r->n_queues);
			}
			ruf_hex(r->message_id, 16, hex);
			log_info("%s %s: %s %s (%llu bytes, store_seq %llu, %zu queues)", s->peer,
			         s->who, r->duplicate ? "duplicate" : "stored", hex,
			         (unsigned long long)r->len, (unsigned long long)r->rec.store_seq,
			         r->rec.n_queues);
			send_stored_receipt(s, r->receipt, r->receipt_len);
		} else if (ruf_store_lookup(s->d->store, r->message_id, &rec) == 0 &&
		           rec.receipt_len > 0) {
			/* A duplicate of one stored in the same batch: its receipt is there now. */
			rufd_stats.dedup_hits++;
			send_stored_receipt(s, rec.receipt, rec.receipt_len);
		} else {
			send_nack(s, r->message_id, RUF_WIRE_NACK_RETRY_LATER, RETRY_BUSY_S);
		}
		session_unblock(s);
	}
	rufd_commit_req_free(r);
	session_unref(s);
}

static void
commit_upload(struct session *s, struct ingest *g)
{
	struct commit_req *r = calloc(1, sizeof(*r));

	if (!r) {
		upload_drop(g);
		send_nack(s, g->id, RUF_WIRE_NACK_RETRY_LATER, RETRY_BUSY_S);
		session_unblock(s);
		return;
	}
	r->kind = COMMIT_PUT;
	r->owner = s;
	r->done = on_committed;
	memcpy(r->message_id, g->id, sizeof(g->id));
	memcpy(r->hash, g->hash, sizeof(g->hash));
	r->envelope = g->env; /* the worker owns the bytes, or the file, now */
	g->env = NULL;
	r->fd = g->fd;
	g->fd = -1;
	g->active = false;
	if (g->in_memory)
		g->in_memory = false; /* no spool file: spool_path stays empty */
	else
		memcpy(r->spool_path, g->path, sizeof(r->spool_path));
	r->len = g->total;
	r->n_queues = g->qs.n;
	for (size_t i = 0; i < g->qs.n; i++)
		memcpy(r->queues[i], g->qs.names[i], sizeof(r->queues[i]));
	r->device_serial = s->cert->serial;
	snprintf(r->who, sizeof(r->who), "%s:%llu", ruf_role_name(s->role),
	         (unsigned long long)s->cert->serial);
	session_ref(s);
	rufd_commit_submit(s->d, r); /* still blocked: on_committed unblocks */
}

/* ---- verify (threadpool) ---- */

static bool
same_cert(const ruf_cert *a, const ruf_cert *b)
{
	if (a->rawlen == b->rawlen && memcmp(a->raw, b->raw, a->rawlen) == 0)
		return true;
	return a->serial == b->serial && memcmp(a->sign_pk, b->sign_pk, sizeof(a->sign_pk)) == 0;
}

static bool
has_wrap(const struct ruf_env_info *info, const char *q, uint32_t epoch)
{
	for (size_t i = 0; i < info->n_recipients; i++)
		if (strcmp(info->recipients[i].queue, q) == 0 &&
		    (epoch == 0 || info->recipients[i].epoch == epoch))
			return true;
	return false;
}

static void
verify_work(uv_work_t *w)
{
	struct ingest *g = w->data;
	struct session *s = g->s;
	const ruf_directory *dir = g->ident->dir;
	struct ruf_env_info *info = NULL;
	struct ruf_route_header rh;
	ruf_diag diag = {{0}};
	int rc;

	g->nack = RUF_WIRE_NACK_REJECTED;
	g->qs.n = 0;
	g->job_rc = 0;
	/*
	 * No fsync of the spool file here: the group commit copies the bytes
	 * into the store and its fsync is what the receipt stands for. From
	 * memory, the session's certificate (verified at the handshake) is
	 * not verified again when the envelope carries the same bytes.
	 */
	if (g->env)
		rc = ruf_envelope_verify_mem(g->env, g->total, s->cert, g->ident->root, dir,
		                             ruf_now(), &diag, &info);
	else
		rc = ruf_envelope_verify_diag(g->fd, g->ident->root, dir, ruf_now(), &diag, &info);
	if (rc != 0) {
		log_notice("%s %s: envelope refused: %s%s%s", s->peer, s->who, ruf_errname(rc),
		           diag.msg[0] ? ": " : "", diag.msg);
		goto out;
	}
	/* info->sender is NULL when it was the session's own certificate. */
	if (info->sender && !same_cert(info->sender, s->cert)) {
		log_notice("%s %s: envelope sealed by another certificate (#%llu)", s->peer, s->who,
		           (unsigned long long)info->sender->serial);
		goto out;
	}
	if (info->total_len != g->total || memcmp(info->hash, g->hash, sizeof(g->hash)) != 0 ||
	    memcmp(info->hdr.message_id, g->id, sizeof(g->id)) != 0) {
		log_notice("%s %s: envelope does not match its offer", s->peer, s->who);
		goto out;
	}
	if (info->hdr.kind == RUF_KIND_REPLY) {
		/* Desks answer devices: straight to the device's inbox, no policy. */
		int n;
		if (s->role != RUF_ROLE_DESK)
			goto out;
		n = snprintf(g->qs.names[0], sizeof(g->qs.names[0]), "inbox.%s",
		             info->hdr.reply_device);
		if (n < 0 || (size_t)n >= sizeof(g->qs.names[0]) ||
		    !ruf_is_queue_name(g->qs.names[0]))
			goto out;
		g->qs.n = 1;
	} else {
		if (s->role != RUF_ROLE_DEVICE)
			goto out;
		ruf_env_route_header(&info->hdr, &rh);
		if ((rc = ruf_route_eval(dir->policy, &rh, &g->qs)) != 0) {
			log_notice("%s %s: routing failed: %s", s->peer, s->who, ruf_strerror(rc));
			goto out;
		}
	}
	/* Sealed to every destination at its current key? Else the client re-seals. */
	for (size_t i = 0; i < g->qs.n; i++) {
		const struct ruf_dir_queue *dq = ruf_directory_queue(dir, g->qs.names[i]);
		if (!has_wrap(info, g->qs.names[i], dq ? dq->epoch : 0)) {
			g->nack = RUF_WIRE_NACK_STALE_DIRECTORY;
			goto out;
		}
	}
	g->nack = 0;
out:
	/* Refused or stale: these bytes can never be accepted; the client re-seals. */
	if (g->nack != 0 && !g->in_memory)
		(void)unlink(g->path);
	ruf_env_info_free(info);
}

static void
verify_after(uv_work_t *w, int status)
{
	struct ingest *g = w->data;
	struct session *s = g->s;

	(void)status;
	rufd_ident_unref(g->ident);
	g->ident = NULL;
	if (s->state == S_CLOSING) {
		session_unref(s);
		return;
	}
	if (g->job_rc != 0) {
		log_err("%s %s: spool: %s", s->peer, s->who, ruf_strerror(g->job_rc));
		upload_drop(g);
		send_nack(s, g->id, RUF_WIRE_NACK_RETRY_LATER, RETRY_BUSY_S);
		session_unblock(s);
	} else if (g->nack != 0) {
		upload_drop(g); /* verify_work removed the spool file */
		send_nack(s, g->id, (uint32_t)g->nack, 0);
		session_unblock(s);
	} else {
		commit_upload(s, g);
	}
	session_unref(s);
}

static void
start_verify(struct session *s, struct ingest *g)
{
	session_block(s);
	session_ref(s);
	g->ident = rufd_ident_ref(s->d->id);
	g->work.data = g;
	if (uv_queue_work(s->d->loop, &g->work, verify_work, verify_after) != 0) {
		rufd_ident_unref(g->ident);
		g->ident = NULL;
		session_unref(s);
		session_fail(s, RUF_WIRE_ERR_INTERNAL, "internal error");
	}
}

/* ---- offer: open the spool file (threadpool) ---- */

static void
open_work(uv_work_t *w)
{
	struct ingest *g = w->data;

	g->job_rc = rufd_spool_open(g->spool_dir, g->id, g->total, &g->fd, &g->have, g->path);
	/* Spilling a small upload: the client was told have = 0, whatever is there. */
	if (g->job_rc == 0 && g->in_memory && g->have > 0) {
		if (ftruncate(g->fd, 0) != 0)
			g->job_rc = RUF_E_IO;
		g->have = 0;
	}
}

static void write_chunk(struct session *s, struct ingest *g);

static void
open_after(uv_work_t *w, int status)
{
	struct ingest *g = w->data;
	struct session *s = g->s;

	(void)status;
	if (s->state == S_CLOSING) {
		session_unref(s);
		return;
	}
	if (g->job_rc != 0) {
		log_err("%s %s: spool: %s", s->peer, s->who, ruf_strerror(g->job_rc));
		upload_drop(g);
		free(g->wbuf);
		g->wbuf = NULL;
		send_nack(s, g->id, RUF_WIRE_NACK_RETRY_LATER, RETRY_BUSY_S);
		session_unblock(s);
	} else if (g->in_memory) {
		/* A small upload's first chunk did not carry it all: spool from here. */
		g->in_memory = false;
		write_chunk(s, g); /* stays blocked */
	} else {
		send_status(s, g);
		if (g->have == g->total)
			start_verify(s, g); /* stays blocked */
		else
			session_unblock(s);
	}
	session_unref(s);
}

/*
 * Is message id being uploaded by another session right now? When that
 * session is the same device's and has no job or commit running (it waits
 * for chunks), the device has reconnected over a link that dropped without
 * a FIN, which poor links do all the time: the new connection takes the
 * upload over and the old one is closed, rather than the device being told
 * to retry until the old connection times out (idle_timeout, minutes).
 */
static bool
busy_elsewhere(struct session *me, const uint8_t *id)
{
	for (struct session *o = me->d->sessions; o; o = o->next) {
		if (o == me || !o->ingest || !o->ingest->active ||
		    memcmp(o->ingest->id, id, RUF_WIRE_MSGID_BYTES) != 0)
			continue;
		if (o->blocked || !o->cert || !me->cert || o->cert->serial != me->cert->serial)
			return true;
		upload_drop(o->ingest);
		rufd_stats.uploads_superseded++;
		session_fail(o, RUF_WIRE_ERR_NOT_PERMITTED,
		             "superseded: the device offered this upload on a new connection");
		return false;
	}
	return false;
}

/* Opens (or creates) the upload's spool file in the threadpool; open_after goes on. */
static void
start_open(struct session *s, struct ingest *g)
{
	session_block(s);
	session_ref(s);
	g->work.data = g;
	if (uv_queue_work(s->d->loop, &g->work, open_work, open_after) != 0) {
		upload_drop(g);
		session_unref(s);
		session_fail(s, RUF_WIRE_ERR_INTERNAL, "internal error");
	}
}

static void
on_offer(struct session *s, struct ingest *g, const struct ruf_wire_frame *f)
{
	struct ruf_store_record rec;
	uint32_t retry = 0;

	upload_drop(g);
	if (f->u.offer.total_len > s->d->cfg.max_envelope) {
		send_nack(s, f->u.offer.message_id, RUF_WIRE_NACK_TOO_LARGE, 0);
		return;
	}
	if (!rate_ok(s->cert->serial, s->d->cfg.submissions_per_minute, &retry)) {
		log_notice("%s %s: rate limited", s->peer, s->who);
		send_nack(s, f->u.offer.message_id, RUF_WIRE_NACK_RETRY_LATER, retry);
		return;
	}
	if (ruf_store_lookup(s->d->store, f->u.offer.message_id, &rec) == 0) {
		if (memcmp(rec.hash, f->u.offer.hash, sizeof(rec.hash)) != 0 ||
		    rec.receipt_len == 0) {
			send_nack(s, f->u.offer.message_id, RUF_WIRE_NACK_REJECTED, 0);
			return;
		}
		rufd_stats.dedup_hits++;
		send_stored_receipt(s, rec.receipt, rec.receipt_len);
		return;
	}
	if (busy_elsewhere(s, f->u.offer.message_id)) {
		send_nack(s, f->u.offer.message_id, RUF_WIRE_NACK_RETRY_LATER, RETRY_BUSY_S);
		return;
	}
	if (!ruf_store_available(s->d->store)) {
		/* Nothing could be acknowledged now: do not take the upload either. */
		send_nack(s, f->u.offer.message_id, RUF_WIRE_NACK_RETRY_LATER, RETRY_UNAVAILABLE_S);
		return;
	}
	memcpy(g->id, f->u.offer.message_id, sizeof(g->id));
	memcpy(g->hash, f->u.offer.hash, sizeof(g->hash));
	g->total = f->u.offer.total_len;
	g->have = 0;
	g->active = true;
	memcpy(g->spool_dir, s->d->spool_dir, sizeof(g->spool_dir));
	if (g->total <= RUF_WIRE_MAX_DATA && !rufd_spool_exists(g->spool_dir, g->id, g->total)) {
		/* Nothing to resume: no file until a chunk shows it is needed. */
		g->in_memory = true;
		send_status(s, g);
		return;
	}
	start_open(s, g);
}

/* ---- chunk: append (threadpool) ---- */

static void
on_written(uv_fs_t *req)
{
	struct ingest *g = req->data;
	struct session *s = g->s;
	ssize_t n = req->result;

	uv_fs_req_cleanup(req);
	free(g->wbuf);
	g->wbuf = NULL;
	if (s->state == S_CLOSING) {
		session_unref(s);
		return;
	}
	if (n < 0 || (size_t)n != g->wlen) {
		log_err("%s %s: spool write: %s", s->peer, s->who,
		        n < 0 ? uv_strerror((int)n) : "short write");
		/* What was written may be partial: start this upload again. */
		(void)unlink(g->path);
		upload_drop(g);
		send_nack(s, g->id, RUF_WIRE_NACK_RETRY_LATER, RETRY_BUSY_S);
		session_unblock(s);
		session_unref(s);
		return;
	}
	g->have += (uint64_t)n;
	if (g->have == g->total)
		start_verify(s, g);
	else
		session_unblock(s);
	session_unref(s);
}

static void
on_chunk(struct session *s, struct ingest *g, const struct ruf_wire_frame *f)
{
	if (!g->active || memcmp(f->u.chunk.message_id, g->id, sizeof(g->id)) != 0) {
		session_fail(s, RUF_WIRE_ERR_PROTOCOL, "chunk without an offer");
		return;
	}
	if (f->u.chunk.offset != g->have) {
		session_fail(s, RUF_WIRE_ERR_PROTOCOL, "chunk offset is not the resume point");
		return;
	}
	if (f->u.chunk.len > g->total - g->have) {
		session_fail(s, RUF_WIRE_ERR_PROTOCOL, "chunk beyond the offered length");
		return;
	}
	if (!(g->wbuf = malloc(f->u.chunk.len))) {
		session_fail(s, RUF_WIRE_ERR_INTERNAL, "out of memory");
		return;
	}
	memcpy(g->wbuf, f->u.chunk.data, f->u.chunk.len);
	g->wlen = f->u.chunk.len;
	if (g->in_memory && g->wlen == g->total) {
		/* The whole envelope in one chunk: verify it from memory. */
		g->env = g->wbuf;
		g->wbuf = NULL;
		g->have = g->total;
		start_verify(s, g);
		return;
	}
	if (g->in_memory) {
		start_open(s, g); /* open_after writes wbuf */
		return;
	}
	write_chunk(s, g);
}

/* Appends wbuf (wlen bytes) at have in the threadpool; on_written goes on. */
static void
write_chunk(struct session *s, struct ingest *g)
{
	uv_buf_t b;

	b = uv_buf_init((char *)g->wbuf, (unsigned)g->wlen);
	g->fs.data = g;
	session_block(s);
	session_ref(s);
	if (uv_fs_write(s->d->loop, &g->fs, g->fd, &b, 1, (int64_t)g->have, on_written) != 0) {
		free(g->wbuf);
		g->wbuf = NULL;
		session_unref(s);
		session_fail(s, RUF_WIRE_ERR_INTERNAL, "internal error");
	}
}

void
ingest_on_frame(struct session *s, const struct ruf_wire_frame *f)
{
	struct ingest *g = ingest_get(s);

	if (!g) {
		session_fail(s, RUF_WIRE_ERR_INTERNAL, "out of memory");
		return;
	}
	if (f->type == RUF_WIRE_SUBMIT_OFFER)
		on_offer(s, g, f);
	else
		on_chunk(s, g, f);
}
