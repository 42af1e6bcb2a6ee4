/*
 * report.h - report schemas (proto/report.proto) and their JSON form.
 *
 * RCs write a situation report or a surge request as JSON (schema and
 * examples in docs/REPORTS.md and certs-example/reports/); desks reply with a
 * Reply. The JSON is validated strictly: unknown or duplicate keys, wrong
 * types, out-of-range values and missing required fields are errors whose
 * message names the field path ("casualties[2].killed: must be a whole
 * number >= 0"). The envelope's clear routing header (kind, situation,
 * country, region, risk, flags) is derived from the report so the two cannot
 * disagree.
 */
#ifndef RUF_REPORT_H
#define RUF_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"
#include "report.pb-c.h"
#include "route.h"

#define RUF_REPORT_JSON_MAX (8u << 20)

/* An attachment named by the JSON ("attachments": [{"path", "name", "media_type"}]). */
struct ruf_report_attachment {
	char *path; /* as written in the JSON, resolved against base_dir */
	char *name; /* defaults to the path's last component */
	char *media_type; /* may be NULL */
};

struct ruf_report_input {
	Ruf__Report *report; /* free with protobuf_c_message_free_unpacked or ruf_report_input_free */
	struct ruf_report_attachment *attachments;
	size_t n_attachments;
};

/*
 * Parses and validates report JSON. Relative attachment paths are resolved
 * against base_dir (NULL = current directory). On failure returns RUF_E_REPORT
 * with "field.path: problem" in d.
 */
int ruf_report_from_json(const char *json, size_t len, const char *base_dir, ruf_diag *d,
			 struct ruf_report_input *out) __attribute__((warn_unused_result));
void ruf_report_input_free(struct ruf_report_input *in);

/* Validates a decoded Report (as opened from an envelope); same messages. */
int ruf_report_validate(const Ruf__Report *r, ruf_diag *d);

/* The routing header a report implies; strings point into r. */
int ruf_report_route_header(const Ruf__Report *r, struct ruf_route_header *out);

/* Serialised protobuf <-> Report (strict, canonical: lib/pb.h). */
int ruf_report_encode(const Ruf__Report *r, uint8_t **out, size_t *len);
int ruf_report_decode(const uint8_t *buf, size_t len, Ruf__Report **out)
	__attribute__((warn_unused_result));

/* JSON of a report, same schema as the input (pretty when pretty != 0); caller frees. */
char *ruf_report_to_json(const Ruf__Report *r, int pretty);

/* A human rendering for the terminal: every section, the casualty table. */
void ruf_report_render(const Ruf__Report *r, FILE *fp);

/* One-line title ("Situation report: darfur, 2026-11-01..2026-11-07"). */
void ruf_report_title(const Ruf__Report *r, char *out, size_t outlen);

#endif
