/*
 * rufctl queue create|list: queue key pairs.
 *
 * A queue's X25519 key pair seals reports routed to it. The public half goes
 * into the signed directory; the private half (queues/NAME.key) is given to
 * the desks that read the queue (rufctl cert issue --role desk --queue NAME).
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ca.h"
#include "queue_pub.h"
#include "util.h"

static const char usage[] =
    "usage: rufctl queue create NAME [options]\n"
    "       rufctl queue list [--json]\n"
    "  --epoch N                key epoch (default 1)\n"
    "  --kdf LEVEL              Argon2id limits for the queue keystore\n"
    "  --new-passphrase-file F  its passphrase (else $RUF_NEW_PASSPHRASE, tty)\n"
    "  --no-passphrase          leave it unprotected\n"
    "  --dir DIR                the HQ administration directory\n";

static int
queue_create(int argc, char *argv[])
{
	static const struct option opts[] = {
	    {"epoch", required_argument, NULL, 'e'},
	    {"kdf", required_argument, NULL, 'k'},
	    {"new-passphrase-file", required_argument, NULL, 'N'},
	    {"no-passphrase", no_argument, NULL, 'n'},
	    {"dir", required_argument, NULL, 'd'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct cli_pass pp = {0};
	struct queue_pub q = {.epoch = 1};
	const char *dirarg = NULL, *dir, *name;
	char path[PATH_MAX], text[256];
	ruf_keystore *ks = NULL;
	unsigned long v;
	char *end;
	int c, rc;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'e':
			v = strtoul(optarg, &end, 10);
			if (*end != '\0' || v == 0 || v > UINT32_MAX)
				return cli_fail(EXIT_USAGE, "--epoch: a number from 1");
			q.epoch = (uint32_t)v;
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
		case 'd':
			dirarg = optarg;
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
	name = argv[optind];
	if (!ruf_is_queue_name(name))
		return cli_fail(EXIT_USAGE, "'%s' is not a queue name (e.g. sag, itf.darfur)",
		                name);
	dir = ca_dir(dirarg);
	cli_path(path, sizeof(path), "%s/queues/%s.pub", dir, name);
	if (access(path, F_OK) == 0)
		return cli_fail(1, "queue %s already exists", name);
	snprintf(q.name, sizeof(q.name), "%s", name);
	if ((rc = ruf_keystore_new(&ks)) != 0 ||
	    (rc = ruf_keystore_generate(ks, RUF_KEY_QUEUE, name, q.epoch, q.pk)) != 0) {
		cli_fail(1, "generating the key of %s: %s", name, ruf_strerror(rc));
		goto out;
	}
	cli_path(path, sizeof(path), "%s/queues/%s.key", dir, name);
	if ((rc = cli_keystore_create(path, ks, &pp)) != 0)
		goto out;
	queue_pub_format(&q, text, sizeof(text));
	cli_path(path, sizeof(path), "%s/queues/%s.pub", dir, name);
	if ((rc = cli_write_file(path, text, strlen(text), 0644, true)) != 0)
		goto out;
	printf("created queue %s (epoch %" PRIu32 ")\n", name, q.epoch);
out:
	ruf_keystore_free(ks);
	return rc == 0 ? 0 : cli_exit_for(rc);
}

static int
queue_list(int argc, char *argv[])
{
	bool json = argc > 1 && strcmp(argv[1], "--json") == 0;
	const char *dirarg = NULL;
	struct queue_pub *qs;
	size_t n;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
			dirarg = argv[++i];
		else if (strcmp(argv[i], "--json") == 0)
			json = true;
		else
			return cli_fail(EXIT_USAGE, "unknown option '%s'", argv[i]);
	}
	if ((rc = queue_pub_load_all(ca_dir(dirarg), &qs, &n)) != 0)
		return 1;
	if (json)
		printf("[");
	for (size_t i = 0; i < n; i++) {
		char hex[65];
		ruf_hex(qs[i].pk, 32, hex);
		if (json)
			printf("%s\n {\"name\": \"%s\", \"epoch\": %" PRIu32 ", \"key\": \"%s\"}",
			       i ? "," : "", qs[i].name, qs[i].epoch, hex);
		else
			printf("%-24s epoch %-4" PRIu32 " %s\n", qs[i].name, qs[i].epoch, hex);
	}
	if (json)
		printf("\n]\n");
	free(qs);
	return 0;
}

int
rufctl_queue_main(int argc, char *argv[])
{
	if (argc >= 2 && strcmp(argv[1], "create") == 0)
		return queue_create(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "list") == 0)
		return queue_list(argc - 1, argv + 1);
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		fputs(usage, stdout);
		return 0;
	}
	fputs(usage, stderr);
	return EXIT_USAGE;
}
