/*
 * ruf desk VERB: the HQ desk's commands (docs/DESK.md), and what they share
 * with `ruf inbox`: connecting to rufd, receiving deliveries into the
 * archive, one-line summaries, filters.
 *
 *   pull [QUEUE...]    receive the backlog, archive, acknowledge, exit when idle
 *   follow [QUEUE...]  the same, staying connected (reconnects after drops)
 *   list / show / export / surge   read the archive (ruf_desk_view.c)
 *   reply ID           answer the device that sent ID (ruf_desk_reply.c)
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <protobuf-c/protobuf-c.h>
#include <sodium.h>

#include "desk.h"
#include "envelope.h"
#include "report.h"
#include "util.h"

#define DESK_ENV_MAX (1ull << 32) /* largest envelope a desk accepts */
#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 60000

int
desk_exit_for(int rc)
{
	/* 3 only for refused certificates, directories and envelopes (codes are negative). */
	if (rc == 0)
		return 0;
	if (rc <= RUF_E_CERT_FORMAT && rc >= RUF_E_ENV_CHANGED && rc != RUF_E_POLICY &&
	    rc != RUF_E_DIR_NO_QUEUE)
		return EXIT_VERIFY;
	return 1;
}

bool
desk_colour(void)
{
	const char *nc = getenv("NO_COLOR");
	return isatty(STDOUT_FILENO) && (nc == NULL || *nc == '\0');
}

static void
save_directory(struct cli_identity *id, ruf_directory *nd)
{
	char path[PATH_MAX];

	cli_path(path, sizeof(path), "%s/directory", id->home);
	if (ruf_file_write_atomic(path, nd->raw, nd->rawlen, 0600, false) != 0) {
		cli_fail(1, "%s: could not save the newer directory", path);
		ruf_directory_free(nd);
		return;
	}
	fprintf(stderr, "%s: installed directory version %" PRIu64 " from rufd\n", cli_progname,
	        nd->version);
	ruf_directory_free(id->dir);
	id->dir = nd;
}

int
desk_connect(struct cli_identity *id, const char *hq, ruf_client **out)
{
	/* The instance that answered last is tried first: it is known to work. */
	static size_t next;
	const struct ruf_key *kx = ruf_keystore_find(id->ks, RUF_KEY_KX, RUF_KEYNAME_KX, 0);
	struct ruf_client_identity ci;
	const char *const *addrs = &hq;
	size_t n = 1, used = 0;
	ruf_diag d = {{0}};
	ruf_directory *nd;
	int rc;

	*out = NULL;
	if (hq == NULL) {
		if (id->dir->hq.n_addresses == 0)
			return cli_fail(RUF_E_INVAL, "the directory names no HQ address: use --hq"),
			       RUF_E_INVAL;
		addrs = (const char *const *)id->dir->hq.addresses;
		n = id->dir->hq.n_addresses;
	}
	if (kx == NULL)
		return cli_fail(RUF_E_NO_KEY, "the keystore has no kx key"), RUF_E_NO_KEY;
	ci = (struct ruf_client_identity){id->cert->raw, id->cert->rawlen, kx->sk, id->root,
	                                  id->dir};
	if ((rc = ruf_client_connect_any(addrs, n, next % n, &ci, NULL, out, &used, &d)) != 0) {
		cli_fail(rc, "connecting to HQ: %s%s%s", ruf_strerror(rc), d.msg[0] ? ": " : "",
		         d.msg);
		return rc;
	}
	if (n > 1 && used != next % n)
		fprintf(stderr, "%s: connected to HQ at %s\n", cli_progname, addrs[used]);
	next = used;
	if ((nd = ruf_client_take_directory(*out)) != NULL)
		save_directory(id, nd);
	return 0;
}

void
desk_judge(const ruf_directory *dir, struct ruf_archive_rec *r)
{
	const struct ruf_dir_revocation *rev = NULL;

	r->verdict = RUF_REV_GOOD;
	r->revoked_at = 0;
	r->revoked_reason[0] = '\0';
	/* What this desk sent is its own: nothing to judge. */
	if (r->direction != RUF_ARCHIVE_RECEIVED)
		return;
	r->verdict = (int)ruf_directory_judge(dir, r->sender_serial, r->accepted, &rev);
	if (rev != NULL) {
		r->revoked_at = rev->revoked_at;
		snprintf(r->revoked_reason, sizeof(r->revoked_reason), "%s", rev->reason);
	}
}

const char *
desk_flag_text(const struct ruf_archive_rec *r, char *out, size_t n)
{
	char since[21], at[21];

	if (r->verdict == RUF_REV_GOOD)
		return NULL;
	ruf_time_fmt(r->revoked_at, since);
	ruf_time_fmt(r->accepted, at);
	if (r->verdict == RUF_REV_BEFORE)
		snprintf(out, n, "sender revoked since %s%s%s%s", since,
		         r->revoked_reason[0] ? " (" : "", r->revoked_reason,
		         r->revoked_reason[0] ? ")" : "");
	else
		snprintf(out, n, "FLAGGED, not genuine: sender revoked since %s%s%s%s, %s%s", since,
		         r->revoked_reason[0] ? " (" : "", r->revoked_reason,
		         r->revoked_reason[0] ? ")" : "",
		         r->accepted ? "rufd accepted it at " : "no rufd accept time to trust",
		         r->accepted ? at : "");
	return out;
}

static void
fmt_risk(const struct ruf_archive_rec *r, char *out, size_t n)
{
	const char *s = r->hdr.kind == RUF_KIND_REPLY ? NULL : ruf_risk_name(r->hdr.risk);
	snprintf(out, n, "%s", s ? s : "-");
}

void
desk_print_summary(FILE *fp, const struct ruf_archive_rec *r, const char *note, bool json)
{
	char created[21], idhex[2 * RUF_MSGID_BYTES + 1], risk[32], flag[512];
	const char *ft = desk_flag_text(r, flag, sizeof(flag));
	bool col = !json && fp == stdout && desk_colour();
	bool red = col && r->verdict == RUF_REV_FLAGGED;
	bool hot = r->hdr.kind != RUF_KIND_REPLY &&
	           (r->hdr.risk == RUF_RISK_HIGH || r->hdr.risk == RUF_RISK_ONGOING);

	ruf_time_fmt(r->hdr.created, created);
	ruf_hex(r->id, RUF_MSGID_BYTES, idhex);
	fmt_risk(r, risk, sizeof(risk));
	if (json) {
		fputc('{', fp);
		desk_json_rec_fields(fp, r);
		if (note != NULL) {
			fputs(", \"event\": ", fp);
			cli_json_str(fp, note);
		}
		fputs("}\n", fp);
		return;
	}
	fprintf(fp, "%s  %.12s  %-10s %-6s %s%-8s%s %-16s %s%s%s%s%s%s%s%s\n", created, idhex,
	        r->hdr.situation[0] ? r->hdr.situation : "-", ruf_kind_name(r->hdr.kind),
	        col && hot ? "\033[1;31m" : "", risk, col && hot ? "\033[0m" : "", r->sender,
	        r->title, note ? "  " : "", note ? note : "", ft ? "  [" : "",
	        red ? "\033[1;31m" : "", ft ? ft : "", red ? "\033[0m" : "", ft ? "]" : "");
}

void
desk_json_rec_fields(FILE *fp, const struct ruf_archive_rec *r)
{
	char t[21], idhex[2 * RUF_MSGID_BYTES + 1], hash[65];
	const char *risk = ruf_risk_name(r->hdr.risk);

	ruf_hex(r->id, RUF_MSGID_BYTES, idhex);
	ruf_hex(r->hash, 32, hash);
	fprintf(fp, "\"message_id\": \"%s\", \"direction\": \"%s\", ", idhex,
	        r->direction == RUF_ARCHIVE_SENT ? "sent" : "received");
	ruf_time_fmt(r->hdr.created, t);
	fprintf(fp, "\"created\": \"%s\", ", t);
	ruf_time_fmt(r->received, t);
	fprintf(fp, "\"received\": \"%s\", \"queues\": [", t);
	for (size_t i = 0; i < r->n_queues; i++) {
		fputs(i ? ", " : "", fp);
		cli_json_str(fp, r->queues[i]);
	}
	fprintf(fp, "], \"kind\": \"%s\", \"situation\": ", ruf_kind_name(r->hdr.kind));
	cli_json_str(fp, r->hdr.situation);
	fputs(", \"country\": ", fp);
	cli_json_str(fp, r->hdr.country);
	fputs(", \"region\": ", fp);
	cli_json_str(fp, r->hdr.region);
	fprintf(fp, ", \"risk\": \"%s\", \"flags\": [",
	        risk && r->hdr.kind != RUF_KIND_REPLY ? risk : "");
	cli_flags_json(fp, r->hdr.flags);
	fputs("], \"sender\": {\"subject\": ", fp);
	cli_json_str(fp, r->sender);
	fprintf(fp, ", \"serial\": %" PRIu64 ", \"role\": \"%s\"}, \"verification\": ",
	        r->sender_serial,
	        ruf_role_name(r->sender_role) ? ruf_role_name(r->sender_role) : "");
	/* A flagged record is not verified, whatever it was at receipt. */
	cli_json_str(fp, r->verdict == RUF_REV_FLAGGED ? "flagged" : r->verification);
	if (r->accepted != 0) {
		ruf_time_fmt(r->accepted, t);
		fprintf(fp, ", \"accepted\": \"%s\"", t);
	} else
		fputs(", \"accepted\": null", fp);
	fprintf(fp, ", \"flagged\": %s", r->verdict == RUF_REV_FLAGGED ? "true" : "false");
	if (r->verdict != RUF_REV_GOOD) {
		char flag[512];
		ruf_time_fmt(r->revoked_at, t);
		fprintf(fp, ", \"sender_revoked_since\": \"%s\", \"revocation_reason\": ", t);
		cli_json_str(fp, r->revoked_reason);
		fputs(", \"flag_reason\": ", fp);
		cli_json_str(fp, desk_flag_text(r, flag, sizeof(flag)));
	}
	fputs(", \"title\": ", fp);
	cli_json_str(fp, r->title);
	if (r->hdr.kind == RUF_KIND_REPLY) {
		ruf_hex(r->hdr.reply_to, RUF_MSGID_BYTES, idhex);
		fprintf(fp, ", \"in_reply_to\": \"%s\", \"reply_device\": ", idhex);
		cli_json_str(fp, r->hdr.reply_device);
		fputs(", \"status\": ", fp);
		cli_json_str(fp, r->status);
	}
	fprintf(fp, ", \"envelope_blake2b\": \"%s\", \"envelope_bytes\": %" PRIu64, hash,
	        r->total_len);
}

int
desk_filter_opt(struct desk_filter *f, int c, const char *arg)
{
	switch (c) {
	case 1001:
		f->queue = arg;
		return 1;
	case 1002:
		f->situation = arg;
		return 1;
	case 1003:
		for (int k = 1; k <= RUF_KIND_REPLY; k++)
			if (ruf_kind_name(k) && strcmp(ruf_kind_name(k), arg) == 0) {
				f->kind = k;
				return 1;
			}
		return -1;
	case 1004:
		for (int k = 0; k < 16; k++)
			if (ruf_risk_name(k) && strcmp(ruf_risk_name(k), arg) == 0) {
				f->risk = k;
				return 1;
			}
		return -1;
	case 1005: {
		uint64_t t, now = ruf_now();
		if (ruf_time_parse(arg, &t) == 0) {
			f->since = t;
			return 1;
		}
		if (ruf_parse_duration(arg, &t) == 0 && t <= now) {
			f->since = now - t;
			return 1;
		}
		return -1;
	}
	case 1006:
		f->sender = arg;
		return 1;
	}
	return 0;
}

bool
desk_filter_match(const struct desk_filter *f, const struct ruf_archive_rec *r)
{
	if (f->queue != NULL) {
		bool in = false;
		for (size_t i = 0; i < r->n_queues; i++)
			in = in || strcmp(r->queues[i], f->queue) == 0;
		if (!in)
			return false;
	}
	if (f->situation && strcmp(f->situation, r->hdr.situation) != 0)
		return false;
	if (f->sender && strcmp(f->sender, r->sender) != 0)
		return false;
	if (f->kind != 0 && f->kind != r->hdr.kind)
		return false;
	if (f->risk >= 0 && (f->risk != r->hdr.risk || r->hdr.kind == RUF_KIND_REPLY))
		return false;
	if (f->since != 0 && r->hdr.created < f->since)
		return false;
	return true;
}

/* ---- receiving ---- */

struct recv_stats {
	long archived, duplicates, quarantined, flagged;
};

/*
 * The time rufd accepted the envelope, from the signed receipt delivered
 * with it, or 0. It counts only if the receipt verifies under the server
 * certificate of this session (itself checked under the root and against
 * the directory at connect) and names this message and these exact bytes:
 * it is the one time the sender cannot choose.
 */
static uint64_t
accepted_time(const struct cli_identity *id, const ruf_cert *server,
              const struct ruf_client_delivery *del, const struct ruf_env_info *e)
{
	struct ruf_wire_receipt_info info;

	if (del->receipt_len == 0 || server == NULL)
		return 0;
	if (ruf_wire_receipt_verify(del->receipt, del->receipt_len, server, id->root, ruf_now(),
	                            del->message_id, e->hash, &info) != 0)
		return 0;
	return info.body.time;
}

/* Fills an index record from an opened envelope. */
static void
fill_rec(struct ruf_archive_rec *rec, const struct ruf_opened *o, const Ruf__Report *r,
         const char *queue)
{
	const struct ruf_env_info *e = o->info;

	memset(rec, 0, sizeof(*rec));
	memcpy(rec->id, e->hdr.message_id, RUF_MSGID_BYTES);
	snprintf(rec->queues[0], sizeof(rec->queues[0]), "%s", queue);
	rec->n_queues = 1;
	rec->received = ruf_now();
	rec->hdr = e->hdr;
	snprintf(rec->sender, sizeof(rec->sender), "%s", e->sender->subject);
	rec->sender_serial = e->sender->serial;
	rec->sender_role = e->sender->role;
	snprintf(rec->verification, sizeof(rec->verification), "verified");
	/* The author's own title when there is one: it says most in a list. */
	if (r->body_case == RUF__REPORT__BODY_SITREP && r->sitrep->title && r->sitrep->title[0])
		snprintf(rec->title, sizeof(rec->title), "%s", r->sitrep->title);
	else if (r->body_case == RUF__REPORT__BODY_SURGE && r->surge->title && r->surge->title[0])
		snprintf(rec->title, sizeof(rec->title), "%s", r->surge->title);
	else
		ruf_report_title(r, rec->title, sizeof(rec->title));
	rec->direction = RUF_ARCHIVE_RECEIVED;
	if (r->body_case == RUF__REPORT__BODY_REPLY && r->reply->status)
		snprintf(rec->status, sizeof(rec->status), "%s", r->reply->status);
	memcpy(rec->hash, e->hash, 32);
	rec->total_len = e->total_len;
}

/*
 * One delivery, already in tmp (fd): verify and open, archive or quarantine.
 * Returns 0 (ack it), or an error after which it must not be acked.
 */
static int
handle_delivery(struct cli_identity *id, const ruf_keystore *open_ks, ruf_archive *a, int fd,
                const char *tmp, const struct ruf_client_delivery *del, const ruf_cert *server,
                const struct desk_net *net, struct recv_stats *st)
{
	/*
	 * No directory for the envelope checks: a revoked sender is judged
	 * below by when rufd accepted it, not refused outright (docs/DESK.md).
	 */
	struct ruf_open_ctx ctx = {id->root, NULL, open_ks, ruf_now(), NULL};
	struct ruf_opened *o = NULL;
	struct ruf_archive_rec rec;
	Ruf__Report *r = NULL;
	char reason[512], name[128], idhex[2 * RUF_MSGID_BYTES + 1];
	ruf_diag d = {{0}};
	bool dup;
	int rc;

	ruf_hex(del->message_id, RUF_MSGID_BYTES, idhex);
	rc = ruf_envelope_open_diag(fd, &ctx, &d, &o);
	if (rc == RUF_E_ENV_NOT_RECIPIENT || rc == RUF_E_ENV_EPOCH) {
		/* Our configuration, not the sender's fault: keep it queued at rufd. */
		cli_fail(rc,
		         "%s on %s: this desk lacks the key for queue %s (%s%s%s); "
		         "re-issue the desk with the current key and pull again",
		         idhex, del->queue, del->queue, ruf_strerror(rc), d.msg[0] ? ": " : "",
		         d.msg);
		rc = RUF_E_NO_KEY;
		goto out;
	}
	if (rc == 0 && memcmp(o->info->hdr.message_id, del->message_id, RUF_MSGID_BYTES) != 0) {
		rc = RUF_E_ENV_FORMAT;
		snprintf(d.msg, sizeof(d.msg), "delivered as another message id");
	}
	if (rc == 0 && (rc = ruf_report_decode(o->report, o->report_len, &r)) != 0)
		snprintf(d.msg, sizeof(d.msg), "the report inside is invalid");
	if (rc == 0) {
		uint64_t accepted = accepted_time(id, server, del, o->info);

		fill_rec(&rec, o, r, del->queue);
		rec.accepted = accepted;
		rc = ruf_archive_put(a, tmp, &rec, &dup);
		if (rc == RUF_E_EXISTS)
			snprintf(d.msg, sizeof(d.msg),
			         "same message id as an archived, different envelope");
		else if (rc != 0) {
			cli_fail(rc, "archiving %s: %s", idhex, ruf_strerror(rc));
			goto out;
		} else {
			if (dup)
				st->duplicates++;
			else
				st->archived++;
			/* A duplicate shows what the archive holds (it may hold the time). */
			if (dup && ruf_archive_get(a, rec.id, &rec) != 0) {
				fill_rec(&rec, o, r, del->queue);
				rec.accepted = accepted;
			}
			desk_judge(id->dir, &rec);
			if (rec.verdict == RUF_REV_FLAGGED && !dup)
				st->flagged++;
			if (!net->quiet)
				desk_print_summary(stdout, &rec, dup ? "(duplicate)" : NULL,
				                   net->json);
			fflush(stdout);
			goto out;
		}
	}
	/* Failed verification: kept aside with the reason, never shown as genuine. */
	snprintf(reason, sizeof(reason), "%s: %s%s%s (queue %s, seq %" PRIu64 ")", ruf_errname(rc),
	         ruf_strerror(rc), d.msg[0] ? ": " : "", d.msg, del->queue, del->seq);
	snprintf(name, sizeof(name), "%s-%s-%" PRIu64, idhex, del->queue, del->seq);
	if ((rc = ruf_archive_quarantine(a, tmp, name, reason)) != 0) {
		cli_fail(rc, "quarantining %s: %s", idhex, ruf_strerror(rc));
		goto out;
	}
	st->quarantined++;
	if (net->json) {
		printf("{\"event\": \"quarantined\", \"message_id\": \"%s\", \"queue\": ", idhex);
		cli_json_str(stdout, del->queue);
		printf(", \"reason\": ");
		cli_json_str(stdout, reason);
		printf("}\n");
	} else {
		printf("%sQUARANTINED%s %s on %s: %s\n", desk_colour() ? "\033[1;31m" : "",
		       desk_colour() ? "\033[0m" : "", idhex, del->queue, reason);
	}
	fflush(stdout);
	rc = 0;
out:
	if (r != NULL)
		protobuf_c_message_free_unpacked(&r->base, NULL);
	ruf_opened_free(o);
	return rc;
}

/* One connection: subscribe and receive until idle, a limit, or an error. */
static int
receive_session(struct cli_identity *id, const ruf_keystore *open_ks, ruf_archive *a,
                const char *const *queues, size_t n, const struct desk_net *net,
                struct recv_stats *st, long *got, bool *connected)
{
	ruf_client *c = NULL;
	ruf_diag d = {{0}};
	int rc;

	*connected = false;
	if ((rc = desk_connect(id, net->hq, &c)) != 0)
		return rc;
	*connected = true;
	if ((rc = ruf_client_subscribe(c, queues, n, net->window, &d)) != 0) {
		cli_fail(rc, "subscribe: %s %s", ruf_strerror(rc), d.msg);
		goto out;
	}
	for (;;) {
		struct ruf_client_delivery del;
		struct ruf_client_sink sink = {.fd = -1, .max_len = DESK_ENV_MAX};
		char tmp[PATH_MAX], tag[96];
		int fd;

		if (net->max > 0 && *got >= net->max) {
			rc = 0;
			break;
		}
		snprintf(tag, sizeof(tag), "%ld", *got);
		ruf_archive_tmp_path(a, tag, tmp, sizeof(tmp));
		if ((fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) == -1) {
			rc = ruf_errno(errno);
			cli_fail(rc, "%s: %s", tmp, strerror(errno));
			break;
		}
		sink.fd = fd;
		memset(&del, 0, sizeof(del));
		rc = ruf_client_next_delivery(c, net->follow ? -1 : (int)net->idle_ms, &sink, &del,
		                              &d);
		if (rc == 0)
			rc = handle_delivery(id, open_ks, a, fd, tmp, &del,
			                     ruf_client_server_cert(c), net, st);
		else if (rc != RUF_E_NET_TIMEOUT)
			cli_fail(rc, "receiving: %s%s%s", ruf_strerror(rc), d.msg[0] ? ": " : "",
			         d.msg);
		close(fd);
		unlink(tmp); /* gone already when archived or quarantined */
		free(del.data);
		if (rc == RUF_E_NET_TIMEOUT) {
			rc = 0; /* drained */
			break;
		}
		if (rc != 0)
			break;
		(*got)++;
		/* Acknowledged only now: the archive write (or quarantine) is durable. */
		if ((rc = ruf_client_ack(c, del.queue, del.seq, &d)) != 0) {
			cli_fail(rc, "ack: %s", ruf_strerror(rc));
			break;
		}
	}
out:
	ruf_client_close(c);
	return rc;
}

static bool
retriable(int rc)
{
	return rc == RUF_E_NET_CONNECT || rc == RUF_E_NET_TIMEOUT || rc == RUF_E_NET_CLOSED ||
	       rc == RUF_E_WIRE_HANDSHAKE || rc == RUF_E_WIRE_PROTOCOL || rc == RUF_E_IO ||
	       /* rufd shutting down, busy or rate limiting; queues were checked locally */
	       rc == RUF_E_WIRE_ERROR || rc == RUF_E_WIRE_RETRY_LATER;
}

int
desk_receive(struct cli_identity *id, const ruf_keystore *open_ks, ruf_archive *a,
             const char *const *queues, size_t n, const struct desk_net *net)
{
	struct recv_stats st = {0};
	unsigned backoff = BACKOFF_MIN_MS;
	long got = 0;
	bool connected;
	int rc;

	for (;;) {
		long before = got;
		rc = receive_session(id, open_ks, a, queues, n, net, &st, &got, &connected);
		if (!net->follow || (net->max > 0 && got >= net->max) || !retriable(rc))
			break;
		if (connected && got > before)
			backoff = BACKOFF_MIN_MS;
		{
			/* Full jitter, so desks cut off together do not return together. */
			unsigned ms = backoff / 2 + randombytes_uniform(backoff / 2 + 1);
			struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
			fprintf(stderr, "%s: reconnecting in %u ms\n", cli_progname, ms);
			nanosleep(&ts, NULL);
		}
		backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
	}
	if (!net->json && !net->quiet)
		fprintf(stderr, "%s: %ld archived, %ld duplicates, %ld quarantined, %ld flagged\n",
		        cli_progname, st.archived, st.duplicates, st.quarantined, st.flagged);
	if (rc != 0)
		return desk_exit_for(rc);
	return st.quarantined > 0 || st.flagged > 0 ? EXIT_VERIFY : 0;
}

static const char pull_usage[] =
    "usage: ruf desk pull|follow [QUEUE...] [options]\n"
    "  QUEUE                 queues to read (default: every queue in the desk certificate)\n"
    "  --hq HOST:PORT        rufd's address (default: the directory's)\n"
    "  --idle SECONDS        pull: exit after this long without a delivery [2]\n"
    "  --max N               stop after N deliveries\n"
    "  --json                one JSON object per message\n"
    "  --home DIR            the identity (default $RUF_HOME or ~/.ruf)\n"
    "  --passphrase-file F   the keystore's passphrase (else $RUF_PASSPHRASE, tty)\n"
    "exit status: 0 ok, 1 failure, 2 usage, 3 something was quarantined or flagged\n";

int
ruf_desk_pull_main(int argc, char *argv[])
{
	static const struct option opts[] = {
	    {"hq", required_argument, NULL, 'q'},
	    {"idle", required_argument, NULL, 'i'},
	    {"max", required_argument, NULL, 'm'},
	    {"json", no_argument, NULL, 'j'},
	    {"home", required_argument, NULL, 'H'},
	    {"passphrase-file", required_argument, NULL, 'p'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct desk_net net = {.idle_ms = 2000, .window = 16};
	const char *homearg = NULL;
	const char **queues = NULL;
	struct cli_pass pp = {0};
	struct cli_identity id;
	ruf_archive *a = NULL;
	size_t nq;
	int c, rc;

	net.follow = strcmp(argv[0], "follow") == 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'q':
			net.hq = optarg;
			break;
		case 'i': {
			char *end;
			double s = strtod(optarg, &end);
			if (*end != '\0' || !(s > 0 && s <= 3600)) {
				fputs(pull_usage, stderr);
				return EXIT_USAGE;
			}
			net.idle_ms = (unsigned)(s * 1000);
			break;
		}
		case 'm':
			net.max = atol(optarg);
			break;
		case 'j':
			net.json = true;
			break;
		case 'H':
			homearg = optarg;
			break;
		case 'p':
			pp.file = optarg;
			break;
		case 'h':
			fputs(pull_usage, stdout);
			return 0;
		default:
			fputs(pull_usage, stderr);
			return EXIT_USAGE;
		}
	}
	if ((rc = cli_identity_load(cli_home(homearg), true, &pp, &id)) != 0)
		return cli_exit_for(rc);
	if (id.cert->role != RUF_ROLE_DESK) {
		rc = cli_fail(1, "this identity is a %s, not a desk (devices use 'ruf inbox')",
		              ruf_role_name(id.cert->role));
		goto out;
	}
	nq = optind < argc ? (size_t)(argc - optind) : id.cert->n_queues;
	if (nq == 0 || nq > 16) {
		rc = cli_fail(EXIT_USAGE, "between 1 and 16 queues");
		goto out;
	}
	queues = optind < argc ? (const char **)&argv[optind] : (const char **)id.cert->queues;
	for (size_t i = 0; i < nq; i++) {
		if (!ruf_cert_permits_queue(id.cert, queues[i])) {
			rc = cli_fail(1, "queue %s: this desk's certificate does not permit it",
			              queues[i]);
			goto out;
		}
		if (ruf_keystore_find(id.ks, RUF_KEY_QUEUE, queues[i], 0) == NULL) {
			rc = cli_fail(1,
			              "queue %s: this desk's keystore holds no key for it "
			              "(re-issue: rufctl cert issue --role desk --queue %s)",
			              queues[i], queues[i]);
			goto out;
		}
	}
	if ((rc = ruf_archive_open(id.home, id.ks, &a)) != 0) {
		rc = cli_fail(1, "%s/archive: %s", id.home, ruf_strerror(rc));
		goto out;
	}
	rc = desk_receive(&id, id.ks, a, queues, nq, &net);
out:
	ruf_archive_close(a);
	cli_identity_free(&id);
	return rc;
}

static const struct cli_command desk_commands[] = {
    {"pull", ruf_desk_pull_main, "Receive the queues' backlog into the archive, then exit"},
    {"follow", ruf_desk_pull_main, "Receive continuously, reconnecting after drops"},
    {"list", ruf_desk_view_list, "List archived messages (filters, --json)"},
    {"show", ruf_desk_view_show, "Verify, open and show one archived report"},
    {"export", ruf_desk_view_export, "Export reports as JSONL or casualty figures as CSV"},
    {"reply", ruf_desk_reply_main, "Answer the device that sent a report (status, text)"},
    {"surge", ruf_desk_view_surge, "Surge requests and the status of each"},
    {NULL, NULL, NULL},
};

int ruf_desk_main(int argc, char *argv[]);
int
ruf_desk_main(int argc, char *argv[])
{
	return cli_dispatch(desk_commands, "usage: ruf desk VERB [OPTIONS]", argc, argv);
}
