/*
 * rufd.h - the daemon's shared state, visible to its modules only.
 *
 * Threads: everything here belongs to the libuv loop thread, except the
 * group-commit worker (commit.c), which owns the store's write transactions
 * and talks to the loop only through its queue and a uv_async_t.
 */
#ifndef RUFD_H
#define RUFD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "cert.h"
#include "config.h"
#include "directory.h"
#include "keystore.h"
#include "store.h"

struct session;
struct rufd_commit;
struct rufd_metrics;
struct rufd_cluster;

/* The files a SIGHUP reloads, swapped as a whole (never half-updated). */
struct rufd_ident {
	ruf_cert *root;
	ruf_cert *server;
	ruf_keystore *ks;           /* the server keystore */
	const struct ruf_key *kx;   /* Noise static key (owned by ks) */
	const struct ruf_key *sign; /* receipt signing key (owned by ks) */
	ruf_directory *dir;
	unsigned refs; /* loop thread: d->id holds one, each verify job one */
};

struct rufd {
	uv_loop_t *loop;
	const char *config_path;
	struct rufd_config cfg;
	struct rufd_ident *id;

	uv_tcp_t listeners[RUFD_MAX_LISTEN];
	size_t n_listeners;
	uv_signal_t sig_term, sig_int, sig_hup;

	struct session *sessions; /* doubly linked through session->next/prev */
	size_t n_sessions;
	bool draining;

	ruf_store *store;
	struct rufd_commit *commit;
	struct rufd_metrics *metrics;
	struct rufd_cluster *cluster; /* the store's notes (cluster.c) */
	char spool_dir[512];
	uv_timer_t housekeeping; /* spool expiry */
	uv_timer_t drain;        /* SIGTERM: waits for in-flight commits */
	uv_timer_t watchdog;     /* systemd WATCHDOG=1 keep-alives (notify.c) */
	bool housekeeping_busy;
	int dir_warned; /* 1: "expires within a day" logged, 2: "expired" logged */
	uv_work_t housekeeping_work;
};

/* Runs the daemon until SIGTERM (daemon.c). 0 on a clean exit. */
int rufd_run(struct rufd *d);
/* rufd -a: verifies the store's audit hash chain, prints one line; exit status. */
int rufd_audit_check(struct rufd *d);

/*
 * Loads root, server certificate, server keystore and directory named in cfg
 * and checks they fit together (server cert under root with role server,
 * keystore holds its sign and kx keys, directory valid under root now).
 * Returns 0 and *out (free with rufd_ident_free), or an error with the
 * reason in d.
 */
int rufd_ident_load(const struct rufd_config *cfg, struct rufd_ident **out, ruf_diag *d);
/*
 * Puts dir (taken: freed on error too) in place of id's directory once it
 * names id's Noise key (current or next); what names dir in the message.
 * 0 or RUF_E_INVAL. Only on an id nobody else holds yet.
 */
int rufd_ident_replace_directory(struct rufd_ident *id, ruf_directory *dir, const char *what,
                                 ruf_diag *d);
/*
 * Makes id the running identity (loop thread): the receipt signer follows,
 * sessions of revoked certificates close, the others get the directory.
 * why is logged ("reloaded").
 */
void rufd_ident_install(struct rufd *d, struct rufd_ident *id, const char *why);
/* Frees id regardless of references (start-up and exit only). Accepts NULL. */
void rufd_ident_free(struct rufd_ident *id);
/* Reference counting for jobs that use an identity while SIGHUP may swap it. */
struct rufd_ident *rufd_ident_ref(struct rufd_ident *id);
void rufd_ident_unref(struct rufd_ident *id);

/* Listener (listener.c): binds cfg->listen or takes systemd's sockets. */
int rufd_listen(struct rufd *d);
/* Stops accepting: closes every listening socket. */
void rufd_listen_stop(struct rufd *d);

/* Starts a session for the connection waiting on server (session.c). */
void rufd_session_accept(struct rufd *d, uv_stream_t *server);
/* Asks every session to close (shutdown); returns immediately. */
void rufd_sessions_close_all(struct rufd *d, uint32_t code, const char *why);
/* After a reload: closes sessions of revoked certs, pushes the directory. */
void rufd_sessions_reloaded(struct rufd *d);
/*
 * Several instances on a replicated store (cluster.c): the store's notes
 * reach the loop; other instances' entries are pushed to our desks; the
 * directory is shared as the store blob "directory" (the newer one wins).
 * start: after the commit worker; stop: before it.
 */
int rufd_cluster_start(struct rufd *d);
void rufd_cluster_stop(struct rufd *d);
/* Adopts the store's directory if newer, or shares ours if the store's is older. */
void rufd_cluster_sync_directory(struct rufd *d);
/* After a commit appended to queues: pushes to desks subscribed to them. */
void rufd_delivery_notify(struct rufd *d, const char (*queues)[RUF_QUEUE_NAME_MAX + 1], size_t n);

#endif
