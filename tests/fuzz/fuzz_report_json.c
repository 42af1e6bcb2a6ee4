/*
 * fuzz_report_json.c - ruf_report_from_json on arbitrary bytes. When the
 * input is accepted, the report must survive encode -> decode -> to_json ->
 * from_json -> encode with identical protobuf bytes, and rendering must not
 * crash.
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
	struct ruf_report_input in, in2;
	struct ruf_route_header h;
	Ruf__Report *dec = NULL;
	uint8_t *b1 = NULL, *b2 = NULL;
	size_t l1, l2;
	char *json = NULL, title[160];
	ruf_diag d;

	if (devnull == NULL)
		devnull = fopen("/dev/null", "w");
	if (ruf_report_from_json((const char *)data, size, "/base", &d, &in) != 0)
		return 0;
	check(ruf_report_encode(in.report, &b1, &l1) == 0);
	check(ruf_report_decode(b1, l1, &dec) == 0);
	check((json = ruf_report_to_json(dec, (int)(size & 1))) != NULL);
	check(ruf_report_from_json(json, strlen(json), NULL, &d, &in2) == 0);
	check(ruf_report_encode(in2.report, &b2, &l2) == 0);
	check(l1 == l2 && memcmp(b1, b2, l1) == 0);
	check(ruf_report_route_header(dec, &h) == 0);
	check(h.kind >= RUF_KIND_SITREP && h.kind <= RUF_KIND_REPLY);
	check(h.risk >= RUF_RISK_LOW && h.risk <= RUF_RISK_ONGOING);
	check((h.flags & ~RUF_FLAGS_ALL) == 0);
	ruf_report_title(dec, title, sizeof(title));
	if (devnull != NULL)
		ruf_report_render(dec, devnull);
	for (size_t i = 0; i < in.n_attachments; i++)
		check(strchr(in.attachments[i].name, '/') == NULL);
	ruf_report_input_free(&in2);
	ruf_report_input_free(&in);
	protobuf_c_message_free_unpacked(&dec->base, NULL);
	free(json);
	free(b1);
	free(b2);
	return 0;
}
