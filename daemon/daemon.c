/*
 * daemon.c - the life of rufd: open the store and spool, start the commit
 * worker, listeners, metrics and signals; SIGHUP reloads the identity files;
 * SIGTERM (or SIGINT) stops accepting, lets in-flight commits finish and
 * answer, says goodbye to every client and exits.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "commit.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "rufd.h"
#include "session.h"
#include "spool.h"
#include "util.h"

#define HOUSEKEEPING_MS (60 * 1000)
#define DRAIN_POLL_MS 50

static void check_directory_expiry(struct rufd *d);

static void
on_walk_close(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void
drain_check(uv_timer_t *t)
{
	struct rufd *d = t->data;

	/* Receipts for what is being committed are still owed: wait for them. */
	if (rufd_commit_pending(d) > 0)
		return;
	uv_timer_stop(t);
	rufd_sessions_close_all(d, RUF_WIRE_ERR_SHUTTING_DOWN, "shutting down");
	rufd_cluster_stop(d);
	rufd_commit_stop(d);
	rufd_metrics_stop(d);
	uv_close((uv_handle_t *)&d->housekeeping, NULL);
	uv_close((uv_handle_t *)&d->drain, NULL);
	uv_close((uv_handle_t *)&d->sig_term, NULL);
	uv_close((uv_handle_t *)&d->sig_int, NULL);
	uv_close((uv_handle_t *)&d->sig_hup, NULL);
	log_notice("stopping: %zu sessions closing", d->n_sessions);
}

static void
on_term(uv_signal_t *h, int sig)
{
	struct rufd *d = h->data;

	if (d->draining)
		return;
	log_notice("signal %d: draining", sig);
	(void)ruf_notify_stopping();
	d->draining = true;
	rufd_listen_stop(d);
	/* No new work: sessions stop reading; queued commits still answer. */
	for (struct session *s = d->sessions; s; s = s->next)
		session_block(s);
	uv_timer_start(&d->drain, drain_check, 0, DRAIN_POLL_MS);
}

void
rufd_ident_install(struct rufd *d, struct rufd_ident *id, const char *why)
{
	uint64_t old_version = d->id ? d->id->dir->version : 0;

	rufd_ident_unref(d->id);
	d->id = id;
	d->dir_warned = 0;
	check_directory_expiry(d);
	rufd_commit_set_signer(d, id->sign->sk, id->server->serial);
	log_notice("%s: directory version %llu, %zu revoked, server cert #%llu", why,
	           (unsigned long long)id->dir->version, id->dir->n_revoked,
	           (unsigned long long)id->server->serial);
	/* Only a newer directory is news for connected clients: they verify a
	 * pushed one and close the connection unless it is newer than theirs
	 * (docs/PROTOCOL.md), so pushing the same version on every SIGHUP cut
	 * every desk and upload. Revocations come with a newer version. */
	if (id->dir->version > old_version)
		rufd_sessions_reloaded(d);
}

/*
 * On a shared store the running directory may be newer than our file (it
 * came from another instance): keep it rather than refuse the reload of the
 * certificates and keys. 0, or an error (the reload is refused).
 */
static int
keep_running_directory(struct rufd *d, struct rufd_ident *id, ruf_diag *diag)
{
	ruf_directory *dir;
	int rc;

	if ((rc = ruf_directory_load_mem(d->id->dir->raw, d->id->dir->rawlen, id->root, ruf_now(),
	                                 &dir)) != 0) {
		ruf_diag_set(diag, "the running directory: %s", ruf_strerror(rc));
		return rc;
	}
	log_notice("directory file version %llu is older than the running version %llu (from "
	           "the cluster): keeping %llu",
	           (unsigned long long)id->dir->version, (unsigned long long)dir->version,
	           (unsigned long long)dir->version);
	return rufd_ident_replace_directory(id, dir, "the running directory", diag);
}

static void
reload(struct rufd *d)
{
	struct rufd_config cfg;
	struct rufd_ident *id;
	ruf_diag diag = {{0}};
	uint64_t old_version = d->id->dir->version;
	bool shared = strcmp(d->cfg.store_backend, "jetstream") == 0;

	/* Listeners, state_dir and limits need a restart; the identity files do not. */
	if (rufd_config_load(d->config_path, &cfg, &diag) != 0) {
		log_err("reload refused, keeping the running configuration: %s", diag.msg);
		return;
	}
	if (rufd_credential_resolve(&cfg.server_key, &diag) != 0) {
		log_err("reload refused, keeping the running configuration: %s", diag.msg);
		rufd_config_free(&cfg);
		return;
	}
	if (rufd_ident_load(&cfg, &id, &diag) != 0) {
		log_err("reload refused, keeping the running configuration: %s", diag.msg);
		rufd_config_free(&cfg);
		return;
	}
	if (id->dir->version < old_version &&
	    (!shared || keep_running_directory(d, id, &diag) != 0)) {
		if (shared)
			log_err("reload refused: %s", diag.msg);
		else
			log_err("reload refused: directory version %llu is older than %llu",
			        (unsigned long long)id->dir->version,
			        (unsigned long long)old_version);
		rufd_ident_free(id);
		rufd_config_free(&cfg);
		return;
	}
	if (cfg.map_size != d->cfg.map_size) {
		/* The one storage limit that changes without a restart: room after "full". */
		d->cfg.map_size = cfg.map_size;
		rufd_commit_set_map_size(d, cfg.map_size);
	}
	rufd_config_free(&cfg);
	rufd_ident_install(d, id, "reloaded");
	/* A newer directory given to this instance goes to the others too. */
	rufd_cluster_sync_directory(d);
}

static void
on_hup(uv_signal_t *h, int sig)
{
	struct rufd *d = h->data;

	(void)sig;
	(void)ruf_notify_reloading();
	reload(d);
	(void)ruf_notify_ready();
}

static void
housekeeping_work(uv_work_t *w)
{
	struct rufd *d = w->data;

	(void)rufd_spool_expire(d->spool_dir, d->cfg.partial_expiry);
}

static void
housekeeping_after(uv_work_t *w, int status)
{
	struct rufd *d = w->data;

	(void)status;
	d->housekeeping_busy = false;
}

/*
 * Clients refuse an expired directory, and rufd keeps serving the one it
 * loaded: say so, once a day ahead and once when it has expired.
 */
static void
check_directory_expiry(struct rufd *d)
{
	uint64_t now = ruf_now(), exp = d->id->dir->expires_at;

	if (now > exp && d->dir_warned < 2) {
		log_err("directory version %llu has expired: clients will refuse it; publish a "
		        "new one and send SIGHUP",
		        (unsigned long long)d->id->dir->version);
		d->dir_warned = 2;
	} else if (now + 86400 > exp && d->dir_warned < 1) {
		log_warnx("directory version %llu expires within a day: publish a new one",
		          (unsigned long long)d->id->dir->version);
		d->dir_warned = 1;
	}
}

static void
on_housekeeping(uv_timer_t *t)
{
	struct rufd *d = t->data;

	if (d->draining)
		return;
	check_directory_expiry(d);
	/* A directory the cluster could not take yet is offered again. */
	rufd_cluster_sync_directory(d);
	if (d->housekeeping_busy)
		return;
	d->housekeeping_busy = true;
	d->housekeeping_work.data = d;
	if (uv_queue_work(d->loop, &d->housekeeping_work, housekeeping_work, housekeeping_after) !=
	    0)
		d->housekeeping_busy = false;
}

static size_t
count_servers(const char *urls)
{
	size_t n = 1;

	for (; *urls; urls++)
		n += *urls == ',';
	return n;
}

static int
store_open(struct rufd *d)
{
	char store_path[600];
	struct ruf_store_opts so = {0};
	ruf_diag diag = {{0}};
	int rc;

	snprintf(store_path, sizeof(store_path), "%s/store", d->cfg.state_dir);
	rufd_config_store_opts(&d->cfg, &so);
	if ((rc = ruf_store_open(d->cfg.store_backend, store_path, &so, &diag, &d->store)) != 0)
		log_err("store %s (%s): %s%s%s", store_path, d->cfg.store_backend,
		        rc == RUF_E_NOTFOUND ? "this build has no such store backend"
		                             : ruf_strerror(rc),
		        diag.msg[0] ? ": " : "", diag.msg);
	else if (strcmp(d->cfg.store_backend, "lmdb") != 0)
		/* Not the URLs: they may carry a user and password. */
		log_notice("store: %s on %zu servers, prefix %s, %llu replicas",
		           d->cfg.store_backend, count_servers(d->cfg.jetstream_servers),
		           d->cfg.jetstream_prefix, (unsigned long long)d->cfg.jetstream_replicas);
	return rc;
}

int
rufd_audit_check(struct rufd *d)
{
	struct ruf_store_stats st = {0};
	ruf_diag diag = {{0}};
	uint64_t n = 0;
	int rc;

	if (store_open(d) != 0)
		return 1;
	if ((rc = ruf_store_audit_verify(d->store, &n, &diag)) != 0) {
		fprintf(stderr, "rufd: audit log does not verify: %s%s%s\n", ruf_strerror(rc),
		        diag.msg[0] ? ": " : "", diag.msg);
	} else if ((rc = ruf_store_stats(d->store, &st, NULL, NULL)) == 0) {
		printf("rufd: audit log: %llu entries, hash chain OK; %llu envelopes stored\n",
		       (unsigned long long)n, (unsigned long long)st.envelopes);
	}
	ruf_store_close(d->store);
	d->store = NULL;
	return rc == 0 ? 0 : 1;
}

int
rufd_run(struct rufd *d)
{
	uv_loop_t loop;
	int rc, status = 1;

	if ((rc = ruf_mkdirs(d->cfg.state_dir, 0700)) != 0) {
		log_err("state_dir %s: %s", d->cfg.state_dir, ruf_strerror(rc));
		return 1;
	}
	if ((rc = rufd_spool_init(d->cfg.state_dir, d->spool_dir)) != 0) {
		log_err("spool in %s: %s", d->cfg.state_dir, ruf_strerror(rc));
		return 1;
	}
	if (store_open(d) != 0)
		return 1;
	/* Partial uploads older than the limit went stale while we were down. */
	(void)rufd_spool_expire(d->spool_dir, d->cfg.partial_expiry);

	if (uv_loop_init(&loop) != 0) {
		log_err("cannot start the event loop");
		goto out_store;
	}
	d->loop = &loop;
	if (rufd_commit_start(d) != 0)
		goto out_loop;
	uv_signal_init(d->loop, &d->sig_term);
	uv_signal_init(d->loop, &d->sig_int);
	uv_signal_init(d->loop, &d->sig_hup);
	d->sig_term.data = d->sig_int.data = d->sig_hup.data = d;
	uv_signal_start(&d->sig_term, on_term, SIGTERM);
	uv_signal_start(&d->sig_int, on_term, SIGINT);
	uv_signal_start(&d->sig_hup, on_hup, SIGHUP);
	uv_timer_init(d->loop, &d->housekeeping);
	uv_timer_init(d->loop, &d->drain);
	d->housekeeping.data = d->drain.data = d;
	uv_timer_start(&d->housekeeping, on_housekeeping, HOUSEKEEPING_MS, HOUSEKEEPING_MS);
	if (rufd_cluster_start(d) != 0 || rufd_listen(d) != 0 || rufd_metrics_start(d) != 0) {
		on_term(&d->sig_term, 0);
	} else {
		log_notice("rufd started: directory version %llu, server cert #%llu",
		           (unsigned long long)d->id->dir->version,
		           (unsigned long long)d->id->server->serial);
		status = 0;
		check_directory_expiry(d);
		(void)ruf_notify_ready();
		if (rufd_watchdog_start(d->loop, &d->watchdog) != 0)
			log_warnx("cannot start the systemd watchdog timer");
	}
	uv_run(d->loop, UV_RUN_DEFAULT);
	/* Anything still open (should be nothing) is closed before the loop goes. */
	uv_walk(d->loop, on_walk_close, NULL);
	uv_run(d->loop, UV_RUN_DEFAULT);
	if (status == 0)
		log_notice("rufd stopped");
out_loop:
	if (uv_loop_close(&loop) != 0)
		log_warnx("event loop closed with handles open");
out_store:
	ruf_store_close(d->store);
	d->store = NULL;
	return status;
}
