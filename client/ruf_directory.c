/*
 * ruf directory update FILE | show: install a newer signed directory (only
 * one that verifies under the pinned root and is strictly newer than the one
 * held), or show the one held.
 */
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util.h"

static const char usage[] = "usage: ruf directory update FILE [--home DIR]\n"
                            "       ruf directory show [--home DIR] [--json]\n";

static int
parse_home(int argc, char *argv[], const char **home, bool *json, const char **file)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--home") == 0 && i + 1 < argc)
			*home = argv[++i];
		else if (strcmp(argv[i], "--json") == 0 && json != NULL)
			*json = true;
		else if (argv[i][0] != '-' && file != NULL && *file == NULL)
			*file = argv[i];
		else
			return -1;
	}
	return 0;
}

static int
dir_update(int argc, char *argv[])
{
	const char *homearg = NULL, *file = NULL;
	struct cli_identity id;
	ruf_directory *cand = NULL;
	char path[PATH_MAX];
	int rc;

	if (parse_home(argc, argv, &homearg, NULL, &file) != 0 || file == NULL) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	if ((rc = cli_identity_load(cli_home(homearg), false, NULL, &id)) != 0)
		return cli_exit_for(rc);
	if ((rc = ruf_directory_load(file, id.root, ruf_now(), &cand)) != 0) {
		cli_fail(0, "%s: %s (%s)", file, ruf_strerror(rc), ruf_errname(rc));
		goto out;
	}
	if ((rc = ruf_directory_accept(id.dir, cand)) != 0) {
		cli_fail(0,
		         "%s: version %" PRIu64 " is not newer than the directory held "
		         "(version %" PRIu64 "): refused (%s)",
		         file, cand->version, id.dir->version, ruf_errname(rc));
		goto out;
	}
	cli_path(path, sizeof(path), "%s/directory", id.home);
	if ((rc = ruf_file_write_atomic(path, cand->raw, cand->rawlen, 0600, false)) != 0) {
		cli_fail(0, "%s: %s", path, ruf_strerror(rc));
		goto out;
	}
	printf("directory updated from version %" PRIu64 " to %" PRIu64 "\n", id.dir->version,
	       cand->version);
	if (ruf_directory_is_revoked(cand, id.cert->serial))
		fprintf(stderr,
		        "ruf: warning: this identity (serial %" PRIu64 ") is revoked by "
		        "the new directory\n",
		        id.cert->serial);
out:
	ruf_directory_free(cand);
	cli_identity_free(&id);
	return rc == 0 ? 0 : cli_exit_for(rc);
}

static int
dir_show(int argc, char *argv[])
{
	const char *homearg = NULL;
	struct cli_identity id;
	char ea[21];
	bool json = false;
	int rc;

	if (parse_home(argc, argv, &homearg, &json, NULL) != 0) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	if ((rc = cli_identity_load(cli_home(homearg), false, NULL, &id)) != 0)
		return cli_exit_for(rc);
	ruf_time_fmt(id.dir->expires_at, ea);
	if (json) {
		printf("{\"version\": %" PRIu64 ", \"expires_at\": \"%s\", \"queues\": [",
		       id.dir->version, ea);
		for (size_t i = 0; i < id.dir->n_queues; i++)
			printf("%s\"%s\"", i ? ", " : "", id.dir->queues[i].name);
		printf("]}\n");
	} else {
		printf("directory version %" PRIu64 ", expires %s, %zu queues, %zu revoked\n",
		       id.dir->version, ea, id.dir->n_queues, id.dir->n_revoked);
	}
	cli_identity_free(&id);
	return 0;
}

int
ruf_directory_main(int argc, char *argv[])
{
	if (argc >= 2 && strcmp(argv[1], "update") == 0)
		return dir_update(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "show") == 0)
		return dir_show(argc - 1, argv + 1);
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		fputs(usage, stdout);
		return 0;
	}
	fputs(usage, stderr);
	return EXIT_USAGE;
}
