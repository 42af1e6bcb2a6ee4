/*
 * session.c - connection state machine (see session.h): accept, limits,
 * u16be framing, the Noise IK handshake as responder with the Hello checks,
 * then frame dispatch to ingest.c and delivery.c.
 */
#include "session.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "util.h"

/* What on_read receives into (loop thread only); see session.h in. */
#define IN_CAP (RUF_WIRE_LEN_BYTES + RUF_WIRE_MAX_MSG)
static uint8_t loop_in[IN_CAP];

struct wreq {
	uv_write_t req;
	struct session *s;
	size_t len;
	uint8_t buf[];
};

static void
session_maybe_free(struct session *s)
{
	if (s->open_handles > 0 || s->refs > 0)
		return;
	ingest_session_free(s);
	delivery_session_free(s);
	if (s->in != loop_in)
		free(s->in);
	ruf_wire_reader_free(&s->rd);
	ruf_wire_session_free(s->ws);
	ruf_cert_free(s->cert);
	free(s);
}

void
session_ref(struct session *s)
{
	s->refs++;
}

void
session_unref(struct session *s)
{
	if (s->refs == 0)
		abort();
	s->refs--;
	session_maybe_free(s);
}

static void
on_handle_closed(uv_handle_t *h)
{
	struct session *s = h->data;

	s->open_handles--;
	session_maybe_free(s);
}

static uint64_t *
role_gauge(struct session *s)
{
	if (s->state != S_OPEN)
		return &rufd_stats.conn_unauth;
	return s->role == RUF_ROLE_DESK ? &rufd_stats.conn_desk : &rufd_stats.conn_device;
}

void
session_close(struct session *s)
{
	struct rufd *d = s->d;

	if (s->state == S_CLOSING)
		return;
	(*role_gauge(s))--;
	s->state = S_CLOSING;
	/* Unlink now so that nothing (delivery pushes, reloads) finds us again. */
	if (s->prev)
		s->prev->next = s->next;
	else
		d->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->next = s->prev = NULL;
	d->n_sessions--;
	s->dead = true;
	log_debug("closed %s %s", s->peer, s->who);
	uv_close((uv_handle_t *)&s->timer, on_handle_closed);
	uv_close((uv_handle_t *)&s->tcp, on_handle_closed);
}

bool
session_congested(const struct session *s)
{
	return s->wq_bytes > s->d->cfg.max_conn_buffer / 2;
}

static void session_pump(struct session *s);

static void read_start(struct session *s);

static void
on_write(uv_write_t *req, int status)
{
	struct wreq *w = (struct wreq *)req;
	struct session *s = w->s;

	s->wq_bytes -= w->len;
	s->wq_n--;
	free(w);
	if (s->state == S_CLOSING)
		return;
	if (status < 0) {
		log_debug("write to %s failed: %s", s->peer, uv_strerror(status));
		session_close(s);
		return;
	}
	if (s->flush_close) {
		if (s->wq_n == 0)
			session_close(s);
		return;
	}
	/* The peer is reading again: take more input, push more deliveries. */
	if (!session_congested(s)) {
		read_start(s);
		if (s->state == S_OPEN)
			delivery_pump(s);
	}
}

/* Queues msg (len bytes) with its u16be length. */
static int
send_raw(struct session *s, const uint8_t *msg, size_t len)
{
	struct wreq *w;
	uv_buf_t b;
	int rc;

	if (!(w = malloc(sizeof(*w) + RUF_WIRE_LEN_BYTES + len)))
		return RUF_E_NOMEM;
	if ((rc = ruf_wire_put_len(w->buf, len)) != 0) {
		free(w);
		return rc;
	}
	memcpy(w->buf + RUF_WIRE_LEN_BYTES, msg, len);
	w->s = s;
	w->len = RUF_WIRE_LEN_BYTES + len;
	b = uv_buf_init((char *)w->buf, (unsigned)w->len);
	if ((rc = uv_write(&w->req, (uv_stream_t *)&s->tcp, &b, 1, on_write)) != 0) {
		free(w);
		return RUF_E_IO;
	}
	s->wq_bytes += w->len;
	s->wq_n++;
	if (s->wq_bytes > rufd_stats.conn_buffer_max)
		rufd_stats.conn_buffer_max = s->wq_bytes;
	/* A slow reader must not make us buffer without bound: stop reading it. */
	if (s->wq_bytes > s->d->cfg.max_conn_buffer && s->reading) {
		uv_read_stop((uv_stream_t *)&s->tcp);
		s->reading = false;
	}
	return 0;
}

int
session_send(struct session *s, const struct ruf_wire_frame *f)
{
	static uint8_t out[RUF_WIRE_MAX_MSG]; /* loop thread only; ciphertext */
	size_t n = 0;
	int rc;

	if (s->state == S_CLOSING)
		return RUF_E_INVAL;
	if ((rc = ruf_wire_session_seal(s->ws, f, out, sizeof(out), &n)) == 0)
		rc = send_raw(s, out, n);
	if (rc != 0) {
		log_warnx("%s %s: cannot send %s frame: %s", s->peer, s->who,
		          ruf_wire_type_name(f->type), ruf_strerror(rc));
		session_close(s);
	}
	return rc;
}

void
session_fail(struct session *s, uint32_t code, const char *text)
{
	struct ruf_wire_frame f = {.type = RUF_WIRE_ERROR};

	if (s->state == S_CLOSING || s->flush_close)
		return;
	log_notice("%s %s: closing: %s", s->peer, s->who, text);
	if (code == RUF_WIRE_ERR_PROTOCOL)
		rufd_stats.protocol_errors++;
	if (s->state != S_OPEN) {
		session_close(s);
		return;
	}
	f.u.error.code = code;
	f.u.error.text = text;
	if (session_send(s, &f) != 0)
		return;
	s->flush_close = true;
	if (s->reading) {
		uv_read_stop((uv_stream_t *)&s->tcp);
		s->reading = false;
	}
	if (s->wq_n == 0)
		session_close(s);
}

static void
on_timeout(uv_timer_t *t)
{
	struct session *s = t->data;

	if (s->state == S_HELLO) {
		rufd_stats.hs_fail[HS_FAIL_TIMEOUT]++;
		log_info("%s: handshake timeout", s->peer);
		session_close(s);
		return;
	}
	if (s->state == S_WAIT_FIRST) {
		rufd_stats.hs_fail[HS_FAIL_TIMEOUT]++;
		log_info("%s %s: no transport message after the handshake", s->peer, s->who);
		session_close(s);
		return;
	}
	if (!s->ping_sent && !s->flush_close) {
		/*
		 * A desk waiting for deliveries is quiet, not dead: ask once.
		 * Any message from the peer re-arms the timer (timer_restart).
		 */
		struct ruf_wire_frame f = {.type = RUF_WIRE_PING};
		f.u.ping.nonce = uv_now(s->d->loop);
		if (session_send(s, &f) != 0)
			return;
		s->ping_sent = true;
		uv_timer_start(&s->timer, on_timeout, s->d->cfg.idle_timeout * 1000, 0);
		return;
	}
	log_info("%s %s: idle timeout", s->peer, s->who);
	session_fail(s, RUF_WIRE_ERR_PROTOCOL, "idle timeout");
}

static void
timer_restart(struct session *s)
{
	uint64_t secs = s->state == S_OPEN ? s->d->cfg.idle_timeout : s->d->cfg.handshake_timeout;

	s->ping_sent = false;

	uv_timer_start(&s->timer, on_timeout, secs * 1000, 0);
}

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct session *s = h->data;
	uint8_t *nb;

	(void)hint;
	if (s->in_len == 0) {
		*buf = uv_buf_init((char *)loop_in, IN_CAP);
		return;
	}
	/* Bytes kept from before (rare): read behind them in our own buffer. */
	if (s->in_cap < IN_CAP) {
		if (!(nb = realloc(s->in, IN_CAP))) {
			*buf = uv_buf_init(NULL, 0); /* on_read gets UV_ENOBUFS */
			return;
		}
		s->in = nb;
		s->in_cap = IN_CAP;
	}
	if (s->in_off > 0) {
		memmove(s->in, s->in + s->in_off, s->in_len);
		s->in_off = 0;
	}
	*buf = uv_buf_init((char *)s->in + s->in_len, (unsigned)(IN_CAP - s->in_len));
}

/*
 * After on_read's pump: what a blocked session did not frame yet moves out
 * of the loop-wide buffer; an idle session gives its buffers back.
 */
static void
input_settle(struct session *s)
{
	if (s->in == loop_in) {
		s->in = NULL;
		s->in_cap = 0;
		if (s->in_len > 0 && s->state != S_CLOSING) {
			if (!(s->in = malloc(s->in_len))) {
				s->in_len = s->in_off = 0;
				session_fail(s, RUF_WIRE_ERR_INTERNAL, "out of memory");
				return;
			}
			memcpy(s->in, loop_in + s->in_off, s->in_len);
			s->in_cap = s->in_len;
		} else {
			s->in_len = 0;
		}
		s->in_off = 0;
	}
	if (s->in_len == 0 && ruf_wire_reader_pending(&s->rd) == 0)
		ruf_wire_reader_free(&s->rd);
}

static void
on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	struct session *s = st->data;

	(void)buf;
	if (s->state == S_CLOSING)
		return;
	if (n < 0) {
		if (n != UV_EOF)
			log_debug("%s: read: %s", s->peer, uv_strerror((int)n));
		session_close(s);
		return;
	}
	if (buf->base == (char *)loop_in) {
		s->in = loop_in;
		s->in_off = 0;
		s->in_len = (size_t)n;
	} else {
		s->in_len += (size_t)n;
	}
	session_pump(s);
	input_settle(s);
}

static void
read_start(struct session *s)
{
	/* Draining for SIGTERM: no new requests, only answers to those in progress. */
	if (s->reading || s->blocked || s->flush_close || s->state == S_CLOSING || s->d->draining)
		return;
	if (s->wq_bytes > s->d->cfg.max_conn_buffer)
		return;
	/* The input buffer can be full only while blocked; never read into 0 bytes. */
	if (s->in_len >= IN_CAP)
		return;
	if (uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read) == 0)
		s->reading = true;
}

void
session_block(struct session *s)
{
	s->blocked = true;
	if (s->reading) {
		uv_read_stop((uv_stream_t *)&s->tcp);
		s->reading = false;
	}
}

void
session_unblock(struct session *s)
{
	if (s->state == S_CLOSING)
		return;
	s->blocked = false;
	session_pump(s); /* frames already buffered first */
	read_start(s);
}

/* ---- handshake ---- */

static void
hs_refuse(struct session *s, enum hs_fail why, const char *detail)
{
	rufd_stats.hs_fail[why]++;
	log_notice("%s: handshake refused (%s): %s", s->peer, rufd_hs_fail_names[why], detail);
	session_close(s);
}

static void
on_hello(struct session *s, const uint8_t *msg, size_t len)
{
	struct rufd_ident *id = s->d->id;
	struct ruf_wire_hello h = {0};
	struct ruf_wire_welcome w = {0};
	static uint8_t out[RUF_WIRE_MAX_MSG];
	const uint8_t *rs;
	uint64_t now = ruf_now(), skew;
	size_t n = 0;
	int rc;

	if ((rc = ruf_wire_session_read_hello(s->ws, msg, len, &h)) != 0) {
		hs_refuse(s, HS_FAIL_NOISE, ruf_strerror(rc));
		return;
	}
	if ((rc = ruf_cert_parse(h.certificate, h.certificate_len, &s->cert)) != 0 ||
	    (rc = ruf_cert_verify(s->cert, id->root, now)) != 0) {
		hs_refuse(s, HS_FAIL_CERT, ruf_strerror(rc));
		goto out;
	}
	s->role = s->cert->role;
	snprintf(s->who, sizeof(s->who), "%s %s #%llu", ruf_role_name(s->role), s->cert->subject,
	         (unsigned long long)s->cert->serial);
	if (s->role != RUF_ROLE_DEVICE && s->role != RUF_ROLE_DESK) {
		hs_refuse(s, HS_FAIL_ROLE, s->who);
		goto out;
	}
	if (ruf_directory_is_revoked(id->dir, s->cert->serial)) {
		hs_refuse(s, HS_FAIL_REVOKED, s->who);
		goto out;
	}
	rs = ruf_wire_session_remote_static(s->ws);
	if (!rs || sodium_memcmp(rs, s->cert->kx_pk, RUF_KX_PK_BYTES) != 0) {
		hs_refuse(s, HS_FAIL_KEY, s->who);
		goto out;
	}
	skew = h.timestamp > now ? h.timestamp - now : now - h.timestamp;
	if (skew > s->d->cfg.clock_skew) {
		hs_refuse(s, HS_FAIL_CLOCK, s->who);
		goto out;
	}
	w.server_time = now;
	w.directory_version = id->dir->version;
	w.server_certificate = id->server->raw;
	w.server_certificate_len = id->server->rawlen;
	if (h.directory_version < id->dir->version) {
		w.directory = id->dir->raw;
		w.directory_len = id->dir->rawlen;
	}
	rc = ruf_wire_session_write_welcome(s->ws, &w, out, sizeof(out), &n);
	if (rc == RUF_E_TOO_LARGE && w.directory) {
		/* The client will learn of the directory from a Nack stale-directory. */
		log_warnx("directory (%zu bytes) does not fit in a welcome", w.directory_len);
		w.directory = NULL;
		w.directory_len = 0;
		rc = ruf_wire_session_write_welcome(s->ws, &w, out, sizeof(out), &n);
	}
	if (rc != 0 || (rc = send_raw(s, out, n)) != 0) {
		hs_refuse(s, HS_FAIL_NOISE, ruf_strerror(rc));
		goto out;
	}
	s->state = S_WAIT_FIRST;
	ruf_wire_reader_set_max(&s->rd, RUF_WIRE_MAX_MSG);
	log_debug("%s %s: handshake answered", s->peer, s->who);
out:
	ruf_wire_hello_clear(&h);
}

/* ---- frames ---- */

static void
on_frame(struct session *s, const struct ruf_wire_frame *f)
{
	struct ruf_wire_frame r = {0};

	switch (f->type) {
	case RUF_WIRE_PING:
		r.type = RUF_WIRE_PONG;
		r.u.ping.nonce = f->u.ping.nonce;
		(void)session_send(s, &r);
		return;
	case RUF_WIRE_PONG:
		return;
	case RUF_WIRE_ERROR:
		log_info("%s %s: peer error %u", s->peer, s->who, f->u.error.code);
		session_close(s);
		return;
	case RUF_WIRE_SUBMIT_OFFER:
	case RUF_WIRE_SUBMIT_CHUNK:
		ingest_on_frame(s, f);
		return;
	case RUF_WIRE_SUBSCRIBE:
	case RUF_WIRE_DELIVER_ACK:
		delivery_on_frame(s, f);
		return;
	default:
		session_fail(s, RUF_WIRE_ERR_PROTOCOL, "unexpected frame type");
		return;
	}
}

static void
on_message(struct session *s, const uint8_t *msg, size_t len)
{
	struct ruf_wire_frame f = {0};
	int rc;

	if (s->state == S_HELLO) {
		on_hello(s, msg, len);
		if (s->state != S_CLOSING)
			timer_restart(s);
		return;
	}
	if ((rc = ruf_wire_session_open(s->ws, msg, len, &f)) != 0) {
		if (s->state == S_WAIT_FIRST) {
			hs_refuse(s, HS_FAIL_NOISE, "first transport message does not open");
			return;
		}
		if (rc == RUF_E_FORMAT || rc == RUF_E_TOO_LARGE) {
			session_fail(s, RUF_WIRE_ERR_PROTOCOL, "malformed frame");
			return;
		}
		log_notice("%s %s: transport message fails: %s", s->peer, s->who, ruf_strerror(rc));
		session_close(s);
		return;
	}
	if (s->state == S_WAIT_FIRST) {
		/* Now the peer holds the keys of message 1: it is not a replay. */
		rufd_stats.conn_unauth--;
		s->state = S_OPEN;
		(*role_gauge(s))++;
		rufd_stats.hs_ok++;
		log_info("%s %s: connected", s->peer, s->who);
	}
	timer_restart(s);
	on_frame(s, &f);
	ruf_wire_frame_clear(&f);
}

/* Processes buffered input until it runs out, or a job blocks us, or we close. */
static void
session_pump(struct session *s)
{
	for (;;) {
		const uint8_t *msg;
		size_t used = 0, len;
		int rc;

		if (s->state == S_CLOSING || s->blocked || s->flush_close || s->d->draining)
			return;
		rc = ruf_wire_reader_next(&s->rd, &msg, &len);
		if (rc == 1) {
			on_message(s, msg, len);
			continue;
		}
		if (rc == 0) {
			if (s->in_len == 0)
				return;
			/* Consumes at least one byte: no complete message is waiting. */
			rc = ruf_wire_reader_feed(&s->rd, s->in + s->in_off, s->in_len, &used);
		}
		if (rc < 0) {
			if (s->state == S_HELLO)
				hs_refuse(s, HS_FAIL_LIMIT, "message 1 too large or empty");
			else
				session_fail(s, RUF_WIRE_ERR_PROTOCOL, "bad message length");
			return;
		}
		s->in_off += used;
		s->in_len -= used;
		if (s->in_len == 0) {
			s->in_off = 0;
			if (s->in != loop_in) {
				free(s->in); /* kept bytes all framed */
				s->in = NULL;
				s->in_cap = 0;
			}
		}
	}
}

void
rufd_session_accept(struct rufd *d, uv_stream_t *server)
{
	struct session *s;
	struct sockaddr_storage ss;
	int sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	if (!(s = calloc(1, sizeof(*s)))) {
		log_err("out of memory accepting a connection");
		return;
	}
	s->d = d;
	uv_tcp_init(d->loop, &s->tcp);
	uv_timer_init(d->loop, &s->timer);
	s->tcp.data = s->timer.data = s;
	s->open_handles = 2;
	s->state = S_HELLO;
	rufd_stats.conn_unauth++;
	s->next = d->sessions;
	if (d->sessions)
		d->sessions->prev = s;
	d->sessions = s;
	d->n_sessions++;
	ruf_wire_reader_init(&s->rd, RUF_WIRE_MAX_MSG1);
	if (uv_accept(server, (uv_stream_t *)&s->tcp) != 0) {
		session_close(s);
		return;
	}
	if (uv_tcp_getpeername(&s->tcp, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET) {
			uv_ip4_name((struct sockaddr_in *)&ss, host, sizeof(host));
			port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
			snprintf(s->peer, sizeof(s->peer), "%s:%d", host, port);
		} else {
			uv_ip6_name((struct sockaddr_in6 *)&ss, host, sizeof(host));
			port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
			snprintf(s->peer, sizeof(s->peer), "[%s]:%d", host, port);
		}
	}
	rufd_stats.conn_total++;
	if (d->draining || d->n_sessions > d->cfg.max_connections) {
		rufd_stats.conn_refused++;
		rufd_stats.hs_fail[HS_FAIL_LIMIT]++;
		log_notice("%s: refused: %s", s->peer,
		           d->draining ? "shutting down" : "too many connections");
		session_close(s);
		return;
	}
	if (ruf_wire_session_new(&s->ws, false, d->id->kx->sk, d->id->kx->pk, NULL) != 0) {
		log_err("%s: cannot start a Noise session", s->peer);
		session_close(s);
		return;
	}
	(void)uv_tcp_nodelay(&s->tcp, 1);
	timer_restart(s);
	read_start(s);
}

void
rufd_sessions_close_all(struct rufd *d, uint32_t code, const char *why)
{
	struct session *s = d->sessions, *next;

	for (; s; s = next) {
		next = s->next;
		if (s->state == S_OPEN)
			session_fail(s, code, why);
		else
			session_close(s);
	}
}

void
rufd_sessions_reloaded(struct rufd *d)
{
	struct session *s = d->sessions, *next;
	struct ruf_wire_frame f = {.type = RUF_WIRE_DIRECTORY_UPDATE};

	f.u.directory_update.directory = d->id->dir->raw;
	f.u.directory_update.len = d->id->dir->rawlen;
	for (; s; s = next) {
		next = s->next;
		if (!s->cert)
			continue;
		if (ruf_directory_is_revoked(d->id->dir, s->cert->serial)) {
			log_notice("%s %s: certificate revoked: disconnecting", s->peer, s->who);
			session_fail(s, RUF_WIRE_ERR_NOT_PERMITTED, "certificate revoked");
			continue;
		}
		if (s->state == S_OPEN && f.u.directory_update.len <= RUF_WIRE_MAX_FRAME - 16)
			(void)session_send(s, &f);
	}
}
