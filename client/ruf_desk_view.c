/*
 * ruf desk list|show|export|surge: reading the desk archive (docs/DESK.md).
 * Envelopes are re-opened and re-verified from the archive each time they are
 * shown or exported; the index only selects them. A sender's revocation is
 * judged each time against the current directory with the accept time rufd
 * signed (kept in the index), so a revocation published later, even one
 * dated back, flags what it covers.
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

#include "desk.h"
#include "envelope.h"
#include "report.h"
#include "util.h"

static int
view_open(const char *homearg, const struct cli_pass *pp, struct cli_identity *id, ruf_archive **a)
{
	int rc;

	if ((rc = cli_identity_load(cli_home(homearg), true, pp, id)) != 0)
		return cli_exit_for(rc);
	if ((rc = ruf_archive_open(id->home, id->ks, a)) != 0) {
		cli_identity_free(id);
		return cli_fail(1, "%s/archive: %s", id->home, ruf_strerror(rc));
	}
	return 0;
}

/*
 * Re-opens an archived envelope (verified again: chain, signature, content;
 * revocation is desk_judge's, by accept time).
 */
static int
reopen(const struct cli_identity *id, const ruf_archive *a, const uint8_t msgid[RUF_MSGID_BYTES],
       const char *save, struct ruf_opened **o, Ruf__Report **r, ruf_diag *d)
{
	struct ruf_open_ctx ctx = {id->root, NULL, id->ks, ruf_now(), save};
	char path[PATH_MAX];
	int fd, rc;

	*o = NULL;
	*r = NULL;
	ruf_archive_env_path(a, msgid, path, sizeof(path));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return RUF_E_NOTFOUND;
	rc = ruf_envelope_open_diag(fd, &ctx, d, o);
	close(fd);
	if (rc == 0 && (rc = ruf_report_decode((*o)->report, (*o)->report_len, r)) != 0)
		snprintf(d->msg, sizeof(d->msg), "the report inside is invalid");
	if (rc != 0) {
		ruf_opened_free(*o);
		*o = NULL;
	}
	return rc;
}

/* ---- list ---- */

static const char list_usage[] = "usage: ruf desk list [filters] [--json]\n" DESK_FILTER_USAGE
                                 "  --json                a JSON array\n"
                                 "  --home DIR  --passphrase-file F\n";

int
ruf_desk_view_list(int argc, char *argv[])
{
	static const struct option opts[] = {
	    DESK_FILTER_LONGOPTS,
	    {"json", no_argument, NULL, 'j'},
	    {"home", required_argument, NULL, 'H'},
	    {"passphrase-file", required_argument, NULL, 'p'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct desk_filter f = {.risk = -1};
	const char *homearg = NULL;
	struct cli_pass pp = {0};
	struct cli_identity id;
	struct ruf_archive_rec *v = NULL;
	ruf_archive *a = NULL;
	bool json = false;
	size_t n = 0, shown = 0;
	int c, rc;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if ((rc = desk_filter_opt(&f, c, optarg)) != 0) {
			if (rc < 0)
				return cli_fail(EXIT_USAGE, "bad value '%s'", optarg);
			continue;
		}
		switch (c) {
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
			fputs(list_usage, stdout);
			return 0;
		default:
			fputs(list_usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fputs(list_usage, stderr);
		return EXIT_USAGE;
	}
	if ((rc = view_open(homearg, &pp, &id, &a)) != 0)
		return rc;
	if ((rc = ruf_archive_list(a, &v, &n)) != 0) {
		rc = cli_fail(1, "listing the archive: %s", ruf_strerror(rc));
		goto out;
	}
	if (json)
		printf("[");
	for (size_t i = 0; i < n; i++) {
		if (!desk_filter_match(&f, &v[i]))
			continue;
		desk_judge(id.dir, &v[i]);
		if (json) {
			printf("%s\n {", shown ? "," : "");
			desk_json_rec_fields(stdout, &v[i]);
			printf("}");
		} else {
			desk_print_summary(stdout, &v[i],
			                   v[i].direction == RUF_ARCHIVE_SENT ? "(sent)" : NULL,
			                   false);
		}
		shown++;
	}
	if (json)
		printf("\n]\n");
	rc = 0;
out:
	free(v);
	ruf_archive_close(a);
	cli_identity_free(&id);
	return rc;
}

/* ---- show ---- */

static const char show_usage[] =
    "usage: ruf desk show ID [--save-attachments DIR] [--json]\n"
    "  ID                    a message id or a unique prefix (>= 4)\n"
    "  --save-attachments DIR  write the attachments (hash checked)\n"
    "  --json                header, verification and report as JSON\n"
    "  --home DIR  --passphrase-file F\n"
    "exit status: 0 verified, 3 verification fails now or the report\n"
    "  is flagged (its sender was revoked before rufd accepted it), 1 other\n";

/* The banner a flagged report is shown under, first and last. */
static void
show_flag_banner(const struct ruf_archive_rec *rec)
{
	char flag[512];
	bool col = desk_colour();

	if (rec->verdict != RUF_REV_FLAGGED)
		return;
	printf("%s*** %s ***%s\n", col ? "\033[1;31m" : "", desk_flag_text(rec, flag, sizeof(flag)),
	       col ? "\033[0m" : "");
}

static void
show_text(const struct ruf_archive_rec *rec, const struct ruf_opened *o, const Ruf__Report *r)
{
	const struct ruf_env_info *e = o->info;
	char idhex[2 * RUF_MSGID_BYTES + 1], t[21], hash[65], flag[512];

	show_flag_banner(rec);
	ruf_hex(rec->id, RUF_MSGID_BYTES, idhex);
	printf("message     %s\n", idhex);
	ruf_time_fmt(e->hdr.created, t);
	printf("created     %s (sequence %" PRIu64 ")\n", t, e->hdr.sequence);
	ruf_time_fmt(rec->received, t);
	printf("received    %s on", t);
	for (size_t i = 0; i < rec->n_queues; i++)
		printf(" %s", rec->queues[i]);
	ruf_time_fmt(rec->accepted, t);
	printf("\naccepted    %s\n", rec->accepted ? t : "unknown (no receipt from rufd)");
	printf("sender      %s, %s serial %" PRIu64 "%s%s\n", e->sender->subject,
	       ruf_role_name(e->sender->role), e->sender->serial,
	       e->sender->country && *e->sender->country ? ", country " : "",
	       e->sender->country ? e->sender->country : "");
	if (rec->verdict == RUF_REV_FLAGGED)
		printf("verified    NO: %s\n", desk_flag_text(rec, flag, sizeof(flag)));
	else
		printf("verified    %s at receipt; again now: sender certificate under the pinned "
		       "HQ root%s; signature; recipients as signed; content intact%s%s\n",
		       rec->verification,
		       rec->verdict == RUF_REV_BEFORE ? ", accepted by rufd before its revocation"
		                                      : ", not revoked",
		       rec->verdict == RUF_REV_BEFORE ? "\nnote        " : "",
		       rec->verdict == RUF_REV_BEFORE ? desk_flag_text(rec, flag, sizeof(flag))
		                                      : "");
	printf("routing     %s, situation %s, country %s%s%s, risk %s, flags",
	       ruf_kind_name(e->hdr.kind), e->hdr.situation[0] ? e->hdr.situation : "-",
	       e->hdr.country[0] ? e->hdr.country : "-", e->hdr.region[0] ? ", region " : "",
	       e->hdr.region, ruf_risk_name(e->hdr.risk) ? ruf_risk_name(e->hdr.risk) : "-");
	cli_flags_text(stdout, e->hdr.flags);
	printf("\n\n");
	ruf_report_render(r, stdout);
	if (o->n_attachments > 0)
		printf("\nAttachments\n");
	for (size_t i = 0; i < o->n_attachments; i++) {
		ruf_hex(o->attachments[i].hash, 32, hash);
		printf("  %s  %" PRIu64 " bytes  blake2b %s (checked)%s%s\n",
		       o->attachments[i].name, o->attachments[i].size, hash,
		       o->attachments[i].saved_path ? "  saved to " : "",
		       o->attachments[i].saved_path ? o->attachments[i].saved_path : "");
	}
	show_flag_banner(rec);
}

static void
show_json(FILE *fp, const struct ruf_archive_rec *rec, const struct ruf_opened *o,
          const Ruf__Report *r)
{
	char *rj = ruf_report_to_json(r, 0);

	fputc('{', fp);
	desk_json_rec_fields(fp, rec);
	if (o != NULL) {
		fprintf(fp, ", \"verified_now\": %s, \"sender_country\": ",
		        rec->verdict == RUF_REV_FLAGGED ? "false" : "true");
		cli_json_str(fp, o->info->sender->country ? o->info->sender->country : "");
		fprintf(fp, ", \"attachments\": ");
		cli_attachments_json(fp, o);
	}
	fprintf(fp, ", \"report\": %s}\n", rj ? rj : "null");
	free(rj);
}

int
ruf_desk_view_show(int argc, char *argv[])
{
	static const struct option opts[] = {
	    {"save-attachments", required_argument, NULL, 's'},
	    {"json", no_argument, NULL, 'j'},
	    {"home", required_argument, NULL, 'H'},
	    {"passphrase-file", required_argument, NULL, 'p'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *homearg = NULL, *save = NULL;
	struct cli_pass pp = {0};
	struct cli_identity id;
	struct ruf_archive_rec rec;
	struct ruf_opened *o = NULL;
	Ruf__Report *r = NULL;
	uint8_t msgid[RUF_MSGID_BYTES];
	ruf_archive *a = NULL;
	ruf_diag d = {{0}};
	bool json = false;
	int c, rc;

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
			fputs(show_usage, stdout);
			return 0;
		default:
			fputs(show_usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		fputs(show_usage, stderr);
		return EXIT_USAGE;
	}
	if ((rc = view_open(homearg, &pp, &id, &a)) != 0)
		return rc;
	if ((rc = ruf_archive_resolve(a, argv[optind], msgid)) != 0 ||
	    (rc = ruf_archive_get(a, msgid, &rec)) != 0) {
		rc = cli_fail(rc == RUF_E_INVAL ? EXIT_USAGE : 1, "%s: %s", argv[optind],
		              rc == RUF_E_INVAL ? "not a unique message id prefix"
		                                : ruf_strerror(rc));
		goto out;
	}
	if (rec.direction == RUF_ARCHIVE_SENT) {
		/* Sealed to the device's key: the desk keeps it but cannot open it. */
		if (json) {
			printf("{");
			desk_json_rec_fields(stdout, &rec);
			printf("}\n");
		} else
			desk_print_summary(stdout, &rec,
			                   "(sent by this desk; sealed to the device)", false);
		rc = 0;
		goto out;
	}
	if ((rc = reopen(&id, a, msgid, save, &o, &r, &d)) != 0) {
		rc = cli_fail(desk_exit_for(rc), "%s: verification fails now: %s%s%s", argv[optind],
		              ruf_strerror(rc), d.msg[0] ? ": " : "", d.msg);
		goto out;
	}
	desk_judge(id.dir, &rec);
	if (json)
		show_json(stdout, &rec, o, r);
	else
		show_text(&rec, o, r);
	rc = rec.verdict == RUF_REV_FLAGGED ? EXIT_VERIFY : 0;
out:
	if (r != NULL)
		protobuf_c_message_free_unpacked(&r->base, NULL);
	ruf_opened_free(o);
	ruf_archive_close(a);
	cli_identity_free(&id);
	return rc;
}

/* ---- export ---- */

static const char export_usage[] =
    "usage: ruf desk export --format jsonl|csv [filters] [--out FILE]\n" DESK_FILTER_USAGE
    "  --format jsonl        one line per report: header, sender, verification, report\n"
    "  --format csv          one row per casualty figure (RFC 4180)\n"
    "  --out FILE            write there (crash-safely) instead of standard output\n"
    "  --home DIR  --passphrase-file F\n"
    "Reports that no longer verify are left out and named on standard error (exit 3).\n"
    "Flagged reports (sender revoked before rufd accepted them) are exported and marked:\n"
    "JSONL \"flagged\": true, CSV column flag; each is also named on standard error.\n";

/* RFC 4180: quote every field that needs it; double the quotes inside. */
static void
csv_field(FILE *fp, const char *s, bool last)
{
	if (s == NULL)
		s = "";
	if (strpbrk(s, ",\"\r\n") != NULL) {
		fputc('"', fp);
		for (; *s; s++) {
			if (*s == '"')
				fputc('"', fp);
			fputc(*s, fp);
		}
		fputc('"', fp);
	} else
		fputs(s, fp);
	fputs(last ? "\r\n" : ",", fp);
}

static void
csv_num(FILE *fp, uint64_t v)
{
	fprintf(fp, "%" PRIu64 ",", v);
}

static void
export_csv(FILE *fp, const struct ruf_archive_rec *rec, const Ruf__Report *r)
{
	char idhex[2 * RUF_MSGID_BYTES + 1];

	if (r->body_case != RUF__REPORT__BODY_SITREP)
		return;
	ruf_hex(rec->id, RUF_MSGID_BYTES, idhex);
	for (size_t i = 0; i < r->sitrep->n_casualties; i++) {
		const Ruf__CasualtyFigure *c = r->sitrep->casualties[i];
		csv_field(fp, r->sitrep->situation, false);
		csv_field(fp, c->date, false);
		csv_field(fp, c->category, false);
		csv_num(fp, c->killed);
		csv_num(fp, c->injured);
		csv_num(fp, c->missing);
		csv_num(fp, c->detained);
		csv_field(fp, c->group, false);
		csv_field(fp, c->source, false);
		csv_field(fp, c->confidence, false);
		csv_field(fp, idhex, false);
		csv_field(fp, c->location, false);
		csv_field(fp, rec->sender, false);
		csv_field(fp, rec->verdict == RUF_REV_FLAGGED ? "flagged" : "", true);
	}
}

int
ruf_desk_view_export(int argc, char *argv[])
{
	static const struct option opts[] = {
	    DESK_FILTER_LONGOPTS,
	    {"format", required_argument, NULL, 'f'},
	    {"out", required_argument, NULL, 'o'},
	    {"home", required_argument, NULL, 'H'},
	    {"passphrase-file", required_argument, NULL, 'p'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct desk_filter f = {.risk = -1};
	const char *homearg = NULL, *format = NULL, *outpath = NULL;
	struct cli_pass pp = {0};
	struct cli_identity id;
	struct ruf_archive_rec *v = NULL;
	ruf_archive *a = NULL;
	char *mem = NULL;
	size_t memlen = 0, n = 0;
	FILE *fp = stdout;
	int c, rc, failed = 0;
	bool csv;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if ((rc = desk_filter_opt(&f, c, optarg)) != 0) {
			if (rc < 0)
				return cli_fail(EXIT_USAGE, "bad value '%s'", optarg);
			continue;
		}
		switch (c) {
		case 'f':
			format = optarg;
			break;
		case 'o':
			outpath = optarg;
			break;
		case 'H':
			homearg = optarg;
			break;
		case 'p':
			pp.file = optarg;
			break;
		case 'h':
			fputs(export_usage, stdout);
			return 0;
		default:
			fputs(export_usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc || format == NULL ||
	    (strcmp(format, "jsonl") != 0 && strcmp(format, "csv") != 0)) {
		fputs(export_usage, stderr);
		return EXIT_USAGE;
	}
	csv = strcmp(format, "csv") == 0;
	if ((rc = view_open(homearg, &pp, &id, &a)) != 0)
		return rc;
	if ((rc = ruf_archive_list(a, &v, &n)) != 0) {
		rc = cli_fail(1, "listing the archive: %s", ruf_strerror(rc));
		goto out;
	}
	if (outpath != NULL && (fp = open_memstream(&mem, &memlen)) == NULL) {
		rc = cli_fail(1, "out of memory");
		goto out;
	}
	if (csv)
		fputs("situation,date,category,killed,injured,missing,detained,group,source,"
		      "confidence,report_id,location,sender,flag\r\n",
		      fp);
	for (size_t i = 0; i < n; i++) {
		struct ruf_opened *o = NULL;
		Ruf__Report *r = NULL;
		ruf_diag d = {{0}};
		char idhex[2 * RUF_MSGID_BYTES + 1];

		if (v[i].direction != RUF_ARCHIVE_RECEIVED || !desk_filter_match(&f, &v[i]))
			continue;
		ruf_hex(v[i].id, RUF_MSGID_BYTES, idhex);
		if ((rc = reopen(&id, a, v[i].id, NULL, &o, &r, &d)) != 0) {
			cli_fail(0, "%s: left out, verification fails now: %s%s%s", idhex,
			         ruf_strerror(rc), d.msg[0] ? ": " : "", d.msg);
			failed++;
			continue;
		}
		desk_judge(id.dir, &v[i]);
		if (v[i].verdict == RUF_REV_FLAGGED) {
			char flag[512];
			fprintf(stderr, "%s: %s: exported marked as flagged: %s\n", cli_progname,
			        idhex, desk_flag_text(&v[i], flag, sizeof(flag)));
		}
		if (csv)
			export_csv(fp, &v[i], r);
		else {
			char *rj = ruf_report_to_json(r, 0);
			fputc('{', fp);
			desk_json_rec_fields(fp, &v[i]);
			fprintf(fp, ", \"report\": %s}\n", rj ? rj : "null");
			free(rj);
		}
		protobuf_c_message_free_unpacked(&r->base, NULL);
		ruf_opened_free(o);
	}
	if (outpath != NULL) {
		if (fclose(fp) != 0) {
			fp = stdout;
			rc = cli_fail(1, "out of memory");
			goto out;
		}
		fp = stdout;
		if ((rc = cli_write_file(outpath, mem, memlen, 0600, false)) != 0) {
			rc = 1;
			goto out;
		}
	} else if (fflush(stdout) != 0) {
		rc = cli_fail(1, "writing the export failed");
		goto out;
	}
	rc = failed ? EXIT_VERIFY : 0;
out:
	if (fp != stdout)
		fclose(fp);
	free(mem);
	free(v);
	ruf_archive_close(a);
	cli_identity_free(&id);
	return rc;
}

/* ---- surge ---- */

static const char surge_usage[] = "usage: ruf desk surge [ID] [--json]\n"
                                  "  without ID: every surge request and its current status\n"
                                  "  with ID: that request's history of replies\n"
                                  "  --home DIR  --passphrase-file F\n";

static void
surge_history(const struct ruf_archive_rec *v, size_t n, const struct ruf_archive_rec *req,
              bool json, bool all)
{
	const struct ruf_archive_rec *last = NULL;
	char t[21], idhex[2 * RUF_MSGID_BYTES + 1];
	size_t k = 0;

	ruf_hex(req->id, RUF_MSGID_BYTES, idhex);
	for (size_t i = 0; i < n; i++)
		if (v[i].hdr.kind == RUF_KIND_REPLY &&
		    memcmp(v[i].hdr.reply_to, req->id, RUF_MSGID_BYTES) == 0)
			last = &v[i];
	if (json) {
		printf("{\"request\": {");
		desk_json_rec_fields(stdout, req);
		printf("}, \"status\": ");
		cli_json_str(stdout, last ? last->status : "new");
		printf(", \"history\": [");
	} else {
		ruf_time_fmt(req->hdr.created, t);
		printf("%s  %.12s  %-14s %-10s %-16s %s%s\n", t, idhex, last ? last->status : "new",
		       req->hdr.situation, req->sender, req->title,
		       req->verdict == RUF_REV_FLAGGED ? "  [FLAGGED: sender revoked]" : "");
	}
	for (size_t i = 0; (all || json) && i < n; i++) {
		if (v[i].hdr.kind != RUF_KIND_REPLY ||
		    memcmp(v[i].hdr.reply_to, req->id, RUF_MSGID_BYTES) != 0)
			continue;
		ruf_time_fmt(v[i].received, t);
		if (json) {
			printf("%s{\"time\": \"%s\", \"status\": ", k ? ", " : "", t);
			cli_json_str(stdout, v[i].status);
			printf(", \"by\": ");
			cli_json_str(stdout, v[i].sender);
			printf("}");
		} else
			printf("    %s  %-14s by %s\n", t, v[i].status, v[i].sender);
		k++;
	}
	if (json)
		printf("]}\n");
}

int
ruf_desk_view_surge(int argc, char *argv[])
{
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"home", required_argument, NULL, 'H'},
	    {"passphrase-file", required_argument, NULL, 'p'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *homearg = NULL;
	struct cli_pass pp = {0};
	struct cli_identity id;
	struct ruf_archive_rec *v = NULL;
	uint8_t msgid[RUF_MSGID_BYTES];
	ruf_archive *a = NULL;
	bool json = false, found = false;
	size_t n = 0;
	int c, rc;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
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
			fputs(surge_usage, stdout);
			return 0;
		default:
			fputs(surge_usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind + 1 < argc) {
		fputs(surge_usage, stderr);
		return EXIT_USAGE;
	}
	if ((rc = view_open(homearg, &pp, &id, &a)) != 0)
		return rc;
	if (optind < argc && (rc = ruf_archive_resolve(a, argv[optind], msgid)) != 0) {
		rc = cli_fail(rc == RUF_E_INVAL ? EXIT_USAGE : 1, "%s: %s", argv[optind],
		              rc == RUF_E_INVAL ? "not a unique message id prefix"
		                                : ruf_strerror(rc));
		goto out;
	}
	if ((rc = ruf_archive_list(a, &v, &n)) != 0) {
		rc = cli_fail(1, "listing the archive: %s", ruf_strerror(rc));
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (v[i].hdr.kind != RUF_KIND_SURGE || v[i].direction != RUF_ARCHIVE_RECEIVED)
			continue;
		desk_judge(id.dir, &v[i]);
		if (optind < argc && memcmp(v[i].id, msgid, RUF_MSGID_BYTES) != 0)
			continue;
		surge_history(v, n, &v[i], json, optind < argc);
		found = true;
	}
	rc = 0;
	if (optind < argc && !found)
		rc = cli_fail(1, "%s: not a surge request", argv[optind]);
out:
	free(v);
	ruf_archive_close(a);
	cli_identity_free(&id);
	return rc;
}
