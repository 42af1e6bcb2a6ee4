/*
 * rufctl inspect FILE: the clear parts of an envelope, certificate, directory
 * or keystore. It never decrypts anything; with the HQ root (--root, or the
 * administration directory's root.cert) it also says whether signatures verify.
 */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ca.h"
#include "envelope.h"
#include "util.h"

static const char usage[] = "usage: rufctl inspect FILE [--root ROOT.cert] [--json]\n";

static void
print_cert(const ruf_cert *c, const ruf_cert *root, bool json)
{
	char nb[21], na[21], kid[2 * RUF_KEY_ID_BYTES + 1], spk[65], kpk[65];
	int vrc = root ? ruf_cert_verify(c, root, ruf_now()) : 1;

	ruf_time_fmt(c->not_before, nb);
	ruf_time_fmt(c->not_after, na);
	ruf_hex(c->issuer_key_id, RUF_KEY_ID_BYTES, kid);
	ruf_hex(c->sign_pk, 32, spk);
	ruf_hex(c->kx_pk, 32, kpk);
	if (json) {
		printf("{\"type\": \"certificate\", \"role\": \"%s\", \"serial\": %" PRIu64
		       ", \"subject\": ",
		       ruf_role_name(c->role), c->serial);
		cli_json_str(stdout, c->subject);
		printf(", \"country\": ");
		cli_json_str(stdout, c->country ? c->country : "");
		printf(
		    ", \"not_before\": \"%s\", \"not_after\": \"%s\", \"issuer_key_id\": \"%s\", "
		    "\"sign_pk\": \"%s\", \"kx_pk\": \"%s\", \"situations\": [",
		    nb, na, kid, spk, kpk);
		for (size_t i = 0; i < c->n_situations; i++) {
			printf(i ? ", " : "");
			cli_json_str(stdout, c->situations[i]);
		}
		printf("], \"queues\": [");
		for (size_t i = 0; i < c->n_queues; i++) {
			printf(i ? ", " : "");
			cli_json_str(stdout, c->queues[i]);
		}
		printf("], \"verified\": %s}\n", vrc == 1 ? "null" : (vrc == 0 ? "true" : "false"));
		return;
	}
	printf("certificate\n  role        %s\n  serial      %" PRIu64 "\n  subject     %s\n",
	       ruf_role_name(c->role), c->serial, c->subject);
	if (c->country && *c->country)
		printf("  country     %s\n", c->country);
	printf("  valid       %s .. %s\n  issuer id   %s\n  sign key    %s\n  x25519 key  %s\n", nb,
	       na, kid, spk, kpk);
	for (size_t i = 0; i < c->n_situations; i++)
		printf("  situation   %s\n", c->situations[i]);
	for (size_t i = 0; i < c->n_queues; i++)
		printf("  queue       %s\n", c->queues[i]);
	if (vrc == 1)
		printf("  verified    not checked (no root given)\n");
	else
		printf("  verified    %s\n",
		       vrc == 0 ? "yes, under the given root" : ruf_strerror(vrc));
}

static void
print_directory(const ruf_directory *d, bool json)
{
	char ia[21], ea[21], hex[65];
	char *desc = NULL;

	ruf_time_fmt(d->issued_at, ia);
	ruf_time_fmt(d->expires_at, ea);
	ruf_hex(d->hq.noise_pk, 32, hex);
	if (json) {
		printf("{\"type\": \"directory\", \"version\": %" PRIu64 ", \"issued_at\": \"%s\", "
		       "\"expires_at\": \"%s\", \"signer_serial\": %" PRIu64
		       ", \"hq_noise_pk\": \"%s\", "
		       "\"queues\": [",
		       d->version, ia, ea, d->signer->serial, hex);
		for (size_t i = 0; i < d->n_queues; i++) {
			ruf_hex(d->queues[i].pk, 32, hex);
			printf("%s{\"name\": \"%s\", \"epoch\": %" PRIu32 ", \"key\": \"%s\"}",
			       i ? ", " : "", d->queues[i].name, d->queues[i].epoch, hex);
		}
		printf("], \"revoked\": [");
		for (size_t i = 0; i < d->n_revoked; i++) {
			ruf_time_fmt(d->revoked[i].revoked_at, ia);
			printf("%s{\"serial\": %" PRIu64 ", \"revoked_at\": \"%s\", \"reason\": ",
			       i ? ", " : "", d->revoked[i].serial, ia);
			cli_json_str(stdout, d->revoked[i].reason);
			putchar('}');
		}
		printf("], \"addresses\": [");
		for (size_t i = 0; i < d->hq.n_addresses; i++) {
			printf(i ? ", " : "");
			cli_json_str(stdout, d->hq.addresses[i]);
		}
		printf("], \"policy_rules\": %zu, \"verified\": true}\n",
		       ruf_policy_rule_count(d->policy));
		return;
	}
	printf("directory (signature verified under the given root)\n");
	printf("  version     %" PRIu64 "\n  issued      %s\n  expires     %s\n", d->version, ia,
	       ea);
	printf("  signer      %s (serial %" PRIu64 ")\n", d->signer->subject, d->signer->serial);
	printf("  hq noise    %s\n", hex);
	if (d->hq.has_next) {
		ruf_hex(d->hq.next_noise_pk, 32, hex);
		printf("  hq next     %s\n", hex);
	}
	for (size_t i = 0; i < d->hq.n_addresses; i++)
		printf("  hq address  %s\n", d->hq.addresses[i]);
	for (size_t i = 0; i < d->n_queues; i++) {
		ruf_hex(d->queues[i].pk, 32, hex);
		printf("  queue       %-22s epoch %-3" PRIu32 " %s\n", d->queues[i].name,
		       d->queues[i].epoch, hex);
	}
	for (size_t i = 0; i < d->n_revoked; i++) {
		ruf_time_fmt(d->revoked[i].revoked_at, ia);
		printf("  revoked     %-7" PRIu64 " from %s%s%s\n", d->revoked[i].serial, ia,
		       d->revoked[i].reason[0] ? "  " : "", d->revoked[i].reason);
	}
	if (ruf_policy_describe(d->policy, &desc) == 0) {
		printf("  policy:\n%s", desc);
		free(desc);
	}
}

static void
print_envelope(const struct ruf_env_info *e, int vrc, bool json)
{
	char id[2 * RUF_MSGID_BYTES + 1], created[21], hash[65];

	ruf_hex(e->hdr.message_id, RUF_MSGID_BYTES, id);
	ruf_hex(e->hash, 32, hash);
	ruf_time_fmt(e->hdr.created, created);
	if (json) {
		printf(
		    "{\"type\": \"envelope\", \"message_id\": \"%s\", \"created\": \"%s\", "
		    "\"sequence\": %" PRIu64 ", \"device_serial\": %" PRIu64 ", \"kind\": \"%s\", "
		    "\"situation\": ",
		    id, created, e->hdr.sequence, e->hdr.device_serial, ruf_kind_name(e->hdr.kind));
		cli_json_str(stdout, e->hdr.situation);
		printf(", \"country\": ");
		cli_json_str(stdout, e->hdr.country);
		printf(", \"region\": ");
		cli_json_str(stdout, e->hdr.region);
		printf(", \"risk\": \"%s\", \"flags\": [", ruf_risk_name(e->hdr.risk));
		cli_flags_json(stdout, e->hdr.flags);
		printf("], \"size_class\": %" PRIu64 ", \"directory_version\": %" PRIu64
		       ", \"bytes\": %" PRIu64 ", \"hash\": \"%s\", \"sender\": ",
		       e->hdr.size_class, e->hdr.directory_version, e->total_len, hash);
		cli_json_str(stdout, e->sender ? e->sender->subject : "");
		printf(", \"recipients\": [");
		for (size_t i = 0; i < e->n_recipients; i++)
			printf("%s{\"queue\": \"%s\", \"epoch\": %" PRIu32 "}", i ? ", " : "",
			       e->recipients[i].queue, e->recipients[i].epoch);
		printf("], \"verified\": %s, \"verify_error\": \"%s\"}\n",
		       vrc == 1 ? "null" : (vrc == 0 ? "true" : "false"),
		       vrc == 1 || vrc == 0 ? "" : ruf_errname(vrc));
		return;
	}
	printf("envelope (contents encrypted; clear header only)\n");
	printf("  message id  %s\n  created     %s\n  sequence    %" PRIu64 "\n", id, created,
	       e->hdr.sequence);
	printf("  sender      %s (serial %" PRIu64 ")\n", e->sender ? e->sender->subject : "?",
	       e->hdr.device_serial);
	printf("  kind        %s\n  situation   %s\n  country     %s\n  region      %s\n",
	       ruf_kind_name(e->hdr.kind), e->hdr.situation, e->hdr.country,
	       e->hdr.region[0] ? e->hdr.region : "-");
	printf("  risk        %s\n  flags      ", ruf_risk_name(e->hdr.risk));
	cli_flags_text(stdout, e->hdr.flags);
	printf("\n  size class  %" PRIu64 " bytes\n  total       %" PRIu64 " bytes\n",
	       e->hdr.size_class, e->total_len);
	printf("  hash        %s\n  directory   version %" PRIu64 "\n", hash,
	       e->hdr.directory_version);
	for (size_t i = 0; i < e->n_recipients; i++)
		printf("  recipient   %s (epoch %" PRIu32 ")\n", e->recipients[i].queue,
		       e->recipients[i].epoch);
	if (vrc == 1)
		printf("  verified    not checked (no root given)\n");
	else
		printf("  verified    %s\n",
		       vrc == 0 ? "yes: sender certificate and signature" : ruf_strerror(vrc));
}

int
rufctl_inspect_main(int argc, char *argv[])
{
	static const struct option opts[] = {
	    {"root", required_argument, NULL, 'r'},
	    {"dir", required_argument, NULL, 'd'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *root_path = NULL, *dirarg = NULL, *file;
	char path[PATH_MAX];
	bool json = false;
	ruf_cert *root = NULL, *cert = NULL;
	ruf_directory *d = NULL;
	uint8_t magic[8], *buf = NULL;
	size_t len;
	int c, rc, fd = -1;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			root_path = optarg;
			break;
		case 'd':
			dirarg = optarg;
			break;
		case 'j':
			json = true;
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
	if (root_path == NULL) {
		cli_path(path, sizeof(path), "%s/root.cert", ca_dir(dirarg));
		if (access(path, R_OK) == 0)
			root_path = path;
	}
	if (root_path != NULL && (rc = ruf_cert_load(root_path, &root)) != 0)
		return cli_fail(1, "%s: %s", root_path, ruf_strerror(rc));

	if ((fd = open(file, O_RDONLY | O_CLOEXEC)) == -1) {
		rc = cli_fail(1, "%s: cannot open", file);
		goto out;
	}
	if (ruf_pread_all(fd, magic, sizeof(magic), 0) == 0 &&
	    memcmp(magic, "RUFENV\r\n", 8) == 0) {
		struct ruf_env_info *info = NULL;
		int vrc = 1;
		if ((rc = ruf_envelope_inspect(fd, &info)) != 0) {
			rc = cli_fail(EXIT_VERIFY, "%s: %s", file, ruf_strerror(rc));
			goto out;
		}
		if (root != NULL) {
			char dpath[PATH_MAX];
			cli_path(dpath, sizeof(dpath), "%s/directory", ca_dir(dirarg));
			if (ruf_directory_load(dpath, root, ruf_now(), &d) != 0)
				d = NULL;
			vrc = ruf_envelope_verify(fd, root, d, ruf_now(), NULL);
		}
		print_envelope(info, vrc, json);
		ruf_env_info_free(info);
		rc = 0;
		goto out;
	}
	if (ruf_pread_all(fd, magic, sizeof(magic), 0) == 0 && memcmp(magic, "RUFKEYS\n", 8) == 0) {
		if ((rc = ruf_file_read(file, 1u << 20, &buf, &len)) == 0) {
			bool prot = ruf_keystore_is_protected(buf, len);
			if (json)
				printf("{\"type\": \"keystore\", \"protected\": %s}\n",
				       prot ? "true" : "false");
			else
				printf("keystore (%s; contents not shown)\n",
				       prot ? "passphrase-protected" : "UNPROTECTED");
		}
		goto out;
	}
	if ((rc = ruf_file_read(file, RUF_DIRECTORY_MAX, &buf, &len)) != 0) {
		rc = cli_fail(1, "%s: %s", file, ruf_strerror(rc));
		goto out;
	}
	if (ruf_cert_parse(buf, len, &cert) == 0) {
		print_cert(cert, root, json);
		rc = 0;
		goto out;
	}
	if (root == NULL) {
		rc = cli_fail(1,
		              "%s: not an envelope, keystore or certificate; to read a directory "
		              "give the HQ root with --root",
		              file);
		goto out;
	}
	if ((rc = ruf_directory_load_mem(buf, len, root, ruf_now(), &d)) == 0) {
		print_directory(d, json);
		goto out;
	}
	rc = cli_fail(EXIT_VERIFY,
	              "%s: not an envelope, keystore, certificate or valid directory (%s)", file,
	              ruf_strerror(rc));
out:
	if (fd != -1)
		close(fd);
	free(buf);
	ruf_cert_free(cert);
	ruf_cert_free(root);
	ruf_directory_free(d);
	return rc;
}
