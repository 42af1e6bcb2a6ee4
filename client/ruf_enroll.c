/*
 * ruf enroll: install an identity (certificate, keystore) and the HQ
 * directory into the home, pinning the HQ root. Everything is checked
 * together before anything is installed.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "cli.h"
#include "util.h"

static const char usage[] =
    "usage: ruf enroll --from DIR --directory FILE [options]\n"
    "  --from DIR             what HQ issued: DIR/cert, DIR/keystore, DIR/root.cert\n"
    "  --directory FILE       the current signed HQ directory\n"
    "  --expect-root HEX      refuse unless the root key id is HEX (confirm it with HQ\n"
    "                         out of band; printed by this command)\n"
    "  --home DIR             where to install (default $RUF_HOME or ~/.ruf)\n"
    "  --passphrase-file F    the keystore's passphrase (else $RUF_PASSPHRASE, tty)\n";

static int
install(const char *from, const char *name, const char *home, const char *to, size_t max)
{
	char src[PATH_MAX], dst[PATH_MAX];

	if (from != NULL)
		cli_path(src, sizeof(src), "%s/%s", from, name);
	else
		cli_path(src, sizeof(src), "%s", name);
	cli_path(dst, sizeof(dst), "%s/%s", home, to);
	return cli_copy_file(src, dst, max, 0600);
}

int
ruf_enroll_main(int argc, char *argv[])
{
	static const struct option opts[] = {
	    {"from", required_argument, NULL, 'f'},
	    {"directory", required_argument, NULL, 'D'},
	    {"expect-root", required_argument, NULL, 'e'},
	    {"home", required_argument, NULL, 'H'},
	    {"passphrase-file", required_argument, NULL, 'p'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *from = NULL, *dirfile = NULL, *expect = NULL, *homearg = NULL, *home;
	struct cli_pass pp = {0};
	struct cli_identity id;
	char path[PATH_MAX], kid[2 * RUF_KEY_ID_BYTES + 1], stage[PATH_MAX];
	uint8_t rk[RUF_KEY_ID_BYTES];
	int c, rc;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			from = optarg;
			break;
		case 'D':
			dirfile = optarg;
			break;
		case 'e':
			expect = optarg;
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
	if (optind != argc || from == NULL || dirfile == NULL) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	home = cli_home(homearg);
	cli_path(path, sizeof(path), "%s/cert", home);
	if (access(path, F_OK) == 0)
		return cli_fail(1, "%s is already enrolled (remove it first to re-enrol)", home);

	/* Stage everything, check it together as a later command would, then commit. */
	cli_path(stage, sizeof(stage), "%s.enrol.%ld", home, (long)getpid());
	if ((rc = ruf_mkdirs(stage, 0700)) != 0)
		return cli_fail(1, "%s: %s", stage, ruf_strerror(rc));
	if (rmdir(stage) == -1 || mkdir(stage, 0700) == -1)
		return cli_fail(1, "%s: %s", stage, strerror(errno));
	if ((rc = install(from, "root.cert", stage, "root.cert", RUF_CERT_MAX)) != 0 ||
	    (rc = install(from, "cert", stage, "cert", RUF_CERT_MAX)) != 0 ||
	    (rc = install(from, "keystore", stage, "keystore", 1u << 20)) != 0 ||
	    (rc = install(NULL, dirfile, stage, "directory", RUF_DIRECTORY_MAX)) != 0)
		goto fail;
	cli_path(path, sizeof(path), "%s/sequence", stage);
	if ((rc = cli_write_file(path, "1\n", 2, 0600, true)) != 0)
		goto fail;
	if ((rc = cli_identity_load(stage, true, &pp, &id)) != 0)
		goto fail;
	ruf_key_id(id.root->sign_pk, rk);
	ruf_hex(rk, sizeof(rk), kid);
	if (expect != NULL && strcmp(expect, kid) != 0) {
		cli_fail(EXIT_VERIFY, "the HQ root's key id is %s, not %s: refusing to pin it", kid,
		         expect);
		rc = RUF_E_CERT_ISSUER;
		cli_identity_free(&id);
		goto fail;
	}
	if (id.cert->role != RUF_ROLE_DEVICE && id.cert->role != RUF_ROLE_DESK) {
		cli_fail(EXIT_VERIFY, "a %s certificate cannot be enrolled in ruf",
		         ruf_role_name(id.cert->role));
		rc = RUF_E_CERT_ROLE;
		cli_identity_free(&id);
		goto fail;
	}
	for (size_t i = 0; i < id.cert->n_queues; i++) {
		if (ruf_keystore_find(id.ks, RUF_KEY_QUEUE, id.cert->queues[i], 0) == NULL)
			fprintf(stderr, "ruf: warning: no key for queue %s in the keystore\n",
			        id.cert->queues[i]);
	}
	printf("enrolled %s %s (serial %" PRIu64 ") in %s\n", ruf_role_name(id.cert->role),
	       id.cert->subject, id.cert->serial, home);
	printf("pinned HQ root key id %s (confirm it with HQ)\n", kid);
	printf("directory version %" PRIu64 "\n", id.dir->version);
	cli_identity_free(&id);
	if (rename(stage, home) == -1) {
		rc = cli_fail(1, "%s: %s", home, strerror(errno));
		goto fail;
	}
	ruf_fsync_dir_of(home);
	return 0;
fail:
	for (const char *const *n = (const char *const[]){"root.cert", "cert", "keystore",
	                                                  "directory", "sequence", NULL};
	     *n; n++) {
		cli_path(path, sizeof(path), "%s/%s", stage, *n);
		unlink(path);
	}
	rmdir(stage);
	return rc == EXIT_USAGE || rc == 1 || rc == EXIT_VERIFY ? rc : cli_exit_for(rc);
}
