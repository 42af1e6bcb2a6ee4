/*
 * wire.h - the protocol between clients (ruf, desks) and rufd: stream
 * framing, the Noise session with its handshake payloads, frame codec, and
 * signed receipts. Specified in docs/PROTOCOL.md; schemas in
 * proto/wire.proto.
 *
 * Layers, bottom up:
 *   TCP bytes   every Noise message is preceded by a u16 big-endian length
 *               1..65535 (ruf_wire_reader splits a stream fed in pieces);
 *   Noise       Noise_IK_25519_ChaChaPoly_BLAKE2b, prologue "ruf/1"; the
 *               client is the initiator, rufd the responder. Message 1
 *               carries a WireHello, message 2 a WireWelcome
 *               (ruf_wire_session);
 *   frames      each transport message carries exactly one WireFrame
 *               (struct ruf_wire_frame, ruf_wire_frame_encode/decode).
 *
 * Decoders are strict: ruf_pb_decode() canonical form plus per-type rules
 * (sizes of ids and hashes, queue names, offsets, windows). Any violation is
 * RUF_E_FORMAT; a peer that sends one gets an Error frame (code protocol)
 * and is closed.
 */
#ifndef RUF_WIRE_H
#define RUF_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cert.h"
#include "err.h"
#include "noise.h"
#include "util.h"

#define RUF_WIRE_PROLOGUE "ruf/1"
#define RUF_WIRE_PROLOGUE_LEN 5
/* A Noise message on the wire: 1..65535 bytes after its u16be length. */
#define RUF_WIRE_MAX_MSG RUF_NOISE_MAX_MSG
#define RUF_WIRE_LEN_BYTES 2
/* Largest encoded WireFrame: a transport message minus the AEAD tag. */
#define RUF_WIRE_MAX_FRAME RUF_NOISE_MAX_PAYLOAD
/* Message 1 before authentication (rufd refuses longer ones unread). */
#define RUF_WIRE_MAX_MSG1 16384
#define RUF_WIRE_MAX_HELLO (RUF_WIRE_MAX_MSG1 - RUF_NOISE_MSG1_OVERHEAD)
/* Largest WireWelcome (message 2 payload). */
#define RUF_WIRE_MAX_WELCOME (RUF_NOISE_MAX_MSG - RUF_NOISE_MSG2_OVERHEAD)
/* SubmitChunk and Deliver data. */
#define RUF_WIRE_MAX_DATA 60000
#define RUF_WIRE_DEFAULT_CHUNK 32768
#define RUF_WIRE_MSGID_BYTES 16
#define RUF_WIRE_HASH_BYTES 32
#define RUF_WIRE_SIG_BYTES 64
/* An envelope's total_len: 1..2^40 (rufd applies its own, smaller limit). */
#define RUF_WIRE_MAX_ENVELOPE (UINT64_C(1) << 40)
#define RUF_WIRE_MAX_WINDOW 1024
#define RUF_WIRE_MAX_SUBSCRIBE 16
#define RUF_WIRE_MAX_RECEIPT_QUEUES 16 /* RUF_ROUTE_MAX_QUEUES */
#define RUF_WIRE_MAX_ERROR_TEXT 256
#define RUF_WIRE_MAX_RECEIPT 4096                /* a stored receipt carried by a Deliver */
#define RUF_WIRE_RECEIPT_DOMAIN "ruf-receipt-v1" /* signed with its NUL */

/* Error frame codes. */
enum ruf_wire_error_code {
	RUF_WIRE_ERR_PROTOCOL = 1,
	RUF_WIRE_ERR_NOT_PERMITTED = 2,
	RUF_WIRE_ERR_TOO_LARGE = 3,
	RUF_WIRE_ERR_RATE_LIMITED = 4,
	RUF_WIRE_ERR_SHUTTING_DOWN = 5,
	RUF_WIRE_ERR_INTERNAL = 6,
};

/* Nack reasons. */
enum ruf_wire_nack_reason {
	RUF_WIRE_NACK_RETRY_LATER = 1,
	RUF_WIRE_NACK_STALE_DIRECTORY = 2,
	RUF_WIRE_NACK_REJECTED = 3,
	RUF_WIRE_NACK_TOO_LARGE = 4,
};

/* --- Stream framing ------------------------------------------------------ */

/*
 * Incremental reader of u16be-length-prefixed messages from a byte stream
 * that arrives in pieces of any size (a libuv read callback). It holds at
 * most one message: the 2-byte length, then a heap buffer of exactly that
 * many bytes (reused, grown up to max). Use:
 *
 *     while (len > 0) {
 *             if ((rc = ruf_wire_reader_feed(r, p, len, &used)) < 0)
 *                     fail;
 *             p += used, len -= used;
 *             while ((rc = ruf_wire_reader_next(r, &msg, &mlen)) == 1)
 *                     handle(msg, mlen);      // msg valid until the next feed
 *             if (rc < 0)
 *                     fail;
 *     }
 *
 * feed stops consuming at the end of a complete message, so the caller
 * always drains with next before feeding more.
 */
typedef struct ruf_wire_reader {
	uint8_t hdr[RUF_WIRE_LEN_BYTES];
	size_t hdr_have; /* 0..2 bytes of the length read */
	size_t want;     /* length of the current message, once hdr_have == 2 */
	size_t have;     /* bytes of it in buf */
	uint8_t *buf;    /* malloc'ed, cap bytes */
	size_t cap;
	size_t max; /* largest accepted message */
	int err;    /* sticky: once failed, every call fails */
} ruf_wire_reader;

/* Starts a reader accepting messages of 1..max bytes (max <= 65535). */
void ruf_wire_reader_init(ruf_wire_reader *r, size_t max);
/*
 * Changes the limit (rufd raises it from RUF_WIRE_MAX_MSG1 once the
 * handshake is done). A message already being read keeps its checked length.
 */
void ruf_wire_reader_set_max(ruf_wire_reader *r, size_t max);
/*
 * Consumes bytes of buf into the current message: *used gets how many.
 * Returns 0, or RUF_E_FORMAT (a zero length), RUF_E_TOO_LARGE (a length over
 * max), RUF_E_NOMEM; errors are sticky. Consumes nothing while a complete
 * message waits for ruf_wire_reader_next().
 */
int ruf_wire_reader_feed(ruf_wire_reader *r, const uint8_t *buf, size_t len, size_t *used)
    __attribute__((warn_unused_result));
/*
 * 1 and the complete message in *msg, *len (owned by r, valid until the next
 * feed or free), 0 if more bytes are needed, or the sticky error.
 */
int ruf_wire_reader_next(ruf_wire_reader *r, const uint8_t **msg, size_t *len);
/* Bytes buffered for the current message (length bytes included). */
size_t ruf_wire_reader_pending(const ruf_wire_reader *r);
/* Frees the buffer (wiped) and resets. Accepts NULL. */
void ruf_wire_reader_free(ruf_wire_reader *r);

/* Writes len's u16be prefix into out; RUF_E_INVAL unless 1 <= len <= 65535. */
int ruf_wire_put_len(uint8_t out[RUF_WIRE_LEN_BYTES], size_t len);

/* --- Frames -------------------------------------------------------------- */

enum ruf_wire_type {
	RUF_WIRE_PING = 1,
	RUF_WIRE_PONG = 2,
	RUF_WIRE_ERROR = 3,
	RUF_WIRE_SUBMIT_OFFER = 4,
	RUF_WIRE_SUBMIT_STATUS = 5,
	RUF_WIRE_SUBMIT_CHUNK = 6,
	RUF_WIRE_RECEIPT = 7,
	RUF_WIRE_NACK = 8,
	RUF_WIRE_SUBSCRIBE = 9,
	RUF_WIRE_DELIVER = 10,
	RUF_WIRE_DELIVER_ACK = 11,
	RUF_WIRE_DIRECTORY_UPDATE = 12,
};

/* "ping", "submit-offer", ...; "unknown" otherwise. For logs. */
const char *ruf_wire_type_name(int type);

/*
 * A frame as C values. Pointer members borrow: when encoding, from the
 * caller; after ruf_wire_frame_decode(), from the decoded message owned by
 * the frame (_pb), released by ruf_wire_frame_clear(). Strings are
 * NUL-terminated.
 */
struct ruf_wire_frame {
	int type; /* enum ruf_wire_type */
	union {
		struct {
			uint64_t nonce;
		} ping; /* also pong */
		struct {
			uint32_t code;
			const char *text; /* may be NULL or "" */
		} error;
		struct {
			uint8_t message_id[RUF_WIRE_MSGID_BYTES];
			uint64_t total_len;
			uint8_t hash[RUF_WIRE_HASH_BYTES];
		} offer;
		struct {
			uint8_t message_id[RUF_WIRE_MSGID_BYTES];
			uint64_t have;
		} status;
		struct {
			uint8_t message_id[RUF_WIRE_MSGID_BYTES];
			uint64_t offset;
			const uint8_t *data;
			size_t len;
		} chunk;
		struct {
			const uint8_t *body; /* a WireReceiptBody */
			size_t body_len;
			uint8_t signature[RUF_WIRE_SIG_BYTES];
			/*
			 * The exact WireReceipt bytes. Decode sets them (for
			 * storage and ruf_wire_receipt_verify()); for encode,
			 * set raw (e.g. ruf_wire_receipt_sign()'s output or a
			 * stored receipt) instead of body and signature.
			 */
			const uint8_t *raw;
			size_t raw_len;
		} receipt;
		struct {
			uint8_t message_id[RUF_WIRE_MSGID_BYTES];
			uint32_t reason;
			uint32_t retry_after_s;
			const uint8_t *directory;
			size_t directory_len;
		} nack;
		struct {
			const char *queues[RUF_WIRE_MAX_SUBSCRIBE];
			size_t n_queues;
			uint32_t window;
		} subscribe;
		struct {
			const char *queue;
			uint64_t seq;
			uint8_t message_id[RUF_WIRE_MSGID_BYTES];
			uint64_t total_len;
			uint64_t offset;
			const uint8_t *data;
			size_t len;
			bool last;
			const uint8_t *receipt; /* offset 0 only; may be absent */
			size_t receipt_len;     /* 0..RUF_WIRE_MAX_RECEIPT */
		} deliver;
		struct {
			const char *queue;
			uint64_t seq;
		} deliver_ack;
		struct {
			const uint8_t *directory;
			size_t len;
		} directory_update;
	} u;
	void *_pb; /* internal: the decoded message that owns the pointers */
};

/*
 * Checks f against the per-type rules and encodes it as a WireFrame into out
 * (cap bytes; RUF_WIRE_MAX_FRAME always suffices). Returns 0, RUF_E_FORMAT
 * (f breaks a rule: the same ones decode enforces), RUF_E_TOO_LARGE (the
 * encoding exceeds cap or RUF_WIRE_MAX_FRAME) or RUF_E_NOMEM.
 */
int ruf_wire_frame_encode(const struct ruf_wire_frame *f, uint8_t *out, size_t cap, size_t *outlen)
    __attribute__((warn_unused_result));

/*
 * Decodes one WireFrame: canonical protobuf (ruf_pb_decode) with exactly one
 * body, then the per-type rules of docs/PROTOCOL.md. Returns 0 and *f
 * (release with ruf_wire_frame_clear), RUF_E_FORMAT, RUF_E_TOO_LARGE (len
 * over RUF_WIRE_MAX_FRAME) or RUF_E_NOMEM. On error *f is cleared.
 */
int ruf_wire_frame_decode(const uint8_t *buf, size_t len, struct ruf_wire_frame *f)
    __attribute__((warn_unused_result));

/* Releases what decode allocated and zeroes f. Accepts NULL. */
void ruf_wire_frame_clear(struct ruf_wire_frame *f);

/* --- Handshake payloads -------------------------------------------------- */

struct ruf_wire_hello {
	const uint8_t *certificate; /* 1..RUF_CERT_MAX bytes */
	size_t certificate_len;
	uint64_t timestamp;
	uint64_t directory_version;
	void *_pb;
};

struct ruf_wire_welcome {
	uint64_t server_time;
	uint64_t directory_version;
	const uint8_t *directory; /* NULL/0 when the client's is current */
	size_t directory_len;
	const uint8_t *server_certificate; /* 1..RUF_CERT_MAX bytes */
	size_t server_certificate_len;
	void *_pb;
};

/* Encoders into out (cap bytes); RUF_E_FORMAT on a rule broken, RUF_E_TOO_LARGE. */
int ruf_wire_hello_encode(const struct ruf_wire_hello *h, uint8_t *out, size_t cap, size_t *outlen)
    __attribute__((warn_unused_result));
int ruf_wire_welcome_encode(const struct ruf_wire_welcome *w, uint8_t *out, size_t cap,
                            size_t *outlen) __attribute__((warn_unused_result));
/* Strict decoders; release with the _clear functions. RUF_E_FORMAT, RUF_E_TOO_LARGE. */
int ruf_wire_hello_decode(const uint8_t *buf, size_t len, struct ruf_wire_hello *h)
    __attribute__((warn_unused_result));
int ruf_wire_welcome_decode(const uint8_t *buf, size_t len, struct ruf_wire_welcome *w)
    __attribute__((warn_unused_result));
void ruf_wire_hello_clear(struct ruf_wire_hello *h);
void ruf_wire_welcome_clear(struct ruf_wire_welcome *w);

/* --- Noise session --------------------------------------------------------- */

/*
 * One connection's Noise state: the IK handshake with the WireHello and
 * WireWelcome payloads, then the two transport ciphers from Split. Opaque,
 * sodium_malloc'ed (it holds keys). Order of calls:
 *
 *   initiator (client):  new(initiator, s, rs) -> write_hello -> read_welcome
 *   responder (rufd):    new(responder, s, NULL) -> read_hello ->
 *                        (check the cert against remote_static) -> write_welcome
 *   both, then:          seal / open, one WireFrame per transport message.
 *
 * Out-of-order calls are RUF_E_INVAL. A failed handshake call leaves the
 * session failed (every later call RUF_E_INVAL): close the connection.
 *
 * WARNING: message 1 is replayable. rufd must act on nothing the hello
 * says (beyond answering the handshake) before the first transport message
 * from the client has opened.
 */
typedef struct ruf_wire_session ruf_wire_session;

/*
 * s_sk/s_pk: our X25519 static key pair; rs_pk: the responder's static key
 * (initiator only, from the directory's hq.noise_pk; NULL for the responder).
 * Returns 0, RUF_E_NOMEM, or ruf_noise_handshake_init's errors.
 */
int ruf_wire_session_new(ruf_wire_session **out, bool initiator, const uint8_t s_sk[32],
                         const uint8_t s_pk[32], const uint8_t *rs_pk)
    __attribute__((warn_unused_result));
/* Wipes and frees. Accepts NULL. */
void ruf_wire_session_free(ruf_wire_session *s);

/* Initiator: handshake message 1 carrying h into out (RUF_WIRE_MAX_MSG1 bytes suffice). */
int ruf_wire_session_write_hello(ruf_wire_session *s, const struct ruf_wire_hello *h, uint8_t *out,
                                 size_t cap, size_t *outlen) __attribute__((warn_unused_result));
/*
 * Responder: reads message 1 (at most RUF_WIRE_MAX_MSG1 bytes, else
 * RUF_E_TOO_LARGE), decrypts and strictly decodes the hello into *h. Noise
 * failures as ruf_noise_read_message; RUF_E_FORMAT for a bad payload.
 */
int ruf_wire_session_read_hello(ruf_wire_session *s, const uint8_t *msg, size_t len,
                                struct ruf_wire_hello *h) __attribute__((warn_unused_result));
/* The peer's static X25519 key (responder: after read_hello), or NULL. Owned by s. */
const uint8_t *ruf_wire_session_remote_static(const ruf_wire_session *s);
/* Responder: message 2 carrying w into out (RUF_WIRE_MAX_MSG bytes suffice); then transport. */
int ruf_wire_session_write_welcome(ruf_wire_session *s, const struct ruf_wire_welcome *w,
                                   uint8_t *out, size_t cap, size_t *outlen)
    __attribute__((warn_unused_result));
/* Initiator: reads message 2 into *w; then transport. */
int ruf_wire_session_read_welcome(ruf_wire_session *s, const uint8_t *msg, size_t len,
                                  struct ruf_wire_welcome *w) __attribute__((warn_unused_result));
/* True once the handshake is complete and transport ciphers are set. */
bool ruf_wire_session_ready(const ruf_wire_session *s);

/*
 * Encodes f and encrypts it into out (cap >= RUF_WIRE_MAX_MSG suffices): one
 * transport message, without the length prefix. Errors as
 * ruf_wire_frame_encode, RUF_E_NONCE_EXHAUSTED, RUF_E_INVAL before ready.
 */
int ruf_wire_session_seal(ruf_wire_session *s, const struct ruf_wire_frame *f, uint8_t *out,
                          size_t cap, size_t *outlen) __attribute__((warn_unused_result));
/*
 * ruf_wire_session_seal() with the u16be length in front: out[0..1] is the
 * length, the message follows; *outlen counts both. cap >= RUF_WIRE_LEN_BYTES
 * + RUF_WIRE_MAX_MSG suffices. Ready to write to the socket as is.
 */
int ruf_wire_session_seal_framed(ruf_wire_session *s, const struct ruf_wire_frame *f, uint8_t *out,
                                 size_t cap, size_t *outlen) __attribute__((warn_unused_result));

/*
 * Decrypts one transport message and decodes its frame into *f (release with
 * ruf_wire_frame_clear). RUF_E_AUTH (tampered or out of order: close),
 * RUF_E_TRUNCATED, decode's errors.
 */
int ruf_wire_session_open(ruf_wire_session *s, const uint8_t *msg, size_t len,
                          struct ruf_wire_frame *f) __attribute__((warn_unused_result));

/* --- Receipts -------------------------------------------------------------- */

struct ruf_wire_receipt_body {
	uint8_t message_id[RUF_WIRE_MSGID_BYTES];
	uint8_t envelope_hash[RUF_WIRE_HASH_BYTES];
	const char *const *queues; /* 1..16 queue names; sorted by sign */
	size_t n_queues;
	uint64_t store_seq;
	uint64_t time;
	uint64_t device_serial;
	uint64_t server_serial;
};

/*
 * Signs a receipt: WireReceipt { body = WireReceiptBody(b), signature =
 * Ed25519(sk) over "ruf-receipt-v1" NUL || body }. *out is the encoded
 * WireReceipt, malloc'ed, owned by the caller. RUF_E_FORMAT if b breaks a
 * rule (queue names, duplicates, zero store_seq), RUF_E_NOMEM.
 */
int ruf_wire_receipt_sign(const struct ruf_wire_receipt_body *b,
                          const uint8_t sk[RUF_SIGN_SK_BYTES], uint8_t **out, size_t *outlen)
    __attribute__((warn_unused_result));

/* A verified receipt's body; queues are owned by the struct. */
struct ruf_wire_receipt_info {
	struct ruf_wire_receipt_body body;
	char queue_store[RUF_WIRE_MAX_RECEIPT_QUEUES][RUF_QUEUE_NAME_MAX + 1];
	const char *queue_ptrs[RUF_WIRE_MAX_RECEIPT_QUEUES];
};

/*
 * Verifies an encoded WireReceipt, in this order: its structure
 * (RUF_E_FORMAT); server_cert chained to root at now (ruf_cert_verify's
 * RUF_E_CERT_* errors); server_cert's role is server (RUF_E_CERT_ROLE); the
 * signature over the exact received body bytes (RUF_E_AUTH); the body's
 * structure (RUF_E_FORMAT); the body names server_cert's serial, message_id
 * and hash are the expected ones (RUF_E_WIRE_RECEIPT). Either expectation
 * may be NULL to skip it. info (optional) gets the body. The caller checks
 * server_cert's revocation against its directory if it holds one.
 */
int ruf_wire_receipt_verify(const uint8_t *receipt, size_t len, const ruf_cert *server_cert,
                            const ruf_cert *root, uint64_t now, const uint8_t *expect_message_id,
                            const uint8_t *expect_hash, struct ruf_wire_receipt_info *info)
    __attribute__((warn_unused_result));
/*
 * ruf_wire_receipt_verify() for a server_cert the caller has verified under
 * a root with root's key itself (the client: at the handshake): its chain is
 * re-checked with ruf_cert_reverify (issuer, validity windows), not
 * ruf_cert_verify, which saves two signature checks per receipt.
 */
int ruf_wire_receipt_verify_known(const uint8_t *receipt, size_t len, const ruf_cert *server_cert,
                                  const ruf_cert *root, uint64_t now,
                                  const uint8_t *expect_message_id, const uint8_t *expect_hash,
                                  struct ruf_wire_receipt_info *info)
    __attribute__((warn_unused_result));

#endif
