/*
 * ruf_testclient.c - a small blocking client of rufd for the integration
 * tests, speaking the wire protocol through lib/wire.h the way ruf will.
 *
 *   ruf_testclient -i IDDIR -p PASSFILE -D DIRECTORY -s HOST:PORT [opts] CMD ...
 *
 * IDDIR holds cert, keystore and root.cert (certs-example/identities/NAME).
 * Commands:
 *   ping                       handshake, ping, pong
 *   submit FILE                offer/resume/send FILE; print the verified receipt
 *   subscribe QUEUE...         print and save deliveries (-o DIR), ack them
 * Options: -n N (subscribe: stop after N envelopes; submit: stop after
 * sending N bytes, simulating a cut), -t SECS (read timeout), -A (do not
 * ack), -V VERSION (directory version to claim in the hello), -w WINDOW,
 * -c CHUNK (submit chunk size), -T SECONDS (offset added to our hello
 * timestamp), -W SECONDS (idle: wait that long for any frame, then exit 0 if
 * rufd closed the connection, 1 if not).
 * Exit: 0 ok, 1 error, 3 refused handshake/closed, 4 nack (reason printed),
 * 5 error frame (code printed), 6 timeout.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cert.h"
#include "directory.h"
#include "envelope.h"
#include "keystore.h"
#include "util.h"
#include "wire.h"

/* A short-lived tool that exits from anywhere: leaks at exit are expected. */
const char *__asan_default_options(void);
const char *
__asan_default_options(void)
{
	return "detect_leaks=0";
}

static int sock = -1;
static int timeout_ms = 10000;
static ruf_wire_session *ws;

static void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void
die(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "ruf_testclient: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(code);
}

static void
read_exact(uint8_t *p, size_t n)
{
	while (n > 0) {
		struct pollfd pf = {.fd = sock, .events = POLLIN};
		ssize_t r;
		int pr = poll(&pf, 1, timeout_ms);
		if (pr == 0)
			die(6, "timeout");
		if (pr < 0)
			die(1, "poll: %s", strerror(errno));
		r = read(sock, p, n);
		if (r == 0)
			die(3, "connection closed");
		if (r < 0) {
			if (errno == EINTR)
				continue;
			die(3, "read: %s", strerror(errno));
		}
		p += r;
		n -= (size_t)r;
	}
}

static size_t
read_msg(uint8_t *buf)
{
	uint8_t h[2];
	size_t n;

	read_exact(h, 2);
	n = (size_t)h[0] << 8 | h[1];
	if (n == 0)
		die(1, "zero-length message");
	read_exact(buf, n);
	return n;
}

static void
write_msg(const uint8_t *m, size_t n)
{
	uint8_t h[2];

	if (ruf_wire_put_len(h, n) != 0 || ruf_write_all(sock, h, 2) != 0 ||
	    ruf_write_all(sock, m, n) != 0)
		die(3, "write failed");
}

static void
send_frame(const struct ruf_wire_frame *f)
{
	static uint8_t out[RUF_WIRE_MAX_MSG];
	size_t n;
	int rc;

	if ((rc = ruf_wire_session_seal(ws, f, out, sizeof(out), &n)) != 0)
		die(1, "seal: %s", ruf_strerror(rc));
	write_msg(out, n);
}

/* Reads the next frame; Error frames end the program. */
static void
recv_frame(struct ruf_wire_frame *f)
{
	static uint8_t in[RUF_WIRE_MAX_MSG];
	size_t n = read_msg(in);
	int rc;

	if ((rc = ruf_wire_session_open(ws, in, n, f)) != 0)
		die(1, "open frame: %s", ruf_strerror(rc));
	if (f->type == RUF_WIRE_ERROR) {
		printf("error code=%u text=%s\n", f->u.error.code,
		       f->u.error.text ? f->u.error.text : "");
		fflush(stdout);
		exit(5);
	}
}

static int
connect_to(const char *hp)
{
	char host[64];
	const char *colon = strrchr(hp, ':');
	struct sockaddr_in a = {.sin_family = AF_INET};
	int s;

	if (!colon || (size_t)(colon - hp) >= sizeof(host))
		die(1, "bad server address");
	memcpy(host, hp, (size_t)(colon - hp));
	host[colon - hp] = '\0';
	a.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
		die(1, "bad server address");
	if ((s = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    connect(s, (struct sockaddr *)&a, sizeof(a)) != 0)
		die(3, "connect: %s", strerror(errno));
	return s;
}

static uint8_t *
read_file(const char *path, size_t *len)
{
	uint8_t *b;
	int rc = ruf_file_read(path, 1u << 30, &b, len);

	if (rc != 0)
		die(1, "%s: %s", path, ruf_strerror(rc));
	return b;
}

int
main(int argc, char *argv[])
{
	const char *id = NULL, *passfile = NULL, *dirpath = NULL, *server = NULL, *outdir = NULL;
	long limit = -1, claim_version = -1, window = 8;
	size_t chunk = RUF_WIRE_DEFAULT_CHUNK;
	long skew = 0;
	int wait_s = 0;
	bool no_ack = false;
	char path[1024], *pass = NULL;
	size_t passlen = 0;
	ruf_cert *cert = NULL, *root = NULL, *server_cert = NULL;
	ruf_directory *dir = NULL;
	ruf_keystore *ks = NULL;
	const struct ruf_key *kx;
	struct ruf_wire_hello h = {0};
	struct ruf_wire_welcome w = {0};
	static uint8_t buf[RUF_WIRE_MAX_MSG];
	size_t n;
	int c, rc;

	while ((c = getopt(argc, argv, "i:p:D:s:o:n:t:AV:w:c:T:W:")) != -1) {
		switch (c) {
		case 'i':
			id = optarg;
			break;
		case 'p':
			passfile = optarg;
			break;
		case 'D':
			dirpath = optarg;
			break;
		case 's':
			server = optarg;
			break;
		case 'o':
			outdir = optarg;
			break;
		case 'n':
			limit = atol(optarg);
			break;
		case 't':
			timeout_ms = atoi(optarg) * 1000;
			break;
		case 'A':
			no_ack = true;
			break;
		case 'V':
			claim_version = atol(optarg);
			break;
		case 'w':
			window = atol(optarg);
			break;
		case 'c':
			chunk = (size_t)atol(optarg);
			break;
		case 'T':
			skew = atol(optarg);
			break;
		case 'W':
			wait_s = atoi(optarg);
			break;
		default:
			die(2, "bad option");
		}
	}
	if (!id || !passfile || !dirpath || !server || optind >= argc)
		die(2, "usage: ruf_testclient -i IDDIR -p PASSFILE -D DIRECTORY -s HOST:PORT CMD");
	if (sodium_init() < 0)
		die(1, "sodium");
	signal(SIGPIPE, SIG_IGN); /* a closed connection is exit 3, not a signal */
	snprintf(path, sizeof(path), "%s/cert", id);
	if ((rc = ruf_cert_load(path, &cert)) != 0)
		die(1, "%s: %s", path, ruf_strerror(rc));
	snprintf(path, sizeof(path), "%s/root.cert", id);
	if ((rc = ruf_cert_load(path, &root)) != 0)
		die(1, "%s: %s", path, ruf_strerror(rc));
	if ((rc = ruf_directory_load(dirpath, root, ruf_now(), &dir)) != 0)
		die(1, "%s: %s", dirpath, ruf_strerror(rc));
	if ((rc = ruf_passphrase_get("", passfile, NULL, false, &pass, &passlen)) != 0)
		die(1, "passphrase: %s", ruf_strerror(rc));
	snprintf(path, sizeof(path), "%s/keystore", id);
	if ((rc = ruf_keystore_load(path, pass, passlen, &ks)) != 0)
		die(1, "%s: %s", path, ruf_strerror(rc));
	ruf_passphrase_free(pass, passlen);
	if (!(kx = ruf_keystore_find(ks, RUF_KEY_KX, RUF_KEYNAME_KX, 0)))
		die(1, "no kx key");

	sock = connect_to(server);
	if ((rc = ruf_wire_session_new(&ws, true, kx->sk, kx->pk, dir->hq.noise_pk)) != 0)
		die(1, "session: %s", ruf_strerror(rc));
	h.certificate = cert->raw;
	h.certificate_len = cert->rawlen;
	h.timestamp = (uint64_t)((long long)ruf_now() + skew);
	h.directory_version = claim_version >= 0 ? (uint64_t)claim_version : dir->version;
	if ((rc = ruf_wire_session_write_hello(ws, &h, buf, sizeof(buf), &n)) != 0)
		die(1, "hello: %s", ruf_strerror(rc));
	write_msg(buf, n);
	n = read_msg(buf);
	if ((rc = ruf_wire_session_read_welcome(ws, buf, n, &w)) != 0)
		die(3, "welcome: %s", ruf_strerror(rc));
	printf("welcome directory_version=%llu directory=%zu\n",
	       (unsigned long long)w.directory_version, w.directory_len);
	if ((rc = ruf_cert_parse(w.server_certificate, w.server_certificate_len, &server_cert)) !=
	    0)
		die(1, "server cert: %s", ruf_strerror(rc));
	ruf_wire_welcome_clear(&w);

	const char *cmd = argv[optind];
	struct ruf_wire_frame f = {0}, r = {0};
	if (strcmp(cmd, "idle") == 0) {
		/* One ping (we are authenticated), then nothing: rufd's idle timeout. */
		f.type = RUF_WIRE_PING;
		send_frame(&f);
		recv_frame(&r);
		timeout_ms = (wait_s > 0 ? wait_s : 10) * 1000;
		recv_frame(&r); /* Error frame: exit 5; close: exit 3; timeout: exit 6 */
		die(1, "unexpected %s", ruf_wire_type_name(r.type));
	}
	if (strcmp(cmd, "ping") == 0) {
		f.type = RUF_WIRE_PING;
		f.u.ping.nonce = 42;
		send_frame(&f);
		recv_frame(&r);
		if (r.type != RUF_WIRE_PONG || r.u.ping.nonce != 42)
			die(1, "no pong");
		printf("pong\n");
		return 0;
	}
	if (strcmp(cmd, "submit") == 0 && optind + 1 < argc) {
		size_t len;
		uint8_t *env = read_file(argv[optind + 1], &len);
		uint8_t hash[32], msgid[16];
		struct ruf_env_info *info = NULL;
		uint64_t have;
		int fd = open(argv[optind + 1], O_RDONLY);

		if (fd < 0 || (rc = ruf_envelope_inspect(fd, &info)) != 0)
			die(1, "%s: not an envelope", argv[optind + 1]);
		close(fd);
		memcpy(msgid, info->hdr.message_id, 16);
		ruf_env_info_free(info);
		crypto_generichash(hash, sizeof(hash), env, len, NULL, 0);
		f.type = RUF_WIRE_SUBMIT_OFFER;
		memcpy(f.u.offer.message_id, msgid, 16);
		f.u.offer.total_len = len;
		memcpy(f.u.offer.hash, hash, 32);
		send_frame(&f);
		recv_frame(&r);
		if (r.type == RUF_WIRE_RECEIPT)
			goto receipt;
		if (r.type == RUF_WIRE_NACK)
			goto nack;
		if (r.type != RUF_WIRE_SUBMIT_STATUS)
			die(1, "unexpected %s", ruf_wire_type_name(r.type));
		have = r.u.status.have;
		printf("have=%llu\n", (unsigned long long)have);
		ruf_wire_frame_clear(&r);
		while (have < len) {
			size_t k = len - have > chunk ? chunk : (size_t)(len - have);
			if (limit >= 0 && have + k > (uint64_t)limit) {
				/* A ping round trip: rufd has handled every chunk before we go. */
				memset(&f, 0, sizeof(f));
				f.type = RUF_WIRE_PING;
				f.u.ping.nonce = 9;
				send_frame(&f);
				recv_frame(&r);
				printf("cut at %llu\n", (unsigned long long)have);
				return 0;
			}
			memset(&f, 0, sizeof(f));
			f.type = RUF_WIRE_SUBMIT_CHUNK;
			memcpy(f.u.chunk.message_id, msgid, 16);
			f.u.chunk.offset = have;
			f.u.chunk.data = env + have;
			f.u.chunk.len = k;
			send_frame(&f);
			have += k;
		}
		recv_frame(&r);
		if (r.type == RUF_WIRE_NACK)
			goto nack;
		if (r.type != RUF_WIRE_RECEIPT)
			die(1, "unexpected %s", ruf_wire_type_name(r.type));
	receipt : {
		struct ruf_wire_receipt_info ri;
		if ((rc = ruf_wire_receipt_verify(r.u.receipt.raw, r.u.receipt.raw_len, server_cert,
		                                  root, ruf_now(), msgid, hash, &ri)) != 0)
			die(1, "receipt does not verify: %s", ruf_strerror(rc));
		printf("receipt store_seq=%llu queues=", (unsigned long long)ri.body.store_seq);
		for (size_t i = 0; i < ri.body.n_queues; i++)
			printf("%s%s", i ? "," : "", ri.body.queues[i]);
		printf(" device_serial=%llu\n", (unsigned long long)ri.body.device_serial);
		return 0;
	}
	nack:
		printf("nack reason=%u retry_after=%u directory=%zu\n", r.u.nack.reason,
		       r.u.nack.retry_after_s, r.u.nack.directory_len);
		return 4;
	}
	if (strcmp(cmd, "subscribe") == 0 && optind + 1 < argc) {
		long got = 0;
		uint8_t *env = NULL;
		uint64_t cap = 0;

		f.type = RUF_WIRE_SUBSCRIBE;
		for (int i = optind + 1; i < argc && f.u.subscribe.n_queues < 16; i++)
			f.u.subscribe.queues[f.u.subscribe.n_queues++] = argv[i];
		f.u.subscribe.window = (uint32_t)window;
		send_frame(&f);
		for (;;) {
			if (limit >= 0 && got >= limit)
				break;
			recv_frame(&r);
			if (r.type == RUF_WIRE_DIRECTORY_UPDATE) {
				printf("directory_update len=%zu\n", r.u.directory_update.len);
				fflush(stdout);
				ruf_wire_frame_clear(&r);
				continue;
			}
			if (r.type != RUF_WIRE_DELIVER)
				die(1, "unexpected %s", ruf_wire_type_name(r.type));
			if (r.u.deliver.offset == 0) {
				free(env);
				cap = r.u.deliver.total_len;
				if (!(env = malloc(cap)))
					die(1, "nomem");
			}
			if (r.u.deliver.total_len != cap ||
			    r.u.deliver.offset + r.u.deliver.len > cap)
				die(1, "bad deliver");
			memcpy(env + r.u.deliver.offset, r.u.deliver.data, r.u.deliver.len);
			if (r.u.deliver.last) {
				char hex[33];
				ruf_hex(r.u.deliver.message_id, 16, hex);
				printf("deliver queue=%s seq=%llu id=%s len=%llu\n",
				       r.u.deliver.queue, (unsigned long long)r.u.deliver.seq, hex,
				       (unsigned long long)cap);
				fflush(stdout);
				if (outdir) {
					snprintf(path, sizeof(path), "%s/%s-%llu.env", outdir,
					         r.u.deliver.queue,
					         (unsigned long long)r.u.deliver.seq);
					if (ruf_file_write_atomic(path, env, cap, 0600, false) != 0)
						die(1, "write %s", path);
				}
				if (!no_ack) {
					struct ruf_wire_frame a = {.type = RUF_WIRE_DELIVER_ACK};
					a.u.deliver_ack.queue = r.u.deliver.queue;
					a.u.deliver_ack.seq = r.u.deliver.seq;
					send_frame(&a);
				}
				got++;
			}
			ruf_wire_frame_clear(&r);
		}
		/* Let the last ack reach rufd before closing: a ping round trip. */
		memset(&f, 0, sizeof(f));
		f.type = RUF_WIRE_PING;
		f.u.ping.nonce = 7;
		send_frame(&f);
		do {
			recv_frame(&r);
		} while (r.type != RUF_WIRE_PONG);
		free(env);
		return 0;
	}
	die(2, "unknown command %s", cmd);
}
