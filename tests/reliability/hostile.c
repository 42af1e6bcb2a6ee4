/*
 * hostile.c - hostile peers against a running rufd (tests/reliability/
 * test_hostile.sh starts rufd and a well-behaved client beside us).
 *
 *   hostile -s HOST:PORT -C CERTS -D DIRECTORY -p PASSFILE -r REPORT.json
 *           [-H HANDSHAKE_TIMEOUT] [-M MAX_CONNECTIONS] [-E MAX_ENVELOPE]
 *           [-b BOMB_ATTACHMENT] [-P RUFD_PID] [-X REVOKE_CMD] [CASE...]
 *
 * Every case is one misbehaving peer. It passes when rufd answers as the
 * protocol says (no answer at all before the peer is authenticated; an Error
 * frame with the right code, a Nack, or a Receipt after), closes the peer
 * where it must, and still completes a fresh handshake and ping afterwards.
 * Prints one TAP line per case; exit 0 iff every case passed.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cert.h"
#include "directory.h"
#include "envelope.h"
#include "keystore.h"
#include "noise.h"
#include "report.h"
#include "route.h"
#include "util.h"
#include "wire.h"

/* A test program that exits from anywhere: leaks at exit are expected. */
const char *__asan_default_options(void);
const char *
__asan_default_options(void)
{
	return "detect_leaks=0";
}

#define NOISE_NAME "Noise_IK_25519_ChaChaPoly_BLAKE2b"

struct ident {
	ruf_cert *cert;
	ruf_keystore *ks;
	const struct ruf_key *kx, *sign;
};

struct conn {
	int fd;
	ruf_noise_handshake hs;
	ruf_noise_cipher tx, rx;
	uint8_t msg1[RUF_WIRE_MAX_MSG1];
	size_t msg1_len;
};

static struct sockaddr_in server;
static const char *certs, *dirpath, *passfile, *report_json, *bomb_path, *revoke_cmd;
static int hs_timeout = 2, max_conn = 32;
static uint64_t max_envelope = 1048576;
static long rufd_pid;
static ruf_cert *root;
static ruf_directory *dir;
static struct ident dev, dev2, revoked, desk, desk_triage;
static struct ruf_report_input rin;
static uint8_t *report;
static size_t report_len;
static uint64_t sequence;
static char why[512];

#define FAIL(...)                                                                                  \
	do {                                                                                       \
		snprintf(why, sizeof(why), __VA_ARGS__);                                           \
		return -1;                                                                         \
	} while (0)
#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond))                                                                       \
			FAIL(__VA_ARGS__);                                                         \
	} while (0)

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "hostile: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(2);
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
load_ident(const char *name, struct ident *id)
{
	char path[1024], *pass = NULL;
	size_t passlen = 0;
	int rc;

	snprintf(path, sizeof(path), "%s/identities/%s/cert", certs, name);
	if ((rc = ruf_cert_load(path, &id->cert)) != 0)
		die("%s: %s", path, ruf_strerror(rc));
	if ((rc = ruf_passphrase_get("", passfile, NULL, false, &pass, &passlen)) != 0)
		die("passphrase: %s", ruf_strerror(rc));
	snprintf(path, sizeof(path), "%s/identities/%s/keystore", certs, name);
	if ((rc = ruf_keystore_load(path, pass, passlen, &id->ks)) != 0)
		die("%s: %s", path, ruf_strerror(rc));
	ruf_passphrase_free(pass, passlen);
	id->kx = ruf_keystore_find(id->ks, RUF_KEY_KX, RUF_KEYNAME_KX, 0);
	id->sign = ruf_keystore_find(id->ks, RUF_KEY_SIGN, RUF_KEYNAME_SIGN, 0);
	if (!id->kx || !id->sign)
		die("%s: keys missing", name);
}

/* ---- sockets ---- */

static int
c_open(struct conn *c)
{
	memset(c, 0, sizeof(*c));
	if ((c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		FAIL("socket: %s", strerror(errno));
	if (connect(c->fd, (struct sockaddr *)&server, sizeof(server)) != 0) {
		close(c->fd);
		c->fd = -1;
		FAIL("connect: %s", strerror(errno));
	}
	return 0;
}

static void
c_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	ruf_noise_handshake_wipe(&c->hs);
	ruf_noise_cipher_wipe(&c->tx);
	ruf_noise_cipher_wipe(&c->rx);
}

/* Writes everything; -1 if the peer is gone or the write stalls for 10 s. */
static int
raw_send(struct conn *c, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n > 0) {
		struct pollfd pf = {.fd = c->fd, .events = POLLOUT};
		ssize_t w;
		if (poll(&pf, 1, 10000) != 1)
			return -1;
		w = send(c->fd, b, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads exactly n bytes: 0, 1 closed (EOF or reset), 2 timeout. */
static int
raw_recv(struct conn *c, uint8_t *p, size_t n, int timeout_ms)
{
	uint64_t end = now_ms() + (uint64_t)timeout_ms;

	while (n > 0) {
		struct pollfd pf = {.fd = c->fd, .events = POLLIN};
		int64_t left = (int64_t)(end - now_ms());
		ssize_t r;
		if (left <= 0 || poll(&pf, 1, (int)left) == 0)
			return 2;
		r = recv(c->fd, p, n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return 1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static int
send_msg(struct conn *c, const uint8_t *m, size_t n)
{
	uint8_t h[2] = {(uint8_t)(n >> 8), (uint8_t)n};

	if (raw_send(c, h, 2) != 0 || raw_send(c, m, n) != 0)
		return -1;
	return 0;
}

/* 0 and a message, 1 closed, 2 timeout. */
static int
recv_msg(struct conn *c, uint8_t *buf, size_t *n, int timeout_ms)
{
	uint8_t h[2];
	int rc;

	if ((rc = raw_recv(c, h, 2, timeout_ms)) != 0)
		return rc;
	*n = (size_t)h[0] << 8 | h[1];
	if (*n == 0)
		return 1;
	return raw_recv(c, buf, *n, timeout_ms);
}

/* Waits for rufd to close: 0 if it did within timeout_ms (data discarded). */
static int
wait_closed(struct conn *c, int timeout_ms)
{
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	uint8_t buf[4096];

	for (;;) {
		struct pollfd pf = {.fd = c->fd, .events = POLLIN};
		int64_t left = (int64_t)(end - now_ms());
		ssize_t r;
		if (left <= 0 || poll(&pf, 1, (int)left) == 0)
			FAIL("rufd did not close the connection within %d ms", timeout_ms);
		r = recv(c->fd, buf, sizeof(buf), 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return 0;
	}
}

/* Closed, without having sent a single byte (no detail before authentication). */
static int
expect_silent_close(struct conn *c, int timeout_ms)
{
	uint8_t b;
	int rc = raw_recv(c, &b, 1, timeout_ms);

	CHECK(rc != 2, "rufd did not close the connection within %d ms", timeout_ms);
	CHECK(rc == 1, "rufd answered an unauthenticated peer");
	return 0;
}

/* ---- Noise, by hand where the peer must misbehave ---- */

static int
hello_payload(const struct ident *id, uint64_t ts, uint8_t *out, size_t *n)
{
	struct ruf_wire_hello h = {0};

	h.certificate = id->cert->raw;
	h.certificate_len = id->cert->rawlen;
	h.timestamp = ts;
	h.directory_version = dir->version;
	return ruf_wire_hello_encode(&h, out, RUF_WIRE_MAX_HELLO, n);
}

/* Message 1 through crypto/noise.h, with a chosen prologue and static key pair. */
static int
msg1_std(struct conn *c, const char *prologue, const uint8_t *sk, const uint8_t *pk,
         const uint8_t *rs, const uint8_t *payload, size_t plen)
{
	int rc;

	if ((rc = ruf_noise_handshake_init(&c->hs, true, (const uint8_t *)prologue,
	                                   strlen(prologue), sk, pk, rs)) != 0)
		FAIL("noise init: %s", ruf_strerror(rc));
	if ((rc = ruf_noise_write_message(&c->hs, payload, plen, c->msg1, sizeof(c->msg1),
	                                  &c->msg1_len)) != 0)
		FAIL("noise write: %s", ruf_strerror(rc));
	return 0;
}

/*
 * Message 1 assembled from the SymmetricState primitives so that any part
 * can be wrong: protocol name, ephemeral key (e_pk given: sent as is, the
 * es DH done with a random scalar), static key (s_pk sent as is, the ss DH
 * done with s_sk_for_dh).
 */
static void
msg1_manual(struct conn *c, const char *proto, const uint8_t *e_pk, const uint8_t *s_pk,
            const uint8_t *s_sk_for_dh, const uint8_t *payload, size_t plen)
{
	ruf_noise_symmetric ss;
	uint8_t e_sk[32], e_real[32], dh[32], *p = c->msg1;
	size_t n;

	ruf_noise_symmetric_init(&ss, proto);
	(void)ruf_noise_mix_hash(&ss, (const uint8_t *)RUF_WIRE_PROLOGUE, RUF_WIRE_PROLOGUE_LEN);
	(void)ruf_noise_mix_hash(&ss, dir->hq.noise_pk, 32);
	randombytes_buf(e_sk, 32);
	crypto_scalarmult_base(e_real, e_sk);
	if (!e_pk)
		e_pk = e_real;
	memcpy(p, e_pk, 32);
	p += 32;
	(void)ruf_noise_mix_hash(&ss, e_pk, 32);
	if (crypto_scalarmult(dh, e_sk, dir->hq.noise_pk) != 0)
		die("dh");
	(void)ruf_noise_mix_key(&ss, dh, 32);
	if (ruf_noise_encrypt_and_hash(&ss, s_pk, 32, p, 48, &n) != 0)
		die("enc s");
	p += n;
	if (crypto_scalarmult(dh, s_sk_for_dh, dir->hq.noise_pk) != 0)
		memset(dh, 0, 32);
	(void)ruf_noise_mix_key(&ss, dh, 32);
	if (ruf_noise_encrypt_and_hash(&ss, payload, plen, p,
	                               sizeof(c->msg1) - (size_t)(p - c->msg1), &n) != 0)
		die("enc payload");
	p += n;
	c->msg1_len = (size_t)(p - c->msg1);
	ruf_noise_symmetric_wipe(&ss);
	sodium_memzero(e_sk, sizeof(e_sk));
}

/* Reads message 2 and splits; 0 when the handshake is done. */
static int
read_welcome(struct conn *c)
{
	static uint8_t buf[RUF_WIRE_MAX_MSG], pl[RUF_WIRE_MAX_MSG];
	struct ruf_wire_welcome w = {0};
	size_t n, pn;
	int rc;

	if ((rc = recv_msg(c, buf, &n, 5000)) != 0)
		FAIL("no welcome (%s)", rc == 1 ? "closed" : "timeout");
	if ((rc = ruf_noise_read_message(&c->hs, buf, n, pl, sizeof(pl), &pn)) != 0)
		FAIL("welcome: %s", ruf_strerror(rc));
	if ((rc = ruf_wire_welcome_decode(pl, pn, &w)) != 0)
		FAIL("welcome payload: %s", ruf_strerror(rc));
	ruf_wire_welcome_clear(&w);
	if ((rc = ruf_noise_handshake_split(&c->hs, &c->tx, &c->rx)) != 0)
		FAIL("split: %s", ruf_strerror(rc));
	return 0;
}

/* A complete, valid handshake as id on a fresh connection. */
static int
handshake(struct conn *c, const struct ident *id)
{
	uint8_t pl[RUF_WIRE_MAX_HELLO];
	size_t pn;

	if (c_open(c) != 0)
		return -1;
	if (hello_payload(id, ruf_now(), pl, &pn) != 0 ||
	    msg1_std(c, RUF_WIRE_PROLOGUE, id->kx->sk, id->kx->pk, dir->hq.noise_pk, pl, pn) != 0)
		FAIL("building message 1");
	CHECK(send_msg(c, c->msg1, c->msg1_len) == 0, "sending message 1");
	return read_welcome(c);
}

/* Encrypts any plaintext as one transport message. */
static int
send_pt(struct conn *c, const uint8_t *pt, size_t n)
{
	static uint8_t out[RUF_WIRE_MAX_MSG];
	size_t on;

	CHECK(ruf_noise_cipher_encrypt(&c->tx, NULL, 0, pt, n, out, sizeof(out), &on) == 0,
	      "encrypt");
	CHECK(send_msg(c, out, on) == 0, "send failed");
	return 0;
}

static int
send_frame(struct conn *c, const struct ruf_wire_frame *f)
{
	static uint8_t pt[RUF_WIRE_MAX_FRAME];
	size_t n;
	int rc;

	if ((rc = ruf_wire_frame_encode(f, pt, sizeof(pt), &n)) != 0)
		FAIL("encode %s: %s", ruf_wire_type_name(f->type), ruf_strerror(rc));
	return send_pt(c, pt, n);
}

/* 0 and a frame, 1 closed, 2 timeout, -1 undecodable. */
static int
recv_frame(struct conn *c, struct ruf_wire_frame *f, int timeout_ms)
{
	static uint8_t buf[RUF_WIRE_MAX_MSG];
	size_t n, pn;
	int rc;

	if ((rc = recv_msg(c, buf, &n, timeout_ms)) != 0)
		return rc;
	if (ruf_noise_cipher_decrypt(&c->rx, NULL, 0, buf, n, buf, sizeof(buf), &pn) != 0)
		FAIL("a message from rufd does not decrypt");
	if (ruf_wire_frame_decode(buf, pn, f) != 0)
		FAIL("a frame from rufd does not decode");
	return 0;
}

/* Skips pongs and directory updates; wants an Error frame with code, then the close. */
static int
expect_error(struct conn *c, uint32_t code)
{
	for (;;) {
		struct ruf_wire_frame f = {0};
		int rc = recv_frame(c, &f, 5000);
		if (rc == -1)
			return -1;
		CHECK(rc != 1, "closed without an Error frame");
		CHECK(rc != 2, "no Error frame within 5 s");
		if (f.type == RUF_WIRE_PONG || f.type == RUF_WIRE_DIRECTORY_UPDATE ||
		    f.type == RUF_WIRE_SUBMIT_STATUS) {
			ruf_wire_frame_clear(&f);
			continue;
		}
		if (f.type != RUF_WIRE_ERROR) {
			snprintf(why, sizeof(why), "got %s instead of an Error frame",
			         ruf_wire_type_name(f.type));
			ruf_wire_frame_clear(&f);
			return -1;
		}
		if (f.u.error.code != code) {
			snprintf(why, sizeof(why), "Error code %u (%s), wanted %u", f.u.error.code,
			         f.u.error.text ? f.u.error.text : "", code);
			ruf_wire_frame_clear(&f);
			return -1;
		}
		ruf_wire_frame_clear(&f);
		return wait_closed(c, 5000);
	}
}

static int
ping(struct conn *c, uint64_t nonce)
{
	struct ruf_wire_frame f = {.type = RUF_WIRE_PING}, r = {0};
	int rc;

	f.u.ping.nonce = nonce;
	if (send_frame(c, &f) != 0)
		return -1;
	if ((rc = recv_frame(c, &r, 5000)) != 0)
		FAIL("no pong (%d)", rc);
	rc = r.type == RUF_WIRE_PONG && r.u.ping.nonce == nonce;
	ruf_wire_frame_clear(&r);
	CHECK(rc, "answer to a ping is not its pong");
	return 0;
}

/* ---- envelopes ---- */

struct env {
	uint8_t *b;
	size_t n;
	uint8_t id[16];
	uint8_t hash[32];
};

struct seal_opts {
	const struct ident *who;
	int kind;
	const char *situation, *country, *reply_device;
	const char *extra_queue; /* an extra wrap, or NULL */
	const char *drop_queue;  /* a routed queue left out, or NULL */
	const char *attach;      /* attachment path, or NULL */
};

static void
env_rehash(struct env *e)
{
	crypto_generichash(e->hash, 32, e->b, e->n, NULL, 0);
}

static int
seal(const struct seal_opts *o, struct env *e)
{
	struct ruf_env_header hdr;
	struct ruf_route_header rh;
	struct ruf_queue_set qs = {0};
	struct ruf_seal_recipient rc_[RUF_ROUTE_MAX_QUEUES + 1];
	struct ruf_seal_attachment att = {"blob.bin", "application/octet-stream", o->attach};
	char inbox[RUF_QUEUE_NAME_MAX + 1];
	size_t nr = 0;
	off_t end;
	int fd, rc;

	if (ruf_report_route_header(rin.report, &rh) != 0)
		die("route header");
	memset(&hdr, 0, sizeof(hdr));
	hdr.created = ruf_now();
	hdr.sequence = ++sequence;
	hdr.device_serial = o->who->cert->serial;
	hdr.kind = o->kind ? o->kind : rh.kind;
	hdr.risk = rh.risk;
	hdr.flags = rh.flags;
	hdr.directory_version = dir->version;
	snprintf(hdr.situation, sizeof(hdr.situation), "%s",
	         o->situation ? o->situation : rh.situation);
	snprintf(hdr.country, sizeof(hdr.country), "%s", o->country ? o->country : rh.country);
	snprintf(hdr.region, sizeof(hdr.region), "%s", rh.region);
	if (hdr.kind == RUF_KIND_REPLY) {
		const struct ruf_dir_queue *t = ruf_directory_queue(dir, "triage");
		hdr.risk = 0;
		hdr.flags = 0;
		snprintf(hdr.reply_device, sizeof(hdr.reply_device), "%s", o->reply_device);
		randombytes_buf(hdr.reply_to, sizeof(hdr.reply_to));
		snprintf(inbox, sizeof(inbox), "inbox.%s", o->reply_device);
		rc_[nr++] = (struct ruf_seal_recipient){inbox, 1, t->pk};
	} else {
		ruf_env_route_header(&hdr, &rh);
		if (ruf_route_eval(dir->policy, &rh, &qs) != 0)
			die("route");
		for (size_t i = 0; i < qs.n; i++) {
			const struct ruf_dir_queue *q = ruf_directory_queue(dir, qs.names[i]);
			if (o->drop_queue && strcmp(o->drop_queue, qs.names[i]) == 0)
				continue;
			rc_[nr++] = (struct ruf_seal_recipient){q->name, q->epoch, q->pk};
		}
		if (o->extra_queue) {
			const struct ruf_dir_queue *q = ruf_directory_queue(dir, o->extra_queue);
			rc_[nr++] = (struct ruf_seal_recipient){q->name, q->epoch, q->pk};
		}
	}
	struct ruf_seal_params p = {
	    .hdr = &hdr,
	    .report = report,
	    .report_len = report_len,
	    .attachments = o->attach ? &att : NULL,
	    .n_attachments = o->attach ? 1 : 0,
	    .recipients = rc_,
	    .n_recipients = nr,
	    .device_cert = o->who->cert->raw,
	    .device_cert_len = o->who->cert->rawlen,
	    .sign_sk = o->who->sign->sk,
	};
	if ((fd = memfd_create("env", MFD_CLOEXEC)) < 0)
		die("memfd: %s", strerror(errno));
	if ((rc = ruf_envelope_seal(&p, fd, e->id, NULL)) != 0)
		FAIL("seal: %s", ruf_strerror(rc));
	end = lseek(fd, 0, SEEK_END);
	e->n = (size_t)end;
	e->b = mmap(NULL, e->n, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	close(fd);
	if (e->b == MAP_FAILED)
		die("mmap");
	env_rehash(e);
	return 0;
}

static struct env
good_env(void)
{
	struct seal_opts o = {.who = &dev};
	struct env e;

	if (seal(&o, &e) != 0)
		die("%s", why);
	return e;
}

static void
env_free(struct env *e)
{
	munmap(e->b, e->n);
}

static int
offer(struct conn *c, const uint8_t *id, uint64_t total, const uint8_t *hash)
{
	struct ruf_wire_frame f = {.type = RUF_WIRE_SUBMIT_OFFER};

	memcpy(f.u.offer.message_id, id, 16);
	f.u.offer.total_len = total;
	memcpy(f.u.offer.hash, hash, 32);
	return send_frame(c, &f);
}

static int
chunk(struct conn *c, const uint8_t *id, uint64_t off, const uint8_t *data, size_t n)
{
	struct ruf_wire_frame f = {.type = RUF_WIRE_SUBMIT_CHUNK};

	memcpy(f.u.chunk.message_id, id, 16);
	f.u.chunk.offset = off;
	f.u.chunk.data = data;
	f.u.chunk.len = n;
	return send_frame(c, &f);
}

/*
 * Offers and uploads e (from what rufd holds), returns the final frame in *r:
 * Receipt, Nack or Error. 0, or -1 with why.
 */
static int
submit(struct conn *c, const struct env *e, struct ruf_wire_frame *r)
{
	uint64_t have;
	int rc;

	if (offer(c, e->id, e->n, e->hash) != 0)
		return -1;
	if ((rc = recv_frame(c, r, 10000)) != 0)
		FAIL("no answer to the offer (%d)", rc);
	if (r->type != RUF_WIRE_SUBMIT_STATUS)
		return 0;
	have = r->u.status.have;
	ruf_wire_frame_clear(r);
	while (have < e->n) {
		size_t k = e->n - have > 32768 ? 32768 : e->n - have;
		if (chunk(c, e->id, have, e->b + have, k) != 0)
			return -1;
		have += k;
	}
	if ((rc = recv_frame(c, r, 20000)) != 0)
		FAIL("no answer to the upload (%d)", rc);
	return 0;
}

/* Submits e on a fresh connection as who and wants a Nack with reason. */
static int
expect_nack(const struct ident *who, const struct env *e, uint32_t reason)
{
	struct conn c;
	struct ruf_wire_frame r = {0};
	int rc;

	if (handshake(&c, who) != 0 || submit(&c, e, &r) != 0) {
		c_close(&c);
		return -1;
	}
	rc = r.type == RUF_WIRE_NACK && r.u.nack.reason == reason;
	if (!rc)
		snprintf(why, sizeof(why), "got %s (reason %u), wanted Nack reason %u",
		         ruf_wire_type_name(r.type),
		         r.type == RUF_WIRE_NACK    ? r.u.nack.reason
		         : r.type == RUF_WIRE_ERROR ? r.u.error.code
		                                    : 0,
		         reason);
	ruf_wire_frame_clear(&r);
	/* The connection stays usable after a Nack. */
	if (rc && ping(&c, 5) != 0)
		rc = 0;
	c_close(&c);
	return rc ? 0 : -1;
}

/* Submits e as who on a fresh connection and wants a Receipt. */
static int
expect_receipt(const struct ident *who, const struct env *e)
{
	struct conn c;
	struct ruf_wire_frame r = {0};
	int ok;

	if (handshake(&c, who) != 0 || submit(&c, e, &r) != 0) {
		c_close(&c);
		return -1;
	}
	ok = r.type == RUF_WIRE_RECEIPT;
	if (!ok)
		snprintf(why, sizeof(why), "got %s (%u) instead of a Receipt",
		         ruf_wire_type_name(r.type),
		         r.type == RUF_WIRE_NACK    ? r.u.nack.reason
		         : r.type == RUF_WIRE_ERROR ? r.u.error.code
		                                    : 0);
	ruf_wire_frame_clear(&r);
	c_close(&c);
	return ok ? 0 : -1;
}

/* ---- the cases ---- */

/* Sends raw bytes as the very first thing and wants a silent close. */
static int
raw_first(const void *b, size_t n, int timeout_ms)
{
	struct conn c;
	int rc;

	if (c_open(&c) != 0)
		return -1;
	if (raw_send(&c, b, n) != 0) {
		c_close(&c);
		return 0; /* already closed: fine */
	}
	rc = expect_silent_close(&c, timeout_ms);
	c_close(&c);
	return rc;
}

#define PROMPT 3000 /* ms: "at once", for refusals that need no timer */
#define HS_WAIT ((hs_timeout + 3) * 1000)

static int
t_http_request(void)
{
	const char *req = "GET / HTTP/1.1\r\nHost: rufd\r\n\r\n";
	return raw_first(req, strlen(req), PROMPT);
}

static int
t_garbage_message1(void)
{
	uint8_t b[2 + 200];
	b[0] = 0;
	b[1] = 200;
	randombytes_buf(b + 2, 200);
	return raw_first(b, sizeof(b), PROMPT);
}

static int
t_tls_client_hello(void)
{
	/* A TLS record header: length 0x1603 bytes follow (in rufd's framing). */
	uint8_t b[0x1603 + 2];
	randombytes_buf(b, sizeof(b));
	b[0] = 0x16;
	b[1] = 0x03;
	return raw_first(b, sizeof(b), PROMPT);
}

static int
t_zero_length_message1(void)
{
	uint8_t b[2] = {0, 0};
	return raw_first(b, 2, PROMPT);
}

static int
t_length_65535_before_auth(void)
{
	uint8_t b[2] = {0xff, 0xff};
	return raw_first(b, 2, PROMPT);
}

static int
t_message1_one_byte_over_limit(void)
{
	static uint8_t b[RUF_WIRE_MAX_MSG1 + 3];
	b[0] = (RUF_WIRE_MAX_MSG1 + 1) >> 8;
	b[1] = (RUF_WIRE_MAX_MSG1 + 1) & 0xff;
	randombytes_buf(b + 2, sizeof(b) - 2);
	return raw_first(b, sizeof(b), PROMPT);
}

static int
t_message1_shorter_than_noise_overhead(void)
{
	uint8_t b[2 + 40] = {0, 40};
	randombytes_buf(b + 2, 40);
	return raw_first(b, sizeof(b), PROMPT);
}

static int
t_truncated_message1_then_eof(void)
{
	struct conn c;
	uint8_t pl[RUF_WIRE_MAX_HELLO];
	size_t pn;
	int rc;

	if (c_open(&c) != 0)
		return -1;
	if (hello_payload(&dev, ruf_now(), pl, &pn) != 0 ||
	    msg1_std(&c, RUF_WIRE_PROLOGUE, dev.kx->sk, dev.kx->pk, dir->hq.noise_pk, pl, pn) != 0)
		return -1;
	uint8_t h[2] = {(uint8_t)(c.msg1_len >> 8), (uint8_t)c.msg1_len};
	(void)raw_send(&c, h, 2);
	(void)raw_send(&c, c.msg1, c.msg1_len / 2);
	shutdown(c.fd, SHUT_WR);
	rc = expect_silent_close(&c, PROMPT);
	c_close(&c);
	return rc;
}

static int
t_truncated_message1_then_silence(void)
{
	struct conn c;
	uint8_t pl[RUF_WIRE_MAX_HELLO];
	size_t pn;
	uint64_t t0;
	int rc;

	if (c_open(&c) != 0)
		return -1;
	if (hello_payload(&dev, ruf_now(), pl, &pn) != 0 ||
	    msg1_std(&c, RUF_WIRE_PROLOGUE, dev.kx->sk, dev.kx->pk, dir->hq.noise_pk, pl, pn) != 0)
		return -1;
	uint8_t h[2] = {(uint8_t)(c.msg1_len >> 8), (uint8_t)c.msg1_len};
	t0 = now_ms();
	(void)raw_send(&c, h, 2);
	(void)raw_send(&c, c.msg1, c.msg1_len - 1);
	rc = expect_silent_close(&c, HS_WAIT);
	c_close(&c);
	if (rc == 0 && now_ms() - t0 + 500 < (uint64_t)hs_timeout * 1000)
		FAIL("closed before the handshake timeout (%llu ms)",
		     (unsigned long long)(now_ms() - t0));
	return rc;
}

static int
t_silent_peer_handshake_timeout(void)
{
	struct conn c;
	int rc;

	if (c_open(&c) != 0)
		return -1;
	rc = expect_silent_close(&c, HS_WAIT);
	c_close(&c);
	return rc;
}

static int
t_slow_drip_message1(void)
{
	struct conn c;
	uint8_t pl[RUF_WIRE_MAX_HELLO];
	size_t pn, sent = 0;
	uint64_t t0 = now_ms();

	if (c_open(&c) != 0)
		return -1;
	if (hello_payload(&dev, ruf_now(), pl, &pn) != 0 ||
	    msg1_std(&c, RUF_WIRE_PROLOGUE, dev.kx->sk, dev.kx->pk, dir->hq.noise_pk, pl, pn) != 0)
		return -1;
	uint8_t h[2] = {(uint8_t)(c.msg1_len >> 8), (uint8_t)c.msg1_len};
	(void)raw_send(&c, h, 2);
	/* One byte every 200 ms: the whole message would take minutes. */
	while (sent < c.msg1_len) {
		struct pollfd pf = {.fd = c.fd, .events = POLLIN};
		if (poll(&pf, 1, 200) == 1) {
			uint8_t b;
			ssize_t r = recv(c.fd, &b, 1, 0);
			c_close(&c);
			CHECK(r <= 0, "rufd answered a dripping peer");
			CHECK(now_ms() - t0 < (uint64_t)HS_WAIT, "closed only after %llu ms",
			      (unsigned long long)(now_ms() - t0));
			return 0;
		}
		if (raw_send(&c, c.msg1 + sent, 1) != 0)
			break;
		sent++;
		if (now_ms() - t0 > (uint64_t)HS_WAIT * 2)
			break;
	}
	c_close(&c);
	FAIL("a peer dripping message 1 was not closed (%zu bytes sent)", sent);
}

static int
t_wrong_prologue(void)
{
	struct conn c;
	uint8_t pl[RUF_WIRE_MAX_HELLO];
	size_t pn;
	int rc;

	if (c_open(&c) != 0)
		return -1;
	if (hello_payload(&dev, ruf_now(), pl, &pn) != 0 ||
	    msg1_std(&c, "ruf/2", dev.kx->sk, dev.kx->pk, dir->hq.noise_pk, pl, pn) != 0)
		return -1;
	(void)send_msg(&c, c.msg1, c.msg1_len);
	rc = expect_silent_close(&c, PROMPT);
	c_close(&c);
	return rc;
}

static int
manual_case(const char *proto, const uint8_t *e_pk, const uint8_t *s_pk, const uint8_t *s_sk)
{
	struct conn c;
	uint8_t pl[RUF_WIRE_MAX_HELLO];
	size_t pn;
	int rc;

	if (c_open(&c) != 0)
		return -1;
	if (hello_payload(&dev, ruf_now(), pl, &pn) != 0)
		return -1;
	msg1_manual(&c, proto, e_pk, s_pk, s_sk, pl, pn);
	(void)send_msg(&c, c.msg1, c.msg1_len);
	rc = expect_silent_close(&c, PROMPT);
	c_close(&c);
	return rc;
}

static int
t_manual_message1_is_accepted(void)
{
	/* The hand-built message 1 is right when nothing is wrong: a control. */
	struct conn c;
	uint8_t pl[RUF_WIRE_MAX_HELLO], buf[RUF_WIRE_MAX_MSG];
	size_t pn, n;
	int rc;

	if (c_open(&c) != 0)
		return -1;
	if (hello_payload(&dev, ruf_now(), pl, &pn) != 0)
		return -1;
	msg1_manual(&c, NOISE_NAME, NULL, dev.kx->pk, dev.kx->sk, pl, pn);
	(void)send_msg(&c, c.msg1, c.msg1_len);
	rc = recv_msg(&c, buf, &n, PROMPT);
	c_close(&c);
	CHECK(rc == 0, "no message 2 for a correct hand-built message 1");
	return 0;
}

static int
t_wrong_protocol_name(void)
{
	return manual_case("Noise_IK_25519_AESGCM_SHA256", NULL, dev.kx->pk, dev.kx->sk);
}

static const uint8_t small_order[][32] = {
    {0},
    {1},
    {0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3,
     0xfa, 0xf1, 0x9f, 0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32,
     0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00},
    {0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
};

static int
t_all_zero_ephemeral(void)
{
	return manual_case(NOISE_NAME, small_order[0], dev.kx->pk, dev.kx->sk);
}

static int
t_small_order_ephemeral(void)
{
	for (size_t i = 1; i < sizeof(small_order) / 32; i++)
		if (manual_case(NOISE_NAME, small_order[i], dev.kx->pk, dev.kx->sk) != 0)
			return -1;
	return 0;
}

static int
t_all_zero_static(void)
{
	uint8_t junk[32];
	randombytes_buf(junk, 32);
	return manual_case(NOISE_NAME, NULL, small_order[0], junk);
}

static int
t_small_order_static(void)
{
	uint8_t junk[32];
	randombytes_buf(junk, 32);
	for (size_t i = 1; i < sizeof(small_order) / 32; i++)
		if (manual_case(NOISE_NAME, NULL, small_order[i], junk) != 0)
			return -1;
	return 0;
}

static int
t_wrong_server_key(void)
{
	struct conn c;
	uint8_t pl[RUF_WIRE_MAX_HELLO];
	size_t pn;
	int rc;

	if (c_open(&c) != 0)
		return -1;
	if (hello_payload(&dev, ruf_now(), pl, &pn) != 0 ||
	    msg1_std(&c, RUF_WIRE_PROLOGUE, dev.kx->sk, dev.kx->pk, dev2.kx->pk, pl, pn) != 0)
		return -1;
	(void)send_msg(&c, c.msg1, c.msg1_len);
	rc = expect_silent_close(&c, PROMPT);
	c_close(&c);
	return rc;
}

/* A valid message 1 except for the hello (cert, its key, time). */
static int
hello_case(const struct ident *cert_of, const struct ident *keys_of, uint64_t ts,
           const uint8_t *payload_override, size_t override_len)
{
	struct conn c;
	uint8_t pl[RUF_WIRE_MAX_HELLO];
	size_t pn;
	int rc;

	if (c_open(&c) != 0)
		return -1;
	if (payload_override) {
		memcpy(pl, payload_override, override_len);
		pn = override_len;
	} else if (hello_payload(cert_of, ts, pl, &pn) != 0)
		FAIL("hello encode");
	if (msg1_std(&c, RUF_WIRE_PROLOGUE, keys_of->kx->sk, keys_of->kx->pk, dir->hq.noise_pk, pl,
	             pn) != 0)
		return -1;
	(void)send_msg(&c, c.msg1, c.msg1_len);
	rc = expect_silent_close(&c, PROMPT);
	c_close(&c);
	return rc;
}

static int
t_certificate_of_another_key(void)
{
	return hello_case(&dev, &dev2, ruf_now(), NULL, 0);
}

static int
t_revoked_device_handshake(void)
{
	return hello_case(&revoked, &revoked, ruf_now(), NULL, 0);
}

static int
t_clock_one_day_behind(void)
{
	return hello_case(&dev, &dev, ruf_now() - 86400, NULL, 0);
}

static int
t_clock_one_day_ahead(void)
{
	return hello_case(&dev, &dev, ruf_now() + 86400, NULL, 0);
}

static int
t_hello_not_protobuf(void)
{
	uint8_t junk[300];
	randombytes_buf(junk, sizeof(junk));
	return hello_case(&dev, &dev, 0, junk, sizeof(junk));
}

static int
t_hello_garbage_certificate(void)
{
	uint8_t cert[400], pl[RUF_WIRE_MAX_HELLO];
	struct ruf_wire_hello h = {0};
	size_t pn;

	randombytes_buf(cert, sizeof(cert));
	h.certificate = cert;
	h.certificate_len = sizeof(cert);
	h.timestamp = ruf_now();
	if (ruf_wire_hello_encode(&h, pl, sizeof(pl), &pn) != 0)
		FAIL("encode");
	return hello_case(&dev, &dev, 0, pl, pn);
}

static int
t_hello_root_certificate(void)
{
	uint8_t pl[RUF_WIRE_MAX_HELLO];
	struct ruf_wire_hello h = {0};
	size_t pn;

	h.certificate = root->raw;
	h.certificate_len = root->rawlen;
	h.timestamp = ruf_now();
	if (ruf_wire_hello_encode(&h, pl, sizeof(pl), &pn) != 0)
		FAIL("encode");
	return hello_case(&dev, &dev, 0, pl, pn);
}

static int
t_hello_unknown_field(void)
{
	uint8_t pl[RUF_WIRE_MAX_HELLO];
	size_t pn;

	if (hello_payload(&dev, ruf_now(), pl, &pn) != 0)
		FAIL("encode");
	pl[pn++] = (15 << 3) | 0; /* field 15, varint 1 */
	pl[pn++] = 1;
	return hello_case(&dev, &dev, 0, pl, pn);
}

static int
t_replayed_message1(void)
{
	struct conn a, b;
	uint8_t buf[RUF_WIRE_MAX_MSG], junk[64];
	size_t n;
	int rc;

	if (handshake(&a, &dev) != 0)
		return -1;
	if (ping(&a, 1) != 0)
		return -1;
	if (c_open(&b) != 0)
		return -1;
	/* The replay gets a message 2 (rufd cannot tell yet) that b cannot read... */
	(void)send_msg(&b, a.msg1, a.msg1_len);
	rc = recv_msg(&b, buf, &n, PROMPT);
	if (rc == 0) {
		/* ...and anything b sends next fails to open: closed, nothing done. */
		randombytes_buf(junk, sizeof(junk));
		(void)send_msg(&b, junk, sizeof(junk));
		rc = expect_silent_close(&b, PROMPT);
	} else {
		rc = rc == 1 ? 0 : -1;
	}
	c_close(&a);
	c_close(&b);
	return rc;
}

static int
t_replayed_message1_then_silence(void)
{
	struct conn a, b;
	uint8_t buf[RUF_WIRE_MAX_MSG];
	size_t n;
	int rc;

	if (handshake(&a, &dev) != 0)
		return -1;
	c_close(&a);
	if (c_open(&b) != 0)
		return -1;
	(void)send_msg(&b, a.msg1, a.msg1_len);
	rc = recv_msg(&b, buf, &n, PROMPT);
	rc = rc == 1 ? 0 : rc == 0 ? expect_silent_close(&b, HS_WAIT) : -1;
	c_close(&b);
	if (rc != 0 && !why[0])
		FAIL("replay not closed");
	return rc;
}

static int
t_handshake_then_no_transport(void)
{
	struct conn c;
	int rc;

	if (handshake(&c, &dev) != 0)
		return -1;
	rc = expect_silent_close(&c, HS_WAIT);
	c_close(&c);
	return rc;
}

static int
t_first_transport_message_garbage(void)
{
	struct conn c;
	uint8_t junk[100];
	int rc;

	if (handshake(&c, &dev) != 0)
		return -1;
	randombytes_buf(junk, sizeof(junk));
	(void)send_msg(&c, junk, sizeof(junk));
	rc = expect_silent_close(&c, PROMPT);
	c_close(&c);
	return rc;
}

static int
t_tampered_transport_message(void)
{
	struct conn c;
	static uint8_t pt[64], out[RUF_WIRE_MAX_MSG];
	struct ruf_wire_frame f = {.type = RUF_WIRE_PING};
	size_t n, on;
	int rc;

	if (handshake(&c, &dev) != 0 || ping(&c, 1) != 0)
		return -1;
	f.u.ping.nonce = 2;
	if (ruf_wire_frame_encode(&f, pt, sizeof(pt), &n) != 0 ||
	    ruf_noise_cipher_encrypt(&c.tx, NULL, 0, pt, n, out, sizeof(out), &on) != 0)
		FAIL("encode");
	out[0] ^= 1;
	(void)send_msg(&c, out, on);
	rc = wait_closed(&c, PROMPT);
	c_close(&c);
	return rc;
}

static int
t_reordered_transport_messages(void)
{
	struct conn c;
	static uint8_t pt[64], m1[128], m2[128];
	struct ruf_wire_frame f = {.type = RUF_WIRE_PING};
	size_t n, n1, n2;
	int rc;

	if (handshake(&c, &dev) != 0 || ping(&c, 1) != 0)
		return -1;
	f.u.ping.nonce = 2;
	if (ruf_wire_frame_encode(&f, pt, sizeof(pt), &n) != 0 ||
	    ruf_noise_cipher_encrypt(&c.tx, NULL, 0, pt, n, m1, sizeof(m1), &n1) != 0 ||
	    ruf_noise_cipher_encrypt(&c.tx, NULL, 0, pt, n, m2, sizeof(m2), &n2) != 0)
		FAIL("encode");
	(void)send_msg(&c, m2, n2);
	rc = wait_closed(&c, PROMPT);
	c_close(&c);
	return rc;
}

/* After a good handshake and ping: send the plaintext pt as a frame, want Error code. */
static int
bad_plaintext(const uint8_t *pt, size_t n, uint32_t code)
{
	struct conn c;
	int rc;

	if (handshake(&c, &dev) != 0 || ping(&c, 1) != 0)
		return -1;
	if (send_pt(&c, pt, n) != 0)
		return -1;
	rc = expect_error(&c, code);
	c_close(&c);
	return rc;
}

static int
t_zero_length_after_handshake(void)
{
	struct conn c;
	uint8_t z[2] = {0, 0};
	int rc;

	if (handshake(&c, &dev) != 0 || ping(&c, 1) != 0)
		return -1;
	(void)raw_send(&c, z, 2);
	rc = expect_error(&c, RUF_WIRE_ERR_PROTOCOL);
	c_close(&c);
	return rc;
}

static int
t_transport_shorter_than_tag(void)
{
	struct conn c;
	uint8_t junk[5] = {1, 2, 3, 4, 5};
	int rc;

	if (handshake(&c, &dev) != 0 || ping(&c, 1) != 0)
		return -1;
	(void)send_msg(&c, junk, sizeof(junk));
	rc = wait_closed(&c, PROMPT);
	c_close(&c);
	return rc;
}

static int
t_empty_frame(void)
{
	return bad_plaintext((const uint8_t *)"", 0, RUF_WIRE_ERR_PROTOCOL);
}

static int
t_frame_not_protobuf(void)
{
	uint8_t junk[64];
	randombytes_buf(junk, sizeof(junk));
	junk[0] = 0xff; /* field 31, wire type 7: never valid */
	return bad_plaintext(junk, sizeof(junk), RUF_WIRE_ERR_PROTOCOL);
}

static int
t_frame_unknown_field(void)
{
	/* ping { nonce 1 } plus field 99 (varint) at the top level */
	uint8_t pt[] = {0x0a, 0x02, 0x08, 0x01, 0x98, 0x06, 0x01};
	return bad_plaintext(pt, sizeof(pt), RUF_WIRE_ERR_PROTOCOL);
}

static int
t_frame_unknown_field_inside_body(void)
{
	uint8_t pt[] = {0x0a, 0x04, 0x08, 0x01, 0x10, 0x01};
	return bad_plaintext(pt, sizeof(pt), RUF_WIRE_ERR_PROTOCOL);
}

static int
t_frame_unknown_type(void)
{
	uint8_t pt[] = {0x6a, 0x02, 0x08, 0x01}; /* field 13 */
	return bad_plaintext(pt, sizeof(pt), RUF_WIRE_ERR_PROTOCOL);
}

static int
t_frame_two_bodies(void)
{
	uint8_t pt[] = {0x0a, 0x02, 0x08, 0x01, 0x12, 0x02, 0x08, 0x01};
	return bad_plaintext(pt, sizeof(pt), RUF_WIRE_ERR_PROTOCOL);
}

static int
t_frame_non_canonical_varint(void)
{
	uint8_t pt[] = {0x0a, 0x03, 0x08, 0x81, 0x00};
	return bad_plaintext(pt, sizeof(pt), RUF_WIRE_ERR_PROTOCOL);
}

static int
t_frame_truncated(void)
{
	uint8_t pt[] = {0x0a, 0x05, 0x08, 0x01};
	return bad_plaintext(pt, sizeof(pt), RUF_WIRE_ERR_PROTOCOL);
}

static int
t_frame_length_overflow(void)
{
	uint8_t pt[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x08, 0x01};
	return bad_plaintext(pt, sizeof(pt), RUF_WIRE_ERR_PROTOCOL);
}

/* A frame only rufd may send, sent by the client. */
static int
server_frame(int type)
{
	static uint8_t body[64];
	struct ruf_wire_frame f = {.type = type};
	struct conn c;
	int rc;

	switch (type) {
	case RUF_WIRE_SUBMIT_STATUS:
		f.u.status.have = 0;
		break;
	case RUF_WIRE_RECEIPT:
		f.u.receipt.raw =
		    (const uint8_t
		         *)"\x0a\x01\x00\x12\x40"
		           "0123456789012345678901234567890123456789012345678901234567890123";
		f.u.receipt.raw_len = 5 + 64;
		break;
	case RUF_WIRE_NACK:
		f.u.nack.reason = RUF_WIRE_NACK_REJECTED;
		break;
	case RUF_WIRE_DELIVER:
		f.u.deliver.queue = "hrt";
		f.u.deliver.seq = 1;
		f.u.deliver.total_len = 10;
		f.u.deliver.data = body;
		f.u.deliver.len = 10;
		f.u.deliver.last = true;
		break;
	case RUF_WIRE_DIRECTORY_UPDATE:
		f.u.directory_update.directory = dir->raw;
		f.u.directory_update.len = dir->rawlen;
		break;
	default:
		break;
	}
	if (handshake(&c, &dev) != 0 || ping(&c, 1) != 0)
		return -1;
	if (send_frame(&c, &f) != 0)
		return -1;
	rc = expect_error(&c, RUF_WIRE_ERR_PROTOCOL);
	c_close(&c);
	return rc;
}

static int
t_client_sends_submit_status(void)
{
	return server_frame(RUF_WIRE_SUBMIT_STATUS);
}
static int
t_client_sends_receipt(void)
{
	return server_frame(RUF_WIRE_RECEIPT);
}
static int
t_client_sends_nack(void)
{
	return server_frame(RUF_WIRE_NACK);
}
static int
t_client_sends_deliver(void)
{
	return server_frame(RUF_WIRE_DELIVER);
}
static int
t_client_sends_directory_update(void)
{
	return server_frame(RUF_WIRE_DIRECTORY_UPDATE);
}

static int
t_client_error_frame_closes(void)
{
	struct ruf_wire_frame f = {.type = RUF_WIRE_ERROR};
	struct conn c;
	int rc;

	f.u.error.code = 1;
	f.u.error.text = "hostile";
	if (handshake(&c, &dev) != 0 || ping(&c, 1) != 0 || send_frame(&c, &f) != 0)
		return -1;
	rc = wait_closed(&c, PROMPT);
	c_close(&c);
	return rc;
}

/* An offer frame built by hand (ruf_wire_frame_encode refuses bad ones). */
static int
t_offer_zero_length(void)
{
	uint8_t pt[64], *p = pt;
	*p++ = 0x22; /* field 4 submit_offer */
	*p++ = 2 + 16 + 2 + 2 + 32;
	*p++ = 0x0a, *p++ = 16;
	randombytes_buf(p, 16), p += 16;
	*p++ = 0x10, *p++ = 0x00; /* total_len 0: non-canonical too */
	*p++ = 0x1a, *p++ = 32;
	randombytes_buf(p, 32), p += 32;
	pt[1] = (uint8_t)(p - pt - 2);
	return bad_plaintext(pt, (size_t)(p - pt), RUF_WIRE_ERR_PROTOCOL);
}

static int
t_offer_short_message_id(void)
{
	uint8_t pt[64], *p = pt;
	*p++ = 0x22, *p++ = 0;
	*p++ = 0x0a, *p++ = 8;
	randombytes_buf(p, 8), p += 8;
	*p++ = 0x10, *p++ = 0x05;
	*p++ = 0x1a, *p++ = 32;
	randombytes_buf(p, 32), p += 32;
	pt[1] = (uint8_t)(p - pt - 2);
	return bad_plaintext(pt, (size_t)(p - pt), RUF_WIRE_ERR_PROTOCOL);
}

static int
t_offer_beyond_wire_limit(void)
{
	uint8_t pt[80], *p = pt;
	uint64_t v = RUF_WIRE_MAX_ENVELOPE + 1;
	*p++ = 0x22, *p++ = 0;
	*p++ = 0x0a, *p++ = 16;
	randombytes_buf(p, 16), p += 16;
	*p++ = 0x10;
	while (v >= 0x80)
		*p++ = (uint8_t)(v | 0x80), v >>= 7;
	*p++ = (uint8_t)v;
	*p++ = 0x1a, *p++ = 32;
	randombytes_buf(p, 32), p += 32;
	pt[1] = (uint8_t)(p - pt - 2);
	return bad_plaintext(pt, (size_t)(p - pt), RUF_WIRE_ERR_PROTOCOL);
}

static int
t_huge_attachment_beyond_max_envelope(void)
{
	struct env e = {0};
	randombytes_buf(e.id, 16);
	randombytes_buf(e.hash, 32);
	e.n = (size_t)max_envelope + 1;
	/* Only the offer goes out: rufd refuses before a byte is uploaded. */
	struct conn c;
	struct ruf_wire_frame r = {0};
	int ok;

	if (handshake(&c, &dev) != 0 || offer(&c, e.id, e.n, e.hash) != 0)
		return -1;
	if (recv_frame(&c, &r, 5000) != 0)
		FAIL("no answer to a huge offer");
	ok = r.type == RUF_WIRE_NACK && r.u.nack.reason == RUF_WIRE_NACK_TOO_LARGE;
	ruf_wire_frame_clear(&r);
	CHECK(ok, "a huge offer was not refused as too large");
	ok = ping(&c, 3) == 0;
	c_close(&c);
	CHECK(ok, "connection unusable after a too-large nack");
	return 0;
}

static int
t_chunk_without_offer(void)
{
	struct conn c;
	uint8_t id[16], d[10] = {0};
	int rc;

	randombytes_buf(id, 16);
	if (handshake(&c, &dev) != 0 || chunk(&c, id, 0, d, sizeof(d)) != 0)
		return -1;
	rc = expect_error(&c, RUF_WIRE_ERR_PROTOCOL);
	c_close(&c);
	return rc;
}

/* Offers e, waits for the status, then runs the misbehaviour. */
static int
chunk_case(int variant)
{
	struct env e = good_env();
	struct conn c;
	struct ruf_wire_frame r = {0};
	uint8_t other[16];
	int rc = -1;

	if (handshake(&c, &dev) != 0 || offer(&c, e.id, e.n, e.hash) != 0)
		goto out;
	if (recv_frame(&c, &r, 5000) != 0 || r.type != RUF_WIRE_SUBMIT_STATUS) {
		snprintf(why, sizeof(why), "no submit-status");
		goto out;
	}
	ruf_wire_frame_clear(&r);
	switch (variant) {
	case 0: /* skips ahead */
		(void)chunk(&c, e.id, 100, e.b + 100, 100);
		break;
	case 1: /* rewinds */
		(void)chunk(&c, e.id, 0, e.b, 200);
		(void)chunk(&c, e.id, 0, e.b, 200);
		break;
	case 2: /* another message id */
		memcpy(other, e.id, 16);
		other[0] ^= 0x55;
		(void)chunk(&c, other, 0, e.b, 100);
		break;
	case 3: { /* past the offered length */
		uint8_t *big = malloc(e.n + 100);
		memcpy(big, e.b, e.n);
		memset(big + e.n, 0, 100);
		(void)chunk(&c, e.id, 0, big,
		            e.n + 100 > RUF_WIRE_MAX_DATA ? RUF_WIRE_MAX_DATA : e.n + 100);
		free(big);
		break;
	}
	case 4: { /* empty data, by hand */
		uint8_t pt[40], *p = pt;
		*p++ = 0x32, *p++ = 0;
		*p++ = 0x0a, *p++ = 16;
		memcpy(p, e.id, 16), p += 16;
		*p++ = 0x1a, *p++ = 0;
		pt[1] = (uint8_t)(p - pt - 2);
		(void)send_pt(&c, pt, (size_t)(p - pt));
		break;
	}
	case 5: { /* data over 60000 bytes, by hand */
		static uint8_t pt[RUF_WIRE_MAX_DATA + 64];
		uint8_t *p = pt;
		size_t dl = RUF_WIRE_MAX_DATA + 1, inner = 2 + 16 + 1 + 3 + dl;
		*p++ = 0x32;
		*p++ = (uint8_t)(inner | 0x80), *p++ = (uint8_t)((inner >> 7) | 0x80),
		*p++ = (uint8_t)(inner >> 14);
		*p++ = 0x0a, *p++ = 16;
		memcpy(p, e.id, 16), p += 16;
		*p++ = 0x1a;
		*p++ = (uint8_t)(dl | 0x80), *p++ = (uint8_t)((dl >> 7) | 0x80),
		*p++ = (uint8_t)(dl >> 14);
		memset(p, 7, dl), p += dl;
		(void)send_pt(&c, pt, (size_t)(p - pt));
		break;
	}
	}
	rc = expect_error(&c, RUF_WIRE_ERR_PROTOCOL);
out:
	c_close(&c);
	env_free(&e);
	return rc;
}

static int
t_chunk_offset_skips_ahead(void)
{
	return chunk_case(0);
}
static int
t_chunk_offset_rewinds(void)
{
	return chunk_case(1);
}
static int
t_chunk_for_another_message_id(void)
{
	return chunk_case(2);
}
static int
t_chunk_beyond_offered_length(void)
{
	return chunk_case(3);
}
static int
t_chunk_empty_data(void)
{
	return chunk_case(4);
}
static int
t_chunk_data_over_limit(void)
{
	return chunk_case(5);
}

static int
t_forged_signature(void)
{
	struct env e = good_env();
	int rc;

	e.b[e.n - 1] ^= 0x01; /* the Ed25519 signature ends the envelope */
	env_rehash(&e);
	rc = expect_nack(&dev, &e, RUF_WIRE_NACK_REJECTED);
	env_free(&e);
	return rc;
}

static int
t_forged_byte_in_every_region(void)
{
	/* Flip one byte at several places (header, wraps, body): each refused. */
	struct env e = good_env();
	size_t at[] = {12, 40, 100, e.n / 3, e.n / 2, e.n - 70};
	int rc = 0;

	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]) && rc == 0; i++) {
		struct env f = e;
		uint8_t *copy = malloc(e.n);
		memcpy(copy, e.b, e.n);
		f.b = copy;
		f.b[at[i]] ^= 0x20;
		env_rehash(&f);
		rc = expect_nack(&dev, &f, RUF_WIRE_NACK_REJECTED);
		if (rc != 0) {
			char w[sizeof(why)];
			snprintf(w, sizeof(w), "%s", why);
			snprintf(why, sizeof(why), "byte %zu of %zu: %.400s", at[i], e.n, w);
		}
		free(copy);
	}
	env_free(&e);
	return rc;
}

static int
t_readdressed_without_a_routed_queue(void)
{
	struct seal_opts o = {.who = &dev, .drop_queue = "itf.darfur"};
	struct env e;
	int rc;

	if (seal(&o, &e) != 0)
		return -1;
	rc = expect_nack(&dev, &e, RUF_WIRE_NACK_STALE_DIRECTORY);
	env_free(&e);
	return rc;
}

static int
t_extra_wrap_is_not_routed(void)
{
	/* A wrap for the surge desk on a sitrep: stored, but not queued there. */
	struct seal_opts o = {.who = &dev, .extra_queue = "surge"};
	struct env e;
	struct conn c;
	struct ruf_wire_frame r = {0};
	struct ruf_wire_receipt_info ri;
	ruf_cert *sc = NULL;
	char path[1024];
	int rc = -1;

	if (seal(&o, &e) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/hq/server.cert", certs);
	if (ruf_cert_load(path, &sc) != 0)
		FAIL("server cert");
	if (handshake(&c, &dev) != 0 || submit(&c, &e, &r) != 0)
		goto out;
	if (r.type != RUF_WIRE_RECEIPT) {
		snprintf(why, sizeof(why), "no receipt: %s", ruf_wire_type_name(r.type));
		goto out;
	}
	if (ruf_wire_receipt_verify(r.u.receipt.raw, r.u.receipt.raw_len, sc, root, ruf_now(), e.id,
	                            e.hash, &ri) != 0) {
		snprintf(why, sizeof(why), "receipt does not verify");
		goto out;
	}
	rc = 0;
	for (size_t i = 0; i < ri.body.n_queues; i++)
		if (strcmp(ri.body.queues[i], "surge") == 0) {
			snprintf(why, sizeof(why), "queued to surge because it carried a wrap");
			rc = -1;
		}
out:
	ruf_wire_frame_clear(&r);
	ruf_cert_free(sc);
	c_close(&c);
	env_free(&e);
	return rc;
}

static int
t_envelope_of_another_device(void)
{
	struct seal_opts o = {.who = &dev2};
	struct env e;
	int rc;

	if (seal(&o, &e) != 0)
		return -1;
	rc = expect_nack(&dev, &e, RUF_WIRE_NACK_REJECTED);
	env_free(&e);
	return rc;
}

static int
t_situation_not_in_certificate(void)
{
	struct seal_opts o = {.who = &dev, .situation = "kivu"};
	struct env e;
	int rc;

	if (seal(&o, &e) != 0)
		return -1;
	rc = expect_nack(&dev, &e, RUF_WIRE_NACK_REJECTED);
	env_free(&e);
	return rc;
}

static int
t_country_not_in_certificate(void)
{
	struct seal_opts o = {.who = &dev, .country = "cd"};
	struct env e;
	int rc;

	if (seal(&o, &e) != 0)
		return -1;
	rc = expect_nack(&dev, &e, RUF_WIRE_NACK_REJECTED);
	env_free(&e);
	return rc;
}

static int
t_offer_hash_mismatch(void)
{
	struct env e = good_env();
	int rc;

	e.hash[0] ^= 1;
	rc = expect_nack(&dev, &e, RUF_WIRE_NACK_REJECTED);
	env_free(&e);
	return rc;
}

static int
t_offer_message_id_mismatch(void)
{
	struct env e = good_env();
	int rc;

	e.id[0] ^= 1;
	rc = expect_nack(&dev, &e, RUF_WIRE_NACK_REJECTED);
	env_free(&e);
	return rc;
}

static int
t_garbage_envelope(void)
{
	struct env e;
	int rc;

	e.n = 5000;
	e.b = mmap(NULL, e.n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	randombytes_buf(e.b, e.n);
	randombytes_buf(e.id, 16);
	env_rehash(&e);
	rc = expect_nack(&dev, &e, RUF_WIRE_NACK_REJECTED);
	env_free(&e);
	return rc;
}

static int
t_truncated_envelope(void)
{
	struct env e = good_env();
	size_t full = e.n;
	int rc;

	e.n = full - 65;
	env_rehash(&e);
	rc = expect_nack(&dev, &e, RUF_WIRE_NACK_REJECTED);
	e.n = full;
	env_free(&e);
	return rc;
}

static int
t_resubmitted_changed_bytes_same_id(void)
{
	/* Stored once; the same message id with other bytes is refused, not stored. */
	struct env e = good_env();
	struct seal_opts o = {.who = &dev};
	struct env f;
	int rc;

	if (expect_receipt(&dev, &e) != 0) {
		env_free(&e);
		return -1;
	}
	if (seal(&o, &f) != 0)
		return -1;
	memcpy(f.id, e.id, 16);
	rc = expect_nack(&dev, &f, RUF_WIRE_NACK_REJECTED);
	env_free(&e);
	env_free(&f);
	return rc;
}

static int
t_reconnect_takes_over_idle_upload(void)
{
	/*
	 * A link dropped without a FIN leaves rufd's side of an upload open; the
	 * same device offering it on a new connection takes it over at once
	 * (the old connection is closed), instead of "retry later" until the
	 * old one times out. Another device's offer of the id still waits.
	 */
	struct env e = good_env();
	struct conn a, b;
	struct ruf_wire_frame r = {0};
	int rc = -1;

	if (handshake(&a, &dev) != 0) {
		env_free(&e);
		return -1;
	}
	if (offer(&a, e.id, e.n, e.hash) != 0 || recv_frame(&a, &r, 10000) != 0 ||
	    r.type != RUF_WIRE_SUBMIT_STATUS) {
		snprintf(why, sizeof(why), "the first offer got no SubmitStatus");
		goto out;
	}
	ruf_wire_frame_clear(&r);
	if (handshake(&b, &dev2) != 0) {
		c_close(&b);
		goto out;
	}
	if (offer(&b, e.id, e.n, e.hash) != 0 || recv_frame(&b, &r, 10000) != 0 ||
	    r.type != RUF_WIRE_NACK || r.u.nack.reason != RUF_WIRE_NACK_RETRY_LATER) {
		snprintf(why, sizeof(why),
		         "another device's offer of the id was not 'retry later'");
		c_close(&b);
		goto out;
	}
	ruf_wire_frame_clear(&r);
	c_close(&b);
	if (expect_receipt(&dev, &e) != 0)
		goto out;
	if (expect_error(&a, RUF_WIRE_ERR_NOT_PERMITTED) != 0)
		goto out;
	rc = 0;
out:
	ruf_wire_frame_clear(&r);
	c_close(&a);
	env_free(&e);
	return rc;
}

static int
t_device_sends_reply(void)
{
	/* Sealed by a device as a reply: the envelope check itself refuses the role. */
	struct seal_opts o = {.who = &dev, .kind = RUF_KIND_REPLY, .reply_device = "rc-cd-1"};
	struct env e;
	int rc;

	if (seal(&o, &e) != 0)
		return -1;
	rc = expect_nack(&dev, &e, RUF_WIRE_NACK_REJECTED);
	env_free(&e);
	return rc;
}

static int
t_desk_submits_sitrep(void)
{
	struct seal_opts o = {.who = &desk};
	struct env e;
	int rc;

	if (seal(&o, &e) != 0)
		return -1;
	rc = expect_nack(&desk, &e, RUF_WIRE_NACK_REJECTED);
	env_free(&e);
	return rc;
}

static int
t_reply_to_unknown_device(void)
{
	/*
	 * rufd holds no list of devices (the directory names queues, not
	 * devices), so a desk's reply to any well-formed device name is stored in
	 * inbox.<name>: this pins that behaviour (docs/RELIABILITY.md).
	 */
	struct seal_opts o = {
	    .who = &desk, .kind = RUF_KIND_REPLY, .reply_device = "no-such-device"};
	struct env e;
	int rc;

	if (seal(&o, &e) != 0)
		return -1;
	rc = expect_receipt(&desk, &e);
	env_free(&e);
	return rc;
}

static int
t_decompression_bomb_stored_as_is(void)
{
	/* A report whose attachment inflates ~100x: rufd stores the sealed bytes. */
	struct seal_opts o = {.who = &dev, .attach = bomb_path};
	struct env e;
	long before = 0, after = 0;
	char path[64], line[256];
	FILE *fp;
	int rc;

	if (!bomb_path)
		FAIL("no -b attachment given");
	if (seal(&o, &e) != 0)
		return -1;
	if (rufd_pid > 0) {
		snprintf(path, sizeof(path), "/proc/%ld/status", rufd_pid);
		if ((fp = fopen(path, "r"))) {
			while (fgets(line, sizeof(line), fp))
				sscanf(line, "VmHWM: %ld", &before);
			fclose(fp);
		}
	}
	rc = expect_receipt(&dev, &e);
	if (rc == 0 && rufd_pid > 0 && (fp = fopen(path, "r"))) {
		while (fgets(line, sizeof(line), fp))
			sscanf(line, "VmHWM: %ld", &after);
		fclose(fp);
		/* The attachment is 32 MiB once inflated; rufd's peak must not grow by half of it.
		 */
		if (after - before > 16 * 1024)
			rc = -1,
			snprintf(why, sizeof(why), "rufd peak memory grew %ld KiB", after - before);
	}
	printf("# bomb envelope: %zu bytes sealed, rufd VmHWM %ld -> %ld KiB\n", e.n, before,
	       after);
	env_free(&e);
	return rc;
}

/* Encrypts f and writes the length and every byte of it in its own write. */
static int
send_frame_dripped(struct conn *c, const struct ruf_wire_frame *f)
{
	static uint8_t pt[RUF_WIRE_MAX_FRAME], out[RUF_WIRE_MAX_MSG];
	size_t n, on;

	if (ruf_wire_frame_encode(f, pt, sizeof(pt), &n) != 0 ||
	    ruf_noise_cipher_encrypt(&c->tx, NULL, 0, pt, n, out, sizeof(out), &on) != 0)
		FAIL("encode");
	uint8_t lh[2] = {(uint8_t)(on >> 8), (uint8_t)on};
	if (raw_send(c, lh, 1) != 0 || raw_send(c, lh + 1, 1) != 0)
		FAIL("write failed");
	for (size_t i = 0; i < on; i++)
		if (raw_send(c, out + i, 1) != 0)
			FAIL("write failed");
	return 0;
}

static int
t_single_byte_writes_still_work(void)
{
	struct env e = good_env();
	struct conn c;
	uint8_t pl[RUF_WIRE_MAX_HELLO];
	struct ruf_wire_frame f = {.type = RUF_WIRE_SUBMIT_OFFER}, r = {0};
	uint64_t have;
	size_t pn;
	int one = 1, rc = -1;

	if (c_open(&c) != 0)
		return -1;
	setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (hello_payload(&dev, ruf_now(), pl, &pn) != 0 ||
	    msg1_std(&c, RUF_WIRE_PROLOGUE, dev.kx->sk, dev.kx->pk, dir->hq.noise_pk, pl, pn) != 0)
		goto out;
	uint8_t h[2] = {(uint8_t)(c.msg1_len >> 8), (uint8_t)c.msg1_len};
	for (size_t i = 0; i < 2; i++)
		if (raw_send(&c, h + i, 1) != 0)
			goto out;
	for (size_t i = 0; i < c.msg1_len; i++)
		if (raw_send(&c, c.msg1 + i, 1) != 0)
			goto out;
	if (read_welcome(&c) != 0)
		goto out;
	memcpy(f.u.offer.message_id, e.id, 16);
	f.u.offer.total_len = e.n;
	memcpy(f.u.offer.hash, e.hash, 32);
	if (send_frame_dripped(&c, &f) != 0)
		goto out;
	if (recv_frame(&c, &r, 5000) != 0 || r.type != RUF_WIRE_SUBMIT_STATUS) {
		snprintf(why, sizeof(why), "no status after a dripped offer");
		goto out;
	}
	have = r.u.status.have;
	ruf_wire_frame_clear(&r);
	while (have < e.n) {
		size_t k = e.n - have > 4000 ? 4000 : e.n - have;
		memset(&f, 0, sizeof(f));
		f.type = RUF_WIRE_SUBMIT_CHUNK;
		memcpy(f.u.chunk.message_id, e.id, 16);
		f.u.chunk.offset = have;
		f.u.chunk.data = e.b + have;
		f.u.chunk.len = k;
		if (send_frame_dripped(&c, &f) != 0)
			goto out;
		have += k;
	}
	if (recv_frame(&c, &r, 20000) != 0 || r.type != RUF_WIRE_RECEIPT) {
		snprintf(why, sizeof(why), "no receipt for a dripped upload (%s)",
		         ruf_wire_type_name(r.type));
		goto out;
	}
	rc = 0;
out:
	ruf_wire_frame_clear(&r);
	c_close(&c);
	env_free(&e);
	if (rc != 0 && !why[0])
		snprintf(why, sizeof(why), "write failed");
	return rc;
}

static int
t_connection_flood(void)
{
	int n = max_conn + 16, refused = 0, rc = 0;
	struct conn *cs = calloc((size_t)n, sizeof(*cs));

	for (int i = 0; i < n; i++)
		if (c_open(&cs[i]) != 0)
			cs[i].fd = -1;
	/* The ones over the limit are closed at once; the rest wait for the timer. */
	for (int i = 0; i < n; i++) {
		uint8_t b;
		if (cs[i].fd < 0) {
			refused++;
			continue;
		}
		if (raw_recv(&cs[i], &b, 1, i < max_conn - 2 ? 50 : 3000) == 1)
			refused++;
	}
	if (refused < 16 - 4)
		rc = -1, snprintf(why, sizeof(why),
		                  "only %d of %d connections over max_connections=%d refused",
		                  refused, n, max_conn);
	for (int i = 0; i < n; i++)
		c_close(&cs[i]);
	free(cs);
	printf("# flood: %d of %d refused at once\n", refused, n);
	return rc;
}

static int
t_many_half_open_handshakes_expire(void)
{
	/* Connections that never finish the handshake use no slot for long. */
	int n = max_conn / 2;
	struct conn *cs = calloc((size_t)n, sizeof(*cs));
	int rc = 0;

	for (int i = 0; i < n; i++)
		if (c_open(&cs[i]) == 0)
			(void)raw_send(&cs[i], "\x01", 1);
	for (int i = 0; i < n && rc == 0; i++)
		if (cs[i].fd >= 0 && expect_silent_close(&cs[i], HS_WAIT) != 0)
			rc = -1;
	for (int i = 0; i < n; i++)
		c_close(&cs[i]);
	free(cs);
	return rc;
}

static int
subscribe_case(const struct ident *who, const char *const *qs, size_t nq, uint32_t code)
{
	struct ruf_wire_frame f = {.type = RUF_WIRE_SUBSCRIBE};
	struct conn c;
	int rc;

	for (size_t i = 0; i < nq; i++)
		f.u.subscribe.queues[i] = qs[i];
	f.u.subscribe.n_queues = nq;
	f.u.subscribe.window = 4;
	if (handshake(&c, who) != 0 || send_frame(&c, &f) != 0)
		return -1;
	rc = expect_error(&c, code);
	c_close(&c);
	return rc;
}

static int
t_desk_subscribes_beyond_certificate(void)
{
	const char *q[] = {"sag"};
	return subscribe_case(&desk, q, 1, RUF_WIRE_ERR_NOT_PERMITTED);
}

static int
t_desk_subscribes_own_and_foreign(void)
{
	const char *q[] = {"hrt", "itf.darfur"};
	return subscribe_case(&desk, q, 2, RUF_WIRE_ERR_NOT_PERMITTED);
}

static int
t_desk_subscribes_device_inbox(void)
{
	const char *q[] = {"inbox.rc-sd-1"};
	return subscribe_case(&desk, q, 1, RUF_WIRE_ERR_NOT_PERMITTED);
}

static int
t_field_device_subscribes(void)
{
	const char *q[] = {"hrt"};
	return subscribe_case(&dev, q, 1, RUF_WIRE_ERR_NOT_PERMITTED);
}

static int
t_subscribe_twice(void)
{
	struct ruf_wire_frame f = {.type = RUF_WIRE_SUBSCRIBE};
	struct conn c;
	int rc;

	f.u.subscribe.queues[0] = "triage";
	f.u.subscribe.n_queues = 1;
	f.u.subscribe.window = 1;
	if (handshake(&c, &desk_triage) != 0 || send_frame(&c, &f) != 0 || send_frame(&c, &f) != 0)
		return -1;
	/* Deliveries of the backlog may come first; the Error follows. */
	for (;;) {
		struct ruf_wire_frame r = {0};
		int k = recv_frame(&c, &r, 5000);
		if (k != 0) {
			c_close(&c);
			FAIL("no Error for a second subscribe (%d)", k);
		}
		if (r.type == RUF_WIRE_ERROR) {
			k = r.u.error.code == RUF_WIRE_ERR_PROTOCOL;
			ruf_wire_frame_clear(&r);
			rc = k ? wait_closed(&c, 5000) : -1;
			break;
		}
		ruf_wire_frame_clear(&r);
	}
	c_close(&c);
	return rc;
}

static int
t_subscribe_window_zero(void)
{
	/* subscribe { queues "hrt" window 0 } by hand */
	uint8_t pt[] = {0x4a, 0x07, 0x0a, 0x03, 'h', 'r', 't', 0x10, 0x00};
	struct conn c;
	int rc;

	if (handshake(&c, &desk) != 0 || ping(&c, 1) != 0 || send_pt(&c, pt, sizeof(pt)) != 0)
		return -1;
	rc = expect_error(&c, RUF_WIRE_ERR_PROTOCOL);
	c_close(&c);
	return rc;
}

static int
t_subscribe_bad_queue_name(void)
{
	uint8_t pt[] = {0x4a, 0x0a, 0x0a, 0x06, '.', '.', '/', 'h', 'r', 't', 0x10, 0x01};
	struct conn c;
	int rc;

	if (handshake(&c, &desk) != 0 || ping(&c, 1) != 0 || send_pt(&c, pt, sizeof(pt)) != 0)
		return -1;
	rc = expect_error(&c, RUF_WIRE_ERR_PROTOCOL);
	c_close(&c);
	return rc;
}

static int
t_ack_without_subscription(void)
{
	struct ruf_wire_frame f = {.type = RUF_WIRE_DELIVER_ACK};
	struct conn c;
	int rc;

	f.u.deliver_ack.queue = "hrt";
	f.u.deliver_ack.seq = 1;
	if (handshake(&c, &desk) != 0 || send_frame(&c, &f) != 0)
		return -1;
	rc = expect_error(&c, RUF_WIRE_ERR_PROTOCOL);
	c_close(&c);
	return rc;
}

static int
t_ack_of_a_delivery_never_sent(void)
{
	struct ruf_wire_frame f = {.type = RUF_WIRE_SUBSCRIBE};
	struct conn c;
	int rc;

	f.u.subscribe.queues[0] = "triage";
	f.u.subscribe.n_queues = 1;
	f.u.subscribe.window = 1;
	if (handshake(&c, &desk_triage) != 0 || send_frame(&c, &f) != 0)
		return -1;
	memset(&f, 0, sizeof(f));
	f.type = RUF_WIRE_DELIVER_ACK;
	f.u.deliver_ack.queue = "triage";
	f.u.deliver_ack.seq = 1000000;
	if (send_frame(&c, &f) != 0)
		return -1;
	for (;;) {
		struct ruf_wire_frame r = {0};
		int k = recv_frame(&c, &r, 5000);
		if (k != 0) {
			c_close(&c);
			FAIL("no Error for an ack never owed (%d)", k);
		}
		if (r.type == RUF_WIRE_ERROR) {
			k = r.u.error.code == RUF_WIRE_ERR_PROTOCOL;
			ruf_wire_frame_clear(&r);
			rc = k ? wait_closed(&c, 5000) : -1;
			break;
		}
		ruf_wire_frame_clear(&r);
	}
	c_close(&c);
	return rc;
}

static int
t_ack_for_a_queue_not_subscribed(void)
{
	struct ruf_wire_frame f = {.type = RUF_WIRE_SUBSCRIBE};
	struct conn c;
	int rc;

	f.u.subscribe.queues[0] = "triage";
	f.u.subscribe.n_queues = 1;
	f.u.subscribe.window = 1;
	if (handshake(&c, &desk_triage) != 0 || send_frame(&c, &f) != 0)
		return -1;
	memset(&f, 0, sizeof(f));
	f.type = RUF_WIRE_DELIVER_ACK;
	f.u.deliver_ack.queue = "hrt";
	f.u.deliver_ack.seq = 1;
	if (send_frame(&c, &f) != 0)
		return -1;
	for (;;) {
		struct ruf_wire_frame r = {0};
		int k = recv_frame(&c, &r, 5000);
		if (k != 0) {
			c_close(&c);
			FAIL("no Error (%d)", k);
		}
		if (r.type == RUF_WIRE_ERROR) {
			k = r.u.error.code == RUF_WIRE_ERR_PROTOCOL;
			ruf_wire_frame_clear(&r);
			rc = k ? wait_closed(&c, 5000) : -1;
			break;
		}
		ruf_wire_frame_clear(&r);
	}
	c_close(&c);
	return rc;
}

static int
t_ping_flood_answered_in_order(void)
{
	enum { N = 3000 };
	struct conn c;
	static uint8_t pt[32], out[128], *all;
	size_t n, on, off = 0;
	int rc = 0;

	if (handshake(&c, &dev) != 0)
		return -1;
	all = malloc((size_t)N * 64);
	for (int i = 0; i < N; i++) {
		struct ruf_wire_frame f = {.type = RUF_WIRE_PING};
		f.u.ping.nonce = (uint64_t)i + 1;
		if (ruf_wire_frame_encode(&f, pt, sizeof(pt), &n) != 0 ||
		    ruf_noise_cipher_encrypt(&c.tx, NULL, 0, pt, n, out, sizeof(out), &on) != 0)
			FAIL("encode");
		all[off++] = (uint8_t)(on >> 8);
		all[off++] = (uint8_t)on;
		memcpy(all + off, out, on);
		off += on;
	}
	/* All of it in one go, before reading a single pong. */
	if (raw_send(&c, all, off) != 0)
		rc = -1, snprintf(why, sizeof(why), "rufd stopped reading a ping flood");
	for (int i = 0; i < N && rc == 0; i++) {
		struct ruf_wire_frame r = {0};
		if (recv_frame(&c, &r, 5000) != 0 || r.type != RUF_WIRE_PONG ||
		    r.u.ping.nonce != (uint64_t)i + 1)
			rc = -1,
			snprintf(why, sizeof(why), "pong %d missing or out of order", i + 1);
		ruf_wire_frame_clear(&r);
	}
	free(all);
	c_close(&c);
	return rc;
}

static int
t_ping_flood_never_read(void)
{
	/*
	 * Pings in batches, never reading a pong: rufd must stop reading us once
	 * its queue for us passes max_conn_buffer (backpressure), not buffer
	 * without bound. Our receive buffer is small so the kernel holds little.
	 */
	enum { BATCH = 20000, MAX_BATCHES = 150 };
	struct conn c;
	static uint8_t pt[32], out[128];
	uint8_t *all = malloc((size_t)BATCH * 40);
	size_t n, on, off;
	int small = 4096, batches = 0, blocked = 0;
	uint64_t nonce = 0;

	memset(&c, 0, sizeof(c));
	if ((c.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		FAIL("socket");
	setsockopt(c.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	if (connect(c.fd, (struct sockaddr *)&server, sizeof(server)) != 0)
		FAIL("connect");
	{
		uint8_t pl[RUF_WIRE_MAX_HELLO];
		size_t pn;
		if (hello_payload(&dev, ruf_now(), pl, &pn) != 0 ||
		    msg1_std(&c, RUF_WIRE_PROLOGUE, dev.kx->sk, dev.kx->pk, dir->hq.noise_pk, pl,
		             pn) != 0 ||
		    send_msg(&c, c.msg1, c.msg1_len) != 0 || read_welcome(&c) != 0)
			return -1;
	}
	for (; batches < MAX_BATCHES && !blocked; batches++) {
		off = 0;
		for (int i = 0; i < BATCH; i++) {
			struct ruf_wire_frame f = {.type = RUF_WIRE_PING};
			f.u.ping.nonce = ++nonce;
			if (ruf_wire_frame_encode(&f, pt, sizeof(pt), &n) != 0 ||
			    ruf_noise_cipher_encrypt(&c.tx, NULL, 0, pt, n, out, sizeof(out),
			                             &on) != 0)
				FAIL("encode");
			all[off++] = (uint8_t)(on >> 8);
			all[off++] = (uint8_t)on;
			memcpy(all + off, out, on);
			off += on;
		}
		for (size_t done = 0; done < off;) {
			struct pollfd pf = {.fd = c.fd, .events = POLLOUT};
			ssize_t w;
			if (poll(&pf, 1, 2000) != 1) {
				blocked = 1; /* rufd stopped reading us */
				break;
			}
			w = send(c.fd, all + done, off - done, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (w < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (w <= 0) {
				blocked = 2; /* closed us: also bounded */
				break;
			}
			done += (size_t)w;
		}
	}
	free(all);
	c_close(&c);
	printf("# unread ping flood: %s after %d batches of %d pings\n",
	       blocked == 1   ? "rufd stopped reading"
	       : blocked == 2 ? "rufd closed"
	                      : "still read",
	       batches, BATCH);
	CHECK(blocked, "rufd read %d pings whose pongs nobody read", MAX_BATCHES * BATCH);
	return 0;
}

static int
t_revoked_desk_disconnected_mid_session(void)
{
	struct ruf_wire_frame f = {.type = RUF_WIRE_SUBSCRIBE};
	struct conn c;
	int rc;

	if (!revoke_cmd)
		FAIL("no -X revoke command given");
	f.u.subscribe.queues[0] = "triage";
	f.u.subscribe.n_queues = 1;
	f.u.subscribe.window = 64;
	if (handshake(&c, &desk_triage) != 0 || send_frame(&c, &f) != 0 || ping(&c, 1) != 0)
		return -1;
	if (system(revoke_cmd) != 0)
		FAIL("revoke command failed");
	for (;;) {
		struct ruf_wire_frame r = {0};
		int k = recv_frame(&c, &r, 10000);
		if (k != 0) {
			c_close(&c);
			FAIL("revoked desk not told (%d)", k);
		}
		if (r.type == RUF_WIRE_ERROR) {
			k = r.u.error.code == RUF_WIRE_ERR_NOT_PERMITTED;
			ruf_wire_frame_clear(&r);
			rc = k ? wait_closed(&c, 5000) : -1;
			if (!k)
				snprintf(why, sizeof(why), "wrong error code");
			break;
		}
		ruf_wire_frame_clear(&r);
	}
	c_close(&c);
	if (rc == 0) {
		/* And it cannot come back. */
		struct conn d;
		uint8_t b;
		if (c_open(&d) != 0)
			return -1;
		uint8_t pl[RUF_WIRE_MAX_HELLO];
		size_t pn;
		if (hello_payload(&desk_triage, ruf_now(), pl, &pn) != 0 ||
		    msg1_std(&d, RUF_WIRE_PROLOGUE, desk_triage.kx->sk, desk_triage.kx->pk,
		             dir->hq.noise_pk, pl, pn) != 0)
			return -1;
		(void)send_msg(&d, d.msg1, d.msg1_len);
		rc = raw_recv(&d, &b, 1, PROMPT) == 1 ? 0 : -1;
		c_close(&d);
		if (rc != 0)
			FAIL("revoked desk could connect again");
	}
	return rc;
}

/* rufd still serves a well-behaved peer: handshake and ping. */
static int
alive(void)
{
	struct conn c;
	int rc;

	if (handshake(&c, &dev2) != 0)
		return -1;
	rc = ping(&c, 77);
	c_close(&c);
	return rc;
}

struct tcase {
	const char *name;
	int (*fn)(void);
};

#define T(x)                                                                                       \
	{                                                                                          \
#x, t_##x                                                                          \
	}
static const struct tcase cases[] = {
    T(http_request),
    T(garbage_message1),
    T(tls_client_hello),
    T(zero_length_message1),
    T(length_65535_before_auth),
    T(message1_one_byte_over_limit),
    T(message1_shorter_than_noise_overhead),
    T(truncated_message1_then_eof),
    T(truncated_message1_then_silence),
    T(silent_peer_handshake_timeout),
    T(slow_drip_message1),
    T(wrong_prologue),
    T(manual_message1_is_accepted),
    T(wrong_protocol_name),
    T(all_zero_ephemeral),
    T(small_order_ephemeral),
    T(all_zero_static),
    T(small_order_static),
    T(wrong_server_key),
    T(certificate_of_another_key),
    T(revoked_device_handshake),
    T(clock_one_day_behind),
    T(clock_one_day_ahead),
    T(hello_not_protobuf),
    T(hello_garbage_certificate),
    T(hello_root_certificate),
    T(hello_unknown_field),
    T(replayed_message1),
    T(replayed_message1_then_silence),
    T(handshake_then_no_transport),
    T(first_transport_message_garbage),
    T(tampered_transport_message),
    T(reordered_transport_messages),
    T(zero_length_after_handshake),
    T(transport_shorter_than_tag),
    T(empty_frame),
    T(frame_not_protobuf),
    T(frame_unknown_field),
    T(frame_unknown_field_inside_body),
    T(frame_unknown_type),
    T(frame_two_bodies),
    T(frame_non_canonical_varint),
    T(frame_truncated),
    T(frame_length_overflow),
    T(client_sends_submit_status),
    T(client_sends_receipt),
    T(client_sends_nack),
    T(client_sends_deliver),
    T(client_sends_directory_update),
    T(client_error_frame_closes),
    T(offer_zero_length),
    T(offer_short_message_id),
    T(offer_beyond_wire_limit),
    T(huge_attachment_beyond_max_envelope),
    T(chunk_without_offer),
    T(chunk_offset_skips_ahead),
    T(chunk_offset_rewinds),
    T(chunk_for_another_message_id),
    T(chunk_beyond_offered_length),
    T(chunk_empty_data),
    T(chunk_data_over_limit),
    T(forged_signature),
    T(forged_byte_in_every_region),
    T(readdressed_without_a_routed_queue),
    T(extra_wrap_is_not_routed),
    T(envelope_of_another_device),
    T(situation_not_in_certificate),
    T(country_not_in_certificate),
    T(offer_hash_mismatch),
    T(offer_message_id_mismatch),
    T(garbage_envelope),
    T(truncated_envelope),
    T(resubmitted_changed_bytes_same_id),
    T(reconnect_takes_over_idle_upload),
    T(device_sends_reply),
    T(desk_submits_sitrep),
    T(reply_to_unknown_device),
    T(decompression_bomb_stored_as_is),
    T(single_byte_writes_still_work),
    T(connection_flood),
    T(many_half_open_handshakes_expire),
    T(desk_subscribes_beyond_certificate),
    T(desk_subscribes_own_and_foreign),
    T(desk_subscribes_device_inbox),
    T(field_device_subscribes),
    T(subscribe_twice),
    T(subscribe_window_zero),
    T(subscribe_bad_queue_name),
    T(ack_without_subscription),
    T(ack_of_a_delivery_never_sent),
    T(ack_for_a_queue_not_subscribed),
    T(ping_flood_answered_in_order),
    T(ping_flood_never_read),
    T(revoked_desk_disconnected_mid_session), /* last: it revokes a desk */
};

/*
 * -G IDENT:N:DIR[:ATTACHMENT]: seals N envelopes as IDENT (its first
 * situation and its country, optionally one attachment) into
 * DIR/<message id>.env and exits: load for the crash tests,
 * much faster than N runs of ruf seal.
 */
static int
generate(const char *spec)
{
	char name[128], outdir[900], path[1024], hex[33], attach[900] = "";
	struct ident who;
	unsigned n;

	if (sscanf(spec, "%127[^:]:%u:%899[^:]:%899s", name, &n, outdir, attach) < 3)
		die("bad -G");
	load_ident(name, &who);
	for (unsigned i = 0; i < n; i++) {
		struct seal_opts o = {.who = &who,
		                      .situation =
		                          who.cert->n_situations ? who.cert->situations[0] : NULL,
		                      .country = who.cert->country,
		                      .attach = attach[0] ? attach : NULL};
		struct env e;
		if (seal(&o, &e) != 0)
			die("%s", why);
		ruf_hex(e.id, 16, hex);
		snprintf(path, sizeof(path), "%s/%s.env", outdir, hex);
		if (ruf_file_write_atomic(path, e.b, e.n, 0600, false) != 0)
			die("write %s", path);
		env_free(&e);
	}
	return 0;
}

int
main(int argc, char *argv[])
{
	const char *hostport = NULL, *gen = NULL;
	char path[1024];
	uint8_t *json;
	size_t jlen;
	ruf_diag diag = {{0}};
	int c, failed = 0, run = 0, rc;

	while ((c = getopt(argc, argv, "s:C:D:p:r:H:M:E:b:P:X:lG:")) != -1) {
		switch (c) {
		case 's':
			hostport = optarg;
			break;
		case 'C':
			certs = optarg;
			break;
		case 'D':
			dirpath = optarg;
			break;
		case 'p':
			passfile = optarg;
			break;
		case 'r':
			report_json = optarg;
			break;
		case 'H':
			hs_timeout = atoi(optarg);
			break;
		case 'M':
			max_conn = atoi(optarg);
			break;
		case 'E':
			max_envelope = strtoull(optarg, NULL, 10);
			break;
		case 'b':
			bomb_path = optarg;
			break;
		case 'P':
			rufd_pid = atol(optarg);
			break;
		case 'X':
			revoke_cmd = optarg;
			break;
		case 'G':
			gen = optarg;
			break;
		case 'l':
			for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
				printf("%s\n", cases[i].name);
			return 0;
		default:
			die("bad option");
		}
	}
	if (gen)
		hostport = "127.0.0.1:1";
	if (!hostport || !certs || !dirpath || !passfile || !report_json)
		die("usage: hostile -s HOST:PORT -C CERTS -D DIRECTORY -p PASSFILE -r REPORT.json "
		    "[-H hs_timeout] [-M max_connections] [-E max_envelope] [-b attachment] "
		    "[-P rufd_pid] [-X revoke_cmd] [-l] [CASE...]");
	if (sodium_init() < 0)
		die("sodium");
	signal(SIGPIPE, SIG_IGN);
	{
		const char *colon = strrchr(hostport, ':');
		char host[64];
		if (!colon || (size_t)(colon - hostport) >= sizeof(host))
			die("bad address");
		memcpy(host, hostport, (size_t)(colon - hostport));
		host[colon - hostport] = '\0';
		server.sin_family = AF_INET;
		server.sin_port = htons((uint16_t)atoi(colon + 1));
		if (inet_pton(AF_INET, host, &server.sin_addr) != 1)
			die("bad address");
	}
	snprintf(path, sizeof(path), "%s/hq/root.cert", certs);
	if ((rc = ruf_cert_load(path, &root)) != 0)
		die("%s: %s", path, ruf_strerror(rc));
	if ((rc = ruf_directory_load(dirpath, root, ruf_now(), &dir)) != 0)
		die("%s: %s", dirpath, ruf_strerror(rc));
	load_ident("rc-sd-1", &dev);
	load_ident("rc-cd-1", &dev2);
	load_ident("rc-sd-2", &revoked);
	load_ident("hrt-desk", &desk);
	load_ident("triage-desk", &desk_triage);
	if ((rc = ruf_file_read(report_json, 1 << 20, &json, &jlen)) != 0)
		die("%s: %s", report_json, ruf_strerror(rc));
	if ((rc = ruf_report_from_json((char *)json, jlen, ".", &diag, &rin)) != 0)
		die("%s: %s", report_json, diag.msg);
	if ((rc = ruf_report_encode(rin.report, &report, &report_len)) != 0)
		die("encode report: %s", ruf_strerror(rc));
	sequence = ruf_now() * 1000;
	if (gen)
		return generate(gen);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool want = optind >= argc;
		for (int k = optind; k < argc; k++)
			if (strcmp(argv[k], cases[i].name) == 0)
				want = true;
		if (!want)
			continue;
		run++;
		why[0] = '\0';
		uint64_t t0 = now_ms();
		rc = cases[i].fn();
		if (rc == 0 && alive() != 0) {
			char w[sizeof(why)];
			snprintf(w, sizeof(w), "%s", why);
			snprintf(why, sizeof(why), "rufd no longer serves a good client: %.400s",
			         w);
			rc = -1;
		}
		if (rc == 0) {
			printf("ok %d - %s (%llu ms)\n", run, cases[i].name,
			       (unsigned long long)(now_ms() - t0));
		} else {
			printf("not ok %d - %s: %s\n", run, cases[i].name, why);
			failed++;
		}
		fflush(stdout);
	}
	printf("1..%d\n# %d hostile cases, %d failed\n", run, run, failed);
	return failed ? 1 : 0;
}
