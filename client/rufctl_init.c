/*
 * rufctl init DIR: the HQ root, the directory signer and the server identity.
 *
 * Run on the offline administration workstation. The root and directory
 * signer keys never leave it; server.key and server.cert go to the rufd host.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ca.h"
#include "util.h"

static const char usage[] =
    "usage: rufctl init DIR [options]\n"
    "  --root-validity DUR      root certificate lifetime (default 3650d)\n"
    "  --validity DUR           directory signer and server lifetime (default 730d)\n"
    "  --kdf LEVEL              Argon2id limits: interactive, moderate (default), sensitive\n"
    "  --new-passphrase-file F  passphrase for the new keystores (else $RUF_NEW_PASSPHRASE, tty)\n"
    "  --no-passphrase          store the root and signer keys unprotected (not recommended)\n"
    "  --server-no-passphrase   store the server key unprotected (for rufd under systemd)\n";

static int
new_identity(const char *dir, const char *name, const ruf_keystore *root_ks,
             struct ruf_cert_template *t, const struct cli_pass *pp)
{
	char path[PATH_MAX];
	ruf_keystore *ks;
	uint8_t *cert;
	size_t len;
	int rc;

	if ((rc = ca_issue(dir, root_ks, t, &ks, &cert, &len)) != 0)
		return rc;
	cli_path(path, sizeof(path), "%s/%s.cert", dir, name);
	if ((rc = cli_write_file(path, cert, len, 0644, true)) != 0)
		goto out;
	cli_path(path, sizeof(path), "%s/%s.key", dir, name);
	rc = cli_keystore_create(path, ks, pp);
out:
	free(cert);
	ruf_keystore_free(ks);
	return rc;
}

int
rufctl_init_main(int argc, char *argv[])
{
	static const struct option opts[] = {
	    {"root-validity", required_argument, NULL, 'R'},
	    {"validity", required_argument, NULL, 'V'},
	    {"kdf", required_argument, NULL, 'k'},
	    {"new-passphrase-file", required_argument, NULL, 'N'},
	    {"no-passphrase", no_argument, NULL, 'n'},
	    {"server-no-passphrase", no_argument, NULL, 's'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct cli_pass pp = {0}, server_pp;
	uint64_t root_validity = 3650 * 86400ull, validity = 730 * 86400ull, now = ruf_now();
	uint8_t sign_pk[RUF_SIGN_PK_BYTES], kx_pk[RUF_KX_PK_BYTES], *cert = NULL;
	bool server_nopass = false;
	struct ca_state st = {.next_serial = 2, .directory_version = 0};
	ruf_keystore *root_ks = NULL;
	char path[PATH_MAX];
	const char *dir;
	size_t len;
	int c, rc;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'R':
		case 'V':
			if (ruf_parse_duration(optarg, c == 'R' ? &root_validity : &validity) != 0)
				return cli_fail(EXIT_USAGE, "bad duration '%s'", optarg);
			break;
		case 'k':
			pp.kdf = optarg;
			break;
		case 'N':
			pp.new_file = optarg;
			break;
		case 'n':
			pp.none = true;
			break;
		case 's':
			server_nopass = true;
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
	dir = argv[optind];
	if (mkdir(dir, 0700) == -1 && errno != EEXIST)
		return cli_fail(1, "%s: %s", dir, strerror(errno));
	cli_path(path, sizeof(path), "%s/root.cert", dir);
	if (access(path, F_OK) == 0)
		return cli_fail(1, "%s: already initialised (root.cert exists)", dir);
	cli_path(path, sizeof(path), "%s/certs", dir);
	if ((rc = ruf_mkdirs(path, 0700)) != 0)
		return cli_fail(1, "%s: %s", path, ruf_strerror(rc));
	cli_path(path, sizeof(path), "%s/queues", dir);
	if ((rc = ruf_mkdirs(path, 0700)) != 0)
		return cli_fail(1, "%s: %s", path, ruf_strerror(rc));

	/* The root: self-signed, serial 1. */
	if ((rc = ruf_keystore_new(&root_ks)) != 0 ||
	    (rc = ruf_keystore_generate(root_ks, RUF_KEY_SIGN, RUF_KEYNAME_SIGN, 0, sign_pk)) !=
	        0 ||
	    (rc = ruf_keystore_generate(root_ks, RUF_KEY_KX, RUF_KEYNAME_KX, 0, kx_pk)) != 0) {
		cli_fail(1, "generating the root key: %s", ruf_strerror(rc));
		goto out;
	}
	{
		const struct ruf_key *rk = ruf_keystore_find(root_ks, RUF_KEY_SIGN, "sign", 0);
		struct ruf_cert_template t = {
		    .role = RUF_ROLE_ROOT,
		    .serial = 1,
		    .subject = "hq-root",
		    .not_before = now - 3600,
		    .not_after = now + root_validity,
		    .sign_pk = sign_pk,
		    .kx_pk = kx_pk,
		};
		if ((rc = ruf_cert_issue(&t, rk->sk, rk->pk, &cert, &len)) != 0) {
			cli_fail(1, "signing the root certificate: %s", ruf_strerror(rc));
			goto out;
		}
	}
	cli_path(path, sizeof(path), "%s/root.cert", dir);
	if ((rc = cli_write_file(path, cert, len, 0644, true)) != 0)
		goto out;
	cli_path(path, sizeof(path), "%s/certs/1.cert", dir);
	if ((rc = cli_write_file(path, cert, len, 0644, true)) != 0)
		goto out;
	cli_path(path, sizeof(path), "%s/root.key", dir);
	if ((rc = cli_keystore_create(path, root_ks, &pp)) != 0)
		goto out;
	if ((rc = ca_state_save(dir, &st)) != 0)
		goto out;

	{
		struct ruf_cert_template t = {
		    .role = RUF_ROLE_DIRSIGNER,
		    .subject = "hq-directory",
		    .not_before = now - 3600,
		    .not_after = now + validity,
		};
		if ((rc = new_identity(dir, "dirsigner", root_ks, &t, &pp)) != 0)
			goto out;
	}
	{
		struct ruf_cert_template t = {
		    .role = RUF_ROLE_SERVER,
		    .subject = "hq-server",
		    .not_before = now - 3600,
		    .not_after = now + validity,
		};
		server_pp = pp;
		server_pp.none = server_nopass || pp.none;
		if ((rc = new_identity(dir, "server", root_ks, &t, &server_pp)) != 0)
			goto out;
	}
	printf("initialised %s: root (serial 1), directory signer (2), server (3)\n", dir);
	rc = 0;
out:
	free(cert);
	ruf_keystore_free(root_ks);
	return rc == 0 ? 0 : cli_exit_for(rc);
}
