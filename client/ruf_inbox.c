/*
 * ruf inbox: a field device fetches HQ's replies from its own queue
 * inbox.<subject> and lists them. Replies are sealed to the device's X25519
 * key from its certificate (the keystore's "kx" key), so for opening that key
 * is presented as the queue key of inbox.<subject> (epoch 1) in a keystore
 * that lives only in memory. The sender must be an HQ desk (checked by
 * ruf_envelope_open for kind reply).
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

static const char inbox_usage[] =
    "usage: ruf inbox [options]\n"
    "  fetches replies from HQ (unless --offline) and lists every reply held\n"
    "  --offline             do not connect; list what is held\n"
    "  --hq HOST:PORT        rufd's address (default: the directory's)\n"
    "  --idle SECONDS        stop fetching after this long without a reply [2]\n"
    "  --json                a JSON array\n"
    "  --home DIR  --passphrase-file F\n"
    "exit status: 0 ok, 1 failure, 2 usage, 3 a reply failed verification (quarantined)\n"
    "             or is flagged (its desk was revoked before rufd accepted it)\n";

/* A keystore holding the device's kx key as the queue key of its inbox. */
static int
inbox_keystore(const ruf_keystore *ks, const char *queue, ruf_keystore **out)
{
	const struct ruf_key *kx = ruf_keystore_find(ks, RUF_KEY_KX, RUF_KEYNAME_KX, 0);
	struct ruf_key k;
	int rc;

	*out = NULL;
	if (kx == NULL)
		return RUF_E_NO_KEY;
	if ((rc = ruf_keystore_new(out)) != 0)
		return rc;
	memset(&k, 0, sizeof(k));
	k.type = RUF_KEY_QUEUE;
	snprintf(k.name, sizeof(k.name), "%s", queue);
	k.epoch = 1;
	memcpy(k.pk, kx->pk, sizeof(k.pk));
	k.sk = kx->sk; /* copied by ruf_keystore_add into its own secure memory */
	k.sklen = kx->sklen;
	if ((rc = ruf_keystore_add(*out, &k)) != 0) {
		ruf_keystore_free(*out);
		*out = NULL;
	}
	return rc;
}

int
ruf_inbox_main(int argc, char *argv[])
{
	static const struct option opts[] = {
	    {"offline", no_argument, NULL, 'o'},
	    {"hq", required_argument, NULL, 'q'},
	    {"idle", required_argument, NULL, 'i'},
	    {"json", no_argument, NULL, 'j'},
	    {"home", required_argument, NULL, 'H'},
	    {"passphrase-file", required_argument, NULL, 'p'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct desk_net net = {.idle_ms = 2000, .window = 16, .quiet = true};
	const char *homearg = NULL;
	struct cli_pass pp = {0};
	struct cli_identity id;
	struct ruf_archive_rec *v = NULL;
	ruf_keystore *iks = NULL;
	ruf_archive *a = NULL;
	char queue[RUF_QUEUE_NAME_MAX + 1];
	const char *qs[1] = {queue};
	bool offline = false, json = false;
	size_t n = 0, shown = 0;
	int c, rc, fetch_rc = 0;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			offline = true;
			break;
		case 'q':
			net.hq = optarg;
			break;
		case 'i': {
			char *end;
			double s = strtod(optarg, &end);
			if (*end != '\0' || !(s > 0 && s <= 3600)) {
				fputs(inbox_usage, stderr);
				return EXIT_USAGE;
			}
			net.idle_ms = (unsigned)(s * 1000);
			break;
		}
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
			fputs(inbox_usage, stdout);
			return 0;
		default:
			fputs(inbox_usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fputs(inbox_usage, stderr);
		return EXIT_USAGE;
	}
	net.json = json;
	if ((rc = cli_identity_load(cli_home(homearg), true, &pp, &id)) != 0)
		return cli_exit_for(rc);
	if (id.cert->role != RUF_ROLE_DEVICE) {
		rc = cli_fail(1, "ruf inbox is for field devices (desks use 'ruf desk pull')");
		goto out;
	}
	snprintf(queue, sizeof(queue), "inbox.%s", id.cert->subject);
	if (!ruf_is_queue_name(queue) || (rc = inbox_keystore(id.ks, queue, &iks)) != 0) {
		rc = cli_fail(1, "no inbox for %s", id.cert->subject);
		goto out;
	}
	if ((rc = ruf_archive_open(id.home, id.ks, &a)) != 0) {
		rc = cli_fail(1, "%s/archive: %s", id.home, ruf_strerror(rc));
		goto out;
	}
	if (!offline) {
		fetch_rc = desk_receive(&id, iks, a, qs, 1, &net);
		if (fetch_rc != 0 && fetch_rc != EXIT_VERIFY) {
			rc = fetch_rc;
			goto out;
		}
	}
	if ((rc = ruf_archive_list(a, &v, &n)) != 0) {
		rc = cli_fail(1, "listing the inbox: %s", ruf_strerror(rc));
		goto out;
	}
	if (json)
		printf("[");
	for (size_t i = 0; i < n; i++) {
		/*
		 * No directory in ctx: a reply from a desk revoked since is judged
		 * below by rufd's signed accept time, like a report at a desk
		 * (docs/DESK.md, "Revoked senders"), not refused outright.
		 */
		struct ruf_open_ctx ctx = {id.root, NULL, iks, ruf_now(), NULL};
		char flag[256];
		struct ruf_opened *o = NULL;
		Ruf__Report *r = NULL;
		char path[PATH_MAX], t[21], to[2 * RUF_MSGID_BYTES + 1];
		ruf_diag d = {{0}};
		const char *text = "";
		int fd;

		if (v[i].hdr.kind != RUF_KIND_REPLY)
			continue;
		/* Opened again for the text: verified each time it is shown. */
		ruf_archive_env_path(a, v[i].id, path, sizeof(path));
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
			continue;
		rc = ruf_envelope_open_diag(fd, &ctx, &d, &o);
		close(fd);
		if (rc == 0 && (rc = ruf_report_decode(o->report, o->report_len, &r)) != 0)
			snprintf(d.msg, sizeof(d.msg), "the reply inside is invalid");
		if (rc != 0) {
			char idhex[2 * RUF_MSGID_BYTES + 1];
			ruf_hex(v[i].id, RUF_MSGID_BYTES, idhex);
			cli_fail(0, "%s: verification fails now: %s%s%s", idhex, ruf_strerror(rc),
			         d.msg[0] ? ": " : "", d.msg);
			fetch_rc = EXIT_VERIFY;
			ruf_opened_free(o);
			continue;
		}
		if (r->body_case == RUF__REPORT__BODY_REPLY && r->reply->text)
			text = r->reply->text;
		desk_judge(id.dir, &v[i]);
		if (v[i].verdict == RUF_REV_FLAGGED)
			fetch_rc = EXIT_VERIFY;
		ruf_hex(v[i].hdr.reply_to, RUF_MSGID_BYTES, to);
		ruf_time_fmt(v[i].hdr.created, t);
		if (json) {
			printf("%s\n {", shown ? "," : "");
			desk_json_rec_fields(stdout, &v[i]);
			printf(", \"text\": ");
			cli_json_str(stdout, text);
			printf("}");
		} else {
			printf("%s  from %-14s %-13s re %.12s  ", t, v[i].sender, v[i].status, to);
			for (const char *p = text; *p; p++)
				putchar((unsigned char)*p < 0x20 && *p != '\n' ? '?' : *p);
			putchar('\n');
			if (desk_flag_text(&v[i], flag, sizeof(flag)) != NULL)
				printf("    [%s]\n", flag);
		}
		shown++;
		protobuf_c_message_free_unpacked(&r->base, NULL);
		ruf_opened_free(o);
	}
	if (json)
		printf("\n]\n");
	else if (shown == 0)
		printf("no replies\n");
	rc = fetch_rc;
out:
	free(v);
	ruf_archive_close(a);
	ruf_keystore_free(iks);
	cli_identity_free(&id);
	return rc;
}
