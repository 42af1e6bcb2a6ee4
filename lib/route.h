/*
 * route.h - the routing policy: one implementation, linked by rufd
 * (authoritative) and by ruf (to know which queue keys to seal to).
 *
 * HQ writes the policy as a text file (format in docs/PROTOCOL.md, to
 * become docs/PROTOCOL.md "Routing policy"; example certs-example/policy.txt);
 * rufctl compiles it and the compiled
 * form travels inside the signed directory. Rules match the envelope's clear
 * header; every matching rule adds its queues (fan-out); a rule marked `stop`
 * ends evaluation when it matches; a header no rule matches goes to `triage`.
 * Evaluation is pure: no I/O, no allocation beyond the result.
 */
#ifndef RUF_ROUTE_H
#define RUF_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "util.h"

enum ruf_kind {
	RUF_KIND_SITREP = 1, /* situation report ("sitrep") */
	RUF_KIND_SURGE = 2,  /* surge staff request ("surge") */
	RUF_KIND_REPLY = 3,  /* reply from an HQ desk ("reply") */
};

enum ruf_risk {
	RUF_RISK_LOW = 1,
	RUF_RISK_ELEVATED = 2,
	RUF_RISK_HIGH = 3,
	RUF_RISK_ONGOING = 4, /* serious violations ongoing */
};

/* Header flags (bit set). */
#define RUF_FLAG_VIOLATIONS 0x1u    /* "violations": violations reported */
#define RUF_FLAG_CASUALTIES 0x2u    /* "casualties": casualty figures reported */
#define RUF_FLAG_ESCALATION 0x4u    /* "escalation": escalation requested */
#define RUF_FLAG_EARLY_WARNING 0x8u /* "early-warning": an early-warning report */
#define RUF_FLAGS_ALL 0xfu

/* Names used in policy files, JSON and output; NULL/0 when unknown. */
const char *ruf_kind_name(int kind);
int ruf_kind_parse(const char *s);
const char *ruf_risk_name(int risk);
int ruf_risk_parse(const char *s);
const char *ruf_flag_name(uint32_t flag); /* one bit */
uint32_t ruf_flag_parse(const char *s);

/* The routing-relevant part of an envelope's clear header. */
struct ruf_route_header {
	int kind;              /* enum ruf_kind, required */
	const char *situation; /* identifiers; "" (or NULL) when absent */
	const char *country;
	const char *region;
	int risk;       /* enum ruf_risk, or 0 when absent (matches no 'risk' list) */
	uint32_t flags; /* within RUF_FLAGS_ALL */
};

#define RUF_ROUTE_MAX_QUEUES 16 /* per evaluation result, and per rule's 'to' */

/* Policy limits (docs/PROTOCOL.md, "Limits"). */
#define RUF_POLICY_FORMAT 1            /* the only text and compiled version */
#define RUF_POLICY_TEXT_MAX (1u << 20) /* policy text, bytes */
#define RUF_POLICY_LINE_MAX 4096       /* one text line, bytes, without '\n' */
#define RUF_POLICY_MAX_RULES 1024
#define RUF_POLICY_MAX_VALUES 65536        /* all condition values and queues, summed */
#define RUF_POLICY_MAX_EXPANSIONS 65536    /* concrete queues from all templates, summed */
#define RUF_POLICY_TEMPLATE_MAX 256        /* one queue template, bytes */
#define RUF_POLICY_COMPILED_MAX (4u << 20) /* compiled form, bytes */

/* Result of evaluation: distinct queue names, sorted (strcmp). */
struct ruf_queue_set {
	size_t n;
	char names[RUF_ROUTE_MAX_QUEUES][RUF_QUEUE_NAME_MAX + 1];
};

typedef struct ruf_policy ruf_policy;

/*
 * Compiles policy text (len bytes, need not be NUL-terminated). Returns 0 and
 * a policy the caller frees with ruf_policy_free, or RUF_E_NOMEM, or
 * RUF_E_POLICY with "line N: what" in d for the first error: unknown keywords
 * or values, bad identifiers or queue names, duplicate conditions, values or
 * rule names, a rule without queues, a queue template whose variable the rule
 * does not constrain to a list, unreachable rules (an earlier `stop` rule
 * matches everything this one matches), and the limits above. The full list
 * is in docs/PROTOCOL.md. *out is NULL on error.
 */
int ruf_policy_compile(const char *text, size_t len, ruf_diag *d, ruf_policy **out)
    __attribute__((warn_unused_result));

/*
 * Calls each(name, line, ctx) once for every concrete queue the policy can
 * route to (templates expanded over their rule's value lists), plus "triage",
 * in strcmp order; line is that of the first rule naming the queue, 0 for
 * triage when no rule names it. Stops and returns the first non-zero result;
 * RUF_E_NOMEM if the (bounded) scratch list cannot be allocated.
 */
int ruf_policy_queues(const ruf_policy *p, int (*each)(const char *queue, unsigned line, void *ctx),
                      void *ctx);

/*
 * Compiled form, as carried in the directory (protobuf ruf.Policy,
 * proto/policy.proto). encode: 0 and a malloc'ed buffer the caller frees, or
 * RUF_E_NOMEM. The form is canonical: decode(b) succeeds only if
 * encode(decode(b)) == b.
 * decode: 0 and a policy the caller frees; RUF_E_TOO_LARGE beyond
 * RUF_POLICY_COMPILED_MAX, RUF_E_FORMAT when ruf_pb_decode rejects the bytes,
 * RUF_E_POLICY when they break any invariant the compiler guarantees (all are
 * re-checked: the directory is signed, but its parser trusts nothing).
 */
int ruf_policy_encode(const ruf_policy *p, uint8_t **out, size_t *len);
int ruf_policy_decode(const uint8_t *buf, size_t len, ruf_policy **out)
    __attribute__((warn_unused_result));

/*
 * Evaluates p on h. Returns 0 with at least one queue in out (triage when
 * nothing matched), or RUF_E_INVAL for a header whose fields are not valid
 * identifiers/enums, RUF_E_TOO_LARGE if more than RUF_ROUTE_MAX_QUEUES result;
 * out->n is 0 on error. Pure and thread-safe on a shared policy: no I/O, no
 * allocation.
 */
int ruf_route_eval(const ruf_policy *p, const struct ruf_route_header *h,
                   struct ruf_queue_set *out);

/* Number of rules (for inspection). */
size_t ruf_policy_rule_count(const ruf_policy *p);

/*
 * Writes a readable listing of the compiled policy (rufctl inspect) into a
 * new NUL-terminated buffer the caller frees: policy text that compiles back
 * to the same routing, then the queues as comments. 0 or RUF_E_NOMEM.
 */
int ruf_policy_describe(const ruf_policy *p, char **out);

/* Frees p; accepts NULL. */
void ruf_policy_free(ruf_policy *p);

#endif
