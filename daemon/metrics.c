/*
 * metrics.c - Prometheus text exposition on a loopback HTTP port. Any
 * request gets the metrics; the answer is written and the connection closed
 * (HTTP/1.0 semantics). Nothing here names a peer or a report.
 */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "session.h"

struct rufd_stats rufd_stats;

const char *const rufd_hs_fail_names[HS_FAIL_MAX] = {
    [HS_FAIL_NOISE] = "noise",     [HS_FAIL_CERT] = "certificate", [HS_FAIL_ROLE] = "role",
    [HS_FAIL_REVOKED] = "revoked", [HS_FAIL_KEY] = "static_key",   [HS_FAIL_CLOCK] = "clock_skew",
    [HS_FAIL_TIMEOUT] = "timeout", [HS_FAIL_LIMIT] = "limit",
};

#define REQ_MAX 4096
#define OUT_MAX (256u << 10)

struct rufd_metrics {
	uv_tcp_t server;
	bool started;
};

struct mconn {
	uv_tcp_t tcp;
	uv_write_t wr;
	struct rufd *d;
	char req[REQ_MAX];
	size_t req_len;
	bool answered;
	char *out;
	size_t out_len;
};

struct buf {
	char *p;
	size_t len;
};

static void bprintf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void
bprintf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->len >= OUT_MAX)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, OUT_MAX - b->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		b->len += (size_t)n < OUT_MAX - b->len ? (size_t)n : OUT_MAX - b->len - 1;
}

static void
queue_depth(void *ctx, const char *queue, uint64_t last_seq)
{
	bprintf(ctx, "rufd_queue_depth{queue=\"%s\"} %llu\n", queue, (unsigned long long)last_seq);
}

#define U(x) ((unsigned long long)(x))

static void
render(struct rufd *d, struct buf *b)
{
	const struct rufd_stats *s = &rufd_stats;
	struct ruf_store_stats st = {0};

	bprintf(b, "# TYPE rufd_connections gauge\n");
	bprintf(b, "rufd_connections{role=\"device\"} %llu\n", U(s->conn_device));
	bprintf(b, "rufd_connections{role=\"desk\"} %llu\n", U(s->conn_desk));
	bprintf(b, "rufd_connections{role=\"unauthenticated\"} %llu\n", U(s->conn_unauth));
	bprintf(b, "# TYPE rufd_connections_total counter\nrufd_connections_total %llu\n",
	        U(s->conn_total));
	bprintf(b,
	        "# TYPE rufd_connections_refused_total counter\n"
	        "rufd_connections_refused_total %llu\n",
	        U(s->conn_refused));
	bprintf(b, "# TYPE rufd_handshakes_total counter\n");
	bprintf(b, "rufd_handshakes_total{result=\"ok\"} %llu\n", U(s->hs_ok));
	for (int i = 0; i < HS_FAIL_MAX; i++)
		bprintf(b, "rufd_handshakes_total{result=\"failed\",reason=\"%s\"} %llu\n",
		        rufd_hs_fail_names[i], U(s->hs_fail[i]));
	bprintf(b, "# TYPE rufd_submissions_total counter\n");
	bprintf(b, "rufd_submissions_total{result=\"stored\"} %llu\n", U(s->submissions));
	bprintf(b, "rufd_submissions_total{result=\"rejected\"} %llu\n",
	        U(s->submissions_rejected));
	bprintf(b, "rufd_submissions_total{result=\"stale_directory\"} %llu\n",
	        U(s->submissions_stale));
	bprintf(b, "rufd_submissions_total{result=\"retry_later\"} %llu\n", U(s->nack_retry));
	bprintf(b, "# TYPE rufd_submitted_bytes_total counter\nrufd_submitted_bytes_total %llu\n",
	        U(s->submit_bytes));
	bprintf(b, "# TYPE rufd_dedup_hits_total counter\nrufd_dedup_hits_total %llu\n",
	        U(s->dedup_hits));
	bprintf(
	    b, "# TYPE rufd_uploads_superseded_total counter\nrufd_uploads_superseded_total %llu\n",
	    U(s->uploads_superseded));
	bprintf(b, "# TYPE rufd_deliveries_total counter\nrufd_deliveries_total %llu\n",
	        U(s->deliveries));
	bprintf(b, "# TYPE rufd_delivered_bytes_total counter\nrufd_delivered_bytes_total %llu\n",
	        U(s->delivered_bytes));
	bprintf(b, "# TYPE rufd_delivery_acks_total counter\nrufd_delivery_acks_total %llu\n",
	        U(s->delivery_acks));
	bprintf(b, "# TYPE rufd_protocol_errors_total counter\nrufd_protocol_errors_total %llu\n",
	        U(s->protocol_errors));
	{
		uint64_t buffered = 0;
		for (struct session *x = d->sessions; x; x = x->next)
			buffered += x->wq_bytes;
		bprintf(b, "# TYPE rufd_buffered_bytes gauge\nrufd_buffered_bytes %llu\n",
		        U(buffered));
	}
	bprintf(b, "# TYPE rufd_conn_buffer_max_bytes gauge\nrufd_conn_buffer_max_bytes %llu\n",
	        U(s->conn_buffer_max));
	bprintf(b, "# TYPE rufd_commits_total counter\nrufd_commits_total %llu\n", U(s->commits));
	bprintf(b, "# TYPE rufd_commit_failures_total counter\nrufd_commit_failures_total %llu\n",
	        U(s->commit_failures));
	bprintf(b, "# TYPE rufd_commit_items_total counter\nrufd_commit_items_total %llu\n",
	        U(s->commit_items));
	bprintf(b, "# TYPE rufd_commit_batch_max gauge\nrufd_commit_batch_max %llu\n",
	        U(s->commit_items_max));
	bprintf(b, "# TYPE rufd_commit_seconds_total counter\nrufd_commit_seconds_total %.6f\n",
	        (double)s->commit_usec_total / 1e6);
	bprintf(b, "# TYPE rufd_commit_seconds_max gauge\nrufd_commit_seconds_max %.6f\n",
	        (double)s->commit_usec_max / 1e6);
	bprintf(b, "# TYPE rufd_queue_depth gauge\n");
	if (d->store && ruf_store_stats(d->store, &st, queue_depth, b) == 0) {
		bprintf(b, "# TYPE rufd_store_envelopes gauge\nrufd_store_envelopes %llu\n",
		        U(st.envelopes));
		bprintf(b, "# TYPE rufd_store_bytes_used gauge\nrufd_store_bytes_used %llu\n",
		        U(st.bytes_used));
		bprintf(b, "# TYPE rufd_store_map_size gauge\nrufd_store_map_size %llu\n",
		        U(st.map_size));
	}
	bprintf(b, "# TYPE rufd_directory_version gauge\nrufd_directory_version %llu\n",
	        U(d->id->dir->version));
	/* The store's side: several instances on one replicated store. */
	bprintf(b, "# TYPE rufd_store_info gauge\nrufd_store_info{backend=\"%s\"} 1\n",
	        d->cfg.store_backend);
	bprintf(b, "# TYPE rufd_store_available gauge\nrufd_store_available %d\n",
	        d->store ? ruf_store_available(d->store) : 0);
	bprintf(b, "# TYPE rufd_store_conflicts_total counter\nrufd_store_conflicts_total %llu\n",
	        U(s->store_conflicts));
	bprintf(b,
	        "# TYPE rufd_store_unavailable_total counter\n"
	        "rufd_store_unavailable_total %llu\n",
	        U(s->store_unavailable));
	bprintf(b, "# TYPE rufd_cluster_notes_total counter\nrufd_cluster_notes_total %llu\n",
	        U(s->cluster_notes));
	bprintf(b,
	        "# TYPE rufd_directory_shared_total counter\n"
	        "rufd_directory_shared_total %llu\n",
	        U(s->directory_shared));
}

static void
mconn_closed(uv_handle_t *h)
{
	struct mconn *c = h->data;

	free(c->out);
	free(c);
}

static void
on_written(uv_write_t *w, int status)
{
	struct mconn *c = w->data;

	(void)status;
	uv_close((uv_handle_t *)&c->tcp, mconn_closed);
}

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	struct mconn *c = h->data;

	(void)hint;
	*b = uv_buf_init(c->req + c->req_len, (unsigned)(REQ_MAX - 1 - c->req_len));
}

static void
answer(struct mconn *c)
{
	struct buf body = {0};
	char head[160];
	uv_buf_t bufs[2];
	int n;

	c->answered = true;
	uv_read_stop((uv_stream_t *)&c->tcp);
	if (!(body.p = malloc(OUT_MAX + 256))) {
		uv_close((uv_handle_t *)&c->tcp, mconn_closed);
		return;
	}
	render(c->d, &body);
	c->out = body.p;
	n = snprintf(head, sizeof(head),
	             "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
	             "Content-Length: %zu\r\nConnection: close\r\n\r\n",
	             body.len);
	memmove(c->out + n, c->out, body.len);
	memcpy(c->out, head, (size_t)n);
	bufs[0] = uv_buf_init(c->out, (unsigned)(body.len + (size_t)n));
	c->wr.data = c;
	if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, bufs, 1, on_written) != 0)
		uv_close((uv_handle_t *)&c->tcp, mconn_closed);
}

static void
on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	struct mconn *c = st->data;

	(void)b;
	if (c->answered)
		return;
	if (n < 0) {
		uv_close((uv_handle_t *)&c->tcp, mconn_closed);
		return;
	}
	c->req_len += (size_t)n;
	c->req[c->req_len] = '\0';
	if (strstr(c->req, "\r\n\r\n") || strstr(c->req, "\n\n") || c->req_len >= REQ_MAX - 1)
		answer(c);
}

static void
on_conn(uv_stream_t *server, int status)
{
	struct rufd *d = server->data;
	struct mconn *c;

	if (status < 0 || !(c = calloc(1, sizeof(*c))))
		return;
	c->d = d;
	uv_tcp_init(d->loop, &c->tcp);
	c->tcp.data = c;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
	    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
		uv_close((uv_handle_t *)&c->tcp, mconn_closed);
}

int
rufd_metrics_start(struct rufd *d)
{
	struct rufd_metrics *m;
	int rc;

	if (!d->cfg.metrics_listen.text[0])
		return 0;
	if (!(m = calloc(1, sizeof(*m))))
		return RUF_E_NOMEM;
	d->metrics = m;
	uv_tcp_init(d->loop, &m->server);
	m->server.data = d;
	if ((rc = uv_tcp_bind(&m->server, (const struct sockaddr *)&d->cfg.metrics_listen.sa, 0)) !=
	        0 ||
	    (rc = uv_listen((uv_stream_t *)&m->server, 16, on_conn)) != 0) {
		log_err("metrics_listen %s: %s", d->cfg.metrics_listen.text, uv_strerror(rc));
		return RUF_E_IO;
	}
	m->started = true;
	log_info("metrics on http://%s/metrics", d->cfg.metrics_listen.text);
	return 0;
}

static void
metrics_closed(uv_handle_t *h)
{
	/* server is the first member of struct rufd_metrics. */
	free((struct rufd_metrics *)(void *)h);
}

void
rufd_metrics_stop(struct rufd *d)
{
	struct rufd_metrics *m = d->metrics;

	if (!m)
		return;
	d->metrics = NULL;
	uv_close((uv_handle_t *)&m->server, metrics_closed);
}
