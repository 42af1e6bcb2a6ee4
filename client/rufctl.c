/* rufctl.c - the HQ administrator's tool: one subcommand per file. */
#include "cli.h"

int rufctl_init_main(int argc, char *argv[]);
int rufctl_cert_main(int argc, char *argv[]);
int rufctl_queue_main(int argc, char *argv[]);
int rufctl_directory_main(int argc, char *argv[]);
int rufctl_inspect_main(int argc, char *argv[]);
int rufctl_import_main(int argc, char *argv[]);

static const struct cli_command commands[] = {
    {"init", rufctl_init_main, "Create the HQ root, directory signer and server identity"},
    {"cert", rufctl_cert_main, "Issue, revoke and list device, desk and server certificates"},
    {"queue", rufctl_queue_main, "Create a queue key pair (its private half goes to desks)"},
    {"directory", rufctl_directory_main, "Compile policy, keys and revocations; sign"},
    {"inspect", rufctl_inspect_main, "Show the clear parts of an envelope, cert or directory"},
    {"import", rufctl_import_main, "Ingest a bundle of envelopes carried by hand; write receipts"},
    {NULL, NULL, NULL},
};

int
main(int argc, char *argv[])
{
	cli_progname = "rufctl";
	return cli_dispatch(commands, "usage: rufctl COMMAND [OPTIONS]", argc, argv);
}
