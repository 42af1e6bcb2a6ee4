/*
 * ruf desk reply ID --status S [--text T]: seal a Reply to the device that
 * sent ID and submit it through rufd, which routes it to inbox.<device>.
 * The wrap key is the device's X25519 key from its certificate (carried in
 * the original envelope), so only that device can read the reply. A copy of
 * the sealed reply stays in the desk archive (it cannot be opened there; its
 * index record keeps the status for `ruf desk surge`).
 */
#include <errno.h>
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

static const char reply_usage[] =
    "usage: ruf desk reply ID --status STATUS [--text TEXT] [options]\n"
    "  ID                    the archived message answered (id or unique prefix)\n"
    "  --status S            received, under-review, approved, declined or deployed\n"
    "  --text T              a message to the sender\n"
    "  --hq HOST:PORT        rufd's address (default: the directory's)\n"
    "  --json                print the result as JSON\n"
    "  --home DIR  --passphrase-file F\n";

/* The desk's next sequence number (durable before use); starts at 1. */
static int
next_sequence(const char *home, uint64_t *seq)
{
	char path[PATH_MAX], buf[32];
	unsigned long long v = 1;
	uint8_t *text = NULL;
	size_t len;
	int rc, n;

	cli_path(path, sizeof(path), "%s/sequence", home);
	if (access(path, F_OK) == 0) {
		char *end;
		if ((rc = ruf_file_read(path, 64, &text, &len)) != 0)
			return cli_fail(rc, "%s: %s", path, ruf_strerror(rc)), rc;
		errno = 0;
		v = strtoull((char *)text, &end, 10);
		rc = errno != 0 || v == 0 || (*end != '\n' && *end != '\0') ? RUF_E_FORMAT : 0;
		free(text);
		if (rc != 0)
			return cli_fail(rc, "%s: damaged", path), rc;
	}
	n = snprintf(buf, sizeof(buf), "%llu\n", v + 1);
	if ((rc = cli_write_file(path, buf, (size_t)n, 0600, false)) != 0)
		return rc;
	*seq = v;
	return 0;
}

int
ruf_desk_reply_main(int argc, char *argv[])
{
	static const struct option opts[] = {
	    {"status", required_argument, NULL, 's'},
	    {"text", required_argument, NULL, 't'},
	    {"hq", required_argument, NULL, 'q'},
	    {"json", no_argument, NULL, 'j'},
	    {"home", required_argument, NULL, 'H'},
	    {"passphrase-file", required_argument, NULL, 'p'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *homearg = NULL, *status = NULL, *text = "", *hq = NULL;
	struct cli_pass pp = {0};
	struct cli_identity id;
	struct ruf_archive_rec orig, rec;
	struct ruf_env_info *info = NULL;
	struct ruf_client_submit_result res = {0};
	uint8_t msgid[RUF_MSGID_BYTES], *report = NULL, replyid[RUF_MSGID_BYTES];
	char path[PATH_MAX], tmp[PATH_MAX], queue[RUF_QUEUE_NAME_MAX + 1], idhex[33];
	ruf_archive *a = NULL;
	ruf_client *c = NULL;
	ruf_diag d = {{0}};
	size_t rlen;
	bool json = false, dup;
	int ch, rc, fd = -1;

	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 's':
			status = optarg;
			break;
		case 't':
			text = optarg;
			break;
		case 'q':
			hq = optarg;
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
			fputs(reply_usage, stdout);
			return 0;
		default:
			fputs(reply_usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind + 1 != argc || status == NULL) {
		fputs(reply_usage, stderr);
		return EXIT_USAGE;
	}
	{
		/* Validate the reply before asking for a passphrase. */
		Ruf__Report r = RUF__REPORT__INIT;
		Ruf__Reply rp = RUF__REPLY__INIT;
		uint8_t zero[RUF_MSGID_BYTES] = {1};
		r.format = RUF_REPORT_FORMAT;
		r.body_case = RUF__REPORT__BODY_REPLY;
		r.reply = &rp;
		rp.in_reply_to.data = zero;
		rp.in_reply_to.len = RUF_MSGID_BYTES;
		rp.status = (char *)status;
		rp.text = (char *)text;
		if ((rc = ruf_report_validate(&r, &d)) != 0)
			return cli_fail(EXIT_USAGE, "%s", d.msg[0] ? d.msg : ruf_strerror(rc));
	}
	if ((rc = cli_identity_load(cli_home(homearg), true, &pp, &id)) != 0)
		return cli_exit_for(rc);
	if (id.cert->role != RUF_ROLE_DESK) {
		rc = cli_fail(1, "only a desk replies");
		goto out;
	}
	if ((rc = ruf_archive_open(id.home, id.ks, &a)) != 0) {
		rc = cli_fail(1, "%s/archive: %s", id.home, ruf_strerror(rc));
		goto out;
	}
	if ((rc = ruf_archive_resolve(a, argv[optind], msgid)) != 0 ||
	    (rc = ruf_archive_get(a, msgid, &orig)) != 0) {
		rc = cli_fail(rc == RUF_E_INVAL ? EXIT_USAGE : 1, "%s: %s", argv[optind],
		              rc == RUF_E_INVAL ? "not a unique message id prefix"
		                                : ruf_strerror(rc));
		goto out;
	}
	if (orig.direction != RUF_ARCHIVE_RECEIVED || orig.hdr.kind == RUF_KIND_REPLY) {
		rc = cli_fail(1, "%s: not a report from a field device", argv[optind]);
		goto out;
	}
	/* The device's key comes from its certificate in the envelope, verified again now. */
	ruf_archive_env_path(a, msgid, path, sizeof(path));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		rc = cli_fail(1, "%s: missing from the archive", path);
		goto out;
	}
	rc = ruf_envelope_verify_diag(fd, id.root, id.dir, ruf_now(), &d, &info);
	close(fd);
	fd = -1;
	if (rc != 0) {
		rc = cli_fail(EXIT_VERIFY, "%s: the original no longer verifies: %s%s%s",
		              argv[optind], ruf_strerror(rc), d.msg[0] ? ": " : "", d.msg);
		goto out;
	}
	snprintf(queue, sizeof(queue), "inbox.%s", info->sender->subject);
	if (!ruf_is_queue_name(queue)) {
		rc = cli_fail(1, "%s: no inbox queue for %s", argv[optind], info->sender->subject);
		goto out;
	}
	{
		Ruf__Report r = RUF__REPORT__INIT;
		Ruf__Reply rp = RUF__REPLY__INIT;
		r.format = RUF_REPORT_FORMAT;
		r.body_case = RUF__REPORT__BODY_REPLY;
		r.reply = &rp;
		rp.in_reply_to.data = msgid;
		rp.in_reply_to.len = RUF_MSGID_BYTES;
		rp.status = (char *)status;
		rp.text = (char *)text;
		if ((rc = ruf_report_encode(&r, &report, &rlen)) != 0) {
			rc = cli_fail(1, "encoding the reply: %s", ruf_strerror(rc));
			goto out;
		}
		memset(&rec, 0, sizeof(rec));
		ruf_report_title(&r, rec.title, sizeof(rec.title));
	}
	{
		const struct ruf_key *sk = ruf_keystore_find(id.ks, RUF_KEY_SIGN, "sign", 0);
		struct ruf_env_header hdr;
		/* Epoch 1: inbox queues have one key, the device's own, never rotated here. */
		struct ruf_seal_recipient rcpt = {queue, 1, info->sender->kx_pk};
		struct ruf_seal_params p = {0};

		memset(&hdr, 0, sizeof(hdr));
		hdr.created = ruf_now();
		hdr.device_serial = id.cert->serial;
		hdr.kind = RUF_KIND_REPLY;
		hdr.directory_version = id.dir->version;
		/* The original's situation and country, so replies sort with their report. */
		memcpy(hdr.situation, orig.hdr.situation, sizeof(hdr.situation));
		memcpy(hdr.country, orig.hdr.country, sizeof(hdr.country));
		memcpy(hdr.reply_to, msgid, RUF_MSGID_BYTES);
		snprintf(hdr.reply_device, sizeof(hdr.reply_device), "%s", info->sender->subject);
		if ((rc = next_sequence(id.home, &hdr.sequence)) != 0) {
			rc = 1;
			goto out;
		}
		p.hdr = &hdr;
		p.report = report;
		p.report_len = rlen;
		p.recipients = &rcpt;
		p.n_recipients = 1;
		p.device_cert = id.cert->raw;
		p.device_cert_len = id.cert->rawlen;
		p.sign_sk = sk->sk;
		ruf_archive_tmp_path(a, "reply", tmp, sizeof(tmp));
		if ((fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) == -1) {
			rc = cli_fail(1, "%s: %s", tmp, strerror(errno));
			goto out;
		}
		if ((rc = ruf_envelope_seal(&p, fd, replyid, NULL)) != 0 || fsync(fd) != 0) {
			rc = cli_fail(1, "sealing the reply: %s", ruf_strerror(rc ? rc : RUF_E_IO));
			goto out_tmp;
		}
		rec.hdr = hdr;
		memcpy(rec.hdr.message_id, replyid, RUF_MSGID_BYTES);
	}
	if ((rc = desk_connect(&id, hq, &c)) != 0) {
		rc = desk_exit_for(rc);
		goto out_tmp;
	}
	if ((rc = ruf_client_submit(c, fd, NULL, &res, &d)) != 0) {
		rc = cli_fail(desk_exit_for(rc), "submitting the reply: %s%s%s", ruf_strerror(rc),
		              d.msg[0] ? ": " : "", d.msg);
		goto out_tmp;
	}
	memcpy(rec.id, replyid, RUF_MSGID_BYTES);
	for (size_t i = 0; i < res.info.body.n_queues && i < RUF_ENV_MAX_RECIPIENTS; i++)
		snprintf(rec.queues[rec.n_queues++], sizeof(rec.queues[0]), "%s",
		         res.info.body.queues[i]);
	rec.received = ruf_now();
	snprintf(rec.sender, sizeof(rec.sender), "%s", id.cert->subject);
	rec.sender_serial = id.cert->serial;
	rec.sender_role = id.cert->role;
	snprintf(rec.verification, sizeof(rec.verification), "sent, receipt verified");
	rec.direction = RUF_ARCHIVE_SENT;
	snprintf(rec.status, sizeof(rec.status), "%s", status);
	memcpy(rec.hash, res.info.body.envelope_hash, 32);
	rec.total_len = res.total_len;
	close(fd);
	fd = -1;
	if ((rc = ruf_archive_put(a, tmp, &rec, &dup)) != 0) {
		rc = cli_fail(1, "the reply was delivered to rufd but not archived: %s",
		              ruf_strerror(rc));
		goto out_tmp;
	}
	ruf_hex(replyid, RUF_MSGID_BYTES, idhex);
	if (json) {
		char orighex[2 * RUF_MSGID_BYTES + 1];
		ruf_hex(msgid, RUF_MSGID_BYTES, orighex);
		printf("{\"message_id\": \"%s\", \"in_reply_to\": \"%s\", \"status\": ", idhex,
		       orighex);
		cli_json_str(stdout, status);
		printf(", \"queue\": ");
		cli_json_str(stdout, queue);
		printf(", \"store_seq\": %" PRIu64 "}\n", res.info.body.store_seq);
	} else
		printf("reply %s (%s) to %s submitted, rufd store sequence %" PRIu64 "\n", idhex,
		       status, queue, res.info.body.store_seq);
	rc = 0;
	goto out;
out_tmp:
	if (fd != -1)
		close(fd);
	fd = -1;
	unlink(tmp);
out:
	ruf_client_submit_result_free(&res);
	ruf_client_close(c);
	free(report);
	ruf_env_info_free(info);
	ruf_archive_close(a);
	cli_identity_free(&id);
	return rc;
}
