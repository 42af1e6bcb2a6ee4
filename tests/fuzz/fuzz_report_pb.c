/*
 * fuzz_report_pb.c - ruf_report_decode on arbitrary bytes (a report as
 * opened from an envelope). An accepted report must re-encode to exactly the
 * input (canonical form), go through JSON and back to the same bytes, and
 * render without crashing.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

static FILE *devnull;

static void
check(int ok)
{
	if (!ok)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ruf_report_input in;
	struct ruf_route_header h;
	Ruf__Report *r;
	uint8_t *b1 = NULL, *b2 = NULL;
	size_t l1, l2;
	char *json, title[160];
	ruf_diag d;

	if (devnull == NULL)
		devnull = fopen("/dev/null", "w");
	if (ruf_report_decode(data, size, &r) != 0)
		return 0;
	check(ruf_report_validate(r, &d) == 0);
	check(ruf_report_encode(r, &b1, &l1) == 0);
	check(l1 == size && memcmp(b1, data, size) == 0);
	check((json = ruf_report_to_json(r, 0)) != NULL);
	check(ruf_report_from_json(json, strlen(json), NULL, &d, &in) == 0);
	check(ruf_report_encode(in.report, &b2, &l2) == 0);
	check(l2 == size && memcmp(b2, data, size) == 0);
	check(ruf_report_route_header(r, &h) == 0);
	ruf_report_title(r, title, sizeof(title));
	if (devnull != NULL)
		ruf_report_render(r, devnull);
	ruf_report_input_free(&in);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	free(json);
	free(b1);
	free(b2);
	return 0;
}
