/*
 * desk.h - what the `ruf desk` verbs and `ruf inbox` share (ruf_desk*.c,
 * ruf_inbox.c): connecting to rufd, receiving into the archive, filters,
 * output.
 */
#ifndef RUF_DESK_H
#define RUF_DESK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "archive.h"
#include "cli.h"
#include "client.h"

/* Options every networked verb accepts. */
struct desk_net {
	const char *hq;   /* --hq HOST:PORT, else the directory's first address */
	unsigned idle_ms; /* pull: exit after this long without a delivery */
	bool follow;      /* stay connected, reconnect after drops */
	bool json;        /* one JSON object per line */
	bool quiet;       /* no line per message (ruf inbox lists afterwards) */
	uint32_t window;  /* deliveries in flight */
	long max;         /* stop after this many (0: no limit; tests) */
};

/*
 * Connects as id (keystore open) to rufd; saves a newer directory rufd
 * pushes into the identity home (and id->dir). Prints the error.
 */
int desk_connect(struct cli_identity *id, const char *hq, ruf_client **out);

/*
 * Subscribes to queues and archives every delivery: open and verify with
 * open_ks, archive (or quarantine), then ack. Prints one line per message.
 * Returns an exit code: 0, 1 (failure), 3 (something was quarantined).
 */
int desk_receive(struct cli_identity *id, const ruf_keystore *open_ks, ruf_archive *a,
                 const char *const *queues, size_t n, const struct desk_net *net);

/* Exit code for an error: 3 for refused certificates, directories, envelopes; else 1. */
int desk_exit_for(int rc);

/* Colour on a terminal only. */
bool desk_colour(void);

/*
 * Sets r's verdict, revoked_at and revoked_reason: its sender's revocation
 * in dir judged by r->accepted, rufd's signed accept time
 * (ruf_directory_judge). Received records only; sent ones stay good.
 */
void desk_judge(const ruf_directory *dir, struct ruf_archive_rec *r);
/* For a judged record: "sender revoked since ..." or "FLAGGED, not genuine: ...", else NULL. */
const char *desk_flag_text(const struct ruf_archive_rec *r, char *out, size_t n);

/* One summary line (or a JSON object) for an index record. */
void desk_print_summary(FILE *fp, const struct ruf_archive_rec *r, const char *note, bool json);
/* The JSON object fields for a record (no braces), shared by list and export. */
void desk_json_rec_fields(FILE *fp, const struct ruf_archive_rec *r);

/* Filters of list and export. */
struct desk_filter {
	const char *queue, *situation, *sender;
	int kind; /* 0: any */
	int risk; /* -1: any */
	uint64_t since;
};
/* Handles one filter option (getopt value c); returns 1 if it was one, 0 if not, -1 bad. */
int desk_filter_opt(struct desk_filter *f, int c, const char *arg);
bool desk_filter_match(const struct desk_filter *f, const struct ruf_archive_rec *r);
#define DESK_FILTER_LONGOPTS                                                                       \
	{"queue", required_argument, NULL, 1001}, {"situation", required_argument, NULL, 1002},    \
	    {"kind", required_argument, NULL, 1003}, {"risk", required_argument, NULL, 1004},      \
	    {"since", required_argument, NULL, 1005},                                              \
	{                                                                                          \
		"sender", required_argument, NULL, 1006                                            \
	}
#define DESK_FILTER_USAGE                                                                          \
	"  --queue Q --situation S --kind K --risk R --since TIME|DURATION --sender SUBJECT\n"     \
	"                        only messages matching all of these\n"

/* Common identity options (--home, --passphrase-file) are parsed by each verb. */
int ruf_desk_pull_main(int argc, char *argv[]);
int ruf_desk_view_list(int argc, char *argv[]);
int ruf_desk_view_show(int argc, char *argv[]);
int ruf_desk_view_export(int argc, char *argv[]);
int ruf_desk_view_surge(int argc, char *argv[]);
int ruf_desk_reply_main(int argc, char *argv[]);

#endif
