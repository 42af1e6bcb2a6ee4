/*
 * rufctl directory publish: compile the routing policy, gather queue keys,
 * revocations and the server's Noise key, and sign a new directory version
 * with the directory signer key.
 */
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca.h"
#include "queue_pub.h"
#include "util.h"

#define MAX_ADDRS 16

static const char usage[] =
    "usage: rufctl directory publish --policy FILE [options]\n"
    "  --policy FILE            the routing policy (text; see docs/PROTOCOL.md)\n"
    "  --expires DUR            lifetime of this directory (default 30d)\n"
    "  --hq-address HOST:PORT   where clients reach rufd (repeat; at most 16)\n"
    "  --out FILE               also write the directory here (always kept as DIR/directory)\n"
    "  --dir DIR                the HQ administration directory\n"
    "  --passphrase-file F      passphrase of the directory signer key\n";

struct queue_check {
	const char *policy_path;
	const struct queue_pub *qs;
	size_t n;
};

static int
check_queue(const char *queue, unsigned line, void *ctx)
{
	const struct queue_check *qc = ctx;

	for (size_t i = 0; i < qc->n; i++)
		if (strcmp(qc->qs[i].name, queue) == 0)
			return 0;
	if (line == 0)
		cli_fail(1,
		         "%s: queue %s (for unmatched reports) has no key: rufctl queue create %s",
		         qc->policy_path, queue, queue);
	else
		cli_fail(1, "%s: line %u: queue %s has no key: rufctl queue create %s",
		         qc->policy_path, line, queue, queue);
	return RUF_E_DIR_NO_QUEUE;
}

static int
publish(int argc, char *argv[])
{
	static const struct option opts[] = {
	    {"policy", required_argument, NULL, 'P'},
	    {"expires", required_argument, NULL, 'e'},
	    {"hq-address", required_argument, NULL, 'a'},
	    {"out", required_argument, NULL, 'o'},
	    {"dir", required_argument, NULL, 'd'},
	    {"passphrase-file", required_argument, NULL, 'p'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *policy_path = NULL, *out = NULL, *dirarg = NULL, *dir;
	char *addrs[MAX_ADDRS], path[PATH_MAX];
	size_t n_addrs = 0, n_q = 0, n_rev = 0, len, certlen;
	uint64_t expires = 30 * 86400ull, now = ruf_now();
	struct ruf_dir_revocation *revoked = NULL;
	struct cli_pass pp = {0};
	struct queue_pub *qs = NULL;
	struct ruf_dir_queue *dq = NULL;
	struct ca_state st;
	ruf_policy *policy = NULL;
	ruf_keystore *ks = NULL;
	ruf_cert *server = NULL, *root = NULL;
	ruf_directory *check = NULL;
	uint8_t *text = NULL, *signer_cert = NULL, *dirbuf = NULL;
	ruf_diag diag = {{0}};
	int c, rc;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'P':
			policy_path = optarg;
			break;
		case 'e':
			if (ruf_parse_duration(optarg, &expires) != 0 || expires == 0)
				return cli_fail(EXIT_USAGE, "bad duration '%s'", optarg);
			break;
		case 'a':
			if (n_addrs == MAX_ADDRS)
				return cli_fail(EXIT_USAGE, "at most %d --hq-address", MAX_ADDRS);
			addrs[n_addrs++] = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case 'd':
			dirarg = optarg;
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
	if (optind != argc || policy_path == NULL) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	dir = ca_dir(dirarg);
	if ((rc = ca_state_load(dir, &st)) != 0)
		return 1;

	/* The policy first: an operator fixing it wants that error before a passphrase. */
	if ((rc = ruf_file_read(policy_path, 1u << 20, &text, &len)) != 0) {
		cli_fail(1, "%s: %s", policy_path, ruf_strerror(rc));
		goto out;
	}
	if ((rc = ruf_policy_compile((char *)text, len, &diag, &policy)) != 0) {
		cli_fail(1, "%s: %s", policy_path, diag.msg[0] ? diag.msg : ruf_strerror(rc));
		goto out;
	}
	if ((rc = queue_pub_load_all(dir, &qs, &n_q)) != 0)
		goto out;
	{
		struct queue_check qc = {policy_path, qs, n_q};
		if ((rc = ruf_policy_queues(policy, check_queue, &qc)) != 0)
			goto out;
	}
	if ((dq = calloc(n_q ? n_q : 1, sizeof(*dq))) == NULL) {
		rc = RUF_E_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < n_q; i++) {
		dq[i].name = qs[i].name;
		dq[i].epoch = qs[i].epoch;
		memcpy(dq[i].pk, qs[i].pk, 32);
	}
	if ((rc = ca_revoked(dir, &revoked, &n_rev)) != 0)
		goto out;
	cli_path(path, sizeof(path), "%s/server.cert", dir);
	if ((rc = ruf_cert_load(path, &server)) != 0) {
		cli_fail(1, "%s: %s", path, ruf_strerror(rc));
		goto out;
	}
	cli_path(path, sizeof(path), "%s/dirsigner.cert", dir);
	if ((rc = ruf_file_read(path, RUF_CERT_MAX, &signer_cert, &certlen)) != 0) {
		cli_fail(1, "%s: %s", path, ruf_strerror(rc));
		goto out;
	}
	cli_path(path, sizeof(path), "%s/dirsigner.key", dir);
	if ((rc = cli_keystore_open(path, &pp, &ks)) != 0)
		goto out;
	{
		const struct ruf_key *sk = ruf_keystore_find(ks, RUF_KEY_SIGN, RUF_KEYNAME_SIGN, 0);
		struct ruf_dir_hq hq = {.addresses = addrs, .n_addresses = n_addrs};
		struct ruf_directory_template t = {
		    .version = st.directory_version + 1,
		    .issued_at = now,
		    .expires_at = now + expires,
		    .queues = dq,
		    .n_queues = n_q,
		    .revoked = revoked,
		    .n_revoked = n_rev,
		    .hq = &hq,
		    .policy = policy,
		};
		memcpy(hq.noise_pk, server->kx_pk, 32);
		if (sk == NULL) {
			rc = RUF_E_NO_KEY;
			cli_fail(1, "%s: no signing key", path);
			goto out;
		}
		if ((rc = ruf_directory_sign(&t, signer_cert, certlen, sk->sk, &dirbuf, &len)) !=
		    0) {
			cli_fail(1, "signing the directory: %s", ruf_strerror(rc));
			goto out;
		}
	}
	/* Check what we made exactly as a client will. */
	cli_path(path, sizeof(path), "%s/root.cert", dir);
	if ((rc = ruf_cert_load(path, &root)) != 0 ||
	    (rc = ruf_directory_load_mem(dirbuf, len, root, now, &check)) != 0) {
		cli_fail(1, "the new directory does not verify: %s", ruf_strerror(rc));
		goto out;
	}
	cli_path(path, sizeof(path), "%s/directory", dir);
	if ((rc = cli_write_file(path, dirbuf, len, 0644, false)) != 0)
		goto out;
	if (out != NULL && (rc = cli_write_file(out, dirbuf, len, 0644, false)) != 0)
		goto out;
	st.directory_version++;
	if ((rc = ca_state_save(dir, &st)) != 0)
		goto out;
	printf("published directory version %" PRIu64 ": %zu queues, %zu policy rules, "
	       "%zu revoked, expires in %" PRIu64 " days\n",
	       st.directory_version, n_q, ruf_policy_rule_count(policy), n_rev, expires / 86400);
out:
	ruf_directory_free(check);
	ruf_cert_free(root);
	ruf_cert_free(server);
	ruf_keystore_free(ks);
	ruf_policy_free(policy);
	free(dirbuf);
	free(signer_cert);
	ca_revoked_free(revoked, n_rev);
	free(dq);
	free(qs);
	free(text);
	return rc == 0 ? 0 : cli_exit_for(rc);
}

int
rufctl_directory_main(int argc, char *argv[])
{
	if (argc >= 2 && strcmp(argv[1], "publish") == 0)
		return publish(argc - 1, argv + 1);
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		fputs(usage, stdout);
		return 0;
	}
	fputs(usage, stderr);
	return EXIT_USAGE;
}
