/*
 * ruf seal --in REPORT.json --out FILE: validate a report, route it with the
 * directory's policy, and seal it to the destination queues' keys, signed by
 * this device. The envelope file is written crash-safely; the outbox is not
 * touched.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <protobuf-c/protobuf-c.h>
#include <sodium.h>

#include "cli.h"
#include "envelope.h"
#include "report.h"
#include "util.h"

static const char usage[] =
    "usage: ruf seal --in REPORT.json --out FILE [options]\n"
    "  --in FILE             the report (JSON; see docs/REPORTS.md)\n"
    "  --out FILE            the envelope to write (must not exist)\n"
    "  --json                print the result as JSON\n"
    "  --home DIR            the identity (default $RUF_HOME or ~/.ruf)\n"
    "  --passphrase-file F   the keystore's passphrase (else $RUF_PASSPHRASE, tty)\n";

/* Takes the next per-device sequence number; it is durable before use, so never reused. */
static int
next_sequence(const char *home, uint64_t *seq)
{
	char path[PATH_MAX], buf[32];
	unsigned long long v;
	uint8_t *text;
	size_t len;
	char *end;
	int rc, n;

	cli_path(path, sizeof(path), "%s/sequence", home);
	if ((rc = ruf_file_read(path, 64, &text, &len)) != 0)
		return cli_fail(rc, "%s: %s", path, ruf_strerror(rc)), rc;
	errno = 0;
	v = strtoull((char *)text, &end, 10);
	rc = errno != 0 || v == 0 || (*end != '\n' && *end != '\0') ? RUF_E_FORMAT : 0;
	free(text);
	if (rc != 0)
		return cli_fail(rc, "%s: damaged", path), rc;
	n = snprintf(buf, sizeof(buf), "%llu\n", v + 1);
	if ((rc = cli_write_file(path, buf, (size_t)n, 0600, false)) != 0)
		return rc;
	*seq = v;
	return 0;
}

int
ruf_seal_main(int argc, char *argv[])
{
	static const struct option opts[] = {
	    {"in", required_argument, NULL, 'i'},
	    {"out", required_argument, NULL, 'o'},
	    {"json", no_argument, NULL, 'j'},
	    {"home", required_argument, NULL, 'H'},
	    {"passphrase-file", required_argument, NULL, 'p'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *in = NULL, *out = NULL, *homearg = NULL;
	struct cli_pass pp = {0};
	struct cli_identity id = {0};
	struct ruf_report_input rin = {0};
	struct ruf_route_header rh;
	struct ruf_queue_set qs;
	struct ruf_env_header hdr;
	struct ruf_seal_recipient rcpt[RUF_ROUTE_MAX_QUEUES];
	struct ruf_seal_attachment *att = NULL;
	uint8_t *json = NULL, *report = NULL, msgid[RUF_MSGID_BYTES];
	size_t jlen, rlen;
	char tmp[PATH_MAX], base[PATH_MAX], idhex[2 * RUF_MSGID_BYTES + 1];
	bool json_out = false, loaded = false;
	ruf_diag diag = {{0}};
	int c, rc, fd = -1, exit_code = 1;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			in = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case 'j':
			json_out = true;
			break;
		case 'H':
			homearg = optarg;
			break;
		case 'p':
			pp.file = optarg;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			fputs(usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc || in == NULL || out == NULL) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	if (access(out, F_OK) == 0)
		return cli_fail(1, "%s: already exists", out);

	/* Validate the report before asking for a passphrase. */
	if ((rc = ruf_file_read(in, RUF_REPORT_JSON_MAX, &json, &jlen)) != 0) {
		cli_fail(1, "%s: %s", in, ruf_strerror(rc));
		goto out;
	}
	cli_path(base, sizeof(base), "%s", in);
	if ((rc = ruf_report_from_json((char *)json, jlen, dirname(base), &diag, &rin)) != 0) {
		cli_fail(1, "%s: %s", in, diag.msg[0] ? diag.msg : ruf_strerror(rc));
		goto out;
	}
	if ((rc = ruf_report_route_header(rin.report, &rh)) != 0) {
		cli_fail(1, "%s: %s", in, ruf_strerror(rc));
		goto out;
	}
	if ((rc = cli_identity_load(cli_home(homearg), true, &pp, &id)) != 0) {
		exit_code = cli_exit_for(rc); /* a revoked identity is a refusal (3) */
		goto out;
	}
	loaded = true;
	if (rh.kind == RUF_KIND_REPLY ? id.cert->role != RUF_ROLE_DESK
	                              : id.cert->role != RUF_ROLE_DEVICE) {
		rc = RUF_E_CERT_ROLE;
		cli_fail(1, "a %s cannot send a %s", ruf_role_name(id.cert->role),
		         ruf_kind_name(rh.kind));
		goto out;
	}
	if (rh.kind != RUF_KIND_REPLY && !ruf_cert_permits_situation(id.cert, rh.situation)) {
		rc = RUF_E_CERT_PERMISSION;
		cli_fail(1, "%s: this device is not enrolled to report on situation '%s'", in,
		         rh.situation);
		goto out;
	}
	if (rh.kind != RUF_KIND_REPLY && id.cert->country && id.cert->country[0] &&
	    strcmp(id.cert->country, rh.country) != 0) {
		rc = RUF_E_CERT_PERMISSION;
		cli_fail(1, "%s: country '%s' differs from this device's country '%s'", in,
		         rh.country, id.cert->country);
		goto out;
	}
	if ((rc = ruf_route_eval(id.dir->policy, &rh, &qs)) != 0) {
		cli_fail(1, "%s: routing: %s", in, ruf_strerror(rc));
		goto out;
	}
	for (size_t i = 0; i < qs.n; i++) {
		const struct ruf_dir_queue *q = ruf_directory_queue(id.dir, qs.names[i]);
		if (q == NULL) {
			rc = RUF_E_DIR_NO_QUEUE;
			cli_fail(1, "the directory has no key for queue %s", qs.names[i]);
			goto out;
		}
		rcpt[i] = (struct ruf_seal_recipient){q->name, q->epoch, q->pk};
	}
	if (rin.n_attachments > 0) {
		if ((att = calloc(rin.n_attachments, sizeof(*att))) == NULL) {
			rc = RUF_E_NOMEM;
			goto out;
		}
		for (size_t i = 0; i < rin.n_attachments; i++)
			att[i] = (struct ruf_seal_attachment){rin.attachments[i].name,
			                                      rin.attachments[i].media_type,
			                                      rin.attachments[i].path};
	}
	if ((rc = ruf_report_encode(rin.report, &report, &rlen)) != 0) {
		cli_fail(1, "encoding the report: %s", ruf_strerror(rc));
		goto out;
	}

	memset(&hdr, 0, sizeof(hdr));
	hdr.created = ruf_now();
	hdr.device_serial = id.cert->serial;
	hdr.kind = rh.kind;
	hdr.risk = rh.risk;
	hdr.flags = rh.flags;
	hdr.directory_version = id.dir->version;
	snprintf(hdr.situation, sizeof(hdr.situation), "%s", rh.situation);
	snprintf(hdr.country, sizeof(hdr.country), "%s", rh.country);
	snprintf(hdr.region, sizeof(hdr.region), "%s", rh.region);
	if ((rc = next_sequence(id.home, &hdr.sequence)) != 0)
		goto out;
	{
		const struct ruf_key *sk = ruf_keystore_find(id.ks, RUF_KEY_SIGN, "sign", 0);
		struct ruf_seal_params p = {
		    .hdr = &hdr,
		    .report = report,
		    .report_len = rlen,
		    .attachments = att,
		    .n_attachments = rin.n_attachments,
		    .recipients = rcpt,
		    .n_recipients = qs.n,
		    .device_cert = id.cert->raw,
		    .device_cert_len = id.cert->rawlen,
		    .sign_sk = sk->sk,
		};
		cli_path(tmp, sizeof(tmp), "%s.tmp.%ld", out, (long)getpid());
		if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) == -1) {
			rc = ruf_errno(errno);
			cli_fail(1, "%s: %s", tmp, strerror(errno));
			goto out;
		}
		if ((rc = ruf_envelope_seal(&p, fd, msgid, NULL)) != 0) {
			cli_fail(1, "sealing: %s", ruf_strerror(rc));
			goto fail_tmp;
		}
		if (fsync(fd) == -1 || close(fd) == -1) {
			fd = -1;
			rc = ruf_errno(errno);
			cli_fail(1, "%s: %s", tmp, strerror(errno));
			goto fail_tmp;
		}
		fd = -1;
		if (link(tmp, out) == -1) {
			rc = ruf_errno(errno);
			cli_fail(1, "%s: %s", out, strerror(errno));
			goto fail_tmp;
		}
		unlink(tmp);
		ruf_fsync_dir_of(out);
	}
	ruf_hex(msgid, sizeof(msgid), idhex);
	if (json_out) {
		printf("{\"message_id\": \"%s\", \"sequence\": %" PRIu64 ", \"file\": ", idhex,
		       hdr.sequence);
		cli_json_str(stdout, out);
		printf(", \"queues\": [");
		for (size_t i = 0; i < qs.n; i++)
			printf("%s\"%s\"", i ? ", " : "", qs.names[i]);
		printf("]}\n");
	} else {
		printf("sealed %s (sequence %" PRIu64 ") to", idhex, hdr.sequence);
		for (size_t i = 0; i < qs.n; i++)
			printf(" %s", qs.names[i]);
		printf(" -> %s\n", out);
	}
	rc = 0;
	goto out;
fail_tmp:
	if (fd != -1)
		close(fd);
	fd = -1;
	unlink(tmp);
out:
	if (fd != -1)
		close(fd);
	free(att);
	free(report);
	free(json);
	ruf_report_input_free(&rin);
	if (loaded)
		cli_identity_free(&id);
	return rc == 0 ? 0 : exit_code;
}
