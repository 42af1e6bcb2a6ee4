/*
 * delivery.c - desks: Subscribe -> backlog from the durable cursor, then live
 * pushes as commits append to subscribed queues; at most `window`
 * unacknowledged envelopes per connection; each envelope streamed in
 * Deliver frames of at most 60000 bytes, only while the connection's write
 * queue is short (a slow desk slows its own stream, nothing else);
 * DeliverAck advances the durable cursor through the commit worker once
 * every earlier delivery of that queue is acknowledged (a low-water mark).
 * Unacknowledged envelopes come again after a reconnect: at-least-once.
 */
#include <stdlib.h>
#include <string.h>

#include "commit.h"
#include "log.h"
#include "metrics.h"
#include "session.h"
#include "store.h"

struct sub {
	char queue[RUF_QUEUE_NAME_MAX + 1];
	uint64_t next;  /* next seq to look for */
	uint64_t acked; /* low-water mark: every seq <= acked is acknowledged */
};

struct flight {
	size_t sub;
	uint64_t seq;
	bool acked;
};

struct delivery {
	struct sub subs[RUF_WIRE_MAX_SUBSCRIBE];
	size_t n_subs;
	uint32_t window;
	struct flight *fl; /* window entries */
	size_t n_fl;
	size_t rr; /* round robin over subs */
	/* the envelope being streamed */
	bool streaming;
	size_t cur_sub;
	uint64_t cur_seq, cur_total, cur_off;
	uint8_t cur_id[RUF_STORE_MSGID_BYTES];
};

void
delivery_session_free(struct session *s)
{
	if (!s->delivery)
		return;
	free(s->delivery->fl);
	free(s->delivery);
	s->delivery = NULL;
}

struct peek {
	uint64_t seq;
	uint64_t len;
	uint8_t id[RUF_STORE_MSGID_BYTES];
	bool found;
};

static int
peek_cb(void *ctx, const struct ruf_store_entry *e)
{
	struct peek *p = ctx;

	p->seq = e->seq;
	p->len = e->len;
	memcpy(p->id, e->message_id, sizeof(p->id));
	p->found = true;
	return 1;
}

static void
on_audit_committed(struct commit_req *r)
{
	if (r->rc != 0)
		log_warnx("audit entry (delivered) not saved: %s", ruf_strerror(r->rc));
	rufd_commit_req_free(r);
}

/* The audit log records every complete delivery: who got which report, when. */
static void
audit_delivered(struct session *s, const struct delivery *dl)
{
	struct commit_req *r = calloc(1, sizeof(*r));

	if (!r) {
		log_err("out of memory: delivery of %s/%llu not audited",
		        dl->subs[dl->cur_sub].queue, (unsigned long long)dl->cur_seq);
		return;
	}
	r->kind = COMMIT_AUDIT;
	r->fd = -1;
	r->done = on_audit_committed;
	r->event = RUF_STORE_EV_DELIVERED;
	snprintf(r->who, sizeof(r->who), "desk:%llu", (unsigned long long)s->cert->serial);
	memcpy(r->message_id, dl->cur_id, sizeof(r->message_id));
	memcpy(r->queue, dl->subs[dl->cur_sub].queue, sizeof(r->queue));
	rufd_commit_submit(s->d, r);
}

/* Sends the next piece of the current envelope. 0, or an error (closed). */
static int
send_piece(struct session *s, struct delivery *dl)
{
	static uint8_t buf[RUF_WIRE_MAX_DATA]; /* loop thread only */
	static struct ruf_store_record rec;    /* loop thread only */
	struct ruf_wire_frame f = {.type = RUF_WIRE_DELIVER};
	uint64_t total = 0;
	size_t got = 0;
	int rc;

	rc = ruf_store_envelope_read(s->d->store, dl->cur_id, dl->cur_off, buf, sizeof(buf), &got,
	                             &total);
	if (rc != 0 || got == 0 || total != dl->cur_total) {
		log_err("%s %s: stored envelope %s/%llu unreadable", s->peer, s->who,
		        dl->subs[dl->cur_sub].queue, (unsigned long long)dl->cur_seq);
		session_fail(s, RUF_WIRE_ERR_INTERNAL, "internal error");
		return RUF_E_IO;
	}
	f.u.deliver.queue = dl->subs[dl->cur_sub].queue;
	f.u.deliver.seq = dl->cur_seq;
	memcpy(f.u.deliver.message_id, dl->cur_id, sizeof(dl->cur_id));
	f.u.deliver.total_len = total;
	f.u.deliver.offset = dl->cur_off;
	f.u.deliver.data = buf;
	f.u.deliver.len = got;
	f.u.deliver.last = dl->cur_off + got == total;
	/*
	 * The first piece carries the signed receipt: its store time is the one
	 * time a desk can trust for a sender revoked since (docs/DESK.md). A
	 * record without one (never, after a commit) just goes without.
	 */
	if (dl->cur_off == 0 && ruf_store_lookup(s->d->store, dl->cur_id, &rec) == 0 &&
	    rec.receipt_len > 0 && rec.receipt_len <= RUF_WIRE_MAX_RECEIPT) {
		f.u.deliver.receipt = rec.receipt;
		f.u.deliver.receipt_len = rec.receipt_len;
	}
	if ((rc = session_send(s, &f)) != 0)
		return rc;
	dl->cur_off += got;
	rufd_stats.delivered_bytes += got;
	if (dl->cur_off == total) {
		dl->streaming = false;
		rufd_stats.deliveries++;
		audit_delivered(s, dl);
	}
	return 0;
}

/* Finds the next queued envelope on some subscription; starts streaming it. */
static bool
start_next(struct session *s, struct delivery *dl)
{
	for (size_t k = 0; k < dl->n_subs; k++) {
		size_t i = (dl->rr + k) % dl->n_subs;
		struct sub *q = &dl->subs[i];
		struct peek p = {0};
		size_t n = 0;

		if (ruf_store_queue_read(s->d->store, q->queue, q->next - 1, 1, peek_cb, &p, &n) !=
		        0 ||
		    !p.found)
			continue;
		dl->rr = (i + 1) % dl->n_subs;
		q->next = p.seq + 1;
		dl->fl[dl->n_fl++] = (struct flight){.sub = i, .seq = p.seq};
		dl->streaming = true;
		dl->cur_sub = i;
		dl->cur_seq = p.seq;
		dl->cur_total = p.len;
		dl->cur_off = 0;
		memcpy(dl->cur_id, p.id, sizeof(p.id));
		return true;
	}
	return false;
}

void
delivery_pump(struct session *s)
{
	struct delivery *dl = s->delivery;

	if (!dl)
		return;
	while (s->state == S_OPEN && !s->flush_close && !session_congested(s)) {
		if (dl->streaming) {
			if (send_piece(s, dl) != 0)
				return;
			continue;
		}
		if (dl->n_fl >= dl->window || !start_next(s, dl))
			return;
	}
}

void
rufd_delivery_notify(struct rufd *d, const char (*queues)[RUF_QUEUE_NAME_MAX + 1], size_t n)
{
	struct session *s, *next;

	for (s = d->sessions; s; s = next) {
		next = s->next;
		if (!s->delivery || s->state != S_OPEN)
			continue;
		for (size_t i = 0; i < s->delivery->n_subs; i++)
			for (size_t j = 0; j < n; j++)
				if (strcmp(s->delivery->subs[i].queue, queues[j]) == 0)
					goto pump;
		continue;
	pump:
		delivery_pump(s);
	}
}

/*
 * A device may subscribe to exactly one queue, its own inbox.<subject>, where
 * desks' replies to it are routed (ingest.c); its cursor is keyed by its
 * certificate serial like a desk's.
 */
static bool
device_own_inbox(const struct session *s, const struct ruf_wire_frame *f)
{
	const char *q;

	if (s->role != RUF_ROLE_DEVICE || f->u.subscribe.n_queues != 1)
		return false;
	q = f->u.subscribe.queues[0];
	return strncmp(q, "inbox.", 6) == 0 && strcmp(q + 6, s->cert->subject) == 0;
}

static void
on_subscribe(struct session *s, const struct ruf_wire_frame *f)
{
	struct delivery *dl;
	uint32_t window = f->u.subscribe.window;

	/* Desks read the queues their certificate names; a device only its own inbox. */
	if (s->role != RUF_ROLE_DESK && !device_own_inbox(s, f)) {
		session_fail(s, RUF_WIRE_ERR_NOT_PERMITTED,
		             "devices subscribe to their own inbox only");
		return;
	}
	if (s->delivery) {
		session_fail(s, RUF_WIRE_ERR_PROTOCOL, "already subscribed");
		return;
	}
	for (size_t i = 0; i < f->u.subscribe.n_queues; i++)
		if (s->role == RUF_ROLE_DESK &&
		    !ruf_cert_permits_queue(s->cert, f->u.subscribe.queues[i])) {
			log_notice("%s %s: subscribe to %s not permitted", s->peer, s->who,
			           f->u.subscribe.queues[i]);
			session_fail(s, RUF_WIRE_ERR_NOT_PERMITTED, "queue not permitted");
			return;
		}
	if (window == 0 || window > s->d->cfg.delivery_window)
		window = (uint32_t)s->d->cfg.delivery_window;
	if (!(dl = calloc(1, sizeof(*dl))) || !(dl->fl = calloc(window, sizeof(*dl->fl)))) {
		free(dl);
		session_fail(s, RUF_WIRE_ERR_INTERNAL, "out of memory");
		return;
	}
	dl->window = window;
	for (size_t i = 0; i < f->u.subscribe.n_queues; i++) {
		struct sub *q = &dl->subs[dl->n_subs++];
		uint64_t cur = 0;
		snprintf(q->queue, sizeof(q->queue), "%s", f->u.subscribe.queues[i]);
		if (ruf_store_cursor(s->d->store, s->cert->serial, q->queue, &cur) != 0)
			cur = 0;
		q->acked = cur;
		q->next = cur + 1;
	}
	s->delivery = dl;
	log_info("%s %s: subscribed to %zu queues, window %u", s->peer, s->who, dl->n_subs, window);
	delivery_pump(s);
}

static void
on_ack_committed(struct commit_req *r)
{
	struct session *s = r->owner;

	if (r->rc != 0)
		log_warnx("desk #%llu: cursor %s/%llu not saved: %s",
		          (unsigned long long)r->desk_serial, r->queue, (unsigned long long)r->seq,
		          ruf_strerror(r->rc));
	rufd_commit_req_free(r);
	session_unref(s);
}

static void
on_ack(struct session *s, const struct ruf_wire_frame *f)
{
	struct delivery *dl = s->delivery;
	struct sub *q = NULL;
	size_t qi = 0, i, j;
	uint64_t low;
	bool found = false;

	if (!dl) {
		session_fail(s, RUF_WIRE_ERR_PROTOCOL, "ack without a subscription");
		return;
	}
	for (qi = 0; qi < dl->n_subs; qi++)
		if (strcmp(dl->subs[qi].queue, f->u.deliver_ack.queue) == 0) {
			q = &dl->subs[qi];
			break;
		}
	if (!q) {
		session_fail(s, RUF_WIRE_ERR_PROTOCOL, "ack for a queue not subscribed");
		return;
	}
	for (i = 0; i < dl->n_fl; i++)
		if (dl->fl[i].sub == qi && dl->fl[i].seq == f->u.deliver_ack.seq) {
			dl->fl[i].acked = true;
			found = true;
		}
	if (!found) {
		if (f->u.deliver_ack.seq <= q->acked)
			return; /* a repeated ack */
		session_fail(s, RUF_WIRE_ERR_PROTOCOL, "ack for a delivery not sent");
		return;
	}
	rufd_stats.delivery_acks++;
	/* New low-water mark: just below the oldest unacked delivery of this queue. */
	low = q->next - 1;
	for (i = 0; i < dl->n_fl; i++)
		if (dl->fl[i].sub == qi && !dl->fl[i].acked && dl->fl[i].seq - 1 < low)
			low = dl->fl[i].seq - 1;
	if (low <= q->acked)
		return;
	q->acked = low;
	for (i = j = 0; i < dl->n_fl; i++)
		if (!(dl->fl[i].sub == qi && dl->fl[i].seq <= low))
			dl->fl[j++] = dl->fl[i];
	dl->n_fl = j;

	struct commit_req *r = calloc(1, sizeof(*r));
	if (r) {
		r->kind = COMMIT_ACK;
		r->fd = -1;
		r->owner = s;
		r->done = on_ack_committed;
		r->desk_serial = s->cert->serial;
		memcpy(r->queue, q->queue, sizeof(r->queue));
		r->seq = low;
		session_ref(s);
		rufd_commit_submit(s->d, r);
	}
	delivery_pump(s);
}

void
delivery_on_frame(struct session *s, const struct ruf_wire_frame *f)
{
	if (f->type == RUF_WIRE_SUBSCRIBE)
		on_subscribe(s, f);
	else
		on_ack(s, f);
}
