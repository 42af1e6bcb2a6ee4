/* test_report.c - report JSON schema, validation, protobuf round trip, routing header, rendering.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <jansson.h>

#include "err.h"
#include "pb.h"
#include "report.h"
#include "util.h"

#define EXAMPLES RUF_SOURCE_DIR "/certs-example/reports/"

static const char *const example_files[] = {
    "sitrep-darfur.json",
    "sitrep-kivu-early-warning.json",
    "surge-darfur.json",
};

static const char reply_json[] =
    "{\"kind\":\"reply\",\"in_reply_to\":"
    "\"00112233445566778899aabbccddeeff\",\"status\":\"approved\","
    "\"text\":\"EXAMPLE - fictional. Four officers approved; the roster "
    "will confirm names by 14 November.\"}";

static char *
load_example(const char *name, size_t *len)
{
	char path[512];
	uint8_t *buf;

	snprintf(path, sizeof(path), EXAMPLES "%s", name);
	assert_int_equal(ruf_file_read(path, RUF_REPORT_JSON_MAX, &buf, len), 0);
	return (char *)buf;
}

static Ruf__Report *
parse_ok(const char *json, size_t len)
{
	struct ruf_report_input in;
	ruf_diag d = {""};
	Ruf__Report *r;
	int rc;

	rc = ruf_report_from_json(json, len, NULL, &d, &in);
	if (rc != 0)
		fail_msg("unexpected error %s: %s", ruf_errname(rc), d.msg);
	r = in.report;
	in.report = NULL;
	ruf_report_input_free(&in);
	return r;
}

static void
free_report(Ruf__Report *r)
{
	protobuf_c_message_free_unpacked(&r->base, NULL);
}

/* JSON -> proto -> JSON -> proto gives identical protobuf bytes, and decode accepts them. */
static void
assert_round_trip(const char *json, size_t len)
{
	Ruf__Report *r1 = parse_ok(json, len), *r2, *r3, *r4;
	uint8_t *b1, *b2, *b3, *b4;
	size_t l1, l2, l3, l4;
	char *j1, *j2;

	assert_int_equal(ruf_report_encode(r1, &b1, &l1), 0);
	assert_non_null(j1 = ruf_report_to_json(r1, 1));
	r2 = parse_ok(j1, strlen(j1));
	assert_int_equal(ruf_report_encode(r2, &b2, &l2), 0);
	assert_int_equal(l1, l2);
	assert_memory_equal(b1, b2, l1);
	/* Compact output parses to the same bytes too. */
	assert_non_null(j2 = ruf_report_to_json(r2, 0));
	r3 = parse_ok(j2, strlen(j2));
	assert_int_equal(ruf_report_encode(r3, &b3, &l3), 0);
	assert_int_equal(l1, l3);
	assert_memory_equal(b1, b3, l1);
	/* The protobuf path: decode then encode is the identity. */
	assert_int_equal(ruf_report_decode(b1, l1, &r4), 0);
	assert_int_equal(ruf_report_encode(r4, &b4, &l4), 0);
	assert_int_equal(l1, l4);
	assert_memory_equal(b1, b4, l1);
	free(b1);
	free(b2);
	free(b3);
	free(b4);
	free(j1);
	free(j2);
	free_report(r1);
	free_report(r2);
	free_report(r3);
	free_report(r4);
}

static void
test_examples_parse_and_round_trip(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(example_files) / sizeof(example_files[0]); i++) {
		size_t len;
		char *json = load_example(example_files[i], &len);

		assert_round_trip(json, len);
		free(json);
	}
	assert_round_trip(reply_json, strlen(reply_json));
}

static void
test_examples_are_marked_fictional(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(example_files) / sizeof(example_files[0]); i++) {
		size_t len;
		char *json = load_example(example_files[i], &len);
		Ruf__Report *r = parse_ok(json, len);
		const char *title =
		    r->body_case == RUF__REPORT__BODY_SITREP ? r->sitrep->title : r->surge->title;

		assert_non_null(strstr(title, "EXAMPLE - fictional"));
		free_report(r);
		free(json);
	}
}

/* Every proto field name of every message appears as a JSON key in the output. */
static void
assert_keys_cover(const char *json, const ProtobufCMessageDescriptor *desc)
{
	for (unsigned i = 0; i < desc->n_fields; i++) {
		char key[80];

		snprintf(key, sizeof(key), "\"%s\":", desc->fields[i].name);
		if (strstr(json, key) == NULL)
			fail_msg("%s: field %s missing from JSON output", desc->name,
			         desc->fields[i].name);
	}
}

static void
test_json_output_names_every_proto_field(void **state)
{
	size_t len;
	char *json = load_example("sitrep-darfur.json", &len), *dumped, *out;
	json_t *root;
	Ruf__Report *r;

	(void)state;
	/* The example leaves early_warning false (omitted on output): set it. */
	assert_non_null(root = json_loadb(json, len, 0, NULL));
	json_object_set_new(root, "early_warning", json_true());
	assert_non_null(dumped = json_dumps(root, 0));
	r = parse_ok(dumped, strlen(dumped));
	assert_non_null(out = ruf_report_to_json(r, 0));
	assert_keys_cover(out, &ruf__situation_report__descriptor);
	assert_keys_cover(out, &ruf__casualty_figure__descriptor);
	assert_keys_cover(out, &ruf__perpetrator__descriptor);
	assert_keys_cover(out, &ruf__affected_population__descriptor);
	free(out);
	free_report(r);
	free(dumped);
	json_decref(root);
	free(json);

	json = load_example("surge-darfur.json", &len);
	r = parse_ok(json, len);
	assert_non_null(out = ruf_report_to_json(r, 1));
	assert_keys_cover(out, &ruf__surge_request__descriptor);
	free(out);
	free_report(r);
	free(json);

	r = parse_ok(reply_json, strlen(reply_json));
	assert_non_null(out = ruf_report_to_json(r, 1));
	assert_keys_cover(out, &ruf__reply__descriptor);
	free(out);
	free_report(r);
}

/* ---- validation errors, each naming its field ---- */

#define SITREP                                                                                     \
	"\"kind\":\"sitrep\",\"situation\":\"darfur\",\"country\":\"sd\",\"risk\":\"high\","       \
	"\"title\":\"t\",\"summary\":\"s\",\"period_start\":\"2026-11-01\""
#define SURGE                                                                                      \
	"\"kind\":\"surge\",\"situation\":\"darfur\",\"country\":\"sd\","                          \
	"\"expertise\":[\"human-rights\"],\"staff_count\":2,\"duration_days\":30,"                 \
	"\"justification\":\"j\""
#define MSGID "\"00112233445566778899aabbccddeeff\""
#define ROW "{\"category\":\"killing\",\"killed\":1}"

static const struct bad_case {
	const char *json;
	const char *msg;      /* expected at the start of the diagnostic */
	const char *contains; /* JSON syntax errors: expected anywhere in it */
} bad_cases[] = {
    {"{" SITREP ",\"sumary\":\"x\"}", "unknown field \"sumary\""},
    {"{" SITREP ",\"casualties\":[{\"category\":\"killing\",\"kiled\":1}]}",
     "casualties[0]: unknown field \"kiled\""},
    {"{" SITREP ",\"title\":\"again\"}", "line 1, column", "duplicate object key near '\"title\"'"},
    {"{" SITREP ",\"escalate\":\"yes\"}", "escalate: must be true or false"},
    {"{\"kind\":\"sitrep\",\"situation\":7}", "situation: must be a string"},
    {"{" SITREP ",\"region\":null}", "region: must be a string"},
    {"{" SITREP ",\"casualties\":[" ROW "," ROW ",{\"category\":\"killing\",\"killed\":-1}]}",
     "casualties[2].killed: must be a whole number >= 0"},
    {"{" SITREP ",\"casualties\":[{\"category\":\"killing\",\"injured\":1.5}]}",
     "casualties[0].injured: must be a whole number >= 0"},
    {"{" SITREP ",\"casualties\":[{\"category\":\"killing\",\"missing\":2.0}]}",
     "casualties[0].missing: must be a whole number >= 0"},
    {"{" SITREP ",\"casualties\":[{\"category\":\"killing\",\"detained\":\"3\"}]}",
     "casualties[0].detained: must be a whole number >= 0"},
    {"{" SITREP ",\"casualties\":[{\"category\":\"killing\",\"killed\":1000000001}]}",
     "casualties[0].killed: must be at most 1000000000"},
    {"{" SITREP ",\"casualties\":[{\"killed\":3}]}", "casualties[0].category: required"},
    {"{" SITREP ",\"casualties\":{}}", "casualties: must be a list"},
    {"{" SITREP ",\"casualties\":[5]}", "casualties[0]: must be an object"},
    {"{" SITREP ",\"casualties\":[{\"category\":\"killing\",\"date\":\"2026-13-01\"}]}",
     "casualties[0].date: must be a date"},
    {"{" SITREP ",\"casualties\":[{\"category\":\"killing\",\"confidence\":\"sure\"}]}",
     "casualties[0].confidence: must be one of low, medium, high"},
    {"{" SITREP ",\"casualties\":[{\"category\":\"killing\",\"group\":\"soldiers\"}]}",
     "casualties[0].group: must be one of civilians"},
    {"{" SITREP ",\"period_end\":\"2026-02-30\"}", "period_end: must be a date"},
    {"{" SITREP ",\"period_end\":\"2026-1-31\"}", "period_end: must be a date"},
    {"{" SITREP ",\"period_end\":\"2026-10-31\"}", "period_end: must not be before period_start"},
    {"{" SITREP ",\"risk\":\"severe\"}", "line 1, column", "duplicate object key near '\"risk\"'"},
    {"{\"kind\":\"sitrep\",\"situation\":\"darfur\",\"country\":\"sd\",\"risk\":\"severe\"}",
     "risk: must be one of low, elevated, high, ongoing"},
    {"{\"kind\":\"sitrep\",\"situation\":\"darfur\",\"country\":\"sd\",\"risk\":3}",
     "risk: must be one of low, elevated, high, ongoing"},
    {"{" SITREP ",\"violation_categories\":[\"genocide\"]}",
     "violation_categories[0]: must be one of killing"},
    {"{" SITREP ",\"violation_categories\":[\"killing\",\"killing\"]}",
     "violation_categories[1]: \"killing\" is listed twice"},
    {"{" SITREP ",\"violation_categories\":[\"\"]}", "violation_categories[0]: must not be empty"},
    {"{" SITREP ",\"alleged_perpetrators\":[{\"type\":\"police\"}]}",
     "alleged_perpetrators[0].type: must be one of state-security"},
    {"{" SITREP ",\"affected_populations\":[{\"number\":5}]}",
     "affected_populations[0].group: required"},
    {"{\"kind\":\"sitrep\",\"country\":\"sd\",\"risk\":\"high\",\"title\":\"t\",\"summary\":"
     "\"s\",\"period_start\":\"2026-11-01\"}",
     "situation: required"},
    {"{\"kind\":\"sitrep\",\"situation\":\"darfur\",\"country\":\"sd\",\"title\":\"t\","
     "\"summary\":\"s\",\"period_start\":\"2026-11-01\"}",
     "risk: required"},
    {"{\"kind\":\"sitrep\",\"situation\":\"darfur\",\"country\":\"sd\",\"risk\":\"low\","
     "\"summary\":\"s\",\"period_start\":\"2026-11-01\"}",
     "title: required"},
    {"{\"kind\":\"sitrep\",\"situation\":\"darfur\",\"country\":\"sd\",\"risk\":\"low\","
     "\"title\":\"t\",\"period_start\":\"2026-11-01\"}",
     "summary: required"},
    {"{\"kind\":\"sitrep\",\"situation\":\"darfur\",\"country\":\"sd\",\"risk\":\"low\","
     "\"title\":\"t\",\"summary\":\"s\"}",
     "period_start: required"},
    {"{\"kind\":\"sitrep\",\"situation\":\"darfur\",\"country\":\"sd\",\"risk\":\"low\","
     "\"title\":\"\",\"summary\":\"s\",\"period_start\":\"2026-11-01\"}",
     "title: required"},
    {"{\"kind\":\"sitrep\",\"situation\":\"Darfur\"}", "situation: must be an identifier"},
    {"{\"kind\":\"sitrep\",\"situation\":\"darfur\",\"country\":\"SD\"}",
     "country: must be an ISO 3166-1 alpha-2 code"},
    {"{\"kind\":\"sitrep\",\"situation\":\"darfur\",\"country\":\"sdn\"}",
     "country: must be an ISO 3166-1 alpha-2 code"},
    {"{" SITREP ",\"region\":\"east africa\"}", "region: must be an identifier"},
    {"{" SITREP ",\"location\":\"x\"}", "unknown field \"location\""},
    {"{\"kind\":\"sitrep\",\"situation\":\"darfur\",\"country\":\"sd\",\"risk\":\"low\","
     "\"title\":\"a\\u001b[31mb\",\"summary\":\"s\",\"period_start\":\"2026-11-01\"}",
     "title: must be one line without control characters"},
    {"{\"kind\":\"sitrep\",\"situation\":\"darfur\",\"country\":\"sd\",\"risk\":\"low\","
     "\"title\":\"t\",\"summary\":\"a\\u0007b\",\"period_start\":\"2026-11-01\"}",
     "summary: must not contain control characters"},
    {"{\"kind\":\"sitrep\",\"situation\":\"darfur\",\"country\":\"sd\",\"risk\":\"low\","
     "\"title\":\"a\\u009bb\",\"summary\":\"s\",\"period_start\":\"2026-11-01\"}",
     "title: must not contain control characters"},
    {"{" SITREP "} x", "line 1, column", "end of file expected"},
    {"{" SITREP "}{}", "line 1, column", "end of file expected"},
    {"{\"kind\":\"sitrep\",\"title\":\"\xff\"}", "line 1, column", "unable to decode byte 0xff"},
    {"{\"kind\":\"sitrep\",\"title\":\"\xc0\xaf\"}", "line 1, column",
     "unable to decode byte 0xc0"},
    {"{\"kind\":\"sitrep\",\"title\":\"a\\u0000b\"}", "line 1, column", "\\u0000 is not allowed"},
    {"{\"kind\":\"sitrep\",\"title\":\"\\ud800\"}", "line 1, column", "invalid Unicode"},
    {"[]", "a report must be a JSON object"},
    {"", "line 1, column", "'[' or '{' expected"},
    {"{\"kind\":\"sitrep\",\"killed\":99999999999999999999}", "line 1, column", "too big integer"},
    {"{\"situation\":\"darfur\"}", "kind: required"},
    {"{\"kind\":\"incident\"}", "kind: must be one of sitrep, surge, reply"},
    {"{\"kind\":1}", "kind: must be one of sitrep, surge, reply"},
    {"{" SITREP ",\"format\":2}", "format: must be 1"},
    {"{" SITREP ",\"format\":\"1\"}", "format: must be 1"},
    {"{\"kind\":\"surge\",\"situation\":\"darfur\",\"country\":\"sd\",\"staff_count\":2,"
     "\"duration_days\":30,\"justification\":\"j\"}",
     "expertise: required"},
    {"{\"kind\":\"surge\",\"situation\":\"darfur\",\"country\":\"sd\",\"expertise\":[],"
     "\"staff_count\":2,\"duration_days\":30,\"justification\":\"j\"}",
     "expertise: required"},
    {"{\"kind\":\"surge\",\"situation\":\"darfur\",\"country\":\"sd\",\"expertise\":[1]}",
     "expertise[0]: must be a string"},
    {"{\"kind\":\"surge\",\"situation\":\"darfur\",\"country\":\"sd\",\"expertise\":"
     "[\"logistics\"]}",
     "expertise[0]: must be one of human-rights, political, protection, other"},
    {"{\"kind\":\"surge\",\"situation\":\"darfur\",\"country\":\"sd\",\"staff_count\":0}",
     "staff_count: must be a whole number >= 1"},
    {"{\"kind\":\"surge\",\"situation\":\"darfur\",\"country\":\"sd\",\"staff_count\":501}",
     "staff_count: must be at most 500"},
    {"{\"kind\":\"surge\",\"situation\":\"darfur\",\"country\":\"sd\",\"expertise\":"
     "[\"political\"],\"staff_count\":2,\"justification\":\"j\"}",
     "duration_days: required"},
    {"{\"kind\":\"surge\",\"situation\":\"darfur\",\"country\":\"sd\",\"expertise\":"
     "[\"political\"],\"duration_days\":2,\"justification\":\"j\"}",
     "staff_count: required"},
    {"{\"kind\":\"surge\",\"situation\":\"darfur\",\"country\":\"sd\",\"expertise\":"
     "[\"political\"],\"staff_count\":2,\"duration_days\":2}",
     "justification: required"},
    {"{" SURGE ",\"funding\":\"free\"}", "funding: must be one of covered"},
    {"{" SURGE ",\"earliest_start\":\"soon\"}", "earliest_start: must be a date"},
    {"{" SURGE ",\"escalate\":true}", "unknown field \"escalate\""},
    {"{\"kind\":\"reply\",\"status\":\"approved\"}", "in_reply_to: required"},
    {"{\"kind\":\"reply\",\"in_reply_to\":" MSGID "}", "status: required"},
    {"{\"kind\":\"reply\",\"in_reply_to\":" MSGID ",\"status\":\"maybe\"}",
     "status: must be one of received, under-review"},
    {"{\"kind\":\"reply\",\"in_reply_to\":\"0011\",\"status\":\"approved\"}",
     "in_reply_to: must be a message id (32 hex digits)"},
    {"{\"kind\":\"reply\",\"in_reply_to\":\"zz112233445566778899aabbccddeeff\","
     "\"status\":\"approved\"}",
     "in_reply_to: must be a message id (32 hex digits)"},
    {"{" SITREP ",\"attachments\":[{\"path\":\"a.jpg\",\"name\":\"x/y.jpg\"}]}",
     "attachments[0].name: must be a file name"},
    {"{" SITREP ",\"attachments\":[{\"path\":\"a.jpg\",\"name\":\"..\"}]}",
     "attachments[0].name: must be a file name"},
    {"{" SITREP ",\"attachments\":[{\"path\":\"photos/\"}]}",
     "attachments[0].name: must be a file name"},
    {"{" SITREP ",\"attachments\":[{\"path\":\"a.jpg\",\"size\":3}]}",
     "attachments[0]: unknown field \"size\""},
    {"{" SITREP ",\"attachments\":[{\"name\":\"a.jpg\"}]}", "attachments[0].path: required"},
    {"{" SITREP ",\"attachments\":[{\"path\":\"a.jpg\",\"media_type\":\"jpeg\"}]}",
     "attachments[0].media_type: must be a media type"},
    {"{" SITREP ",\"attachments\":[{\"path\":\"a/x.jpg\"},{\"path\":\"b/x.jpg\"}]}",
     "attachments[1].name: \"x.jpg\" is already used by attachments[0]"},
    {"{" SITREP ",\"attachments\":{\"path\":\"a.jpg\"}}", "attachments: must be a list"},
    {"{" SITREP ",\"attachments\":[{\"path\":5}]}", "attachments[0].path: must be a string"},
};

static void
test_validation_errors_name_their_field(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		struct ruf_report_input in;
		ruf_diag d = {""};
		int rc = ruf_report_from_json(c->json, strlen(c->json), NULL, &d, &in);

		if (rc != RUF_E_REPORT || strncmp(d.msg, c->msg, strlen(c->msg)) != 0 ||
		    (c->contains != NULL && strstr(d.msg, c->contains) == NULL))
			fail_msg("case %zu (%s): got %s \"%s\", want \"%s...\"", i, c->json,
			         ruf_errname(rc), d.msg, c->msg);
		assert_null(in.report);
		assert_null(in.attachments);
	}
}

static void
test_duplicate_key_is_named(void **state)
{
	const char *json = "{" SITREP ",\"title\":\"again\"}";
	struct ruf_report_input in;
	ruf_diag d = {""};

	(void)state;
	assert_int_equal(ruf_report_from_json(json, strlen(json), NULL, &d, &in), RUF_E_REPORT);
	assert_non_null(strstr(d.msg, "duplicate"));
	assert_non_null(strstr(d.msg, "title"));
}

/* Builds {SITREP, "<field>": "<n copies of unit>"} and returns the rc and message. */
static int
parse_long(const char *field, const char *unit, size_t n, ruf_diag *d)
{
	size_t ulen = strlen(unit), cap = n * ulen + 256;
	char *json = malloc(cap), *p;
	struct ruf_report_input in;
	int rc;

	assert_non_null(json);
	p = json + sprintf(json,
	                   "{\"kind\":\"sitrep\",\"situation\":\"darfur\",\"country\":\"sd\","
	                   "\"risk\":\"low\",\"period_start\":\"2026-11-01\",%s\"%s\":\"",
	                   strcmp(field, "title") == 0 ? "\"summary\":\"s\"," : "\"title\":\"t\",",
	                   field);
	for (size_t i = 0; i < n; i++, p += ulen)
		memcpy(p, unit, ulen);
	strcpy(p, "\"}");
	rc = ruf_report_from_json(json, strlen(json), NULL, d, &in);
	ruf_report_input_free(&in);
	free(json);
	return rc;
}

static void
test_length_limits_count_characters(void **state)
{
	ruf_diag d = {""};

	(void)state;
	assert_int_equal(parse_long("title", "a", 200, &d), 0);
	/* 200 two-byte characters are 400 bytes and still fit. */
	assert_int_equal(parse_long("title", "\xc3\xa9", 200, &d), 0);
	assert_int_equal(parse_long("title", "a", 201, &d), RUF_E_REPORT);
	assert_string_equal(d.msg, "title: must be at most 200 characters");
	assert_int_equal(parse_long("summary", "a", 65536, &d), 0);
	assert_int_equal(parse_long("summary", "\xe2\x82\xac", 65537, &d), RUF_E_REPORT);
	assert_string_equal(d.msg, "summary: must be at most 65536 characters");
}

/* A JSON list of n casualty rows (or categories) under the minimal sitrep. */
static int
parse_rows(const char *field, const char *row, size_t n, ruf_diag *d)
{
	size_t rlen = strlen(row), cap = n * (rlen + 1) + 256;
	char *json = malloc(cap), *p;
	struct ruf_report_input in;
	int rc;

	assert_non_null(json);
	p = json + sprintf(json, "{" SITREP ",\"%s\":[", field);
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			*p++ = ',';
		memcpy(p, row, rlen);
		p += rlen;
	}
	strcpy(p, "]}");
	rc = ruf_report_from_json(json, strlen(json), NULL, d, &in);
	ruf_report_input_free(&in);
	free(json);
	return rc;
}

static void
test_rejects_too_many_rows(void **state)
{
	ruf_diag d = {""};

	(void)state;
	assert_int_equal(parse_rows("casualties", ROW, 1000, &d), 0);
	assert_int_equal(parse_rows("casualties", ROW, 1001, &d), RUF_E_REPORT);
	assert_string_equal(d.msg, "casualties: at most 1000 entries");
	assert_int_equal(parse_rows("alleged_perpetrators", "{\"type\":\"unknown\"}", 201, &d),
	                 RUF_E_REPORT);
	assert_string_equal(d.msg, "alleged_perpetrators: at most 200 entries");
	assert_int_equal(parse_rows("affected_populations", "{\"group\":\"idp\"}", 201, &d),
	                 RUF_E_REPORT);
	assert_string_equal(d.msg, "affected_populations: at most 200 entries");
}

static void
test_rejects_json_over_size_limit_before_parsing(void **state)
{
	size_t len = RUF_REPORT_JSON_MAX + 1;
	char *json = malloc(len);
	struct ruf_report_input in;
	ruf_diag d = {""};

	(void)state;
	assert_non_null(json);
	memset(json, ' ', len);
	memcpy(json, "{" SITREP "}", strlen("{" SITREP "}"));
	assert_int_equal(ruf_report_from_json(json, len, NULL, &d, &in), RUF_E_TOO_LARGE);
	assert_null(in.report);
	free(json);
}

static void
test_empty_string_is_absent(void **state)
{
	const char *json = "{" SITREP ",\"region\":\"\",\"period_end\":\"\",\"text\":null}";
	const char *ok = "{" SITREP ",\"region\":\"\",\"period_end\":\"\"}";
	struct ruf_report_input in;
	ruf_diag d = {""};
	Ruf__Report *r;
	char *out;

	(void)state;
	assert_int_equal(ruf_report_from_json(json, strlen(json), NULL, &d, &in), RUF_E_REPORT);
	r = parse_ok(ok, strlen(ok));
	assert_string_equal(r->sitrep->region, "");
	assert_non_null(out = ruf_report_to_json(r, 0));
	assert_null(strstr(out, "region"));
	assert_null(strstr(out, "period_end"));
	free(out);
	free_report(r);
}

/* ---- attachments ---- */

static void
test_attachments_resolve_against_base_dir(void **state)
{
	const char *json = "{" SITREP ",\"attachments\":["
	                   "{\"path\":\"photos/market.jpg\",\"media_type\":\"image/jpeg\"},"
	                   "{\"path\":\"/srv/field/list.csv\",\"name\":\"names.csv\"}]}";
	struct ruf_report_input in;
	ruf_diag d = {""};

	(void)state;
	assert_int_equal(ruf_report_from_json(json, strlen(json), "/home/rc/reports", &d, &in), 0);
	assert_int_equal(in.n_attachments, 2);
	assert_string_equal(in.attachments[0].path, "/home/rc/reports/photos/market.jpg");
	assert_string_equal(in.attachments[0].name, "market.jpg");
	assert_string_equal(in.attachments[0].media_type, "image/jpeg");
	assert_string_equal(in.attachments[1].path, "/srv/field/list.csv");
	assert_string_equal(in.attachments[1].name, "names.csv");
	assert_null(in.attachments[1].media_type);
	ruf_report_input_free(&in);
	assert_null(in.report);

	assert_int_equal(ruf_report_from_json(json, strlen(json), NULL, &d, &in), 0);
	assert_string_equal(in.attachments[0].path, "photos/market.jpg");
	ruf_report_input_free(&in);
	ruf_report_input_free(NULL);
}

static void
test_attachment_count_is_bounded(void **state)
{
	char row[64];
	char *json = malloc(65 * 64 + 256), *p;
	struct ruf_report_input in;
	ruf_diag d = {""};

	(void)state;
	assert_non_null(json);
	p = json + sprintf(json, "{" SITREP ",\"attachments\":[");
	for (int i = 0; i <= RUF_REPORT_MAX_ATTACHMENTS; i++) {
		snprintf(row, sizeof(row), "%s{\"path\":\"f%d.jpg\"}", i ? "," : "", i);
		p += sprintf(p, "%s", row);
	}
	strcpy(p, "]}");
	assert_int_equal(ruf_report_from_json(json, strlen(json), NULL, &d, &in), RUF_E_REPORT);
	assert_string_equal(d.msg, "attachments: at most 64 entries");
	free(json);
}

/* ---- routing header ---- */

static const struct route_case {
	const char *json;
	int kind, risk;
	uint32_t flags;
	const char *region;
} route_cases[] = {
    {"{" SITREP "}", RUF_KIND_SITREP, RUF_RISK_HIGH, 0, ""},
    {"{" SITREP ",\"region\":\"east-africa\",\"escalate\":true}", RUF_KIND_SITREP, RUF_RISK_HIGH,
     RUF_FLAG_ESCALATION, "east-africa"},
    {"{" SITREP ",\"early_warning\":true,\"escalate\":false}", RUF_KIND_SITREP, RUF_RISK_HIGH,
     RUF_FLAG_EARLY_WARNING, ""},
    {"{" SITREP ",\"violation_categories\":[\"torture\"]}", RUF_KIND_SITREP, RUF_RISK_HIGH,
     RUF_FLAG_VIOLATIONS, ""},
    {"{" SITREP ",\"alleged_perpetrators\":[{\"type\":\"militia\"}]}", RUF_KIND_SITREP,
     RUF_RISK_HIGH, RUF_FLAG_VIOLATIONS, ""},
    /* Rows with only zero counts are not casualty figures. */
    {"{" SITREP ",\"casualties\":[{\"category\":\"other\",\"killed\":0}]}", RUF_KIND_SITREP,
     RUF_RISK_HIGH, 0, ""},
    {"{" SITREP ",\"casualties\":[{\"category\":\"other\"},{\"category\":\"torture\","
     "\"detained\":2}]}",
     RUF_KIND_SITREP, RUF_RISK_HIGH, RUF_FLAG_CASUALTIES, ""},
    {"{" SURGE "}", RUF_KIND_SURGE, RUF_RISK_LOW, 0, ""},
    {"{" SURGE ",\"risk\":\"ongoing\",\"region\":\"east-africa\"}", RUF_KIND_SURGE,
     RUF_RISK_ONGOING, 0, "east-africa"},
    {"{\"kind\":\"reply\",\"in_reply_to\":" MSGID ",\"status\":\"received\"}", RUF_KIND_REPLY,
     RUF_RISK_LOW, 0, ""},
};

static void
test_route_header_derivation(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(route_cases) / sizeof(route_cases[0]); i++) {
		const struct route_case *c = &route_cases[i];
		Ruf__Report *r = parse_ok(c->json, strlen(c->json));
		struct ruf_route_header h;

		assert_int_equal(ruf_report_route_header(r, &h), 0);
		if (h.kind != c->kind || h.risk != c->risk || h.flags != c->flags ||
		    strcmp(h.region, c->region) != 0)
			fail_msg("case %zu: kind %d risk %d flags %#x region %s", i, h.kind, h.risk,
			         h.flags, h.region);
		if (c->kind == RUF_KIND_REPLY) {
			assert_string_equal(h.situation, "");
			assert_string_equal(h.country, "");
		} else {
			assert_string_equal(h.situation, "darfur");
			assert_string_equal(h.country, "sd");
		}
		free_report(r);
	}
}

static void
test_example_route_headers(void **state)
{
	static const struct {
		const char *file, *situation, *country, *region;
		int kind, risk;
		uint32_t flags;
	} want[] = {
	    {"sitrep-darfur.json", "darfur", "sd", "east-africa", RUF_KIND_SITREP, RUF_RISK_HIGH,
	     RUF_FLAG_VIOLATIONS | RUF_FLAG_CASUALTIES | RUF_FLAG_ESCALATION},
	    {"sitrep-kivu-early-warning.json", "kivu", "cd", "great-lakes", RUF_KIND_SITREP,
	     RUF_RISK_ELEVATED, RUF_FLAG_VIOLATIONS | RUF_FLAG_EARLY_WARNING},
	    {"surge-darfur.json", "darfur", "sd", "east-africa", RUF_KIND_SURGE, RUF_RISK_HIGH, 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		size_t len;
		char *json = load_example(want[i].file, &len);
		Ruf__Report *r = parse_ok(json, len);
		struct ruf_route_header h;

		assert_int_equal(ruf_report_route_header(r, &h), 0);
		assert_int_equal(h.kind, want[i].kind);
		assert_int_equal(h.risk, want[i].risk);
		assert_int_equal(h.flags, want[i].flags);
		assert_string_equal(h.situation, want[i].situation);
		assert_string_equal(h.country, want[i].country);
		assert_string_equal(h.region, want[i].region);
		free_report(r);
		free(json);
	}
}

/* The examples reach the desks DESIGN.md says they should under the example policy. */
static void
test_examples_route_through_example_policy(void **state)
{
	static const struct {
		const char *file, *queues;
	} want[] = {
	    {"sitrep-darfur.json", "hrt itf.darfur sag"},
	    {"sitrep-kivu-early-warning.json", "hrt itf.kivu rqr.great-lakes"},
	    {"surge-darfur.json", "itf.darfur sag surge"},
	};
	uint8_t *text;
	size_t tlen;
	ruf_policy *pol;
	ruf_diag d = {""};

	(void)state;
	assert_int_equal(
	    ruf_file_read(RUF_SOURCE_DIR "/certs-example/policy.txt", 1 << 20, &text, &tlen), 0);
	if (ruf_policy_compile((const char *)text, tlen, &d, &pol) != 0)
		fail_msg("policy: %s", d.msg);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		size_t len;
		char *json = load_example(want[i].file, &len), got[256] = "";
		Ruf__Report *r = parse_ok(json, len);
		struct ruf_route_header h;
		struct ruf_queue_set qs;

		assert_int_equal(ruf_report_route_header(r, &h), 0);
		assert_int_equal(ruf_route_eval(pol, &h, &qs), 0);
		for (size_t q = 0; q < qs.n; q++) {
			if (q > 0)
				strcat(got, " ");
			strcat(got, qs.names[q]);
		}
		assert_string_equal(got, want[i].queues);
		free_report(r);
		free(json);
	}
	ruf_policy_free(pol);
	free(text);
}

/* ---- protobuf ---- */

static void
encode_example(const char *file, uint8_t **buf, size_t *len)
{
	size_t jlen;
	char *json = load_example(file, &jlen);
	Ruf__Report *r = parse_ok(json, jlen);

	assert_int_equal(ruf_report_encode(r, buf, len), 0);
	free_report(r);
	free(json);
}

static void
test_decode_rejects_non_canonical_protobuf(void **state)
{
	uint8_t *buf, *alt;
	size_t len;
	Ruf__Report *r;

	(void)state;
	encode_example("surge-darfur.json", &buf, &len);
	assert_int_equal(buf[0], 0x08); /* format = 1 comes first */
	assert_int_equal(buf[1], 0x01);
	assert_non_null(alt = malloc(len + 2));

	/* Fields out of order: format moved after the body. */
	memcpy(alt, buf + 2, len - 2);
	memcpy(alt + len - 2, buf, 2);
	assert_int_equal(ruf_report_decode(alt, len, &r), RUF_E_FORMAT);
	assert_null(r);

	/* Non-minimal varint for format (0x81 0x00 = 1). */
	alt[0] = 0x08;
	alt[1] = 0x81;
	alt[2] = 0x00;
	memcpy(alt + 3, buf + 2, len - 2);
	assert_int_equal(ruf_report_decode(alt, len + 1, &r), RUF_E_FORMAT);

	/* An unknown field (15, varint) appended. */
	memcpy(alt, buf, len);
	alt[len] = 0x78;
	alt[len + 1] = 0x01;
	assert_int_equal(ruf_report_decode(alt, len + 2, &r), RUF_E_FORMAT);

	/* A repeated field: format written twice. */
	alt[0] = 0x08;
	alt[1] = 0x01;
	memcpy(alt + 2, buf, len);
	assert_int_equal(ruf_report_decode(alt, len + 2, &r), RUF_E_FORMAT);

	/* Truncated. */
	assert_int_equal(ruf_report_decode(buf, len - 1, &r), RUF_E_FORMAT);

	/* Too large, refused before parsing. */
	assert_int_equal(ruf_report_decode(buf, RUF_REPORT_PB_MAX + 1, &r), RUF_E_TOO_LARGE);

	assert_int_equal(ruf_report_decode(buf, len, &r), 0);
	free_report(r);
	free(alt);
	free(buf);
}

/*
 * Known answers computed by hand from the field numbers in report.proto, so
 * they pin the wire format independently of the code under test.
 */
static const struct {
	const char *json, *hex;
} kat[] = {
    {"{\"kind\":\"reply\",\"in_reply_to\":\"00112233445566778899AABBCCDDEEFF\","
     "\"status\":\"approved\"}",
     /* format=1; reply(4){in_reply_to(1)=16 bytes; status(2)="approved"} */
     "0801"
     "221c"
     "0a1000112233445566778899aabbccddeeff"
     "1208617070726f766564"},
    {"{\"kind\":\"sitrep\",\"situation\":\"darfur\",\"country\":\"sd\",\"risk\":\"high\","
     "\"title\":\"t\",\"summary\":\"s\",\"period_start\":\"2026-11-01\",\"escalate\":true,"
     "\"early_warning\":false,\"casualties\":[{\"category\":\"killing\",\"killed\":3}]}",
     /* format=1; sitrep(2){situation(1) country(2) risk(4)=3 escalate(6)=1 title(7)
      * period_start(8) summary(10) casualties(14){category(3) killed(4)=3}} */
     "0801"
     "122f"
     "0a06646172667572"
     "12027364"
     "2003"
     "3001"
     "3a0174"
     "420a323032362d31312d3031"
     "520173"
     "720b"
     "1a076b696c6c696e67"
     "2003"},
    {"{\"kind\":\"surge\",\"situation\":\"kivu\",\"country\":\"cd\",\"expertise\":"
     "[\"political\",\"other\"],\"staff_count\":300,\"duration_days\":1,\"justification\":"
     "\"j\"}",
     /* format=1; surge(3){situation(1) country(2) expertise(6)x2 staff_count(7)=300
      * duration_days(8)=1 justification(11)} */
     "0801"
     "1a24"
     "0a046b697675"
     "12026364"
     "3209706f6c69746963616c"
     "32056f74686572"
     "38ac02"
     "4001"
     "5a016a"},
};

static void
test_encoding_matches_hand_computed_bytes(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(kat) / sizeof(kat[0]); i++) {
		Ruf__Report *r = parse_ok(kat[i].json, strlen(kat[i].json)), *back;
		size_t len, want_len = strlen(kat[i].hex) / 2;
		uint8_t *buf, want[128];

		assert_true(want_len <= sizeof(want));
		assert_int_equal(ruf_unhex(kat[i].hex, want, want_len), 0);
		assert_int_equal(ruf_report_encode(r, &buf, &len), 0);
		assert_int_equal(len, want_len);
		assert_memory_equal(buf, want, len);
		assert_int_equal(ruf_report_decode(want, want_len, &back), 0);
		free_report(back);
		free(buf);
		free_report(r);
	}
}

/* Packs r without validation, as a hostile sender could. */
static uint8_t *
pack_raw(const Ruf__Report *r, size_t *len)
{
	uint8_t *buf;

	*len = protobuf_c_message_get_packed_size(&r->base);
	assert_non_null(buf = malloc(*len + 1));
	assert_int_equal(protobuf_c_message_pack(&r->base, buf), *len);
	return buf;
}

static void
assert_decode_invalid(const Ruf__Report *r, const char *msg)
{
	size_t len;
	uint8_t *buf = pack_raw(r, &len), *enc;
	size_t elen;
	Ruf__Report *out;
	ruf_diag d = {""};

	assert_int_equal(ruf_report_decode(buf, len, &out), RUF_E_REPORT);
	assert_null(out);
	assert_int_equal(ruf_report_validate(r, &d), RUF_E_REPORT);
	if (strncmp(d.msg, msg, strlen(msg)) != 0)
		fail_msg("got \"%s\", want \"%s...\"", d.msg, msg);
	/* Nothing invalid is ever encoded for sealing either. */
	assert_int_equal(ruf_report_encode(r, &enc, &elen), RUF_E_REPORT);
	free(buf);
}

static void
test_decode_rejects_invalid_report(void **state)
{
	Ruf__Report r = RUF__REPORT__INIT;
	Ruf__SituationReport s = RUF__SITUATION_REPORT__INIT;
	Ruf__CasualtyFigure c = RUF__CASUALTY_FIGURE__INIT, *cs[1] = {&c};
	Ruf__Reply rp = RUF__REPLY__INIT;
	uint8_t id[8] = {1, 2, 3, 4, 5, 6, 7, 8};

	(void)state;
	r.format = 1;
	assert_decode_invalid(&r, "kind: required");

	r.body_case = RUF__REPORT__BODY_SITREP;
	r.sitrep = &s;
	s.situation = "darfur";
	s.country = "sd";
	s.risk = 3;
	s.title = "t";
	s.summary = "s";
	s.period_start = "2026-11-01";
	{
		uint8_t *buf;
		size_t len;
		Ruf__Report *out;

		buf = pack_raw(&r, &len);
		assert_int_equal(ruf_report_decode(buf, len, &out), 0);
		free_report(out);
		free(buf);
	}
	r.format = 2;
	assert_decode_invalid(&r, "format: unsupported report format 2");
	r.format = 1;
	s.risk = 9;
	assert_decode_invalid(&r, "risk: must be one of low, elevated, high, ongoing");
	s.risk = 3;
	s.title = "a\x1b[2Jb";
	assert_decode_invalid(&r, "title: must be one line without control characters");
	s.title = "t";
	s.n_casualties = 1;
	s.casualties = cs;
	c.category = "killing";
	c.killed = 2000000000;
	assert_decode_invalid(&r,
	                      "casualties[0].killed: must be a whole number from 0 to 1000000000");
	c.killed = 1;
	s.period_end = "2026-10-01";
	assert_decode_invalid(&r, "period_end: must not be before period_start");

	r.body_case = RUF__REPORT__BODY_REPLY;
	r.reply = &rp;
	rp.status = "approved";
	rp.in_reply_to.data = id;
	rp.in_reply_to.len = sizeof(id);
	assert_decode_invalid(&r, "in_reply_to: must be a message id (32 hex digits)");
}

/* ---- rendering ---- */

static char *
render(const Ruf__Report *r)
{
	char *out = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&out, &len);

	assert_non_null(fp);
	ruf_report_render(r, fp);
	assert_int_equal(fclose(fp), 0);
	return out;
}

/* The line of text that contains needle. */
static char *
line_with(const char *text, const char *needle, char *out, size_t outlen)
{
	const char *p = strstr(text, needle), *b, *e;

	assert_non_null(p);
	for (b = p; b > text && b[-1] != '\n'; b--)
		;
	e = strchr(p, '\n');
	assert_non_null(e);
	assert_true((size_t)(e - b) < outlen);
	memcpy(out, b, (size_t)(e - b));
	out[e - b] = '\0';
	return out;
}

/* Column just past the end of the first occurrence of word in line. */
static size_t
end_col(const char *line, const char *word)
{
	const char *p = strstr(line, word);

	assert_non_null(p);
	return (size_t)(p - line) + strlen(word);
}

static void
test_render_shows_casualty_table(void **state)
{
	size_t len;
	char *json = load_example("sitrep-darfur.json", &len);
	Ruf__Report *r = parse_ok(json, len);
	char *out = render(r), head[512], row[512], total[512];

	(void)state;
	{
		static const char *const want[] = {"SITUATION REPORT",
		                                   "Casualty figures",
		                                   "Um Sidr village",
		                                   "Karkor village",
		                                   "arbitrary-detention",
		                                   "Alleged perpetrators",
		                                   "Fictional Armed Group A",
		                                   "Affected populations",
		                                   "Gender impacts",
		                                   "Recommended preventive measures",
		                                   "Support requested",
		                                   "REQUESTED",
		                                   "east-africa",
		                                   "12000 displaced"};
		for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
			if (strstr(out, want[i]) == NULL)
				fail_msg("render lacks \"%s\":\n%s", want[i], out);
	}
	line_with(out, "KILLED", head, sizeof(head));
	line_with(out, "Um Sidr village", row, sizeof(row));
	line_with(out, "TOTAL", total, sizeof(total));
	/* Counts are right-aligned under their headings; totals are the column sums. */
	assert_int_equal(end_col(row, " 37"), end_col(head, "KILLED"));
	assert_int_equal(end_col(row, " 52"), end_col(head, "INJURED"));
	assert_int_equal(end_col(row, " 14"), end_col(head, "MISSING"));
	assert_int_equal(end_col(total, " 48"), end_col(head, "KILLED"));
	assert_int_equal(end_col(total, " 75"), end_col(head, "INJURED"));
	assert_int_equal(end_col(total, " 20"), end_col(head, "MISSING"));
	assert_int_equal(end_col(total, " 64"), end_col(head, "DETAINED"));
	assert_null(strstr(out, " \n"));
	/* Text columns are left-aligned. */
	assert_int_equal(end_col(row, "medium") - 6, end_col(head, "CONFIDENCE") - 10);
	assert_int_equal(end_col(row, "Um Sidr") - 7, end_col(head, "LOCATION") - 8);
	free(out);
	free_report(r);
	free(json);
}

static void
test_render_and_title_neutralise_control_characters(void **state)
{
	Ruf__Report r = RUF__REPORT__INIT;
	Ruf__SituationReport s = RUF__SITUATION_REPORT__INIT;
	char title[128], *out;

	(void)state;
	r.format = 1;
	r.body_case = RUF__REPORT__BODY_SITREP;
	r.sitrep = &s;
	s.situation = "dar\x1b]0;x\afur";
	s.title = "a\x1b[2Jb";
	s.summary = "line one\nline\x1b[31m two\xc2\x9b";
	s.period_start = "2026-11-01";
	out = render(&r);
	assert_null(strchr(out, 0x1b));
	assert_null(strchr(out, 0x07));
	assert_null(strstr(out, "\xc2\x9b"));
	assert_non_null(strstr(out, "a?[2Jb"));
	assert_non_null(strstr(out, "  line one\n  line?[31m two?\n"));
	free(out);
	ruf_report_title(&r, title, sizeof(title));
	assert_null(strchr(title, 0x1b));
	assert_string_equal(title, "Situation report: dar?]0;x?fur, from 2026-11-01");
}

/* Terminal columns of a rendered line: the test text's CJK (U+4E00..) is wide. */
static size_t
cols_of(const char *b, const char *e)
{
	size_t c = 0;

	for (const unsigned char *p = (const unsigned char *)b; p < (const unsigned char *)e; p++) {
		if ((*p & 0xc0) == 0x80)
			continue;
		c += *p >= 0xe0 ? 2 : 1;
	}
	return c;
}

/* s without blanks and newlines, for comparing text across line breaks. */
static char *
squeeze(const char *s)
{
	char *o = malloc(strlen(s) + 1), *q = o;

	assert_non_null(o);
	for (; *s; s++)
		if (*s != ' ' && *s != '\n')
			*q++ = *s;
	*q = '\0';
	return o;
}

static void
test_render_wraps_narrative_to_78_columns(void **state)
{
	Ruf__Report r = RUF__REPORT__INIT;
	Ruf__SituationReport s = RUF__SITUATION_REPORT__INIT;
	char summary[4096], *out, *a, *b;
	const char *sec, *end;
	size_t n = 0, lines = 0;

	(void)state;
	/* Latin prose, an empty line, CJK without blanks, an overlong token. */
	for (int i = 0; i < 40; i++)
		n += (size_t)snprintf(summary + n, sizeof(summary) - n, "word%02d ", i);
	n += (size_t)snprintf(summary + n, sizeof(summary) - n, "\n\n");
	for (int i = 0; i < 60; i++)
		n += (size_t)snprintf(summary + n, sizeof(summary) - n, "\xe4\xba\xba");
	n += (size_t)snprintf(summary + n, sizeof(summary) - n, "\n");
	for (int i = 0; i < 200; i++)
		summary[n++] = (char)('a' + i % 26);
	summary[n] = '\0';
	r.format = 1;
	r.body_case = RUF__REPORT__BODY_SITREP;
	r.sitrep = &s;
	s.situation = "darfur";
	s.period_start = "2026-11-01";
	s.summary = summary;
	out = render(&r);
	/* The summary section: from its first indented line to the next heading. */
	assert_non_null(sec = strstr(out, "  word00 "));
	end = strstr(sec, "\n\n\n");
	if (end == NULL)
		end = sec + strlen(sec);
	for (const char *l = sec; l < end;) {
		const char *e = memchr(l, '\n', (size_t)(end - l));
		if (e == NULL)
			e = end;
		if (cols_of(l, e) > 78)
			fail_msg("line of %zu columns: %.*s", cols_of(l, e), (int)(e - l), l);
		if (e > l) {
			assert_memory_equal(l, "  ", 2); /* every line indented */
			assert_true(e[-1] != ' ');       /* no trailing blanks */
		}
		lines++;
		l = e + 1;
	}
	assert_true(lines >= 9); /* 280 + 120 + 200 columns do not fit in fewer */
	/* Nothing lost or reordered, the empty line kept. */
	assert_non_null(strstr(sec, "word39\n\n"));
	{
		char *sub = strndup(sec, (size_t)(end - sec));
		a = squeeze(summary);
		b = squeeze(sub);
		free(sub);
	}
	assert_string_equal(a, b);
	free(a);
	free(b);
	free(out);
}

static void
test_titles(void **state)
{
	static const struct {
		const char *file, *title;
	} want[] = {
	    {"sitrep-darfur.json", "Situation report: darfur, 2026-11-01..2026-11-07"},
	    {"sitrep-kivu-early-warning.json", "Situation report: kivu, 2026-11-10..2026-11-20"},
	    {"surge-darfur.json", "Surge request: darfur, 4 staff for 90 days"},
	};
	char title[128];
	Ruf__Report *r;

	(void)state;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		size_t len;
		char *json = load_example(want[i].file, &len);

		r = parse_ok(json, len);
		ruf_report_title(r, title, sizeof(title));
		assert_string_equal(title, want[i].title);
		/* Truncation keeps a terminated string. */
		ruf_report_title(r, title, 10);
		assert_int_equal(strlen(title), 9);
		assert_memory_equal(title, want[i].title, 9);
		free_report(r);
		free(json);
	}
	r = parse_ok(reply_json, strlen(reply_json));
	ruf_report_title(r, title, sizeof(title));
	assert_string_equal(title, "Reply to 00112233445566778899aabbccddeeff: approved");
	free_report(r);
}

static void
test_render_surge_and_reply(void **state)
{
	size_t len;
	char *json = load_example("surge-darfur.json", &len), *out;
	Ruf__Report *r = parse_ok(json, len);

	(void)state;
	out = render(r);
	assert_non_null(strstr(out, "SURGE REQUEST"));
	assert_non_null(strstr(out, "4\n"));
	assert_non_null(strstr(out, "90 days"));
	assert_non_null(strstr(out, "  - human-rights\n  - protection\n"));
	assert_non_null(strstr(out, "Justification\n-------------\n  EXAMPLE - fictional."));
	assert_non_null(strstr(out, "Funding details"));
	free(out);
	free_report(r);
	free(json);

	r = parse_ok(reply_json, strlen(reply_json));
	out = render(r);
	assert_non_null(strstr(out, "00112233445566778899aabbccddeeff"));
	assert_non_null(strstr(out, "approved"));
	assert_non_null(strstr(out, "Four officers approved"));
	free(out);
	free_report(r);
}

/*
 * Not a check: with RUF_WRITE_CORPUS=DIR set, writes the fuzz seed corpora
 * (DIR/report_json/, DIR/report_pb/) from the examples.
 */
static void
write_seed(const char *dir, const char *sub, const char *name, const void *buf, size_t len)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	assert_int_equal(ruf_mkdirs(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
	assert_int_equal(ruf_file_write_atomic(path, buf, len, 0644, false), 0);
}

static void
test_write_corpus_when_asked(void **state)
{
	const char *dir = getenv("RUF_WRITE_CORPUS");
	static const char *const extra[] = {
	    "{" SURGE "}", reply_json,
	    "{" SITREP ",\"attachments\":[{\"path\":\"photos/market.jpg\",\"media_type\":"
	    "\"image/jpeg\"},{\"path\":\"/srv/list.csv\",\"name\":\"names.csv\"}]}"};

	(void)state;
	if (dir == NULL)
		skip();
	for (size_t i = 0; i < 3 + sizeof(extra) / sizeof(extra[0]); i++) {
		char name[64], *json;
		size_t len;
		Ruf__Report *r;
		uint8_t *pb;
		size_t pblen;

		if (i < 3) {
			json = load_example(example_files[i], &len);
		} else {
			json = strdup(extra[i - 3]);
			len = strlen(json);
		}
		r = parse_ok(json, len);
		assert_int_equal(ruf_report_encode(r, &pb, &pblen), 0);
		snprintf(name, sizeof(name), "seed-%zu.json", i);
		write_seed(dir, "report_json", name, json, len);
		snprintf(name, sizeof(name), "seed-%zu.pb", i);
		write_seed(dir, "report_pb", name, pb, pblen);
		free(pb);
		free_report(r);
		free(json);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_examples_parse_and_round_trip),
	    cmocka_unit_test(test_examples_are_marked_fictional),
	    cmocka_unit_test(test_json_output_names_every_proto_field),
	    cmocka_unit_test(test_validation_errors_name_their_field),
	    cmocka_unit_test(test_duplicate_key_is_named),
	    cmocka_unit_test(test_length_limits_count_characters),
	    cmocka_unit_test(test_rejects_too_many_rows),
	    cmocka_unit_test(test_rejects_json_over_size_limit_before_parsing),
	    cmocka_unit_test(test_empty_string_is_absent),
	    cmocka_unit_test(test_attachments_resolve_against_base_dir),
	    cmocka_unit_test(test_attachment_count_is_bounded),
	    cmocka_unit_test(test_route_header_derivation),
	    cmocka_unit_test(test_example_route_headers),
	    cmocka_unit_test(test_examples_route_through_example_policy),
	    cmocka_unit_test(test_encoding_matches_hand_computed_bytes),
	    cmocka_unit_test(test_decode_rejects_non_canonical_protobuf),
	    cmocka_unit_test(test_decode_rejects_invalid_report),
	    cmocka_unit_test(test_render_shows_casualty_table),
	    cmocka_unit_test(test_render_and_title_neutralise_control_characters),
	    cmocka_unit_test(test_render_wraps_narrative_to_78_columns),
	    cmocka_unit_test(test_titles),
	    cmocka_unit_test(test_render_surge_and_reply),
	    cmocka_unit_test(test_write_corpus_when_asked),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
