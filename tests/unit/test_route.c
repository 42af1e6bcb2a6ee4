/*
 * test_route.c - routing policy: the example policy's routing table, every
 * compile error with its line, the compiled form's round trip and tamper
 * checks, header validation.
 *
 * With RUF_WRITE_CORPUS=DIR set, also writes the fuzz seed corpora to
 * DIR/policy and DIR/policy_bin.
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

#include "err.h"
#include "pb.h"
#include "policy.pb-c.h"
#include "route.h"
#include "util.h"

#define EXAMPLE RUF_SOURCE_DIR "/certs-example/policy.txt"

static char *
read_example(size_t *len)
{
	uint8_t *buf = NULL;

	assert_int_equal(ruf_file_read(EXAMPLE, RUF_POLICY_TEXT_MAX, &buf, len), 0);
	return (char *)buf;
}

static ruf_policy *
compile_ok(const char *text)
{
	ruf_policy *p = NULL;
	ruf_diag d = {{0}};
	int rc = ruf_policy_compile(text, strlen(text), &d, &p);

	if (rc != 0)
		print_error("unexpected compile error: %s\n", d.msg);
	assert_int_equal(rc, 0);
	assert_non_null(p);
	return p;
}

static ruf_policy *
compile_example(void)
{
	size_t len;
	char *text = read_example(&len);
	ruf_policy *p = NULL;
	ruf_diag d = {{0}};
	int rc = ruf_policy_compile(text, len, &d, &p);

	if (rc != 0)
		print_error("example policy: %s\n", d.msg);
	assert_int_equal(rc, 0);
	free(text);
	return p;
}

/* The queue set as one space-separated string. */
static void
join(const struct ruf_queue_set *s, char *out, size_t outlen)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < s->n; i++)
		o += (size_t)snprintf(out + o, outlen - o, "%s%s", i ? " " : "", s->names[i]);
}

struct route_case {
	int kind;
	const char *situation, *country, *region;
	int risk;
	uint32_t flags;
	const char *want; /* sorted, space separated */
};

#define V RUF_FLAG_VIOLATIONS
#define C RUF_FLAG_CASUALTIES
#define E RUF_FLAG_ESCALATION
#define W RUF_FLAG_EARLY_WARNING
#define SITREP RUF_KIND_SITREP
#define SURGE RUF_KIND_SURGE
#define REPLY RUF_KIND_REPLY

static const struct route_case example_cases[] = {
    /* Task forces by situation. */
    {SITREP, "darfur", "sd", "east-africa", RUF_RISK_LOW, 0, "itf.darfur"},
    {SITREP, "kivu", "cd", "great-lakes", RUF_RISK_ELEVATED, 0, "itf.kivu"},
    /* No task force, nothing else: triage. */
    {SITREP, "abyei", "sd", "east-africa", RUF_RISK_LOW, 0, "triage"},
    {SITREP, "", "", "", 0, 0, "triage"},
    {SITREP, NULL, NULL, NULL, 0, 0, "triage"},
    /* SAG on risk and on escalation. */
    {SITREP, "darfur", "sd", "east-africa", RUF_RISK_HIGH, 0, "itf.darfur sag"},
    {SITREP, "darfur", "sd", "east-africa", RUF_RISK_ONGOING, 0, "itf.darfur sag"},
    {SITREP, "darfur", "sd", "east-africa", RUF_RISK_LOW, E, "itf.darfur sag"},
    {SITREP, "", "sd", "", RUF_RISK_HIGH, E, "sag"},
    /* HRT on either flag. */
    {SITREP, "kivu", "cd", "great-lakes", RUF_RISK_LOW, V, "hrt itf.kivu"},
    {SITREP, "kivu", "cd", "great-lakes", RUF_RISK_LOW, C, "hrt itf.kivu"},
    /* Early warning by region. */
    {SITREP, "", "cd", "great-lakes", RUF_RISK_ELEVATED, W, "rqr.great-lakes"},
    {SITREP, "kivu", "cd", "east-africa", RUF_RISK_ELEVATED, W, "itf.kivu rqr.east-africa"},
    {SITREP, "", "ml", "west-africa", RUF_RISK_ELEVATED, W, "triage"},
    {SITREP, "", "cd", "", RUF_RISK_ELEVATED, W, "triage"},
    /* Fan-out to four queues. */
    {SITREP, "darfur", "sd", "east-africa", RUF_RISK_HIGH, V | E | W,
     "hrt itf.darfur rqr.east-africa sag"},
    {SITREP, "darfur", "sd", "east-africa", RUF_RISK_ONGOING, V | C | E | W,
     "hrt itf.darfur rqr.east-africa sag"},
    /* Surge requests, also fanned out. */
    {SURGE, "", "", "", 0, 0, "surge"},
    {SURGE, "darfur", "sd", "east-africa", RUF_RISK_LOW, 0, "itf.darfur surge"},
    {SURGE, "kivu", "cd", "great-lakes", RUF_RISK_HIGH, V | W,
     "hrt itf.kivu rqr.great-lakes sag surge"},
    /* Replies: the stop rule keeps them to triage whatever they carry. */
    {REPLY, "darfur", "sd", "east-africa", RUF_RISK_ONGOING, V | C | E | W, "triage"},
    {REPLY, "", "", "", 0, 0, "triage"},
};

static void
check_cases(const ruf_policy *p)
{
	for (size_t i = 0; i < sizeof(example_cases) / sizeof(example_cases[0]); i++) {
		const struct route_case *c = &example_cases[i];
		struct ruf_route_header h = {c->kind,   c->situation, c->country,
		                             c->region, c->risk,      c->flags};
		struct ruf_queue_set set;
		char got[1200];

		assert_int_equal(ruf_route_eval(p, &h, &set), 0);
		join(&set, got, sizeof(got));
		if (strcmp(got, c->want) != 0)
			print_error("case %zu: got '%s', want '%s'\n", i, got, c->want);
		assert_string_equal(got, c->want);
	}
}

static void
test_example_policy_routes_each_header_to_its_desks(void **state)
{
	ruf_policy *p = compile_example();

	(void)state;
	assert_int_equal(ruf_policy_rule_count(p), 7);
	check_cases(p);
	ruf_policy_free(p);
}

static int
collect_queue(const char *q, unsigned line, void *ctx)
{
	char *s = ctx;

	(void)line;
	if (*s != '\0')
		strcat(s, " ");
	strcat(s, q);
	return 0;
}

static int
collect_lines(const char *q, unsigned line, void *ctx)
{
	char *s = ctx;

	snprintf(s + strlen(s), 1024 - strlen(s), "%s%s:%u", *s ? " " : "", q, line);
	return 0;
}

/* The line of the example policy that starts with prefix. */
static unsigned
example_line(const char *prefix)
{
	size_t len;
	char *text = read_example(&len), *s = text;
	unsigned line = 1;

	while (strncmp(s, prefix, strlen(prefix)) != 0) {
		s = strchr(s, '\n');
		assert_non_null(s);
		s++;
		line++;
	}
	free(text);
	return line;
}

static int
stop_at_sag(const char *q, unsigned line, void *ctx)
{
	(void)line;
	++*(int *)ctx;
	return strcmp(q, "sag") == 0 ? 42 : 0;
}

static void
test_queues_lists_each_expanded_queue_once(void **state)
{
	ruf_policy *p = compile_example();
	char all[1024] = "", want[1024];
	int calls = 0;

	(void)state;
	assert_int_equal(ruf_policy_queues(p, collect_queue, all), 0);
	assert_string_equal(all, "hrt itf.darfur itf.kivu rqr.east-africa rqr.great-lakes sag "
	                         "surge triage");
	/* Each with the line of the first rule naming it ("replies" names triage). */
	all[0] = '\0';
	assert_int_equal(ruf_policy_queues(p, collect_lines, all), 0);
	snprintf(want, sizeof(want),
	         "hrt:%u itf.darfur:%u itf.kivu:%u rqr.east-africa:%u rqr.great-lakes:%u sag:%u "
	         "surge:%u triage:%u",
	         example_line("rule hrt\n"), example_line("rule itf\n"), example_line("rule itf\n"),
	         example_line("rule early-warning\n"), example_line("rule early-warning\n"),
	         example_line("rule sag-risk\n"), example_line("rule surge\n"),
	         example_line("rule replies\n"));
	assert_string_equal(all, want);
	/* The callback's non-zero result stops the walk and is returned. */
	assert_int_equal(ruf_policy_queues(p, stop_at_sag, &calls), 42);
	assert_int_equal(calls, 6);
	ruf_policy_free(p);
}

static void
test_stop_rule_ends_evaluation_but_keeps_its_queues(void **state)
{
	ruf_policy *p = compile_ok("policy 1\n"
	                           "rule a\n situation x\n to qa\n"
	                           "rule b\n kind sitrep\n risk high\n to qb\n stop\n"
	                           "rule c\n to qc\n");
	struct ruf_route_header h = {SITREP, "x", "", "", RUF_RISK_HIGH, 0};
	struct ruf_queue_set set;
	char got[256];

	(void)state;
	assert_int_equal(ruf_route_eval(p, &h, &set), 0);
	join(&set, got, sizeof(got));
	assert_string_equal(got, "qa qb");
	h.risk = RUF_RISK_LOW;
	assert_int_equal(ruf_route_eval(p, &h, &set), 0);
	join(&set, got, sizeof(got));
	assert_string_equal(got, "qa qc");
	ruf_policy_free(p);
}

static void
test_templates_expand_with_each_header_value(void **state)
{
	ruf_policy *p = compile_ok("policy 1\n"
	                           "rule r\n"
	                           "  country sd cd\n  region east-africa great-lakes\n"
	                           "  to ${country}.${region} c.${country} triage\n");
	struct ruf_route_header h = {SITREP, "", "cd", "east-africa", 0, 0};
	struct ruf_queue_set set;
	char got[256], all[1024] = "";

	(void)state;
	assert_int_equal(ruf_route_eval(p, &h, &set), 0);
	join(&set, got, sizeof(got));
	assert_string_equal(got, "c.cd cd.east-africa triage");
	assert_int_equal(ruf_policy_queues(p, collect_queue, all), 0);
	assert_string_equal(all, "c.cd c.sd cd.east-africa cd.great-lakes sd.east-africa "
	                         "sd.great-lakes triage");
	ruf_policy_free(p);
	/* Without a rule naming it, triage is listed with line 0. */
	p = compile_ok("policy 1\n\nrule r\n to ${region}\n region a b\n");
	all[0] = '\0';
	assert_int_equal(ruf_policy_queues(p, collect_lines, all), 0);
	assert_string_equal(all, "a:3 b:3 triage:0");
	h.region = "b";
	assert_int_equal(ruf_route_eval(p, &h, &set), 0);
	join(&set, got, sizeof(got));
	assert_string_equal(got, "b");
	ruf_policy_free(p);
}

static void
test_eval_refuses_more_than_max_queues(void **state)
{
	char text[1024] = "policy 1\nrule a\n to";
	struct ruf_route_header h = {SITREP, "", "", "", 0, 0};
	struct ruf_queue_set set;
	ruf_policy *p;

	(void)state;
	for (int i = 0; i < RUF_ROUTE_MAX_QUEUES; i++)
		snprintf(text + strlen(text), sizeof(text) - strlen(text), " q%d", i);
	strcat(text, "\nrule b\n kind sitrep\n to extra q1\n");
	p = compile_ok(text);
	assert_int_equal(ruf_route_eval(p, &h, &set), RUF_E_TOO_LARGE);
	assert_int_equal(set.n, 0);
	/* Without the 17th queue it fits exactly. */
	h.kind = SURGE;
	assert_int_equal(ruf_route_eval(p, &h, &set), 0);
	assert_int_equal(set.n, RUF_ROUTE_MAX_QUEUES);
	ruf_policy_free(p);
}

static void
test_eval_rejects_invalid_headers(void **state)
{
	ruf_policy *p = compile_example();
	static const char long33[] = "abcdefghijabcdefghijabcdefghijabc";
	const struct ruf_route_header bad[] = {
	    {0, "darfur", "sd", "east-africa", 1, 0},
	    {4, "darfur", "sd", "east-africa", 1, 0},
	    {-1, "darfur", "sd", "east-africa", 1, 0},
	    {SITREP, "darfur", "sd", "east-africa", 5, 0},
	    {SITREP, "darfur", "sd", "east-africa", -1, 0},
	    {SITREP, "darfur", "sd", "east-africa", 1, 0x10},
	    {SITREP, "darfur", "sd", "east-africa", 1, 0x80000000u},
	    {SITREP, "Darfur", "sd", "east-africa", 1, 0},
	    {SITREP, "darfur", "s d", "east-africa", 1, 0},
	    {SITREP, "darfur", "sd", "-east", 1, 0},
	    {SITREP, "darfur", "sd", long33, 1, 0},
	    {SITREP, "itf.darfur", "sd", "", 1, 0},
	    {SITREP, "darfur", "sd", "${region}", 1, 0},
	};
	struct ruf_queue_set set;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		set.n = 99;
		assert_int_equal(ruf_route_eval(p, &bad[i], &set), RUF_E_INVAL);
		assert_int_equal(set.n, 0);
	}
	ruf_policy_free(p);
}

struct error_case {
	const char *text;
	unsigned line;
	const char *what; /* a fragment of the message */
};

static const struct error_case error_cases[] = {
    /* The version line. */
    {"", 1, "missing 'policy 1'"},
    {"# only a comment\n\n", 1, "missing 'policy 1'"},
    {"rule a\n to sag\n", 1, "expected 'policy 1'"},
    {"# header\n\npolicy 2\n", 3, "unsupported policy format version '2'"},
    {"policy 01\n", 1, "unsupported policy format version"},
    {"policy\n", 1, "exactly one version"},
    {"policy 1 1\n", 1, "exactly one version"},
    {"policy 1\nrule a\n to sag\npolicy 1\n", 4, "only appear once"},
    /* Keywords. */
    {"policy 1\nrule a\n  colour red\n  to sag\n", 3, "unknown keyword 'colour'"},
    {"policy 1\nrule a\n  Kind sitrep\n  to sag\n", 3, "unknown keyword 'Kind'"},
    {"policy 1\nkind sitrep\n", 2, "'kind' outside a rule"},
    {"policy 1\n\n  to sag\nrule a\n", 3, "'to' outside a rule"},
    /* Values. */
    {"policy 1\nrule a\n kind report\n to sag\n", 3, "unknown kind 'report'"},
    {"policy 1\nrule a\n risk severe\n to sag\n", 3, "unknown risk 'severe'"},
    {"policy 1\nrule a\n flags violations deaths\n to sag\n", 3, "unknown flag 'deaths'"},
    {"policy 1\nrule a\n kind\n to sag\n", 3, "needs at least one value"},
    {"policy 1\nrule a\n to sag\n stop now\n", 4, "'stop' takes no values"},
    {"policy 1\nrule a\n situation Darfur\n to sag\n", 3, "'Darfur' is not a valid situation"},
    {"policy 1\nrule a\n country s_d\n to sag\n", 3, "'s_d' is not a valid country"},
    {"policy 1\nrule a\n region -x\n to sag\n", 3, "'-x' is not a valid region"},
    {"policy 1\nrule A\n to sag\n", 2, "'A' is not a valid rule name"},
    {"policy 1\nrule\n to sag\n", 2, "exactly one name"},
    {"policy 1\nrule a b\n to sag\n", 2, "exactly one name"},
    /* Duplicates. */
    {"policy 1\nrule a\n situation x\n situation y\n to sag\n", 4, "duplicate 'situation'"},
    {"policy 1\nrule a\n to sag\n to hrt\n", 4, "duplicate 'to'"},
    {"policy 1\nrule a\n to sag\n stop\n stop\n", 5, "duplicate 'stop'"},
    {"policy 1\nrule a\n situation x y x\n to sag\n", 3, "duplicate value 'x'"},
    {"policy 1\nrule a\n kind sitrep surge sitrep\n to sag\n", 3, "duplicate value 'sitrep'"},
    {"policy 1\nrule a\n flags casualties casualties\n to sag\n", 3,
     "duplicate value 'casualties'"},
    {"policy 1\nrule a\n to sag hrt sag\n", 3, "duplicate value 'sag'"},
    {"policy 1\nrule a\n to sag\nrule b\n to hrt\nrule a\n to x\n", 6, "duplicate rule name 'a'"},
    /* Rules without queues: reported at the 'rule' line. */
    {"policy 1\nrule a\n kind sitrep\nrule b\n to sag\n", 2, "rule 'a' has no 'to'"},
    {"policy 1\nrule a\n to sag\nrule b\n kind sitrep\n", 4, "rule 'b' has no 'to'"},
    {"policy 1\nrule a\n to\n", 3, "needs at least one value"},
    /* Queue names and templates. */
    {"policy 1\nrule a\n to Sag\n", 3, "'Sag' is not a valid queue name"},
    {"policy 1\nrule a\n to a.b.c\n", 3, "'a.b.c' is not a valid queue name"},
    {"policy 1\nrule a\n to itf.\n", 3, "'itf.' is not a valid queue name"},
    {"policy 1\nrule a\n to q0 q1 q2 q3 q4 q5 q6 q7 q8 q9 q10 q11 q12 q13 q14 q15 q16\n", 3,
     "more than 16 queues"},
    {"policy 1\nrule a\n to itf.${situation}\n", 3,
     "uses ${situation} but rule 'a' has no 'situation' condition"},
    {"policy 1\nrule a\n situation x\n to rqr.${region}\n region y\n kind foo\n", 6,
     "unknown kind"},
    {"policy 1\nrule a\n situation x\n to ${situation}.${country}\n", 4,
     "uses ${country} but rule 'a'"},
    {"policy 1\nrule a\n situation x\n to itf.${place}\n", 4, "unknown variable"},
    {"policy 1\nrule a\n situation x\n to itf.${situation\n", 4, "unterminated"},
    {"policy 1\nrule a\n situation x\n to itf.$situation\n", 4, "'$' not followed by '{'"},
    {"policy 1\nrule a\n situation x\n to a.${situation}.b\n", 4,
     "queue 'a.${situation}.b' expands to 'a.x.b'"},
    {"policy 1\nrule a\n situation x\n to a.${situation}.${situation}\n", 4, "expands to 'a.x.x'"},
    {"policy 1\nrule a\n situation abcdefghijabcdefghijabcdefghijab\n"
     " to ${situation}.${situation}x\n",
     4, "not a valid queue name"},
    /* Unreachable rules: reported at the later rule's line. */
    {"policy 1\nrule a\n kind sitrep\n to q\n stop\nrule b\n kind sitrep\n situation x\n to r\n", 6,
     "rule 'b' is unreachable: rule 'a' (line 2)"},
    {"policy 1\nrule a\n to q\n stop\nrule b\n to r\n", 5, "rule 'b' is unreachable"},
    {"policy 1\nrule a\n situation x y\n stop\n to q\nrule b\n situation y\n to r\n", 6,
     "rule 'b' is unreachable"},
    {"policy 1\nrule a\n flags violations casualties\n to q\n stop\n"
     "rule b\n flags casualties\n risk high\n to r\n",
     6, "rule 'b' is unreachable"},
    {"policy 1\nrule a\n kind sitrep surge reply\n risk low high\n to q\n stop\n"
     "rule b\n risk high\n to r\n",
     7, "rule 'b' is unreachable"},
    {"policy 1\nrule z\n to q\nrule a\n risk low\n to q\n stop\nrule c\n to x\n"
     "rule b\n risk low\n country sd\n to r\n",
     10, "rule 'b' is unreachable: rule 'a' (line 4)"},
    /* Text limits. */
    {"policy 1\r\nrule a\r\n\tto\tsag\r\n\tcolour\r\n", 4, "unknown keyword 'colour'"},
};

static void
expect_error(const char *text, size_t len, unsigned line, const char *what)
{
	ruf_policy *p = (ruf_policy *)1;
	ruf_diag d = {{0}};
	char prefix[32];
	int rc = ruf_policy_compile(text, len, &d, &p);

	snprintf(prefix, sizeof(prefix), "line %u: ", line);
	if (rc != RUF_E_POLICY || strncmp(d.msg, prefix, strlen(prefix)) != 0 ||
	    strstr(d.msg, what) == NULL)
		print_error("policy:\n%.*s\nrc %d, message '%s'; want '%s...%s'\n", (int)len, text,
		            rc, d.msg, prefix, what);
	assert_int_equal(rc, RUF_E_POLICY);
	assert_null(p);
	assert_memory_equal(d.msg, prefix, strlen(prefix));
	assert_non_null(strstr(d.msg, what));
}

static void
test_compile_reports_each_error_with_its_line(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
		const struct error_case *c = &error_cases[i];
		expect_error(c->text, strlen(c->text), c->line, c->what);
	}
}

static void
test_compile_accepts_rules_a_stop_rule_does_not_cover(void **state)
{
	static const char *const ok[] = {
	    /* Unconstrained flags are not covered by a flags rule (flags may be 0). */
	    "policy 1\nrule a\n flags violations casualties escalation early-warning\n to q\n"
	    " stop\nrule b\n to r\n",
	    /* A larger any-of set is not covered by a smaller one. */
	    "policy 1\nrule a\n flags violations\n to q\n stop\n"
	    "rule b\n flags violations casualties\n to r\n",
	    /* Every risk listed still misses headers without a risk. */
	    "policy 1\nrule a\n risk low elevated high ongoing\n to q\n stop\nrule b\n to r\n",
	    /* A value outside the earlier list. */
	    "policy 1\nrule a\n situation x\n to q\n stop\nrule b\n situation x y\n to r\n",
	    /* Without stop, identical rules are fine (fan-out is a set). */
	    "policy 1\nrule a\n to q\nrule b\n to q\n",
	    /* A stop rule after a rule it covers. */
	    "policy 1\nrule b\n situation x\n to r\nrule a\n to q\n stop\n",
	    /* 'to' may come before the condition its template uses. */
	    "policy 1\nrule a\n to rqr.${region}\n region x\n",
	    /* A policy without rules routes everything to triage. */
	    "policy 1\n",
	    /* Comments anywhere, no final newline, any indentation. */
	    "#c\npolicy 1#c\nrule a#c\nto q#c\n    # c\n\t\tkind surge",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		ruf_policy_free(compile_ok(ok[i]));
}

static void
test_compile_rejects_oversized_text_lines_and_nul(void **state)
{
	size_t big = RUF_POLICY_TEXT_MAX + 1;
	char *text = malloc(big + 1);
	ruf_policy *p = NULL;
	ruf_diag d = {{0}};
	char *s;
	int n;

	(void)state;
	assert_non_null(text);
	/* Whole text too large. */
	memset(text, '\n', big);
	memcpy(text, "policy 1\n", 9);
	assert_int_equal(ruf_policy_compile(text, big, &d, &p), RUF_E_POLICY);
	assert_null(p);
	assert_non_null(strstr(d.msg, "larger than"));
	/* Exactly the limit is fine. */
	assert_int_equal(ruf_policy_compile(text, big - 1, &d, &p), 0);
	ruf_policy_free(p);
	p = NULL;
	/* A line of RUF_POLICY_LINE_MAX + 1 bytes (a comment) on line 2. */
	s = text;
	s += sprintf(s, "policy 1\n");
	memset(s, '#', RUF_POLICY_LINE_MAX + 1);
	s[RUF_POLICY_LINE_MAX + 1] = '\0';
	expect_error(text, strlen(text), 2, "longer than 4096 bytes");
	/* RUF_POLICY_LINE_MAX bytes are fine. */
	s[RUF_POLICY_LINE_MAX] = '\0';
	ruf_policy_free(compile_ok(text));
	/* A NUL byte, even in a comment. */
	expect_error("policy 1\n# a\0b\n", 15, 2, "NUL byte");
	/* More than RUF_POLICY_MAX_RULES rules. */
	s = text;
	s += sprintf(s, "policy 1\n");
	for (n = 0; n <= RUF_POLICY_MAX_RULES; n++)
		s += sprintf(s, "rule r%d\n kind sitrep\n country c%d\n to q\n", n, n);
	expect_error(text, strlen(text), 2 + 4 * RUF_POLICY_MAX_RULES, "more than 1024 rules");
	free(text);
}

/* Compiles, encodes, decodes and checks both give the same routing and bytes. */
static void
test_encode_decode_round_trip_routes_identically(void **state)
{
	ruf_policy *p = compile_example(), *q = NULL, *r = NULL;
	uint8_t *a = NULL, *b = NULL;
	size_t alen, blen;
	char *desc = NULL, *desc2 = NULL;
	ruf_diag d = {{0}};

	(void)state;
	assert_int_equal(ruf_policy_encode(p, &a, &alen), 0);
	assert_int_equal(ruf_policy_decode(a, alen, &q), 0);
	assert_int_equal(ruf_policy_rule_count(q), ruf_policy_rule_count(p));
	check_cases(q);
	/* Re-encoding the decoded policy gives the same bytes (canonical form). */
	assert_int_equal(ruf_policy_encode(q, &b, &blen), 0);
	assert_int_equal(alen, blen);
	assert_memory_equal(a, b, alen);
	/* The description is itself a policy that routes the same way. */
	assert_int_equal(ruf_policy_describe(q, &desc), 0);
	assert_non_null(strstr(desc, "rule early-warning # line "));
	assert_non_null(strstr(desc, "\tto rqr.${region}\n"));
	assert_int_equal(ruf_policy_compile(desc, strlen(desc), &d, &r), 0);
	check_cases(r);
	assert_int_equal(ruf_policy_describe(p, &desc2), 0);
	assert_string_equal(desc, desc2);
	free(desc);
	free(desc2);
	free(a);
	free(b);
	ruf_policy_free(p);
	ruf_policy_free(q);
	ruf_policy_free(r);
}

/* Decodes a compiled example, applies one mutation, re-encodes, and expects rc from decode. */
typedef void (*mutate_fn)(Ruf__Policy *m);

static void
expect_decode_error(mutate_fn fn, int want)
{
	ruf_policy *p = compile_example(), *q = (ruf_policy *)1;
	uint8_t *a = NULL, *b = NULL;
	size_t alen, blen;
	Ruf__Policy *m;

	assert_int_equal(ruf_policy_encode(p, &a, &alen), 0);
	m = ruf__policy__unpack(NULL, alen, a);
	assert_non_null(m);
	fn(m);
	assert_int_equal(ruf_pb_encode(&m->base, &b, &blen), 0);
	assert_int_equal(ruf_policy_decode(b, blen, &q), want);
	assert_null(q);
	ruf__policy__free_unpacked(m, NULL);
	ruf_policy_free(p);
	free(a);
	free(b);
}

/*
 * Mutations of the unpacked example. ruf__policy__free_unpacked frees every
 * string and array afterwards, so replacements are heap copies.
 * Rule 0 of the example is "replies" (kind reply, stop), 1 "itf" (two
 * situations, a template), 6 "surge".
 */
static void
set_str(char **slot, const char *s)
{
	free(*slot);
	*slot = strdup(s);
	assert_non_null(*slot);
}

static void
set_u32(uint32_t **arr, size_t *n, size_t count, uint32_t a, uint32_t b)
{
	free(*arr);
	*arr = malloc(2 * sizeof(**arr));
	assert_non_null(*arr);
	(*arr)[0] = a;
	(*arr)[1] = b;
	*n = count;
}

static void
mut_bad_queue(Ruf__Policy *m)
{
	set_str(&m->rules[0]->queues[0], "Triage");
}
static void
mut_unknown_kind(Ruf__Policy *m)
{
	set_u32(&m->rules[0]->kinds, &m->rules[0]->n_kinds, 1, 4, 0);
}
static void
mut_kind_zero(Ruf__Policy *m)
{
	set_u32(&m->rules[0]->kinds, &m->rules[0]->n_kinds, 1, 0, 0);
}
static void
mut_kinds_unsorted(Ruf__Policy *m)
{
	set_u32(&m->rules[0]->kinds, &m->rules[0]->n_kinds, 2, 3, 1);
}
static void
mut_kinds_duplicate(Ruf__Policy *m)
{
	set_u32(&m->rules[0]->kinds, &m->rules[0]->n_kinds, 2, 1, 1);
}
static void
mut_unknown_risk(Ruf__Policy *m)
{
	set_u32(&m->rules[1]->risks, &m->rules[1]->n_risks, 1, 5, 0);
}
static void
mut_unknown_flag(Ruf__Policy *m)
{
	m->rules[1]->flags_any = 0x10;
}
static void
mut_bad_situation(Ruf__Policy *m)
{
	set_str(&m->rules[1]->situations[0], "Darfur");
}
static void
mut_situations_unsorted(Ruf__Policy *m)
{
	set_str(&m->rules[1]->situations[0], "zzz");
}
static void
mut_situations_duplicate(Ruf__Policy *m)
{
	set_str(&m->rules[1]->situations[1], m->rules[1]->situations[0]);
}
static void
mut_unconstrained_template(Ruf__Policy *m)
{
	set_str(&m->rules[1]->queues[0], "itf.${country}");
}
static void
mut_template_bad_expansion(Ruf__Policy *m)
{
	set_str(&m->rules[1]->queues[0], "${situation}.${situation}.x");
}
static void
mut_template_too_long(Ruf__Policy *m)
{
	char t[RUF_POLICY_TEMPLATE_MAX + 2];

	memset(t, 'a', sizeof(t) - 1);
	t[sizeof(t) - 1] = '\0';
	set_str(&m->rules[0]->queues[0], t);
}
static void
mut_no_queues(Ruf__Policy *m)
{
	for (size_t i = 0; i < m->rules[2]->n_queues; i++)
		free(m->rules[2]->queues[i]);
	m->rules[2]->n_queues = 0;
}
static void
mut_duplicate_name(Ruf__Policy *m)
{
	set_str(&m->rules[3]->name, "itf");
}
static void
mut_bad_name(Ruf__Policy *m)
{
	set_str(&m->rules[3]->name, "a.b");
}
static void
mut_lines_not_increasing(Ruf__Policy *m)
{
	m->rules[3]->line = m->rules[2]->line;
}
static void
mut_unreachable(Ruf__Policy *m)
{
	/* A later reply-only rule is covered by "replies". */
	set_u32(&m->rules[6]->kinds, &m->rules[6]->n_kinds, 1, RUF_KIND_REPLY, 0);
}
static void
mut_stop_everything(Ruf__Policy *m)
{
	m->rules[0]->n_kinds = 0;
}
static void
mut_format(Ruf__Policy *m)
{
	m->format = 2;
}
static void
mut_queues_unsorted(Ruf__Policy *m)
{
	Ruf__PolicyRule *r = m->rules[1];

	r->queues = realloc(r->queues, 2 * sizeof(*r->queues));
	assert_non_null(r->queues);
	r->queues[1] = strdup("aaa");
	assert_non_null(r->queues[1]);
	r->n_queues = 2;
}

static void
test_decode_rejects_tampered_policy(void **state)
{
	static const mutate_fn policy_errors[] = {
	    mut_bad_queue,
	    mut_unknown_kind,
	    mut_kind_zero,
	    mut_kinds_unsorted,
	    mut_kinds_duplicate,
	    mut_unknown_risk,
	    mut_unknown_flag,
	    mut_bad_situation,
	    mut_situations_unsorted,
	    mut_situations_duplicate,
	    mut_unconstrained_template,
	    mut_template_too_long,
	    mut_template_bad_expansion,
	    mut_no_queues,
	    mut_duplicate_name,
	    mut_bad_name,
	    mut_lines_not_increasing,
	    mut_unreachable,
	    mut_stop_everything,
	    mut_format,
	    mut_queues_unsorted,
	};

	(void)state;
	for (size_t i = 0; i < sizeof(policy_errors) / sizeof(policy_errors[0]); i++)
		expect_decode_error(policy_errors[i], RUF_E_POLICY);
}

static void
test_decode_rejects_non_canonical_and_truncated_bytes(void **state)
{
	ruf_policy *p = compile_example(), *q = (ruf_policy *)1;
	uint8_t *a = NULL, *b;
	size_t alen;

	(void)state;
	assert_int_equal(ruf_policy_encode(p, &a, &alen), 0);
	assert_int_equal(ruf_policy_decode(a, alen - 1, &q), RUF_E_FORMAT);
	assert_null(q);
	b = malloc(alen + 2);
	assert_non_null(b);
	memcpy(b, a, alen);
	/* Trailing field 1 again (duplicate "format"). */
	b[alen] = 0x08;
	b[alen + 1] = 0x01;
	assert_int_equal(ruf_policy_decode(b, alen + 2, &q), RUF_E_FORMAT);
	assert_null(q);
	/* An empty message has format 0. */
	assert_int_equal(ruf_policy_decode(b, 0, &q), RUF_E_POLICY);
	assert_null(q);
	assert_int_equal(ruf_policy_decode(a, RUF_POLICY_COMPILED_MAX + 1, &q), RUF_E_TOO_LARGE);
	free(b);
	free(a);
	ruf_policy_free(p);
}

static void
test_names_and_enums_round_trip(void **state)
{
	(void)state;
	for (int k = RUF_KIND_SITREP; k <= RUF_KIND_REPLY; k++)
		assert_int_equal(ruf_kind_parse(ruf_kind_name(k)), k);
	for (int r = RUF_RISK_LOW; r <= RUF_RISK_ONGOING; r++)
		assert_int_equal(ruf_risk_parse(ruf_risk_name(r)), r);
	for (uint32_t f = 1; f <= RUF_FLAGS_ALL; f <<= 1)
		assert_int_equal(ruf_flag_parse(ruf_flag_name(f)), f);
	assert_null(ruf_kind_name(0));
	assert_null(ruf_kind_name(4));
	assert_null(ruf_risk_name(5));
	assert_null(ruf_flag_name(3));
	assert_null(ruf_flag_name(0));
	assert_null(ruf_flag_name(0x10));
	assert_int_equal(ruf_kind_parse("SITREP"), 0);
	assert_int_equal(ruf_kind_parse(NULL), 0);
	assert_int_equal(ruf_risk_parse("medium"), 0);
	assert_int_equal(ruf_flag_parse("early_warning"), 0);
	assert_string_equal(ruf_flag_name(RUF_FLAG_EARLY_WARNING), "early-warning");
	assert_string_equal(ruf_kind_name(RUF_KIND_SURGE), "surge");
}

/* Seed corpora for tests/fuzz (RUF_WRITE_CORPUS=DIR); a no-op otherwise. */
static const char *const seed_texts[] = {
    "policy 1\n",
    "policy 1\nrule itf\n situation darfur kasai\n to itf.${situation}\n"
    "rule sag-risk\n risk high ongoing\n to sag\nrule escalation\n flags escalation\n to sag\n"
    "rule hrt\n flags violations casualties\n to hrt\nrule surge\n kind surge\n to surge\n stop\n",
    "policy 1\nrule r\n country sd cd\n region east-africa great-lakes\n"
    " to ${country}.${region} c.${country} triage\n",
    "policy 1\nrule a\n kind sitrep reply\n risk low elevated\n flags early-warning\n"
    " situation x\n country y\n region z\n to a.${situation} b.${country} c.${region}\n stop\n",
};

static void
write_seed(const char *dir, const char *sub, int i, const void *buf, size_t len)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	assert_int_equal(ruf_mkdirs(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/%s/seed-%d", dir, sub, i);
	assert_int_equal(ruf_file_write_atomic(path, buf, len, 0644, false), 0);
}

static void
test_write_fuzz_corpus_when_asked(void **state)
{
	const char *dir = getenv("RUF_WRITE_CORPUS");
	size_t n = sizeof(seed_texts) / sizeof(seed_texts[0]);

	(void)state;
	if (dir == NULL || *dir == '\0')
		skip();
	for (size_t i = 0; i <= n; i++) {
		size_t len;
		char *text = i < n ? strdup(seed_texts[i]) : read_example(&len);
		ruf_policy *p;
		uint8_t *bin;
		size_t blen;

		assert_non_null(text);
		len = strlen(text);
		p = compile_ok(text);
		write_seed(dir, "policy", (int)i, text, len);
		assert_int_equal(ruf_policy_encode(p, &bin, &blen), 0);
		write_seed(dir, "policy_bin", (int)i, bin, blen);
		free(bin);
		free(text);
		ruf_policy_free(p);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_example_policy_routes_each_header_to_its_desks),
	    cmocka_unit_test(test_queues_lists_each_expanded_queue_once),
	    cmocka_unit_test(test_stop_rule_ends_evaluation_but_keeps_its_queues),
	    cmocka_unit_test(test_templates_expand_with_each_header_value),
	    cmocka_unit_test(test_eval_refuses_more_than_max_queues),
	    cmocka_unit_test(test_eval_rejects_invalid_headers),
	    cmocka_unit_test(test_compile_reports_each_error_with_its_line),
	    cmocka_unit_test(test_compile_accepts_rules_a_stop_rule_does_not_cover),
	    cmocka_unit_test(test_compile_rejects_oversized_text_lines_and_nul),
	    cmocka_unit_test(test_encode_decode_round_trip_routes_identically),
	    cmocka_unit_test(test_decode_rejects_tampered_policy),
	    cmocka_unit_test(test_decode_rejects_non_canonical_and_truncated_bytes),
	    cmocka_unit_test(test_names_and_enums_round_trip),
	    cmocka_unit_test(test_write_fuzz_corpus_when_asked),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
