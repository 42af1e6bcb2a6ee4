/*
 * storecheck.c - opens a stopped (or killed) rufd's store and checks it the
 * way the crash tests need:
 *
 *   ruf_storecheck STORE_DIR [-c DESK_CERT:QUEUE]... [-q]
 *
 * Prints, one per line:
 *   audit N                       the audit chain verified, N entries
 *   stats envelopes=E store_seq=S queues=Q cursors=C
 *   entry QUEUE SEQ MESSAGE_ID LEN  every queue entry, in order (unless -q)
 *   cursor DESK_SERIAL QUEUE SEQ  each -c cursor
 * Exit 0 when the store opens, the audit chain verifies, every queue holds
 * seqs 1..last without a gap, no message id twice in one queue, every entry
 * has its dedup record naming that queue and seq with a receipt, and the
 * record's hash is the stored bytes' hash; 1 otherwise (reason on stderr).
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cert.h"
#include "store.h"
#include "util.h"

const char *__asan_default_options(void);
const char *
__asan_default_options(void)
{
	return "detect_leaks=0";
}

static ruf_store *st;
static bool quiet;
static int bad;

struct qwalk {
	const char *queue;
	uint64_t expect;
	size_t n_ids;
	uint8_t (*ids)[16];
};

static void
complain(const char *fmt, const char *q, uint64_t seq)
{
	fprintf(stderr, "storecheck: queue %s seq %llu: %s\n", q, (unsigned long long)seq, fmt);
	bad = 1;
}

static int
on_entry(void *ctx, const struct ruf_store_entry *e)
{
	struct qwalk *w = ctx;
	struct ruf_store_record rec;
	uint8_t h[32];
	char hex[33];
	size_t i;

	ruf_hex(e->message_id, 16, hex);
	if (!quiet)
		printf("entry %s %llu %s %llu\n", e->queue, (unsigned long long)e->seq, hex,
		       (unsigned long long)e->len);
	if (e->seq != w->expect)
		complain("gap or disorder", w->queue, e->seq);
	w->expect = e->seq + 1;
	for (size_t k = 0; k < w->n_ids; k++)
		if (memcmp(w->ids[k], e->message_id, 16) == 0)
			complain("message stored twice in this queue", w->queue, e->seq);
	if (!(w->ids = realloc(w->ids, (w->n_ids + 1) * 16)))
		abort();
	memcpy(w->ids[w->n_ids++], e->message_id, 16);
	if (ruf_store_lookup(st, e->message_id, &rec) != 0) {
		complain("no dedup record", w->queue, e->seq);
		return 0;
	}
	for (i = 0; i < rec.n_queues; i++)
		if (strcmp(rec.queues[i], e->queue) == 0 && rec.queue_seq[i] == e->seq)
			break;
	if (i == rec.n_queues)
		complain("record does not name this queue and seq", w->queue, e->seq);
	if (rec.receipt_len == 0)
		complain("stored without a receipt", w->queue, e->seq);
	crypto_generichash(h, sizeof(h), e->envelope, (size_t)e->len, NULL, 0);
	if (memcmp(h, rec.hash, 32) != 0 || rec.envelope_len != e->len)
		complain("stored bytes do not match the record's hash", w->queue, e->seq);
	return 0;
}

struct qlist {
	char (*names)[RUF_QUEUE_NAME_MAX + 1];
	uint64_t *last;
	size_t n;
};

static void
on_queue(void *ctx, const char *queue, uint64_t last_seq)
{
	struct qlist *l = ctx;

	l->names = realloc(l->names, (l->n + 1) * sizeof(*l->names));
	l->last = realloc(l->last, (l->n + 1) * sizeof(*l->last));
	if (!l->names || !l->last)
		abort();
	snprintf(l->names[l->n], sizeof(l->names[0]), "%s", queue);
	l->last[l->n++] = last_seq;
}

int
main(int argc, char *argv[])
{
	struct ruf_store_stats s;
	struct qlist ql = {0};
	ruf_diag d = {{0}};
	uint64_t n = 0;
	int rc;

	if (argc < 2) {
		fprintf(stderr, "usage: ruf_storecheck STORE_DIR [-c DESK_CERT:QUEUE]... [-q]\n");
		return 2;
	}
	if (sodium_init() < 0)
		return 2;
	if ((rc = ruf_store_open("lmdb", argv[1], NULL, &d, &st)) != 0) {
		fprintf(stderr, "storecheck: open %s: %s %s\n", argv[1], ruf_strerror(rc), d.msg);
		return 1;
	}
	if ((rc = ruf_store_audit_verify(st, &n, &d)) != 0) {
		fprintf(stderr, "storecheck: audit chain: %s %s\n", ruf_strerror(rc), d.msg);
		return 1;
	}
	printf("audit %llu\n", (unsigned long long)n);
	for (int i = 2; i < argc; i++)
		if (strcmp(argv[i], "-q") == 0)
			quiet = true;
	if ((rc = ruf_store_stats(st, &s, on_queue, &ql)) != 0) {
		fprintf(stderr, "storecheck: stats: %s\n", ruf_strerror(rc));
		return 1;
	}
	printf("stats envelopes=%llu store_seq=%llu queues=%llu cursors=%llu\n",
	       (unsigned long long)s.envelopes, (unsigned long long)s.store_seq,
	       (unsigned long long)s.queues, (unsigned long long)s.cursors);
	for (size_t i = 0; i < ql.n; i++) {
		struct qwalk w = {.queue = ql.names[i], .expect = 1};
		size_t got = 0;
		if ((rc = ruf_store_queue_read(st, ql.names[i], 0, SIZE_MAX, on_entry, &w, &got)) !=
		    0) {
			fprintf(stderr, "storecheck: read %s: %s\n", ql.names[i], ruf_strerror(rc));
			bad = 1;
		}
		if (w.expect - 1 != ql.last[i])
			complain("last seq differs from the entries", ql.names[i], ql.last[i]);
		free(w.ids);
	}
	for (int i = 2; i < argc; i++) {
		char arg[1024], *colon;
		ruf_cert *c = NULL;
		uint64_t seq = 0, head = 0;
		if (strcmp(argv[i], "-c") != 0 || i + 1 >= argc)
			continue;
		snprintf(arg, sizeof(arg), "%s", argv[++i]);
		if (!(colon = strrchr(arg, ':')))
			return 2;
		*colon = '\0';
		if ((rc = ruf_cert_load(arg, &c)) != 0) {
			fprintf(stderr, "storecheck: %s: %s\n", arg, ruf_strerror(rc));
			return 2;
		}
		if (ruf_store_cursor(st, c->serial, colon + 1, &seq) != 0 ||
		    ruf_store_queue_head(st, colon + 1, &head) != 0 || seq > head) {
			fprintf(stderr, "storecheck: cursor %s beyond its queue\n", colon + 1);
			bad = 1;
		}
		printf("cursor %llu %s %llu\n", (unsigned long long)c->serial, colon + 1,
		       (unsigned long long)seq);
		ruf_cert_free(c);
	}
	ruf_store_close(st);
	return bad;
}
