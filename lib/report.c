/*
 * report.c - report schemas: JSON <-> protobuf, validation, the routing
 * header a report implies, terminal rendering.
 *
 * One table per protobuf message (below) names every field, the rule its
 * value must satisfy and whether it is required. The same tables drive the
 * JSON parser (types and ranges), ruf_report_validate (the semantic checks,
 * run on every Report whichever way it arrived), JSON output and rendering,
 * so the JSON and protobuf paths cannot drift apart. JSON keys are the proto
 * field names; a test checks that the tables cover every descriptor field.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "pb.h"
#include "report.h"
#include "util.h"

/* Limits (docs/REPORTS.md). Lengths are in characters (Unicode code points). */
#define SHORT_MAX 200u
#define TEXT_MAX 65536u
#define COUNT_MAX 1000000000u
#define PATH_MAX_BYTES 4096u
#define NAME_MAX_BYTES 255u
#define MEDIA_TYPE_MAX 127u
#define MSGID_BYTES 16u
/* Longest field path in a message ("affected_populations[199].description"). */
#define FIELD_PATH_MAX 96

static const char *const categories[] = {"killing",
                                         "torture",
                                         "sexual-violence",
                                         "arbitrary-detention",
                                         "enforced-disappearance",
                                         "displacement",
                                         "attack-on-civilians",
                                         "recruitment-of-children",
                                         "hate-speech",
                                         "restriction-of-freedoms",
                                         "denial-of-humanitarian-access",
                                         "destruction-of-property",
                                         "other",
                                         NULL};
static const char *const groups[] = {"civilians",   "children",
                                     "women",       "idp",
                                     "refugees",    "minority",
                                     "journalists", "human-rights-defenders",
                                     "detainees",   "humanitarian-workers",
                                     "other",       NULL};
static const char *const confidences[] = {"low", "medium", "high", NULL};
static const char *const perpetrator_types[] = {"state-security", "armed-group", "militia",
                                                "unknown",        "other",       NULL};
static const char *const expertises[] = {"human-rights", "political", "protection", "other", NULL};
static const char *const fundings[] = {"covered", "partially-covered", "requested", "unknown",
                                       NULL};
static const char *const statuses[] = {"received", "under-review", "approved",
                                       "declined", "deployed",     NULL};

enum rule {
	R_IDENT,   /* ruf_is_ident */
	R_COUNTRY, /* two letters a-z */
	R_SHORT,   /* one line, SHORT_MAX characters */
	R_TEXT,    /* narrative: lines, TEXT_MAX characters */
	R_DATE,    /* YYYY-MM-DD */
	R_ENUM,    /* one of values */
	R_RISK,    /* uint32 enum ruf_risk; a name in JSON */
	R_BOOL,
	R_COUNT,   /* uint32/uint64 in [min, max] */
	R_MSGID,   /* 16 bytes; 32 hex digits in JSON */
	R_MESSAGE, /* repeated sub-message */
};

struct schema;

struct field_rule {
	const char *name; /* proto field name = JSON key */
	enum rule rule;
	bool required;
	uint64_t min, max;         /* R_COUNT */
	size_t max_items;          /* repeated fields */
	const char *const *values; /* R_ENUM, NULL-terminated */
	const struct schema *sub;  /* R_MESSAGE */
};

struct schema {
	const ProtobufCMessageDescriptor *desc;
	const struct field_rule *fields;
	size_t n_fields;
};

#define SCHEMA(d, f)                                                                               \
	{                                                                                          \
		&(d), (f), sizeof(f) / sizeof((f)[0])                                              \
	}
#define COUNT(n)                                                                                   \
	{                                                                                          \
		.name = (n), .rule = R_COUNT, .max = COUNT_MAX                                     \
	}

static const struct field_rule casualty_fields[] = {
    {.name = "date", .rule = R_DATE},
    {.name = "location", .rule = R_SHORT},
    {.name = "category", .rule = R_ENUM, .required = true, .values = categories},
    COUNT("killed"),
    COUNT("injured"),
    COUNT("missing"),
    COUNT("detained"),
    {.name = "group", .rule = R_ENUM, .values = groups},
    {.name = "source", .rule = R_SHORT},
    {.name = "confidence", .rule = R_ENUM, .values = confidences},
};
static const struct schema casualty_schema =
    SCHEMA(ruf__casualty_figure__descriptor, casualty_fields);

static const struct field_rule perpetrator_fields[] = {
    {.name = "name", .rule = R_SHORT},
    {.name = "type", .rule = R_ENUM, .required = true, .values = perpetrator_types},
    {.name = "description", .rule = R_TEXT},
};
static const struct schema perpetrator_schema =
    SCHEMA(ruf__perpetrator__descriptor, perpetrator_fields);

static const struct field_rule population_fields[] = {
    {.name = "group", .rule = R_ENUM, .required = true, .values = groups},
    COUNT("number"),
    COUNT("displaced"),
    {.name = "location", .rule = R_SHORT},
    {.name = "description", .rule = R_TEXT},
};
static const struct schema population_schema =
    SCHEMA(ruf__affected_population__descriptor, population_fields);

static const struct field_rule sitrep_fields[] = {
    {.name = "situation", .rule = R_IDENT, .required = true},
    {.name = "country", .rule = R_COUNTRY, .required = true},
    {.name = "region", .rule = R_IDENT},
    {.name = "risk", .rule = R_RISK, .required = true},
    {.name = "early_warning", .rule = R_BOOL},
    {.name = "escalate", .rule = R_BOOL},
    {.name = "title", .rule = R_SHORT, .required = true},
    {.name = "period_start", .rule = R_DATE, .required = true},
    {.name = "period_end", .rule = R_DATE},
    {.name = "summary", .rule = R_TEXT, .required = true},
    {.name = "human_rights_concerns", .rule = R_TEXT},
    {.name = "risks_of_serious_violations", .rule = R_TEXT},
    {.name = "violation_categories", .rule = R_ENUM, .max_items = 16, .values = categories},
    {.name = "casualties", .rule = R_MESSAGE, .max_items = 1000, .sub = &casualty_schema},
    {.name = "alleged_perpetrators",
     .rule = R_MESSAGE,
     .max_items = 200,
     .sub = &perpetrator_schema},
    {.name = "affected_populations",
     .rule = R_MESSAGE,
     .max_items = 200,
     .sub = &population_schema},
    {.name = "protection_concerns", .rule = R_TEXT},
    {.name = "gender_impacts", .rule = R_TEXT},
    {.name = "recommended_preventive_measures", .rule = R_TEXT},
    {.name = "recommended_responsive_measures", .rule = R_TEXT},
    {.name = "support_requested", .rule = R_TEXT},
};
static const struct schema sitrep_schema = SCHEMA(ruf__situation_report__descriptor, sitrep_fields);

static const struct field_rule surge_fields[] = {
    {.name = "situation", .rule = R_IDENT, .required = true},
    {.name = "country", .rule = R_COUNTRY, .required = true},
    {.name = "region", .rule = R_IDENT},
    {.name = "risk", .rule = R_RISK},
    {.name = "title", .rule = R_SHORT},
    {.name = "expertise", .rule = R_ENUM, .required = true, .max_items = 8, .values = expertises},
    {.name = "staff_count", .rule = R_COUNT, .required = true, .min = 1, .max = 500},
    {.name = "duration_days", .rule = R_COUNT, .required = true, .min = 1, .max = 730},
    {.name = "earliest_start", .rule = R_DATE},
    {.name = "location", .rule = R_SHORT},
    {.name = "justification", .rule = R_TEXT, .required = true},
    {.name = "security_conditions", .rule = R_TEXT},
    {.name = "funding", .rule = R_ENUM, .values = fundings},
    {.name = "funding_details", .rule = R_TEXT},
};
static const struct schema surge_schema = SCHEMA(ruf__surge_request__descriptor, surge_fields);

static const struct field_rule reply_fields[] = {
    {.name = "in_reply_to", .rule = R_MSGID, .required = true},
    {.name = "status", .rule = R_ENUM, .required = true, .values = statuses},
    {.name = "text", .rule = R_TEXT},
};
static const struct schema reply_schema = SCHEMA(ruf__reply__descriptor, reply_fields);

/* ---- helpers ---- */

static int __attribute__((format(printf, 3, 4)))
fail(ruf_diag *d, const char *path, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (path != NULL && *path != '\0')
		ruf_diag_set(d, "%s: %s", path, msg);
	else
		ruf_diag_set(d, "%s", msg);
	return RUF_E_REPORT;
}

/*
 * Field paths are short (the longest is about 40 bytes); one cut at
 * FIELD_PATH_MAX would still name the place, so truncation is accepted.
 */
static void
join(char *out, const char *prefix, const char *name)
{
	int n = *prefix == '\0' ? snprintf(out, FIELD_PATH_MAX, "%s", name)
	                        : snprintf(out, FIELD_PATH_MAX, "%s.%s", prefix, name);

	if (n < 0)
		out[0] = '\0';
}

static void
join_index(char *out, const char *prefix, size_t i)
{
	if (snprintf(out, FIELD_PATH_MAX, "%s[%zu]", prefix, i) < 0)
		out[0] = '\0';
}

/* Copies a key for an error message: at most 40 bytes, controls as '?'. */
static void
printable_key(const char *key, char out[48])
{
	size_t i;

	for (i = 0; key[i] != '\0' && i < 40; i++)
		out[i] = ((unsigned char)key[i] < 0x20 || key[i] == 0x7f) ? '?' : key[i];
	/* Cut back to a code point boundary so the message stays UTF-8. */
	if (key[i] != '\0')
		while (i > 0 && ((unsigned char)key[i] & 0xc0) == 0x80)
			i--;
	out[i] = '\0';
}

static const char *
list_values(const char *const *values, char *buf, size_t n)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; values[i] != NULL && used < n; i++) {
		int w = snprintf(buf + used, n - used, "%s%s", i ? ", " : "", values[i]);
		if (w < 0)
			break;
		used += (size_t)w;
	}
	return buf;
}

static bool
in_list(const char *const *values, const char *s)
{
	for (size_t i = 0; values[i] != NULL; i++)
		if (strcmp(values[i], s) == 0)
			return true;
	return false;
}

/* Risk names are route.h's (ruf_risk_name); v comes from a uint32 field. */
static const char *
risk_name(uint32_t v)
{
	return v <= RUF_RISK_ONGOING ? ruf_risk_name((int)v) : NULL;
}

static const struct field_rule *
find_rule(const struct schema *sc, const char *name)
{
	for (size_t i = 0; i < sc->n_fields; i++)
		if (strcmp(sc->fields[i].name, name) == 0)
			return &sc->fields[i];
	return NULL;
}

static const ProtobufCFieldDescriptor *
field_of(const struct schema *sc, const struct field_rule *fr)
{
	const ProtobufCFieldDescriptor *f =
	    protobuf_c_message_descriptor_get_field_by_name(sc->desc, fr->name);

	/* The tables and report.proto are written together; a miss is a bug. */
	if (f == NULL)
		abort();
	return f;
}

static void *
member(const void *m, unsigned offset)
{
	return (char *)m + offset;
}

static uint64_t
get_uint(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	if (f->type == PROTOBUF_C_TYPE_UINT64)
		return *(const uint64_t *)member(m, f->offset);
	return *(const uint32_t *)member(m, f->offset);
}

static bool
is_date(const char *s)
{
	static const unsigned mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	unsigned y, m, dd, lim;

	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return false;
	for (int i = 0; i < 10; i++)
		if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
			return false;
	y = (unsigned)((s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0'));
	m = (unsigned)((s[5] - '0') * 10 + (s[6] - '0'));
	dd = (unsigned)((s[8] - '0') * 10 + (s[9] - '0'));
	if (y < 1900 || m < 1 || m > 12 || dd < 1)
		return false;
	lim = mdays[m - 1];
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		lim = 29;
	return dd <= lim;
}

/*
 * Checks free text: valid UTF-8, at most maxchars code points, and no control
 * characters (C0, DEL, C1) except newline and tab in narrative text, so a
 * report cannot carry terminal escape sequences to a desk.
 */
static const char *
text_problem(const char *s, size_t maxchars, bool multiline)
{
	size_t len = strlen(s), chars = 0;
	const unsigned char *p = (const unsigned char *)s;

	if (!ruf_utf8_valid(s, len))
		return "must be valid UTF-8";
	for (size_t i = 0; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			chars++;
		if (p[i] < 0x20 && !(multiline && (p[i] == '\n' || p[i] == '\t')))
			return multiline ? "must not contain control characters other than newline "
			                   "and tab"
			                 : "must be one line without control characters";
		if (p[i] == 0x7f || (p[i] == 0xc2 && i + 1 < len && p[i + 1] < 0xa0))
			return "must not contain control characters";
	}
	if (chars > maxchars)
		return maxchars == SHORT_MAX ? "must be at most 200 characters"
		                             : "must be at most 65536 characters";
	return NULL;
}

static bool
is_country(const char *s)
{
	return strlen(s) == 2 && s[0] >= 'a' && s[0] <= 'z' && s[1] >= 'a' && s[1] <= 'z';
}

/* ---- validation (both paths) ---- */

static int validate_msg(const struct schema *sc, const ProtobufCMessage *m, const char *prefix,
                        ruf_diag *d);

/* A non-empty string value against its rule. */
static int
check_string(const struct field_rule *fr, const char *s, const char *path, ruf_diag *d)
{
	const char *why;
	char buf[240];

	switch (fr->rule) {
	case R_IDENT:
		if (!ruf_is_ident(s))
			return fail(d, path,
			            "must be an identifier: 1 to 32 of a-z, 0-9 and '-', not "
			            "starting with '-'");
		return 0;
	case R_COUNTRY:
		if (!is_country(s))
			return fail(
			    d, path,
			    "must be an ISO 3166-1 alpha-2 code in lower case, e.g. \"sd\"");
		return 0;
	case R_DATE:
		if (!is_date(s))
			return fail(d, path, "must be a date YYYY-MM-DD (year 1900 or later)");
		return 0;
	case R_ENUM:
		if (!in_list(fr->values, s))
			return fail(d, path, "must be one of %s",
			            list_values(fr->values, buf, sizeof(buf)));
		return 0;
	case R_SHORT:
	case R_TEXT:
		why =
		    text_problem(s, fr->rule == R_SHORT ? SHORT_MAX : TEXT_MAX, fr->rule == R_TEXT);
		return why != NULL ? fail(d, path, "%s", why) : 0;
	default:
		abort();
	}
}

static bool
is_string_rule(enum rule r)
{
	return r == R_IDENT || r == R_COUNTRY || r == R_SHORT || r == R_TEXT || r == R_DATE ||
	       r == R_ENUM;
}

static int
check_repeated(const struct field_rule *fr, const ProtobufCFieldDescriptor *f,
               const ProtobufCMessage *m, const char *path, ruf_diag *d)
{
	size_t n = *(const size_t *)member(m, f->quantifier_offset);
	void *const *arr = *(void *const *const *)member(m, f->offset);
	char ipath[FIELD_PATH_MAX];
	int rc;

	if (n == 0)
		return fr->required ? fail(d, path, "required (at least one entry)") : 0;
	if (n > fr->max_items)
		return fail(d, path, "at most %zu entries", fr->max_items);
	for (size_t i = 0; i < n; i++) {
		join_index(ipath, path, i);
		if (fr->rule == R_MESSAGE) {
			if ((rc = validate_msg(fr->sub, arr[i], ipath, d)) != 0)
				return rc;
			continue;
		}
		if (*(const char *)arr[i] == '\0')
			return fail(d, ipath, "must not be empty");
		if ((rc = check_string(fr, arr[i], ipath, d)) != 0)
			return rc;
		/* A list of names is a set: a repeat is a mistake worth naming. */
		for (size_t j = 0; j < i; j++)
			if (strcmp(arr[i], arr[j]) == 0)
				return fail(d, ipath, "\"%s\" is listed twice",
				            (const char *)arr[i]);
	}
	return 0;
}

static int
check_field(const struct schema *sc, const struct field_rule *fr, const ProtobufCMessage *m,
            const char *path, ruf_diag *d)
{
	const ProtobufCFieldDescriptor *f = field_of(sc, fr);
	const ProtobufCBinaryData *bd;
	const char *s;
	uint64_t v;

	if (f->label == PROTOBUF_C_LABEL_REPEATED)
		return check_repeated(fr, f, m, path, d);
	if (is_string_rule(fr->rule)) {
		s = *(const char *const *)member(m, f->offset);
		if (s == NULL || *s == '\0')
			return fr->required ? fail(d, path, "required") : 0;
		return check_string(fr, s, path, d);
	}
	switch (fr->rule) {
	case R_RISK:
		v = get_uint(m, f);
		if (v == 0)
			return fr->required ? fail(d, path, "required") : 0;
		if (risk_name((uint32_t)v) == NULL)
			return fail(d, path, "must be one of low, elevated, high, ongoing");
		return 0;
	case R_BOOL:
		return 0;
	case R_COUNT:
		v = get_uint(m, f);
		if (v == 0 && fr->required)
			return fail(d, path, "required");
		if (v < fr->min || v > fr->max)
			return fail(d, path, "must be a whole number from %" PRIu64 " to %" PRIu64,
			            fr->min, fr->max);
		return 0;
	case R_MSGID:
		bd = member(m, f->offset);
		if (bd->len == 0)
			return fr->required ? fail(d, path, "required") : 0;
		if (bd->len != MSGID_BYTES)
			return fail(d, path, "must be a message id (32 hex digits)");
		return 0;
	default:
		abort();
	}
}

static int
validate_msg(const struct schema *sc, const ProtobufCMessage *m, const char *prefix, ruf_diag *d)
{
	char path[FIELD_PATH_MAX];
	int rc;

	if (m == NULL || m->descriptor != sc->desc)
		return fail(d, prefix, "missing");
	for (size_t i = 0; i < sc->n_fields; i++) {
		join(path, prefix, sc->fields[i].name);
		if ((rc = check_field(sc, &sc->fields[i], m, path, d)) != 0)
			return rc;
	}
	return 0;
}

static const struct schema *
schema_of(Ruf__Report__BodyCase c)
{
	switch (c) {
	case RUF__REPORT__BODY_SITREP:
		return &sitrep_schema;
	case RUF__REPORT__BODY_SURGE:
		return &surge_schema;
	case RUF__REPORT__BODY_REPLY:
		return &reply_schema;
	default:
		return NULL;
	}
}

static const ProtobufCMessage *
body_of(const Ruf__Report *r)
{
	switch (r->body_case) {
	case RUF__REPORT__BODY_SITREP:
		return &r->sitrep->base;
	case RUF__REPORT__BODY_SURGE:
		return &r->surge->base;
	case RUF__REPORT__BODY_REPLY:
		return &r->reply->base;
	default:
		return NULL;
	}
}

int
ruf_report_validate(const Ruf__Report *r, ruf_diag *d)
{
	const struct schema *sc;
	int rc;

	if (r == NULL)
		return RUF_E_INVAL;
	if (r->format != RUF_REPORT_FORMAT)
		return fail(d, "format",
		            "unsupported report format %" PRIu32 " (this version reads %u)",
		            r->format, RUF_REPORT_FORMAT);
	if ((sc = schema_of(r->body_case)) == NULL)
		return fail(d, "kind", "required (the report has no body)");
	if ((rc = validate_msg(sc, body_of(r), "", d)) != 0)
		return rc;
	if (r->body_case == RUF__REPORT__BODY_SITREP && r->sitrep->period_end[0] != '\0' &&
	    strcmp(r->sitrep->period_end, r->sitrep->period_start) < 0)
		return fail(d, "period_end", "must not be before period_start (%s)",
		            r->sitrep->period_start);
	return 0;
}

/* ---- JSON -> protobuf ---- */

static int json_to_msg(const struct schema *sc, json_t *obj, ProtobufCMessage *m,
                       const char *prefix, const char *const *extra_keys, ruf_diag *d);

static ProtobufCMessage *
new_msg(const ProtobufCMessageDescriptor *desc)
{
	ProtobufCMessage *m = malloc(desc->sizeof_message);

	if (m != NULL)
		protobuf_c_message_init(desc, m);
	return m;
}

/* A JSON string for a string rule: NULL (after setting d) unless it is one. */
static int
json_string_copy(json_t *v, const char *path, ruf_diag *d, char **out)
{
	*out = NULL;
	if (!json_is_string(v))
		return fail(d, path, "must be a string");
	/* jansson rejects "\u0000" by default, so the length is the C length. */
	if ((*out = strdup(json_string_value(v))) == NULL)
		return RUF_E_NOMEM;
	return 0;
}

static int
json_to_repeated(const struct field_rule *fr, const ProtobufCFieldDescriptor *f, json_t *v,
                 ProtobufCMessage *m, const char *path, ruf_diag *d)
{
	size_t *count = member(m, f->quantifier_offset);
	void ***arrp = member(m, f->offset);
	char ipath[FIELD_PATH_MAX];
	size_t n;
	json_t *e;
	int rc;

	if (!json_is_array(v))
		return fail(d, path, "must be a list");
	if ((n = json_array_size(v)) == 0)
		return 0;
	if (n > fr->max_items)
		return fail(d, path, "at most %zu entries", fr->max_items);
	/* Filled one by one with *count kept exact, so a failure frees cleanly. */
	if ((*arrp = calloc(n, sizeof(void *))) == NULL)
		return RUF_E_NOMEM;
	for (size_t i = 0; i < n; i++) {
		e = json_array_get(v, i);
		join_index(ipath, path, i);
		if (fr->rule == R_MESSAGE) {
			ProtobufCMessage *sub;

			if (!json_is_object(e))
				return fail(d, ipath, "must be an object");
			if ((sub = new_msg(fr->sub->desc)) == NULL)
				return RUF_E_NOMEM;
			(*arrp)[(*count)++] = sub;
			if ((rc = json_to_msg(fr->sub, e, sub, ipath, NULL, d)) != 0)
				return rc;
		} else {
			char *s;

			if ((rc = json_string_copy(e, ipath, d, &s)) != 0)
				return rc;
			(*arrp)[(*count)++] = s;
		}
	}
	return 0;
}

static int
json_to_field(const struct schema *sc, const struct field_rule *fr, json_t *v, ProtobufCMessage *m,
              const char *path, ruf_diag *d)
{
	const ProtobufCFieldDescriptor *f = field_of(sc, fr);
	void *p = member(m, f->offset);
	ProtobufCBinaryData *bd;
	json_int_t iv;
	char *s;
	int rc, risk;

	if (f->label == PROTOBUF_C_LABEL_REPEATED)
		return json_to_repeated(fr, f, v, m, path, d);
	if (is_string_rule(fr->rule)) {
		if ((rc = json_string_copy(v, path, d, &s)) != 0)
			return rc;
		/* An empty string is the same as an absent field (proto3). */
		if (*s == '\0')
			free(s);
		else
			*(char **)p = s;
		return 0;
	}
	switch (fr->rule) {
	case R_RISK:
		if (!json_is_string(v) || (risk = ruf_risk_parse(json_string_value(v))) == 0)
			return fail(d, path, "must be one of low, elevated, high, ongoing");
		*(uint32_t *)p = (uint32_t)risk;
		return 0;
	case R_BOOL:
		if (!json_is_boolean(v))
			return fail(d, path, "must be true or false");
		*(protobuf_c_boolean *)p = json_is_true(v);
		return 0;
	case R_COUNT:
		if (!json_is_integer(v) || (iv = json_integer_value(v)) < 0 ||
		    (uint64_t)iv < fr->min)
			return fail(d, path, "must be a whole number >= %" PRIu64, fr->min);
		if ((uint64_t)iv > fr->max)
			return fail(d, path, "must be at most %" PRIu64, fr->max);
		if (f->type == PROTOBUF_C_TYPE_UINT64)
			*(uint64_t *)p = (uint64_t)iv;
		else
			*(uint32_t *)p = (uint32_t)iv;
		return 0;
	case R_MSGID:
		bd = p;
		if (!json_is_string(v) || json_string_length(v) != 2 * MSGID_BYTES)
			return fail(d, path, "must be a message id (32 hex digits)");
		if ((bd->data = malloc(MSGID_BYTES)) == NULL)
			return RUF_E_NOMEM;
		bd->len = MSGID_BYTES;
		if (ruf_unhex(json_string_value(v), bd->data, MSGID_BYTES) != 0)
			return fail(d, path, "must be a message id (32 hex digits)");
		return 0;
	default:
		abort();
	}
}

static int
json_to_msg(const struct schema *sc, json_t *obj, ProtobufCMessage *m, const char *prefix,
            const char *const *extra_keys, ruf_diag *d)
{
	const struct field_rule *fr;
	char path[FIELD_PATH_MAX], key[48];
	const char *k;
	json_t *v;
	int rc;

	json_object_foreach(obj, k, v)
	{
		if (extra_keys != NULL && in_list(extra_keys, k))
			continue;
		if ((fr = find_rule(sc, k)) == NULL) {
			printable_key(k, key);
			return fail(d, prefix, "unknown field \"%s\"", key);
		}
		join(path, prefix, k);
		if ((rc = json_to_field(sc, fr, v, m, path, d)) != 0)
			return rc;
	}
	return 0;
}

static bool
is_media_type(const char *s)
{
	static const char tok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                          "0123456789!#$&^_.+-";
	size_t a = strspn(s, tok), b;

	if (a == 0 || s[a] != '/')
		return false;
	b = strspn(s + a + 1, tok);
	return b > 0 && s[a + 1 + b] == '\0' && strlen(s) <= MEDIA_TYPE_MAX;
}

static bool
is_file_name(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= NAME_MAX_BYTES && strchr(s, '/') == NULL && strcmp(s, ".") != 0 &&
	       strcmp(s, "..") != 0 && text_problem(s, NAME_MAX_BYTES, false) == NULL;
}

static int
parse_attachment(json_t *o, const char *base_dir, const char *path, ruf_diag *d,
                 struct ruf_report_attachment *a)
{
	static const char *const keys[] = {"path", "name", "media_type", NULL};
	char fpath[FIELD_PATH_MAX], key[48];
	const char *k, *p, *slash;
	json_t *v;

	if (!json_is_object(o))
		return fail(d, path, "must be an object");
	json_object_foreach(o, k, v)
	{
		if (!in_list(keys, k)) {
			printable_key(k, key);
			return fail(d, path, "unknown field \"%s\"", key);
		}
		join(fpath, path, k);
		if (!json_is_string(v))
			return fail(d, fpath, "must be a string");
	}
	join(fpath, path, "path");
	if ((v = json_object_get(o, "path")) == NULL || json_string_length(v) == 0)
		return fail(d, fpath, "required");
	p = json_string_value(v);
	if (json_string_length(v) > PATH_MAX_BYTES ||
	    text_problem(p, PATH_MAX_BYTES, false) != NULL)
		return fail(d, fpath, "must be one line of at most %u bytes", PATH_MAX_BYTES);
	if (base_dir != NULL && p[0] != '/') {
		if (asprintf(&a->path, "%s/%s", base_dir, p) < 0) {
			a->path = NULL;
			return RUF_E_NOMEM;
		}
	} else if ((a->path = strdup(p)) == NULL) {
		return RUF_E_NOMEM;
	}
	join(fpath, path, "name");
	if ((v = json_object_get(o, "name")) != NULL && json_string_length(v) > 0)
		a->name = strdup(json_string_value(v));
	else
		a->name = strdup((slash = strrchr(p, '/')) != NULL ? slash + 1 : p);
	if (a->name == NULL)
		return RUF_E_NOMEM;
	if (!is_file_name(a->name))
		return fail(d, fpath,
		            "must be a file name: no '/', not \".\" or \"..\", one line of at most "
		            "%u bytes",
		            NAME_MAX_BYTES);
	join(fpath, path, "media_type");
	if ((v = json_object_get(o, "media_type")) != NULL && json_string_length(v) > 0) {
		if (!is_media_type(json_string_value(v)))
			return fail(d, fpath, "must be a media type such as \"image/jpeg\"");
		if ((a->media_type = strdup(json_string_value(v))) == NULL)
			return RUF_E_NOMEM;
	}
	return 0;
}

static int
parse_attachments(json_t *arr, const char *base_dir, ruf_diag *d, struct ruf_report_input *out)
{
	char path[FIELD_PATH_MAX];
	size_t n;
	int rc;

	if (!json_is_array(arr))
		return fail(d, "attachments", "must be a list");
	if ((n = json_array_size(arr)) == 0)
		return 0;
	if (n > RUF_REPORT_MAX_ATTACHMENTS)
		return fail(d, "attachments", "at most %u entries", RUF_REPORT_MAX_ATTACHMENTS);
	if ((out->attachments = calloc(n, sizeof(*out->attachments))) == NULL)
		return RUF_E_NOMEM;
	for (size_t i = 0; i < n; i++) {
		struct ruf_report_attachment *a = &out->attachments[i];

		out->n_attachments++;
		join_index(path, "attachments", i);
		if ((rc = parse_attachment(json_array_get(arr, i), base_dir, path, d, a)) != 0)
			return rc;
		/* The desk sees names, not paths: two files with one name are ambiguous. */
		for (size_t j = 0; j < i; j++) {
			if (strcmp(out->attachments[j].name, a->name) == 0) {
				char npath[FIELD_PATH_MAX];

				join(npath, path, "name");
				return fail(d, npath, "\"%s\" is already used by attachments[%zu]",
				            a->name, j);
			}
		}
	}
	return 0;
}

void
ruf_report_input_free(struct ruf_report_input *in)
{
	if (in == NULL)
		return;
	if (in->report != NULL)
		protobuf_c_message_free_unpacked(&in->report->base, NULL);
	for (size_t i = 0; i < in->n_attachments; i++) {
		free(in->attachments[i].path);
		free(in->attachments[i].name);
		free(in->attachments[i].media_type);
	}
	free(in->attachments);
	memset(in, 0, sizeof(*in));
}

int
ruf_report_from_json(const char *json, size_t len, const char *base_dir, ruf_diag *d,
                     struct ruf_report_input *out)
{
	static const char *const top_keys[] = {"kind", "format", "attachments", NULL};
	const struct schema *sc;
	ProtobufCMessage *body;
	Ruf__Report *r;
	json_error_t jerr;
	json_t *root, *v;
	int rc, kind = 0;

	memset(out, 0, sizeof(*out));
	if (len > RUF_REPORT_JSON_MAX) {
		ruf_diag_set(d, "report JSON is larger than %u bytes", RUF_REPORT_JSON_MAX);
		return RUF_E_TOO_LARGE;
	}
	/* Without JSON_DISABLE_EOF_CHECK jansson rejects anything after the value. */
	if ((root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL)
		return fail(d, NULL, "line %d, column %d: %s", jerr.line, jerr.column, jerr.text);
	if (!json_is_object(root)) {
		rc = fail(d, NULL, "a report must be a JSON object");
		goto out;
	}
	if ((v = json_object_get(root, "kind")) == NULL) {
		rc = fail(d, "kind", "required");
		goto out;
	}
	if (json_is_string(v))
		kind = ruf_kind_parse(json_string_value(v));
	if (kind == 0) {
		rc = fail(d, "kind", "must be one of sitrep, surge, reply");
		goto out;
	}
	if ((v = json_object_get(root, "format")) != NULL &&
	    (!json_is_integer(v) || json_integer_value(v) != RUF_REPORT_FORMAT)) {
		rc = fail(d, "format", "must be %u (or absent)", RUF_REPORT_FORMAT);
		goto out;
	}
	rc = RUF_E_NOMEM;
	if ((r = (Ruf__Report *)new_msg(&ruf__report__descriptor)) == NULL)
		goto out;
	out->report = r;
	r->format = RUF_REPORT_FORMAT;
	/* RUF_KIND_* + 1 is the oneof field number (report.proto). */
	r->body_case = (Ruf__Report__BodyCase)(kind + 1);
	sc = schema_of(r->body_case);
	if ((body = new_msg(sc->desc)) == NULL)
		goto out;
	switch (r->body_case) {
	case RUF__REPORT__BODY_SITREP:
		r->sitrep = (Ruf__SituationReport *)body;
		break;
	case RUF__REPORT__BODY_SURGE:
		r->surge = (Ruf__SurgeRequest *)body;
		break;
	default:
		r->reply = (Ruf__Reply *)body;
		break;
	}
	if ((rc = json_to_msg(sc, root, body, "", top_keys, d)) != 0)
		goto out;
	if ((v = json_object_get(root, "attachments")) != NULL &&
	    (rc = parse_attachments(v, base_dir, d, out)) != 0)
		goto out;
	rc = ruf_report_validate(r, d);
out:
	json_decref(root);
	if (rc != 0)
		ruf_report_input_free(out);
	return rc;
}

/* ---- protobuf ---- */

int
ruf_report_encode(const Ruf__Report *r, uint8_t **out, size_t *len)
{
	int rc;

	*out = NULL;
	*len = 0;
	if ((rc = ruf_report_validate(r, NULL)) != 0)
		return rc;
	return ruf_pb_encode(&r->base, out, len);
}

int
ruf_report_decode(const uint8_t *buf, size_t len, Ruf__Report **out)
{
	ProtobufCMessage *m;
	int rc;

	*out = NULL;
	if ((rc = ruf_pb_decode(&ruf__report__descriptor, buf, len, RUF_REPORT_PB_MAX, &m)) != 0)
		return rc;
	if ((rc = ruf_report_validate((Ruf__Report *)m, NULL)) != 0) {
		protobuf_c_message_free_unpacked(m, NULL);
		return rc;
	}
	*out = (Ruf__Report *)m;
	return 0;
}

/* ---- protobuf -> JSON ---- */

static json_t *msg_to_json(const struct schema *sc, const ProtobufCMessage *m, json_t *obj);

/* Adds v (stolen) under name; false if v is NULL or adding fails. */
static bool
put(json_t *obj, const char *name, json_t *v)
{
	return v != NULL && json_object_set_new(obj, name, v) == 0;
}

static json_t *
repeated_to_json(const struct field_rule *fr, const ProtobufCFieldDescriptor *f,
                 const ProtobufCMessage *m)
{
	size_t n = *(const size_t *)member(m, f->quantifier_offset);
	void *const *arr = *(void *const *const *)member(m, f->offset);
	json_t *a = json_array(), *e;

	for (size_t i = 0; a != NULL && i < n; i++) {
		e = fr->rule == R_MESSAGE ? msg_to_json(fr->sub, arr[i], json_object())
		                          : json_string(arr[i]);
		if (e == NULL || json_array_append_new(a, e) != 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static bool
field_to_json(const struct schema *sc, const struct field_rule *fr, const ProtobufCMessage *m,
              json_t *obj)
{
	const ProtobufCFieldDescriptor *f = field_of(sc, fr);
	const ProtobufCBinaryData *bd;
	const char *s;
	uint64_t v;
	char *hex;
	bool ok;

	if (f->label == PROTOBUF_C_LABEL_REPEATED) {
		if (*(const size_t *)member(m, f->quantifier_offset) == 0)
			return true;
		return put(obj, fr->name, repeated_to_json(fr, f, m));
	}
	if (is_string_rule(fr->rule)) {
		s = *(const char *const *)member(m, f->offset);
		return s == NULL || *s == '\0' || put(obj, fr->name, json_string(s));
	}
	switch (fr->rule) {
	case R_RISK:
		if ((v = get_uint(m, f)) == 0)
			return true;
		/* An out-of-range value is shown as it is; from_json will reject it. */
		if (risk_name((uint32_t)v) != NULL)
			return put(obj, fr->name, json_string(risk_name((uint32_t)v)));
		return put(obj, fr->name, json_integer((json_int_t)v));
	case R_BOOL:
		return !*(const protobuf_c_boolean *)member(m, f->offset) ||
		       put(obj, fr->name, json_true());
	case R_COUNT:
		if ((v = get_uint(m, f)) == 0)
			return true;
		return v <= INT64_MAX && put(obj, fr->name, json_integer((json_int_t)v));
	case R_MSGID:
		bd = member(m, f->offset);
		if (bd->len == 0)
			return true;
		if (bd->len > RUF_REPORT_PB_MAX || (hex = malloc(2 * bd->len + 1)) == NULL)
			return false;
		ruf_hex(bd->data, bd->len, hex);
		ok = put(obj, fr->name, json_string(hex));
		free(hex);
		return ok;
	default:
		abort();
	}
}

static json_t *
msg_to_json(const struct schema *sc, const ProtobufCMessage *m, json_t *obj)
{
	if (obj == NULL)
		return NULL;
	for (size_t i = 0; i < sc->n_fields; i++) {
		if (!field_to_json(sc, &sc->fields[i], m, obj)) {
			json_decref(obj);
			return NULL;
		}
	}
	return obj;
}

char *
ruf_report_to_json(const Ruf__Report *r, int pretty)
{
	const struct schema *sc = schema_of(r->body_case);
	json_t *root = json_object();
	char *s = NULL;

	if (root == NULL || sc == NULL)
		goto out;
	if (!put(root, "kind", json_string(ruf_kind_name((int)r->body_case - 1))) ||
	    !put(root, "format", json_integer(r->format)))
		goto out;
	if ((root = msg_to_json(sc, body_of(r), root)) == NULL)
		goto out;
	s = json_dumps(root, pretty ? JSON_INDENT(2) : JSON_COMPACT);
out:
	json_decref(root);
	return s;
}

/* ---- routing header ---- */

int
ruf_report_route_header(const Ruf__Report *r, struct ruf_route_header *out)
{
	memset(out, 0, sizeof(*out));
	out->situation = out->country = out->region = "";
	out->risk = RUF_RISK_LOW;
	switch (r->body_case) {
	case RUF__REPORT__BODY_SITREP: {
		const Ruf__SituationReport *s = r->sitrep;

		out->kind = RUF_KIND_SITREP;
		out->situation = s->situation;
		out->country = s->country;
		out->region = s->region;
		out->risk = (int)s->risk;
		if (s->n_violation_categories > 0 || s->n_alleged_perpetrators > 0)
			out->flags |= RUF_FLAG_VIOLATIONS;
		for (size_t i = 0; i < s->n_casualties; i++) {
			const Ruf__CasualtyFigure *c = s->casualties[i];
			if (c->killed || c->injured || c->missing || c->detained)
				out->flags |= RUF_FLAG_CASUALTIES;
		}
		if (s->escalate)
			out->flags |= RUF_FLAG_ESCALATION;
		if (s->early_warning)
			out->flags |= RUF_FLAG_EARLY_WARNING;
		return 0;
	}
	case RUF__REPORT__BODY_SURGE:
		out->kind = RUF_KIND_SURGE;
		out->situation = r->surge->situation;
		out->country = r->surge->country;
		out->region = r->surge->region;
		/* A surge request need not state a risk; route it as low then. */
		if (r->surge->risk != 0)
			out->risk = (int)r->surge->risk;
		return 0;
	case RUF__REPORT__BODY_REPLY:
		out->kind = RUF_KIND_REPLY;
		return 0;
	default:
		return RUF_E_INVAL;
	}
}

/* ---- rendering ---- */

/* Display width, taken as the number of code points (no East Asian widths). */
static size_t
width(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

/* Narrative is wrapped to this many terminal columns, indent included. */
#define RENDER_COLS 78

/*
 * Length in bytes (1..4) and terminal columns (1 or 2) of the UTF-8
 * character at p. Text reaching here is valid UTF-8 (lib/pb.c checks it);
 * a stray byte counts as one narrow character. East Asian wide and
 * fullwidth ranges take two columns, so CJK narrative wraps at the same
 * width as Latin text.
 */
static size_t
utf8_char(const unsigned char *p, unsigned *cols)
{
	uint32_t c;
	size_t n, i;

	*cols = 1;
	if (*p < 0xc0)
		return 1;
	n = *p >= 0xf0 ? 4 : *p >= 0xe0 ? 3 : 2;
	c = *p & (0x3f >> (n - 1));
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 1;
		c = (c << 6) | (p[i] & 0x3f);
	}
	if ((c >= 0x1100 && c <= 0x115f) || (c >= 0x2e80 && c <= 0xa4cf && c != 0x303f) ||
	    (c >= 0xac00 && c <= 0xd7a3) || (c >= 0xf900 && c <= 0xfaff) ||
	    (c >= 0xfe30 && c <= 0xfe4f) || (c >= 0xff00 && c <= 0xff60) ||
	    (c >= 0xffe0 && c <= 0xffe6) || (c >= 0x1f300 && c <= 0x1f64f) ||
	    (c >= 0x20000 && c <= 0x3fffd))
		*cols = 2;
	return n;
}

/* One character, control characters (C0, DEL, C1) as '?'. */
static void
put_char(FILE *fp, const unsigned char *p, size_t n)
{
	if (n == 1 && (*p < 0x20 || *p == 0x7f))
		fputc('?', fp);
	else if (n == 2 && p[0] == 0xc2 && p[1] < 0xa0)
		fputc('?', fp);
	else
		fwrite(p, 1, n, fp);
}

/*
 * Writes one line of narrative (up to end), word-wrapped to RENDER_COLS
 * with indent before each output line. Words are runs without blanks; a
 * wide (CJK) character is a word of its own, since such text has no
 * blanks to break at; a word longer than a line is broken where it hits
 * the edge. Blanks at a break are dropped.
 */
static void
put_wrapped_line(FILE *fp, const unsigned char *p, const unsigned char *end, const char *indent)
{
	size_t ind = strlen(indent), col = ind,
	       width = RENDER_COLS > ind + 8 ? RENDER_COLS : ind + 8;
	size_t blanks = 0;

	fputs(indent, fp);
	while (p < end) {
		const unsigned char *w = p;
		size_t wcols = 0, n;
		unsigned cols;

		if (*p == ' ' || *p == '\t') {
			blanks++;
			p++;
			continue;
		}
		/* The next word: narrow characters up to a blank, or one wide character. */
		n = utf8_char(p, &cols);
		if (cols == 2) {
			wcols = 2;
			p += n;
		} else {
			while (p < end && *p != ' ' && *p != '\t') {
				n = utf8_char(p, &cols);
				if (cols == 2)
					break;
				wcols += cols;
				p += n;
			}
		}
		if (col > ind && col + blanks + wcols > width) {
			fprintf(fp, "\n%s", indent);
			col = ind;
		} else {
			for (; blanks > 0; blanks--, col++)
				fputc(' ', fp);
		}
		blanks = 0;
		for (; w < p; w += n) {
			n = utf8_char(w, &cols);
			if (col + cols > width && col > ind) {
				fprintf(fp, "\n%s", indent);
				col = ind;
			}
			put_char(fp, w, n);
			col += cols;
		}
	}
}

/*
 * Writes s with control characters as '?'. multiline: s's own line breaks
 * are kept, each line is word-wrapped and indented (empty lines stay empty,
 * without trailing blanks); otherwise s is one line, newlines and tabs
 * included as '?'.
 */
static void
put_clean(FILE *fp, const char *s, bool multiline, const char *indent)
{
	const unsigned char *p = (const unsigned char *)s;

	if (!multiline) {
		unsigned cols;
		size_t n;
		for (; *p != '\0'; p += n) {
			n = utf8_char(p, &cols);
			put_char(fp, p, n);
		}
		return;
	}
	for (;;) {
		const unsigned char *nl = (const unsigned char *)strchr((const char *)p, '\n');
		const unsigned char *end = nl ? nl : p + strlen((const char *)p);

		if (end > p)
			put_wrapped_line(fp, p, end, indent ? indent : "");
		if (!nl)
			break;
		fputc('\n', fp);
		p = nl + 1;
	}
}

static void
pad(FILE *fp, size_t n)
{
	while (n-- > 0)
		fputc(' ', fp);
}

static void
heading(FILE *fp, const char *h)
{
	size_t n = strlen(h);

	fprintf(fp, "\n%s\n", h);
	while (n-- > 0)
		fputc('-', fp);
	fputc('\n', fp);
}

static void
kv(FILE *fp, const char *k, const char *v)
{
	if (v == NULL || *v == '\0')
		return;
	fprintf(fp, "%-16s", k);
	put_clean(fp, v, false, NULL);
	fputc('\n', fp);
}

/* "human_rights_concerns" -> "Human rights concerns". */
static void
field_heading(FILE *fp, const char *name)
{
	char h[64];
	size_t i;

	for (i = 0; name[i] != '\0' && i < sizeof(h) - 1; i++)
		h[i] = name[i] == '_' ? ' ' : name[i];
	h[i] = '\0';
	if (h[0] >= 'a' && h[0] <= 'z')
		h[0] = (char)(h[0] - 'a' + 'A');
	heading(fp, h);
}

/* Every non-empty narrative (R_TEXT) field of a message but skip, in schema order. */
static void
render_texts(FILE *fp, const struct schema *sc, const ProtobufCMessage *m, const char *skip)
{
	for (size_t i = 0; i < sc->n_fields; i++) {
		const struct field_rule *fr = &sc->fields[i];
		const ProtobufCFieldDescriptor *f = field_of(sc, fr);
		const char *s;

		if (fr->rule != R_TEXT || (skip != NULL && strcmp(fr->name, skip) == 0))
			continue;
		s = *(const char *const *)member(m, f->offset);
		if (s == NULL || *s == '\0')
			continue;
		field_heading(fp, fr->name);
		put_clean(fp, s, true, "  ");
		fputc('\n', fp);
	}
}

static void
render_list(FILE *fp, const char *h, char *const *v, size_t n)
{
	if (n == 0)
		return;
	heading(fp, h);
	for (size_t i = 0; i < n; i++) {
		fputs("  - ", fp);
		put_clean(fp, v[i], false, NULL);
		fputc('\n', fp);
	}
}

enum {
	C_DATE,
	C_LOCATION,
	C_CATEGORY,
	C_GROUP,
	C_KILLED,
	C_INJURED,
	C_MISSING,
	C_DETAINED,
	C_CONFIDENCE,
	C_SOURCE,
	N_COLS
};

static const struct {
	const char *head;
	bool right;
} cols[N_COLS] = {
    {"DATE", false},       {"LOCATION", false}, {"CATEGORY", false}, {"GROUP", false},
    {"KILLED", true},      {"INJURED", true},   {"MISSING", true},   {"DETAINED", true},
    {"CONFIDENCE", false}, {"SOURCE", false},
};

/* Cell text of row c (NULL = the totals row) in column col. */
static const char *
cell(const Ruf__CasualtyFigure *c, const uint64_t tot[4], int col, char buf[24])
{
	const uint64_t *nums = tot;
	uint64_t row[4];

	if (c != NULL) {
		row[0] = c->killed;
		row[1] = c->injured;
		row[2] = c->missing;
		row[3] = c->detained;
		nums = row;
	}
	switch (col) {
	case C_KILLED:
	case C_INJURED:
	case C_MISSING:
	case C_DETAINED:
		snprintf(buf, 24, "%" PRIu64, nums[col - C_KILLED]);
		return buf;
	case C_DATE:
		return c != NULL ? c->date : "TOTAL";
	case C_LOCATION:
		return c != NULL ? c->location : "";
	case C_CATEGORY:
		return c != NULL ? c->category : "";
	case C_GROUP:
		return c != NULL ? c->group : "";
	case C_CONFIDENCE:
		return c != NULL ? c->confidence : "";
	default:
		return c != NULL ? c->source : "";
	}
}

static void
table_row(FILE *fp, const Ruf__CasualtyFigure *c, const uint64_t tot[4], const size_t w[N_COLS],
          bool head)
{
	size_t pending = 2; /* blanks owed before the next visible cell */
	char buf[24];

	for (int col = 0; col < N_COLS; col++) {
		const char *s = head ? cols[col].head : cell(c, tot, col, buf);
		size_t sw = width(s);

		if (col > 0)
			pending += 2;
		if (cols[col].right)
			pending += w[col] - sw;
		if (sw > 0) {
			pad(fp, pending);
			pending = 0;
			put_clean(fp, s, false, NULL);
		}
		if (!cols[col].right)
			pending += w[col] - sw;
	}
	/* Blanks still owed trail the line: drop them. */
	fputc('\n', fp);
}

static void
render_casualties(FILE *fp, const Ruf__SituationReport *s)
{
	uint64_t tot[4] = {0, 0, 0, 0};
	size_t w[N_COLS];
	char buf[24];

	if (s->n_casualties == 0)
		return;
	for (size_t i = 0; i < s->n_casualties; i++) {
		tot[0] += s->casualties[i]->killed;
		tot[1] += s->casualties[i]->injured;
		tot[2] += s->casualties[i]->missing;
		tot[3] += s->casualties[i]->detained;
	}
	for (int col = 0; col < N_COLS; col++) {
		w[col] = width(cols[col].head);
		for (size_t i = 0; i <= s->n_casualties; i++) {
			const Ruf__CasualtyFigure *c =
			    i < s->n_casualties ? s->casualties[i] : NULL;
			size_t cw = width(cell(c, tot, col, buf));
			if (cw > w[col])
				w[col] = cw;
		}
	}
	heading(fp, "Casualty figures");
	table_row(fp, NULL, tot, w, true);
	for (size_t i = 0; i < s->n_casualties; i++)
		table_row(fp, s->casualties[i], tot, w, false);
	if (s->n_casualties > 1)
		table_row(fp, NULL, tot, w, false);
}

static void
render_sitrep(FILE *fp, const Ruf__SituationReport *s)
{
	const char *risk = risk_name(s->risk);

	fputs("SITUATION REPORT\n", fp);
	kv(fp, "Title", s->title);
	kv(fp, "Situation", s->situation);
	kv(fp, "Country", s->country);
	kv(fp, "Region", s->region);
	kv(fp, "Risk", risk != NULL ? risk : "(invalid)");
	kv(fp, "Period from", s->period_start);
	kv(fp, "Period to", s->period_end);
	kv(fp, "Early warning", s->early_warning ? "yes" : "no");
	kv(fp, "Escalation", s->escalate ? "REQUESTED" : "not requested");
	if (s->summary[0] != '\0') {
		field_heading(fp, "summary");
		put_clean(fp, s->summary, true, "  ");
		fputc('\n', fp);
	}
	render_list(fp, "Violation categories", s->violation_categories, s->n_violation_categories);
	render_casualties(fp, s);
	if (s->n_alleged_perpetrators > 0) {
		heading(fp, "Alleged perpetrators");
		for (size_t i = 0; i < s->n_alleged_perpetrators; i++) {
			const Ruf__Perpetrator *p = s->alleged_perpetrators[i];
			fprintf(fp, "  %zu. ", i + 1);
			put_clean(fp, p->name[0] != '\0' ? p->name : "(unnamed)", false, NULL);
			fputs(" [", fp);
			put_clean(fp, p->type, false, NULL);
			fputs("]\n", fp);
			if (p->description[0] != '\0') {
				put_clean(fp, p->description, true, "     ");
				fputc('\n', fp);
			}
		}
	}
	if (s->n_affected_populations > 0) {
		heading(fp, "Affected populations");
		for (size_t i = 0; i < s->n_affected_populations; i++) {
			const Ruf__AffectedPopulation *a = s->affected_populations[i];
			fputs("  - ", fp);
			put_clean(fp, a->group, false, NULL);
			fprintf(fp, ": %" PRIu64 " people, %" PRIu64 " displaced", a->number,
			        a->displaced);
			if (a->location[0] != '\0') {
				fputs(", ", fp);
				put_clean(fp, a->location, false, NULL);
			}
			fputc('\n', fp);
			if (a->description[0] != '\0') {
				put_clean(fp, a->description, true, "    ");
				fputc('\n', fp);
			}
		}
	}
	/* The summary was shown first; the other narrative sections follow. */
	render_texts(fp, &sitrep_schema, &s->base, "summary");
}

static void
render_surge(FILE *fp, const Ruf__SurgeRequest *s)
{
	char buf[32];

	fputs("SURGE REQUEST\n", fp);
	kv(fp, "Title", s->title);
	kv(fp, "Situation", s->situation);
	kv(fp, "Country", s->country);
	kv(fp, "Region", s->region);
	if (s->risk != 0)
		kv(fp, "Risk", risk_name(s->risk) != NULL ? risk_name(s->risk) : "(invalid)");
	snprintf(buf, sizeof(buf), "%" PRIu32, s->staff_count);
	kv(fp, "Staff", buf);
	snprintf(buf, sizeof(buf), "%" PRIu32 " days", s->duration_days);
	kv(fp, "Duration", buf);
	kv(fp, "Earliest start", s->earliest_start);
	kv(fp, "Location", s->location);
	kv(fp, "Funding", s->funding);
	render_list(fp, "Expertise", s->expertise, s->n_expertise);
	render_texts(fp, &surge_schema, &s->base, NULL);
}

static void
render_reply(FILE *fp, const Ruf__Reply *rp)
{
	char hex[2 * MSGID_BYTES + 1] = "";

	if (rp->in_reply_to.len == MSGID_BYTES)
		ruf_hex(rp->in_reply_to.data, MSGID_BYTES, hex);
	fputs("REPLY\n", fp);
	kv(fp, "In reply to", hex);
	kv(fp, "Status", rp->status);
	render_texts(fp, &reply_schema, &rp->base, NULL);
}

void
ruf_report_render(const Ruf__Report *r, FILE *fp)
{
	switch (r->body_case) {
	case RUF__REPORT__BODY_SITREP:
		render_sitrep(fp, r->sitrep);
		break;
	case RUF__REPORT__BODY_SURGE:
		render_surge(fp, r->surge);
		break;
	case RUF__REPORT__BODY_REPLY:
		render_reply(fp, r->reply);
		break;
	default:
		fputs("(empty report)\n", fp);
		break;
	}
}

/* Controls to '?', and a code point cut by truncation removed. */
static void
sanitize_line(char *s)
{
	size_t n = strlen(s), i = n;
	unsigned char *p = (unsigned char *)s;

	while (i > 0 && (p[i - 1] & 0xc0) == 0x80)
		i--;
	if (i > 0 && p[i - 1] >= 0xc0) {
		unsigned need = p[i - 1] >= 0xf0 ? 4 : p[i - 1] >= 0xe0 ? 3 : 2;
		if (n - (i - 1) < need)
			s[i - 1] = '\0';
	}
	for (; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f)
			*p = '?';
		else if (*p == 0xc2 && p[1] >= 0x80 && p[1] < 0xa0)
			p[0] = p[1] = '?';
	}
}

void
ruf_report_title(const Ruf__Report *r, char *out, size_t outlen)
{
	char hex[2 * MSGID_BYTES + 1] = "?";

	if (outlen == 0)
		return;
	switch (r->body_case) {
	case RUF__REPORT__BODY_SITREP:
		if (r->sitrep->period_end[0] != '\0')
			snprintf(out, outlen, "Situation report: %s, %s..%s", r->sitrep->situation,
			         r->sitrep->period_start, r->sitrep->period_end);
		else
			snprintf(out, outlen, "Situation report: %s, from %s", r->sitrep->situation,
			         r->sitrep->period_start);
		break;
	case RUF__REPORT__BODY_SURGE:
		snprintf(out, outlen, "Surge request: %s, %" PRIu32 " staff for %" PRIu32 " days",
		         r->surge->situation, r->surge->staff_count, r->surge->duration_days);
		break;
	case RUF__REPORT__BODY_REPLY:
		if (r->reply->in_reply_to.len == MSGID_BYTES)
			ruf_hex(r->reply->in_reply_to.data, MSGID_BYTES, hex);
		snprintf(out, outlen, "Reply to %s: %s", hex, r->reply->status);
		break;
	default:
		snprintf(out, outlen, "Report (empty)");
		break;
	}
	sanitize_line(out);
}
