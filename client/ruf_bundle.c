/*
 * ruf bundle export --out FILE: every pending / in-flight envelope of the
 * outbox in one file (bundle.h) for a USB stick or mail; the entries stay
 * pending (HQ deduplicates by message id if the network delivers too).
 * ruf bundle receipts FILE: the receipts rufctl import wrote; each is
 * verified (HQ server certificate under the pinned root and not revoked,
 * signature, message id, envelope hash) before its entry counts as
 * delivered and its key wrap is destroyed.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bundle.h"
#include "cli.h"
#include "outbox.h"
#include "util.h"

static const char usage[] = "usage: ruf bundle export --out FILE [--home DIR]\n"
                            "       ruf bundle receipts FILE [--home DIR]\n";

static int
do_export(const char *home, const char *out)
{
	struct outbox_entry *v = NULL;
	char dir[PATH_MAX], tmp[PATH_MAX], path[PATH_MAX];
	size_t n, k = 0;
	uint32_t count = 0;
	int fd = -1, rc;

	if (access(out, F_OK) == 0)
		return cli_fail(1, "%s: already exists", out);
	if ((rc = outbox_dir(home, dir, sizeof(dir))) != 0 || (rc = outbox_list(dir, &v, &n)) != 0)
		return cli_fail(1, "%s/outbox: %s", home, ruf_strerror(rc));
	for (size_t i = 0; i < n; i++)
		if (v[i].state == OUTBOX_PENDING || v[i].state == OUTBOX_INFLIGHT)
			count++;
	if (count > BUNDLE_MAX_ENTRIES)
		count = BUNDLE_MAX_ENTRIES;
	cli_path(tmp, sizeof(tmp), "%s.tmp.%ld", out, (long)getpid());
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) == -1) {
		rc = cli_fail(1, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	if ((rc = bundle_write_begin(fd, BUNDLE_KIND_ENVELOPES, count, NULL, 0)) != 0)
		goto io;
	for (size_t i = 0; i < n && k < count; i++) {
		int ef;
		if (v[i].state != OUTBOX_PENDING && v[i].state != OUTBOX_INFLIGHT)
			continue;
		outbox_path(dir, v[i].id, "env", path, sizeof(path));
		if ((ef = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
			rc = ruf_errno(errno);
			goto io;
		}
		rc = bundle_write_envelope(fd, v[i].msgid, ef, v[i].total_len);
		close(ef);
		if (rc != 0)
			goto io;
		printf("%s %s %s %" PRIu64 " bytes\n", v[i].id, ruf_kind_name(v[i].kind),
		       ruf_risk_name(v[i].risk), v[i].total_len);
		k++;
	}
	if ((rc = bundle_write_end(fd)) != 0 || fsync(fd) != 0)
		goto io;
	close(fd);
	fd = -1;
	if (link(tmp, out) == -1) {
		rc = cli_fail(1, "%s: %s", out, strerror(errno));
		unlink(tmp);
		goto out;
	}
	unlink(tmp);
	ruf_fsync_dir_of(out);
	printf("bundle %s: %u envelope%s (they stay pending until their receipts come back)\n", out,
	       count, count == 1 ? "" : "s");
	rc = 0;
	goto out;
io:
	cli_fail(1, "%s: %s%s", tmp, ruf_strerror(rc ? rc : RUF_E_IO),
	         rc == RUF_E_NOSPC ? " (disk full)" : "");
	rc = 1;
	unlink(tmp);
out:
	if (fd != -1)
		close(fd);
	outbox_list_free(v, n);
	return rc;
}

struct rctx {
	struct cli_identity *id;
	char dir[PATH_MAX];
	struct outbox_entry *v;
	size_t n;
	ruf_cert *server;
	unsigned ok, bad, unknown;
};

static int
on_receipt(void *arg, int fd, const struct bundle_entry *be)
{
	struct rctx *c = arg;
	uint8_t buf[BUNDLE_RECEIPT_MAX];
	char idhex[33];
	int rc;

	ruf_hex(be->msgid, 16, idhex);
	if ((rc = ruf_pread_all(fd, buf, (size_t)be->len, be->off)) != 0)
		return rc;
	for (size_t i = 0; i < c->n; i++) {
		struct outbox_entry *e = &c->v[i];
		if (memcmp(e->msgid, be->msgid, 16) != 0)
			continue;
		if (e->state == OUTBOX_DELIVERED) {
			printf("%s: already delivered\n", idhex);
			c->ok++;
			return 0;
		}
		rc = outbox_deliver(c->dir, e, buf, (size_t)be->len, c->server, c->id->root);
		if (rc != 0) {
			fprintf(stderr, "ruf: %s: receipt refused: %s\n", idhex, ruf_strerror(rc));
			c->bad++;
			return 0;
		}
		printf("%s: delivered, receipt verified, store seq %" PRIu64 ", queues %s\n", idhex,
		       e->store_seq, e->queues);
		c->ok++;
		return 0;
	}
	fprintf(stderr, "ruf: %s: no such entry in the outbox\n", idhex);
	c->unknown++;
	return 0;
}

static int
do_receipts(const char *home, const char *file)
{
	struct cli_identity id;
	struct rctx c = {.id = &id};
	uint8_t *cert = NULL;
	size_t cert_len = 0;
	ruf_diag d = {{0}};
	int fd = -1, rc;

	if ((rc = cli_identity_load(home, false, NULL, &id)) != 0)
		return cli_exit_for(rc);
	if ((rc = outbox_dir(id.home, c.dir, sizeof(c.dir))) != 0 ||
	    (rc = outbox_list(c.dir, &c.v, &c.n)) != 0) {
		rc = cli_fail(1, "outbox: %s", ruf_strerror(rc));
		goto out;
	}
	if ((fd = open(file, O_RDONLY | O_CLOEXEC)) == -1) {
		rc = cli_fail(1, "%s: %s", file, strerror(errno));
		goto out;
	}
	/* First pass: structure and the server certificate only. */
	if ((rc = bundle_read(fd, BUNDLE_KIND_RECEIPTS, NULL, NULL, &cert, &cert_len, &d)) != 0) {
		rc = cli_fail(EXIT_VERIFY, "%s: %s", file, d.msg[0] ? d.msg : ruf_strerror(rc));
		goto out;
	}
	if ((rc = ruf_cert_parse(cert, cert_len, &c.server)) != 0 ||
	    (rc = ruf_cert_verify(c.server, id.root, ruf_now())) != 0 ||
	    (rc = ruf_cert_check_role(c.server, RUF_ROLE_SERVER)) != 0 ||
	    (rc = ruf_directory_is_revoked(id.dir, c.server->serial) ? RUF_E_CERT_REVOKED : 0)) {
		rc = cli_fail(EXIT_VERIFY, "%s: HQ server certificate: %s", file, ruf_strerror(rc));
		goto out;
	}
	if ((rc = bundle_read(fd, BUNDLE_KIND_RECEIPTS, on_receipt, &c, NULL, NULL, &d)) != 0) {
		rc = cli_fail(1, "%s: %s", file, d.msg[0] ? d.msg : ruf_strerror(rc));
		goto out;
	}
	printf("%u receipt%s accepted, %u refused, %u for other devices\n", c.ok,
	       c.ok == 1 ? "" : "s", c.bad, c.unknown);
	rc = c.bad ? EXIT_VERIFY : 0;
out:
	if (fd != -1)
		close(fd);
	free(cert);
	ruf_cert_free(c.server);
	outbox_list_free(c.v, c.n);
	cli_identity_free(&id);
	return rc;
}

int
ruf_bundle_main(int argc, char *argv[])
{
	const char *homearg = NULL, *out = NULL, *file = NULL, *cmd = argc > 1 ? argv[1] : "";

	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--home") == 0 && i + 1 < argc)
			homearg = argv[++i];
		else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
			out = argv[++i];
		else if (argv[i][0] != '-' && file == NULL)
			file = argv[i];
		else
			return fputs(usage, stderr), EXIT_USAGE;
	}
	if (strcmp(cmd, "export") == 0 && out != NULL && file == NULL)
		return do_export(cli_home(homearg), out);
	if (strcmp(cmd, "receipts") == 0 && file != NULL && out == NULL)
		return do_receipts(cli_home(homearg), file);
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0)
		return fputs(usage, stdout), 0;
	fputs(usage, stderr);
	return EXIT_USAGE;
}
