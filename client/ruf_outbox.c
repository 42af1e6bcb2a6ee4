/*
 * ruf outbox [--json]: what the outbox holds: pending, in flight (bytes HQ
 * confirmed), delivered (receipt verified: store sequence, queues, time),
 * failed (reason). Damaged entries are quarantined on the way (outbox.h).
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "outbox.h"
#include "route.h"
#include "util.h"

static const char usage[] = "usage: ruf outbox [--json] [--home DIR]\n";

int
ruf_outbox_main(int argc, char *argv[])
{
	const char *homearg = NULL;
	struct outbox_entry *v = NULL;
	char dir[PATH_MAX], t1[21], t2[21];
	bool json = false;
	size_t n;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (strcmp(argv[i], "--home") == 0 && i + 1 < argc)
			homearg = argv[++i];
		else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return fputs(usage, stdout), 0;
		else
			return fputs(usage, stderr), EXIT_USAGE;
	}
	if ((rc = outbox_dir(cli_home(homearg), dir, sizeof(dir))) != 0 ||
	    (rc = outbox_list(dir, &v, &n)) != 0)
		return cli_fail(1, "%s/outbox: %s", cli_home(homearg), ruf_strerror(rc));
	if (json)
		printf("[");
	for (size_t i = 0; i < n; i++) {
		const struct outbox_entry *e = &v[i];
		ruf_time_fmt(e->created, t1);
		ruf_time_fmt(e->receipt_time, t2);
		if (json) {
			printf("%s\n {\"message_id\": \"%s\", \"kind\": \"%s\", \"risk\": \"%s\", "
			       "\"created\": \"%s\", \"state\": \"%s\", \"bytes\": %" PRIu64
			       ", \"confirmed\": %" PRIu64 ", \"directory_version\": %" PRIu64
			       ", \"attempts\": %" PRIu64 ", \"queues\": ",
			       i ? "," : "", e->id, ruf_kind_name(e->kind), ruf_risk_name(e->risk),
			       t1, outbox_state_name(e->state), e->total_len, e->confirmed,
			       e->dir_version, e->attempts);
			cli_json_str(stdout, e->queues);
			if (e->state == OUTBOX_DELIVERED)
				printf(", \"store_seq\": %" PRIu64 ", \"receipt_time\": \"%s\"",
				       e->store_seq, t2);
			printf(", \"reason\": ");
			cli_json_str(stdout, e->reason);
			printf("}");
			continue;
		}
		printf("%-9s %s %-6s %-8s %s ", outbox_state_name(e->state), e->id,
		       ruf_kind_name(e->kind), ruf_risk_name(e->risk), t1);
		switch (e->state) {
		case OUTBOX_DELIVERED:
			printf("receipt: store seq %" PRIu64 ", queues %s, %s\n", e->store_seq,
			       e->queues, t2);
			break;
		case OUTBOX_INFLIGHT:
			printf("%" PRIu64 "/%" PRIu64 " bytes confirmed%s%s\n", e->confirmed,
			       e->total_len, e->reason[0] ? "; last: " : "", e->reason);
			break;
		case OUTBOX_FAILED:
			printf("failed: %s\n", e->reason);
			break;
		default:
			printf("%" PRIu64 " bytes to %s%s%s\n", e->total_len, e->queues,
			       e->reason[0] ? "; last: " : "", e->reason);
		}
	}
	if (json)
		printf("%s]\n", n ? "\n" : "");
	else if (n == 0)
		printf("the outbox is empty\n");
	outbox_list_free(v, n);
	return 0;
}
