/*
 * session.h - one client connection: the Noise/authentication state
 * machine, framing, limits, and the per-connection state of ingest and
 * delivery. Loop thread only.
 *
 * Lifetime: the session owns its uv_tcp_t and uv_timer_t (embedded); it is
 * freed only once both close callbacks have run and no commit request or
 * threadpool job still refers to it (refs == 0). Code that decides to drop a
 * client calls session_close() (or session_fail(), which first queues an
 * Error frame); the close itself happens from a safe point.
 */
#ifndef RUFD_SESSION_H
#define RUFD_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "rufd.h"
#include "wire.h"

enum session_state {
	S_HELLO,      /* waiting for handshake message 1 (unauthenticated) */
	S_WAIT_FIRST, /* welcome sent; nothing acted on until a transport message opens */
	S_OPEN,       /* authenticated */
	S_CLOSING,
};

struct ingest;
struct delivery;

struct session {
	uv_tcp_t tcp;
	uv_timer_t timer; /* handshake timeout, then idle timeout */
	struct rufd *d;
	struct session *next, *prev;
	enum session_state state;
	int open_handles; /* handles not yet through their close callback */
	unsigned refs;    /* commit requests and jobs holding a pointer to us */
	bool reading;     /* uv_read_start is in effect */
	bool blocked;     /* a disk or verify job runs: process no more frames */
	bool flush_close; /* close once the write queue is empty */
	bool dead;        /* removed from d->sessions; freed at refs == 0 */
	bool ping_sent;   /* idle: we pinged; the next timeout closes */

	/*
	 * Input not yet framed: the loop-wide read buffer while on_read runs,
	 * otherwise bytes kept while blocked (malloc'ed, in_cap) or NULL. An
	 * idle connection holds no input buffer (rufd keeps thousands).
	 */
	uint8_t *in;
	size_t in_off, in_len, in_cap;
	ruf_wire_reader rd;
	ruf_wire_session *ws;

	ruf_cert *cert; /* the peer's, once message 1 checked out */
	int role;
	char peer[64]; /* address:port, for logs */
	char who[96];  /* "device rc-sd-1 #17" once known */

	size_t wq_bytes; /* bytes handed to uv_write and not yet written */
	size_t wq_n;

	struct ingest *ingest;
	struct delivery *delivery;
};

/* Encrypts and queues one frame. Returns 0 or an error (the session then closes). */
int session_send(struct session *s, const struct ruf_wire_frame *f);
/* Queues an Error frame (code, text for logs) and closes after it is written. */
void session_fail(struct session *s, uint32_t code, const char *text);
/* Closes now (pending writes are dropped). */
void session_close(struct session *s);
/* Pauses frame processing (a job holds the session) / resumes it. */
void session_block(struct session *s);
void session_unblock(struct session *s);
/* True if the peer is reading too slowly for more data to be queued. */
bool session_congested(const struct session *s);
void session_ref(struct session *s);
void session_unref(struct session *s);

/* ingest.c: frames of the submit flow; teardown. */
void ingest_on_frame(struct session *s, const struct ruf_wire_frame *f);
void ingest_session_free(struct session *s);
/* delivery.c: subscribe and acks; pushes when writes drain; teardown. */
void delivery_on_frame(struct session *s, const struct ruf_wire_frame *f);
void delivery_pump(struct session *s);
void delivery_session_free(struct session *s);

#endif
