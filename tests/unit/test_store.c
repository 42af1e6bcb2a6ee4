/*
 * test_store.c - the store contract (store.h), run against the "lmdb"
 * backend, or against "jetstream" when RUF_TEST_NATS names a NATS cluster
 * (tests/cluster/test_store_jetstream.sh starts one and sets it).
 *
 * The first part uses store.h only, so it runs unchanged against either
 * backend. The second part ("LMDB backend", lmdb only) opens the LMDB
 * environment directly to damage it, and tests the msgpack record codecs.
 * The third part (jetstream only) runs two instances on one cluster, loses
 * the cluster's quorum (RUF_TEST_NATS_CTL: a command taking "kill I",
 * "start I", "wait") and crashes a commit after its PubAck.
 *
 * RUF_WRITE_CORPUS=dir writes seed records for fuzz_store_record into dir.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <lmdb.h>
#ifdef RUF_HAVE_JETSTREAM
#include <nats/nats.h>
#endif
#include <sodium.h>

#include "err.h"
#include "store.h"
#include "store_backend.h"
#include "store_record.h"
#include "util.h"

/* "lmdb", or "jetstream" when RUF_TEST_NATS is set. */
static const char *backend = "lmdb";
static const char *nats_urls;
#define BACKEND backend

struct tdir {
	char path[64];
};

static void
tdir_make(struct tdir *t)
{
	strcpy(t->path, "/tmp/ruf-store-test-XXXXXX");
	assert_non_null(mkdtemp(t->path));
}

static int
rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void
tdir_rm(struct tdir *t)
{
	nftw(t->path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/*
 * Options for the store at path. On JetStream every store directory gets a
 * log of its own (its prefix derives from the path), so tests do not see
 * each other's entries and a reopen finds its own.
 */
static struct ruf_store_opts
store_opts(const char *path, uint64_t map_size)
{
	static char prefix[40];
	struct ruf_store_opts o = {.map_size = map_size};
	uint8_t h[8];

	if (nats_urls != NULL) {
		crypto_generichash(h, sizeof(h), (const uint8_t *)path, strlen(path), NULL, 0);
		snprintf(prefix, sizeof(prefix), "T%02X%02X%02X%02X%02X%02X%02X%02X", h[0], h[1],
		         h[2], h[3], h[4], h[5], h[6], h[7]);
		o.servers = nats_urls;
		o.prefix = prefix;
		o.timeout_ms = 3000;
	}
	return o;
}

static ruf_store *
open_store(const char *path, uint64_t map_size)
{
	struct ruf_store_opts o = store_opts(path, map_size);
	ruf_store *s = NULL;
	ruf_diag d = {{0}};
	int rc = ruf_store_open(BACKEND, path, &o, &d, &s);

	if (rc != 0)
		fail_msg("open %s: %s (%s)", path, ruf_errname(rc), d.msg);
	return s;
}

static void
make_id(uint8_t id[RUF_STORE_MSGID_BYTES], uint64_t n)
{
	memset(id, 0xa5, RUF_STORE_MSGID_BYTES);
	for (int i = 0; i < 8; i++)
		id[i] = (uint8_t)(n >> (56 - 8 * i));
}

static uint64_t
id_num(const uint8_t *id)
{
	uint64_t n = 0;

	for (int i = 0; i < 8; i++)
		n = (n << 8) | id[i];
	return n;
}

/* Envelope bytes for message n, of length len: a pattern that depends on both. */
static uint8_t *
make_env(uint64_t n, size_t len)
{
	uint8_t *p = malloc(len);

	assert_non_null(p);
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(n * 131 + i * 7 + (i >> 8));
	return p;
}

/* Puts envelope n (len bytes) to the given queues in b. */
static int
put_n(ruf_store_batch *b, uint64_t n, size_t len, const char *const *q, size_t nq,
      struct ruf_store_put_result *r)
{
	uint8_t id[RUF_STORE_MSGID_BYTES], h[RUF_STORE_HASH_BYTES];
	uint8_t *env = make_env(n, len);
	struct ruf_store_put p = {
	    .message_id = id,
	    .hash = h,
	    .envelope = env,
	    .fd = -1,
	    .len = len,
	    .queues = q,
	    .n_queues = nq,
	    .device_serial = 1000 + n,
	    .time = 1800000000 + n,
	};
	int rc;

	make_id(id, n);
	crypto_generichash(h, sizeof(h), env, len, NULL, 0);
	rc = ruf_store_put_envelope(b, &p, r);
	free(env);
	return rc;
}

/* Receipt bytes for message n (the tests only need them to round-trip). */
static size_t
make_receipt(uint64_t n, uint64_t store_seq, uint8_t *buf)
{
	return (size_t)snprintf((char *)buf, 64, "receipt-%llu-seq-%llu", (unsigned long long)n,
	                        (unsigned long long)store_seq);
}

/* One batch: put n with a receipt, commit. Returns the store_seq. */
static uint64_t
commit_one(ruf_store *s, uint64_t n, size_t len, const char *const *q, size_t nq)
{
	struct ruf_store_put_result r;
	ruf_store_batch *b;
	uint8_t rc_buf[64];
	size_t rl;

	assert_int_equal(ruf_store_batch_begin(s, &b), 0);
	assert_int_equal(put_n(b, n, len, q, nq, &r), 0);
	assert_false(r.duplicate);
	rl = make_receipt(n, r.rec.store_seq, rc_buf);
	assert_int_equal(ruf_store_set_receipt(b, r.rec.message_id, rc_buf, rl), 0);
	assert_int_equal(ruf_store_batch_commit(b), 0);
	return r.rec.store_seq;
}

/* queue_read collector */
struct seen {
	size_t n;
	uint64_t seq[64];
	uint64_t msg[64];
	uint64_t len[64];
	bool bytes_ok;
	int stop_after; /* > 0: return 1 after this many; < 0: return that error at once */
};

static int
collect(void *ctx, const struct ruf_store_entry *e)
{
	struct seen *sn = ctx;
	uint64_t n = id_num(e->message_id);
	uint8_t *want;

	if (sn->stop_after < 0)
		return sn->stop_after;
	if (sn->n < 64) {
		sn->seq[sn->n] = e->seq;
		sn->msg[sn->n] = n;
		sn->len[sn->n] = e->len;
	}
	want = make_env(n, (size_t)e->len);
	if (memcmp(want, e->envelope, (size_t)e->len) != 0)
		sn->bytes_ok = false;
	free(want);
	sn->n++;
	return sn->stop_after > 0 && (int)sn->n >= sn->stop_after ? 1 : 0;
}

static struct seen
read_queue(ruf_store *s, const char *q, uint64_t after)
{
	struct seen sn = {.bytes_ok = true};
	size_t n = 0;

	assert_int_equal(ruf_store_queue_read(s, q, after, SIZE_MAX, collect, &sn, &n), 0);
	assert_int_equal(n, sn.n);
	assert_true(sn.bytes_ok);
	return sn;
}

/* ---- contract ---- */

static void
test_store_put_then_lookup_returns_what_was_stored(void **state)
{
	static const char *const q[] = {"sag", "itf.darfur"};
	struct ruf_store_record rec;
	uint8_t id[RUF_STORE_MSGID_BYTES], want[64], h[RUF_STORE_HASH_BYTES], *env;
	struct tdir t;
	ruf_store *s;
	size_t rl;

	(void)state;
	tdir_make(&t);
	s = open_store(t.path, 0);
	assert_int_equal(commit_one(s, 7, 1000, q, 2), 1);
	make_id(id, 7);
	assert_int_equal(ruf_store_lookup(s, id, &rec), 0);
	assert_memory_equal(rec.message_id, id, sizeof(id));
	env = make_env(7, 1000);
	crypto_generichash(h, sizeof(h), env, 1000, NULL, 0);
	free(env);
	assert_memory_equal(rec.hash, h, sizeof(h));
	assert_int_equal(rec.store_seq, 1);
	assert_int_equal(rec.time, 1800000007);
	assert_int_equal(rec.device_serial, 1007);
	assert_int_equal(rec.envelope_len, 1000);
	assert_int_equal(rec.n_queues, 2);
	assert_string_equal(rec.queues[0], "sag");
	assert_string_equal(rec.queues[1], "itf.darfur");
	assert_int_equal(rec.queue_seq[0], 1);
	assert_int_equal(rec.queue_seq[1], 1);
	rl = make_receipt(7, 1, want);
	assert_int_equal(rec.receipt_len, rl);
	assert_memory_equal(rec.receipt, want, rl);
	make_id(id, 8);
	assert_int_equal(ruf_store_lookup(s, id, &rec), RUF_E_NOTFOUND);
	ruf_store_close(s);
	tdir_rm(&t);
}

static void
test_store_duplicate_put_returns_original_receipt_and_stores_nothing(void **state)
{
	static const char *const q[] = {"sag"};
	static const char *const q2[] = {"hrt", "sag"};
	struct ruf_store_put_result r;
	struct ruf_store_stats st;
	uint8_t want[64];
	ruf_store_batch *b;
	struct tdir t;
	ruf_store *s;
	uint64_t head;
	size_t rl;

	(void)state;
	tdir_make(&t);
	s = open_store(t.path, 0);
	commit_one(s, 1, 500, q, 1);
	assert_int_equal(ruf_store_stats(s, &st, NULL, NULL), 0);
	/* Same id again, even to other queues and with other bytes. */
	assert_int_equal(ruf_store_batch_begin(s, &b), 0);
	assert_int_equal(put_n(b, 1, 900, q2, 2, &r), 0);
	assert_true(r.duplicate);
	assert_int_equal(r.rec.store_seq, 1);
	assert_int_equal(r.rec.envelope_len, 500);
	assert_int_equal(r.rec.n_queues, 1);
	rl = make_receipt(1, 1, want);
	assert_int_equal(r.rec.receipt_len, rl);
	assert_memory_equal(r.rec.receipt, want, rl);
	assert_int_equal(ruf_store_batch_commit(b), 0);

	struct ruf_store_stats st2;
	assert_int_equal(ruf_store_stats(s, &st2, NULL, NULL), 0);
	assert_int_equal(st2.envelopes, 1);
	assert_int_equal(st2.store_seq, 1);
	assert_int_equal(ruf_store_queue_head(s, "sag", &head), 0);
	assert_int_equal(head, 1);
	assert_int_equal(ruf_store_queue_head(s, "hrt", &head), 0);
	assert_int_equal(head, 0);
	ruf_store_close(s);
	tdir_rm(&t);
}

static void
test_store_duplicate_in_same_batch_is_reported(void **state)
{
	static const char *const q[] = {"sag"};
	struct ruf_store_put_result r1, r2;
	ruf_store_batch *b;
	struct tdir t;
	ruf_store *s;

	(void)state;
	tdir_make(&t);
	s = open_store(t.path, 0);
	assert_int_equal(ruf_store_batch_begin(s, &b), 0);
	assert_int_equal(put_n(b, 5, 100, q, 1, &r1), 0);
	assert_false(r1.duplicate);
	assert_int_equal(put_n(b, 5, 100, q, 1, &r2), 0);
	assert_true(r2.duplicate);
	assert_int_equal(r2.rec.store_seq, r1.rec.store_seq);
	assert_int_equal(r2.rec.receipt_len, 0);
	assert_int_equal(ruf_store_batch_commit(b), 0);
	assert_int_equal(read_queue(s, "sag", 0).n, 1);
	ruf_store_close(s);
	tdir_rm(&t);
}

static void
test_store_queues_keep_order_and_own_seqs(void **state)
{
	static const char *const qa[] = {"a", "b"}, *const qb[] = {"b"},
	                         *const qc[] = {"c", "a", "b"};
	struct ruf_store_record rec;
	uint8_t id[RUF_STORE_MSGID_BYTES];
	struct seen sn;
	struct tdir t;
	ruf_store *s;

	(void)state;
	tdir_make(&t);
	s = open_store(t.path, 0);
	assert_int_equal(commit_one(s, 10, 100, qa, 2), 1);
	assert_int_equal(commit_one(s, 11, 200, qb, 1), 2);
	assert_int_equal(commit_one(s, 12, 300, qc, 3), 3);
	sn = read_queue(s, "a", 0);
	assert_int_equal(sn.n, 2);
	assert_int_equal(sn.seq[0], 1);
	assert_int_equal(sn.msg[0], 10);
	assert_int_equal(sn.seq[1], 2);
	assert_int_equal(sn.msg[1], 12);
	sn = read_queue(s, "b", 0);
	assert_int_equal(sn.n, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(sn.seq[i], i + 1);
		assert_int_equal(sn.msg[i], 10 + i);
		assert_int_equal(sn.len[i], 100 * (i + 1));
	}
	sn = read_queue(s, "c", 0);
	assert_int_equal(sn.n, 1);
	assert_int_equal(sn.msg[0], 12);
	make_id(id, 12);
	assert_int_equal(ruf_store_lookup(s, id, &rec), 0);
	assert_string_equal(rec.queues[0], "c");
	assert_int_equal(rec.queue_seq[0], 1);
	assert_string_equal(rec.queues[1], "a");
	assert_int_equal(rec.queue_seq[1], 2);
	assert_string_equal(rec.queues[2], "b");
	assert_int_equal(rec.queue_seq[2], 3);
	ruf_store_close(s);
	tdir_rm(&t);
}

static void
test_store_fan_out_stores_a_big_envelope_once(void **state)
{
	static const char *const q[] = {"sag", "hrt", "itf.darfur"};
	const size_t len = 2u << 20;
	struct ruf_store_stats a, b;
	struct seen sn;
	struct tdir t;
	ruf_store *s;

	(void)state;
	tdir_make(&t);
	s = open_store(t.path, 0);
	commit_one(s, 1, 100, q, 1);
	assert_int_equal(ruf_store_stats(s, &a, NULL, NULL), 0);
	commit_one(s, 2, len, q, 3);
	assert_int_equal(ruf_store_stats(s, &b, NULL, NULL), 0);
	/* Three copies would be 6 MiB; one copy plus references is about 2. */
	assert_true(b.bytes_used - a.bytes_used < len + len / 2);
	assert_true(b.bytes_used - a.bytes_used >= len);
	assert_int_equal(b.envelopes, 2);
	for (size_t i = 0; i < 3; i++) {
		sn = read_queue(s, q[i], i == 0 ? 1 : 0);
		assert_int_equal(sn.n, 1);
		assert_int_equal(sn.msg[0], 2);
		assert_int_equal(sn.len[0], len);
	}
	ruf_store_close(s);
	tdir_rm(&t);
}

static void
test_store_cursor_never_moves_backwards(void **state)
{
	static const char *const q[] = {"sag", "hrt"};
	ruf_store_batch *b;
	struct tdir t;
	ruf_store *s;
	uint64_t c;

	(void)state;
	tdir_make(&t);
	s = open_store(t.path, 0);
	for (uint64_t i = 1; i <= 5; i++)
		commit_one(s, i, 50, q, 2);
	assert_int_equal(ruf_store_cursor(s, 42, "sag", &c), 0);
	assert_int_equal(c, 0);
	assert_int_equal(ruf_store_batch_begin(s, &b), 0);
	assert_int_equal(ruf_store_ack(b, 42, "sag", 3, 1), 0);
	assert_int_equal(ruf_store_ack(b, 42, "sag", 2, 2), 0);           /* late ack: ignored */
	assert_int_equal(ruf_store_ack(b, 42, "sag", 6, 3), RUF_E_INVAL); /* beyond head */
	assert_int_equal(ruf_store_ack(b, 42, "sag", 0, 3), RUF_E_INVAL);
	assert_int_equal(ruf_store_ack(b, 42, "nosuch", 1, 3), RUF_E_INVAL);
	assert_int_equal(ruf_store_ack(b, 43, "hrt", 5, 3), 0);
	assert_int_equal(ruf_store_batch_commit(b), 0);
	assert_int_equal(ruf_store_cursor(s, 42, "sag", &c), 0);
	assert_int_equal(c, 3);
	assert_int_equal(ruf_store_cursor(s, 42, "hrt", &c), 0);
	assert_int_equal(c, 0);
	assert_int_equal(ruf_store_cursor(s, 43, "hrt", &c), 0);
	assert_int_equal(c, 5);
	assert_int_equal(ruf_store_batch_begin(s, &b), 0);
	assert_int_equal(ruf_store_ack(b, 42, "sag", 1, 4), 0);
	assert_int_equal(ruf_store_batch_commit(b), 0);
	assert_int_equal(ruf_store_cursor(s, 42, "sag", &c), 0);
	assert_int_equal(c, 3);
	ruf_store_close(s);
	tdir_rm(&t);
}

static void
test_store_abort_leaves_nothing(void **state)
{
	static const char *const q[] = {"sag"};
	struct ruf_store_put_result r;
	struct ruf_store_record rec;
	struct ruf_store_stats st;
	uint8_t id[RUF_STORE_MSGID_BYTES];
	ruf_store_batch *b;
	struct tdir t;
	ruf_store *s;
	uint64_t c, n;

	(void)state;
	tdir_make(&t);
	s = open_store(t.path, 0);
	commit_one(s, 1, 10, q, 1);
	assert_int_equal(ruf_store_batch_begin(s, &b), 0);
	assert_int_equal(put_n(b, 2, 10, q, 1, &r), 0);
	assert_int_equal(ruf_store_ack(b, 9, "sag", 2, 1), 0);
	assert_int_equal(
	    ruf_store_audit(b, RUF_STORE_EV_RECEIVED, "device:1", r.rec.message_id, NULL, 1), 0);
	ruf_store_batch_abort(b);
	make_id(id, 2);
	assert_int_equal(ruf_store_lookup(s, id, &rec), RUF_E_NOTFOUND);
	assert_int_equal(ruf_store_cursor(s, 9, "sag", &c), 0);
	assert_int_equal(c, 0);
	assert_int_equal(ruf_store_stats(s, &st, NULL, NULL), 0);
	assert_int_equal(st.envelopes, 1);
	assert_int_equal(st.store_seq, 1);
	assert_int_equal(st.audit_entries, 0);
	assert_int_equal(ruf_store_audit_verify(s, &n, NULL), 0);
	assert_int_equal(n, 0);
	assert_int_equal(read_queue(s, "sag", 0).n, 1);
	/* The next envelope takes the seq the aborted one had. */
	assert_int_equal(commit_one(s, 3, 10, q, 1), 2);
	ruf_store_close(s);
	tdir_rm(&t);
}

static void
test_store_map_full_keeps_nothing_of_the_batch_and_recovers(void **state)
{
	static const char *const q[] = {"sag"};
	struct ruf_store_put_result r;
	struct ruf_store_record rec;
	struct ruf_store_stats st;
	uint8_t id[RUF_STORE_MSGID_BYTES];
	ruf_store_batch *b;
	struct tdir t;
	ruf_store *s;
	uint64_t n = 1, committed = 0, first_failed = 0;
	int rc = 0;

	(void)state;
	tdir_make(&t);
	s = open_store(t.path, 1u << 20);
	/* Batches of three 40 KiB envelopes until the map is full. */
	for (int round = 0; round < 100 && rc == 0; round++) {
		uint64_t first = n;
		assert_int_equal(ruf_store_batch_begin(s, &b), 0);
		for (int i = 0; i < 3 && rc == 0; i++)
			rc = put_n(b, n++, 40u << 10, q, 1, &r);
		if (rc == 0) {
			rc = ruf_store_batch_commit(b);
		} else {
			/* The batch is dead: every further call reports the same error. */
			assert_int_equal(put_n(b, n, 10, q, 1, &r), rc);
			assert_int_equal(ruf_store_batch_commit(b), rc);
		}
		if (rc == 0)
			committed = n - 1;
		else
			first_failed = first;
	}
	assert_int_equal(rc, RUF_E_NOSPC);
	assert_true(committed >= 3);
	printf("map full after %llu envelopes\n", (unsigned long long)committed);
	/* Nothing of the failed batch is visible; everything before it is. */
	for (uint64_t i = first_failed; i < n; i++) {
		make_id(id, i);
		assert_int_equal(ruf_store_lookup(s, id, &rec), RUF_E_NOTFOUND);
	}
	for (uint64_t i = 1; i <= committed; i++) {
		make_id(id, i);
		assert_int_equal(ruf_store_lookup(s, id, &rec), 0);
		assert_int_equal(rec.store_seq, i);
	}
	assert_int_equal(ruf_store_stats(s, &st, NULL, NULL), 0);
	assert_int_equal(st.store_seq, committed);
	assert_int_equal(read_queue(s, "sag", 0).n, committed);
	/* Space returns, without a restart: a bigger map. */
	assert_int_equal(ruf_store_set_map_size(s, 4u << 20), 0);
	assert_int_equal(commit_one(s, first_failed, 40u << 10, q, 1), committed + 1);
	ruf_store_close(s);

	/* Or at the next open. */
	s = open_store(t.path, 8u << 20);
	assert_int_equal(commit_one(s, first_failed + 1, 40u << 10, q, 1), committed + 2);
	assert_int_equal(ruf_store_stats(s, &st, NULL, NULL), 0);
	assert_true(st.map_size >= (8u << 20));
	assert_int_equal(read_queue(s, "sag", 0).n, committed + 2);
	ruf_store_close(s);
	tdir_rm(&t);
}

static void
test_store_reopen_keeps_everything(void **state)
{
	static const char *const q[] = {"sag", "hrt"};
	struct ruf_store_record rec;
	struct ruf_store_stats st;
	uint8_t id[RUF_STORE_MSGID_BYTES];
	ruf_store_batch *b;
	struct tdir t;
	ruf_store *s;
	uint64_t c, n;

	(void)state;
	tdir_make(&t);
	s = open_store(t.path, 0);
	for (uint64_t i = 1; i <= 4; i++)
		commit_one(s, i, 300, q, 2);
	assert_int_equal(ruf_store_batch_begin(s, &b), 0);
	assert_int_equal(ruf_store_ack(b, 5, "hrt", 2, 1), 0);
	assert_int_equal(ruf_store_audit(b, RUF_STORE_EV_ACKNOWLEDGED, "desk:5", NULL, "hrt", 1),
	                 0);
	assert_int_equal(ruf_store_batch_commit(b), 0);
	ruf_store_close(s);

	s = open_store(t.path, 0);
	make_id(id, 3);
	assert_int_equal(ruf_store_lookup(s, id, &rec), 0);
	assert_int_equal(rec.store_seq, 3);
	assert_int_equal(ruf_store_cursor(s, 5, "hrt", &c), 0);
	assert_int_equal(c, 2);
	assert_int_equal(read_queue(s, "hrt", 2).n, 2);
	assert_int_equal(ruf_store_audit_verify(s, &n, NULL), 0);
	assert_int_equal(n, 1);
	assert_int_equal(ruf_store_stats(s, &st, NULL, NULL), 0);
	assert_int_equal(st.envelopes, 4);
	assert_int_equal(st.queues, 2);
	assert_int_equal(st.cursors, 1);
	assert_int_equal(commit_one(s, 9, 10, q, 1), 5);
	ruf_store_close(s);
	tdir_rm(&t);
}

struct qstat {
	int n;
	char names[4][RUF_QUEUE_NAME_MAX + 1];
	uint64_t last[4];
};

static void
qstat_cb(void *ctx, const char *queue, uint64_t last)
{
	struct qstat *qs = ctx;

	if (qs->n < 4) {
		strcpy(qs->names[qs->n], queue);
		qs->last[qs->n] = last;
	}
	qs->n++;
}

static void
test_store_queue_read_respects_bounds_and_callback_stops(void **state)
{
	static const char *const q1[] = {"itf"}, *const q2[] = {"itf.darfur"};
	struct seen sn = {.bytes_ok = true};
	struct qstat qs = {0};
	struct ruf_store_stats st;
	struct tdir t;
	ruf_store *s;
	size_t n;

	(void)state;
	tdir_make(&t);
	s = open_store(t.path, 0);
	for (uint64_t i = 1; i <= 10; i++)
		commit_one(s, i, 64 + i, i % 2 ? q1 : q2, 1);
	/* "itf" must not run into "itf.darfur" (they share a prefix). */
	sn = read_queue(s, "itf", 0);
	assert_int_equal(sn.n, 5);
	sn = read_queue(s, "itf", 3);
	assert_int_equal(sn.n, 2);
	assert_int_equal(sn.seq[0], 4);
	assert_int_equal(sn.msg[0], 7);
	assert_int_equal(read_queue(s, "itf", 5).n, 0);
	assert_int_equal(read_queue(s, "itf", UINT64_MAX).n, 0);
	assert_int_equal(read_queue(s, "nosuch", 0).n, 0);
	/* max */
	memset(&sn, 0, sizeof(sn));
	sn.bytes_ok = true;
	assert_int_equal(ruf_store_queue_read(s, "itf.darfur", 1, 2, collect, &sn, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(sn.seq[0], 2);
	assert_int_equal(sn.seq[1], 3);
	/* a callback's stop (> 0) and error (< 0) */
	memset(&sn, 0, sizeof(sn));
	sn.bytes_ok = true;
	sn.stop_after = 3;
	assert_int_equal(ruf_store_queue_read(s, "itf.darfur", 0, 100, collect, &sn, &n), 0);
	assert_int_equal(n, 3);
	memset(&sn, 0, sizeof(sn));
	sn.stop_after = RUF_E_IO;
	assert_int_equal(ruf_store_queue_read(s, "itf.darfur", 0, 100, collect, &sn, &n), RUF_E_IO);
	assert_int_equal(n, 1);
	assert_int_equal(ruf_store_queue_read(s, "Bad Name", 0, 100, collect, &sn, &n),
	                 RUF_E_INVAL);
	assert_int_equal(ruf_store_stats(s, &st, qstat_cb, &qs), 0);
	assert_int_equal(qs.n, 2);
	assert_string_equal(qs.names[0], "itf");
	assert_int_equal(qs.last[0], 5);
	assert_string_equal(qs.names[1], "itf.darfur");
	assert_int_equal(qs.last[1], 5);
	ruf_store_close(s);
	tdir_rm(&t);
}

static void
test_store_put_from_spool_fd_and_envelope_read_in_chunks(void **state)
{
	static const char *const q[] = {"sag"};
	const size_t len = 300000;
	uint8_t *env = make_env(77, len), *back = malloc(len);
	uint8_t id[RUF_STORE_MSGID_BYTES], h[RUF_STORE_HASH_BYTES] = {1};
	struct ruf_store_put_result r;
	struct ruf_store_put p;
	ruf_store_batch *b;
	struct tdir t;
	ruf_store *s;
	uint64_t total, off = 0;
	size_t got;
	int fd;

	(void)state;
	assert_non_null(back);
	tdir_make(&t);
	s = open_store(t.path, 0);
	fd = memfd_create("spool", 0);
	assert_true(fd >= 0);
	assert_int_equal(ruf_write_all(fd, env, len), 0);
	make_id(id, 77);
	p = (struct ruf_store_put){.message_id = id,
	                           .hash = h,
	                           .envelope = NULL,
	                           .fd = fd,
	                           .len = len,
	                           .queues = q,
	                           .n_queues = 1};
	assert_int_equal(ruf_store_batch_begin(s, &b), 0);
	assert_int_equal(ruf_store_put_envelope(b, &p, &r), 0);
	assert_int_equal(ruf_store_batch_commit(b), 0);
	while (off < len) {
		assert_int_equal(
		    ruf_store_envelope_read(s, id, off, back + off, 60000, &got, &total), 0);
		assert_int_equal(total, len);
		assert_true(got > 0 && got <= 60000);
		off += got;
	}
	assert_int_equal(ruf_store_envelope_read(s, id, off, back, 10, &got, &total), 0);
	assert_int_equal(got, 0);
	assert_memory_equal(back, env, len);

	/* A spool file shorter than announced kills the batch. */
	make_id(id, 78);
	p.len = len + 1;
	assert_int_equal(ruf_store_batch_begin(s, &b), 0);
	assert_int_equal(ruf_store_put_envelope(b, &p, &r), RUF_E_TRUNCATED);
	assert_int_equal(ruf_store_batch_commit(b), RUF_E_TRUNCATED);
	assert_int_equal(ruf_store_envelope_read(s, id, 0, back, 10, &got, &total), RUF_E_NOTFOUND);
	close(fd);
	free(env);
	free(back);
	ruf_store_close(s);
	tdir_rm(&t);
}

static void
test_store_rejects_bad_arguments(void **state)
{
	static const char *const dup[] = {"sag", "sag"}, *const bad[] = {"SAG"},
	                         *const q[] = {"sag"};
	const char *many[RUF_STORE_MAX_QUEUES + 1];
	char names[RUF_STORE_MAX_QUEUES + 1][8];
	uint8_t id[RUF_STORE_MSGID_BYTES], big[RUF_STORE_RECEIPT_MAX + 1] = {0};
	struct ruf_store_put_result r;
	ruf_store_batch *b;
	ruf_store *s = NULL;
	ruf_diag d = {{0}};
	struct tdir t;

	(void)state;
	tdir_make(&t);
	assert_int_equal(ruf_store_open("nosuch", t.path, NULL, &d, &s), RUF_E_NOTFOUND);
	assert_non_null(strstr(d.msg, "nosuch"));
	assert_null(s);
	s = open_store(t.path, 0);
	for (int i = 0; i <= RUF_STORE_MAX_QUEUES; i++) {
		snprintf(names[i], sizeof(names[i]), "q%d", i);
		many[i] = names[i];
	}
	assert_int_equal(ruf_store_batch_begin(s, &b), 0);
	assert_int_equal(put_n(b, 1, 10, dup, 2, &r), RUF_E_INVAL);
	assert_int_equal(put_n(b, 1, 10, bad, 1, &r), RUF_E_INVAL);
	assert_int_equal(put_n(b, 1, 10, q, 0, &r), RUF_E_INVAL);
	assert_int_equal(put_n(b, 1, 10, many, RUF_STORE_MAX_QUEUES + 1, &r), RUF_E_INVAL);
	assert_int_equal(put_n(b, 1, 0, q, 1, &r), RUF_E_INVAL);
	/* INVAL does not kill the batch. */
	assert_int_equal(put_n(b, 1, 10, many, RUF_STORE_MAX_QUEUES, &r), 0);
	make_id(id, 1);
	assert_int_equal(ruf_store_set_receipt(b, id, big, sizeof(big)), RUF_E_INVAL);
	assert_int_equal(ruf_store_set_receipt(b, id, big, 0), RUF_E_INVAL);
	assert_int_equal(ruf_store_set_receipt(b, id, big, 10), 0);
	assert_int_equal(ruf_store_set_receipt(b, id, big, 10), RUF_E_EXISTS);
	make_id(id, 2);
	assert_int_equal(ruf_store_set_receipt(b, id, big, 10), RUF_E_NOTFOUND);
	assert_int_equal(ruf_store_audit(b, 0, "x", NULL, NULL, 0), RUF_E_INVAL);
	assert_int_equal(ruf_store_audit(b, RUF_STORE_EV_MAX + 1, "x", NULL, NULL, 0), RUF_E_INVAL);
	assert_int_equal(ruf_store_audit(b, RUF_STORE_EV_ROUTED, "", NULL, NULL, 0), RUF_E_INVAL);
	assert_int_equal(ruf_store_audit(b, RUF_STORE_EV_ROUTED, "x", NULL, "a..b", 0),
	                 RUF_E_INVAL);
	assert_int_equal(ruf_store_batch_commit(b), 0);
	assert_string_equal(ruf_store_event_name(RUF_STORE_EV_DELIVERED), "delivered");
	assert_null(ruf_store_event_name(0));
	ruf_store_close(s);
	tdir_rm(&t);
}

struct reader_arg {
	ruf_store *s;
	uint64_t n;
	int rc;
};

static void *
reader(void *p)
{
	struct reader_arg *a = p;
	struct ruf_store_record rec;
	uint8_t id[RUF_STORE_MSGID_BYTES];

	make_id(id, a->n);
	a->rc = ruf_store_lookup(a->s, id, &rec);
	return NULL;
}

static void
test_store_readers_do_not_see_an_open_batch(void **state)
{
	static const char *const q[] = {"sag"};
	struct ruf_store_put_result r;
	struct reader_arg a;
	ruf_store_batch *b;
	pthread_t th;
	struct tdir t;
	ruf_store *s;

	(void)state;
	tdir_make(&t);
	s = open_store(t.path, 0);
	assert_int_equal(ruf_store_batch_begin(s, &b), 0);
	assert_int_equal(put_n(b, 4, 10, q, 1, &r), 0);
	a = (struct reader_arg){s, 4, 0};
	assert_int_equal(pthread_create(&th, NULL, reader, &a), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(a.rc, RUF_E_NOTFOUND);
	assert_int_equal(ruf_store_batch_commit(b), 0);
	assert_int_equal(pthread_create(&th, NULL, reader, &a), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(a.rc, 0);
	ruf_store_close(s);
	tdir_rm(&t);
}

static void
test_store_blobs_replace_survive_reopen_and_check_names(void **state)
{
	static const char *const bad[] = {"", "Directory", "a/b", "x y", "\xc3\xa9"};
	char longname[RUF_STORE_BLOB_NAME_MAX + 2];
	struct tdir t;
	ruf_store *s;
	ruf_store_batch *b;
	uint8_t *data = NULL, big[64];
	size_t len = 0;

	(void)state;
	tdir_make(&t);
	s = open_store(t.path, 0);
	assert_int_equal(ruf_store_available(s), 1);
	assert_int_equal(ruf_store_blob_get(s, "directory", &data, &len), RUF_E_NOTFOUND);
	assert_null(data);

	assert_int_equal(ruf_store_batch_begin(s, &b), 0);
	assert_int_equal(ruf_store_blob_put(b, "directory", (const uint8_t *)"v1", 2), 0);
	/* Not visible before the commit. */
	assert_int_equal(ruf_store_blob_get(s, "directory", &data, &len), RUF_E_NOTFOUND);
	assert_int_equal(ruf_store_batch_commit(b), 0);
	assert_int_equal(ruf_store_blob_get(s, "directory", &data, &len), 0);
	assert_int_equal(len, 2);
	assert_memory_equal(data, "v1", 2);
	free(data);

	/* Replaced by a later commit; an aborted batch changes nothing. */
	assert_int_equal(ruf_store_batch_begin(s, &b), 0);
	assert_int_equal(ruf_store_blob_put(b, "directory", (const uint8_t *)"v22", 3), 0);
	assert_int_equal(ruf_store_batch_commit(b), 0);
	assert_int_equal(ruf_store_batch_begin(s, &b), 0);
	assert_int_equal(ruf_store_blob_put(b, "directory", (const uint8_t *)"lost", 4), 0);
	ruf_store_batch_abort(b);

	/* Bad names and sizes are argument errors that leave the batch usable. */
	assert_int_equal(ruf_store_batch_begin(s, &b), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(ruf_store_blob_put(b, bad[i], big, 1), RUF_E_INVAL);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(ruf_store_blob_put(b, longname, big, 1), RUF_E_INVAL);
	longname[RUF_STORE_BLOB_NAME_MAX] = '\0';
	memset(big, 7, sizeof(big));
	assert_int_equal(ruf_store_blob_put(b, longname, big, sizeof(big)), 0);
	assert_int_equal(ruf_store_blob_put(b, "x", big, 0), RUF_E_INVAL);
	assert_int_equal(ruf_store_blob_put(b, "x", big, RUF_STORE_BLOB_MAX + 1), RUF_E_INVAL);
	assert_int_equal(ruf_store_batch_commit(b), 0);
	assert_int_equal(ruf_store_blob_get(s, "Directory", &data, &len), RUF_E_INVAL);
	ruf_store_close(s);

	s = open_store(t.path, 0);
	assert_int_equal(ruf_store_blob_get(s, "directory", &data, &len), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(data, "v22", 3);
	free(data);
	assert_int_equal(ruf_store_blob_get(s, longname, &data, &len), 0);
	assert_int_equal(len, sizeof(big));
	assert_memory_equal(data, big, sizeof(big));
	free(data);
	ruf_store_close(s);
	tdir_rm(&t);
}

static void
test_store_audit_chain_verifies(void **state)
{
	uint8_t id[RUF_STORE_MSGID_BYTES];
	ruf_store_batch *b;
	struct tdir t;
	ruf_store *s;
	uint64_t n;

	(void)state;
	tdir_make(&t);
	s = open_store(t.path, 0);
	make_id(id, 1);
	for (int round = 0; round < 3; round++) {
		assert_int_equal(ruf_store_batch_begin(s, &b), 0);
		for (int e = RUF_STORE_EV_RECEIVED; e <= RUF_STORE_EV_MAX; e++)
			assert_int_equal(ruf_store_audit(b, e, "device:1", e % 2 ? id : NULL,
			                                 e > 1 ? "sag" : NULL, 100 + e),
			                 0);
		assert_int_equal(ruf_store_batch_commit(b), 0);
	}
	assert_int_equal(ruf_store_audit_verify(s, &n, NULL), 0);
	assert_int_equal(n, 12);
	ruf_store_close(s);
	tdir_rm(&t);
}

/* Crash durability: every store_seq reported after commit returned survives SIGKILL. */
struct report {
	uint64_t n;         /* message number */
	uint64_t store_seq; /* as committed */
};

static void
child_commit_forever(const char *path, int wfd, uint64_t first)
{
	static const char *const q[] = {"sag", "hrt"};
	struct ruf_store_opts o = store_opts(path, 0);
	ruf_store *s = NULL;
	uint64_t n = first;

	if (ruf_store_open(BACKEND, path, &o, NULL, &s) != 0)
		_exit(2);
	for (;;) {
		struct report rep[3];
		struct ruf_store_put_result r;
		ruf_store_batch *b;
		int k = 1 + (int)(n % 3);

		if (ruf_store_batch_begin(s, &b) != 0)
			_exit(3);
		for (int i = 0; i < k; i++, n++) {
			uint8_t rb[64];
			if (put_n(b, n, 200 + (size_t)(n % 5000), q, 1 + n % 2, &r) != 0 ||
			    r.duplicate)
				_exit(4);
			if (ruf_store_set_receipt(b, r.rec.message_id, rb,
			                          make_receipt(n, r.rec.store_seq, rb)) != 0)
				_exit(5);
			rep[i] = (struct report){n, r.rec.store_seq};
		}
		if (ruf_store_batch_commit(b) != 0)
			_exit(6);
		/* Only now is it acknowledged: report it. */
		if (write(wfd, rep, sizeof(rep[0]) * (size_t)k) != (ssize_t)(sizeof(rep[0]) * k))
			_exit(7);
	}
}

struct order {
	uint64_t last_msg, last_seq;
	int bad;
};

static int
check_order(void *ctx, const struct ruf_store_entry *e)
{
	struct order *o = ctx;
	uint64_t n = id_num(e->message_id);

	if (n <= o->last_msg || e->seq != o->last_seq + 1)
		o->bad++;
	o->last_msg = n;
	o->last_seq = e->seq;
	return 0;
}

static void
test_store_sigkill_loses_no_committed_batch(void **state)
{
	struct report *got = NULL;
	size_t n_got = 0, cap = 0;
	struct tdir t;
	uint64_t next = 1;

	(void)state;
	tdir_make(&t);
	srand((unsigned)getpid());
	for (int round = 0; round < 3; round++) {
		int pfd[2], status;
		size_t want = 5 + (size_t)(rand() % 40), this_round = 0;
		pid_t pid;

		assert_int_equal(pipe(pfd), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			/*
			 * A fresh process (exec), not a fork of this one: libnats
			 * threads do not survive fork.
			 */
			char fd_s[16], first_s[24];
			close(pfd[0]);
			snprintf(fd_s, sizeof(fd_s), "%d", pfd[1]);
			snprintf(first_s, sizeof(first_s), "%llu", (unsigned long long)next);
			execl("/proc/self/exe", "test_store", "--commit-child", t.path, fd_s,
			      first_s, (char *)NULL);
			_exit(9);
		}
		close(pfd[1]);
		for (;;) {
			struct report r;
			ssize_t k;
			if (this_round == want) {
				kill(pid, SIGKILL);
				want = SIZE_MAX;
			}
			k = read(pfd[0], &r, sizeof(r));
			if (k == 0)
				break;
			if (k < 0 && errno == EINTR)
				continue;
			assert_int_equal(k, sizeof(r)); /* pipe writes <= PIPE_BUF are atomic */
			if (n_got == cap) {
				cap = cap ? cap * 2 : 64;
				got = realloc(got, cap * sizeof(*got));
				assert_non_null(got);
			}
			got[n_got++] = r;
			this_round++;
		}
		close(pfd[0]);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

		/* Reopen: every reported store_seq is there, once. */
		ruf_store *s = open_store(t.path, 0);
		struct ruf_store_stats st;
		assert_int_equal(ruf_store_stats(s, &st, NULL, NULL), 0);
		assert_true(st.store_seq >= n_got);
		assert_int_equal(st.envelopes, st.store_seq);
		for (size_t i = 0; i < n_got; i++) {
			struct ruf_store_record rec;
			uint8_t id[RUF_STORE_MSGID_BYTES];
			make_id(id, got[i].n);
			assert_int_equal(ruf_store_lookup(s, id, &rec), 0);
			assert_int_equal(rec.store_seq, got[i].store_seq);
			assert_true(rec.receipt_len > 0);
		}
		/* Queues hold each message once, in store_seq order. */
		struct order o = {0};
		size_t cnt;
		assert_int_equal(ruf_store_queue_read(s, "sag", 0, SIZE_MAX, check_order, &o, &cnt),
		                 0);
		assert_int_equal(o.bad, 0);
		assert_int_equal(cnt, st.envelopes);
		o = (struct order){0};
		assert_int_equal(ruf_store_queue_read(s, "hrt", 0, SIZE_MAX, check_order, &o, &cnt),
		                 0);
		assert_int_equal(o.bad, 0);
		/* The next round continues after whatever the child committed. */
		next = 1;
		for (size_t i = 0; i < n_got; i++)
			if (got[i].n >= next)
				next = got[i].n + 1;
		next += 1000; /* beyond unreported commits too */
		ruf_store_close(s);
	}
	printf("%zu reported commits checked after 3 kills\n", n_got);
	free(got);
	tdir_rm(&t);
}

/* ---- LMDB backend: damage the environment directly ---- */

static void
lmdb_poke(const char *path, const char *dbname, const void *key, size_t klen,
          void (*edit)(MDB_val *v, void *ctx), void *ctx)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = {klen, (void *)key}, v;
	uint8_t copy[4096];

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
	assert_int_equal(mdb_env_open(env, path, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, dbname, 0, &dbi), 0);
	if (edit == NULL) {
		assert_int_equal(mdb_del(txn, dbi, &k, NULL), 0);
	} else {
		assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
		assert_true(v.mv_size <= sizeof(copy));
		memcpy(copy, v.mv_data, v.mv_size);
		v.mv_data = copy;
		edit(&v, ctx);
		assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	}
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

/* Writes key = value (created when missing). */
static void
lmdb_poke_put(const char *path, const char *dbname, const void *key, size_t klen, const void *val,
              size_t vlen)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
	assert_int_equal(mdb_env_open(env, path, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, dbname, 0, &dbi), 0);
	assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

static void
set_format(MDB_val *v, void *ctx)
{
	static uint8_t b;

	b = *(uint8_t *)ctx; /* a positive fixint */
	v->mv_data = &b;
	v->mv_size = 1;
}

static void
test_store_refuses_unknown_format_version(void **state)
{
	uint8_t two = 2, one = 1;
	ruf_store *s;
	ruf_diag d = {{0}};
	struct tdir t;

	(void)state;
	tdir_make(&t);
	s = open_store(t.path, 0);
	ruf_store_close(s);
	lmdb_poke(t.path, "info", "format", 6, set_format, &two);
	s = NULL;
	assert_int_equal(ruf_store_open(BACKEND, t.path, NULL, &d, &s), RUF_E_VERSION);
	assert_null(s);
	assert_non_null(strstr(d.msg, "format version 2"));
	/* The refusal changed nothing: put the version back and it opens. */
	lmdb_poke(t.path, "info", "format", 6, set_format, &one);
	s = open_store(t.path, 0);
	ruf_store_close(s);
	tdir_rm(&t);
}

static void
flip_last_who_byte(MDB_val *v, void *ctx)
{
	(void)ctx;
	/* who "device:1" ends 'device:1' then bin(msgid) then str(queue); find '1'. */
	uint8_t *p = v->mv_data;
	for (size_t i = 0; i + 8 <= v->mv_size; i++) {
		if (memcmp(p + i, "device:1", 8) == 0) {
			p[i + 7] = '2';
			return;
		}
	}
	fail_msg("who not found in the audit record");
}

static void
test_store_audit_verify_detects_tampered_entries(void **state)
{
	uint8_t key[8] = {0};
	ruf_store_batch *b;
	ruf_diag d = {{0}};
	struct tdir t;
	ruf_store *s;
	uint64_t n;

	(void)state;
	tdir_make(&t);
	s = open_store(t.path, 0);
	assert_int_equal(ruf_store_batch_begin(s, &b), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(
		    ruf_store_audit(b, RUF_STORE_EV_RECEIVED, "device:1", NULL, "sag", 10 + i), 0);
	assert_int_equal(ruf_store_batch_commit(b), 0);
	assert_int_equal(ruf_store_audit_verify(s, &n, NULL), 0);
	ruf_store_close(s);

	/* A middle entry rewritten: the next entry's prev_hash no longer matches. */
	key[7] = 3;
	lmdb_poke(t.path, "audit", key, 8, flip_last_who_byte, NULL);
	s = open_store(t.path, 0);
	assert_int_equal(ruf_store_audit_verify(s, &n, &d), RUF_E_STORE_AUDIT);
	assert_non_null(strstr(d.msg, "entry 4"));
	ruf_store_close(s);

	/* The last entry rewritten: caught by the recorded head. */
	tdir_rm(&t);
	tdir_make(&t);
	s = open_store(t.path, 0);
	assert_int_equal(ruf_store_batch_begin(s, &b), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(ruf_store_audit(b, RUF_STORE_EV_ROUTED, "device:1", NULL, NULL, i),
		                 0);
	assert_int_equal(ruf_store_batch_commit(b), 0);
	ruf_store_close(s);
	lmdb_poke(t.path, "audit", key, 8, flip_last_who_byte, NULL);
	s = open_store(t.path, 0);
	assert_int_equal(ruf_store_audit_verify(s, &n, &d), RUF_E_STORE_AUDIT);
	ruf_store_close(s);

	/* An entry deleted. */
	key[7] = 2;
	lmdb_poke(t.path, "audit", key, 8, NULL, NULL);
	s = open_store(t.path, 0);
	assert_int_equal(ruf_store_audit_verify(s, &n, &d), RUF_E_STORE_AUDIT);
	assert_non_null(strstr(d.msg, "missing"));
	ruf_store_close(s);
	tdir_rm(&t);
}

static void
truncate_value(MDB_val *v, void *ctx)
{
	(void)ctx;
	v->mv_size /= 2;
}

static void
test_store_damaged_records_are_format_errors_not_crashes(void **state)
{
	static const char *const q[] = {"sag"};
	struct ruf_store_put_result r;
	struct ruf_store_record rec;
	uint8_t id[RUF_STORE_MSGID_BYTES], ck[8 + 3] = {0, 0, 0, 0, 0, 0, 0, 9, 's', 'a', 'g'};
	ruf_store_batch *b;
	struct tdir t;
	ruf_store *s;
	size_t n;
	uint64_t c;

	(void)state;
	tdir_make(&t);
	s = open_store(t.path, 0);
	commit_one(s, 1, 100, q, 1);
	commit_one(s, 2, 100, q, 1);
	assert_int_equal(ruf_store_batch_begin(s, &b), 0);
	assert_int_equal(ruf_store_ack(b, 9, "sag", 1, 1), 0);
	assert_int_equal(ruf_store_batch_commit(b), 0);
	ruf_store_close(s);

	make_id(id, 1);
	lmdb_poke(t.path, "meta", id, sizeof(id), truncate_value, NULL);
	lmdb_poke(t.path, "cursors", ck, sizeof(ck), truncate_value, NULL);
	make_id(id, 2);
	lmdb_poke(t.path, "envelopes", id, sizeof(id), NULL, NULL);
	s = open_store(t.path, 0);
	make_id(id, 1);
	assert_int_equal(ruf_store_lookup(s, id, &rec), RUF_E_FORMAT);
	assert_int_equal(ruf_store_cursor(s, 9, "sag", &c), RUF_E_FORMAT);
	/* A queue entry whose envelope is gone: an error after the good entry. */
	struct seen sn = {.bytes_ok = true};
	assert_int_equal(ruf_store_queue_read(s, "sag", 0, 10, collect, &sn, &n), RUF_E_FORMAT);
	assert_int_equal(n, 1);
	/* A put meeting the damaged record kills its batch, nothing half-written. */
	assert_int_equal(ruf_store_batch_begin(s, &b), 0);
	assert_int_equal(put_n(b, 1, 100, q, 1, &r), RUF_E_FORMAT);
	assert_int_equal(ruf_store_batch_commit(b), RUF_E_FORMAT);
	ruf_store_close(s);

	/* A lost format record refuses the open (it is not taken for a new store). */
	lmdb_poke(t.path, "info", "format", 6, NULL, NULL);
	s = NULL;
	assert_int_equal(ruf_store_open(BACKEND, t.path, NULL, NULL, &s), RUF_E_FORMAT);
	assert_null(s);
	uint8_t one = 1;
	lmdb_poke_put(t.path, "info", "format", 6, &one, 1);

	/* A damaged state record refuses the open. */
	lmdb_poke(t.path, "info", "state", 5, truncate_value, NULL);
	s = NULL;
	ruf_diag d = {{0}};
	assert_int_equal(ruf_store_open(BACKEND, t.path, NULL, &d, &s), RUF_E_FORMAT);
	assert_null(s);
	assert_non_null(strstr(d.msg, "state"));
	tdir_rm(&t);
}

/* A reader thread checks every snapshot is consistent while batches commit. */
struct race {
	ruf_store *s;
	atomic_int stop;
	int bad;
	uint64_t reads;
};

static void *
race_reader(void *p)
{
	struct race *ra = p;

	while (!ra->stop) {
		struct ruf_store_stats st;
		struct order o = {0};
		size_t n;

		if (ruf_store_stats(ra->s, &st, NULL, NULL) != 0)
			ra->bad++;
		if (ruf_store_queue_read(ra->s, "sag", 0, SIZE_MAX, check_order, &o, &n) != 0 ||
		    o.bad != 0 || n < st.store_seq)
			ra->bad++;
		ra->reads++;
	}
	return NULL;
}

static void
test_store_reads_on_another_thread_see_whole_batches(void **state)
{
	static const char *const q[] = {"sag", "hrt"};
	struct ruf_store_put_result r;
	struct race ra = {0};
	ruf_store_batch *b;
	pthread_t th;
	struct tdir t;
	uint64_t n = 1;

	(void)state;
	tdir_make(&t);
	ra.s = open_store(t.path, 0);
	assert_int_equal(pthread_create(&th, NULL, race_reader, &ra), 0);
	for (int i = 0; i < 60; i++) {
		assert_int_equal(ruf_store_batch_begin(ra.s, &b), 0);
		for (int k = 0; k < 3; k++, n++)
			assert_int_equal(put_n(b, n, 100 + (size_t)n, q, 2, &r), 0);
		assert_int_equal(ruf_store_batch_commit(b), 0);
	}
	ra.stop = 1;
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(ra.bad, 0);
	assert_true(ra.reads > 0);
	ruf_store_close(ra.s);
	tdir_rm(&t);
}

/* ---- record codecs ---- */

static void
write_seed(const char *name, const uint8_t *p, size_t n)
{
	const char *dir = getenv("RUF_WRITE_CORPUS");
	char path[512];

	if (dir == NULL)
		return;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(ruf_file_write_atomic(path, p, n, 0644, false), 0);
}

static void
sample_record(struct ruf_store_record *r)
{
	memset(r, 0, sizeof(*r));
	memset(r->hash, 0x11, sizeof(r->hash));
	r->store_seq = 300;
	r->time = 1800000000;
	r->device_serial = 70000;
	r->envelope_len = 1u << 20;
	r->n_queues = 2;
	strcpy(r->queues[0], "sag");
	strcpy(r->queues[1], "itf.darfur");
	r->queue_seq[0] = 1;
	r->queue_seq[1] = 99999;
	r->receipt_len = 300;
	memset(r->receipt, 0x42, r->receipt_len);
}

/* Every strict prefix fails, one extra byte fails, and the whole decodes. */
#define CHECK_PREFIXES(dec, buf, n, out)                                                           \
	do {                                                                                       \
		uint8_t tmp_[RUF__STORE_META_MAX + 1];                                             \
		for (size_t i_ = 0; i_ < (n); i_++)                                                \
			assert_int_not_equal(dec(buf, i_, out), 0);                                \
		memcpy(tmp_, buf, n);                                                              \
		tmp_[n] = 0;                                                                       \
		assert_int_equal(dec(tmp_, (n) + 1, out), RUF_E_FORMAT);                           \
		assert_int_equal(dec(buf, n, out), 0);                                             \
	} while (0)

static void
test_record_meta_round_trips_and_rejects_truncation(void **state)
{
	struct ruf_store_record a, b;
	uint8_t buf[RUF__STORE_META_MAX];
	size_t n;

	(void)state;
	sample_record(&a);
	assert_int_equal(ruf__store_meta_encode(&a, buf, sizeof(buf), &n), 0);
	write_seed("meta-1", buf, n);
	CHECK_PREFIXES(ruf__store_meta_decode, buf, n, &b);
	assert_memory_equal(a.hash, b.hash, sizeof(a.hash));
	assert_int_equal(b.store_seq, 300);
	assert_int_equal(b.n_queues, 2);
	assert_string_equal(b.queues[1], "itf.darfur");
	assert_int_equal(b.queue_seq[1], 99999);
	assert_int_equal(b.receipt_len, 300);
	assert_memory_equal(b.receipt, a.receipt, 300);
	/* An encoder buffer too small is an error, not an overflow. */
	assert_int_equal(ruf__store_meta_encode(&a, buf, 20, &n), RUF_E_TOO_LARGE);
	/* Without a receipt. */
	a.receipt_len = 0;
	a.n_queues = 1;
	assert_int_equal(ruf__store_meta_encode(&a, buf, sizeof(buf), &n), 0);
	write_seed("meta-2", buf, n);
	assert_int_equal(ruf__store_meta_decode(buf, n, &b), 0);
	assert_int_equal(b.receipt_len, 0);
}

static void
test_record_meta_rejects_bad_fields(void **state)
{
	struct ruf_store_record a, b;
	uint8_t buf[RUF__STORE_META_MAX];
	size_t n;

	(void)state;
	sample_record(&a);
	strcpy(a.queues[0], "BAD");
	assert_int_equal(ruf__store_meta_encode(&a, buf, sizeof(buf), &n), 0);
	assert_int_equal(ruf__store_meta_decode(buf, n, &b), RUF_E_FORMAT);
	sample_record(&a);
	a.queue_seq[0] = 0;
	assert_int_equal(ruf__store_meta_encode(&a, buf, sizeof(buf), &n), 0);
	assert_int_equal(ruf__store_meta_decode(buf, n, &b), RUF_E_FORMAT);
	sample_record(&a);
	a.store_seq = 0;
	assert_int_equal(ruf__store_meta_encode(&a, buf, sizeof(buf), &n), 0);
	assert_int_equal(ruf__store_meta_decode(buf, n, &b), RUF_E_FORMAT);
	/* A version this build does not know. */
	sample_record(&a);
	assert_int_equal(ruf__store_meta_encode(&a, buf, sizeof(buf), &n), 0);
	assert_int_equal(buf[0], 0x98); /* fixarray 8 */
	assert_int_equal(buf[1], 0x01); /* version 1 */
	buf[1] = 0x02;
	assert_int_equal(ruf__store_meta_decode(buf, n, &b), RUF_E_VERSION);
	/* ... even with another element count. */
	buf[0] = 0x99;
	assert_int_equal(ruf__store_meta_decode(buf, n, &b), RUF_E_VERSION);
	/* An array header claiming 2^32-1 elements is refused without allocating. */
	static const uint8_t huge[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x01};
	assert_int_equal(ruf__store_meta_decode(huge, sizeof(huge), &b), RUF_E_FORMAT);
	static const uint8_t huge2[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
	assert_int_not_equal(ruf__store_meta_decode(huge2, sizeof(huge2), &b), 0);
}

static void
test_record_cursor_audit_state_round_trip(void **state)
{
	struct ruf__store_cursor c = {.seq = 1234567890123ull, .time = 5}, c2;
	struct ruf__store_audit a, a2;
	struct ruf__store_state s = {.store_seq = 9, .audit_n = 4}, s2;
	uint8_t buf[RUF__STORE_META_MAX];
	uint64_t v;
	size_t n;

	(void)state;
	assert_int_equal(ruf__store_cursor_encode(&c, buf, sizeof(buf), &n), 0);
	write_seed("cursor-1", buf, n);
	CHECK_PREFIXES(ruf__store_cursor_decode, buf, n, &c2);
	assert_int_equal(c2.seq, c.seq);
	assert_int_equal(c2.time, 5);

	memset(&a, 0, sizeof(a));
	memset(a.prev_hash, 0x33, sizeof(a.prev_hash));
	a.time = 77;
	a.event = RUF_STORE_EV_DELIVERED;
	strcpy(a.who, "desk:42");
	a.has_message_id = true;
	memset(a.message_id, 0x44, sizeof(a.message_id));
	strcpy(a.queue, "rqr.east-africa");
	assert_int_equal(ruf__store_audit_encode(&a, buf, sizeof(buf), &n), 0);
	write_seed("audit-1", buf, n);
	CHECK_PREFIXES(ruf__store_audit_decode, buf, n, &a2);
	assert_int_equal(memcmp(&a.prev_hash, &a2.prev_hash, sizeof(a.prev_hash)), 0);
	assert_int_equal(a2.event, RUF_STORE_EV_DELIVERED);
	assert_string_equal(a2.who, "desk:42");
	assert_true(a2.has_message_id);
	assert_string_equal(a2.queue, "rqr.east-africa");
	a.has_message_id = false;
	a.queue[0] = '\0';
	assert_int_equal(ruf__store_audit_encode(&a, buf, sizeof(buf), &n), 0);
	write_seed("audit-2", buf, n);
	assert_int_equal(ruf__store_audit_decode(buf, n, &a2), 0);
	assert_false(a2.has_message_id);
	assert_string_equal(a2.queue, "");

	memset(s.audit_head, 0x55, sizeof(s.audit_head));
	assert_int_equal(ruf__store_state_encode(&s, buf, sizeof(buf), &n), 0);
	write_seed("state-1", buf, n);
	CHECK_PREFIXES(ruf__store_state_decode, buf, n, &s2);
	assert_int_equal(s2.store_seq, 9);
	assert_int_equal(s2.audit_n, 4);

	assert_int_equal(ruf__store_format_encode(RUF__STORE_FORMAT, buf, sizeof(buf), &n), 0);
	write_seed("format-1", buf, n);
	assert_int_equal(ruf__store_format_decode(buf, n, &v), 0);
	assert_int_equal(v, RUF__STORE_FORMAT);
	assert_int_equal(ruf__store_format_encode(1ull << 40, buf, sizeof(buf), &n), 0);
	assert_int_equal(ruf__store_format_decode(buf, n, &v), 0);
	assert_int_equal(v, 1ull << 40);
	assert_int_not_equal(ruf__store_format_decode(buf, n - 1, &v), 0);
}

#ifdef RUF_HAVE_JETSTREAM
/* ---- JetStream: several instances on one cluster ---- */

/* What a notify callback saw. */
struct notes {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	char queues[512]; /* every queue named, space-separated */
	char blobs[512];  /* every blob named */
	int state_down, state_up;
};

static void
notes_init(struct notes *n)
{
	memset(n, 0, sizeof(*n));
	pthread_mutex_init(&n->mu, NULL);
	pthread_cond_init(&n->cond, NULL);
}

static void
notes_destroy(struct notes *n)
{
	pthread_mutex_destroy(&n->mu);
	pthread_cond_destroy(&n->cond);
}

static pthread_t caller_thread;

static void
on_note(void *ctx, const struct ruf_store_note *note)
{
	struct notes *n = ctx;
	size_t i;

	/* Never on the caller's thread. */
	assert_false(pthread_equal(pthread_self(), caller_thread));
	pthread_mutex_lock(&n->mu);
	switch (note->kind) {
	case RUF_STORE_NOTE_QUEUES:
		for (i = 0; i < note->n_queues; i++) {
			size_t l = strlen(n->queues);
			snprintf(n->queues + l, sizeof(n->queues) - l, "%s ", note->queues[i]);
		}
		break;
	case RUF_STORE_NOTE_BLOB: {
		size_t l = strlen(n->blobs);
		snprintf(n->blobs + l, sizeof(n->blobs) - l, "%s ", note->blob);
		break;
	}
	case RUF_STORE_NOTE_STATE:
		if (note->available)
			n->state_up++;
		else
			n->state_down++;
		break;
	default:
		fail_msg("unknown note kind %d", note->kind);
	}
	pthread_cond_broadcast(&n->cond);
	pthread_mutex_unlock(&n->mu);
}

/* Waits up to secs for pred(n) to hold; returns whether it did. */
static bool
notes_wait(struct notes *n, bool (*pred)(struct notes *, const void *), const void *arg, int secs)
{
	struct timespec ts;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += secs;
	pthread_mutex_lock(&n->mu);
	while (!(ok = pred(n, arg)) && pthread_cond_timedwait(&n->cond, &n->mu, &ts) != ETIMEDOUT)
		;
	ok = pred(n, arg);
	pthread_mutex_unlock(&n->mu);
	return ok;
}

static bool
has_queue(struct notes *n, const void *q)
{
	char w[64];

	snprintf(w, sizeof(w), "%s ", (const char *)q);
	return strstr(n->queues, w) != NULL;
}

static bool
has_blob(struct notes *n, const void *b)
{
	char w[80];

	snprintf(w, sizeof(w), "%s ", (const char *)b);
	return strstr(n->blobs, w) != NULL;
}

static bool
went_down(struct notes *n, const void *arg)
{
	(void)arg;
	return n->state_down > 0;
}

static bool
came_up(struct notes *n, const void *arg)
{
	(void)arg;
	return n->state_up > 0;
}

/* Two instances (two views) on one log named prefix. */
static ruf_store *
open_instance(const char *path, const char *prefix)
{
	struct ruf_store_opts o = store_opts(path, 0);
	ruf_store *s = NULL;
	ruf_diag d = {{0}};
	int rc;

	o.prefix = prefix;
	rc = ruf_store_open("jetstream", path, &o, &d, &s);
	if (rc != 0)
		fail_msg("open %s: %s (%s)", path, ruf_errname(rc), d.msg);
	return s;
}

static void
unique_prefix(char *out, size_t cap, const char *tag)
{
	uint8_t r[6];

	randombytes_buf(r, sizeof(r));
	snprintf(out, cap, "%s%02X%02X%02X%02X%02X%02X", tag, r[0], r[1], r[2], r[3], r[4], r[5]);
}

static void
assert_same_record(ruf_store *a, ruf_store *b, uint64_t n)
{
	struct ruf_store_record ra, rb;
	uint8_t id[RUF_STORE_MSGID_BYTES];

	make_id(id, n);
	assert_int_equal(ruf_store_lookup(a, id, &ra), 0);
	assert_int_equal(ruf_store_lookup(b, id, &rb), 0);
	assert_int_equal(ra.store_seq, rb.store_seq);
	assert_int_equal(ra.n_queues, rb.n_queues);
	for (size_t i = 0; i < ra.n_queues; i++) {
		assert_string_equal(ra.queues[i], rb.queues[i]);
		assert_int_equal(ra.queue_seq[i], rb.queue_seq[i]);
	}
	assert_int_equal(ra.receipt_len, rb.receipt_len);
	assert_memory_equal(ra.receipt, rb.receipt, ra.receipt_len);
	assert_memory_equal(ra.hash, rb.hash, sizeof(ra.hash));
	assert_int_equal(ra.envelope_len, rb.envelope_len);
}

static void
test_js_two_instances_see_each_others_commits_with_the_same_seqs(void **state)
{
	static const char *const q1[] = {"sag"}, *const q2[] = {"sag", "hrt"};
	char prefix[24];
	struct tdir ta, tb;
	struct notes nb;
	struct ruf_store_stats sa, sb;
	ruf_store *a, *b;
	ruf_store_batch *bt;
	uint8_t *blob = NULL;
	size_t blen = 0;
	uint64_t na, nbn;

	(void)state;
	caller_thread = pthread_self();
	notes_init(&nb);
	unique_prefix(prefix, sizeof(prefix), "TWO");
	tdir_make(&ta);
	tdir_make(&tb);
	a = open_instance(ta.path, prefix);
	b = open_instance(tb.path, prefix);
	assert_int_equal(ruf_store_available(a), 1);
	ruf_store_set_notify(b, on_note, &nb);

	/* A commits: a small envelope, one of three chunks, a blob, an ack, audits. */
	assert_int_equal(commit_one(a, 1, 300, q1, 1), 1);
	assert_int_equal(commit_one(a, 2, 600u << 10, q2, 2), 2);
	assert_int_equal(ruf_store_batch_begin(a, &bt), 0);
	assert_int_equal(ruf_store_blob_put(bt, "directory", (const uint8_t *)"dir-v1", 6), 0);
	assert_int_equal(ruf_store_ack(bt, 42, "sag", 2, 1800000100), 0);
	assert_int_equal(
	    ruf_store_audit(bt, RUF_STORE_EV_ACKNOWLEDGED, "desk:42", NULL, "sag", 1800000100), 0);
	assert_int_equal(ruf_store_batch_commit(bt), 0);

	/* B is told, from its own thread, and then reads exactly what A wrote. */
	assert_true(notes_wait(&nb, has_queue, "sag", 15));
	assert_true(notes_wait(&nb, has_queue, "hrt", 15));
	assert_true(notes_wait(&nb, has_blob, "directory", 15));
	assert_same_record(a, b, 1);
	assert_same_record(a, b, 2);
	assert_true(read_queue(b, "sag", 0).n == 2);
	assert_true(read_queue(b, "hrt", 0).n == 1);
	assert_int_equal(ruf_store_blob_get(b, "directory", &blob, &blen), 0);
	assert_int_equal(blen, 6);
	assert_memory_equal(blob, "dir-v1", 6);
	free(blob);
	uint64_t cur = 0;
	assert_int_equal(ruf_store_cursor(b, 42, "sag", &cur), 0);
	assert_int_equal(cur, 2);

	/* B writes next; A sees it with the seq B was given. */
	assert_int_equal(commit_one(b, 3, 1000, q2, 2), 3);
	assert_int_equal(ruf_store_batch_begin(a, &bt), 0); /* catches up */
	ruf_store_batch_abort(bt);
	assert_same_record(a, b, 3);

	/* A duplicate of B's message put through A is a duplicate with B's receipt. */
	struct ruf_store_put_result r;
	assert_int_equal(ruf_store_batch_begin(a, &bt), 0);
	assert_int_equal(put_n(bt, 3, 1000, q2, 2, &r), 0);
	assert_true(r.duplicate);
	assert_int_equal(r.rec.store_seq, 3);
	assert_true(r.rec.receipt_len > 0);
	assert_int_equal(ruf_store_batch_commit(bt), 0);

	assert_int_equal(ruf_store_stats(a, &sa, NULL, NULL), 0);
	assert_int_equal(ruf_store_stats(b, &sb, NULL, NULL), 0);
	assert_int_equal(sa.store_seq, 3);
	assert_int_equal(sb.store_seq, 3);
	assert_int_equal(sa.audit_entries, sb.audit_entries);
	assert_int_equal(ruf_store_audit_verify(a, &na, NULL), 0);
	assert_int_equal(ruf_store_audit_verify(b, &nbn, NULL), 0);
	assert_int_equal(na, nbn);

	ruf_store_set_notify(b, NULL, NULL);
	ruf_store_close(a);
	ruf_store_close(b);
	notes_destroy(&nb);
	tdir_rm(&ta);
	tdir_rm(&tb);
}

static void
test_js_concurrent_commits_conflict_and_the_retry_succeeds(void **state)
{
	static const char *const q[] = {"sag"};
	char prefix[24];
	struct tdir ta, tb;
	struct ruf_store_put_result r;
	struct ruf_store_record rec;
	uint8_t id[RUF_STORE_MSGID_BYTES];
	ruf_store *a, *b;
	ruf_store_batch *ba, *bb;

	(void)state;
	unique_prefix(prefix, sizeof(prefix), "CON");
	tdir_make(&ta);
	tdir_make(&tb);
	a = open_instance(ta.path, prefix);
	b = open_instance(tb.path, prefix);

	/* Both start from the same (empty) log and both assign store_seq 1. */
	assert_int_equal(ruf_store_batch_begin(a, &ba), 0);
	assert_int_equal(ruf_store_batch_begin(b, &bb), 0);
	assert_int_equal(put_n(ba, 10, 100, q, 1, &r), 0);
	assert_int_equal(r.rec.store_seq, 1);
	assert_int_equal(put_n(bb, 11, 100, q, 1, &r), 0);
	assert_int_equal(r.rec.store_seq, 1);
	assert_int_equal(ruf_store_batch_commit(ba), 0);
	assert_int_equal(ruf_store_batch_commit(bb), RUF_E_STORE_CONFLICT);
	/* Nothing of the losing batch is kept. */
	make_id(id, 11);
	assert_int_equal(ruf_store_lookup(b, id, &rec), RUF_E_NOTFOUND);
	/* The retry catches up first and gets the next seqs. */
	assert_int_equal(ruf_store_batch_begin(b, &bb), 0);
	assert_int_equal(put_n(bb, 11, 100, q, 1, &r), 0);
	assert_false(r.duplicate);
	assert_int_equal(r.rec.store_seq, 2);
	assert_int_equal(r.rec.queue_seq[0], 2);
	assert_int_equal(ruf_store_batch_commit(bb), 0);
	assert_int_equal(ruf_store_batch_begin(a, &ba), 0);
	ruf_store_batch_abort(ba);
	assert_same_record(a, b, 10);
	assert_same_record(a, b, 11);

	/* Many rounds from two threads: every commit ends up once, same seqs. */
	ruf_store_close(a);
	ruf_store_close(b);
	tdir_rm(&ta);
	tdir_rm(&tb);
}

struct racer {
	ruf_store *s;
	uint64_t first;
	int n, conflicts;
};

static void *
race_commits(void *arg)
{
	static const char *const q[] = {"sag", "hrt"};
	struct racer *rc = arg;

	for (int i = 0; i < rc->n; i++) {
		for (int tries = 0;; tries++) {
			struct ruf_store_put_result r;
			ruf_store_batch *b;
			uint8_t rb[64];
			int e;

			if (tries > 50 || ruf_store_batch_begin(rc->s, &b) != 0)
				return (void *)1;
			if (put_n(b, rc->first + (uint64_t)i, 64, q, 2, &r) != 0 || r.duplicate ||
			    ruf_store_set_receipt(
			        b, r.rec.message_id, rb,
			        make_receipt(rc->first + (uint64_t)i, r.rec.store_seq, rb)) != 0) {
				ruf_store_batch_abort(b);
				return (void *)2;
			}
			e = ruf_store_batch_commit(b);
			if (e == 0)
				break;
			if (e != RUF_E_STORE_CONFLICT)
				return (void *)3;
			rc->conflicts++;
		}
	}
	return NULL;
}

static void
test_js_racing_instances_each_commit_lands_once(void **state)
{
	char prefix[24];
	struct tdir ta, tb;
	struct racer ra, rb;
	struct ruf_store_stats sa, sb;
	pthread_t th;
	void *res;
	ruf_store *a, *b;
	ruf_store_batch *bt;

	(void)state;
	unique_prefix(prefix, sizeof(prefix), "RACE");
	tdir_make(&ta);
	tdir_make(&tb);
	a = open_instance(ta.path, prefix);
	b = open_instance(tb.path, prefix);
	ra = (struct racer){a, 1000, 25, 0};
	rb = (struct racer){b, 2000, 25, 0};
	assert_int_equal(pthread_create(&th, NULL, race_commits, &ra), 0);
	assert_null(race_commits(&rb));
	assert_int_equal(pthread_join(th, &res), 0);
	assert_null(res);
	printf("racing instances: %d + %d conflicts, retried\n", ra.conflicts, rb.conflicts);
	assert_int_equal(ruf_store_batch_begin(a, &bt), 0);
	ruf_store_batch_abort(bt);
	assert_int_equal(ruf_store_batch_begin(b, &bt), 0);
	ruf_store_batch_abort(bt);
	assert_int_equal(ruf_store_stats(a, &sa, NULL, NULL), 0);
	assert_int_equal(ruf_store_stats(b, &sb, NULL, NULL), 0);
	assert_int_equal(sa.store_seq, 50);
	assert_int_equal(sb.store_seq, 50);
	for (int i = 0; i < 25; i++) {
		assert_same_record(a, b, 1000 + (uint64_t)i);
		assert_same_record(a, b, 2000 + (uint64_t)i);
	}
	ruf_store_close(a);
	ruf_store_close(b);
	tdir_rm(&ta);
	tdir_rm(&tb);
}

static int
crash_after_puback(const char *point)
{
	return strcmp(point, "after_puback") == 0;
}

static void
test_js_crash_between_puback_and_local_commit_heals_on_reopen(void **state)
{
	static const char *const q[] = {"sag"};
	struct ruf_store_put_result r;
	struct ruf_store_record rec;
	uint8_t id[RUF_STORE_MSGID_BYTES], rb[64];
	ruf_store_batch *b;
	struct tdir t;
	ruf_store *s;
	uint64_t n = 0;

	(void)state;
	tdir_make(&t);
	s = open_store(t.path, 0);
	assert_int_equal(commit_one(s, 1, 500, q, 1), 1);
	assert_int_equal(ruf_store_batch_begin(s, &b), 0);
	assert_int_equal(put_n(b, 2, 700, q, 1, &r), 0);
	assert_int_equal(
	    ruf_store_set_receipt(b, r.rec.message_id, rb, make_receipt(2, r.rec.store_seq, rb)),
	    0);
	ruf__store_js_test_hook = crash_after_puback;
	assert_int_equal(ruf_store_batch_commit(b), RUF_E_IO);
	ruf__store_js_test_hook = NULL;
	ruf_store_close(s);

	/* The entry is in the log, not in the view: the next open applies it. */
	s = open_store(t.path, 0);
	make_id(id, 2);
	assert_int_equal(ruf_store_lookup(s, id, &rec), 0);
	assert_int_equal(rec.store_seq, 2);
	assert_true(rec.receipt_len > 0);
	assert_true(read_queue(s, "sag", 0).n == 2);
	assert_int_equal(commit_one(s, 3, 100, q, 1), 3);
	assert_int_equal(ruf_store_audit_verify(s, &n, NULL), 0);
	ruf_store_close(s);
	tdir_rm(&t);
}

static void
test_js_refuses_an_lmdb_store_as_a_view(void **state)
{
	static const char *const q[] = {"sag"};
	struct ruf_store_opts o;
	ruf_diag d = {{0}};
	struct tdir t;
	ruf_store *s = NULL;

	(void)state;
	tdir_make(&t);
	assert_int_equal(ruf_store_open("lmdb", t.path, NULL, NULL, &s), 0);
	assert_int_equal(commit_one(s, 1, 100, q, 1), 1);
	ruf_store_close(s);
	s = NULL;
	o = store_opts(t.path, 0);
	assert_int_equal(ruf_store_open("jetstream", t.path, &o, &d, &s), RUF_E_FORMAT);
	assert_non_null(strstr(d.msg, "lmdb"));
	assert_null(s);
	o.servers = NULL;
	assert_int_equal(ruf_store_open("jetstream", t.path, &o, &d, &s), RUF_E_INVAL);
	tdir_rm(&t);
}

static void
test_js_a_log_that_lost_the_views_entries_is_refused(void **state)
{
	static const char *const q[] = {"sag"};
	struct ruf_store_opts o;
	natsConnection *nc = NULL;
	jsCtx *jc = NULL;
	char name[64];
	ruf_diag d = {{0}};
	struct tdir t;
	ruf_store *s;

	(void)state;
	tdir_make(&t);
	s = open_store(t.path, 0);
	assert_int_equal(commit_one(s, 1, 100, q, 1), 1);
	ruf_store_close(s);

	/* The cluster loses the log (as after a quorum's power loss, or a recreated stream). */
	o = store_opts(t.path, 0);
	assert_int_equal(natsConnection_ConnectTo(&nc, nats_urls), NATS_OK);
	assert_int_equal(natsConnection_JetStream(&jc, nc, NULL), NATS_OK);
	snprintf(name, sizeof(name), "%s_LOG", o.prefix);
	assert_int_equal(js_DeleteStream(jc, name, NULL, NULL), NATS_OK);
	jsCtx_Destroy(jc);
	natsConnection_Destroy(nc);

	/* The view holds an entry the new log does not: refuse, do not build on it. */
	s = NULL;
	assert_int_equal(ruf_store_open("jetstream", t.path, &o, &d, &s), RUF_E_FORMAT);
	assert_null(s);
	assert_non_null(strstr(d.msg, "does not follow"));
	tdir_rm(&t);
}

static void
test_js_unreachable_cluster_opens_refuses_writes_and_serves_reads(void **state)
{
	static const char *const q[] = {"sag"};
	struct ruf_store_opts o;
	struct ruf_store_put_result r;
	struct ruf_store_record rec;
	uint8_t id[RUF_STORE_MSGID_BYTES];
	ruf_store_batch *b;
	ruf_diag d = {{0}};
	struct tdir t;
	ruf_store *s = NULL;
	time_t t0;

	(void)state;
	tdir_make(&t);
	o = store_opts(t.path, 0);
	o.servers = "nats://127.0.0.1:1"; /* nothing listens there */
	o.timeout_ms = 1000;
	assert_int_equal(ruf_store_open("jetstream", t.path, &o, &d, &s), 0);
	assert_int_equal(ruf_store_available(s), 0);
	t0 = time(NULL);
	assert_int_equal(ruf_store_batch_begin(s, &b), 0);
	assert_int_equal(put_n(b, 1, 100, q, 1, &r), 0);
	assert_int_equal(ruf_store_batch_commit(b), RUF_E_STORE_UNAVAILABLE);
	/* "Retry later" at once, not after a network timeout per batch. */
	assert_true(time(NULL) - t0 <= 2);
	make_id(id, 1);
	assert_int_equal(ruf_store_lookup(s, id, &rec), RUF_E_NOTFOUND);
	assert_true(read_queue(s, "sag", 0).n == 0);
	ruf_store_close(s);
	tdir_rm(&t);
}

/* Runs the cluster control command; returns its exit status. */
static int
nats_ctl(const char *what)
{
	const char *ctl = getenv("RUF_TEST_NATS_CTL");
	char cmd[1024];
	int rc;

	assert_non_null(ctl);
	snprintf(cmd, sizeof(cmd), "%s %s", ctl, what);
	rc = system(cmd);
	printf("cluster: %s -> %d\n", what, rc);
	fflush(stdout);
	return rc;
}

static void
test_js_lost_quorum_refuses_writes_serves_reads_and_recovers(void **state)
{
	static const char *const q[] = {"sag"};
	struct ruf_store_record rec;
	uint8_t id[RUF_STORE_MSGID_BYTES];
	struct notes nt;
	struct tdir t;
	ruf_store *s;
	int rc = 0, tries;

	(void)state;
	if (getenv("RUF_TEST_NATS_CTL") == NULL)
		skip();
	caller_thread = pthread_self();
	notes_init(&nt);
	tdir_make(&t);
	s = open_store(t.path, 0);
	ruf_store_set_notify(s, on_note, &nt);
	assert_int_equal(commit_one(s, 1, 100, q, 1), 1);

	assert_int_equal(nats_ctl("kill 2"), 0);
	assert_int_equal(nats_ctl("kill 3"), 0);
	/* No quorum: never an acknowledgement, "retry later" instead. */
	for (tries = 0; tries < 3; tries++) {
		ruf_store_batch *b;
		struct ruf_store_put_result r;
		assert_int_equal(ruf_store_batch_begin(s, &b), 0);
		assert_int_equal(put_n(b, 2, 100, q, 1, &r), 0);
		rc = ruf_store_batch_commit(b);
		assert_int_not_equal(rc, 0);
		if (rc == RUF_E_STORE_UNAVAILABLE)
			break;
	}
	printf("without quorum: %s after %d tries\n", ruf_errname(rc), tries + 1);
	fflush(stdout);
	assert_int_equal(rc, RUF_E_STORE_UNAVAILABLE);
	assert_int_equal(ruf_store_available(s), 0);
	assert_true(notes_wait(&nt, went_down, NULL, 15));
	/* It stays down while there is no quorum, though the last node answers reads. */
	sleep(3);
	assert_int_equal(ruf_store_available(s), 0);
	/* Reads go on from the local view. */
	make_id(id, 1);
	assert_int_equal(ruf_store_lookup(s, id, &rec), 0);
	assert_true(read_queue(s, "sag", 0).n == 1);

	assert_int_equal(nats_ctl("start 2"), 0);
	assert_int_equal(nats_ctl("start 3"), 0);
	/*
	 * Not required to succeed: with the streams of all the earlier tests
	 * to catch up, the nodes may report healthy late. The store's own
	 * recovery is what is tested.
	 */
	(void)nats_ctl("wait 60");
	/* It notices by itself, and writes work again. */
	assert_true(notes_wait(&nt, came_up, NULL, 90));
	for (tries = 0; tries < 60; tries++) {
		ruf_store_batch *b;
		struct ruf_store_put_result r;
		assert_int_equal(ruf_store_batch_begin(s, &b), 0);
		assert_int_equal(put_n(b, 2, 100, q, 1, &r), 0);
		if (r.duplicate) {
			/* An earlier try was stored after all, exactly once. */
			ruf_store_batch_abort(b);
			rc = 0;
			break;
		}
		if ((rc = ruf_store_batch_commit(b)) == 0)
			break;
		assert_int_equal(rc, RUF_E_STORE_UNAVAILABLE);
		sleep(1);
	}
	printf("quorum back: commit %s after %d tries\n", ruf_errname(rc), tries + 1);
	fflush(stdout);
	assert_int_equal(rc, 0);
	assert_int_equal(ruf_store_available(s), 1);
	make_id(id, 2);
	assert_int_equal(ruf_store_lookup(s, id, &rec), 0);
	assert_int_equal(rec.store_seq, 2);
	ruf_store_set_notify(s, NULL, NULL);
	ruf_store_close(s);
	notes_destroy(&nt);
	tdir_rm(&t);
}
#endif

int
main(int argc, char **argv)
{
	const struct CMUnitTest contract[] = {
	    cmocka_unit_test(test_store_put_then_lookup_returns_what_was_stored),
	    cmocka_unit_test(test_store_duplicate_put_returns_original_receipt_and_stores_nothing),
	    cmocka_unit_test(test_store_duplicate_in_same_batch_is_reported),
	    cmocka_unit_test(test_store_queues_keep_order_and_own_seqs),
	    cmocka_unit_test(test_store_fan_out_stores_a_big_envelope_once),
	    cmocka_unit_test(test_store_cursor_never_moves_backwards),
	    cmocka_unit_test(test_store_abort_leaves_nothing),
	    cmocka_unit_test(test_store_map_full_keeps_nothing_of_the_batch_and_recovers),
	    cmocka_unit_test(test_store_reopen_keeps_everything),
	    cmocka_unit_test(test_store_queue_read_respects_bounds_and_callback_stops),
	    cmocka_unit_test(test_store_put_from_spool_fd_and_envelope_read_in_chunks),
	    cmocka_unit_test(test_store_rejects_bad_arguments),
	    cmocka_unit_test(test_store_readers_do_not_see_an_open_batch),
	    cmocka_unit_test(test_store_blobs_replace_survive_reopen_and_check_names),
	    cmocka_unit_test(test_store_audit_chain_verifies),
	    cmocka_unit_test(test_store_sigkill_loses_no_committed_batch),
	    cmocka_unit_test(test_store_reads_on_another_thread_see_whole_batches),
	};
	const struct CMUnitTest lmdb_only[] = {
	    cmocka_unit_test(test_store_refuses_unknown_format_version),
	    cmocka_unit_test(test_store_audit_verify_detects_tampered_entries),
	    cmocka_unit_test(test_store_damaged_records_are_format_errors_not_crashes),
	    cmocka_unit_test(test_record_meta_round_trips_and_rejects_truncation),
	    cmocka_unit_test(test_record_meta_rejects_bad_fields),
	    cmocka_unit_test(test_record_cursor_audit_state_round_trip),
	};
	int failed;

	if (sodium_init() < 0)
		return 1;
	/* Every line reaches the log even if the process dies. */
	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc == 5 && strcmp(argv[1], "--commit-child") == 0) {
		nats_urls = getenv("RUF_TEST_NATS");
		if (nats_urls != NULL)
			backend = "jetstream";
		child_commit_forever(argv[2], atoi(argv[3]), strtoull(argv[4], NULL, 10));
	}
	nats_urls = getenv("RUF_TEST_NATS");
	if (nats_urls == NULL) {
		failed = cmocka_run_group_tests_name("store contract (lmdb)", contract, NULL, NULL);
		return failed + cmocka_run_group_tests_name("lmdb backend", lmdb_only, NULL, NULL);
	}
#ifdef RUF_HAVE_JETSTREAM
	const struct CMUnitTest js_only[] = {
	    cmocka_unit_test(test_js_two_instances_see_each_others_commits_with_the_same_seqs),
	    cmocka_unit_test(test_js_concurrent_commits_conflict_and_the_retry_succeeds),
	    cmocka_unit_test(test_js_racing_instances_each_commit_lands_once),
	    cmocka_unit_test(test_js_crash_between_puback_and_local_commit_heals_on_reopen),
	    cmocka_unit_test(test_js_refuses_an_lmdb_store_as_a_view),
	    cmocka_unit_test(test_js_a_log_that_lost_the_views_entries_is_refused),
	    cmocka_unit_test(test_js_unreachable_cluster_opens_refuses_writes_and_serves_reads),
	    /* Last: it takes the cluster down and up again. */
	    cmocka_unit_test(test_js_lost_quorum_refuses_writes_serves_reads_and_recovers),
	};
	backend = "jetstream";
	failed = cmocka_run_group_tests_name("store contract (jetstream)", contract, NULL, NULL);
	return failed + cmocka_run_group_tests_name("jetstream backend", js_only, NULL, NULL);
#else
	printf("RUF_TEST_NATS is set but the jetstream backend is not built\n");
	return 77;
#endif
}
