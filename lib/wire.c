/*
 * wire.c - framing, Noise session, frame codec and receipts for the
 * client <-> rufd protocol (docs/PROTOCOL.md).
 *
 * Frames are validated by one function on their C form (check_frame) both
 * before encoding and after decoding, so a frame we send is exactly a frame
 * we would accept.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cert.h"
#include "err.h"
#include "noise.h"
#include "pb.h"
#include "util.h"
#include "wire.h"
#include "wire.pb-c.h"

/* --- Stream framing ------------------------------------------------------ */

void
ruf_wire_reader_init(ruf_wire_reader *r, size_t max)
{
	memset(r, 0, sizeof(*r));
	r->max = max > RUF_WIRE_MAX_MSG ? RUF_WIRE_MAX_MSG : max;
}

void
ruf_wire_reader_set_max(ruf_wire_reader *r, size_t max)
{
	r->max = max > RUF_WIRE_MAX_MSG ? RUF_WIRE_MAX_MSG : max;
}

/* A message is complete and waits for next(). */
static bool
reader_full(const ruf_wire_reader *r)
{
	return r->hdr_have == RUF_WIRE_LEN_BYTES && r->have == r->want;
}

int
ruf_wire_reader_feed(ruf_wire_reader *r, const uint8_t *buf, size_t len, size_t *used)
{
	size_t off = 0;

	*used = 0;
	if (r->err != 0)
		return r->err;
	while (off < len && !reader_full(r)) {
		if (r->hdr_have < RUF_WIRE_LEN_BYTES) {
			r->hdr[r->hdr_have++] = buf[off++];
			if (r->hdr_have < RUF_WIRE_LEN_BYTES)
				continue;
			r->want = (size_t)r->hdr[0] << 8 | r->hdr[1];
			r->have = 0;
			/* Check the length before allocating for it. */
			if (r->want == 0) {
				r->err = RUF_E_FORMAT;
				break;
			}
			if (r->want > r->max) {
				r->err = RUF_E_TOO_LARGE;
				break;
			}
			if (r->want > r->cap) {
				uint8_t *nb = malloc(r->want);
				if (nb == NULL) {
					r->err = RUF_E_NOMEM;
					break;
				}
				if (r->buf != NULL) {
					sodium_memzero(r->buf, r->cap);
					free(r->buf);
				}
				r->buf = nb;
				r->cap = r->want;
			}
			continue;
		}
		size_t n = r->want - r->have;
		if (n > len - off)
			n = len - off;
		memcpy(r->buf + r->have, buf + off, n);
		r->have += n;
		off += n;
	}
	*used = off;
	return r->err;
}

int
ruf_wire_reader_next(ruf_wire_reader *r, const uint8_t **msg, size_t *len)
{
	*msg = NULL;
	*len = 0;
	if (r->err != 0)
		return r->err;
	if (!reader_full(r))
		return 0;
	*msg = r->buf;
	*len = r->want;
	/* The bytes stay in buf until the next feed overwrites them. */
	r->hdr_have = 0;
	r->have = 0;
	r->want = 0;
	return 1;
}

size_t
ruf_wire_reader_pending(const ruf_wire_reader *r)
{
	return r->hdr_have + r->have;
}

void
ruf_wire_reader_free(ruf_wire_reader *r)
{
	if (r == NULL)
		return;
	if (r->buf != NULL) {
		sodium_memzero(r->buf, r->cap);
		free(r->buf);
	}
	size_t max = r->max;
	memset(r, 0, sizeof(*r));
	r->max = max;
}

int
ruf_wire_put_len(uint8_t out[RUF_WIRE_LEN_BYTES], size_t len)
{
	if (len == 0 || len > RUF_WIRE_MAX_MSG)
		return RUF_E_INVAL;
	out[0] = (uint8_t)(len >> 8);
	out[1] = (uint8_t)len;
	return 0;
}

/* --- Frame rules ----------------------------------------------------------- */

const char *
ruf_wire_type_name(int type)
{
	static const char *const names[] = {
	    [RUF_WIRE_PING] = "ping",
	    [RUF_WIRE_PONG] = "pong",
	    [RUF_WIRE_ERROR] = "error",
	    [RUF_WIRE_SUBMIT_OFFER] = "submit-offer",
	    [RUF_WIRE_SUBMIT_STATUS] = "submit-status",
	    [RUF_WIRE_SUBMIT_CHUNK] = "submit-chunk",
	    [RUF_WIRE_RECEIPT] = "receipt",
	    [RUF_WIRE_NACK] = "nack",
	    [RUF_WIRE_SUBSCRIBE] = "subscribe",
	    [RUF_WIRE_DELIVER] = "deliver",
	    [RUF_WIRE_DELIVER_ACK] = "deliver-ack",
	    [RUF_WIRE_DIRECTORY_UPDATE] = "directory-update",
	};

	if (type < RUF_WIRE_PING || type > RUF_WIRE_DIRECTORY_UPDATE)
		return "unknown";
	return names[type];
}

static bool
is_queue(const char *q)
{
	return q != NULL && ruf_is_queue_name(q);
}

static bool
data_ok(const uint8_t *data, size_t len)
{
	return data != NULL && len >= 1 && len <= RUF_WIRE_MAX_DATA;
}

/* The per-type rules of docs/PROTOCOL.md, on the C form. */
static bool
check_frame(const struct ruf_wire_frame *f)
{
	switch (f->type) {
	case RUF_WIRE_PING:
	case RUF_WIRE_PONG:
		return true;
	case RUF_WIRE_ERROR: {
		const char *t = f->u.error.text;
		size_t tl = t != NULL ? strlen(t) : 0;
		return f->u.error.code >= RUF_WIRE_ERR_PROTOCOL &&
		       f->u.error.code <= RUF_WIRE_ERR_INTERNAL && tl <= RUF_WIRE_MAX_ERROR_TEXT &&
		       (tl == 0 || ruf_utf8_valid(t, tl));
	}
	case RUF_WIRE_SUBMIT_OFFER:
		return f->u.offer.total_len >= 1 && f->u.offer.total_len <= RUF_WIRE_MAX_ENVELOPE;
	case RUF_WIRE_SUBMIT_STATUS:
		return f->u.status.have <= RUF_WIRE_MAX_ENVELOPE;
	case RUF_WIRE_SUBMIT_CHUNK:
		return data_ok(f->u.chunk.data, f->u.chunk.len) &&
		       f->u.chunk.offset < RUF_WIRE_MAX_ENVELOPE &&
		       f->u.chunk.len <= RUF_WIRE_MAX_ENVELOPE - f->u.chunk.offset;
	case RUF_WIRE_RECEIPT:
		if (f->u.receipt.raw != NULL)
			return f->u.receipt.raw_len >= 1; /* checked as it is encoded */
		return f->u.receipt.body != NULL && f->u.receipt.body_len >= 1;
	case RUF_WIRE_NACK:
		switch (f->u.nack.reason) {
		case RUF_WIRE_NACK_RETRY_LATER:
			return f->u.nack.directory_len == 0;
		case RUF_WIRE_NACK_STALE_DIRECTORY:
			return f->u.nack.retry_after_s == 0 && f->u.nack.directory != NULL &&
			       f->u.nack.directory_len >= 1;
		case RUF_WIRE_NACK_REJECTED:
		case RUF_WIRE_NACK_TOO_LARGE:
			return f->u.nack.retry_after_s == 0 && f->u.nack.directory_len == 0;
		default:
			return false;
		}
	case RUF_WIRE_SUBSCRIBE:
		if (f->u.subscribe.n_queues < 1 ||
		    f->u.subscribe.n_queues > RUF_WIRE_MAX_SUBSCRIBE || f->u.subscribe.window < 1 ||
		    f->u.subscribe.window > RUF_WIRE_MAX_WINDOW)
			return false;
		for (size_t i = 0; i < f->u.subscribe.n_queues; i++) {
			if (!is_queue(f->u.subscribe.queues[i]))
				return false;
			for (size_t j = 0; j < i; j++)
				if (strcmp(f->u.subscribe.queues[i], f->u.subscribe.queues[j]) == 0)
					return false;
		}
		return true;
	case RUF_WIRE_DELIVER: {
		uint64_t tot = f->u.deliver.total_len, off = f->u.deliver.offset;
		size_t n = f->u.deliver.len;
		return is_queue(f->u.deliver.queue) && f->u.deliver.seq >= 1 && tot >= 1 &&
		       tot <= RUF_WIRE_MAX_ENVELOPE && data_ok(f->u.deliver.data, n) && off < tot &&
		       n <= tot - off && f->u.deliver.last == (off + n == tot) &&
		       (f->u.deliver.receipt_len == 0 ||
		        (off == 0 && f->u.deliver.receipt != NULL &&
		         f->u.deliver.receipt_len <= RUF_WIRE_MAX_RECEIPT));
	}
	case RUF_WIRE_DELIVER_ACK:
		return is_queue(f->u.deliver_ack.queue) && f->u.deliver_ack.seq >= 1;
	case RUF_WIRE_DIRECTORY_UPDATE:
		return f->u.directory_update.directory != NULL && f->u.directory_update.len >= 1;
	default:
		return false;
	}
}

/* --- Frame encode ---------------------------------------------------------- */

static ProtobufCBinaryData
bin(const uint8_t *p, size_t n)
{
	ProtobufCBinaryData b = {.len = n, .data = (uint8_t *)p};
	if (n == 0)
		b.data = NULL;
	return b;
}

static char *
str(const char *s)
{
	/* protobuf-c wants char *; it never writes through it when packing. */
	return (char *)(s != NULL ? s : "");
}

/* Packs m into out after checking the size; shared by every encoder. */
static int
pack_into(const ProtobufCMessage *m, size_t limit, uint8_t *out, size_t cap, size_t *outlen)
{
	size_t n = protobuf_c_message_get_packed_size(m);

	*outlen = 0;
	if (n > limit || n > cap)
		return RUF_E_TOO_LARGE;
	protobuf_c_message_pack(m, out);
	*outlen = n;
	return 0;
}

int
ruf_wire_frame_encode(const struct ruf_wire_frame *f, uint8_t *out, size_t cap, size_t *outlen)
{
	Ruf__WireFrame m = RUF__WIRE_FRAME__INIT;
	Ruf__WirePing ping = RUF__WIRE_PING__INIT;
	Ruf__WirePong pong = RUF__WIRE_PONG__INIT;
	Ruf__WireError err = RUF__WIRE_ERROR__INIT;
	Ruf__WireSubmitOffer offer = RUF__WIRE_SUBMIT_OFFER__INIT;
	Ruf__WireSubmitStatus status = RUF__WIRE_SUBMIT_STATUS__INIT;
	Ruf__WireSubmitChunk chunk = RUF__WIRE_SUBMIT_CHUNK__INIT;
	Ruf__WireReceipt receipt = RUF__WIRE_RECEIPT__INIT;
	Ruf__WireNack nack = RUF__WIRE_NACK__INIT;
	Ruf__WireSubscribe sub = RUF__WIRE_SUBSCRIBE__INIT;
	Ruf__WireDeliver del = RUF__WIRE_DELIVER__INIT;
	Ruf__WireDeliverAck dack = RUF__WIRE_DELIVER_ACK__INIT;
	Ruf__WireDirectoryUpdate dup = RUF__WIRE_DIRECTORY_UPDATE__INIT;
	char *queues[RUF_WIRE_MAX_SUBSCRIBE];

	*outlen = 0;
	if (f == NULL || out == NULL)
		return RUF_E_INVAL;
	if (!check_frame(f))
		return RUF_E_FORMAT;
	m.body_case = (Ruf__WireFrame__BodyCase)f->type;
	switch (f->type) {
	case RUF_WIRE_PING:
		ping.nonce = f->u.ping.nonce;
		m.ping = &ping;
		break;
	case RUF_WIRE_PONG:
		pong.nonce = f->u.ping.nonce;
		m.pong = &pong;
		break;
	case RUF_WIRE_ERROR:
		err.code = f->u.error.code;
		err.text = str(f->u.error.text);
		m.error = &err;
		break;
	case RUF_WIRE_SUBMIT_OFFER:
		offer.message_id = bin(f->u.offer.message_id, RUF_WIRE_MSGID_BYTES);
		offer.total_len = f->u.offer.total_len;
		offer.hash = bin(f->u.offer.hash, RUF_WIRE_HASH_BYTES);
		m.submit_offer = &offer;
		break;
	case RUF_WIRE_SUBMIT_STATUS:
		status.message_id = bin(f->u.status.message_id, RUF_WIRE_MSGID_BYTES);
		status.have = f->u.status.have;
		m.submit_status = &status;
		break;
	case RUF_WIRE_SUBMIT_CHUNK:
		chunk.message_id = bin(f->u.chunk.message_id, RUF_WIRE_MSGID_BYTES);
		chunk.offset = f->u.chunk.offset;
		chunk.data = bin(f->u.chunk.data, f->u.chunk.len);
		m.submit_chunk = &chunk;
		break;
	case RUF_WIRE_RECEIPT:
		if (f->u.receipt.raw != NULL) {
			/* A stored receipt (ruf_wire_receipt_sign's output) sent as is. */
			ProtobufCMessage *pm;
			int rc = ruf_pb_decode(&ruf__wire_receipt__descriptor, f->u.receipt.raw,
			                       f->u.receipt.raw_len, RUF_WIRE_MAX_FRAME, &pm);
			if (rc != 0)
				return rc == RUF_E_NOMEM ? rc : RUF_E_FORMAT;
			Ruf__WireReceipt *rm = (Ruf__WireReceipt *)pm;
			if (rm->body.len == 0 || rm->signature.len != RUF_WIRE_SIG_BYTES) {
				protobuf_c_message_free_unpacked(pm, NULL);
				return RUF_E_FORMAT;
			}
			m.receipt = rm;
			rc = pack_into(&m.base, RUF_WIRE_MAX_FRAME, out, cap, outlen);
			protobuf_c_message_free_unpacked(pm, NULL);
			return rc;
		}
		receipt.body = bin(f->u.receipt.body, f->u.receipt.body_len);
		receipt.signature = bin(f->u.receipt.signature, RUF_WIRE_SIG_BYTES);
		m.receipt = &receipt;
		break;
	case RUF_WIRE_NACK:
		nack.message_id = bin(f->u.nack.message_id, RUF_WIRE_MSGID_BYTES);
		nack.reason = f->u.nack.reason;
		nack.retry_after_s = f->u.nack.retry_after_s;
		nack.directory = bin(f->u.nack.directory, f->u.nack.directory_len);
		m.nack = &nack;
		break;
	case RUF_WIRE_SUBSCRIBE:
		for (size_t i = 0; i < f->u.subscribe.n_queues; i++)
			queues[i] = str(f->u.subscribe.queues[i]);
		sub.n_queues = f->u.subscribe.n_queues;
		sub.queues = queues;
		sub.window = f->u.subscribe.window;
		m.subscribe = &sub;
		break;
	case RUF_WIRE_DELIVER:
		del.queue = str(f->u.deliver.queue);
		del.seq = f->u.deliver.seq;
		del.message_id = bin(f->u.deliver.message_id, RUF_WIRE_MSGID_BYTES);
		del.total_len = f->u.deliver.total_len;
		del.offset = f->u.deliver.offset;
		del.data = bin(f->u.deliver.data, f->u.deliver.len);
		del.last = f->u.deliver.last;
		del.receipt = bin(f->u.deliver.receipt, f->u.deliver.receipt_len);
		m.deliver = &del;
		break;
	case RUF_WIRE_DELIVER_ACK:
		dack.queue = str(f->u.deliver_ack.queue);
		dack.seq = f->u.deliver_ack.seq;
		m.deliver_ack = &dack;
		break;
	case RUF_WIRE_DIRECTORY_UPDATE:
		dup.directory = bin(f->u.directory_update.directory, f->u.directory_update.len);
		m.directory_update = &dup;
		break;
	}
	return pack_into(&m.base, RUF_WIRE_MAX_FRAME, out, cap, outlen);
}

/* --- Frame decode ---------------------------------------------------------- */

/* Copies a fixed-size bytes field; false if its length is not exactly n. */
static bool
fixed(uint8_t *dst, ProtobufCBinaryData b, size_t n)
{
	if (b.len != n)
		return false;
	memcpy(dst, b.data, n);
	return true;
}

int
ruf_wire_frame_decode(const uint8_t *buf, size_t len, struct ruf_wire_frame *f)
{
	ProtobufCMessage *pm = NULL;
	Ruf__WireFrame *m;
	int rc;

	if (f == NULL)
		return RUF_E_INVAL;
	memset(f, 0, sizeof(*f));
	if (buf == NULL && len > 0)
		return RUF_E_INVAL;
	rc = ruf_pb_decode(&ruf__wire_frame__descriptor, buf, len, RUF_WIRE_MAX_FRAME, &pm);
	if (rc != 0)
		return rc;
	m = (Ruf__WireFrame *)pm;
	f->_pb = pm;
	rc = RUF_E_FORMAT;
	f->type = (int)m->body_case;
	switch (m->body_case) {
	case RUF__WIRE_FRAME__BODY_PING:
		f->u.ping.nonce = m->ping->nonce;
		break;
	case RUF__WIRE_FRAME__BODY_PONG:
		f->u.ping.nonce = m->pong->nonce;
		break;
	case RUF__WIRE_FRAME__BODY_ERROR:
		f->u.error.code = m->error->code;
		f->u.error.text = m->error->text;
		break;
	case RUF__WIRE_FRAME__BODY_SUBMIT_OFFER:
		if (!fixed(f->u.offer.message_id, m->submit_offer->message_id,
		           RUF_WIRE_MSGID_BYTES) ||
		    !fixed(f->u.offer.hash, m->submit_offer->hash, RUF_WIRE_HASH_BYTES))
			goto fail;
		f->u.offer.total_len = m->submit_offer->total_len;
		break;
	case RUF__WIRE_FRAME__BODY_SUBMIT_STATUS:
		if (!fixed(f->u.status.message_id, m->submit_status->message_id,
		           RUF_WIRE_MSGID_BYTES))
			goto fail;
		f->u.status.have = m->submit_status->have;
		break;
	case RUF__WIRE_FRAME__BODY_SUBMIT_CHUNK:
		if (!fixed(f->u.chunk.message_id, m->submit_chunk->message_id,
		           RUF_WIRE_MSGID_BYTES))
			goto fail;
		f->u.chunk.offset = m->submit_chunk->offset;
		f->u.chunk.data = m->submit_chunk->data.data;
		f->u.chunk.len = m->submit_chunk->data.len;
		break;
	case RUF__WIRE_FRAME__BODY_RECEIPT:
		if (!fixed(f->u.receipt.signature, m->receipt->signature, RUF_WIRE_SIG_BYTES))
			goto fail;
		f->u.receipt.body = m->receipt->body.data;
		f->u.receipt.body_len = m->receipt->body.len;
		/*
		 * The WireReceipt's exact bytes sit inside the frame: tag (1
		 * byte, field 7) and a varint length before them. Being
		 * canonical, the frame ends with the receipt, so they are the
		 * last packed-size bytes of buf.
		 */
		{
			size_t rl = protobuf_c_message_get_packed_size(&m->receipt->base);
			f->u.receipt.raw = buf + (len - rl);
			f->u.receipt.raw_len = rl;
		}
		break;
	case RUF__WIRE_FRAME__BODY_NACK:
		if (!fixed(f->u.nack.message_id, m->nack->message_id, RUF_WIRE_MSGID_BYTES))
			goto fail;
		f->u.nack.reason = m->nack->reason;
		f->u.nack.retry_after_s = m->nack->retry_after_s;
		f->u.nack.directory = m->nack->directory.data;
		f->u.nack.directory_len = m->nack->directory.len;
		break;
	case RUF__WIRE_FRAME__BODY_SUBSCRIBE:
		if (m->subscribe->n_queues > RUF_WIRE_MAX_SUBSCRIBE)
			goto fail;
		for (size_t i = 0; i < m->subscribe->n_queues; i++)
			f->u.subscribe.queues[i] = m->subscribe->queues[i];
		f->u.subscribe.n_queues = m->subscribe->n_queues;
		f->u.subscribe.window = m->subscribe->window;
		break;
	case RUF__WIRE_FRAME__BODY_DELIVER:
		if (!fixed(f->u.deliver.message_id, m->deliver->message_id, RUF_WIRE_MSGID_BYTES))
			goto fail;
		f->u.deliver.queue = m->deliver->queue;
		f->u.deliver.seq = m->deliver->seq;
		f->u.deliver.total_len = m->deliver->total_len;
		f->u.deliver.offset = m->deliver->offset;
		f->u.deliver.data = m->deliver->data.data;
		f->u.deliver.len = m->deliver->data.len;
		f->u.deliver.last = m->deliver->last;
		f->u.deliver.receipt = m->deliver->receipt.data;
		f->u.deliver.receipt_len = m->deliver->receipt.len;
		break;
	case RUF__WIRE_FRAME__BODY_DELIVER_ACK:
		f->u.deliver_ack.queue = m->deliver_ack->queue;
		f->u.deliver_ack.seq = m->deliver_ack->seq;
		break;
	case RUF__WIRE_FRAME__BODY_DIRECTORY_UPDATE:
		f->u.directory_update.directory = m->directory_update->directory.data;
		f->u.directory_update.len = m->directory_update->directory.len;
		break;
	default:
		/* No body: a frame must carry exactly one. */
		goto fail;
	}
	if (!check_frame(f))
		goto fail;
	return 0;
fail:
	ruf_wire_frame_clear(f);
	return rc;
}

void
ruf_wire_frame_clear(struct ruf_wire_frame *f)
{
	if (f == NULL)
		return;
	if (f->_pb != NULL)
		protobuf_c_message_free_unpacked(f->_pb, NULL);
	memset(f, 0, sizeof(*f));
}

/* --- Handshake payloads ---------------------------------------------------- */

static bool
cert_len_ok(const uint8_t *p, size_t n)
{
	return p != NULL && n >= 1 && n <= RUF_CERT_MAX;
}

int
ruf_wire_hello_encode(const struct ruf_wire_hello *h, uint8_t *out, size_t cap, size_t *outlen)
{
	Ruf__WireHello m = RUF__WIRE_HELLO__INIT;

	*outlen = 0;
	if (!cert_len_ok(h->certificate, h->certificate_len))
		return RUF_E_FORMAT;
	m.certificate = bin(h->certificate, h->certificate_len);
	m.timestamp = h->timestamp;
	m.directory_version = h->directory_version;
	return pack_into(&m.base, RUF_WIRE_MAX_HELLO, out, cap, outlen);
}

int
ruf_wire_welcome_encode(const struct ruf_wire_welcome *w, uint8_t *out, size_t cap, size_t *outlen)
{
	Ruf__WireWelcome m = RUF__WIRE_WELCOME__INIT;

	*outlen = 0;
	if (!cert_len_ok(w->server_certificate, w->server_certificate_len) ||
	    (w->directory_len > 0 && w->directory == NULL))
		return RUF_E_FORMAT;
	m.server_time = w->server_time;
	m.directory_version = w->directory_version;
	m.directory = bin(w->directory, w->directory_len);
	m.server_certificate = bin(w->server_certificate, w->server_certificate_len);
	return pack_into(&m.base, RUF_WIRE_MAX_WELCOME, out, cap, outlen);
}

int
ruf_wire_hello_decode(const uint8_t *buf, size_t len, struct ruf_wire_hello *h)
{
	ProtobufCMessage *pm;
	Ruf__WireHello *m;
	int rc;

	memset(h, 0, sizeof(*h));
	rc = ruf_pb_decode(&ruf__wire_hello__descriptor, buf, len, RUF_WIRE_MAX_HELLO, &pm);
	if (rc != 0)
		return rc;
	m = (Ruf__WireHello *)pm;
	if (!cert_len_ok(m->certificate.data, m->certificate.len)) {
		protobuf_c_message_free_unpacked(pm, NULL);
		return RUF_E_FORMAT;
	}
	h->certificate = m->certificate.data;
	h->certificate_len = m->certificate.len;
	h->timestamp = m->timestamp;
	h->directory_version = m->directory_version;
	h->_pb = pm;
	return 0;
}

int
ruf_wire_welcome_decode(const uint8_t *buf, size_t len, struct ruf_wire_welcome *w)
{
	ProtobufCMessage *pm;
	Ruf__WireWelcome *m;
	int rc;

	memset(w, 0, sizeof(*w));
	rc = ruf_pb_decode(&ruf__wire_welcome__descriptor, buf, len, RUF_WIRE_MAX_WELCOME, &pm);
	if (rc != 0)
		return rc;
	m = (Ruf__WireWelcome *)pm;
	if (!cert_len_ok(m->server_certificate.data, m->server_certificate.len)) {
		protobuf_c_message_free_unpacked(pm, NULL);
		return RUF_E_FORMAT;
	}
	w->server_time = m->server_time;
	w->directory_version = m->directory_version;
	w->directory = m->directory.len > 0 ? m->directory.data : NULL;
	w->directory_len = m->directory.len;
	w->server_certificate = m->server_certificate.data;
	w->server_certificate_len = m->server_certificate.len;
	w->_pb = pm;
	return 0;
}

void
ruf_wire_hello_clear(struct ruf_wire_hello *h)
{
	if (h == NULL)
		return;
	if (h->_pb != NULL)
		protobuf_c_message_free_unpacked(h->_pb, NULL);
	memset(h, 0, sizeof(*h));
}

void
ruf_wire_welcome_clear(struct ruf_wire_welcome *w)
{
	if (w == NULL)
		return;
	if (w->_pb != NULL)
		protobuf_c_message_free_unpacked(w->_pb, NULL);
	memset(w, 0, sizeof(*w));
}

/* --- Noise session --------------------------------------------------------- */

enum session_state {
	SS_START, /* initiator: write hello; responder: read hello */
	SS_HELLO, /* initiator: read welcome; responder: write welcome */
	SS_READY, /* transport */
	SS_FAILED,
};

struct ruf_wire_session {
	ruf_noise_handshake hs;
	ruf_noise_cipher send, recv;
	uint8_t rs[RUF_NOISE_DHLEN];
	bool has_rs;
	bool initiator;
	int state;
	uint8_t *pt; /* the last opened message's plaintext (malloc'ed, pt_len bytes) */
	size_t pt_len;
};

static void
pt_drop(ruf_wire_session *s)
{
	if (s->pt != NULL) {
		sodium_memzero(s->pt, s->pt_len);
		free(s->pt);
	}
	s->pt = NULL;
	s->pt_len = 0;
}

/*
 * Session states hold keys, so they live in sodium_malloc'ed memory (guard
 * pages, mlock, wiped). One sodium_malloc per session costs two pages of
 * RSS and three mappings; rufd holds thousands of sessions, so they are
 * carved from sodium_malloc'ed slabs of SLAB_SLOTS slots instead, kept for
 * reuse (the peak number of sessions bounds them). A free slot is wiped.
 */
#define SLAB_SLOTS 64
#define SLOT_BYTES ((sizeof(ruf_wire_session) + 63) & ~(size_t)63)

union free_slot {
	union free_slot *next;
	ruf_wire_session s;
};

static pthread_mutex_t slab_mu = PTHREAD_MUTEX_INITIALIZER;
static union free_slot *slab_free; /* under slab_mu */

static ruf_wire_session *
slot_alloc(void)
{
	union free_slot *f;

	pthread_mutex_lock(&slab_mu);
	if (slab_free == NULL) {
		uint8_t *slab = sodium_malloc(SLAB_SLOTS * SLOT_BYTES);
		/* sodium_malloc aligns the end, not the start: align slots ourselves. */
		if (slab != NULL) {
			uintptr_t a = ((uintptr_t)slab + 63) & ~(uintptr_t)63;
			size_t n = (SLAB_SLOTS * SLOT_BYTES - (a - (uintptr_t)slab)) / SLOT_BYTES;
			for (size_t i = 0; i < n; i++) {
				f = (union free_slot *)(a + i * SLOT_BYTES);
				f->next = slab_free;
				slab_free = f;
			}
		}
	}
	f = slab_free;
	if (f != NULL)
		slab_free = f->next;
	pthread_mutex_unlock(&slab_mu);
	return f != NULL ? &f->s : NULL;
}

static void
slot_free(ruf_wire_session *s)
{
	union free_slot *f = (union free_slot *)s;

	sodium_memzero(s, sizeof(*s));
	pthread_mutex_lock(&slab_mu);
	f->next = slab_free;
	slab_free = f;
	pthread_mutex_unlock(&slab_mu);
}

/*
 * Handshake payloads are encoded and decoded in a buffer that lives for one
 * call: an idle session keeps no 64 KiB scratch (rufd holds thousands).
 */
static uint8_t *
scratch_new(void)
{
	return malloc(RUF_WIRE_MAX_MSG);
}

static void
scratch_free(uint8_t *p)
{
	if (p == NULL)
		return;
	sodium_memzero(p, RUF_WIRE_MAX_MSG); /* Hello carries the peer's identity */
	free(p);
}

int
ruf_wire_session_new(ruf_wire_session **out, bool initiator, const uint8_t s_sk[32],
                     const uint8_t s_pk[32], const uint8_t *rs_pk)
{
	ruf_wire_session *s;
	int rc;

	*out = NULL;
	if (s_sk == NULL || s_pk == NULL || (initiator && rs_pk == NULL) ||
	    (!initiator && rs_pk != NULL))
		return RUF_E_INVAL;
	if ((s = slot_alloc()) == NULL)
		return RUF_E_NOMEM;
	memset(s, 0, sizeof(*s));
	s->initiator = initiator;
	rc = ruf_noise_handshake_init(&s->hs, initiator, (const uint8_t *)RUF_WIRE_PROLOGUE,
	                              RUF_WIRE_PROLOGUE_LEN, s_sk, s_pk, rs_pk);
	if (rc != 0) {
		ruf_wire_session_free(s);
		return rc;
	}
	if (initiator) {
		memcpy(s->rs, rs_pk, RUF_NOISE_DHLEN);
		s->has_rs = true;
	}
	s->state = SS_START;
	*out = s;
	return 0;
}

void
ruf_wire_session_free(ruf_wire_session *s)
{
	if (s == NULL)
		return;
	ruf_noise_handshake_wipe(&s->hs);
	ruf_noise_cipher_wipe(&s->send);
	ruf_noise_cipher_wipe(&s->recv);
	pt_drop(s);
	slot_free(s); /* wipes it */
}

/* Split into transport ciphers once both handshake messages went through. */
static int
session_split(ruf_wire_session *s)
{
	int rc;

	if ((rc = ruf_noise_handshake_split(&s->hs, &s->send, &s->recv)) != 0)
		return rc;
	s->state = SS_READY;
	return 0;
}

static int
session_fail(ruf_wire_session *s, int rc)
{
	s->state = SS_FAILED;
	ruf_noise_handshake_wipe(&s->hs);
	ruf_noise_cipher_wipe(&s->send);
	ruf_noise_cipher_wipe(&s->recv);
	return rc;
}

int
ruf_wire_session_write_hello(ruf_wire_session *s, const struct ruf_wire_hello *h, uint8_t *out,
                             size_t cap, size_t *outlen)
{
	uint8_t *scratch;
	size_t plen;
	int rc;

	*outlen = 0;
	if (s == NULL || !s->initiator || s->state != SS_START)
		return RUF_E_INVAL;
	if ((scratch = scratch_new()) == NULL)
		return RUF_E_NOMEM;
	if ((rc = ruf_wire_hello_encode(h, scratch, RUF_WIRE_MAX_HELLO, &plen)) != 0)
		goto out; /* the caller's mistake; the handshake has not started */
	rc = ruf_noise_write_message(&s->hs, scratch, plen, out, cap, outlen);
	if (rc == RUF_E_INVAL)
		goto out; /* state unchanged (out too small) */
	if (rc != 0) {
		rc = session_fail(s, rc);
		goto out;
	}
	s->state = SS_HELLO;
out:
	scratch_free(scratch);
	return rc;
}

int
ruf_wire_session_read_hello(ruf_wire_session *s, const uint8_t *msg, size_t len,
                            struct ruf_wire_hello *h)
{
	uint8_t *scratch;
	size_t plen;
	int rc;

	memset(h, 0, sizeof(*h));
	if (s == NULL || s->initiator || s->state != SS_START || msg == NULL)
		return RUF_E_INVAL;
	if (len > RUF_WIRE_MAX_MSG1)
		return session_fail(s, RUF_E_TOO_LARGE);
	if (len < RUF_NOISE_MSG1_OVERHEAD)
		return session_fail(s, RUF_E_TRUNCATED);
	if ((scratch = scratch_new()) == NULL)
		return session_fail(s, RUF_E_NOMEM);
	rc = ruf_noise_read_message(&s->hs, msg, len, scratch, RUF_WIRE_MAX_MSG, &plen);
	if (rc == 0)
		rc = ruf_wire_hello_decode(scratch, plen, h);
	scratch_free(scratch);
	if (rc != 0)
		return session_fail(s, rc);
	memcpy(s->rs, ruf_noise_remote_static(&s->hs), RUF_NOISE_DHLEN);
	s->has_rs = true;
	s->state = SS_HELLO;
	return 0;
}

const uint8_t *
ruf_wire_session_remote_static(const ruf_wire_session *s)
{
	if (s == NULL || !s->has_rs || s->state == SS_FAILED)
		return NULL;
	return s->rs;
}

int
ruf_wire_session_write_welcome(ruf_wire_session *s, const struct ruf_wire_welcome *w, uint8_t *out,
                               size_t cap, size_t *outlen)
{
	uint8_t *scratch;
	size_t plen;
	int rc;

	*outlen = 0;
	if (s == NULL || s->initiator || s->state != SS_HELLO)
		return RUF_E_INVAL;
	if ((scratch = scratch_new()) == NULL)
		return RUF_E_NOMEM;
	if ((rc = ruf_wire_welcome_encode(w, scratch, RUF_WIRE_MAX_WELCOME, &plen)) != 0) {
		scratch_free(scratch);
		return rc;
	}
	rc = ruf_noise_write_message(&s->hs, scratch, plen, out, cap, outlen);
	scratch_free(scratch);
	if (rc == RUF_E_INVAL)
		return rc;
	if (rc != 0)
		return session_fail(s, rc);
	if ((rc = session_split(s)) != 0)
		return session_fail(s, rc);
	return 0;
}

int
ruf_wire_session_read_welcome(ruf_wire_session *s, const uint8_t *msg, size_t len,
                              struct ruf_wire_welcome *w)
{
	uint8_t *scratch;
	size_t plen;
	int rc;

	memset(w, 0, sizeof(*w));
	if (s == NULL || !s->initiator || s->state != SS_HELLO || msg == NULL)
		return RUF_E_INVAL;
	if (len < RUF_NOISE_MSG2_OVERHEAD)
		return session_fail(s, RUF_E_TRUNCATED);
	if ((scratch = scratch_new()) == NULL)
		return session_fail(s, RUF_E_NOMEM);
	rc = ruf_noise_read_message(&s->hs, msg, len, scratch, RUF_WIRE_MAX_MSG, &plen);
	if (rc == 0)
		rc = ruf_wire_welcome_decode(scratch, plen, w);
	scratch_free(scratch);
	if (rc != 0)
		return session_fail(s, rc);
	if ((rc = session_split(s)) != 0) {
		ruf_wire_welcome_clear(w);
		return session_fail(s, rc);
	}
	return 0;
}

bool
ruf_wire_session_ready(const ruf_wire_session *s)
{
	return s != NULL && s->state == SS_READY;
}

int
ruf_wire_session_seal(ruf_wire_session *s, const struct ruf_wire_frame *f, uint8_t *out, size_t cap,
                      size_t *outlen)
{
	size_t flen;
	int rc;

	*outlen = 0;
	if (s == NULL || s->state != SS_READY || out == NULL || cap < RUF_NOISE_TAGLEN)
		return RUF_E_INVAL;
	/* Encode straight into out, then encrypt in place (noise.h allows out == pt). */
	if ((rc = ruf_wire_frame_encode(f, out, cap - RUF_NOISE_TAGLEN, &flen)) != 0)
		return rc;
	return ruf_noise_cipher_encrypt(&s->send, NULL, 0, out, flen, out, cap, outlen);
}

int
ruf_wire_session_seal_framed(ruf_wire_session *s, const struct ruf_wire_frame *f, uint8_t *out,
                             size_t cap, size_t *outlen)
{
	size_t n;
	int rc;

	*outlen = 0;
	if (out == NULL || cap < RUF_WIRE_LEN_BYTES)
		return RUF_E_INVAL;
	if ((rc = ruf_wire_session_seal(s, f, out + RUF_WIRE_LEN_BYTES, cap - RUF_WIRE_LEN_BYTES,
	                                &n)) != 0)
		return rc;
	(void)ruf_wire_put_len(out, n);
	*outlen = n + RUF_WIRE_LEN_BYTES;
	return 0;
}

int
ruf_wire_session_open(ruf_wire_session *s, const uint8_t *msg, size_t len, struct ruf_wire_frame *f)
{
	size_t plen;
	int rc;

	memset(f, 0, sizeof(*f));
	if (s == NULL || s->state != SS_READY || msg == NULL)
		return RUF_E_INVAL;
	if (len > RUF_WIRE_MAX_MSG)
		return RUF_E_TOO_LARGE;
	if (len < RUF_NOISE_TAGLEN)
		return RUF_E_TRUNCATED;
	/*
	 * A Receipt frame points into the plaintext (its exact signed bytes),
	 * so it stays until the next message; sized to this one, not to the
	 * largest possible, so an idle session holds only its last message.
	 */
	pt_drop(s);
	if ((s->pt = malloc(len)) == NULL)
		return RUF_E_NOMEM;
	s->pt_len = len;
	rc = ruf_noise_cipher_decrypt(&s->recv, NULL, 0, msg, len, s->pt, len, &plen);
	if (rc != 0)
		return rc;
	return ruf_wire_frame_decode(s->pt, plen, f);
}

/* --- Receipts -------------------------------------------------------------- */

#define RECEIPT_DOMAIN_LEN (sizeof(RUF_WIRE_RECEIPT_DOMAIN)) /* with its NUL */

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Queue names valid, strictly sorted (so unique). */
static bool
queues_sorted(char *const *q, size_t n)
{
	if (n < 1 || n > RUF_WIRE_MAX_RECEIPT_QUEUES)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!is_queue(q[i]))
			return false;
		if (i > 0 && strcmp(q[i - 1], q[i]) >= 0)
			return false;
	}
	return true;
}

int
ruf_wire_receipt_sign(const struct ruf_wire_receipt_body *b, const uint8_t sk[RUF_SIGN_SK_BYTES],
                      uint8_t **out, size_t *outlen)
{
	Ruf__WireReceiptBody body = RUF__WIRE_RECEIPT_BODY__INIT;
	Ruf__WireReceipt r = RUF__WIRE_RECEIPT__INIT;
	char *queues[RUF_WIRE_MAX_RECEIPT_QUEUES];
	uint8_t sig[RUF_WIRE_SIG_BYTES];
	uint8_t *bbuf = NULL;
	size_t blen;
	int rc;

	*out = NULL;
	*outlen = 0;
	if (b == NULL || sk == NULL || (b->n_queues > 0 && b->queues == NULL))
		return RUF_E_INVAL;
	if (b->n_queues < 1 || b->n_queues > RUF_WIRE_MAX_RECEIPT_QUEUES || b->store_seq < 1 ||
	    b->device_serial < 1 || b->server_serial < 1)
		return RUF_E_FORMAT;
	for (size_t i = 0; i < b->n_queues; i++)
		queues[i] = str(b->queues[i]);
	qsort(queues, b->n_queues, sizeof(queues[0]), cmp_str);
	if (!queues_sorted(queues, b->n_queues))
		return RUF_E_FORMAT;
	body.message_id = bin(b->message_id, RUF_WIRE_MSGID_BYTES);
	body.envelope_hash = bin(b->envelope_hash, RUF_WIRE_HASH_BYTES);
	body.n_queues = b->n_queues;
	body.queues = queues;
	body.store_seq = b->store_seq;
	body.time = b->time;
	body.device_serial = b->device_serial;
	body.server_serial = b->server_serial;
	if ((rc = ruf_pb_encode(&body.base, &bbuf, &blen)) != 0)
		return rc;
	rc = ruf__sign_domain(RUF_WIRE_RECEIPT_DOMAIN, RECEIPT_DOMAIN_LEN, bbuf, blen, sk, sig);
	if (rc != 0)
		goto out;
	r.body = bin(bbuf, blen);
	r.signature = bin(sig, sizeof(sig));
	rc = ruf_pb_encode(&r.base, out, outlen);
out:
	free(bbuf);
	return rc;
}

static int
receipt_verify(const uint8_t *receipt, size_t len, const ruf_cert *server_cert, bool known,
               const ruf_cert *root, uint64_t now, const uint8_t *expect_message_id,
               const uint8_t *expect_hash, struct ruf_wire_receipt_info *info)
{
	ProtobufCMessage *rpm = NULL, *bpm = NULL;
	Ruf__WireReceipt *r;
	Ruf__WireReceiptBody *b;
	int rc;

	if (info != NULL)
		memset(info, 0, sizeof(*info));
	if (receipt == NULL || server_cert == NULL || root == NULL)
		return RUF_E_INVAL;
	rc = ruf_pb_decode(&ruf__wire_receipt__descriptor, receipt, len, RUF_WIRE_MAX_FRAME, &rpm);
	if (rc != 0)
		return rc == RUF_E_NOMEM ? rc : RUF_E_FORMAT;
	r = (Ruf__WireReceipt *)rpm;
	rc = RUF_E_FORMAT;
	if (r->body.len == 0 || r->signature.len != RUF_WIRE_SIG_BYTES)
		goto out;
	rc = known ? ruf_cert_reverify(server_cert, root, now)
	           : ruf_cert_verify(server_cert, root, now);
	if (rc != 0)
		goto out;
	if ((rc = ruf_cert_check_role(server_cert, RUF_ROLE_SERVER)) != 0)
		goto out;
	/* The signature over the exact received body bytes, before reading them. */
	rc = ruf__verify_domain(RUF_WIRE_RECEIPT_DOMAIN, RECEIPT_DOMAIN_LEN, r->body.data,
	                        r->body.len, r->signature.data, server_cert->sign_pk);
	if (rc != 0) {
		rc = rc == RUF_E_NOMEM ? rc : RUF_E_AUTH;
		goto out;
	}
	rc = ruf_pb_decode(&ruf__wire_receipt_body__descriptor, r->body.data, r->body.len,
	                   RUF_WIRE_MAX_FRAME, &bpm);
	if (rc != 0) {
		rc = rc == RUF_E_NOMEM ? rc : RUF_E_FORMAT;
		goto out;
	}
	b = (Ruf__WireReceiptBody *)bpm;
	rc = RUF_E_FORMAT;
	if (b->message_id.len != RUF_WIRE_MSGID_BYTES ||
	    b->envelope_hash.len != RUF_WIRE_HASH_BYTES || !queues_sorted(b->queues, b->n_queues) ||
	    b->store_seq < 1 || b->device_serial < 1 || b->server_serial < 1)
		goto out;
	rc = RUF_E_WIRE_RECEIPT;
	if (b->server_serial != server_cert->serial)
		goto out;
	if (expect_message_id != NULL &&
	    sodium_memcmp(b->message_id.data, expect_message_id, RUF_WIRE_MSGID_BYTES) != 0)
		goto out;
	if (expect_hash != NULL &&
	    sodium_memcmp(b->envelope_hash.data, expect_hash, RUF_WIRE_HASH_BYTES) != 0)
		goto out;
	if (info != NULL) {
		memcpy(info->body.message_id, b->message_id.data, RUF_WIRE_MSGID_BYTES);
		memcpy(info->body.envelope_hash, b->envelope_hash.data, RUF_WIRE_HASH_BYTES);
		for (size_t i = 0; i < b->n_queues; i++) {
			/* queues_sorted checked each name fits RUF_QUEUE_NAME_MAX. */
			snprintf(info->queue_store[i], sizeof(info->queue_store[i]), "%s",
			         b->queues[i]);
			info->queue_ptrs[i] = info->queue_store[i];
		}
		info->body.queues = info->queue_ptrs;
		info->body.n_queues = b->n_queues;
		info->body.store_seq = b->store_seq;
		info->body.time = b->time;
		info->body.device_serial = b->device_serial;
		info->body.server_serial = b->server_serial;
	}
	rc = 0;
out:
	if (bpm != NULL)
		protobuf_c_message_free_unpacked(bpm, NULL);
	protobuf_c_message_free_unpacked(rpm, NULL);
	return rc;
}

int
ruf_wire_receipt_verify(const uint8_t *receipt, size_t len, const ruf_cert *server_cert,
                        const ruf_cert *root, uint64_t now, const uint8_t *expect_message_id,
                        const uint8_t *expect_hash, struct ruf_wire_receipt_info *info)
{
	return receipt_verify(receipt, len, server_cert, false, root, now, expect_message_id,
	                      expect_hash, info);
}

int
ruf_wire_receipt_verify_known(const uint8_t *receipt, size_t len, const ruf_cert *server_cert,
                              const ruf_cert *root, uint64_t now, const uint8_t *expect_message_id,
                              const uint8_t *expect_hash, struct ruf_wire_receipt_info *info)
{
	return receipt_verify(receipt, len, server_cert, true, root, now, expect_message_id,
	                      expect_hash, info);
}
