/*
 * store_lmdb.c - the LMDB store backend ("lmdb").
 *
 * Layout (docs/STORE.md): one environment (a directory holding data.mdb and
 * lock.mdb) with named databases:
 *   info       "format" -> msgpack uint; "state" -> state record
 *   envelopes  message id (16) -> envelope bytes
 *   meta       message id (16) -> meta record (the dedup index)
 *   queues     queue NUL u64be seq -> message id (16)
 *   qhead      queue -> u64be last seq
 *   cursors    u64be desk serial || queue -> cursor record
 *   audit      u64be n -> audit record
 *   blobs      name -> bytes (ruf_store_blob_put; created when missing, so
 *              a store written before blobs existed opens unchanged)
 *
 * Durability comes from LMDB's default: mdb_txn_commit writes the data
 * pages, fsyncs, then writes and fsyncs the meta page. MDB_NOSYNC,
 * MDB_NOMETASYNC, MDB_MAPASYNC and MDB_WRITEMAP are deliberately not used.
 * MDB_NOTLS lets read snapshots run on any thread (the event loop) while
 * the commit worker holds the write transaction.
 */
#include <errno.h>
#include <stdbool.h>
#include <sys/statvfs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lmdb.h>
#include <pthread.h>
#include <sodium.h>

#include "store_backend.h"
#include "store_record.h"

enum {
	DBI_INFO,
	DBI_ENVELOPES,
	DBI_META,
	DBI_QUEUES,
	DBI_QHEAD,
	DBI_CURSORS,
	DBI_AUDIT,
	DBI_BLOBS,
	DBI_N
};

static const char *const dbi_names[DBI_N] = {
    "info", "envelopes", "meta", "queues", "qhead", "cursors", "audit", "blobs",
};

struct lmdb_batch {
	struct ruf_store_batch base;
	MDB_txn *txn;
	int err; /* first batch-killing error, 0 while the batch is usable */
	struct ruf__store_state st;
	bool st_dirty;
};

struct lmdb_store {
	struct ruf_store base;
	MDB_env *env;
	MDB_dbi dbi[DBI_N];
	/*
	 * LMDB may change the map size only while this process has no
	 * transaction: every transaction holds this lock shared, a resize holds
	 * it exclusive.
	 */
	pthread_rwlock_t resize;
};

static struct lmdb_store *
LS(ruf_store *s)
{
	return (struct lmdb_store *)s;
}

static struct lmdb_batch *
LB(ruf_store_batch *b)
{
	return (struct lmdb_batch *)b;
}

static int
mdb_err(int rc)
{
	switch (rc) {
	case MDB_SUCCESS:
		return 0;
	case MDB_NOTFOUND:
		return RUF_E_NOTFOUND;
	case MDB_KEYEXIST:
		return RUF_E_EXISTS;
	case MDB_MAP_FULL:
	case ENOSPC:
	case EDQUOT:
		return RUF_E_NOSPC;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INVALID:
		return RUF_E_FORMAT;
	case MDB_VERSION_MISMATCH:
		return RUF_E_VERSION;
	case ENOMEM:
		return RUF_E_NOMEM;
	case EACCES:
	case EPERM:
	case EROFS:
		return RUF_E_PERM;
	default:
		return RUF_E_IO;
	}
}

static void
put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static uint64_t
get_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

/* queues key: queue NUL u64be seq. */
static size_t
queue_key(uint8_t *k, const char *queue, uint64_t seq)
{
	size_t n = strlen(queue);

	memcpy(k, queue, n);
	k[n] = '\0';
	put_be64(k + n + 1, seq);
	return n + 9;
}

/* cursors key: u64be desk serial || queue. */
static size_t
cursor_key(uint8_t *k, uint64_t desk, const char *queue)
{
	size_t n = strlen(queue);

	put_be64(k, desk);
	memcpy(k + 8, queue, n);
	return n + 8;
}

#define KEY_MAX (RUF_QUEUE_NAME_MAX + 9)

static int
get_state(struct lmdb_store *ls, MDB_txn *txn, struct ruf__store_state *st)
{
	MDB_val k = {5, (void *)"state"}, v;
	int rc = mdb_get(txn, ls->dbi[DBI_INFO], &k, &v);

	if (rc != 0)
		return rc == MDB_NOTFOUND ? RUF_E_FORMAT : mdb_err(rc);
	return ruf__store_state_decode(v.mv_data, v.mv_size, st);
}

static int
put_state(struct lmdb_store *ls, MDB_txn *txn, const struct ruf__store_state *st)
{
	uint8_t buf[RUF__STORE_STATE_MAX];
	MDB_val k = {5, (void *)"state"}, v;
	size_t n;
	int rc;

	if ((rc = ruf__store_state_encode(st, buf, sizeof(buf), &n)) != 0)
		return rc;
	v.mv_size = n;
	v.mv_data = buf;
	return mdb_err(mdb_put(txn, ls->dbi[DBI_INFO], &k, &v, 0));
}

/* ---- open / close ---- */

/*
 * Checks the format of an existing store, or writes it into a new one.
 * Runs in the write transaction that opened the databases.
 */
static int
check_format(struct lmdb_store *ls, MDB_txn *txn, const char *path, ruf_diag *d)
{
	MDB_val k = {6, (void *)"format"}, v;
	struct ruf__store_state st;
	uint8_t buf[RUF__STORE_FORMAT_MAX];
	uint64_t ver;
	size_t n;
	int rc = mdb_get(txn, ls->dbi[DBI_INFO], &k, &v);

	if (rc == MDB_NOTFOUND) {
		MDB_stat ms;
		/* A new store, unless it holds data: then its format record is lost. */
		if ((rc = mdb_err(mdb_stat(txn, ls->dbi[DBI_META], &ms))) != 0)
			return rc;
		if (ms.ms_entries != 0) {
			ruf_diag_set(d, "store %s holds data but no format record", path);
			return RUF_E_FORMAT;
		}
		if ((rc = ruf__store_format_encode(RUF__STORE_FORMAT, buf, sizeof(buf), &n)) != 0)
			return rc;
		v.mv_size = n;
		v.mv_data = buf;
		if ((rc = mdb_err(mdb_put(txn, ls->dbi[DBI_INFO], &k, &v, 0))) != 0)
			return rc;
		memset(&st, 0, sizeof(st));
		return put_state(ls, txn, &st);
	}
	if (rc != 0)
		return mdb_err(rc);
	if (ruf__store_format_decode(v.mv_data, v.mv_size, &ver) != 0) {
		ruf_diag_set(d, "store %s: format record is malformed", path);
		return RUF_E_FORMAT;
	}
	if (ver != RUF__STORE_FORMAT) {
		ruf_diag_set(d,
		             "store %s has format version %llu; this rufd reads only version %d "
		             "(refusing to open it rather than guess)",
		             path, (unsigned long long)ver, RUF__STORE_FORMAT);
		return RUF_E_VERSION;
	}
	rc = get_state(ls, txn, &st);
	if (rc == RUF_E_VERSION)
		ruf_diag_set(d, "store %s: state record has an unknown version", path);
	else if (rc != 0)
		ruf_diag_set(d, "store %s: state record is malformed", path);
	return rc;
}

static int
lmdb_open(const char *path, const struct ruf_store_opts *o, ruf_diag *d, ruf_store **out)
{
	struct lmdb_store *ls;
	MDB_txn *txn = NULL;
	uint64_t map = o != NULL && o->map_size != 0 ? o->map_size : RUF_STORE_DEFAULT_MAP_SIZE;
	int rc;

	if (sodium_init() < 0)
		return RUF_E_CRYPTO;
	if (map > SIZE_MAX)
		return RUF_E_INVAL;
	if ((rc = ruf_mkdirs(path, 0700)) != 0) {
		ruf_diag_set(d, "store %s: cannot create the directory", path);
		return rc;
	}
	if ((ls = calloc(1, sizeof(*ls))) == NULL)
		return RUF_E_NOMEM;
	ls->base.be = &ruf__store_lmdb;
	if (pthread_rwlock_init(&ls->resize, NULL) != 0) {
		free(ls);
		return RUF_E_NOMEM;
	}
	if ((rc = mdb_err(mdb_env_create(&ls->env))) != 0)
		goto fail_free;
	if ((rc = mdb_err(mdb_env_set_maxdbs(ls->env, DBI_N))) != 0 ||
	    (rc = mdb_err(mdb_env_set_mapsize(ls->env, (size_t)map))) != 0)
		goto fail_env;
	if (o != NULL && o->max_readers != 0 &&
	    (rc = mdb_err(mdb_env_set_maxreaders(ls->env, o->max_readers))) != 0)
		goto fail_env;
	rc = mdb_env_open(ls->env, path, MDB_NOTLS, 0600);
	if (rc != 0) {
		ruf_diag_set(d, "store %s: %s", path, mdb_strerror(rc));
		rc = mdb_err(rc);
		goto fail_env;
	}
	if ((rc = mdb_err(mdb_txn_begin(ls->env, NULL, 0, &txn))) != 0)
		goto fail_env;
	for (int i = 0; i < DBI_N; i++) {
		int mrc = mdb_dbi_open(txn, dbi_names[i], MDB_CREATE, &ls->dbi[i]);
		if (mrc != 0) {
			ruf_diag_set(d, "store %s: database %s: %s", path, dbi_names[i],
			             mdb_strerror(mrc));
			rc = mdb_err(mrc);
			goto fail_txn;
		}
	}
	if ((rc = check_format(ls, txn, path, d)) != 0)
		goto fail_txn;
	rc = mdb_txn_commit(txn);
	txn = NULL;
	if (rc != 0) {
		ruf_diag_set(d, "store %s: %s", path, mdb_strerror(rc));
		rc = mdb_err(rc);
		goto fail_env;
	}
	*out = &ls->base;
	return 0;

fail_txn:
	mdb_txn_abort(txn);
fail_env:
	mdb_env_close(ls->env);
fail_free:
	pthread_rwlock_destroy(&ls->resize);
	free(ls);
	return rc;
}

static void
lmdb_close(ruf_store *s)
{
	struct lmdb_store *ls = LS(s);

	mdb_env_close(ls->env);
	pthread_rwlock_destroy(&ls->resize);
	free(ls);
}

static int
lmdb_set_map_size(ruf_store *s, uint64_t bytes)
{
	struct lmdb_store *ls = LS(s);
	int rc;

	if (bytes > SIZE_MAX)
		return RUF_E_INVAL;
	pthread_rwlock_wrlock(&ls->resize);
	rc = mdb_err(mdb_env_set_mapsize(ls->env, (size_t)bytes));
	pthread_rwlock_unlock(&ls->resize);
	return rc;
}

/* ---- batches ---- */

static int
lmdb_batch_begin(ruf_store *s, ruf_store_batch **out)
{
	struct lmdb_store *ls = LS(s);
	struct lmdb_batch *b;
	int rc;

	if ((b = calloc(1, sizeof(*b))) == NULL)
		return RUF_E_NOMEM;
	b->base.s = s;
	pthread_rwlock_rdlock(&ls->resize);
	/* LMDB's writer lock makes a second writer wait here. */
	if ((rc = mdb_err(mdb_txn_begin(ls->env, NULL, 0, &b->txn))) != 0)
		goto fail_unlock;
	if ((rc = get_state(ls, b->txn, &b->st)) != 0)
		goto fail_txn;
	*out = &b->base;
	return 0;

fail_txn:
	mdb_txn_abort(b->txn);
fail_unlock:
	pthread_rwlock_unlock(&ls->resize);
	free(b);
	return rc;
}

/* Records a batch-killing error (the first one sticks) and returns it. */
static int
batch_fail(struct lmdb_batch *b, int rc)
{
	if (b->err == 0)
		b->err = rc;
	return b->err;
}

static void
lmdb_batch_abort(ruf_store_batch *bb)
{
	struct lmdb_batch *b = LB(bb);

	mdb_txn_abort(b->txn);
	pthread_rwlock_unlock(&LS(bb->s)->resize);
	free(b);
}

/* True if the file system holding the store is (nearly) out of space. */
static bool
disk_full(struct lmdb_store *ls)
{
	const char *path;
	struct statvfs sv;

	if (mdb_env_get_path(ls->env, &path) != 0 || statvfs(path, &sv) != 0)
		return false;
	return (uint64_t)sv.f_bavail * sv.f_frsize < (1u << 20);
}

static int
lmdb_batch_commit(ruf_store_batch *bb)
{
	struct lmdb_batch *b = LB(bb);
	struct lmdb_store *ls = LS(bb->s);
	int rc;

	if (b->err != 0) {
		rc = b->err;
		lmdb_batch_abort(bb);
		return rc;
	}
	if (b->st_dirty && (rc = put_state(ls, b->txn, &b->st)) != 0) {
		lmdb_batch_abort(bb);
		return rc;
	}
	/* mdb_txn_commit frees the transaction whatever it returns. */
	rc = mdb_txn_commit(b->txn);
	pthread_rwlock_unlock(&ls->resize);
	free(b);
	/*
	 * LMDB turns a short write into EIO, so a full file system shows up
	 * here as an I/O error. Tell the caller it is a full disk (clients are
	 * told to retry later) when the store's file system has no room left.
	 */
	if (rc == EIO && disk_full(ls))
		return RUF_E_NOSPC;
	return mdb_err(rc);
}

/* meta[message_id] in txn: 0, RUF_E_NOTFOUND, or a decode/LMDB error. */
static int
get_meta(struct lmdb_store *ls, MDB_txn *txn, const uint8_t *message_id,
         struct ruf_store_record *rec)
{
	MDB_val k = {RUF_STORE_MSGID_BYTES, (void *)message_id}, v;
	int rc = mdb_get(txn, ls->dbi[DBI_META], &k, &v);

	if (rc != 0)
		return mdb_err(rc);
	memset(rec, 0, sizeof(*rec));
	memcpy(rec->message_id, message_id, RUF_STORE_MSGID_BYTES);
	return ruf__store_meta_decode(v.mv_data, v.mv_size, rec);
}

static int
put_meta(struct lmdb_store *ls, MDB_txn *txn, const struct ruf_store_record *rec)
{
	uint8_t buf[RUF__STORE_META_MAX];
	MDB_val k = {RUF_STORE_MSGID_BYTES, (void *)rec->message_id}, v;
	size_t n;
	int rc;

	if ((rc = ruf__store_meta_encode(rec, buf, sizeof(buf), &n)) != 0)
		return rc;
	v.mv_size = n;
	v.mv_data = buf;
	return mdb_err(mdb_put(txn, ls->dbi[DBI_META], &k, &v, 0));
}

static int
get_u64(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen, uint64_t *out)
{
	MDB_val k = {klen, (void *)key}, v;
	int rc = mdb_get(txn, dbi, &k, &v);

	if (rc == MDB_NOTFOUND) {
		*out = 0;
		return 0;
	}
	if (rc != 0)
		return mdb_err(rc);
	if (v.mv_size != 8)
		return RUF_E_FORMAT;
	*out = get_be64(v.mv_data);
	return 0;
}

static int
copy_envelope(const struct ruf_store_put *p, void *dst)
{
	if (p->envelope != NULL) {
		memcpy(dst, p->envelope, (size_t)p->len);
		return 0;
	}
	/* Straight from the spool file into the map: no second copy in memory. */
	return ruf_pread_all(p->fd, dst, (size_t)p->len, 0);
}

static int
lmdb_put_envelope(ruf_store_batch *bb, const struct ruf_store_put *p,
                  struct ruf_store_put_result *r)
{
	struct lmdb_batch *b = LB(bb);
	struct lmdb_store *ls = LS(bb->s);
	struct ruf_store_record *rec = &r->rec;
	uint8_t key[KEY_MAX], seqv[8];
	MDB_val k, v;
	size_t i;
	int rc;

	if (b->err != 0)
		return b->err;
	rc = get_meta(ls, b->txn, p->message_id, rec);
	if (rc == 0) {
		r->duplicate = true;
		return 0;
	}
	if (rc != RUF_E_NOTFOUND)
		return batch_fail(b, rc);
	r->duplicate = false;
	memset(rec, 0, sizeof(*rec));
	memcpy(rec->message_id, p->message_id, RUF_STORE_MSGID_BYTES);
	memcpy(rec->hash, p->hash, RUF_STORE_HASH_BYTES);
	rec->store_seq = b->st.store_seq + 1;
	rec->time = p->time;
	rec->device_serial = p->device_serial;
	rec->envelope_len = p->len;
	rec->n_queues = p->n_queues;

	k.mv_size = RUF_STORE_MSGID_BYTES;
	k.mv_data = (void *)p->message_id;
	v.mv_size = (size_t)p->len;
	v.mv_data = NULL;
	if ((rc = mdb_put(b->txn, ls->dbi[DBI_ENVELOPES], &k, &v, MDB_RESERVE | MDB_NOOVERWRITE)) !=
	    0)
		/* KEYEXIST: an envelope without its meta record; the store is damaged. */
		return batch_fail(b, rc == MDB_KEYEXIST ? RUF_E_FORMAT : mdb_err(rc));
	if ((rc = copy_envelope(p, v.mv_data)) != 0)
		return batch_fail(b, rc);

	for (i = 0; i < p->n_queues; i++) {
		const char *q = p->queues[i];
		uint64_t head;

		if ((rc = get_u64(b->txn, ls->dbi[DBI_QHEAD], q, strlen(q), &head)) != 0)
			return batch_fail(b, rc);
		head++;
		k.mv_size = queue_key(key, q, head);
		k.mv_data = key;
		v.mv_size = RUF_STORE_MSGID_BYTES;
		v.mv_data = (void *)p->message_id;
		if ((rc = mdb_put(b->txn, ls->dbi[DBI_QUEUES], &k, &v, MDB_NOOVERWRITE)) != 0)
			return batch_fail(b, rc == MDB_KEYEXIST ? RUF_E_FORMAT : mdb_err(rc));
		put_be64(seqv, head);
		k.mv_size = strlen(q);
		k.mv_data = (void *)q;
		v.mv_size = 8;
		v.mv_data = seqv;
		if ((rc = mdb_put(b->txn, ls->dbi[DBI_QHEAD], &k, &v, 0)) != 0)
			return batch_fail(b, mdb_err(rc));
		memcpy(rec->queues[i], q, strlen(q) + 1);
		rec->queue_seq[i] = head;
	}
	if ((rc = put_meta(ls, b->txn, rec)) != 0)
		return batch_fail(b, rc);
	b->st.store_seq = rec->store_seq;
	b->st_dirty = true;
	return 0;
}

static int
lmdb_set_receipt(ruf_store_batch *bb, const uint8_t *message_id, const uint8_t *receipt, size_t len)
{
	struct lmdb_batch *b = LB(bb);
	struct lmdb_store *ls = LS(bb->s);
	struct ruf_store_record rec;
	int rc;

	if (b->err != 0)
		return b->err;
	rc = get_meta(ls, b->txn, message_id, &rec);
	if (rc == RUF_E_NOTFOUND)
		return rc;
	if (rc != 0)
		return batch_fail(b, rc);
	if (rec.receipt_len != 0)
		return RUF_E_EXISTS;
	memcpy(rec.receipt, receipt, len);
	rec.receipt_len = len;
	if ((rc = put_meta(ls, b->txn, &rec)) != 0)
		return batch_fail(b, rc);
	return 0;
}

static int
lmdb_ack(ruf_store_batch *bb, uint64_t desk, const char *queue, uint64_t seq, uint64_t time)
{
	struct lmdb_batch *b = LB(bb);
	struct lmdb_store *ls = LS(bb->s);
	struct ruf__store_cursor c;
	uint8_t key[KEY_MAX], buf[RUF__STORE_CURSOR_MAX];
	uint64_t head;
	MDB_val k, v;
	size_t n;
	int rc;

	if (b->err != 0)
		return b->err;
	if ((rc = get_u64(b->txn, ls->dbi[DBI_QHEAD], queue, strlen(queue), &head)) != 0)
		return batch_fail(b, rc);
	if (seq > head)
		return RUF_E_INVAL;
	k.mv_size = cursor_key(key, desk, queue);
	k.mv_data = key;
	rc = mdb_get(b->txn, ls->dbi[DBI_CURSORS], &k, &v);
	if (rc == 0) {
		if ((rc = ruf__store_cursor_decode(v.mv_data, v.mv_size, &c)) != 0)
			return batch_fail(b, rc);
		if (c.seq >= seq)
			return 0; /* never backwards */
	} else if (rc != MDB_NOTFOUND) {
		return batch_fail(b, mdb_err(rc));
	}
	c.seq = seq;
	c.time = time;
	if ((rc = ruf__store_cursor_encode(&c, buf, sizeof(buf), &n)) != 0)
		return batch_fail(b, rc);
	v.mv_size = n;
	v.mv_data = buf;
	if ((rc = mdb_put(b->txn, ls->dbi[DBI_CURSORS], &k, &v, 0)) != 0)
		return batch_fail(b, mdb_err(rc));
	return 0;
}

static int
lmdb_audit(ruf_store_batch *bb, int event, const char *who, const uint8_t *message_id,
           const char *queue, uint64_t time)
{
	struct lmdb_batch *b = LB(bb);
	struct lmdb_store *ls = LS(bb->s);
	struct ruf__store_audit a;
	uint8_t key[8], buf[RUF__STORE_AUDIT_MAX], h[RUF_STORE_HASH_BYTES];
	MDB_val k = {8, key}, v;
	size_t n;
	int rc;

	if (b->err != 0)
		return b->err;
	memset(&a, 0, sizeof(a));
	memcpy(a.prev_hash, b->st.audit_head, sizeof(a.prev_hash));
	a.time = time;
	a.event = event;
	memcpy(a.who, who, strlen(who) + 1);
	if (message_id != NULL) {
		a.has_message_id = true;
		memcpy(a.message_id, message_id, RUF_STORE_MSGID_BYTES);
	}
	if (queue != NULL)
		memcpy(a.queue, queue, strlen(queue) + 1);
	if ((rc = ruf__store_audit_encode(&a, buf, sizeof(buf), &n)) != 0)
		return rc;
	if ((rc = ruf__store_audit_hash(a.prev_hash, buf, n, h)) != 0)
		return batch_fail(b, rc);
	put_be64(key, b->st.audit_n + 1);
	v.mv_size = n;
	v.mv_data = buf;
	/* Entries are numbered in order: APPEND keeps the tree dense and cheap. */
	if ((rc = mdb_put(b->txn, ls->dbi[DBI_AUDIT], &k, &v, MDB_APPEND)) != 0)
		return batch_fail(b, rc == MDB_KEYEXIST ? RUF_E_FORMAT : mdb_err(rc));
	b->st.audit_n++;
	memcpy(b->st.audit_head, h, sizeof(h));
	b->st_dirty = true;
	return 0;
}

/* ---- reads ---- */

static int
rd_begin(struct lmdb_store *ls, MDB_txn **txn)
{
	int rc;

	pthread_rwlock_rdlock(&ls->resize);
	if ((rc = mdb_err(mdb_txn_begin(ls->env, NULL, MDB_RDONLY, txn))) != 0)
		pthread_rwlock_unlock(&ls->resize);
	return rc;
}

static void
rd_end(struct lmdb_store *ls, MDB_txn *txn)
{
	mdb_txn_abort(txn);
	pthread_rwlock_unlock(&ls->resize);
}

static int
lmdb_lookup(ruf_store *s, const uint8_t *message_id, struct ruf_store_record *out)
{
	struct lmdb_store *ls = LS(s);
	MDB_txn *txn;
	int rc;

	if ((rc = rd_begin(ls, &txn)) != 0)
		return rc;
	rc = get_meta(ls, txn, message_id, out);
	rd_end(ls, txn);
	return rc;
}

static int
lmdb_queue_read(ruf_store *s, const char *queue, uint64_t after_seq, size_t max,
                ruf_store_entry_cb cb, void *ctx, size_t *n)
{
	struct lmdb_store *ls = LS(s);
	uint8_t key[KEY_MAX];
	size_t ql = strlen(queue), count = 0;
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v, ek, ev;
	int rc, op = MDB_SET_RANGE;

	if ((rc = rd_begin(ls, &txn)) != 0)
		return rc;
	if ((rc = mdb_err(mdb_cursor_open(txn, ls->dbi[DBI_QUEUES], &cur))) != 0)
		goto out_txn;
	k.mv_size = queue_key(key, queue, after_seq + 1);
	k.mv_data = key;
	while (count < max) {
		struct ruf_store_entry e;
		int mrc = mdb_cursor_get(cur, &k, &v, (MDB_cursor_op)op);

		op = MDB_NEXT;
		if (mrc == MDB_NOTFOUND)
			break;
		if (mrc != 0) {
			rc = mdb_err(mrc);
			break;
		}
		/* Past this queue's keys: another queue, or a prefix-sharing name. */
		if (k.mv_size != ql + 9 || memcmp(k.mv_data, queue, ql) != 0 ||
		    ((const uint8_t *)k.mv_data)[ql] != '\0')
			break;
		if (v.mv_size != RUF_STORE_MSGID_BYTES) {
			rc = RUF_E_FORMAT;
			break;
		}
		ek = v;
		if ((mrc = mdb_get(txn, ls->dbi[DBI_ENVELOPES], &ek, &ev)) != 0) {
			/* A queue entry must point at an envelope. */
			rc = mrc == MDB_NOTFOUND ? RUF_E_FORMAT : mdb_err(mrc);
			break;
		}
		e.queue = queue;
		e.seq = get_be64((const uint8_t *)k.mv_data + ql + 1);
		e.message_id = v.mv_data;
		e.envelope = ev.mv_data;
		e.len = ev.mv_size;
		count++;
		if ((rc = cb(ctx, &e)) != 0) {
			if (rc > 0)
				rc = 0;
			break;
		}
	}
	mdb_cursor_close(cur);
out_txn:
	rd_end(ls, txn);
	if (n != NULL)
		*n = count;
	return rc;
}

static int
lmdb_envelope_read(ruf_store *s, const uint8_t *message_id, uint64_t off, void *buf, size_t cap,
                   size_t *got, uint64_t *total)
{
	struct lmdb_store *ls = LS(s);
	MDB_val k = {RUF_STORE_MSGID_BYTES, (void *)message_id}, v;
	MDB_txn *txn;
	int rc;

	if ((rc = rd_begin(ls, &txn)) != 0)
		return rc;
	rc = mdb_get(txn, ls->dbi[DBI_ENVELOPES], &k, &v);
	if (rc == 0) {
		*total = v.mv_size;
		if (off < v.mv_size) {
			size_t left = v.mv_size - (size_t)off;
			*got = left < cap ? left : cap;
			memcpy(buf, (const uint8_t *)v.mv_data + off, *got);
		}
	}
	rd_end(ls, txn);
	return mdb_err(rc);
}

static int
lmdb_queue_head(ruf_store *s, const char *queue, uint64_t *seq)
{
	struct lmdb_store *ls = LS(s);
	MDB_txn *txn;
	int rc;

	if ((rc = rd_begin(ls, &txn)) != 0)
		return rc;
	rc = get_u64(txn, ls->dbi[DBI_QHEAD], queue, strlen(queue), seq);
	rd_end(ls, txn);
	return rc;
}

static int
lmdb_cursor(ruf_store *s, uint64_t desk, const char *queue, uint64_t *seq)
{
	struct lmdb_store *ls = LS(s);
	struct ruf__store_cursor c;
	uint8_t key[KEY_MAX];
	MDB_val k, v;
	MDB_txn *txn;
	int rc;

	if ((rc = rd_begin(ls, &txn)) != 0)
		return rc;
	k.mv_size = cursor_key(key, desk, queue);
	k.mv_data = key;
	rc = mdb_get(txn, ls->dbi[DBI_CURSORS], &k, &v);
	if (rc == 0) {
		rc = ruf__store_cursor_decode(v.mv_data, v.mv_size, &c);
		if (rc == 0)
			*seq = c.seq;
	} else {
		rc = rc == MDB_NOTFOUND ? 0 : mdb_err(rc);
	}
	rd_end(ls, txn);
	return rc;
}

static int
each_queue(struct lmdb_store *ls, MDB_txn *txn, ruf_store_queue_cb qcb, void *ctx)
{
	char name[RUF_QUEUE_NAME_MAX + 1];
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, mrc;

	if ((rc = mdb_err(mdb_cursor_open(txn, ls->dbi[DBI_QHEAD], &cur))) != 0)
		return rc;
	for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
	     mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size == 0 || k.mv_size > RUF_QUEUE_NAME_MAX || v.mv_size != 8) {
			rc = RUF_E_FORMAT;
			break;
		}
		memcpy(name, k.mv_data, k.mv_size);
		name[k.mv_size] = '\0';
		qcb(ctx, name, get_be64(v.mv_data));
	}
	if (rc == 0 && mrc != MDB_NOTFOUND)
		rc = mdb_err(mrc);
	mdb_cursor_close(cur);
	return rc;
}

static int
lmdb_stats(ruf_store *s, struct ruf_store_stats *st, ruf_store_queue_cb qcb, void *ctx)
{
	struct lmdb_store *ls = LS(s);
	struct ruf__store_state state;
	MDB_envinfo info;
	MDB_stat ms;
	MDB_txn *txn;
	int rc;

	if ((rc = rd_begin(ls, &txn)) != 0)
		return rc;
	if ((rc = get_state(ls, txn, &state)) != 0)
		goto out;
	st->store_seq = state.store_seq;
	st->audit_entries = state.audit_n;
	if ((rc = mdb_err(mdb_stat(txn, ls->dbi[DBI_ENVELOPES], &ms))) != 0)
		goto out;
	st->envelopes = ms.ms_entries;
	if ((rc = mdb_err(mdb_stat(txn, ls->dbi[DBI_QHEAD], &ms))) != 0)
		goto out;
	st->queues = ms.ms_entries;
	if ((rc = mdb_err(mdb_stat(txn, ls->dbi[DBI_CURSORS], &ms))) != 0)
		goto out;
	st->cursors = ms.ms_entries;
	if ((rc = mdb_err(mdb_env_info(ls->env, &info))) != 0 ||
	    (rc = mdb_err(mdb_env_stat(ls->env, &ms))) != 0)
		goto out;
	/* Pages up to the last one used, in this snapshot (free pages are reused). */
	st->bytes_used = ((uint64_t)info.me_last_pgno + 1) * ms.ms_psize;
	st->map_size = info.me_mapsize;
	if (qcb != NULL)
		rc = each_queue(ls, txn, qcb, ctx);
out:
	rd_end(ls, txn);
	return rc;
}

static int
lmdb_audit_verify(ruf_store *s, uint64_t *n_entries, ruf_diag *d)
{
	struct lmdb_store *ls = LS(s);
	struct ruf__store_state state;
	struct ruf__store_audit a;
	uint8_t h[RUF_STORE_HASH_BYTES] = {0};
	uint64_t i = 0;
	MDB_cursor *cur;
	MDB_val k, v;
	MDB_txn *txn;
	int rc, mrc;

	if ((rc = rd_begin(ls, &txn)) != 0)
		return rc;
	if ((rc = get_state(ls, txn, &state)) != 0)
		goto out_txn;
	if ((rc = mdb_err(mdb_cursor_open(txn, ls->dbi[DBI_AUDIT], &cur))) != 0)
		goto out_txn;
	for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
	     mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		i++;
		if (k.mv_size != 8 || get_be64(k.mv_data) != i) {
			ruf_diag_set(d, "audit entry %llu is missing", (unsigned long long)i);
			rc = RUF_E_STORE_AUDIT;
			break;
		}
		if ((rc = ruf__store_audit_decode(v.mv_data, v.mv_size, &a)) != 0) {
			ruf_diag_set(d, "audit entry %llu does not decode", (unsigned long long)i);
			break;
		}
		if (sodium_memcmp(a.prev_hash, h, sizeof(h)) != 0) {
			ruf_diag_set(d, "audit entry %llu: previous hash does not match entry %llu",
			             (unsigned long long)i, (unsigned long long)(i - 1));
			rc = RUF_E_STORE_AUDIT;
			break;
		}
		if ((rc = ruf__store_audit_hash(h, v.mv_data, v.mv_size, h)) != 0)
			break;
	}
	if (rc == 0 && mrc != MDB_NOTFOUND)
		rc = mdb_err(mrc);
	mdb_cursor_close(cur);
	if (rc == 0 && (i != state.audit_n || sodium_memcmp(h, state.audit_head, sizeof(h)) != 0)) {
		ruf_diag_set(d,
		             "audit log ends at entry %llu but the recorded head is entry %llu "
		             "or its hash differs",
		             (unsigned long long)i, (unsigned long long)state.audit_n);
		rc = RUF_E_STORE_AUDIT;
	}
	if (rc == 0 && n_entries != NULL)
		*n_entries = i;
out_txn:
	rd_end(ls, txn);
	return rc;
}

/* ---- blobs ---- */

static int
lmdb_blob_put(ruf_store_batch *bb, const char *name, const uint8_t *data, size_t len)
{
	struct lmdb_batch *b = LB(bb);
	MDB_val k = {strlen(name), (void *)name}, v = {len, (void *)data};
	int rc;

	if (b->err != 0)
		return b->err;
	if ((rc = mdb_put(b->txn, LS(bb->s)->dbi[DBI_BLOBS], &k, &v, 0)) != 0)
		return batch_fail(b, mdb_err(rc));
	return 0;
}

static int
lmdb_blob_get(ruf_store *s, const char *name, uint8_t **data, size_t *len)
{
	struct lmdb_store *ls = LS(s);
	MDB_val k = {strlen(name), (void *)name}, v;
	MDB_txn *txn;
	int rc;

	if ((rc = rd_begin(ls, &txn)) != 0)
		return rc;
	rc = mdb_err(mdb_get(txn, ls->dbi[DBI_BLOBS], &k, &v));
	if (rc == 0 && (v.mv_size == 0 || v.mv_size > RUF_STORE_BLOB_MAX))
		rc = RUF_E_FORMAT;
	if (rc == 0 && (*data = malloc(v.mv_size)) == NULL)
		rc = RUF_E_NOMEM;
	if (rc == 0) {
		memcpy(*data, v.mv_data, v.mv_size);
		*len = v.mv_size;
	}
	rd_end(ls, txn);
	return rc;
}

/* ---- for the jetstream backend's local view ---- */

int
ruf__store_lmdb_info_get(ruf_store *s, const char *key, void *buf, size_t cap, size_t *len)
{
	struct lmdb_store *ls = LS(s);
	MDB_val k = {strlen(key), (void *)key}, v;
	MDB_txn *txn;
	int rc;

	if ((rc = rd_begin(ls, &txn)) != 0)
		return rc;
	rc = mdb_err(mdb_get(txn, ls->dbi[DBI_INFO], &k, &v));
	if (rc == 0 && v.mv_size > cap)
		rc = RUF_E_TOO_LARGE;
	if (rc == 0) {
		memcpy(buf, v.mv_data, v.mv_size);
		*len = v.mv_size;
	}
	rd_end(ls, txn);
	return rc;
}

int
ruf__store_lmdb_info_put(ruf_store_batch *bb, const char *key, const void *val, size_t len)
{
	struct lmdb_batch *b = LB(bb);
	MDB_val k = {strlen(key), (void *)key}, v = {len, (void *)val};
	int rc;

	if (b->err != 0)
		return b->err;
	if ((rc = mdb_put(b->txn, LS(bb->s)->dbi[DBI_INFO], &k, &v, 0)) != 0)
		return batch_fail(b, mdb_err(rc));
	return 0;
}

int
ruf__store_lmdb_info_get_u64(ruf_store *s, const char *key, uint64_t *v)
{
	uint8_t b[8];
	size_t n = 0;
	int rc = ruf__store_lmdb_info_get(s, key, b, sizeof(b), &n);

	if (rc == 0 && n != sizeof(b))
		rc = RUF_E_FORMAT;
	if (rc == 0)
		*v = get_be64(b);
	return rc == RUF_E_TOO_LARGE ? RUF_E_FORMAT : rc;
}

int
ruf__store_lmdb_info_put_u64(ruf_store_batch *b, const char *key, uint64_t v)
{
	uint8_t buf[8];

	put_be64(buf, v);
	return ruf__store_lmdb_info_put(b, key, buf, sizeof(buf));
}

int
ruf__store_lmdb_batch_envelope(ruf_store_batch *bb, const uint8_t *message_id, const uint8_t **p,
                               size_t *len)
{
	struct lmdb_batch *b = LB(bb);
	MDB_val k = {RUF_STORE_MSGID_BYTES, (void *)message_id}, v;
	int rc;

	if (b->err != 0)
		return b->err;
	if ((rc = mdb_get(b->txn, LS(bb->s)->dbi[DBI_ENVELOPES], &k, &v)) != 0)
		return mdb_err(rc);
	*p = v.mv_data;
	*len = v.mv_size;
	return 0;
}

const struct ruf_store_backend ruf__store_lmdb = {
    .name = "lmdb",
    .open = lmdb_open,
    .close = lmdb_close,
    .set_map_size = lmdb_set_map_size,
    .batch_begin = lmdb_batch_begin,
    .put_envelope = lmdb_put_envelope,
    .set_receipt = lmdb_set_receipt,
    .ack = lmdb_ack,
    .audit = lmdb_audit,
    .batch_commit = lmdb_batch_commit,
    .batch_abort = lmdb_batch_abort,
    .lookup = lmdb_lookup,
    .queue_read = lmdb_queue_read,
    .envelope_read = lmdb_envelope_read,
    .queue_head = lmdb_queue_head,
    .cursor = lmdb_cursor,
    .stats = lmdb_stats,
    .audit_verify = lmdb_audit_verify,
    .blob_put = lmdb_blob_put,
    .blob_get = lmdb_blob_get,
};
