/* rufctl cert issue|revoke|list: device, desk and server certificates. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ca.h"
#include "util.h"

#define MAX_PERMS 256

static const char usage[] =
    "usage: rufctl cert issue --role ROLE --subject NAME --out DIR [options]\n"
    "       rufctl cert revoke SERIAL [--at TIME] [--reason TEXT]\n"
    "       rufctl cert list [--json]\n"
    "issue options:\n"
    "  --role device|desk|server   what the identity is\n"
    "  --subject NAME              its name (lower-case letters, digits, '-')\n"
    "  --country CC                device: the country it reports from (e.g. sd)\n"
    "  --situation S               device: a situation it may report on (repeat; '*' = any)\n"
    "  --queue Q                   desk: a queue it reads (repeat); its key is included\n"
    "  --validity DUR              lifetime (default 365d)\n"
    "  --out DIR                   where to write keystore, cert and root.cert\n"
    "  --kdf LEVEL                 Argon2id limits for the new keystore\n"
    "  --new-passphrase-file F     the new keystore's passphrase (else $RUF_NEW_PASSPHRASE, tty)\n"
    "  --no-passphrase             leave the new keystore unprotected\n"
    "revoke options:\n"
    "  --at TIME                   revoked from TIME (YYYY-MM-DDTHH:MM:SSZ, default now): reports\n"
    "                              rufd accepted from then on are flagged at the desks\n"
    "  --reason TEXT               why (one line, at most 200 bytes; published in the directory)\n"
    "common options:\n"
    "  --dir DIR                   the HQ administration directory (default $RUFCTL_DIR or ./hq)\n"
    "  --passphrase-file F         passphrase of the HQ keys (else $RUF_PASSPHRASE, tty)\n";

/* Adds the private halves of the named queue keys to ks (desks read with them). */
static int
add_queue_keys(const char *dir, const struct cli_pass *pp, ruf_keystore *ks,
               const char *const *queues, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char path[PATH_MAX];
		ruf_keystore *qks;
		size_t added = 0;
		int rc;

		cli_path(path, sizeof(path), "%s/queues/%s.key", dir, queues[i]);
		if (access(path, F_OK) != 0)
			return cli_fail(RUF_E_NOTFOUND,
			                "queue '%s' has no key (rufctl queue create %s)", queues[i],
			                queues[i]),
			       RUF_E_NOTFOUND;
		if ((rc = cli_keystore_open(path, pp, &qks)) != 0)
			return rc;
		for (size_t k = 0; k < ruf_keystore_count(qks); k++) {
			const struct ruf_key *key = ruf_keystore_get(qks, k);
			if (key->type != RUF_KEY_QUEUE)
				continue;
			if ((rc = ruf_keystore_add(ks, key)) != 0) {
				ruf_keystore_free(qks);
				return cli_fail(rc, "%s: %s", path, ruf_strerror(rc)), rc;
			}
			added++;
		}
		ruf_keystore_free(qks);
		if (added == 0)
			return cli_fail(RUF_E_NO_KEY, "%s: holds no queue key", path), RUF_E_NO_KEY;
	}
	return 0;
}

static int
cert_issue(int argc, char *argv[])
{
	static const struct option opts[] = {
	    {"role", required_argument, NULL, 'r'},
	    {"subject", required_argument, NULL, 's'},
	    {"country", required_argument, NULL, 'c'},
	    {"situation", required_argument, NULL, 'S'},
	    {"queue", required_argument, NULL, 'q'},
	    {"validity", required_argument, NULL, 'V'},
	    {"out", required_argument, NULL, 'o'},
	    {"kdf", required_argument, NULL, 'k'},
	    {"new-passphrase-file", required_argument, NULL, 'N'},
	    {"no-passphrase", no_argument, NULL, 'n'},
	    {"dir", required_argument, NULL, 'd'},
	    {"passphrase-file", required_argument, NULL, 'p'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *situations[MAX_PERMS], *queues[MAX_PERMS];
	size_t n_sit = 0, n_q = 0, len;
	const char *out = NULL, *dirarg = NULL, *dir;
	struct cli_pass pp = {0};
	struct ruf_cert_template t = {0};
	uint64_t validity = 365 * 86400ull, now = ruf_now();
	ruf_keystore *root_ks = NULL, *ks = NULL;
	uint8_t *cert = NULL;
	char path[PATH_MAX], from[PATH_MAX];
	int c, rc;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			if ((t.role = ruf_role_parse(optarg)) != RUF_ROLE_DEVICE &&
			    t.role != RUF_ROLE_DESK && t.role != RUF_ROLE_SERVER)
				return cli_fail(EXIT_USAGE,
				                "--role: expected device, desk or server");
			break;
		case 's':
			t.subject = optarg;
			break;
		case 'c':
			t.country = optarg;
			break;
		case 'S':
			if (n_sit == MAX_PERMS)
				return cli_fail(EXIT_USAGE, "too many --situation");
			situations[n_sit++] = optarg;
			break;
		case 'q':
			if (n_q == MAX_PERMS)
				return cli_fail(EXIT_USAGE, "too many --queue");
			queues[n_q++] = optarg;
			break;
		case 'V':
			if (ruf_parse_duration(optarg, &validity) != 0)
				return cli_fail(EXIT_USAGE, "bad duration '%s'", optarg);
			break;
		case 'o':
			out = optarg;
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
	if (optind != argc || t.role == 0 || t.subject == NULL || out == NULL) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	if (!ruf_is_ident(t.subject))
		return cli_fail(EXIT_USAGE,
		                "--subject: '%s' is not a name of lower-case letters, "
		                "digits and '-' (at most 32)",
		                t.subject);
	if (t.country != NULL && !ruf_is_ident(t.country))
		return cli_fail(EXIT_USAGE, "--country: '%s' is not a country code", t.country);
	for (size_t i = 0; i < n_sit; i++)
		if (strcmp(situations[i], "*") != 0 && !ruf_is_ident(situations[i]))
			return cli_fail(EXIT_USAGE, "--situation: '%s' is not a situation name",
			                situations[i]);
	for (size_t i = 0; i < n_q; i++)
		if (!ruf_is_queue_name(queues[i]))
			return cli_fail(EXIT_USAGE, "--queue: '%s' is not a queue name", queues[i]);
	if (t.role == RUF_ROLE_DEVICE && n_sit == 0)
		return cli_fail(EXIT_USAGE, "a device needs at least one --situation");
	if (t.role == RUF_ROLE_DESK && n_q == 0)
		return cli_fail(EXIT_USAGE, "a desk needs at least one --queue");
	if ((t.role != RUF_ROLE_DEVICE && n_sit > 0) || (t.role != RUF_ROLE_DESK && n_q > 0))
		return cli_fail(EXIT_USAGE, "--situation is for devices, --queue for desks");

	dir = ca_dir(dirarg);
	if (mkdir(out, 0700) == -1 && errno != EEXIST)
		return cli_fail(1, "%s: %s", out, strerror(errno));
	cli_path(path, sizeof(path), "%s/cert", out);
	if (access(path, F_OK) == 0)
		return cli_fail(1, "%s: already holds an identity", out);

	/* Every named queue must have a key before a serial is spent on the desk. */
	for (size_t i = 0; i < n_q; i++) {
		cli_path(path, sizeof(path), "%s/queues/%s.key", dir, queues[i]);
		if (access(path, F_OK) != 0)
			return cli_fail(1, "queue '%s' has no key (rufctl queue create %s)",
			                queues[i], queues[i]);
	}
	cli_path(path, sizeof(path), "%s/root.key", dir);
	if ((rc = cli_keystore_open(path, &pp, &root_ks)) != 0)
		goto out;
	t.situations = situations;
	t.n_situations = n_sit;
	t.queues = queues;
	t.n_queues = n_q;
	t.not_before = now - 3600;
	t.not_after = now + validity;
	if ((rc = ca_issue(dir, root_ks, &t, &ks, &cert, &len)) != 0)
		goto out;
	if ((rc = add_queue_keys(dir, &pp, ks, queues, n_q)) != 0)
		goto out;
	cli_path(path, sizeof(path), "%s/cert", out);
	if ((rc = cli_write_file(path, cert, len, 0644, true)) != 0)
		goto out;
	cli_path(from, sizeof(from), "%s/root.cert", dir);
	cli_path(path, sizeof(path), "%s/root.cert", out);
	if ((rc = cli_copy_file(from, path, RUF_CERT_MAX, 0644)) != 0)
		goto out;
	cli_path(path, sizeof(path), "%s/keystore", out);
	if ((rc = cli_keystore_create(path, ks, &pp)) != 0)
		goto out;
	printf("issued %s certificate serial %" PRIu64 " for %s into %s\n", ruf_role_name(t.role),
	       t.serial, t.subject, out);
out:
	free(cert);
	ruf_keystore_free(ks);
	ruf_keystore_free(root_ks);
	return rc == 0 ? 0 : cli_exit_for(rc);
}

static int
cert_revoke(int argc, char *argv[])
{
	static const struct option opts[] = {
	    {"reason", required_argument, NULL, 'r'},
	    {"at", required_argument, NULL, 'a'},
	    {"dir", required_argument, NULL, 'd'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *reason = "", *dirarg = NULL, *dir;
	unsigned long long serial;
	uint64_t at = ruf_now();
	char path[PATH_MAX], *end, *text, when[21];
	const struct ruf_dir_revocation *have = NULL;
	struct ruf_dir_revocation *revoked;
	size_t n_revoked, len = 0;
	uint8_t *old = NULL;
	int c, rc;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			reason = optarg;
			break;
		case 'a':
			if (ruf_time_parse(optarg, &at) != 0 || at == 0)
				return cli_fail(EXIT_USAGE,
				                "--at %s: not a time (YYYY-MM-DDTHH:MM:SSZ)",
				                optarg);
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
	serial = strtoull(argv[optind], &end, 10);
	if (*end != '\0' || serial == 0)
		return cli_fail(EXIT_USAGE, "'%s' is not a serial number", argv[optind]);
	if (serial == 1)
		return cli_fail(EXIT_USAGE, "serial 1 is the HQ root: it cannot be revoked");
	if (strlen(reason) > RUF_DIR_REASON_MAX)
		return cli_fail(EXIT_USAGE, "--reason is longer than %d bytes", RUF_DIR_REASON_MAX);
	for (const char *p = reason; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return cli_fail(EXIT_USAGE, "--reason must be one line of text");
	if (at > ruf_now())
		return cli_fail(EXIT_USAGE, "--at is in the future");
	dir = ca_dir(dirarg);
	cli_path(path, sizeof(path), "%s/certs/%llu.cert", dir, serial);
	if (access(path, F_OK) != 0)
		return cli_fail(1, "no certificate with serial %llu was issued from %s", serial,
		                dir);
	if ((rc = ca_revoked(dir, &revoked, &n_revoked)) != 0)
		return cli_exit_for(rc);
	for (size_t i = 0; i < n_revoked; i++)
		if (revoked[i].serial == serial)
			have = &revoked[i];
	/* Once revoked, only an earlier time is news (the earliest counts). */
	if (have != NULL && have->revoked_at <= at) {
		ruf_time_fmt(have->revoked_at, when);
		printf("serial %llu was already revoked from %s\n", serial, when);
		ca_revoked_free(revoked, n_revoked);
		return 0;
	}
	ca_revoked_free(revoked, n_revoked);
	cli_path(path, sizeof(path), "%s/revoked", dir);
	rc = ruf_file_read(path, 16u << 20, &old, &len);
	if (rc != 0 && rc != RUF_E_NOTFOUND)
		return cli_fail(1, "%s: %s", path, ruf_strerror(rc));
	if ((text = malloc(len + strlen(reason) + 64)) == NULL) {
		free(old);
		return cli_fail(1, "out of memory");
	}
	ruf_time_fmt(at, when);
	len = (size_t)sprintf(text, "%.*s%llu %s%s%s\n", (int)len, old ? (char *)old : "", serial,
	                      when, *reason ? " " : "", reason);
	free(old);
	rc = cli_write_file(path, text, len, 0600, false);
	free(text);
	if (rc != 0)
		return 1;
	printf("revoked serial %llu from %s; publish a new directory to tell clients and rufd\n",
	       serial, when);
	return 0;
}

static int
cmp_serial(const void *a, const void *b)
{
	unsigned long long x = strtoull(*(char *const *)a, NULL, 10);
	unsigned long long y = strtoull(*(char *const *)b, NULL, 10);
	return x < y ? -1 : x > y;
}

static int
cert_list(int argc, char *argv[])
{
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"dir", required_argument, NULL, 'd'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *dirarg = NULL, *dir;
	bool json = false, first = true;
	char path[PATH_MAX], *names[4096];
	size_t n = 0, n_revoked;
	struct ruf_dir_revocation *revoked;
	struct dirent *de;
	DIR *dp;
	int c, rc;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
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
	dir = ca_dir(dirarg);
	cli_path(path, sizeof(path), "%s/certs", dir);
	if ((dp = opendir(path)) == NULL)
		return cli_fail(1, "%s: %s", path, strerror(errno));
	while ((de = readdir(dp)) != NULL && n < sizeof(names) / sizeof(names[0])) {
		size_t l = strlen(de->d_name);
		if (l > 5 && strcmp(de->d_name + l - 5, ".cert") == 0)
			names[n++] = strdup(de->d_name);
	}
	closedir(dp);
	qsort(names, n, sizeof(names[0]), cmp_serial);
	if ((rc = ca_revoked(dir, &revoked, &n_revoked)) != 0)
		goto out;
	if (json)
		printf("[");
	else
		printf("%-7s %-16s %-20s %-8s %-20s %s\n", "SERIAL", "ROLE", "SUBJECT", "COUNTRY",
		       "EXPIRES", "STATUS");
	for (size_t i = 0; i < n; i++) {
		ruf_cert *cert;
		char when[21], since[21] = "";
		bool rev = false;

		cli_path(path, sizeof(path), "%s/certs/%s", dir, names[i]);
		if ((rc = ruf_cert_load(path, &cert)) != 0) {
			cli_fail(1, "%s: %s", path, ruf_strerror(rc));
			continue;
		}
		for (size_t k = 0; k < n_revoked; k++)
			if (revoked[k].serial == cert->serial) {
				rev = true;
				ruf_time_fmt(revoked[k].revoked_at, since);
			}
		ruf_time_fmt(cert->not_after, when);
		if (json) {
			printf("%s\n {\"serial\": %" PRIu64 ", \"role\": ", first ? "" : ",",
			       cert->serial);
			cli_json_str(stdout, ruf_role_name(cert->role));
			printf(", \"subject\": ");
			cli_json_str(stdout, cert->subject);
			printf(", \"country\": ");
			cli_json_str(stdout, cert->country ? cert->country : "");
			printf(", \"not_after\": \"%s\", \"revoked\": %s", when,
			       rev ? "true" : "false");
			if (rev)
				printf(", \"revoked_at\": \"%s\"", since);
			putchar('}');
			first = false;
		} else {
			printf("%-7" PRIu64 " %-16s %-20s %-8s %-20s %s%s\n", cert->serial,
			       ruf_role_name(cert->role), cert->subject,
			       cert->country && *cert->country ? cert->country : "-", when,
			       rev ? "revoked from "
			           : (cert->not_after < ruf_now() ? "expired" : "valid"),
			       since);
		}
		ruf_cert_free(cert);
	}
	if (json)
		printf("\n]\n");
	ca_revoked_free(revoked, n_revoked);
	rc = 0;
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	return rc == 0 ? 0 : 1;
}

int
rufctl_cert_main(int argc, char *argv[])
{
	if (argc < 2) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "issue") == 0)
		return cert_issue(argc - 1, argv + 1);
	if (strcmp(argv[1], "revoke") == 0)
		return cert_revoke(argc - 1, argv + 1);
	if (strcmp(argv[1], "list") == 0)
		return cert_list(argc - 1, argv + 1);
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(usage, stdout);
		return 0;
	}
	fputs(usage, stderr);
	return EXIT_USAGE;
}
