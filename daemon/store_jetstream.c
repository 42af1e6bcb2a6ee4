/*
 * store_jetstream.c - the replicated store backend ("jetstream").
 *
 * Event-sourced (docs/STORE.md, "JetStream backend"): the truth is a
 * replicated JetStream stream <P>_LOG with one message per store batch (a
 * StoreLogEntry, proto/store_log.proto); envelope and blob bytes are chunks
 * in a second stream <P>_ENV. Each instance keeps a local view: an LMDB
 * store (store_lmdb.c, used through its own interface) plus the sequence of
 * the last log entry applied to it, written in the same LMDB transaction.
 *
 * Writing: a batch runs against the view (which assigns dedup, store_seq
 * and queue seqs) and records each operation. Commit publishes the chunks,
 * then the log entry with Nats-Expected-Last-Subject-Sequence = last
 * applied: JetStream stores it only if nobody appended since this view
 * caught up (optimistic concurrency between instances), and its PubAck
 * means a quorum stored it. Only then is the view's transaction committed,
 * with last applied = the entry's sequence. A crash between the two is
 * healed by catching up at the next start (the entry is applied like
 * another instance's).
 *
 * Reading never touches the network: every read is an LMDB snapshot of the
 * view. A follower thread catches up with other instances' entries (woken
 * by a core NATS subscription on the log subject, and every second), checks
 * that the view assigns the seqs each entry recorded, watches whether the
 * cluster answers, and calls the notify callback.
 *
 * Threads and locks: apply_mu is held while the view is written (a batch,
 * from begin to commit or abort; the follower's catch-up). libnats calls
 * run on the batch's thread (rufd's commit worker) and on the follower;
 * never on a reader's thread.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nats/nats.h>
#include <sodium.h>

#include "log.h"
#include "pb.h"
#include "store_backend.h"
#include "store_log.pb-c.h"

#define LOG_FORMAT 1
#define INSTANCE_BYTES 16
#define SUM_BYTES 32
#define PREFIX_MAX 32
#define CHUNK_MAX (256u * 1024)
/* Headers and subject of a log message, on top of the entry itself. */
#define LOG_OVERHEAD 4096
#define DUP_WINDOW_NS (10ll * 60 * 1000000000ll)
#define POLL_MS 1000
#define SUBJ_MAX 160
#define LOG_DECODE_MAX (64u * 1024 * 1024)
/*
 * The first message of every log (and any repeat of it): no operations.
 * It exists so that every real entry can be published with
 * Nats-Expected-Last-Sequence >= 1 (0 means "no expectation").
 */
#define GENESIS "ruf store log 1"

enum { OP_PUT = 1, OP_RECEIPT = 2, OP_ACK = 3, OP_AUDIT = 4, OP_BLOB = 5 };

int (*ruf__store_js_test_hook)(const char *point);

/* One operation of an open batch, as it will be written to the log. */
struct js_op {
	int kind;
	uint8_t id[RUF_STORE_MSGID_BYTES];
	uint8_t hash[RUF_STORE_HASH_BYTES];
	uint64_t len;
	size_t n_queues;
	char queues[RUF_STORE_MAX_QUEUES][RUF_QUEUE_NAME_MAX + 1];
	uint64_t queue_seq[RUF_STORE_MAX_QUEUES];
	uint64_t device_serial, time, store_seq;
	uint8_t *data; /* receipt or blob bytes (malloc) */
	size_t data_len;
	uint64_t desk, seq;
	int event;
	bool has_id;
	char who[RUF_STORE_WHO_MAX + 1];
	char name[RUF_STORE_BLOB_NAME_MAX + 1]; /* blob */
};

struct js_store {
	struct ruf_store base;
	ruf_store *view;
	char prefix[PREFIX_MAX + 1];
	char log_stream[PREFIX_MAX + 8], env_stream[PREFIX_MAX + 8];
	char log_subj[PREFIX_MAX + 8], env_subj[PREFIX_MAX + 8];
	unsigned replicas;
	int64_t timeout_ms;
	uint8_t instance[INSTANCE_BYTES];

	natsOptions *nopts;
	natsConnection *nc;
	jsCtx *js;
	natsSubscription *hint;

	pthread_mutex_t apply_mu; /* held while the view is written */
	uint64_t applied;         /* last log seq in the view (apply_mu) */
	bool streams_ok;          /* both streams exist (apply_mu) */
	atomic_bool check_tail;   /* compare the last applied entry with the log's */
	atomic_bool broken;       /* the view diverged: stop applying */

	atomic_int available;

	/* Follower thread and the notes it delivers. */
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t mu; /* guards what follows */
	pthread_cond_t cond;
	bool stop, wake;
	char (*note_queues)[RUF_QUEUE_NAME_MAX + 1];
	size_t n_note_queues, cap_note_queues;
	char (*note_blobs)[RUF_STORE_BLOB_NAME_MAX + 1];
	size_t n_note_blobs, cap_note_blobs;
	bool note_state, note_state_value;

	/*
	 * Chunks of the commit in flight: published asynchronously (one round
	 * trip for all of them, not one each: instances and nodes may be an
	 * ocean apart), their PubAcks collected by on_chunk_ack. pub_gen names
	 * the commit (0: none), so a late ack of an abandoned one is ignored.
	 */
	pthread_mutex_t pub_mu;
	pthread_cond_t pub_cond;
	uint64_t pub_gen;
	uint64_t **pub_seqs; /* per op: where its chunks' seqs go */
	size_t *pub_nchunks; /* per op */
	size_t pub_n_ops, pub_pending;
	natsStatus pub_status;
	jsErrCode pub_jerr;

	pthread_mutex_t notify_mu; /* held while the callback runs */
	ruf_store_notify_cb cb;
	void *cb_ctx;
};

struct js_batch {
	struct ruf_store_batch base;
	ruf_store_batch *vb; /* the view's batch */
	int err;             /* first batch-killing error */
	struct js_op *ops;
	size_t n_ops, cap_ops;
};

static struct js_store *
JS(ruf_store *s)
{
	return (struct js_store *)s;
}

static struct js_batch *
JB(ruf_store_batch *b)
{
	return (struct js_batch *)b;
}

/* ---- notes for the follower thread to deliver ---- */

static void
wake_follower(struct js_store *js)
{
	pthread_mutex_lock(&js->mu);
	js->wake = true;
	pthread_cond_signal(&js->cond);
	pthread_mutex_unlock(&js->mu);
}

/* Adds name to a set of fixed-size names (js->mu held). Drops it on ENOMEM. */
static void
name_set_add(void *arrp, size_t *n, size_t *cap, size_t width, const char *name)
{
	char **arr = arrp;
	size_t i;

	for (i = 0; i < *n; i++) {
		if (strcmp(*arr + i * width, name) == 0)
			return;
	}
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		char *na = realloc(*arr, nc * width);
		if (na == NULL)
			return;
		*arr = na;
		*cap = nc;
	}
	snprintf(*arr + *n * width, width, "%s", name);
	(*n)++;
}

static void
note_queue(struct js_store *js, const char *q)
{
	pthread_mutex_lock(&js->mu);
	name_set_add(&js->note_queues, &js->n_note_queues, &js->cap_note_queues,
	             RUF_QUEUE_NAME_MAX + 1, q);
	js->wake = true;
	pthread_cond_signal(&js->cond);
	pthread_mutex_unlock(&js->mu);
}

static void
note_blob(struct js_store *js, const char *name)
{
	pthread_mutex_lock(&js->mu);
	name_set_add(&js->note_blobs, &js->n_note_blobs, &js->cap_note_blobs,
	             RUF_STORE_BLOB_NAME_MAX + 1, name);
	js->wake = true;
	pthread_cond_signal(&js->cond);
	pthread_mutex_unlock(&js->mu);
}

/*
 * Records whether writes can succeed (why: what failed, when down); a
 * change is logged once and noted.
 */
static void
set_available(struct js_store *js, bool up, const char *why)
{
	int was = atomic_exchange(&js->available, up ? 1 : 0);

	if (was == (up ? 1 : 0))
		return;
	if (up) {
		log_notice("store: JetStream cluster available again (%s)", js->log_stream);
	} else {
		/* Whatever took it away may have lost writes: check before applying more. */
		atomic_store(&js->check_tail, true);
		log_warnx("store: JetStream cluster unavailable (%s: %s): refusing writes",
		          js->log_stream, why);
	}
	pthread_mutex_lock(&js->mu);
	js->note_state = true;
	js->note_state_value = up;
	js->wake = true;
	pthread_cond_signal(&js->cond);
	pthread_mutex_unlock(&js->mu);
}

/* Delivers the pending notes (follower thread, no other lock held). */
static void
deliver_notes(struct js_store *js)
{
	char(*queues)[RUF_QUEUE_NAME_MAX + 1];
	char(*blobs)[RUF_STORE_BLOB_NAME_MAX + 1];
	size_t nq, nb, i;
	bool st, stv;
	struct ruf_store_note n;

	pthread_mutex_lock(&js->mu);
	queues = js->note_queues;
	nq = js->n_note_queues;
	blobs = js->note_blobs;
	nb = js->n_note_blobs;
	st = js->note_state;
	stv = js->note_state_value;
	js->note_queues = NULL;
	js->n_note_queues = js->cap_note_queues = 0;
	js->note_blobs = NULL;
	js->n_note_blobs = js->cap_note_blobs = 0;
	js->note_state = false;
	pthread_mutex_unlock(&js->mu);

	pthread_mutex_lock(&js->notify_mu);
	if (js->cb != NULL) {
		if (st) {
			memset(&n, 0, sizeof(n));
			n.kind = RUF_STORE_NOTE_STATE;
			n.available = stv;
			js->cb(js->cb_ctx, &n);
		}
		if (nq > 0) {
			memset(&n, 0, sizeof(n));
			n.kind = RUF_STORE_NOTE_QUEUES;
			n.queues = (const char(*)[RUF_QUEUE_NAME_MAX + 1]) queues;
			n.n_queues = nq;
			js->cb(js->cb_ctx, &n);
		}
		for (i = 0; i < nb; i++) {
			memset(&n, 0, sizeof(n));
			n.kind = RUF_STORE_NOTE_BLOB;
			n.blob = blobs[i];
			js->cb(js->cb_ctx, &n);
		}
	}
	pthread_mutex_unlock(&js->notify_mu);
	free(queues);
	free(blobs);
}

/* ---- NATS helpers ---- */

/* Maps a failed JetStream call to the store's errors. */
static int
nats_fail(struct js_store *js, const char *what, natsStatus s, jsErrCode jerr)
{
	char why[200];

	if (jerr == JSStreamWrongLastSequenceErr)
		return RUF_E_STORE_CONFLICT;
	snprintf(why, sizeof(why), "%s: %s, JetStream error %d", what, natsStatus_GetText(s),
	         (int)jerr);
	set_available(js, false, why);
	return RUF_E_STORE_UNAVAILABLE;
}

static void
hex(char *out, const uint8_t *p, size_t n)
{
	sodium_bin2hex(out, n * 2 + 1, p, n);
}

/* Creates (or finds) both streams. Returns 0 or RUF_E_STORE_UNAVAILABLE. */
static int
ensure_streams(struct js_store *js)
{
	const char *subj[1];
	char env_wild[PREFIX_MAX + 16];
	jsStreamConfig sc;
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	natsStatus s;
	int i;

	snprintf(env_wild, sizeof(env_wild), "%s.>", js->env_subj);
	for (i = 0; i < 2; i++) {
		jsStreamConfig_Init(&sc);
		sc.Name = i == 0 ? js->log_stream : js->env_stream;
		subj[0] = i == 0 ? js->log_subj : env_wild;
		sc.Subjects = subj;
		sc.SubjectsLen = 1;
		sc.Storage = js_FileStorage;
		sc.Replicas = js->replicas;
		sc.Retention = js_LimitsPolicy;
		sc.Discard = js_DiscardOld;
		sc.Duplicates = DUP_WINDOW_NS;
		/* The log is the truth: nothing may delete from it or the chunks. */
		sc.DenyDelete = true;
		sc.DenyPurge = true;
		jerr = 0;
		s = js_AddStream(&si, js->js, &sc, NULL, &jerr);
		if (s == NATS_OK) {
			jsStreamInfo_Destroy(si);
			si = NULL;
			continue;
		}
		if (jerr != JSStreamNameExistErr)
			return nats_fail(js, "creating the streams", s, jerr);
		/* Exists with another configuration (e.g. replicas): use it as it is. */
		jerr = 0;
		s = js_GetStreamInfo(&si, js->js, sc.Name, NULL, &jerr);
		if (s != NATS_OK)
			return nats_fail(js, "reading the stream configuration", s, jerr);
		if (si->Config->Replicas != (int64_t)js->replicas)
			log_warnx("store: stream %s has %" PRId64
			          " replicas, not %u: kept as it is",
			          sc.Name, si->Config->Replicas, js->replicas);
		jsStreamInfo_Destroy(si);
		si = NULL;
	}
	/* A new log gets its genesis message; the dedup id makes racing instances write one. */
	jerr = 0;
	s = js_GetStreamInfo(&si, js->js, js->log_stream, NULL, &jerr);
	if (s != NATS_OK)
		return nats_fail(js, "reading the log's state", s, jerr);
	if (si->State.LastSeq == 0) {
		char id[PREFIX_MAX + 16];
		jsPubOptions po;
		jsPubAck *pa = NULL;

		snprintf(id, sizeof(id), "%s.genesis", js->prefix);
		jsPubOptions_Init(&po);
		po.MsgId = id;
		po.ExpectStream = js->log_stream;
		po.MaxWait = js->timeout_ms;
		jerr = 0;
		s = js_Publish(&pa, js->js, js->log_subj, GENESIS, (int)strlen(GENESIS), &po,
		               &jerr);
		jsPubAck_Destroy(pa);
		if (s != NATS_OK) {
			jsStreamInfo_Destroy(si);
			return nats_fail(js, "starting the log", s, jerr);
		}
	}
	jsStreamInfo_Destroy(si);
	js->streams_ok = true;
	return 0;
}

/*
 * PubAck (or failure) of a chunk, on a libnats thread. The subject
 * "<p>.env.<gen>.<op>.<n>" says where its sequence goes.
 */
static void
on_chunk_ack(jsCtx *jc, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	struct js_store *js = closure;
	const char *subj = natsMsg_GetSubject(msg);
	size_t pl = strlen(js->env_subj), op, i;
	uint64_t gen;
	char end;

	(void)jc;
	if (strncmp(subj, js->env_subj, pl) != 0 || subj[pl] != '.' ||
	    sscanf(subj + pl + 1, "%" SCNx64 ".%zu.%zu%c", &gen, &op, &i, &end) != 3)
		goto out;
	pthread_mutex_lock(&js->pub_mu);
	if (gen != 0 && gen == js->pub_gen && op < js->pub_n_ops && js->pub_seqs[op] != NULL &&
	    i < js->pub_nchunks[op]) {
		if (pa != NULL) {
			/* A duplicate (a retry within the window) names the original's seq. */
			js->pub_seqs[op][i] = pa->Sequence;
		} else if (js->pub_status == NATS_OK) {
			js->pub_status = pae != NULL && pae->Err != NATS_OK ? pae->Err : NATS_ERR;
			js->pub_jerr = pae != NULL ? pae->ErrCode : 0;
		}
		js->pub_pending--;
		pthread_cond_signal(&js->pub_cond);
	}
	pthread_mutex_unlock(&js->pub_mu);
out:
	natsMsg_Destroy(msg);
}

/*
 * Starts publishing len bytes at p as chunks of op to <P>_ENV, dedup id
 * "tag.<n>"; their seqs arrive in js->pub_seqs[op] (wait_chunks).
 */
static int
publish_chunks(struct js_store *js, size_t op, const char *tag, const uint8_t *p, size_t len)
{
	char subj[SUBJ_MAX], id[SUBJ_MAX];
	jsPubOptions po;
	size_t off, i;

	for (off = 0, i = 0; off < len; off += CHUNK_MAX, i++) {
		size_t n = len - off < CHUNK_MAX ? len - off : CHUNK_MAX;
		natsStatus s;

		snprintf(subj, sizeof(subj), "%s.%016" PRIx64 ".%zu.%zu", js->env_subj, js->pub_gen,
		         op, i);
		snprintf(id, sizeof(id), "%s.%zu", tag, i);
		jsPubOptions_Init(&po);
		po.MsgId = id;
		po.ExpectStream = js->env_stream;
		po.MaxWait = js->timeout_ms;
		pthread_mutex_lock(&js->pub_mu);
		js->pub_pending++;
		pthread_mutex_unlock(&js->pub_mu);
		s = js_PublishAsync(js->js, subj, p + off, (int)n, &po);
		if (s != NATS_OK) {
			pthread_mutex_lock(&js->pub_mu);
			js->pub_pending--;
			pthread_mutex_unlock(&js->pub_mu);
			return nats_fail(js, "storing an envelope chunk", s, 0);
		}
	}
	return 0;
}

/* Waits for the PubAcks of every chunk published by this commit. */
static int
wait_chunks(struct js_store *js)
{
	struct timespec ts;
	natsStatus s;
	jsErrCode jerr;
	bool timed_out = false;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(js->timeout_ms / 1000) + 1;
	ts.tv_nsec += (long)(js->timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&js->pub_mu);
	while (js->pub_pending > 0 && !timed_out)
		timed_out = pthread_cond_timedwait(&js->pub_cond, &js->pub_mu, &ts) == ETIMEDOUT;
	s = js->pub_status;
	jerr = js->pub_jerr;
	if (js->pub_pending > 0 && s == NATS_OK)
		s = NATS_TIMEOUT;
	pthread_mutex_unlock(&js->pub_mu);
	return s == NATS_OK ? 0 : nats_fail(js, "storing an envelope chunk", s, jerr);
}

/* Ends the commit's chunk bookkeeping: later acks are ignored. */
static void
chunks_done(struct js_store *js)
{
	pthread_mutex_lock(&js->pub_mu);
	js->pub_gen = 0;
	js->pub_seqs = NULL;
	js->pub_nchunks = NULL;
	js->pub_n_ops = 0;
	js->pub_pending = 0;
	pthread_mutex_unlock(&js->pub_mu);
}

static size_t
n_chunks(uint64_t len)
{
	return (size_t)((len + CHUNK_MAX - 1) / CHUNK_MAX);
}

/*
 * Reads the chunks at seqs (n of them) back into a new buffer of len bytes
 * and checks their BLAKE2b-256 against sum.
 */
static int
fetch_chunks(struct js_store *js, const uint64_t *seqs, size_t n, uint64_t len, const uint8_t *sum,
             uint8_t **out)
{
	uint8_t *buf, got[SUM_BYTES];
	uint64_t off = 0;
	size_t i;
	int rc = 0;

	if (n != n_chunks(len) || len > SIZE_MAX)
		return RUF_E_FORMAT;
	if ((buf = malloc((size_t)len)) == NULL)
		return RUF_E_NOMEM;
	for (i = 0; i < n; i++) {
		natsMsg *m = NULL;
		jsErrCode jerr = 0;
		natsStatus s = js_GetMsg(&m, js->js, js->env_stream, seqs[i], NULL, &jerr);
		int dl;

		if (s != NATS_OK) {
			rc = jerr == JSNoMessageFoundErr
			         ? RUF_E_FORMAT
			         : nats_fail(js, "reading a chunk", s, jerr);
			break;
		}
		dl = natsMsg_GetDataLength(m);
		if (dl < 0 || (uint64_t)dl > len - off || (i + 1 < n && (size_t)dl != CHUNK_MAX)) {
			natsMsg_Destroy(m);
			rc = RUF_E_FORMAT;
			break;
		}
		memcpy(buf + off, natsMsg_GetData(m), (size_t)dl);
		off += (uint64_t)dl;
		natsMsg_Destroy(m);
	}
	if (rc == 0 && off != len)
		rc = RUF_E_FORMAT;
	if (rc == 0) {
		crypto_generichash(got, sizeof(got), buf, (size_t)len, NULL, 0);
		if (sodium_memcmp(got, sum, SUM_BYTES) != 0)
			rc = RUF_E_FORMAT;
	}
	if (rc != 0) {
		free(buf);
		return rc;
	}
	*out = buf;
	return 0;
}

/* ---- the view's bookkeeping ---- */

#define KEY_APPLIED "js.applied"
#define KEY_PREFIX "js.prefix"

#define KEY_APPLIED_SUM "js.applied_sum"

/*
 * Records entry seq (raw bytes) as the last one applied, in vb: its
 * sequence and its BLAKE2b-256, so that a log that lost or changed it can
 * be told apart from one that merely moved on (check_tail).
 */
static int
set_applied(ruf_store_batch *vb, uint64_t seq, const uint8_t *raw, size_t len)
{
	uint8_t sum[SUM_BYTES];
	int rc;

	if ((rc = ruf__store_lmdb_info_put_u64(vb, KEY_APPLIED, seq)) != 0)
		return rc;
	crypto_generichash(sum, sizeof(sum), raw, len, NULL, 0);
	return ruf__store_lmdb_info_put(vb, KEY_APPLIED_SUM, sum, sizeof(sum));
}

/* ---- applying a log entry to the view ---- */

/* Bytes of the puts and blobs of one entry, fetched before the view is written. */
struct fetched {
	uint8_t **data; /* per op, NULL when the op has no bytes */
	size_t n;
};

static void
fetched_free(struct fetched *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->data[i]);
	free(f->data);
	f->data = NULL;
	f->n = 0;
}

static bool
str_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	return n > 0 && n <= max;
}

/* Checks the shape of every op (not what the view will say about it). */
static int
check_entry(const Ruf__StoreLogEntry *e)
{
	size_t i, j;

	if (e->format != LOG_FORMAT || e->instance.len != INSTANCE_BYTES || e->n_ops == 0)
		return RUF_E_FORMAT;
	for (i = 0; i < e->n_ops; i++) {
		const Ruf__StoreLogOp *o = e->ops[i];
		int set = (o->put != NULL) + (o->receipt != NULL) + (o->ack != NULL) +
		          (o->audit != NULL) + (o->blob != NULL);

		if (set != 1)
			return RUF_E_FORMAT;
		switch (o->kind) {
		case OP_PUT: {
			const Ruf__StoreLogPut *p = o->put;
			if (p == NULL || p->message_id.len != RUF_STORE_MSGID_BYTES ||
			    p->hash.len != RUF_STORE_HASH_BYTES || p->sum.len != SUM_BYTES ||
			    p->n_queues == 0 || p->n_queues > RUF_STORE_MAX_QUEUES ||
			    p->n_queue_seqs != p->n_queues || p->len == 0 ||
			    p->len >= RUF_STORE_ENVELOPE_MAX || p->n_chunks != n_chunks(p->len))
				return RUF_E_FORMAT;
			for (j = 0; j < p->n_queues; j++) {
				if (!ruf_is_queue_name(p->queues[j]))
					return RUF_E_FORMAT;
			}
			break;
		}
		case OP_RECEIPT:
			if (o->receipt == NULL ||
			    o->receipt->message_id.len != RUF_STORE_MSGID_BYTES ||
			    o->receipt->receipt.len == 0 ||
			    o->receipt->receipt.len > RUF_STORE_RECEIPT_MAX)
				return RUF_E_FORMAT;
			break;
		case OP_ACK:
			if (o->ack == NULL || !ruf_is_queue_name(o->ack->queue) || o->ack->seq == 0)
				return RUF_E_FORMAT;
			break;
		case OP_AUDIT:
			if (o->audit == NULL || o->audit->event < 1 ||
			    o->audit->event > RUF_STORE_EV_MAX ||
			    !str_ok(o->audit->who, RUF_STORE_WHO_MAX) ||
			    (o->audit->message_id.len != 0 &&
			     o->audit->message_id.len != RUF_STORE_MSGID_BYTES) ||
			    (o->audit->queue[0] != '\0' && !ruf_is_queue_name(o->audit->queue)))
				return RUF_E_FORMAT;
			break;
		case OP_BLOB:
			if (o->blob == NULL || !str_ok(o->blob->name, RUF_STORE_BLOB_NAME_MAX) ||
			    o->blob->len == 0 || o->blob->len > RUF_STORE_BLOB_MAX ||
			    o->blob->sum.len != SUM_BYTES ||
			    o->blob->n_chunks != n_chunks(o->blob->len))
				return RUF_E_FORMAT;
			break;
		default:
			return RUF_E_FORMAT;
		}
	}
	return 0;
}

static int
fetch_entry(struct js_store *js, const Ruf__StoreLogEntry *e, struct fetched *f)
{
	size_t i;
	int rc = 0;

	if ((f->data = calloc(e->n_ops, sizeof(*f->data))) == NULL)
		return RUF_E_NOMEM;
	f->n = e->n_ops;
	for (i = 0; i < e->n_ops && rc == 0; i++) {
		const Ruf__StoreLogOp *o = e->ops[i];
		if (o->kind == OP_PUT)
			rc = fetch_chunks(js, o->put->chunks, o->put->n_chunks, o->put->len,
			                  o->put->sum.data, &f->data[i]);
		else if (o->kind == OP_BLOB)
			rc = fetch_chunks(js, o->blob->chunks, o->blob->n_chunks, o->blob->len,
			                  o->blob->sum.data, &f->data[i]);
	}
	if (rc != 0)
		fetched_free(f);
	return rc;
}

/*
 * Runs one op against the view batch. A result other than the one the
 * writer recorded means the views diverged: RUF_E_FORMAT. Batch-killing
 * errors of the view itself (full map, I/O) are returned as they are.
 */
static int
apply_op(ruf_store_batch *vb, const Ruf__StoreLogOp *o, const uint8_t *data)
{
	const char *q[RUF_STORE_MAX_QUEUES];
	struct ruf_store_put_result r;
	size_t i;
	int rc;

	switch (o->kind) {
	case OP_PUT: {
		const Ruf__StoreLogPut *p = o->put;
		struct ruf_store_put put = {
		    .message_id = p->message_id.data,
		    .hash = p->hash.data,
		    .envelope = data,
		    .fd = -1,
		    .len = p->len,
		    .queues = q,
		    .n_queues = p->n_queues,
		    .device_serial = p->device_serial,
		    .time = p->time,
		};
		for (i = 0; i < p->n_queues; i++)
			q[i] = p->queues[i];
		if ((rc = ruf_store_put_envelope(vb, &put, &r)) != 0)
			return rc == RUF_E_INVAL ? RUF_E_FORMAT : rc;
		if (r.duplicate || r.rec.store_seq != p->store_seq)
			return RUF_E_FORMAT;
		for (i = 0; i < p->n_queues; i++) {
			if (r.rec.queue_seq[i] != p->queue_seqs[i])
				return RUF_E_FORMAT;
		}
		return 0;
	}
	case OP_RECEIPT:
		rc = ruf_store_set_receipt(vb, o->receipt->message_id.data,
		                           o->receipt->receipt.data, o->receipt->receipt.len);
		break;
	case OP_ACK:
		rc = ruf_store_ack(vb, o->ack->desk_serial, o->ack->queue, o->ack->seq,
		                   o->ack->time);
		break;
	case OP_AUDIT:
		rc = ruf_store_audit(vb, (int)o->audit->event, o->audit->who,
		                     o->audit->message_id.len ? o->audit->message_id.data : NULL,
		                     o->audit->queue[0] ? o->audit->queue : NULL, o->audit->time);
		break;
	case OP_BLOB:
		rc = ruf_store_blob_put(vb, o->blob->name, data, (size_t)o->blob->len);
		break;
	default:
		return RUF_E_FORMAT;
	}
	if (rc == RUF_E_INVAL || rc == RUF_E_NOTFOUND || rc == RUF_E_EXISTS)
		return RUF_E_FORMAT;
	return rc;
}

/* Applies log entry seq (raw bytes) to the view. apply_mu held. */
static int
apply_entry(struct js_store *js, uint64_t seq, const uint8_t *raw, size_t len)
{
	Ruf__StoreLogEntry *e = NULL;
	ProtobufCMessage *m = NULL;
	struct fetched f = {0};
	ruf_store_batch *vb = NULL;
	size_t i, bad_op = SIZE_MAX;
	int rc;

	if (len == strlen(GENESIS) && memcmp(raw, GENESIS, len) == 0) {
		if ((rc = ruf_store_batch_begin(js->view, &vb)) != 0)
			return rc;
		if ((rc = set_applied(vb, seq, raw, len)) != 0) {
			ruf_store_batch_abort(vb);
			return rc;
		}
		if ((rc = ruf_store_batch_commit(vb)) == 0)
			js->applied = seq;
		return rc;
	}
	if (seq == 1) {
		rc = RUF_E_FORMAT; /* not a log this backend started */
		goto diverged;
	}
	rc = ruf_pb_decode(&ruf__store_log_entry__descriptor, raw, len, LOG_DECODE_MAX, &m);
	if (rc != 0)
		goto diverged;
	e = (Ruf__StoreLogEntry *)m;
	if ((rc = check_entry(e)) != 0)
		goto diverged;
	if ((rc = fetch_entry(js, e, &f)) != 0) {
		if (rc == RUF_E_FORMAT)
			goto diverged;
		goto out;
	}
	if ((rc = ruf_store_batch_begin(js->view, &vb)) != 0)
		goto out;
	for (i = 0; i < e->n_ops; i++) {
		if ((rc = apply_op(vb, e->ops[i], f.data[i])) != 0) {
			bad_op = i;
			break;
		}
	}
	if (rc == 0)
		rc = set_applied(vb, seq, raw, len);
	if (rc != 0) {
		ruf_store_batch_abort(vb);
		if (rc == RUF_E_FORMAT)
			goto diverged;
		goto out;
	}
	if ((rc = ruf_store_batch_commit(vb)) != 0)
		goto out;
	js->applied = seq;
	for (i = 0; i < e->n_ops; i++) {
		const Ruf__StoreLogOp *o = e->ops[i];
		if (o->kind == OP_PUT)
			for (size_t j = 0; j < o->put->n_queues; j++)
				note_queue(js, o->put->queues[j]);
		else if (o->kind == OP_BLOB)
			note_blob(js, o->blob->name);
	}
	goto out;

diverged:
	/*
	 * Applying the entry would not give what its writer saw: the views
	 * disagree (or the log is damaged). Stop rather than serve a view that
	 * differs from the other instances'.
	 */
	js->broken = true;
	if (bad_op != SIZE_MAX)
		log_err("store: log entry %" PRIu64 " of %s, operation %zu, does not apply to the "
		        "local view (%s); the view stops following the log",
		        seq, js->log_stream, bad_op + 1, ruf_strerror(rc));
	else
		log_err("store: log entry %" PRIu64 " of %s is malformed (%s); the view stops "
		        "following the log",
		        seq, js->log_stream, ruf_strerror(rc));
	rc = RUF_E_FORMAT;
out:
	fetched_free(&f);
	if (m != NULL)
		protobuf_c_message_free_unpacked(m, NULL);
	return rc;
}

/*
 * Applies every log entry after js->applied. apply_mu held. Returns 0 when
 * the view is at the end of the log, RUF_E_STORE_UNAVAILABLE, RUF_E_FORMAT
 * (diverged), or an error of the view.
 */
/*
 * Checks that the log still holds, at js->applied, the entry the view
 * applied last. A log that lost acknowledged entries (nats-server 2.9 does
 * not fsync before acknowledging: a quorum losing power together can lose
 * its last writes, docs/STORE.md) or was recreated would otherwise have
 * its next entries applied on top of a view that holds writes the other
 * instances never see. apply_mu held.
 */
static int
check_tail(struct js_store *js)
{
	uint8_t want[SUM_BYTES], got[SUM_BYTES];
	natsMsg *m = NULL;
	jsErrCode jerr = 0;
	size_t n = 0;
	natsStatus s;
	int rc;

	if (js->applied == 0)
		return 0;
	rc = ruf__store_lmdb_info_get(js->view, KEY_APPLIED_SUM, want, sizeof(want), &n);
	if (rc != 0 || n != sizeof(want))
		return rc == 0 || rc == RUF_E_NOTFOUND || rc == RUF_E_TOO_LARGE ? RUF_E_FORMAT : rc;
	s = js_GetMsg(&m, js->js, js->log_stream, js->applied, NULL, &jerr);
	if (s != NATS_OK && jerr != JSNoMessageFoundErr)
		return nats_fail(js, "reading the log", s, jerr);
	if (s == NATS_OK) {
		int dl = natsMsg_GetDataLength(m);
		crypto_generichash(got, sizeof(got), (const uint8_t *)natsMsg_GetData(m),
		                   dl < 0 ? 0 : (size_t)dl, NULL, 0);
		natsMsg_Destroy(m);
		if (sodium_memcmp(got, want, sizeof(got)) == 0)
			return 0;
	}
	atomic_store(&js->broken, true);
	log_err("store: the local view has applied entry %" PRIu64 " of %s, which the cluster "
	        "%s: the cluster lost acknowledged writes or the stream was recreated; the view "
	        "stops following the log (restore the cluster, or move this view away to rebuild "
	        "it from the log)",
	        js->applied, js->log_stream,
	        s == NATS_OK ? "holds with other contents" : "does not hold");
	return RUF_E_FORMAT;
}

static int
catch_up(struct js_store *js)
{
	int rc;

	if (js->broken)
		return RUF_E_FORMAT;
	if (!js->streams_ok && (rc = ensure_streams(js)) != 0)
		return rc;
	if (atomic_load(&js->check_tail)) {
		if ((rc = check_tail(js)) != 0)
			return rc;
		atomic_store(&js->check_tail, false);
	}
	for (;;) {
		natsMsg *m = NULL;
		jsErrCode jerr = 0;
		natsStatus s = js_GetMsg(&m, js->js, js->log_stream, js->applied + 1, NULL, &jerr);
		int dl;

		if (s != NATS_OK) {
			if (jerr == JSNoMessageFoundErr)
				return 0;
			return nats_fail(js, "reading the log", s, jerr);
		}
		dl = natsMsg_GetDataLength(m);
		rc = apply_entry(js, js->applied + 1, (const uint8_t *)natsMsg_GetData(m),
		                 dl < 0 ? 0 : (size_t)dl);
		natsMsg_Destroy(m);
		if (rc != 0)
			return rc;
	}
}

/* ---- follower thread ---- */

static void
on_hint(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	(void)nc;
	(void)sub;
	natsMsg_Destroy(msg);
	wake_follower(closure);
}

/*
 * Whether writes work again, found out by writing: a stream leader that has
 * lost its quorum may still answer reads. An empty message on
 * <p>.env.probe (unreferenced, like an orphan chunk) is stored only by a
 * quorum. Only while unavailable, at most once per follower tick.
 */
static void
probe_write(struct js_store *js)
{
	char subj[PREFIX_MAX + 16];
	jsPubOptions po;
	jsPubAck *pa = NULL;
	jsErrCode jerr = 0;
	natsStatus s;

	snprintf(subj, sizeof(subj), "%s.probe", js->env_subj);
	jsPubOptions_Init(&po);
	po.ExpectStream = js->env_stream;
	po.MaxWait = js->timeout_ms;
	s = js_Publish(&pa, js->js, subj, NULL, 0, &po, &jerr);
	jsPubAck_Destroy(pa);
	if (s == NATS_OK)
		set_available(js, true, NULL);
}

/* (Re)connected: look at the log now rather than at the next tick. */
static void
on_connected(natsConnection *nc, void *closure)
{
	(void)nc;
	wake_follower(closure);
}

static void *
follower(void *arg)
{
	struct js_store *js = arg;

	for (;;) {
		struct timespec ts;

		pthread_mutex_lock(&js->mu);
		if (!js->wake && !js->stop) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += POLL_MS / 1000;
			pthread_cond_timedwait(&js->cond, &js->mu, &ts);
		}
		js->wake = false;
		if (js->stop) {
			pthread_mutex_unlock(&js->mu);
			break;
		}
		pthread_mutex_unlock(&js->mu);

		/* A batch in progress catches up by itself; try again later. */
		if (pthread_mutex_trylock(&js->apply_mu) == 0) {
			if (catch_up(js) == 0 && !atomic_load(&js->available))
				probe_write(js);
			pthread_mutex_unlock(&js->apply_mu);
		}
		deliver_notes(js);
	}
	return NULL;
}

/* ---- open / close ---- */

static bool
prefix_ok(const char *p)
{
	size_t n = strlen(p);

	if (n == 0 || n > PREFIX_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!((p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= '0' && p[i] <= '9') || p[i] == '_'))
			return false;
	}
	return true;
}

static int
nats_options(struct js_store *js, const struct ruf_store_opts *o, ruf_diag *d)
{
	char *list = NULL, *tok, *save = NULL;
	const char *urls[16];
	int n = 0;
	natsStatus s;

	if ((list = strdup(o->servers)) == NULL)
		return RUF_E_NOMEM;
	for (tok = strtok_r(list, ", ", &save); tok != NULL && n < 16;
	     tok = strtok_r(NULL, ", ", &save))
		urls[n++] = tok;
	if (n == 0) {
		free(list);
		ruf_diag_set(d, "jetstream: no server URL given");
		return RUF_E_INVAL;
	}
	s = natsOptions_Create(&js->nopts);
	if (s == NATS_OK)
		s = natsOptions_SetServers(js->nopts, urls, n);
	if (s == NATS_OK)
		s = natsOptions_SetName(js->nopts, "rufd-store");
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(js->nopts, js->timeout_ms);
	/* Never give up: an unreachable cluster is "retry later", not a dead store. */
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(js->nopts, -1);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectWait(js->nopts, 250);
	/* With a callback the first connect does not block: it goes on in the background. */
	if (s == NATS_OK)
		s = natsOptions_SetRetryOnFailedConnect(js->nopts, true, on_connected, js);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectedCB(js->nopts, on_connected, js);
	if (s == NATS_OK)
		s = natsOptions_SetPingInterval(js->nopts, 2000);
	if (s == NATS_OK)
		s = natsOptions_SetMaxPingsOut(js->nopts, 2);
	if (s == NATS_OK && o->creds != NULL)
		s = natsOptions_SetUserCredentialsFromFiles(js->nopts, o->creds, NULL);
	if (s == NATS_OK && o->tls_ca != NULL)
		s = natsOptions_LoadCATrustedCertificates(js->nopts, o->tls_ca);
	free(list);
	if (s != NATS_OK) {
		ruf_diag_set(d, "jetstream: options: %s", nats_GetLastError(NULL));
		return RUF_E_INVAL;
	}
	return 0;
}

/*
 * Binds the LMDB store at path to this log: a new one is marked with the
 * prefix; one marked with another prefix, or holding data without a mark
 * (an "lmdb" store), is refused. Sets js->applied.
 */
static int
bind_view(struct js_store *js, const char *path, ruf_diag *d)
{
	char got[PREFIX_MAX + 1];
	size_t n = 0;
	struct ruf_store_stats st;
	ruf_store_batch *vb;
	int rc;

	rc = ruf__store_lmdb_info_get(js->view, KEY_PREFIX, got, sizeof(got) - 1, &n);
	if (rc == RUF_E_NOTFOUND) {
		if ((rc = ruf_store_stats(js->view, &st, NULL, NULL)) != 0)
			return rc;
		if (st.store_seq != 0 || st.audit_entries != 0 || st.cursors != 0) {
			ruf_diag_set(d,
			             "store %s holds data of the lmdb backend, not a view of "
			             "JetStream stream %s: refusing to mix them",
			             path, js->log_stream);
			return RUF_E_FORMAT;
		}
		if ((rc = ruf_store_batch_begin(js->view, &vb)) != 0)
			return rc;
		rc = ruf__store_lmdb_info_put(vb, KEY_PREFIX, js->prefix, strlen(js->prefix));
		if (rc == 0)
			rc = ruf__store_lmdb_info_put_u64(vb, KEY_APPLIED, 0);
		if (rc != 0) {
			ruf_store_batch_abort(vb);
			return rc;
		}
		if ((rc = ruf_store_batch_commit(vb)) != 0)
			return rc;
		js->applied = 0;
		return 0;
	}
	if (rc != 0)
		return rc == RUF_E_TOO_LARGE ? RUF_E_FORMAT : rc;
	got[n] = '\0';
	if (strcmp(got, js->prefix) != 0) {
		ruf_diag_set(d, "store %s is the view of stream prefix %s, not %s", path, got,
		             js->prefix);
		return RUF_E_FORMAT;
	}
	if (ruf__store_lmdb_info_get_u64(js->view, KEY_APPLIED, &js->applied) != 0) {
		ruf_diag_set(d, "store %s: the last applied log entry is not recorded", path);
		return RUF_E_FORMAT;
	}
	return 0;
}

static void
js_close(ruf_store *s)
{
	struct js_store *js = JS(s);

	if (js->thread_started) {
		pthread_mutex_lock(&js->mu);
		js->stop = true;
		pthread_cond_signal(&js->cond);
		pthread_mutex_unlock(&js->mu);
		pthread_join(js->thread, NULL);
	}
	if (js->hint != NULL) {
		/* Drain: a running hint callback finishes before js goes away. */
		if (natsSubscription_Drain(js->hint) == NATS_OK)
			natsSubscription_WaitForDrainCompletion(js->hint, 2000);
		else
			natsSubscription_Unsubscribe(js->hint);
		natsSubscription_Destroy(js->hint);
	}
	jsCtx_Destroy(js->js);
	if (js->nc != NULL) {
		natsConnection_Close(js->nc);
		natsConnection_Destroy(js->nc);
	}
	natsOptions_Destroy(js->nopts);
	ruf_store_close(js->view);
	free(js->note_queues);
	free(js->note_blobs);
	pthread_mutex_destroy(&js->apply_mu);
	pthread_mutex_destroy(&js->mu);
	pthread_mutex_destroy(&js->notify_mu);
	pthread_mutex_destroy(&js->pub_mu);
	pthread_cond_destroy(&js->pub_cond);
	pthread_cond_destroy(&js->cond);
	free(js);
}

static int
js_open(const char *path, const struct ruf_store_opts *o, ruf_diag *d, ruf_store **out)
{
	struct js_store *js;
	jsOptions jo;
	natsStatus s;
	size_t i;
	int rc;

	if (o == NULL || o->servers == NULL || o->servers[0] == '\0') {
		ruf_diag_set(d, "jetstream: no NATS servers configured");
		return RUF_E_INVAL;
	}
	if (o->prefix != NULL && !prefix_ok(o->prefix)) {
		ruf_diag_set(d, "jetstream: stream prefix must be [A-Z0-9_]{1,%d}", PREFIX_MAX);
		return RUF_E_INVAL;
	}
	if (o->replicas > 5) {
		ruf_diag_set(d, "jetstream: replicas must be 1..5");
		return RUF_E_INVAL;
	}
	if (sodium_init() < 0)
		return RUF_E_CRYPTO;
	if ((js = calloc(1, sizeof(*js))) == NULL)
		return RUF_E_NOMEM;
	js->base.be = &ruf__store_jetstream;
	pthread_mutex_init(&js->apply_mu, NULL);
	pthread_mutex_init(&js->mu, NULL);
	pthread_mutex_init(&js->notify_mu, NULL);
	pthread_mutex_init(&js->pub_mu, NULL);
	pthread_cond_init(&js->pub_cond, NULL);
	pthread_cond_init(&js->cond, NULL);
	snprintf(js->prefix, sizeof(js->prefix), "%s",
	         o->prefix != NULL ? o->prefix : RUF_STORE_DEFAULT_PREFIX);
	snprintf(js->log_stream, sizeof(js->log_stream), "%s_LOG", js->prefix);
	snprintf(js->env_stream, sizeof(js->env_stream), "%s_ENV", js->prefix);
	for (i = 0; js->prefix[i]; i++) {
		char c = js->prefix[i];
		js->log_subj[i] = js->env_subj[i] =
		    (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
	}
	memcpy(js->log_subj + i, ".log", 5);
	memcpy(js->env_subj + i, ".env", 5);
	js->replicas = o->replicas != 0 ? o->replicas : RUF_STORE_DEFAULT_REPLICAS;
	js->timeout_ms = o->timeout_ms != 0 ? o->timeout_ms : RUF_STORE_DEFAULT_TIMEOUT_MS;
	randombytes_buf(js->instance, sizeof(js->instance));

	if ((rc = ruf_store_open("lmdb", path, o, d, &js->view)) != 0)
		goto fail;
	if ((rc = bind_view(js, path, d)) != 0)
		goto fail;
	if ((rc = nats_options(js, o, d)) != 0)
		goto fail;
	s = natsConnection_Connect(&js->nc, js->nopts);
	if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) {
		ruf_diag_set(d, "jetstream: connecting to %.200s: %s", o->servers,
		             nats_GetLastError(NULL));
		rc = RUF_E_IO;
		goto fail;
	}
	jsOptions_Init(&jo);
	jo.Wait = js->timeout_ms;
	jo.PublishAsync.AckHandler = on_chunk_ack;
	jo.PublishAsync.AckHandlerClosure = js;
	if (natsConnection_JetStream(&js->js, js->nc, &jo) != NATS_OK ||
	    natsConnection_Subscribe(&js->hint, js->nc, js->log_subj, on_hint, js) != NATS_OK) {
		ruf_diag_set(d, "jetstream: %s", nats_GetLastError(NULL));
		rc = RUF_E_IO;
		goto fail;
	}
	/*
	 * Catch up now when the cluster answers; when it does not, the store
	 * opens anyway (reads serve the view, writes say "retry later") and the
	 * follower keeps trying.
	 */
	atomic_store(&js->available, s == NATS_OK);
	atomic_store(&js->check_tail, true);
	if (s != NATS_OK)
		log_warnx("store: no NATS server of %.200s answers yet: refusing writes",
		          o->servers);
	pthread_mutex_lock(&js->apply_mu);
	rc = s == NATS_OK ? catch_up(js) : RUF_E_STORE_UNAVAILABLE;
	pthread_mutex_unlock(&js->apply_mu);
	if (rc == RUF_E_FORMAT) {
		ruf_diag_set(d, "store %s does not follow stream %s (see the log)", path,
		             js->log_stream);
		goto fail;
	}
	if (rc != 0 && rc != RUF_E_STORE_UNAVAILABLE) {
		ruf_diag_set(d, "store %s: catching up with %s: %s", path, js->log_stream,
		             ruf_strerror(rc));
		goto fail;
	}
	if (pthread_create(&js->thread, NULL, follower, js) != 0) {
		rc = RUF_E_NOMEM;
		goto fail;
	}
	js->thread_started = true;
	*out = &js->base;
	return 0;

fail:
	js_close(&js->base);
	return rc;
}

static int
js_set_map_size(ruf_store *s, uint64_t bytes)
{
	return ruf_store_set_map_size(JS(s)->view, bytes);
}

/* ---- batches ---- */

static int
js_batch_begin(ruf_store *s, ruf_store_batch **out)
{
	struct js_store *js = JS(s);
	struct js_batch *b;
	int rc;

	if ((b = calloc(1, sizeof(*b))) == NULL)
		return RUF_E_NOMEM;
	b->base.s = s;
	pthread_mutex_lock(&js->apply_mu);
	/*
	 * Start from the end of the log, so the commit's expected sequence
	 * holds unless another instance writes meanwhile. A cluster that does
	 * not answer is found out at commit.
	 */
	if (atomic_load(&js->available))
		(void)catch_up(js);
	if ((rc = ruf_store_batch_begin(js->view, &b->vb)) != 0) {
		pthread_mutex_unlock(&js->apply_mu);
		free(b);
		return rc;
	}
	*out = &b->base;
	return 0;
}

static void
batch_free(struct js_batch *b)
{
	for (size_t i = 0; i < b->n_ops; i++)
		free(b->ops[i].data);
	free(b->ops);
	free(b);
}

static void
js_batch_abort(ruf_store_batch *bb)
{
	struct js_batch *b = JB(bb);
	struct js_store *js = JS(bb->s);

	ruf_store_batch_abort(b->vb);
	pthread_mutex_unlock(&js->apply_mu);
	batch_free(b);
}

static int
batch_fail(struct js_batch *b, int rc)
{
	if (b->err == 0)
		b->err = rc;
	return b->err;
}

/* A new zeroed op at the end of b's list, or NULL (the batch is then dead). */
static struct js_op *
new_op(struct js_batch *b, int kind)
{
	struct js_op *o;

	if (b->n_ops == b->cap_ops) {
		size_t nc = b->cap_ops ? b->cap_ops * 2 : 8;
		struct js_op *no = realloc(b->ops, nc * sizeof(*no));
		if (no == NULL) {
			batch_fail(b, RUF_E_NOMEM);
			return NULL;
		}
		b->ops = no;
		b->cap_ops = nc;
	}
	o = &b->ops[b->n_ops++];
	memset(o, 0, sizeof(*o));
	o->kind = kind;
	return o;
}

static int
js_put_envelope(ruf_store_batch *bb, const struct ruf_store_put *p, struct ruf_store_put_result *r)
{
	struct js_batch *b = JB(bb);
	struct js_op *o;
	size_t i;
	int rc;

	if (b->err != 0)
		return b->err;
	if ((rc = ruf_store_put_envelope(b->vb, p, r)) != 0)
		return rc == RUF_E_INVAL ? rc : batch_fail(b, rc);
	if (r->duplicate)
		return 0; /* nothing written: nothing to log */
	if ((o = new_op(b, OP_PUT)) == NULL)
		return b->err;
	memcpy(o->id, p->message_id, sizeof(o->id));
	memcpy(o->hash, p->hash, sizeof(o->hash));
	o->len = p->len;
	o->n_queues = p->n_queues;
	for (i = 0; i < p->n_queues; i++) {
		memcpy(o->queues[i], r->rec.queues[i], sizeof(o->queues[i]));
		o->queue_seq[i] = r->rec.queue_seq[i];
	}
	o->device_serial = p->device_serial;
	o->time = p->time;
	o->store_seq = r->rec.store_seq;
	return 0;
}

/* Copies len bytes into o->data (the batch dies on ENOMEM). */
static int
op_data(struct js_batch *b, struct js_op *o, const uint8_t *p, size_t len)
{
	if ((o->data = malloc(len)) == NULL) {
		b->n_ops--;
		return batch_fail(b, RUF_E_NOMEM);
	}
	memcpy(o->data, p, len);
	o->data_len = len;
	return 0;
}

static int
js_set_receipt(ruf_store_batch *bb, const uint8_t *message_id, const uint8_t *receipt, size_t len)
{
	struct js_batch *b = JB(bb);
	struct js_op *o;
	int rc;

	if (b->err != 0)
		return b->err;
	rc = ruf_store_set_receipt(b->vb, message_id, receipt, len);
	if (rc == RUF_E_INVAL || rc == RUF_E_NOTFOUND || rc == RUF_E_EXISTS)
		return rc;
	if (rc != 0)
		return batch_fail(b, rc);
	if ((o = new_op(b, OP_RECEIPT)) == NULL)
		return b->err;
	memcpy(o->id, message_id, sizeof(o->id));
	return op_data(b, o, receipt, len);
}

static int
js_ack(ruf_store_batch *bb, uint64_t desk, const char *queue, uint64_t seq, uint64_t time)
{
	struct js_batch *b = JB(bb);
	struct js_op *o;
	int rc;

	if (b->err != 0)
		return b->err;
	if ((rc = ruf_store_ack(b->vb, desk, queue, seq, time)) != 0)
		return rc == RUF_E_INVAL ? rc : batch_fail(b, rc);
	if ((o = new_op(b, OP_ACK)) == NULL)
		return b->err;
	o->desk = desk;
	snprintf(o->queues[0], sizeof(o->queues[0]), "%s", queue);
	o->seq = seq;
	o->time = time;
	return 0;
}

static int
js_audit(ruf_store_batch *bb, int event, const char *who, const uint8_t *message_id,
         const char *queue, uint64_t time)
{
	struct js_batch *b = JB(bb);
	struct js_op *o;
	int rc;

	if (b->err != 0)
		return b->err;
	if ((rc = ruf_store_audit(b->vb, event, who, message_id, queue, time)) != 0)
		return rc == RUF_E_INVAL ? rc : batch_fail(b, rc);
	if ((o = new_op(b, OP_AUDIT)) == NULL)
		return b->err;
	o->event = event;
	snprintf(o->who, sizeof(o->who), "%s", who);
	if (message_id != NULL) {
		o->has_id = true;
		memcpy(o->id, message_id, sizeof(o->id));
	}
	if (queue != NULL)
		snprintf(o->queues[0], sizeof(o->queues[0]), "%s", queue);
	o->time = time;
	return 0;
}

static int
js_blob_put(ruf_store_batch *bb, const char *name, const uint8_t *data, size_t len)
{
	struct js_batch *b = JB(bb);
	struct js_op *o;
	int rc;

	if (b->err != 0)
		return b->err;
	if ((rc = ruf_store_blob_put(b->vb, name, data, len)) != 0)
		return rc == RUF_E_INVAL ? rc : batch_fail(b, rc);
	if ((o = new_op(b, OP_BLOB)) == NULL)
		return b->err;
	snprintf(o->name, sizeof(o->name), "%s", name);
	return op_data(b, o, data, len);
}

/* The protobuf form of b's ops, pointing into b; chunk arrays allocated. */
struct entry_pb {
	Ruf__StoreLogEntry e;
	Ruf__StoreLogOp *ops, **opp;
	Ruf__StoreLogPut *puts;
	Ruf__StoreLogReceipt *receipts;
	Ruf__StoreLogAck *acks;
	Ruf__StoreLogAudit *audits;
	Ruf__StoreLogBlob *blobs;
	char **qptr;       /* n_ops * RUF_STORE_MAX_QUEUES */
	uint64_t **chunks; /* per op */
	size_t *nchunks;   /* per op, for on_chunk_ack's bounds */
	uint8_t (*sums)[SUM_BYTES];
};

static void
entry_pb_free(struct entry_pb *x, size_t n)
{
	if (x->chunks != NULL)
		for (size_t i = 0; i < n; i++)
			free(x->chunks[i]);
	free(x->chunks);
	free(x->nchunks);
	free(x->ops);
	free(x->opp);
	free(x->puts);
	free(x->receipts);
	free(x->acks);
	free(x->audits);
	free(x->blobs);
	free(x->qptr);
	free(x->sums);
}

static int
entry_pb_alloc(struct entry_pb *x, size_t n)
{
	memset(x, 0, sizeof(*x));
	x->ops = calloc(n, sizeof(*x->ops));
	x->opp = calloc(n, sizeof(*x->opp));
	x->puts = calloc(n, sizeof(*x->puts));
	x->receipts = calloc(n, sizeof(*x->receipts));
	x->acks = calloc(n, sizeof(*x->acks));
	x->audits = calloc(n, sizeof(*x->audits));
	x->blobs = calloc(n, sizeof(*x->blobs));
	x->qptr = calloc(n * RUF_STORE_MAX_QUEUES, sizeof(*x->qptr));
	x->chunks = calloc(n, sizeof(*x->chunks));
	x->sums = calloc(n, sizeof(*x->sums));
	if (!x->ops || !x->opp || !x->puts || !x->receipts || !x->acks || !x->audits || !x->blobs ||
	    !x->qptr || !x->chunks || !x->sums) {
		entry_pb_free(x, 0);
		return RUF_E_NOMEM;
	}
	return 0;
}

/*
 * Publishes the bytes of op i (an envelope from the view's transaction, or
 * a blob) as chunks and fills its protobuf form.
 */
static int
publish_op(struct js_store *js, struct js_batch *b, struct entry_pb *x, size_t i)
{
	struct js_op *o = &b->ops[i];
	Ruf__StoreLogOp *op = &x->ops[i];
	char tag[2 + 2 * SUM_BYTES + 2 * RUF_STORE_MSGID_BYTES + 4];
	char sumhex[2 * SUM_BYTES + 1], idhex[2 * RUF_STORE_MSGID_BYTES + 1];
	const uint8_t *p;
	size_t len, j;
	int rc;

	if (o->kind == OP_PUT) {
		if ((rc = ruf__store_lmdb_batch_envelope(b->vb, o->id, &p, &len)) != 0)
			return rc == RUF_E_NOTFOUND ? RUF_E_FORMAT : rc;
	} else {
		p = o->data;
		len = o->data_len;
	}
	crypto_generichash(x->sums[i], SUM_BYTES, p, len, NULL, 0);
	if ((x->chunks[i] = calloc(n_chunks(len), sizeof(uint64_t))) == NULL)
		return RUF_E_NOMEM;
	pthread_mutex_lock(&js->pub_mu);
	js->pub_seqs[i] = x->chunks[i];
	js->pub_nchunks[i] = n_chunks(len);
	pthread_mutex_unlock(&js->pub_mu);
	/*
	 * The dedup id names the bytes: a retried commit reuses its chunks,
	 * while the same message id with other bytes gets chunks of its own.
	 */
	hex(sumhex, x->sums[i], SUM_BYTES);
	if (o->kind == OP_PUT) {
		hex(idhex, o->id, RUF_STORE_MSGID_BYTES);
		snprintf(tag, sizeof(tag), "e%s%.32s", idhex, sumhex);
	} else {
		snprintf(tag, sizeof(tag), "b%s", sumhex);
	}
	if ((rc = publish_chunks(js, i, tag, p, len)) != 0)
		return rc;
	if (o->kind == OP_PUT) {
		Ruf__StoreLogPut *pp = &x->puts[i];
		ruf__store_log_put__init(pp);
		pp->message_id.data = o->id;
		pp->message_id.len = RUF_STORE_MSGID_BYTES;
		pp->hash.data = o->hash;
		pp->hash.len = RUF_STORE_HASH_BYTES;
		pp->len = o->len;
		pp->queues = x->qptr + i * RUF_STORE_MAX_QUEUES;
		for (j = 0; j < o->n_queues; j++)
			pp->queues[j] = o->queues[j];
		pp->n_queues = o->n_queues;
		pp->device_serial = o->device_serial;
		pp->time = o->time;
		pp->store_seq = o->store_seq;
		pp->queue_seqs = o->queue_seq;
		pp->n_queue_seqs = o->n_queues;
		pp->sum.data = x->sums[i];
		pp->sum.len = SUM_BYTES;
		pp->chunks = x->chunks[i];
		pp->n_chunks = n_chunks(len);
		op->put = pp;
	} else {
		Ruf__StoreLogBlob *bp = &x->blobs[i];
		ruf__store_log_blob__init(bp);
		bp->name = o->name;
		bp->len = len;
		bp->sum.data = x->sums[i];
		bp->sum.len = SUM_BYTES;
		bp->chunks = x->chunks[i];
		bp->n_chunks = n_chunks(len);
		op->blob = bp;
	}
	return 0;
}

static char empty_str[] = "";

/* Builds the log entry of b (publishing its chunks) and encodes it. */
static int
build_entry(struct js_store *js, struct js_batch *b, uint8_t **raw, size_t *rawlen)
{
	struct entry_pb x;
	size_t i;
	int rc;

	if ((rc = entry_pb_alloc(&x, b->n_ops)) != 0)
		return rc;
	if ((x.nchunks = calloc(b->n_ops, sizeof(*x.nchunks))) == NULL) {
		entry_pb_free(&x, 0);
		return RUF_E_NOMEM;
	}
	pthread_mutex_lock(&js->pub_mu);
	do
		randombytes_buf(&js->pub_gen, sizeof(js->pub_gen));
	while (js->pub_gen == 0);
	js->pub_seqs = x.chunks;
	js->pub_nchunks = x.nchunks;
	js->pub_n_ops = b->n_ops;
	js->pub_pending = 0;
	js->pub_status = NATS_OK;
	js->pub_jerr = 0;
	pthread_mutex_unlock(&js->pub_mu);
	ruf__store_log_entry__init(&x.e);
	x.e.format = LOG_FORMAT;
	x.e.instance.data = js->instance;
	x.e.instance.len = INSTANCE_BYTES;
	x.e.ops = x.opp;
	x.e.n_ops = b->n_ops;
	for (i = 0; i < b->n_ops && rc == 0; i++) {
		struct js_op *o = &b->ops[i];
		Ruf__StoreLogOp *op = &x.ops[i];

		ruf__store_log_op__init(op);
		x.opp[i] = op;
		op->kind = (uint32_t)o->kind;
		switch (o->kind) {
		case OP_PUT:
		case OP_BLOB:
			rc = publish_op(js, b, &x, i);
			break;
		case OP_RECEIPT:
			ruf__store_log_receipt__init(&x.receipts[i]);
			x.receipts[i].message_id.data = o->id;
			x.receipts[i].message_id.len = RUF_STORE_MSGID_BYTES;
			x.receipts[i].receipt.data = o->data;
			x.receipts[i].receipt.len = o->data_len;
			op->receipt = &x.receipts[i];
			break;
		case OP_ACK:
			ruf__store_log_ack__init(&x.acks[i]);
			x.acks[i].desk_serial = o->desk;
			x.acks[i].queue = o->queues[0];
			x.acks[i].seq = o->seq;
			x.acks[i].time = o->time;
			op->ack = &x.acks[i];
			break;
		case OP_AUDIT:
			ruf__store_log_audit__init(&x.audits[i]);
			x.audits[i].event = (uint32_t)o->event;
			x.audits[i].who = o->who;
			if (o->has_id) {
				x.audits[i].message_id.data = o->id;
				x.audits[i].message_id.len = RUF_STORE_MSGID_BYTES;
			}
			x.audits[i].queue = o->queues[0][0] ? o->queues[0] : empty_str;
			x.audits[i].time = o->time;
			op->audit = &x.audits[i];
			break;
		}
	}
	/* Even after an error: no ack may land in x once it is freed. */
	if (rc == 0)
		rc = wait_chunks(js);
	chunks_done(js);
	if (rc == 0)
		rc = ruf_pb_encode(&x.e.base, raw, rawlen);
	entry_pb_free(&x, b->n_ops);
	return rc;
}

/* Largest log entry the cluster takes in one message. */
static size_t
log_max(struct js_store *js)
{
	int64_t mp = natsConnection_GetMaxPayload(js->nc);

	if (mp <= LOG_OVERHEAD)
		mp = 1024 * 1024;
	return (size_t)(mp - LOG_OVERHEAD);
}

static int
js_batch_commit(ruf_store_batch *bb)
{
	struct js_batch *b = JB(bb);
	struct js_store *js = JS(bb->s);
	char batch_id[2 * INSTANCE_BYTES + 1];
	uint8_t rnd[INSTANCE_BYTES], *raw = NULL;
	size_t rawlen = 0;
	jsPubOptions po;
	jsPubAck *pa = NULL;
	jsErrCode jerr = 0;
	natsStatus s;
	int rc;

	if (b->err != 0) {
		rc = b->err;
		goto abort;
	}
	if (b->n_ops == 0) {
		/* Nothing to tell the others: an empty (or all-duplicate) batch. */
		rc = ruf_store_batch_commit(b->vb);
		b->vb = NULL;
		goto out;
	}
	if (js->broken) {
		rc = RUF_E_FORMAT;
		goto abort;
	}
	if (!atomic_load(&js->available)) {
		rc = RUF_E_STORE_UNAVAILABLE;
		goto abort;
	}
	if (js->applied == 0) {
		/* Not caught up with the log's genesis yet (the cluster was away). */
		rc = RUF_E_STORE_UNAVAILABLE;
		goto abort;
	}
	if ((rc = build_entry(js, b, &raw, &rawlen)) != 0)
		goto abort;
	if (rawlen > log_max(js)) {
		/* The caller (daemon/commit.c) then commits the items one by one. */
		rc = RUF_E_TOO_LARGE;
		goto abort;
	}
	randombytes_buf(rnd, sizeof(rnd));
	hex(batch_id, rnd, sizeof(rnd));
	jsPubOptions_Init(&po);
	po.MsgId = batch_id;
	po.ExpectStream = js->log_stream;
	po.MaxWait = js->timeout_ms;
	/*
	 * Stream-wide Nats-Expected-Last-Sequence, checked when the entry is
	 * applied on each replica. Not the per-subject form: nats-server 2.9
	 * checks that one before replication and lets concurrent writers both
	 * through (nats-server issue 4320), and mishandles 0 in a cluster
	 * (PR 5794). applied >= 1 here: the log starts with its genesis.
	 */
	po.ExpectLastSeq = js->applied;
	s = js_Publish(&pa, js->js, js->log_subj, raw, (int)rawlen, &po, &jerr);
	if (s != NATS_OK) {
		rc = nats_fail(js, "appending to the log", s, jerr);
		if (rc == RUF_E_STORE_CONFLICT)
			wake_follower(js);
		goto abort;
	}
	if (pa->Duplicate || pa->Sequence != js->applied + 1) {
		/* Not the entry this view expects to follow: let catch-up sort it out. */
		rc = RUF_E_STORE_CONFLICT;
		goto abort;
	}
	if (ruf__store_js_test_hook != NULL && ruf__store_js_test_hook("after_puback") != 0) {
		rc = RUF_E_IO;
		goto abort;
	}
	if ((rc = set_applied(b->vb, pa->Sequence, raw, rawlen)) != 0)
		goto abort;
	rc = ruf_store_batch_commit(b->vb);
	b->vb = NULL;
	/*
	 * On a local failure the entry is still in the log: the next catch-up
	 * applies it, and the caller's retry finds its puts as duplicates.
	 */
	if (rc == 0)
		js->applied = pa->Sequence;
	goto out;

abort:
	ruf_store_batch_abort(b->vb);
	b->vb = NULL;
out:
	jsPubAck_Destroy(pa);
	free(raw);
	pthread_mutex_unlock(&js->apply_mu);
	batch_free(b);
	return rc;
}

/* ---- reads: the view ---- */

static int
js_lookup(ruf_store *s, const uint8_t *message_id, struct ruf_store_record *out)
{
	return ruf_store_lookup(JS(s)->view, message_id, out);
}

static int
js_queue_read(ruf_store *s, const char *queue, uint64_t after_seq, size_t max,
              ruf_store_entry_cb cb, void *ctx, size_t *n)
{
	return ruf_store_queue_read(JS(s)->view, queue, after_seq, max, cb, ctx, n);
}

static int
js_envelope_read(ruf_store *s, const uint8_t *message_id, uint64_t off, void *buf, size_t cap,
                 size_t *got, uint64_t *total)
{
	return ruf_store_envelope_read(JS(s)->view, message_id, off, buf, cap, got, total);
}

static int
js_queue_head(ruf_store *s, const char *queue, uint64_t *seq)
{
	return ruf_store_queue_head(JS(s)->view, queue, seq);
}

static int
js_cursor(ruf_store *s, uint64_t desk, const char *queue, uint64_t *seq)
{
	return ruf_store_cursor(JS(s)->view, desk, queue, seq);
}

static int
js_stats(ruf_store *s, struct ruf_store_stats *st, ruf_store_queue_cb qcb, void *ctx)
{
	return ruf_store_stats(JS(s)->view, st, qcb, ctx);
}

static int
js_audit_verify(ruf_store *s, uint64_t *n_entries, ruf_diag *d)
{
	return ruf_store_audit_verify(JS(s)->view, n_entries, d);
}

static int
js_blob_get(ruf_store *s, const char *name, uint8_t **data, size_t *len)
{
	return ruf_store_blob_get(JS(s)->view, name, data, len);
}

static void
js_set_notify(ruf_store *s, ruf_store_notify_cb cb, void *ctx)
{
	struct js_store *js = JS(s);

	pthread_mutex_lock(&js->notify_mu);
	js->cb = cb;
	js->cb_ctx = ctx;
	pthread_mutex_unlock(&js->notify_mu);
}

static int
js_available(ruf_store *s)
{
	struct js_store *js = JS(s);

	return atomic_load(&js->available) && !js->broken;
}

const struct ruf_store_backend ruf__store_jetstream = {
    .name = "jetstream",
    .open = js_open,
    .close = js_close,
    .set_map_size = js_set_map_size,
    .batch_begin = js_batch_begin,
    .put_envelope = js_put_envelope,
    .set_receipt = js_set_receipt,
    .ack = js_ack,
    .audit = js_audit,
    .batch_commit = js_batch_commit,
    .batch_abort = js_batch_abort,
    .lookup = js_lookup,
    .queue_read = js_queue_read,
    .envelope_read = js_envelope_read,
    .queue_head = js_queue_head,
    .cursor = js_cursor,
    .stats = js_stats,
    .audit_verify = js_audit_verify,
    .blob_put = js_blob_put,
    .blob_get = js_blob_get,
    .set_notify = js_set_notify,
    .available = js_available,
};
