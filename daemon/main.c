/*
 * main.c - rufd: command line, start-up, signals, shutdown.
 *
 *   rufd -c CONFIG [-n | -a] [-d]
 *
 * -a verifies the store's audit hash chain (also while rufd runs) and exits.
 * -n loads the configuration and every file it names (certificates, server
 * key, directory), prints one line and exits 0 if all is well, 1 if not.
 * -d stays in the foreground (systemd, tests); without it rufd detaches
 * after start-up checks and keeps logging to the stderr it was given.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "notify.h"
#include "rufd.h"
#include "util.h"

#define DEFAULT_CONFIG "/etc/ruf/rufd.conf"

static void
usage(FILE *f)
{
	fprintf(f, "usage: rufd [-c CONFIG] [-n | -a] [-d] [-v]\n"
	           "  -c CONFIG  configuration file (default " DEFAULT_CONFIG ")\n"
	           "  -n         check the configuration and the files it names, then exit\n"
	           "  -a         verify the store's audit log hash chain, then exit\n"
	           "  -d         stay in the foreground\n"
	           "  -v         log debug lines too\n"
	           "  -h         this help\n"
	           "configuration options (key = value, '#' comments):\n");
	rufd_config_print_table(f);
}

static int
detach(void)
{
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid > 0)
		_exit(0);
	if (setsid() < 0)
		return -1;
	if (chdir("/") != 0)
		return -1;
	return 0;
}

int
main(int argc, char *argv[])
{
	const char *config = DEFAULT_CONFIG;
	bool check = false, foreground = false, audit = false;
	struct rufd d;
	ruf_diag diag = {{0}};
	int c, rc, status = 1;

	while ((c = getopt(argc, argv, "c:nadvh")) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'n':
			check = true;
			break;
		case 'a':
			audit = true;
			break;
		case 'd':
			foreground = true;
			break;
		case 'v':
			rufd_log_set_level(LOG_DEBUG);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "rufd: libsodium cannot start\n");
		return 1;
	}
	memset(&d, 0, sizeof(d));
	d.config_path = config;
	if ((rc = rufd_config_load(config, &d.cfg, &diag)) != 0) {
		fprintf(stderr, "rufd: %s\n", diag.msg);
		return 1;
	}
	if ((rc = rufd_credential_resolve(&d.cfg.server_key, &diag)) != 0) {
		fprintf(stderr, "rufd: server_key: %s\n", diag.msg);
		goto out_cfg;
	}
	if ((rc = rufd_credential_resolve(&d.cfg.jetstream_creds, &diag)) != 0) {
		fprintf(stderr, "rufd: jetstream_creds: %s\n", diag.msg);
		goto out_cfg;
	}
	if ((rc = rufd_ident_load(&d.cfg, &d.id, &diag)) != 0) {
		fprintf(stderr, "rufd: %s\n", diag.msg);
		goto out_cfg;
	}
	if (audit) {
		status = rufd_audit_check(&d);
		goto out_ident;
	}
	if (check) {
		printf("rufd: configuration %s OK\n", config);
		status = 0;
		goto out_ident;
	}
	if (!foreground && detach() != 0) {
		fprintf(stderr, "rufd: cannot detach: %s\n", strerror(errno));
		goto out_ident;
	}
	/* A peer closing mid-write must give EPIPE, not kill the daemon. */
	signal(SIGPIPE, SIG_IGN);
	umask(077);
	status = rufd_run(&d) == 0 ? 0 : 1;
out_ident:
	rufd_ident_free(d.id);
out_cfg:
	rufd_config_free(&d.cfg);
	return status;
}
