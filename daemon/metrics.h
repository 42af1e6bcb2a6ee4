/*
 * metrics.h - counters rufd exports in the Prometheus text format on
 * metrics_listen (loopback only). Loop-thread counters are plain; the
 * commit worker's are updated under the commit lock (commit.c copies them).
 */
#ifndef RUFD_METRICS_H
#define RUFD_METRICS_H

#include <stdint.h>

#include "rufd.h"

enum hs_fail {
	HS_FAIL_NOISE,   /* message 1 did not decrypt / decode */
	HS_FAIL_CERT,    /* certificate malformed or not valid under the root */
	HS_FAIL_ROLE,    /* neither device nor desk */
	HS_FAIL_REVOKED, /* revoked in the directory */
	HS_FAIL_KEY,     /* certificate X25519 key is not the Noise static key */
	HS_FAIL_CLOCK,   /* timestamp outside clock_skew */
	HS_FAIL_TIMEOUT, /* no complete handshake in time */
	HS_FAIL_LIMIT,   /* message 1 too large, or connection limit reached */
	HS_FAIL_MAX
};

struct rufd_stats {
	uint64_t conn_device, conn_desk, conn_unauth; /* current */
	uint64_t conn_total, conn_refused;
	uint64_t hs_ok, hs_fail[HS_FAIL_MAX];
	uint64_t submissions, submissions_rejected, submissions_stale, submit_bytes;
	uint64_t dedup_hits, receipts, nack_retry;
	uint64_t uploads_superseded; /* taken over by the same device's new connection */
	uint64_t deliveries, delivered_bytes, delivery_acks;
	uint64_t protocol_errors;
	uint64_t conn_buffer_max; /* largest write queue any connection reached, bytes */
	/* from the commit worker */
	uint64_t commits, commit_items, commit_failures;
	uint64_t commit_usec_total, commit_usec_max, commit_items_max;
	uint64_t store_conflicts;   /* batches run again: another instance committed first */
	uint64_t store_unavailable; /* batches refused: no quorum / cluster unreachable */
	/* several instances (cluster.c), loop thread */
	uint64_t cluster_notes;    /* commits of other instances applied to our view */
	uint64_t directory_shared; /* directories taken from or given to the other instances */
};

extern struct rufd_stats rufd_stats;
extern const char *const rufd_hs_fail_names[HS_FAIL_MAX];

/* Starts the metrics HTTP listener when cfg.metrics_listen is set. */
int rufd_metrics_start(struct rufd *d);
void rufd_metrics_stop(struct rufd *d);

#endif
