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
/* Serialised Report, bytes (a report from JSON is never larger than its JSON). */
#define RUF_REPORT_PB_MAX (8u << 20)
/* Report.format written and accepted by this version. */
#define RUF_REPORT_FORMAT 1u
/* Attachments one report JSON may name (the envelope's limit). */
#define RUF_REPORT_MAX_ATTACHMENTS 64

/* An attachment named by the JSON ("attachments": [{"path", "name", "media_type"}]). */
struct ruf_report_attachment {
	char *path;       /* as written in the JSON, resolved against base_dir */
	char *name;       /* defaults to the path's last component */
	char *media_type; /* may be NULL */
};

struct ruf_report_input {
	Ruf__Report
	    *report; /* free with protobuf_c_message_free_unpacked or ruf_report_input_free */
	struct ruf_report_attachment *attachments;
	size_t n_attachments;
};

/*
 * Parses and validates report JSON. Relative attachment paths are resolved
 * against base_dir (NULL = current directory); the files are not opened here.
 * On failure returns RUF_E_REPORT with "field.path: problem" in d (JSON syntax
 * errors as "line L, column C: problem"), RUF_E_TOO_LARGE if len exceeds
 * RUF_REPORT_JSON_MAX, or RUF_E_NOMEM; *out is then empty. On success the
 * caller owns *out and frees it with ruf_report_input_free.
 */
int ruf_report_from_json(const char *json, size_t len, const char *base_dir, ruf_diag *d,
                         struct ruf_report_input *out) __attribute__((warn_unused_result));
/* Frees everything in *in and zeroes it; accepts NULL. */
void ruf_report_input_free(struct ruf_report_input *in);

/*
 * Validates a decoded Report (as opened from an envelope) with the same rules
 * and messages as the JSON path. Returns 0 or RUF_E_REPORT ("path: problem"
 * in d), RUF_E_INVAL if r is NULL.
 */
int ruf_report_validate(const Ruf__Report *r, ruf_diag *d);

/*
 * The routing header a report implies (docs/REPORTS.md, "Routing header");
 * strings point into r (or are static "" for absent ones). Returns 0, or
 * RUF_E_INVAL if r has no body.
 */
int ruf_report_route_header(const Ruf__Report *r, struct ruf_route_header *out);

/*
 * Serialised protobuf <-> Report (strict, canonical: lib/pb.h).
 * ruf_report_encode validates r first (RUF_E_REPORT if invalid, so an invalid
 * report is never sealed) and returns a malloc'ed buffer the caller frees.
 * ruf_report_decode returns RUF_E_TOO_LARGE (> RUF_REPORT_PB_MAX),
 * RUF_E_FORMAT (not canonical protobuf) or RUF_E_REPORT (fails
 * ruf_report_validate: call it for the message); *out is the caller's, to free
 * with protobuf_c_message_free_unpacked(&(*out)->base, NULL).
 */
int ruf_report_encode(const Ruf__Report *r, uint8_t **out, size_t *len)
    __attribute__((warn_unused_result));
int ruf_report_decode(const uint8_t *buf, size_t len, Ruf__Report **out)
    __attribute__((warn_unused_result));

/*
 * JSON of a report, same schema as the input (pretty when pretty != 0), with
 * "kind" and "format" first and only non-empty fields; NULL on allocation
 * failure or a string that is not UTF-8. No "attachments" (the envelope
 * carries them). The caller frees the result with free().
 */
char *ruf_report_to_json(const Ruf__Report *r, int pretty);

/*
 * A human rendering for the terminal: every non-empty section, the casualty
 * figures as an aligned table. Control characters are shown as '?', so an
 * unvalidated report cannot drive the terminal.
 */
void ruf_report_render(const Ruf__Report *r, FILE *fp);

/*
 * One-line title ("Situation report: darfur, 2026-11-01..2026-11-07",
 * "Surge request: darfur, 4 staff for 90 days", "Reply to <id>: approved"),
 * truncated to outlen.
 */
void ruf_report_title(const Ruf__Report *r, char *out, size_t outlen);

#endif
