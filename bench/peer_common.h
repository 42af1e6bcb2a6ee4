/*
 * peer_common.h - shared by the peer clients (bench/peer_mqtt.c,
 * bench/peer_nats.c): per-message timestamps and the "result" line in the
 * same keys as bench_ingest, so bench/peers.sh compares like with like.
 */
#ifndef PEER_COMMON_H
#define PEER_COMMON_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct peer_run {
	long count;     /* messages to publish */
	double *t_send; /* publish call */
	double *t_ack;  /* broker acknowledged (PUBACK / JetStream PubAck) */
	double *t_recv; /* durable subscriber got it */
	_Atomic long acked, received;
	_Atomic(double) last_ack, last_recv;
	double t0;
};

static inline double
peer_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void
peer_init(struct peer_run *r, long count)
{
	memset(r, 0, sizeof(*r));
	r->count = count;
	r->t_send = calloc((size_t)count, sizeof(double));
	r->t_ack = calloc((size_t)count, sizeof(double));
	r->t_recv = calloc((size_t)count, sizeof(double));
	if (!r->t_send || !r->t_ack || !r->t_recv) {
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
}

static inline void
peer_max(_Atomic(double) *a, double v)
{
	double cur = atomic_load(a);
	while (v > cur && !atomic_compare_exchange_weak(a, &cur, v))
		;
}

static inline void
peer_mark_ack(struct peer_run *r, long i)
{
	if (i < 0 || i >= r->count || r->t_ack[i] != 0)
		return;
	double t = peer_now();
	r->t_ack[i] = t;
	atomic_fetch_add(&r->acked, 1);
	peer_max(&r->last_ack, t);
}

static inline void
peer_mark_recv(struct peer_run *r, long i)
{
	if (i < 0 || i >= r->count || r->t_recv[i] != 0)
		return;
	double t = peer_now();
	r->t_recv[i] = t;
	atomic_fetch_add(&r->received, 1);
	peer_max(&r->last_recv, t);
}

static int
peer_cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static inline double
peer_pct(const double *v, long n, double p)
{
	if (n <= 0)
		return 0;
	long i = (long)(p / 100.0 * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

static inline void
peer_report(struct peer_run *r, const char *system, unsigned w)
{
	double *l1 = calloc((size_t)r->count + 1, sizeof(double));
	double *l2 = calloc((size_t)r->count + 1, sizeof(double));
	long n1 = 0, n2 = 0;
	if (!l1 || !l2)
		exit(1);
	for (long i = 0; i < r->count; i++) {
		if (r->t_send[i] > 0 && r->t_ack[i] > 0)
			l1[n1++] = (r->t_ack[i] - r->t_send[i]) * 1e3;
		if (r->t_send[i] > 0 && r->t_recv[i] > 0)
			l2[n2++] = (r->t_recv[i] - r->t_send[i]) * 1e3;
	}
	qsort(l1, (size_t)n1, sizeof(double), peer_cmpd);
	qsort(l2, (size_t)n2, sizeof(double), peer_cmpd);
	double e1 = atomic_load(&r->last_ack) - r->t0, e2 = atomic_load(&r->last_recv) - r->t0;
	printf("result system=%s w=%u envelopes=%ld receipts=%ld desk_got=%ld ingest_per_s=%.0f "
	       "desk_per_s=%.0f receipt_p50_ms=%.2f receipt_p99_ms=%.2f desk_p50_ms=%.2f "
	       "desk_p99_ms=%.2f seconds=%.2f\n",
	       system, w, r->count, atomic_load(&r->acked), atomic_load(&r->received),
	       e1 > 0 ? (double)atomic_load(&r->acked) / e1 : 0,
	       e2 > 0 ? (double)atomic_load(&r->received) / e2 : 0, peer_pct(l1, n1, 50),
	       peer_pct(l1, n1, 99), peer_pct(l2, n2, 50), peer_pct(l2, n2, 99), e1);
	free(l1);
	free(l2);
}

#endif
