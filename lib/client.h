/*
 * client.h - a small blocking client for rufd (plain sockets and poll, no
 * event loop): `ruf send`, `ruf desk` and the daemon's integration tests use
 * it. One ruf_client is one TCP connection with one Noise session
 * (docs/PROTOCOL.md).
 *
 *   c = connect(host, port, identity)          TCP, Noise IK, Hello/Welcome
 *   submit(c, envelope fd) -> receipt           resumable, pipelined chunks
 *   subscribe(c, queues, window); loop { next_delivery(c); ack(c) }
 *   close(c)
 *
 * Memory is bounded: one read buffer, one frame buffer, the stream reader
 * (one message) and, for deliveries into memory, the caller's size bound.
 * Every function returns 0 or a RUF_E_* code, with detail in the optional
 * ruf_diag. After a network, protocol or authentication error the
 * connection is dead: later calls fail with RUF_E_NET_CLOSED; close it and
 * connect again (submit resumes where rufd's durable copy ends).
 *
 * Not thread-safe: one thread per ruf_client.
 */
#ifndef RUF_CLIENT_H
#define RUF_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cert.h"
#include "directory.h"
#include "err.h"
#include "util.h"
#include "wire.h"

/* Who we are and whom we trust. Everything is borrowed for connect only. */
struct ruf_client_identity {
	const uint8_t *cert; /* our certificate (device or desk), exact bytes */
	size_t cert_len;
	const uint8_t *kx_sk;           /* our X25519 secret key (RUF_KEY_KX); 32 bytes */
	const ruf_cert *root;           /* the pinned HQ root */
	const ruf_directory *directory; /* current: rufd's Noise key (hq.noise_pk), version */
};

/* Zero fields take the defaults in brackets. */
struct ruf_client_options {
	unsigned connect_timeout_ms; /* TCP connect per address [30000] */
	unsigned io_timeout_ms;      /* any one wait for the peer [120000]: long-delay links */
	unsigned user_timeout_ms;    /* TCP_USER_TIMEOUT [120000] */
	unsigned keepalive_idle_s;   /* TCP keepalive idle time [60] (interval idle/4, 5 probes) */
	size_t chunk_size;           /* SubmitChunk data bytes, 1..60000 [32768] */
	uint64_t now;                /* fixed clock for checks (tests) [ruf_now() at each check] */
};

typedef struct ruf_client ruf_client;

/*
 * Resolves host (name, IPv4 or IPv6 literal) and port, connects to the first
 * address that answers, runs the Noise IK handshake as initiator with
 * WireHello { our cert, now, our directory's version } and reads the
 * WireWelcome. If rufd closes during the handshake and the directory
 * announces a next Noise key (hq.next_noise_pk), one more connection tries
 * that key (HQ may have rotated it). Checks that rufd's certificate chains to the root, has the
 * server role, is not revoked by our directory, and carries the X25519 key
 * we connected to (all RUF_E_WIRE_HANDSHAKE, detail in d). A directory in
 * the Welcome is verified under the pinned root (ruf_directory_load_mem)
 * and must be newer (ruf_directory_accept); its errors are returned as
 * they are. It is then held for ruf_client_take_directory().
 *
 * Errors: RUF_E_INVAL (bad identity: our kx key is not our cert's),
 * RUF_E_NET_CONNECT (resolution or every address failed), RUF_E_NET_TIMEOUT,
 * RUF_E_WIRE_HANDSHAKE (rufd closed during the handshake: it refused us, or
 * it is not the server our directory names), RUF_E_NOMEM.
 * *out is owned by the caller: ruf_client_close().
 */
int ruf_client_connect(const char *host, const char *port, const struct ruf_client_identity *id,
                       const struct ruf_client_options *opt, ruf_client **out, ruf_diag *d)
    __attribute__((warn_unused_result));

/*
 * Splits "host:port" or "[IPv6]:port" into host (hostlen bytes) and port
 * (portlen bytes). 0, or RUF_E_INVAL when it is not of that form or does
 * not fit.
 */
int ruf_client_split_hostport(const char *addr, char *host, size_t hostlen, char *port,
                              size_t portlen);

/*
 * Several HQ instances (the directory's hq.addresses, "host:port" each):
 * tries addrs[first], addrs[first + 1], ... (wrapping round, each once)
 * with ruf_client_connect and keeps the first that completes the
 * handshake; *used (may be NULL) is its index. A malformed address is
 * skipped like one that does not answer. A rufd that refuses us
 * (RUF_E_WIRE_HANDSHAKE) is tried past too: another instance may run
 * with a newer directory. Local errors (RUF_E_INVAL for our identity,
 * RUF_E_NOMEM) stop at once. Otherwise the last address's error is
 * returned, with every address's failure in d ("a: why; b: why").
 */
int ruf_client_connect_any(const char *const *addrs, size_t n, size_t first,
                           const struct ruf_client_identity *id,
                           const struct ruf_client_options *opt, ruf_client **out, size_t *used,
                           ruf_diag *d) __attribute__((warn_unused_result));

/* Closes the connection and frees c (and any directory not taken). Accepts NULL. */
void ruf_client_close(ruf_client *c);

/* rufd's verified certificate (owned by c). */
const ruf_cert *ruf_client_server_cert(const ruf_client *c);
/* rufd's clock from the Welcome, Unix seconds. */
uint64_t ruf_client_server_time(const ruf_client *c);
/*
 * A newer directory rufd sent (in the Welcome or a DirectoryUpdate),
 * verified under the root and newer than ours; NULL if none. The caller
 * owns the result (ruf_directory_free) and should save it.
 */
ruf_directory *ruf_client_take_directory(ruf_client *c);

/* Progress of an upload: called after each chunk is written. */
struct ruf_client_progress {
	void (*fn)(void *arg, uint64_t done, uint64_t total);
	void *arg;
};

struct ruf_client_submit_result {
	uint64_t total_len;  /* bytes of the envelope */
	uint64_t resumed_at; /* bytes rufd already held when we offered */
	/* On success: */
	uint8_t *receipt; /* the exact WireReceipt bytes, malloc'ed, caller frees */
	size_t receipt_len;
	struct ruf_wire_receipt_info info; /* its verified body */
	/* RUF_E_WIRE_RETRY_LATER: seconds rufd asked us to wait (0: our choice). */
	uint32_t retry_after_s;
	/* RUF_E_WIRE_STALE_DIRECTORY: rufd's directory, verified and newer; caller frees. */
	ruf_directory *directory;
};

/* Frees what a result owns and zeroes it. Accepts NULL. */
void ruf_client_submit_result_free(struct ruf_client_submit_result *r);

/*
 * Submits the envelope in fd (read with pread; the file must not change):
 * SubmitOffer { message id, length, BLAKE2b-256 } -> SubmitStatus { have }
 * -> pipelined SubmitChunks from have -> Receipt, which is verified against
 * rufd's certificate, the message id and the hash (RUF_E_WIRE_RECEIPT or
 * ruf_wire_receipt_verify's errors). A duplicate gets the original receipt.
 * Nacks: RUF_E_WIRE_RETRY_LATER (res->retry_after_s),
 * RUF_E_WIRE_STALE_DIRECTORY (res->directory: re-seal and submit again;
 * the connection stays usable), RUF_E_WIRE_REJECTED, RUF_E_TOO_LARGE.
 * Also RUF_E_ENV_FORMAT if fd does not hold an envelope, and the network
 * errors. res is always initialised; free it with
 * ruf_client_submit_result_free().
 */
int ruf_client_submit(ruf_client *c, int fd, const struct ruf_client_progress *progress,
                      struct ruf_client_submit_result *res, ruf_diag *d)
    __attribute__((warn_unused_result));
/* The same for a file path. */
int ruf_client_submit_path(ruf_client *c, const char *path,
                           const struct ruf_client_progress *progress,
                           struct ruf_client_submit_result *res, ruf_diag *d)
    __attribute__((warn_unused_result));

/*
 * Desk: asks for deliveries from these queues (1..16 names) with at most
 * window (1..1024) unacknowledged envelopes in flight. rufd does not answer;
 * a queue the desk certificate does not permit closes the connection with
 * an Error frame, seen by the next ruf_client_next_delivery()
 * (RUF_E_WIRE_ERROR).
 */
int ruf_client_subscribe(ruf_client *c, const char *const *queues, size_t n, uint32_t window,
                         ruf_diag *d) __attribute__((warn_unused_result));

/* Where a delivery's envelope goes. */
struct ruf_client_sink {
	int fd;           /* >= 0: pieces written at their offsets, then truncated; < 0: memory */
	uint64_t max_len; /* refuse longer envelopes (RUF_E_TOO_LARGE) */
};

struct ruf_client_delivery {
	char queue[RUF_QUEUE_NAME_MAX + 1];
	uint64_t seq;
	uint8_t message_id[RUF_WIRE_MSGID_BYTES];
	uint64_t total_len;
	uint8_t *data; /* memory sink: the whole envelope, malloc'ed, caller frees */
	/*
	 * rufd's signed receipt for the envelope as sent with it (0 bytes if
	 * none), NOT verified here: the caller checks it with
	 * ruf_wire_receipt_verify against ruf_client_server_cert and the
	 * envelope's hash before trusting its store time.
	 */
	uint8_t receipt[RUF_WIRE_MAX_RECEIPT];
	size_t receipt_len;
};

/*
 * Waits up to timeout_ms (< 0: forever) for the next delivery and reassembles
 * its Deliver frames into sink. Once the first frame has arrived the rest
 * must follow within the I/O timeout. Returns 0 and *out; RUF_E_NET_TIMEOUT
 * when nothing arrived in time (the connection stays usable);
 * RUF_E_TOO_LARGE over sink->max_len; RUF_E_WIRE_PROTOCOL for frames out of
 * order; RUF_E_WIRE_ERROR if rufd sent an Error (code and text in d). Every
 * error but a timeout before the first frame leaves the connection dead.
 * Duplicates (a redelivery after reconnect) are possible: drop them by id.
 */
int ruf_client_next_delivery(ruf_client *c, int timeout_ms, const struct ruf_client_sink *sink,
                             struct ruf_client_delivery *out, ruf_diag *d)
    __attribute__((warn_unused_result));

/* Desk: acknowledges (queue, seq) once the envelope is stored or opened. */
int ruf_client_ack(ruf_client *c, const char *queue, uint64_t seq, ruf_diag *d)
    __attribute__((warn_unused_result));

/*
 * Ping/pong round trip within the I/O timeout. Not on a subscribed
 * connection (deliveries would interleave): RUF_E_INVAL there.
 */
int ruf_client_ping(ruf_client *c, ruf_diag *d) __attribute__((warn_unused_result));

#endif
