/* ruf.c - the client, for field devices and HQ desks: one subcommand per file. */
#include "cli.h"

int ruf_enroll_main(int argc, char *argv[]);
int ruf_seal_main(int argc, char *argv[]);
int ruf_open_main(int argc, char *argv[]);
int ruf_directory_main(int argc, char *argv[]);
int ruf_report_main(int argc, char *argv[]);
int ruf_surge_main(int argc, char *argv[]);
int ruf_outbox_main(int argc, char *argv[]);
int ruf_send_main(int argc, char *argv[]);
int ruf_bundle_main(int argc, char *argv[]);
int ruf_desk_main(int argc, char *argv[]);
int ruf_inbox_main(int argc, char *argv[]);

static const struct cli_command commands[] = {
    {"enroll", ruf_enroll_main, "Install certificate, keys and directory; pin the HQ root"},
    {"seal", ruf_seal_main, "Seal a report (JSON) into an envelope file"},
    {"open", ruf_open_main, "Verify and open an envelope with this identity's queue keys"},
    {"directory", ruf_directory_main, "Install a newer signed HQ directory, or show the one held"},
    {"report", ruf_report_main, "Compose a situation report offline and seal it into the outbox"},
    {"surge", ruf_surge_main, "Compose a surge staff request offline and seal it into the outbox"},
    {"outbox", ruf_outbox_main, "List the outbox: pending, in flight, delivered, failed"},
    {"send", ruf_send_main, "Deliver the outbox to HQ (resumes, retries, re-reads the directory)"},
    {"bundle", ruf_bundle_main,
     "Export pending envelopes to a file; import HQ's receipts for them"},
    {"desk", ruf_desk_main, "HQ desks: pull, follow, list, show, export, reply, surge"},
    {"inbox", ruf_inbox_main, "Field devices: fetch and list replies from HQ"},
    {NULL, NULL, NULL},
};

int
main(int argc, char *argv[])
{
	cli_progname = "ruf";
	return cli_dispatch(commands, "usage: ruf COMMAND [OPTIONS]", argc, argv);
}
