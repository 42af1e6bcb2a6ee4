/*
 * store_record.c - msgpack records of the LMDB store.
 *
 * Encoding goes through msgpack-c's packer (into a bounded buffer). Decoding
 * does not use msgpack-c's unpacker: that builds an object tree in a zone
 * sized by the length fields it reads (an array header claiming 2^32
 * elements asks for gigabytes before the data is seen), while our records
 * have fixed shapes that a small bounds-checked cursor reads without
 * allocating. The cursor must end exactly at the end of the record.
 */
#include <string.h>

#include <msgpack.h>
#include <sodium.h>

#include "store_record.h"

/* ---- encoding ---- */

struct wbuf {
	uint8_t *p;
	size_t cap, n;
	bool overflow;
};

static int
wbuf_write(void *data, const char *buf, size_t len)
{
	struct wbuf *w = data;

	if (len > w->cap - w->n) {
		w->overflow = true;
		return -1;
	}
	memcpy(w->p + w->n, buf, len);
	w->n += len;
	return 0;
}

static int
pack_bin(msgpack_packer *pk, const void *p, size_t n)
{
	if (msgpack_pack_bin(pk, n) != 0)
		return -1;
	return n == 0 ? 0 : msgpack_pack_bin_body(pk, p, n);
}

static int
pack_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);

	if (msgpack_pack_str(pk, n) != 0)
		return -1;
	return n == 0 ? 0 : msgpack_pack_str_body(pk, s, n);
}

static int
wbuf_end(const struct wbuf *w, int rc, size_t *len)
{
	if (rc != 0 || w->overflow)
		return RUF_E_TOO_LARGE;
	*len = w->n;
	return 0;
}

#define PACK_BEGIN(w, pk, out, cap)                                                                \
	struct wbuf w = {(out), (cap), 0, false};                                                  \
	msgpack_packer pk;                                                                         \
	msgpack_packer_init(&pk, &w, wbuf_write)

int
ruf__store_meta_encode(const struct ruf_store_record *r, uint8_t *out, size_t cap, size_t *len)
{
	PACK_BEGIN(w, pk, out, cap);
	int rc = 0;
	size_t i;

	if (r->n_queues == 0 || r->n_queues > RUF_STORE_MAX_QUEUES ||
	    r->receipt_len > RUF_STORE_RECEIPT_MAX)
		return RUF_E_INVAL;
	rc |= msgpack_pack_array(&pk, 8);
	rc |= msgpack_pack_uint64(&pk, RUF__STORE_REC_V);
	rc |= pack_bin(&pk, r->hash, sizeof(r->hash));
	rc |= msgpack_pack_uint64(&pk, r->store_seq);
	rc |= msgpack_pack_uint64(&pk, r->time);
	rc |= msgpack_pack_uint64(&pk, r->device_serial);
	rc |= msgpack_pack_uint64(&pk, r->envelope_len);
	rc |= msgpack_pack_array(&pk, r->n_queues);
	for (i = 0; i < r->n_queues && rc == 0; i++) {
		rc |= msgpack_pack_array(&pk, 2);
		rc |= pack_str(&pk, r->queues[i]);
		rc |= msgpack_pack_uint64(&pk, r->queue_seq[i]);
	}
	rc |= pack_bin(&pk, r->receipt, r->receipt_len);
	return wbuf_end(&w, rc, len);
}

int
ruf__store_cursor_encode(const struct ruf__store_cursor *c, uint8_t *out, size_t cap, size_t *len)
{
	PACK_BEGIN(w, pk, out, cap);
	int rc = 0;

	rc |= msgpack_pack_array(&pk, 3);
	rc |= msgpack_pack_uint64(&pk, RUF__STORE_REC_V);
	rc |= msgpack_pack_uint64(&pk, c->seq);
	rc |= msgpack_pack_uint64(&pk, c->time);
	return wbuf_end(&w, rc, len);
}

int
ruf__store_audit_encode(const struct ruf__store_audit *a, uint8_t *out, size_t cap, size_t *len)
{
	PACK_BEGIN(w, pk, out, cap);
	int rc = 0;

	if (a->event < 1 || a->event > RUF_STORE_EV_MAX)
		return RUF_E_INVAL;
	rc |= msgpack_pack_array(&pk, 7);
	rc |= msgpack_pack_uint64(&pk, RUF__STORE_REC_V);
	rc |= pack_bin(&pk, a->prev_hash, sizeof(a->prev_hash));
	rc |= msgpack_pack_uint64(&pk, a->time);
	rc |= msgpack_pack_uint64(&pk, (uint64_t)a->event);
	rc |= pack_str(&pk, a->who);
	rc |= pack_bin(&pk, a->message_id, a->has_message_id ? sizeof(a->message_id) : 0);
	rc |= pack_str(&pk, a->queue);
	return wbuf_end(&w, rc, len);
}

int
ruf__store_state_encode(const struct ruf__store_state *s, uint8_t *out, size_t cap, size_t *len)
{
	PACK_BEGIN(w, pk, out, cap);
	int rc = 0;

	rc |= msgpack_pack_array(&pk, 4);
	rc |= msgpack_pack_uint64(&pk, RUF__STORE_REC_V);
	rc |= msgpack_pack_uint64(&pk, s->store_seq);
	rc |= msgpack_pack_uint64(&pk, s->audit_n);
	rc |= pack_bin(&pk, s->audit_head, sizeof(s->audit_head));
	return wbuf_end(&w, rc, len);
}

int
ruf__store_format_encode(uint64_t v, uint8_t *out, size_t cap, size_t *len)
{
	PACK_BEGIN(w, pk, out, cap);

	return wbuf_end(&w, msgpack_pack_uint64(&pk, v), len);
}

/* ---- decoding ---- */

struct rd {
	const uint8_t *p;
	size_t n, off;
};

static int
rd_bytes(struct rd *r, size_t k, const uint8_t **out)
{
	if (k > r->n - r->off)
		return RUF_E_FORMAT;
	*out = r->p + r->off;
	r->off += k;
	return 0;
}

/* Reads a big-endian unsigned integer of k (1, 2, 4, 8) bytes. */
static int
rd_be(struct rd *r, size_t k, uint64_t *v)
{
	const uint8_t *b;
	size_t i;

	if (rd_bytes(r, k, &b) != 0)
		return RUF_E_FORMAT;
	*v = 0;
	for (i = 0; i < k; i++)
		*v = (*v << 8) | b[i];
	return 0;
}

static int
rd_tag(struct rd *r, uint8_t *t)
{
	const uint8_t *b;

	if (rd_bytes(r, 1, &b) != 0)
		return RUF_E_FORMAT;
	*t = b[0];
	return 0;
}

/* Any unsigned integer encoding (positive fixint, uint8..uint64). */
static int
rd_uint(struct rd *r, uint64_t *v)
{
	uint8_t t;

	if (rd_tag(r, &t) != 0)
		return RUF_E_FORMAT;
	if (t <= 0x7f) {
		*v = t;
		return 0;
	}
	switch (t) {
	case 0xcc:
		return rd_be(r, 1, v);
	case 0xcd:
		return rd_be(r, 2, v);
	case 0xce:
		return rd_be(r, 4, v);
	case 0xcf:
		return rd_be(r, 8, v);
	default:
		return RUF_E_FORMAT;
	}
}

static int
rd_array(struct rd *r, uint64_t *n)
{
	uint8_t t;

	if (rd_tag(r, &t) != 0)
		return RUF_E_FORMAT;
	if ((t & 0xf0) == 0x90) {
		*n = t & 0x0f;
		return 0;
	}
	if (t == 0xdc)
		return rd_be(r, 2, n);
	if (t == 0xdd)
		return rd_be(r, 4, n);
	return RUF_E_FORMAT;
}

/* A bin (is_str false) or str (is_str true) of at most max bytes. */
static int
rd_blob(struct rd *r, bool is_str, size_t max, const uint8_t **p, size_t *len)
{
	uint8_t t;
	uint64_t n;
	int rc;

	if (rd_tag(r, &t) != 0)
		return RUF_E_FORMAT;
	if (is_str && (t & 0xe0) == 0xa0) {
		n = t & 0x1f;
		rc = 0;
	} else if (t == (is_str ? 0xd9 : 0xc4)) {
		rc = rd_be(r, 1, &n);
	} else if (t == (is_str ? 0xda : 0xc5)) {
		rc = rd_be(r, 2, &n);
	} else if (t == (is_str ? 0xdb : 0xc6)) {
		rc = rd_be(r, 4, &n);
	} else {
		return RUF_E_FORMAT;
	}
	if (rc != 0 || n > max)
		return RUF_E_FORMAT;
	*len = (size_t)n;
	return rd_bytes(r, *len, p);
}

/* A bin of exactly len bytes, copied to out. */
static int
rd_bin_exact(struct rd *r, void *out, size_t len)
{
	const uint8_t *p;
	size_t n;

	if (rd_blob(r, false, len, &p, &n) != 0 || n != len)
		return RUF_E_FORMAT;
	memcpy(out, p, len);
	return 0;
}

/* A str of at most max bytes without NUL, copied NUL-terminated to out[max + 1]. */
static int
rd_cstr(struct rd *r, char *out, size_t max)
{
	const uint8_t *p;
	size_t n;

	if (rd_blob(r, true, max, &p, &n) != 0 || memchr(p, '\0', n) != NULL)
		return RUF_E_FORMAT;
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

/* The array header (exactly n elements) and the version element. */
static int
rd_head(struct rd *r, uint64_t n)
{
	uint64_t got, v;

	if (rd_array(r, &got) != 0 || got != n)
		return RUF_E_FORMAT;
	if (rd_uint(r, &v) != 0)
		return RUF_E_FORMAT;
	return v == RUF__STORE_REC_V ? 0 : RUF_E_VERSION;
}

static int
rd_end(const struct rd *r)
{
	return r->off == r->n ? 0 : RUF_E_FORMAT;
}

/*
 * A record whose array header announces another element count may be a
 * future version: look at the version first so it is reported as such.
 */
static int
rd_head_or_version(struct rd *r, uint64_t n)
{
	struct rd peek = *r;
	uint64_t got, v;
	int rc = rd_head(r, n);

	if (rc == RUF_E_FORMAT && rd_array(&peek, &got) == 0 && got >= 1 &&
	    rd_uint(&peek, &v) == 0 && v != RUF__STORE_REC_V)
		return RUF_E_VERSION;
	return rc;
}

int
ruf__store_meta_decode(const uint8_t *p, size_t n, struct ruf_store_record *rec)
{
	struct rd r = {p, n, 0};
	uint64_t nq, k, i;
	const uint8_t *rp;
	size_t rl;
	int rc;

	if ((rc = rd_head_or_version(&r, 8)) != 0)
		return rc;
	if (rd_bin_exact(&r, rec->hash, sizeof(rec->hash)) != 0 ||
	    rd_uint(&r, &rec->store_seq) != 0 || rd_uint(&r, &rec->time) != 0 ||
	    rd_uint(&r, &rec->device_serial) != 0 || rd_uint(&r, &rec->envelope_len) != 0 ||
	    rd_array(&r, &nq) != 0)
		return RUF_E_FORMAT;
	if (rec->store_seq == 0 || rec->envelope_len == 0 || nq == 0 || nq > RUF_STORE_MAX_QUEUES)
		return RUF_E_FORMAT;
	rec->n_queues = (size_t)nq;
	for (i = 0; i < nq; i++) {
		if (rd_array(&r, &k) != 0 || k != 2 ||
		    rd_cstr(&r, rec->queues[i], RUF_QUEUE_NAME_MAX) != 0 ||
		    rd_uint(&r, &rec->queue_seq[i]) != 0)
			return RUF_E_FORMAT;
		if (!ruf_is_queue_name(rec->queues[i]) || rec->queue_seq[i] == 0)
			return RUF_E_FORMAT;
	}
	if (rd_blob(&r, false, RUF_STORE_RECEIPT_MAX, &rp, &rl) != 0)
		return RUF_E_FORMAT;
	memcpy(rec->receipt, rp, rl);
	rec->receipt_len = rl;
	return rd_end(&r);
}

int
ruf__store_cursor_decode(const uint8_t *p, size_t n, struct ruf__store_cursor *c)
{
	struct rd r = {p, n, 0};
	int rc;

	if ((rc = rd_head_or_version(&r, 3)) != 0)
		return rc;
	if (rd_uint(&r, &c->seq) != 0 || rd_uint(&r, &c->time) != 0 || c->seq == 0)
		return RUF_E_FORMAT;
	return rd_end(&r);
}

int
ruf__store_audit_decode(const uint8_t *p, size_t n, struct ruf__store_audit *a)
{
	struct rd r = {p, n, 0};
	uint64_t ev;
	const uint8_t *mp;
	size_t ml;
	int rc;

	if ((rc = rd_head_or_version(&r, 7)) != 0)
		return rc;
	if (rd_bin_exact(&r, a->prev_hash, sizeof(a->prev_hash)) != 0 ||
	    rd_uint(&r, &a->time) != 0 || rd_uint(&r, &ev) != 0 ||
	    rd_cstr(&r, a->who, RUF_STORE_WHO_MAX) != 0 ||
	    rd_blob(&r, false, RUF_STORE_MSGID_BYTES, &mp, &ml) != 0 ||
	    rd_cstr(&r, a->queue, RUF_QUEUE_NAME_MAX) != 0)
		return RUF_E_FORMAT;
	if (ev < 1 || ev > RUF_STORE_EV_MAX || a->who[0] == '\0')
		return RUF_E_FORMAT;
	if (ml != 0 && ml != RUF_STORE_MSGID_BYTES)
		return RUF_E_FORMAT;
	if (a->queue[0] != '\0' && !ruf_is_queue_name(a->queue))
		return RUF_E_FORMAT;
	a->event = (int)ev;
	a->has_message_id = ml != 0;
	if (ml != 0)
		memcpy(a->message_id, mp, ml);
	else
		memset(a->message_id, 0, sizeof(a->message_id));
	return rd_end(&r);
}

int
ruf__store_state_decode(const uint8_t *p, size_t n, struct ruf__store_state *s)
{
	struct rd r = {p, n, 0};
	int rc;

	if ((rc = rd_head_or_version(&r, 4)) != 0)
		return rc;
	if (rd_uint(&r, &s->store_seq) != 0 || rd_uint(&r, &s->audit_n) != 0 ||
	    rd_bin_exact(&r, s->audit_head, sizeof(s->audit_head)) != 0)
		return RUF_E_FORMAT;
	return rd_end(&r);
}

int
ruf__store_format_decode(const uint8_t *p, size_t n, uint64_t *v)
{
	struct rd r = {p, n, 0};

	if (rd_uint(&r, v) != 0)
		return RUF_E_FORMAT;
	return rd_end(&r);
}

int
ruf__store_audit_hash(const uint8_t prev_hash[RUF_STORE_HASH_BYTES], const uint8_t *rec, size_t n,
                      uint8_t out[RUF_STORE_HASH_BYTES])
{
	crypto_generichash_blake2b_state st;

	if (crypto_generichash_blake2b_init(&st, NULL, 0, RUF_STORE_HASH_BYTES) != 0 ||
	    crypto_generichash_blake2b_update(&st, prev_hash, RUF_STORE_HASH_BYTES) != 0 ||
	    crypto_generichash_blake2b_update(&st, rec, n) != 0 ||
	    crypto_generichash_blake2b_final(&st, out, RUF_STORE_HASH_BYTES) != 0)
		return RUF_E_CRYPTO;
	return 0;
}
