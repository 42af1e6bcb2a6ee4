/*
 * test_wire.c - the wire codec: stream framing across arbitrary splits, the
 * Noise session with Hello/Welcome over a socketpair (both sides in this
 * process, the responder driven by the codec as rufd will), every frame type
 * round trip, strict decode rejections, and receipts.
 *
 * RUF_WRITE_CORPUS=DIR writes fuzzing seeds into DIR/wire_frame,
 * DIR/wire_stream and DIR/wire_hello.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "cert.h"
#include "err.h"
#include "pb.h"
#include "util.h"
#include "wire.h"
#include "wire.pb-c.h"

#define NB 1790000000u
#define NA 1830000000u
#define NOW 1800000000u

struct ident {
	uint8_t sign_pk[RUF_SIGN_PK_BYTES];
	uint8_t sign_sk[RUF_SIGN_SK_BYTES];
	uint8_t kx_pk[RUF_KX_PK_BYTES];
	uint8_t kx_sk[RUF_KX_SK_BYTES];
};

static struct ident root_id, server_id, device_id, other_root_id;
static uint8_t *root_raw, *server_raw, *device_raw, *other_root_raw, *server2_raw, *expired_raw,
    *foreign_raw;
static size_t root_len, server_len, device_len, other_root_len, server2_len, expired_len,
    foreign_len;
static ruf_cert *root, *server, *device, *other_root, *server2, *expired, *foreign;

/* Deterministic keys: every byte of both seeds is derived from tag. */
static void
ident_make(struct ident *id, uint8_t tag)
{
	uint8_t seed[crypto_sign_SEEDBYTES];

	memset(seed, tag, sizeof(seed));
	assert_int_equal(crypto_sign_seed_keypair(id->sign_pk, id->sign_sk, seed), 0);
	memset(id->kx_sk, tag ^ 0x5a, sizeof(id->kx_sk));
	assert_int_equal(crypto_scalarmult_base(id->kx_pk, id->kx_sk), 0);
}

static void
issue(const struct ident *id, const struct ident *issuer, int role, uint64_t serial,
      const char *subject, uint64_t na, uint8_t **out, size_t *len, ruf_cert **c)
{
	static const char *const sits[] = {"darfur"};
	struct ruf_cert_template t = {
	    .role = role,
	    .serial = serial,
	    .subject = subject,
	    .not_before = NB,
	    .not_after = na,
	    .sign_pk = id->sign_pk,
	    .kx_pk = id->kx_pk,
	};

	if (role == RUF_ROLE_DEVICE) {
		t.situations = sits;
		t.n_situations = 1;
	}
	assert_int_equal(ruf_cert_issue(&t, issuer->sign_sk, issuer->sign_pk, out, len), 0);
	assert_int_equal(ruf_cert_parse(*out, *len, c), 0);
}

static int
setup(void **state)
{
	(void)state;
	if (sodium_init() < 0)
		return -1;
	ident_make(&root_id, 0x01);
	ident_make(&server_id, 0x02);
	ident_make(&device_id, 0x03);
	ident_make(&other_root_id, 0x04);
	issue(&root_id, &root_id, RUF_ROLE_ROOT, 1, "hq-root", NA, &root_raw, &root_len, &root);
	issue(&server_id, &root_id, RUF_ROLE_SERVER, 2, "hq-server", NA, &server_raw, &server_len,
	      &server);
	issue(&device_id, &root_id, RUF_ROLE_DEVICE, 3, "rc-sd-1", NA, &device_raw, &device_len,
	      &device);
	issue(&other_root_id, &other_root_id, RUF_ROLE_ROOT, 1, "evil-root", NA, &other_root_raw,
	      &other_root_len, &other_root);
	/* Same keys as server, another serial. */
	issue(&server_id, &root_id, RUF_ROLE_SERVER, 9, "hq-server", NA, &server2_raw, &server2_len,
	      &server2);
	issue(&server_id, &root_id, RUF_ROLE_SERVER, 10, "hq-server", NOW - 1, &expired_raw,
	      &expired_len, &expired);
	/* The server's keys, certified by a root the client did not pin. */
	issue(&server_id, &other_root_id, RUF_ROLE_SERVER, 2, "hq-server", NA, &foreign_raw,
	      &foreign_len, &foreign);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	free(root_raw);
	free(server_raw);
	free(device_raw);
	free(other_root_raw);
	free(server2_raw);
	free(expired_raw);
	free(foreign_raw);
	ruf_cert_free(root);
	ruf_cert_free(server);
	ruf_cert_free(device);
	ruf_cert_free(other_root);
	ruf_cert_free(server2);
	ruf_cert_free(expired);
	ruf_cert_free(foreign);
	return 0;
}

/* --- Stream framing ------------------------------------------------------ */

/* A stream of n messages; message i has length lens[i] and bytes (i + j). */
static uint8_t *
make_stream(const size_t *lens, size_t n, size_t *total)
{
	size_t t = 0, off = 0;
	uint8_t *s;

	for (size_t i = 0; i < n; i++)
		t += 2 + lens[i];
	s = malloc(t);
	assert_non_null(s);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(ruf_wire_put_len(s + off, lens[i]), 0);
		off += 2;
		for (size_t j = 0; j < lens[i]; j++)
			s[off + j] = (uint8_t)(i + j);
		off += lens[i];
	}
	*total = t;
	return s;
}

/* Feeds stream in pieces chosen by piece(); checks every message comes out whole. */
static void
feed_pieces(const size_t *lens, size_t n, size_t (*piece)(size_t k))
{
	ruf_wire_reader r;
	size_t total, off = 0, got = 0, k = 0;
	uint8_t *s = make_stream(lens, n, &total);

	ruf_wire_reader_init(&r, RUF_WIRE_MAX_MSG);
	while (off < total) {
		size_t len = piece(k++), used;
		const uint8_t *msg;
		size_t mlen;
		int rc;

		if (len > total - off)
			len = total - off;
		while (len > 0) {
			assert_int_equal(ruf_wire_reader_feed(&r, s + off, len, &used), 0);
			assert_true(ruf_wire_reader_pending(&r) <= RUF_WIRE_MAX_MSG + 2);
			off += used;
			len -= used;
			while ((rc = ruf_wire_reader_next(&r, &msg, &mlen)) == 1) {
				assert_true(got < n);
				assert_int_equal(mlen, lens[got]);
				for (size_t j = 0; j < mlen; j++)
					assert_int_equal(msg[j], (uint8_t)(got + j));
				got++;
			}
			assert_int_equal(rc, 0);
		}
	}
	assert_int_equal(got, n);
	assert_int_equal(ruf_wire_reader_pending(&r), 0);
	ruf_wire_reader_free(&r);
	free(s);
}

static size_t
piece_one(size_t k)
{
	(void)k;
	return 1;
}

static size_t
piece_varied(size_t k)
{
	static const size_t p[] = {3, 1, 2, 700, 5, 65537, 4096, 7};
	return p[k % (sizeof(p) / sizeof(p[0]))];
}

static size_t
piece_all(size_t k)
{
	(void)k;
	return SIZE_MAX / 2;
}

static void
test_reader_reassembles_messages_split_into_single_bytes(void **state)
{
	static const size_t lens[] = {1, 2, 300, 65535, 17, 1};

	(void)state;
	feed_pieces(lens, 6, piece_one);
	feed_pieces(lens, 6, piece_varied);
	feed_pieces(lens, 6, piece_all);
}

static void
test_reader_rejects_zero_length(void **state)
{
	static const uint8_t s[] = {0, 3, 'a', 'b', 'c', 0, 0, 0, 1, 'x'};
	ruf_wire_reader r;
	const uint8_t *msg;
	size_t used, mlen;

	(void)state;
	ruf_wire_reader_init(&r, RUF_WIRE_MAX_MSG);
	assert_int_equal(ruf_wire_reader_feed(&r, s, sizeof(s), &used), 0);
	assert_int_equal(used, 5); /* stops after the complete message */
	assert_int_equal(ruf_wire_reader_next(&r, &msg, &mlen), 1);
	assert_int_equal(mlen, 3);
	assert_memory_equal(msg, "abc", 3);
	assert_int_equal(ruf_wire_reader_feed(&r, s + 5, sizeof(s) - 5, &used), RUF_E_FORMAT);
	/* Errors are sticky. */
	assert_int_equal(ruf_wire_reader_next(&r, &msg, &mlen), RUF_E_FORMAT);
	assert_int_equal(ruf_wire_reader_feed(&r, s, 5, &used), RUF_E_FORMAT);
	assert_int_equal(used, 0);
	ruf_wire_reader_free(&r);
}

static void
test_reader_rejects_length_over_limit_before_buffering(void **state)
{
	static const uint8_t s[] = {0x40, 0x01, 1, 2, 3};
	ruf_wire_reader r;
	size_t used;

	(void)state;
	ruf_wire_reader_init(&r, RUF_WIRE_MAX_MSG1);
	assert_int_equal(ruf_wire_reader_feed(&r, s, sizeof(s), &used), RUF_E_TOO_LARGE);
	assert_int_equal(used, 2);
	assert_null(r.buf); /* nothing allocated for the refused length */
	ruf_wire_reader_free(&r);

	/* Exactly the limit is fine; raising the limit admits longer ones. */
	ruf_wire_reader_init(&r, RUF_WIRE_MAX_MSG1);
	assert_int_equal(ruf_wire_reader_feed(&r, (const uint8_t[]){0x40, 0x00}, 2, &used), 0);
	ruf_wire_reader_free(&r);
	ruf_wire_reader_init(&r, RUF_WIRE_MAX_MSG1);
	ruf_wire_reader_set_max(&r, RUF_WIRE_MAX_MSG);
	assert_int_equal(ruf_wire_reader_feed(&r, s, 2, &used), 0);
	ruf_wire_reader_free(&r);
}

static void
test_put_len_refuses_zero_and_oversized(void **state)
{
	uint8_t b[2];

	(void)state;
	assert_int_equal(ruf_wire_put_len(b, 0), RUF_E_INVAL);
	assert_int_equal(ruf_wire_put_len(b, 65536), RUF_E_INVAL);
	assert_int_equal(ruf_wire_put_len(b, 65535), 0);
	assert_int_equal(b[0], 0xff);
	assert_int_equal(b[1], 0xff);
	assert_int_equal(ruf_wire_put_len(b, 0x0102), 0);
	assert_int_equal(b[0], 1);
	assert_int_equal(b[1], 2);
}

/* --- Frames -------------------------------------------------------------- */

static uint8_t bigdata[RUF_WIRE_MAX_DATA + 1];
static uint8_t dirbytes[3000];
static const char *const subq[] = {"sag", "itf.darfur", "inbox.rc-sd-1"};

/* One valid frame of each type, with distinctive values. */
static struct ruf_wire_frame
sample(int type)
{
	struct ruf_wire_frame f;

	memset(&f, 0, sizeof(f));
	f.type = type;
	switch (type) {
	case RUF_WIRE_PING:
	case RUF_WIRE_PONG:
		f.u.ping.nonce = UINT64_C(0x0123456789abcdef) + (uint64_t)type;
		break;
	case RUF_WIRE_ERROR:
		f.u.error.code = RUF_WIRE_ERR_RATE_LIMITED;
		f.u.error.text = "slow down";
		break;
	case RUF_WIRE_SUBMIT_OFFER:
		memset(f.u.offer.message_id, 0x11, RUF_WIRE_MSGID_BYTES);
		f.u.offer.total_len = 123456;
		memset(f.u.offer.hash, 0x22, RUF_WIRE_HASH_BYTES);
		break;
	case RUF_WIRE_SUBMIT_STATUS:
		memset(f.u.status.message_id, 0x11, RUF_WIRE_MSGID_BYTES);
		f.u.status.have = 65536;
		break;
	case RUF_WIRE_SUBMIT_CHUNK:
		memset(f.u.chunk.message_id, 0x11, RUF_WIRE_MSGID_BYTES);
		f.u.chunk.offset = 65536;
		f.u.chunk.data = bigdata;
		f.u.chunk.len = RUF_WIRE_MAX_DATA;
		break;
	case RUF_WIRE_RECEIPT:
		f.u.receipt.body = dirbytes;
		f.u.receipt.body_len = 100;
		memset(f.u.receipt.signature, 0x33, RUF_WIRE_SIG_BYTES);
		break;
	case RUF_WIRE_NACK:
		memset(f.u.nack.message_id, 0x11, RUF_WIRE_MSGID_BYTES);
		f.u.nack.reason = RUF_WIRE_NACK_STALE_DIRECTORY;
		f.u.nack.directory = dirbytes;
		f.u.nack.directory_len = sizeof(dirbytes);
		break;
	case RUF_WIRE_SUBSCRIBE:
		for (size_t i = 0; i < 3; i++)
			f.u.subscribe.queues[i] = subq[i];
		f.u.subscribe.n_queues = 3;
		f.u.subscribe.window = 64;
		break;
	case RUF_WIRE_DELIVER:
		f.u.deliver.queue = "itf.darfur";
		f.u.deliver.seq = 42;
		memset(f.u.deliver.message_id, 0x44, RUF_WIRE_MSGID_BYTES);
		f.u.deliver.total_len = 70000;
		f.u.deliver.offset = 60000;
		f.u.deliver.data = bigdata;
		f.u.deliver.len = 10000;
		f.u.deliver.last = true;
		break;
	case RUF_WIRE_DELIVER_ACK:
		f.u.deliver_ack.queue = "sag";
		f.u.deliver_ack.seq = 7;
		break;
	case RUF_WIRE_DIRECTORY_UPDATE:
		f.u.directory_update.directory = dirbytes;
		f.u.directory_update.len = sizeof(dirbytes);
		break;
	}
	return f;
}

/* Field-by-field equality of a sent and a received frame. */
static void
assert_frame_equal(const struct ruf_wire_frame *a, const struct ruf_wire_frame *b)
{
	assert_int_equal(a->type, b->type);
	switch (a->type) {
	case RUF_WIRE_PING:
	case RUF_WIRE_PONG:
		assert_true(a->u.ping.nonce == b->u.ping.nonce);
		break;
	case RUF_WIRE_ERROR:
		assert_int_equal(a->u.error.code, b->u.error.code);
		assert_string_equal(a->u.error.text, b->u.error.text);
		break;
	case RUF_WIRE_SUBMIT_OFFER:
		assert_memory_equal(&a->u.offer, &b->u.offer, sizeof(a->u.offer));
		break;
	case RUF_WIRE_SUBMIT_STATUS:
		assert_memory_equal(&a->u.status, &b->u.status, sizeof(a->u.status));
		break;
	case RUF_WIRE_SUBMIT_CHUNK:
		assert_memory_equal(a->u.chunk.message_id, b->u.chunk.message_id, 16);
		assert_true(a->u.chunk.offset == b->u.chunk.offset);
		assert_int_equal(a->u.chunk.len, b->u.chunk.len);
		assert_memory_equal(a->u.chunk.data, b->u.chunk.data, a->u.chunk.len);
		break;
	case RUF_WIRE_RECEIPT:
		assert_int_equal(a->u.receipt.body_len, b->u.receipt.body_len);
		assert_memory_equal(a->u.receipt.body, b->u.receipt.body, a->u.receipt.body_len);
		assert_memory_equal(a->u.receipt.signature, b->u.receipt.signature, 64);
		break;
	case RUF_WIRE_NACK:
		assert_memory_equal(a->u.nack.message_id, b->u.nack.message_id, 16);
		assert_int_equal(a->u.nack.reason, b->u.nack.reason);
		assert_int_equal(a->u.nack.retry_after_s, b->u.nack.retry_after_s);
		assert_int_equal(a->u.nack.directory_len, b->u.nack.directory_len);
		if (a->u.nack.directory_len > 0)
			assert_memory_equal(a->u.nack.directory, b->u.nack.directory,
			                    a->u.nack.directory_len);
		break;
	case RUF_WIRE_SUBSCRIBE:
		assert_int_equal(a->u.subscribe.n_queues, b->u.subscribe.n_queues);
		for (size_t i = 0; i < a->u.subscribe.n_queues; i++)
			assert_string_equal(a->u.subscribe.queues[i], b->u.subscribe.queues[i]);
		assert_int_equal(a->u.subscribe.window, b->u.subscribe.window);
		break;
	case RUF_WIRE_DELIVER:
		assert_string_equal(a->u.deliver.queue, b->u.deliver.queue);
		assert_true(a->u.deliver.seq == b->u.deliver.seq);
		assert_memory_equal(a->u.deliver.message_id, b->u.deliver.message_id, 16);
		assert_true(a->u.deliver.total_len == b->u.deliver.total_len);
		assert_true(a->u.deliver.offset == b->u.deliver.offset);
		assert_int_equal(a->u.deliver.len, b->u.deliver.len);
		assert_memory_equal(a->u.deliver.data, b->u.deliver.data, a->u.deliver.len);
		assert_int_equal(a->u.deliver.last, b->u.deliver.last);
		break;
	case RUF_WIRE_DELIVER_ACK:
		assert_string_equal(a->u.deliver_ack.queue, b->u.deliver_ack.queue);
		assert_true(a->u.deliver_ack.seq == b->u.deliver_ack.seq);
		break;
	case RUF_WIRE_DIRECTORY_UPDATE:
		assert_int_equal(a->u.directory_update.len, b->u.directory_update.len);
		assert_memory_equal(a->u.directory_update.directory,
		                    b->u.directory_update.directory, a->u.directory_update.len);
		break;
	default:
		fail();
	}
}

static uint8_t fbuf[RUF_WIRE_MAX_MSG];

static void
test_every_frame_type_survives_a_round_trip(void **state)
{
	(void)state;
	randombytes_buf(bigdata, sizeof(bigdata));
	randombytes_buf(dirbytes, sizeof(dirbytes));
	for (int t = RUF_WIRE_PING; t <= RUF_WIRE_DIRECTORY_UPDATE; t++) {
		struct ruf_wire_frame f = sample(t), g;
		size_t len;

		assert_int_equal(ruf_wire_frame_encode(&f, fbuf, sizeof(fbuf), &len), 0);
		assert_true(len <= RUF_WIRE_MAX_FRAME);
		assert_int_equal(ruf_wire_frame_decode(fbuf, len, &g), 0);
		assert_frame_equal(&f, &g);
		assert_string_not_equal(ruf_wire_type_name(t), "unknown");
		ruf_wire_frame_clear(&g);
	}
	assert_string_equal(ruf_wire_type_name(0), "unknown");
	assert_string_equal(ruf_wire_type_name(13), "unknown");
}

/* Encoding refuses what decoding would refuse. Returns the encode result. */
static int
enc(const struct ruf_wire_frame *f)
{
	size_t len;
	return ruf_wire_frame_encode(f, fbuf, sizeof(fbuf), &len);
}

static void
test_empty_ping_is_still_a_body(void **state)
{
	static const uint8_t want[] = {0x0a, 0x00};
	struct ruf_wire_frame f = {.type = RUF_WIRE_PING}, g;
	size_t n;

	(void)state;
	/* A oneof member is written even when its message is empty. */
	assert_int_equal(ruf_wire_frame_encode(&f, fbuf, sizeof(fbuf), &n), 0);
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(fbuf, want, sizeof(want));
	assert_int_equal(ruf_wire_frame_decode(want, sizeof(want), &g), 0);
	assert_int_equal(g.type, RUF_WIRE_PING);
	assert_true(g.u.ping.nonce == 0);
	ruf_wire_frame_clear(&g);
}

static void
test_receipt_frame_from_raw_bytes_must_be_a_receipt(void **state)
{
	static const uint8_t junk[] = {0x0a, 0x01, 0x41}; /* body only, no signature */
	struct ruf_wire_frame f = {.type = RUF_WIRE_RECEIPT};
	size_t n;

	(void)state;
	f.u.receipt.raw = junk;
	f.u.receipt.raw_len = sizeof(junk);
	assert_int_equal(ruf_wire_frame_encode(&f, fbuf, sizeof(fbuf), &n), RUF_E_FORMAT);
	f.u.receipt.raw_len = 1; /* not even protobuf */
	assert_int_equal(ruf_wire_frame_encode(&f, fbuf, sizeof(fbuf), &n), RUF_E_FORMAT);
}

/* A full first piece with the largest receipt still fits in one frame and comes back whole. */
static void
test_deliver_carries_receipt_on_first_piece(void **state)
{
	static uint8_t receipt[RUF_WIRE_MAX_RECEIPT];
	struct ruf_wire_frame f = sample(RUF_WIRE_DELIVER), g;
	size_t len;

	(void)state;
	memset(receipt, 0x77, sizeof(receipt));
	f.u.deliver.queue =
	    "inbox-with-a-long-name-abcdefghi.rc-sd-1-abcdefghijklmnopqrstuvw" /* 64 bytes */;
	f.u.deliver.offset = 0;
	f.u.deliver.total_len = UINT64_C(1) << 39;
	f.u.deliver.len = RUF_WIRE_MAX_DATA;
	f.u.deliver.last = false;
	f.u.deliver.receipt = receipt;
	f.u.deliver.receipt_len = sizeof(receipt);
	assert_int_equal(ruf_wire_frame_encode(&f, fbuf, sizeof(fbuf), &len), 0);
	assert_int_equal(ruf_wire_frame_decode(fbuf, len, &g), 0);
	assert_int_equal(g.u.deliver.receipt_len, sizeof(receipt));
	assert_memory_equal(g.u.deliver.receipt, receipt, sizeof(receipt));
	ruf_wire_frame_clear(&g);
	/* Without one, nothing on the wire changes (older frames decode the same). */
	f.u.deliver.receipt_len = 0;
	f.u.deliver.receipt = NULL;
	assert_int_equal(ruf_wire_frame_encode(&f, fbuf, sizeof(fbuf), &len), 0);
	assert_int_equal(ruf_wire_frame_decode(fbuf, len, &g), 0);
	assert_int_equal(g.u.deliver.receipt_len, 0);
	ruf_wire_frame_clear(&g);
}

static void
test_frame_encode_refuses_rule_violations(void **state)
{
	struct ruf_wire_frame f;
	static const char *const many[17] = {"a", "b", "c", "d", "e", "f", "g", "h", "i",
	                                     "j", "k", "l", "m", "n", "o", "p", "q"};

	(void)state;
	f = sample(RUF_WIRE_SUBSCRIBE);
	f.u.subscribe.window = 0;
	assert_int_equal(enc(&f), RUF_E_FORMAT);
	f.u.subscribe.window = RUF_WIRE_MAX_WINDOW + 1;
	assert_int_equal(enc(&f), RUF_E_FORMAT);
	f.u.subscribe.window = RUF_WIRE_MAX_WINDOW;
	assert_int_equal(enc(&f), 0);
	f.u.subscribe.queues[1] = "ITF.darfur";
	assert_int_equal(enc(&f), RUF_E_FORMAT);
	f.u.subscribe.queues[1] = "sag"; /* duplicate */
	assert_int_equal(enc(&f), RUF_E_FORMAT);
	f.u.subscribe.n_queues = 0;
	assert_int_equal(enc(&f), RUF_E_FORMAT);

	f = sample(RUF_WIRE_SUBMIT_CHUNK);
	f.u.chunk.len = RUF_WIRE_MAX_DATA + 1;
	assert_int_equal(enc(&f), RUF_E_FORMAT);
	f.u.chunk.len = 0;
	assert_int_equal(enc(&f), RUF_E_FORMAT);

	f = sample(RUF_WIRE_DELIVER);
	f.u.deliver.last = false; /* but offset + len == total_len */
	assert_int_equal(enc(&f), RUF_E_FORMAT);
	f = sample(RUF_WIRE_DELIVER);
	f.u.deliver.total_len = 69999; /* data runs past the end */
	assert_int_equal(enc(&f), RUF_E_FORMAT);
	f = sample(RUF_WIRE_DELIVER);
	f.u.deliver.seq = 0;
	assert_int_equal(enc(&f), RUF_E_FORMAT);

	/* The receipt rides on the first piece only, bounded. */
	f = sample(RUF_WIRE_DELIVER);
	f.u.deliver.receipt = bigdata;
	f.u.deliver.receipt_len = 100;
	assert_int_equal(enc(&f), RUF_E_FORMAT);
	f.u.deliver.offset = 0;
	f.u.deliver.total_len = 10000;
	f.u.deliver.receipt_len = RUF_WIRE_MAX_RECEIPT + 1;
	assert_int_equal(enc(&f), RUF_E_FORMAT);

	f = sample(RUF_WIRE_NACK);
	f.u.nack.directory_len = 0; /* stale directory needs the directory */
	assert_int_equal(enc(&f), RUF_E_FORMAT);
	f = sample(RUF_WIRE_NACK);
	f.u.nack.reason = RUF_WIRE_NACK_REJECTED; /* directory only with stale */
	assert_int_equal(enc(&f), RUF_E_FORMAT);
	f.u.nack.reason = 5;
	assert_int_equal(enc(&f), RUF_E_FORMAT);

	f = sample(RUF_WIRE_ERROR);
	f.u.error.code = 0;
	assert_int_equal(enc(&f), RUF_E_FORMAT);
	f.u.error.code = 7;
	assert_int_equal(enc(&f), RUF_E_FORMAT);

	f = sample(RUF_WIRE_SUBMIT_OFFER);
	f.u.offer.total_len = 0;
	assert_int_equal(enc(&f), RUF_E_FORMAT);

	f = sample(RUF_WIRE_DELIVER_ACK);
	f.u.deliver_ack.queue = "no queue";
	assert_int_equal(enc(&f), RUF_E_FORMAT);

	f = sample(RUF_WIRE_SUBSCRIBE);
	for (size_t i = 0; i < RUF_WIRE_MAX_SUBSCRIBE; i++)
		f.u.subscribe.queues[i] = many[i];
	f.u.subscribe.n_queues = RUF_WIRE_MAX_SUBSCRIBE;
	assert_int_equal(enc(&f), 0);

	f.type = 0;
	assert_int_equal(enc(&f), RUF_E_FORMAT);
	f.type = 13;
	assert_int_equal(enc(&f), RUF_E_FORMAT);
}

/* Encodes a hand-built (possibly invalid) WireFrame with protobuf-c itself. */
static size_t
raw_frame(const Ruf__WireFrame *m, uint8_t *out)
{
	size_t n = protobuf_c_message_get_packed_size(&m->base);
	assert_true(n <= RUF_WIRE_MAX_MSG);
	protobuf_c_message_pack(&m->base, out);
	return n;
}

static void
assert_decode_fails(const uint8_t *b, size_t n, int want)
{
	struct ruf_wire_frame g;

	assert_int_equal(ruf_wire_frame_decode(b, n, &g), want);
	assert_null(g._pb);
}

static void
test_frame_decode_rejects_malformed_frames(void **state)
{
	Ruf__WireFrame m = RUF__WIRE_FRAME__INIT;
	Ruf__WireSubmitOffer offer = RUF__WIRE_SUBMIT_OFFER__INIT;
	Ruf__WireSubscribe sub = RUF__WIRE_SUBSCRIBE__INIT;
	Ruf__WireDeliverAck dack = RUF__WIRE_DELIVER_ACK__INIT;
	Ruf__WireSubmitChunk chunk = RUF__WIRE_SUBMIT_CHUNK__INIT;
	uint8_t id15[15] = {0}, id17[17] = {0}, hash[32] = {0};
	char *qs[17];
	char qbuf[17][4];
	struct ruf_wire_frame f = sample(RUF_WIRE_PING);
	size_t n, good;

	(void)state;
	/* Empty: a frame with no body. */
	assert_decode_fails(fbuf, 0, RUF_E_FORMAT);
	/* Over the frame limit. */
	assert_decode_fails(fbuf, RUF_WIRE_MAX_FRAME + 1, RUF_E_TOO_LARGE);

	/* Trailing bytes after a valid frame. */
	assert_int_equal(ruf_wire_frame_encode(&f, fbuf, sizeof(fbuf), &good), 0);
	fbuf[good] = 0;
	assert_decode_fails(fbuf, good + 1, RUF_E_FORMAT);
	/* An unknown field (number 99, varint 1) after a valid body. */
	fbuf[good] = 0x98;
	fbuf[good + 1] = 0x06;
	fbuf[good + 2] = 0x01;
	assert_decode_fails(fbuf, good + 3, RUF_E_FORMAT);
	/* Truncated. */
	assert_decode_fails(fbuf, good - 1, RUF_E_FORMAT);
	/* Two bodies: ping followed by a second ping (a duplicate oneof). */
	memcpy(fbuf + good, fbuf, good);
	assert_decode_fails(fbuf, 2 * good, RUF_E_FORMAT);
	/* Duplicate field inside the body: nonce twice (1a 04 08 01 08 02). */
	{
		static const uint8_t dup[] = {0x0a, 0x04, 0x08, 0x01, 0x08, 0x02};
		static const uint8_t ok[] = {0x0a, 0x02, 0x08, 0x02};
		assert_decode_fails(dup, sizeof(dup), RUF_E_FORMAT);
		assert_int_equal(ruf_wire_frame_decode(ok, sizeof(ok), &f), 0);
		ruf_wire_frame_clear(&f);
	}
	/* Non-canonical: a default value written out (ping nonce = 0). */
	{
		static const uint8_t zero[] = {0x0a, 0x02, 0x08, 0x00};
		assert_decode_fails(zero, sizeof(zero), RUF_E_FORMAT);
	}

	/* Wrong message id and hash sizes. */
	m.body_case = RUF__WIRE_FRAME__BODY_SUBMIT_OFFER;
	m.submit_offer = &offer;
	offer.total_len = 10;
	offer.hash = (ProtobufCBinaryData){32, hash};
	offer.message_id = (ProtobufCBinaryData){15, id15};
	n = raw_frame(&m, fbuf);
	assert_decode_fails(fbuf, n, RUF_E_FORMAT);
	offer.message_id = (ProtobufCBinaryData){17, id17};
	n = raw_frame(&m, fbuf);
	assert_decode_fails(fbuf, n, RUF_E_FORMAT);
	offer.message_id = (ProtobufCBinaryData){16, id17};
	offer.hash = (ProtobufCBinaryData){31, hash};
	n = raw_frame(&m, fbuf);
	assert_decode_fails(fbuf, n, RUF_E_FORMAT);
	offer.hash = (ProtobufCBinaryData){32, hash};
	n = raw_frame(&m, fbuf);
	assert_int_equal(ruf_wire_frame_decode(fbuf, n, &f), 0);
	ruf_wire_frame_clear(&f);

	/* Bad queue names, and too many queues. */
	m.body_case = RUF__WIRE_FRAME__BODY_DELIVER_ACK;
	m.deliver_ack = &dack;
	dack.seq = 1;
	dack.queue = "itf..darfur";
	n = raw_frame(&m, fbuf);
	assert_decode_fails(fbuf, n, RUF_E_FORMAT);
	dack.queue = "";
	n = raw_frame(&m, fbuf);
	assert_decode_fails(fbuf, n, RUF_E_FORMAT);
	dack.queue = "a.b.c";
	n = raw_frame(&m, fbuf);
	assert_decode_fails(fbuf, n, RUF_E_FORMAT);

	m.body_case = RUF__WIRE_FRAME__BODY_SUBSCRIBE;
	m.subscribe = &sub;
	for (int i = 0; i < 17; i++) {
		snprintf(qbuf[i], sizeof(qbuf[i]), "q%d", i);
		qs[i] = qbuf[i];
	}
	sub.queues = qs;
	sub.n_queues = 17;
	sub.window = 1;
	n = raw_frame(&m, fbuf);
	assert_decode_fails(fbuf, n, RUF_E_FORMAT);
	sub.n_queues = 16;
	n = raw_frame(&m, fbuf);
	assert_int_equal(ruf_wire_frame_decode(fbuf, n, &f), 0);
	ruf_wire_frame_clear(&f);
	sub.window = 1025;
	n = raw_frame(&m, fbuf);
	assert_decode_fails(fbuf, n, RUF_E_FORMAT);

	/* Oversized chunk data. */
	m.body_case = RUF__WIRE_FRAME__BODY_SUBMIT_CHUNK;
	m.submit_chunk = &chunk;
	chunk.message_id = (ProtobufCBinaryData){16, id17};
	chunk.data = (ProtobufCBinaryData){RUF_WIRE_MAX_DATA + 1, bigdata};
	n = raw_frame(&m, fbuf);
	assert_decode_fails(fbuf, n, RUF_E_FORMAT);
}

/* --- Handshake payloads ---------------------------------------------------- */

static void
test_hello_and_welcome_reject_missing_certificates(void **state)
{
	struct ruf_wire_hello h = {.certificate = device_raw,
	                           .certificate_len = device_len,
	                           .timestamp = NOW,
	                           .directory_version = 7},
	                      h2;
	struct ruf_wire_welcome w = {.server_time = NOW, .directory_version = 8}, w2;
	size_t n;

	(void)state;
	assert_int_equal(ruf_wire_hello_encode(&h, fbuf, sizeof(fbuf), &n), 0);
	assert_int_equal(ruf_wire_hello_decode(fbuf, n, &h2), 0);
	assert_int_equal(h2.certificate_len, device_len);
	assert_memory_equal(h2.certificate, device_raw, device_len);
	assert_true(h2.timestamp == NOW);
	assert_true(h2.directory_version == 7);
	ruf_wire_hello_clear(&h2);
	/* Trailing byte. */
	fbuf[n] = 0;
	assert_int_equal(ruf_wire_hello_decode(fbuf, n + 1, &h2), RUF_E_FORMAT);
	assert_null(h2._pb);

	h.certificate_len = 0;
	assert_int_equal(ruf_wire_hello_encode(&h, fbuf, sizeof(fbuf), &n), RUF_E_FORMAT);
	/* An empty WireHello decodes as protobuf but lacks the certificate. */
	assert_int_equal(ruf_wire_hello_decode(fbuf, 0, &h2), RUF_E_FORMAT);
	assert_int_equal(ruf_wire_hello_decode(fbuf, RUF_WIRE_MAX_HELLO + 1, &h2), RUF_E_TOO_LARGE);

	assert_int_equal(ruf_wire_welcome_encode(&w, fbuf, sizeof(fbuf), &n), RUF_E_FORMAT);
	w.server_certificate = server_raw;
	w.server_certificate_len = server_len;
	assert_int_equal(ruf_wire_welcome_encode(&w, fbuf, sizeof(fbuf), &n), 0);
	assert_int_equal(ruf_wire_welcome_decode(fbuf, n, &w2), 0);
	assert_null(w2.directory);
	assert_int_equal(w2.directory_len, 0);
	assert_true(w2.directory_version == 8);
	assert_memory_equal(w2.server_certificate, server_raw, server_len);
	ruf_wire_welcome_clear(&w2);
	assert_int_equal(ruf_wire_welcome_decode(fbuf, 0, &w2), RUF_E_FORMAT);
}

/* --- Session over a socketpair ------------------------------------------- */

static void
send_msg(int fd, const uint8_t *m, size_t n)
{
	uint8_t hdr[2];

	assert_int_equal(ruf_wire_put_len(hdr, n), 0);
	assert_int_equal(ruf_write_all(fd, hdr, 2), 0);
	assert_int_equal(ruf_write_all(fd, m, n), 0);
}

/* Reads one length-prefixed message from fd, one byte per read(). */
static size_t
recv_msg(int fd, ruf_wire_reader *r, uint8_t *out)
{
	for (;;) {
		const uint8_t *msg;
		size_t mlen, used;
		uint8_t b;
		int rc = ruf_wire_reader_next(r, &msg, &mlen);

		assert_true(rc >= 0);
		if (rc == 1) {
			memcpy(out, msg, mlen);
			return mlen;
		}
		assert_int_equal(read(fd, &b, 1), 1);
		assert_int_equal(ruf_wire_reader_feed(r, &b, 1, &used), 0);
		assert_int_equal(used, 1);
	}
}

struct pair {
	int fd[2];
	ruf_wire_session *c, *s;
	ruf_wire_reader rc, rs;
};

static uint8_t mbuf[RUF_WIRE_MAX_MSG], mbuf2[RUF_WIRE_MAX_MSG];

/* Client = device, server = the responder driven by the codec as rufd will. */
static void
handshake(struct pair *p)
{
	struct ruf_wire_hello h = {.certificate = device_raw,
	                           .certificate_len = device_len,
	                           .timestamp = NOW,
	                           .directory_version = 3},
	                      got_h;
	struct ruf_wire_welcome w = {.server_time = NOW + 1,
	                             .directory_version = 4,
	                             .directory = dirbytes,
	                             .directory_len = sizeof(dirbytes),
	                             .server_certificate = server_raw,
	                             .server_certificate_len = server_len},
	                        got_w;
	ruf_cert *peer;
	size_t n;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, p->fd), 0);
	assert_int_equal(
	    ruf_wire_session_new(&p->c, true, device_id.kx_sk, device_id.kx_pk, server_id.kx_pk),
	    0);
	assert_int_equal(ruf_wire_session_new(&p->s, false, server_id.kx_sk, server_id.kx_pk, NULL),
	                 0);
	ruf_wire_reader_init(&p->rc, RUF_WIRE_MAX_MSG);
	ruf_wire_reader_init(&p->rs, RUF_WIRE_MAX_MSG1);

	assert_int_equal(ruf_wire_session_write_hello(p->c, &h, mbuf, sizeof(mbuf), &n), 0);
	assert_true(n <= RUF_WIRE_MAX_MSG1);
	send_msg(p->fd[0], mbuf, n);
	n = recv_msg(p->fd[1], &p->rs, mbuf2);
	assert_null(ruf_wire_session_remote_static(p->s));
	assert_int_equal(ruf_wire_session_read_hello(p->s, mbuf2, n, &got_h), 0);
	/* What rufd does: the certificate's X25519 key is the Noise static key. */
	assert_int_equal(ruf_cert_parse(got_h.certificate, got_h.certificate_len, &peer), 0);
	assert_memory_equal(peer->kx_pk, ruf_wire_session_remote_static(p->s), 32);
	assert_true(got_h.timestamp == NOW);
	assert_true(got_h.directory_version == 3);
	ruf_cert_free(peer);
	ruf_wire_hello_clear(&got_h);
	assert_false(ruf_wire_session_ready(p->s));
	ruf_wire_reader_set_max(&p->rs, RUF_WIRE_MAX_MSG);

	assert_int_equal(ruf_wire_session_write_welcome(p->s, &w, mbuf, sizeof(mbuf), &n), 0);
	send_msg(p->fd[1], mbuf, n);
	n = recv_msg(p->fd[0], &p->rc, mbuf2);
	assert_int_equal(ruf_wire_session_read_welcome(p->c, mbuf2, n, &got_w), 0);
	assert_true(got_w.server_time == NOW + 1);
	assert_true(got_w.directory_version == 4);
	assert_int_equal(got_w.directory_len, sizeof(dirbytes));
	assert_memory_equal(got_w.directory, dirbytes, sizeof(dirbytes));
	assert_memory_equal(got_w.server_certificate, server_raw, server_len);
	ruf_wire_welcome_clear(&got_w);
	assert_true(ruf_wire_session_ready(p->c));
	assert_true(ruf_wire_session_ready(p->s));
}

static void
pair_close(struct pair *p)
{
	ruf_wire_session_free(p->c);
	ruf_wire_session_free(p->s);
	ruf_wire_reader_free(&p->rc);
	ruf_wire_reader_free(&p->rs);
	close(p->fd[0]);
	close(p->fd[1]);
}

static void
test_session_carries_every_frame_both_ways_over_a_socketpair(void **state)
{
	struct pair p;

	(void)state;
	randombytes_buf(bigdata, sizeof(bigdata));
	handshake(&p);
	for (int t = RUF_WIRE_PING; t <= RUF_WIRE_DIRECTORY_UPDATE; t++) {
		struct ruf_wire_frame f = sample(t), g;
		size_t n;

		/* client -> server */
		assert_int_equal(ruf_wire_session_seal(p.c, &f, mbuf, sizeof(mbuf), &n), 0);
		send_msg(p.fd[0], mbuf, n);
		n = recv_msg(p.fd[1], &p.rs, mbuf2);
		assert_int_equal(ruf_wire_session_open(p.s, mbuf2, n, &g), 0);
		assert_frame_equal(&f, &g);
		ruf_wire_frame_clear(&g);
		/* server -> client */
		assert_int_equal(ruf_wire_session_seal(p.s, &f, mbuf, sizeof(mbuf), &n), 0);
		send_msg(p.fd[1], mbuf, n);
		n = recv_msg(p.fd[0], &p.rc, mbuf2);
		assert_int_equal(ruf_wire_session_open(p.c, mbuf2, n, &g), 0);
		assert_frame_equal(&f, &g);
		ruf_wire_frame_clear(&g);
	}
	pair_close(&p);
}

static void
test_session_rejects_tampered_and_replayed_transport_messages(void **state)
{
	struct pair p;
	struct ruf_wire_frame f = sample(RUF_WIRE_PING), g;
	size_t n;

	(void)state;
	handshake(&p);
	assert_int_equal(ruf_wire_session_seal(p.c, &f, mbuf, sizeof(mbuf), &n), 0);
	memcpy(mbuf2, mbuf, n);
	mbuf2[n / 2] ^= 1;
	assert_int_equal(ruf_wire_session_open(p.s, mbuf2, n, &g), RUF_E_AUTH);
	assert_null(g._pb);
	assert_int_equal(ruf_wire_session_open(p.s, mbuf, n, &g), 0);
	ruf_wire_frame_clear(&g);
	/* The same message again: its nonce has passed. */
	assert_int_equal(ruf_wire_session_open(p.s, mbuf, n, &g), RUF_E_AUTH);
	assert_int_equal(ruf_wire_session_open(p.s, mbuf, 15, &g), RUF_E_TRUNCATED);
	/* A frame that decrypts but does not decode. */
	{
		struct ruf_wire_frame bad = sample(RUF_WIRE_PING);
		bad.type = 99;
		assert_int_equal(ruf_wire_session_seal(p.c, &bad, mbuf, sizeof(mbuf), &n),
		                 RUF_E_FORMAT);
	}
	/* The client's own direction is separate: it cannot open what it sealed. */
	assert_int_equal(ruf_wire_session_seal(p.c, &f, mbuf, sizeof(mbuf), &n), 0);
	assert_int_equal(ruf_wire_session_open(p.c, mbuf, n, &g), RUF_E_AUTH);
	pair_close(&p);
}

static void
test_session_fails_when_client_has_the_wrong_server_key(void **state)
{
	ruf_wire_session *c, *s;
	struct ruf_wire_hello h = {.certificate = device_raw, .certificate_len = device_len}, got;
	size_t n;

	(void)state;
	/* The client pins other_root's kx key as if it were the server's. */
	assert_int_equal(
	    ruf_wire_session_new(&c, true, device_id.kx_sk, device_id.kx_pk, other_root_id.kx_pk),
	    0);
	assert_int_equal(ruf_wire_session_new(&s, false, server_id.kx_sk, server_id.kx_pk, NULL),
	                 0);
	assert_int_equal(ruf_wire_session_write_hello(c, &h, mbuf, sizeof(mbuf), &n), 0);
	assert_int_equal(ruf_wire_session_read_hello(s, mbuf, n, &got), RUF_E_AUTH);
	assert_null(got._pb);
	assert_null(ruf_wire_session_remote_static(s));
	/* A failed session refuses everything after. */
	assert_int_equal(ruf_wire_session_read_hello(s, mbuf, n, &got), RUF_E_INVAL);
	ruf_wire_session_free(c);
	ruf_wire_session_free(s);
}

static void
test_session_refuses_out_of_order_calls_and_oversized_hello(void **state)
{
	ruf_wire_session *c, *s;
	struct ruf_wire_hello h = {.certificate = device_raw, .certificate_len = device_len}, got;
	struct ruf_wire_welcome w;
	struct ruf_wire_frame f = sample(RUF_WIRE_PING);
	size_t n;

	(void)state;
	assert_int_equal(ruf_wire_session_new(&c, true, device_id.kx_sk, device_id.kx_pk, NULL),
	                 RUF_E_INVAL);
	assert_int_equal(
	    ruf_wire_session_new(&c, true, device_id.kx_sk, device_id.kx_pk, server_id.kx_pk), 0);
	assert_int_equal(ruf_wire_session_new(&s, false, server_id.kx_sk, server_id.kx_pk, NULL),
	                 0);
	assert_int_equal(ruf_wire_session_seal(c, &f, mbuf, sizeof(mbuf), &n), RUF_E_INVAL);
	assert_int_equal(ruf_wire_session_read_welcome(c, mbuf, 100, &w), RUF_E_INVAL);
	assert_int_equal(ruf_wire_session_write_welcome(s, &w, mbuf, sizeof(mbuf), &n),
	                 RUF_E_INVAL);
	assert_int_equal(ruf_wire_session_write_hello(s, &h, mbuf, sizeof(mbuf), &n), RUF_E_INVAL);
	assert_int_equal(ruf_wire_session_read_hello(s, mbuf, RUF_WIRE_MAX_MSG1 + 1, &got),
	                 RUF_E_TOO_LARGE);
	ruf_wire_session_free(s);
	ruf_wire_session_free(c);
}

/* --- Receipts -------------------------------------------------------------- */

static const uint8_t rid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static uint8_t rhash[32];

static void
receipt_make(uint8_t **out, size_t *len, const uint8_t *sk, uint64_t server_serial)
{
	static const char *const q[] = {"sag", "itf.darfur", "hrt"};
	struct ruf_wire_receipt_body b = {
	    .queues = q,
	    .n_queues = 3,
	    .store_seq = 77,
	    .time = NOW,
	    .device_serial = 3,
	    .server_serial = server_serial,
	};

	memcpy(b.message_id, rid, 16);
	memset(rhash, 0xab, sizeof(rhash));
	memcpy(b.envelope_hash, rhash, 32);
	assert_int_equal(ruf_wire_receipt_sign(&b, sk, out, len), 0);
}

static void
test_receipt_verifies_and_returns_sorted_queues(void **state)
{
	struct ruf_wire_receipt_info info;
	uint8_t *r;
	size_t len;

	(void)state;
	receipt_make(&r, &len, server_id.sign_sk, 2);
	assert_int_equal(ruf_wire_receipt_verify(r, len, server, root, NOW, rid, rhash, &info), 0);
	assert_memory_equal(info.body.message_id, rid, 16);
	assert_memory_equal(info.body.envelope_hash, rhash, 32);
	assert_int_equal(info.body.n_queues, 3);
	assert_string_equal(info.body.queues[0], "hrt");
	assert_string_equal(info.body.queues[1], "itf.darfur");
	assert_string_equal(info.body.queues[2], "sag");
	assert_true(info.body.store_seq == 77);
	assert_true(info.body.time == NOW);
	assert_true(info.body.device_serial == 3);
	assert_true(info.body.server_serial == 2);
	/* Expectations may be skipped. */
	assert_int_equal(ruf_wire_receipt_verify(r, len, server, root, NOW, NULL, NULL, NULL), 0);

	/* Carried in a Receipt frame, raw gives back exactly the receipt bytes. */
	{
		struct ruf_wire_frame f, g;
		Ruf__WireReceipt *rm;
		size_t n;

		assert_int_equal(ruf_pb_decode(&ruf__wire_receipt__descriptor, r, len, len,
		                               (ProtobufCMessage **)&rm),
		                 0);
		memset(&f, 0, sizeof(f));
		f.type = RUF_WIRE_RECEIPT;
		f.u.receipt.body = rm->body.data;
		f.u.receipt.body_len = rm->body.len;
		memcpy(f.u.receipt.signature, rm->signature.data, 64);
		assert_int_equal(ruf_wire_frame_encode(&f, fbuf, sizeof(fbuf), &n), 0);
		assert_int_equal(ruf_wire_frame_decode(fbuf, n, &g), 0);
		assert_int_equal(g.u.receipt.raw_len, len);
		assert_memory_equal(g.u.receipt.raw, r, len);
		ruf_wire_frame_clear(&g);
		protobuf_c_message_free_unpacked(&rm->base, NULL);
	}
	free(r);
}

static void
test_receipt_rejects_each_failure_distinctly(void **state)
{
	uint8_t *r, *r2, other_id[16], other_hash[32];
	size_t len, len2;

	(void)state;
	receipt_make(&r, &len, server_id.sign_sk, 2);
	memcpy(other_id, rid, 16);
	other_id[15] ^= 1;
	memset(other_hash, 0xab, 32);
	other_hash[0] ^= 1;

	/* Wrong role: the device's certificate is valid but not a server's. */
	assert_int_equal(ruf_wire_receipt_verify(r, len, device, root, NOW, rid, rhash, NULL),
	                 RUF_E_CERT_ROLE);
	/* Server certificate from another root. */
	assert_int_equal(ruf_wire_receipt_verify(r, len, foreign, root, NOW, rid, rhash, NULL),
	                 RUF_E_CERT_ISSUER);
	/* Expired server certificate. */
	assert_int_equal(ruf_wire_receipt_verify(r, len, expired, root, NOW, rid, rhash, NULL),
	                 RUF_E_CERT_EXPIRED);
	/* Same keys, another serial than the body names. */
	assert_int_equal(ruf_wire_receipt_verify(r, len, server2, root, NOW, rid, rhash, NULL),
	                 RUF_E_WIRE_RECEIPT);
	/* Wrong message id, wrong hash. */
	assert_int_equal(ruf_wire_receipt_verify(r, len, server, root, NOW, other_id, rhash, NULL),
	                 RUF_E_WIRE_RECEIPT);
	assert_int_equal(ruf_wire_receipt_verify(r, len, server, root, NOW, rid, other_hash, NULL),
	                 RUF_E_WIRE_RECEIPT);
	/* Signed by someone else. */
	receipt_make(&r2, &len2, device_id.sign_sk, 2);
	assert_int_equal(ruf_wire_receipt_verify(r2, len2, server, root, NOW, rid, rhash, NULL),
	                 RUF_E_AUTH);
	free(r2);
	/* Tampered body: every byte of the body in turn (past the 2-byte head). */
	r2 = malloc(len);
	assert_non_null(r2);
	for (size_t i = 3; i < len - 66; i++) {
		int rc;
		memcpy(r2, r, len);
		r2[i] ^= 0x01;
		rc = ruf_wire_receipt_verify(r2, len, server, root, NOW, rid, rhash, NULL);
		assert_true(rc == RUF_E_AUTH || rc == RUF_E_FORMAT);
	}
	/* Tampered signature. */
	memcpy(r2, r, len);
	r2[len - 1] ^= 0x80;
	assert_int_equal(ruf_wire_receipt_verify(r2, len, server, root, NOW, rid, rhash, NULL),
	                 RUF_E_AUTH);
	/* Truncated, trailing. */
	assert_int_equal(ruf_wire_receipt_verify(r, len - 1, server, root, NOW, rid, rhash, NULL),
	                 RUF_E_FORMAT);
	free(r2);
	r2 = malloc(len + 1);
	assert_non_null(r2);
	memcpy(r2, r, len);
	r2[len] = 0;
	assert_int_equal(ruf_wire_receipt_verify(r2, len + 1, server, root, NOW, rid, rhash, NULL),
	                 RUF_E_FORMAT);
	free(r2);
	free(r);
}

static void
test_receipt_sign_refuses_bad_bodies(void **state)
{
	static const char *const dup[] = {"sag", "sag"};
	static const char *const bad[] = {"Sag"};
	struct ruf_wire_receipt_body b = {
	    .queues = dup, .n_queues = 2, .store_seq = 1, .device_serial = 3, .server_serial = 2};
	uint8_t *r;
	size_t len;

	(void)state;
	assert_int_equal(ruf_wire_receipt_sign(&b, server_id.sign_sk, &r, &len), RUF_E_FORMAT);
	b.queues = bad;
	b.n_queues = 1;
	assert_int_equal(ruf_wire_receipt_sign(&b, server_id.sign_sk, &r, &len), RUF_E_FORMAT);
	b.queues = dup;
	b.n_queues = 0;
	assert_int_equal(ruf_wire_receipt_sign(&b, server_id.sign_sk, &r, &len), RUF_E_FORMAT);
	b.n_queues = 1;
	b.store_seq = 0;
	assert_int_equal(ruf_wire_receipt_sign(&b, server_id.sign_sk, &r, &len), RUF_E_FORMAT);
	b.store_seq = 1;
	assert_int_equal(ruf_wire_receipt_sign(&b, server_id.sign_sk, &r, &len), 0);
	free(r);
}

/* --- Known answers and fuzzing seeds ---------------------------------------- */

/* sample(t) with its data fields shrunk to 8 bytes and fixed contents. */
static struct ruf_wire_frame
small_frame(int t)
{
	struct ruf_wire_frame f;

	memset(bigdata, 0x5a, sizeof(bigdata));
	memset(dirbytes, 0xd1, sizeof(dirbytes));
	f = sample(t);
	if (t == RUF_WIRE_SUBMIT_CHUNK)
		f.u.chunk.len = 8;
	if (t == RUF_WIRE_DELIVER) {
		f.u.deliver.len = 8;
		f.u.deliver.total_len = f.u.deliver.offset + 8;
	}
	if (t == RUF_WIRE_NACK)
		f.u.nack.directory_len = 8;
	if (t == RUF_WIRE_DIRECTORY_UPDATE)
		f.u.directory_update.len = 8;
	if (t == RUF_WIRE_RECEIPT)
		f.u.receipt.body_len = 8;
	return f;
}

/* Appends "name hex\n" to the text at *txt (grown with realloc). */
static void
kat_line(char **txt, size_t *len, const char *name, const uint8_t *b, size_t n)
{
	size_t add = strlen(name) + 1 + 2 * n + 1;
	char *t = realloc(*txt, *len + add + 1);

	assert_non_null(t);
	memcpy(t + *len, name, strlen(name));
	t[*len + strlen(name)] = ' ';
	ruf_hex(b, n, t + *len + strlen(name) + 1);
	t[*len + add - 1] = '\n';
	t[*len + add] = '\0';
	*txt = t;
	*len += add;
}

/*
 * tests/vectors/wire/frames.txt pins the encoding of every frame, a signed
 * receipt and a hello payload (fixed keys, so Ed25519 is deterministic).
 * RUF_WRITE_VECTORS=1 rewrites it (only when the format changes on purpose).
 */
static void
test_frames_match_known_answer_vectors(void **state)
{
	char *txt = NULL, path[512];
	size_t len = 0, n, flen;
	uint8_t *file, *r;

	(void)state;
	for (int t = RUF_WIRE_PING; t <= RUF_WIRE_DIRECTORY_UPDATE; t++) {
		struct ruf_wire_frame f = small_frame(t);
		assert_int_equal(ruf_wire_frame_encode(&f, fbuf, sizeof(fbuf), &n), 0);
		kat_line(&txt, &len, ruf_wire_type_name(t), fbuf, n);
	}
	receipt_make(&r, &n, server_id.sign_sk, 2);
	kat_line(&txt, &len, "signed-receipt", r, n);
	free(r);
	{
		struct ruf_wire_hello h = {.certificate = (const uint8_t *)"cert",
		                           .certificate_len = 4,
		                           .timestamp = NOW,
		                           .directory_version = 3};
		assert_int_equal(ruf_wire_hello_encode(&h, fbuf, sizeof(fbuf), &n), 0);
		kat_line(&txt, &len, "hello", fbuf, n);
	}
	snprintf(path, sizeof(path), "%s/tests/vectors/wire/frames.txt", RUF_SOURCE_DIR);
	if (getenv("RUF_WRITE_VECTORS") != NULL) {
		snprintf(path, sizeof(path), "%s/tests/vectors/wire", RUF_SOURCE_DIR);
		assert_int_equal(ruf_mkdirs(path, 0755), 0);
		snprintf(path, sizeof(path), "%s/tests/vectors/wire/frames.txt", RUF_SOURCE_DIR);
		assert_int_equal(ruf_file_write_atomic(path, txt, len, 0644, false), 0);
	}
	assert_int_equal(ruf_file_read(path, 1 << 20, &file, &flen), 0);
	assert_int_equal(flen, len);
	assert_memory_equal(file, txt, len);
	free(file);
	free(txt);
}

static void
write_seed(const char *dir, const char *sub, const char *name, const uint8_t *b, size_t n)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	assert_int_equal(ruf_mkdirs(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
	assert_int_equal(ruf_file_write_atomic(path, b, n, 0644, false), 0);
}

static void
test_write_corpus_when_asked(void **state)
{
	const char *dir = getenv("RUF_WRITE_CORPUS");
	uint8_t *stream;
	size_t n;

	(void)state;
	if (dir == NULL) {
		skip();
		return;
	}
	for (int t = RUF_WIRE_PING; t <= RUF_WIRE_DIRECTORY_UPDATE; t++) {
		struct ruf_wire_frame f = small_frame(t);
		char name[64];

		assert_int_equal(ruf_wire_frame_encode(&f, fbuf, sizeof(fbuf), &n), 0);
		snprintf(name, sizeof(name), "%s", ruf_wire_type_name(t));
		write_seed(dir, "wire_frame", name, fbuf, n);
	}
	{
		static const size_t lens[] = {1, 5, 300, 2};
		stream = make_stream(lens, 4, &n);
		/*
		 * fuzz_wire_stream: byte 0 seeds the piece sizes, byte 1 picks
		 * the length limit (4: 65535), the rest is the stream.
		 */
		memcpy(fbuf + 2, stream, n);
		fbuf[0] = 0x37;
		fbuf[1] = 4;
		write_seed(dir, "wire_stream", "four", fbuf, n + 2);
		fbuf[1] = 2; /* limit 300: the 300-byte message passes, exactly */
		write_seed(dir, "wire_stream", "four-limit", fbuf, n + 2);
		free(stream);
	}
	{
		/* fuzz_wire_frame signs inputs that start with 0xff itself. */
		Ruf__WireReceipt *rm;
		uint8_t *r;
		size_t len;

		receipt_make(&r, &len, server_id.sign_sk, 2);
		assert_int_equal(ruf_pb_decode(&ruf__wire_receipt__descriptor, r, len, len,
		                               (ProtobufCMessage **)&rm),
		                 0);
		fbuf[0] = 0xff;
		memcpy(fbuf + 1, rm->body.data, rm->body.len);
		write_seed(dir, "wire_frame", "receipt-body", fbuf, rm->body.len + 1);
		protobuf_c_message_free_unpacked(&rm->base, NULL);
		free(r);
	}
	{
		struct ruf_wire_hello h = {.certificate = device_raw,
		                           .certificate_len = device_len,
		                           .timestamp = NOW,
		                           .directory_version = 3};
		struct ruf_wire_welcome w = {.server_time = NOW,
		                             .directory_version = 4,
		                             .directory = dirbytes,
		                             .directory_len = 16,
		                             .server_certificate = server_raw,
		                             .server_certificate_len = server_len};
		/* fuzz_wire_hello: first byte even = hello, odd = welcome. */
		fbuf[0] = 0;
		assert_int_equal(ruf_wire_hello_encode(&h, fbuf + 1, sizeof(fbuf) - 1, &n), 0);
		write_seed(dir, "wire_hello", "hello", fbuf, n + 1);
		fbuf[0] = 1;
		assert_int_equal(ruf_wire_welcome_encode(&w, fbuf + 1, sizeof(fbuf) - 1, &n), 0);
		write_seed(dir, "wire_hello", "welcome", fbuf, n + 1);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reader_reassembles_messages_split_into_single_bytes),
	    cmocka_unit_test(test_reader_rejects_zero_length),
	    cmocka_unit_test(test_reader_rejects_length_over_limit_before_buffering),
	    cmocka_unit_test(test_put_len_refuses_zero_and_oversized),
	    cmocka_unit_test(test_every_frame_type_survives_a_round_trip),
	    cmocka_unit_test(test_empty_ping_is_still_a_body),
	    cmocka_unit_test(test_receipt_frame_from_raw_bytes_must_be_a_receipt),
	    cmocka_unit_test(test_deliver_carries_receipt_on_first_piece),
	    cmocka_unit_test(test_frame_encode_refuses_rule_violations),
	    cmocka_unit_test(test_frame_decode_rejects_malformed_frames),
	    cmocka_unit_test(test_hello_and_welcome_reject_missing_certificates),
	    cmocka_unit_test(test_session_carries_every_frame_both_ways_over_a_socketpair),
	    cmocka_unit_test(test_session_rejects_tampered_and_replayed_transport_messages),
	    cmocka_unit_test(test_session_fails_when_client_has_the_wrong_server_key),
	    cmocka_unit_test(test_session_refuses_out_of_order_calls_and_oversized_hello),
	    cmocka_unit_test(test_receipt_verifies_and_returns_sorted_queues),
	    cmocka_unit_test(test_receipt_rejects_each_failure_distinctly),
	    cmocka_unit_test(test_receipt_sign_refuses_bad_bodies),
	    cmocka_unit_test(test_frames_match_known_answer_vectors),
	    cmocka_unit_test(test_write_corpus_when_asked),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
