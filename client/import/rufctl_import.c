/*
 * rufctl import BUNDLE -c rufd.conf --receipts OUT: ingest a bundle of
 * envelopes carried by hand, with exactly the checks, routing and dedup of
 * rufd's network path (daemon/ingest.c verify_work + commit.c run_one):
 *   1. ruf_envelope_verify (structure, sender certificate under the root,
 *      not revoked by the directory, permitted situation, header matches the
 *      certificate, signature) - the bundle's message id must be the
 *      envelope's;
 *   2. devices only (a bundle never carries desk replies);
 *   3. ruf_route_eval with the directory's policy;
 *   4. a wrap for every destination queue at its current epoch (else the
 *      envelope is stale: the device must re-seal; no receipt);
 *   5. stored once per message id (a duplicate gets its original receipt),
 *      appended to every queue, receipt signed with the server key, audit
 *      entries received/routed with who = "import:<device serial>";
 *      one store batch per envelope, committed (fsynced) before its
 *      receipt is written out.
 * It opens rufd's LMDB store directly (LMDB is multi-process safe; writers
 * serialise on its lock), reading rufd's configuration for the paths and
 * identity. A running rufd sees imported entries when a desk next
 * subscribes (the backlog is read from the store); live subscriptions get
 * them after a reconnect or SIGHUP.
 *
 * BUILD: needs rufd_lib (LMDB); see docs/FIELD.md. It lives outside the
 * client/rufctl_*.c glob so the main build does not break while the
 * CMake lines are not added:
 *   target_sources(rufctl PRIVATE client/import/rufctl_import.c)
 *   target_link_libraries(rufctl PRIVATE rufd_lib)
 *   and in rufctl.c's table: {"import", rufctl_import_main, "..."}
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <sodium.h>

#include "bundle.h"
#include "cli.h"
#include "commit.h"
#include "config.h"
#include "envelope.h"
#include "rufd.h"
#include "store.h"
#include "util.h"
#include "wire.h"

static const char usage[] =
    "usage: rufctl import BUNDLE -c rufd.conf [--receipts OUT]\n"
    "  -c FILE          rufd's configuration (state_dir, keys, directory)\n"
    "  --receipts OUT   write the receipts bundle here (default BUNDLE.receipts)\n";

struct imp {
	struct rufd_ident *id;
	ruf_store *store;
	uint8_t (*msgids)[16];
	uint8_t **receipts;
	size_t *rlens;
	size_t n, cap;
	unsigned bad;
};

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool
has_wrap(const struct ruf_env_info *info, const char *q, uint32_t epoch)
{
	for (size_t i = 0; i < info->n_recipients; i++)
		if (strcmp(info->recipients[i].queue, q) == 0 &&
		    (epoch == 0 || info->recipients[i].epoch == epoch))
			return true;
	return false;
}

static int
copy_to_memfd(int fd, uint64_t off, uint64_t len, int *out)
{
	uint8_t *buf = malloc(1u << 16);
	int m, rc = 0;

	if (buf == NULL)
		return RUF_E_NOMEM;
	if ((m = memfd_create("ruf-import", MFD_CLOEXEC)) == -1) {
		free(buf);
		return ruf_errno(errno);
	}
	while (len > 0 && rc == 0) {
		size_t k = len < (1u << 16) ? (size_t)len : (1u << 16);
		if ((rc = ruf_pread_all(fd, buf, k, off)) == 0)
			rc = ruf_write_all(m, buf, k);
		off += k;
		len -= k;
	}
	free(buf);
	if (rc != 0) {
		close(m);
		return rc;
	}
	*out = m;
	return 0;
}

/* Store one verified envelope; *receipt gets its (new or original) receipt. */
static int
store_once(struct imp *im, int fd, const struct ruf_env_info *info, const struct ruf_queue_set *qs,
           uint8_t **receipt, size_t *rlen)
{
	const char *q[RUF_STORE_MAX_QUEUES];
	struct ruf_store_put p = {0};
	struct ruf_store_put_result res;
	struct ruf_wire_receipt_body b = {0};
	ruf_store_batch *bt = NULL;
	char who[RUF_STORE_WHO_MAX];
	uint64_t now = ruf_now();
	int rc;

	for (size_t i = 0; i < qs->n; i++)
		q[i] = qs->names[i];
	p.message_id = info->hdr.message_id;
	p.hash = info->hash;
	p.fd = fd;
	p.len = info->total_len;
	p.queues = q;
	p.n_queues = qs->n;
	p.device_serial = info->sender->serial;
	p.time = now;
	memset(&res, 0, sizeof(res));
	if ((rc = ruf_store_batch_begin(im->store, &bt)) != 0)
		return rc;
	if ((rc = ruf_store_put_envelope(bt, &p, &res)) != 0)
		goto abort;
	if (res.duplicate) {
		ruf_store_batch_abort(bt);
		if (memcmp(res.rec.hash, info->hash, 32) != 0 || res.rec.receipt_len == 0)
			return RUF_E_EXISTS; /* another envelope reusing the id */
		if ((*receipt = malloc(res.rec.receipt_len)) == NULL)
			return RUF_E_NOMEM;
		memcpy(*receipt, res.rec.receipt, res.rec.receipt_len);
		*rlen = res.rec.receipt_len;
		return 0;
	}
	for (size_t i = 0; i < res.rec.n_queues; i++)
		q[i] = res.rec.queues[i];
	qsort(q, res.rec.n_queues, sizeof(q[0]), cmp_str);
	memcpy(b.message_id, res.rec.message_id, 16);
	memcpy(b.envelope_hash, res.rec.hash, 32);
	b.queues = q;
	b.n_queues = res.rec.n_queues;
	b.store_seq = res.rec.store_seq;
	b.time = res.rec.time;
	b.device_serial = res.rec.device_serial;
	b.server_serial = im->id->server->serial;
	if ((rc = ruf_wire_receipt_sign(&b, im->id->sign->sk, receipt, rlen)) != 0 ||
	    (rc = ruf_store_set_receipt(bt, b.message_id, *receipt, *rlen)) != 0)
		goto abort;
	snprintf(who, sizeof(who), "import:device:%" PRIu64, info->sender->serial);
	if ((rc = ruf_store_audit(bt, RUF_STORE_EV_RECEIVED, who, b.message_id, NULL, now)) != 0)
		goto abort;
	for (size_t i = 0; i < res.rec.n_queues; i++)
		if ((rc = ruf_store_audit(bt, RUF_STORE_EV_ROUTED, who, b.message_id,
		                          res.rec.queues[i], now)) != 0)
			goto abort;
	if ((rc = ruf_store_batch_commit(bt)) != 0) {
		free(*receipt);
		*receipt = NULL;
		return rc;
	}
	return 0;
abort:
	ruf_store_batch_abort(bt);
	free(*receipt);
	*receipt = NULL;
	return rc;
}

/*
 * store_once, again after a conflict: on a shared (jetstream) store another
 * writer, e.g. rufd, committed first; the store has caught up and the
 * retry sees its writes (a duplicate then gets the original receipt).
 */
static int
store_one(struct imp *im, int fd, const struct ruf_env_info *info, const struct ruf_queue_set *qs,
          uint8_t **receipt, size_t *rlen)
{
	int rc, tries = 0;

	while ((rc = store_once(im, fd, info, qs, receipt, rlen)) == RUF_E_STORE_CONFLICT &&
	       ++tries < COMMIT_CONFLICT_RETRIES)
		;
	return rc;
}

static int
on_envelope(void *arg, int bfd, const struct bundle_entry *be)
{
	struct imp *im = arg;
	const ruf_directory *dir = im->id->dir;
	struct ruf_env_info *info = NULL;
	struct ruf_route_header rh;
	struct ruf_queue_set qs;
	ruf_diag d = {{0}};
	uint8_t *receipt = NULL;
	size_t rlen = 0;
	char idhex[33];
	int fd = -1, rc;

	ruf_hex(be->msgid, 16, idhex);
	if (!be->hash_ok) {
		fprintf(stderr, "rufctl: entry %zu (%s): damaged in the bundle (hash mismatch)\n",
		        be->index, idhex);
		goto bad;
	}
	if ((rc = copy_to_memfd(bfd, be->off, be->len, &fd)) != 0)
		return rc;
	if ((rc = ruf_envelope_verify_diag(fd, im->id->root, dir, ruf_now(), &d, &info)) != 0) {
		fprintf(stderr, "rufctl: entry %zu (%s): refused: %s%s%s\n", be->index, idhex,
		        ruf_errname(rc), d.msg[0] ? ": " : "", d.msg);
		goto bad;
	}
	if (memcmp(info->hdr.message_id, be->msgid, 16) != 0 || info->hdr.kind == RUF_KIND_REPLY) {
		fprintf(stderr, "rufctl: entry %zu (%s): refused: %s\n", be->index, idhex,
		        info->hdr.kind == RUF_KIND_REPLY ? "a desk reply"
		                                         : "message id differs from the bundle's");
		goto bad;
	}
	ruf_env_route_header(&info->hdr, &rh);
	if ((rc = ruf_route_eval(dir->policy, &rh, &qs)) != 0) {
		fprintf(stderr, "rufctl: entry %zu (%s): routing failed: %s\n", be->index, idhex,
		        ruf_strerror(rc));
		goto bad;
	}
	for (size_t i = 0; i < qs.n; i++) {
		const struct ruf_dir_queue *dq = ruf_directory_queue(dir, qs.names[i]);
		if (!has_wrap(info, qs.names[i], dq ? dq->epoch : 0)) {
			fprintf(stderr,
			        "rufctl: entry %zu (%s): stale directory (no wrap for %s): the "
			        "device must re-seal it (ruf send does)\n",
			        be->index, idhex, qs.names[i]);
			goto bad;
		}
	}
	if ((rc = store_one(im, fd, info, &qs, &receipt, &rlen)) != 0) {
		fprintf(stderr, "rufctl: entry %zu (%s): store: %s\n", be->index, idhex,
		        ruf_strerror(rc));
		if (rc == RUF_E_EXISTS)
			goto bad;
		close(fd);
		ruf_env_info_free(info);
		return rc; /* store failures stop the import: nothing half-done */
	}
	{
		struct ruf_wire_receipt_info ri;
		if (ruf_wire_receipt_verify(receipt, rlen, im->id->server, im->id->root, ruf_now(),
		                            be->msgid, info->hash, &ri) == 0) {
			printf("receipt %s store_seq=%" PRIu64 " queues=", idhex,
			       ri.body.store_seq);
			for (size_t i = 0; i < ri.body.n_queues; i++)
				printf("%s%s", i ? "," : "", ri.body.queues[i]);
			printf("\n");
		}
	}
	if (im->n == im->cap) {
		size_t nc = im->cap ? im->cap * 2 : 16;
		void *a = realloc(im->msgids, nc * sizeof(*im->msgids));
		void *r = a ? realloc(im->receipts, nc * sizeof(*im->receipts)) : NULL;
		void *l = r ? realloc(im->rlens, nc * sizeof(*im->rlens)) : NULL;
		if (a)
			im->msgids = a;
		if (r)
			im->receipts = r;
		if (l == NULL) {
			free(receipt);
			close(fd);
			ruf_env_info_free(info);
			return RUF_E_NOMEM;
		}
		im->rlens = l;
		im->cap = nc;
	}
	memcpy(im->msgids[im->n], be->msgid, 16);
	im->receipts[im->n] = receipt;
	im->rlens[im->n] = rlen;
	im->n++;
	close(fd);
	ruf_env_info_free(info);
	return 0;
bad:
	im->bad++;
	if (fd != -1)
		close(fd);
	ruf_env_info_free(info);
	return 0;
}

int
rufctl_import_main(int argc, char *argv[])
{
	const char *bundle = NULL, *conf = NULL, *rout = NULL;
	struct rufd_config cfg;
	struct imp im = {0};
	struct ruf_store_opts so = {0};
	char store_path[PATH_MAX], rpath[PATH_MAX], tmp[PATH_MAX];
	ruf_diag d = {{0}};
	int fd = -1, ofd = -1, rc = 1;
	bool cfg_loaded = false;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			conf = argv[++i];
		else if (strcmp(argv[i], "--receipts") == 0 && i + 1 < argc)
			rout = argv[++i];
		else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return fputs(usage, stdout), 0;
		else if (argv[i][0] != '-' && bundle == NULL)
			bundle = argv[i];
		else
			return fputs(usage, stderr), EXIT_USAGE;
	}
	if (bundle == NULL || conf == NULL)
		return fputs(usage, stderr), EXIT_USAGE;
	cli_path(rpath, sizeof(rpath), "%s", rout ? rout : "");
	if (rout == NULL)
		cli_path(rpath, sizeof(rpath), "%s.receipts", bundle);
	if (access(rpath, F_OK) == 0)
		return cli_fail(1, "%s: already exists", rpath);
	memset(&cfg, 0, sizeof(cfg));
	if ((rc = rufd_config_load(conf, &cfg, &d)) != 0) {
		rc = cli_fail(1, "%s: %s", conf, d.msg[0] ? d.msg : ruf_strerror(rc));
		goto out;
	}
	cfg_loaded = true;
	if ((rc = rufd_ident_load(&cfg, &im.id, &d)) != 0) {
		rc = cli_fail(1, "%s", d.msg[0] ? d.msg : ruf_strerror(rc));
		goto out;
	}
	im.id->refs = 1;
	/*
	 * lmdb: the store itself (rufd may run: LMDB takes one writer at a
	 * time). jetstream: the cluster is the store and import is one more
	 * writer on it, with a local view of its own (rufd's view belongs to
	 * rufd's follower); the first import builds it from the streams.
	 */
	if (strcmp(cfg.store_backend, "jetstream") == 0)
		cli_path(store_path, sizeof(store_path), "%s/import-view", cfg.state_dir);
	else
		cli_path(store_path, sizeof(store_path), "%s/store", cfg.state_dir);
	rufd_config_store_opts(&cfg, &so);
	if ((rc = ruf_store_open(cfg.store_backend, store_path, &so, &d, &im.store)) != 0) {
		rc = cli_fail(1, "store %s (%s): %s%s%s", store_path, cfg.store_backend,
		              ruf_strerror(rc), d.msg[0] ? ": " : "", d.msg);
		goto out;
	}
	if ((fd = open(bundle, O_RDONLY | O_CLOEXEC)) == -1) {
		rc = cli_fail(1, "%s: %s", bundle, strerror(errno));
		goto out;
	}
	d.msg[0] = '\0';
	if ((rc = bundle_read(fd, BUNDLE_KIND_ENVELOPES, on_envelope, &im, NULL, NULL, &d)) != 0)
		cli_fail(1, "%s: %s (%zu imported before it)", bundle,
		         d.msg[0] ? d.msg : ruf_strerror(rc), im.n);
	/* Receipts of what was committed go out even if the bundle broke later. */
	cli_path(tmp, sizeof(tmp), "%s.tmp.%ld", rpath, (long)getpid());
	if ((ofd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) == -1) {
		rc = cli_fail(1, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	{
		int wrc = bundle_write_begin(ofd, BUNDLE_KIND_RECEIPTS, (uint32_t)im.n,
		                             im.id->server->raw, im.id->server->rawlen);
		for (size_t i = 0; wrc == 0 && i < im.n; i++)
			wrc = bundle_write_receipt(ofd, im.msgids[i], im.receipts[i], im.rlens[i]);
		if (wrc == 0)
			wrc = bundle_write_end(ofd);
		if (wrc != 0 || fsync(ofd) != 0 || link(tmp, rpath) != 0) {
			unlink(tmp);
			rc = cli_fail(1, "%s: %s", rpath, ruf_strerror(wrc ? wrc : RUF_E_IO));
			goto out;
		}
		unlink(tmp);
		ruf_fsync_dir_of(rpath);
	}
	printf("%zu envelope%s imported, %u refused; receipts in %s\n", im.n, im.n == 1 ? "" : "s",
	       im.bad, rpath);
	if (rc == 0 && im.bad > 0)
		rc = EXIT_VERIFY;
out:
	if (ofd != -1)
		close(ofd);
	if (fd != -1)
		close(fd);
	for (size_t i = 0; i < im.n; i++)
		free(im.receipts[i]);
	free(im.receipts);
	free(im.msgids);
	free(im.rlens);
	ruf_store_close(im.store);
	if (im.id)
		rufd_ident_free(im.id);
	if (cfg_loaded)
		rufd_config_free(&cfg);
	return rc;
}
