/*
 * ruf send: deliver the outbox to HQ over poor links (lib/client.h).
 *
 * One pass: connect (Noise IK; a newer directory in the Welcome is installed
 * first, exactly as `ruf directory update` would), then every pending or
 * in-flight entry, highest risk first, each resumed from the byte HQ holds
 * durably (SubmitStatus). A verified receipt marks the entry delivered and
 * destroys its content key wrap. Transient failures (network, retry later)
 * are retried with exponential back-off and jitter until --deadline;
 * --watch keeps going for ever, waiting for the link and for new reports.
 * The chunk size adapts per connection: it starts at 16 KiB, doubles after a
 * connection that delivered everything it tried (up to 60000 bytes) and
 * halves after a cut (down to 2 KiB), so a link that drops often loses
 * little per cut. TCP keepalive and TCP_USER_TIMEOUT are set by the client
 * library (lib/client.c); TCP_USER_TIMEOUT (120 s of unacknowledged data)
 * is what detects a dead link. The wait for rufd's answer is 10 minutes
 * (--io-timeout): the client library writes every chunk into the socket
 * buffer and then waits for the receipt, and on a 40 kbit/s link the
 * kernel may still be sending a megabyte from that buffer for minutes
 * while the connection is healthy (a shorter wait cut healthy uploads).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "cli.h"
#include "client.h"
#include "outbox.h"
#include "report.h"
#include "seal_common.h"
#include "util.h"

static const char usage[] =
    "usage: ruf send [--hq HOST:PORT] [--deadline DURATION] [--watch] [options]\n"
    "  --hq HOST:PORT       HQ address (default: the directory's HQ addresses)\n"
    "  --deadline DUR       keep retrying transient failures this long (e.g. 30m)\n"
    "  --watch              keep running: retry when the link returns, send new reports\n"
    "  --chunk BYTES        first chunk size (default 16384; adapts to the link)\n"
    "  --quiet              no progress display\n"
    "  --io-timeout DUR     longest wait for HQ's answer (default 10m; a dead link is\n"
    "                       detected sooner by TCP_USER_TIMEOUT, 120 s)\n"
    "  --home DIR  --passphrase-file F\n";

#define CHUNK_MIN 2048
#define CHUNK_MAX 60000
#define BACKOFF_MAX_S 300
#define WATCH_IDLE_S 30

struct sender {
	struct cli_identity id;
	const uint8_t *kx_sk;
	char dir[PATH_MAX];
	const char *hq;
	size_t hq_next; /* the HQ address to try first: the one that last answered */
	size_t chunk;
	unsigned io_timeout_ms;
	bool progress;
	/* progress display */
	const char *cur_id;
	double t0;
	uint64_t start_done;
	uint64_t sent; /* bytes of envelopes written this run */
};

static double
mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
progress_cb(void *arg, uint64_t done, uint64_t total)
{
	struct sender *s = arg;
	double dt = mono() - s->t0, rate;
	uint64_t moved;

	if (done < s->start_done)
		s->start_done = done;
	moved = done - s->start_done;
	rate = dt > 0 ? (double)moved / dt : 0;
	if (!s->progress)
		return;
	fprintf(stderr, "\r%.8s %" PRIu64 "/%" PRIu64 " bytes  %.1f KiB/s  ETA %.0f s   ",
	        s->cur_id, done, total, rate / 1024,
	        rate > 0 ? (double)(total - done) / rate : 0.0);
	if (done == total)
		fputc('\n', stderr);
}

static int
install_directory(struct sender *s, ruf_directory *nd)
{
	char path[PATH_MAX];
	int rc;

	if (ruf_directory_accept(s->id.dir, nd) != 0) {
		ruf_directory_free(nd);
		return 0;
	}
	cli_path(path, sizeof(path), "%s/directory", s->id.home);
	if ((rc = ruf_file_write_atomic(path, nd->raw, nd->rawlen, 0600, false)) != 0) {
		ruf_directory_free(nd);
		return cli_fail(rc, "%s: %s", path, ruf_strerror(rc));
	}
	fprintf(stderr, "ruf: directory updated from version %" PRIu64 " to %" PRIu64 "\n",
	        s->id.dir->version, nd->version);
	ruf_directory_free(s->id.dir);
	s->id.dir = nd;
	return 0;
}

/* Receipt checked again here, against the envelope on disk, before it counts. */
static int
accept_receipt(struct sender *s, ruf_client *c, struct outbox_entry *e,
               struct ruf_client_submit_result *res)
{
	char t[21];
	int rc;

	rc = outbox_deliver(s->dir, e, res->receipt, res->receipt_len, ruf_client_server_cert(c),
	                    s->id.root);
	if (rc != 0)
		return rc;
	ruf_time_fmt(e->receipt_time, t);
	printf("delivered %s: receipt verified, store seq %" PRIu64 ", queues %s, %s "
	       "(resumed at %" PRIu64 " of %" PRIu64 " bytes)\n",
	       e->id, e->store_seq, e->queues, t, res->resumed_at, res->total_len);
	fflush(stdout);
	return 0;
}

/*
 * rufd routes this report to queues its envelope has no wrap for: open it
 * with the content key kept in the outbox wrap, seal the same report (same
 * message id, new sequence) to the queues of the directory now held, and
 * replace the envelope, wrap and metadata. The decrypted attachments live
 * in a 0700 directory inside the outbox only for the call.
 */
static int
reseal(struct sender *s, struct outbox_entry *e)
{
	struct ruf_opened *o = NULL;
	struct ruf_report_input rin = {0};
	struct cli_sealed sealed;
	uint8_t *ck = NULL, *ck2 = NULL;
	char tdir[PATH_MAX], env[PATH_MAX], tmp[PATH_MAX];
	struct stat st;
	int fd = -1, rc;

	cli_path(tdir, sizeof(tdir), "%s/.reseal-%s", s->dir, e->id);
	cli_path(tmp, sizeof(tmp), "%s/.tmp-reseal-%s.env", s->dir, e->id);
	outbox_path(s->dir, e->id, "env", env, sizeof(env));
	if ((ck = sodium_malloc(RUF_CONTENT_KEY_BYTES)) == NULL ||
	    (ck2 = sodium_malloc(RUF_CONTENT_KEY_BYTES)) == NULL) {
		rc = RUF_E_NOMEM;
		goto out;
	}
	if ((rc = outbox_key_read(s->dir, e, s->id.cert->kx_pk, s->kx_sk, ck)) != 0)
		goto out;
	if (mkdir(tdir, 0700) == -1 && errno != EEXIST) {
		rc = ruf_errno(errno);
		goto out;
	}
	if ((fd = open(env, O_RDONLY | O_CLOEXEC)) == -1) {
		rc = ruf_errno(errno);
		goto out;
	}
	rc = ruf_envelope_open_with_key(fd, s->id.root, s->id.dir, ruf_now(), ck, tdir, &o);
	close(fd);
	fd = -1;
	if (rc != 0)
		goto out;
	if ((rc = ruf_report_decode(o->report, o->report_len, &rin.report)) != 0)
		goto out;
	if (o->n_attachments > 0) {
		if ((rin.attachments = calloc(o->n_attachments, sizeof(*rin.attachments))) ==
		    NULL) {
			rc = RUF_E_NOMEM;
			goto out;
		}
		for (size_t i = 0; i < o->n_attachments; i++)
			rin.attachments[i] = (struct ruf_report_attachment){
			    o->attachments[i].saved_path, o->attachments[i].name,
			    o->attachments[i].media_type};
		rin.n_attachments = o->n_attachments;
	}
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) == -1) {
		rc = ruf_errno(errno);
		goto out;
	}
	if ((rc = cli_seal_report(&s->id, &rin, e->id, fd, &sealed, ck2, e->msgid)) != 0)
		goto out;
	if (fsync(fd) == -1 || fstat(fd, &st) == -1) {
		rc = ruf_errno(errno);
		goto out;
	}
	/* New wrap first (a crash after it leaves the old envelope with a wrap
	 * that fails its commitment: re-seal refuses, nothing is lost but
	 * that entry's re-seal), then the envelope, then the record. */
	if ((rc = outbox_key_write(s->dir, e, ck2, s->id.cert->kx_pk)) != 0)
		goto out;
	if (rename(tmp, env) == -1) {
		rc = ruf_errno(errno);
		goto out;
	}
	e->total_len = (uint64_t)st.st_size;
	e->confirmed = 0;
	e->state = OUTBOX_PENDING;
	e->dir_version = sealed.hdr.directory_version;
	e->queues[0] = '\0';
	for (size_t i = 0; i < sealed.qs.n; i++) {
		strcat(e->queues, i ? "," : "");
		strcat(e->queues, sealed.qs.names[i]);
	}
	snprintf(e->reason, sizeof(e->reason), "re-sealed under directory version %" PRIu64,
	         e->dir_version);
	e->updated = ruf_now();
	if ((rc = outbox_save(s->dir, e)) != 0)
		goto out;
	fprintf(stderr, "ruf: %s: re-sealed to %s (directory version %" PRIu64 ")\n", e->id,
	        e->queues, e->dir_version);
out:
	if (fd != -1)
		close(fd);
	unlink(tmp);
	if (o != NULL)
		for (size_t i = 0; i < o->n_attachments; i++)
			if (o->attachments[i].saved_path != NULL)
				unlink(o->attachments[i].saved_path);
	rmdir(tdir);
	free(rin.attachments);
	if (rin.report != NULL)
		protobuf_c_message_free_unpacked(&rin.report->base, NULL);
	ruf_opened_free(o);
	if (ck != NULL)
		sodium_free(ck);
	if (ck2 != NULL)
		sodium_free(ck2);
	return rc;
}

enum pass_result { PASS_DONE, PASS_RETRY, PASS_FATAL };

/*
 * One connection: sends what it can. *wait_s gets rufd's retry_after when
 * it asked us to wait. *remaining: entries still to send after the pass.
 */
static enum pass_result
one_pass(struct sender *s, size_t *remaining, uint32_t *wait_s, char *last_err, size_t lelen)
{
	struct outbox_entry *v = NULL;
	size_t n = 0, n_addrs = 1, used = 0;
	const char *const *addrs = &s->hq;
	struct ruf_client_identity cid;
	struct ruf_client_options opt = {.chunk_size = s->chunk, .io_timeout_ms = s->io_timeout_ms};
	ruf_client *c = NULL;
	ruf_directory *nd;
	ruf_diag d = {{0}};
	enum pass_result pr = PASS_DONE;
	int rc;

	*remaining = 0;
	*wait_s = 0;
	/* Finish what a crash interrupted: delivered entries keep no wrap. */
	if ((rc = outbox_list(s->dir, &v, &n)) != 0) {
		snprintf(last_err, lelen, "outbox: %s", ruf_strerror(rc));
		return PASS_FATAL;
	}
	for (size_t i = 0; i < n; i++) {
		if (v[i].state == OUTBOX_DELIVERED)
			outbox_key_destroy(s->dir, v[i].id);
		else if (v[i].state != OUTBOX_FAILED)
			(*remaining)++;
	}
	if (*remaining == 0)
		goto out;
	if (s->hq == NULL) {
		/* Several HQ instances: in the directory's order, failing over. */
		if (s->id.dir->hq.n_addresses == 0) {
			snprintf(last_err, lelen, "the directory names no HQ address: use --hq");
			pr = PASS_FATAL;
			goto out;
		}
		addrs = (const char *const *)s->id.dir->hq.addresses;
		n_addrs = s->id.dir->hq.n_addresses;
	}
	cid = (struct ruf_client_identity){s->id.cert->raw, s->id.cert->rawlen, s->kx_sk,
	                                   s->id.root, s->id.dir};
	rc =
	    ruf_client_connect_any(addrs, n_addrs, s->hq_next % n_addrs, &cid, &opt, &c, &used, &d);
	if (rc != 0) {
		snprintf(last_err, lelen, "%s%s%s", ruf_strerror(rc), d.msg[0] ? ": " : "", d.msg);
		pr = rc == RUF_E_INVAL || rc == RUF_E_NOMEM ? PASS_FATAL : PASS_RETRY;
		s->chunk = s->chunk / 2 < CHUNK_MIN ? CHUNK_MIN : s->chunk / 2;
		goto out;
	}
	if (used != s->hq_next % n_addrs)
		fprintf(stderr, "ruf: connected to HQ at %s\n", addrs[used]);
	/* A cut upload resumes here first: this instance holds its partial copy. */
	s->hq_next = used;
	if ((nd = ruf_client_take_directory(c)) != NULL && install_directory(s, nd) != 0) {
		pr = PASS_FATAL;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct outbox_entry *e = &v[i];
		struct ruf_client_submit_result res;
		struct ruf_client_progress pg = {progress_cb, s};
		char path[PATH_MAX];
		bool resealed = false;

		if (e->state == OUTBOX_DELIVERED || e->state == OUTBOX_FAILED)
			continue;
	again:
		e->state = OUTBOX_INFLIGHT;
		e->attempts++;
		e->updated = ruf_now();
		if ((rc = outbox_save(s->dir, e)) != 0) {
			snprintf(last_err, lelen, "outbox: %s", ruf_strerror(rc));
			pr = PASS_FATAL;
			goto out;
		}
		outbox_path(s->dir, e->id, "env", path, sizeof(path));
		s->cur_id = e->id;
		s->t0 = mono();
		s->start_done = UINT64_MAX;
		d.msg[0] = '\0';
		rc = ruf_client_submit_path(c, path, &pg, &res, &d);
		if (res.resumed_at <= e->total_len && res.resumed_at > e->confirmed)
			e->confirmed = res.resumed_at;
		if (s->start_done != UINT64_MAX && rc != 0)
			fprintf(stderr, "%s", s->progress ? "\n" : "");
		if (rc == 0) {
			s->sent += res.total_len - res.resumed_at;
			rc = accept_receipt(s, c, e, &res);
			if (rc == 0) {
				(*remaining)--;
			} else if (rc == RUF_E_NOSPC) {
				/* HQ holds it; only our record of the receipt failed. The
				 * entry stays in flight: the next send gets the same receipt. */
				snprintf(last_err, lelen,
				         "%s: HQ holds it (receipt verified) but the outbox cannot "
				         "record the receipt: %s; run ruf send again once there is "
				         "room",
				         e->id, ruf_strerror(rc));
				pr = PASS_FATAL;
				ruf_client_submit_result_free(&res);
				break;
			} else {
				snprintf(e->reason, sizeof(e->reason), "receipt refused: %s",
				         ruf_strerror(rc));
				e->state = OUTBOX_FAILED;
				outbox_save(s->dir, e);
				fprintf(stderr, "ruf: %s: %s\n", e->id, e->reason);
			}
			ruf_client_submit_result_free(&res);
			continue;
		}
		switch (rc) {
		case RUF_E_WIRE_RETRY_LATER:
			*wait_s = res.retry_after_s ? res.retry_after_s : 30;
			/* This instance may be cut off from the others: try the next one first. */
			s->hq_next = used + 1;
			snprintf(e->reason, sizeof(e->reason), "HQ asked to retry later");
			outbox_save(s->dir, e);
			snprintf(last_err, lelen, "%s", e->reason);
			pr = PASS_RETRY;
			break;
		case RUF_E_WIRE_STALE_DIRECTORY:
			if (res.directory != NULL) {
				ruf_directory *sd = res.directory;
				res.directory = NULL;
				install_directory(s, sd);
			}
			if (!resealed && e->dir_version < s->id.dir->version &&
			    (rc = reseal(s, e)) == 0) {
				resealed = true;
				ruf_client_submit_result_free(&res);
				goto again;
			}
			e->state = OUTBOX_FAILED;
			snprintf(e->reason, sizeof(e->reason),
			         "stale directory: re-sealing under version %" PRIu64 " failed: %s",
			         s->id.dir->version, ruf_strerror(rc));
			outbox_save(s->dir, e);
			fprintf(stderr, "ruf: %s: %s\n", e->id, e->reason);
			(*remaining)--;
			break;
		case RUF_E_WIRE_REJECTED:
		case RUF_E_TOO_LARGE:
		case RUF_E_ENV_FORMAT:
			e->state = OUTBOX_FAILED;
			snprintf(e->reason, sizeof(e->reason), "%s", ruf_strerror(rc));
			outbox_save(s->dir, e);
			fprintf(stderr, "ruf: %s: %s\n", e->id, e->reason);
			(*remaining)--;
			break;
		default:
			snprintf(e->reason, sizeof(e->reason), "%s%s%s", ruf_strerror(rc),
			         d.msg[0] ? ": " : "", d.msg);
			outbox_save(s->dir, e);
			snprintf(last_err, lelen, "%s: %s", e->id, e->reason);
			fprintf(stderr,
			        "ruf: %s: cut at %" PRIu64 " bytes confirmed of %" PRIu64 ": %s\n",
			        e->id, e->confirmed, e->total_len, e->reason);
			s->chunk = s->chunk / 2 < CHUNK_MIN ? CHUNK_MIN : s->chunk / 2;
			pr = PASS_RETRY;
		}
		ruf_client_submit_result_free(&res);
		if (pr != PASS_DONE)
			break;
	}
	if (pr == PASS_DONE)
		s->chunk = s->chunk * 2 > CHUNK_MAX ? CHUNK_MAX : s->chunk * 2;
out:
	ruf_client_close(c);
	outbox_list_free(v, n);
	return pr;
}

int
ruf_send_main(int argc, char *argv[])
{
	static const struct option opts[] = {
	    {"hq", required_argument, NULL, 'q'},
	    {"deadline", required_argument, NULL, 'D'},
	    {"watch", no_argument, NULL, 'w'},
	    {"chunk", required_argument, NULL, 'c'},
	    {"quiet", no_argument, NULL, 'Q'},
	    {"io-timeout", required_argument, NULL, 'T'},
	    {"home", required_argument, NULL, 'H'},
	    {"passphrase-file", required_argument, NULL, 'p'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct sender s = {.chunk = 16384, .io_timeout_ms = 600000};
	struct cli_pass pp = {0};
	const char *homearg = NULL;
	const struct ruf_key *kx;
	uint64_t deadline_s = 0;
	bool watch = false, quiet = false;
	double start, backoff = 1;
	char err[512] = "";
	int ch, rc;

	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'q':
			s.hq = optarg;
			break;
		case 'D':
			if (ruf_parse_duration(optarg, &deadline_s) != 0)
				return cli_fail(EXIT_USAGE, "--deadline %s: want e.g. 90, 30m, 12h",
				                optarg);
			break;
		case 'w':
			watch = true;
			break;
		case 'c':
			s.chunk = (size_t)strtoul(optarg, NULL, 10);
			if (s.chunk < CHUNK_MIN || s.chunk > CHUNK_MAX)
				return cli_fail(EXIT_USAGE, "--chunk: %d..%d", CHUNK_MIN,
				                CHUNK_MAX);
			break;
		case 'Q':
			quiet = true;
			break;
		case 'T': {
			uint64_t t;
			if (ruf_parse_duration(optarg, &t) != 0 || t < 5 || t > 86400)
				return cli_fail(EXIT_USAGE, "--io-timeout %s: 5 s .. 1 d", optarg);
			s.io_timeout_ms = (unsigned)(t * 1000);
			break;
		}
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
	if (optind != argc) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	if ((rc = cli_identity_load(cli_home(homearg), true, &pp, &s.id)) != 0)
		return cli_exit_for(rc);
	if ((kx = ruf_keystore_find(s.id.ks, RUF_KEY_KX, RUF_KEYNAME_KX, 0)) == NULL) {
		cli_identity_free(&s.id);
		return cli_fail(1, "the keystore holds no kx key");
	}
	s.kx_sk = kx->sk;
	s.progress = !quiet && isatty(STDERR_FILENO);
	if ((rc = outbox_dir(s.id.home, s.dir, sizeof(s.dir))) != 0) {
		cli_identity_free(&s.id);
		return cli_fail(1, "%s/outbox: %s", s.id.home, ruf_strerror(rc));
	}
	start = mono();
	for (;;) {
		size_t remaining;
		uint32_t wait_s;
		enum pass_result pr = one_pass(&s, &remaining, &wait_s, err, sizeof(err));
		double sleep_s, left;

		if (pr == PASS_FATAL) {
			rc = cli_fail(1, "%s", err);
			break;
		}
		if (pr == PASS_DONE && remaining == 0) {
			backoff = 1;
			if (!watch) {
				rc = 0;
				break;
			}
			sleep(WATCH_IDLE_S);
			continue;
		}
		if (pr == PASS_DONE) /* all tried, some failed for good */
			backoff = 1;
		/* Exponential back-off with jitter in [0.5, 1.5) of the step. */
		sleep_s =
		    wait_s ? (double)wait_s : backoff * (0.5 + randombytes_uniform(1000) / 1000.0);
		backoff = backoff * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S : backoff * 2;
		left = (double)deadline_s - (mono() - start);
		if (!watch && left <= 0) {
			rc = cli_fail(1, "%zu report%s not delivered: %s", remaining,
			              remaining == 1 ? "" : "s", err);
			break;
		}
		if (!watch && sleep_s > left)
			sleep_s = left;
		fprintf(stderr, "ruf: %s; retrying in %.1f s\n", err, sleep_s);
		usleep((useconds_t)(sleep_s * 1e6));
	}
	cli_identity_free(&s.id);
	return rc;
}
