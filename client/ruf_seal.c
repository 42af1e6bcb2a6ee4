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
#include "seal_common.h"
#include "util.h"

static const char usage[] =
    "usage: ruf seal --in REPORT.json --out FILE [options]\n"
    "  --in FILE             the report (JSON; see docs/REPORTS.md)\n"
    "  --out FILE            the envelope to write (must not exist)\n"
    "  --json                print the result as JSON\n"
    "  --home DIR            the identity (default $RUF_HOME or ~/.ruf)\n"
    "  --passphrase-file F   the keystore's passphrase (else $RUF_PASSPHRASE, tty)\n";

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
	struct cli_sealed sealed;
	uint8_t *json = NULL;
	size_t jlen;
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
	if ((rc = cli_identity_load(cli_home(homearg), true, &pp, &id)) != 0) {
		exit_code = cli_exit_for(rc); /* a revoked identity is a refusal (3) */
		goto out;
	}
	loaded = true;
	{
		cli_path(tmp, sizeof(tmp), "%s.tmp.%ld", out, (long)getpid());
		if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) == -1) {
			rc = ruf_errno(errno);
			cli_fail(1, "%s: %s", tmp, strerror(errno));
			goto out;
		}
		if ((rc = cli_seal_report(&id, &rin, in, fd, &sealed, NULL, NULL)) != 0)
			goto fail_tmp;
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
	ruf_hex(sealed.msgid, sizeof(sealed.msgid), idhex);
	if (json_out) {
		printf("{\"message_id\": \"%s\", \"sequence\": %" PRIu64 ", \"file\": ", idhex,
		       sealed.hdr.sequence);
		cli_json_str(stdout, out);
		printf(", \"queues\": [");
		for (size_t i = 0; i < sealed.qs.n; i++)
			printf("%s\"%s\"", i ? ", " : "", sealed.qs.names[i]);
		printf("]}\n");
	} else {
		printf("sealed %s (sequence %" PRIu64 ") to", idhex, sealed.hdr.sequence);
		for (size_t i = 0; i < sealed.qs.n; i++)
			printf(" %s", sealed.qs.names[i]);
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
	free(json);
	ruf_report_input_free(&rin);
	if (loaded)
		cli_identity_free(&id);
	return rc == 0 ? 0 : exit_code;
}
