/*
 * test_client.c - the blocking client library against a scripted fake rufd
 * on loopback TCP: a thread that speaks the wire protocol through the codec
 * (lib/wire.h), not the real daemon (its integration tests drive the real
 * one). Covers the handshake and directory push, submit with a verified
 * receipt, resume after a cut, each Nack, a receipt that does not match,
 * deliveries reassembled into memory and into a file, acks, timeouts, and a
 * server that is not the one the directory names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "../fuzz/envelope_fixture.h"
#include "cert.h"
#include "client.h"
#include "directory.h"
#include "err.h"
#include "route.h"
#include "util.h"
#include "wire.h"

static const char policy_text[] = "policy 1\n"
                                  "\n"
                                  "rule sag\n"
                                  "\trisk high ongoing\n"
                                  "\tto sag hrt\n";

static struct fx F;
static struct fx_ident server_id, signer_id;
static uint8_t server_kx_sk[32], dev_kx_sk[32], desk_kx_sk[32], other_kx_pk[32];
static uint8_t *server_raw, *signer_raw, *dir1_raw, *dir2_raw, *dir_wrongkey_raw, *dir_rotated_raw;
static size_t server_len, signer_len, dir1_len, dir2_len, dir_wrongkey_len, dir_rotated_len;
static ruf_directory *dir1, *dir_wrongkey, *dir_rotated;
static uint8_t *env;
static size_t env_len;
static int env_fd = -1;

/* The fixture derives kx secret keys this way (fx_kx with tag ^ 0x5a). */
static void
kx_sk_of(uint8_t tag, uint8_t sk[32])
{
	memset(sk, tag ^ 0x5a, 32);
	sk[0] &= 248;
}

static void
make_directory(uint64_t version, const uint8_t noise_pk[32], const uint8_t *next_pk, uint8_t **raw,
               size_t *len)
{
	static struct ruf_dir_queue q[3];
	struct ruf_dir_hq hq = {0};
	ruf_policy *pol;
	uint8_t tsk[32];

	q[0] = (struct ruf_dir_queue){.name = "hrt", .epoch = 1};
	memcpy(q[0].pk, F.q_pk[0], 32);
	q[1] = (struct ruf_dir_queue){.name = "sag", .epoch = 1};
	memcpy(q[1].pk, F.q_pk[1], 32);
	q[2] = (struct ruf_dir_queue){.name = "triage", .epoch = 1};
	fx_kx(tsk, q[2].pk, 0x23);
	memcpy(hq.noise_pk, noise_pk, 32);
	if (next_pk != NULL) {
		hq.has_next = true;
		memcpy(hq.next_noise_pk, next_pk, 32);
	}
	assert_int_equal(ruf_policy_compile(policy_text, strlen(policy_text), NULL, &pol), 0);
	struct ruf_directory_template t = {
	    .version = version,
	    .issued_at = FX_NOW - 60,
	    .expires_at = FX_NOW + 86400,
	    .queues = q,
	    .n_queues = 3,
	    .hq = &hq,
	    .policy = pol,
	};
	assert_int_equal(
	    ruf_directory_sign(&t, signer_raw, signer_len, signer_id.sign_sk, raw, len), 0);
	ruf_policy_free(pol);
}

static int
setup(void **state)
{
	static const uint8_t report[] = "sitrep: a report long enough to need several chunks";
	struct ruf_env_header h;
	struct ruf_seal_params p;
	struct stat st;

	(void)state;
	if (fx_init(&F) != 0)
		return -1;
	fx_ident_make(&server_id, 0x07);
	fx_ident_make(&signer_id, 0x08);
	kx_sk_of(0x07, server_kx_sk);
	kx_sk_of(0x02, dev_kx_sk);
	kx_sk_of(0x03, desk_kx_sk);
	{
		uint8_t sk[32];
		fx_kx(sk, other_kx_pk, 0x44);
	}
	if (fx_issue(&F, &server_id, RUF_ROLE_SERVER, 5, "hq-server", NULL, FX_NB, FX_NA, NULL, 0,
	             NULL, 0, &server_raw, &server_len) != 0 ||
	    fx_issue(&F, &signer_id, RUF_ROLE_DIRSIGNER, 6, "dir-signer", NULL, FX_NB, FX_NA, NULL,
	             0, NULL, 0, &signer_raw, &signer_len) != 0)
		return -1;
	make_directory(1, server_id.kx_pk, NULL, &dir1_raw, &dir1_len);
	make_directory(2, server_id.kx_pk, NULL, &dir2_raw, &dir2_len);
	make_directory(1, other_kx_pk, NULL, &dir_wrongkey_raw, &dir_wrongkey_len);
	make_directory(1, other_kx_pk, server_id.kx_pk, &dir_rotated_raw, &dir_rotated_len);
	if (ruf_directory_load_mem(dir1_raw, dir1_len, F.root, FX_NOW, &dir1) != 0 ||
	    ruf_directory_load_mem(dir_rotated_raw, dir_rotated_len, F.root, FX_NOW,
	                           &dir_rotated) != 0 ||
	    ruf_directory_load_mem(dir_wrongkey_raw, dir_wrongkey_len, F.root, FX_NOW,
	                           &dir_wrongkey) != 0)
		return -1;
	/* A sealed envelope in a memfd: what `ruf send` would submit. */
	h = fx_header();
	p = fx_params(&F, &h, report, sizeof(report) - 1, NULL, 0);
	env_fd = memfd_create("env", MFD_CLOEXEC);
	if (env_fd < 0 || ruf_envelope_seal(&p, env_fd, NULL, NULL) != 0 || fstat(env_fd, &st))
		return -1;
	env_len = (size_t)st.st_size;
	env = malloc(env_len);
	if (env == NULL || ruf_pread_all(env_fd, env, env_len, 0) != 0)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	free(server_raw);
	free(signer_raw);
	free(dir1_raw);
	free(dir2_raw);
	free(dir_wrongkey_raw);
	ruf_directory_free(dir1);
	ruf_directory_free(dir_wrongkey);
	ruf_directory_free(dir_rotated);
	free(dir_rotated_raw);
	free(env);
	close(env_fd);
	fx_free(&F);
	return 0;
}

/* --- The fake rufd ----------------------------------------------------------- */

enum mode {
	M_RECEIPT,     /* take the upload, answer with a good receipt */
	M_CUT,         /* close after cut_after bytes; remember them for the next connection */
	M_STALE,       /* Nack stale directory (dir2) */
	M_RETRY,       /* Nack retry later, 30 s */
	M_REJECT,      /* Nack rejected */
	M_BAD_RECEIPT, /* a receipt for another hash */
	M_DELIVER,     /* on Subscribe: deliver the envelope as seq 1 and 2 in 100-byte pieces */
	M_SILENT,      /* on Subscribe: say nothing */
	M_DENY,        /* on Subscribe: Error not permitted, close */
	M_DUP,         /* answer the offer with the receipt at once: a duplicate */
	M_EARLY_NACK,  /* Nack retry-later on the first chunk, ignore the rest */
	M_CHATTY,      /* like M_RECEIPT and M_DELIVER, with a Ping and a DirectoryUpdate first */
};

struct srv {
	int lfd;
	uint16_t port;
	int mode;
	int conns; /* connections to serve */
	uint64_t dir_version;
	size_t cut_after;
	/* Upload state survives across connections, like rufd's spool. */
	uint8_t *held;
	uint64_t have;
	/* What the server saw. */
	bool v6; /* listen on ::1 instead of 127.0.0.1 */
	int receipts, acks, handshakes, pongs;
	bool nacked;
	uint64_t acked_seq[4];
	pthread_t th;
};

static int
srv_send(int fd, const uint8_t *m, size_t n)
{
	uint8_t hdr[2];

	if (ruf_wire_put_len(hdr, n) != 0 || ruf_write_all(fd, hdr, 2) != 0 ||
	    ruf_write_all(fd, m, n) != 0)
		return -1;
	return 0;
}

static int
srv_frame(int fd, ruf_wire_session *s, const struct ruf_wire_frame *f)
{
	static __thread uint8_t buf[RUF_WIRE_MAX_MSG];
	size_t n;

	if (ruf_wire_session_seal(s, f, buf, sizeof(buf), &n) != 0)
		return -1;
	return srv_send(fd, buf, n);
}

/* Bytes read from the client and not yet fed to the reader. */
struct srv_in {
	uint8_t buf[4096];
	size_t off, len;
};

/* Reads one message; -1 on EOF or error. */
static int
srv_recv(int fd, ruf_wire_reader *r, struct srv_in *in, const uint8_t **m, size_t *n)
{
	for (;;) {
		int rc = ruf_wire_reader_next(r, m, n);
		size_t used;
		ssize_t got;

		if (rc == 1)
			return 0;
		if (rc < 0)
			return -1;
		if (in->off == in->len) {
			if ((got = read(fd, in->buf, sizeof(in->buf))) <= 0)
				return -1;
			in->off = 0;
			in->len = (size_t)got;
		}
		if (ruf_wire_reader_feed(r, in->buf + in->off, in->len - in->off, &used) != 0)
			return -1;
		in->off += used;
	}
}

static void
srv_receipt(struct srv *sv, int fd, ruf_wire_session *s, const uint8_t *id, const uint8_t *hash)
{
	static const char *const q[] = {"sag", "hrt"};
	struct ruf_wire_receipt_body b = {.queues = q,
	                                  .n_queues = 2,
	                                  .store_seq = 9,
	                                  .time = FX_NOW,
	                                  .device_serial = FX_DEVICE_SERIAL,
	                                  .server_serial = 5};
	struct ruf_wire_frame f = {.type = RUF_WIRE_RECEIPT};
	uint8_t *r;
	size_t len;

	memcpy(b.message_id, id, 16);
	memcpy(b.envelope_hash, hash, 32);
	if (sv->mode == M_BAD_RECEIPT)
		b.envelope_hash[0] ^= 1;
	if (ruf_wire_receipt_sign(&b, server_id.sign_sk, &r, &len) != 0)
		abort();
	/* Sent as signed, the way rufd resends a stored receipt. */
	f.u.receipt.raw = r;
	f.u.receipt.raw_len = len;
	(void)srv_frame(fd, s, &f);
	free(r);
	sv->receipts++;
}

static void
srv_deliver(int fd, ruf_wire_session *s)
{
	for (uint64_t seq = 1; seq <= 2; seq++) {
		for (size_t off = 0; off < env_len; off += 100) {
			struct ruf_wire_frame f = {.type = RUF_WIRE_DELIVER};
			size_t n = env_len - off < 100 ? env_len - off : 100;

			f.u.deliver.queue = "hrt";
			f.u.deliver.seq = seq;
			memset(f.u.deliver.message_id, (int)seq, 16);
			f.u.deliver.total_len = env_len;
			f.u.deliver.offset = off;
			f.u.deliver.data = env + off;
			f.u.deliver.len = n;
			f.u.deliver.last = off + n == env_len;
			if (srv_frame(fd, s, &f) != 0)
				return;
		}
	}
}

/* What rufd may send at any time: a Ping and a newer directory. */
static void
srv_chatter(int fd, ruf_wire_session *s)
{
	struct ruf_wire_frame p = {.type = RUF_WIRE_PING};
	struct ruf_wire_frame u = {.type = RUF_WIRE_DIRECTORY_UPDATE};

	p.u.ping.nonce = 77;
	u.u.directory_update.directory = dir2_raw;
	u.u.directory_update.len = dir2_len;
	(void)srv_frame(fd, s, &p);
	(void)srv_frame(fd, s, &u);
}

/* One connection: handshake then frames until the client goes away. */
static void
srv_conn(struct srv *sv, int fd)
{
	ruf_wire_session *s = NULL;
	ruf_wire_reader r;
	struct ruf_wire_hello h;
	uint8_t out[RUF_WIRE_MAX_MSG];
	const uint8_t *m;
	size_t n;
	ruf_cert *peer = NULL;
	uint8_t offer_id[16] = {0}, offer_hash[32] = {0};
	uint64_t offer_total = 0;
	static __thread struct srv_in in;

	in.off = in.len = 0;
	ruf_wire_reader_init(&r, RUF_WIRE_MAX_MSG1);
	if (ruf_wire_session_new(&s, false, server_kx_sk, server_id.kx_pk, NULL) != 0)
		abort();
	if (srv_recv(fd, &r, &in, &m, &n) != 0 || ruf_wire_session_read_hello(s, m, n, &h) != 0)
		goto out; /* refuse silently, like rufd */
	if (ruf_cert_parse(h.certificate, h.certificate_len, &peer) != 0 ||
	    memcmp(peer->kx_pk, ruf_wire_session_remote_static(s), 32) != 0) {
		ruf_wire_hello_clear(&h);
		goto out;
	}
	{
		struct ruf_wire_welcome w = {.server_time = FX_NOW,
		                             .directory_version = sv->dir_version,
		                             .server_certificate = server_raw,
		                             .server_certificate_len = server_len};
		if (h.directory_version < sv->dir_version) {
			w.directory = dir2_raw;
			w.directory_len = dir2_len;
		}
		ruf_wire_hello_clear(&h);
		if (ruf_wire_session_write_welcome(s, &w, out, sizeof(out), &n) != 0 ||
		    srv_send(fd, out, n) != 0)
			goto out;
	}
	sv->handshakes++;
	ruf_wire_reader_set_max(&r, RUF_WIRE_MAX_MSG);
	for (;;) {
		struct ruf_wire_frame f, a;

		if (srv_recv(fd, &r, &in, &m, &n) != 0 || ruf_wire_session_open(s, m, n, &f) != 0)
			goto out;
		memset(&a, 0, sizeof(a));
		switch (f.type) {
		case RUF_WIRE_PING:
			a.type = RUF_WIRE_PONG;
			a.u.ping.nonce = f.u.ping.nonce;
			(void)srv_frame(fd, s, &a);
			break;
		case RUF_WIRE_PONG:
			if (f.u.ping.nonce == 77)
				sv->pongs++;
			break;
		case RUF_WIRE_SUBMIT_OFFER:
			memcpy(offer_id, f.u.offer.message_id, 16);
			memcpy(offer_hash, f.u.offer.hash, 32);
			offer_total = f.u.offer.total_len;
			if (sv->mode == M_CHATTY)
				srv_chatter(fd, s);
			if (sv->mode == M_DUP) {
				srv_receipt(sv, fd, s, offer_id, offer_hash);
				break;
			}
			if (sv->held == NULL)
				sv->held = calloc(1, offer_total);
			a.type = RUF_WIRE_NACK;
			memcpy(a.u.nack.message_id, offer_id, 16);
			if (sv->mode == M_STALE) {
				a.u.nack.reason = RUF_WIRE_NACK_STALE_DIRECTORY;
				a.u.nack.directory = dir2_raw;
				a.u.nack.directory_len = dir2_len;
			} else if (sv->mode == M_RETRY) {
				a.u.nack.reason = RUF_WIRE_NACK_RETRY_LATER;
				a.u.nack.retry_after_s = 30;
			} else if (sv->mode == M_REJECT) {
				a.u.nack.reason = RUF_WIRE_NACK_REJECTED;
			} else {
				a.type = RUF_WIRE_SUBMIT_STATUS;
				memcpy(a.u.status.message_id, offer_id, 16);
				a.u.status.have = sv->have;
			}
			(void)srv_frame(fd, s, &a);
			break;
		case RUF_WIRE_SUBMIT_CHUNK:
			if (sv->mode == M_EARLY_NACK) {
				if (!sv->nacked) {
					a.type = RUF_WIRE_NACK;
					memcpy(a.u.nack.message_id, offer_id, 16);
					a.u.nack.reason = RUF_WIRE_NACK_RETRY_LATER;
					a.u.nack.retry_after_s = 5;
					(void)srv_frame(fd, s, &a);
					sv->nacked = true;
				}
				break;
			}
			if (f.u.chunk.offset != sv->have ||
			    f.u.chunk.len > offer_total - f.u.chunk.offset) {
				ruf_wire_frame_clear(&f);
				goto out;
			}
			memcpy(sv->held + sv->have, f.u.chunk.data, f.u.chunk.len);
			sv->have += f.u.chunk.len;
			if (sv->mode == M_CUT && sv->have >= sv->cut_after) {
				sv->mode = M_RECEIPT; /* the next connection completes */
				ruf_wire_frame_clear(&f);
				goto out;
			}
			if (sv->have == offer_total) {
				uint8_t hh[32];
				crypto_generichash(hh, 32, sv->held, offer_total, NULL, 0);
				if (memcmp(hh, offer_hash, 32) != 0)
					abort();
				srv_receipt(sv, fd, s, offer_id, hh);
			}
			break;
		case RUF_WIRE_SUBSCRIBE:
			if (sv->mode == M_CHATTY)
				srv_chatter(fd, s);
			if (sv->mode == M_DELIVER || sv->mode == M_CHATTY)
				srv_deliver(fd, s);
			if (sv->mode == M_DENY) {
				a.type = RUF_WIRE_ERROR;
				a.u.error.code = RUF_WIRE_ERR_NOT_PERMITTED;
				a.u.error.text = "not permitted";
				(void)srv_frame(fd, s, &a);
				ruf_wire_frame_clear(&f);
				goto out;
			}
			break;
		case RUF_WIRE_DELIVER_ACK:
			if (sv->acks < 4)
				sv->acked_seq[sv->acks] = f.u.deliver_ack.seq;
			sv->acks++;
			break;
		default:
			break;
		}
		ruf_wire_frame_clear(&f);
	}
out:
	ruf_cert_free(peer);
	ruf_wire_reader_free(&r);
	ruf_wire_session_free(s);
}

static void *
srv_main(void *arg)
{
	struct srv *sv = arg;

	for (int i = 0; i < sv->conns; i++) {
		int fd = accept(sv->lfd, NULL, NULL);
		if (fd < 0)
			break;
		srv_conn(sv, fd);
		close(fd);
	}
	return NULL;
}

static void
srv_start(struct srv *sv, int mode, int conns, uint64_t dir_version, size_t cut_after)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);

	memset(sv, 0, sizeof(*sv));
	sv->mode = mode;
	sv->conns = conns;
	sv->dir_version = dir_version;
	sv->cut_after = cut_after;
	sv->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(sv->lfd >= 0);
	assert_int_equal(bind(sv->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(sv->lfd, 4), 0);
	assert_int_equal(getsockname(sv->lfd, (struct sockaddr *)&a, &alen), 0);
	sv->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&sv->th, NULL, srv_main, sv), 0);
}

/* The same on IPv6 loopback; false (nothing started) if the host has none. */
static bool
srv_start6(struct srv *sv, int mode)
{
	struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	socklen_t alen = sizeof(a);

	memset(sv, 0, sizeof(*sv));
	sv->mode = mode;
	sv->conns = 1;
	sv->dir_version = 1;
	sv->v6 = true;
	sv->lfd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sv->lfd < 0)
		return false;
	if (bind(sv->lfd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(sv->lfd);
		return false;
	}
	assert_int_equal(listen(sv->lfd, 4), 0);
	assert_int_equal(getsockname(sv->lfd, (struct sockaddr *)&a, &alen), 0);
	sv->port = ntohs(a.sin6_port);
	assert_int_equal(pthread_create(&sv->th, NULL, srv_main, sv), 0);
	return true;
}

static void
srv_stop(struct srv *sv)
{
	assert_int_equal(pthread_join(sv->th, NULL), 0);
	close(sv->lfd);
	free(sv->held);
}

/* --- Client side ------------------------------------------------------------- */

static int
dial(const struct srv *sv, const uint8_t *cert, size_t cert_len, const uint8_t *kx_sk,
     const ruf_directory *dir, size_t chunk, ruf_client **c, ruf_diag *d)
{
	struct ruf_client_identity id = {
	    .cert = cert, .cert_len = cert_len, .kx_sk = kx_sk, .root = F.root, .directory = dir};
	struct ruf_client_options o = {.io_timeout_ms = 10000,
	                               .connect_timeout_ms = 10000,
	                               .chunk_size = chunk,
	                               .now = FX_NOW};
	char port[16];

	snprintf(port, sizeof(port), "%u", sv->port);
	return ruf_client_connect(sv->v6 ? "::1" : "127.0.0.1", port, &id, &o, c, d);
}

static void
test_client_handshake_pings_and_takes_a_pushed_directory(void **state)
{
	struct srv sv;
	ruf_client *c;
	ruf_directory *nd;
	ruf_diag d = {{0}};

	(void)state;
	srv_start(&sv, M_RECEIPT, 1, 2, 0);
	assert_int_equal(dial(&sv, F.dev_raw, F.dev_len, dev_kx_sk, dir1, 0, &c, &d), 0);
	assert_int_equal(ruf_client_server_cert(c)->serial, 5);
	assert_true(ruf_client_server_time(c) == FX_NOW);
	assert_int_equal(ruf_client_ping(c, &d), 0);
	nd = ruf_client_take_directory(c);
	assert_non_null(nd);
	assert_true(nd->version == 2);
	assert_null(ruf_client_take_directory(c));
	ruf_directory_free(nd);
	assert_int_equal(ruf_client_ping(c, &d), 0);
	ruf_client_close(c);
	srv_stop(&sv);
	assert_int_equal(sv.handshakes, 1);
}

static void
test_client_refuses_a_kx_key_that_is_not_its_certificates(void **state)
{
	struct srv sv = {.port = 9};
	ruf_client *c;
	ruf_diag d = {{0}};

	(void)state;
	assert_int_equal(dial(&sv, F.dev_raw, F.dev_len, desk_kx_sk, dir1, 0, &c, &d), RUF_E_INVAL);
	assert_null(c);
}

static void
test_client_detects_a_server_without_the_directory_noise_key(void **state)
{
	struct srv sv;
	ruf_client *c;
	ruf_diag d = {{0}};

	(void)state;
	/* The directory names another Noise key: the real server cannot read message 1. */
	srv_start(&sv, M_RECEIPT, 1, 1, 0);
	assert_int_equal(dial(&sv, F.dev_raw, F.dev_len, dev_kx_sk, dir_wrongkey, 0, &c, &d),
	                 RUF_E_WIRE_HANDSHAKE);
	assert_null(c);
	srv_stop(&sv);
	assert_int_equal(sv.handshakes, 0);
}

static void
test_client_tries_the_next_noise_key_after_a_refusal(void **state)
{
	struct srv sv;
	ruf_client *c;
	ruf_diag d = {{0}};

	(void)state;
	/* Our directory still names the old key first; HQ already uses the next one. */
	srv_start(&sv, M_RECEIPT, 2, 1, 0);
	assert_int_equal(dial(&sv, F.dev_raw, F.dev_len, dev_kx_sk, dir_rotated, 0, &c, &d), 0);
	assert_int_equal(ruf_client_ping(c, &d), 0);
	ruf_client_close(c);
	srv_stop(&sv);
	assert_int_equal(sv.handshakes, 1);
}

static void
test_client_connects_over_ipv6(void **state)
{
	struct srv sv;
	ruf_client *c;
	ruf_diag d = {{0}};

	(void)state;
	if (!srv_start6(&sv, M_RECEIPT)) {
		skip();
		return;
	}
	assert_int_equal(dial(&sv, F.dev_raw, F.dev_len, dev_kx_sk, dir1, 0, &c, &d), 0);
	assert_int_equal(ruf_client_ping(c, &d), 0);
	ruf_client_close(c);
	srv_stop(&sv);
	assert_int_equal(sv.handshakes, 1);
}

static void
test_client_reports_connection_failures(void **state)
{
	struct srv sv;
	ruf_client *c;
	ruf_diag d = {{0}};
	struct ruf_client_identity id = {.cert = F.dev_raw,
	                                 .cert_len = F.dev_len,
	                                 .kx_sk = dev_kx_sk,
	                                 .root = F.root,
	                                 .directory = dir1};

	(void)state;
	/* A port nobody listens on: bind one, note it, close it. */
	srv_start(&sv, M_RECEIPT, 0, 1, 0);
	srv_stop(&sv);
	assert_int_equal(dial(&sv, F.dev_raw, F.dev_len, dev_kx_sk, dir1, 0, &c, &d),
	                 RUF_E_NET_CONNECT);
	assert_null(c);
	assert_int_equal(ruf_client_connect(NULL, "1", &id, NULL, &c, &d), RUF_E_INVAL);
}

static void
test_client_split_hostport_refuses_what_is_not_host_port(void **state)
{
	char host[16], port[8];

	(void)state;
	assert_int_equal(
	    ruf_client_split_hostport("hq.example:7443", host, sizeof(host), port, sizeof(port)),
	    0);
	assert_string_equal(host, "hq.example");
	assert_string_equal(port, "7443");
	assert_int_equal(
	    ruf_client_split_hostport("[::1]:7443", host, sizeof(host), port, sizeof(port)), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(ruf_client_split_hostport("hq", host, sizeof(host), port, sizeof(port)),
	                 RUF_E_INVAL);
	assert_int_equal(ruf_client_split_hostport("hq:", host, sizeof(host), port, sizeof(port)),
	                 RUF_E_INVAL);
	assert_int_equal(ruf_client_split_hostport(":1", host, sizeof(host), port, sizeof(port)),
	                 RUF_E_INVAL);
	assert_int_equal(
	    ruf_client_split_hostport("[::1:7", host, sizeof(host), port, sizeof(port)),
	    RUF_E_INVAL);
	assert_int_equal(ruf_client_split_hostport("a-very-long-host-name:1", host, sizeof(host),
	                                           port, sizeof(port)),
	                 RUF_E_INVAL);
	assert_int_equal(
	    ruf_client_split_hostport("hq:123456789", host, sizeof(host), port, sizeof(port)),
	    RUF_E_INVAL);
}

static void
test_client_connect_any_fails_over_to_the_next_instance_in_order(void **state)
{
	struct srv dead, live;
	ruf_client *c = NULL;
	ruf_diag d = {{0}};
	struct ruf_client_identity id = {.cert = F.dev_raw,
	                                 .cert_len = F.dev_len,
	                                 .kx_sk = dev_kx_sk,
	                                 .root = F.root,
	                                 .directory = dir1};
	struct ruf_client_options o = {.io_timeout_ms = 10000, .now = FX_NOW};
	char a_dead[32], a_live[32];
	const char *addrs[3] = {a_dead, "no-port", a_live};
	size_t used = 99;

	(void)state;
	srv_start(&live, M_RECEIPT, 2, 1, 0);
	srv_start(&dead, M_RECEIPT, 0, 1, 0);
	srv_stop(&dead); /* nobody listens there now (and live holds its own port) */
	snprintf(a_dead, sizeof(a_dead), "127.0.0.1:%u", dead.port);
	snprintf(a_live, sizeof(a_live), "127.0.0.1:%u", live.port);
	/* In order: the dead one, the malformed one, then the live one. */
	assert_int_equal(ruf_client_connect_any(addrs, 3, 0, &id, &o, &c, &used, &d), 0);
	assert_int_equal(used, 2);
	assert_int_equal(ruf_client_ping(c, &d), 0);
	ruf_client_close(c);
	/* Starting at the one that answered last: straight there. */
	assert_int_equal(ruf_client_connect_any(addrs, 3, 2, &id, &o, &c, &used, &d), 0);
	assert_int_equal(used, 2);
	ruf_client_close(c);
	srv_stop(&live);
	assert_int_equal(live.handshakes, 2);
	/* Every instance down: a network error naming each address. */
	addrs[2] = a_dead;
	assert_int_equal(ruf_client_connect_any(addrs, 3, 1, &id, &o, &c, &used, &d),
	                 RUF_E_NET_CONNECT);
	assert_null(c);
	assert_non_null(strstr(d.msg, "no-port: "));
	assert_non_null(strstr(d.msg, a_dead));
	/* Our own identity broken: no use trying the others. */
	id.kx_sk = desk_kx_sk;
	assert_int_equal(ruf_client_connect_any(addrs, 3, 0, &id, &o, &c, &used, &d), RUF_E_INVAL);
	assert_int_equal(ruf_client_connect_any(addrs, 0, 0, &id, &o, &c, &used, &d), RUF_E_INVAL);
}

static void
progress_cb(void *arg, uint64_t done, uint64_t total)
{
	uint64_t *calls = arg;

	assert_true(done <= total);
	calls[0]++;
	calls[1] = done;
}

static void
test_client_submit_gets_a_verified_receipt(void **state)
{
	struct srv sv;
	ruf_client *c;
	struct ruf_client_submit_result res;
	struct ruf_env_info *info;
	uint64_t calls[2] = {0, 0};
	struct ruf_client_progress pr = {progress_cb, calls};
	ruf_diag d = {{0}};

	(void)state;
	assert_int_equal(ruf_envelope_inspect(env_fd, &info), 0);
	srv_start(&sv, M_RECEIPT, 1, 1, 0);
	assert_int_equal(dial(&sv, F.dev_raw, F.dev_len, dev_kx_sk, dir1, 128, &c, &d), 0);
	assert_int_equal(ruf_client_submit(c, env_fd, &pr, &res, &d), 0);
	assert_true(res.total_len == env_len);
	assert_true(res.resumed_at == 0);
	assert_non_null(res.receipt);
	assert_memory_equal(res.info.body.message_id, info->hdr.message_id, 16);
	assert_memory_equal(res.info.body.envelope_hash, info->hash, 32);
	assert_int_equal(res.info.body.n_queues, 2);
	assert_string_equal(res.info.body.queues[0], "hrt");
	assert_true(calls[1] == env_len);
	assert_true(calls[0] >= 1 + env_len / 128);
	/* The kept receipt verifies on its own. */
	assert_int_equal(ruf_wire_receipt_verify(res.receipt, res.receipt_len,
	                                         ruf_client_server_cert(c), F.root, FX_NOW,
	                                         info->hdr.message_id, info->hash, NULL),
	                 0);
	ruf_client_submit_result_free(&res);
	ruf_client_close(c);
	srv_stop(&sv);
	assert_int_equal(sv.receipts, 1);
	ruf_env_info_free(info);
}

static void
test_client_resumes_an_upload_after_a_cut(void **state)
{
	struct srv sv;
	ruf_client *c;
	struct ruf_client_submit_result res;
	ruf_diag d = {{0}};
	int rc;

	(void)state;
	srv_start(&sv, M_CUT, 2, 1, 300);
	assert_int_equal(dial(&sv, F.dev_raw, F.dev_len, dev_kx_sk, dir1, 100, &c, &d), 0);
	rc = ruf_client_submit(c, env_fd, NULL, &res, &d);
	assert_true(rc == RUF_E_NET_CLOSED);
	assert_null(res.receipt);
	ruf_client_submit_result_free(&res);
	/* A dead connection refuses further use. */
	assert_int_equal(ruf_client_ping(c, &d), RUF_E_NET_CLOSED);
	ruf_client_close(c);

	assert_int_equal(dial(&sv, F.dev_raw, F.dev_len, dev_kx_sk, dir1, 100, &c, &d), 0);
	assert_int_equal(ruf_client_submit(c, env_fd, NULL, &res, &d), 0);
	assert_true(res.resumed_at == 300);
	assert_non_null(res.receipt);
	ruf_client_submit_result_free(&res);
	ruf_client_close(c);
	srv_stop(&sv);
	assert_int_equal(sv.receipts, 1);
	assert_int_equal(sv.handshakes, 2);
}

static void
test_client_maps_each_nack_and_a_mismatched_receipt(void **state)
{
	static const struct {
		int mode, want;
	} cases[] = {
	    {M_STALE, RUF_E_WIRE_STALE_DIRECTORY},
	    {M_RETRY, RUF_E_WIRE_RETRY_LATER},
	    {M_REJECT, RUF_E_WIRE_REJECTED},
	    {M_BAD_RECEIPT, RUF_E_WIRE_RECEIPT},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct srv sv;
		ruf_client *c;
		struct ruf_client_submit_result res;
		ruf_diag d = {{0}};

		srv_start(&sv, cases[i].mode, 1, 1, 0);
		assert_int_equal(dial(&sv, F.dev_raw, F.dev_len, dev_kx_sk, dir1, 0, &c, &d), 0);
		assert_int_equal(ruf_client_submit(c, env_fd, NULL, &res, &d), cases[i].want);
		assert_null(res.receipt);
		if (cases[i].mode == M_STALE) {
			assert_non_null(res.directory);
			assert_true(res.directory->version == 2);
			/* The connection stays usable after a Nack. */
			assert_int_equal(ruf_client_ping(c, &d), 0);
		}
		if (cases[i].mode == M_RETRY)
			assert_int_equal(res.retry_after_s, 30);
		ruf_client_submit_result_free(&res);
		ruf_client_close(c);
		srv_stop(&sv);
	}
}

static void
test_client_reassembles_deliveries_and_acks(void **state)
{
	static const char *const q[] = {"hrt"};
	struct srv sv;
	ruf_client *c;
	struct ruf_client_delivery dv;
	struct ruf_client_sink mem = {.fd = -1, .max_len = 1 << 20};
	struct ruf_client_sink file = {.fd = -1, .max_len = 1 << 20};
	ruf_diag d = {{0}};
	uint8_t *back;

	(void)state;
	file.fd = memfd_create("dv", MFD_CLOEXEC);
	assert_true(file.fd >= 0);
	srv_start(&sv, M_DELIVER, 1, 1, 0);
	assert_int_equal(dial(&sv, F.desk_raw, F.desk_len, desk_kx_sk, dir1, 0, &c, &d), 0);
	assert_int_equal(ruf_client_subscribe(c, q, 1, 8, &d), 0);
	assert_int_equal(ruf_client_ping(c, &d), RUF_E_INVAL);

	assert_int_equal(ruf_client_next_delivery(c, 10000, &mem, &dv, &d), 0);
	assert_string_equal(dv.queue, "hrt");
	assert_true(dv.seq == 1);
	assert_true(dv.total_len == env_len);
	assert_memory_equal(dv.data, env, env_len);
	free(dv.data);
	assert_int_equal(ruf_client_ack(c, "hrt", 1, &d), 0);

	assert_int_equal(ruf_client_next_delivery(c, 10000, &file, &dv, &d), 0);
	assert_true(dv.seq == 2);
	assert_null(dv.data);
	back = malloc(env_len);
	assert_non_null(back);
	assert_int_equal(ruf_pread_all(file.fd, back, env_len, 0), 0);
	assert_memory_equal(back, env, env_len);
	free(back);
	assert_int_equal(ruf_client_ack(c, "hrt", 2, &d), 0);

	/* Nothing more: a short wait times out and the connection stays usable. */
	assert_int_equal(ruf_client_next_delivery(c, 50, &mem, &dv, &d), RUF_E_NET_TIMEOUT);
	assert_int_equal(ruf_client_ack(c, "bad queue", 2, &d), RUF_E_INVAL);
	ruf_client_close(c);
	srv_stop(&sv);
	assert_int_equal(sv.acks, 2);
	assert_true(sv.acked_seq[0] == 1 && sv.acked_seq[1] == 2);
	close(file.fd);
}

static void
test_client_refuses_deliveries_over_the_sink_limit(void **state)
{
	static const char *const q[] = {"hrt"};
	struct srv sv;
	ruf_client *c;
	struct ruf_client_delivery dv;
	struct ruf_client_sink small = {.fd = -1, .max_len = 10};
	ruf_diag d = {{0}};

	(void)state;
	srv_start(&sv, M_DELIVER, 1, 1, 0);
	assert_int_equal(dial(&sv, F.desk_raw, F.desk_len, desk_kx_sk, dir1, 0, &c, &d), 0);
	assert_int_equal(ruf_client_subscribe(c, q, 1, 1, &d), 0);
	assert_int_equal(ruf_client_next_delivery(c, 10000, &small, &dv, &d), RUF_E_TOO_LARGE);
	assert_null(dv.data);
	ruf_client_close(c);
	srv_stop(&sv);
}

static void
test_client_reports_a_server_error_frame(void **state)
{
	static const char *const q[] = {"sag"};
	struct srv sv;
	ruf_client *c;
	struct ruf_client_delivery dv;
	struct ruf_client_sink mem = {.fd = -1, .max_len = 1 << 20};
	ruf_diag d = {{0}};

	(void)state;
	srv_start(&sv, M_DENY, 1, 1, 0);
	assert_int_equal(dial(&sv, F.desk_raw, F.desk_len, desk_kx_sk, dir1, 0, &c, &d), 0);
	assert_int_equal(ruf_client_subscribe(c, q, 1, 1, &d), 0);
	assert_int_equal(ruf_client_next_delivery(c, 10000, &mem, &dv, &d), RUF_E_WIRE_ERROR);
	assert_non_null(strstr(d.msg, "not permitted"));
	assert_int_equal(ruf_client_next_delivery(c, 10, &mem, &dv, &d), RUF_E_NET_CLOSED);
	ruf_client_close(c);
	srv_stop(&sv);
}

static void
test_client_takes_a_duplicates_receipt_without_uploading(void **state)
{
	struct srv sv;
	ruf_client *c;
	struct ruf_client_submit_result res;
	ruf_diag d = {{0}};

	(void)state;
	srv_start(&sv, M_DUP, 1, 1, 0);
	assert_int_equal(dial(&sv, F.dev_raw, F.dev_len, dev_kx_sk, dir1, 0, &c, &d), 0);
	assert_int_equal(ruf_client_submit(c, env_fd, NULL, &res, &d), 0);
	assert_non_null(res.receipt);
	ruf_client_submit_result_free(&res);
	ruf_client_close(c);
	srv_stop(&sv);
	assert_true(sv.have == 0); /* not a byte sent */
}

static void
test_client_stops_on_a_nack_before_the_last_chunk(void **state)
{
	struct srv sv;
	ruf_client *c;
	struct ruf_client_submit_result res;
	ruf_diag d = {{0}};

	(void)state;
	srv_start(&sv, M_EARLY_NACK, 1, 1, 0);
	assert_int_equal(dial(&sv, F.dev_raw, F.dev_len, dev_kx_sk, dir1, 64, &c, &d), 0);
	assert_int_equal(ruf_client_submit(c, env_fd, NULL, &res, &d), RUF_E_WIRE_RETRY_LATER);
	assert_int_equal(res.retry_after_s, 5);
	ruf_client_submit_result_free(&res);
	ruf_client_close(c);
	srv_stop(&sv);
}

static void
test_client_answers_pings_and_keeps_directory_updates_midstream(void **state)
{
	static const char *const q[] = {"hrt"};
	struct srv sv;
	ruf_client *c;
	struct ruf_client_submit_result res;
	struct ruf_client_delivery dv;
	struct ruf_client_sink mem = {.fd = -1, .max_len = 1 << 20};
	ruf_directory *nd;
	ruf_diag d = {{0}};

	(void)state;
	srv_start(&sv, M_CHATTY, 2, 1, 0);
	assert_int_equal(dial(&sv, F.dev_raw, F.dev_len, dev_kx_sk, dir1, 0, &c, &d), 0);
	assert_int_equal(ruf_client_submit(c, env_fd, NULL, &res, &d), 0);
	ruf_client_submit_result_free(&res);
	nd = ruf_client_take_directory(c);
	assert_non_null(nd);
	assert_true(nd->version == 2);
	ruf_directory_free(nd);
	ruf_client_close(c);

	assert_int_equal(dial(&sv, F.desk_raw, F.desk_len, desk_kx_sk, dir1, 0, &c, &d), 0);
	assert_int_equal(ruf_client_subscribe(c, q, 1, 2, &d), 0);
	assert_int_equal(ruf_client_next_delivery(c, 10000, &mem, &dv, &d), 0);
	assert_memory_equal(dv.data, env, env_len);
	free(dv.data);
	nd = ruf_client_take_directory(c);
	assert_non_null(nd);
	ruf_directory_free(nd);
	ruf_client_close(c);
	srv_stop(&sv);
	assert_int_equal(sv.pongs, 2);
	assert_int_equal(sv.receipts, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_client_handshake_pings_and_takes_a_pushed_directory),
	    cmocka_unit_test(test_client_refuses_a_kx_key_that_is_not_its_certificates),
	    cmocka_unit_test(test_client_detects_a_server_without_the_directory_noise_key),
	    cmocka_unit_test(test_client_tries_the_next_noise_key_after_a_refusal),
	    cmocka_unit_test(test_client_connects_over_ipv6),
	    cmocka_unit_test(test_client_reports_connection_failures),
	    cmocka_unit_test(test_client_submit_gets_a_verified_receipt),
	    cmocka_unit_test(test_client_resumes_an_upload_after_a_cut),
	    cmocka_unit_test(test_client_maps_each_nack_and_a_mismatched_receipt),
	    cmocka_unit_test(test_client_reassembles_deliveries_and_acks),
	    cmocka_unit_test(test_client_refuses_deliveries_over_the_sink_limit),
	    cmocka_unit_test(test_client_reports_a_server_error_frame),
	    cmocka_unit_test(test_client_takes_a_duplicates_receipt_without_uploading),
	    cmocka_unit_test(test_client_stops_on_a_nack_before_the_last_chunk),
	    cmocka_unit_test(test_client_answers_pings_and_keeps_directory_updates_midstream),
	    cmocka_unit_test(test_client_split_hostport_refuses_what_is_not_host_port),
	    cmocka_unit_test(test_client_connect_any_fails_over_to_the_next_instance_in_order),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
