/*
 * ruf open FILE: verify and open an envelope with this identity's queue keys
 * (a desk), and print who sent it, how it was verified and the report.
 */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <protobuf-c/protobuf-c.h>

#include "cli.h"
#include "envelope.h"
#include "report.h"
#include "util.h"

static const char usage[] =
    "usage: ruf open FILE [options]\n"
    "  --save-attachments DIR  write the attachments there (hashes are always checked)\n"
    "  --json                  print the header, verification and report as JSON\n"
    "  --home DIR              the identity (default $RUF_HOME or ~/.ruf)\n"
    "  --passphrase-file F     the keystore's passphrase (else $RUF_PASSPHRASE, tty)\n"
    "exit status: 0 opened and verified, 3 refused (the reason is printed; a revoked\n"
    "  sender's envelope is refused: a file carries no time rufd accepted it), 1 other failure\n";

static void
print_text(const struct ruf_opened *o, const Ruf__Report *r)
{
	const struct ruf_env_info *e = o->info;
	char id[2 * RUF_MSGID_BYTES + 1], created[21], hash[65];

	ruf_hex(e->hdr.message_id, RUF_MSGID_BYTES, id);
	ruf_time_fmt(e->hdr.created, created);
	printf("message     %s\n", id);
	printf("created     %s (sequence %" PRIu64 ")\n", created, e->hdr.sequence);
	printf("sender      %s, %s serial %" PRIu64 "%s%s\n", e->sender->subject,
	       ruf_role_name(e->sender->role), e->sender->serial,
	       e->sender->country && *e->sender->country ? ", country " : "",
	       e->sender->country ? e->sender->country : "");
	printf("verified    sender certificate under the pinned HQ root, not revoked; "
	       "signature; recipients as signed; content intact\n");
	printf("opened as   %s\n", o->queue);
	printf("recipients ");
	for (size_t i = 0; i < e->n_recipients; i++)
		printf(" %s", e->recipients[i].queue);
	printf("\nrouting     %s, situation %s, country %s%s%s, risk %s, flags",
	       ruf_kind_name(e->hdr.kind), e->hdr.situation, e->hdr.country,
	       e->hdr.region[0] ? ", region " : "", e->hdr.region, ruf_risk_name(e->hdr.risk));
	cli_flags_text(stdout, e->hdr.flags);
	printf("\n\n");
	ruf_report_render(r, stdout);
	if (o->n_attachments > 0)
		printf("\nAttachments\n");
	for (size_t i = 0; i < o->n_attachments; i++) {
		ruf_hex(o->attachments[i].hash, 32, hash);
		printf("  %s  %" PRIu64 " bytes  %s  blake2b %s%s%s\n", o->attachments[i].name,
		       o->attachments[i].size,
		       o->attachments[i].media_type && *o->attachments[i].media_type
		           ? o->attachments[i].media_type
		           : "application/octet-stream",
		       hash, o->attachments[i].saved_path ? "  saved to " : "",
		       o->attachments[i].saved_path ? o->attachments[i].saved_path : "");
	}
}

static void
print_json(const struct ruf_opened *o, const Ruf__Report *r)
{
	const struct ruf_env_info *e = o->info;
	char id[2 * RUF_MSGID_BYTES + 1], created[21];
	char *rj = ruf_report_to_json(r, 0);

	ruf_hex(e->hdr.message_id, RUF_MSGID_BYTES, id);
	ruf_time_fmt(e->hdr.created, created);
	printf("{\"message_id\": \"%s\", \"created\": \"%s\", \"sequence\": %" PRIu64
	       ", \"verified\": true, \"sender\": {\"subject\": ",
	       id, created, e->hdr.sequence);
	cli_json_str(stdout, e->sender->subject);
	printf(", \"serial\": %" PRIu64 ", \"role\": \"%s\", \"country\": ", e->sender->serial,
	       ruf_role_name(e->sender->role));
	cli_json_str(stdout, e->sender->country ? e->sender->country : "");
	printf("}, \"opened_as\": \"%s\", \"recipients\": [", o->queue);
	for (size_t i = 0; i < e->n_recipients; i++)
		printf("%s\"%s\"", i ? ", " : "", e->recipients[i].queue);
	printf("], \"attachments\": ");
	cli_attachments_json(stdout, o);
	printf(", \"report\": %s}\n", rj ? rj : "null");
	free(rj);
}

/*
 * Says why a revoked sender's envelope is refused here although a desk may
 * show it: a loose file has no rufd accept time to judge it by.
 */
static void
explain_revoked(const char *file, const ruf_directory *dir)
{
	const struct ruf_dir_revocation *rev;
	struct ruf_env_info *info = NULL;
	char since[21];
	int fd;

	if ((fd = open(file, O_RDONLY | O_CLOEXEC)) == -1)
		return;
	if (ruf_envelope_inspect(fd, &info) == 0 && info->sender != NULL &&
	    (rev = ruf_directory_revocation(dir, info->sender->serial)) != NULL) {
		ruf_time_fmt(rev->revoked_at, since);
		fprintf(stderr,
		        "%s: the sender (serial %" PRIu64 ") is revoked since %s%s%s%s; a file "
		        "has no time rufd accepted it, so it is not shown as genuine (a desk "
		        "judges reports it receives through rufd by rufd's signed time)\n",
		        cli_progname, rev->serial, since, rev->reason[0] ? " (" : "", rev->reason,
		        rev->reason[0] ? ")" : "");
	}
	ruf_env_info_free(info);
	close(fd);
}

int
ruf_open_main(int argc, char *argv[])
{
	static const struct option opts[] = {
	    {"save-attachments", required_argument, NULL, 's'},
	    {"json", no_argument, NULL, 'j'},
	    {"home", required_argument, NULL, 'H'},
	    {"passphrase-file", required_argument, NULL, 'p'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *homearg = NULL, *save = NULL, *file;
	struct cli_pass pp = {0};
	struct cli_identity id;
	struct ruf_opened *o = NULL;
	Ruf__Report *r = NULL;
	bool json = false;
	int c, rc, fd;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			save = optarg;
			break;
		case 'j':
			json = true;
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
	if (optind + 1 != argc) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	file = argv[optind];
	if ((fd = open(file, O_RDONLY | O_CLOEXEC)) == -1)
		return cli_fail(1, "%s: cannot open", file);
	if ((rc = cli_identity_load(cli_home(homearg), true, &pp, &id)) != 0) {
		close(fd);
		return cli_exit_for(rc);
	}
	{
		struct ruf_open_ctx ctx = {
		    .root = id.root,
		    .dir = id.dir,
		    .ks = id.ks,
		    .now = ruf_now(),
		    .attach_dir = save,
		};
		rc = ruf_envelope_open(fd, &ctx, &o);
	}
	close(fd);
	if (rc != 0) {
		cli_fail(0, "%s: %s (%s)", file, ruf_strerror(rc), ruf_errname(rc));
		if (rc == RUF_E_ENV_SENDER)
			explain_revoked(file, id.dir);
		rc = cli_exit_for(rc);
		goto out;
	}
	if ((rc = ruf_report_decode(o->report, o->report_len, &r)) != 0) {
		cli_fail(0, "%s: the report inside is invalid: %s", file, ruf_strerror(rc));
		rc = EXIT_VERIFY;
		goto out;
	}
	if (json)
		print_json(o, r);
	else
		print_text(o, r);
	rc = 0;
out:
	if (r != NULL)
		protobuf_c_message_free_unpacked(&r->base, NULL);
	ruf_opened_free(o);
	cli_identity_free(&id);
	return rc;
}
