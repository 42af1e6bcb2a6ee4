/*
 * client.c - blocking client for rufd: sockets, poll and the wire codec.
 *
 * The socket is non-blocking and every wait goes through poll() with a
 * deadline, so a silent peer or a dead link costs at most the configured
 * timeout, never a hang.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "cert.h"
#include "client.h"
#include "directory.h"
#include "envelope.h"
#include "err.h"
#include "util.h"
#include "wire.h"

#define IBUF_SIZE 16384

struct ruf_client {
	int fd;
	bool dead;
	bool subscribed;
	struct ruf_client_options opt;
	ruf_wire_session *ses;
	ruf_wire_reader rd;
	uint8_t *ibuf; /* bytes read from the socket, not yet fed to rd */
	size_t ioff, ilen;
	uint8_t *obuf; /* one outgoing transport message with its length */
	const ruf_cert *root;
	const ruf_directory *dir; /* the caller's, borrowed for connect only */
	uint64_t dir_version;
	bool fixed_now; /* the caller set opt.now (tests); else the clock at each check */
	ruf_cert *server;
	uint64_t server_time;
	ruf_directory *newdir; /* verified and newer; until taken */
};

/* --- Time and I/O ---------------------------------------------------------- */

/* The time for certificate and directory checks: a desk stays connected for days. */
static uint64_t
now_of(const ruf_client *c)
{
	return c->fixed_now ? c->opt.now : ruf_now();
}

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Milliseconds left until deadline for poll(); UINT64_MAX deadline = forever. */
static int
left_ms(uint64_t deadline)
{
	uint64_t now = mono_ms();

	if (deadline == UINT64_MAX)
		return -1;
	if (now >= deadline)
		return 0;
	return deadline - now > 1000000000u ? 1000000000 : (int)(deadline - now);
}

static int
fail(ruf_client *c, int rc)
{
	c->dead = true;
	return rc;
}

/* Waits for ev on c->fd until deadline. */
static int
wait_fd(ruf_client *c, short ev, uint64_t deadline, ruf_diag *d)
{
	for (;;) {
		struct pollfd p = {.fd = c->fd, .events = ev};
		int n = poll(&p, 1, left_ms(deadline));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ruf_diag_set(d, "poll: %s", strerror(errno));
			return fail(c, ruf_errno(errno));
		}
		if (n == 0) {
			ruf_diag_set(d, "no answer from the server in time");
			return RUF_E_NET_TIMEOUT;
		}
		return 0;
	}
}

static int
send_all(ruf_client *c, const uint8_t *b, size_t n, ruf_diag *d)
{
	uint64_t deadline = mono_ms() + c->opt.io_timeout_ms;

	while (n > 0) {
		ssize_t w = send(c->fd, b, n, MSG_NOSIGNAL);
		int rc;

		if (w > 0) {
			b += w;
			n -= (size_t)w;
			deadline = mono_ms() + c->opt.io_timeout_ms; /* progress resets the timer */
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if ((rc = wait_fd(c, POLLOUT, deadline, d)) != 0)
				return fail(c, rc);
			continue;
		}
		ruf_diag_set(d, "send: %s", strerror(errno));
		return fail(c, RUF_E_NET_CLOSED);
	}
	return 0;
}

/* Reads more bytes into ibuf (which must be drained). */
static int
fill(ruf_client *c, uint64_t deadline, ruf_diag *d)
{
	for (;;) {
		ssize_t r = recv(c->fd, c->ibuf, IBUF_SIZE, 0);
		int rc;

		if (r > 0) {
			c->ioff = 0;
			c->ilen = (size_t)r;
			return 0;
		}
		if (r == 0) {
			ruf_diag_set(d, "the server closed the connection");
			return fail(c, RUF_E_NET_CLOSED);
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if ((rc = wait_fd(c, POLLIN, deadline, d)) != 0)
				return rc;
			continue;
		}
		ruf_diag_set(d, "recv: %s", strerror(errno));
		return fail(c, RUF_E_NET_CLOSED);
	}
}

/* The next length-prefixed message (owned by c->rd until the next call). */
static int
recv_msg(ruf_client *c, uint64_t deadline, const uint8_t **m, size_t *n, ruf_diag *d)
{
	for (;;) {
		size_t used;
		int rc = ruf_wire_reader_next(&c->rd, m, n);

		if (rc == 1)
			return 0;
		if (rc < 0) {
			ruf_diag_set(d, "bad message length from the server");
			return fail(c, RUF_E_WIRE_PROTOCOL);
		}
		if (c->ioff == c->ilen && (rc = fill(c, deadline, d)) != 0)
			return rc;
		rc = ruf_wire_reader_feed(&c->rd, c->ibuf + c->ioff, c->ilen - c->ioff, &used);
		c->ioff += used;
		if (rc != 0) {
			ruf_diag_set(d, "bad message length from the server");
			return fail(c, RUF_E_WIRE_PROTOCOL);
		}
	}
}

static int
send_frame(ruf_client *c, const struct ruf_wire_frame *f, ruf_diag *d)
{
	size_t n;
	int rc;

	if (c->dead)
		return RUF_E_NET_CLOSED;
	rc = ruf_wire_session_seal_framed(c->ses, f, c->obuf, RUF_WIRE_LEN_BYTES + RUF_WIRE_MAX_MSG,
	                                  &n);
	if (rc != 0) {
		ruf_diag_set(d, "cannot seal a %s frame: %s", ruf_wire_type_name(f->type),
		             ruf_strerror(rc));
		return rc == RUF_E_FORMAT ? RUF_E_INVAL : fail(c, rc);
	}
	return send_all(c, c->obuf, n, d);
}

/*
 * Verifies a directory rufd pushed: under the pinned root, and newer than
 * version `than` (ruf_directory_accept's rule, on versions: after connect
 * we no longer hold the caller's directory).
 */
static int
verify_pushed_directory(ruf_client *c, const uint8_t *b, size_t n, uint64_t than,
                        ruf_directory **out, ruf_diag *d)
{
	ruf_directory *nd = NULL;
	int rc;

	*out = NULL;
	if ((rc = ruf_directory_load_mem(b, n, c->root, now_of(c), &nd)) != 0) {
		ruf_diag_set(d, "directory from the server: %s", ruf_strerror(rc));
		return rc;
	}
	if (c->dir != NULL)
		rc = ruf_directory_accept(c->dir, nd);
	else
		rc = nd->version > than ? 0 : RUF_E_DIR_ROLLBACK;
	if (rc != 0) {
		ruf_diag_set(d, "directory from the server: %s", ruf_strerror(rc));
		ruf_directory_free(nd);
		return rc;
	}
	*out = nd;
	return 0;
}

/* The version of the newest directory we know of, held or not yet taken. */
static uint64_t
known_version(const ruf_client *c)
{
	return c->newdir != NULL ? c->newdir->version : c->dir_version;
}

/*
 * The next frame for the caller. Pings are answered and directory updates
 * kept on the way; an Error frame ends the connection.
 */
static int
recv_frame(ruf_client *c, uint64_t deadline, struct ruf_wire_frame *f, ruf_diag *d)
{
	for (;;) {
		const uint8_t *m;
		size_t n;
		int rc;

		memset(f, 0, sizeof(*f));
		if (c->dead)
			return RUF_E_NET_CLOSED;
		if ((rc = recv_msg(c, deadline, &m, &n, d)) != 0)
			return rc;
		if ((rc = ruf_wire_session_open(c->ses, m, n, f)) != 0) {
			ruf_diag_set(d, "bad frame from the server: %s", ruf_strerror(rc));
			return fail(c, rc == RUF_E_AUTH ? rc : RUF_E_WIRE_PROTOCOL);
		}
		switch (f->type) {
		case RUF_WIRE_PING: {
			struct ruf_wire_frame p = {.type = RUF_WIRE_PONG};
			p.u.ping.nonce = f->u.ping.nonce;
			ruf_wire_frame_clear(f);
			if ((rc = send_frame(c, &p, d)) != 0)
				return rc;
			continue;
		}
		case RUF_WIRE_DIRECTORY_UPDATE: {
			ruf_directory *nd;
			rc = verify_pushed_directory(c, f->u.directory_update.directory,
			                             f->u.directory_update.len, known_version(c),
			                             &nd, d);
			ruf_wire_frame_clear(f);
			if (rc != 0)
				return fail(c, rc);
			ruf_directory_free(c->newdir);
			c->newdir = nd;
			continue;
		}
		case RUF_WIRE_ERROR:
			ruf_diag_set(d, "server error %u: %s", f->u.error.code,
			             f->u.error.text != NULL ? f->u.error.text : "");
			ruf_wire_frame_clear(f);
			return fail(c, RUF_E_WIRE_ERROR);
		default:
			return 0;
		}
	}
}

/* --- Connect ------------------------------------------------------------- */

static void
set_opts(struct ruf_client_options *o, const struct ruf_client_options *in)
{
	memset(o, 0, sizeof(*o));
	if (in != NULL)
		*o = *in;
	if (o->connect_timeout_ms == 0)
		o->connect_timeout_ms = 30000;
	if (o->io_timeout_ms == 0)
		o->io_timeout_ms = 120000;
	if (o->user_timeout_ms == 0)
		o->user_timeout_ms = 120000;
	if (o->keepalive_idle_s == 0)
		o->keepalive_idle_s = 60;
	if (o->chunk_size == 0)
		o->chunk_size = RUF_WIRE_DEFAULT_CHUNK;
	if (o->chunk_size > RUF_WIRE_MAX_DATA)
		o->chunk_size = RUF_WIRE_MAX_DATA;
}

/* Long-delay links: keepalives find a dead path, the user timeout bounds unacked data. */
static void
tune_socket(int fd, const struct ruf_client_options *o)
{
	int one = 1, idle = (int)o->keepalive_idle_s, intvl = idle / 4 > 0 ? idle / 4 : 1, cnt = 5;
	unsigned ut = o->user_timeout_ms;

	(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ut, sizeof(ut));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Non-blocking connect with a timeout; returns the fd or a negative error. */
static int
connect_one(const struct addrinfo *ai, const struct ruf_client_options *o, ruf_diag *d)
{
	int fd, err = 0;
	socklen_t elen = sizeof(err);

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0) {
		ruf_diag_set(d, "socket: %s", strerror(errno));
		return RUF_E_NET_CONNECT;
	}
	tune_socket(fd, o);
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return fd;
	if (errno != EINPROGRESS) {
		err = errno;
		goto fail;
	}
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		int n = poll(&p, 1, (int)o->connect_timeout_ms);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n == 0 ? ETIMEDOUT : errno;
			goto fail;
		}
		break;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
		err = errno;
	if (err == 0)
		return fd;
fail:
	ruf_diag_set(d, "connect: %s", strerror(err));
	close(fd);
	return err == ETIMEDOUT ? RUF_E_NET_TIMEOUT : RUF_E_NET_CONNECT;
}

/* Checks rufd's certificate from the Welcome: chain, role, revocation, Noise key. */
static int
check_server_cert(ruf_client *c, const uint8_t *raw, size_t len, const uint8_t *noise_pk,
                  ruf_diag *d)
{
	int rc;

	if ((rc = ruf_cert_parse(raw, len, &c->server)) != 0 ||
	    (rc = ruf_cert_verify(c->server, c->root, now_of(c))) != 0 ||
	    (rc = ruf_cert_check_role(c->server, RUF_ROLE_SERVER)) != 0) {
		ruf_diag_set(d, "server certificate: %s", ruf_strerror(rc));
		return RUF_E_WIRE_HANDSHAKE;
	}
	if (c->dir != NULL && ruf_directory_is_revoked(c->dir, c->server->serial)) {
		ruf_diag_set(d, "server certificate: %s", ruf_strerror(RUF_E_CERT_REVOKED));
		return RUF_E_WIRE_HANDSHAKE;
	}
	if (sodium_memcmp(c->server->kx_pk, noise_pk, RUF_KX_PK_BYTES) != 0) {
		ruf_diag_set(d, "server certificate does not hold the Noise key it answered with");
		return RUF_E_WIRE_HANDSHAKE;
	}
	return 0;
}

static int
handshake(ruf_client *c, const struct ruf_client_identity *id, const uint8_t *noise_pk,
          bool *refused, ruf_diag *d)
{
	struct ruf_wire_hello h = {.certificate = id->cert,
	                           .certificate_len = id->cert_len,
	                           .timestamp = now_of(c),
	                           .directory_version = c->dir_version};
	struct ruf_wire_welcome w;
	uint8_t pk[RUF_KX_PK_BYTES];
	const uint8_t *m;
	size_t n;
	int rc;

	if (crypto_scalarmult_base(pk, id->kx_sk) != 0)
		return RUF_E_INVAL;
	rc = ruf_wire_session_new(&c->ses, true, id->kx_sk, pk, noise_pk);
	sodium_memzero(pk, sizeof(pk)); /* public, but derived from the secret in place */
	if (rc != 0) {
		ruf_diag_set(d, "noise: %s", ruf_strerror(rc));
		return rc;
	}
	rc = ruf_wire_session_write_hello(c->ses, &h, c->obuf + RUF_WIRE_LEN_BYTES,
	                                  RUF_WIRE_MAX_MSG1, &n);
	if (rc != 0) {
		ruf_diag_set(d, "hello: %s", ruf_strerror(rc));
		return rc == RUF_E_TOO_LARGE || rc == RUF_E_FORMAT ? RUF_E_INVAL : rc;
	}
	(void)ruf_wire_put_len(c->obuf, n);
	if ((rc = send_all(c, c->obuf, n + RUF_WIRE_LEN_BYTES, d)) != 0)
		return rc;
	rc = recv_msg(c, mono_ms() + c->opt.io_timeout_ms, &m, &n, d);
	if (rc == RUF_E_NET_CLOSED) {
		*refused = true;
		/* rufd refuses a handshake by closing, telling us nothing. */
		ruf_diag_set(d, "the server closed the connection during the handshake "
		                "(certificate refused, revoked, or clock skew)");
		return RUF_E_WIRE_HANDSHAKE;
	}
	if (rc != 0)
		return rc;
	if ((rc = ruf_wire_session_read_welcome(c->ses, m, n, &w)) != 0) {
		ruf_diag_set(d, "welcome: %s", ruf_strerror(rc));
		return RUF_E_WIRE_HANDSHAKE;
	}
	c->server_time = w.server_time;
	rc = check_server_cert(c, w.server_certificate, w.server_certificate_len, noise_pk, d);
	if (rc == 0 && w.directory != NULL)
		rc = verify_pushed_directory(c, w.directory, w.directory_len, c->dir_version,
		                             &c->newdir, d);
	ruf_wire_welcome_clear(&w);
	return rc;
}

/* Back to just after allocation, for a second connection attempt. */
static void
client_reset(ruf_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->dead = false;
	ruf_wire_session_free(c->ses);
	c->ses = NULL;
	ruf_wire_reader_free(&c->rd);
	ruf_wire_reader_init(&c->rd, RUF_WIRE_MAX_MSG);
	c->ioff = c->ilen = 0;
	ruf_cert_free(c->server);
	c->server = NULL;
	ruf_directory_free(c->newdir);
	c->newdir = NULL;
}

int
ruf_client_connect(const char *host, const char *port, const struct ruf_client_identity *id,
                   const struct ruf_client_options *opt, ruf_client **out, ruf_diag *d)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC}, *res = NULL;
	ruf_cert *own = NULL;
	ruf_client *c;
	int rc, fd = RUF_E_NET_CONNECT;

	*out = NULL;
	if (host == NULL || port == NULL || id == NULL || id->cert == NULL || id->kx_sk == NULL ||
	    id->root == NULL || id->directory == NULL)
		return RUF_E_INVAL;
	/* Our own key must be our certificate's, or rufd would refuse us silently. */
	if ((rc = ruf_cert_parse(id->cert, id->cert_len, &own)) != 0) {
		ruf_diag_set(d, "own certificate: %s", ruf_strerror(rc));
		return RUF_E_INVAL;
	}
	{
		uint8_t pk[RUF_KX_PK_BYTES];
		bool same = crypto_scalarmult_base(pk, id->kx_sk) == 0 &&
		            sodium_memcmp(pk, own->kx_pk, RUF_KX_PK_BYTES) == 0;
		ruf_cert_free(own);
		if (!same) {
			ruf_diag_set(d, "the key exchange key is not the certificate's");
			return RUF_E_INVAL;
		}
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return RUF_E_NOMEM;
	c->fd = -1;
	set_opts(&c->opt, opt);
	c->fixed_now = c->opt.now != 0;
	c->root = id->root;
	c->dir = id->directory;
	c->dir_version = id->directory->version;
	ruf_wire_reader_init(&c->rd, RUF_WIRE_MAX_MSG);
	if ((c->ibuf = malloc(IBUF_SIZE)) == NULL ||
	    (c->obuf = malloc(RUF_WIRE_LEN_BYTES + RUF_WIRE_MAX_MSG)) == NULL) {
		rc = RUF_E_NOMEM;
		goto fail;
	}
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		ruf_diag_set(d, "%s: %s", host, gai_strerror(rc));
		rc = RUF_E_NET_CONNECT;
		goto fail;
	}
	/*
	 * The directory's current Noise key first; if rufd closes on it and the
	 * directory announces the next key, HQ may have rotated already: try
	 * that once on a fresh connection.
	 */
	for (int k = 0; k < 2; k++) {
		const uint8_t *key =
		    k == 0 ? id->directory->hq.noise_pk : id->directory->hq.next_noise_pk;
		bool refused = false;

		if (k == 1 && !id->directory->hq.has_next)
			break;
		if (k == 1)
			client_reset(c);
		fd = RUF_E_NET_CONNECT;
		for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
			if ((fd = connect_one(ai, &c->opt, d)) >= 0)
				break;
		}
		if (fd < 0) {
			rc = fd;
			break;
		}
		c->fd = fd;
		if ((rc = handshake(c, id, key, &refused, d)) == 0 || !refused)
			break;
	}
	freeaddrinfo(res);
	if (rc != 0)
		goto fail;
	c->dir = NULL; /* borrowed for connect only */
	*out = c;
	return 0;
fail:
	ruf_client_close(c);
	return rc;
}

int
ruf_client_split_hostport(const char *addr, char *host, size_t hostlen, char *port, size_t portlen)
{
	const char *colon, *h = addr;
	size_t n;

	if (addr[0] == '[') {
		const char *end = strchr(addr, ']');
		if (end == NULL || end[1] != ':')
			return RUF_E_INVAL;
		h = addr + 1;
		n = (size_t)(end - h);
		colon = end + 1;
	} else {
		if ((colon = strrchr(addr, ':')) == NULL)
			return RUF_E_INVAL;
		n = (size_t)(colon - addr);
	}
	if (n == 0 || n >= hostlen || colon[1] == '\0' || strlen(colon + 1) >= portlen)
		return RUF_E_INVAL;
	memcpy(host, h, n);
	host[n] = '\0';
	memcpy(port, colon + 1, strlen(colon + 1) + 1);
	return 0;
}

int
ruf_client_connect_any(const char *const *addrs, size_t n, size_t first,
                       const struct ruf_client_identity *id, const struct ruf_client_options *opt,
                       ruf_client **out, size_t *used, ruf_diag *d)
{
	char why[sizeof(d->msg)] = "";
	size_t wlen = 0;
	int rc = RUF_E_NET_CONNECT;

	*out = NULL;
	if (addrs == NULL || n == 0)
		return RUF_E_INVAL;
	for (size_t k = 0; k < n; k++) {
		size_t i = (first + k) % n;
		char host[256], port[16];
		ruf_diag one = {{0}};

		if (ruf_client_split_hostport(addrs[i], host, sizeof(host), port, sizeof(port)) !=
		    0) {
			rc = RUF_E_NET_CONNECT;
			snprintf(one.msg, sizeof(one.msg), "not HOST:PORT");
		} else if ((rc = ruf_client_connect(host, port, id, opt, out, &one)) == 0) {
			if (used != NULL)
				*used = i;
			return 0;
		} else if (rc == RUF_E_INVAL || rc == RUF_E_NOMEM) {
			ruf_diag_set(d, "%s", one.msg);
			return rc;
		}
		if (wlen < sizeof(why)) {
			int m =
			    snprintf(why + wlen, sizeof(why) - wlen, "%s%s: %s%s%s", k ? "; " : "",
			             addrs[i], ruf_strerror(rc), one.msg[0] ? ": " : "", one.msg);
			wlen += m > 0 ? (size_t)m : 0;
		}
	}
	ruf_diag_set(d, "%s", why);
	return rc;
}

void
ruf_client_close(ruf_client *c)
{
	if (c == NULL)
		return;
	if (c->fd >= 0)
		close(c->fd);
	ruf_wire_session_free(c->ses);
	ruf_wire_reader_free(&c->rd);
	free(c->ibuf);
	free(c->obuf);
	ruf_cert_free(c->server);
	ruf_directory_free(c->newdir);
	free(c);
}

const ruf_cert *
ruf_client_server_cert(const ruf_client *c)
{
	return c->server;
}

uint64_t
ruf_client_server_time(const ruf_client *c)
{
	return c->server_time;
}

ruf_directory *
ruf_client_take_directory(ruf_client *c)
{
	ruf_directory *d = c->newdir;

	if (d != NULL)
		c->dir_version = d->version;
	c->newdir = NULL;
	return d;
}

/* --- Submit ---------------------------------------------------------------- */

void
ruf_client_submit_result_free(struct ruf_client_submit_result *r)
{
	if (r == NULL)
		return;
	free(r->receipt);
	ruf_directory_free(r->directory);
	memset(r, 0, sizeof(*r));
}

/* What rufd answered to our offer or to the last chunk. */
static int
submit_answer(ruf_client *c, const struct ruf_wire_frame *f, const uint8_t *id, const uint8_t *hash,
              struct ruf_client_submit_result *res, ruf_diag *d)
{
	int rc;

	switch (f->type) {
	case RUF_WIRE_RECEIPT:
		/* c->server was verified under c->root when we connected. */
		rc =
		    ruf_wire_receipt_verify_known(f->u.receipt.raw, f->u.receipt.raw_len, c->server,
		                                  c->root, now_of(c), id, hash, &res->info);
		if (rc != 0) {
			ruf_diag_set(d, "receipt: %s", ruf_strerror(rc));
			return fail(c, rc);
		}
		if ((res->receipt = malloc(f->u.receipt.raw_len)) == NULL)
			return RUF_E_NOMEM;
		memcpy(res->receipt, f->u.receipt.raw, f->u.receipt.raw_len);
		res->receipt_len = f->u.receipt.raw_len;
		return 0;
	case RUF_WIRE_NACK:
		if (sodium_memcmp(f->u.nack.message_id, id, RUF_WIRE_MSGID_BYTES) != 0)
			break;
		switch (f->u.nack.reason) {
		case RUF_WIRE_NACK_RETRY_LATER:
			res->retry_after_s = f->u.nack.retry_after_s;
			ruf_diag_set(d, "server asks to retry in %u s", f->u.nack.retry_after_s);
			return RUF_E_WIRE_RETRY_LATER;
		case RUF_WIRE_NACK_STALE_DIRECTORY:
			/*
			 * Not older than the newest we know (it may be the one the
			 * Welcome already brought): the envelope was sealed under an
			 * older one.
			 */
			rc = verify_pushed_directory(
			    c, f->u.nack.directory, f->u.nack.directory_len,
			    c->dir_version > 0 ? c->dir_version - 1 : 0, &res->directory, d);
			return rc != 0 ? fail(c, rc) : RUF_E_WIRE_STALE_DIRECTORY;
		case RUF_WIRE_NACK_REJECTED:
			ruf_diag_set(d, "the server rejected the envelope");
			return RUF_E_WIRE_REJECTED;
		default:
			ruf_diag_set(d, "the envelope is larger than the server accepts");
			return RUF_E_TOO_LARGE;
		}
	default:
		break;
	}
	ruf_diag_set(d, "unexpected %s frame during a submission", ruf_wire_type_name(f->type));
	return fail(c, RUF_E_WIRE_PROTOCOL);
}

/*
 * A frame already waiting (rufd may answer before we finish sending, e.g.
 * a Nack): true if one is buffered or readable now.
 */
static bool
answer_waiting(ruf_client *c)
{
	struct pollfd p = {.fd = c->fd, .events = POLLIN};

	if (c->ioff < c->ilen || ruf_wire_reader_pending(&c->rd) > 0)
		return true;
	return poll(&p, 1, 0) == 1;
}

int
ruf_client_submit(ruf_client *c, int fd, const struct ruf_client_progress *progress,
                  struct ruf_client_submit_result *res, ruf_diag *d)
{
	struct ruf_wire_frame f = {0}, g;
	uint8_t id[RUF_WIRE_MSGID_BYTES], hash[RUF_WIRE_HASH_BYTES];
	uint8_t *chunk = NULL;
	uint64_t total, off;
	int rc;

	memset(res, 0, sizeof(*res));
	memset(&g, 0, sizeof(g));
	if (c == NULL || fd < 0)
		return RUF_E_INVAL;
	if (c->dead)
		return RUF_E_NET_CLOSED;
	/* Hashes the whole file: the envelope's identity for the receipt. */
	if ((rc = ruf_envelope_identity(fd, id, hash, &total)) != 0) {
		ruf_diag_set(d, "envelope: %s", ruf_strerror(rc));
		return rc;
	}
	if (total < 1 || total > RUF_WIRE_MAX_ENVELOPE) {
		ruf_diag_set(d, "envelope: size out of range");
		return RUF_E_TOO_LARGE;
	}
	res->total_len = total;

	f.type = RUF_WIRE_SUBMIT_OFFER;
	memcpy(f.u.offer.message_id, id, sizeof(id));
	f.u.offer.total_len = total;
	memcpy(f.u.offer.hash, hash, sizeof(hash));
	if ((rc = send_frame(c, &f, d)) != 0)
		return rc;
	if ((rc = recv_frame(c, mono_ms() + c->opt.io_timeout_ms, &g, d)) != 0)
		return rc;
	if (g.type != RUF_WIRE_SUBMIT_STATUS) {
		rc = submit_answer(c, &g, id, hash, res, d);
		goto out;
	}
	if (sodium_memcmp(g.u.status.message_id, id, sizeof(id)) != 0 || g.u.status.have > total) {
		ruf_diag_set(d, "submit status does not match the offer");
		rc = fail(c, RUF_E_WIRE_PROTOCOL);
		goto out;
	}
	off = res->resumed_at = g.u.status.have;
	ruf_wire_frame_clear(&g);
	if ((chunk = malloc(c->opt.chunk_size)) == NULL) {
		rc = RUF_E_NOMEM;
		goto out;
	}
	if (progress != NULL && progress->fn != NULL)
		progress->fn(progress->arg, off, total);
	/* Pipelined: no waiting between chunks; rufd answers once, at the end. */
	while (off < total) {
		size_t n =
		    total - off < c->opt.chunk_size ? (size_t)(total - off) : c->opt.chunk_size;

		/* rufd may answer early (a Nack): look without blocking. */
		if (answer_waiting(c)) {
			rc = recv_frame(c, mono_ms(), &g, d);
			if (rc == 0) {
				rc = submit_answer(c, &g, id, hash, res, d);
				goto out;
			}
			if (rc != RUF_E_NET_TIMEOUT)
				goto out;
		}
		if ((rc = ruf_pread_all(fd, chunk, n, off)) != 0) {
			ruf_diag_set(d, "envelope: %s", ruf_strerror(rc));
			goto out;
		}
		memset(&f, 0, sizeof(f));
		f.type = RUF_WIRE_SUBMIT_CHUNK;
		memcpy(f.u.chunk.message_id, id, sizeof(id));
		f.u.chunk.offset = off;
		f.u.chunk.data = chunk;
		f.u.chunk.len = n;
		if ((rc = send_frame(c, &f, d)) != 0) {
			int rc2;

			if (rc != RUF_E_NET_CLOSED)
				goto out;
			/* rufd may have sent a Nack and closed: prefer its reason. */
			c->dead = false;
			rc2 = recv_frame(c, mono_ms() + 1000, &g, d);
			c->dead = true;
			if (rc2 == 0)
				rc = submit_answer(c, &g, id, hash, res, d);
			goto out;
		}
		off += n;
		if (progress != NULL && progress->fn != NULL)
			progress->fn(progress->arg, off, total);
	}
	if ((rc = recv_frame(c, mono_ms() + c->opt.io_timeout_ms, &g, d)) != 0)
		goto out;
	rc = submit_answer(c, &g, id, hash, res, d);
out:
	ruf_wire_frame_clear(&g);
	free(chunk);
	return rc;
}

int
ruf_client_submit_path(ruf_client *c, const char *path, const struct ruf_client_progress *progress,
                       struct ruf_client_submit_result *res, ruf_diag *d)
{
	int fd, rc;

	memset(res, 0, sizeof(*res));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		ruf_diag_set(d, "%s: %s", path, strerror(errno));
		return ruf_errno(errno);
	}
	rc = ruf_client_submit(c, fd, progress, res, d);
	close(fd);
	return rc;
}

/* --- Delivery ---------------------------------------------------------------- */

int
ruf_client_subscribe(ruf_client *c, const char *const *queues, size_t n, uint32_t window,
                     ruf_diag *d)
{
	struct ruf_wire_frame f = {.type = RUF_WIRE_SUBSCRIBE};
	int rc;

	if (c == NULL || queues == NULL || n == 0 || n > RUF_WIRE_MAX_SUBSCRIBE)
		return RUF_E_INVAL;
	for (size_t i = 0; i < n; i++)
		f.u.subscribe.queues[i] = queues[i];
	f.u.subscribe.n_queues = n;
	f.u.subscribe.window = window;
	if ((rc = send_frame(c, &f, d)) != 0)
		return rc;
	c->subscribed = true;
	return 0;
}

/* Stores one Deliver frame's data into the sink. */
static int
sink_put(const struct ruf_client_sink *sink, struct ruf_client_delivery *out, size_t *cap,
         const struct ruf_wire_frame *f, ruf_diag *d)
{
	uint64_t end = f->u.deliver.offset + f->u.deliver.len;
	int rc;

	if (sink->fd >= 0) {
		if (lseek(sink->fd, (off_t)f->u.deliver.offset, SEEK_SET) < 0 ||
		    (rc = ruf_write_all(sink->fd, f->u.deliver.data, f->u.deliver.len)) != 0) {
			ruf_diag_set(d, "delivery sink: %s", strerror(errno));
			return RUF_E_IO;
		}
		return 0;
	}
	if (end > *cap) {
		/* Grow with the data, not with what total_len claims. */
		size_t ncap = *cap * 2 > end ? *cap * 2 : (size_t)end;
		uint8_t *nb;
		if (ncap > out->total_len)
			ncap = (size_t)out->total_len;
		if ((nb = realloc(out->data, ncap)) == NULL)
			return RUF_E_NOMEM;
		out->data = nb;
		*cap = ncap;
	}
	memcpy(out->data + f->u.deliver.offset, f->u.deliver.data, f->u.deliver.len);
	return 0;
}

int
ruf_client_next_delivery(ruf_client *c, int timeout_ms, const struct ruf_client_sink *sink,
                         struct ruf_client_delivery *out, ruf_diag *d)
{
	struct ruf_wire_frame f;
	uint64_t got = 0, deadline;
	size_t cap = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if (c == NULL || sink == NULL)
		return RUF_E_INVAL;
	deadline = timeout_ms < 0 ? UINT64_MAX : mono_ms() + (uint64_t)timeout_ms;
	for (;;) {
		if ((rc = recv_frame(c, deadline, &f, d)) != 0)
			goto fail;
		if (f.type != RUF_WIRE_DELIVER) {
			ruf_diag_set(d, "unexpected %s frame while waiting for deliveries",
			             ruf_wire_type_name(f.type));
			ruf_wire_frame_clear(&f);
			rc = fail(c, RUF_E_WIRE_PROTOCOL);
			goto fail;
		}
		if (got == 0) {
			/* The first frame of an envelope: offset 0, names it. */
			if (f.u.deliver.offset != 0) {
				rc = RUF_E_WIRE_PROTOCOL;
			} else if (f.u.deliver.total_len > sink->max_len) {
				ruf_diag_set(d, "delivery of %llu bytes exceeds the limit",
				             (unsigned long long)f.u.deliver.total_len);
				rc = RUF_E_TOO_LARGE;
			} else {
				snprintf(out->queue, sizeof(out->queue), "%s", f.u.deliver.queue);
				out->seq = f.u.deliver.seq;
				memcpy(out->message_id, f.u.deliver.message_id,
				       RUF_WIRE_MSGID_BYTES);
				out->total_len = f.u.deliver.total_len;
				/* wire.c's rules bound it by RUF_WIRE_MAX_RECEIPT. */
				if (f.u.deliver.receipt_len > 0)
					memcpy(out->receipt, f.u.deliver.receipt,
					       f.u.deliver.receipt_len);
				out->receipt_len = f.u.deliver.receipt_len;
			}
		} else if (strcmp(out->queue, f.u.deliver.queue) != 0 ||
		           out->seq != f.u.deliver.seq ||
		           memcmp(out->message_id, f.u.deliver.message_id, RUF_WIRE_MSGID_BYTES) !=
		               0 ||
		           out->total_len != f.u.deliver.total_len || f.u.deliver.offset != got) {
			rc = RUF_E_WIRE_PROTOCOL;
		}
		if (rc == RUF_E_WIRE_PROTOCOL)
			ruf_diag_set(d, "deliver frames out of order");
		if (rc == 0)
			rc = sink_put(sink, out, &cap, &f, d);
		got += f.u.deliver.len;
		bool last = f.u.deliver.last;
		ruf_wire_frame_clear(&f);
		if (rc != 0) {
			rc = fail(c, rc);
			goto fail;
		}
		if (last) {
			/* A reused file may hold a longer envelope's tail. */
			if (sink->fd >= 0 && ftruncate(sink->fd, (off_t)out->total_len) != 0) {
				ruf_diag_set(d, "delivery sink: %s", strerror(errno));
				rc = fail(c, RUF_E_IO);
				goto fail;
			}
			return 0;
		}
		/* The rest of an envelope follows within the I/O timeout. */
		deadline = mono_ms() + c->opt.io_timeout_ms;
	}
fail:
	if (rc == RUF_E_NET_TIMEOUT && got > 0)
		c->dead = true; /* half an envelope: the stream is out of step */
	free(out->data);
	memset(out, 0, sizeof(*out));
	return rc;
}

int
ruf_client_ack(ruf_client *c, const char *queue, uint64_t seq, ruf_diag *d)
{
	struct ruf_wire_frame f = {.type = RUF_WIRE_DELIVER_ACK};

	if (c == NULL || queue == NULL)
		return RUF_E_INVAL;
	f.u.deliver_ack.queue = queue;
	f.u.deliver_ack.seq = seq;
	return send_frame(c, &f, d);
}

int
ruf_client_ping(ruf_client *c, ruf_diag *d)
{
	struct ruf_wire_frame f = {.type = RUF_WIRE_PING}, g;
	uint64_t deadline;
	int rc;

	if (c == NULL || c->subscribed)
		return RUF_E_INVAL;
	randombytes_buf(&f.u.ping.nonce, sizeof(f.u.ping.nonce));
	if ((rc = send_frame(c, &f, d)) != 0)
		return rc;
	deadline = mono_ms() + c->opt.io_timeout_ms;
	if ((rc = recv_frame(c, deadline, &g, d)) != 0)
		return rc;
	if (g.type != RUF_WIRE_PONG || g.u.ping.nonce != f.u.ping.nonce) {
		ruf_diag_set(d, "expected a pong, got %s", ruf_wire_type_name(g.type));
		rc = fail(c, RUF_E_WIRE_PROTOCOL);
	}
	ruf_wire_frame_clear(&g);
	return rc;
}
